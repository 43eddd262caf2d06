//! The one stand-in for Jicofo + JVB (jitsi-protocols.md §8), for tests, the demo and
//! benchmarks. An I/O crate: tokio, real XMPP against a real Prosody, real UDP on loopback.
//!
//! # What it owns
//! - **The focus** (`focus.rs`): logs in as `focus@auth.<domain>` and serves the
//!   `focus.<domain>` component; answers the conference IQ (§3.1, with `ready="false"` on
//!   request), joins rooms as `focus` (it is the room owner), tracks occupants, sends disco#info
//!   (§1.4), applies `min-participants`, sends `session-initiate` exactly as §4.2, treats an ack
//!   timeout as success and an error as failure (§4.1), validates `session-accept` with
//!   [`jigasi_jingle::answer::validate_answer`] plus Jicofo's conference-wide source checks,
//!   answers `bad-request` and **records every violation** ([`StandIn::violations`]),
//!   propagates `source-add`/`source-remove` (§4.4: none when a member leaves the MUC), runs the
//!   single-participant timeout, handles mute IQs (§6.1), kicks, destroys rooms, terminates
//!   sessions, and handles restart requests and ICE-failure reports (§4.5).
//! - **The brewery view** (`brewery.rs`): the focus sits in `JigasiBrewery@internal.auth.<domain>`
//!   as `focus`, reads every gateway's `<stats>`, selects one as Jicofo does and forwards Rayo
//!   dials with up to two retries and Jicofo's error mapping ([`StandIn::dial`], and dials sent
//!   by room moderators through the MUC).
//! - **The bridge** (`media.rs`): per Jingle session one [`jigasi_bridge::MediaLeg`] in
//!   `Role::Bridge` on its own UDP socket; simulated web participants' audio (Opus, 20 ms, with
//!   the audio-level extension); forwarding of signalled SSRCs between sessions; force-mute;
//!   silence discard; decoded audio per endpoint for asserts ([`StandIn::received_audio`]).
//!
//! # Simulated web participants
//! Each one is a **real MUC occupant**: an anonymous XMPP client joins the room with a nick and
//! `SourceInfo`, so the gateway sees real presences, a real departure (and, as with Jicofo, no
//! `source-remove` when it leaves). Its media has no Jingle session of its own: the focus treats
//! its source as accepted when its presence arrives, and the bridge plays its audio into every
//! session its source was signalled to (the same SSRC, level and timing a browser would send
//! through JVB).
//!
//! # Known differences from the real thing
//! The bridge is always the DTLS server (the gateway must answer `setup="active"`; `passive`
//! would make JVB the client, which `MediaLeg` does not offer), RTCP comes from str0m's own
//! sender SSRCs rather than the `jvb-a0` feedback SSRC, and there is no Colibri WebSocket.

mod audio;
mod brewery;
mod config;
mod event;
mod focus;
mod media;
mod offer;
mod participant;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jigasi_jingle::jingle::ReasonCondition;
use jigasi_jingle::rayo::{Dial, Header};
use jigasi_types::Ssrc;
use jigasi_xmpp::jid::{BareJid, ResourcePart};
use jigasi_xmpp::{Auth, ClientConfig, ComponentConfig, TlsPolicy};
use jigasi_xmpp_io::{ConnectOptions, connect_client, connect_component};
use tokio::sync::{mpsc, oneshot};

pub use audio::{
    AudioError, AudioSource, EncodedFrame, FRAME_SAMPLES, PreencodedAudio, SAMPLE_RATE,
    audio_level, parse_wav, read_wav_48k, resample_to_48k,
};
pub use brewery::BreweryInstance;
pub use config::StandInConfig;
pub use event::{
    DialError, EventStream, RefUri, StandInError, StandInEvent, Violation, ViolationKind,
};
pub use media::{Arrival, EndpointMedia, EndpointMediaStats, MAX_ARRIVALS, ReceivedTelephoneEvent};
pub use offer::{ConferenceSource, LocalTransport};

