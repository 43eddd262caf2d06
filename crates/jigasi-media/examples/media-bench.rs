//! `media-bench`: the cost of one gateway call through the real engine, against a bare codec loop.
//!
//! ```text
//! cargo run --release -p jigasi-media --example media-bench -- --calls 100 [--seconds 10]
//!     [--speakers 3] [--complexity 0] [--phones-per-room 1]
//! ```
//!
//! With `--phones-per-room P` the calls sit P to a room, as the runtime runs them: one engine per
//! room with P phones; every speaker's packet arrives once per call's bridge leg (P copies, the
//! engine takes one leg's) and is decoded once for the room. Figures stay per call.
//!
//! N calls are resident at once, each its own [`Conference`] with K remote Opus speakers (real
//! speech from espeak-ng + sox, or synthetic speech-like audio if they are missing) and one PCMU
//! phone sending speech. Per 20 ms tick, for every call, the timed work is: K bridge packets into
//! the jitter buffers, one phone RTP datagram parsed and buffered, `tick` (K Opus decodes at
//! 8 kHz, N−1 mix, PCMU encode + RTP, PCMU decode, Opus encode from 8 kHz with the audio level),
//! and reading the outputs. Building the incoming packets (the remote sides' work) is not timed.
//!
//! The bare loop does only the codec work of the same call (K Opus decodes at 8 kHz, saturating
//! mix, PCMU encode, PCMU decode, Opus encode from 8 kHz) with the same encoder settings.
//!
//! CPU time is the thread's own (`/proc/thread-self/schedstat`, nanoseconds on the CPU) when
//! available, else wall time. Heap bytes are counted by a counting global allocator.

#![allow(clippy::disallowed_methods)] // a benchmark reads the clock; the library never does
#![allow(clippy::print_stdout)] // it reports on stdout
#![allow(clippy::unwrap_used, clippy::expect_used)] // setup failures abort the benchmark

use std::alloc::System;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use jigasi_media::codec::{MAX_PAYLOAD, OpusDecoder, OpusEncoder};
use jigasi_media::rtp::RtpHeader;
use jigasi_media::{
    AudioDecoder, AudioEncoder, BridgePacket, CodecKind, Conference, ConferenceConfig,
    OpusEncoderConfig, PhoneConfig, SampleRate,
};
use jigasi_types::{CallId, PayloadType, Ssrc};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

struct Args {
    calls: usize,
    seconds: u32,
    speakers: usize,
    complexity: u8,
    phones_per_room: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        calls: 100,
        seconds: 10,
        speakers: 3,
        complexity: OpusEncoderConfig::for_rate(SampleRate::Hz8000).complexity,
        phones_per_room: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        let number = |v: &str| v.parse::<usize>().unwrap_or_else(|_| usage(&flag));
        match flag.as_str() {
            "--calls" => args.calls = number(&value).max(1),
            "--seconds" => args.seconds = number(&value).max(1) as u32,
            "--speakers" => args.speakers = number(&value).max(1),
            "--complexity" => args.complexity = number(&value).min(10) as u8,
            "--phones-per-room" => args.phones_per_room = number(&value).max(1),
            _ => usage(&flag),
        }
    }
    // Whole rooms only.
    args.calls = args.calls.div_ceil(args.phones_per_room) * args.phones_per_room;
    args
}

fn usage(flag: &str) -> ! {
    eprintln!(
        "bad argument {flag}\nusage: media-bench [--calls N] [--seconds S] [--speakers K] [--complexity C] [--phones-per-room P]"
    );
    std::process::exit(2)
}

/// Thread CPU time in ns, or `None` if the kernel does not expose it.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

struct Clock {
    cpu: bool,
    wall: Instant,
}

impl Clock {
    fn new() -> Self {
        Self {
            cpu: thread_cpu_ns().is_some(),
            wall: Instant::now(),
        }
    }

    fn now_ns(&self) -> u64 {
        if self.cpu {
            thread_cpu_ns().unwrap_or(0)
        } else {
            self.wall.elapsed().as_nanos() as u64
        }
    }
}

fn live_heap() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64 + s.bytes_reallocated as i64
}

