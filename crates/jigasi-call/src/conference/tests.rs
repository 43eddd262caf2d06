//! The conference leg against a scripted focus, and against a real bridge-role media leg on a
//! virtual clock (real ICE, DTLS-SRTP and RTP, no sockets).

// Tests take one real instant as the base of their virtual clock.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use jigasi_jingle::answer::validate_answer;

use super::*;

const ROOM: &str = "room1@conference.meet.example.com";
const FOCUS: &str = "room1@conference.meet.example.com/focus";
const OUR_JID: &str = "b2f6a3c0-7f0e-4f6b-9c61-0e2a1d3c4b5a@meet.example.com/d3adb33f";
const EXAMPLE_5_RAW: &str =
    include_str!("../../../jigasi-jingle/testdata/s4.2-example-5-session-initiate.xml");
const GATEWAY_MEDIA: &str = "10.0.0.2:20000";
const BRIDGE_MEDIA: &str = "10.0.0.1:10000";

/// Example 5 of jitsi-protocols.md, in the `jabber:client` namespace as it arrives on a stream.
fn example_5() -> String {
    EXAMPLE_5_RAW.replacen("<iq ", "<iq xmlns=\"jabber:client\" ", 1)
}

fn config() -> ConferenceConfig {
    ConferenceConfig {
        room: BareJid::new(ROOM).unwrap(),
        nick: "d3adb33f".into(),
        password: None,
        focus_component: "focus.meet.example.com".into(),
        focus_nick: "focus".into(),
        display_name: Some("+4930123456".into()),
        region: None,
        version: Some("0.1.0".into()),
        stats_id: None,
        initiator_headers: Vec::new(),
        machine_uid: "machine-1".into(),
        invite_timeout: Some(Duration::from_secs(30)),
        media_addrs: vec![GATEWAY_MEDIA.parse().unwrap()],
        ssrc: Ssrc::new(0x0bad_cafe),
        msid_uuid: "7d1c8c3e-0f4b-4b8e-9d0c-2a6f1e5b3c7d".into(),
    }
}

#[derive(Default)]
struct Drained {
    sent: Vec<Element>,
    events: Vec<ConferenceEvent>,
    transmits: Vec<Transmit>,
}

fn drain(leg: &mut ConferenceLeg) -> Drained {
    let mut out = Drained::default();
    loop {
        match leg.poll_output() {
            ConferenceOutput::Send(e) => out.sent.push(e),
            ConferenceOutput::Event(e) => out.events.push(e),
            ConferenceOutput::Transmit(t) => out.transmits.push(t),
            ConferenceOutput::Timeout(_) | ConferenceOutput::Idle => return out,
        }
    }
}

fn parse(xml: &str) -> Element {
    xml.parse().unwrap()
}

fn presence_110() -> Element {
    parse(&format!(
        "<presence xmlns='jabber:client' from='{ROOM}/d3adb33f' to='{OUR_JID}'>\
         <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>\
         <status code='110'/></x></presence>"
    ))
}

fn focus_presence() -> Element {
    parse(&format!(
        "<presence xmlns='jabber:client' from='{FOCUS}' to='{OUR_JID}'>\
         <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' role='moderator'/></x></presence>"
    ))
}

/// Runs the leg up to "joined": online, conference IQ answered ready, join confirmed.
fn joined(now: Instant) -> ConferenceLeg {
    let mut leg = ConferenceLeg::new(config()).unwrap();
    leg.handle_online(now, Jid::new(OUR_JID).unwrap());
    let out = drain(&mut leg);
    let request = &out.sent[0];
    assert_eq!(request.attr("to"), Some("focus.meet.example.com"));
    let conference = request
        .get_child("conference", "http://jitsi.org/protocol/focus")
        .unwrap();
    assert_eq!(conference.attr("room"), Some(ROOM));
    let id = request.attr("id").unwrap();
    leg.handle_stanza(
        now,
        &parse(&format!(
            "<iq xmlns='jabber:client' type='result' id='{id}' from='focus.meet.example.com'>\
             <conference xmlns='http://jitsi.org/protocol/focus' room='{ROOM}' ready='true'/></iq>"
        )),
    );
    let out = drain(&mut leg);
    let join = &out.sent[0];
    assert_eq!(join.name(), "presence");
    assert_eq!(join.attr("to"), Some(&*format!("{ROOM}/d3adb33f")));
    assert!(
        join.get_child("x", "http://jabber.org/protocol/muc")
            .is_some()
    );
    leg.handle_stanza(now, &focus_presence());
    leg.handle_stanza(now, &presence_110());
    let out = drain(&mut leg);
    assert_eq!(out.events, [ConferenceEvent::Joined { occupants: 1 }]);
    assert!(leg.is_joined());
    leg
}

