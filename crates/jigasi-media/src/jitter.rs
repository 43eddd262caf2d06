//! An adaptive jitter buffer for one incoming audio stream of 20 ms frames, holding the
//! *compressed* payloads (≈100 B per Opus frame instead of 1.9 KB of 48 kHz PCM).
//!
//! Pull model: the mixer calls [`JitterBuffer::pop`] once per 20 ms tick and gets a
//! [`Playout`]: a frame to decode, a concealment decision (with the next packet for Opus FEC
//! when it is already here), or silence.
//!
//! How it behaves:
//! - **Delay.** The target delay is the measured delay variation (a peak that decays with a
//!   time constant of about 5 s) plus one frame, rounded up to whole frames and kept within
//!   [`JitterConfig::min_delay`]..=[`JitterConfig::max_delay`] (default 40..=200 ms). A new
//!   talkspurt (first packet, or packets after the buffer ran dry) starts playing once its first
//!   packet waited the target delay.
//! - **Growth.** When the buffer runs dry in the middle of speech, the frame is concealed and
//!   the play position *holds*, so a late packet still plays and the delay grows by one frame.
//!   After [`JitterConfig::max_concealed_frames`] the stream counts as idle (the sender stopped,
//!   e.g. the bridge discarding silence) and the next packet starts a new talkspurt.
//! - **Shrinking and clock skew.** Over each 1 s window the buffer tracks the least delay a
//!   packet would get (what the newest one waited plus the frames ahead of it) and the least
//!   audio it held. A delay at least a frame above target for a whole window (sender clock fast,
//!   or a past spike) schedules a frame drop, so the delay never falls below target; a window in
//!   which it held only the frame being played (sender clock slow) schedules an inserted silent
//!   frame. Both wait for a quiet
//!   frame (audio level below −50 dBov) for up to 3 s, then act anyway.
//! - **Loss vs silence.** A missing frame whose successor has the next sequence number is a
//!   silence-suppression gap (the sender sent nothing for that time): it plays as silence, not
//!   as loss. A missing sequence number is loss: concealed with FEC from the next packet if it
//!   is here, else PLC.
//! - Reordered packets are sorted; duplicates and packets too late to play are dropped and
//!   counted; sequence numbers and timestamps are unwrapped, so wrap-around is seamless; a jump of
//!   more than 10 s either way resets the buffer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::level::{AudioLevel, VOICE_THRESHOLD};
use crate::rtp::{SequenceUnwrapper, TimestampUnwrapper};

/// Jitter buffer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// The smallest target delay. Default 40 ms (two frames: one for the tick phase, one for
    /// network jitter; performance-anchors.md §4 "typical 40–60 ms").
    pub min_delay: Duration,
    /// The largest target delay. Default 200 ms (beyond ~250 ms users perceive the latency,
    /// anchors §4).
    pub max_delay: Duration,
    /// Frames the buffer holds at most. Default 20 (400 ms): above `max_delay` plus bursts.
    pub capacity: usize,
    /// Concealed frames in a row before the stream counts as idle. Default 3 (60 ms).
    pub max_concealed_frames: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(200),
            capacity: 20,
            max_concealed_frames: 3,
        }
    }
}

/// What to play for this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playout<'a> {
    /// Decode this payload.
    Frame(&'a [u8]),
    /// The frame is lost (or late): conceal it. `fec` is the next packet when it is already
    /// buffered, for codecs with in-band FEC (Opus `decode_fec`).
    Conceal {
        /// The packet after the lost one, if buffered.
        fec: Option<&'a [u8]>,
    },
    /// Nothing to play: not started, idle, or a silence-suppression gap. Do not decode.
    Silence,
}

/// What happened to a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Stored for playout.
    Buffered,
    /// Same sequence number as a buffered or already played packet: dropped.
    Duplicate,
    /// Arrived after its play time (including copies of frames already played): dropped.
    Late,
    /// The buffer was full: the oldest frame was dropped to make room.
    Overflow,
    /// A timestamp or sequence jump of more than 10 s: the buffer restarted with this packet.
    Reset,
}

/// Counters of one jitter buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets pushed.
    pub pushed: u64,
    /// Frames handed out for decoding.
    pub played: u64,
    /// Frames concealed with FEC data.
    pub fec: u64,
    /// Frames concealed with PLC.
    pub plc: u64,
    /// Silent ticks (not started, idle, gaps, inserted frames).
    pub silence: u64,
    /// Duplicate packets dropped.
    pub duplicates: u64,
    /// Packets that arrived too late.
    pub late: u64,
    /// Frames dropped to shrink the delay (skew or after a spike).
    pub dropped: u64,
    /// Silent frames inserted to grow the delay (skew).
    pub inserted: u64,
    /// Frames dropped because the buffer was full.
    pub overflow: u64,
    /// Restarts after huge jumps.
    pub resets: u64,
}

