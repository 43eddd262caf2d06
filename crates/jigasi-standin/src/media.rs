//! The bridge side of one conference (jitsi-protocols.md §5, §8 items 8-10): one tokio task owns
//! every endpoint's [`MediaLeg`] (`Role::Bridge`: ICE controlling, DTLS server) with its own UDP
//! socket, and the simulated web participants' audio.
//!
//! Like JVB without SSRC rewriting it is a forwarding *translator*: each signalled sender SSRC is
//! forwarded unchanged to every other endpoint it was signalled to; RTP from unsignalled SSRCs is
//! dropped (the leg does that); a force-muted sender's audio is dropped; audio-level-127 packets
//! are discarded after three in a row (§5.3). What the bridge accepts from an endpoint is also
//! Opus-decoded and kept, so tests can check what a gateway sent.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jigasi_bridge::{Candidate, LegConfig, LegEvent, LegOutput, MediaLeg, RemoteParams, Role};
use jigasi_types::Ssrc;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use rand::{Rng, SeedableRng};

use crate::audio::{
    AudioError, AudioSource, FRAME_SAMPLES, Frame, Player, SAMPLE_RATE, audio_level,
};
use crate::event::{EventSink, StandInEvent};
use crate::offer::LocalTransport;
use jigasi_media::TelephoneEvent;

/// Counters of one endpoint, as the bridge saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointMediaStats {
    /// ICE and DTLS are up.
    pub connected: bool,
    /// RTP packets accepted from the endpoint (signalled SSRCs only).
    pub packets_received: u64,
    /// Of those, dropped because the endpoint is force-muted.
    pub dropped_muted: u64,
    /// Of those, discarded as silence (level 127, after three in a row).
    pub dropped_silence: u64,
    /// Of those, not decodable as Opus.
    pub decode_errors: u64,
    /// RTP packets the bridge sent to the endpoint (simulated participants and forwarded).
    pub packets_sent: u64,
    /// The RFC 6464 level of the last packet received from the endpoint.
    pub last_level: Option<u8>,
}

/// When one RTP packet from an endpoint reached the bridge (for latency and loss measurements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// When the bridge handled the datagram.
    pub at: Instant,
    /// Extended sequence number.
    pub seq: u64,
    /// RTP timestamp (48 kHz).
    pub rtp_time: u32,
    /// Samples its decoding added to [`EndpointMedia::audio`] (0 when not decoded: muted,
    /// discarded as silence, audio not kept, or undecodable).
    pub decoded_samples: u32,
}

/// What the media task reports about one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointMedia {
    /// Decoded audio the bridge accepted from the endpoint, 48 kHz mono, oldest first.
    pub audio: Vec<i16>,
    /// Counters.
    pub stats: EndpointMediaStats,
    /// The newest packet arrivals (at most [`MAX_ARRIVALS`], oldest first), every accepted
    /// packet including muted and silence-discarded ones.
    pub arrivals: Vec<Arrival>,
    /// RFC 4733 telephone events the endpoint sent (payload type 126), in arrival order.
    pub telephone_events: Vec<ReceivedTelephoneEvent>,
}

/// One RFC 4733 telephone-event packet an endpoint sent (DTMF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedTelephoneEvent {
    /// The sending SSRC.
    pub ssrc: Ssrc,
    /// RTP time of the event's start (the same for every packet of one event).
    pub rtp_time: u32,
    /// The event block; its duration is in the telephone-event clock (8 kHz for Jitsi's PT 126).
    pub event: TelephoneEvent,
}

/// Jitsi's payload types (jitsi-protocols.md §4): Opus and telephone-event.
const OPUS_PT: u8 = 111;
const TELEPHONE_EVENT_PT: u8 = 126;

/// How many packet arrivals the bridge keeps per endpoint (60 s of 20 ms packets).
pub const MAX_ARRIVALS: usize = 3_000;
/// How many sent frames a traced speaker keeps.
const MAX_TRACE: usize = 10_000;

