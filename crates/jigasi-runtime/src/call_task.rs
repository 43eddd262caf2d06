//! One tokio task per call: it owns the pure [`Call`], the call's two UDP sockets (phone RTP
//! and bridge ICE), its per-call XMPP connection and its SIP dialog handle, and only moves bytes,
//! stanzas, commands and deadlines between them (style-anchors.md B4).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;

use jid::BareJid;
use jigasi_call::{
    Call, CallConfig, CallEvent, CallOutput, ConferenceConfig, HangupCause, MediaSocket,
    ReasonProtocol, SipCommand, SipInput,
};
use jigasi_config::Config;
use jigasi_sip::{CallControl, HangupReason, IncomingCall};
use jigasi_sip_core::room::{DialInConfig, HeaderNames, dial_in_target};
use jigasi_sip_core::sdp::CodecPreference;
use jigasi_types::{CallId, Pii, Ssrc};
use jigasi_xmpp::{Auth, ClientConfig, TlsPolicy};
use jigasi_xmpp_io::{ConnectOptions, Incoming, XmppEvents, XmppHandle, connect_client};
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

/// What a call task tells the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RegistryEvent {
    /// The call's participant joined its room.
    Joined(CallId),
    /// The call is over.
    Ended(CallId),
}

/// What every call task shares (read only).
pub(crate) struct CallContext {
    pub(crate) config: Arc<Config>,
    pub(crate) registry: mpsc::Sender<RegistryEvent>,
}

/// Largest datagram we read (RTP and DTLS fit easily).
const MAX_DATAGRAM: usize = 2048;

/// Runs one dial-in call to its end. Never panics on peer input; every failure ends in a SIP
/// rejection or BYE.
pub(crate) async fn run_dial_in(
    id: CallId,
    incoming: IncomingCall,
    context: Arc<CallContext>,
    cancel: CancellationToken,
) {
    let span = info_span!("call", id = id.get(), caller = %Pii(&incoming.from.uri));
    async move {
        let control = incoming.control.clone();
        match DialIn::start(id, incoming, &context).await {
            Ok(call) => call.run(cancel).await,
            Err((status, reason)) => {
                warn!(status, %reason, "rejecting the call");
                let _ = control
                    .reject(
                        status,
                        HangupReason::Sip {
                            cause: status,
                            text: Some(reason),
                        },
                    )
                    .await;
            }
        }
        let _ = context.registry.send(RegistryEvent::Ended(id)).await;
    }
    .instrument(span)
    .await;
}

struct DialIn {
    id: CallId,
    call: Call,
    control: CallControl,
    sip_events: mpsc::Receiver<jigasi_sip::CallEvent>,
    xmpp: XmppHandle,
    xmpp_events: XmppEvents,
    phone_socket: UdpSocket,
    bridge_socket: UdpSocket,
    registry: mpsc::Sender<RegistryEvent>,
}

