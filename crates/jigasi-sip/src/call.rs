//! Calls: the dialog-level API the gateway sees, and the task that drives one INVITE dialog.
//!
//! Every call (inbound or outbound) is owned by one [`CallTask`]. It alone holds the rsipstack
//! dialog handle, reads the dialog's state channel, executes the app's [`CallControl`] commands
//! and reports [`CallEvent`]s. In-dialog requests reach it from the endpoint's `SipTask`, which
//! routes by Call-ID and our tag; when the call ends the task tells the `SipTask`, which removes
//! the dialog from the stack's dialog layer.

use std::fmt;
use std::net::SocketAddr;

use rsipstack::dialog::DialogId;
use rsipstack::dialog::dialog::{
    DialogState, DialogStateReceiver, TerminatedReason, TransactionHandle,
};
use rsipstack::dialog::invitation::InviteAsyncResult;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, Request, Response, StatusCode, StatusCodeKind};
use rsipstack::transaction::transaction::Transaction;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::Transport;

/// The SIP Call-ID of a call (RFC 3261 §8.1.1.4), as the peer or we chose it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SipCallId(String);

impl SipCallId {
    /// Wraps a Call-ID value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The Call-ID text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SipCallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SipCallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SipCallId({})", self.0)
    }
}

/// A SIP address with its optional display name (`"Alice" <sip:alice@example.com>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The URI, e.g. `sip:alice@example.com`.
    pub uri: String,
    /// The display name without quotes, if the header had one.
    pub display_name: Option<String>,
}

/// A new inbound call (an initial INVITE). The stack has already sent `100 Trying` and
/// `180 Ringing`; the app answers, rejects or lets the caller cancel.
#[derive(Debug)]
pub struct IncomingCall {
    /// The Call-ID of the INVITE.
    pub call_id: SipCallId,
    /// The caller (From header).
    pub from: NameAddr,
    /// The callee (To header).
    pub to: NameAddr,
    /// The Request-URI of the INVITE.
    pub request_uri: String,
    /// Every header of the INVITE in order, as `(name, value)` (the room headers are read from
    /// these).
    pub headers: Vec<(String, String)>,
    /// The SDP offer, if the INVITE had a body.
    pub offer: Option<Vec<u8>>,
    /// Where the INVITE came from (the previous hop).
    pub remote_addr: Option<SocketAddr>,
    /// The transport it came over.
    pub transport: Transport,
    /// Commands for this call.
    pub control: CallControl,
    /// What happens to this call; ends with exactly one terminal event
    /// ([`CallEvent::is_terminal`]).
    pub events: mpsc::Receiver<CallEvent>,
}

impl IncomingCall {
    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What to dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialRequest {
    /// The Request-URI, e.g. `sip:+15551234567@pbx.example.com` (`;transport=tcp` selects TCP).
    pub request_uri: String,
    /// The From URI; `None` uses the account's address of record.
    pub from: Option<String>,
    /// The From display name.
    pub display_name: Option<String>,
    /// Extra headers, sent in this order after the stack's own headers.
    pub headers: Vec<(String, String)>,
    /// The SDP offer.
    pub offer: Vec<u8>,
}

/// An outbound call just placed: the INVITE is on its way.
#[derive(Debug)]
pub struct OutgoingCall {
    /// The Call-ID we chose.
    pub call_id: SipCallId,
    /// Commands for this call ([`CallControl::hangup`] before the answer sends CANCEL).
    pub control: CallControl,
    /// What happens to this call: [`CallEvent::Provisional`]s, then [`CallEvent::Answered`] or
    /// [`CallEvent::Failed`], then the in-dialog events; exactly one terminal event.
    pub events: mpsc::Receiver<CallEvent>,
}

/// Why a call ended, when neither the peer's BYE/CANCEL nor a final response says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// We never got the ACK for our 200 within 64*T1; the stack sent BYE.
    AckTimeout,
    /// We hung up (BYE, or CANCEL before the answer).
    LocalHangup,
    /// The outbound INVITE got no final response (timer B).
    NoResponse,
    /// We rejected the inbound INVITE.
    Rejected,
    /// The endpoint is shutting down.
    Shutdown,
    /// The INVITE could not be sent (transport or resolution failure).
    TransportError,
}

