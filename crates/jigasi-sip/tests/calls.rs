//! Calls against real SIP peers: SIPp as caller and callee, Kamailio as authenticating proxy.
//!
//! Every test writes its SIPp scenario to a temporary directory, runs SIPp against the gateway
//! on free loopback ports and checks both sides: SIPp's exit code (it fails on any unexpected
//! message or failed regexp check) and the events the app saw.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// A test fails on any event other than the one it expects; listing them all adds nothing.
#![allow(clippy::wildcard_enum_match_arm)]

use std::future::Future;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jigasi_sip::{
    AccountOptions, CallError, CallEvent, DialRequest, HangupReason, IncomingCall, ModifyMethod,
    Registrar, RegistrationConfig, SipEndpoint, SipOptions, StackTimers, Termination, Transport,
};
use jigasi_testpeers::{Kamailio, KamailioConfig, Sipp, SippOutcome, available, sip_options};
use jigasi_types::Secret;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const ANSWER_SDP: &str = "v=0\r\no=jigasi 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";

fn sdp_with(direction: &str) -> Vec<u8> {
    ANSWER_SDP.replace("a=sendrecv", direction).into_bytes()
}

fn options(account: Option<AccountOptions>) -> SipOptions {
    SipOptions {
        bind: "127.0.0.1:0".parse().unwrap(),
        public_address: None,
        tls: None,
        tls_client: jigasi_sip::TlsClientOptions::default(),
        user_agent: "jigasi-rs-test".into(),
        account,
    }
}

/// The gateway's account at Kamailio (digest user jigasi/secret, domain 127.0.0.1).
fn kamailio_account(kamailio: SocketAddr) -> AccountOptions {
    AccountOptions {
        user: "jigasi".into(),
        domain: "127.0.0.1".into(),
        password: Some(Secret::new("secret".into())),
        auth_username: None,
        registrar: Some(Registrar {
            host: kamailio.ip().to_string(),
            port: kamailio.port(),
            transport: Transport::Udp,
        }),
        registration: RegistrationConfig::default(),
        keep_alive: jigasi_sip::KeepAliveConfig::default(),
    }
}

async fn gateway(timers: StackTimers) -> (SipEndpoint, mpsc::Receiver<IncomingCall>) {
    let mut endpoint = SipEndpoint::start_with(options(None), timers)
        .await
        .unwrap();
    let calls = endpoint.incoming_calls().unwrap();
    assert!(endpoint.incoming_calls().is_none(), "taken only once");
    (endpoint, calls)
}

struct Scenario {
    dir: tempfile::TempDir,
}

impl Scenario {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, body: &str) -> PathBuf {
        // SIPp refuses variables assigned but never read: mark the regexp results as used.
        let variables: Vec<&str> = body
            .split("assign_to=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .flat_map(|names| names.split(','))
            .collect();
        let body = if variables.is_empty() {
            body.to_owned()
        } else {
            format!(
                "{body}\n  <Reference variables=\"{}\"/>",
                variables.join(",")
            )
        };
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n\
             <!DOCTYPE scenario SYSTEM \"sipp.dtd\">\n\
             <scenario name=\"{name}\">\n{body}\n</scenario>\n"
        );
        let path = self.dir.path().join(format!("{name}.xml"));
        std::fs::write(&path, xml).unwrap();
        path
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// SIPp running in the background.
struct Peer {
    running: Option<JoinHandle<SippOutcome>>,
    outcome: Option<SippOutcome>,
}

impl Peer {
    /// Waits for SIPp to exit.
    async fn finish(mut self) -> SippOutcome {
        match (self.outcome.take(), self.running.take()) {
            (Some(outcome), _) => outcome,
            (None, Some(running)) => running.await.unwrap(),
            (None, None) => unreachable!("a peer is either running or done"),
        }
    }

