//! The one table of known Jigasi configuration keys and what jigasi-rs does with each.
//!
//! Classification is data: [`classify`] looks a key up here, and the load report is built from
//! the answer. A key missing from the table is unknown (reported as unused, possibly a typo).

/// Where a key lives; `name` in [`KeySpec`] is relative to the scope's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scope {
    /// A full property name outside the other scopes.
    Global,
    /// `org.jitsi.jigasi.<name>` (not `xmpp.acc.`).
    Jigasi,
    /// `org.jitsi.jigasi.xmpp.acc.<name>`.
    CallXmpp,
    /// `net.java.sip.communicator.impl.protocol.sip.<accId>.<name>`.
    Sip,
    /// `net.java.sip.communicator.impl.protocol.jabber.<id>.<name>`.
    Jabber,
    /// A dotted path in the HOCON file.
    Hocon,
}

/// How a key name is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Name {
    /// The whole name.
    Exact(&'static str),
    /// Any name starting with this.
    Prefix(&'static str),
}

/// What jigasi-rs does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Read into the typed model.
    Used,
    /// A Jigasi key with no effect in jigasi-rs (the reason says why); reported as unused.
    Ignored(&'static str),
    /// A Jigasi feature jigasi-rs does not implement yet; a warning when the condition holds.
    NotYet(When, &'static str),
}

/// When a [`Status::NotYet`] key deserves a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// Whenever it is set.
    Set,
    /// When its value is `true`.
    True,
    /// When `org.jitsi.jigasi.ENABLE_TRANSCRIPTION=true` (else the key is unused, as in Jigasi).
    TranscriptionEnabled,
}

/// One table row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeySpec {
    /// The scope.
    pub(crate) scope: Scope,
    /// The name within the scope.
    pub(crate) name: Name,
    /// What we do with it.
    pub(crate) status: Status,
}

/// Finds the table row for `name` in `scope` (exact names before prefixes).
pub(crate) fn classify(scope: Scope, name: &str) -> Option<&'static KeySpec> {
    KEYS.iter()
        .filter(|k| k.scope == scope)
        .find(|k| matches!(k.name, Name::Exact(n) if n == name))
        .or_else(|| {
            KEYS.iter()
                .filter(|k| k.scope == scope)
                .find(|k| matches!(k.name, Name::Prefix(p) if name.starts_with(p)))
        })
}

/// Prefix of the SIP account keys.
pub(crate) const SIP_PREFIX: &str = "net.java.sip.communicator.impl.protocol.sip.";
/// Prefix of the XMPP (jabber) account keys.
pub(crate) const JABBER_PREFIX: &str = "net.java.sip.communicator.impl.protocol.jabber.";
/// Prefix of the per-call XMPP overrides.
pub(crate) const CALL_XMPP_PREFIX: &str = "org.jitsi.jigasi.xmpp.acc.";
/// Prefix of the core keys.
pub(crate) const JIGASI_PREFIX: &str = "org.jitsi.jigasi.";

const fn used(scope: Scope, name: &'static str) -> KeySpec {
    KeySpec {
        scope,
        name: Name::Exact(name),
        status: Status::Used,
    }
}

const fn used_prefix(scope: Scope, prefix: &'static str) -> KeySpec {
    KeySpec {
        scope,
        name: Name::Prefix(prefix),
        status: Status::Used,
    }
}

const fn ignored(scope: Scope, name: Name, why: &'static str) -> KeySpec {
    KeySpec {
        scope,
        name,
        status: Status::Ignored(why),
    }
}

const fn not_yet(scope: Scope, name: Name, when: When, what: &'static str) -> KeySpec {
    KeySpec {
        scope,
        name,
        status: Status::NotYet(when, what),
    }
}

use Name::{Exact, Prefix};
use Scope::{CallXmpp, Global, Hocon, Jabber, Jigasi, Sip};

const AUDIO_ONLY: &str = "jigasi-rs is audio-only and never uses this desktop-client feature";
const JVB_CODECS: &str = "the conference leg always uses opus, as Jicofo offers it";

