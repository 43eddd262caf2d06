//! Jitsi Meet extensions outside Jingle: the mute IQ (§6.1), `json-message` (§4.6, §6.1), and the
//! presence extensions of a room join (§3.2 Example 4, §6.3, §7.3).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jid::{BareJid, Jid};
use minidom::Element;

use crate::rayo::Header;
use crate::xml::{self, Builder};
use crate::{ParseError, ns};

/// Declares a newtype over the text content of one element.
macro_rules! text_element {
    ($(#[$meta:meta])* $name:ident, $el:literal, $ns:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub String);

        impl $name {
            /// Reads the element.
            pub fn parse(el: &Element) -> Result<Self, ParseError> {
                xml::check(el, $el, $ns)?;
                Ok(Self(el.text()))
            }

            /// Writes the element.
            pub fn to_element(&self) -> Element {
                Builder::new($el, $ns).text(&self.0).build()
            }
        }
    };
}

/// Declares a newtype over the `true`/`false` text content of one element.
macro_rules! bool_element {
    ($(#[$meta:meta])* $name:ident, $el:literal, $ns:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub bool);

        impl $name {
            /// Reads the element.
            pub fn parse(el: &Element) -> Result<Self, ParseError> {
                xml::check(el, $el, $ns)?;
                Ok(Self(xml::text_bool(el, $el)?))
            }

            /// Writes the element.
            pub fn to_element(&self) -> Element {
                Builder::new($el, $ns).text(xml::bool_str(self.0)).build()
            }
        }
    };
}

text_element!(
    /// `<json-message xmlns="http://jitsi.org/jitmeet">`: JSON text (JSON-encoded sources §4.6,
    /// AV-moderation notices §6.1, transcription results §2.4). Kept as raw text.
    JsonMessage, "json-message", ns::JITMEET
);
text_element!(
    /// `<nick xmlns="http://jabber.org/protocol/nick">` (XEP-0172): the display name (§3.2).
    Nick, "nick", ns::NICK
);
text_element!(
    /// `<stats-id>` (jabber:client): the `STATS_ID` (§3.2).
    StatsId, "stats-id", ns::JABBER_CLIENT
);
text_element!(
    /// `<jitsi_participant_region>` (jabber:client): used by Jicofo for bridge selection (§3.2).
    ParticipantRegion, "jitsi_participant_region", ns::JABBER_CLIENT
);
text_element!(
    /// `<jitsi_participant_codecType>` (jabber:client): preferred video codec (§3.2, §7.3).
    ParticipantCodecType, "jitsi_participant_codecType", ns::JABBER_CLIENT
);
text_element!(
    /// `<jitsi_participant_raisedHand>` (jabber:client): raise hand under AV moderation (§6.1).
    RaisedHand, "jitsi_participant_raisedHand", ns::JABBER_CLIENT
);
text_element!(
    /// `<status>` (jabber:client): Jigasi's call state text (`Initializing Call`, `Ringing`, ...;
    /// §3.2).
    Status, "status", ns::JABBER_CLIENT
);
text_element!(
    /// `<SourceInfo>` (jabber:client): JSON `{"<sourceName>":{"muted":bool,...}}`, the modern
    /// mute state that overrides `audiomuted` (§3.2). Kept as raw text.
    SourceInfo, "SourceInfo", ns::JABBER_CLIENT
);
bool_element!(
    /// `<audiomuted>` (jabber:client): legacy audio mute state, still read by Jicofo (§3.2).
    AudioMuted, "audiomuted", ns::JABBER_CLIENT
);
bool_element!(
    /// `<videomuted>` (jabber:client): legacy video mute state (§3.2).
    VideoMuted, "videomuted", ns::JABBER_CLIENT
);

impl SourceInfo {
    /// The JSON for these `(source name, muted)` pairs, e.g. `{"d3adb33f-a0":{"muted":false}}`
    /// (§3.2). Names are JSON-escaped.
    pub fn for_sources<'a>(sources: impl IntoIterator<Item = (&'a str, bool)>) -> Self {
        let mut json = String::from("{");
        for (index, (name, muted)) in sources.into_iter().enumerate() {
            if index > 0 {
                json.push(',');
            }
            push_json_string(&mut json, name);
            json.push_str(":{\"muted\":");
            json.push_str(xml::bool_str(muted));
            json.push('}');
        }
        json.push('}');
        Self(json)
    }
}

/// `<features>` (jabber:client) with `<feature var=/>` children: how Jicofo and clients
/// recognise a Jigasi (§3.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Features {
    /// The `var`s in order.
    pub features: Vec<String>,
    /// Other children, kept verbatim after the features.
    pub other: Vec<Element>,
}

