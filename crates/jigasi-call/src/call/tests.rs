//! Whole dial-in calls on a virtual clock: a simulated phone sending PCMU RTP, the call, and a
//! simulated bridge (a real str0m endpoint in the bridge role, Opus), with a scripted focus.
//! Audio is checked by frequency and level at each far end (issue 5's simulation tests).

// Tests take one real instant as the base of their virtual clock.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use jigasi_bridge::{LegConfig, LegEvent, LegOutput, MediaLeg, Role};
use jigasi_jingle::jingle::Jingle;
use jigasi_media::codec::{OpusDecoder, OpusEncoder, OpusEncoderConfig};
use jigasi_media::g711;
use jigasi_media::{AudioDecoder, AudioEncoder, SampleRate};

use super::*;
use crate::Room;

const ROOM: &str = "room1@conference.meet.example.com";
const FOCUS: &str = "room1@conference.meet.example.com/focus";
const OUR_JID: &str = "b2f6a3c0@meet.example.com/d3adb33f";
const PHONE: &str = "192.0.2.10:4000";
const GATEWAY_PHONE_RTP: &str = "10.0.0.2:30000";
const GATEWAY_BRIDGE: &str = "10.0.0.2:20000";
const BRIDGE: &str = "10.0.0.1:10000";
const EXAMPLE_5_RAW: &str =
    include_str!("../../../jigasi-jingle/testdata/s4.2-example-5-session-initiate.xml");

const PCMU_OFFER: &str = "v=0\r\no=phone 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n\
t=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\na=sendrecv\r\n";

fn config() -> CallConfig {
    seat_config(&Seat::default())
}

/// Where one call of a test sits: its id, nick and addresses (several calls share a room).
#[derive(Debug, Clone)]
pub(crate) struct Seat {
    pub(crate) id: u64,
    pub(crate) nick: String,
    pub(crate) gateway_bridge: SocketAddr,
    pub(crate) gateway_phone: SocketAddr,
    pub(crate) phone: SocketAddr,
    /// Our SSRC toward the bridge.
    pub(crate) ssrc: u32,
}

impl Default for Seat {
    fn default() -> Self {
        Self {
            id: 1,
            nick: "d3adb33f".into(),
            gateway_bridge: GATEWAY_BRIDGE.parse().unwrap(),
            gateway_phone: GATEWAY_PHONE_RTP.parse().unwrap(),
            phone: PHONE.parse().unwrap(),
            ssrc: 0x0bad_cafe,
        }
    }
}

impl Seat {
    /// The `n`-th seat of a room (n ≥ 1; seat 1 is the default one).
    pub(crate) fn nth(n: u16) -> Self {
        Self {
            id: u64::from(n),
            nick: format!("{:08x}", 0xd3ad_b33f_u32 + u32::from(n) - 1),
            gateway_bridge: SocketAddr::new([10, 0, 0, 2].into(), 20_000 + n - 1),
            gateway_phone: SocketAddr::new([10, 0, 0, 2].into(), 30_000 + 2 * (n - 1)),
            phone: SocketAddr::new([192, 0, 2, 10].into(), 4000 + 2 * (n - 1)),
            ssrc: 0x0bad_cafe + u32::from(n) - 1,
        }
    }
}

fn seat_config(seat: &Seat) -> CallConfig {
    CallConfig {
        id: CallId::new(seat.id),
        conference: ConferenceConfig {
            room: jid::BareJid::new(ROOM).unwrap(),
            nick: seat.nick.clone(),
            password: None,
            focus_component: "focus.meet.example.com".into(),
            focus_nick: "focus".into(),
            display_name: Some("phone".into()),
            region: None,
            version: None,
            stats_id: None,
            initiator_headers: Vec::new(),
            machine_uid: "m".into(),
            invite_timeout: Some(Duration::from_secs(30)),
            media_addrs: vec![seat.gateway_bridge],
            ssrc: Ssrc::new(seat.ssrc),
            msid_uuid: "uuid".into(),
        },
        phone_rtp: seat.gateway_phone,
        codecs: jigasi_sip_core::sdp::jigasi_default_codecs(),
        srtp: SrtpPolicy::Off,
        sdes_key: None,
        sdes_suites: vec![
            SdesSuite::AesCm128HmacSha1_80,
            SdesSuite::AesCm128HmacSha1_32,
        ],
        phone_ssrc: Ssrc::new(0x1234_5677 + u32::try_from(seat.id).unwrap()),
        sdp_session_id: 42,
        first_sequence: 100,
        first_timestamp: 1000,
        dtmf_method: DtmfToPhone::Auto,
        dtmf_minimal_tone: Duration::from_millis(70),
        media_dropped_threshold: Some(Duration::from_secs(10)),
        hangup_on_media_dropped: false,
        wall_clock: WallClock {
            at: Instant::now(),
            since_unix_epoch: Duration::from_secs(1_795_323_967),
        },
        rtcp_seed: 7,
    }
}

fn parse(xml: &str) -> Element {
    xml.parse().unwrap()
}

fn sine(freq: f64, amplitude: f64, rate: u32, start: usize, len: usize) -> Vec<i16> {
    (start..start + len)
        .map(|n| {
            let t = n as f64 / f64::from(rate);
            (amplitude * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
        })
        .collect()
}

/// Power of `freq` relative to the signal's total power (Goertzel).
fn tone_share(pcm: &[i16], rate: u32, freq: f64) -> f64 {
    let n = pcm.len() as f64;
    let k = (0.5 + n * freq / f64::from(rate)).floor();
    let w = 2.0 * std::f64::consts::PI * k / n;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in pcm {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let total: f64 = pcm.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    if total == 0.0 {
        return 0.0;
    }
    2.0 * power / (n * total)
}

/// The median [`tone_share`] over 100 ms windows: robust to the phase jumps a lost packet (or
/// a gap in what the test decodes) leaves behind.
fn windowed_share(pcm: &[i16], rate: u32, freq: f64) -> f64 {
    let window = usize::try_from(rate / 10).unwrap();
    let mut shares: Vec<f64> = pcm
        .chunks_exact(window)
        .map(|w| tone_share(w, rate, freq))
        .collect();
    if shares.is_empty() {
        return 0.0;
    }
    shares.sort_by(f64::total_cmp);
    shares[shares.len() / 2]
}

fn rms(pcm: &[i16]) -> f64 {
    (pcm.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        / pcm.len().max(1) as f64)
        .sqrt()
}

/// The calls of several worlds in one [`Room`], and the outputs drained for each.
pub(crate) struct Shared {
    pub(crate) room: Room,
    outbox: BTreeMap<u64, std::collections::VecDeque<CallOutput>>,
}

impl Shared {
    pub(crate) fn new() -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(Self {
            room: Room::new(),
            outbox: BTreeMap::new(),
        }))
    }
}

/// The world around one call.
struct World {
    now: Instant,
    /// The call, unless it is in `room` (then an unused stand-in: drive it with
    /// [`World::input`]).
    call: Call,
    seat: Seat,
    room: Option<Rc<RefCell<Shared>>>,
    bridge: MediaLeg,
    focus_offer_sent: bool,
    sip: Vec<SipCommand>,
    events: Vec<CallEvent>,
    to_phone: Vec<Vec<u8>>,
    /// RTCP toward the phone: when, from which socket, where to, what.
    to_phone_rtcp: Vec<(Instant, MediaSocket, SocketAddr, Vec<u8>)>,
    to_bridge: Vec<(SocketAddr, Vec<u8>)>,
    to_gateway_bridge: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    bridge_heard: BTreeMap<u32, Vec<Vec<u8>>>,
    /// Telephone events (payload type 126) the bridge received: (SSRC, RTP time, event).
    bridge_events: Vec<(u32, u32, jigasi_media::TelephoneEvent)>,
    xmpp: Vec<Element>,
    /// Drop every n-th packet in each media direction (0 = none).
    drop_every: usize,
    /// Extra delay for every other packet toward the gateway, to make jitter.
    jitter: Duration,
    delayed: Vec<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
    counter: usize,
    dial_out: bool,
}

impl World {
    fn new() -> Self {
        Self::seated(Instant::now(), Seat::default())
    }

    /// A dial-in call in `seat`, its clock at `now`.
    fn seated(now: Instant, seat: Seat) -> Self {
        let offer = PCMU_OFFER
            .replace("192.0.2.10", &seat.phone.ip().to_string())
            .replace("m=audio 4000", &format!("m=audio {}", seat.phone.port()));
        let call = Call::dial_in(seat_config(&seat), offer.as_bytes()).unwrap();
        let bridge = MediaLeg::new(
            LegConfig::new(Role::Bridge, vec![BRIDGE.parse().unwrap()]),
            now,
        )
        .unwrap();
        Self {
            now,
            call,
            seat,
            room: None,
            bridge,
            focus_offer_sent: false,
            sip: Vec::new(),
            events: Vec::new(),
            to_phone: Vec::new(),
            to_phone_rtcp: Vec::new(),
            to_bridge: Vec::new(),
            to_gateway_bridge: Vec::new(),
            bridge_heard: BTreeMap::new(),
            bridge_events: Vec::new(),
            xmpp: Vec::new(),
            drop_every: 0,
            jitter: Duration::ZERO,
            delayed: Vec::new(),
            counter: 0,
            dial_out: false,
        }
    }