#[derive(Debug)]
struct Slot {
    sequence: u64,
    timestamp: u64,
    arrival: Instant,
    quiet: bool,
    payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing to play; the next packet starts a talkspurt.
    Idle,
    /// A talkspurt's first packet is buffered; waiting for it to reach the target delay.
    Waiting,
    /// Playing: `play_ts` is the timestamp of the next frame.
    Playing,
}

/// An adaptive jitter buffer for one stream. See the module documentation.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    clock_rate: u32,
    frame_ticks: u64,
    sequence: SequenceUnwrapper,
    timestamp: TimestampUnwrapper,
    slots: VecDeque<Slot>,
    pool: Vec<Vec<u8>>,
    current: Vec<u8>,
    state: State,
    play_ts: u64,
    last_sequence: Option<u64>,
    concealed_in_row: u32,
    delay: DelayEstimator,
    window: Window,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer for a stream with `clock_rate` Hz RTP timestamps and `frame_ticks` per 20 ms.
    pub fn new(config: JitterConfig, clock_rate: u32, frame_ticks: u32) -> Self {
        let capacity = config.capacity.max(2);
        Self {
            config: JitterConfig { capacity, ..config },
            clock_rate: clock_rate.max(1),
            frame_ticks: u64::from(frame_ticks.max(1)),
            sequence: SequenceUnwrapper::default(),
            timestamp: TimestampUnwrapper::default(),
            slots: VecDeque::with_capacity(capacity),
            // Payload buffers start empty and grow once to the stream's packet size; after that
            // no packet allocates.
            pool: (0..capacity).map(|_| Vec::new()).collect(),
            current: Vec::new(),
            state: State::Idle,
            play_ts: 0,
            last_sequence: None,
            concealed_in_row: 0,
            delay: DelayEstimator::default(),
            window: Window::default(),
            stats: JitterStats::default(),
        }
    }

    /// Stores one packet that arrived at `now`. `level` is its RFC 6464 audio level if known
    /// (used to pick quiet frames for skew correction).
    pub fn push(
        &mut self,
        now: Instant,
        sequence: u16,
        timestamp: u32,
        level: Option<AudioLevel>,
        payload: &[u8],
    ) -> PushOutcome {
        self.stats.pushed += 1;
        let mut sequence_ext = self.sequence.unwrap(sequence);
        let mut timestamp_ext = self.timestamp.unwrap(timestamp);
        let reset_ticks = u64::from(self.clock_rate) * RESET_SECONDS;
        let reference = match self.state {
            State::Playing => Some(self.play_ts),
            State::Waiting => self.slots.front().map(|s| s.timestamp),
            State::Idle => None,
        };
        let mut outcome = PushOutcome::Buffered;
        if reference.is_some_and(|r| r.abs_diff(timestamp_ext) > reset_ticks) {
            self.reset();
            sequence_ext = self.sequence.unwrap(sequence);
            timestamp_ext = self.timestamp.unwrap(timestamp);
            outcome = PushOutcome::Reset;
        }
        if self.last_sequence.is_some_and(|last| sequence_ext <= last)
            && self.state == State::Playing
        {
            // Already played or concealed: a duplicate of a played packet or a late one.
            if timestamp_ext + self.frame_ticks / 2 < self.play_ts {
                // Late packets measure the jitter that made them late.
                self.delay.record(now, timestamp_ext, self.clock_rate);
                self.stats.late += 1;
                return PushOutcome::Late;
            }
            self.stats.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        if self.state == State::Playing && timestamp_ext + self.frame_ticks / 2 < self.play_ts {
            self.delay.record(now, timestamp_ext, self.clock_rate);
            self.stats.late += 1;
            return PushOutcome::Late;
        }
        let position = self.slots.iter().rposition(|s| s.sequence <= sequence_ext);
        if let Some(p) = position
            && self
                .slots
                .get(p)
                .is_some_and(|s| s.sequence == sequence_ext)
        {
            self.stats.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        // Duplicates do not measure the network (they are often retransmission artefacts).
        self.delay.record(now, timestamp_ext, self.clock_rate);
        if self.slots.len() >= self.config.capacity {
            if let Some(old) = self.slots.pop_front() {
                self.play_ts = self.play_ts.max(old.timestamp + self.frame_ticks);
                self.last_sequence = Some(old.sequence);
                self.pool.push(old.payload);
            }
            self.stats.overflow += 1;
            outcome = PushOutcome::Overflow;
        }
        let mut buffer = self.pool.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(payload);
        let slot = Slot {
            sequence: sequence_ext,
            timestamp: timestamp_ext,
            arrival: now,
            quiet: level.is_some_and(|l| l.level() > VOICE_THRESHOLD),
            payload: buffer,
        };
        // Insert keeping sequence order (most packets append at the back).
        let insert_at = self
            .slots
            .iter()
            .rposition(|s| s.sequence < sequence_ext)
            .map_or(0, |p| p + 1);
        self.slots.insert(insert_at, slot);
        if self.state == State::Idle {
            self.state = State::Waiting;
        }
        outcome
    }

    /// The playout decision for this 20 ms tick. Call exactly once per tick.
    pub fn pop(&mut self, now: Instant) -> Playout<'_> {
        match self.state {
            State::Idle => {
                self.stats.silence += 1;
                return Playout::Silence;
            }
            State::Waiting => {
                let target = self.target_delay();
                let Some(first) = self.slots.front() else {
                    self.state = State::Idle;
                    self.stats.silence += 1;
                    return Playout::Silence;
                };
                let waited = now.saturating_duration_since(first.arrival);
                if waited + self.frame_duration() / 2 < target {
                    self.stats.silence += 1;
                    return Playout::Silence;
                }
                self.play_ts = first.timestamp;
                self.last_sequence = Some(first.sequence.saturating_sub(1));
                self.concealed_in_row = 0;
                self.window = Window::default();
                self.state = State::Playing;
            }
            State::Playing => {}
        }
        self.adapt(now);
        self.play()
    }

    /// The current target delay.
    pub fn target_delay(&self) -> Duration {
        let frame = self.frame_duration();
        let wanted = self.delay.peak() + frame;
        let frames = wanted.as_micros().div_ceil(frame.as_micros().max(1));
        let rounded = frame * u32::try_from(frames).unwrap_or(u32::MAX);
        rounded.clamp(self.config.min_delay, self.config.max_delay)
    }

    /// Audio buffered ahead of the play position (what will be played before a packet arriving
    /// now).
    pub fn buffered(&self) -> Duration {
        let ticks = self.buffered_ticks();
        Duration::from_micros(ticks * 1_000_000 / u64::from(self.clock_rate))
    }

    /// The counters.
    pub fn stats(&self) -> &JitterStats {
        &self.stats
    }

    /// Drops everything and starts over (the next packet starts a talkspurt).
    pub fn reset(&mut self) {
        while let Some(slot) = self.slots.pop_front() {
            self.pool.push(slot.payload);
        }
        self.sequence = SequenceUnwrapper::default();
        self.timestamp = TimestampUnwrapper::default();
        self.state = State::Idle;
        self.last_sequence = None;
        self.concealed_in_row = 0;
        self.delay = DelayEstimator::default();
        self.window = Window::default();
        self.stats.resets += 1;
    }

    fn frame_duration(&self) -> Duration {
        Duration::from_micros(self.frame_ticks * 1_000_000 / u64::from(self.clock_rate))
    }

    fn buffered_ticks(&self) -> u64 {
        if self.state != State::Playing {
            return 0;
        }
        self.slots.back().map_or(0, |s| {
            (s.timestamp + self.frame_ticks).saturating_sub(self.play_ts)
        })
    }

    /// Skew and shrink control: update the 1 s window; schedule a drop or an insert.
    fn adapt(&mut self, now: Instant) {
        let buffered = self.buffered_ticks();
        self.window.min_buffered = self.window.min_buffered.min(buffered);
        // How long the newest packet will have waited when it plays: what it waited so far
        // plus the frames ahead of it after this one. Frames alone over-count by up to a frame
        // (a packet that arrived just before the tick has waited nothing yet), and shrinking on
        // that count would take a stream that sits exactly on target below it.
        let waited = self.slots.back().map_or(0, |newest| {
            let micros = now.saturating_duration_since(newest.arrival).as_micros();
            u64::try_from(micros).unwrap_or(u64::MAX) * u64::from(self.clock_rate) / 1_000_000
        });
        let delay = buffered.saturating_sub(self.frame_ticks) + waited;
        self.window.min_delay = self.window.min_delay.min(delay);
        self.window.pops += 1;
        if self.window.pending != Adjust::None {
            self.window.pending_for += 1;
        }
        if self.window.pops < WINDOW_TICKS {
            return;
        }
        let target =
            self.target_delay().as_micros() as u64 * u64::from(self.clock_rate) / 1_000_000;
        let pending = if self.window.min_delay >= target + self.frame_ticks {
            Adjust::Drop
        } else if self.window.min_buffered <= self.frame_ticks {
            Adjust::Insert
        } else {
            Adjust::None
        };
        if pending != self.window.pending {
            self.window.pending_for = 0;
        }
        self.window = Window {
            pending,
            pending_for: self.window.pending_for,
            ..Window::default()
        };
    }

    fn play(&mut self) -> Playout<'_> {
        // Forget anything before the play position (placed there before a reset or by reorder).
        while let Some(front) = self.slots.front() {
            if front.timestamp + self.frame_ticks / 2 > self.play_ts {
                break;
            }
            self.stats.late += 1;
            self.last_sequence = Some(front.sequence);
            if let Some(slot) = self.slots.pop_front() {
                self.pool.push(slot.payload);
            }
        }
        let frame = self.frame_ticks;
        let due = |s: &Slot, play_ts: u64| s.timestamp < play_ts + frame / 2 + frame % 2;
        let force = self.window.pending_for >= FORCE_AFTER_TICKS;

        if let Some(front) = self.slots.front()
            && due(front, self.play_ts)
        {
            let quiet = front.quiet;
            match self.window.pending {
                Adjust::Drop if quiet || force => {
                    // Drop this frame; play the next one if it is due in its place.
                    if let Some(slot) = self.slots.pop_front() {
                        self.last_sequence = Some(slot.sequence);
                        self.play_ts = slot.timestamp + frame;
                        self.pool.push(slot.payload);
                    }
                    self.stats.dropped += 1;
                    self.window.pending = Adjust::None;
                    self.window.pending_for = 0;
                    if let Some(next) = self.slots.front()
                        && due(next, self.play_ts)
                    {
                        return self.take_front();
                    }
                    return self.missing();
                }
                Adjust::Insert if quiet || force => {
                    // Hold the play position: a silent frame is inserted before this one.
                    self.stats.inserted += 1;
                    self.stats.silence += 1;
                    self.window.pending = Adjust::None;
                    self.window.pending_for = 0;
                    return Playout::Silence;
                }
                Adjust::Drop | Adjust::Insert | Adjust::None => {}
            }
            return self.take_front();
        }
        self.missing()
    }

    /// The frame at `play_ts` is not here.
    fn missing(&mut self) -> Playout<'_> {
        let frame = self.frame_ticks;
        let next_sequence = self.last_sequence.map_or(0, |s| s + 1);
        let Some(front) = self.slots.front() else {
            // Ran dry. Conceal and hold, so a late packet still plays; then go idle.
            self.concealed_in_row += 1;
            if self.concealed_in_row > self.config.max_concealed_frames {
                self.state = State::Idle;
                self.stats.silence += 1;
                return Playout::Silence;
            }
            self.stats.plc += 1;
            return Playout::Conceal { fec: None };
        };
        if front.sequence == next_sequence {
            // Contiguous sequence numbers, later timestamp: the sender paused (silence
            // suppression / DTX). Play silence until the packet is due.
            self.play_ts += frame;
            self.concealed_in_row = 0;
            self.stats.silence += 1;
            return Playout::Silence;
        }
        // A sequence number is missing: loss. Use FEC if the very next frame is here.
        self.last_sequence = Some(next_sequence);
        let fec_ok = front.timestamp < self.play_ts + frame + frame / 2;
        self.play_ts += frame;
        self.concealed_in_row += 1;
        if fec_ok {
            self.stats.fec += 1;
            let payload = self.slots.front().map(|s| s.payload.as_slice());
            return Playout::Conceal { fec: payload };
        }
        self.stats.plc += 1;
        Playout::Conceal { fec: None }
    }

    fn take_front(&mut self) -> Playout<'_> {
        let Some(slot) = self.slots.pop_front() else {
            return Playout::Silence;
        };
        self.last_sequence = Some(slot.sequence);
        // Re-align to the packet's own timestamp (senders may shift the grid after a pause).
        self.play_ts = slot.timestamp + self.frame_ticks;
        self.concealed_in_row = 0;
        self.stats.played += 1;
        let previous = std::mem::replace(&mut self.current, slot.payload);
        self.pool.push(previous);
        Playout::Frame(&self.current)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Adjust {
    None,
    Drop,
    Insert,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    pops: u32,
    /// The least audio held ahead of the play position (the frame being played included).
    min_buffered: u64,
    /// The least delay the newest packet would get (see `adapt`).
    min_delay: u64,
    pending: Adjust,
    pending_for: u32,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            pops: 0,
            min_buffered: u64::MAX,
            min_delay: u64::MAX,
            pending: Adjust::None,
            pending_for: 0,
        }
    }
}

