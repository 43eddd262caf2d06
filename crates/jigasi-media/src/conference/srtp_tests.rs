//! The engine with an SDES-SRTP phone: what it sends the phone is SRTP/SRTCP under our key,
//! what it accepts from the phone must authenticate under the phone's key.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::g711::{decode_ulaw, encode_ulaw};
use crate::rtp::RtpHeader;
use crate::srtp::{MASTER_LEN, SrtpMasterKey};
use crate::tone::{goertzel_power, sine};

#[allow(clippy::disallowed_methods)] // The test's time origin only; all later times are offsets.
fn t0() -> Instant {
    Instant::now()
}

const FRAME: Duration = Duration::from_millis(20);
const PHONE: CallId = CallId::new(1);
const PHONE_SSRC: u32 = 0xabc1;

fn key(fill: u8) -> SrtpMasterKey {
    SrtpMasterKey::new(&[fill; MASTER_LEN])
}

fn keys(suite: SrtpSuite) -> SrtpKeys {
    SrtpKeys {
        suite,
        local: key(0x11),
        remote: key(0x22),
    }
}

/// A PCMU phone with its own SRTP contexts (it sends with its key, reads ours).
struct SecurePhone {
    tx: SrtpSender,
    rx: SrtpReceiver,
    tone: Vec<i16>,
    sequence: u16,
    heard: Vec<i16>,
}

impl SecurePhone {
    fn new(keys: SrtpKeys, freq: f32, first_sequence: u16) -> Self {
        Self {
            tx: SrtpSender::new(keys.suite, &keys.remote),
            rx: SrtpReceiver::new(keys.suite, &keys.local),
            tone: sine(freq, 8_000, 8_000.0, 160 * 400),
            sequence: first_sequence,
            heard: Vec::new(),
        }
    }

    /// The next 20 ms of tone as an SRTP packet.
    fn next_packet(&mut self) -> Vec<u8> {
        let n = usize::from(self.sequence) % 300;
        let mut payload = [0u8; 160];
        encode_ulaw(&self.tone[n * 160..(n + 1) * 160], &mut payload);
        let mut packet = vec![0u8; 12 + 160 + srtp::MAX_OVERHEAD];
        let len = RtpHeader {
            marker: false,
            payload_type: PayloadType::new(0),
            sequence: self.sequence,
            timestamp: u32::from(self.sequence) * 160,
            ssrc: Ssrc::new(PHONE_SSRC),
        }
        .write(&payload, &mut packet)
        .unwrap();
        let len = self.tx.protect_rtp(&mut packet, len).unwrap();
        packet.truncate(len);
        self.sequence = self.sequence.wrapping_add(1);
        packet
    }

    /// Reads what the last tick sent it: SRTP that must unprotect under our key.
    fn receive(&mut self, conference: &Conference) {
        let out = conference.outputs().find(|o| o.phone == PHONE).unwrap();
        let mut wire = out.to_phone.unwrap().to_vec();
        let len = self.rx.unprotect_rtp(&mut wire).unwrap();
        let packet = RtpPacket::parse(&wire[..len]).unwrap();
        let mut pcm = [0i16; 160];
        decode_ulaw(packet.payload, &mut pcm);
        self.heard.extend_from_slice(&pcm);
    }
}

/// A web participant: a 48 kHz tone, Opus-encoded.
struct Speaker {
    ssrc: Ssrc,
    encoder: OpusEncoder,
    tone: Vec<i16>,
    index: usize,
}

impl Speaker {
    fn new(ssrc: u32, freq: f32) -> Self {
        Self {
            ssrc: Ssrc::new(ssrc),
            encoder: OpusEncoder::new(
                SampleRate::Hz48000,
                &OpusEncoderConfig::for_rate(SampleRate::Hz48000),
            )
            .unwrap(),
            tone: sine(freq, 48_000, 8_000.0, 48_000 * 2),
            index: 0,
        }
    }

