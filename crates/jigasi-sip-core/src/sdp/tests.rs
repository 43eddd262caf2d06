#![allow(clippy::unwrap_used)]

use super::*;

/// CRLF-joins lines and appends the final CRLF, for exact SDP expectations.
fn sdp(lines: &[&str]) -> String {
    let mut text = lines.join("\r\n");
    text.push_str("\r\n");
    text
}

fn local() -> LocalMedia {
    LocalMedia::new("198.51.100.1".parse().unwrap(), 20_000)
}

fn session() -> SdpSession {
    SdpSession::new("jigasi", 42)
}

fn answer(offer: &str, local: &LocalMedia) -> Result<Answer, OfferAnswerError> {
    let parsed = SessionDescription::parse(offer.as_bytes()).map_err(OfferAnswerError::from)?;
    session().answer(&parsed, local)
}

/// baresip 3.x calling through Kamailio: opus first, G.711 fallback, telephone-event.
const BARESIP_OFFER: &str = "v=0\r\n\
o=- 3984329475 3984329476 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 10000 RTP/AVP 96 0 8 101\r\n\
b=AS:512\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtcp-rsize\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=ptime:20\r\n";

/// An Asterisk trunk: static payload types without rtpmap lines.
const ASTERISK_OFFER: &str = "v=0\r\n\
o=root 1821 1821 IN IP4 203.0.113.5\r\n\
s=Asterisk PBX 18.20.0\r\n\
c=IN IP4 203.0.113.5\r\n\
t=0 0\r\n\
m=audio 12000 RTP/AVP 9 0 8 101\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=maxptime:150\r\n\
a=sendrecv\r\n";

#[test]
fn baresip_opus_offer_gets_opus_and_telephone_event() {
    let a = answer(BARESIP_OFFER, &local()).unwrap();
    assert_eq!(
        a.sdp,
        sdp(&[
            "v=0",
            "o=jigasi 42 1 IN IP4 198.51.100.1",
            "s=-",
            "c=IN IP4 198.51.100.1",
            "t=0 0",
            "m=audio 20000 RTP/AVP 96 101",
            "a=rtpmap:96 opus/48000/2",
            "a=rtpmap:101 telephone-event/8000",
            // Ours, not the offer's stereo/sprop-stereo (RFC 7587 §6.1).
            "a=fmtp:96 maxplaybackrate=16000;sprop-maxcapturerate=16000;useinbandfec=1",
            "a=fmtp:101 0-15",
            "a=ptime:20",
            "a=sendrecv",
        ])
    );
    let n = a.negotiation;
    assert_eq!(n.codec.payload_type, PayloadType::new(96));
    assert_eq!(n.codec.name, "opus");
    assert_eq!(
        (n.codec.clock_rate, n.codec.sample_rate, n.codec.channels),
        (48_000, 48_000, 2)
    );
    assert_eq!(n.codec.fmtp.as_deref(), Some("stereo=1;sprop-stereo=1"));
    let te = n.telephone_event.clone().unwrap();
    assert_eq!(
        (te.payload_type, te.clock_rate),
        (PayloadType::new(101), 8_000)
    );
    assert_eq!(te.events.as_deref(), Some("0-15"));
    assert_eq!(n.remote_address, "192.0.2.10".parse::<IpAddr>().unwrap());
    assert_eq!(n.remote_port, 10_000);
    assert_eq!(n.direction, Direction::SendRecv);
    assert_eq!(n.remote_ptime, Some(20));
    assert!(n.sending());
    assert_eq!(n.srtp, None);
}

#[test]
fn asterisk_trunk_offer_uses_static_payload_types() {
    let a = answer(ASTERISK_OFFER, &local()).unwrap();
    assert_eq!(
        a.sdp,
        sdp(&[
            "v=0",
            "o=jigasi 42 1 IN IP4 198.51.100.1",
            "s=-",
            "c=IN IP4 198.51.100.1",
            "t=0 0",
            "m=audio 20000 RTP/AVP 9 101",
            "a=rtpmap:9 G722/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=sendrecv",
        ])
    );
    // G.722: 8000 on the RTP clock, 16 kHz audio.
    let codec = a.negotiation.codec;
    assert_eq!(
        (codec.name.as_str(), codec.clock_rate, codec.sample_rate),
        ("G722", 8_000, 16_000)
    );

    // docker-jitsi-meet disables G722: PCMU is next.
    let mut no_g722 = local();
    no_g722
        .codecs
        .iter_mut()
        .filter(|c| c.name == "G722")
        .for_each(|c| c.priority = 0);
    let a = answer(ASTERISK_OFFER, &no_g722).unwrap();
    assert!(
        a.sdp
            .contains("\r\nm=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n")
    );
    assert_eq!(a.negotiation.codec.sample_rate, 8_000);
}

