//! Jigasi's `sip-communicator.properties` (and the `jigasi.conf` HOCON next to it) into
//! [`Config`].
//!
//! The file is read as ISO-8859-1 with `\uXXXX` escapes, like Java's `Properties.load`. A key given
//! twice takes the later value (as in Java) with a warning. Values are trimmed; an empty value
//! counts as unset (Jigasi then falls back to the default). Unlike Jigasi, a malformed value is an
//! error instead of a silent fallback.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use jigasi_types::Secret;

use crate::cli::CliArgs;
use crate::error::ConfigError;
use crate::hocon;
use crate::keys::{
    self, CALL_XMPP_PREFIX, JABBER_PREFIX, JIGASI_PREFIX, SIP_PREFIX, Scope, Status, When,
};
use crate::model::{
    BreweryAccount, CallXmppConfig, Config, DtmfMethod, Encoding, EncryptionProtocol, HeaderNames,
    HostPort, JigasiConfig, KeepAlive, KeepAliveMethod, LoggingConfig, MediaConfig, RestConfig,
    SavpOption, SipAccount, SipStackConfig, SrtpConfig, TlsConfig, comma_list,
    default_muc_prefixes, parse_port,
};
use crate::{LoadReport, Loaded, NotYetSupported, UnusedKey};

/// Loads `path` (an existing `sip-communicator.properties`).
///
/// `args` supplies the port range, `--domain`/`--host` defaults, `--logdir` and
/// `--configwritable`; `cwd` resolves a relative `-Dconfig.file=` found in `env["JAVA_SYS_PROPS"]`.
pub fn load(
    path: &Path,
    args: &CliArgs,
    cwd: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Loaded, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut report = LoadReport::default();
    let props = Props::parse(path, &bytes, &mut report)?;
    let mut loader = Loader {
        props: &props,
        args,
        report,
        inactive_accounts: BTreeMap::new(),
    };
    let mut config = loader.config()?;
    loader.read_hocon(&mut config, cwd, env)?;
    loader.classify_keys(&config);
    Ok(Loaded {
        config,
        report: loader.report,
    })
}

/// Reads one brewery account given as Jigasi's account properties without the
/// `net.java.sip.communicator.impl.protocol.jabber.<id>.` prefix, as in the JSON body of
/// `POST /configure/call-control-muc/add` (jigasi-behaviour.md §1.15, §2.5): `PASSWORD` is plain
/// text here, not base64. The rules are those of the properties file, except that `BREWERY` is
/// required (an account without it would not be a control account) and a disabled account is
/// refused. Errors name the full property key; `--host` / `--domain` defaults come from `args`.
pub fn brewery_account_from_properties(
    id: &str,
    properties: &BTreeMap<String, String>,
    args: &CliArgs,
) -> Result<BreweryAccount, ConfigError> {
    let path = Path::new("request body");
    let key = |name: &str| format!("{JABBER_PREFIX}{id}.{name}");
    if id.is_empty() || id.contains('.') {
        return Err(ConfigError::InvalidProperty {
            path: path.to_path_buf(),
            line: 0,
            key: "id".into(),
            value: id.to_owned(),
            expected: "a non-empty account id without dots".into(),
        });
    }
    let mut map = BTreeMap::new();
    let mut order = vec![format!("{JABBER_PREFIX}{id}")];
    map.insert(
        order[0].clone(),
        Entry {
            value: id.to_owned(),
            line: 0,
        },
    );
    for (name, value) in properties {
        let value = if name == "PASSWORD" {
            base64::engine::general_purpose::STANDARD.encode(value)
        } else {
            value.clone()
        };
        order.push(key(name));
        map.insert(key(name), Entry { value, line: 0 });
    }
    let props = Props { path, map, order };
    for required in ["BREWERY", "USER_ID", "PASSWORD"] {
        if props.entry(&key(required))?.is_none() {
            return Err(ConfigError::MissingProperty {
                path: path.to_path_buf(),
                key: key(required),
                expected: match required {
                    "BREWERY" => {
                        "the brewery MUC JID, e.g. JigasiBrewery@internal.auth.meet.example.com"
                    }
                    "USER_ID" => {
                        "the bare JID of the control account, e.g. jigasi@auth.meet.example.com"
                    }
                    _ => "the account password (plain text in the request)",
                },
            });
        }
    }
    if props.bool(&key("IS_ACCOUNT_DISABLED"), false)? {
        return Err(props.invalid(
            &key("IS_ACCOUNT_DISABLED"),
            "true",
            0,
            "false: a disabled account cannot be added",
        ));
    }
    let mut loader = Loader {
        props: &props,
        args,
        report: LoadReport::default(),
        inactive_accounts: BTreeMap::new(),
    };
    let account = loader.breweries()?.into_iter().next();
    account.ok_or_else(|| ConfigError::MissingProperty {
        path: path.to_path_buf(),
        key: key("BREWERY"),
        expected: "the brewery MUC JID",
    })
}

/// One property with the line it came from.
#[derive(Debug)]
struct Entry {
    value: String,
    line: usize,
}

/// The parsed file: key → last value, plus first-appearance order for reporting.
struct Props<'a> {
    path: &'a Path,
    map: BTreeMap<String, Entry>,
    order: Vec<String>,
}

impl<'a> Props<'a> {
    fn parse(path: &'a Path, bytes: &[u8], report: &mut LoadReport) -> Result<Self, ConfigError> {
        let mut map: BTreeMap<String, Entry> = BTreeMap::new();
        let mut order = Vec::new();
        for line in java_properties::PropertiesIter::new(bytes) {
            let line = line.map_err(|e| ConfigError::PropertiesSyntax {
                path: path.to_path_buf(),
                line: e.line_number(),
                message: e.to_string(),
            })?;
            let number = line.line_number();
            let java_properties::LineContent::KVPair(key, value) = line.consume_content() else {
                continue;
            };
            let entry = Entry {
                value,
                line: number,
            };
            match map.insert(key.clone(), entry) {
                Some(old) => report.warnings.push(format!(
                    "{}:{number}: {key} is set again; this value replaces the one on line {}",
                    path.display(),
                    old.line
                )),
                None => order.push(key),
            }
        }
        Ok(Self { path, map, order })
    }

