//! SIPp: run a scenario and collect its exit code (test-peers recipe R2).

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::PeerError;
use crate::ports::free_port;
use crate::process::{POLL, PeerProcess, read_lossy};

/// Namespace for starting SIPp.
#[derive(Debug)]
pub struct Sipp;

/// How a SIPp run ended.
#[derive(Debug, Clone)]
pub struct SippOutcome {
    /// SIPp's exit status.
    pub status: ExitStatus,
    /// The exit code: `0` all calls succeeded, `1` at least one failed, `97` exit on internal
    /// command, `99` normal exit without calls processed, `-1`/`255` fatal error...; `None` if
    /// killed by a signal.
    pub code: Option<i32>,
    /// Everything SIPp printed (stdout and stderr, its screens included).
    pub output: String,
    /// The arguments SIPp actually ran with (including the ones the harness added).
    pub args: Vec<String>,
    /// How long the run took.
    pub elapsed: Duration,
}

impl SippOutcome {
    /// Whether SIPp exited with code 0 (every call succeeded).
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// A SIPp started in the background (e.g. a UAS); killed when dropped.
#[derive(Debug)]
pub struct SippProcess {
    process: Option<PeerProcess>,
    args: Vec<String>,
    started: Instant,
    local_port: Option<u16>,
    _dir: TempDir,
    log_path: std::path::PathBuf,
}

/// The arguments with the harness defaults added: `-nostdin`, `-i 127.0.0.1` and `-p <free
/// port>` unless given (SIPp's defaults would be stdin control, the first interface, and port
/// 5060). Returns the local port if the harness chose it.
fn with_defaults(args: &[&str]) -> (Vec<String>, Option<u16>) {
    let mut out: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let has = |flag: &str| args.contains(&flag);
    if !has("-nostdin") {
        out.push("-nostdin".to_owned());
    }
    if !has("-i") {
        out.push("-i".to_owned());
        out.push("127.0.0.1".to_owned());
    }
    let mut port = None;
    if !has("-p") {
        let p = free_port();
        out.push("-p".to_owned());
        out.push(p.to_string());
        port = Some(p);
    }
    (out, port)
}

impl Sipp {
    /// Runs `sipp <args>` in `cwd` (where it writes its trace files) and waits up to `timeout`
    /// for it to exit. The harness adds `-nostdin`, `-i 127.0.0.1` and `-p <free port>` unless
    /// present; if the chosen port turns out to be taken, the run is retried on another one.
    /// A run still going at `timeout` is killed: [`PeerError::Timeout`].
    pub fn run(args: &[&str], cwd: &Path, timeout: Duration) -> Result<SippOutcome, PeerError> {
        let mut last = None;
        for _ in 0..3 {
            let mut process = Sipp::spawn(args, cwd)?;
            let outcome = process.wait(timeout)?;
            let port_race = process.local_port.is_some()
                && !outcome.success()
                && outcome.output.contains("in use");
            if !port_race {
                return Ok(outcome);
            }
            last = Some(outcome);
        }
        last.ok_or_else(|| PeerError::StartFailed {
            program: "sipp".to_owned(),
            attempts: 3,
            reason: "local port in use".to_owned(),
            log_tail: String::new(),
        })
    }

    /// Starts `sipp <args>` in `cwd` in the background (same defaults as [`Sipp::run`], no
    /// retry); collect the outcome with [`SippProcess::wait`].
    pub fn spawn(args: &[&str], cwd: &Path) -> Result<SippProcess, PeerError> {
        crate::require("sipp")?;
        let dir = tempfile::Builder::new()
            .prefix("sipp-")
            .tempdir()
            .map_err(|e| PeerError::io("create sipp temp dir", e))?;
        let log_path = dir.path().join("sipp.log");
        let (full, local_port) = with_defaults(args);
        let process =
            PeerProcess::spawn("sipp", "sipp", &full, cwd, &log_path, &[], Some(dir.path()))?;
        Ok(SippProcess {
            process: Some(process),
            args: full,
            started: Instant::now(),
            local_port,
            _dir: dir,
            log_path,
        })
    }
}

impl SippProcess {
    /// The local SIP port SIPp uses, when the harness chose it (no `-p` given).
    pub fn local_port(&self) -> Option<u16> {
        self.local_port
    }

    /// Waits up to `timeout` for SIPp to exit. On timeout it is killed and the result is
    /// [`PeerError::Timeout`].
    pub fn wait(&mut self, timeout: Duration) -> Result<SippOutcome, PeerError> {
        let start = Instant::now();
        loop {
            let Some(process) = self.process.as_mut() else {
                return Err(PeerError::Protocol {
                    program: "sipp".to_owned(),
                    reason: "already waited for".to_owned(),
                });
            };
            if let Some(status) = process.exited() {
                let mut process = self.process.take();
                if let Some(p) = process.as_mut() {
                    p.stop(Duration::from_millis(100));
                }
                return Ok(SippOutcome {
                    status,
                    code: status.code(),
                    output: read_lossy(&self.log_path),
                    args: self.args.clone(),
                    elapsed: self.started.elapsed(),
                });
            }
            if start.elapsed() > timeout {
                self.kill();
                return Err(PeerError::Timeout {
                    what: format!("sipp {}", self.args.join(" ")),
                    after: timeout,
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// What SIPp printed so far.
    pub fn output(&self) -> String {
        read_lossy(&self.log_path)
    }

    /// Kills SIPp now (SIGTERM, then SIGKILL after 1 s).
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop(Duration::from_secs(1));
        }
    }
}

impl Drop for SippProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_loopback_defaults() {
        let (args, port) = with_defaults(&["-sn", "uac", "127.0.0.1:9"]);
        assert_eq!(&args[..4], ["-sn", "uac", "127.0.0.1:9", "-nostdin"]);
        assert_eq!(&args[4..6], ["-i", "127.0.0.1"]);
        assert_eq!(args[6], "-p");
        assert_eq!(args[7], port.map(|p| p.to_string()).unwrap_or_default());
        assert!(port.is_some_and(|p| p != 5060));
    }

    #[test]
    fn keeps_explicit_options() {
        let (args, port) = with_defaults(&["-nostdin", "-i", "127.0.0.2", "-p", "7000"]);
        assert_eq!(args, ["-nostdin", "-i", "127.0.0.2", "-p", "7000"]);
        assert_eq!(port, None);
    }
}
