//! Session tests: scripted server transcripts fed in every chunking, on a virtual clock.

// Tests take one real instant as the base of their virtual clock.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use jigasi_types::Secret;
use minidom::Element;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{
    Auth, ClientConfig, ClientSession, CloseReason, ComponentConfig, ComponentSession,
    PeerIncompatible, PeerMisbehaved, SendError, TlsPolicy, XmppEvent, ns, stanza,
};

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='auth.meet.example.com' \
    version='1.0' xml:lang='en'>";
const FEATURES_TLS: &str = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
    <required/></starttls></stream:features>";
const PROCEED: &str = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
const FEATURES_SASL: &str = "<stream:features><mechanisms \
    xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>\
    <mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>";
const FEATURES_ANON: &str = "<stream:features><mechanisms \
    xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>ANONYMOUS</mechanism>\
    </mechanisms></stream:features>";
const FEATURES_BIND: &str = "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
    <session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>";

/// RFC 5802 §5 values, base64 as they travel in `<auth>`, `<challenge>`, `<response>`,
/// `<success>` (computed independently with Python's base64 module).
const SCRAM_CLIENT_FIRST: &str = "biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM";
const SCRAM_SERVER_FIRST: &str = "cj1meWtvK2QybGJiRmdPTlJ2OXFreGRhd0wzcmZjTkhZSlkxWlZ2V1ZzN2oscz1RU1hDUitRNnNlazhiZjkyLGk9NDA5Ng==";
const SCRAM_CLIENT_FINAL: &str = "Yz1iaXdzLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdMM3JmY05IWUpZMVpWdldWczdqLHA9djBYOHYzQnoyVDBDSkdiSlF5RjBYK0hJNFRzPQ==";
const SCRAM_SERVER_FINAL: &str = "dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9";

/// A session plus a virtual clock and the bytes it wrote.
struct Harness {
    session: ClientSession,
    now: Instant,
    chunk: usize,
}

impl Harness {
    fn new(config: ClientConfig, chunk: usize) -> Self {
        let now = Instant::now();
        Self {
            session: ClientSession::new(config, now, 1),
            now,
            chunk,
        }
    }

    /// Feeds server bytes in chunks of `self.chunk`, draining outputs after every input as the
    /// polling rule requires; returns what the session wrote and reported.
    fn server(&mut self, text: &str) -> (String, Vec<XmppEvent>) {
        let mut written = String::new();
        let mut events = Vec::new();
        for piece in text.as_bytes().chunks(self.chunk) {
            self.session.handle_input(self.now, piece);
            let (w, e) = self.drain();
            written.push_str(&w);
            events.extend(e);
        }
        (written, events)
    }

    fn drain(&mut self) -> (String, Vec<XmppEvent>) {
        let mut written = String::new();
        while let Some(bytes) = self.session.poll_transmit() {
            written.push_str(&String::from_utf8(bytes).unwrap());
        }
        let mut events = Vec::new();
        while let Some(event) = self.session.poll_event() {
            events.push(event);
        }
        (written, events)
    }

    fn advance(&mut self, by: Duration) -> (String, Vec<XmppEvent>) {
        self.now += by;
        self.session.handle_timeout(self.now);
        self.drain()
    }
}

fn password_config() -> ClientConfig {
    ClientConfig::new(
        "auth.meet.example.com",
        Auth::Password {
            username: "user".into(),
            password: Secret::new("pencil".into()),
        },
    )
    .with_resource("jigasi-1")
}

/// The value of the first `id='…'` in `written`.
fn sent_id(written: &str) -> String {
    let start = written.find(" id='").unwrap() + 5;
    let end = written[start..].find('\'').unwrap();
    written[start..start + end].to_owned()
}

/// Parses what the session wrote (top-level elements on a stream with default namespace
/// `stream_ns`), so that comparisons do not depend on attribute order.
fn parse_sent(written: &str, stream_ns: &'static str) -> Vec<Element> {
    let mut reader = crate::xml::StreamReader::new(stream_ns, 1 << 20);
    let doc = format!(
        "<stream:stream xmlns='{stream_ns}' xmlns:stream='http://etherx.jabber.org/streams'>{written}"
    );
    let mut buf = doc.as_bytes();
    let mut out = Vec::new();
    while let Some(item) = reader.next(&mut buf).unwrap() {
        if let crate::xml::StreamItem::Element(element) = item {
            out.push(element);
        }
    }
    out
}

