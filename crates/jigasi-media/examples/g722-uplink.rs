//! `g722-uplink`: the phone → conference path of a G.722 phone, offline, through the real
//! engine, for PESQ analysis (why a G.722 phone scored lower toward the conference than the
//! codecs chained offline: the bridge encoder's bitrate, see
//! [`OpusEncoderConfig::bitrate`]).
//!
//! ```text
//! target/venv/bin/python crates/jigasi-media/examples/g722-spandsp.py SPEECH.wav PHONE.g722 \
//!     SPANDSP16.wav
//! cargo run --release -p jigasi-media --example g722-uplink -- PHONE.g722 OUT_DIR
//!     [--bitrate B] [--complexity C] [--fec on|off] [--loss P] [--pcm IN.wav]
//! target/venv/bin/python scripts/score.py SPEECH.wav OUT_DIR/engine48.wav wb
//! ```
//!
//! `PHONE.g722` is a raw 64 kbit/s G.722 bitstream (one byte per two 16 kHz samples): from
//! spandsp, the encoder baresip uses (`g722-spandsp.py` beside this file), or the phone's RTP
//! payloads cut from a capture of the e2e test. It is cut into 20 ms RTP packets (PT 9, 160
//! ticks each) and fed, one packet per 20 ms tick (`--lead-ms`, default 5, before the tick),
//! into a [`Conference`] with one G.722 phone
//! whose bridge encoder has the engine's settings for 16 kHz ([`PhoneConfig::new`]) with the
//! options applied. Written to `OUT_DIR`, all 16-bit mono WAV:
//!
//! - `engine48.wav`: the Opus frames the engine produced for the bridge, decoded at 48 kHz like
//!   the stand-in bridge and a browser do;
//! - `direct48.wav`: the same without the engine (our G.722 decoder → an Opus encoder with the
//!   same settings → Opus at 48 kHz), which shows what the jitter buffer path adds;
//! - `ours16.wav`: our G.722 decoder's output alone (compare with a reference decoder);
//! - `pcm48.wav` with `--pcm`: that 8 or 16 kHz WAV (e.g. a reference decode of the same
//!   bitstream, or clean speech) through the Opus encoder and decoder alone.
//!
//! It prints the mean Opus bitrate and the encoder's wall time per frame. Score each WAV
//! against the speech with `scripts/score.py` (PESQ-WB: `wb`). A single 3 s sentence varies by
//! ±0.15 with the encoder's history alone: compare means over several lead-ins or long speech.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: bad input aborts it
#![allow(clippy::print_stdout)] // it reports on stdout
#![allow(clippy::disallowed_methods)] // a measuring tool reads the clock; the library never does

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jigasi_media::codec::{G722Decoder, MAX_PAYLOAD, OpusDecoder, OpusEncoder};
use jigasi_media::rtp::RtpHeader;
use jigasi_media::{
    AudioDecoder, AudioEncoder, CodecKind, Conference, ConferenceConfig, OpusEncoderConfig,
    PhoneConfig, SampleRate,
};
use jigasi_types::{CallId, PayloadType, Ssrc};

/// G.722 bytes per 20 ms packet at 64 kbit/s.
const G722_PACKET: usize = 160;

struct Args {
    input: PathBuf,
    out: PathBuf,
    opus: OpusEncoderConfig,
    pcm: Option<PathBuf>,
    lead: Duration,
}

fn parse_args() -> Args {
    let mut positional = Vec::new();
    let mut opus = PhoneConfig::new(CodecKind::G722, Ssrc::new(1), Ssrc::new(2)).bridge_opus;
    let mut pcm = None;
    let mut lead = Duration::from_millis(5);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if !arg.starts_with("--") {
            positional.push(PathBuf::from(arg));
            continue;
        }
        let value = it.next().unwrap_or_else(|| usage(&arg));
        let number = |v: &str| v.parse::<u32>().unwrap_or_else(|_| usage(&arg));
        match arg.as_str() {
            "--bitrate" => opus.bitrate = number(&value),
            "--complexity" => opus.complexity = number(&value).min(10) as u8,
            "--loss" => opus.packet_loss_percent = number(&value).min(100) as u8,
            "--fec" => opus.inband_fec = value == "on",
            "--pcm" => pcm = Some(PathBuf::from(value)),
            "--lead-ms" => lead = Duration::from_millis(u64::from(number(&value).min(19))),
            _ => usage(&arg),
        }
    }
    let [input, out] = <[PathBuf; 2]>::try_from(positional).unwrap_or_else(|_| usage("paths"));
    Args {
        input,
        out,
        opus,
        pcm,
        lead,
    }
}

