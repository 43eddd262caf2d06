//! The focus (Jicofo's part, jitsi-protocols.md §8 items 1-7): one tokio task owns both XMPP
//! connections (the c2s account `focus@auth.<domain>` and the `focus.<domain>` component), every
//! conference's state and the brewery view. IQs whose answers take time (disco#info, Jingle
//! acks, forwarded dials, kicks) are sent from small spawned tasks that report back through the
//! internal channel, so the focus never blocks on a peer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use jigasi_bridge::{Candidate as BridgeCandidate, CandidateKind, IceParams, RemoteParams};
use jigasi_jingle::answer::{AnswerViolation, validate_answer};
use jigasi_jingle::focus::{ConferenceIq, Property};
use jigasi_jingle::ice::{CandidateType, Transport, TransportChild};
use jigasi_jingle::jingle::{Action, Jingle, ReasonCondition, Sid};
use jigasi_jingle::jitmeet::{Mute, MuteMedia};
use jigasi_jingle::ns as jns;
use jigasi_jingle::rayo::{Dial, Ref};
use jigasi_types::Ssrc;
use jigasi_xmpp::brewery::Stats;
use jigasi_xmpp::disco::{self, DiscoInfo, Identity};
use jigasi_xmpp::jid::{BareJid, FullJid, Jid, ResourcePart};
use jigasi_xmpp::muc::{self, MucItem, MucPresence};
use jigasi_xmpp::{ns, stanza};
use jigasi_xmpp_io::{IqError, XmppEvents, XmppHandle};
use minidom::Element;
use minidom::rxml::{Namespace, NcName};
use rand::Rng;
use tokio::sync::{mpsc, oneshot};

use crate::brewery::{Brewery, BreweryInstance, Wanted};
use crate::config::StandInConfig;
use crate::event::{
    DialError, EventSink, RefUri, StandInError, StandInEvent, Violation, ViolationKind,
};
use crate::media::{MediaCommand, MediaHandle};
use crate::offer::{
    self, BRIDGE_OWNER, ConferenceSource, DEFAULT_FEATURES, FEATURE_AUDIO, FEATURE_TCC, OfferParams,
};

/// A request from the [`crate::StandIn`] API.
#[derive(Debug)]
pub(crate) enum Command {
    JoinBrewery {
        reply: oneshot::Sender<Result<(), StandInError>>,
    },
    CreateConference {
        room: BareJid,
        reply: oneshot::Sender<Result<(), StandInError>>,
    },
    AnswerNotReady {
        room: BareJid,
        times: u32,
    },
    Media {
        room: String,
        reply: oneshot::Sender<Option<MediaHandle>>,
    },
    RegisterSimulated {
        room: String,
        source: ConferenceSource,
        reply: oneshot::Sender<Result<(), StandInError>>,
    },
    RemoveSimulatedSources {
        room: String,
        nick: String,
        reply: oneshot::Sender<Result<(), StandInError>>,
    },
    /// A simulated participant without an XMPP client: the focus announces its source itself.
    AddVirtual {
        room: String,
        source: ConferenceSource,
        reply: oneshot::Sender<Result<(), StandInError>>,
    },
    Violations {
        room: String,
        reply: oneshot::Sender<Vec<Violation>>,
    },
    Mute {
        room: String,
        nick: String,
        reply: oneshot::Sender<Result<(), StandInError>>,
    },
    Kick {
        room: String,
        nick: String,
        reply: oneshot::Sender<Result<(), StandInError>>,
    },
    Destroy {
        room: String,
        reason: Option<String>,
        reply: oneshot::Sender<Result<(), StandInError>>,
    },
    Terminate {
        room: String,
        nick: String,
        reason: ReasonCondition,
        text: Option<String>,
        reply: oneshot::Sender<Result<(), StandInError>>,
    },
    Leave {
        room: String,
        reply: oneshot::Sender<Result<(), StandInError>>,
    },
    Dial {
        dial: Dial,
        reply: oneshot::Sender<Result<RefUri, DialError>>,
    },
    Gateways {
        reply: oneshot::Sender<Vec<BreweryInstance>>,
    },
}

/// Results of the focus's own spawned requests.
#[derive(Debug)]
pub(crate) enum Internal {
    DiscoDone {
        room: String,
        nick: String,
        features: Option<Vec<String>>,
    },
    InitiateAck {
        room: String,
        nick: String,
        sid: Sid,
        result: Result<(), IqError>,
    },
    SingleTimeout {
        room: String,
        generation: u64,
    },
    DialAnswer {
        dial: u64,
        result: Result<Element, IqError>,
    },
}

/// Where a dial's outcome goes.
#[derive(Debug)]
enum DialReply {
    Api(oneshot::Sender<Result<RefUri, DialError>>),
    /// A client's Rayo request (through the MUC) to answer with the same id.
    Iq(Element),
}

#[derive(Debug)]
struct DialState {
    dial: Dial,
    wanted: Wanted,
    reply: Option<DialReply>,
    tried: Vec<String>,
    last_error: DialError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    Pending,
    Active,
}

#[derive(Debug)]
struct Session {
    sid: Sid,
    offer: Jingle,
    state: SessionState,
    /// Remote SSRCs signalled to the member (offer plus later source-adds).
    signalled: BTreeSet<Ssrc>,
    /// Source-adds queued until the session is active (§4.4).
    queued_add: Vec<ConferenceSource>,
    /// Source-removes queued until the session is active.
    queued_remove: Vec<ConferenceSource>,
    /// A trusted Jigasi's early `transport-info` (§4.3).
    early_transport: Option<Transport>,
}

#[derive(Debug)]
struct Member {
    occupant: FullJid,
    item: MucItem,
    simulated: bool,
    /// Presence `<features>` vars.
    presence_features: Vec<String>,
    /// disco#info features once known.
    features: Option<Vec<String>>,
    session: Option<Session>,
    /// The member's accepted sources.
    sources: Vec<ConferenceSource>,
    /// Session restarts requested (for the rate limit, §4.5).
    restarts: Vec<Instant>,
}

impl Member {
    fn is_moderator(&self) -> bool {
        self.item.role.as_deref() == Some("moderator")
    }
}

#[derive(Debug)]
struct Conference {
    room: BareJid,
    occupant: FullJid,
    joined: bool,
    not_ready: u32,
    /// Conference IQs to answer once joined: (request, answered on the component?).
    pending_iqs: Vec<(Element, bool)>,
    pending_creates: Vec<oneshot::Sender<Result<(), StandInError>>>,
    members: BTreeMap<String, Member>,
    /// Simulated participants registered before their presence arrives.
    simulated: BTreeMap<String, ConferenceSource>,
    media: MediaHandle,
    bridge_session_id: String,
    feedback: ConferenceSource,
    violations: Vec<Violation>,
    single_timer: Option<u64>,
    timer_generation: u64,
}

impl Conference {
    /// Every source in the conference except the feedback source.
    fn sources(&self) -> Vec<ConferenceSource> {
        self.members
            .values()
            .flat_map(|member| member.sources.iter().cloned())
            .collect()
    }
}

pub(crate) struct Focus {
    config: StandInConfig,
    /// The focus's nick in every room (its username).
    nick: ResourcePart,
    c2s: XmppHandle,
    component: XmppHandle,
    events: EventSink,
    internal_tx: mpsc::UnboundedSender<Internal>,
    conferences: BTreeMap<String, Conference>,
    brewery_room: Option<BareJid>,
    brewery: Brewery,
    brewery_joined: bool,
    brewery_waiters: Vec<oneshot::Sender<Result<(), StandInError>>>,
    dials: BTreeMap<u64, DialState>,
    next_dial: u64,
}

impl Focus {
    pub(crate) fn new(
        config: StandInConfig,
        c2s: XmppHandle,
        component: XmppHandle,
        events: EventSink,
        nick: ResourcePart,
    ) -> (Self, mpsc::UnboundedReceiver<Internal>) {
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let brewery_room = config
            .brewery_jid
            .as_deref()
            .and_then(|jid| BareJid::new(&jid.to_lowercase()).ok());
        (
            Self {
                config,
                nick,
                c2s,
                component,
                events,
                internal_tx,
                conferences: BTreeMap::new(),
                brewery_room,
                brewery: Brewery::default(),
                brewery_joined: false,
                brewery_waiters: Vec::new(),
                dials: BTreeMap::new(),
                next_dial: 0,
            },
            internal_rx,
        )
    }

