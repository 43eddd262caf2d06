//! Our own TOML format (`--config FILE`), a serde model whose sections mirror [`Config`].
//!
//! Every table rejects unknown keys. Durations carry their unit in the key name (`_ms`, `_secs`),
//! and `0` means "off" where Jigasi uses `-1`. Secrets are given inline (`password = "..."`) or
//! as `password_file = "..."` (relative to the TOML file; one trailing newline is dropped).
//! `config/jigasi-rs.example.toml` lists every key with its default and its Jigasi property.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jigasi_types::Secret;
use serde::{Deserialize, Serialize};

use crate::cli::CliArgs;
use crate::error::ConfigError;
use crate::model::{
    BreweryAccount, CallXmppConfig, Config, DtmfMethod, Encoding, EncryptionProtocol, HeaderNames,
    HealthCheckConfig, HostPort, JigasiConfig, KeepAlive, KeepAliveMethod, LoggingConfig,
    MediaConfig, RestConfig, SavpOption, SipAccount, SipStackConfig, SrtpConfig, TlsConfig,
    Transport, default_muc_prefixes,
};
use crate::{LoadReport, Loaded};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[sip]`: the SIP account; absent = no SIP gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip: Option<SipSection>,
    /// `[sip_stack]`.
    #[serde(default)]
    pub sip_stack: SipStackSection,
    /// `[[brewery]]`: control XMPP accounts.
    #[serde(default, rename = "brewery", skip_serializing_if = "Vec::is_empty")]
    pub breweries: Vec<BrewerySection>,
    /// `[call_xmpp]`.
    #[serde(default)]
    pub call_xmpp: CallXmppSection,
    /// `[jigasi]`.
    #[serde(default)]
    pub jigasi: JigasiSection,
    /// `[media]`.
    #[serde(default)]
    pub media: MediaSection,
    /// `[rest]`.
    #[serde(default)]
    pub rest: RestSection,
    /// `[tls]`.
    #[serde(default)]
    pub tls: TlsSection,
    /// `[logging]`.
    #[serde(default)]
    pub logging: LoggingSection,
}

/// `[sip]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSection {
    /// Account id (only used in logs), default `acc1`.
    #[serde(default = "default_account_id")]
    pub id: String,
    /// `ACCOUNT_UID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_uid: Option<String>,
    /// User part of `USER_ID`.
    pub user: String,
    /// Domain of `USER_ID` (empty for registrar-less).
    #[serde(default)]
    pub domain: String,
    /// `PASSWORD` (plain here, not base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// File holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// `AUTHORIZATION_NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_name: Option<String>,
    /// `DISPLAY_NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `SERVER_ADDRESS:SERVER_PORT`; default: the domain with the transport's default port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrar: Option<String>,
    /// No REGISTER at all (Jigasi: neither `SERVER_ADDRESS` nor a domain in `USER_ID`).
    #[serde(default)]
    pub registrarless: bool,
    /// `PREFERRED_TRANSPORT`.
    #[serde(default)]
    pub transport: Transport,
    /// `PROXY_ADDRESS:PROXY_PORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// `PROXY_AUTO_CONFIG`.
    #[serde(default)]
    pub proxy_auto_config: bool,
    /// `KEEP_ALIVE_METHOD`.
    #[serde(default = "default_keep_alive_method")]
    pub keep_alive_method: KeepAliveMethod,
    /// `KEEP_ALIVE_INTERVAL` in seconds, 0 = off.
    #[serde(default)]
    pub keep_alive_interval_secs: u64,
    /// `Encodings.*` (with `OVERRIDE_ENCODINGS=true`); default: Jigasi's sample list.
    #[serde(default = "default_encodings")]
    pub encodings: Vec<EncodingEntry>,
    /// `DTMF_METHOD`.
    #[serde(default)]
    pub dtmf_method: DtmfMethod,
    /// `DTMF_MINIMAL_TONE_DURATION`.
    #[serde(default = "default_dtmf_ms")]
    pub dtmf_minimal_tone_duration_ms: u64,
    /// `OUTBOUND_PREFIX`.
    #[serde(default)]
    pub outbound_prefix: String,
    /// `JITSI_MEET_ANSWER_EMPTY_INFO`.
    #[serde(default)]
    pub answer_empty_info: bool,
    /// `HEARTBEAT_SECONDS`, 0 = off.
    #[serde(default)]
    pub heartbeat_secs: u64,
    /// `DOMAIN_BASE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_base: Option<String>,
    /// `MUC_DOMAIN_PREFIX`.
    #[serde(default = "default_muc_prefixes")]
    pub muc_domain_prefixes: Vec<String>,
    /// `PREVENT_AUTH_LOGIN`.
    #[serde(default)]
    pub prevent_auth_login: bool,
    /// `USE_TRANSLATOR_IN_CONFERENCE` (not implemented yet).
    #[serde(default)]
    pub use_translator: bool,
    /// `[sip.headers]`.
    #[serde(default)]
    pub headers: HeadersSection,
    /// `[sip.srtp]`.
    #[serde(default)]
    pub srtp: SrtpSection,
}