    /// The trimmed value and its line; `None` when missing or empty. Rejects placeholders.
    fn entry(&self, key: &str) -> Result<Option<(&str, usize)>, ConfigError> {
        let Some(entry) = self.map.get(key) else {
            return Ok(None);
        };
        let value = entry.value.trim();
        if let Some(placeholder) = find_placeholder(value) {
            return Err(ConfigError::Placeholder {
                path: self.path.to_path_buf(),
                line: entry.line,
                key: key.to_owned(),
                placeholder: placeholder.to_owned(),
            });
        }
        Ok((!value.is_empty()).then_some((value, entry.line)))
    }

    fn invalid(&self, key: &str, value: &str, line: usize, expected: &str) -> ConfigError {
        ConfigError::InvalidProperty {
            path: self.path.to_path_buf(),
            line,
            key: key.to_owned(),
            value: value.to_owned(),
            expected: expected.to_owned(),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.entry(key)?.map(|(v, _)| v.to_owned()))
    }

    fn parse_with<T>(
        &self,
        key: &str,
        expected: &str,
        f: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((value, line)) = self.entry(key)? else {
            return Ok(None);
        };
        f(value)
            .map(Some)
            .ok_or_else(|| self.invalid(key, value, line, expected))
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        Ok(self
            .parse_with(key, "true or false", |v| {
                if v.eq_ignore_ascii_case("true") {
                    Some(true)
                } else if v.eq_ignore_ascii_case("false") {
                    Some(false)
                } else {
                    None
                }
            })?
            .unwrap_or(default))
    }

    fn int<T: FromStr>(&self, key: &str, expected: &str) -> Result<Option<T>, ConfigError> {
        self.parse_with(key, expected, |v| v.parse().ok())
    }

    fn port(&self, key: &str) -> Result<Option<u16>, ConfigError> {
        self.parse_with(key, "a port number 1-65535", parse_port)
    }

    fn millis(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        self.int(key, "a whole number of milliseconds")
    }

    fn base64_secret(&self, key: &str) -> Result<Option<Secret<String>>, ConfigError> {
        let Some((value, line)) = self.entry(key)? else {
            return Ok(None);
        };
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        engine
            .decode(value)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(|s| Some(Secret::new(s)))
            .ok_or_else(|| ConfigError::InvalidSecret {
                path: self.path.to_path_buf(),
                line,
                key: key.to_owned(),
                expected: "the base64 encoding of the password (e.g. `echo -n 'pw' | base64`)",
            })
    }
}

/// Builds the [`Config`] and collects the report.
struct Loader<'p, 'a> {
    props: &'p Props<'a>,
    args: &'p CliArgs,
    report: LoadReport,
    /// Declared accounts we do not use, with the reason (their keys are reported as unused).
    inactive_accounts: BTreeMap<(Scope, String), String>,
}

impl Loader<'_, '_> {
    fn config(&mut self) -> Result<Config, ConfigError> {
        let sip_stack = self.sip_stack()?;
        let jigasi = self.jigasi()?;
        let sip = self.sip_account(&sip_stack, jigasi.enable_sip)?;
        let breweries = self.breweries()?;
        let call_xmpp = self.call_xmpp()?;
        let p = self.props;
        let port_range = self.args.port_range();
        crate::check_port_range(&port_range, "from --min-port/--max-port and their defaults")?;
        let media = MediaConfig {
            port_range,
            opus_complexity: p
                .parse_with(
                    "net.java.sip.communicator.impl.neomedia.codec.audio.opus.encoder.COMPLEXITY",
                    "an opus complexity 0-10",
                    |v| v.parse::<u8>().ok().filter(|c| *c <= 10),
                )?
                .unwrap_or(10),
            public_address: None,
        };
        let rest = RestConfig {
            enable_shutdown: p.bool("org.jitsi.jigasi.ENABLE_REST_SHUTDOWN", false)?,
            ..RestConfig::default()
        };
        let tls = TlsConfig {
            dangerous_always_trust: p.bool(
                "net.java.sip.communicator.service.gui.ALWAYS_TRUST_MODE_ENABLED",
                false,
            )?,
        };
        Ok(Config {
            sip,
            sip_stack,
            breweries,
            call_xmpp,
            jigasi,
            media,
            rest,
            tls,
            logging: LoggingConfig {
                log_dir: self.args.log_dir.clone(),
            },
            config_writable: self.args.config_writable,
            properties_path: Some(p.path.to_path_buf()),
            args: self.args.clone(),
        })
    }

    fn sip_stack(&self) -> Result<SipStackConfig, ConfigError> {
        let p = self.props;
        let d = SipStackConfig::default();
        Ok(SipStackConfig {
            clear_port: p
                .port("net.java.sip.communicator.SIP_PREFERRED_CLEAR_PORT")?
                .unwrap_or(d.clear_port),
            secure_port: p
                .port("net.java.sip.communicator.SIP_PREFERRED_SECURE_PORT")?
                .unwrap_or(d.secure_port),
            registration_expiry: p
                .parse_with(
                    "net.java.sip.communicator.impl.protocol.sip.REGISTRATION_EXPIRATION",
                    "a positive number of seconds",
                    |v| v.parse::<u64>().ok().filter(|s| *s > 0),
                )?
                .map_or(d.registration_expiry, Duration::from_secs),
            default_transport: p
                .parse_with(
                    "net.java.sip.communicator.impl.protocol.sip.DEFAULT_TRANSPORT",
                    TRANSPORT_EXPECTED,
                    |v| v.parse().ok(),
                )?
                .unwrap_or(d.default_transport),
            hole_punch_packets: p
                .int(
                    "net.java.sip.communicator.impl.protocol.HOLE_PUNCH_PKT_COUNT",
                    "a packet count (0 or more)",
                )?
                .unwrap_or(d.hole_punch_packets),
        })
    }

