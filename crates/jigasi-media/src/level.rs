//! RFC 6464 client-to-mixer audio level: the level of the audio we send, in −dBov (0 = full
//! scale, 127 = silence), plus the voice-activity bit.

/// An RFC 6464 audio level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioLevel {
    level: u8,
    voice: bool,
}

impl AudioLevel {
    /// Digital silence: level 127, no voice.
    pub const SILENCE: AudioLevel = AudioLevel {
        level: 127,
        voice: false,
    };

    /// A level from its parts; `level` is clamped to 0..=127.
    pub fn new(level: u8, voice: bool) -> Self {
        Self {
            level: level.min(127),
            voice,
        }
    }

    /// Parses the one-byte wire form (V bit on top, level below, RFC 6464 §3).
    pub fn from_wire(byte: u8) -> Self {
        Self {
            level: byte & 0x7f,
            voice: byte & 0x80 != 0,
        }
    }

    /// The one-byte wire form.
    pub fn to_wire(self) -> u8 {
        (u8::from(self.voice) << 7) | self.level
    }

    /// Measures a frame: the RMS relative to a full-scale square wave, in −dBov (RFC 6464 §3:
    /// a full-scale sine is about −3 dBov). `voice` is set when the level is at least as loud as
    /// `VOICE_THRESHOLD` (−50 dBov), a plain energy detector.
    pub fn measure(pcm: &[i16]) -> Self {
        if pcm.is_empty() {
            return Self::SILENCE;
        }
        let energy: u64 = pcm
            .iter()
            .map(|&s| (i64::from(s) * i64::from(s)) as u64)
            .sum();
        if energy == 0 {
            return Self::SILENCE;
        }
        let mean = energy as f64 / pcm.len() as f64;
        let dbov = 10.0 * (mean / (32_768.0 * 32_768.0)).log10();
        // Round to the nearest dB; -dbov is within [0, ~97] for non-zero 16-bit audio.
        let level = (-dbov).round().clamp(0.0, 127.0) as u8;
        Self {
            level,
            voice: level <= VOICE_THRESHOLD,
        }
    }

    /// The level in −dBov (0 loudest, 127 silence).
    pub fn level(self) -> u8 {
        self.level
    }

    /// The voice-activity bit.
    pub fn voice(self) -> bool {
        self.voice
    }
}

/// Levels at or above −50 dBov count as voice (speech sits around −20 to −35 dBov; line noise
/// well below −50).
pub const VOICE_THRESHOLD: u8 = 50;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::sine;

    #[test]
    fn full_scale_sine_is_about_3_dbov_and_silence_is_127() {
        let tone = sine(1000.0, 8000, 32_767.0, 160);
        let level = AudioLevel::measure(&tone);
        assert_eq!(level.level(), 3);
        assert!(level.voice());
        assert_eq!(AudioLevel::measure(&[0; 160]), AudioLevel::SILENCE);
        assert_eq!(AudioLevel::measure(&[]), AudioLevel::SILENCE);
    }

    #[test]
    fn level_follows_amplitude() {
        // −20 dB amplitude → 23 dBov; −60 dB → 63 dBov, not voice.
        let quiet = AudioLevel::measure(&sine(1000.0, 8000, 3_277.0, 160));
        assert_eq!(quiet.level(), 23);
        let noise = AudioLevel::measure(&sine(1000.0, 8000, 33.0, 160));
        assert_eq!(noise.level(), 63);
        assert!(!noise.voice());
        // Full-scale square wave: 0 dBov.
        let square: Vec<i16> = (0..160)
            .map(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        assert_eq!(AudioLevel::measure(&square).level(), 0);
    }

    #[test]
    fn wire_form_round_trips() {
        let level = AudioLevel::new(42, true);
        assert_eq!(level.to_wire(), 0x80 | 42);
        assert_eq!(AudioLevel::from_wire(0x80 | 42), level);
        assert_eq!(AudioLevel::new(200, false).level(), 127);
    }
}
