//! End-to-end tests of the `jigasi-rs` binary: its command line, its configuration errors, and a
//! start-up against real Prosody and Kamailio checked only from the outside.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use jigasi_demo::startup_scenario;
use jigasi_testpeers::available;

const BIN: &str = env!("CARGO_BIN_EXE_jigasi-rs");

fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A Jigasi-style properties file under `<dir>/jigasi-home/`.
fn write_properties(dir: &Path, body: &str) {
    let home = dir.join("jigasi-home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("sip-communicator.properties"), body).unwrap();
}

const SAMPLE: &str = "\
net.java.sip.communicator.impl.protocol.sip.acc1=acc1
net.java.sip.communicator.impl.protocol.sip.acc1.USER_ID=jigasi@sip.example.com
net.java.sip.communicator.impl.protocol.sip.acc1.PASSWORD=c3VwZXJzZWNyZXQtc2lw
net.java.sip.communicator.impl.protocol.sip.acc1.SERVER_ADDRESS=sip.example.com
net.java.sip.communicator.impl.protocol.jabber.acc-xmpp-1=acc-xmpp-1
net.java.sip.communicator.impl.protocol.jabber.acc-xmpp-1.USER_ID=jigasi@auth.meet.example.com
net.java.sip.communicator.impl.protocol.jabber.acc-xmpp-1.PASSWORD=eG1wcC1zZWNyZXQtdmFsdWU=
net.java.sip.communicator.impl.protocol.jabber.acc-xmpp-1.BREWERY=JigasiBrewery@internal.auth.meet.example.com
";

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["--version"], dir.path());
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("jigasi-rs {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(&["-h"], dir.path());
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in [
        "--min-port",
        "--configdir",
        "--configdirname",
        "--domain",
        "--host",
        "--print-config",
    ] {
        assert!(help.contains(flag), "help lacks {flag}:\n{help}");
    }
}

#[test]
fn print_config_redacts_secrets_and_accepts_both_dash_forms() {
    let dir = tempfile::tempdir().unwrap();
    write_properties(dir.path(), SAMPLE);
    let configdir = format!("-configdir={}", dir.path().display());
    let out = run(
        &[
            &configdir,
            "--min-port=30000",
            "-max-port=30010",
            "--print-config",
        ],
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    // The base64 passwords decode to these; neither may appear, encoded or not.
    for secret in [
        "supersecret-sip",
        "c3VwZXJzZWNyZXQtc2lw",
        "xmpp-secret-value",
        "eG1wcC1zZWNyZXQtdmFsdWU=",
    ] {
        assert!(
            !stdout.contains(secret),
            "secret {secret} printed:\n{stdout}"
        );
    }
    assert!(stdout.contains("<redacted>"));
    assert!(
        stdout.contains("30000") && stdout.contains("30010"),
        "{stdout}"
    );
    assert!(stdout.contains("JigasiBrewery@internal.auth.meet.example.com"));
}

#[test]
fn bad_configuration_stops_start_up_naming_file_line_and_expectation() {
    let dir = tempfile::tempdir().unwrap();
    write_properties(
        dir.path(),
        &format!("{SAMPLE}net.java.sip.communicator.impl.protocol.sip.acc1.SERVER_PORT=50x0\n"),
    );
    let configdir = format!("--configdir={}", dir.path().display());
    let out = run(&[&configdir], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("sip-communicator.properties:9"), "{stderr}");
    assert!(
        stderr.contains("SERVER_PORT") && stderr.contains("50x0"),
        "{stderr}"
    );
    assert!(stderr.contains("port"), "{stderr}");

    write_properties(
        dir.path(),
        &SAMPLE.replace("jigasi@sip.example.com", "<<JIGASI_SIPUSER>>"),
    );
    let out = run(&[&configdir], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("<<JIGASI_SIPUSER>>") && stderr.contains("placeholder"),
        "{stderr}"
    );
}

#[test]
fn missing_configuration_names_the_path_searched() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &["--configdir=/nonexistent-jigasi", "--configdirname=jigasi"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("/nonexistent-jigasi/jigasi/sip-communicator.properties"),
        "{stderr}"
    );
}

