//! SDP for the phone leg: a small parser and writer (RFC 4566) and the offer/answer decisions
//! (RFC 3264) in [`offer_answer`].
//!
//! Only what a SIP audio gateway needs is modelled: origin, connection, media lines with their
//! payload types, `rtpmap`, `fmtp`, `ptime`, `maxptime`, direction and SDES `crypto` (RFC 4568).
//! Every other attribute is kept verbatim in [`MediaDescription::other`]. Parsing never panics;
//! malformed text is an [`SdpError`].

pub mod offer_answer;

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use jigasi_types::PayloadType;

pub use offer_answer::{
    Answer, CodecPreference, LocalConfigError, LocalMedia, NegotiatedCodec, Negotiation, Offer,
    OfferAnswerError, PeerIncompatible, PeerMisbehaved, SdesKey, SdpSession, SrtpParams,
    SrtpPolicy, TelephoneEvent, jigasi_default_codecs,
};

/// A parsed session description (RFC 4566 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=` (RFC 4566 §5.2).
    pub origin: Origin,
    /// `s=`; `-` when absent.
    pub session_name: String,
    /// Session-level `c=` (RFC 4566 §5.7).
    pub connection: Option<Connection>,
    /// Session-level direction attribute (RFC 3264 §5.1), if any.
    pub direction: Option<Direction>,
    /// `m=` sections in order.
    pub media: Vec<MediaDescription>,
}

/// `o=<username> <sess-id> <sess-version> IN <addrtype> <address>` (RFC 4566 §5.2). Kept as text:
/// peers put all sorts of numbers here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `<username>`, `-` when unknown.
    pub username: String,
    /// `<sess-id>`.
    pub session_id: String,
    /// `<sess-version>`; incremented on every changed offer or answer (RFC 3264 §8).
    pub session_version: String,
    /// `<unicast-address>`.
    pub address: String,
}

/// `c=IN IP4|IP6 <address>` (RFC 4566 §5.7). A multicast `/ttl` suffix is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// Where media goes. `0.0.0.0` is RFC 2543-style hold (RFC 3264 §8.4).
    pub address: IpAddr,
}

/// Media direction attributes (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// `a=sendrecv`, the default.
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The direction an answerer uses for this offered one (RFC 3264 §6.1): sendonly ↔
    /// recvonly, the others unchanged.
    pub fn reversed(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            Self::SendRecv => Self::SendRecv,
            Self::Inactive => Self::Inactive,
        }
    }

    /// Whether this side sends media in this direction.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether this side receives media in this direction.
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }

    fn attribute(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }
}

/// One `m=` section (RFC 4566 §5.14) with the attributes we understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `application`, ...
    pub media: String,
    /// Transport port; 0 means the stream is declined or removed (RFC 3264 §5.1, §8.2).
    pub port: u16,
    /// `/<number of ports>`, if given.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, ...
    pub proto: String,
    /// The format list as written (payload type numbers for RTP profiles).
    pub formats: Vec<String>,
    /// Media-level `c=`.
    pub connection: Option<Connection>,
    /// Media-level direction attribute.
    pub direction: Option<Direction>,
    /// `a=rtpmap` lines (RFC 4566 §6).
    pub rtpmaps: Vec<Rtpmap>,
    /// `a=fmtp:<pt> <params>` lines.
    pub fmtps: Vec<(PayloadType, String)>,
    /// `a=ptime` in milliseconds.
    pub ptime: Option<u32>,
    /// `a=maxptime` in milliseconds.
    pub maxptime: Option<u32>,
    /// `a=crypto` lines (RFC 4568 §9.1).
    pub crypto: Vec<Crypto>,
    /// Any other attribute line, without `a=`.
    pub other: Vec<String>,
}

impl MediaDescription {
    /// Whether the profile is an RTP one (`RTP/AVP`, `RTP/SAVP`, `RTP/AVPF`, `RTP/SAVPF`).
    pub fn is_rtp(&self) -> bool {
        self.proto.to_ascii_uppercase().starts_with("RTP/")
    }

    /// Whether the profile is secure RTP (`RTP/SAVP`, `RTP/SAVPF`; RFC 3711, RFC 4568).
    pub fn is_secure(&self) -> bool {
        self.proto.to_ascii_uppercase().starts_with("RTP/SAVP")
    }

