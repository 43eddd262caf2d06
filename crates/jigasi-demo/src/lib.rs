//! The jigasi-rs demo and end-to-end harness.
//!
//! Starts a Jitsi-shaped Prosody and a Kamailio registrar on loopback (through
//! `jigasi-testpeers`), writes a Jigasi-style `sip-communicator.properties` for them, runs the
//! real `jigasi-rs` binary with Jigasi's command-line flags, and checks it only from the outside:
//! Kamailio must route SIP to it, and an XMPP observer in the brewery room (where Jicofo would
//! sit) must see its `<stats>` presence.
//!
//! Used by the `jigasi-demo` binary (the README's demo command) and by the end-to-end tests of
//! the `jigasi-rs` crate.

// The harness picks single events out of long event enums.
#![allow(clippy::wildcard_enum_match_arm)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use jigasi_testpeers::{
    Kamailio, KamailioConfig, PeerError, Prosody, ProsodyConfig, free_port, sip_options,
};
use jigasi_types::Secret;
use jigasi_xmpp::brewery::Stats;
use jigasi_xmpp::jid::FullJid;
use jigasi_xmpp::muc::{self, MucPresence};
use jigasi_xmpp::{Auth, ClientConfig, TlsPolicy};
use jigasi_xmpp_io::{ConnectOptions, Incoming, XmppEvents, XmppHandle, connect_client};

/// SIP account of the gateway at the Kamailio registrar (the testpeers default users).
pub const SIP_USER: &str = "jigasi";
/// Its digest password.
pub const SIP_PASSWORD: &str = "secret";
/// The gateway's brewery XMPP account (on `auth.<domain>`) and password.
pub const XMPP_USER: &str = "jigasi";
/// Its password.
pub const XMPP_PASSWORD: &str = "jigasipw";
/// The conference the demo's calls go to.
pub const DEMO_ROOM: &str = "demo";
/// The log line the gateway prints once it is registered and in every brewery.
pub const READY_LINE: &str = "gateway ready";

/// Why the demo or a check failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A peer (Prosody, Kamailio) could not be started or misbehaved.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// Local I/O of the harness failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The gateway did not do what was expected in time.
    #[error("{0}")]
    Expectation(String),
    /// The XMPP observer could not connect or lost its connection.
    #[error("XMPP observer: {0}")]
    Observer(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let context = context.into();
    move |source| DemoError::Io { context, source }
}

/// Prosody + Kamailio on loopback and a config directory for the gateway.
pub struct Deployment {
    /// Declared before Kamailio so it is stopped first (Prosody has no dependency on it; the
    /// order only matters for SIP user agents, which must go before their registrar).
    pub prosody: Prosody,
    /// The registrar / proxy.
    pub kamailio: Kamailio,
    /// Port the gateway's SIP listeners use.
    pub sip_port: u16,
    /// Port of the gateway's REST API (127.0.0.1).
    pub rest_port: u16,
    dir: tempfile::TempDir,
}

impl Deployment {
    /// Starts Prosody (domain `meet.example.com`) and Kamailio (users of the testpeers
    /// defaults), and writes the gateway's configuration.
    pub fn start() -> Result<Self, DemoError> {
        let prosody = Prosody::start(ProsodyConfig::default())?;
        // Like a PBX in front of Jigasi, Kamailio tells the gateway which room a call is for.
        let kamailio = Kamailio::start(KamailioConfig {
            extra_route: Some(format!(
                "if ($rU == \"{SIP_USER}\") {{ append_hf(\"Jitsi-Conference-Room: {DEMO_ROOM}@conference.{}\\r\\n\"); }}",
                prosody.domain()
            )),
            ..KamailioConfig::default()
        })?;
        let dir = tempfile::Builder::new()
            .prefix("jigasi-demo-")
            .tempdir()
            .map_err(io("cannot create the demo directory"))?;
        let deployment = Self {
            prosody,
            kamailio,
            sip_port: free_port(),
            rest_port: free_port(),
            dir,
        };
        deployment.write_properties()?;
        Ok(deployment)
    }

