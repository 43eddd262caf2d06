//! A stanza envelope (`iq`, `message`, `presence` in jabber:client) whose children are read into
//! this crate's types where known and kept verbatim otherwise. It lets a caller (or the
//! Jicofo+JVB stand-in) read every example of jitsi-protocols.md in one call; standard XMPP
//! payloads (disco, MUC `#user`, ...) stay [`Payload::Other`] for jigasi-xmpp to interpret.

use std::collections::BTreeMap;

use jid::Jid;
use minidom::Element;

use crate::colibri::{Stat, Stats};
use crate::focus::ConferenceIq;
use crate::jingle::Jingle;
use crate::jitmeet::{
    AudioMuted, Caps, Features, JigasiInitiator, JsonMessage, LobbyRoom, MucJoin, Mute, Nick,
    ParticipantCodecType, ParticipantRegion, RaisedHand, Region, SourceInfo, StatsId, Status,
    VideoMuted,
};
use crate::rayo::{Dial, End, Hangup, Ref};
use crate::xml::{self, Builder};
use crate::{ParseError, ns};

strict_enum! {
    /// The stanza's element name (RFC 6120 §8).
    pub enum StanzaKind {
        /// `<iq>`.
        Iq => "iq",
        /// `<message>`.
        Message => "message",
        /// `<presence>`.
        Presence => "presence",
    }
}

/// An `iq`, `message` or `presence` with typed payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    /// Which stanza.
    pub kind: StanzaKind,
    /// `type` (`set`, `result`, `unavailable`, `error`, ...).
    pub stanza_type: Option<String>,
    /// `id`.
    pub id: Option<String>,
    /// `from`, as written (validated as a JID when parsed; kept verbatim because JID
    /// normalisation would lowercase `JigasiBrewery@…`, §1.2).
    pub from: Option<String>,
    /// `to`, as written (validated as a JID when parsed).
    pub to: Option<String>,
    /// Attributes this crate does not model.
    pub extra_attrs: BTreeMap<String, String>,
    /// The children in wire order.
    pub payloads: Vec<Payload>,
}

/// One child of a [`Stanza`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Jingle (§4).
    Jingle(Jingle),
    /// Rayo dial (§2.3).
    Dial(Dial),
    /// Rayo ref (§2.3).
    Ref(Ref),
    /// Rayo hangup (§2.3).
    Hangup(Hangup),
    /// Rayo end (§2.3).
    End(End),
    /// Focus conference IQ (§3.1).
    Conference(ConferenceIq),
    /// Mute IQ (§6.1).
    Mute(Mute),
    /// Colibri stats (§2.1).
    Stats(Stats),
    /// A lone colibri stat (§3.2).
    Stat(Stat),
    /// Nickname (§3.2).
    Nick(Nick),
    /// Jitsi features (§3.2).
    Features(Features),
    /// Legacy audio mute state (§3.2).
    AudioMuted(AudioMuted),
    /// Legacy video mute state (§3.2).
    VideoMuted(VideoMuted),
    /// JSON mute state (§3.2).
    SourceInfo(SourceInfo),
    /// Jigasi's Rayo headers (§3.2).
    JigasiInitiator(JigasiInitiator),
    /// Stats id (§3.2).
    StatsId(StatsId),
    /// Participant region (§3.2).
    ParticipantRegion(ParticipantRegion),
    /// Preferred video codec (§7.3).
    ParticipantCodecType(ParticipantCodecType),
    /// Raised hand (§6.1).
    RaisedHand(RaisedHand),
    /// gst-meet's region element (§7.3).
    Region(Region),
    /// Presence status text (§3.2).
    Status(Status),
    /// Entity capabilities (§1.4).
    Caps(Caps),
    /// MUC join element with password (§6.3).
    MucJoin(MucJoin),
    /// JSON message (§4.6, §6.1).
    JsonMessage(JsonMessage),
    /// Presence-level (legacy) lobby room (§6.3).
    LobbyRoom(LobbyRoom),
    /// Stanza error (§6.3).
    Error(StanzaError),
    /// Anything else, kept verbatim.
    Other(Element),
}

impl Stanza {
    /// An empty stanza.
    pub fn new(kind: StanzaKind) -> Self {
        Self {
            kind,
            stanza_type: None,
            id: None,
            from: None,
            to: None,
            extra_attrs: BTreeMap::new(),
            payloads: Vec::new(),
        }
    }

