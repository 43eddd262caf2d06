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
/// Numbers starting with this go to the room named by the rest of the number: Kamailio adds
/// `Jitsi-Conference-Room: <rest>@conference.<domain>` and routes the call to the gateway
/// (e.g. `sip:room-other@<registrar>` joins room `other`).
pub const ROOM_NUMBER_PREFIX: &str = "room-";

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
    /// Starts Prosody (domain `meet.example.com`) and Kamailio (the gateway's SIP account and
    /// the [`PHONES`]; the gateway's number reaches [`DEMO_ROOM`], [`ROOM_NUMBER_PREFIX`]
    /// numbers other rooms), and writes the gateway's configuration.
    pub fn start() -> Result<Self, DemoError> {
        let prosody = Prosody::start(ProsodyConfig::default())?;
        // Like a PBX in front of Jigasi, Kamailio tells the gateway which room a call is for:
        // the gateway's number goes to the demo room, `room-<name>` to room `<name>` (the
        // Request-URI user is then the gateway's, for the location lookup).
        let domain = prosody.domain();
        let mut users = vec![(SIP_USER.to_owned(), SIP_PASSWORD.to_owned())];
        users.extend(PHONES.iter().map(|p| ((*p).to_owned(), format!("{p}pw"))));
        let kamailio = Kamailio::start(KamailioConfig {
            users,
            extra_route: Some(format!(
                "if ($rU == \"{SIP_USER}\") {{ append_hf(\"Jitsi-Conference-Room: {DEMO_ROOM}@conference.{domain}\\r\\n\"); }} \
                 else if ($rU =~ \"^{ROOM_NUMBER_PREFIX}\") {{ \
                 $var(room) = $(rU{{s.substr,{skip},0}}); \
                 append_hf(\"Jitsi-Conference-Room: $var(room)@conference.{domain}\\r\\n\"); \
                 $rU = \"{SIP_USER}\"; }}",
                skip = ROOM_NUMBER_PREFIX.len(),
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
        let text = gateway_properties(
            &GatewayAccounts {
                sip_port: self.sip_port,
                rest_port: self.rest_port,
                sip_user: SIP_USER,
                sip_password: SIP_PASSWORD,
                brewery_resource: None,
            },
            &self.prosody,
            self.kamailio.addr(),
        );
        write_file(&self.properties_path(), &text)
    }
}

/// What differs between gateway instances sharing one deployment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GatewayAccounts<'a> {
    /// `SIP_PREFERRED_CLEAR_PORT`.
    pub(crate) sip_port: u16,
    /// The REST port.
    pub(crate) rest_port: u16,
    /// The SIP user registering at Kamailio.
    pub(crate) sip_user: &'a str,
    /// Its password.
    pub(crate) sip_password: &'a str,
    /// The brewery account's `RESOURCE` (= its nick in the brewery); `None` = the server's.
    pub(crate) brewery_resource: Option<&'a str>,
}

/// A Jigasi-style `sip-communicator.properties` for a loopback deployment: one SIP account
/// registering at Kamailio, one brewery account on Prosody (`jigasi@auth.<domain>`), anonymous
/// per-call connections. Base64 passwords, as Jigasi stores them.
pub(crate) fn gateway_properties(
    accounts: &GatewayAccounts<'_>,
    prosody: &Prosody,
    kamailio: SocketAddr,
) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let c2s = prosody.c2s_addr();
    let domain = prosody.domain();
    let auth = prosody.auth_domain();
    let sip = "net.java.sip.communicator.impl.protocol.sip";
    let xmpp = "net.java.sip.communicator.impl.protocol.jabber";
    let sip_user = accounts.sip_user;
    let mut text = format!(
        "# Written by jigasi-demo: a Jigasi-style configuration for a loopback deployment.\n\
         net.java.sip.communicator.SIP_PREFERRED_CLEAR_PORT={sip_port}\n\
         net.java.sip.communicator.impl.protocol.sip.REGISTRATION_EXPIRATION=300\n\
         org.jitsi.jigasi.rest.jetty.port={rest_port}\n\
         org.jitsi.jigasi.ENABLE_REST_SHUTDOWN=true\n\
         {sip}.acc1=acc1\n\
         {sip}.acc1.ACCOUNT_UID=SIP\\:{sip_user}@{reg_host}\n\
         {sip}.acc1.USER_ID={sip_user}@{reg_host}\n\
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
         org.jitsi.jigasi.JVB_INVITE_TIMEOUT=5000\n\
         org.jitsi.jigasi.xmpp.acc.IS_SERVER_OVERRIDDEN=true\n\
         org.jitsi.jigasi.xmpp.acc.SERVER_ADDRESS={c2s_host}\n\
         org.jitsi.jigasi.xmpp.acc.SERVER_PORT={c2s_port}\n\
         org.jitsi.jigasi.xmpp.acc.ANONYMOUS_AUTH=true\n\
         org.jitsi.jigasi.xmpp.acc.ALLOW_NON_SECURE=true\n\
         org.jitsi.jigasi.xmpp.acc.DOMAIN_BASE={domain}\n",
        sip_port = accounts.sip_port,
        rest_port = accounts.rest_port,
        reg_host = kamailio.ip(),
        reg_port = kamailio.port(),
        sip_pw = b64(accounts.sip_password),
        xmpp_pw = b64(XMPP_PASSWORD),
        c2s_host = c2s.ip(),
        c2s_port = c2s.port(),
    );
    if let Some(resource) = accounts.brewery_resource {
        text.push_str(&format!("{xmpp}.acc-xmpp-1.RESOURCE={resource}\n"));
    }
    text
}

/// Writes `text` to `path`, creating its directory.
pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), DemoError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(io(format!("cannot create {}", parent.display())))?;
    }
    std::fs::write(path, text).map_err(io(format!("cannot write {}", path.display())))
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
        self.sigterm()?;
        self.wait(timeout)
    }

    /// Sends SIGTERM (graceful shutdown: running calls go on) without waiting.
    pub fn sigterm(&self) -> Result<(), DemoError> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(io("cannot run kill"))?;
        Ok(())
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

mod cluster;
mod session;

pub use cluster::{Cluster, Instance, PHONES, POOL_NUMBER};
pub use session::{
    CallReport, Session, SessionConfig, dial_in_scenario, dial_out_scenario, speech,
};
