//! Kamailio as a loopback registrar + proxy with digest auth (test-peers recipe R3).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::PeerError;
use crate::ports::free_port;
use crate::process::{PeerProcess, ReadyError, run_tool};
use crate::procnet::Proto;

/// Start attempts (fresh ports each) before giving up.
const ATTEMPTS: u32 = 4;
/// How long one start may take to open its ports.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the Kamailio instance accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KamailioConfig {
    /// Digest users: `(username, password)`.
    pub users: Vec<(String, String)>,
    /// The SIP domain that is "ours" (digest realm; requests whose From has this domain are
    /// challenged), default `127.0.0.1`.
    pub domain: String,
    /// Also listen for SIP over TLS on a second port (needs `kamailio-tls-modules`).
    pub tls: bool,
    /// A routing-script snippet run for initial INVITEs after authentication and
    /// `record_route()`, before the location lookup and relay; e.g.
    /// `append_hf("Jitsi-Conference-Room: room1\r\n");`. It may also set `$du` and
    /// `route(RELAY);` itself to bypass the lookup.
    pub extra_route: Option<String>,
    /// Load balancing with the `dispatcher` module: INVITEs for one number go to a pool of
    /// destinations instead of a registered contact (runs after `extra_route`).
    pub dispatcher: Option<Dispatcher>,
}

/// A pool of SIP destinations behind one number, as a carrier or PBX puts several Jigasi boxes
/// behind Kamailio's `dispatcher` module (setid 1 of a generated `dispatcher.list`).
///
/// Initial INVITEs whose Request-URI user is [`Dispatcher::user`] go to `ds_select_dst` with
/// [`Dispatcher::algorithm`]; a destination that answers `503` or gives no reply at all within
/// [`Dispatcher::failover_after`] is marked inactive + probing (`ds_mark_dst("ip")`) and the
/// call goes to the next one (`ds_next_dst`). Every destination is pinged with OPTIONS every
/// [`Dispatcher::probe_interval`] (`ds_probing_mode` 1, as gateway pools usually run): one that
/// answers a probe with an error (a gateway draining answers 503) or not at all is taken out of
/// the pool, and comes back once it answers 200. (With probing mode 0 only destinations already
/// marked probing are pinged, and here Kamailio then stopped probing one that had answered a
/// probe with 503, so a drained and restarted gateway never came back.) The log has
/// `DISPATCH <Call-ID> to <uri>`, `DISPATCH <Call-ID> failed at <uri> (<code>)` (408 when
/// nothing answered) and `DISPATCH <Call-ID> failover to <uri>` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatcher {
    /// The Request-URI user (the number) whose INVITEs are dispatched.
    pub user: String,
    /// The destinations in list order, e.g. `sip:127.0.0.1:5070`.
    pub destinations: Vec<String>,
    /// How a destination is chosen.
    pub algorithm: DispatchAlgorithm,
    /// A destination that sends no reply at all (not even 100 Trying) within this time is
    /// given up for the next one (the transaction's `fr_timeout`; at least 100 ms).
    pub failover_after: Duration,
    /// OPTIONS ping interval (`ds_ping_interval`, whole seconds, at least 1).
    pub probe_interval: Duration,
}

impl Dispatcher {
    /// Round robin over `destinations` for INVITEs to `user`; failover after 2 s without a
    /// reply; probing every second.
    pub fn round_robin(user: &str, destinations: Vec<String>) -> Dispatcher {
        Dispatcher {
            user: user.to_owned(),
            destinations,
            algorithm: DispatchAlgorithm::RoundRobin,
            failover_after: Duration::from_secs(2),
            probe_interval: Duration::from_secs(1),
        }
    }
}

/// `ds_select_dst` algorithms used by the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DispatchAlgorithm {
    /// `0`: hash over the Call-ID (one call always goes to the same destination).
    CallIdHash,
    /// `4`: round robin.
    RoundRobin,
}

