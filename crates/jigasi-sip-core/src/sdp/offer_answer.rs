//! RFC 3264 offer/answer for the phone leg: one audio stream, our codec preferences,
//! telephone-event, hold directions, ptime and optional SDES-SRTP (RFC 4568).
//!
//! Pure: addresses, ports and SRTP keys come in as arguments (keys from the caller's RNG).

use std::net::{IpAddr, SocketAddr};

use jigasi_types::PayloadType;

use super::{
    Connection, Crypto, Direction, MediaDescription, Origin, Rtpmap, SdesSuite, SdpError,
    SessionDescription, encode_key,
};

/// One `Encodings.<name>/<clock>=<priority>` entry (`jigasi-behaviour.md` §1.2): higher is
/// preferred, 0 disables the codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecPreference {
    /// Encoding name as in `rtpmap` (`opus`, `PCMU`, `G722`, `telephone-event`).
    pub name: String,
    /// RTP clock rate (`G722/8000`, `opus/48000`).
    pub clock_rate: u32,
    /// Priority; 0 = disabled.
    pub priority: u32,
}

impl CodecPreference {
    /// Reads a property pair such as `("opus/48000", "1000")` (the part of the key after
    /// `Encodings.`). `None` when either side does not parse.
    pub fn from_encoding_property(key: &str, value: &str) -> Option<Self> {
        let (name, clock) = key.trim().rsplit_once('/')?;
        Some(Self {
            name: name.to_owned(),
            clock_rate: clock.parse().ok()?,
            priority: value.trim().parse().ok()?,
        })
    }

    fn matches(&self, name: &str, clock_rate: u32) -> bool {
        self.name.eq_ignore_ascii_case(name) && self.clock_rate == clock_rate
    }
}

/// Jigasi's shipped `Encodings.*` order (`jigasi-home/sip-communicator.properties`):
/// opus 1000, AMR-WB 750, G722 700, PCMU 650, PCMA 600, iLBC 10, telephone-event 1.
pub fn jigasi_default_codecs() -> Vec<CodecPreference> {
    [
        ("opus", 48_000, 1000),
        ("AMR-WB", 16_000, 750),
        ("G722", 8_000, 700),
        ("PCMU", 8_000, 650),
        ("PCMA", 8_000, 600),
        ("iLBC", 8_000, 10),
        ("telephone-event", 8_000, 1),
    ]
    .into_iter()
    .map(|(name, clock_rate, priority)| CodecPreference {
        name: name.to_owned(),
        clock_rate,
        priority,
    })
    .collect()
}

/// Whether and how we use SDES-SRTP on the phone leg (Jigasi: `DEFAULT_ENCRYPTION`,
/// `SAVP_OPTION`, `SDES_CIPHER_SUITES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpPolicy {
    /// Plain RTP only: an `RTP/SAVP` offer is declined (Jigasi's default).
    #[default]
    Off,
    /// Accept either; our offers are `RTP/AVP` carrying `a=crypto` lines (best-effort SRTP),
    /// and an `RTP/AVP` offer carrying a usable `a=crypto` line is answered with SRTP.
    Optional,
    /// SRTP only: our offers are `RTP/SAVP`; a plain `RTP/AVP` offer is declined.
    Required,
}

/// SRTP master key (16 bytes) and salt (14 bytes) for the AES-CM-128 suites (RFC 3711 §8.2).
pub type SdesKey = [u8; 30];

/// Our side of the phone leg's media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Address in `c=` and `o=`.
    pub address: IpAddr,
    /// Our RTP port.
    pub rtp_port: u16,
    /// Codec preferences (`Encodings.*`).
    pub codecs: Vec<CodecPreference>,
    /// Packetization we ask for when the offer names none. Default 20 ms.
    pub ptime: u32,
    /// SRTP policy.
    pub srtp: SrtpPolicy,
    /// Our SDES key; required unless `srtp` is [`SrtpPolicy::Off`].
    pub sdes_key: Option<SdesKey>,
    /// The SDES suites we offer and accept, in our order of preference
    /// (`SDES_CIPHER_SUITES`; default both AES-CM-128 suites, 80-bit tag first).
    pub sdes_suites: Vec<SdesSuite>,
}

