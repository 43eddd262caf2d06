//! Every XML example of jitsi-protocols.md as a round-trip test vector (`testdata/`).
//!
//! Covered, one file each: §1.4 disco#info; Example 1 (brewery join and stats, §2.1); Example 2
//! (dial-out, four legs, §2.3); Example 3 (conference request, §3.1); Example 4 (room join,
//! §3.2); Example 5 (session-initiate, §4.2); Example 6 (session-accept, §4.3); the early
//! trickle transport-info (§4.3); Example 7 (source-add, §4.4); Example 8 (remote mute, §6.1);
//! the kick presence (§6.2); the lobby join error (§6.3). Inline snippets made concrete:
//! startmuted (§4.2), SourceInfo (§3.2), restart request, terminate "moving" and ICE-failed
//! session-info (§4.5), JSON-encoded sources (§4.6), self-unmute and AV moderation (§6.1).
//!
//! Each stanza is parsed with [`Stanza::parse`], written back with [`Stanza::to_element`] and
//! compared structurally with the original: names, namespaces, attributes as maps, child order,
//! text (whitespace-only text ignored).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use minidom::{Element, Node};

use crate::stanza::{Payload, Stanza};

/// Parses one testdata file's stanzas (XML comments removed, wrapped so that they inherit
/// jabber:client).
pub(crate) fn stanzas(xml: &str) -> Vec<Element> {
    let mut text = String::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<!--") {
        text.push_str(&rest[..start]);
        let end = rest[start..].find("-->").unwrap();
        rest = &rest[start + end + 3..];
    }
    text.push_str(rest);
    let root: Element = format!("<vectors xmlns=\"jabber:client\">{text}</vectors>")
        .parse()
        .unwrap();
    root.children().cloned().collect()
}

/// Parses and round-trips every stanza of a file, returning the parsed stanzas.
pub(crate) fn round_trip(xml: &str) -> Vec<Stanza> {
    stanzas(xml)
        .iter()
        .map(|original| {
            let stanza = Stanza::parse(original).unwrap();
            let written = stanza.to_element();
            if let Err(difference) = same_tree(original, &written, original.name()) {
                panic!(
                    "round trip differs at {difference}\n{}",
                    String::from(&written)
                );
            }
            stanza
        })
        .collect()
}

/// The Jingle payload of the first stanza of a file.
pub(crate) fn jingle(xml: &str) -> crate::jingle::Jingle {
    round_trip(xml)[0].jingle().unwrap().clone()
}