    /// The format list as payload types (only meaningful when [`MediaDescription::is_rtp`]).
    pub fn payload_types(&self) -> impl Iterator<Item = PayloadType> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .map(PayloadType::new)
    }

    /// What a payload type stands for: its `rtpmap`, else the RFC 3551 §6 static assignment.
    pub fn codec(&self, pt: PayloadType) -> Option<Rtpmap> {
        self.rtpmaps
            .iter()
            .find(|r| r.payload_type == pt)
            .cloned()
            .or_else(|| Rtpmap::static_payload(pt))
    }

    /// The `fmtp` parameters of a payload type.
    pub fn fmtp(&self, pt: PayloadType) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, f)| f.as_str())
    }

    /// `a=rtcp:<port> [IN IP4|IP6 <address>]` (RFC 3605): where the peer wants RTCP, when not
    /// on the RTP port + 1. A malformed attribute is ignored (the default applies).
    pub fn rtcp_attribute(&self) -> Option<(u16, Option<std::net::IpAddr>)> {
        self.other.iter().find_map(|attribute| {
            let value = attribute.strip_prefix("rtcp:")?;
            let mut parts = value.split_whitespace();
            let port = parts.next()?.parse().ok()?;
            let address = match (parts.next(), parts.next(), parts.next()) {
                (Some(net), Some(_), Some(address)) if net.eq_ignore_ascii_case("IN") => {
                    address.parse().ok()
                }
                _ => None,
            };
            Some((port, address))
        })
    }

    /// Whether `a=rtcp-mux` (RFC 5761) is present: RTCP on the RTP port.
    pub fn rtcp_mux(&self) -> bool {
        self.other
            .iter()
            .any(|a| a.eq_ignore_ascii_case("rtcp-mux"))
    }
}

/// `a=rtpmap:<pt> <name>/<clock>[/<channels>]` (RFC 4566 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtpmap {
    /// The payload type.
    pub payload_type: PayloadType,
    /// Encoding name as written (`opus`, `PCMU`, `telephone-event`); compare case-insensitively.
    pub encoding: String,
    /// RTP clock rate. G.722 says 8000 although it carries 16 kHz audio (RFC 3551 §4.5.2).
    pub clock_rate: u32,
    /// Audio channels, if given.
    pub channels: Option<u8>,
}

impl Rtpmap {
    /// The RFC 3551 §6 static audio payload types.
    pub fn static_payload(pt: PayloadType) -> Option<Self> {
        let (encoding, clock_rate, channels) = match pt.get() {
            0 => ("PCMU", 8_000, None),
            3 => ("GSM", 8_000, None),
            4 => ("G723", 8_000, None),
            5 => ("DVI4", 8_000, None),
            6 => ("DVI4", 16_000, None),
            7 => ("LPC", 8_000, None),
            8 => ("PCMA", 8_000, None),
            9 => ("G722", 8_000, None),
            10 => ("L16", 44_100, Some(2)),
            11 => ("L16", 44_100, None),
            12 => ("QCELP", 8_000, None),
            13 => ("CN", 8_000, None),
            14 => ("MPA", 90_000, None),
            15 => ("G728", 8_000, None),
            16 => ("DVI4", 11_025, None),
            17 => ("DVI4", 22_050, None),
            18 => ("G729", 8_000, None),
            _ => return None,
        };
        Some(Self {
            payload_type: pt,
            encoding: encoding.to_owned(),
            clock_rate,
            channels,
        })
    }

    /// The static payload type of an encoding, if RFC 3551 §6 assigns one.
    pub fn static_payload_type(encoding: &str, clock_rate: u32) -> Option<PayloadType> {
        (0..=18)
            .map(PayloadType::new)
            .filter_map(Self::static_payload)
            .find(|r| r.encoding.eq_ignore_ascii_case(encoding) && r.clock_rate == clock_rate)
            .map(|r| r.payload_type)
    }

    /// Whether this is an RFC 4733 `telephone-event`.
    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event")
    }

    /// The audio sample rate behind the RTP clock: 16 kHz for G.722 (RFC 3551 §4.5.2), the
    /// clock rate otherwise.
    pub fn audio_sample_rate(&self) -> u32 {
        if self.encoding.eq_ignore_ascii_case("G722") && self.clock_rate == 8_000 {
            16_000
        } else {
            self.clock_rate
        }
    }
}

/// SDES crypto suites we implement (RFC 4568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SdesSuite {
    /// `AES_CM_128_HMAC_SHA1_80`.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`.
    AesCm128HmacSha1_32,
}

