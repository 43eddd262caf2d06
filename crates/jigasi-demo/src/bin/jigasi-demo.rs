//! The demo (the README's main-job command): real Prosody and Kamailio on loopback, the Jicofo +
//! JVB stand-in with one web participant talking in the room, and the real `jigasi-rs` binary
//! started with Jigasi's flags and a Jigasi-style properties file. A real SIP phone (baresip) calls
//! into the conference, then the conference calls a second phone out, each with ten seconds of
//! speech each way; for each call it prints the setup time, per-stream packets, loss and jitter
//! (tshark), PESQ of what each side heard against what the other side sent, and where the WAV files
//! are. Then it stops the gateway cleanly.

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use jigasi_demo::{
    CallReport, DemoError, Session, SessionConfig, gateway_binary, http_request, speech,
};
use jigasi_standin::AudioSource;

/// What the phone says.
const PHONE_TEXT: &str = "Hello from the telephone. I am calling into the Jitsi meeting \
through the gateway. Can everybody hear me clearly? One, two, three, four, five.";
/// What the web participant says.
const WEB_TEXT: &str = "Welcome to the meeting. This is the web participant speaking through \
the video bridge. The weather is fine and the coffee is hot. Six, seven, eight, nine, ten.";
/// How long each call talks.
const TALK: Duration = Duration::from_secs(11);
/// The lowest PESQ-NB the demo accepts for a call leg over G.711 on loopback.
const PESQ_FLOOR: f64 = 3.0;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    println!(
        "jigasi-rs demo: a SIP phone calls into a Jitsi conference, and the conference calls a phone\n"
    );
    match demo().await {
        Ok(()) => {
            println!("\nDEMO PASSED");
            ExitCode::SUCCESS
        }
        Err(error) => {
            println!("\nDEMO FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn demo() -> Result<(), DemoError> {
    let binary = gateway_binary()?;
    let audio_dir = tempfile::Builder::new()
        .prefix("jigasi-demo-audio-")
        .tempdir()
        .map_err(|e| DemoError::Expectation(e.to_string()))?
        .keep();
    let phone_speech = audio_dir.join("phone-says.wav");
    let web_speech = audio_dir.join("web-says.wav");
    speech(PHONE_TEXT, "en-us", 48_000, &phone_speech)?;
    speech(WEB_TEXT, "en-gb", 48_000, &web_speech)?;
    // baresip hangs up when its audio file ends: pad the phone's speech with silence.
    let phone_padded = audio_dir.join("phone-says-padded.wav");
    run(
        "sox",
        &[
            path(&phone_speech),
            path(&phone_padded),
            "pad".into(),
            "0".into(),
            "20".into(),
        ],
        None,
    )?;

    let config = SessionConfig {
        participant: AudioSource::Wav(web_speech.clone()),
        echo: false,
        capture: true,
        extra_properties: Vec::new(),
    };
    let mut session = Session::start(&binary, &config).await?;
    println!(
        "Prosody     {} (Jitsi layout, domain {})",
        session.deployment.prosody.c2s_addr(),
        session.deployment.prosody.domain()
    );
    println!(
        "Kamailio    {} (registrar + proxy, digest auth)",
        session.deployment.kamailio.addr()
    );
    println!(
        "stand-in    Jicofo + JVB, room demo@conference.{} with web participant 'web1'",
        session.deployment.prosody.domain()
    );
    println!("gateway     {}", binary.display());
    println!(
        "config      {}",
        session.deployment.properties_path().display()
    );
    println!(
        "\nThe gateway registered at Kamailio and joined the brewery {} ms after start.",
        session.ready_after.as_millis()
    );
    let rest = session.deployment.rest_addr();
    let health = tokio::task::spawn_blocking(move || http_request(rest, "GET", "/about/health"))
        .await
        .map_err(|e| DemoError::Expectation(e.to_string()))??;
    println!("GET /about/health -> {} {}", health.0, health.1);

    // The demo's files stay for the user (also when a step fails).
    let work = session.keep_work();
    let capture_file = work.join("media.pcap");
    let capture = start_capture(&capture_file);

    println!(
        "\n[1] dial-in: baresip 'alice' calls sip:jigasi@kamailio; Kamailio adds Jitsi-Conference-Room"
    );
    let dial_in = session.dial_in("dial-in", &phone_padded, TALK).await?;
    println!(
        "[2] dial-out: the conference sends a Rayo dial for 'bob'; the gateway calls him through Kamailio"
    );
    let dial_out = session.dial_out("dial-out", &phone_padded, TALK).await?;

    let streams = stop_capture(capture, &capture_file);
    let (exit, _log) = session.stop()?;

    let mut ok = true;
    for (title, report) in [("dial-in", &dial_in), ("dial-out", &dial_out)] {
        ok &= print_call(title, report, &phone_speech, &web_speech);
    }
    println!("\nRTP streams on the gateway's media ports (tshark, per direction):");
    match streams {
        Some(lines) if !lines.is_empty() => lines.iter().for_each(|l| println!("  {l}")),
        Some(_) | None => println!("  (no capture: tshark not available)"),
    }
    println!("\nFiles: {} and {}", work.display(), audio_dir.display());
    println!("Gateway stopped with SIGTERM: {exit}");
    if !exit.success() {
        ok = false;
    }
    if ok {
        Ok(())
    } else {
        Err(DemoError::Expectation(
            "a call did not meet the demo's checks (see above)".into(),
        ))
    }
}

/// Prints one call's figures; returns whether it passed the demo's checks.
fn print_call(title: &str, report: &CallReport, phone_sent: &Path, web_sent: &Path) -> bool {
    println!("\n{title}: gateway endpoint {}", report.nick);
    if let Some(reference) = &report.reference {
        println!("  Rayo reply           {reference}");
    }
    println!("  setup time           {} ms", report.setup.as_millis());
    println!(
        "  session-accept       {} rule violations found by the stand-in",
        report.violations
    );
    let up = score(phone_sent, &report.conference_wav);
    let down = report.phone_wav.as_ref().map(|wav| score(web_sent, wav));
    println!(
        "  phone -> conference  {:.1} s heard, PESQ-NB {}  ({})",
        report.conference_heard_seconds,
        up.as_ref()
            .map_or_else(|e| e.clone(), |s| format!("{s:.2}")),
        report.conference_wav.display()
    );
    match (&down, &report.phone_wav) {
        (Some(down), Some(wav)) => println!(
            "  conference -> phone  {:.1} s heard, PESQ-NB {}  ({})",
            report.phone_heard_seconds,
            down.as_ref()
                .map_or_else(|e| e.clone(), |s| format!("{s:.2}")),
            wav.display()
        ),
        _ => println!("  conference -> phone  no recording"),
    }
    let passes = |s: &Result<f64, String>| s.as_ref().is_ok_and(|s| *s >= PESQ_FLOOR);
    report.violations == 0
        && report.conference_heard_seconds > 5.0
        && report.phone_heard_seconds > 5.0
        && passes(&up)
        && down.as_ref().is_some_and(passes)
}

/// PESQ-NB of `degraded` against `reference`, with the project's scoring script and venv.
fn score(reference: &Path, degraded: &Path) -> Result<f64, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("target/venv/bin/python");
    let script = root.join("scripts/score.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(reference)
        .arg(degraded)
        .output()
        .map_err(|e| format!("no PESQ ({}: {e})", python.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("pesq="))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            format!(
                "no PESQ ({})",
                String::from_utf8_lossy(&output.stderr).trim()
            )
        })
}

/// tshark on loopback for the gateway's media port range (the demo passes 20000-20100).
fn start_capture(file: &Path) -> Option<Child> {
    Command::new("tshark")
        .args(["-q", "-i", "lo", "-f", "udp portrange 20000-20100", "-w"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// Stops tshark and summarises the RTP streams it saw.
fn stop_capture(capture: Option<Child>, file: &Path) -> Option<Vec<String>> {
    let mut child = capture?;
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let output = Command::new("tshark")
        .args(["-r"])
        .arg(file)
        .args(["-o", "rtp.heuristic_rtp:TRUE", "-q", "-z", "rtp,streams"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    Some(
        text.lines()
            .filter(|l| l.contains("Src IP") || l.contains("127.0.0.1"))
            .map(|l| l.trim_end().to_owned())
            .collect(),
    )
}

fn run(program: &str, args: &[String], cwd: Option<&Path>) -> Result<(), DemoError> {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let status = command
        .status()
        .map_err(|e| DemoError::Expectation(format!("{program}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(DemoError::Expectation(format!(
            "{program} failed: {status}"
        )))
    }
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
