//! Which conference a SIP call belongs to, and what a dial-out INVITE carries.
//!
//! Dial-in (`jigasi-behaviour.md` §1.3): an IVR or PBX puts the room into an INVITE header
//! (default `Jitsi-Conference-Room`), optionally with a password, domain base, tenant, JWT, user
//! id and a visitor flag. [`dial_in_target`] turns those headers into a [`DialInTarget`]; without
//! a usable room it falls back to `DEFAULT_JVB_ROOM_NAME`, and without that the call is refused
//! with 486 Busy Here, as Jigasi does ("No JVB room name provided").
//!
//! Dial-out (§1.4): [`dial_out_headers`] lists the extra INVITE headers in Jigasi's order and
//! [`dial_out_request_uri`] builds the Request-URI from `OUTBOUND_PREFIX` and the destination.

use crate::validate::grammar;

/// The INVITE header names a dial-in call is read from. Each is renamable per SIP account
/// (`JITSI_MEET_ROOM_HEADER_NAME` etc., `jigasi-behaviour.md` §2.4); the defaults are Jigasi's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNames {
    /// Room name or room JID. Default `Jitsi-Conference-Room` (docker-jitsi-meet uses
    /// `X-Room-Name`).
    pub room: String,
    /// MUC password. Default `Jitsi-Conference-Room-Pass`.
    pub room_password: String,
    /// Overrides the account's `DOMAIN_BASE`. Default `Jitsi-Conference-Domain-Base`.
    pub domain_base: String,
    /// Tenant (multi-tenant deployments). Default `Jitsi-Conference-Domain-Tenant`.
    pub domain_tenant: String,
    /// JWT for the per-call XMPP login. Default `Jitsi-Auth-Token`.
    pub auth_token: String,
    /// XMPP user id to use with the token. Default `Jitsi-User-ID-Token`.
    pub user_id: String,
    /// `true` asks to join as a visitor. Default `Jitsi-Visitor`.
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
            user_id: "Jitsi-User-ID-Token".into(),
            visitor: "Jitsi-Visitor".into(),
        }
    }
}

/// Account and global settings that shape the dial-in target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialInConfig {
    /// Header names to read.
    pub header_names: HeaderNames,
    /// The SIP account's `DOMAIN_BASE`, used unless the domain-base header overrides it.
    pub domain_base: Option<String>,
    /// The account's `MUC_DOMAIN_PREFIX` list. Default `conference`, `muc`.
    pub muc_domain_prefixes: Vec<String>,
    /// `org.jitsi.jigasi.MUC_SERVICE_ADDRESS`: appended as `@service` to bare room names.
    pub muc_service_address: Option<String>,
    /// `org.jitsi.jigasi.DEFAULT_JVB_ROOM_NAME`: the room for INVITEs without a usable one.
    pub default_room: Option<String>,
}

impl Default for DialInConfig {
    fn default() -> Self {
        Self {
            header_names: HeaderNames::default(),
            domain_base: None,
            muc_domain_prefixes: vec!["conference".into(), "muc".into()],
            muc_service_address: None,
            default_room: None,
        }
    }
}

/// Where the room of a [`DialInTarget`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomSource {
    /// The room header.
    Header,
    /// `DEFAULT_JVB_ROOM_NAME`, because the INVITE had no room header.
    Default,
    /// `DEFAULT_JVB_ROOM_NAME`, because the room header held no valid room JID (Jigasi logs the
    /// bad value and its 1 s wait then falls back to the default room). Carries the bad value.
    DefaultAfterMalformedHeader(String),
}

