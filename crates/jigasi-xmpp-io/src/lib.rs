//! Tokio driver for `jigasi-xmpp` sessions: TCP, STARTTLS (tokio-rustls), timers.
//!
//! One task per connection owns the socket (a `TcpStream`, then a `TlsStream` after STARTTLS)
//! and the sans-IO session. It `select!`s over socket reads, the bounded command inbox and a
//! sleep until the session's `poll_timeout`, and after each input drains the session's
//! transmits and events. It makes no protocol decisions.
//!
//! The application gets an [`XmppHandle`] (cloneable, channel-backed: send stanzas, send IQs
//! and await their answers, close) and an [`XmppEvents`] stream of incoming stanzas that always
//! ends with exactly one [`Incoming::Closed`]: a lost connection is never silent.

mod driver;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

use jigasi_xmpp::jid::Jid;
use jigasi_xmpp::{
    ClientConfig, ClientSession, CloseReason, ComponentConfig, ComponentSession, SaslFailure,
    SendError, StanzaError, StreamError,
};
use minidom::Element;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::driver::{Command, Driver};

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Host name or address to connect to, e.g. `127.0.0.1`.
    pub host: String,
    /// TCP port, e.g. 5222 (c2s) or 5347 (components).
    pub port: u16,
    /// The name the server certificate must carry (usually the XMPP domain).
    pub tls_server_name: String,
    /// Trust any server certificate (tests with self-signed Prosody certificates only).
    pub dangerous_accept_invalid_certs: bool,
    /// PEM file with the CA certificates to trust for STARTTLS. System roots are not used.
    pub ca_file: Option<PathBuf>,
    /// Deadline for TCP connect plus the whole negotiation (until online).
    pub connect_timeout: Duration,
}

impl ConnectOptions {
    /// Options for `host:port`, TLS name = `host`, no CA file, 10 s timeout.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        let host = host.into();
        Self {
            tls_server_name: host.clone(),
            host,
            port,
            dangerous_accept_invalid_certs: false,
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a connection could not be brought online.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nobody listens on the port.
    #[error("connection refused by {addr}")]
    Refused {
        /// `host:port`.
        addr: String,
    },
    /// Another I/O error while connecting.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// TCP connect plus negotiation took longer than `connect_timeout`.
    #[error("timed out")]
    Timeout,
    /// TLS configuration or handshake failure.
    #[error("tls: {0}")]
    Tls(String),
    /// The CA file could not be read or holds no certificate.
    #[error("ca file: {0}")]
    CaFile(String),
    /// SASL authentication was rejected (condition such as `not-authorized`).
    #[error("authentication rejected: {0}")]
    AuthRejected(SaslFailure),
    /// The server sent a stream error during negotiation (e.g. a component's `not-authorized`).
    #[error("stream error: {0}")]
    StreamError(StreamError),
    /// The session closed during negotiation for another reason.
    #[error("closed during negotiation: {0}")]
    Closed(CloseReason),
}

impl From<CloseReason> for ConnectError {
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::AuthFailed(failure) => Self::AuthRejected(failure),
            CloseReason::StreamError(error) => Self::StreamError(error),
            other @ (CloseReason::Requested
            | CloseReason::ClosedByPeer
            | CloseReason::TransportClosed
            | CloseReason::BindRejected(_)
            | CloseReason::PingTimeout
            | CloseReason::NegotiationTimeout
            | CloseReason::PeerMisbehaved(_)
            | CloseReason::PeerIncompatible(_)) => Self::Closed(other),
        }
    }
}

/// Why a command through an [`XmppHandle`] failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HandleError {
    /// The connection is closed; the command was not carried out.
    #[error("connection closed")]
    Closed,
    /// The session refused the stanza (not a stanza, not writable, not online).
    #[error(transparent)]
    Rejected(#[from] SendError),
}

/// Why `send_iq` got no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IqError {
    /// The peer answered with an IQ of type `error`.
    #[error("error response: {error}")]
    ErrorResponse {
        /// The parsed error (condition `undefined-condition` if the stanza had none).
        error: StanzaError,
        /// The whole response.
        stanza: Box<Element>,
    },
    /// No answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// The connection closed before an answer came.
    #[error("connection closed")]
    Closed,
    /// The session refused the request.
    #[error(transparent)]
    Rejected(#[from] SendError),
}

