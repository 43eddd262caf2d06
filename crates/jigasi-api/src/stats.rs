//! The statistics Jigasi exposes on `/about/stats` and `/metrics`, with Jigasi's names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// Number of `conference_sizes` buckets Jigasi reports (sizes 0..=21, the last one "21 or more").
pub(crate) const CONFERENCE_SIZE_BUCKETS: usize = 22;

/// A snapshot of the gateway's statistics (jigasi-behaviour.md §1.15, `J/stats/Statistics.java`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatsSnapshot {
    /// Calls whose conference room is joined.
    pub conferences: u64,
    /// Sum over those calls of (room members − 1).
    pub participants: u64,
    /// `conferences / CONFERENCES_THRESHOLD`.
    pub stress_level: f64,
    /// Histogram of conference sizes (members − 1); padded to Jigasi's 22 buckets on output.
    pub conference_sizes: Vec<u64>,
    /// Calls that ended.
    pub total_conferences_completed: u64,
    /// Participants seen over all ended calls.
    pub total_participants: u64,
    /// Seconds spent in conferences by ended calls.
    pub total_conference_seconds: u64,
    /// Calls during which the phone stopped sending media.
    pub total_calls_with_dropped_media: u64,
    /// Times the phone's media stopped.
    pub total_count_dropped_media: u64,
    /// Calls whose bridge connection failed.
    pub total_calls_with_connection_failed: u64,
    /// Calls put on hold by the phone.
    pub total_calls_with_sip_call_waiting: u64,
    /// Calls whose SIP side reconnected.
    pub total_calls_with_sip_call_reconnected: u64,
    /// Calls moved to another bridge.
    pub total_calls_with_jvb_migrate: u64,
    /// Calls that received no media from the bridge.
    pub total_calls_jvb_no_media: u64,
    /// Calls whose SIP heartbeat went unanswered.
    pub total_calls_no_heartbeat_response: u64,
    /// Whether a graceful shutdown is under way.
    pub graceful_shutdown: bool,
    /// The measured quality of each running call, by call id; a call's entry goes when it ends.
    pub call_quality: BTreeMap<u64, CallQualitySample>,
}

/// The quality of one running call's two legs, as the call last measured it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CallQualitySample {
    /// Toward the phone (RTP/RTCP): `None` until the phone is attached.
    pub phone: Option<LegQualitySample>,
    /// Toward the bridge (str0m's RTCP and ICE statistics): `None` without a Jingle session.
    pub bridge: Option<LegQualitySample>,
    /// Malformed RTCP datagrams from the phone, dropped.
    pub phone_rtcp_dropped: u64,
}

/// One leg's figures.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LegQualitySample {
    /// What we receive, as we measure it.
    pub inbound: Option<StreamQualitySample>,
    /// What we send, as the far end reports it.
    pub outbound: Option<StreamQualitySample>,
    /// Round-trip time in milliseconds, once measured.
    pub rtt_ms: Option<f64>,
}

/// One direction of one leg.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StreamQualitySample {
    /// Interarrival jitter (RFC 3550 §6.4.1) in milliseconds.
    pub jitter_ms: f64,
    /// Fraction lost (0..=1) in the last RTCP reporting interval.
    pub loss_ratio: f64,
    /// The E-model MOS-CQE estimate (1..=4.5).
    pub mos: f64,
}

/// A call counts as poor below this MOS (ITU-T G.107 Annex B: R 70, "some users dissatisfied").
pub const POOR_MOS: f64 = 3.6;

impl CallQualitySample {
    /// The legs with their label.
    fn legs(&self) -> impl Iterator<Item = (&'static str, &LegQualitySample)> {
        [("phone", &self.phone), ("bridge", &self.bridge)]
            .into_iter()
            .filter_map(|(name, leg)| leg.as_ref().map(|leg| (name, leg)))
    }

    /// The lowest MOS over both legs and directions, if any was measured.
    pub fn min_mos(&self) -> Option<f64> {
        self.legs()
            .flat_map(|(_, leg)| leg.directions())
            .map(|(_, stream)| stream.mos)
            .min_by(f64::total_cmp)
    }
}

