//! The RTP application: `description` (XEP-0167) with payload types, header extensions (XEP-0294),
//! RTCP feedback (XEP-0293) and Jitsi's ssma `source`/`ssrc-group` (XEP-0339) carrying
//! `ssrc-info owner` (jitsi-protocols.md §4.2, §4.4).
//!
//! Children are kept in wire order as a `Vec` of typed enums: Jicofo and lib-jitsi-meet order them
//! differently (sources before or after `rtcp-mux`, Examples 5 and 6), and a round trip keeps both.

use std::collections::BTreeMap;

use jigasi_types::{PayloadType as Pt, Ssrc};
use minidom::Element;

use crate::ParseError;
use crate::ns;
use crate::xml::{self, Builder};

str_enum! {
    /// The `media` of a description (XEP-0167 §5).
    pub enum Media {
        /// `audio`.
        Audio => "audio",
        /// `video`.
        Video => "video",
        /// `application` (the SCTP data content).
        Application => "application",
    }
}

strict_enum! {
    /// Who sends on a content or header extension (XEP-0166 §7.1, XEP-0294).
    pub enum Senders {
        /// `both`.
        Both => "both",
        /// `initiator`.
        Initiator => "initiator",
        /// `none`.
        None => "none",
        /// `responder`.
        Responder => "responder",
    }
}

str_enum! {
    /// The `semantics` of an `ssrc-group` (XEP-0339 §3.2).
    pub enum SsrcGroupSemantics {
        /// `FEC-FR`.
        FecFr => "FEC-FR",
        /// `FID`: a stream and its RTX.
        Fid => "FID",
        /// `SIM`: simulcast layers.
        Sim => "SIM",
    }
}

/// `<description xmlns="urn:xmpp:jingle:apps:rtp:1">` (XEP-0167 §5; jitsi-protocols.md §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// `media`; absent only in malformed or minimal stanzas.
    pub media: Option<Media>,
    /// `ssrc`: Jigasi sets its sending SSRC here (§4.3).
    pub ssrc: Option<Ssrc>,
    /// `maxptime` (Jicofo offers 60).
    pub maxptime: Option<u32>,
    /// Attributes this crate does not model.
    pub extra_attrs: BTreeMap<String, String>,
    /// The children in wire order.
    pub children: Vec<DescriptionChild>,
}

/// One child of a [`Description`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescriptionChild {
    /// `<payload-type>`.
    PayloadType(PayloadType),
    /// `<rtp-hdrext>`.
    HdrExt(RtpHdrExt),
    /// `<extmap-allow-mixed xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"/>`.
    ExtmapAllowMixed,
    /// `<rtcp-mux/>` (RTP namespace).
    RtcpMux,
    /// An ssma `<source>`.
    Source(Source),
    /// An ssma `<ssrc-group>`.
    SsrcGroup(SsrcGroup),
    /// Any other child, kept verbatim (`bandwidth`, `encryption`, ...).
    Other(Element),
}

impl Description {
    /// An empty description for `media`.
    pub fn new(media: Media) -> Self {
        Self {
            media: Some(media),
            ssrc: None,
            maxptime: None,
            extra_attrs: BTreeMap::new(),
            children: Vec::new(),
        }
    }

