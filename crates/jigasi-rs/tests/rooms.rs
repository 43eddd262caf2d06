//! Several phones in one conference, end to end: real baresip phones dial the real binary
//! through Kamailio into the same room of the stand-in (Jicofo + JVB), where a web participant
//! plays a tone. Every phone plays its own tone, at about the web participant's level
//! (−14 dBov), and the tests check from the outside that
//!
//! - every phone hears the web participant and every other phone of its room (each phone once,
//!   at the level it was sent), and not itself (its own tone at least [`ABSENT_BELOW_DB`] below
//!   the weakest tone it hears), whatever the mix of codecs (PCMU at 8 kHz, G.722 at 16 kHz,
//!   Opus at 48 kHz);
//! - the bridge receives each phone's tone, alone, from that phone's participant, and every
//!   participant signalled its own SSRC;
//! - the gateway mixes the phones of one room to each other itself: when the bridge drops every
//!   packet it sends to the gateway, the phones lose the web participant but still hear each
//!   other (once each), and get the web participant back when the bridge sends again;
//! - a phone leaving does not disturb the others, and a phone joining later hears and is heard;
//! - a phone in another room hears only that room, and the room's phones do not hear it;
//! - `GET /debug` counts the phones that share a call's audio engine (`mediaPhones`: all the
//!   gateway's phones in the room, since the room has one engine).
//!
//! The tones are chosen so that no sum, difference or third-order product of the tones a phone
//! hears falls within 70 Hz of a tone it must not hear. Levels are measured with a Goertzel
//! filter over Hann-windowed 100 ms blocks of the last [`WINDOW`] of each recording (read while
//! baresip is still writing it), after the change being tested (a phone joined or left) plus
//! [`SETTLE`]; the tests wait for that audio, never for a fixed time. The first test of the file
//! checks these measurements on synthetic mixes (a phone hearing itself, or another phone
//! twice), without peers.
//! `JIGASI_KEEP_AUDIO=1` keeps the session's files (the phones' tones; baresip's recordings are
//! in its own directory, kept when a test fails).

#![allow(clippy::unwrap_used)]

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jigasi_demo::{DEMO_ROOM, Session, SessionConfig, http_request};
use jigasi_standin::{AudioSource, StandInEvent};
use jigasi_testpeers::{Baresip, audio, available};

/// The gateway under test: this build's, or `$JIGASI_RS_BIN` (e.g. a build from before the
/// shared room engine, to see which checks fail without it).
fn binary() -> PathBuf {
    std::env::var_os("JIGASI_RS_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_jigasi-rs")),
        PathBuf::from,
    )
}

/// The web participant of the demo room.
const SPEAKER_HZ: u32 = 440;
/// The second room of the `/debug` test, and its web participant's tone.
const OTHER_ROOM: &str = "other";
const OTHER_SPEAKER_HZ: u32 = 2300;
/// The phones' tones' amplitude (of full scale): about the stand-in's −14 dBov, so that three
/// of them mixed stay far from clipping (which would create intermodulation products).
const AMPLITUDE: f32 = 0.2;
/// The stretch of each recording measured.
const WINDOW: Duration = Duration::from_secs(2);
/// Audio after the change being tested that is not measured (jitter buffers, the bridge's
/// `source-add`).
const SETTLE: Duration = Duration::from_millis(500);
/// How long the phones may take to record that much audio with the expected tones.
const HEAR_TIMEOUT: Duration = Duration::from_secs(25);
/// A tone counts as heard at this level or above (dB, 0 = a full-scale sine).
const HEARD_DB: f64 = -30.0;
/// A tone that must not be heard is at least this far below the weakest tone that must.
const ABSENT_BELOW_DB: f64 = 25.0;
/// The level of a phone's tone (dB, [`AMPLITUDE`]); it must arrive at this level within
/// [`LEVEL_TOLERANCE_DB`], at the bridge and at every other phone. Measured: −14.0 to −15.3 dB
/// (the Opus legs lose about a decibel). A phone heard twice by another (once mixed on the
/// gateway and again through the bridge) would be up to 6 dB louder, or cancelled, depending on
/// the delay between the copies and the tone.
const PHONE_DB: f64 = -13.98;
/// How far a phone's tone may be from [`PHONE_DB`].
const LEVEL_TOLERANCE_DB: f64 = 3.0;
/// The web participants' tones, whose level is the stand-in's (about −10.5 dB here).
const SPEAKERS: [u32; 2] = [SPEAKER_HZ, OTHER_SPEAKER_HZ];