    /// The directory passed as `--configdir` (holds `jigasi-home/sip-communicator.properties`).
    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The gateway's REST API address.
    pub fn rest_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.rest_port))
    }

    /// The directory passed as `--logdir`; the gateway writes `jigasi-rs.log` there.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    /// The properties file the gateway reads.
    pub fn properties_path(&self) -> PathBuf {
        self.dir
            .path()
            .join("jigasi-home")
            .join("sip-communicator.properties")
    }

    /// The command line, exactly as Jigasi's Debian service passes it (plus the port range).
    pub fn gateway_args(&self) -> Vec<String> {
        vec![
            format!("--configdir={}", self.config_dir().display()),
            "--configdirname=jigasi-home".into(),
            format!("--domain={}", self.prosody.domain()),
            "--host=127.0.0.1".into(),
            "--min-port=20000".into(),
            "--max-port=20100".into(),
            format!("--logdir={}", self.log_dir().display()),
        ]
    }

    /// Writes a Jigasi-style `sip-communicator.properties`: one SIP account registering at
    /// Kamailio, one brewery account on Prosody. Base64 passwords, as Jigasi stores them.
    fn write_properties(&self) -> Result<(), DemoError> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let kamailio = self.kamailio.addr();
        let c2s = self.prosody.c2s_addr();
        let domain = self.prosody.domain();
        let auth = self.prosody.auth_domain();
        let sip = "net.java.sip.communicator.impl.protocol.sip";
        let xmpp = "net.java.sip.communicator.impl.protocol.jabber";
        let text = format!(
            "# Written by jigasi-demo: a Jigasi-style configuration for a loopback deployment.\n\
             net.java.sip.communicator.SIP_PREFERRED_CLEAR_PORT={sip_port}\n\
             net.java.sip.communicator.impl.protocol.sip.REGISTRATION_EXPIRATION=300\n\
             org.jitsi.jigasi.rest.jetty.port={rest_port}\n\
             org.jitsi.jigasi.ENABLE_REST_SHUTDOWN=true\n\
             {sip}.acc1=acc1\n\
             {sip}.acc1.ACCOUNT_UID=SIP\\:{SIP_USER}@{reg_host}\n\
             {sip}.acc1.USER_ID={SIP_USER}@{reg_host}\n\
             {sip}.acc1.PASSWORD={sip_pw}\n\
             {sip}.acc1.PROTOCOL_NAME=SIP\n\
             {sip}.acc1.SERVER_ADDRESS={reg_host}\n\
             {sip}.acc1.SERVER_PORT={reg_port}\n\
             {sip}.acc1.PREFERRED_TRANSPORT=UDP\n\
             {sip}.acc1.KEEP_ALIVE_METHOD=OPTIONS\n\
             {sip}.acc1.KEEP_ALIVE_INTERVAL=25\n\
             {sip}.acc1.DOMAIN_BASE={domain}\n\
             {xmpp}.acc-xmpp-1=acc-xmpp-1\n\
             {xmpp}.acc-xmpp-1.ACCOUNT_UID=Jabber\\:{XMPP_USER}@{auth}\n\
             {xmpp}.acc-xmpp-1.USER_ID={XMPP_USER}@{auth}\n\
             {xmpp}.acc-xmpp-1.PASSWORD={xmpp_pw}\n\
             {xmpp}.acc-xmpp-1.IS_SERVER_OVERRIDDEN=true\n\
             {xmpp}.acc-xmpp-1.SERVER_ADDRESS={c2s_host}\n\
             {xmpp}.acc-xmpp-1.SERVER_PORT={c2s_port}\n\
             {xmpp}.acc-xmpp-1.ALLOW_NON_SECURE=true\n\
             {xmpp}.acc-xmpp-1.BREWERY=JigasiBrewery@internal.{auth}\n\
             {xmpp}.acc-xmpp-1.DOMAIN_BASE={domain}\n\
             org.jitsi.jigasi.ALLOWED_JID=JigasiBrewery@internal.{auth}\n\
             org.jitsi.jigasi.xmpp.acc.IS_SERVER_OVERRIDDEN=true\n\
             org.jitsi.jigasi.xmpp.acc.SERVER_ADDRESS={c2s_host}\n\
             org.jitsi.jigasi.xmpp.acc.SERVER_PORT={c2s_port}\n\
             org.jitsi.jigasi.xmpp.acc.ANONYMOUS_AUTH=true\n\
             org.jitsi.jigasi.xmpp.acc.ALLOW_NON_SECURE=true\n\
             org.jitsi.jigasi.xmpp.acc.DOMAIN_BASE={domain}\n",
            sip_port = self.sip_port,
            rest_port = self.rest_port,
            reg_host = kamailio.ip(),
            reg_port = kamailio.port(),
            sip_pw = b64(SIP_PASSWORD),
            xmpp_pw = b64(XMPP_PASSWORD),
            c2s_host = c2s.ip(),
            c2s_port = c2s.port(),
        );
        let path = self.properties_path();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io("cannot create jigasi-home"))?;
        }
        std::fs::write(&path, text).map_err(io(format!("cannot write {}", path.display())))
    }
}