impl DispatchAlgorithm {
    /// The number `ds_select_dst` takes.
    fn code(self) -> u8 {
        match self {
            DispatchAlgorithm::CallIdHash => 0,
            DispatchAlgorithm::RoundRobin => 4,
        }
    }
}

impl Default for KamailioConfig {
    /// Users `jigasi`/`secret`, `alice`/`alicepw`, `bob`/`bobpw`; domain `127.0.0.1`; no TLS,
    /// no extra route.
    fn default() -> Self {
        KamailioConfig {
            users: vec![
                ("jigasi".to_owned(), "secret".to_owned()),
                ("alice".to_owned(), "alicepw".to_owned()),
                ("bob".to_owned(), "bobpw".to_owned()),
            ],
            domain: "127.0.0.1".to_owned(),
            tls: false,
            extra_route: None,
            dispatcher: None,
        }
    }
}

/// A running Kamailio: registrar (in-memory location table) and record-routing proxy.
///
/// REGISTER is always challenged (401, realm = From domain); other initial requests are
/// challenged (407) when their From domain is the configured domain, and callers from other
/// domains pass unauthenticated. INVITEs are relayed to the registered contact of the
/// Request-URI user (`404` if none). The log (stderr, `debug=2`) has one `REQ` line per request
/// and a line per challenge (`sent 401 challenge ...`, `sent 407 challenge ...`).
///
/// Stopped (SIGTERM to the main process, then SIGKILL to its group) when dropped.
#[derive(Debug)]
pub struct Kamailio {
    config: KamailioConfig,
    port: u16,
    tls_port: Option<u16>,
    process: Option<PeerProcess>,
    dir: Option<TempDir>,
    dir_path: PathBuf,
}

/// Checks a value spliced into a double-quoted Kamailio config string.
fn check_cfg_value(field: &'static str, value: &str, user_like: bool) -> Result<(), PeerError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.chars().all(|c| {
            if user_like {
                c.is_ascii_alphanumeric() || "._-+~!*'()%".contains(c)
            } else {
                c.is_ascii_graphic() && !"\"\\$".contains(c)
            }
        });
    if ok {
        Ok(())
    } else {
        Err(PeerError::InvalidConfig {
            field,
            reason: format!("{value:?} has characters the Kamailio config cannot take"),
        })
    }
}

/// Where Kamailio's modules live (to check the TLS and dispatcher modules are installed).
fn module_exists(name: &str) -> bool {
    let mut dirs = vec![PathBuf::from("/usr/lib/kamailio/modules")];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        dirs.extend(entries.flatten().map(|e| e.path().join("kamailio/modules")));
    }
    dirs.iter().any(|d| d.join(name).is_file())
}