/// One codec entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodingEntry {
    /// Encoding name.
    pub name: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Preference, higher first; 0 disables.
    pub priority: u32,
}

/// `[sip.headers]`: the Jitsi SIP header names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadersSection {
    /// `JITSI_MEET_ROOM_HEADER_NAME`.
    pub room: String,
    /// `JITSI_MEET_ROOM_PASS_HEADER_NAME`.
    pub room_password: String,
    /// `JITSI_MEET_DOMAIN_BASE_HEADER_NAME`.
    pub domain_base: String,
    /// `JITSI_MEET_DOMAIN_TENANT_HEADER_NAME`.
    pub domain_tenant: String,
    /// `JITSI_AUTH_TOKEN_HEADER_NAME`.
    pub auth_token: String,
    /// `JITSI_AUTH_USER_ID_HEADER_NAME`.
    pub auth_user_id: String,
    /// `JITSI_MEET_VISITOR_HEADER_NAME`.
    pub visitor: String,
}

impl Default for HeadersSection {
    fn default() -> Self {
        HeaderNames::default().into()
    }
}

impl From<HeaderNames> for HeadersSection {
    fn from(h: HeaderNames) -> Self {
        Self {
            room: h.room,
            room_password: h.room_password,
            domain_base: h.domain_base,
            domain_tenant: h.domain_tenant,
            auth_token: h.auth_token,
            auth_user_id: h.auth_user_id,
            visitor: h.visitor,
        }
    }
}

/// `[sip.srtp]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SrtpSection {
    /// `DEFAULT_ENCRYPTION`.
    pub enabled: bool,
    /// `SAVP_OPTION`: `off`, `mandatory` or `optional`.
    pub savp: SavpOption,
    /// `ENCRYPTION_PROTOCOL.*` and `ENCRYPTION_PROTOCOL_STATUS.*`.
    pub protocols: Vec<ProtocolEntry>,
    /// `SDES_CIPHER_SUITES`.
    pub sdes_cipher_suites: Vec<String>,
}

/// One SRTP key-exchange protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolEntry {
    /// `SDES`, `ZRTP`, `DTLS-SRTP`.
    pub name: String,
    /// Priority.
    pub priority: u32,
    /// Enabled.
    pub enabled: bool,
}

/// `[sip_stack]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipStackSection {
    /// `net.java.sip.communicator.SIP_PREFERRED_CLEAR_PORT`.
    pub clear_port: u16,
    /// `net.java.sip.communicator.SIP_PREFERRED_SECURE_PORT`.
    pub secure_port: u16,
    /// `...sip.REGISTRATION_EXPIRATION`.
    pub registration_expiry_secs: u64,
    /// `...sip.DEFAULT_TRANSPORT`.
    pub default_transport: Transport,
    /// `...protocol.HOLE_PUNCH_PKT_COUNT`.
    pub hole_punch_packets: u32,
}

impl Default for SipStackSection {
    fn default() -> Self {
        let d = SipStackConfig::default();
        Self {
            clear_port: d.clear_port,
            secure_port: d.secure_port,
            registration_expiry_secs: d.registration_expiry.as_secs(),
            default_transport: d.default_transport,
            hole_punch_packets: d.hole_punch_packets,
        }
    }
}

/// `[[brewery]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrewerySection {
    /// Account id.
    pub id: String,
    /// `ACCOUNT_UID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_uid: Option<String>,
    /// `USER_ID` (bare JID).
    pub jid: String,
    /// `PASSWORD` (plain here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// File holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// `SERVER_ADDRESS:SERVER_PORT`; default `--host`:5222.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `ALLOW_NON_SECURE`.
    #[serde(default)]
    pub allow_non_secure: bool,
    /// `BREWERY`.
    pub room: String,
    /// `DOMAIN_BASE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_base: Option<String>,
    /// `RESOURCE`; absent = generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `KEEP_ALIVE_INTERVAL`.
    #[serde(default = "default_ping_secs")]
    pub ping_interval_secs: u64,
    /// `MUC_DOMAIN_PREFIX`.
    #[serde(default = "default_muc_prefixes")]
    pub muc_domain_prefixes: Vec<String>,
    /// `BOSH_URL_PATTERN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bosh_url_pattern: Option<String>,
}