    fn new_dial_out() -> Self {
        Self::seated_dial_out(Instant::now(), Seat::default())
    }

    /// A dial-out call in `seat`, its clock at `now`.
    fn seated_dial_out(now: Instant, seat: Seat) -> Self {
        let mut world = Self::seated(now, seat);
        world.call = Call::dial_out(
            seat_config(&world.seat),
            "sip:+15551234@192.0.2.10".into(),
            vec![
                ("Jitsi-Conference-Room".into(), ROOM.into()),
                ("JigasiCallDirection".into(), "out".into()),
            ],
        )
        .unwrap();
        world.dial_out = true;
        world
    }

    /// Moves the call into `shared`'s room (its phone moves into the room's engine).
    fn join_room(&mut self, shared: &Rc<RefCell<Shared>>) {
        let stand_in = Call::dial_in(config(), PCMU_OFFER.as_bytes()).unwrap();
        let call = std::mem::replace(&mut self.call, stand_in);
        shared.borrow_mut().room.add_call(call).unwrap();
        self.room = Some(shared.clone());
    }

    fn id(&self) -> CallId {
        CallId::new(self.seat.id)
    }

    /// One input to the call, on its own or through its room.
    fn input<R>(&mut self, f: impl FnOnce(&mut Call) -> R) -> R {
        let id = self.id();
        match &self.room {
            Some(shared) => shared.borrow_mut().room.with_call(id, f).unwrap(),
            None => f(&mut self.call),
        }
    }

    fn timeout(&mut self, now: Instant) {
        match &self.room {
            Some(shared) => shared.borrow_mut().room.handle_timeout(now),
            None => self.input(|call| call.handle_timeout(now)),
        }
    }

    /// The call's next output; in a room, the room's outputs are sorted by call first.
    fn next_output(&mut self) -> CallOutput {
        let id = self.seat.id;
        let Some(shared) = &self.room else {
            return self.call.poll_output();
        };
        let mut shared = shared.borrow_mut();
        while let Some((call, output)) = shared.room.poll_output() {
            shared
                .outbox
                .entry(call.get())
                .or_default()
                .push_back(output);
        }
        shared
            .outbox
            .get_mut(&id)
            .and_then(|queue| queue.pop_front())
            .unwrap_or(CallOutput::Idle)
    }

    fn drain_call(&mut self) {
        loop {
            match self.next_output() {
                CallOutput::Sip(command) => self.sip.push(command),
                CallOutput::Xmpp(stanza) => self.xmpp.push(stanza),
                CallOutput::Transmit {
                    socket: socket @ (MediaSocket::Phone | MediaSocket::PhoneRtcp),
                    destination,
                    contents,
                } if jigasi_media::rtcp::is_rtcp(&contents) => {
                    self.to_phone_rtcp
                        .push((self.now, socket, destination, contents));
                }
                CallOutput::Transmit {
                    socket: MediaSocket::Phone | MediaSocket::PhoneRtcp,
                    contents,
                    ..
                } => {
                    self.to_phone.push(contents);
                }
                CallOutput::Transmit {
                    socket: MediaSocket::Bridge,
                    destination,
                    contents,
                } => {
                    self.to_bridge.push((destination, contents));
                }
                CallOutput::Event(event) => self.events.push(event),
                CallOutput::Timeout(_) | CallOutput::Idle => return,
            }
        }
    }

    fn drain_bridge(&mut self) {
        loop {
            match self.bridge.poll_output().unwrap() {
                LegOutput::Transmit(t) => {
                    self.to_gateway_bridge
                        .push((t.source, t.destination, t.contents))
                }
                LegOutput::Event(LegEvent::Audio(p)) if p.payload_type == 126 => {
                    let event = jigasi_media::TelephoneEvent::parse(&p.payload).unwrap();
                    self.bridge_events.push((p.ssrc.get(), p.rtp_time, event));
                }
                LegOutput::Event(LegEvent::Audio(p)) => {
                    self.bridge_heard
                        .entry(p.ssrc.get())
                        .or_default()
                        .push(p.payload.to_vec());
                }
                LegOutput::Event(_) => {}
                LegOutput::Timeout(_) => return,
            }
        }
    }

    fn lose(&mut self) -> bool {
        self.counter += 1;
        self.drop_every > 0 && self.counter.is_multiple_of(self.drop_every)
    }

    /// Delivers queued datagrams (with loss and jitter) and runs timers.
    fn step(&mut self, step: Duration) {
        self.now += step;
        let now = self.now;
        self.timeout(now);
        self.bridge.handle_timeout(now).unwrap();
        self.drain_call();
        self.drain_bridge();
        for _ in 0..6 {
            for (destination, contents) in std::mem::take(&mut self.to_bridge) {
                if contents.first().is_some_and(|b| (128..192).contains(b)) && self.lose() {
                    continue;
                }
                self.bridge
                    .handle_receive(now, self.seat.gateway_bridge, destination, &contents)
                    .unwrap();
                self.drain_bridge();
            }
            for (source, destination, contents) in std::mem::take(&mut self.to_gateway_bridge) {
                let is_rtp = contents.first().is_some_and(|b| (128..192).contains(b));
                if is_rtp && self.lose() {
                    continue;
                }
                if is_rtp && !self.jitter.is_zero() && self.counter.is_multiple_of(2) {
                    self.delayed
                        .push((now + self.jitter, source, destination, contents));
                    continue;
                }
                self.input(|call| {
                    call.handle_datagram(now, MediaSocket::Bridge, source, destination, &contents)
                });
                self.drain_call();
            }
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|(at, ..)| *at <= now);
        self.delayed = later;
        for (_, source, destination, contents) in due {
            self.input(|call| {
                call.handle_datagram(now, MediaSocket::Bridge, source, destination, &contents)
            });
            self.drain_call();
        }
    }

    /// The focus side: online, conference IQ, join, then a session-initiate built from the
    /// bridge's real credentials announcing `speakers`.
    fn join_and_invite(&mut self, speakers: &[u32]) {
        let now = self.now;
        let nick = self.seat.nick.clone();
        let jid = Jid::new(&OUR_JID.replace("d3adb33f", &nick)).unwrap();
        self.input(|call| call.handle_xmpp_online(now, jid));
        self.drain_call();
        let id = self.xmpp.last().unwrap().attr("id").unwrap().to_owned();
        self.input(|call| call.handle_xmpp_stanza(
            now,
            &parse(&format!(
                "<iq xmlns='jabber:client' type='result' id='{id}' from='focus.meet.example.com'>\
                 <conference xmlns='http://jitsi.org/protocol/focus' room='{ROOM}' ready='true'/></iq>"
            )),
        ));
        self.input(|call| call.handle_xmpp_stanza(
            now,
            &parse(&format!(
                "<presence xmlns='jabber:client' from='{ROOM}/{nick}'>\
                 <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>\
                 <status code='110'/></x></presence>"
            )),
        ));
        self.drain_call();
        assert!(self.events.contains(&CallEvent::Joined));
        assert!(
            self.sip.is_empty(),
            "not answered before the offer: {:?}",
            self.sip
        );

        let ice = self.bridge.local_ice();
        let (_, fingerprint) = self.bridge.local_fingerprint();
        let mut xml = EXAMPLE_5_RAW
            .replacen("<iq ", "<iq xmlns=\"jabber:client\" ", 1)
            .replace("b1e2a3o4i5u6", &ice.ufrag)
            .replace("6q8m2v0k4c7p1s9d3f5h7j2l4n", &ice.pwd)
            .replace(
                "2B:6E:0F:85:C3:4A:7D:91:E2:5F:08:B6:3C:D4:19:77:A0:5E:C2:8F:31:64:DA:0B:9E:47:F3:12:6C:88:A5:D0",
                &fingerprint,
            );
        let start = xml.find("<candidate").unwrap();
        let end = xml.find("</transport>").unwrap();
        xml.replace_range(
            start..end,
            "<candidate component=\"1\" foundation=\"1\" generation=\"0\" network=\"0\" \
             priority=\"2130706431\" protocol=\"udp\" type=\"host\" ip=\"10.0.0.1\" port=\"10000\"/>",
        );
        let start = xml
            .find("<source xmlns=\"urn:xmpp:jingle:apps:rtp:ssma:0\" ssrc=\"1057249811\"")
            .unwrap();
        let end = start + xml[start..].find("</source>").unwrap() + "</source>".len();
        let sources: String = speakers
            .iter()
            .map(|s| {
                format!(
                    "<source xmlns=\"urn:xmpp:jingle:apps:rtp:ssma:0\" ssrc=\"{s}\" name=\"w{s}-a0\">\
                     <ssrc-info xmlns=\"http://jitsi.org/jitmeet\" owner=\"{ROOM}/w{s}\"/></source>"
                )
            })
            .collect();
        xml.replace_range(start..end, &sources);
        let sent_before = self.xmpp.len();
        self.input(|call| call.handle_xmpp_stanza(now, &parse(&xml)));
        self.drain_call();
        self.focus_offer_sent = true;
        let accept = self.xmpp[sent_before..]
            .iter()
            .find(|s| {
                s.attr("to") == Some(FOCUS)
                    && s.get_child("jingle", jigasi_jingle::ns::JINGLE).is_some()
            })
            .unwrap()
            .clone();
        let answer = Jingle::parse(
            accept
                .get_child("jingle", jigasi_jingle::ns::JINGLE)
                .unwrap(),
        )
        .unwrap();
        let transport = answer.first_transport().unwrap();
        let mut remote = crate::conference::remote_params(transport).unwrap();
        // Our answer carries host candidates of the socket the gateway really uses.
        assert!(
            remote
                .candidates
                .iter()
                .any(|c| c.addr == self.seat.gateway_bridge)
        );
        remote
            .candidates
            .retain(|c| c.addr == self.seat.gateway_bridge);
        self.bridge.start(&remote).unwrap();
        for s in speakers {
            self.bridge.add_send_ssrc(Ssrc::new(*s)).unwrap();
        }
        self.bridge
            .add_receive_ssrc(Ssrc::new(self.seat.ssrc))
            .unwrap();
        if self.dial_out {
            assert!(
                matches!(self.sip.as_slice(), [SipCommand::Invite { .. }]),
                "the INVITE goes out once the offer was accepted: {:?}",
                self.sip
            );
        } else {
            assert!(
                matches!(self.sip.as_slice(), [SipCommand::Answer { .. }]),
                "200 OK only after the offer was accepted: {:?}",
                self.sip
            );
        }
        for _ in 0..400 {
            self.step(Duration::from_millis(5));
            if self.events.contains(&CallEvent::MediaConnected) && self.bridge.is_connected() {
                return;
            }
        }
        panic!("media never connected");
    }
}

