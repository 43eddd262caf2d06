//! Real third-party peers for tests: Prosody, Kamailio, baresip and SIPp on loopback.
//!
//! This is a **dev-only** crate, used by other crates' tests as a dev-dependency. It is
//! synchronous (std only, no tokio). Every peer:
//!
//! - runs from a fresh temporary directory that holds its configuration, data and log;
//! - listens only on `127.0.0.1`, on ports picked with [`free_port`] (never 5060/5222), and the
//!   start is retried on fresh ports when another process grabbed a port in between (tests run
//!   in parallel, `cargo nextest` even runs each test in its own process);
//! - is ready when `start` returns: the harness checks (through `/proc`) that the sockets it
//!   asked for are held by *its* process group, not by a neighbour;
//! - is stopped and reaped when its guard is dropped (SIGTERM, a grace period, then SIGKILL to
//!   the whole process group), and a small watchdog kills it if the test process dies without
//!   running destructors;
//! - keeps its log: `log()` returns it, and when the guard is dropped while the thread panics the
//!   tail of the log is printed to stderr and the temporary directory is kept for inspection.
//!
//! Tests guard themselves with [`available`]:
//!
//! ```no_run
//! # fn main() -> Result<(), jigasi_testpeers::PeerError> {
//! use jigasi_testpeers::{available, Kamailio, KamailioConfig};
//! if !available(&["kamailio"]) {
//!     return Ok(()); // prints "skipped: kamailio not installed"; panics instead when CI=true
//! }
//! let kamailio = Kamailio::start(KamailioConfig::default())?;
//! println!("registrar at {}", kamailio.addr());
//! # Ok(())
//! # }
//! ```
//!
//! Drop order matters for SIP: declare the registrar *before* the baresip UAs so that the UAs
//! are dropped first (baresip de-REGISTERs on SIGTERM and would otherwise wait for a dead
//! registrar; the harness caps that wait).
#![allow(clippy::print_stderr)]

pub mod audio;
mod baresip;
mod json;
mod kamailio;
mod netstring;
mod ports;
mod probe;
mod process;
mod procnet;
mod prosody;
mod sipp;

use std::path::PathBuf;
use std::time::Duration;

pub use baresip::{Baresip, BaresipConfig};
pub use kamailio::{DispatchAlgorithm, Dispatcher, Kamailio, KamailioConfig};
pub use ports::free_port;
pub use probe::sip_options;
pub use prosody::{Prosody, ProsodyConfig};
pub use sipp::{Sipp, SippOutcome, SippProcess};

