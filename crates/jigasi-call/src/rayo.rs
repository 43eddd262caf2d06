//! Rayo `dial` requests from Jicofo through the brewery (jigasi-behaviour.md §1.4 step 3,
//! jitsi-protocols.md §2.3): who may ask, what a request must carry, and the answers.

use jigasi_jingle::rayo::{Dial, Ref};
use jigasi_xmpp::stanza::{iq_error, iq_result};
use minidom::Element;

/// An accepted dial request: what the call needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialOutRequest {
    /// The number or URI to call (`to`).
    pub destination: String,
    /// `JvbRoomName`: the conference room's JID.
    pub room: String,
    /// `JvbRoomPassword`.
    pub password: Option<String>,
    /// Every other header, in order: forwarded to the INVITE and shown in `<initiator>`.
    pub headers: Vec<(String, String)>,
}

/// How a dial IQ is answered without starting a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialRefusal {
    /// An IQ error with this type and condition (the answer is ready in `reply`).
    Error {
        /// The error stanza to send back.
        reply: Box<Element>,
        /// The condition, for logs.
        condition: &'static str,
    },
    /// A transcriber was asked for: Jigasi answers a *result* carrying
    /// `<ref uri="not-acceptable"/>` when the transcription gateway is disabled.
    NotAcceptable {
        /// The result stanza to send back.
        reply: Box<Element>,
    },
}

/// Checks a Rayo `dial` IQ: the sender must be `allowed_jid` (compared as bare JIDs, ignoring
/// case: Prosody lowercases room JIDs, jitsi-protocols.md §1.2) when one is configured, the dial
/// must parse and carry `JvbRoomName`.
pub fn accept_dial(iq: &Element, allowed_jid: Option<&str>) -> Result<DialOutRequest, DialRefusal> {
    let refuse = |error_type: &str, condition: &'static str| DialRefusal::Error {
        reply: Box::new(iq_error(iq, error_type, condition)),
        condition,
    };
    if let Some(allowed) = allowed_jid {
        let from = iq.attr("from").unwrap_or_default();
        let bare = from.split('/').next().unwrap_or_default();
        let allowed = allowed.split('/').next().unwrap_or_default();
        if !bare.eq_ignore_ascii_case(allowed) {
            return Err(refuse("auth", "forbidden"));
        }
    }
    let Some(dial) = iq
        .children()
        .find(|c| c.name() == "dial")
        .and_then(|c| Dial::parse(c).ok())
    else {
        return Err(refuse("modify", "bad-request"));
    };
    if dial.to == Dial::TRANSCRIBE_DESTINATION {
        let mut reply = iq_result(iq);
        reply.append_child(
            Ref {
                uri: "not-acceptable".into(),
            }
            .to_element(),
        );
        return Err(DialRefusal::NotAcceptable {
            reply: Box::new(reply),
        });
    }
    let mut room = None;
    let mut password = None;
    let mut headers = Vec::new();
    for header in &dial.headers {
        match header.name.as_str() {
            Dial::ROOM_NAME_HEADER => room = Some(header.value.clone()),
            Dial::ROOM_PASSWORD_HEADER => password = Some(header.value.clone()),
            _ => headers.push((header.name.clone(), header.value.clone())),
        }
    }
    let Some(room) = room.filter(|r| r.contains('@')) else {
        return Err(refuse("modify", "bad-request"));
    };
    Ok(DialOutRequest {
        destination: dial.to,
        room,
        password: password.filter(|p| !p.is_empty()),
        headers,
    })
}

/// The answer once the call's participant joined: `<ref uri="xmpp:<room>/<nick>"/>`.
pub fn dial_result(iq: &Element, occupant: &str) -> Element {
    let mut reply = iq_result(iq);
    reply.append_child(
        Ref {
            uri: format!("xmpp:{occupant}"),
        }
        .to_element(),
    );
    reply
}

/// The answer when the call could not join in time or failed to start.
pub fn dial_failed(iq: &Element) -> Element {
    iq_error(iq, "wait", "internal-server-error")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const BREWERY: &str = "JigasiBrewery@internal.auth.meet.example.com";

    fn dial(from: &str, to: &str, headers: &str) -> Element {
        format!(
            "<iq xmlns='jabber:client' type='set' id='d1' from='{from}' to='{BREWERY}/jitsi-abc'>\
             <dial xmlns='urn:xmpp:rayo:1' to='{to}' from='fromnumber'>{headers}</dial></iq>"
        )
        .parse()
        .unwrap()
    }

    const ROOM_HEADERS: &str = "<header xmlns='urn:xmpp:rayo:1' name='JvbRoomName' value='room1@conference.meet.example.com'/>\
        <header xmlns='urn:xmpp:rayo:1' name='JvbRoomPassword' value='secret'/>\
        <header xmlns='urn:xmpp:rayo:1' name='X-Custom' value='42'/>";

    #[test]
    fn accepted_from_the_brewery_with_headers_split() {
        // Prosody lowercases the room JID; the configured value keeps its case.
        let iq = dial(
            "jigasibrewery@internal.auth.meet.example.com/focus",
            "+15551234",
            ROOM_HEADERS,
        );
        let request = accept_dial(&iq, Some(BREWERY)).unwrap();
        assert_eq!(
            request,
            DialOutRequest {
                destination: "+15551234".into(),
                room: "room1@conference.meet.example.com".into(),
                password: Some("secret".into()),
                headers: vec![("X-Custom".into(), "42".into())],
            }
        );
        // Without ALLOWED_JID anyone may dial (Jigasi logs a warning).
        assert!(accept_dial(&dial("x@y/z", "+1", ROOM_HEADERS), None).is_ok());
    }

    #[test]
    fn refusals() {
        let forbidden = accept_dial(
            &dial("mallory@evil.example/x", "+1", ROOM_HEADERS),
            Some(BREWERY),
        );
        assert!(matches!(
            forbidden,
            Err(DialRefusal::Error {
                condition: "forbidden",
                ..
            })
        ));
        let no_room = accept_dial(&dial(BREWERY, "+1", ""), Some(BREWERY));
        assert!(matches!(
            no_room,
            Err(DialRefusal::Error {
                condition: "bad-request",
                ..
            })
        ));
        match accept_dial(
            &dial(BREWERY, "jitsi_meet_transcribe", ROOM_HEADERS),
            Some(BREWERY),
        ) {
            Err(DialRefusal::NotAcceptable { reply }) => {
                assert_eq!(reply.attr("type"), Some("result"));
                let r = reply.get_child("ref", "urn:xmpp:rayo:1").unwrap();
                assert_eq!(r.attr("uri"), Some("not-acceptable"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ref_result_points_at_the_occupant() {
        let iq = dial(BREWERY, "+1", ROOM_HEADERS);
        let reply = dial_result(&iq, "room1@conference.meet.example.com/1a2b3c4d");
        assert_eq!(reply.attr("type"), Some("result"));
        assert_eq!(reply.attr("id"), Some("d1"));
        assert_eq!(
            reply
                .get_child("ref", "urn:xmpp:rayo:1")
                .unwrap()
                .attr("uri"),
            Some("xmpp:room1@conference.meet.example.com/1a2b3c4d")
        );
        assert_eq!(dial_failed(&iq).attr("type"), Some("error"));
    }
}
