//! [`MediaLeg`]: one str0m `Rtc` configured from Jingle-shaped parameters.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jigasi_types::Ssrc;
use str0m::change::DirectApi;
use str0m::config::Fingerprint;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, MediaKind, Mid, Pt, Rid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionValues, RtpWrite, SeqNo};
use str0m::{Event, IceConnectionState, IceCreds, Input, Output, Rtc, RtcConfig};

/// The one media line Jitsi uses for audio.
const AUDIO_MID: &str = "audio";

/// Which side of the bridge connection this leg is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// jigasi-rs toward JVB: ICE controlled, DTLS client (`setup="active"`).
    Gateway,
    /// The JVB stand-in toward the gateway: ICE controlling, DTLS server.
    Bridge,
}

/// Static settings of a leg.
#[derive(Debug, Clone)]
pub struct LegConfig {
    /// Which side we are.
    pub role: Role,
    /// Our host candidates: the addresses of the UDP sockets the driver bound (from the
    /// `--min-port`..`--max-port` range).
    pub local_addrs: Vec<SocketAddr>,
    /// Opus payload type (Jitsi: 111).
    pub opus_pt: u8,
    /// RTP header extension id of `urn:ietf:params:rtp-hdrext:ssrc-audio-level` (Jitsi: 1).
    pub audio_level_ext: u8,
    /// RFC 4733 `telephone-event/8000` payload type (Jitsi: 126): DTMF pressed in the
    /// conference arrives on the speaker's SSRC with it.
    pub telephone_event_pt: u8,
}

impl LegConfig {
    /// Jitsi's defaults: Opus PT 111, telephone-event PT 126, audio level extension id 1.
    pub fn new(role: Role, local_addrs: Vec<SocketAddr>) -> Self {
        Self {
            role,
            local_addrs,
            opus_pt: 111,
            audio_level_ext: 1,
            telephone_event_pt: 126,
        }
    }
}

/// ICE username fragment and password (Jingle `<transport ufrag pwd>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceParams {
    /// `ufrag`.
    pub ufrag: String,
    /// `pwd`.
    pub pwd: String,
}

/// ICE candidate type (Jingle `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateKind {
    /// `host`.
    Host,
    /// `srflx`.
    ServerReflexive,
    /// `prflx`.
    PeerReflexive,
    /// `relay`.
    Relayed,
}

impl CandidateKind {
    fn sdp_name(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::ServerReflexive => "srflx",
            Self::PeerReflexive => "prflx",
            Self::Relayed => "relay",
        }
    }
}

/// A remote ICE candidate as Jingle carries it (UDP, component 1: Jitsi bundles and muxes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `foundation`.
    pub foundation: String,
    /// `priority`.
    pub priority: u32,
    /// `ip` and `port`.
    pub addr: SocketAddr,
    /// `type`.
    pub kind: CandidateKind,
    /// `rel-addr` / `rel-port`, for reflexive and relayed candidates.
    pub related: Option<SocketAddr>,
}

/// What the remote side told us (the Jingle offer, or for the stand-in, the gateway's answer).
#[derive(Debug, Clone)]
pub struct RemoteParams {
    /// Remote ICE credentials.
    pub ice: IceParams,
    /// Remote candidates (more may come with `transport-info`: [`MediaLeg::add_remote_candidate`]).
    pub candidates: Vec<Candidate>,
    /// DTLS fingerprint hash function, e.g. `sha-256`.
    pub fingerprint_hash: String,
    /// DTLS fingerprint value, hex bytes separated by colons.
    pub fingerprint: String,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The local address (one of [`LegConfig::local_addrs`]) to send from.
    pub source: SocketAddr,
    /// Where to.
    pub destination: SocketAddr,
    /// The bytes.
    pub contents: Vec<u8>,
}