/// Error from the harness, grouped by who is to blame: the machine (a program is missing, an I/O
/// call failed), the test (an invalid configuration), or the peer (it did not start, exited,
/// answered something unexpected, or did not do what was awaited in time).
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// A required program is not installed (not found on `PATH`), or a module file is missing.
    #[error("{program} is not installed{}", if *.ci { " (CI=true: this is a failure)" } else { "" })]
    NotInstalled {
        /// The program (or package) that is missing.
        program: String,
        /// Whether the environment variable `CI` was set to true.
        ci: bool,
    },
    /// A local I/O operation of the harness failed (temp dir, config file, socket...).
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration given by the test cannot be turned into a peer configuration.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The configuration field at fault.
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// A helper program (openssl, prosodyctl, espeak-ng, sox...) exited with a failure.
    #[error("{program} failed ({status}): {output}")]
    ToolFailed {
        /// The helper program.
        program: String,
        /// Its exit status, as text.
        status: String,
        /// The tail of what it printed.
        output: String,
    },
    /// A peer could not be started: it exited or never opened its ports.
    #[error(
        "{program} did not start after {attempts} attempt(s): {reason}\n--- log tail ---\n{log_tail}"
    )]
    StartFailed {
        /// The peer program.
        program: String,
        /// How many starts were tried (fresh ports each time).
        attempts: u32,
        /// What went wrong on the last attempt.
        reason: String,
        /// The end of the peer's log.
        log_tail: String,
    },
    /// A running peer exited unexpectedly.
    #[error("{program} exited unexpectedly ({status})\n--- log tail ---\n{log_tail}")]
    Exited {
        /// The peer program.
        program: String,
        /// Its exit status, as text.
        status: String,
        /// The end of the peer's log.
        log_tail: String,
    },
    /// Something awaited did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the harness waited.
        after: Duration,
    },
    /// The peer answered a control command with a failure.
    #[error("{program} rejected command {command:?}: {response}")]
    CommandFailed {
        /// The peer program.
        program: String,
        /// The command sent.
        command: String,
        /// The peer's answer.
        response: String,
    },
    /// The peer sent something the harness cannot parse on a control channel.
    #[error("{program} sent malformed control data: {reason}")]
    Protocol {
        /// The peer program.
        program: String,
        /// What was wrong.
        reason: String,
    },
    /// A SIP registration was refused.
    #[error("registration of {aor} failed: {reason}")]
    RegistrationFailed {
        /// The address of record.
        aor: String,
        /// The failure line from the UA's log.
        reason: String,
    },
    /// A WAV file could not be read or analysed.
    #[error("audio file {}: {reason}", path.display())]
    Audio {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl PeerError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        PeerError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Whether the environment variable `CI` says we run under CI (`true`, `1` or `yes`, any case).
pub fn under_ci() -> bool {
    std::env::var("CI")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

/// Finds `program` on `PATH` (or as a path, if it contains a `/`), returning its full path.
pub fn find_program(program: &str) -> Option<PathBuf> {
    fn is_executable(path: &std::path::Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable(&path).then_some(path);
    }
    let path_var = std::env::var_os("PATH")?;
    // Root's PATH usually has the sbin directories; a test runner's may not (kamailio is in
    // /usr/sbin), so look there too.
    let extra = ["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from);
    std::env::split_paths(&path_var)
        .chain(extra)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

/// Checks a peer program is installed.
///
/// Returns [`PeerError::NotInstalled`] when it is missing, with `ci` telling whether `CI=true`
/// is set: under CI a test must propagate the error (fail); elsewhere tests use [`available`]
/// to skip instead.
pub fn require(program: &str) -> Result<(), PeerError> {
    match find_program(program) {
        Some(_) => Ok(()),
        None => Err(PeerError::NotInstalled {
            program: program.to_owned(),
            ci: under_ci(),
        }),
    }
}

/// For tests: whether all `programs` are installed.
///
/// Returns `true` when they all are. When one is missing it prints
/// `skipped: <program> not installed` to stderr and returns `false`, unless `CI=true` is set:
/// then it panics, so that a CI run without the peers fails instead of silently skipping.
///
/// # Panics
/// When a program is missing and the environment variable `CI` is true.
pub fn available(programs: &[&str]) -> bool {
    match check_available(programs, under_ci()) {
        Availability::All => true,
        Availability::Skip(missing) => {
            for program in missing {
                eprintln!("skipped: {program} not installed");
            }
            false
        }
        Availability::Fail(missing) => panic!(
            "{} not installed but CI=true: real-peer tests must run in CI (run scripts/install-deps.sh)",
            missing.join(", ")
        ),
    }
}

/// What [`available`] decides.
#[derive(Debug, PartialEq, Eq)]
enum Availability {
    /// Everything is installed.
    All,
    /// Something is missing outside CI: skip the test.
    Skip(Vec<String>),
    /// Something is missing under CI: fail the test.
    Fail(Vec<String>),
}

fn check_available(programs: &[&str], ci: bool) -> Availability {
    let missing: Vec<String> = programs
        .iter()
        .filter(|p| find_program(p).is_none())
        .map(|p| (*p).to_owned())
        .collect();
    if missing.is_empty() {
        Availability::All
    } else if ci {
        Availability::Fail(missing)
    } else {
        Availability::Skip(missing)
    }
}

/// The last `max_lines` lines of `text`.
pub(crate) fn tail(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(max_lines);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn find_program_finds_sh_and_rejects_nonsense() {
        assert!(find_program("sh").is_some());
        assert!(find_program("/bin/sh").is_some());
        assert!(find_program("definitely-not-a-program-xyz").is_none());
        assert!(find_program("").is_none());
        assert!(find_program("/nonexistent/dir/prog").is_none());
    }

    #[test]
    fn require_reports_missing_program() {
        assert!(require("sh").is_ok());
        match require("definitely-not-a-program-xyz") {
            Err(PeerError::NotInstalled { program, .. }) => {
                assert_eq!(program, "definitely-not-a-program-xyz");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn available_is_true_for_installed_programs() {
        assert!(available(&["sh", "kill"]));
        assert!(available(&[]));
    }

    #[test]
    fn missing_programs_skip_outside_ci_and_fail_under_ci() {
        let missing = vec!["no-such-peer-xyz".to_owned()];
        assert_eq!(check_available(&["sh"], true), Availability::All);
        assert_eq!(
            check_available(&["sh", "no-such-peer-xyz"], false),
            Availability::Skip(missing.clone())
        );
        assert_eq!(
            check_available(&["no-such-peer-xyz", "sh"], true),
            Availability::Fail(missing)
        );
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc\nd", 2), "c\nd");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "");
    }

    #[test]
    fn errors_display_their_cause() {
        let e = PeerError::NotInstalled {
            program: "kamailio".into(),
            ci: true,
        };
        assert_eq!(
            e.to_string(),
            "kamailio is not installed (CI=true: this is a failure)"
        );
        let e = PeerError::Timeout {
            what: "REGISTER".into(),
            after: Duration::from_secs(2),
        };
        assert_eq!(e.to_string(), "timed out after 2s waiting for REGISTER");
    }
}