fn element(xml: &str) -> Element {
    xml.parse().unwrap()
}

fn closed(events: &[XmppEvent]) -> Option<&CloseReason> {
    events.iter().find_map(|e| match e {
        XmppEvent::Closed { reason } => Some(reason),
        XmppEvent::StartTlsRequested
        | XmppEvent::Online { .. }
        | XmppEvent::Stanza(_)
        | XmppEvent::IqResponse { .. }
        | XmppEvent::IqTimedOut { .. } => None,
    })
}

/// Runs a SCRAM-SHA-1 login with STARTTLS up to Online, asserting every step.
fn login_scram(chunk: usize) -> Harness {
    let mut h = Harness::new(password_config(), chunk);
    h.session.nonce_override = Some("fyko+d2lbbFgONRv9qkxdawL".into());
    let (opened, _) = h.drain();
    assert!(opened.starts_with("<?xml version='1.0'?><stream:stream xmlns='jabber:client'"));
    assert!(opened.contains("to='auth.meet.example.com'"));

    let (written, events) = h.server(&format!("{HEADER}{FEATURES_TLS}"));
    assert_eq!(
        written,
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    );
    assert!(events.is_empty());
    // Plaintext injected after <proceed/> must be ignored.
    let (written, events) = h.server(&format!("{PROCEED}<message/>"));
    assert_eq!(written, "");
    assert_eq!(events, vec![XmppEvent::StartTlsRequested]);

    h.session.handle_tls_established(h.now);
    let (reopened, _) = h.drain();
    assert!(reopened.contains("<stream:stream"), "{reopened}");
    assert!(h.session.is_tls_active());

    let (written, _) = h.server(&format!("{HEADER}{FEATURES_SASL}"));
    assert_eq!(
        written,
        format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>\
             {SCRAM_CLIENT_FIRST}</auth>"
        )
    );
    let (written, _) = h.server(&format!(
        "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{SCRAM_SERVER_FIRST}</challenge>"
    ));
    assert_eq!(
        written,
        format!(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{SCRAM_CLIENT_FINAL}</response>"
        )
    );
    let (written, _) = h.server(&format!(
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{SCRAM_SERVER_FINAL}</success>"
    ));
    assert!(
        written.contains("<stream:stream"),
        "restart after SASL: {written}"
    );

    let (written, events) = h.server(&format!("{HEADER}{FEATURES_BIND}"));
    assert!(events.is_empty());
    assert!(
        written.contains(
            "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>jigasi-1</resource></bind>"
        ),
        "{written}"
    );
    let id = sent_id(&written);
    let (written, events) = h.server(&format!(
        "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <jid>user@auth.meet.example.com/jigasi-1</jid></bind></iq>"
    ));
    assert_eq!(written, "", "optional session: no session IQ");
    let [XmppEvent::Online { jid }] = events.as_slice() else {
        panic!("expected Online, got {events:?}")
    };
    assert_eq!(jid.as_str(), "user@auth.meet.example.com/jigasi-1");
    assert!(h.session.is_online());
    h
}

#[test]
fn scram_sha1_login_with_starttls_in_every_chunking() {
    for chunk in [1, 2, 3, 5, 7, 13, 64, 100_000] {
        let h = login_scram(chunk);
        assert_eq!(
            h.session.jid().unwrap().as_str(),
            "user@auth.meet.example.com/jigasi-1"
        );
    }
}

#[test]
fn whole_transcript_in_one_read_after_tls() {
    // Everything the server says after TLS, delivered in one buffer that crosses the SASL
    // restart: the rest of the buffer must reach the new stream's parser.
    let mut h = Harness::new(password_config().with_tls(TlsPolicy::Disabled), 1 << 20);
    h.session.nonce_override = Some("fyko+d2lbbFgONRv9qkxdawL".into());
    h.drain();
    h.server(&format!("{HEADER}{FEATURES_SASL}"));
    h.server(&format!(
        "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{SCRAM_SERVER_FIRST}</challenge>"
    ));
    let (written, _) = h.server(&format!(
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{SCRAM_SERVER_FINAL}</success>\
         {HEADER}{FEATURES_BIND}"
    ));
    assert!(written.contains("<bind "), "{written}");
}

