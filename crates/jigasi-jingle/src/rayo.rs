//! Rayo (XEP-0327) as Jicofo and Jigasi use it: `dial` with `header`s, the `ref` result,
//! `hangup`, and the `end` presence (jitsi-protocols.md §2.3).

use std::collections::BTreeMap;

use minidom::Element;

use crate::xml::{self, Builder};
use crate::{ParseError, ns};

/// `<header name= value=/>` in the Rayo namespace: a SIP header or a Jigasi control value such
/// as `JvbRoomName` / `JvbRoomPassword` (§2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `name`.
    pub name: String,
    /// `value`.
    pub value: String,
}

impl Header {
    /// A header.
    pub fn new(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }

    /// Reads a header.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "header", ns::RAYO)?;
        Ok(Self {
            name: xml::req(el, "header", "name")?.to_owned(),
            // Jitsi writes an empty value as an absent attribute.
            value: xml::opt(el, "value").unwrap_or_default(),
        })
    }

    /// Writes the header.
    pub fn to_element(&self) -> Element {
        Builder::new("header", ns::RAYO)
            .attr("name", &self.name)
            .attr("value", &self.value)
            .build()
    }
}

/// `<dial xmlns="urn:xmpp:rayo:1" to= from=>` with `header` children (§2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// `to`: the number or URI to call, or `jitsi_meet_transcribe` (§2.4). Never empty.
    pub to: String,
    /// `from`.
    pub from: Option<String>,
    /// The headers in order.
    pub headers: Vec<Header>,
    /// Attributes this crate does not model.
    pub extra_attrs: BTreeMap<String, String>,
    /// Other children, kept verbatim after the headers.
    pub other: Vec<Element>,
}

impl Dial {
    /// The header `JvbRoomName` Jigasi requires (§2.3).
    pub const ROOM_NAME_HEADER: &'static str = "JvbRoomName";
    /// The header `JvbRoomPassword`.
    pub const ROOM_PASSWORD_HEADER: &'static str = "JvbRoomPassword";
    /// The `to` that asks for a transcriber instead of a call (§2.4).
    pub const TRANSCRIBE_DESTINATION: &'static str = "jitsi_meet_transcribe";

    /// Reads a dial request; an absent or empty `to` is an error, as in Jitsi's parser.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "dial", ns::RAYO)?;
        let to = xml::req(el, "dial", "to")?;
        if to.is_empty() {
            return Err(ParseError::BadAttribute {
                element: "dial",
                attr: "to",
                value: String::new(),
                expected: "a non-empty destination",
            });
        }
        let (headers, other) = headers_and_other(el)?;
        Ok(Self {
            to: to.to_owned(),
            from: xml::opt(el, "from"),
            headers,
            extra_attrs: xml::extra_attrs(el, &["to", "from"]),
            other,
        })
    }

    /// Writes the dial request.
    pub fn to_element(&self) -> Element {
        Builder::new("dial", ns::RAYO)
            .attr("to", &self.to)
            .opt("from", self.from.as_ref())
            .extra(&self.extra_attrs)
            .children(self.headers.iter().map(Header::to_element))
            .children(self.other.iter().cloned())
            .build()
    }

    /// The value of the first header called `name` (case-sensitive, as Jigasi compares).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The `JvbRoomName` header.
    pub fn room_name(&self) -> Option<&str> {
        self.header(Self::ROOM_NAME_HEADER)
    }

    /// The `JvbRoomPassword` header.
    pub fn room_password(&self) -> Option<&str> {
        self.header(Self::ROOM_PASSWORD_HEADER)
    }
}

/// `<ref xmlns="urn:xmpp:rayo:1" uri=>`: the dial result (§2.3). Jigasi answers
/// `uri="not-acceptable"` when the requested gateway kind is disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// `uri` (`xmpp:room1@conference.meet.example.com/d3adb33f`).
    pub uri: String,
}

impl Ref {
    /// Reads a ref.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "ref", ns::RAYO)?;
        Ok(Self {
            uri: xml::req(el, "ref", "uri")?.to_owned(),
        })
    }

    /// Writes the ref.
    pub fn to_element(&self) -> Element {
        Builder::new("ref", ns::RAYO).attr("uri", &self.uri).build()
    }
}

/// `<hangup xmlns="urn:xmpp:rayo:1">` with optional headers (§2.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hangup {
    /// The headers in order.
    pub headers: Vec<Header>,
    /// Other children, kept verbatim after the headers.
    pub other: Vec<Element>,
}

