//! End-to-end tests of several `jigasi-rs` instances sharing one deployment (issue 6 item 6):
//! dial-outs spread over the brewery by Jicofo's least-loaded choice (the stand-in), dial-ins
//! spread by Kamailio's `dispatcher` with failover from a stopped instance; and the
//! "last web participant leaves" row of jigasi-behaviour.md §1.12 (item 3).
//!
//! The instances share the brewery account with their own `RESOURCE` (brewery nick
//! `jigasi-a`, `jigasi-b`) and register at Kamailio as different SIP users; Kamailio dispatches
//! the pool number to their SIP addresses (see `jigasi_demo::Cluster`).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use jigasi_demo::{Cluster, DEMO_ROOM, Instance, Session, SessionConfig};
use jigasi_jingle::jingle::ReasonCondition;
use jigasi_standin::{AudioSource, BreweryInstance, StandIn, StandInEvent};
use jigasi_testpeers::{Baresip, audio, available};

const BIN: &str = env!("CARGO_BIN_EXE_jigasi-rs");

/// How long a phone may take to see its call established.
const ESTABLISHED: Duration = Duration::from_secs(20);

fn peers_installed() -> bool {
    available(&["prosody", "prosodyctl", "kamailio", "baresip", "openssl"])
}

async fn two_instances() -> Option<Cluster> {
    if !peers_installed() {
        return None;
    }
    Some(
        Cluster::start(Path::new(BIN), 2, AudioSource::Tone(1000.0))
            .await
            .unwrap(),
    )
}

fn established(phone: &mut Baresip, cluster: &mut Cluster) {
    if let Err(error) = phone.wait_event("CALL_ESTABLISHED", ESTABLISHED) {
        panic!("{error}\nphone log:\n{}\n{}", phone.log(), logs(cluster));
    }
}

/// Every instance's log and Kamailio's, for failure messages.
fn logs(cluster: &mut Cluster) -> String {
    let mut text = String::new();
    for instance in &mut cluster.instances {
        text.push_str(&format!(
            "--- instance {} ---\n{}\n",
            instance.name,
            instance.gateway.log()
        ));
    }
    text.push_str(&format!("--- kamailio ---\n{}", cluster.kamailio.log()));
    text
}

/// The gateways the stand-in forwarded Rayo dials to, in order.
fn forwarded(standin: &StandIn) -> Vec<String> {
    standin
        .event_log()
        .into_iter()
        .filter_map(|event| {
            if let StandInEvent::DialForwarded { gateway, .. } = event {
                Some(gateway)
            } else {
                None
            }
        })
        .collect()
}

/// A Rayo dial from the stand-in (Jicofo) to `to` for `room`: which instance got it (exactly
/// one attempt) and the gateway's nick in the room (from the `<ref>`).
async fn dial_out(cluster: &mut Cluster, room: &str, to: &str) -> (String, String) {
    let before = forwarded(&cluster.standin).len();
    let reference = match cluster.standin.dial(room, to, &[]).await {
        Ok(reference) => reference,
        Err(error) => panic!("dial to {to} failed: {error:?}\n{}", logs(cluster)),
    };
    let attempts = forwarded(&cluster.standin).split_off(before);
    assert_eq!(attempts.len(), 1, "one attempt expected: {attempts:?}");
    let instance = cluster.by_occupant(&attempts[0]).unwrap().name.clone();
    let nick = reference.0.rsplit('/').next().unwrap().to_owned();
    (instance, nick)
}

/// The brewery view once `occupant`'s stats satisfy `ready`.
async fn brewery_shows(
    cluster: &Cluster,
    instance: &str,
    ready: impl Fn(&BreweryInstance) -> bool,
) -> Vec<BreweryInstance> {
    let instance = cluster.instance(instance).unwrap();
    match cluster
        .wait_brewery(Duration::from_secs(10), |gateways| {
            gateways
                .iter()
                .any(|g| instance.is_occupant(&g.occupant) && ready(g))
        })
        .await
    {
        Ok(gateways) => gateways,
        Err(seen) => panic!("instance {} never showed that: {seen:?}", instance.name),
    }
}

fn stats_of<'a>(gateways: &'a [BreweryInstance], instance: &Instance) -> &'a BreweryInstance {
    gateways
        .iter()
        .find(|g| instance.is_occupant(&g.occupant))
        .unwrap()
}

