//! [`Call`]: one phone call bridged into one conference (jigasi-behaviour.md §4.1, dial-in).
//!
//! It joins three pure parts: the SIP leg's decisions (SDP answer from `jigasi-sip-core`, when to
//! ring, answer, reject or hang up), the [`ConferenceLeg`] (focus, MUC, Jingle, bridge media) and
//! the audio engine (`jigasi-media`: jitter buffers, decode, N−1 mix, encode) that carries sound
//! between the phone's RTP and the bridge.
//!
//! The phone is answered only once the focus's offer is accepted (Jigasi's rule: 180 at once,
//! 200 after `session-initiate`); a conference that ends sends BYE with an RFC 3326 `Reason`, or
//! rejects a call not yet answered with the status the reason maps to.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use jid::Jid;
use jigasi_media::dtmf::DtmfSender;
use jigasi_media::quality::{CodecImpairment, LegQuality, StreamQuality};
use jigasi_media::rtcp::{self, NtpTime};
use jigasi_media::{
    AudioLevel, BridgePacket, CodecKind, Conference, ConferenceError, DtmfDigit, DtmfMethod,
    DtmfReceived, MediaEvent, PhoneConfig, PhoneSrtpStats, SrtpKeys, SrtpMasterKey, SrtpSuite,
    TickOutput,
};
use jigasi_sip_core::sdp::{
    CodecPreference, LocalMedia, Negotiation, Offer, SdesKey, SdesSuite, SdpSession,
    SessionDescription, SrtpPolicy,
};
use jigasi_types::{CallId, PayloadType, Secret, Ssrc};
use minidom::Element;

use crate::conference::{
    ConferenceConfig, ConferenceEvent, ConferenceLeg, ConferenceOutput, EndReason,
};

/// The media tick: one 20 ms frame each way.
const TICK: Duration = Duration::from_millis(20);

/// Phone presses waiting for the conference at most (more are dropped: nobody dials that fast).
const DTMF_TO_BRIDGE_QUEUE: usize = 16;
/// The volume of the telephone events we send (−dBm0; 10 is what phones use).
const DTMF_VOLUME: u8 = 10;

/// How long an answered phone waits for the per-call XMPP connection to come back (and the
/// conference to be rejoined) before it is hung up.
pub const XMPP_RECONNECT_WINDOW: Duration = Duration::from_secs(30);

/// The RTCP report interval toward the phone (RFC 3550 §6.2: 5 s minimum), randomized by
/// ±50 % per report (§6.3.1).
pub const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// Which socket a datagram belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaSocket {
    /// RTP to and from the phone (and RTCP when the phone multiplexes it, RFC 5761).
    Phone,
    /// RTCP to and from the phone: the RTP port + 1 (RFC 3550 §11).
    PhoneRtcp,
    /// ICE/DTLS/SRTP to and from the bridge.
    Bridge,
}

/// What the SIP adapter must do for this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipCommand {
    /// Dial-out: send the INVITE.
    Invite {
        /// Request-URI (`OUTBOUND_PREFIX` + number at the registrar's domain).
        request_uri: String,
        /// Extra headers in order (`Jitsi-Conference-Room`, forwarded dial headers,
        /// `JigasiCallDirection: out`).
        headers: Vec<(String, String)>,
        /// Our SDP offer.
        sdp: String,
    },
    /// Answer the INVITE with 200 OK and this SDP.
    Answer {
        /// The SDP answer.
        sdp: String,
    },
    /// Reject the INVITE (not answered yet).
    Reject {
        /// Final status, e.g. 486 or 488.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
    /// Hang up an answered call with BYE carrying this RFC 3326 `Reason`.
    Hangup {
        /// E.g. SIP cause 408 "No invite from conference focus".
        reason: HangupCause,
    },
    /// Send INFO in the dialog (DTMF with `SIP_INFO_DTMF`).
    Info {
        /// E.g. `application/dtmf-relay`.
        content_type: String,
        /// The body, e.g. `Signal=5\r\nDuration=250\r\n`.
        body: String,
    },
}

/// How DTMF from the conference reaches the phone (Jigasi's `DTMF_METHOD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtmfToPhone {
    /// RFC 4733 if `telephone-event` was negotiated, else in-band tones (`AUTO_DTMF`).
    #[default]
    Auto,
    /// RFC 4733 telephone events (`RTP_DTMF`); in-band if the phone did not negotiate them,
    /// rather than losing the digit as Jigasi does.
    Rtp,
    /// INFO with `application/dtmf-relay` (`SIP_INFO_DTMF`).
    SipInfo,
    /// Tones mixed into the audio (`INBAND_DTMF`).
    Inband,
}

/// The protocol of an RFC 3326 `Reason` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonProtocol {
    /// `SIP;cause=<status>`.
    Sip,
    /// `Q.850;cause=<ISDN cause>`.
    Q850,
}

/// An RFC 3326 `Reason` for the BYE that ends a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HangupCause {
    /// SIP or Q.850.
    pub protocol: ReasonProtocol,
    /// The cause value.
    pub cause: u16,
    /// Human-readable text.
    pub text: String,
}

impl HangupCause {
    fn q850(cause: u16, text: &str) -> Self {
        Self {
            protocol: ReasonProtocol::Q850,
            cause,
            text: text.to_owned(),
        }
    }

    fn sip(cause: u16, text: &str) -> Self {
        Self {
            protocol: ReasonProtocol::Sip,
            cause,
            text: text.to_owned(),
        }
    }
}

/// What happened on the SIP side, as the SIP adapter reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipInput {
    /// Dial-out: a provisional response (180 Ringing, 183).
    Provisional {
        /// Its status.
        status: u16,
    },
    /// Dial-out: the callee answered.
    Answered {
        /// The SDP answer.
        sdp: Vec<u8>,
    },
    /// Dial-out: the INVITE failed (busy, declined, not found, timeout).
    Failed {
        /// The final status.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// The caller cancelled before the answer.
    Cancelled,
    /// The ACK for our 200 arrived.
    Acked,
    /// The phone hung up (BYE), with its `Reason` header if any.
    RemoteHangup {
        /// The phone's Reason header.
        reason: Option<String>,
    },
    /// The dialog died (no ACK, transport error).
    Terminated,
}

/// What the owner of the call (registry, metrics, API) must know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// The participant joined the room.
    Joined,
    /// The room now has `others` occupants besides us (the focus included): this call's share
    /// of Jigasi's brewery `participants` statistic (room members − 1, jigasi-behaviour.md
    /// §1.14). Reported after [`CallEvent::Joined`] and on every change.
    Occupants {
        /// Other occupants, the focus included.
        others: usize,
    },
    /// The phone was answered and the bridge offer accepted.
    Answered,
    /// Media to the bridge is up.
    MediaConnected,
    /// The phone sent no RTP for the configured threshold although it should (not on hold).
    /// Reported once per silence; RTP that comes back re-arms it.
    MediaDropped,
    /// The per-call XMPP connection was lost with the phone answered: the phone is kept; call
    /// [`Call::handle_xmpp_reconnected`] within [`XMPP_RECONNECT_WINDOW`] or it is hung up.
    ConferenceLost,
    /// The call is over; nothing more will happen.
    Ended {
        /// Why, for logs and statistics.
        reason: String,
    },
}

