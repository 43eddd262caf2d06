//! The SIP endpoint: listeners, out-of-dialog answers and the registration task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jigasi_sip_core::{RegistrationConfig, RegistrationState};
use jigasi_types::Secret;
use rsipstack::EndpointBuilder;
use rsipstack::sip::{Method, StatusCode};
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::{
    SipConnection, TransportLayer, tcp_listener::TcpListenerConnection, udp::UdpConnection,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::SipError;
use crate::registration::{RegistrationTask, Unregister};

/// SIP transport toward the registrar or a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// RFC 3261 UDP.
    Udp,
    /// RFC 3261 TCP.
    Tcp,
    /// TLS over TCP (RFC 3261 §26.2).
    Tls,
}

/// Where to REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registrar {
    /// Host name or address of the registrar (`SERVER_ADDRESS`).
    pub host: String,
    /// Its port (`SERVER_PORT`, 5060 when unset).
    pub port: u16,
    /// Transport to reach it.
    pub transport: Transport,
}

/// The one SIP account of the gateway (Jigasi uses exactly one).
#[derive(Debug, Clone)]
pub struct AccountOptions {
    /// User part of the address of record (`USER_ID` before the `@`).
    pub user: String,
    /// Domain of the address of record (`USER_ID` after the `@`).
    pub domain: String,
    /// Digest password, if the registrar challenges.
    pub password: Option<Secret<String>>,
    /// Digest user name when it differs from `user` (`AUTHORIZATION_NAME`).
    pub auth_username: Option<String>,
    /// Where to register; `None` is registrar-less mode.
    pub registrar: Option<Registrar>,
    /// Expiry, backoff and retry settings.
    pub registration: RegistrationConfig,
}

/// Everything the SIP endpoint needs to start.
#[derive(Debug, Clone)]
pub struct SipOptions {
    /// Address of the UDP and TCP listeners (Jigasi: `SIP_PREFERRED_CLEAR_PORT` on all
    /// interfaces). Port 0 picks a free port (tests).
    pub bind: SocketAddr,
    /// Address to put in Via and Contact instead of the bound one, for deployments behind NAT.
    pub public_address: Option<SocketAddr>,
    /// `User-Agent` header value.
    pub user_agent: String,
    /// The account; `None` when SIP is enabled without an account (answers only).
    pub account: Option<AccountOptions>,
}

/// A running SIP endpoint. Dropping it stops everything without un-registering; call
/// [`SipEndpoint::shutdown`] for a clean stop.
pub struct SipEndpoint {
    local_addr: SocketAddr,
    cancel: CancellationToken,
    registration: watch::Receiver<RegistrationState>,
    unregister: Option<Unregister>,
    tasks: Vec<JoinHandle<()>>,
}

impl SipEndpoint {
    /// Binds the listeners, starts the stack and, with an account that has a registrar, the
    /// registration task. Returns once the sockets are bound.
    pub async fn start(options: SipOptions) -> Result<Self, SipError> {
        let cancel = CancellationToken::new();
        let (udp, local_addr) =
            bind_udp_and_tcp(options.bind, options.public_address, &cancel).await?;

        let transport_layer = TransportLayer::new(cancel.child_token());
        transport_layer.add_transport(udp.into());
        let tcp = TcpListenerConnection::new(local_addr, options.public_address)
            .await
            .map_err(|e| SipError::Stack(e.to_string()))?;
        transport_layer.add_transport(SipConnection::from(tcp));

        let endpoint = EndpointBuilder::new()
            .with_user_agent(&options.user_agent)
            .with_cancel_token(cancel.child_token())
            .with_transport_layer(transport_layer)
            .build();
        let incoming = endpoint
            .incoming_transactions()
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let inner: Arc<EndpointInner> = endpoint.inner.clone();

        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(async move { endpoint.serve().await }));
        tasks.push(tokio::spawn(answer_out_of_dialog(incoming, cancel.clone())));

        let (state_tx, registration) = watch::channel(RegistrationState::NotRequired);
        let mut unregister = None;
        if let Some(account) = options.account {
            let (task, handle) =
                RegistrationTask::new(inner, account, state_tx, cancel.child_token())?;
            unregister = Some(handle);
            tasks.push(tokio::spawn(task.run()));
        }
        info!(%local_addr, "SIP endpoint listening on UDP and TCP");
        Ok(Self {
            local_addr,
            cancel,
            registration,
            unregister,
            tasks,
        })
    }

    /// The address the UDP and TCP listeners are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Watches the registration state (health checks and metrics read this).
    pub fn registration(&self) -> watch::Receiver<RegistrationState> {
        self.registration.clone()
    }

    /// Un-REGISTERs (waiting at most `deadline` for the registrar) and stops the stack.
    pub async fn shutdown(mut self, deadline: Duration) {
        if let Some(unregister) = self.unregister.take() {
            unregister.run(deadline).await;
        }
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }
}

impl Drop for SipEndpoint {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Binds UDP on `bind`, and checks that TCP can be bound on the same port (rsipstack binds TCP
/// itself later and only logs a failure). With port 0 a few ports are tried until both are free.
async fn bind_udp_and_tcp(
    bind: SocketAddr,
    public: Option<SocketAddr>,
    cancel: &CancellationToken,
) -> Result<(UdpConnection, SocketAddr), SipError> {
    let attempts = if bind.port() == 0 { 8 } else { 1 };
    let mut last_error = None;
    for _ in 0..attempts {
        let udp = UdpConnection::create_connection(bind, public, Some(cancel.child_token()))
            .await
            .map_err(|e| SipError::Bind {
                addr: bind,
                source: std::io::Error::other(e.to_string()),
            })?;
        let local = udp
            .get_addr()
            .get_socketaddr()
            .map_err(|e| SipError::Stack(e.to_string()))?;
        // `get_addr` reports the wildcard resolved to a concrete address; keep the bound IP.
        let local = SocketAddr::new(bind.ip(), local.port());
        match std::net::TcpListener::bind(local) {
            Ok(probe) => {
                drop(probe);
                return Ok((udp, local));
            }
            Err(source) => {
                last_error = Some(SipError::Bind {
                    addr: local,
                    source,
                })
            }
        }
    }
    Err(last_error.unwrap_or(SipError::Stack("no port could be bound".into())))
}

/// Answers requests that no dialog owns. OPTIONS (keep-alives and health probes) get 200; INVITE
/// gets 480 until call handling exists; anything else 501 (RFC 3261 §8.2.1). ACK has no answer.
async fn answer_out_of_dialog(
    mut incoming: rsipstack::transaction::TransactionReceiver,
    cancel: CancellationToken,
) {
    loop {
        let mut tx: Transaction = tokio::select! {
            () = cancel.cancelled() => return,
            tx = incoming.recv() => match tx {
                Some(tx) => tx,
                None => return,
            },
        };
        let method = tx.original.method;
        let status = match method {
            Method::Ack => continue,
            Method::Options => StatusCode::OK,
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
        tokio::spawn(async move {
            if let Err(e) = tx.reply(status).await {
                warn!(error = %e, "could not answer SIP request");
            }
        });
    }
}
