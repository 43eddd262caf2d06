//! The codec matrix end to end (issues 3 and 6): for PCMU, PCMA, G.722 and Opus, a real baresip
//! phone that offers (dial-in, through Kamailio) or accepts (dial-out, placed by a Rayo dial from
//! the stand-in) only that codec talks to the stand-in's web participant through the real
//! binary. Each test checks from the outside that
//!
//! - (a) the gateway's SDP answer (dial-in: that codec alone, with its static payload type) or
//!   offer (dial-out: among the others) as baresip's `callstat` shows it, the encoder and
//!   decoder baresip then set up (its log), and on the wire (a `dumpcap` capture, when it may
//!   capture) the payload type both ways and the gateway's RTP clock (160 ticks a packet for
//!   G.711 and G.722, 960 for Opus);
//! - (b) a tone sent each way arrives at the right frequency; the wideband codecs carry tones
//!   above 4 kHz, which a narrowband stage anywhere on the path would remove;
//! - (c) speech sent each way scores above a PESQ floor (PESQ-NB for G.711; PESQ-WB for G.722 and
//!   Opus, whose audio is 16 kHz at the phone), when the scoring venv of
//!   `scripts/install-deps.sh` is there.
//!
//! Both sides play "tone, pause, speech, pause" (the web participant in a loop, so the phone
//! hears it at any phase): the tone is found by its purity wherever it sits in a recording, and
//! `scripts/score.py` finds the speech by cross-correlation. One deployment (Prosody, Kamailio,
//! the stand-in, the gateway) per test, about 7 s of call; the file takes 60–90 s with
//! nextest's two tests at a time on a 2-core machine. `JIGASI_KEEP_AUDIO=1` keeps the WAVs.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jigasi_demo::{DEMO_ROOM, SIP_USER, Session, SessionConfig, speech};
use jigasi_standin::AudioSource;
use jigasi_testpeers::{Baresip, BaresipConfig, audio, available};

const BIN: &str = env!("CARGO_BIN_EXE_jigasi-rs");

/// The rate of every WAV played (baresip's `aufile` and the stand-in both take 48 kHz).
const RATE: u32 = 48_000;
/// Length of the tone at the start of each side's audio.
const TONE: Duration = Duration::from_millis(800);
/// Silence after the tone and after the speech.
const PAUSE: Duration = Duration::from_millis(200);
/// What the phone says.
const PHONE_TEXT: &str = "The quick brown fox jumps over the lazy dog.";
/// What the web participant says.
const WEB_TEXT: &str = "Welcome to the meeting, the coffee is hot.";
/// How long the call may take to carry what each side must hear (the phone's tone and speech,
/// about 3.5 s; a whole loop of the participant and its speech again, about 5.5 s, since the
/// phone starts listening at any point of the loop). The call ends as soon as both are there.
const TALK_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest distance between the tone sent and the frequency measured.
const HZ_TOLERANCE: f64 = 15.0;
/// Shortest stretch of pure tone that must arrive (of the 0.8 s sent).
const MIN_TONE: Duration = Duration::from_millis(500);
/// The lowest PESQ accepted each way, for every codec: a floor for speech that no longer gets
/// through (a swapped G.711 law scores 1.1, audio played at the wrong rate 1.25, offline; both
/// also fail the tone checks), not a quality target (that is the benchmark's, on a release
/// build). Measured on this project's 2-core machine, debug builds, two matrix tests at once
/// and other builds running, typical values: G.711 phone → conference 3.9 and conference →
/// phone 2.8–3.8 (PESQ-NB); G.722 2.4–2.7 and 2.2–3.1, Opus 3.0–3.6 and 2.5–3.6 (PESQ-WB);
/// since the 48 kbit/s wideband bridge encoder and the jitter buffer's delay measure (one
/// helper building meanwhile): G.711 3.89–3.92 and 3.75–3.79, G.722 2.80–2.88 and 3.08–3.14,
/// Opus 4.17–4.19 and 3.96–4.02. Single calls dipped to 1.5–1.9 under load: the jitter buffers then move the delay by
/// 20–60 ms in the middle of the sentence, or conceal a burst of late packets (seen in the
/// recordings, and in the gateway's own RTP decoded from a capture, so not in baresip).
const PESQ_FLOOR: f64 = 1.3;

