//! SRTP/SRTCP unprotect of arbitrary bytes for both suites: an error or a shorter packet, never
//! a panic; and whatever we protect, a fresh receiver with the same key unprotects back.
#![no_main]

use jigasi_media::srtp::{MAX_OVERHEAD, SrtpMasterKey, SrtpReceiver, SrtpSender, SrtpSuite};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SrtpMasterKey::new(&[0x5a; 30]);
    for suite in [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ] {
        let mut receiver = SrtpReceiver::new(suite, &key);
        let mut buf = data.to_vec();
        if let Ok(len) = receiver.unprotect_rtp(&mut buf) {
            assert!(len < data.len());
        }
        let mut buf = data.to_vec();
        if let Ok(len) = receiver.unprotect_rtcp(&mut buf) {
            assert!(len < data.len());
        }

        let mut sender = SrtpSender::new(suite, &key);
        let mut buf = data.to_vec();
        buf.resize(data.len() + MAX_OVERHEAD, 0);
        if let Ok(n) = sender.protect_rtp(&mut buf, data.len()) {
            let mut fresh = SrtpReceiver::new(suite, &key);
            let len = fresh
                .unprotect_rtp(&mut buf[..n])
                .expect("our own SRTP unprotects");
            assert_eq!(&buf[..len], data);
        }
        let mut buf = data.to_vec();
        buf.resize(data.len() + MAX_OVERHEAD, 0);
        if let Ok(n) = sender.protect_rtcp(&mut buf, data.len()) {
            let mut fresh = SrtpReceiver::new(suite, &key);
            let len = fresh
                .unprotect_rtcp(&mut buf[..n])
                .expect("our own SRTCP unprotects");
            assert_eq!(&buf[..len], data);
        }
    }
});
