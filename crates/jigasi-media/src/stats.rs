//! Per-stream reception statistics (RFC 3550 §6.4.1, Appendix A.3 and A.8): packets, loss,
//! duplicates, interarrival jitter, and the report block that carries them.

use std::time::{Duration, Instant};

use jigasi_types::Ssrc;

use crate::rtcp::{NtpTime, ReportBlock};
use crate::rtp::SequenceUnwrapper;

/// Reception statistics of one incoming RTP stream.
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    ssrc: Ssrc,
    clock_rate: u32,
    sequence: SequenceUnwrapper,
    origin: Option<Instant>,
    base_sequence: u64,
    highest_sequence: u64,
    received: u64,
    duplicates: u64,
    last_transit: Option<i64>,
    /// Jitter in timestamp units, scaled by 16 (RFC 3550 A.8).
    jitter_q4: u64,
    expected_prior: u64,
    received_prior: u64,
    last_sr: Option<(NtpTime, Instant)>,
    seen: SeenWindow,
}

impl ReceiveStats {
    /// Statistics for `ssrc`, whose media clock runs at `clock_rate` Hz.
    pub fn new(ssrc: Ssrc, clock_rate: u32) -> Self {
        Self {
            ssrc,
            clock_rate: clock_rate.max(1),
            sequence: SequenceUnwrapper::default(),
            origin: None,
            base_sequence: 0,
            highest_sequence: 0,
            received: 0,
            duplicates: 0,
            last_transit: None,
            jitter_q4: 0,
            expected_prior: 0,
            received_prior: 0,
            last_sr: None,
            seen: SeenWindow::default(),
        }
    }

    /// Records a packet that arrived at `now`. Returns its extended sequence number and whether it
    /// is a duplicate.
    pub fn record(&mut self, now: Instant, sequence: u16, timestamp: u32) -> (u64, bool) {
        let extended = self.sequence.unwrap(sequence);
        let origin = *self.origin.get_or_insert(now);
        if self.received == 0 && self.duplicates == 0 {
            self.base_sequence = extended;
            self.highest_sequence = extended;
        }
        if self.seen.check_and_set(extended) {
            self.duplicates += 1;
            return (extended, true);
        }
        self.received += 1;
        self.base_sequence = self.base_sequence.min(extended);
        self.highest_sequence = self.highest_sequence.max(extended);

        // RFC 3550 A.8: transit = arrival - timestamp, both in timestamp units.
        let arrival_ticks = ticks(now.saturating_duration_since(origin), self.clock_rate);
        let transit = arrival_ticks - i64::from(timestamp);
        if let Some(last) = self.last_transit {
            // Wrapping difference of 32-bit timestamps, taken as signed.
            let d = (transit - last) as i32;
            let d = u64::from(d.unsigned_abs());
            // J += (|D| - J) / 16, kept in Q4 fixed point.
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
        (extended, false)
    }

    /// Records a sender report from this source, received at `now` (for LSR/DLSR).
    pub fn record_sender_report(&mut self, ntp_time: NtpTime, now: Instant) {
        self.last_sr = Some((ntp_time, now));
    }

    /// The source these statistics describe.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// Packets received (duplicates excluded).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Duplicate packets seen.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Packets expected from the sequence number range seen.
    pub fn expected(&self) -> u64 {
        if self.received == 0 {
            return 0;
        }
        self.highest_sequence - self.base_sequence + 1
    }

    /// Cumulative packets lost (expected − received; negative with duplicates counted by the
    /// peer, never here).
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Interarrival jitter in timestamp units (RFC 3550 A.8).
    pub fn jitter(&self) -> u32 {
        u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX)
    }

    /// Interarrival jitter as a duration.
    pub fn jitter_duration(&self) -> Duration {
        Duration::from_micros((self.jitter_q4 >> 4) * 1_000_000 / u64::from(self.clock_rate))
    }

    /// Builds the report block for the next RR/SR sent at `now`, and starts a new loss interval
    /// (RFC 3550 A.3).
    pub fn report_block(&mut self, now: Instant) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received - self.received_prior;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        // lost_interval <= expected_interval, so the quotient is <= 256; clamp to 255.
        let fraction_lost = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |f| f.min(255) as u8);
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            None => (0, 0),
            Some((ntp, at)) => {
                let delay = now.saturating_duration_since(at);
                let units = (delay.as_nanos() << 16) / 1_000_000_000;
                (ntp.middle32(), u32::try_from(units).unwrap_or(u32::MAX))
            }
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_sequence: (self.highest_sequence & 0xffff_ffff) as u32,
            jitter: self.jitter(),
            last_sr,
            delay_since_last_sr,
        }
    }
}