impl LocalMedia {
    /// Plain-RTP media with Jigasi's default codecs and 20 ms packets.
    pub fn new(address: IpAddr, rtp_port: u16) -> Self {
        Self {
            address,
            rtp_port,
            codecs: jigasi_default_codecs(),
            ptime: 20,
            srtp: SrtpPolicy::Off,
            sdes_key: None,
            sdes_suites: vec![
                SdesSuite::AesCm128HmacSha1_80,
                SdesSuite::AesCm128HmacSha1_32,
            ],
        }
    }

    fn priority(&self, name: &str, clock_rate: u32) -> u32 {
        self.codecs
            .iter()
            .find(|c| c.matches(name, clock_rate))
            .map_or(0, |c| c.priority)
    }

    /// telephone-event is used unless a preference disables it with priority 0.
    fn telephone_event_enabled(&self) -> bool {
        !self
            .codecs
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case("telephone-event") && c.priority == 0)
    }
}

/// The audio codec both sides use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedCodec {
    /// Payload type (the offerer's number, RFC 3264 §6.1).
    pub payload_type: PayloadType,
    /// Encoding name as the peer wrote it.
    pub name: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Audio sample rate (16 kHz for G.722 on its 8 kHz RTP clock).
    pub sample_rate: u32,
    /// Channels (1 unless the rtpmap says otherwise; opus is written `/2`).
    pub channels: u8,
    /// The peer's `fmtp` for it.
    pub fmtp: Option<String>,
}

impl NegotiatedCodec {
    /// One `name=value` parameter of the peer's `fmtp` (RFC 4855 style `a; b=c` lists, names
    /// compared without case), if it is there.
    pub fn fmtp_param(&self, name: &str) -> Option<&str> {
        self.fmtp
            .as_deref()?
            .split(';')
            .filter_map(|param| param.split_once('='))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
    }
}

/// RFC 4733 telephone-event parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Payload type.
    pub payload_type: PayloadType,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// `fmtp` event list, e.g. `0-16`.
    pub events: Option<String>,
}

/// Negotiated SDES-SRTP (RFC 4568).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpParams {
    /// The crypto suite.
    pub suite: SdesSuite,
    /// The crypto tag both sides use.
    pub tag: u32,
    /// The peer's master key and salt (decrypts what it sends).
    pub remote_key: Vec<u8>,
    /// Our master key and salt (encrypts what we send).
    pub local_key: SdesKey,
}

/// The outcome of an offer/answer exchange: everything the media leg needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiation {
    /// The audio codec.
    pub codec: NegotiatedCodec,
    /// telephone-event, if both sides have it.
    pub telephone_event: Option<TelephoneEvent>,
    /// Where to send RTP. `0.0.0.0` means RFC 2543-style hold: send nothing.
    pub remote_address: IpAddr,
    /// The peer's RTP port.
    pub remote_port: u16,
    /// Our direction: whether we send and/or receive (sendonly offer → we are recvonly).
    pub direction: Direction,
    /// Packetization the peer asked for, if any.
    pub remote_ptime: Option<u32>,
    /// SRTP, when negotiated.
    pub srtp: Option<SrtpParams>,
    /// Where the peer wants RTCP (`a=rtcp`, RFC 3605), when not on the RTP port + 1 of
    /// `remote_address`.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTCP is multiplexed on the RTP ports (RFC 5761): offered and answered.
    pub rtcp_mux: bool,
}

impl Negotiation {
    /// Whether we should send RTP now: our direction sends and the address is not a hold address.
    pub fn sending(&self) -> bool {
        self.direction.sends() && !self.remote_address.is_unspecified()
    }
}

/// Our answer to an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The SDP text to put in the 200 OK.
    pub sdp: String,
    /// What was agreed.
    pub negotiation: Negotiation,
}

/// Our offer for a dial-out INVITE, with what we need to process the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The SDP text for the INVITE.
    pub sdp: String,
    /// The audio media section we offered.
    media: MediaDescription,
    /// Our SDES key, if any crypto was offered.
    sdes_key: Option<SdesKey>,
}