    /// Reads a description.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "description", ns::JINGLE_RTP)?;
        let children = el
            .children()
            .map(DescriptionChild::parse)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            media: el.attr("media").map(Media::from),
            ssrc: xml::opt_parse::<u32>(el, "description", "ssrc", "a 32-bit SSRC")?.map(Ssrc::new),
            maxptime: xml::opt_parse(el, "description", "maxptime", "milliseconds")?,
            extra_attrs: xml::extra_attrs(el, &["media", "ssrc", "maxptime"]),
            children,
        })
    }

    /// Writes the description.
    pub fn to_element(&self) -> Element {
        Builder::new("description", ns::JINGLE_RTP)
            .opt("media", self.media.as_ref())
            .opt("ssrc", self.ssrc)
            .opt("maxptime", self.maxptime)
            .extra(&self.extra_attrs)
            .children(self.children.iter().map(DescriptionChild::to_element))
            .build()
    }

    /// The payload types in order of preference.
    pub fn payload_types(&self) -> impl Iterator<Item = &PayloadType> {
        self.children.iter().filter_map(|child| {
            if let DescriptionChild::PayloadType(pt) = child {
                Some(pt)
            } else {
                None
            }
        })
    }

    /// The header extensions.
    pub fn hdrexts(&self) -> impl Iterator<Item = &RtpHdrExt> {
        self.children.iter().filter_map(|child| {
            if let DescriptionChild::HdrExt(ext) = child {
                Some(ext)
            } else {
                None
            }
        })
    }

    /// The signalled sources.
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.children.iter().filter_map(|child| {
            if let DescriptionChild::Source(source) = child {
                Some(source)
            } else {
                None
            }
        })
    }

    /// The signalled source groups.
    pub fn ssrc_groups(&self) -> impl Iterator<Item = &SsrcGroup> {
        self.children.iter().filter_map(|child| {
            if let DescriptionChild::SsrcGroup(group) = child {
                Some(group)
            } else {
                None
            }
        })
    }

    /// The first payload type with this encoding name (case-insensitive, as SDP).
    pub fn payload_type_named(&self, name: &str) -> Option<&PayloadType> {
        self.payload_types().find(|pt| {
            pt.name
                .as_deref()
                .is_some_and(|own| own.eq_ignore_ascii_case(name))
        })
    }

    /// The header extension with this URI.
    pub fn hdrext_with_uri(&self, uri: &str) -> Option<&RtpHdrExt> {
        self.hdrexts().find(|ext| ext.uri == uri)
    }

    /// Whether `<rtcp-mux/>` is present.
    pub fn rtcp_mux(&self) -> bool {
        self.children
            .iter()
            .any(|child| matches!(child, DescriptionChild::RtcpMux))
    }

    /// Whether `<extmap-allow-mixed/>` is present.
    pub fn extmap_allow_mixed(&self) -> bool {
        self.children
            .iter()
            .any(|child| matches!(child, DescriptionChild::ExtmapAllowMixed))
    }
}

impl DescriptionChild {
    fn parse(el: &Element) -> Result<Self, ParseError> {
        Ok(match (el.name(), el.ns().as_str()) {
            ("payload-type", ns::JINGLE_RTP) => Self::PayloadType(PayloadType::parse(el)?),
            ("rtp-hdrext", ns::JINGLE_RTP_HDREXT) => Self::HdrExt(RtpHdrExt::parse(el)?),
            ("extmap-allow-mixed", ns::JINGLE_RTP_HDREXT) => Self::ExtmapAllowMixed,
            ("rtcp-mux", ns::JINGLE_RTP) => Self::RtcpMux,
            ("source", ns::JINGLE_SSMA) => Self::Source(Source::parse(el)?),
            ("ssrc-group", ns::JINGLE_SSMA) => Self::SsrcGroup(SsrcGroup::parse(el)?),
            _ => Self::Other(el.clone()),
        })
    }

    fn to_element(&self) -> Element {
        match self {
            Self::PayloadType(pt) => pt.to_element(),
            Self::HdrExt(ext) => ext.to_element(),
            Self::ExtmapAllowMixed => Element::bare("extmap-allow-mixed", ns::JINGLE_RTP_HDREXT),
            Self::RtcpMux => Element::bare("rtcp-mux", ns::JINGLE_RTP),
            Self::Source(source) => source.to_element(),
            Self::SsrcGroup(group) => group.to_element(),
            Self::Other(el) => el.clone(),
        }
    }
}

/// `<payload-type>` (XEP-0167 §5): `id`, `name`, `clockrate`, `channels`, `parameter`s and
/// `rtcp-fb`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadType {
    /// `id`, 0..=127.
    pub id: Pt,
    /// `name` (encoding name, e.g. `opus`).
    pub name: Option<String>,
    /// `clockrate` in Hz.
    pub clockrate: Option<u32>,
    /// `channels` (absent means 1).
    pub channels: Option<u8>,
    /// Attributes this crate does not model (`ptime`, `maxptime`, ...).
    pub extra_attrs: BTreeMap<String, String>,
    /// The children in wire order.
    pub children: Vec<PayloadTypeChild>,
}

/// One child of a [`PayloadType`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadTypeChild {
    /// A format `<parameter>`.
    Parameter(Parameter),
    /// An `<rtcp-fb>`.
    RtcpFb(RtcpFb),
    /// Any other child, kept verbatim.
    Other(Element),
}

