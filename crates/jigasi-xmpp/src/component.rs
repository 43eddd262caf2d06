//! The external component session (XEP-0114 "Jabber Component Protocol").
//!
//! Used by the Jicofo stand-in that serves `focus.<domain>`. The wire namespace is
//! `jabber:component:accept`, but stanzas cross this API in `jabber:client` like a client's
//! (see [`crate::ns`]), and `from` is stamped with the component domain when missing.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use jid::Jid;
use minidom::Element;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sasl::common::scram::{ScramProvider, Sha1};

use crate::client::{STREAM_CLOSE, is_stanza, read_error_reason};
use crate::config::ComponentConfig;
use crate::core::{Core, IqId, KeepAlive, Purpose, XmppEvent};
use crate::error::{CloseReason, PeerMisbehaved, SendError, StreamError};
use crate::ns;
use crate::xml::{self, StreamItem, StreamReader};

/// A sans-IO XEP-0114 component session. Same polling surface as [`crate::ClientSession`].
pub struct ComponentSession {
    config: ComponentConfig,
    state: State,
    reader: StreamReader,
    core: Core,
    negotiation_deadline: Option<Instant>,
}

enum State {
    Opening,
    Handshaking,
    Online,
    Closing { deadline: Instant },
    Closed,
}

impl ComponentSession {
    /// Starts a session: the stream header is queued at once. `rng_seed` seeds the IQ ids.
    pub fn new(config: ComponentConfig, now: Instant, rng_seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(rng_seed);
        let iq_prefix = format!("jc{:08x}-", rand::Rng::random::<u32>(&mut rng));
        let core = Core::new(
            ns::COMPONENT_ACCEPT,
            iq_prefix,
            config.ping_to.clone(),
            KeepAlive {
                interval: config.ping_interval,
                timeout: config.ping_timeout,
                to: Some(config.ping_to.clone()),
            },
            Some(config.domain.clone()),
        );
        let mut session = Self {
            reader: StreamReader::new(ns::COMPONENT_ACCEPT, config.max_stanza_bytes),
            negotiation_deadline: Some(now + config.negotiation_timeout),
            state: State::Opening,
            core,
            config,
        };
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' to='{}'>",
            ns::COMPONENT_ACCEPT,
            ns::STREAM,
            xml::escape_attr(&session.config.domain)
        );
        session.core.write_raw(header);
        session
    }

    /// Feeds bytes received from the server.
    pub fn handle_input(&mut self, now: Instant, mut data: &[u8]) {
        while !matches!(self.state, State::Closed) {
            match self.reader.next(&mut data) {
                Ok(None) => return,
                Ok(Some(item)) => self.handle_item(now, item),
                Err(e) => {
                    let (reason, condition) = read_error_reason(e);
                    self.fail(CloseReason::PeerMisbehaved(reason), Some(condition));
                }
            }
        }
    }

    /// Advances timers: IQ timeouts, keep-alive pings, handshake and close deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Closed => return,
            State::Closing { deadline } if deadline <= now => {
                self.finish(CloseReason::Requested);
                return;
            }
            State::Opening | State::Handshaking | State::Online | State::Closing { .. } => {}
        }
        if self.negotiation_deadline.is_some_and(|d| d <= now) {
            self.fail(CloseReason::NegotiationTimeout, None);
            return;
        }
        if let Err(reason) = self.core.handle_timeout(now) {
            self.fail(reason, None);
        }
    }

    /// The transport closed. Ends the session.
    pub fn handle_transport_closed(&mut self, _now: Instant) {
        match self.state {
            State::Closed => {}
            State::Closing { .. } => self.finish(CloseReason::Requested),
            State::Opening | State::Handshaking | State::Online => {
                self.finish(CloseReason::TransportClosed)
            }
        }
    }

    /// Sends a stanza; `from` defaults to the component domain.
    pub fn send_stanza(&mut self, stanza: Element) -> Result<(), SendError> {
        if !matches!(self.state, State::Online) {
            return Err(SendError::NotOnline);
        }
        self.core.send_stanza(stanza)
    }

    /// Sends a tracked IQ request, as [`crate::ClientSession::send_iq`].
    pub fn send_iq(
        &mut self,
        now: Instant,
        iq: Element,
        timeout: Duration,
    ) -> Result<IqId, SendError> {
        if !matches!(self.state, State::Online) {
            return Err(SendError::NotOnline);
        }
        self.core.start_iq(now, iq, timeout, Purpose::App)
    }

    /// Closes the stream politely, as [`crate::ClientSession::close`].
    pub fn close(&mut self, now: Instant) {
        if matches!(self.state, State::Closed | State::Closing { .. }) {
            return;
        }
        self.core.write_raw(STREAM_CLOSE);
        self.core.clear();
        self.negotiation_deadline = None;
        self.state = State::Closing {
            deadline: now + self.config.ping_timeout,
        };
    }

    /// The next bytes to write to the transport.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.core.transmits.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<XmppEvent> {
        self.core.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let closing = match self.state {
            State::Closed => return None,
            State::Closing { deadline } => Some(deadline),
            State::Opening | State::Handshaking | State::Online => None,
        };
        [closing, self.negotiation_deadline, self.core.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether the handshake succeeded and the session is not closing.
    pub fn is_online(&self) -> bool {
        matches!(self.state, State::Online)
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    fn handle_item(&mut self, now: Instant, item: StreamItem) {
        match item {
            StreamItem::Header(header) => {
                if !matches!(self.state, State::Opening) {
                    let unexpected = PeerMisbehaved::UnexpectedElement {
                        name: "stream".into(),
                        namespace: ns::STREAM.into(),
                        state: "handshaking",
                    };
                    self.fail(
                        CloseReason::PeerMisbehaved(unexpected),
                        Some("not-well-formed"),
                    );
                    return;
                }
                let Some(id) = header.id else {
                    self.fail(
                        CloseReason::PeerMisbehaved(PeerMisbehaved::MissingStreamId),
                        Some("invalid-id"),
                    );
                    return;
                };
                let digest = handshake_digest(&id, self.config.secret.expose());
                self.core
                    .write_raw(format!("<handshake>{digest}</handshake>"));
                self.state = State::Handshaking;
            }
            StreamItem::End => {
                let reason = if matches!(self.state, State::Closing { .. }) {
                    CloseReason::Requested
                } else {
                    self.core.write_raw(STREAM_CLOSE);
                    CloseReason::ClosedByPeer
                };
                self.finish(reason);
            }
            StreamItem::Element(element) if element.is("error", ns::STREAM) => {
                self.core.write_raw(STREAM_CLOSE);
                self.finish(CloseReason::StreamError(StreamError::from_element(
                    &element,
                )));
            }
            StreamItem::Element(element) => match self.state {
                State::Handshaking if element.is("handshake", ns::JABBER_CLIENT) => {
                    self.state = State::Online;
                    self.negotiation_deadline = None;
                    match Jid::new(&self.config.domain) {
                        Ok(jid) => self.core.go_online(now, jid),
                        Err(_) => self.fail(CloseReason::NegotiationTimeout, None),
                    }
                }
                State::Online | State::Closing { .. } if is_stanza(&element) => {
                    // Components have no bind or session IQs: nothing comes back here.
                    let _ = self.core.handle_stanza(now, element);
                }
                State::Opening
                | State::Handshaking
                | State::Online
                | State::Closing { .. }
                | State::Closed => {
                    let unexpected = PeerMisbehaved::UnexpectedElement {
                        name: element.name().to_owned(),
                        namespace: element.ns(),
                        state: "component stream",
                    };
                    self.fail(
                        CloseReason::PeerMisbehaved(unexpected),
                        Some("unsupported-stanza-type"),
                    );
                }
            },
        }
    }

    fn fail(&mut self, reason: CloseReason, condition: Option<&str>) {
        match condition {
            Some(condition) => self.core.write_raw(format!(
                "<stream:error><{condition} xmlns='{}'/></stream:error>{STREAM_CLOSE}",
                ns::STREAM_ERRORS
            )),
            None => self.core.write_raw(STREAM_CLOSE),
        }
        self.finish(reason);
    }

    fn finish(&mut self, reason: CloseReason) {
        if matches!(self.state, State::Closed) {
            return;
        }
        self.state = State::Closed;
        self.negotiation_deadline = None;
        self.core.clear();
        self.core.events.push_back(XmppEvent::Closed { reason });
    }
}

/// The XEP-0114 §3 handshake: lowercase hex SHA-1 of the stream id followed by the secret.
pub fn handshake_digest(stream_id: &str, secret: &str) -> String {
    let mut input = String::with_capacity(stream_id.len() + secret.len());
    input.push_str(stream_id);
    input.push_str(secret);
    let mut hex = String::with_capacity(40);
    for byte in Sha1::hash(input.as_bytes()) {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}
