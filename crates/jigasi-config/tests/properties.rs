//! Loading Jigasi's `sip-communicator.properties` through the public API.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jigasi_config::{
    CliArgs, ConfigError, DtmfMethod, Encoding, EncryptionProtocol, HeaderNames, HostPort,
    JigasiConfig, KeepAlive, KeepAliveMethod, Loaded, SavpOption, SipStackConfig, Transport, load,
};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn args(dir: &str, name: Option<&str>) -> CliArgs {
    CliArgs {
        config_dir: Some(testdata().join(dir)),
        config_dir_name: name.map(String::from),
        ..CliArgs::default()
    }
}

fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

/// Copies the minimal fixture into a temp dir, appends `extra` lines, and loads it.
fn minimal_with(extra: &str, cli: &[&str]) -> (tempfile::TempDir, Result<Loaded, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("jigasi-home");
    std::fs::create_dir(&home).unwrap();
    let mut text =
        std::fs::read_to_string(testdata().join("minimal/jigasi-home/sip-communicator.properties"))
            .unwrap();
    text.push_str(extra);
    std::fs::write(home.join("sip-communicator.properties"), text).unwrap();
    let parsed = jigasi_config::cli::parse_args(cli.iter().map(|s| (*s).to_owned())).unwrap();
    let result = load(&parsed.args, dir.path(), &no_env());
    (dir, result)
}

fn minimal_error(extra: &str) -> String {
    let (dir, result) = minimal_with(extra, &[]);
    let message = result.unwrap_err().to_string();
    let path = dir.path().join("jigasi-home/sip-communicator.properties");
    assert!(
        message.starts_with(&format!("{}:6: ", path.display())),
        "error should name file and line 6: {message}"
    );
    message
}