/// What [`Call::poll_output`] yields.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutput {
    /// For the SIP adapter.
    Sip(SipCommand),
    /// A stanza for the per-call XMPP connection.
    Xmpp(Element),
    /// Nothing scheduled: wait for the next input.
    Idle,
    /// A datagram to send.
    Transmit {
        /// From which socket.
        socket: MediaSocket,
        /// Where to.
        destination: SocketAddr,
        /// The bytes.
        contents: Vec<u8>,
    },
    /// Something happened.
    Event(CallEvent),
    /// Call [`Call::handle_timeout`] then.
    Timeout(Instant),
}

/// Static settings of one dial-in call.
#[derive(Debug, Clone)]
pub struct CallConfig {
    /// Our id for the call (also the phone's id in the audio engine).
    pub id: CallId,
    /// The conference side.
    pub conference: ConferenceConfig,
    /// The local address of the phone RTP socket (put in the SDP answer).
    pub phone_rtp: SocketAddr,
    /// Codec preferences (`Encodings.*`).
    pub codecs: Vec<CodecPreference>,
    /// SDES-SRTP on the phone leg (`DEFAULT_ENCRYPTION`, `SAVP_OPTION`): off, best-effort or
    /// required.
    pub srtp: SrtpPolicy,
    /// Our SDES master key and salt for this call (random, from the caller's RNG); needed
    /// unless `srtp` is off. Kept across re-INVITEs.
    pub sdes_key: Option<Secret<SdesKey>>,
    /// The SDES suites we offer and accept, preferred first (`SDES_CIPHER_SUITES`).
    pub sdes_suites: Vec<SdesSuite>,
    /// Our SSRC toward the phone.
    pub phone_ssrc: Ssrc,
    /// SDP session id (random).
    pub sdp_session_id: u64,
    /// First RTP sequence number / timestamps (random).
    pub first_sequence: u16,
    /// First RTP timestamp toward the phone.
    pub first_timestamp: u32,
    /// How DTMF from the conference is sent to the phone.
    pub dtmf_method: DtmfToPhone,
    /// The shortest tone sent (`DTMF_MINIMAL_TONE_DURATION`).
    pub dtmf_minimal_tone: Duration,
    /// No RTP from an answered phone for this long is "media dropped"
    /// (`SIP_MEDIA_DROPPED_THRESHOLD_MS`, 10 s; `None` = never).
    pub media_dropped_threshold: Option<Duration>,
    /// Hang up with 408 "Stopped receiving media" when media dropped
    /// (`HANGUP_SIP_ON_MEDIA_DROPPED`, off).
    pub hangup_on_media_dropped: bool,
    /// The wall clock at one instant: RTCP sender reports carry NTP time.
    pub wall_clock: WallClock,
    /// Seeds the randomization of the RTCP report interval (from the caller's RNG).
    pub rtcp_seed: u64,
}

/// The wall clock read once by the caller, so that the call can turn its `now` into NTP time
/// without reading a clock itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    /// The instant of the reading.
    pub at: Instant,
    /// The time since the Unix epoch at that instant.
    pub since_unix_epoch: Duration,
}

impl WallClock {
    /// The NTP time at `now`.
    pub fn ntp(&self, now: Instant) -> NtpTime {
        let since_epoch = match now.checked_duration_since(self.at) {
            Some(later) => self.since_unix_epoch + later,
            None => self
                .since_unix_epoch
                .saturating_sub(self.at.saturating_duration_since(now)),
        };
        NtpTime::from_unix(since_epoch)
    }
}

/// The measured quality of a call's two legs (see [`jigasi_media::quality`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallQuality {
    /// Toward the phone: our RTP receive statistics and the phone's RTCP reports.
    pub phone: Option<LegQuality>,
    /// Toward the bridge: str0m's RTCP and ICE statistics.
    pub bridge: Option<LegQuality>,
    /// RTCP datagrams from the phone that were malformed and dropped.
    pub phone_rtcp_dropped: u64,
}

/// Which way the call goes, with what that direction needs.
#[derive(Debug)]
enum Direction {
    /// Dial-in: our SDP answer, sent with the 200 once the conference accepted us.
    In { answer_sdp: String },
    /// Dial-out: what to dial once the conference accepted us, and our offer.
    Out {
        request_uri: String,
        headers: Vec<(String, String)>,
        offer: Box<Offer>,
        /// After a failed INVITE the room sees the reason this long before we leave.
        leave_at: Option<Instant>,
    },
}

/// How long a failed dial-out's reason stays visible in the room (Jigasi: 5 s).
const FAILED_DIAL_VISIBLE: Duration = Duration::from_secs(5);

/// Where the SIP side stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SipState {
    /// Dial-in: 180 sent, waiting for the conference.
    Ringing,
    /// Dial-out: waiting for the conference before dialling.
    Idle,
    /// Dial-out: INVITE sent, no final answer yet.
    Calling,
    /// 200 OK sent.
    Answered,
    /// Over.
    Ended,
}

/// One dial-in call. Drive it like [`ConferenceLeg`]: one input, then drain
/// [`Call::poll_output`] until it returns a [`CallOutput::Timeout`].
pub struct Call {
    config: CallConfig,
    conference: ConferenceLeg,
    pub(crate) media: Conference,
    sdp: SdpSession,
    local_media: LocalMedia,
    /// What was agreed with the phone; `None` until a dial-out is answered.
    negotiation: Option<Negotiation>,
    direction: Direction,
    sip: SipState,
    /// Where the phone's RTP really comes from (symmetric RTP, RFC 4961): latched on the first
    /// packet, the SDP address until then.
    phone_remote: SocketAddr,
    /// Where the phone's RTCP goes: the RTP port + 1 from the SDP, then latched on valid RTCP.
    phone_rtcp_remote: SocketAddr,
    /// The phone sends RTCP on its RTP port (RFC 5761): answer there, from our RTP socket.
    phone_rtcp_mux: bool,
    /// The next RTCP report to the phone, once media runs.
    next_rtcp: Option<Instant>,
    /// State of the RTCP interval randomization (splitmix64).
    rtcp_rng: u64,
    /// Malformed RTCP datagrams from the phone.
    phone_rtcp_dropped: u64,
    /// When the phone's last valid RTP arrived (or the answer, or the end of a hold).
    phone_heard_at: Option<Instant>,
    /// A [`CallEvent::MediaDropped`] was reported and no RTP came since.
    media_dropped: bool,
    /// DTMF pressed on the phone, waiting to go to the conference: (digit, 8 kHz ticks).
    dtmf_to_bridge: VecDeque<(DtmfDigit, u16)>,
    /// The RFC 4733 press being sent to the conference.
    bridge_dtmf: Option<DtmfSender>,
    /// The XMPP connection is lost and the phone kept: hang up at this instant unless it is back.
    xmpp_lost_deadline: Option<Instant>,
    next_tick: Option<Instant>,
    /// The call is in a [`crate::Room`]: `media` is the room's shared engine while the room
    /// lends it for one input (the call's own engine otherwise sits empty), the room runs the
    /// 20 ms tick and routes the engine's events.
    pub(crate) in_room: bool,
    /// The conference leg's next deadline, taken when its outputs were drained.
    conference_deadline: Option<Instant>,
    ended_reported: bool,
    out: VecDeque<CallOutput>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("id", &self.config.id)
            .field("sip", &self.sip)
            .field("conference", &self.conference)
            .finish_non_exhaustive()
    }
}

