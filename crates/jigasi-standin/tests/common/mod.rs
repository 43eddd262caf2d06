//! A scripted fake gateway participant (no call logic): it logs in anonymously, sends the
//! conference IQ (retrying while `ready="false"`), joins the room with `JoinPresence`, answers
//! the stand-in's `session-initiate` with `build_session_accept` (or a deliberately broken
//! variant), connects ICE/DTLS to the stand-in's bridge over real UDP with a `Role::Gateway`
//! `MediaLeg`, sends a tone and decodes what it receives per SSRC.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jigasi_bridge::{
    CandidateKind, IceParams, LegConfig, LegEvent, LegOutput, MediaLeg, RemoteParams, Role,
};
use jigasi_jingle::answer::{LocalAnswer, build_session_accept, gateway_msid};
use jigasi_jingle::focus::ConferenceIq;
use jigasi_jingle::ice::{Candidate, CandidateType, Setup, TransportChild};
use jigasi_jingle::jingle::{Action, Jingle};
use jigasi_jingle::jitmeet::Mute;
use jigasi_jingle::presence::JoinPresence;
use jigasi_jingle::rtp::Source;
use jigasi_standin::{StandIn, StandInConfig, audio_level};
use jigasi_testpeers::{Prosody, ProsodyConfig, available};
use jigasi_types::{Secret, Ssrc};
use jigasi_xmpp::disco::{DiscoInfo, JITSI_CAPS_NODE};
use jigasi_xmpp::jid::{BareJid, FullJid, Jid};
use jigasi_xmpp::minidom::Element;
use jigasi_xmpp::muc::MucPresence;
use jigasi_xmpp::{Auth, ClientConfig, TlsPolicy, stanza};
use jigasi_xmpp_io::{ConnectOptions, Incoming, XmppEvents, XmppHandle, connect_client};
use tokio::net::UdpSocket;

/// Starts Prosody, or `None` (test skipped) when it is not installed.
pub fn start_prosody() -> Option<Prosody> {
    if !available(&["prosody", "prosodyctl", "openssl"]) {
        return None;
    }
    Some(Prosody::start(ProsodyConfig::default()).unwrap())
}

/// The stand-in configuration for `prosody`.
pub fn config(prosody: &Prosody) -> StandInConfig {
    StandInConfig::new(
        prosody.c2s_addr(),
        prosody.component_addr(),
        prosody.domain(),
        Secret::new(prosody.component_secret().to_owned()),
        Secret::new("focuspw".to_owned()),
    )
}

pub async fn start_stand_in(config: StandInConfig) -> StandIn {
    StandIn::start(config).await.unwrap()
}

fn options(addr: SocketAddr) -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(10),
        ..ConnectOptions::new(addr.ip().to_string(), addr.port())
    }
}

/// How the fake gateway answers the offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerMode {
    /// `build_session_accept` as is.
    Correct,
    /// The fingerprint says `setup="actpass"`.
    Actpass,
    /// A candidate without `generation`.
    NoGeneration,
    /// Our SSRC is one the offer already uses (the first participant source).
    SsrcCollision,
}

/// Everything the fake gateway saw.
#[derive(Debug, Default)]
pub struct GatewayState {
    pub conference_answers: Vec<ConferenceIq>,
    pub offers: Vec<(Element, Jingle)>,
    pub accept_result: Option<Result<(), String>>,
    pub source_adds: Vec<Jingle>,
    pub source_removes: Vec<Jingle>,
    pub terminates: Vec<Jingle>,
    pub mutes: Vec<(Element, Mute)>,
    pub presences: Vec<MucPresence>,
    pub audio: BTreeMap<u32, Vec<i16>>,
    pub connected: bool,
    pub own_ssrc: u32,
}

