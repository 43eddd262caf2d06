//! [`StandInConfig`]: where the stand-in connects and how it behaves, with Jicofo's defaults.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use jigasi_types::Secret;

/// Configuration of a [`crate::StandIn`]. Defaults are Jicofo's (`reference.conf`) unless said
/// otherwise.
#[derive(Debug, Clone)]
pub struct StandInConfig {
    /// Prosody's client-to-server address (the focus logs in here, and simulated participants).
    pub c2s_addr: SocketAddr,
    /// Prosody's external component address (XEP-0114) for `focus.<domain>`.
    pub component_addr: SocketAddr,
    /// The component secret.
    pub component_secret: Secret<String>,
    /// The main domain, e.g. `meet.example.com`. The focus component is `focus.<domain>`, the
    /// conference MUC `conference.<domain>`, the focus account lives on `auth.<domain>`.
    pub domain: String,
    /// The focus account's local part on `auth.<domain>` (`focus`). It is also the nick the
    /// focus uses in every room (Jicofo joins as its XMPP username, §1.1).
    pub focus_user: String,
    /// The focus account's password.
    pub focus_password: Secret<String>,
    /// The Jigasi brewery room (`JigasiBrewery@internal.auth.<domain>`); `None` = no brewery
    /// (then `sipGatewayEnabled` is not announced and `dial` fails with `service-unavailable`).
    pub brewery_jid: Option<String>,
    /// `jicofo.conference.min-participants`: sessions start once this many members (focus
    /// excluded, simulated participants included) are in the room. Default 2.
    pub min_participants: usize,
    /// `single-participant-timeout`: with one member left, its session is terminated with
    /// `expired` "Idle session timeout" after this long. Default 20 s.
    pub single_participant_timeout: Duration,
    /// Where the bridge binds its UDP sockets (one per endpoint, port 0). Default 127.0.0.1.
    pub rtp_bind_ip: IpAddr,
    /// Disco#info reply timeout; on timeout Jicofo assumes `{audio, video, dtls-sctp}`.
    /// Default 15 s (Smack's reply timeout).
    pub disco_timeout: Duration,
    /// How long to wait for the ack of a Jingle request; a timeout counts as success (§4.1).
    /// Default 15 s.
    pub jingle_ack_timeout: Duration,
    /// Reply timeout for a Rayo dial forwarded to a gateway. Default 15 s.
    pub dial_timeout: Duration,
    /// The bridge's region (`bridge-session region`, and the conference's bridge region for
    /// gateway selection). Default `None`.
    pub bridge_region: Option<String>,
    /// Jicofo's `local-region`. Default `None`.
    pub local_region: Option<String>,
    /// `jicofo.xmpp.trusted-domains`: members whose real JID is on one of these domains and who
    /// publish the jigasi feature count as trusted Jigasi (early `transport-info` allowed).
    /// Default: the main domain (where gateways' per-call connections log in anonymously).
    pub trusted_domains: Vec<String>,
    /// Write `ssrc-info owner` as the full occupant JID (older Jicofo) instead of the bare
    /// endpoint id (current Jicofo, §4.2). Default `false`.
    pub full_jid_source_owners: bool,
    /// How much decoded audio to keep per endpoint (the newest). Default 60 s.
    pub max_received_audio: Duration,
    /// Connect timeout for the XMPP connections. Default 10 s.
    pub connect_timeout: Duration,
}

impl StandInConfig {
    /// A configuration with the defaults: focus `focus`, brewery
    /// `JigasiBrewery@internal.auth.<domain>`.
    pub fn new(
        c2s_addr: SocketAddr,
        component_addr: SocketAddr,
        domain: impl Into<String>,
        component_secret: Secret<String>,
        focus_password: Secret<String>,
    ) -> Self {
        let domain = domain.into();
        Self {
            c2s_addr,
            component_addr,
            component_secret,
            brewery_jid: Some(format!("JigasiBrewery@internal.auth.{domain}")),
            trusted_domains: vec![domain.clone()],
            domain,
            focus_user: "focus".into(),
            focus_password,
            min_participants: 2,
            single_participant_timeout: Duration::from_secs(20),
            rtp_bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            disco_timeout: Duration::from_secs(15),
            jingle_ack_timeout: Duration::from_secs(15),
            dial_timeout: Duration::from_secs(15),
            bridge_region: None,
            local_region: None,
            full_jid_source_owners: false,
            max_received_audio: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// `conference.<domain>`.
    pub fn muc_domain(&self) -> String {
        format!("conference.{}", self.domain)
    }

    /// `auth.<domain>`.
    pub fn auth_domain(&self) -> String {
        format!("auth.{}", self.domain)
    }

    /// `focus.<domain>`.
    pub fn focus_component(&self) -> String {
        format!("focus.{}", self.domain)
    }
}
