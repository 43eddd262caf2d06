//! [`ConferenceLeg`]: the gateway's participant in one Jitsi conference
//! (jitsi-protocols.md §3-§6, jigasi-behaviour.md §1.6-§1.7, §1.12, §4.1 I1-I7).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use jid::{BareJid, FullJid, Jid};
use jigasi_bridge::{
    AudioPacket, Candidate as LegCandidate, CandidateKind, IceParams, LegConfig, LegError,
    LegEvent, LegOutput, LegStats, MediaLeg, RemoteParams, Role, Transmit,
};
use jigasi_jingle::answer::{LocalAnswer, build_session_accept, gateway_msid};
use jigasi_jingle::focus::ConferenceIq;
use jigasi_jingle::ice::{Candidate, CandidateType, Transport, TransportChild};
use jigasi_jingle::jingle::{Action, Jingle, JingleChild, Reason, ReasonCondition};
use jigasi_jingle::jitmeet::{Mute, MuteMedia};
use jigasi_jingle::presence::JoinPresence;
use jigasi_jingle::rtp::{DescriptionChild, Media, SourceChild};
use jigasi_types::Ssrc;
use jigasi_xmpp::disco::DiscoInfo;
use jigasi_xmpp::muc::{MucPresence, leave_presence};
use jigasi_xmpp::ns;
use jigasi_xmpp::stanza::{iq, iq_error, iq_result, is_iq_request, set_attr};
use minidom::Element;

/// How often the `conference` IQ is retried while the focus answers `ready="false"`.
const CONFERENCE_RETRY: Duration = Duration::from_secs(1);
/// How many `ready="false"` answers we accept before giving up.
const CONFERENCE_MAX_ATTEMPTS: u32 = 30;
/// How long an IQ to the focus may stay unanswered.
const IQ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the MUC join may take.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a [`ConferenceLeg`] needs to know up front.
#[derive(Debug, Clone)]
pub struct ConferenceConfig {
    /// The conference room, `room@conference.<domain>`.
    pub room: BareJid,
    /// Our nick in the room: 8 lower-case hex digits (also the JVB endpoint id).
    pub nick: String,
    /// The room password (`Jitsi-Conference-Room-Pass` / `JvbRoomPassword`).
    pub password: Option<String>,
    /// Where the `conference` IQ goes: `focus.<domain>`.
    pub focus_component: String,
    /// The focus's nick in the room (`FOCUS_RESOURCE`, `focus`).
    pub focus_nick: String,
    /// Display name in the room (the caller's name or the dialled number).
    pub display_name: Option<String>,
    /// `LOCAL_REGION`.
    pub region: Option<String>,
    /// Our version for the presence.
    pub version: Option<String>,
    /// `STATS_ID`.
    pub stats_id: Option<String>,
    /// Headers to show in `<initiator>` (forwarded dial headers).
    pub initiator_headers: Vec<(String, String)>,
    /// `machine-uid` for the conference IQ.
    pub machine_uid: String,
    /// How long to wait for the focus's `session-initiate` after joining, and again after a
    /// `session-terminate` (Jigasi's `JVB_INVITE_TIMEOUT`, 30 s); `None` = wait forever.
    pub invite_timeout: Option<Duration>,
    /// Local addresses of the media socket(s) for ICE host candidates.
    pub media_addrs: Vec<SocketAddr>,
    /// Our audio SSRC toward the bridge.
    pub ssrc: Ssrc,
    /// A random UUID for our msid.
    pub msid_uuid: String,
}

/// Why the conference side of a call ended. Each maps to a SIP reason for the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// A moderator kicked us (presence status 307).
    Kicked,
    /// The room was destroyed ("end meeting for all").
    RoomDestroyed,
    /// No `session-initiate` within the invite timeout (Jigasi: 486 / BYE with 408).
    NoInvite,
    /// The room needs a password we do not have (`not-authorized`).
    WrongPassword,
    /// The room has a lobby (`registration-required`).
    Lobby,
    /// The room is full (`service-unavailable`).
    MaxOccupants,
    /// The MUC refused the join for another reason.
    JoinRefused(String),
    /// The focus answered the `conference` IQ with an error, or never said it is ready.
    FocusUnavailable(String),
    /// A `hangup` IQ asked us to leave (Rayo, jigasi-behaviour.md §1.4).
    HangupRequested,
    /// The call was ended locally (the phone hung up).
    Local,
    /// The XMPP connection was lost and not recovered.
    ConnectionLost,
}

