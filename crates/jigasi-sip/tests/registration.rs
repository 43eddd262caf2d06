//! SIP registration against a real Kamailio registrar with digest authentication.
//!
//! The gateway is checked only from the outside: Kamailio must route an OPTIONS for the gateway's
//! address of record to it while it is registered, and answer 404 once it has un-registered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use jigasi_sip::{
    AccountOptions, KeepAliveConfig, KeepAliveMethod, Registrar, RegistrationConfig,
    RegistrationState, SipEndpoint, SipOptions, TlsClientOptions, TlsListen, Transport,
};
use jigasi_testpeers::{Kamailio, KamailioConfig, available, sip_options};
use jigasi_types::Secret;
use tokio::sync::watch;

fn options(registrar: Option<SocketAddr>, password: &str, transport: Transport) -> SipOptions {
    SipOptions {
        bind: "127.0.0.1:0".parse().unwrap(),
        public_address: None,
        tls: None,
        tls_client: TlsClientOptions::default(),
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
            keep_alive: KeepAliveConfig::default(),
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
    let probe = uri.clone();
    let status = tokio::task::spawn_blocking(move || sip_options(addr, &probe))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    // Draining (graceful shutdown): OPTIONS gets what an INVITE would, 503.
    endpoint.drain().await;
    let status = tokio::task::spawn_blocking(move || sip_options(addr, &uri))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 503);
}

/// `options` with a keep-alive.
fn with_keep_alive(
    mut options: SipOptions,
    method: KeepAliveMethod,
    every: Duration,
) -> SipOptions {
    if let Some(account) = options.account.as_mut() {
        account.keep_alive = KeepAliveConfig {
            method,
            interval: Some(every),
        };
    }
    options
}

