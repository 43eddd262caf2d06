//! The per-call logic of jigasi-rs, pure and deterministic.
//!
//! [`ConferenceLeg`] is the conference side of one call: what Jigasi's `JvbConference` does, as a
//! sans-IO state machine. It asks the focus to start the conference (the `conference` IQ, retried
//! while `ready="false"`), joins the MUC with the gateway's presence, answers the focus's Jingle
//! `session-initiate` (only from the focus), runs the media leg to the bridge
//! ([`jigasi_bridge::MediaLeg`]), applies `source-add` / `source-remove`, follows mute requests,
//! waits for a new invite after `session-terminate`, and reports how the conference ended (kick,
//! room destroyed, wrong password, lobby, ...).
//!
//! # Driving
//! Inputs: [`ConferenceLeg::handle_online`] when the per-call XMPP connection is up,
//! [`ConferenceLeg::handle_stanza`] for every stanza it receives,
//! [`ConferenceLeg::handle_datagram`] for every UDP datagram on the media socket, and
//! [`ConferenceLeg::handle_timeout`]. After every input, drain
//! [`ConferenceLeg::poll_output`] until it returns [`ConferenceOutput::Timeout`] (or
//! [`ConferenceOutput::Idle`]): stanzas to send on the XMPP connection, datagrams to send from the
//! media socket, and events.
//!
//! Time is an input, randomness comes in through the configuration (nick, SSRC, msid), and
//! nothing here touches a socket.

mod call;
mod conference;
pub mod rayo;
mod room;

pub use call::{
    Call, CallConfig, CallError, CallEvent, CallOutput, CallQuality, DtmfToPhone, HangupCause,
    MediaSocket, RTCP_INTERVAL, ReasonProtocol, SipCommand, SipInput, WallClock,
    XMPP_RECONNECT_WINDOW,
};
pub use conference::{
    ConferenceConfig, ConferenceEvent, ConferenceLeg, ConferenceOutput, EndReason,
};
/// The quality types [`CallQuality`] is made of.
pub use jigasi_media::quality::{CodecImpairment, LegQuality, StreamQuality};
pub use room::Room;