use crate::event::EventSink;
use crate::focus::{Command, Focus};
use crate::participant::SimulatedClient;

/// Identifies a simulated web participant of this stand-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(u64);

/// What the stand-in knows about one simulated participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantInfo {
    /// The room (bare JID, lower case).
    pub room: String,
    /// Its nick = endpoint id.
    pub nick: String,
    /// Its audio SSRC.
    pub ssrc: Ssrc,
}

struct ParticipantEntry {
    info: ParticipantInfo,
    /// `None` for a virtual participant (bulk mode, no MUC occupant).
    client: Option<SimulatedClient>,
}

/// A running Jicofo + JVB stand-in. Dropping it leaves every room and closes its connections.
pub struct StandIn {
    config: StandInConfig,
    commands: mpsc::Sender<Command>,
    events: EventSink,
    focus_jid: String,
    participants: Mutex<BTreeMap<ParticipantId, ParticipantEntry>>,
    next_participant: AtomicU64,
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn")
            .field("domain", &self.config.domain)
            .field("focus_jid", &self.focus_jid)
            .finish_non_exhaustive()
    }
}

impl StandIn {
    /// Logs the focus in, connects the focus component, joins the brewery (if configured) and
    /// returns once all of that is done.
    pub async fn start(config: StandInConfig) -> Result<Self, StandInError> {
        let nick = ResourcePart::new(&config.focus_user)
            .map_err(|_| StandInError::BadAddress(config.focus_user.clone()))?
            .into_owned();
        let options = |addr: std::net::SocketAddr, name: String| ConnectOptions {
            connect_timeout: config.connect_timeout,
            tls_server_name: name,
            ..ConnectOptions::new(addr.ip().to_string(), addr.port())
        };
        let client = ClientConfig::new(
            config.auth_domain(),
            Auth::Password {
                username: config.focus_user.clone(),
                password: config.focus_password.clone(),
            },
        )
        .with_tls(TlsPolicy::Disabled)
        .with_resource(FOCUS_RESOURCE);
        let (c2s, c2s_events) =
            connect_client(options(config.c2s_addr, config.auth_domain()), client).await?;
        let component_config =
            ComponentConfig::new(config.focus_component(), config.component_secret.clone());
        let (component, component_events) = connect_component(
            options(config.component_addr, config.focus_component()),
            component_config,
        )
        .await?;
        let focus_jid = c2s.jid().to_string();
        let events = EventSink::new();
        let (focus, internal) = Focus::new(config.clone(), c2s, component, events.clone(), nick);
        let (commands, inbox) = mpsc::channel(COMMAND_QUEUE);
        tokio::spawn(focus.run(inbox, c2s_events, component_events, internal));
        let stand_in = Self {
            config,
            commands,
            events,
            focus_jid,
            participants: Mutex::new(BTreeMap::new()),
            next_participant: AtomicU64::new(1),
        };
        let joined = stand_in.ask(|reply| Command::JoinBrewery { reply }).await?;
        tokio::time::timeout(JOIN_TIMEOUT, joined)
            .await
            .map_err(|_| StandInError::Timeout("brewery join"))?
            .map_err(|_| StandInError::Closed)??;
        Ok(stand_in)
    }

    /// The focus's real JID (`focus@auth.<domain>/focus`), the `initiator` of its offers.
    pub fn focus_jid(&self) -> &str {
        &self.focus_jid
    }

    /// The configuration in use.
    pub fn config(&self) -> &StandInConfig {
        &self.config
    }

    /// The room's bare JID in lower case: `room` as given if it has an `@`, else
    /// `<room>@conference.<domain>`.
    pub fn room_jid(&self, room: &str) -> Result<String, StandInError> {
        let jid = if room.contains('@') {
            room.to_lowercase()
        } else {
            format!("{}@{}", room.to_lowercase(), self.config.muc_domain())
        };
        BareJid::new(&jid)
            .map(|jid| jid.to_string())
            .map_err(|_| StandInError::BadAddress(room.to_owned()))
    }

