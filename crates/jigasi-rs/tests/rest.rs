//! End-to-end tests of the REST API's run-time parts with the real binary, real Prosody, Kamailio,
//! baresip and the stand-in: `/configure/call-control-muc/*` (a second brewery account joins and
//! leaves the real brewery room, and survives a restart with `--configwritable=true`), `/debug`
//! with a running call, and the configurable graceful-shutdown deadline.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use jigasi_demo::{
    BreweryObserver, Deployment, GatewayProcess, READY_LINE, Session, SessionConfig,
};
use jigasi_testpeers::available;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_jigasi-rs");

/// One HTTP/1.1 request with an optional JSON body; returns the status and the body.
async fn http(addr: SocketAddr, method: &str, path: &str, json: Option<&str>) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = json.unwrap_or("");
    let content_type = if json.is_some() {
        "Content-Type: application/json\r\n"
    } else {
        ""
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .unwrap()
    .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Waits until the brewery observer sees a `<stats>` presence from occupant `nick`.
async fn wait_for_occupant(
    observer: &mut BreweryObserver,
    nick: &str,
    gateway: &mut GatewayProcess,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match observer.wait_for_stats(|_| true, left).await {
            Ok((seen, _)) if seen == nick => return,
            Ok(_) => {}
            Err(e) => panic!(
                "{nick} never appeared in the brewery: {e}\n{}",
                gateway.log()
            ),
        }
    }
}

