//! The typed configuration model shared by both inputs (Jigasi properties and our TOML).
//!
//! Every default documented here is Jigasi's default unless it says otherwise, with the property
//! that sets it in Jigasi.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use jigasi_types::Secret;
use serde::{Deserialize, Serialize};

/// The whole configuration of one jigasi-rs process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The SIP account; `None` when `org.jitsi.jigasi.ENABLE_SIP=false`, when no account is
    /// configured or when the account is disabled (`IS_ACCOUNT_DISABLED=true`).
    pub sip: Option<SipAccount>,
    /// Settings of the SIP stack shared by all accounts.
    pub sip_stack: SipStackConfig,
    /// Control ("brewery") XMPP accounts, in file order.
    pub breweries: Vec<BreweryAccount>,
    /// Settings of the per-call XMPP connection (`org.jitsi.jigasi.xmpp.acc.*`).
    pub call_xmpp: CallXmppConfig,
    /// Core gateway settings (`org.jitsi.jigasi.*`).
    pub jigasi: JigasiConfig,
    /// Media settings (RTP port range, codec tuning).
    pub media: MediaConfig,
    /// The HTTP (REST) API.
    pub rest: RestConfig,
    /// TLS certificate policy shared by SIP and XMPP.
    pub tls: TlsConfig,
    /// Logging.
    pub logging: LoggingConfig,
    /// Whether the properties file may be rewritten (`--configwritable=true`), e.g. to persist
    /// brewery accounts added over REST.
    pub config_writable: bool,
    /// The `sip-communicator.properties` the configuration came from; `None` for a TOML file.
    pub properties_path: Option<PathBuf>,
    /// The command line the configuration was loaded with: its `--host` / `--domain` defaults
    /// also apply to brewery accounts added at run time (`/configure/call-control-muc/add`).
    pub args: crate::cli::CliArgs,
}

/// A host name (or IP literal) and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    /// DNS name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port number.
    pub port: u16,
}

impl HostPort {
    /// Makes a host and port pair.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`; `default_port` fills a missing port.
    ///
    /// Returns `None` for an empty host, a bad port or a bare IPv6 address with a port.
    pub fn parse(text: &str, default_port: u16) -> Option<Self> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            host.parse::<std::net::Ipv6Addr>().ok()?;
            let port = match after {
                "" => default_port,
                _ => parse_port(after.strip_prefix(':')?)?,
            };
            return Some(Self::new(host, port));
        }
        if text.parse::<std::net::Ipv6Addr>().is_ok() {
            return Some(Self::new(text, default_port));
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => (host, parse_port(port)?),
            None => (text, default_port),
        };
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains(':') {
            return None;
        }
        Some(Self::new(host, port))
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses a port number 1-65535.
pub(crate) fn parse_port(text: &str) -> Option<u16> {
    match text.trim().parse::<u16>() {
        Ok(0) | Err(_) => None,
        Ok(port) => Some(port),
    }
}