    /// Makes the focus join `room` (as Jicofo does on the first conference IQ) and waits until
    /// it is in; conference IQs for it are then answered `ready="true"`.
    pub async fn create_conference(&self, room: &str) -> Result<(), StandInError> {
        let room = self.bare_room(room)?;
        let done = self
            .ask(|reply| Command::CreateConference { room, reply })
            .await?;
        tokio::time::timeout(JOIN_TIMEOUT, done)
            .await
            .map_err(|_| StandInError::Timeout("focus join"))?
            .map_err(|_| StandInError::Closed)?
    }

    /// Makes the next `times` conference IQs for `room` answer `ready="false"` (lib-jitsi-meet
    /// retries; a gateway should too, §3.1). Creates the conference if needed.
    pub async fn answer_not_ready(&self, room: &str, times: u32) -> Result<(), StandInError> {
        let room = self.bare_room(room)?;
        self.commands
            .send(Command::AnswerNotReady { room, times })
            .await
            .map_err(|_| StandInError::Closed)
    }

    /// Adds a simulated web participant `nick` playing `source` to a created conference. It
    /// joins the room as a real occupant; returns once the focus has seen it.
    pub async fn add_participant(
        &self,
        room: &str,
        nick: &str,
        source: AudioSource,
    ) -> Result<ParticipantId, StandInError> {
        let room = self.room_jid(room)?;
        let occupant = BareJid::new(&room)
            .map_err(|_| StandInError::BadAddress(room.clone()))?
            .with_resource_str(nick)
            .map_err(|_| StandInError::BadAddress(nick.to_owned()))?;
        let media = self
            .ask(|reply| Command::Media {
                room: room.clone(),
                reply,
            })
            .await?
            .await
            .map_err(|_| StandInError::Closed)?
            .ok_or_else(|| StandInError::UnknownRoom(room.clone()))?;
        let ssrc = Ssrc::new(rand::random_range(1..=u32::MAX));
        media.add_simulated(ssrc, nick, source).await?;
        let source_name = format!("{nick}-a0");
        let conference_source = ConferenceSource {
            ssrc,
            name: Some(source_name.clone()),
            owner: nick.to_owned(),
            msid: Some(format!(
                "{nick}-audio-0-1 {:08x}-{:04x}",
                rand::random::<u32>(),
                rand::random::<u16>()
            )),
        };
        self.ask(|reply| Command::RegisterSimulated {
            room: room.clone(),
            source: conference_source,
            reply,
        })
        .await?
        .await
        .map_err(|_| StandInError::Closed)??;
        let client = SimulatedClient::join(&self.config, occupant, &source_name).await?;
        let seen = self
            .events
            .wait_for(JOIN_TIMEOUT, |event| {
                let StandInEvent::MemberJoined {
                    room: r, nick: n, ..
                } = event
                else {
                    return None;
                };
                (*r == room && n == nick).then_some(())
            })
            .await;
        if seen.is_none() {
            return Err(StandInError::Timeout("focus to see the participant"));
        }
        let id = ParticipantId(self.next_participant.fetch_add(1, Ordering::Relaxed));
        let info = ParticipantInfo {
            room,
            nick: nick.to_owned(),
            ssrc,
        };
        self.lock_participants().insert(
            id,
            ParticipantEntry {
                info,
                client: Some(client),
            },
        );
        Ok(id)
    }

