//! Shared value types of jigasi-rs.
//!
//! This crate owns the small types every other crate agrees on: newtype ids ([`CallId`],
//! [`Ssrc`], [`PayloadType`]), the leg a packet belongs to ([`Leg`]), [`Secret`], a wrapper
//! that keeps passwords out of logs and `Debug` output, and [`Pii`], which redacts phone numbers,
//! SIP URIs and JIDs in logs above debug level.
//!
//! It is pure: no I/O, no clock, no randomness, no dependencies. Anything with behaviour belongs in
//! the crate that owns that behaviour, not here.

mod id;
mod pii;
mod secret;

pub use id::{CallId, PayloadType, Ssrc};
pub use pii::{Pii, set_show_pii};
pub use secret::Secret;

/// Which side of the gateway something belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Leg {
    /// The conference side: XMPP, Jingle and the media path to the videobridge.
    Jitsi,
    /// The telephone side: SIP signalling and plain RTP to the phone.
    Sip,
}
