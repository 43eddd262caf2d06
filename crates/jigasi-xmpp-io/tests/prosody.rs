//! Real-peer tests against a Jitsi-shaped Prosody on loopback (jigasi-testpeers).
//!
//! Skipped (with a note on stderr) when Prosody is not installed, failed under `CI=true`.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use jigasi_testpeers::{Prosody, ProsodyConfig, available};
use jigasi_types::Secret;
use jigasi_xmpp::brewery::{self, Stats};
use jigasi_xmpp::disco::{self, DiscoInfo};
use jigasi_xmpp::jid::FullJid;
use jigasi_xmpp::minidom::Element;
use jigasi_xmpp::muc::{self, MucPresence};
use jigasi_xmpp::{Auth, ClientConfig, CloseReason, ComponentConfig, TlsPolicy, ns, stanza};
use jigasi_xmpp_io::{
    ConnectError, ConnectOptions, Incoming, XmppEvents, XmppHandle, connect_client,
    connect_component,
};

fn start_prosody() -> Option<Prosody> {
    if !available(&["prosody", "prosodyctl", "openssl"]) {
        return None;
    }
    Some(Prosody::start(ProsodyConfig::default()).unwrap())
}

fn options(addr: SocketAddr, tls_name: &str) -> ConnectOptions {
    ConnectOptions {
        host: addr.ip().to_string(),
        port: addr.port(),
        tls_server_name: tls_name.to_owned(),
        dangerous_accept_invalid_certs: true,
        ca_file: None,
        connect_timeout: Duration::from_secs(10),
    }
}

fn account(prosody: &Prosody, user: &str, password: &str) -> ClientConfig {
    ClientConfig::new(
        prosody.auth_domain(),
        Auth::Password {
            username: user.into(),
            password: Secret::new(password.into()),
        },
    )
}

async fn login(prosody: &Prosody, user: &str, password: &str) -> (XmppHandle, XmppEvents) {
    connect_client(
        options(prosody.c2s_addr(), &prosody.auth_domain()),
        account(prosody, user, password),
    )
    .await
    .unwrap()
}

/// Reads events until `pick` returns `Some`, failing after 5 s or on `Closed`.
async fn wait_for<T>(events: &mut XmppEvents, mut pick: impl FnMut(&Element) -> Option<T>) -> T {
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.next().await {
                Some(Incoming::Stanza(stanza)) => {
                    if let Some(found) = pick(&stanza) {
                        return found;
                    }
                }
                other => panic!("connection ended while waiting: {other:?}"),
            }
        }
    })
    .await;
    found.expect("timed out waiting for a stanza")
}