/// Commands to a conference's media task.
#[derive(Debug)]
pub(crate) enum MediaCommand {
    Allocate {
        endpoint: String,
        reply: oneshot::Sender<Result<LocalTransport, String>>,
    },
    Start {
        endpoint: String,
        remote: RemoteParams,
        receive: Vec<Ssrc>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    AddCandidates {
        endpoint: String,
        candidates: Vec<Candidate>,
    },
    AddReceive {
        endpoint: String,
        ssrcs: Vec<Ssrc>,
    },
    RemoveReceive {
        endpoint: String,
        ssrcs: Vec<Ssrc>,
    },
    Announce {
        endpoint: String,
        ssrcs: Vec<Ssrc>,
    },
    Withdraw {
        endpoint: String,
        ssrcs: Vec<Ssrc>,
    },
    RemoveEndpoint {
        endpoint: String,
    },
    SetMuted {
        owner: String,
        muted: bool,
    },
    AddSimulated {
        ssrc: Ssrc,
        owner: String,
        source: AudioSource,
        reply: oneshot::Sender<Result<(), AudioError>>,
    },
    RemoveSimulated {
        ssrc: Ssrc,
    },
    Query {
        endpoint: String,
        reply: oneshot::Sender<Option<EndpointMedia>>,
    },
    /// Whether to decode and keep what endpoints send (arrivals are always logged).
    KeepAudio {
        keep: bool,
    },
    /// Drop this share (0..=1) of the RTP datagrams sent to endpoints once connected (network
    /// loss on the bridge leg), with a seeded RNG.
    SendLoss {
        share: f64,
        seed: u64,
    },
    /// The send log of a traced pre-encoded speaker.
    SpeakerTrace {
        owner: String,
        reply: oneshot::Sender<Vec<(usize, Instant)>>,
    },
    Expire,
}

/// A cloneable handle to a conference's media task; the task ends when every handle is gone.
#[derive(Debug, Clone)]
pub(crate) struct MediaHandle {
    commands: mpsc::UnboundedSender<MediaCommand>,
}

impl MediaHandle {
    /// Starts the media task of `room`.
    pub(crate) fn spawn(
        room: String,
        bind_ip: IpAddr,
        max_received: Duration,
        events: EventSink,
    ) -> Self {
        let (commands, inbox) = mpsc::unbounded_channel();
        let (datagram_tx, datagrams) = mpsc::channel(DATAGRAM_QUEUE);
        let max_samples = usize::try_from(max_received.as_millis()).unwrap_or(usize::MAX / 48) * 48;
        let task = MediaTask {
            room,
            bind_ip,
            max_samples,
            events,
            endpoints: BTreeMap::new(),
            simulated: BTreeMap::new(),
            muted: BTreeSet::new(),
            silence_runs: BTreeMap::new(),
            next_endpoint_id: 0,
            datagram_tx,
            keep_audio: true,
            send_loss: None,
        };
        tokio::spawn(task.run(inbox, datagrams));
        Self { commands }
    }

    /// Sends a command; a gone task is ignored (the conference is over).
    pub(crate) fn send(&self, command: MediaCommand) {
        let _ = self.commands.send(command);
    }

    /// Binds a socket and creates the leg of `endpoint`; returns the transport to offer.
    pub(crate) async fn allocate(&self, endpoint: &str) -> Result<LocalTransport, String> {
        let (reply, answer) = oneshot::channel();
        self.send(MediaCommand::Allocate {
            endpoint: endpoint.to_owned(),
            reply,
        });
        answer
            .await
            .map_err(|_| "the media task is gone".to_owned())?
    }

    /// Starts ICE/DTLS of `endpoint` with the gateway's answer.
    pub(crate) async fn start(
        &self,
        endpoint: &str,
        remote: RemoteParams,
        receive: Vec<Ssrc>,
    ) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.send(MediaCommand::Start {
            endpoint: endpoint.to_owned(),
            remote,
            receive,
            reply,
        });
        answer
            .await
            .map_err(|_| "the media task is gone".to_owned())?
    }

