//! One tokio task per call: it owns the pure [`Call`], the call's two UDP sockets (phone RTP
//! and bridge ICE), its per-call XMPP connection and its SIP dialog handle, and only moves bytes,
//! stanzas, commands and deadlines between them (style-anchors.md B4).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;

use jid::BareJid;
use jigasi_call::{
    Call, CallConfig, CallEvent, CallOutput, CallQuality, ConferenceConfig, DtmfToPhone,
    HangupCause, LegQuality, MediaSocket, ReasonProtocol, Room, SipCommand, SipInput,
    StreamQuality, WallClock,
};
use jigasi_config::Config;
use jigasi_config::DtmfMethod;
use jigasi_sip::{CallControl, DialRequest, Dialer, HangupReason, IncomingCall};
use jigasi_sip_core::room::{
    DialInConfig, HeaderNames, dial_in_target, dial_out_headers, dial_out_request_uri,
};
use jigasi_sip_core::sdp::CodecPreference;
use jigasi_types::{CallId, Pii, Ssrc};
use jigasi_xmpp::{Auth, ClientConfig, TlsPolicy};
use jigasi_xmpp_io::{ConnectOptions, Incoming, XmppEvents, XmppHandle, connect_client};
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

/// What a call task tells the registry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RegistryEvent {
    /// The call's participant joined its room.
    Joined(CallId),
    /// The call's room has this many occupants besides us (the focus included).
    Occupants(CallId, usize),
    /// The phone stopped sending RTP (once per silence).
    MediaDropped(CallId),
    /// The call's measured quality (every [`QUALITY_INTERVAL`]).
    Quality(CallId, jigasi_api::CallQualitySample),
    /// The call is over.
    Ended(CallId),
    /// A call started (for `/debug`).
    Started {
        /// The call.
        id: CallId,
        /// Dial-in or dial-out.
        direction: jigasi_api::CallDirection,
        /// The caller's display name, or the number dialled.
        display_name: String,
        /// The caller's SIP URI, or the number dialled.
        remote: String,
    },
    /// The call's room, nick, SIP state or codec (for `/debug`).
    Progress {
        /// The call.
        id: CallId,
        /// The room JID.
        room: String,
        /// Our nick in the room.
        nick: Option<String>,
        /// [`Call::sip_state`].
        sip_state: &'static str,
        /// [`Call::phone_codec`].
        codec: Option<String>,
        /// Phones sharing the call's audio engine (its room's phones on this gateway).
        media_phones: usize,
    },
}

/// What every call task shares (read only).
pub(crate) struct CallContext {
    pub(crate) config: Arc<Config>,
    pub(crate) registry: mpsc::Sender<RegistryEvent>,
    /// The room tasks running now, by room, to join a call to (see `room_task`).
    pub(crate) rooms: crate::room_task::RoomDirectory,
}

/// Largest datagram we read (RTP and DTLS fit easily).
pub(crate) const MAX_DATAGRAM: usize = 2048;

/// How often a call reports its quality (jitter, loss, RTT, MOS) to the registry.
pub(crate) const QUALITY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

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
        let started = RegistryEvent::Started {
            id,
            direction: jigasi_api::CallDirection::In,
            display_name: incoming
                .from
                .display_name
                .clone()
                .unwrap_or_else(|| user_part(&incoming.from.uri)),
            remote: incoming.from.uri.clone(),
        };
        match CallIo::start_dial_in(id, incoming, &context).await {
            Ok((io, call)) => {
                let _ = context.registry.send(started).await;
                crate::room_task::enter(io, call, context, cancel).await;
            }
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
                let _ = context.registry.send(RegistryEvent::Ended(id)).await;
            }
        }
    }
    .instrument(span)
    .await;
}

/// Runs one dial-out call (a Rayo `dial`) to its end. `joined` receives the conference occupant
/// JID once the participant is in the room (the Rayo `<ref>`); it is dropped when the call ends.
pub(crate) async fn run_dial_out(
    id: CallId,
    dial: DialOut,
    dialer: Dialer,
    context: Arc<CallContext>,
    cancel: CancellationToken,
    joined: watch::Sender<Option<String>>,
) {
    let span = info_span!("call", id = id.get(), callee = %Pii(&dial.destination));
    async move {
        let started = RegistryEvent::Started {
            id,
            direction: jigasi_api::CallDirection::Out,
            display_name: dial.destination.clone(),
            remote: dial.destination.clone(),
        };
        match CallIo::start_dial_out(id, dial, dialer, &context).await {
            Ok((mut io, call)) => {
                let _ = context.registry.send(started).await;
                io.joined = Some(joined);
                crate::room_task::enter(io, call, context, cancel).await;
            }
            Err((status, reason)) => {
                warn!(status, %reason, "dial-out failed to start");
                let _ = context.registry.send(RegistryEvent::Ended(id)).await;
            }
        }
    }
    .instrument(span)
    .await;
}

