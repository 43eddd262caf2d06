//! Jitsi's XMPP elements as our own types (pure).
//!
//! Owns: Jingle with every action Jicofo uses ([`jingle`]), the RTP description with ssma sources
//! ([`rtp`]), the ICE-UDP transport with DTLS fingerprint and colibri web-socket ([`ice`]), Rayo
//! ([`rayo`]), the focus conference IQ ([`focus`]), colibri stats ([`colibri`]), mute and
//! presence extensions ([`jitmeet`]), a generic stanza envelope over them ([`stanza`]), the
//! gateway's room-join presence ([`presence`]) and the answer rules of jitsi-protocols.md §4.3
//! ([`answer`]). Section numbers in the docs refer to `jitsi-protocols.md`.
//!
//! Does not own: the XMPP connection, MUC state, disco (jigasi-xmpp), or media.
//!
//! Every type reads with `parse(&Element) -> Result<Self, ParseError>` and writes with
//! `to_element(&self) -> Element`. Unknown children are kept in wire order and written back;
//! unknown attributes without namespace are kept in `extra_attrs`. No input panics.
//!
//! It is pure: no I/O, no clock, no randomness.

#[macro_use]
mod xml;

pub mod answer;
pub mod colibri;
mod error;
pub mod focus;
pub mod ice;
pub mod jingle;
pub mod jitmeet;
pub mod ns;
pub mod presence;
pub mod rayo;
pub mod rtp;
pub mod stanza;

#[cfg(test)]
mod vectors;

pub use error::ParseError;