/// The one SIP account (Jigasi uses only the first one declared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipAccount {
    /// The account id (`acc1` in `net.java.sip.communicator.impl.protocol.sip.acc1.*`).
    pub id: String,
    /// `ACCOUNT_UID` (`SIP:user@host`), informational.
    pub account_uid: Option<String>,
    /// User part of `USER_ID`.
    pub user: String,
    /// Domain of `USER_ID` (or `SERVER_ADDRESS` when `USER_ID` has no domain); may be empty for
    /// a registrar-less account.
    pub domain: String,
    /// Digest password (`PASSWORD`, base64 in the properties file).
    pub password: Option<Secret<String>>,
    /// Digest user name when it differs from the user (`AUTHORIZATION_NAME`).
    pub authorization_name: Option<String>,
    /// Display name in From (`DISPLAY_NAME`).
    pub display_name: Option<String>,
    /// Where REGISTER goes: `SERVER_ADDRESS`:`SERVER_PORT`, else the host of `USER_ID`;
    /// `None` = registrar-less (the account counts as registered at once).
    pub registrar: Option<HostPort>,
    /// Transport toward registrar and proxy (`PREFERRED_TRANSPORT`, `SERVER_TRANSPORT`, else
    /// the global `...sip.DEFAULT_TRANSPORT`, UDP).
    pub transport: Transport,
    /// Outbound proxy (`PROXY_ADDRESS`:`PROXY_PORT`, default port 5060).
    pub proxy: Option<HostPort>,
    /// `PROXY_AUTO_CONFIG`: find the proxy from DNS of the domain (true when no proxy is given).
    pub proxy_auto_config: bool,
    /// Keep-alive toward the registrar/proxy.
    pub keep_alive: KeepAlive,
    /// Enabled codecs, highest priority first (`OVERRIDE_ENCODINGS` + `Encodings.*`; otherwise
    /// [`Encoding::jigasi_defaults`]).
    pub encodings: Vec<Encoding>,
    /// How DTMF is sent toward SIP (`DTMF_METHOD`, default `AUTO_DTMF`).
    pub dtmf_method: DtmfMethod,
    /// Shortest tone sent (`DTMF_MINIMAL_TONE_DURATION` in ms, jitsi-desktop default 70 ms).
    pub dtmf_minimal_tone_duration: Duration,
    /// Prepended to dial-out destinations (`OUTBOUND_PREFIX`, default empty).
    pub outbound_prefix: String,
    /// Names of the Jitsi-specific SIP headers.
    pub headers: HeaderNames,
    /// Answer SIP INFO without Content-Type with 200 (`JITSI_MEET_ANSWER_EMPTY_INFO`, false).
    pub answer_empty_info: bool,
    /// Period of the SIP INFO heartbeat (`HEARTBEAT_SECONDS`; `None` = off, Jigasi's -1).
    pub heartbeat: Option<Duration>,
    /// Base domain for dial-in calls (`DOMAIN_BASE`).
    pub domain_base: Option<String>,
    /// MUC domain prefixes stripped when deriving the XMPP domain (`MUC_DOMAIN_PREFIX`, comma
    /// list, default `conference,muc`).
    pub muc_domain_prefixes: Vec<String>,
    /// Keep per-call XMPP logins anonymous for dial-in (`PREVENT_AUTH_LOGIN`, false).
    pub prevent_auth_login: bool,
    /// SDES-SRTP settings.
    pub srtp: SrtpConfig,
    /// Translator (forwarding) instead of mixing (`USE_TRANSLATOR_IN_CONFERENCE`, false; not
    /// implemented by jigasi-rs yet).
    pub use_translator: bool,
}

/// SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Transport {
    /// RFC 3261 over UDP (Jigasi's default).
    #[default]
    #[serde(rename = "UDP")]
    Udp,
    /// RFC 3261 over TCP.
    #[serde(rename = "TCP")]
    Tcp,
    /// RFC 3261 over TLS.
    #[serde(rename = "TLS")]
    Tls,
}

impl Transport {
    /// The name used in Jigasi properties and our TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }

    /// The default port of a server reached over this transport (5061 for TLS, else 5060).
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tls => 5061,
            Self::Udp | Self::Tcp => 5060,
        }
    }
}

impl FromStr for Transport {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_uppercase().as_str() {
            "UDP" => Ok(Self::Udp),
            "TCP" => Ok(Self::Tcp),
            "TLS" => Ok(Self::Tls),
            _ => Err(()),
        }
    }
}

/// How the SIP account keeps its NAT binding and registration alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// `KEEP_ALIVE_METHOD`, default `OPTIONS`.
    pub method: KeepAliveMethod,
    /// `KEEP_ALIVE_INTERVAL` in seconds; `None` = no keep-alive (unset or not positive). For
    /// `REGISTER` an unset interval means 25 s, as in jitsi-desktop.
    pub interval: Option<Duration>,
}

impl Default for KeepAlive {
    fn default() -> Self {
        Self {
            method: KeepAliveMethod::Options,
            interval: None,
        }
    }
}

/// SIP keep-alive method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeepAliveMethod {
    /// Send CRLF on the connection (RFC 5626 style).
    #[serde(rename = "CRLF")]
    Crlf,
    /// Send OPTIONS to the registrar/proxy.
    #[serde(rename = "OPTIONS")]
    Options,
    /// Re-REGISTER every interval.
    #[serde(rename = "REGISTER")]
    Register,
}

impl KeepAliveMethod {
    /// The name used in Jigasi properties and our TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crlf => "CRLF",
            Self::Options => "OPTIONS",
            Self::Register => "REGISTER",
        }
    }
}