    /// Reads a stanza in jabber:client.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        let kind = match (
            el.name().parse::<StanzaKind>(),
            el.ns() == ns::JABBER_CLIENT,
        ) {
            (Ok(kind), true) => kind,
            _ => {
                return Err(ParseError::WrongElement {
                    expected: "iq",
                    expected_ns: ns::JABBER_CLIENT,
                    name: el.name().to_owned(),
                    ns: el.ns(),
                });
            }
        };
        let payloads = el
            .children()
            .map(Payload::parse)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            kind,
            stanza_type: xml::opt(el, "type"),
            id: xml::opt(el, "id"),
            from: jid_attr(el, "from")?,
            to: jid_attr(el, "to")?,
            extra_attrs: xml::extra_attrs(el, &["type", "id", "from", "to"]),
            payloads,
        })
    }

    /// Writes the stanza.
    pub fn to_element(&self) -> Element {
        Builder::new(self.kind.as_str(), ns::JABBER_CLIENT)
            .opt("type", self.stanza_type.as_ref())
            .opt("id", self.id.as_ref())
            .opt("from", self.from.as_ref())
            .opt("to", self.to.as_ref())
            .extra(&self.extra_attrs)
            .children(self.payloads.iter().map(Payload::to_element))
            .build()
    }

    /// `from` as a (normalised) JID; `None` when absent or not a JID.
    pub fn from_jid(&self) -> Option<Jid> {
        self.from.as_deref().and_then(|from| from.parse().ok())
    }

    /// `to` as a (normalised) JID; `None` when absent or not a JID.
    pub fn to_jid(&self) -> Option<Jid> {
        self.to.as_deref().and_then(|to| to.parse().ok())
    }

    /// The Jingle payload, if any.
    pub fn jingle(&self) -> Option<&Jingle> {
        self.payloads.iter().find_map(|payload| {
            if let Payload::Jingle(jingle) = payload {
                Some(jingle)
            } else {
                None
            }
        })
    }

    /// The lobby room of a members-only join error, wherever the server put it (§6.3).
    pub fn lobby_room(&self) -> Option<&LobbyRoom> {
        self.payloads.iter().find_map(|payload| {
            if let Payload::LobbyRoom(room) = payload {
                Some(room)
            } else if let Payload::Error(error) = payload {
                error.lobby_room.as_ref()
            } else {
                None
            }
        })
    }
}

impl Payload {
    /// Reads one stanza child.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        let ns = el.ns();
        Ok(match (el.name(), ns.as_str()) {
            ("jingle", ns::JINGLE) => Self::Jingle(Jingle::parse(el)?),
            ("dial", ns::RAYO) => Self::Dial(Dial::parse(el)?),
            ("ref", ns::RAYO) => Self::Ref(Ref::parse(el)?),
            ("hangup", ns::RAYO) => Self::Hangup(Hangup::parse(el)?),
            ("end", ns::RAYO) => Self::End(End::parse(el)?),
            ("conference", ns::FOCUS) => Self::Conference(ConferenceIq::parse(el)?),
            ("mute", ns::JITMEET_AUDIO | ns::JITMEET_VIDEO | ns::JITMEET_DESKTOP) => {
                Self::Mute(Mute::parse(el)?)
            }
            ("stats", ns::COLIBRI) => Self::Stats(Stats::parse(el)?),
            ("stat", ns::COLIBRI) => Self::Stat(Stat::parse(el)?),
            ("nick", ns::NICK) => Self::Nick(Nick::parse(el)?),
            ("initiator", ns::JIGASI) => Self::JigasiInitiator(JigasiInitiator::parse(el)?),
            ("region", ns::JITSI_MEET) => Self::Region(Region::parse(el)?),
            ("c", ns::CAPS) => Self::Caps(Caps::parse(el)?),
            ("x", ns::MUC) => Self::MucJoin(MucJoin::parse(el)?),
            ("json-message", ns::JITMEET) => Self::JsonMessage(JsonMessage::parse(el)?),
            ("features", ns::JABBER_CLIENT) => Self::Features(Features::parse(el)?),
            ("audiomuted", ns::JABBER_CLIENT) => Self::AudioMuted(AudioMuted::parse(el)?),
            ("videomuted", ns::JABBER_CLIENT) => Self::VideoMuted(VideoMuted::parse(el)?),
            ("SourceInfo", ns::JABBER_CLIENT) => Self::SourceInfo(SourceInfo::parse(el)?),
            ("stats-id", ns::JABBER_CLIENT) => Self::StatsId(StatsId::parse(el)?),
            ("jitsi_participant_region", ns::JABBER_CLIENT) => {
                Self::ParticipantRegion(ParticipantRegion::parse(el)?)
            }
            ("jitsi_participant_codecType", ns::JABBER_CLIENT) => {
                Self::ParticipantCodecType(ParticipantCodecType::parse(el)?)
            }
            ("jitsi_participant_raisedHand", ns::JABBER_CLIENT) => {
                Self::RaisedHand(RaisedHand::parse(el)?)
            }
            ("status", ns::JABBER_CLIENT) => Self::Status(Status::parse(el)?),
            ("lobbyroom", ns::JABBER_CLIENT) => Self::LobbyRoom(LobbyRoom::parse(el)?),
            ("error", ns::JABBER_CLIENT) => Self::Error(StanzaError::parse(el)?),
            _ => Self::Other(el.clone()),
        })
    }

    /// Writes the payload.
    pub fn to_element(&self) -> Element {
        match self {
            Self::Jingle(value) => value.to_element(),
            Self::Dial(value) => value.to_element(),
            Self::Ref(value) => value.to_element(),
            Self::Hangup(value) => value.to_element(),
            Self::End(value) => value.to_element(),
            Self::Conference(value) => value.to_element(),
            Self::Mute(value) => value.to_element(),
            Self::Stats(value) => value.to_element(),
            Self::Stat(value) => value.to_element(),
            Self::Nick(value) => value.to_element(),
            Self::Features(value) => value.to_element(),
            Self::AudioMuted(value) => value.to_element(),
            Self::VideoMuted(value) => value.to_element(),
            Self::SourceInfo(value) => value.to_element(),
            Self::JigasiInitiator(value) => value.to_element(),
            Self::StatsId(value) => value.to_element(),
            Self::ParticipantRegion(value) => value.to_element(),
            Self::ParticipantCodecType(value) => value.to_element(),
            Self::RaisedHand(value) => value.to_element(),
            Self::Region(value) => value.to_element(),
            Self::Status(value) => value.to_element(),
            Self::Caps(value) => value.to_element(),
            Self::MucJoin(value) => value.to_element(),
            Self::JsonMessage(value) => value.to_element(),
            Self::LobbyRoom(value) => value.to_element(),
            Self::Error(value) => value.to_element(),
            Self::Other(el) => el.clone(),
        }
    }
}

