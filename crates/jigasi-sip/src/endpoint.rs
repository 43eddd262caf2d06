//! The SIP endpoint: listeners, the `SipTask` (calls) and the registration task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jigasi_sip_core::{KeepAliveConfig, RegistrationConfig, RegistrationState};
use jigasi_types::Secret;
use rsipstack::EndpointBuilder;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::Uri;
use rsipstack::transaction::endpoint::{EndpointInner, EndpointOption};
use rsipstack::transport::{
    SipConnection, TlsConfig, TlsListenerConnection, TransportLayer,
    tcp_listener::TcpListenerConnection, udp::UdpConnection,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::SipError;
use crate::call::{DialRequest, IncomingCall, OutgoingCall};
use crate::error::DialError;
use crate::registration::{RegistrationTask, Unregister};
use crate::sip_task::{LocalIdentity, PreparedDial, SipTask, SipTaskMsg};
use crate::tls::{
    TlsClient, TlsClientOptions, TlsListen, install_crypto_provider, load_listener_identity,
};
use crate::udp::ScreenedUdpSocket;

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
    /// Keep-alive toward the registrar (`KEEP_ALIVE_METHOD`, `KEEP_ALIVE_INTERVAL`); the
    /// default (OPTIONS without an interval) sends none.
    pub keep_alive: KeepAliveConfig,
}

/// Everything the SIP endpoint needs to start.
#[derive(Debug, Clone)]
pub struct SipOptions {
    /// Address of the UDP and TCP listeners (Jigasi: `SIP_PREFERRED_CLEAR_PORT` on all
    /// interfaces). Port 0 picks a free port (tests).
    pub bind: SocketAddr,
    /// Address to put in Via and Contact (REGISTER and dialogs) instead of the bound one, for
    /// deployments behind a static NAT. Its IP is also the one to put into SDP
    /// ([`SipEndpoint::advertised_addr`]). The TLS listener is advertised with this IP and the
    /// listener's port.
    pub public_address: Option<SocketAddr>,
    /// The TLS listener (Jigasi's `SIP_PREFERRED_SECURE_PORT`, 5061); `None` listens for UDP
    /// and TCP only.
    pub tls: Option<TlsListen>,
    /// How the certificates of TLS servers we connect to are checked (CA file or platform
    /// roots; `dangerous_accept_invalid_certs` for `ALWAYS_TRUST_MODE_ENABLED`).
    pub tls_client: TlsClientOptions,
    /// `User-Agent` header value.
    pub user_agent: String,
    /// The account; `None` when SIP is enabled without an account (answers only).
    pub account: Option<AccountOptions>,
}

/// Stack timer settings; the defaults are RFC 3261's. Tests shorten T1 to see timeouts
/// (64*T1: no ACK, no final response) quickly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackTimers {
    /// RFC 3261 T1, the round-trip estimate (default 500 ms); 64*T1 is the transaction timeout.
    pub t1: Duration,
}

impl Default for StackTimers {
    /// T1 = 500 ms (RFC 3261 §17.1.1.1).
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
        }
    }
}

/// A running SIP endpoint. Dropping it stops everything without un-registering; call
/// [`SipEndpoint::shutdown`] for a clean stop.
pub struct SipEndpoint {
    local_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    advertised: Advertised,
    cancel: CancellationToken,
    registration: watch::Receiver<RegistrationState>,
    unregister: Option<Unregister>,
    sip_task: mpsc::Sender<SipTaskMsg>,
    active_calls: watch::Receiver<usize>,
    incoming_taken: bool,
    account: Option<AccountOptions>,
    outbound_proxy: Option<Registrar>,
    endpoint: Arc<EndpointInner>,
    tls_client: Arc<TlsClient>,
    tasks: Vec<JoinHandle<()>>,
}

impl SipEndpoint {
    /// Binds the listeners, starts the stack and, with an account that has a registrar, the
    /// registration task. Returns once the sockets are bound.
    pub async fn start(options: SipOptions) -> Result<Self, SipError> {
        Self::start_with(options, StackTimers::default()).await
    }

