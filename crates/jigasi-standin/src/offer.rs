//! What the focus writes and checks in Jingle: the `session-initiate` offer exactly as Jicofo
//! builds it for an audio-only participant (jitsi-protocols.md §4.2, Example 5), `source-add` /
//! `source-remove` (§4.4, Example 7), `session-terminate` (§4.5), and the checks Jicofo's
//! conference-wide source map adds to the answer rules of §4.3 (SSRC and msid unique in the whole
//! conference, not only in the offer).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use jigasi_jingle::answer::{AUDIO_LEVEL_URI, AnswerViolation, MAX_SSRCS_PER_ENDPOINT};
use jigasi_jingle::ice::{Candidate, CandidateType, Fingerprint, Setup, Transport, TransportChild};
use jigasi_jingle::jingle::{
    Action, BridgeSession, Content, Creator, Group, Jingle, JingleChild, Reason, ReasonCondition,
    Sid,
};
use jigasi_jingle::rtp::{
    Description, DescriptionChild, Media, Parameter, ParameterNs, PayloadType, PayloadTypeChild,
    RtcpFb, RtpHdrExt, Senders, Source, SourceChild, SsrcInfo,
};
use jigasi_types::{PayloadType as Pt, Ssrc};
use jigasi_xmpp::jid::Jid;

/// The disco feature that makes Jicofo offer transport-cc (§1.4).
pub(crate) const FEATURE_TCC: &str = "http://jitsi.org/tcc";
/// The disco feature for audio content (§1.4).
pub(crate) const FEATURE_AUDIO: &str = "urn:xmpp:jingle:apps:rtp:audio";
/// What Jicofo assumes when disco#info times out (§1.4).
pub(crate) const DEFAULT_FEATURES: [&str; 3] = [
    FEATURE_AUDIO,
    "urn:xmpp:jingle:apps:rtp:video",
    "urn:xmpp:jingle:transports:dtls-sctp:1",
];
/// The transport-cc header extension URI (§4.2).
const TCC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// The sdes:mid header extension URI (§4.2).
const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// The owner of the bridge's feedback source (§4.2).
pub(crate) const BRIDGE_OWNER: &str = "jvb";

/// One audio source known to the conference: the bridge's feedback source or a participant's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceSource {
    /// The SSRC.
    pub ssrc: Ssrc,
    /// The source name (`<endpoint>-a0`, `jvb-a0`), if signalled.
    pub name: Option<String>,
    /// The owner: the endpoint id (MUC nick) or `jvb`.
    pub owner: String,
    /// The msid, if signalled.
    pub msid: Option<String>,
}

impl ConferenceSource {
    /// The ssma `<source>` Jicofo writes: name, `ssrc-info owner`, msid in the RTP namespace.
    /// `owner_prefix` (`room@muc/`) reproduces older Jicofo versions' full-JID owners.
    pub(crate) fn to_source(&self, owner_prefix: Option<&str>) -> Source {
        let mut source = Source::new(self.ssrc, self.name.as_deref());
        let owner = match owner_prefix {
            Some(prefix) if self.owner != BRIDGE_OWNER => format!("{prefix}{}", self.owner),
            Some(_) | None => self.owner.clone(),
        };
        source.children.push(SourceChild::SsrcInfo(SsrcInfo {
            owner,
            extra_attrs: BTreeMap::new(),
        }));
        if let Some(msid) = &self.msid {
            source.children.push(SourceChild::Parameter(Parameter::new(
                ParameterNs::Rtp,
                "msid",
                msid,
            )));
        }
        source
    }
}

/// The bridge's side of one endpoint's transport (§4.2, "Transport").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTransport {
    /// ICE ufrag.
    pub ufrag: String,
    /// ICE password.
    pub pwd: String,
    /// Fingerprint hash (`sha-256`).
    pub fingerprint_hash: String,
    /// Fingerprint value.
    pub fingerprint: String,
    /// Host candidates: `(address, priority)`.
    pub candidates: Vec<(SocketAddr, u32)>,
}