/// Renders `kamailio.cfg`.
fn render_config(config: &KamailioConfig, dir: &Path, port: u16, tls_port: Option<u16>) -> String {
    let mut users = String::new();
    for (i, (user, password)) in config.users.iter().enumerate() {
        let kw = if i == 0 { "if" } else { "else if" };
        users.push_str(&format!(
            "        {kw} ($au == \"{user}\") {{ $var(pw) = \"{password}\"; }}\n"
        ));
    }
    let (tls_listen, tls_module) = match tls_port {
        Some(tls_port) => (
            format!("listen=tls:127.0.0.1:{tls_port}\nenable_tls=yes\n"),
            format!(
                "loadmodule \"tls.so\"\nmodparam(\"tls\", \"config\", \"{}\")\n",
                dir.join("tls.cfg").display()
            ),
        ),
        None => (String::new(), String::new()),
    };
    let extra = config
        .extra_route
        .as_deref()
        .map(|snippet| {
            format!(
                "    if (is_method(\"INVITE\")) {{\n        # extra_route from the test\n        {snippet}\n    }}\n"
            )
        })
        .unwrap_or_default();
    let (dispatch_module, dispatch_route, dispatch_failure) = match &config.dispatcher {
        Some(dispatcher) => render_dispatcher(dispatcher, dir),
        None => (String::new(), String::new(), String::new()),
    };
    let domain = &config.domain;
    format!(
        r#"#!KAMAILIO
# Generated by jigasi-testpeers: loopback registrar/proxy with digest auth, no database.
debug=2
log_stderror=yes
memdbg=5
memlog=5
children=2
tcp_children=2
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
{tls_listen}
{tls_module}
loadmodule "kex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "auth.so"
{dispatch_module}
modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "gruu_enabled", 0)
modparam("auth", "nonce_expire", 300)
modparam("rr", "enable_full_lr", 1)

request_route {{
    xlog("L_INFO", "REQ $rm $ru from $si:$sp ($pr) From=$fu To=$tu\n");
    if (is_present_hf("Reason")) {{ xlog("L_INFO", "REASON $rm $ci $hdr(Reason)\n"); }}
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (!sanity_check("1511", "7")) {{ xlog("L_WARN", "malformed request from $si:$sp\n"); exit; }}

    # in-dialog requests
    if (has_totag()) {{
        if (loose_route()) {{ route(RELAY); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ route(RELAY); }} exit; }}
    t_check_trans();

    route(AUTH);

    if (is_method("REGISTER")) {{
        if (!save("location")) {{ sl_reply_error(); }}
        xlog("L_INFO", "REGISTERED $tu contact $ct\n");
        exit;
    }}
    if (is_method("OPTIONS") && $rU == $null) {{ sl_send_reply("200", "OK"); exit; }}
    if ($rU == $null) {{ sl_send_reply("484", "Address Incomplete"); exit; }}

    # a UA with an outbound proxy preloads a Route to us: drop it, we route by location
    if (is_present_hf("Route")) {{ remove_hf("Route"); }}
    record_route();
{extra}{dispatch_route}    if (!lookup("location")) {{
        xlog("L_INFO", "no contact for $rU: 404\n");
        t_newtran();
        t_reply("404", "Not Found");
        exit;
    }}
    route(RELAY);
}}

route[RELAY] {{
    if (!t_relay()) {{ sl_reply_error(); }}
    exit;
}}

# REGISTER must always authenticate (401); other requests authenticate (407) when the From
# domain is ours. Foreign-domain callers pass.
route[AUTH] {{
    if (is_method("REGISTER") || $fd == "{domain}") {{
        $var(pw) = "";
{users}        if ($var(pw) == "") {{ route(CHALLENGE); }}
        if (!pv_auth_check("$fd", "$var(pw)", "0", "1")) {{ route(CHALLENGE); }}
        consume_credentials();
        xlog("L_INFO", "AUTH ok for $au ($rm)\n");
    }}
}}

route[CHALLENGE] {{
    if (is_method("REGISTER")) {{
        xlog("L_NOTICE", "sent 401 challenge to $rm from $fu (credentials of '$au')\n");
    }} else {{
        xlog("L_NOTICE", "sent 407 challenge to $rm from $fu (credentials of '$au')\n");
    }}
    auth_challenge("$fd", "1");
    exit;
}}

onreply_route {{
    xlog("L_INFO", "REPLY $rs $rr for $rm from $si:$sp\n");
}}
{dispatch_failure}"#
    )
}

