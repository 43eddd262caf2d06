//! The Jingle element (XEP-0166) with every action Jicofo uses, `content`, `reason`, the BUNDLE
//! `group` (XEP-0338) and Jitsi's Jingle-level extensions: `bridge-session`, `startmuted`,
//! `ice-state`, `json-message` (jitsi-protocols.md §4).

use std::collections::BTreeMap;
use std::fmt;

use jid::Jid;
use minidom::Element;

use crate::ice::Transport;
use crate::jitmeet::JsonMessage;
use crate::rtp::{Description, Senders};
use crate::xml::{self, Builder};
use crate::{ParseError, ns};

str_enum! {
    /// The Jingle `action` (XEP-0166 §7.2 plus Jitsi's source actions, jitsi-protocols.md §4).
    /// Unknown actions are kept as [`Action::Other`] so that the caller can answer
    /// `feature-not-implemented` instead of failing the parse.
    pub enum Action {
        /// `addsource`: Jicofo's legacy name for `source-add` (§4.1).
        AddSourceLegacy => "addsource",
        /// `content-accept`.
        ContentAccept => "content-accept",
        /// `content-add`.
        ContentAdd => "content-add",
        /// `content-modify`.
        ContentModify => "content-modify",
        /// `content-reject`.
        ContentReject => "content-reject",
        /// `content-remove`.
        ContentRemove => "content-remove",
        /// `description-info`.
        DescriptionInfo => "description-info",
        /// `removesource`: legacy `source-remove`.
        RemoveSourceLegacy => "removesource",
        /// `security-info`.
        SecurityInfo => "security-info",
        /// `session-accept`: the participant's answer (§4.3).
        SessionAccept => "session-accept",
        /// `session-info`: ICE failure reports and ICE restarts (§4.5).
        SessionInfo => "session-info",
        /// `session-initiate`: Jicofo's offer (§4.2).
        SessionInitiate => "session-initiate",
        /// `session-terminate` (§4.5).
        SessionTerminate => "session-terminate",
        /// `source-add` (§4.4).
        SourceAdd => "source-add",
        /// `source-remove` (§4.4).
        SourceRemove => "source-remove",
        /// `transport-accept`: the answer to `transport-replace`.
        TransportAccept => "transport-accept",
        /// `transport-info`: trickled candidates (§4.3).
        TransportInfo => "transport-info",
        /// `transport-reject`.
        TransportReject => "transport-reject",
        /// `transport-replace` (§4.5).
        TransportReplace => "transport-replace",
    }
}

impl Action {
    /// `source-add` or its legacy spelling.
    pub fn is_source_add(&self) -> bool {
        matches!(self, Self::SourceAdd | Self::AddSourceLegacy)
    }

    /// `source-remove` or its legacy spelling.
    pub fn is_source_remove(&self) -> bool {
        matches!(self, Self::SourceRemove | Self::RemoveSourceLegacy)
    }
}

/// A Jingle session id (`sid`). Jicofo routes incoming Jingle by it (§4.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid(pub String);

impl Sid {
    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `<jingle xmlns="urn:xmpp:jingle:1" action= sid= initiator= responder=>` (XEP-0166 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jingle {
    /// `action`.
    pub action: Action,
    /// `sid`.
    pub sid: Sid,
    /// `initiator` (Jicofo's real JID in its offer).
    pub initiator: Option<Jid>,
    /// `responder` (the participant's JID in its answer).
    pub responder: Option<Jid>,
    /// Attributes this crate does not model.
    pub extra_attrs: BTreeMap<String, String>,
    /// The children in wire order.
    pub children: Vec<JingleChild>,
}

/// One child of a [`Jingle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JingleChild {
    /// `<content>`.
    Content(Content),
    /// `<reason>`.
    Reason(Reason),
    /// `<group xmlns="urn:xmpp:jingle:apps:grouping:0">`.
    Group(Group),
    /// `<bridge-session xmlns="http://jitsi.org/protocol/focus">`.
    BridgeSession(BridgeSession),
    /// `<startmuted xmlns="http://jitsi.org/jitmeet/start-muted">`.
    StartMuted(StartMuted),
    /// `<ice-state xmlns="http://jitsi.org/protocol/focus">`.
    IceState(IceState),
    /// `<json-message xmlns="http://jitsi.org/jitmeet">` (JSON-encoded sources, §4.6).
    JsonMessage(JsonMessage),
    /// Any other child, kept verbatim (trace context, ...).
    Other(Element),
}

impl Jingle {
    /// A Jingle element without children.
    pub fn new(action: Action, sid: Sid) -> Self {
        Self {
            action,
            sid,
            initiator: None,
            responder: None,
            extra_attrs: BTreeMap::new(),
            children: Vec::new(),
        }
    }