/// Why a call could not start. Maps to the SIP status of the rejection.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The offer is unusable or has nothing in common with us (400 / 488).
    #[error("SDP offer refused ({status}): {reason}")]
    Offer {
        /// The SIP status to reject with.
        status: u16,
        /// Why.
        reason: String,
    },
    /// The negotiated codec cannot be set up (500).
    #[error("media setup failed: {0}")]
    Media(#[from] ConferenceError),
    /// The conference configuration is invalid (500).
    #[error("bad conference address: {0}")]
    Address(String),
}

impl CallError {
    /// The SIP status to reject the INVITE with.
    pub fn sip_status(&self) -> u16 {
        match self {
            Self::Offer { status, .. } => *status,
            Self::Media(_) | Self::Address(_) => 500,
        }
    }
}

impl Call {
    /// A dial-in call for an INVITE carrying `offer`. Negotiates the SDP at once (a 488 comes
    /// back as an error) and asks the SIP adapter to ring.
    pub fn dial_in(config: CallConfig, offer: &[u8]) -> Result<Self, CallError> {
        let offer = SessionDescription::parse(offer).map_err(|e| CallError::Offer {
            status: 400,
            reason: e.to_string(),
        })?;
        let mut local_media = LocalMedia::new(config.phone_rtp.ip(), config.phone_rtp.port());
        local_media.codecs = config.codecs.clone();
        local_media.srtp = config.srtp;
        local_media.sdes_key = config.sdes_key.as_ref().map(|key| *key.expose());
        local_media.sdes_suites = config.sdes_suites.clone();
        let mut sdp = SdpSession::new("jigasi-rs", config.sdp_session_id);
        let answer = sdp
            .answer(&offer, &local_media)
            .map_err(|e| CallError::Offer {
                status: e.sip_status(),
                reason: e.to_string(),
            })?;
        let negotiation = answer.negotiation;
        let mut media = Conference::new(jigasi_media::ConferenceConfig::default());
        media.add_phone(config.id, phone_config(&config, &negotiation)?)?;
        media.set_sending(config.id, negotiation.sending())?;
        let conference = ConferenceLeg::new(config.conference.clone())
            .map_err(|e| CallError::Address(e.to_string()))?;
        let phone_remote = SocketAddr::new(negotiation.remote_address, negotiation.remote_port);
        let call = Self {
            phone_rtcp_remote: rtcp_target(&negotiation),
            phone_rtcp_mux: negotiation.rtcp_mux,
            next_rtcp: None,
            rtcp_rng: config.rtcp_seed,
            phone_rtcp_dropped: 0,
            config,
            conference,
            media,
            sdp,
            local_media,
            negotiation: Some(negotiation),
            direction: Direction::In {
                answer_sdp: answer.sdp,
            },
            sip: SipState::Ringing,
            phone_remote,
            phone_heard_at: None,
            media_dropped: false,
            dtmf_to_bridge: VecDeque::new(),
            bridge_dtmf: None,
            xmpp_lost_deadline: None,
            next_tick: None,
            in_room: false,
            conference_deadline: None,
            ended_reported: false,
            out: VecDeque::new(),
        };
        Ok(call)
    }

    /// A dial-out call (a Rayo `dial` from the focus): joins the conference first and places the
    /// INVITE to `request_uri` with `headers` once the focus's offer is accepted (Jigasi O0-O6).
    pub fn dial_out(
        config: CallConfig,
        request_uri: String,
        headers: Vec<(String, String)>,
    ) -> Result<Self, CallError> {
        let mut local_media = LocalMedia::new(config.phone_rtp.ip(), config.phone_rtp.port());
        local_media.codecs = config.codecs.clone();
        local_media.srtp = config.srtp;
        local_media.sdes_key = config.sdes_key.as_ref().map(|key| *key.expose());
        local_media.sdes_suites = config.sdes_suites.clone();
        let mut sdp = SdpSession::new("jigasi-rs", config.sdp_session_id);
        let offer = sdp.offer(&local_media).map_err(|e| CallError::Offer {
            status: 500,
            reason: e.to_string(),
        })?;
        let mut conference = ConferenceLeg::new(config.conference.clone())
            .map_err(|e| CallError::Address(e.to_string()))?;
        conference.set_status(Some("Initializing Call".into()));
        Ok(Self {
            phone_remote: config.phone_rtp,
            phone_rtcp_remote: rtcp_address(config.phone_rtp),
            phone_rtcp_mux: false,
            next_rtcp: None,
            rtcp_rng: config.rtcp_seed,
            phone_rtcp_dropped: 0,
            media: Conference::new(jigasi_media::ConferenceConfig::default()),
            config,
            conference,
            sdp,
            local_media,
            negotiation: None,
            direction: Direction::Out {
                request_uri,
                headers,
                offer: Box::new(offer),
                leave_at: None,
            },
            sip: SipState::Idle,
            phone_heard_at: None,
            media_dropped: false,
            dtmf_to_bridge: VecDeque::new(),
            bridge_dtmf: None,
            xmpp_lost_deadline: None,
            next_tick: None,
            in_room: false,
            conference_deadline: None,
            ended_reported: false,
            out: VecDeque::new(),
        })
    }

    /// Our id for the call.
    pub fn id(&self) -> CallId {
        self.config.id
    }

    /// When the 20 ms media grid of an answered call starts (or its next tick).
    pub(crate) fn grid(&self) -> Option<Instant> {
        self.next_tick.filter(|_| self.sip == SipState::Answered)
    }

    /// After the room's engine ran and [`Call::room_tick_output`]: the bridge leg's outputs.
    pub(crate) fn room_tick_done(&mut self, now: Instant) {
        self.pump_conference(now);
    }

    /// The phone leg's SRTP counters (packets protected and unprotected, authentication
    /// failures, replays), when the leg is SDES-SRTP.
    pub fn phone_srtp(&self) -> Option<PhoneSrtpStats> {
        self.phone_srtp_in(&self.media)
    }

    /// [`Call::phone_srtp`] with the phone in `engine` (a room's).
    pub(crate) fn phone_srtp_in(&self, engine: &Conference) -> Option<PhoneSrtpStats> {
        engine.phone_stats(self.config.id)?.srtp
    }

    /// The conference occupant JID (for the Rayo `<ref>` and the hangup IQ routing).
    pub fn occupant(&self) -> String {
        self.conference.occupant().to_string()
    }

    /// Whether the call is over.
    pub fn is_ended(&self) -> bool {
        self.ended_reported
    }