fn usage(what: &str) -> ! {
    eprintln!(
        "bad argument {what}\nusage: g722-uplink PHONE.g722 OUT_DIR [--bitrate B] \
         [--complexity C] [--fec on|off] [--loss P] [--pcm IN.wav] [--lead-ms L]"
    );
    std::process::exit(2)
}

fn main() {
    let args = parse_args();
    let bitstream = std::fs::read(&args.input).expect("read the G.722 bitstream");
    std::fs::create_dir_all(&args.out).expect("create the output directory");
    println!("opus toward the bridge: {:?}", args.opus);

    let engine = through_engine(&bitstream, &args.opus, args.lead);
    write_wav(&args.out.join("engine48.wav"), 48_000, &engine);

    let (direct, ours) = direct(&bitstream, &args.opus);
    write_wav(&args.out.join("direct48.wav"), 48_000, &direct);
    write_wav(&args.out.join("ours16.wav"), 16_000, &ours);

    if let Some(pcm) = &args.pcm {
        let (rate, samples) = read_wav(pcm);
        let rate = match rate {
            8_000 => SampleRate::Hz8000,
            16_000 => SampleRate::Hz16000,
            _ => panic!("--pcm must be an 8 or 16 kHz WAV, not {rate} Hz"),
        };
        let out = opus_round_trip(rate, &samples, &args.opus);
        write_wav(&args.out.join("pcm48.wav"), 48_000, &out);
    }
    println!("written to {}", args.out.display());
}

/// The bitstream as RTP from a G.722 phone through a [`Conference`], one packet per tick,
/// arriving `lead` before its tick; the bridge frames decoded at 48 kHz. Prints the ticks at
/// which the phone's jitter buffer did anything but play a frame in order.
fn through_engine(bitstream: &[u8], opus: &OpusEncoderConfig, lead: Duration) -> Vec<i16> {
    let mut conference = Conference::new(ConferenceConfig::default());
    let mut phone = PhoneConfig::new(CodecKind::G722, Ssrc::new(100), Ssrc::new(200));
    phone.bridge_opus = *opus;
    let id = CallId::new(1);
    conference.add_phone(id, phone).unwrap();
    let mut bridge = OpusDecoder::new(SampleRate::Hz48000).unwrap();
    let mut pcm = vec![0i16; SampleRate::Hz48000.samples_per_frame()];
    let mut out = Vec::new();
    let start = Instant::now();
    let mut datagram = [0u8; 12 + G722_PACKET];
    let packets = bitstream.chunks_exact(G722_PACKET);
    // Some ticks after the last packet drain the jitter buffer.
    let ticks = packets.len() + 10;
    let mut packets = packets.enumerate();
    let mut concealed = 0;
    let mut before: Option<jigasi_media::jitter::JitterStats> = None;
    for t in 0..ticks {
        let now = start + Duration::from_millis(20 * t as u64);
        if let Some((i, payload)) = packets.next() {
            let len = RtpHeader {
                marker: i == 0,
                payload_type: PayloadType::new(9),
                sequence: i as u16,
                timestamp: (i * 160) as u32,
                ssrc: Ssrc::new(0x5150),
            }
            .write(payload, &mut datagram)
            .unwrap();
            conference
                .handle_phone_rtp(now, id, &datagram[..len])
                .unwrap();
        }
        conference.tick(now + lead);
        let jitter = *conference.phone_stats(id).unwrap().jitter;
        if let Some(before) = before {
            let changed = [
                ("plc", jitter.plc - before.plc),
                ("dropped", jitter.dropped - before.dropped),
                ("inserted", jitter.inserted - before.inserted),
                ("late", jitter.late - before.late),
                ("fec", jitter.fec - before.fec),
            ];
            for (what, n) in changed {
                if n > 0 && t < ticks - 10 {
                    println!(
                        "tick {t} ({:.2} s of the stream): jitter buffer {what}",
                        t as f64 / 50.0
                    );
                }
            }
        }
        before = Some(jitter);
        let frame = conference.outputs().find_map(|o| o.to_bridge);
        match frame {
            Some(frame) => {
                bridge.decode(frame.payload, &mut pcm).unwrap();
                out.extend_from_slice(&pcm);
            }
            None => {
                concealed += 1;
                out.extend(std::iter::repeat_n(0, pcm.len()));
            }
        }
    }
    let stats = conference.phone_stats(id).unwrap();
    println!(
        "engine: {ticks} ticks, {concealed} without a bridge frame, jitter {:?}",
        stats.jitter
    );
    out
}

