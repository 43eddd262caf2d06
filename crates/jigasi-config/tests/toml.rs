//! Our TOML format, `--config`, and `--print-config` output.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jigasi_config::toml_file::{self, FileConfig};
use jigasi_config::{
    Action, CliArgs, DtmfMethod, HostPort, KeepAliveMethod, SavpOption, Transport, load,
};

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/jigasi-rs.example.toml")
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn leaf_paths(value: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            for (k, v) in table {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_paths(v, &path, out);
            }
        }
        toml::Value::Array(items)
            if items.iter().all(toml::Value::is_table) && !items.is_empty() =>
        {
            for item in items {
                leaf_paths(item, &format!("{prefix}[]"), out);
            }
        }
        toml::Value::Array(_)
        | toml::Value::String(_)
        | toml::Value::Integer(_)
        | toml::Value::Float(_)
        | toml::Value::Boolean(_)
        | toml::Value::Datetime(_) => out.push(prefix.to_owned()),
    }
}

#[test]
fn example_file_parses_with_the_documented_values() {
    let cli = CliArgs {
        config_file: Some(example_path()),
        ..CliArgs::default()
    };
    let loaded = load(&cli, Path::new("/"), &BTreeMap::new()).unwrap();
    let c = &loaded.config;
    let sip = c.sip.as_ref().unwrap();
    assert_eq!(sip.user, "jigasi");
    assert_eq!(sip.domain, "sip.example.com");
    assert_eq!(sip.password.as_ref().unwrap().expose(), "change-me");
    assert_eq!(sip.registrar, Some(HostPort::new("pbx.example.com", 5060)));
    assert_eq!(sip.proxy, Some(HostPort::new("sbc.example.com", 5060)));
    assert_eq!(sip.transport, Transport::Udp);
    assert_eq!(sip.keep_alive.method, KeepAliveMethod::Options);
    assert_eq!(sip.keep_alive.interval, Some(Duration::from_secs(25)));
    assert_eq!(sip.dtmf_method, DtmfMethod::Auto);
    assert_eq!(sip.encodings, jigasi_config::Encoding::jigasi_defaults());
    assert_eq!(sip.srtp.savp, SavpOption::Off);
    assert_eq!(sip.headers, jigasi_config::HeaderNames::default());
    assert_eq!(c.breweries.len(), 1);
    assert_eq!(c.breweries[0].server, HostPort::new("127.0.0.1", 5222));
    assert_eq!(c.breweries[0].resource.as_deref(), Some("jigasi-1"));
    assert_eq!(
        c.call_xmpp.password.as_ref().unwrap().expose(),
        "change-me-three"
    );
    assert_eq!(c.jigasi.trusted_domains, vec!["recorder.meet.example.com"]);
    assert_eq!(c.jigasi.jvb_invite_timeout, Some(Duration::from_secs(30)));
    assert_eq!(c.media.port_range, 10_000..=20_000);
    assert_eq!(
        c.media.public_address,
        Some("203.0.113.10".parse().unwrap())
    );
    assert_eq!(c.rest.bind.port(), 8788);
    assert_eq!(c.logging.log_dir, Some(PathBuf::from("/var/log/jitsi")));
    assert_eq!(c.properties_path, None);
    assert!(
        loaded.report.warnings.is_empty(),
        "{:?}",
        loaded.report.warnings
    );
}

#[test]
fn example_file_lists_every_key() {
    let text = std::fs::read_to_string(example_path()).unwrap();
    let example: toml::Value = toml::from_str(&text).unwrap();
    let mut listed = Vec::new();
    leaf_paths(&example, "", &mut listed);
    let loaded = toml_file::load(&example_path(), &CliArgs::default()).unwrap();
    let printed = toml::Value::try_from(FileConfig::from_config(&loaded.config)).unwrap();
    let mut all = Vec::new();
    leaf_paths(&printed, "", &mut all);
    for key in &all {
        assert!(
            listed.contains(key),
            "{key} is missing from the example file"
        );
    }
    // Secret files are the alternative form; they appear as commented examples.
    for key in ["password_file = ", "# password_file"] {
        assert!(text.contains(key));
    }
}

#[test]
fn unknown_toml_keys_are_rejected_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[sip]\nuser = \"u\"\nfrobnicate = 1\n").unwrap();
    let message = toml_file::load(&path, &CliArgs::default())
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("frobnicate"), "{message}");
    assert!(message.contains("line 3"), "{message}");

    std::fs::write(&path, "[sipp]\nuser = \"u\"\n").unwrap();
    let message = toml_file::load(&path, &CliArgs::default())
        .unwrap_err()
        .to_string();
    assert!(message.contains("sipp"), "{message}");
}

#[test]
fn command_line_ports_and_logdir_win_over_the_file() {
    let parsed = jigasi_config::cli::parse_args(
        [
            "--config",
            "config/jigasi-rs.example.toml",
            "--min-port=30000",
            "--max-port=30100",
            "--logdir=/tmp/logs",
        ]
        .map(String::from),
    )
    .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let loaded = load(&parsed.args, &root, &BTreeMap::new()).unwrap();
    assert_eq!(loaded.config.media.port_range, 30_000..=30_100);
    assert_eq!(
        loaded.config.logging.log_dir,
        Some(PathBuf::from("/tmp/logs"))
    );
}

#[test]
fn print_config_hides_secrets_and_round_trips() {
    for (dir, name, secrets) in [
        (
            "jigasi-sample",
            "jigasi-home",
            &["sip-secret", "xmpp-secret"][..],
        ),
        (
            "docker",
            "jigasi",
            &["docker-sip", "jigasi-xmpp", "plain-call-pass"][..],
        ),
    ] {
        let parsed = jigasi_config::cli::parse_args([
            format!("--configdir={}", testdata().join(dir).display()),
            format!("-configdirname={name}"),
            "--print-config".to_owned(),
        ])
        .unwrap();
        assert_eq!(parsed.action, Action::PrintConfig);
        let loaded = load(&parsed.args, Path::new("/"), &BTreeMap::new()).unwrap();
        // The secrets really are in the loaded config...
        assert!(
            loaded
                .config
                .breweries
                .iter()
                .all(|b| secrets.contains(&b.password.expose().as_str()))
        );
        let printed = loaded.config.to_redacted_toml();
        // ...but never in the printed form.
        for secret in secrets {
            assert!(
                !printed.contains(secret),
                "{secret} leaked in {dir}:\n{printed}"
            );
        }
        assert!(printed.contains("password = \"<redacted>\""));

        let out = tempfile::tempdir().unwrap();
        let path = out.path().join("printed.toml");
        std::fs::write(&path, &printed).unwrap();
        let reloaded = toml_file::load(&path, &CliArgs::default()).unwrap();
        let mut expected = loaded.config.clone();
        expected.properties_path = None;
        expected.args = CliArgs::default();
        let redacted = jigasi_types::Secret::new("<redacted>".to_owned());
        if let Some(sip) = &mut expected.sip {
            sip.password = sip.password.as_ref().map(|_| redacted.clone());
        }
        for b in &mut expected.breweries {
            b.password = redacted.clone();
        }
        expected.call_xmpp.password = expected
            .call_xmpp
            .password
            .as_ref()
            .map(|_| redacted.clone());
        assert_eq!(
            reloaded.config, expected,
            "round trip changed the config for {dir}"
        );
        assert!(
            reloaded
                .report
                .warnings
                .iter()
                .any(|w| w.contains("put the real secret back"))
        );
        assert_eq!(reloaded.config.to_redacted_toml(), printed);
    }
}
