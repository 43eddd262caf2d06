//! Runs the REGISTER transactions the pure [`RegistrationPolicy`] asks for.

use std::sync::Arc;
use std::time::Duration;

use jigasi_sip_core::{AttemptOutcome, RegistrationPolicy, RegistrationState};
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::registration::Registration;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Response, Uri};
use rsipstack::transaction::endpoint::EndpointInner;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{AccountOptions, SipError, Transport};

/// Longest we wait for one REGISTER transaction (a little over RFC 3261's 64*T1 = 32 s).
const TRANSACTION_LIMIT: Duration = Duration::from_secs(40);

/// The task that keeps the account registered. It alone owns the rsipstack [`Registration`] and
/// the policy; shutdown reaches it as a message ([`Unregister`]).
pub(crate) struct RegistrationTask {
    registration: Registration,
    policy: RegistrationPolicy,
    server: Uri,
    registrar: Option<(String, u16)>,
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
        account: AccountOptions,
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
        let credential = account.password.as_ref().map(|password| Credential {
            username: account.user.clone(),
            password: password.expose().clone(),
            realm: None,
            auth_username: account.auth_username.clone(),
        });
        let (shutdown_tx, shutdown_rx) = mpsc::channel(1);
        Ok((
            Self {
                registration: Registration::new(endpoint, credential),
                policy,
                server,
                registrar: account.registrar.map(|r| (r.host, r.port)),
                state_tx,
                shutdown_rx,
                cancel,
            },
            Unregister { shutdown_tx },
        ))
    }

    pub(crate) async fn run(mut self) {
        if let Some((host, port)) = &self.registrar {
            // The request URI and To carry the account's domain; the packets go to the registrar
            // (which may be another host, as with Jigasi's SERVER_ADDRESS).
            self.registration.outbound_proxy = tokio::net::lookup_host((host.as_str(), *port))
                .await
                .ok()
                .and_then(|mut addrs| addrs.next());
        }
        loop {
            let due = self.policy.poll_timeout();
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
            if !self.policy.handle_timeout(Instant::now().into_std()) {
                continue;
            }
            let expiry = self.policy.expiry();
            let outcome = tokio::select! {
                () = self.cancel.cancelled() => return,
                request = self.shutdown_rx.recv() => return self.unregister(request).await,
                outcome = attempt(&mut self.registration, &self.server, expiry) => outcome,
            };
            self.policy
                .handle_outcome(Instant::now().into_std(), outcome);
            let state = *self.policy.state();
            report(&state, &outcome);
            self.state_tx.send_replace(state);
        }
    }

    /// Stops refreshing and sends `Expires: 0` if the registrar holds a binding for us.
    async fn unregister(mut self, request: Option<(Duration, oneshot::Sender<()>)>) {
        let Some((deadline, done)) = request else {
            return;
        };
        let send = self.policy.begin_unregister(Instant::now().into_std());
        self.state_tx.send_replace(*self.policy.state());
        if send {
            let unregister = self.registration.register(self.server.clone(), Some(0));
            match tokio::time::timeout(deadline, unregister).await {
                Ok(Ok(response)) => info!(status = response.status_code.code(), "un-registered"),
                Ok(Err(e)) => warn!(error = %e, "un-REGISTER failed"),
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

/// Sends one REGISTER (answering one digest challenge) and classifies the result.
async fn attempt(
    registration: &mut Registration,
    server: &Uri,
    expiry: Duration,
) -> AttemptOutcome {
    let expires = u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX);
    let result = tokio::time::timeout(
        TRANSACTION_LIMIT,
        registration.register(server.clone(), Some(expires)),
    )
    .await;
    match result {
        Err(_) => AttemptOutcome::TimedOut,
        Ok(Ok(response)) => classify(&response, registration.granted_expires),
        Ok(Err(error)) => match error {
            rsipstack::Error::TransportLayerError(..)
            | rsipstack::Error::IoError(_)
            | rsipstack::Error::DnsResolutionError(_)
            | rsipstack::Error::AddrParseError(_) => AttemptOutcome::TransportFailed,
            // The transaction ended without a final response: timer F.
            rsipstack::Error::SipMessageError(_)
            | rsipstack::Error::TransactionError(..)
            | rsipstack::Error::EndpointError(_)
            | rsipstack::Error::DialogError(..)
            | rsipstack::Error::Error(_) => AttemptOutcome::TimedOut,
        },
    }
}

fn classify(response: &Response, granted: Option<u32>) -> AttemptOutcome {
    let status = response.status_code.code();
    if (200..300).contains(&status) {
        return AttemptOutcome::Accepted {
            granted: Duration::from_secs(granted.unwrap_or(0).into()),
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
