//! What simulated web participants play: a sine tone, a WAV file or silence, cut into 20 ms
//! frames at 48 kHz (the Opus clock, jitsi-protocols.md §5.4), plus the RFC 6464 level of a frame.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Samples per 20 ms frame at 48 kHz.
pub const FRAME_SAMPLES: usize = 960;
/// The Opus sample rate, and the rate of every buffer this crate hands out.
pub const SAMPLE_RATE: u32 = 48_000;

/// What a simulated participant sends.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioSource {
    /// A sine tone of this frequency in Hz, at about −14 dBov.
    Tone(f64),
    /// A WAV file (PCM, 16 bit, any rate, first channel used), played in a loop; it is
    /// resampled to 48 kHz by linear interpolation.
    Wav(PathBuf),
    /// Digital silence: Opus-encoded zeros with audio level 127, which the bridge discards after
    /// three packets (§5.3).
    Silence,
    /// Opus frames encoded once by the caller and replayed in a loop (the benchmark's bulk mode:
    /// no encoder per speaker).
    Preencoded(PreencodedAudio),
}

/// One 20 ms Opus frame ready to send, with its RFC 6464 level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The Opus packet.
    pub payload: Vec<u8>,
    /// Its audio level (0 loudest, 127 silence).
    pub level: u8,
}

/// Pre-encoded Opus audio for [`AudioSource::Preencoded`]: shared frames, where to start, and
/// whether the bridge keeps a log of when each frame was sent ([`crate::StandIn::speaker_trace`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreencodedAudio {
    /// The frames, played in order and looped.
    pub frames: Arc<[EncodedFrame]>,
    /// Index of the first frame played (taken modulo the length).
    pub start: usize,
    /// Keep a log of `(frame index, send instant)` (the newest 10,000 frames).
    pub trace: bool,
}

impl PreencodedAudio {
    /// Plays `frames` from the first one, without a trace.
    pub fn new(frames: Arc<[EncodedFrame]>) -> Self {
        Self {
            frames,
            start: 0,
            trace: false,
        }
    }

    /// Starts at frame `start` instead.
    #[must_use]
    pub fn starting_at(mut self, start: usize) -> Self {
        self.start = start;
        self
    }

    /// Keeps a send log.
    #[must_use]
    pub fn traced(mut self) -> Self {
        self.trace = true;
        self
    }
}

/// Why a WAV file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a RIFF/WAVE file with `fmt ` and `data` chunks.
    #[error("not a WAV file: {0}")]
    NotWav(&'static str),
    /// The Opus encoder could not be created.
    #[error("opus: {0}")]
    Codec(String),
    /// A WAV format other than 16-bit PCM.
    #[error("unsupported WAV format {format} with {bits} bits per sample (need PCM, 16 bit)")]
    Unsupported {
        /// The format tag (1 = PCM).
        format: u16,
        /// Bits per sample.
        bits: u16,
    },
}

/// Plays an [`AudioSource`] frame by frame.
#[derive(Debug)]
pub(crate) struct Player {
    kind: PlayerKind,
}

#[derive(Debug)]
enum PlayerKind {
    Tone {
        step: f64,
        phase: f64,
    },
    Samples {
        samples: Arc<[i16]>,
        position: usize,
    },
    Silence,
    Preencoded {
        frames: Arc<[EncodedFrame]>,
        position: usize,
    },
}

/// What a player produces for one 20 ms tick.
#[derive(Debug)]
pub(crate) enum Frame {
    /// PCM to encode.
    Pcm(Box<[i16; FRAME_SAMPLES]>),
    /// An encoded frame (its index in the source) to send as is.
    Encoded(usize, EncodedFrame),
}

impl Player {
    /// A player for `source`; a WAV file is read and resampled here.
    pub(crate) fn new(source: &AudioSource) -> Result<Self, AudioError> {
        let kind = match source {
            AudioSource::Tone(hz) => PlayerKind::Tone {
                step: std::f64::consts::TAU * hz / f64::from(SAMPLE_RATE),
                phase: 0.0,
            },
            AudioSource::Wav(path) => {
                let samples = read_wav_48k(path)?;
                if samples.is_empty() {
                    PlayerKind::Silence
                } else {
                    PlayerKind::Samples {
                        samples: samples.into(),
                        position: 0,
                    }
                }
            }
            AudioSource::Silence => PlayerKind::Silence,
            AudioSource::Preencoded(audio) => {
                if audio.frames.is_empty() {
                    PlayerKind::Silence
                } else {
                    PlayerKind::Preencoded {
                        position: audio.start % audio.frames.len(),
                        frames: Arc::clone(&audio.frames),
                    }
                }
            }
        };
        Ok(Self { kind })
    }