#[test]
fn g722_only_offer_and_488() {
    let offer = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.20",
        "s=-",
        "c=IN IP4 192.0.2.20",
        "t=0 0",
        "m=audio 4000 RTP/AVP 9",
        "a=sendrecv",
    ]);
    let a = answer(&offer, &local()).unwrap();
    assert!(a.sdp.ends_with(
        "m=audio 20000 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    ));
    assert_eq!(a.negotiation.telephone_event, None);

    let mut only_g711 = local();
    only_g711.codecs = vec![
        CodecPreference::from_encoding_property("PCMU/8000", "650").unwrap(),
        CodecPreference::from_encoding_property("G722/8000", "0").unwrap(),
    ];
    let err = answer(&offer, &only_g711).unwrap_err();
    assert_eq!(
        err,
        OfferAnswerError::PeerIncompatible(PeerIncompatible::NoCommonCodec)
    );
    assert_eq!(err.sip_status(), 488);
}

#[test]
fn video_and_extra_streams_are_declined_with_port_zero() {
    let offer = sdp(&[
        "v=0",
        "o=- 7 7 IN IP4 192.0.2.30",
        "s=-",
        "c=IN IP4 192.0.2.30",
        "t=0 0",
        "m=audio 0 RTP/AVP 0",
        "m=audio 30000 RTP/AVP 8 0 101",
        "a=rtpmap:101 telephone-event/8000",
        "m=video 30002 RTP/AVP 96 97",
        "a=rtpmap:96 H264/90000",
        "a=rtpmap:97 VP8/90000",
        "m=audio 30004 RTP/AVP 0",
    ]);
    let a = answer(&offer, &local()).unwrap();
    assert_eq!(
        a.sdp,
        sdp(&[
            "v=0",
            "o=jigasi 42 1 IN IP4 198.51.100.1",
            "s=-",
            "c=IN IP4 198.51.100.1",
            "t=0 0",
            "m=audio 0 RTP/AVP 0",
            "m=audio 20000 RTP/AVP 0 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=sendrecv",
            "m=video 0 RTP/AVP 96 97",
            "m=audio 0 RTP/AVP 0",
        ])
    );
    assert_eq!(a.negotiation.remote_port, 30_000);
}

#[test]
fn port_zero_only_is_no_audio() {
    let offer = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 0 RTP/AVP 0",
    ]);
    assert_eq!(
        answer(&offer, &local()).unwrap_err(),
        OfferAnswerError::PeerIncompatible(PeerIncompatible::NoAudio)
    );
}

#[test]
fn hold_and_resume_mirror_direction_and_bump_the_version() {
    let mut s = session();
    let local = local();
    let initial = SessionDescription::parse(ASTERISK_OFFER.as_bytes()).unwrap();
    let first = s.answer(&initial, &local).unwrap();
    assert!(first.sdp.contains("o=jigasi 42 1 "));

    let hold = SessionDescription::parse(ASTERISK_OFFER.replace("sendrecv", "sendonly").as_bytes())
        .unwrap();
    let held = s.answer(&hold, &local).unwrap();
    assert!(held.sdp.contains("o=jigasi 42 2 "));
    assert!(held.sdp.contains("\r\na=recvonly\r\n"));
    assert_eq!(held.negotiation.direction, Direction::RecvOnly);
    assert!(!held.negotiation.sending());

    // The same re-INVITE again (e.g. a session refresh): unchanged SDP, same version.
    let again = s.answer(&hold, &local).unwrap();
    assert_eq!(again.sdp, held.sdp);

    let inactive = SessionDescription::parse(
        ASTERISK_OFFER
            .replace("a=sendrecv", "a=inactive")
            .as_bytes(),
    )
    .unwrap();
    let paused = s.answer(&inactive, &local).unwrap();
    assert!(paused.sdp.contains("o=jigasi 42 3 ") && paused.sdp.contains("\r\na=inactive\r\n"));

    let resumed = s.answer(&initial, &local).unwrap();
    assert!(resumed.sdp.contains("o=jigasi 42 4 ") && resumed.sdp.contains("\r\na=sendrecv\r\n"));
    assert_eq!(s.version(), 4);

    // RFC 2543 hold: c=0.0.0.0 keeps sendrecv but we must not send.
    let old_hold = SessionDescription::parse(
        ASTERISK_OFFER
            .replace("203.0.113.5\r\nt=", "0.0.0.0\r\nt=")
            .as_bytes(),
    )
    .unwrap();
    let n = s.answer(&old_hold, &local).unwrap().negotiation;
    assert!(n.remote_address.is_unspecified() && !n.sending());

    // Session-level direction applies when the media has none.
    let session_level = SessionDescription::parse(
        ASTERISK_OFFER
            .replace("a=sendrecv\r\n", "")
            .replace("t=0 0\r\n", "t=0 0\r\na=recvonly\r\n")
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        s.answer(&session_level, &local)
            .unwrap()
            .negotiation
            .direction,
        Direction::SendOnly
    );
}

