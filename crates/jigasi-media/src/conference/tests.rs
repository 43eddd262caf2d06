#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use super::*;
use crate::codec::{G711Decoder, G722Decoder, OpusDecoder};
use crate::dtmf::TelephoneEvent;
use crate::rtp::RtpHeader;
use crate::tone::{detect_dtmf, goertzel_power, sine};

#[allow(clippy::disallowed_methods)] // The test's time origin only; all later times are offsets.
fn t0() -> Instant {
    Instant::now()
}

const FRAME: Duration = Duration::from_millis(20);

/// A remote participant: a 48 kHz tone Opus-encoded like a browser would.
struct FakeSpeaker {
    ssrc: Ssrc,
    encoder: OpusEncoder,
    tone: Vec<i16>,
    index: usize,
}

impl FakeSpeaker {
    fn new(ssrc: u32, freq: f32, amplitude: f32) -> Self {
        Self {
            ssrc: Ssrc::new(ssrc),
            encoder: OpusEncoder::new(
                SampleRate::Hz48000,
                &OpusEncoderConfig::for_rate(SampleRate::Hz48000),
            )
            .unwrap(),
            tone: sine(freq, 48_000, amplitude, 48_000 * 4),
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
        conference
            .handle_bridge_packet(
                now,
                &BridgePacket {
                    ssrc: self.ssrc,
                    payload_type: PayloadType::new(111),
                    sequence: self.index as u16,
                    timestamp: (self.index * 960) as u32,
                    audio_level: Some(AudioLevel::new(20, true)),
                    payload: &payload[..n],
                },
            )
            .unwrap();
        self.index += 1;
    }
}

/// A phone sending a tone in its codec over RTP.
struct FakePhone {
    id: CallId,
    codec: CodecKind,
    encoder: Box<dyn AudioEncoder>,
    tone: Vec<i16>,
    index: usize,
    /// Decodes what the gateway sends to it.
    decoder: Box<dyn AudioDecoder>,
    heard: Vec<i16>,
}

impl FakePhone {
    fn new(id: u64, codec: CodecKind, freq: f32) -> Self {
        let rate = codec.native_rate();
        Self {
            id: CallId::new(id),
            codec,
            encoder: encoder_for(codec, rate, &OpusEncoderConfig::for_rate(rate)).unwrap(),
            tone: if freq > 0.0 {
                sine(freq, rate.hz(), 8000.0, rate.samples_per_frame() * 200)
            } else {
                vec![0; rate.samples_per_frame() * 200]
            },
            index: 0,
            decoder: decoder_for(codec, rate).unwrap(),
            heard: Vec::new(),
        }
    }

    fn config(&self) -> PhoneConfig {
        let id = self.id.get() as u32;
        PhoneConfig::new(self.codec, Ssrc::new(1000 + id), Ssrc::new(2000 + id))
    }

    fn send(&mut self, now: Instant, conference: &mut Conference) {
        let n = self.encoder.sample_rate().samples_per_frame();
        let start = (self.index * n) % (self.tone.len() - n);
        let mut payload = [0u8; MAX_PAYLOAD];
        let len = self
            .encoder
            .encode(&self.tone[start..start + n], &mut payload)
            .unwrap();
        let mut packet = [0u8; 1500];
        let total = RtpHeader {
            marker: false,
            payload_type: PayloadType::new(self.codec.static_payload_type().unwrap_or(111)),
            sequence: self.index as u16,
            timestamp: (self.index as u32) * self.codec.frame_ticks(),
            ssrc: Ssrc::new(0xabc0 + self.id.get() as u32),
        }
        .write(&payload[..len], &mut packet)
        .unwrap();
        conference
            .handle_phone_rtp(now, self.id, &packet[..total])
            .unwrap();
        self.index += 1;
    }

    fn receive(&mut self, conference: &Conference) {
        let out = conference.outputs().find(|o| o.phone == self.id).unwrap();
        let packet = RtpPacket::parse(out.to_phone.unwrap()).unwrap();
        let mut pcm = vec![0i16; self.decoder.sample_rate().samples_per_frame()];
        self.decoder.decode(packet.payload, &mut pcm).unwrap();
        self.heard.extend_from_slice(&pcm);
    }