impl FromStr for KeepAliveMethod {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_uppercase().as_str() {
            "CRLF" => Ok(Self::Crlf),
            "OPTIONS" => Ok(Self::Options),
            "REGISTER" => Ok(Self::Register),
            _ => Err(()),
        }
    }
}

/// How DTMF tones from the conference are sent to the SIP peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum DtmfMethod {
    /// RFC 4733 when `telephone-event` was negotiated, else in-band (`AUTO_DTMF`, default).
    #[default]
    #[serde(rename = "AUTO_DTMF")]
    Auto,
    /// In-band audio tones (`INBAND_DTMF`).
    #[serde(rename = "INBAND_DTMF")]
    Inband,
    /// RFC 4733 RTP events (`RTP_DTMF`).
    #[serde(rename = "RTP_DTMF")]
    Rtp,
    /// SIP INFO `application/dtmf-relay` (`SIP_INFO_DTMF`).
    #[serde(rename = "SIP_INFO_DTMF")]
    SipInfo,
}

impl DtmfMethod {
    /// The name used in Jigasi properties and our TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "AUTO_DTMF",
            Self::Inband => "INBAND_DTMF",
            Self::Rtp => "RTP_DTMF",
            Self::SipInfo => "SIP_INFO_DTMF",
        }
    }
}

impl FromStr for DtmfMethod {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_uppercase().as_str() {
            "AUTO_DTMF" => Ok(Self::Auto),
            "INBAND_DTMF" => Ok(Self::Inband),
            "RTP_DTMF" => Ok(Self::Rtp),
            "SIP_INFO_DTMF" => Ok(Self::SipInfo),
            _ => Err(()),
        }
    }
}

/// One codec with its preference (higher = preferred).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Encoding {
    /// RTP encoding name as in SDP (`opus`, `PCMU`, `telephone-event`).
    pub name: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Preference; 0 would mean disabled, so lists here only hold positive values.
    pub priority: u32,
}

impl Encoding {
    /// Makes an encoding entry.
    pub fn new(name: impl Into<String>, clock_rate: u32, priority: u32) -> Self {
        Self {
            name: name.into(),
            clock_rate,
            priority,
        }
    }

    /// The codec order shipped in Jigasi's sample `sip-communicator.properties`, used when
    /// `OVERRIDE_ENCODINGS` is not `true`.
    pub fn jigasi_defaults() -> Vec<Self> {
        vec![
            Self::new("opus", 48_000, 1000),
            Self::new("AMR-WB", 16_000, 750),
            Self::new("G722", 8000, 700),
            Self::new("PCMU", 8000, 650),
            Self::new("PCMA", 8000, 600),
            Self::new("iLBC", 8000, 10),
            Self::new("telephone-event", 8000, 1),
        ]
    }

    /// Parses `name/clock`, the part after `Encodings.` in a property name.
    pub(crate) fn parse_key(key: &str, priority: u32) -> Option<Self> {
        let (name, clock) = key.rsplit_once('/')?;
        if name.is_empty() {
            return None;
        }
        Some(Self::new(name, clock.parse().ok()?, priority))
    }
}

/// Names of the SIP headers Jigasi reads from an INVITE (and writes on dial-out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNames {
    /// `JITSI_MEET_ROOM_HEADER_NAME`, default `Jitsi-Conference-Room`.
    pub room: String,
    /// `JITSI_MEET_ROOM_PASS_HEADER_NAME`, default `Jitsi-Conference-Room-Pass`.
    pub room_password: String,
    /// `JITSI_MEET_DOMAIN_BASE_HEADER_NAME`, default `Jitsi-Conference-Domain-Base`.
    pub domain_base: String,
    /// `JITSI_MEET_DOMAIN_TENANT_HEADER_NAME`, default `Jitsi-Conference-Domain-Tenant`.
    pub domain_tenant: String,
    /// `JITSI_AUTH_TOKEN_HEADER_NAME`, default `Jitsi-Auth-Token`.
    pub auth_token: String,
    /// `JITSI_AUTH_USER_ID_HEADER_NAME`, default `Jitsi-User-ID-Token`.
    pub auth_user_id: String,
    /// `JITSI_MEET_VISITOR_HEADER_NAME`, default `Jitsi-Visitor`.
    pub visitor: String,
}