impl PayloadType {
    /// A payload type without parameters.
    pub fn new(id: Pt, name: &str, clockrate: u32, channels: Option<u8>) -> Self {
        Self {
            id,
            name: Some(name.to_owned()),
            clockrate: Some(clockrate),
            channels,
            extra_attrs: BTreeMap::new(),
            children: Vec::new(),
        }
    }

    /// Reads a payload type.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "payload-type", ns::JINGLE_RTP)?;
        let id: u8 = xml::req_parse(el, "payload-type", "id", "a payload type 0..=127")?;
        if id > 127 {
            return Err(ParseError::BadAttribute {
                element: "payload-type",
                attr: "id",
                value: id.to_string(),
                expected: "a payload type 0..=127",
            });
        }
        let children = el
            .children()
            .map(|child| {
                Ok(match (child.name(), child.ns().as_str()) {
                    ("parameter", ns::JINGLE_RTP | ns::JINGLE_SSMA) => {
                        PayloadTypeChild::Parameter(Parameter::parse(child)?)
                    }
                    ("rtcp-fb", ns::JINGLE_RTCP_FB) => {
                        PayloadTypeChild::RtcpFb(RtcpFb::parse(child)?)
                    }
                    _ => PayloadTypeChild::Other(child.clone()),
                })
            })
            .collect::<Result<_, ParseError>>()?;
        Ok(Self {
            id: Pt::new(id),
            name: xml::opt(el, "name"),
            clockrate: xml::opt_parse(el, "payload-type", "clockrate", "a rate in Hz")?,
            channels: xml::opt_parse(el, "payload-type", "channels", "a channel count")?,
            extra_attrs: xml::extra_attrs(el, &["id", "name", "clockrate", "channels"]),
            children,
        })
    }

    /// Writes the payload type.
    pub fn to_element(&self) -> Element {
        Builder::new("payload-type", ns::JINGLE_RTP)
            .attr("id", self.id)
            .opt("name", self.name.as_ref())
            .opt("clockrate", self.clockrate)
            .opt("channels", self.channels)
            .extra(&self.extra_attrs)
            .children(self.children.iter().map(|child| match child {
                PayloadTypeChild::Parameter(parameter) => parameter.to_element(),
                PayloadTypeChild::RtcpFb(fb) => fb.to_element(),
                PayloadTypeChild::Other(el) => el.clone(),
            }))
            .build()
    }

    /// The format parameters.
    pub fn parameters(&self) -> impl Iterator<Item = &Parameter> {
        self.children.iter().filter_map(|child| {
            if let PayloadTypeChild::Parameter(parameter) = child {
                Some(parameter)
            } else {
                None
            }
        })
    }

    /// The RTCP feedback types.
    pub fn rtcp_fbs(&self) -> impl Iterator<Item = &RtcpFb> {
        self.children.iter().filter_map(|child| {
            if let PayloadTypeChild::RtcpFb(fb) = child {
                Some(fb)
            } else {
                None
            }
        })
    }
}

str_enum! {
    /// The namespace a `<parameter>` was written in. Jicofo writes source parameters in the RTP
    /// namespace while XEP-0339 says ssma (jitsi-xmpp-extensions issue 81; jitsi-protocols.md
    /// §4.2), so both are read and the original is written back.
    pub enum ParameterNs {
        /// `urn:xmpp:jingle:apps:rtp:1`.
        Rtp => "urn:xmpp:jingle:apps:rtp:1",
        /// `urn:xmpp:jingle:apps:rtp:ssma:0`.
        Ssma => "urn:xmpp:jingle:apps:rtp:ssma:0",
    }
}

/// `<parameter name= value=>` of a payload type (XEP-0167) or a source (XEP-0339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// The namespace to write it in.
    pub ns: ParameterNs,
    /// `name`; RED's `<parameter value="111/111"/>` has none (§4.2).
    pub name: Option<String>,
    /// `value`.
    pub value: Option<String>,
}

impl Parameter {
    /// A named parameter in namespace `ns`.
    pub fn new(ns: ParameterNs, name: &str, value: &str) -> Self {
        Self {
            ns,
            name: Some(name.to_owned()),
            value: Some(value.to_owned()),
        }
    }

