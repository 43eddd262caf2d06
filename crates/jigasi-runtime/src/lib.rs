//! Tokio composition of jigasi-rs: starts the SIP endpoint and one brewery task per brewery
//! account, reports readiness, and shuts everything down in order.
//!
//! Nothing here makes a protocol decision: the brewery task moves stanzas between an XMPP
//! connection (`jigasi-xmpp-io`) and the pure [`jigasi_xmpp::brewery_member::BreweryMember`]; the
//! SIP endpoint runs the pure registration policy inside `jigasi-sip`. Every task owns its own
//! state and publishes what others need through `watch` channels ([`GatewayStatus`]).

mod accounts;
mod brewery;
mod call_task;
mod error;
mod health_check;
mod room_task;
mod sip;
mod srtp;

use std::time::Duration;

use jigasi_api::{ApiState, DebugCall, DebugSnapshot, Health, MucCommand, StatsSnapshot};
use std::sync::Arc;

use std::collections::BTreeMap;

use brewery::DialMessage;
use call_task::{CallContext, RegistryEvent};
use jigasi_config::Config;
use jigasi_sip::{RegistrationState, SipEndpoint};
use jigasi_types::CallId;
use jigasi_xmpp::brewery::Stats;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use brewery::BreweryState;
pub use error::RuntimeError;
pub use health_check::SipCheck;

/// The version jigasi-rs reports (brewery stats, `--version`, REST).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long shutdown waits for the registrar to confirm the un-REGISTER.
const UNREGISTER_DEADLINE: Duration = Duration::from_secs(3);
/// How long shutdown waits for calls to hang up.
const CALLS_END_DEADLINE: Duration = Duration::from_secs(5);
/// How long shutdown waits for brewery tasks to leave their rooms.
const BREWERY_LEAVE_DEADLINE: Duration = Duration::from_secs(3);

/// A snapshot of what the gateway's parts report; the basis of health checks.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayStatus {
    /// The SIP registration; `None` when SIP is disabled.
    pub sip: Option<RegistrationState>,
    /// One entry per brewery account, in configuration order: `(account id, state)`.
    pub breweries: Vec<(String, BreweryState)>,
    /// The periodic SIP test call's last result; `None` without `HEALTH_CHECK_SIP_URI`.
    pub sip_health_check: Option<SipCheck>,
}

impl GatewayStatus {
    /// Ready = SIP registered (or registrar-less, or disabled) and every brewery joined.
    pub fn is_ready(&self) -> bool {
        self.sip
            .as_ref()
            .is_none_or(RegistrationState::is_registered)
            && self
                .breweries
                .iter()
                .all(|(_, state)| *state == BreweryState::Joined)
    }
}

