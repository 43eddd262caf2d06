//! Test audio: speech and tone WAV files, a small WAV reader/writer and frequency analysis.
//!
//! [`speech_wav`] needs `espeak-ng` and `sox` (test-peers recipe R1); everything else is pure
//! Rust. Files are mono 16-bit PCM, what baresip's `aufile` source wants (at 48 kHz).

use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::PeerError;
use crate::process::run_tool;

/// The sentence spoken by [`speech_wav`].
pub const SPEECH_TEXT: &str = "The quick brown fox jumps over the lazy dog. \
This is a test of the SIP to Jitsi audio gateway. One two three four five six seven eight nine ten.";

/// Decoded PCM audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    /// Sample rate in Hz.
    pub rate: u32,
    /// Number of interleaved channels.
    pub channels: u16,
    /// Interleaved samples, scaled to `[-1.0, 1.0)`.
    pub samples: Vec<f32>,
}

impl Wav {
    /// The samples of a mono signal (channels averaged).
    pub fn mono(&self) -> Vec<f32> {
        let ch = usize::from(self.channels.max(1));
        self.samples
            .chunks(ch)
            .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32)
            .collect()
    }

    /// The duration of the audio.
    pub fn duration(&self) -> Duration {
        let frames = self.samples.len() / usize::from(self.channels.max(1));
        Duration::from_secs_f64(frames as f64 / f64::from(self.rate.max(1)))
    }
}

fn bad(path: &Path, reason: impl Into<String>) -> PeerError {
    PeerError::Audio {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Parses a RIFF/WAVE file: PCM 8/16/24/32-bit integer or 32-bit float, any channel count
/// (also `WAVE_FORMAT_EXTENSIBLE`). A data chunk whose size runs past the end of the file (a
/// recording still being written) is read up to the end. Errors are strings saying what is
/// wrong.
pub fn parse_wav(bytes: &[u8]) -> Result<Wav, String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut at = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None; // (tag, channels, rate, bits)
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = le_u32(bytes, at + 4).ok_or("truncated chunk header")? as usize;
        let body_start = at + 8;
        let body_end = body_start.saturating_add(size).min(bytes.len());
        let body = &bytes[body_start..body_end];
        if id == b"fmt " {
            let mut tag = le_u16(body, 0).ok_or("fmt chunk too short")?;
            let channels = le_u16(body, 2).ok_or("fmt chunk too short")?;
            let rate = le_u32(body, 4).ok_or("fmt chunk too short")?;
            let bits = le_u16(body, 14).ok_or("fmt chunk too short")?;
            if tag == 0xFFFE {
                // WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the real tag.
                tag = le_u16(body, 24).ok_or("extensible fmt chunk too short")?;
            }
            if channels == 0 || rate == 0 {
                return Err(format!("bad format: {channels} channels at {rate} Hz"));
            }
            format = Some((tag, channels, rate, bits));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.ok_or("data chunk before fmt chunk")?;
            let samples: Vec<f32> = match (tag, bits) {
                (1, 8) => body
                    .iter()
                    .map(|&b| (f32::from(b) - 128.0) / 128.0)
                    .collect(),
                (1, 16) => body
                    .chunks_exact(2)
                    .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0)
                    .collect(),
                (1, 24) => body
                    .chunks_exact(3)
                    .map(|c| (i32::from_le_bytes([0, c[0], c[1], c[2]]) >> 8) as f32 / 8_388_608.0)
                    .collect(),
                (1, 32) => body
                    .chunks_exact(4)
                    .map(|c| {
                        (f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])) / 2_147_483_648.0)
                            as f32
                    })
                    .collect(),
                (3, 32) => body
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                _ => {
                    return Err(format!(
                        "unsupported encoding: format tag {tag}, {bits} bits"
                    ));
                }
            };
            return Ok(Wav {
                rate,
                channels,
                samples,
            });
        }
        // Chunks are padded to an even size.
        at = body_start.saturating_add(size).saturating_add(size & 1);
    }
    Err(if format.is_some() {
        "no data chunk".into()
    } else {
        "no fmt chunk".into()
    })
}

/// Reads a WAV file (see [`parse_wav`]).
pub fn read_wav(path: &Path) -> Result<Wav, PeerError> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
    parse_wav(&bytes).map_err(|reason| bad(path, reason))
}

