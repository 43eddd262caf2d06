//! A sans-IO XMPP stream for jigasi-rs: client (RFC 6120) and component (XEP-0114) sessions,
//! plus MUC, brewery and disco helpers.
//!
//! # What this crate owns
//! The XML stream (an incremental, size-bounded parser over `rxml`), stream negotiation
//! (STARTTLS, SASL SCRAM-SHA-256 / SCRAM-SHA-1 / PLAIN / ANONYMOUS, resource binding), the
//! component handshake, IQ id and deadline tracking, answering XEP-0199 pings, keep-alive
//! pings, and builders/classifiers for the stanzas Jigasi exchanges ([`muc`], [`brewery`],
//! [`disco`]). It owns no sockets, no TLS, no clock and no global randomness: bytes, time and
//! an RNG seed come in as arguments. `jigasi-xmpp-io` is the tokio driver.
//!
//! # Driving a session (the polling rule)
//! A session changes only in its input methods (`handle_input`, `handle_tls_established`,
//! `handle_timeout`, `handle_transport_closed`) and commands (`send_stanza`, `send_iq`,
//! `close`). **After every one of them, drain all three outputs**: write every
//! `poll_transmit()` to the transport in order, handle every `poll_event()`, then sleep until
//! `poll_timeout()` (or the next input) and call `handle_timeout`. Outputs queue up until
//! drained and are never lost or reordered, but a driver that does not drain will not write
//! what the session asked for (a pong, a keep-alive) in time.
//!
//! ```no_run
//! # use std::time::{Duration, Instant};
//! # use jigasi_xmpp::{Auth, ClientConfig, ClientSession, TlsPolicy, XmppEvent};
//! # fn read_socket() -> Vec<u8> { Vec::new() }
//! # fn write_socket(_: &[u8]) {}
//! let config = ClientConfig::new("meet.example.com", Auth::Anonymous).with_tls(TlsPolicy::Disabled);
//! let mut session = ClientSession::new(config, Instant::now(), 42);
//! loop {
//!     while let Some(bytes) = session.poll_transmit() {
//!         write_socket(&bytes);
//!     }
//!     while let Some(event) = session.poll_event() {
//!         match event {
//!             XmppEvent::Closed { reason } => return println!("closed: {reason}"),
//!             other => println!("{other:?}"),
//!         }
//!     }
//!     // Wait for bytes or until `session.poll_timeout()`, then feed exactly one input.
//!     let bytes = read_socket();
//!     session.handle_input(Instant::now(), &bytes);
//! }
//! ```
//!
//! # Failure
//! Nothing a server sends makes the session panic. Malformed XML, oversized or too deeply
//! nested elements, unexpected elements, stream errors and SASL failures all end the session
//! with one [`XmppEvent::Closed`] carrying a typed [`CloseReason`]. Application misuse returns
//! a [`SendError`].

mod auth;
pub mod brewery;
pub mod brewery_member;
mod client;
mod component;
mod config;
mod core;
pub mod disco;
mod error;
pub mod muc;
pub mod ns;
pub mod stanza;
mod xml;

pub use client::ClientSession;
pub use component::{ComponentSession, handshake_digest};
pub use config::{Auth, ClientConfig, ComponentConfig, TlsPolicy};
pub use core::{IqId, XmppEvent};
pub use error::{
    CloseReason, PeerIncompatible, PeerMisbehaved, SaslFailure, SendError, StanzaError, StreamError,
};
pub use xml::{XmlWriteError, to_xml_string};

pub use jid;
pub use minidom;

#[cfg(test)]
mod tests;