/// The dispatcher's module lines, its request-route block and its failure route.
fn render_dispatcher(dispatcher: &Dispatcher, dir: &Path) -> (String, String, String) {
    let probe = dispatcher.probe_interval.as_secs().max(1);
    let failover_ms = dispatcher.failover_after.as_millis().max(100);
    let module = format!(
        "loadmodule \"tmx.so\"\n\
         loadmodule \"dispatcher.so\"\n\
         modparam(\"dispatcher\", \"list_file\", \"{list}\")\n\
         modparam(\"dispatcher\", \"flags\", 2)\n\
         modparam(\"dispatcher\", \"ds_ping_interval\", {probe})\n\
         modparam(\"dispatcher\", \"ds_probing_mode\", 1)\n\
         modparam(\"dispatcher\", \"ds_ping_from\", \"sip:dispatcher@127.0.0.1\")\n",
        list = dir.join("dispatcher.list").display(),
    );
    let route = format!(
        r#"    if (is_method("INVITE") && $rU == "{user}") {{
        # dispatcher: the pool of gateways behind this number
        if (!ds_select_dst("1", "{algorithm}")) {{
            xlog("L_NOTICE", "DISPATCH $ci no destination available\n");
            sl_send_reply("503", "No Destination Available");
            exit;
        }}
        xlog("L_INFO", "DISPATCH $ci to $du\n");
        t_on_failure("DISPATCH_FAILOVER");
        t_set_fr(0, {failover_ms});
        route(RELAY);
    }}
"#,
        user = dispatcher.user,
        algorithm = dispatcher.algorithm.code(),
    );
    let failure = format!(
        r#"
# A destination that refuses with 503 or never answers is marked inactive (and probed with
# OPTIONS until it answers again); the call goes to the next destination.
failure_route[DISPATCH_FAILOVER] {{
    if (t_is_canceled()) {{ exit; }}
    if (t_check_status("503") || (t_branch_timeout() && !t_branch_replied())) {{
        xlog("L_NOTICE", "DISPATCH $ci failed at $du ($T_reply_code)\n");
        ds_mark_dst("ip");
        if (ds_next_dst()) {{
            xlog("L_INFO", "DISPATCH $ci failover to $du\n");
            t_on_failure("DISPATCH_FAILOVER");
            t_set_fr(0, {failover_ms});
            route(RELAY);
        }}
        xlog("L_NOTICE", "DISPATCH $ci no destination left\n");
    }}
}}
"#
    );
    (module, route, failure)
}

/// `dispatcher.list`: every destination in setid 1, in order.
fn render_dispatcher_list(dispatcher: &Dispatcher) -> String {
    let mut text = String::from("# setid destination flags priority\n");
    for destination in &dispatcher.destinations {
        text.push_str(&format!("1 {destination} 0 0\n"));
    }
    text
}

fn render_tls_config(dir: &Path) -> String {
    let key = dir.join("tls/key.pem");
    let cert = dir.join("tls/cert.pem");
    format!(
        "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n\
         private_key = {}\ncertificate = {}\n\n\
         [client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n",
        key.display(),
        cert.display()
    )
}

/// Makes a self-signed certificate for `127.0.0.1` (and `cn`) into `key` and `cert`.
pub(crate) fn self_signed(dir: &Path, cn: &str, key: &Path, cert: &Path) -> Result<(), PeerError> {
    let subj = format!("/CN={cn}");
    let san = format!("subjectAltName=IP:127.0.0.1,DNS:{cn}");
    run_tool(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            &subj,
            "-addext",
            &san,
            "-keyout",
            &key.to_string_lossy(),
            "-out",
            &cert.to_string_lossy(),
        ],
        dir,
        Duration::from_secs(30),
    )
    .map(|_| ())
}

