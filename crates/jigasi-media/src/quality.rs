//! Call quality estimates: a simplified ITU-T G.107 E-model turning what RTCP and the receive
//! statistics measure (loss, jitter, round-trip time) into an R factor and a MOS-CQE
//! (conversational quality, 1..=4.5).
//!
//! The simplification is the usual one for VoIP monitoring (Cole & Rosenbluth, "Voice over IP
//! performance monitoring", ACM CCR 31(2), 2001), with every other G.107 parameter at its
//! default value:
//!
//! ```text
//! R = 93.2 − Id(d) − Ie,eff(codec, loss)
//! Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3)         (d: one-way mouth-to-ear delay, ms)
//! Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl) (G.107 §7.4, eq. 7-29; Ppl in %)
//! MOS = 1 + 0.035·R + R·(R − 60)·(100 − R)·7·10⁻⁶       (G.107 Annex B, eq. B-4; 0 < R < 100)
//! ```
//!
//! 93.2 is G.107's R for the default parameter set (Ro − Is with no delay, no loss, G.711).
//! Wideband codecs are scored on this narrowband scale, so a perfect G.722 or Opus call rates
//! like a perfect G.711 call (MOS 4.41); G.107.1's wideband scale is not used.
//!
//! Everything here is pure arithmetic on plain numbers: the caller measures.

use std::time::Duration;

use crate::codec::CodecKind;

/// G.107's R for the default parameter set: no delay, no loss, a transparent codec.
pub const R_DEFAULT: f64 = 93.2;

/// A codec's E-model parameters: the equipment impairment factor `Ie` and the packet-loss
/// robustness factor `Bpl` (ITU-T G.113 Appendix I).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecImpairment {
    /// `Ie`: the codec's own impairment without loss.
    pub ie: f64,
    /// `Bpl`: how well the codec (with its loss concealment) tolerates random loss; larger is
    /// more robust.
    pub bpl: f64,
}

impl CodecImpairment {
    /// G.711 with packet loss concealment (G.711 Appendix I): `Ie` 0, `Bpl` 25.1
    /// (ITU-T G.113 (11/2007) Appendix I, Table I.3, random loss). Our G.711 phones always get
    /// concealment from the jitter buffer.
    pub const G711_PLC: Self = Self { ie: 0.0, bpl: 25.1 };

    /// G.722 at 64 kbit/s on the narrowband scale: transparent (`Ie` 0, at least as good as
    /// G.711 in narrowband terms), and the G.711-with-PLC robustness `Bpl` 25.1 as an estimate
    /// for its concealment (G.722 Appendix III/IV); G.113 gives G.722 only wideband-scale values.
    pub const G722: Self = Self { ie: 0.0, bpl: 25.1 };

    /// Opus (≥ 24 kbit/s, 20 ms frames, in-band FEC on): an estimate, as ITU-T publishes no
    /// E-model values for Opus. Transparent on the narrowband scale (`Ie` 0), and `Bpl` 30,
    /// somewhat more robust than G.711 with PLC because of Opus's concealment and in-band FEC.
    pub const OPUS: Self = Self { ie: 0.0, bpl: 30.0 };

    /// The parameters this module uses for `codec`.
    pub fn for_codec(codec: CodecKind) -> Self {
        match codec {
            CodecKind::Pcma | CodecKind::Pcmu => Self::G711_PLC,
            CodecKind::G722 => Self::G722,
            CodecKind::Opus => Self::OPUS,
        }
    }

    /// `Ie,eff` (G.107 §7.4, eq. 7-29) for a packet loss ratio `loss` (0..=1) with random loss
    /// (`BurstR` = 1). Grows monotonically with the loss, from `Ie` toward 95.
    pub fn effective(&self, loss: f64) -> f64 {
        let ppl = (loss.clamp(0.0, 1.0) * 100.0).max(0.0);
        let burst_ratio = 1.0;
        self.ie + (95.0 - self.ie) * ppl / (ppl / burst_ratio + self.bpl)
    }
}

/// The delay impairment `Id` for a one-way mouth-to-ear delay (Cole & Rosenbluth's fit of the
/// G.107 curves for default echo parameters).
pub fn delay_impairment(one_way: Duration) -> f64 {
    let d = one_way.as_secs_f64() * 1000.0;
    let over = (d - 177.3).max(0.0);
    0.024 * d + 0.11 * over
}

/// The R factor for `codec` with a one-way delay and a packet loss ratio (0..=1), clamped to
/// 0..=100.
pub fn r_factor(codec: CodecImpairment, one_way: Duration, loss: f64) -> f64 {
    (R_DEFAULT - delay_impairment(one_way) - codec.effective(loss)).clamp(0.0, 100.0)
}

/// MOS-CQE from an R factor (G.107 Annex B, eq. B-4): 1 at R ≤ 0, 4.5 at R ≥ 100.
pub fn mos_from_r(r: f64) -> f64 {
    if r <= 0.0 {
        return 1.0;
    }
    if r >= 100.0 {
        return 4.5;
    }
    1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7.0e-6
}

/// What was measured for one direction of one leg.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamQuality {
    /// Interarrival jitter (RFC 3550 §6.4.1) as seen by the receiver of this direction.
    pub jitter: Duration,
    /// Packets lost over packets expected (0..=1) as seen by that receiver.
    pub loss: f64,
}

impl StreamQuality {
    /// The one-way mouth-to-ear delay this module assumes for the direction: half the
    /// round-trip time (0 when unknown), one 20 ms frame of packetization, and an adaptive
    /// jitter buffer holding twice the jitter.
    pub fn one_way_delay(&self, rtt: Option<Duration>) -> Duration {
        rtt.unwrap_or_default() / 2 + FRAME + self.jitter * 2
    }