    /// Reads a Jingle element.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "jingle", ns::JINGLE)?;
        let children = el
            .children()
            .map(JingleChild::parse)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            action: Action::from(xml::req(el, "jingle", "action")?),
            sid: Sid(xml::req(el, "jingle", "sid")?.to_owned()),
            initiator: xml::opt_parse(el, "jingle", "initiator", "a JID")?,
            responder: xml::opt_parse(el, "jingle", "responder", "a JID")?,
            extra_attrs: xml::extra_attrs(el, &["action", "sid", "initiator", "responder"]),
            children,
        })
    }

    /// Writes the Jingle element.
    pub fn to_element(&self) -> Element {
        Builder::new("jingle", ns::JINGLE)
            .attr("action", &self.action)
            .opt("initiator", self.initiator.as_ref())
            .opt("responder", self.responder.as_ref())
            .attr("sid", &self.sid)
            .extra(&self.extra_attrs)
            .children(self.children.iter().map(JingleChild::to_element))
            .build()
    }

    /// The contents in order.
    pub fn contents(&self) -> impl Iterator<Item = &Content> {
        self.children.iter().filter_map(|child| {
            if let JingleChild::Content(content) = child {
                Some(content)
            } else {
                None
            }
        })
    }

    /// The contents in order, mutable.
    pub fn contents_mut(&mut self) -> impl Iterator<Item = &mut Content> {
        self.children.iter_mut().filter_map(|child| {
            if let JingleChild::Content(content) = child {
                Some(content)
            } else {
                None
            }
        })
    }

    /// The content whose description has this media.
    pub fn content_for(&self, media: &crate::rtp::Media) -> Option<&Content> {
        self.contents().find(|content| {
            content
                .description
                .as_ref()
                .is_some_and(|description| description.media.as_ref() == Some(media))
        })
    }

    /// The first `<transport>` in any content: the one Jicofo uses (§4.3 rule 1).
    pub fn first_transport(&self) -> Option<&Transport> {
        self.contents()
            .find_map(|content| content.transport.as_ref())
    }

    /// The termination reason.
    pub fn reason(&self) -> Option<&Reason> {
        self.children.iter().find_map(|child| {
            if let JingleChild::Reason(reason) = child {
                Some(reason)
            } else {
                None
            }
        })
    }

    /// The BUNDLE (or other) group.
    pub fn group(&self) -> Option<&Group> {
        self.children.iter().find_map(|child| {
            if let JingleChild::Group(group) = child {
                Some(group)
            } else {
                None
            }
        })
    }

    /// The bridge session, needed to request restarts (§4.5).
    pub fn bridge_session(&self) -> Option<&BridgeSession> {
        self.children.iter().find_map(|child| {
            if let JingleChild::BridgeSession(session) = child {
                Some(session)
            } else {
                None
            }
        })
    }

    /// The start-muted policy.
    pub fn start_muted(&self) -> Option<&StartMuted> {
        self.children.iter().find_map(|child| {
            if let JingleChild::StartMuted(start_muted) = child {
                Some(start_muted)
            } else {
                None
            }
        })
    }

    /// The JSON-encoded sources (§4.6).
    pub fn json_message(&self) -> Option<&JsonMessage> {
        self.children.iter().find_map(|child| {
            if let JingleChild::JsonMessage(message) = child {
                Some(message)
            } else {
                None
            }
        })
    }

    /// The reported ICE state (`failed`) of a `session-info` (§4.5).
    pub fn ice_state(&self) -> Option<&IceState> {
        self.children.iter().find_map(|child| {
            if let JingleChild::IceState(state) = child {
                Some(state)
            } else {
                None
            }
        })
    }
}

