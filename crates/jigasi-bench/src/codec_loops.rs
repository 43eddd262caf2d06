//! The two bare codec loops the gateway's CPU cost is compared with, run on the core the
//! gateway gets (performance-anchors.md §2.2, Appendix A), and the resampler the Jigasi-style
//! loop needs.
//!
//! - **Native-rate floor**: per call and 20 ms, K Opus decodes straight to 8 kHz, a saturating
//!   mix, PCMU encode, PCMU decode, one Opus encode from 8 kHz with the gateway's own encoder
//!   settings. No I/O, no SRTP, no jitter buffer: the physical floor of the work.
//! - **Jigasi-style**: K Opus decodes at 48 kHz, mix at 48 kHz, FIR resampling 48→8 kHz, PCMU
//!   out, PCMU in, FIR 8→48 kHz, Opus encode at 48 kHz, 32 kbit/s, complexity 10, FEC.
//!
//! N calls are resident at once (each its own codec state) and the loop runs them round-robin,
//! timing the thread's own CPU time.

use std::time::Duration;

use jigasi_media::codec::{MAX_PAYLOAD, OpusDecoder, OpusEncoder, OpusEncoderConfig};
use jigasi_media::g711::{decode_ulaw, encode_ulaw};
use jigasi_media::{AudioDecoder, AudioEncoder, SampleRate};
use serde::{Deserialize, Serialize};

/// Taps of the anti-alias / anti-image low-pass (48 kHz, cut-off 3.6 kHz).
const TAPS: usize = 48;
/// 48 kHz / 8 kHz.
const RATIO: usize = 6;

/// The low-pass both resamplers use: a Blackman-windowed sinc, unity gain at DC.
fn lowpass() -> [f32; TAPS] {
    let mut h = [0f32; TAPS];
    let cutoff = 3_600.0 / 48_000.0;
    let centre = (TAPS - 1) as f64 / 2.0;
    for (i, tap) in h.iter_mut().enumerate() {
        let x = i as f64 - centre;
        let sinc = if x == 0.0 {
            2.0 * cutoff
        } else {
            (2.0 * std::f64::consts::PI * cutoff * x).sin() / (std::f64::consts::PI * x)
        };
        let n = i as f64 / (TAPS - 1) as f64;
        let window = 0.42 - 0.5 * (2.0 * std::f64::consts::PI * n).cos()
            + 0.08 * (4.0 * std::f64::consts::PI * n).cos();
        *tap = (sinc * window) as f32;
    }
    let sum: f32 = h.iter().sum();
    h.iter_mut().for_each(|t| *t /= sum);
    h
}

/// 48 kHz → 8 kHz, 20 ms frames (960 → 160), filter state kept between frames.
#[derive(Debug, Clone)]
pub(crate) struct Down {
    h: [f32; TAPS],
    history: Vec<f32>,
}

impl Down {
    pub(crate) fn new() -> Self {
        Self {
            h: lowpass(),
            history: vec![0.0; TAPS - 1 + 960],
        }
    }

    pub(crate) fn process(&mut self, input: &[i16; 960], out: &mut [i16; 160]) {
        self.history.copy_within(960.., 0);
        for (slot, s) in self.history[TAPS - 1..].iter_mut().zip(input) {
            *slot = f32::from(*s);
        }
        for (n, o) in out.iter_mut().enumerate() {
            let end = TAPS - 1 + n * RATIO;
            let window = &self.history[end + 1 - TAPS..=end];
            let acc: f32 = window.iter().rev().zip(&self.h).map(|(x, h)| x * h).sum();
            *o = acc.round().clamp(-32768.0, 32767.0) as i16;
        }
    }
}

/// 8 kHz → 48 kHz, 20 ms frames (160 → 960), polyphase.
#[derive(Debug, Clone)]
pub(crate) struct Up {
    phases: [[f32; TAPS / RATIO]; RATIO],
    history: Vec<f32>,
}

impl Up {
    pub(crate) fn new() -> Self {
        let h = lowpass();
        let mut phases = [[0f32; TAPS / RATIO]; RATIO];
        for (i, tap) in h.iter().enumerate() {
            // Gain RATIO restores the level lost by zero-stuffing.
            phases[i % RATIO][i / RATIO] = tap * RATIO as f32;
        }
        Self {
            phases,
            history: vec![0.0; TAPS / RATIO - 1 + 160],
        }
    }

