//! Statistics over received packet streams and samples: loss, lateness, deadline misses,
//! percentiles.

use std::time::{Duration, Instant};

use serde::Serialize;

/// One received RTP packet: when it arrived, its (extended) sequence number and its timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rx {
    /// Arrival.
    pub(crate) at: Instant,
    /// Extended sequence number.
    pub(crate) seq: u64,
    /// RTP timestamp.
    pub(crate) ts: u32,
}

/// A packet counts as **late** when it arrives this much after the stream's best-case transit
/// (a 2-frame jitter buffer would already have played its slot out).
pub(crate) const LATE_AFTER: Duration = Duration::from_millis(40);
/// A packet **missed its 20 ms deadline** when it arrives more than one frame after the
/// best-case transit.
pub(crate) const DEADLINE: Duration = Duration::from_millis(20);

/// Loss and timing of one or more streams over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct StreamStats {
    /// Packets the sequence numbers say were sent in the window.
    pub(crate) expected: u64,
    /// Packets received.
    pub(crate) received: u64,
    /// Expected but never received.
    pub(crate) lost: u64,
    /// Received more than [`LATE_AFTER`] after the best-case transit.
    pub(crate) late: u64,
    /// Received more than [`DEADLINE`] after the best-case transit.
    pub(crate) deadline_missed: u64,
}

impl StreamStats {
    /// Stats of one stream from its arrivals (any order). `clock` is the RTP clock rate.
    /// Transit = arrival − timestamp / clock, relative to the smallest transit of the window.
    pub(crate) fn of(arrivals: &[Rx], clock: u32) -> Self {
        let (Some(first), Some(min_seq), Some(max_seq)) = (
            arrivals.first(),
            arrivals.iter().map(|r| r.seq).min(),
            arrivals.iter().map(|r| r.seq).max(),
        ) else {
            return Self::default();
        };
        let mut seqs: Vec<u64> = arrivals.iter().map(|r| r.seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let received = seqs.len() as u64;
        let expected = max_seq - min_seq + 1;
        // Transit in µs relative to the first packet; timestamps unwrap from there.
        let transits: Vec<i64> = arrivals
            .iter()
            .map(|r| {
                let since = duration_us(r.at.saturating_duration_since(first.at))
                    - duration_us(first.at.saturating_duration_since(r.at));
                let ticks = i64::from(r.ts.wrapping_sub(first.ts) as i32);
                since - ticks * 1_000_000 / i64::from(clock.max(1))
            })
            .collect();
        let base = transits.iter().copied().min().unwrap_or(0);
        let late = transits
            .iter()
            .filter(|&&t| t - base > duration_us(LATE_AFTER))
            .count() as u64;
        let deadline_missed = transits
            .iter()
            .filter(|&&t| t - base > duration_us(DEADLINE))
            .count() as u64;
        Self {
            expected,
            received,
            lost: expected.saturating_sub(received),
            late,
            deadline_missed,
        }
    }

    /// Sums stats of several streams.
    pub(crate) fn add(&mut self, other: &Self) {
        self.expected += other.expected;
        self.received += other.received;
        self.lost += other.lost;
        self.late += other.late;
        self.deadline_missed += other.deadline_missed;
    }

    /// (lost + late) / expected, in percent.
    pub(crate) fn loss_or_late_percent(&self) -> f64 {
        percent(self.lost + self.late, self.expected)
    }

    /// Deadline misses / expected, in percent.
    pub(crate) fn deadline_missed_percent(&self) -> f64 {
        percent(self.deadline_missed, self.expected)
    }
}

fn duration_us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// `part / whole` in percent (0 when `whole` is 0).
pub(crate) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The `p`-th percentile (0..=100, nearest rank) of `values`; `None` when empty.
pub(crate) fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Median of `values`.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    percentile(values, 50.0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stream(t0: Instant, frames: &[(u64, u64)], clock: u32) -> Vec<Rx> {
        // (sequence, arrival ms); the timestamp follows the sequence at 20 ms per frame.
        frames
            .iter()
            .map(|&(seq, ms)| Rx {
                at: t0 + Duration::from_millis(ms),
                seq,
                ts: (seq as u32)
                    .wrapping_mul(clock / 50)
                    .wrapping_add(u32::MAX - 100),
            })
            .collect()
    }

    #[test]
    fn a_steady_stream_has_no_loss_and_no_lateness() {
        let t0 = Instant::now();
        let frames: Vec<(u64, u64)> = (0..100).map(|i| (1000 + i, 5 + i * 20)).collect();
        let stats = StreamStats::of(&stream(t0, &frames, 8_000), 8_000);
        assert_eq!(
            stats,
            StreamStats {
                expected: 100,
                received: 100,
                lost: 0,
                late: 0,
                deadline_missed: 0
            }
        );
    }

    #[test]
    fn gaps_late_packets_and_duplicates_are_counted() {
        let t0 = Instant::now();
        let mut frames: Vec<(u64, u64)> = (0..50).map(|i| (i, i * 20)).collect();
        frames.retain(|&(seq, _)| seq != 10 && seq != 11); // two lost
        frames[20].1 += 25; // one 25 ms late: a missed deadline, not late
        frames[30].1 += 45; // one 45 ms late: both
        frames.push(frames[5]); // a duplicate is not a received packet twice
        let stats = StreamStats::of(&stream(t0, &frames, 48_000), 48_000);
        assert_eq!(stats.expected, 50);
        assert_eq!(stats.received, 48);
        assert_eq!(stats.lost, 2);
        assert_eq!(stats.late, 1);
        assert_eq!(stats.deadline_missed, 2);
        assert!((stats.loss_or_late_percent() - 6.0).abs() < 1e-9);
        assert!((stats.deadline_missed_percent() - 4.0).abs() < 1e-9);
        let mut total = StreamStats::default();
        total.add(&stats);
        total.add(&stats);
        assert_eq!(total.expected, 100);
        assert_eq!(StreamStats::of(&[], 8_000), StreamStats::default());
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&values, 95.0), Some(19.0));
        assert_eq!(percentile(&values, 100.0), Some(20.0));
        assert_eq!(percentile(&values, 0.0), Some(1.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percent(1, 0), 0.0);
    }
}
