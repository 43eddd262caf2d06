//! RFC 4733 telephone-event payloads: parsing, the receiver state machine, and a round trip.
#![no_main]

use jigasi_media::dtmf::{DtmfReceiver, TelephoneEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = TelephoneEvent::parse(data) {
        let again = TelephoneEvent::parse(&event.to_bytes()).expect("our own payload parses");
        assert_eq!(again.event, event.event);
        assert_eq!(again.duration, event.duration);
    }
    let mut receiver = DtmfReceiver::default();
    for (i, chunk) in data.chunks(6).enumerate() {
        let timestamp = chunk.first().map_or(0, |&b| u32::from(b) * 160);
        let _ = receiver.handle(timestamp.wrapping_add(i as u32 / 4), chunk);
    }
});