    /// Adds a simulated sender.
    pub(crate) async fn add_simulated(
        &self,
        ssrc: Ssrc,
        owner: &str,
        source: AudioSource,
    ) -> Result<(), AudioError> {
        let (reply, answer) = oneshot::channel();
        self.send(MediaCommand::AddSimulated {
            ssrc,
            owner: owner.to_owned(),
            source,
            reply,
        });
        // A gone task means the conference ended; nothing to play to.
        answer.await.unwrap_or(Ok(()))
    }

    /// What the bridge received from `endpoint`.
    pub(crate) async fn query(&self, endpoint: &str) -> Option<EndpointMedia> {
        let (reply, answer) = oneshot::channel();
        self.send(MediaCommand::Query {
            endpoint: endpoint.to_owned(),
            reply,
        });
        answer.await.ok().flatten()
    }
}

struct Datagram {
    endpoint_id: u64,
    source: SocketAddr,
    destination: SocketAddr,
    contents: Vec<u8>,
}

struct Endpoint {
    id: u64,
    leg: MediaLeg,
    socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
    started: bool,
    /// SSRCs signalled to this endpoint (we may send them once started).
    announced: BTreeSet<Ssrc>,
    /// SSRCs declared on the leg for sending.
    sending: BTreeSet<Ssrc>,
    decoders: BTreeMap<Ssrc, opus::Decoder>,
    /// RTP time of the last packet decoded per SSRC: a later gap (discarded silence, loss) is
    /// kept as silence so the received audio stays on the sender's timeline.
    last_decoded: BTreeMap<Ssrc, u32>,
    received: VecDeque<i16>,
    arrivals: VecDeque<Arrival>,
    telephone_events: Vec<ReceivedTelephoneEvent>,
    stats: EndpointMediaStats,
    next_timeout: Option<Instant>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

struct Simulated {
    owner: String,
    player: Player,
    /// `None` for pre-encoded audio.
    encoder: Option<opus::Encoder>,
    rtp_time: u32,
    /// `(frame index, sent at)` of a traced pre-encoded speaker.
    trace: Option<VecDeque<(usize, Instant)>>,
}

/// One received or generated audio packet on its way through the bridge.
/// Gaps longer than this (10 s at 48 kHz) are a new stream, not silence to fill.
const MAX_GAP_SAMPLES: u32 = 480_000;

struct Packet {
    ssrc: Ssrc,
    /// Payload type: Opus, or telephone-event (forwarded as such, never decoded).
    pt: u8,
    /// Extended sequence number (0 for generated packets).
    seq: u64,
    rtp_time: u32,
    payload: Arc<[u8]>,
    level: Option<u8>,
    voice: Option<bool>,
}

struct MediaTask {
    room: String,
    bind_ip: IpAddr,
    max_samples: usize,
    events: EventSink,
    endpoints: BTreeMap<String, Endpoint>,
    simulated: BTreeMap<Ssrc, Simulated>,
    /// Force-muted owners (endpoints and simulated participants).
    muted: BTreeSet<String>,
    /// Consecutive level-127 packets per sender SSRC.
    silence_runs: BTreeMap<Ssrc, u32>,
    next_endpoint_id: u64,
    datagram_tx: mpsc::Sender<Datagram>,
    keep_audio: bool,
    send_loss: Option<(f64, rand::rngs::StdRng)>,
}

impl MediaTask {
    async fn run(
        mut self,
        mut inbox: mpsc::UnboundedReceiver<MediaCommand>,
        mut datagrams: mpsc::Receiver<Datagram>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let deadline = self
                .endpoints
                .values()
                .filter_map(|e| e.next_timeout)
                .min()
                .map_or_else(
                    || tokio::time::Instant::now() + Duration::from_secs(3600),
                    tokio::time::Instant::from_std,
                );
            tokio::select! {
                command = inbox.recv() => {
                    let Some(command) = command else { break };
                    self.handle_command(command).await;
                }
                Some(datagram) = datagrams.recv() => self.handle_datagram(datagram),
                _ = tick.tick() => self.play_simulated(),
                () = tokio::time::sleep_until(deadline) => self.handle_timeouts(),
            }
        }
    }

