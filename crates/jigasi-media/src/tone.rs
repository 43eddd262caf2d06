//! Tones: a phase-continuous DTMF generator for in-band DTMF (`DTMF_METHOD=INBAND`), the
//! Goertzel filter and a DTMF detector built on it, and a plain sine helper.

use crate::dtmf::DtmfDigit;

/// Generates the dual tone of one DTMF digit (ITU-T Q.23), phase-continuous across frames.
#[derive(Debug, Clone)]
pub struct DtmfToneGenerator {
    low: Oscillator,
    high: Oscillator,
}

impl DtmfToneGenerator {
    /// A generator for `digit` at `rate` Hz, each component at `amplitude` (linear, i16 scale).
    /// RFC 4733's volume of 10 dBm0 below maximum is about 8 000 per component for µ-law.
    pub fn new(digit: DtmfDigit, rate: u32, amplitude: f32) -> Self {
        let (low, high) = digit.frequencies();
        Self {
            low: Oscillator::new(low, rate, amplitude),
            high: Oscillator::new(high, rate, amplitude),
        }
    }

    /// Overwrites `out` with the next samples of the tone.
    pub fn fill(&mut self, out: &mut [i16]) {
        for o in out.iter_mut() {
            let v = self.low.next_sample() + self.high.next_sample();
            *o = v.clamp(-32_768.0, 32_767.0) as i16;
        }
    }
}

/// A recursive sine oscillator (no `sin` per sample): y[n] = 2cos(w)·y[n-1] − y[n-2].
#[derive(Debug, Clone, Copy)]
struct Oscillator {
    coefficient: f32,
    previous: f32,
    current: f32,
}

impl Oscillator {
    fn new(freq: f32, rate: u32, amplitude: f32) -> Self {
        let w = 2.0 * std::f32::consts::PI * freq / rate as f32;
        Self {
            coefficient: 2.0 * w.cos(),
            // Start at phase 0: y[-1] = A sin(-w), y[0] = 0.
            previous: -amplitude * w.sin(),
            current: 0.0,
        }
    }

    fn next_sample(&mut self) -> f32 {
        let out = self.current;
        let next = self.coefficient * self.current - self.previous;
        self.previous = self.current;
        self.current = next;
        out
    }
}

/// The power of `freq` in `samples` (Goertzel algorithm), normalised so that a sine of amplitude
/// A spanning the whole block gives about A²/4 · N² / N² = A²/4.
pub fn goertzel_power(samples: &[i16], freq: f32, rate: u32) -> f64 {
    let n = samples.len();
    if n == 0 {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * f64::from(freq) / f64::from(rate);
    let coefficient = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
    power / (n as f64 * n as f64)
}

/// Detects a DTMF digit in a block of audio (at least 10 ms; 20 ms frames work well). Returns
/// the digit whose row and column tones are both strong, clearly above the other tones of their
/// group, and not too different from each other (the twist limit).
pub fn detect_dtmf(samples: &[i16], rate: u32) -> Option<DtmfDigit> {
    let energy =
        samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64;
    if energy < 1.0e4 {
        return None; // quieter than about −40 dBov: nothing to detect.
    }
    let strongest = |freqs: &[f32; 4]| {
        let mut powers = [0.0f64; 4];
        for (p, &f) in powers.iter_mut().zip(freqs) {
            *p = goertzel_power(samples, f, rate);
        }
        let (best, &power) = powers
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))?;
        let second = powers
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != best)
            .map(|(_, &p)| p)
            .fold(0.0, f64::max);
        (power > 8.0 * second).then_some((best, power))
    };
    let (row, row_power) = strongest(&ROW_FREQUENCIES)?;
    let (column, column_power) = strongest(&COLUMN_FREQUENCIES)?;
    // Both tones together must carry most of the energy (a tone, not speech). A sine of
    // amplitude A has mean power A²/2 and Goertzel power A²/4.
    if 2.0 * (row_power + column_power) < 0.5 * energy {
        return None;
    }
    // Twist: the two tones within 8 dB of each other.
    let twist = row_power / column_power;
    if !(0.16..=6.3).contains(&twist) {
        return None;
    }
    DtmfDigit::from_grid(row, column)
}

/// `count` samples of a sine at `freq` Hz, amplitude `amplitude`, sampled at `rate` Hz.
pub fn sine(freq: f32, rate: u32, amplitude: f32, count: usize) -> Vec<i16> {
    let mut oscillator = Oscillator::new(freq, rate, amplitude);
    (0..count)
        .map(|_| oscillator.next_sample().clamp(-32_768.0, 32_767.0) as i16)
        .collect()
}

/// DTMF row frequencies (Hz), Q.23.
pub const ROW_FREQUENCIES: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// DTMF column frequencies (Hz), Q.23.
pub const COLUMN_FREQUENCIES: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_digits_are_detected_at_8_and_16_khz() {
        for rate in [8000, 16000] {
            for digit in DtmfDigit::ALL {
                let mut generator = DtmfToneGenerator::new(digit, rate, 8000.0);
                let mut frame = vec![0i16; (rate / 50) as usize];
                // Two frames: phase continuity means the second frame detects as well.
                generator.fill(&mut frame);
                assert_eq!(
                    detect_dtmf(&frame, rate),
                    Some(digit),
                    "{digit:?} at {rate}"
                );
                generator.fill(&mut frame);
                assert_eq!(
                    detect_dtmf(&frame, rate),
                    Some(digit),
                    "{digit:?} at {rate}"
                );
            }
        }
    }

    #[test]
    fn silence_speechlike_and_single_tones_are_not_digits() {
        assert_eq!(detect_dtmf(&[0; 160], 8000), None);
        assert_eq!(detect_dtmf(&sine(697.0, 8000, 10_000.0, 160), 8000), None);
        // A harmonic-rich vowel-like sound at 150 Hz fundamental.
        let vowel: Vec<i16> = (0..160)
            .map(|i| {
                let t = i as f32 / 8000.0;
                (1..=12)
                    .map(|h| {
                        2500.0 / h as f32
                            * (2.0 * std::f32::consts::PI * 150.0 * h as f32 * t).sin()
                    })
                    .sum::<f32>() as i16
            })
            .collect();
        assert_eq!(detect_dtmf(&vowel, 8000), None);
    }

    #[test]
    fn goertzel_measures_sine_power() {
        let tone = sine(1000.0, 8000, 1000.0, 800);
        let on = goertzel_power(&tone, 1000.0, 8000);
        assert!((on - 250_000.0).abs() < 5_000.0, "{on}");
        assert!(goertzel_power(&tone, 1500.0, 8000) < 100.0);
        assert_eq!(goertzel_power(&[], 1000.0, 8000), 0.0);
    }
}
