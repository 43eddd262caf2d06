//! Real-peer tests of the harness: each starts the actual programs on loopback.
//! Skipped (with a "skipped: ..." line) when a program is missing, unless CI=true.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use jigasi_testpeers::{
    Baresip, BaresipConfig, Kamailio, KamailioConfig, PeerError, Prosody, ProsodyConfig, Sipp,
    audio, available,
};

/// Opens an XMPP stream to `to` and returns everything up to `</stream:features>` (or what
/// arrived before the timeout).
fn stream_features(addr: SocketAddr, ns: &str, to: &str, until: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(
        s,
        "<?xml version='1.0'?><stream:stream to='{to}' xmlns='{ns}' \
         xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if String::from_utf8_lossy(&got).contains(until) {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

const CLIENT_NS: &str = "jabber:client";

#[test]
fn prosody_serves_jitsi_layout_and_restarts() -> Result<(), PeerError> {
    if !available(&["prosody", "prosodyctl", "openssl"]) {
        return Ok(());
    }
    let t0 = Instant::now();
    let mut prosody = Prosody::start(ProsodyConfig::default())?;
    eprintln!("prosody started in {:?}", t0.elapsed());
    assert_eq!(prosody.domain(), "meet.example.com");
    assert_eq!(prosody.auth_domain(), "auth.meet.example.com");
    assert_eq!(prosody.muc_domain(), "conference.meet.example.com");
    assert_eq!(
        prosody.internal_muc_domain(),
        "internal.auth.meet.example.com"
    );
    assert_eq!(
        prosody.brewery_jid(),
        "JigasiBrewery@internal.auth.meet.example.com"
    );
    let c2s = prosody.c2s_addr();
    assert!(c2s.ip().is_loopback());
    assert_ne!(c2s.port(), 5222);

    let auth = stream_features(
        c2s,
        CLIENT_NS,
        "auth.meet.example.com",
        "</stream:features>",
    );
    assert!(
        auth.contains("<mechanism>SCRAM-SHA-1</mechanism>"),
        "{auth}"
    );
    assert!(!auth.contains("ANONYMOUS"), "{auth}");
    assert!(auth.contains("urn:ietf:params:xml:ns:xmpp-tls"), "{auth}");
    let main = stream_features(c2s, CLIENT_NS, "meet.example.com", "</stream:features>");
    assert!(main.contains("<mechanism>ANONYMOUS</mechanism>"), "{main}");
    assert!(!main.contains("SCRAM-SHA-1"), "{main}");

    // The XEP-0114 port answers a component stream for focus.<domain> with a stream id.
    let component = stream_features(
        prosody.component_addr(),
        "jabber:component:accept",
        "focus.meet.example.com",
        " id=",
    );
    assert!(component.contains("jabber:component:accept"), "{component}");
    assert!(
        component.contains("from='focus.meet.example.com'"),
        "{component}"
    );

    // Users: the defaults exist, a new one can be added while running.
    let accounts = prosody
        .dir()
        .join("data/auth%2emeet%2eexample%2ecom/accounts");
    assert!(accounts.join("jigasi.dat").is_file());
    assert!(accounts.join("focus.dat").is_file());
    prosody.register("jvb", "auth.meet.example.com", "jvbpw")?;
    assert!(accounts.join("jvb.dat").is_file());
    assert!(matches!(
        prosody.register("bad user", "auth.meet.example.com", "x"),
        Err(PeerError::InvalidConfig { .. })
    ));

    // Stop: the port closes. Restart: same port, same answers.
    prosody.stop();
    assert!(!prosody.is_running());
    assert!(TcpStream::connect_timeout(&c2s, Duration::from_millis(500)).is_err());
    let t1 = Instant::now();
    prosody.restart()?;
    eprintln!("prosody restarted in {:?}", t1.elapsed());
    assert_eq!(prosody.c2s_addr(), c2s);
    let again = stream_features(
        c2s,
        CLIENT_NS,
        "auth.meet.example.com",
        "</stream:features>",
    );
    assert!(again.contains("SCRAM-SHA-1"), "{again}");
    assert!(prosody.log().contains("Activated service 'c2s'"));
    Ok(())
}

#[test]
fn baresip_registers_with_digest_and_wrong_password_is_refused() -> Result<(), PeerError> {
    if !available(&["kamailio", "baresip"]) {
        return Ok(());
    }
    let t0 = Instant::now();
    let kamailio = Kamailio::start(KamailioConfig::default())?;
    assert_ne!(kamailio.addr().port(), 5060);
    let mut alice = Baresip::start(BaresipConfig::registering(
        "alice",
        "alicepw",
        kamailio.addr(),
    ))?;
    let mut intruder = Baresip::start(BaresipConfig::registering(
        "alice",
        "wrongpw",
        kamailio.addr(),
    ))?;
    alice.wait_registered(Duration::from_secs(5))?;
    eprintln!("alice registered after {:?}", t0.elapsed());
    let reginfo = alice.command("reginfo")?;
    assert!(reginfo.contains("sip:alice@127.0.0.1"), "{reginfo}");

    match intruder.wait_registered(Duration::from_secs(5)) {
        Err(PeerError::RegistrationFailed { reason, .. }) => {
            assert!(reason.contains("401") || reason.contains("403"), "{reason}");
        }
        other => panic!("wrong password must not register: {other:?}"),
    }
    let kam_log = kamailio.log();
    assert!(kam_log.contains("sent 401 challenge"), "{kam_log}");
    assert!(kam_log.contains("AUTH ok for alice"), "{kam_log}");
    assert!(intruder.log().contains("401 Unauthorized"));

    // An unknown command is a typed error, not a hang.
    assert!(matches!(
        alice.command("nosuchcommand"),
        Err(PeerError::CommandFailed { .. }) | Ok(_)
    ));
    drop(intruder);
    drop(alice);
    eprintln!("register test done in {:?}", t0.elapsed());
    Ok(())
}

#[test]
fn call_through_kamailio_carries_a_440_hz_tone() -> Result<(), PeerError> {
    if !available(&["kamailio", "baresip"]) {
        return Ok(());
    }
    let t0 = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let tone = audio::tone_wav(work.path(), 48_000, 440, 10)?;
    let kamailio = Kamailio::start(KamailioConfig::default())?;
    let mut bob = Baresip::start(BaresipConfig {
        auto_answer: true,
        play_wav: Some(tone),
        ..BaresipConfig::registering("bob", "bobpw", kamailio.addr())
    })?;
    let mut alice = Baresip::start(BaresipConfig {
        record: true,
        ..BaresipConfig::registering("alice", "alicepw", kamailio.addr())
    })?;
    bob.wait_registered(Duration::from_secs(5))?;
    alice.wait_registered(Duration::from_secs(5))?;

    alice.dial("sip:bob@127.0.0.1")?;
    let established = alice.wait_event("CALL_ESTABLISHED", Duration::from_secs(5))?;
    assert!(established.contains("sip:bob@127.0.0.1"), "{established}");
    bob.wait_event("CALL_ESTABLISHED", Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_secs(3));
    alice.hangup()?;
    alice.wait_event("CALL_CLOSED", Duration::from_secs(5))?;
    bob.wait_event("CALL_CLOSED", Duration::from_secs(5))?;

    let received = alice.received_recordings();
    assert_eq!(received.len(), 1, "{:?}", alice.recordings());
    let wav = audio::read_wav(&received[0])?;
    assert_eq!(wav.rate, 8000, "PCMU is recorded at 8 kHz");
    assert!(
        wav.duration() > Duration::from_secs(2),
        "{:?}",
        wav.duration()
    );
    let hz = audio::dominant_frequency(&received[0])?;
    assert!((hz - 440.0).abs() <= 10.0, "dominant frequency {hz} Hz");
    // Kamailio relayed the INVITE (record-routed proxy, not a redirect).
    assert!(kamailio.log().contains("REQ INVITE sip:bob@127.0.0.1"));
    drop(alice);
    drop(bob);
    eprintln!("call test done in {:?}", t0.elapsed());
    Ok(())
}

/// A REGISTER with digest auth (UAC side), as in test-peers recipe R2d.
const REG_AUTH: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="REGISTER with digest">
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[service]@[remote_ip]>;tag=[pid]reg[call_number]
      To: <sip:[service]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:[service]@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Expires: 300
      Content-Length: 0
    ]]>
  </send>
  <recv response="401" auth="true"/>
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[service]@[remote_ip]>;tag=[pid]reg[call_number]
      To: <sip:[service]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:[service]@[local_ip]:[local_port];transport=[transport]>
      [authentication]
      Max-Forwards: 70
      Expires: 300
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
</scenario>
"#;