/// Structural equality: name, namespace, attributes as a map, non-whitespace text nodes and
/// child elements in order.
pub(crate) fn same_tree(a: &Element, b: &Element, path: &str) -> Result<(), String> {
    if a.name() != b.name() || a.ns() != b.ns() {
        return Err(format!(
            "{path}: <{} xmlns={}> vs <{} xmlns={}>",
            a.name(),
            a.ns(),
            b.name(),
            b.ns()
        ));
    }
    let attrs = |el: &Element| -> BTreeMap<String, String> {
        el.attrs()
            .iter()
            .map(|((ns, name), value)| {
                (
                    format!("{{{}}}{}", ns.as_str(), name.as_str()),
                    value.clone(),
                )
            })
            .collect()
    };
    if attrs(a) != attrs(b) {
        return Err(format!(
            "{path}: attributes {:?} vs {:?}",
            attrs(a),
            attrs(b)
        ));
    }
    let texts = |el: &Element| -> Vec<String> {
        el.nodes()
            .filter_map(Node::as_text)
            .filter(|text| !text.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    if texts(a) != texts(b) {
        return Err(format!("{path}: text {:?} vs {:?}", texts(a), texts(b)));
    }
    let (a_children, b_children): (Vec<_>, Vec<_>) =
        (a.children().collect(), b.children().collect());
    if a_children.len() != b_children.len() {
        return Err(format!(
            "{path}: {} children vs {}",
            a_children.len(),
            b_children.len()
        ));
    }
    for (index, (x, y)) in a_children.iter().zip(&b_children).enumerate() {
        same_tree(x, y, &format!("{path}/{}[{index}]", x.name()))?;
    }
    Ok(())
}

pub(crate) const DISCO: &str = include_str!("../testdata/s1.4-disco-info.xml");
pub(crate) const EXAMPLE_1: &str =
    include_str!("../testdata/s2.1-example-1-brewery-join-and-stats.xml");
pub(crate) const EXAMPLE_2: &str = include_str!("../testdata/s2.3-example-2-dial-out.xml");
pub(crate) const EXAMPLE_3: &str =
    include_str!("../testdata/s3.1-example-3-conference-request.xml");
pub(crate) const EXAMPLE_4: &str = include_str!("../testdata/s3.2-example-4-room-join.xml");
pub(crate) const EXAMPLE_5: &str = include_str!("../testdata/s4.2-example-5-session-initiate.xml");
pub(crate) const EXAMPLE_6: &str = include_str!("../testdata/s4.3-example-6-session-accept.xml");
pub(crate) const EARLY_TRANSPORT_INFO: &str =
    include_str!("../testdata/s4.3-early-transport-info.xml");
pub(crate) const EXAMPLE_7: &str = include_str!("../testdata/s4.4-example-7-source-add.xml");
pub(crate) const EXAMPLE_8: &str = include_str!("../testdata/s6.1-example-8-remote-mute.xml");
pub(crate) const KICK: &str = include_str!("../testdata/s6.2-kick-presence.xml");
pub(crate) const LOBBY_ERROR: &str = include_str!("../testdata/s6.3-lobby-error.xml");
pub(crate) const STARTMUTED: &str = include_str!("../testdata/s4.2-inline-startmuted.xml");
pub(crate) const SOURCE_INFO: &str = include_str!("../testdata/s3.2-inline-source-info.xml");
pub(crate) const RESTART_REQUEST: &str =
    include_str!("../testdata/s4.5-inline-restart-request.xml");
pub(crate) const TERMINATE_MOVING: &str =
    include_str!("../testdata/s4.5-inline-terminate-moving.xml");
pub(crate) const ICE_FAILED: &str = include_str!("../testdata/s4.5-inline-ice-failed.xml");
pub(crate) const JSON_SOURCES: &str = include_str!("../testdata/s4.6-inline-json-sources.xml");
pub(crate) const SELF_UNMUTE: &str = include_str!("../testdata/s6.1-inline-self-unmute.xml");
pub(crate) const AV_MODERATION: &str = include_str!("../testdata/s6.1-inline-av-moderation.xml");

mod tests {
    use super::*;
    use crate::ice::{CandidateType, Setup};
    use crate::jingle::{Action, Creator, ReasonCondition};
    use crate::jitmeet::MuteMedia;
    use crate::rtp::{Media, Senders};
    use crate::stanza::StanzaKind;
    use jigasi_types::Ssrc;

    #[test]
    fn disco_info_round_trips_as_opaque_payload() {
        let stanzas = round_trip(DISCO);
        assert_eq!(stanzas.len(), 2);
        assert_eq!(stanzas[0].kind, StanzaKind::Iq);
        assert_eq!(stanzas[1].stanza_type.as_deref(), Some("result"));
        let Payload::Other(query) = &stanzas[1].payloads[0] else {
            panic!("disco#info is not this crate's");
        };
        assert_eq!(query.children().count(), 10);
    }

    #[test]
    fn example_1_brewery_stats() {
        let stanzas = round_trip(EXAMPLE_1);
        assert!(
            matches!(&stanzas[0].payloads[0], Payload::MucJoin(join) if join.password.is_none())
        );
        let stats = stanzas[1]
            .payloads
            .iter()
            .find_map(|payload| {
                if let Payload::Stats(stats) = payload {
                    Some(stats)
                } else {
                    None
                }
            })
            .unwrap();
        assert_eq!(stats.stats.len(), 8);
        assert_eq!(stats.get("supports_sip"), Some("true"));
        assert_eq!(stats.get("region"), Some("us-east-1"));
        let Payload::Caps(caps) = &stanzas[1].payloads[0] else {
            panic!("caps first");
        };
        assert_eq!(caps.node, "http://jitsi.org");
    }

    #[test]
    fn example_2_dial_out() {
        let stanzas = round_trip(EXAMPLE_2);
        assert_eq!(stanzas.len(), 4);
        let Payload::Dial(dial) = &stanzas[1].payloads[0] else {
            panic!("2b is a dial");
        };
        assert_eq!(dial.to, "+15551234567");
        assert_eq!(dial.from.as_deref(), Some("fromnumber"));
        assert_eq!(dial.room_name(), Some("room1@conference.meet.example.com"));
        assert_eq!(dial.room_password(), Some("s3cret"));
        let Payload::Ref(reference) = &stanzas[3].payloads[0] else {
            panic!("2d is a ref");
        };
        assert_eq!(
            reference.uri,
            "xmpp:room1@conference.meet.example.com/d3adb33f"
        );
    }

    #[test]
    fn example_3_conference_request() {
        let stanzas = round_trip(EXAMPLE_3);
        let Payload::Conference(request) = &stanzas[0].payloads[0] else {
            panic!("conference");
        };
        assert_eq!(request.machine_uid.as_deref(), Some("6f1c2f0a9d7e4b1e"));
        assert_eq!(request.ready, None);
        let Payload::Conference(result) = &stanzas[1].payloads[0] else {
            panic!("conference");
        };
        assert_eq!(result.ready, Some(true));
        assert_eq!(
            result.focus_jid.as_deref(),
            Some("focus@auth.meet.example.com")
        );
        assert_eq!(result.property("sipGatewayEnabled"), Some("true"));
        assert_eq!(result.room.as_str(), "room1@conference.meet.example.com");
    }

    #[test]
    fn example_4_room_join() {
        let stanzas = round_trip(EXAMPLE_4);
        let payloads = &stanzas[0].payloads;
        assert!(
            matches!(&payloads[0], Payload::MucJoin(join) if join.password.as_deref() == Some("s3cret"))
        );
        assert!(matches!(&payloads[2], Payload::Nick(nick) if nick.0 == "+15551234567"));
        assert!(
            matches!(&payloads[5], Payload::JigasiInitiator(initiator) if initiator.headers[0].name == "X-Customer-Id")
        );
        assert!(
            matches!(&payloads[6], Payload::Features(features) if features.contains("http://jitsi.org/protocol/jigasi"))
        );
        assert!(matches!(&payloads[8], Payload::AudioMuted(muted) if !muted.0));
    }

    #[test]
    fn example_5_session_initiate() {
        let jingle = jingle(EXAMPLE_5);
        assert_eq!(jingle.action, Action::SessionInitiate);
        assert_eq!(jingle.sid.as_str(), "5o1ghn8db24v7");
        assert_eq!(
            jingle
                .initiator
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("focus@auth.meet.example.com/focus")
        );
        let content = jingle.contents().next().unwrap();
        assert_eq!(content.creator, Some(Creator::Initiator));
        assert_eq!(content.senders, Some(Senders::Both));
        let description = content.description.as_ref().unwrap();
        assert_eq!(description.media, Some(Media::Audio));
        assert_eq!(description.maxptime, Some(60));
        let opus = description.payload_type_named("opus").unwrap();
        assert_eq!(
            (opus.id.get(), opus.clockrate, opus.channels),
            (111, Some(48_000), Some(2))
        );
        assert_eq!(opus.parameters().count(), 2);
        assert_eq!(
            description
                .hdrext_with_uri("urn:ietf:params:rtp-hdrext:sdes:mid")
                .unwrap()
                .id,
            10
        );
        assert!(description.extmap_allow_mixed() && description.rtcp_mux());
        let sources: Vec<_> = description.sources().collect();
        assert_eq!(sources[0].owner(), Some("jvb"));
        assert_eq!(sources[1].ssrc, Ssrc::new(1_057_249_811));
        assert_eq!(sources[1].name.as_deref(), Some("cafebabe-a0"));
        assert_eq!(
            sources[1].msid(),
            Some("cafebabe-audio-0-1 0a2f7c1e-5b55-4b5f-9b1e-6a1e3c9d2f10")
        );
        let transport = content.transport.as_ref().unwrap();
        assert_eq!(transport.ufrag.as_deref(), Some("b1e2a3o4i5u6"));
        assert!(transport.rtcp_mux());
        assert!(
            transport
                .web_socket()
                .unwrap()
                .url
                .starts_with("wss://meet.example.com/colibri-ws/")
        );
        let fingerprint = transport.fingerprint().unwrap();
        assert_eq!(fingerprint.setup, Some(Setup::Actpass));
        assert!(fingerprint.value.starts_with("2B:6E:0F"));
        let candidates: Vec<_> = transport.candidates().collect();
        assert_eq!(candidates[1].kind, CandidateType::Srflx);
        assert_eq!(candidates[1].rel_addr.as_deref(), Some("10.0.0.5"));
        assert_eq!(candidates[1].rel_port, Some(10_000));
        assert_eq!(candidates[0].generation, Some(0));
        assert_eq!(jingle.group().unwrap().contents, vec!["audio".to_owned()]);
        let bridge = jingle.bridge_session().unwrap();
        assert_eq!(
            (bridge.id.as_str(), bridge.region.as_deref()),
            ("8f3c6b2a-jvb1", Some("us-east-1"))
        );
    }

    #[test]
    fn example_6_session_accept() {
        let jingle = jingle(EXAMPLE_6);
        assert_eq!(jingle.action, Action::SessionAccept);
        assert!(jingle.responder.is_some());
        let content = jingle.contents().next().unwrap();
        let source = content
            .description
            .as_ref()
            .unwrap()
            .sources()
            .next()
            .unwrap();
        assert_eq!(source.name.as_deref(), Some("d3adb33f-a0"));
        assert!(source.msid().unwrap().starts_with("d3adb33f-audio-0-1 "));
        let transport = content.transport.as_ref().unwrap();
        assert_eq!(transport.fingerprint().unwrap().setup, Some(Setup::Active));
        assert_eq!(transport.candidates().count(), 2);
    }

    #[test]
    fn early_transport_info() {
        let jingle = jingle(EARLY_TRANSPORT_INFO);
        assert_eq!(jingle.action, Action::TransportInfo);
        let candidate = jingle
            .first_transport()
            .unwrap()
            .candidates()
            .next()
            .unwrap()
            .clone();
        assert_eq!(candidate.kind, CandidateType::Relay);
        assert_eq!(candidate.port, 3478);
    }

    #[test]
    fn example_7_source_add() {
        let stanzas = round_trip(EXAMPLE_7);
        assert_eq!(stanzas.len(), 2);
        let jingle = stanzas[0].jingle().unwrap();
        assert!(jingle.action.is_source_add());
        let content = jingle.contents().next().unwrap();
        assert_eq!(content.creator, None);
        let source = content
            .description
            .as_ref()
            .unwrap()
            .sources()
            .next()
            .unwrap();
        assert_eq!(source.owner_endpoint(), Some("0badf00d"));
        assert_eq!(source.ssrc, Ssrc::new(4_002_215_823));
        assert!(stanzas[1].payloads.is_empty());
    }

    #[test]
    fn example_8_remote_mute() {
        let stanzas = round_trip(EXAMPLE_8);
        let Payload::Mute(mute) = &stanzas[0].payloads[0] else {
            panic!("mute");
        };
        assert_eq!(mute.media, MuteMedia::Audio);
        assert!(mute.mute);
        assert_eq!(
            mute.actor.as_ref().map(ToString::to_string).as_deref(),
            Some("room1@conference.meet.example.com/cafebabe")
        );
        assert_eq!(stanzas[1].stanza_type.as_deref(), Some("result"));
    }

    #[test]
    fn kick_presence() {
        let stanzas = round_trip(KICK);
        assert_eq!(stanzas[0].stanza_type.as_deref(), Some("unavailable"));
        let Payload::Other(x) = &stanzas[0].payloads[0] else {
            panic!("muc#user is jigasi-xmpp's");
        };
        assert_eq!(x.ns(), "http://jabber.org/protocol/muc#user");
    }

    #[test]
    fn lobby_error() {
        let stanzas = round_trip(LOBBY_ERROR);
        let lobby = stanzas[0].lobby_room().unwrap();
        assert_eq!(lobby.room.as_str(), "room1@lobby.meet.example.com");
        assert!(!lobby.legacy);
        let Payload::Error(error) = &stanzas[0].payloads[1] else {
            panic!("error");
        };
        assert_eq!(error.condition.as_deref(), Some("registration-required"));
        assert_eq!(error.error_type, "auth");
    }

    #[test]
    fn inline_snippets() {
        let start_muted = jingle(STARTMUTED);
        assert_eq!(start_muted.start_muted().unwrap().audio, Some(true));

        let source_info = round_trip(SOURCE_INFO);
        assert!(source_info[0].payloads.iter().any(
            |payload| matches!(payload, Payload::SourceInfo(info) if info.0 == r#"{"d3adb33f-a0":{"muted":true}}"#)
        ));

        let restart = jingle(RESTART_REQUEST);
        assert_eq!(
            restart.reason().unwrap().condition,
            ReasonCondition::Success
        );
        assert_eq!(restart.bridge_session().unwrap().restart, Some(true));

        let moving = jingle(TERMINATE_MOVING);
        assert_eq!(moving.action, Action::SessionTerminate);
        assert_eq!(moving.reason().unwrap().text.as_deref(), Some("moving"));

        let ice_failed = jingle(ICE_FAILED);
        assert_eq!(ice_failed.ice_state().unwrap().0, "failed");

        let json = jingle(JSON_SOURCES);
        assert!(json.json_message().unwrap().0.contains("\"0badf00d-a0\""));

        let unmute = round_trip(SELF_UNMUTE);
        assert!(matches!(&unmute[0].payloads[0], Payload::Mute(mute) if !mute.mute));
        assert!(
            matches!(&unmute[1].payloads[1], Payload::Error(error) if error.condition.as_deref() == Some("not-allowed"))
        );

        let moderation = round_trip(AV_MODERATION);
        assert_eq!(moderation[0].kind, StanzaKind::Message);
        assert!(
            matches!(&moderation[0].payloads[0], Payload::JsonMessage(message) if message.0.contains("av_moderation"))
        );
    }

    /// Every element of every vector, with each attribute removed or set to junk and each text
    /// replaced by junk: parsing returns `Ok` or a typed error, never panics, and whatever
    /// parses writes back without panicking.
    #[test]
    fn mutated_vectors_never_panic() {
        const JUNK: [&str; 6] = ["", "-1", "x", "99999999999999999999", "a@b@c/", "true"];
        let all = [
            DISCO,
            EXAMPLE_1,
            EXAMPLE_2,
            EXAMPLE_3,
            EXAMPLE_4,
            EXAMPLE_5,
            EXAMPLE_6,
            EARLY_TRANSPORT_INFO,
            EXAMPLE_7,
            EXAMPLE_8,
            KICK,
            LOBBY_ERROR,
            STARTMUTED,
            SOURCE_INFO,
            RESTART_REQUEST,
            TERMINATE_MOVING,
            ICE_FAILED,
            JSON_SOURCES,
            SELF_UNMUTE,
            AV_MODERATION,
        ];
        let mut parsed = 0;
        let mut rejected = 0;
        for stanza in all.iter().flat_map(|xml| stanzas(xml)) {
            for path in element_paths(&stanza, Vec::new()) {
                let target = at(&mut stanza.clone(), &path).clone();
                let mut mutants = Vec::new();
                for ((ns, name), _) in target.attrs().iter() {
                    let mut removed = stanza.clone();
                    at(&mut removed, &path).attrs_mut().remove(ns, name);
                    mutants.push(removed);
                    for junk in JUNK {
                        let mut changed = stanza.clone();
                        at(&mut changed, &path).set_attr(ns.clone(), name.clone(), junk);
                        mutants.push(changed);
                    }
                }
                for junk in JUNK {
                    let mut text = stanza.clone();
                    at(&mut text, &path).append_text_node(junk);
                    mutants.push(text);
                }
                for mutant in mutants {
                    match Stanza::parse(&mutant) {
                        Ok(stanza) => {
                            parsed += 1;
                            let _ = stanza.to_element();
                        }
                        Err(error) => {
                            rejected += 1;
                            assert!(!error.to_string().is_empty());
                        }
                    }
                }
            }
        }
        assert!(parsed > 1000, "{parsed} mutants parsed");
        assert!(rejected > 100, "{rejected} mutants rejected");
    }

    fn element_paths(el: &Element, path: Vec<usize>) -> Vec<Vec<usize>> {
        let mut paths = vec![path.clone()];
        for (index, child) in el.children().enumerate() {
            let mut child_path = path.clone();
            child_path.push(index);
            paths.extend(element_paths(child, child_path));
        }
        paths
    }

    fn at<'a>(el: &'a mut Element, path: &[usize]) -> &'a mut Element {
        match path.split_first() {
            None => el,
            Some((first, rest)) => at(el.children_mut().nth(*first).unwrap(), rest),
        }
    }

    #[test]
    fn structural_comparison_detects_differences() {
        let a: Element = r#"<a xmlns="n" x="1"><b/><c/></a>"#.parse().unwrap();
        let reordered: Element = r#"<a xmlns="n" x="1"><c/><b/></a>"#.parse().unwrap();
        let other_attr: Element = r#"<a xmlns="n" x="2"><b/><c/></a>"#.parse().unwrap();
        let spaced: Element = "<a xmlns=\"n\" x=\"1\">\n  <b/>\n  <c/>\n</a>"
            .parse()
            .unwrap();
        assert!(same_tree(&a, &reordered, "a").is_err());
        assert!(same_tree(&a, &other_attr, "a").is_err());
        assert!(same_tree(&a, &spaced, "a").is_ok());
    }
}