    /// Whether this player needs an Opus encoder (everything but pre-encoded audio).
    pub(crate) fn needs_encoder(&self) -> bool {
        !matches!(self.kind, PlayerKind::Preencoded { .. })
    }

    /// The next 20 ms, as PCM or as a ready frame.
    pub(crate) fn next(&mut self) -> Frame {
        if let PlayerKind::Preencoded { frames, position } = &mut self.kind {
            let index = *position;
            *position = (index + 1) % frames.len();
            return Frame::Encoded(index, frames[index].clone());
        }
        Frame::Pcm(Box::new(self.next_frame()))
    }

    /// The next 20 ms.
    pub(crate) fn next_frame(&mut self) -> [i16; FRAME_SAMPLES] {
        let mut frame = [0i16; FRAME_SAMPLES];
        match &mut self.kind {
            PlayerKind::Tone { step, phase } => {
                for sample in &mut frame {
                    *sample = (phase.sin() * TONE_AMPLITUDE) as i16;
                    *phase = (*phase + *step) % std::f64::consts::TAU;
                }
            }
            PlayerKind::Samples { samples, position } => {
                for sample in &mut frame {
                    *sample = samples[*position];
                    *position = (*position + 1) % samples.len();
                }
            }
            PlayerKind::Silence | PlayerKind::Preencoded { .. } => {}
        }
        frame
    }
}

/// The RFC 6464 audio level of `samples`: −dBov of their RMS, 0 (loudest) to 127 (silence).
pub fn audio_level(samples: &[i16]) -> u8 {
    if samples.is_empty() {
        return 127;
    }
    let energy: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
    let rms = (energy / samples.len() as f64).sqrt() / f64::from(i16::MAX);
    if rms <= 0.0 {
        return 127;
    }
    let dbov = -20.0 * rms.log10();
    dbov.round().clamp(0.0, 127.0) as u8
}

/// Reads a 16-bit PCM WAV file and returns its first channel at 48 kHz.
pub fn read_wav_48k(path: &Path) -> Result<Vec<i16>, AudioError> {
    let bytes = std::fs::read(path).map_err(|source| AudioError::Io {
        path: path.to_owned(),
        source,
    })?;
    let (rate, samples) = parse_wav(&bytes)?;
    Ok(resample_to_48k(&samples, rate))
}

/// Parses a RIFF/WAVE file: `(sample rate, first channel)`. Only 16-bit PCM is accepted.
pub fn parse_wav(bytes: &[u8]) -> Result<(u32, Vec<i16>), AudioError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(AudioError::NotWav("no RIFF/WAVE header"));
    }
    let mut offset = 12;
    let mut format = None;
    while offset + 8 <= bytes.len() {
        let id = &bytes[offset..offset + 4];
        let size = u32::from_le_bytes([
            bytes[offset + 4],
            bytes[offset + 5],
            bytes[offset + 6],
            bytes[offset + 7],
        ]) as usize;
        let body_start = offset + 8;
        let body_end = body_start.saturating_add(size).min(bytes.len());
        let body = &bytes[body_start..body_end];
        if id == b"fmt " {
            if body.len() < 16 {
                return Err(AudioError::NotWav("short fmt chunk"));
            }
            let tag = u16::from_le_bytes([body[0], body[1]]);
            let channels = u16::from_le_bytes([body[2], body[3]]);
            let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            let bits = u16::from_le_bytes([body[14], body[15]]);
            if tag != 1 || bits != 16 {
                return Err(AudioError::Unsupported { format: tag, bits });
            }
            if channels == 0 || rate == 0 {
                return Err(AudioError::NotWav("zero channels or rate"));
            }
            format = Some((channels, rate));
        } else if id == b"data" {
            let Some((channels, rate)) = format else {
                return Err(AudioError::NotWav("data chunk before fmt chunk"));
            };
            let frame_bytes = usize::from(channels) * 2;
            let samples = body
                .chunks_exact(frame_bytes)
                .map(|frame| i16::from_le_bytes([frame[0], frame[1]]))
                .collect();
            return Ok((rate, samples));
        }
        // Chunks are padded to an even size.
        offset = body_start.saturating_add(size).saturating_add(size % 2);
    }
    Err(AudioError::NotWav("no data chunk"))
}

/// Linear-interpolation resampling to 48 kHz (good enough for test signals).
pub fn resample_to_48k(samples: &[i16], rate: u32) -> Vec<i16> {
    if rate == SAMPLE_RATE || samples.is_empty() {
        return samples.to_vec();
    }
    let ratio = f64::from(rate) / f64::from(SAMPLE_RATE);
    let out_len = (samples.len() as f64 / ratio).floor() as usize;
    (0..out_len)
        .map(|i| {
            let position = i as f64 * ratio;
            let index = position.floor() as usize;
            let fraction = position - index as f64;
            let a = f64::from(samples[index.min(samples.len() - 1)]);
            let b = f64::from(samples[(index + 1).min(samples.len() - 1)]);
            (a + (b - a) * fraction).round() as i16
        })
        .collect()
}

