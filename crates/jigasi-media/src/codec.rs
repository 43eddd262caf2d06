//! Audio codecs behind one small pair of traits: PCMU/PCMA (ours, [`crate::g711`]), G.722 (the
//! `audio-codec` crate) and Opus (libopus through the `opus` crate).
//!
//! Every call works on one 20 ms frame. Decoders also conceal a lost frame: Opus with its own PLC
//! (`decode(None)`) or in-band FEC taken from the next packet; G.711 and G.722 repeat the last
//! frame with a fade (a deliberately simple PLC).
//!
//! Opus runs at the rate the other side needs: a decoder is created at 8 or 16 kHz so libopus
//! decodes straight to the phone's rate, and the encoder toward the bridge is fed the phone's
//! native rate (performance-anchors.md §2.1, §5.2: cheaper and better than resampling to 48 kHz).

use audio_codec::{Decoder as _, Encoder as _};

use crate::Blame;

/// The sampling rates the engine works at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SampleRate {
    /// 8 kHz, narrowband (G.711).
    Hz8000,
    /// 16 kHz, wideband (G.722, wideband Opus phones).
    Hz16000,
    /// 48 kHz, fullband.
    Hz48000,
}

impl SampleRate {
    /// All rates, in index order.
    pub const ALL: [SampleRate; 3] = [Self::Hz8000, Self::Hz16000, Self::Hz48000];

    /// The rate in Hz.
    pub const fn hz(self) -> u32 {
        match self {
            Self::Hz8000 => 8_000,
            Self::Hz16000 => 16_000,
            Self::Hz48000 => 48_000,
        }
    }

    /// Samples in one 20 ms frame.
    pub const fn samples_per_frame(self) -> usize {
        (self.hz() / 50) as usize
    }

    /// A dense index (0, 1, 2) for per-rate arrays.
    pub const fn index(self) -> usize {
        match self {
            Self::Hz8000 => 0,
            Self::Hz16000 => 1,
            Self::Hz48000 => 2,
        }
    }
}

/// The codecs the engine speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// G.711 A-law.
    Pcma,
    /// G.711 µ-law.
    Pcmu,
    /// G.722 at 64 kbit/s.
    G722,
    /// Opus.
    Opus,
}

impl CodecKind {
    /// The RTP clock rate (RFC 3551 §4.5.2: G.722 keeps 8000 for historic reasons; RFC 7587:
    /// Opus is always 48000).
    pub const fn rtp_clock_rate(self) -> u32 {
        match self {
            Self::Pcma | Self::Pcmu | Self::G722 => 8_000,
            Self::Opus => 48_000,
        }
    }

    /// RTP timestamp ticks per 20 ms frame.
    pub const fn frame_ticks(self) -> u32 {
        self.rtp_clock_rate() / 50
    }

    /// The static payload type, if the codec has one (RFC 3551 Table 4).
    pub const fn static_payload_type(self) -> Option<u8> {
        match self {
            Self::Pcmu => Some(0),
            Self::Pcma => Some(8),
            Self::G722 => Some(9),
            Self::Opus => None,
        }
    }

    /// The rate the codec's audio lives at. Opus phones are mixed at 16 kHz: phones rarely carry
    /// more than wideband, and 16 kHz keeps the decode cost low.
    pub const fn native_rate(self) -> SampleRate {
        match self {
            Self::Pcma | Self::Pcmu => SampleRate::Hz8000,
            Self::G722 | Self::Opus => SampleRate::Hz16000,
        }
    }
}

/// Why a codec call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// libopus rejected the call; `InvalidPacket` means the peer sent garbage.
    #[error("opus {function}: {code:?}")]
    Opus {
        /// The libopus function.
        function: &'static str,
        /// The libopus error.
        code: opus::ErrorCode,
    },
    /// The payload does not hold exactly one 20 ms frame.
    #[error("payload holds {got} samples, expected one 20 ms frame of {expected}")]
    FrameSize {
        /// Samples in a 20 ms frame.
        expected: usize,
        /// Samples the payload holds.
        got: usize,
    },
    /// A PCM buffer of the wrong length was passed in.
    #[error("pcm buffer of {got} samples, expected {expected}")]
    BufferSize {
        /// Samples expected.
        expected: usize,
        /// Samples given.
        got: usize,
    },
    /// The codec cannot run at the requested rate.
    #[error("{kind:?} cannot run at {rate:?}")]
    UnsupportedRate {
        /// The codec.
        kind: CodecKind,
        /// The rate asked for.
        rate: SampleRate,
    },
    /// The G.722 library failed.
    #[error("g722 codec failed")]
    G722,
}