    /// The SIP side's state for `/debug`: `ringing` (dial-in before the answer), `idle`
    /// (dial-out before the INVITE), `calling`, `answered` or `ended`.
    pub fn sip_state(&self) -> &'static str {
        match self.sip {
            SipState::Ringing => "ringing",
            SipState::Idle => "idle",
            SipState::Calling => "calling",
            SipState::Answered => "answered",
            SipState::Ended => "ended",
        }
    }

    /// The phone's codec as `name/clock rate` (e.g. `PCMU/8000`), once agreed with the phone.
    pub fn phone_codec(&self) -> Option<String> {
        self.negotiation
            .as_ref()
            .map(|n| format!("{}/{}", n.codec.name, n.codec.clock_rate))
    }

    /// The per-call XMPP connection is online.
    pub fn handle_xmpp_online(&mut self, now: Instant, jid: Jid) {
        self.conference.handle_online(now, jid);
        self.pump_conference(now);
    }

    /// A stanza arrived on the per-call XMPP connection.
    pub fn handle_xmpp_stanza(&mut self, now: Instant, stanza: &Element) {
        self.conference.handle_stanza(now, stanza);
        self.pump_conference(now);
    }

    /// The per-call XMPP connection is gone. An answered phone is kept (Jigasi §1.12 "XMPP
    /// connection failed"): the conference side starts over once
    /// [`Call::handle_xmpp_reconnected`] says the connection is back; otherwise the call ends.
    pub fn handle_xmpp_lost(&mut self, now: Instant) {
        // The old leg's session and timers are meaningless now; a fresh leg waits, inert.
        let fresh = if self.sip == SipState::Answered && !self.ended_reported {
            if self.xmpp_lost_deadline.is_some() {
                return;
            }
            ConferenceLeg::new(self.config.conference.clone()).ok()
        } else {
            None
        };
        let Some(leg) = fresh else {
            self.conference.handle_connection_lost();
            self.pump_conference(now);
            return;
        };
        self.conference = leg;
        self.conference_deadline = None;
        self.xmpp_lost_deadline = Some(now + XMPP_RECONNECT_WINDOW);
        self.event(CallEvent::ConferenceLost);
    }

    /// A new per-call XMPP connection is online as `jid` after [`CallEvent::ConferenceLost`]:
    /// rejoin the room as `nick` (a new one, since the old occupant may linger until the server
    /// notices) and wait for the focus's offer. Ignored when nothing was lost.
    pub fn handle_xmpp_reconnected(&mut self, now: Instant, jid: Jid, nick: String) {
        if self.xmpp_lost_deadline.is_none() || self.ended_reported {
            return;
        }
        let mut config = self.config.conference.clone();
        config.nick = nick;
        let Ok(mut leg) = ConferenceLeg::new(config.clone()) else {
            return;
        };
        self.config.conference = config;
        self.xmpp_lost_deadline = None;
        leg.set_status(Some("Connected".into()));
        self.conference = leg;
        self.conference.handle_online(now, jid);
        self.pump_conference(now);
    }

    /// Something happened on the SIP side.
    pub fn handle_sip(&mut self, now: Instant, input: SipInput) {
        match input {
            SipInput::Acked => {}
            SipInput::Cancelled | SipInput::Terminated => {
                self.sip = SipState::Ended;
                self.conference.hang_up();
                self.pump_conference(now);
                self.ended("phone side ended".into());
            }
            SipInput::RemoteHangup { reason } => {
                self.sip = SipState::Ended;
                self.conference.hang_up();
                self.pump_conference(now);
                self.ended(format!(
                    "phone hung up{}",
                    reason.map(|r| format!(" ({r})")).unwrap_or_default()
                ));
            }
            SipInput::Provisional { status } => {
                if self.sip == SipState::Calling && (180..=183).contains(&status) {
                    self.conference.set_status(Some("Ringing".into()));
                    self.pump_conference(now);
                }
            }
            SipInput::Answered { sdp } => self.dial_out_answered(now, &sdp),
            SipInput::Failed { status, reason } => {
                if self.sip != SipState::Calling {
                    return;
                }
                self.sip = SipState::Ended;
                // The room sees why for a moment (Jigasi shows "Busy" / the reason for 5 s).
                let shown = if status == 486 || status == 600 {
                    "Busy".to_owned()
                } else {
                    format!("{status} {reason}")
                };
                self.conference.set_status(Some(shown));
                self.pump_conference(now);
                if let Direction::Out { leave_at, .. } = &mut self.direction {
                    *leave_at = Some(now + FAILED_DIAL_VISIBLE);
                }
            }
        }
    }

    fn dial_out_answered(&mut self, now: Instant, sdp: &[u8]) {
        if self.sip != SipState::Calling {
            return;
        }
        let Direction::Out { offer, .. } = &self.direction else {
            return;
        };
        let negotiation = SessionDescription::parse(sdp)
            .map_err(|e| e.to_string())
            .and_then(|answer| {
                self.sdp
                    .process_answer(offer, &answer)
                    .map_err(|e| e.to_string())
            })
            .and_then(|negotiation| {
                let config = phone_config(&self.config, &negotiation).map_err(|e| e.to_string())?;
                self.media
                    .add_phone(self.config.id, config)
                    .map_err(|e| e.to_string())?;
                Ok(negotiation)
            });
        match negotiation {
            Ok(negotiation) => {
                self.phone_remote =
                    SocketAddr::new(negotiation.remote_address, negotiation.remote_port);
                self.phone_rtcp_remote = rtcp_target(&negotiation);
                self.phone_rtcp_mux = negotiation.rtcp_mux;
                let _ = self
                    .media
                    .set_sending(self.config.id, negotiation.sending());
                self.negotiation = Some(negotiation);
                self.sip = SipState::Answered;
                self.next_tick = Some(now);
                self.start_rtcp(now);
                self.conference.set_status(Some("Connected".into()));
                self.pump_conference(now);
                self.event(CallEvent::Answered);
            }
            Err(reason) => {
                // An unusable answer: end the call with BYE (RFC 3264 §6 leaves no other way).
                self.sip = SipState::Answered;
                self.hang_up(now, &format!("Unusable SDP answer: {reason}"));
            }
        }
    }

    /// A datagram arrived on one of the call's sockets.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        socket: MediaSocket,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        match socket {
            MediaSocket::Bridge => {
                self.conference
                    .handle_datagram(now, source, destination, contents);
                self.pump_conference(now);
            }
            MediaSocket::PhoneRtcp => self.phone_rtcp(now, source, contents, false),
            MediaSocket::Phone if rtcp::is_rtcp(contents) => {
                // RFC 5761 §4: RTCP multiplexed on the RTP port.
                self.phone_rtcp(now, source, contents, true);
            }
            MediaSocket::Phone => {
                if self.sip == SipState::Ended {
                    return;
                }
                // A malformed packet is counted by the engine and dropped; the call goes on.
                if self
                    .media
                    .handle_phone_rtp(now, self.config.id, contents)
                    .is_ok()
                {
                    // Symmetric RTP: answer where the phone really sends from (NAT), but only
                    // once it sent valid RTP, so a stray datagram cannot steer our audio away.
                    self.phone_remote = source;
                    self.phone_heard_at = Some(now);
                    self.media_dropped = false;
                }
            }
        }
    }

    /// Time has reached the last [`CallOutput::Timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.xmpp_lost_deadline.is_some_and(|at| at <= now) {
            self.xmpp_lost_deadline = None;
            let (header, status, phrase) = end_mapping(&EndReason::ConnectionLost);
            self.finish_sip(now, header, status, phrase);
            self.ended("conference connection not restored".into());
            return;
        }
        if let Direction::Out {
            leave_at: Some(at), ..
        } = &self.direction
            && *at <= now
        {
            self.conference.hang_up();
            self.pump_conference(now);
            self.ended("dial-out failed".into());
            return;
        }
        self.conference.handle_timeout(now);
        self.pump_conference(now);
        if let Some(tick) = self.next_tick
            && tick <= now
            && self.sip == SipState::Answered
            && !self.in_room
        {
            self.tick(now);
            self.next_tick = Some(next_tick(tick, now));
        }
        if self.next_rtcp.is_some_and(|at| at <= now) && self.sip == SipState::Answered {
            self.send_phone_rtcp(now, false);
            self.next_rtcp = Some(now + self.rtcp_interval(false));
        }
    }

    /// The phone hangs up from our side (API request, shutdown deadline).
    pub fn hang_up(&mut self, now: Instant, reason: &str) {
        self.end_call(now, HangupCause::q850(16, reason), 487, reason);
    }

    /// Ends both sides from our side: the phone gets `cause` in its BYE (or `status` and
    /// `phrase` before the answer), the conference side leaves.
    fn end_call(&mut self, now: Instant, cause: HangupCause, status: u16, phrase: &str) {
        self.finish_sip(now, cause, status, phrase);
        self.conference.hang_up();
        self.pump_conference(now);
        self.ended(phrase.to_owned());
    }

    /// The next output; drain until [`CallOutput::Timeout`] or [`CallOutput::Idle`].
    pub fn poll_output(&mut self) -> CallOutput {
        if let Some(output) = self.out.pop_front() {
            return output;
        }
        let (tick, rtcp) = match self.sip {
            SipState::Answered => (self.next_tick.filter(|_| !self.in_room), self.next_rtcp),
            SipState::Ringing | SipState::Idle | SipState::Calling | SipState::Ended => {
                (None, None)
            }
        };
        let leave = match &self.direction {
            Direction::Out { leave_at, .. } if !self.ended_reported => *leave_at,
            Direction::Out { .. } | Direction::In { .. } => None,
        };
        match [
            self.conference_deadline,
            tick,
            rtcp,
            leave,
            self.xmpp_lost_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
        {
            Some(at) => CallOutput::Timeout(at),
            None => CallOutput::Idle,
        }
    }

    /// Moves everything the conference leg produced into our queue, reacting to its events.
    fn pump_conference(&mut self, now: Instant) {
        loop {
            match self.conference.poll_output() {
                ConferenceOutput::Send(stanza) => self.out.push_back(CallOutput::Xmpp(stanza)),
                ConferenceOutput::Transmit(transmit) => self.out.push_back(CallOutput::Transmit {
                    socket: MediaSocket::Bridge,
                    destination: transmit.destination,
                    contents: transmit.contents,
                }),
                ConferenceOutput::Event(event) => self.on_conference_event(now, event),
                ConferenceOutput::Timeout(at) => {
                    self.conference_deadline = Some(at);
                    return;
                }
                ConferenceOutput::Idle => {
                    self.conference_deadline = None;
                    return;
                }
            }
        }
    }

    fn on_conference_event(&mut self, now: Instant, event: ConferenceEvent) {
        match event {
            ConferenceEvent::Joined { occupants } => {
                self.event(CallEvent::Joined);
                self.event(CallEvent::Occupants { others: occupants });
            }
            ConferenceEvent::SessionAccepted => match (&self.direction, self.sip) {
                (Direction::In { answer_sdp }, SipState::Ringing) => {
                    self.out.push_back(CallOutput::Sip(SipCommand::Answer {
                        sdp: answer_sdp.clone(),
                    }));
                    self.sip = SipState::Answered;
                    self.next_tick = Some(now);
                    self.start_rtcp(now);
                    self.event(CallEvent::Answered);
                }
                (
                    Direction::Out {
                        request_uri,
                        headers,
                        offer,
                        ..
                    },
                    SipState::Idle,
                ) => {
                    // Jigasi O5: the bridge leg is accepted at once, the phone is dialled now.
                    self.out.push_back(CallOutput::Sip(SipCommand::Invite {
                        request_uri: request_uri.clone(),
                        headers: headers.clone(),
                        sdp: offer.sdp.clone(),
                    }));
                    self.sip = SipState::Calling;
                    self.conference.set_status(Some("Calling".into()));
                    self.pump_conference(now);
                }
                (Direction::In { .. } | Direction::Out { .. }, _) => {}
            },
            ConferenceEvent::MediaConnected => self.event(CallEvent::MediaConnected),
            ConferenceEvent::Audio(packet) => {
                let bridge_packet = BridgePacket {
                    ssrc: packet.ssrc,
                    payload_type: PayloadType::new(packet.payload_type),
                    // The engine works with 16-bit sequence numbers and unwraps them itself.
                    sequence: (packet.seq & 0xffff) as u16,
                    timestamp: packet.rtp_time,
                    audio_level: packet
                        .level
                        .map(|level| AudioLevel::new(level, packet.voice.unwrap_or(false))),
                    payload: &packet.payload,
                };
                let leg = self.config.id;
                if let Err(ConferenceError::UnknownSsrc(ssrc)) =
                    self.media.handle_leg_packet(now, leg, &bridge_packet)
                {
                    // The conference leg only delivers signalled SSRCs: start a speaker for it.
                    if self.media.add_speaker(ssrc).is_ok() {
                        let _ = self.media.handle_leg_packet(now, leg, &bridge_packet);
                    }
                }
                self.pump_media_events();
            }
            ConferenceEvent::OccupantsChanged(others) => {
                self.event(CallEvent::Occupants { others });
            }
            ConferenceEvent::SessionTerminated { .. } => {}
            ConferenceEvent::MuteChanged(muted) => {
                let _ = self.media.set_muted(self.config.id, muted);
            }
            ConferenceEvent::Ended(reason) => {
                let (header, status, phrase) = end_mapping(&reason);
                self.finish_sip(now, header, status, phrase);
                self.ended(format!("{reason:?}"));
            }
        }
    }

    /// Acts on the audio engine's events: DTMF pressed in the conference goes to the phone
    /// (jigasi-behaviour.md §1.5) once the press has ended, so its length is known.
    fn pump_media_events(&mut self) {
        if self.in_room {
            // The room's engine: its events are for every call of the room, the room routes them.
            return;
        }
        while let Some(event) = self.media.poll_event() {
            self.on_media_event(event);
        }
    }

    /// One event of the audio engine that concerns this call.
    pub(crate) fn on_media_event(&mut self, event: MediaEvent) {
        match event {
            MediaEvent::DtmfFromConference {
                received: DtmfReceived::Ended { digit, duration },
                ..
            } => {
                // Jitsi signals telephone-event at an 8 kHz clock.
                let duration = Duration::from_millis(u64::from(duration) / 8)
                    .max(self.config.dtmf_minimal_tone);
                self.dtmf_to_phone(digit, duration);
            }
            MediaEvent::DtmfFromConference {
                received: DtmfReceived::Started(_),
                ..
            } => {}
            // Jigasi drops DTMF from the phone (jigasi-behaviour.md §1.5); we send it on to
            // the conference as RFC 4733, once the press has ended so its length is known.
            MediaEvent::DtmfFromPhone {
                received: DtmfReceived::Ended { digit, duration },
                ..
            } => {
                if self.dtmf_to_bridge.len() < DTMF_TO_BRIDGE_QUEUE {
                    // The phone's clock is 8 kHz for telephone-event, as is Jitsi's PT 126.
                    self.dtmf_to_bridge.push_back((digit, duration.max(160)));
                }
            }
            MediaEvent::DtmfFromPhone {
                received: DtmfReceived::Started(_),
                ..
            } => {}
        }
    }

    fn dtmf_to_phone(&mut self, digit: DtmfDigit, duration: Duration) {
        if self.sip != SipState::Answered {
            return;
        }
        match self.config.dtmf_method {
            DtmfToPhone::SipInfo => {
                self.out.push_back(CallOutput::Sip(SipCommand::Info {
                    content_type: "application/dtmf-relay".into(),
                    body: format!(
                        "Signal={}\r\nDuration={}\r\n",
                        digit.as_char(),
                        duration.as_millis()
                    ),
                }));
            }
            DtmfToPhone::Auto | DtmfToPhone::Rtp | DtmfToPhone::Inband => {
                if let Err(error) = self.media.send_dtmf(self.config.id, digit, duration) {
                    tracing::warn!(%error, "DTMF to the phone dropped");
                }
            }
        }
    }

    /// Jigasi's dropped-media detection (jigasi-behaviour.md §1.2), checked every frame rather
    /// than every 2 s, and not fooled by a phone that holds the call.
    fn check_phone_media(&mut self, now: Instant) {
        let phone_sends = self
            .negotiation
            .as_ref()
            .is_some_and(|n| n.direction.receives());
        let heard = self.phone_heard_at.get_or_insert(now);
        if !phone_sends {
            *heard = now;
            return;
        }
        let Some(threshold) = self.config.media_dropped_threshold else {
            return;
        };
        if self.media_dropped || now.saturating_duration_since(*heard) < threshold {
            return;
        }
        self.media_dropped = true;
        self.event(CallEvent::MediaDropped);
        if self.config.hangup_on_media_dropped {
            let reason = "Stopped receiving media";
            self.end_call(now, HangupCause::sip(408, reason), 408, reason);
        }
    }

    /// One 20 ms frame each way.
    fn tick(&mut self, now: Instant) {
        self.check_phone_media(now);
        if self.sip != SipState::Answered {
            return;
        }
        self.media.tick(now);
        let (media, mut frames) = self.frame_sink();
        for output in media.outputs() {
            frames.send(now, &output);
        }
        self.pump_conference(now);
        self.pump_media_events();
    }

    /// The room's tick, before its engine runs: whether this call takes part (answered), after
    /// the dropped-media check.
    pub(crate) fn room_tick_starts(&mut self, now: Instant) -> bool {
        if self.sip != SipState::Answered {
            return false;
        }
        self.check_phone_media(now);
        self.sip == SipState::Answered
    }

    /// The room's engine produced this call's frame (after [`Call::room_tick_starts`]).
    pub(crate) fn room_tick_output(&mut self, now: Instant, output: &TickOutput<'_>) {
        if self.sip != SipState::Answered {
            return;
        }
        self.frame_sink().1.send(now, output);
    }

    /// The call's own engine (read only) beside where a tick's frames go, borrowed apart.
    fn frame_sink(&mut self) -> (&Conference, FrameSink<'_>) {
        let Self {
            media,
            conference,
            out,
            phone_remote,
            negotiation,
            dtmf_to_bridge,
            bridge_dtmf,
            ..
        } = self;
        let sink = FrameSink {
            sending: negotiation.as_ref().is_some_and(Negotiation::sending),
            conference,
            out,
            phone_remote: *phone_remote,
            dtmf_to_bridge,
            bridge_dtmf,
        };
        (media, sink)
    }

    /// A re-INVITE or UPDATE with a new offer (hold, resume, codec change): returns the SDP
    /// answer for the 200, or the status to refuse it with (the session then stays as it was).
    pub fn answer_re_offer(&mut self, sdp: &[u8]) -> Result<String, u16> {
        let answer = SessionDescription::parse(sdp)
            .map_err(|_| 400)
            .and_then(|offer| {
                self.sdp
                    .answer(&offer, &self.local_media)
                    .map_err(|e| e.sip_status())
            });
        match answer {
            Ok(answer) => {
                let codec_changed = self
                    .negotiation
                    .as_ref()
                    .is_none_or(|n| n.codec != answer.negotiation.codec);
                if codec_changed {
                    // Codec change: re-attach the phone with the new codec.
                    let _ = self.media.remove_phone(self.config.id);
                    if let Ok(config) = phone_config(&self.config, &answer.negotiation) {
                        let _ = self.media.add_phone(self.config.id, config);
                    }
                } else if let Ok(keys) = srtp_keys(&answer.negotiation) {
                    // Same codec: the SRTP keys may still change (the phone rekeys, or SRTP
                    // goes on or off); unchanged directions keep their SRTP state.
                    let _ = self.media.set_phone_srtp(self.config.id, keys);
                }
                if !answer.negotiation.remote_address.is_unspecified() {
                    let remote = SocketAddr::new(
                        answer.negotiation.remote_address,
                        answer.negotiation.remote_port,
                    );
                    let rtcp = |n: &Negotiation| (n.remote_address, n.remote_port, n.remote_rtcp);
                    if remote != self.phone_remote
                        || self.negotiation.as_ref().map(rtcp) != Some(rtcp(&answer.negotiation))
                    {
                        self.phone_rtcp_remote = rtcp_target(&answer.negotiation);
                    }
                    self.phone_rtcp_mux = answer.negotiation.rtcp_mux;
                    self.phone_remote = remote;
                }
                let _ = self
                    .media
                    .set_sending(self.config.id, answer.negotiation.sending());
                self.negotiation = Some(answer.negotiation);
                Ok(answer.sdp)
            }
            Err(status) => Err(status),
        }
    }

    /// Starts the RTCP reports once media runs: the first after half the interval (RFC 3550
    /// §6.2, "the initial RTCP packet"), so quality figures come soon.
    fn start_rtcp(&mut self, now: Instant) {
        self.next_rtcp = Some(now + self.rtcp_interval(true));
    }

    /// The next RTCP interval: [`RTCP_INTERVAL`] (half of it for the first report) times a
    /// random factor in 0.5..1.5 (RFC 3550 §6.3.1), from the seeded generator.
    fn rtcp_interval(&mut self, initial: bool) -> Duration {
        self.rtcp_rng = self.rtcp_rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rtcp_rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // The top 53 bits as a fraction in 0..1: exact in an f64.
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        let base = if initial {
            RTCP_INTERVAL / 2
        } else {
            RTCP_INTERVAL
        };
        base.mul_f64(0.5 + unit)
    }

    /// Sends our SR or RR (with CNAME, and BYE when `bye`) to the phone's RTCP address, unless
    /// the phone is on hold at `0.0.0.0` or not attached to the engine yet.
    fn send_phone_rtcp(&mut self, now: Instant, bye: bool) {
        if self.phone_remote.ip().is_unspecified() {
            return;
        }
        let mut buf = [0u8; 256];
        let ntp = self.config.wall_clock.ntp(now);
        let Ok(len) = self
            .media
            .write_phone_rtcp(now, ntp, self.config.id, bye, &mut buf)
        else {
            return;
        };
        let (socket, destination) = if self.phone_rtcp_mux {
            (MediaSocket::Phone, self.phone_remote)
        } else {
            (MediaSocket::PhoneRtcp, self.phone_rtcp_remote)
        };
        self.out.push_back(CallOutput::Transmit {
            socket,
            destination,
            contents: buf[..len].to_vec(),
        });
    }

    /// An RTCP datagram from the phone, on the RTCP socket or multiplexed on the RTP socket.
    /// A malformed one is counted and dropped; a valid one latches where we send RTCP
    /// (symmetric RTCP, RFC 4961), like RTP.
    fn phone_rtcp(&mut self, now: Instant, source: SocketAddr, contents: &[u8], muxed: bool) {
        if self.sip == SipState::Ended {
            return;
        }
        let ntp = self.config.wall_clock.ntp(now);
        match self
            .media
            .handle_phone_rtcp(now, ntp, self.config.id, contents)
        {
            Ok(()) => {
                self.phone_rtcp_remote = source;
                self.phone_rtcp_mux = muxed;
            }
            Err(ConferenceError::Rtcp(_)) => self.phone_rtcp_dropped += 1,
            // No phone attached yet (a dial-out not answered): nothing to report on.
            Err(_) => {}
        }
    }

    /// What both legs measured so far: jitter, loss and round-trip time per direction, with
    /// the E-model parameters of each leg's codec.
    pub fn quality(&self) -> CallQuality {
        self.quality_in(&self.media)
    }

    /// [`Call::quality`] with the phone in `engine` (a room's).
    pub(crate) fn quality_in(&self, engine: &Conference) -> CallQuality {
        let phone = engine.phone_stats(self.config.id).map(|stats| {
            let codec = self
                .negotiation
                .as_ref()
                .and_then(|n| codec_kind(&n.codec.name))
                .unwrap_or(CodecKind::Pcmu);
            let clock = f64::from(codec.rtp_clock_rate());
            let inbound = stats.receive.map(|receive| StreamQuality {
                jitter: receive.jitter_duration(),
                loss: stats
                    .local_report
                    .map_or(0.0, |block| f64::from(block.fraction_lost) / 256.0),
            });
            let outbound = stats.remote_report.map(|block| StreamQuality {
                jitter: Duration::from_secs_f64(f64::from(block.jitter) / clock),
                loss: f64::from(block.fraction_lost) / 256.0,
            });
            LegQuality {
                inbound,
                outbound,
                rtt: stats.round_trip_time,
                codec: CodecImpairment::for_codec(codec),
            }
        });
        let bridge = self.conference.bridge_stats().map(|stats| {
            let stream = |jitter: Option<Duration>, loss: Option<f32>| {
                (jitter.is_some() || loss.is_some()).then(|| StreamQuality {
                    jitter: jitter.unwrap_or_default(),
                    loss: f64::from(loss.unwrap_or(0.0)),
                })
            };
            LegQuality {
                inbound: stream(stats.inbound_jitter, stats.inbound_loss),
                outbound: stream(stats.outbound_jitter, stats.outbound_loss),
                rtt: stats.rtt,
                codec: CodecImpairment::OPUS,
            }
        });
        CallQuality {
            phone,
            bridge,
            phone_rtcp_dropped: self.phone_rtcp_dropped,
        }
    }

    /// Ends the SIP side: BYE with `reason` if answered, else a rejection.
    fn finish_sip(&mut self, now: Instant, reason: HangupCause, status: u16, phrase: &str) {
        if self.sip == SipState::Answered {
            // RFC 3550 §6.3.7: we leave the session; the BYE goes before the SIP BYE.
            self.send_phone_rtcp(now, true);
        }
        let command = match self.sip {
            SipState::Ringing => SipCommand::Reject {
                status,
                reason: phrase.to_owned(),
            },
            // Before the answer the SIP adapter sends CANCEL for a hangup.
            SipState::Answered | SipState::Calling => SipCommand::Hangup { reason },
            SipState::Idle | SipState::Ended => {
                self.sip = SipState::Ended;
                return;
            }
        };
        self.sip = SipState::Ended;
        self.out.push_back(CallOutput::Sip(command));
    }

    fn ended(&mut self, reason: String) {
        if self
            .out
            .iter()
            .any(|o| matches!(o, CallOutput::Event(CallEvent::Ended { .. })))
            || self.ended_reported
        {
            return;
        }
        self.ended_reported = true;
        self.sip = SipState::Ended;
        self.next_tick = None;
        self.event(CallEvent::Ended { reason });
    }

    fn event(&mut self, event: CallEvent) {
        self.out.push_back(CallOutput::Event(event));
    }
}