impl Default for HeaderNames {
    fn default() -> Self {
        Self {
            room: "Jitsi-Conference-Room".into(),
            room_password: "Jitsi-Conference-Room-Pass".into(),
            domain_base: "Jitsi-Conference-Domain-Base".into(),
            domain_tenant: "Jitsi-Conference-Domain-Tenant".into(),
            auth_token: "Jitsi-Auth-Token".into(),
            auth_user_id: "Jitsi-User-ID-Token".into(),
            visitor: "Jitsi-Visitor".into(),
        }
    }
}

/// SRTP on the SIP leg (SDES); off by default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SrtpConfig {
    /// `DEFAULT_ENCRYPTION`, false.
    pub enabled: bool,
    /// `SAVP_OPTION` (0 off, 1 mandatory, 2 optional), default off.
    pub savp: SavpOption,
    /// `ENCRYPTION_PROTOCOL.<name>` priority with `ENCRYPTION_PROTOCOL_STATUS.<name>`, sorted by
    /// name.
    pub protocols: Vec<EncryptionProtocol>,
    /// `SDES_CIPHER_SUITES`, comma list (empty = the stack's defaults).
    pub sdes_cipher_suites: Vec<String>,
}

impl SrtpConfig {
    /// Whether SDES is both enabled globally and enabled as a protocol.
    pub fn sdes_enabled(&self) -> bool {
        self.enabled
            && self
                .protocols
                .iter()
                .any(|p| p.name.eq_ignore_ascii_case("SDES") && p.enabled)
    }
}

/// How RTP/SAVP is offered (jitsi-desktop `SAVP_OPTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SavpOption {
    /// Offer RTP/AVP only (0).
    #[default]
    Off,
    /// Offer RTP/SAVP only (1).
    Mandatory,
    /// Offer both (2).
    Optional,
}

impl SavpOption {
    /// The numeric property value.
    pub fn as_number(self) -> u8 {
        match self {
            Self::Off => 0,
            Self::Mandatory => 1,
            Self::Optional => 2,
        }
    }

    /// From the numeric property value.
    pub fn from_number(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Off),
            1 => Some(Self::Mandatory),
            2 => Some(Self::Optional),
            _ => None,
        }
    }
}

/// One media encryption protocol entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncryptionProtocol {
    /// `SDES`, `ZRTP` or `DTLS-SRTP`.
    pub name: String,
    /// Priority from `ENCRYPTION_PROTOCOL.<name>` (0 = not used).
    pub priority: u32,
    /// `ENCRYPTION_PROTOCOL_STATUS.<name>`.
    pub enabled: bool,
}

/// Global SIP stack settings (jitsi-desktop globals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipStackConfig {
    /// UDP and TCP listening port (`net.java.sip.communicator.SIP_PREFERRED_CLEAR_PORT`, 5060).
    pub clear_port: u16,
    /// TLS listening port (`net.java.sip.communicator.SIP_PREFERRED_SECURE_PORT`, 5061).
    pub secure_port: u16,
    /// REGISTER expiry (`...impl.protocol.sip.REGISTRATION_EXPIRATION`, 600 s).
    pub registration_expiry: Duration,
    /// Default transport (`...impl.protocol.sip.DEFAULT_TRANSPORT`, UDP).
    pub default_transport: Transport,
    /// RTP hole-punch packets at call start (`...impl.protocol.HOLE_PUNCH_PKT_COUNT`, 3).
    pub hole_punch_packets: u32,
}

impl Default for SipStackConfig {
    fn default() -> Self {
        Self {
            clear_port: 5060,
            secure_port: 5061,
            registration_expiry: Duration::from_secs(600),
            default_transport: Transport::Udp,
            hole_punch_packets: 3,
        }
    }
}