impl LocalTransport {
    /// The ICE-UDP transport as JVB describes it: ufrag, pwd, `rtcp-mux`, the fingerprint with
    /// `setup="actpass"`, UDP host candidates with `generation="0"`.
    pub(crate) fn to_transport(&self) -> Transport {
        let mut transport = Transport::new(&self.ufrag, &self.pwd);
        transport.children.push(TransportChild::RtcpMux);
        transport
            .children
            .push(TransportChild::Fingerprint(Fingerprint::new(
                &self.fingerprint_hash,
                Setup::Actpass,
                &self.fingerprint,
            )));
        for (index, (addr, priority)) in self.candidates.iter().enumerate() {
            transport
                .children
                .push(TransportChild::Candidate(Candidate {
                    component: 1,
                    foundation: (index + 1).to_string(),
                    generation: Some(0),
                    id: Some(format!("{}{}", self.ufrag, index + 1)),
                    ip: addr.ip().to_string(),
                    network: Some(0),
                    port: addr.port(),
                    priority: *priority,
                    protocol: "udp".into(),
                    kind: CandidateType::Host,
                    rel_addr: None,
                    rel_port: None,
                    tcptype: None,
                    extra_attrs: BTreeMap::new(),
                }));
        }
        transport
    }
}

/// Everything [`session_initiate`] needs.
#[derive(Debug, Clone)]
pub(crate) struct OfferParams<'a> {
    pub(crate) sid: Sid,
    /// The focus's real JID (`focus@auth.<domain>/<resource>`).
    pub(crate) initiator: Jid,
    pub(crate) transport: &'a LocalTransport,
    /// The feedback source first, then every other participant's sources.
    pub(crate) sources: &'a [ConferenceSource],
    pub(crate) bridge_session_id: &'a str,
    pub(crate) region: Option<&'a str>,
    /// The participant advertised `http://jitsi.org/tcc`.
    pub(crate) tcc: bool,
    /// `room@muc/` for full-JID owners (older Jicofo), `None` for bare endpoint ids.
    pub(crate) owner_prefix: Option<&'a str>,
}

/// Jicofo's `session-initiate` to an audio-only participant (Example 5).
pub(crate) fn session_initiate(params: &OfferParams<'_>) -> Jingle {
    let mut opus = PayloadType::new(Pt::new(111), "opus", 48_000, Some(2));
    opus.children
        .push(PayloadTypeChild::Parameter(Parameter::new(
            ParameterNs::Rtp,
            "minptime",
            "10",
        )));
    opus.children
        .push(PayloadTypeChild::Parameter(Parameter::new(
            ParameterNs::Rtp,
            "useinbandfec",
            "1",
        )));
    if params.tcc {
        opus.children.push(PayloadTypeChild::RtcpFb(RtcpFb {
            kind: "transport-cc".into(),
            subtype: None,
            extra_attrs: BTreeMap::new(),
        }));
    }
    let mut description = Description::new(Media::Audio);
    description.maxptime = Some(60);
    description
        .children
        .push(DescriptionChild::PayloadType(opus));
    description
        .children
        .push(DescriptionChild::PayloadType(PayloadType::new(
            Pt::new(126),
            "telephone-event",
            8_000,
            None,
        )));
    description
        .children
        .push(DescriptionChild::HdrExt(RtpHdrExt::new(1, AUDIO_LEVEL_URI)));
    description
        .children
        .push(DescriptionChild::HdrExt(RtpHdrExt::new(10, MID_URI)));
    if params.tcc {
        description
            .children
            .push(DescriptionChild::HdrExt(RtpHdrExt::new(5, TCC_URI)));
    }
    description
        .children
        .push(DescriptionChild::ExtmapAllowMixed);
    description.children.push(DescriptionChild::RtcpMux);
    description.children.extend(
        params
            .sources
            .iter()
            .map(|source| DescriptionChild::Source(source.to_source(params.owner_prefix))),
    );

    let mut content = Content::new("audio");
    content.creator = Some(Creator::Initiator);
    content.senders = Some(Senders::Both);
    content.description = Some(description);
    content.transport = Some(params.transport.to_transport());

    let mut bridge_session = BridgeSession::new(params.bridge_session_id);
    bridge_session.region = params.region.map(str::to_owned);

    let mut jingle = Jingle::new(Action::SessionInitiate, params.sid.clone());
    jingle.initiator = Some(params.initiator.clone());
    jingle.children.push(JingleChild::Content(content));
    jingle
        .children
        .push(JingleChild::Group(Group::bundle(["audio"])));
    jingle
        .children
        .push(JingleChild::BridgeSession(bridge_session));
    jingle
}