/// The conference a dial-in call joins, and how to log in to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialInTarget {
    /// Bare room JID, `room@conference.[tenant.]domain`, lowercased as jxmpp's stringprep does.
    pub room_jid: String,
    /// The local part of [`DialInTarget::room_jid`] (the conference name).
    pub room_name: String,
    /// The domain part of [`DialInTarget::room_jid`] (the MUC service).
    pub muc_domain: String,
    /// The XMPP domain without MUC prefix and tenant (Jigasi's `roomJidDomain`), e.g.
    /// `example.com` for `room@conference.tenant.example.com`.
    pub room_jid_domain: Option<String>,
    /// The deployment domain (header override, else the account's `DOMAIN_BASE`).
    pub domain_base: Option<String>,
    /// The tenant: from its header, or derived from the room JID.
    pub tenant: Option<String>,
    /// MUC password.
    pub password: Option<String>,
    /// JWT for the XMPP login (appended to the BOSH URL as `&token=`).
    pub auth_token: Option<String>,
    /// XMPP user id to use with the token.
    pub user_id: Option<String>,
    /// Join as a visitor (header value `true`, any case, like Java's `Boolean.parseBoolean`).
    pub visitor: bool,
    /// Where the room came from.
    pub source: RoomSource,
}

/// Why a dial-in call has no conference. Every case is answered 486 Busy Here, as in Jigasi.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// No room header and no `DEFAULT_JVB_ROOM_NAME` (peer's INVITE lacks what we need).
    #[error("no JVB room name provided")]
    NoRoom,
    /// The room header was not a valid room JID and there is no default room; or the default
    /// room itself is invalid (then the value is the configured one).
    #[error("malformed JVB room name {room:?}")]
    MalformedRoom {
        /// The offending value.
        room: String,
    },
}

impl RoomError {
    /// The SIP answer: 486 Busy Here (`jigasi-behaviour.md` §1.3 step 4).
    pub fn sip_status(&self) -> u16 {
        486
    }

    /// Reason text Jigasi uses with the 486.
    pub fn reason(&self) -> &'static str {
        "No JVB room name provided"
    }
}

/// Reads the dial-in target from INVITE headers (names compared case-insensitively, first
/// occurrence wins), per `jigasi-behaviour.md` §1.3.
///
/// Jigasi applies the password, domain, tenant, token, user-id and visitor headers only when the
/// room itself came from the header; with the default room they are ignored, and so they are
/// here.
pub fn dial_in_target(
    headers: &[(String, String)],
    config: &DialInConfig,
) -> Result<DialInTarget, RoomError> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    };
    let names = &config.header_names;
    let mut malformed = None;
    if let Some(room) = get(&names.room) {
        match room_jid(&room, config.muc_service_address.as_deref()) {
            Some((local, domain)) => {
                let domain_base = get(&names.domain_base)
                    .filter(|d| !d.is_empty())
                    .or_else(|| config.domain_base.clone());
                let tenant = get(&names.domain_tenant).filter(|t| !t.is_empty());
                let (room_jid_domain, tenant) = split_muc_domain(
                    &domain,
                    domain_base.as_deref(),
                    tenant,
                    &config.muc_domain_prefixes,
                );
                return Ok(DialInTarget {
                    room_jid: format!("{local}@{domain}"),
                    room_name: local,
                    muc_domain: domain,
                    room_jid_domain,
                    domain_base,
                    tenant,
                    password: get(&names.room_password),
                    auth_token: get(&names.auth_token),
                    user_id: get(&names.user_id),
                    visitor: get(&names.visitor).is_some_and(|v| v.eq_ignore_ascii_case("true")),
                    source: RoomSource::Header,
                });
            }
            None => malformed = Some(room),
        }
    }
    let Some(default_room) = &config.default_room else {
        return Err(match malformed {
            Some(room) => RoomError::MalformedRoom { room },
            None => RoomError::NoRoom,
        });
    };
    let (local, domain) = room_jid(default_room, config.muc_service_address.as_deref())
        .ok_or_else(|| RoomError::MalformedRoom {
            room: default_room.clone(),
        })?;
    let (room_jid_domain, tenant) = split_muc_domain(
        &domain,
        config.domain_base.as_deref(),
        None,
        &config.muc_domain_prefixes,
    );
    Ok(DialInTarget {
        room_jid: format!("{local}@{domain}"),
        room_name: local,
        muc_domain: domain,
        room_jid_domain,
        domain_base: config.domain_base.clone(),
        tenant,
        password: None,
        auth_token: None,
        user_id: None,
        visitor: false,
        source: match malformed {
            Some(room) => RoomSource::DefaultAfterMalformedHeader(room),
            None => RoomSource::Default,
        },
    })
}