    fn send(&mut self, now: Instant, conference: &mut Conference) {
        let start = (self.index * 960) % (self.tone.len() - 960);
        let mut payload = [0u8; MAX_PAYLOAD];
        let n = self
            .encoder
            .encode(&self.tone[start..start + 960], &mut payload)
            .unwrap();
        let packet = BridgePacket {
            ssrc: self.ssrc,
            payload_type: PayloadType::new(111),
            sequence: self.index as u16,
            timestamp: (self.index * 960) as u32,
            audio_level: Some(AudioLevel::new(20, true)),
            payload: &payload[..n],
        };
        conference.handle_bridge_packet(now, &packet).unwrap();
        self.index += 1;
    }
}

/// A conference with one 1 kHz speaker and the SRTP phone.
fn secure_call(suite: SrtpSuite) -> (Conference, SecurePhone, Speaker) {
    let mut conference = Conference::new(ConferenceConfig::default());
    let mut config = PhoneConfig::new(CodecKind::Pcmu, Ssrc::new(1001), Ssrc::new(2001));
    config.srtp = Some(keys(suite));
    conference.add_phone(PHONE, config).unwrap();
    let speaker = Speaker::new(0x5555, 1_000.0);
    conference.add_speaker(speaker.ssrc).unwrap();
    (
        conference,
        SecurePhone::new(keys(suite), 400.0, 65_400),
        speaker,
    )
}

#[test]
fn audio_flows_both_ways_over_srtp_across_a_sequence_wrap() {
    for suite in [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ] {
        let start = t0();
        let (mut conference, mut phone, mut speaker) = secure_call(suite);
        let mut uplink = Vec::new();
        let mut bridge_decoder = OpusDecoder::new(SampleRate::Hz8000).unwrap();
        for i in 0..250u32 {
            let now = start + FRAME * i;
            speaker.send(now, &mut conference);
            let packet = phone.next_packet();
            conference.handle_phone_rtp(now, PHONE, &packet).unwrap();
            conference.tick(now + Duration::from_millis(5));
            phone.receive(&conference);
            let out = conference.outputs().next().unwrap();
            assert_eq!(
                out.to_phone.unwrap().len(),
                12 + 160 + suite.rtp_tag_len(),
                "PCMU frame plus the tag"
            );
            if let Some(frame) = out.to_bridge {
                let mut pcm = [0i16; 160];
                bridge_decoder.decode(frame.payload, &mut pcm).unwrap();
                uplink.extend_from_slice(&pcm);
            }
        }
        // The phone's 400 Hz was decrypted (noise from a wrong keystream would have no tone)
        // and the conference's 1 kHz reached the phone through our encryption.
        assert!(uplink.len() > 8_000, "{suite:?}: {} samples", uplink.len());
        let up = &uplink[uplink.len() - 8_000..];
        let tone = goertzel_power(up, 400.0, 8_000);
        let off = goertzel_power(up, 700.0, 8_000);
        assert!(tone > 100.0 * off, "{suite:?}: uplink {tone} vs {off}");
        let tail = &phone.heard[phone.heard.len() - 8_000..];
        let tone = goertzel_power(tail, 1_000.0, 8_000);
        let off = goertzel_power(tail, 1_300.0, 8_000);
        assert!(tone > 100.0 * off, "{suite:?}: {tone} vs {off}");
        let stats = conference.phone_stats(PHONE).unwrap();
        let srtp = stats.srtp.unwrap();
        assert_eq!(srtp.suite, suite);
        assert_eq!(srtp.received.rtp_packets, 250);
        assert_eq!(srtp.sent.rtp_packets, 250);
        assert_eq!(srtp.received.auth_failures, 0);
        // The phone's sequence numbers wrapped (65400 + 250): reception went on.
        assert_eq!(stats.receive.unwrap().received(), 250);
    }
}