    fn jigasi(&mut self) -> Result<JigasiConfig, ConfigError> {
        let p = self.props;
        let d = JigasiConfig::default();
        let k = |name: &str| format!("{JIGASI_PREFIX}{name}");
        let domain = self.args.domain.as_deref();
        let focus_resource = p.string(&k("FOCUS_RESOURCE"))?.unwrap_or(d.focus_resource);
        let mut muc_service_address = p.string(&k("MUC_SERVICE_ADDRESS"))?;
        if muc_service_address.is_none()
            && let Some(domain) = domain
        {
            let derived = format!("conference.{domain}");
            self.report.warnings.push(format!(
                "org.jitsi.jigasi.MUC_SERVICE_ADDRESS not set: using {derived} from --domain"
            ));
            muc_service_address = Some(derived);
        }
        Ok(JigasiConfig {
            enable_sip: p.bool(&k("ENABLE_SIP"), d.enable_sip)?,
            enable_transcription: p.bool(&k("ENABLE_TRANSCRIPTION"), d.enable_transcription)?,
            enable_sip_startmuted: p.bool(&k("ENABLE_SIP_STARTMUTED"), d.enable_sip_startmuted)?,
            enable_sip_visitors: p.bool(&k("ENABLE_SIP_VISITORS"), d.enable_sip_visitors)?,
            default_jvb_room_name: p.string(&k("DEFAULT_JVB_ROOM_NAME"))?,
            muc_service_address,
            bosh_host_override: p
                .parse_with(
                    &k("BOSH_HOST_OVERRIDE"),
                    "domain=host pairs separated by commas",
                    parse_pairs,
                )?
                .unwrap_or_default(),
            jvb_invite_timeout: match p.millis(&k("JVB_INVITE_TIMEOUT"))? {
                None => d.jvb_invite_timeout,
                Some(ms) => positive_millis(ms),
            },
            call_empty_timeout: p
                .parse_with(
                    &k("DEFAULT_CALL_EMPTY_TIMEOUT"),
                    "a whole number of milliseconds (0 or more)",
                    |v| v.parse::<u64>().ok(),
                )?
                .map_or(d.call_empty_timeout, Duration::from_millis),
            muc_join_timeout: p
                .parse_with(
                    &k("MUC_JOIN_TIMEOUT"),
                    "a positive whole number of seconds",
                    |v| v.parse::<u64>().ok().filter(|s| *s > 0),
                )?
                .map_or(d.muc_join_timeout, Duration::from_secs),
            allowed_jid: p.string(&k("ALLOWED_JID"))?,
            focus_address: domain.map(|domain| format!("{focus_resource}.{domain}")),
            focus_resource,
            trusted_domains: p
                .parse_with(
                    &k("TRUSTED_DOMAINS"),
                    "a JSON array of domain strings, e.g. [\"recorder.example.com\"]",
                    parse_json_string_array,
                )?
                .unwrap_or_default(),
            allow_only_jigasis_in_room: p.bool(
                &k("ALLOW_ONLY_JIGASIS_IN_ROOM"),
                d.allow_only_jigasis_in_room,
            )?,
            use_sip_user_as_xmpp_resource: p.bool(
                &k("USE_SIP_USER_AS_XMPP_RESOURCE"),
                d.use_sip_user_as_xmpp_resource,
            )?,
            notify_max_occupants: p.bool(&k("NOTIFY_MAX_OCCUPANTS"), d.notify_max_occupants)?,
            local_region: p.string(&k("LOCAL_REGION"))?,
            stats_id: p.string(&k("STATS_ID"))?,
            disable_ice: p.bool(&k("DISABLE_ICE"), d.disable_ice)?,
            sip_media_dropped_threshold: match p.millis(&k("SIP_MEDIA_DROPPED_THRESHOLD_MS"))? {
                None => d.sip_media_dropped_threshold,
                Some(ms) => positive_millis(ms),
            },
            hangup_sip_on_media_dropped: p.bool(
                &k("HANGUP_SIP_ON_MEDIA_DROPPED"),
                d.hangup_sip_on_media_dropped,
            )?,
            conferences_threshold: p
                .parse_with(
                    &k("CONFERENCES_THRESHOLD"),
                    "a positive whole number of conferences",
                    |v| v.parse::<u32>().ok().filter(|n| *n > 0),
                )?
                .unwrap_or(d.conferences_threshold),
            health_check: crate::model::HealthCheckConfig {
                sip_uri: p.string(&k("HEALTH_CHECK_SIP_URI"))?,
                interval: p
                    .parse_with(
                        &k("HEALTH_CHECK_INTERVAL"),
                        "a positive whole number of milliseconds",
                        |v| v.parse::<u64>().ok().filter(|n| *n > 0),
                    )?
                    .map_or(d.health_check.interval, Duration::from_millis),
                timeout: p
                    .parse_with(
                        &k("HEALTH_CHECK_TIMEOUT"),
                        "a positive whole number of milliseconds",
                        |v| v.parse::<u64>().ok().filter(|n| *n > 0),
                    )?
                    .map_or(d.health_check.timeout, Duration::from_millis),
                debug_enabled: p.bool(
                    &k("HEALTH_CHECK_DEBUG_ENABLED"),
                    d.health_check.debug_enabled,
                )?,
            },
            graceful_shutdown_timeout: match p.parse_with(
                &k("rs.GRACEFUL_SHUTDOWN_TIMEOUT"),
                "a whole number of milliseconds (0 = wait for the calls as long as they last)",
                |v| v.parse::<u64>().ok(),
            )? {
                None => d.graceful_shutdown_timeout,
                Some(0) => None,
                Some(ms) => Some(Duration::from_millis(ms)),
            },
        })
    }