/// One received RTP packet, decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPacket {
    /// The sender's SSRC: which remote speaker.
    pub ssrc: Ssrc,
    /// Extended (rollover-counted) sequence number.
    pub seq: u64,
    /// RTP payload type: Opus (111) or an RFC 4733 telephone event (126 from Jitsi).
    pub payload_type: u8,
    /// RTP timestamp (48 kHz for Opus).
    pub rtp_time: u32,
    /// RFC 6464 level in −dBov (0 loudest, 127 silence), if the extension was present.
    pub level: Option<u8>,
    /// RFC 6464 voice-activity bit, if present.
    pub voice: Option<bool>,
    /// RTP payload (one Opus packet).
    pub payload: Arc<[u8]>,
}

/// What str0m measured on the leg (its RTCP and ICE statistics), for call quality metrics.
/// Every field stays `None` until the first measurement; later ones replace earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LegStats {
    /// Interarrival jitter of what we receive (the remote speakers), as in our last receiver
    /// report.
    pub inbound_jitter: Option<Duration>,
    /// Fraction (0..=1) of what we receive that was lost, as in our last receiver report.
    pub inbound_loss: Option<f32>,
    /// Interarrival jitter of what we send, as the remote side's last receiver report says.
    pub outbound_jitter: Option<Duration>,
    /// Fraction (0..=1) of what we send that was lost, averaged over the remote side's receiver
    /// reports since the previous measurement.
    pub outbound_loss: Option<f32>,
    /// Round-trip time: from the remote side's receiver reports (LSR/DLSR), else from ICE
    /// consent checks on the selected candidate pair.
    pub rtt: Option<Duration>,
    /// Packets received.
    pub packets_received: u64,
    /// Packets sent.
    pub packets_sent: u64,
}

/// How often str0m measures [`LegStats`].
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Something that happened on the leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// ICE and DTLS are up; media can flow.
    Connected,
    /// ICE lost connectivity (consent failed); it may come back.
    Disconnected,
    /// Audio from a signalled remote SSRC.
    Audio(AudioPacket),
    /// A remote SSRC stopped (about 1.5 s without packets) or started again.
    SourceActivity {
        /// The SSRC.
        ssrc: Ssrc,
        /// `true` when it went quiet.
        paused: bool,
    },
}

/// What [`MediaLeg::poll_output`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegOutput {
    /// Send this datagram.
    Transmit(Transmit),
    /// Something happened.
    Event(LegEvent),
    /// Nothing more until this time (or the next input).
    Timeout(Instant),
}

/// Why an operation on the leg failed. Grouped by who is to blame.
#[derive(Debug, thiserror::Error)]
pub enum LegError {
    /// The remote side sent unusable parameters (bad fingerprint, bad candidate).
    #[error("remote parameters rejected: {0}")]
    PeerMisbehaved(String),
    /// Local misconfiguration (no usable local address).
    #[error("local configuration: {0}")]
    LocalConfig(String),
    /// The leg failed (DTLS handshake failure, str0m internal error); it must be discarded.
    #[error("media leg failed: {0}")]
    Failed(String),
    /// The operation needs [`MediaLeg::start`] first, or an SSRC that is not ours.
    #[error("invalid use of the media leg: {0}")]
    ApiMisuse(&'static str),
}

/// Per sending SSRC: the RTP sequence number to use next.
#[derive(Debug)]
struct SendState {
    next_seq: u64,
}

/// One audio transport toward (or, for the stand-in, from) the bridge.
pub struct MediaLeg {
    rtc: Rtc,
    config: LegConfig,
    started: bool,
    connected: bool,
    send: BTreeMap<Ssrc, SendState>,
    receive: Vec<Ssrc>,
    failed: Option<String>,
    stats: LegStats,
    /// The last round-trip time from RTCP, and from ICE consent checks.
    rtcp_rtt: Option<Duration>,
    ice_rtt: Option<Duration>,
}

impl std::fmt::Debug for MediaLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaLeg")
            .field("role", &self.config.role)
            .field("started", &self.started)
            .field("connected", &self.connected)
            .field("send", &self.send.keys().collect::<Vec<_>>())
            .field("receive", &self.receive)
            .finish_non_exhaustive()
    }
}