/// Runs the gateway until `shutdown` is cancelled, then leaves the breweries, un-REGISTERs and
/// returns.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), RuntimeError> {
    let mut sip = match &config.sip {
        Some(account) => Some(SipEndpoint::start(sip::options(&config, account)).await?),
        None => None,
    };

    let (stats_tx, stats_rx) = watch::channel(initial_stats(&config));
    // Not a child of `shutdown`: the breweries must publish `graceful_shutdown` before leaving.
    let (dials_tx, mut dials_rx) = mpsc::channel::<DialMessage>(64);
    let (mut breweries, brewery_states) = accounts::BreweryAccounts::start(
        Arc::new(config.clone()),
        stats_rx.clone(),
        dials_tx.clone(),
        CancellationToken::new(),
    )?;
    let (muc_tx, mut muc_rx) = mpsc::channel::<MucCommand>(8);

    // Calls: one task each; a registry task keeps the statistics.
    let calls_cancel = CancellationToken::new();
    let (registry_tx, registry_rx) = mpsc::channel(256);
    let context = Arc::new(CallContext {
        config: Arc::new(config.clone()),
        registry: registry_tx,
        rooms: room_task::RoomDirectory::default(),
    });
    let (stats_snapshot_tx, stats_snapshot_rx) = watch::channel(StatsSnapshot::default());
    let stats_snapshot_tx = Arc::new(stats_snapshot_tx);
    let (debug_tx, debug_rx) = watch::channel(DebugSnapshot::default());
    tokio::spawn(run_registry(
        registry_rx,
        stats_tx.clone(),
        stats_snapshot_tx.clone(),
        debug_tx,
        config.jigasi.conferences_threshold,
    ));
    let mut call_tasks = JoinSet::new();
    let mut incoming = sip.as_mut().and_then(SipEndpoint::incoming_calls);
    let dialer = sip.as_ref().map(SipEndpoint::dialer);
    // Dial-outs in progress by (room, destination): a retried Rayo dial for the same call is
    // answered with the same `<ref>` instead of a second call (Jigasi can double-dial).
    let mut dial_outs: BTreeMap<(String, String), watch::Receiver<Option<String>>> =
        BTreeMap::new();

    let sip_check = match (&config.jigasi.health_check.sip_uri, &sip) {
        (Some(uri), Some(endpoint)) if !uri.trim().is_empty() => {
            let (tx, rx) = watch::channel(SipCheck::Pending);
            tokio::spawn(health_check::run(
                endpoint.dialer(),
                endpoint.registration(),
                context.config.clone(),
                uri.trim().to_owned(),
                tx,
                shutdown.clone(),
            ));
            Some(rx)
        }
        _ => None,
    };
    let status_rx = watch_status(sip.as_ref(), brewery_states, sip_check, shutdown.clone());
    let health = watch_readiness(status_rx, shutdown.clone());

    // `POST /about/shutdown`: with no calls to wait for yet, graceful means "stop now".
    let graceful = CancellationToken::new();
    let api_stop = CancellationToken::new();
    let api = if config.rest.enabled {
        let state = ApiState {
            health,
            stats: stats_snapshot_rx,
            debug: debug_rx,
            graceful_shutdown: config.rest.enable_shutdown.then(|| graceful.clone()),
            call_control: Some(muc_tx.clone()),
            version: VERSION.to_owned(),
        };
        Some(jigasi_api::serve(config.rest.bind, state, api_stop.clone()).await?)
    } else {
        None
    };

    let mut next_call = 0u64;
    loop {
        let call = async {
            match incoming.as_mut() {
                Some(calls) => calls.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = graceful.cancelled() => break,
            call = call => match call {
                Some(call) => {
                    next_call += 1;
                    let id = CallId::new(next_call);
                    call_tasks.spawn(call_task::run_dial_in(
                        id,
                        call,
                        context.clone(),
                        calls_cancel.child_token(),
                    ));
                }
                None => incoming = None,
            },
            Some(dial) = dials_rx.recv() => {
                // Forget dial-outs whose call is over.
                dial_outs.retain(|_, joined| joined.has_changed().is_ok());
                let DialMessage { request, reply } = dial;
                let key = (request.room.to_ascii_lowercase(), request.destination.clone());
                let joined = match (dial_outs.get(&key), &dialer) {
                    (Some(joined), _) => joined.clone(),
                    (None, Some(dialer)) => {
                        next_call += 1;
                        let id = CallId::new(next_call);
                        let (joined_tx, joined_rx) = watch::channel(None);
                        call_tasks.spawn(call_task::run_dial_out(
                            id,
                            call_task::DialOut {
                                destination: request.destination,
                                room: request.room,
                                password: request.password,
                                headers: request.headers,
                            },
                            dialer.clone(),
                            context.clone(),
                            calls_cancel.child_token(),
                            joined_tx,
                        ));
                        dial_outs.insert(key, joined_rx.clone());
                        joined_rx
                    }
                    (None, None) => {
                        let _ = reply.send(Err("SIP is disabled".into()));
                        continue;
                    }
                };
                tokio::spawn(answer_when_joined(joined, reply));
            }
            Some(command) = muc_rx.recv() => breweries.handle(command).await,
            Some(_) = call_tasks.join_next(), if !call_tasks.is_empty() => {}
        }
    }
    // Graceful shutdown (jigasi-behaviour.md §1.16): Jicofo must stop selecting us at once, new
    // calls are refused with 503, running calls may finish until the deadline.
    stats_tx.send_modify(|stats| stats.graceful_shutdown = true);
    stats_snapshot_tx.send_modify(|stats| stats.graceful_shutdown = true);
    if let Some(endpoint) = sip.as_ref() {
        endpoint.drain().await;
    }
    info!(
        tasks = call_tasks.len(),
        "graceful shutdown: refusing new calls, waiting for running calls (one task per room)"
    );
    let deadline = config
        .jigasi
        .graceful_shutdown_timeout
        .map(|timeout| tokio::time::Instant::now() + timeout);
    while !call_tasks.is_empty() {
        let deadline_passed = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let call = async {
            match incoming.as_mut() {
                Some(calls) => calls.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = deadline_passed => {
                warn!(tasks = call_tasks.len(), "graceful shutdown deadline reached: hanging up");
                break;
            }
            Some(command) = muc_rx.recv() => breweries.handle(command).await,
            Some(_) = call_tasks.join_next() => {}
            call = call => match call {
                Some(call) => {
                    let reason = jigasi_sip::HangupReason::Sip {
                        cause: 503,
                        text: Some("Gateway shutting down".into()),
                    };
                    let _ = call.control.reject(503, reason).await;
                }
                None => incoming = None,
            },
            Some(dial) = dials_rx.recv() => {
                let _ = dial.reply.send(Err("the gateway is shutting down".into()));
            }
        }
    }
    drop(incoming);
    calls_cancel.cancel();
    let calls_done = async { while call_tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(CALLS_END_DEADLINE, calls_done)
        .await
        .is_err()
    {
        warn!("calls did not end in time");
    }
    drop(muc_rx);
    if !breweries.shutdown(BREWERY_LEAVE_DEADLINE).await {
        warn!("brewery connections did not close in time");
    }
    if let Some(sip) = sip {
        sip.shutdown(UNREGISTER_DEADLINE).await;
    }
    api_stop.cancel();
    if let Some(api) = api {
        let _ = tokio::time::timeout(Duration::from_secs(2), api.task).await;
    }
    info!("stopped");
    Ok(())
}

/// Sends the occupant JID to a dial requester once the call joined, or an error if the call
/// ended first.
async fn answer_when_joined(
    mut joined: watch::Receiver<Option<String>>,
    reply: tokio::sync::oneshot::Sender<Result<String, String>>,
) {
    let result = joined
        .wait_for(Option::is_some)
        .await
        .map(|occupant| occupant.clone().unwrap_or_default())
        .map_err(|_| "the call ended before joining".to_owned());
    let _ = reply.send(result);
}

/// Keeps the statistics from the calls' reports: `conferences` (calls in a room),
/// `participants` (Σ room members − 1 over them, what Jicofo balances dial-outs on), and
/// Jigasi's `stress_level` and totals, for the brewery presence and `/about/stats`.
async fn run_registry(
    mut events: mpsc::Receiver<RegistryEvent>,
    brewery: watch::Sender<Stats>,
    rest: Arc<watch::Sender<StatsSnapshot>>,
    debug: watch::Sender<DebugSnapshot>,
    threshold: u32,
) {
    let mut joined = std::collections::BTreeSet::new();
    let mut calls: BTreeMap<CallId, DebugCall> = BTreeMap::new();
    let mut occupants = BTreeMap::new();
    let mut dropped_media = std::collections::BTreeSet::new();
    let mut started_at: BTreeMap<CallId, tokio::time::Instant> = BTreeMap::new();
    while let Some(event) = events.recv().await {
        match event {
            RegistryEvent::Joined(id) => {
                joined.insert(id);
            }
            RegistryEvent::Occupants(id, others) => {
                occupants.insert(id, others);
            }
            RegistryEvent::Quality(id, quality) => {
                // Only while the call runs: a late report must not bring an ended call back.
                if calls.contains_key(&id) {
                    rest.send_modify(|s| {
                        s.call_quality.insert(id.get(), quality);
                    });
                }
            }
            RegistryEvent::MediaDropped(id) => {
                let first = dropped_media.insert(id);
                rest.send_modify(|s| {
                    s.total_count_dropped_media += 1;
                    s.total_calls_with_dropped_media += u64::from(first);
                });
            }
            RegistryEvent::Started {
                id,
                direction,
                display_name,
                remote,
            } => {
                started_at.insert(id, tokio::time::Instant::now());
                calls.insert(
                    id,
                    DebugCall {
                        call_id: id.get(),
                        direction,
                        display_name,
                        remote,
                        room: String::new(),
                        nick: None,
                        sip_state: String::new(),
                        started: jigasi_api::utc_timestamp(std::time::SystemTime::now()),
                        codec: None,
                        media_phones: 0,
                    },
                );
                publish_calls(&debug, &calls);
            }
            RegistryEvent::Progress {
                id,
                room,
                nick,
                sip_state,
                codec,
                media_phones,
            } => {
                if let Some(call) = calls.get_mut(&id) {
                    call.room = room;
                    call.nick = nick;
                    sip_state.clone_into(&mut call.sip_state);
                    call.codec = codec;
                    call.media_phones = media_phones;
                    publish_calls(&debug, &calls);
                }
            }
            RegistryEvent::Ended(id) => {
                rest.send_modify(|s| {
                    s.call_quality.remove(&id.get());
                });
                if calls.remove(&id).is_some() {
                    publish_calls(&debug, &calls);
                }
                dropped_media.remove(&id);
                let others = occupants.remove(&id).unwrap_or(0);
                let seconds = started_at
                    .remove(&id)
                    .map_or(0, |at| at.elapsed().as_secs());
                if joined.remove(&id) {
                    // Jigasi's onSessionRemoved: one conference, its members but the focus
                    // (the gateway counted), and the call's length.
                    rest.send_modify(|s| {
                        s.total_conferences_completed += 1;
                        s.total_participants += u64::try_from(others).unwrap_or(u64::MAX);
                        s.total_conference_seconds += seconds;
                    });
                }
            }
        }
        let conferences = u32::try_from(joined.len()).unwrap_or(u32::MAX);
        let stress = f64::from(conferences) / f64::from(threshold.max(1));
        let (participants, sizes) = room_load(&joined, &occupants);
        brewery.send_if_modified(|stats| {
            let changed = stats.conferences != conferences || stats.participants != participants;
            stats.conferences = conferences;
            stats.participants = participants;
            stats.stress_level = stress;
            changed
        });
        rest.send_modify(|s| {
            s.conferences = u64::from(conferences);
            s.participants = u64::from(participants);
            s.conference_sizes.clone_from(&sizes);
            s.stress_level = stress;
        });
    }
}

/// Jigasi's view of the joined calls' rooms (`Statistics.updateMetrics`): `participants` =
/// Σ (room members − 1), the focus not counted and the gateway counted, which Jicofo balances
/// dial-outs on; and `conference_sizes`, the histogram of the same numbers (the last bucket is
/// "21 or more").
fn room_load(
    joined: &std::collections::BTreeSet<CallId>,
    occupants: &BTreeMap<CallId, usize>,
) -> (u32, Vec<u64>) {
    let mut sizes = vec![0; CONFERENCE_SIZE_BUCKETS];
    let mut participants = 0usize;
    for id in joined {
        // Other occupants, the focus included: the same number as members − 1.
        let others = occupants.get(id).copied().unwrap_or(0);
        participants = participants.saturating_add(others);
        if let Some(bucket) = sizes.get_mut(others.min(CONFERENCE_SIZE_BUCKETS - 1)) {
            *bucket += 1;
        }
    }
    (u32::try_from(participants).unwrap_or(u32::MAX), sizes)
}

/// Jigasi's `conference_sizes` buckets.
const CONFERENCE_SIZE_BUCKETS: usize = 22;

/// Publishes the running calls for `/debug`, oldest first.
fn publish_calls(debug: &watch::Sender<DebugSnapshot>, calls: &BTreeMap<CallId, DebugCall>) {
    debug.send_replace(DebugSnapshot {
        calls: calls.values().cloned().collect(),
    });
}

/// The statistics published before any call exists.
fn initial_stats(config: &Config) -> Stats {
    Stats {
        conferences: 0,
        participants: 0,
        graceful_shutdown: false,
        stress_level: 0.0,
        region: config.jigasi.local_region.clone(),
        version: VERSION.to_owned(),
        supports_transcription: false,
        supports_sip: config.sip.is_some(),
    }
}

/// Combines the parts' state channels into one [`GatewayStatus`] channel. One small task per
/// part forwards "changed" into a single inbox; the combiner re-reads every part on each change.
fn watch_status(
    sip: Option<&SipEndpoint>,
    breweries: watch::Receiver<accounts::BreweryStates>,
    sip_check: Option<watch::Receiver<SipCheck>>,
    shutdown: CancellationToken,
) -> watch::Receiver<GatewayStatus> {
    let (changed_tx, mut changed_rx) = tokio::sync::mpsc::channel::<()>(1);
    let sip_rx = sip.map(SipEndpoint::registration);
    if let Some(rx) = &sip_rx {
        tokio::spawn(forward_changes(rx.clone(), changed_tx.clone()));
    }
    // The set of accounts changes at run time (REST): follow the set, and each account in it.
    tokio::spawn(forward_changes(breweries.clone(), changed_tx.clone()));
    if let Some(rx) = &sip_check {
        tokio::spawn(forward_changes(rx.clone(), changed_tx.clone()));
    }
    let mut followed: Vec<watch::Receiver<BreweryState>> = Vec::new();
    let mut snapshot = move || {
        let set = breweries.borrow().clone();
        followed.retain(|f| set.iter().any(|(_, rx)| rx.same_channel(f)));
        for (_, rx) in &set {
            if !followed.iter().any(|f| f.same_channel(rx)) {
                tokio::spawn(forward_changes(rx.clone(), changed_tx.clone()));
                followed.push(rx.clone());
            }
        }
        GatewayStatus {
            sip_health_check: sip_check.as_ref().map(|rx| rx.borrow().clone()),
            sip: sip_rx.as_ref().map(|rx| *rx.borrow()),
            breweries: set
                .iter()
                .map(|(id, rx)| (id.clone(), rx.borrow().clone()))
                .collect(),
        }
    };
    let (tx, rx) = watch::channel(snapshot());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = changed_rx.recv() => if changed.is_none() { return },
            }
            tx.send_replace(snapshot());
        }
    });
    rx
}

