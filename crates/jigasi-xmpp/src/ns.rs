//! XML namespace names used on the wire.
//!
//! Stanzas built for a [`crate::ClientSession`] *and* a [`crate::ComponentSession`] use
//! [`JABBER_CLIENT`]: the component session rewrites it to [`COMPONENT_ACCEPT`] on the wire and
//! back on receipt, so the application sees one stanza namespace whatever the session kind.

/// Client stanzas (RFC 6120 §4.8.3).
pub const JABBER_CLIENT: &str = "jabber:client";
/// Component stanzas (XEP-0114 §3).
pub const COMPONENT_ACCEPT: &str = "jabber:component:accept";
/// The stream element and its `features` / `error` children (RFC 6120 §4.8.1).
pub const STREAM: &str = "http://etherx.jabber.org/streams";
/// Stream error conditions (RFC 6120 §4.9.3).
pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// STARTTLS negotiation (RFC 6120 §5).
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// SASL negotiation (RFC 6120 §6).
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Resource binding (RFC 6120 §7).
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// Legacy session establishment (RFC 3921 §3, draft-cridland-xmpp-session).
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// Stanza error conditions (RFC 6120 §8.3.3).
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// XMPP Ping (XEP-0199).
pub const PING: &str = "urn:xmpp:ping";
/// Service discovery, info (XEP-0030).
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// Entity capabilities (XEP-0115).
pub const CAPS: &str = "http://jabber.org/protocol/caps";
/// Multi-user chat, join element (XEP-0045).
pub const MUC: &str = "http://jabber.org/protocol/muc";
/// Multi-user chat, user extensions (XEP-0045 §17.2).
pub const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// Colibri statistics carried in brewery presence (jitsi-xmpp-extensions `ColibriStatsExtension`).
pub const COLIBRI: &str = "http://jitsi.org/protocol/colibri";
/// The disco feature by which Jicofo recognises a Jigasi.
pub const JIGASI: &str = "http://jitsi.org/protocol/jigasi";
/// Jitsi Meet extensions (`lobbyroom` in a join error).
pub const JITMEET: &str = "http://jitsi.org/jitmeet";
/// The XML namespace bound to the `xml:` prefix (`xml:lang`).
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
