//! Two legs, gateway and bridge, on a virtual clock with an in-memory network (str0m's two-peer
//! test style): real ICE, DTLS and SRTP, no sockets.

// Tests take one real instant as the base of their virtual clock.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

const GATEWAY_ADDR: &str = "10.0.0.2:10000";
const BRIDGE_ADDR: &str = "10.0.0.1:10000";

struct Pair {
    now: Instant,
    gateway: MediaLeg,
    bridge: MediaLeg,
    /// Events per side, in order.
    gateway_events: Vec<LegEvent>,
    bridge_events: Vec<LegEvent>,
    /// Datagrams in flight: (deliver at, destination leg is gateway, transmit).
    in_flight: Vec<(Instant, bool, Transmit)>,
    /// Drop every n-th datagram toward the gateway (0 = none).
    drop_every: usize,
    sent_to_gateway: usize,
}

fn remote_of(leg: &mut MediaLeg) -> RemoteParams {
    let (hash, value) = leg.local_fingerprint();
    RemoteParams {
        ice: leg.local_ice(),
        candidates: leg.local_candidates(),
        fingerprint_hash: hash,
        fingerprint: value,
    }
}

impl Pair {
    fn new() -> Self {
        let now = Instant::now();
        let mut gateway = MediaLeg::new(
            LegConfig::new(Role::Gateway, vec![GATEWAY_ADDR.parse().unwrap()]),
            now,
        )
        .unwrap();
        let mut bridge = MediaLeg::new(
            LegConfig::new(Role::Bridge, vec![BRIDGE_ADDR.parse().unwrap()]),
            now,
        )
        .unwrap();
        let to_gateway = remote_of(&mut bridge);
        let to_bridge = remote_of(&mut gateway);
        gateway.start(&to_gateway).unwrap();
        bridge.start(&to_bridge).unwrap();
        Self {
            now,
            gateway,
            bridge,
            gateway_events: Vec::new(),
            bridge_events: Vec::new(),
            in_flight: Vec::new(),
            drop_every: 0,
            sent_to_gateway: 0,
        }
    }

    /// Drains both legs' outputs into the network and event logs.
    fn drain(&mut self) {
        for to_gateway in [false, true] {
            let leg = if to_gateway {
                &mut self.bridge
            } else {
                &mut self.gateway
            };
            loop {
                match leg.poll_output().unwrap() {
                    LegOutput::Timeout(_) => break,
                    LegOutput::Transmit(t) => {
                        self.in_flight
                            .push((self.now + Duration::from_millis(5), to_gateway, t));
                    }
                    LegOutput::Event(e) => {
                        if to_gateway {
                            self.bridge_events.push(e);
                        } else {
                            self.gateway_events.push(e);
                        }
                    }
                }
            }
        }
    }

    /// Advances the virtual clock by `step`, delivering what is due and firing timeouts.
    fn step(&mut self, step: Duration) {
        self.now += step;
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) =
            self.in_flight.drain(..).partition(|(at, _, _)| *at <= now);
        self.in_flight = later;
        for (_, to_gateway, t) in due {
            if to_gateway {
                self.sent_to_gateway += 1;
                if self.drop_every > 0 && self.sent_to_gateway.is_multiple_of(self.drop_every) {
                    continue;
                }
                self.gateway
                    .handle_receive(now, t.source, t.destination, &t.contents)
                    .unwrap();
            } else {
                self.bridge
                    .handle_receive(now, t.source, t.destination, &t.contents)
                    .unwrap();
            }
            self.drain();
        }
        self.gateway.handle_timeout(now).unwrap();
        self.bridge.handle_timeout(now).unwrap();
        self.drain();
    }

    fn connect(&mut self) {
        self.drain();
        for _ in 0..2000 {
            if self.gateway.is_connected() && self.bridge.is_connected() {
                return;
            }
            self.step(Duration::from_millis(5));
        }
        panic!("no connection: {:?} / {:?}", self.gateway, self.bridge);
    }

    fn gateway_audio(&self) -> BTreeMap<u32, Vec<&AudioPacket>> {
        let mut by_ssrc: BTreeMap<u32, Vec<&AudioPacket>> = BTreeMap::new();
        for event in &self.gateway_events {
            if let LegEvent::Audio(p) = event {
                by_ssrc.entry(p.ssrc.get()).or_default().push(p);
            }
        }
        by_ssrc
    }
}