    /// The E-model R factor for this direction with `codec`.
    pub fn r_factor(&self, codec: CodecImpairment, rtt: Option<Duration>) -> f64 {
        r_factor(codec, self.one_way_delay(rtt), self.loss)
    }

    /// The MOS-CQE estimate for this direction with `codec`.
    pub fn mos(&self, codec: CodecImpairment, rtt: Option<Duration>) -> f64 {
        mos_from_r(self.r_factor(codec, rtt))
    }
}

/// What was measured on one leg of a call, both directions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LegQuality {
    /// What we receive on this leg, as we measure it.
    pub inbound: Option<StreamQuality>,
    /// What we send on this leg, as the far end reports it (RTCP report blocks).
    pub outbound: Option<StreamQuality>,
    /// The leg's round-trip time, once measured.
    pub rtt: Option<Duration>,
    /// The codec's E-model parameters on this leg.
    pub codec: CodecImpairment,
}

impl LegQuality {
    /// The MOS-CQE estimate of what we receive.
    pub fn inbound_mos(&self) -> Option<f64> {
        self.inbound.map(|s| s.mos(self.codec, self.rtt))
    }

    /// The MOS-CQE estimate of what the far end receives from us.
    pub fn outbound_mos(&self) -> Option<f64> {
        self.outbound.map(|s| s.mos(self.codec, self.rtt))
    }
}

/// One frame of packetization.
const FRAME: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn mos_at_known_r_values() {
        assert!(
            close(mos_from_r(R_DEFAULT), 4.41, 0.005),
            "{}",
            mos_from_r(R_DEFAULT)
        );
        assert!(close(mos_from_r(50.0), 2.58, 0.01), "{}", mos_from_r(50.0));
        // G.107 Annex B: R = 80 is about MOS 4.02, R = 70 about 3.6 (the "some users
        // dissatisfied" boundary), R = 60 about 3.1.
        assert!(close(mos_from_r(80.0), 4.02, 0.01), "{}", mos_from_r(80.0));
        assert!(close(mos_from_r(70.0), 3.60, 0.01), "{}", mos_from_r(70.0));
        assert!(close(mos_from_r(60.0), 3.10, 0.01), "{}", mos_from_r(60.0));
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(0.0), 1.0);
        assert_eq!(mos_from_r(100.0), 4.5);
        assert_eq!(mos_from_r(120.0), 4.5);
    }

    #[test]
    fn a_perfect_call_scores_93_2() {
        for codec in [
            CodecKind::Pcmu,
            CodecKind::Pcma,
            CodecKind::G722,
            CodecKind::Opus,
        ] {
            let r = r_factor(CodecImpairment::for_codec(codec), Duration::ZERO, 0.0);
            assert!(close(r, R_DEFAULT, 1e-9), "{codec:?}: {r}");
        }
    }

    #[test]
    fn loss_raises_the_impairment_monotonically() {
        for codec in [CodecImpairment::G711_PLC, CodecImpairment::OPUS] {
            let mut last = codec.effective(0.0);
            assert_eq!(last, codec.ie);
            for percent in 1..=100 {
                let ie_eff = codec.effective(f64::from(percent) / 100.0);
                assert!(ie_eff > last, "{percent}%: {ie_eff} after {last}");
                assert!(ie_eff < 95.0);
                last = ie_eff;
            }
        }
        // G.711 with PLC at 1 % random loss: 95 · 1 / (1 + 25.1) = 3.64.
        assert!(close(
            CodecImpairment::G711_PLC.effective(0.01),
            3.64,
            0.005
        ));
        // Out-of-range input is clamped, never NaN.
        assert_eq!(
            CodecImpairment::G711_PLC.effective(2.0),
            CodecImpairment::G711_PLC.effective(1.0)
        );
        assert_eq!(CodecImpairment::G711_PLC.effective(-1.0), 0.0);
        // More loss, lower MOS.
        let clean = StreamQuality {
            jitter: Duration::ZERO,
            loss: 0.0,
        };
        let lossy = StreamQuality {
            loss: 0.05,
            ..clean
        };
        let codec = CodecImpairment::G711_PLC;
        assert!(lossy.mos(codec, None) < clean.mos(codec, None));
    }

    #[test]
    fn delay_costs_little_until_177_ms_then_much_more() {
        assert_eq!(delay_impairment(Duration::ZERO), 0.0);
        assert!(close(
            delay_impairment(Duration::from_millis(100)),
            2.4,
            1e-9
        ));
        let before = delay_impairment(Duration::from_millis(177));
        let after = delay_impairment(Duration::from_millis(277));
        // Slope 0.024 per ms before the knee, 0.134 after.
        assert!(close(after - before, 0.024 * 100.0 + 0.11 * 99.7, 1e-6));
        // A 400 ms one-way delay on a clean G.711 call is below "some users dissatisfied".
        let r = r_factor(CodecImpairment::G711_PLC, Duration::from_millis(400), 0.0);
        assert!(mos_from_r(r) < 3.6, "{r}");
    }

    #[test]
    fn a_loopback_call_scores_above_4_3() {
        // What the e2e test sees on loopback: jitter about 1 ms, RTT about 1 ms, no loss.
        let stream = StreamQuality {
            jitter: Duration::from_millis(1),
            loss: 0.0,
        };
        let rtt = Some(Duration::from_millis(1));
        assert_eq!(stream.one_way_delay(rtt), Duration::from_micros(22_500));
        let mos = stream.mos(CodecImpairment::G711_PLC, rtt);
        assert!(mos > 4.3 && mos < 4.41, "{mos}");
    }
}
