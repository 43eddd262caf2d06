//! Test speech for the benchmark: espeak-ng + sox, a little dither so no frame is digital
//! silence, the µ-law stream the callers send and the Opus frames the simulated speakers send.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use jigasi_media::codec::{MAX_PAYLOAD, OpusEncoder, OpusEncoderConfig};
use jigasi_media::{AudioEncoder, SampleRate};
use jigasi_standin::{EncodedFrame, audio_level};

/// What the speech is.
const TEXT: &str = "The quick brown fox jumps over the lazy dog. Please join the meeting \
    from your phone, and say hello to everyone. We will review the budget, the schedule, and \
    the open questions. Thank you for calling.";

/// Test speech at 8 and 48 kHz (the same words).
pub(crate) struct Speech {
    /// 8 kHz mono.
    pub(crate) pcm8: Vec<i16>,
    /// 48 kHz mono.
    pub(crate) pcm48: Vec<i16>,
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("{command:?} failed: {status}"))
}

fn read_raw(path: &Path) -> Result<Vec<i16>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

/// Adds ±6 LSB of deterministic noise (about −75 dBFS), so pauses are not digital silence
/// (which the bridge would discard after three packets).
fn dither(samples: &mut [i16], seed: u32) {
    let mut state = seed;
    for s in samples {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = ((state >> 16) % 13) as i16 - 6;
        *s = s.saturating_add(noise);
    }
}

impl Speech {
    /// Synthesises the speech into `dir`, trimmed to whole 20 ms frames.
    pub(crate) fn generate(dir: &Path) -> Result<Self, String> {
        let wav = dir.join("speech.wav");
        run(Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "150", "-w"])
            .arg(&wav)
            .arg(TEXT))?;
        let mut rates = Vec::new();
        for rate in [8_000, 48_000] {
            let raw = dir.join(format!("speech{rate}.raw"));
            run(Command::new("sox")
                .arg(&wav)
                .args([
                    "-r",
                    &rate.to_string(),
                    "-c",
                    "1",
                    "-b",
                    "16",
                    "-e",
                    "signed",
                    "-t",
                    "raw",
                ])
                .arg(&raw)
                .args(["rate", "-v", "norm", "-3"]))?;
            let mut pcm = read_raw(&raw)?;
            let frame = rate as usize / 50;
            pcm.truncate(pcm.len() / frame * frame);
            dither(&mut pcm, rate);
            rates.push(pcm);
        }
        let pcm48 = rates.pop().unwrap_or_default();
        let pcm8 = rates.pop().unwrap_or_default();
        if pcm8.len() / 160 != pcm48.len() / 960 || pcm8.is_empty() {
            return Err("the 8 and 48 kHz speech differ in length".into());
        }
        Ok(Self { pcm8, pcm48 })
    }

    /// Seconds of speech.
    pub(crate) fn seconds(&self) -> f64 {
        self.pcm8.len() as f64 / 8_000.0
    }

    /// µ-law bytes of the 8 kHz speech.
    pub(crate) fn ulaw(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.pcm8.len()];
        jigasi_media::g711::encode_ulaw(&self.pcm8, &mut out);
        out
    }

    /// 20 ms PCMU payloads.
    pub(crate) fn pcmu_frames(&self) -> Vec<[u8; 160]> {
        self.ulaw()
            .chunks_exact(160)
            .map(|c| {
                let mut frame = [0u8; 160];
                frame.copy_from_slice(c);
                frame
            })
            .collect()
    }

    /// Opus frames as a browser sends them: 48 kHz, 32 kbit/s, complexity 10, in-band FEC.
    pub(crate) fn opus_frames(&self) -> Result<Arc<[EncodedFrame]>, String> {
        let config = OpusEncoderConfig {
            complexity: 10,
            bitrate: 32_000,
            inband_fec: true,
            packet_loss_percent: 10,
        };
        let mut encoder =
            OpusEncoder::new(SampleRate::Hz48000, &config).map_err(|e| e.to_string())?;
        let mut out = [0u8; MAX_PAYLOAD];
        self.pcm48
            .chunks_exact(960)
            .map(|frame| {
                let n = encoder.encode(frame, &mut out).map_err(|e| e.to_string())?;
                Ok(EncodedFrame {
                    payload: out[..n].to_vec(),
                    level: audio_level(frame),
                })
            })
            .collect()
    }
}

/// Writes 16-bit mono PCM as a WAV file.
pub(crate) fn write_wav(path: &Path, rate: u32, samples: &[i16]) -> Result<(), String> {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut out = Vec::with_capacity(44 + data.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&data);
    std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dither_never_leaves_long_digital_silence_and_stays_small() {
        let mut silence = vec![0i16; 960];
        dither(&mut silence, 1);
        assert!(silence.iter().all(|s| s.abs() <= 6));
        assert!(audio_level(&silence) < 127);
    }

    #[test]
    fn wav_header_matches_the_standin_parser() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        write_wav(&path, 8_000, &[1, -2, 3]).unwrap();
        let (rate, samples) = jigasi_standin::parse_wav(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!((rate, samples), (8_000, vec![1, -2, 3]));
    }
}
