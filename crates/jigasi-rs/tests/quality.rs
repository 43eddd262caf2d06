//! End-to-end: per-call quality metrics of the real binary. A real baresip phone calls in
//! through Kamailio, the stand-in plays the conference; RTCP flows both ways on the phone leg,
//! str0m measures the bridge leg, and `/metrics` shows per-call jitter, loss, RTT and MOS for
//! both legs until the call ends.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jigasi_demo::{Session, SessionConfig, http_request};
use jigasi_testpeers::{Baresip, BaresipConfig, audio, available};

const BIN: &str = env!("CARGO_BIN_EXE_jigasi-rs");

/// One Prometheus sample: its labels and value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (enough for our gauges: no escaped quotes in labels).
fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let labels = rest
                        .trim_end_matches('}')
                        .split(',')
                        .filter_map(|pair| {
                            let (key, value) = pair.split_once('=')?;
                            Some((key.to_owned(), value.trim_matches('"').to_owned()))
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
                None => (series.to_owned(), BTreeMap::new()),
            };
            Some(Sample {
                name,
                labels,
                value,
            })
        })
        .collect()
}

async fn metrics(rest: SocketAddr) -> String {
    let (status, body) =
        tokio::task::spawn_blocking(move || http_request(rest, "GET", "/metrics").unwrap())
            .await
            .unwrap();
    assert_eq!(status, 200);
    body
}

/// The value of `name` for `leg` (and `direction`, if given) of any call.
fn gauge(samples: &[Sample], name: &str, leg: &str, direction: Option<&str>) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.get("leg").map(String::as_str) == Some(leg)
                && s.labels.get("direction").map(String::as_str) == direction
        })
        .map(|s| s.value)
}

/// Every per-call gauge we expect once both legs exchanged RTCP.
fn complete(samples: &[Sample]) -> bool {
    ["phone", "bridge"].iter().all(|leg| {
        gauge(samples, "jitsi_jigasi_call_rtt_ms", leg, None).is_some()
            && ["in", "out"].iter().all(|direction| {
                [
                    "jitsi_jigasi_call_jitter_ms",
                    "jitsi_jigasi_call_loss_ratio",
                    "jitsi_jigasi_call_mos",
                ]
                .iter()
                .all(|name| gauge(samples, name, leg, Some(direction)).is_some())
            })
    })
}