/// `[call_xmpp]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallXmppSection {
    /// `SERVER_ADDRESS:SERVER_PORT`; default `--host`:5222.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `ANONYMOUS_AUTH`.
    pub anonymous: bool,
    /// `USER_ID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// `PASS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// File holding the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// `ALLOW_NON_SECURE`.
    pub allow_non_secure: bool,
    /// `UNIQUE_USER_ID`.
    pub unique_user_id: bool,
    /// `BOSH_URL_PATTERN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bosh_url_pattern: Option<String>,
    /// `DOMAIN_BASE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_base: Option<String>,
    /// `KEEP_ALIVE_INTERVAL`.
    pub ping_interval_secs: u64,
}

impl Default for CallXmppSection {
    fn default() -> Self {
        Self {
            server: None,
            anonymous: true,
            user_id: None,
            password: None,
            password_file: None,
            allow_non_secure: false,
            unique_user_id: false,
            bosh_url_pattern: None,
            domain_base: None,
            ping_interval_secs: default_ping_secs(),
        }
    }
}

/// `[jigasi]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JigasiSection {
    /// `ENABLE_SIP`.
    pub enable_sip: bool,
    /// `ENABLE_TRANSCRIPTION`.
    pub enable_transcription: bool,
    /// `ENABLE_SIP_STARTMUTED`.
    pub enable_sip_startmuted: bool,
    /// `ENABLE_SIP_VISITORS`.
    pub enable_sip_visitors: bool,
    /// `DEFAULT_JVB_ROOM_NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_jvb_room_name: Option<String>,
    /// `MUC_SERVICE_ADDRESS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muc_service_address: Option<String>,
    /// `JVB_INVITE_TIMEOUT`, 0 = no resume.
    pub jvb_invite_timeout_ms: u64,
    /// `DEFAULT_CALL_EMPTY_TIMEOUT`.
    pub call_empty_timeout_ms: u64,
    /// `MUC_JOIN_TIMEOUT`.
    pub muc_join_timeout_secs: u64,
    /// `ALLOWED_JID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_jid: Option<String>,
    /// `FOCUS_RESOURCE`.
    pub focus_resource: String,
    /// Focus component for the base domain (`focus.<domain>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub focus_address: Option<String>,
    /// `TRUSTED_DOMAINS`.
    pub trusted_domains: Vec<String>,
    /// `ALLOW_ONLY_JIGASIS_IN_ROOM`.
    pub allow_only_jigasis_in_room: bool,
    /// `USE_SIP_USER_AS_XMPP_RESOURCE`.
    pub use_sip_user_as_xmpp_resource: bool,
    /// `NOTIFY_MAX_OCCUPANTS`.
    pub notify_max_occupants: bool,
    /// `LOCAL_REGION`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_region: Option<String>,
    /// `STATS_ID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_id: Option<String>,
    /// `DISABLE_ICE`.
    pub disable_ice: bool,
    /// `SIP_MEDIA_DROPPED_THRESHOLD_MS`, 0 = off.
    pub sip_media_dropped_threshold_ms: u64,
    /// `HANGUP_SIP_ON_MEDIA_DROPPED`.
    pub hangup_sip_on_media_dropped: bool,
    /// `CONFERENCES_THRESHOLD`.
    pub conferences_threshold: u32,
    /// `BOSH_HOST_OVERRIDE`.
    pub bosh_host_override: BTreeMap<String, String>,
    /// `[jigasi.health_check]`.
    pub health_check: HealthCheckSection,
    /// How long a graceful shutdown waits for running calls before hanging them up; 0 = as
    /// long as they last (jigasi-rs only).
    pub graceful_shutdown_timeout_secs: u64,
}

impl Default for JigasiSection {
    fn default() -> Self {
        JigasiConfig::default().into()
    }
}

impl From<JigasiConfig> for JigasiSection {
    fn from(j: JigasiConfig) -> Self {
        Self {
            enable_sip: j.enable_sip,
            enable_transcription: j.enable_transcription,
            enable_sip_startmuted: j.enable_sip_startmuted,
            enable_sip_visitors: j.enable_sip_visitors,
            default_jvb_room_name: j.default_jvb_room_name,
            muc_service_address: j.muc_service_address,
            jvb_invite_timeout_ms: millis_or_zero(j.jvb_invite_timeout),
            call_empty_timeout_ms: millis(j.call_empty_timeout),
            muc_join_timeout_secs: j.muc_join_timeout.as_secs(),
            allowed_jid: j.allowed_jid,
            focus_resource: j.focus_resource,
            focus_address: j.focus_address,
            trusted_domains: j.trusted_domains,
            allow_only_jigasis_in_room: j.allow_only_jigasis_in_room,
            use_sip_user_as_xmpp_resource: j.use_sip_user_as_xmpp_resource,
            notify_max_occupants: j.notify_max_occupants,
            local_region: j.local_region,
            stats_id: j.stats_id,
            disable_ice: j.disable_ice,
            sip_media_dropped_threshold_ms: millis_or_zero(j.sip_media_dropped_threshold),
            hangup_sip_on_media_dropped: j.hangup_sip_on_media_dropped,
            conferences_threshold: j.conferences_threshold,
            bosh_host_override: j.bosh_host_override,
            health_check: HealthCheckSection {
                sip_uri: j.health_check.sip_uri,
                interval_ms: millis(j.health_check.interval),
                timeout_ms: millis(j.health_check.timeout),
                debug_enabled: j.health_check.debug_enabled,
            },
            graceful_shutdown_timeout_secs: j
                .graceful_shutdown_timeout
                .map_or(0, |d| d.as_secs().max(1)),
        }
    }
}

