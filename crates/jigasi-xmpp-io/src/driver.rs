//! The connection task: owns the socket and the session, moves bytes and deadlines.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use jigasi_xmpp::jid::Jid;
use jigasi_xmpp::{
    ClientSession, CloseReason, ComponentSession, IqId, SendError, StanzaError, XmppEvent,
};
use minidom::Element;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tracing::{debug, warn};

use crate::{ConnectError, Incoming, IqError};

/// What the handle asks the task to do.
#[derive(Debug)]
pub(crate) enum Command {
    Send(Element, oneshot::Sender<Result<(), SendError>>),
    SendIq(Element, Duration, oneshot::Sender<Result<Element, IqError>>),
    Close,
}

/// The common surface of client and component sessions.
pub(crate) trait Session: Send + 'static {
    fn handle_input(&mut self, now: std::time::Instant, data: &[u8]);
    fn handle_tls_established(&mut self, now: std::time::Instant);
    fn handle_timeout(&mut self, now: std::time::Instant);
    fn handle_transport_closed(&mut self, now: std::time::Instant);
    fn send_stanza(&mut self, stanza: Element) -> Result<(), SendError>;
    fn send_iq(
        &mut self,
        now: std::time::Instant,
        iq: Element,
        timeout: Duration,
    ) -> Result<IqId, SendError>;
    fn close(&mut self, now: std::time::Instant);
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    fn poll_event(&mut self) -> Option<XmppEvent>;
    fn poll_timeout(&self) -> Option<std::time::Instant>;
}

macro_rules! impl_session {
    ($ty:ty, $tls:expr) => {
        impl Session for $ty {
            fn handle_input(&mut self, now: std::time::Instant, data: &[u8]) {
                <$ty>::handle_input(self, now, data)
            }
            fn handle_tls_established(&mut self, now: std::time::Instant) {
                let f: fn(&mut $ty, std::time::Instant) = $tls;
                f(self, now)
            }
            fn handle_timeout(&mut self, now: std::time::Instant) {
                <$ty>::handle_timeout(self, now)
            }
            fn handle_transport_closed(&mut self, now: std::time::Instant) {
                <$ty>::handle_transport_closed(self, now)
            }
            fn send_stanza(&mut self, stanza: Element) -> Result<(), SendError> {
                <$ty>::send_stanza(self, stanza)
            }
            fn send_iq(
                &mut self,
                now: std::time::Instant,
                iq: Element,
                timeout: Duration,
            ) -> Result<IqId, SendError> {
                <$ty>::send_iq(self, now, iq, timeout)
            }
            fn close(&mut self, now: std::time::Instant) {
                <$ty>::close(self, now)
            }
            fn poll_transmit(&mut self) -> Option<Vec<u8>> {
                <$ty>::poll_transmit(self)
            }
            fn poll_event(&mut self) -> Option<XmppEvent> {
                <$ty>::poll_event(self)
            }
            fn poll_timeout(&self) -> Option<std::time::Instant> {
                <$ty>::poll_timeout(self)
            }
        }
    };
}

impl_session!(ClientSession, |s, now| s.handle_tls_established(now));
// Components never see `StartTlsRequested`.
impl_session!(ComponentSession, |_, _| {});

/// The socket: plain TCP, then TLS after STARTTLS.
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only during the TLS handshake (the TCP stream is moved into the connector).
    Upgrading,
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Upgrading => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Upgrading => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Upgrading => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::Upgrading => Poll::Ready(Ok(())),
        }
    }
}

/// Sends `Incoming::Closed` if the task ends (or panics) without having sent it, so that the
/// application always learns about the end of the connection.
struct ClosedGuard {
    events: mpsc::UnboundedSender<Incoming>,
    sent: bool,
}

impl ClosedGuard {
    fn send(&mut self, item: Incoming) {
        if self.sent {
            return;
        }
        self.sent = matches!(item, Incoming::Closed(_));
        // A dropped receiver means nobody listens any more; nothing to report to.
        let _ = self.events.send(item);
    }
}

impl Drop for ClosedGuard {
    fn drop(&mut self) {
        if !self.sent {
            let _ = self
                .events
                .send(Incoming::Closed(CloseReason::TransportClosed));
        }
    }
}

pub(crate) struct Driver<S> {
    session: S,
    transport: Transport,
    tls: Option<(TlsConnector, rustls::pki_types::ServerName<'static>)>,
    inbox: mpsc::Receiver<Command>,
    inbox_open: bool,
    events: ClosedGuard,
    ready: Option<oneshot::Sender<Result<Jid, ConnectError>>>,
    pending: HashMap<IqId, oneshot::Sender<Result<Element, IqError>>>,
}

impl<S: Session> Driver<S> {
    pub(crate) fn new(
        session: S,
        stream: TcpStream,
        tls: Option<(TlsConnector, rustls::pki_types::ServerName<'static>)>,
        inbox: mpsc::Receiver<Command>,
        events: mpsc::UnboundedSender<Incoming>,
        ready: oneshot::Sender<Result<Jid, ConnectError>>,
    ) -> Self {
        Self {
            session,
            transport: Transport::Plain(stream),
            tls,
            inbox,
            inbox_open: true,
            events: ClosedGuard {
                events,
                sent: false,
            },
            ready: Some(ready),
            pending: HashMap::new(),
        }
    }

    /// The task body: drain, wait for one input, feed it, repeat until the session closes.
    pub(crate) async fn run(mut self) {
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            if self.drain().await {
                break;
            }
            let deadline = self.session.poll_timeout().map(Instant::from_std);
            tokio::select! {
                read = self.transport.read(&mut buf) => {
                    let now = Instant::now().into_std();
                    match read {
                        Ok(0) => self.session.handle_transport_closed(now),
                        Ok(n) => self.session.handle_input(now, &buf[..n]),
                        Err(e) => {
                            debug!("xmpp read failed: {e}");
                            self.session.handle_transport_closed(now);
                        }
                    }
                }
                command = self.inbox.recv(), if self.inbox_open => self.handle_command(command),
                () = sleep_until(deadline) => self.session.handle_timeout(Instant::now().into_std()),
            }
        }
        let _ = tokio::time::timeout(WRITE_TIMEOUT, self.transport.shutdown()).await;
    }