    /// Bulk mode (benchmarks): adds a simulated speaker **without** an XMPP client. The focus
    /// announces its source itself (as it does for [`Self::add_participant`] once the presence
    /// arrives) and the bridge plays `source`; no MUC occupant exists, so the gateway sees the
    /// source but no presence. Use [`AudioSource::Preencoded`] to avoid an Opus encoder per
    /// speaker. [`Self::remove_participant`] withdraws its source (`source-remove`).
    pub async fn add_virtual_participant(
        &self,
        room: &str,
        nick: &str,
        source: AudioSource,
    ) -> Result<ParticipantId, StandInError> {
        let room = self.room_jid(room)?;
        let media = self
            .ask(|reply| Command::Media {
                room: room.clone(),
                reply,
            })
            .await?
            .await
            .map_err(|_| StandInError::Closed)?
            .ok_or_else(|| StandInError::UnknownRoom(room.clone()))?;
        let ssrc = Ssrc::new(rand::random_range(1..=u32::MAX));
        media.add_simulated(ssrc, nick, source).await?;
        let source = ConferenceSource {
            ssrc,
            name: Some(format!("{nick}-a0")),
            owner: nick.to_owned(),
            msid: Some(format!(
                "{nick}-audio-0-1 {:08x}-{:04x}",
                rand::random::<u32>(),
                rand::random::<u16>()
            )),
        };
        self.ask(|reply| Command::AddVirtual {
            room: room.clone(),
            source,
            reply,
        })
        .await?
        .await
        .map_err(|_| StandInError::Closed)??;
        let id = ParticipantId(self.next_participant.fetch_add(1, Ordering::Relaxed));
        let info = ParticipantInfo {
            room,
            nick: nick.to_owned(),
            ssrc,
        };
        self.lock_participants()
            .insert(id, ParticipantEntry { info, client: None });
        Ok(id)
    }

    /// Whether the bridge decodes and keeps the audio endpoints of `room` send (default yes;
    /// benchmarks turn it off to save CPU; packet arrivals are logged either way).
    pub async fn set_keep_audio(&self, room: &str, keep: bool) -> Result<(), StandInError> {
        self.room_media(room)
            .await?
            .send(media::MediaCommand::KeepAudio { keep });
        Ok(())
    }

    /// Network loss on the bridge leg of `room`: from now on the bridge drops `share` (0..=1)
    /// of the RTP datagrams it sends to connected endpoints, chosen by an RNG seeded with
    /// `seed`. 0 turns it off.
    pub async fn set_send_loss(
        &self,
        room: &str,
        share: f64,
        seed: u64,
    ) -> Result<(), StandInError> {
        self.room_media(room)
            .await?
            .send(media::MediaCommand::SendLoss { share, seed });
        Ok(())
    }

    /// When the bridge sent each frame of the traced pre-encoded speaker `nick` in `room`
    /// (`(frame index in the source, instant)`, oldest first; empty if not traced).
    pub async fn speaker_trace(
        &self,
        room: &str,
        nick: &str,
    ) -> Result<Vec<(usize, std::time::Instant)>, StandInError> {
        let media = self.room_media(room).await?;
        let (reply, answer) = oneshot::channel();
        media.send(media::MediaCommand::SpeakerTrace {
            owner: nick.to_owned(),
            reply,
        });
        answer.await.map_err(|_| StandInError::Closed)
    }

    async fn room_media(&self, room: &str) -> Result<media::MediaHandle, StandInError> {
        let room = self.room_jid(room)?;
        self.ask(|reply| Command::Media {
            room: room.clone(),
            reply,
        })
        .await?
        .await
        .map_err(|_| StandInError::Closed)?
        .ok_or(StandInError::UnknownRoom(room))
    }

    /// The simulated participant's room, nick and SSRC.
    pub fn participant(&self, id: ParticipantId) -> Option<ParticipantInfo> {
        self.lock_participants().get(&id).map(|e| e.info.clone())
    }

    /// The simulated participant called `nick` in `room`, if there is one.
    pub fn find_participant(&self, room: &str, nick: &str) -> Option<ParticipantId> {
        let room = self.room_jid(room).ok()?;
        self.lock_participants()
            .iter()
            .find(|(_, entry)| entry.info.room == room && entry.info.nick == nick)
            .map(|(id, _)| *id)
    }

