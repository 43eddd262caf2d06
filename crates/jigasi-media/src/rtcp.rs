//! RTCP sender and receiver reports (RFC 3550 §6.4): zero-copy parsing of compound packets and
//! writing of SR/RR, enough for loss, jitter and round-trip time counters.
//!
//! Packet types other than SR and RR (SDES, BYE, APP, feedback) are returned as
//! [`RtcpPacket::Other`] so that a compound packet can be walked to the end.

use jigasi_types::Ssrc;

use crate::Blame;

/// Why an RTCP packet was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Fewer bytes than the header or the length field announce.
    #[error("rtcp packet truncated: need {needed} bytes, have {len}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        len: usize,
    },
    /// The version field is not 2.
    #[error("rtcp version {0} is not 2")]
    BadVersion(u8),
    /// The report count does not fit the packet length.
    #[error("rtcp report count {count} does not fit {len} bytes")]
    BadReportCount {
        /// Announced report blocks.
        count: u8,
        /// Bytes in the packet.
        len: usize,
    },
    /// The output buffer is too small.
    #[error("output buffer of {len} bytes too small for {needed}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
    /// More than 31 report blocks were given to a writer.
    #[error("{0} report blocks do not fit one rtcp packet")]
    TooManyReports(usize),
}

impl RtcpError {
    /// Who is to blame for this error.
    pub fn blame(&self) -> Blame {
        match self {
            Self::Truncated { .. } | Self::BadVersion(_) | Self::BadReportCount { .. } => {
                Blame::Peer
            }
            Self::BufferTooSmall { .. } | Self::TooManyReports(_) => Blame::Internal,
        }
    }
}

/// A 64-bit NTP timestamp (RFC 3550 §4): seconds since 1900 in the high word, fraction below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// Converts a duration since the Unix epoch (the caller reads the wall clock).
    pub fn from_unix(since_epoch: std::time::Duration) -> Self {
        let seconds = since_epoch.as_secs() + UNIX_TO_NTP_SECONDS;
        let fraction = (u64::from(since_epoch.subsec_nanos()) << 32) / 1_000_000_000;
        Self((seconds << 32) | fraction)
    }

    /// The middle 32 bits, as used by LSR and for RTT (RFC 3550 §6.4.1).
    pub fn middle32(self) -> u32 {
        // Truncation is the point: bits 16..48.
        (self.0 >> 16) as u32
    }
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: Ssrc,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed on the wire).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_sequence: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP time (0 if none).
    pub last_sr: u32,
    /// Delay since that SR in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn parse(bytes: &[u8; REPORT_BLOCK]) -> Self {
        let word =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let lost_raw = word(4) & 0x00ff_ffff;
        // Sign-extend the 24-bit field.
        let cumulative_lost = ((lost_raw << 8) as i32) >> 8;
        Self {
            ssrc: Ssrc::new(word(0)),
            fraction_lost: bytes[4],
            cumulative_lost,
            highest_sequence: word(8),
            jitter: word(12),
            last_sr: word(16),
            delay_since_last_sr: word(20),
        }
    }

    fn write(&self, out: &mut [u8; REPORT_BLOCK]) {
        out[0..4].copy_from_slice(&self.ssrc.get().to_be_bytes());
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
        out[4..8].copy_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        out[8..12].copy_from_slice(&self.highest_sequence.to_be_bytes());
        out[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&self.last_sr.to_be_bytes());
        out[20..24].copy_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }

    /// The round-trip time this block implies when it arrived at `arrival` (RFC 3550 §6.4.1:
    /// `A - LSR - DLSR`). `None` if the peer has not seen a sender report from us yet or the
    /// arithmetic goes negative (clock nonsense from the peer).
    pub fn round_trip_time(&self, arrival: NtpTime) -> Option<std::time::Duration> {
        if self.last_sr == 0 {
            return None;
        }
        let rtt = arrival
            .middle32()
            .checked_sub(self.last_sr)?
            .checked_sub(self.delay_since_last_sr)?;
        Some(std::time::Duration::from_nanos(
            (u64::from(rtt) * 1_000_000_000) >> 16,
        ))
    }
}