#[test]
fn plain_only_with_tls_or_explicitly_disabled_tls() {
    let plain_only = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
        <mechanism>PLAIN</mechanism></mechanisms></stream:features>";
    let jigasi = Auth::Password {
        username: "jigasi".into(),
        password: Secret::new("jigasipw".into()),
    };
    // No TLS on offer, policy IfOffered: PLAIN would expose the password.
    let mut h = Harness::new(
        ClientConfig::new("d", jigasi.clone()).with_tls(TlsPolicy::IfOffered),
        4,
    );
    h.drain();
    let (_, events) = h.server(&format!("{HEADER}{plain_only}"));
    assert_eq!(
        closed(&events),
        Some(&CloseReason::PeerIncompatible(
            PeerIncompatible::NoUsableMechanism {
                offered: vec!["PLAIN".into()]
            }
        ))
    );
    // TLS explicitly disabled (loopback): PLAIN is allowed.
    let mut h = Harness::new(
        ClientConfig::new("d", jigasi).with_tls(TlsPolicy::Disabled),
        4,
    );
    h.drain();
    let (written, _) = h.server(&format!("{HEADER}{plain_only}"));
    assert_eq!(
        written,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGppZ2FzaQBqaWdhc2lwdw==</auth>"
    );
}

#[test]
fn anonymous_login_with_server_assigned_resource() {
    let config =
        ClientConfig::new("meet.example.com", Auth::Anonymous).with_tls(TlsPolicy::Disabled);
    for chunk in [1, 9, 4096] {
        let mut h = Harness::new(config.clone(), chunk);
        h.drain();
        let (written, _) = h.server(&format!("{HEADER}{FEATURES_ANON}"));
        assert_eq!(
            written,
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'>=</auth>"
        );
        h.server("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        let (written, _) = h.server(&format!(
            "{HEADER}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
             </stream:features>"
        ));
        assert!(written.contains("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"));
        let id = sent_id(&written);
        let (_, events) = h.server(&format!(
            "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <jid>b2f6a3c0@meet.example.com/3f2a1b0c</jid></bind></iq>"
        ));
        assert!(
            matches!(&events[..], [XmppEvent::Online { jid }] if jid.as_str() == "b2f6a3c0@meet.example.com/3f2a1b0c")
        );
    }
}

#[test]
fn required_session_is_established_before_online() {
    let config =
        ClientConfig::new("meet.example.com", Auth::Anonymous).with_tls(TlsPolicy::Disabled);
    let mut h = Harness::new(config, 4096);
    h.drain();
    h.server(&format!("{HEADER}{FEATURES_ANON}"));
    h.server("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    let (written, _) = h.server(&format!(
        "{HEADER}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
         <session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></stream:features>"
    ));
    let id = sent_id(&written);
    let (written, events) = h.server(&format!(
        "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <jid>a@meet.example.com/r</jid></bind></iq>"
    ));
    assert!(
        events.is_empty(),
        "not online before the session IQ: {events:?}"
    );
    assert!(written.contains("<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>"));
    let id = sent_id(&written);
    let (_, events) = h.server(&format!("<iq type='result' id='{id}'/>"));
    assert!(matches!(&events[..], [XmppEvent::Online { .. }]));
}

#[test]
fn sasl_failure_is_a_typed_auth_error() {
    let mut h = Harness::new(password_config().with_tls(TlsPolicy::Disabled), 3);
    h.drain();
    h.server(&format!("{HEADER}{FEATURES_SASL}"));
    let (_, events) = h.server(
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>\
         <text xml:lang='en'>Unable to authorize you</text></failure>",
    );
    let Some(CloseReason::AuthFailed(failure)) = closed(&events) else {
        panic!("expected auth failure: {events:?}")
    };
    assert_eq!(failure.condition, "not-authorized");
    assert_eq!(failure.text.as_deref(), Some("Unable to authorize you"));
    assert!(h.session.is_closed());
    assert_eq!(h.session.poll_timeout(), None);
}