    fn sip_account(
        &mut self,
        stack: &SipStackConfig,
        enable_sip: bool,
    ) -> Result<Option<SipAccount>, ConfigError> {
        let p = self.props;
        let ids = declared_accounts(p, SIP_PREFIX);
        let Some((first, others)) = ids.split_first() else {
            return Ok(None);
        };
        for other in others {
            self.report.warnings.push(format!(
                "SIP account {other} ignored: Jigasi uses only the first declared SIP account ({first})"
            ));
            self.inactive_accounts.insert(
                (Scope::Sip, other.clone()),
                format!("only the first SIP account ({first}) is used"),
            );
        }
        if !enable_sip {
            self.inactive_accounts.insert(
                (Scope::Sip, first.clone()),
                "org.jitsi.jigasi.ENABLE_SIP=false".into(),
            );
            return Ok(None);
        }
        let id = first.clone();
        let k = |name: &str| format!("{SIP_PREFIX}{id}.{name}");
        if p.bool(&k("IS_ACCOUNT_DISABLED"), false)? {
            self.report.warnings.push(format!(
                "SIP account {id} is disabled (IS_ACCOUNT_DISABLED=true)"
            ));
            self.inactive_accounts
                .insert((Scope::Sip, id.clone()), "the account is disabled".into());
            return Ok(None);
        }
        let user_key = k("USER_ID");
        let Some((user_id, user_line)) = p.entry(&user_key)? else {
            return Err(ConfigError::MissingProperty {
                path: p.path.to_path_buf(),
                key: user_key,
                expected: "the SIP user, e.g. jigasi@sip.example.com",
            });
        };
        let (user, user_domain) = split_sip_user(user_id)
            .ok_or_else(|| p.invalid(&user_key, user_id, user_line, "user@domain or user"))?;
        let transport = match p.parse_with(&k("PREFERRED_TRANSPORT"), TRANSPORT_EXPECTED, |v| {
            v.parse().ok()
        })? {
            Some(t) => t,
            None => p
                .parse_with(&k("SERVER_TRANSPORT"), TRANSPORT_EXPECTED, |v| {
                    v.parse().ok()
                })?
                .unwrap_or(stack.default_transport),
        };
        let server_port = p.port(&k("SERVER_PORT"))?;
        let server_address =
            p.parse_with(&k("SERVER_ADDRESS"), "a host name or IP address", |v| {
                HostPort::parse(v, transport.default_port())
            })?;
        let domain = match (&user_domain, &server_address) {
            (Some(d), _) => d.clone(),
            (None, Some(server)) => server.host.clone(),
            (None, None) => String::new(),
        };
        let registrar = match server_address {
            Some(mut server) => {
                if let Some(port) = server_port {
                    server.port = port;
                }
                Some(server)
            }
            None if domain.is_empty() => None,
            None => Some(HostPort::new(
                domain.clone(),
                server_port.unwrap_or(transport.default_port()),
            )),
        };
        let proxy_address =
            p.parse_with(&k("PROXY_ADDRESS"), "a host name or IP address", |v| {
                HostPort::parse(v, 5060)
            })?;
        let proxy_auto_config = p.bool(&k("PROXY_AUTO_CONFIG"), proxy_address.is_none())?;
        let proxy = match proxy_address {
            Some(_) if proxy_auto_config => {
                self.report.warnings.push(format!(
                    "{}: ignored because PROXY_AUTO_CONFIG=true, as in Jigasi",
                    k("PROXY_ADDRESS")
                ));
                None
            }
            Some(mut proxy) => {
                if let Some(port) = p.port(&k("PROXY_PORT"))? {
                    proxy.port = port;
                }
                Some(proxy)
            }
            None => None,
        };
        let method = p
            .parse_with(&k("KEEP_ALIVE_METHOD"), "OPTIONS, CRLF or REGISTER", |v| {
                v.parse().ok()
            })?
            .unwrap_or(KeepAliveMethod::Options);
        let interval = match p.int::<i64>(&k("KEEP_ALIVE_INTERVAL"), "a whole number of seconds")? {
            Some(secs) if secs > 0 => Some(Duration::from_secs(secs.unsigned_abs())),
            Some(_) => None,
            None if method == KeepAliveMethod::Register => Some(Duration::from_secs(25)),
            None => None,
        };
        let encodings = self.encodings(&k(""))?;
        let srtp = self.srtp(&k(""))?;
        let d = HeaderNames::default();
        let headers = HeaderNames {
            room: p
                .string(&k("JITSI_MEET_ROOM_HEADER_NAME"))?
                .unwrap_or(d.room),
            room_password: p
                .string(&k("JITSI_MEET_ROOM_PASS_HEADER_NAME"))?
                .unwrap_or(d.room_password),
            domain_base: p
                .string(&k("JITSI_MEET_DOMAIN_BASE_HEADER_NAME"))?
                .unwrap_or(d.domain_base),
            domain_tenant: p
                .string(&k("JITSI_MEET_DOMAIN_TENANT_HEADER_NAME"))?
                .unwrap_or(d.domain_tenant),
            auth_token: p
                .string(&k("JITSI_AUTH_TOKEN_HEADER_NAME"))?
                .unwrap_or(d.auth_token),
            auth_user_id: p
                .string(&k("JITSI_AUTH_USER_ID_HEADER_NAME"))?
                .unwrap_or(d.auth_user_id),
            visitor: p
                .string(&k("JITSI_MEET_VISITOR_HEADER_NAME"))?
                .unwrap_or(d.visitor),
        };
        Ok(Some(SipAccount {
            account_uid: p.string(&k("ACCOUNT_UID"))?,
            user,
            domain,
            password: p.base64_secret(&k("PASSWORD"))?,
            authorization_name: p.string(&k("AUTHORIZATION_NAME"))?,
            display_name: p.string(&k("DISPLAY_NAME"))?,
            registrar,
            transport,
            proxy,
            proxy_auto_config,
            keep_alive: KeepAlive { method, interval },
            encodings,
            dtmf_method: p
                .parse_with(
                    &k("DTMF_METHOD"),
                    "AUTO_DTMF, RTP_DTMF, SIP_INFO_DTMF or INBAND_DTMF",
                    |v| v.parse::<DtmfMethod>().ok(),
                )?
                .unwrap_or_default(),
            dtmf_minimal_tone_duration: p
                .parse_with(
                    &k("DTMF_MINIMAL_TONE_DURATION"),
                    "a whole number of milliseconds",
                    |v| v.parse::<u64>().ok(),
                )?
                .map_or(Duration::from_millis(70), Duration::from_millis),
            outbound_prefix: p.string(&k("OUTBOUND_PREFIX"))?.unwrap_or_default(),
            headers,
            answer_empty_info: p.bool(&k("JITSI_MEET_ANSWER_EMPTY_INFO"), false)?,
            heartbeat: match p.int::<i64>(&k("HEARTBEAT_SECONDS"), "a whole number of seconds")? {
                Some(secs) if secs > 0 => Some(Duration::from_secs(secs.unsigned_abs())),
                Some(_) | None => None,
            },
            domain_base: self.domain_default(p.string(&k("DOMAIN_BASE"))?, &k("DOMAIN_BASE")),
            muc_domain_prefixes: p
                .string(&k("MUC_DOMAIN_PREFIX"))?
                .map_or_else(default_muc_prefixes, |v| comma_list(&v)),
            prevent_auth_login: p.bool(&k("PREVENT_AUTH_LOGIN"), false)?,
            srtp,
            use_translator: p.bool(&k("USE_TRANSLATOR_IN_CONFERENCE"), false)?,
            id,
        }))
    }