/// How an INVITE session is being modified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModifyMethod {
    /// A re-INVITE (RFC 3261 §14).
    ReInvite,
    /// An UPDATE (RFC 3311).
    Update,
}

/// Something that happened to a call.
#[derive(Debug)]
pub enum CallEvent {
    /// Outbound: a provisional response (180, 183) arrived.
    Provisional {
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: String,
        /// Early-media SDP, if the response had a body.
        sdp: Option<Vec<u8>>,
    },
    /// Outbound: the callee answered (200); the stack has sent the ACK.
    Answered {
        /// The callee's SDP answer.
        sdp: Option<Vec<u8>>,
    },
    /// Outbound, terminal: the INVITE got a final error response.
    Failed {
        /// The status code (e.g. 486).
        status: u16,
        /// The reason phrase.
        reason: String,
    },
    /// Inbound: the caller ACKed our 200; the call is up.
    Confirmed,
    /// Inbound, terminal: the caller cancelled before the answer (it got 487).
    Cancelled,
    /// The peer modifies the session (hold, resume, codec change); answer through `responder`.
    ReInvite {
        /// Re-INVITE or UPDATE.
        method: ModifyMethod,
        /// The new offer, if the request had a body.
        offer: Option<Vec<u8>>,
        /// Sends the answer (200 with SDP) or an error status.
        responder: OfferResponder,
    },
    /// The peer sent INFO (already answered 200): DTMF relay or Jitsi's JSON control messages.
    Info {
        /// The Content-Type, if any (an INFO without one is answered 200 too).
        content_type: Option<String>,
        /// The body.
        body: Vec<u8>,
    },
    /// Terminal: the peer hung up with BYE.
    RemoteHangup {
        /// The BYE's RFC 3326 `Reason` header, if any.
        reason: Option<String>,
    },
    /// Terminal: the call ended for another reason.
    Terminated {
        /// Why.
        why: Termination,
    },
}

impl CallEvent {
    /// Whether this is the call's last event.
    pub fn is_terminal(&self) -> bool {
        match self {
            CallEvent::Failed { .. }
            | CallEvent::Cancelled
            | CallEvent::RemoteHangup { .. }
            | CallEvent::Terminated { .. } => true,
            CallEvent::Provisional { .. }
            | CallEvent::Answered { .. }
            | CallEvent::Confirmed
            | CallEvent::ReInvite { .. }
            | CallEvent::Info { .. } => false,
        }
    }
}

/// Answers one re-INVITE or UPDATE. Dropping it unanswered makes the stack answer it with an
/// error later (501 after 64*T1 at the latest).
pub struct OfferResponder {
    handle: TransactionHandle,
}

impl OfferResponder {
    /// Sends 200 with `sdp` as the answer.
    pub async fn accept(self, sdp: Vec<u8>) -> Result<(), CallError> {
        let headers = vec![Header::ContentType("application/sdp".into())];
        self.handle
            .respond(StatusCode::OK, Some(headers), Some(sdp))
            .await
            .map_err(|_| CallError::Ended)
    }

    /// Refuses the change with `status` (e.g. 488 Not Acceptable Here); the session stays as it
    /// was.
    pub async fn reject(self, status: u16) -> Result<(), CallError> {
        if !(300..=699).contains(&status) {
            return Err(CallError::InvalidStatus(status));
        }
        self.handle
            .reply(StatusCode::from(status))
            .await
            .map_err(|_| CallError::Ended)
    }
}

impl fmt::Debug for OfferResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OfferResponder")
    }
}

/// The RFC 3326 `Reason` for a BYE (or a rejection) we send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HangupReason {
    /// No `Reason` header.
    Unspecified,
    /// `SIP;cause=<cause>;text="<text>"`, e.g. cause 408 "No invite from conference focus".
    Sip {
        /// A SIP status code.
        cause: u16,
        /// Free text.
        text: Option<String>,
    },
    /// `Q.850;cause=<cause>;text="<text>"`, e.g. cause 16 (normal call clearing).
    Q850 {
        /// An ITU-T Q.850 cause value.
        cause: u16,
        /// Free text.
        text: Option<String>,
    },
}

