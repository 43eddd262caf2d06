//! A child process in its own process group, with its output in a log file, a watchdog that
//! kills the group if the test process dies, and kill-on-drop.

use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::procnet::{self, Proto};
use crate::{PeerError, tail};

/// How often readiness and exit are polled.
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// Lines of log printed when a guard is dropped during a panic.
const PANIC_TAIL_LINES: usize = 40;

/// A running peer process (and its watchdog), stopped when dropped.
#[derive(Debug)]
pub(crate) struct PeerProcess {
    name: &'static str,
    child: Option<Child>,
    watchdog: Option<Child>,
    log_path: PathBuf,
}

/// How a start attempt failed.
#[derive(Debug)]
pub(crate) enum ReadyError {
    /// Probably a port race: retry on fresh ports.
    PortInUse(String),
    /// Anything else: give up.
    Fatal(String),
}

/// Sends `signal` (e.g. "TERM", "KILL") to `target` (a pid, or `-pgid` for a group).
fn send_signal(signal: &str, target: &str) {
    // kill(1) keeps us free of unsafe libc calls; a failure means the target is already gone.
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl PeerProcess {
    /// Spawns `program args` in `cwd`, stdin from /dev/null, stdout and stderr appended to
    /// `log_path`, in a new process group watched by a watchdog (which also removes
    /// `cleanup_dir`, a directory under the system temp dir, if the test process dies).
    pub(crate) fn spawn(
        name: &'static str,
        program: &str,
        args: &[String],
        cwd: &Path,
        log_path: &Path,
        env: &[(&str, &str)],
        cleanup_dir: Option<&Path>,
    ) -> Result<PeerProcess, PeerError> {
        Self::spawn_watched(
            name,
            program,
            args,
            cwd,
            log_path,
            env,
            cleanup_dir,
            std::process::id(),
        )
    }

    /// [`PeerProcess::spawn`] with the watchdog watching process `watch_pid`.
    #[allow(clippy::too_many_arguments)]
    fn spawn_watched(
        name: &'static str,
        program: &str,
        args: &[String],
        cwd: &Path,
        log_path: &Path,
        env: &[(&str, &str)],
        cleanup_dir: Option<&Path>,
        watch_pid: u32,
    ) -> Result<PeerProcess, PeerError> {
        let path = crate::find_program(program).ok_or_else(|| PeerError::NotInstalled {
            program: program.to_owned(),
            ci: crate::under_ci(),
        })?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|e| PeerError::io(format!("open log {}", log_path.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| PeerError::io("duplicate log handle", e))?;
        let mut command = Command::new(path);
        command
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .map_err(|e| PeerError::io(format!("spawn {program}"), e))?;
        let pgid = child.id();
        // The watchdog joins the peer's group, polls the test process and, once the test
        // process is gone (e.g. killed by a test-runner timeout, skipping destructors), kills
        // the group and removes the peer's temp dir. Stopping the group normally kills the
        // watchdog too. (dash's `kill` takes no `--`: a negative pid right after the signal.)
        let cleanup = cleanup_dir
            .filter(|d| d.starts_with(std::env::temp_dir()) && d.components().count() > 2)
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default();
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(
                "trap '' TERM; while kill -0 \"$0\" 2>/dev/null; do sleep 1; done; \
                 kill -TERM -\"$1\" 2>/dev/null; sleep 0.3; \
                 [ -n \"$2\" ] && rm -rf -- \"$2\"; kill -KILL -\"$1\"",
            )
            .arg(watch_pid.to_string())
            .arg(pgid.to_string())
            .arg(cleanup)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(i32::try_from(pgid).unwrap_or(0))
            .spawn()
            .ok();
        Ok(PeerProcess {
            name,
            child: Some(child),
            watchdog,
            log_path: log_path.to_owned(),
        })
    }

    /// The main process id (also the process group id), if running.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if the main process has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The log so far (lossy UTF-8), empty if unreadable.
    pub(crate) fn log(&self) -> String {
        read_lossy(&self.log_path)
    }

    /// Whether the peer's process group holds all `sockets`.
    pub(crate) fn owns(&self, sockets: &[(Proto, u16)]) -> bool {
        self.pid()
            .is_some_and(|pgid| procnet::group_owns(pgid, sockets))
    }

    /// Waits until the peer holds `sockets`. Fails fast when the main process exits or the log
    /// shows one of `failure_markers` (classified as a port race if the log says a port was in
    /// use).
    pub(crate) fn wait_ready(
        &mut self,
        sockets: &[(Proto, u16)],
        failure_markers: &[&str],
        timeout: Duration,
    ) -> Result<(), ReadyError> {
        let start = Instant::now();
        let classify = |log: &str, what: String| {
            let lower = log.to_ascii_lowercase();
            if lower.contains("in use") || lower.contains("failed to open server port") {
                ReadyError::PortInUse(what)
            } else {
                ReadyError::Fatal(what)
            }
        };
        loop {
            if let Some(status) = self.exited() {
                let log = self.log();
                return Err(classify(&log, format!("exited with {status}")));
            }
            let log = self.log();
            if let Some(marker) = failure_markers.iter().find(|m| log.contains(*m)) {
                return Err(classify(&log, format!("log says {marker:?}")));
            }
            if self.owns(sockets) {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(classify(
                    &log,
                    format!("ports {sockets:?} not open after {timeout:?}"),
                ));
            }
            sleep(POLL);
        }
    }

    /// Stops the peer: SIGTERM to the main process, up to `grace` for it to exit, then SIGKILL
    /// to the whole process group; reaps everything.
    pub(crate) fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        if child.try_wait().ok().flatten().is_none() {
            send_signal("TERM", &pid.to_string());
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() && start.elapsed() < grace {
                sleep(POLL);
            }
        }
        // Children of the peer (Kamailio's workers) and the watchdog share the group.
        send_signal("KILL", &format!("-{pid}"));
        let _ = child.kill();
        let _ = child.wait();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- {} log tail ({}) ----\n{}\n---- end of {} log ----",
                self.name,
                self.log_path.display(),
                tail(&self.log(), PANIC_TAIL_LINES),
                self.name
            );
        }
        self.stop(Duration::from_secs(3));
    }
}

