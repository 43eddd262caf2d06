//! One conference's audio: the remote speakers arriving from the bridge (one Opus stream per
//! SSRC), the phones attached through this gateway, and the 20 ms tick that joins them.
//!
//! **Decode once.** Each speaker owns one jitter buffer and one Opus decoder *per output rate
//! actually in use* (8 kHz for G.711 phones, 16 kHz for G.722/Opus phones). Every tick each
//! speaker's buffer is popped once and decoded once per rate, however many phones listen: with K
//! speakers and P phones at one rate that is K decodes per tick, not K·P.
//!
//! **N−1 mixing.** Per rate the tick sums every speaker and every phone's uplink into an `i32`
//! accumulator once; each phone then gets `total − its own uplink`, saturated to `i16`. Phones
//! on this gateway are speakers to each other (their uplink reaches the other phones directly,
//! without a round trip through the bridge), and never hear themselves. A bridge stream whose
//! SSRC is one of our own phones' is ignored for the same reason.
//!
//! **Phone → conference.** Each phone's RTP goes through its own jitter buffer, is decoded at the
//! phone's native rate and Opus-encoded *at that rate* for the bridge (no resampler), with the
//! RFC 6464 level of exactly that audio.
//!
//! Driving it (the caller owns sockets and the clock):
//!
//! ```no_run
//! # use std::time::Instant;
//! # use jigasi_media::{Conference, ConferenceConfig, PhoneConfig, CodecKind, BridgePacket};
//! # use jigasi_types::{CallId, PayloadType, Ssrc};
//! # fn demo(now: Instant, rtp_from_phone: &[u8], opus: &[u8]) -> Result<(), jigasi_media::ConferenceError> {
//! let mut conference = Conference::new(ConferenceConfig::default());
//! conference.add_speaker(Ssrc::new(0x1111))?; // on Jingle source-add
//! let phone = CallId::new(1);
//! conference.add_phone(phone, PhoneConfig::new(CodecKind::Pcmu, Ssrc::new(7), Ssrc::new(8)))?;
//! // Whenever a packet arrives:
//! conference.handle_phone_rtp(now, phone, rtp_from_phone)?;
//! conference.handle_bridge_packet(now, &BridgePacket {
//!     ssrc: Ssrc::new(0x1111), payload_type: PayloadType::new(111),
//!     sequence: 1, timestamp: 960, audio_level: None, payload: opus,
//! })?;
//! // Every 20 ms:
//! conference.tick(now);
//! for out in conference.outputs() {
//!     if let Some(rtp) = out.to_phone { /* send to the phone */ }
//!     if let Some(frame) = out.to_bridge { /* hand payload + level to str0m */ }
//! }
//! while let Some(event) = conference.poll_event() { /* DTMF */ }
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use jigasi_types::{CallId, PayloadType, Ssrc};

use crate::Blame;
use crate::codec::{
    AudioDecoder, AudioEncoder, CodecError, CodecKind, MAX_PAYLOAD, OpusDecoder, OpusEncoder,
    OpusEncoderConfig, SampleRate, decoder_for, encoder_for,
};
use crate::dtmf::{DtmfDigit, DtmfError, DtmfReceived, DtmfReceiver, DtmfSender};
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::level::AudioLevel;
use crate::recording::{Direction, RecordingSink};
use crate::rtcp::{self, NtpTime, ReportBlock, RtcpError, RtcpPacket, SenderInfo};
use crate::rtp::{RtpError, RtpPacket, RtpSender};
use crate::srtp::{self, SrtpError, SrtpKeys, SrtpReceiver, SrtpSender, SrtpStats, SrtpSuite};
use crate::stats::ReceiveStats;
use crate::tone::DtmfToneGenerator;

/// Conference-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConferenceConfig {
    /// Jitter buffer settings for every stream (bridge and phones).
    pub jitter: JitterConfig,
    /// The Opus payload type on the bridge leg (Jicofo offers 111).
    pub bridge_opus_pt: PayloadType,
    /// The telephone-event payload type on the bridge leg (Jicofo offers 126), if negotiated.
    pub bridge_telephone_event_pt: Option<PayloadType>,
}

impl Default for ConferenceConfig {
    fn default() -> Self {
        Self {
            jitter: JitterConfig::default(),
            bridge_opus_pt: PayloadType::new(111),
            bridge_telephone_event_pt: Some(PayloadType::new(126)),
        }
    }
}

/// What to send toward the bridge while a phone is muted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MutePolicy {
    /// Send nothing (the bridge and the other participants see a paused stream).
    #[default]
    SendNothing,
    /// Keep sending Opus-encoded silence with audio level 127 (keeps the stream "active").
    SendSilence,
}

/// How DTMF is sent to a phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtmfMethod {
    /// RFC 4733 telephone events (needs `telephone_event_pt`).
    #[default]
    Rfc4733,
    /// Tones mixed into the audio (Jigasi's `INBAND_DTMF`).
    Inband,
}

/// Settings of one phone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhoneConfig {
    /// The negotiated codec.
    pub codec: CodecKind,
    /// Its payload type.
    pub payload_type: PayloadType,
    /// The negotiated telephone-event payload type, if any.
    pub telephone_event_pt: Option<PayloadType>,
    /// The comfort-noise payload type (13 by default); CN packets mean silence.
    pub comfort_noise_pt: Option<PayloadType>,
    /// The rate an Opus phone is decoded, mixed and encoded at. Default 16 kHz.
    pub opus_rate: SampleRate,
    /// The encoder toward the bridge.
    pub bridge_opus: OpusEncoderConfig,
    /// The encoder toward an Opus phone.
    pub phone_opus: OpusEncoderConfig,
    /// Our SSRC toward the bridge for this phone's audio.
    pub bridge_ssrc: Ssrc,
    /// Our SSRC toward the phone.
    pub phone_ssrc: Ssrc,
    /// The first sequence number toward the phone (random, from the caller's RNG).
    pub first_sequence: u16,
    /// The first RTP timestamp toward the phone (random, from the caller's RNG).
    pub first_timestamp: u32,
    /// The first RTP timestamp toward the bridge (random, from the caller's RNG).
    pub first_bridge_timestamp: u32,
    /// What muting sends.
    pub mute_policy: MutePolicy,
    /// How DTMF reaches the phone.
    pub dtmf_method: DtmfMethod,
    /// SDES-SRTP keys when the phone leg is SRTP (RTP and RTCP are then protected both ways);
    /// `None` for plain RTP.
    pub srtp: Option<SrtpKeys>,
}