/// `source-add` or `source-remove` (Example 7): one `audio` content without `creator`.
pub(crate) fn source_update(
    action: Action,
    sid: &Sid,
    sources: &[ConferenceSource],
    owner_prefix: Option<&str>,
) -> Jingle {
    let mut description = Description::new(Media::Audio);
    description.children.extend(
        sources
            .iter()
            .map(|source| DescriptionChild::Source(source.to_source(owner_prefix))),
    );
    let mut content = Content::new("audio");
    content.description = Some(description);
    let mut jingle = Jingle::new(action, sid.clone());
    jingle.children.push(JingleChild::Content(content));
    jingle
}

/// `session-terminate` with a reason (§4.5).
pub(crate) fn session_terminate(
    sid: &Sid,
    condition: ReasonCondition,
    text: Option<&str>,
) -> Jingle {
    let mut jingle = Jingle::new(Action::SessionTerminate, sid.clone());
    jingle
        .children
        .push(JingleChild::Reason(Reason::new(condition, text)));
    jingle
}

/// The audio sources a participant signals in a Jingle element (session-accept, source-add,
/// source-remove), with the owner set to `owner`.
pub(crate) fn signalled_sources(jingle: &Jingle, owner: &str) -> Vec<ConferenceSource> {
    jingle
        .contents()
        .filter_map(|content| content.description.as_ref())
        .filter(|description| {
            description
                .media
                .as_ref()
                .is_none_or(|m| *m == Media::Audio)
        })
        .flat_map(Description::sources)
        .map(|source| ConferenceSource {
            ssrc: source.ssrc,
            name: source.name.clone(),
            owner: owner.to_owned(),
            msid: source.msid().map(str::to_owned),
        })
        .collect()
}

/// Jicofo's conference-wide source checks (`ValidatingConferenceSourceMap`) for sources a
/// participant adds: SSRC range, duplicates, SSRC or msid already used by *another* owner
/// anywhere in the conference, and the per-endpoint limit. `existing` are the sources the
/// conference already has (including this owner's own, which count toward the limit).
pub(crate) fn check_added_sources(
    owner: &str,
    added: &[ConferenceSource],
    existing: &[ConferenceSource],
) -> Vec<AnswerViolation> {
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for source in added {
        if source.ssrc.get() == 0 {
            violations.push(AnswerViolation::SsrcZero);
        }
        if !seen.insert(source.ssrc) {
            violations.push(AnswerViolation::DuplicateSsrc { ssrc: source.ssrc });
        }
        if let Some(taken) = existing.iter().find(|s| s.ssrc == source.ssrc) {
            if taken.owner == owner {
                violations.push(AnswerViolation::DuplicateSsrc { ssrc: source.ssrc });
            } else {
                violations.push(AnswerViolation::SsrcCollision {
                    ssrc: source.ssrc,
                    owner: Some(taken.owner.clone()),
                });
            }
        }
        if let Some(msid) = &source.msid
            && let Some(taken) = existing
                .iter()
                .find(|s| s.owner != owner && s.msid.as_ref() == Some(msid))
        {
            violations.push(AnswerViolation::MsidCollision {
                msid: msid.clone(),
                owner: Some(taken.owner.clone()),
            });
        }
    }
    let own = existing.iter().filter(|s| s.owner == owner).count();
    if own + seen.len() > MAX_SSRCS_PER_ENDPOINT {
        violations.push(AnswerViolation::TooManySsrcs {
            count: own + seen.len(),
        });
    }
    violations
}