/// The `jigasi-rs` binary, running, with its log captured line by line.
pub struct GatewayProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    echo: bool,
}

impl GatewayProcess {
    /// Starts `binary` with `args`. With `echo`, every log line is also printed to stderr
    /// prefixed with `gateway |` (for the demo).
    pub fn spawn(binary: &Path, args: &[String], echo: bool) -> Result<Self, DemoError> {
        let mut child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io(format!("cannot start {}", binary.display())))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| DemoError::Expectation("gateway stderr not captured".into()))?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Self {
            child,
            lines,
            seen: Vec::new(),
            echo,
        })
    }

    /// Waits for a log line containing `needle` and returns it.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> Result<String, DemoError> {
        let deadline = Instant::now() + timeout;
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return Ok(line.clone());
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.record(line.clone());
                    if found {
                        return Ok(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(DemoError::Expectation(format!(
                        "no log line containing {needle:?} within {timeout:?}; log so far:\n{}",
                        self.log()
                    )));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(DemoError::Expectation(format!(
                        "the gateway exited before logging {needle:?}; log:\n{}",
                        self.log()
                    )));
                }
            }
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, DemoError> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(io("cannot run kill"))?;
        self.wait(timeout)
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, DemoError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain();
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(io("cannot wait for the gateway"))?
            {
                // Collect the last lines the reader thread got.
                std::thread::sleep(Duration::from_millis(50));
                self.drain();
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(DemoError::Expectation(format!(
                    "the gateway did not exit within {timeout:?}; log:\n{}",
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the gateway logged so far.
    pub fn log(&mut self) -> String {
        self.drain();
        self.seen.join("\n")
    }

    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.record(line);
        }
    }

    fn record(&mut self, line: String) {
        if self.echo {
            eprintln!("  gateway | {line}");
        }
        self.seen.push(line);
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends an out-of-dialog OPTIONS for `user@<registrar host>` through the registrar / proxy and
/// returns the final status code. While the gateway is registered, Kamailio relays it to the
/// gateway, which answers 200; otherwise Kamailio answers 404 itself.
pub fn options_via_registrar(registrar: SocketAddr, user: &str) -> Result<u16, DemoError> {
    let uri = format!("sip:{user}@{}:{}", registrar.ip(), registrar.port());
    Ok(sip_options(registrar, &uri)?)
}

/// One plain HTTP/1.1 request to `addr`; returns the status code and the body.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> Result<(u16, String), DemoError> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(io(format!("cannot connect to {addr}")))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io("set HTTP timeout"))?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(io("send HTTP request"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(io("read HTTP response"))?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| DemoError::Expectation(format!("not an HTTP response: {head}")))?;
    Ok((status, body.to_owned()))
}

/// An XMPP client sitting in the brewery room where Jicofo would be (`focus@auth…`), watching the
/// gateway's presence.
pub struct BreweryObserver {
    handle: XmppHandle,
    events: XmppEvents,
}

impl BreweryObserver {
    /// Logs in as `focus@auth.<domain>` and joins the brewery as `focus`.
    pub async fn join(prosody: &Prosody) -> Result<Self, DemoError> {
        let c2s = prosody.c2s_addr();
        let mut options = ConnectOptions::new(c2s.ip().to_string(), c2s.port());
        options.tls_server_name = prosody.auth_domain();
        options.dangerous_accept_invalid_certs = true;
        let config = ClientConfig::new(
            prosody.auth_domain(),
            Auth::Password {
                username: "focus".into(),
                password: Secret::new("focuspw".into()),
            },
        )
        .with_tls(TlsPolicy::IfOffered);
        let (handle, events) = connect_client(options, config)
            .await
            .map_err(|e| DemoError::Observer(e.to_string()))?;
        let room = FullJid::new(&format!("{}/focus", prosody.brewery_jid()))
            .map_err(|e| DemoError::Observer(e.to_string()))?;
        handle
            .send(muc::join_presence(&room, None, Vec::new()))
            .await
            .map_err(|e| DemoError::Observer(e.to_string()))?;
        Ok(Self { handle, events })
    }

    /// Waits for a `<stats>` presence from an occupant other than `focus` for which `accept`
    /// is true; returns the occupant's nick and the stats.
    pub async fn wait_for_stats(
        &mut self,
        accept: impl Fn(&Stats) -> bool,
        timeout: Duration,
    ) -> Result<(String, Stats), DemoError> {
        self.wait(timeout, "a matching <stats> presence", |presence| {
            let from = presence.attr("from")?;
            let nick = from.split_once('/')?.1;
            if nick == "focus" {
                return None;
            }
            let stats = Stats::from_presence(presence).ok()??;
            accept(&stats).then(|| (nick.to_owned(), stats))
        })
        .await
    }

    /// Waits until occupant `nick` leaves the brewery.
    pub async fn wait_for_leave(&mut self, nick: &str, timeout: Duration) -> Result<(), DemoError> {
        self.wait(timeout, "the gateway leaving the brewery", |presence| {
            match MucPresence::classify(presence)? {
                MucPresence::OccupantLeft { occupant } => {
                    (occupant.resource().as_str() == nick).then_some(())
                }
                MucPresence::SelfJoined { .. }
                | MucPresence::OccupantAvailable { .. }
                | MucPresence::SelfLeft { .. }
                | MucPresence::Kicked { .. }
                | MucPresence::RoomDestroyed { .. }
                | MucPresence::Error { .. } => None,
            }
        })
        .await
    }

    /// Leaves and closes the connection.
    pub async fn close(self) {
        self.handle.close().await;
    }

    async fn wait<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        pick: impl Fn(&jigasi_xmpp::minidom::Element) -> Option<T>,
    ) -> Result<T, DemoError> {
        let result = tokio::time::timeout(timeout, async {
            loop {
                match self.events.next().await {
                    Some(Incoming::Stanza(stanza)) => {
                        if let Some(found) = pick(&stanza) {
                            return Ok(found);
                        }
                    }
                    Some(Incoming::Closed(reason)) => {
                        return Err(DemoError::Observer(format!("connection closed: {reason}")));
                    }
                    None => return Err(DemoError::Observer("connection ended".into())),
                }
            }
        })
        .await;
        result.unwrap_or_else(|_| {
            Err(DemoError::Expectation(format!(
                "the brewery observer did not see {what} within {timeout:?}"
            )))
        })
    }
}

/// Finds the `jigasi-rs` binary: `$JIGASI_RS_BIN`, else next to the running executable (cargo
/// puts all binaries of a workspace in the same `target/<profile>/` directory).
pub fn gateway_binary() -> Result<PathBuf, DemoError> {
    if let Some(path) = std::env::var_os("JIGASI_RS_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(io("cannot locate the running executable"))?;
    let dir = exe
        .parent()
        .ok_or_else(|| DemoError::Expectation("executable has no directory".into()))?;
    [dir.join("jigasi-rs"), dir.join("../jigasi-rs")]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            DemoError::Expectation(format!(
                "jigasi-rs binary not found next to {}; build it or set JIGASI_RS_BIN",
                exe.display()
            ))
        })
}