impl HangupReason {
    /// The `Reason` header value, or `None` for [`HangupReason::Unspecified`].
    pub fn header_value(&self) -> Option<String> {
        let (protocol, cause, text) = match self {
            HangupReason::Unspecified => return None,
            HangupReason::Sip { cause, text } => ("SIP", cause, text),
            HangupReason::Q850 { cause, text } => ("Q.850", cause, text),
        };
        let mut value = format!("{protocol};cause={cause}");
        if let Some(text) = text {
            value.push_str(";text=\"");
            for c in text.chars().filter(|c| !c.is_control()) {
                if c == '"' || c == '\\' {
                    value.push('\\');
                }
                value.push(c);
            }
            value.push('"');
        }
        Some(value)
    }
}

/// Why a call command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call has already ended.
    #[error("the call has ended")]
    Ended,
    /// The command needs a ringing (unanswered) inbound call, e.g. the caller cancelled first.
    #[error("the call is not ringing any more")]
    NotRinging,
    /// The command needs an established call.
    #[error("the call is not established")]
    NotEstablished,
    /// A status code outside the range the command allows.
    #[error("status {0} is not allowed here")]
    InvalidStatus(u16),
    /// The peer answered our in-dialog request with an error.
    #[error("the peer answered {status}")]
    Refused {
        /// The peer's status code.
        status: u16,
    },
    /// Our in-dialog request got no answer or could not be sent.
    #[error("the request could not be delivered")]
    Undelivered,
}

/// A cloneable handle that sends commands to one call's task.
#[derive(Debug, Clone)]
pub struct CallControl {
    commands: mpsc::Sender<Command>,
}

impl CallControl {
    /// Sends (again) `180 Ringing`. The stack already sent one when the INVITE arrived.
    pub async fn ring(&self) -> Result<(), CallError> {
        self.request(|reply| Command::Ring { reply }).await
    }

    /// Answers the ringing inbound call with 200 and the SDP answer. Fails with
    /// [`CallError::NotRinging`] if the caller has cancelled meanwhile.
    pub async fn answer(&self, sdp: Vec<u8>) -> Result<(), CallError> {
        self.request(|reply| Command::Answer { sdp, reply }).await
    }

    /// Rejects the ringing inbound call with a final `status` (300-699), with an optional RFC
    /// 3326 `Reason` header.
    pub async fn reject(&self, status: u16, reason: HangupReason) -> Result<(), CallError> {
        self.request(|reply| Command::Reject {
            status,
            reason,
            reply,
        })
        .await
    }

    /// Ends the call: BYE with the `Reason` header once answered; before that, an inbound call
    /// is rejected with 486 Busy Here and an outbound call is cancelled.
    pub async fn hangup(&self, reason: HangupReason) -> Result<(), CallError> {
        self.request(|reply| Command::Hangup { reason, reply })
            .await
    }

    /// Sends INFO with `body` of `content_type` (e.g. `application/dtmf-relay` or
    /// `application/json`) and waits for the answer; returns the peer's 2xx status.
    pub async fn send_info(&self, content_type: &str, body: Vec<u8>) -> Result<u16, CallError> {
        let (reply, rx) = oneshot::channel();
        let command = Command::SendInfo {
            content_type: content_type.to_owned(),
            body,
            reply,
        };
        self.commands
            .send(command)
            .await
            .map_err(|_| CallError::Ended)?;
        rx.await.map_err(|_| CallError::Ended)?
    }

    async fn request(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), CallError>>) -> Command,
    ) -> Result<(), CallError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| CallError::Ended)?;
        rx.await.map_err(|_| CallError::Ended)?
    }
}

type Reply<T = ()> = oneshot::Sender<Result<T, CallError>>;

#[derive(Debug)]
enum Command {
    Ring {
        reply: Reply,
    },
    Answer {
        sdp: Vec<u8>,
        reply: Reply,
    },
    Reject {
        status: u16,
        reason: HangupReason,
        reply: Reply,
    },
    Hangup {
        reason: HangupReason,
        reply: Reply,
    },
    SendInfo {
        content_type: String,
        body: Vec<u8>,
        reply: Reply<u16>,
    },
}

