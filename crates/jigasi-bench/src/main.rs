//! `jigasi-bench`: the capacity and quality benchmark of the whole gateway (issue 7).
//!
//! Starts Prosody and Kamailio (`jigasi-demo`'s [`Deployment`]), the Jicofo + JVB stand-in in
//! bulk mode (one conference per call, K=3 pre-encoded Opus speakers announced by the focus),
//! and the real `jigasi-rs` binary pinned to CPU 1; then drives it with benchmark callers (SIP
//! over UDP + PCMU speech every 20 ms, `phone.rs`) from this process, pinned with the stand-in to
//! CPU 0 by `scripts/bench.sh`. It measures start-up, idle memory, two quality calls (PESQ-NB
//! and added latency per direction, clean and at 5 % loss per leg), then ramps the number of
//! concurrent calls and finds the highest that meets the service level. Results go to
//! `bench/results.json`, `bench/results.md` and `bench/chart.png`.
//!
//! ```text
//! scripts/bench.sh [--quick] [--steps 25,50,100,150,200] [--window 20] [--cps 10] [--no-quality]
//! ```

#![allow(clippy::print_stdout)]
// the benchmark reports on stdout
// The benchmark picks single events out of the stand-in's long event enum.
#![allow(clippy::wildcard_enum_match_arm)]

mod audio;
mod codec_loops;
mod phone;
mod procfs;
mod report;
mod sip;
mod stats;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jigasi_demo::{Deployment, GatewayProcess, READY_LINE, gateway_binary};
use jigasi_standin::{AudioSource, PreencodedAudio, StandIn, StandInConfig, StandInEvent};
use jigasi_types::Secret;
use tokio::sync::watch;

use crate::audio::{Speech, write_wav};
use crate::codec_loops::{Inputs, LoopResult};
use crate::phone::{PhoneConfig, Shared};
use crate::report::{Quality, SetupTimes, Step};
use crate::stats::{Rx, StreamStats, median, percentile};

/// Command-line options.
#[derive(Debug, Clone)]
struct Options {
    quick: bool,
    steps: Vec<usize>,
    window: Duration,
    cps: f64,
    quality: bool,
    out: PathBuf,
    speakers: usize,
    /// Calls per conference room (the gateway shares one audio engine per room).
    phones_per_room: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        steps: vec![25, 50, 75, 100, 125, 150, 200],
        window: Duration::from_secs(20),
        cps: 10.0,
        quality: true,
        out: PathBuf::from("bench"),
        speakers: 3,
        phones_per_room: 1,
    };
    let mut steps_given = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--no-quality" => options.quality = false,
            "--steps" => {
                options.steps = parse_steps(&value("--steps")?)?;
                steps_given = true;
            }
            "--window" => {
                let secs: u64 = value("--window")?.parse().map_err(|_| "bad --window")?;
                options.window = Duration::from_secs(secs.max(2));
            }
            "--cps" => {
                let cps: f64 = value("--cps")?.parse().map_err(|_| "bad --cps")?;
                options.cps = cps.clamp(0.5, 100.0);
            }
            "--out" => options.out = PathBuf::from(value("--out")?),
            "--phones-per-room" => {
                let phones: usize = value("--phones-per-room")?
                    .parse()
                    .map_err(|_| "bad --phones-per-room")?;
                options.phones_per_room = phones.max(1);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if options.quick {
        if !steps_given {
            options.steps = vec![25, 50, 100];
        }
        options.window = options.window.min(Duration::from_secs(10));
    }
    Ok(options)
}

const USAGE: &str = "usage: jigasi-bench [--quick] [--steps N,N,...] [--window SECONDS] \
    [--cps CALLS_PER_SECOND] [--no-quality] [--out DIR] [--phones-per-room P]\n       jigasi-bench --codec-loops \
    SPEECH_DIR CALLS TICKS (internal: run on the gateway's core by the benchmark)";

/// Parses `25,50,100` into ascending, de-duplicated call counts.
fn parse_steps(text: &str) -> Result<Vec<usize>, String> {
    let mut steps = text
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad step {s:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    steps.retain(|&s| s > 0);
    steps.sort_unstable();
    steps.dedup();
    if steps.is_empty() {
        return Err("no steps".into());
    }
    Ok(steps)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--codec-loops") {
        std::process::exit(match codec_loops_child(&args[2..]) {
            Ok(()) => 0,
            Err(error) => {
                eprintln!("codec loops: {error}");
                1
            }
        });
    }
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start tokio: {error}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(bench(options)) {
        Ok(()) => {}
        Err(error) => {
            eprintln!("benchmark failed: {error}");
            std::process::exit(1);
        }
    }
}