/// A control ("brewery") XMPP account: it joins the brewery MUC, publishes load and receives
/// Rayo dial IQs from Jicofo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreweryAccount {
    /// The account id (`acc-xmpp-1` in `...protocol.jabber.acc-xmpp-1.*`).
    pub id: String,
    /// `ACCOUNT_UID` (`Jabber:jigasi@auth.example.com`), informational.
    pub account_uid: Option<String>,
    /// Bare JID from `USER_ID` (`jigasi@auth.example.com`).
    pub jid: String,
    /// `PASSWORD` (base64 in the properties file).
    pub password: Secret<String>,
    /// Where to connect: `SERVER_ADDRESS` when `IS_SERVER_OVERRIDDEN=true`, else `--host`
    /// (default `localhost`); port `SERVER_PORT` (5222).
    pub server: HostPort,
    /// Allow a connection without TLS (`ALLOW_NON_SECURE`, false).
    pub allow_non_secure: bool,
    /// The brewery MUC JID (`BREWERY`).
    pub brewery_room: String,
    /// `DOMAIN_BASE` for dial-out calls received on this account.
    pub domain_base: Option<String>,
    /// `RESOURCE`; `None` = auto-generated (`AUTO_GENERATE_RESOURCE=true` or no resource).
    pub resource: Option<String>,
    /// XEP-0199 ping interval (`KEEP_ALIVE_INTERVAL`, 30 s).
    pub ping_interval: Duration,
    /// `MUC_DOMAIN_PREFIX` (comma list, default `conference,muc`).
    pub muc_domain_prefixes: Vec<String>,
    /// `BOSH_URL_PATTERN` used for per-call connections of dial-out calls.
    pub bosh_url_pattern: Option<String>,
}

/// Settings of the per-call XMPP connection (`org.jitsi.jigasi.xmpp.acc.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallXmppConfig {
    /// Where to connect: `SERVER_ADDRESS` (+`SERVER_PORT`, 5222) when set, else `--host`
    /// (default `localhost`).
    pub server: HostPort,
    /// SASL ANONYMOUS (`ANONYMOUS_AUTH`, default true: as in Jigasi, setting `USER_ID` alone does
    /// not switch to an authenticated login).
    pub anonymous: bool,
    /// Authenticated login (`USER_ID`).
    pub user_id: Option<String>,
    /// Password for `user_id` (`PASS`, plain text, not base64).
    pub password: Option<Secret<String>>,
    /// Allow a connection without TLS (`ALLOW_NON_SECURE`, false).
    pub allow_non_secure: bool,
    /// Append `-<random hex>` to the user's local part per call (`UNIQUE_USER_ID`, false).
    pub unique_user_id: bool,
    /// `BOSH_URL_PATTERN` for dial-in calls (BOSH is not supported by jigasi-rs yet).
    pub bosh_url_pattern: Option<String>,
    /// `DOMAIN_BASE`.
    pub domain_base: Option<String>,
    /// XEP-0199 ping interval (`KEEP_ALIVE_INTERVAL`, 30 s).
    pub ping_interval: Duration,
}