/// Sender information of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// Wall-clock time of the report.
    pub ntp_time: NtpTime,
    /// The RTP timestamp matching `ntp_time`.
    pub rtp_time: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    /// A receiver report.
    ReceiverReport {
        /// The reporter.
        sender: Ssrc,
        /// The report blocks.
        reports: ReportBlocks<'a>,
    },
    /// A sender report.
    SenderReport {
        /// The sender.
        sender: Ssrc,
        /// Its sender information.
        info: SenderInfo,
        /// The report blocks.
        reports: ReportBlocks<'a>,
    },
    /// Any other packet type (SDES, BYE, APP, feedback), skipped.
    Other {
        /// The packet type.
        packet_type: u8,
    },
}

/// The report blocks of an SR or RR, parsed lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlocks<'a> {
    bytes: &'a [u8],
}

impl ReportBlocks<'_> {
    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.bytes.len() / REPORT_BLOCK
    }

    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.bytes.len() < REPORT_BLOCK
    }

    /// Iterates over the blocks.
    pub fn iter(&self) -> impl Iterator<Item = ReportBlock> + '_ {
        self.bytes
            .chunks_exact(REPORT_BLOCK)
            .filter_map(|chunk| chunk.first_chunk().map(ReportBlock::parse))
    }
}

/// Iterates over the packets of a compound RTCP datagram. After the first error it stops.
#[derive(Debug, Clone)]
pub struct RtcpIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// Walks a compound RTCP datagram (RFC 3550 §6.1).
pub fn parse_compound(buf: &[u8]) -> RtcpIter<'_> {
    RtcpIter {
        rest: buf,
        failed: false,
    }
}

impl<'a> Iterator for RtcpIter<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let result = parse_one(self.rest);
        match result {
            Ok((packet, used)) => {
                self.rest = &self.rest[used..];
                Some(Ok(packet))
            }
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}

fn parse_one(buf: &[u8]) -> Result<(RtcpPacket<'_>, usize), RtcpError> {
    let len = buf.len();
    let header: &[u8; 4] = buf
        .first_chunk()
        .ok_or(RtcpError::Truncated { needed: 4, len })?;
    let version = header[0] >> 6;
    if version != 2 {
        return Err(RtcpError::BadVersion(version));
    }
    let count = header[0] & 0x1f;
    let packet_type = header[1];
    let total = 4 * (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1);
    let packet = buf
        .get(..total)
        .ok_or(RtcpError::Truncated { needed: total, len })?;
    let body = &packet[4..];
    let reports_from = |offset: usize| -> Result<ReportBlocks<'_>, RtcpError> {
        let needed = offset + usize::from(count) * REPORT_BLOCK;
        let bytes = body
            .get(offset..needed)
            .ok_or(RtcpError::BadReportCount { count, len: total })?;
        Ok(ReportBlocks { bytes })
    };
    let ssrc_at = |offset: usize| -> Result<Ssrc, RtcpError> {
        body.get(offset..offset + 4)
            .and_then(|b| b.first_chunk::<4>())
            .map(|b| Ssrc::new(u32::from_be_bytes(*b)))
            .ok_or(RtcpError::Truncated {
                needed: 4 + offset + 4,
                len: total,
            })
    };
    let word = |offset: usize| -> u32 {
        body.get(offset..offset + 4)
            .and_then(|b| b.first_chunk::<4>())
            .map_or(0, |b| u32::from_be_bytes(*b))
    };
    let parsed = match packet_type {
        PT_SR => {
            if body.len() < SR_SENDER_INFO {
                return Err(RtcpError::Truncated {
                    needed: 4 + SR_SENDER_INFO,
                    len: total,
                });
            }
            let info = SenderInfo {
                ntp_time: NtpTime((u64::from(word(4)) << 32) | u64::from(word(8))),
                rtp_time: word(12),
                packet_count: word(16),
                octet_count: word(20),
            };
            RtcpPacket::SenderReport {
                sender: ssrc_at(0)?,
                info,
                reports: reports_from(SR_SENDER_INFO)?,
            }
        }
        PT_RR => RtcpPacket::ReceiverReport {
            sender: ssrc_at(0)?,
            reports: reports_from(4)?,
        },
        other => RtcpPacket::Other { packet_type: other },
    };
    Ok((parsed, total))
}