    /// The task: serves commands, both connections and internal results until the API side is
    /// dropped or the c2s connection closes.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut c2s_events: XmppEvents,
        mut component_events: XmppEvents,
        mut internal: mpsc::UnboundedReceiver<Internal>,
    ) {
        let mut component_open = true;
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle_command(command).await,
                    None => break,
                },
                incoming = c2s_events.next() => match incoming {
                    Some(jigasi_xmpp_io::Incoming::Stanza(stanza)) => self.handle_c2s(stanza).await,
                    Some(jigasi_xmpp_io::Incoming::Closed(reason)) => {
                        tracing::warn!(%reason, "focus c2s connection closed");
                        break;
                    }
                    None => break,
                },
                incoming = component_events.next(), if component_open => match incoming {
                    Some(jigasi_xmpp_io::Incoming::Stanza(stanza)) => {
                        self.handle_component(stanza).await;
                    }
                    Some(jigasi_xmpp_io::Incoming::Closed(reason)) => {
                        tracing::warn!(%reason, "focus component connection closed");
                        component_open = false;
                    }
                    None => component_open = false,
                },
                Some(message) = internal.recv() => self.handle_internal(message).await,
            }
        }
        for (room, conference) in std::mem::take(&mut self.conferences) {
            let _ = self
                .c2s
                .send(muc::leave_presence(&conference.occupant))
                .await;
            conference.media.send(MediaCommand::Expire);
            self.events.emit(StandInEvent::ConferenceEnded { room });
        }
        self.c2s.close().await;
        self.component.close().await;
    }

    async fn handle_command(&mut self, command: Command) {
        match command {
            Command::JoinBrewery { reply } => match self.brewery_room.clone() {
                None => {
                    let _ = reply.send(Ok(()));
                }
                Some(_) if self.brewery_joined => {
                    let _ = reply.send(Ok(()));
                }
                Some(room) => {
                    self.brewery_waiters.push(reply);
                    let occupant = room.with_resource(&self.nick);
                    let presence = muc::join_presence(&occupant, None, Vec::new());
                    if self.c2s.send(presence).await.is_err() {
                        for waiter in self.brewery_waiters.drain(..) {
                            let _ = waiter.send(Err(StandInError::Closed));
                        }
                    }
                }
            },
            Command::CreateConference { room, reply } => {
                let key = self.ensure_conference(&room).await;
                match self.conferences.get_mut(&key) {
                    Some(conference) if conference.joined => {
                        let _ = reply.send(Ok(()));
                    }
                    Some(conference) => conference.pending_creates.push(reply),
                    None => {
                        let _ = reply.send(Err(StandInError::Closed));
                    }
                }
            }
            Command::AnswerNotReady { room, times } => {
                let key = self.ensure_conference(&room).await;
                if let Some(conference) = self.conferences.get_mut(&key) {
                    conference.not_ready = times;
                }
            }
            Command::Media { room, reply } => {
                let media = self.conferences.get(&room).map(|c| c.media.clone());
                let _ = reply.send(media);
            }
            Command::RegisterSimulated {
                room,
                source,
                reply,
            } => {
                let result = match self.conferences.get_mut(&room) {
                    Some(conference) => {
                        conference.simulated.insert(source.owner.clone(), source);
                        Ok(())
                    }
                    None => Err(StandInError::UnknownRoom(room)),
                };
                let _ = reply.send(result);
            }
            Command::AddVirtual {
                room,
                source,
                reply,
            } => {
                let result = self.add_virtual(&room, source).await;
                let _ = reply.send(result);
            }
            Command::RemoveSimulatedSources { room, nick, reply } => {
                let result = self.remove_member_sources(&room, &nick).await;
                let _ = reply.send(result);
            }
            Command::Violations { room, reply } => {
                let violations = self
                    .conferences
                    .get(&room)
                    .map(|c| c.violations.clone())
                    .unwrap_or_default();
                let _ = reply.send(violations);
            }
            Command::Mute { room, nick, reply } => {
                let actor = match self.conferences.get(&room) {
                    Some(conference) => Jid::from(conference.occupant.clone()),
                    None => {
                        let _ = reply.send(Err(StandInError::UnknownRoom(room)));
                        return;
                    }
                };
                let result = self.force_mute(&room, &nick, &actor);
                let _ = reply.send(result);
            }
            Command::Kick { room, nick, reply } => {
                let Some(conference) = self.conferences.get(&room) else {
                    let _ = reply.send(Err(StandInError::UnknownRoom(room)));
                    return;
                };
                let mut item = Element::bare("item", MUC_ADMIN);
                set_attr(&mut item, "nick", nick);
                set_attr(&mut item, "role", "none");
                item.append_child(
                    Element::builder("reason", MUC_ADMIN)
                        .append("kicked by the stand-in")
                        .build(),
                );
                let query = Element::builder("query", MUC_ADMIN).append(item).build();
                let iq = stanza::iq("set", Some(&conference.room.to_string()), query);
                self.request_with_reply(iq, reply);
            }
            Command::Destroy {
                room,
                reason,
                reply,
            } => {
                let Some(conference) = self.conferences.get(&room) else {
                    let _ = reply.send(Err(StandInError::UnknownRoom(room)));
                    return;
                };
                let mut destroy = Element::bare("destroy", MUC_OWNER);
                if let Some(reason) = reason {
                    destroy
                        .append_child(Element::builder("reason", MUC_OWNER).append(reason).build());
                }
                let query = Element::builder("query", MUC_OWNER).append(destroy).build();
                let iq = stanza::iq("set", Some(&conference.room.to_string()), query);
                self.request_with_reply(iq, reply);
            }
            Command::Terminate {
                room,
                nick,
                reason,
                text,
                reply,
            } => {
                let result = self
                    .terminate_session(&room, &nick, reason, text.as_deref())
                    .await;
                let _ = reply.send(result);
            }
            Command::Leave { room, reply } => {
                let Some(conference) = self.conferences.remove(&room) else {
                    let _ = reply.send(Err(StandInError::UnknownRoom(room)));
                    return;
                };
                let sent = self
                    .c2s
                    .send(muc::leave_presence(&conference.occupant))
                    .await;
                conference.media.send(MediaCommand::Expire);
                self.events.emit(StandInEvent::ConferenceEnded { room });
                let _ = reply.send(sent.map_err(|_| StandInError::Closed));
            }
            Command::Dial { dial, reply } => {
                self.start_dial(dial, DialReply::Api(reply));
            }
            Command::Gateways { reply } => {
                let _ = reply.send(self.brewery.instances());
            }
        }
    }

    async fn handle_internal(&mut self, message: Internal) {
        match message {
            Internal::DiscoDone {
                room,
                nick,
                features,
            } => {
                let defaulted = features.is_none();
                let features = features
                    .unwrap_or_else(|| DEFAULT_FEATURES.iter().map(|f| (*f).to_owned()).collect());
                let Some(member) = self
                    .conferences
                    .get_mut(&room)
                    .and_then(|c| c.members.get_mut(&nick))
                else {
                    return;
                };
                member.features = Some(features.clone());
                self.events.emit(StandInEvent::DiscoCompleted {
                    room: room.clone(),
                    nick,
                    features,
                    defaulted,
                });
                self.check_min_participants(&room).await;
            }
            Internal::InitiateAck {
                room,
                nick,
                sid,
                result,
            } => self.handle_initiate_ack(room, nick, sid, result).await,
            Internal::SingleTimeout { room, generation } => {
                self.handle_single_timeout(&room, generation).await;
            }
            Internal::DialAnswer { dial, result } => self.handle_dial_answer(dial, result),
        }
    }

    // ----- incoming stanzas -----

    async fn handle_component(&mut self, stanza: Element) {
        if !stanza::is_iq_request(&stanza) {
            return;
        }
        if stanza.get_child("conference", jns::FOCUS).is_some() {
            self.handle_conference_iq(stanza, true).await;
        } else if let Some(answer) = focus_disco().answer(&stanza) {
            let _ = self.component.send(answer).await;
        } else {
            let _ = self
                .component
                .send(stanza::iq_error(&stanza, "cancel", "service-unavailable"))
                .await;
        }
    }

    async fn handle_c2s(&mut self, stanza: Element) {
        if stanza.is("presence", ns::JABBER_CLIENT) {
            self.handle_presence(&stanza).await;
            return;
        }
        if !stanza::is_iq_request(&stanza) {
            return;
        }
        let from = stanza.attr("from").and_then(|f| Jid::new(f).ok());
        let room_key = from
            .as_ref()
            .map(|f| f.to_bare().to_string().to_lowercase());
        let nick = from
            .as_ref()
            .and_then(|f| f.resource().map(|r| r.as_str().to_owned()));
        if stanza.get_child("conference", jns::FOCUS).is_some() {
            self.handle_conference_iq(stanza, false).await;
            return;
        }
        if let (Some(room), Some(nick)) = (&room_key, &nick)
            && self.conferences.contains_key(room)
        {
            if stanza.get_child("jingle", jns::JINGLE).is_some() {
                self.handle_jingle(room, nick, &stanza).await;
                return;
            }
            if let Some(mute) = stanza
                .children()
                .find(|c| c.name() == "mute")
                .and_then(|c| Mute::parse(c).ok())
            {
                self.handle_mute_iq(room, nick, &stanza, mute).await;
                return;
            }
            if let Some(dial) = stanza.get_child("dial", jns::RAYO) {
                self.handle_client_dial(room, nick, &stanza, dial).await;
                return;
            }
        }
        let reply = focus_disco()
            .answer(&stanza)
            .unwrap_or_else(|| stanza::iq_error(&stanza, "cancel", "service-unavailable"));
        let _ = self.c2s.send(reply).await;
    }

    async fn handle_presence(&mut self, stanza: &Element) {
        let Some(classified) = MucPresence::classify(stanza) else {
            return;
        };
        let room_key = match &classified {
            MucPresence::SelfJoined { occupant, .. }
            | MucPresence::OccupantAvailable { occupant, .. }
            | MucPresence::OccupantLeft { occupant }
            | MucPresence::SelfLeft { occupant }
            | MucPresence::Kicked { occupant, .. } => occupant.to_bare().to_string(),
            MucPresence::RoomDestroyed { room, .. } => room.to_string(),
            MucPresence::Error { from, .. } => match from {
                Some(from) => from.to_bare().to_string(),
                None => return,
            },
        }
        .to_lowercase();
        if self
            .brewery_room
            .as_ref()
            .is_some_and(|b| b.to_string().to_lowercase() == room_key)
        {
            self.handle_brewery_presence(classified);
            return;
        }
        if !self.conferences.contains_key(&room_key) {
            return;
        }
        match classified {
            MucPresence::SelfJoined { .. } => self.conference_joined(&room_key).await,
            MucPresence::OccupantAvailable {
                occupant,
                item,
                presence,
            } => {
                self.member_available(&room_key, occupant, item, &presence)
                    .await;
            }
            MucPresence::OccupantLeft { occupant }
            | MucPresence::Kicked {
                occupant,
                is_self: false,
            } => self.member_left(&room_key, &occupant).await,
            MucPresence::SelfLeft { .. }
            | MucPresence::Kicked { is_self: true, .. }
            | MucPresence::RoomDestroyed { .. } => {
                if let Some(conference) = self.conferences.remove(&room_key) {
                    conference.media.send(MediaCommand::Expire);
                    for waiter in conference.pending_creates {
                        let _ =
                            waiter.send(Err(StandInError::Refused("removed from the room".into())));
                    }
                    self.events
                        .emit(StandInEvent::ConferenceEnded { room: room_key });
                }
            }
            MucPresence::Error { error, .. } => {
                if let Some(conference) = self.conferences.get(&room_key)
                    && !conference.joined
                    && let Some(conference) = self.conferences.remove(&room_key)
                {
                    for waiter in conference.pending_creates {
                        let _ = waiter.send(Err(StandInError::Refused(error.to_string())));
                    }
                }
            }
        }
    }

    fn handle_brewery_presence(&mut self, presence: MucPresence) {
        match presence {
            MucPresence::SelfJoined { .. } => {
                self.brewery_joined = true;
                for waiter in self.brewery_waiters.drain(..) {
                    let _ = waiter.send(Ok(()));
                }
            }
            MucPresence::OccupantAvailable {
                occupant, presence, ..
            } => match Stats::from_presence(&presence) {
                Ok(Some(stats)) => {
                    let occupant = occupant.to_string();
                    self.brewery.update(&occupant, stats);
                    self.events
                        .emit(StandInEvent::GatewayAvailable { occupant });
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, %occupant, "unreadable brewery stats"),
            },
            MucPresence::OccupantLeft { occupant }
            | MucPresence::Kicked {
                occupant,
                is_self: false,
            } => {
                let occupant = occupant.to_string();
                if self.brewery.remove(&occupant) {
                    self.events.emit(StandInEvent::GatewayLeft { occupant });
                }
            }
            MucPresence::Error { error, .. } => {
                for waiter in self.brewery_waiters.drain(..) {
                    let _ = waiter.send(Err(StandInError::Refused(error.to_string())));
                }
            }
            MucPresence::SelfLeft { .. }
            | MucPresence::Kicked { is_self: true, .. }
            | MucPresence::RoomDestroyed { .. } => self.brewery_joined = false,
        }
    }

    // ----- conferences and members -----

    /// Creates the conference (the focus joins the room) unless it exists; returns its key.
    async fn ensure_conference(&mut self, room: &BareJid) -> String {
        let key = room.to_string().to_lowercase();
        if self.conferences.contains_key(&key) {
            return key;
        }
        let Ok(room) = BareJid::new(&key) else {
            return key;
        };
        let occupant = room.with_resource(&self.nick);
        let media = MediaHandle::spawn(
            key.clone(),
            self.config.rtp_bind_ip,
            self.config.max_received_audio,
            self.events.clone(),
        );
        // Random per conference, as JVB's feedback SSRC (§4.2).
        let (feedback_ssrc, bridge_session_id) = {
            let mut rng = rand::rng();
            (
                Ssrc::new(rng.random_range(1..=u32::MAX)),
                format!("{}-standin", random_token(&mut rng, 12)),
            )
        };
        let feedback = ConferenceSource {
            ssrc: feedback_ssrc,
            name: Some("jvb-a0".into()),
            owner: BRIDGE_OWNER.into(),
            msid: None,
        };
        let conference = Conference {
            occupant: occupant.clone(),
            room,
            joined: false,
            not_ready: 0,
            pending_iqs: Vec::new(),
            pending_creates: Vec::new(),
            members: BTreeMap::new(),
            simulated: BTreeMap::new(),
            media,
            bridge_session_id,
            feedback,
            violations: Vec::new(),
            single_timer: None,
            timer_generation: 0,
        };
        self.conferences.insert(key.clone(), conference);
        // Jicofo joins as its username; Jitsi rooms show real JIDs (whois=anyone), which the
        // test Prosody configures by default.
        let presence = muc::join_presence(
            &occupant,
            None,
            vec![focus_disco().caps_element(disco::JITSI_CAPS_NODE)],
        );
        if self.c2s.send(presence).await.is_err() {
            tracing::warn!(room = %key, "focus could not send its join");
        }
        key
    }

    async fn conference_joined(&mut self, room: &str) {
        let Some(conference) = self.conferences.get_mut(room) else {
            return;
        };
        if conference.joined {
            return;
        }
        conference.joined = true;
        let pending = std::mem::take(&mut conference.pending_iqs);
        for waiter in conference.pending_creates.drain(..) {
            let _ = waiter.send(Ok(()));
        }
        self.events.emit(StandInEvent::FocusJoined {
            room: room.to_owned(),
        });
        for (request, via_component) in pending {
            self.answer_conference_iq(room, &request, via_component, true)
                .await;
        }
    }

    async fn handle_conference_iq(&mut self, request: Element, via_component: bool) {
        let parsed = request
            .get_child("conference", jns::FOCUS)
            .map(ConferenceIq::parse);
        let conference_iq = match parsed {
            Some(Ok(iq)) => iq,
            Some(Err(_)) | None => {
                let reply = stanza::iq_error(&request, "modify", "bad-request");
                self.send_via(via_component, reply).await;
                return;
            }
        };
        let key = self.ensure_conference(&conference_iq.room).await;
        let Some(conference) = self.conferences.get_mut(&key) else {
            return;
        };
        if conference.not_ready > 0 {
            conference.not_ready -= 1;
            self.answer_conference_iq(&key, &request, via_component, false)
                .await;
        } else if conference.joined {
            self.answer_conference_iq(&key, &request, via_component, true)
                .await;
        } else {
            conference.pending_iqs.push((request, via_component));
        }
    }

    async fn answer_conference_iq(
        &mut self,
        room: &str,
        request: &Element,
        via_component: bool,
        ready: bool,
    ) {
        let Some(conference) = self.conferences.get(room) else {
            return;
        };
        let mut answer = ConferenceIq::request(conference.room.clone(), "");
        answer.machine_uid = None;
        answer.ready = Some(ready);
        answer.focus_jid = Some(self.c2s.jid().to_bare().to_string());
        let property = |name: &str, value: &str| Property {
            name: name.to_owned(),
            value: value.to_owned(),
        };
        answer.properties.push(property("authentication", "false"));
        if self.brewery_room.is_some() {
            answer
                .properties
                .push(property("sipGatewayEnabled", "true"));
        }
        answer
            .properties
            .push(property("visitors-supported", "false"));
        let mut reply = stanza::iq_result(request);
        reply.append_child(answer.to_element());
        self.send_via(via_component, reply).await;
        self.events.emit(StandInEvent::ConferenceRequested {
            room: room.to_owned(),
            ready,
        });
    }

    async fn member_available(
        &mut self,
        room: &str,
        occupant: FullJid,
        item: MucItem,
        presence: &Element,
    ) {
        let nick = occupant.resource().as_str().to_owned();
        let Some(conference) = self.conferences.get_mut(room) else {
            return;
        };
        if occupant == conference.occupant {
            return;
        }
        let presence_features: Vec<String> = presence
            .get_child("features", ns::JABBER_CLIENT)
            .map(|features| {
                features
                    .children()
                    .filter(|f| f.name() == "feature")
                    .filter_map(|f| f.attr("var").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(member) = conference.members.get_mut(&nick) {
            member.item = item;
            member.presence_features = presence_features;
            return;
        }
        let simulated = conference.simulated.remove(&nick);
        let is_simulated = simulated.is_some();
        conference.members.insert(
            nick.clone(),
            Member {
                occupant: occupant.clone(),
                item,
                simulated: is_simulated,
                presence_features,
                features: None,
                session: None,
                sources: Vec::new(),
                restarts: Vec::new(),
            },
        );
        self.events.emit(StandInEvent::MemberJoined {
            room: room.to_owned(),
            nick: nick.clone(),
            simulated: is_simulated,
        });
        if let Some(source) = simulated {
            // A simulated web participant's source is accepted at once (its "session-accept").
            if let Some(member) = self
                .conferences
                .get_mut(room)
                .and_then(|c| c.members.get_mut(&nick))
            {
                member.sources.push(source.clone());
            }
            self.propagate_add(room, &nick, &[source]).await;
            self.check_min_participants(room).await;
        } else {
            self.discover(room, &occupant, presence);
        }
        self.update_single_timer(room);
    }

    /// A member with no occupant of its own (bulk mode): its source is accepted at once and
    /// signalled to every session, exactly as for a simulated participant whose presence arrived.
    async fn add_virtual(
        &mut self,
        room: &str,
        source: ConferenceSource,
    ) -> Result<(), StandInError> {
        let conference = self
            .conferences
            .get_mut(room)
            .ok_or_else(|| StandInError::UnknownRoom(room.to_owned()))?;
        let nick = source.owner.clone();
        let occupant = conference
            .room
            .clone()
            .with_resource_str(&nick)
            .map_err(|_| StandInError::BadAddress(nick.clone()))?;
        if conference.members.contains_key(&nick) {
            return Err(StandInError::BadAddress(format!(
                "{nick} is already a member"
            )));
        }
        conference.members.insert(
            nick.clone(),
            Member {
                occupant,
                item: MucItem {
                    affiliation: Some("none".into()),
                    role: Some("participant".into()),
                    jid: None,
                },
                simulated: true,
                presence_features: Vec::new(),
                features: None,
                session: None,
                sources: vec![source.clone()],
                restarts: Vec::new(),
            },
        );
        self.events.emit(StandInEvent::MemberJoined {
            room: room.to_owned(),
            nick: nick.clone(),
            simulated: true,
        });
        self.propagate_add(room, &nick, &[source]).await;
        self.check_min_participants(room).await;
        self.update_single_timer(room);
        Ok(())
    }

    /// Sends disco#info to a new member (with its caps node#ver, §1.4).
    fn discover(&self, room: &str, occupant: &FullJid, presence: &Element) {
        let mut query = Element::bare("query", ns::DISCO_INFO);
        if let Some(caps) = presence.get_child("c", ns::CAPS)
            && let (Some(node), Some(ver)) = (caps.attr("node"), caps.attr("ver"))
        {
            set_attr(&mut query, "node", format!("{node}#{ver}"));
        }
        let request = stanza::iq("get", Some(&occupant.to_string()), query);
        let c2s = self.c2s.clone();
        let internal = self.internal_tx.clone();
        let timeout = self.config.disco_timeout;
        let room = room.to_owned();
        let nick = occupant.resource().as_str().to_owned();
        tokio::spawn(async move {
            let features = c2s
                .send_iq(request, timeout)
                .await
                .ok()
                .and_then(|result| DiscoInfo::from_result(&result))
                .map(|info| info.features);
            let _ = internal.send(Internal::DiscoDone {
                room,
                nick,
                features,
            });
        });
    }

    async fn member_left(&mut self, room: &str, occupant: &FullJid) {
        let nick = occupant.resource().as_str();
        let Some(conference) = self.conferences.get_mut(room) else {
            return;
        };
        let Some(member) = conference.members.remove(nick) else {
            return;
        };
        // §4.4: Jicofo sends no source-remove when a member leaves the MUC, and no
        // session-terminate either: the clean-up is silent.
        if member.simulated {
            for source in &member.sources {
                conference
                    .media
                    .send(MediaCommand::RemoveSimulated { ssrc: source.ssrc });
            }
        } else {
            conference.media.send(MediaCommand::RemoveEndpoint {
                endpoint: nick.to_owned(),
            });
        }
        self.events.emit(StandInEvent::MemberLeft {
            room: room.to_owned(),
            nick: nick.to_owned(),
        });
        self.update_single_timer(room);
    }

    /// §3.3: once enough members are present, invite everyone not invited yet.
    async fn check_min_participants(&mut self, room: &str) {
        let Some(conference) = self.conferences.get(room) else {
            return;
        };
        if conference.members.len() < self.config.min_participants.max(1) {
            return;
        }
        let ready: Vec<String> = conference
            .members
            .iter()
            .filter(|(_, m)| !m.simulated && m.features.is_some() && m.session.is_none())
            .map(|(nick, _)| nick.clone())
            .collect();
        for nick in ready {
            self.invite(room, &nick).await;
        }
    }

    /// Allocates the endpoint on the bridge and sends `session-initiate` (§4.2).
    async fn invite(&mut self, room: &str, nick: &str) {
        let owner_prefix = self.owner_prefix(room);
        let initiator = self.c2s.jid().clone();
        let Some(conference) = self.conferences.get_mut(room) else {
            return;
        };
        let Some(member) = conference.members.get(nick) else {
            return;
        };
        let features = member.features.clone().unwrap_or_default();
        if !features.iter().any(|f| f == FEATURE_AUDIO) {
            tracing::info!(room, nick, "member supports no audio: not invited");
            return;
        }
        let occupant = member.occupant.clone();
        let transport = match conference.media.allocate(nick).await {
            Ok(transport) => transport,
            Err(reason) => {
                self.events.emit(StandInEvent::MediaFailed {
                    room: room.to_owned(),
                    nick: nick.to_owned(),
                    reason,
                });
                return;
            }
        };
        let Some(conference) = self.conferences.get_mut(room) else {
            return;
        };
        let mut sources = vec![conference.feedback.clone()];
        sources.extend(conference.sources().into_iter().filter(|s| s.owner != nick));
        let sid = Sid(random_token(&mut rand::rng(), 13));
        let offer = offer::session_initiate(&OfferParams {
            sid: sid.clone(),
            initiator,
            transport: &transport,
            sources: &sources,
            bridge_session_id: &conference.bridge_session_id,
            region: self.config.bridge_region.as_deref(),
            tcc: features.iter().any(|f| f == FEATURE_TCC),
            owner_prefix: owner_prefix.as_deref(),
        });
        let announced: Vec<Ssrc> = sources
            .iter()
            .filter(|s| s.owner != BRIDGE_OWNER)
            .map(|s| s.ssrc)
            .collect();
        conference.media.send(MediaCommand::Announce {
            endpoint: nick.to_owned(),
            ssrcs: announced,
        });
        let Some(member) = conference.members.get_mut(nick) else {
            return;
        };
        member.session = Some(Session {
            sid: sid.clone(),
            offer: offer.clone(),
            state: SessionState::Pending,
            signalled: sources.iter().map(|s| s.ssrc).collect(),
            queued_add: Vec::new(),
            queued_remove: Vec::new(),
            early_transport: None,
        });
        let request = stanza::iq("set", Some(&occupant.to_string()), offer.to_element());
        let c2s = self.c2s.clone();
        let internal = self.internal_tx.clone();
        let timeout = self.config.jingle_ack_timeout;
        let (room_owned, nick_owned, sid_owned) = (room.to_owned(), nick.to_owned(), sid.clone());
        tokio::spawn(async move {
            let result = c2s.send_iq(request, timeout).await.map(|_| ());
            let _ = internal.send(Internal::InitiateAck {
                room: room_owned,
                nick: nick_owned,
                sid: sid_owned,
                result,
            });
        });
        self.events.emit(StandInEvent::SessionInitiated {
            room: room.to_owned(),
            nick: nick.to_owned(),
            sid: sid.0,
            sources: sources.iter().map(|s| s.ssrc).collect(),
        });
        self.update_single_timer(room);
    }

    async fn handle_initiate_ack(
        &mut self,
        room: String,
        nick: String,
        sid: Sid,
        result: Result<(), IqError>,
    ) {
        let current = self
            .conferences
            .get(&room)
            .and_then(|c| c.members.get(&nick))
            .and_then(|m| m.session.as_ref())
            .is_some_and(|s| s.sid == sid);
        if !current {
            return;
        }
        match result {
            Ok(()) => self.events.emit(StandInEvent::SessionInitiateAcked {
                room,
                nick,
                timed_out: false,
            }),
            // §4.1: an ack timeout counts as success; the session stays pending.
            Err(IqError::Timeout) => self.events.emit(StandInEvent::SessionInitiateAcked {
                room,
                nick,
                timed_out: true,
            }),
            Err(IqError::ErrorResponse { error, .. }) => {
                self.events.emit(StandInEvent::SessionInitiateFailed {
                    room: room.clone(),
                    nick: nick.clone(),
                    condition: error.condition,
                });
                let _ = self
                    .terminate_session(
                        &room,
                        &nick,
                        ReasonCondition::GeneralError,
                        Some("jingle session failed"),
                    )
                    .await;
            }
            Err(IqError::Closed | IqError::Rejected(_)) => {}
        }
    }

    // ----- Jingle from members -----

    async fn handle_jingle(&mut self, room: &str, nick: &str, request: &Element) {
        let jingle = match request.get_child("jingle", jns::JINGLE).map(Jingle::parse) {
            Some(Ok(jingle)) => jingle,
            Some(Err(error)) => {
                let kind = ViolationKind::Malformed {
                    error: error.to_string(),
                };
                self.reject(room, nick, "unknown", request, vec![kind], "bad-request")
                    .await;
                return;
            }
            None => return,
        };
        let action = jingle.action.as_str().to_owned();
        let Some(member) = self.conferences.get(room).and_then(|c| c.members.get(nick)) else {
            let reply = stanza::iq_error(request, "cancel", "item-not-found");
            let _ = self.c2s.send(reply).await;
            return;
        };
        let known = member
            .session
            .as_ref()
            .is_some_and(|session| session.sid == jingle.sid);
        if !known {
            let kind = ViolationKind::UnknownSession {
                sid: jingle.sid.0.clone(),
            };
            self.reject(room, nick, &action, request, vec![kind], "bad-request")
                .await;
            return;
        }
        match &jingle.action {
            Action::SessionAccept | Action::TransportAccept => {
                self.on_accept(room, nick, request, &jingle).await;
            }
            Action::TransportInfo => self.on_transport_info(room, nick, request, &jingle).await,
            Action::SourceAdd | Action::AddSourceLegacy => {
                self.on_source_add(room, nick, request, &jingle).await;
            }
            Action::SourceRemove | Action::RemoveSourceLegacy => {
                self.on_source_remove(room, nick, request, &jingle).await;
            }
            Action::SessionTerminate => self.on_terminate(room, nick, request, &jingle).await,
            Action::SessionInfo => self.on_session_info(room, nick, request, &jingle).await,
            Action::TransportReject => {
                let _ = self.c2s.send(stanza::iq_result(request)).await;
            }
            Action::ContentAccept
            | Action::ContentAdd
            | Action::ContentModify
            | Action::ContentReject
            | Action::ContentRemove
            | Action::DescriptionInfo
            | Action::SecurityInfo
            | Action::SessionInitiate
            | Action::TransportReplace
            | Action::Other(_) => {
                self.reject(
                    room,
                    nick,
                    &action,
                    request,
                    vec![ViolationKind::UnsupportedAction],
                    "feature-not-implemented",
                )
                .await;
            }
        }
    }

    /// Records violations and answers the request with an error.
    async fn reject(
        &mut self,
        room: &str,
        nick: &str,
        action: &str,
        request: &Element,
        kinds: Vec<ViolationKind>,
        condition: &str,
    ) {
        if let Some(conference) = self.conferences.get_mut(room) {
            conference
                .violations
                .extend(kinds.into_iter().map(|kind| Violation {
                    nick: nick.to_owned(),
                    action: action.to_owned(),
                    kind,
                }));
        }
        let error_type = match condition {
            "bad-request" | "not-acceptable" => "modify",
            "forbidden" => "auth",
            "resource-constraint" => "wait",
            _ => "cancel",
        };
        let _ = self
            .c2s
            .send(stanza::iq_error(request, error_type, condition))
            .await;
        self.events.emit(StandInEvent::JingleRejected {
            room: room.to_owned(),
            nick: nick.to_owned(),
            action: action.to_owned(),
            condition: condition.to_owned(),
        });
    }

    async fn on_accept(&mut self, room: &str, nick: &str, request: &Element, answer: &Jingle) {
        let action = answer.action.as_str().to_owned();
        let Some(conference) = self.conferences.get(room) else {
            return;
        };
        let Some(session) = conference
            .members
            .get(nick)
            .and_then(|m| m.session.as_ref())
        else {
            return;
        };
        if session.state == SessionState::Active {
            let kinds = vec![ViolationKind::Answer(AnswerViolation::WrongAction {
                action: answer.action.clone(),
            })];
            self.reject(room, nick, &action, request, kinds, "bad-request")
                .await;
            return;
        }
        // A trusted Jigasi may have sent its credentials in an early transport-info (§4.3).
        let mut effective = answer.clone();
        if let Some(early) = &session.early_transport {
            merge_early_transport(&mut effective, early);
        }
        let mut violations = validate_answer(&session.offer, &effective);
        let signalled = offer::signalled_sources(&effective, nick);
        let others: Vec<ConferenceSource> = conference
            .sources()
            .into_iter()
            .chain(std::iter::once(conference.feedback.clone()))
            .filter(|s| s.owner != nick)
            .collect();
        offer::merge_violations(
            &mut violations,
            offer::check_added_sources(nick, &signalled, &others),
        );
        if !violations.is_empty() {
            let kinds = violations.into_iter().map(ViolationKind::Answer).collect();
            self.reject(room, nick, &action, request, kinds, "bad-request")
                .await;
            return;
        }
        let Some(transport) = effective.first_transport().cloned() else {
            return;
        };
        let _ = self.c2s.send(stanza::iq_result(request)).await;
        let remote = remote_params(&transport);
        let media = conference.media.clone();
        let receive: Vec<Ssrc> = signalled.iter().map(|s| s.ssrc).collect();
        let (queued_add, queued_remove) = match self
            .conferences
            .get_mut(room)
            .and_then(|c| c.members.get_mut(nick))
        {
            Some(member) => {
                member.sources = signalled.clone();
                match member.session.as_mut() {
                    Some(session) => {
                        session.state = SessionState::Active;
                        (
                            std::mem::take(&mut session.queued_add),
                            std::mem::take(&mut session.queued_remove),
                        )
                    }
                    None => (Vec::new(), Vec::new()),
                }
            }
            None => return,
        };
        if let Err(reason) = media.start(nick, remote, receive.clone()).await {
            self.events.emit(StandInEvent::MediaFailed {
                room: room.to_owned(),
                nick: nick.to_owned(),
                reason,
            });
        }
        self.events.emit(StandInEvent::SessionAccepted {
            room: room.to_owned(),
            nick: nick.to_owned(),
            sources: receive,
        });
        // Sources queued while the session was pending go out right after the accept.
        if !queued_add.is_empty() {
            self.signal_sources(room, nick, Action::SourceAdd, queued_add)
                .await;
        }
        if !queued_remove.is_empty() {
            self.signal_sources(room, nick, Action::SourceRemove, queued_remove)
                .await;
        }
        self.propagate_add(room, nick, &signalled).await;
    }

    async fn on_transport_info(
        &mut self,
        room: &str,
        nick: &str,
        request: &Element,
        jingle: &Jingle,
    ) {
        let trusted = self.is_trusted_jigasi(room, nick);
        let Some(conference) = self.conferences.get_mut(room) else {
            return;
        };
        let media = conference.media.clone();
        let Some(session) = conference
            .members
            .get_mut(nick)
            .and_then(|m| m.session.as_mut())
        else {
            return;
        };
        let Some(transport) = jingle.first_transport().cloned() else {
            let _ = self.c2s.send(stanza::iq_result(request)).await;
            return;
        };
        if session.state == SessionState::Pending {
            if !trusted {
                self.reject(
                    room,
                    nick,
                    "transport-info",
                    request,
                    vec![ViolationKind::EarlyTransportInfo],
                    "bad-request",
                )
                .await;
                return;
            }
            match session.early_transport.as_mut() {
                Some(early) => merge_transport(early, &transport),
                None => session.early_transport = Some(transport.clone()),
            }
            let _ = self.c2s.send(stanza::iq_result(request)).await;
            return;
        }
        let candidates = usable_candidates(&transport);
        let count = candidates.len();
        media.send(MediaCommand::AddCandidates {
            endpoint: nick.to_owned(),
            candidates,
        });
        let _ = self.c2s.send(stanza::iq_result(request)).await;
        self.events.emit(StandInEvent::TransportInfo {
            room: room.to_owned(),
            nick: nick.to_owned(),
            candidates: count,
        });
    }

    async fn on_source_add(&mut self, room: &str, nick: &str, request: &Element, jingle: &Jingle) {
        let action = jingle.action.as_str().to_owned();
        let Some(conference) = self.conferences.get(room) else {
            return;
        };
        let active = conference
            .members
            .get(nick)
            .and_then(|m| m.session.as_ref())
            .is_some_and(|s| s.state == SessionState::Active);
        let added = offer::signalled_sources(jingle, nick);
        let mut existing = conference.sources();
        existing.push(conference.feedback.clone());
        let violations = offer::check_added_sources(nick, &added, &existing);
        if !active || !violations.is_empty() {
            let mut kinds: Vec<ViolationKind> =
                violations.into_iter().map(ViolationKind::Answer).collect();
            if !active {
                kinds.push(ViolationKind::UnsupportedAction);
            }
            self.reject(room, nick, &action, request, kinds, "bad-request")
                .await;
            return;
        }
        let media = conference.media.clone();
        if let Some(member) = self
            .conferences
            .get_mut(room)
            .and_then(|c| c.members.get_mut(nick))
        {
            member.sources.extend(added.iter().cloned());
        }
        media.send(MediaCommand::AddReceive {
            endpoint: nick.to_owned(),
            ssrcs: added.iter().map(|s| s.ssrc).collect(),
        });
        let _ = self.c2s.send(stanza::iq_result(request)).await;
        self.propagate_add(room, nick, &added).await;
    }

    async fn on_source_remove(
        &mut self,
        room: &str,
        nick: &str,
        request: &Element,
        jingle: &Jingle,
    ) {
        let wanted: BTreeSet<Ssrc> = offer::signalled_sources(jingle, nick)
            .iter()
            .map(|s| s.ssrc)
            .collect();
        let Some(conference) = self.conferences.get_mut(room) else {
            return;
        };
        let media = conference.media.clone();
        let Some(member) = conference.members.get_mut(nick) else {
            return;
        };
        let (removed, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut member.sources)
            .into_iter()
            .partition(|s| wanted.contains(&s.ssrc));
        member.sources = kept;
        media.send(MediaCommand::RemoveReceive {
            endpoint: nick.to_owned(),
            ssrcs: removed.iter().map(|s| s.ssrc).collect(),
        });
        let _ = self.c2s.send(stanza::iq_result(request)).await;
        self.propagate_remove(room, nick, &removed).await;
    }

    async fn on_terminate(&mut self, room: &str, nick: &str, request: &Element, jingle: &Jingle) {
        let restart = jingle
            .bridge_session()
            .filter(|b| b.restart == Some(true))
            .map(|b| b.id.clone());
        if let Some(id) = restart {
            self.on_restart_request(room, nick, request, &id).await;
            return;
        }
        let _ = self.c2s.send(stanza::iq_result(request)).await;
        let reason = jingle
            .reason()
            .map_or(ReasonCondition::Success, |r| r.condition.clone());
        self.end_session(room, nick).await;
        self.events.emit(StandInEvent::SessionTerminated {
            room: room.to_owned(),
            nick: nick.to_owned(),
            reason,
            by_focus: false,
        });
    }

    /// §4.5: a participant asks for a new session (`bridge-session restart="true"`).
    async fn on_restart_request(&mut self, room: &str, nick: &str, request: &Element, id: &str) {
        let now = Instant::now();
        let Some(conference) = self.conferences.get_mut(room) else {
            return;
        };
        if conference.bridge_session_id != id {
            let _ = self
                .c2s
                .send(stanza::iq_error(request, "cancel", "item-not-found"))
                .await;
            return;
        }
        let Some(member) = conference.members.get_mut(nick) else {
            return;
        };
        member
            .restarts
            .retain(|at| now.duration_since(*at) < Duration::from_secs(60));
        let too_soon = member
            .restarts
            .last()
            .is_some_and(|at| now.duration_since(*at) < RESTART_MIN_INTERVAL);
        if too_soon || member.restarts.len() >= RESTART_MAX_PER_MINUTE {
            let _ = self
                .c2s
                .send(stanza::iq_error(request, "wait", "resource-constraint"))
                .await;
            return;
        }
        member.restarts.push(now);
        let _ = self.c2s.send(stanza::iq_result(request)).await;
        self.end_session(room, nick).await;
        self.events.emit(StandInEvent::SessionTerminated {
            room: room.to_owned(),
            nick: nick.to_owned(),
            reason: ReasonCondition::Success,
            by_focus: false,
        });
        self.invite(room, nick).await;
    }

    async fn on_session_info(
        &mut self,
        room: &str,
        nick: &str,
        request: &Element,
        jingle: &Jingle,
    ) {
        let _ = self.c2s.send(stanza::iq_result(request)).await;
        // ICE failure report → RestartJingle: terminate "moving", then a new offer (§4.5).
        if jingle.ice_state().is_some_and(|s| s.0 == "failed") {
            let _ = self
                .terminate_session(room, nick, ReasonCondition::Success, Some("moving"))
                .await;
            self.invite(room, nick).await;
        }
    }

    // ----- sources -----

    /// After `owner`'s sources were accepted: source-add to every other member with a session.
    async fn propagate_add(&mut self, room: &str, owner: &str, sources: &[ConferenceSource]) {
        if sources.is_empty() {
            return;
        }
        let targets = self.session_holders(room, owner);
        for target in targets {
            self.signal_sources(room, &target, Action::SourceAdd, sources.to_vec())
                .await;
        }
    }

    async fn propagate_remove(&mut self, room: &str, owner: &str, sources: &[ConferenceSource]) {
        if sources.is_empty() {
            return;
        }
        let targets = self.session_holders(room, owner);
        for target in targets {
            self.signal_sources(room, &target, Action::SourceRemove, sources.to_vec())
                .await;
        }
    }

    fn session_holders(&self, room: &str, except: &str) -> Vec<String> {
        self.conferences
            .get(room)
            .map(|c| {
                c.members
                    .iter()
                    .filter(|(nick, m)| nick.as_str() != except && m.session.is_some())
                    .map(|(nick, _)| nick.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sends (or queues, while pending) a source-add / source-remove to `target`.
    async fn signal_sources(
        &mut self,
        room: &str,
        target: &str,
        action: Action,
        sources: Vec<ConferenceSource>,
    ) {
        let owner_prefix = self.owner_prefix(room);
        let Some(conference) = self.conferences.get_mut(room) else {
            return;
        };
        let media = conference.media.clone();
        let Some(member) = conference.members.get_mut(target) else {
            return;
        };
        let occupant = member.occupant.clone();
        let Some(session) = member.session.as_mut() else {
            return;
        };
        let adding = action == Action::SourceAdd;
        let sources: Vec<ConferenceSource> = sources
            .into_iter()
            .filter(|s| session.signalled.contains(&s.ssrc) != adding)
            .collect();
        if sources.is_empty() {
            return;
        }
        if session.state == SessionState::Pending {
            if adding {
                session.queued_add.extend(sources);
            } else {
                let ssrcs: BTreeSet<Ssrc> = sources.iter().map(|s| s.ssrc).collect();
                let before = session.queued_add.len();
                session.queued_add.retain(|s| !ssrcs.contains(&s.ssrc));
                if session.queued_add.len() == before {
                    session.queued_remove.extend(sources);
                }
            }
            return;
        }
        let ssrcs: Vec<Ssrc> = sources.iter().map(|s| s.ssrc).collect();
        for ssrc in &ssrcs {
            if adding {
                session.signalled.insert(*ssrc);
            } else {
                session.signalled.remove(ssrc);
            }
        }
        let jingle = offer::source_update(action, &session.sid, &sources, owner_prefix.as_deref());
        media.send(if adding {
            MediaCommand::Announce {
                endpoint: target.to_owned(),
                ssrcs: ssrcs.clone(),
            }
        } else {
            MediaCommand::Withdraw {
                endpoint: target.to_owned(),
                ssrcs: ssrcs.clone(),
            }
        });
        // Fire and forget (§4.4); the ack is still awaited so the IQ is tracked.
        self.fire_and_forget(stanza::iq(
            "set",
            Some(&occupant.to_string()),
            jingle.to_element(),
        ));
        self.events.emit(if adding {
            StandInEvent::SourcesAdded {
                room: room.to_owned(),
                to: target.to_owned(),
                sources: ssrcs,
            }
        } else {
            StandInEvent::SourcesRemoved {
                room: room.to_owned(),
                to: target.to_owned(),
                sources: ssrcs,
            }
        });
    }

    /// A simulated participant withdraws its sources (source-remove to everyone, §4.4).
    async fn remove_member_sources(&mut self, room: &str, nick: &str) -> Result<(), StandInError> {
        let conference = self
            .conferences
            .get_mut(room)
            .ok_or_else(|| StandInError::UnknownRoom(room.to_owned()))?;
        let media = conference.media.clone();
        let member =
            conference
                .members
                .get_mut(nick)
                .ok_or_else(|| StandInError::UnknownMember {
                    room: room.to_owned(),
                    nick: nick.to_owned(),
                })?;
        let removed = std::mem::take(&mut member.sources);
        if member.simulated {
            for source in &removed {
                media.send(MediaCommand::RemoveSimulated { ssrc: source.ssrc });
            }
        }
        self.propagate_remove(room, nick, &removed).await;
        Ok(())
    }

    // ----- session ends, timers -----

    /// Drops `nick`'s session, endpoint and sources (source-remove to the others).
    async fn end_session(&mut self, room: &str, nick: &str) {
        let Some(conference) = self.conferences.get_mut(room) else {
            return;
        };
        let media = conference.media.clone();
        let Some(member) = conference.members.get_mut(nick) else {
            return;
        };
        member.session = None;
        let removed = std::mem::take(&mut member.sources);
        media.send(MediaCommand::RemoveEndpoint {
            endpoint: nick.to_owned(),
        });
        self.propagate_remove(room, nick, &removed).await;
        self.update_single_timer(room);
    }

    async fn terminate_session(
        &mut self,
        room: &str,
        nick: &str,
        reason: ReasonCondition,
        text: Option<&str>,
    ) -> Result<(), StandInError> {
        let conference = self
            .conferences
            .get(room)
            .ok_or_else(|| StandInError::UnknownRoom(room.to_owned()))?;
        let unknown = || StandInError::UnknownMember {
            room: room.to_owned(),
            nick: nick.to_owned(),
        };
        let member = conference.members.get(nick).ok_or_else(unknown)?;
        let session = member.session.as_ref().ok_or_else(unknown)?;
        let jingle = offer::session_terminate(&session.sid, reason.clone(), text);
        let iq = stanza::iq(
            "set",
            Some(&member.occupant.to_string()),
            jingle.to_element(),
        );
        self.fire_and_forget(iq);
        self.end_session(room, nick).await;
        self.events.emit(StandInEvent::SessionTerminated {
            room: room.to_owned(),
            nick: nick.to_owned(),
            reason,
            by_focus: true,
        });
        Ok(())
    }

    /// Arms the single-participant timer when one member with a session is alone; disarms it
    /// otherwise (§3.3).
    fn update_single_timer(&mut self, room: &str) {
        let timeout = self.config.single_participant_timeout;
        let Some(conference) = self.conferences.get_mut(room) else {
            return;
        };
        let alone = conference.members.len() == 1
            && conference.members.values().all(|m| m.session.is_some());
        match (alone, conference.single_timer) {
            (true, None) => {
                conference.timer_generation += 1;
                let generation = conference.timer_generation;
                conference.single_timer = Some(generation);
                let internal = self.internal_tx.clone();
                let room = room.to_owned();
                tokio::spawn(async move {
                    tokio::time::sleep(timeout).await;
                    let _ = internal.send(Internal::SingleTimeout { room, generation });
                });
            }
            (false, Some(_)) => {
                conference.single_timer = None;
                conference.timer_generation += 1;
            }
            (true, Some(_)) | (false, None) => {}
        }
    }

    async fn handle_single_timeout(&mut self, room: &str, generation: u64) {
        let Some(conference) = self.conferences.get_mut(room) else {
            return;
        };
        if conference.single_timer != Some(generation) {
            return;
        }
        conference.single_timer = None;
        let alone: Vec<String> = conference
            .members
            .iter()
            .filter(|(_, m)| m.session.is_some())
            .map(|(nick, _)| nick.clone())
            .collect();
        self.events.emit(StandInEvent::SingleParticipantTimeout {
            room: room.to_owned(),
        });
        for nick in alone {
            let _ = self
                .terminate_session(
                    room,
                    &nick,
                    ReasonCondition::Expired,
                    Some("Idle session timeout"),
                )
                .await;
        }
        // The bridge conference expires with the last session.
        if let Some(conference) = self.conferences.get(room) {
            conference.media.send(MediaCommand::Expire);
        }
    }

    // ----- mute -----

    /// Force-mutes `nick` on the bridge and notifies it (§6.1, §8.6).
    fn force_mute(&mut self, room: &str, nick: &str, actor: &Jid) -> Result<(), StandInError> {
        let conference = self
            .conferences
            .get(room)
            .ok_or_else(|| StandInError::UnknownRoom(room.to_owned()))?;
        let member = conference
            .members
            .get(nick)
            .ok_or_else(|| StandInError::UnknownMember {
                room: room.to_owned(),
                nick: nick.to_owned(),
            })?;
        conference.media.send(MediaCommand::SetMuted {
            owner: nick.to_owned(),
            muted: true,
        });
        if !member.simulated {
            let mute = Mute {
                media: MuteMedia::Audio,
                jid: None,
                actor: Some(actor.clone()),
                mute: true,
            };
            let iq = stanza::iq("set", Some(&member.occupant.to_string()), mute.to_element());
            self.fire_and_forget(iq);
        }
        self.events.emit(StandInEvent::Muted {
            room: room.to_owned(),
            nick: nick.to_owned(),
            actor: actor.to_string(),
        });
        Ok(())
    }

    /// A mute request through the MUC (§6.1 steps 1 and 3).
    async fn handle_mute_iq(&mut self, room: &str, sender: &str, request: &Element, mute: Mute) {
        let error = |condition: &str| {
            let kind = if condition == "forbidden" {
                "auth"
            } else {
                "cancel"
            };
            stanza::iq_error(request, kind, condition)
        };
        let target = mute
            .jid
            .as_ref()
            .and_then(|jid| jid.resource().map(|r| r.as_str().to_owned()));
        let Some(conference) = self.conferences.get(room) else {
            return;
        };
        let Some(target) = target.filter(|t| conference.members.contains_key(t)) else {
            let _ = self.c2s.send(error("item-not-found")).await;
            return;
        };
        if mute.media != MuteMedia::Audio {
            // The stand-in bridges audio only; other media have nothing to mute.
            let _ = self.c2s.send(stanza::iq_result(request)).await;
            return;
        }
        let is_self = target == sender;
        if !mute.mute {
            // Only a self-unmute exists (§6.1).
            if !is_self {
                let _ = self.c2s.send(error("not-allowed")).await;
                return;
            }
            conference.media.send(MediaCommand::SetMuted {
                owner: target.clone(),
                muted: false,
            });
            let _ = self.c2s.send(stanza::iq_result(request)).await;
            self.events.emit(StandInEvent::Unmuted {
                room: room.to_owned(),
                nick: target,
            });
            return;
        }
        let moderator = conference
            .members
            .get(sender)
            .is_some_and(Member::is_moderator);
        if !moderator && !is_self {
            let _ = self.c2s.send(error("forbidden")).await;
            return;
        }
        if let Some(member) = conference.members.get(&target)
            && member.presence_features.iter().any(|f| f == jns::JIGASI)
            && !member
                .features
                .as_ref()
                .is_some_and(|f| f.iter().any(|f| f == FEATURE_AUDIO_MUTE))
        {
            // Jicofo refuses to force-mute a Jigasi without the audio-mute feature.
            let _ = self.c2s.send(error("not-allowed")).await;
            return;
        }
        let actor = Jid::from(
            conference
                .room
                .with_resource_str(sender)
                .unwrap_or_else(|_| conference.occupant.clone()),
        );
        let result = self.force_mute(room, &target, &actor);
        let reply = match result {
            Ok(()) => stanza::iq_result(request),
            Err(_) => error("item-not-found"),
        };
        let _ = self.c2s.send(reply).await;
    }

    // ----- dial -----

    async fn handle_client_dial(
        &mut self,
        room: &str,
        sender: &str,
        request: &Element,
        dial: &Element,
    ) {
        let refuse = |condition: &str| {
            let kind = if condition == "forbidden" {
                "auth"
            } else {
                "cancel"
            };
            stanza::iq_error(request, kind, condition)
        };
        let Ok(dial) = Dial::parse(dial) else {
            let _ = self
                .c2s
                .send(stanza::iq_error(request, "modify", "bad-request"))
                .await;
            return;
        };
        let moderator = self
            .conferences
            .get(room)
            .and_then(|c| c.members.get(sender))
            .is_some_and(Member::is_moderator);
        if !moderator {
            let _ = self.c2s.send(refuse("forbidden")).await;
            return;
        }
        if dial
            .room_name()
            .is_some_and(|name| !name.eq_ignore_ascii_case(room))
        {
            let _ = self.c2s.send(refuse("forbidden")).await;
            return;
        }
        self.start_dial(dial, DialReply::Iq(request.clone()));
    }

    fn start_dial(&mut self, dial: Dial, reply: DialReply) {
        self.next_dial += 1;
        let id = self.next_dial;
        let wanted = if dial.to == Dial::TRANSCRIBE_DESTINATION {
            Wanted::Transcriber
        } else {
            Wanted::Sip
        };
        self.dials.insert(
            id,
            DialState {
                dial,
                wanted,
                reply: Some(reply),
                tried: Vec::new(),
                last_error: DialError::NoGateway,
            },
        );
        self.next_dial_attempt(id);
    }

    /// Forwards the dial to the next instance, or finishes with the last error (§2.2 step 4).
    fn next_dial_attempt(&mut self, id: u64) {
        let regions: Vec<String> = self.config.bridge_region.iter().cloned().collect();
        let Some(state) = self.dials.get_mut(&id) else {
            return;
        };
        let selected = if state.tried.len() >= DIAL_MAX_INSTANCES {
            None
        } else {
            self.brewery
                .select(
                    state.wanted,
                    &state.tried,
                    &regions,
                    self.config.local_region.as_deref(),
                )
                .map(|instance| instance.occupant.clone())
        };
        let Some(gateway) = selected else {
            let error = state.last_error.clone();
            self.finish_dial(id, Err(error));
            return;
        };
        state.tried.push(gateway.clone());
        let attempt = u32::try_from(state.tried.len()).unwrap_or(u32::MAX);
        // A copy of the request: same attributes and headers, new id, `from` unset.
        let iq = stanza::iq("set", Some(&gateway), state.dial.to_element());
        self.events
            .emit(StandInEvent::DialForwarded { gateway, attempt });
        let c2s = self.c2s.clone();
        let internal = self.internal_tx.clone();
        let timeout = self.config.dial_timeout;
        tokio::spawn(async move {
            let result = c2s.send_iq(iq, timeout).await;
            let _ = internal.send(Internal::DialAnswer { dial: id, result });
        });
    }

    fn handle_dial_answer(&mut self, id: u64, result: Result<Element, IqError>) {
        let Some(state) = self.dials.get_mut(&id) else {
            return;
        };
        let gateway = state.tried.last().cloned().unwrap_or_default();
        match result {
            Ok(answer) => {
                let outcome = answer
                    .get_child("ref", jns::RAYO)
                    .and_then(|r| Ref::parse(r).ok())
                    .map(|r| RefUri(r.uri))
                    .ok_or(DialError::NoRef);
                self.finish_dial(id, outcome);
            }
            Err(error) => {
                let (condition, last) = match error {
                    IqError::Timeout => ("timeout".to_owned(), DialError::Timeout),
                    IqError::ErrorResponse { error, .. } => (
                        error.condition.clone(),
                        DialError::Refused {
                            condition: error.condition,
                        },
                    ),
                    IqError::Closed | IqError::Rejected(_) => {
                        ("closed".to_owned(), DialError::Closed)
                    }
                };
                state.last_error = last;
                self.events
                    .emit(StandInEvent::DialAttemptFailed { gateway, condition });
                self.next_dial_attempt(id);
            }
        }
    }

    fn finish_dial(&mut self, id: u64, outcome: Result<RefUri, DialError>) {
        let Some(mut state) = self.dials.remove(&id) else {
            return;
        };
        self.events.emit(StandInEvent::DialFinished {
            outcome: outcome
                .as_ref()
                .map(|r| r.0.clone())
                .map_err(|e| e.xmpp_condition().to_owned()),
        });
        match state.reply.take() {
            Some(DialReply::Api(reply)) => {
                let _ = reply.send(outcome);
            }
            Some(DialReply::Iq(request)) => {
                let reply = match outcome {
                    Ok(uri) => {
                        let mut reply = stanza::iq_result(&request);
                        reply.append_child(Ref { uri: uri.0 }.to_element());
                        reply
                    }
                    Err(error) => stanza::iq_error(&request, "cancel", error.xmpp_condition()),
                };
                self.fire_and_forget_send(reply);
            }
            None => {}
        }
    }

    // ----- helpers -----

    fn owner_prefix(&self, room: &str) -> Option<String> {
        self.config
            .full_jid_source_owners
            .then(|| format!("{room}/"))
    }

    fn is_trusted_jigasi(&self, room: &str, nick: &str) -> bool {
        let Some(member) = self.conferences.get(room).and_then(|c| c.members.get(nick)) else {
            return false;
        };
        let domain = member
            .item
            .jid
            .as_deref()
            .and_then(|jid| Jid::new(jid).ok())
            .map(|jid| jid.domain().as_str().to_owned());
        member.presence_features.iter().any(|f| f == jns::JIGASI)
            && domain.is_some_and(|d| self.config.trusted_domains.contains(&d))
    }

    async fn send_via(&self, via_component: bool, stanza: Element) {
        let handle = if via_component {
            &self.component
        } else {
            &self.c2s
        };
        let _ = handle.send(stanza).await;
    }

    /// Sends an IQ request whose answer only matters for logging.
    fn fire_and_forget(&self, iq: Element) {
        let c2s = self.c2s.clone();
        let timeout = self.config.jingle_ack_timeout;
        tokio::spawn(async move {
            if let Err(error) = c2s.send_iq(iq, timeout).await {
                tracing::debug!(%error, "request not acked");
            }
        });
    }

    fn fire_and_forget_send(&self, stanza: Element) {
        let c2s = self.c2s.clone();
        tokio::spawn(async move {
            let _ = c2s.send(stanza).await;
        });
    }

    /// Sends an IQ request and answers `reply` with its outcome.
    fn request_with_reply(&self, iq: Element, reply: oneshot::Sender<Result<(), StandInError>>) {
        let c2s = self.c2s.clone();
        let timeout = self.config.jingle_ack_timeout;
        tokio::spawn(async move {
            let result = match c2s.send_iq(iq, timeout).await {
                Ok(_) => Ok(()),
                Err(IqError::ErrorResponse { error, .. }) => {
                    Err(StandInError::Refused(error.to_string()))
                }
                Err(IqError::Timeout) => Err(StandInError::Timeout("muc admin request")),
                Err(IqError::Closed | IqError::Rejected(_)) => Err(StandInError::Closed),
            };
            let _ = reply.send(result);
        });
    }
}

/// What the focus answers to disco#info.
fn focus_disco() -> DiscoInfo {
    DiscoInfo {
        identities: vec![Identity {
            category: "component".into(),
            kind: "focus".into(),
            lang: None,
            name: Some("jigasi-standin focus".into()),
        }],
        features: vec![
            ns::DISCO_INFO.to_owned(),
            jns::FOCUS.to_owned(),
            "urn:xmpp:jingle:1".to_owned(),
        ],
    }
}

/// Fills ufrag/pwd/fingerprint/candidates missing from the answer's first transport from an
/// earlier `transport-info` (Jigasi's trickle, §4.3).
fn merge_early_transport(answer: &mut Jingle, early: &Transport) {
    let Some(transport) = answer
        .contents_mut()
        .find_map(|content| content.transport.as_mut())
    else {
        return;
    };
    if transport.ufrag.is_none() {
        transport.ufrag.clone_from(&early.ufrag);
    }
    if transport.pwd.is_none() {
        transport.pwd.clone_from(&early.pwd);
    }
    merge_transport(transport, early);
}

/// Adds `from`'s fingerprint (if `into` has none) and candidates to `into`.
fn merge_transport(into: &mut Transport, from: &Transport) {
    if into.fingerprint().is_none()
        && let Some(fingerprint) = from.fingerprint()
    {
        into.children
            .push(TransportChild::Fingerprint(fingerprint.clone()));
    }
    for candidate in from.candidates() {
        if !into.candidates().any(|c| c == candidate) {
            into.children
                .push(TransportChild::Candidate(candidate.clone()));
        }
    }
}

/// The bridge leg's view of the gateway's transport.
fn remote_params(transport: &Transport) -> RemoteParams {
    let (fingerprint_hash, fingerprint) = transport
        .fingerprint()
        .map(|f| (f.hash.clone(), f.value.clone()))
        .unwrap_or_default();
    RemoteParams {
        ice: IceParams {
            ufrag: transport.ufrag.clone().unwrap_or_default(),
            pwd: transport.pwd.clone().unwrap_or_default(),
        },
        candidates: usable_candidates(transport),
        fingerprint_hash,
        fingerprint,
    }
}

/// §8.8: JVB drops candidates whose generation is not 0 or whose address is a host name.
fn usable_candidates(transport: &Transport) -> Vec<BridgeCandidate> {
    transport
        .candidates()
        .filter(|c| c.generation == Some(0) && c.component == 1)
        .filter(|c| c.protocol.eq_ignore_ascii_case("udp"))
        .filter_map(|c| {
            let ip: std::net::IpAddr = c.ip.parse().ok()?;
            let related = match (&c.rel_addr, c.rel_port) {
                (Some(addr), Some(port)) => addr
                    .parse::<std::net::IpAddr>()
                    .ok()
                    .map(|ip| std::net::SocketAddr::new(ip, port)),
                _ => None,
            };
            let kind = match &c.kind {
                CandidateType::Host => CandidateKind::Host,
                CandidateType::Srflx => CandidateKind::ServerReflexive,
                CandidateType::Prflx => CandidateKind::PeerReflexive,
                CandidateType::Relay => CandidateKind::Relayed,
                CandidateType::Other(_) => return None,
            };
            Some(BridgeCandidate {
                foundation: c.foundation.clone(),
                priority: c.priority,
                addr: std::net::SocketAddr::new(ip, c.port),
                kind,
                related,
            })
        })
        .collect()
}

fn random_token(rng: &mut impl Rng, length: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..length)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

fn set_attr(element: &mut Element, name: &'static str, value: impl Into<String>) {
    if let Ok(name) = NcName::try_from(name) {
        element.set_attr(Namespace::NONE, name, value.into());
    }
}

const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const FEATURE_AUDIO_MUTE: &str = "http://jitsi.org/protocol/audio-mute";
/// Jicofo tries at most this many gateways for one dial (the first plus 2 retries).
const DIAL_MAX_INSTANCES: usize = 3;
/// Restart requests: at least 5 s apart (§4.5).
const RESTART_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Restart requests: at most 5 per minute (§4.5).
const RESTART_MAX_PER_MINUTE: usize = 5;