/// tshark on loopback for the gateway's media ports (`--min-port=20000`), when installed.
fn start_capture(file: &Path) -> Option<Child> {
    if !available(&["tshark"]) {
        return None;
    }
    let child = Command::new("tshark")
        .args(["-q", "-i", "lo", "-f", "udp portrange 20000-20100", "-w"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // dumpcap needs a moment before it captures.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(child)
}

/// The plain RTCP packets in the capture as `(source port, destination port, packet types)`.
fn rtcp_in_capture(mut child: Child, file: &PathBuf) -> Vec<(u16, u16, String, String)> {
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let output = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args([
            "-o",
            "rtcp.heuristic_rtcp:TRUE",
            "-Y",
            "rtcp",
            "-T",
            "fields",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
            "-e",
            "rtcp.pt",
            "-e",
            "rtcp.sdes.text",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let source = fields.next()?.parse().ok()?;
            let destination = fields.next()?.parse().ok()?;
            let types = fields.next()?.to_owned();
            let sdes = fields.next().unwrap_or_default().to_owned();
            Some((source, destination, types, sdes))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_phone_call_shows_per_leg_quality_in_metrics_until_it_ends() {
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
    let rest = session.deployment.rest_addr();
    let pcap = session.work.join("quality.pcapng");
    let capture = start_capture(&pcap);

    let registrar = session.deployment.kamailio.addr();
    let tone = audio::tone_wav(&session.work, 48_000, 440, 60).unwrap();
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
    // This call's phone RTP port, from the gateway's log (other tests' gateways may be sending
    // RTCP on loopback at the same time).
    let media = session
        .gateway
        .wait_for_line("call media and nick", Duration::from_secs(5))
        .unwrap();
    let rtp_port: u16 = media
        .split("phone_rtp=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no phone_rtp in {media}"));
    assert_eq!(rtp_port % 2, 0, "RTP on the even port of the pair: {media}");
    let rtcp_port = rtp_port + 1;

    // RTCP needs a few report intervals (ours 5 s ± 50 %, the first at half; baresip's 5 s).
    let deadline = Instant::now() + Duration::from_secs(40);
    let samples = loop {
        let samples = parse_metrics(&metrics(rest).await);
        if complete(&samples) {
            break samples;
        }
        assert!(
            Instant::now() < deadline,
            "per-call gauges incomplete after 40 s: {:#?}\n{}",
            samples
                .iter()
                .filter(|s| s.name.starts_with("jitsi_jigasi_call"))
                .collect::<Vec<_>>(),
            session.gateway.log()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let calls: Vec<&String> = samples
        .iter()
        .filter(|s| s.name == "jitsi_jigasi_call_mos")
        .filter_map(|s| s.labels.get("call"))
        .collect();
    assert!(
        !calls.is_empty() && calls.iter().all(|c| *c == calls[0]),
        "{calls:?}"
    );
    let report: Vec<String> = samples
        .iter()
        .filter(|s| s.name.starts_with("jitsi_jigasi_call"))
        .map(|s| format!("{} {:?} {}", s.name, s.labels, s.value))
        .collect();
    let report = report.join("\n");
    eprintln!("per-call quality seen:\n{report}");
    for leg in ["phone", "bridge"] {
        // The phone's RR carries the LSR of our SR: a round trip on loopback. On the phone leg
        // that also proves our RTCP reached baresip and was understood.
        let rtt = gauge(&samples, "jitsi_jigasi_call_rtt_ms", leg, None).unwrap();
        assert!(rtt > 0.0 && rtt < 100.0, "{leg} RTT {rtt} ms\n{report}");
        for direction in ["in", "out"] {
            let loss = gauge(
                &samples,
                "jitsi_jigasi_call_loss_ratio",
                leg,
                Some(direction),
            );
            assert_eq!(loss, Some(0.0), "{leg} {direction} loss\n{report}");
            let jitter = gauge(
                &samples,
                "jitsi_jigasi_call_jitter_ms",
                leg,
                Some(direction),
            )
            .unwrap();
            assert!(
                (0.0..30.0).contains(&jitter),
                "{leg} {direction} jitter {jitter} ms\n{report}"
            );
            let mos = gauge(&samples, "jitsi_jigasi_call_mos", leg, Some(direction)).unwrap();
            assert!(
                mos > 4.0 && mos <= 4.5,
                "{leg} {direction} MOS {mos}\n{report}"
            );
        }
    }
    let aggregate = |name: &str| {
        samples
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value)
            .unwrap_or(f64::NAN)
    };
    assert_eq!(
        aggregate("jitsi_jigasi_calls_with_quality"),
        1.0,
        "{report}"
    );
    assert_eq!(
        aggregate("jitsi_jigasi_calls_poor_quality"),
        0.0,
        "{report}"
    );
    assert!(aggregate("jitsi_jigasi_calls_min_mos") > 4.0, "{report}");

    // The phone hangs up: the call's series go.
    phone.hangup().unwrap();
    phone
        .wait_event("CALL_CLOSED", Duration::from_secs(10))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = metrics(rest).await;
        if !text.contains("jitsi_jigasi_call_")
            && text.contains("jitsi_jigasi_calls_with_quality 0")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "per-call series still there after the hang-up:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // On the wire (when tshark is installed): our SR/RR with our CNAME left the gateway's phone
    // RTCP port, and baresip's reports came back to it.
    if let Some(child) = capture {
        let packets = tokio::task::spawn_blocking(move || rtcp_in_capture(child, &pcap))
            .await
            .unwrap();
        let ours: Vec<_> = packets
            .iter()
            .filter(|(source, ..)| *source == rtcp_port)
            .collect();
        assert!(
            !ours.is_empty(),
            "no RTCP from the gateway's port {rtcp_port}: {packets:?}"
        );
        assert!(
            ours.iter()
                .all(|(_, _, types, sdes)| sdes.contains("jigasi-rs-")
                    && (types.starts_with("200") || types.starts_with("201"))),
            "SR/RR with our CNAME: {ours:?}"
        );
        assert!(
            packets
                .iter()
                .any(|(_, destination, types, sdes)| *destination == rtcp_port
                    && !sdes.contains("jigasi-rs-")
                    && (types.starts_with("200") || types.starts_with("201"))),
            "baresip's RTCP never reached port {rtcp_port}: {packets:?}"
        );
    }
}
