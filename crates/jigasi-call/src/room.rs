//! The calls of one conference room on this gateway, sharing one audio engine.
//!
//! Each [`Call`] keeps its own SIP dialog, XMPP participant and bridge leg (Jicofo and the
//! bridge see one participant per phone, as with Jigasi), but the audio of the room goes through
//! one [`Conference`] engine: each remote speaker is decoded once per rate for the whole room
//! (not once per phone), every phone hears everyone but itself through the engine's N−1 mix,
//! and the phones of the room hear each other directly, without a round trip through Opus and
//! the bridge (the bridge's copy of a local phone is ignored). Each speaker is taken from one
//! call's bridge leg ([`Conference::handle_leg_packet`]); the others' copies are dropped.
//!
//! The room owns its calls and its engine. For every input it *lends* the engine to the call
//! the input is for (the call's own engine sits empty meanwhile), so a [`Call`] works the same
//! inside a room as on its own; the room runs the 20 ms tick for all of them on one grid and
//! routes the engine's events (DTMF pressed in the conference goes to every phone, DTMF
//! pressed on a phone to that phone's call).
//!
//! Drive it like a call: one input ([`Room::with_call`] wrapping a [`Call`] input, or
//! [`Room::handle_timeout`]), then drain [`Room::poll_output`] and sleep until
//! [`Room::poll_timeout`].

use std::time::Instant;

use jigasi_media::{Conference, ConferenceConfig, ConferenceError, MediaEvent, PhoneSrtpStats};
use jigasi_types::CallId;

use crate::call::{Call, CallOutput, CallQuality, next_tick};

/// One call of the room and its last deadline.
struct Member {
    call: Call,
    /// The call's deadline as of its last drained [`Call::poll_output`].
    deadline: Option<Instant>,
}

/// The calls of one room and their shared audio engine. See the module documentation.
pub struct Room {
    engine: Conference,
    members: Vec<Member>,
    /// The room's 20 ms grid, while one of its calls is answered.
    next_tick: Option<Instant>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("calls", &self.ids().collect::<Vec<_>>())
            .field("phones", &self.engine.phone_count())
            .field("next_tick", &self.next_tick)
            .finish_non_exhaustive()
    }
}

impl Default for Room {
    fn default() -> Self {
        Self::new()
    }
}

impl Room {
    /// A room without calls.
    pub fn new() -> Self {
        Self {
            engine: Conference::new(ConferenceConfig::default()),
            members: Vec::new(),
            next_tick: None,
        }
    }

    /// Takes `call` into the room: its phone (if attached yet) moves into the room's engine
    /// with all its state. A call joins its room before its first input; anything its own
    /// engine held besides the phone (speakers, events) stays behind. On failure (the same
    /// id twice, a codec that cannot be created) the call comes back as it was.
    pub fn add_call(&mut self, mut call: Call) -> Result<(), (Box<Call>, ConferenceError)> {
        let id = call.id();
        if self.members.iter().any(|m| m.call.id() == id) {
            return Err((Box::new(call), ConferenceError::AlreadyAttached));
        }
        if call.media.has_phone(id) {
            let phone = match call.media.take_phone(id) {
                Ok(phone) => phone,
                Err(error) => return Err((Box::new(call), error)),
            };
            if let Err(error) = self.engine.insert_phone(phone) {
                // The phone is gone with the failed insert: the call cannot carry audio.
                return Err((Box::new(call), error));
            }
        }
        call.in_room = true;
        self.members.push(Member {
            call,
            deadline: None,
        });
        self.refresh_grid();
        Ok(())
    }

    /// Takes call `id` out of the room (it ended), with its phone back in its own engine.
    pub fn remove_call(&mut self, id: CallId) -> Option<Call> {
        let index = self.index(id)?;
        let Member { mut call, .. } = self.members.remove(index);
        if let Ok(phone) = self.engine.take_phone(id) {
            // Cannot fail: the call's own engine was left empty when it joined.
            let _ = call.media.insert_phone(phone);
        }
        self.engine.release_leg(id);
        call.in_room = false;
        self.refresh_grid();
        Some(call)
    }

