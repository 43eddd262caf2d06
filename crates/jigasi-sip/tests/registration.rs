//! SIP registration against a real Kamailio registrar with digest authentication.
//!
//! The gateway is checked only from the outside: Kamailio must route an OPTIONS for the gateway's
//! address of record to it while it is registered, and answer 404 once it has un-registered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use jigasi_sip::{
    AccountOptions, Registrar, RegistrationConfig, RegistrationState, SipEndpoint, SipOptions,
    Transport,
};
use jigasi_testpeers::{Kamailio, KamailioConfig, available};
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

/// Sends an out-of-dialog OPTIONS for `jigasi@127.0.0.1` to Kamailio from a foreign domain (so
/// Kamailio does not challenge it) and returns the status code of the final answer.
fn options_via_proxy(kamailio: SocketAddr) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    let request = format!(
        "OPTIONS sip:jigasi@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-probe-{lport};rport\r\n\
         From: <sip:probe@other.test>;tag=probe{lport}\r\n\
         To: <sip:jigasi@127.0.0.1>\r\n\
         Call-ID: probe-{lport}@other.test\r\n\
         CSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        port = kamailio.port(),
        lport = local.port(),
    );
    socket.send_to(request.as_bytes(), kamailio).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let (n, _) = socket.recv_from(&mut buf).expect("no answer to OPTIONS");
        let text = String::from_utf8_lossy(&buf[..n]);
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("not a SIP response");
        if status >= 200 {
            return status;
        }
    }
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
    let status = tokio::task::spawn_blocking(move || options_via_proxy(kam))
        .await
        .unwrap();
    assert_eq!(
        status, 200,
        "the registered gateway answers OPTIONS routed by the registrar"
    );

    endpoint.shutdown(Duration::from_secs(3)).await;
    assert_eq!(*state.borrow(), RegistrationState::Unregistered);
    let status = tokio::task::spawn_blocking(move || options_via_proxy(kam))
        .await
        .unwrap();
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
    let status = tokio::task::spawn_blocking(move || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let local = socket.local_addr().unwrap();
        let request = format!(
            "OPTIONS sip:jigasi@{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-direct\r\n\
             From: <sip:probe@other.test>;tag=1\r\nTo: <sip:jigasi@{addr}>\r\nCall-ID: direct@x\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        socket.send_to(request.as_bytes(), addr).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = socket.recv_from(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned()
    })
    .await
    .unwrap();
    assert_eq!(status, "SIP/2.0 200 OK");
}
