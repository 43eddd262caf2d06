//! The media leg toward the Jitsi Videobridge: ICE, DTLS-SRTP and RTP over str0m's Direct API,
//! without SDP (jitsi-protocols.md §5, str0m-multi-ssrc.md).
//!
//! One [`MediaLeg`] is one bundled audio transport. It plays either role:
//! - [`Role::Gateway`]: what jigasi-rs is toward JVB: ICE **controlled**, DTLS **client**
//!   (`setup="active"`), sends exactly one signalled SSRC, receives one SSRC per remote speaker.
//! - [`Role::Bridge`]: what the Jicofo + JVB stand-in is toward the gateway: ICE controlling, DTLS
//!   server, sends one SSRC per simulated web participant (each on its own rid, the verified
//!   str0m 0.25 workaround for several SSRCs on one mid) and drops RTP from SSRCs nobody signalled.
//!
//! The leg runs str0m in RTP mode: every received packet surfaces with its SSRC, sequence number,
//! RTP time and RFC 6464 audio level ([`LegEvent::Audio`]); reordering and loss concealment are the
//! jitter buffer's job (jigasi-media). Only what Jingle signals is mapped: Opus (PT 111 by default)
//! and `ssrc-audio-level` (id 1). The default str0m extension map is cleared on purpose: with
//! sdes:mid mapped, an unsignalled SSRC would re-key a declared stream (str0m-multi-ssrc.md).
//!
//! # Driving a leg
//! Pure and sans-IO like str0m itself: time comes in as `now`, datagrams come in and go out
//! through [`MediaLeg::handle_receive`] and [`MediaLeg::poll_output`]. **After every input, drain
//! `poll_output` until it returns [`LegOutput::Timeout`]** (str0m's rule; in RTP mode str0m keeps
//! one received packet pending otherwise).

mod leg;

pub use leg::{
    AudioPacket, Candidate, CandidateKind, IceParams, LegConfig, LegError, LegEvent, LegOutput,
    LegStats, MediaLeg, RemoteParams, Role, Transmit,
};