    /// The ids of the room's calls, in the order they joined.
    pub fn ids(&self) -> impl Iterator<Item = CallId> + '_ {
        self.members.iter().map(|m| m.call.id())
    }

    /// Number of calls in the room.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the room has no calls.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Number of phones in the room's engine (a dial-out's phone is attached once it answers).
    pub fn phones(&self) -> usize {
        self.engine.phone_count()
    }

    /// The room's engine, read only (its counters).
    pub fn engine(&self) -> &Conference {
        &self.engine
    }

    /// Call `id`, read only (state, occupant, codec). Its quality and SRTP counters come from
    /// the room's engine: [`Room::quality`], [`Room::phone_srtp`].
    pub fn call(&self, id: CallId) -> Option<&Call> {
        self.members
            .iter()
            .find(|m| m.call.id() == id)
            .map(|m| &m.call)
    }

    /// [`Call::quality`] of call `id`.
    pub fn quality(&self, id: CallId) -> Option<CallQuality> {
        self.call(id).map(|call| call.quality_in(&self.engine))
    }

    /// [`Call::phone_srtp`] of call `id`.
    pub fn phone_srtp(&self, id: CallId) -> Option<PhoneSrtpStats> {
        self.call(id)
            .and_then(|call| call.phone_srtp_in(&self.engine))
    }

    /// Gives one input to call `id` (`f` calls one of its `handle_*` methods), with the room's
    /// engine lent to it. `None` if the call is not in the room.
    pub fn with_call<R>(&mut self, id: CallId, f: impl FnOnce(&mut Call) -> R) -> Option<R> {
        let index = self.index(id)?;
        let result = lend(&mut self.engine, &mut self.members[index].call, f);
        self.route_events();
        self.refresh_grid();
        Some(result)
    }

    /// Time has reached [`Room::poll_timeout`]: the calls whose deadline passed handle it, and
    /// the room's tick runs when due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for member in &mut self.members {
            if member.deadline.is_some_and(|at| at <= now) {
                member.deadline = None;
                lend(&mut self.engine, &mut member.call, |call| {
                    call.handle_timeout(now);
                });
            }
        }
        self.route_events();
        self.refresh_grid();
        if let Some(tick) = self.next_tick
            && tick <= now
        {
            self.tick(now);
            self.next_tick = Some(next_tick(tick, now));
            self.refresh_grid();
        }
    }

    /// The next output of any call; drain until `None`, then sleep until
    /// [`Room::poll_timeout`].
    pub fn poll_output(&mut self) -> Option<(CallId, CallOutput)> {
        for member in &mut self.members {
            match member.call.poll_output() {
                CallOutput::Timeout(at) => member.deadline = Some(at),
                CallOutput::Idle => member.deadline = None,
                output @ (CallOutput::Sip(_)
                | CallOutput::Xmpp(_)
                | CallOutput::Transmit { .. }
                | CallOutput::Event(_)) => return Some((member.call.id(), output)),
            }
        }
        None
    }

    /// The earliest deadline of the room (its tick, its calls'), once [`Room::poll_output`]
    /// returned `None`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.members
            .iter()
            .filter_map(|m| m.deadline)
            .chain(self.next_tick)
            .min()
    }

    /// One 20 ms frame for every answered call: the dropped-media check, one engine tick, each
    /// call's frame to its phone and its bridge leg.
    fn tick(&mut self, now: Instant) {
        let mut any = false;
        for member in &mut self.members {
            any |= lend(&mut self.engine, &mut member.call, |call| {
                call.room_tick_starts(now)
            });
        }
        if !any {
            return;
        }
        self.engine.tick(now);
        let Self {
            engine, members, ..
        } = self;
        for output in engine.outputs() {
            if let Some(member) = members.iter_mut().find(|m| m.call.id() == output.phone) {
                member.call.room_tick_output(now, &output);
            }
        }
        for member in &mut self.members {
            lend(&mut self.engine, &mut member.call, |call| {
                call.room_tick_done(now);
            });
        }
        self.route_events();
    }

    /// Hands the engine's events to the calls they concern: DTMF pressed on a phone to its
    /// call, DTMF pressed in the conference to every call (each phone hears it, as each
    /// Jigasi call would).
    fn route_events(&mut self) {
        while let Some(event) = self.engine.poll_event() {
            for member in &mut self.members {
                let concerned = match event {
                    MediaEvent::DtmfFromPhone { phone, .. } => phone == member.call.id(),
                    MediaEvent::DtmfFromConference { .. } => true,
                };
                if concerned {
                    lend(&mut self.engine, &mut member.call, |call| {
                        call.on_media_event(event);
                    });
                }
            }
        }
    }

    /// Starts the grid when the first call is answered (at its answer), stops it when none is.
    fn refresh_grid(&mut self) {
        let start = self.members.iter().filter_map(|m| m.call.grid()).min();
        match (start, self.next_tick) {
            (None, _) => self.next_tick = None,
            (Some(at), None) => self.next_tick = Some(at),
            (Some(_), Some(_)) => {}
        }
    }

    fn index(&self, id: CallId) -> Option<usize> {
        self.members.iter().position(|m| m.call.id() == id)
    }
}

/// Runs `f` on `call` with `engine` in place of the call's own (empty) engine.
fn lend<R>(engine: &mut Conference, call: &mut Call, f: impl FnOnce(&mut Call) -> R) -> R {
    std::mem::swap(engine, &mut call.media);
    let result = f(call);
    std::mem::swap(engine, &mut call.media);
    result
}
