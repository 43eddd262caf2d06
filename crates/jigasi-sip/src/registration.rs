//! Runs the REGISTER transactions and keep-alives the pure [`RegistrationPolicy`] and
//! [`KeepAlivePolicy`] ask for.

use std::sync::Arc;
use std::time::Duration;

use jigasi_sip_core::{
    AttemptOutcome, KeepAliveAction, KeepAlivePolicy, ProbeOutcome, RegistrationPolicy,
    RegistrationState,
};
use rsipstack::dialog::authenticate::Credential;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, Response, Uri};
use rsipstack::transaction::endpoint::EndpointInner;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::endpoint::Advertised;
use crate::request::{OutOfDialog, Peer, RequestFailure, Requester, granted_expiry};
use crate::sip_task::contact_uri;
use crate::tls::TlsClient;
use crate::{AccountOptions, Registrar, SipError, Transport};

/// Longest we wait for one REGISTER transaction (a little over RFC 3261's 64*T1 = 32 s).
const TRANSACTION_LIMIT: Duration = Duration::from_secs(40);

/// The task that keeps the account registered. It alone owns the policies and the REGISTER
/// dialog's Call-ID and CSeq; shutdown reaches it as a message ([`Unregister`]).
pub(crate) struct RegistrationTask {
    requester: Requester,
    policy: RegistrationPolicy,
    keep_alive: KeepAlivePolicy,
    registrar: Option<Registrar>,
    /// The registrar's resolved address; resolved again after a transport failure.
    peer: Option<Peer>,
    server: Uri,
    aor: Uri,
    user: String,
    advertised: Advertised,
    call_id: String,
    cseq: u32,
    keep_alive_call_id: String,
    keep_alive_cseq: u32,
    state_tx: watch::Sender<RegistrationState>,
    shutdown_rx: mpsc::Receiver<(Duration, oneshot::Sender<()>)>,
    cancel: CancellationToken,
}

/// Asks the registration task to remove the binding and stop.
pub(crate) struct Unregister {
    shutdown_tx: mpsc::Sender<(Duration, oneshot::Sender<()>)>,
}

impl RegistrationTask {
    pub(crate) fn new(
        endpoint: Arc<EndpointInner>,
        tls: Arc<TlsClient>,
        account: AccountOptions,
        advertised: Advertised,
        state_tx: watch::Sender<RegistrationState>,
        cancel: CancellationToken,
    ) -> Result<(Self, Unregister), SipError> {
        let mut config = account.registration.clone();
        config.registrar = account.registrar.is_some();
        let policy = RegistrationPolicy::new(config, Instant::now().into_std());
        state_tx.send_replace(*policy.state());

        let transport = account
            .registrar
            .as_ref()
            .map_or(Transport::Udp, |r| r.transport);
        let server = registrar_uri(&account.domain, transport)?;
        let aor = Uri::try_from(format!("sip:{}@{}", account.user, account.domain).as_str())
            .map_err(|_| SipError::InvalidSetting {
                what: "account user",
                value: account.user.clone(),
            })?;
        let credential = account.password.as_ref().map(|password| Credential {
            username: account.user.clone(),
            password: password.expose().clone(),
            realm: None,
            auth_username: account.auth_username.clone(),
        });
        let suffix = advertised.clear.ip();
        let (shutdown_tx, shutdown_rx) = mpsc::channel(1);
        Ok((
            Self {
                requester: Requester::new(endpoint, Some(tls), credential),
                policy,
                keep_alive: KeepAlivePolicy::new(account.keep_alive),
                registrar: account.registrar,
                peer: None,
                server,
                aor,
                user: account.user,
                advertised,
                call_id: format!("reg-{}@{suffix}", random_token()),
                cseq: 0,
                keep_alive_call_id: format!("ka-{}@{suffix}", random_token()),
                keep_alive_cseq: 0,
                state_tx,
                shutdown_rx,
                cancel,
            },
            Unregister { shutdown_tx },
        ))
    }

