//! One benchmark caller: a SIP UAC over UDP straight to the gateway (as a PBX would send it)
//! that streams recorded PCMU speech every 20 ms on an absolute schedule and logs every RTP
//! packet the gateway sends back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::sip::{Dialog, Message, ok_to};
use crate::stats::Rx;

/// Bytes of PCMU per 20 ms frame.
pub(crate) const FRAME_BYTES: usize = 160;
/// How long the gateway may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
/// SIP retransmission interval (T1 doubling is not needed on loopback).
const RETRANSMIT: Duration = Duration::from_millis(500);

/// What a caller does.
#[derive(Debug, Clone)]
pub(crate) struct PhoneConfig {
    /// Call number (user part `phone<index>`).
    pub(crate) index: usize,
    /// The gateway's SIP address.
    pub(crate) gateway: SocketAddr,
    /// The conference room (bare JID) sent in `Jitsi-Conference-Room`.
    pub(crate) room: String,
    /// µ-law speech, played in a loop.
    pub(crate) speech: Arc<[u8]>,
    /// First frame played.
    pub(crate) offset_frames: usize,
    /// Share of frames not sent (network loss on the SIP leg), seeded by `index`.
    pub(crate) loss: f64,
    /// Keep received payloads and send instants (quality calls).
    pub(crate) record: bool,
}

/// What the caller has seen so far; the benchmark reads and drains it while the call runs.
#[derive(Debug, Default)]
pub(crate) struct Live {
    /// When the INVITE went out.
    pub(crate) invited_at: Option<Instant>,
    /// When the 200 OK arrived.
    pub(crate) answered_at: Option<Instant>,
    /// When the first RTP packet from the gateway arrived.
    pub(crate) first_rx_at: Option<Instant>,
    /// RTP received since the last drain.
    pub(crate) rx: Vec<Rx>,
    /// (extended sequence, payload) of every received packet (recording callers only).
    pub(crate) payloads: Vec<(u64, Vec<u8>)>,
    /// Send instant of frame k (k from the start of the speech; recording callers only).
    pub(crate) sent: Vec<Instant>,
    /// Frames sent (or dropped as simulated loss) since the last drain.
    pub(crate) frames: u64,
    /// Of those, sent more than 5 ms after their slot (the load generator was late).
    pub(crate) late_sends: u64,
    /// Final failure, if any.
    pub(crate) error: Option<String>,
    /// The gateway hung up.
    pub(crate) remote_bye: bool,
}

/// Shared view of a running caller.
pub(crate) type Shared = Arc<Mutex<Live>>;

/// Locks a caller's state (a poisoned lock still holds consistent counters).
pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, Live> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs the call until `stop` turns true, then hangs up.
pub(crate) async fn run(config: PhoneConfig, shared: Shared, mut stop: watch::Receiver<bool>) {
    if let Err(error) = call(&config, &shared, &mut stop).await {
        lock(&shared).error = Some(error);
    }
}