    /// `prefix` ends with the account id and a dot.
    fn encodings(&mut self, prefix: &str) -> Result<Vec<Encoding>, ConfigError> {
        let p = self.props;
        let overridden = p.bool(&format!("{prefix}OVERRIDE_ENCODINGS"), false)?;
        let enc_prefix = format!("{prefix}Encodings.");
        let mut list = Vec::new();
        for (key, entry) in p.map.range(enc_prefix.clone()..) {
            let Some(name) = key.strip_prefix(&enc_prefix) else {
                break;
            };
            let Some(priority) = p.int::<u32>(key, "a priority 0 or more (0 disables)")? else {
                continue;
            };
            let encoding = Encoding::parse_key(name, priority).ok_or_else(|| {
                p.invalid(
                    key,
                    &entry.value,
                    entry.line,
                    "a key Encodings.<name>/<clock rate>",
                )
            })?;
            list.push(encoding);
        }
        if !overridden {
            if !list.is_empty() {
                self.report.warnings.push(format!(
                    "{enc_prefix}* ignored because {prefix}OVERRIDE_ENCODINGS is not true (as in Jigasi); using the default codec list"
                ));
            }
            return Ok(Encoding::jigasi_defaults());
        }
        list.retain(|e| e.priority > 0);
        list.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(list)
    }

    fn srtp(&self, prefix: &str) -> Result<SrtpConfig, ConfigError> {
        let p = self.props;
        let mut protocols: BTreeMap<String, EncryptionProtocol> = BTreeMap::new();
        for (kind, status) in [
            ("ENCRYPTION_PROTOCOL.", false),
            ("ENCRYPTION_PROTOCOL_STATUS.", true),
        ] {
            let key_prefix = format!("{prefix}{kind}");
            for key in p.map.keys() {
                let Some(name) = key.strip_prefix(&key_prefix) else {
                    continue;
                };
                let proto =
                    protocols
                        .entry(name.to_owned())
                        .or_insert_with(|| EncryptionProtocol {
                            name: name.to_owned(),
                            priority: 0,
                            enabled: false,
                        });
                if status {
                    proto.enabled = p.bool(key, false)?;
                } else {
                    proto.priority = p.int(key, "a priority 0 or more")?.unwrap_or(0);
                }
            }
        }
        Ok(SrtpConfig {
            enabled: p.bool(&format!("{prefix}DEFAULT_ENCRYPTION"), false)?,
            savp: p
                .parse_with(
                    &format!("{prefix}SAVP_OPTION"),
                    "0 (off), 1 (mandatory) or 2 (optional)",
                    |v| v.parse().ok().and_then(SavpOption::from_number),
                )?
                .unwrap_or_default(),
            protocols: protocols.into_values().collect(),
            sdes_cipher_suites: p
                .string(&format!("{prefix}SDES_CIPHER_SUITES"))?
                .map(|v| comma_list(&v))
                .unwrap_or_default(),
        })
    }

    fn breweries(&mut self) -> Result<Vec<BreweryAccount>, ConfigError> {
        let p = self.props;
        let mut breweries = Vec::new();
        for id in declared_accounts(p, JABBER_PREFIX) {
            let k = |name: &str| format!("{JABBER_PREFIX}{id}.{name}");
            if p.bool(&k("IS_ACCOUNT_DISABLED"), false)? {
                self.inactive_accounts.insert(
                    (Scope::Jabber, id.clone()),
                    "the account is disabled".into(),
                );
                continue;
            }
            let brewery_room = match (p.string(&k("BREWERY"))?, &self.args.domain) {
                (Some(room), _) => room,
                (None, Some(domain)) => {
                    let room = format!("JigasiBrewery@internal.auth.{domain}");
                    self.report.warnings.push(format!(
                        "XMPP account {id} has no BREWERY: joining {room} (the Jitsi Meet default for --domain={domain})"
                    ));
                    room
                }
                (None, None) => {
                    self.report.warnings.push(format!(
                        "XMPP account {id} has no BREWERY, so it is not a control account and is not connected (as in Jigasi)"
                    ));
                    self.inactive_accounts.insert(
                        (Scope::Jabber, id.clone()),
                        "the account has no BREWERY".into(),
                    );
                    continue;
                }
            };
            let user_key = k("USER_ID");
            let Some((jid, line)) = p.entry(&user_key)? else {
                return Err(ConfigError::MissingProperty {
                    path: p.path.to_path_buf(),
                    key: user_key,
                    expected: "the bare JID of the control account, e.g. jigasi@auth.meet.example.com",
                });
            };
            if !is_bare_jid(jid) {
                return Err(p.invalid(&user_key, jid, line, "a bare JID user@domain"));
            }
            let password_key = k("PASSWORD");
            let Some(password) = p.base64_secret(&password_key)? else {
                return Err(ConfigError::MissingProperty {
                    path: p.path.to_path_buf(),
                    key: password_key,
                    expected: "the base64 encoding of the account password",
                });
            };
            let server = self.xmpp_server(&k(""), &id)?;
            let auto_resource = p.bool(&k("AUTO_GENERATE_RESOURCE"), false)?;
            let resource = p.string(&k("RESOURCE"))?.filter(|_| !auto_resource);
            breweries.push(BreweryAccount {
                account_uid: p.string(&k("ACCOUNT_UID"))?,
                jid: jid.to_owned(),
                password,
                server,
                allow_non_secure: p.bool(&k("ALLOW_NON_SECURE"), false)?,
                brewery_room,
                domain_base: self.domain_default(p.string(&k("DOMAIN_BASE"))?, &k("DOMAIN_BASE")),
                resource,
                ping_interval: self.ping_interval(&k(""))?,
                muc_domain_prefixes: p
                    .string(&k("MUC_DOMAIN_PREFIX"))?
                    .map_or_else(default_muc_prefixes, |v| comma_list(&v)),
                bosh_url_pattern: p.string(&k("BOSH_URL_PATTERN"))?,
                id,
            });
        }
        Ok(breweries)
    }