async fn wait_registered(endpoint: &SipEndpoint, kamailio: &Kamailio) {
    let mut state = endpoint.registration();
    let state = wait_for(&mut state, |s| !matches!(s, RegistrationState::Registering)).await;
    assert!(
        matches!(state, RegistrationState::Registered { .. }),
        "{state:?}; kamailio log:\n{}",
        kamailio.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_keep_alives_reach_the_registrar_at_the_interval() {
    if !available(&["kamailio"]) {
        return;
    }
    let kamailio = Kamailio::start(KamailioConfig::default()).unwrap();
    let options = with_keep_alive(
        options(Some(kamailio.addr()), "secret", Transport::Udp),
        KeepAliveMethod::Options,
        Duration::from_millis(700),
    );
    let endpoint = SipEndpoint::start(options).await.unwrap();
    wait_registered(&endpoint, &kamailio).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let log = kamailio.log();
    // Each keep-alive is an OPTIONS for our own AOR (challenged, then authenticated), relayed
    // by Kamailio to our binding; our 200 travels back through it.
    let keep_alives = log.matches("AUTH ok for jigasi (OPTIONS)").count();
    assert!(
        (2..=5).contains(&keep_alives),
        "{keep_alives} keep-alives in 2.5 s at a 0.7 s interval:\n{log}"
    );
    assert!(
        log.contains("REQ OPTIONS sip:jigasi@127.0.0.1"),
        "no OPTIONS for our AOR:\n{log}"
    );
    assert!(
        log.contains("REPLY 200 OK for OPTIONS"),
        "our answer was not relayed back:\n{log}"
    );
    assert!(endpoint.registration().borrow().is_registered());
    // Only the first REGISTER: the keep-alives found the binding in place.
    assert_eq!(log.matches("REGISTERED sip:jigasi").count(), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrar_restart_is_noticed_and_the_gateway_registers_again() {
    if !available(&["kamailio"]) {
        return;
    }
    let mut kamailio = Kamailio::start(KamailioConfig::default()).unwrap();
    // Refreshes are 90 s apart: only the keep-alive can notice the lost binding in time.
    let options = with_keep_alive(
        options(Some(kamailio.addr()), "secret", Transport::Udp),
        KeepAliveMethod::Options,
        Duration::from_secs(1),
    );
    let endpoint = SipEndpoint::start(options).await.unwrap();
    wait_registered(&endpoint, &kamailio).await;
    let kam = kamailio.addr();
    assert_eq!(options_via_proxy(kam).await, 200);

    tokio::task::block_in_place(|| kamailio.restart()).unwrap();
    let restarted = std::time::Instant::now();
    assert_eq!(
        options_via_proxy(kam).await,
        404,
        "the restarted registrar starts with an empty location table"
    );
    let mut status = 404;
    while restarted.elapsed() < Duration::from_secs(8) && status != 200 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        status = options_via_proxy(kam).await;
    }
    assert_eq!(
        status,
        200,
        "not reachable again {:?} after the restart:\n{}",
        restarted.elapsed(),
        kamailio.log()
    );
    assert!(endpoint.registration().borrow().is_registered());
    assert_eq!(
        kamailio.log().matches("REGISTERED sip:jigasi").count(),
        2,
        "{}",
        kamailio.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_keep_alive_refreshes_every_interval() {
    if !available(&["kamailio"]) {
        return;
    }
    let kamailio = Kamailio::start(KamailioConfig::default()).unwrap();
    let options = with_keep_alive(
        options(Some(kamailio.addr()), "secret", Transport::Tcp),
        KeepAliveMethod::Register,
        Duration::from_millis(600),
    );
    let endpoint = SipEndpoint::start(options).await.unwrap();
    wait_registered(&endpoint, &kamailio).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let log = kamailio.log();
    let registers = log.matches("REGISTERED sip:jigasi").count();
    assert!(
        (3..=6).contains(&registers),
        "{registers} REGISTERs in 2 s at a 0.6 s interval:\n{log}"
    );
    assert_eq!(log.matches("REQ OPTIONS").count(), 0, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_contact_carries_the_public_address() {
    if !available(&["kamailio"]) {
        return;
    }
    let kamailio = Kamailio::start(KamailioConfig::default()).unwrap();
    let mut options = options(Some(kamailio.addr()), "secret", Transport::Udp);
    // A documentation address: the registrar answers to where the packets came from (rport),
    // but stores the address we advertise.
    options.public_address = Some("192.0.2.10:5999".parse().unwrap());
    let endpoint = SipEndpoint::start(options).await.unwrap();
    assert_eq!(
        endpoint.advertised_addr(),
        "192.0.2.10:5999".parse().unwrap()
    );
    wait_registered(&endpoint, &kamailio).await;
    // Kamailio may write its log line just after it sent the 200.
    let mut log = kamailio.log();
    for _ in 0..50 {
        if log.contains("contact <sip:jigasi@") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        log = kamailio.log();
    }
    assert!(
        log.contains("contact <sip:jigasi@192.0.2.10:5999>"),
        "the binding is not the public address:\n{log}"
    );
    assert!(
        !log.contains(&format!(
            "contact <sip:jigasi@127.0.0.1:{}",
            endpoint.local_addr().port()
        )),
        "{log}"
    );
}

/// Makes a self-signed certificate for 127.0.0.1 in `dir`; returns (cert, key).
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=jigasi.test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    (cert, key)
}

fn tls_options(kamailio: &Kamailio, dir: &std::path::Path, client: TlsClientOptions) -> SipOptions {
    let (cert, key) = self_signed(dir);
    let mut options = options(Some(kamailio.tls_addr().unwrap()), "secret", Transport::Tls);
    options.tls = Some(TlsListen {
        bind: "127.0.0.1:0".parse().unwrap(),
        cert_pem_path: cert,
        key_pem_path: key,
    });
    options.tls_client = client;
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_over_tls_and_is_reached_on_the_tls_listener() {
    if !available(&["kamailio", "openssl"]) {
        return;
    }
    let kamailio = Kamailio::start(KamailioConfig {
        tls: true,
        ..KamailioConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = tls_options(
        &kamailio,
        dir.path(),
        TlsClientOptions {
            ca_file: None,
            dangerous_accept_invalid_certs: true,
        },
    );
    let endpoint = SipEndpoint::start(options).await.unwrap();
    let tls_addr = endpoint.tls_addr().unwrap();
    wait_registered(&endpoint, &kamailio).await;
    let log = kamailio.log();
    assert!(log.contains("REQ REGISTER sips:127.0.0.1"), "{log}");
    assert!(
        log.contains("(tls)"),
        "REGISTER did not arrive over TLS:\n{log}"
    );
    assert!(
        log.contains(&format!(
            "contact <sips:jigasi@127.0.0.1:{}",
            tls_addr.port()
        )),
        "the binding is not our TLS listener:\n{log}"
    );
    // Kamailio relays an OPTIONS for our AOR to the binding: a new TLS connection to our
    // listener, answered 200.
    assert_eq!(
        options_via_proxy(kamailio.addr()).await,
        200,
        "{}",
        kamailio.log()
    );
}

fn openssl(args: &[&str], dir: &std::path::Path) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl {args:?}");
}

/// A test CA and a registrar certificate for 127.0.0.1 signed by it, in `dir`: returns the CA
/// file, the leaf certificate and its key.
fn ca_and_leaf(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-days",
        "2",
        "-subj",
        "/CN=jigasi test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&ca, dir);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
    ]);
    openssl(&csr, dir);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
        dir,
    );
    (
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    )
}

async fn first_outcome(endpoint: &SipEndpoint) -> RegistrationState {
    let mut state = endpoint.registration();
    wait_for(&mut state, |s| !matches!(s, RegistrationState::Registering)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_registrar_certificate_is_checked() {
    if !available(&["kamailio", "openssl"]) {
        return;
    }
    let mut kamailio = Kamailio::start(KamailioConfig {
        tls: true,
        ..KamailioConfig::default()
    })
    .unwrap();
    let ca_dir = tempfile::tempdir().unwrap();
    let (ca, leaf, leaf_key) = ca_and_leaf(ca_dir.path());
    let transport_failure = |state: &RegistrationState| {
        matches!(
            state,
            RegistrationState::Retrying {
                last: jigasi_sip::FailureKind::Transport,
                ..
            }
        )
    };

    // Kamailio's self-signed certificate is trusted neither by the platform roots nor by our
    // CA: the handshake fails, nothing is registered, and it counts as a transport failure.
    for ca_file in [None, Some(ca.clone())] {
        let dir = tempfile::tempdir().unwrap();
        let client = TlsClientOptions {
            ca_file,
            dangerous_accept_invalid_certs: false,
        };
        let endpoint = SipEndpoint::start(tls_options(&kamailio, dir.path(), client))
            .await
            .unwrap();
        let state = first_outcome(&endpoint).await;
        assert!(transport_failure(&state), "{state:?}");
        endpoint.shutdown(Duration::from_secs(1)).await;
    }
    assert!(
        !kamailio.log().contains("REQ REGISTER"),
        "{}",
        kamailio.log()
    );

    // The registrar now presents a certificate for 127.0.0.1 signed by our CA: registered.
    std::fs::copy(&leaf, kamailio.dir().join("tls/cert.pem")).unwrap();
    std::fs::copy(&leaf_key, kamailio.dir().join("tls/key.pem")).unwrap();
    tokio::task::block_in_place(|| kamailio.restart()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = TlsClientOptions {
        ca_file: Some(ca),
        dangerous_accept_invalid_certs: false,
    };
    let endpoint = SipEndpoint::start(tls_options(&kamailio, dir.path(), client))
        .await
        .unwrap();
    wait_registered(&endpoint, &kamailio).await;
}

/// A registrar played by a UDP socket: answers the first REGISTER 200, then counts the
/// `CRLFCRLF` keep-alive datagrams arriving within `window`.
fn fake_registrar_counting_pings(socket: std::net::UdpSocket, window: Duration) -> usize {
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let (n, peer) = socket.recv_from(&mut buf).unwrap();
    let request = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(request.starts_with("REGISTER "), "{request}");
    let header = |name: &str| {
        request
            .lines()
            .find(|line| {
                line.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .unwrap_or_else(|| panic!("no {name} in {request}"))
            .to_owned()
    };
    let response = format!(
        "SIP/2.0 200 OK\r\n{}\r\n{}\r\n{};tag=fake\r\n{}\r\n{}\r\n{};expires=120\r\nContent-Length: 0\r\n\r\n",
        header("Via"),
        header("From"),
        header("To"),
        header("Call-ID"),
        header("CSeq"),
        header("Contact"),
    );
    socket.send_to(response.as_bytes(), peer).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let start = std::time::Instant::now();
    let mut pings = 0;
    while start.elapsed() < window {
        if let Ok((n, _)) = socket.recv_from(&mut buf)
            && &buf[..n] == b"\r\n\r\n"
        {
            pings += 1;
        }
    }
    pings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_keep_alives_are_sent_to_the_registrar() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let registrar = socket.local_addr().unwrap();
    let counting = tokio::task::spawn_blocking(move || {
        fake_registrar_counting_pings(socket, Duration::from_millis(1300))
    });
    let options = with_keep_alive(
        options(Some(registrar), "secret", Transport::Udp),
        KeepAliveMethod::Crlf,
        Duration::from_millis(400),
    );
    let endpoint = SipEndpoint::start(options).await.unwrap();
    let pings = counting.await.unwrap();
    assert!(
        (2..=4).contains(&pings),
        "{pings} CRLF keep-alives in 1.3 s at 0.4 s"
    );
    assert_eq!(
        *endpoint.registration().borrow(),
        RegistrationState::Registered {
            expires: Duration::from_secs(120)
        }
    );
}
