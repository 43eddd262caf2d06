//! The command line: Jigasi's flags (`jigasi.sh`, `org.jitsi.jigasi.cmd.CmdLine`) plus ours.
//!
//! We do not use clap: Jigasi accepts `-name=value` as well as `--name=value`, and it skips
//! unknown flags and arguments without `=` with a warning instead of failing. Init scripts pass
//! such arguments (legacy `--host`, `--domain`, component options), so a strict parser would break
//! the drop-in promise. Port values are the one place we are stricter than Jigasi: a bad port is
//! an error instead of a silent fallback to the default.

use std::ops::RangeInclusive;
use std::path::PathBuf;

use crate::error::CliError;

/// What the process was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Run the gateway.
    #[default]
    Run,
    /// Print the effective configuration (secrets redacted) and exit.
    PrintConfig,
    /// Print the version and exit.
    Version,
    /// Print [`help_text`] and exit.
    Help,
}

/// The flags as given. `None` means "not given"; the accessors supply Jigasi's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CliArgs {
    /// `--min-port` (default 10000).
    pub min_port: Option<u16>,
    /// `--max-port` (default 20000).
    pub max_port: Option<u16>,
    /// `--configdir` (default: the current directory).
    pub config_dir: Option<PathBuf>,
    /// `--configdirname` (default `jigasi-home`).
    pub config_dir_name: Option<String>,
    /// `--configwritable=true`.
    pub config_writable: bool,
    /// `--logdir`.
    pub log_dir: Option<PathBuf>,
    /// `--domain`: the Jitsi Meet base domain, used for defaults the properties do not set.
    pub domain: Option<String>,
    /// `--host`: the XMPP server to connect to (default `localhost`).
    pub host: Option<String>,
    /// `--config FILE`: our TOML file instead of the Jigasi properties.
    pub config_file: Option<PathBuf>,
}

impl CliArgs {
    /// The RTP port range with Jigasi's defaults filled in (may be empty if only one bound was
    /// given; [`crate::load`] reports that).
    pub fn port_range(&self) -> RangeInclusive<u16> {
        self.min_port.unwrap_or(DEFAULT_MIN_PORT)..=self.max_port.unwrap_or(DEFAULT_MAX_PORT)
    }

    /// The XMPP server host (`--host`, default `localhost`).
    pub fn host(&self) -> &str {
        self.host.as_deref().unwrap_or(DEFAULT_HOST)
    }

    /// The config directory name (`--configdirname`, default `jigasi-home`).
    pub fn config_dir_name(&self) -> &str {
        self.config_dir_name
            .as_deref()
            .unwrap_or(DEFAULT_CONFIG_DIR_NAME)
    }
}

/// The result of [`parse_args`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedArgs {
    /// The flags.
    pub args: CliArgs,
    /// What to do.
    pub action: Action,
    /// Skipped or ignored arguments, one message each (Jigasi logs these and goes on).
    pub warnings: Vec<String>,
}