    /// Reads a parameter in the RTP or the ssma namespace.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        let ns = el.ns();
        if el.name() != "parameter" || (ns != ns::JINGLE_RTP && ns != ns::JINGLE_SSMA) {
            return Err(ParseError::WrongElement {
                expected: "parameter",
                expected_ns: ns::JINGLE_RTP,
                name: el.name().to_owned(),
                ns,
            });
        }
        Ok(Self {
            ns: ParameterNs::from(ns.as_str()),
            name: xml::opt(el, "name"),
            value: xml::opt(el, "value"),
        })
    }

    /// Writes the parameter.
    pub fn to_element(&self) -> Element {
        Builder::new("parameter", self.ns.as_str())
            .opt("name", self.name.as_ref())
            .opt("value", self.value.as_ref())
            .build()
    }
}

/// `<rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type= subtype=>` (XEP-0293).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpFb {
    /// `type` (`transport-cc`, `nack`, `ccm`, ...).
    pub kind: String,
    /// `subtype` (`pli`, `fir`, ...).
    pub subtype: Option<String>,
    /// Attributes this crate does not model.
    pub extra_attrs: BTreeMap<String, String>,
}

impl RtcpFb {
    /// Reads an RTCP feedback element.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "rtcp-fb", ns::JINGLE_RTCP_FB)?;
        Ok(Self {
            kind: xml::req(el, "rtcp-fb", "type")?.to_owned(),
            subtype: xml::opt(el, "subtype"),
            extra_attrs: xml::extra_attrs(el, &["type", "subtype"]),
        })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Builder::new("rtcp-fb", ns::JINGLE_RTCP_FB)
            .attr("type", &self.kind)
            .opt("subtype", self.subtype.as_ref())
            .extra(&self.extra_attrs)
            .build()
    }
}

/// `<rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" id= uri= senders=>` (XEP-0294).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpHdrExt {
    /// `id` (1..=14 one-byte, up to 255 two-byte; RFC 8285).
    pub id: u16,
    /// `uri`.
    pub uri: String,
    /// `senders`.
    pub senders: Option<Senders>,
    /// Children kept verbatim (`parameter`).
    pub other: Vec<Element>,
}

impl RtpHdrExt {
    /// A header extension without `senders`.
    pub fn new(id: u16, uri: &str) -> Self {
        Self {
            id,
            uri: uri.to_owned(),
            senders: None,
            other: Vec::new(),
        }
    }

    /// Reads a header extension.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "rtp-hdrext", ns::JINGLE_RTP_HDREXT)?;
        Ok(Self {
            id: xml::req_parse(el, "rtp-hdrext", "id", "an extension id")?,
            uri: xml::req(el, "rtp-hdrext", "uri")?.to_owned(),
            senders: xml::opt_parse(
                el,
                "rtp-hdrext",
                "senders",
                "both, initiator, none or responder",
            )?,
            other: el.children().cloned().collect(),
        })
    }

    /// Writes the header extension.
    pub fn to_element(&self) -> Element {
        Builder::new("rtp-hdrext", ns::JINGLE_RTP_HDREXT)
            .attr("id", self.id)
            .attr("uri", &self.uri)
            .opt("senders", self.senders)
            .children(self.other.iter().cloned())
            .build()
    }
}

/// An ssma `<source ssrc= name= videoType=>` with `ssrc-info` and `parameter`s (XEP-0339 §3.1;
/// jitsi-protocols.md §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `ssrc`.
    pub ssrc: Ssrc,
    /// `name` (`<endpoint>-a0`); Jigasi's desktop stack sends none (§4.3).
    pub name: Option<String>,
    /// `videoType` (`camera`/`desktop`).
    pub video_type: Option<String>,
    /// Attributes this crate does not model.
    pub extra_attrs: BTreeMap<String, String>,
    /// The children in wire order.
    pub children: Vec<SourceChild>,
}

/// One child of a [`Source`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceChild {
    /// A `<parameter>` (RTP or ssma namespace).
    Parameter(Parameter),
    /// `<ssrc-info xmlns="http://jitsi.org/jitmeet" owner=>`.
    SsrcInfo(SsrcInfo),
    /// Any other child, kept verbatim.
    Other(Element),
}