impl SdesSuite {
    /// The suite name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// Parses a suite name (case-sensitive, as RFC 4568 §9.2 registers them).
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::AesCm128HmacSha1_80, Self::AesCm128HmacSha1_32]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// `a=crypto:<tag> <suite> <key-params> [<session-params>]` (RFC 4568 §9.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// The tag the answer must echo.
    pub tag: u32,
    /// Suite name as written.
    pub suite: String,
    /// Key parameters (`inline:<base64>[|lifetime][|MKI:len]`, possibly several joined by `;`).
    pub key_params: String,
    /// Session parameters, if any.
    pub session_params: Option<String>,
}

impl Crypto {
    /// The suite, if we implement it.
    pub fn known_suite(&self) -> Option<SdesSuite> {
        SdesSuite::from_name(&self.suite)
    }

    /// The first inline master key and salt, base64-decoded (RFC 4568 §6.1). For the AES-CM-128
    /// suites this must be 30 bytes (16 key + 14 salt).
    pub fn inline_key(&self) -> Option<Vec<u8>> {
        let first = self.key_params.split(';').next()?;
        let b64 = first.strip_prefix("inline:")?.split('|').next()?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
            .ok()
    }
}

/// Why SDP text could not be parsed. Line numbers start at 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is not UTF-8.
    #[error("SDP is not UTF-8")]
    NotUtf8,
    /// The first line is not `v=0`.
    #[error("SDP does not start with v=0")]
    MissingVersion,
    /// No `o=` line.
    #[error("SDP has no o= line")]
    MissingOrigin,
    /// A line is not `<letter>=<value>`.
    #[error("line {line}: not a <type>=<value> line")]
    BadLine {
        /// Line number.
        line: usize,
    },
    /// A malformed `o=` line.
    #[error("line {line}: malformed o= line")]
    BadOrigin {
        /// Line number.
        line: usize,
    },
    /// A malformed `c=` line, or an address that is not an IP address.
    #[error("line {line}: malformed or unsupported c= line")]
    BadConnection {
        /// Line number.
        line: usize,
    },
    /// A malformed `m=` line (port, proto, or a payload type outside 0..=127).
    #[error("line {line}: malformed m= line")]
    BadMedia {
        /// Line number.
        line: usize,
    },
    /// A malformed `rtpmap`, `fmtp`, `ptime`, `maxptime` or `crypto` attribute.
    #[error("line {line}: malformed a={name} attribute")]
    BadAttribute {
        /// Line number.
        line: usize,
        /// Attribute name.
        name: &'static str,
    },
}

impl SessionDescription {
    /// Parses SDP bytes (RFC 4566 §5). Lines may end in CRLF or LF.
    pub fn parse(bytes: &[u8]) -> Result<Self, SdpError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SdpError::NotUtf8)?;
        let mut origin = None;
        let mut session = Self {
            origin: Origin {
                username: String::new(),
                session_id: String::new(),
                session_version: String::new(),
                address: String::new(),
            },
            session_name: "-".into(),
            connection: None,
            direction: None,
            media: Vec::new(),
        };
        let mut saw_version = false;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let raw = raw.trim_end();
            if raw.is_empty() {
                continue;
            }
            let mut chars = raw.chars();
            let (Some(kind), Some('=')) = (chars.next(), chars.next()) else {
                return Err(SdpError::BadLine { line });
            };
            if !kind.is_ascii_lowercase() {
                return Err(SdpError::BadLine { line });
            }
            let value = chars.as_str();
            if !saw_version {
                if kind != 'v' || value.trim() != "0" {
                    return Err(SdpError::MissingVersion);
                }
                saw_version = true;
                continue;
            }
            match kind {
                'o' => origin = Some(parse_origin(value).ok_or(SdpError::BadOrigin { line })?),
                's' if session.media.is_empty() => session.session_name = value.to_owned(),
                'c' => {
                    let connection =
                        parse_connection(value).ok_or(SdpError::BadConnection { line })?;
                    match session.media.last_mut() {
                        Some(media) => media.connection = Some(connection),
                        None => session.connection = Some(connection),
                    }
                }
                'm' => session
                    .media
                    .push(parse_media(value).ok_or(SdpError::BadMedia { line })?),
                'a' => match session.media.last_mut() {
                    Some(media) => parse_media_attribute(media, value, line)?,
                    None => {
                        if let Some(direction) = parse_direction(value) {
                            session.direction = Some(direction);
                        }
                    }
                },
                _ => {}
            }
        }
        if !saw_version {
            return Err(SdpError::MissingVersion);
        }
        session.origin = origin.ok_or(SdpError::MissingOrigin)?;
        Ok(session)
    }

    /// The connection address for a media section: its own `c=`, else the session's.
    pub fn connection_for(&self, media: &MediaDescription) -> Option<Connection> {
        media.connection.or(self.connection)
    }

    /// The effective direction of a media section (media level, else session level, else
    /// sendrecv; RFC 3264 §5.1).
    pub fn direction_for(&self, media: &MediaDescription) -> Direction {
        media.direction.or(self.direction).unwrap_or_default()
    }
}