/// Something the call (and its owner) must know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConferenceEvent {
    /// The MUC join was confirmed; `occupants` counts everyone but us.
    Joined {
        /// Other occupants, the focus included.
        occupants: usize,
    },
    /// The focus's offer was accepted (session-accept sent): the phone may be answered now.
    SessionAccepted,
    /// ICE and DTLS to the bridge are up.
    MediaConnected,
    /// Audio from a remote speaker.
    Audio(AudioPacket),
    /// The focus ended the Jingle session (or left); we wait for a new invite.
    SessionTerminated {
        /// The Jingle reason, if any.
        reason: Option<String>,
    },
    /// The focus muted (`true`) or unmuted us.
    MuteChanged(bool),
    /// The number of other occupants changed.
    OccupantsChanged(usize),
    /// The conference side is over; nothing more will happen.
    Ended(EndReason),
}

/// What [`ConferenceLeg::poll_output`] yields.
#[derive(Debug, Clone, PartialEq)]
pub enum ConferenceOutput {
    /// Send this stanza on the per-call XMPP connection.
    Send(Element),
    /// Send this datagram from the media socket.
    Transmit(Transmit),
    /// Something happened.
    Event(ConferenceEvent),
    /// Call [`ConferenceLeg::handle_timeout`] at this time (or on the next input).
    Timeout(Instant),
    /// Nothing scheduled: wait for the next input.
    Idle,
}

/// Where the conference side stands.
#[derive(Debug)]
enum State {
    /// Waiting for the XMPP connection.
    ExpectOnline,
    /// The `conference` IQ is out.
    ExpectConferenceResult {
        id: String,
        attempt: u32,
        deadline: Instant,
    },
    /// `ready="false"`: asking again at `retry_at`.
    ConferenceRetry { attempt: u32, retry_at: Instant },
    /// The join presence is out.
    ExpectJoin { deadline: Instant },
    /// In the room, no Jingle session: waiting for the focus's offer.
    ExpectSessionInitiate { deadline: Option<Instant> },
    /// A Jingle session with the bridge.
    Active { sid: String, leg: Box<MediaLeg> },
    /// Over.
    Ended,
}

/// The gateway's participant in one conference. See the crate docs for how to drive it.
#[derive(Debug)]
pub struct ConferenceLeg {
    config: ConferenceConfig,
    state: State,
    our_jid: Option<Jid>,
    occupant: FullJid,
    focus_occupant: FullJid,
    /// Other occupants' nicks (the focus included).
    occupants: Vec<String>,
    /// Who owns each remote audio SSRC (from `ssrc-info`), to drop them when the owner leaves.
    owners: std::collections::BTreeMap<Ssrc, String>,
    muted: bool,
    /// The call state shown to the room in presence `<status>` (Jigasi: "Initializing Call",
    /// "Ringing", "Connected", the SIP reason).
    status: Option<String>,
    next_id: u64,
    out: VecDeque<ConferenceOutput>,
    /// The media leg's next deadline, taken when its outputs were drained.
    leg_timeout: Option<Instant>,
    disco: DiscoInfo,
}

impl ConferenceLeg {
    /// A conference leg that starts when the XMPP connection is online.
    pub fn new(config: ConferenceConfig) -> Result<Self, jid::Error> {
        let occupant = FullJid::new(&format!("{}/{}", config.room, config.nick))?;
        let focus_occupant = FullJid::new(&format!("{}/{}", config.room, config.focus_nick))?;
        Ok(Self {
            config,
            state: State::ExpectOnline,
            our_jid: None,
            occupant,
            focus_occupant,
            occupants: Vec::new(),
            owners: std::collections::BTreeMap::new(),
            muted: false,
            status: None,
            next_id: 0,
            out: VecDeque::new(),
            leg_timeout: None,
            disco: DiscoInfo::jigasi(),
        })
    }

    /// Our occupant JID, `room@conference.<domain>/<nick>` (the Rayo `<ref>` points here).
    pub fn occupant(&self) -> &FullJid {
        &self.occupant
    }

    /// Whether the MUC join is confirmed and the leg has not ended.
    pub fn is_joined(&self) -> bool {
        matches!(
            self.state,
            State::ExpectSessionInitiate { .. } | State::Active { .. }
        )
    }

