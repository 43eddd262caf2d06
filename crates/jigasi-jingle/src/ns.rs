//! XML namespace names of the elements this crate reads and writes (jitsi-protocols.md §2-§6).

/// Client stanzas (RFC 6120 §4.8.3); Jitsi's presence extensions without their own namespace
/// (`features`, `audiomuted`, `stats-id`, ...) inherit it (jitsi-protocols.md §3.2).
pub const JABBER_CLIENT: &str = "jabber:client";
/// Jingle (XEP-0166), jitsi-protocols.md §4.
pub const JINGLE: &str = "urn:xmpp:jingle:1";
/// Jingle RTP sessions (XEP-0167): `description`, `payload-type`, `parameter`, `rtcp-mux`.
pub const JINGLE_RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
/// RTP header extensions (XEP-0294): `rtp-hdrext`, `extmap-allow-mixed`.
pub const JINGLE_RTP_HDREXT: &str = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0";
/// RTCP feedback (XEP-0293): `rtcp-fb`.
pub const JINGLE_RTCP_FB: &str = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0";
/// Source-specific media attributes (XEP-0339): `source`, `ssrc-group`.
pub const JINGLE_SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
/// ICE-UDP transport (XEP-0176): `transport`, `candidate`.
pub const JINGLE_ICE_UDP: &str = "urn:xmpp:jingle:transports:ice-udp:1";
/// DTLS-SRTP (XEP-0320): `fingerprint`.
pub const JINGLE_DTLS: &str = "urn:xmpp:jingle:apps:dtls:0";
/// Jingle grouping (XEP-0338): the BUNDLE `group`.
pub const JINGLE_GROUPING: &str = "urn:xmpp:jingle:apps:grouping:0";
/// Rayo (XEP-0327): `dial`, `header`, `ref`, `hangup`, `end` (jitsi-protocols.md §2.3).
pub const RAYO: &str = "urn:xmpp:rayo:1";
/// Jitsi focus: the `conference` IQ, `bridge-session`, `ice-state` (§3.1, §4.2, §4.5).
pub const FOCUS: &str = "http://jitsi.org/protocol/focus";
/// Colibri: `stats`/`stat` and the transport's `web-socket` (§2.1, §4.2).
pub const COLIBRI: &str = "http://jitsi.org/protocol/colibri";
/// Jitsi Meet: `ssrc-info`, `json-message`, `lobbyroom` (§4.2, §4.6, §6.3).
pub const JITMEET: &str = "http://jitsi.org/jitmeet";
/// Start-muted policy in a session-initiate (§4.2).
pub const JITMEET_START_MUTED: &str = "http://jitsi.org/jitmeet/start-muted";
/// The audio mute IQ (§6.1).
pub const JITMEET_AUDIO: &str = "http://jitsi.org/jitmeet/audio";
/// The video mute IQ (§6.1).
pub const JITMEET_VIDEO: &str = "http://jitsi.org/jitmeet/video";
/// The desktop-sharing mute IQ (§6.1).
pub const JITMEET_DESKTOP: &str = "http://jitsi.org/jitmeet/desktop";
/// Jigasi: its disco feature and the presence `initiator` carrying Rayo headers (§3.2).
pub const JIGASI: &str = "http://jitsi.org/protocol/jigasi";
/// The `region` presence element gst-meet sends (§7.3).
pub const JITSI_MEET: &str = "http://jitsi.org/jitsi-meet";
/// User nickname (XEP-0172).
pub const NICK: &str = "http://jabber.org/protocol/nick";
/// Entity capabilities (XEP-0115).
pub const CAPS: &str = "http://jabber.org/protocol/caps";
/// Multi-user chat join element (XEP-0045).
pub const MUC: &str = "http://jabber.org/protocol/muc";
/// Stanza error conditions (RFC 6120 §8.3.3).
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
