//! The benchmark's results: the JSON document, the Markdown table, the service-level check and
//! the comparison with the targets of issue 7.

use std::path::Path;

use serde::Serialize;

use crate::codec_loops::LoopResult;
use crate::stats::StreamStats;

/// Issue 7's targets (2-core machine, loopback).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Targets {
    /// Calls per core at the service level, at least.
    pub(crate) calls_per_core: f64,
    /// Gateway CPU per call-second / native-rate floor, at most.
    pub(crate) ratio_to_floor: f64,
    /// RSS per call at 100 calls, KB, at most.
    pub(crate) rss_per_call_kb: f64,
    /// Idle RSS, MB, at most.
    pub(crate) idle_rss_mb: f64,
    /// Start to ready, ms, at most.
    pub(crate) ready_ms: f64,
    /// INVITE → 200 OK p95, ms, at most.
    pub(crate) setup_p95_ms: f64,
    /// Added one-way latency p50 per direction, ms, at most.
    pub(crate) latency_p50_ms: f64,
    /// PESQ-NB phone → conference, at least.
    pub(crate) pesq_to_conference: f64,
    /// PESQ-NB conference → phone, at least.
    pub(crate) pesq_to_phone: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            calls_per_core: 150.0,
            ratio_to_floor: 1.3,
            rss_per_call_kb: 200.0,
            idle_rss_mb: 30.0,
            ready_ms: 1_000.0,
            setup_p95_ms: 300.0,
            latency_p50_ms: 40.0,
            pesq_to_conference: 4.1,
            pesq_to_phone: 4.0,
        }
    }
}

/// Service level per step.
pub(crate) const MAX_LOSS_PERCENT: f64 = 0.1;
/// Missed 20 ms deadlines, at most.
pub(crate) const MAX_MISSED_PERCENT: f64 = 0.1;
/// Gateway CPU of its one core, at most.
pub(crate) const MAX_CPU_PERCENT: f64 = 85.0;

/// One direction's packet statistics in a window.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Direction {
    /// Counters.
    pub(crate) packets: StreamStats,
    /// (lost + late) / expected, %.
    pub(crate) loss_or_late_percent: f64,
    /// Missed 20 ms deadlines / expected, %.
    pub(crate) deadline_missed_percent: f64,
}

impl From<&StreamStats> for Direction {
    fn from(stats: &StreamStats) -> Self {
        Self {
            packets: *stats,
            loss_or_late_percent: stats.loss_or_late_percent(),
            deadline_missed_percent: stats.deadline_missed_percent(),
        }
    }
}

/// One ramp step.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Step {
    /// Concurrent calls placed.
    pub(crate) calls: usize,
    /// Of those, up during the window.
    pub(crate) established: usize,
    /// Of those, failed.
    pub(crate) failed: usize,
    /// Gateway CPU in the window, % of one core.
    pub(crate) gateway_cpu_percent: f64,
    /// Gateway RSS at the end of the window.
    pub(crate) gateway_rss_mb: f64,
    /// Time the gateway's threads were runnable but waited for the CPU, % of the window (the
    /// core was taken by someone else).
    pub(crate) gateway_cpu_wait_percent: f64,
    /// Gateway CPU µs per call-second.
    pub(crate) cpu_us_per_call_second: f64,
    /// CPU of the benchmark process (callers + stand-in), % of one core.
    pub(crate) load_generator_cpu_percent: f64,
    /// Caller frames sent more than 5 ms late, %.
    pub(crate) load_generator_late_send_percent: f64,
    /// Gateway → phones.
    pub(crate) to_phone: Direction,
    /// Gateway → bridge.
    pub(crate) to_bridge: Direction,
    /// Whether the step meets the service level.
    pub(crate) meets_slo: bool,
}

/// Whether a step meets the service level: every call up, loss + lateness and missed
/// deadlines under 0.1 % in both directions, gateway CPU at most 85 %.
pub(crate) fn meets_slo(step: &Step) -> bool {
    step.established == step.calls
        && step.failed == 0
        && step.gateway_cpu_percent <= MAX_CPU_PERCENT
        && [&step.to_phone, &step.to_bridge].iter().all(|d| {
            d.packets.expected > 0
                && d.loss_or_late_percent < MAX_LOSS_PERCENT
                && d.deadline_missed_percent < MAX_MISSED_PERCENT
        })
}