/// An offer/answer failure, grouped by who is to blame (style-anchors B5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferAnswerError {
    /// The peer's SDP is broken.
    #[error("peer sent a bad session description: {0}")]
    PeerMisbehaved(#[from] PeerMisbehaved),
    /// The peer's SDP is fine but we share nothing usable.
    #[error("no usable audio in common with the peer: {0}")]
    PeerIncompatible(#[from] PeerIncompatible),
    /// Our own configuration cannot produce SDP.
    #[error("local media configuration: {0}")]
    LocalConfig(#[from] LocalConfigError),
}

impl OfferAnswerError {
    /// The SIP status for rejecting an offer with this error: 400 Bad Request for broken SDP,
    /// 488 Not Acceptable Here for no common media (RFC 3261 §21.4.26), 500 for our own
    /// configuration.
    pub fn sip_status(&self) -> u16 {
        match self {
            Self::PeerMisbehaved(_) => 400,
            Self::PeerIncompatible(_) => 488,
            Self::LocalConfig(_) => 500,
        }
    }
}

impl From<SdpError> for OfferAnswerError {
    fn from(e: SdpError) -> Self {
        Self::PeerMisbehaved(PeerMisbehaved::Syntax(e))
    }
}

/// The peer's SDP is malformed or contradicts our offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerMisbehaved {
    /// It does not parse.
    #[error("{0}")]
    Syntax(#[from] SdpError),
    /// An active audio stream without any `c=`.
    #[error("audio stream without a connection address")]
    NoConnection,
    /// An answer with a different number of media sections than our offer (RFC 3264 §6).
    #[error("answer has {got} media sections, the offer had {offered}")]
    MediaCountMismatch {
        /// Sections in our offer.
        offered: usize,
        /// Sections in the answer.
        got: usize,
    },
    /// An answer whose codec we did not offer.
    #[error("answer uses a codec we did not offer")]
    UnofferedCodec,
    /// An SRTP answer without a crypto line matching one we offered (RFC 4568 §7.1.2).
    #[error("answer has no crypto line matching our offer")]
    UnofferedCrypto,
}

/// Nothing in common with the peer: answer 488.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerIncompatible {
    /// No active audio stream at all (no `m=audio`, or all with port 0).
    #[error("no active audio stream")]
    NoAudio,
    /// No offered audio codec is enabled in our preferences.
    #[error("no common audio codec")]
    NoCommonCodec,
    /// The peer wants SRTP (`RTP/SAVP`) and SRTP is off here.
    #[error("peer requires SRTP, which is disabled")]
    SrtpNotEnabled,
    /// We require SRTP and the peer offered plain RTP.
    #[error("SRTP is required, peer offered plain RTP")]
    SrtpRequired,
    /// SRTP, but no crypto suite we implement (or a key that is not 30 bytes).
    #[error("no usable SDES crypto suite")]
    NoCryptoSuite,
    /// The answer declined our audio stream (port 0).
    #[error("peer declined the audio stream")]
    AudioDeclined,
}

/// Our configuration cannot make SDP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalConfigError {
    /// Every codec has priority 0.
    #[error("no codec is enabled")]
    NoCodecEnabled,
    /// SRTP is on but no key was supplied.
    #[error("SRTP is enabled but no SDES key was supplied")]
    MissingSrtpKey,
}

/// Our SDP session: the `o=` identity and its version counter (RFC 4566 §5.2, RFC 3264 §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpSession {
    username: String,
    session_id: u64,
    version: u64,
    /// Body of our last SDP without the `o=` line, to tell a changed SDP from a repeated one.
    last_body: Option<String>,
}

impl SdpSession {
    /// A session with `o=<username> <session_id> 1 ...`. The id should come from the caller's
    /// RNG (RFC 4566 §5.2 suggests an NTP timestamp; any unique number works).
    pub fn new(username: &str, session_id: u64) -> Self {
        Self {
            username: username.to_owned(),
            session_id,
            version: 1,
            last_body: None,
        }
    }