    pub(crate) fn process(&mut self, input: &[i16; 160], out: &mut [i16; 960]) {
        let keep = TAPS / RATIO - 1;
        self.history.copy_within(160.., 0);
        for (slot, s) in self.history[keep..].iter_mut().zip(input) {
            *slot = f32::from(*s);
        }
        for n in 0..160 {
            let end = keep + n;
            let window = &self.history[end + 1 - TAPS / RATIO..=end];
            for (p, phase) in self.phases.iter().enumerate() {
                let acc: f32 = window.iter().rev().zip(phase).map(|(x, h)| x * h).sum();
                out[n * RATIO + p] = acc.round().clamp(-32768.0, 32767.0) as i16;
            }
        }
    }
}

/// Result of one loop.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LoopResult {
    /// Which loop.
    pub(crate) name: String,
    /// Calls resident.
    pub(crate) calls: usize,
    /// Ticks run (20 ms each).
    pub(crate) ticks: usize,
    /// Median over ticks of CPU µs per call per 20 ms tick.
    pub(crate) us_per_call_tick: f64,
    /// The same per call-second (× 50).
    pub(crate) us_per_call_second: f64,
    /// Calls one core could run at 100 % with this loop alone.
    pub(crate) calls_per_core: f64,
}

/// Input for both loops: browser-like Opus packets (48 kHz source) and PCMU frames.
pub(crate) struct Inputs<'a> {
    /// 20 ms Opus packets.
    pub(crate) opus: &'a [Vec<u8>],
    /// 20 ms PCMU payloads.
    pub(crate) pcmu: &'a [[u8; 160]],
}

/// Thread CPU time (`/proc/thread-self/schedstat`, ns on the CPU).
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        text.split_whitespace().next()?.parse().ok()?,
    ))
}

/// The mean, not the median: the thread CPU clock from `schedstat` advances in scheduler ticks
/// (4 ms at HZ=250), so a median of per-tick samples is quantized to whole ticks, while the sum
/// over contiguous samples (hence the mean) is exact.
fn mean_us(per_tick: &[f64]) -> f64 {
    per_tick.iter().sum::<f64>() / per_tick.len().max(1) as f64
}

fn result(name: &str, calls: usize, per_tick: Vec<f64>) -> LoopResult {
    let ticks = per_tick.len();
    let us = mean_us(&per_tick) / calls.max(1) as f64;
    LoopResult {
        name: name.into(),
        calls,
        ticks,
        us_per_call_tick: us,
        us_per_call_second: us * 50.0,
        calls_per_core: if us > 0.0 { 20_000.0 / us } else { 0.0 },
    }
}

/// The native-rate floor loop.
pub(crate) fn native_floor(
    inputs: &Inputs<'_>,
    calls: usize,
    speakers: usize,
    ticks: usize,
) -> Result<LoopResult, String> {
    struct Call {
        decoders: Vec<OpusDecoder>,
        encoder: OpusEncoder,
    }
    let config = OpusEncoderConfig::for_rate(SampleRate::Hz8000);
    let mut state = (0..calls)
        .map(|_| {
            Ok(Call {
                decoders: (0..speakers)
                    .map(|_| OpusDecoder::new(SampleRate::Hz8000))
                    .collect::<Result<_, _>>()?,
                encoder: OpusEncoder::new(SampleRate::Hz8000, &config)?,
            })
        })
        .collect::<Result<Vec<_>, jigasi_media::codec::CodecError>>()
        .map_err(|e| e.to_string())?;
    let mut pcm = vec![[0i16; 160]; speakers];
    let (mut mix, mut phone_in) = ([0i16; 160], [0i16; 160]);
    let (mut ulaw, mut out) = ([0u8; 160], [0u8; MAX_PAYLOAD]);
    let mut per_tick = Vec::with_capacity(ticks);
    let mut checksum = 0usize;
    for tick in 0..ticks {
        let start = thread_cpu().ok_or("no thread CPU clock")?;
        for (i, call) in state.iter_mut().enumerate() {
            for (k, decoder) in call.decoders.iter_mut().enumerate() {
                let packet = &inputs.opus[(tick + i * 7 + k * 101) % inputs.opus.len()];
                decoder
                    .decode(packet, &mut pcm[k])
                    .map_err(|e| e.to_string())?;
            }
            for s in 0..160 {
                let sum: i32 = pcm.iter().map(|p| i32::from(p[s])).sum();
                mix[s] = sum.clamp(-32768, 32767) as i16;
            }
            encode_ulaw(&mix, &mut ulaw);
            checksum += usize::from(ulaw[i % 160]);
            decode_ulaw(
                &inputs.pcmu[(tick + i * 13) % inputs.pcmu.len()],
                &mut phone_in,
            );
            checksum += call
                .encoder
                .encode(&phone_in, &mut out)
                .map_err(|e| e.to_string())?;
        }
        let spent = thread_cpu().ok_or("no thread CPU clock")? - start;
        per_tick.push(spent.as_secs_f64() * 1e6);
    }
    std::hint::black_box(checksum);
    Ok(result("native-rate floor", calls, per_tick))
}