fn jingle_of(iq: &Element) -> Jingle {
    Jingle::parse(iq.get_child("jingle", jigasi_jingle::ns::JINGLE).unwrap()).unwrap()
}

#[test]
fn joins_accepts_the_focus_offer_and_the_answer_follows_the_rules() {
    let now = Instant::now();
    let mut leg = joined(now);
    let offer = parse(&example_5());
    leg.handle_stanza(now, &offer);
    let out = drain(&mut leg);
    assert_eq!(out.events, [ConferenceEvent::SessionAccepted]);
    assert_eq!(out.sent.len(), 2, "ack and session-accept");
    assert_eq!(out.sent[0].attr("type"), Some("result"));
    assert_eq!(out.sent[0].attr("id"), Some("jfoc-113"));
    let accept = &out.sent[1];
    assert_eq!(accept.attr("to"), Some(FOCUS));
    let answer = jingle_of(accept);
    assert_eq!(answer.action, Action::SessionAccept);
    let violations = validate_answer(&jingle_of(&offer), &answer);
    assert!(violations.is_empty(), "{violations:?}");
    // Our one source, named after our nick, with our SSRC.
    let xml = jigasi_xmpp::to_xml_string(accept).unwrap();
    assert!(xml.contains("d3adb33f-a0"), "{xml}");
    assert!(
        xml.contains(&Ssrc::new(0x0bad_cafe).get().to_string()),
        "{xml}"
    );
    assert!(
        xml.contains("setup=\"active\"") || xml.contains("setup='active'"),
        "{xml}"
    );
}

#[test]
fn focus_not_ready_is_retried_then_accepted() {
    let now = Instant::now();
    let mut leg = ConferenceLeg::new(config()).unwrap();
    leg.handle_online(now, Jid::new(OUR_JID).unwrap());
    let id = drain(&mut leg).sent[0].attr("id").unwrap().to_owned();
    leg.handle_stanza(
        now,
        &parse(&format!(
            "<iq xmlns='jabber:client' type='result' id='{id}' from='focus.meet.example.com'>\
             <conference xmlns='http://jitsi.org/protocol/focus' room='{ROOM}' ready='false'/></iq>"
        )),
    );
    let out = drain(&mut leg);
    assert!(out.sent.is_empty());
    assert_eq!(
        leg.poll_output(),
        ConferenceOutput::Timeout(now + Duration::from_secs(1))
    );
    leg.handle_timeout(now + Duration::from_secs(1));
    let out = drain(&mut leg);
    assert_eq!(out.sent.len(), 1, "second conference request");
    assert!(
        out.sent[0]
            .get_child("conference", "http://jitsi.org/protocol/focus")
            .is_some()
    );
}