    async fn handle_command(&mut self, command: MediaCommand) {
        let now = Instant::now();
        match command {
            MediaCommand::Allocate { endpoint, reply } => {
                let result = self.allocate(&endpoint, now).await;
                let _ = reply.send(result);
            }
            MediaCommand::Start {
                endpoint,
                remote,
                receive,
                reply,
            } => {
                let result = self.start(&endpoint, &remote, &receive);
                let _ = reply.send(result);
                self.pump(now, endpoint);
            }
            MediaCommand::AddCandidates {
                endpoint,
                candidates,
            } => {
                if let Some(e) = self.endpoints.get_mut(&endpoint) {
                    for candidate in &candidates {
                        if let Err(error) = e.leg.add_remote_candidate(candidate) {
                            tracing::debug!(%error, "remote candidate ignored");
                        }
                    }
                }
                self.pump(now, endpoint);
            }
            MediaCommand::AddReceive { endpoint, ssrcs } => {
                if let Some(e) = self.endpoints.get_mut(&endpoint) {
                    for ssrc in ssrcs {
                        if let Err(error) = e.leg.add_receive_ssrc(ssrc) {
                            tracing::warn!(%error, "receive SSRC not added");
                        }
                    }
                }
            }
            MediaCommand::RemoveReceive { endpoint, ssrcs } => {
                if let Some(e) = self.endpoints.get_mut(&endpoint) {
                    for ssrc in ssrcs {
                        e.leg.remove_receive_ssrc(ssrc);
                    }
                }
            }
            MediaCommand::Announce { endpoint, ssrcs } => {
                if let Some(e) = self.endpoints.get_mut(&endpoint) {
                    e.announced.extend(ssrcs);
                    declare_sending(e);
                }
            }
            MediaCommand::Withdraw { endpoint, ssrcs } => {
                if let Some(e) = self.endpoints.get_mut(&endpoint) {
                    for ssrc in ssrcs {
                        e.announced.remove(&ssrc);
                        // str0m cannot undeclare a send stream; we just stop sending on it.
                        e.sending.remove(&ssrc);
                    }
                }
            }
            MediaCommand::RemoveEndpoint { endpoint } => {
                self.endpoints.remove(&endpoint);
            }
            MediaCommand::SetMuted { owner, muted } => {
                if muted {
                    self.muted.insert(owner);
                } else {
                    self.muted.remove(&owner);
                }
            }
            MediaCommand::AddSimulated {
                ssrc,
                owner,
                source,
                reply,
            } => {
                let result = Player::new(&source).and_then(|player| {
                    let encoder = if player.needs_encoder() {
                        Some(
                            opus::Encoder::new(
                                SAMPLE_RATE,
                                opus::Channels::Mono,
                                opus::Application::Voip,
                            )
                            .map_err(|e| AudioError::Codec(e.to_string()))?,
                        )
                    } else {
                        None
                    };
                    let trace = matches!(&source, AudioSource::Preencoded(audio) if audio.trace)
                        .then(VecDeque::new);
                    self.simulated.insert(
                        ssrc,
                        Simulated {
                            owner,
                            player,
                            encoder,
                            rtp_time: rand::random(),
                            trace,
                        },
                    );
                    Ok(())
                });
                let _ = reply.send(result);
            }
            MediaCommand::RemoveSimulated { ssrc } => {
                self.simulated.remove(&ssrc);
            }
            MediaCommand::Query { endpoint, reply } => {
                let media = self.endpoints.get(&endpoint).map(|e| EndpointMedia {
                    audio: e.received.iter().copied().collect(),
                    stats: e.stats.clone(),
                    arrivals: e.arrivals.iter().copied().collect(),
                    telephone_events: e.telephone_events.clone(),
                });
                let _ = reply.send(media);
            }
            MediaCommand::KeepAudio { keep } => self.keep_audio = keep,
            MediaCommand::SendLoss { share, seed } => {
                self.send_loss = (share > 0.0)
                    .then(|| (share.min(1.0), rand::rngs::StdRng::seed_from_u64(seed)));
            }
            MediaCommand::SpeakerTrace { owner, reply } => {
                let trace = self
                    .simulated
                    .values()
                    .find(|s| s.owner == owner)
                    .and_then(|s| s.trace.as_ref())
                    .map(|t| t.iter().copied().collect())
                    .unwrap_or_default();
                let _ = reply.send(trace);
            }
            MediaCommand::Expire => {
                self.endpoints.clear();
            }
        }
    }