#[test]
fn jigasi_sample_parses_into_typed_values() {
    let loaded = load(&args("jigasi-sample", None), Path::new("/"), &no_env()).unwrap();
    let c = &loaded.config;

    let sip = c.sip.as_ref().unwrap();
    assert_eq!(sip.id, "acc1403273890647");
    assert_eq!(
        sip.account_uid.as_deref(),
        Some("SIP:jigasi@sip.example.com")
    );
    assert_eq!(sip.user, "jigasi");
    assert_eq!(sip.domain, "sip.example.com");
    assert_eq!(sip.password.as_ref().unwrap().expose(), "sip-secret");
    assert_eq!(sip.authorization_name, None);
    assert_eq!(sip.registrar, Some(HostPort::new("pbx.example.com", 5060)));
    assert_eq!(sip.transport, Transport::Udp);
    assert_eq!(sip.proxy, None);
    assert!(sip.proxy_auto_config);
    assert_eq!(
        sip.keep_alive,
        KeepAlive {
            method: KeepAliveMethod::Options,
            interval: Some(Duration::from_secs(25)),
        }
    );
    assert_eq!(sip.encodings, Encoding::jigasi_defaults());
    assert_eq!(sip.dtmf_method, DtmfMethod::Auto);
    assert_eq!(sip.dtmf_minimal_tone_duration, Duration::from_millis(70));
    assert_eq!(sip.outbound_prefix, "");
    assert_eq!(sip.headers, HeaderNames::default());
    assert_eq!(sip.headers.room, "Jitsi-Conference-Room");
    assert_eq!(sip.heartbeat, None);
    assert_eq!(sip.domain_base.as_deref(), Some("meet.example.com"));
    assert_eq!(sip.muc_domain_prefixes, vec!["conference", "muc"]);
    assert!(!sip.prevent_auth_login);
    assert!(!sip.srtp.enabled && !sip.srtp.sdes_enabled());
    assert!(!sip.use_translator);

    assert_eq!(c.breweries.len(), 1);
    let b = &c.breweries[0];
    assert_eq!(b.id, "acc-xmpp-1");
    assert_eq!(b.jid, "jigasi@auth.meet.example.com");
    assert_eq!(b.password.expose(), "xmpp-secret");
    assert_eq!(b.server, HostPort::new("127.0.0.1", 5222));
    assert!(b.allow_non_secure);
    assert_eq!(
        b.brewery_room,
        "JigasiBrewery@internal.auth.meet.example.com"
    );
    assert_eq!(b.domain_base.as_deref(), Some("meet.example.com"));
    assert_eq!(b.resource, None);
    assert_eq!(b.ping_interval, Duration::from_secs(30));
    assert_eq!(b.bosh_url_pattern, None);

    assert_eq!(c.call_xmpp.server, HostPort::new("127.0.0.1", 5222));
    assert!(c.call_xmpp.anonymous);
    assert_eq!(c.call_xmpp.user_id, None);
    assert!(c.call_xmpp.password.is_none());
    assert_eq!(c.call_xmpp.ping_interval, Duration::from_secs(30));

    let expected_jigasi = JigasiConfig {
        muc_service_address: Some("conference.meet.example.com".into()),
        allowed_jid: Some("JigasiBrewery@internal.auth.meet.example.com".into()),
        ..JigasiConfig::default()
    };
    assert_eq!(c.jigasi, expected_jigasi);
    assert_eq!(c.jigasi.jvb_invite_timeout, Some(Duration::from_secs(30)));
    assert_eq!(c.jigasi.muc_join_timeout, Duration::from_secs(10));
    assert_eq!(c.jigasi.focus_resource, "focus");
    assert_eq!(c.sip_stack, SipStackConfig::default());
    assert_eq!(c.sip_stack.clear_port, 5060);
    assert_eq!(c.sip_stack.registration_expiry, Duration::from_secs(600));
    assert_eq!(c.media.port_range, 10_000..=20_000);
    assert_eq!(c.media.opus_complexity, 10);
    assert_eq!(c.rest.bind, "127.0.0.1:8788".parse::<SocketAddr>().unwrap());
    assert!(c.rest.enabled && !c.rest.enable_shutdown);
    assert!(!c.tls.dangerous_always_trust);
    assert!(!c.config_writable);
    assert_eq!(
        c.properties_path.as_deref(),
        Some(
            testdata()
                .join("jigasi-sample/jigasi-home/sip-communicator.properties")
                .as_path()
        )
    );

    let r = &loaded.report;
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(r.not_yet_supported.is_empty(), "{:?}", r.not_yet_supported);
    let unused: Vec<&str> = r.unused_keys.iter().map(|k| k.key.as_str()).collect();
    for key in [
        "net.java.sip.communicator.packetlogging.PACKET_LOGGING_ENABLED",
        "net.java.sip.communicator.impl.protocol.sip.acc1403273890647.VOICEMAIL_ENABLED",
        "net.java.sip.communicator.impl.protocol.jabber.acc-xmpp-1.RESOURCE_PRIORITY",
        "org.jitsi.jigasi.BREWERY_ENABLED",
        "org.jitsi.jigasi.xmpp.acc.VIDEO_CALLING_DISABLED",
        "org.jitsi.jigasi.EXAMPLE_TYPO",
    ] {
        assert!(
            unused.contains(&key),
            "{key} not reported unused: {unused:?}"
        );
    }
    let typo = r
        .unused_keys
        .iter()
        .find(|k| k.key.ends_with("EXAMPLE_TYPO"))
        .unwrap();
    assert_eq!(typo.reason, None);
    assert!(
        typo.to_string()
            .ends_with(": org.jitsi.jigasi.EXAMPLE_TYPO (unknown key)")
    );
    // Honoured keys are not in the unused list.
    assert!(
        !unused
            .iter()
            .any(|k| k.ends_with(".USER_ID") || k.ends_with(".BREWERY"))
    );
}