    /// The simulated participant leaves the room. As with Jicofo (§4.4) the focus sends **no**
    /// `source-remove`: the gateway must drop the sources of an occupant that left.
    pub async fn remove_participant(&self, id: ParticipantId) -> Result<(), StandInError> {
        let entry = self
            .lock_participants()
            .remove(&id)
            .ok_or(StandInError::UnknownMember {
                room: String::new(),
                nick: format!("participant {}", id.0),
            })?;
        let Some(client) = entry.client else {
            let ParticipantInfo { room, nick, .. } = entry.info;
            return self
                .ask(|reply| Command::RemoveSimulatedSources { room, nick, reply })
                .await?
                .await
                .map_err(|_| StandInError::Closed)?;
        };
        client.leave().await;
        let ParticipantInfo { room, nick, .. } = entry.info;
        self.events
            .wait_for(JOIN_TIMEOUT, |event| {
                let StandInEvent::MemberLeft { room: r, nick: n } = event else {
                    return None;
                };
                (*r == room && *n == nick).then_some(())
            })
            .await
            .ok_or(StandInError::Timeout("focus to see the participant leave"))
    }

    /// The simulated participant stops sending and removes its source while staying in the
    /// room: the focus sends `source-remove` to every session (§4.4).
    pub async fn remove_participant_sources(&self, id: ParticipantId) -> Result<(), StandInError> {
        let info = self.participant(id).ok_or(StandInError::UnknownMember {
            room: String::new(),
            nick: format!("participant {}", id.0),
        })?;
        self.ask(|reply| Command::RemoveSimulatedSources {
            room: info.room,
            nick: info.nick,
            reply,
        })
        .await?
        .await
        .map_err(|_| StandInError::Closed)?
    }

    /// The audio the bridge accepted from `nick`'s endpoint, decoded, 48 kHz mono (the newest
    /// [`StandInConfig::max_received_audio`]).
    pub async fn received_audio(&self, room: &str, nick: &str) -> Result<Vec<i16>, StandInError> {
        Ok(self.endpoint_media(room, nick).await?.audio)
    }

    /// Packet counters and the last audio level of `nick`'s endpoint.
    pub async fn media_stats(
        &self,
        room: &str,
        nick: &str,
    ) -> Result<EndpointMediaStats, StandInError> {
        Ok(self.endpoint_media(room, nick).await?.stats)
    }

    /// Every rule members broke in `room` (answers and requests refused with an error).
    pub async fn violations(&self, room: &str) -> Result<Vec<Violation>, StandInError> {
        let room = self.room_jid(room)?;
        self.ask(|reply| Command::Violations { room, reply })
            .await?
            .await
            .map_err(|_| StandInError::Closed)
    }

    /// A moderator mute of `nick`: the bridge drops its audio and the focus sends it
    /// `<mute xmlns="http://jitsi.org/jitmeet/audio" actor=…>true</mute>` (§6.1).
    pub async fn mute(&self, room: &str, nick: &str) -> Result<(), StandInError> {
        let (room, nick) = (self.room_jid(room)?, nick.to_owned());
        self.call(|reply| Command::Mute { room, nick, reply }).await
    }

    /// Kicks `nick` (MUC admin IQ, role `none`): everyone gets an unavailable presence with
    /// status 307 (§6.2).
    pub async fn kick(&self, room: &str, nick: &str) -> Result<(), StandInError> {
        let (room, nick) = (self.room_jid(room)?, nick.to_owned());
        self.call(|reply| Command::Kick { room, nick, reply }).await
    }

    /// Destroys the room ("end meeting for all"): occupants get `<destroy/>` (§6.2).
    pub async fn destroy(&self, room: &str, reason: Option<&str>) -> Result<(), StandInError> {
        let room = self.room_jid(room)?;
        let reason = reason.map(str::to_owned);
        self.call(|reply| Command::Destroy {
            room,
            reason,
            reply,
        })
        .await
    }

    /// Sends `session-terminate` with `reason` (and text) to `nick` and drops its session.
    pub async fn terminate(
        &self,
        room: &str,
        nick: &str,
        reason: ReasonCondition,
        text: Option<&str>,
    ) -> Result<(), StandInError> {
        let (room, nick) = (self.room_jid(room)?, nick.to_owned());
        let text = text.map(str::to_owned);
        self.call(|reply| Command::Terminate {
            room,
            nick,
            reason,
            text,
            reply,
        })
        .await
    }