/// Adds the conference-wide violations of `extra` to `violations`, skipping exact duplicates
/// (the offer-based validator already reports collisions with sources in the offer).
pub(crate) fn merge_violations(violations: &mut Vec<AnswerViolation>, extra: Vec<AnswerViolation>) {
    for violation in extra {
        if !violations.contains(&violation) {
            violations.push(violation);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jigasi_jingle::answer::{LocalAnswer, build_session_accept, validate_answer};

    fn transport() -> LocalTransport {
        LocalTransport {
            ufrag: "b1e2".into(),
            pwd: "6q8m2v0k4c7p1s9d3f5h7j".into(),
            fingerprint_hash: "sha-256".into(),
            fingerprint: "2B:6E:0F:85".into(),
            candidates: vec![("127.0.0.1:10000".parse().unwrap(), 2_130_706_431)],
        }
    }

    fn sources() -> Vec<ConferenceSource> {
        vec![
            ConferenceSource {
                ssrc: Ssrc::new(2_912_335_467),
                name: Some("jvb-a0".into()),
                owner: BRIDGE_OWNER.into(),
                msid: None,
            },
            ConferenceSource {
                ssrc: Ssrc::new(1_057_249_811),
                name: Some("cafebabe-a0".into()),
                owner: "cafebabe".into(),
                msid: Some("cafebabe-audio-0-1 0a2f".into()),
            },
        ]
    }

    fn offer(tcc: bool, prefix: Option<&str>) -> Jingle {
        let transport = transport();
        let sources = sources();
        session_initiate(&OfferParams {
            sid: Sid("5o1ghn8db24v7".into()),
            initiator: Jid::new("focus@auth.meet.example.com/focus").unwrap(),
            transport: &transport,
            sources: &sources,
            bridge_session_id: "8f3c6b2a-jvb1",
            region: Some("us-east-1"),
            tcc,
            owner_prefix: prefix,
        })
    }

    #[test]
    fn offer_matches_example_5() {
        let jingle = offer(false, None);
        // Write and re-read it, as the gateway will.
        let jingle = Jingle::parse(&jingle.to_element()).unwrap();
        assert_eq!(jingle.action, Action::SessionInitiate);
        assert_eq!(
            jingle.initiator.as_ref().unwrap().to_string(),
            "focus@auth.meet.example.com/focus"
        );
        assert_eq!(jingle.group().unwrap().contents, ["audio"]);
        let bridge_session = jingle.bridge_session().unwrap();
        assert_eq!(bridge_session.id, "8f3c6b2a-jvb1");
        assert_eq!(bridge_session.region.as_deref(), Some("us-east-1"));
        let content = jingle.contents().next().unwrap();
        assert_eq!(content.creator, Some(Creator::Initiator));
        assert_eq!(content.senders, Some(Senders::Both));
        let description = content.description.as_ref().unwrap();
        assert_eq!(description.maxptime, Some(60));
        let opus = description.payload_type_named("opus").unwrap();
        assert_eq!(
            (opus.id.get(), opus.clockrate, opus.channels),
            (111, Some(48_000), Some(2))
        );
        assert!(
            opus.rtcp_fbs().next().is_none(),
            "no tcc without the feature"
        );
        assert_eq!(
            description
                .payload_type_named("telephone-event")
                .unwrap()
                .id
                .get(),
            126
        );
        assert_eq!(description.hdrext_with_uri(AUDIO_LEVEL_URI).unwrap().id, 1);
        assert_eq!(description.hdrext_with_uri(MID_URI).unwrap().id, 10);
        assert!(description.hdrext_with_uri(TCC_URI).is_none());
        assert!(description.extmap_allow_mixed() && description.rtcp_mux());
        let owners: Vec<_> = description.sources().map(|s| s.owner().unwrap()).collect();
        assert_eq!(owners, ["jvb", "cafebabe"]);
        assert_eq!(
            description.sources().next().unwrap().name.as_deref(),
            Some("jvb-a0")
        );
        let transport = content.transport.as_ref().unwrap();
        assert_eq!(transport.ufrag.as_deref(), Some("b1e2"));
        assert!(transport.rtcp_mux());
        assert_eq!(transport.fingerprint().unwrap().setup, Some(Setup::Actpass));
        let candidate = transport.candidates().next().unwrap();
        assert_eq!(candidate.generation, Some(0));
        assert_eq!(
            (candidate.component, candidate.protocol.as_str()),
            (1, "udp")
        );
        assert_eq!(candidate.kind, CandidateType::Host);
    }

    #[test]
    fn tcc_and_legacy_owners_when_asked() {
        let jingle = offer(true, Some("room1@conference.meet.example.com/"));
        let description = jingle
            .contents()
            .next()
            .unwrap()
            .description
            .clone()
            .unwrap();
        assert_eq!(description.hdrext_with_uri(TCC_URI).unwrap().id, 5);
        let opus = description.payload_type_named("opus").unwrap();
        assert_eq!(opus.rtcp_fbs().next().unwrap().kind, "transport-cc");
        let owners: Vec<_> = description
            .sources()
            .map(|s| s.owner().unwrap().to_owned())
            .collect();
        assert_eq!(
            owners,
            ["jvb", "room1@conference.meet.example.com/cafebabe"]
        );
    }

    #[test]
    fn the_gateway_builder_answers_the_offer_without_violations() {
        let offer = offer(false, None);
        let local = LocalAnswer {
            responder: Jid::new("x@meet.example.com/d3adb33f").unwrap(),
            endpoint_id: "d3adb33f".into(),
            ssrc: Ssrc::new(3_735_928_559),
            msid: "d3adb33f-audio-0-1 9c4e".into(),
            ufrag: "Xq7e".into(),
            pwd: "pR4s9tUv2wXy5zAb8cDe1fGh".into(),
            candidates: Vec::new(),
            fingerprint_hash: "sha-256".into(),
            fingerprint: "0D:9A".into(),
        };
        let answer = build_session_accept(&offer, &local).unwrap();
        assert!(validate_answer(&offer, &answer).is_empty());
        let signalled = signalled_sources(&answer, "d3adb33f");
        assert_eq!(signalled.len(), 1);
        assert_eq!(signalled[0].ssrc, Ssrc::new(3_735_928_559));
        assert_eq!(signalled[0].name.as_deref(), Some("d3adb33f-a0"));
        assert!(check_added_sources("d3adb33f", &signalled, &sources()).is_empty());
    }

    #[test]
    fn conference_wide_collisions_and_limits_are_found() {
        let existing = sources();
        let colliding = vec![ConferenceSource {
            ssrc: Ssrc::new(1_057_249_811),
            name: None,
            owner: "0badf00d".into(),
            msid: Some("cafebabe-audio-0-1 0a2f".into()),
        }];
        let violations = check_added_sources("0badf00d", &colliding, &existing);
        assert!(violations.contains(&AnswerViolation::SsrcCollision {
            ssrc: Ssrc::new(1_057_249_811),
            owner: Some("cafebabe".into())
        }));
        assert!(
            violations
                .iter()
                .any(|v| matches!(v, AnswerViolation::MsidCollision { .. }))
        );

        let zero_and_twice = vec![
            ConferenceSource {
                ssrc: Ssrc::new(0),
                name: None,
                owner: "x".into(),
                msid: None,
            },
            ConferenceSource {
                ssrc: Ssrc::new(0),
                name: None,
                owner: "x".into(),
                msid: None,
            },
        ];
        let violations = check_added_sources("x", &zero_and_twice, &[]);
        assert!(violations.contains(&AnswerViolation::SsrcZero));
        assert!(violations.contains(&AnswerViolation::DuplicateSsrc { ssrc: Ssrc::new(0) }));

        let many: Vec<_> = (1..=21)
            .map(|ssrc| ConferenceSource {
                ssrc: Ssrc::new(ssrc),
                name: None,
                owner: "x".into(),
                msid: None,
            })
            .collect();
        assert!(
            check_added_sources("x", &many, &[])
                .contains(&AnswerViolation::TooManySsrcs { count: 21 })
        );

        let mut merged = vec![AnswerViolation::SsrcZero];
        merge_violations(
            &mut merged,
            vec![AnswerViolation::SsrcZero, AnswerViolation::MissingPwd],
        );
        assert_eq!(
            merged,
            [AnswerViolation::SsrcZero, AnswerViolation::MissingPwd]
        );
    }

    #[test]
    fn source_updates_and_terminate_have_the_documented_shape() {
        let sid = Sid("s1".into());
        let add = source_update(Action::SourceAdd, &sid, &sources()[1..], None);
        let content = add.contents().next().unwrap();
        assert_eq!(content.creator, None, "Example 7: no creator");
        let source = content
            .description
            .as_ref()
            .unwrap()
            .sources()
            .next()
            .unwrap();
        assert_eq!(source.owner(), Some("cafebabe"));
        assert_eq!(source.msid(), Some("cafebabe-audio-0-1 0a2f"));
        let terminate =
            session_terminate(&sid, ReasonCondition::Expired, Some("Idle session timeout"));
        let reason = terminate.reason().unwrap();
        assert_eq!(reason.condition, ReasonCondition::Expired);
        assert_eq!(reason.text.as_deref(), Some("Idle session timeout"));
    }
}