    /// The version the next changed SDP will carry minus one, i.e. the current one.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Answers an offer (RFC 3264 §6): the first active RTP audio stream we can serve gets our
    /// preferred common codec plus telephone-event, the mirrored direction, ptime and SDES if
    /// negotiated; every other stream (video, extra audio, declined) is answered with port 0.
    ///
    /// Works the same for initial INVITEs and re-INVITEs (hold/resume); the `o=` version goes
    /// up only when the answer differs from our previous SDP.
    pub fn answer(
        &mut self,
        offer: &SessionDescription,
        local: &LocalMedia,
    ) -> Result<Answer, OfferAnswerError> {
        let mut accepted: Option<(MediaDescription, Negotiation)> = None;
        let mut failure = PeerIncompatible::NoAudio;
        let mut answer_media = Vec::with_capacity(offer.media.len());
        for media in &offer.media {
            let usable =
                accepted.is_none() && media.media == "audio" && media.port != 0 && media.is_rtp();
            if usable {
                match answer_audio(offer, media, local)? {
                    Ok((answered, negotiation)) => {
                        answer_media.push(answered.clone());
                        accepted = Some((answered, negotiation));
                        continue;
                    }
                    Err(reason) => failure = failure.max_priority(reason),
                }
            }
            answer_media.push(declined(media));
        }
        let Some((_, negotiation)) = accepted else {
            return Err(failure.into());
        };
        let sdp = self.render(local.address, answer_media);
        Ok(Answer { sdp, negotiation })
    }

    /// Our offer for a dial-out call (`jigasi-behaviour.md` §1.4 step 5): every enabled codec
    /// in priority order (static payload types where RFC 3551 has one, dynamic from 96
    /// otherwise), `telephone-event/8000` as 101, `ptime`, sendrecv, and SDES crypto lines for
    /// both AES-CM-128 suites when SRTP is not off.
    pub fn offer(&mut self, local: &LocalMedia) -> Result<Offer, OfferAnswerError> {
        let mut codecs: Vec<&CodecPreference> = local
            .codecs
            .iter()
            .filter(|c| c.priority > 0 && !c.name.eq_ignore_ascii_case("telephone-event"))
            .collect();
        codecs.sort_by_key(|c| std::cmp::Reverse(c.priority));
        if codecs.is_empty() {
            return Err(LocalConfigError::NoCodecEnabled.into());
        }
        let mut next_dynamic = 96u8;
        let mut rtpmaps = Vec::new();
        for codec in codecs {
            let pt = match Rtpmap::static_payload_type(&codec.name, codec.clock_rate) {
                Some(pt) => pt,
                None => {
                    if next_dynamic == TELEPHONE_EVENT_PT {
                        next_dynamic += 1;
                    }
                    if next_dynamic > 127 {
                        continue;
                    }
                    next_dynamic += 1;
                    PayloadType::new(next_dynamic - 1)
                }
            };
            let channels = codec.name.eq_ignore_ascii_case("opus").then_some(2);
            rtpmaps.push(Rtpmap {
                payload_type: pt,
                encoding: codec.name.clone(),
                clock_rate: codec.clock_rate,
                channels,
            });
        }
        let mut fmtps: Vec<(PayloadType, String)> = rtpmaps
            .iter()
            .filter(|r| r.encoding.eq_ignore_ascii_case("opus"))
            .map(|r| (r.payload_type, OPUS_FMTP.to_owned()))
            .collect();
        if local.telephone_event_enabled() {
            let pt = PayloadType::new(TELEPHONE_EVENT_PT);
            rtpmaps.push(Rtpmap {
                payload_type: pt,
                encoding: "telephone-event".into(),
                clock_rate: 8_000,
                channels: None,
            });
            fmtps.push((pt, "0-16".to_owned()));
        }
        let (proto, crypto, sdes_key) = match local.srtp {
            SrtpPolicy::Off => ("RTP/AVP", Vec::new(), None),
            policy @ (SrtpPolicy::Optional | SrtpPolicy::Required) => {
                let key = local.sdes_key.ok_or(LocalConfigError::MissingSrtpKey)?;
                let crypto = local
                    .sdes_suites
                    .iter()
                    .copied()
                    .zip(1..)
                    .map(|(suite, tag)| Crypto {
                        tag,
                        suite: suite.name().to_owned(),
                        key_params: format!("inline:{}", encode_key(&key)),
                        session_params: None,
                    })
                    .collect();
                let proto = if policy == SrtpPolicy::Required {
                    "RTP/SAVP"
                } else {
                    "RTP/AVP"
                };
                (proto, crypto, Some(key))
            }
        };
        let media = MediaDescription {
            media: "audio".into(),
            port: local.rtp_port,
            port_count: None,
            proto: proto.into(),
            formats: rtpmaps.iter().map(|r| r.payload_type.to_string()).collect(),
            connection: None,
            direction: Some(Direction::SendRecv),
            rtpmaps,
            fmtps,
            ptime: Some(local.ptime),
            maxptime: None,
            crypto,
            other: Vec::new(),
        };
        let sdp = self.render(local.address, vec![media.clone()]);
        Ok(Offer {
            sdp,
            media,
            sdes_key,
        })
    }

