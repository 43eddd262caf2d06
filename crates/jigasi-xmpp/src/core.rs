//! What client and component sessions share once a stream is up: the output queues, IQ
//! tracking with deadlines, answering XEP-0199 pings and our own keep-alive pings.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use jid::Jid;
use minidom::Element;

use crate::error::{CloseReason, SendError};
use crate::ns;
use crate::stanza;
use crate::xml::{self, XmlWriteError};

/// Something the session reports to the application, in order. See the crate docs for the
/// polling rule.
#[derive(Debug, Clone, PartialEq)]
pub enum XmppEvent {
    /// The server accepted STARTTLS (`<proceed/>`): the driver must now run the TLS handshake
    /// on the same connection, feed no more plaintext, and call `handle_tls_established`.
    StartTlsRequested,
    /// Negotiation finished. For a client, `jid` is the bound full JID; for a component, its
    /// domain. Stanzas may be sent from now on.
    Online {
        /// Our address on the stream.
        jid: Jid,
    },
    /// An incoming stanza that the session did not consume itself: messages, presences, IQ
    /// requests (other than pings, which the session answers) and IQ responses to ids it did
    /// not issue. IQ `get`/`set` requests must be answered by the application (RFC 6120
    /// §8.2.3), e.g. with [`crate::stanza::iq_error`] and `service-unavailable`.
    Stanza(Element),
    /// The answer to a request sent with `send_iq`: `Ok` for type `result`, `Err` for type
    /// `error` (read it with [`crate::StanzaError::from_stanza`]). Reported at most once per id.
    IqResponse {
        /// The id `send_iq` returned.
        id: IqId,
        /// The response stanza.
        result: Result<Element, Element>,
    },
    /// No answer to `send_iq`'s request within its timeout. Reported at most once per id; a
    /// late answer is then delivered as an ordinary [`XmppEvent::Stanza`].
    IqTimedOut {
        /// The id `send_iq` returned.
        id: IqId,
    },
    /// The session is over; always the last event, emitted exactly once. Requests still
    /// pending get neither a response nor a timeout: treat them as failed.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Identifies one IQ request sent with `send_iq` within its session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IqId(u64);

impl IqId {
    /// The per-session sequence number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for IqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IqId({})", self.0)
    }
}

impl fmt::Display for IqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Who is waiting for an IQ answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    App,
    KeepAlive,
    Bind,
    Session,
}

struct PendingIq {
    to: Option<String>,
    deadline: Instant,
    purpose: Purpose,
}

/// Keep-alive settings.
#[derive(Debug, Clone)]
pub(crate) struct KeepAlive {
    pub(crate) interval: Option<Duration>,
    pub(crate) timeout: Duration,
    pub(crate) to: Option<String>,
}

pub(crate) struct Core {
    stream_ns: &'static str,
    pub(crate) transmits: VecDeque<Vec<u8>>,
    pub(crate) events: VecDeque<XmppEvent>,
    pending: BTreeMap<u64, PendingIq>,
    next_iq: u64,
    iq_prefix: String,
    keep_alive: KeepAlive,
    next_ping: Option<Instant>,
    /// Our address once online (client full JID, component domain).
    own: Option<Jid>,
    /// The server's domain: answers to requests without `to` may come from it.
    server: String,
    /// Components must stamp `from` on what they send.
    stamp_from: Option<String>,
}

impl Core {
    pub(crate) fn new(
        stream_ns: &'static str,
        iq_prefix: String,
        server: String,
        keep_alive: KeepAlive,
        stamp_from: Option<String>,
    ) -> Self {
        Self {
            stream_ns,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            pending: BTreeMap::new(),
            next_iq: 1,
            iq_prefix,
            keep_alive,
            next_ping: None,
            own: None,
            server,
            stamp_from,
        }
    }

    pub(crate) fn write_raw(&mut self, bytes: impl Into<Vec<u8>>) {
        self.transmits.push_back(bytes.into());
    }

    pub(crate) fn write(&mut self, element: &Element) -> Result<(), XmlWriteError> {
        let mut out = Vec::new();
        xml::write_element(element, self.stream_ns, &mut out)?;
        self.transmits.push_back(out);
        Ok(())
    }