impl JingleChild {
    fn parse(el: &Element) -> Result<Self, ParseError> {
        Ok(match (el.name(), el.ns().as_str()) {
            ("content", ns::JINGLE) => Self::Content(Content::parse(el)?),
            ("reason", ns::JINGLE) => Self::Reason(Reason::parse(el)?),
            ("group", ns::JINGLE_GROUPING) => Self::Group(Group::parse(el)?),
            ("bridge-session", ns::FOCUS) => Self::BridgeSession(BridgeSession::parse(el)?),
            ("startmuted", ns::JITMEET_START_MUTED) => Self::StartMuted(StartMuted::parse(el)?),
            ("ice-state", ns::FOCUS) => Self::IceState(IceState::parse(el)?),
            ("json-message", ns::JITMEET) => Self::JsonMessage(JsonMessage::parse(el)?),
            _ => Self::Other(el.clone()),
        })
    }

    fn to_element(&self) -> Element {
        match self {
            Self::Content(content) => content.to_element(),
            Self::Reason(reason) => reason.to_element(),
            Self::Group(group) => group.to_element(),
            Self::BridgeSession(session) => session.to_element(),
            Self::StartMuted(start_muted) => start_muted.to_element(),
            Self::IceState(state) => state.to_element(),
            Self::JsonMessage(message) => message.to_element(),
            Self::Other(el) => el.clone(),
        }
    }
}

strict_enum! {
    /// A content's `creator` (XEP-0166 §7.3).
    pub enum Creator {
        /// `initiator`.
        Initiator => "initiator",
        /// `responder`.
        Responder => "responder",
    }
}

/// `<content creator= name= senders=>` with an RTP description and an ICE-UDP transport
/// (XEP-0166 §7.3). Written back as description, transport, then the other children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// `creator`; absent in Jicofo's source-add (§4.4).
    pub creator: Option<Creator>,
    /// `name` (`audio`, `video`, `data`).
    pub name: String,
    /// `senders`.
    pub senders: Option<Senders>,
    /// Attributes this crate does not model (`disposition`).
    pub extra_attrs: BTreeMap<String, String>,
    /// The RTP description.
    pub description: Option<Description>,
    /// The ICE-UDP transport.
    pub transport: Option<Transport>,
    /// Other children (other application or transport namespaces), kept verbatim.
    pub other: Vec<Element>,
}

impl Content {
    /// A content with neither description nor transport.
    pub fn new(name: &str) -> Self {
        Self {
            creator: None,
            name: name.to_owned(),
            senders: None,
            extra_attrs: BTreeMap::new(),
            description: None,
            transport: None,
            other: Vec::new(),
        }
    }

    /// Reads a content.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "content", ns::JINGLE)?;
        let mut content = Self {
            creator: xml::opt_parse(el, "content", "creator", "initiator or responder")?,
            name: xml::req(el, "content", "name")?.to_owned(),
            senders: xml::opt_parse(
                el,
                "content",
                "senders",
                "both, initiator, none or responder",
            )?,
            extra_attrs: xml::extra_attrs(el, &["creator", "name", "senders"]),
            description: None,
            transport: None,
            other: Vec::new(),
        };
        for child in el.children() {
            if content.description.is_none() && child.is("description", ns::JINGLE_RTP) {
                content.description = Some(Description::parse(child)?);
            } else if content.transport.is_none() && child.is("transport", ns::JINGLE_ICE_UDP) {
                content.transport = Some(Transport::parse(child)?);
            } else {
                content.other.push(child.clone());
            }
        }
        Ok(content)
    }

    /// Writes the content.
    pub fn to_element(&self) -> Element {
        Builder::new("content", ns::JINGLE)
            .opt("creator", self.creator)
            .attr("name", &self.name)
            .opt("senders", self.senders)
            .extra(&self.extra_attrs)
            .children(self.description.as_ref().map(Description::to_element))
            .children(self.transport.as_ref().map(Transport::to_element))
            .children(self.other.iter().cloned())
            .build()
    }
}

str_enum! {
    /// The condition of a Jingle `reason` (XEP-0166 §7.4).
    pub enum ReasonCondition {
        /// `alternative-session`.
        AlternativeSession => "alternative-session",
        /// `busy`.
        Busy => "busy",
        /// `cancel`.
        Cancel => "cancel",
        /// `connectivity-error`.
        ConnectivityError => "connectivity-error",
        /// `decline`.
        Decline => "decline",
        /// `expired`: Jicofo's "Idle session timeout" (§4.5).
        Expired => "expired",
        /// `failed-application`.
        FailedApplication => "failed-application",
        /// `failed-transport`.
        FailedTransport => "failed-transport",
        /// `general-error`: "jingle session failed".
        GeneralError => "general-error",
        /// `gone`.
        Gone => "gone",
        /// `incompatible-parameters`.
        IncompatibleParameters => "incompatible-parameters",
        /// `media-error`.
        MediaError => "media-error",
        /// `security-error`.
        SecurityError => "security-error",
        /// `success`: with text `moving` for a bridge move (§4.5).
        Success => "success",
        /// `timeout`.
        Timeout => "timeout",
        /// `unsupported-applications`.
        UnsupportedApplications => "unsupported-applications",
        /// `unsupported-transports`.
        UnsupportedTransports => "unsupported-transports",
    }
}

