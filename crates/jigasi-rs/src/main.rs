//! `jigasi-rs`: the gateway binary. Parses Jigasi's command line, loads the configuration, sets
//! up logging and runs [`jigasi_runtime::run`] until SIGTERM or SIGINT.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use jigasi_config::{Action, Config, LoadReport, ParsedArgs};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Exit status for a bad command line or configuration (like `EX_CONFIG`-style failures, the
/// message says what is wrong).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let parsed = match jigasi_config::cli::parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("jigasi-rs: {error}");
            eprintln!("Try 'jigasi-rs --help'.");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match parsed.action {
        Action::Help => {
            print_out(&jigasi_config::cli::help_text());
            return ExitCode::SUCCESS;
        }
        Action::Version => {
            print_out(&format!("jigasi-rs {}\n", jigasi_runtime::VERSION));
            return ExitCode::SUCCESS;
        }
        Action::Run | Action::PrintConfig => {}
    }

    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let loaded = match jigasi_config::load(&parsed.args, &cwd, &env) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("jigasi-rs: configuration error: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if parsed.action == Action::PrintConfig {
        for warning in parsed.warnings.iter().chain(&loaded.report.warnings) {
            eprintln!("jigasi-rs: warning: {warning}");
        }
        print_out(&loaded.config.to_redacted_toml());
        return ExitCode::SUCCESS;
    }

    if let Err(error) = init_logging(&loaded.config) {
        eprintln!("jigasi-rs: {error:#}");
        return ExitCode::from(EXIT_CONFIG);
    }
    report_start(&parsed, &loaded.report, &loaded.config);

    match run(loaded.config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts tokio, runs the gateway and turns SIGTERM / SIGINT into a clean shutdown.
fn run(config: Config) -> anyhow::Result<()> {
    // rsipstack and tokio-rustls may both enable a rustls crypto provider; pick one explicitly
    // so rustls never has to guess (it panics when two are compiled in and none is chosen).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(wait_for_signal(shutdown.clone()));
        jigasi_runtime::run(config, shutdown)
            .await
            .context("gateway failed")
    })
}

async fn wait_for_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(signal = name, "stop requested");
    shutdown.cancel();
}

/// Human-readable logs to stderr, and to `<logdir>/jigasi-rs.log` with `--logdir`. The level
/// comes from `RUST_LOG` (default `info`, rsipstack `warn`). Personal data is shown only at
/// debug level or below.
fn init_logging(config: &Config) -> anyhow::Result<()> {
    // rsipstack logs every datagram at info level, raw and unredacted: only its warnings by default.
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "info,rsipstack=warn".to_owned());
    let filter = EnvFilter::try_new(&directives)
        .with_context(|| format!("RUST_LOG={directives:?} is not a valid log filter"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal());
    match &config.logging.log_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create log directory {}", dir.display()))?;
            let path = dir.join("jigasi-rs.log");
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            builder
                .with_writer(std::io::stderr.and(Arc::new(file)))
                .with_ansi(false)
                .init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    jigasi_types::set_show_pii(LevelFilter::current() >= LevelFilter::DEBUG);
    Ok(())
}

/// Logs what the command line and the configuration loader noticed, once.
fn report_start(parsed: &ParsedArgs, report: &LoadReport, config: &Config) {
    info!(
        version = jigasi_runtime::VERSION,
        config = %config
            .properties_path
            .as_deref()
            .map_or_else(|| "TOML file".to_owned(), |p| p.display().to_string()),
        "starting jigasi-rs"
    );
    for warning in &parsed.warnings {
        warn!("command line: {warning}");
    }
    for warning in &report.warnings {
        warn!("configuration: {warning}");
    }
    for missing in &report.not_yet_supported {
        warn!("configuration: {missing}");
    }
    if !report.unused_keys.is_empty() {
        let keys: Vec<&str> = report.unused_keys.iter().map(|k| k.key.as_str()).collect();
        info!(
            count = keys.len(),
            "configuration keys accepted but not used: {}",
            keys.join(", ")
        );
    }
}

#[allow(clippy::print_stdout)]
fn print_out(text: &str) {
    print!("{text}");
}