/// Writes a sender report with up to 31 report blocks into `out`, returning its length.
pub fn write_sender_report(
    sender: Ssrc,
    info: &SenderInfo,
    reports: &[ReportBlock],
    out: &mut [u8],
) -> Result<usize, RtcpError> {
    let mut body = [0u8; SR_SENDER_INFO];
    body[0..4].copy_from_slice(&sender.get().to_be_bytes());
    body[4..12].copy_from_slice(&info.ntp_time.0.to_be_bytes());
    body[12..16].copy_from_slice(&info.rtp_time.to_be_bytes());
    body[16..20].copy_from_slice(&info.packet_count.to_be_bytes());
    body[20..24].copy_from_slice(&info.octet_count.to_be_bytes());
    write_report(PT_SR, &body, reports, out)
}

/// Writes a receiver report with up to 31 report blocks into `out`, returning its length.
pub fn write_receiver_report(
    sender: Ssrc,
    reports: &[ReportBlock],
    out: &mut [u8],
) -> Result<usize, RtcpError> {
    write_report(PT_RR, &sender.get().to_be_bytes(), reports, out)
}

fn write_report(
    packet_type: u8,
    fixed: &[u8],
    reports: &[ReportBlock],
    out: &mut [u8],
) -> Result<usize, RtcpError> {
    if reports.len() > 31 {
        return Err(RtcpError::TooManyReports(reports.len()));
    }
    let needed = 4 + fixed.len() + reports.len() * REPORT_BLOCK;
    let Some(dest) = out.get_mut(..needed) else {
        return Err(RtcpError::BufferTooSmall {
            needed,
            len: out.len(),
        });
    };
    // `reports.len() <= 31` was checked above, so the count fits 5 bits.
    dest[0] = 0x80 | reports.len() as u8;
    dest[1] = packet_type;
    // `needed` is at most 4 + 24 + 31 * 24 bytes, far below 2^18.
    dest[2..4].copy_from_slice(&((needed / 4 - 1) as u16).to_be_bytes());
    dest[4..4 + fixed.len()].copy_from_slice(fixed);
    let blocks = &mut dest[4 + fixed.len()..];
    for (report, chunk) in reports.iter().zip(blocks.chunks_exact_mut(REPORT_BLOCK)) {
        if let Some(chunk) = chunk.first_chunk_mut() {
            report.write(chunk);
        }
    }
    Ok(needed)
}

/// Writes an SDES packet with one chunk carrying only a CNAME item (RFC 3550 §6.5, §6.5.1)
/// into `out`, returning its length. Every compound RTCP packet must carry one (§6.1).
/// A CNAME longer than 255 bytes is cut to 255.
pub fn write_sdes_cname(source: Ssrc, cname: &[u8], out: &mut [u8]) -> Result<usize, RtcpError> {
    let cname = cname.get(..255).unwrap_or(cname);
    // Header, SSRC, item type and length, the text, then at least one zero octet ending the
    // item list, padded to 32 bits.
    let needed = (4 + 4 + 2 + cname.len() + 1).next_multiple_of(4);
    let Some(dest) = out.get_mut(..needed) else {
        return Err(RtcpError::BufferTooSmall {
            needed,
            len: out.len(),
        });
    };
    dest.fill(0);
    dest[0] = 0x81;
    dest[1] = PT_SDES;
    // `needed` is at most 268 bytes.
    dest[2..4].copy_from_slice(&((needed / 4 - 1) as u16).to_be_bytes());
    dest[4..8].copy_from_slice(&source.get().to_be_bytes());
    dest[8] = SDES_CNAME;
    // Cut to 255 above.
    dest[9] = cname.len() as u8;
    dest[10..10 + cname.len()].copy_from_slice(cname);
    Ok(needed)
}