/// Waits until `/about/health` answers 200 (every brewery account joined).
async fn wait_healthy(rest: SocketAddr, gateway: &mut GatewayProcess) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = http(rest, "GET", "/about/health", None).await;
        if status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "health stays {status} {body}\n{}",
            gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_control_muc_accounts_join_leave_and_persist_across_a_restart() {
    if !available(&["prosody", "prosodyctl", "kamailio", "openssl"]) {
        return;
    }
    let mut deployment = Deployment::start().unwrap();
    let prosody = &deployment.prosody;
    let auth = prosody.auth_domain();
    prosody
        .register("jigasi2", &auth, "jigasi2-secret")
        .unwrap();
    let c2s = prosody.c2s_addr();
    let account = serde_json::json!({
        "id": "acc-rest-2",
        "ACCOUNT_UID": format!("Jabber:jigasi2@{auth}"),
        "USER_ID": format!("jigasi2@{auth}"),
        "PASSWORD": "jigasi2-secret",
        "BREWERY": prosody.brewery_jid(),
        "IS_SERVER_OVERRIDDEN": "true",
        "SERVER_ADDRESS": c2s.ip().to_string(),
        "SERVER_PORT": c2s.port(),
        "ALLOW_NON_SECURE": true,
        "RESOURCE": "jigasi-rest2",
        "DOMAIN_BASE": prosody.domain(),
    })
    .to_string();
    let properties_path = deployment.properties_path();
    let original = std::fs::read_to_string(&properties_path).unwrap();
    let rest = deployment.rest_addr();
    let mut args = deployment.gateway_args();
    args.push("--configwritable=true".into());

    let mut gateway = GatewayProcess::spawn(Path::new(BIN), &args, false).unwrap();
    gateway
        .wait_for_line(READY_LINE, Duration::from_secs(20))
        .unwrap();
    let mut observer = BreweryObserver::join(&deployment.prosody).await.unwrap();

    let (status, body) = http(rest, "GET", "/configure/call-control-muc/list", None).await;
    assert_eq!((status, body.as_str()), (200, r#"["acc-xmpp-1"]"#));

    // Add: the new account connects and joins the real brewery room next to the first one.
    let path = "/configure/call-control-muc/add";
    let (status, body) = http(rest, "POST", path, Some(&account)).await;
    assert_eq!(status, 200, "{body}\n{}", gateway.log());
    assert_eq!(json(&body)["result"], "added");
    wait_for_occupant(&mut observer, "jigasi-rest2", &mut gateway).await;
    wait_healthy(rest, &mut gateway).await;
    let (_, body) = http(rest, "GET", "/configure/call-control-muc/list", None).await;
    assert_eq!(body, r#"["acc-xmpp-1","acc-rest-2"]"#);

    // The same id and ACCOUNT_UID again: nothing changes; a broken account names the key.
    let (status, body) = http(rest, "POST", path, Some(&account)).await;
    assert_eq!(
        (status, json(&body)["result"].as_str()),
        (200, Some("unchanged"))
    );
    let (status, body) = http(
        rest,
        "POST",
        path,
        Some(r#"{"id":"acc-rest-3","PASSWORD":"x","BREWERY":"JigasiBrewery@internal.auth.meet.example.com"}"#),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        json(&body)["reason"]
            .as_str()
            .unwrap()
            .contains("acc-rest-3.USER_ID"),
        "{body}"
    );

    // --configwritable=true: the file keeps every line and gains the account, password base64.
    let written = std::fs::read_to_string(&properties_path).unwrap();
    assert!(written.starts_with(&original), "{written}");
    let prefix = "net.java.sip.communicator.impl.protocol.jabber.acc-rest-2";
    assert!(
        written.contains(&format!("{prefix}=acc-rest-2\n")),
        "{written}"
    );
    assert!(
        written.contains(&format!("{prefix}.PASSWORD=amlnYXNpMi1zZWNyZXQ=\n")),
        "{written}"
    );
    assert!(!written.contains("jigasi2-secret"), "{written}");

    // A restarted gateway joins with the saved account.
    let exit = gateway.terminate(Duration::from_secs(10)).unwrap();
    assert!(exit.success(), "{}", gateway.log());
    observer
        .wait_for_leave("jigasi-rest2", Duration::from_secs(10))
        .await
        .unwrap();
    let mut gateway = GatewayProcess::spawn(Path::new(BIN), &args, false).unwrap();
    gateway
        .wait_for_line(READY_LINE, Duration::from_secs(20))
        .unwrap();
    wait_for_occupant(&mut observer, "jigasi-rest2", &mut gateway).await;
    let (_, body) = http(rest, "GET", "/configure/call-control-muc/list", None).await;
    assert_eq!(body, r#"["acc-xmpp-1","acc-rest-2"]"#);

    // Remove: the account leaves the room, the file loses it, a second remove is a 400.
    let remove = "/configure/call-control-muc/remove";
    let (status, body) = http(rest, "POST", remove, Some(r#"{"id":"acc-rest-2"}"#)).await;
    assert_eq!(status, 200, "{body}");
    observer
        .wait_for_leave("jigasi-rest2", Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log()));
    let (_, body) = http(rest, "GET", "/configure/call-control-muc/list", None).await;
    assert_eq!(body, r#"["acc-xmpp-1"]"#);
    assert_eq!(std::fs::read_to_string(&properties_path).unwrap(), original);
    let (status, _) = http(rest, "POST", remove, Some(r#"{"id":"acc-rest-2"}"#)).await;
    assert_eq!(status, 400);
    wait_healthy(rest, &mut gateway).await;

    let exit = gateway.terminate(Duration::from_secs(10)).unwrap();
    assert!(exit.success(), "{}", gateway.log());
    observer.close().await;
    deployment.prosody.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_configwritable_added_accounts_are_not_saved() {
    if !available(&["prosody", "prosodyctl", "kamailio", "openssl"]) {
        return;
    }
    let deployment = Deployment::start().unwrap();
    let prosody = &deployment.prosody;
    let auth = prosody.auth_domain();
    prosody
        .register("jigasi3", &auth, "jigasi3-secret")
        .unwrap();
    let c2s = prosody.c2s_addr();
    let account = serde_json::json!({
        "id": "acc-rest-3",
        "USER_ID": format!("jigasi3@{auth}"),
        "PASSWORD": "jigasi3-secret",
        "BREWERY": prosody.brewery_jid(),
        "IS_SERVER_OVERRIDDEN": "true",
        "SERVER_ADDRESS": c2s.ip().to_string(),
        "SERVER_PORT": c2s.port(),
        "ALLOW_NON_SECURE": "true",
        "RESOURCE": "jigasi-rest3",
    })
    .to_string();
    let original = std::fs::read_to_string(deployment.properties_path()).unwrap();
    let rest = deployment.rest_addr();
    let mut gateway =
        GatewayProcess::spawn(Path::new(BIN), &deployment.gateway_args(), false).unwrap();
    gateway
        .wait_for_line(READY_LINE, Duration::from_secs(20))
        .unwrap();
    let mut observer = BreweryObserver::join(prosody).await.unwrap();
    let (status, body) = http(
        rest,
        "POST",
        "/configure/call-control-muc/add",
        Some(&account),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_for_occupant(&mut observer, "jigasi-rest3", &mut gateway).await;
    gateway
        .wait_for_line("--configwritable is not true", Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(deployment.properties_path()).unwrap(),
        original
    );
    let exit = gateway.terminate(Duration::from_secs(10)).unwrap();
    assert!(exit.success(), "{}", gateway.log());
    observer.close().await;
}

/// The demo session with a 2 s graceful-shutdown deadline.
async fn session_with_short_deadline() -> Option<Session> {
    if !available(&["prosody", "prosodyctl", "kamailio", "baresip", "openssl"]) {
        return None;
    }
    let config = SessionConfig {
        participant: jigasi_standin::AudioSource::Tone(1000.0),
        echo: false,
        capture: false,
        extra_properties: vec!["org.jitsi.jigasi.rs.GRACEFUL_SHUTDOWN_TIMEOUT=2000".into()],
    };
    Some(Session::start(Path::new(BIN), &config).await.unwrap())
}

/// Polls `/debug` until `accept` holds for its sessions; returns them.
async fn wait_for_debug(
    rest: SocketAddr,
    session: &mut Session,
    accept: impl Fn(&serde_json::Map<String, serde_json::Value>) -> bool,
) -> serde_json::Map<String, serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = http(rest, "GET", "/debug", None).await;
        assert_eq!(status, 200, "{body}");
        let sessions = json(&body)["gateways"]["sip"]["sessions"]
            .as_object()
            .cloned()
            .unwrap_or_else(|| panic!("no sessions object: {body}"));
        if accept(&sessions) {
            return sessions;
        }
        assert!(
            Instant::now() < deadline,
            "/debug stays {body}\n{}",
            session.gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_shows_a_running_call_and_the_graceful_deadline_ends_one() {
    let Some(mut session) = session_with_short_deadline().await else {
        return;
    };
    let rest = session.deployment.rest_addr();
    let sessions = wait_for_debug(rest, &mut session, |s| s.is_empty()).await;
    assert!(sessions.is_empty());

    // A running call is listed with Jigasi's keys and ours; it is gone once the phone hangs up.
    let (mut phone, nick) = session.established_dial_in(440).await.unwrap();
    let sessions = wait_for_debug(rest, &mut session, |s| {
        s.values()
            .any(|c| c["sipState"] == "answered" && c["jvbConference"]["nick"] == nick.as_str())
    })
    .await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let call = sessions.values().next().unwrap();
    assert_eq!(
        call["jvbConference"]["meetingUrl"],
        "demo@conference.meet.example.com"
    );
    assert_eq!(call["roomJid"], "demo@conference.meet.example.com");
    assert_eq!(call["direction"], "in");
    assert_eq!(call["codec"], "PCMU/8000");
    assert!(call["callId"].as_u64().is_some(), "{call}");
    assert!(
        call["started"].as_str().is_some_and(|s| s.len() == 23),
        "{call}"
    );
    // Personal data is redacted at the default log level: the caller's URI keeps only its host.
    assert!(
        call["remote"].as_str().unwrap().starts_with("sip:***@"),
        "{call}"
    );
    phone.hangup().unwrap();
    wait_for_debug(rest, &mut session, |s| s.is_empty()).await;
    drop(phone);

    // A dial-out (Rayo dial from the conference) is listed as such; the number is redacted.
    let tone = jigasi_testpeers::audio::tone_wav(&session.work, 48_000, 500, 60).unwrap();
    let mut bob = jigasi_testpeers::Baresip::start(jigasi_testpeers::BaresipConfig {
        auto_answer: true,
        play_wav: Some(tone),
        codecs: "PCMU".into(),
        ..jigasi_testpeers::BaresipConfig::registering(
            "bob",
            "bobpw",
            session.deployment.kamailio.addr(),
        )
    })
    .unwrap();
    bob.wait_registered(Duration::from_secs(5)).unwrap();
    session.standin.dial("demo", "bob", &[]).await.unwrap();
    bob.wait_event("CALL_ESTABLISHED", Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}", session.gateway.log()));
    let sessions = wait_for_debug(rest, &mut session, |s| {
        s.values()
            .any(|c| c["direction"] == "out" && c["sipState"] == "answered")
    })
    .await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let call = sessions.values().next().unwrap();
    assert_eq!(
        call["jvbConference"]["meetingUrl"],
        "demo@conference.meet.example.com"
    );
    assert_eq!(call["codec"], "PCMU/8000");
    assert_eq!(call["remote"], "***", "{call}");
    bob.hangup().unwrap();
    wait_for_debug(rest, &mut session, |s| s.is_empty()).await;
    drop(bob);

    // Graceful shutdown with a call that does not end by itself: hung up after the 2 s deadline.
    let (mut phone, _) = session.established_dial_in(440).await.unwrap();
    let requested = Instant::now();
    let (status, _) = http(rest, "POST", "/about/shutdown", None).await;
    assert_eq!(status, 200);
    assert!(
        phone
            .wait_event("CALL_CLOSED", Duration::from_millis(1500))
            .is_err(),
        "the call was cut before the deadline\n{}",
        session.gateway.log()
    );
    phone
        .wait_event("CALL_CLOSED", Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("{e}\n{}", session.gateway.log()));
    let ended_after = requested.elapsed();
    assert!(
        ended_after >= Duration::from_secs(2) && ended_after < Duration::from_secs(15),
        "{ended_after:?}"
    );
    let exit = session.gateway.wait(Duration::from_secs(15)).unwrap();
    assert!(exit.success(), "{}", session.gateway.log());
    assert!(
        session
            .gateway
            .log()
            .contains("graceful shutdown deadline reached"),
        "{}",
        session.gateway.log()
    );
}
