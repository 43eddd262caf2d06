//! The SIP stack adapter of jigasi-rs.
//!
//! This is the only crate that depends on the SIP stack (rsipstack). It owns the SIP endpoint
//! (UDP and TCP listeners on one port), the registration with the registrar and the answers to
//! out-of-dialog requests. Decisions (when to REGISTER, what a registrar's answer means) are made by
//! the pure [`jigasi_sip_core::RegistrationPolicy`]; this crate only runs the stack and feeds the
//! policy with what happened.
//!
//! Calls (INVITE dialogs) are added by the SIP user agent work; until then an INVITE is answered
//! `480 Temporarily Unavailable` so a caller gets a clean failure instead of a timeout.

mod endpoint;
mod error;
mod registration;

pub use endpoint::{AccountOptions, Registrar, SipEndpoint, SipOptions, Transport};
pub use error::SipError;
pub use jigasi_sip_core::{RegistrationConfig, RegistrationState};