/// Estimates how late packets arrive relative to the fastest recent one.
#[derive(Debug, Clone, Copy, Default)]
struct DelayEstimator {
    origin: Option<(Instant, u64)>,
    /// Minimum of `arrival − media time` over the current and the previous ~1 s.
    current_min: Option<i64>,
    previous_min: Option<i64>,
    count: u32,
    /// Peak delay variation in µs, decaying by 1/256 per packet (τ ≈ 5 s at 50 packets/s).
    peak_us: i64,
}

impl DelayEstimator {
    fn record(&mut self, now: Instant, timestamp: u64, clock_rate: u32) {
        let (origin_time, origin_ts) = *self.origin.get_or_insert((now, timestamp));
        let arrival_us = i64::try_from(now.saturating_duration_since(origin_time).as_micros())
            .unwrap_or(i64::MAX);
        let media_us = (timestamp as i128 - origin_ts as i128) * 1_000_000 / i128::from(clock_rate);
        let relative = arrival_us.saturating_sub(i64::try_from(media_us).unwrap_or(i64::MAX));
        self.current_min = Some(self.current_min.map_or(relative, |m| m.min(relative)));
        self.count += 1;
        if self.count >= WINDOW_TICKS {
            self.previous_min = self.current_min;
            self.current_min = None;
            self.count = 0;
        }
        let base = match (self.current_min, self.previous_min) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => relative,
        };
        let variation = (relative - base).max(0);
        self.peak_us = (self.peak_us - self.peak_us / 256).max(variation);
    }

    fn peak(&self) -> Duration {
        Duration::from_micros(u64::try_from(self.peak_us).unwrap_or(0))
    }
}

