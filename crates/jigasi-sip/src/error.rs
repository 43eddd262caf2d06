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
    /// The TLS listener's certificate or key, or the CA file, cannot be used.
    #[error("SIP TLS setting unusable: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The SIP stack failed in a way we did not expect.
    #[error("SIP stack error: {0}")]
    Stack(String),
}

/// Why a call could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// The request URI or From URI is not a SIP URI we can use.
    #[error("invalid {what}: {value:?}")]
    InvalidUri {
        /// Which field.
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// An extra header has a name or value that cannot go into a SIP message.
    #[error("invalid extra header {0:?}")]
    InvalidHeader(String),
    /// The destination (the registrar acting as outbound proxy) does not resolve.
    #[error("cannot resolve {0}")]
    Unresolvable(String),
    /// The connection to the destination (TLS) could not be opened or its certificate was
    /// refused.
    #[error("cannot connect to {target}: {reason}")]
    Unreachable {
        /// The address we tried.
        target: String,
        /// What went wrong.
        reason: String,
    },
    /// The endpoint is shutting down.
    #[error("the SIP endpoint has stopped")]
    Stopped,
    /// The SIP stack refused to build or send the INVITE.
    #[error("SIP stack error: {0}")]
    Stack(&'static str),
}