impl PhoneConfig {
    /// Defaults for `codec` with its static payload type (Opus: 111), telephone-event 101.
    pub fn new(codec: CodecKind, bridge_ssrc: Ssrc, phone_ssrc: Ssrc) -> Self {
        let native = codec.native_rate();
        Self {
            codec,
            payload_type: PayloadType::new(codec.static_payload_type().unwrap_or(111)),
            telephone_event_pt: Some(PayloadType::new(101)),
            comfort_noise_pt: Some(PayloadType::new(13)),
            opus_rate: SampleRate::Hz16000,
            bridge_opus: OpusEncoderConfig::for_rate(native),
            phone_opus: OpusEncoderConfig::for_rate(native),
            bridge_ssrc,
            phone_ssrc,
            first_sequence: 0,
            first_timestamp: 0,
            first_bridge_timestamp: 0,
            mute_policy: MutePolicy::default(),
            dtmf_method: DtmfMethod::default(),
            srtp: None,
        }
    }

    /// The rate this phone's audio is processed at.
    pub fn rate(&self) -> SampleRate {
        match self.codec {
            CodecKind::Opus => self.opus_rate,
            CodecKind::Pcma | CodecKind::Pcmu | CodecKind::G722 => self.codec.native_rate(),
        }
    }
}

/// One RTP packet from the bridge, as the bridge leg (str0m) delivers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgePacket<'a> {
    /// The sender's SSRC.
    pub ssrc: Ssrc,
    /// The payload type.
    pub payload_type: PayloadType,
    /// The RTP sequence number.
    pub sequence: u16,
    /// The RTP timestamp (48 kHz for Opus).
    pub timestamp: u32,
    /// The RFC 6464 level from the `ssrc-audio-level` extension, if present.
    pub audio_level: Option<AudioLevel>,
    /// The payload.
    pub payload: &'a [u8],
}

/// Something the caller must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// A phone sent an RFC 4733 DTMF event.
    DtmfFromPhone {
        /// The phone.
        phone: CallId,
        /// What happened.
        received: DtmfReceived,
    },
    /// A conference participant sent an RFC 4733 DTMF event through the bridge.
    DtmfFromConference {
        /// The participant's SSRC.
        ssrc: Ssrc,
        /// What happened.
        received: DtmfReceived,
    },
}

/// Errors of the conference API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConferenceError {
    /// A malformed RTP packet from a phone.
    #[error(transparent)]
    Rtp(#[from] RtpError),
    /// A malformed RTCP datagram from a phone.
    #[error(transparent)]
    Rtcp(#[from] RtcpError),
    /// An SRTP/SRTCP packet from a phone that failed authentication or the replay check, or
    /// could not be protected.
    #[error(transparent)]
    Srtp(#[from] SrtpError),
    /// A malformed telephone-event payload.
    #[error(transparent)]
    Dtmf(#[from] DtmfError),
    /// A codec could not be created.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A payload type that was not negotiated.
    #[error("payload type {0} was not negotiated")]
    UnknownPayloadType(PayloadType),
    /// Audio from an SSRC that was never announced (no source-add).
    #[error("no speaker with ssrc {0}")]
    UnknownSsrc(Ssrc),
    /// No phone with this id is attached.
    #[error("no phone {0} in this conference")]
    UnknownPhone(CallId),
    /// The phone or speaker is already attached.
    #[error("already attached")]
    AlreadyAttached,
    /// Too many DTMF digits queued for a phone.
    #[error("dtmf queue full")]
    DtmfQueueFull,
}

impl ConferenceError {
    /// Who is to blame for this error.
    pub fn blame(&self) -> Blame {
        match self {
            Self::Rtp(e) => e.blame(),
            Self::Rtcp(e) => e.blame(),
            Self::Srtp(e) => e.blame(),
            Self::Dtmf(e) => e.blame(),
            Self::Codec(e) => e.blame(),
            Self::UnknownPayloadType(_) | Self::UnknownSsrc(_) => Blame::Peer,
            Self::UnknownPhone(_) | Self::AlreadyAttached => Blame::Internal,
            Self::DtmfQueueFull => Blame::Local,
        }
    }
}

/// Conference-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConferenceStats {
    /// Ticks run.
    pub ticks: u64,
    /// Decoder invocations for bridge streams (decode, FEC or PLC), all rates.
    pub speaker_decodes: u64,
    /// Decoder failures (the frame was concealed instead).
    pub decode_errors: u64,
    /// Encoder failures (nothing was sent for that frame).
    pub encode_errors: u64,
    /// Bridge packets from unannounced SSRCs.
    pub unknown_ssrc: u64,
    /// Bridge packets carrying one of our own phones (ignored: the local copy is mixed).
    pub own_ssrc: u64,
    /// Bridge packets for a speaker that another bridge leg of the room delivers (each call in
    /// a room has its own leg and receives every speaker: one copy is enough).
    pub other_leg: u64,
    /// Events dropped because the caller did not poll them.
    pub events_dropped: u64,
}

/// The counters of one phone.
#[derive(Debug, Clone, Copy)]
pub struct PhoneStats<'a> {
    /// RTP reception from the phone, once a packet arrived.
    pub receive: Option<&'a ReceiveStats>,
    /// The phone's jitter buffer.
    pub jitter: &'a JitterStats,
    /// Packets sent to the phone.
    pub sent_packets: u64,
    /// Round-trip time from the phone's last receiver report.
    pub round_trip_time: Option<Duration>,
    /// The phone's last report block on our stream (its view of what we send: loss, jitter).
    pub remote_report: Option<ReportBlock>,
    /// Our last report block on the phone's stream, as sent in our last SR/RR (the fraction
    /// lost since the report before).
    pub local_report: Option<ReportBlock>,
    /// Valid RTCP datagrams received from the phone.
    pub rtcp_received: u64,
    /// SRTP counters, when the phone leg is SRTP.
    pub srtp: Option<PhoneSrtpStats>,
}

/// The SRTP counters of one phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneSrtpStats {
    /// The suite in use.
    pub suite: SrtpSuite,
    /// What we protected toward the phone.
    pub sent: SrtpStats,
    /// What the phone sent: unprotected, or dropped (authentication, replay, malformed).
    pub received: SrtpStats,
}