/// Reads a file as lossy UTF-8; empty if unreadable.
pub(crate) fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Runs a helper tool to completion (with a timeout), returning its combined output.
pub(crate) fn run_tool(
    program: &str,
    args: &[&str],
    cwd: &Path,
    timeout: Duration,
) -> Result<String, PeerError> {
    let path = crate::find_program(program).ok_or_else(|| PeerError::NotInstalled {
        program: program.to_owned(),
        ci: crate::under_ci(),
    })?;
    let out_path = cwd.join(format!(".{program}-{}.out", std::process::id()));
    let out = File::create(&out_path)
        .map_err(|e| PeerError::io(format!("create {program} output"), e))?;
    let out_err = out
        .try_clone()
        .map_err(|e| PeerError::io("duplicate output handle", e))?;
    let mut child = Command::new(path)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(out_err)
        .spawn()
        .map_err(|e| PeerError::io(format!("spawn {program}"), e))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_file(&out_path);
                return Err(PeerError::Timeout {
                    what: format!("{program} {}", args.join(" ")),
                    after: timeout,
                });
            }
            Ok(None) => sleep(POLL),
            Err(e) => return Err(PeerError::io(format!("wait for {program}"), e)),
        }
    };
    let output = read_lossy(&out_path);
    let _ = std::fs::remove_file(&out_path);
    if status.success() {
        Ok(output)
    } else {
        Err(PeerError::ToolFailed {
            program: program.to_owned(),
            status: status.to_string(),
            output: tail(&output, 20),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn alive(pid: u32) -> bool {
        // A zombie still has a /proc entry; look at its state.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }

    #[test]
    fn drop_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        // The shell ignores TERM, so the grace period runs out and the group gets SIGKILL;
        // the grandchild `sleep` must die too.
        let args = vec![
            "-c".to_owned(),
            "trap '' TERM; sleep 30 & echo child $!; wait".to_owned(),
        ];
        let mut p = PeerProcess::spawn("sh", "sh", &args, dir.path(), &log, &[], None).unwrap();
        let pid = p.pid().unwrap();
        let start = Instant::now();
        let grandchild = loop {
            let text = p.log();
            if let Some(n) = text
                .lines()
                .find_map(|l| l.strip_prefix("child "))
                .and_then(|n| n.trim().parse::<u32>().ok())
            {
                break n;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "no child line");
            sleep(POLL);
        };
        assert!(alive(pid) && alive(grandchild));
        p.stop(Duration::from_millis(200));
        assert!(p.pid().is_none());
        let start = Instant::now();
        while alive(grandchild) && start.elapsed() < Duration::from_secs(2) {
            sleep(POLL);
        }
        assert!(!alive(grandchild), "grandchild survived");
        drop(p);
    }

    #[test]
    fn watchdog_kills_the_group_and_removes_the_dir_when_the_watched_process_dies() {
        let dir = tempfile::Builder::new()
            .prefix("watchdog-test-")
            .tempdir()
            .unwrap();
        let dir_path = dir.path().to_owned();
        let log = dir_path.join("log");
        // Stand-in for the test process.
        let mut watched = Command::new("sleep").arg("30").spawn().unwrap();
        let args = vec!["-c".to_owned(), "sleep 30".to_owned()];
        let mut p = PeerProcess::spawn_watched(
            "sh",
            "sh",
            &args,
            &dir_path,
            &log,
            &[],
            Some(&dir_path),
            watched.id(),
        )
        .unwrap();
        let pid = p.pid().unwrap();
        assert!(alive(pid));
        watched.kill().unwrap();
        watched.wait().unwrap();
        let start = Instant::now();
        while (p.exited().is_none() || dir_path.exists())
            && start.elapsed() < Duration::from_secs(5)
        {
            sleep(POLL);
        }
        assert!(p.exited().is_some(), "peer survived its watched process");
        assert!(!dir_path.exists(), "temp dir not removed");
        drop(p);
        drop(dir);
    }

    #[test]
    fn wait_ready_reports_exit_and_markers() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let args = vec![
            "-c".to_owned(),
            "echo bind: Address already in use".to_owned(),
        ];
        let mut p = PeerProcess::spawn("sh", "sh", &args, dir.path(), &log, &[], None).unwrap();
        match p.wait_ready(&[(Proto::Tcp, 1)], &[], Duration::from_secs(5)) {
            Err(ReadyError::PortInUse(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
        let args = vec!["-c".to_owned(), "echo FATAL thing; sleep 5".to_owned()];
        let log2 = dir.path().join("log2");
        let mut p = PeerProcess::spawn("sh", "sh", &args, dir.path(), &log2, &[], None).unwrap();
        match p.wait_ready(&[(Proto::Tcp, 1)], &["FATAL"], Duration::from_secs(5)) {
            Err(ReadyError::Fatal(reason)) => assert!(reason.contains("FATAL")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn run_tool_reports_failure_with_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = run_tool("sh", &["-c", "echo hi"], dir.path(), Duration::from_secs(5)).unwrap();
        assert_eq!(out.trim(), "hi");
        match run_tool(
            "sh",
            &["-c", "echo bad; exit 3"],
            dir.path(),
            Duration::from_secs(5),
        ) {
            Err(PeerError::ToolFailed { output, .. }) => assert_eq!(output.trim(), "bad"),
            other => panic!("unexpected {other:?}"),
        }
        match run_tool(
            "sh",
            &["-c", "sleep 5"],
            dir.path(),
            Duration::from_millis(100),
        ) {
            Err(PeerError::Timeout { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