    async fn allocate(&mut self, endpoint: &str, now: Instant) -> Result<LocalTransport, String> {
        let socket = UdpSocket::bind(SocketAddr::new(self.bind_ip, 0))
            .await
            .map_err(|e| format!("bind {}: {e}", self.bind_ip))?;
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        let socket = Arc::new(socket);
        let mut leg = MediaLeg::new(LegConfig::new(Role::Bridge, vec![local]), now)
            .map_err(|e| e.to_string())?;
        let ice = leg.local_ice();
        let (fingerprint_hash, fingerprint) = leg.local_fingerprint();
        let candidates = leg
            .local_candidates()
            .into_iter()
            .map(|c| (c.addr, c.priority))
            .collect();
        self.next_endpoint_id += 1;
        let id = self.next_endpoint_id;
        let reader = tokio::spawn(read_socket(
            id,
            Arc::clone(&socket),
            local,
            self.datagram_tx.clone(),
        ));
        self.endpoints.insert(
            endpoint.to_owned(),
            Endpoint {
                id,
                leg,
                socket,
                reader,
                started: false,
                announced: BTreeSet::new(),
                sending: BTreeSet::new(),
                decoders: BTreeMap::new(),
                last_decoded: BTreeMap::new(),
                received: VecDeque::new(),
                arrivals: VecDeque::new(),
                telephone_events: Vec::new(),
                stats: EndpointMediaStats::default(),
                next_timeout: None,
            },
        );
        Ok(LocalTransport {
            ufrag: ice.ufrag,
            pwd: ice.pwd,
            fingerprint_hash,
            fingerprint,
            candidates,
        })
    }

    fn start(
        &mut self,
        endpoint: &str,
        remote: &RemoteParams,
        receive: &[Ssrc],
    ) -> Result<(), String> {
        let e = self
            .endpoints
            .get_mut(endpoint)
            .ok_or_else(|| format!("no endpoint {endpoint}"))?;
        e.leg.start(remote).map_err(|error| error.to_string())?;
        e.started = true;
        for ssrc in receive {
            e.leg
                .add_receive_ssrc(*ssrc)
                .map_err(|error| error.to_string())?;
        }
        declare_sending(e);
        Ok(())
    }

    fn handle_datagram(&mut self, datagram: Datagram) {
        let now = Instant::now();
        let Some((name, endpoint)) = self
            .endpoints
            .iter_mut()
            .find(|(_, e)| e.id == datagram.endpoint_id)
        else {
            return;
        };
        let name = name.clone();
        if let Err(error) = endpoint.leg.handle_receive(
            now,
            datagram.source,
            datagram.destination,
            &datagram.contents,
        ) {
            self.fail(&name, &error.to_string());
            return;
        }
        self.pump(now, name);
    }