#[test]
fn gateway_receives_each_remote_speaker_apart_and_the_bridge_hears_the_gateway() {
    let mut pair = Pair::new();
    let gateway_ssrc = Ssrc::new(0x1111_2222);
    pair.gateway.add_send_ssrc(gateway_ssrc).unwrap();
    pair.bridge.add_receive_ssrc(gateway_ssrc).unwrap();
    // Three web participants signalled to the gateway, a fourth one not signalled.
    let speakers = [(1u32, 10u8), (2, 20), (3, 30), (4, 40)];
    for (ssrc, _) in speakers {
        pair.bridge.add_send_ssrc(Ssrc::new(ssrc)).unwrap();
    }
    for (ssrc, _) in &speakers[..3] {
        pair.gateway.add_receive_ssrc(Ssrc::new(*ssrc)).unwrap();
    }
    pair.connect();
    assert!(pair.gateway_events.contains(&LegEvent::Connected));
    assert!(pair.bridge_events.contains(&LegEvent::Connected));

    for frame in 0..50u32 {
        let now = pair.now;
        for (ssrc, level) in speakers {
            let payload = vec![u8::try_from(ssrc).unwrap(); 40];
            assert!(
                pair.bridge
                    .send_audio(now, Ssrc::new(ssrc), frame * 960, &payload, level, true)
                    .unwrap()
            );
        }
        let payload = [0xAB; 30];
        assert!(
            pair.gateway
                .send_audio(now, gateway_ssrc, frame * 960, &payload, 60, false)
                .unwrap()
        );
        pair.drain();
        pair.step(Duration::from_millis(20));
    }
    for _ in 0..20 {
        pair.step(Duration::from_millis(20));
    }

    let audio = pair.gateway_audio();
    assert_eq!(
        audio.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3],
        "SSRC 4 was never signalled"
    );
    for (ssrc, level) in &speakers[..3] {
        let packets = &audio[ssrc];
        assert_eq!(packets.len(), 50, "SSRC {ssrc}");
        assert!(
            packets
                .iter()
                .all(|p| p.level == Some(*level) && p.voice == Some(true))
        );
        assert!(
            packets
                .iter()
                .all(|p| p.payload.iter().all(|b| u32::from(*b) == *ssrc))
        );
        // Consecutive sequence numbers and 20 ms of 48 kHz per packet.
        for pair in packets.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq + 1);
            assert_eq!(pair[1].rtp_time.wrapping_sub(pair[0].rtp_time), 960);
        }
    }
    let heard: Vec<_> = pair
        .bridge_events
        .iter()
        .filter_map(|e| match e {
            LegEvent::Audio(p) => Some(p),
            LegEvent::Connected | LegEvent::Disconnected | LegEvent::SourceActivity { .. } => None,
        })
        .collect();
    assert_eq!(heard.len(), 50);
    assert!(
        heard
            .iter()
            .all(|p| p.ssrc == gateway_ssrc && p.level == Some(60) && p.voice == Some(false))
    );
}