    /// Whether the conference side is over.
    pub fn is_ended(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// What the bridge media leg measured (RTCP and ICE), while a Jingle session is active.
    pub fn bridge_stats(&self) -> Option<LegStats> {
        match &self.state {
            State::Active { leg, .. } => Some(leg.stats()),
            State::ExpectOnline
            | State::ExpectConferenceResult { .. }
            | State::ConferenceRetry { .. }
            | State::ExpectJoin { .. }
            | State::ExpectSessionInitiate { .. }
            | State::Ended => None,
        }
    }

    /// Other occupants (the focus included).
    pub fn occupant_count(&self) -> usize {
        self.occupants.len()
    }

    /// The per-call XMPP connection is online as `jid`: ask the focus for the conference.
    pub fn handle_online(&mut self, now: Instant, jid: Jid) {
        if !matches!(self.state, State::ExpectOnline) {
            return;
        }
        self.our_jid = Some(jid);
        self.send_conference_request(now, 1);
    }

    /// A stanza arrived on the per-call connection.
    pub fn handle_stanza(&mut self, now: Instant, stanza: &Element) {
        if self.is_ended() {
            if is_iq_request(stanza) {
                self.send(iq_error(stanza, "cancel", "item-not-found"));
            }
            return;
        }
        match stanza.name() {
            "presence" => self.handle_presence(now, stanza),
            "iq" => self.handle_iq(now, stanza),
            _ => {}
        }
    }

    /// A datagram arrived on the media socket.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        if let State::Active { leg, .. } = &mut self.state {
            let result = leg.handle_receive(now, source, destination, contents);
            self.check_leg(now, result);
        }
    }

    /// Time has reached the last [`ConferenceOutput::Timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.state {
            State::ExpectConferenceResult { deadline, .. } if *deadline <= now => {
                self.end(EndReason::FocusUnavailable(
                    "no answer to the conference request".into(),
                ));
            }
            State::ConferenceRetry { attempt, retry_at } if *retry_at <= now => {
                let attempt = *attempt;
                self.send_conference_request(now, attempt);
            }
            State::ExpectJoin { deadline } if *deadline <= now => {
                self.end(EndReason::JoinRefused("no answer to the join".into()));
            }
            State::ExpectSessionInitiate {
                deadline: Some(deadline),
            } if *deadline <= now => {
                self.leave();
                self.end(EndReason::NoInvite);
            }
            State::Active { leg, .. } => {
                let result = leg.handle_timeout(now);
                self.check_leg(now, result);
            }
            State::ExpectOnline
            | State::ExpectConferenceResult { .. }
            | State::ConferenceRetry { .. }
            | State::ExpectJoin { .. }
            | State::ExpectSessionInitiate { .. }
            | State::Ended => {}
        }
    }

    /// Our audio toward the conference (one Opus frame). Dropped while muted or before media is
    /// connected.
    pub fn send_audio(
        &mut self,
        now: Instant,
        rtp_time: u32,
        payload: &[u8],
        level: u8,
        voice: bool,
    ) {
        if self.muted {
            return;
        }
        let ssrc = self.config.ssrc;
        if let State::Active { leg, .. } = &mut self.state {
            let result = leg
                .send_audio(now, ssrc, rtp_time, payload, level, voice)
                .map(|_| ());
            self.check_leg(now, result);
        }
    }

    /// One RFC 4733 telephone-event packet toward the conference (DTMF pressed on the phone).
    /// Dropped while muted or before media is connected, like audio.
    pub fn send_dtmf(&mut self, now: Instant, rtp_time: u32, payload: &[u8; 4], marker: bool) {
        if self.muted {
            return;
        }
        let ssrc = self.config.ssrc;
        if let State::Active { leg, .. } = &mut self.state {
            let result = leg
                .send_telephone_event(now, ssrc, rtp_time, payload, marker)
                .map(|_| ());
            self.check_leg(now, result);
        }
    }

    /// The call is over on our side (the phone hung up): terminate the Jingle session and leave.
    pub fn hang_up(&mut self) {
        if self.is_ended() {
            return;
        }
        if let State::Active { sid, .. } = &self.state {
            let mut terminate = Jingle::new(
                Action::SessionTerminate,
                jigasi_jingle::jingle::Sid(sid.clone()),
            );
            terminate.children.push(JingleChild::Reason(Reason::new(
                ReasonCondition::Success,
                Some("hangup"),
            )));
            let iq = self.iq_to_focus("set", terminate.to_element());
            self.send(iq);
        }
        if !matches!(
            self.state,
            State::ExpectOnline
                | State::ExpectConferenceResult { .. }
                | State::ConferenceRetry { .. }
        ) {
            self.leave();
        }
        self.end(EndReason::Local);
    }

    /// Shows the call's state to the room (presence `<status>`), e.g. "Ringing" or the SIP reason
    /// of a failed dial-out. Published at once when joined, and in the join presence otherwise.
    pub fn set_status(&mut self, status: Option<String>) {
        if self.status == status {
            return;
        }
        self.status = status;
        self.publish_presence();
    }

    /// The XMPP connection is gone.
    pub fn handle_connection_lost(&mut self) {
        self.end(EndReason::ConnectionLost);
    }

    /// The next output. Drain until [`ConferenceOutput::Timeout`] or [`ConferenceOutput::Idle`].
    pub fn poll_output(&mut self) -> ConferenceOutput {
        if let Some(output) = self.out.pop_front() {
            return output;
        }
        let leg_timeout = match self.state {
            State::Active { .. } => self.leg_timeout,
            State::ExpectOnline
            | State::ExpectConferenceResult { .. }
            | State::ConferenceRetry { .. }
            | State::ExpectJoin { .. }
            | State::ExpectSessionInitiate { .. }
            | State::Ended => None,
        };
        let own = match &self.state {
            State::ExpectConferenceResult { deadline, .. } | State::ExpectJoin { deadline } => {
                Some(*deadline)
            }
            State::ConferenceRetry { retry_at, .. } => Some(*retry_at),
            State::ExpectSessionInitiate { deadline } => *deadline,
            State::ExpectOnline | State::Active { .. } | State::Ended => None,
        };
        match (own, leg_timeout) {
            (Some(a), Some(b)) => ConferenceOutput::Timeout(a.min(b)),
            (Some(at), None) | (None, Some(at)) => ConferenceOutput::Timeout(at),
            (None, None) => ConferenceOutput::Idle,
        }
    }

    fn send_conference_request(&mut self, now: Instant, attempt: u32) {
        let id = self.new_id("conf");
        let request = ConferenceIq::request(self.config.room.clone(), &self.config.machine_uid);
        let mut stanza = iq(
            "set",
            Some(&self.config.focus_component),
            request.to_element(),
        );
        set_attr(&mut stanza, "id", id.clone());
        self.send(stanza);
        self.state = State::ExpectConferenceResult {
            id,
            attempt,
            deadline: now + IQ_TIMEOUT,
        };
    }

    fn join(&mut self, now: Instant) {
        let element = self.presence_element();
        self.send(element);
        self.state = State::ExpectJoin {
            deadline: now + JOIN_TIMEOUT,
        };
    }

    /// Our presence in the room (jitsi-protocols.md §3.2 Example 4): nick, features, initiator
    /// headers, `audiomuted`, `SourceInfo`, caps, and the call `<status>` when there is one.
    fn presence_element(&self) -> Element {
        let mut presence = JoinPresence::sip_gateway(self.occupant.clone());
        presence.password = self.config.password.clone();
        presence.nick = self.config.display_name.clone();
        presence.region = self.config.region.clone();
        presence.version = self.config.version.clone();
        presence.stats_id = self.config.stats_id.clone();
        presence.audio_muted = self.muted;
        presence.initiator_headers = self
            .config
            .initiator_headers
            .iter()
            .map(|(name, value)| jigasi_jingle::rayo::Header::new(name, value))
            .collect();
        let mut element = presence.to_element();
        element.append_child(self.disco.caps_element(jigasi_xmpp::disco::JITSI_CAPS_NODE));
        if let Some(status) = &self.status {
            element.append_child(
                Element::builder("status", ns::JABBER_CLIENT)
                    .append(status.as_str())
                    .build(),
            );
        }
        element
    }

    fn leave(&mut self) {
        self.send(leave_presence(&self.occupant));
    }

    fn handle_presence(&mut self, now: Instant, presence: &Element) {
        let Some(classified) = MucPresence::classify(presence) else {
            return;
        };
        let in_room = |jid: &FullJid| jid.to_bare() == self.config.room;
        match classified {
            MucPresence::SelfJoined { occupant, .. } if occupant == self.occupant => {
                if matches!(self.state, State::ExpectJoin { .. }) {
                    self.state = State::ExpectSessionInitiate {
                        deadline: self.config.invite_timeout.map(|t| now + t),
                    };
                    self.event(ConferenceEvent::Joined {
                        occupants: self.occupants.len(),
                    });
                }
            }
            MucPresence::OccupantAvailable { occupant, .. } if in_room(&occupant) => {
                let nick = occupant.resource().as_str().to_owned();
                if nick != self.config.nick && !self.occupants.contains(&nick) {
                    self.occupants.push(nick);
                    if self.is_joined() {
                        self.event(ConferenceEvent::OccupantsChanged(self.occupants.len()));
                    }
                }
            }
            MucPresence::OccupantLeft { occupant } if in_room(&occupant) => {
                let nick = occupant.resource().as_str().to_owned();
                self.occupants.retain(|n| *n != nick);
                self.forget_sources_of(&occupant);
                if nick == self.config.focus_nick && self.is_joined() {
                    // The focus left: the session is gone; wait for it (or another focus) to
                    // invite us again, as after a session-terminate (Jigasi I6 → I7).
                    self.session_gone(now, Some("focus left".into()));
                }
                self.event(ConferenceEvent::OccupantsChanged(self.occupants.len()));
            }
            MucPresence::Kicked { occupant, is_self } if is_self || occupant == self.occupant => {
                self.end(EndReason::Kicked);
            }
            MucPresence::RoomDestroyed { room, .. } if room == self.config.room => {
                self.end(EndReason::RoomDestroyed);
            }
            MucPresence::Error { from, error, .. }
                if from
                    .as_ref()
                    .is_some_and(|f| f.to_bare() == self.config.room) =>
            {
                let reason = match error.condition.as_str() {
                    "not-authorized" => EndReason::WrongPassword,
                    "registration-required" => EndReason::Lobby,
                    "service-unavailable" => EndReason::MaxOccupants,
                    other => EndReason::JoinRefused(other.to_owned()),
                };
                self.end(reason);
            }
            MucPresence::SelfJoined { .. }
            | MucPresence::OccupantAvailable { .. }
            | MucPresence::OccupantLeft { .. }
            | MucPresence::SelfLeft { .. }
            | MucPresence::Kicked { .. }
            | MucPresence::RoomDestroyed { .. }
            | MucPresence::Error { .. } => {}
        }
    }

    fn handle_iq(&mut self, now: Instant, stanza: &Element) {
        let kind = stanza.attr("type").unwrap_or_default();
        if kind == "result" || kind == "error" {
            self.handle_iq_response(now, stanza);
            return;
        }
        if !is_iq_request(stanza) {
            return;
        }
        if let Some(answer) = self.disco.answer(stanza) {
            self.send(answer);
            return;
        }
        let Some(payload) = stanza.children().next() else {
            self.send(iq_error(stanza, "modify", "bad-request"));
            return;
        };
        if payload.is("jingle", jigasi_jingle::ns::JINGLE) {
            self.handle_jingle(now, stanza, payload);
        } else if kind == "set" && payload.name() == "mute" {
            self.handle_mute(stanza, payload);
        } else if kind == "set" && payload.is("hangup", jigasi_jingle::ns::RAYO) {
            self.send(iq_result(stanza));
            self.hang_up_requested();
        } else {
            self.send(iq_error(stanza, "cancel", "service-unavailable"));
        }
    }

    fn handle_iq_response(&mut self, now: Instant, stanza: &Element) {
        let State::ExpectConferenceResult { id, attempt, .. } = &self.state else {
            return;
        };
        if stanza.attr("id") != Some(id.as_str()) {
            return;
        }
        let attempt = *attempt;
        if stanza.attr("type") == Some("error") {
            let condition = jigasi_xmpp::StanzaError::from_stanza(stanza)
                .map_or_else(|| "unknown error".to_owned(), |e| e.condition);
            self.end(EndReason::FocusUnavailable(condition));
            return;
        }
        let ready = stanza
            .children()
            .find(|c| c.name() == "conference")
            .and_then(|c| ConferenceIq::parse(c).ok())
            .and_then(|c| c.ready)
            .unwrap_or(true);
        if ready {
            self.join(now);
        } else if attempt >= CONFERENCE_MAX_ATTEMPTS {
            self.end(EndReason::FocusUnavailable(
                "the focus never became ready".into(),
            ));
        } else {
            self.state = State::ConferenceRetry {
                attempt: attempt + 1,
                retry_at: now + CONFERENCE_RETRY,
            };
        }
    }

    fn handle_jingle(&mut self, now: Instant, stanza: &Element, payload: &Element) {
        // Only the focus may drive the session (jitsi-protocols.md §4.1).
        let from_focus = stanza
            .attr("from")
            .and_then(|f| FullJid::new(f).ok())
            .is_some_and(|f| f == self.focus_occupant);
        if !from_focus {
            self.send(iq_error(stanza, "cancel", "forbidden"));
            return;
        }
        let jingle = match Jingle::parse(payload) {
            Ok(jingle) => jingle,
            Err(_) => {
                self.send(iq_error(stanza, "modify", "bad-request"));
                return;
            }
        };
        match &jingle.action {
            Action::SessionInitiate => self.accept_session(now, stanza, &jingle),
            Action::SessionTerminate => {
                self.send(iq_result(stanza));
                if self.active_sid() == Some(jingle.sid.as_str()) {
                    let reason = jingle.reason().map(|r| {
                        r.text
                            .clone()
                            .unwrap_or_else(|| format!("{:?}", r.condition))
                    });
                    self.session_gone(now, reason);
                }
            }
            action if action.is_source_add() || action.is_source_remove() => {
                self.send(iq_result(stanza));
                let add = action.is_source_add();
                self.apply_sources(&jingle, add);
            }
            Action::TransportInfo => {
                self.send(iq_result(stanza));
                let candidates = jingle
                    .first_transport()
                    .map(offered_candidates)
                    .unwrap_or_default();
                if let State::Active { leg, .. } = &mut self.state {
                    for candidate in candidates {
                        // A bad candidate is ignored, the session stays.
                        let _ = leg.add_remote_candidate(&candidate);
                    }
                }
            }
            Action::AddSourceLegacy
            | Action::ContentAccept
            | Action::ContentAdd
            | Action::ContentModify
            | Action::ContentReject
            | Action::ContentRemove
            | Action::DescriptionInfo
            | Action::RemoveSourceLegacy
            | Action::SecurityInfo
            | Action::SessionAccept
            | Action::SessionInfo
            | Action::SourceAdd
            | Action::SourceRemove
            | Action::TransportAccept
            | Action::TransportReject
            | Action::TransportReplace
            | Action::Other(_) => {
                // Acknowledge everything else (session-info, ...): the focus treats an error as
                // a failure of the session.
                self.send(iq_result(stanza));
            }
        }
    }

    fn accept_session(&mut self, now: Instant, stanza: &Element, offer: &Jingle) {
        if matches!(self.state, State::Active { .. }) {
            // A new offer replaces the old session (the focus restarted it).
            self.state = State::ExpectSessionInitiate { deadline: None };
        }
        if !matches!(self.state, State::ExpectSessionInitiate { .. }) {
            self.send(iq_error(stanza, "cancel", "unexpected-request"));
            return;
        }
        let Some(transport) = offer.first_transport() else {
            self.send(iq_error(stanza, "modify", "bad-request"));
            return;
        };
        let Some(remote) = remote_params(transport) else {
            self.send(iq_error(stanza, "modify", "bad-request"));
            return;
        };
        let mut leg = match MediaLeg::new(
            LegConfig::new(Role::Gateway, self.config.media_addrs.clone()),
            now,
        ) {
            Ok(leg) => leg,
            Err(_) => {
                self.send(iq_error(stanza, "wait", "internal-server-error"));
                return;
            }
        };
        if leg.start(&remote).is_err() || leg.add_send_ssrc(self.config.ssrc).is_err() {
            self.send(iq_error(stanza, "modify", "bad-request"));
            return;
        }
        self.owners.clear();
        for (ssrc, owner) in audio_sources(offer) {
            // A remote SSRC equal to ours would be a focus bug; skip it rather than fail.
            if leg.add_receive_ssrc(ssrc).is_ok()
                && let Some(owner) = owner
            {
                self.owners.insert(ssrc, owner);
            }
        }
        let local_ice = leg.local_ice();
        let (hash, fingerprint) = leg.local_fingerprint();
        let Some(responder) = self.our_jid.clone() else {
            self.send(iq_error(stanza, "wait", "internal-server-error"));
            return;
        };
        let local = LocalAnswer {
            responder,
            endpoint_id: self.config.nick.clone(),
            ssrc: self.config.ssrc,
            msid: gateway_msid(&self.config.nick, &self.config.msid_uuid),
            ufrag: local_ice.ufrag,
            pwd: local_ice.pwd,
            candidates: leg
                .local_candidates()
                .iter()
                .map(jingle_candidate)
                .collect(),
            fingerprint_hash: hash,
            fingerprint,
        };
        let answer = match build_session_accept(offer, &local) {
            Ok(answer) => answer,
            Err(_) => {
                self.send(iq_error(stanza, "cancel", "not-acceptable"));
                return;
            }
        };
        self.send(iq_result(stanza));
        let accept = self.iq_to_focus("set", answer.to_element());
        self.send(accept);
        self.state = State::Active {
            sid: offer.sid.as_str().to_owned(),
            leg: Box::new(leg),
        };
        self.event(ConferenceEvent::SessionAccepted);
        self.drain_leg();
    }

    fn apply_sources(&mut self, jingle: &Jingle, add: bool) {
        let ssrcs = audio_sources(jingle);
        let State::Active { leg, .. } = &mut self.state else {
            return;
        };
        for (ssrc, owner) in ssrcs {
            if add {
                if leg.add_receive_ssrc(ssrc).is_ok()
                    && let Some(owner) = owner
                {
                    self.owners.insert(ssrc, owner);
                }
            } else {
                leg.remove_receive_ssrc(ssrc);
                self.owners.remove(&ssrc);
            }
        }
        self.drain_leg();
    }

    /// Drops the sources an occupant owned: it left, and Jicofo sends no source-remove for that
    /// (jitsi-protocols.md §8.4).
    fn forget_sources_of(&mut self, occupant: &FullJid) {
        let nick = occupant.resource().as_str();
        let gone: Vec<Ssrc> = self
            .owners
            .iter()
            .filter(|(_, owner)| owner.as_str() == nick)
            .map(|(ssrc, _)| *ssrc)
            .collect();
        if gone.is_empty() {
            return;
        }
        for ssrc in &gone {
            self.owners.remove(ssrc);
        }
        if let State::Active { leg, .. } = &mut self.state {
            for ssrc in gone {
                leg.remove_receive_ssrc(ssrc);
            }
        }
        self.drain_leg();
    }

    fn handle_mute(&mut self, stanza: &Element, payload: &Element) {
        let Ok(mute) = Mute::parse(payload) else {
            self.send(iq_error(stanza, "modify", "bad-request"));
            return;
        };
        let from_focus = stanza
            .attr("from")
            .and_then(|f| FullJid::new(f).ok())
            .is_some_and(|f| {
                f == self.focus_occupant || f.domain().as_str() == self.config.focus_component
            });
        if mute.media != MuteMedia::Audio || !from_focus {
            self.send(iq_error(stanza, "cancel", "not-allowed"));
            return;
        }
        self.send(iq_result(stanza));
        if mute.mute != self.muted {
            self.muted = mute.mute;
            self.publish_presence();
            self.event(ConferenceEvent::MuteChanged(self.muted));
        }
    }

    fn publish_presence(&mut self) {
        if !self.is_joined() {
            return;
        }
        let mut element = self.presence_element();
        // An update is a presence without the MUC `x` join element.
        element.remove_child("x", ns::MUC);
        self.send(element);
    }

    fn hang_up_requested(&mut self) {
        if let State::Active { sid, .. } = &self.state {
            let mut terminate = Jingle::new(
                Action::SessionTerminate,
                jigasi_jingle::jingle::Sid(sid.clone()),
            );
            terminate.children.push(JingleChild::Reason(Reason::new(
                ReasonCondition::Success,
                Some("hangup"),
            )));
            let iq = self.iq_to_focus("set", terminate.to_element());
            self.send(iq);
        }
        self.leave();
        self.end(EndReason::HangupRequested);
    }

    fn session_gone(&mut self, now: Instant, reason: Option<String>) {
        self.state = State::ExpectSessionInitiate {
            deadline: self.config.invite_timeout.map(|t| now + t),
        };
        self.event(ConferenceEvent::SessionTerminated { reason });
    }

    fn media_failed(&mut self, error: &LegError) {
        let State::Active { sid, .. } = &self.state else {
            return;
        };
        // Tell the focus ICE failed so it re-invites us (jitsi-protocols.md §4.5).
        let mut info = Jingle::new(Action::SessionInfo, jigasi_jingle::jingle::Sid(sid.clone()));
        info.children
            .push(JingleChild::IceState(jigasi_jingle::jingle::IceState(
                "failed".into(),
            )));
        let iq = self.iq_to_focus("set", info.to_element());
        self.send(iq);
        tracing::warn!(%error, "media leg to the bridge failed; asked the focus for a new session");
        self.state = State::ExpectSessionInitiate { deadline: None };
        self.event(ConferenceEvent::SessionTerminated {
            reason: Some(format!("media failed: {error}")),
        });
    }

    /// After every input to the media leg: on failure ask for a new session; otherwise drain the
    /// leg's outputs into our queue at once (str0m's rule: in RTP mode it keeps only one received
    /// packet pending, so several inputs without draining would lose audio).
    fn check_leg(&mut self, _now: Instant, result: Result<(), LegError>) {
        if let Err(error) = result {
            self.media_failed(&error);
            return;
        }
        self.drain_leg();
    }

    fn drain_leg(&mut self) {
        let State::Active { leg, .. } = &mut self.state else {
            self.leg_timeout = None;
            return;
        };
        loop {
            match leg.poll_output() {
                Ok(LegOutput::Transmit(transmit)) => {
                    self.out.push_back(ConferenceOutput::Transmit(transmit));
                }
                Ok(LegOutput::Event(event)) => {
                    if let Some(event) = map_leg_event(event) {
                        self.out.push_back(ConferenceOutput::Event(event));
                    }
                }
                Ok(LegOutput::Timeout(at)) => {
                    self.leg_timeout = Some(at);
                    return;
                }
                Err(error) => {
                    self.media_failed(&error);
                    return;
                }
            }
        }
    }

    fn active_sid(&self) -> Option<&str> {
        match &self.state {
            State::Active { sid, .. } => Some(sid),
            State::ExpectOnline
            | State::ExpectConferenceResult { .. }
            | State::ConferenceRetry { .. }
            | State::ExpectJoin { .. }
            | State::ExpectSessionInitiate { .. }
            | State::Ended => None,
        }
    }

    fn end(&mut self, reason: EndReason) {
        if self.is_ended() {
            return;
        }
        self.state = State::Ended;
        self.event(ConferenceEvent::Ended(reason));
    }

    fn iq_to_focus(&mut self, kind: &str, payload: Element) -> Element {
        let id = self.new_id("jingle");
        let mut stanza = iq(kind, Some(&self.focus_occupant.to_string()), payload);
        set_attr(&mut stanza, "id", id.clone());
        stanza
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}-{}", self.config.nick, self.next_id)
    }

    fn send(&mut self, stanza: Element) {
        self.out.push_back(ConferenceOutput::Send(stanza));
    }

    fn event(&mut self, event: ConferenceEvent) {
        self.out.push_back(ConferenceOutput::Event(event));
    }
}