/// `[jigasi.health_check]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheckSection {
    /// `HEALTH_CHECK_SIP_URI`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_uri: Option<String>,
    /// `HEALTH_CHECK_INTERVAL`.
    pub interval_ms: u64,
    /// `HEALTH_CHECK_TIMEOUT`.
    pub timeout_ms: u64,
    /// `HEALTH_CHECK_DEBUG_ENABLED`.
    pub debug_enabled: bool,
}

impl Default for HealthCheckSection {
    fn default() -> Self {
        JigasiSection::from(JigasiConfig::default()).health_check
    }
}

/// `[media]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSection {
    /// `--min-port`.
    pub port_min: u16,
    /// `--max-port`.
    pub port_max: u16,
    /// Opus encoder `COMPLEXITY`.
    pub opus_complexity: u8,
    /// Public address for SIP SDP (jigasi-rs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_address: Option<IpAddr>,
}

impl Default for MediaSection {
    fn default() -> Self {
        let d = MediaConfig::default();
        Self {
            port_min: *d.port_range.start(),
            port_max: *d.port_range.end(),
            opus_complexity: d.opus_complexity,
            public_address: d.public_address,
        }
    }
}

/// `[rest]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestSection {
    /// Serve the API (`port = -1` in Jigasi disables it).
    pub enabled: bool,
    /// `org.jitsi.jigasi.rest { host, port }`.
    pub bind: SocketAddr,
    /// `ENABLE_REST_SHUTDOWN`.
    pub enable_shutdown: bool,
}

impl Default for RestSection {
    fn default() -> Self {
        let d = RestConfig::default();
        Self {
            enabled: d.enabled,
            bind: d.bind,
            enable_shutdown: d.enable_shutdown,
        }
    }
}

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    /// `ALWAYS_TRUST_MODE_ENABLED`.
    pub dangerous_always_trust: bool,
}

/// `[logging]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingSection {
    /// `--logdir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<PathBuf>,
}

/// Reads and converts `path`; command-line `--min-port`, `--max-port`, `--logdir`,
/// `--configwritable` and `--host` (default server) apply on top.
pub fn load(path: &Path, args: &CliArgs) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = parse(path, &text)?;
    let mut report = LoadReport::default();
    if let Some(domain) = &args.domain {
        report.warnings.push(format!(
            "--domain={domain} ignored: with --config every domain is set in the TOML file"
        ));
    }
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let config = Converter {
        path,
        base_dir,
        args,
        report: &mut report,
    }
    .config(file)?;
    Ok(Loaded { config, report })
}

/// Parses TOML text into the file model (unknown keys are errors naming the key and line).
pub fn parse(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Toml {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_owned(),
    })
}

impl Config {
    /// The configuration in our TOML format with every secret replaced by `<redacted>`.
    ///
    /// The output parses with [`parse`]; loading it gives the same configuration except that the
    /// secrets are the literal text `<redacted>`.
    pub fn to_redacted_toml(&self) -> String {
        let file = FileConfig::from_config(self);
        // Every field is a string, integer, bool, array or table with string keys, which TOML
        // can always represent, so serialization cannot fail.
        let body = toml::to_string(&file).expect("the file model always serializes to TOML");
        format!("# effective jigasi-rs configuration; secrets are redacted\n{body}")
    }
}