async fn join(
    handle: &XmppHandle,
    events: &mut XmppEvents,
    occupant: &FullJid,
    extra: Vec<Element>,
) {
    handle
        .send(muc::join_presence(occupant, None, extra))
        .await
        .unwrap();
    wait_for(events, |s| match MucPresence::classify(s) {
        Some(MucPresence::SelfJoined { .. }) => Some(()),
        Some(MucPresence::Error { error, .. }) => panic!("join failed: {error}"),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_login_with_starttls_binds_a_full_jid() {
    let Some(prosody) = start_prosody() else {
        return;
    };
    let (handle, mut events) = login(&prosody, "jigasi", "jigasipw").await;
    let jid = handle.jid().clone();
    assert_eq!(jid.node().map(|n| n.as_str()), Some("jigasi"));
    assert_eq!(jid.domain().as_str(), prosody.auth_domain());
    assert!(jid.resource().is_some(), "bound a full JID: {jid}");
    // Prosody's debug log shows the negotiation: TLS first, then SCRAM-SHA-1.
    let log = prosody.log();
    assert!(log.contains("Stream encrypted (TLS"), "STARTTLS was used");
    assert!(
        log.contains("mechanism='SCRAM-SHA-1'"),
        "SCRAM-SHA-1 was used"
    );
    assert!(log.contains("Authenticated as jigasi@auth.meet.example.com"));
    // Server ping answered by us is invisible; our own ping to the server works.
    let pong = handle
        .send_iq(stanza::ping(None), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(pong.attr("type"), Some("result"));
    handle.close().await;
    let closed = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap();
    assert_eq!(closed, Some(Incoming::Closed(CloseReason::Requested)));
    assert_eq!(events.next().await, None, "exactly one Closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_login_without_tls() {
    let Some(prosody) = start_prosody() else {
        return;
    };
    let config = ClientConfig::new(prosody.domain(), Auth::Anonymous)
        .with_tls(TlsPolicy::Disabled)
        .with_resource("d3adb33f");
    let (handle, _events) = connect_client(options(prosody.c2s_addr(), prosody.domain()), config)
        .await
        .unwrap();
    let jid = handle.jid();
    assert_eq!(jid.domain().as_str(), prosody.domain());
    assert!(jid.node().is_some(), "server-assigned local part");
    assert_eq!(jid.resource().map(|r| r.as_str()), Some("d3adb33f"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_a_typed_auth_error() {
    let Some(prosody) = start_prosody() else {
        return;
    };
    let result = connect_client(
        options(prosody.c2s_addr(), &prosody.auth_domain()),
        account(&prosody, "jigasi", "wrong"),
    )
    .await;
    match result {
        Err(ConnectError::AuthRejected(failure)) => assert_eq!(failure.condition, "not-authorized"),
        other => panic!("expected an auth error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brewery_stats_reach_a_second_occupant_and_disco_works() {
    let Some(prosody) = start_prosody() else {
        return;
    };
    let (jigasi, mut jigasi_events) = login(&prosody, "jigasi", "jigasipw").await;
    let (focus, mut focus_events) = login(&prosody, "focus", "focuspw").await;

    let nick = jigasi.jid().resource().unwrap().as_str().to_owned();
    let brewery_jid = prosody.brewery_jid();
    let jigasi_occupant = FullJid::new(&format!("{brewery_jid}/{nick}")).unwrap();
    let focus_occupant = FullJid::new(&format!("{brewery_jid}/focus")).unwrap();
    let info = DiscoInfo::jigasi();
    let caps = info.caps_element(disco::JITSI_CAPS_NODE);

    join(
        &jigasi,
        &mut jigasi_events,
        &jigasi_occupant,
        vec![caps.clone()],
    )
    .await;
    join(&focus, &mut focus_events, &focus_occupant, vec![]).await;

    let stats = Stats {
        conferences: 2,
        participants: 5,
        graceful_shutdown: false,
        stress_level: 0.02,
        region: Some("us-east-1".into()),
        version: "0.1.0".into(),
        supports_transcription: false,
        supports_sip: true,
    };
    jigasi
        .send(brewery::stats_presence(&jigasi_occupant, &stats, caps))
        .await
        .unwrap();
    let seen = wait_for(&mut focus_events, |s| match MucPresence::classify(s) {
        Some(MucPresence::OccupantAvailable {
            occupant, presence, ..
        }) if occupant.resource().as_str() == nick => Stats::from_presence(&presence).unwrap(),
        _ => None,
    })
    .await;
    assert_eq!(seen, stats);

    // disco#info to the MUC service.
    let result = jigasi
        .send_iq(
            disco::info_request(&prosody.muc_domain()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let muc_info = DiscoInfo::from_result(&result).unwrap();
    assert!(
        muc_info.features.iter().any(|f| f == ns::MUC),
        "{muc_info:?}"
    );
    assert!(
        muc_info
            .identities
            .iter()
            .any(|i| i.category == "conference")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_connects_and_answers_client_iqs() {
    let Some(prosody) = start_prosody() else {
        return;
    };
    let domain = prosody.focus_component_domain();
    let config = ComponentConfig::new(
        domain.clone(),
        Secret::new(prosody.component_secret().into()),
    );
    let (component, mut component_events) =
        connect_component(options(prosody.component_addr(), &domain), config)
            .await
            .unwrap();
    assert_eq!(component.jid().as_str(), domain);

    let (client, _client_events) = login(&prosody, "jigasi", "jigasipw").await;
    let request = stanza::iq(
        "get",
        Some(&domain),
        Element::bare("conference", "http://jitsi.org/protocol/focus"),
    );
    let asked = tokio::spawn(async move { client.send_iq(request, Duration::from_secs(5)).await });
    let iq = wait_for(&mut component_events, |s| {
        stanza::is_iq_request(s).then(|| s.clone())
    })
    .await;
    assert!(iq.has_child("conference", "http://jitsi.org/protocol/focus"));
    component.send(stanza::iq_result(&iq)).await.unwrap();
    let answer = asked.await.unwrap().unwrap();
    assert_eq!(answer.attr("type"), Some("result"));

    let wrong = ComponentConfig::new(domain.clone(), Secret::new("wrong".into()));
    match connect_component(options(prosody.component_addr(), &domain), wrong).await {
        Err(ConnectError::StreamError(error)) => assert_eq!(error.condition, "not-authorized"),
        other => panic!("expected a stream error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stop_is_reported_as_closed() {
    let Some(mut prosody) = start_prosody() else {
        return;
    };
    let (handle, mut events) = login(&prosody, "jigasi", "jigasipw").await;
    tokio::task::block_in_place(|| prosody.stop());
    let closed = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("a disconnect must not be silent");
    assert!(matches!(closed, Some(Incoming::Closed(_))), "{closed:?}");
    assert_eq!(events.next().await, None);
    assert!(matches!(
        handle
            .send(Element::bare("presence", ns::JABBER_CLIENT))
            .await,
        Err(jigasi_xmpp_io::HandleError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_is_a_tls_error() {
    let Some(prosody) = start_prosody() else {
        return;
    };
    // Trust only the main domain's self-signed certificate while talking to the auth host.
    let mut options = options(prosody.c2s_addr(), &prosody.auth_domain());
    options.dangerous_accept_invalid_certs = false;
    options.ca_file = Some(prosody.certificate(prosody.domain()));
    match connect_client(options, account(&prosody, "jigasi", "jigasipw")).await {
        Err(ConnectError::Tls(_)) => {}
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn refused_port_is_a_typed_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config =
        ClientConfig::new("meet.example.com", Auth::Anonymous).with_tls(TlsPolicy::Disabled);
    match connect_client(options(addr, "meet.example.com"), config).await {
        Err(ConnectError::Refused { addr: refused }) => assert_eq!(refused, addr.to_string()),
        other => panic!("expected refused, got {other:?}"),
    }
}