/// What [`startup_scenario`] observed.
#[derive(Debug, Clone)]
pub struct StartupReport {
    /// Where the gateway's configuration was.
    pub properties: PathBuf,
    /// From process start to the "gateway ready" log line.
    pub ready_after: Duration,
    /// The gateway's nick in the brewery room.
    pub brewery_nick: String,
    /// The stats it published after start.
    pub stats: Stats,
    /// `GET /about/health` while running: status and body.
    pub health: (u16, String),
    /// `GET /about/stats` while running (JSON).
    pub stats_json: String,
    /// Status of an OPTIONS for the gateway's AOR sent through the registrar while running.
    pub options_while_running: u16,
    /// From SIGTERM to exit.
    pub stopped_after: Duration,
    /// The exit status.
    pub exit: ExitStatus,
    /// Whether `graceful_shutdown=true` was published before leaving the brewery.
    pub graceful_shutdown_published: bool,
    /// Status of the same OPTIONS after the gateway stopped.
    pub options_after_stop: u16,
    /// Everything the gateway logged to stderr.
    pub log: String,
    /// The contents of `<logdir>/jigasi-rs.log` after the gateway stopped.
    pub log_file: String,
}

/// The demo scenario: start Prosody and Kamailio, run the gateway, check it from the outside
/// (brewery stats presence, OPTIONS routed by the registrar), SIGTERM it and check it left the
/// brewery and removed its registration. With `echo` the gateway's log and progress are printed.
pub async fn startup_scenario(binary: &Path, echo: bool) -> Result<StartupReport, DemoError> {
    let say = |text: String| {
        if echo {
            eprintln!("{text}");
        }
    };
    let deployment = Deployment::start()?;
    say(format!(
        "Prosody   c2s {} (domain {})",
        deployment.prosody.c2s_addr(),
        deployment.prosody.domain()
    ));
    say(format!(
        "Kamailio  registrar {} (digest auth)",
        deployment.kamailio.addr()
    ));
    say(format!(
        "config    {}",
        deployment.properties_path().display()
    ));
    let mut observer = BreweryObserver::join(&deployment.prosody).await?;
    say(format!(
        "observer  focus@{} in {} (where Jicofo looks for gateways)",
        deployment.prosody.auth_domain(),
        deployment.prosody.brewery_jid()
    ));

    let args = deployment.gateway_args();
    say(format!("\n$ {} {}", binary.display(), args.join(" ")));
    let started = Instant::now();
    let mut gateway = GatewayProcess::spawn(binary, &args, echo)?;
    gateway.wait_for_line(READY_LINE, Duration::from_secs(20))?;
    let ready_after = started.elapsed();

    let (brewery_nick, stats) = observer
        .wait_for_stats(
            |s| s.supports_sip && !s.graceful_shutdown,
            Duration::from_secs(5),
        )
        .await?;
    let rest = deployment.rest_addr();
    let (health, stats_json) = tokio::task::spawn_blocking(move || {
        let health = http_request(rest, "GET", "/about/health")?;
        let (_, stats) = http_request(rest, "GET", "/about/stats")?;
        Ok::<_, DemoError>((health, stats))
    })
    .await
    .map_err(|e| DemoError::Expectation(e.to_string()))??;
    let registrar = deployment.kamailio.addr();
    let options_while_running =
        tokio::task::spawn_blocking(move || options_via_registrar(registrar, SIP_USER))
            .await
            .map_err(|e| DemoError::Expectation(e.to_string()))??;

    let stopping = Instant::now();
    let exit = gateway.terminate(Duration::from_secs(10))?;
    let stopped_after = stopping.elapsed();
    let graceful_shutdown_published = observer
        .wait_for_stats(|s| s.graceful_shutdown, Duration::from_secs(5))
        .await
        .is_ok();
    observer
        .wait_for_leave(&brewery_nick, Duration::from_secs(5))
        .await?;
    let options_after_stop =
        tokio::task::spawn_blocking(move || options_via_registrar(registrar, SIP_USER))
            .await
            .map_err(|e| DemoError::Expectation(e.to_string()))??;
    observer.close().await;
    Ok(StartupReport {
        properties: deployment.properties_path(),
        ready_after,
        brewery_nick,
        stats,
        health,
        stats_json,
        options_while_running,
        stopped_after,
        exit,
        graceful_shutdown_published,
        options_after_stop,
        log: gateway.log(),
        log_file: std::fs::read_to_string(deployment.log_dir().join("jigasi-rs.log"))
            .unwrap_or_default(),
    })
}