    /// Writes an application stanza (checked, `from` stamped for components).
    pub(crate) fn send_stanza(&mut self, mut stanza: Element) -> Result<(), SendError> {
        check_stanza(&stanza)?;
        self.stamp(&mut stanza);
        Ok(self.write(&stanza)?)
    }

    /// Sends an IQ request with a fresh id, answered (or timed out) to `purpose`.
    pub(crate) fn start_iq(
        &mut self,
        now: Instant,
        mut iq: Element,
        timeout: Duration,
        purpose: Purpose,
    ) -> Result<IqId, SendError> {
        check_stanza(&iq)?;
        if !stanza::is_iq_request(&iq) {
            return Err(SendError::NotAnIqRequest);
        }
        let number = self.next_iq;
        stanza::set_attr(&mut iq, "id", format!("{}{number}", self.iq_prefix));
        self.stamp(&mut iq);
        self.write(&iq)?;
        self.next_iq += 1;
        self.pending.insert(
            number,
            PendingIq {
                to: iq.attr("to").map(str::to_owned),
                deadline: now + timeout,
                purpose,
            },
        );
        Ok(IqId(number))
    }

    /// The stream is up: remember our address and start keep-alives.
    pub(crate) fn go_online(&mut self, now: Instant, own: Jid) {
        self.events
            .push_back(XmppEvent::Online { jid: own.clone() });
        self.own = Some(own);
        self.next_ping = self.keep_alive.interval.map(|interval| now + interval);
    }

    /// Handles one incoming stanza. Answers for [`Purpose::Bind`] and [`Purpose::Session`]
    /// are returned to the caller; everything else becomes events or is answered here.
    pub(crate) fn handle_stanza(
        &mut self,
        now: Instant,
        stanza: Element,
    ) -> Option<(Purpose, Result<Element, Element>)> {
        if stanza.is("iq", ns::JABBER_CLIENT) {
            let kind = stanza.attr("type").unwrap_or("");
            if matches!(kind, "result" | "error") {
                if let Some(number) = self.match_response(&stanza) {
                    let pending = self.pending.remove(&number)?;
                    let result = if kind == "result" {
                        Ok(stanza)
                    } else {
                        Err(stanza)
                    };
                    match pending.purpose {
                        Purpose::App => self.events.push_back(XmppEvent::IqResponse {
                            id: IqId(number),
                            result,
                        }),
                        // Any answer, even an error, proves the link is alive.
                        Purpose::KeepAlive => {
                            self.next_ping = self.keep_alive.interval.map(|i| now + i);
                        }
                        purpose @ (Purpose::Bind | Purpose::Session) => {
                            return Some((purpose, result));
                        }
                    }
                    return None;
                }
            } else if kind == "get" && stanza.has_child("ping", ns::PING) {
                let reply = stanza::iq_result(&stanza);
                // The reply is built from attributes that were parsed from well-formed XML,
                // so it is always writable; a failure here would only drop the pong.
                let _ = self.write(&reply);
                return None;
            }
        }
        self.events.push_back(XmppEvent::Stanza(stanza));
        None
    }