#[test]
fn docker_variant_parses_with_sdes_proxy_two_breweries_and_hocon() {
    let loaded = load(&args("docker", Some("jigasi")), Path::new("/"), &no_env()).unwrap();
    let c = &loaded.config;
    let sip = c.sip.as_ref().unwrap();
    assert_eq!(sip.user, "jitsi");
    assert_eq!(sip.password.as_ref().unwrap().expose(), "docker-sip");
    assert_eq!(sip.transport, Transport::Tcp);
    assert_eq!(sip.registrar, Some(HostPort::new("sbc.example.net", 5060)));
    assert_eq!(sip.proxy, Some(HostPort::new("sbc.example.net", 5080)));
    assert!(!sip.proxy_auto_config);
    assert_eq!(sip.keep_alive.method, KeepAliveMethod::Crlf);
    assert_eq!(sip.headers.room, "X-Room-Name");
    assert_eq!(sip.headers.domain_base, "X-Domain-Base");
    assert_eq!(sip.headers.room_password, "Jitsi-Conference-Room-Pass");
    let names: Vec<&str> = sip.encodings.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["opus", "AMR-WB", "PCMU", "PCMA", "iLBC", "telephone-event"]
    );
    assert!(sip.srtp.enabled && sip.srtp.sdes_enabled());
    assert_eq!(sip.srtp.savp, SavpOption::Mandatory);
    assert_eq!(
        sip.srtp.protocols,
        vec![
            EncryptionProtocol {
                name: "DTLS-SRTP".into(),
                priority: 0,
                enabled: false
            },
            EncryptionProtocol {
                name: "SDES".into(),
                priority: 1,
                enabled: true
            },
            EncryptionProtocol {
                name: "ZRTP".into(),
                priority: 0,
                enabled: false
            },
        ]
    );
    assert_eq!(
        sip.srtp.sdes_cipher_suites,
        vec!["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]
    );
    assert_eq!(sip.domain_base.as_deref(), Some("meet.jitsi"));

    let servers: Vec<_> = c.breweries.iter().map(|b| b.server.clone()).collect();
    assert_eq!(
        servers,
        vec![
            HostPort::new("xmpp1.meet.jitsi", 5222),
            HostPort::new("xmpp2.meet.jitsi", 15222)
        ]
    );
    assert!(
        c.breweries
            .iter()
            .all(|b| b.password.expose() == "jigasi-xmpp")
    );
    assert!(
        c.breweries
            .iter()
            .all(|b| b.brewery_room == "jigasibrewery@internal-muc.meet.jitsi")
    );

    assert_eq!(c.call_xmpp.server, HostPort::new("xmpp.meet.jitsi", 5222));
    assert!(!c.call_xmpp.anonymous);
    assert_eq!(
        c.call_xmpp.user_id.as_deref(),
        Some("jigasi@auth.meet.jitsi")
    );
    // PASS is plain text, not base64.
    assert_eq!(
        c.call_xmpp.password.as_ref().unwrap().expose(),
        "plain-call-pass"
    );
    assert!(c.call_xmpp.allow_non_secure);

    assert!(c.tls.dangerous_always_trust);
    assert_eq!(c.media.opus_complexity, 8);
    assert_eq!(c.jigasi.default_jvb_room_name.as_deref(), Some("siptest"));
    assert_eq!(
        c.jigasi.muc_service_address.as_deref(),
        Some("muc.meet.jitsi")
    );
    assert!(c.jigasi.enable_transcription);
    assert_eq!(
        c.jigasi.health_check.sip_uri, None,
        "an empty value counts as unset"
    );
    // REST bind comes from jigasi.conf beside the properties.
    assert_eq!(c.rest.bind, "0.0.0.0:8789".parse::<SocketAddr>().unwrap());

    let r = &loaded.report;
    let not_yet: Vec<&str> = r.not_yet_supported.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(
        not_yet,
        [
            "org.jitsi.jigasi.ENABLE_TRANSCRIPTION",
            "org.jitsi.jigasi.transcription.ENABLE_TRANSLATION",
            "org.jitsi.jigasi.transcription.DIRECTORY",
            "org.jitsi.jigasi.transcription.jetty.port",
            "org.jitsi.jigasi.transcription.SAVE_TXT",
        ]
    );
    assert_eq!(r.not_yet_supported[0].feature, "transcription");
    assert!(
        r.not_yet_supported[0]
            .to_string()
            .contains("does not support yet")
    );
    let unused: Vec<&str> = r.unused_keys.iter().map(|k| k.key.as_str()).collect();
    assert!(
        unused.contains(&"org.jitsi.jigasi.rest.tls-port"),
        "{unused:?}"
    );
    assert!(
        unused.contains(&"org.jitsi.jigasi.transcription.port"),
        "{unused:?}"
    );
}