#[test]
fn tls_required_but_not_offered_fails() {
    let mut h = Harness::new(password_config(), 4096);
    h.drain();
    let (written, events) = h.server(&format!("{HEADER}{FEATURES_SASL}"));
    assert_eq!(
        closed(&events),
        Some(&CloseReason::PeerIncompatible(
            PeerIncompatible::TlsUnavailable
        ))
    );
    assert!(written.ends_with("</stream:stream>"));
}

#[test]
fn answers_server_pings_itself() {
    let mut h = login_scram(4096);
    let (written, events) = h.server(
        "<iq type='get' id='ping-7' from='auth.meet.example.com' \
         to='user@auth.meet.example.com/jigasi-1'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    assert!(
        events.is_empty(),
        "pings are not the application's: {events:?}"
    );
    assert_eq!(
        parse_sent(&written, ns::JABBER_CLIENT),
        vec![element(
            "<iq xmlns='jabber:client' type='result' id='ping-7' to='auth.meet.example.com' \
             from='user@auth.meet.example.com/jigasi-1'/>"
        )]
    );
    // Other IQ requests go to the application.
    let (_, events) = h.server(
        "<iq type='set' id='d1' from='jigasibrewery@internal.auth.meet.example.com/focus'>\
         <dial xmlns='urn:xmpp:rayo:1' to='123'/></iq>",
    );
    assert!(
        matches!(&events[..], [XmppEvent::Stanza(s)] if s.has_child("dial", "urn:xmpp:rayo:1"))
    );
}

#[test]
fn keep_alive_ping_timeout_on_virtual_clock() {
    let mut h = login_scram(4096);
    let online_at = h.now;
    assert_eq!(
        h.session.poll_timeout(),
        Some(online_at + Duration::from_secs(30))
    );
    let (written, events) = h.advance(Duration::from_secs(29));
    assert!(written.is_empty() && events.is_empty());
    let (written, _) = h.advance(Duration::from_secs(1));
    assert!(
        written.contains("<ping xmlns='urn:xmpp:ping'/>"),
        "{written}"
    );
    let id = sent_id(&written);
    // Answered: no close, next ping 30 s later.
    let (_, events) = h.server(&format!(
        "<iq type='result' id='{id}' from='auth.meet.example.com'/>"
    ));
    assert!(events.is_empty());
    assert_eq!(
        h.session.poll_timeout(),
        Some(h.now + Duration::from_secs(30))
    );
    let (written, _) = h.advance(Duration::from_secs(30));
    assert!(written.contains("urn:xmpp:ping"));
    // Unanswered: closed after ping_timeout (10 s).
    let (_, events) = h.advance(Duration::from_secs(9));
    assert!(closed(&events).is_none());
    let (_, events) = h.advance(Duration::from_secs(1));
    assert_eq!(closed(&events), Some(&CloseReason::PingTimeout));
}