    /// Expires IQs and sends a due keep-alive ping. An error means the session must close.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Result<(), CloseReason> {
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(n, _)| *n)
            .collect();
        for number in expired {
            let Some(pending) = self.pending.remove(&number) else {
                continue;
            };
            match pending.purpose {
                Purpose::App => self
                    .events
                    .push_back(XmppEvent::IqTimedOut { id: IqId(number) }),
                Purpose::KeepAlive => return Err(CloseReason::PingTimeout),
                Purpose::Bind | Purpose::Session => return Err(CloseReason::NegotiationTimeout),
            }
        }
        if self.next_ping.is_some_and(|at| at <= now) {
            self.next_ping = None;
            let ping = stanza::ping(self.keep_alive.to.as_deref());
            let timeout = self.keep_alive.timeout;
            // A ping built from config strings can only fail to serialise if the configured
            // target contains characters XML cannot carry; then keep-alive is off.
            let _ = self.start_iq(now, ping, timeout, Purpose::KeepAlive);
        }
        Ok(())
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let iq = self.pending.values().map(|p| p.deadline).min();
        match (iq, self.next_ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Forgets pending requests and timers (the session is over).
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
        self.next_ping = None;
    }

    fn stamp(&self, stanza: &mut Element) {
        if let Some(from) = &self.stamp_from
            && stanza.attr("from").is_none()
        {
            stanza::set_attr(stanza, "from", from.clone());
        }
    }

    /// The sequence number of the pending request `response` answers, if it answers one and
    /// comes from the address the request went to (RFC 6120 §8.1.2.1), so that other entities
    /// cannot spoof answers.
    fn match_response(&self, response: &Element) -> Option<u64> {
        let number: u64 = response
            .attr("id")?
            .strip_prefix(self.iq_prefix.as_str())?
            .parse()
            .ok()?;
        let pending = self.pending.get(&number)?;
        let from = response.attr("from");
        let ok = match (&pending.to, from) {
            (Some(to), Some(from)) => same_jid(to, from),
            (Some(_), None) => false,
            (None, None) => true,
            (None, Some(from)) => {
                same_jid(from, &self.server)
                    || self.own.as_ref().is_some_and(|own| {
                        same_jid(from, own.as_str()) || same_jid(from, own.to_bare().as_str())
                    })
            }
        };
        ok.then_some(number)
    }
}

/// Compares addresses after JID normalisation (RFC 7622: local part and domain are
/// case-insensitive); unparsable addresses fall back to an ASCII case-insensitive comparison.
pub(crate) fn same_jid(a: &str, b: &str) -> bool {
    match (Jid::new(a), Jid::new(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.eq_ignore_ascii_case(b),
    }
}

fn check_stanza(stanza: &Element) -> Result<(), SendError> {
    let is_stanza =
        matches!(stanza.name(), "message" | "presence" | "iq") && stanza.ns() == ns::JABBER_CLIENT;
    if is_stanza {
        Ok(())
    } else {
        Err(SendError::NotAStanza {
            name: stanza.name().to_owned(),
            namespace: stanza.ns(),
        })
    }
}

#[cfg(test)]
mod tests {
    // Tests take one real instant as the base of their virtual clock.
    #![allow(clippy::unwrap_used, clippy::disallowed_methods)]
    use super::*;

    fn core() -> Core {
        Core::new(
            ns::JABBER_CLIENT,
            "t-".into(),
            "example.com".into(),
            KeepAlive {
                interval: None,
                timeout: Duration::from_secs(5),
                to: None,
            },
            None,
        )
    }

    #[test]
    fn responses_from_other_addresses_are_not_matched() {
        let now = Instant::now();
        let mut core = core();
        let id = core
            .start_iq(
                now,
                stanza::iq(
                    "get",
                    Some("conference.example.com"),
                    Element::bare("q", "urn:x"),
                ),
                Duration::from_secs(5),
                Purpose::App,
            )
            .unwrap();
        let spoof: Element = "<iq xmlns='jabber:client' type='result' id='t-1' from='evil.com'/>"
            .parse()
            .unwrap();
        assert!(core.handle_stanza(now, spoof).is_none());
        assert!(matches!(
            core.events.pop_front(),
            Some(XmppEvent::Stanza(_))
        ));
        let real: Element =
            "<iq xmlns='jabber:client' type='result' id='t-1' from='Conference.Example.com'/>"
                .parse()
                .unwrap();
        core.handle_stanza(now, real);
        let Some(XmppEvent::IqResponse { id: got, result }) = core.events.pop_front() else {
            panic!("expected a response")
        };
        assert_eq!(got, id);
        assert!(result.is_ok());
    }

    #[test]
    fn non_stanzas_are_refused() {
        let mut core = core();
        assert!(matches!(
            core.send_stanza(Element::bare("auth", ns::SASL)),
            Err(SendError::NotAStanza { .. })
        ));
        assert_eq!(
            core.start_iq(
                Instant::now(),
                Element::builder("iq", ns::JABBER_CLIENT)
                    .attr(stanza::name("type"), "result")
                    .build(),
                Duration::from_secs(1),
                Purpose::App
            ),
            Err(SendError::NotAnIqRequest)
        );
        assert!(core.transmits.is_empty());
    }
}