/// Call setup times over every ramp call.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SetupTimes {
    /// Calls answered.
    pub(crate) calls: usize,
    /// INVITE → 200 OK, p50.
    pub(crate) invite_to_200_ms_p50: Option<f64>,
    /// INVITE → 200 OK, p95.
    pub(crate) invite_to_200_ms_p95: Option<f64>,
    /// INVITE → first RTP at the phone and at the bridge, p50.
    pub(crate) invite_to_audio_both_ways_ms_p50: Option<f64>,
    /// The same, p95.
    pub(crate) invite_to_audio_both_ways_ms_p95: Option<f64>,
}

/// One quality call.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Quality {
    /// Which.
    pub(crate) name: String,
    /// Random loss on each leg, %.
    pub(crate) loss_percent: f64,
    /// PESQ-NB of what the bridge received against the phone's speech.
    pub(crate) pesq_phone_to_conference: Option<f64>,
    /// PESQ-NB of what the phone received against the speaker's speech.
    pub(crate) pesq_conference_to_phone: Option<f64>,
    /// Added one-way latency phone → bridge, p50.
    pub(crate) latency_to_conference_ms_p50: Option<f64>,
    /// p95.
    pub(crate) latency_to_conference_ms_p95: Option<f64>,
    /// Added one-way latency bridge → phone, p50.
    pub(crate) latency_to_phone_ms_p50: Option<f64>,
    /// p95.
    pub(crate) latency_to_phone_ms_p95: Option<f64>,
    /// INVITE → 200 OK of this call.
    pub(crate) setup_ms: Option<f64>,
}

/// The ramp.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Ramp {
    /// K.
    pub(crate) speakers: usize,
    /// Calls (phones) per conference room.
    pub(crate) phones_per_room: usize,
    /// Measurement window per step, s.
    pub(crate) window_s: u64,
    /// Calls started per second.
    pub(crate) calls_per_second: f64,
    /// Steps run, in order.
    pub(crate) steps: Vec<Step>,
}

/// The headline figures.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    /// Highest step meeting the SLO (the gateway has one core).
    pub(crate) calls_per_core_at_slo: usize,
    /// Whether the ramp stopped because a step failed (otherwise the figure is a lower bound).
    pub(crate) capacity_found: bool,
    /// Gateway CPU µs per call-second at the highest step meeting the SLO (or the first step).
    pub(crate) cpu_us_per_call_second: Option<f64>,
    /// That / the native-rate floor loop.
    pub(crate) ratio_to_native_floor: Option<f64>,
    /// That / the Jigasi-style loop.
    pub(crate) ratio_to_jigasi_style: Option<f64>,
    /// (RSS at 100 calls − idle RSS) / 100, KB.
    pub(crate) rss_per_call_kb_at_100: Option<f64>,
    /// Idle RSS, MB.
    pub(crate) idle_rss_mb: f64,
    /// Process start → "gateway ready" (registered and in the brewery), ms.
    pub(crate) ready_ms: f64,
}

/// Everything.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Results {
    /// Tool and machine notes.
    pub(crate) environment: serde_json::Value,
    /// Headline figures.
    pub(crate) summary: Summary,
    /// Targets.
    pub(crate) targets: Targets,
    /// The bare codec loops.
    pub(crate) codec_loops: Vec<LoopResult>,
    /// Setup times.
    pub(crate) setup: SetupTimes,
    /// Quality calls.
    pub(crate) quality: Vec<Quality>,
    /// The ramp.
    pub(crate) ramp: Ramp,
}

/// What [`build`] needs.
pub(crate) struct Inputs {
    pub(crate) quick: bool,
    pub(crate) speakers: usize,
    pub(crate) phones_per_room: usize,
    pub(crate) window_s: u64,
    pub(crate) cps: f64,
    pub(crate) ready_ms: f64,
    pub(crate) idle_rss: u64,
    pub(crate) rss_at_100: Option<u64>,
    pub(crate) best: usize,
    pub(crate) max_step: usize,
    pub(crate) steps: Vec<Step>,
    pub(crate) setup: SetupTimes,
    pub(crate) native: Option<LoopResult>,
    pub(crate) jigasi: Option<LoopResult>,
    pub(crate) quality: Vec<Quality>,
    pub(crate) duration_s: f64,
}