#[test]
fn hocon_from_java_sys_props_and_legacy_property_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("custom.conf"),
        "org.jitsi.jigasi.rest.host = \"10.1.2.3\"\norg.jitsi.jigasi.rest.port = 8790\n",
    )
    .unwrap();
    let home = dir.path().join("jigasi-home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(
        home.join("sip-communicator.properties"),
        "org.jitsi.jigasi.rest.jetty.port=9999\norg.jitsi.jigasi.ENABLE_REST_SHUTDOWN=true\n",
    )
    .unwrap();
    let env = BTreeMap::from([(
        "JAVA_SYS_PROPS".to_owned(),
        "-Dnet.java.sip.communicator.SC_HOME_DIR_LOCATION=/etc/jitsi -Dconfig.file=custom.conf"
            .to_owned(),
    )]);
    let loaded = load(&CliArgs::default(), dir.path(), &env).unwrap();
    assert_eq!(
        loaded.config.rest.bind,
        "10.1.2.3:9999".parse::<SocketAddr>().unwrap()
    );
    assert!(loaded.config.rest.enable_shutdown);
    assert_eq!(loaded.config.sip, None);

    let bad_env = BTreeMap::from([(
        "JAVA_SYS_PROPS".to_owned(),
        "-Dconfig.file=/nonexistent/jigasi.conf".to_owned(),
    )]);
    let loaded = load(&CliArgs::default(), dir.path(), &bad_env).unwrap();
    assert!(
        loaded
            .report
            .warnings
            .iter()
            .any(|w| w.contains("/nonexistent/jigasi.conf"))
    );
    assert_eq!(loaded.config.rest.bind.port(), 9999);
}

#[test]
fn rest_port_minus_one_disables_the_api() {
    let (_dir, loaded) = minimal_with("org.jitsi.jigasi.rest.jetty.port=-1\n", &[]);
    assert!(!loaded.unwrap().config.rest.enabled);
}

#[test]
fn bad_port_names_file_line_key_and_expectation() {
    let message =
        minimal_error("net.java.sip.communicator.impl.protocol.sip.acc1.SERVER_PORT=50x0\n");
    assert!(message.ends_with(
        "net.java.sip.communicator.impl.protocol.sip.acc1.SERVER_PORT = \"50x0\": expected a port number 1-65535"
    ), "{message}");
}

#[test]
fn bad_base64_password_is_rejected_without_showing_it() {
    let message =
        minimal_error("net.java.sip.communicator.impl.protocol.sip.acc1.PASSWORD=not*base64!\n");
    assert!(message.contains("sip.acc1.PASSWORD"), "{message}");
    assert!(
        message.contains("expected the base64 encoding"),
        "{message}"
    );
    assert!(!message.contains("not*base64!"), "secret leaked: {message}");
}

#[test]
fn installer_placeholders_are_rejected_as_such() {
    let message = minimal_error(
        "net.java.sip.communicator.impl.protocol.sip.acc1.USER_ID=<<JIGASI_SIPUSER>>\n",
    );
    assert!(
        message.contains("sip.acc1.USER_ID contains <<JIGASI_SIPUSER>>"),
        "{message}"
    );
    assert!(
        message.contains("unreplaced installer placeholder"),
        "{message}"
    );
    let message = minimal_error(
        "net.java.sip.communicator.impl.protocol.sip.acc1.PASSWORD=<<JIGASI_SIPPWD>>\n",
    );
    assert!(
        message.contains("<<JIGASI_SIPPWD>>, an unreplaced installer placeholder"),
        "{message}"
    );
}

#[test]
fn unknown_transport_is_rejected() {
    let message = minimal_error(
        "net.java.sip.communicator.impl.protocol.sip.acc1.PREFERRED_TRANSPORT=SCTP\n",
    );
    assert!(
        message.ends_with("PREFERRED_TRANSPORT = \"SCTP\": expected UDP, TCP or TLS"),
        "{message}"
    );
}

#[test]
fn bad_duration_bool_and_json_are_rejected() {
    let message = minimal_error("org.jitsi.jigasi.JVB_INVITE_TIMEOUT=30s\n");
    assert!(
        message.ends_with(
            "org.jitsi.jigasi.JVB_INVITE_TIMEOUT = \"30s\": expected a whole number of milliseconds"
        ),
        "{message}"
    );
    let message = minimal_error("org.jitsi.jigasi.ENABLE_SIP=yes\n");
    assert!(
        message.ends_with("= \"yes\": expected true or false"),
        "{message}"
    );
    let message = minimal_error("org.jitsi.jigasi.TRUSTED_DOMAINS=recorder.example.com\n");
    assert!(message.contains("expected a JSON array"), "{message}");
    let message = minimal_error(
        "net.java.sip.communicator.impl.protocol.sip.acc1.KEEP_ALIVE_INTERVAL=often\n",
    );
    assert!(
        message.contains("expected a whole number of seconds"),
        "{message}"
    );
}

