//! Why a session ended, and why an application command was refused.
//!
//! Reasons are grouped by who is to blame (rustls style): the server broke the protocol
//! ([`PeerMisbehaved`]), the server lacks something we need ([`PeerIncompatible`]), the server
//! refused us ([`CloseReason::AuthFailed`], [`CloseReason::StreamError`], ...), or the
//! application asked for it ([`CloseReason::Requested`]).

use std::fmt;

use minidom::Element;

use crate::ns;
use crate::xml::XmlWriteError;

/// Why a session is over. Carried by [`crate::XmppEvent::Closed`], which is always the last event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// The application called `close` and the stream shut down.
    #[error("closed on request")]
    Requested,
    /// The server ended the stream (`</stream:stream>`) without a stream error.
    #[error("the server closed the stream")]
    ClosedByPeer,
    /// The transport (TCP/TLS) closed before the stream did.
    #[error("the connection was closed")]
    TransportClosed,
    /// The server sent a stream error (RFC 6120 §4.9).
    #[error("stream error: {0}")]
    StreamError(StreamError),
    /// SASL authentication failed (RFC 6120 §6.5).
    #[error("authentication failed: {0}")]
    AuthFailed(SaslFailure),
    /// The server refused to bind a resource (RFC 6120 §7.6.2).
    #[error("resource binding refused: {0}")]
    BindRejected(StanzaError),
    /// Our XEP-0199 keep-alive ping got no answer within the ping timeout.
    #[error("keep-alive ping timed out")]
    PingTimeout,
    /// Stream negotiation (TLS, SASL, bind or the component handshake) did not finish in time.
    #[error("stream negotiation timed out")]
    NegotiationTimeout,
    /// The server broke the protocol.
    #[error("server misbehaved: {0}")]
    PeerMisbehaved(PeerMisbehaved),
    /// The server lacks something this configuration needs.
    #[error("server incompatible: {0}")]
    PeerIncompatible(PeerIncompatible),
}

/// Ways in which the server broke the protocol. Each closes the stream with a stream error of
/// our own where one applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerMisbehaved {
    /// Bytes that are not well-formed (namespaced) XML.
    #[error("malformed XML: {0}")]
    MalformedXml(String),
    /// The root element is not `<stream:stream>`.
    #[error("the root element is not a stream")]
    NotAStream,
    /// One element exceeded `max_stanza_bytes`.
    #[error("element larger than {limit} bytes")]
    StanzaTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// One element nested too deeply.
    #[error("element nested too deeply")]
    NestingTooDeep,
    /// Text outside any element after the stream header.
    #[error("text at stream level")]
    TextAtStreamLevel,
    /// An element that is not allowed in the current negotiation step.
    #[error("unexpected element {name} in {namespace} while {state}")]
    UnexpectedElement {
        /// Local name.
        name: String,
        /// Namespace.
        namespace: String,
        /// What the session was doing.
        state: &'static str,
    },
    /// The stream header lacks an `id`, which the component handshake needs.
    #[error("stream header without id")]
    MissingStreamId,
    /// A SASL challenge or success payload that cannot be decoded or is inconsistent.
    #[error("bad SASL exchange: {0}")]
    BadSasl(&'static str),
    /// The server's SCRAM signature did not verify: it does not know our password.
    #[error("SCRAM server signature mismatch")]
    ServerSignatureMismatch,
    /// The bind result carried no usable full JID.
    #[error("bind result without a full JID")]
    BadBindResult,
}

/// Things the server lacks for this configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerIncompatible {
    /// TLS is required by config but the server offered no STARTTLS.
    #[error("the server offers no STARTTLS")]
    TlsUnavailable,
    /// The server requires STARTTLS but TLS is disabled by config.
    #[error("the server requires TLS but it is disabled")]
    TlsRequiredByServer,
    /// None of the offered SASL mechanisms is allowed by config.
    #[error("no usable SASL mechanism among {offered:?}")]
    NoUsableMechanism {
        /// What the server offered.
        offered: Vec<String>,
    },
    /// The post-authentication features lack resource binding.
    #[error("the server offers no resource binding")]
    BindNotOffered,
    /// The stream header carries a version other than 1.x.
    #[error("unsupported stream version {0:?}")]
    UnsupportedVersion(Option<String>),
}