/// Assembles the results.
pub(crate) fn build(inputs: Inputs) -> Results {
    let reference = inputs
        .steps
        .iter()
        .rfind(|s| s.meets_slo)
        .or(inputs.steps.first());
    let cpu = reference.map(|s| s.cpu_us_per_call_second);
    let ratio = |l: &Option<LoopResult>| {
        cpu.zip(l.as_ref())
            .map(|(c, l)| c / l.us_per_call_second.max(f64::EPSILON))
    };
    let capacity_found = inputs.steps.iter().any(|s| !s.meets_slo) || inputs.best < inputs.max_step;
    let environment = serde_json::json!({
        "quick": inputs.quick,
        "cpus": crate::cpus(),
        "cpu_model": cpu_model(),
        "gateway_cpus": 1,
        "opus_encoder_to_bridge": "the gateway's own (8 kHz input)",
        "libopus": "bundled by the opus 0.4 crate (opusic-sys)",
        "duration_s": inputs.duration_s,
        "late_after_ms": crate::stats::LATE_AFTER.as_millis() as u64,
        "deadline_ms": crate::stats::DEADLINE.as_millis() as u64,
    });
    Results {
        environment,
        summary: Summary {
            calls_per_core_at_slo: inputs.best,
            capacity_found,
            cpu_us_per_call_second: cpu,
            ratio_to_native_floor: ratio(&inputs.native),
            ratio_to_jigasi_style: ratio(&inputs.jigasi),
            rss_per_call_kb_at_100: inputs
                .rss_at_100
                .map(|r| (r as f64 - inputs.idle_rss as f64) / 100.0 / 1024.0),
            idle_rss_mb: inputs.idle_rss as f64 / 1e6,
            ready_ms: inputs.ready_ms,
        },
        targets: Targets::default(),
        codec_loops: inputs.native.into_iter().chain(inputs.jigasi).collect(),
        setup: inputs.setup,
        quality: inputs.quality,
        ramp: Ramp {
            speakers: inputs.speakers,
            phones_per_room: inputs.phones_per_room,
            window_s: inputs.window_s,
            calls_per_second: inputs.cps,
            steps: inputs.steps,
        },
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default()
}

fn num(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.digits$}"))
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

/// The Markdown report.
pub(crate) fn markdown(r: &Results) -> String {
    let t = &r.targets;
    let s = &r.summary;
    let clean = r.quality.iter().find(|q| q.loss_percent == 0.0);
    let lossy = r.quality.iter().find(|q| q.loss_percent > 0.0);
    let worst_latency = clean.and_then(|q| {
        q.latency_to_conference_ms_p50
            .zip(q.latency_to_phone_ms_p50)
            .map(|(a, b)| a.max(b))
    });
    let capacity = if s.capacity_found {
        format!("{}", s.calls_per_core_at_slo)
    } else {
        format!(
            "≥ {} (ramp ended before a failure)",
            s.calls_per_core_at_slo
        )
    };
    let mut out = String::new();
    out.push_str("# jigasi-rs benchmark results\n\n");
    out.push_str(&format!(
        "Profile: PCMU phone ↔ conference with K={} Opus speakers, {}; the gateway \
         pinned to one core ({}), load (callers + stand-in + Prosody) on the other. {}\n\n",
        r.ramp.speakers,
        if r.ramp.phones_per_room > 1 {
            format!(
                "{} calls per conference (one shared audio engine each)",
                r.ramp.phones_per_room
            )
        } else {
            "one conference per call".to_owned()
        },
        r.environment["cpu_model"].as_str().unwrap_or("unknown CPU"),
        if r.environment["quick"].as_bool() == Some(true) {
            "Quick run (`--quick`)."
        } else {
            "Full run."
        }
    ));
    out.push_str("| Metric | Measured | Target | Verdict |\n|---|---|---|---|\n");
    let mut row = |name: &str, measured: String, target: String, ok: Option<bool>| {
        out.push_str(&format!(
            "| {name} | {measured} | {target} | {} |\n",
            verdict(ok)
        ));
    };
    row(
        "Calls per core at the service level",
        capacity,
        format!("≥ {}", t.calls_per_core),
        Some(s.calls_per_core_at_slo as f64 >= t.calls_per_core),
    );
    row(
        "CPU µs per call-second",
        num(s.cpu_us_per_call_second, 0),
        "—".into(),
        None,
    );
    row(
        "… × native-rate codec floor",
        num(s.ratio_to_native_floor, 2),
        format!("≤ {}", t.ratio_to_floor),
        s.ratio_to_native_floor.map(|v| v <= t.ratio_to_floor),
    );
    row(
        "… × Jigasi-style codec loop",
        num(s.ratio_to_jigasi_style, 2),
        "—".into(),
        None,
    );
    row(
        "RSS per call at 100 calls (KB)",
        num(s.rss_per_call_kb_at_100, 0),
        format!("≤ {}", t.rss_per_call_kb),
        s.rss_per_call_kb_at_100.map(|v| v <= t.rss_per_call_kb),
    );
    row(
        "Idle RSS (MB)",
        format!("{:.1}", s.idle_rss_mb),
        format!("≤ {}", t.idle_rss_mb),
        Some(s.idle_rss_mb <= t.idle_rss_mb),
    );
    row(
        "Start → ready (registered, in the brewery), ms",
        format!("{:.0}", s.ready_ms),
        format!("≤ {}", t.ready_ms),
        Some(s.ready_ms <= t.ready_ms),
    );
    row(
        "Setup INVITE → 200 OK p50 / p95 (ms)",
        format!(
            "{} / {}",
            num(r.setup.invite_to_200_ms_p50, 0),
            num(r.setup.invite_to_200_ms_p95, 0)
        ),
        format!("p95 ≤ {}", t.setup_p95_ms),
        r.setup.invite_to_200_ms_p95.map(|v| v <= t.setup_p95_ms),
    );
    row(
        "Setup INVITE → audio both ways p50 / p95 (ms)",
        format!(
            "{} / {}",
            num(r.setup.invite_to_audio_both_ways_ms_p50, 0),
            num(r.setup.invite_to_audio_both_ways_ms_p95, 0)
        ),
        "—".into(),
        None,
    );
    row(
        "Added latency p50 phone→conference / conference→phone (ms)",
        format!(
            "{} / {}",
            num(clean.and_then(|q| q.latency_to_conference_ms_p50), 1),
            num(clean.and_then(|q| q.latency_to_phone_ms_p50), 1)
        ),
        format!("≤ {} each", t.latency_p50_ms),
        worst_latency.map(|v| v <= t.latency_p50_ms),
    );
    row(
        "PESQ-NB phone → conference",
        num(clean.and_then(|q| q.pesq_phone_to_conference), 2),
        format!("≥ {}", t.pesq_to_conference),
        clean
            .and_then(|q| q.pesq_phone_to_conference)
            .map(|v| v >= t.pesq_to_conference),
    );
    row(
        "PESQ-NB conference → phone",
        num(clean.and_then(|q| q.pesq_conference_to_phone), 2),
        format!("≥ {}", t.pesq_to_phone),
        clean
            .and_then(|q| q.pesq_conference_to_phone)
            .map(|v| v >= t.pesq_to_phone),
    );
    row(
        "PESQ-NB at 5% loss: SIP leg (phone→conf) / bridge leg (conf→phone)",
        format!(
            "{} / {}",
            num(lossy.and_then(|q| q.pesq_phone_to_conference), 2),
            num(lossy.and_then(|q| q.pesq_conference_to_phone), 2)
        ),
        "— (anchors 2.9 / 3.7)".into(),
        None,
    );
    out.push_str("\n## Bare codec loops (100 calls resident, the gateway's core)\n\n");
    out.push_str("| Loop | µs per call per 20 ms | µs per call-second | calls/core at 100 % |\n|---|---|---|---|\n");
    for l in &r.codec_loops {
        out.push_str(&format!(
            "| {} | {:.1} | {:.0} | {:.0} |\n",
            l.name, l.us_per_call_tick, l.us_per_call_second, l.calls_per_core
        ));
    }
    out.push_str(&format!(
        "\n## Ramp (window {} s per step, {} calls started per second)\n\n",
        r.ramp.window_s, r.ramp.calls_per_second
    ));
    out.push_str("| Calls | Up | Gateway CPU % | CPU wait % | µs/call·s | RSS MB | → phone loss+late % | → phone missed % | → bridge loss+late % | → bridge missed % | Load CPU % | SLO |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for st in &r.ramp.steps {
        out.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.0} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0} | {} |\n",
            st.calls,
            st.established,
            st.gateway_cpu_percent,
            st.gateway_cpu_wait_percent,
            st.cpu_us_per_call_second,
            st.gateway_rss_mb,
            st.to_phone.loss_or_late_percent,
            st.to_phone.deadline_missed_percent,
            st.to_bridge.loss_or_late_percent,
            st.to_bridge.deadline_missed_percent,
            st.load_generator_cpu_percent,
            if st.meets_slo { "yes" } else { "no" }
        ));
    }
    if !r.quality.is_empty() {
        out.push_str("\n## Quality calls (one speaker, one call at a time)\n\n");
        out.push_str("| Call | PESQ phone→conf | PESQ conf→phone | latency →conf p50/p95 ms | latency →phone p50/p95 ms |\n|---|---|---|---|---|\n");
        for q in &r.quality {
            out.push_str(&format!(
                "| {} | {} | {} | {} / {} | {} / {} |\n",
                q.name,
                num(q.pesq_phone_to_conference, 2),
                num(q.pesq_conference_to_phone, 2),
                num(q.latency_to_conference_ms_p50, 1),
                num(q.latency_to_conference_ms_p95, 1),
                num(q.latency_to_phone_ms_p50, 1),
                num(q.latency_to_phone_ms_p95, 1),
            ));
        }
    }
    out.push_str(&format!(
        "\nService level per step: every call up, gateway-caused loss or lateness (> {} ms after the \
         best-case transit) < {MAX_LOSS_PERCENT} %, packets more than {} ms late (missed 20 ms deadlines) \
         < {MAX_MISSED_PERCENT} % in both directions, gateway CPU ≤ {MAX_CPU_PERCENT} % of its core.\n",
        crate::stats::LATE_AFTER.as_millis(),
        crate::stats::DEADLINE.as_millis()
    ));
    out
}