#[test]
fn plain_forged_and_replayed_packets_are_dropped_and_counted() {
    let start = t0();
    let (mut conference, mut phone, _) = secure_call(SrtpSuite::AesCm128HmacSha1_80);
    let packet = phone.next_packet();
    conference.handle_phone_rtp(start, PHONE, &packet).unwrap();
    assert_eq!(
        conference.handle_phone_rtp(start, PHONE, &packet),
        Err(ConferenceError::Srtp(SrtpError::Replayed { index: 65_400 }))
    );
    // Plain RTP (what a phone that ignored our crypto line would send) does not authenticate.
    let mut plain = [0u8; 200];
    let len = RtpHeader {
        marker: false,
        payload_type: PayloadType::new(0),
        sequence: 65_401,
        timestamp: 0,
        ssrc: Ssrc::new(PHONE_SSRC),
    }
    .write(&[0xff; 160], &mut plain)
    .unwrap();
    assert_eq!(
        conference.handle_phone_rtp(start, PHONE, &plain[..len]),
        Err(ConferenceError::Srtp(SrtpError::AuthFailed))
    );
    let mut tampered = phone.next_packet();
    tampered[20] ^= 1;
    let error = conference
        .handle_phone_rtp(start, PHONE, &tampered)
        .unwrap_err();
    assert_eq!(error, ConferenceError::Srtp(SrtpError::AuthFailed));
    assert_eq!(error.blame(), Blame::Peer);
    // A datagram larger than anything we read is refused, not a panic.
    assert!(matches!(
        conference.handle_phone_rtp(start, PHONE, &[0x80; MAX_DATAGRAM + 1]),
        Err(ConferenceError::Srtp(SrtpError::BufferTooSmall { .. }))
    ));
    let stats = conference.phone_stats(PHONE).unwrap();
    let received = stats.srtp.unwrap().received;
    assert_eq!(
        (
            received.rtp_packets,
            received.auth_failures,
            received.replayed
        ),
        (1, 2, 1)
    );
    assert_eq!(stats.receive.unwrap().received(), 1, "only the good packet");
}

#[test]
fn rtcp_both_ways_is_srtcp() {
    let start = t0();
    let (mut conference, mut phone, _) = secure_call(SrtpSuite::AesCm128HmacSha1_32);
    for i in 0..5u32 {
        let now = start + FRAME * i;
        conference
            .handle_phone_rtp(now, PHONE, &phone.next_packet())
            .unwrap();
        conference.tick(now);
        phone.receive(&conference);
    }
    let sent_at = NtpTime(100 << 32);
    let mut out = [0u8; 256];
    let n = conference
        .write_phone_rtcp(start + FRAME * 5, sent_at, PHONE, false, &mut out)
        .unwrap();
    // Encrypted: the report itself is not readable, and the trailer is an SRTCP index 0
    // with the E-bit and an 80-bit tag (even with the 32-bit suite).
    assert_eq!(&out[n - 14..n - 10], &[0x80, 0, 0, 0]);
    let mut wire = out[..n].to_vec();
    let len = phone.rx.unprotect_rtcp(&mut wire).unwrap();
    assert_eq!(len, n - 14);
    let Some(Ok(RtcpPacket::SenderReport { sender, info, .. })) =
        rtcp::parse_compound(&wire[..len]).next()
    else {
        panic!("expected an SR");
    };
    assert_eq!((sender, info.packet_count), (Ssrc::new(2001), 5));

    // The phone's SRTCP receiver report gives the round-trip time.
    let block = crate::rtcp::ReportBlock {
        ssrc: Ssrc::new(2001),
        last_sr: sent_at.middle32(),
        delay_since_last_sr: 65_536 / 10,
        ..Default::default()
    };
    let mut rr = [0u8; 64];
    let n = rtcp::write_receiver_report(Ssrc::new(PHONE_SSRC), &[block], &mut rr).unwrap();
    // Sent plain, it is refused and changes nothing.
    assert_eq!(
        conference.handle_phone_rtcp(start, sent_at, PHONE, &rr[..n]),
        Err(ConferenceError::Srtp(SrtpError::AuthFailed))
    );
    assert_eq!(conference.phone_stats(PHONE).unwrap().rtcp_received, 0);
    let n = phone.tx.protect_rtcp(&mut rr, n).unwrap();
    let arrival = NtpTime((100 << 32) + (0.15 * 4_294_967_296.0) as u64);
    conference
        .handle_phone_rtcp(start, arrival, PHONE, &rr[..n])
        .unwrap();
    let stats = conference.phone_stats(PHONE).unwrap();
    let rtt = stats.round_trip_time.unwrap();
    assert!((rtt.as_secs_f64() - 0.05).abs() < 0.001, "{rtt:?}");
    let srtp = stats.srtp.unwrap();
    assert_eq!((srtp.sent.rtcp_packets, srtp.received.rtcp_packets), (1, 1));
}

