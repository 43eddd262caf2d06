//! The stand-in against a real Prosody and a scripted fake gateway (tests/common).
//!
//! Skipped (with a note on stderr) when Prosody is not installed, failed under `CI=true`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::wildcard_enum_match_arm
)]

mod common;

use std::time::Duration;

use common::{
    AnswerMode, FakeGateway, config, dominant_hz, sources, start_prosody, start_stand_in,
};
use jigasi_jingle::answer::AnswerViolation;
use jigasi_jingle::ice::{CandidateType, Setup};
use jigasi_jingle::jingle::{Creator, ReasonCondition};
use jigasi_standin::{AudioSource, DialError, StandInEvent, ViolationKind};
use jigasi_xmpp::brewery::{self, Stats};
use jigasi_xmpp::disco::{DiscoInfo, JITSI_CAPS_NODE};
use jigasi_xmpp::jid::FullJid;
use jigasi_xmpp::muc::{self, MucPresence};
use jigasi_xmpp::{Auth, ClientConfig, TlsPolicy, stanza};
use jigasi_xmpp_io::{ConnectOptions, Incoming, connect_client};

const ROOM: &str = "room1@conference.meet.example.com";
const WAIT: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_answer_and_audio_both_ways() {
    let Some(prosody) = start_prosody() else {
        return;
    };
    let stand_in = start_stand_in(config(&prosody)).await;
    stand_in.answer_not_ready(ROOM, 1).await.unwrap();

    let gateway = FakeGateway::join(&prosody, ROOM, "d3adb33f", AnswerMode::Correct, 1000.0).await;
    {
        let state = gateway.state.lock().unwrap();
        let answers = &state.conference_answers;
        assert_eq!(answers.len(), 2, "ready=false once, then ready=true");
        assert_eq!(answers[0].ready, Some(false));
        assert_eq!(answers[1].ready, Some(true));
        assert_eq!(
            answers[1].focus_jid.as_deref(),
            Some("focus@auth.meet.example.com")
        );
        assert_eq!(answers[1].property("sipGatewayEnabled"), Some("true"));
        assert_eq!(answers[1].property("authentication"), Some("false"));
    }
    // Alone in the room: min-participants=2, no offer yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(gateway.state.lock().unwrap().offers.is_empty());

    let participant = stand_in
        .add_participant(ROOM, "cafebabe", AudioSource::Tone(440.0))
        .await
        .unwrap();
    let participant_ssrc = stand_in.participant(participant).unwrap().ssrc;
    assert!(
        gateway.wait(WAIT, |s| !s.offers.is_empty()).await,
        "session-initiate"
    );

    // §4.2: the offer.
    let (stanza, offer) = gateway.state.lock().unwrap().offers[0].clone();
    assert_eq!(
        stanza.attr("from"),
        Some("room1@conference.meet.example.com/focus")
    );
    assert_eq!(
        offer.initiator.as_ref().unwrap().to_string(),
        "focus@auth.meet.example.com/focus"
    );
    assert_eq!(stand_in.focus_jid(), "focus@auth.meet.example.com/focus");
    assert!(offer.bridge_session().is_some());
    assert_eq!(offer.group().unwrap().semantics, "BUNDLE");
    let content = offer.contents().next().unwrap();
    assert_eq!(
        (content.name.as_str(), content.creator),
        ("audio", Some(Creator::Initiator))
    );
    let offered = sources(&offer);
    assert_eq!(offered[0].name.as_deref(), Some("jvb-a0"));
    assert_eq!(offered[0].owner(), Some("jvb"));
    let cafe = offered
        .iter()
        .find(|s| s.owner() == Some("cafebabe"))
        .unwrap();
    assert_eq!(cafe.ssrc, participant_ssrc);
    assert_eq!(cafe.name.as_deref(), Some("cafebabe-a0"));
    assert!(cafe.msid().is_some());
    let transport = content.transport.as_ref().unwrap();
    assert_eq!(transport.fingerprint().unwrap().setup, Some(Setup::Actpass));
    assert!(transport.rtcp_mux());
    let candidates: Vec<_> = transport.candidates().collect();
    assert!(!candidates.is_empty());
    assert!(
        candidates.iter().all(|c| c.generation == Some(0)
            && c.kind == CandidateType::Host
            && c.protocol == "udp")
    );

    // A correct answer: accepted, zero violations, media connects.
    assert!(gateway.wait(WAIT, |s| s.accept_result.is_some()).await);
    assert_eq!(gateway.state.lock().unwrap().accept_result, Some(Ok(())));
    assert!(stand_in.violations(ROOM).await.unwrap().is_empty());
    assert!(gateway.wait(WAIT, |s| s.connected).await, "ICE/DTLS up");

    // 440 Hz from the simulated participant reaches the gateway on its own SSRC...
    assert!(
        gateway
            .wait(WAIT, |s| s
                .audio
                .get(&participant_ssrc.get())
                .is_some_and(|a| a.len() > 48_000))
            .await
    );
    let heard = dominant_hz(&gateway.audio(participant_ssrc.get())).unwrap();
    assert!((heard - 440.0).abs() < 10.0, "gateway heard {heard} Hz");
    // ...and the gateway's 1 kHz is received and decoded by the bridge.
    let mut received = Vec::new();
    for _ in 0..100 {
        received = stand_in.received_audio(ROOM, "d3adb33f").await.unwrap();
        if received.len() > 48_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let heard = dominant_hz(&received).unwrap();
    assert!((heard - 1000.0).abs() < 10.0, "bridge heard {heard} Hz");
    let stats = stand_in.media_stats(ROOM, "d3adb33f").await.unwrap();
    assert!(stats.connected && stats.packets_received > 50 && stats.packets_sent > 50);
    assert!(stats.last_level.is_some_and(|l| l < 30), "{stats:?}");

    let log = stand_in.event_log();
    assert!(
        log.iter()
            .any(|e| matches!(e, StandInEvent::SessionAccepted { nick, .. } if nick == "d3adb33f"))
    );
    assert!(log.iter().any(|e| matches!(
        e,
        StandInEvent::DiscoCompleted {
            defaulted: false,
            ..
        }
    )));
}

/// Issue 4's "Done when": broken answers are rejected with bad-request and recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_answers_are_rejected_and_recorded() {
    let Some(prosody) = start_prosody() else {
        return;
    };
    let stand_in = start_stand_in(config(&prosody)).await;
    let cases = [
        ("roomactpass", AnswerMode::Actpass),
        ("roomnogeneration", AnswerMode::NoGeneration),
        ("roomcollision", AnswerMode::SsrcCollision),
    ];
    let mut gateways = Vec::new();
    for (room, mode) in cases {
        let room = format!("{room}@conference.meet.example.com");
        stand_in.create_conference(&room).await.unwrap();
        stand_in
            .add_participant(&room, "cafebabe", AudioSource::Tone(440.0))
            .await
            .unwrap();
        gateways.push((
            room.clone(),
            mode,
            FakeGateway::join(&prosody, &room, "d3adb33f", mode, 1000.0).await,
        ));
    }
    for (room, mode, gateway) in &gateways {
        assert!(
            gateway.wait(WAIT, |s| s.accept_result.is_some()).await,
            "{mode:?}"
        );
        assert_eq!(
            gateway.state.lock().unwrap().accept_result,
            Some(Err("bad-request".to_owned())),
            "{mode:?}"
        );
        let violations = stand_in.violations(room).await.unwrap();
        assert!(!violations.is_empty(), "{mode:?}");
        assert!(
            violations
                .iter()
                .all(|v| v.nick == "d3adb33f" && v.action == "session-accept")
        );
        let found = violations.iter().any(|v| match (&v.kind, mode) {
            (ViolationKind::Answer(AnswerViolation::BadSetup { setup }), AnswerMode::Actpass) => {
                *setup == Setup::Actpass
            }
            (
                ViolationKind::Answer(AnswerViolation::CandidateGenerationMissing { .. }),
                AnswerMode::NoGeneration,
            ) => true,
            (
                ViolationKind::Answer(AnswerViolation::SsrcCollision { owner, .. }),
                AnswerMode::SsrcCollision,
            ) => owner.as_deref() == Some("cafebabe"),
            _ => false,
        });
        assert!(found, "{mode:?}: {violations:?}");
        // Nothing was started for a rejected answer.
        assert!(!gateway.state.lock().unwrap().connected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_propagate_and_gateways_hear_each_other() {
    let Some(prosody) = start_prosody() else {
        return;
    };
    let stand_in = start_stand_in(config(&prosody)).await;
    stand_in.create_conference(ROOM).await.unwrap();
    let a = FakeGateway::join(&prosody, ROOM, "aaaaaaaa", AnswerMode::Correct, 1000.0).await;
    let b = FakeGateway::join(&prosody, ROOM, "bbbbbbbb", AnswerMode::Correct, 600.0).await;
    for gateway in [&a, &b] {
        assert!(
            gateway
                .wait(WAIT, |s| s.accept_result == Some(Ok(())))
                .await
        );
        assert!(gateway.wait(WAIT, |s| s.connected).await);
    }
    // Each gateway learns the other's source (in its offer or by source-add) and hears it.
    let a_ssrc = a.state.lock().unwrap().own_ssrc;
    let b_ssrc = b.state.lock().unwrap().own_ssrc;
    let knows = |g: &FakeGateway, ssrc: u32| {
        let state = g.state.lock().unwrap();
        state
            .offers
            .iter()
            .map(|(_, j)| j)
            .chain(state.source_adds.iter())
            .flat_map(sources)
            .any(|s| s.ssrc.get() == ssrc)
    };
    assert!(
        knows(&b, a_ssrc)
            || b.wait(WAIT, |s| s
                .source_adds
                .iter()
                .flat_map(sources)
                .any(|x| x.ssrc.get() == a_ssrc))
                .await
    );
    assert!(
        a.wait(WAIT, |s| s
            .source_adds
            .iter()
            .flat_map(sources)
            .any(|x| x.ssrc.get() == b_ssrc))
            .await
    );
    assert!(knows(&a, b_ssrc));
    assert!(
        b.wait(WAIT, |s| s
            .audio
            .get(&a_ssrc)
            .is_some_and(|x| x.len() > 48_000))
            .await
    );
    assert!(
        a.wait(WAIT, |s| s
            .audio
            .get(&b_ssrc)
            .is_some_and(|x| x.len() > 48_000))
            .await
    );
    let heard = dominant_hz(&b.audio(a_ssrc)).unwrap();
    assert!((heard - 1000.0).abs() < 10.0, "b heard {heard} Hz from a");
    let heard = dominant_hz(&a.audio(b_ssrc)).unwrap();
    assert!((heard - 600.0).abs() < 10.0, "a heard {heard} Hz from b");

    // A participant added later reaches both by source-add, with owner = its nick.
    let participant = stand_in
        .add_participant(ROOM, "cafebabe", AudioSource::Tone(440.0))
        .await
        .unwrap();
    let ssrc = stand_in.participant(participant).unwrap().ssrc;
    for gateway in [&a, &b] {
        assert!(
            gateway
                .wait(WAIT, |s| s
                    .source_adds
                    .iter()
                    .flat_map(sources)
                    .any(|x| x.ssrc == ssrc && x.owner() == Some("cafebabe")))
                .await
        );
    }
    // Removing its source sends source-remove; leaving the MUC sends nothing (§4.4).
    stand_in
        .remove_participant_sources(participant)
        .await
        .unwrap();
    for gateway in [&a, &b] {
        assert!(
            gateway
                .wait(WAIT, |s| s
                    .source_removes
                    .iter()
                    .flat_map(sources)
                    .any(|x| x.ssrc == ssrc))
                .await
        );
    }
    let removes_before = a.state.lock().unwrap().source_removes.len();
    let second = stand_in
        .add_participant(ROOM, "0badf00d", AudioSource::Silence)
        .await
        .unwrap();
    let silent = stand_in.participant(second).unwrap().ssrc.get();
    assert!(
        a.wait(WAIT, |s| s
            .source_adds
            .iter()
            .flat_map(sources)
            .any(|x| x.owner() == Some("0badf00d")))
            .await
    );
    // A second of digital silence: the bridge forwards at most three level-127 packets (§5.3).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        a.audio(silent).len() <= 3 * 960,
        "{} samples of silence",
        a.audio(silent).len()
    );
    stand_in.remove_participant(second).await.unwrap();
    assert!(a.wait(WAIT, |s| s.presences.iter().any(|p| matches!(p, MucPresence::OccupantLeft { occupant } if occupant.resource().as_str() == "0badf00d"))).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.state.lock().unwrap().source_removes.len(), removes_before);
    assert!(stand_in.violations(ROOM).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_participant_timeout_terminates_the_session() {
    let Some(prosody) = start_prosody() else {
        return;
    };
    let mut config = config(&prosody);
    config.single_participant_timeout = Duration::from_millis(800);
    let stand_in = start_stand_in(config).await;
    stand_in.create_conference(ROOM).await.unwrap();
    let participant = stand_in
        .add_participant(ROOM, "cafebabe", AudioSource::Tone(440.0))
        .await
        .unwrap();
    let gateway = FakeGateway::join(&prosody, ROOM, "d3adb33f", AnswerMode::Correct, 1000.0).await;
    assert!(
        gateway
            .wait(WAIT, |s| s.accept_result == Some(Ok(())))
            .await
    );
    // With two members the timer does not run.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(gateway.state.lock().unwrap().terminates.is_empty());
    stand_in.remove_participant(participant).await.unwrap();
    assert!(gateway.wait(WAIT, |s| !s.terminates.is_empty()).await);
    let terminate = gateway.state.lock().unwrap().terminates[0].clone();
    let reason = terminate.reason().unwrap();
    assert_eq!(reason.condition, ReasonCondition::Expired);
    assert_eq!(reason.text.as_deref(), Some("Idle session timeout"));
    assert!(
        stand_in
            .event_log()
            .iter()
            .any(|e| matches!(e, StandInEvent::SingleParticipantTimeout { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_terminate_kick_and_destroy() {
    let Some(prosody) = start_prosody() else {
        return;
    };
    let stand_in = start_stand_in(config(&prosody)).await;
    stand_in.create_conference(ROOM).await.unwrap();
    stand_in
        .add_participant(ROOM, "cafebabe", AudioSource::Tone(440.0))
        .await
        .unwrap();
    let gateway = FakeGateway::join(&prosody, ROOM, "d3adb33f", AnswerMode::Correct, 1000.0).await;
    assert!(gateway.wait(WAIT, |s| s.connected).await);

    // Mute: the gateway gets the IQ from the focus, the bridge drops its audio.
    stand_in.mute(ROOM, "d3adb33f").await.unwrap();
    assert!(gateway.wait(WAIT, |s| !s.mutes.is_empty()).await);
    let (iq, mute) = gateway.state.lock().unwrap().mutes[0].clone();
    assert_eq!(
        iq.attr("from"),
        Some("room1@conference.meet.example.com/focus")
    );
    assert!(mute.mute);
    assert_eq!(
        mute.actor.unwrap().to_string(),
        "room1@conference.meet.example.com/focus"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stats = stand_in.media_stats(ROOM, "d3adb33f").await.unwrap();
    assert!(stats.dropped_muted > 5, "{stats:?}");

    // Self-unmute through the MUC lifts the force-mute.
    let unmute = jigasi_jingle::jitmeet::Mute {
        media: jigasi_jingle::jitmeet::MuteMedia::Audio,
        jid: Some(gateway.occupant.clone().into()),
        actor: None,
        mute: false,
    };
    let request = stanza::iq(
        "set",
        Some("room1@conference.meet.example.com/focus"),
        unmute.to_element(),
    );
    gateway.handle.send_iq(request, WAIT).await.unwrap();
    let before = stand_in
        .media_stats(ROOM, "d3adb33f")
        .await
        .unwrap()
        .dropped_muted;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        stand_in
            .media_stats(ROOM, "d3adb33f")
            .await
            .unwrap()
            .dropped_muted,
        before
    );

    // Terminate with a reason.
    stand_in
        .terminate(ROOM, "d3adb33f", ReasonCondition::Success, Some("moving"))
        .await
        .unwrap();
    assert!(gateway.wait(WAIT, |s| !s.terminates.is_empty()).await);
    let reason = gateway.state.lock().unwrap().terminates[0]
        .reason()
        .cloned()
        .unwrap();
    assert_eq!(
        (reason.condition, reason.text.as_deref()),
        (ReasonCondition::Success, Some("moving"))
    );

    // Kick: status 307 to the gateway about itself.
    stand_in.kick(ROOM, "d3adb33f").await.unwrap();
    assert!(
        gateway
            .wait(WAIT, |s| s.presences.iter().any(|p| matches!(
                p,
                MucPresence::Kicked { is_self: true, .. }
            )))
            .await
    );

    // Destroy another room: the gateway there sees <destroy/>.
    let room2 = "room2@conference.meet.example.com";
    stand_in.create_conference(room2).await.unwrap();
    let other = FakeGateway::join(&prosody, room2, "0badf00d", AnswerMode::Correct, 1000.0).await;
    stand_in.destroy(room2, Some("end meeting")).await.unwrap();
    assert!(
        other
            .wait(WAIT, |s| s
                .presences
                .iter()
                .any(|p| matches!(p, MucPresence::RoomDestroyed { .. })))
            .await
    );
    assert!(
        stand_in
            .wait_for(WAIT, |e| {
                matches!(e, StandInEvent::ConferenceEnded { room } if room == room2).then_some(())
            })
            .await
            .is_some()
    );
}

/// Two brewery occupants: the least loaded errors, the dial is retried on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rayo_dial_is_forwarded_with_retry() {
    let Some(prosody) = start_prosody() else {
        return;
    };
    let stand_in = start_stand_in(config(&prosody)).await;
    stand_in.create_conference(ROOM).await.unwrap();
    let brewery_jid = prosody.brewery_jid();
    let mut tasks = Vec::new();
    for (nick, participants, fail) in [("jigasi-a", 1, true), ("jigasi-b", 5, false)] {
        let client = ClientConfig::new(
            prosody.auth_domain(),
            Auth::Password {
                username: "jigasi".into(),
                password: jigasi_types::Secret::new("jigasipw".into()),
            },
        )
        .with_tls(TlsPolicy::Disabled)
        .with_resource(nick);
        let options = ConnectOptions::new(
            prosody.c2s_addr().ip().to_string(),
            prosody.c2s_addr().port(),
        );
        let (handle, mut events) = connect_client(options, client).await.unwrap();
        let occupant = FullJid::new(&format!("{brewery_jid}/{nick}")).unwrap();
        let caps = DiscoInfo::jigasi().caps_element(JITSI_CAPS_NODE);
        handle
            .send(muc::join_presence(&occupant, None, vec![caps.clone()]))
            .await
            .unwrap();
        let stats = Stats {
            conferences: 0,
            participants,
            graceful_shutdown: false,
            stress_level: 0.0,
            region: None,
            version: "test".into(),
            supports_transcription: false,
            supports_sip: true,
        };
        handle
            .send(brewery::stats_presence(&occupant, &stats, caps))
            .await
            .unwrap();
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
        tasks.push((seen_rx, handle.clone()));
        tokio::spawn(async move {
            let mut seen = Some(seen_tx);
            while let Some(Incoming::Stanza(s)) = events.next().await {
                if !stanza::is_iq_request(&s) {
                    continue;
                }
                let Some(dial) = s.get_child("dial", "urn:xmpp:rayo:1") else {
                    handle.send(stanza::iq_result(&s)).await.unwrap();
                    continue;
                };
                if let Some(seen) = seen.take() {
                    let _ =
                        seen.send((s.attr("from").unwrap_or_default().to_owned(), dial.clone()));
                }
                let reply = if fail {
                    stanza::iq_error(&s, "wait", "internal-server-error")
                } else {
                    let mut reply = stanza::iq_result(&s);
                    reply.append_child(
                        jigasi_jingle::rayo::Ref {
                            uri: "xmpp:room1@conference.meet.example.com/1a2b3c4d".into(),
                        }
                        .to_element(),
                    );
                    reply
                };
                handle.send(reply).await.unwrap();
            }
        });
    }
    assert!(
        stand_in
            .wait_for(WAIT, |e| match e {
                StandInEvent::GatewayAvailable { occupant } if occupant.ends_with("jigasi-b") =>
                    Some(()),
                _ => None,
            })
            .await
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stand_in.gateways().await.unwrap().len(), 2);

    let uri = stand_in
        .dial(ROOM, "+15551234567", &[("X-Customer-Id", "42")])
        .await
        .unwrap();
    assert_eq!(uri.0, "xmpp:room1@conference.meet.example.com/1a2b3c4d");
    let mut forwarded = Vec::new();
    for (seen, _) in tasks {
        forwarded.push(tokio::time::timeout(WAIT, seen).await.unwrap().unwrap());
    }
    for (from, dial) in &forwarded {
        // Through the MUC: from Jicofo's brewery occupant JID.
        assert_eq!(
            from.to_lowercase(),
            format!("{}/focus", brewery_jid.to_lowercase())
        );
        let dial = jigasi_jingle::rayo::Dial::parse(dial).unwrap();
        assert_eq!(dial.to, "+15551234567");
        assert_eq!(dial.room_name(), Some(ROOM));
        assert_eq!(dial.header("X-Customer-Id"), Some("42"));
    }
    let attempts: Vec<(String, u32)> = stand_in
        .event_log()
        .into_iter()
        .filter_map(|e| match e {
            StandInEvent::DialForwarded { gateway, attempt } => Some((gateway, attempt)),
            _ => None,
        })
        .collect();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert!(attempts[0].0.ends_with("jigasi-a"), "least loaded first");
    assert!(attempts[1].0.ends_with("jigasi-b"));

    // Nobody supports transcription: service-unavailable.
    let error = stand_in
        .dial(ROOM, "jitsi_meet_transcribe", &[])
        .await
        .unwrap_err();
    assert_eq!(error, DialError::NoGateway);
    assert_eq!(error.xmpp_condition(), "service-unavailable");
}
