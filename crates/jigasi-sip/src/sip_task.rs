//! The `SipTask`: the one task that takes the stack's new transactions, creates dialogs, and
//! routes in-dialog requests to the call that owns them (by Call-ID and our tag, in its own map,
//! as quinn's `ConnectionSet` does). It is also the only place that removes dialogs from the
//! stack's dialog layer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode, Uri};
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::Transport;
use crate::call::{
    CallChannels, CallEnded, CallTask, Direction, IncomingCall, InviteSummary, OutgoingCall,
    RouteKey, SipCallId,
};
use crate::error::DialError;

/// Messages from the [`crate::SipEndpoint`] to its `SipTask`.
pub(crate) enum SipTaskMsg {
    /// The app takes inbound calls from now on.
    TakeIncoming(mpsc::Sender<IncomingCall>),
    /// Place a call.
    Dial {
        request: Box<PreparedDial>,
        reply: oneshot::Sender<Result<OutgoingCall, DialError>>,
    },
    /// The gateway is draining (graceful shutdown): new calls are refused from now on.
    Drain,
}

/// A dial request checked and resolved by the caller's task.
pub(crate) struct PreparedDial {
    pub(crate) callee: Uri,
    pub(crate) caller: Uri,
    pub(crate) display_name: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) offer: Vec<u8>,
    pub(crate) transport: Transport,
    pub(crate) destination: Option<SocketAddr>,
}

/// What the `SipTask` needs to know about us.
pub(crate) struct LocalIdentity {
    /// User part of our Contact.
    pub(crate) user: String,
    /// Addresses for our Contact per transport (public address if configured).
    pub(crate) advertised: crate::endpoint::Advertised,
    /// Digest credentials for outbound calls.
    pub(crate) credential: Option<Credential>,
}

pub(crate) struct SipTask {
    dialogs: Arc<DialogLayer>,
    transactions: TransactionReceiver,
    messages: mpsc::Receiver<SipTaskMsg>,
    ended_tx: mpsc::Sender<CallEnded>,
    ended: mpsc::Receiver<CallEnded>,
    routes: HashMap<RouteKey, mpsc::Sender<Transaction>>,
    app: Option<mpsc::Sender<IncomingCall>>,
    identity: LocalIdentity,
    active: watch::Sender<usize>,
    cancel: CancellationToken,
    /// Graceful shutdown: new calls are refused (OPTIONS says so too).
    draining: bool,
}