/// Where one tick's frame of a call goes: RTP to the phone (unless it holds the call), Opus and
/// the phone's DTMF presses to the bridge leg.
struct FrameSink<'a> {
    sending: bool,
    conference: &'a mut ConferenceLeg,
    out: &'a mut VecDeque<CallOutput>,
    phone_remote: SocketAddr,
    dtmf_to_bridge: &'a mut VecDeque<(DtmfDigit, u16)>,
    bridge_dtmf: &'a mut Option<DtmfSender>,
}

impl FrameSink<'_> {
    fn send(&mut self, now: Instant, output: &TickOutput<'_>) {
        if self.sending {
            for rtp in [output.to_phone, output.dtmf_to_phone]
                .into_iter()
                .flatten()
            {
                self.out.push_back(CallOutput::Transmit {
                    socket: MediaSocket::Phone,
                    destination: self.phone_remote,
                    contents: rtp.to_vec(),
                });
            }
        }
        let Some(frame) = output.to_bridge else {
            return;
        };
        self.conference.send_audio(
            now,
            frame.rtp_timestamp,
            frame.payload,
            frame.audio_level.level(),
            frame.audio_level.voice(),
        );
        // A press from the phone: one telephone-event packet per tick beside the audio,
        // timestamped in PT 126's 8 kHz clock (our Opus clock is 48 kHz).
        if self.bridge_dtmf.is_none()
            && let Some((digit, ticks)) = self.dtmf_to_bridge.pop_front()
        {
            *self.bridge_dtmf = Some(DtmfSender::new(
                digit,
                frame.rtp_timestamp / 6,
                ticks,
                160,
                DTMF_VOLUME,
            ));
        }
        if let Some(sender) = self.bridge_dtmf.as_mut() {
            if let Some(packet) = sender.poll_packet() {
                self.conference
                    .send_dtmf(now, packet.timestamp, &packet.payload, packet.marker);
            }
            if sender.is_done() {
                *self.bridge_dtmf = None;
            }
        }
    }
}

