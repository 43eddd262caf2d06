//! Errors that stop the gateway from starting.

/// Why the gateway could not start. Once running, failures of a part are states (see
/// [`crate::GatewayStatus`]), not errors: a lost connection is retried, never fatal.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The SIP endpoint could not start (port in use, bad account setting).
    #[error(transparent)]
    Sip(#[from] jigasi_sip::SipError),
    /// The REST API could not start (port in use).
    #[error(transparent)]
    Api(#[from] jigasi_api::ApiError),
    /// A brewery account cannot be used as configured.
    #[error("brewery account {id}: {reason}")]
    Brewery {
        /// The account id from the configuration.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
}