#[test]
fn sipp_register_scenario_passes_only_with_the_right_password() -> Result<(), PeerError> {
    if !available(&["kamailio", "sipp"]) {
        return Ok(());
    }
    let t0 = Instant::now();
    let mut kamailio = Kamailio::start(KamailioConfig::default())?;
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("reg_auth.xml"), REG_AUTH).unwrap();
    let target = kamailio.addr().to_string();
    let run = |password: &str| {
        Sipp::run(
            &[
                "-sf",
                "reg_auth.xml",
                "-s",
                "alice",
                "-au",
                "alice",
                "-ap",
                password,
                "-m",
                "1",
                "-timeout",
                "8",
                &target,
            ],
            work.path(),
            Duration::from_secs(15),
        )
    };
    let good = run("alicepw")?;
    assert!(good.success(), "exit {:?}\n{}", good.code, good.output);
    let bad = run("wrong")?;
    assert!(!bad.success(), "wrong password passed:\n{}", bad.output);
    assert_eq!(bad.code, Some(1), "{}", bad.output);

    // Kamailio restarts on the same port and still authenticates.
    kamailio.restart()?;
    assert_eq!(kamailio.addr().to_string(), target);
    let again = run("alicepw")?;
    assert!(again.success(), "exit {:?}\n{}", again.code, again.output);
    eprintln!("sipp test done in {:?}", t0.elapsed());
    Ok(())
}