fn map_leg_event(event: LegEvent) -> Option<ConferenceEvent> {
    match event {
        LegEvent::Connected => Some(ConferenceEvent::MediaConnected),
        LegEvent::Audio(packet) => Some(ConferenceEvent::Audio(packet)),
        LegEvent::Disconnected | LegEvent::SourceActivity { .. } => None,
    }
}

/// The audio SSRCs a Jingle announces (session-initiate, source-add, source-remove), with the
/// nick of their owner (`ssrc-info owner`, written `room@service/nick` or just `nick`).
fn audio_sources(jingle: &Jingle) -> Vec<(Ssrc, Option<String>)> {
    let Some(content) = jingle.content_for(&Media::Audio) else {
        return Vec::new();
    };
    let Some(description) = &content.description else {
        return Vec::new();
    };
    description
        .children
        .iter()
        .filter_map(|child| match child {
            DescriptionChild::Source(source) => Some(source),
            DescriptionChild::PayloadType(_)
            | DescriptionChild::HdrExt(_)
            | DescriptionChild::ExtmapAllowMixed
            | DescriptionChild::RtcpMux
            | DescriptionChild::SsrcGroup(_)
            | DescriptionChild::Other(_) => None,
        })
        .filter_map(|source| {
            let owner = source.children.iter().find_map(|c| match c {
                SourceChild::SsrcInfo(info) => Some(
                    info.owner
                        .rsplit_once('/')
                        .map_or(info.owner.as_str(), |(_, nick)| nick)
                        .to_owned(),
                ),
                SourceChild::Parameter(_) | SourceChild::Other(_) => None,
            });
            // The bridge's own feedback source (owner "jvb") never sends audio.
            (owner.as_deref() != Some("jvb")).then_some((source.ssrc, owner))
        })
        .collect()
}

