//! The ICE-UDP transport (XEP-0176) with Jitsi's additions: DTLS `fingerprint` (XEP-0320, with
//! `setup` and `cryptex`), colibri `web-socket` and `rtcp-mux` (jitsi-protocols.md §4.2, §4.3).

use std::collections::BTreeMap;

use minidom::Element;

use crate::ParseError;
use crate::ns;
use crate::xml::{self, Builder};

str_enum! {
    /// A candidate's `type` (RFC 8445 §5.1.1).
    pub enum CandidateType {
        /// `host`.
        Host => "host",
        /// `prflx`.
        Prflx => "prflx",
        /// `relay`.
        Relay => "relay",
        /// `srflx`.
        Srflx => "srflx",
    }
}

str_enum! {
    /// The DTLS role in `setup` (RFC 4145 §4, XEP-0320). Jicofo offers `actpass`; the answer must
    /// say `active` or `passive` (jitsi-protocols.md §4.3 rule 1).
    pub enum Setup {
        /// `active`: this side is the DTLS client (what the gateway answers).
        Active => "active",
        /// `actpass`: either (only valid in an offer).
        Actpass => "actpass",
        /// `holdconn`.
        Holdconn => "holdconn",
        /// `passive`: this side is the DTLS server.
        Passive => "passive",
    }
}

/// `<transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag= pwd=>` (XEP-0176 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// `ufrag`.
    pub ufrag: Option<String>,
    /// `pwd`.
    pub pwd: Option<String>,
    /// `ice-generation`, set by Jicofo's in-place ICE restart (§4.5).
    pub ice_generation: Option<u32>,
    /// Attributes this crate does not model.
    pub extra_attrs: BTreeMap<String, String>,
    /// The children in wire order.
    pub children: Vec<TransportChild>,
}

/// One child of a [`Transport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportChild {
    /// `<candidate>`.
    Candidate(Candidate),
    /// `<fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0">`.
    Fingerprint(Fingerprint),
    /// `<web-socket xmlns="http://jitsi.org/protocol/colibri" url=>`.
    WebSocket(WebSocket),
    /// `<rtcp-mux/>` in the transport's namespace.
    RtcpMux,
    /// Any other child, kept verbatim (`sctpmap`, ...).
    Other(Element),
}

impl Transport {
    /// A transport with credentials and no children.
    pub fn new(ufrag: &str, pwd: &str) -> Self {
        Self {
            ufrag: Some(ufrag.to_owned()),
            pwd: Some(pwd.to_owned()),
            ice_generation: None,
            extra_attrs: BTreeMap::new(),
            children: Vec::new(),
        }
    }

    /// Reads a transport.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "transport", ns::JINGLE_ICE_UDP)?;
        let children = el
            .children()
            .map(|child| {
                Ok(match (child.name(), child.ns().as_str()) {
                    ("candidate", ns::JINGLE_ICE_UDP) => {
                        TransportChild::Candidate(Candidate::parse(child)?)
                    }
                    ("fingerprint", ns::JINGLE_DTLS) => {
                        TransportChild::Fingerprint(Fingerprint::parse(child)?)
                    }
                    ("web-socket", ns::COLIBRI) => {
                        TransportChild::WebSocket(WebSocket::parse(child)?)
                    }
                    ("rtcp-mux", ns::JINGLE_ICE_UDP) => TransportChild::RtcpMux,
                    _ => TransportChild::Other(child.clone()),
                })
            })
            .collect::<Result<_, ParseError>>()?;
        Ok(Self {
            ufrag: xml::opt(el, "ufrag"),
            pwd: xml::opt(el, "pwd"),
            ice_generation: xml::opt_parse(
                el,
                "transport",
                "ice-generation",
                "a generation number",
            )?,
            extra_attrs: xml::extra_attrs(el, &["ufrag", "pwd", "ice-generation"]),
            children,
        })
    }

    /// Writes the transport.
    pub fn to_element(&self) -> Element {
        Builder::new("transport", ns::JINGLE_ICE_UDP)
            .opt("ufrag", self.ufrag.as_ref())
            .opt("pwd", self.pwd.as_ref())
            .opt("ice-generation", self.ice_generation)
            .extra(&self.extra_attrs)
            .children(self.children.iter().map(|child| match child {
                TransportChild::Candidate(candidate) => candidate.to_element(),
                TransportChild::Fingerprint(fingerprint) => fingerprint.to_element(),
                TransportChild::WebSocket(web_socket) => web_socket.to_element(),
                TransportChild::RtcpMux => Element::bare("rtcp-mux", ns::JINGLE_ICE_UDP),
                TransportChild::Other(el) => el.clone(),
            }))
            .build()
    }

    /// The candidates in order.
    pub fn candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.children.iter().filter_map(|child| {
            if let TransportChild::Candidate(candidate) = child {
                Some(candidate)
            } else {
                None
            }
        })
    }

    /// The first DTLS fingerprint.
    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        self.children.iter().find_map(|child| {
            if let TransportChild::Fingerprint(fingerprint) = child {
                Some(fingerprint)
            } else {
                None
            }
        })
    }

    /// The colibri WebSocket (bridge channel) URL, if offered (§5.5).
    pub fn web_socket(&self) -> Option<&WebSocket> {
        self.children.iter().find_map(|child| {
            if let TransportChild::WebSocket(web_socket) = child {
                Some(web_socket)
            } else {
                None
            }
        })
    }

    /// Whether `<rtcp-mux/>` is present (in the transport's or, leniently, the RTP namespace).
    pub fn rtcp_mux(&self) -> bool {
        self.children.iter().any(|child| match child {
            TransportChild::RtcpMux => true,
            TransportChild::Other(el) => el.is("rtcp-mux", ns::JINGLE_RTP),
            TransportChild::Candidate(_)
            | TransportChild::Fingerprint(_)
            | TransportChild::WebSocket(_) => false,
        })
    }
}