impl DialIn {
    /// Room from the headers, SDP negotiated, sockets bound, XMPP connected.
    async fn start(
        id: CallId,
        incoming: IncomingCall,
        context: &CallContext,
    ) -> Result<Self, (u16, String)> {
        let config = &context.config;
        let target = dial_in_target(&incoming.headers, &dial_in_config(config))
            .map_err(|e| (e.sip_status(), e.to_string()))?;
        let Some(offer) = incoming.offer.as_deref() else {
            // Late offer (offer in the ACK) is not supported yet.
            return Err((488, "INVITE without SDP offer".into()));
        };
        let xmpp_server = &config.call_xmpp.server;
        let media_ip = media_ip(config, incoming.remote_addr, xmpp_server).await;
        let range = config.media.port_range.clone();
        let phone_socket = bind_media_socket(&range, media_ip).await?;
        let bridge_socket = bind_media_socket(&range, media_ip).await?;
        let phone_rtp = local_addr(&phone_socket, media_ip)?;
        let bridge_addr = local_addr(&bridge_socket, media_ip)?;

        let domain = target
            .domain_base
            .clone()
            .or_else(|| config.call_xmpp.domain_base.clone())
            .ok_or((
                500,
                "no XMPP domain configured (DOMAIN_BASE or --domain)".to_owned(),
            ))?;
        let room = BareJid::new(&target.room_jid)
            .map_err(|e| (486, format!("bad room {}: {e}", target.room_jid)))?;
        let mut rng = rand::rngs::StdRng::from_os_rng();
        let nick = format!("{:08x}", rng.random::<u32>());
        let conference = ConferenceConfig {
            room,
            nick: nick.clone(),
            password: target.password.clone(),
            focus_component: config
                .jigasi
                .focus_address
                .clone()
                .unwrap_or_else(|| format!("{}.{domain}", config.jigasi.focus_resource)),
            focus_nick: config.jigasi.focus_resource.clone(),
            display_name: Some(
                incoming
                    .from
                    .display_name
                    .clone()
                    .unwrap_or_else(|| user_part(&incoming.from.uri)),
            ),
            region: config.jigasi.local_region.clone(),
            version: Some(crate::VERSION.to_owned()),
            stats_id: config.jigasi.stats_id.clone(),
            initiator_headers: Vec::new(),
            machine_uid: format!("jigasi-rs-{nick}"),
            invite_timeout: config.jigasi.jvb_invite_timeout,
            media_addrs: vec![bridge_addr],
            ssrc: Ssrc::new(rng.random()),
            msid_uuid: uuid(&mut rng),
        };
        let call_config = CallConfig {
            id,
            conference,
            phone_rtp,
            codecs: codec_preferences(config),
            phone_ssrc: Ssrc::new(rng.random()),
            sdp_session_id: rng.random::<u32>().into(),
            first_sequence: rng.random::<u16>() & 0x7fff,
            first_timestamp: rng.random(),
        };
        let call =
            Call::dial_in(call_config, offer).map_err(|e| (e.sip_status(), e.to_string()))?;
        info!(room = %Pii(&target.room_jid), %nick, %phone_rtp, %bridge_addr, "dial-in call");

        let (xmpp, xmpp_events) = connect_call_xmpp(config, &domain).await?;
        Ok(Self {
            id,
            call,
            control: incoming.control,
            sip_events: incoming.events,
            xmpp,
            xmpp_events,
            phone_socket,
            bridge_socket,
            registry: context.registry.clone(),
        })
    }

