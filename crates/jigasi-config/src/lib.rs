//! Jigasi-compatible configuration for jigasi-rs: two ways in, one typed model out.
//!
//! - [`cli::parse_args`] reads Jigasi's command line (`-name=value` or `--name=value`) plus our
//!   own `--config FILE`, `--print-config`, `--version`, `--help`.
//! - [`load`] then reads either Jigasi's `<configdir>/<configdirname>/sip-communicator.properties`
//!   (with `jigasi.conf` HOCON for the REST bind address), or our TOML file when `--config` was
//!   given, into [`Config`], and returns a [`LoadReport`] listing unused keys, keys for features
//!   jigasi-rs does not implement yet, and other warnings.
//! - [`Config::to_redacted_toml`] prints the effective configuration in our TOML format with
//!   every secret replaced by `<redacted>` (for `--print-config`).
//!
//! The crate is pure apart from reading the configuration files it is pointed at: no clock, no
//! sockets, no randomness, and the environment is passed in as data.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::path::Path;
//!
//! let parsed = jigasi_config::cli::parse_args(std::env::args().skip(1))?;
//! let env: BTreeMap<String, String> = std::env::vars().collect();
//! let loaded = jigasi_config::load(&parsed.args, Path::new("."), &env)?;
//! for warning in &loaded.report.warnings {
//!     eprintln!("warning: {warning}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub mod cli;
mod error;
mod hocon;
mod keys;
mod model;
pub mod properties;
pub mod properties_edit;
pub mod toml_file;

pub use cli::{Action, CliArgs, ParsedArgs};
pub use error::{CliError, ConfigError};
pub use model::*;

/// A loaded configuration and what the loader noticed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The typed configuration.
    pub config: Config,
    /// Unused keys, not-yet-supported features and warnings.
    pub report: LoadReport,
}

/// What the loader noticed besides errors. Each key appears at most once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadReport {
    /// Keys that have no effect in jigasi-rs (known Jigasi keys we ignore, and unknown keys).
    pub unused_keys: Vec<UnusedKey>,
    /// Keys that matter for Jigasi behaviour but whose feature jigasi-rs does not implement yet.
    pub not_yet_supported: Vec<NotYetSupported>,
    /// Everything else worth telling the operator (ignored second SIP account, skipped
    /// arguments, defaults taken from `--domain`...).
    pub warnings: Vec<String>,
}

/// A key that was accepted but has no effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusedKey {
    /// The file it is in.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// The key.
    pub key: String,
    /// Why it is unused: the reason for a known Jigasi key, `None` for an unknown key (maybe a
    /// typo).
    pub reason: Option<String>,
}

impl fmt::Display for UnusedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.key)?;
        match &self.reason {
            Some(reason) => write!(f, " (ignored: {reason})"),
            None => f.write_str(" (unknown key)"),
        }
    }
}

/// A key for a Jigasi feature that jigasi-rs does not implement yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotYetSupported {
    /// The file it is in.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// The key.
    pub key: String,
    /// The feature, e.g. `transcription`, `BOSH connections`.
    pub feature: String,
}

impl fmt::Display for NotYetSupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} needs {}, which jigasi-rs does not support yet",
            self.file.display(),
            self.line,
            self.key,
            self.feature
        )
    }
}

/// Loads the configuration selected by the command line.
///
/// With `--config FILE` reads our TOML (relative to `cwd`); otherwise reads
/// `<configdir>/<configdirname>/sip-communicator.properties`, where `configdir` defaults to `cwd`
/// and relative directories are taken from `cwd`, exactly as Jigasi does with `user.dir`.
/// `env` is the process environment; only `JAVA_SYS_PROPS` (for `-Dconfig.file=`) is read.
pub fn load(
    args: &CliArgs,
    cwd: &Path,
    env: &BTreeMap<String, String>,
) -> Result<Loaded, ConfigError> {
    if let Some(file) = &args.config_file {
        return toml_file::load(&cwd.join(file), args);
    }
    let dir = match &args.config_dir {
        Some(dir) => cwd.join(dir),
        None => cwd.to_path_buf(),
    };
    let path = dir
        .join(args.config_dir_name())
        .join("sip-communicator.properties");
    if !path.is_file() {
        return Err(ConfigError::PropertiesNotFound { path });
    }
    properties::load(&path, args, cwd, env)
}

/// Checks the final RTP port range.
pub(crate) fn check_port_range(
    range: &std::ops::RangeInclusive<u16>,
    source_desc: &str,
) -> Result<(), ConfigError> {
    if range.start() > range.end() {
        return Err(ConfigError::PortRange {
            min: *range.start(),
            max: *range.end(),
            source_desc: source_desc.to_owned(),
        });
    }
    Ok(())
}