/// Parses the arguments after the program name (`std::env::args().skip(1)`).
///
/// Both `-name=value` and `--name=value` work for every flag. Our own switches (`--help`/`-h`,
/// `--version`/`-V`, `--print-config`) take no value; `--config` takes `=FILE` or the next
/// argument. When several actions are given, help wins over version, version over print-config.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<ParsedArgs, CliError> {
    let mut parsed = ParsedArgs::default();
    let mut args = args.into_iter();
    let mut actions = Vec::new();
    while let Some(arg) = args.next() {
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            parsed.warnings.push(format!(
                "argument \"{arg}\" skipped: expected --name=value or -name=value"
            ));
            continue;
        };
        match body {
            "h" | "help" => {
                actions.push(Action::Help);
                continue;
            }
            "V" | "version" => {
                actions.push(Action::Version);
                continue;
            }
            "print-config" => {
                actions.push(Action::PrintConfig);
                continue;
            }
            "config" => {
                let Some(file) = args.next() else {
                    return Err(CliError::MissingValue {
                        flag: arg,
                        expected: "a TOML file path",
                    });
                };
                parsed.args.config_file = Some(PathBuf::from(file));
                continue;
            }
            _ => {}
        }
        let Some((name, value)) = body.split_once('=') else {
            parsed.warnings.push(format!(
                "argument \"{arg}\" skipped: expected --name=value or -name=value"
            ));
            continue;
        };
        if name.is_empty() || value.is_empty() {
            parsed
                .warnings
                .push(format!("argument \"{arg}\" skipped: empty name or value"));
            continue;
        }
        let flag = format!("--{name}");
        let a = &mut parsed.args;
        match name {
            "min-port" => a.min_port = Some(port_value(&flag, value)?),
            "max-port" => a.max_port = Some(port_value(&flag, value)?),
            "configdir" => a.config_dir = Some(PathBuf::from(value)),
            "configdirname" => a.config_dir_name = Some(value.to_owned()),
            "configwritable" => {
                // Jigasi uses Boolean.parseBoolean: only "true" (any case) is true.
                a.config_writable = value.eq_ignore_ascii_case("true");
                if !a.config_writable && !value.eq_ignore_ascii_case("false") {
                    parsed.warnings.push(format!(
                        "{flag}=\"{value}\" is not true or false: taken as false, as Jigasi does"
                    ));
                }
            }
            "logdir" => a.log_dir = Some(PathBuf::from(value)),
            "domain" => a.domain = Some(value.to_owned()),
            "host" => a.host = Some(value.to_owned()),
            "config" => a.config_file = Some(PathBuf::from(value)),
            "port" | "secret" | "subdomain" | "nocomponent" => parsed.warnings.push(format!(
                "{flag} ignored: it belonged to Jigasi's removed XMPP component mode"
            )),
            _ => parsed
                .warnings
                .push(format!("unknown option {flag} ignored")),
        }
    }
    if let (Some(min), Some(max)) = (parsed.args.min_port, parsed.args.max_port)
        && min > max
    {
        return Err(CliError::PortRangeInverted { min, max });
    }
    parsed.action = [Action::Help, Action::Version, Action::PrintConfig]
        .into_iter()
        .find(|a| actions.contains(a))
        .unwrap_or(Action::Run);
    Ok(parsed)
}

/// The `--help` text.
pub fn help_text() -> String {
    format!(
        "\
jigasi-rs: a SIP gateway for Jitsi Meet, drop-in compatible with Jigasi

Usage: jigasi-rs [--name=value ...] [--config FILE] [--print-config]

Jigasi flags (also accepted as -name=value):
  --min-port=N        lowest RTP port for both legs (default {DEFAULT_MIN_PORT})
  --max-port=N        highest RTP port (default {DEFAULT_MAX_PORT})
  --configdir=DIR     directory holding the config directory (default: current directory)
  --configdirname=D   config directory name (default {DEFAULT_CONFIG_DIR_NAME});
                      the file read is DIR/D/sip-communicator.properties
  --configwritable=B  allow rewriting the properties file (default false)
  --logdir=DIR        write logs under DIR
  --domain=D          Jitsi Meet base domain; fills defaults the properties do not set
  --host=H            XMPP server to connect to (default {DEFAULT_HOST})

jigasi-rs options:
  --config FILE       read our TOML format instead of sip-communicator.properties
  --print-config      print the effective configuration (secrets redacted) and exit
  -V, --version       print the version and exit
  -h, --help          print this help and exit

Unknown flags and arguments without '=' are skipped with a warning, as Jigasi does.
"
    )
}

fn port_value(flag: &str, value: &str) -> Result<u16, CliError> {
    crate::model::parse_port(value).ok_or_else(|| CliError::InvalidValue {
        flag: flag.to_owned(),
        value: value.to_owned(),
        expected: "a port number 1-65535",
    })
}