/// Writes a BYE packet for one source without a reason (RFC 3550 §6.6) into `out`, returning
/// its length.
pub fn write_bye(source: Ssrc, out: &mut [u8]) -> Result<usize, RtcpError> {
    let Some(dest) = out.get_mut(..8) else {
        return Err(RtcpError::BufferTooSmall {
            needed: 8,
            len: out.len(),
        });
    };
    dest[..4].copy_from_slice(&[0x81, PT_BYE, 0, 1]);
    dest[4..8].copy_from_slice(&source.get().to_be_bytes());
    Ok(8)
}

/// Whether a datagram on a muxed port is RTCP rather than RTP (RFC 5761 §4: PT 192..=223).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.get(1).is_some_and(|&pt| (192..=223).contains(&pt))
}

const PT_SR: u8 = 200;
const PT_RR: u8 = 201;
const PT_SDES: u8 = 202;
const PT_BYE: u8 = 203;
const SDES_CNAME: u8 = 1;
const REPORT_BLOCK: usize = 24;
const SR_SENDER_INFO: usize = 24;
/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const UNIX_TO_NTP_SECONDS: u64 = 2_208_988_800;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    fn block(ssrc: u32) -> ReportBlock {
        ReportBlock {
            ssrc: Ssrc::new(ssrc),
            fraction_lost: 25,
            cumulative_lost: -3,
            highest_sequence: 0x0001_0005,
            jitter: 77,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 0x0001_0000,
        }
    }

    #[test]
    fn compound_sr_rr_round_trip() {
        let mut buf = [0u8; 200];
        let info = SenderInfo {
            ntp_time: NtpTime(0x0102_0304_0506_0708),
            rtp_time: 960,
            packet_count: 50,
            octet_count: 4000,
        };
        let a = write_sender_report(Ssrc::new(1), &info, &[block(9)], &mut buf).unwrap();
        assert_eq!(a, 52);
        let b = write_receiver_report(Ssrc::new(2), &[block(7), block(8)], &mut buf[a..]).unwrap();
        // A BYE after them: skipped as Other.
        buf[a + b..a + b + 8].copy_from_slice(&[0x81, 203, 0, 1, 0, 0, 0, 1]);
        let packets: Vec<_> = parse_compound(&buf[..a + b + 8])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(packets.len(), 3);
        let RtcpPacket::SenderReport {
            sender,
            info: got,
            reports,
        } = packets[0]
        else {
            panic!("expected SR, got {:?}", packets[0]);
        };
        assert_eq!(sender, Ssrc::new(1));
        assert_eq!(got, info);
        assert_eq!(reports.iter().collect::<Vec<_>>(), vec![block(9)]);
        let RtcpPacket::ReceiverReport { sender, reports } = packets[1] else {
            panic!("expected RR");
        };
        assert_eq!(sender, Ssrc::new(2));
        assert_eq!(reports.len(), 2);
        assert_eq!(reports.iter().nth(1), Some(block(8)));
        assert_eq!(packets[2], RtcpPacket::Other { packet_type: 203 });
    }

    #[test]
    fn garbage_gets_typed_errors() {
        assert_eq!(
            parse_compound(&[0x80, 201]).next(),
            Some(Err(RtcpError::Truncated { needed: 4, len: 2 }))
        );
        assert_eq!(
            parse_compound(&[0x40, 201, 0, 1, 0, 0, 0, 0]).next(),
            Some(Err(RtcpError::BadVersion(1)))
        );
        // RR announcing 2 blocks in 8 bytes.
        assert_eq!(
            parse_compound(&[0x82, 201, 0, 1, 0, 0, 0, 0]).next(),
            Some(Err(RtcpError::BadReportCount { count: 2, len: 8 }))
        );
        // SR shorter than the sender info.
        assert!(matches!(
            parse_compound(&[0x80, 200, 0, 1, 0, 0, 0, 0]).next(),
            Some(Err(RtcpError::Truncated { .. }))
        ));
        // Length field larger than the datagram.
        assert_eq!(
            parse_compound(&[0x80, 201, 0, 9, 0, 0, 0, 0]).next(),
            Some(Err(RtcpError::Truncated { needed: 40, len: 8 }))
        );
        let mut iter = parse_compound(&[0x40, 0, 0, 0]);
        assert!(iter.next().is_some_and(|r| r.is_err()));
        assert_eq!(iter.next(), None, "stops after the first error");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = StdRng::seed_from_u64(42);
        let mut buf = [0u8; 128];
        let mut reports = 0;
        for _ in 0..200_000 {
            let len = rng.random_range(0..buf.len());
            rng.fill(&mut buf[..len]);
            if len >= 4 && rng.random_bool(0.7) {
                buf[0] = 0x80 | (buf[0] & 0x03);
                buf[1] = if rng.random_bool(0.5) { 200 } else { 201 };
                buf[2] = 0;
                buf[3] = rng.random_range(0..(len / 4) as u8 + 2);
            }
            for packet in parse_compound(&buf[..len]) {
                if let Ok(RtcpPacket::ReceiverReport { reports: r, .. }) = packet {
                    reports += r.iter().count();
                }
            }
        }
        assert!(reports > 0, "the loop must reach the success path too");
    }

    #[test]
    fn rtt_from_lsr_and_dlsr() {
        // SR sent at NTP middle 0x0001_0000 (1 s), peer held it 0.25 s, reply arrives at 1.5 s.
        let report = ReportBlock {
            last_sr: 0x0001_0000,
            delay_since_last_sr: 0x0000_4000,
            ..ReportBlock::default()
        };
        let arrival = NtpTime(0x0001_8000u64 << 16);
        assert_eq!(
            report.round_trip_time(arrival),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            ReportBlock::default().round_trip_time(arrival),
            None,
            "no SR seen yet"
        );
    }

    #[test]
    fn sdes_cname_and_bye_are_well_formed_compound_parts() {
        let mut buf = [0u8; 128];
        let a = write_receiver_report(Ssrc::new(5), &[], &mut buf).unwrap();
        let b = write_sdes_cname(Ssrc::new(5), b"jigasi-rs", &mut buf[a..]).unwrap();
        // 4 + 4 + 2 + 9 + 1 = 20 bytes, already a multiple of 4.
        assert_eq!(b, 20);
        assert_eq!(&buf[a..a + 4], &[0x81, 202, 0, 4]);
        assert_eq!(&buf[a + 8..a + 19], b"\x01\x09jigasi-rs");
        assert_eq!(buf[a + 19], 0, "item list ends with a zero octet");
        let c = write_bye(Ssrc::new(5), &mut buf[a + b..]).unwrap();
        let packets: Vec<_> = parse_compound(&buf[..a + b + c])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            packets[1..],
            [
                RtcpPacket::Other { packet_type: 202 },
                RtcpPacket::Other { packet_type: 203 }
            ]
        );
        // A CNAME of 8 bytes needs padding: 4 + 4 + 2 + 8 + 1 = 19 → 20.
        assert_eq!(
            write_sdes_cname(Ssrc::new(5), b"12345678", &mut buf).unwrap(),
            20
        );
        assert!(matches!(
            write_sdes_cname(Ssrc::new(5), b"12345678", &mut buf[..19]),
            Err(RtcpError::BufferTooSmall { needed: 20, .. })
        ));
        assert!(write_bye(Ssrc::new(5), &mut buf[..7]).is_err());
    }

    #[test]
    fn ntp_from_unix_and_rtcp_demux() {
        let ntp = NtpTime::from_unix(Duration::from_millis(1500));
        assert_eq!(ntp.0 >> 32, UNIX_TO_NTP_SECONDS + 1);
        assert_eq!(ntp.0 & 0xffff_ffff, 1 << 31);
        assert!(is_rtcp(&[0x80, 200]));
        assert!(!is_rtcp(&[0x80, 0]));
        assert!(!is_rtcp(&[0x80, 111]));
    }
}