impl CodecError {
    /// Who is to blame for this error.
    pub fn blame(&self) -> Blame {
        match self {
            Self::Opus {
                code: opus::ErrorCode::InvalidPacket,
                ..
            }
            | Self::FrameSize { .. } => Blame::Peer,
            Self::UnsupportedRate { .. } => Blame::Local,
            Self::Opus { .. } | Self::BufferSize { .. } | Self::G722 => Blame::Internal,
        }
    }
}

impl From<opus::Error> for CodecError {
    fn from(error: opus::Error) -> Self {
        Self::Opus {
            function: error.function(),
            code: error.code(),
        }
    }
}

/// Decodes one stream, 20 ms at a time.
pub trait AudioDecoder: Send {
    /// The codec.
    fn kind(&self) -> CodecKind;

    /// The rate of the decoded audio.
    fn sample_rate(&self) -> SampleRate;

    /// Decodes one packet into `out`, which must hold exactly one 20 ms frame at
    /// [`AudioDecoder::sample_rate`].
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<(), CodecError>;

    /// Fills `out` for a lost frame (packet loss concealment).
    fn conceal(&mut self, out: &mut [i16]) -> Result<(), CodecError>;

    /// Fills `out` for a lost frame using redundancy carried in `next`, the packet after the lost
    /// one. Codecs without in-band FEC conceal instead.
    fn decode_fec(&mut self, next: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        let _ = next;
        self.conceal(out)
    }
}

/// Encodes one stream, 20 ms at a time.
pub trait AudioEncoder: Send {
    /// The codec.
    fn kind(&self) -> CodecKind;

    /// The rate the encoder expects its input at.
    fn sample_rate(&self) -> SampleRate;

    /// Encodes one 20 ms frame into `out`, returning the payload length.
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError>;
}

/// Creates a decoder for a phone codec at its native rate (Opus: at `opus_rate`).
pub fn decoder_for(
    kind: CodecKind,
    opus_rate: SampleRate,
) -> Result<Box<dyn AudioDecoder>, CodecError> {
    Ok(match kind {
        CodecKind::Pcma | CodecKind::Pcmu => Box::new(G711Decoder::new(kind)),
        CodecKind::G722 => Box::new(G722Decoder::new()),
        CodecKind::Opus => Box::new(OpusDecoder::new(opus_rate)?),
    })
}

/// Creates an encoder for a phone codec at its native rate (Opus: at `opus_rate`).
pub fn encoder_for(
    kind: CodecKind,
    opus_rate: SampleRate,
    opus: &OpusEncoderConfig,
) -> Result<Box<dyn AudioEncoder>, CodecError> {
    Ok(match kind {
        CodecKind::Pcma | CodecKind::Pcmu => Box::new(G711Encoder::new(kind)),
        CodecKind::G722 => Box::new(G722Encoder::new()),
        CodecKind::Opus => Box::new(OpusEncoder::new(opus_rate, opus)?),
    })
}

/// "Repeat the last frame with a fade": the PLC for codecs without their own.
#[derive(Debug, Clone)]
struct RepeatPlc {
    last: [i16; MAX_NATIVE_FRAME],
    len: usize,
    consecutive: u32,
}

impl RepeatPlc {
    fn new() -> Self {
        Self {
            last: [0; MAX_NATIVE_FRAME],
            len: 0,
            consecutive: 0,
        }
    }

    fn remember(&mut self, frame: &[i16]) {
        let len = frame.len().min(MAX_NATIVE_FRAME);
        self.last[..len].copy_from_slice(&frame[..len]);
        self.len = len;
        self.consecutive = 0;
    }

