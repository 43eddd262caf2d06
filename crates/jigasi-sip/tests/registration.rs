//! SIP registration against a real Kamailio registrar with digest authentication.
//!
//! The gateway is checked only from the outside: Kamailio must route an OPTIONS for the gateway's
//! address of record to it while it is registered, and answer 404 once it has un-registered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use jigasi_sip::{
    AccountOptions, Registrar, RegistrationConfig, RegistrationState, SipEndpoint, SipOptions,
    Transport,
};
use jigasi_testpeers::{Kamailio, KamailioConfig, available, sip_options};
use jigasi_types::Secret;
use tokio::sync::watch;

fn options(registrar: Option<SocketAddr>, password: &str, transport: Transport) -> SipOptions {
    SipOptions {
        bind: "127.0.0.1:0".parse().unwrap(),
        public_address: None,
        user_agent: "jigasi-rs-test".into(),
        account: Some(AccountOptions {
            user: "jigasi".into(),
            domain: "127.0.0.1".into(),
            password: Some(Secret::new(password.into())),
            auth_username: None,
            registrar: registrar.map(|addr| Registrar {
                host: addr.ip().to_string(),
                port: addr.port(),
                transport,
            }),
            registration: RegistrationConfig {
                requested_expiry: Duration::from_secs(120),
                ..RegistrationConfig::default()
            },
        }),
    }
}

/// Waits until the registration state satisfies `done`, returning that state.
async fn wait_for(
    rx: &mut watch::Receiver<RegistrationState>,
    done: impl Fn(&RegistrationState) -> bool,
) -> RegistrationState {
    let result = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let state = *rx.borrow_and_update();
            if done(&state) {
                return state;
            }
            rx.changed().await.expect("registration task ended");
        }
    })
    .await;
    result.unwrap_or_else(|_| panic!("registration state stayed {:?}", *rx.borrow()))
}

/// OPTIONS for the gateway's address of record, sent through the registrar: 200 from the
/// gateway while it is registered, 404 from Kamailio otherwise.
async fn options_via_proxy(kamailio: SocketAddr) -> u16 {
    tokio::task::spawn_blocking(move || sip_options(kamailio, "sip:jigasi@127.0.0.1"))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_digest_and_unregisters_on_shutdown() {
    if !available(&["kamailio"]) {
        return;
    }
    let kamailio = Kamailio::start(KamailioConfig::default()).unwrap();
    let endpoint = SipEndpoint::start(options(Some(kamailio.addr()), "secret", Transport::Udp))
        .await
        .unwrap();
    let mut state = endpoint.registration();
    let registered = wait_for(&mut state, |s| !matches!(s, RegistrationState::Registering)).await;
    assert_eq!(
        registered,
        RegistrationState::Registered {
            expires: Duration::from_secs(120)
        },
        "kamailio log:\n{}",
        kamailio.log()
    );
    let kam = kamailio.addr();
    let status = options_via_proxy(kam).await;
    assert_eq!(
        status, 200,
        "the registered gateway answers OPTIONS routed by the registrar"
    );

    endpoint.shutdown(Duration::from_secs(3)).await;
    assert_eq!(*state.borrow(), RegistrationState::Unregistered);
    let status = options_via_proxy(kam).await;
    assert_eq!(
        status, 404,
        "after un-REGISTER the registrar has no binding"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_ends_in_rejected_state() {
    if !available(&["kamailio"]) {
        return;
    }
    let kamailio = Kamailio::start(KamailioConfig::default()).unwrap();
    let endpoint = SipEndpoint::start(options(Some(kamailio.addr()), "wrong", Transport::Udp))
        .await
        .unwrap();
    let mut state = endpoint.registration();
    let state = wait_for(&mut state, |s| !matches!(s, RegistrationState::Registering)).await;
    assert_eq!(state, RegistrationState::Rejected { status: 401 });
    // No tight loop: the registrar saw one challenged attempt and one answer, nothing more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let registers = kamailio.log().matches("REQ REGISTER").count();
    assert_eq!(registers, 2, "kamailio log:\n{}", kamailio.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_over_tcp() {
    if !available(&["kamailio"]) {
        return;
    }
    let kamailio = Kamailio::start(KamailioConfig::default()).unwrap();
    let endpoint = SipEndpoint::start(options(Some(kamailio.addr()), "secret", Transport::Tcp))
        .await
        .unwrap();
    let mut state = endpoint.registration();
    let state = wait_for(&mut state, |s| !matches!(s, RegistrationState::Registering)).await;
    assert!(
        matches!(state, RegistrationState::Registered { .. }),
        "{state:?}; kamailio log:\n{}",
        kamailio.log()
    );
    assert!(
        kamailio.log().contains("(tcp)"),
        "REGISTER did not arrive over TCP:\n{}",
        kamailio.log()
    );
}

#[tokio::test]
async fn registrar_less_account_is_ready_at_once_and_answers_options() {
    let endpoint = SipEndpoint::start(options(None, "secret", Transport::Udp))
        .await
        .unwrap();
    assert_eq!(
        *endpoint.registration().borrow(),
        RegistrationState::NotRequired
    );
    // OPTIONS straight to the gateway gets 200.
    let addr = endpoint.local_addr();
    let uri = format!("sip:jigasi@{addr}");
    let status = tokio::task::spawn_blocking(move || sip_options(addr, &uri))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}