/// Writes `results.json` and `results.md` into `dir`.
pub(crate) fn write(dir: &Path, results: &Results) -> Result<(), String> {
    let json = serde_json::to_string_pretty(results).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("results.json"), json + "\n").map_err(|e| e.to_string())?;
    std::fs::write(dir.join("results.md"), markdown(results)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(calls: usize, cpu: f64, lost: u64) -> Step {
        let stats = StreamStats {
            expected: 10_000,
            received: 10_000 - lost,
            lost,
            late: 0,
            deadline_missed: 0,
        };
        Step {
            calls,
            established: calls,
            failed: 0,
            gateway_cpu_percent: cpu,
            gateway_rss_mb: 10.0,
            gateway_cpu_wait_percent: 0.0,
            cpu_us_per_call_second: 5_000.0,
            load_generator_cpu_percent: 50.0,
            load_generator_late_send_percent: 0.0,
            to_phone: Direction::from(&stats),
            to_bridge: Direction::from(&StreamStats {
                expected: 10_000,
                received: 10_000,
                ..StreamStats::default()
            }),
            meets_slo: false,
        }
    }

    #[test]
    fn the_service_level_needs_low_loss_and_cpu_and_every_call_up() {
        assert!(meets_slo(&step(100, 60.0, 5)));
        assert!(!meets_slo(&step(100, 60.0, 10)), "0.1 % is not under 0.1 %");
        assert!(!meets_slo(&step(100, 90.0, 0)), "CPU over 85 %");
        let mut down = step(100, 60.0, 0);
        down.established = 99;
        assert!(!meets_slo(&down));
    }

    #[test]
    fn summary_uses_the_best_passing_step_and_the_loops() {
        let loop_result = |us: f64| LoopResult {
            name: "x".into(),
            calls: 100,
            ticks: 10,
            us_per_call_tick: us / 50.0,
            us_per_call_second: us,
            calls_per_core: 1.0,
        };
        let mut passing = step(100, 50.0, 0);
        passing.meets_slo = true;
        let failing = step(150, 95.0, 0);
        let results = build(Inputs {
            quick: true,
            speakers: 3,
            phones_per_room: 1,
            window_s: 10,
            cps: 10.0,
            ready_ms: 300.0,
            idle_rss: 10_000_000,
            rss_at_100: Some(10_000_000 + 100 * 102_400),
            best: 100,
            max_step: 150,
            steps: vec![passing, failing],
            setup: SetupTimes {
                calls: 0,
                invite_to_200_ms_p50: None,
                invite_to_200_ms_p95: None,
                invite_to_audio_both_ways_ms_p50: None,
                invite_to_audio_both_ways_ms_p95: None,
            },
            native: Some(loop_result(4_000.0)),
            jigasi: Some(loop_result(10_000.0)),
            quality: Vec::new(),
            duration_s: 1.0,
        });
        let s = &results.summary;
        assert!(s.capacity_found);
        assert_eq!(s.calls_per_core_at_slo, 100);
        assert_eq!(s.ratio_to_native_floor, Some(1.25));
        assert_eq!(s.ratio_to_jigasi_style, Some(0.5));
        assert_eq!(s.rss_per_call_kb_at_100, Some(100.0));
        let md = markdown(&results);
        assert!(
            md.contains("| Calls per core at the service level | 100 | ≥ 150 | **missed** |"),
            "{md}"
        );
        assert!(
            md.contains("| RSS per call at 100 calls (KB) | 100 | ≤ 200 | met |"),
            "{md}"
        );
    }
}