/// A tick up to this late is caught up frame by frame (the peers' jitter buffers absorb the
/// short burst); later than that, whole frames are skipped.
const MAX_CATCH_UP: Duration = Duration::from_millis(100);

/// The tick after the one due at `tick`, run at `now`. It stays on the 20 ms grid: moving the
/// grid later after a stall would add that stall to the audio delay for the rest of the call.
pub(crate) fn next_tick(tick: Instant, now: Instant) -> Instant {
    let next = tick + TICK;
    let behind = now.saturating_duration_since(next);
    if behind <= MAX_CATCH_UP {
        return next;
    }
    let frames = u32::try_from(behind.as_nanos() / TICK.as_nanos()).unwrap_or(u32::MAX);
    next + TICK * frames
}

/// How a conference ending reaches the phone: the BYE `Reason` (RFC 3326) once answered, or the
/// status and phrase of the rejection before.
fn end_mapping(reason: &EndReason) -> (HangupCause, u16, &'static str) {
    let (cause, status, phrase) = match reason {
        EndReason::NoInvite => (
            HangupCause::sip(408, "No invite from conference focus"),
            486,
            "No invite from conference focus",
        ),
        EndReason::Kicked => (
            HangupCause::q850(16, "Kicked from the conference"),
            603,
            "Kicked from the conference",
        ),
        EndReason::RoomDestroyed => (
            HangupCause::q850(16, "The conference ended"),
            480,
            "The conference ended",
        ),
        EndReason::WrongPassword => (
            HangupCause::q850(21, "Wrong room password"),
            403,
            "Wrong room password",
        ),
        EndReason::Lobby => (
            HangupCause::q850(21, "The room has a lobby"),
            480,
            "The room has a lobby",
        ),
        EndReason::MaxOccupants => (
            HangupCause::q850(34, "The conference is full"),
            486,
            "The conference is full",
        ),
        EndReason::JoinRefused(_) => (
            HangupCause::q850(21, "Could not join the conference"),
            486,
            "Could not join the conference",
        ),
        EndReason::FocusUnavailable(_) => (
            HangupCause::sip(503, "Conference unavailable"),
            503,
            "Conference unavailable",
        ),
        EndReason::HangupRequested => (
            HangupCause::q850(16, "Hung up from the conference"),
            487,
            "Hung up from the conference",
        ),
        EndReason::Local => (
            HangupCause::q850(16, "Normal call clearing"),
            487,
            "Request Terminated",
        ),
        EndReason::ConnectionLost => (
            HangupCause::sip(503, "Conference connection lost"),
            480,
            "Conference connection lost",
        ),
    };
    (cause, status, phrase)
}