/// Runs `seconds` of audio: the phone sends a PCMU tone, each speaker an Opus tone.
fn talk(world: &mut World, seconds: u32, phone_hz: f64, speakers: &[(u32, f64)]) {
    talk_together(&mut [world], seconds, &[phone_hz], speakers);
}

/// [`talk`] for several calls at once (a room): phone `i` sends `phone_hz[i]`, and every call's
/// bridge leg carries every speaker (as the bridge sends each speaker to every participant).
fn talk_together(
    worlds: &mut [&mut World],
    seconds: u32,
    phone_hz: &[f64],
    speakers: &[(u32, f64)],
) {
    let mut opus: Vec<Vec<(u32, f64, OpusEncoder)>> = worlds
        .iter()
        .map(|_| {
            speakers
                .iter()
                .map(|(ssrc, hz)| {
                    (
                        *ssrc,
                        *hz,
                        OpusEncoder::new(
                            SampleRate::Hz48000,
                            &OpusEncoderConfig::for_rate(SampleRate::Hz48000),
                        )
                        .unwrap(),
                    )
                })
                .collect()
        })
        .collect();
    let frames = seconds * 50;
    for frame in 0..frames {
        for ((world, phone_hz), opus) in worlds.iter_mut().zip(phone_hz).zip(&mut opus) {
            let now = world.now;
            let (phone_source, gateway_phone) = (world.seat.phone, world.seat.gateway_phone);
            // Phone → gateway: one PCMU RTP packet.
            let pcm = sine(*phone_hz, 8000.0, 8000, frame as usize * 160, 160);
            let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
            packet[2..4].copy_from_slice(&u16::try_from(frame % 65_536).unwrap().to_be_bytes());
            packet[4..8].copy_from_slice(&(frame * 160).to_be_bytes());
            packet.extend(pcm.iter().map(|&s| g711::linear_to_ulaw(s)));
            if !(world.drop_every > 0 && frame as usize % world.drop_every == 3) {
                world.input(|call| {
                    call.handle_datagram(
                        now,
                        MediaSocket::Phone,
                        phone_source,
                        gateway_phone,
                        &packet,
                    )
                });
            }
            // Bridge → gateway: one Opus frame per speaker.
            for (ssrc, hz, encoder) in opus.iter_mut() {
                let pcm = sine(*hz, 6000.0, 48_000, frame as usize * 960, 960);
                let mut out = [0u8; 1500];
                let len = encoder.encode(&pcm, &mut out).unwrap();
                world
                    .bridge
                    .send_audio(now, Ssrc::new(*ssrc), frame * 960, &out[..len], 20, true)
                    .unwrap();
            }
            world.drain_bridge();
        }
        step_together(worlds, 1);
    }
    step_together(worlds, 10);
}

/// Runs every world `frames` × 20 ms, in step.
fn step_together(worlds: &mut [&mut World], frames: u32) {
    for _ in 0..frames {
        for world in worlds.iter_mut() {
            world.step(Duration::from_millis(20));
        }
    }
}

/// Brings the worlds' clocks to the latest of them (calls of one room share a clock).
fn sync_clocks(worlds: &mut [&mut World]) {
    let Some(t) = worlds.iter().map(|w| w.now).max() else {
        return;
    };
    for world in worlds.iter_mut() {
        let behind = t - world.now;
        world.step(behind);
    }
}

/// Decodes what the phone received (PCMU RTP) into 8 kHz PCM, skipping the first `skip` packets.
fn phone_heard(world: &World, skip: usize) -> Vec<i16> {
    world.to_phone[skip.min(world.to_phone.len())..]
        .iter()
        .filter(|p| p.len() > 12 && p[1] & 0x7f == 0)
        .flat_map(|p| {
            p[12..]
                .iter()
                .map(|&b| g711::ulaw_to_linear(b))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Decodes what the bridge received from the gateway (Opus) into 48 kHz PCM.
fn bridge_heard(world: &World, skip: usize) -> Vec<i16> {
    let mut decoder = OpusDecoder::new(SampleRate::Hz48000).unwrap();
    let packets = world
        .bridge_heard
        .get(&world.seat.ssrc)
        .cloned()
        .unwrap_or_default();
    let mut pcm = Vec::new();
    for payload in packets.iter().skip(skip) {
        let mut frame = [0i16; 960];
        decoder.decode(payload, &mut frame).unwrap();
        pcm.extend_from_slice(&frame);
    }
    pcm
}

#[test]
fn tone_440_up_and_1000_down_through_a_dial_in_call() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    talk(&mut world, 3, 440.0, &[(1001, 1000.0)]);

    // Phone → conference: 440 Hz at the bridge.
    let up = bridge_heard(&world, 25);
    assert!(up.len() >= 48_000, "bridge got {} samples", up.len());
    let share = windowed_share(&up, 48_000, 440.0);
    assert!(share > 0.9, "440 Hz share at the bridge {share:.3}");
    assert!(rms(&up) > 2000.0, "level at the bridge {:.0}", rms(&up));

    // Conference → phone: 1 kHz at the phone.
    let down = phone_heard(&world, 25);
    assert!(down.len() >= 8000, "phone got {} samples", down.len());
    let share = windowed_share(&down, 8000, 1000.0);
    assert!(share > 0.9, "1 kHz share at the phone {share:.3}");
    assert!(rms(&down) > 2000.0, "level at the phone {:.0}", rms(&down));
}

#[test]
fn room_occupants_are_reported_for_the_brewery_participants_count() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    let occupants = |world: &World| -> Vec<usize> {
        world
            .events
            .iter()
            .filter_map(|e| {
                if let CallEvent::Occupants { others } = e {
                    Some(*others)
                } else {
                    None
                }
            })
            .collect()
    };
    // Reported with the join (nobody else yet in this scripted room).
    assert_eq!(occupants(&world), vec![0]);
    let now = world.now;
    let presence = |kind: &str| {
        parse(&format!(
            "<presence xmlns='jabber:client' from='{ROOM}/web1'{kind}>\
             <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>"
        ))
    };
    world.call.handle_xmpp_stanza(now, &presence(""));
    world.drain_call();
    world
        .call
        .handle_xmpp_stanza(now, &presence(" type='unavailable'"));
    world.drain_call();
    assert_eq!(occupants(&world), vec![0, 1, 0]);
}

#[test]
fn three_remote_speakers_are_mixed_and_each_audible() {
    let mut world = World::new();
    world.join_and_invite(&[1001, 1002, 1003]);
    talk(
        &mut world,
        3,
        440.0,
        &[(1001, 600.0), (1002, 1100.0), (1003, 1700.0)],
    );
    let down = phone_heard(&world, 25);
    for hz in [600.0, 1100.0, 1700.0] {
        let share = windowed_share(&down, 8000, hz);
        assert!(share > 0.15, "{hz} Hz share {share:.3} in the mix");
    }
    // The phone never hears itself.
    assert!(windowed_share(&down, 8000, 440.0) < 0.02);
}

#[test]
fn loss_and_jitter_still_carry_both_tones() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    world.drop_every = 20; // 5 % loss on every media path
    world.jitter = Duration::from_millis(30);
    talk(&mut world, 4, 440.0, &[(1001, 1000.0)]);
    let up = bridge_heard(&world, 25);
    let down = phone_heard(&world, 25);
    let up_share = windowed_share(&up, 48_000, 440.0);
    let down_share = windowed_share(&down, 8000, 1000.0);
    assert!(
        up_share > 0.6,
        "440 Hz share at the bridge {up_share:.3} with loss and jitter"
    );
    assert!(
        down_share > 0.6,
        "1 kHz share at the phone {down_share:.3} with loss and jitter"
    );
}

