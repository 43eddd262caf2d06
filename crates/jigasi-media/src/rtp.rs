//! RTP (RFC 3550 §5) for the SIP leg: zero-copy parsing, header writing, and the unwrapping of
//! 16-bit sequence numbers and 32-bit timestamps into monotonic 64-bit values.
//!
//! Parsing never panics: every length is checked and a malformed packet yields an [`RtpError`].
//! Nothing here allocates.

use jigasi_types::{PayloadType, Ssrc};

use crate::Blame;

/// Why an RTP packet was rejected. Every variant blames the peer (RFC 3550 §5.1, §5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Fewer bytes than the fixed header, the CSRC list or the extension announce.
    #[error("rtp packet truncated: need {needed} bytes, have {len}")]
    Truncated {
        /// Bytes the header says are needed.
        needed: usize,
        /// Bytes present.
        len: usize,
    },
    /// The version field is not 2.
    #[error("rtp version {0} is not 2")]
    BadVersion(u8),
    /// The padding count is zero or larger than the payload (RFC 3550 §5.1 "P").
    #[error("rtp padding length {padding} invalid for {available} payload bytes")]
    BadPadding {
        /// The padding count from the last byte.
        padding: u8,
        /// Bytes after the header.
        available: usize,
    },
    /// The output buffer is too small to write the packet.
    #[error("output buffer of {len} bytes too small for {needed}")]
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
}

impl RtpError {
    /// Who is to blame for this error.
    pub fn blame(&self) -> Blame {
        match self {
            Self::Truncated { .. } | Self::BadVersion(_) | Self::BadPadding { .. } => Blame::Peer,
            Self::BufferTooSmall { .. } => Blame::Internal,
        }
    }
}

/// A parsed RTP packet borrowing the datagram it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The marker bit (start of a talkspurt for audio, RFC 3551 §4.1).
    pub marker: bool,
    /// The payload type.
    pub payload_type: PayloadType,
    /// The 16-bit sequence number.
    pub sequence: u16,
    /// The 32-bit media timestamp.
    pub timestamp: u32,
    /// The synchronisation source.
    pub ssrc: Ssrc,
    /// The header extension (profile id and data), if the X bit is set.
    pub extension: Option<RtpExtension<'a>>,
    /// The payload, with padding removed.
    pub payload: &'a [u8],
}

/// An RTP header extension (RFC 3550 §5.3.1) with its 16-bit profile word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    /// The "defined by profile" word: `0xBEDE` for RFC 8285 one-byte elements.
    pub profile: u16,
    /// The extension data (a multiple of 4 bytes).
    pub data: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses one RTP packet. Never panics; malformed input yields an [`RtpError`].
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        let len = buf.len();
        let header: &[u8; FIXED_HEADER] = buf.first_chunk().ok_or(RtpError::Truncated {
            needed: FIXED_HEADER,
            len,
        })?;
        let version = header[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let has_padding = header[0] & 0x20 != 0;
        let has_extension = header[0] & 0x10 != 0;
        let csrc_count = usize::from(header[0] & 0x0f);
        let mut offset = FIXED_HEADER + 4 * csrc_count;
        if len < offset {
            return Err(RtpError::Truncated {
                needed: offset,
                len,
            });
        }
        let mut extension = None;
        if has_extension {
            let ext_header = buf.get(offset..offset + 4).ok_or(RtpError::Truncated {
                needed: offset + 4,
                len,
            })?;
            let profile = u16::from_be_bytes([ext_header[0], ext_header[1]]);
            let words = usize::from(u16::from_be_bytes([ext_header[2], ext_header[3]]));
            let start = offset + 4;
            let end = start + 4 * words;
            let data = buf
                .get(start..end)
                .ok_or(RtpError::Truncated { needed: end, len })?;
            extension = Some(RtpExtension { profile, data });
            offset = end;
        }
        let mut payload = &buf[offset..];
        if has_padding {
            let padding = payload.last().copied().unwrap_or(0);
            if padding == 0 || usize::from(padding) > payload.len() {
                return Err(RtpError::BadPadding {
                    padding,
                    available: payload.len(),
                });
            }
            payload = &payload[..payload.len() - usize::from(padding)];
        }
        Ok(Self {
            marker: header[1] & 0x80 != 0,
            payload_type: PayloadType::new(header[1] & 0x7f),
            sequence: u16::from_be_bytes([header[2], header[3]]),
            timestamp: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
            ssrc: Ssrc::new(u32::from_be_bytes([
                header[8], header[9], header[10], header[11],
            ])),
            extension,
            payload,
        })
    }

    /// The RFC 6464 audio level carried in RFC 8285 one-byte extension element `id`, if any.
    pub fn audio_level(&self, id: u8) -> Option<crate::level::AudioLevel> {
        let ext = self.extension?;
        if ext.profile != ONE_BYTE_PROFILE {
            return None;
        }
        one_byte_element(ext.data, id)
            .and_then(|data| data.first().copied())
            .map(crate::level::AudioLevel::from_wire)
    }
}