/// What one tick produced for one phone.
#[derive(Debug, Clone, Copy)]
pub struct TickOutput<'a> {
    /// The phone.
    pub phone: CallId,
    /// A complete RTP packet for the phone (its N−1 mix), if any.
    pub to_phone: Option<&'a [u8]>,
    /// A complete RTP telephone-event packet for the phone, if a DTMF press is being sent.
    pub dtmf_to_phone: Option<&'a [u8]>,
    /// The phone's audio for the bridge, unless muted with [`MutePolicy::SendNothing`].
    pub to_bridge: Option<BridgeFrame<'a>>,
}

/// One Opus frame for the bridge leg; str0m adds the RTP header and the level extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeFrame<'a> {
    /// Our SSRC for this phone.
    pub ssrc: Ssrc,
    /// The Opus payload.
    pub payload: &'a [u8],
    /// The RTP timestamp (48 kHz clock).
    pub rtp_timestamp: u32,
    /// The RFC 6464 level of the audio in `payload`.
    pub audio_level: AudioLevel,
}

/// How long a speaker's bridge leg may be silent before another leg's copy of the speaker is
/// taken instead ([`Conference::handle_leg_packet`]). Longer than any jitter between two legs
/// from one bridge; short enough that a leg going away costs a few frames at most.
pub const LEG_TAKEOVER: Duration = Duration::from_millis(100);

/// A phone detached from one [`Conference`] with all its state, ready to be attached to another
/// ([`Conference::take_phone`], [`Conference::insert_phone`]).
pub struct DetachedPhone(Box<Phone>);

impl std::fmt::Debug for DetachedPhone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetachedPhone")
            .field("id", &self.0.id)
            .field("rate", &self.0.rate)
            .finish_non_exhaustive()
    }
}

/// The audio of one conference. See the module documentation.
pub struct Conference {
    config: ConferenceConfig,
    speakers: Vec<Speaker>,
    phones: Vec<Phone>,
    /// Phones per rate: which rates speakers must be decoded at.
    rate_users: [u32; 3],
    /// Per-rate `i32` sums of everything audible this tick.
    totals: [Vec<i32>; 3],
    events: VecDeque<MediaEvent>,
    recorder: Option<Box<dyn RecordingSink>>,
    stats: ConferenceStats,
}

struct Speaker {
    ssrc: Ssrc,
    jitter: JitterBuffer,
    decoders: [Option<OpusDecoder>; 3],
    pcm: [Vec<i16>; 3],
    audible: bool,
    dtmf: DtmfReceiver,
    /// The bridge leg this speaker's packets are taken from, and when it last delivered one
    /// ([`Conference::handle_leg_packet`]).
    leg: Option<(CallId, Instant)>,
}

struct Phone {
    id: CallId,
    config: PhoneConfig,
    rate: SampleRate,
    decoder: Box<dyn AudioDecoder>,
    encoder: Box<dyn AudioEncoder>,
    bridge_encoder: OpusEncoder,
    jitter: JitterBuffer,
    receive: Option<ReceiveStats>,
    rtp: RtpSender,
    first_packet: bool,
    uplink: Vec<i16>,
    uplink_audible: bool,
    /// The RFC 6464 level of `uplink` (the last frame decoded from the phone).
    uplink_level: AudioLevel,
    mix: Vec<i16>,
    to_phone: Vec<u8>,
    to_phone_len: usize,
    dtmf_packet: [u8; DTMF_PACKET],
    dtmf_len: usize,
    bridge_payload: Vec<u8>,
    bridge_len: Option<usize>,
    bridge_level: AudioLevel,
    bridge_timestamp: u32,
    muted: bool,
    /// Whether RTP goes to the phone (not on hold): when not, nothing is encoded or counted as
    /// sent, and the RTP clock runs on.
    sending: bool,
    dtmf_queue: VecDeque<(DtmfDigit, Duration)>,
    dtmf_tx: Option<DtmfTx>,
    dtmf_rx: DtmfReceiver,
    round_trip_time: Option<Duration>,
    remote_report: Option<ReportBlock>,
    local_report: Option<ReportBlock>,
    rtcp_received: u64,
    /// RTP packets sent to the phone when the last RTCP report was written (SR or RR).
    packets_at_last_report: u64,
    /// SRTP contexts when the phone leg is SRTP (boxed: the expanded keys and the scratch
    /// buffer stay out of the phone's hot fields).
    srtp: Option<Box<PhoneSrtp>>,
}

/// The SRTP state of one phone: a context per direction and a buffer to decrypt into.
struct PhoneSrtp {
    keys: SrtpKeys,
    tx: SrtpSender,
    rx: SrtpReceiver,
    /// The phone's datagram is copied here and decrypted in place (the caller's is `&[u8]`).
    scratch: [u8; MAX_DATAGRAM],
}

impl PhoneSrtp {
    fn new(keys: SrtpKeys) -> Box<Self> {
        Box::new(Self {
            keys,
            tx: SrtpSender::new(keys.suite, &keys.local),
            rx: SrtpReceiver::new(keys.suite, &keys.remote),
            scratch: [0; MAX_DATAGRAM],
        })
    }

    /// Copies `datagram` into the scratch buffer and unprotects it there (SRTP or SRTCP).
    fn unprotect(&mut self, datagram: &[u8], rtcp: bool) -> Result<&[u8], SrtpError> {
        let Some(buf) = self.scratch.get_mut(..datagram.len()) else {
            return Err(SrtpError::BufferTooSmall {
                needed: datagram.len(),
                len: MAX_DATAGRAM,
            });
        };
        buf.copy_from_slice(datagram);
        let len = if rtcp {
            self.rx.unprotect_rtcp(buf)?
        } else {
            self.rx.unprotect_rtp(buf)?
        };
        Ok(&self.scratch[..len])
    }
}

enum DtmfTx {
    Rfc4733(DtmfSender),
    Inband {
        generator: DtmfToneGenerator,
        frames_left: u32,
    },
}

impl Conference {
    /// An empty conference.
    pub fn new(config: ConferenceConfig) -> Self {
        Self {
            config,
            speakers: Vec::new(),
            phones: Vec::new(),
            rate_users: [0; 3],
            totals: [Vec::new(), Vec::new(), Vec::new()],
            events: VecDeque::with_capacity(EVENT_QUEUE),
            recorder: None,
            stats: ConferenceStats::default(),
        }
    }

