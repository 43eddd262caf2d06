//! Session configuration. Plain structs with public fields and documented defaults.

use std::time::Duration;

use jigasi_types::Secret;

/// Configuration of a [`crate::ClientSession`] (RFC 6120 client-to-server stream).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The XMPP domain to log in to (`to` of the stream header), e.g. `auth.meet.example.com`.
    pub domain: String,
    /// How to authenticate.
    pub auth: Auth,
    /// The resource to request at bind; `None` lets the server assign one.
    pub resource: Option<String>,
    /// Whether and when to use STARTTLS.
    pub tls: TlsPolicy,
    /// Interval of our XEP-0199 keep-alive pings to the server; `None` disables them.
    /// Default 30 s, Jigasi's `KEEP_ALIVE_INTERVAL`.
    pub ping_interval: Option<Duration>,
    /// How long a keep-alive ping may stay unanswered before the session closes with
    /// [`crate::CloseReason::PingTimeout`]. Default 10 s.
    pub ping_timeout: Duration,
    /// Largest incoming top-level element accepted, in bytes; bigger ones close the session.
    /// Default 256 KiB, Prosody's default `c2s_stanza_size_limit`.
    pub max_stanza_bytes: usize,
    /// Deadline for the whole negotiation (TLS, SASL, bind). Default 30 s.
    pub negotiation_timeout: Duration,
}

impl ClientConfig {
    /// A config with the documented defaults: TLS required, server-assigned resource.
    pub fn new(domain: impl Into<String>, auth: Auth) -> Self {
        Self {
            domain: domain.into(),
            auth,
            resource: None,
            tls: TlsPolicy::Required,
            ping_interval: Some(DEFAULT_PING_INTERVAL),
            ping_timeout: DEFAULT_PING_TIMEOUT,
            max_stanza_bytes: DEFAULT_MAX_STANZA_BYTES,
            negotiation_timeout: DEFAULT_NEGOTIATION_TIMEOUT,
        }
    }

    /// Sets the resource to request.
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Sets the TLS policy.
    pub fn with_tls(mut self, tls: TlsPolicy) -> Self {
        self.tls = tls;
        self
    }
}

/// How a client authenticates (RFC 6120 §6).
#[derive(Debug, Clone)]
pub enum Auth {
    /// SASL ANONYMOUS (RFC 4505): the server assigns a random local part. Jigasi's per-call
    /// connections log in this way.
    Anonymous,
    /// A username (the local part, e.g. `jigasi`) and password, by SCRAM-SHA-256, SCRAM-SHA-1 or
    /// (over TLS, or with TLS explicitly disabled) PLAIN.
    Password {
        /// The SASL authentication identity: the account's local part.
        username: String,
        /// The password.
        password: Secret<String>,
    },
}

/// Whether the client uses STARTTLS (RFC 6120 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Use STARTTLS; fail if the server does not offer it.
    Required,
    /// Use STARTTLS if offered, otherwise continue in plain text (SCRAM only, no PLAIN).
    IfOffered,
    /// Never use TLS (Jigasi's `ALLOW_NON_SECURE` on loopback). PLAIN is allowed in this mode
    /// because the operator chose it explicitly.
    Disabled,
}

/// Configuration of a [`crate::ComponentSession`] (XEP-0114).
#[derive(Debug, Clone)]
pub struct ComponentConfig {
    /// The component's domain, e.g. `focus.meet.example.com`.
    pub domain: String,
    /// The shared secret configured for the component on the server.
    pub secret: Secret<String>,
    /// Where keep-alive pings go. Default: the component domain without its first label
    /// (`meet.example.com` for `focus.meet.example.com`).
    pub ping_to: String,
    /// Keep-alive ping interval; `None` disables pings. Default 30 s.
    pub ping_interval: Option<Duration>,
    /// Keep-alive ping timeout. Default 10 s.
    pub ping_timeout: Duration,
    /// Largest incoming top-level element, in bytes. Default 256 KiB.
    pub max_stanza_bytes: usize,
    /// Deadline for the handshake. Default 30 s.
    pub negotiation_timeout: Duration,
}

impl ComponentConfig {
    /// A config with the documented defaults.
    pub fn new(domain: impl Into<String>, secret: Secret<String>) -> Self {
        let domain = domain.into();
        let ping_to = domain
            .split_once('.')
            .map_or_else(|| domain.clone(), |(_, parent)| parent.to_owned());
        Self {
            domain,
            secret,
            ping_to,
            ping_interval: Some(DEFAULT_PING_INTERVAL),
            ping_timeout: DEFAULT_PING_TIMEOUT,
            max_stanza_bytes: DEFAULT_MAX_STANZA_BYTES,
            negotiation_timeout: DEFAULT_NEGOTIATION_TIMEOUT,
        }
    }
}

/// Jigasi pings every 30 s (`KEEP_ALIVE_INTERVAL=30`).
const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(10);
/// Prosody 0.12's default `c2s_stanza_size_limit`.
const DEFAULT_MAX_STANZA_BYTES: usize = 256 * 1024;
const DEFAULT_NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_pings_its_parent_domain_by_default() {
        let config = ComponentConfig::new("focus.meet.example.com", Secret::new("s".into()));
        assert_eq!(config.ping_to, "meet.example.com");
        let single = ComponentConfig::new("localhost", Secret::new("s".into()));
        assert_eq!(single.ping_to, "localhost");
    }

    #[test]
    fn client_defaults_are_safe() {
        let config = ClientConfig::new("d", Auth::Anonymous);
        assert_eq!(config.tls, TlsPolicy::Required);
        assert_eq!(config.ping_interval, Some(Duration::from_secs(30)));
        assert_eq!(config.max_stanza_bytes, 262_144);
    }
}