    /// Processes the answer to our [`SdpSession::offer`] (RFC 3264 §7): the first answered
    /// codec we offered is the one we send, telephone-event if kept, the direction mirrored
    /// back, and SDES if the answer picked one of our crypto lines.
    pub fn process_answer(
        &self,
        offer: &Offer,
        answer: &SessionDescription,
    ) -> Result<Negotiation, OfferAnswerError> {
        let [media] = answer.media.as_slice() else {
            return Err(PeerMisbehaved::MediaCountMismatch {
                offered: 1,
                got: answer.media.len(),
            }
            .into());
        };
        if media.port == 0 {
            return Err(PeerIncompatible::AudioDeclined.into());
        }
        let offered = &offer.media;
        let mut codec = None;
        let mut telephone_event = None;
        for pt in media.payload_types() {
            let Some(ours) = offered.rtpmaps.iter().find(|r| r.payload_type == pt) else {
                continue;
            };
            let theirs = media.codec(pt).unwrap_or_else(|| ours.clone());
            if !theirs.encoding.eq_ignore_ascii_case(&ours.encoding)
                || theirs.clock_rate != ours.clock_rate
            {
                return Err(PeerMisbehaved::UnofferedCodec.into());
            }
            if theirs.is_telephone_event() {
                telephone_event.get_or_insert(TelephoneEvent {
                    payload_type: pt,
                    clock_rate: theirs.clock_rate,
                    events: media.fmtp(pt).map(str::to_owned),
                });
            } else if codec.is_none() {
                codec = Some(negotiated_codec(media, &theirs));
            }
        }
        let codec = codec.ok_or(PeerMisbehaved::UnofferedCodec)?;
        let connection = answer
            .connection_for(media)
            .ok_or(PeerMisbehaved::NoConnection)?;
        let srtp = match (offer.sdes_key, media.crypto.first()) {
            (Some(local_key), Some(chosen)) => {
                let ours = offered
                    .crypto
                    .iter()
                    .find(|c| c.tag == chosen.tag && c.suite == chosen.suite)
                    .ok_or(PeerMisbehaved::UnofferedCrypto)?;
                let suite = ours.known_suite().ok_or(PeerMisbehaved::UnofferedCrypto)?;
                let remote_key = chosen
                    .inline_key()
                    .filter(|k| k.len() == 30)
                    .ok_or(PeerIncompatible::NoCryptoSuite)?;
                Some(SrtpParams {
                    suite,
                    tag: chosen.tag,
                    remote_key,
                    local_key,
                })
            }
            (Some(_), None) if offered.is_secure() || media.is_secure() => {
                return Err(PeerMisbehaved::UnofferedCrypto.into());
            }
            (None, Some(_)) => return Err(PeerMisbehaved::UnofferedCrypto.into()),
            (Some(_) | None, None) => None,
        };
        Ok(Negotiation {
            codec,
            telephone_event,
            remote_address: connection.address,
            remote_port: media.port,
            direction: answer.direction_for(media).reversed(),
            remote_ptime: media.ptime,
            srtp,
            remote_rtcp: remote_rtcp(media, connection.address),
            // We never offer rtcp-mux, so an answer cannot choose it (RFC 5761 §5.1.1).
            rtcp_mux: false,
        })
    }

    /// Writes a session with our origin, bumping the version when the content changed.
    fn render(&mut self, address: IpAddr, media: Vec<MediaDescription>) -> String {
        let mut session = SessionDescription {
            origin: Origin {
                username: self.username.clone(),
                session_id: self.session_id.to_string(),
                session_version: String::new(),
                address: address.to_string(),
            },
            session_name: "-".into(),
            connection: Some(Connection { address }),
            direction: None,
            media,
        };
        let body = session.to_string();
        match &self.last_body {
            Some(last) if *last == body => {}
            Some(_) => self.version += 1,
            None => {}
        }
        self.last_body = Some(body);
        session.origin.session_version = self.version.to_string();
        session.to_string()
    }
}