    fn handle_timeouts(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .endpoints
            .iter()
            .filter(|(_, e)| e.next_timeout.is_some_and(|t| t <= now))
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            let Some(endpoint) = self.endpoints.get_mut(&name) else {
                continue;
            };
            if let Err(error) = endpoint.leg.handle_timeout(now) {
                self.fail(&name, &error.to_string());
                continue;
            }
            self.pump(now, name);
        }
    }

    /// Drains `first` and every leg that forwarded audio touched, until all are drained.
    fn pump(&mut self, now: Instant, first: String) {
        let mut work = vec![first];
        while let Some(name) = work.pop() {
            for packet in self.drain(&name) {
                self.accept_from_endpoint(now, &name, &packet);
                work.extend(self.forward(now, Some(&name), &packet));
            }
        }
    }

    /// Drains one leg's output: datagrams go out, audio comes back to the caller.
    fn drain(&mut self, name: &str) -> Vec<Packet> {
        let mut audio = Vec::new();
        let mut failure = None;
        let mut connected = false;
        if let Some(endpoint) = self.endpoints.get_mut(name) {
            loop {
                match endpoint.leg.poll_output() {
                    Ok(LegOutput::Timeout(at)) => {
                        endpoint.next_timeout = Some(at);
                        break;
                    }
                    Ok(LegOutput::Transmit(transmit)) => {
                        if endpoint.stats.connected
                            && is_rtp(&transmit.contents)
                            && let Some((share, rng)) = &mut self.send_loss
                            && rng.random_bool(*share)
                        {
                            continue;
                        }
                        // UDP: a full send buffer drops the datagram, as the network would.
                        let _ = endpoint
                            .socket
                            .try_send_to(&transmit.contents, transmit.destination);
                    }
                    Ok(LegOutput::Event(LegEvent::Connected)) => {
                        endpoint.stats.connected = true;
                        connected = true;
                        declare_sending(endpoint);
                    }
                    Ok(LegOutput::Event(LegEvent::Disconnected)) => {
                        endpoint.stats.connected = false;
                    }
                    Ok(LegOutput::Event(LegEvent::Audio(packet))) => audio.push(Packet {
                        ssrc: packet.ssrc,
                        pt: packet.payload_type,
                        seq: packet.seq,
                        rtp_time: packet.rtp_time,
                        payload: packet.payload,
                        level: packet.level,
                        voice: packet.voice,
                    }),
                    Ok(LegOutput::Event(LegEvent::SourceActivity { .. })) => {}
                    Err(error) => {
                        failure = Some(error.to_string());
                        break;
                    }
                }
            }
        }
        if connected {
            self.events.emit(StandInEvent::MediaConnected {
                room: self.room.clone(),
                nick: name.to_owned(),
            });
        }
        if let Some(reason) = failure {
            self.fail(name, &reason);
            return Vec::new();
        }
        audio
    }

    /// Books a packet a gateway sent, and decodes what the bridge accepts from it.
    fn accept_from_endpoint(&mut self, now: Instant, name: &str, packet: &Packet) {
        let muted = self.muted.contains(name);
        let discard = self.discard_silence(packet);
        let max_samples = self.max_samples;
        let keep_audio = self.keep_audio;
        let Some(endpoint) = self.endpoints.get_mut(name) else {
            return;
        };
        endpoint.stats.packets_received += 1;
        endpoint.stats.last_level = packet.level;
        if endpoint.arrivals.len() >= MAX_ARRIVALS {
            endpoint.arrivals.pop_front();
        }
        endpoint.arrivals.push_back(Arrival {
            at: now,
            seq: packet.seq,
            rtp_time: packet.rtp_time,
            decoded_samples: 0,
        });
        if muted {
            endpoint.stats.dropped_muted += 1;
            return;
        }
        if packet.pt == TELEPHONE_EVENT_PT {
            // RFC 4733 DTMF: forwarded like audio, kept for asserts, never decoded as Opus.
            if let Ok(event) = TelephoneEvent::parse(&packet.payload) {
                endpoint.telephone_events.push(ReceivedTelephoneEvent {
                    ssrc: packet.ssrc,
                    rtp_time: packet.rtp_time,
                    event,
                });
            }
            return;
        }
        if discard {
            endpoint.stats.dropped_silence += 1;
            return;
        }
        if !keep_audio || max_samples == 0 {
            return;
        }
        let decoder = match endpoint.decoders.entry(packet.ssrc) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                match opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono) {
                    Ok(decoder) => entry.insert(decoder),
                    Err(_) => {
                        endpoint.stats.decode_errors += 1;
                        return;
                    }
                }
            }
        };
        let mut pcm = [0i16; MAX_DECODED_SAMPLES];
        match decoder.decode(&packet.payload, &mut pcm, false) {
            Ok(samples) => {
                if let Some(arrival) = endpoint.arrivals.back_mut() {
                    arrival.decoded_samples = u32::try_from(samples).unwrap_or(u32::MAX);
                }
                let frame = u32::try_from(samples).unwrap_or(u32::MAX);
                if let Some(last) = endpoint.last_decoded.insert(packet.ssrc, packet.rtp_time) {
                    // Opus RTP time runs at 48 kHz, like the decoded samples.
                    let gap = packet.rtp_time.wrapping_sub(last).saturating_sub(frame);
                    if gap > 0 && gap < MAX_GAP_SAMPLES {
                        let gap = usize::try_from(gap).unwrap_or(0);
                        endpoint.received.extend(std::iter::repeat_n(0i16, gap));
                    }
                }
                endpoint.received.extend(pcm.iter().take(samples).copied());
                let excess = endpoint.received.len().saturating_sub(max_samples);
                endpoint.received.drain(..excess);
            }
            Err(_) => endpoint.stats.decode_errors += 1,
        }
    }

    /// §5.3: level-127 packets are forwarded three times in a row, then discarded.
    fn discard_silence(&mut self, packet: &Packet) -> bool {
        let run = self.silence_runs.entry(packet.ssrc).or_insert(0);
        if packet.level == Some(SILENCE_LEVEL) {
            *run += 1;
            *run > FORWARDED_SILENCE_LIMIT
        } else {
            *run = 0;
            false
        }
    }

    /// Sends `packet` to every other endpoint it was signalled to; returns who got it.
    fn forward(&mut self, now: Instant, from: Option<&str>, packet: &Packet) -> Vec<String> {
        if let Some(from) = from
            && (self.muted.contains(from)
                || self.silence_runs.get(&packet.ssrc).copied().unwrap_or(0)
                    > FORWARDED_SILENCE_LIMIT)
        {
            return Vec::new();
        }
        let mut touched = Vec::new();
        for (name, endpoint) in &mut self.endpoints {
            if Some(name.as_str()) == from
                || !endpoint.stats.connected
                || !endpoint.sending.contains(&packet.ssrc)
            {
                continue;
            }
            let sent = endpoint.leg.send_rtp(
                now,
                packet.ssrc,
                packet.pt,
                packet.rtp_time,
                &packet.payload,
                packet.level.unwrap_or(SILENCE_LEVEL),
                packet.voice.unwrap_or(false),
            );
            if matches!(sent, Ok(true)) {
                endpoint.stats.packets_sent += 1;
                touched.push(name.clone());
            }
        }
        touched
    }

    /// One 20 ms frame from every simulated participant.
    fn play_simulated(&mut self) {
        let now = Instant::now();
        let mut packets = Vec::new();
        for (ssrc, simulated) in &mut self.simulated {
            let frame = simulated.player.next();
            let rtp_time = simulated.rtp_time;
            simulated.rtp_time = simulated.rtp_time.wrapping_add(FRAME_SAMPLES as u32);
            if self.muted.contains(&simulated.owner) {
                continue;
            }
            let (payload, level): (Arc<[u8]>, u8) = match frame {
                Frame::Encoded(index, frame) => {
                    if let Some(trace) = &mut simulated.trace {
                        if trace.len() >= MAX_TRACE {
                            trace.pop_front();
                        }
                        trace.push_back((index, now));
                    }
                    (frame.payload.into(), frame.level)
                }
                Frame::Pcm(pcm) => {
                    let Some(encoder) = &mut simulated.encoder else {
                        continue;
                    };
                    let mut encoded = [0u8; MAX_OPUS_PACKET];
                    let Ok(length) = encoder.encode(&pcm[..], &mut encoded) else {
                        continue;
                    };
                    (encoded[..length].into(), audio_level(&pcm[..]))
                }
            };
            packets.push(Packet {
                ssrc: *ssrc,
                pt: OPUS_PT,
                seq: 0,
                rtp_time,
                payload,
                level: Some(level),
                voice: Some(level < SILENCE_LEVEL),
            });
        }
        let mut touched = BTreeSet::new();
        for packet in packets {
            if self.discard_silence(&packet) {
                continue;
            }
            touched.extend(self.forward(now, None, &packet));
        }
        for name in touched {
            self.pump(now, name);
        }
    }

    fn fail(&mut self, name: &str, reason: &str) {
        if self.endpoints.remove(name).is_some() {
            self.events.emit(StandInEvent::MediaFailed {
                room: self.room.clone(),
                nick: name.to_owned(),
                reason: reason.to_owned(),
            });
        }
    }
}