/// One codec of the matrix.
#[derive(Debug, Clone, Copy)]
struct Codec {
    /// baresip's `audio_codecs` entry: the only codec the phone offers or accepts.
    baresip: &'static str,
    /// Its `rtpmap` as baresip prints an SDP format (`name/clock rate/channels`).
    sdp: &'static str,
    /// Its static payload type.
    static_pt: Option<u8>,
    /// How baresip logs the encoder and decoder it sets up for the call.
    engine: &'static str,
    /// RTP timestamp ticks per 20 ms packet (G.722 keeps the 8000 Hz clock of RFC 3551
    /// although it samples at 16 kHz; Opus is always 48000, RFC 7587).
    ticks: u32,
    /// The phone's tone (Hz).
    phone_tone: u32,
    /// The web participant's tone (Hz).
    conference_tone: u32,
    /// Score with PESQ-WB (16 kHz) instead of PESQ-NB.
    wideband: bool,
}

const PCMU: Codec = Codec {
    baresip: "PCMU",
    sdp: "PCMU/8000/1",
    static_pt: Some(0),
    engine: "PCMU 8000Hz 1ch",
    ticks: 160,
    phone_tone: 700,
    conference_tone: 1300,
    wideband: false,
};

const PCMA: Codec = Codec {
    baresip: "PCMA",
    sdp: "PCMA/8000/1",
    static_pt: Some(8),
    engine: "PCMA 8000Hz 1ch",
    ticks: 160,
    phone_tone: 700,
    conference_tone: 1300,
    wideband: false,
};

const G722: Codec = Codec {
    baresip: "G722/16000/1",
    sdp: "G722/8000/1",
    static_pt: Some(9),
    engine: "G722 16000Hz 1ch",
    ticks: 160,
    phone_tone: 5000,
    conference_tone: 6000,
    wideband: true,
};

const OPUS: Codec = Codec {
    baresip: "opus/48000/2",
    sdp: "opus/48000/2",
    static_pt: None,
    engine: "opus 48000Hz 2ch",
    ticks: 960,
    phone_tone: 5000,
    conference_tone: 6000,
    wideband: true,
};

/// Who places the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// baresip `alice` calls the gateway's number through Kamailio.
    In,
    /// baresip `alice` calls the gateway's own SIP address, no proxy in between; the room is
    /// `DEFAULT_JVB_ROOM_NAME` (no room header on a direct call).
    InDirect,
    /// The stand-in sends a Rayo dial for `bob`, who answers automatically.
    Out,
}

/// One RTP packet on the phone leg, from a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RtpSeen {
    /// UDP source and destination ports.
    ports: (u16, u16),
    /// Payload type.
    pt: u8,
    /// Sequence number.
    seq: u16,
    /// RTP timestamp.
    timestamp: u32,
}

/// A `dumpcap` capture of the gateway's media ports (`--min-port`..`--max-port` of the demo
/// deployment) on loopback, in libpcap format. Stopped when dropped.
struct Capture {
    child: std::process::Child,
    file: PathBuf,
}

impl Capture {
    /// Starts capturing; `None` (and a note) when `dumpcap` is missing or may not capture.
    fn start(dir: &Path) -> Option<Capture> {
        let file = dir.join("media.pcap");
        let child = Command::new("dumpcap")
            .args([
                "-q",
                "-P",
                "-i",
                "lo",
                "-f",
                "udp portrange 20000-20100",
                "-w",
            ])
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            eprintln!("RTP checks skipped: no dumpcap");
            return None;
        };
        // dumpcap writes the file header once it captures.
        for _ in 0..100 {
            if std::fs::metadata(&file).is_ok_and(|m| m.len() >= 24) {
                return Some(Capture { child, file });
            }
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("RTP checks skipped: dumpcap exited with {status}");
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("RTP checks skipped: dumpcap did not start capturing");
        None
    }