/// Speech at 48 kHz and 8 kHz: espeak-ng + sox if present, else synthetic.
fn speech() -> (Vec<i16>, Vec<i16>, &'static str) {
    let dir = std::env::temp_dir().join(format!("media-bench-{}", std::process::id()));
    let made = (|| -> Option<(Vec<i16>, Vec<i16>)> {
        std::fs::create_dir_all(&dir).ok()?;
        let wav = dir.join("speech.wav");
        let text = "Good morning everyone, thanks for joining the weekly planning call. \
            Before we start, could everybody on the phone bridge please mute when not speaking. \
            First item on the agenda is the release schedule for the gateway, which moved by one \
            week because the load tests found a problem with the jitter buffer under packet loss. \
            The second item is the budget for next quarter, and the third is hiring.";
        run(Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "150", "-w"])
            .arg(&wav)
            .arg(text))?;
        let raw = |rate: &str, name: &str| -> Option<Vec<i16>> {
            let out = dir.join(name);
            run(Command::new("sox")
                .arg(&wav)
                .args([
                    "-r",
                    rate,
                    "-c",
                    "1",
                    "-b",
                    "16",
                    "-e",
                    "signed-integer",
                    "-t",
                    "raw",
                ])
                .arg(&out)
                .args(["rate", "-v", "norm", "-3"]))?;
            read_raw(&out)
        };
        Some((raw("48000", "s48.raw")?, raw("8000", "s8.raw")?))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    match made {
        Some((s48, s8)) if s48.len() > 48_000 && s8.len() > 8_000 => {
            (s48, s8, "espeak-ng + sox (synthetic TTS speech)")
        }
        Some(_) | None => (
            synthetic(48_000),
            synthetic(8_000),
            "built-in speech-like signal (espeak-ng or sox missing)",
        ),
    }
}

fn run(command: &mut Command) -> Option<()> {
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?
        .success()
        .then_some(())
}

fn read_raw(path: &Path) -> Option<Vec<i16>> {
    let bytes = std::fs::read(path).ok()?;
    Some(
        bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect(),
    )
}

/// 30 s of a voiced, syllable-modulated harmonic signal with a wandering pitch.
fn synthetic(rate: u32) -> Vec<i16> {
    let n = rate as usize * 30;
    let mut phase = 0.0f32;
    (0..n)
        .map(|i| {
            let t = i as f32 / rate as f32;
            let pitch = 120.0 + 30.0 * (2.0 * std::f32::consts::PI * 0.7 * t).sin();
            phase += 2.0 * std::f32::consts::PI * pitch / rate as f32;
            let syllable = (2.0 * std::f32::consts::PI * 4.0 * t).sin().max(0.0);
            let voice: f32 = (1..=10)
                .filter(|h| (*h as f32) * pitch < rate as f32 / 2.0)
                .map(|h| (phase * h as f32).sin() / h as f32)
                .sum();
            (voice * syllable * 9000.0) as i16
        })
        .collect()
}

/// Encodes speech into 20 ms Opus packets like a browser: 48 kHz, 32 kbit/s, complexity 10, FEC.
fn opus_packets(speech48: &[i16]) -> Vec<Vec<u8>> {
    let config = OpusEncoderConfig {
        complexity: 10,
        bitrate: 32_000,
        inband_fec: true,
        packet_loss_percent: 5,
    };
    let mut encoder = OpusEncoder::new(SampleRate::Hz48000, &config).unwrap();
    speech48
        .chunks_exact(960)
        .map(|frame| {
            let mut out = [0u8; MAX_PAYLOAD];
            let n = encoder.encode(frame, &mut out).unwrap();
            out[..n].to_vec()
        })
        .collect()
}

fn pcmu_packets(speech8: &[i16]) -> Vec<[u8; 160]> {
    speech8
        .chunks_exact(160)
        .map(|frame| {
            let mut out = [0u8; 160];
            jigasi_media::g711::encode_ulaw(frame, &mut out);
            out
        })
        .collect()
}

struct Result {
    /// Thread CPU time over the whole run, per call per tick.
    cpu_us: f64,
    /// Median wall time of one tick, per call.
    median_wall_us: f64,
    /// 99th percentile wall time of one tick, per call.
    p99_wall_us: f64,
    /// Rust heap per call (the counting allocator).
    heap_per_call: f64,
    /// Resident memory per call (includes libopus, which allocates with C malloc).
    rss_per_call: f64,
    checksum: u64,
}

/// Resident set size in bytes (`VmRSS` of /proc/self/status), 0 if unavailable.
fn rss() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Per-tick timing: wall time per tick, CPU time over the whole measured span.
struct Timer {
    clock: Clock,
    per_tick: Vec<u64>,
    cpu_total: u64,
    wall_start: Instant,
}

impl Timer {
    fn new(ticks: usize) -> Self {
        Self {
            clock: Clock::new(),
            per_tick: Vec::with_capacity(ticks),
            cpu_total: 0,
            wall_start: Instant::now(),
        }
    }

    fn start(&mut self) -> u64 {
        self.wall_start = Instant::now();
        self.clock.now_ns()
    }

    fn stop(&mut self, cpu_start: u64, measured: bool) {
        let wall = self.wall_start.elapsed().as_nanos() as u64;
        let cpu = self.clock.now_ns().saturating_sub(cpu_start);
        if measured {
            self.per_tick.push(wall);
            self.cpu_total += cpu;
        }
    }
}

