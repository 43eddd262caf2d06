//! What the stand-in reports: [`StandInEvent`]s (a log plus a live stream), recorded
//! [`Violation`]s, and the typed errors of its API.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jigasi_jingle::answer::AnswerViolation;
use jigasi_jingle::jingle::ReasonCondition;
use jigasi_types::Ssrc;
use jigasi_xmpp_io::ConnectError;
use tokio::sync::broadcast;

use crate::audio::AudioError;

/// Something that happened, in order. Rooms are bare room JIDs in lower case; nicks are MUC
/// nicks (= endpoint ids).
#[derive(Debug, Clone, PartialEq)]
pub enum StandInEvent {
    /// A conference IQ was answered (§3.1).
    ConferenceRequested {
        /// The room.
        room: String,
        /// The `ready` we answered.
        ready: bool,
    },
    /// The focus joined a room as `focus`.
    FocusJoined {
        /// The room.
        room: String,
    },
    /// A member joined a room.
    MemberJoined {
        /// The room.
        room: String,
        /// Its nick.
        nick: String,
        /// Whether it is one of our simulated participants.
        simulated: bool,
    },
    /// A member left (or was kicked).
    MemberLeft {
        /// The room.
        room: String,
        /// Its nick.
        nick: String,
    },
    /// Disco#info of a member finished (§1.4).
    DiscoCompleted {
        /// The room.
        room: String,
        /// The member.
        nick: String,
        /// The features used (the defaults when it timed out).
        features: Vec<String>,
        /// Whether it timed out or failed.
        defaulted: bool,
    },
    /// A `session-initiate` went out (§4.2).
    SessionInitiated {
        /// The room.
        room: String,
        /// The member.
        nick: String,
        /// The session id.
        sid: String,
        /// The remote SSRCs offered (feedback source included).
        sources: Vec<Ssrc>,
    },
    /// The `session-initiate` was acked, or its ack timed out (which counts as success).
    SessionInitiateAcked {
        /// The room.
        room: String,
        /// The member.
        nick: String,
        /// `true` when no ack came in time.
        timed_out: bool,
    },
    /// The `session-initiate` got an error; the session is terminated with `general-error`.
    SessionInitiateFailed {
        /// The room.
        room: String,
        /// The member.
        nick: String,
        /// The error condition.
        condition: String,
    },
    /// A `session-accept` passed every check and media starts.
    SessionAccepted {
        /// The room.
        room: String,
        /// The member.
        nick: String,
        /// The SSRCs it signalled.
        sources: Vec<Ssrc>,
    },
    /// A Jingle request from a member was refused with an error and recorded as a violation.
    JingleRejected {
        /// The room.
        room: String,
        /// The member.
        nick: String,
        /// The Jingle action.
        action: String,
        /// The XMPP error condition we answered.
        condition: String,
    },
    /// Sources were signalled to a member (`source-add`, §4.4).
    SourcesAdded {
        /// The room.
        room: String,
        /// The member that received the `source-add`.
        to: String,
        /// The SSRCs.
        sources: Vec<Ssrc>,
    },
    /// Sources were withdrawn from a member (`source-remove`).
    SourcesRemoved {
        /// The room.
        room: String,
        /// The member that received the `source-remove`.
        to: String,
        /// The SSRCs.
        sources: Vec<Ssrc>,
    },
    /// A `transport-info` from a member was applied.
    TransportInfo {
        /// The room.
        room: String,
        /// The member.
        nick: String,
        /// Candidates applied (generation 0, literal IP).
        candidates: usize,
    },
    /// A Jingle session ended.
    SessionTerminated {
        /// The room.
        room: String,
        /// The member.
        nick: String,
        /// The reason condition.
        reason: ReasonCondition,
        /// `true` when the focus ended it, `false` when the member did.
        by_focus: bool,
    },
    /// The single-participant timeout fired (§3.3, §8.5).
    SingleParticipantTimeout {
        /// The room.
        room: String,
    },
    /// ICE and DTLS with a member's endpoint are up.
    MediaConnected {
        /// The room.
        room: String,
        /// The member.
        nick: String,
    },
    /// A member's media leg failed and was discarded.
    MediaFailed {
        /// The room.
        room: String,
        /// The member.
        nick: String,
        /// Why.
        reason: String,
    },
    /// A mute IQ was sent to a member and its media is force-muted (§6.1).
    Muted {
        /// The room.
        room: String,
        /// The member.
        nick: String,
        /// Who asked (occupant JID), or the focus.
        actor: String,
    },
    /// A member lifted its force-mute (self unmute, §6.1 step 3).
    Unmuted {
        /// The room.
        room: String,
        /// The member.
        nick: String,
    },
    /// The focus left, or the room was destroyed, or the focus was removed: the conference is
    /// over.
    ConferenceEnded {
        /// The room.
        room: String,
    },
    /// A gateway's brewery presence was recorded or updated.
    GatewayAvailable {
        /// Its brewery occupant JID.
        occupant: String,
    },
    /// A gateway left the brewery.
    GatewayLeft {
        /// Its brewery occupant JID.
        occupant: String,
    },
    /// A Rayo dial was forwarded to a gateway (attempt 1..=3).
    DialForwarded {
        /// The gateway's brewery occupant JID.
        gateway: String,
        /// 1 for the first instance, up to 3.
        attempt: u32,
    },
    /// A forwarded dial failed at one gateway (it may be retried elsewhere).
    DialAttemptFailed {
        /// The gateway.
        gateway: String,
        /// `timeout` or the error condition.
        condition: String,
    },
    /// A dial finished.
    DialFinished {
        /// The `<ref uri>` or the error condition sent back.
        outcome: Result<String, String>,
    },
}

