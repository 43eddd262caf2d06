//! DTMF as RFC 4733 telephone events: the payload format, a sender that produces the packet
//! sequence of one tone (start with marker, updates, the end packet three times), and a receiver
//! that turns the (retransmitted, reordered) packets back into one press per digit.

use crate::Blame;

/// A DTMF key (RFC 4733 §3.2 events 0..=15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtmfDigit {
    /// 0
    D0,
    /// 1
    D1,
    /// 2
    D2,
    /// 3
    D3,
    /// 4
    D4,
    /// 5
    D5,
    /// 6
    D6,
    /// 7
    D7,
    /// 8
    D8,
    /// 9
    D9,
    /// *
    Star,
    /// #
    Pound,
    /// A
    A,
    /// B
    B,
    /// C
    C,
    /// D
    D,
}

impl DtmfDigit {
    /// Every digit, in event-code order.
    pub const ALL: [DtmfDigit; 16] = [
        Self::D0,
        Self::D1,
        Self::D2,
        Self::D3,
        Self::D4,
        Self::D5,
        Self::D6,
        Self::D7,
        Self::D8,
        Self::D9,
        Self::Star,
        Self::Pound,
        Self::A,
        Self::B,
        Self::C,
        Self::D,
    ];

    /// The digit for an RFC 4733 event code, if it is a DTMF event.
    pub fn from_event(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// The RFC 4733 event code.
    pub fn event(self) -> u8 {
        // ALL lists the digits in event order, and the position is < 16.
        Self::ALL.iter().position(|&d| d == self).unwrap_or(0) as u8
    }

    /// The digit for a character (`0-9`, `*`, `#`, `A-D`, case-insensitive).
    pub fn from_char(c: char) -> Option<Self> {
        let index = match c.to_ascii_uppercase() {
            d @ '0'..='9' => d as usize - '0' as usize,
            '*' => 10,
            '#' => 11,
            l @ 'A'..='D' => 12 + (l as usize - 'A' as usize),
            _ => return None,
        };
        Self::ALL.get(index).copied()
    }

    /// The character of this digit.
    pub fn as_char(self) -> char {
        "0123456789*#ABCD"
            .chars()
            .nth(usize::from(self.event()))
            .unwrap_or('?')
    }

    /// The (row, column) frequencies in Hz (ITU-T Q.23).
    pub fn frequencies(self) -> (f32, f32) {
        let (row, column) = self.grid();
        (
            crate::tone::ROW_FREQUENCIES[row],
            crate::tone::COLUMN_FREQUENCIES[column],
        )
    }

    fn grid(self) -> (usize, usize) {
        match self {
            Self::D1 => (0, 0),
            Self::D2 => (0, 1),
            Self::D3 => (0, 2),
            Self::A => (0, 3),
            Self::D4 => (1, 0),
            Self::D5 => (1, 1),
            Self::D6 => (1, 2),
            Self::B => (1, 3),
            Self::D7 => (2, 0),
            Self::D8 => (2, 1),
            Self::D9 => (2, 2),
            Self::C => (2, 3),
            Self::Star => (3, 0),
            Self::D0 => (3, 1),
            Self::Pound => (3, 2),
            Self::D => (3, 3),
        }
    }

    pub(crate) fn from_grid(row: usize, column: usize) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.grid() == (row, column))
    }
}

/// Why a telephone-event payload was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// The payload is shorter than one 4-byte event block.
    #[error("telephone-event payload of {0} bytes is shorter than 4")]
    Truncated(usize),
}

impl DtmfError {
    /// Who is to blame for this error.
    pub fn blame(&self) -> Blame {
        match self {
            Self::Truncated(_) => Blame::Peer,
        }
    }
}

/// One RFC 4733 §2.3 event block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code (0..=15 are DTMF).
    pub event: u8,
    /// The E bit: this is the last packet of the event.
    pub end: bool,
    /// Power level in −dBm0 (0..=63).
    pub volume: u8,
    /// Duration so far in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event block of a payload. Bytes after it (RFC 2198 redundancy is a
    /// different payload type, so these are only padding in practice) are ignored.
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let block: &[u8; 4] = payload
            .first_chunk()
            .ok_or(DtmfError::Truncated(payload.len()))?;
        Ok(Self {
            event: block[0],
            end: block[1] & 0x80 != 0,
            volume: block[1] & 0x3f,
            duration: u16::from_be_bytes([block[2], block[3]]),
        })
    }

    /// The 4-byte wire form.
    pub fn to_bytes(self) -> [u8; 4] {
        let duration = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            duration[0],
            duration[1],
        ]
    }
}