/// Starts the Jicofo + JVB stand-in on the deployment's Prosody with the demo conference and one
/// simulated web participant playing `participant_tone` Hz.
pub async fn start_standin(
    deployment: &Deployment,
    participant_tone: f64,
) -> Result<jigasi_standin::StandIn, DemoError> {
    let prosody = &deployment.prosody;
    let config = jigasi_standin::StandInConfig::new(
        prosody.c2s_addr(),
        prosody.component_addr(),
        prosody.domain(),
        Secret::new(prosody.component_secret().to_owned()),
        Secret::new("focuspw".to_owned()),
    );
    let standin = jigasi_standin::StandIn::start(config)
        .await
        .map_err(|e| DemoError::Expectation(format!("stand-in: {e}")))?;
    standin
        .create_conference(DEMO_ROOM)
        .await
        .map_err(|e| DemoError::Expectation(format!("stand-in conference: {e}")))?;
    standin
        .add_participant(
            DEMO_ROOM,
            "web1",
            jigasi_standin::AudioSource::Tone(participant_tone),
        )
        .await
        .map_err(|e| DemoError::Expectation(format!("stand-in participant: {e}")))?;
    Ok(standin)
}

/// The nick (endpoint id) the gateway joined the demo room with, from the stand-in's log.
pub async fn gateway_nick(
    standin: &jigasi_standin::StandIn,
    timeout: Duration,
) -> Result<String, DemoError> {
    standin
        .wait_for(timeout, |event| match event {
            jigasi_standin::StandInEvent::SessionInitiated { nick, .. } => Some(nick.clone()),
            _ => None,
        })
        .await
        .ok_or_else(|| DemoError::Expectation("the gateway never got a session-initiate".into()))
}