/// The dominant frequency the conference heard from `nick` once it has `seconds` of audio.
async fn heard_hz(standin: &StandIn, room: &str, nick: &str, seconds: f64) -> Option<f64> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let heard = standin.received_audio(room, nick).await.unwrap_or_default();
        #[allow(clippy::cast_precision_loss)]
        let have = heard.len() as f64 / 48_000.0;
        if have >= seconds || Instant::now() >= deadline {
            let samples: Vec<f32> = heard.iter().map(|&s| f32::from(s) / 32768.0).collect();
            return audio::dominant_frequency_of(&samples, 48_000);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn near(hz: Option<f64>, expected: f64) -> bool {
    hz.is_some_and(|hz| (hz - expected).abs() < 15.0)
}

/// Polls each instance's `/about/stats` until its `conferences` are `expected` (in instance
/// order; an instance that is not running counts 0).
async fn wait_conferences(cluster: &mut Cluster, expected: &[u64]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut now = Vec::new();
        for instance in &cluster.instances {
            now.push(instance.conferences().await.unwrap_or(0));
        }
        if now == expected {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "conferences per instance {now:?}, expected {expected:?}\n{}",
                logs(cluster)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The nick of the next gateway participant the stand-in invites that is not in `nicks`.
async fn new_nick(standin: &StandIn, nicks: &mut Vec<String>) -> String {
    let known = nicks.clone();
    let nick = standin
        .wait_for(Duration::from_secs(10), |event| {
            if let StandInEvent::SessionInitiated { nick, .. } = event
                && !known.contains(nick)
            {
                Some(nick.clone())
            } else {
                None
            }
        })
        .await
        .unwrap();
    nicks.push(nick.clone());
    nick
}

/// Jicofo's `selectJigasi` over two real instances: each dial-out goes to the instance with
/// the fewest `participants` in its brewery `<stats>`, and never to one in graceful shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_outs_go_to_the_least_loaded_instance_and_never_to_one_shutting_down() {
    let Some(mut cluster) = two_instances().await else {
        return;
    };
    // Both instances are in the brewery with their stats, idle.
    let gateways = cluster.standin.gateways().await.unwrap();
    assert_eq!(gateways.len(), 2, "{gateways:?}");
    for gateway in &gateways {
        assert!(
            cluster.by_occupant(&gateway.occupant).is_some(),
            "{gateway:?}"
        );
        let stats = &gateway.stats;
        assert!(stats.supports_sip && !stats.graceful_shutdown, "{stats:?}");
        assert_eq!((stats.conferences, stats.participants), (0, 0), "{stats:?}");
    }
    // A second room with one web participant; the demo room gets a second one.
    cluster.standin.create_conference("small").await.unwrap();
    cluster
        .standin
        .add_participant("small", "web2", AudioSource::Tone(1300.0))
        .await
        .unwrap();
    cluster
        .standin
        .add_participant(DEMO_ROOM, "web3", AudioSource::Silence)
        .await
        .unwrap();
    let mut bob = cluster.phone("bob", 500, true).unwrap();
    let mut carol = cluster.phone("carol", 700, true).unwrap();

    // 1. Both idle: one of them takes bob's call into the demo room.
    let (busy, bob_nick) = dial_out(&mut cluster, DEMO_ROOM, "bob").await;
    established(&mut bob, &mut cluster);
    // Jicofo sees its load: focus, web1, web3 besides the gateway (room members − 1).
    brewery_shows(&cluster, &busy, |g| {
        g.stats.conferences == 1 && g.stats.participants == 3
    })
    .await;

    // 2. The next dial goes to the other, idle instance.
    let (idle, carol_nick) = dial_out(&mut cluster, "small", "carol").await;
    assert_ne!(busy, idle, "the second dial went to the busy instance");
    established(&mut carol, &mut cluster);
    let gateways = brewery_shows(&cluster, &idle, |g| {
        g.stats.conferences == 1 && g.stats.participants == 2
    })
    .await;
    // The idle instance is now the less loaded one (2 < 3).
    let (busy_instance, idle_instance) = (
        cluster.instance(&busy).unwrap(),
        cluster.instance(&idle).unwrap(),
    );
    assert!(
        stats_of(&gateways, idle_instance).stats.participants
            < stats_of(&gateways, busy_instance).stats.participants,
        "{gateways:?}"
    );
    // Each instance carries its own call, with audio: the conference hears each phone's tone.
    wait_conferences(&mut cluster, &[1, 1]).await;
    // /about/stats agrees with the presence, with Jigasi's room-size histogram.
    for (name, others) in [(&busy, 3), (&idle, 2)] {
        let stats = cluster.instance(name).unwrap().stats().await.unwrap();
        let mut sizes = vec!["0"; 22];
        sizes[others] = "1";
        assert!(
            stats.contains(&format!("\"participants\":{others}"))
                && stats.contains(&format!("\"conference_sizes\":[{}]", sizes.join(","))),
            "instance {name}: {stats}"
        );
    }
    let bob_heard = heard_hz(&cluster.standin, DEMO_ROOM, &bob_nick, 2.0).await;
    let carol_heard = heard_hz(&cluster.standin, "small", &carol_nick, 2.0).await;
    assert!(
        near(bob_heard, 500.0) && near(carol_heard, 700.0),
        "heard {bob_heard:?} Hz from bob, {carol_heard:?} Hz from carol\n{}",
        logs(&mut cluster)
    );

    // 3. The less loaded instance starts a graceful shutdown (its call goes on): Jicofo sees
    // the flag and the next dial goes to the busier one.
    cluster
        .instance(&idle)
        .unwrap()
        .request_shutdown()
        .await
        .unwrap();
    brewery_shows(&cluster, &idle, |g| g.stats.graceful_shutdown).await;
    let (third, _) = dial_out(&mut cluster, "small", "dave").await;
    assert_eq!(
        third, busy,
        "a dial went to the instance in graceful shutdown"
    );
    assert!(
        carol
            .wait_event("CALL_CLOSED", Duration::from_millis(500))
            .is_err(),
        "the call on the instance in graceful shutdown must go on"
    );
}

/// Kamailio's dispatcher in front of two instances: round robin gives each one a dial-in call
/// with audio; an instance in graceful shutdown answers new calls with 503 and the dispatcher
/// fails over to the other; its OPTIONS probes then get 503 too, so it stays out of the pool and,
/// once it has exited, is never offered a call; restarted, it is probed back into the pool and
/// gets calls again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_ins_are_spread_by_the_dispatcher_and_fail_over_from_a_stopped_instance() {
    let Some(mut cluster) = two_instances().await else {
        return;
    };
    let pool = cluster.pool_uri();
    let mut alice = cluster.phone("alice", 440, false).unwrap();
    let mut carol = cluster.phone("carol", 660, false).unwrap();
    let mut dave = cluster.phone("dave", 880, false).unwrap();
    let mut nicks = Vec::new();

    // (b) Two calls to the pool number: one on each instance.
    alice.dial(&pool).unwrap();
    established(&mut alice, &mut cluster);
    let alice_nick = new_nick(&cluster.standin, &mut nicks).await;
    let first = if cluster.instances[0].conferences().await.unwrap() == 1 {
        0
    } else {
        1
    };
    let other = 1 - first;
    carol.dial(&pool).unwrap();
    established(&mut carol, &mut cluster);
    let carol_nick = new_nick(&cluster.standin, &mut nicks).await;
    wait_conferences(&mut cluster, &[1, 1]).await;
    let alice_heard = heard_hz(&cluster.standin, DEMO_ROOM, &alice_nick, 2.0).await;
    let carol_heard = heard_hz(&cluster.standin, DEMO_ROOM, &carol_nick, 2.0).await;
    assert!(
        near(alice_heard, 440.0) && near(carol_heard, 660.0),
        "heard {alice_heard:?} Hz from alice, {carol_heard:?} Hz from carol\n{}",
        logs(&mut cluster)
    );
    let first_uri = cluster.instances[first].sip_uri();
    let other_uri = cluster.instances[other].sip_uri();
    let log = cluster.kamailio.log();
    assert!(
        log.contains(&format!(" to {first_uri}")) && log.contains(&format!(" to {other_uri}")),
        "{log}"
    );

    // (c) The instance that took the first call is stopped (SIGTERM: graceful, its call goes
    // on). It answers both INVITE and OPTIONS with 503 from now on: the next call either meets
    // the 503 and fails over, or the dispatcher's probe already took the instance out.
    cluster.instances[first].gateway.sigterm().unwrap();
    cluster.instances[first]
        .gateway
        .wait_for_line(
            "graceful shutdown: refusing new calls",
            Duration::from_secs(5),
        )
        .unwrap();
    dave.dial(&pool).unwrap();
    established(&mut dave, &mut cluster);
    let dave_nick = new_nick(&cluster.standin, &mut nicks).await;
    let expected = if first == 0 { [1, 2] } else { [2, 1] };
    wait_conferences(&mut cluster, &expected).await;
    assert!(near(
        heard_hz(&cluster.standin, DEMO_ROOM, &dave_nick, 1.0).await,
        880.0
    ));
    let log = cluster.kamailio.log();
    let first_port = cluster.instances[first].sip_port;
    let failed_over = log.contains(&format!("failed at {first_uri} (503)"))
        && log.contains(&format!("failover to {other_uri}"));
    let probed_out = log.contains(&format!(
        "REPLY 503 Service Unavailable for OPTIONS from 127.0.0.1:{first_port}"
    ));
    assert!(
        failed_over || probed_out,
        "neither a failover nor a probe took the draining instance out:\n{}",
        logs(&mut cluster)
    );
    assert!(
        alice
            .wait_event("CALL_CLOSED", Duration::from_millis(200))
            .is_err(),
        "the stopped instance's running call must go on"
    );

    // Its last call ends: it exits. Calls to the pool all reach the other instance: the
    // dispatcher marked the draining instance down at the 503 and its OPTIONS probes got 503
    // (RFC 3261 §11.2) until it exited and then no answer, so no call is offered to the dead
    // address (before the probes answered 503, one call in two waited `failover_after` there).
    let offered_before = cluster
        .kamailio
        .log()
        .matches(&format!(" to {first_uri}"))
        .count();
    alice.hangup().unwrap();
    let exit = cluster.instances[first]
        .gateway
        .wait(Duration::from_secs(15))
        .unwrap();
    assert!(exit.success(), "{}", logs(&mut cluster));
    let _ = alice.wait_event("CALL_CLOSED", Duration::from_secs(5));
    alice.dial(&pool).unwrap();
    established(&mut alice, &mut cluster);
    dave.hangup().unwrap();
    let _ = dave.wait_event("CALL_CLOSED", Duration::from_secs(5));
    dave.dial(&pool).unwrap();
    established(&mut dave, &mut cluster);
    let expected = if first == 0 { [0, 3] } else { [3, 0] };
    wait_conferences(&mut cluster, &expected).await;
    let log = cluster.kamailio.log();
    assert_eq!(
        log.matches(&format!(" to {first_uri}")).count(),
        offered_before,
        "a call was offered to the stopped instance:\n{}",
        logs(&mut cluster)
    );

    // Rolling restart: the instance comes back on the same address; Kamailio's OPTIONS
    // probing marks it active again and round robin gives it calls (carol redials until one
    // lands there; with two destinations that takes at most two calls once it is active).
    let name = cluster.instances[first].name.clone();
    cluster.restart(&name).await.unwrap();
    let probe_answered = format!(
        "REPLY 200 OK for OPTIONS from 127.0.0.1:{}",
        cluster.instances[first].sip_port
    );
    let started = std::time::Instant::now();
    while !cluster.kamailio.log().contains(&probe_answered) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "Kamailio never probed the restarted instance\n{}",
            logs(&mut cluster)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut landed = false;
    for _ in 0..6 {
        carol.hangup().unwrap();
        let _ = carol.wait_event("CALL_CLOSED", Duration::from_secs(5));
        carol.dial(&pool).unwrap();
        established(&mut carol, &mut cluster);
        if cluster.instances[first].conferences().await.unwrap() == 1 {
            landed = true;
            break;
        }
    }
    assert!(
        landed,
        "the restarted instance never got a call again\n{}",
        logs(&mut cluster)
    );
}

/// jigasi-behaviour.md §1.12 "last web participant leaves" (default configuration): the
/// gateway stays in the room with the phone up; Jicofo's single-participant timeout terminates
/// its Jingle session (`expired`, "Idle session timeout"); the gateway keeps the phone for
/// `JVB_INVITE_TIMEOUT` waiting for a new invite, then hangs up with BYE `Reason:
/// SIP;cause=408;text="No invite from conference focus"`. With Jicofo's 20 s and Jigasi's
/// 30 s that is about 50 s; here the stand-in's timeout is 4 s and the demo configuration's
/// window 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_web_participant_leaving_ends_the_phone_call_after_the_idle_timeout_and_the_invite_window()
 {
    if !peers_installed() {
        return;
    }
    const SINGLE_TIMEOUT: Duration = Duration::from_secs(4);
    const INVITE_WINDOW: Duration = Duration::from_secs(5);
    let config = SessionConfig {
        participant: AudioSource::Tone(1000.0),
        echo: false,
        capture: false,
        extra_properties: vec![format!(
            "org.jitsi.jigasi.JVB_INVITE_TIMEOUT={}",
            INVITE_WINDOW.as_millis()
        )],
    };
    let mut session = Session::start_with(Path::new(BIN), &config, |standin| {
        standin.single_participant_timeout = SINGLE_TIMEOUT;
    })
    .await
    .unwrap();
    let (mut phone, nick) = session.established_dial_in(440).await.unwrap();
    session
        .standin
        .add_participant(DEMO_ROOM, "web2", AudioSource::Tone(1500.0))
        .await
        .unwrap();
    // The first web participant leaves: one is left, nothing happens to the call.
    let web1 = session.standin.find_participant(DEMO_ROOM, "web1").unwrap();
    session.standin.remove_participant(web1).await.unwrap();
    // The last one leaves: only the gateway is left with the focus.
    let web2 = session.standin.find_participant(DEMO_ROOM, "web2").unwrap();
    session.standin.remove_participant(web2).await.unwrap();
    let left = Instant::now();
    assert!(
        phone
            .wait_event("CALL_CLOSED", SINGLE_TIMEOUT - Duration::from_millis(500))
            .is_err(),
        "the gateway must stay with the phone while the focus keeps its session"
    );
    let terminated = session
        .standin
        .wait_for(Duration::from_secs(10), |event| {
            if let StandInEvent::SessionTerminated {
                nick: n,
                reason,
                by_focus: true,
                ..
            } = event
                && *n == nick
            {
                Some(reason.clone())
            } else {
                None
            }
        })
        .await;
    let terminated_at = Instant::now();
    assert_eq!(
        terminated,
        Some(ReasonCondition::Expired),
        "{}",
        session.gateway.log()
    );
    assert!(
        session
            .standin
            .event_log()
            .iter()
            .any(|e| matches!(e, StandInEvent::SingleParticipantTimeout { .. }))
    );
    assert!(
        terminated_at - left >= SINGLE_TIMEOUT - Duration::from_millis(500),
        "terminated after {:?}",
        terminated_at - left
    );
    // The gateway waits for a new invite with the phone up, then hangs up.
    assert!(
        phone
            .wait_event("CALL_CLOSED", INVITE_WINDOW - Duration::from_secs(1))
            .is_err(),
        "the phone was hung up before the invite window ended\n{}",
        session.gateway.log()
    );
    phone
        .wait_event("CALL_CLOSED", Duration::from_secs(6))
        .unwrap_or_else(|e| panic!("{e}\n{}", session.gateway.log()));
    let hung_up = terminated_at.elapsed();
    assert!(
        hung_up >= INVITE_WINDOW - Duration::from_secs(1) && hung_up < INVITE_WINDOW * 2,
        "BYE {hung_up:?} after the session-terminate"
    );
    // What the phone got: BYE with Reason 408 "No invite from conference focus" (Kamailio
    // logs the Reason of every request it relays).
    let kamailio = session.deployment.kamailio.log();
    let reason = kamailio
        .lines()
        .find(|line| line.contains("REASON BYE"))
        .unwrap_or_else(|| panic!("no BYE with a Reason header:\n{kamailio}"));
    assert!(
        reason.contains("SIP;cause=408") && reason.contains("No invite from conference focus"),
        "{reason}"
    );
    // The gateway left the room.
    assert!(
        session
            .standin
            .wait_for(Duration::from_secs(5), |event| {
                matches!(event, StandInEvent::MemberLeft { nick: n, .. } if *n == nick)
                    .then_some(())
            })
            .await
            .is_some(),
        "{}",
        session.gateway.log()
    );
}
