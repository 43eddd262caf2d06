//! The client-to-server session (RFC 6120): stream open, STARTTLS, SASL, bind, then stanzas.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use jid::Jid;
use minidom::Element;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::auth::{self, SaslClient};
use crate::config::{ClientConfig, TlsPolicy};
use crate::core::{Core, IqId, KeepAlive, Purpose, XmppEvent};
use crate::error::{
    CloseReason, PeerIncompatible, PeerMisbehaved, SaslFailure, SendError, StanzaError, StreamError,
};
use crate::ns;
use crate::stanza;
use crate::xml::{self, ReadError, StreamHeader, StreamItem, StreamReader};

/// A sans-IO XMPP client session (RFC 6120 c2s).
///
/// Negotiation follows gst-meet's state list: opening (pre-auth) → features → STARTTLS →
/// (re-open) → SASL → opening (post-auth) → features → bind (→ legacy session) → online.
/// The session answers server pings (XEP-0199), sends its own keep-alive pings and tracks IQ
/// requests; everything else is the application's. See the crate docs for the driving loop.
pub struct ClientSession {
    config: ClientConfig,
    state: State,
    reader: StreamReader,
    core: Core,
    rng: StdRng,
    tls_active: bool,
    jid: Option<Jid>,
    negotiation_deadline: Option<Instant>,
    /// Test hook: a fixed SCRAM nonce (RFC 5802 example values).
    #[cfg(test)]
    pub(crate) nonce_override: Option<String>,
}

enum State {
    /// Our header is sent; waiting for the server's (before authentication).
    OpeningPreAuth,
    ReceivingFeaturesPreAuth,
    /// `<starttls/>` sent; waiting for `<proceed/>`.
    StartTls,
    /// `<proceed/>` received; the driver runs the TLS handshake.
    AwaitingTls,
    Authenticating(Box<SaslClient>),
    OpeningPostAuth,
    ReceivingFeaturesPostAuth,
    Binding {
        session_required: bool,
    },
    EstablishingSession,
    Online,
    /// We sent `</stream:stream>`; waiting for the server's.
    Closing {
        deadline: Instant,
    },
    Closed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            Self::OpeningPreAuth => "opening the stream",
            Self::ReceivingFeaturesPreAuth => "receiving features",
            Self::StartTls => "starting TLS",
            Self::AwaitingTls => "waiting for TLS",
            Self::Authenticating(_) => "authenticating",
            Self::OpeningPostAuth => "re-opening the stream",
            Self::ReceivingFeaturesPostAuth => "receiving post-auth features",
            Self::Binding { .. } => "binding",
            Self::EstablishingSession => "establishing the session",
            Self::Online => "online",
            Self::Closing { .. } => "closing",
            Self::Closed => "closed",
        }
    }
}

impl ClientSession {
    /// Starts a session: the stream header is queued at once (drain [`Self::poll_transmit`]).
    /// `rng_seed` seeds all randomness (IQ ids, the SCRAM nonce).
    pub fn new(config: ClientConfig, now: Instant, rng_seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(rng_seed);
        let iq_prefix = format!("jx{:08x}-", rand::Rng::random::<u32>(&mut rng));
        let core = Core::new(
            ns::JABBER_CLIENT,
            iq_prefix,
            config.domain.clone(),
            KeepAlive {
                interval: config.ping_interval,
                timeout: config.ping_timeout,
                to: None,
            },
            None,
        );
        let mut session = Self {
            reader: StreamReader::new(ns::JABBER_CLIENT, config.max_stanza_bytes),
            negotiation_deadline: Some(now + config.negotiation_timeout),
            config,
            state: State::OpeningPreAuth,
            core,
            rng,
            tls_active: false,
            jid: None,
            #[cfg(test)]
            nonce_override: None,
        };
        session.open_stream();
        session
    }