/// `room` or `room@service` → `(local, domain)`, lowercased, or `None` when it is not a valid
/// bare JID (RFC 7622: non-empty local part without `"&'/:<>@` or whitespace, a plausible
/// domain, no resource). A bare name gets `@` + the MUC service when one is configured
/// (Jigasi's `CallContext.setRoomName`).
fn room_jid(room: &str, muc_service: Option<&str>) -> Option<(String, String)> {
    let room = room.trim();
    let full = match (room.contains('@'), muc_service) {
        (false, Some(service)) => format!("{room}@{}", service.trim()),
        _ => room.to_owned(),
    };
    let (local, domain) = full.split_once('@')?;
    let local_ok = !local.is_empty()
        && local.len() <= 1023
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\"&'/:<>@".contains(c));
    let domain_ok = !domain.is_empty()
        && domain.len() <= 1023
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.' || c == '_');
    (local_ok && domain_ok).then(|| (local.to_lowercase(), domain.to_lowercase()))
}

/// Jigasi's `CallContext.update()`: strip a MUC prefix (`conference.`) from the room's domain,
/// then split off the tenant, either the given one or the labels between the prefix and the
/// domain base. Returns `(room_jid_domain, tenant)`.
///
/// Unlike Jigasi, a prefix or tenant must be followed by a dot to match (Jigasi's bare
/// `startsWith` would strip `conference` from `conferences.example.com`).
fn split_muc_domain(
    muc_domain: &str,
    domain_base: Option<&str>,
    tenant: Option<String>,
    prefixes: &[String],
) -> (Option<String>, Option<String>) {
    let mut room_jid_domain = None;
    let mut tenant = tenant;
    for prefix in prefixes.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let Some(stripped) = muc_domain
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('.'))
        else {
            continue;
        };
        let after_tenant = tenant
            .as_deref()
            .and_then(|t| stripped.strip_prefix(t))
            .and_then(|rest| rest.strip_prefix('.'));
        let before_base = domain_base
            .and_then(|base| stripped.strip_suffix(base))
            .and_then(|rest| rest.strip_suffix('.'))
            .filter(|t| !t.is_empty());
        if let Some(rest) = after_tenant {
            room_jid_domain = Some(rest.to_owned());
        } else if let (Some(base), Some(derived)) = (domain_base, before_base) {
            room_jid_domain = Some(base.to_owned());
            tenant = Some(derived.to_owned());
        } else {
            room_jid_domain = Some(stripped.to_owned());
        }
    }
    (
        room_jid_domain.or_else(|| domain_base.map(str::to_owned)),
        tenant,
    )
}

/// Header that tells the far end which way a call goes (`JigasiCallDirection`).
pub const CALL_DIRECTION_HEADER: &str = "JigasiCallDirection";

/// Rayo dial headers that Jigasi consumes itself and never forwards (the password least of all).
const CONSUMED_DIAL_HEADERS: [&str; 2] = ["JvbRoomName", "JvbRoomPassword"];

/// Why a dial-out request cannot become an INVITE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialOutError {
    /// A forwarded Rayo header is not a SIP header: its name is not a token, or its value has
    /// CR, LF or NUL (header injection). The requester is to blame.
    #[error("dial header {name:?} cannot be sent in SIP")]
    BadHeader {
        /// The header's name.
        name: String,
    },
    /// The destination does not make a valid SIP Request-URI (RFC 3261 §19.1).
    #[error("dial destination {destination:?} is not a valid SIP URI")]
    BadDestination {
        /// The destination as given.
        destination: String,
    },
}