    /// Power of `freq` in the last second heard.
    fn power(&self, freq: f32) -> f64 {
        let rate = self.decoder.sample_rate();
        let tail = &self.heard[self.heard.len() - rate.hz() as usize..];
        goertzel_power(tail, freq, rate.hz())
    }
}

fn tick_all(
    conference: &mut Conference,
    speakers: &mut [FakeSpeaker],
    phones: &mut [FakePhone],
    start: Instant,
    ticks: u64,
) {
    for i in 0..ticks {
        let now = start + FRAME * i as u32;
        for s in speakers.iter_mut() {
            s.send(now, conference);
        }
        for p in phones.iter_mut() {
            p.send(now, conference);
        }
        conference.tick(now + Duration::from_millis(5));
        for p in phones.iter_mut() {
            p.receive(conference);
        }
    }
}

#[test]
fn n_minus_one_mix_excludes_own_uplink_and_includes_everyone_else() {
    let start = t0();
    let mut conference = Conference::new(ConferenceConfig::default());
    let mut speakers = vec![
        FakeSpeaker::new(1, 500.0, 6000.0),
        FakeSpeaker::new(2, 1100.0, 6000.0),
    ];
    for s in &speakers {
        conference.add_speaker(s.ssrc).unwrap();
    }
    let mut phones = vec![
        FakePhone::new(1, CodecKind::Pcmu, 1700.0),
        FakePhone::new(2, CodecKind::Pcma, 2300.0),
    ];
    for p in &phones {
        conference.add_phone(p.id, p.config()).unwrap();
    }
    tick_all(&mut conference, &mut speakers, &mut phones, start, 100);

    let quiet = 1.0e3;
    for (p, own, other) in [(&phones[0], 1700.0, 2300.0), (&phones[1], 2300.0, 1700.0)] {
        for f in [500.0, 1100.0, other] {
            assert!(
                p.power(f) > 1.0e6,
                "phone {} hears {f}: {}",
                p.id,
                p.power(f)
            );
        }
        assert!(
            p.power(own) < quiet,
            "phone {} must not hear itself: {}",
            p.id,
            p.power(own)
        );
    }
}

#[test]
fn decode_once_per_speaker_per_rate_in_use() {
    let start = t0();
    let mut conference = Conference::new(ConferenceConfig::default());
    let mut speakers: Vec<_> = (1..=3)
        .map(|i| FakeSpeaker::new(i, 300.0 * i as f32, 5000.0))
        .collect();
    for s in &speakers {
        conference.add_speaker(s.ssrc).unwrap();
    }
    let mut phones = vec![
        FakePhone::new(1, CodecKind::Pcmu, 0.0),
        FakePhone::new(2, CodecKind::Pcmu, 0.0),
    ];
    for p in &phones {
        conference.add_phone(p.id, p.config()).unwrap();
    }
    // Warm up until every buffer plays, then count over 50 ticks.
    tick_all(&mut conference, &mut speakers, &mut phones, start, 10);
    let before = conference.stats().speaker_decodes;
    tick_all(
        &mut conference,
        &mut speakers,
        &mut phones,
        start + FRAME * 10,
        50,
    );
    assert_eq!(
        conference.stats().speaker_decodes - before,
        3 * 50,
        "K=3 speakers, 2 phones at 8 kHz: 3 decodes per tick, not 6"
    );

    // A G.722 phone needs 16 kHz: one more decode per speaker per tick.
    let mut wideband = FakePhone::new(3, CodecKind::G722, 0.0);
    conference
        .add_phone(wideband.id, wideband.config())
        .unwrap();
    phones.push(wideband);
    let before = conference.stats().speaker_decodes;
    tick_all(
        &mut conference,
        &mut speakers,
        &mut phones,
        start + FRAME * 60,
        50,
    );
    assert_eq!(conference.stats().speaker_decodes - before, 6 * 50);

    wideband = phones.pop().unwrap();
    conference.remove_phone(wideband.id).unwrap();
    let before = conference.stats().speaker_decodes;
    tick_all(
        &mut conference,
        &mut speakers,
        &mut phones,
        start + FRAME * 110,
        50,
    );
    assert_eq!(conference.stats().speaker_decodes - before, 3 * 50);
    assert_eq!(conference.stats().decode_errors, 0);
}

#[test]
fn mixing_sums_and_saturates() {
    // The arithmetic: N−1 from the i32 total, saturated.
    let total = [1000i32, 40_000, -40_000, 32_767 + 500];
    let own = [300i16, 100, -100, 500];
    let mixed: Vec<i16> = total
        .iter()
        .zip(own)
        .map(|(&t, o)| saturate(t - i32::from(o)))
        .collect();
    assert_eq!(mixed, [700, 32_767, -32_768, 32_767]);

    let mut dst = [10i32; 4];
    add_converted(
        &[1, 2, 3, 4],
        SampleRate::Hz8000,
        &mut dst,
        SampleRate::Hz8000,
    );
    assert_eq!(dst, [11, 12, 13, 14]);
    let mut up = [0i32; 4];
    add_converted(&[0, 100], SampleRate::Hz8000, &mut up, SampleRate::Hz16000);
    assert_eq!(up, [0, 50, 100, 100]);
    let mut down = [0i32; 2];
    add_converted(
        &[0, 100, 200, 300],
        SampleRate::Hz16000,
        &mut down,
        SampleRate::Hz8000,
    );
    assert_eq!(down, [50, 250]);
}

#[test]
fn loud_speakers_clip_instead_of_wrapping() {
    let start = t0();
    let mut conference = Conference::new(ConferenceConfig::default());
    // Three near-full-scale tones in phase: the sum is ~3× full scale.
    let mut speakers: Vec<_> = (1..=3)
        .map(|i| FakeSpeaker::new(i, 400.0, 30_000.0))
        .collect();
    for s in &speakers {
        conference.add_speaker(s.ssrc).unwrap();
    }
    let mut phones = vec![FakePhone::new(1, CodecKind::Pcmu, 0.0)];
    conference
        .add_phone(phones[0].id, phones[0].config())
        .unwrap();
    tick_all(&mut conference, &mut speakers, &mut phones, start, 60);
    let tail = &phones[0].heard[phones[0].heard.len() - 8000..];
    let pinned = tail.iter().filter(|&&s| s.unsigned_abs() >= 32_000).count();
    assert!(pinned > 1000, "the mix is clipped at full scale: {pinned}");
    // Wrapping would flip signs mid-peak: check the waveform still follows the tone.
    assert!(goertzel_power(tail, 400.0, 8000) > 1.0e8);
}

#[test]
fn phone_uplink_becomes_opus_at_the_native_rate_with_its_level() {
    let start = t0();
    let mut conference = Conference::new(ConferenceConfig::default());
    let mut phones = [FakePhone::new(1, CodecKind::Pcmu, 900.0)];
    conference
        .add_phone(phones[0].id, phones[0].config())
        .unwrap();
    let mut bridge_decoder = OpusDecoder::new(SampleRate::Hz8000).unwrap();
    let mut heard = Vec::new();
    let mut timestamps = Vec::new();
    let mut levels = Vec::new();
    for i in 0..60u32 {
        let now = start + FRAME * i;
        phones[0].send(now, &mut conference);
        conference.tick(now + Duration::from_millis(5));
        let out = conference.outputs().next().unwrap();
        let frame = out.to_bridge.unwrap();
        assert_eq!(frame.ssrc, Ssrc::new(1001));
        timestamps.push(frame.rtp_timestamp);
        levels.push(frame.audio_level);
        let mut pcm = [0i16; 160];
        bridge_decoder.decode(frame.payload, &mut pcm).unwrap();
        heard.extend_from_slice(&pcm);
    }
    assert!(
        timestamps
            .windows(2)
            .all(|w| w[1].wrapping_sub(w[0]) == 960)
    );
    let tail = &heard[heard.len() - 4000..];
    assert!(goertzel_power(tail, 900.0, 8000) > 100.0 * goertzel_power(tail, 1300.0, 8000));
    // An 8000-amplitude sine is −15.3 dBov; G.711 and Opus keep it within a dB.
    let last = levels.last().unwrap();
    assert!((14..=17).contains(&last.level()), "{last:?}");
    assert!(last.voice());
    assert_eq!(levels[0], AudioLevel::SILENCE, "nothing played yet");
}

#[test]
fn mute_policies() {
    let start = t0();
    for (policy, expect_frame) in [
        (MutePolicy::SendNothing, false),
        (MutePolicy::SendSilence, true),
    ] {
        let mut conference = Conference::new(ConferenceConfig::default());
        let mut phones = vec![
            FakePhone::new(1, CodecKind::Pcmu, 900.0),
            FakePhone::new(2, CodecKind::Pcmu, 0.0),
        ];
        for p in &phones {
            let config = PhoneConfig {
                mute_policy: policy,
                ..p.config()
            };
            conference.add_phone(p.id, config).unwrap();
        }
        conference.set_muted(phones[0].id, true).unwrap();
        tick_all(&mut conference, &mut [], &mut phones, start, 50);
        let out = conference.outputs().next().unwrap();
        assert_eq!(out.to_bridge.is_some(), expect_frame, "{policy:?}");
        if let Some(frame) = out.to_bridge {
            assert_eq!(frame.audio_level, AudioLevel::SILENCE);
        }
        // The muted phone is not heard by the other phone either.
        assert!(
            phones[1].power(900.0) < 1.0e3,
            "{policy:?}: {}",
            phones[1].power(900.0)
        );
        conference.set_muted(phones[0].id, false).unwrap();
        tick_all(
            &mut conference,
            &mut [],
            &mut phones,
            start + FRAME * 50,
            50,
        );
        assert!(phones[1].power(900.0) > 1.0e6);
    }
}

#[test]
fn dtmf_from_phone_and_from_conference_become_events() {
    let start = t0();
    let mut conference = Conference::new(ConferenceConfig::default());
    let phone = FakePhone::new(1, CodecKind::Pcmu, 0.0);
    conference.add_phone(phone.id, phone.config()).unwrap();
    conference.add_speaker(Ssrc::new(77)).unwrap();
    let mut sender = DtmfSender::new(DtmfDigit::D9, 4000, 480, 160, 10);
    let mut seq = 0u16;
    while let Some(packet) = sender.poll_packet() {
        let mut buf = [0u8; 32];
        let n = RtpHeader {
            marker: packet.marker,
            payload_type: PayloadType::new(101),
            sequence: seq,
            timestamp: packet.timestamp,
            ssrc: Ssrc::new(5),
        }
        .write(&packet.payload, &mut buf)
        .unwrap();
        conference
            .handle_phone_rtp(start, phone.id, &buf[..n])
            .unwrap();
        conference
            .handle_bridge_packet(
                start,
                &BridgePacket {
                    ssrc: Ssrc::new(77),
                    payload_type: PayloadType::new(126),
                    sequence: seq,
                    timestamp: packet.timestamp,
                    audio_level: None,
                    payload: &packet.payload,
                },
            )
            .unwrap();
        seq += 1;
    }
    let events: Vec<_> = std::iter::from_fn(|| conference.poll_event()).collect();
    let ended = DtmfReceived::Ended {
        digit: DtmfDigit::D9,
        duration: 480,
    };
    assert_eq!(
        events,
        [
            MediaEvent::DtmfFromPhone {
                phone: phone.id,
                received: DtmfReceived::Started(DtmfDigit::D9)
            },
            MediaEvent::DtmfFromConference {
                ssrc: Ssrc::new(77),
                received: DtmfReceived::Started(DtmfDigit::D9)
            },
            MediaEvent::DtmfFromPhone {
                phone: phone.id,
                received: ended
            },
            MediaEvent::DtmfFromConference {
                ssrc: Ssrc::new(77),
                received: ended
            },
        ]
    );
}

#[test]
fn dtmf_to_phone_rfc4733_and_inband() {
    let start = t0();
    let mut conference = Conference::new(ConferenceConfig::default());
    let rfc = FakePhone::new(1, CodecKind::Pcmu, 0.0);
    let inband = FakePhone::new(2, CodecKind::Pcmu, 0.0);
    conference.add_phone(rfc.id, rfc.config()).unwrap();
    conference
        .add_phone(
            inband.id,
            PhoneConfig {
                dtmf_method: DtmfMethod::Inband,
                ..inband.config()
            },
        )
        .unwrap();
    conference
        .send_dtmf(rfc.id, DtmfDigit::Star, Duration::from_millis(100))
        .unwrap();
    conference
        .send_dtmf(inband.id, DtmfDigit::D4, Duration::from_millis(100))
        .unwrap();
    let mut events = Vec::new();
    let mut detected = Vec::new();
    let mut decoder = G711Decoder::new(CodecKind::Pcmu);
    let mut sequences = Vec::new();
    for i in 0..10u32 {
        conference.tick(start + FRAME * i);
        for out in conference.outputs() {
            if out.phone == rfc.id {
                let audio = RtpPacket::parse(out.to_phone.unwrap()).unwrap();
                sequences.push(audio.sequence);
                if let Some(dtmf) = out.dtmf_to_phone {
                    let packet = RtpPacket::parse(dtmf).unwrap();
                    assert_eq!(packet.payload_type, PayloadType::new(101));
                    assert_eq!(packet.timestamp, 0, "event timestamp = start");
                    sequences.push(packet.sequence);
                    events.push(TelephoneEvent::parse(packet.payload).unwrap());
                }
            } else {
                assert!(out.dtmf_to_phone.is_none());
                let packet = RtpPacket::parse(out.to_phone.unwrap()).unwrap();
                let mut pcm = [0i16; 160];
                decoder.decode(packet.payload, &mut pcm).unwrap();
                detected.push(detect_dtmf(&pcm, 8000));
            }
        }
    }
    assert_eq!(
        events.len(),
        5 + 2,
        "5 updates/end + 2 more end retransmissions"
    );
    assert_eq!(events.iter().filter(|e| e.end).count(), 3);
    assert!(events.iter().all(|e| e.event == 10));
    // Audio and events share one sequence space, without gaps.
    sequences.sort_unstable();
    assert!(sequences.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    assert_eq!(&detected[..5], &[Some(DtmfDigit::D4); 5]);
    assert_eq!(&detected[5..], &[None; 5]);
}

#[derive(Default)]
struct Capture {
    frames: Vec<(CallId, Direction, SampleRate, usize)>,
}

struct SharedSink(Arc<Mutex<Capture>>);

impl RecordingSink for SharedSink {
    fn record(&mut self, phone: CallId, direction: Direction, rate: SampleRate, pcm: &[i16]) {
        if let Ok(mut capture) = self.0.lock() {
            capture.frames.push((phone, direction, rate, pcm.len()));
        }
    }
}

#[test]
fn recorder_sees_both_directions_every_tick() {
    let start = t0();
    let capture = Arc::new(Mutex::new(Capture::default()));
    let mut conference = Conference::new(ConferenceConfig::default());
    conference.set_recorder(Some(Box::new(SharedSink(capture.clone()))));
    let mut phones = vec![FakePhone::new(1, CodecKind::G722, 700.0)];
    conference
        .add_phone(phones[0].id, phones[0].config())
        .unwrap();
    tick_all(&mut conference, &mut [], &mut phones, start, 3);
    let frames = &capture.lock().unwrap().frames;
    let id = phones[0].id;
    assert_eq!(frames.len(), 6);
    for pair in frames.chunks(2) {
        assert_eq!(
            pair[0],
            (id, Direction::ToConference, SampleRate::Hz16000, 320)
        );
        assert_eq!(pair[1], (id, Direction::ToPhone, SampleRate::Hz16000, 320));
    }
}

#[test]
fn bad_input_gets_typed_errors_and_counts() {
    let start = t0();
    let mut conference = Conference::new(ConferenceConfig::default());
    let phone = FakePhone::new(1, CodecKind::Pcmu, 0.0);
    conference.add_phone(phone.id, phone.config()).unwrap();
    assert!(matches!(
        conference.handle_phone_rtp(start, phone.id, &[0x80, 0, 1]),
        Err(ConferenceError::Rtp(RtpError::Truncated { .. }))
    ));
    let mut buf = [0u8; 40];
    let n = RtpHeader {
        marker: false,
        payload_type: PayloadType::new(96),
        sequence: 1,
        timestamp: 0,
        ssrc: Ssrc::new(1),
    }
    .write(&[0; 8], &mut buf)
    .unwrap();
    let err = conference
        .handle_phone_rtp(start, phone.id, &buf[..n])
        .unwrap_err();
    assert_eq!(
        err,
        ConferenceError::UnknownPayloadType(PayloadType::new(96))
    );
    assert_eq!(err.blame(), Blame::Peer);
    assert_eq!(
        conference.handle_phone_rtp(start, CallId::new(9), &buf[..n]),
        Err(ConferenceError::UnknownPhone(CallId::new(9)))
    );
    let packet = |ssrc: u32| BridgePacket {
        ssrc: Ssrc::new(ssrc),
        payload_type: PayloadType::new(111),
        sequence: 0,
        timestamp: 0,
        audio_level: None,
        payload: &[0xff; 3],
    };
    assert_eq!(
        conference.handle_bridge_packet(start, &packet(5)),
        Err(ConferenceError::UnknownSsrc(Ssrc::new(5)))
    );
    // Our own phone's stream coming back from the bridge is ignored.
    assert_eq!(
        conference.handle_bridge_packet(start, &packet(1001)),
        Ok(())
    );
    assert_eq!(conference.stats().own_ssrc, 1);
    // Garbage Opus from a speaker is concealed, counted, never a panic.
    conference.add_speaker(Ssrc::new(5)).unwrap();
    assert_eq!(
        conference.add_speaker(Ssrc::new(5)),
        Err(ConferenceError::AlreadyAttached)
    );
    for i in 0..5u16 {
        let garbage = BridgePacket {
            sequence: i,
            timestamp: u32::from(i) * 960,
            payload: &[0x03],
            ..packet(5)
        };
        conference
            .handle_bridge_packet(start + FRAME * u32::from(i), &garbage)
            .unwrap();
        conference.tick(start + FRAME * u32::from(i) + Duration::from_millis(5));
    }
    assert!(conference.stats().decode_errors > 0);
    conference.remove_speaker(Ssrc::new(5));
    assert_eq!(conference.speaker_count(), 0);
}

#[test]
fn rtcp_round_trip_time_and_sender_report() {
    let start = t0();
    let mut conference = Conference::new(ConferenceConfig::default());
    let mut phones = vec![FakePhone::new(1, CodecKind::Pcmu, 500.0)];
    let id = phones[0].id;
    conference.add_phone(id, phones[0].config()).unwrap();
    tick_all(&mut conference, &mut [], &mut phones, start, 10);
    let mut sr = [0u8; 256];
    let sent_at = NtpTime(100 << 32);
    let n = conference
        .write_phone_rtcp(start + FRAME * 10, sent_at, id, false, &mut sr)
        .unwrap();
    let Some(Ok(RtcpPacket::SenderReport {
        sender,
        info,
        reports,
    })) = rtcp::parse_compound(&sr[..n]).next()
    else {
        panic!("expected an SR");
    };
    assert_eq!(sender, Ssrc::new(2001));
    assert_eq!(info.packet_count, 10);
    assert_eq!(reports.iter().next().unwrap().highest_sequence & 0xffff, 9);
    // The phone answers with an RR: held 100 ms, arriving 150 ms after our SR.
    let block = crate::rtcp::ReportBlock {
        ssrc: Ssrc::new(2001),
        last_sr: sent_at.middle32(),
        delay_since_last_sr: 65_536 / 10,
        ..Default::default()
    };
    let mut rr = [0u8; 64];
    let n = rtcp::write_receiver_report(Ssrc::new(0xabc1), &[block], &mut rr).unwrap();
    let arrival = NtpTime((100 << 32) + (0.15 * 4_294_967_296.0) as u64);
    conference
        .handle_phone_rtcp(start, arrival, id, &rr[..n])
        .unwrap();
    let rtt = conference.phone_stats(id).unwrap().round_trip_time.unwrap();
    assert!((rtt.as_secs_f64() - 0.05).abs() < 0.001, "{rtt:?}");
    let stats = conference.phone_stats(id).unwrap();
    assert_eq!(stats.receive.unwrap().received(), 10);
    assert_eq!(stats.sent_packets, 10);
    assert_eq!(stats.remote_report, Some(block));
    assert_eq!(stats.rtcp_received, 1);
}

#[test]
fn rtcp_is_sr_after_sending_else_rr_with_cname_and_bye() {
    let start = t0();
    let mut conference = Conference::new(ConferenceConfig::default());
    let mut phones = vec![FakePhone::new(1, CodecKind::Pcmu, 500.0)];
    let id = phones[0].id;
    conference.add_phone(id, phones[0].config()).unwrap();
    let types = |buf: &[u8]| -> Vec<u8> {
        rtcp::parse_compound(buf)
            .map(|p| match p.unwrap() {
                RtcpPacket::SenderReport { .. } => 200,
                RtcpPacket::ReceiverReport { .. } => 201,
                RtcpPacket::Other { packet_type } => packet_type,
            })
            .collect()
    };
    let mut out = [0u8; 256];
    // Nothing sent, nothing received: an RR without blocks, and the CNAME.
    let n = conference
        .write_phone_rtcp(start, NtpTime(1 << 32), id, false, &mut out)
        .unwrap();
    assert_eq!(types(&out[..n]), [201, 202]);
    assert!(out[..n].windows(18).any(|w| w == b"jigasi-rs-000007d1"));
    assert_eq!(conference.phone_stats(id).unwrap().local_report, None);
    tick_all(&mut conference, &mut [], &mut phones, start, 5);
    let n = conference
        .write_phone_rtcp(start + FRAME * 5, NtpTime(2 << 32), id, false, &mut out)
        .unwrap();
    assert_eq!(types(&out[..n]), [200, 202]);
    // On hold nothing is sent: an RR although the tick ran.
    conference.set_sending(id, false).unwrap();
    for i in 5..8 {
        phones[0].send(start + FRAME * i, &mut conference);
        conference.tick(start + FRAME * i + Duration::from_millis(5));
        assert!(conference.outputs().all(|o| o.to_phone.is_none()));
    }
    assert_eq!(conference.phone_stats(id).unwrap().sent_packets, 5);
    let n = conference
        .write_phone_rtcp(start + FRAME * 8, NtpTime(2 << 32), id, false, &mut out)
        .unwrap();
    assert_eq!(types(&out[..n]), [201, 202]);
    conference.set_sending(id, true).unwrap();
    // Nothing sent since that report (no tick): an RR again, now with the phone's block.
    let n = conference
        .write_phone_rtcp(start + FRAME * 5, NtpTime(3 << 32), id, true, &mut out)
        .unwrap();
    assert_eq!(types(&out[..n]), [201, 202, 203]);
    let Some(Ok(RtcpPacket::ReceiverReport { reports, .. })) =
        rtcp::parse_compound(&out[..n]).next()
    else {
        panic!("expected an RR");
    };
    assert_eq!(reports.len(), 1);
    assert_eq!(
        conference.phone_stats(id).unwrap().local_report,
        reports.iter().next()
    );
    assert!(matches!(
        conference.write_phone_rtcp(start, NtpTime(0), id, true, &mut out[..40]),
        Err(ConferenceError::Rtcp(_))
    ));
}

#[test]
fn malformed_rtcp_is_rejected_whole_and_changes_nothing() {
    let start = t0();
    let mut conference = Conference::new(ConferenceConfig::default());
    let phones = [FakePhone::new(1, CodecKind::Pcmu, 500.0)];
    let id = phones[0].id;
    conference.add_phone(id, phones[0].config()).unwrap();
    let block = crate::rtcp::ReportBlock {
        ssrc: Ssrc::new(2001),
        fraction_lost: 64,
        ..Default::default()
    };
    let mut rr = [0u8; 80];
    let n = rtcp::write_receiver_report(Ssrc::new(0xabc1), &[block], &mut rr).unwrap();
    // A valid RR followed by a truncated packet: the whole datagram is refused.
    rr[n..n + 4].copy_from_slice(&[0x80, 201, 0, 7]);
    for bad in [
        &rr[..n + 4],
        &[][..],
        &[0x40, 201, 0, 1, 0, 0, 0, 0][..],
        &rr[..n - 1],
    ] {
        let error = conference
            .handle_phone_rtcp(start, NtpTime(0), id, bad)
            .unwrap_err();
        assert!(matches!(error, ConferenceError::Rtcp(_)), "{error:?}");
        assert_eq!(error.blame(), crate::Blame::Peer);
    }
    let stats = conference.phone_stats(id).unwrap();
    assert_eq!(stats.remote_report, None);
    assert_eq!(stats.rtcp_received, 0);
    conference
        .handle_phone_rtcp(start, NtpTime(0), id, &rr[..n])
        .unwrap();
    let stats = conference.phone_stats(id).unwrap();
    assert_eq!(stats.remote_report.map(|b| b.fraction_lost), Some(64));
    assert_eq!(stats.rtcp_received, 1);
}

#[test]
fn wideband_phone_hears_the_conference_at_16_khz() {
    let start = t0();
    let mut conference = Conference::new(ConferenceConfig::default());
    // 5 kHz only exists at 16 kHz: the speaker was decoded at the G.722 phone's rate.
    let mut speakers = vec![FakeSpeaker::new(1, 5000.0, 8000.0)];
    conference.add_speaker(speakers[0].ssrc).unwrap();
    let mut phones = vec![FakePhone::new(1, CodecKind::G722, 0.0)];
    conference
        .add_phone(phones[0].id, phones[0].config())
        .unwrap();
    tick_all(&mut conference, &mut speakers, &mut phones, start, 60);
    assert!(
        phones[0].power(5000.0) > 1.0e6,
        "{}",
        phones[0].power(5000.0)
    );
    let _ = G722Decoder::new();
}

#[test]
fn a_phone_moves_between_conferences_with_its_state() {
    let start = t0();
    let mut own = Conference::new(ConferenceConfig::default());
    let mut shared = Conference::new(ConferenceConfig::default());
    let mut speakers = vec![FakeSpeaker::new(1, 500.0, 6000.0)];
    shared.add_speaker(speakers[0].ssrc).unwrap();
    let mut first = vec![FakePhone::new(1, CodecKind::Pcmu, 1700.0)];
    shared.add_phone(first[0].id, first[0].config()).unwrap();
    let mut moving = vec![FakePhone::new(2, CodecKind::G722, 2300.0)];
    own.add_phone(moving[0].id, moving[0].config()).unwrap();
    tick_all(&mut own, &mut [], &mut moving, start, 20);
    let sent = own.phone_stats(moving[0].id).unwrap().sent_packets;
    let last_sequence = |conference: &Conference, id: CallId| {
        let out = conference.outputs().find(|o| o.phone == id).unwrap();
        RtpPacket::parse(out.to_phone.unwrap()).unwrap().sequence
    };
    let sequence = last_sequence(&own, moving[0].id);

    let phone = own.take_phone(moving[0].id).unwrap();
    assert!(!own.has_phone(moving[0].id));
    assert_eq!(own.phone_count(), 0);
    assert!(matches!(
        own.take_phone(moving[0].id),
        Err(ConferenceError::UnknownPhone(_))
    ));
    shared.insert_phone(phone).unwrap();
    assert_eq!(shared.phone_count(), 2);
    // Its counters and RTP sequence carry on where they were.
    assert_eq!(shared.phone_stats(moving[0].id).unwrap().sent_packets, sent);

    let mut phones = vec![first.pop().unwrap(), moving.pop().unwrap()];
    tick_all(
        &mut shared,
        &mut speakers,
        &mut phones,
        start + FRAME * 20,
        1,
    );
    assert_eq!(
        last_sequence(&shared, phones[1].id),
        sequence.wrapping_add(1)
    );
    tick_all(
        &mut shared,
        &mut speakers,
        &mut phones,
        start + FRAME * 21,
        100,
    );
    // The wideband phone needs the speaker at 16 kHz too: two decodes per tick now.
    let before = shared.stats().speaker_decodes;
    tick_all(
        &mut shared,
        &mut speakers,
        &mut phones,
        start + FRAME * 121,
        10,
    );
    assert_eq!(shared.stats().speaker_decodes - before, 2 * 10);
    // Both hear the speaker and each other, not themselves.
    for (p, own_hz, other_hz) in [(&phones[0], 1700.0, 2300.0), (&phones[1], 2300.0, 1700.0)] {
        assert!(p.power(500.0) > 1.0e6, "phone {} hears the speaker", p.id);
        assert!(
            p.power(other_hz) > 1.0e6,
            "phone {} hears the other phone",
            p.id
        );
        assert!(
            p.power(own_hz) < 1.0e3,
            "phone {} does not hear itself",
            p.id
        );
    }
    // A phone with an id already attached is refused.
    let mut other = Conference::new(ConferenceConfig::default());
    let twin = phones[0].id;
    other.add_phone(twin, phones[0].config()).unwrap();
    assert!(matches!(
        shared.insert_phone(other.take_phone(twin).unwrap()),
        Err(ConferenceError::AlreadyAttached)
    ));
    assert_eq!(shared.phone_count(), 2);
}

#[test]
fn a_speaker_is_taken_from_one_bridge_leg_until_that_leg_goes_quiet() {
    let start = t0();
    let mut conference = Conference::new(ConferenceConfig::default());
    let ssrc = Ssrc::new(77);
    conference.add_speaker(ssrc).unwrap();
    let (a, b) = (CallId::new(1), CallId::new(2));
    let payload = [0xf8u8, 0xff, 0xfe]; // an Opus silence frame
    let packet = |sequence: u16| BridgePacket {
        ssrc,
        payload_type: PayloadType::new(111),
        sequence,
        timestamp: u32::from(sequence) * 960,
        audio_level: None,
        payload: &payload,
    };
    // Both legs deliver every packet: only leg A's copy reaches the jitter buffer.
    for sequence in 0..10u16 {
        let now = start + FRAME * u32::from(sequence);
        conference
            .handle_leg_packet(now, a, &packet(sequence))
            .unwrap();
        conference
            .handle_leg_packet(now, b, &packet(sequence))
            .unwrap();
    }
    assert_eq!(conference.speaker_stats(ssrc).unwrap().pushed, 10);
    assert_eq!(conference.speaker_stats(ssrc).unwrap().duplicates, 0);
    assert_eq!(conference.stats().other_leg, 10);
    // Leg A stops (its call left the room): B takes over once A was quiet for LEG_TAKEOVER.
    let quiet_from = start + FRAME * 9;
    let mut sequence = 10u16;
    let mut now = quiet_from;
    while now.saturating_duration_since(quiet_from) < LEG_TAKEOVER {
        now += FRAME;
        conference
            .handle_leg_packet(now, b, &packet(sequence))
            .unwrap();
        sequence += 1;
    }
    let taken_over_at = conference.speaker_stats(ssrc).unwrap().pushed;
    assert_eq!(
        taken_over_at, 11,
        "B's first packet after the takeover is used"
    );
    for _ in 0..5 {
        now += FRAME;
        conference
            .handle_leg_packet(now, b, &packet(sequence))
            .unwrap();
        sequence += 1;
    }
    assert_eq!(conference.speaker_stats(ssrc).unwrap().pushed, 16);
    // A is back, but B owns the speaker now.
    conference
        .handle_leg_packet(now, a, &packet(sequence - 1))
        .unwrap();
    assert_eq!(conference.speaker_stats(ssrc).unwrap().pushed, 16);
    // B's call leaves: A's next packet is taken at once.
    conference.release_leg(b);
    conference
        .handle_leg_packet(now, a, &packet(sequence))
        .unwrap();
    assert_eq!(conference.speaker_stats(ssrc).unwrap().pushed, 17);
    // Unknown speakers are reported as before, whichever leg.
    assert!(matches!(
        conference.handle_leg_packet(
            now,
            a,
            &BridgePacket {
                ssrc: Ssrc::new(78),
                ..packet(0)
            }
        ),
        Err(ConferenceError::UnknownSsrc(_))
    ));
}

#[test]
fn a_wideband_phones_clock_drift_is_absorbed_in_its_pauses() {
    // A G.722 phone whose clock runs 1 % fast, talking in 1 s bursts with 1 s pauses: the
    // jitter buffer must drop frames to keep the delay, and G.722 carries no level, so the
    // last decoded frame's level tells it where the pauses are. Without that every drop was
    // forced after 3 s, wherever it fell (half of them mid-word).
    let start = t0();
    let mut conference = Conference::new(ConferenceConfig::default());
    let id = CallId::new(1);
    let rate = SampleRate::Hz16000;
    conference
        .add_phone(
            id,
            PhoneConfig::new(CodecKind::G722, Ssrc::new(1), Ssrc::new(2)),
        )
        .unwrap();
    let mut encoder =
        encoder_for(CodecKind::G722, rate, &OpusEncoderConfig::for_rate(rate)).unwrap();
    let tone = sine(700.0, 16_000, 8000.0, 320 * 50);
    let silence = vec![0i16; 320];
    let talking = |frame: u64| (frame / 50).is_multiple_of(2);
    let period_us = 19_800u64; // 1 % fast
    let mut next_packet = 0u64;
    let mut drop_frames = Vec::new();
    let mut payload = [0u8; MAX_PAYLOAD];
    let mut packet = [0u8; 1500];
    for tick in 0..2000u64 {
        let now_us = 20_000 * tick + 5_000;
        while next_packet * period_us <= now_us {
            let i = next_packet;
            let pcm = if talking(i) {
                &tone[(i as usize % 50) * 320..(i as usize % 50 + 1) * 320]
            } else {
                &silence[..]
            };
            let len = encoder.encode(pcm, &mut payload).unwrap();
            let total = RtpHeader {
                marker: false,
                payload_type: PayloadType::new(9),
                sequence: i as u16,
                timestamp: (i * 160) as u32,
                ssrc: Ssrc::new(0xabc),
            }
            .write(&payload[..len], &mut packet)
            .unwrap();
            conference
                .handle_phone_rtp(
                    start + Duration::from_micros(i * period_us),
                    id,
                    &packet[..total],
                )
                .unwrap();
            next_packet += 1;
        }
        let before = conference.phone_stats(id).unwrap().jitter.dropped;
        conference.tick(start + Duration::from_micros(now_us));
        if conference.phone_stats(id).unwrap().jitter.dropped > before {
            // The frame dropped is about the one sent two to three frames ago.
            drop_frames.push(next_packet.saturating_sub(3));
        }
    }
    assert!(
        drop_frames.len() >= 10,
        "drift absorbed by drops: {drop_frames:?}"
    );
    // Each drop in a pause (allowing the few frames the level lags behind at its edges).
    let in_pause = |frame: u64| (frame.saturating_sub(3)..=frame + 3).any(|f| !talking(f));
    let mid_word: Vec<_> = drop_frames.iter().filter(|f| !in_pause(**f)).collect();
    assert!(
        mid_word.is_empty(),
        "drops mid-word at frames {mid_word:?} of {drop_frames:?}"
    );
}