/// ICE credentials, candidates and fingerprint from the offer's transport.
pub(crate) fn remote_params(transport: &Transport) -> Option<RemoteParams> {
    let fingerprint = transport.children.iter().find_map(|c| match c {
        TransportChild::Fingerprint(f) => Some(f),
        TransportChild::Candidate(_)
        | TransportChild::WebSocket(_)
        | TransportChild::RtcpMux
        | TransportChild::Other(_) => None,
    })?;
    Some(RemoteParams {
        ice: IceParams {
            ufrag: transport.ufrag.clone()?,
            pwd: transport.pwd.clone()?,
        },
        candidates: offered_candidates(transport),
        fingerprint_hash: fingerprint.hash.clone(),
        fingerprint: fingerprint.value.clone(),
    })
}

/// UDP candidates of generation 0 with an IP address (JVB never offers hostnames; ignore any).
fn offered_candidates(transport: &Transport) -> Vec<LegCandidate> {
    transport
        .children
        .iter()
        .filter_map(|c| match c {
            TransportChild::Candidate(c) => Some(c),
            TransportChild::Fingerprint(_)
            | TransportChild::WebSocket(_)
            | TransportChild::RtcpMux
            | TransportChild::Other(_) => None,
        })
        .filter(|c| c.protocol.eq_ignore_ascii_case("udp") && c.generation.unwrap_or(0) == 0)
        .filter_map(|c| {
            let ip = c.ip.parse().ok()?;
            let related = match (&c.rel_addr, c.rel_port) {
                (Some(addr), Some(port)) => addr.parse().ok().map(|ip| SocketAddr::new(ip, port)),
                _ => None,
            };
            Some(LegCandidate {
                foundation: c.foundation.clone(),
                priority: c.priority,
                addr: SocketAddr::new(ip, c.port),
                kind: match c.kind {
                    CandidateType::Host => CandidateKind::Host,
                    CandidateType::Srflx => CandidateKind::ServerReflexive,
                    CandidateType::Prflx => CandidateKind::PeerReflexive,
                    CandidateType::Relay => CandidateKind::Relayed,
                    CandidateType::Other(_) => return None,
                },
                related,
            })
        })
        .collect()
}

/// Our host candidate as a Jingle `<candidate>`.
fn jingle_candidate(candidate: &LegCandidate) -> Candidate {
    Candidate {
        component: 1,
        foundation: candidate.foundation.clone(),
        generation: Some(0),
        id: None,
        ip: candidate.addr.ip().to_string(),
        network: Some(0),
        port: candidate.addr.port(),
        priority: candidate.priority,
        protocol: "udp".into(),
        kind: CandidateType::Host,
        rel_addr: None,
        rel_port: None,
        tcptype: None,
        extra_attrs: std::collections::BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests;