async fn call(
    config: &PhoneConfig,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let sip = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind SIP: {e}"))?;
    let rtp = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind RTP: {e}"))?;
    let local = sip.local_addr().map_err(|e| e.to_string())?;
    let rtp_local = rtp.local_addr().map_err(|e| e.to_string())?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.index as u64);
    let mut dialog = Dialog {
        local,
        gateway: config.gateway,
        target: format!("sip:jigasi@{}", config.gateway),
        user: format!("phone{}", config.index),
        call_id: format!(
            "bench-{}-{:08x}@127.0.0.1",
            config.index,
            rng.random::<u32>()
        ),
        tag: format!("{:08x}", rng.random::<u32>()),
        remote_to: None,
        remote_target: None,
    };
    let invite = dialog.invite(
        &format!("i{:08x}", rng.random::<u32>()),
        &config.room,
        rtp_local,
    );
    let invited = Instant::now();
    lock(shared).invited_at = Some(invited);
    send(&sip, &invite, config.gateway).await?;
    let mut buf = vec![0u8; 4096];
    let mut provisional = false;
    let mut resend = Instant::now() + RETRANSMIT;
    let (answer, answered) = loop {
        if invited.elapsed() > ANSWER_TIMEOUT {
            return Err("no final answer to the INVITE".into());
        }
        let wait = if provisional {
            Duration::from_millis(200)
        } else {
            resend.saturating_duration_since(Instant::now())
        };
        tokio::select! {
            received = sip.recv_from(&mut buf) => {
                let (n, _) = received.map_err(|e| format!("SIP receive: {e}"))?;
                let Ok(message) = Message::parse(&buf[..n]) else { continue };
                match message.status {
                    Some(code) if code < 200 => provisional = true,
                    Some(200) if message.cseq_method() == Some("INVITE") => {
                        break (message, Instant::now());
                    }
                    Some(code) if message.cseq_method() == Some("INVITE") => {
                        return Err(format!("INVITE answered {code}"));
                    }
                    Some(_) => {}
                    None => send(&sip, &ok_to(&message), config.gateway).await?,
                }
            }
            () = tokio::time::sleep(wait) => {
                if !provisional {
                    send(&sip, &invite, config.gateway).await?;
                    resend = Instant::now() + RETRANSMIT;
                }
            }
            _ = stop.changed() => return Err("stopped before the answer".into()),
        }
    };
    dialog.remote_to = answer.header("to").map(str::to_owned);
    dialog.remote_target = answer.contact_uri();
    let media = answer.sdp_audio_addr().map_err(|e| e.to_string())?;
    let ack = dialog.ack(&format!("a{:08x}", rng.random::<u32>()));
    send(&sip, &ack, config.gateway).await?;
    lock(shared).answered_at = Some(answered);

    let frames = config.speech.len() / FRAME_BYTES;
    if frames == 0 {
        return Err("no speech to send".into());
    }
    let ssrc: u32 = rng.random();
    let mut seq: u16 = rng.random();
    let mut ts: u32 = rng.random();
    let start = Instant::now();
    let mut k: u64 = 0;
    let mut last_ext: Option<u64> = None;
    let mut packet = [0u8; 12 + FRAME_BYTES];
    let mut sip_buf = vec![0u8; 4096];
    loop {
        let slot = start + Duration::from_millis(20 * k);
        tokio::select! {
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(slot)) => {
                let now = Instant::now();
                let frame = (config.offset_frames + k as usize) % frames;
                let dropped = config.loss > 0.0 && rng.random_bool(config.loss.min(1.0));
                if !dropped {
                    packet[0] = 0x80;
                    packet[1] = if k == 0 { 0x80 } else { 0 };
                    packet[2..4].copy_from_slice(&seq.to_be_bytes());
                    packet[4..8].copy_from_slice(&ts.to_be_bytes());
                    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
                    packet[12..].copy_from_slice(
                        &config.speech[frame * FRAME_BYTES..(frame + 1) * FRAME_BYTES],
                    );
                    // A full socket buffer loses the packet, as the network would.
                    let _ = rtp.try_send_to(&packet, media);
                }
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(FRAME_BYTES as u32);
                k += 1;
                let mut live = lock(shared);
                live.frames += 1;
                if now.saturating_duration_since(slot) > Duration::from_millis(5) {
                    live.late_sends += 1;
                }
                if config.record {
                    live.sent.push(now);
                }
            }
            received = rtp.recv_from(&mut buf) => {
                let Ok((n, _)) = received else { continue };
                let now = Instant::now();
                let data = &buf[..n];
                if n < 12 || data[0] >> 6 != 2 || data[1] & 0x7f != 0 {
                    continue;
                }
                let seq16 = u16::from_be_bytes([data[2], data[3]]);
                let ext = match last_ext {
                    None => u64::from(seq16) + (1 << 32),
                    Some(last) => {
                        let delta = i64::from(seq16.wrapping_sub(last as u16) as i16);
                        last.saturating_add_signed(delta)
                    }
                };
                last_ext = Some(last_ext.map_or(ext, |l| l.max(ext)));
                let rx = Rx { at: now, seq: ext, ts: u32::from_be_bytes([data[4], data[5], data[6], data[7]]) };
                let mut live = lock(shared);
                live.first_rx_at.get_or_insert(now);
                live.rx.push(rx);
                if config.record {
                    live.payloads.push((ext, data[12..].to_vec()));
                }
            }
            received = sip.recv_from(&mut sip_buf) => {
                let Ok((n, _)) = received else { continue };
                let Ok(message) = Message::parse(&sip_buf[..n]) else { continue };
                match (&message.status, message.method.as_deref()) {
                    (None, Some("BYE")) => {
                        send(&sip, &ok_to(&message), config.gateway).await?;
                        lock(shared).remote_bye = true;
                        return Err("the gateway hung up".into());
                    }
                    (None, _) => send(&sip, &ok_to(&message), config.gateway).await?,
                    // A retransmitted 200: our ACK was lost.
                    (Some(200), _) if message.cseq_method() == Some("INVITE") => {
                        send(&sip, &ack, config.gateway).await?;
                    }
                    _ => {}
                }
            }
            _ = stop.changed() => break,
        }
    }
    let bye = dialog.bye(&format!("b{:08x}", rng.random::<u32>()));
    for _ in 0..4 {
        send(&sip, &bye, config.gateway).await?;
        let deadline = Instant::now() + RETRANSMIT;
        while let Ok(Ok((n, _))) = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            sip.recv_from(&mut buf),
        )
        .await
        {
            if let Ok(message) = Message::parse(&buf[..n])
                && message.cseq_method() == Some("BYE")
                && message.status.is_some_and(|s| s >= 200)
            {
                return Ok(());
            }
        }
    }
    Err("no answer to the BYE".into())
}

async fn send(socket: &UdpSocket, message: &str, to: SocketAddr) -> Result<(), String> {
    socket
        .send_to(message.as_bytes(), to)
        .await
        .map(|_| ())
        .map_err(|e| format!("SIP send: {e}"))
}