/// Pops per adaptation window (1 s).
const WINDOW_TICKS: u32 = 50;
/// A pending drop/insert waits this many pops for a quiet frame, then acts anyway (3 s).
const FORCE_AFTER_TICKS: u32 = 150;
/// Jumps beyond this restart the buffer.
const RESET_SECONDS: u64 = 10;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const FRAME: Duration = Duration::from_millis(20);

    #[allow(clippy::disallowed_methods)] // The test's time origin only; all later times are offsets.
    fn t0() -> Instant {
        Instant::now()
    }

    /// A G.711-like stream: 8 kHz clock, 160 ticks per frame; payload = the frame index.
    fn buffer() -> JitterBuffer {
        JitterBuffer::new(JitterConfig::default(), 8000, 160)
    }

    fn payload(index: u32) -> [u8; 4] {
        index.to_be_bytes()
    }

    fn index_of(playout: Playout<'_>) -> Option<u32> {
        match playout {
            Playout::Frame(p) => Some(u32::from_be_bytes(p.try_into().unwrap())),
            Playout::Conceal { .. } | Playout::Silence => None,
        }
    }

    /// What one tick produced, simplified for comparisons.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Out {
        F(u32),
        Fec(u32),
        Plc,
        Sil,
    }

    fn simplify(playout: Playout<'_>) -> Out {
        match playout {
            Playout::Frame(p) => Out::F(u32::from_be_bytes(p.try_into().unwrap())),
            Playout::Conceal { fec: Some(p) } => {
                Out::Fec(u32::from_be_bytes(p.try_into().unwrap()))
            }
            Playout::Conceal { fec: None } => Out::Plc,
            Playout::Silence => Out::Sil,
        }
    }

    /// Runs a schedule: packet `i` (seq base+i, ts 160·i) arrives at `arrivals[i]` ms (None =
    /// lost); pops every 20 ms from t=5 ms. Returns the outputs.
    fn run(
        jb: &mut JitterBuffer,
        start: Instant,
        seq_base: u16,
        ts_base: u32,
        arrivals: &[Option<u64>],
        ticks: usize,
    ) -> Vec<Out> {
        let mut events: Vec<(u64, usize)> = arrivals
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.map(|a| (a, i)))
            .collect();
        events.sort();
        let mut next = 0;
        let mut out = Vec::new();
        for tick in 0..ticks {
            let now_ms = 5 + 20 * tick as u64;
            while next < events.len() && events[next].0 <= now_ms {
                let (at, i) = events[next];
                jb.push(
                    start + Duration::from_millis(at),
                    seq_base.wrapping_add(i as u16),
                    ts_base.wrapping_add(160 * i as u32),
                    None,
                    &payload(i as u32),
                );
                next += 1;
            }
            out.push(simplify(jb.pop(start + Duration::from_millis(now_ms))));
        }
        out
    }

    fn frames(out: &[Out]) -> Vec<u32> {
        out.iter()
            .filter_map(|o| match o {
                Out::F(i) => Some(*i),
                Out::Fec(_) | Out::Plc | Out::Sil => None,
            })
            .collect()
    }

    #[test]
    fn steady_stream_plays_in_order_after_the_target_delay() {
        let start = t0();
        let mut jb = buffer();
        let arrivals: Vec<_> = (0..50).map(|i| Some(20 * i)).collect();
        let out = run(&mut jb, start, 100, 0, &arrivals, 50);
        // Waits ≥ 30 ms (target 40 − half a frame) before the first frame.
        assert_eq!(&out[..2], &[Out::Sil, Out::Sil]);
        assert_eq!(out[2], Out::F(0));
        assert_eq!(frames(&out), (0..48).collect::<Vec<_>>());
        assert_eq!(jb.target_delay(), Duration::from_millis(40));
        assert_eq!(jb.stats().plc + jb.stats().fec, 0);
    }

    #[test]
    fn reordered_packets_play_in_order() {
        let start = t0();
        let mut jb = buffer();
        let mut arrivals: Vec<_> = (0..30).map(|i| Some(20 * i)).collect();
        arrivals.swap(5, 6);
        arrivals.swap(10, 12);
        let out = run(&mut jb, start, 0, 0, &arrivals, 32);
        assert_eq!(frames(&out), (0..30).collect::<Vec<_>>());
    }

    #[test]
    fn loss_uses_fec_from_the_next_packet_and_plc_for_bursts() {
        let start = t0();
        let mut jb = buffer();
        let mut arrivals: Vec<_> = (0..40).map(|i| Some(20 * i)).collect();
        arrivals[10] = None;
        arrivals[20] = None;
        arrivals[21] = None;
        arrivals[22] = None;
        let out = run(&mut jb, start, 0, 0, &arrivals, 45);
        let at = |i: u32| out.iter().position(|o| *o == Out::F(i)).unwrap();
        assert_eq!(
            out[at(9) + 1],
            Out::Fec(11),
            "single loss: FEC from the next packet"
        );
        assert_eq!(out[at(9) + 2], Out::F(11));
        // Frame 23 arrives after frame 20's play time: the buffer runs dry once (PLC, hold),
        // then 20 and 21 are known lost (PLC: their successors are not here), and 22 is
        // recovered from 23's FEC.
        let burst = &out[at(19) + 1..at(23)];
        assert_eq!(burst, &[Out::Plc, Out::Plc, Out::Plc, Out::Fec(23)]);
        assert_eq!(frames(&out).len(), 36);
        let played = &out[..=at(39)];
        assert_eq!(
            played.iter().filter(|o| matches!(o, Out::Fec(_))).count(),
            2
        );
        assert_eq!(played.iter().filter(|o| **o == Out::Plc).count(), 3);
        // After the last packet the buffer runs dry: a few PLC frames, then silence.
        assert!(
            out[at(39) + 1..]
                .iter()
                .all(|o| *o == Out::Plc || *o == Out::Sil)
        );
    }

    #[test]
    fn duplicates_and_late_packets_are_dropped() {
        let start = t0();
        let mut jb = buffer();
        let now = |ms| start + Duration::from_millis(ms);
        for i in 0..3u16 {
            assert_eq!(
                jb.push(
                    now(20 * u64::from(i)),
                    i,
                    160 * u32::from(i),
                    None,
                    &payload(u32::from(i))
                ),
                PushOutcome::Buffered
            );
        }
        assert_eq!(
            jb.push(now(41), 1, 160, None, &payload(1)),
            PushOutcome::Duplicate
        );
        // Play frames 0..=2, conceal 3 (missing: ran dry), then packet 3 arrives in time (held).
        assert_eq!(index_of(jb.pop(now(45))), Some(0));
        assert_eq!(index_of(jb.pop(now(65))), Some(1));
        // A copy of a frame already played is too late to matter.
        assert_eq!(
            jb.push(now(66), 1, 160, None, &payload(1)),
            PushOutcome::Late
        );
        assert_eq!(index_of(jb.pop(now(85))), Some(2));
        assert_eq!(simplify(jb.pop(now(105))), Out::Plc);
        assert_eq!(
            jb.push(now(110), 3, 480, None, &payload(3)),
            PushOutcome::Buffered
        );
        assert_eq!(
            index_of(jb.pop(now(125))),
            Some(3),
            "the hold lets a late packet play"
        );
        // Packet 5 arrives, so 4 is lost and concealed; 4 arriving afterwards is late.
        jb.push(now(130), 5, 800, None, &payload(5));
        assert_eq!(simplify(jb.pop(now(145))), Out::Fec(5));
        assert_eq!(
            jb.push(now(150), 4, 640, None, &payload(4)),
            PushOutcome::Late
        );
        assert_eq!(index_of(jb.pop(now(165))), Some(5));
        assert_eq!(jb.stats().duplicates, 1);
        assert_eq!(jb.stats().late, 2);
    }

    #[test]
    fn sequence_and_timestamp_wrap_around_is_seamless() {
        let start = t0();
        let mut jb = buffer();
        let arrivals: Vec<_> = (0..40).map(|i| Some(20 * i)).collect();
        // Sequence wraps after 5 packets; timestamp wraps after 10.
        let out = run(
            &mut jb,
            start,
            65_531,
            u32::MAX - 160 * 10 + 1,
            &arrivals,
            42,
        );
        assert_eq!(frames(&out), (0..40).collect::<Vec<_>>());
        assert_eq!(jb.stats().plc + jb.stats().fec + jb.stats().late, 0);
    }

    #[test]
    fn silence_suppression_gap_is_silence_not_loss() {
        let start = t0();
        let mut jb = buffer();
        // 10 frames, a 1 s pause (timestamps jump, sequence numbers continue), 10 frames.
        for i in 0..20u32 {
            let gap = if i >= 10 { 50 } else { 0 };
            let at = start + Duration::from_millis(20 * u64::from(i + gap));
            jb.push(at, i as u16, 160 * (i + gap), None, &payload(i));
            // Pop in lockstep (after the first two ticks of buffering).
            if i >= 1 {
                let _ = jb.pop(at + Duration::from_millis(5));
            }
        }
        let mut outs = Vec::new();
        for tick in 0..80u64 {
            let now = start + Duration::from_millis(20 * 70 + 5 + 20 * tick);
            outs.push(simplify(jb.pop(now)));
        }
        let stats = *jb.stats();
        assert_eq!(stats.fec, 0, "a pause is not loss");
        assert!(
            stats.plc <= 3,
            "at most the idle detection conceals: {stats:?}"
        );
        assert_eq!(stats.played, 20);
    }

    #[test]
    fn gap_between_buffered_packets_is_silence() {
        let start = t0();
        let mut jb = buffer();
        let now = |ms| start + Duration::from_millis(ms);
        jb.push(now(0), 7, 0, None, &payload(0));
        jb.push(now(1), 8, 480, None, &payload(3)); // next seq, 3 frames later: DTX gap
        assert_eq!(simplify(jb.pop(now(40))), Out::F(0));
        assert_eq!(simplify(jb.pop(now(60))), Out::Sil);
        assert_eq!(simplify(jb.pop(now(80))), Out::Sil);
        assert_eq!(simplify(jb.pop(now(100))), Out::F(3));
        assert_eq!(jb.stats().plc + jb.stats().fec, 0);
    }

    #[test]
    fn jitter_grows_the_delay_and_calm_shrinks_it_slowly() {
        let start = t0();
        let mut jb = buffer();
        let mut rng_state = 12345u32;
        let mut jitter = || {
            rng_state = rng_state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            u64::from(rng_state >> 16) % 60
        };
        // 10 s with up to 60 ms of random extra delay, then 30 s clean.
        let arrivals: Vec<_> = (0..2000u64)
            .map(|i| Some(20 * i + if i < 500 { jitter() } else { 0 }))
            .collect();
        let mut jb_out = Vec::new();
        let mut max_target = Duration::ZERO;
        let mut events: Vec<(u64, usize)> = arrivals
            .iter()
            .enumerate()
            .map(|(i, a)| (a.unwrap(), i))
            .collect();
        events.sort();
        let mut next = 0;
        let mut target_at_10s = Duration::ZERO;
        for tick in 0..2000u64 {
            let now_ms = 5 + 20 * tick;
            while next < events.len() && events[next].0 <= now_ms {
                let (at, i) = events[next];
                jb.push(
                    start + Duration::from_millis(at),
                    i as u16,
                    160 * i as u32,
                    Some(AudioLevel::new(90, false)),
                    &payload(i as u32),
                );
                next += 1;
            }
            jb_out.push(simplify(jb.pop(start + Duration::from_millis(now_ms))));
            max_target = max_target.max(jb.target_delay());
            if tick == 520 {
                target_at_10s = jb.target_delay();
            }
        }
        assert!(
            max_target >= Duration::from_millis(60),
            "grew: {max_target:?}"
        );
        assert!(
            max_target <= Duration::from_millis(120),
            "bounded: {max_target:?}"
        );
        assert!(target_at_10s >= Duration::from_millis(60));
        assert_eq!(jb.target_delay(), Duration::from_millis(40), "shrank back");
        assert!(
            jb.buffered() <= Duration::from_millis(60),
            "buffer drained: {:?}",
            jb.buffered()
        );
        assert!(jb.stats().dropped > 0);
        // Under jitter most frames still play: less than 3% concealed.
        let concealed = jb.stats().plc + jb.stats().fec + jb.stats().late;
        assert!(concealed * 100 < 2000 * 3, "{:?}", jb.stats());
    }

    #[test]
    fn a_stream_on_target_is_never_shrunk_below_it() {
        // Speech (never quiet) arriving 1 ms before each tick: after the start every packet
        // waits 41 ms, on the 40 ms target (30-50 ms for other arrival phases). Counting whole frames (the one being played
        // included) read that as 60 ms and forced a drop mid-speech after 3 s, leaving 21 ms.
        for lead_ms in [1u64, 5, 10, 19] {
            let start = t0();
            let mut jb = buffer();
            let mut delays = Vec::new();
            for tick in 1..500u64 {
                let now_ms = 5 + 20 * tick;
                let i = tick;
                jb.push(
                    start + Duration::from_millis(now_ms - lead_ms),
                    i as u16,
                    160 * i as u32,
                    Some(AudioLevel::new(20, true)),
                    &payload(i as u32),
                );
                if let Out::F(played) = simplify(jb.pop(start + Duration::from_millis(now_ms))) {
                    let arrived = 5 + 20 * u64::from(played) - lead_ms;
                    delays.push(now_ms - arrived);
                }
            }
            assert_eq!(jb.stats().dropped, 0, "lead {lead_ms} ms: {:?}", jb.stats());
            assert_eq!(jb.stats().plc + jb.stats().fec, 0);
            let least = delays.iter().min().copied().unwrap_or(0);
            // A talkspurt starts once its first packet waited the target less half a frame.
            assert!(
                least >= 30,
                "lead {lead_ms} ms: a packet waited only {least} ms"
            );
            assert!(
                least < 60,
                "lead {lead_ms} ms: {least} ms is a frame too many"
            );
        }
    }

    /// Sender clock off by `ppm`; every 25th frame is quiet. Returns the stats and the max
    /// buffered audio in the last 30 s.
    fn skew_run(ppm: i64) -> (JitterStats, Duration, Vec<bool>) {
        let start = t0();
        let mut jb = buffer();
        let mut adjusted_quiet = Vec::new();
        let mut max_buffered = Duration::ZERO;
        let period_us = (20_000 * (1_000_000 - ppm) / 1_000_000) as u64;
        let mut next_packet = 0u64;
        let mut quiet_frames = std::collections::HashSet::new();
        for tick in 0..3000u64 {
            let now_us = 5_000 + 20_000 * tick;
            while next_packet * period_us <= now_us {
                let i = next_packet;
                let quiet = i.is_multiple_of(25);
                if quiet {
                    quiet_frames.insert(i as u32);
                }
                let level = AudioLevel::new(if quiet { 127 } else { 20 }, !quiet);
                jb.push(
                    start + Duration::from_micros(i * period_us),
                    i as u16,
                    (160 * i) as u32,
                    Some(level),
                    &payload(i as u32),
                );
                next_packet += 1;
            }
            let before = *jb.stats();
            let out = simplify(jb.pop(start + Duration::from_micros(now_us)));
            let after = *jb.stats();
            if after.dropped > before.dropped || after.inserted > before.inserted {
                // The adjusted frame is quiet if the frame now played (or about to be) follows a quiet one.
                let played = match out {
                    Out::F(i) => Some(i),
                    Out::Fec(_) | Out::Plc | Out::Sil => None,
                };
                let neighbour_quiet = played.is_some_and(|i| quiet_frames.contains(&(i - 1)));
                let inserted_before_quiet = after.inserted > before.inserted;
                adjusted_quiet.push(neighbour_quiet || inserted_before_quiet);
            }
            if tick > 1500 {
                max_buffered = max_buffered.max(jb.buffered());
            }
        }
        (*jb.stats(), max_buffered, adjusted_quiet)
    }

    #[test]
    fn fast_sender_clock_drops_quiet_frames() {
        // 1% fast: 30 extra frames over 60 s.
        let (stats, max_buffered, quiet) = skew_run(10_000);
        assert!(stats.dropped >= 20, "{stats:?}");
        assert!(
            max_buffered <= Duration::from_millis(100),
            "{max_buffered:?}"
        );
        assert!(
            quiet.iter().all(|&q| q),
            "drops happen at quiet frames: {quiet:?}"
        );
        assert_eq!(stats.plc + stats.fec, 0, "{stats:?}");
    }

    #[test]
    fn slow_sender_clock_inserts_silence_before_quiet_frames() {
        // 1% slow: 30 missing frames over 60 s.
        let (stats, _, _) = skew_run(-10_000);
        assert!(stats.inserted >= 20, "{stats:?}");
        assert!(
            stats.plc <= 3,
            "inserts at silence rather than running dry: {stats:?}"
        );
    }

    #[test]
    fn huge_jump_resets() {
        let start = t0();
        let mut jb = buffer();
        let now = |ms| start + Duration::from_millis(ms);
        jb.push(now(0), 1, 0, None, &payload(0));
        let _ = jb.pop(now(40));
        assert_eq!(
            jb.push(now(41), 2, 8000 * 60, None, &payload(1)),
            PushOutcome::Reset
        );
        assert_eq!(jb.stats().resets, 1);
        assert_eq!(simplify(jb.pop(now(45))), Out::Sil);
        assert_eq!(simplify(jb.pop(now(85))), Out::F(1));
    }

    #[test]
    fn overflow_drops_the_oldest() {
        let start = t0();
        let mut jb = buffer();
        for i in 0..25u16 {
            jb.push(start, i, 160 * u32::from(i), None, &payload(u32::from(i)));
        }
        assert_eq!(jb.stats().overflow, 5);
        assert_eq!(index_of(jb.pop(start + FRAME * 2)), Some(5));
    }
}