fn bench_engine(args: &Args, opus: &[Vec<u8>], pcmu: &[[u8; 160]]) -> Result {
    let heap_before = live_heap();
    let rss_before = rss();
    let per_room = args.phones_per_room;
    let mut rooms: Vec<Conference> = (0..args.calls / per_room)
        .map(|r| {
            let mut conference = Conference::new(ConferenceConfig::default());
            for k in 0..args.speakers {
                conference.add_speaker(Ssrc::new(k as u32 + 1)).unwrap();
            }
            for p in 0..per_room {
                let mut phone = PhoneConfig::new(
                    CodecKind::Pcmu,
                    Ssrc::new(100 + p as u32),
                    Ssrc::new(200 + p as u32),
                );
                phone.bridge_opus.complexity = args.complexity;
                phone.first_sequence = (r * per_room + p) as u16;
                conference
                    .add_phone(CallId::new(p as u64 + 1), phone)
                    .unwrap();
            }
            conference
        })
        .collect();
    let ticks = args.seconds as usize * 50;
    let warmup = 50;
    let start = Instant::now();
    let mut timer = Timer::new(ticks);
    let mut datagrams = vec![[0u8; 172]; args.calls];
    let mut checksum = 0u64;
    let mut heap_resident = 0;
    let mut rss_resident = 0;
    for t in 0..ticks + warmup {
        let now = start + Duration::from_millis(20 * t as u64);
        // The phones' packets: the remote side's work, untimed.
        for (c, datagram) in datagrams.iter_mut().enumerate() {
            let payload = &pcmu[(t + c * 37) % pcmu.len()];
            RtpHeader {
                marker: t == 0,
                payload_type: PayloadType::new(0),
                sequence: t as u16,
                timestamp: (t * 160) as u32,
                ssrc: Ssrc::new(0x5150),
            }
            .write(payload, datagram)
            .unwrap();
        }
        let t0 = timer.start();
        for (r, conference) in rooms.iter_mut().enumerate() {
            for k in 0..args.speakers {
                let payload = &opus[(t + r * 101 + k * 997) % opus.len()];
                let packet = BridgePacket {
                    ssrc: Ssrc::new(k as u32 + 1),
                    payload_type: PayloadType::new(111),
                    sequence: t as u16,
                    timestamp: (t * 960) as u32,
                    audio_level: None,
                    payload,
                };
                // Every call's bridge leg receives the speaker.
                for p in 0..per_room {
                    conference
                        .handle_leg_packet(now, CallId::new(p as u64 + 1), &packet)
                        .unwrap();
                }
            }
            for p in 0..per_room {
                conference
                    .handle_phone_rtp(now, CallId::new(p as u64 + 1), &datagrams[r * per_room + p])
                    .unwrap();
            }
            conference.tick(now + Duration::from_millis(5));
            for out in conference.outputs() {
                checksum += out.to_phone.map_or(0, |p| p.len() as u64);
                checksum += out.to_bridge.map_or(0, |f| f.payload.len() as u64);
            }
        }
        timer.stop(t0, t >= warmup);
        if t == warmup {
            heap_resident = live_heap() - heap_before;
            rss_resident = rss() - rss_before;
        }
    }
    let stats = rooms[0].stats();
    assert_eq!(stats.decode_errors, 0, "the engine decoded cleanly");
    drop(rooms);
    summarize(timer, args.calls, heap_resident, rss_resident, checksum)
}

fn bench_bare(args: &Args, opus: &[Vec<u8>], pcmu: &[[u8; 160]]) -> Result {
    struct Bare {
        decoders: Vec<OpusDecoder>,
        encoder: OpusEncoder,
    }
    let heap_before = live_heap();
    let rss_before = rss();
    let config = OpusEncoderConfig {
        complexity: args.complexity,
        ..OpusEncoderConfig::for_rate(SampleRate::Hz8000)
    };
    let mut calls: Vec<Bare> = (0..args.calls)
        .map(|_| Bare {
            decoders: (0..args.speakers)
                .map(|_| OpusDecoder::new(SampleRate::Hz8000).unwrap())
                .collect(),
            encoder: OpusEncoder::new(SampleRate::Hz8000, &config).unwrap(),
        })
        .collect();
    let ticks = args.seconds as usize * 50;
    let mut timer = Timer::new(ticks);
    let mut heap_resident = 0;
    let mut rss_resident = 0;
    let mut checksum = 0u64;
    let mut pcm = [0i16; 160];
    let mut mix = [0i32; 160];
    let mut mixed = [0i16; 160];
    let mut ulaw = [0u8; 160];
    let mut uplink = [0i16; 160];
    let mut out = [0u8; MAX_PAYLOAD];
    for t in 0..ticks + 50 {
        let t0 = timer.start();
        for (c, call) in calls.iter_mut().enumerate() {
            mix.fill(0);
            for (k, decoder) in call.decoders.iter_mut().enumerate() {
                let payload = &opus[(t + c * 101 + k * 997) % opus.len()];
                decoder.decode(payload, &mut pcm).unwrap();
                for (m, &s) in mix.iter_mut().zip(pcm.iter()) {
                    *m += i32::from(s);
                }
            }
            for (o, &m) in mixed.iter_mut().zip(mix.iter()) {
                *o = m.clamp(-32_768, 32_767) as i16;
            }
            jigasi_media::g711::encode_ulaw(&mixed, &mut ulaw);
            checksum += u64::from(ulaw[0]);
            jigasi_media::g711::decode_ulaw(&pcmu[(t + c * 37) % pcmu.len()], &mut uplink);
            checksum += call.encoder.encode(&uplink, &mut out).unwrap() as u64;
        }
        timer.stop(t0, t >= 50);
        if t == 50 {
            heap_resident = live_heap() - heap_before;
            rss_resident = rss() - rss_before;
        }
    }
    drop(calls);
    summarize(timer, args.calls, heap_resident, rss_resident, checksum)
}