    async fn run(mut self, cancel: CancellationToken) {
        let now = Instant::now().into_std();
        self.call.handle_xmpp_online(now, self.xmpp.jid().clone());
        let mut phone_buf = vec![0u8; MAX_DATAGRAM];
        let mut bridge_buf = vec![0u8; MAX_DATAGRAM];
        let phone_local = self.phone_socket.local_addr().ok();
        let bridge_local = self.bridge_socket.local_addr().ok();
        let mut deadline = None;
        let mut sip_open = true;
        let mut xmpp_open = true;
        loop {
            if let Some(next) = self.drain().await {
                deadline = Some(next);
            }
            if self.call.is_ended() {
                break;
            }
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => {
                    self.call.hang_up(Instant::now().into_std(), "Gateway shutting down");
                }
                event = self.sip_events.recv(), if sip_open => {
                    let now = Instant::now().into_std();
                    match event {
                        Some(event) => self.on_sip_event(now, event).await,
                        None => {
                            sip_open = false;
                            self.call.handle_sip(now, SipInput::Terminated);
                        }
                    }
                }
                incoming = self.xmpp_events.next(), if xmpp_open => {
                    let now = Instant::now().into_std();
                    match incoming {
                        Some(Incoming::Stanza(stanza)) => self.call.handle_xmpp_stanza(now, &stanza),
                        Some(Incoming::Closed(reason)) => {
                            warn!(%reason, "per-call XMPP connection closed");
                            xmpp_open = false;
                            self.call.handle_xmpp_lost(now);
                        }
                        None => {
                            xmpp_open = false;
                            self.call.handle_xmpp_lost(now);
                        }
                    }
                }
                received = self.phone_socket.recv_from(&mut phone_buf) => {
                    if let (Ok((len, source)), Some(local)) = (received, phone_local) {
                        let now = Instant::now().into_std();
                        self.call.handle_datagram(now, MediaSocket::Phone, source, local, &phone_buf[..len]);
                    }
                }
                received = self.bridge_socket.recv_from(&mut bridge_buf) => {
                    if let (Ok((len, source)), Some(local)) = (received, bridge_local) {
                        let now = Instant::now().into_std();
                        self.call.handle_datagram(now, MediaSocket::Bridge, source, local, &bridge_buf[..len]);
                    }
                }
                () = sleep => {
                    self.call.handle_timeout(Instant::now().into_std());
                }
            }
        }
        // Flush the last stanzas (session-terminate, leave) and close the per-call connection.
        self.drain().await;
        self.xmpp.close().await;
        info!("call ended");
    }

    /// Executes every output of the call; returns its next deadline.
    async fn drain(&mut self) -> Option<std::time::Instant> {
        loop {
            match self.call.poll_output() {
                CallOutput::Sip(command) => self.on_sip_command(command).await,
                CallOutput::Xmpp(stanza) => {
                    // A failed send means the connection is going; its Closed event follows.
                    let _ = self.xmpp.send(stanza).await;
                }
                CallOutput::Transmit {
                    socket,
                    destination,
                    contents,
                } => {
                    let socket = match socket {
                        MediaSocket::Phone => &self.phone_socket,
                        MediaSocket::Bridge => &self.bridge_socket,
                    };
                    // Media is never queued: a failed send is a lost packet.
                    let _ = socket.send_to(&contents, destination).await;
                }
                CallOutput::Event(event) => match event {
                    CallEvent::Joined => {
                        info!("joined the conference");
                        let _ = self.registry.send(RegistryEvent::Joined(self.id)).await;
                    }
                    CallEvent::Answered => info!("answered the phone"),
                    CallEvent::MediaConnected => info!("media to the bridge connected"),
                    CallEvent::Ended { reason } => info!(%reason, "call ending"),
                },
                CallOutput::Timeout(at) => return Some(at),
                CallOutput::Idle => return None,
            }
        }
    }

    async fn on_sip_event(&mut self, now: std::time::Instant, event: jigasi_sip::CallEvent) {
        use jigasi_sip::CallEvent as Sip;
        match event {
            Sip::Confirmed => self.call.handle_sip(now, SipInput::Acked),
            Sip::Cancelled => self.call.handle_sip(now, SipInput::Cancelled),
            Sip::RemoteHangup { reason } => {
                self.call.handle_sip(now, SipInput::RemoteHangup { reason });
            }
            Sip::Terminated { .. } | Sip::Failed { .. } => {
                self.call.handle_sip(now, SipInput::Terminated);
            }
            Sip::ReInvite {
                offer, responder, ..
            } => {
                let Some(offer) = offer else {
                    let _ = responder.reject(488).await;
                    return;
                };
                let _ = match self.call.answer_re_offer(&offer) {
                    Ok(sdp) => responder.accept(sdp.into_bytes()).await,
                    Err(status) => responder.reject(status).await,
                };
            }
            Sip::Info { content_type, .. } => {
                info!(?content_type, "INFO from the phone (not used yet)");
            }
            Sip::Provisional { .. } | Sip::Answered { .. } => {}
        }
    }

    async fn on_sip_command(&mut self, command: SipCommand) {
        let result = match command {
            SipCommand::Answer { sdp } => self.control.answer(sdp.into_bytes()).await,
            SipCommand::Reject { status, reason } => {
                self.control
                    .reject(
                        status,
                        HangupReason::Sip {
                            cause: status,
                            text: Some(reason),
                        },
                    )
                    .await
            }
            SipCommand::Hangup { reason } => self.control.hangup(hangup_reason(&reason)).await,
        };
        if let Err(error) = result {
            warn!(%error, "SIP command failed");
        }
    }
}

fn hangup_reason(cause: &HangupCause) -> HangupReason {
    match cause.protocol {
        ReasonProtocol::Sip => HangupReason::Sip {
            cause: cause.cause,
            text: Some(cause.text.clone()),
        },
        ReasonProtocol::Q850 => HangupReason::Q850 {
            cause: cause.cause,
            text: Some(cause.text.clone()),
        },
    }
}

/// The per-call XMPP connection: SASL ANONYMOUS on the main domain by default, or the
/// configured user (`org.jitsi.jigasi.xmpp.acc.USER_ID` / `PASS`).
async fn connect_call_xmpp(
    config: &Config,
    domain: &str,
) -> Result<(XmppHandle, XmppEvents), (u16, String)> {
    let xmpp = &config.call_xmpp;
    let auth = match (&xmpp.user_id, &xmpp.password, xmpp.anonymous) {
        (Some(user), Some(password), false) => Auth::Password {
            username: user.split('@').next().unwrap_or(user).to_owned(),
            password: password.clone(),
        },
        _ => Auth::Anonymous,
    };
    let tls = if xmpp.allow_non_secure {
        TlsPolicy::IfOffered
    } else {
        TlsPolicy::Required
    };
    let mut client = ClientConfig::new(domain, auth).with_tls(tls);
    client.ping_interval = Some(xmpp.ping_interval);
    let mut options = ConnectOptions::new(xmpp.server.host.clone(), xmpp.server.port);
    options.tls_server_name = domain.to_owned();
    options.dangerous_accept_invalid_certs =
        xmpp.allow_non_secure || config.tls.dangerous_always_trust;
    connect_client(options, client)
        .await
        .map_err(|e| (503, format!("conference XMPP connection failed: {e}")))
}