    /// `SERVER_ADDRESS`/`SERVER_PORT` honoured when `IS_SERVER_OVERRIDDEN=true`, else `--host`.
    fn xmpp_server(&mut self, prefix: &str, what: &str) -> Result<HostPort, ConfigError> {
        let p = self.props;
        let port = p.port(&format!("{prefix}SERVER_PORT"))?.unwrap_or(5222);
        let address_key = format!("{prefix}SERVER_ADDRESS");
        let address = p.parse_with(&address_key, "a host name or IP address", |v| {
            HostPort::parse(v, port)
        })?;
        let overridden = p.bool(&format!("{prefix}IS_SERVER_OVERRIDDEN"), false)?;
        match address {
            Some(server) if overridden => return Ok(server),
            Some(_) => self.report.warnings.push(format!(
                "{address_key} ignored for {what} because IS_SERVER_OVERRIDDEN is not true (as in Jigasi); connecting to --host {}",
                self.args.host()
            )),
            None => {}
        }
        Ok(HostPort::new(self.args.host(), port))
    }

    fn ping_interval(&self, prefix: &str) -> Result<Duration, ConfigError> {
        let p = self.props;
        p.parse_with(
            &format!("{prefix}KEEP_ALIVE_METHOD"),
            "XEP-0199 (the only XMPP keep-alive jigasi-rs supports)",
            |v| v.eq_ignore_ascii_case("XEP-0199").then_some(()),
        )?;
        Ok(p.parse_with(
            &format!("{prefix}KEEP_ALIVE_INTERVAL"),
            "a positive whole number of seconds",
            |v| v.parse::<u64>().ok().filter(|s| *s > 0),
        )?
        .map_or(Duration::from_secs(30), Duration::from_secs))
    }

    fn call_xmpp(&mut self) -> Result<CallXmppConfig, ConfigError> {
        let p = self.props;
        let k = |name: &str| format!("{CALL_XMPP_PREFIX}{name}");
        let user_id = p.string(&k("USER_ID"))?;
        let anonymous = p.bool(&k("ANONYMOUS_AUTH"), true)?;
        if user_id.is_some() && anonymous {
            self.report.warnings.push(format!(
                "{} is set but {} is not false: per-call logins stay anonymous, as in Jigasi",
                k("USER_ID"),
                k("ANONYMOUS_AUTH")
            ));
        }
        let password = p.string(&k("PASS"))?.map(Secret::new);
        Ok(CallXmppConfig {
            server: self.xmpp_server(CALL_XMPP_PREFIX, "per-call connections")?,
            anonymous,
            user_id,
            password,
            allow_non_secure: p.bool(&k("ALLOW_NON_SECURE"), false)?,
            unique_user_id: p.bool(&k("UNIQUE_USER_ID"), false)?,
            bosh_url_pattern: p.string(&k("BOSH_URL_PATTERN"))?,
            domain_base: self.domain_default(p.string(&k("DOMAIN_BASE"))?, &k("DOMAIN_BASE")),
            ping_interval: self.ping_interval(CALL_XMPP_PREFIX)?,
        })
    }

    /// An explicit value, else `--domain` (with a note in the report).
    fn domain_default(&mut self, explicit: Option<String>, key: &str) -> Option<String> {
        if explicit.is_some() {
            return explicit;
        }
        let domain = self.args.domain.clone()?;
        self.report
            .warnings
            .push(format!("{key} not set: using {domain} from --domain"));
        Some(domain)
    }

