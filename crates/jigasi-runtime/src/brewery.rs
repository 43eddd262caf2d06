//! One brewery task per brewery account: connect, join the brewery room, publish the stats,
//! answer what arrives, reconnect with backoff when the connection is lost.

use std::time::Duration;

use jigasi_call::rayo::{DialOutRequest, DialRefusal, accept_dial, dial_failed, dial_result};
use jigasi_config::{BreweryAccount, Config};
use jigasi_types::Pii;
use jigasi_xmpp::brewery::Stats;
use jigasi_xmpp::brewery_member::{BreweryEvent, BreweryMember};
use jigasi_xmpp::disco::DiscoInfo;
use jigasi_xmpp::minidom::Element;
use jigasi_xmpp::stanza::iq_error;
use jigasi_xmpp::{Auth, ClientConfig, TlsPolicy};
use jigasi_xmpp_io::{ConnectOptions, Incoming, XmppEvents, XmppHandle, connect_client};
use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::RuntimeError;

/// First reconnect delay; doubles per consecutive failure.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest reconnect delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Delay before joining again after being removed from the room or refused.
const REJOIN_DELAY: Duration = Duration::from_secs(5);

/// Where one brewery account stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreweryState {
    /// Connecting to the XMPP server or joining the room.
    Connecting,
    /// In the brewery room; Jicofo can see and select us.
    Joined,
    /// The room refused us (e.g. `not-authorized`, `registration-required`); retried later.
    Refused {
        /// The XMPP error condition.
        condition: String,
    },
    /// The connection failed or was lost; reconnecting with backoff.
    Disconnected {
        /// Why, for logs and health output.
        reason: String,
    },
}

/// How a connected session ended.
enum Served {
    /// We were asked to stop; the room was left and the stream closed.
    Shutdown,
    /// The connection was lost.
    Lost {
        /// Why.
        reason: String,
        /// Whether we had been in the room (then the backoff starts again from the minimum).
        was_joined: bool,
    },
}

/// The task owning one brewery account's connection.
pub(crate) struct BreweryTask {
    id: String,
    jid: String,
    room: String,
    connect: ConnectOptions,
    client: ClientConfig,
    stats: watch::Receiver<Stats>,
    state: watch::Sender<BreweryState>,
    cancel: CancellationToken,
    /// `ALLOWED_JID`: the only sender of dial requests (normally the brewery room).
    allowed_jid: Option<String>,
    /// Accepted dial requests go to the runtime.
    dials: mpsc::Sender<DialMessage>,
    /// `MUC_JOIN_TIMEOUT`: how long the `<ref>` may take.
    muc_join_timeout: Duration,
}

/// A dial request for the runtime, with where to send the occupant JID (or why it failed).
#[derive(Debug)]
pub(crate) struct DialMessage {
    pub(crate) request: DialOutRequest,
    pub(crate) reply: oneshot::Sender<Result<String, String>>,
}

impl BreweryTask {
    pub(crate) fn new(
        account: &BreweryAccount,
        config: &Config,
        stats: watch::Receiver<Stats>,
        cancel: CancellationToken,
        dials: mpsc::Sender<DialMessage>,
    ) -> Result<(Self, watch::Receiver<BreweryState>), RuntimeError> {
        let (username, domain) =
            account
                .jid
                .split_once('@')
                .ok_or_else(|| RuntimeError::Brewery {
                    id: account.id.clone(),
                    reason: format!("USER_ID {:?} is not a bare JID user@domain", account.jid),
                })?;
        // ALLOW_NON_SECURE: encrypt if the server offers it, but do not insist on a certificate
        // we can verify (Jigasi's loopback default). Otherwise TLS is required and verified
        // unless ALWAYS_TRUST_MODE_ENABLED says to trust any certificate.
        let tls = if account.allow_non_secure {
            TlsPolicy::IfOffered
        } else {
            TlsPolicy::Required
        };
        let mut client = ClientConfig::new(
            domain,
            Auth::Password {
                username: username.to_owned(),
                password: account.password.clone(),
            },
        )
        .with_tls(tls)
        .with_resource(account.resource.clone().unwrap_or_else(generate_resource));
        client.ping_interval = Some(account.ping_interval);
        let mut connect = ConnectOptions::new(account.server.host.clone(), account.server.port);
        connect.tls_server_name = domain.to_owned();
        connect.dangerous_accept_invalid_certs =
            account.allow_non_secure || config.tls.dangerous_always_trust;

        let (state_tx, state_rx) = watch::channel(BreweryState::Connecting);
        Ok((
            Self {
                id: account.id.clone(),
                jid: account.jid.clone(),
                room: account.brewery_room.clone(),
                connect,
                client,
                stats,
                state: state_tx,
                cancel,
                allowed_jid: config.jigasi.allowed_jid.clone(),
                dials,
                muc_join_timeout: config.jigasi.muc_join_timeout,
            },
            state_rx,
        ))
    }