/// What the connection reports to the application.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// An incoming stanza not consumed by the session (see `jigasi_xmpp::XmppEvent::Stanza`).
    /// IQ requests must be answered with [`XmppHandle::send`].
    Stanza(Element),
    /// The connection is over. Always the last item, exactly once.
    Closed(CloseReason),
}

/// A cloneable handle to one connection's task. Dropping every clone closes the stream
/// politely (the [`XmppEvents`] side still receives the final [`Incoming::Closed`]).
#[derive(Debug, Clone)]
pub struct XmppHandle {
    commands: mpsc::Sender<Command>,
    jid: Jid,
}

impl XmppHandle {
    /// Sends a stanza (`message`, `presence` or `iq` in `jabber:client`).
    pub async fn send(&self, stanza: Element) -> Result<(), HandleError> {
        let (ack, done) = oneshot::channel();
        self.commands
            .send(Command::Send(stanza, ack))
            .await
            .map_err(|_| HandleError::Closed)?;
        done.await
            .map_err(|_| HandleError::Closed)?
            .map_err(HandleError::from)
    }

    /// Sends an IQ request (`get` or `set`) and waits for its answer or the timeout.
    pub async fn send_iq(&self, iq: Element, timeout: Duration) -> Result<Element, IqError> {
        let (reply, done) = oneshot::channel();
        self.commands
            .send(Command::SendIq(iq, timeout, reply))
            .await
            .map_err(|_| IqError::Closed)?;
        done.await.map_err(|_| IqError::Closed)?
    }

    /// Closes the stream politely; [`Incoming::Closed`] follows on [`XmppEvents`].
    pub async fn close(&self) {
        // If the task is already gone, the connection is closed anyway.
        let _ = self.commands.send(Command::Close).await;
    }

    /// Our address: the bound full JID, or the component domain.
    pub fn jid(&self) -> &Jid {
        &self.jid
    }

    /// Whether the connection task has ended.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}

/// The incoming side of one connection.
#[derive(Debug)]
pub struct XmppEvents {
    events: mpsc::UnboundedReceiver<Incoming>,
}

impl XmppEvents {
    /// The next incoming item; `None` after [`Incoming::Closed`] was returned.
    ///
    /// The channel is unbounded so that the connection task never blocks on a slow reader
    /// (which would stall pongs and IQ answers); keep reading it.
    pub async fn next(&mut self) -> Option<Incoming> {
        self.events.recv().await
    }