fn summarize(mut timer: Timer, calls: usize, heap: i64, rss: i64, checksum: u64) -> Result {
    timer.per_tick.sort_unstable();
    let n = timer.per_tick.len();
    let per_call_us = |ns: f64| ns / calls as f64 / 1000.0;
    Result {
        cpu_us: per_call_us(timer.cpu_total as f64 / n as f64),
        median_wall_us: per_call_us(timer.per_tick[n / 2] as f64),
        p99_wall_us: per_call_us(timer.per_tick[n * 99 / 100] as f64),
        heap_per_call: heap as f64 / calls as f64,
        rss_per_call: rss as f64 / calls as f64,
        checksum,
    }
}

fn main() {
    let args = parse_args();
    let (speech48, speech8, source) = speech();
    let opus = opus_packets(&speech48);
    let pcmu = pcmu_packets(&speech8);
    let clock = if Clock::new().cpu {
        "thread CPU time (/proc/thread-self/schedstat)"
    } else {
        "wall time (no per-thread CPU clock available)"
    };
    println!(
        "media-bench: {} calls resident, K={} Opus speakers + 1 PCMU phone each, {} per room, {} s of audio",
        args.calls, args.speakers, args.phones_per_room, args.seconds
    );
    println!(
        "  speech: {source}, {:.1} s",
        speech48.len() as f64 / 48_000.0
    );
    println!(
        "  libopus: {}; encoder to the bridge: 8 kHz input, complexity {}, 24 kbit/s, FEC on, 5% loss hint, DTX off",
        opus::version(),
        args.complexity
    );
    println!(
        "  CPU: {clock}, summed over the run; wall: per tick; both divided by the number of calls"
    );
    println!(
        "  memory: Rust heap (counting allocator) and RSS growth (also counts libopus's C malloc)"
    );

    let engine = bench_engine(&args, &opus, &pcmu);
    let bare = bench_bare(&args, &opus, &pcmu);

    let per_core = |us: f64| 20_000.0 / us;
    println!();
    println!(
        "{:<22} {:>9} {:>12} {:>11} {:>11} {:>12} {:>12}",
        "per call, 20 ms tick", "CPU µs", "calls/core", "wall p50", "wall p99", "Rust heap", "RSS"
    );
    for (name, r) in [("engine", &engine), ("bare codec loop", &bare)] {
        println!(
            "{:<22} {:>9.1} {:>12.0} {:>11.1} {:>11.1} {:>9.1} KB {:>9.1} KB",
            name,
            r.cpu_us,
            per_core(r.cpu_us),
            r.median_wall_us,
            r.p99_wall_us,
            r.heap_per_call / 1024.0,
            r.rss_per_call / 1024.0,
        );
    }
    println!(
        "(the bare loop runs second and reuses the memory the engine freed: its RSS growth reads near 0)"
    );
    let ratio = engine.cpu_us / bare.cpu_us;
    println!();
    println!("ratio engine / bare loop (CPU): {ratio:.2}x");
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    let memory = engine.rss_per_call.max(engine.heap_per_call);
    println!(
        "targets: >=150 calls/core: {} ({:.0}); <=1.3x bare: {} ({ratio:.2}x); <=200 KB/call: {} ({:.1} KB)",
        verdict(per_core(engine.cpu_us) >= 150.0),
        per_core(engine.cpu_us),
        verdict(ratio <= 1.3),
        verdict(memory <= 200.0 * 1024.0),
        memory / 1024.0
    );
    // Keeps the outputs observable so nothing is optimised away.
    if engine.checksum == 0 || bare.checksum == 0 {
        println!("warning: no output produced");
    }
}