/// How the `SipTask` finds a call: Call-ID and our own tag (To tag of inbound, From tag of
/// outbound dialogs), which stay the same for the dialog's whole life.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RouteKey {
    pub(crate) call_id: String,
    pub(crate) local_tag: String,
}

impl RouteKey {
    pub(crate) fn of(dialog: &DialogId) -> Self {
        Self {
            call_id: dialog.call_id.clone(),
            local_tag: dialog.local_tag.clone(),
        }
    }
}

/// A call task tells the `SipTask` it is done, so that the route and the dialog go.
#[derive(Debug)]
pub(crate) struct CallEnded {
    pub(crate) key: RouteKey,
    pub(crate) dialog: DialogId,
}

/// Whether we placed or received the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Inbound,
    Outbound,
}

/// The channels of a new call: the app's ends, the `SipTask`'s inbox sender, and the task side.
pub(crate) struct CallChannels {
    control: CallControl,
    events: mpsc::Receiver<CallEvent>,
    inbox: mpsc::Sender<Transaction>,
    task_side: TaskSide,
}

struct TaskSide {
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<CallEvent>,
    inbox: mpsc::Receiver<Transaction>,
}

impl CallChannels {
    pub(crate) fn new() -> Self {
        let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let (inbox_tx, inbox) = mpsc::channel(INBOX_QUEUE);
        Self {
            control: CallControl {
                commands: commands_tx,
            },
            events,
            inbox: inbox_tx,
            task_side: TaskSide {
                commands,
                events: events_tx,
                inbox,
            },
        }
    }

    /// Splits into the app's control and events, the `SipTask`'s inbox sender and the part
    /// [`CallTask::new`] takes.
    pub(crate) fn split(
        self,
    ) -> (
        CallControl,
        mpsc::Receiver<CallEvent>,
        mpsc::Sender<Transaction>,
        TaskSideHandle,
    ) {
        (
            self.control,
            self.events,
            self.inbox,
            TaskSideHandle(self.task_side),
        )
    }
}

/// The task side of [`CallChannels`], handed to [`CallTask::new`].
pub(crate) struct TaskSideHandle(TaskSide);

/// Owns one INVITE dialog for its whole life.
pub(crate) struct CallTask {
    dialog: InviteDialog,
    direction: Direction,
    key: RouteKey,
    states: DialogStateReceiver,
    commands: mpsc::Receiver<Command>,
    commands_open: bool,
    events: mpsc::Sender<CallEvent>,
    inbox: mpsc::Receiver<Transaction>,
    ended: mpsc::Sender<CallEnded>,
    /// Outbound: the INVITE transaction, until its final response.
    invite: Option<JoinHandle<InviteAsyncResult>>,
    /// The `Reason` of the peer's BYE, noted when the BYE is routed here.
    bye_reason: Option<String>,
    local_hangup: bool,
    /// Inbound: we sent 200.
    answered: bool,
    /// Inbound: the first ACK arrived; outbound: the 200 arrived.
    established: bool,
    cancel: CancellationToken,
}

impl CallTask {
    pub(crate) fn new(
        dialog: InviteDialog,
        direction: Direction,
        states: DialogStateReceiver,
        channels: TaskSideHandle,
        ended: mpsc::Sender<CallEnded>,
        invite: Option<JoinHandle<InviteAsyncResult>>,
        cancel: CancellationToken,
    ) -> Self {
        let TaskSide {
            commands,
            events,
            inbox,
        } = channels.0;
        Self {
            key: RouteKey::of(&dialog.id()),
            dialog,
            direction,
            states,
            commands,
            commands_open: true,
            events,
            inbox,
            ended,
            invite,
            bye_reason: None,
            local_hangup: false,
            answered: false,
            established: false,
            cancel,
        }
    }