fn dial_in_config(config: &Config) -> DialInConfig {
    let mut dial_in = DialInConfig {
        muc_service_address: config.jigasi.muc_service_address.clone(),
        default_room: config.jigasi.default_jvb_room_name.clone(),
        domain_base: config.call_xmpp.domain_base.clone(),
        ..DialInConfig::default()
    };
    if let Some(account) = &config.sip {
        let names = &account.headers;
        dial_in.header_names = HeaderNames {
            room: names.room.clone(),
            room_password: names.room_password.clone(),
            domain_base: names.domain_base.clone(),
            domain_tenant: names.domain_tenant.clone(),
            auth_token: names.auth_token.clone(),
            user_id: names.auth_user_id.clone(),
            visitor: names.visitor.clone(),
        };
        if account.domain_base.is_some() {
            dial_in.domain_base = account.domain_base.clone();
        }
        if !account.muc_domain_prefixes.is_empty() {
            dial_in.muc_domain_prefixes = account.muc_domain_prefixes.clone();
        }
    }
    dial_in
}

fn codec_preferences(config: &Config) -> Vec<CodecPreference> {
    match &config.sip {
        Some(account) if !account.encodings.is_empty() => account
            .encodings
            .iter()
            .map(|e| CodecPreference {
                name: e.name.clone(),
                clock_rate: e.clock_rate,
                priority: e.priority,
            })
            .collect(),
        Some(_) | None => jigasi_sip_core::sdp::jigasi_default_codecs(),
    }
}

/// The address to put in SDP and ICE candidates: the configured public address, else the local
/// address the OS would use toward the caller (or the XMPP server, usually next to the bridge).
async fn media_ip(
    config: &Config,
    caller: Option<SocketAddr>,
    xmpp: &jigasi_config::HostPort,
) -> IpAddr {
    if let Some(public) = config.media.public_address {
        return public;
    }
    let toward = match caller {
        Some(addr) => Some(addr),
        None => tokio::net::lookup_host((xmpp.host.as_str(), xmpp.port))
            .await
            .ok()
            .and_then(|mut a| a.next()),
    };
    toward
        .and_then(|addr| {
            let probe =
                std::net::UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))
                    .ok()?;
            probe.connect(addr).ok()?;
            probe.local_addr().ok().map(|a| a.ip())
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Binds a UDP socket on a free port of `--min-port`..`--max-port`.
async fn bind_media_socket(
    range: &RangeInclusive<u16>,
    ip: IpAddr,
) -> Result<UdpSocket, (u16, String)> {
    let span = u32::from(*range.end()) - u32::from(*range.start()) + 1;
    let start = rand::rng().random_range(0..span);
    for i in 0..span.min(200) {
        let offset = (start + i) % span;
        let port = u16::try_from(u32::from(*range.start()) + offset).unwrap_or(*range.start());
        if let Ok(socket) = UdpSocket::bind(SocketAddr::new(ip, port)).await {
            return Ok(socket);
        }
    }
    Err((
        503,
        format!("no free media port in {}..={}", range.start(), range.end()),
    ))
}

fn local_addr(socket: &UdpSocket, ip: IpAddr) -> Result<SocketAddr, (u16, String)> {
    socket
        .local_addr()
        .map(|a| SocketAddr::new(ip, a.port()))
        .map_err(|e| (500, e.to_string()))
}

fn user_part(uri: &str) -> String {
    let without_scheme = uri.split_once(':').map_or(uri, |(_, rest)| rest);
    without_scheme
        .split(['@', ';'])
        .next()
        .unwrap_or(without_scheme)
        .to_owned()
}

fn uuid(rng: &mut impl Rng) -> String {
    let b: [u8; 16] = rng.random();
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-4{:01x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0],
        b[1],
        b[2],
        b[3],
        b[4],
        b[5],
        b[6] & 0x0f,
        b[7],
        (b[8] & 0x3f) | 0x80,
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}