    /// Stops the capture and returns the RTP packets in it (UDP over IPv4 over Ethernet, as
    /// Linux captures loopback).
    fn stop(mut self) -> Vec<RtpSeen> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let bytes = std::fs::read(&self.file).unwrap_or_default();
        let mut packets = Vec::new();
        let mut at = 24;
        while let Some(header) = bytes.get(at..at + 16) {
            let len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
            let Some(frame) = bytes.get(at + 16..at + 16 + len) else {
                break;
            };
            at += 16 + len;
            let Some(ip) = frame
                .get(14..)
                .filter(|_| frame.get(12..14) == Some(&[8, 0]))
            else {
                continue;
            };
            let ihl = usize::from(ip.first().map_or(0, |b| b & 0x0f)) * 4;
            if ip.get(9) != Some(&17) || ihl < 20 {
                continue;
            }
            let Some(udp) = ip.get(ihl..) else {
                continue;
            };
            let rtp = udp.get(8..).unwrap_or_default();
            // RTCP (payload types 192..=223 with the marker bit, RFC 5761 §4) is not RTP.
            if udp.len() < 8 || rtp.len() < 12 || rtp[0] >> 6 != 2 || (192..=223).contains(&rtp[1])
            {
                continue;
            }
            packets.push(RtpSeen {
                ports: (
                    u16::from_be_bytes([udp[0], udp[1]]),
                    u16::from_be_bytes([udp[2], udp[3]]),
                ),
                pt: rtp[1] & 0x7f,
                seq: u16::from_be_bytes([rtp[2], rtp[3]]),
                timestamp: u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]),
            });
        }
        packets
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The test's files (what each side played and heard); kept for inspection when the test fails
/// or `JIGASI_KEEP_AUDIO` is set.
struct Scratch(Option<tempfile::TempDir>);

impl Scratch {
    fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if (std::thread::panicking() || std::env::var_os("JIGASI_KEEP_AUDIO").is_some())
            && let Some(dir) = self.0.take()
        {
            eprintln!("audio kept in {}", dir.keep().display());
        }
    }
}

/// `tone` Hz for [`TONE`], a pause, `speech`, a pause: 48 kHz samples.
fn tone_then_speech(tone: u32, speech: &[f32]) -> Vec<f32> {
    let frames = |d: Duration| (f64::from(RATE) * d.as_secs_f64()) as usize;
    let mut samples = audio::sine(RATE, f64::from(tone), 0.3, frames(TONE));
    samples.extend(std::iter::repeat_n(0.0, frames(PAUSE)));
    samples.extend_from_slice(speech);
    samples.extend(std::iter::repeat_n(0.0, frames(PAUSE)));
    samples
}

/// Speech WAV (48 kHz mono) saying `text` without espeak's leading and trailing silence (20 ms
/// kept), and its samples.
fn speech_wav(dir: &Path, name: &str, text: &str, voice: &str) -> (PathBuf, Vec<f32>) {
    let path = dir.join(format!("{name}.wav"));
    speech(text, voice, RATE, &path).unwrap();
    let samples = audio::read_wav(&path).unwrap().mono();
    let loud = |s: &&f32| s.abs() > 0.01;
    let margin = RATE as usize / 50;
    let first = samples
        .iter()
        .position(|s| loud(&s))
        .unwrap()
        .saturating_sub(margin);
    let last = (samples.iter().rposition(|s| loud(&s)).unwrap() + margin).min(samples.len());
    let samples = samples[first..last].to_vec();
    audio::write_wav(&path, RATE, &samples).unwrap();
    (path, samples)
}

/// Seconds of `samples` at `rate`.
fn seconds(samples: usize, rate: u32) -> f64 {
    samples as f64 / f64::from(rate)
}

/// The pure tone in a recording.
#[derive(Debug, Clone, PartialEq)]
struct Tone {
    /// Seconds of 100 ms windows whose content is a single sine (power at their dominant
    /// frequency at least 60% of all their power).
    seconds: f64,
    /// The median of those windows' dominant frequencies. Measured, not assumed, so a codec
    /// that shifts the frequency (a wrong clock rate) fails.
    hz: Option<f64>,
    /// Where each run of such windows (a tone heard) ends, in samples.
    ends: Vec<usize>,
}