    /// Adds a remote speaker (Jingle `source-add`).
    pub fn add_speaker(&mut self, ssrc: Ssrc) -> Result<(), ConferenceError> {
        let Err(index) = self.speakers.binary_search_by_key(&ssrc, |s| s.ssrc) else {
            return Err(ConferenceError::AlreadyAttached);
        };
        let mut speaker = Speaker {
            ssrc,
            jitter: JitterBuffer::new(
                self.config.jitter,
                CodecKind::Opus.rtp_clock_rate(),
                CodecKind::Opus.frame_ticks(),
            ),
            decoders: [None, None, None],
            pcm: [Vec::new(), Vec::new(), Vec::new()],
            audible: false,
            dtmf: DtmfReceiver::default(),
            leg: None,
        };
        for rate in SampleRate::ALL {
            if self.rate_users[rate.index()] > 0 {
                speaker.enable_rate(rate)?;
            }
        }
        self.speakers.insert(index, speaker);
        Ok(())
    }

    /// Removes a remote speaker (Jingle `source-remove`). Unknown SSRCs are ignored.
    pub fn remove_speaker(&mut self, ssrc: Ssrc) {
        if let Ok(index) = self.speakers.binary_search_by_key(&ssrc, |s| s.ssrc) {
            self.speakers.remove(index);
        }
    }

    /// Attaches a phone.
    pub fn add_phone(&mut self, id: CallId, config: PhoneConfig) -> Result<(), ConferenceError> {
        if self.phones.iter().any(|p| p.id == id) {
            return Err(ConferenceError::AlreadyAttached);
        }
        let rate = config.rate();
        let frame = rate.samples_per_frame();
        let phone = Phone {
            id,
            rate,
            decoder: decoder_for(config.codec, rate)?,
            encoder: encoder_for(config.codec, rate, &config.phone_opus)?,
            bridge_encoder: OpusEncoder::new(rate, &config.bridge_opus)?,
            jitter: JitterBuffer::new(
                self.config.jitter,
                config.codec.rtp_clock_rate(),
                config.codec.frame_ticks(),
            ),
            receive: None,
            rtp: RtpSender::new(
                config.phone_ssrc,
                config.payload_type,
                config.first_sequence,
                config.first_timestamp,
            ),
            first_packet: true,
            uplink: vec![0; frame],
            uplink_audible: false,
            uplink_level: AudioLevel::SILENCE,
            mix: vec![0; frame],
            to_phone: vec![0; crate::rtp::FIXED_HEADER + MAX_PAYLOAD + srtp::MAX_OVERHEAD],
            to_phone_len: 0,
            dtmf_packet: [0; DTMF_PACKET],
            dtmf_len: 0,
            bridge_payload: vec![0; MAX_PAYLOAD],
            bridge_len: None,
            bridge_level: AudioLevel::SILENCE,
            bridge_timestamp: config.first_bridge_timestamp,
            muted: false,
            sending: true,
            dtmf_queue: VecDeque::with_capacity(DTMF_QUEUE),
            dtmf_tx: None,
            dtmf_rx: DtmfReceiver::default(),
            round_trip_time: None,
            remote_report: None,
            local_report: None,
            rtcp_received: 0,
            packets_at_last_report: 0,
            srtp: config.srtp.map(PhoneSrtp::new),
            config,
        };
        self.insert_phone(DetachedPhone(Box::new(phone)))
    }

    /// Detaches a phone. Decoders at a rate no phone needs any more are freed.
    pub fn remove_phone(&mut self, id: CallId) -> Result<(), ConferenceError> {
        self.take_phone(id).map(drop)
    }

    /// Detaches a phone with all its state (jitter buffer, codecs, RTP sequence, SRTP rollover
    /// counters, RTCP figures), to be attached to another conference with
    /// [`Conference::insert_phone`]: how a call moves into the engine its room shares.
    pub fn take_phone(&mut self, id: CallId) -> Result<DetachedPhone, ConferenceError> {
        let index = self.phone_index(id)?;
        let phone = self.phones.remove(index);
        self.release_rate(phone.rate);
        Ok(DetachedPhone(Box::new(phone)))
    }

    /// Attaches a phone taken from another conference, as it was.
    pub fn insert_phone(&mut self, phone: DetachedPhone) -> Result<(), ConferenceError> {
        let DetachedPhone(phone) = phone;
        if self.phones.iter().any(|p| p.id == phone.id) {
            return Err(ConferenceError::AlreadyAttached);
        }
        let rate = phone.rate;
        if self.rate_users[rate.index()] == 0 {
            for speaker in &mut self.speakers {
                speaker.enable_rate(rate)?;
            }
            self.totals[rate.index()] = vec![0; rate.samples_per_frame()];
        }
        self.rate_users[rate.index()] += 1;
        self.phones.push(*phone);
        Ok(())
    }

    /// Whether the phone `id` is attached.
    pub fn has_phone(&self, id: CallId) -> bool {
        self.phones.iter().any(|p| p.id == id)
    }

    /// Number of attached phones.
    pub fn phone_count(&self) -> usize {
        self.phones.len()
    }

    /// One phone fewer at `rate`: decoders at a rate no phone needs any more are freed.
    fn release_rate(&mut self, rate: SampleRate) {
        let r = rate.index();
        self.rate_users[r] = self.rate_users[r].saturating_sub(1);
        if self.rate_users[r] == 0 {
            for speaker in &mut self.speakers {
                speaker.decoders[r] = None;
                speaker.pcm[r] = Vec::new();
            }
            self.totals[r] = Vec::new();
        }
    }

    /// Changes a phone's SRTP keys after a re-INVITE: a direction whose suite and key stay the
    /// same keeps its state (rollover counter, replay window, SRTCP index); a changed one
    /// starts afresh; `None` goes back to plain RTP.
    pub fn set_phone_srtp(
        &mut self,
        id: CallId,
        keys: Option<SrtpKeys>,
    ) -> Result<(), ConferenceError> {
        let index = self.phone_index(id)?;
        let phone = &mut self.phones[index];
        phone.config.srtp = keys;
        let (Some(keys), Some(current)) = (keys, phone.srtp.as_deref_mut()) else {
            phone.srtp = keys.map(PhoneSrtp::new);
            return Ok(());
        };
        let old = current.keys;
        if (old.suite, old.local) != (keys.suite, keys.local) {
            current.tx = SrtpSender::new(keys.suite, &keys.local);
        }
        if (old.suite, old.remote) != (keys.suite, keys.remote) {
            current.rx = SrtpReceiver::new(keys.suite, &keys.remote);
        }
        current.keys = keys;
        Ok(())
    }