/// A SASL `<failure/>` (RFC 6120 §6.5): the condition element name and the optional text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslFailure {
    /// The condition, e.g. `not-authorized`, `mechanism-too-weak`; `undefined-condition` if none.
    pub condition: String,
    /// Human-readable text from the server, if any.
    pub text: Option<String>,
}

impl SaslFailure {
    /// Reads a `<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>` element.
    pub fn from_element(failure: &Element) -> Self {
        let condition = failure
            .children()
            .find(|c| c.ns() == ns::SASL && c.name() != "text")
            .map_or_else(|| "undefined-condition".to_owned(), |c| c.name().to_owned());
        let text = failure.get_child("text", ns::SASL).map(Element::text);
        Self { condition, text }
    }
}

impl fmt::Display for SaslFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.condition)?;
        if let Some(text) = &self.text {
            write!(f, " ({text})")?;
        }
        Ok(())
    }
}

/// A stream error (RFC 6120 §4.9): the condition element name and the optional text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// The condition, e.g. `conflict`, `not-authorized`, `system-shutdown`.
    pub condition: String,
    /// Human-readable text, if any.
    pub text: Option<String>,
}

impl StreamError {
    /// Reads a `<stream:error>` element.
    pub fn from_element(error: &Element) -> Self {
        let condition = error
            .children()
            .find(|c| c.ns() == ns::STREAM_ERRORS && c.name() != "text")
            .map_or_else(|| "undefined-condition".to_owned(), |c| c.name().to_owned());
        let text = error
            .get_child("text", ns::STREAM_ERRORS)
            .map(Element::text);
        Self { condition, text }
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.condition)?;
        if let Some(text) = &self.text {
            write!(f, " ({text})")?;
        }
        Ok(())
    }
}

/// A stanza error (RFC 6120 §8.3): type, defined condition and optional text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    /// The `type` attribute: `auth`, `cancel`, `continue`, `modify` or `wait`.
    pub error_type: String,
    /// The defined condition, e.g. `service-unavailable`, `not-authorized`, `conflict`.
    pub condition: String,
    /// Human-readable text, if any.
    pub text: Option<String>,
}

impl StanzaError {
    /// Reads the `<error/>` child of a stanza of type `error`; `None` if there is no such child.
    pub fn from_stanza(stanza: &Element) -> Option<Self> {
        let error = stanza.get_child("error", ns::JABBER_CLIENT)?;
        let condition = error
            .children()
            .find(|c| c.ns() == ns::STANZAS && c.name() != "text")
            .map_or_else(|| "undefined-condition".to_owned(), |c| c.name().to_owned());
        Some(Self {
            error_type: error.attr("type").unwrap_or("cancel").to_owned(),
            condition,
            text: error.get_child("text", ns::STANZAS).map(Element::text),
        })
    }
}

impl fmt::Display for StanzaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.condition, self.error_type)?;
        if let Some(text) = &self.text {
            write!(f, ": {text}")?;
        }
        Ok(())
    }
}

/// Why an application command (`send_stanza`, `send_iq`) was refused. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The session is not online (still negotiating, closing or closed).
    #[error("the session is not online")]
    NotOnline,
    /// The element is not a `message`, `presence` or `iq` in `jabber:client`.
    #[error("not a stanza: {name} in {namespace}")]
    NotAStanza {
        /// Local name.
        name: String,
        /// Namespace.
        namespace: String,
    },
    /// `send_iq` needs an `iq` of type `get` or `set`.
    #[error("send_iq needs an iq of type get or set")]
    NotAnIqRequest,
    /// The element cannot be written as XML.
    #[error(transparent)]
    InvalidXml(#[from] XmlWriteError),
}