    /// [`SipEndpoint::start`] with other stack timers.
    pub async fn start_with(options: SipOptions, timers: StackTimers) -> Result<Self, SipError> {
        let cancel = CancellationToken::new();
        let (udp, local_addr) =
            bind_udp_and_tcp(options.bind, options.public_address, &cancel).await?;

        install_crypto_provider();
        let tls_client = Arc::new(TlsClient::new(&options.tls_client, cancel.child_token())?);
        let transport_layer = TransportLayer::new(cancel.child_token());
        transport_layer.set_tls_config(tls_client.stack_config());
        transport_layer.add_transport(udp.into());
        let tcp = TcpListenerConnection::new(local_addr, options.public_address)
            .await
            .map_err(|e| SipError::Stack(e.to_string()))?;
        transport_layer.add_transport(SipConnection::from(tcp));
        let tls_addr = match &options.tls {
            Some(listen) => {
                let (cert, key) = load_listener_identity(listen)?;
                let bind = bind_tls(listen.bind)?;
                let external = options
                    .public_address
                    .map(|public| SocketAddr::new(public.ip(), bind.port()));
                let config = TlsConfig {
                    cert: Some(cert),
                    key: Some(key),
                    ..TlsConfig::default()
                };
                let listener = TlsListenerConnection::new(bind, external, config)
                    .await
                    .map_err(|e| SipError::Stack(e.to_string()))?;
                transport_layer.add_transport(SipConnection::TlsListener(listener));
                Some(bind)
            }
            None => None,
        };
        let contact_addr = options.public_address.unwrap_or(local_addr);
        let advertised = Advertised {
            clear: contact_addr,
            tls: tls_addr.map(|tls| SocketAddr::new(contact_addr.ip(), tls.port())),
        };
        let endpoint_option = EndpointOption {
            t1: timers.t1,
            t1x64: timers.t1 * 64,
            // rsipstack's default suffix is its author's domain.
            callid_suffix: Some(contact_addr.ip().to_string()),
            ..EndpointOption::default()
        };
        let endpoint = EndpointBuilder::new()
            .with_user_agent(&options.user_agent)
            .with_cancel_token(cancel.child_token())
            .with_transport_layer(transport_layer)
            .with_option(endpoint_option)
            .build();
        let incoming = endpoint
            .incoming_transactions()
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let inner: Arc<EndpointInner> = endpoint.inner.clone();

        let identity = LocalIdentity {
            user: options
                .account
                .as_ref()
                .map_or_else(|| "jigasi".to_owned(), |a| a.user.clone()),
            advertised,
            credential: options.account.as_ref().and_then(|account| {
                account.password.as_ref().map(|password| Credential {
                    username: account.user.clone(),
                    password: password.expose().clone(),
                    realm: None,
                    auth_username: account.auth_username.clone(),
                })
            }),
        };
        let (sip_task_tx, sip_task_rx) = mpsc::channel(SIP_TASK_QUEUE);
        let (active_tx, active_calls) = watch::channel(0);
        let sip_task = SipTask::new(
            Arc::new(DialogLayer::new(inner.clone())),
            incoming,
            sip_task_rx,
            identity,
            active_tx,
            cancel.child_token(),
        );

        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(async move { endpoint.serve().await }));
        tasks.push(tokio::spawn(sip_task.run()));