/// telephone-event's payload type in our offers (`jigasi-behaviour.md` §1.4).
const TELEPHONE_EVENT_PT: u8 = 101;

impl PeerIncompatible {
    /// When several streams fail, report the most telling reason.
    fn max_priority(self, other: Self) -> Self {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Self::NoAudio | Self::AudioDeclined => 0,
            Self::NoCommonCodec => 1,
            Self::SrtpNotEnabled | Self::SrtpRequired => 2,
            Self::NoCryptoSuite => 3,
        }
    }
}

/// The peer's RTCP address from `a=rtcp` (RFC 3605), the media address when it names none.
fn remote_rtcp(media: &MediaDescription, address: IpAddr) -> Option<SocketAddr> {
    media
        .rtcp_attribute()
        .map(|(port, rtcp_address)| SocketAddr::new(rtcp_address.unwrap_or(address), port))
}

/// The answer to a stream we do not take: same media and proto, port 0 (RFC 3264 §6).
fn declined(media: &MediaDescription) -> MediaDescription {
    MediaDescription {
        media: media.media.clone(),
        port: 0,
        port_count: None,
        proto: media.proto.clone(),
        formats: if media.formats.is_empty() {
            vec!["0".into()]
        } else {
            media.formats.clone()
        },
        connection: None,
        direction: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        ptime: None,
        maxptime: None,
        crypto: Vec::new(),
        other: Vec::new(),
    }
}

fn negotiated_codec(media: &MediaDescription, rtpmap: &Rtpmap) -> NegotiatedCodec {
    NegotiatedCodec {
        payload_type: rtpmap.payload_type,
        name: rtpmap.encoding.clone(),
        clock_rate: rtpmap.clock_rate,
        sample_rate: rtpmap.audio_sample_rate(),
        channels: rtpmap.channels.unwrap_or(1),
        fmtp: media.fmtp(rtpmap.payload_type).map(str::to_owned),
    }
}

type AudioAnswer = Result<(MediaDescription, Negotiation), PeerIncompatible>;

/// Answers one active audio stream; the inner error says why this stream is declined.
/// Our Opus `fmtp` (RFC 7587 §6.1): we decode a phone's Opus at 16 kHz and encode it from
/// 16 kHz (no point in the phone sending fullband), and we use in-band FEC, so the phone's
/// encoder should add it (an Opus phone otherwise sends none, and a lost packet is only PLC).
const OPUS_FMTP: &str = "maxplaybackrate=16000;sprop-maxcapturerate=16000;useinbandfec=1";

