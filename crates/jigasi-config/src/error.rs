//! Configuration errors. All of them blame the local configuration (a file or the command line);
//! each names where the problem is, the bad value (never for secrets) and what was expected.

use std::path::PathBuf;

/// A command-line error. Only values we must not guess are errors; unknown flags are warnings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// A flag value has the wrong form.
    #[error("invalid value for {flag}: \"{value}\": expected {expected}")]
    InvalidValue {
        /// The flag as written, e.g. `--min-port`.
        flag: String,
        /// The value given.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A flag that needs a value came last.
    #[error("{flag} needs a value: expected {expected}")]
    MissingValue {
        /// The flag as written.
        flag: String,
        /// What should follow it.
        expected: &'static str,
    },
    /// `--min-port` is above `--max-port`.
    #[error("--min-port={min} is above --max-port={max}: expected min-port <= max-port")]
    PortRangeInverted {
        /// The lowest port given.
        min: u16,
        /// The highest port given.
        max: u16,
    },
}

/// A configuration-file error.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No `--config` was given and the Jigasi properties file does not exist.
    #[error(
        "no configuration found: {} does not exist (searched <configdir>/<configdirname>/sip-communicator.properties; set --configdir/--configdirname, or give --config FILE)",
        path.display()
    )]
    PropertiesNotFound {
        /// The path searched.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The properties file is not valid Java properties syntax.
    #[error("{}:{}: malformed properties file: {message}", path.display(), line.map_or_else(|| "?".to_owned(), |l| l.to_string()))]
    PropertiesSyntax {
        /// The file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What the parser said.
        message: String,
    },
    /// A property has a value of the wrong form.
    #[error("{}:{line}: {key} = \"{value}\": expected {expected}", path.display())]
    InvalidProperty {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Full property name.
        key: String,
        /// The value as written.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A secret property has a value of the wrong form (the value is not shown).
    #[error("{}:{line}: {key}: the value (not shown) is not valid: expected {expected}", path.display())]
    InvalidSecret {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Full property name.
        key: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A value still holds an installer placeholder such as `<<JIGASI_SIPUSER>>`.
    #[error(
        "{}:{line}: {key} contains {placeholder}, an unreplaced installer placeholder: replace it with the real value",
        path.display()
    )]
    Placeholder {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Full property name.
        key: String,
        /// The placeholder, e.g. `<<JIGASI_SIPPWD>>`.
        placeholder: String,
    },
    /// A required property is missing.
    #[error("{}: {key} is missing: expected {expected}", path.display())]
    MissingProperty {
        /// The file.
        path: PathBuf,
        /// Full property name.
        key: String,
        /// What it should hold.
        expected: &'static str,
    },
    /// The TOML file does not parse or does not match the schema (unknown key, wrong type).
    #[error("{}: {message}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the key and the line).
        message: String,
    },
    /// A TOML value parsed but is not acceptable.
    #[error("{}: {key}: \"{value}\": expected {expected}", path.display())]
    InvalidTomlValue {
        /// The file.
        path: PathBuf,
        /// Dotted key path, e.g. `sip.registrar`.
        key: String,
        /// The value.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A TOML secret is given twice, or its file cannot be read.
    #[error("{}: {key}: {problem}", path.display())]
    TomlSecret {
        /// The file.
        path: PathBuf,
        /// Dotted key path, e.g. `sip.password`.
        key: String,
        /// What is wrong (never the secret).
        problem: String,
    },
    /// The HOCON file holds a syntax error in a part we read.
    #[error("{}:{line}: {message}", path.display())]
    Hocon {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The final RTP port range is empty.
    #[error("rtp port range {min}-{max} is empty ({source_desc}): expected min <= max")]
    PortRange {
        /// Lowest port.
        min: u16,
        /// Highest port.
        max: u16,
        /// Where the two values came from.
        source_desc: String,
    },
}
