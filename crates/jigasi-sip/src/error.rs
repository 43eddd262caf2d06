//! Errors of the SIP adapter.

use std::net::SocketAddr;

/// Why the SIP endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// A listening socket could not be bound (port in use, no permission).
    #[error("cannot listen for SIP on {addr}: {source}")]
    Bind {
        /// The address we tried.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The SIP stack refused its configuration (bad URI built from the account settings).
    #[error("invalid SIP account setting {what}: {value:?}")]
    InvalidSetting {
        /// Which setting.
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// The SIP stack failed in a way we did not expect.
    #[error("SIP stack error: {0}")]
    Stack(String),
}