    pub(crate) async fn run(mut self) {
        let terminal = loop {
            let step = tokio::select! {
                () = self.cancel.cancelled() => {
                    self.abandon(HangupReason::Unspecified);
                    Some(CallEvent::Terminated { why: Termination::Shutdown })
                }
                state = self.states.recv() => match state {
                    Some(state) => self.on_state(state).await,
                    // The dialog is gone without saying how (cannot happen while we hold it).
                    None => Some(CallEvent::Terminated { why: Termination::TransportError }),
                },
                result = join_invite(&mut self.invite), if self.invite.is_some() => {
                    self.invite = None;
                    self.on_invite_result(result).await
                }
                command = self.commands.recv(), if self.commands_open => match command {
                    Some(command) => { self.on_command(command); None }
                    None => {
                        // Nobody can control the call any more: end it.
                        self.commands_open = false;
                        self.abandon(HangupReason::Unspecified);
                        None
                    }
                },
                tx = self.inbox.recv() => {
                    if let Some(tx) = tx {
                        self.on_request(tx);
                    }
                    None
                }
            };
            if let Some(event) = step {
                break event;
            }
        };
        debug!(call_id = %self.key.call_id, ?terminal, "call ended");
        let _ = self.events.send(terminal).await;
        let _ = self
            .ended
            .send(CallEnded {
                key: self.key.clone(),
                dialog: self.dialog.id(),
            })
            .await;
    }

    /// A request routed to this dialog: the stack's dialog code answers it (and reports it on
    /// the state channel); it may wait for our answer, so it runs on its own.
    fn on_request(&mut self, mut tx: Transaction) {
        if tx.original.method == Method::Bye {
            self.bye_reason = tx.original.header_value("Reason");
        }
        let mut dialog = self.dialog.clone();
        tokio::spawn(async move {
            if let Err(e) = dialog.handle(&mut tx).await {
                debug!(error = %e, "in-dialog request failed");
            }
        });
    }

    async fn on_state(&mut self, state: DialogState) -> Option<CallEvent> {
        match state {
            DialogState::Calling(_) | DialogState::Trying(_) | DialogState::WaitAck(..) => None,
            DialogState::Early(_, response) => {
                if self.direction == Direction::Outbound {
                    self.emit(CallEvent::Provisional {
                        status: response.status_code.code(),
                        reason: reason_phrase(&response),
                        sdp: body(&response.body),
                    })
                    .await;
                }
                None
            }
            DialogState::Confirmed(_, response) => {
                // Re-emitted after every re-INVITE, INFO, UPDATE...: only the first counts. An
                // inbound dialog counts only once we answered: the ACK of our rejection can race
                // the stack's own state change and look like one.
                let ours = self.direction == Direction::Outbound || self.answered;
                if ours && !self.established {
                    self.established = true;
                    let event = match self.direction {
                        Direction::Inbound => CallEvent::Confirmed,
                        Direction::Outbound => CallEvent::Answered {
                            sdp: body(&response.body),
                        },
                    };
                    self.emit(event).await;
                }
                None
            }
            DialogState::Updated(_, request, handle) => {
                let method = if request.method == Method::Update {
                    ModifyMethod::Update
                } else {
                    ModifyMethod::ReInvite
                };
                self.emit(CallEvent::ReInvite {
                    method,
                    offer: body(&request.body),
                    responder: OfferResponder { handle },
                })
                .await;
                None
            }
            DialogState::Info(_, request, handle) => {
                respond(handle, StatusCode::OK);
                self.emit(CallEvent::Info {
                    content_type: request.header_value("Content-Type"),
                    body: request.body,
                })
                .await;
                None
            }
            DialogState::Options(_, _, handle) => {
                respond(handle, StatusCode::OK);
                None
            }
            DialogState::Publish(_, _, handle)
            | DialogState::Notify(_, _, handle)
            | DialogState::Refer(_, _, handle)
            | DialogState::Message(_, _, handle) => {
                respond(handle, StatusCode::NotImplemented);
                None
            }
            DialogState::Terminated(_, reason) => {
                if self.invite.is_some() {
                    // Outbound before the final response: the INVITE's result says how it ended.
                    return None;
                }
                Some(self.terminal_for(reason))
            }
        }
    }