/// A Rayo `dial` accepted from the brewery (jigasi-behaviour.md §1.4).
#[derive(Debug, Clone)]
pub(crate) struct DialOut {
    /// The number or URI to call (`to`).
    pub(crate) destination: String,
    /// `JvbRoomName`.
    pub(crate) room: String,
    /// `JvbRoomPassword`.
    pub(crate) password: Option<String>,
    /// Every other dial header, forwarded to the INVITE and shown in `<initiator>`.
    pub(crate) headers: Vec<(String, String)>,
}

/// The I/O side of one call, either direction: its sockets, XMPP connection and SIP dialog. The
/// pure [`Call`] itself lives in the room task's [`jigasi_call::Room`] (see `room_task`).
pub(crate) struct CallIo {
    pub(crate) id: CallId,
    /// The room, lower-cased: calls of one room share one room task and audio engine.
    pub(crate) room_key: String,
    /// The call's tracing span (`call{id=..}`), entered for everything done for it.
    pub(crate) span: tracing::Span,
    /// The SIP dialog once there is one (dial-out: after the INVITE).
    control: Option<CallControl>,
    sip_events: Option<mpsc::Receiver<jigasi_sip::CallEvent>>,
    pub(crate) sip_open: bool,
    /// Dial-out: places the INVITE when the call asks for it.
    dialer: Option<Dialer>,
    /// Dial-out: tells the Rayo requester where we joined.
    joined: Option<watch::Sender<Option<String>>>,
    pub(crate) xmpp: XmppHandle,
    xmpp_events: XmppEvents,
    pub(crate) xmpp_open: bool,
    phone_socket: UdpSocket,
    /// The phone's RTCP: the RTP port + 1.
    phone_rtcp_socket: UdpSocket,
    bridge_socket: UdpSocket,
    registry: mpsc::Sender<RegistryEvent>,
    /// For reconnecting the per-call XMPP connection.
    config: Arc<Config>,
    /// The XMPP domain the call connects to.
    domain: String,
    /// The call lost its XMPP connection and wants it back.
    reconnect_wanted: bool,
    /// The reconnection under way.
    pub(crate) reconnect: Option<tokio::task::JoinHandle<(XmppHandle, XmppEvents)>>,
    /// Dial-out: the INVITE being placed (DNS, a TLS connection), in its own task so the room's
    /// other calls never wait for it.
    dialing:
        Option<tokio::task::JoinHandle<Result<jigasi_sip::OutgoingCall, jigasi_sip::DialError>>>,
    /// The sockets' local addresses (phone, phone RTCP, bridge), once asked.
    local_addrs: [Option<SocketAddr>; 3],
}

/// One input for a call, as its room task received it.
pub(crate) enum Input {
    /// From the SIP dialog; `None` when the dialog is gone.
    Sip(Option<jigasi_sip::CallEvent>),
    /// From the per-call XMPP connection; `None` when it is gone.
    Xmpp(Option<Incoming>),
    /// A datagram of `len` bytes (in the room task's buffer) from `source` on `socket`.
    Datagram {
        socket: MediaSocket,
        len: usize,
        source: SocketAddr,
    },
    /// The XMPP reconnection finished.
    Reconnected(Result<(XmppHandle, XmppEvents), tokio::task::JoinError>),
    /// The dial-out INVITE was placed (or could not be).
    Dialed(Result<Result<jigasi_sip::OutgoingCall, jigasi_sip::DialError>, tokio::task::JoinError>),
}