#[test]
fn iq_result_error_and_timeout_are_reported_once() {
    let mut h = login_scram(4096);
    let timeout = Duration::from_secs(5);
    let disco = crate::disco::info_request("conference.meet.example.com");
    let first = h.session.send_iq(h.now, disco.clone(), timeout).unwrap();
    let (written, _) = h.drain();
    let wire_id = sent_id(&written);
    let (_, events) = h.server(&format!(
        "<iq type='result' id='{wire_id}' from='conference.meet.example.com'>\
         <query xmlns='http://jabber.org/protocol/disco#info'>\
         <identity category='conference' type='text'/></query></iq>"
    ));
    let [
        XmppEvent::IqResponse {
            id,
            result: Ok(result),
        },
    ] = events.as_slice()
    else {
        panic!("expected a result: {events:?}")
    };
    assert_eq!(*id, first);
    assert!(result.has_child("query", ns::DISCO_INFO));

    let second = h.session.send_iq(h.now, disco.clone(), timeout).unwrap();
    assert_ne!(first, second);
    let (written, _) = h.drain();
    let wire_id = sent_id(&written);
    let (_, events) = h.server(&format!(
        "<iq type='error' id='{wire_id}' from='conference.meet.example.com'><error type='cancel'>\
         <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ));
    let [
        XmppEvent::IqResponse {
            id,
            result: Err(error),
        },
    ] = events.as_slice()
    else {
        panic!("expected an error: {events:?}")
    };
    assert_eq!(*id, second);
    assert_eq!(
        crate::StanzaError::from_stanza(error).unwrap().condition,
        "service-unavailable"
    );

    let third = h.session.send_iq(h.now, disco, timeout).unwrap();
    let (written, _) = h.drain();
    let wire_id = sent_id(&written);
    let (_, events) = h.advance(Duration::from_secs(5));
    assert_eq!(events, vec![XmppEvent::IqTimedOut { id: third }]);
    // A late answer is an ordinary stanza, never a second report.
    let (_, events) = h.server(&format!(
        "<iq type='result' id='{wire_id}' from='conference.meet.example.com'/>"
    ));
    assert!(matches!(&events[..], [XmppEvent::Stanza(_)]));
}

#[test]
fn stream_error_closes_with_its_condition() {
    let mut h = login_scram(4096);
    let (written, events) = h.server(
        "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by new connection</text>\
         </stream:error></stream:stream>",
    );
    let Some(CloseReason::StreamError(error)) = closed(&events) else {
        panic!("expected a stream error: {events:?}")
    };
    assert_eq!(error.condition, "conflict");
    assert_eq!(error.text.as_deref(), Some("Replaced by new connection"));
    assert_eq!(written, "</stream:stream>");
    assert_eq!(events.len(), 1, "exactly one Closed: {events:?}");
}

#[test]
fn garbage_bytes_close_without_panic() {
    let mut h = login_scram(4096);
    let (written, events) = h.server("<iq type='get'>\u{1}\u{2}<<>>&&;");
    assert!(matches!(
        closed(&events),
        Some(CloseReason::PeerMisbehaved(PeerMisbehaved::MalformedXml(_)))
    ));
    assert!(written.contains("<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
    // Later input and timeouts produce nothing more.
    let (written, events) = h.server("<message/>");
    assert!(written.is_empty() && events.is_empty());
    let (written, events) = h.advance(Duration::from_secs(3600));
    assert!(written.is_empty() && events.is_empty());
    assert_eq!(
        h.session
            .send_stanza(Element::bare("message", ns::JABBER_CLIENT)),
        Err(SendError::NotOnline)
    );
}

#[test]
fn oversized_stanza_closes_with_policy_violation() {
    let mut config = password_config();
    config.max_stanza_bytes = 1000;
    let mut h = Harness::new(config.with_tls(TlsPolicy::Disabled), 4096);
    h.drain();
    h.server(HEADER);
    let huge = format!("<message><body>{}</body></message>", "x".repeat(5000));
    let (written, events) = h.server(&huge);
    assert_eq!(
        closed(&events),
        Some(&CloseReason::PeerMisbehaved(
            PeerMisbehaved::StanzaTooLarge { limit: 1000 }
        ))
    );
    assert!(written.contains("policy-violation"));
}

#[test]
fn server_close_transport_close_and_our_close() {
    let mut h = login_scram(4096);
    let (written, events) = h.server("</stream:stream>");
    assert_eq!(written, "</stream:stream>");
    assert_eq!(closed(&events), Some(&CloseReason::ClosedByPeer));

    let mut h = login_scram(4096);
    h.session.handle_transport_closed(h.now);
    let (_, events) = h.drain();
    assert_eq!(
        events,
        vec![XmppEvent::Closed {
            reason: CloseReason::TransportClosed
        }]
    );

    let mut h = login_scram(4096);
    h.session.close(h.now);
    let (written, events) = h.drain();
    assert_eq!(written, "</stream:stream>");
    assert!(events.is_empty(), "waits for the server's close");
    // Stanzas still in flight are delivered while closing.
    let (_, events) = h.server("<message from='a@b/c'><body>late</body></message></stream:stream>");
    assert!(matches!(&events[0], XmppEvent::Stanza(_)));
    assert_eq!(closed(&events), Some(&CloseReason::Requested));

    // A server that never answers our close: the deadline ends it.
    let mut h = login_scram(4096);
    h.session.close(h.now);
    h.drain();
    let (_, events) = h.advance(Duration::from_secs(10));
    assert_eq!(closed(&events), Some(&CloseReason::Requested));
}

#[test]
fn negotiation_timeout_when_server_is_silent() {
    let mut h = Harness::new(password_config(), 4096);
    h.drain();
    assert_eq!(
        h.session.poll_timeout(),
        Some(h.now + Duration::from_secs(30))
    );
    let (_, events) = h.advance(Duration::from_secs(30));
    assert_eq!(closed(&events), Some(&CloseReason::NegotiationTimeout));
}

#[test]
fn outputs_queue_in_order_until_drained() {
    // The polling rule: outputs are kept, in order, across several inputs until polled.
    let mut h = login_scram(4096);
    h.session
        .send_stanza(Element::builder("presence", ns::JABBER_CLIENT).build())
        .unwrap();
    h.session.handle_input(
        h.now,
        b"<iq type='get' id='p1' from='auth.meet.example.com'><ping xmlns='urn:xmpp:ping'/></iq>\
          <message from='x@y/z'/>",
    );
    h.session
        .send_stanza(Element::builder("message", ns::JABBER_CLIENT).build())
        .unwrap();
    let written: Vec<String> = std::iter::from_fn(|| h.session.poll_transmit())
        .map(|b| String::from_utf8(b).unwrap())
        .collect();
    assert_eq!(written.len(), 3);
    assert!(written[0].starts_with("<presence"));
    assert!(written[1].contains("id='p1'"));
    assert!(written[2].starts_with("<message"));
    assert!(matches!(h.session.poll_event(), Some(XmppEvent::Stanza(_))));
    assert_eq!(h.session.poll_event(), None);
    assert_eq!(h.session.poll_transmit(), None);
}

#[test]
fn send_rejects_non_stanzas_and_requests_before_online() {
    let mut h = Harness::new(password_config(), 4096);
    assert_eq!(
        h.session
            .send_iq(h.now, stanza::ping(None), Duration::from_secs(1)),
        Err(SendError::NotOnline)
    );
    let mut h = login_scram(4096);
    assert!(matches!(
        h.session.send_stanza(Element::bare("features", ns::STREAM)),
        Err(SendError::NotAStanza { .. })
    ));
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let alphabet: &[u8] = b"<>/='\"&;: abcxyz\x00\xff\xc3\n-stream:iqfeatures";
    for round in 0..300 {
        // Half the rounds start from an online session, half from a fresh one.
        let mut h = if round % 2 == 0 {
            login_scram(4096)
        } else {
            let mut h = Harness::new(password_config(), 4096);
            h.drain();
            if round % 4 == 1 {
                h.server(HEADER);
            }
            h
        };
        let len = rng.random_range(1..400);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.random_bool(0.7) {
                    alphabet[rng.random_range(0..alphabet.len())]
                } else {
                    rng.random()
                }
            })
            .collect();
        let mut closes = 0;
        for piece in bytes.chunks(rng.random_range(1..50)) {
            h.session.handle_input(h.now, piece);
            let (_, events) = h.drain();
            closes += events
                .iter()
                .filter(|e| matches!(e, XmppEvent::Closed { .. }))
                .count();
        }
        let (_, events) = h.advance(Duration::from_secs(100));
        closes += events
            .iter()
            .filter(|e| matches!(e, XmppEvent::Closed { .. }))
            .count();
        assert!(closes <= 1, "round {round}: {closes} Closed events");
    }
}

#[test]
fn component_handshake_and_stanza_namespace() {
    assert_eq!(
        crate::handshake_digest("3BF96D32", "focussecret"),
        // hashlib.sha1(b"3BF96D32focussecret").hexdigest()
        "e6de9b5e6093d4c2408fafac99a4ea4ca2c26ff5"
    );
    let now = Instant::now();
    let config = ComponentConfig::new("focus.meet.example.com", Secret::new("focussecret".into()));
    for chunk in [1, 7, 4096] {
        let mut session = ComponentSession::new(config.clone(), now, 3);
        let header = String::from_utf8(session.poll_transmit().unwrap()).unwrap();
        assert!(header.contains("xmlns='jabber:component:accept'"));
        assert!(header.contains("to='focus.meet.example.com'"));
        let server = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
            xmlns:stream='http://etherx.jabber.org/streams' id='3BF96D32' \
            from='focus.meet.example.com'><handshake/>\
            <iq type='get' id='c1' from='user@meet.example.com/r' to='focus.meet.example.com'>\
            <conference xmlns='http://jitsi.org/protocol/focus' room='r@conference.meet.example.com'/>\
            </iq>";
        let mut written = String::new();
        let mut events = Vec::new();
        for piece in server.as_bytes().chunks(chunk) {
            session.handle_input(now, piece);
            while let Some(bytes) = session.poll_transmit() {
                written.push_str(&String::from_utf8(bytes).unwrap());
            }
            events.extend(std::iter::from_fn(|| session.poll_event()));
        }
        assert_eq!(
            written,
            "<handshake>e6de9b5e6093d4c2408fafac99a4ea4ca2c26ff5</handshake>"
        );
        let [XmppEvent::Online { jid }, XmppEvent::Stanza(iq)] = events.as_slice() else {
            panic!("expected Online and a stanza: {events:?}")
        };
        assert_eq!(jid.as_str(), "focus.meet.example.com");
        assert!(iq.is("iq", ns::JABBER_CLIENT), "mapped to jabber:client");
        session.send_stanza(stanza::iq_result(iq)).unwrap();
        let reply = String::from_utf8(session.poll_transmit().unwrap()).unwrap();
        assert!(
            !reply.contains("xmlns"),
            "written in the stream's namespace: {reply}"
        );
        assert_eq!(
            parse_sent(&reply, ns::COMPONENT_ACCEPT),
            vec![element(
                "<iq xmlns='jabber:client' type='result' id='c1' to='user@meet.example.com/r' \
                 from='focus.meet.example.com'/>"
            )]
        );
        // `from` is stamped when the application leaves it out.
        session
            .send_stanza(Element::builder("message", ns::JABBER_CLIENT).build())
            .unwrap();
        let message = String::from_utf8(session.poll_transmit().unwrap()).unwrap();
        assert_eq!(message, "<message from='focus.meet.example.com'/>");
    }
}

#[test]
fn component_with_wrong_secret_gets_stream_error() {
    let now = Instant::now();
    let config = ComponentConfig::new("focus.meet.example.com", Secret::new("wrong".into()));
    let mut session = ComponentSession::new(config, now, 3);
    session.handle_input(
        now,
        b"<stream:stream xmlns='jabber:component:accept' \
          xmlns:stream='http://etherx.jabber.org/streams' id='x1'>\
          <stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
          </stream:error></stream:stream>",
    );
    let events: Vec<_> = std::iter::from_fn(|| session.poll_event()).collect();
    let Some(CloseReason::StreamError(error)) = closed(&events) else {
        panic!("expected stream error: {events:?}")
    };
    assert_eq!(error.condition, "not-authorized");
    assert!(session.is_closed());
}

#[test]
fn component_keep_alive_goes_to_the_parent_domain() {
    let now = Instant::now();
    let config = ComponentConfig::new("focus.meet.example.com", Secret::new("s".into()));
    let mut session = ComponentSession::new(config, now, 3);
    session.handle_input(
        now,
        b"<stream:stream xmlns='jabber:component:accept' \
          xmlns:stream='http://etherx.jabber.org/streams' id='x1'><handshake/>",
    );
    while session.poll_transmit().is_some() {}
    let later = now + Duration::from_secs(30);
    session.handle_timeout(later);
    let ping = String::from_utf8(session.poll_transmit().unwrap()).unwrap();
    assert!(
        ping.contains("to='meet.example.com'") && ping.contains("from='focus.meet.example.com'")
    );
    session.handle_timeout(later + Duration::from_secs(10));
    let events: Vec<_> = std::iter::from_fn(|| session.poll_event()).collect();
    assert_eq!(closed(&events), Some(&CloseReason::PingTimeout));
}
