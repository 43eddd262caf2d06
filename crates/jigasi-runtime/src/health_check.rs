//! The periodic SIP health-check call (`HEALTH_CHECK_SIP_URI`, jigasi-behaviour.md §1.16).
//!
//! Every `HEALTH_CHECK_INTERVAL` the gateway calls the URI (the far end must answer and send
//! audio); the check passes when any datagram reaches our RTP socket within
//! [`RTP_WAIT`] of the answer. A failed check is retried once (after 60 s, or the interval if
//! shorter) before it counts; the result feeds `/about/health`.

use std::sync::Arc;
use std::time::Duration;

use jigasi_config::Config;
use jigasi_sip::{CallEvent, DialRequest, Dialer, HangupReason, RegistrationState};
use jigasi_sip_core::sdp::{LocalMedia, SdpSession};
use rand::Rng;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::call_task::{bind_media_socket, codec_preferences, local_addr, media_ip};

/// How long the far end has to answer.
const ANSWER_WAIT: Duration = Duration::from_secs(20);
/// How long after the answer the first RTP must arrive (Jigasi: 10 s).
pub(crate) const RTP_WAIT: Duration = Duration::from_secs(10);
/// Jigasi retries a failed check once after a minute.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// The latest SIP health-check result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipCheck {
    /// No check has finished yet.
    Pending,
    /// The last check (or its retry) got audio.
    Passed,
    /// The last check and its retry failed; why.
    Failed(String),
}

/// Runs the checks until `shutdown`. Starts once SIP is registered (or after one interval).
pub(crate) async fn run(
    dialer: Dialer,
    mut registration: watch::Receiver<RegistrationState>,
    config: Arc<Config>,
    uri: String,
    result: watch::Sender<SipCheck>,
    shutdown: CancellationToken,
) {
    let interval = config.jigasi.health_check.interval;
    let registered = registration.wait_for(RegistrationState::is_registered);
    tokio::select! {
        () = shutdown.cancelled() => return,
        _ = tokio::time::timeout(interval, registered) => {}
    }
    loop {
        let mut outcome = check_once(&dialer, &config, &uri).await;
        if let Err(reason) = &outcome {
            warn!(%reason, "SIP health check failed, retrying once");
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RETRY_AFTER.min(interval)) => {}
            }
            outcome = check_once(&dialer, &config, &uri).await;
        }
        match outcome {
            Ok(after) => {
                info!(?after, "SIP health check passed");
                result.send_replace(SipCheck::Passed);
            }
            Err(reason) => {
                warn!(%reason, "SIP health check failed");
                result.send_replace(SipCheck::Failed(reason));
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// One test call: dial, wait for the answer, wait for RTP, hang up. Returns how long it took
/// until the first RTP.
async fn check_once(dialer: &Dialer, config: &Config, uri: &str) -> Result<Duration, String> {
    let started = tokio::time::Instant::now();
    let ip = media_ip(config, None, &config.call_xmpp.server).await;
    let socket = bind_media_socket(&config.media.port_range, ip)
        .await
        .map_err(|(_, reason)| reason)?;
    let local = local_addr(&socket, ip).map_err(|(_, reason)| reason)?;
    let mut media = LocalMedia::new(local.ip(), local.port());
    media.codecs = codec_preferences(config);
    let offer = SdpSession::new("jigasi-rs", rand::rng().random::<u32>().into())
        .offer(&media)
        .map_err(|e| format!("SDP offer: {e}"))?;
    let outgoing = dialer
        .dial(DialRequest {
            request_uri: uri.to_owned(),
            from: None,
            display_name: Some("Jigasi health check".into()),
            headers: Vec::new(),
            offer: offer.sdp.into_bytes(),
        })
        .await
        .map_err(|e| format!("could not call {uri}: {e}"))?;
    let mut events = outgoing.events;
    let answered = async {
        loop {
            match events.recv().await {
                Some(CallEvent::Answered { .. }) => return Ok(()),
                Some(CallEvent::Failed { status, reason }) => {
                    return Err(format!("{uri} answered {status} {reason}"));
                }
                Some(event) if event.is_terminal() => {
                    return Err(format!("the call ended before the answer: {event:?}"));
                }
                Some(_) => {}
                None => return Err("the call vanished".into()),
            }
        }
    };
    let outcome = match tokio::time::timeout(ANSWER_WAIT, answered).await {
        Err(_) => Err(format!("{uri} did not answer within {ANSWER_WAIT:?}")),
        Ok(Err(reason)) => Err(reason),
        Ok(Ok(())) => {
            let mut buf = [0u8; 2048];
            match tokio::time::timeout(RTP_WAIT, socket.recv_from(&mut buf)).await {
                Ok(Ok(_)) => Ok(started.elapsed()),
                Ok(Err(e)) => Err(format!("RTP socket: {e}")),
                Err(_) => Err(format!("no RTP within {RTP_WAIT:?} of the answer")),
            }
        }
    };
    // Ends the call whatever happened (CANCEL before the answer, BYE after).
    let _ = outgoing
        .control
        .hangup(HangupReason::Q850 {
            cause: 16,
            text: Some("Health check done".into()),
        })
        .await;
    outcome
}