#[test]
fn dtmf_to_the_phone_is_protected_in_sequence_with_the_audio() {
    let start = t0();
    let (mut conference, mut phone, _) = secure_call(SrtpSuite::AesCm128HmacSha1_80);
    conference
        .send_dtmf(PHONE, DtmfDigit::from_char('5').unwrap(), FRAME * 3)
        .unwrap();
    let mut events = 0;
    for i in 0..6u32 {
        conference.tick(start + FRAME * i);
        let out = conference.outputs().next().unwrap();
        if let Some(dtmf) = out.dtmf_to_phone {
            let mut wire = dtmf.to_vec();
            let len = phone.rx.unprotect_rtp(&mut wire).unwrap();
            let packet = RtpPacket::parse(&wire[..len]).unwrap();
            assert_eq!(packet.payload_type, PayloadType::new(101));
            assert_eq!(packet.payload[0], 5);
            events += 1;
        }
        phone.receive(&conference);
    }
    assert!(events >= 3, "{events} telephone-event packets");
}

#[test]
fn rekeying_keeps_unchanged_directions_and_can_go_back_to_plain_rtp() {
    let start = t0();
    let suite = SrtpSuite::AesCm128HmacSha1_80;
    let (mut conference, mut phone, _) = secure_call(suite);
    let first = phone.next_packet();
    conference.handle_phone_rtp(start, PHONE, &first).unwrap();
    conference.tick(start);
    phone.receive(&conference);

    // A re-INVITE with the same keys: the replay window survives, our ROC/sequence go on.
    conference.set_phone_srtp(PHONE, Some(keys(suite))).unwrap();
    assert!(matches!(
        conference.handle_phone_rtp(start, PHONE, &first),
        Err(ConferenceError::Srtp(SrtpError::Replayed { .. }))
    ));
    conference.tick(start + FRAME);
    phone.receive(&conference);

    // The phone rekeys: its old key no longer works, its new one does; our direction keeps
    // its context (the phone's receiver still reads us).
    let rekeyed = SrtpKeys {
        remote: key(0x33),
        ..keys(suite)
    };
    conference.set_phone_srtp(PHONE, Some(rekeyed)).unwrap();
    assert_eq!(
        conference.handle_phone_rtp(start, PHONE, &phone.next_packet()),
        Err(ConferenceError::Srtp(SrtpError::AuthFailed))
    );
    let mut new_phone = SecurePhone::new(rekeyed, 400.0, 10);
    conference
        .handle_phone_rtp(start, PHONE, &new_phone.next_packet())
        .unwrap();
    conference.tick(start + FRAME * 2);
    phone.receive(&conference);

    // And back to plain RTP.
    conference.set_phone_srtp(PHONE, None).unwrap();
    let mut plain = [0u8; 200];
    let len = RtpHeader {
        marker: false,
        payload_type: PayloadType::new(0),
        sequence: 11,
        timestamp: 1_760,
        ssrc: Ssrc::new(PHONE_SSRC),
    }
    .write(&[0xff; 160], &mut plain)
    .unwrap();
    conference
        .handle_phone_rtp(start, PHONE, &plain[..len])
        .unwrap();
    conference.tick(start + FRAME * 3);
    let out = conference.outputs().next().unwrap();
    assert_eq!(out.to_phone.unwrap().len(), 12 + 160);
    assert!(conference.phone_stats(PHONE).unwrap().srtp.is_none());
}