    /// Writes every transmit and handles every event; `true` once the session closed.
    async fn drain(&mut self) -> bool {
        loop {
            let mut progressed = false;
            while let Some(bytes) = self.session.poll_transmit() {
                progressed = true;
                let write = async {
                    self.transport.write_all(&bytes).await?;
                    self.transport.flush().await
                };
                match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        debug!("xmpp write failed: {e}");
                        self.session
                            .handle_transport_closed(Instant::now().into_std());
                    }
                    Err(_) => {
                        warn!("xmpp write timed out");
                        self.session
                            .handle_transport_closed(Instant::now().into_std());
                    }
                }
            }
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                if self.handle_event(event).await {
                    // Flush what the session queued last (a stream close), best effort.
                    while let Some(bytes) = self.session.poll_transmit() {
                        let _ =
                            tokio::time::timeout(WRITE_TIMEOUT, self.transport.write_all(&bytes))
                                .await;
                    }
                    return true;
                }
            }
            if !progressed {
                return false;
            }
        }
    }

    /// Handles one event; `true` if it was the final `Closed`.
    async fn handle_event(&mut self, event: XmppEvent) -> bool {
        match event {
            XmppEvent::StartTlsRequested => self.upgrade().await,
            XmppEvent::Online { jid } => {
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Ok(jid));
                }
            }
            XmppEvent::Stanza(stanza) => self.events.send(Incoming::Stanza(stanza)),
            XmppEvent::IqResponse { id, result } => {
                if let Some(reply) = self.pending.remove(&id) {
                    let result = result.map_err(|stanza| IqError::ErrorResponse {
                        error: StanzaError::from_stanza(&stanza).unwrap_or(StanzaError {
                            error_type: "cancel".into(),
                            condition: "undefined-condition".into(),
                            text: None,
                        }),
                        stanza: Box::new(stanza),
                    });
                    let _ = reply.send(result);
                }
            }
            XmppEvent::IqTimedOut { id } => {
                if let Some(reply) = self.pending.remove(&id) {
                    let _ = reply.send(Err(IqError::Timeout));
                }
            }
            XmppEvent::Closed { reason } => {
                debug!("xmpp session closed: {reason}");
                for (_, reply) in self.pending.drain() {
                    let _ = reply.send(Err(IqError::Closed));
                }
                match self.ready.take() {
                    Some(ready) => {
                        let _ = ready.send(Err(ConnectError::from(reason.clone())));
                        // Nobody got the events side yet; mark it reported.
                        self.events.send(Incoming::Closed(reason));
                    }
                    None => self.events.send(Incoming::Closed(reason)),
                }
                return true;
            }
        }
        false
    }

    /// Runs the TLS handshake on the same TCP stream after `<proceed/>`.
    async fn upgrade(&mut self) {
        let now = || Instant::now().into_std();
        let Some((connector, name)) = self.tls.clone() else {
            // TLS was disabled by config, so the session never asks; treat it as a failure.
            self.session.handle_transport_closed(now());
            return;
        };
        let Transport::Plain(tcp) = std::mem::replace(&mut self.transport, Transport::Upgrading)
        else {
            self.session.handle_transport_closed(now());
            return;
        };
        match tokio::time::timeout(WRITE_TIMEOUT, connector.connect(name, tcp)).await {
            Ok(Ok(tls)) => {
                self.transport = Transport::Tls(Box::new(tls));
                self.session.handle_tls_established(now());
            }
            Ok(Err(e)) => {
                warn!("xmpp TLS handshake failed: {e}");
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Err(ConnectError::Tls(e.to_string())));
                }
                self.session.handle_transport_closed(now());
            }
            Err(_) => {
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Err(ConnectError::Tls("handshake timed out".into())));
                }
                self.session.handle_transport_closed(now());
            }
        }
    }

    fn handle_command(&mut self, command: Option<Command>) {
        let now = Instant::now().into_std();
        match command {
            Some(Command::Send(stanza, ack)) => {
                let _ = ack.send(self.session.send_stanza(stanza));
            }
            Some(Command::SendIq(iq, timeout, reply)) => {
                match self.session.send_iq(now, iq, timeout) {
                    Ok(id) => {
                        self.pending.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(IqError::Rejected(e)));
                    }
                }
            }
            Some(Command::Close) => self.session.close(now),
            // Every handle is gone: nobody can send any more, so end the stream politely.
            None => {
                self.inbox_open = false;
                self.session.close(now);
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

const READ_BUFFER: usize = 16 * 1024;
/// Longest a write (or the TLS handshake) may block before the connection counts as dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