    pub(crate) async fn run(mut self) {
        let mut failures: u32 = 0;
        loop {
            self.state.send_replace(BreweryState::Connecting);
            let connected = tokio::select! {
                () = self.cancel.cancelled() => return,
                connected = connect_client(self.connect.clone(), self.client.clone()) => connected,
            };
            let reason = match connected {
                Ok((handle, events)) => match self.serve(handle, events).await {
                    Served::Shutdown => return,
                    Served::Lost { reason, was_joined } => {
                        if was_joined {
                            failures = 0;
                        }
                        reason
                    }
                },
                Err(error) => error.to_string(),
            };
            failures = failures.saturating_add(1);
            let delay = backoff(failures);
            warn!(
                account = %self.id,
                jid = %Pii(&self.jid),
                %reason,
                retry_in = ?delay,
                "brewery connection lost"
            );
            self.state
                .send_replace(BreweryState::Disconnected { reason });
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Runs one connected session until it is lost or we are asked to stop.
    async fn serve(&mut self, handle: XmppHandle, mut events: XmppEvents) -> Served {
        let nick = handle
            .jid()
            .resource()
            .map(|r| r.as_str().to_owned())
            .or_else(|| self.client.resource.clone())
            .unwrap_or_else(generate_resource);
        let stats = self.stats.borrow_and_update().clone();
        let mut member = match BreweryMember::new(&self.room, &nick, stats, DiscoInfo::jigasi()) {
            Ok(member) => member,
            Err(error) => {
                handle.close().await;
                return Served::Lost {
                    reason: error.to_string(),
                    was_joined: false,
                };
            }
        };
        let mut was_joined = false;
        let mut rejoin_at: Option<tokio::time::Instant> = None;
        send_all(&handle, member.join()).await;
        loop {
            let rejoin = async {
                match rejoin_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.cancel.cancelled() => {
                    self.leave(&handle, &mut member, events).await;
                    return Served::Shutdown;
                }
                changed = self.stats.changed() => {
                    let stats = self.stats.borrow().clone();
                    if changed.is_ok() && let Some(presence) = member.set_stats(stats) {
                        send_all(&handle, vec![presence]).await;
                    }
                }
                () = rejoin => {
                    rejoin_at = None;
                    send_all(&handle, member.join()).await;
                }
                incoming = events.next() => {
                    let stanza = match incoming {
                        Some(Incoming::Stanza(stanza)) => stanza,
                        Some(Incoming::Closed(reason)) => {
                            return Served::Lost { reason: reason.to_string(), was_joined };
                        }
                        None => {
                            return Served::Lost { reason: "connection task ended".into(), was_joined };
                        }
                    };
                    let handled = member.handle_stanza(&stanza);
                    send_all(&handle, handled.replies).await;
                    match handled.event {
                        None => {}
                        Some(BreweryEvent::Joined) => {
                            was_joined = true;
                            info!(account = %self.id, room = %Pii(&self.room), %nick, "joined the brewery");
                            self.state.send_replace(BreweryState::Joined);
                        }
                        Some(BreweryEvent::JoinRefused(error)) => {
                            warn!(account = %self.id, room = %Pii(&self.room), condition = %error.condition, "brewery join refused");
                            self.state.send_replace(BreweryState::Refused { condition: error.condition });
                            rejoin_at = Some(tokio::time::Instant::now() + REJOIN_DELAY);
                        }
                        Some(BreweryEvent::Removed) => {
                            warn!(account = %self.id, "removed from the brewery; joining again");
                            self.state.send_replace(BreweryState::Connecting);
                            rejoin_at = Some(tokio::time::Instant::now() + REJOIN_DELAY);
                        }
                        Some(BreweryEvent::RayoRequest(request)) => {
                            self.on_dial(&handle, request).await;
                        }
                    }
                }
            }
        }
    }

    /// A Rayo `dial` from Jicofo: checked here, started by the runtime, answered with the `<ref>`
    /// once the call's participant is in the room (or an error after `MUC_JOIN_TIMEOUT`).
    async fn on_dial(&self, handle: &XmppHandle, iq: Element) {
        let request = match accept_dial(&iq, self.allowed_jid.as_deref()) {
            Ok(request) => request,
            Err(DialRefusal::Error { reply, condition }) => {
                warn!(account = %self.id, condition, "dial request refused");
                send_all(handle, vec![*reply]).await;
                return;
            }
            Err(DialRefusal::NotAcceptable { reply }) => {
                send_all(handle, vec![*reply]).await;
                return;
            }
        };
        let (reply, joined) = oneshot::channel();
        let sent = self.dials.send(DialMessage { request, reply }).await;
        if sent.is_err() {
            send_all(handle, vec![iq_error(&iq, "cancel", "service-unavailable")]).await;
            return;
        }
        let handle = handle.clone();
        let timeout = self.muc_join_timeout;
        tokio::spawn(async move {
            let answer = match tokio::time::timeout(timeout, joined).await {
                Ok(Ok(Ok(occupant))) => dial_result(&iq, &occupant),
                Ok(Ok(Err(reason))) => {
                    warn!(%reason, "dial-out failed before joining");
                    dial_failed(&iq)
                }
                Ok(Err(_)) | Err(_) => dial_failed(&iq),
            };
            let _ = handle.send(answer).await;
        });
    }

    /// Publishes the final stats (graceful shutdown), leaves the room and closes the stream.
    async fn leave(
        &mut self,
        handle: &XmppHandle,
        member: &mut BreweryMember,
        mut events: XmppEvents,
    ) {
        let mut stanzas = Vec::new();
        let stats = self.stats.borrow().clone();
        if let Some(presence) = member.set_stats(stats) {
            stanzas.push(presence);
        }
        stanzas.push(member.leave());
        send_all(handle, stanzas).await;
        handle.close().await;
        let closed = async {
            while let Some(incoming) = events.next().await {
                if matches!(incoming, Incoming::Closed(_)) {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), closed).await;
        info!(account = %self.id, "left the brewery");
    }
}

async fn send_all(handle: &XmppHandle, stanzas: Vec<Element>) {
    for stanza in stanzas {
        if let Err(error) = handle.send(stanza).await {
            // The connection is going away; its Closed event follows on the event stream.
            warn!(%error, "could not send to the brewery connection");
            return;
        }
    }
}

/// 1 s doubling per consecutive failure, at most 30 s.
fn backoff(failures: u32) -> Duration {
    MIN_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(8))
        .min(MAX_BACKOFF)
}

/// A resource like Jigasi's auto-generated one: `jitsi-` and six random base32 characters.
fn generate_resource() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::rng();
    let suffix: String = (0..6)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("jitsi-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let delays: Vec<u64> = (1..=7).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn generated_resources_look_like_jigasis() {
        let resource = generate_resource();
        assert_eq!(resource.len(), "jitsi-".len() + 6);
        assert!(resource.starts_with("jitsi-"));
        assert!(
            resource[6..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        );
        assert_ne!(generate_resource(), generate_resource());
    }
}