    pub(crate) async fn run(mut self) {
        loop {
            let due = [self.policy.poll_timeout(), self.keep_alive.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let sleep = async {
                match due {
                    Some(due) => tokio::time::sleep_until(Instant::from_std(due)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.cancel.cancelled() => return,
                request = self.shutdown_rx.recv() => return self.unregister(request).await,
                () = sleep => {}
            }
            let now = Instant::now().into_std();
            if self.policy.handle_timeout(now) {
                let expiry = self.policy.expiry();
                let outcome = tokio::select! {
                    () = self.cancel.cancelled() => return,
                    request = self.shutdown_rx.recv() => return self.unregister(request).await,
                    outcome = attempt(&self.requester, &mut self.peer, RegisterRequest {
                        registrar: self.registrar.as_ref(),
                        server: &self.server,
                        aor: &self.aor,
                        user: &self.user,
                        advertised: self.advertised,
                        call_id: &self.call_id,
                        cseq: &mut self.cseq,
                    }, expiry) => outcome,
                };
                let now = Instant::now().into_std();
                self.policy.handle_outcome(now, outcome);
                self.keep_alive
                    .handle_registration(now, self.policy.state());
                report(self.policy.state(), &outcome);
                self.publish();
                continue;
            }
            let Some(action) = self.keep_alive.handle_timeout(now) else {
                continue;
            };
            let outcome = match action {
                KeepAliveAction::Register => {
                    self.policy.refresh_now(now);
                    continue;
                }
                KeepAliveAction::SendOptions => {
                    let limit = self.keep_alive.probe_timeout(TRANSACTION_LIMIT);
                    tokio::select! {
                        () = self.cancel.cancelled() => return,
                        request = self.shutdown_rx.recv() => return self.unregister(request).await,
                        outcome = options_probe(&self.requester, &mut self.peer, RegisterRequest {
                            registrar: self.registrar.as_ref(),
                            server: &self.server,
                            aor: &self.aor,
                            user: &self.user,
                            advertised: self.advertised,
                            call_id: &self.keep_alive_call_id,
                            cseq: &mut self.keep_alive_cseq,
                        }, limit) => outcome,
                    }
                }
                KeepAliveAction::SendCrlf => self.crlf_probe().await,
            };
            let now = Instant::now().into_std();
            if let Some(verdict) = self.keep_alive.handle_outcome(now, outcome) {
                debug!(?outcome, ?verdict, "keep-alive done");
                if verdict != jigasi_sip_core::ProbeVerdict::Alive {
                    warn!(
                        ?outcome,
                        ?verdict,
                        "SIP keep-alive failed; registering again"
                    );
                }
                self.policy.handle_keep_alive(now, verdict);
                self.publish();
            }
        }
    }

    fn publish(&self) {
        self.state_tx.send_replace(*self.policy.state());
    }

    /// A double CRLF toward the registrar.
    async fn crlf_probe(&mut self) -> ProbeOutcome {
        let Some(peer) = resolve(&mut self.peer, self.registrar.as_ref()).await else {
            return ProbeOutcome::TransportFailed;
        };
        match self.requester.send_crlf(&peer).await {
            Ok(()) => ProbeOutcome::Sent,
            Err(failure) => {
                debug!(?failure, "CRLF keep-alive could not be sent");
                self.peer = None;
                ProbeOutcome::TransportFailed
            }
        }
    }

    /// Stops refreshing and sends `Expires: 0` if the registrar holds a binding for us.
    async fn unregister(mut self, request: Option<(Duration, oneshot::Sender<()>)>) {
        let Some((deadline, done)) = request else {
            return;
        };
        let send = self.policy.begin_unregister(Instant::now().into_std());
        self.keep_alive
            .handle_registration(Instant::now().into_std(), self.policy.state());
        self.publish();
        if send {
            let unregister = send_register(
                &self.requester,
                &mut self.peer,
                RegisterRequest {
                    registrar: self.registrar.as_ref(),
                    server: &self.server,
                    aor: &self.aor,
                    user: &self.user,
                    advertised: self.advertised,
                    call_id: &self.call_id,
                    cseq: &mut self.cseq,
                },
                0,
            );
            match tokio::time::timeout(deadline, unregister).await {
                Ok(Ok((response, _))) => {
                    info!(status = response.status_code.code(), "un-registered");
                }
                Ok(Err(e)) => warn!(error = ?e, "un-REGISTER failed"),
                Err(_) => warn!(?deadline, "un-REGISTER got no answer in time"),
            }
        }
        let _ = done.send(());
    }
}

impl Unregister {
    /// Asks the task to un-REGISTER (waiting at most `deadline` for the registrar) and waits for
    /// it to finish.
    pub(crate) async fn run(self, deadline: Duration) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.shutdown_tx.send((deadline, done_tx)).await.is_ok() {
            let _ = done_rx.await;
        }
    }
}

/// The parts of the task one REGISTER needs.
struct RegisterRequest<'a> {
    registrar: Option<&'a Registrar>,
    server: &'a Uri,
    aor: &'a Uri,
    user: &'a str,
    advertised: Advertised,
    call_id: &'a str,
    cseq: &'a mut u32,
}

/// OPTIONS for our address of record through the registrar (`request.call_id` and `cseq` are
/// the keep-alive's own).
async fn options_probe(
    requester: &Requester,
    peer: &mut Option<Peer>,
    request: RegisterRequest<'_>,
    limit: Duration,
) -> ProbeOutcome {
    let Some(target) = resolve(peer, request.registrar).await else {
        return ProbeOutcome::TransportFailed;
    };
    *request.cseq += 1;
    let message = OutOfDialog {
        method: Method::Options,
        request_uri: request.aor.clone(),
        aor: request.aor.clone(),
        call_id: request.call_id.to_owned(),
        via_addr: request.advertised.for_transport(target.transport),
        headers: vec![],
    };
    let sent = tokio::time::timeout(limit, requester.send(message, request.cseq, &target)).await;
    match sent {
        Err(_) | Ok(Err(RequestFailure::TimedOut)) => ProbeOutcome::TimedOut,
        Ok(Err(RequestFailure::Transport(reason))) => {
            debug!(reason, "OPTIONS keep-alive could not be sent");
            *peer = None;
            ProbeOutcome::TransportFailed
        }
        Ok(Ok(response)) => ProbeOutcome::Answered {
            status: response.status_code.code(),
        },
    }
}

/// Resolves the registrar once (again after a transport failure cleared it).
async fn resolve(peer: &mut Option<Peer>, registrar: Option<&Registrar>) -> Option<Peer> {
    if let Some(peer) = peer {
        return Some(peer.clone());
    }
    let registrar = registrar?;
    let addr = tokio::net::lookup_host((registrar.host.as_str(), registrar.port))
        .await
        .ok()?
        .next()?;
    let resolved = Peer {
        addr,
        transport: registrar.transport,
        host: registrar.host.clone(),
    };
    *peer = Some(resolved.clone());
    Some(resolved)
}

/// One REGISTER with `expires` (answering one digest challenge).
async fn send_register(
    requester: &Requester,
    peer: &mut Option<Peer>,
    request: RegisterRequest<'_>,
    expires: u32,
) -> Result<(Response, String), RequestFailure> {
    let target = resolve(peer, request.registrar)
        .await
        .ok_or_else(|| RequestFailure::Transport("the registrar does not resolve".into()))?;
    let contact_addr = request.advertised.for_transport(target.transport);
    let contact = contact_uri(request.user, contact_addr, target.transport);
    *request.cseq += 1;
    let message = OutOfDialog {
        method: Method::Register,
        request_uri: request.server.clone(),
        aor: request.aor.clone(),
        call_id: request.call_id.to_owned(),
        via_addr: contact_addr,
        headers: vec![
            Header::Contact(format!("<{contact}>").into()),
            Header::Expires(expires.into()),
        ],
    };
    let result = requester.send(message, request.cseq, &target).await;
    if matches!(result, Err(RequestFailure::Transport(_))) {
        *peer = None;
    }
    let host_port = match contact_addr {
        std::net::SocketAddr::V4(v4) => v4.to_string(),
        std::net::SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    };
    result.map(|response| (response, host_port))
}

/// Sends one REGISTER and classifies the result.
async fn attempt(
    requester: &Requester,
    peer: &mut Option<Peer>,
    request: RegisterRequest<'_>,
    expiry: Duration,
) -> AttemptOutcome {
    let expires = u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX);
    let result = tokio::time::timeout(
        TRANSACTION_LIMIT,
        send_register(requester, peer, request, expires),
    )
    .await;
    match result {
        Err(_) | Ok(Err(RequestFailure::TimedOut)) => AttemptOutcome::TimedOut,
        Ok(Err(RequestFailure::Transport(reason))) => {
            debug!(reason, "REGISTER could not be sent");
            AttemptOutcome::TransportFailed
        }
        Ok(Ok((response, ours))) => classify(&response, &ours),
    }
}