/// Peak amplitude of generated tones: 0.3 of full scale (RMS ≈ −13.5 dBov).
const TONE_AMPLITUDE: f64 = 0.3 * i16::MAX as f64;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn goertzel(samples: &[i16], hz: f64) -> f64 {
        let k = std::f64::consts::TAU * hz / f64::from(SAMPLE_RATE);
        let coefficient = 2.0 * k.cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for sample in samples {
            let s0 = f64::from(*sample) + coefficient * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        s1 * s1 + s2 * s2 - coefficient * s1 * s2
    }

    fn wav(rate: u32, channels: u16, bits: u16, samples: &[i16]) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
        out.extend_from_slice(&(channels * 2).to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&data);
        out
    }

    #[test]
    fn tone_player_produces_the_frequency_at_the_documented_level() {
        let mut player = Player::new(&AudioSource::Tone(440.0)).unwrap();
        let samples: Vec<i16> = (0..10).flat_map(|_| player.next_frame()).collect();
        let at_440 = goertzel(&samples, 440.0);
        let at_1000 = goertzel(&samples, 1000.0);
        assert!(at_440 > 1000.0 * at_1000, "{at_440} vs {at_1000}");
        let level = audio_level(&samples);
        assert!((12..=15).contains(&level), "level {level}");
    }

    #[test]
    fn silence_is_level_127_and_full_scale_is_0() {
        let mut player = Player::new(&AudioSource::Silence).unwrap();
        assert_eq!(audio_level(&player.next_frame()), 127);
        assert_eq!(audio_level(&[]), 127);
        assert_eq!(audio_level(&[i16::MAX, i16::MIN + 1]), 0);
    }

    #[test]
    fn wav_is_parsed_first_channel_and_resampled() {
        // Stereo 8 kHz: left ramps, right is constant.
        let interleaved: Vec<i16> = (0..800).flat_map(|i| [i as i16, 7]).collect();
        let bytes = wav(8_000, 2, 16, &interleaved);
        let (rate, samples) = parse_wav(&bytes).unwrap();
        assert_eq!(rate, 8_000);
        assert_eq!(samples.len(), 800);
        assert_eq!(samples[10], 10);
        let resampled = resample_to_48k(&samples, rate);
        assert_eq!(resampled.len(), 4_800);
        assert_eq!(resampled[60], 10);
        assert_eq!(resampled[63], 11, "interpolated halfway");
    }

    #[test]
    fn bad_wavs_are_typed_errors() {
        assert!(matches!(parse_wav(b"RIFF...."), Err(AudioError::NotWav(_))));
        let eight_bit = wav(8_000, 1, 8, &[0, 0]);
        assert!(matches!(
            parse_wav(&eight_bit),
            Err(AudioError::Unsupported { bits: 8, .. })
        ));
        let mut truncated = wav(8_000, 1, 16, &[1, 2, 3]);
        truncated.truncate(30);
        assert!(parse_wav(&truncated).is_err());
        let missing = Player::new(&AudioSource::Wav("/nonexistent/x.wav".into()));
        assert!(matches!(missing, Err(AudioError::Io { .. })));
    }

    #[test]
    fn preencoded_player_loops_from_its_start_without_an_encoder() {
        let frames: Arc<[EncodedFrame]> = (0..3u8)
            .map(|i| EncodedFrame {
                payload: vec![i; 4],
                level: 30 + i,
            })
            .collect();
        let mut player = Player::new(&AudioSource::Preencoded(
            PreencodedAudio::new(frames).starting_at(4),
        ))
        .unwrap();
        assert!(!player.needs_encoder());
        let order: Vec<(usize, u8)> = (0..4)
            .map(|_| match player.next() {
                Frame::Encoded(index, frame) => (index, frame.level),
                Frame::Pcm(_) => panic!("pre-encoded audio produced PCM"),
            })
            .collect();
        assert_eq!(order, vec![(1, 31), (2, 32), (0, 30), (1, 31)]);
        let empty = Player::new(&AudioSource::Preencoded(PreencodedAudio::new(Arc::from(
            Vec::<EncodedFrame>::new(),
        ))))
        .unwrap();
        assert!(empty.needs_encoder(), "an empty source plays silence");
    }

    #[test]
    fn wav_player_loops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.wav");
        std::fs::write(&path, wav(48_000, 1, 16, &[1, 2, 3])).unwrap();
        let mut player = Player::new(&AudioSource::Wav(path)).unwrap();
        let frame = player.next_frame();
        assert_eq!(&frame[..7], &[1, 2, 3, 1, 2, 3, 1]);
    }
}