/// `<candidate>` (XEP-0176 §5) with every attribute Jitsi uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `component` (1 = RTP; RTCP is muxed).
    pub component: u8,
    /// `foundation`.
    pub foundation: String,
    /// `generation`. Absent is **not** 0 for JVB (it reads −1 and drops the candidate, §4.3
    /// rule 2), so absence is kept.
    pub generation: Option<u32>,
    /// `id`.
    pub id: Option<String>,
    /// `ip`: a literal address (JVB ignores host names).
    pub ip: String,
    /// `network`.
    pub network: Option<u32>,
    /// `port`.
    pub port: u16,
    /// `priority`.
    pub priority: u32,
    /// `protocol` (`udp`).
    pub protocol: String,
    /// `type`.
    pub kind: CandidateType,
    /// `rel-addr`.
    pub rel_addr: Option<String>,
    /// `rel-port`.
    pub rel_port: Option<u16>,
    /// `tcptype` (`active`/`passive`/`so`).
    pub tcptype: Option<String>,
    /// Attributes this crate does not model.
    pub extra_attrs: BTreeMap<String, String>,
}

impl Candidate {
    /// Reads a candidate.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "candidate", ns::JINGLE_ICE_UDP)?;
        const E: &str = "candidate";
        Ok(Self {
            component: xml::req_parse(el, E, "component", "a component number")?,
            foundation: xml::req(el, E, "foundation")?.to_owned(),
            generation: xml::opt_parse(el, E, "generation", "a generation number")?,
            id: xml::opt(el, "id"),
            ip: xml::req(el, E, "ip")?.to_owned(),
            network: xml::opt_parse(el, E, "network", "a network number")?,
            port: xml::req_parse(el, E, "port", "a port number")?,
            priority: xml::req_parse(el, E, "priority", "a 32-bit priority")?,
            protocol: xml::req(el, E, "protocol")?.to_owned(),
            kind: CandidateType::from(xml::req(el, E, "type")?),
            rel_addr: xml::opt(el, "rel-addr"),
            rel_port: xml::opt_parse(el, E, "rel-port", "a port number")?,
            tcptype: xml::opt(el, "tcptype"),
            extra_attrs: xml::extra_attrs(
                el,
                &[
                    "component",
                    "foundation",
                    "generation",
                    "id",
                    "ip",
                    "network",
                    "port",
                    "priority",
                    "protocol",
                    "type",
                    "rel-addr",
                    "rel-port",
                    "tcptype",
                ],
            ),
        })
    }

    /// Writes the candidate.
    pub fn to_element(&self) -> Element {
        Builder::new("candidate", ns::JINGLE_ICE_UDP)
            .attr("component", self.component)
            .attr("foundation", &self.foundation)
            .opt("generation", self.generation)
            .opt("id", self.id.as_ref())
            .attr("ip", &self.ip)
            .opt("network", self.network)
            .attr("port", self.port)
            .attr("priority", self.priority)
            .attr("protocol", &self.protocol)
            .attr("type", &self.kind)
            .opt("rel-addr", self.rel_addr.as_ref())
            .opt("rel-port", self.rel_port)
            .opt("tcptype", self.tcptype.as_ref())
            .extra(&self.extra_attrs)
            .build()
    }
}

/// `<fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash= setup= cryptex=>` with the
/// colon-separated hex digest as text (XEP-0320; jitsi-protocols.md §4.2, §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// `hash` (`sha-256`, ...).
    pub hash: String,
    /// `setup`.
    pub setup: Option<Setup>,
    /// `cryptex` (RFC 9335; only when the bridge enables it).
    pub cryptex: Option<bool>,
    /// The digest as written (`2B:6E:...`).
    pub value: String,
    /// Attributes this crate does not model.
    pub extra_attrs: BTreeMap<String, String>,
}