/// The extra INVITE headers of a dial-out call, in Jigasi's order (`jigasi-behaviour.md` §1.4
/// step 5): the room header (name from `JITSI_MEET_ROOM_HEADER_NAME`) with the room JID, every
/// forwarded Rayo dial header, then `JigasiCallDirection: out`.
///
/// Duplicates (case-insensitive) keep their first value, as Jigasi's `addExtraHeader` does; a
/// forwarded `JigasiCallDirection` therefore wins over ours. Forwarded copies of the room header
/// and the Rayo `JvbRoomName`/`JvbRoomPassword` are left out.
pub fn dial_out_headers(
    room_header_name: &str,
    room_jid: &str,
    forwarded: &[(String, String)],
) -> Result<Vec<(String, String)>, DialOutError> {
    let mut out = vec![(room_header_name.to_owned(), room_jid.to_owned())];
    let forwarded_direction = (CALL_DIRECTION_HEADER.to_owned(), "out".to_owned());
    for (name, value) in forwarded
        .iter()
        .chain(std::iter::once(&forwarded_direction))
    {
        let name = name.trim();
        if !grammar::is_token(name.as_bytes())
            || value.chars().any(|c| matches!(c, '\r' | '\n' | '\0'))
        {
            return Err(DialOutError::BadHeader {
                name: name.to_owned(),
            });
        }
        let skip = CONSUMED_DIAL_HEADERS
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name))
            || out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        if !skip {
            out.push((name.to_owned(), value.trim().to_owned()));
        }
    }
    Ok(out)
}

/// A dial-out Request-URI and the transport it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialOutUri {
    /// The URI to put in the INVITE's Request-URI and To.
    pub uri: String,
    /// `sips:` or `;transport=tls`: the call must go over TLS (RFC 3261 §19.1.2, §26.2.2).
    pub secure: bool,
    /// The `transport` URI parameter, lowercased, if any.
    pub transport: Option<String>,
}

