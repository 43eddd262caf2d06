//! SDES-SRTP on the phone leg at the `Call` boundary: the policy decides what is accepted, our
//! key goes into the answer, the phone's key checks what it sends, and a re-INVITE keeps or
//! rekeys the contexts.

// Tests take one real instant as the base of their virtual clock.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use jigasi_media::SrtpSender;
use jigasi_media::rtp::RtpHeader;

use super::*;

const ROOM: &str = "room1@conference.meet.example.com";
const PHONE: &str = "192.0.2.10:4000";
const GATEWAY_PHONE_RTP: &str = "10.0.0.2:30000";
const OUR_KEY: SdesKey = [0x42; 30];

/// Standard base64 with padding (RFC 4648 §4), as in `inline:` keys.
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let word = chunk
            .iter()
            .enumerate()
            .fold(0u32, |w, (i, &b)| w | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(word >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A phone's offer: `proto` with one crypto line per `(tag, suite, key)`.
fn offer(version: u32, proto: &str, crypto: &[(u32, &str, [u8; 30])]) -> String {
    let mut sdp = format!(
        "v=0\r\no=phone 1 {version} IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
         m=audio 4000 {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\na=sendrecv\r\n"
    );
    for (tag, suite, key) in crypto {
        sdp.push_str(&format!("a=crypto:{tag} {suite} inline:{}\r\n", b64(key)));
    }
    sdp
}

fn config(srtp: SrtpPolicy) -> CallConfig {
    CallConfig {
        id: CallId::new(7),
        conference: ConferenceConfig {
            room: jid::BareJid::new(ROOM).unwrap(),
            nick: "d3adb33f".into(),
            password: None,
            focus_component: "focus.meet.example.com".into(),
            focus_nick: "focus".into(),
            display_name: None,
            region: None,
            version: None,
            stats_id: None,
            initiator_headers: Vec::new(),
            machine_uid: "m".into(),
            invite_timeout: Some(Duration::from_secs(30)),
            media_addrs: vec!["10.0.0.2:20000".parse().unwrap()],
            ssrc: Ssrc::new(0x0bad_cafe),
            msid_uuid: "uuid".into(),
        },
        phone_rtp: GATEWAY_PHONE_RTP.parse().unwrap(),
        codecs: jigasi_sip_core::sdp::jigasi_default_codecs(),
        srtp,
        sdes_key: (srtp != SrtpPolicy::Off).then(|| Secret::new(OUR_KEY)),
        sdes_suites: vec![
            SdesSuite::AesCm128HmacSha1_80,
            SdesSuite::AesCm128HmacSha1_32,
        ],
        phone_ssrc: Ssrc::new(0x1234_5678),
        sdp_session_id: 42,
        first_sequence: 100,
        first_timestamp: 1000,
        dtmf_method: DtmfToPhone::Auto,
        dtmf_minimal_tone: Duration::from_millis(70),
        media_dropped_threshold: None,
        hangup_on_media_dropped: false,
        wall_clock: WallClock {
            at: Instant::now(),
            since_unix_epoch: Duration::from_secs(1_795_323_967),
        },
        rtcp_seed: 7,
    }
}

/// One 20 ms PCMU packet from the phone, SRTP-protected with `sender`.
fn srtp_packet(sender: &mut SrtpSender, sequence: u16) -> Vec<u8> {
    let mut packet = vec![0u8; 12 + 160 + jigasi_media::srtp::MAX_OVERHEAD];
    let len = RtpHeader {
        marker: false,
        payload_type: PayloadType::new(0),
        sequence,
        timestamp: u32::from(sequence) * 160,
        ssrc: Ssrc::new(0xfeed),
    }
    .write(&[0xff; 160], &mut packet)
    .unwrap();
    let len = sender.protect_rtp(&mut packet, len).unwrap();
    packet.truncate(len);
    packet
}

fn from_phone(call: &mut Call, now: Instant, packet: &[u8]) {
    call.handle_datagram(
        now,
        MediaSocket::Phone,
        PHONE.parse().unwrap(),
        GATEWAY_PHONE_RTP.parse().unwrap(),
        packet,
    );
}

fn phone_key(fill: u8) -> [u8; 30] {
    [fill; 30]
}

#[test]
fn the_policy_decides_which_offers_are_accepted() {
    let savp = offer(
        1,
        "RTP/SAVP",
        &[(1, "AES_CM_128_HMAC_SHA1_80", phone_key(1))],
    );
    let plain = offer(1, "RTP/AVP", &[]);
    // SRTP off (Jigasi's default): an RTP/SAVP offer is refused with 488.
    let error = Call::dial_in(config(SrtpPolicy::Off), savp.as_bytes()).unwrap_err();
    assert_eq!(error.sip_status(), 488);
    assert!(Call::dial_in(config(SrtpPolicy::Off), plain.as_bytes()).is_ok());
    // Mandatory: plain RTP is refused.
    let error = Call::dial_in(config(SrtpPolicy::Required), plain.as_bytes()).unwrap_err();
    assert_eq!(error.sip_status(), 488);
    let call = Call::dial_in(config(SrtpPolicy::Required), savp.as_bytes()).unwrap();
    assert_eq!(
        call.phone_srtp().map(|s| s.suite),
        Some(SrtpSuite::AesCm128HmacSha1_80)
    );
    // Optional takes either; plain RTP stays plain.
    let call = Call::dial_in(config(SrtpPolicy::Optional), plain.as_bytes()).unwrap();
    assert!(call.phone_srtp().is_none());
}

#[test]
fn srtp_from_the_phone_must_carry_its_key_and_rekeying_follows_the_re_invite() {
    let now = Instant::now();
    let suite = "AES_CM_128_HMAC_SHA1_32";
    let mut call = Call::dial_in(
        config(SrtpPolicy::Optional),
        offer(1, "RTP/AVP", &[(5, suite, phone_key(1))]).as_bytes(),
    )
    .unwrap();
    let mut phone = SrtpSender::new(
        SrtpSuite::AesCm128HmacSha1_32,
        &SrtpMasterKey::new(&phone_key(1)),
    );
    for sequence in 0..3 {
        from_phone(&mut call, now, &srtp_packet(&mut phone, sequence));
    }
    // Plain RTP on an SRTP leg is dropped and counted.
    let mut plain = [0u8; 200];
    let len = RtpHeader {
        marker: false,
        payload_type: PayloadType::new(0),
        sequence: 3,
        timestamp: 480,
        ssrc: Ssrc::new(0xfeed),
    }
    .write(&[0xff; 160], &mut plain)
    .unwrap();
    from_phone(&mut call, now, &plain[..len]);
    let stats = call.phone_srtp().unwrap();
    assert_eq!(stats.suite, SrtpSuite::AesCm128HmacSha1_32);
    assert_eq!(
        (stats.received.rtp_packets, stats.received.auth_failures),
        (3, 1)
    );

    // A re-INVITE with the same crypto: our answer repeats our key under the phone's tag, and
    // the phone's stream goes on (a replay of an old packet is still caught).
    let answer = call
        .answer_re_offer(offer(2, "RTP/AVP", &[(5, suite, phone_key(1))]).as_bytes())
        .unwrap();
    let ours = format!("a=crypto:5 {suite} inline:{}", b64(&OUR_KEY));
    assert!(answer.contains(&ours), "{answer}");
    let replay = srtp_packet(
        &mut SrtpSender::new(
            SrtpSuite::AesCm128HmacSha1_32,
            &SrtpMasterKey::new(&phone_key(1)),
        ),
        0,
    );
    from_phone(&mut call, now, &replay);
    from_phone(&mut call, now, &srtp_packet(&mut phone, 3));
    let stats = call.phone_srtp().unwrap();
    assert_eq!(
        (stats.received.rtp_packets, stats.received.replayed),
        (4, 1)
    );

    // The phone rekeys and switches to the 80-bit suite: old-key packets now fail, new ones
    // pass; our key stays (the answer carries it again).
    let suite80 = "AES_CM_128_HMAC_SHA1_80";
    let answer = call
        .answer_re_offer(offer(3, "RTP/SAVP", &[(9, suite80, phone_key(2))]).as_bytes())
        .unwrap();
    assert!(
        answer.contains(&format!("a=crypto:9 {suite80} inline:{}", b64(&OUR_KEY))),
        "{answer}"
    );
    from_phone(&mut call, now, &srtp_packet(&mut phone, 4));
    let mut rekeyed = SrtpSender::new(
        SrtpSuite::AesCm128HmacSha1_80,
        &SrtpMasterKey::new(&phone_key(2)),
    );
    from_phone(&mut call, now, &srtp_packet(&mut rekeyed, 5));
    let stats = call.phone_srtp().unwrap();
    assert_eq!(stats.suite, SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(
        (stats.received.rtp_packets, stats.received.auth_failures),
        (1, 1),
        "a new receive context: its own counters"
    );

    // And back to plain RTP: no crypto in the answer, plain packets are taken.
    let answer = call
        .answer_re_offer(offer(4, "RTP/AVP", &[]).as_bytes())
        .unwrap();
    assert!(!answer.contains("a=crypto"), "{answer}");
    assert!(call.phone_srtp().is_none());
}

#[test]
fn a_key_of_the_wrong_length_is_not_usable() {
    // 29 bytes: not an AES-CM-128 master key + salt; with no other line the offer is refused.
    let short = offer(1, "RTP/SAVP", &[])
        + &format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
            b64(&[1; 29])
        );
    let error = Call::dial_in(config(SrtpPolicy::Optional), short.as_bytes()).unwrap_err();
    assert_eq!(error.sip_status(), 488);
}