fn answer_audio(
    offer: &SessionDescription,
    media: &MediaDescription,
    local: &LocalMedia,
) -> Result<AudioAnswer, OfferAnswerError> {
    // SRTP first: a profile mismatch declines the stream whatever the codecs.
    let chosen_crypto = match (media.is_secure(), local.srtp) {
        (true, SrtpPolicy::Off) => return Ok(Err(PeerIncompatible::SrtpNotEnabled)),
        (false, SrtpPolicy::Required) => return Ok(Err(PeerIncompatible::SrtpRequired)),
        (false, SrtpPolicy::Off) => None,
        (false, SrtpPolicy::Optional) if media.crypto.is_empty() => None,
        (secure, SrtpPolicy::Optional | SrtpPolicy::Required) => {
            let key = local.sdes_key.ok_or(LocalConfigError::MissingSrtpKey)?;
            // The first offered line with a suite we accept (our list, RFC 4568 §7.1.1).
            let usable = media.crypto.iter().find_map(|c| {
                let suite = c.known_suite().filter(|s| local.sdes_suites.contains(s))?;
                let remote_key = c.inline_key().filter(|k| k.len() == 30)?;
                Some(SrtpParams {
                    suite,
                    tag: c.tag,
                    remote_key,
                    local_key: key,
                })
            });
            match usable {
                Some(params) => Some(params),
                // Best-effort SRTP (`RTP/AVP` with crypto lines) we cannot use: plain RTP.
                None if !secure => None,
                None => return Ok(Err(PeerIncompatible::NoCryptoSuite)),
            }
        }
    };
    // Our preferred codec among the offered ones; ties keep the offer's order.
    let mut best: Option<(u32, Rtpmap)> = None;
    let mut events = Vec::new();
    for pt in media.payload_types() {
        let Some(rtpmap) = media.codec(pt) else {
            continue;
        };
        if rtpmap.is_telephone_event() {
            events.push(rtpmap);
            continue;
        }
        let priority = local.priority(&rtpmap.encoding, rtpmap.clock_rate);
        if priority > 0 && best.as_ref().is_none_or(|(p, _)| priority > *p) {
            best = Some((priority, rtpmap));
        }
    }
    let Some((_, codec)) = best else {
        return Ok(Err(PeerIncompatible::NoCommonCodec));
    };
    let connection = offer
        .connection_for(media)
        .ok_or(PeerMisbehaved::NoConnection)?;
    // RFC 4733 §2.1: telephone-event should share the audio codec's clock; else 8 kHz.
    let telephone_event = local
        .telephone_event_enabled()
        .then(|| {
            events
                .iter()
                .find(|e| e.clock_rate == codec.clock_rate)
                .or_else(|| events.iter().find(|e| e.clock_rate == 8_000))
                .or_else(|| events.first())
        })
        .flatten()
        .cloned();
    let direction = offer.direction_for(media).reversed();
    let ptime = media
        .ptime
        .unwrap_or(local.ptime)
        .min(media.maxptime.unwrap_or(u32::MAX));
    let mut rtpmaps = vec![Rtpmap {
        channels: codec.channels.filter(|c| *c > 1),
        ..codec.clone()
    }];
    let mut fmtps = Vec::new();
    // Opus fmtp describes each side's own receiving and sending (RFC 7587 §6.1), so the answer
    // states ours; other codecs' fmtp are negotiated modes (AMR octet-align, iLBC mode, G.729
    // annexb) that the answer repeats.
    if codec.encoding.eq_ignore_ascii_case("opus") {
        fmtps.push((codec.payload_type, OPUS_FMTP.to_owned()));
    } else if let Some(params) = media.fmtp(codec.payload_type) {
        fmtps.push((codec.payload_type, params.to_owned()));
    }
    let mut formats = vec![codec.payload_type.to_string()];
    if let Some(te) = &telephone_event {
        formats.push(te.payload_type.to_string());
        rtpmaps.push(te.clone());
        fmtps.push((
            te.payload_type,
            media.fmtp(te.payload_type).unwrap_or("0-16").to_owned(),
        ));
    }
    let crypto = chosen_crypto
        .as_ref()
        .map(|params| Crypto {
            tag: params.tag,
            suite: params.suite.name().to_owned(),
            key_params: format!("inline:{}", encode_key(&params.local_key)),
            session_params: None,
        })
        .into_iter()
        .collect();
    let answered = MediaDescription {
        media: "audio".into(),
        port: local.rtp_port,
        port_count: None,
        proto: media.proto.clone(),
        formats,
        connection: None,
        direction: Some(direction),
        rtpmaps,
        fmtps,
        ptime: Some(ptime),
        maxptime: None,
        crypto,
        // RFC 5761 §5.1.1: accept multiplexing when offered; our RTP socket demultiplexes.
        other: if media.rtcp_mux() {
            vec!["rtcp-mux".to_owned()]
        } else {
            Vec::new()
        },
    };
    let negotiation = Negotiation {
        telephone_event: telephone_event.map(|te| TelephoneEvent {
            payload_type: te.payload_type,
            clock_rate: te.clock_rate,
            events: media.fmtp(te.payload_type).map(str::to_owned),
        }),
        codec: negotiated_codec(media, &codec),
        remote_address: connection.address,
        remote_port: media.port,
        direction,
        remote_ptime: media.ptime,
        srtp: chosen_crypto,
        remote_rtcp: remote_rtcp(media, connection.address),
        rtcp_mux: media.rtcp_mux(),
    };
    Ok(Ok((answered, negotiation)))
}