/// Finds RFC 8285 one-byte element `id` in extension data. Malformed data yields `None`.
fn one_byte_element(data: &[u8], id: u8) -> Option<&[u8]> {
    let mut index = 0;
    while let Some(&byte) = data.get(index) {
        if byte == 0 {
            // Padding between elements (RFC 8285 §4.2).
            index += 1;
            continue;
        }
        let element_id = byte >> 4;
        if element_id == 15 {
            // Reserved id: stop processing (RFC 8285 §4.2).
            return None;
        }
        let element_len = usize::from(byte & 0x0f) + 1;
        let body = data.get(index + 1..index + 1 + element_len)?;
        if element_id == id {
            return Some(body);
        }
        index += 1 + element_len;
    }
    None
}

/// The fields needed to write an RTP header (no CSRCs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// The marker bit.
    pub marker: bool,
    /// The payload type.
    pub payload_type: PayloadType,
    /// The sequence number.
    pub sequence: u16,
    /// The media timestamp.
    pub timestamp: u32,
    /// The synchronisation source.
    pub ssrc: Ssrc,
}

impl RtpHeader {
    /// Writes the 12-byte header and `payload` into `out`, returning the packet length.
    pub fn write(&self, payload: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
        let needed = FIXED_HEADER + payload.len();
        let Some(dest) = out.get_mut(..needed) else {
            return Err(RtpError::BufferTooSmall {
                needed,
                len: out.len(),
            });
        };
        dest[0] = 0x80;
        dest[1] = (u8::from(self.marker) << 7) | (self.payload_type.get() & 0x7f);
        dest[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        dest[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        dest[8..12].copy_from_slice(&self.ssrc.get().to_be_bytes());
        dest[FIXED_HEADER..].copy_from_slice(payload);
        Ok(needed)
    }
}

/// Numbers the packets of one outgoing RTP stream: sequence numbers and timestamps with the
/// initial values chosen by the caller (RFC 3550 §5.1 says random; pass them from an injected RNG).
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: Ssrc,
    payload_type: PayloadType,
    next_sequence: u16,
    timestamp: u32,
    packets: u64,
    octets: u64,
}

impl RtpSender {
    /// A sender starting at `first_sequence` and `first_timestamp`.
    pub fn new(
        ssrc: Ssrc,
        payload_type: PayloadType,
        first_sequence: u16,
        first_timestamp: u32,
    ) -> Self {
        Self {
            ssrc,
            payload_type,
            next_sequence: first_sequence,
            timestamp: first_timestamp,
            packets: 0,
            octets: 0,
        }
    }

    /// Writes a packet with the current timestamp and the next sequence number into `out`.
    pub fn write(
        &mut self,
        marker: bool,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        self.write_with(self.payload_type, self.timestamp, marker, payload, out)
    }