/// The pure tone in mono `samples` at `rate`, in 100 ms windows.
fn tone_in(samples: &[f32], rate: u32) -> Tone {
    let window = rate as usize / 10;
    let found: Vec<(usize, f64)> = samples
        .chunks_exact(window)
        .enumerate()
        .filter_map(|(i, w)| {
            let rms = audio::rms(w);
            if rms < 0.01 {
                return None;
            }
            let hz = audio::dominant_frequency_of(w, rate)?;
            // A sine of amplitude A has power A²/2 and a Goertzel power (normalised) of A²/4.
            let purity = 2.0 * audio::goertzel_power(w, rate, hz) / (rms * rms);
            (purity > 0.6).then_some((i * window, hz))
        })
        .collect();
    let mut hz: Vec<f64> = found.iter().map(|&(_, hz)| hz).collect();
    hz.sort_by(f64::total_cmp);
    let ends = found
        .iter()
        .zip(found.iter().skip(1).map(Some).chain([None]))
        .filter(|((at, _), next)| next.is_none_or(|(next, _)| *next != at + window))
        .map(|((at, _), _)| at + window)
        .collect();
    Tone {
        seconds: found.len() as f64 * 0.1,
        hz: hz.get(hz.len() / 2).copied(),
        ends,
    }
}

/// The formats of one side (`local` or `remote`) of the audio stream in baresip's `callstat`,
/// e.g. `0 PCMU/8000/1 () *`, in SDP order.
fn formats(status: &str, side: &str) -> Vec<String> {
    let header = format!("{side} formats:");
    status
        .lines()
        .skip_while(|line| line.trim() != header)
        .skip(1)
        .take_while(|line| line.starts_with("    "))
        .map(|line| line.trim().to_owned())
        .collect()
}

/// Runs `scripts/score.py` (PESQ of a recording against its reference, which it finds in the
/// recording by cross-correlation) on each pair of arguments after the script and the mode.
const SCORE_EACH: &str = r#"
import runpy, sys
script, mode, files = sys.argv[1], sys.argv[2], sys.argv[3:]
for reference, degraded in zip(files[0::2], files[1::2]):
    sys.argv = [script, reference, degraded, mode]
    runpy.run_path(script, run_name="__main__")
"#;

/// PESQ-NB or -WB of each `(reference, recording)` pair, in one Python process (the venv of
/// `scripts/install-deps.sh`): the score and the seconds of the reference found in the
/// recording. `None` when that venv is not there.
fn pesq(pairs: &[(&Path, &Path)], wideband: bool) -> Option<Vec<(f64, f64)>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("target/venv/bin/python");
    if !python.is_file() {
        eprintln!(
            "PESQ skipped: no {} (scripts/install-deps.sh)",
            python.display()
        );
        return None;
    }
    let mut command = Command::new(&python);
    command
        .args(["-c", SCORE_EACH])
        .arg(root.join("scripts/score.py"))
        .arg(if wideband { "wb" } else { "nb" });
    for (reference, recording) in pairs {
        command.arg(reference).arg(recording);
    }
    let output = command.output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let scores: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|line| {
            let value = |key: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|v| v.is_finite())
            };
            value("pesq=").zip(value("seconds="))
        })
        .collect();
    assert!(
        output.status.success() && scores.len() == pairs.len(),
        "score.py failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(scores)
}

/// The seconds in a WAV file baresip is still writing (its header does not count them yet),
/// from its size: reading it whole while the call runs would take the CPU the call needs.
fn recorded_seconds(path: &Path) -> f64 {
    use std::io::Read;
    let mut header = [0u8; 44];
    let read = std::fs::File::open(path).and_then(|mut file| {
        file.read_exact(&mut header)?;
        file.metadata()
    });
    let (Ok(meta), Ok(wav)) = (read, audio::parse_wav(&header)) else {
        return 0.0;
    };
    // 16-bit samples after a 44-byte header.
    let frames = meta.len().saturating_sub(44) / (2 * u64::from(wav.channels.max(1)));
    seconds(frames as usize, wav.rate.max(1))
}