impl Features {
    /// Reads the element.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "features", ns::JABBER_CLIENT)?;
        let mut features = Vec::new();
        let mut other = Vec::new();
        for child in el.children() {
            if child.is("feature", ns::JABBER_CLIENT) {
                features.push(xml::req(child, "feature", "var")?.to_owned());
            } else {
                other.push(child.clone());
            }
        }
        Ok(Self { features, other })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Builder::new("features", ns::JABBER_CLIENT)
            .children(self.features.iter().map(|var| {
                Builder::new("feature", ns::JABBER_CLIENT)
                    .attr("var", var)
                    .build()
            }))
            .children(self.other.iter().cloned())
            .build()
    }

    /// Whether `var` is listed.
    pub fn contains(&self, var: &str) -> bool {
        self.features.iter().any(|feature| feature == var)
    }
}

/// `<initiator xmlns="http://jitsi.org/protocol/jigasi">` with Rayo `header`s: the extra
/// Rayo/SIP headers Jigasi republishes in its room presence (§2.3, §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JigasiInitiator {
    /// The headers in order.
    pub headers: Vec<Header>,
    /// Other children, kept verbatim after the headers.
    pub other: Vec<Element>,
}

impl JigasiInitiator {
    /// Reads the element.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "initiator", ns::JIGASI)?;
        let mut headers = Vec::new();
        let mut other = Vec::new();
        for child in el.children() {
            if child.is("header", ns::RAYO) {
                headers.push(Header::parse(child)?);
            } else {
                other.push(child.clone());
            }
        }
        Ok(Self { headers, other })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Builder::new("initiator", ns::JIGASI)
            .children(self.headers.iter().map(Header::to_element))
            .children(self.other.iter().cloned())
            .build()
    }
}

/// `<region xmlns="http://jitsi.org/jitsi-meet" id=/>` as gst-meet sends it (§7.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// `id`.
    pub id: String,
}

impl Region {
    /// Reads the element.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "region", ns::JITSI_MEET)?;
        Ok(Self {
            id: xml::req(el, "region", "id")?.to_owned(),
        })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Builder::new("region", ns::JITSI_MEET)
            .attr("id", &self.id)
            .build()
    }
}

/// `<lobbyroom>`: the lobby MUC's JID in a members-only join error (§6.3). Current servers put
/// it inside `<error>` in the Jitsi Meet namespace; older ones at presence level in jabber:client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LobbyRoom {
    /// The lobby room (`room1@lobby.meet.example.com`).
    pub room: BareJid,
    /// Whether it was written the old way (jabber:client, presence level).
    pub legacy: bool,
}

impl LobbyRoom {
    /// Reads the element in either namespace.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        let legacy = el.is("lobbyroom", ns::JABBER_CLIENT);
        if !legacy {
            xml::check(el, "lobbyroom", ns::JITMEET)?;
        }
        let text = el.text();
        let room = text.trim().parse().map_err(|_| ParseError::BadText {
            element: "lobbyroom",
            value: text.clone(),
            expected: "a bare room JID",
        })?;
        Ok(Self { room, legacy })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        let ns = if self.legacy {
            ns::JABBER_CLIENT
        } else {
            ns::JITMEET
        };
        Builder::new("lobbyroom", ns)
            .text(self.room.as_str())
            .build()
    }
}

/// `<c xmlns="http://jabber.org/protocol/caps" hash= node= ver=/>` (XEP-0115), sent in every
/// presence (§1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caps {
    /// `hash` (`sha-1`).
    pub hash: String,
    /// `node` (`http://jitsi.org`).
    pub node: String,
    /// `ver`: the verification string.
    pub ver: String,
    /// Attributes this crate does not model (legacy `ext`).
    pub extra_attrs: BTreeMap<String, String>,
}

impl Caps {
    /// A caps element.
    pub fn new(hash: &str, node: &str, ver: &str) -> Self {
        Self {
            hash: hash.to_owned(),
            node: node.to_owned(),
            ver: ver.to_owned(),
            extra_attrs: BTreeMap::new(),
        }
    }

    /// Reads the element.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "c", ns::CAPS)?;
        Ok(Self {
            hash: xml::req(el, "c", "hash")?.to_owned(),
            node: xml::req(el, "c", "node")?.to_owned(),
            ver: xml::req(el, "c", "ver")?.to_owned(),
            extra_attrs: xml::extra_attrs(el, &["hash", "node", "ver"]),
        })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Builder::new("c", ns::CAPS)
            .attr("hash", &self.hash)
            .attr("node", &self.node)
            .attr("ver", &self.ver)
            .extra(&self.extra_attrs)
            .build()
    }
}

/// The MUC join element `<x xmlns="http://jabber.org/protocol/muc">` with an optional
/// `<password>` (XEP-0045 §7.2; `JvbRoomPassword`, §6.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MucJoin {
    /// `<password>`.
    pub password: Option<String>,
    /// Other children (`history`, ...), kept verbatim after the password.
    pub other: Vec<Element>,
}

impl MucJoin {
    /// Reads the element.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "x", ns::MUC)?;
        let mut password = None;
        let mut other = Vec::new();
        for child in el.children() {
            if password.is_none() && child.is("password", ns::MUC) {
                password = Some(child.text());
            } else {
                other.push(child.clone());
            }
        }
        Ok(Self { password, other })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Builder::new("x", ns::MUC)
            .children(
                self.password
                    .as_deref()
                    .map(|password| Builder::new("password", ns::MUC).text(password).build()),
            )
            .children(self.other.iter().cloned())
            .build()
    }
}