impl FileConfig {
    /// The file model of a configuration, secrets redacted.
    pub fn from_config(c: &Config) -> Self {
        let redact = |s: &Option<Secret<String>>| s.as_ref().map(|_| REDACTED.to_owned());
        Self {
            sip: c.sip.as_ref().map(|s| SipSection {
                id: s.id.clone(),
                account_uid: s.account_uid.clone(),
                user: s.user.clone(),
                domain: s.domain.clone(),
                password: redact(&s.password),
                password_file: None,
                authorization_name: s.authorization_name.clone(),
                display_name: s.display_name.clone(),
                registrar: s.registrar.as_ref().map(HostPort::to_string),
                registrarless: s.registrar.is_none(),
                transport: s.transport,
                proxy: s.proxy.as_ref().map(HostPort::to_string),
                proxy_auto_config: s.proxy_auto_config,
                keep_alive_method: s.keep_alive.method,
                keep_alive_interval_secs: s.keep_alive.interval.map_or(0, |d| d.as_secs()),
                encodings: s
                    .encodings
                    .iter()
                    .map(|e| EncodingEntry {
                        name: e.name.clone(),
                        clock_rate: e.clock_rate,
                        priority: e.priority,
                    })
                    .collect(),
                dtmf_method: s.dtmf_method,
                dtmf_minimal_tone_duration_ms: millis(s.dtmf_minimal_tone_duration),
                outbound_prefix: s.outbound_prefix.clone(),
                answer_empty_info: s.answer_empty_info,
                heartbeat_secs: s.heartbeat.map_or(0, |d| d.as_secs()),
                domain_base: s.domain_base.clone(),
                muc_domain_prefixes: s.muc_domain_prefixes.clone(),
                prevent_auth_login: s.prevent_auth_login,
                use_translator: s.use_translator,
                headers: s.headers.clone().into(),
                srtp: SrtpSection {
                    enabled: s.srtp.enabled,
                    savp: s.srtp.savp,
                    protocols: s
                        .srtp
                        .protocols
                        .iter()
                        .map(|p| ProtocolEntry {
                            name: p.name.clone(),
                            priority: p.priority,
                            enabled: p.enabled,
                        })
                        .collect(),
                    sdes_cipher_suites: s.srtp.sdes_cipher_suites.clone(),
                },
            }),
            sip_stack: SipStackSection {
                clear_port: c.sip_stack.clear_port,
                secure_port: c.sip_stack.secure_port,
                registration_expiry_secs: c.sip_stack.registration_expiry.as_secs(),
                default_transport: c.sip_stack.default_transport,
                hole_punch_packets: c.sip_stack.hole_punch_packets,
            },
            breweries: c
                .breweries
                .iter()
                .map(|b| BrewerySection {
                    id: b.id.clone(),
                    account_uid: b.account_uid.clone(),
                    jid: b.jid.clone(),
                    password: Some(REDACTED.to_owned()),
                    password_file: None,
                    server: Some(b.server.to_string()),
                    allow_non_secure: b.allow_non_secure,
                    room: b.brewery_room.clone(),
                    domain_base: b.domain_base.clone(),
                    resource: b.resource.clone(),
                    ping_interval_secs: b.ping_interval.as_secs(),
                    muc_domain_prefixes: b.muc_domain_prefixes.clone(),
                    bosh_url_pattern: b.bosh_url_pattern.clone(),
                })
                .collect(),
            call_xmpp: CallXmppSection {
                server: Some(c.call_xmpp.server.to_string()),
                anonymous: c.call_xmpp.anonymous,
                user_id: c.call_xmpp.user_id.clone(),
                password: redact(&c.call_xmpp.password),
                password_file: None,
                allow_non_secure: c.call_xmpp.allow_non_secure,
                unique_user_id: c.call_xmpp.unique_user_id,
                bosh_url_pattern: c.call_xmpp.bosh_url_pattern.clone(),
                domain_base: c.call_xmpp.domain_base.clone(),
                ping_interval_secs: c.call_xmpp.ping_interval.as_secs(),
            },
            jigasi: c.jigasi.clone().into(),
            media: MediaSection {
                port_min: *c.media.port_range.start(),
                port_max: *c.media.port_range.end(),
                opus_complexity: c.media.opus_complexity,
                public_address: c.media.public_address,
            },
            rest: RestSection {
                enabled: c.rest.enabled,
                bind: c.rest.bind,
                enable_shutdown: c.rest.enable_shutdown,
            },
            tls: TlsSection {
                dangerous_always_trust: c.tls.dangerous_always_trust,
            },
            logging: LoggingSection {
                log_dir: c.logging.log_dir.clone(),
            },
        }
    }
}

/// Turns the file model into [`Config`], reading secret files.
struct Converter<'a> {
    path: &'a Path,
    base_dir: &'a Path,
    args: &'a CliArgs,
    report: &'a mut LoadReport,
}