/// `--codec-loops DIR CALLS TICKS`: runs both bare loops and prints them as one JSON line.
fn codec_loops_child(args: &[String]) -> Result<(), String> {
    let [dir, calls, ticks] = args else {
        return Err(USAGE.into());
    };
    let calls: usize = calls.parse().map_err(|_| "bad CALLS")?;
    let ticks: usize = ticks.parse().map_err(|_| "bad TICKS")?;
    let speech = Speech::generate(Path::new(dir))?;
    let frames = speech.opus_frames()?;
    let opus: Vec<Vec<u8>> = frames.iter().map(|f| f.payload.clone()).collect();
    let pcmu = speech.pcmu_frames();
    let inputs = Inputs {
        opus: &opus,
        pcmu: &pcmu,
    };
    let native = codec_loops::native_floor(&inputs, calls, 3, ticks)?;
    let jigasi = codec_loops::jigasi_style(&inputs, calls, 3, ticks)?;
    let json = serde_json::to_string(&[native, jigasi]).map_err(|e| e.to_string())?;
    println!("{json}");
    Ok(())
}

/// Runs `command` pinned to CPU `cpu` when the machine has it (and `taskset` exists).
fn pinned(cpu: usize, program: &Path) -> Command {
    if cpus() > cpu && which("taskset") {
        let mut command = Command::new("taskset");
        command.arg("-c").arg(cpu.to_string()).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// CPUs of the machine (not of this process's affinity mask, which `scripts/bench.sh` narrows
/// to CPU 0).
fn cpus() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|text| text.lines().filter(|l| l.starts_with("processor")).count())
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

fn say(text: impl AsRef<str>) {
    println!("{}", text.as_ref());
}

struct CallEntry {
    room: String,
    shared: Shared,
    nick: Option<String>,
    bridge_first_rx: Option<Instant>,
}

async fn bench(options: Options) -> Result<(), String> {
    let started = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("jigasi-bench-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let speech = Speech::generate(work.path())?;
    say(format!(
        "jigasi-bench: {:.1} s of espeak-ng speech; {} CPUs; gateway on CPU 1, load on CPU 0",
        speech.seconds(),
        cpus()
    ));
    std::fs::create_dir_all(&options.out).map_err(|e| e.to_string())?;

    // 1. The bare codec loops, on the gateway's core.
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let loop_ticks = if options.quick { 150 } else { 500 };
    say(format!(
        "codec loops: 100 calls resident, {loop_ticks} ticks, on CPU 1 ..."
    ));
    let loops_dir = work.path().join("loops");
    std::fs::create_dir_all(&loops_dir).map_err(|e| e.to_string())?;
    let output = pinned(1, &me)
        .arg("--codec-loops")
        .arg(&loops_dir)
        .args(["100", &loop_ticks.to_string()])
        .output()
        .map_err(|e| format!("codec loops: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "codec loops failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let loops: Vec<LoopResult> =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("codec loops output: {e}"))?;
    for l in &loops {
        say(format!(
            "  {:<38} {:>7.1} µs per call per tick = {:>6.0} µs per call-second ({:.0} calls/core)",
            l.name, l.us_per_call_tick, l.us_per_call_second, l.calls_per_core
        ));
    }

    // 2. Deployment, stand-in, gateway.
    let deployment = Deployment::start().map_err(|e| e.to_string())?;
    let prosody = &deployment.prosody;
    let standin_config = StandInConfig::new(
        prosody.c2s_addr(),
        prosody.component_addr(),
        prosody.domain(),
        Secret::new(prosody.component_secret().to_owned()),
        Secret::new("focuspw".to_owned()),
    );
    let standin = Arc::new(
        StandIn::start(standin_config)
            .await
            .map_err(|e| format!("stand-in: {e}"))?,
    );
    let binary = gateway_binary().map_err(|e| e.to_string())?;
    let mut args: Vec<String> = deployment
        .gateway_args()
        .into_iter()
        .filter(|a| !a.starts_with("--min-port") && !a.starts_with("--max-port"))
        .collect();
    args.push("--min-port=20000".into());
    args.push("--max-port=29999".into());
    let (program, program_args) = if cpus() > 1 && which("taskset") {
        let mut all = vec![
            "-c".to_owned(),
            "1".to_owned(),
            binary.display().to_string(),
        ];
        all.extend(args.iter().cloned());
        (PathBuf::from("taskset"), all)
    } else {
        (binary.clone(), args.clone())
    };
    say(format!(
        "$ {} {}",
        program.display(),
        program_args.join(" ")
    ));
    let spawned = Instant::now();
    let mut gateway =
        GatewayProcess::spawn(&program, &program_args, false).map_err(|e| e.to_string())?;
    gateway
        .wait_for_line(READY_LINE, Duration::from_secs(20))
        .map_err(|e| e.to_string())?;
    let ready = spawned.elapsed();
    let config_dir = deployment.config_dir().display().to_string();
    let pid = procfs::find_process(&[&config_dir, "jigasi-rs"])
        .ok_or("cannot find the gateway's process")?;
    let ticks = procfs::clock_ticks();
    standin
        .wait_for(Duration::from_secs(10), |e| {
            matches!(e, StandInEvent::GatewayAvailable { .. }).then_some(())
        })
        .await
        .ok_or("the stand-in never saw the gateway in the brewery")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = procfs::rss(pid).ok_or("cannot read the gateway's RSS")?;
    say(format!(
        "gateway pid {pid}: ready after {} ms, idle RSS {:.1} MB",
        ready.as_millis(),
        idle_rss as f64 / 1e6
    ));
    let gateway_sip = SocketAddr::from(([127, 0, 0, 1], deployment.sip_port));
    let domain = prosody.domain().to_owned();
    let opus = speech.opus_frames()?;
    let ulaw: Arc<[u8]> = speech.ulaw().into();

    // 3. Quality and latency, one call at a time.
    let mut quality = Vec::new();
    if options.quality {
        let ref8 = work.path().join("ref8.wav");
        let ref48 = work.path().join("ref48.wav");
        write_wav(&ref8, 8_000, &speech.pcm8)?;
        write_wav(&ref48, 48_000, &speech.pcm48)?;
        for (name, loss) in [("clean", 0.0), ("5% loss on each leg", 0.05)] {
            let q = quality_call(
                &standin,
                &QualitySetup {
                    name,
                    loss,
                    gateway: gateway_sip,
                    domain: &domain,
                    opus: &opus,
                    ulaw: &ulaw,
                    speech: &speech,
                    dir: work.path(),
                    ref8: &ref8,
                    ref48: &ref48,
                },
            )
            .await?;
            say(format!(
                "quality {name}: PESQ-NB phone→conference {} conference→phone {}; added latency p50 {} / {} ms",
                fmt(q.pesq_phone_to_conference),
                fmt(q.pesq_conference_to_phone),
                fmt(q.latency_to_conference_ms_p50),
                fmt(q.latency_to_phone_ms_p50)
            ));
            quality.push(q);
        }
    }

    // 4. The ramp.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut calls: Vec<CallEntry> = Vec::new();
    let mut steps = Vec::new();
    let mut rss_at_100 = None;
    let mut best = 0usize;
    let bench_pid = std::process::id();
    for &target in &options.steps {
        let adding = Instant::now();
        while calls.len() < target {
            let index = calls.len();
            let room_index = index / options.phones_per_room;
            let room = format!("bench{room_index}@conference.{domain}");
            // The room's first call creates it and its speakers; the others join it.
            let speakers = if index.is_multiple_of(options.phones_per_room) {
                standin
                    .create_conference(&room)
                    .await
                    .map_err(|e| format!("conference {room}: {e}"))?;
                standin
                    .set_keep_audio(&room, false)
                    .await
                    .map_err(|e| e.to_string())?;
                options.speakers
            } else {
                0
            };
            for k in 0..speakers {
                let source = PreencodedAudio::new(Arc::clone(&opus))
                    .starting_at(index * 37 + k * opus.len() / options.speakers.max(1));
                standin
                    .add_virtual_participant(
                        &room,
                        &format!("spk{k}"),
                        AudioSource::Preencoded(source),
                    )
                    .await
                    .map_err(|e| format!("speaker in {room}: {e}"))?;
            }
            let shared = Shared::default();
            let config = PhoneConfig {
                index,
                gateway: gateway_sip,
                room: room.clone(),
                speech: Arc::clone(&ulaw),
                offset_frames: index * 53,
                loss: 0.0,
                record: false,
            };
            tokio::spawn(phone::run(config, Arc::clone(&shared), stop_rx.clone()));
            calls.push(CallEntry {
                room,
                shared,
                nick: None,
                bridge_first_rx: None,
            });
            let due = adding + Duration::from_secs_f64(calls.len() as f64 / options.cps);
            tokio::time::sleep_until(tokio::time::Instant::from_std(due.max(Instant::now()))).await;
        }
        // Wait for every call to be answered (or fail), then let it settle.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline
            && calls.iter().any(|c| {
                let live = phone::lock(&c.shared);
                live.answered_at.is_none() && live.error.is_none()
            })
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        resolve_nicks(&standin, &mut calls).await;
        // Window.
        for c in &calls {
            let mut live = phone::lock(&c.shared);
            live.rx.clear();
            live.frames = 0;
            live.late_sends = 0;
        }
        let t0 = Instant::now();
        let cpu0 = procfs::cpu_time(pid, ticks).ok_or("gateway gone")?;
        let own0 = procfs::cpu_time(bench_pid, ticks).unwrap_or_default();
        let wait0 = procfs::run_queue_wait(pid).unwrap_or_default();
        tokio::time::sleep(options.window).await;
        let cpu1 = procfs::cpu_time(pid, ticks).ok_or("gateway gone")?;
        let own1 = procfs::cpu_time(bench_pid, ticks).unwrap_or_default();
        let wait1 = procfs::run_queue_wait(pid).unwrap_or_default();
        let t1 = Instant::now();
        let rss = procfs::rss(pid).unwrap_or(0);
        let wall = t1 - t0;
        let mut to_phone = StreamStats::default();
        let mut to_bridge = StreamStats::default();
        let (mut frames, mut late_sends, mut established, mut failed) =
            (0u64, 0u64, 0usize, 0usize);
        for c in &mut calls {
            let (rx, ok) = {
                let mut live = phone::lock(&c.shared);
                frames += live.frames;
                late_sends += live.late_sends;
                if live.error.is_some() {
                    failed += 1;
                }
                (
                    std::mem::take(&mut live.rx),
                    live.answered_at.is_some() && live.error.is_none(),
                )
            };
            if !ok {
                continue;
            }
            established += 1;
            if std::env::var_os("JIGASI_BENCH_DEBUG").is_some() && c.room.starts_with("bench0@") {
                debug_stream("to phone", &rx, 8_000);
            }
            to_phone.add(&StreamStats::of(&rx, 8_000));
            if let Some(nick) = &c.nick
                && let Ok(media) = standin.endpoint_media(&c.room, nick).await
            {
                if c.bridge_first_rx.is_none() {
                    c.bridge_first_rx = media.arrivals.first().map(|a| a.at);
                }
                let window: Vec<Rx> = media
                    .arrivals
                    .iter()
                    .filter(|a| a.at >= t0 && a.at <= t1)
                    .map(|a| Rx {
                        at: a.at,
                        seq: a.seq,
                        ts: a.rtp_time,
                    })
                    .collect();
                // A call whose bridge leg is silent counts all its packets as lost.
                if window.is_empty() {
                    let expected = (wall.as_millis() / 20) as u64;
                    to_bridge.add(&StreamStats {
                        expected,
                        lost: expected,
                        ..StreamStats::default()
                    });
                } else {
                    to_bridge.add(&StreamStats::of(&window, 48_000));
                }
            }
        }
        let cpu_percent = (cpu1 - cpu0).as_secs_f64() * 100.0 / wall.as_secs_f64();
        let load_percent = (own1 - own0).as_secs_f64() * 100.0 / wall.as_secs_f64();
        let us_per_call_second = if established > 0 {
            (cpu1 - cpu0).as_secs_f64() * 1e6 / (established as f64 * wall.as_secs_f64())
        } else {
            0.0
        };
        let step = Step {
            calls: target,
            established,
            failed,
            gateway_cpu_percent: cpu_percent,
            gateway_rss_mb: rss as f64 / 1e6,
            gateway_cpu_wait_percent: wait1.saturating_sub(wait0).as_secs_f64() * 100.0
                / wall.as_secs_f64(),
            cpu_us_per_call_second: us_per_call_second,
            load_generator_cpu_percent: load_percent,
            load_generator_late_send_percent: stats::percent(late_sends, frames),
            to_phone: report::Direction::from(&to_phone),
            to_bridge: report::Direction::from(&to_bridge),
            meets_slo: false,
        };
        let step = Step {
            meets_slo: report::meets_slo(&step),
            ..step
        };
        say(format!(
            "step {:>4} calls: {} up, CPU {:5.1} % (waited for CPU {:.1} %), {:6.0} µs/call·s, RSS {:6.1} MB | to phone loss+late {:.3} % missed {:.3} % | to bridge loss+late {:.3} % missed {:.3} % | load gen CPU {:.0} % late sends {:.2} % | {}",
            target,
            established,
            step.gateway_cpu_percent,
            step.gateway_cpu_wait_percent,
            step.cpu_us_per_call_second,
            step.gateway_rss_mb,
            step.to_phone.loss_or_late_percent,
            step.to_phone.deadline_missed_percent,
            step.to_bridge.loss_or_late_percent,
            step.to_bridge.deadline_missed_percent,
            step.load_generator_cpu_percent,
            step.load_generator_late_send_percent,
            if step.meets_slo {
                "meets the SLO"
            } else {
                "MISSES the SLO"
            }
        ));
        if target == 100 {
            rss_at_100 = Some(rss);
        }
        let ok = step.meets_slo;
        if ok && steps.iter().all(|s: &Step| s.meets_slo) {
            best = target;
        }
        steps.push(step);
        // Past a failure the ramp goes on only up to 100 calls (memory per call is taken there).
        if !ok && target >= 100 {
            break;
        }
    }
    // Setup times of every call.
    let mut to_200 = Vec::new();
    let mut to_audio = Vec::new();
    for c in &calls {
        let live = phone::lock(&c.shared);
        if let (Some(invited), Some(answered)) = (live.invited_at, live.answered_at) {
            to_200.push((answered - invited).as_secs_f64() * 1e3);
            if let (Some(phone_rx), Some(bridge_rx)) = (live.first_rx_at, c.bridge_first_rx) {
                to_audio.push((phone_rx.max(bridge_rx) - invited).as_secs_f64() * 1e3);
            }
        }
    }
    let _ = stop_tx.send(true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stopping = gateway.terminate(Duration::from_secs(20));
    if let Err(error) = stopping {
        say(format!("warning: gateway did not stop cleanly: {error}"));
    }
    let native = loops.first().cloned();
    let jigasi = loops.get(1).cloned();
    let results = report::build(report::Inputs {
        quick: options.quick,
        speakers: options.speakers,
        phones_per_room: options.phones_per_room,
        window_s: options.window.as_secs(),
        cps: options.cps,
        ready_ms: ready.as_secs_f64() * 1e3,
        idle_rss,
        rss_at_100,
        best,
        max_step: options.steps.last().copied().unwrap_or(0),
        steps,
        setup: SetupTimes {
            calls: to_200.len(),
            invite_to_200_ms_p50: median(&to_200),
            invite_to_200_ms_p95: percentile(&to_200, 95.0),
            invite_to_audio_both_ways_ms_p50: median(&to_audio),
            invite_to_audio_both_ways_ms_p95: percentile(&to_audio, 95.0),
        },
        native,
        jigasi,
        quality,
        duration_s: started.elapsed().as_secs_f64(),
    });
    report::write(&options.out, &results)?;
    say(report::markdown(&results));
    let plot = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/plot.py");
    let venv_python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/venv/bin/python");
    let python = if venv_python.is_file() {
        venv_python
    } else {
        PathBuf::from("python3")
    };
    let chart = Command::new(python)
        .arg(plot)
        .arg(options.out.join("results.json"))
        .arg(options.out.join("chart.png"))
        .status();
    if !chart.is_ok_and(|s| s.success()) {
        say("warning: no chart (matplotlib missing from target/venv?)");
    }
    Ok(())
}

/// Learns the gateway's nick in each room from the stand-in's session-initiate events.
async fn resolve_nicks(standin: &StandIn, calls: &mut [CallEntry]) {
    let mut by_room: BTreeMap<String, String> = BTreeMap::new();
    for event in standin.event_log() {
        if let StandInEvent::SessionInitiated { room, nick, .. } = event {
            by_room.insert(room, nick);
        }
    }
    for c in calls.iter_mut().filter(|c| c.nick.is_none()) {
        c.nick = by_room.get(&c.room.to_lowercase()).cloned();
        if let Some(nick) = &c.nick
            && let Ok(media) = standin.endpoint_media(&c.room, nick).await
        {
            c.bridge_first_rx = media.arrivals.first().map(|a| a.at);
        }
    }
}

/// Prints the first packets of a stream (`JIGASI_BENCH_DEBUG`): sequence and timestamp steps
/// and arrival gaps.
fn debug_stream(what: &str, rx: &[Rx], clock: u32) {
    let mut line = format!("{what}:");
    for pair in rx.windows(2).take(60) {
        line.push_str(&format!(
            " {}/{}/{:.1}",
            pair[1].seq as i64 - pair[0].seq as i64,
            pair[1].ts.wrapping_sub(pair[0].ts) * 1000 / clock,
            (pair[1].at - pair[0].at).as_secs_f64() * 1e3
        ));
    }
    say(line);
}

fn fmt(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

struct QualitySetup<'a> {
    name: &'a str,
    loss: f64,
    gateway: SocketAddr,
    domain: &'a str,
    opus: &'a Arc<[jigasi_standin::EncodedFrame]>,
    ulaw: &'a Arc<[u8]>,
    speech: &'a Speech,
    dir: &'a Path,
    ref8: &'a Path,
    ref48: &'a Path,
}

/// One call with one speaker: PESQ and added latency in both directions.
async fn quality_call(standin: &StandIn, setup: &QualitySetup<'_>) -> Result<Quality, String> {
    let tag = if setup.loss > 0.0 { "loss" } else { "clean" };
    let room = format!("quality-{tag}@conference.{}", setup.domain);
    standin
        .create_conference(&room)
        .await
        .map_err(|e| e.to_string())?;
    let source = PreencodedAudio::new(Arc::clone(setup.opus)).traced();
    standin
        .add_virtual_participant(&room, "speaker", AudioSource::Preencoded(source))
        .await
        .map_err(|e| e.to_string())?;
    if setup.loss > 0.0 {
        standin
            .set_send_loss(&room, setup.loss, 7)
            .await
            .map_err(|e| e.to_string())?;
    }
    let shared = Shared::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let config = PhoneConfig {
        index: 1_000_000 + usize::from(setup.loss > 0.0),
        gateway: setup.gateway,
        room: room.clone(),
        speech: Arc::clone(setup.ulaw),
        offset_frames: 0,
        loss: setup.loss,
        record: true,
    };
    let task = tokio::spawn(phone::run(config, Arc::clone(&shared), stop_rx));
    let nick = standin
        .wait_for(Duration::from_secs(20), |e| match e {
            StandInEvent::SessionInitiated { room: r, nick, .. } if *r == room => {
                Some(nick.clone())
            }
            _ => None,
        })
        .await
        .ok_or("the quality call never reached the conference")?;
    // Two whole loops of the speech plus margin in each direction.
    tokio::time::sleep(Duration::from_secs_f64(setup.speech.seconds() * 2.0 + 4.0)).await;
    let media = standin
        .endpoint_media(&room, &nick)
        .await
        .map_err(|e| e.to_string())?;
    let trace = standin
        .speaker_trace(&room, "speaker")
        .await
        .map_err(|e| e.to_string())?;
    let _ = stop_tx.send(true);
    let _ = task.await;
    let live = std::mem::take(&mut *phone::lock(&shared));
    if let Some(error) = &live.error {
        return Err(format!("quality call {}: {error}", setup.name));
    }

    // Conference side: what the bridge decoded from the gateway.
    let conf_wav = setup.dir.join(format!("conference-{tag}.wav"));
    write_wav(&conf_wav, 48_000, &media.audio)?;
    // Phone side: PCMU in sequence order.
    let mut payloads = live.payloads.clone();
    payloads.sort_by_key(|(seq, _)| *seq);
    payloads.dedup_by_key(|(seq, _)| *seq);
    let mut phone_pcm = Vec::new();
    for (_, payload) in &payloads {
        let mut pcm = vec![0i16; payload.len()];
        jigasi_media::g711::decode_ulaw(payload, &mut pcm);
        phone_pcm.extend(pcm);
    }
    let phone_wav = setup.dir.join(format!("phone-{tag}.wav"));
    write_wav(&phone_wav, 8_000, &phone_pcm)?;
    let to_conf = score(setup.ref8, &conf_wav)?;
    let to_phone = score(setup.ref48, &phone_wav)?;

    // Latency phone → conference.
    let frames = setup.speech.pcm8.len() / 160;
    let mut lat_conf = Vec::new();
    if let Some((_, lag)) = to_conf {
        // Start of each decoded packet in the recording, with its arrival.
        let mut starts = Vec::new();
        let mut position = 0usize;
        for a in &media.arrivals {
            if a.decoded_samples > 0 {
                starts.push((position, a.at));
                position += a.decoded_samples as usize;
            }
        }
        for f in (0..frames).step_by(10) {
            let q = (f * 160 + lag) * 6;
            let Some(&(start, at)) = starts.iter().rev().find(|(s, _)| *s <= q) else {
                continue;
            };
            let heard = at + Duration::from_secs_f64((q - start) as f64 / 48_000.0);
            // The latest send of speech frame f before it was heard.
            let sent = live
                .sent
                .iter()
                .enumerate()
                .filter(|(k, t)| k % frames == f && **t <= heard)
                .map(|(_, t)| *t)
                .next_back();
            if let Some(sent) = sent {
                lat_conf.push((heard - sent).as_secs_f64() * 1e3);
            }
        }
    }
    // Latency conference → phone.
    let mut lat_phone = Vec::new();
    if let Some((_, lag)) = to_phone {
        let mut arrivals: Vec<(u64, Instant)> = live.rx.iter().map(|r| (r.seq, r.at)).collect();
        arrivals.sort_by_key(|(seq, _)| *seq);
        arrivals.dedup_by_key(|(seq, _)| *seq);
        for f in (0..frames).step_by(10) {
            let d = f * 160 + lag;
            let Some(&(_, at)) = arrivals.get(d / 160) else {
                continue;
            };
            let heard = at + Duration::from_secs_f64((d % 160) as f64 / 8_000.0);
            let sent = trace
                .iter()
                .filter(|(index, t)| *index == f && *t <= heard)
                .map(|(_, t)| *t)
                .next_back();
            if let Some(sent) = sent {
                lat_phone.push((heard - sent).as_secs_f64() * 1e3);
            }
        }
    }
    Ok(Quality {
        name: setup.name.to_owned(),
        loss_percent: setup.loss * 100.0,
        pesq_phone_to_conference: to_conf.map(|(p, _)| p),
        pesq_conference_to_phone: to_phone.map(|(p, _)| p),
        latency_to_conference_ms_p50: median(&lat_conf),
        latency_to_conference_ms_p95: percentile(&lat_conf, 95.0),
        latency_to_phone_ms_p50: median(&lat_phone),
        latency_to_phone_ms_p95: percentile(&lat_phone, 95.0),
        setup_ms: match (live.invited_at, live.answered_at) {
            (Some(i), Some(a)) => Some((a - i).as_secs_f64() * 1e3),
            _ => None,
        },
    })
}

/// PESQ-NB and lag (8 kHz samples) of `deg` against `reference`, by `py/score.py`.
fn score(reference: &Path, deg: &Path) -> Result<Option<(f64, usize)>, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/score.py");
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/venv/bin/python");
    let python = if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    };
    let output = Command::new(python)
        .arg(script)
        .arg(reference)
        .arg(deg)
        .output()
        .map_err(|e| format!("score.py: {e}"))?;
    if !output.status.success() {
        say(format!(
            "warning: scoring failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("score.py output: {e}"))?;
    if let Some(error) = value.get("error") {
        say(format!("warning: scoring: {error}"));
        return Ok(None);
    }
    let pesq = value.get("pesq_nb").and_then(serde_json::Value::as_f64);
    let lag = value
        .get("lag")
        .and_then(serde_json::Value::as_u64)
        .and_then(|l| usize::try_from(l).ok());
    Ok(pesq.zip(lag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Targets;

    #[test]
    fn steps_are_sorted_deduplicated_and_validated() {
        assert_eq!(parse_steps("100, 50,50,0,25"), Ok(vec![25, 50, 100]));
        assert!(parse_steps("10,x").is_err());
        assert!(parse_steps("0").is_err());
        assert_eq!(Targets::default().calls_per_core, 150.0);
    }
}