/// The Jigasi-style loop.
pub(crate) fn jigasi_style(
    inputs: &Inputs<'_>,
    calls: usize,
    speakers: usize,
    ticks: usize,
) -> Result<LoopResult, String> {
    struct Call {
        decoders: Vec<OpusDecoder>,
        encoder: OpusEncoder,
        down: Down,
        up: Up,
    }
    let config = OpusEncoderConfig {
        complexity: 10,
        bitrate: 32_000,
        inband_fec: true,
        packet_loss_percent: 5,
    };
    let mut state = (0..calls)
        .map(|_| {
            Ok(Call {
                decoders: (0..speakers)
                    .map(|_| OpusDecoder::new(SampleRate::Hz48000))
                    .collect::<Result<_, _>>()?,
                encoder: OpusEncoder::new(SampleRate::Hz48000, &config)?,
                down: Down::new(),
                up: Up::new(),
            })
        })
        .collect::<Result<Vec<_>, jigasi_media::codec::CodecError>>()
        .map_err(|e| e.to_string())?;
    let mut pcm = vec![[0i16; 960]; speakers];
    let (mut mix, mut narrow, mut phone_in, mut wide) =
        ([0i16; 960], [0i16; 160], [0i16; 160], [0i16; 960]);
    let (mut ulaw, mut out) = ([0u8; 160], [0u8; MAX_PAYLOAD]);
    let mut per_tick = Vec::with_capacity(ticks);
    let mut checksum = 0usize;
    for tick in 0..ticks {
        let start = thread_cpu().ok_or("no thread CPU clock")?;
        for (i, call) in state.iter_mut().enumerate() {
            for (k, decoder) in call.decoders.iter_mut().enumerate() {
                let packet = &inputs.opus[(tick + i * 7 + k * 101) % inputs.opus.len()];
                decoder
                    .decode(packet, &mut pcm[k])
                    .map_err(|e| e.to_string())?;
            }
            for s in 0..960 {
                let sum: i32 = pcm.iter().map(|p| i32::from(p[s])).sum();
                mix[s] = sum.clamp(-32768, 32767) as i16;
            }
            call.down.process(&mix, &mut narrow);
            encode_ulaw(&narrow, &mut ulaw);
            checksum += usize::from(ulaw[i % 160]);
            decode_ulaw(
                &inputs.pcmu[(tick + i * 13) % inputs.pcmu.len()],
                &mut phone_in,
            );
            call.up.process(&phone_in, &mut wide);
            checksum += call
                .encoder
                .encode(&wide, &mut out)
                .map_err(|e| e.to_string())?;
        }
        let spent = thread_cpu().ok_or("no thread CPU clock")? - start;
        per_tick.push(spent.as_secs_f64() * 1e6);
    }
    std::hint::black_box(checksum);
    Ok(result(
        "Jigasi-style 48 kHz, complexity 10",
        calls,
        per_tick,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, rate: f64, n: usize, phase0: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = (i + phase0) as f64 / rate;
                ((2.0 * std::f64::consts::PI * hz * t).sin() * 10_000.0) as i16
            })
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn downsampling_keeps_speech_band_and_removes_aliases() {
        for (hz, keep) in [(1_000.0, true), (10_000.0, false)] {
            let mut down = Down::new();
            let mut out = [0i16; 160];
            for frame in 0..5 {
                let input: [i16; 960] = tone(hz, 48_000.0, 960, frame * 960)
                    .try_into()
                    .unwrap_or([0; 960]);
                down.process(&input, &mut out);
            }
            let level = rms(&out) / (10_000.0 / 2f64.sqrt());
            if keep {
                assert!((0.9..1.1).contains(&level), "{hz} Hz passed at {level}");
            } else {
                assert!(level < 0.01, "{hz} Hz should alias away, got {level}");
            }
        }
    }

    #[test]
    fn upsampling_keeps_the_level_of_a_speech_band_tone() {
        let mut up = Up::new();
        let mut out = [0i16; 960];
        for frame in 0..5 {
            let input: [i16; 160] = tone(1_000.0, 8_000.0, 160, frame * 160)
                .try_into()
                .unwrap_or([0; 160]);
            up.process(&input, &mut out);
        }
        let level = rms(&out) / (10_000.0 / 2f64.sqrt());
        assert!((0.9..1.1).contains(&level), "level {level}");
    }
}