/// Declares every announced SSRC for sending once the leg is started.
fn declare_sending(endpoint: &mut Endpoint) {
    if !endpoint.started {
        return;
    }
    let pending: Vec<Ssrc> = endpoint
        .announced
        .difference(&endpoint.sending)
        .copied()
        .collect();
    for ssrc in pending {
        match endpoint.leg.add_send_ssrc(ssrc) {
            Ok(()) => {
                endpoint.sending.insert(ssrc);
            }
            Err(error) => tracing::warn!(%error, %ssrc, "cannot send SSRC"),
        }
    }
}

async fn read_socket(
    endpoint_id: u64,
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    datagrams: mpsc::Sender<Datagram>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((length, source)) = socket.recv_from(&mut buf).await else {
            // ICMP errors (port unreachable) surface here on some systems; keep reading.
            tokio::task::yield_now().await;
            continue;
        };
        let datagram = Datagram {
            endpoint_id,
            source,
            destination: local,
            contents: buf[..length].to_vec(),
        };
        if datagrams.send(datagram).await.is_err() {
            return;
        }
    }
}

/// Whether a datagram is (S)RTP rather than STUN, DTLS or RTCP (RFC 7983 and RFC 5761).
fn is_rtp(datagram: &[u8]) -> bool {
    match datagram {
        [first, second, ..] => (128..=191).contains(first) && !(64..96).contains(&(second & 0x7f)),
        _ => false,
    }
}

