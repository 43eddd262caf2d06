//! The SIP stack adapter of jigasi-rs.
//!
//! This is the only crate that depends on the SIP stack (rsipstack). It owns the SIP endpoint
//! (UDP and TCP listeners on one port, optionally a TLS listener), the registration with the
//! registrar and its keep-alives (OPTIONS, CRLF or REGISTER), TLS toward the registrar and
//! `sips:` peers, and the answers to out-of-dialog requests. Decisions (when to REGISTER, what a registrar's answer means) are made by
//! the pure [`jigasi_sip_core::RegistrationPolicy`]; this crate only runs the stack and feeds the
//! policy with what happened.
//!
//! Calls are exposed at dialog level, never as SIP messages: [`SipEndpoint::incoming_calls`]
//! yields an [`IncomingCall`] per initial INVITE (already answered `100 Trying` and
//! `180 Ringing`), [`SipEndpoint::dial`] places an [`OutgoingCall`]. Each call is driven by
//! [`CallControl`] commands and reports [`CallEvent`]s; SDP travels as opaque bytes. One task
//! (the `SipTask`) owns the stack's incoming transactions and routes in-dialog requests to the
//! task of the call they belong to; nothing about a call is shared behind a lock.
//!
//! Until the app takes the incoming calls, an INVITE is answered `480 Temporarily Unavailable`
//! so a caller gets a clean failure instead of a timeout.

mod call;
mod endpoint;
mod error;
mod registration;
mod request;
mod sip_task;
mod tls;
mod udp;
mod validate;

pub use call::{
    CallControl, CallError, CallEvent, DialRequest, HangupReason, IncomingCall, ModifyMethod,
    NameAddr, OfferResponder, OutgoingCall, SipCallId, Termination,
};
pub use endpoint::{
    AccountOptions, Dialer, Registrar, SipEndpoint, SipOptions, StackTimers, Transport,
};
pub use error::{DialError, SipError};
pub use jigasi_sip_core::{
    FailureKind, KeepAliveConfig, KeepAliveMethod, RegistrationConfig, RegistrationState,
};
pub use tls::{TlsClientOptions, TlsError, TlsListen};