impl MediaLeg {
    /// A leg with a fresh DTLS certificate and ICE credentials, and host candidates for
    /// `config.local_addrs`. Nothing is sent before [`MediaLeg::start`].
    pub fn new(config: LegConfig, now: Instant) -> Result<Self, LegError> {
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_opus(true, false)
            // Map only what Jingle signals: with sdes:mid mapped, an unsignalled SSRC re-keys a
            // declared stream (str0m-multi-ssrc.md, "Pitfalls").
            .clear_extension_map()
            .set_extension(config.audio_level_ext, Extension::AudioLevel)
            .set_rtp_mode(true)
            .set_stats_interval(Some(STATS_INTERVAL));
        // str0m drops received RTP whose payload type it does not know, even in RTP mode.
        rtc.codec_config().add_config(
            Pt::from(config.telephone_event_pt),
            None,
            Codec::Tele,
            Frequency::EIGHT_KHZ,
            None,
            FormatParams::default(),
        );
        let mut rtc = rtc.build(now);
        if config.local_addrs.is_empty() {
            return Err(LegError::LocalConfig("no local address for ICE".into()));
        }
        for addr in &config.local_addrs {
            let candidate = str0m::Candidate::host(*addr, "udp")
                .map_err(|e| LegError::LocalConfig(format!("host candidate {addr}: {e}")))?;
            rtc.add_local_candidate(candidate);
        }
        Ok(Self {
            rtc,
            config,
            started: false,
            connected: false,
            send: BTreeMap::new(),
            receive: Vec::new(),
            failed: None,
            stats: LegStats::default(),
            rtcp_rtt: None,
            ice_rtt: None,
        })
    }

    /// The latest RTCP and ICE measurements (updated about every second once media flows).
    pub fn stats(&self) -> LegStats {
        self.stats
    }

    /// Our ICE credentials (for the Jingle answer / offer).
    pub fn local_ice(&mut self) -> IceParams {
        let creds = self.rtc.direct_api().local_ice_credentials();
        IceParams {
            ufrag: creds.ufrag,
            pwd: creds.pass,
        }
    }

    /// Our DTLS fingerprint as `(hash, value)`, e.g. `("sha-256", "AB:CD:…")`.
    pub fn local_fingerprint(&mut self) -> (String, String) {
        let fp = self.rtc.direct_api().local_dtls_fingerprint().clone();
        let text = fp.to_string();
        let value = text
            .split_once(' ')
            .map_or_else(String::new, |(_, hex)| hex.to_owned());
        (fp.hash_func, value)
    }

    /// Our host candidates with their ICE priorities, for the Jingle `<candidate>`s.
    pub fn local_candidates(&self) -> Vec<Candidate> {
        self.config
            .local_addrs
            .iter()
            .enumerate()
            .map(|(index, addr)| Candidate {
                foundation: (index + 1).to_string(),
                priority: host_priority(index),
                addr: *addr,
                kind: CandidateKind::Host,
                related: None,
            })
            .collect()
    }

    /// Applies the remote side's ICE credentials, candidates and fingerprint, declares the audio
    /// media and starts ICE and DTLS in this leg's role.
    pub fn start(&mut self, remote: &RemoteParams) -> Result<(), LegError> {
        if self.started {
            return Err(LegError::ApiMisuse("start called twice"));
        }
        let fingerprint: Fingerprint =
            format!("{} {}", remote.fingerprint_hash, remote.fingerprint)
                .parse()
                .map_err(|e| LegError::PeerMisbehaved(format!("fingerprint: {e}")))?;
        if fingerprint.bytes.is_empty() {
            return Err(LegError::PeerMisbehaved("empty fingerprint".into()));
        }
        for candidate in &remote.candidates {
            self.add_remote_candidate(candidate)?;
        }
        let controlling = self.config.role == Role::Bridge;
        let mut api = self.rtc.direct_api();
        api.set_ice_controlling(controlling);
        api.set_remote_ice_credentials(IceCreds {
            ufrag: remote.ice.ufrag.clone(),
            pass: remote.ice.pwd.clone(),
        });
        api.set_remote_fingerprint(fingerprint);
        // Gateway: DTLS client (active). Bridge: DTLS server.
        api.start_dtls(self.config.role == Role::Gateway)
            .map_err(|e| LegError::Failed(format!("start DTLS: {e}")))?;
        api.declare_media(Mid::from(AUDIO_MID), MediaKind::Audio);
        self.started = true;
        Ok(())
    }