/// Jigasi's `--min-port` default.
pub(crate) const DEFAULT_MIN_PORT: u16 = 10_000;
/// Jigasi's `--max-port` default.
pub(crate) const DEFAULT_MAX_PORT: u16 = 20_000;
/// `--host` default (the value Debian's init passes, `${JIGASI_HOST:-localhost}`).
const DEFAULT_HOST: &str = "localhost";
/// Jigasi's `--configdirname` default.
const DEFAULT_CONFIG_DIR_NAME: &str = "jigasi-home";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(args: &[&str]) -> Result<ParsedArgs, CliError> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn both_dash_forms_set_every_jigasi_flag() {
        let p = parse(&[
            "-min-port=11000",
            "--max-port=12000",
            "--configdir=/etc/jitsi",
            "-configdirname=jigasi",
            "--configwritable=TRUE",
            "-logdir=/var/log/jitsi",
            "--domain=meet.example.com",
            "-host=xmpp.example.com",
        ])
        .unwrap();
        assert_eq!(p.action, Action::Run);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        let a = p.args;
        assert_eq!(a.port_range(), 11_000..=12_000);
        assert_eq!(a.config_dir, Some(PathBuf::from("/etc/jitsi")));
        assert_eq!(a.config_dir_name(), "jigasi");
        assert!(a.config_writable);
        assert_eq!(a.log_dir, Some(PathBuf::from("/var/log/jitsi")));
        assert_eq!(a.domain.as_deref(), Some("meet.example.com"));
        assert_eq!(a.host(), "xmpp.example.com");
    }

    #[test]
    fn defaults_when_nothing_is_given() {
        let p = parse(&[]).unwrap();
        assert_eq!(p.action, Action::Run);
        assert_eq!(p.args.port_range(), 10_000..=20_000);
        assert_eq!(p.args.host(), "localhost");
        assert_eq!(p.args.config_dir_name(), "jigasi-home");
        assert!(!p.args.config_writable);
        assert_eq!(p.args.config_dir, None);
    }

    #[test]
    fn unknown_flags_and_garbage_are_warnings() {
        let p = parse(&[
            "garbage",
            "--nodash",
            "--frobnicate=1",
            "--secret=xyz",
            "--=x",
            "--logdir=",
            "--configwritable=yes",
        ])
        .unwrap();
        assert_eq!(p.warnings.len(), 7, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("\"garbage\" skipped"));
        assert!(p.warnings[1].contains("\"--nodash\" skipped"));
        assert!(p.warnings[2].contains("unknown option --frobnicate"));
        assert!(p.warnings[3].contains("component mode"));
        assert!(p.warnings[4].contains("empty name or value"));
        assert!(p.warnings[5].contains("empty name or value"));
        assert!(p.warnings[6].contains("taken as false"));
        assert!(!p.args.config_writable);
        assert_eq!(p.args.log_dir, None);
    }

    #[test]
    fn bad_ports_are_errors_naming_flag_value_and_expectation() {
        let e = parse(&["--min-port=abc"]).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid value for --min-port: \"abc\": expected a port number 1-65535"
        );
        let e = parse(&["-max-port=70000"]).unwrap_err().to_string();
        assert!(e.contains("--max-port") && e.contains("\"70000\""), "{e}");
        assert!(parse(&["--max-port=0"]).is_err());
        let e = parse(&["--min-port=3000", "--max-port=2000"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--min-port=3000 is above --max-port=2000: expected min-port <= max-port"
        );
    }

    #[test]
    fn our_switches_and_config_file_forms() {
        let p = parse(&["--config", "/etc/jigasi-rs.toml", "--print-config"]).unwrap();
        assert_eq!(p.action, Action::PrintConfig);
        assert_eq!(
            p.args.config_file,
            Some(PathBuf::from("/etc/jigasi-rs.toml"))
        );
        let p = parse(&["--config=a.toml", "-V", "--print-config"]).unwrap();
        assert_eq!(p.action, Action::Version);
        assert_eq!(p.args.config_file, Some(PathBuf::from("a.toml")));
        assert_eq!(parse(&["-V", "-h"]).unwrap().action, Action::Help);
        assert_eq!(parse(&["--help"]).unwrap().action, Action::Help);
        assert_eq!(parse(&["--version"]).unwrap().action, Action::Version);
        let e = parse(&["--config"]).unwrap_err();
        assert!(matches!(e, CliError::MissingValue { .. }));
    }

    #[test]
    fn help_mentions_every_flag() {
        let help = help_text();
        for flag in [
            "--min-port",
            "--max-port",
            "--configdir",
            "--configdirname",
            "--configwritable",
            "--logdir",
            "--domain",
            "--host",
            "--config FILE",
            "--print-config",
            "--version",
            "--help",
        ] {
            assert!(help.contains(flag), "{flag} missing");
        }
    }
}