impl Hangup {
    /// Reads a hangup.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "hangup", ns::RAYO)?;
        let (headers, other) = headers_and_other(el)?;
        Ok(Self { headers, other })
    }

    /// Writes the hangup.
    pub fn to_element(&self) -> Element {
        Builder::new("hangup", ns::RAYO)
            .children(self.headers.iter().map(Header::to_element))
            .children(self.other.iter().cloned())
            .build()
    }
}

str_enum! {
    /// Why a Rayo call ended (XEP-0327 §6.2.2; jitsi-xmpp-extensions `EndExtension`).
    pub enum EndReason {
        /// `busy`.
        Busy => "busy",
        /// `error`.
        Error => "error",
        /// `hangup`: the remote party hung up.
        Hangup => "hangup",
        /// `hangup-command`: ended by a `hangup` request.
        HangupCommand => "hangup-command",
        /// `rejected`.
        Rejected => "rejected",
        /// `timeout`.
        Timeout => "timeout",
    }
}

/// `<end xmlns="urn:xmpp:rayo:1"><reason/>[headers]</end>` presence payload (§2.3; defined in
/// the extensions, not sent by Jigasi).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    /// The reason element's name.
    pub reason: EndReason,
    /// The headers in order.
    pub headers: Vec<Header>,
    /// Other children, kept verbatim.
    pub other: Vec<Element>,
}

impl End {
    /// Reads an end; the first non-header Rayo child is the reason.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "end", ns::RAYO)?;
        let mut reason = None;
        let mut headers = Vec::new();
        let mut other = Vec::new();
        for child in el.children() {
            if child.is("header", ns::RAYO) {
                headers.push(Header::parse(child)?);
            } else if reason.is_none() && child.ns() == ns::RAYO {
                reason = Some(EndReason::from(child.name()));
            } else {
                other.push(child.clone());
            }
        }
        Ok(Self {
            reason: reason.ok_or(ParseError::MissingChild {
                element: "end",
                child: "reason",
            })?,
            headers,
            other,
        })
    }

    /// Writes the end: reason, headers, others.
    pub fn to_element(&self) -> Element {
        Builder::new("end", ns::RAYO)
            .child(Element::bare(self.reason.as_str(), ns::RAYO))
            .children(self.headers.iter().map(Header::to_element))
            .children(self.other.iter().cloned())
            .build()
    }
}

fn headers_and_other(el: &Element) -> Result<(Vec<Header>, Vec<Element>), ParseError> {
    let mut headers = Vec::new();
    let mut other = Vec::new();
    for child in el.children() {
        if child.is("header", ns::RAYO) {
            headers.push(Header::parse(child)?);
        } else {
            other.push(child.clone());
        }
    }
    Ok((headers, other))
}

fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|header| header.name == name)
        .map(|header| header.value.as_str())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn empty_dial_destination_is_rejected() {
        let el: Element = r#"<dial xmlns="urn:xmpp:rayo:1" to=""/>"#.parse().unwrap();
        assert!(matches!(
            Dial::parse(&el),
            Err(ParseError::BadAttribute {
                element: "dial",
                attr: "to",
                ..
            })
        ));
        let el: Element = r#"<dial xmlns="urn:xmpp:rayo:1"/>"#.parse().unwrap();
        assert_eq!(
            Dial::parse(&el),
            Err(ParseError::MissingAttribute {
                element: "dial",
                attr: "to"
            })
        );
    }

    #[test]
    fn hangup_and_end_round_trip() {
        let hangup: Element =
            r#"<hangup xmlns="urn:xmpp:rayo:1"><header name="X-Reason" value="bye"/></hangup>"#
                .parse()
                .unwrap();
        let parsed = Hangup::parse(&hangup).unwrap();
        assert_eq!(parsed.headers, vec![Header::new("X-Reason", "bye")]);
        assert_eq!(parsed.to_element(), hangup);
        let end: Element =
            r#"<end xmlns="urn:xmpp:rayo:1"><busy/><header name="a" value="b"/></end>"#
                .parse()
                .unwrap();
        let parsed = End::parse(&end).unwrap();
        assert_eq!(parsed.reason, EndReason::Busy);
        assert_eq!(parsed.to_element(), end);
        let no_reason: Element = r#"<end xmlns="urn:xmpp:rayo:1"/>"#.parse().unwrap();
        assert!(matches!(
            End::parse(&no_reason),
            Err(ParseError::MissingChild { .. })
        ));
    }
}