#[test]
fn focus_error_ends_the_call() {
    let now = Instant::now();
    let mut leg = ConferenceLeg::new(config()).unwrap();
    leg.handle_online(now, Jid::new(OUR_JID).unwrap());
    let id = drain(&mut leg).sent[0].attr("id").unwrap().to_owned();
    leg.handle_stanza(
        now,
        &parse(&format!(
            "<iq xmlns='jabber:client' type='error' id='{id}' from='focus.meet.example.com'>\
             <error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        )),
    );
    assert_eq!(
        drain(&mut leg).events,
        [ConferenceEvent::Ended(EndReason::FocusUnavailable(
            "not-allowed".into()
        ))]
    );
}

#[test]
fn jingle_from_anyone_but_the_focus_is_refused() {
    let now = Instant::now();
    let mut leg = joined(now);
    let forged = example_5().replace(FOCUS, "room1@conference.meet.example.com/mallory");
    leg.handle_stanza(now, &parse(&forged));
    let out = drain(&mut leg);
    assert!(out.events.is_empty());
    assert_eq!(out.sent.len(), 1);
    assert_eq!(out.sent[0].attr("type"), Some("error"));
    assert!(
        jigasi_xmpp::to_xml_string(&out.sent[0])
            .unwrap()
            .contains("forbidden")
    );
}

#[test]
fn no_invite_within_the_timeout_leaves_and_ends() {
    let now = Instant::now();
    let mut leg = joined(now);
    assert_eq!(
        leg.poll_output(),
        ConferenceOutput::Timeout(now + Duration::from_secs(30))
    );
    leg.handle_timeout(now + Duration::from_secs(30));
    let out = drain(&mut leg);
    assert_eq!(
        out.sent[0].attr("type"),
        Some("unavailable"),
        "leave presence"
    );
    assert_eq!(out.events, [ConferenceEvent::Ended(EndReason::NoInvite)]);
}

#[test]
fn session_terminate_then_reinvite_within_the_window() {
    let now = Instant::now();
    let mut leg = joined(now);
    leg.handle_stanza(now, &parse(&example_5()));
    drain(&mut leg);
    let terminate = parse(&format!(
        "<iq xmlns='jabber:client' type='set' id='t1' from='{FOCUS}' to='{OUR_JID}'>\
         <jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='5o1ghn8db24v7'>\
         <reason><success/><text>moving</text></reason></jingle></iq>"
    ));
    let later = now + Duration::from_secs(5);
    leg.handle_stanza(later, &terminate);
    let out = drain(&mut leg);
    assert_eq!(out.sent[0].attr("type"), Some("result"));
    assert_eq!(
        out.events,
        [ConferenceEvent::SessionTerminated {
            reason: Some("moving".into())
        }]
    );
    // A new offer 10 s later is accepted: the phone call was kept.
    let again = now + Duration::from_secs(15);
    leg.handle_stanza(
        again,
        &parse(&example_5().replace("5o1ghn8db24v7", "second-sid")),
    );
    assert_eq!(drain(&mut leg).events, [ConferenceEvent::SessionAccepted]);

    // After another terminate and no offer for 30 s, the call ends.
    leg.handle_stanza(
        again,
        &parse(&terminate.attr("id").map_or_else(String::new, |_| {
            jigasi_xmpp::to_xml_string(&terminate)
                .unwrap()
                .replace("5o1ghn8db24v7", "second-sid")
        })),
    );
    drain(&mut leg);
    leg.handle_timeout(again + Duration::from_secs(30));
    assert_eq!(
        drain(&mut leg).events,
        [ConferenceEvent::Ended(EndReason::NoInvite)]
    );
}

#[test]
fn moderation_and_room_events_end_the_call_with_a_reason() {
    let now = Instant::now();
    let cases = [
        (
            "<presence xmlns='jabber:client' from='{ROOM}/d3adb33f' type='unavailable'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/>\
             <status code='307'/><status code='110'/></x></presence>",
            EndReason::Kicked,
        ),
        (
            "<presence xmlns='jabber:client' from='{ROOM}/d3adb33f' type='unavailable'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/>\
             <destroy/><status code='110'/></x></presence>",
            EndReason::RoomDestroyed,
        ),
    ];
    for (xml, reason) in cases {
        let mut leg = joined(now);
        leg.handle_stanza(now, &parse(&xml.replace("{ROOM}", ROOM)));
        assert_eq!(drain(&mut leg).events, [ConferenceEvent::Ended(reason)]);
        assert!(leg.is_ended());
    }
}

#[test]
fn join_errors_map_to_reasons() {
    let now = Instant::now();
    for (condition, reason) in [
        ("not-authorized", EndReason::WrongPassword),
        ("registration-required", EndReason::Lobby),
        ("service-unavailable", EndReason::MaxOccupants),
        ("conflict", EndReason::JoinRefused("conflict".into())),
    ] {
        let mut leg = ConferenceLeg::new(config()).unwrap();
        leg.handle_online(now, Jid::new(OUR_JID).unwrap());
        let id = drain(&mut leg).sent[0].attr("id").unwrap().to_owned();
        leg.handle_stanza(
            now,
            &parse(&format!(
                "<iq xmlns='jabber:client' type='result' id='{id}' from='focus.meet.example.com'>\
                 <conference xmlns='http://jitsi.org/protocol/focus' room='{ROOM}' ready='true'/></iq>"
            )),
        );
        drain(&mut leg);
        leg.handle_stanza(
            now,
            &parse(&format!(
                "<presence xmlns='jabber:client' from='{ROOM}/d3adb33f' type='error'>\
                 <x xmlns='http://jabber.org/protocol/muc'/>\
                 <error type='auth'><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
            )),
        );
        assert_eq!(
            drain(&mut leg).events,
            [ConferenceEvent::Ended(reason)],
            "{condition}"
        );
    }
}

#[test]
fn mute_from_the_focus_is_applied_and_published() {
    let now = Instant::now();
    let mut leg = joined(now);
    let mute = |from: &str| {
        parse(&format!(
            "<iq xmlns='jabber:client' type='set' id='m1' from='{from}' to='{OUR_JID}'>\
             <mute xmlns='http://jitsi.org/jitmeet/audio' actor='{ROOM}/moderator'>true</mute></iq>"
        ))
    };
    leg.handle_stanza(now, &mute("room1@conference.meet.example.com/mallory"));
    let out = drain(&mut leg);
    assert_eq!(out.sent[0].attr("type"), Some("error"));
    assert!(out.events.is_empty());

    leg.handle_stanza(now, &mute(FOCUS));
    let out = drain(&mut leg);
    assert_eq!(out.sent[0].attr("type"), Some("result"));
    let update = jigasi_xmpp::to_xml_string(&out.sent[1]).unwrap();
    assert!(update.contains("audiomuted"), "{update}");
    assert!(update.contains(">true<"), "{update}");
    assert_eq!(out.events, [ConferenceEvent::MuteChanged(true)]);
}

#[test]
fn disco_hangup_and_unknown_iqs() {
    let now = Instant::now();
    let mut leg = joined(now);
    leg.handle_stanza(
        now,
        &parse(&format!(
            "<iq xmlns='jabber:client' type='get' id='d1' from='{FOCUS}'>\
             <query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        )),
    );
    let out = drain(&mut leg);
    assert!(
        jigasi_xmpp::to_xml_string(&out.sent[0])
            .unwrap()
            .contains("http://jitsi.org/protocol/jigasi")
    );

    leg.handle_stanza(
        now,
        &parse("<iq xmlns='jabber:client' type='get' id='u1' from='x@y/z'><q xmlns='urn:example'/></iq>"),
    );
    assert!(
        jigasi_xmpp::to_xml_string(&drain(&mut leg).sent[0])
            .unwrap()
            .contains("service-unavailable")
    );

    leg.handle_stanza(
        now,
        &parse(&format!(
            "<iq xmlns='jabber:client' type='set' id='h1' from='{ROOM}/web' to='{ROOM}/d3adb33f'>\
             <hangup xmlns='urn:xmpp:rayo:1'/></iq>"
        )),
    );
    let out = drain(&mut leg);
    assert_eq!(out.sent[0].attr("type"), Some("result"));
    assert_eq!(
        out.events,
        [ConferenceEvent::Ended(EndReason::HangupRequested)]
    );
}

/// A bridge-role leg standing in for JVB, and an offer built from its real credentials.
fn bridge_and_offer(now: Instant, speakers: &[u32]) -> (MediaLeg, Element) {
    let mut bridge = MediaLeg::new(
        LegConfig::new(Role::Bridge, vec![BRIDGE_MEDIA.parse().unwrap()]),
        now,
    )
    .unwrap();
    let ice = bridge.local_ice();
    let (_, fingerprint) = bridge.local_fingerprint();
    let candidate = "<candidate component=\"1\" foundation=\"1\" generation=\"0\" id=\"c1\" \
         network=\"0\" priority=\"2130706431\" protocol=\"udp\" type=\"host\" ip=\"10.0.0.1\" \
         port=\"10000\"/>";
    let mut xml = example_5()
        .replace("b1e2a3o4i5u6", &ice.ufrag)
        .replace("6q8m2v0k4c7p1s9d3f5h7j2l4n", &ice.pwd)
        .replace(
            "2B:6E:0F:85:C3:4A:7D:91:E2:5F:08:B6:3C:D4:19:77:A0:5E:C2:8F:31:64:DA:0B:9E:47:F3:12:6C:88:A5:D0",
            &fingerprint,
        );
    let start = xml.find("<candidate").unwrap();
    let end = xml.find("</transport>").unwrap();
    xml.replace_range(start..end, candidate);
    // Replace the example's web participant by our speakers.
    let start = xml
        .find("<source xmlns=\"urn:xmpp:jingle:apps:rtp:ssma:0\" ssrc=\"1057249811\"")
        .unwrap();
    let end = start + xml[start..].find("</source>").unwrap() + "</source>".len();
    let sources: String = speakers
        .iter()
        .map(|ssrc| {
            format!(
                "<source xmlns=\"urn:xmpp:jingle:apps:rtp:ssma:0\" ssrc=\"{ssrc}\" name=\"web{ssrc}-a0\">\
                 <ssrc-info xmlns=\"http://jitsi.org/jitmeet\" owner=\"{ROOM}/web{ssrc}\"/></source>"
            )
        })
        .collect();
    xml.replace_range(start..end, &sources);
    (bridge, parse(&xml))
}

/// Moves datagrams between the conference leg and the bridge leg on a virtual clock.
struct Net {
    now: Instant,
    to_bridge: Vec<Transmit>,
    to_gateway: Vec<Transmit>,
    gateway_events: Vec<ConferenceEvent>,
    bridge_audio: Vec<AudioPacket>,
}

impl Net {
    fn pump(&mut self, leg: &mut ConferenceLeg, bridge: &mut MediaLeg) {
        for _ in 0..8 {
            let out = drain(leg);
            self.gateway_events.extend(out.events);
            self.to_bridge.extend(out.transmits);
            loop {
                match bridge.poll_output().unwrap() {
                    LegOutput::Transmit(t) => self.to_gateway.push(t),
                    LegOutput::Event(LegEvent::Audio(p)) => self.bridge_audio.push(p),
                    LegOutput::Event(_) => {}
                    LegOutput::Timeout(_) => break,
                }
            }
            for t in std::mem::take(&mut self.to_bridge) {
                bridge
                    .handle_receive(self.now, t.source, t.destination, &t.contents)
                    .unwrap();
            }
            for t in std::mem::take(&mut self.to_gateway) {
                leg.handle_datagram(self.now, t.source, t.destination, &t.contents);
            }
        }
    }

    fn tick(&mut self, leg: &mut ConferenceLeg, bridge: &mut MediaLeg, step: Duration) {
        self.now += step;
        leg.handle_timeout(self.now);
        bridge.handle_timeout(self.now).unwrap();
        self.pump(leg, bridge);
    }
}

#[test]
fn media_flows_both_ways_with_the_bridge_and_source_add_works() {
    let now = Instant::now();
    let mut leg = joined(now);
    let (mut bridge, offer) = bridge_and_offer(now, &[1001, 1002]);
    leg.handle_stanza(now, &offer);
    let out = drain(&mut leg);
    let answer = jingle_of(&out.sent[1]);
    // The stand-in side learns the gateway's transport from the session-accept.
    let transport = answer.first_transport().unwrap();
    bridge.start(&remote_params(transport).unwrap()).unwrap();
    for ssrc in [1001, 1002, 1003] {
        bridge.add_send_ssrc(Ssrc::new(ssrc)).unwrap();
    }
    bridge.add_receive_ssrc(Ssrc::new(0x0bad_cafe)).unwrap();

    let mut net = Net {
        now,
        to_bridge: Vec::new(),
        to_gateway: Vec::new(),
        gateway_events: Vec::new(),
        bridge_audio: Vec::new(),
    };
    for _ in 0..400 {
        net.tick(&mut leg, &mut bridge, Duration::from_millis(5));
        if net
            .gateway_events
            .contains(&ConferenceEvent::MediaConnected)
            && bridge.is_connected()
        {
            break;
        }
    }
    assert!(
        net.gateway_events
            .contains(&ConferenceEvent::MediaConnected)
    );

    for frame in 0..30u32 {
        if frame == 10 {
            // A third web participant joins: Jicofo sends source-add.
            leg.handle_stanza(
                net.now,
                &parse(&format!(
                    "<iq xmlns='jabber:client' type='set' id='sa1' from='{FOCUS}' to='{OUR_JID}'>\
                     <jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='5o1ghn8db24v7'>\
                     <content name='audio'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
                     <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1003' name='web1003-a0'>\
                     <ssrc-info xmlns='http://jitsi.org/jitmeet' owner='{ROOM}/web1003'/></source>\
                     </description></content></jingle></iq>"
                )),
            );
        }
        let now = net.now;
        for ssrc in [1001u32, 1002, 1003] {
            bridge
                .send_audio(
                    now,
                    Ssrc::new(ssrc),
                    frame * 960,
                    &[u8::try_from(ssrc % 256).unwrap(); 30],
                    40,
                    true,
                )
                .unwrap();
        }
        leg.send_audio(now, frame * 960, &[7; 25], 33, true);
        net.tick(&mut leg, &mut bridge, Duration::from_millis(20));
    }
    net.tick(&mut leg, &mut bridge, Duration::from_millis(100));

    let mut per_ssrc = std::collections::BTreeMap::<u32, usize>::new();
    for event in &net.gateway_events {
        if let ConferenceEvent::Audio(p) = event {
            *per_ssrc.entry(p.ssrc.get()).or_default() += 1;
        }
    }
    assert_eq!(per_ssrc.get(&1001), Some(&30), "{per_ssrc:?}");
    assert_eq!(per_ssrc.get(&1002), Some(&30), "{per_ssrc:?}");
    let added = per_ssrc.get(&1003).copied().unwrap_or(0);
    assert!(
        (19..=20).contains(&added),
        "source-add delivered {added} of 20 frames"
    );
    assert_eq!(net.bridge_audio.len(), 30);
    assert!(net.bridge_audio.iter().all(|p| p.level == Some(33)));

    // web1001 leaves the room (no source-remove from Jicofo): its audio is no longer accepted.
    leg.handle_stanza(
        net.now,
        &parse(&format!(
            "<presence xmlns='jabber:client' from='{ROOM}/web1001' type='unavailable'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/></x></presence>"
        )),
    );
    net.gateway_events.clear();
    for frame in 30..40u32 {
        let now = net.now;
        for ssrc in [1001u32, 1002] {
            bridge
                .send_audio(now, Ssrc::new(ssrc), frame * 960, &[1; 30], 40, true)
                .unwrap();
        }
        net.tick(&mut leg, &mut bridge, Duration::from_millis(20));
    }
    let from = |ssrc: u32| {
        net.gateway_events
            .iter()
            .filter(|e| matches!(e, ConferenceEvent::Audio(p) if p.ssrc.get() == ssrc))
            .count()
    };
    assert_eq!(from(1001), 0, "sources of a departed occupant are dropped");
    assert_eq!(from(1002), 10);
}