fn jid_attr(el: &Element, attr: &'static str) -> Result<Option<String>, ParseError> {
    let Some(value) = el.attr(attr) else {
        return Ok(None);
    };
    if value.parse::<Jid>().is_err() {
        return Err(ParseError::BadAttribute {
            element: "stanza",
            attr,
            value: value.to_owned(),
            expected: "a JID",
        });
    }
    Ok(Some(value.to_owned()))
}

/// `<error type=>` (RFC 6120 §8.3) with its condition, optional text and Jitsi's `lobbyroom`
/// (§6.3). Written back as condition, text, lobby room, then the other children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    /// `type` (`auth`, `cancel`, `modify`, `wait`, `continue`).
    pub error_type: String,
    /// `by`.
    pub by: Option<String>,
    /// The defined condition's name (`registration-required`, `not-authorized`, ...).
    pub condition: Option<String>,
    /// `<text>`.
    pub text: Option<String>,
    /// `<lobbyroom xmlns="http://jitsi.org/jitmeet">` of a members-only room.
    pub lobby_room: Option<LobbyRoom>,
    /// Other children, kept verbatim.
    pub other: Vec<Element>,
}

impl StanzaError {
    /// Reads a stanza error.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "error", ns::JABBER_CLIENT)?;
        let mut error = Self {
            error_type: xml::req(el, "error", "type")?.to_owned(),
            by: xml::opt(el, "by"),
            condition: None,
            text: None,
            lobby_room: None,
            other: Vec::new(),
        };
        for child in el.children() {
            if error.text.is_none() && child.is("text", ns::STANZAS) {
                error.text = Some(child.text());
            } else if error.condition.is_none() && child.ns() == ns::STANZAS {
                error.condition = Some(child.name().to_owned());
            } else if error.lobby_room.is_none() && child.is("lobbyroom", ns::JITMEET) {
                error.lobby_room = Some(LobbyRoom::parse(child)?);
            } else {
                error.other.push(child.clone());
            }
        }
        Ok(error)
    }

    /// Writes the error.
    pub fn to_element(&self) -> Element {
        Builder::new("error", ns::JABBER_CLIENT)
            .attr("type", &self.error_type)
            .opt("by", self.by.as_ref())
            .children(
                self.condition
                    .as_deref()
                    .map(|condition| Element::bare(condition, ns::STANZAS)),
            )
            .children(
                self.text
                    .as_deref()
                    .map(|text| Builder::new("text", ns::STANZAS).text(text).build()),
            )
            .children(self.lobby_room.as_ref().map(LobbyRoom::to_element))
            .children(self.other.iter().cloned())
            .build()
    }
}