    /// Installs the recording sink (replacing any previous one).
    pub fn set_recorder(&mut self, recorder: Option<Box<dyn RecordingSink>>) {
        self.recorder = recorder;
    }

    /// Mutes or unmutes a phone toward the conference.
    pub fn set_muted(&mut self, id: CallId, muted: bool) -> Result<(), ConferenceError> {
        let index = self.phone_index(id)?;
        self.phones[index].muted = muted;
        Ok(())
    }

    /// Whether the caller sends this phone's RTP (not while the phone holds the call): the
    /// RTCP report is a sender report only if something was sent since the last one.
    pub fn set_sending(&mut self, id: CallId, sending: bool) -> Result<(), ConferenceError> {
        let index = self.phone_index(id)?;
        self.phones[index].sending = sending;
        Ok(())
    }

    /// Queues a DTMF press toward a phone, sent with the phone's [`DtmfMethod`].
    pub fn send_dtmf(
        &mut self,
        id: CallId,
        digit: DtmfDigit,
        duration: Duration,
    ) -> Result<(), ConferenceError> {
        let index = self.phone_index(id)?;
        let phone = &mut self.phones[index];
        if phone.dtmf_queue.len() >= DTMF_QUEUE {
            return Err(ConferenceError::DtmfQueueFull);
        }
        phone.dtmf_queue.push_back((digit, duration));
        Ok(())
    }

    /// Handles one RTP datagram from a phone.
    pub fn handle_phone_rtp(
        &mut self,
        now: Instant,
        id: CallId,
        datagram: &[u8],
    ) -> Result<(), ConferenceError> {
        let index = self.phone_index(id)?;
        let phone = &mut self.phones[index];
        let datagram = match phone.srtp.as_deref_mut() {
            Some(srtp) => srtp.unprotect(datagram, false)?,
            None => datagram,
        };
        let packet = RtpPacket::parse(datagram)?;
        let clock = phone.config.codec.rtp_clock_rate();
        let receive = phone
            .receive
            .get_or_insert_with(|| ReceiveStats::new(packet.ssrc, clock));
        if receive_ssrc_changed(receive, packet.ssrc) {
            // A new source (re-INVITE, PBX switching streams): start over.
            *receive = ReceiveStats::new(packet.ssrc, clock);
            phone.jitter.reset();
        }
        let pt = packet.payload_type;
        if pt == phone.config.payload_type {
            receive.record(now, packet.sequence, packet.timestamp);
            let level = match phone.config.codec {
                CodecKind::Pcmu | CodecKind::Pcma => {
                    Some(g711_level(phone.config.codec, packet.payload))
                }
                // No level in the payload without decoding it: the last decoded frame's level
                // stands in (pauses in speech last far longer than the buffer), so the jitter
                // buffer's drops and inserts still land in pauses rather than mid-word.
                CodecKind::G722 | CodecKind::Opus => Some(phone.uplink_level),
            };
            phone.jitter.push(
                now,
                packet.sequence,
                packet.timestamp,
                level,
                packet.payload,
            );
            return Ok(());
        }
        if Some(pt) == phone.config.telephone_event_pt {
            receive.record(now, packet.sequence, packet.timestamp);
            let notes = phone.dtmf_rx.handle(packet.timestamp, packet.payload)?;
            for received in notes.into_iter().flatten() {
                push_event(
                    &mut self.events,
                    &mut self.stats,
                    MediaEvent::DtmfFromPhone {
                        phone: id,
                        received,
                    },
                );
            }
            return Ok(());
        }
        if Some(pt) == phone.config.comfort_noise_pt {
            // Comfort noise: the phone is silent; its jitter buffer will play silence.
            receive.record(now, packet.sequence, packet.timestamp);
            return Ok(());
        }
        Err(ConferenceError::UnknownPayloadType(pt))
    }

    /// Handles an RTCP datagram from a phone (SR for our receiver reports, RR for RTT, the
    /// report block on our stream for its loss and jitter). `arrival` is the wall clock at
    /// arrival, read by the caller. A datagram that is not a valid compound packet (a packet
    /// that does not parse, or none at all) is rejected whole with [`ConferenceError::Rtcp`]
    /// and changes nothing.
    pub fn handle_phone_rtcp(
        &mut self,
        now: Instant,
        arrival: NtpTime,
        id: CallId,
        datagram: &[u8],
    ) -> Result<(), ConferenceError> {
        let index = self.phone_index(id)?;
        let phone = &mut self.phones[index];
        if datagram.is_empty() {
            return Err(RtcpError::Truncated { needed: 4, len: 0 }.into());
        }
        let datagram = match phone.srtp.as_deref_mut() {
            Some(srtp) => srtp.unprotect(datagram, true)?,
            None => datagram,
        };
        if let Some(Err(error)) = rtcp::parse_compound(datagram).find(Result::is_err) {
            return Err(error.into());
        }
        phone.rtcp_received += 1;
        for packet in rtcp::parse_compound(datagram) {
            let Ok(packet) = packet else {
                break;
            };
            let reports = match packet {
                RtcpPacket::SenderReport {
                    sender,
                    info,
                    reports,
                } => {
                    if let Some(receive) = phone.receive.as_mut()
                        && !receive_ssrc_changed(receive, sender)
                    {
                        receive.record_sender_report(info.ntp_time, now);
                    }
                    reports
                }
                RtcpPacket::ReceiverReport { reports, .. } => reports,
                RtcpPacket::Other { .. } => continue,
            };
            for block in reports.iter() {
                if block.ssrc != phone.config.phone_ssrc {
                    continue;
                }
                phone.remote_report = Some(block);
                if let Some(rtt) = block.round_trip_time(arrival) {
                    phone.round_trip_time = Some(rtt);
                }
            }
        }
        Ok(())
    }

