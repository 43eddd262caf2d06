//! The focus `conference` IQ the gateway sends before joining the room (jitsi-protocols.md §3.1).

use std::collections::BTreeMap;

use jid::BareJid;
use minidom::Element;

use crate::xml::{self, Builder};
use crate::{ParseError, ns};

/// `<conference xmlns="http://jitsi.org/protocol/focus" room= ready= focusjid= …>` with
/// `<property name= value=/>` children (jitsi-xmpp-extensions `ConferenceIq`; §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceIq {
    /// `room`: the conference room's bare JID.
    pub room: BareJid,
    /// `ready`: in Jicofo's result, whether the conference is started and its MUC joined.
    /// lib-jitsi-meet retries while it is `false`.
    pub ready: Option<bool>,
    /// `focusjid` (lower-case on the wire): Jicofo's real JID.
    pub focus_jid: Option<String>,
    /// `session-id`.
    pub session_id: Option<String>,
    /// `machine-uid`.
    pub machine_uid: Option<String>,
    /// `identity`.
    pub identity: Option<String>,
    /// `vnode`: redirect to a visitor node (visitors are out of scope, §6.3).
    pub vnode: Option<String>,
    /// `token`.
    pub token: Option<String>,
    /// `<property>` children in order (`authentication`, `sipGatewayEnabled`, ...).
    pub properties: Vec<Property>,
    /// Attributes this crate does not model (`live`, ...).
    pub extra_attrs: BTreeMap<String, String>,
    /// Other children, kept verbatim after the properties.
    pub other: Vec<Element>,
}

/// `<property name= value=/>` of a [`ConferenceIq`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// `name`.
    pub name: String,
    /// `value`.
    pub value: String,
}

impl ConferenceIq {
    /// The gateway's request for `room` (Example 3): only `room` and `machine-uid`.
    pub fn request(room: BareJid, machine_uid: &str) -> Self {
        Self {
            room,
            ready: None,
            focus_jid: None,
            session_id: None,
            machine_uid: Some(machine_uid.to_owned()),
            identity: None,
            vnode: None,
            token: None,
            properties: Vec::new(),
            extra_attrs: BTreeMap::new(),
            other: Vec::new(),
        }
    }

    /// Reads a conference IQ payload.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "conference", ns::FOCUS)?;
        let mut properties = Vec::new();
        let mut other = Vec::new();
        for child in el.children() {
            if child.is("property", ns::FOCUS) {
                properties.push(Property {
                    name: xml::req(child, "property", "name")?.to_owned(),
                    value: xml::opt(child, "value").unwrap_or_default(),
                });
            } else {
                other.push(child.clone());
            }
        }
        Ok(Self {
            room: xml::req_parse(el, "conference", "room", "a bare room JID")?,
            ready: xml::opt_bool(el, "conference", "ready")?,
            focus_jid: xml::opt(el, "focusjid"),
            session_id: xml::opt(el, "session-id"),
            machine_uid: xml::opt(el, "machine-uid"),
            identity: xml::opt(el, "identity"),
            vnode: xml::opt(el, "vnode"),
            token: xml::opt(el, "token"),
            properties,
            extra_attrs: xml::extra_attrs(el, KNOWN_ATTRS),
            other,
        })
    }

    /// Writes the payload.
    pub fn to_element(&self) -> Element {
        Builder::new("conference", ns::FOCUS)
            .attr("room", &self.room)
            .opt_bool("ready", self.ready)
            .opt("focusjid", self.focus_jid.as_ref())
            .opt("session-id", self.session_id.as_ref())
            .opt("machine-uid", self.machine_uid.as_ref())
            .opt("identity", self.identity.as_ref())
            .opt("vnode", self.vnode.as_ref())
            .opt("token", self.token.as_ref())
            .extra(&self.extra_attrs)
            .children(self.properties.iter().map(|property| {
                Builder::new("property", ns::FOCUS)
                    .attr("name", &property.name)
                    .attr("value", &property.value)
                    .build()
            }))
            .children(self.other.iter().cloned())
            .build()
    }

    /// The value of the first property called `name`.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|property| property.name == name)
            .map(|property| property.value.as_str())
    }
}

const KNOWN_ATTRS: &[&str] = &[
    "room",
    "ready",
    "focusjid",
    "session-id",
    "machine-uid",
    "identity",
    "vnode",
    "token",
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn request_has_room_and_machine_uid_only() {
        let room: BareJid = "room1@conference.meet.example.com".parse().unwrap();
        let el = ConferenceIq::request(room, "abc").to_element();
        assert_eq!(el.attr("room"), Some("room1@conference.meet.example.com"));
        assert_eq!(el.attr("machine-uid"), Some("abc"));
        assert_eq!(el.attrs().iter().count(), 2);
    }

    #[test]
    fn full_jid_room_and_bad_ready_are_errors() {
        let el: Element = r#"<conference xmlns="http://jitsi.org/protocol/focus" room="r@c/x"/>"#
            .parse()
            .unwrap();
        assert!(matches!(
            ConferenceIq::parse(&el),
            Err(ParseError::BadAttribute { attr: "room", .. })
        ));
        let el: Element =
            r#"<conference xmlns="http://jitsi.org/protocol/focus" room="r@c" ready="yes"/>"#
                .parse()
                .unwrap();
        assert!(matches!(
            ConferenceIq::parse(&el),
            Err(ParseError::BadAttribute { attr: "ready", .. })
        ));
    }
}