/// One phone of a test: its SIP user at Kamailio, the only codec it offers, its tone.
#[derive(Debug, Clone, Copy)]
struct Voice {
    user: &'static str,
    codecs: &'static str,
    hz: u32,
}

const ALICE: Voice = Voice {
    user: "alice",
    codecs: "PCMU",
    hz: 600,
};
const BOB: Voice = Voice {
    user: "bob",
    codecs: "G722/16000/1",
    hz: 840,
};
const CAROL: Voice = Voice {
    user: "carol",
    codecs: "opus/48000/2",
    hz: 1160,
};
const DAVE: Voice = Voice {
    user: "dave",
    codecs: "opus/48000/2",
    hz: 1840,
};

/// A phone in a call.
struct Phone {
    voice: Voice,
    room: &'static str,
    baresip: Baresip,
    /// The gateway's participant for this call.
    nick: String,
}

impl Phone {
    /// Seconds of audio the phone recorded so far.
    fn recorded(&self) -> f64 {
        self.baresip
            .received_recordings()
            .first()
            .and_then(|path| tail(path, Duration::ZERO))
            .map_or(0.0, |r| r.seconds)
    }
}

/// The end of a recording.
struct Tail {
    /// All the recording's seconds.
    seconds: f64,
    /// Its sample rate.
    rate: u32,
    /// The last samples asked for (channels averaged), fewer when it is shorter.
    samples: Vec<f32>,
}

/// The last `window` of a 16-bit WAV file that baresip is still writing (its header does not
/// count the samples yet: the data runs to the end of the file). Reads only that part.
fn tail(path: &Path, window: Duration) -> Option<Tail> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut head = [0u8; 512];
    let read = file.read(&mut head).ok()?;
    let head = &head[..read];
    let wav = audio::parse_wav(head).ok()?;
    let data = head.windows(4).position(|w| w == b"data")? + 8;
    let frame = 2 * usize::from(wav.channels);
    let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
    let frames = len.saturating_sub(data) / frame;
    let wanted = ((window.as_secs_f64() * f64::from(wav.rate)) as usize).min(frames);
    file.seek(SeekFrom::Start(
        u64::try_from(data + (frames - wanted) * frame).ok()?,
    ))
    .ok()?;
    let mut bytes = vec![0u8; wanted * frame];
    file.read_exact(&mut bytes).ok()?;
    let samples = bytes
        .chunks_exact(frame)
        .map(|f| {
            let sum: f32 = f
                .chunks_exact(2)
                .map(|s| f32::from(i16::from_le_bytes([s[0], s[1]])) / 32768.0)
                .sum();
            sum / f32::from(wav.channels)
        })
        .collect();
    Some(Tail {
        seconds: frames as f64 / f64::from(wav.rate),
        rate: wav.rate,
        samples,
    })
}

/// The level (dB, 0 = a full-scale sine) of `hz` in `samples`: the mean Goertzel power over
/// Hann-windowed 100 ms blocks (the window keeps a tone 240 Hz away more than 60 dB down).
fn level(samples: &[f32], rate: u32, hz: u32) -> f64 {
    let block = rate as usize / 10;
    let hann: Vec<f32> = (0..block)
        .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / block as f64).cos()) as f32)
        .collect();
    let powers: Vec<f64> = samples
        .chunks_exact(block)
        .map(|b| {
            let windowed: Vec<f32> = b.iter().zip(&hann).map(|(s, w)| s * w).collect();
            // The Hann window halves a sine's amplitude at its frequency: a quarter of the power.
            4.0 * audio::goertzel_power(&windowed, rate, f64::from(hz))
        })
        .collect();
    if powers.is_empty() {
        return f64::NEG_INFINITY;
    }
    let mean = powers.iter().sum::<f64>() / powers.len() as f64;
    // A full-scale sine has a normalised Goertzel power of 0.25.
    10.0 * (mean / 0.25).max(1e-12).log10()
}