impl fmt::Display for SessionDescription {
    /// Writes SDP with CRLF line ends (RFC 4566 §5), `t=0 0` as timing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(f, "v=0\r\n")?;
        let ip_kind = |address: &str| {
            if address.contains(':') { "IP6" } else { "IP4" }
        };
        write!(
            f,
            "o={} {} {} IN {} {}\r\n",
            o.username,
            o.session_id,
            o.session_version,
            ip_kind(&o.address),
            o.address
        )?;
        write!(f, "s={}\r\n", self.session_name)?;
        if let Some(c) = &self.connection {
            write_connection(f, c)?;
        }
        write!(f, "t=0 0\r\n")?;
        if let Some(direction) = self.direction {
            write!(f, "a={}\r\n", direction.attribute())?;
        }
        for m in &self.media {
            write!(f, "m={} {}", m.media, m.port)?;
            if let Some(count) = m.port_count {
                write!(f, "/{count}")?;
            }
            write!(f, " {}", m.proto)?;
            for format in &m.formats {
                write!(f, " {format}")?;
            }
            write!(f, "\r\n")?;
            if let Some(c) = &m.connection {
                write_connection(f, c)?;
            }
            for r in &m.rtpmaps {
                write!(
                    f,
                    "a=rtpmap:{} {}/{}",
                    r.payload_type, r.encoding, r.clock_rate
                )?;
                if let Some(ch) = r.channels {
                    write!(f, "/{ch}")?;
                }
                write!(f, "\r\n")?;
            }
            for (pt, params) in &m.fmtps {
                write!(f, "a=fmtp:{pt} {params}\r\n")?;
            }
            if let Some(ptime) = m.ptime {
                write!(f, "a=ptime:{ptime}\r\n")?;
            }
            if let Some(maxptime) = m.maxptime {
                write!(f, "a=maxptime:{maxptime}\r\n")?;
            }
            if let Some(direction) = m.direction {
                write!(f, "a={}\r\n", direction.attribute())?;
            }
            for c in &m.crypto {
                write!(f, "a=crypto:{} {} {}", c.tag, c.suite, c.key_params)?;
                if let Some(session_params) = &c.session_params {
                    write!(f, " {session_params}")?;
                }
                write!(f, "\r\n")?;
            }
            for other in &m.other {
                write!(f, "a={other}\r\n")?;
            }
        }
        Ok(())
    }
}

fn write_connection(f: &mut fmt::Formatter<'_>, c: &Connection) -> fmt::Result {
    let kind = if c.address.is_ipv6() { "IP6" } else { "IP4" };
    write!(f, "c=IN {kind} {}\r\n", c.address)
}

fn parse_origin(value: &str) -> Option<Origin> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [
        username,
        session_id,
        session_version,
        "IN",
        _addr_type,
        address,
    ] = fields.as_slice()
    else {
        return None;
    };
    Some(Origin {
        username: (*username).to_owned(),
        session_id: (*session_id).to_owned(),
        session_version: (*session_version).to_owned(),
        address: (*address).to_owned(),
    })
}

fn parse_connection(value: &str) -> Option<Connection> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let ["IN", addr_type, address] = fields.as_slice() else {
        return None;
    };
    let address: IpAddr = address.split('/').next()?.parse().ok()?;
    let type_ok = match *addr_type {
        "IP4" => address.is_ipv4(),
        "IP6" => address.is_ipv6(),
        _ => false,
    };
    type_ok.then_some(Connection { address })
}