impl Fingerprint {
    /// A fingerprint with a role.
    pub fn new(hash: &str, setup: Setup, value: &str) -> Self {
        Self {
            hash: hash.to_owned(),
            setup: Some(setup),
            cryptex: None,
            value: value.to_owned(),
            extra_attrs: BTreeMap::new(),
        }
    }

    /// Reads a fingerprint.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "fingerprint", ns::JINGLE_DTLS)?;
        Ok(Self {
            hash: xml::req(el, "fingerprint", "hash")?.to_owned(),
            setup: el.attr("setup").map(Setup::from),
            cryptex: xml::opt_bool(el, "fingerprint", "cryptex")?,
            value: el.text().trim().to_owned(),
            extra_attrs: xml::extra_attrs(el, &["hash", "setup", "cryptex"]),
        })
    }

    /// Writes the fingerprint.
    pub fn to_element(&self) -> Element {
        Builder::new("fingerprint", ns::JINGLE_DTLS)
            .attr("hash", &self.hash)
            .opt("setup", self.setup.as_ref())
            .opt_bool("cryptex", self.cryptex)
            .extra(&self.extra_attrs)
            .text(&self.value)
            .build()
    }
}

/// `<web-socket xmlns="http://jitsi.org/protocol/colibri" url=>`: the bridge channel URL
/// (jitsi-protocols.md §4.2, §5.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocket {
    /// `url`.
    pub url: String,
    /// Attributes this crate does not model.
    pub extra_attrs: BTreeMap<String, String>,
}

impl WebSocket {
    /// Reads the element.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "web-socket", ns::COLIBRI)?;
        Ok(Self {
            url: xml::req(el, "web-socket", "url")?.to_owned(),
            extra_attrs: xml::extra_attrs(el, &["url"]),
        })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Builder::new("web-socket", ns::COLIBRI)
            .attr("url", &self.url)
            .extra(&self.extra_attrs)
            .build()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn candidate_keeps_a_missing_generation_and_tcp_fields() {
        let xml = r#"<candidate xmlns="urn:xmpp:jingle:transports:ice-udp:1" component="1" foundation="f" ip="192.0.2.1" port="9" priority="5" protocol="tcp" type="host" tcptype="passive" x-extra="kept"/>"#;
        let el: Element = xml.parse().unwrap();
        let candidate = Candidate::parse(&el).unwrap();
        assert_eq!(candidate.generation, None);
        assert_eq!(candidate.tcptype.as_deref(), Some("passive"));
        assert_eq!(
            candidate.extra_attrs.get("x-extra").map(String::as_str),
            Some("kept")
        );
        assert_eq!(candidate.to_element(), el);
    }

    #[test]
    fn bad_candidate_port_is_a_typed_error() {
        let el: Element = r#"<candidate xmlns="urn:xmpp:jingle:transports:ice-udp:1" component="1" foundation="f" ip="192.0.2.1" port="70000" priority="5" protocol="udp" type="host"/>"#.parse().unwrap();
        assert_eq!(
            Candidate::parse(&el),
            Err(ParseError::BadAttribute {
                element: "candidate",
                attr: "port",
                value: "70000".to_owned(),
                expected: "a port number",
            })
        );
    }

    #[test]
    fn fingerprint_reads_cryptex_and_rejects_a_bad_boolean() {
        let good: Element = r#"<fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="active" cryptex="true">AA:BB</fingerprint>"#.parse().unwrap();
        let fingerprint = Fingerprint::parse(&good).unwrap();
        assert_eq!(fingerprint.cryptex, Some(true));
        assert_eq!(fingerprint.setup, Some(Setup::Active));
        assert_eq!(fingerprint.to_element(), good);
        let bad: Element = r#"<fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" cryptex="maybe">AA</fingerprint>"#.parse().unwrap();
        assert!(matches!(
            Fingerprint::parse(&bad),
            Err(ParseError::BadAttribute {
                attr: "cryptex",
                ..
            })
        ));
    }

    #[test]
    fn rtcp_mux_in_the_rtp_namespace_is_recognised_and_kept() {
        let el: Element = r#"<transport xmlns="urn:xmpp:jingle:transports:ice-udp:1"><rtcp-mux xmlns="urn:xmpp:jingle:apps:rtp:1"/></transport>"#.parse().unwrap();
        let transport = Transport::parse(&el).unwrap();
        assert!(transport.rtcp_mux());
        assert_eq!(transport.to_element(), el);
    }
}