/// Sends `()` into `inbox` whenever `rx` changes, until either side is gone.
async fn forward_changes<T>(mut rx: watch::Receiver<T>, inbox: tokio::sync::mpsc::Sender<()>) {
    while rx.changed().await.is_ok() {
        // A full inbox already holds a pending "changed"; that is enough.
        if let Err(tokio::sync::mpsc::error::TrySendError::Closed(())) = inbox.try_send(()) {
            return;
        }
    }
}

/// Follows the gateway status: publishes what `/about/health` reports (see [`health_of`]) and
/// logs "gateway ready" / "gateway not ready", in that order, so that once the log says ready
/// the health endpoint says so too.
fn watch_readiness(
    mut status: watch::Receiver<GatewayStatus>,
    shutdown: CancellationToken,
) -> watch::Receiver<Health> {
    let (tx, rx) = watch::channel(health_of(&status.borrow_and_update()));
    tokio::spawn(async move {
        let mut was_ready = false;
        loop {
            let current = status.borrow_and_update().clone();
            tx.send_replace(health_of(&current));
            let ready = current.is_ready();
            if ready && !was_ready {
                info!(
                    sip = ?current.sip,
                    breweries = current.breweries.len(),
                    "gateway ready"
                );
            } else if !ready && was_ready {
                warn!(status = ?current, "gateway not ready");
            }
            was_ready = ready;
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = status.changed() => if changed.is_err() { return },
            }
        }
    });
    rx
}

