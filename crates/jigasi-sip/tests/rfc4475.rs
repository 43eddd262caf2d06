//! RFC 4475 torture messages replayed byte-exact at the UDP listener while a call is up.
//!
//! The messages name other hosts in Via and Contact, so the replay runs in a private network
//! namespace (`unshare -n`, loopback only): no answer can leave the machine. The test binary
//! re-runs itself inside the namespace (`JIGASI_RFC4475_CHILD=1`); that child starts the gateway,
//! a SIPp call, replays the 49 messages from 127.0.0.1:5060 (where most Via headers point),
//! records every answer, and checks that the call is unaffected and that each message got what
//! `jigasi_sip_core::validate` decided. The parent prints the table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use jigasi_sip::{CallEvent, HangupReason, SipEndpoint, SipOptions, StackTimers};
use jigasi_sip_core::validate::{Verdict, check_message};
use jigasi_testpeers::{Sipp, available, sip_options, under_ci};

const CHILD_ENV: &str = "JIGASI_RFC4475_CHILD";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/rfc4475")
}

fn main() -> ExitCode {
    // A test runner lists tests first (`--list --format terse`, as cargo-nextest does): this
    // binary is one test. Other libtest-style arguments (`--nocapture`, filters) do not matter.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("rfc4475: test");
        }
        return ExitCode::SUCCESS;
    }
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    parent()
}

fn skip_or_fail(why: &str) -> ExitCode {
    if under_ci() {
        eprintln!("rfc4475: {why} (CI=true: failing)");
        return ExitCode::FAILURE;
    }
    eprintln!("skipped: {why}");
    ExitCode::SUCCESS
}