impl Converter<'_> {
    fn config(&mut self, f: FileConfig) -> Result<Config, ConfigError> {
        let sip = match f.sip {
            Some(s) if f.jigasi.enable_sip => Some(self.sip(s)?),
            Some(_) => {
                self.report
                    .warnings
                    .push("[sip] ignored because jigasi.enable_sip = false".into());
                None
            }
            None => None,
        };
        let mut breweries = Vec::new();
        for (i, b) in f.breweries.into_iter().enumerate() {
            breweries.push(self.brewery(i, b)?);
        }
        let call_xmpp = self.call_xmpp(f.call_xmpp)?;
        let jigasi = self.jigasi(f.jigasi)?;
        let port_min = self.args.min_port.unwrap_or(f.media.port_min);
        let port_max = self.args.max_port.unwrap_or(f.media.port_max);
        let port_range = port_min..=port_max;
        crate::check_port_range(
            &port_range,
            &format!(
                "media.port_min/port_max in {} and --min-port/--max-port",
                self.path.display()
            ),
        )?;
        if f.media.opus_complexity > 10 {
            return Err(self.invalid(
                "media.opus_complexity",
                f.media.opus_complexity,
                "an opus complexity 0-10",
            ));
        }
        Ok(Config {
            sip,
            sip_stack: SipStackConfig {
                clear_port: f.sip_stack.clear_port,
                secure_port: f.sip_stack.secure_port,
                registration_expiry: Duration::from_secs(f.sip_stack.registration_expiry_secs),
                default_transport: f.sip_stack.default_transport,
                hole_punch_packets: f.sip_stack.hole_punch_packets,
            },
            breweries,
            call_xmpp,
            jigasi,
            media: MediaConfig {
                port_range,
                opus_complexity: f.media.opus_complexity,
                public_address: f.media.public_address,
            },
            rest: RestConfig {
                enabled: f.rest.enabled,
                bind: f.rest.bind,
                enable_shutdown: f.rest.enable_shutdown,
            },
            tls: TlsConfig {
                dangerous_always_trust: f.tls.dangerous_always_trust,
            },
            logging: LoggingConfig {
                log_dir: self.args.log_dir.clone().or(f.logging.log_dir),
            },
            config_writable: self.args.config_writable,
            properties_path: None,
            args: self.args.clone(),
        })
    }

    fn sip(&mut self, s: SipSection) -> Result<SipAccount, ConfigError> {
        if s.user.trim().is_empty() {
            return Err(self.invalid("sip.user", &s.user, "a SIP user name"));
        }
        let registrar = match (&s.registrar, s.registrarless) {
            (Some(r), false) => {
                Some(self.host_port("sip.registrar", r, s.transport.default_port())?)
            }
            (Some(_), true) => {
                return Err(self.invalid(
                    "sip.registrarless",
                    true,
                    "false when sip.registrar is set",
                ));
            }
            (None, true) => None,
            (None, false) if s.domain.is_empty() => None,
            (None, false) => Some(HostPort::new(s.domain.clone(), s.transport.default_port())),
        };
        let proxy = s
            .proxy
            .as_deref()
            .map(|p| self.host_port("sip.proxy", p, 5060))
            .transpose()?;
        let password = self.secret("sip.password", s.password, s.password_file)?;
        let mut encodings: Vec<Encoding> = s
            .encodings
            .into_iter()
            .filter(|e| e.priority > 0)
            .map(|e| Encoding::new(e.name, e.clock_rate, e.priority))
            .collect();
        encodings.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
        let h = s.headers;
        Ok(SipAccount {
            id: s.id,
            account_uid: s.account_uid,
            user: s.user,
            domain: s.domain,
            password,
            authorization_name: s.authorization_name,
            display_name: s.display_name,
            registrar,
            transport: s.transport,
            proxy,
            proxy_auto_config: s.proxy_auto_config,
            keep_alive: KeepAlive {
                method: s.keep_alive_method,
                interval: nonzero_secs(s.keep_alive_interval_secs),
            },
            encodings,
            dtmf_method: s.dtmf_method,
            dtmf_minimal_tone_duration: Duration::from_millis(s.dtmf_minimal_tone_duration_ms),
            outbound_prefix: s.outbound_prefix,
            headers: HeaderNames {
                room: h.room,
                room_password: h.room_password,
                domain_base: h.domain_base,
                domain_tenant: h.domain_tenant,
                auth_token: h.auth_token,
                auth_user_id: h.auth_user_id,
                visitor: h.visitor,
            },
            answer_empty_info: s.answer_empty_info,
            heartbeat: nonzero_secs(s.heartbeat_secs),
            domain_base: s.domain_base,
            muc_domain_prefixes: s.muc_domain_prefixes,
            prevent_auth_login: s.prevent_auth_login,
            srtp: SrtpConfig {
                enabled: s.srtp.enabled,
                savp: s.srtp.savp,
                protocols: s
                    .srtp
                    .protocols
                    .into_iter()
                    .map(|p| EncryptionProtocol {
                        name: p.name,
                        priority: p.priority,
                        enabled: p.enabled,
                    })
                    .collect(),
                sdes_cipher_suites: s.srtp.sdes_cipher_suites,
            },
            use_translator: s.use_translator,
        })
    }

    fn brewery(&mut self, i: usize, b: BrewerySection) -> Result<BreweryAccount, ConfigError> {
        let key = |name: &str| format!("brewery[{i}].{name}");
        let Some(password) = self.secret(&key("password"), b.password, b.password_file)? else {
            return Err(ConfigError::TomlSecret {
                path: self.path.to_path_buf(),
                key: key("password"),
                problem: "missing: expected password or password_file".into(),
            });
        };
        let server = match &b.server {
            Some(s) => self.host_port(&key("server"), s, 5222)?,
            None => HostPort::new(self.args.host(), 5222),
        };
        if b.ping_interval_secs == 0 {
            return Err(self.invalid(
                &key("ping_interval_secs"),
                0,
                "a positive number of seconds",
            ));
        }
        Ok(BreweryAccount {
            id: b.id,
            account_uid: b.account_uid,
            jid: b.jid,
            password,
            server,
            allow_non_secure: b.allow_non_secure,
            brewery_room: b.room,
            domain_base: b.domain_base,
            resource: b.resource,
            ping_interval: Duration::from_secs(b.ping_interval_secs),
            muc_domain_prefixes: b.muc_domain_prefixes,
            bosh_url_pattern: b.bosh_url_pattern,
        })
    }

    fn call_xmpp(&mut self, c: CallXmppSection) -> Result<CallXmppConfig, ConfigError> {
        let server = match &c.server {
            Some(s) => self.host_port("call_xmpp.server", s, 5222)?,
            None => HostPort::new(self.args.host(), 5222),
        };
        if c.ping_interval_secs == 0 {
            return Err(self.invalid(
                "call_xmpp.ping_interval_secs",
                0,
                "a positive number of seconds",
            ));
        }
        Ok(CallXmppConfig {
            server,
            anonymous: c.anonymous,
            user_id: c.user_id,
            password: self.secret("call_xmpp.password", c.password, c.password_file)?,
            allow_non_secure: c.allow_non_secure,
            unique_user_id: c.unique_user_id,
            bosh_url_pattern: c.bosh_url_pattern,
            domain_base: c.domain_base,
            ping_interval: Duration::from_secs(c.ping_interval_secs),
        })
    }

    fn jigasi(&self, j: JigasiSection) -> Result<JigasiConfig, ConfigError> {
        if j.conferences_threshold == 0 {
            return Err(self.invalid(
                "jigasi.conferences_threshold",
                0,
                "a positive number of conferences",
            ));
        }
        Ok(JigasiConfig {
            enable_sip: j.enable_sip,
            enable_transcription: j.enable_transcription,
            enable_sip_startmuted: j.enable_sip_startmuted,
            enable_sip_visitors: j.enable_sip_visitors,
            default_jvb_room_name: j.default_jvb_room_name,
            muc_service_address: j.muc_service_address,
            bosh_host_override: j.bosh_host_override,
            jvb_invite_timeout: nonzero_millis(j.jvb_invite_timeout_ms),
            call_empty_timeout: Duration::from_millis(j.call_empty_timeout_ms),
            muc_join_timeout: Duration::from_secs(j.muc_join_timeout_secs),
            allowed_jid: j.allowed_jid,
            focus_resource: j.focus_resource,
            focus_address: j.focus_address,
            trusted_domains: j.trusted_domains,
            allow_only_jigasis_in_room: j.allow_only_jigasis_in_room,
            use_sip_user_as_xmpp_resource: j.use_sip_user_as_xmpp_resource,
            notify_max_occupants: j.notify_max_occupants,
            local_region: j.local_region,
            stats_id: j.stats_id,
            disable_ice: j.disable_ice,
            sip_media_dropped_threshold: nonzero_millis(j.sip_media_dropped_threshold_ms),
            hangup_sip_on_media_dropped: j.hangup_sip_on_media_dropped,
            conferences_threshold: j.conferences_threshold,
            health_check: HealthCheckConfig {
                sip_uri: j.health_check.sip_uri,
                interval: Duration::from_millis(j.health_check.interval_ms),
                timeout: Duration::from_millis(j.health_check.timeout_ms),
                debug_enabled: j.health_check.debug_enabled,
            },
            graceful_shutdown_timeout: (j.graceful_shutdown_timeout_secs > 0)
                .then(|| Duration::from_secs(j.graceful_shutdown_timeout_secs)),
        })
    }

    fn host_port(&self, key: &str, text: &str, default_port: u16) -> Result<HostPort, ConfigError> {
        HostPort::parse(text, default_port).ok_or_else(|| {
            self.invalid(
                key,
                text,
                "host, host:port or [ipv6]:port with a port 1-65535",
            )
        })
    }

    /// Inline or file secret; both at once is an error.
    fn secret(
        &mut self,
        key: &str,
        inline: Option<String>,
        file: Option<PathBuf>,
    ) -> Result<Option<Secret<String>>, ConfigError> {
        let problem = |problem: String| ConfigError::TomlSecret {
            path: self.path.to_path_buf(),
            key: key.to_owned(),
            problem,
        };
        match (inline, file) {
            (Some(_), Some(_)) => Err(problem(format!(
                "both {key} and {key}_file are set: expected only one"
            ))),
            (Some(value), None) => {
                if value == REDACTED {
                    self.report.warnings.push(format!(
                        "{}: {key} is \"{REDACTED}\" (output of --print-config?): put the real secret back",
                        self.path.display()
                    ));
                }
                Ok(Some(Secret::new(value)))
            }
            (None, Some(file)) => {
                let full = self.base_dir.join(&file);
                let text = std::fs::read_to_string(&full)
                    .map_err(|e| problem(format!("cannot read {}: {e}", full.display())))?;
                let text = text
                    .strip_suffix('\n')
                    .map(|t| t.strip_suffix('\r').unwrap_or(t))
                    .unwrap_or(&text);
                Ok(Some(Secret::new(text.to_owned())))
            }
            (None, None) => Ok(None),
        }
    }

    fn invalid(&self, key: &str, value: impl ToString, expected: &str) -> ConfigError {
        ConfigError::InvalidTomlValue {
            path: self.path.to_path_buf(),
            key: key.to_owned(),
            value: value.to_string(),
            expected: expected.to_owned(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn millis_or_zero(d: Option<Duration>) -> u64 {
    d.map_or(0, millis)
}

fn nonzero_millis(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

fn nonzero_secs(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

fn default_account_id() -> String {
    "acc1".into()
}

fn default_keep_alive_method() -> KeepAliveMethod {
    KeepAliveMethod::Options
}

fn default_encodings() -> Vec<EncodingEntry> {
    Encoding::jigasi_defaults()
        .into_iter()
        .map(|e| EncodingEntry {
            name: e.name,
            clock_rate: e.clock_rate,
            priority: e.priority,
        })
        .collect()
}

fn default_dtmf_ms() -> u64 {
    70
}

fn default_ping_secs() -> u64 {
    30
}

/// What secrets become in printed configs.
const REDACTED: &str = "<redacted>";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn convert(text: &str) -> Result<Loaded, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        load(&path, &CliArgs::default())
    }

    #[test]
    fn empty_file_gives_jigasi_defaults() {
        let loaded = convert("").unwrap();
        let c = loaded.config;
        assert_eq!(c.sip, None);
        assert_eq!(c.sip_stack, SipStackConfig::default());
        assert_eq!(c.jigasi, JigasiConfig::default());
        assert_eq!(c.media, MediaConfig::default());
        assert_eq!(c.rest, RestConfig::default());
        assert_eq!(c.call_xmpp.server, HostPort::new("localhost", 5222));
        assert!(c.call_xmpp.anonymous);
    }

    #[test]
    fn password_file_is_read_and_both_forms_conflict() {
        let c = convert("[call_xmpp]\nuser_id = \"u@h\"\npassword_file = \"pw\"\n")
            .unwrap()
            .config;
        assert_eq!(c.call_xmpp.password.unwrap().expose(), "s3cret");
        let e = convert("[call_xmpp]\npassword = \"a\"\npassword_file = \"pw\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("call_xmpp.password") && e.contains("expected only one"),
            "{e}"
        );
        let e = convert("[call_xmpp]\npassword_file = \"nope\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn registrar_defaults_to_domain() {
        let c = convert("[sip]\nuser = \"u\"\ndomain = \"sip.example.com\"\ntransport = \"TLS\"\n")
            .unwrap()
            .config;
        let sip = c.sip.unwrap();
        assert_eq!(sip.registrar, Some(HostPort::new("sip.example.com", 5061)));
        assert_eq!(sip.encodings, Encoding::jigasi_defaults());
        let c = convert("[sip]\nuser = \"u\"\ndomain = \"d\"\nregistrarless = true\n")
            .unwrap()
            .config;
        assert_eq!(c.sip.unwrap().registrar, None);
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = convert("[sip]\nuser = \"u\"\nregistrar = \"h:50x0\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sip.registrar: \"h:50x0\": expected host"),
            "{e}"
        );
        let e = convert("[sip]\nuser = \"u\"\ntransport = \"SCTP\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("SCTP") && e.contains("UDP"), "{e}");
        let e = convert("[media]\nport_min = 3000\nport_max = 2000\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("3000-2000") && e.contains("media.port_min"),
            "{e}"
        );
    }
}