#[test]
fn phone_hangup_terminates_the_conference_side() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    let before = world.xmpp.len();
    world
        .call
        .handle_sip(world.now, SipInput::RemoteHangup { reason: None });
    world.drain_call();
    let sent: Vec<String> = world.xmpp[before..]
        .iter()
        .map(|s| jigasi_xmpp::to_xml_string(s).unwrap())
        .collect();
    assert!(
        sent.iter().any(|s| s.contains("session-terminate")),
        "{sent:?}"
    );
    assert!(sent.iter().any(|s| s.contains("unavailable")), "{sent:?}");
    assert!(matches!(world.events.last(), Some(CallEvent::Ended { .. })));
    assert!(world.call.is_ended());
}

#[test]
fn kick_after_answer_sends_bye_with_a_reason() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    world.sip.clear();
    world.call.handle_xmpp_stanza(
        world.now,
        &parse(&format!(
            "<presence xmlns='jabber:client' from='{ROOM}/d3adb33f' type='unavailable'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/>\
             <status code='307'/><status code='110'/></x></presence>"
        )),
    );
    world.drain_call();
    assert!(
        matches!(world.sip.as_slice(), [SipCommand::Hangup { reason }] if reason.text.contains("Kicked")),
        "{:?}",
        world.sip
    );
}

#[test]
fn no_invite_before_answer_rejects_with_486() {
    let mut world = World::new();
    let now = world.now;
    world
        .call
        .handle_xmpp_online(now, Jid::new(OUR_JID).unwrap());
    world.drain_call();
    let id = world.xmpp.last().unwrap().attr("id").unwrap().to_owned();
    world.call.handle_xmpp_stanza(
        now,
        &parse(&format!(
            "<iq xmlns='jabber:client' type='result' id='{id}' from='focus.meet.example.com'>\
             <conference xmlns='http://jitsi.org/protocol/focus' room='{ROOM}' ready='true'/></iq>"
        )),
    );
    world.call.handle_xmpp_stanza(
        now,
        &parse(&format!(
            "<presence xmlns='jabber:client' from='{ROOM}/d3adb33f'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>\
             <status code='110'/></x></presence>"
        )),
    );
    world.drain_call();
    world.call.handle_timeout(now + Duration::from_secs(30));
    world.drain_call();
    assert_eq!(
        world.sip,
        [SipCommand::Reject {
            status: 486,
            reason: "No invite from conference focus".into()
        }]
    );
}

#[test]
fn codec_mismatch_is_488_and_hold_is_answered() {
    let video_only = "v=0\r\no=p 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let error = Call::dial_in(config(), video_only.as_bytes()).unwrap_err();
    assert_eq!(error.sip_status(), 488);

    let mut world = World::new();
    world.join_and_invite(&[1001]);
    world.sip.clear();
    let hold = PCMU_OFFER
        .replace("a=sendrecv", "a=sendonly")
        .replace("o=phone 1 1", "o=phone 1 2");
    let answer = world.call.answer_re_offer(hold.as_bytes()).unwrap();
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert_eq!(world.call.answer_re_offer(b"garbage"), Err(400));
    // On hold we receive but do not send to the phone.
    world.to_phone.clear();
    talk(&mut world, 1, 440.0, &[(1001, 1000.0)]);
    assert!(
        world.to_phone.is_empty(),
        "sent {} packets to a phone on hold",
        world.to_phone.len()
    );
}

const PCMU_ANSWER: &str = "v=0\r\no=phone 2 2 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n\
t=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";

fn statuses(world: &World) -> Vec<String> {
    world
        .xmpp
        .iter()
        .filter(|s| s.name() == "presence")
        .filter_map(|s| s.get_child("status", "jabber:client").map(Element::text))
        .collect()
}

#[test]
fn dial_out_joins_first_then_invites_and_bridges_audio() {
    let mut world = World::new_dial_out();
    world.join_and_invite(&[1001]);
    match world.sip.as_slice() {
        [
            SipCommand::Invite {
                request_uri,
                headers,
                sdp,
            },
        ] => {
            assert_eq!(request_uri, "sip:+15551234@192.0.2.10");
            assert_eq!(
                headers[0],
                ("Jitsi-Conference-Room".to_owned(), ROOM.to_owned())
            );
            assert!(sdp.contains("m=audio 30000 RTP/AVP"), "{sdp}");
        }
        other => panic!("{other:?}"),
    }
    world
        .call
        .handle_sip(world.now, SipInput::Provisional { status: 180 });
    world.call.handle_sip(
        world.now,
        SipInput::Answered {
            sdp: PCMU_ANSWER.as_bytes().to_vec(),
        },
    );
    world.drain_call();
    assert!(world.events.contains(&CallEvent::Answered));
    let shown = statuses(&world);
    assert!(
        shown.ends_with(&[
            "Calling".to_owned(),
            "Ringing".to_owned(),
            "Connected".to_owned()
        ]),
        "{shown:?}"
    );
    talk(&mut world, 3, 440.0, &[(1001, 1000.0)]);
    let up = bridge_heard(&world, 25);
    let down = phone_heard(&world, 25);
    assert!(windowed_share(&up, 48_000, 440.0) > 0.9);
    assert!(windowed_share(&down, 8000, 1000.0) > 0.9);
}

#[test]
fn busy_dial_out_shows_busy_then_leaves() {
    let mut world = World::new_dial_out();
    world.join_and_invite(&[1001]);
    world.call.handle_sip(
        world.now,
        SipInput::Failed {
            status: 486,
            reason: "Busy Here".into(),
        },
    );
    world.drain_call();
    assert_eq!(statuses(&world).last().map(String::as_str), Some("Busy"));
    assert!(
        !world.call.is_ended(),
        "the reason stays visible for a while"
    );
    let leave_at = world.now + Duration::from_secs(5);
    world.call.handle_timeout(leave_at);
    world.drain_call();
    assert!(world.call.is_ended());
    assert!(
        world
            .xmpp
            .iter()
            .any(|s| s.attr("type") == Some("unavailable"))
    );
}

#[test]
fn conference_ending_before_the_answer_cancels_the_invite() {
    let mut world = World::new_dial_out();
    world.join_and_invite(&[1001]);
    world.sip.clear();
    world.call.handle_xmpp_stanza(
        world.now,
        &parse(&format!(
            "<presence xmlns='jabber:client' from='{ROOM}/d3adb33f' type='unavailable'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/>\
             <destroy/><status code='110'/></x></presence>"
        )),
    );
    world.drain_call();
    assert!(
        matches!(world.sip.as_slice(), [SipCommand::Hangup { .. }]),
        "{:?}",
        world.sip
    );
}

/// A conference participant presses `digit` for 200 ms: RFC 4733 packets at an 8 kHz clock on
/// the speaker's SSRC with payload type 126, as a browser sends them through the bridge.
fn press_in_conference(world: &mut World, ssrc: u32, digit: u8) {
    press_in_conference_together(&mut [world], ssrc, digit);
}

/// Speaker `ssrc` presses `digit` for 200 ms; the bridge sends the events on every call's leg.
fn press_in_conference_together(worlds: &mut [&mut World], ssrc: u32, digit: u8) {
    let start = 480_000;
    for step in 1..=10u16 {
        let event = jigasi_media::TelephoneEvent {
            event: digit,
            end: step == 10,
            volume: 10,
            duration: step * 160,
        };
        // The end packet is sent three times (RFC 4733 §2.5.1.4).
        let copies = if step == 10 { 3 } else { 1 };
        for world in worlds.iter_mut() {
            for _ in 0..copies {
                world
                    .bridge
                    .send_rtp(
                        world.now,
                        Ssrc::new(ssrc),
                        126,
                        start,
                        &event.to_bytes(),
                        127,
                        false,
                    )
                    .unwrap();
            }
            world.drain_bridge();
        }
        step_together(worlds, 1);
    }
    step_together(worlds, 30);
}

/// The phone presses `digit` for 200 ms: RFC 4733 packets (payload type 101 of `PCMU_OFFER`)
/// every 20 ms, the end packet three times, and no audio meanwhile (RFC 4733 §2.5.1.2).
fn press_on_phone(world: &mut World, digit: u8) {
    let phone_source: SocketAddr = PHONE.parse().unwrap();
    let start: u32 = 100 * 160;
    let mut seq: u16 = 100;
    for step in 1..=10u16 {
        let event = jigasi_media::TelephoneEvent {
            event: digit,
            end: step == 10,
            volume: 10,
            duration: step * 160,
        };
        let copies = if step == 10 { 3 } else { 1 };
        for _ in 0..copies {
            let mut packet = vec![0x80, 101, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
            if step == 1 {
                packet[1] |= 0x80;
            }
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            packet[4..8].copy_from_slice(&start.to_be_bytes());
            packet.extend(event.to_bytes());
            seq += 1;
            world.call.handle_datagram(
                world.now,
                MediaSocket::Phone,
                phone_source,
                GATEWAY_PHONE_RTP.parse().unwrap(),
                &packet,
            );
        }
        world.step(Duration::from_millis(20));
        world.drain_bridge();
    }
    for _ in 0..30 {
        world.step(Duration::from_millis(20));
        world.drain_bridge();
    }
}

#[test]
fn dtmf_pressed_on_the_phone_reaches_the_conference_as_rfc4733() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    talk(&mut world, 1, 440.0, &[(1001, 1000.0)]);
    assert!(world.bridge_events.is_empty());

    press_on_phone(&mut world, 7);

    let ours = world
        .bridge_events
        .iter()
        .filter(|(ssrc, ..)| *ssrc != 1001)
        .collect::<Vec<_>>();
    assert!(!ours.is_empty(), "no telephone-event reached the bridge");
    assert!(ours.iter().all(|(_, _, e)| e.event == 7), "{ours:?}");
    // One event: a single RTP time for all its packets, durations growing to the end.
    assert!(ours.iter().all(|(_, t, _)| *t == ours[0].1), "{ours:?}");
    let last = ours.last().unwrap().2;
    assert!(last.end, "the press never ended: {ours:?}");
    assert_eq!(last.duration, 1600, "200 ms at 8 kHz");
    assert_eq!(ours.iter().filter(|(_, _, e)| e.end).count(), 3, "{ours:?}");
}