    /// Repeats the last frame; the gain falls linearly across the frame from the previous step's
    /// gain to this one's (1 → 0.6 → 0.3 → 0), so there is no click.
    fn conceal(&mut self, out: &mut [i16]) {
        const STEPS: [i32; 4] = [256, 154, 77, 0];
        let step = self.consecutive as usize;
        self.consecutive = self.consecutive.saturating_add(1);
        let (Some(&from), Some(&to)) = (STEPS.get(step), STEPS.get(step + 1)) else {
            out.fill(0);
            return;
        };
        let n = out.len();
        if self.len != n || from == 0 {
            out.fill(0);
            return;
        }
        for (i, (o, &s)) in out.iter_mut().zip(self.last.iter()).enumerate() {
            // i < n <= 960, so the interpolated gain stays within [0, 256].
            let gain = from + (to - from) * i as i32 / n as i32;
            *o = ((i32::from(s) * gain) >> 8) as i16;
        }
    }
}

/// G.711 decoder (PCMU or PCMA) at 8 kHz.
#[derive(Debug, Clone)]
pub struct G711Decoder {
    kind: CodecKind,
    plc: RepeatPlc,
}

impl G711Decoder {
    /// A decoder for `kind`, which must be PCMU or PCMA (anything else decodes as PCMU).
    pub fn new(kind: CodecKind) -> Self {
        Self {
            kind,
            plc: RepeatPlc::new(),
        }
    }
}

impl AudioDecoder for G711Decoder {
    fn kind(&self) -> CodecKind {
        self.kind
    }

    fn sample_rate(&self) -> SampleRate {
        SampleRate::Hz8000
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        check_len(out, SampleRate::Hz8000)?;
        if payload.len() != out.len() {
            return Err(CodecError::FrameSize {
                expected: out.len(),
                got: payload.len(),
            });
        }
        match self.kind {
            CodecKind::Pcma => crate::g711::decode_alaw(payload, out),
            CodecKind::Pcmu | CodecKind::G722 | CodecKind::Opus => {
                crate::g711::decode_ulaw(payload, out)
            }
        };
        self.plc.remember(out);
        Ok(())
    }

    fn conceal(&mut self, out: &mut [i16]) -> Result<(), CodecError> {
        check_len(out, SampleRate::Hz8000)?;
        self.plc.conceal(out);
        Ok(())
    }
}

/// G.711 encoder (PCMU or PCMA) at 8 kHz.
#[derive(Debug, Clone)]
pub struct G711Encoder {
    kind: CodecKind,
}

impl G711Encoder {
    /// An encoder for `kind`, which must be PCMU or PCMA (anything else encodes as PCMU).
    pub fn new(kind: CodecKind) -> Self {
        Self { kind }
    }
}

impl AudioEncoder for G711Encoder {
    fn kind(&self) -> CodecKind {
        self.kind
    }

    fn sample_rate(&self) -> SampleRate {
        SampleRate::Hz8000
    }

    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        check_len(pcm, SampleRate::Hz8000)?;
        if out.len() < pcm.len() {
            return Err(CodecError::BufferSize {
                expected: pcm.len(),
                got: out.len(),
            });
        }
        Ok(match self.kind {
            CodecKind::Pcma => crate::g711::encode_alaw(pcm, out),
            CodecKind::Pcmu | CodecKind::G722 | CodecKind::Opus => {
                crate::g711::encode_ulaw(pcm, out)
            }
        })
    }
}

/// G.722 decoder (64 kbit/s, 16 kHz output).
pub struct G722Decoder {
    inner: audio_codec::g722::G722Decoder,
    plc: RepeatPlc,
}

impl G722Decoder {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self {
            inner: audio_codec::g722::G722Decoder::new(),
            plc: RepeatPlc::new(),
        }
    }
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for G722Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("G722Decoder")
    }
}

impl AudioDecoder for G722Decoder {
    fn kind(&self) -> CodecKind {
        CodecKind::G722
    }

    fn sample_rate(&self) -> SampleRate {
        SampleRate::Hz16000
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        check_len(out, SampleRate::Hz16000)?;
        // One byte carries two 16 kHz samples in the 64 kbit/s mode.
        if payload.len() * 2 != out.len() {
            return Err(CodecError::FrameSize {
                expected: out.len(),
                got: payload.len() * 2,
            });
        }
        let written = self
            .inner
            .decode_into(payload, out)
            .map_err(|_| CodecError::G722)?;
        if written != out.len() {
            return Err(CodecError::G722);
        }
        self.plc.remember(out);
        Ok(())
    }