impl LegQualitySample {
    fn directions(&self) -> impl Iterator<Item = (&'static str, &StreamQualitySample)> {
        [("in", &self.inbound), ("out", &self.outbound)]
            .into_iter()
            .filter_map(|(name, stream)| stream.as_ref().map(|stream| (name, stream)))
    }
}

/// Jigasi's transcriber counters: always zero here (no transcription yet), but present so that
/// dashboards built for Jigasi keep working.
const TRANSCRIBER_COUNTERS: [&str; 16] = [
    "total_transcriber_g_requests",
    "total_transcriber_g_minutes",
    "total_transcriber_ggl_millis",
    "total_transcriber_oci_millis",
    "total_transcriber_wsp_millis",
    "total_transcriber_vsk_millis",
    "total_transcriber_started",
    "total_transcriber_stopped",
    "total_transcriber_failed",
    "total_transcriber_connection_errors",
    "total_transcriber_connection_retries",
    "total_transcriber_no_result_errors",
    "total_transcriber_send_errors",
    "total_transcriber_session_creation_errors",
    "total_transcriber_request_errors",
    "total_transcriber_limit_errors",
];

impl StatsSnapshot {
    /// The counters, in Jigasi's order, with their names.
    fn counters(&self) -> [(&'static str, u64); 11] {
        [
            (
                "total_conferences_completed",
                self.total_conferences_completed,
            ),
            ("total_participants", self.total_participants),
            ("total_conference_seconds", self.total_conference_seconds),
            (
                "total_calls_with_dropped_media",
                self.total_calls_with_dropped_media,
            ),
            ("total_count_dropped_media", self.total_count_dropped_media),
            (
                "total_calls_with_connection_failed",
                self.total_calls_with_connection_failed,
            ),
            (
                "total_calls_with_sip_call_waiting",
                self.total_calls_with_sip_call_waiting,
            ),
            (
                "total_calls_with_sip_call_reconnected",
                self.total_calls_with_sip_call_reconnected,
            ),
            (
                "total_calls_with_jvb_migrate",
                self.total_calls_with_jvb_migrate,
            ),
            ("total_calls_jvb_no_media", self.total_calls_jvb_no_media),
            (
                "total_calls_no_heartbeat_response",
                self.total_calls_no_heartbeat_response,
            ),
        ]
    }

    /// The `/about/stats` body; `timestamp` is [`utc_timestamp`] of now.
    pub fn to_json(&self, timestamp: &str) -> Value {
        let mut sizes = self.conference_sizes.clone();
        sizes.resize(CONFERENCE_SIZE_BUCKETS, 0);
        let mut body = Map::new();
        body.insert("conferences".into(), json!(self.conferences));
        body.insert("participants".into(), json!(self.participants));
        body.insert("stress_level".into(), json!(self.stress_level));
        body.insert("conference_sizes".into(), json!(sizes));
        body.insert("threads".into(), json!(thread_count()));
        body.insert("current_timestamp".into(), json!(timestamp));
        for (name, value) in self.counters() {
            body.insert(name.into(), json!(value));
        }
        for name in TRANSCRIBER_COUNTERS {
            body.insert(name.into(), json!(0));
        }
        body.insert("graceful_shutdown".into(), json!(self.graceful_shutdown));
        Value::Object(body)
    }

    /// `/metrics` as JSON (Jigasi's jicoco `MetricsContainer` JSON form): metric name → value.
    pub fn metrics_json(&self) -> Value {
        let mut body = Map::new();
        for (name, value) in self.gauges() {
            body.insert(name.into(), json!(value));
        }
        for (name, value) in self.counters() {
            body.insert(name.into(), json!(value));
        }
        body.insert("graceful_shutdown".into(), json!(self.graceful_shutdown));
        let (calls, poor) = self.quality_counts();
        body.insert("calls_with_quality".into(), json!(calls));
        body.insert("calls_poor_quality".into(), json!(poor));
        let quality: Map<String, Value> = self
            .call_quality
            .iter()
            .map(|(id, call)| {
                let legs: Map<String, Value> = call
                    .legs()
                    .map(|(name, leg)| {
                        let mut entry = Map::new();
                        for (direction, stream) in leg.directions() {
                            entry.insert(
                                direction.into(),
                                json!({
                                    "jitter_ms": stream.jitter_ms,
                                    "loss_ratio": stream.loss_ratio,
                                    "mos": stream.mos,
                                }),
                            );
                        }
                        entry.insert("rtt_ms".into(), json!(leg.rtt_ms));
                        (name.to_owned(), Value::Object(entry))
                    })
                    .collect();
                let mut legs = legs;
                legs.insert("phone_rtcp_dropped".into(), json!(call.phone_rtcp_dropped));
                (id.to_string(), Value::Object(legs))
            })
            .collect();
        body.insert("call_quality".into(), Value::Object(quality));
        Value::Object(body)
    }

    /// Calls with a MOS measured, and those of them below [`POOR_MOS`] on some leg.
    fn quality_counts(&self) -> (usize, usize) {
        let measured: Vec<f64> = self
            .call_quality
            .values()
            .filter_map(CallQualitySample::min_mos)
            .collect();
        let poor = measured.iter().filter(|mos| **mos < POOR_MOS).count();
        (measured.len(), poor)
    }

    /// The per-call quality gauges in the Prometheus text format (appended to what the
    /// `metrics` recorder renders; written here so that a call's series disappear with it):
    ///
    /// - `jitsi_jigasi_call_jitter_ms{call,leg,direction}`, `jitsi_jigasi_call_loss_ratio{..}`,
    ///   `jitsi_jigasi_call_mos{..}` per running call, leg (`phone`, `bridge`) and direction
    ///   (`in`: what we receive; `out`: what we send, as the far end reports);
    /// - `jitsi_jigasi_call_rtt_ms{call,leg}`;
    /// - `jitsi_jigasi_calls_with_quality` and `jitsi_jigasi_calls_poor_quality` (calls whose
    ///   lowest MOS is below 3.6), and `jitsi_jigasi_calls_min_mos` (lowest over all calls,
    ///   absent without calls), for alerting.
    pub fn quality_prometheus(&self) -> String {
        let mut out = String::new();
        type Value = fn(&StreamQualitySample) -> f64;
        let per_direction: [(&str, &str, Value); 3] = [
            (
                "jitsi_jigasi_call_jitter_ms",
                "Interarrival jitter (RFC 3550) per running call, leg and direction, in milliseconds.",
                |s| s.jitter_ms,
            ),
            (
                "jitsi_jigasi_call_loss_ratio",
                "Fraction of packets lost in the last RTCP interval per running call, leg and direction.",
                |s| s.loss_ratio,
            ),
            (
                "jitsi_jigasi_call_mos",
                "E-model (ITU-T G.107) MOS-CQE estimate per running call, leg and direction.",
                |s| s.mos,
            ),
        ];
        for (name, help, value) in per_direction {
            let mut family = String::new();
            for (id, call) in &self.call_quality {
                for (leg, sample) in call.legs() {
                    for (direction, stream) in sample.directions() {
                        let _ = writeln!(
                            family,
                            "{name}{{call=\"{id}\",leg=\"{leg}\",direction=\"{direction}\"}} {}",
                            value(stream)
                        );
                    }
                }
            }
            push_family(&mut out, name, help, &family);
        }
        let mut family = String::new();
        for (id, call) in &self.call_quality {
            for (leg, sample) in call.legs() {
                if let Some(rtt) = sample.rtt_ms {
                    let _ = writeln!(
                        family,
                        "jitsi_jigasi_call_rtt_ms{{call=\"{id}\",leg=\"{leg}\"}} {rtt}"
                    );
                }
            }
        }
        push_family(
            &mut out,
            "jitsi_jigasi_call_rtt_ms",
            "Round-trip time per running call and leg, in milliseconds.",
            &family,
        );
        let mut family = String::new();
        for (id, call) in &self.call_quality {
            let _ = writeln!(
                family,
                "jitsi_jigasi_call_rtcp_dropped_total{{call=\"{id}\",leg=\"phone\"}} {}",
                call.phone_rtcp_dropped
            );
        }
        push_family_of_type(
            &mut out,
            "jitsi_jigasi_call_rtcp_dropped_total",
            "Malformed RTCP datagrams dropped per running call and leg.",
            "counter",
            &family,
        );
        let (calls, poor) = self.quality_counts();
        push_family(
            &mut out,
            "jitsi_jigasi_calls_with_quality",
            "Running calls with a MOS estimate.",
            &format!("jitsi_jigasi_calls_with_quality {calls}\n"),
        );
        push_family(
            &mut out,
            "jitsi_jigasi_calls_poor_quality",
            "Running calls whose lowest MOS estimate (any leg, any direction) is below 3.6.",
            &format!("jitsi_jigasi_calls_poor_quality {poor}\n"),
        );
        if let Some(min) = self
            .call_quality
            .values()
            .filter_map(CallQualitySample::min_mos)
            .min_by(f64::total_cmp)
        {
            push_family(
                &mut out,
                "jitsi_jigasi_calls_min_mos",
                "The lowest MOS estimate over all running calls, legs and directions.",
                &format!("jitsi_jigasi_calls_min_mos {min}\n"),
            );
        }
        out
    }

    /// Records the snapshot into the current `metrics` recorder with Jigasi's metric names
    /// (prefix `jitsi_jigasi_`).
    pub fn record_metrics(&self) {
        for (name, value) in self.gauges() {
            metrics::gauge!(format!("jitsi_jigasi_{name}")).set(value);
        }
        for (name, value) in self.counters() {
            metrics::counter!(format!("jitsi_jigasi_{name}")).absolute(value);
        }
        metrics::gauge!("jitsi_jigasi_graceful_shutdown").set(if self.graceful_shutdown {
            1.0
        } else {
            0.0
        });
    }

    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    fn gauges(&self) -> [(&'static str, f64); 4] {
        [
            ("threads", thread_count() as f64),
            ("conferences", self.conferences as f64),
            ("participants", self.participants as f64),
            ("stress_level", self.stress_level),
        ]
    }
}

/// Appends one gauge family (`# HELP`, `# TYPE`, samples) unless it has no samples.
fn push_family(out: &mut String, name: &str, help: &str, samples: &str) {
    push_family_of_type(out, name, help, "gauge", samples);
}

/// Appends one family of `kind` (`gauge`, `counter`) unless it has no samples.
fn push_family_of_type(out: &mut String, name: &str, help: &str, kind: &str, samples: &str) {
    if samples.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    out.push_str(samples);
}

/// Threads of this process (Linux `/proc/self/status`), 0 where unknown.
fn thread_count() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `yyyy-MM-dd HH:mm:ss.SSS` in UTC, the format of Jigasi's `current_timestamp`.
pub fn utc_timestamp(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn stream(jitter_ms: f64, loss_ratio: f64, mos: f64) -> Option<StreamQualitySample> {
        Some(StreamQualitySample {
            jitter_ms,
            loss_ratio,
            mos,
        })
    }

    #[test]
    fn call_quality_renders_per_call_series_and_aggregates() {
        let mut snapshot = StatsSnapshot::default();
        assert_eq!(
            snapshot.quality_prometheus(),
            "# HELP jitsi_jigasi_calls_with_quality Running calls with a MOS estimate.\n\
             # TYPE jitsi_jigasi_calls_with_quality gauge\n\
             jitsi_jigasi_calls_with_quality 0\n\
             # HELP jitsi_jigasi_calls_poor_quality Running calls whose lowest MOS estimate (any leg, any direction) is below 3.6.\n\
             # TYPE jitsi_jigasi_calls_poor_quality gauge\n\
             jitsi_jigasi_calls_poor_quality 0\n"
        );
        snapshot.call_quality.insert(
            7,
            CallQualitySample {
                phone: Some(LegQualitySample {
                    inbound: stream(1.5, 0.0, 4.39),
                    outbound: stream(2.0, 0.05, 3.2),
                    rtt_ms: Some(12.5),
                }),
                bridge: Some(LegQualitySample {
                    inbound: stream(0.5, 0.0, 4.4),
                    outbound: None,
                    rtt_ms: None,
                }),
                phone_rtcp_dropped: 3,
            },
        );
        snapshot
            .call_quality
            .insert(9, CallQualitySample::default());
        let text = snapshot.quality_prometheus();
        for line in [
            "jitsi_jigasi_call_jitter_ms{call=\"7\",leg=\"phone\",direction=\"in\"} 1.5",
            "jitsi_jigasi_call_jitter_ms{call=\"7\",leg=\"phone\",direction=\"out\"} 2",
            "jitsi_jigasi_call_loss_ratio{call=\"7\",leg=\"phone\",direction=\"out\"} 0.05",
            "jitsi_jigasi_call_mos{call=\"7\",leg=\"bridge\",direction=\"in\"} 4.4",
            "jitsi_jigasi_call_rtt_ms{call=\"7\",leg=\"phone\"} 12.5",
            "# TYPE jitsi_jigasi_call_mos gauge",
            "jitsi_jigasi_calls_with_quality 1",
            "jitsi_jigasi_calls_poor_quality 1",
            "jitsi_jigasi_calls_min_mos 3.2",
            "# TYPE jitsi_jigasi_call_rtcp_dropped_total counter",
            "jitsi_jigasi_call_rtcp_dropped_total{call=\"7\",leg=\"phone\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        assert!(
            !text
                .lines()
                .any(|l| l.contains("call=\"9\"") && !l.starts_with("jitsi_jigasi_call_rtcp")),
            "nothing measured for call 9: {text}"
        );
        assert!(!text.contains("leg=\"bridge\"}"), "no bridge RTT: {text}");
        assert!(
            !text.contains("leg=\"bridge\",direction=\"out\""),
            "nothing measured there: {text}"
        );
        // Every family is declared once, before its samples.
        for name in ["jitsi_jigasi_call_jitter_ms", "jitsi_jigasi_call_rtt_ms"] {
            assert_eq!(text.matches(&format!("# TYPE {name} gauge")).count(), 1);
        }
        let json = snapshot.metrics_json();
        assert_eq!(json["calls_poor_quality"], 1);
        assert_eq!(
            json["call_quality"]["7"]["phone"]["out"]["loss_ratio"],
            0.05
        );
        assert_eq!(json["call_quality"]["7"]["phone"]["rtt_ms"], 12.5);
        assert_eq!(json["call_quality"]["7"]["phone_rtcp_dropped"], 3);
        // The call ends: its series go.
        snapshot.call_quality.remove(&7);
        let text = snapshot.quality_prometheus();
        assert!(!text.contains("call=\"7\""), "{text}");
        assert!(text.contains("jitsi_jigasi_calls_with_quality 0"));
        assert!(!text.contains("jitsi_jigasi_calls_min_mos"));
    }

    #[test]
    fn timestamps_are_utc_in_jigasis_format() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01 00:00:00.000");
        // 2026-11-22 05:06:07.089 UTC
        let t = UNIX_EPOCH + Duration::from_millis(1_795_323_967_089);
        assert_eq!(utc_timestamp(t), "2026-11-22 05:06:07.089");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_timestamp(t), "2000-02-29 00:00:00.000");
    }