#[test]
fn a_muted_call_sends_no_dtmf_to_the_conference() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    talk(&mut world, 1, 440.0, &[(1001, 1000.0)]);
    world.call.handle_xmpp_stanza(
        world.now,
        &parse(&format!(
            "<iq xmlns='jabber:client' type='set' id='m1' from='{FOCUS}' to='{OUR_JID}'>\
             <mute xmlns='http://jitsi.org/jitmeet/audio' actor='{ROOM}/moderator'>true</mute></iq>"
        )),
    );
    world.drain_call();

    press_on_phone(&mut world, 7);

    assert!(
        world.bridge_events.iter().all(|(ssrc, ..)| *ssrc == 1001),
        "{:?}",
        world.bridge_events
    );
}

/// The telephone events the phone received (payload type 101 in `PCMU_OFFER`).
fn phone_events(world: &World, skip: usize) -> Vec<jigasi_media::TelephoneEvent> {
    world.to_phone[skip..]
        .iter()
        .filter(|p| p.len() >= 16 && p[1] & 0x7f == 101)
        .map(|p| jigasi_media::TelephoneEvent::parse(&p[12..]).unwrap())
        .collect()
}

#[test]
fn dtmf_pressed_in_the_conference_reaches_the_phone_as_rfc4733() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    talk(&mut world, 1, 440.0, &[(1001, 1000.0)]);
    let before = world.to_phone.len();
    assert!(phone_events(&world, 0).is_empty());

    press_in_conference(&mut world, 1001, 5);

    let events = phone_events(&world, before);
    assert!(!events.is_empty(), "no telephone-event reached the phone");
    assert!(events.iter().all(|e| e.event == 5), "{events:?}");
    let last = events.last().unwrap();
    assert!(last.end, "the press never ended: {events:?}");
    // 200 ms at the phone's 8 kHz clock, rounded up to whole 20 ms frames.
    assert!(
        (1600..=1760).contains(&last.duration),
        "duration {}",
        last.duration
    );
    assert!(
        world
            .sip
            .iter()
            .all(|c| !matches!(c, SipCommand::Info { .. }))
    );
}

#[test]
fn dtmf_with_sip_info_method_is_sent_as_dtmf_relay() {
    let mut world = World::new();
    let mut config = config();
    config.dtmf_method = DtmfToPhone::SipInfo;
    world.call = Call::dial_in(config, PCMU_OFFER.as_bytes()).unwrap();
    world.join_and_invite(&[1001]);
    talk(&mut world, 1, 440.0, &[(1001, 1000.0)]);
    let before = world.to_phone.len();

    press_in_conference(&mut world, 1001, 11);

    let infos: Vec<_> = world
        .sip
        .iter()
        .filter_map(|c| {
            if let SipCommand::Info { content_type, body } = c {
                Some((content_type.clone(), body.clone()))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        infos,
        vec![(
            "application/dtmf-relay".to_owned(),
            "Signal=#\r\nDuration=200\r\n".to_owned()
        )]
    );
    assert!(phone_events(&world, before).is_empty());
}

#[test]
fn dtmf_with_inband_method_is_heard_as_tones() {
    let mut world = World::new();
    let mut config = config();
    config.dtmf_method = DtmfToPhone::Inband;
    world.call = Call::dial_in(config, PCMU_OFFER.as_bytes()).unwrap();
    world.join_and_invite(&[1001]);
    // No speaker audio: only the tone should be heard.
    talk(&mut world, 1, 440.0, &[]);
    let before = world.to_phone.len();

    press_in_conference(&mut world, 1001, 1);

    assert!(phone_events(&world, before).is_empty());
    let heard = phone_heard(&world, before);
    let detected = heard
        .chunks(160)
        .filter(|frame| {
            jigasi_media::tone::detect_dtmf(frame, 8000) == Some(jigasi_media::DtmfDigit::D1)
        })
        .count();
    assert!(detected >= 5, "digit 1 heard in {detected} frames");
}

fn dropped_count(world: &World) -> usize {
    world
        .events
        .iter()
        .filter(|e| matches!(e, CallEvent::MediaDropped))
        .count()
}

fn silence(world: &mut World, duration: Duration) {
    let steps = duration.as_millis() / 20;
    for _ in 0..steps {
        world.step(Duration::from_millis(20));
    }
}

/// A world whose phone counts as dropped after 2 s without RTP.
fn world_with_media_threshold(hangup: bool) -> World {
    let mut world = World::new();
    let mut config = config();
    config.media_dropped_threshold = Some(Duration::from_secs(2));
    config.hangup_on_media_dropped = hangup;
    world.call = Call::dial_in(config, PCMU_OFFER.as_bytes()).unwrap();
    world.join_and_invite(&[1001]);
    world
}

#[test]
fn a_silent_phone_is_reported_once_per_silence() {
    let mut world = world_with_media_threshold(false);
    talk(&mut world, 1, 440.0, &[]);
    silence(&mut world, Duration::from_millis(1500));
    assert_eq!(dropped_count(&world), 0, "reported before the threshold");
    silence(&mut world, Duration::from_secs(3));
    assert_eq!(dropped_count(&world), 1);
    // RTP comes back, then stops again: a second occurrence.
    talk(&mut world, 1, 440.0, &[]);
    assert_eq!(dropped_count(&world), 1);
    silence(&mut world, Duration::from_secs(3));
    assert_eq!(dropped_count(&world), 2);
    // Without HANGUP_SIP_ON_MEDIA_DROPPED the call goes on.
    assert!(
        !world
            .sip
            .iter()
            .any(|c| matches!(c, SipCommand::Hangup { .. })),
        "{:?}",
        world.sip
    );
    assert!(
        !world
            .events
            .iter()
            .any(|e| matches!(e, CallEvent::Ended { .. }))
    );
}

#[test]
fn hangup_on_media_dropped_sends_bye_with_408() {
    let mut world = world_with_media_threshold(true);
    talk(&mut world, 1, 440.0, &[]);
    silence(&mut world, Duration::from_secs(3));
    assert_eq!(dropped_count(&world), 1);
    let hangup = world.sip.iter().find_map(|c| {
        if let SipCommand::Hangup { reason } = c {
            Some(reason.clone())
        } else {
            None
        }
    });
    assert_eq!(
        hangup,
        Some(HangupCause::sip(408, "Stopped receiving media")),
        "{:?}",
        world.sip
    );
    assert!(
        world
            .events
            .iter()
            .any(|e| matches!(e, CallEvent::Ended { .. }))
    );
}

#[test]
fn a_phone_on_hold_that_sends_nothing_is_not_dropped() {
    let mut world = world_with_media_threshold(true);
    talk(&mut world, 1, 440.0, &[]);
    let inactive = PCMU_OFFER
        .replace("a=sendrecv", "a=inactive")
        .replace("o=phone 1 1", "o=phone 1 2");
    world.call.answer_re_offer(inactive.as_bytes()).unwrap();
    silence(&mut world, Duration::from_secs(5));
    assert_eq!(dropped_count(&world), 0);
    // Resumed but still silent: now it counts.
    let resume = PCMU_OFFER.replace("o=phone 1 1", "o=phone 1 3");
    world.call.answer_re_offer(resume.as_bytes()).unwrap();
    silence(&mut world, Duration::from_secs(3));
    assert_eq!(dropped_count(&world), 1);
}

#[test]
fn a_stray_datagram_does_not_steer_the_phone_audio() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    let attacker: SocketAddr = "198.51.100.66:5000".parse().unwrap();
    world.call.handle_datagram(
        world.now,
        MediaSocket::Phone,
        attacker,
        GATEWAY_PHONE_RTP.parse().unwrap(),
        b"not rtp at all",
    );
    let mut destinations = Vec::new();
    for _ in 0..5 {
        world.now += Duration::from_millis(20);
        world.call.handle_timeout(world.now);
        loop {
            match world.call.poll_output() {
                CallOutput::Transmit {
                    socket: MediaSocket::Phone,
                    destination,
                    ..
                } => destinations.push(destination),
                CallOutput::Timeout(_) | CallOutput::Idle => break,
                CallOutput::Sip(_)
                | CallOutput::Xmpp(_)
                | CallOutput::Event(_)
                | CallOutput::Transmit { .. } => {}
            }
        }
    }
    assert!(!destinations.is_empty());
    assert!(
        destinations.iter().all(|d| *d == PHONE.parse().unwrap()),
        "{destinations:?}"
    );
}

#[test]
fn xmpp_lost_keeps_the_phone_and_rejoins_with_a_new_nick() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    talk(&mut world, 1, 440.0, &[(1001, 1000.0)]);
    world.sip.clear();
    world.xmpp.clear();

    world.call.handle_xmpp_lost(world.now);
    world.drain_call();
    assert!(world.events.contains(&CallEvent::ConferenceLost));
    silence(&mut world, Duration::from_secs(5));
    assert!(world.sip.is_empty(), "{:?}", world.sip);
    assert!(!world.call.is_ended());
    // The phone still gets its 20 ms frames (silence) while the conference is away.
    let sent = world.to_phone.len();
    silence(&mut world, Duration::from_secs(1));
    assert!(
        world.to_phone.len() >= sent + 45,
        "phone starved while reconnecting"
    );

    world.call.handle_xmpp_reconnected(
        world.now,
        Jid::new("0123abcd@meet.example.com/res2").unwrap(),
        "cafe0001".into(),
    );
    world.drain_call();
    // The conference IQ goes out again, then the join as the new nick.
    let id = world
        .xmpp
        .iter()
        .find(|s| s.name() == "iq" && s.attr("to") == Some("focus.meet.example.com"))
        .and_then(|s| s.attr("id"))
        .expect("no conference IQ after the reconnect")
        .to_owned();
    world.call.handle_xmpp_stanza(
        world.now,
        &parse(&format!(
            "<iq xmlns='jabber:client' type='result' id='{id}' from='focus.meet.example.com'>\
             <conference xmlns='http://jitsi.org/protocol/focus' room='{ROOM}' ready='true'/></iq>"
        )),
    );
    world.drain_call();
    assert!(
        world
            .xmpp
            .iter()
            .any(|s| s.name() == "presence" && s.attr("to") == Some(&format!("{ROOM}/cafe0001"))),
        "{:?}",
        world.xmpp
    );
    assert_eq!(world.call.occupant(), format!("{ROOM}/cafe0001"));
    world.call.handle_xmpp_stanza(
        world.now,
        &parse(&format!(
            "<presence xmlns='jabber:client' from='{ROOM}/cafe0001'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>\
             <status code='110'/></x></presence>"
        )),
    );
    world.drain_call();
    assert_eq!(
        world
            .events
            .iter()
            .filter(|e| **e == CallEvent::Joined)
            .count(),
        2
    );
    // Back before the window closed: the phone is not hung up when the window would have ended
    // (6 s were spent reconnecting; the focus's invite timeout, 30 s from the join, is later).
    silence(&mut world, XMPP_RECONNECT_WINDOW - Duration::from_secs(2));
    assert!(
        !world
            .sip
            .iter()
            .any(|c| matches!(c, SipCommand::Hangup { .. })),
        "{:?}",
        world.sip
    );
}