/// Builds the dial-out Request-URI as Jigasi does (`OUTBOUND_PREFIX` + destination, `tel:` and
/// `callto:` read as `sip:`, `@` + the registrar domain when there is no host, `sip:` added when
/// there is no scheme), `jigasi-behaviour.md` §1.4 step 5.
///
/// Two deliberate differences from Jigasi's string concatenation: the prefix goes before the
/// user part even when the destination has a scheme (`9` + `sip:123@pbx` → `sip:9123@pbx`,
/// where Jigasi built `sip:9sip:123@pbx`), and the registrar domain goes before URI parameters
/// (`123;transport=tcp` → `sip:123@domain;transport=tcp`, where Jigasi put it after them and
/// lost the parameter). `sips:` and `;transport=` are kept.
pub fn dial_out_request_uri(
    destination: &str,
    outbound_prefix: &str,
    registrar_domain: Option<&str>,
) -> Result<DialOutUri, DialOutError> {
    let bad = || DialOutError::BadDestination {
        destination: destination.to_owned(),
    };
    let trimmed = destination.trim();
    let lower = trimmed.to_ascii_lowercase();
    let (scheme, rest) = if lower.starts_with("sips:") {
        ("sips", trimmed.get(5..).ok_or_else(bad)?)
    } else if lower.starts_with("sip:") || lower.starts_with("tel:") {
        ("sip", trimmed.get(4..).ok_or_else(bad)?)
    } else if lower.starts_with("callto:") {
        ("sip", trimmed.get(7..).ok_or_else(bad)?)
    } else {
        ("sip", trimmed)
    };
    if rest.is_empty() {
        return Err(bad());
    }
    let uri = match (rest.contains('@'), registrar_domain) {
        (true, _) | (false, None) => format!("{scheme}:{outbound_prefix}{rest}"),
        (false, Some(domain)) => {
            let split = rest.find([';', '?']).unwrap_or(rest.len());
            let (user, params) = rest.split_at(split);
            format!("{scheme}:{outbound_prefix}{user}@{}{params}", domain.trim())
        }
    };
    if grammar::uri(uri.as_bytes(), false).is_err() {
        return Err(bad());
    }
    let transport = uri
        .split(['?'])
        .next()
        .unwrap_or_default()
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(name, _)| name.eq_ignore_ascii_case("transport"))
        .map(|(_, value)| value.to_ascii_lowercase());
    Ok(DialOutUri {
        secure: scheme == "sips" || transport.as_deref() == Some("tls"),
        transport,
        uri,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn config() -> DialInConfig {
        DialInConfig {
            domain_base: Some("meet.example.com".into()),
            ..DialInConfig::default()
        }
    }

    /// (headers, muc service, default room) → (room_jid, room_jid_domain, tenant, source)
    #[test]
    fn room_table() {
        type Row<'a> = (
            &'a [(&'a str, &'a str)],
            Option<&'a str>,
            Option<&'a str>,
            (&'a str, Option<&'a str>, Option<&'a str>, RoomSource),
        );
        let table: [Row<'_>; 9] = [
            (
                &[("Jitsi-Conference-Room", "room1@conference.meet.example.com")],
                None,
                None,
                (
                    "room1@conference.meet.example.com",
                    Some("meet.example.com"),
                    None,
                    RoomSource::Header,
                ),
            ),
            // Tenant derived from the JID: labels between the prefix and the domain base.
            (
                &[(
                    "jitsi-conference-room",
                    "Room2@conference.acme.meet.example.com",
                )],
                None,
                None,
                (
                    "room2@conference.acme.meet.example.com",
                    Some("meet.example.com"),
                    Some("acme"),
                    RoomSource::Header,
                ),
            ),
            // Tenant given by header is stripped after the prefix.
            (
                &[
                    ("Jitsi-Conference-Room", "r@muc.acme.other.org"),
                    ("Jitsi-Conference-Domain-Tenant", "acme"),
                ],
                None,
                None,
                (
                    "r@muc.acme.other.org",
                    Some("other.org"),
                    Some("acme"),
                    RoomSource::Header,
                ),
            ),
            // Bare room name completed with the MUC service.
            (
                &[("Jitsi-Conference-Room", "daily")],
                Some("conference.meet.example.com"),
                None,
                (
                    "daily@conference.meet.example.com",
                    Some("meet.example.com"),
                    None,
                    RoomSource::Header,
                ),
            ),
            // No MUC prefix matches: Jigasi falls back to the domain base.
            (
                &[("Jitsi-Conference-Room", "r@rooms.example.net")],
                None,
                None,
                (
                    "r@rooms.example.net",
                    Some("meet.example.com"),
                    None,
                    RoomSource::Header,
                ),
            ),
            // "conferences." is not the "conference" prefix.
            (
                &[("Jitsi-Conference-Room", "r@conferences.meet.example.com")],
                None,
                None,
                (
                    "r@conferences.meet.example.com",
                    Some("meet.example.com"),
                    None,
                    RoomSource::Header,
                ),
            ),
            // No header: default room.
            (
                &[("X-Other", "1")],
                Some("conference.meet.example.com"),
                Some("lobby"),
                (
                    "lobby@conference.meet.example.com",
                    Some("meet.example.com"),
                    None,
                    RoomSource::Default,
                ),
            ),
            // Bad header with a default: Jigasi's wait thread uses the default.
            (
                &[("Jitsi-Conference-Room", "bad room@x")],
                None,
                Some("lobby@conference.meet.example.com"),
                (
                    "lobby@conference.meet.example.com",
                    Some("meet.example.com"),
                    None,
                    RoomSource::DefaultAfterMalformedHeader("bad room@x".into()),
                ),
            ),
            // Empty header value counts as malformed.
            (
                &[("Jitsi-Conference-Room", "")],
                None,
                Some("lobby@muc.meet.example.com"),
                (
                    "lobby@muc.meet.example.com",
                    Some("meet.example.com"),
                    None,
                    RoomSource::DefaultAfterMalformedHeader(String::new()),
                ),
            ),
        ];
        for (list, service, default_room, (jid, domain, tenant, source)) in table {
            let cfg = DialInConfig {
                muc_service_address: service.map(str::to_owned),
                default_room: default_room.map(str::to_owned),
                ..config()
            };
            let target = dial_in_target(&headers(list), &cfg).unwrap();
            assert_eq!(target.room_jid, jid, "{list:?}");
            assert_eq!(target.room_jid_domain.as_deref(), domain, "{list:?}");
            assert_eq!(target.tenant.as_deref(), tenant, "{list:?}");
            assert_eq!(target.source, source, "{list:?}");
        }
    }

    #[test]
    fn all_headers_are_read_with_custom_names() {
        let cfg = DialInConfig {
            header_names: HeaderNames {
                room: "X-Room-Name".into(),
                ..HeaderNames::default()
            },
            ..config()
        };
        let list = headers(&[
            ("x-room-name", " room@conference.meet.example.com "),
            ("Jitsi-Conference-Room-Pass", "s3cret"),
            ("Jitsi-Conference-Domain-Base", "other.example.org"),
            ("Jitsi-Auth-Token", "eyJ.token"),
            ("Jitsi-User-ID-Token", "user@example.org"),
            ("Jitsi-Visitor", "TRUE"),
        ]);
        let target = dial_in_target(&list, &cfg).unwrap();
        assert_eq!(target.room_name, "room");
        assert_eq!(target.muc_domain, "conference.meet.example.com");
        assert_eq!(target.password.as_deref(), Some("s3cret"));
        assert_eq!(target.domain_base.as_deref(), Some("other.example.org"));
        // The header's domain base does not match the JID: the stripped MUC domain is used.
        assert_eq!(target.room_jid_domain.as_deref(), Some("meet.example.com"));
        assert_eq!(target.auth_token.as_deref(), Some("eyJ.token"));
        assert_eq!(target.user_id.as_deref(), Some("user@example.org"));
        assert!(target.visitor);
        let not_visitor = headers(&[
            ("X-Room-Name", "room@conference.meet.example.com"),
            ("Jitsi-Visitor", "yes"),
        ]);
        assert!(!dial_in_target(&not_visitor, &cfg).unwrap().visitor);
    }

    #[test]
    fn default_room_ignores_the_other_headers() {
        let cfg = DialInConfig {
            default_room: Some("lobby@conference.meet.example.com".into()),
            ..config()
        };
        let list = headers(&[
            ("Jitsi-Conference-Room-Pass", "x"),
            ("Jitsi-Visitor", "true"),
        ]);
        let target = dial_in_target(&list, &cfg).unwrap();
        assert_eq!(target.password, None);
        assert!(!target.visitor);
    }

    #[test]
    fn errors_map_to_486() {
        type Row<'a> = (
            &'a [(&'a str, &'a str)],
            Option<&'a str>,
            Option<&'a str>,
            RoomError,
        );
        let table: [Row<'_>; 5] = [
            (&[], None, None, RoomError::NoRoom),
            (&[("X", "y")], Some("conference.x"), None, RoomError::NoRoom),
            // Bare name without a MUC service is no JID.
            (
                &[("Jitsi-Conference-Room", "room")],
                None,
                None,
                RoomError::MalformedRoom {
                    room: "room".into(),
                },
            ),
            (
                &[("Jitsi-Conference-Room", "a@b@c")],
                None,
                None,
                RoomError::MalformedRoom {
                    room: "a@b@c".into(),
                },
            ),
            // A broken default room is an error too.
            (
                &[],
                None,
                Some("room/with/resource@x"),
                RoomError::MalformedRoom {
                    room: "room/with/resource@x".into(),
                },
            ),
        ];
        for (list, service, default_room, expected) in table {
            let cfg = DialInConfig {
                muc_service_address: service.map(str::to_owned),
                default_room: default_room.map(str::to_owned),
                ..config()
            };
            let err = dial_in_target(&headers(list), &cfg).unwrap_err();
            assert_eq!(err, expected);
            assert_eq!(err.sip_status(), 486);
            assert_eq!(err.reason(), "No JVB room name provided");
        }
    }

    #[test]
    fn jid_validation() {
        assert!(room_jid("r@conference.x.org", None).is_some());
        for bad in [
            "@x", "r@", "r@x..y", "r@.x", "r@x/res", "a b@x", "r<>@x", "r@x y",
        ] {
            assert_eq!(room_jid(bad, None), None, "{bad}");
        }
    }

    #[test]
    fn dial_out_headers_in_jigasi_order() {
        let forwarded = headers(&[
            ("X-Caller", "+15551234"),
            ("JvbRoomName", "room@conference.x"),
            ("JvbRoomPassword", "secret"),
            ("x-caller", "dup"),
            ("jitsi-conference-room", "other@conference.x"),
        ]);
        let out =
            dial_out_headers("Jitsi-Conference-Room", "room@conference.x", &forwarded).unwrap();
        assert_eq!(
            out,
            headers(&[
                ("Jitsi-Conference-Room", "room@conference.x"),
                ("X-Caller", "+15551234"),
                ("JigasiCallDirection", "out"),
            ])
        );
        let own = headers(&[("JigasiCallDirection", "custom")]);
        let out = dial_out_headers("X-Room-Name", "r@c.x", &own).unwrap();
        assert_eq!(
            out,
            headers(&[("X-Room-Name", "r@c.x"), ("JigasiCallDirection", "custom")])
        );
    }

    #[test]
    fn dial_out_headers_refuse_injection() {
        for (name, value) in [
            ("X-A", "v\r\nVia: evil"),
            ("Bad Name", "v"),
            ("X-B", "a\0b"),
            ("", "v"),
        ] {
            let err = dial_out_headers("R", "r@c.x", &headers(&[(name, value)])).unwrap_err();
            assert_eq!(
                err,
                DialOutError::BadHeader {
                    name: name.trim().to_owned()
                }
            );
        }
    }

    #[test]
    fn request_uri_table() {
        // (destination, prefix, registrar) → (uri, secure, transport)
        type Row<'a> = (
            &'a str,
            &'a str,
            Option<&'a str>,
            &'a str,
            bool,
            Option<&'a str>,
        );
        let table: [Row<'_>; 10] = [
            (
                "+15551234567",
                "",
                Some("sip.example.com"),
                "sip:+15551234567@sip.example.com",
                false,
                None,
            ),
            (
                "5551234",
                "9",
                Some("pbx.local"),
                "sip:95551234@pbx.local",
                false,
                None,
            ),
            (
                "alice@pbx.example.com",
                "",
                Some("x"),
                "sip:alice@pbx.example.com",
                false,
                None,
            ),
            (
                "sip:bob@pbx.example.com:5080",
                "",
                None,
                "sip:bob@pbx.example.com:5080",
                false,
                None,
            ),
            (
                "sips:bob@pbx.example.com",
                "",
                None,
                "sips:bob@pbx.example.com",
                true,
                None,
            ),
            (
                "tel:+4930123",
                "",
                Some("gw.example.com"),
                "sip:+4930123@gw.example.com",
                false,
                None,
            ),
            (
                "123;transport=TCP",
                "",
                Some("pbx.example.com"),
                "sip:123@pbx.example.com;transport=TCP",
                false,
                Some("tcp"),
            ),
            (
                "sip:123@pbx.example.com;transport=tls",
                "0",
                None,
                "sip:0123@pbx.example.com;transport=tls",
                true,
                Some("tls"),
            ),
            (
                "  callto:777  ",
                "",
                Some("d.example"),
                "sip:777@d.example",
                false,
                None,
            ),
            // Registrar-less and no host: the destination is the host, as in Jigasi.
            (
                "pbx.example.com",
                "",
                None,
                "sip:pbx.example.com",
                false,
                None,
            ),
        ];
        for (destination, prefix, registrar, uri, secure, transport) in table {
            let got = dial_out_request_uri(destination, prefix, registrar).unwrap();
            assert_eq!(got.uri, uri, "{destination}");
            assert_eq!(got.secure, secure, "{destination}");
            assert_eq!(got.transport.as_deref(), transport, "{destination}");
        }
    }

    #[test]
    fn bad_destinations() {
        for destination in [
            "",
            "sip:",
            "a b@host",
            "x@host?Route=%3Csip:evil%3E",
            "user@ho st",
            "sip:<x>@y",
        ] {
            assert_eq!(
                dial_out_request_uri(destination, "", Some("example.com")),
                Err(DialOutError::BadDestination {
                    destination: destination.to_owned()
                }),
                "{destination}"
            );
        }
    }
}