    fn conceal(&mut self, out: &mut [i16]) -> Result<(), CodecError> {
        check_len(out, SampleRate::Hz16000)?;
        self.plc.conceal(out);
        Ok(())
    }
}

/// G.722 encoder (64 kbit/s, 16 kHz input).
pub struct G722Encoder {
    inner: audio_codec::g722::G722Encoder,
}

impl G722Encoder {
    /// A fresh encoder.
    pub fn new() -> Self {
        Self {
            inner: audio_codec::g722::G722Encoder::new(),
        }
    }
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for G722Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("G722Encoder")
    }
}

impl AudioEncoder for G722Encoder {
    fn kind(&self) -> CodecKind {
        CodecKind::G722
    }

    fn sample_rate(&self) -> SampleRate {
        SampleRate::Hz16000
    }

    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        check_len(pcm, SampleRate::Hz16000)?;
        self.inner
            .encode_into(pcm, out)
            .map_err(|_| CodecError::G722)
    }
}

/// Opus decoder producing 20 ms frames at 8, 16 or 48 kHz.
pub struct OpusDecoder {
    inner: opus::Decoder,
    rate: SampleRate,
}

impl OpusDecoder {
    /// A mono decoder at `rate` (libopus decodes natively at every supported rate).
    pub fn new(rate: SampleRate) -> Result<Self, CodecError> {
        Ok(Self {
            inner: opus::Decoder::new(rate.hz(), opus::Channels::Mono)?,
            rate,
        })
    }

    fn finish(&self, written: usize) -> Result<(), CodecError> {
        let expected = self.rate.samples_per_frame();
        if written == expected {
            Ok(())
        } else {
            Err(CodecError::FrameSize {
                expected,
                got: written,
            })
        }
    }
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("rate", &self.rate)
            .finish()
    }
}

impl AudioDecoder for OpusDecoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }

    fn sample_rate(&self) -> SampleRate {
        self.rate
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        check_len(out, self.rate)?;
        if payload.is_empty() {
            // An empty slice means "lost" to libopus; an empty RTP payload is not a frame.
            return Err(CodecError::FrameSize {
                expected: out.len(),
                got: 0,
            });
        }
        let written = self.inner.decode(payload, out, false)?;
        self.finish(written)
    }

    fn conceal(&mut self, out: &mut [i16]) -> Result<(), CodecError> {
        check_len(out, self.rate)?;
        let written = self.inner.decode(&[], out, false)?;
        self.finish(written)
    }

    fn decode_fec(&mut self, next: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        check_len(out, self.rate)?;
        if next.is_empty() {
            return self.conceal(out);
        }
        // With fec=1 libopus decodes exactly `out.len()` samples of the previous frame from the
        // LBRR data in `next`, or runs its PLC if `next` carries none.
        let written = self.inner.decode(next, out, true)?;
        self.finish(written)
    }
}

/// Settings of the Opus encoder toward the bridge (and toward Opus phones).
///
/// Use [`OpusEncoderConfig::for_rate`]: the defaults depend on the input rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusEncoderConfig {
    /// Encoder complexity 0..=10.
    ///
    /// **0 for 8 kHz input, 5 for 16 kHz and above.** Measured with `media-bench` (K=3 speakers,
    /// PCMU phone, libopus 1.6.1, 100 resident calls, this project's 2-vCPU machine): a whole
    /// call costs about 120–145 µs of CPU per 20 ms tick at complexity 0, 190 µs at 2 and
    /// 215 µs at 5, and the encoder is the difference. Only complexity 0 reaches the 150
    /// calls-per-core target. On narrowband input it costs almost no quality (PESQ 4.18 vs 4.20
    /// at 5, performance-anchors.md §5.2, "native-rate" chain). On wideband input complexity 0
    /// does hurt (anchors §5.2: 2.76 vs 4.20), so 16 kHz phones keep 5.
    pub complexity: u8,
    /// Target bitrate in bit/s: **24 000 for 8 kHz input** (the anchors' native-rate figure),
    /// **48 000 at 16 kHz and above**.
    ///
    /// With [`Self::inband_fec`] on and a loss hint above 0, libopus (1.6) codes the LBRR copy
    /// inside the same budget. At 16 kHz and 32 kbit/s that left the main layer about what
    /// 24 kbit/s without FEC gets. Measured with `examples/g722-uplink.rs` (the engine's real
    /// path, PESQ-WB, espeak speech; 25 s of speech, and in brackets the mean of the e2e
    /// test's two sentences with 8 lead-ins each): a G.722 phone (spandsp-encoded, as baresip
    /// does) toward the conference scored 2.77 (2.77) at 32 kbit/s with FEC and 2.98 (2.93)
    /// without, where G.722 alone scores 3.09 (3.11); clean wideband speech (an Opus phone)
    /// 3.65 with FEC and 4.19 without. 48 kbit/s with FEC scores like 32 kbit/s without: 2.95
    /// (2.96), clean 4.21. So FEC costs bits (about 45 kbit/s on average instead of 30 for
    /// speech), not quality. At 8 kHz FEC costs little (PESQ-NB 3.84 against 3.89 after
    /// G.711, whose own ceiling is 3.96), so 24 kbit/s stays.
    pub bitrate: u32,
    /// In-band FEC (LBRR). Default on: it recovers most of a single loss (PESQ 3.06 → 3.81 at 5%
    /// loss, anchors §5.2).
    pub inband_fec: bool,
    /// Expected packet loss in percent, a hint that sizes the FEC data. Default 5.
    pub packet_loss_percent: u8,
}