/// The engine's codec for an SDP encoding name.
fn codec_kind(name: &str) -> Option<CodecKind> {
    match name.to_ascii_uppercase().as_str() {
        "PCMU" => Some(CodecKind::Pcmu),
        "PCMA" => Some(CodecKind::Pcma),
        "G722" => Some(CodecKind::G722),
        "OPUS" => Some(CodecKind::Opus),
        _ => None,
    }
}

/// The phone's RTCP address by default: the RTP port + 1 (RFC 3550 §11).
fn rtcp_address(rtp: SocketAddr) -> SocketAddr {
    SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))
}

/// Where the phone wants RTCP: its `a=rtcp` (RFC 3605), else its RTP port + 1.
fn rtcp_target(negotiation: &Negotiation) -> SocketAddr {
    negotiation.remote_rtcp.unwrap_or_else(|| {
        rtcp_address(SocketAddr::new(
            negotiation.remote_address,
            negotiation.remote_port,
        ))
    })
}

/// The audio engine's settings for the negotiated phone codec.
fn phone_config(config: &CallConfig, negotiation: &Negotiation) -> Result<PhoneConfig, CallError> {
    let name = &negotiation.codec.name;
    let codec = codec_kind(name).ok_or_else(|| CallError::Offer {
        status: 488,
        reason: format!(
            "codec {} is not supported by the audio engine",
            name.to_ascii_uppercase()
        ),
    })?;
    let mut phone = PhoneConfig::new(codec, config.conference.ssrc, config.phone_ssrc);
    phone.payload_type = negotiation.codec.payload_type;
    phone.telephone_event_pt = negotiation.telephone_event.as_ref().map(|t| t.payload_type);
    // Without a negotiated telephone-event the engine falls back to in-band tones itself.
    phone.dtmf_method = match config.dtmf_method {
        DtmfToPhone::Inband => DtmfMethod::Inband,
        DtmfToPhone::Auto | DtmfToPhone::Rtp | DtmfToPhone::SipInfo => DtmfMethod::Rfc4733,
    };
    phone.first_sequence = config.first_sequence;
    phone.first_timestamp = config.first_timestamp;
    phone.first_bridge_timestamp = config.first_timestamp.rotate_left(7);
    phone.srtp = srtp_keys(negotiation)?;
    if codec == CodecKind::Opus {
        // RFC 7587 §6.1: the phone's fmtp describes what it receives. Stay within its
        // `maxaveragebitrate`, and send in-band FEC only to a decoder that says it uses it
        // (`useinbandfec=1`; 0 by default): libopus takes the FEC bits out of the audio's.
        let fmtp = |name| negotiation.codec.fmtp_param(name);
        if let Some(max) = fmtp("maxaveragebitrate").and_then(|v| v.parse::<u32>().ok()) {
            phone.phone_opus.bitrate = phone.phone_opus.bitrate.min(max.clamp(6_000, 510_000));
        }
        phone.phone_opus.inband_fec = fmtp("useinbandfec") == Some("1");
    }
    Ok(phone)
}

/// The engine's SRTP keys for the negotiated SDES, if any.
fn srtp_keys(negotiation: &Negotiation) -> Result<Option<SrtpKeys>, CallError> {
    let Some(params) = &negotiation.srtp else {
        return Ok(None);
    };
    let remote = SrtpMasterKey::from_slice(&params.remote_key).map_err(|e| CallError::Offer {
        status: 488,
        reason: e.to_string(),
    })?;
    Ok(Some(SrtpKeys {
        suite: match params.suite {
            SdesSuite::AesCm128HmacSha1_80 => SrtpSuite::AesCm128HmacSha1_80,
            SdesSuite::AesCm128HmacSha1_32 => SrtpSuite::AesCm128HmacSha1_32,
        },
        local: SrtpMasterKey::new(&params.local_key),
        remote,
    }))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod srtp_tests;