#[test]
fn ptime_follows_the_offer_within_maxptime() {
    let thirty = ASTERISK_OFFER.replace("a=ptime:20", "a=ptime:30");
    assert!(
        answer(&thirty, &local())
            .unwrap()
            .sdp
            .contains("\r\na=ptime:30\r\n")
    );
    let capped = ASTERISK_OFFER
        .replace("a=ptime:20\r\n", "")
        .replace("maxptime:150", "maxptime:10");
    assert!(
        answer(&capped, &local())
            .unwrap()
            .sdp
            .contains("\r\na=ptime:10\r\n")
    );
}

fn key(byte: u8) -> SdesKey {
    [byte; 30]
}

fn savp_offer() -> String {
    let remote = key(0x11);
    sdp(&[
        "v=0",
        "o=- 5 5 IN IP4 192.0.2.40",
        "s=-",
        "c=IN IP4 192.0.2.40",
        "t=0 0",
        "m=audio 40000 RTP/SAVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        &format!(
            "a=crypto:1 AEAD_AES_256_GCM inline:{}",
            encode_key(&[1; 44])
        ),
        &crypto_line(2, SdesSuite::AesCm128HmacSha1_32, &remote),
        &crypto_line(3, SdesSuite::AesCm128HmacSha1_80, &remote),
        "a=sendrecv",
    ])
}

#[test]
fn sdes_offer_picks_the_first_suite_we_implement() {
    let mut srtp = local();
    srtp.srtp = SrtpPolicy::Optional;
    srtp.sdes_key = Some(key(0x22));
    let a = answer(&savp_offer(), &srtp).unwrap();
    assert_eq!(
        a.sdp,
        sdp(&[
            "v=0",
            "o=jigasi 42 1 IN IP4 198.51.100.1",
            "s=-",
            "c=IN IP4 198.51.100.1",
            "t=0 0",
            "m=audio 20000 RTP/SAVP 0 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=sendrecv",
            "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIi",
        ])
    );
    let params = a.negotiation.srtp.unwrap();
    assert_eq!(params.suite, SdesSuite::AesCm128HmacSha1_32);
    assert_eq!(params.tag, 2);
    assert_eq!(params.remote_key, vec![0x11; 30]);
    assert_eq!(params.local_key, key(0x22));
}

/// baresip's `mediaenc=srtp` (best-effort SRTP): `RTP/AVP` carrying crypto lines.
fn best_effort_offer() -> String {
    savp_offer().replace("RTP/SAVP", "RTP/AVP")
}