    /// Feeds bytes received from the server (plaintext, or decrypted once TLS is up).
    pub fn handle_input(&mut self, now: Instant, mut data: &[u8]) {
        loop {
            match self.state {
                State::Closed => return,
                // Bytes after `<proceed/>` but before the TLS handshake are dropped: they could
                // only be an injection attack (RFC 6120 §5.4.3.3, CVE-2011-0411 style).
                State::AwaitingTls => return,
                State::OpeningPreAuth
                | State::ReceivingFeaturesPreAuth
                | State::StartTls
                | State::Authenticating(_)
                | State::OpeningPostAuth
                | State::ReceivingFeaturesPostAuth
                | State::Binding { .. }
                | State::EstablishingSession
                | State::Online
                | State::Closing { .. } => {}
            }
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

    /// The driver finished the TLS handshake after [`XmppEvent::StartTlsRequested`]; the
    /// stream restarts over TLS. Ignored in any other state.
    pub fn handle_tls_established(&mut self, _now: Instant) {
        if matches!(self.state, State::AwaitingTls) {
            self.tls_active = true;
            self.reader = StreamReader::new(ns::JABBER_CLIENT, self.config.max_stanza_bytes);
            self.state = State::OpeningPreAuth;
            self.open_stream();
        }
    }

    /// Advances timers: IQ timeouts, keep-alive pings, negotiation and close deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Closed => return,
            State::Closing { deadline } if deadline <= now => {
                self.finish(CloseReason::Requested);
                return;
            }
            State::OpeningPreAuth
            | State::ReceivingFeaturesPreAuth
            | State::StartTls
            | State::AwaitingTls
            | State::Authenticating(_)
            | State::OpeningPostAuth
            | State::ReceivingFeaturesPostAuth
            | State::Binding { .. }
            | State::EstablishingSession
            | State::Online
            | State::Closing { .. } => {}
        }
        if self.negotiation_deadline.is_some_and(|d| d <= now) {
            self.fail(CloseReason::NegotiationTimeout, None);
            return;
        }
        if let Err(reason) = self.core.handle_timeout(now) {
            self.fail(reason, None);
        }
    }

    /// The transport closed (EOF, reset, TLS failure). Ends the session.
    pub fn handle_transport_closed(&mut self, _now: Instant) {
        match self.state {
            State::Closed => {}
            State::Closing { .. } => self.finish(CloseReason::Requested),
            State::OpeningPreAuth
            | State::ReceivingFeaturesPreAuth
            | State::StartTls
            | State::AwaitingTls
            | State::Authenticating(_)
            | State::OpeningPostAuth
            | State::ReceivingFeaturesPostAuth
            | State::Binding { .. }
            | State::EstablishingSession
            | State::Online => self.finish(CloseReason::TransportClosed),
        }
    }

    /// Sends a stanza (`message`, `presence` or `iq` in `jabber:client`) as is. For IQ
    /// requests whose answer you want tracked, use [`Self::send_iq`].
    pub fn send_stanza(&mut self, stanza: Element) -> Result<(), SendError> {
        if !matches!(self.state, State::Online) {
            return Err(SendError::NotOnline);
        }
        self.core.send_stanza(stanza)
    }

    /// Sends an IQ request (type `get` or `set`; any `id` is replaced) and tracks it: exactly
    /// one of [`XmppEvent::IqResponse`] or [`XmppEvent::IqTimedOut`] follows for the returned
    /// id, unless the session closes first.
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

    /// Closes the stream politely: `</stream:stream>` is queued and the session waits (up to
    /// the ping timeout) for the server's, then reports [`CloseReason::Requested`].
    pub fn close(&mut self, now: Instant) {
        match self.state {
            State::Closed | State::Closing { .. } => {}
            State::OpeningPreAuth
            | State::ReceivingFeaturesPreAuth
            | State::StartTls
            | State::AwaitingTls
            | State::Authenticating(_)
            | State::OpeningPostAuth
            | State::ReceivingFeaturesPostAuth
            | State::Binding { .. }
            | State::EstablishingSession
            | State::Online => {
                self.core.write_raw(STREAM_CLOSE);
                self.core.clear();
                self.negotiation_deadline = None;
                self.state = State::Closing {
                    deadline: now + self.config.ping_timeout,
                };
            }
        }
    }

