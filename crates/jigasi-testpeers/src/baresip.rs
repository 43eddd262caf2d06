//! baresip 1.0 as a headless SIP phone (test-peers recipe R4), driven over `ctrl_tcp`.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::PeerError;
use crate::audio;
use crate::json::{self, Value};
use crate::netstring::{self, Decoder};
use crate::ports::{free_port, free_ports};
use crate::process::{POLL, PeerProcess, ReadyError};
use crate::procnet::Proto;

/// Start attempts (fresh ports each) before giving up.
const ATTEMPTS: u32 = 4;
/// How long one start may take to open its ports.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a control command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// Seconds of silence sent when no WAV is given (baresip hangs up when its file source ends).
const SILENCE_SECS: u32 = 60;
/// The audio source/player sample rate configured (aufile insists the WAV has it).
const SOURCE_RATE: u32 = 48_000;
/// The module directory of Debian's baresip.
const MODULE_PATH: &str = "/usr/lib/baresip/modules";

/// How to set up a baresip user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaresipConfig {
    /// The user part of the AOR (`sip:<user>@<domain>`) and the digest username.
    pub user: String,
    /// Digest password (`auth_pass`), if any.
    pub password: Option<String>,
    /// Register with (and send all requests through, as outbound proxy) this registrar; `None`
    /// for a UA that does not register (call it at [`Baresip::sip_addr`]).
    pub registrar: Option<SocketAddr>,
    /// The domain of the AOR, default `127.0.0.1`.
    pub domain: String,
    /// `audio_codecs` of the account, e.g. `PCMU`, `PCMA`, `G722` or `opus/48000/2`
    /// (comma-separated list allowed; the `g711`, `g722` and `opus` modules are loaded).
    pub codecs: String,
    /// Answer incoming calls automatically.
    pub auto_answer: bool,
    /// WAV file sent as the microphone (48 kHz mono 16-bit; see [`audio::tone_wav`]); the call
    /// is hung up by baresip when the file ends. `None`: 60 s of silence.
    pub play_wav: Option<PathBuf>,
    /// Record both directions of each call to WAV ([`Baresip::recordings`]).
    pub record: bool,
    /// SIP transport: `udp` (default), `tcp` or `tls`.
    pub transport: Option<String>,
    /// Media encryption of the account (`mediaenc`): `srtp` (SDES, best effort: `RTP/AVP`
    /// with crypto lines), `srtp-mand` (`RTP/SAVP` only) or `srtp-mandf`; loads the `srtp`
    /// module. `None`: plain RTP.
    pub media_encryption: Option<String>,
}

impl Default for BaresipConfig {
    /// User `alice` on `127.0.0.1`, no password, no registrar, PCMU, manual answer, silence,
    /// no recording, UDP.
    fn default() -> Self {
        BaresipConfig {
            user: "alice".to_owned(),
            password: None,
            registrar: None,
            domain: "127.0.0.1".to_owned(),
            codecs: "PCMU".to_owned(),
            auto_answer: false,
            play_wav: None,
            record: false,
            transport: None,
            media_encryption: None,
        }
    }
}

impl BaresipConfig {
    /// A UA for `user`/`password` registering at `registrar` (other fields default).
    pub fn registering(user: &str, password: &str, registrar: SocketAddr) -> BaresipConfig {
        BaresipConfig {
            user: user.to_owned(),
            password: Some(password.to_owned()),
            registrar: Some(registrar),
            ..BaresipConfig::default()
        }
    }
}

/// A running baresip, controlled over its `ctrl_tcp` socket (netstring-framed JSON).
///
/// Stopped (SIGTERM, then SIGKILL after 3 s) when dropped. baresip de-REGISTERs on SIGTERM, so
/// drop it *before* its registrar.
#[derive(Debug)]
pub struct Baresip {
    config: BaresipConfig,
    sip_port: u16,
    ctrl_port: u16,
    process: Option<PeerProcess>,
    ctrl: Option<TcpStream>,
    decoder: Decoder,
    events: VecDeque<(String, Value)>,
    next_token: u64,
    dir: Option<TempDir>,
    dir_path: PathBuf,
}