#[test]
fn min_port_above_max_port_is_rejected() {
    let (_dir, result) = minimal_with("", &["--min-port=25000"]);
    let message = result.unwrap_err().to_string();
    assert!(message.contains("25000-20000"), "{message}");
    assert!(message.contains("--min-port/--max-port"), "{message}");
    let (_dir, result) = minimal_with("", &["--min-port=11000", "-max-port=11999"]);
    assert_eq!(result.unwrap().config.media.port_range, 11_000..=11_999);
}

#[test]
fn missing_properties_file_names_the_path() {
    let cli = CliArgs {
        config_dir: Some(PathBuf::from("/nonexistent-dir")),
        config_dir_name: Some("jigasi".into()),
        ..CliArgs::default()
    };
    let message = load(&cli, Path::new("/"), &no_env())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("/nonexistent-dir/jigasi/sip-communicator.properties does not exist"),
        "{message}"
    );
}

#[test]
fn relative_configdir_is_taken_from_cwd() {
    let cli = CliArgs {
        config_dir: Some(PathBuf::from("jigasi-sample")),
        ..CliArgs::default()
    };
    let loaded = load(&cli, &testdata(), &no_env()).unwrap();
    assert_eq!(loaded.config.sip.unwrap().user, "jigasi");
}

#[test]
fn domain_flag_fills_defaults_the_file_does_not_set() {
    let extra = "\
net.java.sip.communicator.impl.protocol.jabber.ctl=ctl
net.java.sip.communicator.impl.protocol.jabber.ctl.USER_ID=jigasi@auth.meet.example.com
net.java.sip.communicator.impl.protocol.jabber.ctl.PASSWORD=cHc=
";
    let (_dir, loaded) = minimal_with(
        extra,
        &["--domain=meet.example.com", "--host=xmpp.internal"],
    );
    let loaded = loaded.unwrap();
    let c = &loaded.config;
    assert_eq!(
        c.jigasi.muc_service_address.as_deref(),
        Some("conference.meet.example.com")
    );
    assert_eq!(
        c.jigasi.focus_address.as_deref(),
        Some("focus.meet.example.com")
    );
    let sip = c.sip.as_ref().unwrap();
    assert_eq!(sip.domain_base.as_deref(), Some("meet.example.com"));
    assert_eq!(c.breweries.len(), 1);
    let b = &c.breweries[0];
    assert_eq!(
        b.brewery_room,
        "JigasiBrewery@internal.auth.meet.example.com"
    );
    assert_eq!(b.domain_base.as_deref(), Some("meet.example.com"));
    assert_eq!(b.server, HostPort::new("xmpp.internal", 5222));
    assert_eq!(c.call_xmpp.server, HostPort::new("xmpp.internal", 5222));
    assert!(
        loaded
            .report
            .warnings
            .iter()
            .any(|w| w.contains("has no BREWERY: joining"))
    );

    // Without --domain the same account is not a control account, as in Jigasi.
    let (_dir, loaded) = minimal_with(extra, &[]);
    let loaded = loaded.unwrap();
    assert!(loaded.config.breweries.is_empty());
    assert_eq!(loaded.config.jigasi.muc_service_address, None);
    assert_eq!(
        loaded.config.call_xmpp.server,
        HostPort::new("localhost", 5222)
    );
    assert!(
        loaded
            .report
            .unused_keys
            .iter()
            .any(|k| k.key.ends_with("jabber.ctl.USER_ID")
                && k.reason.as_deref() == Some("the account has no BREWERY"))
    );
}

#[test]
fn explicit_properties_win_over_domain_flag() {
    let mut cli = args("jigasi-sample", None);
    cli.domain = Some("other.example.org".into());
    let loaded = load(&cli, Path::new("/"), &no_env()).unwrap();
    let c = &loaded.config;
    assert_eq!(
        c.jigasi.muc_service_address.as_deref(),
        Some("conference.meet.example.com")
    );
    assert_eq!(
        c.sip.as_ref().unwrap().domain_base.as_deref(),
        Some("meet.example.com")
    );
    assert_eq!(
        c.breweries[0].brewery_room,
        "JigasiBrewery@internal.auth.meet.example.com"
    );
    assert_eq!(c.breweries[0].server, HostPort::new("127.0.0.1", 5222));
    // Only keys the file leaves out take the flag.
    assert_eq!(
        c.call_xmpp.domain_base.as_deref(),
        Some("other.example.org")
    );
}