/// Our G.722 decoder straight into the Opus encoder (no jitter buffer), decoded at 48 kHz; and
/// the G.722 decode alone.
fn direct(bitstream: &[u8], opus: &OpusEncoderConfig) -> (Vec<i16>, Vec<i16>) {
    let mut decoder = G722Decoder::new();
    let mut pcm16 = vec![0i16; SampleRate::Hz16000.samples_per_frame()];
    let mut decoded = Vec::new();
    for packet in bitstream.chunks_exact(G722_PACKET) {
        decoder.decode(packet, &mut pcm16).unwrap();
        decoded.extend_from_slice(&pcm16);
    }
    (
        opus_round_trip(SampleRate::Hz16000, &decoded, opus),
        decoded,
    )
}

/// PCM at `rate` through an Opus encoder with `config`, decoded at 48 kHz; prints the mean
/// bitrate the encoder produced.
fn opus_round_trip(rate: SampleRate, pcm: &[i16], config: &OpusEncoderConfig) -> Vec<i16> {
    let mut encoder = OpusEncoder::new(rate, config).unwrap();
    let mut decoder = OpusDecoder::new(SampleRate::Hz48000).unwrap();
    let mut payload = [0u8; MAX_PAYLOAD];
    let mut pcm48 = vec![0i16; SampleRate::Hz48000.samples_per_frame()];
    let mut out = Vec::new();
    let mut bytes = 0;
    let mut encoding = Duration::ZERO;
    let frames = pcm.chunks_exact(rate.samples_per_frame());
    let count = frames.len().max(1);
    for frame in frames {
        let started = Instant::now();
        let n = encoder.encode(frame, &mut payload).unwrap();
        encoding += started.elapsed();
        bytes += n;
        decoder.decode(&payload[..n], &mut pcm48).unwrap();
        out.extend_from_slice(&pcm48);
    }
    println!(
        "opus from {} Hz: {:.1} kbit/s on average, {:.1} µs (wall) per encoded frame",
        rate.hz(),
        (bytes * 8 * 50) as f64 / count as f64 / 1000.0,
        encoding.as_secs_f64() * 1e6 / count as f64
    );
    out
}

/// Writes 16-bit mono PCM as a WAV file.
fn write_wav(path: &Path, rate: u32, samples: &[i16]) {
    let data_len = (samples.len() * 2) as u32;
    let mut bytes = Vec::with_capacity(44 + samples.len() * 2);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&rate.to_le_bytes());
    bytes.extend_from_slice(&(rate * 2).to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, bytes).expect("write the WAV file");
}

/// Reads a 16-bit PCM WAV file (first channel): its rate and samples.
fn read_wav(path: &Path) -> (u32, Vec<i16>) {
    let bytes = std::fs::read(path).expect("read the WAV file");
    let mut at = 12;
    let (mut rate, mut channels) = (0u32, 1usize);
    while let Some(header) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        match &header[..4] {
            b"fmt " => {
                channels = usize::from(u16::from_le_bytes([body[2], body[3]])).max(1);
                rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            }
            b"data" => {
                let samples = body
                    .chunks_exact(2 * channels)
                    .map(|s| i16::from_le_bytes([s[0], s[1]]))
                    .collect();
                return (rate, samples);
            }
            _ => {}
        }
        at += 8 + len + (len & 1);
    }
    panic!("no data chunk in {}", path.display())
}
