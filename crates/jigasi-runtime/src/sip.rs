//! Maps the configuration onto the SIP adapter's options.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use jigasi_config::{Config, SipAccount};
use jigasi_sip::{
    AccountOptions, KeepAliveConfig, KeepAliveMethod, Registrar, RegistrationConfig, SipOptions,
    TlsClientOptions, Transport,
};

/// The SIP endpoint options for `account`: listen on all interfaces on Jigasi's clear port
/// (`SIP_PREFERRED_CLEAR_PORT`, 5060), register as `USER_ID` at `SERVER_ADDRESS`.
pub(crate) fn options(config: &Config, account: &SipAccount) -> SipOptions {
    let registrar = account.registrar.as_ref().map(|server| Registrar {
        host: server.host.clone(),
        port: server.port,
        transport: transport(account.transport),
    });
    SipOptions {
        bind: SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            config.sip_stack.clear_port,
        ),
        // Behind NAT the configured public address goes into Via and Contact (Jigasi has none);
        // the port is assumed to be forwarded unchanged.
        public_address: config
            .media
            .public_address
            .map(|ip| SocketAddr::new(ip, config.sip_stack.clear_port)),
        // A TLS listener needs a certificate; the configuration has no key for one yet.
        tls: None,
        tls_client: TlsClientOptions {
            ca_file: None,
            dangerous_accept_invalid_certs: config.tls.dangerous_always_trust,
        },
        user_agent: format!("jigasi-rs/{}", crate::VERSION),
        account: Some(AccountOptions {
            user: account.user.clone(),
            domain: account.domain.clone(),
            password: account.password.clone(),
            auth_username: account.authorization_name.clone(),
            registrar,
            registration: RegistrationConfig {
                requested_expiry: config.sip_stack.registration_expiry,
                ..RegistrationConfig::default()
            },
            keep_alive: KeepAliveConfig {
                method: match account.keep_alive.method {
                    jigasi_config::KeepAliveMethod::Options => KeepAliveMethod::Options,
                    jigasi_config::KeepAliveMethod::Crlf => KeepAliveMethod::Crlf,
                    jigasi_config::KeepAliveMethod::Register => KeepAliveMethod::Register,
                },
                interval: account.keep_alive.interval,
            },
        }),
    }
}

fn transport(transport: jigasi_config::Transport) -> Transport {
    match transport {
        jigasi_config::Transport::Udp => Transport::Udp,
        jigasi_config::Transport::Tcp => Transport::Tcp,
        jigasi_config::Transport::Tls => Transport::Tls,
    }
}