#[test]
fn source_add_and_remove_mid_call() {
    let mut pair = Pair::new();
    for ssrc in [7, 8] {
        pair.bridge.add_send_ssrc(Ssrc::new(ssrc)).unwrap();
    }
    pair.gateway.add_receive_ssrc(Ssrc::new(7)).unwrap();
    pair.connect();
    for frame in 0..40u32 {
        if frame == 10 {
            pair.gateway.add_receive_ssrc(Ssrc::new(8)).unwrap();
        }
        if frame == 30 {
            pair.gateway.remove_receive_ssrc(Ssrc::new(7));
        }
        let now = pair.now;
        for ssrc in [7, 8] {
            pair.bridge
                .send_audio(now, Ssrc::new(ssrc), frame * 960, &[1, 2, 3], 50, true)
                .unwrap();
        }
        pair.step(Duration::from_millis(20));
    }
    for _ in 0..10 {
        pair.step(Duration::from_millis(20));
    }
    let audio = pair.gateway_audio();
    let count = |ssrc: u32| audio.get(&ssrc).map_or(0, Vec::len);
    assert!((29..=31).contains(&count(7)), "SSRC 7: {}", count(7));
    assert!((29..=31).contains(&count(8)), "SSRC 8: {}", count(8));
    assert_eq!(pair.gateway.receive_ssrcs(), &[Ssrc::new(8)]);
}

#[test]
fn lossy_network_still_connects_and_delivers_most_audio() {
    let mut pair = Pair::new();
    pair.drop_every = 20; // 5 % loss toward the gateway, handshake included
    pair.bridge.add_send_ssrc(Ssrc::new(9)).unwrap();
    pair.gateway.add_receive_ssrc(Ssrc::new(9)).unwrap();
    pair.connect();
    for frame in 0..100u32 {
        let now = pair.now;
        pair.bridge
            .send_audio(now, Ssrc::new(9), frame * 960, &[9; 20], 30, true)
            .unwrap();
        pair.step(Duration::from_millis(20));
    }
    pair.step(Duration::from_millis(100));
    let got = pair.gateway_audio().get(&9).map_or(0, Vec::len);
    assert!(
        (90..=97).contains(&got),
        "received {got} of 100 at 5 % loss"
    );
}

#[test]
fn misuse_and_bad_remote_parameters_are_errors_not_panics() {
    let now = Instant::now();
    let mut leg = MediaLeg::new(
        LegConfig::new(Role::Gateway, vec![GATEWAY_ADDR.parse().unwrap()]),
        now,
    )
    .unwrap();
    assert!(matches!(
        leg.add_receive_ssrc(Ssrc::new(1)),
        Err(LegError::ApiMisuse(_))
    ));
    assert!(matches!(
        leg.add_send_ssrc(Ssrc::new(1)),
        Err(LegError::ApiMisuse(_))
    ));
    let mut bad = RemoteParams {
        ice: IceParams {
            ufrag: "u".into(),
            pwd: "p".repeat(22),
        },
        candidates: Vec::new(),
        fingerprint_hash: "sha-256".into(),
        fingerprint: "not:hex".into(),
    };
    assert!(matches!(leg.start(&bad), Err(LegError::PeerMisbehaved(_))));
    bad.fingerprint = "AB:CD".into();
    leg.start(&bad).unwrap();
    leg.add_send_ssrc(Ssrc::new(5)).unwrap();
    assert!(matches!(
        leg.add_receive_ssrc(Ssrc::new(5)),
        Err(LegError::PeerMisbehaved(_))
    ));
    assert!(matches!(
        leg.send_audio(now, Ssrc::new(6), 0, &[], 0, false),
        Err(LegError::ApiMisuse(_))
    ));
    // Not connected yet: audio is not queued.
    assert!(
        !leg.send_audio(now, Ssrc::new(5), 0, &[1], 0, false)
            .unwrap()
    );
    assert!(MediaLeg::new(LegConfig::new(Role::Gateway, Vec::new()), now).is_err());
    // Garbage datagrams are ignored.
    for garbage in [
        &[][..],
        &[0u8; 3][..],
        &[0x80; 200][..],
        &[0x16, 0xfe, 0xfd, 0, 0][..],
    ] {
        leg.handle_receive(
            now,
            BRIDGE_ADDR.parse().unwrap(),
            GATEWAY_ADDR.parse().unwrap(),
            garbage,
        )
        .unwrap();
    }
}