#[test]
fn bad_command_line_value_is_an_error_but_unknown_flags_are_not() {
    let dir = tempfile::tempdir().unwrap();
    write_properties(dir.path(), SAMPLE);
    let configdir = format!("--configdir={}", dir.path().display());
    let out = run(
        &[&configdir, "--min-port=ten", "--print-config"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("min-port") && stderr.contains("ten"),
        "{stderr}"
    );

    let out = run(
        &[&configdir, "--subdomain=callcontrol", "--print-config"],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "unknown flags must not be fatal: {}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_registers_joins_the_brewery_and_stops_cleanly() {
    if !available(&["prosody", "prosodyctl", "kamailio", "openssl"]) {
        return;
    }
    let report = startup_scenario(Path::new(BIN), false).await.unwrap();
    let log = &report.log;
    assert!(
        report.ready_after < Duration::from_secs(5),
        "slow start: {report:?}"
    );
    assert!(report.stats.supports_sip, "{log}");
    assert!(!report.stats.graceful_shutdown);
    assert_eq!(report.stats.version, env!("CARGO_PKG_VERSION"));
    assert!(
        report.brewery_nick.starts_with("jitsi-"),
        "{}",
        report.brewery_nick
    );
    assert_eq!(
        report.options_while_running, 200,
        "registrar did not route to us:\n{log}"
    );
    assert!(report.exit.success(), "exit {}:\n{log}", report.exit);
    assert!(report.graceful_shutdown_published, "{log}");
    assert_eq!(
        report.options_after_stop, 404,
        "binding left behind:\n{log}"
    );
    // --logdir gets the same log as stderr.
    assert!(
        report.log_file.contains("gateway ready"),
        "log file:\n{}",
        report.log_file
    );
    assert!(
        report.log_file.contains("un-registered"),
        "log file:\n{}",
        report.log_file
    );
    // Personal data is redacted at the default log level.
    assert!(
        !log.contains("jigasi@auth.meet.example.com"),
        "JID in the log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejoins_the_brewery_after_the_xmpp_server_restarts() {
    use jigasi_demo::{BreweryObserver, Deployment, GatewayProcess, READY_LINE};
    if !available(&["prosody", "prosodyctl", "kamailio", "openssl"]) {
        return;
    }
    let mut deployment = Deployment::start().unwrap();
    let mut gateway =
        GatewayProcess::spawn(Path::new(BIN), &deployment.gateway_args(), false).unwrap();
    gateway
        .wait_for_line(READY_LINE, Duration::from_secs(20))
        .unwrap();

    deployment.prosody.restart().unwrap();
    // The loss is noticed (never silent) and the gateway reports it is not ready...
    gateway
        .wait_for_line("brewery connection lost", Duration::from_secs(10))
        .unwrap();
    // ...then reconnects with backoff, joins again and is ready again.
    let mut observer = BreweryObserver::join(&deployment.prosody).await.unwrap();
    let (_, stats) = observer
        .wait_for_stats(|s| s.supports_sip, Duration::from_secs(15))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log()));
    assert!(!stats.graceful_shutdown);
    // The log catches up with what the observer saw within moments.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = gateway.log();
        if log.matches("gateway ready").count() == 2 || std::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(log.matches("joined the brewery").count(), 2, "{log}");
    assert!(log.contains("gateway not ready"), "{log}");
    assert_eq!(log.matches("gateway ready").count(), 2, "{log}");
    let exit = gateway.terminate(Duration::from_secs(10)).unwrap();
    assert!(exit.success());
    observer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_health_and_graceful_shutdown() {
    use jigasi_demo::{Deployment, GatewayProcess, READY_LINE, http_request};
    if !available(&["prosody", "prosodyctl", "kamailio", "openssl"]) {
        return;
    }
    let mut deployment = Deployment::start().unwrap();
    let rest = deployment.rest_addr();
    let mut gateway =
        GatewayProcess::spawn(Path::new(BIN), &deployment.gateway_args(), false).unwrap();
    gateway
        .wait_for_line(READY_LINE, Duration::from_secs(20))
        .unwrap();
    let get = |path: &'static str| {
        tokio::task::spawn_blocking(move || http_request(rest, "GET", path).unwrap())
    };
    assert_eq!(get("/about/health").await.unwrap(), (200, "{}".into()));

    // Losing the XMPP server makes the gateway unhealthy, with a reason (Jigasi stays green).
    deployment.prosody.stop();
    gateway
        .wait_for_line("brewery connection lost", Duration::from_secs(10))
        .unwrap();
    let (status, body) = get("/about/health").await.unwrap();
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("acc-xmpp-1"), "{body}");
    deployment.prosody.restart().unwrap();

    let (status, _) =
        tokio::task::spawn_blocking(move || http_request(rest, "POST", "/about/shutdown").unwrap())
            .await
            .unwrap();
    assert_eq!(status, 200);
    let exit = gateway.wait(Duration::from_secs(10)).unwrap();
    assert!(exit.success(), "{}", gateway.log());
    assert!(
        gateway
            .log()
            .contains("graceful shutdown requested over REST")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_in_call_from_a_real_phone_carries_audio_both_ways() {
    if !available(&["prosody", "prosodyctl", "kamailio", "baresip", "openssl"]) {
        return;
    }
    let report =
        jigasi_demo::dial_in_scenario(Path::new(BIN), false, 440, 1000.0, Duration::from_secs(4))
            .await
            .unwrap();
    let log = &report.log;
    assert_eq!(
        report.violations, 0,
        "the stand-in rejected our session-accept:\n{log}"
    );
    assert!(
        report.setup < Duration::from_secs(5),
        "setup {:?}",
        report.setup
    );
    let up = report.conference_heard_hz.unwrap_or(0.0);
    assert!(
        (up - 440.0).abs() < 15.0,
        "conference heard {up} Hz ({:.1} s)\n{log}",
        report.conference_heard_seconds
    );
    assert!(report.conference_heard_seconds > 2.0, "{report:?}");
    let down = report.phone_heard_hz.unwrap_or(0.0);
    assert!(
        (down - 1000.0).abs() < 15.0,
        "phone heard {down} Hz ({:.1} s)\n{log}",
        report.phone_heard_seconds
    );
    assert!(report.phone_heard_seconds > 2.0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_out_from_the_conference_reaches_a_real_phone_with_audio_both_ways() {
    if !available(&["prosody", "prosodyctl", "kamailio", "baresip", "openssl"]) {
        return;
    }
    let (reference, report) =
        jigasi_demo::dial_out_scenario(Path::new(BIN), false, 600, 1200.0, Duration::from_secs(4))
            .await
            .unwrap();
    let log = &report.log;
    assert!(
        reference.contains("xmpp:demo@conference.meet.example.com/"),
        "Rayo ref {reference}"
    );
    assert_eq!(report.violations, 0, "{log}");
    let up = report.conference_heard_hz.unwrap_or(0.0);
    assert!((up - 600.0).abs() < 15.0, "conference heard {up} Hz\n{log}");
    let down = report.phone_heard_hz.unwrap_or(0.0);
    assert!((down - 1200.0).abs() < 15.0, "phone heard {down} Hz\n{log}");
    assert!(
        report.phone_heard_seconds > 2.0 && report.conference_heard_seconds > 2.0,
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_a_running_call_finish_and_refuses_new_ones() {
    use jigasi_demo::{Session, SessionConfig, http_request};
    use jigasi_testpeers::{Baresip, BaresipConfig, audio, sip_options};
    if !available(&["prosody", "prosodyctl", "kamailio", "baresip", "openssl"]) {
        return;
    }
    let config = SessionConfig {
        participant: jigasi_standin::AudioSource::Tone(1000.0),
        echo: false,
        capture: false,
        extra_properties: Vec::new(),
    };
    let mut session = Session::start(Path::new(BIN), &config).await.unwrap();
    let registrar = session.deployment.kamailio.addr();
    let tone = audio::tone_wav(&session.work, 48_000, 440, 30).unwrap();
    let mut phone = Baresip::start(BaresipConfig {
        play_wav: Some(tone),
        codecs: "PCMU".into(),
        ..BaresipConfig::registering("alice", "alicepw", registrar)
    })
    .unwrap();
    phone.wait_registered(Duration::from_secs(5)).unwrap();
    phone
        .dial(&format!("sip:jigasi@{}", registrar.ip()))
        .unwrap();
    phone
        .wait_event("CALL_ESTABLISHED", Duration::from_secs(20))
        .unwrap();

    let rest = session.deployment.rest_addr();
    let (status, _) =
        tokio::task::spawn_blocking(move || http_request(rest, "POST", "/about/shutdown").unwrap())
            .await
            .unwrap();
    assert_eq!(status, 200);
    session
        .gateway
        .wait_for_line(
            "graceful shutdown: refusing new calls",
            Duration::from_secs(5),
        )
        .unwrap();
    // Jicofo sees the flag at once; the call goes on.
    let (_, stats) =
        tokio::task::spawn_blocking(move || http_request(rest, "GET", "/about/stats").unwrap())
            .await
            .unwrap();
    assert!(stats.contains("\"graceful_shutdown\":true"), "{stats}");
    assert!(
        phone
            .wait_event("CALL_CLOSED", Duration::from_secs(2))
            .is_err(),
        "the running call must not be cut"
    );
    // A new call would be refused with 503 while the old one runs: OPTIONS says so, as RFC 3261
    // §11.2 asks (what an INVITE would get), so a dispatcher's probes take us out of rotation.
    let gateway_sip = format!("sip:jigasi@127.0.0.1:{}", session.deployment.sip_port);
    let sip_addr = std::net::SocketAddr::from(([127, 0, 0, 1], session.deployment.sip_port));
    let options = tokio::task::spawn_blocking(move || sip_options(sip_addr, &gateway_sip))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(options, 503);

    // The phone hangs up; the gateway then exits by itself.
    phone.hangup().unwrap();
    let exit = session.gateway.wait(Duration::from_secs(15)).unwrap();
    assert!(exit.success(), "{}", session.gateway.log());
}

/// A demo session (Prosody, Kamailio, the stand-in with a 1 kHz web participant, the gateway)
/// when the peers are installed.
async fn tone_session() -> Option<jigasi_demo::Session> {
    use jigasi_demo::{Session, SessionConfig};
    if !available(&["prosody", "prosodyctl", "kamailio", "baresip", "openssl"]) {
        return None;
    }
    let config = SessionConfig {
        participant: jigasi_standin::AudioSource::Tone(1000.0),
        echo: false,
        capture: false,
        extra_properties: Vec::new(),
    };
    Some(Session::start(Path::new(BIN), &config).await.unwrap())
}

mod lifecycle {
    //! jigasi-behaviour.md §1.12 rows with the real binary, the stand-in and a real phone.

    use std::time::Duration;

    use jigasi_demo::Session;
    use jigasi_jingle::jingle::ReasonCondition;
    use jigasi_standin::StandInEvent;

    use super::tone_session;

    async fn left(session: &Session, who: &str) -> bool {
        session
            .standin
            .wait_for(Duration::from_secs(10), |event| {
                matches!(event, StandInEvent::MemberLeft { nick, .. } if nick == who).then_some(())
            })
            .await
            .is_some()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn phone_hangup_leaves_the_room() {
        let Some(mut session) = tone_session().await else {
            return;
        };
        let (mut phone, nick) = session.established_dial_in(440).await.unwrap();
        phone.hangup().unwrap();
        assert!(left(&session, &nick).await, "{}", session.gateway.log());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kick_hangs_up_the_phone() {
        let Some(mut session) = tone_session().await else {
            return;
        };
        let (mut phone, nick) = session.established_dial_in(440).await.unwrap();
        session.standin.kick("demo", &nick).await.unwrap();
        phone
            .wait_event("CALL_CLOSED", Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}\n{}", session.gateway.log()));
        assert!(
            session.gateway.log().contains("Kicked"),
            "{}",
            session.gateway.log()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn room_destroyed_hangs_up_the_phone() {
        let Some(mut session) = tone_session().await else {
            return;
        };
        let (mut phone, _) = session.established_dial_in(440).await.unwrap();
        session
            .standin
            .destroy("demo", Some("end of meeting"))
            .await
            .unwrap();
        phone
            .wait_event("CALL_CLOSED", Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}\n{}", session.gateway.log()));
        assert!(
            session.gateway.log().contains("RoomDestroyed"),
            "{}",
            session.gateway.log()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn session_terminate_keeps_the_phone_then_408_after_the_invite_window() {
        let Some(mut session) = tone_session().await else {
            return;
        };
        let (mut phone, nick) = session.established_dial_in(440).await.unwrap();
        session
            .standin
            .terminate("demo", &nick, ReasonCondition::Success, Some("moving"))
            .await
            .unwrap_or_else(|e| panic!("terminate: {e}\n{}", session.gateway.log()));
        // The phone call is kept while the gateway waits for a new invite (5 s in the demo
        // configuration, JVB_INVITE_TIMEOUT)...
        assert!(
            phone
                .wait_event("CALL_CLOSED", Duration::from_secs(3))
                .is_err(),
            "the phone was hung up inside the invite window\n{}",
            session.gateway.log()
        );
        // ...and ended with BYE (Reason SIP;cause=408) when none comes.
        phone
            .wait_event("CALL_CLOSED", Duration::from_secs(8))
            .unwrap_or_else(|e| panic!("{e}\n{}", session.gateway.log()));
        assert!(
            session.gateway.log().contains("NoInvite"),
            "{}",
            session.gateway.log()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mute_from_the_focus_stops_our_audio() {
        let Some(mut session) = tone_session().await else {
            return;
        };
        let (_phone, nick) = session.established_dial_in(440).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = session.standin.media_stats("demo", &nick).await.unwrap();
        assert!(before.packets_received > 20, "{before:?}");
        session.standin.mute("demo", &nick).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let muted = session.standin.media_stats("demo", &nick).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = session.standin.media_stats("demo", &nick).await.unwrap();
        assert!(
            after.packets_received - muted.packets_received < 5,
            "still sending while muted: {muted:?} -> {after:?}\n{}",
            session.gateway.log()
        );
    }
}

mod rayo {
    //! Rayo dial-out requests against the real binary on a real Prosody (issue 4).

    use std::time::Duration;

    use jigasi_demo::Session;
    use jigasi_testpeers::{Baresip, BaresipConfig, audio};
    use jigasi_xmpp::{Auth, ClientConfig, TlsPolicy, stanza};
    use jigasi_xmpp_io::{ConnectOptions, Incoming, connect_client};

    use super::tone_session;

    fn bob(session: &Session) -> Baresip {
        let tone = audio::tone_wav(&session.work, 48_000, 500, 60).unwrap();
        let mut phone = Baresip::start(BaresipConfig {
            auto_answer: true,
            play_wav: Some(tone),
            codecs: "PCMU".into(),
            ..BaresipConfig::registering("bob", "bobpw", session.deployment.kamailio.addr())
        })
        .unwrap();
        phone.wait_registered(Duration::from_secs(5)).unwrap();
        phone
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retried_dial_gets_the_same_ref_and_one_call_and_hangup_iq_ends_it() {
        let Some(mut session) = tone_session().await else {
            return;
        };
        let mut phone = bob(&session);
        // Jicofo retries a dial it thinks failed: both requests must lead to one call.
        let (first, second) = tokio::join!(
            session.standin.dial("demo", "bob", &[]),
            session.standin.dial("demo", "bob", &[])
        );
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first, second, "a retried dial must not start a second call");
        phone
            .wait_event("CALL_ESTABLISHED", Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("{e}\n{}", session.gateway.log()));
        assert!(
            phone
                .wait_event("CALL_INCOMING", Duration::from_secs(2))
                .is_err(),
            "a second INVITE reached the phone"
        );

        // A web participant hangs the call up with a Rayo hangup IQ to the gateway's occupant
        // JID (lib-jitsi-meet `hangup`); Jigasi's own lookup of it is broken, ours is not.
        let occupant = format!("{first:?}");
        let occupant = occupant
            .split("xmpp:")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        let prosody = &session.deployment.prosody;
        let c2s = prosody.c2s_addr();
        let mut options = ConnectOptions::new(c2s.ip().to_string(), c2s.port());
        options.tls_server_name = prosody.domain().to_owned();
        options.dangerous_accept_invalid_certs = true;
        let (web, mut events) = connect_client(
            options,
            ClientConfig::new(prosody.domain(), Auth::Anonymous).with_tls(TlsPolicy::IfOffered),
        )
        .await
        .unwrap();
        // Prosody only routes IQs to occupants from occupants: join as a web participant does.
        let room = occupant.split('/').next().unwrap();
        let me: jigasi_xmpp::jid::FullJid = format!("{room}/web").parse().unwrap();
        web.send(jigasi_xmpp::muc::join_presence(&me, None, Vec::new()))
            .await
            .unwrap();
        let joined = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(incoming) = events.next().await {
                if let Incoming::Stanza(presence) = incoming
                    && presence.name() == "presence"
                    && presence.attr("from") == Some(me.to_string().as_str())
                {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(
            joined,
            Ok(true),
            "the web participant could not join {room}"
        );
        let hangup = stanza::iq(
            "set",
            Some(&occupant),
            jigasi_xmpp::minidom::Element::bare("hangup", "urn:xmpp:rayo:1"),
        );
        // The IQ is answered through the occupant; a failure to route would be an error here.
        let answer = web.send_iq(hangup, Duration::from_secs(5)).await;
        assert!(
            answer.is_ok(),
            "hangup IQ not answered: {answer:?}\n{}",
            session.gateway.log()
        );
        phone
            .wait_event("CALL_CLOSED", Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e}\n{}", session.gateway.log()));
    }
}

/// jigasi-behaviour.md §1.2 dropped-media detection with the real binary: a SIPp phone that
/// answers RTP with silence is hung up with `Reason: SIP;cause=408` after
/// `SIP_MEDIA_DROPPED_THRESHOLD_MS` when `HANGUP_SIP_ON_MEDIA_DROPPED` is set, and
/// `/about/stats` counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_sends_no_media_is_hung_up_with_408_and_counted() {
    use jigasi_demo::{Session, SessionConfig, http_request};
    use jigasi_testpeers::Sipp;
    if !available(&["prosody", "prosodyctl", "kamailio", "sipp", "openssl"]) {
        return;
    }
    let config = SessionConfig {
        participant: jigasi_standin::AudioSource::Tone(1000.0),
        echo: false,
        capture: false,
        extra_properties: vec![
            "org.jitsi.jigasi.SIP_MEDIA_DROPPED_THRESHOLD_MS=2000".into(),
            "org.jitsi.jigasi.HANGUP_SIP_ON_MEDIA_DROPPED=true".into(),
        ],
    };
    let mut session = Session::start(Path::new(BIN), &config).await.unwrap();
    let scenario = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="silent phone">
  <send retrans="500">
    <![CDATA[
      INVITE sip:jigasi@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Silent" <sip:silent@other.test>;tag=[pid]SIPpTag09[call_number]
      To: <sip:jigasi@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:silent@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Jitsi-Conference-Room: demo@conference.meet.example.com
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[local_ip_type] [local_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      a=sendrecv
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:jigasi@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Silent" <sip:silent@other.test>;tag=[pid]SIPpTag09[call_number]
      To: <sip:jigasi@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:silent@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv request="BYE">
    <action>
      <ereg regexp="SIP;cause=408" search_in="hdr" header="Reason:" check_it="true" assign_to="reason"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <Reference variables="reason"/>
</scenario>
"#;
    let xml = session.work.join("silent.xml");
    std::fs::write(&xml, scenario).unwrap();
    let gateway = format!("127.0.0.1:{}", session.deployment.sip_port);
    let work = session.work.clone();
    let args = [
        "-sf",
        xml.to_str().unwrap(),
        "-m",
        "1",
        "-timeout",
        "20",
        "-timeout_error",
        gateway.as_str(),
    ]
    .map(str::to_owned);
    let started = std::time::Instant::now();
    let outcome = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Sipp::run(&args, &work, Duration::from_secs(30)).unwrap()
    })
    .await
    .unwrap();
    assert!(
        outcome.success(),
        "sipp failed ({:?}):\n{}\n{}",
        outcome.code,
        outcome.output,
        session.gateway.log()
    );
    // Answered, then 2 s without RTP: not before.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let rest = session.deployment.rest_addr();
    let (_, stats) =
        tokio::task::spawn_blocking(move || http_request(rest, "GET", "/about/stats").unwrap())
            .await
            .unwrap();
    assert!(
        stats.contains("\"total_calls_with_dropped_media\":1"),
        "{stats}"
    );
    assert!(stats.contains("\"total_count_dropped_media\":1"), "{stats}");
}

mod reconnect {
    //! jigasi-behaviour.md §1.12 "XMPP connection failed", done better than Jigasi: the per-call
    //! connection runs through a TCP proxy the test can cut; the phone call must survive.

    use std::net::SocketAddr;
    use std::path::Path;
    use std::sync::{Arc, OnceLock};
    use std::time::Duration;

    use jigasi_demo::{Session, SessionConfig};
    use jigasi_standin::AudioSource;
    use jigasi_testpeers::available;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;

    use super::BIN;

    /// A loopback TCP proxy to `upstream` (known later); every connection through it is closed
    /// when `cut` changes.
    async fn cuttable_proxy(upstream: Arc<OnceLock<SocketAddr>>, cut: watch::Receiver<u32>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let Some(upstream) = upstream.get().copied() else {
                    continue;
                };
                let mut cut = cut.clone();
                cut.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        port
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_conference_connection_is_restored_without_dropping_the_phone() {
        if !available(&["prosody", "prosodyctl", "kamailio", "baresip", "openssl"]) {
            return;
        }
        let upstream = Arc::new(OnceLock::new());
        let (cut, cut_rx) = watch::channel(0u32);
        let port = cuttable_proxy(upstream.clone(), cut_rx).await;
        let config = SessionConfig {
            participant: AudioSource::Tone(1000.0),
            echo: false,
            capture: false,
            extra_properties: vec![
                "org.jitsi.jigasi.xmpp.acc.SERVER_ADDRESS=127.0.0.1".into(),
                format!("org.jitsi.jigasi.xmpp.acc.SERVER_PORT={port}"),
            ],
        };
        let mut session = Session::start(Path::new(BIN), &config).await.unwrap();
        upstream.set(session.deployment.prosody.c2s_addr()).unwrap();
        let (mut phone, nick) = session.established_dial_in(440).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = session.standin.media_stats("demo", &nick).await.unwrap();
        assert!(before.packets_received > 0, "{before:?}");

        // The conference connection dies under the call.
        cut.send_modify(|n| *n += 1);
        let rejoined = session.new_gateway_nick().await;
        let rejoined = rejoined.unwrap_or_else(|e| panic!("{e}\n{}", session.gateway.log()));
        assert_ne!(rejoined, nick, "rejoined with the old nick");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = session
            .standin
            .media_stats("demo", &rejoined)
            .await
            .unwrap();
        assert!(
            after.packets_received >= 50,
            "the phone's audio did not resume: {after:?}\n{}",
            session.gateway.log()
        );
        assert!(
            phone
                .wait_event("CALL_CLOSED", Duration::from_millis(500))
                .is_err(),
            "the phone was hung up\n{}",
            session.gateway.log()
        );
        phone.hangup().unwrap();
    }
}

/// jigasi-behaviour.md §1.16: with `HEALTH_CHECK_SIP_URI` the gateway calls a real phone
/// periodically: while the URI cannot be reached `/about/health` is a 500 naming the check; once
/// a phone answers there with audio it is healthy again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_health_check_calls_feed_the_health_endpoint() {
    use jigasi_demo::{Session, SessionConfig, http_request};
    use jigasi_testpeers::{Baresip, BaresipConfig, audio};
    if !available(&["prosody", "prosodyctl", "kamailio", "baresip", "openssl"]) {
        return;
    }
    let config = SessionConfig {
        participant: jigasi_standin::AudioSource::Tone(1000.0),
        echo: false,
        capture: false,
        extra_properties: vec![
            "org.jitsi.jigasi.HEALTH_CHECK_SIP_URI=sip:bob@{kamailio}".into(),
            "org.jitsi.jigasi.HEALTH_CHECK_INTERVAL=2000".into(),
        ],
    };
    let mut session = Session::start(Path::new(BIN), &config).await.unwrap();
    let rest = session.deployment.rest_addr();
    let health = move || async move {
        tokio::task::spawn_blocking(move || http_request(rest, "GET", "/about/health").unwrap())
            .await
            .unwrap()
    };
    // bob is not registered: Kamailio answers 404, twice (the retry), and health turns 500.
    let unhealthy = async {
        loop {
            let (status, body) = health().await;
            if status == 500 {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let body = tokio::time::timeout(Duration::from_secs(30), unhealthy)
        .await
        .unwrap_or_else(|_| panic!("never unhealthy\n{}", session.gateway.log()));
    assert!(
        body.contains("SIP health check") && body.contains("404"),
        "{body}"
    );

    // bob answers and plays a tone: the next check passes.
    let tone = audio::tone_wav(&session.work, 48_000, 440, 60).unwrap();
    let mut bob = Baresip::start(BaresipConfig {
        auto_answer: true,
        play_wav: Some(tone),
        codecs: "PCMU".into(),
        ..BaresipConfig::registering("bob", "bobpw", session.deployment.kamailio.addr())
    })
    .unwrap();
    bob.wait_registered(Duration::from_secs(5)).unwrap();
    let healthy = async {
        loop {
            if health().await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), healthy)
        .await
        .unwrap_or_else(|_| panic!("never healthy again\n{}", session.gateway.log()));
    bob.wait_event("CALL_ESTABLISHED", Duration::from_secs(1))
        .unwrap_or_else(|e| panic!("bob was never called: {e}"));
    session
        .gateway
        .wait_for_line("SIP health check passed", Duration::from_secs(1))
        .unwrap();
}

/// DTMF pressed on a real phone (baresip, RFC 4733) reaches the conference as telephone-event
/// packets on the gateway's SSRC (Jigasi drops these, jigasi-behaviour.md §1.5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_pressed_on_the_phone_reaches_the_conference() {
    let Some(mut session) = tone_session().await else {
        return;
    };
    let (mut phone, nick) = session.established_dial_in(440).await.unwrap();
    phone.command("sndcode 7").unwrap();
    let started = std::time::Instant::now();
    loop {
        let media = session
            .standin
            .endpoint_media(jigasi_demo::DEMO_ROOM, &nick)
            .await
            .unwrap();
        let events = &media.telephone_events;
        if events.iter().any(|e| e.event.event == 7 && e.event.end) {
            assert!(events.iter().all(|e| e.event.event == 7), "{events:?}");
            // One event: one RTP time; the end packet sent three times (RFC 4733 §2.5.1.4).
            assert!(
                events.iter().all(|e| e.rtp_time == events[0].rtp_time),
                "{events:?}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no DTMF 7 reached the conference: {events:?}\nphone:\n{}\ngateway:\n{}",
            phone.log(),
            session.gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    phone.hangup().unwrap();
}