/// `<reason><condition/><text>…</text></reason>` (XEP-0166 §7.4). Written back as condition,
/// text, then the other children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The condition element's name.
    pub condition: ReasonCondition,
    /// `<text>`.
    pub text: Option<String>,
    /// Other children, kept verbatim (the condition's own children, such as the `sid` of
    /// `alternative-session`, are not kept).
    pub other: Vec<Element>,
}

impl Reason {
    /// A reason with an optional text.
    pub fn new(condition: ReasonCondition, text: Option<&str>) -> Self {
        Self {
            condition,
            text: text.map(str::to_owned),
            other: Vec::new(),
        }
    }

    /// Reads a reason.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "reason", ns::JINGLE)?;
        let mut condition = None;
        let mut text = None;
        let mut other = Vec::new();
        for child in el.children() {
            if text.is_none() && child.is("text", ns::JINGLE) {
                text = Some(child.text());
            } else if condition.is_none() && child.ns() == ns::JINGLE {
                condition = Some(ReasonCondition::from(child.name()));
            } else {
                other.push(child.clone());
            }
        }
        let condition = condition.ok_or(ParseError::MissingChild {
            element: "reason",
            child: "condition",
        })?;
        Ok(Self {
            condition,
            text,
            other,
        })
    }

    /// Writes the reason.
    pub fn to_element(&self) -> Element {
        Builder::new("reason", ns::JINGLE)
            .child(Element::bare(self.condition.as_str(), ns::JINGLE))
            .children(
                self.text
                    .as_deref()
                    .map(|text| Builder::new("text", ns::JINGLE).text(text).build()),
            )
            .children(self.other.iter().cloned())
            .build()
    }
}

/// `<group xmlns="urn:xmpp:jingle:apps:grouping:0" semantics="BUNDLE"><content name=/>…`
/// (XEP-0338).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `semantics` (`BUNDLE`).
    pub semantics: String,
    /// The grouped content names in order.
    pub contents: Vec<String>,
}

impl Group {
    /// A BUNDLE group of these contents.
    pub fn bundle<'a>(contents: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            semantics: "BUNDLE".to_owned(),
            contents: contents.into_iter().map(str::to_owned).collect(),
        }
    }

    /// Reads a group.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "group", ns::JINGLE_GROUPING)?;
        let contents = el
            .children()
            .filter(|child| child.is("content", ns::JINGLE_GROUPING))
            .map(|child| xml::req(child, "content", "name").map(str::to_owned))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            semantics: xml::req(el, "group", "semantics")?.to_owned(),
            contents,
        })
    }

    /// Writes the group.
    pub fn to_element(&self) -> Element {
        Builder::new("group", ns::JINGLE_GROUPING)
            .attr("semantics", &self.semantics)
            .children(self.contents.iter().map(|name| {
                Builder::new("content", ns::JINGLE_GROUPING)
                    .attr("name", name)
                    .build()
            }))
            .build()
    }
}

/// `<bridge-session xmlns="http://jitsi.org/protocol/focus" id= region= restart= ice-restart=>`
/// (jitsi-protocols.md §4.2, §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSession {
    /// `id`: must match for restart requests (else `item-not-found`).
    pub id: String,
    /// `region` of the bridge.
    pub region: Option<String>,
    /// `restart="true"`: a participant's full-restart request.
    pub restart: Option<bool>,
    /// `ice-restart="true"`: in-place ICE restart (2026 Jicofo).
    pub ice_restart: Option<bool>,
    /// Attributes this crate does not model.
    pub extra_attrs: BTreeMap<String, String>,
}