/// What one listener heard: the level of each tone that must be there and of each that must not.
#[derive(Debug, Clone)]
struct Heard {
    who: String,
    present: Vec<(u32, f64)>,
    absent: Vec<(u32, f64)>,
}

impl Heard {
    fn measure(who: &str, samples: &[f32], rate: u32, present: &[u32], absent: &[u32]) -> Self {
        let levels = |tones: &[u32]| -> Vec<(u32, f64)> {
            tones
                .iter()
                .map(|&hz| (hz, level(samples, rate, hz)))
                .collect()
        };
        Heard {
            who: who.to_owned(),
            present: levels(present),
            absent: levels(absent),
        }
    }

    /// Every tone that must be there is (a phone's at its level), and every tone that must not
    /// be is far below them.
    fn ok(&self) -> bool {
        let weakest = self
            .present
            .iter()
            .map(|&(_, db)| db)
            .fold(f64::INFINITY, f64::min);
        let phones_at_their_level = self
            .present
            .iter()
            .filter(|(hz, _)| !SPEAKERS.contains(hz))
            .all(|&(_, db)| (db - PHONE_DB).abs() <= LEVEL_TOLERANCE_DB);
        weakest >= HEARD_DB
            && phones_at_their_level
            && self
                .absent
                .iter()
                .all(|&(_, db)| db <= weakest - ABSENT_BELOW_DB)
    }
}

impl std::fmt::Display for Heard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |tones: &[(u32, f64)]| {
            tones
                .iter()
                .map(|(hz, db)| format!("{hz} Hz {db:.1} dB"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "{} hears [{}], not [{}]",
            self.who,
            show(&self.present),
            show(&self.absent)
        )
    }
}

/// Starts the deployment with the web participant of the demo room playing [`SPEAKER_HZ`];
/// `None` when a peer is not installed (outside CI).
async fn start() -> Option<Session> {
    if !available(&["prosody", "prosodyctl", "kamailio", "baresip", "openssl"]) {
        return None;
    }
    let config = SessionConfig {
        participant: AudioSource::Tone(f64::from(SPEAKER_HZ)),
        echo: false,
        capture: false,
        extra_properties: Vec::new(),
    };
    let mut session = Session::start(&binary(), &config).await.unwrap();
    if std::env::var_os("JIGASI_KEEP_AUDIO").is_some() {
        eprintln!("session files kept in {}", session.keep_work().display());
    }
    Some(session)
}

/// `voice` dials into `room` playing its tone; returns once the call is established.
async fn join(session: &mut Session, room: &'static str, voice: Voice) -> Phone {
    let wav = session
        .work
        .join(format!("{}-{}.wav", voice.user, voice.hz));
    // baresip hangs up when the file ends: a minute is longer than any test.
    let tone = audio::sine(48_000, f64::from(voice.hz), AMPLITUDE, 48_000 * 60);
    audio::write_wav(&wav, 48_000, &tone).unwrap();
    let (baresip, nick) = match session
        .phone_joins_room(room, voice.user, voice.codecs, &wav)
        .await
    {
        Ok(joined) => joined,
        Err(error) => panic!(
            "{} ({}) could not join {room}: {error}",
            voice.user, voice.codecs
        ),
    };
    Phone {
        voice,
        room,
        baresip,
        nick,
    }
}