#[test]
fn xmpp_not_back_within_the_window_hangs_up_the_phone() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    talk(&mut world, 1, 440.0, &[(1001, 1000.0)]);
    world.sip.clear();
    world.call.handle_xmpp_lost(world.now);
    silence(&mut world, XMPP_RECONNECT_WINDOW - Duration::from_secs(1));
    assert!(world.sip.is_empty(), "{:?}", world.sip);
    silence(&mut world, Duration::from_secs(2));
    assert!(
        matches!(
            world.sip.as_slice(),
            [SipCommand::Hangup { reason }] if reason.cause == 503
        ),
        "{:?}",
        world.sip
    );
    assert!(world.call.is_ended());
}

#[test]
fn xmpp_lost_before_the_answer_rejects_the_phone() {
    let mut world = World::new();
    world
        .call
        .handle_xmpp_online(world.now, Jid::new(OUR_JID).unwrap());
    world.drain_call();
    world.call.handle_xmpp_lost(world.now);
    world.drain_call();
    assert!(
        matches!(
            world.sip.as_slice(),
            [SipCommand::Reject { status: 480, .. }]
        ),
        "{:?}",
        world.sip
    );
    assert!(world.call.is_ended());
}

#[test]
fn the_media_tick_keeps_its_grid_after_a_stall() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    // On time, or a little late: the next frame is 20 ms after the due one (catching up).
    assert_eq!(next_tick(t0, t0), t0 + ms(20));
    assert_eq!(next_tick(t0, t0 + ms(50)), t0 + ms(20));
    assert_eq!(next_tick(t0, t0 + ms(120)), t0 + ms(20));
    // A long stall: whole frames are skipped, the phase is kept, nothing is in the future.
    let next = next_tick(t0, t0 + ms(1005));
    assert_eq!((next - t0).as_nanos() % ms(20).as_nanos(), 0);
    assert!(
        next <= t0 + ms(1005) && next > t0 + ms(1005) - ms(20),
        "{:?}",
        next - t0
    );
}

#[test]
fn a_stalled_call_catches_up_without_moving_its_grid() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    talk(&mut world, 1, 440.0, &[(1001, 1000.0)]);
    let due = world.call.next_tick.unwrap();
    // The task was descheduled for 50 ms: the call runs the missed frames back to back.
    let late = due + Duration::from_millis(50);
    let sent = world.to_phone.len();
    for _ in 0..3 {
        world.call.handle_timeout(late);
        world.drain_call();
    }
    assert_eq!(
        world.to_phone.len(),
        sent + 3,
        "missed frames not caught up"
    );
    assert_eq!(world.call.next_tick, Some(due + Duration::from_millis(60)));
}

/// The RTCP packet types of a compound datagram.
fn rtcp_types(datagram: &[u8]) -> Vec<u8> {
    jigasi_media::rtcp::parse_compound(datagram)
        .map(|p| match p.unwrap() {
            RtcpPacket::SenderReport { .. } => 200,
            RtcpPacket::ReceiverReport { .. } => 201,
            RtcpPacket::Other { packet_type } => packet_type,
        })
        .collect()
}

use jigasi_media::rtcp::{ReportBlock, RtcpPacket, SenderInfo};

const PHONE_RTCP: &str = "192.0.2.10:4001";
const GATEWAY_PHONE_RTCP: &str = "10.0.0.2:30001";

/// The phone's RTCP datagram: an RR (or SR) with one block on the gateway's stream.
fn phone_report(block: ReportBlock, sender: Option<SenderInfo>) -> Vec<u8> {
    let mut buf = [0u8; 128];
    let len = match sender {
        Some(info) => jigasi_media::rtcp::write_sender_report(
            Ssrc::new(0xdead_beef),
            &info,
            &[block],
            &mut buf,
        ),
        None => {
            jigasi_media::rtcp::write_receiver_report(Ssrc::new(0xdead_beef), &[block], &mut buf)
        }
    }
    .unwrap();
    buf[..len].to_vec()
}

#[test]
fn rtcp_reports_reach_the_phone_on_a_randomized_five_second_interval() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    let answered = world.now;
    talk(&mut world, 30, 440.0, &[(1001, 1000.0)]);
    let reports = &world.to_phone_rtcp;
    assert!(reports.len() >= 4, "{} reports in 30 s", reports.len());
    // The first comes soon: half the interval, ±50 %.
    let first = reports[0].0 - answered;
    assert!(
        first >= Duration::from_millis(1250) && first <= Duration::from_millis(3800),
        "{first:?}"
    );
    let gaps: Vec<Duration> = reports.windows(2).map(|w| w[1].0 - w[0].0).collect();
    for gap in &gaps {
        assert!(
            *gap >= Duration::from_millis(2500) && *gap <= Duration::from_millis(7520),
            "{gaps:?}"
        );
    }
    assert!(
        gaps.iter()
            .any(|g| g.abs_diff(gaps[0]) > Duration::from_millis(100)),
        "randomized: {gaps:?}"
    );
    for (_, socket, destination, datagram) in reports {
        assert_eq!(*socket, MediaSocket::PhoneRtcp);
        assert_eq!(*destination, PHONE_RTCP.parse().unwrap(), "RTP port + 1");
        // We send to the phone: sender reports, with a block on its stream, and the CNAME.
        assert_eq!(rtcp_types(datagram), [200, 202]);
        let Some(Ok(RtcpPacket::SenderReport {
            sender, reports, ..
        })) = jigasi_media::rtcp::parse_compound(datagram).next()
        else {
            panic!("not an SR");
        };
        assert_eq!(sender, Ssrc::new(0x1234_5678));
        assert_eq!(
            reports.iter().next().map(|b| b.ssrc),
            Some(Ssrc::new(0xdead_beef))
        );
    }
    // The same seed gives the same schedule; another seed another one.
    let schedule = |seed: u64| {
        let mut config = config();
        config.rtcp_seed = seed;
        let mut call = Call::dial_in(config, PCMU_OFFER.as_bytes()).unwrap();
        (0..5)
            .map(|_| call.rtcp_interval(false))
            .collect::<Vec<_>>()
    };
    assert_eq!(schedule(1), schedule(1));
    assert_ne!(schedule(1), schedule(2));
}