/// Encodes mono 16-bit PCM samples (`[-1.0, 1.0]`, clipped) as a WAV file image.
pub fn encode_wav(rate: u32, samples: &[f32]) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX - 36);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for &s in samples {
        let v = (f64::from(s).clamp(-1.0, 1.0) * 32767.0).round() as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes mono 16-bit PCM samples to `path` as a WAV file.
pub fn write_wav(path: &Path, rate: u32, samples: &[f32]) -> Result<(), PeerError> {
    std::fs::write(path, encode_wav(rate, samples))
        .map_err(|e| PeerError::io(format!("write {}", path.display()), e))
}

/// A sine of `hz` at amplitude `amplitude` (of full scale), `frames` samples at `rate`.
pub fn sine(rate: u32, hz: f64, amplitude: f32, frames: usize) -> Vec<f32> {
    let step = 2.0 * PI * hz / f64::from(rate.max(1));
    (0..frames)
        .map(|n| (f64::from(amplitude) * (step * n as f64).sin()) as f32)
        .collect()
}

/// Writes `dir/tone<hz>_<rate>.wav`: a `hz` sine at half scale, `secs` seconds, mono 16-bit.
pub fn tone_wav(dir: &Path, rate: u32, hz: u32, secs: u32) -> Result<PathBuf, PeerError> {
    if rate == 0 || hz == 0 || hz >= rate / 2 {
        return Err(PeerError::InvalidConfig {
            field: "tone",
            reason: format!("{hz} Hz cannot be sampled at {rate} Hz"),
        });
    }
    let path = dir.join(format!("tone{hz}_{rate}.wav"));
    let frames = rate as usize * secs as usize;
    write_wav(&path, rate, &sine(rate, f64::from(hz), 0.5, frames))?;
    Ok(path)
}

/// Writes `dir/silence_<rate>.wav`: `secs` seconds of digital silence, mono 16-bit.
pub fn silence_wav(dir: &Path, rate: u32, secs: u32) -> Result<PathBuf, PeerError> {
    let path = dir.join(format!("silence_{rate}.wav"));
    write_wav(&path, rate, &vec![0.0; rate as usize * secs as usize])?;
    Ok(path)
}

/// Writes `dir/speech<rate>.wav`: [`SPEECH_TEXT`] spoken by `espeak-ng` (en-us, 150 wpm) and
/// resampled by `sox` to `rate`, mono 16-bit (about 10 s). Needs `espeak-ng` and `sox`.
pub fn speech_wav(dir: &Path, rate: u32) -> Result<PathBuf, PeerError> {
    let raw = dir.join("speech_espeak.wav");
    let out = dir.join(format!("speech{rate}.wav"));
    let timeout = Duration::from_secs(30);
    let raw_s = raw.to_string_lossy().into_owned();
    if !raw.exists() {
        run_tool(
            "espeak-ng",
            &["-v", "en-us", "-s", "150", "-w", &raw_s, SPEECH_TEXT],
            dir,
            timeout,
        )?;
    }
    let rate_s = rate.to_string();
    run_tool(
        "sox",
        &[
            &raw_s,
            "-r",
            &rate_s,
            "-c",
            "1",
            "-b",
            "16",
            &out.to_string_lossy(),
        ],
        dir,
        timeout,
    )?;
    Ok(out)
}

/// Root mean square of `samples` (0 for none).
pub fn rms(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// Power of frequency `hz` in `samples` (Goertzel), normalised so that a full-scale sine at
/// exactly `hz` gives about 0.25 whatever the length.
pub fn goertzel_power(samples: &[f32], rate: u32, hz: f64) -> f64 {
    if samples.is_empty() || rate == 0 {
        return 0.0;
    }
    let w = 2.0 * PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = samples.len() as f64;
    power / (n * n)
}

/// In-place iterative radix-2 FFT; `re.len()` must be a power of two (equal to `im.len()`).
fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let ang = -2.0 * PI / len as f64;
        let (wr, wi) = (ang.cos(), ang.sin());
        for start in (0..n).step_by(len) {
            let (mut cr, mut ci) = (1.0f64, 0.0f64);
            for k in 0..len / 2 {
                let (a, b) = (start + k, start + k + len / 2);
                let tr = re[b] * cr - im[b] * ci;
                let ti = re[b] * ci + im[b] * cr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
                let next = cr * wr - ci * wi;
                ci = cr * wi + ci * wr;
                cr = next;
            }
        }
        len <<= 1;
    }
}

/// Longest stretch analysed by [`dominant_frequency_of`] (samples).
const MAX_ANALYSIS: usize = 1 << 16;