/// One telephone-event RTP payload to send, with the RTP fields it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// The payload.
    pub payload: [u8; 4],
    /// Set on the first packet of the event only.
    pub marker: bool,
    /// The RTP timestamp: the event's start, the same for every packet of the event.
    pub timestamp: u32,
}

/// Produces the packets of one DTMF press, one call per 20 ms tick (RFC 4733 §2.5.1).
#[derive(Debug, Clone)]
pub struct DtmfSender {
    event: TelephoneEvent,
    timestamp: u32,
    total: u16,
    frame_ticks: u16,
    sent: u32,
    ends_left: u8,
}

impl DtmfSender {
    /// A press of `digit` lasting `duration_ticks` timestamp units, starting at RTP time
    /// `timestamp`, sent every `frame_ticks` (160 at 8 kHz), at `volume` −dBm0 (10 is usual).
    pub fn new(
        digit: DtmfDigit,
        timestamp: u32,
        duration_ticks: u16,
        frame_ticks: u16,
        volume: u8,
    ) -> Self {
        Self {
            event: TelephoneEvent {
                event: digit.event(),
                end: false,
                volume: volume.min(63),
                duration: 0,
            },
            timestamp,
            total: duration_ticks.max(frame_ticks.max(1)),
            frame_ticks: frame_ticks.max(1),
            sent: 0,
            ends_left: END_RETRANSMISSIONS,
        }
    }

    /// The packet for this tick, or `None` once the three end packets went out.
    pub fn poll_packet(&mut self) -> Option<DtmfPacket> {
        if self.ends_left == 0 {
            return None;
        }
        let first = self.sent == 0;
        self.sent += 1;
        let elapsed = u32::from(self.frame_ticks) * self.sent;
        if self.event.end || elapsed >= u32::from(self.total) {
            self.event.end = true;
            self.event.duration = self.total;
            self.ends_left -= 1;
        } else {
            // elapsed < total <= u16::MAX here.
            self.event.duration = elapsed as u16;
        }
        Some(DtmfPacket {
            payload: self.event.to_bytes(),
            marker: first,
            timestamp: self.timestamp,
        })
    }

    /// Whether every packet has been produced.
    pub fn is_done(&self) -> bool {
        self.ends_left == 0
    }
}

/// What the receiver saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfReceived {
    /// A new press began.
    Started(DtmfDigit),
    /// The press ended after `duration` timestamp units.
    Ended {
        /// The digit.
        digit: DtmfDigit,
        /// Its total duration.
        duration: u16,
    },
}

/// Turns telephone-event packets into presses: one `Started` and one `Ended` per event however
/// many retransmissions arrive, even if the start packets were lost.
#[derive(Debug, Clone, Copy, Default)]
pub struct DtmfReceiver {
    /// (RTP timestamp, ended) of the current or last event.
    current: Option<(u32, bool)>,
}