fn classify(response: &Response, ours: &str) -> AttemptOutcome {
    let status = response.status_code.code();
    if (200..300).contains(&status) {
        return AttemptOutcome::Accepted {
            granted: Duration::from_secs(granted_expiry(response, ours).unwrap_or(0).into()),
        };
    }
    let min_expires = response
        .header_value("Min-Expires")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    AttemptOutcome::Refused {
        status,
        min_expires,
    }
}

fn report(state: &RegistrationState, outcome: &AttemptOutcome) {
    match state {
        RegistrationState::Registered { expires } => {
            info!(expires_s = expires.as_secs(), "SIP registration accepted");
        }
        RegistrationState::Rejected { status } => {
            warn!(
                status,
                "SIP registration rejected; check USER_ID, PASSWORD and AUTHORIZATION_NAME"
            );
        }
        RegistrationState::Retrying { failures, .. } => {
            warn!(failures, ?outcome, "SIP registration failed; retrying");
        }
        RegistrationState::NotRequired
        | RegistrationState::Registering
        | RegistrationState::Unregistered => {}
    }
}

fn registrar_uri(domain: &str, transport: Transport) -> Result<Uri, SipError> {
    let text = match transport {
        Transport::Udp => format!("sip:{domain}"),
        Transport::Tcp => format!("sip:{domain};transport=tcp"),
        Transport::Tls => format!("sips:{domain}"),
    };
    Uri::try_from(text.as_str()).map_err(|_| SipError::InvalidSetting {
        what: "account domain",
        value: domain.to_owned(),
    })
}

/// A token for Call-IDs, unique per process run (not a secret: Call-IDs are public).
fn random_token() -> String {
    rsipstack::transaction::make_tag().to_string()
}