    /// Polls SIPp alongside `wait`; if `wait` times out, fails with SIPp's output.
    async fn during<T>(&mut self, what: &str, wait: impl Future<Output = Option<T>>) -> T {
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(wait, deadline);
        loop {
            let running = async {
                match self.running.as_mut() {
                    Some(handle) => handle.await.unwrap(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                value = &mut wait => return value.unwrap_or_else(|| panic!("{what}: channel closed")),
                outcome = running => {
                    self.running = None;
                    self.outcome = Some(outcome);
                }
                () = &mut deadline => {
                    let output = self.outcome.as_ref().map_or("(still running)".to_owned(), |o| o.output.clone());
                    panic!("no {what} in time; sipp:\n{output}");
                }
            }
        }
    }
}

/// Runs SIPp in the background.
fn run_sipp(dir: &Path, args: Vec<String>) -> Peer {
    let dir = dir.to_owned();
    Peer {
        running: Some(tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Sipp::run(&args, &dir, Duration::from_secs(20)).unwrap()
        })),
        outcome: None,
    }
}

/// SIPp as a UAC calling the gateway once with `scenario`.
fn call_gateway(scenario: &Scenario, xml: &Path, gateway: SocketAddr, extra: &[&str]) -> Peer {
    let mut args = vec![
        "-sf".to_owned(),
        xml.display().to_string(),
        "-s".to_owned(),
        "jigasi".to_owned(),
        "-m".to_owned(),
        "1".to_owned(),
        "-timeout".to_owned(),
        "15".to_owned(),
        "-timeout_error".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push(gateway.to_string());
    run_sipp(scenario.path(), args)
}

fn assert_sipp_ok(outcome: &SippOutcome) {
    assert!(
        outcome.success(),
        "sipp failed ({:?}):\n{}",
        outcome.code,
        outcome.output
    );
}

/// The next inbound call; fails with SIPp's output if none comes.
async fn next_call(calls: &mut mpsc::Receiver<IncomingCall>, sipp: &mut Peer) -> IncomingCall {
    sipp.during("INVITE", calls.recv()).await
}

/// The next event of a call; fails with SIPp's output if none comes.
async fn next_event(events: &mut mpsc::Receiver<CallEvent>, sipp: &mut Peer) -> CallEvent {
    sipp.during("call event", events.recv()).await
}

/// After the terminal event nothing else comes, and the endpoint forgets the call.
async fn assert_call_gone(endpoint: &SipEndpoint, events: &mut mpsc::Receiver<CallEvent>) {
    let rest = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .expect("events channel stayed open after the terminal event");
    assert!(rest.is_none(), "event after the terminal one: {rest:?}");
    let mut active = endpoint.active_calls();
    tokio::time::timeout(Duration::from_secs(2), active.wait_for(|n| *n == 0))
        .await
        .expect("the call stayed in the endpoint")
        .unwrap();
}

const INVITE: &str = r#"
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "SIPp Caller" <sip:sipp@other.test>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Jitsi-Conference-Room: room1@conference.example.com
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
"#;

/// 100 and 180 must come at once (within 500 ms), the 200 later.
const RINGING_THEN_200: &str = r#"
  <recv response="100" timeout="500"/>
  <recv response="180" timeout="500"/>
  <recv response="200" rtd="true" rrs="true" timeout="8000">
    <action>
      <ereg regexp="a=sendrecv" search_in="body" check_it="true" assign_to="dummy1"/>
    </action>
  </recv>
"#;

fn in_dialog(method: &str, cseq: u32, extra: &str, body: &str) -> String {
    let content = if body.is_empty() {
        "Content-Length: 0".to_owned()
    } else {
        format!("{extra}Content-Length: [len]\n\n{body}")
    };
    let extra_headers = if body.is_empty() { extra } else { "" };
    format!(
        r#"
  <send retrans="500">
    <![CDATA[
      {method} [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "SIPp Caller" <sip:sipp@other.test>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      [routes]
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      {extra_headers}{content}
    ]]>
  </send>
"#
    )
}

fn ack(cseq: u32) -> String {
    format!(
        r#"
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "SIPp Caller" <sip:sipp@other.test>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      [routes]
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"#
    )
}

fn bye(cseq: u32) -> String {
    in_dialog(
        "BYE",
        cseq,
        "Reason: Q.850;cause=16;text=\"Normal call clearing\"\n      ",
        "",
    ) + "\n  <recv response=\"200\"/>\n"
}

/// Answers the INVITE after about a second, as Jigasi does once the conference is joined.
async fn answer_after_a_second(call: &IncomingCall) {
    tokio::time::sleep(Duration::from_millis(1000)).await;
    call.control.answer(sdp_with("a=sendrecv")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_call_answered_then_caller_hangs_up() {
    if !available(&["sipp"]) {
        return;
    }
    let (endpoint, mut calls) = gateway(StackTimers::default()).await;
    let scenario = Scenario::new();
    let xml = scenario.write(
        "inbound",
        &format!(
            "{INVITE}{RINGING_THEN_200}{}<pause milliseconds=\"300\"/>{}",
            ack(1),
            bye(2)
        ),
    );
    let mut sipp = call_gateway(&scenario, &xml, endpoint.local_addr(), &[]);

    let mut call = next_call(&mut calls, &mut sipp).await;
    assert_eq!(
        call.header("jitsi-conference-room"),
        Some("room1@conference.example.com")
    );
    assert_eq!(call.from.display_name.as_deref(), Some("SIPp Caller"));
    assert_eq!(call.from.uri, "sip:sipp@other.test");
    assert!(call.request_uri.starts_with("sip:jigasi@127.0.0.1"));
    assert_eq!(call.transport, Transport::Udp);
    assert!(call.remote_addr.is_some_and(|a| a.ip().is_loopback()));
    let offer = String::from_utf8(call.offer.clone().unwrap()).unwrap();
    assert!(offer.contains("m=audio"), "{offer}");
    answer_after_a_second(&call).await;

    assert!(matches!(
        next_event(&mut call.events, &mut sipp).await,
        CallEvent::Confirmed
    ));
    match next_event(&mut call.events, &mut sipp).await {
        CallEvent::RemoteHangup { reason } => assert_eq!(
            reason.as_deref(),
            Some("Q.850;cause=16;text=\"Normal call clearing\"")
        ),
        other => panic!("expected RemoteHangup, got {other:?}"),
    }
    assert_call_gone(&endpoint, &mut call.events).await;
    assert_eq!(
        call.control.hangup(HangupReason::Unspecified).await,
        Err(CallError::Ended)
    );
    assert_sipp_ok(&sipp.finish().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_cancels_before_the_answer() {
    if !available(&["sipp"]) {
        return;
    }
    let (endpoint, mut calls) = gateway(StackTimers::default()).await;
    let scenario = Scenario::new();
    // The CANCEL reuses the INVITE's Via (echoed in the 180), as RFC 3261 §9.1 requires.
    let body = format!(
        r#"{INVITE}
  <recv response="100" timeout="500"/>
  <recv response="180" timeout="500"/>
  <pause milliseconds="500"/>
  <send>
    <![CDATA[
      CANCEL sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: "SIPp Caller" <sip:sipp@other.test>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 CANCEL
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
  <recv response="487"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: "SIPp Caller" <sip:sipp@other.test>;tag=[pid]SIPpTag09[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"#
    );
    let xml = scenario.write("cancel", &body);
    let mut sipp = call_gateway(&scenario, &xml, endpoint.local_addr(), &[]);

    let mut call = next_call(&mut calls, &mut sipp).await;
    assert!(matches!(
        next_event(&mut call.events, &mut sipp).await,
        CallEvent::Cancelled
    ));
    // Too late to answer now.
    assert!(call.control.answer(sdp_with("a=sendrecv")).await.is_err());
    assert_call_gone(&endpoint, &mut call.events).await;
    assert_sipp_ok(&sipp.finish().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_and_resume_by_reinvite() {
    if !available(&["sipp"]) {
        return;
    }
    let (endpoint, mut calls) = gateway(StackTimers::default()).await;
    let scenario = Scenario::new();
    let offer = |direction: &str| {
        format!(
            "v=0\n      o=user1 53655765 2353687638 IN IP[local_ip_type] [local_ip]\n      s=-\n      c=IN IP[local_ip_type] [local_ip]\n      t=0 0\n      m=audio [media_port] RTP/AVP 0\n      a=rtpmap:0 PCMU/8000\n      {direction}"
        )
    };
    let check = |direction: &str| {
        format!(
            r#"  <recv response="200" timeout="5000">
    <action><ereg regexp="{direction}" search_in="body" check_it="true" assign_to="dummy2"/></action>
  </recv>
"#
        )
    };
    let body = format!(
        "{INVITE}{RINGING_THEN_200}{ack1}{hold}{check_hold}{ack2}<pause milliseconds=\"200\"/>{resume}{check_resume}{ack3}{update}{check_update}{bye}",
        ack1 = ack(1),
        hold = in_dialog(
            "INVITE",
            2,
            "Content-Type: application/sdp\n      ",
            &offer("a=sendonly")
        ),
        check_hold = check("a=recvonly"),
        ack2 = ack(2),
        resume = in_dialog(
            "INVITE",
            3,
            "Content-Type: application/sdp\n      ",
            &offer("a=sendrecv")
        ),
        check_resume = check("a=sendrecv"),
        ack3 = ack(3),
        update = in_dialog(
            "UPDATE",
            4,
            "Content-Type: application/sdp\n      ",
            &offer("a=inactive")
        ),
        check_update = check("a=inactive"),
        bye = bye(5),
    );
    let xml = scenario.write("hold", &body);
    let mut sipp = call_gateway(&scenario, &xml, endpoint.local_addr(), &[]);

    let mut call = next_call(&mut calls, &mut sipp).await;
    call.control.answer(sdp_with("a=sendrecv")).await.unwrap();
    assert!(matches!(
        next_event(&mut call.events, &mut sipp).await,
        CallEvent::Confirmed
    ));
    let mut seen = Vec::new();
    loop {
        match next_event(&mut call.events, &mut sipp).await {
            CallEvent::ReInvite {
                method,
                offer,
                responder,
            } => {
                let offer = String::from_utf8(offer.unwrap()).unwrap();
                // Mirror the direction, as Jigasi does.
                let answer = if offer.contains("a=sendonly") {
                    "a=recvonly"
                } else if offer.contains("a=inactive") {
                    "a=inactive"
                } else {
                    "a=sendrecv"
                };
                seen.push((method, answer));
                responder.accept(sdp_with(answer)).await.unwrap();
            }
            CallEvent::RemoteHangup { .. } => break,
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            (ModifyMethod::ReInvite, "a=recvonly"),
            (ModifyMethod::ReInvite, "a=sendrecv"),
            (ModifyMethod::Update, "a=inactive"),
        ]
    );
    assert_call_gone(&endpoint, &mut call.events).await;
    assert_sipp_ok(&sipp.finish().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_requests_are_delivered_and_answered() {
    if !available(&["sipp"]) {
        return;
    }
    let (endpoint, mut calls) = gateway(StackTimers::default()).await;
    let scenario = Scenario::new();
    let ok = "  <recv response=\"200\" timeout=\"3000\"/>\n";
    let body = format!(
        "{INVITE}{RINGING_THEN_200}{ack1}{dtmf}{ok}{json}{ok}{empty}{ok}{bye}",
        ack1 = ack(1),
        dtmf = in_dialog(
            "INFO",
            2,
            "Content-Type: application/dtmf-relay\n      ",
            "Signal=5\n      Duration=250"
        ),
        json = in_dialog(
            "INFO",
            3,
            "Content-Type: application/json\n      ",
            "{\"type\":\"muteRequest\",\"id\":1}"
        ),
        empty = in_dialog("INFO", 4, "", ""),
        bye = bye(5),
    );
    let xml = scenario.write("info", &body);
    let mut sipp = call_gateway(&scenario, &xml, endpoint.local_addr(), &[]);

    let mut call = next_call(&mut calls, &mut sipp).await;
    call.control.answer(sdp_with("a=sendrecv")).await.unwrap();
    assert!(matches!(
        next_event(&mut call.events, &mut sipp).await,
        CallEvent::Confirmed
    ));
    let mut infos = Vec::new();
    loop {
        match next_event(&mut call.events, &mut sipp).await {
            CallEvent::Info { content_type, body } => {
                infos.push((content_type, String::from_utf8(body).unwrap()));
            }
            CallEvent::RemoteHangup { .. } => break,
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(infos.len(), 3, "{infos:?}");
    assert_eq!(infos[0].0.as_deref(), Some("application/dtmf-relay"));
    assert!(
        infos[0].1.starts_with("Signal=5\r\nDuration=250"),
        "{:?}",
        infos[0].1
    );
    assert_eq!(infos[1].0.as_deref(), Some("application/json"));
    assert!(
        infos[1]
            .1
            .starts_with("{\"type\":\"muteRequest\",\"id\":1}")
    );
    assert_eq!(infos[2], (None, String::new()));
    assert_call_gone(&endpoint, &mut call.events).await;
    assert_sipp_ok(&sipp.finish().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_hangs_up_with_a_reason_header() {
    if !available(&["sipp"]) {
        return;
    }
    let (endpoint, mut calls) = gateway(StackTimers::default()).await;
    let scenario = Scenario::new();
    let body = format!(
        r#"{INVITE}{RINGING_THEN_200}{ack1}
  <recv request="INFO" timeout="5000">
    <action>
      <ereg regexp="Signal=7" search_in="body" check_it="true" assign_to="dummy3"/>
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
  <recv request="BYE" timeout="5000">
    <action>
      <ereg regexp="^ ?SIP;cause=408;text=.No invite from conference focus.$" search_in="hdr" header="Reason:" check_it="true" assign_to="dummy4"/>
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
"#,
        ack1 = ack(1)
    );
    let xml = scenario.write("hangup", &body);
    let mut sipp = call_gateway(&scenario, &xml, endpoint.local_addr(), &[]);

    let mut call = next_call(&mut calls, &mut sipp).await;
    // INFO before the answer is refused.
    assert_eq!(
        call.control
            .send_info("application/dtmf-relay", b"Signal=1\r\n".to_vec())
            .await,
        Err(CallError::NotEstablished)
    );
    call.control.answer(sdp_with("a=sendrecv")).await.unwrap();
    assert!(matches!(
        next_event(&mut call.events, &mut sipp).await,
        CallEvent::Confirmed
    ));
    let status = call
        .control
        .send_info(
            "application/dtmf-relay",
            b"Signal=7\r\nDuration=250\r\n".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    call.control
        .hangup(HangupReason::Sip {
            cause: 408,
            text: Some("No invite from conference focus".into()),
        })
        .await
        .unwrap();
    match next_event(&mut call.events, &mut sipp).await {
        CallEvent::Terminated { why } => assert_eq!(why, Termination::LocalHangup),
        other => panic!("expected Terminated, got {other:?}"),
    }
    assert_call_gone(&endpoint, &mut call.events).await;
    assert_sipp_ok(&sipp.finish().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_rejects_a_ringing_call() {
    if !available(&["sipp"]) {
        return;
    }
    let (endpoint, mut calls) = gateway(StackTimers::default()).await;
    let scenario = Scenario::new();
    let body = format!(
        r#"{INVITE}
  <recv response="100" timeout="500"/>
  <recv response="180" timeout="500"/>
  <recv response="486" timeout="5000">
    <action>
      <ereg regexp="Q.850;cause=17" search_in="hdr" header="Reason:" check_it="true" assign_to="dummy5"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: "SIPp Caller" <sip:sipp@other.test>;tag=[pid]SIPpTag09[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"#
    );
    let xml = scenario.write("reject", &body);
    let mut sipp = call_gateway(&scenario, &xml, endpoint.local_addr(), &[]);

    let mut call = next_call(&mut calls, &mut sipp).await;
    assert_eq!(
        call.control.reject(200, HangupReason::Unspecified).await,
        Err(CallError::InvalidStatus(200))
    );
    call.control
        .reject(
            486,
            HangupReason::Q850 {
                cause: 17,
                text: None,
            },
        )
        .await
        .unwrap();
    match next_event(&mut call.events, &mut sipp).await {
        CallEvent::Terminated { why } => assert_eq!(why, Termination::Rejected),
        other => panic!("expected Terminated, got {other:?}"),
    }
    assert_call_gone(&endpoint, &mut call.events).await;
    assert_sipp_ok(&sipp.finish().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_that_never_acks_is_hung_up() {
    if !available(&["sipp"]) {
        return;
    }
    // T1 = 50 ms: the 200 is given up after 64*T1 = 3.2 s instead of 32 s.
    let (endpoint, mut calls) = gateway(StackTimers {
        t1: Duration::from_millis(50),
    })
    .await;
    let scenario = Scenario::new();
    let body = format!(
        r#"{INVITE}{RINGING_THEN_200}
  <recv request="BYE" timeout="10000"/>
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
"#
    );
    let xml = scenario.write("noack", &body);
    let mut sipp = call_gateway(&scenario, &xml, endpoint.local_addr(), &[]);

    let mut call = next_call(&mut calls, &mut sipp).await;
    let answered = Instant::now();
    call.control.answer(sdp_with("a=sendrecv")).await.unwrap();
    match next_event(&mut call.events, &mut sipp).await {
        CallEvent::Terminated { why } => assert_eq!(why, Termination::AckTimeout),
        other => panic!("expected Terminated(AckTimeout), got {other:?}"),
    }
    let waited = answered.elapsed();
    assert!(
        waited >= Duration::from_millis(3000),
        "gave up after {waited:?}"
    );
    assert_call_gone(&endpoint, &mut call.events).await;
    assert_sipp_ok(&sipp.finish().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_call_over_tcp_gets_a_tcp_contact() {
    if !available(&["sipp"]) {
        return;
    }
    let (endpoint, mut calls) = gateway(StackTimers::default()).await;
    let scenario = Scenario::new();
    let body = format!(
        r#"{INVITE}
  <recv response="100" timeout="500"/>
  <recv response="180" timeout="500"/>
  <recv response="200" rrs="true" timeout="5000">
    <action>
      <ereg regexp="transport=(tcp|TCP)" search_in="hdr" header="Contact:" check_it="true" assign_to="dummy6"/>
    </action>
  </recv>
  {ack1}<pause milliseconds="200"/>{bye}"#,
        ack1 = ack(1),
        bye = bye(2)
    );
    let xml = scenario.write("tcp", &body);
    let mut sipp = call_gateway(&scenario, &xml, endpoint.local_addr(), &["-t", "t1"]);

    let mut call = next_call(&mut calls, &mut sipp).await;
    assert_eq!(call.transport, Transport::Tcp);
    call.control.answer(sdp_with("a=sendrecv")).await.unwrap();
    assert!(matches!(
        next_event(&mut call.events, &mut sipp).await,
        CallEvent::Confirmed
    ));
    assert!(matches!(
        next_event(&mut call.events, &mut sipp).await,
        CallEvent::RemoteHangup { .. }
    ));
    assert_call_gone(&endpoint, &mut call.events).await;
    assert_sipp_ok(&sipp.finish().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_at_the_listener_does_not_disturb_a_call() {
    if !available(&["sipp"]) {
        return;
    }
    let (endpoint, mut calls) = gateway(StackTimers::default()).await;
    let scenario = Scenario::new();
    let body = format!(
        "{INVITE}{RINGING_THEN_200}{}<pause milliseconds=\"2500\"/>{}",
        ack(1),
        bye(2)
    );
    let xml = scenario.write("junk", &body);
    let mut sipp = call_gateway(&scenario, &xml, endpoint.local_addr(), &[]);

    let mut call = next_call(&mut calls, &mut sipp).await;
    call.control.answer(sdp_with("a=sendrecv")).await.unwrap();
    assert!(matches!(
        next_event(&mut call.events, &mut sipp).await,
        CallEvent::Confirmed
    ));

    let target = endpoint.local_addr();
    let junk = tokio::task::spawn_blocking(move || {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut garbage = vec![0u8; 1500];
        for (i, b) in garbage.iter_mut().enumerate() {
            *b = (i * 7 + 13) as u8;
        }
        udp.send_to(&garbage, target).unwrap();
        udp.send_to(b"INVITE sip:x SIP/2.0\r\n\r\n", target).unwrap();
        udp.send_to(b"\r\n\r\n", target).unwrap();
        // Bigger than the stack's 8 KiB buffer: would be truncated into another message.
        let mut big = b"OPTIONS sip:jigasi@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbig\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:jigasi@127.0.0.1>\r\nCall-ID: big@x\r\nCSeq: 1 OPTIONS\r\nX-Pad: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 20_000));
        big.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
        udp.send_to(&big, target).unwrap();
        udp.send_to(&vec![b'Z'; 60_000], target).unwrap();
        // A half-open TCP connection with half a request, kept open, and one with garbage.
        let mut half = TcpStream::connect(target).unwrap();
        std::io::Write::write_all(&mut half, b"INVITE sip:jigasi@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;bra").unwrap();
        let mut noise = TcpStream::connect(target).unwrap();
        std::io::Write::write_all(&mut noise, &garbage).unwrap();
        drop(noise);
        // The listener still answers a well-formed probe.
        let status = sip_options(target, "sip:jigasi@127.0.0.1").unwrap();
        (half, status)
    })
    .await
    .unwrap();
    assert_eq!(junk.1, 200, "OPTIONS after the junk");

    match next_event(&mut call.events, &mut sipp).await {
        CallEvent::RemoteHangup { .. } => {}
        other => panic!("the call was disturbed: {other:?}"),
    }
    drop(junk.0);
    assert_call_gone(&endpoint, &mut call.events).await;
    assert_sipp_ok(&sipp.finish().await);
}

#[tokio::test]
async fn invites_get_480_until_the_app_takes_calls() {
    if !available(&["sipp"]) {
        return;
    }
    let endpoint = SipEndpoint::start(options(None)).await.unwrap();
    let scenario = Scenario::new();
    let body = format!(
        r#"{INVITE}
  <recv response="100" optional="true"/>
  <recv response="480" timeout="3000"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: "SIPp Caller" <sip:sipp@other.test>;tag=[pid]SIPpTag09[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"#
    );
    let xml = scenario.write("noapp", &body);
    let outcome = call_gateway(&scenario, &xml, endpoint.local_addr(), &[])
        .finish()
        .await;
    assert_sipp_ok(&outcome);
}

// ---------------------------------------------------------------------------------------------
// Outbound calls.

/// A SIPp UAS on a free port: receives the INVITE (checking `checks`), then plays `rest`.
fn uas(scenario: &Scenario, name: &str, checks: &str, rest: &str) -> (u16, Peer) {
    uas_with(scenario, name, checks, rest, &[])
}

/// [`uas`] with extra SIPp arguments (e.g. `-t t1` for TCP).
fn uas_with(
    scenario: &Scenario,
    name: &str,
    checks: &str,
    rest: &str,
    extra: &[&str],
) -> (u16, Peer) {
    let port = jigasi_testpeers::free_port();
    let body = format!(
        r#"
  <recv request="INVITE">
    <action>
      {checks}
    </action>
  </recv>
{rest}"#
    );
    let xml = scenario.write(name, &body);
    let args = vec![
        "-sf".to_owned(),
        xml.display().to_string(),
        "-p".to_owned(),
        port.to_string(),
        "-m".to_owned(),
        "1".to_owned(),
        "-timeout".to_owned(),
        "15".to_owned(),
        "-timeout_error".to_owned(),
    ];
    let args = args
        .into_iter()
        .chain(extra.iter().map(|s| (*s).to_owned()))
        .collect();
    (port, run_sipp(scenario.path(), args))
}

fn response(status: &str, extra: &str, sdp: bool) -> String {
    let body = if sdp {
        "Content-Type: application/sdp\n      Content-Length: [len]\n\n      v=0\n      o=uas 1 1 IN IP4 [local_ip]\n      s=-\n      c=IN IP4 [local_ip]\n      t=0 0\n      m=audio [media_port] RTP/AVP 0\n      a=rtpmap:0 PCMU/8000\n      a=sendrecv"
    } else {
        "Content-Length: 0"
    };
    format!(
        r#"
  <send>
    <![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:uas@[local_ip]:[local_port];transport=[transport]>
      {extra}{body}
    ]]>
  </send>
"#
    )
}

const OK_TO_BYE: &str = r#"
  <recv request="BYE" timeout="5000">
    <action>
      <ereg regexp="Q.850;cause=16" search_in="hdr" header="Reason:" check_it="true" assign_to="dummy7"/>
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
"#;

async fn expect_answer(events: &mut mpsc::Receiver<CallEvent>, sipp: &mut Peer) -> Vec<u8> {
    loop {
        match next_event(events, sipp).await {
            CallEvent::Provisional { status, .. } => assert!((180..200).contains(&status)),
            CallEvent::Answered { sdp } => return sdp.expect("the 200 had SDP"),
            other => panic!("expected the answer, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_call_through_kamailio_with_digest_and_extra_headers() {
    if !available(&["sipp", "kamailio"]) {
        return;
    }
    let scenario = Scenario::new();
    // The extra headers arrive, in the order given.
    let checks = r#"<ereg regexp="Jitsi-Conference-Room: room1@conference.example.com.*JvbRoomPassword: pw.*X-Third: 3" search_in="msg" check_it="true" assign_to="dummy8"/>
      <ereg regexp="CSeq: 2 INVITE" search_in="msg" check_it="true" assign_to="dummy9"/>"#;
    let rest = format!(
        "{}<pause milliseconds=\"300\"/>{}  <recv request=\"ACK\" timeout=\"5000\"/>\n{OK_TO_BYE}",
        response("180 Ringing", "", false),
        response("200 OK", "", true)
    );
    let (uas_port, mut sipp) = uas(&scenario, "uas", checks, &rest);
    let kamailio = Kamailio::start(KamailioConfig {
        extra_route: Some(format!("$du = \"sip:127.0.0.1:{uas_port}\"; route(RELAY);")),
        ..KamailioConfig::default()
    })
    .unwrap();
    let endpoint = SipEndpoint::start(options(Some(kamailio_account(kamailio.addr()))))
        .await
        .unwrap();

    let mut call = endpoint
        .dial(DialRequest {
            request_uri: "sip:uas@127.0.0.1".into(),
            from: None,
            display_name: Some("Jigasi".into()),
            headers: vec![
                (
                    "Jitsi-Conference-Room".into(),
                    "room1@conference.example.com".into(),
                ),
                ("JvbRoomPassword".into(), "pw".into()),
                ("X-Third".into(), "3".into()),
            ],
            offer: sdp_with("a=sendrecv"),
        })
        .await
        .unwrap();
    assert!(
        !call.call_id.as_str().ends_with("restsend.com"),
        "{}",
        call.call_id
    );
    let answer = String::from_utf8(expect_answer(&mut call.events, &mut sipp).await).unwrap();
    assert!(answer.contains("o=uas"), "{answer}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    call.control
        .hangup(HangupReason::Q850 {
            cause: 16,
            text: Some("Normal call clearing".into()),
        })
        .await
        .unwrap();
    match next_event(&mut call.events, &mut sipp).await {
        CallEvent::Terminated { why } => assert_eq!(why, Termination::LocalHangup),
        other => panic!("expected Terminated, got {other:?}"),
    }
    assert_call_gone(&endpoint, &mut call.events).await;
    let outcome = sipp.finish().await;
    assert!(
        outcome.success(),
        "sipp: {}\nkamailio:\n{}",
        outcome.output,
        kamailio.log()
    );
    // Kamailio challenged the INVITE and accepted our digest answer (it strips the
    // Proxy-Authorization before relaying; the UAS saw the retried INVITE, CSeq 2).
    let log = kamailio.log();
    assert!(
        log.contains("sent 407 challenge to INVITE"),
        "no 407 challenge:\n{log}"
    );
    assert!(
        log.contains("AUTH ok for jigasi (INVITE)"),
        "digest refused:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_call_cancelled_before_the_answer() {
    if !available(&["sipp"]) {
        return;
    }
    let scenario = Scenario::new();
    let checks = r#"<ereg regexp="CSeq: ([0-9]+) INVITE" search_in="msg" check_it="true" assign_to="dummy10,invite_cseq"/>"#;
    let rest = format!(
        r#"{ringing}
  <recv request="CANCEL" timeout="5000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [$invite_cseq] INVITE
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK" timeout="5000"/>
"#,
        ringing = response("180 Ringing", "", false)
    );
    let (uas_port, mut sipp) = uas(&scenario, "uas-cancel", checks, &rest);
    let endpoint = SipEndpoint::start(options(None)).await.unwrap();
    let mut call = endpoint
        .dial(DialRequest {
            request_uri: format!("sip:uas@127.0.0.1:{uas_port}"),
            from: Some("sip:jigasi@127.0.0.1".into()),
            display_name: None,
            headers: vec![],
            offer: sdp_with("a=sendrecv"),
        })
        .await
        .unwrap();
    match next_event(&mut call.events, &mut sipp).await {
        CallEvent::Provisional {
            status,
            reason,
            sdp,
        } => {
            assert_eq!((status, reason.as_str(), sdp), (180, "Ringing", None));
        }
        other => panic!("expected 180, got {other:?}"),
    }
    call.control
        .hangup(HangupReason::Unspecified)
        .await
        .unwrap();
    match next_event(&mut call.events, &mut sipp).await {
        CallEvent::Terminated { why } => assert_eq!(why, Termination::LocalHangup),
        other => panic!("expected Terminated, got {other:?}"),
    }
    assert_call_gone(&endpoint, &mut call.events).await;
    assert_sipp_ok(&sipp.finish().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_call_refused_busy() {
    if !available(&["sipp"]) {
        return;
    }
    let scenario = Scenario::new();
    let rest = format!(
        "{}  <recv request=\"ACK\" timeout=\"5000\"/>\n",
        response("486 Busy Here", "", false)
    );
    let (uas_port, mut sipp) = uas(&scenario, "uas-busy", "", &rest);
    let endpoint = SipEndpoint::start(options(None)).await.unwrap();
    let mut call = endpoint
        .dial(DialRequest {
            request_uri: format!("sip:uas@127.0.0.1:{uas_port}"),
            from: None,
            display_name: None,
            headers: vec![],
            offer: sdp_with("a=sendrecv"),
        })
        .await
        .unwrap();
    match next_event(&mut call.events, &mut sipp).await {
        CallEvent::Failed { status, reason } => {
            assert_eq!((status, reason.as_str()), (486, "Busy Here"));
        }
        other => panic!("expected Failed(486), got {other:?}"),
    }
    assert_call_gone(&endpoint, &mut call.events).await;
    assert_sipp_ok(&sipp.finish().await);
}

#[tokio::test]
async fn dial_refuses_bad_input() {
    let endpoint = SipEndpoint::start(options(None)).await.unwrap();
    let request = |uri: &str, headers: Vec<(String, String)>| DialRequest {
        request_uri: uri.into(),
        from: None,
        display_name: None,
        headers,
        offer: vec![],
    };
    assert!(matches!(
        endpoint.dial(request("not a uri", vec![])).await,
        Err(jigasi_sip::DialError::InvalidUri { .. })
    ));
    assert!(matches!(
        endpoint
            .dial(request(
                "sip:a@127.0.0.1:9",
                vec![("X-A".into(), "1\r\nVia: evil".into())]
            ))
            .await,
        Err(jigasi_sip::DialError::InvalidHeader(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_tcp_in_the_request_uri_dials_over_tcp() {
    if !available(&["sipp"]) {
        return;
    }
    let scenario = Scenario::new();
    let checks = r#"<ereg regexp="SIP/2.0/TCP" search_in="hdr" header="Via:" check_it="true" assign_to="dummy11"/>
      <ereg regexp="transport=(tcp|TCP)" search_in="hdr" header="Contact:" check_it="true" assign_to="dummy12"/>"#;
    let rest = format!(
        "{}  <recv request=\"ACK\" timeout=\"5000\"/>\n{OK_TO_BYE}",
        response("200 OK", "", true)
    );
    let (uas_port, mut sipp) = uas_with(&scenario, "uas-tcp", checks, &rest, &["-t", "t1"]);
    let endpoint = SipEndpoint::start(options(None)).await.unwrap();
    let mut call = endpoint
        .dial(DialRequest {
            request_uri: format!("sip:uas@127.0.0.1:{uas_port};transport=tcp"),
            from: None,
            display_name: None,
            headers: vec![],
            offer: sdp_with("a=sendrecv"),
        })
        .await
        .unwrap();
    let answer = String::from_utf8(expect_answer(&mut call.events, &mut sipp).await).unwrap();
    assert!(answer.contains("o=uas"), "{answer}");
    call.control
        .hangup(HangupReason::Q850 {
            cause: 16,
            text: None,
        })
        .await
        .unwrap();
    match next_event(&mut call.events, &mut sipp).await {
        CallEvent::Terminated { why } => assert_eq!(why, Termination::LocalHangup),
        other => panic!("expected Terminated, got {other:?}"),
    }
    assert_call_gone(&endpoint, &mut call.events).await;
    assert_sipp_ok(&sipp.finish().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialog_contact_carries_the_public_address() {
    if !available(&["sipp"]) {
        return;
    }
    let mut options = options(None);
    options.public_address = Some("192.0.2.10:5999".parse().unwrap());
    let mut endpoint = SipEndpoint::start(options).await.unwrap();
    let mut calls = endpoint.incoming_calls().unwrap();
    let scenario = Scenario::new();
    // SIPp sends the ACK and BYE to the gateway's real address whatever the Contact says.
    let body = format!(
        r#"{INVITE}
  <recv response="100" timeout="500"/>
  <recv response="180" timeout="500"/>
  <recv response="200" rrs="true" timeout="5000">
    <action>
      <ereg regexp="sip:jigasi@192.0.2.10:5999" search_in="hdr" header="Contact:" check_it="true" assign_to="dummy13"/>
    </action>
  </recv>
  {ack1}<pause milliseconds="200"/>{bye}"#,
        ack1 = ack(1),
        bye = bye(2)
    );
    let xml = scenario.write("public", &body);
    let mut sipp = call_gateway(&scenario, &xml, endpoint.local_addr(), &[]);
    let mut call = next_call(&mut calls, &mut sipp).await;
    call.control.answer(sdp_with("a=sendrecv")).await.unwrap();
    assert!(matches!(
        next_event(&mut call.events, &mut sipp).await,
        CallEvent::Confirmed
    ));
    assert!(matches!(
        next_event(&mut call.events, &mut sipp).await,
        CallEvent::RemoteHangup { .. }
    ));
    assert_call_gone(&endpoint, &mut call.events).await;
    assert_sipp_ok(&sipp.finish().await);
}

/// RFC 3581: a request whose Via asks for `rport` is answered to the port it came from, with
/// that port in `rport=`, even when its Via names another port.
#[tokio::test]
async fn responses_honour_rport() {
    let endpoint = SipEndpoint::start(options(None)).await.unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    let request = format!(
        "OPTIONS sip:jigasi@{gw} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-rport-{port};rport\r\n\
         From: <sip:probe@other.test>;tag=rp{port}\r\n\
         To: <sip:jigasi@{gw}>\r\n\
         Call-ID: rport-{port}@other.test\r\n\
         CSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        gw = endpoint.local_addr()
    );
    let answer = tokio::task::spawn_blocking(move || {
        socket
            .send_to(request.as_bytes(), endpoint.local_addr())
            .unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = socket
            .recv_from(&mut buf)
            .expect("no answer at the source port");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    assert!(answer.contains(&format!("rport={port}")), "{answer}");
}