impl DtmfReceiver {
    /// Handles one telephone-event payload with its RTP timestamp. Returns up to two
    /// notifications (a lost start packet yields `Started` and `Ended` together).
    pub fn handle(
        &mut self,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<[Option<DtmfReceived>; 2], DtmfError> {
        let event = TelephoneEvent::parse(payload)?;
        let Some(digit) = DtmfDigit::from_event(event.event) else {
            // Not DTMF (flash, tones): ignored.
            return Ok([None, None]);
        };
        let mut out = [None, None];
        let is_new = self.current.is_none_or(|(ts, _)| ts != timestamp);
        if is_new {
            self.current = Some((timestamp, false));
            out[0] = Some(DtmfReceived::Started(digit));
        }
        if event.end && self.current.is_some_and(|(_, ended)| !ended) {
            self.current = Some((timestamp, true));
            out[1] = Some(DtmfReceived::Ended {
                digit,
                duration: event.duration,
            });
        }
        Ok(out)
    }
}

/// How many times the end packet is sent (RFC 4733 §2.5.1.4 recommends three).
const END_RETRANSMISSIONS: u8 = 3;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn payload_round_trip_and_known_bytes() {
        let event = TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: 1600,
        };
        assert_eq!(event.to_bytes(), [5, 0x8a, 0x06, 0x40]);
        assert_eq!(TelephoneEvent::parse(&event.to_bytes()).unwrap(), event);
        assert_eq!(TelephoneEvent::parse(&[1, 2]), Err(DtmfError::Truncated(2)));
        // Reserved R bit is ignored.
        assert_eq!(
            TelephoneEvent::parse(&[11, 0x4a, 0, 160]).unwrap(),
            TelephoneEvent {
                event: 11,
                end: false,
                volume: 10,
                duration: 160
            }
        );
    }

    #[test]
    fn digits_map_to_events_and_chars() {
        for (code, digit) in DtmfDigit::ALL.iter().enumerate() {
            assert_eq!(digit.event() as usize, code);
            assert_eq!(DtmfDigit::from_event(code as u8), Some(*digit));
            assert_eq!(DtmfDigit::from_char(digit.as_char()), Some(*digit));
        }
        assert_eq!(DtmfDigit::from_event(16), None);
        assert_eq!(DtmfDigit::from_char('#'), Some(DtmfDigit::Pound));
        assert_eq!(DtmfDigit::from_char('x'), None);
        assert_eq!(DtmfDigit::D5.frequencies(), (770.0, 1336.0));
    }

    #[test]
    fn sender_produces_marker_updates_and_three_ends() {
        // 100 ms at 8 kHz = 800 ticks, 160 per packet.
        let mut sender = DtmfSender::new(DtmfDigit::D7, 12_345, 800, 160, 10);
        let packets: Vec<_> = std::iter::from_fn(|| sender.poll_packet()).collect();
        assert!(sender.is_done());
        assert_eq!(packets.len(), 4 + 3);
        assert!(packets[0].marker);
        assert!(packets[1..].iter().all(|p| !p.marker));
        assert!(packets.iter().all(|p| p.timestamp == 12_345));
        let events: Vec<_> = packets
            .iter()
            .map(|p| TelephoneEvent::parse(&p.payload).unwrap())
            .collect();
        let durations: Vec<u16> = events.iter().map(|e| e.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        assert_eq!(events.iter().filter(|e| e.end).count(), 3);
        assert!(events.iter().all(|e| e.event == 7 && e.volume == 10));
    }

    #[test]
    fn sender_to_receiver_round_trip_with_loss_and_retransmissions() {
        let mut receiver = DtmfReceiver::default();
        let mut seen = Vec::new();
        for (digit, ts) in [(DtmfDigit::D1, 0u32), (DtmfDigit::Pound, 8000)] {
            let mut sender = DtmfSender::new(digit, ts, 640, 160, 10);
            let mut index = 0;
            while let Some(packet) = sender.poll_packet() {
                index += 1;
                if digit == DtmfDigit::Pound && index <= 2 {
                    continue; // lose the start of the second press
                }
                let notes = receiver.handle(packet.timestamp, &packet.payload).unwrap();
                seen.extend(notes.into_iter().flatten());
            }
        }
        assert_eq!(
            seen,
            [
                DtmfReceived::Started(DtmfDigit::D1),
                DtmfReceived::Ended {
                    digit: DtmfDigit::D1,
                    duration: 640
                },
                DtmfReceived::Started(DtmfDigit::Pound),
                DtmfReceived::Ended {
                    digit: DtmfDigit::Pound,
                    duration: 640
                },
            ]
        );
    }

    #[test]
    fn random_payloads_never_panic() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut receiver = DtmfReceiver::default();
        let mut buf = [0u8; 12];
        let mut ok = 0;
        for _ in 0..100_000 {
            let len = rng.random_range(0..buf.len());
            rng.fill(&mut buf[..len]);
            if receiver.handle(rng.random(), &buf[..len]).is_ok() {
                ok += 1;
            }
        }
        assert!(ok > 0);
    }
}