#[test]
fn kamailio_tls_listens_on_its_own_port() -> Result<(), PeerError> {
    if !available(&["kamailio", "openssl"]) {
        return Ok(());
    }
    let kamailio = Kamailio::start(KamailioConfig {
        tls: true,
        ..KamailioConfig::default()
    })?;
    let tls = kamailio.tls_addr().unwrap();
    assert_ne!(tls, kamailio.addr());
    assert!(kamailio.tls_certificate().unwrap().is_file());
    // A TLS ClientHello gets a TLS record back (handshake, content type 22).
    let mut s = TcpStream::connect_timeout(&tls, Duration::from_secs(3)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(&minimal_client_hello()).unwrap();
    let mut first = [0u8; 1];
    s.read_exact(&mut first).unwrap();
    assert_eq!(first[0], 22, "expected a TLS handshake record");
    Ok(())
}

/// A TLS 1.2 ClientHello offering common ECDHE/RSA AES-GCM suites.
fn minimal_client_hello() -> Vec<u8> {
    let suites: [u16; 4] = [0xc02f, 0xc030, 0x009c, 0x009d];
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    // extensions: supported_groups (x25519, secp256r1), ec_point_formats,
    // signature_algorithms (rsa_pss_rsae_sha256, rsa_pkcs1_sha256, ecdsa_secp256r1_sha256)
    let ext: Vec<u8> = [
        &[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17][..],
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00],
        &[
            0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x08, 0x04, 0x04, 0x01, 0x04, 0x03,
        ],
    ]
    .concat();
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1u8]; // ClientHello
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![22u8, 0x03, 0x01];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

#[test]
fn speech_wav_is_made_with_espeak_and_sox() -> Result<(), PeerError> {
    if !available(&["espeak-ng", "sox"]) {
        return Ok(());
    }
    let work = tempfile::tempdir().unwrap();
    let wav = audio::speech_wav(work.path(), 16_000)?;
    let audio = audio::read_wav(&wav)?;
    assert_eq!((audio.rate, audio.channels), (16_000, 1));
    assert!(
        audio.duration() > Duration::from_secs(5),
        "{:?}",
        audio.duration()
    );
    assert!(audio::rms(&audio.samples) > 0.01);
    Ok(())
}