#[test]
fn a_phone_on_hold_gets_receiver_reports() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    talk(&mut world, 1, 440.0, &[(1001, 1000.0)]);
    let hold = PCMU_OFFER
        .replace("a=sendrecv", "a=sendonly")
        .replace("o=phone 1 1", "o=phone 1 2");
    world.call.answer_re_offer(hold.as_bytes()).unwrap();
    let held_at = world.now;
    talk(&mut world, 12, 440.0, &[(1001, 1000.0)]);
    // The first report after the hold may still cover packets sent before it; then RRs.
    let after: Vec<Vec<u8>> = world
        .to_phone_rtcp
        .iter()
        .filter(|(at, ..)| *at > held_at)
        .map(|(_, _, _, d)| rtcp_types(d))
        .collect();
    assert!(after.len() >= 2, "{after:?}");
    assert!(after[1..].iter().all(|t| t == &[201, 202]), "{after:?}");
}

#[test]
fn rtt_and_outbound_loss_come_from_the_phones_receiver_report() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    talk(&mut world, 4, 440.0, &[(1001, 1000.0)]);
    let (sent_at, _, _, sr) = world.to_phone_rtcp.last().cloned().expect("an SR by now");
    let Some(Ok(RtcpPacket::SenderReport { info, .. })) =
        jigasi_media::rtcp::parse_compound(&sr).next()
    else {
        panic!("not an SR");
    };
    // The phone held our SR 100 ms and its RR arrives 150 ms after we sent the SR: RTT 50 ms.
    let rr = phone_report(
        ReportBlock {
            ssrc: Ssrc::new(0x1234_5678),
            fraction_lost: 13, // 13/256 ≈ 5 %
            cumulative_lost: 3,
            highest_sequence: 150,
            jitter: 80, // 10 ms at 8 kHz
            last_sr: info.ntp_time.middle32(),
            delay_since_last_sr: 65_536 / 10,
        },
        None,
    );
    let phone_rtcp: SocketAddr = "192.0.2.10:4101".parse().unwrap();
    world.call.handle_datagram(
        sent_at + Duration::from_millis(150),
        MediaSocket::PhoneRtcp,
        phone_rtcp,
        GATEWAY_PHONE_RTCP.parse().unwrap(),
        &rr,
    );
    let quality = world.call.quality();
    let phone = quality.phone.expect("phone leg");
    let rtt = phone.rtt.expect("rtt");
    assert!(
        rtt.abs_diff(Duration::from_millis(50)) < Duration::from_millis(1),
        "{rtt:?}"
    );
    let outbound = phone.outbound.expect("outbound");
    assert!((outbound.loss - 13.0 / 256.0).abs() < 1e-9);
    assert_eq!(outbound.jitter, Duration::from_millis(10));
    let inbound = phone.inbound.expect("inbound");
    assert_eq!(inbound.loss, 0.0);
    assert!(inbound.jitter < Duration::from_millis(2), "{inbound:?}");
    // Clean inbound at 50 ms RTT: a good MOS; 5 % outbound loss: a lower one.
    let (mos_in, mos_out) = (phone.inbound_mos().unwrap(), phone.outbound_mos().unwrap());
    assert!(mos_in > 4.3, "{mos_in}");
    assert!(mos_out < mos_in - 0.3, "{mos_out} vs {mos_in}");
    assert_eq!(phone.codec, CodecImpairment::G711_PLC);
    // The bridge leg (str0m's stats on the simulated bridge) is measured too.
    let bridge = quality.bridge.expect("bridge leg");
    assert!(
        bridge.inbound.is_some() && bridge.rtt.is_some(),
        "{bridge:?}"
    );
    assert_eq!(quality.phone_rtcp_dropped, 0);
    // Symmetric RTCP: the next report goes where the valid RR came from.
    talk(&mut world, 8, 440.0, &[(1001, 1000.0)]);
    let (_, socket, destination, _) = world.to_phone_rtcp.last().unwrap();
    assert_eq!(
        (*socket, *destination),
        (MediaSocket::PhoneRtcp, phone_rtcp)
    );
}

#[test]
fn malformed_rtcp_is_counted_and_dropped_and_the_call_goes_on() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    talk(&mut world, 1, 440.0, &[(1001, 1000.0)]);
    let attacker: SocketAddr = "198.51.100.66:5001".parse().unwrap();
    let mut truncated = phone_report(ReportBlock::default(), None);
    truncated.truncate(20);
    for garbage in [
        &b"not rtcp at all"[..],
        &[][..],
        &[0x80, 201, 0, 40, 0, 0, 0, 1][..],
        &truncated[..],
    ] {
        world.call.handle_datagram(
            world.now,
            MediaSocket::PhoneRtcp,
            attacker,
            GATEWAY_PHONE_RTCP.parse().unwrap(),
            garbage,
        );
    }
    // A malformed RR multiplexed on the RTP port is RTCP too, and dropped the same way.
    world.call.handle_datagram(
        world.now,
        MediaSocket::Phone,
        attacker,
        GATEWAY_PHONE_RTP.parse().unwrap(),
        &[0x81, 201, 0, 1, 0, 0, 0, 1],
    );
    assert_eq!(world.call.quality().phone_rtcp_dropped, 5);
    let sent = world.to_phone.len();
    talk(&mut world, 8, 440.0, &[(1001, 1000.0)]);
    assert!(world.to_phone.len() >= sent + 400, "audio goes on");
    assert!(!world.call.is_ended());
    assert!(
        !world
            .events
            .iter()
            .any(|e| matches!(e, CallEvent::Ended { .. }))
    );
    assert!(
        world
            .to_phone_rtcp
            .iter()
            .all(|(_, _, d, _)| *d == PHONE_RTCP.parse().unwrap()),
        "no RTCP steered to the attacker"
    );
    // Phone-leg figures untouched by the garbage.
    assert!(world.call.quality().phone.unwrap().outbound.is_none());
}

#[test]
fn rtcp_multiplexed_on_the_rtp_port_is_answered_there_and_hangup_sends_bye() {
    let mut world = World::new();
    world.join_and_invite(&[1001]);
    talk(&mut world, 1, 440.0, &[(1001, 1000.0)]);
    let sr = phone_report(
        ReportBlock {
            ssrc: Ssrc::new(0x1234_5678),
            ..ReportBlock::default()
        },
        Some(SenderInfo {
            ntp_time: NtpTime(5 << 32),
            rtp_time: 1,
            packet_count: 50,
            octet_count: 8000,
        }),
    );
    world.call.handle_datagram(
        world.now,
        MediaSocket::Phone,
        PHONE.parse().unwrap(),
        GATEWAY_PHONE_RTP.parse().unwrap(),
        &sr,
    );
    assert!(world.call.quality().phone.unwrap().outbound.is_some());
    talk(&mut world, 8, 440.0, &[(1001, 1000.0)]);
    let (_, socket, destination, report) = world.to_phone_rtcp.last().unwrap().clone();
    assert_eq!(
        (socket, destination),
        (MediaSocket::Phone, PHONE.parse().unwrap())
    );
    // Our block on the phone's stream answers its SR: LSR is the middle of its NTP time.
    let Some(Ok(RtcpPacket::SenderReport { reports, .. })) =
        jigasi_media::rtcp::parse_compound(&report).next()
    else {
        panic!("not an SR");
    };
    assert_eq!(
        reports.iter().next().map(|b| b.last_sr),
        Some(NtpTime(5 << 32).middle32())
    );
    // Hanging up from our side: an RTCP BYE, then the SIP BYE.
    let before = world.to_phone_rtcp.len();
    world.call.hang_up(world.now, "test");
    world.drain_call();
    let bye = &world.to_phone_rtcp[before..];
    assert_eq!(bye.len(), 1);
    assert_eq!(rtcp_types(&bye[0].3)[1..], [202, 203]);
    assert!(matches!(world.sip.last(), Some(SipCommand::Hangup { .. })));
}

#[test]
fn debug_view_shows_the_sip_state_and_the_agreed_codec() {
    let world = World::new();
    assert_eq!(world.call.sip_state(), "ringing");
    assert_eq!(world.call.phone_codec().as_deref(), Some("PCMU/8000"));
    let world = World::new_dial_out();
    assert_eq!(world.call.sip_state(), "idle");
    assert_eq!(
        world.call.phone_codec(),
        None,
        "no codec before the phone answers"
    );
}

#[test]
fn rtcp_goes_where_the_offer_says_a_rtcp_port_or_rtcp_mux() {
    for (attribute, socket, destination) in [
        (
            "a=rtcp:4011 IN IP4 192.0.2.11\r\n",
            MediaSocket::PhoneRtcp,
            "192.0.2.11:4011",
        ),
        ("a=rtcp-mux\r\n", MediaSocket::Phone, PHONE),
    ] {
        let mut world = World::new();
        let offer = PCMU_OFFER.replace("a=sendrecv\r\n", &format!("a=sendrecv\r\n{attribute}"));
        world.call = Call::dial_in(config(), offer.as_bytes()).unwrap();
        world.join_and_invite(&[1001]);
        talk(&mut world, 5, 440.0, &[(1001, 1000.0)]);
        assert!(!world.to_phone_rtcp.is_empty(), "{attribute}");
        for (_, s, d, _) in &world.to_phone_rtcp {
            assert_eq!(
                (*s, *d),
                (socket, destination.parse().unwrap()),
                "{attribute}"
            );
        }
    }
}