    fn terminal_for(&self, reason: TerminatedReason) -> CallEvent {
        let inbound = self.direction == Direction::Inbound;
        let remote_bye = CallEvent::RemoteHangup {
            reason: self.bye_reason.clone(),
        };
        let local = CallEvent::Terminated {
            why: Termination::LocalHangup,
        };
        match reason {
            TerminatedReason::UacBye if inbound => remote_bye,
            TerminatedReason::UasBye if !inbound => remote_bye,
            TerminatedReason::UacBye | TerminatedReason::UasBye => local,
            TerminatedReason::UacCancel if inbound => CallEvent::Cancelled,
            TerminatedReason::UacCancel => local,
            TerminatedReason::Timeout if inbound => CallEvent::Terminated {
                why: Termination::AckTimeout,
            },
            TerminatedReason::Timeout => CallEvent::Terminated {
                why: Termination::NoResponse,
            },
            TerminatedReason::UasDecline => CallEvent::Terminated {
                why: Termination::Rejected,
            },
            TerminatedReason::UacBusy | TerminatedReason::UasBusy => CallEvent::Failed {
                status: 486,
                reason: "Busy Here".to_owned(),
            },
            TerminatedReason::ProxyAuthRequired => CallEvent::Failed {
                status: 407,
                reason: "Proxy Authentication Required".to_owned(),
            },
            TerminatedReason::ProxyError(status)
            | TerminatedReason::UacOther(status)
            | TerminatedReason::UasOther(status) => {
                if self.local_hangup {
                    local
                } else {
                    CallEvent::Failed {
                        status: status.code(),
                        reason: status.text().to_owned(),
                    }
                }
            }
        }
    }

    async fn on_invite_result(
        &mut self,
        result: Result<InviteAsyncResult, tokio::task::JoinError>,
    ) -> Option<CallEvent> {
        let response = match result {
            Ok(Ok((_, Some(response)))) => response,
            Ok(Ok((_, None))) => {
                return Some(CallEvent::Terminated {
                    why: Termination::NoResponse,
                });
            }
            Ok(Err(e)) => {
                warn!(error = %e, "outbound INVITE failed");
                return Some(CallEvent::Terminated {
                    why: if self.local_hangup {
                        Termination::LocalHangup
                    } else {
                        Termination::TransportError
                    },
                });
            }
            Err(e) => {
                warn!(error = %e, "outbound INVITE task failed");
                return Some(CallEvent::Terminated {
                    why: Termination::TransportError,
                });
            }
        };
        if response.status_code.kind() == StatusCodeKind::Successful {
            if self.local_hangup || self.dialog.state().is_terminated() {
                // Cancelled, but the 200 crossed the CANCEL: the stack ends it with BYE.
                return Some(CallEvent::Terminated {
                    why: Termination::LocalHangup,
                });
            }
            if !self.established {
                self.established = true;
                self.emit(CallEvent::Answered {
                    sdp: body(&response.body),
                })
                .await;
            }
            return None;
        }
        if self.local_hangup {
            return Some(CallEvent::Terminated {
                why: Termination::LocalHangup,
            });
        }
        Some(CallEvent::Failed {
            status: response.status_code.code(),
            reason: reason_phrase(&response),
        })
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Ring { reply } => {
                let result = if self.is_ringing_inbound() {
                    self.dialog
                        .ringing(None, None)
                        .map_err(|_| CallError::Ended)
                } else {
                    Err(CallError::NotRinging)
                };
                let _ = reply.send(result);
            }
            Command::Answer { sdp, reply } => {
                let result = if self.is_ringing_inbound() && !self.local_hangup {
                    let headers = vec![Header::ContentType("application/sdp".into())];
                    self.answered = true;
                    self.dialog
                        .accept(Some(headers), Some(sdp))
                        .map_err(|_| CallError::Ended)
                } else {
                    Err(CallError::NotRinging)
                };
                let _ = reply.send(result);
            }
            Command::Reject {
                status,
                reason,
                reply,
            } => {
                let result = if !(300..=699).contains(&status) {
                    Err(CallError::InvalidStatus(status))
                } else if self.is_ringing_inbound() {
                    self.local_hangup = true;
                    self.dialog
                        .reject(Some(StatusCode::from(status)), reason.header_value())
                        .map_err(|_| CallError::Ended)
                } else {
                    Err(CallError::NotRinging)
                };
                let _ = reply.send(result);
            }
            Command::Hangup { reason, reply } => {
                self.abandon(reason);
                let _ = reply.send(Ok(()));
            }
            Command::SendInfo {
                content_type,
                body,
                reply,
            } => {
                if !self.dialog.state().is_confirmed() {
                    let _ = reply.send(Err(CallError::NotEstablished));
                    return;
                }
                let dialog = self.dialog.clone();
                tokio::spawn(async move {
                    let headers = vec![Header::ContentType(content_type.into())];
                    let result = match dialog.info(Some(headers), Some(body)).await {
                        Ok(Some(response))
                            if response.status_code.kind() == StatusCodeKind::Successful =>
                        {
                            Ok(response.status_code.code())
                        }
                        Ok(Some(response)) => Err(CallError::Refused {
                            status: response.status_code.code(),
                        }),
                        Ok(None) => Err(CallError::NotEstablished),
                        Err(_) => Err(CallError::Undelivered),
                    };
                    let _ = reply.send(result);
                });
            }
        }
    }

    /// Ends the call from our side, whatever its state: 486 for a ringing inbound call, CANCEL
    /// for an unanswered outbound one, BYE once answered. The terminal event follows from the
    /// dialog's state.
    fn abandon(&mut self, reason: HangupReason) {
        if self.local_hangup || self.dialog.state().is_terminated() {
            return;
        }
        self.local_hangup = true;
        if self.is_ringing_inbound() {
            let _ = self
                .dialog
                .reject(Some(StatusCode::BusyHere), reason.header_value());
            return;
        }
        let dialog = self.dialog.clone();
        let early = dialog.state().can_cancel();
        tokio::spawn(async move {
            let result = if early {
                dialog.cancel().await
            } else {
                let headers = reason
                    .header_value()
                    .map(|value| vec![Header::Reason(value.into())]);
                dialog.bye_with_headers(headers).await
            };
            if let Err(e) = result {
                debug!(error = %e, "hangup request failed");
            }
        });
    }

    fn is_ringing_inbound(&self) -> bool {
        self.direction == Direction::Inbound && self.dialog.state().can_cancel()
    }

    async fn emit(&mut self, event: CallEvent) {
        if self.events.send(event).await.is_err() {
            debug!(call_id = %self.key.call_id, "nobody listens to this call's events");
        }
    }
}