    /// A candidate from a later `transport-info`.
    pub fn add_remote_candidate(&mut self, candidate: &Candidate) -> Result<(), LegError> {
        let mut sdp = format!(
            "candidate:{} 1 udp {} {} {} typ {}",
            candidate.foundation,
            candidate.priority,
            candidate.addr.ip(),
            candidate.addr.port(),
            candidate.kind.sdp_name()
        );
        if let Some(related) = candidate.related {
            sdp.push_str(&format!(" raddr {} rport {}", related.ip(), related.port()));
        }
        let parsed = str0m::Candidate::from_sdp_string(&sdp)
            .map_err(|e| LegError::PeerMisbehaved(format!("candidate {sdp:?}: {e}")))?;
        self.rtc.add_remote_candidate(parsed);
        Ok(())
    }

    /// Declares an SSRC we send (the gateway: exactly one, signalled in the answer; the stand-in:
    /// one per simulated participant).
    pub fn add_send_ssrc(&mut self, ssrc: Ssrc) -> Result<(), LegError> {
        if !self.started {
            return Err(LegError::ApiMisuse("add_send_ssrc before start"));
        }
        if self.send.contains_key(&ssrc) {
            return Ok(());
        }
        // Several SSRCs on one (mid, rid=None) do not work in str0m 0.25: give each its own rid.
        // With no rid extension mapped, the rid never goes on the wire.
        let rid = Rid::from(format!("{:08x}", ssrc.get()).as_str());
        self.rtc.direct_api().declare_stream_tx(
            ssrc.get().into(),
            None,
            Mid::from(AUDIO_MID),
            Some(rid),
        );
        // Start below 2^15 so the rollover counter stays 0 (no out-of-band signalling needed).
        let next_seq = u64::from(ssrc.get() % 0x7fff);
        self.send.insert(ssrc, SendState { next_seq });
        Ok(())
    }

    /// Starts accepting RTP from a remote SSRC (session-initiate / source-add). RTP from SSRCs
    /// not added here is dropped without an event.
    pub fn add_receive_ssrc(&mut self, ssrc: Ssrc) -> Result<(), LegError> {
        if !self.started {
            return Err(LegError::ApiMisuse("add_receive_ssrc before start"));
        }
        if self.send.contains_key(&ssrc) {
            return Err(LegError::PeerMisbehaved(format!(
                "remote SSRC {ssrc} collides with one we send"
            )));
        }
        if !self.receive.contains(&ssrc) {
            self.rtc.direct_api().expect_stream_rx(
                ssrc.get().into(),
                None,
                Mid::from(AUDIO_MID),
                None,
            );
            self.receive.push(ssrc);
        }
        Ok(())
    }

    /// Stops accepting RTP from a remote SSRC (source-remove, occupant left).
    pub fn remove_receive_ssrc(&mut self, ssrc: Ssrc) {
        if let Some(index) = self.receive.iter().position(|s| *s == ssrc) {
            self.receive.remove(index);
            self.rtc.direct_api().remove_stream_rx(ssrc.get().into());
        }
    }

    /// The remote SSRCs currently accepted.
    pub fn receive_ssrcs(&self) -> &[Ssrc] {
        &self.receive
    }