    /// Writes a packet with an explicit payload type and timestamp (telephone events keep the
    /// timestamp of the event start, RFC 4733 §2.5.1.2).
    pub fn write_with(
        &mut self,
        payload_type: PayloadType,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, RtpError> {
        let len = RtpHeader {
            marker,
            payload_type,
            sequence: self.next_sequence,
            timestamp,
            ssrc: self.ssrc,
        }
        .write(payload, out)?;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.packets += 1;
        self.octets += payload.len() as u64;
        Ok(len)
    }

    /// Advances the media timestamp by `ticks` (one frame, once per tick).
    pub fn advance(&mut self, ticks: u32) {
        self.timestamp = self.timestamp.wrapping_add(ticks);
    }

    /// The timestamp the next media packet carries.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// The SSRC of this stream.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// Packets written so far (for the RTCP sender report).
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Payload octets written so far (for the RTCP sender report).
    pub fn octets(&self) -> u64 {
        self.octets
    }
}

/// Extends 16-bit RTP sequence numbers to a monotonic 64-bit count across wrap-around.
///
/// Each value is placed at the extension closest to the previous highest one, so a reordered
/// packet just before a wrap stays before it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SequenceUnwrapper {
    highest: Option<u64>,
}

impl SequenceUnwrapper {
    /// Extends `sequence`.
    pub fn unwrap(&mut self, sequence: u16) -> u64 {
        let value = unwrap_near(self.highest, u64::from(sequence), 1 << 16);
        if self.highest.is_none_or(|highest| value > highest) {
            self.highest = Some(value);
        }
        value
    }
}

/// Extends 32-bit RTP timestamps to a monotonic 64-bit value across wrap-around.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimestampUnwrapper {
    highest: Option<u64>,
}

impl TimestampUnwrapper {
    /// Extends `timestamp`.
    pub fn unwrap(&mut self, timestamp: u32) -> u64 {
        let value = unwrap_near(self.highest, u64::from(timestamp), 1 << 32);
        if self.highest.is_none_or(|highest| value > highest) {
            self.highest = Some(value);
        }
        value
    }
}

/// Picks the value `raw + k * modulus` closest to `reference`. The first value is placed one
/// full cycle up so that a packet reordered before it never goes below zero.
fn unwrap_near(reference: Option<u64>, raw: u64, modulus: u64) -> u64 {
    let Some(reference) = reference else {
        return raw + modulus;
    };
    let cycle = reference / modulus;
    let candidates = [cycle.wrapping_sub(1), cycle, cycle + 1];
    let mut best = cycle * modulus + raw;
    let mut best_distance = u64::MAX;
    for c in candidates {
        let Some(value) = c.checked_mul(modulus).map(|base| base + raw) else {
            continue;
        };
        let distance = value.abs_diff(reference);
        if distance < best_distance {
            best = value;
            best_distance = distance;
        }
    }
    best
}