impl CallIo {
    /// Room from the headers, SDP negotiated, sockets bound, XMPP connected.
    async fn start_dial_in(
        id: CallId,
        incoming: IncomingCall,
        context: &CallContext,
    ) -> Result<(Self, Call), (u16, String)> {
        let config = &context.config;
        let target = dial_in_target(&incoming.headers, &dial_in_config(config))
            .map_err(|e| (e.sip_status(), e.to_string()))?;
        let Some(offer) = incoming.offer.as_deref() else {
            // Late offer (offer in the ACK) is not supported yet.
            return Err((488, "INVITE without SDP offer".into()));
        };
        let display_name = incoming
            .from
            .display_name
            .clone()
            .unwrap_or_else(|| user_part(&incoming.from.uri));
        let Prepared {
            call_config,
            sockets,
            domain,
        } = prepare(
            id,
            config,
            incoming.remote_addr,
            &target.room_jid,
            target.domain_base.clone(),
            target.password.clone(),
            display_name,
            Vec::new(),
        )
        .await?;
        let call =
            Call::dial_in(call_config, offer).map_err(|e| (e.sip_status(), e.to_string()))?;
        info!(room = %Pii(&target.room_jid), "dial-in call");

        let (xmpp, xmpp_events) = connect_call_xmpp(config, &domain).await?;
        let mut io = Self::assemble(
            id,
            &target.room_jid,
            sockets,
            xmpp,
            xmpp_events,
            domain,
            context,
        );
        io.control = Some(incoming.control);
        io.sip_events = Some(incoming.events);
        Ok((io, call))
    }

    /// Joins the room first; the INVITE goes out when the focus's offer is accepted.
    async fn start_dial_out(
        id: CallId,
        dial: DialOut,
        dialer: Dialer,
        context: &CallContext,
    ) -> Result<(Self, Call), (u16, String)> {
        let config = &context.config;
        let account = config.sip.as_ref();
        let registrar_domain = account.map(|a| a.domain.as_str()).filter(|d| !d.is_empty());
        let prefix = account.map_or("", |a| a.outbound_prefix.as_str());
        let uri = dial_out_request_uri(&dial.destination, prefix, registrar_domain)
            .map_err(|e| (400, e.to_string()))?;
        let room_header = account.map_or("Jitsi-Conference-Room", |a| a.headers.room.as_str());
        let headers = dial_out_headers(room_header, &dial.room, &dial.headers)
            .map_err(|e| (400, e.to_string()))?;
        // `room@conference.meet.example.com` → `meet.example.com`.
        let domain_base = dial
            .room
            .split_once('@')
            .and_then(|(_, muc)| muc.split_once('.').map(|(_, domain)| domain.to_owned()));
        let Prepared {
            call_config,
            sockets,
            domain,
        } = prepare(
            id,
            config,
            None,
            &dial.room,
            config.call_xmpp.domain_base.clone().or(domain_base),
            dial.password.clone(),
            dial.destination.clone(),
            dial.headers.clone(),
        )
        .await?;
        let call = Call::dial_out(call_config, uri.uri, headers)
            .map_err(|e| (e.sip_status(), e.to_string()))?;
        info!(room = %Pii(&dial.room), "dial-out call");
        let (xmpp, xmpp_events) = connect_call_xmpp(config, &domain).await?;
        let mut io = Self::assemble(id, &dial.room, sockets, xmpp, xmpp_events, domain, context);
        io.dialer = Some(dialer);
        Ok((io, call))
    }

    /// The I/O of a prepared call, without SIP dialog or dialer yet.
    fn assemble(
        id: CallId,
        room: &str,
        sockets: Sockets,
        xmpp: XmppHandle,
        xmpp_events: XmppEvents,
        domain: String,
        context: &CallContext,
    ) -> Self {
        Self {
            id,
            room_key: room.to_ascii_lowercase(),
            span: tracing::Span::current(),
            control: None,
            sip_events: None,
            sip_open: true,
            dialer: None,
            joined: None,
            xmpp,
            xmpp_events,
            xmpp_open: true,
            phone_socket: sockets.phone,
            phone_rtcp_socket: sockets.phone_rtcp,
            bridge_socket: sockets.bridge,
            registry: context.registry.clone(),
            config: context.config.clone(),
            domain,
            reconnect_wanted: false,
            reconnect: None,
            dialing: None,
            local_addrs: [None; 3],
        }
    }

    /// Polls the call's sources once, starting at `first` (rotated by the caller, so no source
    /// starves the others); datagrams are read into `buf`.
    pub(crate) fn poll_input(
        &mut self,
        cx: &mut std::task::Context<'_>,
        first: usize,
        buf: &mut [u8],
    ) -> std::task::Poll<Input> {
        use std::task::Poll;
        for i in 0..7 {
            let polled = match (first + i) % 7 {
                0 => self.poll_datagram(cx, MediaSocket::Bridge, buf),
                1 => self.poll_datagram(cx, MediaSocket::Phone, buf),
                2 => self.poll_datagram(cx, MediaSocket::PhoneRtcp, buf),
                3 if self.sip_open => match self.sip_events.as_mut() {
                    Some(events) => events.poll_recv(cx).map(Input::Sip),
                    None => Poll::Pending,
                },
                4 if self.xmpp_open => self.xmpp_events.poll_next(cx).map(Input::Xmpp),
                5 => match self.reconnect.as_mut() {
                    Some(task) => std::pin::Pin::new(task).poll(cx).map(Input::Reconnected),
                    None => Poll::Pending,
                },
                6 => match self.dialing.as_mut() {
                    Some(task) => std::pin::Pin::new(task).poll(cx).map(Input::Dialed),
                    None => Poll::Pending,
                },
                _ => Poll::Pending,
            };
            if polled.is_ready() {
                return polled;
            }
        }
        Poll::Pending
    }