/// A rule a member broke, recorded before answering it with an error (§8.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The member's nick.
    pub nick: String,
    /// The Jingle action that broke the rule.
    pub action: String,
    /// What was wrong.
    pub kind: ViolationKind,
}

/// What a [`Violation`] was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViolationKind {
    /// A rule of the answer / source checks (§4.3).
    Answer(AnswerViolation),
    /// A Jingle request for a session id the focus does not know (`bad-request`, §4.1).
    UnknownSession {
        /// The sid.
        sid: String,
    },
    /// The Jingle element could not be parsed (`bad-request`).
    Malformed {
        /// The parser's message.
        error: String,
    },
    /// A `transport-info` before `session-accept` from a member that is not a trusted Jigasi
    /// (§4.3, §8.3).
    EarlyTransportInfo,
    /// An action Jicofo does not accept from participants (`feature-not-implemented`, §4.1).
    UnsupportedAction,
}

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum StandInError {
    /// An XMPP connection could not be set up.
    #[error("xmpp connection: {0}")]
    Connect(#[from] ConnectError),
    /// The stand-in's task is gone (its connection closed, or it was shut down).
    #[error("the stand-in is not running")]
    Closed,
    /// The room is not a conference of this stand-in.
    #[error("unknown room {0}")]
    UnknownRoom(String),
    /// No such member / participant in the room.
    #[error("unknown member {nick} in {room}")]
    UnknownMember {
        /// The room.
        room: String,
        /// The nick.
        nick: String,
    },
    /// A name is not a valid JID or nick.
    #[error("invalid address {0:?}")]
    BadAddress(String),
    /// The server refused something (join, kick, destroy).
    #[error("refused by the server: {0}")]
    Refused(String),
    /// Nothing happened in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The audio source could not be used.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The bridge side failed (socket, media leg).
    #[error("bridge: {0}")]
    Bridge(String),
}

/// Why a dial failed, with the XMPP condition Jicofo would send back to the requester (§2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// No suitable gateway (`service-unavailable`).
    #[error("no gateway available")]
    NoGateway,
    /// The last gateway tried did not answer (`remote-server-timeout`).
    #[error("the gateway did not answer")]
    Timeout,
    /// The last gateway tried answered with an error (`undefined-condition`).
    #[error("the gateway refused: {condition}")]
    Refused {
        /// The gateway's error condition.
        condition: String,
    },
    /// The answer had no `<ref uri>` (`undefined-condition`).
    #[error("no ref in the gateway's answer")]
    NoRef,
    /// The stand-in is not running.
    #[error("the stand-in is not running")]
    Closed,
}

impl DialError {
    /// The condition Jicofo answers the requester with.
    pub fn xmpp_condition(&self) -> &'static str {
        match self {
            Self::NoGateway => "service-unavailable",
            Self::Timeout => "remote-server-timeout",
            Self::Refused { .. } | Self::NoRef => "undefined-condition",
            Self::Closed => "internal-server-error",
        }
    }
}

/// The `<ref uri>` a gateway answered a dial with, e.g.
/// `xmpp:room1@conference.meet.example.com/d3adb33f`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUri(pub String);

/// A live stream of events (from the moment it was created).
#[derive(Debug)]
pub struct EventStream {
    receiver: broadcast::Receiver<StandInEvent>,
}

impl EventStream {
    /// The next event; `None` when the stand-in is gone. Events missed by a slow reader are
    /// skipped (the full log is in [`crate::StandIn::event_log`]).
    pub async fn next(&mut self) -> Option<StandInEvent> {
        loop {
            match self.receiver.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// The shared event log and broadcaster.
#[derive(Debug, Clone)]
pub(crate) struct EventSink {
    inner: Arc<Mutex<Vec<StandInEvent>>>,
    sender: broadcast::Sender<StandInEvent>,
}

impl EventSink {
    pub(crate) fn new() -> Self {
        let (sender, _) = broadcast::channel(EVENT_CAPACITY);
        Self {
            inner: Arc::new(Mutex::new(Vec::new())),
            sender,
        }
    }

    pub(crate) fn emit(&self, event: StandInEvent) {
        tracing::info!(?event, "stand-in");
        let mut log = self.lock();
        log.push(event.clone());
        // Sent under the lock so that `subscribe_after` sees each event exactly once.
        let _ = self.sender.send(event);
    }

    pub(crate) fn log(&self) -> Vec<StandInEvent> {
        self.lock().clone()
    }

    pub(crate) fn subscribe(&self) -> EventStream {
        EventStream {
            receiver: self.sender.subscribe(),
        }
    }

    /// Waits until an event (past or future) matches `pick`.
    pub(crate) async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut pick: impl FnMut(&StandInEvent) -> Option<T>,
    ) -> Option<T> {
        let mut stream = {
            let log = self.lock();
            if let Some(found) = log.iter().find_map(&mut pick) {
                return Some(found);
            }
            self.subscribe()
        };
        tokio::time::timeout(timeout, async {
            while let Some(event) = stream.next().await {
                if let Some(found) = pick(&event) {
                    return Some(found);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<StandInEvent>> {
        // A panic while holding the lock leaves a valid Vec behind; keep using it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

const EVENT_CAPACITY: usize = 4096;