async fn join_invite(
    invite: &mut Option<JoinHandle<InviteAsyncResult>>,
) -> Result<InviteAsyncResult, tokio::task::JoinError> {
    match invite {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// Answers an in-dialog request the stack handed us, without waiting in the call task.
fn respond(handle: TransactionHandle, status: StatusCode) {
    tokio::spawn(async move {
        let _ = handle.reply(status).await;
    });
}

fn body(bytes: &[u8]) -> Option<Vec<u8>> {
    (!bytes.is_empty()).then(|| bytes.to_vec())
}

fn reason_phrase(response: &Response) -> String {
    response
        .wire_reason
        .clone()
        .unwrap_or_else(|| response.status_code.text().to_owned())
}

/// Reads the fields of an inbound INVITE the app gets in [`IncomingCall`].
pub(crate) struct InviteSummary {
    pub(crate) call_id: SipCallId,
    pub(crate) from: NameAddr,
    pub(crate) to: NameAddr,
    pub(crate) request_uri: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) offer: Option<Vec<u8>>,
}

impl InviteSummary {
    pub(crate) fn of(request: &Request) -> Self {
        let header = |name: &str| request.header_value(name).unwrap_or_default();
        Self {
            call_id: SipCallId::new(header("Call-ID")),
            from: parse_name_addr(&header("From")),
            to: parse_name_addr(&header("To")),
            request_uri: request.uri.to_string(),
            headers: request
                .headers
                .iter()
                .map(|h| (h.name().to_owned(), h.value().trim().to_owned()))
                .collect(),
            offer: body(&request.body),
        }
    }
}

/// Splits a From/To value (`"Alice" <sip:a@b>;tag=x`, `Bob <sip:b@c>`, `sip:c@d;tag=y`) into
/// display name and URI. Anything unparsable ends up as the URI text.
pub(crate) fn parse_name_addr(value: &str) -> NameAddr {
    let value = value.trim();
    if let (Some(open), Some(close)) = (value.find('<'), value.rfind('>'))
        && open < close
    {
        let name = value[..open].trim();
        let name = name
            .strip_prefix('"')
            .and_then(|n| n.strip_suffix('"'))
            .unwrap_or(name)
            .replace("\\\"", "\"");
        return NameAddr {
            uri: value[open + 1..close].trim().to_owned(),
            display_name: (!name.is_empty()).then_some(name),
        };
    }
    // addr-spec form: parameters after ';' belong to the header, not the URI.
    let uri = value.split(';').next().unwrap_or(value).trim();
    NameAddr {
        uri: uri.to_owned(),
        display_name: None,
    }
}

/// Commands queued per call (the app rarely has more than one in flight).
const COMMAND_QUEUE: usize = 16;
/// Events queued per call before the call task waits for the app.
const EVENT_QUEUE: usize = 32;
/// In-dialog requests queued per call before the `SipTask` refuses more (503).
const INBOX_QUEUE: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_header_values() {
        let sip = HangupReason::Sip {
            cause: 408,
            text: Some("No invite from conference focus".into()),
        };
        assert_eq!(
            sip.header_value().as_deref(),
            Some("SIP;cause=408;text=\"No invite from conference focus\"")
        );
        let q850 = HangupReason::Q850 {
            cause: 16,
            text: None,
        };
        assert_eq!(q850.header_value().as_deref(), Some("Q.850;cause=16"));
        assert_eq!(HangupReason::Unspecified.header_value(), None);
    }

    #[test]
    fn reason_text_is_escaped() {
        let reason = HangupReason::Sip {
            cause: 500,
            text: Some("a \"b\" \\ c\r\nInjected: x".into()),
        };
        assert_eq!(
            reason.header_value().as_deref(),
            Some("SIP;cause=500;text=\"a \\\"b\\\" \\\\ cInjected: x\"")
        );
    }

    #[test]
    fn name_addr_forms() {
        assert_eq!(
            parse_name_addr("\"Alice A\" <sip:alice@example.com>;tag=1"),
            NameAddr {
                uri: "sip:alice@example.com".into(),
                display_name: Some("Alice A".into())
            }
        );
        assert_eq!(
            parse_name_addr("Bob <sip:bob@example.com;transport=tcp>"),
            NameAddr {
                uri: "sip:bob@example.com;transport=tcp".into(),
                display_name: Some("Bob".into())
            }
        );
        assert_eq!(
            parse_name_addr("sip:carol@example.com;tag=9"),
            NameAddr {
                uri: "sip:carol@example.com".into(),
                display_name: None
            }
        );
        // Garbage does not panic and keeps the text.
        assert_eq!(parse_name_addr(">< \"").uri, ">< \"");
        assert_eq!(parse_name_addr("").uri, "");
    }

    #[test]
    fn terminal_events() {
        assert!(CallEvent::Cancelled.is_terminal());
        assert!(CallEvent::RemoteHangup { reason: None }.is_terminal());
        assert!(
            CallEvent::Failed {
                status: 486,
                reason: String::new()
            }
            .is_terminal()
        );
        assert!(!CallEvent::Confirmed.is_terminal());
        assert!(
            !CallEvent::Info {
                content_type: None,
                body: vec![]
            }
            .is_terminal()
        );
    }

    #[test]
    fn header_lookup_ignores_case() {
        let channels = CallChannels::new();
        let (control, events, _inbox, _task) = channels.split();
        let call = IncomingCall {
            call_id: SipCallId::new("abc"),
            from: parse_name_addr("sip:a@b"),
            to: parse_name_addr("sip:c@d"),
            request_uri: "sip:c@d".into(),
            headers: vec![("Jitsi-Conference-Room".into(), "room1".into())],
            offer: None,
            remote_addr: None,
            transport: Transport::Udp,
            control,
            events,
        };
        assert_eq!(call.header("jitsi-conference-room"), Some("room1"));
        assert_eq!(call.header("X-Room-Name"), None);
    }
}