fn parse_media(value: &str) -> Option<MediaDescription> {
    let mut fields = value.split_whitespace();
    let media = fields.next()?.to_owned();
    let port_field = fields.next()?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, n)) => (p.parse().ok()?, Some(n.parse().ok()?)),
        None => (port_field.parse().ok()?, None),
    };
    let proto = fields.next()?.to_owned();
    let formats: Vec<String> = fields.map(str::to_owned).collect();
    let description = MediaDescription {
        media,
        port,
        port_count,
        proto,
        formats,
        connection: None,
        direction: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        ptime: None,
        maxptime: None,
        crypto: Vec::new(),
        other: Vec::new(),
    };
    if description.is_rtp()
        && description
            .formats
            .iter()
            .any(|f| !f.parse::<u8>().is_ok_and(|pt| pt <= 127))
    {
        return None;
    }
    Some(description)
}

fn parse_payload_type(s: &str) -> Option<PayloadType> {
    s.parse::<u8>()
        .ok()
        .filter(|pt| *pt <= 127)
        .map(PayloadType::new)
}

fn parse_direction(value: &str) -> Option<Direction> {
    match value.trim() {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    }
}

/// `20` or `20.0` milliseconds.
fn parse_millis(value: &str) -> Option<u32> {
    let value = value.trim();
    let whole = value.split_once('.').map_or(value, |(w, _)| w);
    whole.parse().ok().filter(|ms| *ms > 0)
}

fn parse_media_attribute(
    media: &mut MediaDescription,
    value: &str,
    line: usize,
) -> Result<(), SdpError> {
    if let Some(direction) = parse_direction(value) {
        media.direction = Some(direction);
        return Ok(());
    }
    let (name, rest) = value.split_once(':').unwrap_or((value, ""));
    match name {
        "rtpmap" => {
            let bad = SdpError::BadAttribute {
                line,
                name: "rtpmap",
            };
            let (pt, spec) = rest.trim().split_once(' ').ok_or(bad.clone())?;
            let mut parts = spec.trim().split('/');
            let encoding = parts.next().filter(|e| !e.is_empty()).ok_or(bad.clone())?;
            let clock_rate = parts
                .next()
                .and_then(|c| c.parse::<u32>().ok())
                .filter(|c| *c > 0)
                .ok_or(bad.clone())?;
            let channels = match parts.next() {
                Some(ch) => Some(
                    ch.parse::<u8>()
                        .ok()
                        .filter(|c| *c > 0)
                        .ok_or(bad.clone())?,
                ),
                None => None,
            };
            if parts.next().is_some() || encoding.chars().any(char::is_whitespace) {
                return Err(bad);
            }
            media.rtpmaps.push(Rtpmap {
                payload_type: parse_payload_type(pt).ok_or(bad)?,
                encoding: encoding.to_owned(),
                clock_rate,
                channels,
            });
        }
        "fmtp" if media.is_rtp() => {
            let bad = SdpError::BadAttribute { line, name: "fmtp" };
            let (pt, params) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
            let pt = parse_payload_type(pt).ok_or(bad)?;
            media.fmtps.push((pt, params.trim().to_owned()));
        }
        "ptime" => {
            media.ptime = Some(parse_millis(rest).ok_or(SdpError::BadAttribute {
                line,
                name: "ptime",
            })?);
        }
        "maxptime" => {
            media.maxptime = Some(parse_millis(rest).ok_or(SdpError::BadAttribute {
                line,
                name: "maxptime",
            })?);
        }
        "crypto" => {
            let bad = SdpError::BadAttribute {
                line,
                name: "crypto",
            };
            let mut fields = rest.split_whitespace();
            let tag = fields
                .next()
                .filter(|t| t.len() <= 9)
                .and_then(|t| t.parse::<u32>().ok())
                .ok_or(bad.clone())?;
            let suite = fields.next().ok_or(bad.clone())?.to_owned();
            let key_params = fields.next().ok_or(bad)?.to_owned();
            let session_params: Vec<&str> = fields.collect();
            media.crypto.push(Crypto {
                tag,
                suite,
                key_params,
                session_params: (!session_params.is_empty()).then(|| session_params.join(" ")),
            });
        }
        _ => media.other.push(value.to_owned()),
    }
    Ok(())
}

/// Base64 (RFC 4648 §4, padded) of an SDES master key and salt, for `inline:`.
fn encode_key(key: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// An `a=crypto` line with an inline key (used by tests to build offers).
#[cfg(test)]
fn crypto_line(tag: u32, suite: SdesSuite, key: &[u8]) -> String {
    format!("a=crypto:{tag} {} inline:{}", suite.name(), encode_key(key))
}

#[cfg(test)]
mod tests;