    /// Writes the phone leg's compound RTCP packet into `out` (RFC 3550 §6.4, §6.1): a sender
    /// report if we sent RTP to the phone since the last report, else a receiver report, each
    /// with a report block on the phone's stream once it sent something; then an SDES CNAME;
    /// then a BYE when `bye` (the call is ending, §6.3.7); on an SRTP leg protected as SRTCP.
    /// 256 bytes of `out` are always enough.
    pub fn write_phone_rtcp(
        &mut self,
        now: Instant,
        wall_clock: NtpTime,
        id: CallId,
        bye: bool,
        out: &mut [u8],
    ) -> Result<usize, ConferenceError> {
        let index = self.phone_index(id)?;
        let phone = &mut self.phones[index];
        let ssrc = phone.config.phone_ssrc;
        let sent = phone.rtp.packets();
        let block = phone.receive.as_mut().map(|r| r.report_block(now));
        if block.is_some() {
            phone.local_report = block;
        }
        let blocks = block.as_slice();
        let mut len = if sent > phone.packets_at_last_report {
            let info = SenderInfo {
                ntp_time: wall_clock,
                rtp_time: phone.rtp.timestamp(),
                // RFC 3550 §6.4.1: these counters wrap.
                packet_count: (sent & 0xffff_ffff) as u32,
                octet_count: (phone.rtp.octets() & 0xffff_ffff) as u32,
            };
            rtcp::write_sender_report(ssrc, &info, blocks, out)?
        } else {
            rtcp::write_receiver_report(ssrc, blocks, out)?
        };
        phone.packets_at_last_report = sent;
        let cname = cname(ssrc);
        len += rtcp::write_sdes_cname(ssrc, &cname, out.get_mut(len..).unwrap_or_default())?;
        if bye {
            len += rtcp::write_bye(ssrc, out.get_mut(len..).unwrap_or_default())?;
        }
        if let Some(srtp) = phone.srtp.as_deref_mut() {
            len = srtp.tx.protect_rtcp(out, len)?;
        }
        Ok(len)
    }

    /// Handles one packet that arrived on the bridge leg of call `leg`, when several calls
    /// (each with its own bridge leg, each receiving every speaker) feed this conference: a
    /// speaker's packets are taken from one leg only, so its jitter buffer sees one sequence
    /// space; another leg takes over once that leg has been silent for [`LEG_TAKEOVER`] (its
    /// call left, or its Jingle session is being renegotiated).
    pub fn handle_leg_packet(
        &mut self,
        now: Instant,
        leg: CallId,
        packet: &BridgePacket<'_>,
    ) -> Result<(), ConferenceError> {
        if let Ok(index) = self.speakers.binary_search_by_key(&packet.ssrc, |s| s.ssrc) {
            let speaker = &mut self.speakers[index];
            match speaker.leg {
                Some((owner, heard))
                    if owner != leg && now.saturating_duration_since(heard) < LEG_TAKEOVER =>
                {
                    self.stats.other_leg += 1;
                    return Ok(());
                }
                Some(_) | None => speaker.leg = Some((leg, now)),
            }
        }
        self.handle_bridge_packet(now, packet)
    }

    /// The bridge leg of call `leg` is gone (the call left): its speakers are taken from the
    /// next leg that delivers them, at once.
    pub fn release_leg(&mut self, leg: CallId) {
        for speaker in &mut self.speakers {
            if speaker.leg.is_some_and(|(owner, _)| owner == leg) {
                speaker.leg = None;
            }
        }
    }

    /// Handles one packet from the bridge.
    pub fn handle_bridge_packet(
        &mut self,
        now: Instant,
        packet: &BridgePacket<'_>,
    ) -> Result<(), ConferenceError> {
        if self
            .phones
            .iter()
            .any(|p| p.config.bridge_ssrc == packet.ssrc)
        {
            self.stats.own_ssrc += 1;
            return Ok(());
        }
        let Ok(index) = self.speakers.binary_search_by_key(&packet.ssrc, |s| s.ssrc) else {
            self.stats.unknown_ssrc += 1;
            return Err(ConferenceError::UnknownSsrc(packet.ssrc));
        };
        let speaker = &mut self.speakers[index];
        if packet.payload_type == self.config.bridge_opus_pt {
            speaker.jitter.push(
                now,
                packet.sequence,
                packet.timestamp,
                packet.audio_level,
                packet.payload,
            );
            return Ok(());
        }
        if Some(packet.payload_type) == self.config.bridge_telephone_event_pt {
            let notes = speaker.dtmf.handle(packet.timestamp, packet.payload)?;
            for received in notes.into_iter().flatten() {
                push_event(
                    &mut self.events,
                    &mut self.stats,
                    MediaEvent::DtmfFromConference {
                        ssrc: packet.ssrc,
                        received,
                    },
                );
            }
            return Ok(());
        }
        Err(ConferenceError::UnknownPayloadType(packet.payload_type))
    }

    /// Runs one 20 ms tick: phone uplinks (jitter buffer, decode, Opus encode for the bridge),
    /// speakers (jitter buffer, one decode per rate in use), the N−1 mixes and the phone
    /// encodes. Read the results with [`Conference::outputs`].
    pub fn tick(&mut self, now: Instant) {
        self.stats.ticks += 1;
        let Self {
            speakers,
            phones,
            rate_users,
            totals,
            recorder,
            stats,
            ..
        } = self;

        for phone in phones.iter_mut() {
            phone.pull_uplink(now, stats);
            if let Some(recorder) = recorder.as_mut() {
                recorder.record(phone.id, Direction::ToConference, phone.rate, &phone.uplink);
            }
            phone.encode_for_bridge(stats);
        }

        for speaker in speakers.iter_mut() {
            speaker.pull(now, rate_users, stats);
        }

        for rate in SampleRate::ALL {
            let r = rate.index();
            if rate_users[r] == 0 {
                continue;
            }
            let total = &mut totals[r];
            total.fill(0);
            for speaker in speakers.iter().filter(|s| s.audible) {
                for (t, &s) in total.iter_mut().zip(speaker.pcm[r].iter()) {
                    *t += i32::from(s);
                }
            }
            for phone in phones.iter().filter(|p| p.uplink_audible) {
                add_converted(&phone.uplink, phone.rate, total, rate);
            }
        }

        for phone in phones.iter_mut() {
            let total = &totals[phone.rate.index()];
            for ((m, &t), &own) in phone
                .mix
                .iter_mut()
                .zip(total.iter())
                .zip(phone.uplink.iter())
            {
                let sum = if phone.uplink_audible {
                    t - i32::from(own)
                } else {
                    t
                };
                *m = saturate(sum);
            }
            phone.send_to_phone(stats);
            if let Some(recorder) = recorder.as_mut() {
                recorder.record(phone.id, Direction::ToPhone, phone.rate, &phone.mix);
            }
        }
    }