impl Source {
    /// A source with a name and no children.
    pub fn new(ssrc: Ssrc, name: Option<&str>) -> Self {
        Self {
            ssrc,
            name: name.map(str::to_owned),
            video_type: None,
            extra_attrs: BTreeMap::new(),
            children: Vec::new(),
        }
    }

    /// Reads a source.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "source", ns::JINGLE_SSMA)?;
        let children = el
            .children()
            .map(|child| {
                Ok(match (child.name(), child.ns().as_str()) {
                    ("parameter", ns::JINGLE_RTP | ns::JINGLE_SSMA) => {
                        SourceChild::Parameter(Parameter::parse(child)?)
                    }
                    ("ssrc-info", ns::JITMEET) => SourceChild::SsrcInfo(SsrcInfo::parse(child)?),
                    _ => SourceChild::Other(child.clone()),
                })
            })
            .collect::<Result<_, ParseError>>()?;
        Ok(Self {
            ssrc: Ssrc::new(xml::req_parse(el, "source", "ssrc", "a 32-bit SSRC")?),
            name: xml::opt(el, "name"),
            video_type: xml::opt(el, "videoType"),
            extra_attrs: xml::extra_attrs(el, &["ssrc", "name", "videoType"]),
            children,
        })
    }

    /// Writes the source.
    pub fn to_element(&self) -> Element {
        Builder::new("source", ns::JINGLE_SSMA)
            .attr("ssrc", self.ssrc)
            .opt("name", self.name.as_ref())
            .opt("videoType", self.video_type.as_ref())
            .extra(&self.extra_attrs)
            .children(self.children.iter().map(|child| match child {
                SourceChild::Parameter(parameter) => parameter.to_element(),
                SourceChild::SsrcInfo(info) => info.to_element(),
                SourceChild::Other(el) => el.clone(),
            }))
            .build()
    }

    /// The `ssrc-info` owner: an endpoint id, `jvb`, or (older Jicofo) a full occupant JID.
    pub fn owner(&self) -> Option<&str> {
        self.children.iter().find_map(|child| {
            if let SourceChild::SsrcInfo(info) = child {
                Some(info.owner.as_str())
            } else {
                None
            }
        })
    }

    /// The owner's endpoint id: the owner with any `room@muc/` prefix removed (§4.2: "accept
    /// both").
    pub fn owner_endpoint(&self) -> Option<&str> {
        self.owner().map(|owner| {
            owner
                .rsplit_once('/')
                .map_or(owner, |(_, resource)| resource)
        })
    }

    /// The value of the first parameter called `name`.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.children.iter().find_map(|child| match child {
            SourceChild::Parameter(parameter) if parameter.name.as_deref() == Some(name) => {
                parameter.value.as_deref()
            }
            SourceChild::Parameter(_) | SourceChild::SsrcInfo(_) | SourceChild::Other(_) => None,
        })
    }

    /// The `msid` parameter.
    pub fn msid(&self) -> Option<&str> {
        self.parameter("msid")
    }
}

/// `<ssrc-info xmlns="http://jitsi.org/jitmeet" owner=>` (jitsi-xmpp-extensions
/// `SSRCInfoPacketExtension`; jitsi-protocols.md §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcInfo {
    /// `owner`.
    pub owner: String,
    /// Attributes this crate does not model.
    pub extra_attrs: BTreeMap<String, String>,
}

impl SsrcInfo {
    /// Reads the element.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "ssrc-info", ns::JITMEET)?;
        Ok(Self {
            owner: xml::req(el, "ssrc-info", "owner")?.to_owned(),
            extra_attrs: xml::extra_attrs(el, &["owner"]),
        })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Builder::new("ssrc-info", ns::JITMEET)
            .attr("owner", &self.owner)
            .extra(&self.extra_attrs)
            .build()
    }
}

/// `<ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics=>` with `<source ssrc=>`
/// children (XEP-0339 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcGroup {
    /// `semantics`.
    pub semantics: SsrcGroupSemantics,
    /// The member SSRCs in order.
    pub sources: Vec<Ssrc>,
    /// Other children, kept verbatim after the sources.
    pub other: Vec<Element>,
}