/// What [`dial_in_scenario`] measured.
#[derive(Debug, Clone)]
pub struct CallReport {
    /// From dialling to the call being established at the phone.
    pub setup: Duration,
    /// Dominant frequency the conference heard from the phone.
    pub conference_heard_hz: Option<f64>,
    /// Seconds of audio the conference received from the gateway.
    pub conference_heard_seconds: f64,
    /// Dominant frequency the phone heard from the conference.
    pub phone_heard_hz: Option<f64>,
    /// Seconds of audio the phone recorded from the call.
    pub phone_heard_seconds: f64,
    /// The phone's received recording.
    pub phone_recording: Option<PathBuf>,
    /// Answer rule violations the stand-in found in the gateway's session-accept.
    pub violations: usize,
    /// Everything the gateway logged.
    pub log: String,
}

/// A real SIP phone (baresip, registered at Kamailio) calls the gateway's number; Kamailio adds
/// the room header; the gateway joins the stand-in's conference; the phone plays `phone_tone`
/// Hz and the web participant `participant_tone` Hz for `talk` and each side's received audio is
/// measured.
pub async fn dial_in_scenario(
    binary: &Path,
    echo: bool,
    phone_tone: u32,
    participant_tone: f64,
    talk: Duration,
) -> Result<CallReport, DemoError> {
    use jigasi_testpeers::{Baresip, BaresipConfig, audio};
    let deployment = Deployment::start()?;
    let standin = start_standin(&deployment, participant_tone).await?;
    let mut gateway = GatewayProcess::spawn(binary, &deployment.gateway_args(), echo)?;
    gateway.wait_for_line(READY_LINE, Duration::from_secs(20))?;

    let work = tempfile::tempdir().map_err(io("temp dir"))?;
    let tone = audio::tone_wav(work.path(), 48_000, phone_tone, 30)?;
    let registrar = deployment.kamailio.addr();
    let mut phone = Baresip::start(BaresipConfig {
        record: true,
        play_wav: Some(tone),
        codecs: "PCMU".into(),
        ..BaresipConfig::registering("alice", "alicepw", registrar)
    })?;
    phone.wait_registered(Duration::from_secs(5))?;
    let dialled = Instant::now();
    phone.dial(&format!("sip:{SIP_USER}@{}", registrar.ip()))?;
    let established = phone.wait_event("CALL_ESTABLISHED", Duration::from_secs(20));
    if let Err(error) = established {
        return Err(DemoError::Expectation(format!(
            "the call was not established: {error}\nphone log:\n{}\ngateway log:\n{}",
            phone.log(),
            gateway.log()
        )));
    }
    let setup = dialled.elapsed();
    let nick = gateway_nick(&standin, Duration::from_secs(5)).await?;
    tokio::time::sleep(talk).await;
    // What the conference heard is read while the gateway is still in the room.
    let heard = standin
        .received_audio(DEMO_ROOM, &nick)
        .await
        .map_err(|e| DemoError::Expectation(format!("stand-in audio: {e}")))?;
    phone.hangup()?;
    let _ = phone.wait_event("CALL_CLOSED", Duration::from_secs(5));
    let report = measure(&standin, &mut phone, &heard, setup).await?;
    drop(phone);
    let _ = gateway.terminate(Duration::from_secs(10));
    Ok(CallReport {
        log: gateway.log(),
        ..report
    })
}