#[test]
fn gateway_is_ice_controlled_and_dtls_client() {
    let mut pair = Pair::new();
    // Collect the first STUN requests of each side before they are delivered.
    let mut stun: BTreeMap<bool, Vec<u8>> = BTreeMap::new();
    for _ in 0..200 {
        pair.drain();
        for (_, to_gateway, t) in &pair.in_flight {
            if t.contents.first().is_some_and(|b| *b < 2) {
                stun.entry(*to_gateway)
                    .or_insert_with(|| t.contents.clone());
            }
        }
        if stun.len() == 2 {
            break;
        }
        pair.step(Duration::from_millis(1));
    }
    // The gateway's first STUN checks carry ICE-CONTROLLED (0x8029), the bridge's ICE-CONTROLLING
    // (0x802A).
    let has_attr = |msg: &[u8], attr: u16| {
        let mut i = 20;
        while i + 4 <= msg.len() {
            let kind = u16::from_be_bytes([msg[i], msg[i + 1]]);
            let len = usize::from(u16::from_be_bytes([msg[i + 2], msg[i + 3]]));
            if kind == attr {
                return true;
            }
            i += 4 + len.div_ceil(4) * 4;
        }
        false
    };
    let from_gateway = stun[&false].clone();
    let from_bridge = stun[&true].clone();
    assert!(
        has_attr(&from_gateway, 0x8029),
        "gateway must be ICE-controlled"
    );
    assert!(
        has_attr(&from_bridge, 0x802A),
        "bridge must be ICE-controlling"
    );
    pair.connect();
}

#[test]
fn stats_measure_loss_jitter_and_round_trip_time() {
    let mut pair = Pair::new();
    pair.drop_every = 20; // 5 % loss toward the gateway, RTCP included
    let gateway_ssrc = Ssrc::new(0x5555);
    pair.gateway.add_send_ssrc(gateway_ssrc).unwrap();
    pair.bridge.add_receive_ssrc(gateway_ssrc).unwrap();
    pair.bridge.add_send_ssrc(Ssrc::new(9)).unwrap();
    pair.gateway.add_receive_ssrc(Ssrc::new(9)).unwrap();
    assert_eq!(pair.gateway.stats(), LegStats::default());
    pair.connect();
    for frame in 0..500u32 {
        let now = pair.now;
        pair.bridge
            .send_audio(now, Ssrc::new(9), frame * 960, &[9; 20], 30, true)
            .unwrap();
        pair.gateway
            .send_audio(now, gateway_ssrc, frame * 960, &[7; 20], 30, true)
            .unwrap();
        pair.step(Duration::from_millis(20));
    }
    let stats = pair.gateway.stats();
    // A datagram is delivered on the first 20 ms step after it was sent, and so is the answer:
    // the virtual network's round trip is 40 ms.
    let rtt = stats.rtt.expect("an RTT after 10 s");
    assert!(
        rtt >= Duration::from_millis(20) && rtt <= Duration::from_millis(60),
        "{rtt:?}"
    );
    let loss = stats.inbound_loss.expect("inbound loss measured");
    assert!((0.01..=0.12).contains(&loss), "{loss}");
    assert!(
        stats.outbound_loss.unwrap_or(0.0) < 0.01,
        "nothing is lost toward the bridge: {stats:?}"
    );
    // Packets leave on a 20 ms grid and arrive on the 20 ms steps: hardly any jitter.
    assert!(
        stats.inbound_jitter.expect("inbound jitter") < Duration::from_millis(5),
        "{stats:?}"
    );
    assert!(stats.outbound_jitter.is_some(), "{stats:?}");
    assert!(
        stats.packets_received > 400 && stats.packets_sent >= 450,
        "{stats:?}"
    );
}