#[test]
fn baresip_registers_over_tcp_and_tls() -> Result<(), PeerError> {
    if !available(&["kamailio", "baresip", "openssl"]) {
        return Ok(());
    }
    let kamailio = Kamailio::start(KamailioConfig {
        tls: true,
        ..KamailioConfig::default()
    })?;
    let mut tcp = Baresip::start(BaresipConfig {
        transport: Some("tcp".into()),
        ..BaresipConfig::registering("alice", "alicepw", kamailio.addr())
    })?;
    let mut tls = Baresip::start(BaresipConfig {
        transport: Some("tls".into()),
        ..BaresipConfig::registering("bob", "bobpw", kamailio.tls_addr().unwrap())
    })?;
    tcp.wait_registered(Duration::from_secs(5))?;
    tls.wait_registered(Duration::from_secs(5))?;
    let log = kamailio.log();
    assert!(
        log.contains("REQ REGISTER sip:127.0.0.1;transport=tcp"),
        "{log}"
    );
    assert!(
        log.contains("REQ REGISTER sip:127.0.0.1;transport=tls"),
        "{log}"
    );
    assert!(log.contains("REGISTERED sip:alice@127.0.0.1"), "{log}");
    assert!(log.contains("REGISTERED sip:bob@127.0.0.1"), "{log}");
    Ok(())
}

/// UAS that answers 480 when the INVITE has an `X-Test-Room: room1` header, 403 otherwise.
const UAS_NEEDS_HEADER: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAS that checks a header">
  <recv request="INVITE">
    <action>
      <ereg regexp="room1" search_in="hdr" header="X-Test-Room:" assign_to="room"/>
      <strcmp assign_to="cmp" variable="room" value="room1"/>
      <test assign_to="found" variable="cmp" compare="equal" value="0"/>
    </action>
  </recv>
  <nop hide="true" test="found" next="ok"/>
  <send next="ack">
    <![CDATA[
      SIP/2.0 403 Header Missing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]uas[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <label id="ok"/>
  <send>
    <![CDATA[
      SIP/2.0 480 Temporarily Unavailable
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]uas[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <label id="ack"/>
  <recv request="ACK"/>
</scenario>
"#;

/// UAC from a foreign domain (not challenged) that expects the 480.
const UAC_FOREIGN: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAC expecting 480">
  <send retrans="500">
    <![CDATA[
      INVITE sip:room1@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@other.test>;tag=[pid]uac[call_number]
      To: <sip:room1@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="480"/>
  <send>
    <![CDATA[
      ACK sip:room1@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@other.test>;tag=[pid]uac[call_number]
      To: <sip:room1@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
</scenario>
"#;

#[test]
fn kamailio_extra_route_adds_a_header_to_invites() -> Result<(), PeerError> {
    if !available(&["kamailio", "sipp"]) {
        return Ok(());
    }
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("uas.xml"), UAS_NEEDS_HEADER).unwrap();
    std::fs::write(work.path().join("uac.xml"), UAC_FOREIGN).unwrap();
    let run = |with_header: bool| -> Result<(i32, i32), PeerError> {
        let uas_port = jigasi_testpeers::free_port();
        let header = if with_header {
            "append_hf(\"X-Test-Room: room1\\r\\n\");"
        } else {
            ""
        };
        let kamailio = Kamailio::start(KamailioConfig {
            extra_route: Some(format!(
                "{header} $du = \"sip:127.0.0.1:{uas_port}\"; route(RELAY);"
            )),
            ..KamailioConfig::default()
        })?;
        let uas_port_s = uas_port.to_string();
        let mut uas = Sipp::spawn(
            &[
                "-sf",
                "uas.xml",
                "-p",
                &uas_port_s,
                "-m",
                "1",
                "-timeout",
                "8",
            ],
            work.path(),
        )?;
        std::thread::sleep(Duration::from_millis(300));
        let target = kamailio.addr().to_string();
        let uac = Sipp::run(
            &["-sf", "uac.xml", "-m", "1", "-timeout", "8", &target],
            work.path(),
            Duration::from_secs(10),
        )?;
        let uas = uas.wait(Duration::from_secs(10))?;
        Ok((uac.code.unwrap_or(-1), uas.code.unwrap_or(-1)))
    };
    assert_eq!(run(true)?, (0, 0), "header present: the UAC gets its 480");
    let (uac, uas) = run(false)?;
    assert_eq!(uas, 0);
    assert_eq!(
        uac, 1,
        "without the header the UAS answers 403, which the UAC does not expect"
    );
    Ok(())
}