/// The other direction: the conference (through the stand-in acting as Jicofo) asks the gateway
/// with a Rayo `dial` to call `bob`, a real baresip phone registered at Kamailio that answers
/// automatically. Returns the `<ref>` URI and the same measurements as [`dial_in_scenario`].
pub async fn dial_out_scenario(
    binary: &Path,
    echo: bool,
    phone_tone: u32,
    participant_tone: f64,
    talk: Duration,
) -> Result<(String, CallReport), DemoError> {
    use jigasi_testpeers::{Baresip, BaresipConfig, audio};
    let deployment = Deployment::start()?;
    let standin = start_standin(&deployment, participant_tone).await?;
    let mut gateway = GatewayProcess::spawn(binary, &deployment.gateway_args(), echo)?;
    gateway.wait_for_line(READY_LINE, Duration::from_secs(20))?;
    // Jicofo only dials gateways it has seen in the brewery.
    standin
        .wait_for(Duration::from_secs(10), |event| match event {
            jigasi_standin::StandInEvent::GatewayAvailable { .. } => Some(()),
            _ => None,
        })
        .await
        .ok_or_else(|| {
            DemoError::Expectation("the stand-in never saw the gateway in the brewery".into())
        })?;

    let work = tempfile::tempdir().map_err(io("temp dir"))?;
    let tone = audio::tone_wav(work.path(), 48_000, phone_tone, 30)?;
    let registrar = deployment.kamailio.addr();
    let mut phone = Baresip::start(BaresipConfig {
        record: true,
        auto_answer: true,
        play_wav: Some(tone),
        codecs: "PCMU".into(),
        ..BaresipConfig::registering("bob", "bobpw", registrar)
    })?;
    phone.wait_registered(Duration::from_secs(5))?;
    let dialled = Instant::now();
    let reference = standin
        .dial(DEMO_ROOM, "bob", &[("X-Demo", "dial-out")])
        .await
        .map_err(|e| {
            DemoError::Expectation(format!(
                "dial failed: {e:?}\ngateway log:\n{}",
                gateway.log()
            ))
        })?;
    let established = phone.wait_event("CALL_ESTABLISHED", Duration::from_secs(20));
    if let Err(error) = established {
        return Err(DemoError::Expectation(format!(
            "the phone never answered: {error}\nphone log:\n{}\ngateway log:\n{}",
            phone.log(),
            gateway.log()
        )));
    }
    let setup = dialled.elapsed();
    let nick = gateway_nick(&standin, Duration::from_secs(5)).await?;
    tokio::time::sleep(talk).await;
    // What the conference heard is read while the gateway is still in the room.
    let heard = standin
        .received_audio(DEMO_ROOM, &nick)
        .await
        .map_err(|e| DemoError::Expectation(format!("stand-in audio: {e}")))?;
    phone.hangup()?;
    let _ = phone.wait_event("CALL_CLOSED", Duration::from_secs(5));
    let report = measure(&standin, &mut phone, &heard, setup).await?;
    drop(phone);
    let _ = gateway.terminate(Duration::from_secs(10));
    Ok((
        format!("{reference:?}"),
        CallReport {
            log: gateway.log(),
            ..report
        },
    ))
}

/// What each side heard, after the call.
async fn measure(
    standin: &jigasi_standin::StandIn,
    phone: &mut jigasi_testpeers::Baresip,
    heard: &[i16],
    setup: Duration,
) -> Result<CallReport, DemoError> {
    use jigasi_testpeers::audio;
    let samples: Vec<f32> = heard.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let conference_heard_hz = audio::dominant_frequency_of(&samples, 48_000);
    #[allow(clippy::cast_precision_loss)]
    let conference_heard_seconds = heard.len() as f64 / 48_000.0;
    let recording = phone.received_recordings().into_iter().next();
    let (phone_heard_hz, phone_heard_seconds) = match &recording {
        Some(path) => {
            let wav = audio::read_wav(path)?;
            (
                audio::dominant_frequency_of(&wav.mono(), wav.rate),
                wav.duration().as_secs_f64(),
            )
        }
        None => (None, 0.0),
    };
    let violations = standin
        .violations(DEMO_ROOM)
        .await
        .map_err(|e| DemoError::Expectation(format!("stand-in violations: {e}")))?
        .len();
    Ok(CallReport {
        setup,
        conference_heard_hz,
        conference_heard_seconds,
        phone_heard_hz,
        phone_heard_seconds,
        phone_recording: recording,
        violations,
        log: String::new(),
    })
}