impl OpusEncoderConfig {
    /// The defaults for input at `rate` (see the field documentation for why).
    pub fn for_rate(rate: SampleRate) -> Self {
        match rate {
            SampleRate::Hz8000 => Self {
                complexity: 0,
                bitrate: 24_000,
                ..Self::default()
            },
            SampleRate::Hz16000 | SampleRate::Hz48000 => Self::default(),
        }
    }
}

impl Default for OpusEncoderConfig {
    /// The wideband defaults: complexity 5, 48 kbit/s, FEC on, 5% loss hint.
    fn default() -> Self {
        Self {
            complexity: 5,
            bitrate: 48_000,
            inband_fec: true,
            packet_loss_percent: 5,
        }
    }
}

/// Opus encoder fed 20 ms frames at 8, 16 or 48 kHz (VoIP application, DTX off).
pub struct OpusEncoder {
    inner: opus::Encoder,
    rate: SampleRate,
}

impl OpusEncoder {
    /// A mono encoder fed at `rate`.
    pub fn new(rate: SampleRate, config: &OpusEncoderConfig) -> Result<Self, CodecError> {
        let mut inner =
            opus::Encoder::new(rate.hz(), opus::Channels::Mono, opus::Application::Voip)?;
        inner.set_complexity(i32::from(config.complexity.min(10)))?;
        inner.set_bitrate(opus::Bitrate::Bits(
            i32::try_from(config.bitrate).unwrap_or(i32::MAX),
        ))?;
        inner.set_inband_fec(config.inband_fec)?;
        inner.set_packet_loss_perc(i32::from(config.packet_loss_percent.min(100)))?;
        inner.set_dtx(false)?;
        Ok(Self { inner, rate })
    }
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("rate", &self.rate)
            .finish()
    }
}

impl AudioEncoder for OpusEncoder {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus
    }

    fn sample_rate(&self) -> SampleRate {
        self.rate
    }

    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        check_len(pcm, self.rate)?;
        Ok(self.inner.encode(pcm, out)?)
    }
}

fn check_len(buffer: &[i16], rate: SampleRate) -> Result<(), CodecError> {
    let expected = rate.samples_per_frame();
    if buffer.len() == expected {
        Ok(())
    } else {
        Err(CodecError::BufferSize {
            expected,
            got: buffer.len(),
        })
    }
}