    fn poll_datagram(
        &self,
        cx: &mut std::task::Context<'_>,
        socket: MediaSocket,
        buf: &mut [u8],
    ) -> std::task::Poll<Input> {
        use std::task::Poll;
        let socket_ref = self.socket(socket);
        // An ICMP error (port unreachable after we sent to a closed port) surfaces as one failed
        // read: not fatal, read again (which also registers for the next datagram).
        for _ in 0..4 {
            let mut read = tokio::io::ReadBuf::new(&mut *buf);
            match socket_ref.poll_recv_from(cx, &mut read) {
                Poll::Ready(Ok(source)) => {
                    return Poll::Ready(Input::Datagram {
                        socket,
                        len: read.filled().len(),
                        source,
                    });
                }
                Poll::Ready(Err(_)) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
        // Still failing: leave it to the next wake-up (the media tick comes every 20 ms).
        Poll::Pending
    }

    /// The local address of one of the call's sockets (asked once, not per datagram).
    fn local_addr(&mut self, socket: MediaSocket) -> Option<SocketAddr> {
        let index = match socket {
            MediaSocket::Phone => 0,
            MediaSocket::PhoneRtcp => 1,
            MediaSocket::Bridge => 2,
        };
        if self.local_addrs[index].is_none() {
            self.local_addrs[index] = self.socket(socket).local_addr().ok();
        }
        self.local_addrs[index]
    }

    pub(crate) fn socket(&self, socket: MediaSocket) -> &UdpSocket {
        match socket {
            MediaSocket::Phone => &self.phone_socket,
            MediaSocket::PhoneRtcp => &self.phone_rtcp_socket,
            MediaSocket::Bridge => &self.bridge_socket,
        }
    }

    /// Starts the XMPP reconnection when the call asked for one.
    pub(crate) fn start_reconnect(&mut self) {
        if std::mem::take(&mut self.reconnect_wanted) && self.reconnect.is_none() {
            let (config, domain) = (self.config.clone(), self.domain.clone());
            self.reconnect = Some(tokio::spawn(async move {
                reconnect_call_xmpp(&config, &domain).await
            }));
        }
    }

    /// Acts on one input of this call.
    pub(crate) async fn on_input(&mut self, room: &mut Room, input: Input, buf: &[u8]) {
        let id = self.id;
        let now = Instant::now().into_std();
        match input {
            Input::Datagram {
                socket,
                len,
                source,
            } => {
                let Some(local) = self.local_addr(socket) else {
                    return;
                };
                let contents = buf.get(..len).unwrap_or_default();
                room.with_call(id, |call| {
                    call.handle_datagram(now, socket, source, local, contents);
                });
            }
            Input::Sip(Some(event)) => self.on_sip_event(room, now, event).await,
            Input::Sip(None) => {
                self.sip_open = false;
                room.with_call(id, |call| call.handle_sip(now, SipInput::Terminated));
            }
            Input::Xmpp(Some(Incoming::Stanza(stanza))) => {
                room.with_call(id, |call| call.handle_xmpp_stanza(now, &stanza));
            }
            Input::Xmpp(Some(Incoming::Closed(reason))) => {
                warn!(%reason, "per-call XMPP connection closed");
                self.xmpp_open = false;
                room.with_call(id, |call| call.handle_xmpp_lost(now));
            }
            Input::Xmpp(None) => {
                self.xmpp_open = false;
                room.with_call(id, |call| call.handle_xmpp_lost(now));
            }
            Input::Reconnected(joined) => {
                self.reconnect = None;
                if let Ok((xmpp, events)) = joined {
                    let nick = format!("{:08x}", rand::rng().random::<u32>());
                    info!(%nick, "per-call XMPP connection restored: rejoining");
                    self.xmpp = xmpp;
                    self.xmpp_events = events;
                    self.xmpp_open = true;
                    let jid = self.xmpp.jid().clone();
                    room.with_call(id, |call| call.handle_xmpp_reconnected(now, jid, nick));
                }
            }
            Input::Dialed(placed) => {
                self.dialing = None;
                let failure = match placed {
                    Ok(Ok(outgoing)) => {
                        self.control = Some(outgoing.control);
                        self.sip_events = Some(outgoing.events);
                        self.report(self.progress(room)).await;
                        return;
                    }
                    Ok(Err(error)) => error.to_string(),
                    Err(error) => error.to_string(),
                };
                warn!(error = %failure, "could not place the INVITE");
                room.with_call(id, |call| {
                    call.handle_sip(
                        now,
                        SipInput::Failed {
                            status: 500,
                            reason: failure,
                        },
                    );
                });
            }
        }
    }

    /// Executes one output of the call.
    pub(crate) async fn execute(&mut self, room: &mut Room, output: CallOutput) {
        match output {
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
                // Media is never queued: a failed send is a lost packet.
                let _ = self.socket(socket).send_to(&contents, destination).await;
            }
            CallOutput::Event(event) => match event {
                CallEvent::Joined => {
                    info!("joined the conference");
                    if let (Some(joined), Some(call)) = (&self.joined, room.call(self.id)) {
                        joined.send_replace(Some(call.occupant()));
                    }
                    let _ = self.registry.send(RegistryEvent::Joined(self.id)).await;
                    self.report(self.progress(room)).await;
                }
                CallEvent::Answered => {
                    info!("answered the phone");
                    self.report(self.progress(room)).await;
                }
                CallEvent::Occupants { others } => {
                    let _ = self
                        .registry
                        .send(RegistryEvent::Occupants(self.id, others))
                        .await;
                }
                CallEvent::MediaConnected => info!("media to the bridge connected"),
                CallEvent::ConferenceLost => {
                    warn!("conference connection lost: keeping the phone, reconnecting");
                    self.reconnect_wanted = true;
                }
                CallEvent::MediaDropped => {
                    warn!("the phone stopped sending media");
                    let _ = self
                        .registry
                        .send(RegistryEvent::MediaDropped(self.id))
                        .await;
                }
                CallEvent::Ended { reason } => info!(%reason, "call ending"),
            },
            // The room task drains outputs through the room, which keeps the deadlines.
            CallOutput::Timeout(_) | CallOutput::Idle => {}
        }
    }

    /// The call is over and out of the room: closes its connection, logs, tells the registry.
    pub(crate) async fn finish(mut self, call: Call) {
        if let Some(task) = self.reconnect.take() {
            task.abort();
        }
        if let Some(task) = self.dialing.take() {
            task.abort();
        }
        let srtp = call.phone_srtp();
        drop(call);
        self.xmpp.close().await;
        if let Some(srtp) = srtp {
            info!(
                suite = srtp.suite.name(),
                rtp_sent = srtp.sent.rtp_packets,
                rtp_received = srtp.received.rtp_packets,
                rtcp_sent = srtp.sent.rtcp_packets,
                rtcp_received = srtp.received.rtcp_packets,
                auth_failures = srtp.received.auth_failures,
                replayed = srtp.received.replayed,
                malformed = srtp.received.malformed,
                rtcp_auth_failures = srtp.received.rtcp_auth_failures,
                rtcp_dropped = srtp.received.rtcp_replayed + srtp.received.rtcp_malformed,
                "phone leg SRTP"
            );
        }
        info!("call ended");
        let _ = self.registry.send(RegistryEvent::Ended(self.id)).await;
    }

    /// The call's quality for the registry.
    pub(crate) fn quality(&self, room: &Room) -> Option<RegistryEvent> {
        let quality = room.quality(self.id)?;
        Some(RegistryEvent::Quality(self.id, quality_sample(&quality)))
    }

    /// What `/debug` shows about the call now.
    pub(crate) fn progress(&self, room: &Room) -> Option<RegistryEvent> {
        let call = room.call(self.id)?;
        let occupant = call.occupant();
        let (room_jid, nick) = match occupant.split_once('/') {
            Some((room_jid, nick)) => (room_jid.to_owned(), Some(nick.to_owned())),
            None => (occupant.clone(), None),
        };
        Some(RegistryEvent::Progress {
            id: self.id,
            room: room_jid,
            nick,
            sip_state: call.sip_state(),
            codec: call.phone_codec(),
            media_phones: room.phones(),
        })
    }

    /// Tells the registry (`/debug`, statistics).
    pub(crate) async fn report(&self, event: Option<RegistryEvent>) {
        if let Some(event) = event {
            let _ = self.registry.send(event).await;
        }
    }

    async fn on_sip_event(
        &mut self,
        room: &mut Room,
        now: std::time::Instant,
        event: jigasi_sip::CallEvent,
    ) {
        use jigasi_sip::CallEvent as Sip;
        let id = self.id;
        let input = match event {
            Sip::Confirmed => SipInput::Acked,
            Sip::Cancelled => SipInput::Cancelled,
            Sip::RemoteHangup { reason } => SipInput::RemoteHangup { reason },
            Sip::Terminated { .. } => SipInput::Terminated,
            Sip::Failed { status, reason } => SipInput::Failed { status, reason },
            Sip::Provisional { status, .. } => SipInput::Provisional { status },
            Sip::Answered { sdp: Some(sdp) } => SipInput::Answered { sdp },
            Sip::Answered { sdp: None } => {
                room.with_call(id, |call| call.hang_up(now, "Answer without SDP"));
                return;
            }
            Sip::ReInvite {
                offer, responder, ..
            } => {
                let Some(offer) = offer else {
                    let _ = responder.reject(488).await;
                    return;
                };
                let answer = room
                    .with_call(id, |call| call.answer_re_offer(&offer))
                    .unwrap_or(Err(481));
                let _ = match answer {
                    Ok(sdp) => responder.accept(sdp.into_bytes()).await,
                    Err(status) => responder.reject(status).await,
                };
                return;
            }
            Sip::Info { content_type, .. } => {
                info!(?content_type, "INFO from the phone (not used yet)");
                return;
            }
        };
        room.with_call(id, |call| call.handle_sip(now, input));
    }

    async fn on_sip_command(&mut self, command: SipCommand) {
        if let SipCommand::Invite {
            request_uri,
            headers,
            sdp,
        } = command
        {
            self.dial(request_uri, headers, sdp);
            return;
        }
        let Some(control) = &self.control else {
            warn!(?command, "no SIP dialog for this command");
            return;
        };
        let result = match command {
            SipCommand::Answer { sdp } => control.answer(sdp.into_bytes()).await,
            SipCommand::Reject { status, reason } => {
                control
                    .reject(
                        status,
                        HangupReason::Sip {
                            cause: status,
                            text: Some(reason),
                        },
                    )
                    .await
            }
            SipCommand::Hangup { reason } => control.hangup(hangup_reason(&reason)).await,
            SipCommand::Info { content_type, body } => control
                .send_info(&content_type, body.into_bytes())
                .await
                .map(|status| {
                    if !(200..300).contains(&status) {
                        warn!(status, "the phone refused our INFO");
                    }
                }),
            SipCommand::Invite { .. } => Ok(()),
        };
        if let Err(error) = result {
            warn!(%error, "SIP command failed");
        }
    }

    /// Dial-out: the conference accepted us, now call the phone (the result comes back as
    /// [`Input::Dialed`]).
    fn dial(&mut self, request_uri: String, headers: Vec<(String, String)>, sdp: String) {
        let Some(dialer) = self.dialer.clone() else {
            return;
        };
        let request = DialRequest {
            request_uri,
            from: None,
            display_name: None,
            headers,
            offer: sdp.into_bytes(),
        };
        self.dialing = Some(tokio::spawn(async move { dialer.dial(request).await }));
    }
}

/// A call's media sockets.
struct Sockets {
    /// The phone's RTP (even port).
    phone: UdpSocket,
    /// The phone's RTCP (the next, odd port).
    phone_rtcp: UdpSocket,
    /// ICE toward the bridge.
    bridge: UdpSocket,
}

/// What both directions need before the call starts.
struct Prepared {
    call_config: CallConfig,
    sockets: Sockets,
    /// The XMPP domain for the per-call connection.
    domain: String,
}

/// Binds the call's sockets (phone RTP and RTCP as an even/odd pair, bridge) and builds its
/// configuration (random nick, SSRCs, ids).
#[allow(clippy::too_many_arguments)]
async fn prepare(
    id: CallId,
    config: &Config,
    toward: Option<SocketAddr>,
    room_jid: &str,
    domain_base: Option<String>,
    password: Option<String>,
    display_name: String,
    initiator_headers: Vec<(String, String)>,
) -> Result<Prepared, (u16, String)> {
    let media_ip = media_ip(config, toward, &config.call_xmpp.server).await;
    let range = config.media.port_range.clone();
    let (phone_socket, phone_rtcp_socket) = bind_rtp_rtcp_pair(&range, media_ip).await?;
    let bridge_socket = bind_media_socket(&range, media_ip).await?;
    let phone_rtp = local_addr(&phone_socket, media_ip)?;
    let bridge_addr = local_addr(&bridge_socket, media_ip)?;
    let domain = domain_base
        .or_else(|| config.call_xmpp.domain_base.clone())
        .ok_or((
            500,
            "no XMPP domain configured (DOMAIN_BASE or --domain)".to_owned(),
        ))?;
    let room = BareJid::new(room_jid).map_err(|e| (486, format!("bad room {room_jid}: {e}")))?;
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let nick = format!("{:08x}", rng.random::<u32>());
    let conference = ConferenceConfig {
        room,
        nick: nick.clone(),
        password,
        focus_component: config
            .jigasi
            .focus_address
            .clone()
            .unwrap_or_else(|| format!("{}.{domain}", config.jigasi.focus_resource)),
        focus_nick: config.jigasi.focus_resource.clone(),
        display_name: Some(display_name),
        region: config.jigasi.local_region.clone(),
        version: Some(crate::VERSION.to_owned()),
        stats_id: config.jigasi.stats_id.clone(),
        initiator_headers,
        machine_uid: format!("jigasi-rs-{nick}"),
        invite_timeout: config.jigasi.jvb_invite_timeout,
        media_addrs: vec![bridge_addr],
        ssrc: Ssrc::new(rng.random()),
        msid_uuid: uuid(&mut rng),
    };
    let srtp_config = config.sip.as_ref().map(|account| &account.srtp);
    let srtp_policy = crate::srtp::policy(srtp_config);
    let call_config = CallConfig {
        id,
        conference,
        phone_rtp,
        codecs: codec_preferences(config),
        srtp: srtp_policy,
        sdes_key: crate::srtp::key(srtp_policy, &mut rng),
        sdes_suites: crate::srtp::suites(srtp_config),
        phone_ssrc: Ssrc::new(rng.random()),
        sdp_session_id: rng.random::<u32>().into(),
        first_sequence: rng.random::<u16>() & 0x7fff,
        first_timestamp: rng.random(),
        dtmf_method: dtmf_method(config),
        dtmf_minimal_tone: config
            .sip
            .as_ref()
            .map_or(std::time::Duration::from_millis(70), |a| {
                a.dtmf_minimal_tone_duration
            }),
        media_dropped_threshold: config.jigasi.sip_media_dropped_threshold,
        hangup_on_media_dropped: config.jigasi.hangup_sip_on_media_dropped,
        wall_clock: WallClock {
            at: Instant::now().into_std(),
            since_unix_epoch: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        },
        rtcp_seed: rng.random(),
    };
    info!(%nick, %phone_rtp, %bridge_addr, "call media and nick");
    Ok(Prepared {
        call_config,
        sockets: Sockets {
            phone: phone_socket,
            phone_rtcp: phone_rtcp_socket,
            bridge: bridge_socket,
        },
        domain,
    })
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

/// Connects the per-call XMPP account again after a loss, retrying with backoff (1 s doubling
/// to 8 s). The call's own deadline ends the wait: the task is aborted when the call ends.
async fn reconnect_call_xmpp(config: &Config, domain: &str) -> (XmppHandle, XmppEvents) {
    let mut backoff = std::time::Duration::from_secs(1);
    loop {
        match connect_call_xmpp(config, domain).await {
            Ok(connection) => return connection,
            Err((_, reason)) => warn!(%reason, ?backoff, "per-call XMPP reconnect failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(std::time::Duration::from_secs(8));
    }
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

/// `DTMF_METHOD` as the call logic sees it.
fn dtmf_method(config: &Config) -> DtmfToPhone {
    match config.sip.as_ref().map(|a| a.dtmf_method) {
        Some(DtmfMethod::Rtp) => DtmfToPhone::Rtp,
        Some(DtmfMethod::SipInfo) => DtmfToPhone::SipInfo,
        Some(DtmfMethod::Inband) => DtmfToPhone::Inband,
        Some(DtmfMethod::Auto) | None => DtmfToPhone::Auto,
    }
}

pub(crate) fn codec_preferences(config: &Config) -> Vec<CodecPreference> {
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
pub(crate) async fn media_ip(
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

/// Binds the phone's RTP socket on a free even port of `--min-port`..`--max-port` and its RTCP
/// socket on the next port (RFC 3550 §11); falls back to an odd RTP port when the range has
/// no free even pair.
pub(crate) async fn bind_rtp_rtcp_pair(
    range: &RangeInclusive<u16>,
    ip: IpAddr,
) -> Result<(UdpSocket, UdpSocket), (u16, String)> {
    let (first, last) = (u32::from(*range.start()), u32::from(*range.end()));
    if last <= first {
        return Err((
            503,
            format!("media port range {first}..={last} has no room for RTP and RTCP"),
        ));
    }
    // Candidate RTP ports: `first..last` (so that + 1 stays in the range), even ones first.
    let span = last - first;
    let start = rand::rng().random_range(0..span);
    let candidates = (0..span)
        .map(|i| first + (start + i) % span)
        .filter(|port| port % 2 == 0)
        .chain(
            (0..span)
                .map(|i| first + (start + i) % span)
                .filter(|port| port % 2 == 1),
        )
        .take(200);
    for port in candidates {
        let (Ok(rtp_port), Ok(rtcp_port)) = (u16::try_from(port), u16::try_from(port + 1)) else {
            continue;
        };
        let Ok(rtp) = UdpSocket::bind(SocketAddr::new(ip, rtp_port)).await else {
            continue;
        };
        if let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, rtcp_port)).await {
            return Ok((rtp, rtcp));
        }
    }
    Err((
        503,
        format!("no free RTP/RTCP port pair in {first}..={last}"),
    ))
}

/// The registry's copy of a call's quality, with the MOS estimates worked out.
fn quality_sample(quality: &CallQuality) -> jigasi_api::CallQualitySample {
    fn ms(duration: std::time::Duration) -> f64 {
        duration.as_secs_f64() * 1000.0
    }
    let leg = |leg: &LegQuality| {
        let stream = |stream: Option<StreamQuality>| {
            stream.map(|s| jigasi_api::StreamQualitySample {
                jitter_ms: ms(s.jitter),
                loss_ratio: s.loss,
                mos: s.mos(leg.codec, leg.rtt),
            })
        };
        jigasi_api::LegQualitySample {
            inbound: stream(leg.inbound),
            outbound: stream(leg.outbound),
            rtt_ms: leg.rtt.map(ms),
        }
    };
    jigasi_api::CallQualitySample {
        phone: quality.phone.as_ref().map(leg),
        bridge: quality.bridge.as_ref().map(leg),
        phone_rtcp_dropped: quality.phone_rtcp_dropped,
    }
}

/// Binds a UDP socket on a free port of `--min-port`..`--max-port`.
pub(crate) async fn bind_media_socket(
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

pub(crate) fn local_addr(socket: &UdpSocket, ip: IpAddr) -> Result<SocketAddr, (u16, String)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn port(socket: &UdpSocket) -> u16 {
        socket.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// A free even port with the next three free too, from the OS.
    fn free_block() -> u16 {
        for _ in 0..100 {
            let probe = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok();
            let Some(base) = probe
                .and_then(|s| s.local_addr().ok())
                .map(|a| a.port() & !1)
            else {
                continue;
            };
            if base < 60_000
                && (base..base + 4)
                    .all(|p| std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).is_ok())
            {
                return base;
            }
        }
        panic!("no four free ports");
    }

    #[tokio::test]
    async fn rtp_and_rtcp_get_an_even_odd_pair_from_the_range() {
        let base = free_block();
        let (rtp, rtcp) = bind_rtp_rtcp_pair(&(base..=base + 3), LOOPBACK)
            .await
            .expect("a pair");
        assert_eq!(port(&rtp) % 2, 0);
        assert_eq!(port(&rtcp), port(&rtp) + 1);
        assert!((base..=base + 3).contains(&port(&rtcp)));
        drop((rtp, rtcp));

        // The first even port's partner is taken: the next even pair.
        let taken = UdpSocket::bind((LOOPBACK, base + 1)).await.expect("bind");
        let (rtp, rtcp) = bind_rtp_rtcp_pair(&(base..=base + 3), LOOPBACK)
            .await
            .expect("a pair");
        assert_eq!((port(&rtp), port(&rtcp)), (base + 2, base + 3));
        drop((rtp, rtcp, taken));

        // Only an odd start fits: 2k+1, 2k+2.
        let (rtp, rtcp) = bind_rtp_rtcp_pair(&(base + 1..=base + 2), LOOPBACK)
            .await
            .expect("an odd pair");
        assert_eq!((port(&rtp), port(&rtcp)), (base + 1, base + 2));

        // One port, or everything taken: 503.
        let single = bind_rtp_rtcp_pair(&(base..=base), LOOPBACK).await;
        assert_eq!(single.map(|_| ()).map_err(|(status, _)| status), Err(503));
        let full = bind_rtp_rtcp_pair(&(base + 1..=base + 2), LOOPBACK).await;
        assert_eq!(full.map(|_| ()).map_err(|(status, _)| status), Err(503));
    }
}
