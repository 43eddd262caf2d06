//! The audio engine of jigasi-rs.
//!
//! It owns everything between RTP payloads and PCM for both legs of a call:
//!
//! - [`rtp`], [`rtcp`], [`stats`]: RTP/RTCP for the SIP leg (parsing, writing, sequence and
//!   timestamp unwrapping, loss, jitter and RTT counters);
//! - [`srtp`]: SDES-SRTP/SRTCP for the SIP leg (RFC 3711, the two AES-CM-128 HMAC-SHA1 suites),
//!   applied by the [`conference`] when a phone's [`PhoneConfig::srtp`] keys are set;
//! - [`codec`]: PCMU/PCMA ([`g711`], ours), G.722 and Opus behind [`AudioDecoder`] /
//!   [`AudioEncoder`], at the phone's native rate;
//! - [`jitter`]: the adaptive jitter buffer (pull model, FEC/PLC decisions, skew control);
//! - [`conference`]: per-conference decode-once and N−1 mixing, phone uplinks encoded to Opus
//!   for the bridge with their RFC 6464 [`level`];
//! - [`dtmf`] and [`tone`]: RFC 4733 telephone events and in-band DTMF;
//! - [`recording`]: the hook that sees each direction's audio per tick;
//! - [`quality`]: the E-model (ITU-T G.107) MOS estimate from loss, jitter and round-trip time.
//!
//! It deliberately does **not** own sockets, the bridge leg's ICE/DTLS-SRTP (str0m's, driven by
//! the call layer), SDP decisions (the SDES keys come in negotiated), or the clock. It is pure:
//! time is an argument (`now: Instant`, RTP time), randomness (initial sequence numbers,
//! timestamps, SSRCs, SRTP master keys) comes from the caller, and nothing blocks. A per-crate `clippy.toml` bans the clock and global RNG.
//!
//! The driving loop: feed every packet as it arrives ([`Conference::handle_phone_rtp`],
//! [`Conference::handle_bridge_packet`]), call [`Conference::tick`] every 20 ms, then send what
//! [`Conference::outputs`] returns and drain [`Conference::poll_event`]. See the
//! [`conference`] module for an example.
//!
//! Errors are typed per surface and say who is to blame ([`Blame`]); per-packet errors carry no
//! strings and never allocate. On the hot path (packet in, tick, packet out) nothing allocates
//! once each stream's buffers have grown to its packet size.

pub mod codec;
pub mod conference;
pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod level;
pub mod quality;
pub mod recording;
pub mod rtcp;
pub mod rtp;
pub mod srtp;
pub mod stats;
pub mod tone;

pub use codec::{AudioDecoder, AudioEncoder, CodecError, CodecKind, OpusEncoderConfig, SampleRate};
pub use conference::{
    BridgeFrame, BridgePacket, Conference, ConferenceConfig, ConferenceError, ConferenceStats,
    DetachedPhone, DtmfMethod, MediaEvent, MutePolicy, PhoneConfig, PhoneSrtpStats, PhoneStats,
    TickOutput,
};
pub use dtmf::{DtmfDigit, DtmfReceived, TelephoneEvent};
pub use jitter::{JitterBuffer, JitterConfig, Playout};
pub use level::AudioLevel;
pub use recording::{Direction, RecordingSink};
pub use srtp::{
    SrtpError, SrtpKeys, SrtpMasterKey, SrtpReceiver, SrtpSender, SrtpStats, SrtpSuite,
};

/// Who is to blame for an error (style-anchors.md B5, after rustls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blame {
    /// The remote side sent something malformed or not negotiated: count it, drop the packet.
    Peer,
    /// Our configuration asks for something impossible.
    Local,
    /// A bug or resource problem on our side.
    Internal,
}