#[test]
fn best_effort_srtp_is_used_when_enabled_and_ignored_when_off() {
    let mut srtp = local();
    srtp.srtp = SrtpPolicy::Optional;
    srtp.sdes_key = Some(key(0x22));
    let a = answer(&best_effort_offer(), &srtp).unwrap();
    assert!(
        a.sdp.contains("m=audio 20000 RTP/AVP 0 101\r\n"),
        "{}",
        a.sdp
    );
    assert!(
        a.sdp
            .contains("\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"),
        "{}",
        a.sdp
    );
    assert_eq!(
        a.negotiation.srtp.map(|p| p.suite),
        Some(SdesSuite::AesCm128HmacSha1_32)
    );
    // SRTP off: the crypto lines are ignored, plain RTP.
    let plain = answer(&best_effort_offer(), &local()).unwrap();
    assert!(!plain.sdp.contains("a=crypto"), "{}", plain.sdp);
    assert_eq!(plain.negotiation.srtp, None);
    // Best effort with no suite we accept: plain RTP rather than a rejection.
    srtp.sdes_suites = Vec::new();
    let plain = answer(&best_effort_offer(), &srtp).unwrap();
    assert_eq!(plain.negotiation.srtp, None);
    assert!(!plain.sdp.contains("a=crypto"), "{}", plain.sdp);
    // Required still refuses RTP/AVP, crypto lines or not.
    srtp.srtp = SrtpPolicy::Required;
    assert_eq!(
        answer(&best_effort_offer(), &srtp).unwrap_err(),
        OfferAnswerError::PeerIncompatible(PeerIncompatible::SrtpRequired)
    );
}