    /// What the last tick produced, one entry per phone.
    pub fn outputs(&self) -> impl Iterator<Item = TickOutput<'_>> {
        self.phones.iter().map(|phone| TickOutput {
            phone: phone.id,
            to_phone: (phone.to_phone_len > 0).then(|| &phone.to_phone[..phone.to_phone_len]),
            dtmf_to_phone: (phone.dtmf_len > 0).then(|| &phone.dtmf_packet[..phone.dtmf_len]),
            to_bridge: phone.bridge_len.map(|len| BridgeFrame {
                ssrc: phone.config.bridge_ssrc,
                payload: &phone.bridge_payload[..len],
                rtp_timestamp: phone.bridge_timestamp,
                audio_level: phone.bridge_level,
            }),
        })
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// Conference-wide counters.
    pub fn stats(&self) -> &ConferenceStats {
        &self.stats
    }

    /// The jitter-buffer counters of one speaker.
    pub fn speaker_stats(&self, ssrc: Ssrc) -> Option<&JitterStats> {
        self.speakers
            .binary_search_by_key(&ssrc, |s| s.ssrc)
            .ok()
            .and_then(|i| self.speakers.get(i))
            .map(|s| s.jitter.stats())
    }

    /// The counters of one phone.
    pub fn phone_stats(&self, id: CallId) -> Option<PhoneStats<'_>> {
        let phone = self.phones.iter().find(|p| p.id == id)?;
        Some(PhoneStats {
            receive: phone.receive.as_ref(),
            jitter: phone.jitter.stats(),
            sent_packets: phone.rtp.packets(),
            round_trip_time: phone.round_trip_time,
            remote_report: phone.remote_report,
            local_report: phone.local_report,
            rtcp_received: phone.rtcp_received,
            srtp: phone.srtp.as_deref().map(|srtp| PhoneSrtpStats {
                suite: srtp.keys.suite,
                sent: *srtp.tx.stats(),
                received: *srtp.rx.stats(),
            }),
        })
    }

    /// Number of remote speakers.
    pub fn speaker_count(&self) -> usize {
        self.speakers.len()
    }

    fn phone_index(&self, id: CallId) -> Result<usize, ConferenceError> {
        self.phones
            .iter()
            .position(|p| p.id == id)
            .ok_or(ConferenceError::UnknownPhone(id))
    }
}

impl std::fmt::Debug for Conference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conference")
            .field("speakers", &self.speakers.len())
            .field("phones", &self.phones.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Speaker {
    fn enable_rate(&mut self, rate: SampleRate) -> Result<(), CodecError> {
        let r = rate.index();
        if self.decoders[r].is_none() {
            self.decoders[r] = Some(OpusDecoder::new(rate)?);
            self.pcm[r] = vec![0; rate.samples_per_frame()];
        }
        Ok(())
    }

    /// Pops the jitter buffer once and decodes the result once per rate in use.
    fn pull(&mut self, now: Instant, rate_users: &[u32; 3], stats: &mut ConferenceStats) {
        let playout = self.jitter.pop(now);
        self.audible = !matches!(playout, Playout::Silence);
        if !self.audible {
            return;
        }
        for rate in SampleRate::ALL {
            let r = rate.index();
            if rate_users[r] == 0 {
                continue;
            }
            let (Some(decoder), pcm) = (self.decoders[r].as_mut(), &mut self.pcm[r]) else {
                continue;
            };
            stats.speaker_decodes += 1;
            let result = match playout {
                Playout::Frame(payload) => decoder.decode(payload, pcm),
                Playout::Conceal { fec: Some(next) } => decoder.decode_fec(next, pcm),
                Playout::Conceal { fec: None } => decoder.conceal(pcm),
                Playout::Silence => Ok(()),
            };
            if result.is_err() {
                stats.decode_errors += 1;
                if decoder.conceal(pcm).is_err() {
                    pcm.fill(0);
                }
            }
        }
    }
}

impl Phone {
    fn pull_uplink(&mut self, now: Instant, stats: &mut ConferenceStats) {
        let playout = self.jitter.pop(now);
        let result = match playout {
            Playout::Frame(payload) => self.decoder.decode(payload, &mut self.uplink),
            Playout::Conceal { fec: Some(next) } => self.decoder.decode_fec(next, &mut self.uplink),
            Playout::Conceal { fec: None } => self.decoder.conceal(&mut self.uplink),
            Playout::Silence => {
                self.uplink.fill(0);
                self.uplink_audible = false;
                self.uplink_level = AudioLevel::SILENCE;
                return;
            }
        };
        if result.is_err() {
            stats.decode_errors += 1;
            if self.decoder.conceal(&mut self.uplink).is_err() {
                self.uplink.fill(0);
            }
        }
        self.uplink_level = AudioLevel::measure(&self.uplink);
        // Muted phones are not heard by the other phones either.
        self.uplink_audible = !self.muted;
    }

    fn encode_for_bridge(&mut self, stats: &mut ConferenceStats) {
        self.bridge_timestamp = self
            .bridge_timestamp
            .wrapping_add(CodecKind::Opus.frame_ticks());
        self.bridge_len = None;
        let (pcm, level): (&[i16], AudioLevel) = if self.muted {
            match self.config.mute_policy {
                MutePolicy::SendNothing => return,
                MutePolicy::SendSilence => (&SILENCE[..self.uplink.len()], AudioLevel::SILENCE),
            }
        } else {
            (&self.uplink, self.uplink_level)
        };
        match self.bridge_encoder.encode(pcm, &mut self.bridge_payload) {
            Ok(len) => {
                self.bridge_len = Some(len);
                self.bridge_level = level;
            }
            Err(_) => stats.encode_errors += 1,
        }
    }

    fn send_to_phone(&mut self, stats: &mut ConferenceStats) {
        self.to_phone_len = 0;
        self.dtmf_len = 0;
        let frame_ticks = self.config.codec.frame_ticks();
        if !self.sending {
            self.rtp.advance(frame_ticks);
            return;
        }
        if self.dtmf_tx.is_none()
            && let Some((digit, duration)) = self.dtmf_queue.pop_front()
        {
            self.dtmf_tx = Some(self.start_dtmf(digit, duration));
        }
        match self.dtmf_tx.as_mut() {
            Some(DtmfTx::Inband {
                generator,
                frames_left,
            }) => {
                generator.fill(&mut self.mix);
                *frames_left = frames_left.saturating_sub(1);
                if *frames_left == 0 {
                    self.dtmf_tx = None;
                }
            }
            Some(DtmfTx::Rfc4733(sender)) => {
                if let (Some(packet), Some(pt)) =
                    (sender.poll_packet(), self.config.telephone_event_pt)
                    && let Ok(len) = self.rtp.write_with(
                        pt,
                        packet.timestamp,
                        packet.marker,
                        &packet.payload,
                        &mut self.dtmf_packet,
                    )
                {
                    match protect_rtp(self.srtp.as_deref_mut(), &mut self.dtmf_packet, len) {
                        Ok(len) => self.dtmf_len = len,
                        Err(_) => stats.encode_errors += 1,
                    }
                }
                if sender.is_done() {
                    self.dtmf_tx = None;
                }
            }
            None => {}
        }

        let mut payload = [0u8; MAX_PAYLOAD];
        match self.encoder.encode(&self.mix, &mut payload) {
            Ok(len) => {
                let marker = std::mem::take(&mut self.first_packet);
                let written = self
                    .rtp
                    .write(marker, &payload[..len], &mut self.to_phone)
                    .map_err(ConferenceError::from)
                    .and_then(|written| {
                        Ok(protect_rtp(
                            self.srtp.as_deref_mut(),
                            &mut self.to_phone,
                            written,
                        )?)
                    });
                match written {
                    Ok(written) => self.to_phone_len = written,
                    Err(_) => stats.encode_errors += 1,
                }
            }
            Err(_) => stats.encode_errors += 1,
        }
        self.rtp.advance(frame_ticks);
    }

    fn start_dtmf(&self, digit: DtmfDigit, duration: Duration) -> DtmfTx {
        let frames = u32::try_from(duration.as_millis().div_ceil(20))
            .unwrap_or(u32::MAX)
            .max(1);
        match (self.config.dtmf_method, self.config.telephone_event_pt) {
            (DtmfMethod::Rfc4733, Some(_)) => {
                let frame_ticks = self.config.codec.frame_ticks();
                let ticks = u16::try_from(frames * frame_ticks).unwrap_or(u16::MAX);
                DtmfTx::Rfc4733(DtmfSender::new(
                    digit,
                    self.rtp.timestamp(),
                    ticks,
                    u16::try_from(frame_ticks).unwrap_or(u16::MAX),
                    DTMF_VOLUME,
                ))
            }
            (DtmfMethod::Inband, _) | (DtmfMethod::Rfc4733, None) => DtmfTx::Inband {
                generator: DtmfToneGenerator::new(digit, self.rate.hz(), INBAND_AMPLITUDE),
                frames_left: frames,
            },
        }
    }
}

/// Our RTCP CNAME toward a phone: `jigasi-rs-` and the SSRC in hex (RFC 3550 §6.5.1 wants it
/// unique per endpoint; RFC 7022 allows a random-looking identifier).
fn cname(ssrc: Ssrc) -> [u8; 18] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut name = *b"jigasi-rs-00000000";
    for (i, digit) in name[10..].iter_mut().enumerate() {
        let shift = 28 - 4 * i;
        *digit = HEX[((ssrc.get() >> shift) & 0xf) as usize];
    }
    name
}