    /// The focus leaves the room ("Focus left": a gateway hangs up its Jingle leg, §6.2).
    pub async fn leave(&self, room: &str) -> Result<(), StandInError> {
        let room = self.room_jid(room)?;
        self.call(|reply| Command::Leave { room, reply }).await
    }

    /// Jicofo's dial-out: picks a gateway from the brewery and forwards
    /// `<dial to=… ><header name="JvbRoomName" value=room/>…</dial>` to it, retrying up to two
    /// other gateways on error or timeout (§2.2). Returns the gateway's `<ref uri>`.
    pub async fn dial(
        &self,
        room: &str,
        to: &str,
        headers: &[(&str, &str)],
    ) -> Result<RefUri, DialError> {
        let room = self.room_jid(room).map_err(|_| DialError::NoGateway)?;
        let mut all = vec![Header::new(Dial::ROOM_NAME_HEADER, &room)];
        all.extend(headers.iter().map(|(name, value)| Header::new(name, value)));
        let dial = Dial {
            to: to.to_owned(),
            from: None,
            headers: all,
            extra_attrs: BTreeMap::new(),
            other: Vec::new(),
        };
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Dial { dial, reply })
            .await
            .map_err(|_| DialError::Closed)?;
        answer.await.map_err(|_| DialError::Closed)?
    }

    /// The gateways in the brewery, as the focus sees them.
    pub async fn gateways(&self) -> Result<Vec<BreweryInstance>, StandInError> {
        self.ask(|reply| Command::Gateways { reply })
            .await?
            .await
            .map_err(|_| StandInError::Closed)
    }

    /// A live stream of events from now on.
    pub fn events(&self) -> EventStream {
        self.events.subscribe()
    }

    /// Every event so far, in order.
    pub fn event_log(&self) -> Vec<StandInEvent> {
        self.events.log()
    }

    /// Waits until an event (already logged or future) matches `pick`; `None` on timeout.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        pick: impl FnMut(&StandInEvent) -> Option<T>,
    ) -> Option<T> {
        self.events.wait_for(timeout, pick).await
    }

    /// Everything the bridge knows about `nick`'s endpoint in `room`: decoded audio, counters
    /// and the newest packet arrivals.
    pub async fn endpoint_media(
        &self,
        room: &str,
        nick: &str,
    ) -> Result<EndpointMedia, StandInError> {
        let room = self.room_jid(room)?;
        let media = self
            .ask(|reply| Command::Media {
                room: room.clone(),
                reply,
            })
            .await?
            .await
            .map_err(|_| StandInError::Closed)?
            .ok_or_else(|| StandInError::UnknownRoom(room.clone()))?;
        media
            .query(nick)
            .await
            .ok_or_else(|| StandInError::UnknownMember {
                room,
                nick: nick.to_owned(),
            })
    }

    fn bare_room(&self, room: &str) -> Result<BareJid, StandInError> {
        let jid = self.room_jid(room)?;
        BareJid::new(&jid).map_err(|_| StandInError::BadAddress(room.to_owned()))
    }

    /// Sends a command carrying a reply channel; returns the receiving end.
    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<oneshot::Receiver<T>, StandInError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| StandInError::Closed)?;
        Ok(answer)
    }

    async fn call(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<(), StandInError>>) -> Command,
    ) -> Result<(), StandInError> {
        self.ask(command)
            .await?
            .await
            .map_err(|_| StandInError::Closed)?
    }

    fn lock_participants(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<ParticipantId, ParticipantEntry>> {
        // The map stays consistent even if a holder panicked; keep using it.
        self.participants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Jicofo's resource on its account: its real JID is `focus@auth.<domain>/focus`.
const FOCUS_RESOURCE: &str = "focus";
/// Waiting for a MUC join (focus, brewery, simulated participants).
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Commands waiting for the focus task.
const COMMAND_QUEUE: usize = 256;