impl Kamailio {
    /// Writes the config into a temp dir and starts Kamailio on a free port (UDP and TCP; TLS
    /// on a second port if `tls`), waiting until its process group holds the sockets and
    /// retrying on fresh ports when another process took one.
    pub fn start(config: KamailioConfig) -> Result<Kamailio, PeerError> {
        check_cfg_value("domain", &config.domain, false)?;
        for (user, password) in &config.users {
            check_cfg_value("users", user, true)?;
            check_cfg_value("users", password, false)?;
        }
        if let Some(dispatcher) = &config.dispatcher {
            check_cfg_value("dispatcher.user", &dispatcher.user, true)?;
            if dispatcher.destinations.is_empty() {
                return Err(PeerError::InvalidConfig {
                    field: "dispatcher.destinations",
                    reason: "no destination".to_owned(),
                });
            }
            for destination in &dispatcher.destinations {
                check_cfg_value("dispatcher.destinations", destination, false)?;
                if destination.contains(char::is_whitespace) || !destination.starts_with("sip:") {
                    return Err(PeerError::InvalidConfig {
                        field: "dispatcher.destinations",
                        reason: format!("{destination:?} is not a sip: URI"),
                    });
                }
            }
        }
        crate::require("kamailio")?;
        if config.dispatcher.is_some() && !module_exists("dispatcher.so") {
            return Err(PeerError::NotInstalled {
                program: "kamailio dispatcher module (dispatcher.so)".to_owned(),
                ci: crate::under_ci(),
            });
        }
        if config.tls {
            crate::require("openssl")?;
            if !module_exists("tls.so") {
                return Err(PeerError::NotInstalled {
                    program: "kamailio-tls-modules (tls.so)".to_owned(),
                    ci: crate::under_ci(),
                });
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("kamailio-")
            .tempdir()
            .map_err(|e| PeerError::io("create kamailio temp dir", e))?;
        let dir_path = dir.path().to_owned();
        if config.tls {
            let tls = dir_path.join("tls");
            std::fs::create_dir_all(&tls).map_err(|e| PeerError::io("create tls dir", e))?;
            self_signed(
                &dir_path,
                &config.domain,
                &tls.join("key.pem"),
                &tls.join("cert.pem"),
            )?;
            std::fs::write(dir_path.join("tls.cfg"), render_tls_config(&dir_path))
                .map_err(|e| PeerError::io("write tls.cfg", e))?;
        }
        if let Some(dispatcher) = &config.dispatcher {
            std::fs::write(
                dir_path.join("dispatcher.list"),
                render_dispatcher_list(dispatcher),
            )
            .map_err(|e| PeerError::io("write dispatcher.list", e))?;
        }
        let mut kamailio = Kamailio {
            config,
            port: 0,
            tls_port: None,
            process: None,
            dir: Some(dir),
            dir_path,
        };
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            kamailio.port = free_port();
            kamailio.tls_port = kamailio.config.tls.then(free_port);
            let text = render_config(
                &kamailio.config,
                &kamailio.dir_path,
                kamailio.port,
                kamailio.tls_port,
            );
            std::fs::write(kamailio.dir_path.join("kamailio.cfg"), text)
                .map_err(|e| PeerError::io("write kamailio.cfg", e))?;
            match kamailio.spawn_and_wait() {
                Ok(()) => return Ok(kamailio),
                Err(ReadyError::PortInUse(reason)) => last = reason,
                Err(ReadyError::Fatal(reason)) => {
                    return Err(kamailio.start_failed(attempt, reason));
                }
            }
        }
        Err(kamailio.start_failed(ATTEMPTS, last))
    }

    fn start_failed(&mut self, attempts: u32, reason: String) -> PeerError {
        let log_tail = crate::tail(&self.log(), 30);
        if let Some(mut p) = self.process.take() {
            p.stop(Duration::from_secs(2));
        }
        PeerError::StartFailed {
            program: "kamailio".to_owned(),
            attempts,
            reason,
            log_tail,
        }
    }

    fn spawn_and_wait(&mut self) -> Result<(), ReadyError> {
        if let Some(mut old) = self.process.take() {
            old.stop(Duration::from_secs(5));
        }
        let d = &self.dir_path;
        let args: Vec<String> = vec![
            "-f".into(),
            d.join("kamailio.cfg").to_string_lossy().into_owned(),
            "-DD".into(),
            "-E".into(),
            "-Y".into(),
            d.to_string_lossy().into_owned(),
            "-P".into(),
            d.join("kamailio.pid").to_string_lossy().into_owned(),
        ];
        let mut process = PeerProcess::spawn(
            "kamailio",
            "kamailio",
            &args,
            d,
            &d.join("kamailio.log"),
            &[],
            Some(d),
        )
        .map_err(|e| ReadyError::Fatal(e.to_string()))?;
        let mut sockets = vec![(Proto::Udp, self.port), (Proto::Tcp, self.port)];
        if let Some(tls_port) = self.tls_port {
            sockets.push((Proto::Tcp, tls_port));
        }
        let result = process.wait_ready(&sockets, &[], READY_TIMEOUT);
        self.process = Some(process);
        result
    }

    /// The UDP and TCP address (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    /// The TLS address, if started with `tls`.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_port
            .map(|p| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, p)))
    }

    /// The self-signed TLS certificate (PEM), if started with `tls`.
    pub fn tls_certificate(&self) -> Option<PathBuf> {
        self.config.tls.then(|| self.dir_path.join("tls/cert.pem"))
    }

    /// The SIP domain (digest realm) of the users.
    pub fn domain(&self) -> &str {
        &self.config.domain
    }

    /// Stops Kamailio (SIGTERM to the main process; SIGKILL to the group after 5 s). The
    /// location table is in memory: registrations are lost.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop(Duration::from_secs(5));
        }
    }

    /// Stops (if running) and starts again on the same ports with the same configuration.
    pub fn restart(&mut self) -> Result<(), PeerError> {
        self.stop();
        let mut last = String::new();
        for attempt in 1..=3 {
            match self.spawn_and_wait() {
                Ok(()) => return Ok(()),
                Err(ReadyError::PortInUse(reason)) => {
                    last = reason;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(ReadyError::Fatal(reason)) => return Err(self.start_failed(attempt, reason)),
            }
        }
        Err(self.start_failed(3, last))
    }

    /// Whether the main process is running.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.exited().is_none())
    }

    /// Kamailio's log so far (all runs).
    pub fn log(&self) -> String {
        crate::process::read_lossy(&self.dir_path.join("kamailio.log"))
    }

    /// The instance's directory (config, pid file, log, TLS files).
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!("kamailio directory kept for inspection: {}", kept.display());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn config_lists_users_ports_and_extra_route() {
        let config = KamailioConfig {
            extra_route: Some("append_hf(\"Jitsi-Conference-Room: room1\\r\\n\");".into()),
            ..KamailioConfig::default()
        };
        let text = render_config(&config, Path::new("/tmp/k"), 4000, Some(4001));
        for needle in [
            "listen=udp:127.0.0.1:4000",
            "listen=tcp:127.0.0.1:4000",
            "listen=tls:127.0.0.1:4001",
            "modparam(\"tls\", \"config\", \"/tmp/k/tls.cfg\")",
            "if ($au == \"jigasi\") { $var(pw) = \"secret\"; }",
            "else if ($au == \"alice\") { $var(pw) = \"alicepw\"; }",
            "else if ($au == \"bob\") { $var(pw) = \"bobpw\"; }",
            "$fd == \"127.0.0.1\"",
            "append_hf(\"Jitsi-Conference-Room: room1\\r\\n\");",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        let extra_at = text.find("extra_route from the test").unwrap();
        let lookup_at = text.find("if (!lookup(\"location\"))").unwrap();
        assert!(extra_at < lookup_at);
        let plain = render_config(&KamailioConfig::default(), Path::new("/tmp/k"), 4000, None);
        assert!(!plain.contains("tls"));
        assert!(!plain.contains("extra_route"));
    }

    #[test]
    fn dispatcher_config_balances_invites_for_one_user_with_failover() {
        let dispatcher = Dispatcher {
            failover_after: Duration::from_millis(1500),
            probe_interval: Duration::from_secs(3),
            ..Dispatcher::round_robin(
                "jigasi",
                vec!["sip:127.0.0.1:5071".into(), "sip:127.0.0.1:5072".into()],
            )
        };
        let config = KamailioConfig {
            extra_route: Some("append_hf(\"Jitsi-Conference-Room: room1\\r\\n\");".into()),
            dispatcher: Some(dispatcher.clone()),
            ..KamailioConfig::default()
        };
        let text = render_config(&config, Path::new("/tmp/k"), 4000, None);
        for needle in [
            "loadmodule \"dispatcher.so\"",
            "modparam(\"dispatcher\", \"list_file\", \"/tmp/k/dispatcher.list\")",
            "modparam(\"dispatcher\", \"ds_ping_interval\", 3)",
            // Failover support: the other destinations are kept for ds_next_dst.
            "modparam(\"dispatcher\", \"flags\", 2)",
            "if (is_method(\"INVITE\") && $rU == \"jigasi\") {",
            "ds_select_dst(\"1\", \"4\")",
            "t_on_failure(\"DISPATCH_FAILOVER\");",
            "t_set_fr(0, 1500);",
            "failure_route[DISPATCH_FAILOVER] {",
            "t_check_status(\"503\") || (t_branch_timeout() && !t_branch_replied())",
            "ds_mark_dst(\"ip\");",
            // The failure is logged with its code (503, or 408 for no reply).
            "DISPATCH $ci failed at $du ($T_reply_code)",
            "if (ds_next_dst()) {",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        // The module is loaded after tm, which it needs; the room header is added before the
        // call is dispatched; dispatching comes before the location lookup.
        let at = |needle: &str| text.find(needle).unwrap();
        assert!(at("loadmodule \"tm.so\"") < at("loadmodule \"dispatcher.so\""));
        assert!(at("extra_route from the test") < at("ds_select_dst"));
        assert!(at("ds_select_dst") < at("if (!lookup(\"location\"))"));
        assert_eq!(
            render_dispatcher_list(&dispatcher),
            "# setid destination flags priority\n\
             1 sip:127.0.0.1:5071 0 0\n\
             1 sip:127.0.0.1:5072 0 0\n"
        );
        let hashed = KamailioConfig {
            dispatcher: Some(Dispatcher {
                algorithm: DispatchAlgorithm::CallIdHash,
                ..dispatcher
            }),
            ..KamailioConfig::default()
        };
        let text = render_config(&hashed, Path::new("/tmp/k"), 4000, None);
        assert!(text.contains("ds_select_dst(\"1\", \"0\")"), "{text}");
        let plain = render_config(&KamailioConfig::default(), Path::new("/tmp/k"), 4000, None);
        assert!(!plain.contains("dispatcher"));
        // Requests carrying a Reason header (BYE, CANCEL) are logged with it.
        assert!(plain.contains("REASON $rm $ci $hdr(Reason)"));
    }

    #[test]
    fn tls_config_points_at_the_cert() {
        let text = render_tls_config(Path::new("/tmp/k"));
        assert!(text.contains("certificate = /tmp/k/tls/cert.pem"));
        assert!(text.contains("private_key = /tmp/k/tls/key.pem"));
    }

    #[test]
    fn rejects_values_that_would_break_the_config() {
        for (user, pw) in [
            ("al\"ice", "x"),
            ("alice", "pw\"; evil"),
            ("", "x"),
            ("bob", "$var(x)"),
        ] {
            let config = KamailioConfig {
                users: vec![(user.into(), pw.into())],
                ..KamailioConfig::default()
            };
            assert!(
                matches!(
                    Kamailio::start(config),
                    Err(PeerError::InvalidConfig { .. })
                ),
                "{user:?}/{pw:?}"
            );
        }
        for (user, destinations) in [
            ("jigasi", vec![]),
            ("jig\"asi", vec!["sip:127.0.0.1:5071".to_owned()]),
            ("jigasi", vec!["127.0.0.1:5071".to_owned()]),
            ("jigasi", vec!["sip:127.0.0.1:5071 0 0\n1 sip:x".to_owned()]),
        ] {
            let config = KamailioConfig {
                dispatcher: Some(Dispatcher::round_robin(user, destinations.clone())),
                ..KamailioConfig::default()
            };
            assert!(
                matches!(
                    Kamailio::start(config),
                    Err(PeerError::InvalidConfig { .. })
                ),
                "{user:?} {destinations:?}"
            );
        }
    }
}