impl SipTask {
    pub(crate) fn new(
        dialogs: Arc<DialogLayer>,
        transactions: TransactionReceiver,
        messages: mpsc::Receiver<SipTaskMsg>,
        identity: LocalIdentity,
        active: watch::Sender<usize>,
        cancel: CancellationToken,
    ) -> Self {
        let (ended_tx, ended) = mpsc::channel(ENDED_QUEUE);
        Self {
            dialogs,
            transactions,
            messages,
            ended_tx,
            ended,
            routes: HashMap::new(),
            app: None,
            identity,
            active,
            cancel,
            draining: false,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return,
                ended = self.ended.recv() => {
                    // We hold a sender ourselves, so the channel never closes.
                    if let Some(ended) = ended {
                        self.on_call_ended(ended);
                    }
                }
                message = self.messages.recv() => match message {
                    Some(message) => self.on_message(message),
                    None => return,
                },
                tx = self.transactions.recv() => match tx {
                    Some(tx) => self.on_transaction(tx),
                    None => return,
                },
            }
        }
    }

    fn on_call_ended(&mut self, ended: CallEnded) {
        self.routes.remove(&ended.key);
        self.dialogs.remove_dialog(&ended.dialog);
        self.active.send_replace(self.routes.len());
        debug!(
            calls = self.routes.len(),
            dialogs = self.dialogs.len(),
            "call removed"
        );
    }

    fn on_message(&mut self, message: SipTaskMsg) {
        match message {
            SipTaskMsg::TakeIncoming(app) => self.app = Some(app),
            SipTaskMsg::Dial { request, reply } => {
                let _ = reply.send(self.dial(*request));
            }
            SipTaskMsg::Drain => self.draining = true,
        }
    }

    fn on_transaction(&mut self, tx: Transaction) {
        let to_tag = tx
            .original
            .to_header()
            .ok()
            .and_then(|to| to.tag().ok().flatten())
            .map(|tag| tag.value().to_owned());
        match to_tag {
            Some(tag) => self.route_in_dialog(tx, tag),
            None if tx.original.method == Method::Invite => self.on_invite(tx),
            None => answer_out_of_dialog(tx, self.draining),
        }
    }

    fn route_in_dialog(&mut self, tx: Transaction, local_tag: String) {
        let call_id = tx
            .original
            .call_id_header()
            .map(|c| c.value().to_owned())
            .unwrap_or_default();
        let key = RouteKey { call_id, local_tag };
        let method = tx.original.method;
        let Some(inbox) = self.routes.get(&key) else {
            if method != Method::Ack {
                reply(tx, StatusCode::CallTransactionDoesNotExist, None);
            }
            return;
        };
        match inbox.try_send(tx) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(tx)) => {
                warn!(%method, "call busy with requests; answering 503");
                if method != Method::Ack {
                    reply(tx, StatusCode::ServiceUnavailable, None);
                }
            }
            Err(mpsc::error::TrySendError::Closed(tx)) => {
                if method != Method::Ack {
                    reply(tx, StatusCode::CallTransactionDoesNotExist, None);
                }
            }
        }
    }

    fn on_invite(&mut self, mut tx: Transaction) {
        let Some(app) = self.app.as_ref().filter(|app| !app.is_closed()) else {
            debug!("no one takes calls: 480");
            reply(tx, StatusCode::TemporarilyUnavailable, None);
            return;
        };
        let permit = match app.clone().try_reserve_owned() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!("the app's call queue is full: 503");
                reply(tx, StatusCode::ServiceUnavailable, None);
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                reply(tx, StatusCode::TemporarilyUnavailable, None);
                return;
            }
        };
        let transport = tx
            .connection
            .as_ref()
            .map_or(Transport::Udp, |c| Transport::from_stack(c.transport()));
        let remote_addr = tx
            .connection
            .as_ref()
            .and_then(|c| c.get_remote_addr())
            .and_then(|a| a.get_socketaddr().ok());
        let contact = self.contact(transport);
        let (state_tx, states) = self.dialogs.new_dialog_state_channel();
        let dialog = match self
            .dialogs
            .get_or_create_server_invite(&tx, state_tx, None, contact)
        {
            Ok(dialog) => dialog,
            Err(e) => {
                warn!(error = %e, "cannot create a dialog for the INVITE: 400");
                reply(tx, StatusCode::BadRequest, None);
                return;
            }
        };
        let summary = InviteSummary::of(&tx.original);
        info!(call_id = %summary.call_id, ?transport, "inbound call");
        let (control, events, inbox, task_side) = CallChannels::new().split();
        let key = RouteKey::of(&dialog.id());
        self.routes.insert(key, inbox);
        self.active.send_replace(self.routes.len());

        // Jigasi rings at once. The 180 is queued on the transaction before the app can answer
        // (so it always precedes a 200 or a rejection); the handler sends 100 Trying directly,
        // then runs the stack's INVITE transaction handling (the queued 180, CANCEL, ACK, the
        // no-ACK timeout).
        if let Err(e) = dialog.ringing(None, None) {
            debug!(error = %e, "could not queue 180 Ringing");
        }
        let mut handler = dialog.clone();
        tokio::spawn(async move {
            if let Err(e) = tx.send_trying().await {
                debug!(error = %e, "could not send 100 Trying");
            }
            if let Err(e) = handler.handle(&mut tx).await {
                debug!(error = %e, "INVITE transaction ended with an error");
            }
        });
        let task = CallTask::new(
            dialog,
            Direction::Inbound,
            states,
            task_side,
            self.ended_tx.clone(),
            None,
            self.cancel.child_token(),
        );
        tokio::spawn(task.run());
        permit.send(IncomingCall {
            call_id: summary.call_id,
            from: summary.from,
            to: summary.to,
            request_uri: summary.request_uri,
            headers: summary.headers,
            offer: summary.offer,
            remote_addr,
            transport,
            control,
            events,
        });
    }

    fn dial(&mut self, request: PreparedDial) -> Result<OutgoingCall, DialError> {
        let headers = request
            .headers
            .into_iter()
            .map(|(name, value)| Header::Other(name, value))
            .collect::<Vec<_>>();
        let contact = self
            .contact(request.transport)
            .ok_or(DialError::Stack("no local address for the Contact"))?;
        let destination = request.destination.map(|addr| SipAddr {
            r#type: Some(request.transport.to_stack()),
            addr: addr.into(),
        });
        let option = InviteOption {
            caller_display_name: request.display_name,
            caller: request.caller,
            callee: request.callee,
            destination,
            content_type: Some("application/sdp".to_owned()),
            offer: Some(request.offer),
            contact,
            credential: self.identity.credential.clone(),
            headers: (!headers.is_empty()).then_some(headers),
            ..InviteOption::default()
        };
        let (state_tx, states) = self.dialogs.new_dialog_state_channel();
        let (dialog, invite) = self
            .dialogs
            .do_invite_async(option, state_tx)
            .map_err(|e| {
                warn!(error = %e, "cannot build the INVITE");
                DialError::Stack("the stack refused the INVITE")
            })?;
        let id = dialog.id();
        let call_id = SipCallId::new(id.call_id.clone());
        info!(%call_id, "outbound call");
        let (control, events, inbox, task_side) = CallChannels::new().split();
        self.routes.insert(RouteKey::of(&id), inbox);
        self.active.send_replace(self.routes.len());
        let task = CallTask::new(
            dialog,
            Direction::Outbound,
            states,
            task_side,
            self.ended_tx.clone(),
            Some(invite),
            self.cancel.child_token(),
        );
        tokio::spawn(task.run());
        Ok(OutgoingCall {
            call_id,
            control,
            events,
        })
    }

    /// Our Contact for a dialog on `transport` (rsipstack would put the UDP one everywhere).
    fn contact(&self, transport: Transport) -> Option<Uri> {
        let addr = self.identity.advertised.for_transport(transport);
        let text = contact_uri(&self.identity.user, addr, transport);
        Uri::try_from(text.as_str()).ok()
    }
}

