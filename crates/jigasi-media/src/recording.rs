//! The recording hook: a sink that receives the audio of each direction of each phone, one
//! 20 ms frame per tick, so call recording (or transcription) can be added without touching the
//! engine.

use jigasi_types::CallId;

use crate::codec::SampleRate;

/// Which way the recorded audio flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The phone's uplink after its jitter buffer and decoder: what the conference hears of it.
    ToConference,
    /// The N−1 mix sent to the phone.
    ToPhone,
}

/// Receives the audio of every tick. Called from inside [`crate::Conference::tick`]: keep it
/// cheap (copy into a ring buffer and hand off), never block.
pub trait RecordingSink: Send {
    /// One 20 ms frame of `phone`'s audio in `direction` at `rate`.
    fn record(&mut self, phone: CallId, direction: Direction, rate: SampleRate, pcm: &[i16]);
}