/// Waits until the phone's recording holds `down` seconds (it runs late when the machine is
/// busy), which is longer than the phone talks: then returns what the conference heard (48 kHz;
/// the bridge drops digital silence, so that is shorter than what the phone sent). The
/// stand-in is asked only at the end: every question copies all it received, on the task that
/// also paces its audio.
async fn wait_until_heard(session: &Session, nick: &str, phone: &Baresip, down: f64) -> Vec<i16> {
    let deadline = tokio::time::Instant::now() + TALK_TIMEOUT;
    let mut recorded = 0.0;
    while recorded < down {
        assert!(
            tokio::time::Instant::now() < deadline,
            "after {TALK_TIMEOUT:?} the phone recorded {recorded:.1} s (of {down:.1})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        recorded = phone
            .received_recordings()
            .first()
            .map_or(0.0, |path| recorded_seconds(path));
    }
    session
        .standin
        .received_audio(DEMO_ROOM, nick)
        .await
        .unwrap()
}

/// One call of the matrix: starts the deployment with the web participant playing its tone and
/// speech, places the call with a phone limited to `codec`, talks until both sides heard
/// a whole tone and sentence, and checks (a), (b) and (c) of the file's doc.
async fn call(codec: Codec, direction: Direction) {
    if !available(&[
        "prosody",
        "prosodyctl",
        "kamailio",
        "baresip",
        "openssl",
        "espeak-ng",
        "sox",
    ]) {
        return;
    }
    let dir = Scratch(Some(
        tempfile::Builder::new()
            .prefix("jigasi-codecs-")
            .tempdir()
            .unwrap(),
    ));
    let (phone_speech, phone_samples) = speech_wav(dir.path(), "phone-says", PHONE_TEXT, "en-us");
    let (web_speech, web_samples) = speech_wav(dir.path(), "web-says", WEB_TEXT, "en-gb");
    let web_loop = dir.path().join("web-loop.wav");
    let web_audio = tone_then_speech(codec.conference_tone, &web_samples);
    let web_loop_len = web_audio.len();
    audio::write_wav(&web_loop, RATE, &web_audio).unwrap();
    // baresip hangs up when its file ends: silence after the speech.
    let mut phone_audio = tone_then_speech(codec.phone_tone, &phone_samples);
    phone_audio.extend(std::iter::repeat_n(0.0, RATE as usize * 20));
    let phone_wav = dir.path().join("phone-plays.wav");
    audio::write_wav(&phone_wav, RATE, &phone_audio).unwrap();

    let config = SessionConfig {
        participant: AudioSource::Wav(web_loop),
        echo: false,
        capture: false,
        extra_properties: match direction {
            Direction::InDirect => {
                vec![format!(
                    "org.jitsi.jigasi.DEFAULT_JVB_ROOM_NAME={DEMO_ROOM}"
                )]
            }
            Direction::In | Direction::Out => Vec::new(),
        },
    };
    let mut session = Session::start(Path::new(BIN), &config).await.unwrap();
    let registrar = session.deployment.kamailio.addr();
    let (user, password) = match direction {
        Direction::In | Direction::InDirect => ("alice", "alicepw"),
        Direction::Out => ("bob", "bobpw"),
    };
    let mut phone = Baresip::start(BaresipConfig {
        record: true,
        auto_answer: direction == Direction::Out,
        play_wav: Some(phone_wav),
        codecs: codec.baresip.into(),
        ..BaresipConfig::registering(user, password, registrar)
    })
    .unwrap();
    phone.wait_registered(Duration::from_secs(5)).unwrap();
    let capture = Capture::start(dir.path());
    match direction {
        Direction::In => phone
            .dial(&format!("sip:{SIP_USER}@{}", registrar.ip()))
            .unwrap(),
        Direction::InDirect => phone
            .dial(&format!(
                "sip:{SIP_USER}@127.0.0.1:{}",
                session.deployment.sip_port
            ))
            .unwrap(),
        Direction::Out => {
            let dialled = session.standin.dial(DEMO_ROOM, "bob", &[]).await;
            assert!(dialled.is_ok(), "{dialled:?}\n{}", session.gateway.log());
        }
    }
    if let Err(error) = phone.wait_event("CALL_ESTABLISHED", Duration::from_secs(20)) {
        panic!(
            "{codec:?} {direction:?}: not established: {error}\nphone:\n{}\ngateway:\n{}",
            phone.log(),
            session.gateway.log()
        );
    }
    let nick = session.new_gateway_nick().await.unwrap();

    // (a) The codec in the gateway's SDP (its answer for dial-in, its offer for dial-out) and
    // the one the phone then encodes and decodes with.
    let status = phone.command("callstat").unwrap();
    let ours = formats(&status, "remote");
    let theirs = formats(&status, "local");
    match direction {
        Direction::In | Direction::InDirect => assert!(
            ours.first().is_some_and(|line| line.contains(codec.sdp))
                && ours
                    .iter()
                    .filter(|l| !l.contains("telephone-event"))
                    .count()
                    == 1,
            "{codec:?}: the gateway's answer is not {} alone: {ours:?}\n{status}",
            codec.sdp
        ),
        Direction::Out => assert!(
            ours.iter().any(|l| l.contains(codec.sdp))
                && theirs.first().is_some_and(|l| l.contains(codec.sdp)),
            "{codec:?}: offer {ours:?}, answer {theirs:?}\n{status}"
        ),
    }
    if let Some(pt) = codec.static_pt {
        let line = ours.iter().find(|l| l.contains(codec.sdp)).unwrap();
        assert!(line.starts_with(&format!("{pt} ")), "{line}");
    }
    let log = phone.log();
    for side in ["encoder", "decoder"] {
        let line = format!("Set audio {side}: {}", codec.engine);
        assert!(
            log.contains(&line),
            "{codec:?} {direction:?}: no {line:?}:\n{log}"
        );
    }

    // The phone starts listening at any point of the participant's loop: after a whole loop, a
    // pause and the speech, it heard a tone followed by the whole sentence. The phone's own
    // tone and sentence (4 s) were sent 2.5 s before that.
    let down = seconds(web_loop_len + web_samples.len(), RATE) + PAUSE.as_secs_f64() + 0.4;
    let heard = wait_until_heard(&session, &nick, &phone, down).await;
    phone.hangup().unwrap();
    let _ = phone.wait_event("CALL_CLOSED", Duration::from_secs(5));
    let packets = capture.map(Capture::stop);
    let violations = session.standin.violations(DEMO_ROOM).await.unwrap();
    assert!(violations.is_empty(), "{violations:?}");

    let conference: Vec<f32> = heard.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let conference_wav = dir.path().join("conference-heard.wav");
    audio::write_wav(&conference_wav, RATE, &conference).unwrap();
    // baresip's files go with it: copy them (`dump-<time>-dec.wav` is what it heard).
    for file in phone.recordings() {
        let name = file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("dump-", "phone-");
        std::fs::copy(&file, dir.path().join(name)).unwrap();
    }
    let recording = phone.received_recordings().into_iter().next();
    let recording = recording.unwrap_or_else(|| panic!("no recording\n{}", phone.log()));
    let recording = dir.path().join(
        recording
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("dump-", "phone-"),
    );
    let phone_heard = audio::read_wav(&recording).unwrap();
    // (a) continued: the RTP on the wire, both ways: the payload type, and the gateway's clock.
    if let Some(packets) = packets {
        let log = phone.log();
        let gateway_port: u16 = log
            .split("receiving from 127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no RTP source in the phone's log:\n{log}"));
        let pt: u8 = ours
            .iter()
            .find(|l| l.contains(codec.sdp))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap();
        let to_phone: Vec<&RtpSeen> = packets
            .iter()
            .filter(|p| p.ports.0 == gateway_port)
            .collect();
        let from_phone = packets.iter().filter(|p| p.ports.1 == gateway_port);
        assert!(
            to_phone.len() > 100,
            "{} RTP packets to the phone",
            to_phone.len()
        );
        for packet in to_phone.iter().copied().chain(from_phone) {
            assert_eq!(packet.pt, pt, "{codec:?} {direction:?}: {packet:?}");
        }
        // Consecutive packets are one frame apart on the RTP clock (a frame the gateway skipped
        // under load is a multiple).
        let steps: Vec<u32> = to_phone
            .windows(2)
            .filter(|pair| pair[1].seq == pair[0].seq.wrapping_add(1))
            .map(|pair| pair[1].timestamp.wrapping_sub(pair[0].timestamp))
            .collect();
        let one_frame = steps.iter().filter(|&&step| step == codec.ticks).count();
        assert!(
            steps.iter().all(|step| step % codec.ticks == 0) && one_frame * 10 >= steps.len() * 9,
            "{codec:?} {direction:?}: the gateway's RTP timestamps do not step by {}: {steps:?}",
            codec.ticks
        );
    }

    // Everything else happens offline: the peers go (the phone before its registrar).
    let log = session.gateway.log();
    drop(phone);
    drop(session);

    // (b) Tones both ways, at their frequency.
    let phone_mono = phone_heard.mono();
    let up = tone_in(&conference, RATE);
    let down = tone_in(&phone_mono, phone_heard.rate);
    eprintln!(
        "{codec:?} {direction:?}: phone -> conference {up:?}, conference -> phone {down:?} \
         ({} Hz recording)",
        phone_heard.rate
    );
    for (way, tone, want) in [
        ("the conference", &up, codec.phone_tone),
        ("the phone", &down, codec.conference_tone),
    ] {
        assert!(
            tone.hz
                .is_some_and(|hz| (hz - f64::from(want)).abs() < HZ_TOLERANCE)
                && tone.seconds >= MIN_TONE.as_secs_f64(),
            "{codec:?} {direction:?}: {way} heard {tone:?}, not {want} Hz\n{log}"
        );
    }

    // The phone hears the participant's loop from any point: the sentence to score is the last
    // one that follows a tone and was heard whole (the call is most settled then).
    let from_tone = dir.path().join("phone-heard-from-tone.wav");
    // The end of a tone run is found to 100 ms; the margin also covers delay changes.
    let sentence = (PAUSE.as_secs_f64() + seconds(web_samples.len(), RATE) + 0.2)
        * f64::from(phone_heard.rate);
    let start = down
        .ends
        .iter()
        .copied()
        .rfind(|&end| end + sentence as usize <= phone_mono.len())
        .unwrap_or_default();
    audio::write_wav(&from_tone, phone_heard.rate, &phone_mono[start..]).unwrap();

    // (c) Speech both ways, scored, over the whole sentence.
    let pairs = [
        (phone_speech.as_path(), conference_wav.as_path()),
        (web_speech.as_path(), from_tone.as_path()),
    ];
    let Some(scores) = pesq(&pairs, codec.wideband) else {
        return;
    };
    let (up, down) = (scores[0], scores[1]);
    eprintln!(
        "{codec:?} {direction:?}: PESQ-{} (score, seconds) phone -> conference {up:?}, \
         conference -> phone {down:?}",
        if codec.wideband { "WB" } else { "NB" }
    );
    for (way, (score, heard), sent) in [
        ("phone -> conference", up, &phone_samples),
        ("conference -> phone", down, &web_samples),
    ] {
        let sent = seconds(sent.len(), RATE);
        assert!(
            heard > sent - 0.1,
            "{codec:?} {direction:?}: {way}: only {heard:.2} s of the {sent:.2} s sentence"
        );
        assert!(
            score >= PESQ_FLOOR,
            "{codec:?} {direction:?}: PESQ {way} {score:.2} < {PESQ_FLOOR}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcmu_dial_in() {
    call(PCMU, Direction::In).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcmu_dial_out() {
    call(PCMU, Direction::Out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcma_dial_in() {
    call(PCMA, Direction::In).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcma_dial_out() {
    call(PCMA, Direction::Out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g722_dial_in() {
    call(G722, Direction::In).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g722_dial_in_direct_to_the_gateway() {
    call(G722, Direction::InDirect).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g722_dial_out() {
    call(G722, Direction::Out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_dial_in() {
    call(OPUS, Direction::In).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_dial_out() {
    call(OPUS, Direction::Out).await;
}