/// The table. Grouped by scope; the order inside a scope matters only for prefixes.
pub(crate) static KEYS: &[KeySpec] = &[
    // Global jitsi-desktop / libjitsi keys (behaviour doc §2.6).
    used(Global, "net.java.sip.communicator.SIP_PREFERRED_CLEAR_PORT"),
    used(
        Global,
        "net.java.sip.communicator.SIP_PREFERRED_SECURE_PORT",
    ),
    used(
        Global,
        "net.java.sip.communicator.impl.protocol.sip.REGISTRATION_EXPIRATION",
    ),
    used(
        Global,
        "net.java.sip.communicator.impl.protocol.sip.DEFAULT_TRANSPORT",
    ),
    used(
        Global,
        "net.java.sip.communicator.impl.protocol.HOLE_PUNCH_PKT_COUNT",
    ),
    used(
        Global,
        "net.java.sip.communicator.impl.neomedia.codec.audio.opus.encoder.COMPLEXITY",
    ),
    used(
        Global,
        "net.java.sip.communicator.service.gui.ALWAYS_TRUST_MODE_ENABLED",
    ),
    ignored(
        Global,
        Exact("net.java.sip.communicator.impl.protocol.SingleCallInProgressPolicy.enabled"),
        "jigasi-rs never puts calls on hold",
    ),
    ignored(
        Global,
        Exact("net.java.sip.communicator.packetlogging.PACKET_LOGGING_ENABLED"),
        "jigasi-rs has no packet logger; use tshark",
    ),
    ignored(
        Global,
        Exact(
            "net.java.sip.communicator.impl.neomedia.audioSystem.audiosilence.captureDevice_list",
        ),
        "jigasi-rs has no audio devices",
    ),
    ignored(
        Global,
        Exact("net.java.sip.communicator.impl.protocol.jabber.FORCE_PRESENCE_ON_LEAVE"),
        "jigasi-rs always sends unavailable presence on leave",
    ),
    ignored(
        Global,
        Exact("net.java.sip.communicator.impl.protocol.sip.RETRANSMITS_RINGING_INTERVAL"),
        "180 Ringing retransmission follows the SIP stack's timers",
    ),
    ignored(
        Global,
        Exact("net.java.sip.communicator.service.media.DISABLE_VIDEO_SUPPORT"),
        AUDIO_ONLY,
    ),
    ignored(
        Global,
        Prefix("org.jitsi.ddclient."),
        "nothing in Jigasi reads these either",
    ),
    // org.jitsi.jigasi.* (behaviour doc §2.1).
    used(Jigasi, "ENABLE_SIP"),
    not_yet(
        Jigasi,
        Exact("ENABLE_TRANSCRIPTION"),
        When::True,
        "transcription",
    ),
    used(Jigasi, "ENABLE_SIP_STARTMUTED"),
    not_yet(Jigasi, Exact("ENABLE_SIP_VISITORS"), When::True, "visitors"),
    used(Jigasi, "DEFAULT_JVB_ROOM_NAME"),
    used(Jigasi, "MUC_SERVICE_ADDRESS"),
    not_yet(
        Jigasi,
        Exact("BOSH_HOST_OVERRIDE"),
        When::Set,
        "BOSH connections",
    ),
    used(Jigasi, "JVB_INVITE_TIMEOUT"),
    used(Jigasi, "DEFAULT_CALL_EMPTY_TIMEOUT"),
    used(Jigasi, "MUC_JOIN_TIMEOUT"),
    used(Jigasi, "ALLOWED_JID"),
    used(Jigasi, "FOCUS_RESOURCE"),
    used(Jigasi, "TRUSTED_DOMAINS"),
    used(Jigasi, "ALLOW_ONLY_JIGASIS_IN_ROOM"),
    used(Jigasi, "USE_SIP_USER_AS_XMPP_RESOURCE"),
    used(Jigasi, "NOTIFY_MAX_OCCUPANTS"),
    used(Jigasi, "LOCAL_REGION"),
    used(Jigasi, "STATS_ID"),
    used(Jigasi, "DISABLE_ICE"),
    used(Jigasi, "SIP_MEDIA_DROPPED_THRESHOLD_MS"),
    used(Jigasi, "HANGUP_SIP_ON_MEDIA_DROPPED"),
    used(Jigasi, "CONFERENCES_THRESHOLD"),
    used(Jigasi, "ENABLE_REST_SHUTDOWN"),
    used(Jigasi, "HEALTH_CHECK_SIP_URI"),
    used(Jigasi, "HEALTH_CHECK_INTERVAL"),
    used(Jigasi, "HEALTH_CHECK_TIMEOUT"),
    used(Jigasi, "HEALTH_CHECK_DEBUG_ENABLED"),
    used(Jigasi, "rs.GRACEFUL_SHUTDOWN_TIMEOUT"),
    not_yet(
        Jigasi,
        Prefix("VISITOR_QUEUE_SERVICE"),
        When::Set,
        "the visitors queue",
    ),
    ignored(
        Jigasi,
        Exact("BREWERY_ENABLED"),
        "Jigasi documents it but never reads it",
    ),
    used(Jigasi, "rest.jetty.port"),
    used(Jigasi, "rest.jetty.host"),
    not_yet(Jigasi, Prefix("rest.jetty."), When::Set, "REST over TLS"),
    not_yet(
        Jigasi,
        Prefix("transcription."),
        When::TranscriptionEnabled,
        "transcription",
    ),
    // org.jitsi.jigasi.xmpp.acc.* (behaviour doc §2.3).
    used(CallXmpp, "IS_SERVER_OVERRIDDEN"),
    used(CallXmpp, "SERVER_ADDRESS"),
    used(CallXmpp, "SERVER_PORT"),
    used(CallXmpp, "USER_ID"),
    used(CallXmpp, "PASS"),
    used(CallXmpp, "ANONYMOUS_AUTH"),
    used(CallXmpp, "ALLOW_NON_SECURE"),
    used(CallXmpp, "UNIQUE_USER_ID"),
    used(CallXmpp, "DOMAIN_BASE"),
    used(CallXmpp, "KEEP_ALIVE_METHOD"),
    used(CallXmpp, "KEEP_ALIVE_INTERVAL"),
    not_yet(
        CallXmpp,
        Exact("BOSH_URL_PATTERN"),
        When::Set,
        "BOSH connections",
    ),
    not_yet(
        CallXmpp,
        Exact("USE_TRANSLATOR_IN_CONFERENCE"),
        When::True,
        "translator mode",
    ),
    ignored(CallXmpp, Exact("VIDEO_CALLING_DISABLED"), AUDIO_ONLY),
    ignored(CallXmpp, Exact("JINGLE_NODES_ENABLED"), AUDIO_ONLY),
    ignored(CallXmpp, Exact("AUTO_DISCOVER_STUN"), AUDIO_ONLY),
    ignored(CallXmpp, Exact("USE_DEFAULT_STUN_SERVER"), AUDIO_ONLY),
    ignored(CallXmpp, Exact("IM_DISABLED"), AUDIO_ONLY),
    ignored(CallXmpp, Exact("SERVER_STORED_INFO_DISABLED"), AUDIO_ONLY),
    ignored(CallXmpp, Exact("IS_FILE_TRANSFER_DISABLED"), AUDIO_ONLY),
    ignored(CallXmpp, Exact("OVERRIDE_ENCODINGS"), JVB_CODECS),
    ignored(CallXmpp, Prefix("Encodings."), JVB_CODECS),
    // SIP account (behaviour doc §2.4).
    used(Sip, "ACCOUNT_UID"),
    used(Sip, "USER_ID"),
    used(Sip, "PASSWORD"),
    used(Sip, "AUTHORIZATION_NAME"),
    used(Sip, "DISPLAY_NAME"),
    used(Sip, "SERVER_ADDRESS"),
    used(Sip, "SERVER_PORT"),
    used(Sip, "SERVER_TRANSPORT"),
    used(Sip, "PREFERRED_TRANSPORT"),
    used(Sip, "PROXY_ADDRESS"),
    used(Sip, "PROXY_PORT"),
    used(Sip, "PROXY_AUTO_CONFIG"),
    used(Sip, "IS_ACCOUNT_DISABLED"),
    used(Sip, "KEEP_ALIVE_METHOD"),
    used(Sip, "KEEP_ALIVE_INTERVAL"),
    used(Sip, "OVERRIDE_ENCODINGS"),
    used_prefix(Sip, "Encodings."),
    used(Sip, "DTMF_METHOD"),
    used(Sip, "DTMF_MINIMAL_TONE_DURATION"),
    used(Sip, "OUTBOUND_PREFIX"),
    used(Sip, "JITSI_MEET_ROOM_HEADER_NAME"),
    used(Sip, "JITSI_MEET_ROOM_PASS_HEADER_NAME"),
    used(Sip, "JITSI_MEET_DOMAIN_BASE_HEADER_NAME"),
    used(Sip, "JITSI_MEET_DOMAIN_TENANT_HEADER_NAME"),
    used(Sip, "JITSI_AUTH_TOKEN_HEADER_NAME"),
    used(Sip, "JITSI_AUTH_USER_ID_HEADER_NAME"),
    used(Sip, "JITSI_MEET_VISITOR_HEADER_NAME"),
    used(Sip, "JITSI_MEET_ANSWER_EMPTY_INFO"),
    used(Sip, "HEARTBEAT_SECONDS"),
    used(Sip, "DOMAIN_BASE"),
    used(Sip, "MUC_DOMAIN_PREFIX"),
    used(Sip, "PREVENT_AUTH_LOGIN"),
    used(Sip, "DEFAULT_ENCRYPTION"),
    used(Sip, "SAVP_OPTION"),
    used_prefix(Sip, "ENCRYPTION_PROTOCOL."),
    used_prefix(Sip, "ENCRYPTION_PROTOCOL_STATUS."),
    used(Sip, "SDES_CIPHER_SUITES"),
    not_yet(
        Sip,
        Exact("USE_TRANSLATOR_IN_CONFERENCE"),
        When::True,
        "translator mode",
    ),
    not_yet(
        Sip,
        Exact("CLIENT_TLS_CERTIFICATE"),
        When::Set,
        "SIP TLS client certificates",
    ),
    ignored(Sip, Exact("PROTOCOL_NAME"), "always SIP"),
    ignored(
        Sip,
        Exact("VOICEMAIL_ENABLED"),
        "jigasi-rs never subscribes to voicemail",
    ),
    ignored(
        Sip,
        Exact("DEFAULT_SIPZRTP_ATTRIBUTE"),
        "jigasi-rs offers no ZRTP",
    ),
    ignored(
        Sip,
        Exact("BOSH_URL_PATTERN"),
        "Jigasi does not read it on the SIP account either (use org.jitsi.jigasi.xmpp.acc.BOSH_URL_PATTERN)",
    ),
    // XMPP accounts (behaviour doc §2.5).
    used(Jabber, "ACCOUNT_UID"),
    used(Jabber, "USER_ID"),
    used(Jabber, "PASSWORD"),
    used(Jabber, "IS_SERVER_OVERRIDDEN"),
    used(Jabber, "SERVER_ADDRESS"),
    used(Jabber, "SERVER_PORT"),
    used(Jabber, "ALLOW_NON_SECURE"),
    used(Jabber, "DOMAIN_BASE"),
    used(Jabber, "RESOURCE"),
    used(Jabber, "AUTO_GENERATE_RESOURCE"),
    used(Jabber, "KEEP_ALIVE_METHOD"),
    used(Jabber, "KEEP_ALIVE_INTERVAL"),
    used(Jabber, "MUC_DOMAIN_PREFIX"),
    used(Jabber, "BREWERY"),
    used(Jabber, "IS_ACCOUNT_DISABLED"),
    not_yet(Jabber, Exact("BOSH_URL"), When::Set, "BOSH connections"),
    not_yet(
        Jabber,
        Exact("BOSH_URL_PATTERN"),
        When::Set,
        "BOSH connections",
    ),
    ignored(
        Jabber,
        Exact("RESOURCE_PRIORITY"),
        "presence priority is fixed",
    ),
    ignored(Jabber, Exact("PROTOCOL"), "always Jabber"),
    ignored(Jabber, Exact("PROTOCOL_NAME"), "always Jabber"),
    ignored(Jabber, Exact("CALLING_DISABLED"), AUDIO_ONLY),
    ignored(Jabber, Exact("JINGLE_NODES_ENABLED"), AUDIO_ONLY),
    ignored(Jabber, Exact("AUTO_DISCOVER_JINGLE_NODES"), AUDIO_ONLY),
    ignored(Jabber, Exact("IS_CARBON_DISABLED"), AUDIO_ONLY),
    ignored(Jabber, Exact("DEFAULT_ENCRYPTION"), AUDIO_ONLY),
    ignored(Jabber, Exact("IS_USE_ICE"), AUDIO_ONLY),
    ignored(Jabber, Exact("IS_PREFERRED_PROTOCOL"), AUDIO_ONLY),
    ignored(Jabber, Exact("IS_USE_UPNP"), AUDIO_ONLY),
    ignored(Jabber, Exact("IM_DISABLED"), AUDIO_ONLY),
    ignored(Jabber, Exact("SERVER_STORED_INFO_DISABLED"), AUDIO_ONLY),
    ignored(Jabber, Exact("IS_FILE_TRANSFER_DISABLED"), AUDIO_ONLY),
    ignored(Jabber, Exact("USE_DEFAULT_STUN_SERVER"), AUDIO_ONLY),
    ignored(Jabber, Exact("VIDEO_CALLING_DISABLED"), AUDIO_ONLY),
    ignored(Jabber, Exact("OVERRIDE_ENCODINGS"), AUDIO_ONLY),
    ignored(Jabber, Prefix("Encodings."), AUDIO_ONLY),
    ignored(Jabber, Prefix("ENCRYPTION_PROTOCOL"), AUDIO_ONLY),
    ignored(Jabber, Prefix("CallStats."), "callstats.io is gone"),
    // HOCON (jigasi.conf).
    used(Hocon, "org.jitsi.jigasi.rest.host"),
    used(Hocon, "org.jitsi.jigasi.rest.port"),
    not_yet(
        Hocon,
        Prefix("org.jitsi.jigasi.rest.key-store"),
        When::Set,
        "REST over TLS",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_win_over_prefixes() {
        let spec = classify(Jigasi, "rest.jetty.port").map(|k| k.status);
        assert_eq!(spec, Some(Status::Used));
        let spec = classify(Jigasi, "rest.jetty.tls.port").map(|k| k.status);
        assert_eq!(spec, Some(Status::NotYet(When::Set, "REST over TLS")));
    }

    #[test]
    fn scopes_do_not_leak() {
        assert!(classify(Sip, "BREWERY").is_none());
        assert_eq!(
            classify(Jabber, "BREWERY").map(|k| k.status),
            Some(Status::Used)
        );
        assert!(matches!(
            classify(Sip, "ENCRYPTION_PROTOCOL_STATUS.SDES").map(|k| k.name),
            Some(Name::Prefix("ENCRYPTION_PROTOCOL_STATUS."))
        ));
        assert!(classify(Global, "no.such.key").is_none());
    }

    #[test]
    fn no_exact_name_is_listed_twice() {
        for (i, a) in KEYS.iter().enumerate() {
            for b in &KEYS[i + 1..] {
                assert!(
                    !(a.scope == b.scope && a.name == b.name),
                    "duplicate row {:?} {:?}",
                    a.scope,
                    a.name
                );
            }
        }
    }
}