    /// [`XmppEvents::next`] for a caller that polls several sources by hand.
    pub fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Incoming>> {
        self.events.poll_recv(cx)
    }
}

/// Connects a client, negotiates (STARTTLS, SASL, bind) and returns once online.
pub async fn connect_client(
    options: ConnectOptions,
    config: ClientConfig,
) -> Result<(XmppHandle, XmppEvents), ConnectError> {
    let deadline = tokio::time::Instant::now() + options.connect_timeout;
    tokio::time::timeout_at(deadline, async {
        let stream = tcp_connect(&options).await?;
        let connector = if config.tls == jigasi_xmpp::TlsPolicy::Disabled {
            None
        } else {
            Some((
                tls::connector(
                    options.ca_file.as_deref(),
                    options.dangerous_accept_invalid_certs,
                )
                .await?,
                tls::server_name(&options.tls_server_name)?,
            ))
        };
        let session = ClientSession::new(
            config,
            tokio::time::Instant::now().into_std(),
            rand::random(),
        );
        start(session, stream, connector).await
    })
    .await
    .map_err(|_| ConnectError::Timeout)?
}

/// Connects an external component (XEP-0114) and returns once the handshake succeeded.
pub async fn connect_component(
    options: ConnectOptions,
    config: ComponentConfig,
) -> Result<(XmppHandle, XmppEvents), ConnectError> {
    let deadline = tokio::time::Instant::now() + options.connect_timeout;
    tokio::time::timeout_at(deadline, async {
        let stream = tcp_connect(&options).await?;
        let session = ComponentSession::new(
            config,
            tokio::time::Instant::now().into_std(),
            rand::random(),
        );
        start(session, stream, None).await
    })
    .await
    .map_err(|_| ConnectError::Timeout)?
}

async fn tcp_connect(options: &ConnectOptions) -> Result<TcpStream, ConnectError> {
    let addr = format!("{}:{}", options.host, options.port);
    match TcpStream::connect(&addr).await {
        Ok(stream) => {
            stream.set_nodelay(true)?;
            Ok(stream)
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err(ConnectError::Refused { addr })
        }
        Err(e) => Err(ConnectError::Io(e)),
    }
}

/// Spawns the connection task and waits until the session is online or failed. If the
/// caller's future is dropped (timeout), the task is aborted.
async fn start<S: driver::Session>(
    session: S,
    stream: TcpStream,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
) -> Result<(XmppHandle, XmppEvents), ConnectError> {
    let (commands, inbox) = mpsc::channel(COMMAND_CAPACITY);
    let (events_tx, events) = mpsc::unbounded_channel();
    let (ready_tx, ready) = oneshot::channel();
    let driver = Driver::new(session, stream, tls, inbox, events_tx, ready_tx);
    let task = AbortOnDrop(Some(tokio::spawn(driver.run())));
    let jid = match ready.await {
        Ok(Ok(jid)) => jid,
        Ok(Err(e)) => return Err(e),
        // The task ended without reporting: it can only have panicked.
        Err(_) => return Err(ConnectError::Closed(CloseReason::TransportClosed)),
    };
    task.disarm();
    Ok((XmppHandle { commands, jid }, XmppEvents { events }))
}

struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl AbortOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// Commands waiting for the connection task; senders wait when it is full.
const COMMAND_CAPACITY: usize = 64;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jigasi_xmpp::{Auth, TlsPolicy};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Reads from `socket` until `needle` has been seen; returns what was read.
    async fn expect(socket: &mut TcpStream, needle: &str) -> String {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while !seen.contains(needle) {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "client closed while waiting for {needle}: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        seen
    }

    fn anonymous(port: u16) -> (ConnectOptions, ClientConfig) {
        let config =
            ClientConfig::new("example.com", Auth::Anonymous).with_tls(TlsPolicy::Disabled);
        let options = ConnectOptions {
            connect_timeout: Duration::from_secs(2),
            ..ConnectOptions::new("127.0.0.1", port)
        };
        (options, config)
    }

    /// A scripted server on loopback: anonymous login, one stanza, then a dropped connection.
    /// The application must see the stanza and then exactly one `Closed`.
    #[tokio::test]
    async fn scripted_server_disconnect_is_reported() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                xmlns:stream='http://etherx.jabber.org/streams' id='s' version='1.0'>";
            expect(&mut socket, "<stream:stream").await;
            let features = "<stream:features><mechanisms \
                xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>ANONYMOUS</mechanism>\
                </mechanisms></stream:features>";
            let script = format!("{header}{features}");
            socket.write_all(script.as_bytes()).await.unwrap();
            expect(&mut socket, "</auth>").await;
            let success = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
            socket.write_all(success.as_bytes()).await.unwrap();
            expect(&mut socket, "<stream:stream").await;
            let bind = "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
                </stream:features>";
            socket
                .write_all(format!("{header}{bind}").as_bytes())
                .await
                .unwrap();
            let request = expect(&mut socket, "</iq>").await;
            let start = request.find("id='").unwrap() + 4;
            let id = &request[start..start + request[start..].find('\'').unwrap()];
            let reply = format!(
                "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
                 <jid>anon@example.com/r1</jid></bind></iq><message from='x@example.com/y'>\
                 <body>hi</body></message>"
            );
            socket.write_all(reply.as_bytes()).await.unwrap();
            // Dropping the socket without `</stream:stream>`: an abrupt disconnect.
        });
        let (options, config) = anonymous(port);
        let (handle, mut events) = connect_client(options, config).await.unwrap();
        assert_eq!(handle.jid().as_str(), "anon@example.com/r1");
        let Some(Incoming::Stanza(message)) = events.next().await else {
            panic!("expected the message")
        };
        assert_eq!(message.name(), "message");
        assert_eq!(
            events.next().await,
            Some(Incoming::Closed(CloseReason::TransportClosed))
        );
        assert_eq!(events.next().await, None);
        assert!(matches!(
            handle
                .send_iq(jigasi_xmpp::stanza::ping(None), Duration::from_secs(1))
                .await,
            Err(IqError::Closed)
        ));
    }

    /// A server that accepts and never speaks: connect fails with `Timeout`, not a hang.
    #[tokio::test]
    async fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move { listener.accept().await.unwrap() });
        let (options, config) = anonymous(port);
        let result = connect_client(options, config).await;
        assert!(matches!(result, Err(ConnectError::Timeout)), "{result:?}");
        drop(server.await.unwrap());
    }
}