#[test]
fn only_the_first_sip_account_is_used() {
    let extra = "\
net.java.sip.communicator.impl.protocol.sip.acc2=acc2
net.java.sip.communicator.impl.protocol.sip.acc2.USER_ID=2002@pbx.example.com
";
    let (_dir, loaded) = minimal_with(extra, &[]);
    let loaded = loaded.unwrap();
    assert_eq!(loaded.config.sip.as_ref().unwrap().id, "acc1");
    assert_eq!(loaded.config.sip.as_ref().unwrap().user, "1001");
    assert!(
        loaded
            .report
            .warnings
            .iter()
            .any(|w| w.contains("SIP account acc2 ignored"))
    );
    let unused: Vec<_> = loaded
        .report
        .unused_keys
        .iter()
        .map(|k| k.key.as_str())
        .collect();
    assert!(unused.contains(&"net.java.sip.communicator.impl.protocol.sip.acc2.USER_ID"));
    assert!(unused.contains(&"net.java.sip.communicator.impl.protocol.sip.acc2"));
}

#[test]
fn enable_sip_false_and_disabled_account_give_no_sip() {
    let (_dir, loaded) = minimal_with("org.jitsi.jigasi.ENABLE_SIP=false\n", &[]);
    assert_eq!(loaded.unwrap().config.sip, None);
    let (_dir, loaded) = minimal_with(
        "net.java.sip.communicator.impl.protocol.sip.acc1.IS_ACCOUNT_DISABLED=true\n",
        &[],
    );
    assert_eq!(loaded.unwrap().config.sip, None);
}

#[test]
fn not_yet_supported_features_are_reported_by_name() {
    let extra = "\
net.java.sip.communicator.impl.protocol.sip.acc1.USE_TRANSLATOR_IN_CONFERENCE=true
org.jitsi.jigasi.ENABLE_SIP_VISITORS=true
org.jitsi.jigasi.xmpp.acc.BOSH_URL_PATTERN=https://{host}{subdomain}/http-bind?room={roomName}
org.jitsi.jigasi.ENABLE_TRANSCRIPTION=false
org.jitsi.jigasi.transcription.SAVE_TXT=true
";
    let (_dir, loaded) = minimal_with(extra, &[]);
    let loaded = loaded.unwrap();
    assert!(loaded.config.sip.as_ref().unwrap().use_translator);
    let got: Vec<(&str, &str)> = loaded
        .report
        .not_yet_supported
        .iter()
        .map(|n| (n.key.as_str(), n.feature.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "net.java.sip.communicator.impl.protocol.sip.acc1.USE_TRANSLATOR_IN_CONFERENCE",
                "translator mode"
            ),
            ("org.jitsi.jigasi.ENABLE_SIP_VISITORS", "visitors"),
            (
                "org.jitsi.jigasi.xmpp.acc.BOSH_URL_PATTERN",
                "BOSH connections"
            ),
        ]
    );
    // With transcription off its keys are merely unused, as Jigasi ignores them too.
    let save = loaded
        .report
        .unused_keys
        .iter()
        .find(|k| k.key == "org.jitsi.jigasi.transcription.SAVE_TXT")
        .unwrap();
    assert!(
        save.reason
            .as_deref()
            .unwrap()
            .contains("transcription is off")
    );
}

#[test]
fn duplicate_keys_warn_and_the_later_value_wins() {
    let (_dir, loaded) = minimal_with(
        "net.java.sip.communicator.impl.protocol.sip.acc1.USER_ID=2002@pbx.example.com\n",
        &[],
    );
    let loaded = loaded.unwrap();
    assert_eq!(loaded.config.sip.unwrap().user, "2002");
    assert!(
        loaded
            .report
            .warnings
            .iter()
            .any(|w| w.contains(":6:") && w.contains("line 4"))
    );
}