/// Converts a duration to media clock ticks.
fn ticks(duration: Duration, clock_rate: u32) -> i64 {
    let value = duration.as_nanos() * u128::from(clock_rate) / 1_000_000_000;
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A bitmap of the last 128 sequence numbers, to tell duplicates from new packets.
#[derive(Debug, Clone, Copy, Default)]
struct SeenWindow {
    bits: u128,
    top: u64,
}

impl SeenWindow {
    /// Marks `sequence` as seen; returns true if it already was. Packets older than the window
    /// count as new (they are late, which the jitter buffer handles).
    fn check_and_set(&mut self, sequence: u64) -> bool {
        if self.bits == 0 && self.top == 0 {
            self.top = sequence;
            self.bits = 1;
            return false;
        }
        if sequence > self.top {
            let shift = sequence - self.top;
            self.bits = if shift >= 128 { 0 } else { self.bits << shift };
            self.bits |= 1;
            self.top = sequence;
            return false;
        }
        let back = self.top - sequence;
        if back >= 128 {
            return false;
        }
        let mask = 1u128 << back;
        let seen = self.bits & mask != 0;
        self.bits |= mask;
        seen
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[allow(clippy::disallowed_methods)] // The test's time origin only; all later times are offsets.
    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn counts_loss_and_duplicates_across_wrap() {
        let start = t0();
        let mut stats = ReceiveStats::new(Ssrc::new(1), 8000);
        let mut seq = 65_530u16;
        for i in 0..20u32 {
            let now = start + Duration::from_millis(20 * u64::from(i));
            if i != 7 && i != 8 {
                stats.record(now, seq, 160 * i);
            }
            seq = seq.wrapping_add(1);
        }
        let (_, dup) = stats.record(start, 65_531, 160);
        assert!(dup);
        assert_eq!(stats.received(), 18);
        assert_eq!(stats.duplicates(), 1);
        assert_eq!(stats.expected(), 20);
        assert_eq!(stats.lost(), 2);
        let block = stats.report_block(start + Duration::from_millis(400));
        assert_eq!(block.cumulative_lost, 2);
        assert_eq!(block.fraction_lost, (2 * 256 / 20) as u8);
        assert_eq!(block.highest_sequence, 65_536 + 65_536 + 13);
        // Next interval without new packets: no new loss.
        assert_eq!(stats.report_block(start).fraction_lost, 0);
    }

    #[test]
    fn jitter_is_zero_for_perfect_timing_and_grows_with_variation() {
        let start = t0();
        let mut steady = ReceiveStats::new(Ssrc::new(1), 8000);
        for i in 0..100u32 {
            steady.record(
                start + Duration::from_millis(20 * u64::from(i)),
                i as u16,
                160 * i,
            );
        }
        assert_eq!(steady.jitter(), 0);

        // Alternate arrivals 10 ms early/late: |D| = 20 ms = 160 ticks every packet, so J
        // converges to 160 (RFC 3550 A.8).
        let mut jittery = ReceiveStats::new(Ssrc::new(2), 8000);
        for i in 0..400u32 {
            let offset = if i % 2 == 0 { 0 } else { 20 };
            jittery.record(
                start + Duration::from_millis(20 * u64::from(i) + offset),
                i as u16,
                160 * i,
            );
        }
        assert!(
            (155..=160).contains(&jittery.jitter()),
            "{}",
            jittery.jitter()
        );
        assert_eq!(jittery.jitter_duration().as_millis(), 19);
    }

    #[test]
    fn dlsr_measures_time_since_sender_report() {
        let start = t0();
        let mut stats = ReceiveStats::new(Ssrc::new(1), 8000);
        stats.record(start, 1, 0);
        stats.record_sender_report(NtpTime(0xaaaa_bbbb_cccc_dddd), start);
        let block = stats.report_block(start + Duration::from_millis(500));
        assert_eq!(block.last_sr, 0xbbbb_cccc);
        assert_eq!(block.delay_since_last_sr, 0x8000);
    }
}
