//! RTP parsing, the audio-level extension lookup, and a write/parse round trip.
#![no_main]

use jigasi_media::rtp::{RtpHeader, RtpPacket};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = RtpPacket::parse(data) else {
        return;
    };
    assert!(packet.payload.len() <= data.len());
    let _ = packet.audio_level(1);
    let mut out = vec![0u8; 12 + packet.payload.len()];
    let header = RtpHeader {
        marker: packet.marker,
        payload_type: packet.payload_type,
        sequence: packet.sequence,
        timestamp: packet.timestamp,
        ssrc: packet.ssrc,
    };
    if let Ok(n) = header.write(packet.payload, &mut out) {
        let again = RtpPacket::parse(&out[..n]).expect("our own packet parses");
        assert_eq!(again.payload, packet.payload);
        assert_eq!(again.sequence, packet.sequence);
    }
});