pub struct FakeGateway {
    pub nick: String,
    pub occupant: FullJid,
    pub handle: XmppHandle,
    pub state: Arc<Mutex<GatewayState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGateway {
    /// Connects, sends the conference IQ (retrying on `ready="false"`), joins `room`.
    pub async fn join(
        prosody: &Prosody,
        room: &str,
        nick: &str,
        mode: AnswerMode,
        tone_hz: f64,
    ) -> Self {
        let client = ClientConfig::new(prosody.domain(), Auth::Anonymous)
            .with_tls(TlsPolicy::Disabled)
            .with_resource(nick);
        let (handle, mut events) = connect_client(options(prosody.c2s_addr()), client)
            .await
            .unwrap();
        let state = Arc::new(Mutex::new(GatewayState::default()));
        let room_jid = BareJid::new(room).unwrap();
        // Conference IQ first (§3.1), retried while not ready.
        for _ in 0..5 {
            let request = stanza::iq(
                "set",
                Some(&prosody.focus_component_domain()),
                ConferenceIq::request(room_jid.clone(), "6f1c2f0a9d7e4b1e").to_element(),
            );
            let answer = handle
                .send_iq(request, Duration::from_secs(5))
                .await
                .unwrap();
            let conference = ConferenceIq::parse(
                answer
                    .get_child("conference", "http://jitsi.org/protocol/focus")
                    .unwrap(),
            )
            .unwrap();
            let ready = conference.ready == Some(true);
            state.lock().unwrap().conference_answers.push(conference);
            if ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let occupant = room_jid.with_resource_str(nick).unwrap();
        let disco = DiscoInfo::jigasi().with_feature("http://jitsi.org/protocol/audio-mute");
        let mut join = JoinPresence::sip_gateway(occupant.clone());
        join.nick = Some("+15551234567".into());
        let caps = disco.caps_element(JITSI_CAPS_NODE);
        join.caps = Some(jigasi_jingle::jitmeet::Caps::parse(&caps).unwrap());
        handle.send(join.to_element()).await.unwrap();
        loop {
            let Some(Incoming::Stanza(stanza)) = events.next().await else {
                panic!("closed before joining")
            };
            match MucPresence::classify(&stanza) {
                Some(MucPresence::SelfJoined { .. }) => break,
                Some(MucPresence::Error { error, .. }) => panic!("join refused: {error}"),
                Some(other) => state.lock().unwrap().presences.push(other),
                None => answer_simple(&handle, &stanza, &disco).await,
            }
        }
        let task = tokio::spawn(run(
            handle.clone(),
            events,
            Arc::clone(&state),
            disco,
            mode,
            tone_hz,
            nick.to_owned(),
        ));
        Self {
            nick: nick.to_owned(),
            occupant,
            handle,
            state,
            task,
        }
    }

    /// Waits up to `timeout` until `check` holds.
    pub async fn wait(&self, timeout: Duration, check: impl Fn(&GatewayState) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check(&self.state.lock().unwrap()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        check(&self.state.lock().unwrap())
    }

    /// The decoded audio received on `ssrc`.
    pub fn audio(&self, ssrc: u32) -> Vec<i16> {
        self.state
            .lock()
            .unwrap()
            .audio
            .get(&ssrc)
            .cloned()
            .unwrap_or_default()
    }
}

async fn answer_simple(handle: &XmppHandle, request: &Element, disco: &DiscoInfo) {
    if stanza::is_iq_request(request) {
        let reply = disco
            .answer(request)
            .unwrap_or_else(|| stanza::iq_result(request));
        handle.send(reply).await.unwrap();
    }
}

struct Media {
    leg: MediaLeg,
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    own: Ssrc,
    encoder: opus::Encoder,
    decoders: BTreeMap<u32, opus::Decoder>,
    phase: f64,
    rtp_time: u32,
    next_timeout: Instant,
}

async fn run(
    handle: XmppHandle,
    mut events: XmppEvents,
    state: Arc<Mutex<GatewayState>>,
    disco: DiscoInfo,
    mode: AnswerMode,
    tone_hz: f64,
    nick: String,
) {
    let mut media: Option<Media> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut buf = vec![0u8; 2048];
    loop {
        let timeout = media
            .as_ref()
            .map_or(Instant::now() + Duration::from_secs(3600), |m| {
                m.next_timeout
            });
        let socket = media.as_ref().map(|m| Arc::clone(&m.socket));
        tokio::select! {
            incoming = events.next() => {
                let Some(Incoming::Stanza(stanza)) = incoming else { return };
                handle_stanza(&handle, &stanza, &state, &disco, mode, &nick, &mut media).await;
            }
            received = async {
                match &socket {
                    Some(socket) => socket.recv_from(&mut buf).await,
                    None => std::future::pending().await,
                }
            } => {
                if let (Ok((len, from)), Some(m)) = (received, media.as_mut()) {
                    let local = m.local;
                    m.leg.handle_receive(Instant::now(), from, local, &buf[..len]).unwrap();
                    drain(m, &state).await;
                }
            }
            _ = tick.tick() => {
                if let Some(m) = media.as_mut().filter(|m| m.leg.is_connected()) {
                    let mut frame = [0i16; 960];
                    for sample in &mut frame {
                        *sample = (m.phase.sin() * 0.3 * f64::from(i16::MAX)) as i16;
                        m.phase = (m.phase + std::f64::consts::TAU * tone_hz / 48_000.0)
                            % std::f64::consts::TAU;
                    }
                    let mut out = [0u8; 1500];
                    let len = m.encoder.encode(&frame, &mut out).unwrap();
                    let level = audio_level(&frame);
                    let own = m.own;
                    m.leg
                        .send_audio(Instant::now(), own, m.rtp_time, &out[..len], level, true)
                        .unwrap();
                    m.rtp_time = m.rtp_time.wrapping_add(960);
                    drain(m, &state).await;
                }
            }
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(timeout)) => {
                if let Some(m) = media.as_mut() {
                    m.leg.handle_timeout(Instant::now()).unwrap();
                    drain(m, &state).await;
                }
            }
        }
    }
}

async fn drain(media: &mut Media, state: &Arc<Mutex<GatewayState>>) {
    loop {
        match media.leg.poll_output().unwrap() {
            LegOutput::Timeout(at) => {
                media.next_timeout = at;
                return;
            }
            LegOutput::Transmit(t) => {
                let _ = media.socket.send_to(&t.contents, t.destination).await;
            }
            LegOutput::Event(LegEvent::Connected) => state.lock().unwrap().connected = true,
            LegOutput::Event(LegEvent::Audio(packet)) => {
                let decoder = media
                    .decoders
                    .entry(packet.ssrc.get())
                    .or_insert_with(|| opus::Decoder::new(48_000, opus::Channels::Mono).unwrap());
                let mut pcm = [0i16; 5760];
                if let Ok(n) = decoder.decode(&packet.payload, &mut pcm, false) {
                    state
                        .lock()
                        .unwrap()
                        .audio
                        .entry(packet.ssrc.get())
                        .or_default()
                        .extend_from_slice(&pcm[..n]);
                }
            }
            LegOutput::Event(_) => {}
        }
    }
}

async fn handle_stanza(
    handle: &XmppHandle,
    stanza: &Element,
    state: &Arc<Mutex<GatewayState>>,
    disco: &DiscoInfo,
    mode: AnswerMode,
    nick: &str,
    media: &mut Option<Media>,
) {
    if let Some(presence) = MucPresence::classify(stanza) {
        state.lock().unwrap().presences.push(presence);
        return;
    }
    if !stanza::is_iq_request(stanza) {
        return;
    }
    if let Some(mute) = stanza
        .children()
        .find(|c| c.name() == "mute")
        .and_then(|c| Mute::parse(c).ok())
    {
        state.lock().unwrap().mutes.push((stanza.clone(), mute));
        handle.send(stanza::iq_result(stanza)).await.unwrap();
        return;
    }
    let Some(jingle) = stanza
        .get_child("jingle", "urn:xmpp:jingle:1")
        .map(|j| Jingle::parse(j).unwrap())
    else {
        answer_simple(handle, stanza, disco).await;
        return;
    };
    // Ack first (§4.1).
    handle.send(stanza::iq_result(stanza)).await.unwrap();
    match jingle.action {
        Action::SessionInitiate => {
            state
                .lock()
                .unwrap()
                .offers
                .push((stanza.clone(), jingle.clone()));
            let m = answer_offer(handle, stanza, &jingle, state, mode, nick).await;
            *media = m;
            if let Some(m) = media.as_mut() {
                drain(m, state).await;
            }
        }
        Action::SourceAdd => {
            if let Some(m) = media.as_mut() {
                for source in sources(&jingle) {
                    m.leg.add_receive_ssrc(source.ssrc).unwrap();
                }
            }
            state.lock().unwrap().source_adds.push(jingle);
        }
        Action::SourceRemove => {
            if let Some(m) = media.as_mut() {
                for source in sources(&jingle) {
                    m.leg.remove_receive_ssrc(source.ssrc);
                }
            }
            state.lock().unwrap().source_removes.push(jingle);
        }
        Action::SessionTerminate => {
            *media = None;
            state.lock().unwrap().terminates.push(jingle);
        }
        _ => {}
    }
}

pub fn sources(jingle: &Jingle) -> Vec<Source> {
    jingle
        .contents()
        .filter_map(|c| c.description.as_ref())
        .flat_map(|d| d.sources().cloned())
        .collect()
}

async fn answer_offer(
    handle: &XmppHandle,
    request: &Element,
    offer: &Jingle,
    state: &Arc<Mutex<GatewayState>>,
    mode: AnswerMode,
    nick: &str,
) -> Option<Media> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let mut leg =
        MediaLeg::new(LegConfig::new(Role::Gateway, vec![local]), Instant::now()).unwrap();
    let ice = leg.local_ice();
    let (hash, fingerprint) = leg.local_fingerprint();
    let offered = sources(offer);
    let own = match mode {
        AnswerMode::SsrcCollision => offered
            .iter()
            .find(|s| s.owner() != Some("jvb"))
            .map_or(1, |s| s.ssrc.get()),
        _ => rand::random_range(1..=u32::MAX),
    };
    let candidates = leg
        .local_candidates()
        .into_iter()
        .enumerate()
        .map(|(i, c)| Candidate {
            component: 1,
            foundation: c.foundation,
            generation: Some(0),
            id: Some(format!("c{i}")),
            ip: c.addr.ip().to_string(),
            network: Some(0),
            port: c.addr.port(),
            priority: c.priority,
            protocol: "udp".into(),
            kind: CandidateType::Host,
            rel_addr: None,
            rel_port: None,
            tcptype: None,
            extra_attrs: BTreeMap::new(),
        })
        .collect();
    let responder: Jid = handle.jid().clone();
    let local_answer = LocalAnswer {
        responder,
        endpoint_id: nick.to_owned(),
        ssrc: Ssrc::new(own),
        msid: gateway_msid(nick, "9c4e6a2d-1b3f-4e5a-8d7c-2f1e0b9a8c7d"),
        ufrag: ice.ufrag,
        pwd: ice.pwd,
        candidates,
        fingerprint_hash: hash,
        fingerprint,
    };
    let mut answer = build_session_accept(offer, &local_answer).unwrap();
    let transport = answer
        .contents_mut()
        .find_map(|c| c.transport.as_mut())
        .unwrap();
    match mode {
        AnswerMode::Actpass => {
            for child in &mut transport.children {
                if let TransportChild::Fingerprint(f) = child {
                    f.setup = Some(Setup::Actpass);
                }
            }
        }
        AnswerMode::NoGeneration => {
            for child in &mut transport.children {
                if let TransportChild::Candidate(c) = child {
                    c.generation = None;
                }
            }
        }
        AnswerMode::Correct | AnswerMode::SsrcCollision => {}
    }
    let to = request.attr("from").unwrap().to_owned();
    let iq = stanza::iq("set", Some(&to), answer.to_element());
    let result = handle.send_iq(iq, Duration::from_secs(5)).await;
    let accepted = match &result {
        Ok(_) => Ok(()),
        Err(jigasi_xmpp_io::IqError::ErrorResponse { error, .. }) => Err(error.condition.clone()),
        Err(other) => Err(other.to_string()),
    };
    state.lock().unwrap().accept_result = Some(accepted.clone());
    state.lock().unwrap().own_ssrc = own;
    if accepted.is_err() {
        return None;
    }
    let offer_transport = offer.first_transport().unwrap();
    let fingerprint = offer_transport.fingerprint().unwrap();
    let remote = RemoteParams {
        ice: IceParams {
            ufrag: offer_transport.ufrag.clone().unwrap(),
            pwd: offer_transport.pwd.clone().unwrap(),
        },
        candidates: offer_transport
            .candidates()
            .map(|c| jigasi_bridge::Candidate {
                foundation: c.foundation.clone(),
                priority: c.priority,
                addr: SocketAddr::new(c.ip.parse().unwrap(), c.port),
                kind: CandidateKind::Host,
                related: None,
            })
            .collect(),
        fingerprint_hash: fingerprint.hash.clone(),
        fingerprint: fingerprint.value.clone(),
    };
    leg.start(&remote).unwrap();
    leg.add_send_ssrc(Ssrc::new(own)).unwrap();
    for source in offered {
        if source.owner() != Some("jvb") {
            leg.add_receive_ssrc(source.ssrc).unwrap();
        }
    }
    Some(Media {
        leg,
        socket: Arc::new(socket),
        local,
        own: Ssrc::new(own),
        encoder: opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap(),
        decoders: BTreeMap::new(),
        phase: 0.0,
        rtp_time: rand::random(),
        next_timeout: Instant::now(),
    })
}

/// Dominant frequency of i16 samples at 48 kHz (skips the first 200 ms of codec warm-up).
pub fn dominant_hz(samples: &[i16]) -> Option<f64> {
    let floats: Vec<f32> = samples
        .iter()
        .skip(9_600)
        .map(|s| f32::from(*s) / 32_768.0)
        .collect();
    jigasi_testpeers::audio::dominant_frequency_of(&floats, 48_000)
}