    fn read_hocon(
        &mut self,
        config: &mut Config,
        cwd: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<(), ConfigError> {
        let p = self.props;
        let legacy_port = p.parse_with(
            "org.jitsi.jigasi.rest.jetty.port",
            "a port number 0-65535, or -1 to disable the REST API",
            parse_rest_port,
        )?;
        let legacy_host = p.parse_with(
            "org.jitsi.jigasi.rest.jetty.host",
            "an IP address to bind to",
            parse_bind_ip,
        )?;
        let mut hocon_port = None;
        let mut hocon_host = None;
        if let Some(path) = self.hocon_path(cwd, env) {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
                path: path.clone(),
                source,
            })?;
            let doc = hocon::parse(&text).map_err(|(line, message)| ConfigError::Hocon {
                path: path.clone(),
                line,
                message,
            })?;
            for (line, warning) in &doc.warnings {
                self.report
                    .warnings
                    .push(format!("{}:{line}: {warning}", path.display()));
            }
            let invalid =
                |entry: &hocon::HoconEntry, expected: &str| ConfigError::InvalidProperty {
                    path: path.clone(),
                    line: entry.line,
                    key: entry.key.clone(),
                    value: entry.value.clone(),
                    expected: expected.to_owned(),
                };
            if let Some(entry) = doc.get("org.jitsi.jigasi.rest.port") {
                let expected = "a port number 0-65535, or -1 to disable the REST API";
                hocon_port =
                    Some(parse_rest_port(&entry.value).ok_or_else(|| invalid(entry, expected))?);
            }
            if let Some(entry) = doc.get("org.jitsi.jigasi.rest.host") {
                hocon_host = Some(
                    parse_bind_ip(&entry.value)
                        .ok_or_else(|| invalid(entry, "an IP address to bind to"))?,
                );
            }
            let mut seen = BTreeSet::new();
            for entry in doc.entries.iter().rev() {
                if !seen.insert(entry.key.clone()) {
                    continue;
                }
                self.report_key(
                    &path,
                    entry.line,
                    &entry.key,
                    Scope::Hocon,
                    &entry.key,
                    &entry.value,
                    false,
                );
            }
        }
        let port = legacy_port.or(hocon_port);
        let host = legacy_host.or(hocon_host);
        if let Some(port) = port {
            config.rest.enabled = port.is_some();
            if let Some(port) = port {
                config.rest.bind.set_port(port);
            }
        }
        if let Some(host) = host {
            config.rest.bind.set_ip(host);
        }
        Ok(())
    }

    /// `-Dconfig.file=` from `JAVA_SYS_PROPS` when given, else `jigasi.conf` beside the
    /// properties file when it exists.
    fn hocon_path(&mut self, cwd: &Path, env: &BTreeMap<String, String>) -> Option<PathBuf> {
        let from_env = env.get("JAVA_SYS_PROPS").and_then(|props| {
            props
                .split_whitespace()
                .find_map(|token| {
                    token
                        .trim_matches(['"', '\''])
                        .strip_prefix("-Dconfig.file=")
                })
                .map(|file| cwd.join(file.trim_matches(['"', '\''])))
        });
        if let Some(path) = from_env {
            if path.is_file() {
                return Some(path);
            }
            self.report.warnings.push(format!(
                "JAVA_SYS_PROPS names -Dconfig.file={}, which does not exist; REST defaults apply",
                path.display()
            ));
            return None;
        }
        let beside = self.props.path.parent()?.join("jigasi.conf");
        beside.is_file().then_some(beside)
    }

    /// Fills the report from every key of the properties file.
    fn classify_keys(&mut self, config: &Config) {
        let p = self.props;
        let sip_ids = declared_accounts(p, SIP_PREFIX);
        let jabber_ids = declared_accounts(p, JABBER_PREFIX);
        for key in &p.order {
            let Some(entry) = p.map.get(key) else {
                continue;
            };
            let (scope, name, account) = scope_of(key, &entry.value, &sip_ids, &jabber_ids);
            if let Some(account) = account {
                if let Some(reason) = self.inactive_accounts.get(&(scope, account.to_owned())) {
                    let reason = reason.clone();
                    self.report.unused_keys.push(UnusedKey {
                        file: p.path.to_path_buf(),
                        line: entry.line,
                        key: key.clone(),
                        reason: Some(reason),
                    });
                    continue;
                }
                if name.is_empty() {
                    continue; // the declaration itself
                }
            }
            let transcription = config.jigasi.enable_transcription;
            self.report_key(
                p.path,
                entry.line,
                key,
                scope,
                name,
                &entry.value,
                transcription,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn report_key(
        &mut self,
        file: &Path,
        line: usize,
        key: &str,
        scope: Scope,
        name: &str,
        value: &str,
        transcription: bool,
    ) {
        let value = value.trim();
        let unused = |reason: Option<String>| UnusedKey {
            file: file.to_path_buf(),
            line,
            key: key.to_owned(),
            reason,
        };
        let Some(spec) = keys::classify(scope, name) else {
            self.report.unused_keys.push(unused(None));
            return;
        };
        match spec.status {
            Status::Used => {}
            Status::Ignored(why) => self.report.unused_keys.push(unused(Some(why.to_owned()))),
            Status::NotYet(when, feature) => {
                let applies = match when {
                    When::Set => !value.is_empty(),
                    When::True => value.eq_ignore_ascii_case("true"),
                    When::TranscriptionEnabled => transcription,
                };
                if applies {
                    self.report.not_yet_supported.push(NotYetSupported {
                        file: file.to_path_buf(),
                        line,
                        key: key.to_owned(),
                        feature: feature.to_owned(),
                    });
                } else if when == When::TranscriptionEnabled {
                    self.report.unused_keys.push(unused(Some(
                        "transcription is off (ENABLE_TRANSCRIPTION is not true)".into(),
                    )));
                }
            }
        }
    }
}

/// Which scope a full key belongs to, its name inside the scope and, for account keys, the
/// account id (an account declaration has an empty name).
fn scope_of<'k>(
    key: &'k str,
    value: &str,
    sip_ids: &[String],
    jabber_ids: &[String],
) -> (Scope, &'k str, Option<&'k str>) {
    if let Some(name) = key.strip_prefix(CALL_XMPP_PREFIX) {
        return (Scope::CallXmpp, name, None);
    }
    if let Some(name) = key.strip_prefix(JIGASI_PREFIX) {
        return (Scope::Jigasi, name, None);
    }
    for (prefix, scope, ids) in [
        (SIP_PREFIX, Scope::Sip, sip_ids),
        (JABBER_PREFIX, Scope::Jabber, jabber_ids),
    ] {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        if rest == value.trim() && ids.iter().any(|id| id == rest) {
            return (scope, "", Some(rest));
        }
        if let Some((id, name)) = rest.split_once('.')
            && ids.iter().any(|known| known == id)
        {
            return (scope, name, Some(id));
        }
    }
    (Scope::Global, key, None)
}

/// Account ids declared by `<prefix><id>=<id>`, in file order.
fn declared_accounts(props: &Props<'_>, prefix: &str) -> Vec<String> {
    props
        .order
        .iter()
        .filter_map(|key| {
            let id = key.strip_prefix(prefix)?;
            let entry = props.map.get(key)?;
            (!id.is_empty() && !id.contains('.') && entry.value.trim() == id).then(|| id.to_owned())
        })
        .collect()
}

/// Finds `<<NAME>>` (upper-case letters, digits, `_`), the Debian installer's placeholders.
fn find_placeholder(value: &str) -> Option<&str> {
    let start = value.find("<<")?;
    let rest = &value[start + 2..];
    let end = rest.find(">>")?;
    let name = &rest[..end];
    (!name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
    .then(|| &value[start..start + 2 + end + 2])
}

/// `user@domain`, `sip:user@domain[:port]` or `user` into user and optional domain.
fn split_sip_user(text: &str) -> Option<(String, Option<String>)> {
    let lower = text.to_ascii_lowercase();
    let text = if lower.starts_with("sips:") {
        &text[5..]
    } else if lower.starts_with("sip:") {
        &text[4..]
    } else {
        text
    };
    let (user, domain) = match text.rsplit_once('@') {
        Some((user, host)) => {
            let host = HostPort::parse(host, 5060)?.host;
            (user, Some(host))
        }
        None => (text, None),
    };
    if user.is_empty() || user.contains(char::is_whitespace) {
        return None;
    }
    Some((user.to_owned(), domain))
}

fn is_bare_jid(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !text.contains('/')
                && !domain.contains('@')
                && !text.contains(char::is_whitespace)
        }
        None => false,
    }
}