/// Core settings, `org.jitsi.jigasi.*` (behaviour doc §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JigasiConfig {
    /// `ENABLE_SIP`, true.
    pub enable_sip: bool,
    /// `ENABLE_TRANSCRIPTION`, false (not implemented by jigasi-rs).
    pub enable_transcription: bool,
    /// `ENABLE_SIP_STARTMUTED`, false.
    pub enable_sip_startmuted: bool,
    /// `ENABLE_SIP_VISITORS`, false (not implemented by jigasi-rs).
    pub enable_sip_visitors: bool,
    /// `DEFAULT_JVB_ROOM_NAME`: room for INVITEs without a room header.
    pub default_jvb_room_name: Option<String>,
    /// `MUC_SERVICE_ADDRESS`: MUC domain appended to bare room names.
    pub muc_service_address: Option<String>,
    /// `BOSH_HOST_OVERRIDE` (`domain=host,domain2=host2`).
    pub bosh_host_override: BTreeMap<String, String>,
    /// `JVB_INVITE_TIMEOUT` (30000 ms); `None` when not positive (resume disabled).
    pub jvb_invite_timeout: Option<Duration>,
    /// `DEFAULT_CALL_EMPTY_TIMEOUT` (30000 ms).
    pub call_empty_timeout: Duration,
    /// `MUC_JOIN_TIMEOUT` (10 s).
    pub muc_join_timeout: Duration,
    /// `ALLOWED_JID`: bare JID allowed to send Rayo dial/hangup; `None` = anyone.
    pub allowed_jid: Option<String>,
    /// `FOCUS_RESOURCE`, `focus`.
    pub focus_resource: String,
    /// The focus component for rooms of the base domain (`focus.<domain>` from `--domain`);
    /// `None` = derive `<focus_resource>.<room domain>` per call as Jigasi does.
    pub focus_address: Option<String>,
    /// `TRUSTED_DOMAINS` (JSON array).
    pub trusted_domains: Vec<String>,
    /// `ALLOW_ONLY_JIGASIS_IN_ROOM`, true.
    pub allow_only_jigasis_in_room: bool,
    /// `USE_SIP_USER_AS_XMPP_RESOURCE`, false.
    pub use_sip_user_as_xmpp_resource: bool,
    /// `NOTIFY_MAX_OCCUPANTS`, true.
    pub notify_max_occupants: bool,
    /// `LOCAL_REGION`.
    pub local_region: Option<String>,
    /// `STATS_ID`.
    pub stats_id: Option<String>,
    /// `DISABLE_ICE`, false.
    pub disable_ice: bool,
    /// `SIP_MEDIA_DROPPED_THRESHOLD_MS` (10000); `None` when negative (off).
    pub sip_media_dropped_threshold: Option<Duration>,
    /// `HANGUP_SIP_ON_MEDIA_DROPPED`, false.
    pub hangup_sip_on_media_dropped: bool,
    /// `CONFERENCES_THRESHOLD` (100): divisor of `stress_level`, at least 1.
    pub conferences_threshold: u32,
    /// SIP health check (`HEALTH_CHECK_*`).
    pub health_check: HealthCheckConfig,
    /// How long a graceful shutdown lets running calls go on before hanging them up
    /// (jigasi-rs only: `org.jitsi.jigasi.rs.GRACEFUL_SHUTDOWN_TIMEOUT` in ms, TOML
    /// `jigasi.graceful_shutdown_timeout_secs`; 300 s). `None` (0 in the files) = wait for the
    /// calls as long as they last, as Jigasi does.
    pub graceful_shutdown_timeout: Option<Duration>,
}

impl Default for JigasiConfig {
    fn default() -> Self {
        Self {
            enable_sip: true,
            enable_transcription: false,
            enable_sip_startmuted: false,
            enable_sip_visitors: false,
            default_jvb_room_name: None,
            muc_service_address: None,
            bosh_host_override: BTreeMap::new(),
            jvb_invite_timeout: Some(Duration::from_millis(30_000)),
            call_empty_timeout: Duration::from_millis(30_000),
            muc_join_timeout: Duration::from_secs(10),
            allowed_jid: None,
            focus_resource: "focus".into(),
            focus_address: None,
            trusted_domains: Vec::new(),
            allow_only_jigasis_in_room: true,
            use_sip_user_as_xmpp_resource: false,
            notify_max_occupants: true,
            local_region: None,
            stats_id: None,
            disable_ice: false,
            sip_media_dropped_threshold: Some(Duration::from_millis(10_000)),
            hangup_sip_on_media_dropped: false,
            conferences_threshold: 100,
            health_check: HealthCheckConfig::default(),
            graceful_shutdown_timeout: Some(Duration::from_secs(300)),
        }
    }
}

/// Periodic SIP test call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// `HEALTH_CHECK_SIP_URI`; `None` (or empty) = no health-check calls.
    pub sip_uri: Option<String>,
    /// `HEALTH_CHECK_INTERVAL` (300000 ms).
    pub interval: Duration,
    /// `HEALTH_CHECK_TIMEOUT` (600000 ms).
    pub timeout: Duration,
    /// `HEALTH_CHECK_DEBUG_ENABLED`, false.
    pub debug_enabled: bool,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            sip_uri: None,
            interval: Duration::from_millis(300_000),
            timeout: Duration::from_millis(600_000),
            debug_enabled: false,
        }
    }
}

/// Media settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// RTP/ICE ports for both legs (`--min-port`..`--max-port`, 10000..=20000).
    pub port_range: RangeInclusive<u16>,
    /// Opus encoder complexity 0-10
    /// (`net.java.sip.communicator.impl.neomedia.codec.audio.opus.encoder.COMPLEXITY`, 10).
    pub opus_complexity: u8,
    /// Address written into SIP SDP instead of the local one (jigasi-rs only, TOML only).
    pub public_address: Option<IpAddr>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            port_range: 10_000..=20_000,
            opus_complexity: 10,
            public_address: None,
        }
    }
}

