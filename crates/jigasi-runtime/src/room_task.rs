//! One tokio task per conference room that has calls on this gateway. It owns the room's pure
//! [`Room`] (the calls and the audio engine they share: each conference stream decoded once
//! per room, the room's phones mixed to each other directly) and the I/O of every call in it:
//! sockets, per-call XMPP connections, SIP dialogs. Like a call task before it, it only moves
//! bytes, messages and deadlines; with one call per room (the common case) it is exactly that.
//!
//! A call is prepared in its own task (room from the headers or the Rayo dial, sockets bound,
//! XMPP connected) and then [`enter`]s its room: it is handed to the room's task if one runs,
//! or its own task becomes the room's task. A room task ends when its last call ended and no
//! call is waiting to join; a call that comes too late for a closing room starts a new one.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::Poll;

use jigasi_call::{Call, CallOutput, Room};
use jigasi_types::{CallId, Pii};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::call_task::{CallContext, CallIo, MAX_DATAGRAM, QUALITY_INTERVAL};

/// The running room tasks, by room (lower-cased JID), each reachable through its join queue.
/// A routing table only: no protocol state is behind the lock, and it is never held across an
/// `.await`.
pub(crate) type RoomDirectory = std::sync::Mutex<HashMap<String, mpsc::Sender<Box<Joiner>>>>;

/// A prepared call on its way into its room.
pub(crate) struct Joiner {
    io: CallIo,
    call: Call,
}

/// Calls that may wait to join one room task at a time (more start a second task).
const JOIN_QUEUE: usize = 16;

/// Runs `call` in its room: hands it to the room's task if one runs, else runs the room's task
/// here until the room is empty.
pub(crate) async fn enter(
    io: CallIo,
    call: Call,
    context: Arc<CallContext>,
    cancel: CancellationToken,
) {
    let key = io.room_key.clone();
    // Boxed: a tokio channel allocates its first block of 32 slots with the channel, and a
    // prepared call is about 3 KB (that was 96 KB for every room).
    let mut joiner = Box::new(Joiner { io, call });
    let running = lock(&context.rooms).get(&key).cloned();
    if let Some(room) = running {
        match room.try_send(joiner) {
            Ok(()) => {
                info!("joining the room's task: one audio engine for the room's phones");
                return;
            }
            Err(TrySendError::Full(back) | TrySendError::Closed(back)) => joiner = back,
        }
    }
    let (tx, rx) = mpsc::channel(JOIN_QUEUE);
    lock(&context.rooms).insert(key.clone(), tx.clone());
    let span = info_span!(parent: None, "room", room = %Pii(&key));
    RoomRunner {
        room: Room::new(),
        ios: Vec::new(),
        joins: rx,
        cancelled: false,
        reported_phones: 0,
    }
    .run(joiner, cancel)
    .instrument(span)
    .await;
    let mut rooms = lock(&context.rooms);
    if rooms.get(&key).is_some_and(|t| t.same_channel(&tx)) {
        rooms.remove(&key);
    }
}