/// `sip:user@host:port` with the transport parameter a peer needs to reach us back.
pub(crate) fn contact_uri(user: &str, addr: SocketAddr, transport: Transport) -> String {
    let host = match addr {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    };
    match transport {
        Transport::Udp => format!("sip:{user}@{host}"),
        Transport::Tcp => format!("sip:{user}@{host};transport=tcp"),
        Transport::Tls => format!("sips:{user}@{host};transport=tls"),
    }
}

/// Answers requests that no dialog owns. OPTIONS (keep-alives and health probes) gets 200, or
/// 503 while draining, since RFC 3261 §11.2 wants the status an INVITE would get (so a
/// dispatcher's probes take a draining gateway out of rotation); BYE and CANCEL 481; anything
/// else 501 (RFC 3261 §8.2.1). ACK has no answer.
fn answer_out_of_dialog(tx: Transaction, draining: bool) {
    let method = tx.original.method;
    let status = match method {
        Method::Ack => return,
        Method::Options if draining => StatusCode::ServiceUnavailable,
        Method::Options => StatusCode::OK,
        // An initial INVITE is handled by the caller; this is only reached for none.
        Method::Invite => StatusCode::TemporarilyUnavailable,
        Method::Bye | Method::Cancel => StatusCode::CallTransactionDoesNotExist,
        Method::Info
        | Method::Message
        | Method::Notify
        | Method::PRack
        | Method::Publish
        | Method::Refer
        | Method::Register
        | Method::Subscribe
        | Method::Update => StatusCode::NotImplemented,
    };
    debug!(%method, status = status.code(), "answering out-of-dialog request");
    reply(tx, status, None);
}

/// Sends a final answer without blocking the `SipTask`.
fn reply(mut tx: Transaction, status: StatusCode, headers: Option<Vec<Header>>) {
    tokio::spawn(async move {
        if let Err(e) = tx
            .reply_with(status, headers.unwrap_or_default(), None)
            .await
        {
            warn!(error = %e, "could not answer SIP request");
        }
    });
}

/// Ended-call notices queued before call tasks wait for the `SipTask`.
const ENDED_QUEUE: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_names_the_transport() {
        let addr: SocketAddr = "192.0.2.1:5060".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(
            contact_uri("jigasi", addr, Transport::Udp),
            "sip:jigasi@192.0.2.1:5060"
        );
        assert_eq!(
            contact_uri("jigasi", addr, Transport::Tcp),
            "sip:jigasi@192.0.2.1:5060;transport=tcp"
        );
        let v6: SocketAddr = "[2001:db8::1]:5070"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(
            contact_uri("j", v6, Transport::Tcp),
            "sip:j@[2001:db8::1]:5070;transport=tcp"
        );
        // The stack accepts what we build.
        assert!(Uri::try_from(contact_uri("jigasi", v6, Transport::Tcp).as_str()).is_ok());
    }
}