str_enum! {
    /// Which media a mute IQ is about: its namespace (§6.1).
    pub enum MuteMedia {
        /// `http://jitsi.org/jitmeet/audio`.
        Audio => "http://jitsi.org/jitmeet/audio",
        /// `http://jitsi.org/jitmeet/desktop`.
        Desktop => "http://jitsi.org/jitmeet/desktop",
        /// `http://jitsi.org/jitmeet/video`.
        Video => "http://jitsi.org/jitmeet/video",
    }
}

/// `<mute xmlns="http://jitsi.org/jitmeet/audio" jid= actor=>true</mute>` (and the video and
/// desktop variants; jitsi-xmpp-extensions `MuteIq`; §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mute {
    /// The namespace, i.e. the media.
    pub media: MuteMedia,
    /// `jid`: the target (in a moderator's or self request).
    pub jid: Option<Jid>,
    /// `actor`: who muted (in Jicofo's notification to the target).
    pub actor: Option<Jid>,
    /// The text: `true` to mute, `false` to unmute.
    pub mute: bool,
}

impl Mute {
    /// Reads a mute payload in any of the three namespaces.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        let ns = el.ns();
        let media = MuteMedia::from(ns.as_str());
        if el.name() != "mute" || matches!(media, MuteMedia::Other(_)) {
            return Err(ParseError::WrongElement {
                expected: "mute",
                expected_ns: ns::JITMEET_AUDIO,
                name: el.name().to_owned(),
                ns,
            });
        }
        Ok(Self {
            media,
            jid: xml::opt_parse(el, "mute", "jid", "a JID")?,
            actor: xml::opt_parse(el, "mute", "actor", "a JID")?,
            mute: xml::text_bool(el, "mute")?,
        })
    }

    /// Writes the payload.
    pub fn to_element(&self) -> Element {
        Builder::new("mute", self.media.as_str())
            .opt("jid", self.jid.as_ref())
            .opt("actor", self.actor.as_ref())
            .text(xml::bool_str(self.mute))
            .build()
    }
}

fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn source_info_json_escapes_names() {
        assert_eq!(
            SourceInfo::for_sources([("d3adb33f-a0", false)]).0,
            r#"{"d3adb33f-a0":{"muted":false}}"#
        );
        assert_eq!(
            SourceInfo::for_sources([("a\"b", true), ("c\n", false)]).0,
            r#"{"a\"b":{"muted":true},"c\u000a":{"muted":false}}"#
        );
    }

    #[test]
    fn mute_rejects_bad_text_and_unknown_namespace() {
        let bad_text: Element = r#"<mute xmlns="http://jitsi.org/jitmeet/audio">yes</mute>"#
            .parse()
            .unwrap();
        assert!(matches!(
            Mute::parse(&bad_text),
            Err(ParseError::BadText {
                element: "mute",
                ..
            })
        ));
        let other_ns: Element = r#"<mute xmlns="urn:example">true</mute>"#.parse().unwrap();
        assert!(matches!(
            Mute::parse(&other_ns),
            Err(ParseError::WrongElement { .. })
        ));
        let video: Element =
            r#"<mute xmlns="http://jitsi.org/jitmeet/video" jid="r@c/x">false</mute>"#
                .parse()
                .unwrap();
        let mute = Mute::parse(&video).unwrap();
        assert_eq!(mute.media, MuteMedia::Video);
        assert!(!mute.mute);
        assert_eq!(mute.to_element(), video);
    }

    #[test]
    fn legacy_lobbyroom_is_read_and_bad_jid_rejected() {
        let legacy: Element =
            r#"<lobbyroom xmlns="jabber:client">room1@lobby.meet.example.com</lobbyroom>"#
                .parse()
                .unwrap();
        let lobby = LobbyRoom::parse(&legacy).unwrap();
        assert!(lobby.legacy);
        assert_eq!(lobby.to_element(), legacy);
        let bad: Element = r#"<lobbyroom xmlns="http://jitsi.org/jitmeet">a@b/c</lobbyroom>"#
            .parse()
            .unwrap();
        assert!(matches!(
            LobbyRoom::parse(&bad),
            Err(ParseError::BadText {
                element: "lobbyroom",
                ..
            })
        ));
    }

    #[test]
    fn audiomuted_reads_true_and_false_and_rejects_junk() {
        let el: Element = r#"<audiomuted xmlns="jabber:client"> true </audiomuted>"#
            .parse()
            .unwrap();
        assert_eq!(AudioMuted::parse(&el), Ok(AudioMuted(true)));
        let junk: Element = r#"<audiomuted xmlns="jabber:client">muted</audiomuted>"#
            .parse()
            .unwrap();
        assert!(AudioMuted::parse(&junk).is_err());
    }
}