    /// Whether ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether a datagram that arrived on one of our sockets belongs to this leg (lets one socket
    /// serve several legs, as in the stand-in).
    pub fn accepts(
        &self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, contents) else {
            return false;
        };
        self.rtc.accepts(&Input::Receive(now, receive))
    }

    /// A datagram arrived. Malformed or foreign datagrams are ignored (never an error: remote
    /// input must not tear the leg down). An error means the leg failed and must be discarded.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> Result<(), LegError> {
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, contents) else {
            return Ok(());
        };
        self.input(Input::Receive(now, receive))
    }

    /// Time has reached the last [`LegOutput::Timeout`].
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), LegError> {
        self.input(Input::Timeout(now))
    }

    /// Sends one Opus packet on `ssrc` (one of ours) with its RFC 6464 level (−dBov, 0..=127)
    /// and voice-activity bit. Before the leg is connected the packet is dropped (str0m would
    /// drop it too); returns whether it was queued.
    pub fn send_audio(
        &mut self,
        now: Instant,
        ssrc: Ssrc,
        rtp_time: u32,
        payload: &[u8],
        level: u8,
        voice: bool,
    ) -> Result<bool, LegError> {
        let pt = self.config.opus_pt;
        self.send_rtp(now, ssrc, pt, rtp_time, payload, level, voice)
    }

    /// Sends one RFC 4733 telephone-event packet (payload type
    /// [`LegConfig::telephone_event_pt`]) on `ssrc`; `marker` on the first packet of an event.
    /// Carries a loud, voiced audio level so a bridge that drops silent packets keeps it.
    /// Before the leg is connected the packet is dropped; returns whether it was queued.
    pub fn send_telephone_event(
        &mut self,
        now: Instant,
        ssrc: Ssrc,
        rtp_time: u32,
        payload: &[u8; 4],
        marker: bool,
    ) -> Result<bool, LegError> {
        let pt = self.config.telephone_event_pt;
        self.write(now, ssrc, pt, rtp_time, payload, (0, true), marker)
    }

    /// Sends one RTP packet of payload type `pt` on `ssrc` (one of ours): Opus as
    /// [`MediaLeg::send_audio`] does, or an RFC 4733 telephone event. Before the leg is
    /// connected the packet is dropped; returns whether it was queued.
    #[allow(clippy::too_many_arguments)]
    pub fn send_rtp(
        &mut self,
        now: Instant,
        ssrc: Ssrc,
        pt: u8,
        rtp_time: u32,
        payload: &[u8],
        level: u8,
        voice: bool,
    ) -> Result<bool, LegError> {
        self.write(now, ssrc, pt, rtp_time, payload, (level, voice), false)
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        now: Instant,
        ssrc: Ssrc,
        pt: u8,
        rtp_time: u32,
        payload: &[u8],
        (level, voice): (u8, bool),
        marker: bool,
    ) -> Result<bool, LegError> {
        let Some(state) = self.send.get_mut(&ssrc) else {
            return Err(LegError::ApiMisuse(
                "send_audio on an SSRC we did not declare",
            ));
        };
        if !self.connected {
            return Ok(false);
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        let ext_vals = ExtensionValues {
            audio_level: Some(-i8::try_from(level.min(127)).unwrap_or(127)),
            voice_activity: Some(voice),
            ..ExtensionValues::default()
        };
        let mut api: DirectApi = self.rtc.direct_api();
        let Some(stream) = api.stream_tx(&ssrc.get().into()) else {
            return Err(LegError::ApiMisuse("send stream vanished"));
        };
        stream.write_rtp(
            RtpWrite::new(
                Pt::from(pt),
                SeqNo::from(seq),
                rtp_time,
                now,
                payload.to_vec(),
            )
            .marker(marker)
            .ext_vals(ext_vals),
        );
        Ok(true)
    }

    /// The next output. Drain until [`LegOutput::Timeout`] after every input.
    pub fn poll_output(&mut self) -> Result<LegOutput, LegError> {
        loop {
            if let Some(reason) = &self.failed {
                return Err(LegError::Failed(reason.clone()));
            }
            let output = match self.rtc.poll_output() {
                Ok(output) => output,
                Err(error) => {
                    let reason = error.to_string();
                    self.failed = Some(reason.clone());
                    return Err(LegError::Failed(reason));
                }
            };
            match output {
                Output::Timeout(at) => return Ok(LegOutput::Timeout(at)),
                Output::Transmit(transmit) => {
                    return Ok(LegOutput::Transmit(Transmit {
                        source: transmit.source,
                        destination: transmit.destination,
                        contents: transmit.contents.to_vec(),
                    }));
                }
                Output::Event(event) => {
                    if let Some(event) = self.map_event(event) {
                        return Ok(LegOutput::Event(event));
                    }
                }
            }
        }
    }

    // str0m's `Event` is `#[non_exhaustive]`: a wildcard is required, and new variants are
    // deliberately ignored.
    #[allow(clippy::wildcard_enum_match_arm)]
    fn map_event(&mut self, event: Event) -> Option<LegEvent> {
        match event {
            Event::Connected => {
                self.connected = true;
                Some(LegEvent::Connected)
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                Some(LegEvent::Disconnected)
            }
            Event::RtpPacket(packet) => {
                let ssrc = Ssrc::new(*packet.header.ssrc);
                if !self.receive.contains(&ssrc) {
                    return None;
                }
                let ext = &packet.header.ext_vals;
                Some(LegEvent::Audio(AudioPacket {
                    ssrc,
                    seq: *packet.seq_no,
                    payload_type: *packet.header.payload_type,
                    rtp_time: packet.header.timestamp,
                    level: ext
                        .audio_level
                        .map(|l| u8::try_from(-i16::from(l)).unwrap_or(127).min(127)),
                    voice: ext.voice_activity,
                    payload: packet.payload,
                }))
            }
            Event::StreamPaused(paused) => Some(LegEvent::SourceActivity {
                ssrc: Ssrc::new(*paused.ssrc),
                paused: paused.paused,
            }),
            Event::MediaIngressStats(ingress) => {
                self.stats.inbound_jitter = Some(opus_ticks(ingress.jitter));
                self.stats.inbound_loss = ingress.loss.or(self.stats.inbound_loss);
                self.stats.packets_received = ingress.packets;
                None
            }
            Event::MediaEgressStats(egress) => {
                if let Some(remote) = &egress.remote {
                    self.stats.outbound_jitter = Some(opus_ticks(remote.jitter));
                }
                self.stats.outbound_loss = egress.loss.or(self.stats.outbound_loss);
                self.rtcp_rtt = egress.rtt.or(self.rtcp_rtt);
                self.stats.rtt = self.rtcp_rtt.or(self.ice_rtt);
                self.stats.packets_sent = egress.packets;
                None
            }
            Event::PeerStats(peer) => {
                let ice_rtt = peer
                    .selected_candidate_pair
                    .as_ref()
                    .and_then(|pair| pair.current_round_trip_time);
                self.ice_rtt = ice_rtt.or(self.ice_rtt);
                self.rtcp_rtt = peer.rtt.or(self.rtcp_rtt);
                self.stats.rtt = self.rtcp_rtt.or(self.ice_rtt);
                None
            }
            _ => None,
        }
    }

    fn input(&mut self, input: Input) -> Result<(), LegError> {
        if let Some(reason) = &self.failed {
            return Err(LegError::Failed(reason.clone()));
        }
        self.rtc.handle_input(input).map_err(|error| {
            let reason = error.to_string();
            self.failed = Some(reason.clone());
            LegError::Failed(reason)
        })
    }
}

/// A duration in Opus RTP timestamp units (48 kHz, RFC 7587).
fn opus_ticks(ticks: u32) -> Duration {
    Duration::from_micros(u64::from(ticks) * 1_000 / 48)
}

/// RFC 8445 §5.1.2.1 host priority: type preference 126, local preference decreasing per
/// address, component 1.
fn host_priority(index: usize) -> u32 {
    let local_preference = 65_535u32.saturating_sub(u32::try_from(index).unwrap_or(u32::MAX));
    (126 << 24) | (local_preference << 8) | (256 - 1)
}

#[cfg(test)]
mod tests;