/// Removes ANSI colour sequences (baresip colours its log).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The registration outcome of `aor` (`user@domain`) in a baresip log, the latest line wins:
/// `Some(Ok(line))` registered (`user@domain: {0/UDP/v4} 200 OK ...`), `Some(Err(line))`
/// refused (`reg: sip:user@domain: 403 Forbidden ...`), `None` not known yet.
fn registration_state(log: &str, aor: &str) -> Option<Result<String, String>> {
    let ok_prefix = format!("{aor}: {{");
    let fail_prefix = format!("reg: sip:{aor}");
    let mut state = None;
    for line in strip_ansi(log).lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix(&ok_prefix) {
            // "{0/UDP/v4} 200 OK (server) [1 binding]"
            let code = rest.split_once("} ").map(|(_, r)| r);
            if code.is_some_and(|c| c.starts_with('2')) {
                state = Some(Ok(line.to_owned()));
            } else {
                state = Some(Err(line.to_owned()));
            }
        } else if line.starts_with(&fail_prefix) {
            state = Some(Err(line.to_owned()));
        }
    }
    state
}

/// The `audio_codecs` entries baresip could not find when it loaded the account (it then offers
/// every codec it has, silently): `account: audio codec not found: G722/8000/1`. `None` until
/// baresip says it is ready.
fn unknown_codecs(log: &str) -> Option<Vec<String>> {
    let log = strip_ansi(log);
    log.contains("baresip is ready.").then(|| {
        log.lines()
            .filter_map(|line| line.trim().strip_prefix("account: audio codec not found: "))
            .map(str::to_owned)
            .collect()
    })
}

/// Checks a value spliced into the accounts line or config.
fn check_value(field: &'static str, value: &str) -> Result<(), PeerError> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_control() || "<>;\"\\ ".contains(c))
    {
        return Err(PeerError::InvalidConfig {
            field,
            reason: format!("{value:?} cannot go into a baresip account line"),
        });
    }
    Ok(())
}

/// The `accounts` line.
fn account_line(config: &BaresipConfig, audio_source: &Path) -> String {
    let transport = config
        .transport
        .as_deref()
        .filter(|t| !t.eq_ignore_ascii_case("udp"))
        .map(|t| format!(";transport={}", t.to_ascii_lowercase()))
        .unwrap_or_default();
    let mut line = format!("<sip:{}@{}{transport}>", config.user, config.domain);
    if let Some(password) = &config.password {
        line.push_str(&format!(";auth_pass={password}"));
    }
    match config.registrar {
        Some(registrar) => {
            line.push_str(&format!(
                ";outbound=\"sip:{registrar}{transport}\";regint=300"
            ));
        }
        None => line.push_str(";regint=0"),
    }
    line.push_str(if config.auto_answer {
        ";answermode=auto"
    } else {
        ";answermode=manual"
    });
    line.push_str(&format!(
        ";audio_codecs={};audio_source=aufile,{}",
        config.codecs,
        audio_source.display()
    ));
    if let Some(mediaenc) = &config.media_encryption {
        line.push_str(&format!(";mediaenc={mediaenc}"));
    }
    line
}

/// The `config` file.
fn config_file(config: &BaresipConfig, dir: &Path, sip_port: u16, ctrl_port: u16) -> String {
    let mut text = format!(
        "poll_method\t\tepoll\n\
         sip_listen\t\t127.0.0.1:{sip_port}\n\
         net_interface\t\t127.0.0.1\n\
         audio_player\t\taubridge,{player}\n\
         audio_alert\t\taubridge,{player}\n\
         audio_source\t\talsa,null\n\
         ausrc_srate\t\t{SOURCE_RATE}\n\
         auplay_srate\t\t{SOURCE_RATE}\n\
         ausrc_channels\t\t1\n\
         auplay_channels\t\t1\n\
         rtp_stats\t\tyes\n\
         snd_path\t\t{rec}\n\
         module_path\t\t{MODULE_PATH}\n\
         module\t\t\tg711.so\n\
         module\t\t\tg722.so\n\
         module\t\t\topus.so\n\
         module\t\t\talsa.so\n\
         module\t\t\taufile.so\n\
         module\t\t\taubridge.so\n",
        rec = dir.join("recordings").display(),
        player = format!("play{sip_port}"),
    );
    if config.record {
        text.push_str("module\t\t\tsndfile.so\n");
    }
    if config
        .transport
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("tls"))
    {
        text.push_str("module\t\t\tsrtp.so\n");
        text.push_str(&format!(
            "sip_certificate\t\t{}\n",
            dir.join("ua-cert.pem").display()
        ));
    } else if config.media_encryption.is_some() {
        text.push_str("module\t\t\tsrtp.so\n");
    }
    text.push_str(&format!(
        "module\t\t\tctrl_tcp.so\n\
         module_tmp\t\taccount.so\n\
         module_app\t\tmenu.so\n\
         ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}\n"
    ));
    text
}