/// The largest frame a non-Opus codec produces (20 ms at 16 kHz).
const MAX_NATIVE_FRAME: usize = 320;
/// Largest encoded frame we produce or accept (RFC 6716 §3.2.1 caps an Opus frame at 1275 B).
pub const MAX_PAYLOAD: usize = 1275;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::tone::{goertzel_power, sine};

    /// Encodes `seconds` of a `freq` Hz tone through `encoder`, decodes it with `decoder`, and
    /// returns the decoded audio.
    fn round_trip(
        encoder: &mut dyn AudioEncoder,
        decoder: &mut dyn AudioDecoder,
        freq: f32,
        frames: usize,
    ) -> Vec<i16> {
        let in_rate = encoder.sample_rate();
        let out_rate = decoder.sample_rate();
        let input = sine(
            freq,
            in_rate.hz(),
            10_000.0,
            frames * in_rate.samples_per_frame(),
        );
        let mut out = Vec::new();
        let mut payload = [0u8; MAX_PAYLOAD];
        let mut pcm = vec![0i16; out_rate.samples_per_frame()];
        for frame in input.chunks_exact(in_rate.samples_per_frame()) {
            let n = encoder.encode(frame, &mut payload).unwrap();
            decoder.decode(&payload[..n], &mut pcm).unwrap();
            out.extend_from_slice(&pcm);
        }
        out
    }

    /// Asserts `pcm` (after the codec delay settles) is dominated by `freq` at roughly the input
    /// level.
    fn assert_tone(pcm: &[i16], rate: SampleRate, freq: f32) {
        let tail = &pcm[pcm.len() / 2..];
        let on = goertzel_power(tail, freq, rate.hz());
        let off = goertzel_power(tail, freq * 1.37, rate.hz());
        assert!(on > 100.0 * off, "tone {freq}: on {on}, off {off}");
        let rms =
            (tail.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
        let expected = 10_000.0 / 2f64.sqrt();
        assert!(
            (rms / expected - 1.0).abs() < 0.25,
            "level {rms:.0}, expected ≈{expected:.0}"
        );
    }

    #[test]
    fn g711_tone_round_trip() {
        for kind in [CodecKind::Pcmu, CodecKind::Pcma] {
            let mut enc = G711Encoder::new(kind);
            let mut dec = G711Decoder::new(kind);
            let out = round_trip(&mut enc, &mut dec, 1000.0, 10);
            assert_tone(&out, SampleRate::Hz8000, 1000.0);
        }
    }

    #[test]
    fn g722_tone_round_trip() {
        let mut enc = G722Encoder::new();
        let mut dec = G722Decoder::new();
        // 5 kHz is only representable in wideband: it checks the upper sub-band too.
        for freq in [800.0, 5000.0] {
            let out = round_trip(&mut enc, &mut dec, freq, 25);
            assert_tone(&out, SampleRate::Hz16000, freq);
        }
        let mut payload = [0u8; 200];
        assert_eq!(enc.encode(&[0; 320], &mut payload).unwrap(), 160);
    }

    #[test]
    fn opus_tone_round_trip_at_native_rates() {
        for (enc_rate, dec_rate, freq) in [
            (SampleRate::Hz8000, SampleRate::Hz8000, 700.0),
            (SampleRate::Hz16000, SampleRate::Hz16000, 5000.0),
            (SampleRate::Hz48000, SampleRate::Hz8000, 1000.0),
            (SampleRate::Hz8000, SampleRate::Hz48000, 440.0),
        ] {
            let mut enc =
                OpusEncoder::new(enc_rate, &OpusEncoderConfig::for_rate(enc_rate)).unwrap();
            let mut dec = OpusDecoder::new(dec_rate).unwrap();
            let out = round_trip(&mut enc, &mut dec, freq, 50);
            assert_tone(&out, dec_rate, freq);
        }
    }

    #[test]
    fn opus_fec_recovers_a_lost_frame_better_than_plc() {
        let rate = SampleRate::Hz8000;
        let config = OpusEncoderConfig {
            packet_loss_percent: 20,
            ..OpusEncoderConfig::default()
        };
        let mut enc = OpusEncoder::new(rate, &config).unwrap();
        let input = sine(600.0, 8000, 8000.0, 60 * 160);
        let packets: Vec<Vec<u8>> = input
            .chunks_exact(160)
            .map(|frame| {
                let mut out = [0u8; MAX_PAYLOAD];
                let n = enc.encode(frame, &mut out).unwrap();
                out[..n].to_vec()
            })
            .collect();
        let lost = 40;
        let mut with_fec = OpusDecoder::new(rate).unwrap();
        let mut with_plc = OpusDecoder::new(rate).unwrap();
        let mut pcm = [0i16; 160];
        for packet in &packets[..lost] {
            with_fec.decode(packet, &mut pcm).unwrap();
            with_plc.decode(packet, &mut pcm).unwrap();
        }
        let mut fec_frame = [0i16; 160];
        let mut plc_frame = [0i16; 160];
        with_fec
            .decode_fec(&packets[lost + 1], &mut fec_frame)
            .unwrap();
        with_plc.conceal(&mut plc_frame).unwrap();
        let power = |f: &[i16]| goertzel_power(f, 600.0, 8000);
        assert!(power(&fec_frame) > 0.0);
        assert!(
            power(&fec_frame) >= power(&plc_frame) * 0.9,
            "fec {} plc {}",
            power(&fec_frame),
            power(&plc_frame)
        );
        // And the decoder continues normally afterwards.
        with_fec.decode(&packets[lost + 1], &mut pcm).unwrap();
    }

    #[test]
    fn garbage_opus_is_an_error_not_a_panic() {
        let mut dec = OpusDecoder::new(SampleRate::Hz8000).unwrap();
        let mut pcm = [0i16; 160];
        // TOC code 3 (arbitrary frame count) with a truncated count byte.
        let err = dec.decode(&[0x03], &mut pcm).unwrap_err();
        assert_eq!(err.blame(), Blame::Peer);
        assert!(dec.decode(&[], &mut pcm).is_err());
        assert!(matches!(
            dec.decode(&[0xf8, 0xff], &mut [0i16; 100]),
            Err(CodecError::BufferSize { .. })
        ));
    }

    #[test]
    fn repeat_plc_fades_out() {
        let mut dec = G711Decoder::new(CodecKind::Pcmu);
        let tone = sine(500.0, 8000, 10_000.0, 160);
        let mut payload = [0u8; 160];
        crate::g711::encode_ulaw(&tone, &mut payload);
        let mut pcm = [0i16; 160];
        dec.decode(&payload, &mut pcm).unwrap();
        let energy = |f: &[i16]| f.iter().map(|&s| i64::from(s).pow(2)).sum::<i64>();
        let original = energy(&pcm);
        let mut previous = original;
        for step in 0..3 {
            dec.conceal(&mut pcm).unwrap();
            let e = energy(&pcm);
            assert!(e < previous, "step {step}: {e} !< {previous}");
            previous = e;
        }
        assert!(previous * 10 < original);
        dec.conceal(&mut pcm).unwrap();
        assert_eq!(energy(&pcm), 0, "silent after the fade");
        assert!(matches!(
            dec.decode(&payload[..100], &mut pcm),
            Err(CodecError::FrameSize { .. })
        ));
    }

    /// `seconds` of a speech-like wideband signal at 16 kHz: voiced (a wandering 95–145 Hz
    /// pitch with harmonics up to 7.5 kHz, falling 3 dB per octave) in 4 Hz syllables, with
    /// noise bursts (fricatives) between them. Deterministic.
    fn wideband_voice(seconds: usize) -> Vec<i16> {
        let rate = 16_000.0f32;
        let mut phase = 0.0f32;
        let mut noise = 0x1234_5678u32;
        (0..seconds * 16_000)
            .map(|i| {
                let t = i as f32 / rate;
                let pitch = 120.0 + 25.0 * (std::f32::consts::TAU * 0.7 * t).sin();
                phase += std::f32::consts::TAU * pitch / rate;
                let syllable = (std::f32::consts::TAU * 4.0 * t).sin();
                let voiced: f32 = (1..=60)
                    .filter(|h| *h as f32 * pitch < 7_500.0)
                    .map(|h| (phase * h as f32).sin() / (h as f32).sqrt())
                    .sum();
                noise = noise.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let white = (noise >> 16) as f32 / 32_768.0 - 1.0;
                (voiced * syllable.max(0.0) * 2_500.0 + white * (-syllable).max(0.0) * 3_000.0)
                    as i16
            })
            .collect()
    }

    /// The mean log-spectral distance in dB between `input` and what an Opus encoder with
    /// `config` and a decoder, both at 16 kHz, make of it: per 20 ms frame with speech (Hann
    /// window, 50 Hz bins up to 8 kHz), after the first second and aligned by the codec delay.
    /// Lower is closer; it follows the bits the encoder spends on the signal (it does not see
    /// what complexity changes, PESQ does).
    fn opus_spectral_distance_16k(config: &OpusEncoderConfig, input: &[i16]) -> f64 {
        const N: usize = 320;
        let rate = SampleRate::Hz16000;
        let mut enc = OpusEncoder::new(rate, config).unwrap();
        let mut dec = OpusDecoder::new(rate).unwrap();
        let mut payload = [0u8; MAX_PAYLOAD];
        let mut pcm = [0i16; N];
        let mut out = Vec::new();
        for frame in input.chunks_exact(N) {
            let n = enc.encode(frame, &mut payload).unwrap();
            dec.decode(&payload[..n], &mut pcm).unwrap();
            out.extend_from_slice(&pcm);
        }
        let x: Vec<f64> = input[16_000..].iter().map(|&s| f64::from(s)).collect();
        let y: Vec<f64> = out[16_000..].iter().map(|&s| f64::from(s)).collect();
        let correlation =
            |lag: usize| -> f64 { x[..16_000].iter().zip(&y[lag..]).map(|(a, b)| a * b).sum() };
        let lag = (0..200)
            .max_by(|&a, &b| correlation(a).total_cmp(&correlation(b)))
            .unwrap();
        let (x, y) = (&x[..x.len() - lag], &y[lag..]);
        // DFT twiddles for bins 1..N/2 and the Hann window.
        let tau = std::f64::consts::TAU;
        let cos: Vec<f64> = (0..N).map(|i| (tau * i as f64 / N as f64).cos()).collect();
        let sin: Vec<f64> = (0..N).map(|i| (tau * i as f64 / N as f64).sin()).collect();
        let window: Vec<f64> = cos.iter().map(|c| 0.5 - 0.5 * c).collect();
        let spectrum = |frame: &[f64]| -> Vec<f64> {
            let windowed: Vec<f64> = frame.iter().zip(&window).map(|(s, w)| s * w).collect();
            (1..N / 2)
                .map(|k| {
                    let (mut re, mut im) = (0.0, 0.0);
                    for (i, s) in windowed.iter().enumerate() {
                        re += s * cos[k * i % N];
                        im -= s * sin[k * i % N];
                    }
                    10.0 * (re * re + im * im + 1.0).log10()
                })
                .collect()
        };
        let (mut total, mut frames) = (0.0, 0u32);
        for (a, b) in x.chunks_exact(N).zip(y.chunks_exact(N)) {
            // Frames below about -40 dBFS RMS are pauses.
            if a.iter().map(|s| s * s).sum::<f64>() < 1e5 * N as f64 {
                continue;
            }
            let (sa, sb) = (spectrum(a), spectrum(b));
            let d: f64 = sa.iter().zip(&sb).map(|(p, q)| (p - q).powi(2)).sum();
            total += (d / sa.len() as f64).sqrt();
            frames += 1;
        }
        assert!(frames > 50, "only {frames} frames with speech");
        total / f64::from(frames)
    }

    /// Why 16 kHz input gets 48 kbit/s: with in-band FEC on and a loss hint, libopus codes the
    /// LBRR copy inside the same budget, and at 32 kbit/s that starved the main layer (PESQ-WB
    /// of a G.722 phone toward the conference 2.69 instead of 2.88, `examples/g722-uplink.rs`).
    /// The chosen settings keep FEC and must reproduce the audio at least as well as 32 kbit/s
    /// without FEC. The second assertion is the reason itself: if a libopus update stops
    /// charging FEC to the main layer, it fails, and the rate can come down again.
    #[test]
    fn wideband_encoder_pays_for_fec_in_bits_not_in_quality() {
        let chosen = OpusEncoderConfig::for_rate(SampleRate::Hz16000);
        assert!(chosen.inband_fec && chosen.packet_loss_percent > 0);
        let no_fec_32k = OpusEncoderConfig {
            bitrate: 32_000,
            inband_fec: false,
            packet_loss_percent: 0,
            ..chosen
        };
        let fec_32k = OpusEncoderConfig {
            bitrate: 32_000,
            ..chosen
        };
        let input = wideband_voice(4);
        let [chosen, no_fec_32k, fec_32k] =
            [chosen, no_fec_32k, fec_32k].map(|c| opus_spectral_distance_16k(&c, &input));
        assert!(
            chosen <= no_fec_32k + 0.1,
            "chosen {chosen:.2} dB, 32 kbit/s without FEC {no_fec_32k:.2} dB"
        );
        assert!(
            fec_32k > no_fec_32k + 0.25,
            "32 kbit/s with FEC {fec_32k:.2} dB, without {no_fec_32k:.2} dB"
        );
    }
}