fn positive_millis(ms: i64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms.unsigned_abs()))
}

/// `Some(None)` = disabled (-1), `Some(Some(port))` = bind that port (0 = any).
fn parse_rest_port(text: &str) -> Option<Option<u16>> {
    match text.trim() {
        "-1" => Some(None),
        other => other.parse::<u16>().ok().map(Some),
    }
}

fn parse_bind_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    text.trim_matches(['[', ']']).parse().ok()
}

/// `a=b,c=d`.
fn parse_pairs(text: &str) -> Option<BTreeMap<String, String>> {
    comma_list(text)
        .into_iter()
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let (k, v) = (k.trim(), v.trim());
            (!k.is_empty() && !v.is_empty()).then(|| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// A JSON array of strings, e.g. `["a.example.com", "b"]` (escapes `\"`, `\\`, `\/`).
fn parse_json_string_array(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        if chars.next()? != '"' {
            return None;
        }
        let mut item = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    c @ ('"' | '\\' | '/') => item.push(c),
                    _ => return None,
                },
                c => item.push(c),
            }
        }
        out.push(item);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Some(out),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

/// Accepts the transport names.
const TRANSPORT_EXPECTED: &str = "UDP, TCP or TLS";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn placeholders_are_found() {
        assert_eq!(
            find_placeholder("SIP:<<JIGASI_SIPUSER>>"),
            Some("<<JIGASI_SIPUSER>>")
        );
        assert_eq!(
            find_placeholder("conference.<<DOMAIN_BASE>>"),
            Some("<<DOMAIN_BASE>>")
        );
        assert_eq!(find_placeholder("a << b >> c"), None);
        assert_eq!(find_placeholder("plain"), None);
    }

    #[test]
    fn sip_users_split() {
        assert_eq!(
            split_sip_user("jigasi@sip.example.com"),
            Some(("jigasi".into(), Some("sip.example.com".into())))
        );
        assert_eq!(
            split_sip_user("SIP:1001@10.0.0.1:5080"),
            Some(("1001".into(), Some("10.0.0.1".into())))
        );
        assert_eq!(split_sip_user("1001"), Some(("1001".into(), None)));
        assert_eq!(split_sip_user("@host"), None);
    }

    #[test]
    fn json_arrays_and_pairs() {
        assert_eq!(
            parse_json_string_array(r#"[ "a.example.com", "b\"c" ]"#),
            Some(vec!["a.example.com".to_owned(), "b\"c".to_owned()])
        );
        assert_eq!(parse_json_string_array("[]"), Some(vec![]));
        assert_eq!(parse_json_string_array("a.example.com"), None);
        assert_eq!(parse_json_string_array(r#"["a" "b"]"#), None);
        assert_eq!(
            parse_json_string_array(r#"["a",]"#),
            Some(vec!["a".to_owned()])
        );
        let pairs = parse_pairs("meet.example.com=10.0.0.1, b=c").unwrap();
        assert_eq!(
            pairs.get("meet.example.com").map(String::as_str),
            Some("10.0.0.1")
        );
        assert_eq!(parse_pairs("novalue"), None);
    }

    #[test]
    fn rest_values() {
        assert_eq!(parse_rest_port("-1"), Some(None));
        assert_eq!(parse_rest_port("0"), Some(Some(0)));
        assert_eq!(parse_rest_port("99999"), None);
        assert_eq!(
            parse_bind_ip("localhost"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(parse_bind_ip("[::1]"), "::1".parse().ok());
        assert_eq!(parse_bind_ip("example.com"), None);
    }

    #[test]
    fn bare_jids() {
        assert!(is_bare_jid("jigasi@auth.example.com"));
        assert!(!is_bare_jid("jigasi@auth.example.com/res"));
        assert!(!is_bare_jid("auth.example.com"));
        assert!(!is_bare_jid("@auth.example.com"));
    }

    #[test]
    fn every_key_read_by_the_loader_is_classified_used_or_not_yet() {
        // The loader reads keys by name and the report classifies them from the table; this
        // keeps the two in step: a full config with every honoured key yields no "unknown key".
        let text =
            include_str!("../testdata/jigasi-sample/jigasi-home/sip-communicator.properties");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sip-communicator.properties");
        std::fs::write(&path, text).unwrap();
        let loaded = load(&path, &CliArgs::default(), dir.path(), &BTreeMap::new()).unwrap();
        let unknown: Vec<_> = loaded
            .report
            .unused_keys
            .iter()
            .filter(|k| k.reason.is_none())
            .map(|k| k.key.clone())
            .collect();
        assert_eq!(unknown, vec!["org.jitsi.jigasi.EXAMPLE_TYPO".to_owned()]);
    }
}