    #[test]
    fn stats_json_has_every_jigasi_key() {
        let snapshot = StatsSnapshot {
            conferences: 2,
            participants: 7,
            stress_level: 0.02,
            conference_sizes: vec![0, 1, 0, 1],
            total_conferences_completed: 5,
            ..StatsSnapshot::default()
        };
        let body = snapshot.to_json("2026-11-22 05:06:07.089");
        for key in [
            "conferences",
            "participants",
            "stress_level",
            "conference_sizes",
            "threads",
            "current_timestamp",
            "total_conferences_completed",
            "total_participants",
            "total_conference_seconds",
            "total_calls_with_dropped_media",
            "total_count_dropped_media",
            "total_calls_with_connection_failed",
            "total_calls_with_sip_call_waiting",
            "total_calls_with_sip_call_reconnected",
            "total_calls_with_jvb_migrate",
            "total_calls_jvb_no_media",
            "total_calls_no_heartbeat_response",
            "total_transcriber_started",
            "total_transcriber_session_creation_errors",
            "graceful_shutdown",
        ] {
            assert!(body.get(key).is_some(), "missing {key}");
        }
        assert_eq!(body["conferences"], 2);
        assert_eq!(body["participants"], 7);
        assert_eq!(body["stress_level"], 0.02);
        assert_eq!(body["total_conferences_completed"], 5);
        assert_eq!(body["conference_sizes"].as_array().map(Vec::len), Some(22));
        assert_eq!(body["conference_sizes"][3], 1);
        assert!(body["threads"].as_u64().is_some_and(|n| n >= 1));
        assert_eq!(body["graceful_shutdown"], false);
    }
}