    /// The next bytes to write to the transport, in order.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.core.transmits.pop_front()
    }

    /// The next event for the application, in order.
    pub fn poll_event(&mut self) -> Option<XmppEvent> {
        self.core.events.pop_front()
    }

    /// When [`Self::handle_timeout`] must be called next; `None` if no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let closing = match self.state {
            State::Closed => return None,
            State::Closing { deadline } => Some(deadline),
            State::OpeningPreAuth
            | State::ReceivingFeaturesPreAuth
            | State::StartTls
            | State::AwaitingTls
            | State::Authenticating(_)
            | State::OpeningPostAuth
            | State::ReceivingFeaturesPostAuth
            | State::Binding { .. }
            | State::EstablishingSession
            | State::Online => None,
        };
        [closing, self.negotiation_deadline, self.core.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The bound full JID, once online.
    pub fn jid(&self) -> Option<&Jid> {
        self.jid.as_ref()
    }

    /// Whether the session is online (stanzas may be sent).
    pub fn is_online(&self) -> bool {
        matches!(self.state, State::Online)
    }

    /// Whether the session is over ([`XmppEvent::Closed`] has been queued). The driver should
    /// flush the remaining transmits and drop the connection.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether TLS is active on the stream.
    pub fn is_tls_active(&self) -> bool {
        self.tls_active
    }

    fn open_stream(&mut self) {
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' to='{}' \
             version='1.0' xml:lang='en'>",
            ns::JABBER_CLIENT,
            ns::STREAM,
            xml::escape_attr(&self.config.domain)
        );
        self.core.write_raw(header);
    }

    fn handle_item(&mut self, now: Instant, item: StreamItem) {
        match item {
            StreamItem::Header(header) => self.handle_header(header),
            StreamItem::End => {
                let reason = if matches!(self.state, State::Closing { .. }) {
                    CloseReason::Requested
                } else {
                    // Answer the server's close with ours (RFC 6120 §4.4).
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
            StreamItem::Element(element) => self.handle_element(now, element),
        }
    }

    fn handle_header(&mut self, header: StreamHeader) {
        let next = match self.state {
            State::OpeningPreAuth => State::ReceivingFeaturesPreAuth,
            State::OpeningPostAuth => State::ReceivingFeaturesPostAuth,
            State::ReceivingFeaturesPreAuth
            | State::StartTls
            | State::AwaitingTls
            | State::Authenticating(_)
            | State::ReceivingFeaturesPostAuth
            | State::Binding { .. }
            | State::EstablishingSession
            | State::Online
            | State::Closing { .. }
            | State::Closed => {
                let unexpected = PeerMisbehaved::UnexpectedElement {
                    name: "stream".into(),
                    namespace: ns::STREAM.into(),
                    state: self.state.name(),
                };
                self.fail(
                    CloseReason::PeerMisbehaved(unexpected),
                    Some("not-well-formed"),
                );
                return;
            }
        };
        let major = header.version.as_deref().and_then(|v| v.split('.').next());
        if major != Some("1") {
            let reason = PeerIncompatible::UnsupportedVersion(header.version);
            self.fail(
                CloseReason::PeerIncompatible(reason),
                Some("unsupported-version"),
            );
            return;
        }
        self.state = next;
    }

    fn handle_element(&mut self, now: Instant, element: Element) {
        match &self.state {
            State::ReceivingFeaturesPreAuth if element.is("features", ns::STREAM) => {
                self.handle_features_pre_auth(&element);
            }
            State::StartTls if element.is("proceed", ns::TLS) => {
                self.state = State::AwaitingTls;
                self.core.events.push_back(XmppEvent::StartTlsRequested);
            }
            State::Authenticating(_) if element.ns() == ns::SASL => {
                self.handle_sasl(&element);
            }
            State::ReceivingFeaturesPostAuth if element.is("features", ns::STREAM) => {
                self.handle_features_post_auth(now, &element);
            }
            State::Binding { .. } | State::EstablishingSession | State::Online
                if is_stanza(&element) =>
            {
                if let Some((purpose, result)) = self.core.handle_stanza(now, element) {
                    self.handle_internal_iq(now, purpose, result);
                }
            }
            // Stanzas still arriving after our close are delivered; others are ignored.
            State::Closing { .. } => {
                if is_stanza(&element) {
                    self.core.handle_stanza(now, element);
                }
            }
            State::OpeningPreAuth
            | State::ReceivingFeaturesPreAuth
            | State::StartTls
            | State::AwaitingTls
            | State::Authenticating(_)
            | State::OpeningPostAuth
            | State::ReceivingFeaturesPostAuth
            | State::Binding { .. }
            | State::EstablishingSession
            | State::Online
            | State::Closed => {
                let unexpected = PeerMisbehaved::UnexpectedElement {
                    name: element.name().to_owned(),
                    namespace: element.ns(),
                    state: self.state.name(),
                };
                self.fail(
                    CloseReason::PeerMisbehaved(unexpected),
                    Some("unsupported-stanza-type"),
                );
            }
        }
    }

    fn handle_features_pre_auth(&mut self, features: &Element) {
        if !self.tls_active {
            let starttls = features.get_child("starttls", ns::TLS);
            match (starttls, self.config.tls) {
                (Some(_), TlsPolicy::Required | TlsPolicy::IfOffered) => {
                    self.core
                        .write_raw(format!("<starttls xmlns='{}'/>", ns::TLS));
                    self.state = State::StartTls;
                    return;
                }
                (Some(offer), TlsPolicy::Disabled) if offer.has_child("required", ns::TLS) => {
                    self.fail_incompatible(PeerIncompatible::TlsRequiredByServer);
                    return;
                }
                (None, TlsPolicy::Required) => {
                    self.fail_incompatible(PeerIncompatible::TlsUnavailable);
                    return;
                }
                (Some(_), TlsPolicy::Disabled)
                | (None, TlsPolicy::IfOffered | TlsPolicy::Disabled) => {}
            }
        }
        let offered: Vec<String> = features
            .get_child("mechanisms", ns::SASL)
            .map(|m| {
                m.children()
                    .filter(|c| c.is("mechanism", ns::SASL))
                    .map(|c| c.text().trim().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let plain_allowed = self.tls_active || self.config.tls == TlsPolicy::Disabled;
        let Some(mechanism) = auth::choose(&self.config.auth, &offered, plain_allowed) else {
            self.fail_incompatible(PeerIncompatible::NoUsableMechanism { offered });
            return;
        };
        let nonce = self.scram_nonce();
        let mut client = SaslClient::new(mechanism, &self.config.auth, nonce);
        let initial = client.initial();
        self.core.write_raw(format!(
            "<auth xmlns='{}' mechanism='{}'>{}</auth>",
            ns::SASL,
            client.mechanism().name(),
            sasl_payload(&initial)
        ));
        self.state = State::Authenticating(Box::new(client));
    }

    fn scram_nonce(&mut self) -> String {
        #[cfg(test)]
        if let Some(nonce) = self.nonce_override.clone() {
            return nonce;
        }
        auth::nonce(&mut self.rng)
    }

    fn handle_sasl(&mut self, element: &Element) {
        let State::Authenticating(client) = &mut self.state else {
            return;
        };
        let data = match decode_sasl(&element.text()) {
            Ok(data) => data,
            Err(e) => {
                self.fail(CloseReason::PeerMisbehaved(e), None);
                return;
            }
        };
        match element.name() {
            "challenge" => match client.challenge(&data) {
                Ok(response) => self.core.write_raw(format!(
                    "<response xmlns='{}'>{}</response>",
                    ns::SASL,
                    sasl_payload(&response)
                )),
                Err(e) => self.fail(CloseReason::PeerMisbehaved(e), None),
            },
            "success" => match client.success(&data) {
                Ok(()) => {
                    self.reader =
                        StreamReader::new(ns::JABBER_CLIENT, self.config.max_stanza_bytes);
                    self.state = State::OpeningPostAuth;
                    self.open_stream();
                }
                Err(e) => self.fail(CloseReason::PeerMisbehaved(e), None),
            },
            "failure" => {
                let failure = SaslFailure::from_element(element);
                self.fail(CloseReason::AuthFailed(failure), None);
            }
            other => {
                let unexpected = PeerMisbehaved::UnexpectedElement {
                    name: other.to_owned(),
                    namespace: ns::SASL.into(),
                    state: "authenticating",
                };
                self.fail(CloseReason::PeerMisbehaved(unexpected), None);
            }
        }
    }

    fn handle_features_post_auth(&mut self, now: Instant, features: &Element) {
        if !features.has_child("bind", ns::BIND) {
            self.fail_incompatible(PeerIncompatible::BindNotOffered);
            return;
        }
        let session_required = features
            .get_child("session", ns::SESSION)
            .is_some_and(|s| !s.has_child("optional", ns::SESSION));
        let mut bind = Element::bare("bind", ns::BIND);
        if let Some(resource) = &self.config.resource {
            bind.append_child(
                Element::builder("resource", ns::BIND)
                    .append(resource.as_str())
                    .build(),
            );
        }
        let iq = stanza::iq("set", None, bind);
        let timeout = self.config.negotiation_timeout;
        match self.core.start_iq(now, iq, timeout, Purpose::Bind) {
            Ok(_) => self.state = State::Binding { session_required },
            // Only a resource with characters XML cannot carry gets here.
            Err(_) => self.fail(CloseReason::NegotiationTimeout, None),
        }
    }

    fn handle_internal_iq(
        &mut self,
        now: Instant,
        purpose: Purpose,
        result: Result<Element, Element>,
    ) {
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                let error = StanzaError::from_stanza(&error).unwrap_or(StanzaError {
                    error_type: "cancel".into(),
                    condition: "undefined-condition".into(),
                    text: None,
                });
                self.fail(CloseReason::BindRejected(error), None);
                return;
            }
        };
        match (purpose, &self.state) {
            (Purpose::Bind, State::Binding { session_required }) => {
                let session_required = *session_required;
                let jid = response
                    .get_child("bind", ns::BIND)
                    .and_then(|b| b.get_child("jid", ns::BIND))
                    .and_then(|j| Jid::new(j.text().trim()).ok())
                    .filter(Jid::is_full);
                let Some(jid) = jid else {
                    self.fail(
                        CloseReason::PeerMisbehaved(PeerMisbehaved::BadBindResult),
                        None,
                    );
                    return;
                };
                self.jid = Some(jid);
                if session_required {
                    let iq = stanza::iq("set", None, Element::bare("session", ns::SESSION));
                    let timeout = self.config.negotiation_timeout;
                    if self
                        .core
                        .start_iq(now, iq, timeout, Purpose::Session)
                        .is_ok()
                    {
                        self.state = State::EstablishingSession;
                        return;
                    }
                }
                self.go_online(now);
            }
            (Purpose::Session, State::EstablishingSession) => self.go_online(now),
            _ => {}
        }
    }

    fn go_online(&mut self, now: Instant) {
        let Some(jid) = self.jid.clone() else {
            return;
        };
        self.state = State::Online;
        self.negotiation_deadline = None;
        self.core.go_online(now, jid);
    }

    fn fail_incompatible(&mut self, reason: PeerIncompatible) {
        self.core.write_raw(STREAM_CLOSE);
        self.finish(CloseReason::PeerIncompatible(reason));
    }

    /// Ends the session after a failure; sends a stream error with `condition` if given, else
    /// a plain stream close.
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

pub(crate) const STREAM_CLOSE: &str = "</stream:stream>";

pub(crate) fn is_stanza(element: &Element) -> bool {
    element.ns() == ns::JABBER_CLIENT && matches!(element.name(), "message" | "presence" | "iq")
}

/// Maps a reader error to the close reason and the stream error condition we send.
pub(crate) fn read_error_reason(error: ReadError) -> (PeerMisbehaved, &'static str) {
    match error {
        ReadError::Malformed(detail) => (PeerMisbehaved::MalformedXml(detail), "not-well-formed"),
        ReadError::NotAStream => (PeerMisbehaved::NotAStream, "invalid-namespace"),
        ReadError::TooLarge { limit } => {
            (PeerMisbehaved::StanzaTooLarge { limit }, "policy-violation")
        }
        ReadError::TooDeep => (PeerMisbehaved::NestingTooDeep, "policy-violation"),
        ReadError::TextAtStreamLevel => (PeerMisbehaved::TextAtStreamLevel, "not-well-formed"),
    }
}

/// SASL payload on the wire: base64, or `=` for an empty response (RFC 6120 §6.4.2).
fn sasl_payload(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_owned()
    } else {
        BASE64.encode(data)
    }
}

fn decode_sasl(text: &str) -> Result<Vec<u8>, PeerMisbehaved> {
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return Ok(Vec::new());
    }
    BASE64
        .decode(text)
        .map_err(|_| PeerMisbehaved::BadSasl("payload is not base64"))
}