impl SsrcGroup {
    /// Reads a group.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "ssrc-group", ns::JINGLE_SSMA)?;
        let mut sources = Vec::new();
        let mut other = Vec::new();
        for child in el.children() {
            if child.is("source", ns::JINGLE_SSMA) {
                sources.push(Ssrc::new(xml::req_parse(
                    child,
                    "source",
                    "ssrc",
                    "a 32-bit SSRC",
                )?));
            } else {
                other.push(child.clone());
            }
        }
        Ok(Self {
            semantics: SsrcGroupSemantics::from(xml::req(el, "ssrc-group", "semantics")?),
            sources,
            other,
        })
    }

    /// Writes the group.
    pub fn to_element(&self) -> Element {
        Builder::new("ssrc-group", ns::JINGLE_SSMA)
            .attr("semantics", &self.semantics)
            .children(self.sources.iter().map(|ssrc| {
                Builder::new("source", ns::JINGLE_SSMA)
                    .attr("ssrc", ssrc)
                    .build()
            }))
            .children(self.other.iter().cloned())
            .build()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn el(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    #[test]
    fn parameter_is_read_in_either_namespace_and_written_back_in_its_own() {
        let rtp = el(
            r#"<source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1"><parameter xmlns="urn:xmpp:jingle:apps:rtp:1" name="msid" value="a b"/></source>"#,
        );
        let ssma = el(
            r#"<source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="1"><parameter name="msid" value="a b"/></source>"#,
        );
        let rtp_source = Source::parse(&rtp).unwrap();
        let ssma_source = Source::parse(&ssma).unwrap();
        assert_eq!(rtp_source.msid(), Some("a b"));
        assert_eq!(ssma_source.msid(), Some("a b"));
        assert_eq!(rtp_source.to_element(), rtp);
        assert_eq!(ssma_source.to_element(), ssma);
    }

    #[test]
    fn owner_endpoint_strips_an_occupant_jid() {
        let source = Source::parse(&el(r#"<source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="7"><ssrc-info xmlns="http://jitsi.org/jitmeet" owner="room1@conference.meet.example.com/cafebabe"/></source>"#)).unwrap();
        assert_eq!(source.owner_endpoint(), Some("cafebabe"));
    }

    #[test]
    fn bad_numbers_are_typed_errors() {
        let big_ssrc = el(r#"<source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="4294967296"/>"#);
        assert!(matches!(
            Source::parse(&big_ssrc),
            Err(ParseError::BadAttribute {
                element: "source",
                attr: "ssrc",
                ..
            })
        ));
        let big_pt = el(r#"<payload-type xmlns="urn:xmpp:jingle:apps:rtp:1" id="128"/>"#);
        assert!(matches!(
            PayloadType::parse(&big_pt),
            Err(ParseError::BadAttribute {
                element: "payload-type",
                attr: "id",
                ..
            })
        ));
        let no_uri = el(r#"<rtp-hdrext xmlns="urn:xmpp:jingle:apps:rtp:rtp-hdrext:0" id="1"/>"#);
        assert_eq!(
            RtpHdrExt::parse(&no_uri),
            Err(ParseError::MissingAttribute {
                element: "rtp-hdrext",
                attr: "uri"
            })
        );
    }

    #[test]
    fn ssrc_group_and_rtcp_fb_round_trip() {
        let xml = r#"<description xmlns="urn:xmpp:jingle:apps:rtp:1" media="video"><payload-type id="100" name="VP8" clockrate="90000"><rtcp-fb xmlns="urn:xmpp:jingle:apps:rtp:rtcp-fb:0" type="ccm" subtype="fir"/><parameter name="x-google-start-bitrate" value="800"/></payload-type><ssrc-group xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" semantics="FID"><source ssrc="1"/><source ssrc="2"/></ssrc-group><bandwidth type="AS" value="9"/></description>"#;
        let description = Description::parse(&el(xml)).unwrap();
        let vp8 = description.payload_type_named("vp8").unwrap();
        assert_eq!(
            vp8.rtcp_fbs().next().unwrap().subtype.as_deref(),
            Some("fir")
        );
        let group = description.ssrc_groups().next().unwrap();
        assert_eq!(group.semantics, SsrcGroupSemantics::Fid);
        assert_eq!(group.sources, vec![Ssrc::new(1), Ssrc::new(2)]);
        assert!(matches!(
            description.children.last(),
            Some(DescriptionChild::Other(_))
        ));
        assert_eq!(description.to_element(), el(xml));
    }
}