        let (state_tx, registration) = watch::channel(RegistrationState::NotRequired);
        let mut unregister = None;
        let outbound_proxy = options
            .account
            .as_ref()
            .and_then(|account| account.registrar.clone());
        if let Some(account) = options.account.clone() {
            let (task, handle) = RegistrationTask::new(
                inner.clone(),
                tls_client.clone(),
                account,
                advertised,
                state_tx,
                cancel.child_token(),
            )?;
            unregister = Some(handle);
            tasks.push(tokio::spawn(task.run()));
        }
        info!(%local_addr, ?tls_addr, "SIP endpoint listening");
        Ok(Self {
            local_addr,
            tls_addr,
            advertised,
            endpoint: inner,
            tls_client,
            cancel,
            registration,
            unregister,
            sip_task: sip_task_tx,
            active_calls,
            incoming_taken: false,
            account: options.account,
            outbound_proxy,
            tasks,
        })
    }

    /// Takes the stream of inbound calls (once; later calls return `None`). Until it is taken,
    /// and after it is dropped, INVITEs are answered 480 Temporarily Unavailable; while it is
    /// full, 503 Service Unavailable.
    pub fn incoming_calls(&mut self) -> Option<mpsc::Receiver<IncomingCall>> {
        if self.incoming_taken {
            return None;
        }
        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        self.sip_task.try_send(SipTaskMsg::TakeIncoming(tx)).ok()?;
        self.incoming_taken = true;
        Some(rx)
    }

    /// Enters draining (graceful shutdown): out-of-dialog OPTIONS are answered 503 from now on,
    /// as an INVITE would be (RFC 3261 §11.2), so load balancers that probe with OPTIONS (e.g.
    /// Kamailio's dispatcher) stop sending calls here. Running calls are not affected.
    pub async fn drain(&self) {
        // The task ends only at shutdown, and then there is nothing left to drain.
        let _ = self.sip_task.send(SipTaskMsg::Drain).await;
    }

    /// Places a call. The INVITE goes to the account's registrar when there is one (as Jigasi
    /// sends everything through its SIP server), otherwise to the Request-URI's host. A digest
    /// challenge (401/407) is answered once with the account's credentials.
    pub async fn dial(&self, request: DialRequest) -> Result<OutgoingCall, DialError> {
        self.dialer().dial(request).await
    }

    /// A cloneable handle that places calls (for call tasks that dial out).
    pub fn dialer(&self) -> Dialer {
        Dialer {
            sip_task: self.sip_task.clone(),
            account: self.account.clone(),
            outbound_proxy: self.outbound_proxy.clone(),
            local_addr: self.local_addr,
            endpoint: self.endpoint.clone(),
            tls_client: self.tls_client.clone(),
        }
    }

    /// The address the UDP and TCP listeners are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the TLS listener is bound to, if there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The UDP/TCP address we advertise in Via and Contact: the configured public address, else
    /// the bound one. Its IP is the one to put into SDP (`c=`/`o=`) for the phone leg.
    pub fn advertised_addr(&self) -> SocketAddr {
        self.advertised.clear
    }

    /// Watches the number of calls (dialogs) the endpoint holds; a call leaves it, and the
    /// stack's dialog layer, right after its terminal event.
    pub fn active_calls(&self) -> watch::Receiver<usize> {
        self.active_calls.clone()
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

impl Transport {
    pub(crate) fn from_stack(transport: rsipstack::sip::Transport) -> Self {
        match transport {
            rsipstack::sip::Transport::Tcp => Transport::Tcp,
            rsipstack::sip::Transport::Tls | rsipstack::sip::Transport::Wss => Transport::Tls,
            rsipstack::sip::Transport::Udp
            | rsipstack::sip::Transport::Sctp
            | rsipstack::sip::Transport::TlsSctp
            | rsipstack::sip::Transport::Ws => Transport::Udp,
        }
    }

    pub(crate) fn to_stack(self) -> rsipstack::sip::Transport {
        match self {
            Transport::Udp => rsipstack::sip::Transport::Udp,
            Transport::Tcp => rsipstack::sip::Transport::Tcp,
            Transport::Tls => rsipstack::sip::Transport::Tls,
        }
    }
}

/// Places calls through a [`SipEndpoint`]; cheap to clone, usable from any task.
#[derive(Clone)]
pub struct Dialer {
    sip_task: mpsc::Sender<SipTaskMsg>,
    account: Option<AccountOptions>,
    outbound_proxy: Option<Registrar>,
    local_addr: SocketAddr,
    endpoint: Arc<EndpointInner>,
    tls_client: Arc<TlsClient>,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("outbound_proxy", &self.outbound_proxy)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Dialer {
    /// Places a call; see [`SipEndpoint::dial`].
    pub async fn dial(&self, request: DialRequest) -> Result<OutgoingCall, DialError> {
        let prepared = self.prepare_dial(request).await?;
        let (reply, rx) = oneshot::channel();
        self.sip_task
            .send(SipTaskMsg::Dial {
                request: Box::new(prepared),
                reply,
            })
            .await
            .map_err(|_| DialError::Stopped)?;
        rx.await.map_err(|_| DialError::Stopped)?
    }

    async fn prepare_dial(&self, request: DialRequest) -> Result<PreparedDial, DialError> {
        let callee = sip_uri(&request.request_uri).ok_or_else(|| DialError::InvalidUri {
            what: "request URI",
            value: request.request_uri.clone(),
        })?;
        let from = match (&request.from, &self.account) {
            (Some(from), _) => from.clone(),
            (None, Some(account)) => format!("sip:{}@{}", account.user, account.domain),
            (None, None) => format!("sip:jigasi@{}", self.local_addr.ip()),
        };
        let caller = sip_uri(&from).ok_or_else(|| DialError::InvalidUri {
            what: "From URI",
            value: from.clone(),
        })?;
        for (name, value) in &request.headers {
            if !valid_header(name, value) {
                return Err(DialError::InvalidHeader(name.clone()));
            }
        }
        let uri_transport = transport_of(&request.request_uri);
        let (transport, destination) = match &self.outbound_proxy {
            Some(proxy) => {
                let addr = resolve(&proxy.host, proxy.port).await?;
                (uri_transport.unwrap_or(proxy.transport), Some(addr))
            }
            None => (uri_transport.unwrap_or(Transport::Udp), None),
        };
        // TLS connections are dialed (and their certificates checked) by us, not the stack.
        let destination = match (transport, destination) {
            (Transport::Tls, Some(addr)) => {
                let host = self
                    .outbound_proxy
                    .as_ref()
                    .map_or_else(String::new, |proxy| proxy.host.clone());
                self.connect_tls(addr, &host).await?;
                Some(addr)
            }
            (Transport::Tls, None) => {
                let host = callee.host_with_port.host.to_string();
                let host = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned();
                let port = callee
                    .host_with_port
                    .port
                    .as_ref()
                    .map_or(5061, |port| port.value());
                let addr = resolve(&host, port).await?;
                self.connect_tls(addr, &host).await?;
                Some(addr)
            }
            (Transport::Udp | Transport::Tcp, destination) => destination,
        };
        Ok(PreparedDial {
            callee,
            caller,
            display_name: request.display_name,
            headers: request.headers,
            offer: request.offer,
            transport,
            destination,
        })
    }
}

impl Dialer {
    async fn connect_tls(&self, addr: SocketAddr, host: &str) -> Result<(), DialError> {
        self.tls_client
            .ensure(&self.endpoint.transport_layer, addr, host)
            .await
            .map_err(|e| DialError::Unreachable {
                target: addr.to_string(),
                reason: e.to_string(),
            })
    }
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, DialError> {
    tokio::net::lookup_host((host, port))
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| DialError::Unresolvable(host.to_owned()))
}

/// The addresses we advertise in Via and Contact, per transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Advertised {
    /// UDP and TCP: the public address, else the bound one.
    pub(crate) clear: SocketAddr,
    /// TLS: the public IP with the TLS listener's port; `None` without a listener.
    pub(crate) tls: Option<SocketAddr>,
}

impl Advertised {
    /// The address for `transport`. Without a TLS listener, TLS uses the clear address (a peer
    /// then reaches us only over the connection we opened).
    pub(crate) fn for_transport(&self, transport: Transport) -> SocketAddr {
        match transport {
            Transport::Tls => self.tls.unwrap_or(self.clear),
            Transport::Udp | Transport::Tcp => self.clear,
        }
    }
}

/// Picks the TLS listener's address: with port 0, a port that is free now (rsipstack binds the
/// listener later in a task and only logs a failure, so the address must be known and free).
fn bind_tls(bind: SocketAddr) -> Result<SocketAddr, SipError> {
    let probe = std::net::TcpListener::bind(bind)
        .map_err(|source| SipError::Bind { addr: bind, source })?;
    let addr = probe
        .local_addr()
        .map_err(|source| SipError::Bind { addr: bind, source })?;
    Ok(SocketAddr::new(bind.ip(), addr.port()))
}

impl Drop for SipEndpoint {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Parses a `sip:` or `sips:` URI with a host (the stack's parser takes almost anything).
fn sip_uri(text: &str) -> Option<Uri> {
    let lower = text.to_ascii_lowercase();
    if !(lower.starts_with("sip:") || lower.starts_with("sips:"))
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    let uri = Uri::try_from(text).ok()?;
    (!uri.host_with_port.host.to_string().is_empty()).then_some(uri)
}

/// The transport a SIP URI asks for: `sips:` is TLS, `;transport=` names one.
fn transport_of(uri: &str) -> Option<Transport> {
    let lower = uri.to_ascii_lowercase();
    if lower.starts_with("sips:") {
        return Some(Transport::Tls);
    }
    let params = lower.split_once(';')?.1;
    params
        .split(';')
        .find_map(|param| match param.split_once('=')?.1.split('?').next()? {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            "tls" => Some(Transport::Tls),
            _ => None,
        })
}

/// A header we may put into a message: a token name and a value without line breaks.
fn valid_header(name: &str, value: &str) -> bool {
    let token = |c: char| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c);
    !name.is_empty()
        && name.chars().all(token)
        && !value.chars().any(|c| c == '\r' || c == '\n' || c == '\0')
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
        let socket = std::net::UdpSocket::bind(bind)
            .and_then(|socket| {
                socket.set_nonblocking(true)?;
                tokio::net::UdpSocket::from_std(socket)
            })
            .map_err(|source| SipError::Bind { addr: bind, source })?;
        // The bound port (the stack's `get_addr` would report the public address if set).
        let port = socket
            .local_addr()
            .map_err(|source| SipError::Bind { addr: bind, source })?
            .port();
        let local = SocketAddr::new(bind.ip(), port);
        let socket: Arc<dyn rsipstack::platform::net::UdpSocket> =
            Arc::new(ScreenedUdpSocket::new(socket));
        let udp = UdpConnection::from_socket(socket, public, Some(cancel.child_token()))
            .await
            .map_err(|e| SipError::Stack(e.to_string()))?;
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

/// Inbound calls queued for the app before INVITEs get 503.
const INCOMING_QUEUE: usize = 16;
/// Requests from the endpoint handle queued for the `SipTask`.
const SIP_TASK_QUEUE: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_transport() {
        assert_eq!(transport_of("sip:a@b"), None);
        assert_eq!(transport_of("sip:a@b;transport=TCP"), Some(Transport::Tcp));
        assert_eq!(
            transport_of("sip:a@b;lr;transport=udp"),
            Some(Transport::Udp)
        );
        assert_eq!(transport_of("sips:a@b"), Some(Transport::Tls));
        assert_eq!(transport_of("sip:a@b;transport=sctp"), None);
        assert_eq!(transport_of(";;=;"), None);
    }

    #[test]
    fn dial_uris() {
        assert!(sip_uri("sip:+15551234567@pbx.example.com").is_some());
        assert!(sip_uri("sips:bob@192.0.2.1:5061;transport=tls").is_some());
        assert!(sip_uri("not a uri").is_none());
        assert!(sip_uri("tel:+15551234567").is_none());
        assert!(sip_uri("sip:a@b\r\nVia: x").is_none());
        assert!(sip_uri("").is_none());
    }

    #[test]
    fn extra_headers_cannot_inject_lines() {
        assert!(valid_header(
            "Jitsi-Conference-Room",
            "room@conference.example.com"
        ));
        assert!(!valid_header("X-Evil", "a\r\nVia: x"));
        assert!(!valid_header("Bad Name", "v"));
        assert!(!valid_header("", "v"));
    }
}