fn lock(
    rooms: &RoomDirectory,
) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<Box<Joiner>>>> {
    // A panic elsewhere cannot leave the map half-changed (single inserts and removes).
    match rooms.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The state of one room task.
struct RoomRunner {
    room: Room,
    /// The I/O of each call of `room`.
    ios: Vec<CallIo>,
    joins: mpsc::Receiver<Box<Joiner>>,
    /// The gateway's graceful deadline passed: every call was told to hang up.
    cancelled: bool,
    /// The phones in the engine as last reported to `/debug`.
    reported_phones: usize,
}

impl RoomRunner {
    async fn run(mut self, first: Box<Joiner>, cancel: CancellationToken) {
        self.add(first).await;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut quality = tokio::time::interval(QUALITY_INTERVAL);
        quality.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Rotates which call and which source is polled first, so none starves the others.
        let mut rotation = 0usize;
        // One timer and one cancellation waiter for the task's life, re-armed only when the
        // room's deadline moves: most inputs (datagrams) leave the next tick where it was, and
        // a timer or waiter made afresh per input would cost a registration each time.
        let cancelled = cancel.cancelled();
        tokio::pin!(cancelled);
        let sleep = tokio::time::sleep_until(Instant::now());
        tokio::pin!(sleep);
        let mut armed: Option<std::time::Instant> = None;
        loop {
            self.drain().await;
            if self.ios.is_empty() {
                // Last call gone: take no more, but run whoever is already waiting.
                self.joins.close();
                match self.joins.try_recv() {
                    Ok(joiner) => {
                        self.add(joiner).await;
                        continue;
                    }
                    Err(_) => break,
                }
            }
            for io in &mut self.ios {
                io.start_reconnect();
            }
            let deadline = self.room.poll_timeout();
            if deadline != armed {
                if let Some(at) = deadline {
                    sleep.as_mut().reset(Instant::from_std(at));
                }
                armed = deadline;
            }
            let ios = &mut self.ios;
            let read = &mut buf;
            let input = std::future::poll_fn(|cx| {
                let n = ios.len();
                for k in 0..n {
                    let index = (rotation + k) % n;
                    if let Poll::Ready(input) = ios[index].poll_input(cx, rotation, read) {
                        return Poll::Ready((index, input));
                    }
                }
                Poll::Pending
            });
            tokio::select! {
                () = &mut cancelled, if !self.cancelled => {
                    self.cancelled = true;
                    self.hang_up_all();
                }
                // `enter` keeps a sender while this task runs, so the queue stays open.
                Some(joiner) = self.joins.recv() => self.add(joiner).await,
                (index, input) = input => {
                    rotation = rotation.wrapping_add(1);
                    if let Some(io) = self.ios.get_mut(index) {
                        let span = io.span.clone();
                        io.on_input(&mut self.room, input, &buf).instrument(span).await;
                    }
                }
                _ = quality.tick() => {
                    let reports: Vec<_> = self.ios.iter().map(|io| io.quality(&self.room)).collect();
                    for (io, report) in self.ios.iter().zip(reports) {
                        io.report(report).await;
                    }
                }
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    self.room.handle_timeout(Instant::now().into_std());
                }
            }
        }
    }

    /// Takes a prepared call into the room and brings it online.
    async fn add(&mut self, joiner: Box<Joiner>) {
        let Joiner { io, call } = *joiner;
        let span = io.span.clone();
        let id = io.id;
        if let Err((call, error)) = self.room.add_call(call) {
            // Cannot happen with unique call ids and working codecs; never lose the call
            // silently: it ends with its own SIP rejection or BYE.
            span.in_scope(|| warn!(%error, "the call could not join its room's audio engine"));
            let mut call = *call;
            let mut io = io;
            call.hang_up(Instant::now().into_std(), "Media setup failed");
            loop {
                match call.poll_output() {
                    CallOutput::Timeout(_) | CallOutput::Idle => break,
                    output @ (CallOutput::Sip(_)
                    | CallOutput::Xmpp(_)
                    | CallOutput::Transmit { .. }
                    | CallOutput::Event(_)) => {
                        io.execute(&mut self.room, output)
                            .instrument(span.clone())
                            .await;
                    }
                }
            }
            io.finish(call).instrument(span).await;
            return;
        }
        let now = Instant::now().into_std();
        let jid = io.xmpp.jid().clone();
        self.room
            .with_call(id, |call| call.handle_xmpp_online(now, jid));
        if self.cancelled {
            self.room
                .with_call(id, |call| call.hang_up(now, "Gateway shutting down"));
        }
        let progress = io.progress(&self.room);
        io.report(progress).await;
        self.ios.push(io);
    }

    /// Executes every output of the room's calls; calls that ended leave the room.
    async fn drain(&mut self) {
        loop {
            while let Some((id, output)) = self.room.poll_output() {
                if let Some(io) = self.ios.iter_mut().find(|io| io.id == id) {
                    let span = io.span.clone();
                    io.execute(&mut self.room, output).instrument(span).await;
                }
            }
            let Some(id) = self.ended() else {
                if self.room.phones() != self.reported_phones {
                    // A call joined or left, or a dial-out's phone answered: every call of the
                    // room shares the engine, so every call's `/debug` changes.
                    self.report_progress().await;
                }
                return;
            };
            let call = self.room.remove_call(id);
            if let Some(index) = self.ios.iter().position(|io| io.id == id) {
                let io = self.ios.remove(index);
                let span = io.span.clone();
                if let Some(call) = call {
                    io.finish(call).instrument(span).await;
                }
            }
        }
    }

    /// A call of the room that is over, if any.
    fn ended(&self) -> Option<CallId> {
        self.room
            .ids()
            .find(|id| self.room.call(*id).is_some_and(Call::is_ended))
    }

    fn hang_up_all(&mut self) {
        let now = Instant::now().into_std();
        let ids: Vec<CallId> = self.room.ids().collect();
        for id in ids {
            self.room
                .with_call(id, |call| call.hang_up(now, "Gateway shutting down"));
        }
    }

    /// `/debug` of every call of the room (the number of phones sharing the engine changed).
    async fn report_progress(&mut self) {
        self.reported_phones = self.room.phones();
        let reports: Vec<_> = self.ios.iter().map(|io| io.progress(&self.room)).collect();
        for (io, report) in self.ios.iter().zip(reports) {
            io.report(report).await;
        }
    }
}