impl BridgeSession {
    /// A bridge session reference with only an id.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            region: None,
            restart: None,
            ice_restart: None,
            extra_attrs: BTreeMap::new(),
        }
    }

    /// Reads the element.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "bridge-session", ns::FOCUS)?;
        Ok(Self {
            id: xml::req(el, "bridge-session", "id")?.to_owned(),
            region: xml::opt(el, "region"),
            restart: xml::opt_bool(el, "bridge-session", "restart")?,
            ice_restart: xml::opt_bool(el, "bridge-session", "ice-restart")?,
            extra_attrs: xml::extra_attrs(el, &["id", "region", "restart", "ice-restart"]),
        })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Builder::new("bridge-session", ns::FOCUS)
            .attr("id", &self.id)
            .opt("region", self.region.as_ref())
            .opt_bool("restart", self.restart)
            .opt_bool("ice-restart", self.ice_restart)
            .extra(&self.extra_attrs)
            .build()
    }
}

/// `<startmuted xmlns="http://jitsi.org/jitmeet/start-muted" audio= video=>` in a
/// session-initiate (jitsi-protocols.md §4.2, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartMuted {
    /// `audio`.
    pub audio: Option<bool>,
    /// `video`.
    pub video: Option<bool>,
}

impl StartMuted {
    /// Reads the element.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "startmuted", ns::JITMEET_START_MUTED)?;
        Ok(Self {
            audio: xml::opt_bool(el, "startmuted", "audio")?,
            video: xml::opt_bool(el, "startmuted", "video")?,
        })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Builder::new("startmuted", ns::JITMEET_START_MUTED)
            .opt_bool("audio", self.audio)
            .opt_bool("video", self.video)
            .build()
    }
}

/// `<ice-state xmlns="http://jitsi.org/protocol/focus">failed</ice-state>` in a `session-info`
/// reporting ICE failure (jitsi-protocols.md §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceState(pub String);

impl IceState {
    /// Reads the element.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "ice-state", ns::FOCUS)?;
        Ok(Self(el.text()))
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Builder::new("ice-state", ns::FOCUS).text(&self.0).build()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn unknown_action_is_kept_not_rejected() {
        let el: Element = r#"<jingle xmlns="urn:xmpp:jingle:1" action="frobnicate" sid="s"/>"#
            .parse()
            .unwrap();
        let jingle = Jingle::parse(&el).unwrap();
        assert_eq!(jingle.action, Action::Other("frobnicate".to_owned()));
        assert_eq!(jingle.to_element(), el);
    }

    #[test]
    fn every_known_action_round_trips_through_its_spelling() {
        for spelling in [
            "addsource",
            "content-accept",
            "content-add",
            "content-modify",
            "content-reject",
            "content-remove",
            "description-info",
            "removesource",
            "security-info",
            "session-accept",
            "session-info",
            "session-initiate",
            "session-terminate",
            "source-add",
            "source-remove",
            "transport-accept",
            "transport-info",
            "transport-reject",
            "transport-replace",
        ] {
            let action = Action::from(spelling);
            assert!(!matches!(action, Action::Other(_)), "{spelling} is known");
            assert_eq!(action.as_str(), spelling);
        }
        assert!(Action::AddSourceLegacy.is_source_add());
        assert!(Action::SourceRemove.is_source_remove());
    }

    #[test]
    fn missing_sid_bad_creator_and_empty_reason_are_typed_errors() {
        let no_sid: Element = r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-info"/>"#
            .parse()
            .unwrap();
        assert_eq!(
            Jingle::parse(&no_sid),
            Err(ParseError::MissingAttribute {
                element: "jingle",
                attr: "sid"
            })
        );
        let bad_creator: Element =
            r#"<content xmlns="urn:xmpp:jingle:1" creator="focus" name="audio"/>"#
                .parse()
                .unwrap();
        assert!(matches!(
            Content::parse(&bad_creator),
            Err(ParseError::BadAttribute {
                attr: "creator",
                ..
            })
        ));
        let empty_reason: Element = r#"<reason xmlns="urn:xmpp:jingle:1"><text>x</text></reason>"#
            .parse()
            .unwrap();
        assert_eq!(
            Reason::parse(&empty_reason),
            Err(ParseError::MissingChild {
                element: "reason",
                child: "condition"
            })
        );
    }

    #[test]
    fn bad_initiator_jid_is_a_typed_error() {
        let el: Element = r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="s" initiator="a@b@c"/>"#
            .parse()
            .unwrap();
        assert!(matches!(
            Jingle::parse(&el),
            Err(ParseError::BadAttribute {
                attr: "initiator",
                ..
            })
        ));
    }
}