/// The strongest frequency (Hz, at least 20 Hz) in mono `samples` at `rate`: Hann-windowed,
/// zero-padded FFT over the loud part of the signal (leading and trailing near-silence is
/// skipped, at most 65536 samples from its middle), refined by parabolic interpolation. `None`
/// for silence or fewer than 64 samples.
pub fn dominant_frequency_of(samples: &[f32], rate: u32) -> Option<f64> {
    let peak = samples.iter().fold(0.0f32, |m, &s| m.max(s.abs()));
    if peak <= 1e-4 || rate == 0 {
        return None;
    }
    let threshold = peak * 0.05;
    let first = samples.iter().position(|s| s.abs() > threshold)?;
    let last = samples.iter().rposition(|s| s.abs() > threshold)?;
    let mut loud = &samples[first..=last];
    if loud.len() > MAX_ANALYSIS {
        let start = (loud.len() - MAX_ANALYSIS) / 2;
        loud = &loud[start..start + MAX_ANALYSIS];
    }
    if loud.len() < 64 {
        return None;
    }
    let mean = loud.iter().map(|&s| f64::from(s)).sum::<f64>() / loud.len() as f64;
    let n = (loud.len() * 4).next_power_of_two();
    let mut re = vec![0.0f64; n];
    let mut im = vec![0.0f64; n];
    let m = loud.len() as f64;
    for (i, &s) in loud.iter().enumerate() {
        let hann = 0.5 - 0.5 * (2.0 * PI * i as f64 / (m - 1.0)).cos();
        re[i] = (f64::from(s) - mean) * hann;
    }
    fft(&mut re, &mut im);
    let bin_hz = f64::from(rate) / n as f64;
    let min_bin = ((20.0 / bin_hz).ceil() as usize).max(1);
    let mags: Vec<f64> = (0..=n / 2).map(|k| re[k].hypot(im[k])).collect();
    let mut best: Option<(usize, f64)> = None;
    for (k, &mag) in mags.iter().enumerate().take(n / 2).skip(min_bin) {
        if best.is_none_or(|(_, m)| mag > m) {
            best = Some((k, mag));
        }
    }
    // k >= min_bin >= 1 and k < n / 2, so k - 1 and k + 1 are valid indices of `mags`.
    let (k, _) = best?;
    let (a, b, c) = (mags[k - 1], mags[k], mags[k + 1]);
    let denom = a - 2.0 * b + c;
    let delta = if denom.abs() > f64::EPSILON {
        (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    Some((k as f64 + delta) * bin_hz)
}

/// The strongest frequency in a WAV file (channels mixed to mono); see
/// [`dominant_frequency_of`]. An error for unreadable files and silence.
pub fn dominant_frequency(wav: &Path) -> Result<f64, PeerError> {
    let audio = read_wav(wav)?;
    dominant_frequency_of(&audio.mono(), audio.rate)
        .ok_or_else(|| bad(wav, "silent (or too short) recording"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn wav_round_trip() {
        let samples = sine(8000, 1000.0, 0.5, 800);
        let bytes = encode_wav(8000, &samples);
        assert_eq!(bytes.len(), 44 + 1600);
        let wav = parse_wav(&bytes).unwrap();
        assert_eq!(wav.rate, 8000);
        assert_eq!(wav.channels, 1);
        assert_eq!(wav.samples.len(), 800);
        for (a, b) in wav.samples.iter().zip(&samples) {
            assert!((a - b).abs() < 1e-4);
        }
        assert_eq!(wav.duration(), Duration::from_millis(100));
    }

    fn header(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8], extra: &[u8]) -> Vec<u8> {
        let mut v = b"RIFF\0\0\0\0WAVE".to_vec();
        v.extend_from_slice(b"LIST");
        v.extend_from_slice(&3u32.to_le_bytes());
        v.extend_from_slice(b"abc\0"); // odd chunk + pad byte
        let fmt_len = 16 + extra.len() as u32;
        v.extend_from_slice(b"fmt ");
        v.extend_from_slice(&fmt_len.to_le_bytes());
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v.extend_from_slice(extra);
        v.extend_from_slice(b"data");
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_stereo_float_extensible_and_skips_other_chunks() {
        let data: Vec<u8> = [0.5f32, -0.5, 0.25, 0.75]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        let wav = parse_wav(&header(3, 2, 48000, 32, &data, &[])).unwrap();
        assert_eq!(wav.channels, 2);
        assert_eq!(wav.mono(), vec![0.0, 0.5]);

        let mut extra = vec![22, 0, 16, 0, 4, 0, 0, 0]; // cbSize, valid bits, channel mask
        extra.extend_from_slice(&[
            1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71,
        ]);
        let data = [0x00, 0x40, 0x00, 0xC0];
        let wav = parse_wav(&header(0xFFFE, 1, 16000, 16, &data, &extra)).unwrap();
        assert_eq!(wav.samples, vec![0.5, -0.5]);
        let wav = parse_wav(&header(1, 1, 8000, 8, &[128, 192, 64], &[])).unwrap();
        assert_eq!(wav.samples, vec![0.0, 0.5, -0.5]);
        let wav = parse_wav(&header(1, 1, 8000, 24, &[0, 0, 0x40], &[])).unwrap();
        assert_eq!(wav.samples, vec![0.5]);
    }

    #[test]
    fn truncated_data_chunk_is_read_to_the_end() {
        let mut bytes = encode_wav(8000, &[0.5, 0.5, 0.5]);
        // Claim a huge data chunk, as a recorder still writing may.
        bytes[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_wav(&bytes).unwrap().samples.len(), 3);
    }

    #[test]
    fn rejects_malformed_wavs() {
        assert!(parse_wav(b"").is_err());
        assert!(parse_wav(b"RIFF\0\0\0\0WAVX").is_err());
        assert!(parse_wav(b"RIFF\0\0\0\0WAVE").is_err());
        assert!(parse_wav(&header(1, 0, 8000, 16, &[], &[])).is_err());
        assert!(parse_wav(&header(2, 1, 8000, 4, &[1, 2], &[])).is_err());
        let mut data_first = b"RIFF\0\0\0\0WAVEdata".to_vec();
        data_first.extend_from_slice(&2u32.to_le_bytes());
        data_first.extend_from_slice(&[0, 0]);
        assert!(parse_wav(&data_first).is_err());
        let mut short_fmt = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        short_fmt.extend_from_slice(&2u32.to_le_bytes());
        short_fmt.extend_from_slice(&[1, 0]);
        assert!(parse_wav(&short_fmt).is_err());
        assert!(read_wav(Path::new("/nonexistent/x.wav")).is_err());
    }

    #[test]
    fn finds_dominant_frequency_of_a_sine() {
        for (rate, hz) in [
            (8000, 440.0),
            (48000, 440.0),
            (16000, 1234.5),
            (8000, 3000.0),
        ] {
            let s = sine(rate, hz, 0.3, rate as usize * 2);
            let f = dominant_frequency_of(&s, rate).unwrap();
            assert!((f - hz).abs() < 0.5, "{hz} Hz at {rate} -> {f}");
        }
    }

    #[test]
    fn dominant_frequency_ignores_silence_and_weaker_tones() {
        let mut s = vec![0.0f32; 4000];
        let strong = sine(8000, 440.0, 0.5, 8000);
        let weak = sine(8000, 1000.0, 0.1, 8000);
        s.extend(strong.iter().zip(&weak).map(|(a, b)| a + b));
        s.extend(vec![0.0f32; 4000]);
        let f = dominant_frequency_of(&s, 8000).unwrap();
        assert!((f - 440.0).abs() < 0.5, "{f}");
        assert_eq!(dominant_frequency_of(&[0.0; 8000], 8000), None);
        assert_eq!(dominant_frequency_of(&[0.5; 10], 8000), None);
        assert_eq!(dominant_frequency_of(&[], 8000), None);
    }

    #[test]
    fn goertzel_separates_present_and_absent_tones() {
        let s = sine(8000, 440.0, 1.0, 8000);
        let on = goertzel_power(&s, 8000, 440.0);
        let off = goertzel_power(&s, 8000, 1000.0);
        assert!((on - 0.25).abs() < 0.01, "{on}");
        assert!(off < 1e-4, "{off}");
        assert_eq!(goertzel_power(&[], 8000, 440.0), 0.0);
    }

    #[test]
    fn rms_of_sine_and_silence() {
        let s = sine(8000, 440.0, 1.0, 8000);
        assert!((rms(&s) - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-3);
        assert_eq!(rms(&[]), 0.0);
    }

    #[test]
    fn tone_and_silence_files() {
        let dir = tempfile::tempdir().unwrap();
        let tone = tone_wav(dir.path(), 8000, 440, 1).unwrap();
        let f = dominant_frequency(&tone).unwrap();
        assert!((f - 440.0).abs() < 0.5);
        let silence = silence_wav(dir.path(), 8000, 1).unwrap();
        assert!(matches!(
            dominant_frequency(&silence),
            Err(PeerError::Audio { .. })
        ));
        assert!(tone_wav(dir.path(), 8000, 5000, 1).is_err());
    }
}