#[test]
fn sdes_cipher_suites_limit_what_we_offer_and_accept() {
    let mut srtp = local();
    srtp.srtp = SrtpPolicy::Optional;
    srtp.sdes_key = Some(key(0x22));
    srtp.sdes_suites = vec![SdesSuite::AesCm128HmacSha1_80];
    // The offer lists _32 first; we take the _80 line.
    let a = answer(&savp_offer(), &srtp).unwrap();
    let params = a.negotiation.srtp.unwrap();
    assert_eq!(
        (params.suite, params.tag),
        (SdesSuite::AesCm128HmacSha1_80, 3)
    );
    // Our offer carries only the configured suite.
    let offer = session().offer(&srtp).unwrap();
    assert!(
        offer
            .sdp
            .contains("\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{}",
        offer.sdp
    );
    assert!(!offer.sdp.contains("_32"), "{}", offer.sdp);
    // An SRTP-only offer with none of our suites: 488.
    srtp.sdes_suites = Vec::new();
    assert_eq!(
        answer(&savp_offer(), &srtp).unwrap_err(),
        OfferAnswerError::PeerIncompatible(PeerIncompatible::NoCryptoSuite)
    );
}

#[test]
fn sdes_policy_mismatches_are_488() {
    assert_eq!(
        answer(&savp_offer(), &local()).unwrap_err(),
        OfferAnswerError::PeerIncompatible(PeerIncompatible::SrtpNotEnabled)
    );
    let mut required = local();
    required.srtp = SrtpPolicy::Required;
    required.sdes_key = Some(key(1));
    assert_eq!(
        answer(ASTERISK_OFFER, &required).unwrap_err(),
        OfferAnswerError::PeerIncompatible(PeerIncompatible::SrtpRequired)
    );
    let only_gcm = savp_offer()
        .lines()
        .filter(|l| !l.contains("AES_CM"))
        .collect::<Vec<_>>()
        .join("\r\n");
    let err = answer(&only_gcm, &required).unwrap_err();
    assert_eq!(
        err,
        OfferAnswerError::PeerIncompatible(PeerIncompatible::NoCryptoSuite)
    );
    assert_eq!(err.sip_status(), 488);
    required.sdes_key = None;
    let err = answer(&savp_offer(), &required).unwrap_err();
    assert_eq!(
        err,
        OfferAnswerError::LocalConfig(LocalConfigError::MissingSrtpKey)
    );
    assert_eq!(err.sip_status(), 500);
}

#[test]
fn our_dial_out_offer_and_the_answer_to_it() {
    let mut s = session();
    let offer = s.offer(&local()).unwrap();
    assert_eq!(
        offer.sdp,
        sdp(&[
            "v=0",
            "o=jigasi 42 1 IN IP4 198.51.100.1",
            "s=-",
            "c=IN IP4 198.51.100.1",
            "t=0 0",
            "m=audio 20000 RTP/AVP 96 97 9 0 8 98 101",
            "a=rtpmap:96 opus/48000/2",
            "a=rtpmap:97 AMR-WB/16000",
            "a=rtpmap:9 G722/8000",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:98 iLBC/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:96 maxplaybackrate=16000;sprop-maxcapturerate=16000;useinbandfec=1",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=sendrecv",
        ])
    );
    // A PBX answering G.711 µ-law with DTMF, putting PCMA second.
    let reply = sdp(&[
        "v=0",
        "o=pbx 9 9 IN IP4 203.0.113.9",
        "s=-",
        "c=IN IP4 203.0.113.9",
        "t=0 0",
        "m=audio 16000 RTP/AVP 0 8 101",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:30",
    ]);
    let n = s
        .process_answer(
            &offer,
            &SessionDescription::parse(reply.as_bytes()).unwrap(),
        )
        .unwrap();
    assert_eq!(n.codec.name, "PCMU");
    assert_eq!(n.codec.payload_type, PayloadType::new(0));
    assert_eq!(n.telephone_event.unwrap().events.as_deref(), Some("0-15"));
    assert_eq!(
        (n.remote_port, n.remote_ptime, n.direction),
        (16_000, Some(30), Direction::SendRecv)
    );

    // Answers that do not fit the offer.
    let declined = reply.replace("m=audio 16000", "m=audio 0");
    let err = s
        .process_answer(
            &offer,
            &SessionDescription::parse(declined.as_bytes()).unwrap(),
        )
        .unwrap_err();
    assert_eq!(
        err,
        OfferAnswerError::PeerIncompatible(PeerIncompatible::AudioDeclined)
    );
    let foreign = reply.replace("RTP/AVP 0 8 101", "RTP/AVP 18");
    let err = s
        .process_answer(
            &offer,
            &SessionDescription::parse(foreign.as_bytes()).unwrap(),
        )
        .unwrap_err();
    assert_eq!(
        err,
        OfferAnswerError::PeerMisbehaved(PeerMisbehaved::UnofferedCodec)
    );
    let two = format!("{reply}m=video 0 RTP/AVP 31\r\n");
    let err = s
        .process_answer(&offer, &SessionDescription::parse(two.as_bytes()).unwrap())
        .unwrap_err();
    assert_eq!(
        err,
        OfferAnswerError::PeerMisbehaved(PeerMisbehaved::MediaCountMismatch { offered: 1, got: 2 })
    );
}

#[test]
fn sdes_dial_out_offer_and_answer() {
    let mut s = session();
    let mut srtp = local();
    srtp.codecs = vec![CodecPreference::from_encoding_property("PCMA/8000", "5").unwrap()];
    srtp.srtp = SrtpPolicy::Required;
    srtp.sdes_key = Some(key(0x33));
    let offer = s.offer(&srtp).unwrap();
    let inline = encode_key(&key(0x33));
    assert_eq!(
        offer.sdp,
        sdp(&[
            "v=0",
            "o=jigasi 42 1 IN IP4 198.51.100.1",
            "s=-",
            "c=IN IP4 198.51.100.1",
            "t=0 0",
            "m=audio 20000 RTP/SAVP 8 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=sendrecv",
            &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{inline}"),
            &format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{inline}"),
        ])
    );
    let reply = sdp(&[
        "v=0",
        "o=pbx 9 9 IN IP4 203.0.113.9",
        "s=-",
        "c=IN IP4 203.0.113.9",
        "t=0 0",
        "m=audio 16000 RTP/SAVP 8",
        &crypto_line(1, SdesSuite::AesCm128HmacSha1_80, &key(0x44)),
        "a=recvonly",
    ]);
    let n = s
        .process_answer(
            &offer,
            &SessionDescription::parse(reply.as_bytes()).unwrap(),
        )
        .unwrap();
    let params = n.srtp.unwrap();
    assert_eq!(
        (params.suite, params.tag),
        (SdesSuite::AesCm128HmacSha1_80, 1)
    );
    assert_eq!(params.remote_key, vec![0x44; 30]);
    assert_eq!(n.direction, Direction::SendOnly);
    assert_eq!(n.telephone_event, None);
    // The answer must pick one of our tags with the same suite.
    let wrong = reply.replace("crypto:1 ", "crypto:2 ");
    let err = s
        .process_answer(
            &offer,
            &SessionDescription::parse(wrong.as_bytes()).unwrap(),
        )
        .unwrap_err();
    assert_eq!(
        err,
        OfferAnswerError::PeerMisbehaved(PeerMisbehaved::UnofferedCrypto)
    );
}

#[test]
fn rtcp_port_and_rtcp_mux_from_the_offer_and_the_answer() {
    // No a=rtcp, no rtcp-mux: RTCP on the RTP port + 1, nothing about it in the answer.
    let plain = answer(ASTERISK_OFFER, &local()).unwrap();
    assert_eq!(plain.negotiation.remote_rtcp, None);
    assert!(!plain.negotiation.rtcp_mux);
    assert!(!plain.sdp.contains("rtcp"), "{}", plain.sdp);

    // RFC 3605 with an address, and RFC 5761 multiplexing: both taken, mux answered.
    let offer = ASTERISK_OFFER.replace(
        "a=sendrecv\r\n",
        "a=sendrecv\r\na=rtcp:12011 IN IP4 203.0.113.77\r\na=rtcp-mux\r\n",
    );
    let a = answer(&offer, &local()).unwrap();
    assert_eq!(
        a.negotiation.remote_rtcp,
        Some("203.0.113.77:12011".parse().unwrap())
    );
    assert!(a.negotiation.rtcp_mux);
    assert!(a.sdp.contains("\r\na=rtcp-mux\r\n"), "{}", a.sdp);

    // A port alone uses the media address; a malformed attribute is ignored.
    let port_only = ASTERISK_OFFER.replace("a=sendrecv\r\n", "a=sendrecv\r\na=rtcp:12021\r\n");
    let a = answer(&port_only, &local()).unwrap();
    assert_eq!(
        a.negotiation.remote_rtcp,
        Some("203.0.113.5:12021".parse().unwrap())
    );
    let broken = ASTERISK_OFFER.replace("a=sendrecv\r\n", "a=sendrecv\r\na=rtcp:abc\r\n");
    assert_eq!(
        answer(&broken, &local()).unwrap().negotiation.remote_rtcp,
        None
    );

    // A dial-out answer's a=rtcp is honoured too; mux cannot be chosen (we never offer it).
    let mut s = session();
    let ours = s.offer(&local()).unwrap();
    assert!(!ours.sdp.contains("rtcp"), "{}", ours.sdp);
    let reply = sdp(&[
        "v=0",
        "o=pbx 9 9 IN IP4 203.0.113.9",
        "s=-",
        "c=IN IP4 203.0.113.9",
        "t=0 0",
        "m=audio 16000 RTP/AVP 0",
        "a=rtcp:16005",
        "a=rtcp-mux",
    ]);
    let n = s
        .process_answer(&ours, &SessionDescription::parse(reply.as_bytes()).unwrap())
        .unwrap();
    assert_eq!(n.remote_rtcp, Some("203.0.113.9:16005".parse().unwrap()));
    assert!(!n.rtcp_mux);
}

#[test]
fn offer_needs_an_enabled_codec() {
    let mut none = local();
    none.codecs.iter_mut().for_each(|c| c.priority = 0);
    assert_eq!(
        session().offer(&none).unwrap_err(),
        OfferAnswerError::LocalConfig(LocalConfigError::NoCodecEnabled)
    );
    assert_eq!(CodecPreference::from_encoding_property("opus", "1"), None);
    assert_eq!(CodecPreference::from_encoding_property("opus/x", "1"), None);
    assert_eq!(
        CodecPreference::from_encoding_property("opus/48000", "high"),
        None
    );
}

#[test]
fn parse_and_write_round_trip() {
    for text in [BARESIP_OFFER, ASTERISK_OFFER, &savp_offer()] {
        let parsed = SessionDescription::parse(text.as_bytes()).unwrap();
        let written = parsed.to_string();
        assert_eq!(
            SessionDescription::parse(written.as_bytes()).unwrap(),
            parsed
        );
    }
    let parsed = SessionDescription::parse(BARESIP_OFFER.as_bytes()).unwrap();
    let media = &parsed.media[0];
    assert_eq!(
        media.other,
        vec!["rtcp-rsize".to_owned(), "label:1".to_owned()]
    );
    assert_eq!(parsed.origin.session_version, "3984329476");
    // Bare LF line ends are accepted too.
    let lf = BARESIP_OFFER.replace("\r\n", "\n");
    assert_eq!(SessionDescription::parse(lf.as_bytes()).unwrap(), parsed);
}

#[test]
fn malformed_sdp_is_a_typed_error() {
    let cases: [(&[u8], SdpError); 12] = [
        (b"\xff\xfe", SdpError::NotUtf8),
        (b"", SdpError::MissingVersion),
        (b"o=- 1 1 IN IP4 1.2.3.4\r\n", SdpError::MissingVersion),
        (b"v=1\r\n", SdpError::MissingVersion),
        (b"v=0\r\ns=-\r\n", SdpError::MissingOrigin),
        (b"v=0\r\nnonsense\r\n", SdpError::BadLine { line: 2 }),
        (
            b"v=0\r\no=- 1 IN IP4 1.2.3.4\r\n",
            SdpError::BadOrigin { line: 2 },
        ),
        (
            b"v=0\r\nc=IN IP4 example.com\r\n",
            SdpError::BadConnection { line: 2 },
        ),
        (
            b"v=0\r\nm=audio 99999 RTP/AVP 0\r\n",
            SdpError::BadMedia { line: 2 },
        ),
        (
            b"v=0\r\nm=audio 1 RTP/AVP 128\r\n",
            SdpError::BadMedia { line: 2 },
        ),
        (
            b"v=0\r\nm=audio 1 RTP/AVP 96\r\na=rtpmap:96 opus\r\n",
            SdpError::BadAttribute {
                line: 3,
                name: "rtpmap",
            },
        ),
        (
            b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=crypto:x AES inline:a\r\n",
            SdpError::BadAttribute {
                line: 3,
                name: "crypto",
            },
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(SessionDescription::parse(bytes), Err(expected), "{bytes:?}");
    }
    // As an offer, malformed SDP is the peer's fault: 400.
    let err: OfferAnswerError = SdpError::MissingVersion.into();
    assert_eq!(err.sip_status(), 400);
    let no_connection = sdp(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "t=0 0",
        "m=audio 5 RTP/AVP 0",
    ]);
    assert_eq!(
        answer(&no_connection, &local()).unwrap_err(),
        OfferAnswerError::PeerMisbehaved(PeerMisbehaved::NoConnection)
    );
}

/// xorshift64*: a tiny seeded generator, so the fuzz loop is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_bytes_and_mutations_never_panic() {
    let mut rng = Rng(0x0ff3_4a45_5eed_0001);
    let alphabet = b"vocmat=0123456789 :/;.-\r\nRTP/AVPSinline|^\xc3\xa9\xff";
    let seeds = [
        BARESIP_OFFER.to_owned(),
        ASTERISK_OFFER.to_owned(),
        savp_offer(),
    ];
    let mut srtp = local();
    srtp.srtp = SrtpPolicy::Optional;
    srtp.sdes_key = Some(key(9));
    let mut parsed_ok = 0;
    for round in 0..20_000 {
        let bytes: Vec<u8> = if round % 4 == 0 {
            (0..rng.below(200))
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect()
        } else {
            let mut m = seeds[rng.below(seeds.len())].clone().into_bytes();
            for _ in 0..=rng.below(6) {
                let at = rng.below(m.len() + 1);
                match rng.below(3) {
                    0 if at < m.len() => m[at] = alphabet[rng.below(alphabet.len())],
                    1 if at < m.len() => {
                        m.remove(at);
                    }
                    _ => m.insert(at, alphabet[rng.below(alphabet.len())]),
                }
            }
            m
        };
        let Ok(offer) = SessionDescription::parse(&bytes) else {
            continue;
        };
        parsed_ok += 1;
        let mut s = session();
        for local in [local(), srtp.clone()] {
            if let Ok(a) = s.answer(&offer, &local) {
                // Whatever we answer parses again.
                assert!(
                    SessionDescription::parse(a.sdp.as_bytes()).is_ok(),
                    "{}",
                    a.sdp
                );
            }
        }
        let our_offer = s.offer(&local()).unwrap();
        let _ = s.process_answer(&our_offer, &offer);
    }
    assert!(parsed_ok > 1_000, "mutations too destructive: {parsed_ok}");
}

#[test]
fn fmtp_parameters_are_read_by_name_without_case() {
    let mut codec = answer(BARESIP_OFFER, &local()).unwrap().negotiation.codec;
    assert_eq!(codec.fmtp_param("stereo"), Some("1"));
    assert_eq!(codec.fmtp_param("maxaveragebitrate"), None);
    codec.fmtp =
        Some("maxplaybackrate=16000; MaxAverageBitrate = 20000 ;useinbandfec=1;cbr".into());
    assert_eq!(codec.fmtp_param("maxaveragebitrate"), Some("20000"));
    assert_eq!(codec.fmtp_param("useinbandfec"), Some("1"));
    assert_eq!(
        codec.fmtp_param("cbr"),
        None,
        "a flag without a value is not a parameter"
    );
    codec.fmtp = None;
    assert_eq!(codec.fmtp_param("useinbandfec"), None);
}