/// RFC 6464 level of digital silence.
const SILENCE_LEVEL: u8 = 127;
/// JVB's `forwarded-silence-packets-limit` (§5.3).
const FORWARDED_SILENCE_LIMIT: u32 = 3;
/// Largest Opus frame: 120 ms at 48 kHz.
const MAX_DECODED_SAMPLES: usize = 5_760;
/// Output buffer for one encoded 20 ms frame.
const MAX_OPUS_PACKET: usize = 1_500;
/// Datagrams waiting for the media task.
const DATAGRAM_QUEUE: usize = 4_096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rtp_is_subject_to_simulated_loss() {
        // RTP with Opus PT 111, with and without the marker bit.
        assert!(is_rtp(&[0x80, 111, 0, 1]));
        assert!(is_rtp(&[0x90, 0x80 | 111, 0, 1]));
        // RTCP sender report (200) and receiver report (201), STUN, DTLS, runts.
        assert!(!is_rtp(&[0x80, 200, 0, 6]));
        assert!(!is_rtp(&[0x81, 201, 0, 7]));
        assert!(!is_rtp(&[0x00, 0x01, 0, 0]));
        assert!(!is_rtp(&[22, 0xfe, 0xfd]));
        assert!(!is_rtp(&[0x80]));
        assert!(!is_rtp(&[]));
    }
}