/// What `/about/health` reports for a gateway status: Jigasi's 503 while SIP is not
/// registered, and (unlike Jigasi, jigasi#331) a 500 with a reason while a brewery is not joined.
fn health_of(status: &GatewayStatus) -> Health {
    if let Some(sip) = &status.sip
        && !sip.is_registered()
    {
        return Health::NotReady;
    }
    let mut down: Vec<String> = status
        .breweries
        .iter()
        .filter(|(_, state)| *state != BreweryState::Joined)
        .map(|(id, state)| format!("brewery {id}: {state:?}"))
        .collect();
    if let Some(SipCheck::Failed(reason)) = &status.sip_health_check {
        down.push(format!("SIP health check: {reason}"));
    }
    if down.is_empty() {
        Health::Healthy
    } else {
        Health::Unhealthy {
            reason: down.join("; "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_load_counts_members_but_the_focus_over_joined_calls() {
        let (a, b, c) = (CallId::new(1), CallId::new(2), CallId::new(3));
        let joined = [a, b, c].into_iter().collect();
        // a: focus + 2 web participants; b: focus + 30 others; c: joined, not reported yet;
        // a fourth call not joined (still connecting) does not count.
        let occupants = [(a, 3), (b, 31), (CallId::new(4), 5)].into_iter().collect();
        let (participants, sizes) = room_load(&joined, &occupants);
        assert_eq!(participants, 3 + 31);
        assert_eq!(sizes.len(), 22);
        assert_eq!((sizes[0], sizes[3], sizes[21]), (1, 1, 1));
        assert_eq!(sizes.iter().sum::<u64>(), 3);
        assert_eq!(
            room_load(&std::collections::BTreeSet::new(), &occupants),
            (0, vec![0; 22])
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ended_calls_add_jigasis_conference_totals() {
        let (events, rx) = mpsc::channel(16);
        let (brewery, _) = watch::channel(Stats {
            conferences: 0,
            participants: 0,
            graceful_shutdown: false,
            stress_level: 0.0,
            region: None,
            version: VERSION.to_owned(),
            supports_transcription: false,
            supports_sip: true,
        });
        let (rest, mut snapshots) = watch::channel(StatsSnapshot::default());
        let (debug, _) = watch::channel(DebugSnapshot::default());
        tokio::spawn(run_registry(rx, brewery, Arc::new(rest), debug, 10));
        let started = |id| RegistryEvent::Started {
            id,
            direction: jigasi_api::CallDirection::In,
            display_name: "caller".into(),
            remote: "sip:caller@example.com".into(),
        };
        let (joined, never_joined) = (CallId::new(1), CallId::new(2));
        for event in [
            started(joined),
            started(never_joined),
            RegistryEvent::Joined(joined),
            RegistryEvent::Occupants(joined, 3),
        ] {
            events.send(event).await.expect("registry runs");
        }
        tokio::time::sleep(Duration::from_secs(65)).await;
        events
            .send(RegistryEvent::Ended(joined))
            .await
            .expect("registry runs");
        events
            .send(RegistryEvent::Ended(never_joined))
            .await
            .expect("registry runs");
        let totals = snapshots
            .wait_for(|s| s.total_conferences_completed > 0)
            .await
            .expect("registry runs")
            .clone();
        // Focus + two web participants besides us; 65 s; the call that never joined a room
        // adds nothing (as it adds no completed conference).
        assert_eq!(totals.total_conferences_completed, 1);
        assert_eq!(totals.total_participants, 3);
        assert_eq!(totals.total_conference_seconds, 65);
    }

    fn status(sip: Option<RegistrationState>, breweries: &[BreweryState]) -> GatewayStatus {
        GatewayStatus {
            sip,
            breweries: breweries
                .iter()
                .enumerate()
                .map(|(i, state)| (format!("acc-{i}"), state.clone()))
                .collect(),
            sip_health_check: None,
        }
    }

    #[test]
    fn a_failed_sip_health_check_makes_the_gateway_unhealthy() {
        let mut current = status(Some(RegistrationState::NotRequired), &[]);
        current.sip_health_check = Some(SipCheck::Pending);
        assert_eq!(health_of(&current), Health::Healthy);
        current.sip_health_check = Some(SipCheck::Passed);
        assert_eq!(health_of(&current), Health::Healthy);
        current.sip_health_check = Some(SipCheck::Failed("sip:x answered 404 Not Found".into()));
        assert_eq!(
            health_of(&current),
            Health::Unhealthy {
                reason: "SIP health check: sip:x answered 404 Not Found".into()
            }
        );
    }

    #[test]
    fn health_needs_sip_registered_and_every_brewery_joined() {
        let registered = Some(RegistrationState::Registered {
            expires: Duration::from_secs(600),
        });
        let joined = BreweryState::Joined;
        let lost = BreweryState::Disconnected {
            reason: "connection refused".into(),
        };

        let ok = status(registered, &[joined.clone(), joined.clone()]);
        assert_eq!(health_of(&ok), Health::Healthy);
        assert!(ok.is_ready());

        let unregistered = status(
            Some(RegistrationState::Registering),
            std::slice::from_ref(&joined),
        );
        assert_eq!(health_of(&unregistered), Health::NotReady);
        assert!(!unregistered.is_ready());

        let rejected = status(Some(RegistrationState::Rejected { status: 403 }), &[]);
        assert_eq!(health_of(&rejected), Health::NotReady);

        let brewery_down = status(registered, &[joined, lost]);
        assert!(!brewery_down.is_ready());
        match health_of(&brewery_down) {
            Health::Unhealthy { reason } => {
                assert!(
                    reason.contains("acc-1") && reason.contains("connection refused"),
                    "{reason}"
                );
            }
            other @ (Health::Healthy | Health::NotReady) => {
                panic!("expected unhealthy, got {other:?}")
            }
        }

        // SIP disabled, registrar-less, or no brewery configured: nothing to wait for.
        assert_eq!(health_of(&status(None, &[])), Health::Healthy);
        assert_eq!(
            health_of(&status(Some(RegistrationState::NotRequired), &[])),
            Health::Healthy
        );
    }
}