/// Protects the RTP packet in `buf[..len]` on an SRTP leg; plain RTP passes through.
fn protect_rtp(
    srtp: Option<&mut PhoneSrtp>,
    buf: &mut [u8],
    len: usize,
) -> Result<usize, SrtpError> {
    match srtp {
        Some(srtp) => srtp.tx.protect_rtp(buf, len),
        None => Ok(len),
    }
}

fn receive_ssrc_changed(receive: &ReceiveStats, ssrc: Ssrc) -> bool {
    receive.ssrc() != ssrc
}

fn push_event(events: &mut VecDeque<MediaEvent>, stats: &mut ConferenceStats, event: MediaEvent) {
    if events.len() >= EVENT_QUEUE {
        stats.events_dropped += 1;
        return;
    }
    events.push_back(event);
}

/// A cheap level estimate of a G.711 payload (for choosing quiet frames in the jitter buffer).
fn g711_level(codec: CodecKind, payload: &[u8]) -> AudioLevel {
    let mut pcm = [0i16; 160];
    let n = payload.len().min(pcm.len());
    match codec {
        CodecKind::Pcma => crate::g711::decode_alaw(&payload[..n], &mut pcm[..n]),
        CodecKind::Pcmu | CodecKind::G722 | CodecKind::Opus => {
            crate::g711::decode_ulaw(&payload[..n], &mut pcm[..n])
        }
    };
    AudioLevel::measure(&pcm[..n])
}

/// Adds `src` (at `src_rate`) into `dst` (at `dst_rate`). Same rate: a plain sum. Up: linear
/// interpolation. Down: the mean of each block. Only phones at different rates in one conference
/// need this, so the simple filters are enough.
fn add_converted(src: &[i16], src_rate: SampleRate, dst: &mut [i32], dst_rate: SampleRate) {
    if src_rate == dst_rate {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += i32::from(s);
        }
        return;
    }
    if dst.len() > src.len() {
        let factor = dst.len() / src.len().max(1);
        for (i, d) in dst.iter_mut().enumerate() {
            let at = i / factor;
            let frac = (i % factor) as i32;
            let a = i32::from(src.get(at).copied().unwrap_or(0));
            let b = i32::from(src.get(at + 1).copied().unwrap_or(a as i16));
            *d += a + (b - a) * frac / factor as i32;
        }
        return;
    }
    let factor = src.len() / dst.len().max(1);
    for (d, block) in dst.iter_mut().zip(src.chunks_exact(factor.max(1))) {
        let sum: i32 = block.iter().map(|&s| i32::from(s)).sum();
        *d += sum / factor as i32;
    }
}

fn saturate(value: i32) -> i16 {
    // The clamp makes the cast lossless.
    value.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// The largest datagram from a phone we unprotect (the runtime reads at most this much).
const MAX_DATAGRAM: usize = 2048;
/// An RFC 4733 packet (12 + 4 bytes) plus the SRTP tag.
const DTMF_PACKET: usize = 16 + srtp::MAX_OVERHEAD;
/// Events kept for the caller at most.
const EVENT_QUEUE: usize = 64;
/// DTMF presses queued per phone at most.
const DTMF_QUEUE: usize = 32;
/// RFC 4733 volume for generated events: −10 dBm0.
const DTMF_VOLUME: u8 = 10;
/// In-band tone amplitude per component (≈ −10 dBm0 for µ-law).
const INBAND_AMPLITUDE: f32 = 7_000.0;
/// One frame of silence at the highest rate.
static SILENCE: [i16; 960] = [0; 960];

#[cfg(test)]
mod tests;

#[cfg(test)]
mod srtp_tests;