#[test]
fn registrar_less_account_and_user_without_domain() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("jigasi-home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(
        home.join("sip-communicator.properties"),
        "net.java.sip.communicator.impl.protocol.sip.a=a\n\
         net.java.sip.communicator.impl.protocol.sip.a.USER_ID=1001\n\
         net.java.sip.communicator.impl.protocol.sip.a.KEEP_ALIVE_METHOD=REGISTER\n",
    )
    .unwrap();
    let loaded = load(&CliArgs::default(), dir.path(), &no_env()).unwrap();
    let sip = loaded.config.sip.unwrap();
    assert_eq!(sip.registrar, None);
    assert_eq!(sip.domain, "");
    assert_eq!(sip.password, None);
    assert_eq!(sip.keep_alive.interval, Some(Duration::from_secs(25)));
}

#[test]
fn graceful_shutdown_timeout_defaults_to_300_s_and_0_means_wait_for_the_calls() {
    let (_dir, loaded) = minimal_with("", &[]);
    let config = loaded.unwrap().config;
    assert_eq!(
        config.jigasi.graceful_shutdown_timeout,
        Some(Duration::from_secs(300))
    );
    let (_dir, loaded) = minimal_with("org.jitsi.jigasi.rs.GRACEFUL_SHUTDOWN_TIMEOUT=2000\n", &[]);
    let loaded = loaded.unwrap();
    assert_eq!(
        loaded.config.jigasi.graceful_shutdown_timeout,
        Some(Duration::from_secs(2))
    );
    assert!(
        loaded.report.unused_keys.is_empty(),
        "{:?}",
        loaded.report.unused_keys
    );
    let (_dir, loaded) = minimal_with("org.jitsi.jigasi.rs.GRACEFUL_SHUTDOWN_TIMEOUT=0\n", &[]);
    assert_eq!(
        loaded.unwrap().config.jigasi.graceful_shutdown_timeout,
        None
    );
    let message = minimal_error("org.jitsi.jigasi.rs.GRACEFUL_SHUTDOWN_TIMEOUT=5m\n");
    assert!(message.contains("GRACEFUL_SHUTDOWN_TIMEOUT"), "{message}");
}

#[test]
fn brewery_account_from_rest_properties() {
    use jigasi_config::properties::brewery_account_from_properties;
    let body = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let cli = CliArgs {
        host: Some("xmpp.internal".into()),
        domain: Some("meet.example.com".into()),
        ..CliArgs::default()
    };
    let account = brewery_account_from_properties(
        "acc-2",
        &body(&[
            ("ACCOUNT_UID", "Jabber:jigasi2@auth.meet.example.com"),
            ("USER_ID", "jigasi2@auth.meet.example.com"),
            ("PASSWORD", "plain pw"),
            ("BREWERY", "JigasiBrewery@internal.auth.meet.example.com"),
            ("RESOURCE", "jigasi-2"),
        ]),
        &cli,
    )
    .unwrap();
    assert_eq!(account.id, "acc-2");
    assert_eq!(
        account.account_uid.as_deref(),
        Some("Jabber:jigasi2@auth.meet.example.com")
    );
    assert_eq!(account.jid, "jigasi2@auth.meet.example.com");
    assert_eq!(account.password.expose(), "plain pw");
    assert_eq!(account.server, HostPort::new("xmpp.internal", 5222));
    assert_eq!(account.resource.as_deref(), Some("jigasi-2"));
    assert_eq!(account.domain_base.as_deref(), Some("meet.example.com"));

    for (missing, pairs) in [
        ("BREWERY", &[("USER_ID", "a@b"), ("PASSWORD", "p")][..]),
        ("USER_ID", &[("BREWERY", "r@m"), ("PASSWORD", "p")][..]),
        ("PASSWORD", &[("BREWERY", "r@m"), ("USER_ID", "a@b")][..]),
    ] {
        let error = brewery_account_from_properties("acc-2", &body(pairs), &cli)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("jabber.acc-2.{missing} is missing")),
            "{error}"
        );
    }
    let error = brewery_account_from_properties(
        "acc-2",
        &body(&[
            ("USER_ID", "no-domain"),
            ("PASSWORD", "p"),
            ("BREWERY", "r@m"),
        ]),
        &cli,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("acc-2.USER_ID") && error.contains("bare JID"),
        "{error}"
    );
    let error = brewery_account_from_properties("a.b", &body(&[]), &cli)
        .unwrap_err()
        .to_string();
    assert!(error.contains("without dots"), "{error}");
}