/// The RFC 8285 one-byte header extension profile word.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// Size of the fixed RTP header.
pub const FIXED_HEADER: usize = 12;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    fn sample_packet() -> Vec<u8> {
        let mut out = vec![0u8; 64];
        let n = RtpHeader {
            marker: true,
            payload_type: PayloadType::new(0),
            sequence: 0xfffe,
            timestamp: 0xdead_beef,
            ssrc: Ssrc::new(0x1234_5678),
        }
        .write(&[1, 2, 3, 4], &mut out)
        .unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn written_packet_parses_back() {
        let bytes = sample_packet();
        assert_eq!(bytes.len(), 16);
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert!(packet.marker);
        assert_eq!(packet.payload_type, PayloadType::new(0));
        assert_eq!(packet.sequence, 0xfffe);
        assert_eq!(packet.timestamp, 0xdead_beef);
        assert_eq!(packet.ssrc, Ssrc::new(0x1234_5678));
        assert_eq!(packet.payload, &[1, 2, 3, 4]);
        assert_eq!(packet.extension, None);
    }

    #[test]
    fn csrcs_extension_and_padding_are_skipped() {
        // V=2 P=1 X=1 CC=1, PT 111, one CSRC, a one-byte extension with audio level id 1.
        let mut bytes = vec![0xb1, 111, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        bytes.extend_from_slice(&[0, 0, 0, 9]); // CSRC
        bytes.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0x80 | 42, 0, 0]);
        bytes.extend_from_slice(&[7, 8, 9]); // payload
        bytes.extend_from_slice(&[0, 0, 3]); // padding of 3
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(packet.payload, &[7, 8, 9]);
        let level = packet.audio_level(1).unwrap();
        assert_eq!(level.level(), 42);
        assert!(level.voice());
        assert_eq!(packet.audio_level(2), None);
    }

    #[test]
    fn malformed_packets_get_typed_errors() {
        assert_eq!(
            RtpPacket::parse(&[0x80; 5]),
            Err(RtpError::Truncated { needed: 12, len: 5 })
        );
        let mut bytes = sample_packet();
        bytes[0] = 0x40;
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::BadVersion(1)));
        bytes[0] = 0x8f; // 15 CSRCs announced
        assert!(matches!(
            RtpPacket::parse(&bytes),
            Err(RtpError::Truncated { needed: 72, .. })
        ));
        bytes[0] = 0xa0; // padding, last byte 4 > ok? payload is 4 bytes, pad 4 leaves 0
        assert_eq!(RtpPacket::parse(&bytes).unwrap().payload, &[] as &[u8]);
        let last = bytes.len() - 1;
        bytes[last] = 9;
        assert_eq!(
            RtpPacket::parse(&bytes),
            Err(RtpError::BadPadding {
                padding: 9,
                available: 4
            })
        );
        bytes[0] = 0x90; // extension header announced, 4 bytes present but length word too big
        bytes[12..16].copy_from_slice(&[0xbe, 0xde, 0, 5]);
        assert!(matches!(
            RtpPacket::parse(&bytes),
            Err(RtpError::Truncated { needed: 36, .. })
        ));
    }

    #[test]
    fn write_reports_small_buffer() {
        let header = RtpHeader {
            marker: false,
            payload_type: PayloadType::new(8),
            sequence: 1,
            timestamp: 2,
            ssrc: Ssrc::new(3),
        };
        let mut out = [0u8; 13];
        assert_eq!(
            header.write(&[0; 4], &mut out),
            Err(RtpError::BufferTooSmall {
                needed: 16,
                len: 13
            })
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let mut buf = [0u8; 96];
        let mut parsed = 0;
        for _ in 0..200_000 {
            let len = rng.random_range(0..buf.len());
            rng.fill(&mut buf[..len]);
            // Force version 2 half of the time so the deeper paths are exercised.
            if len > 0 && rng.random_bool(0.5) {
                buf[0] = 0x80 | (buf[0] & 0x3f);
            }
            if let Ok(packet) = RtpPacket::parse(&buf[..len]) {
                parsed += 1;
                assert!(packet.payload.len() <= len);
                let _ = packet.audio_level(1);
            }
        }
        assert!(parsed > 1000, "the loop must reach the success path too");
    }

    #[test]
    fn sequence_unwrap_handles_wrap_and_reorder() {
        let mut unwrapper = SequenceUnwrapper::default();
        let first = unwrapper.unwrap(65_534);
        assert_eq!(unwrapper.unwrap(65_535), first + 1);
        assert_eq!(unwrapper.unwrap(1), first + 3);
        // A late packet from before the wrap stays before it.
        assert_eq!(unwrapper.unwrap(65_535), first + 1);
        assert_eq!(unwrapper.unwrap(0), first + 2);
        // Reordered packet before the very first one does not underflow.
        let mut fresh = SequenceUnwrapper::default();
        let a = fresh.unwrap(0);
        assert_eq!(fresh.unwrap(65_535), a - 1);
    }

    #[test]
    fn timestamp_unwrap_handles_wrap() {
        let mut unwrapper = TimestampUnwrapper::default();
        let first = unwrapper.unwrap(u32::MAX - 959);
        assert_eq!(unwrapper.unwrap(0), first + 960);
        assert_eq!(unwrapper.unwrap(960), first + 1920);
        assert_eq!(unwrapper.unwrap(u32::MAX - 959), first);
    }

    #[test]
    fn sender_numbers_packets() {
        let mut sender = RtpSender::new(Ssrc::new(5), PayloadType::new(0), u16::MAX, 100);
        let mut out = [0u8; 32];
        let n = sender.write(false, &[1; 4], &mut out).unwrap();
        assert_eq!(RtpPacket::parse(&out[..n]).unwrap().sequence, u16::MAX);
        sender.advance(160);
        let n = sender.write(false, &[1; 4], &mut out).unwrap();
        let packet = RtpPacket::parse(&out[..n]).unwrap();
        assert_eq!(packet.sequence, 0);
        assert_eq!(packet.timestamp, 260);
        assert_eq!(sender.packets(), 2);
        assert_eq!(sender.octets(), 8);
    }
}