/// The HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestConfig {
    /// Whether the API is served (`port = -1` disables it, as in jicoco).
    pub enabled: bool,
    /// Bind address (HOCON `org.jitsi.jigasi.rest { host, port }`, legacy
    /// `org.jitsi.jigasi.rest.jetty.host`/`.port` win; default 127.0.0.1:8788).
    pub bind: SocketAddr,
    /// Allow `POST /about/shutdown` (`org.jitsi.jigasi.ENABLE_REST_SHUTDOWN`, false).
    pub enable_shutdown: bool,
}

impl Default for RestConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8788),
            enable_shutdown: false,
        }
    }
}

/// TLS certificate policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// Accept any server certificate on SIP-TLS and XMPP
    /// (`net.java.sip.communicator.service.gui.ALWAYS_TRUST_MODE_ENABLED`, false). Dangerous.
    pub dangerous_always_trust: bool,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoggingConfig {
    /// `--logdir`: where log files go; `None` = standard error only.
    pub log_dir: Option<PathBuf>,
}

/// Splits a comma list, trimming items and dropping empty ones.
pub(crate) fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Jigasi's default MUC domain prefixes.
pub(crate) fn default_muc_prefixes() -> Vec<String> {
    vec!["conference".into(), "muc".into()]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn host_port_parses_names_v4_and_v6() {
        assert_eq!(
            HostPort::parse("sip.example.com", 5060),
            Some(HostPort::new("sip.example.com", 5060))
        );
        assert_eq!(
            HostPort::parse("10.0.0.1:5080", 5060),
            Some(HostPort::new("10.0.0.1", 5080))
        );
        assert_eq!(
            HostPort::parse("[::1]:5222", 1),
            Some(HostPort::new("::1", 5222))
        );
        assert_eq!(
            HostPort::parse("::1", 5222),
            Some(HostPort::new("::1", 5222))
        );
        assert_eq!(HostPort::parse("host:0", 1), None);
        assert_eq!(HostPort::parse("host:50x0", 1), None);
        assert_eq!(HostPort::parse("", 1), None);
        assert_eq!(HostPort::new("::1", 5).to_string(), "[::1]:5");
        assert_eq!(HostPort::new("a", 5).to_string(), "a:5");
    }

    #[test]
    fn enums_parse_case_insensitively_and_print_jigasi_names() {
        assert_eq!("tls".parse(), Ok(Transport::Tls));
        assert_eq!("SCTP".parse::<Transport>(), Err(()));
        assert_eq!(Transport::Tls.default_port(), 5061);
        assert_eq!("register".parse(), Ok(KeepAliveMethod::Register));
        assert_eq!("SIP_INFO_DTMF".parse(), Ok(DtmfMethod::SipInfo));
        for m in [
            DtmfMethod::Auto,
            DtmfMethod::Inband,
            DtmfMethod::Rtp,
            DtmfMethod::SipInfo,
        ] {
            assert_eq!(m.as_str().parse(), Ok(m));
        }
        assert_eq!(SavpOption::from_number(2), Some(SavpOption::Optional));
        assert_eq!(SavpOption::from_number(3), None);
    }

    #[test]
    fn encoding_keys_and_lists() {
        assert_eq!(
            Encoding::parse_key("telephone-event/8000", 1),
            Some(Encoding::new("telephone-event", 8000, 1))
        );
        assert_eq!(Encoding::parse_key("opus", 1), None);
        assert_eq!(Encoding::parse_key("opus/fast", 1), None);
        assert_eq!(comma_list(" a, ,b "), vec!["a", "b"]);
        assert_eq!(Encoding::jigasi_defaults()[0].name, "opus");
    }

    #[test]
    fn sdes_needs_global_and_protocol_switch() {
        let mut srtp = SrtpConfig {
            enabled: true,
            protocols: vec![EncryptionProtocol {
                name: "SDES".into(),
                priority: 1,
                enabled: true,
            }],
            ..SrtpConfig::default()
        };
        assert!(srtp.sdes_enabled());
        srtp.enabled = false;
        assert!(!srtp.sdes_enabled());
    }
}