impl Baresip {
    /// Writes the config into a temp dir, starts baresip on free ports (SIP on a port and the
    /// next one, which baresip uses for TLS; `ctrl_tcp` on another) and connects to its control
    /// socket. Registration runs in the background: see [`Baresip::wait_registered`].
    pub fn start(config: BaresipConfig) -> Result<Baresip, PeerError> {
        check_value("user", &config.user)?;
        check_value("domain", &config.domain)?;
        check_value("codecs", &config.codecs)?;
        if let Some(password) = &config.password {
            check_value("password", password)?;
        }
        if let Some(mediaenc) = &config.media_encryption {
            check_value("media_encryption", mediaenc)?;
        }
        if let Some(t) = &config.transport
            && !["udp", "tcp", "tls"].contains(&t.to_ascii_lowercase().as_str())
        {
            return Err(PeerError::InvalidConfig {
                field: "transport",
                reason: format!("{t:?} is not udp, tcp or tls"),
            });
        }
        if let Some(wav) = &config.play_wav {
            let audio = audio::read_wav(wav)?;
            if audio.rate != SOURCE_RATE || audio.channels != 1 {
                return Err(PeerError::InvalidConfig {
                    field: "play_wav",
                    reason: format!(
                        "{} is {} Hz with {} channel(s); baresip's aufile needs {SOURCE_RATE} Hz mono",
                        wav.display(),
                        audio.rate,
                        audio.channels
                    ),
                });
            }
        }
        crate::require("baresip")?;
        let dir = tempfile::Builder::new()
            .prefix("baresip-")
            .tempdir()
            .map_err(|e| PeerError::io("create baresip temp dir", e))?;
        let dir_path = dir.path().to_owned();
        std::fs::create_dir_all(dir_path.join("recordings"))
            .map_err(|e| PeerError::io("create recordings dir", e))?;
        let source = match &config.play_wav {
            Some(wav) => std::path::absolute(wav)
                .map_err(|e| PeerError::io(format!("resolve {}", wav.display()), e))?,
            None => audio::silence_wav(&dir_path, SOURCE_RATE, SILENCE_SECS)?,
        };
        if config
            .transport
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("tls"))
        {
            // Kamailio opens a new TLS connection to the UA for requests towards it: the UA
            // needs a server certificate (cert + key in one file).
            let key = dir_path.join("ua-key.pem");
            let cert = dir_path.join("ua-crt.pem");
            crate::kamailio::self_signed(&dir_path, "baresip.test", &key, &cert)?;
            let mut both = std::fs::read(&cert).map_err(|e| PeerError::io("read ua cert", e))?;
            both.extend(std::fs::read(&key).map_err(|e| PeerError::io("read ua key", e))?);
            std::fs::write(dir_path.join("ua-cert.pem"), both)
                .map_err(|e| PeerError::io("write ua cert", e))?;
        }
        std::fs::write(
            dir_path.join("accounts"),
            account_line(&config, &source) + "\n",
        )
        .map_err(|e| PeerError::io("write baresip accounts", e))?;
        std::fs::write(dir_path.join("contacts"), "")
            .map_err(|e| PeerError::io("write baresip contacts", e))?;
        let mut baresip = Baresip {
            config,
            sip_port: 0,
            ctrl_port: 0,
            process: None,
            ctrl: None,
            decoder: Decoder::default(),
            events: VecDeque::new(),
            next_token: 0,
            dir: Some(dir),
            dir_path,
        };
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            baresip.sip_port = free_ports(2);
            baresip.ctrl_port = free_port();
            let text = config_file(
                &baresip.config,
                &baresip.dir_path,
                baresip.sip_port,
                baresip.ctrl_port,
            );
            std::fs::write(baresip.dir_path.join("config"), text)
                .map_err(|e| PeerError::io("write baresip config", e))?;
            match baresip.spawn_and_wait() {
                Ok(()) => {
                    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, baresip.ctrl_port);
                    let stream = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(5))
                        .map_err(|e| PeerError::io("connect to baresip ctrl_tcp", e))?;
                    stream
                        .set_read_timeout(Some(Duration::from_millis(100)))
                        .map_err(|e| PeerError::io("set ctrl_tcp timeout", e))?;
                    baresip.ctrl = Some(stream);
                    baresip.check_codecs()?;
                    return Ok(baresip);
                }
                Err(ReadyError::PortInUse(reason)) => last = reason,
                Err(ReadyError::Fatal(reason)) => return Err(baresip.start_failed(attempt, reason)),
            }
        }
        Err(baresip.start_failed(ATTEMPTS, last))
    }

    /// Fails when baresip did not know a codec of [`BaresipConfig::codecs`] (a name without
    /// its rate, like `G722` for `G722/16000/1`, is looked up at 8000 Hz).
    fn check_codecs(&mut self) -> Result<(), PeerError> {
        let start = Instant::now();
        loop {
            if let Some(unknown) = unknown_codecs(&self.log()) {
                if unknown.is_empty() {
                    return Ok(());
                }
                self.stop();
                return Err(PeerError::InvalidConfig {
                    field: "codecs",
                    reason: format!(
                        "baresip has no codec {} (write name/rate/channels, e.g. G722/16000/1)",
                        unknown.join(", ")
                    ),
                });
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(PeerError::Timeout {
                    what: "baresip is ready".to_owned(),
                    after: READY_TIMEOUT,
                });
            }
            std::thread::sleep(POLL);
        }
    }

    fn start_failed(&mut self, attempts: u32, reason: String) -> PeerError {
        let log_tail = crate::tail(&self.log(), 30);
        if let Some(mut p) = self.process.take() {
            p.stop(Duration::from_secs(1));
        }
        PeerError::StartFailed {
            program: "baresip".to_owned(),
            attempts,
            reason,
            log_tail,
        }
    }

    fn spawn_and_wait(&mut self) -> Result<(), ReadyError> {
        if let Some(mut old) = self.process.take() {
            old.stop(Duration::from_secs(3));
        }
        let args = vec![
            "-f".to_owned(),
            self.dir_path.to_string_lossy().into_owned(),
        ];
        let mut process = PeerProcess::spawn(
            "baresip",
            "baresip",
            &args,
            &self.dir_path,
            &self.dir_path.join("baresip.log"),
            &[],
            Some(&self.dir_path),
        )
        .map_err(|e| ReadyError::Fatal(e.to_string()))?;
        let sockets = [
            (Proto::Udp, self.sip_port),
            (Proto::Tcp, self.sip_port),
            (Proto::Tcp, self.ctrl_port),
        ];
        let result = process.wait_ready(&sockets, &[], READY_TIMEOUT);
        self.process = Some(process);
        result
    }

    /// The SIP address the UA listens on (UDP and TCP).
    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.sip_port))
    }

    /// The UA's address of record, `sip:<user>@<domain>`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.config.user, self.config.domain)
    }

    fn exited_error(&mut self) -> Option<PeerError> {
        let status = self.process.as_mut().and_then(PeerProcess::exited)?;
        Some(PeerError::Exited {
            program: "baresip".to_owned(),
            status: status.to_string(),
            log_tail: crate::tail(&self.log(), 30),
        })
    }

    /// Reads the next control message before `deadline` (`None` on timeout).
    fn next_message(&mut self, deadline: Instant) -> Result<Option<(String, Value)>, PeerError> {
        loop {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => {
                    let raw = String::from_utf8_lossy(&frame).into_owned();
                    let value = json::parse(&raw).map_err(|e| PeerError::Protocol {
                        program: "baresip".to_owned(),
                        reason: format!("{e} in {raw:?}"),
                    })?;
                    return Ok(Some((raw, value)));
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(PeerError::Protocol {
                        program: "baresip".to_owned(),
                        reason: e.to_string(),
                    });
                }
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            let Some(stream) = self.ctrl.as_mut() else {
                return Err(PeerError::Protocol {
                    program: "baresip".to_owned(),
                    reason: "control connection is closed".to_owned(),
                });
            };
            let mut buf = [0u8; 8192];
            match stream.read(&mut buf) {
                Ok(0) => {
                    self.ctrl = None;
                    if let Some(e) = self.exited_error() {
                        return Err(e);
                    }
                    return Err(PeerError::Protocol {
                        program: "baresip".to_owned(),
                        reason: "control connection closed by baresip".to_owned(),
                    });
                }
                Ok(n) => self.decoder.push(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if let Some(e) = self.exited_error() {
                        return Err(e);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(PeerError::io("read baresip ctrl_tcp", e)),
            }
        }
    }

    /// Sends a menu command (`dial sip:bob@127.0.0.1`, `hangup`, `reginfo`, `accept`,
    /// `listcalls`...) over `ctrl_tcp` and returns the response text. Events arriving meanwhile
    /// are kept for [`Baresip::wait_event`]. An `ok: false` answer is
    /// [`PeerError::CommandFailed`].
    pub fn command(&mut self, cmd: &str) -> Result<String, PeerError> {
        let (name, params) = cmd.trim().split_once(' ').unwrap_or((cmd.trim(), ""));
        self.next_token += 1;
        let token = self.next_token.to_string();
        let body = format!(
            "{{\"command\":{},\"params\":{},\"token\":\"{token}\"}}",
            json_string(name),
            json_string(params.trim())
        );
        let Some(stream) = self.ctrl.as_mut() else {
            return Err(PeerError::Protocol {
                program: "baresip".to_owned(),
                reason: "control connection is closed".to_owned(),
            });
        };
        stream
            .write_all(&netstring::encode(body.as_bytes()))
            .map_err(|e| PeerError::io("write baresip ctrl_tcp", e))?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        while let Some((raw, value)) = self.next_message(deadline)? {
            if value.bool("event") == Some(true) {
                self.events.push_back((raw, value));
            } else if value.bool("response") == Some(true) && value.str("token") == Some(&token) {
                let data = value.str("data").unwrap_or_default().to_owned();
                return if value.bool("ok") == Some(false) {
                    Err(PeerError::CommandFailed {
                        program: "baresip".to_owned(),
                        command: cmd.to_owned(),
                        response: data,
                    })
                } else {
                    Ok(data)
                };
            }
        }
        Err(PeerError::Timeout {
            what: format!("baresip response to {cmd:?}"),
            after: COMMAND_TIMEOUT,
        })
    }

    /// Waits for an event of `event_type` (`CALL_ESTABLISHED`, `CALL_CLOSED`,
    /// `CALL_INCOMING`, `CALL_RTPESTAB`...) and returns its raw JSON. Events already received
    /// are searched first (the first match is consumed; other events stay queued).
    pub fn wait_event(&mut self, event_type: &str, timeout: Duration) -> Result<String, PeerError> {
        if let Some(i) = self
            .events
            .iter()
            .position(|(_, v)| v.str("type") == Some(event_type))
            && let Some((raw, _)) = self.events.remove(i)
        {
            return Ok(raw);
        }
        let deadline = Instant::now() + timeout;
        while let Some((raw, value)) = self.next_message(deadline)? {
            if value.bool("event") != Some(true) {
                continue;
            }
            if value.str("type") == Some(event_type) {
                return Ok(raw);
            }
            self.events.push_back((raw, value));
        }
        Err(PeerError::Timeout {
            what: format!("baresip event {event_type}"),
            after: timeout,
        })
    }

    /// Returns (and forgets) every event received so far, raw JSON, oldest first.
    pub fn drain_events(&mut self) -> Result<Vec<String>, PeerError> {
        while let Some((raw, value)) = self.next_message(Instant::now())? {
            if value.bool("event") == Some(true) {
                self.events.push_back((raw, value));
            }
        }
        Ok(self.events.drain(..).map(|(raw, _)| raw).collect())
    }

    /// Waits until the registrar answered the REGISTER with a 2xx. A refusal (e.g. wrong
    /// password: `401`/`403`) is [`PeerError::RegistrationFailed`] as soon as baresip logs it.
    pub fn wait_registered(&mut self, timeout: Duration) -> Result<(), PeerError> {
        if self.config.registrar.is_none() {
            return Err(PeerError::InvalidConfig {
                field: "registrar",
                reason: "this UA has no registrar".to_owned(),
            });
        }
        let aor = format!("{}@{}", self.config.user, self.config.domain);
        let start = Instant::now();
        loop {
            match registration_state(&self.log(), &aor) {
                Some(Ok(_)) => return Ok(()),
                Some(Err(line)) => {
                    return Err(PeerError::RegistrationFailed {
                        aor: format!("sip:{aor}"),
                        reason: line,
                    });
                }
                None => {}
            }
            if let Some(e) = self.exited_error() {
                return Err(e);
            }
            if start.elapsed() > timeout {
                return Err(PeerError::Timeout {
                    what: format!("registration of sip:{aor}"),
                    after: timeout,
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Places a call (`dial <uri>`); follow it with
    /// `wait_event("CALL_ESTABLISHED", ..)`.
    pub fn dial(&mut self, uri: &str) -> Result<(), PeerError> {
        self.command(&format!("dial {uri}")).map(|_| ())
    }

    /// Hangs up the current call.
    pub fn hangup(&mut self) -> Result<(), PeerError> {
        self.command("hangup").map(|_| ())
    }

    /// The WAV files recorded so far (with `record`): per call `dump-<time>-enc.wav` (what was
    /// sent) and `dump-<time>-dec.wav` (what was received), at the codec's rate (8 kHz mono for
    /// G.711, 16 kHz mono for G.722, 48 kHz stereo for Opus). Sorted by name.
    pub fn recordings(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir_path.join("recordings"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "wav"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// The received-audio recordings (`*-dec.wav`), sorted.
    pub fn received_recordings(&self) -> Vec<PathBuf> {
        self.recordings()
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect()
    }

    /// Stops baresip (SIGTERM: it de-REGISTERs first; SIGKILL after 3 s).
    pub fn stop(&mut self) {
        self.ctrl = None;
        if let Some(mut p) = self.process.take() {
            p.stop(Duration::from_secs(3));
        }
    }

    /// baresip's log so far (colour codes included).
    pub fn log(&self) -> String {
        crate::process::read_lossy(&self.dir_path.join("baresip.log"))
    }

    /// The UA's directory (config, accounts, log, recordings).
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!("baresip directory kept for inspection: {}", kept.display());
        }
    }
}

/// Encodes `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const OK_LOG: &str = "baresip is ready.\n\
        alice@127.0.0.1: {0/UDP/v4} 200 OK (kamailio (5.6.3 (x86_64/linux))) [1 binding]\n";
    const FAIL_LOG: &str = "baresip is ready.\n\
        \u{1b}[31mreg: sip:alice@127.0.0.1: 401 Unauthorized (kamailio (5.6.3 (x86_64/linux)))\n\u{1b}[;m";

    #[test]
    fn reads_registration_state_from_the_log() {
        assert!(matches!(
            registration_state(OK_LOG, "alice@127.0.0.1"),
            Some(Ok(_))
        ));
        match registration_state(FAIL_LOG, "alice@127.0.0.1") {
            Some(Err(line)) => assert!(line.contains("401 Unauthorized"), "{line}"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(registration_state(OK_LOG, "bob@127.0.0.1"), None);
        assert_eq!(
            registration_state("baresip is ready.\n", "alice@127.0.0.1"),
            None
        );
        // The latest line wins (re-registration after a failure).
        let both = format!("{FAIL_LOG}{OK_LOG}");
        assert!(matches!(
            registration_state(&both, "alice@127.0.0.1"),
            Some(Ok(_))
        ));
        let refused = "alice@127.0.0.1: {0/UDP/v4} 403 Forbidden (x)\n";
        assert!(matches!(
            registration_state(refused, "alice@127.0.0.1"),
            Some(Err(_))
        ));
    }

    #[test]
    fn finds_codecs_baresip_does_not_know() {
        assert_eq!(unknown_codecs("aucodec: PCMU/8000/1\n"), None);
        assert_eq!(unknown_codecs(OK_LOG), Some(Vec::new()));
        let log = "aucodec: G722/16000/1\n\u{1b}[31maccount: audio codec not found: G722/8000/1\n\
                   \u{1b}[;mPopulated 1 account\nbaresip is ready.\n";
        assert_eq!(unknown_codecs(log), Some(vec!["G722/8000/1".to_owned()]));
    }

    #[test]
    fn strips_ansi_colours() {
        assert_eq!(strip_ansi("\u{1b}[32mOK \u{1b}[;m done"), "OK  done");
        assert_eq!(strip_ansi("plain"), "plain");
        assert_eq!(strip_ansi("\u{1b}"), "\u{1b}");
        assert_eq!(strip_ansi("x\u{1b}[31"), "x");
    }

    #[test]
    fn account_line_for_a_registering_tcp_ua() {
        let config = BaresipConfig {
            auto_answer: true,
            transport: Some("TCP".into()),
            codecs: "opus/48000/2".into(),
            ..BaresipConfig::registering("bob", "bobpw", "127.0.0.1:5099".parse().unwrap())
        };
        let line = account_line(&config, Path::new("/w/tone.wav"));
        assert_eq!(
            line,
            "<sip:bob@127.0.0.1;transport=tcp>;auth_pass=bobpw;\
             outbound=\"sip:127.0.0.1:5099;transport=tcp\";regint=300;answermode=auto;\
             audio_codecs=opus/48000/2;audio_source=aufile,/w/tone.wav"
        );
        let plain = account_line(&BaresipConfig::default(), Path::new("/s.wav"));
        assert_eq!(
            plain,
            "<sip:alice@127.0.0.1>;regint=0;answermode=manual;audio_codecs=PCMU;audio_source=aufile,/s.wav"
        );
    }

    #[test]
    fn media_encryption_sets_mediaenc_and_loads_srtp() {
        let config = BaresipConfig {
            media_encryption: Some("srtp-mand".into()),
            ..BaresipConfig::default()
        };
        let line = account_line(&config, Path::new("/s.wav"));
        assert!(line.ends_with(";mediaenc=srtp-mand"), "{line}");
        let text = config_file(&config, Path::new("/d"), 7000, 7100);
        assert!(text.contains("module\t\t\tsrtp.so\n"), "{text}");
        let plain = config_file(&BaresipConfig::default(), Path::new("/d"), 7000, 7100);
        assert!(!plain.contains("srtp"), "{plain}");
    }

    #[test]
    fn config_file_has_ports_and_modules() {
        let config = BaresipConfig {
            record: true,
            ..BaresipConfig::default()
        };
        let text = config_file(&config, Path::new("/d"), 7000, 7100);
        assert!(text.contains("sip_listen\t\t127.0.0.1:7000\n"));
        assert!(text.contains("ctrl_tcp_listen\t\t127.0.0.1:7100\n"));
        assert!(text.contains("module\t\t\tsndfile.so\n"));
        for codec in ["g711", "g722", "opus"] {
            assert!(
                text.contains(&format!("module\t\t\t{codec}.so\n")),
                "{codec}"
            );
        }
        assert!(text.contains("snd_path\t\t/d/recordings\n"));
        let text = config_file(&BaresipConfig::default(), Path::new("/d"), 7000, 7100);
        assert!(!text.contains("sndfile"));
    }

    #[test]
    fn rejects_values_that_break_the_account_line() {
        for config in [
            BaresipConfig {
                user: "a;b".into(),
                ..BaresipConfig::default()
            },
            BaresipConfig {
                password: Some("p w".into()),
                ..BaresipConfig::default()
            },
            BaresipConfig {
                transport: Some("sctp".into()),
                ..BaresipConfig::default()
            },
            BaresipConfig {
                codecs: String::new(),
                ..BaresipConfig::default()
            },
        ] {
            assert!(matches!(
                Baresip::start(config),
                Err(PeerError::InvalidConfig { .. })
            ));
        }
    }

    #[test]
    fn rejects_a_wav_aufile_cannot_play() {
        let dir = tempfile::tempdir().unwrap();
        let wav = audio::tone_wav(dir.path(), 8000, 440, 1).unwrap();
        let config = BaresipConfig {
            play_wav: Some(wav),
            ..BaresipConfig::default()
        };
        assert!(matches!(
            Baresip::start(config),
            Err(PeerError::InvalidConfig {
                field: "play_wav",
                ..
            })
        ));
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("dial sip:a@b"), "\"dial sip:a@b\"");
        assert_eq!(json_string("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\u0001\"");
        let parsed = json::parse(&json_string("x\"y\u{2}")).unwrap();
        assert_eq!(parsed, Value::String("x\"y\u{2}".into()));
    }
}
