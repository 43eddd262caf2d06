//! SIP decisions of jigasi-rs, without I/O.
//!
//! This crate owns the *policy* side of the SIP leg: when to send a REGISTER, how to react to the
//! registrar's answer, what state the registration is in, and when to send keep-alives and what
//! their answers mean. The SIP stack itself (messages,
//! transactions, sockets) lives in the `jigasi-sip` adapter crate, which feeds outcomes in here and
//! does what the policy says.
//!
//! Everything here is synchronous and deterministic: time is passed in as `now`, nothing reads a
//! clock, nothing sleeps.
//!
//! # Driving a [`RegistrationPolicy`]
//!
//! ```
//! use std::time::{Duration, Instant};
//! use jigasi_sip_core::{AttemptOutcome, RegistrationConfig, RegistrationPolicy};
//!
//! let start = Instant::now(); // in real code: the driver's clock
//! let mut policy = RegistrationPolicy::new(RegistrationConfig::default(), start);
//! // The driver sleeps until `poll_timeout()`, then asks whether to send a REGISTER.
//! let when = policy.poll_timeout().expect("a first attempt is scheduled");
//! assert!(policy.handle_timeout(when));
//! // ... sends REGISTER, gets 200 OK with Expires: 600 ...
//! policy.handle_outcome(when, AttemptOutcome::Accepted { granted: Duration::from_secs(600) });
//! assert!(policy.state().is_registered());
//! // The refresh is due at 75 % of the granted expiry.
//! assert_eq!(policy.poll_timeout(), Some(when + Duration::from_secs(450)));
//! ```

mod keepalive;
mod registration;
pub mod room;
pub mod sdp;
pub mod validate;

pub use keepalive::{
    DEFAULT_REGISTER_INTERVAL, KeepAliveAction, KeepAliveConfig, KeepAliveMethod, KeepAlivePolicy,
    ProbeOutcome, ProbeVerdict, Unreachable,
};
pub use registration::{
    AttemptOutcome, FailureKind, RegistrationConfig, RegistrationPolicy, RegistrationState,
};
pub use validate::{CheckPolicy, DropReason, Verdict, check_message, reject_response};
