//! Compound RTCP parsing: every packet and report block, never a panic.
#![no_main]

use jigasi_media::rtcp::{NtpTime, RtcpPacket, parse_compound};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for packet in parse_compound(data) {
        let Ok(packet) = packet else {
            break;
        };
        let reports = match packet {
            RtcpPacket::SenderReport { reports, .. }
            | RtcpPacket::ReceiverReport { reports, .. } => reports,
            RtcpPacket::Other { .. } => continue,
        };
        for block in reports.iter() {
            let _ = block.round_trip_time(NtpTime(u64::MAX));
        }
    }
});