fn parent() -> ExitCode {
    let dir = corpus_dir();
    if !dir.is_dir() {
        return skip_or_fail(&format!("no RFC 4475 corpus at {}", dir.display()));
    }
    if !available(&["sipp", "unshare", "ip"]) {
        return ExitCode::SUCCESS;
    }
    let exe = std::env::current_exe().unwrap();
    // Root can make a network namespace directly; others need a user namespace too.
    let mut last = None;
    for flags in ["-n", "-rn"] {
        let output = Command::new("unshare")
            .args([flags, "--"])
            .arg(&exe)
            .env(CHILD_ENV, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if stdout.contains("CHILD STARTED") {
            println!("{stdout}");
            if !output.status.success() {
                eprintln!("{stderr}");
                println!("rfc4475 replay: FAILED");
                return ExitCode::FAILURE;
            }
            println!("rfc4475 replay: ok");
            return ExitCode::SUCCESS;
        }
        last = Some(stderr);
    }
    skip_or_fail(&format!(
        "cannot create a network namespace: {}",
        last.unwrap_or_default()
    ))
}

fn child() -> ExitCode {
    println!("CHILD STARTED");
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status();
    assert!(up.is_ok_and(|s| s.success()), "cannot bring up loopback");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(replay());
    ExitCode::SUCCESS
}

/// What one torture message got back.
struct Replayed {
    name: String,
    verdict: Verdict,
    answers: Vec<String>,
}

const CALL: &str = r#"
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Survivor" <sip:survivor@other.test>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[local_ip_type] [local_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Survivor" <sip:survivor@other.test>;tag=[pid]SIPpTag09[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      [routes]
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv request="INFO" timeout="40000"/>
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
"#;

async fn replay() {
    let mut endpoint = SipEndpoint::start_with(
        SipOptions {
            bind: "127.0.0.1:0".parse().unwrap(),
            public_address: None,
            tls: None,
            tls_client: jigasi_sip::TlsClientOptions::default(),
            user_agent: "jigasi-rs-rfc4475".into(),
            account: None,
        },
        StackTimers::default(),
    )
    .await
    .unwrap();
    let target = endpoint.local_addr();
    let mut calls = endpoint.incoming_calls().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("survivor.xml");
    std::fs::write(
        &xml,
        format!(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<!DOCTYPE scenario SYSTEM \"sipp.dtd\">\n<scenario name=\"survivor\">{CALL}</scenario>\n"
        ),
    )
    .unwrap();
    let sipp_dir = dir.path().to_owned();
    let sipp = tokio::task::spawn_blocking(move || {
        let xml = xml.display().to_string();
        let target = target.to_string();
        Sipp::run(
            &[
                "-sf",
                &xml,
                "-s",
                "jigasi",
                "-m",
                "1",
                "-timeout",
                "60",
                "-timeout_error",
                &target,
            ],
            &sipp_dir,
            Duration::from_secs(70),
        )
        .unwrap()
    });

    // The survivor call: answered at once.
    let mut survivor = tokio::time::timeout(Duration::from_secs(10), calls.recv())
        .await
        .expect("the survivor call did not arrive")
        .unwrap();
    assert_eq!(survivor.from.uri, "sip:survivor@other.test");
    survivor
        .control
        .answer(b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n".to_vec())
        .await
        .unwrap();
    let confirmed = tokio::time::timeout(Duration::from_secs(5), survivor.events.recv()).await;
    if !matches!(confirmed, Ok(Some(CallEvent::Confirmed))) {
        let outcome = sipp.await.unwrap();
        panic!("no Confirmed ({confirmed:?}); sipp:\n{}", outcome.output);
    }

    // Torture INVITEs that reach the app are refused, as the gateway would refuse a call
    // without a room.
    let torture_calls = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(call) = calls.recv().await {
            seen.push(call.call_id.to_string());
            let _ = call.control.reject(486, HangupReason::Unspecified).await;
        }
        seen
    });

    let replayed = tokio::task::spawn_blocking(move || send_all(target))
        .await
        .unwrap();

    // The call is still up: nothing happened to it, and it still carries requests.
    let quiet = tokio::time::timeout(Duration::from_millis(200), survivor.events.recv()).await;
    assert!(quiet.is_err(), "the call saw {quiet:?} during the replay");
    let status = survivor
        .control
        .send_info("application/json", b"{\"still\":\"here\"}".to_vec())
        .await
        .unwrap();
    assert_eq!(status, 200);
    survivor
        .control
        .hangup(HangupReason::Q850 {
            cause: 16,
            text: None,
        })
        .await
        .unwrap();
    let outcome = sipp.await.unwrap();
    assert!(
        outcome.success(),
        "the survivor call failed:\n{}",
        outcome.output
    );
    let probe = tokio::task::spawn_blocking(move || sip_options(target, "sip:jigasi@127.0.0.1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(probe, 200, "OPTIONS after the replay");
    drop(endpoint);
    let reached = torture_calls.await.unwrap();

    report_and_check(&replayed, &reached);
}

fn send_all(target: SocketAddr) -> Vec<Replayed> {
    let harness = UdpSocket::bind("127.0.0.1:5060").expect("port 5060 is free in the namespace");
    harness
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .collect();
    files.sort();
    // (Call-ID, status line, index of the message sent last) of everything that came back.
    let mut responses: Vec<(String, String, usize)> = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let mut listen =
        |responses: &mut Vec<(String, String, usize)>, index: usize, window: Duration| {
            let until = std::time::Instant::now() + window;
            while std::time::Instant::now() < until {
                if let Ok((n, _)) = harness.recv_from(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let first = text.lines().next().unwrap_or_default().trim().to_owned();
                    responses.push((call_id(text.as_bytes()), first, index));
                }
            }
        };
    let mut sent = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        harness.send_to(&bytes, target).unwrap();
        listen(&mut responses, sent.len(), Duration::from_millis(200));
        sent.push((name, bytes));
    }
    listen(
        &mut responses,
        sent.len().saturating_sub(1),
        Duration::from_millis(500),
    );
    sent.into_iter()
        .enumerate()
        .map(|(index, (name, bytes))| {
            // Answers are matched by Call-ID (retransmitted answers to earlier INVITEs keep
            // coming), or by time for a message without one; each distinct status line once.
            let id = call_id(&bytes);
            let mut answers: Vec<String> = Vec::new();
            for (cid, line, after) in &responses {
                let ours = *cid == id && (!id.is_empty() || *after == index);
                if ours && !answers.contains(line) {
                    answers.push(line.clone());
                }
            }
            Replayed {
                name,
                verdict: check_message(&bytes),
                answers,
            }
        })
        .collect()
}

/// The Call-ID (or compact `i:`) header value of a message, "" if none.
fn call_id(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    text.split("\r\n")
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            let name = name.trim();
            (name.eq_ignore_ascii_case("call-id") || name.eq_ignore_ascii_case("i"))
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default()
}

fn report_and_check(replayed: &[Replayed], reached: &[String]) {
    assert_eq!(replayed.len(), 49, "the corpus has 49 messages");
    let mut mismatches = Vec::new();
    for r in replayed {
        let answers = if r.answers.is_empty() {
            "(no answer)".to_owned()
        } else {
            r.answers.join(" / ")
        };
        let verdict = match &r.verdict {
            Verdict::Accept => "accept".to_owned(),
            Verdict::Reject {
                status, respond, ..
            } => format!("reject {status}{}", if *respond { "" } else { " (silent)" }),
            Verdict::Drop { why } => format!("drop ({why:?})"),
        };
        println!(
            "RFC4475 {:<12} validator: {:<22} answers: {answers}",
            r.name, verdict
        );
        match &r.verdict {
            Verdict::Reject {
                status,
                respond: true,
                ..
            } => {
                let expected = format!("SIP/2.0 {status} ");
                if !r.answers.iter().any(|a| a.starts_with(&expected)) {
                    mismatches.push(format!("{}: expected {status}, got {answers}", r.name));
                }
            }
            Verdict::Reject { respond: false, .. } | Verdict::Drop { .. } => {
                if !r.answers.is_empty() {
                    mismatches.push(format!("{}: expected silence, got {answers}", r.name));
                }
            }
            Verdict::Accept => {}
        }
        // Whatever was answered speaks SIP/2.0 (rsipstack alone echoed SIP/7.0).
        for a in &r.answers {
            if !a.starts_with("SIP/2.0 ") {
                mismatches.push(format!("{}: odd answer {a:?}", r.name));
            }
        }
    }
    println!("torture INVITEs that reached the app (rejected 486): {reached:?}");
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
}