/// Two dial-in calls of one room, joined to the conference, their clocks in step.
fn room_of_two(speakers: &[u32]) -> (Rc<RefCell<Shared>>, World, World) {
    let now = Instant::now();
    let shared = Shared::new();
    let mut a = World::seated(now, Seat::nth(1));
    let mut b = World::seated(now, Seat::nth(2));
    a.join_room(&shared);
    b.join_room(&shared);
    assert_eq!(
        shared.borrow().room.phones(),
        2,
        "both phones in one engine"
    );
    a.join_and_invite(speakers);
    b.join_and_invite(speakers);
    sync_clocks(&mut [&mut a, &mut b]);
    (shared, a, b)
}

#[test]
fn calls_in_one_room_share_one_engine_and_hear_each_other_directly() {
    let (shared, mut a, mut b) = room_of_two(&[1001]);
    talk_together(&mut [&mut a, &mut b], 1, &[440.0, 700.0], &[(1001, 1000.0)]);
    let stats = *shared.borrow().room.engine().stats();
    let (a_heard, b_heard) = (a.to_phone.len(), b.to_phone.len());
    talk_together(&mut [&mut a, &mut b], 3, &[440.0, 700.0], &[(1001, 1000.0)]);

    // Each phone hears the speaker and the other phone, never itself.
    for (world, skip, own, other) in [(&a, a_heard, 440.0, 700.0), (&b, b_heard, 700.0, 440.0)] {
        let down = phone_heard(world, skip);
        assert!(down.len() >= 8000 * 2, "phone got {} samples", down.len());
        for hz in [1000.0, other] {
            let share = windowed_share(&down, 8000, hz);
            assert!(
                share > 0.2,
                "call {}: {hz} Hz share {share:.3}",
                world.seat.id
            );
        }
        let share = windowed_share(&down, 8000, own);
        assert!(
            share < 0.02,
            "call {} hears itself: {share:.3}",
            world.seat.id
        );
    }
    // Each bridge leg carries its own phone only.
    for (world, own, other) in [(&a, 440.0, 700.0), (&b, 700.0, 440.0)] {
        let up = bridge_heard(world, 60);
        assert!(up.len() >= 48_000, "bridge got {} samples", up.len());
        assert!(windowed_share(&up, 48_000, own) > 0.9);
        assert!(windowed_share(&up, 48_000, other) < 0.02);
    }
    // Decode once: one speaker, one rate (8 kHz) → one decode per tick for both phones, and
    // the second leg's copy of the speaker is dropped, not decoded.
    let after = *shared.borrow().room.engine().stats();
    let ticks = after.ticks - stats.ticks;
    assert!((150..=170).contains(&ticks), "{ticks} room ticks in 3 s");
    // (The speaker talks for 150 of the ticks; the trailing ones are silence, not decoded.)
    let decodes = after.speaker_decodes - stats.speaker_decodes;
    assert!(
        (145..=ticks).contains(&decodes),
        "{decodes} decodes in {ticks} ticks"
    );
    assert!(after.other_leg - stats.other_leg >= 140, "{after:?}");
    assert_eq!(after.decode_errors, 0);
}

#[test]
fn dtmf_pressed_in_the_conference_reaches_every_phone_of_the_room_once() {
    let (_shared, mut a, mut b) = room_of_two(&[1001]);
    talk_together(&mut [&mut a, &mut b], 1, &[440.0, 700.0], &[(1001, 1000.0)]);
    let (a_before, b_before) = (a.to_phone.len(), b.to_phone.len());
    press_in_conference_together(&mut [&mut a, &mut b], 1001, 5);
    for (world, skip) in [(&a, a_before), (&b, b_before)] {
        let events = phone_events(world, skip);
        assert!(events.iter().all(|e| e.event == 5), "{events:?}");
        // One press: the end is signalled (three times) once, not once per bridge leg.
        let ends = events.iter().filter(|e| e.end).count();
        assert_eq!(ends, 3, "call {}: {events:?}", world.seat.id);
    }
}

#[test]
fn a_call_leaving_the_room_leaves_the_others_audio_intact() {
    let (shared, mut a, mut b) = room_of_two(&[1001]);
    // B's leg delivers the speaker first, so the engine takes the speaker from B's leg.
    talk_together(&mut [&mut b, &mut a], 1, &[700.0, 440.0], &[(1001, 1000.0)]);
    let now = b.now;
    b.input(|call| call.hang_up(now, "bye"));
    b.drain_call();
    assert!(shared.borrow().room.call(b.id()).unwrap().is_ended());
    let call = shared.borrow_mut().room.remove_call(b.id()).unwrap();
    assert!(call.is_ended());
    assert_eq!(shared.borrow().room.phones(), 1);
    assert_eq!(shared.borrow().room.len(), 1);

    let skip = a.to_phone.len();
    talk_together(&mut [&mut a], 2, &[440.0], &[(1001, 1000.0)]);
    let down = phone_heard(&a, skip);
    assert!(down.len() >= 8000, "phone got {} samples", down.len());
    // The speaker comes from A's own leg now, at once (no gap for the takeover).
    let share = windowed_share(&down[..4000], 8000, 1000.0);
    assert!(share > 0.9, "1 kHz share right after B left {share:.3}");
    assert!(windowed_share(&down, 8000, 700.0) < 0.02, "B is gone");
    assert!(rms(&down) > 2000.0);
}

#[test]
fn a_dial_out_shares_the_room_once_its_phone_answers() {
    let now = Instant::now();
    let shared = Shared::new();
    let mut a = World::seated(now, Seat::nth(1));
    let mut b = World::seated_dial_out(now, Seat::nth(2));
    a.join_room(&shared);
    b.join_room(&shared);
    assert_eq!(shared.borrow().room.len(), 2);
    assert_eq!(
        shared.borrow().room.phones(),
        1,
        "the dial-out has no phone yet"
    );
    a.join_and_invite(&[1001]);
    b.join_and_invite(&[1001]);
    let at = b.now;
    b.input(|call| {
        call.handle_sip(
            at,
            SipInput::Answered {
                sdp: PCMU_ANSWER.as_bytes().to_vec(),
            },
        );
    });
    b.drain_call();
    assert!(b.events.contains(&CallEvent::Answered));
    assert_eq!(
        shared.borrow().room.phones(),
        2,
        "the answered phone joined the engine"
    );
    sync_clocks(&mut [&mut a, &mut b]);
    let (a_skip, b_skip) = (a.to_phone.len(), b.to_phone.len());
    talk_together(&mut [&mut a, &mut b], 3, &[440.0, 700.0], &[(1001, 1000.0)]);
    for (world, skip, own, other) in [(&a, a_skip, 440.0, 700.0), (&b, b_skip, 700.0, 440.0)] {
        let down = phone_heard(world, skip + 25);
        for hz in [1000.0, other] {
            let share = windowed_share(&down, 8000, hz);
            assert!(
                share > 0.2,
                "call {}: {hz} Hz share {share:.3}",
                world.seat.id
            );
        }
        assert!(windowed_share(&down, 8000, own) < 0.02);
    }
    // Its quality comes from the room's engine.
    let quality = shared.borrow().room.quality(b.id()).unwrap();
    assert!(quality.phone.is_some());
}

/// The engine settings for a phone offering Opus with `fmtp`.
fn opus_phone(fmtp: &str) -> PhoneConfig {
    let offer = format!(
        "v=0\r\no=phone 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 {fmtp}\r\na=sendrecv\r\n"
    );
    let config = config();
    let mut local = LocalMedia::new(config.phone_rtp.ip(), config.phone_rtp.port());
    local.codecs = config.codecs.clone();
    let offer = SessionDescription::parse(offer.as_bytes()).unwrap();
    let answer = SdpSession::new("t", 1).answer(&offer, &local).unwrap();
    phone_config(&config, &answer.negotiation).unwrap()
}

#[test]
fn an_opus_phone_gets_the_bitrate_and_fec_its_fmtp_asks_for() {
    let default = PhoneConfig::new(CodecKind::Opus, Ssrc::new(1), Ssrc::new(2)).phone_opus;
    // baresip's offer: no limit, no useinbandfec (0 by default): no FEC bits taken from audio.
    let phone = opus_phone("stereo=1;sprop-stereo=1");
    assert_eq!(phone.phone_opus.bitrate, default.bitrate);
    assert!(!phone.phone_opus.inband_fec);
    let phone = opus_phone("maxaveragebitrate=20000;useinbandfec=1");
    assert_eq!(phone.phone_opus.bitrate, 20_000);
    assert!(phone.phone_opus.inband_fec);
    // Out-of-range limits are brought into RFC 7587's 6-510 kbit/s; a higher one changes nothing.
    assert_eq!(
        opus_phone("maxaveragebitrate=100").phone_opus.bitrate,
        6_000
    );
    assert_eq!(
        opus_phone("maxaveragebitrate=400000").phone_opus.bitrate,
        default.bitrate
    );
    assert_eq!(
        opus_phone("maxaveragebitrate=lots").phone_opus.bitrate,
        default.bitrate
    );
    // The encoder toward the bridge is ours to choose: always with FEC.
    assert!(phone.bridge_opus.inband_fec);
}