/// Waits until each phone has recorded [`SETTLE`] + [`WINDOW`] after `since` (seconds of its
/// recording when the change being tested happened) and, in the last [`WINDOW`], hears the
/// tones `present` gives for it and not those `absent` gives; measures again every 300 ms
/// while not. Panics after [`HEAR_TIMEOUT`] with the last measurements. Returns them.
async fn wait_until_heard(
    session: &mut Session,
    phones: &[&Phone],
    since: &[f64],
    present: impl Fn(&Phone) -> Vec<u32>,
    absent: impl Fn(&Phone) -> Vec<u32>,
) -> Vec<Heard> {
    let deadline = tokio::time::Instant::now() + HEAR_TIMEOUT;
    let wanted = (SETTLE + WINDOW).as_secs_f64();
    loop {
        let mut all = Vec::new();
        let mut waiting = Vec::new();
        for (phone, &since) in phones.iter().zip(since) {
            let recording = phone.baresip.received_recordings().into_iter().next();
            let tail = recording.and_then(|path| tail(&path, WINDOW));
            match tail {
                Some(tail) if tail.seconds >= since + wanted => {
                    let heard = Heard::measure(
                        &format!("{} ({})", phone.voice.user, phone.voice.codecs),
                        &tail.samples,
                        tail.rate,
                        &present(phone),
                        &absent(phone),
                    );
                    all.push(heard);
                }
                Some(tail) => waiting.push(format!(
                    "{}: {:.1} s recorded, {:.1} s wanted",
                    phone.voice.user,
                    tail.seconds,
                    since + wanted
                )),
                None => waiting.push(format!("{}: no recording yet", phone.voice.user)),
            }
        }
        if waiting.is_empty() && all.iter().all(Heard::ok) {
            for heard in &all {
                eprintln!("{heard}");
            }
            return all;
        }
        if tokio::time::Instant::now() >= deadline {
            let heard: Vec<String> = all.iter().map(ToString::to_string).collect();
            panic!(
                "after {HEAR_TIMEOUT:?}:\n{}\n{}\ngateway log:\n{}",
                heard.join("\n"),
                waiting.join("\n"),
                session.gateway.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Where each phone's recording is now.
fn marks(phones: &[&Phone]) -> Vec<f64> {
    phones.iter().map(|p| p.recorded()).collect()
}

/// The tones a phone of `room_phones` must hear: every other phone of the room, and the room's
/// speaker when given.
fn others(room_phones: &[&Phone], speaker: Option<u32>) -> impl Fn(&Phone) -> Vec<u32> {
    let tones: Vec<(String, u32)> = room_phones
        .iter()
        .map(|p| (p.nick.clone(), p.voice.hz))
        .collect();
    move |phone: &Phone| {
        speaker
            .into_iter()
            .chain(
                tones
                    .iter()
                    .filter(|(nick, _)| *nick != phone.nick)
                    .map(|&(_, hz)| hz),
            )
            .collect()
    }
}

/// The bridge receives each phone's tone from that phone's participant and nothing else of the
/// room (the last [`WINDOW`] of what it decoded), and each participant signalled SSRCs of its
/// own.
async fn bridge_hears_each_phone(session: &mut Session, phones: &[&Phone], speaker: u32) {
    for phone in phones {
        let audio = session
            .standin
            .received_audio(phone.room, &phone.nick)
            .await
            .unwrap();
        let keep = (WINDOW.as_secs_f64() * 48_000.0) as usize;
        let samples: Vec<f32> = audio[audio.len().saturating_sub(keep)..]
            .iter()
            .map(|&s| f32::from(s) / 32768.0)
            .collect();
        let absent: Vec<u32> = std::iter::once(speaker)
            .chain(
                phones
                    .iter()
                    .filter(|p| p.nick != phone.nick)
                    .map(|p| p.voice.hz),
            )
            .collect();
        let heard = Heard::measure(
            &format!("the bridge from {} ({})", phone.voice.user, phone.nick),
            &samples,
            48_000,
            &[phone.voice.hz],
            &absent,
        );
        eprintln!("{heard}");
        assert!(
            samples.len() == keep && heard.ok(),
            "{heard} ({} samples)\ngateway log:\n{}",
            samples.len(),
            session.gateway.log()
        );
    }
    let events = session.standin.event_log();
    let mut seen: Vec<jigasi_types::Ssrc> = Vec::new();
    for phone in phones {
        let room = session.standin.room_jid(phone.room).unwrap();
        let sources = events
            .iter()
            .rev()
            .find_map(|event| {
                let StandInEvent::SessionAccepted {
                    room: r,
                    nick,
                    sources,
                } = event
                else {
                    return None;
                };
                (*r == room && *nick == phone.nick).then(|| sources.clone())
            })
            .unwrap_or_else(|| panic!("no session-accept from {}", phone.nick));
        assert!(!sources.is_empty(), "{} signalled no SSRC", phone.nick);
        for ssrc in sources {
            assert!(
                !seen.contains(&ssrc),
                "{} signalled {ssrc:?}, which another phone's participant uses",
                phone.nick
            );
            seen.push(ssrc);
        }
    }
}

/// Hangs up and waits for baresip to see the call closed.
fn hang_up(phone: &mut Phone) {
    phone.baresip.hangup().unwrap();
    phone
        .baresip
        .wait_event("CALL_CLOSED", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{} did not hang up: {e}", phone.voice.user));
}

#[test]
fn the_checks_catch_a_phone_hearing_itself_or_another_phone_twice() {
    let rate = 8_000;
    let len = rate as usize * 2;
    let tone = |hz: u32, amplitude: f32| audio::sine(rate, f64::from(hz), amplitude, len);
    let mix = |tones: &[Vec<f32>]| -> Vec<f32> {
        (0..len).map(|i| tones.iter().map(|t| t[i]).sum()).collect()
    };
    let speaker = tone(SPEAKER_HZ, 0.3);
    let (bob, carol) = (tone(BOB.hz, AMPLITUDE), tone(CAROL.hz, AMPLITUDE));
    let alice_hears = |samples: &[f32]| {
        Heard::measure(
            "alice",
            samples,
            rate,
            &[SPEAKER_HZ, BOB.hz, CAROL.hz],
            &[ALICE.hz],
        )
    };

    // The right N-1 mix passes, with each tone at its level.
    let right = alice_hears(&mix(&[speaker.clone(), bob.clone(), carol.clone()]));
    assert!(right.ok(), "{right}");
    for (_, db) in right.present.iter().skip(1) {
        assert!((db - PHONE_DB).abs() < 0.5, "{right}");
    }
    // Alice hearing herself (an N mix), even 20 dB down, fails.
    let echo = tone(ALICE.hz, AMPLITUDE / 10.0);
    let heard = alice_hears(&mix(&[speaker.clone(), bob.clone(), carol.clone(), echo]));
    assert!(!heard.ok(), "{heard}");
    // A phone missing from the mix fails.
    let heard = alice_hears(&mix(&[speaker.clone(), bob.clone()]));
    assert!(!heard.ok(), "{heard}");
    // Bob heard twice (mixed on the gateway and again through the bridge) fails, whether the
    // copies add up (no delay between them) or partly cancel (60 ms apart at 840 Hz: −4 dB).
    for delay in [0, rate as usize * 60 / 1000] {
        let twice: Vec<f32> = (0..len)
            .map(|i| bob[i] + if i >= delay { bob[i - delay] } else { 0.0 })
            .collect();
        let heard = alice_hears(&mix(&[speaker.clone(), twice, carol.clone()]));
        assert!(!heard.ok(), "delay {delay}: {heard}");
    }

    // A recording still being written (the header counts no data yet) is read to its end.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("growing.wav");
    let mut bytes = audio::encode_wav(rate, &bob);
    let data = bytes.windows(4).position(|w| w == b"data").unwrap();
    bytes[data + 4..data + 8].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let read = tail(&path, Duration::from_millis(500)).unwrap();
    assert_eq!((read.rate, read.samples.len()), (rate, rate as usize / 2));
    assert!((read.seconds - 2.0).abs() < 1e-9, "{}", read.seconds);
    assert!((level(&read.samples, rate, BOB.hz) - PHONE_DB).abs() < 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_phones_in_one_room_hear_each_other_and_the_conference() {
    let Some(mut session) = start().await else {
        return;
    };
    let alice = join(&mut session, DEMO_ROOM, ALICE).await;
    let bob = join(&mut session, DEMO_ROOM, BOB).await;
    let carol = join(&mut session, DEMO_ROOM, CAROL).await;
    let phones = [&alice, &bob, &carol];
    let since = marks(&phones);
    wait_until_heard(
        &mut session,
        &phones,
        &since,
        others(&phones, Some(SPEAKER_HZ)),
        |phone| vec![phone.voice.hz],
    )
    .await;
    bridge_hears_each_phone(&mut session, &phones, SPEAKER_HZ).await;
    let violations = session.standin.violations(DEMO_ROOM).await.unwrap();
    assert!(violations.is_empty(), "{violations:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_in_one_room_hear_each_other_through_the_gateway_when_the_bridge_sends_nothing() {
    let Some(mut session) = start().await else {
        return;
    };
    let alice = join(&mut session, DEMO_ROOM, ALICE).await;
    let bob = join(&mut session, DEMO_ROOM, BOB).await;
    let carol = join(&mut session, DEMO_ROOM, CAROL).await;
    let phones = [&alice, &bob, &carol];
    let since = marks(&phones);
    wait_until_heard(
        &mut session,
        &phones,
        &since,
        others(&phones, Some(SPEAKER_HZ)),
        |phone| vec![phone.voice.hz],
    )
    .await;

    // The bridge now drops every RTP packet it sends to the gateway's participants: the
    // speaker goes silent, while the phones keep hearing each other, once, since the gateway
    // mixes its phones of one room itself (separate engines per call would hear only silence).
    session
        .standin
        .set_send_loss(DEMO_ROOM, 1.0, 7)
        .await
        .unwrap();
    let since = marks(&phones);
    wait_until_heard(
        &mut session,
        &phones,
        &since,
        others(&phones, None),
        |phone| vec![phone.voice.hz, SPEAKER_HZ],
    )
    .await;
    bridge_hears_each_phone(&mut session, &phones, SPEAKER_HZ).await;

    // The bridge sends again: the speaker is back.
    session
        .standin
        .set_send_loss(DEMO_ROOM, 0.0, 7)
        .await
        .unwrap();
    let since = marks(&phones);
    wait_until_heard(
        &mut session,
        &phones,
        &since,
        others(&phones, Some(SPEAKER_HZ)),
        |phone| vec![phone.voice.hz],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_leaving_the_room_does_not_disturb_the_others() {
    let Some(mut session) = start().await else {
        return;
    };
    let mut alice = join(&mut session, DEMO_ROOM, ALICE).await;
    let mut bob = join(&mut session, DEMO_ROOM, BOB).await;
    let mut carol = join(&mut session, DEMO_ROOM, CAROL).await;
    let all = [&alice, &bob, &carol];
    let since = marks(&all);
    wait_until_heard(
        &mut session,
        &all,
        &since,
        others(&all, Some(SPEAKER_HZ)),
        |phone| vec![phone.voice.hz],
    )
    .await;

    // Carol hangs up; her participant leaves the room.
    hang_up(&mut carol);
    let left = carol.nick.clone();
    let room = session.standin.room_jid(DEMO_ROOM).unwrap();
    session
        .standin
        .wait_for(Duration::from_secs(10), |event| {
            let StandInEvent::MemberLeft { room: r, nick } = event else {
                return None;
            };
            (*r == room && *nick == left).then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("{left} never left\n{}", session.gateway.log()));
    // Alice and Bob keep hearing the speaker and each other, and no longer Carol.
    let stayed = [&alice, &bob];
    let since = marks(&stayed);
    wait_until_heard(
        &mut session,
        &stayed,
        &since,
        others(&stayed, Some(SPEAKER_HZ)),
        |phone| vec![phone.voice.hz, CAROL.hz],
    )
    .await;
    for phone in [&mut alice, &mut bob] {
        let events = phone.baresip.drain_events().unwrap();
        let closed = events.iter().find(|e| e.contains("CALL_CLOSED"));
        assert!(
            closed.is_none(),
            "{} was hung up: {closed:?}",
            phone.voice.user
        );
    }

    // Dave joins afterwards: he hears everyone, and everyone hears him.
    let dave = join(&mut session, DEMO_ROOM, DAVE).await;
    let now = [&alice, &bob, &dave];
    let since = marks(&now);
    wait_until_heard(
        &mut session,
        &now,
        &since,
        others(&now, Some(SPEAKER_HZ)),
        |phone| vec![phone.voice.hz, CAROL.hz],
    )
    .await;
    bridge_hears_each_phone(&mut session, &now, SPEAKER_HZ).await;
    drop(carol);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_counts_the_phones_sharing_a_rooms_audio_engine() {
    let Some(mut session) = start().await else {
        return;
    };
    session.standin.create_conference(OTHER_ROOM).await.unwrap();
    session
        .standin
        .add_participant(
            OTHER_ROOM,
            "web2",
            AudioSource::Tone(f64::from(OTHER_SPEAKER_HZ)),
        )
        .await
        .unwrap();
    let alice = join(&mut session, DEMO_ROOM, ALICE).await;
    let bob = join(&mut session, DEMO_ROOM, BOB).await;
    let carol = join(&mut session, DEMO_ROOM, CAROL).await;
    let dave = join(&mut session, OTHER_ROOM, DAVE).await;

    // The rooms stay apart: the demo room's phones do not hear the other room, nor it them.
    let room = [&alice, &bob, &carol];
    let since = marks(&room);
    wait_until_heard(
        &mut session,
        &room,
        &since,
        others(&room, Some(SPEAKER_HZ)),
        |phone| vec![phone.voice.hz, OTHER_SPEAKER_HZ, DAVE.hz],
    )
    .await;
    let since = marks(&[&dave]);
    wait_until_heard(
        &mut session,
        &[&dave],
        &since,
        |_| vec![OTHER_SPEAKER_HZ],
        |_| vec![DAVE.hz, SPEAKER_HZ, ALICE.hz, BOB.hz, CAROL.hz],
    )
    .await;

    // GET /debug (Jigasi's shape, gateways.<id>.sessions.<name>): each call shows how many
    // phones share its audio engine: the three of the demo room, Dave alone in his.
    let rest = session.deployment.rest_addr();
    let phones = [&alice, &bob, &carol, &dave];
    let expected = |phone: &Phone| if phone.room == DEMO_ROOM { 3 } else { 1 };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) =
            tokio::task::spawn_blocking(move || http_request(rest, "GET", "/debug").unwrap())
                .await
                .unwrap();
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let sessions: Vec<serde_json::Value> = json["gateways"]
            .as_object()
            .into_iter()
            .flat_map(|gateways| gateways.values())
            .filter_map(|gateway| gateway["sessions"].as_object())
            .flat_map(|sessions| sessions.values().cloned())
            .collect();
        let wrong: Vec<String> = phones
            .iter()
            .filter_map(|phone| {
                let call = sessions
                    .iter()
                    .find(|c| c["jvbConference"]["nick"] == phone.nick.as_str());
                let Some(call) = call else {
                    return Some(format!("no session for {}", phone.voice.user));
                };
                let room = format!("{}@conference.meet.example.com", phone.room);
                let shown = &call["mediaPhones"];
                (call["roomJid"] != room.as_str() || *shown != expected(phone)).then(|| {
                    format!(
                        "{}: roomJid {}, mediaPhones {shown} (expected {})",
                        phone.voice.user,
                        call["roomJid"],
                        expected(phone)
                    )
                })
            })
            .collect();
        if wrong.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/debug: {}\n{body}",
            wrong.join("; ")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
