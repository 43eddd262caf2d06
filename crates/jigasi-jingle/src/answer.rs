//! The participant's answer to Jicofo's offer: the rules of jitsi-protocols.md §4.3 as a pure
//! validator (for the Jicofo+JVB stand-in), and the gateway's `session-accept` builder (§4.3,
//! Example 6).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use jid::Jid;
use jigasi_types::Ssrc;

use crate::ice::{Candidate, Fingerprint, Setup, Transport, TransportChild};
use crate::jingle::{Action, Content, Group, Jingle, JingleChild, Sid};
use crate::rtp::{
    Description, DescriptionChild, Media, Parameter, ParameterNs, RtpHdrExt, Senders, Source,
    SourceChild,
};

/// The audio-level header extension URI (RFC 6464), offered with id 1 (§4.2).
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// Jicofo's `max-ssrcs-per-user` default (§4.3 rule 3).
pub const MAX_SSRCS_PER_ENDPOINT: usize = 20;
/// DTLS fingerprint hashes JVB accepts (§4.3 rule 1); MD5/MD2 are forbidden.
pub const ACCEPTED_HASHES: [&str; 4] = ["sha-512", "sha-384", "sha-256", "sha-1"];

/// One way an answer breaks the rules Jicofo and JVB apply (§4.3). Candidates are named by
/// their `id`, or `ip:port` when they have none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerViolation {
    /// The answer's action is neither `session-accept` nor `transport-accept`.
    WrongAction {
        /// The action found.
        action: Action,
    },
    /// The answer's `sid` is not the offer's: Jicofo answers `bad-request` (§4.1).
    SidMismatch {
        /// The offer's sid.
        offered: Sid,
        /// The answer's sid.
        answered: Sid,
    },
    /// Rule 1: no content carries a `<transport>`.
    NoTransport,
    /// Rule 1: the first transport has no `ufrag` (JVB does not start ICE).
    MissingUfrag,
    /// Rule 1: the first transport has no `pwd`.
    MissingPwd,
    /// Rule 1: the first transport has no DTLS `<fingerprint>`.
    MissingFingerprint,
    /// Rule 1: the fingerprint has no `setup`.
    MissingSetup,
    /// Rule 1: `setup` is not `active` or `passive` (`actpass` is rejected by JVB).
    BadSetup {
        /// The setup found.
        setup: Setup,
    },
    /// Rule 1: the hash is not one of [`ACCEPTED_HASHES`].
    ForbiddenHash {
        /// The hash found.
        hash: String,
    },
    /// Rule 2: a candidate's `component` is not 1.
    CandidateComponent {
        /// The candidate.
        candidate: String,
        /// The component found.
        component: u8,
    },
    /// Rule 2: a candidate's `ip` is not a literal address (host names and mDNS are ignored).
    CandidateNotIpLiteral {
        /// The candidate.
        candidate: String,
        /// The address found.
        ip: String,
    },
    /// Rule 2: a candidate has no `generation` (JVB reads −1 and drops it).
    CandidateGenerationMissing {
        /// The candidate.
        candidate: String,
    },
    /// Rule 2: a candidate's `generation` is not 0.
    CandidateGenerationNotZero {
        /// The candidate.
        candidate: String,
        /// The generation found.
        generation: u32,
    },
    /// Rule 3: SSRC 0 (the range is 1..=2^32−1).
    SsrcZero,
    /// Rule 3: the description's `ssrc` (what the participant will send) is not signalled as a
    /// `<source>`, so JVB will not route it.
    UnsignalledSsrc {
        /// The SSRC.
        ssrc: Ssrc,
    },
    /// Rule 3: the same SSRC is signalled twice in the answer.
    DuplicateSsrc {
        /// The SSRC.
        ssrc: Ssrc,
    },
    /// Rule 3: an SSRC is already used by someone else (a source in the offer).
    SsrcCollision {
        /// The SSRC.
        ssrc: Ssrc,
        /// The offered source's owner.
        owner: Option<String>,
    },
    /// Rule 3: more than [`MAX_SSRCS_PER_ENDPOINT`] SSRCs.
    TooManySsrcs {
        /// How many.
        count: usize,
    },
    /// Rule 3: more than [`MAX_SSRCS_PER_ENDPOINT`] SSRC groups.
    TooManyGroups {
        /// How many.
        count: usize,
    },
    /// Rule 3: a grouped source has no `msid`.
    GroupedSourceWithoutMsid {
        /// The SSRC.
        ssrc: Ssrc,
    },
    /// Rule 3: an `msid` is already used by another endpoint.
    MsidCollision {
        /// The msid.
        msid: String,
        /// The offered source's owner.
        owner: Option<String>,
    },
    /// Rule 4: Opus is not answered with the offered payload type (the bridge is configured from
    /// the offer).
    OpusPayloadTypeChanged {
        /// The content.
        content: String,
        /// The offered PT.
        offered: u8,
        /// The answered PT, `None` when Opus is missing.
        answered: Option<u8>,
    },
    /// Rule 4: the audio level is not answered with the offered extension id.
    AudioLevelIdChanged {
        /// The content.
        content: String,
        /// The offered id.
        offered: u16,
        /// The answered id, `None` when missing.
        answered: Option<u16>,
    },
    /// Rule 5: a visitor signalled sources (`forbidden`).
    VisitorSignalledSources {
        /// How many.
        count: usize,
    },
}

/// Who sent the answer, for the rules that depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnswerContext {
    /// The participant is a visitor (rule 5).
    pub visitor: bool,
}

/// Checks `answer` against `offer` with rules 1-4 of §4.3 (a normal, non-visitor participant).
/// Returns every violation found; an empty list means Jicofo and JVB would accept it.
pub fn validate_answer(offer: &Jingle, answer: &Jingle) -> Vec<AnswerViolation> {
    validate_answer_with(AnswerContext::default(), offer, answer)
}

/// Checks `answer` against `offer` with rules 1-5 of §4.3.
pub fn validate_answer_with(
    context: AnswerContext,
    offer: &Jingle,
    answer: &Jingle,
) -> Vec<AnswerViolation> {
    let mut violations = Vec::new();
    if !matches!(
        answer.action,
        Action::SessionAccept | Action::TransportAccept
    ) {
        violations.push(AnswerViolation::WrongAction {
            action: answer.action.clone(),
        });
    }
    if answer.sid != offer.sid {
        violations.push(AnswerViolation::SidMismatch {
            offered: offer.sid.clone(),
            answered: answer.sid.clone(),
        });
    }
    match answer.first_transport() {
        Some(transport) => check_transport(transport, &mut violations),
        None => violations.push(AnswerViolation::NoTransport),
    }
    check_sources(context, offer, answer, &mut violations);
    check_formats(offer, answer, &mut violations);
    violations
}

/// Why [`build_session_accept`] could not answer an offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The Jingle to answer is not a `session-initiate` or `transport-replace`.
    #[error("cannot answer a jingle {action} (only session-initiate and transport-replace)")]
    NotAnOffer {
        /// The action found.
        action: Action,
    },
    /// The offer has no audio content.
    #[error("the offer has no audio content")]
    NoAudioContent,
    /// The offer's audio content has no Opus payload type.
    #[error("the offer's audio content has no opus payload type")]
    NoOpus,
}

/// The gateway's side of the answer: what the media engine chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAnswer {
    /// Our full JID on the per-call connection (`responder`).
    pub responder: Jid,
    /// Our endpoint id (the room nick); the source is named `<endpoint_id>-a0`.
    pub endpoint_id: String,
    /// Our one audio SSRC.
    pub ssrc: Ssrc,
    /// The msid, e.g. from [`gateway_msid`].
    pub msid: String,
    /// Our ICE ufrag.
    pub ufrag: String,
    /// Our ICE password.
    pub pwd: String,
    /// Our candidates; they are written with `generation="0"` whatever they say.
    pub candidates: Vec<Candidate>,
    /// Our DTLS certificate's fingerprint hash (`sha-256`).
    pub fingerprint_hash: String,
    /// Our DTLS certificate's fingerprint (`0D:9A:…`).
    pub fingerprint: String,
}

/// The msid §4.3 recommends: `"<endpoint>-audio-0-1 <uuid>"`; the uuid comes from the caller's
/// RNG.
pub fn gateway_msid(endpoint_id: &str, uuid: &str) -> String {
    format!("{endpoint_id}-audio-0-1 {uuid}")
}

/// Builds the gateway's `session-accept` (or `transport-accept` for a `transport-replace`) to
/// `offer` as §4.3 and Example 6 describe: BUNDLE group, the offered audio content with Opus
/// (offered PT and parameters), `telephone-event` if offered, the audio-level extension with the
/// offered id, our source `<endpoint>-a0` with its msid, `rtcp-mux`; a transport with our ICE
/// credentials, `rtcp-mux`, the fingerprint with `setup="active"` and candidates with
/// `generation="0"`.
pub fn build_session_accept(offer: &Jingle, local: &LocalAnswer) -> Result<Jingle, AnswerError> {
    let action = if offer.action == Action::SessionInitiate {
        Action::SessionAccept
    } else if offer.action == Action::TransportReplace {
        Action::TransportAccept
    } else {
        return Err(AnswerError::NotAnOffer {
            action: offer.action.clone(),
        });
    };
    let offered = offer
        .content_for(&Media::Audio)
        .ok_or(AnswerError::NoAudioContent)?;
    let offered_description = offered
        .description
        .as_ref()
        .ok_or(AnswerError::NoAudioContent)?;
    let opus = offered_description
        .payload_type_named("opus")
        .ok_or(AnswerError::NoOpus)?;

    let mut description = Description::new(Media::Audio);
    description
        .children
        .push(DescriptionChild::PayloadType(opus.clone()));
    if let Some(dtmf) = offered_description.payload_type_named("telephone-event") {
        description
            .children
            .push(DescriptionChild::PayloadType(dtmf.clone()));
    }
    if let Some(level) = offered_description.hdrext_with_uri(AUDIO_LEVEL_URI) {
        description
            .children
            .push(DescriptionChild::HdrExt(RtpHdrExt::new(
                level.id,
                AUDIO_LEVEL_URI,
            )));
    }
    let mut source = Source::new(local.ssrc, Some(&format!("{}-a0", local.endpoint_id)));
    source.children.push(SourceChild::Parameter(Parameter::new(
        ParameterNs::Ssma,
        "msid",
        &local.msid,
    )));
    description.children.push(DescriptionChild::Source(source));
    description.children.push(DescriptionChild::RtcpMux);

    let mut transport = Transport::new(&local.ufrag, &local.pwd);
    transport.children.push(TransportChild::RtcpMux);
    transport
        .children
        .push(TransportChild::Fingerprint(Fingerprint::new(
            &local.fingerprint_hash,
            Setup::Active,
            &local.fingerprint,
        )));
    transport
        .children
        .extend(local.candidates.iter().map(|candidate| {
            let mut candidate = candidate.clone();
            candidate.generation = Some(0);
            TransportChild::Candidate(candidate)
        }));

    let mut content = Content::new(&offered.name);
    content.creator = offered.creator;
    content.senders = Some(offered.senders.unwrap_or(Senders::Both));
    content.description = Some(description);
    content.transport = Some(transport);

    let mut answer = Jingle::new(action, offer.sid.clone());
    answer.initiator = offer.initiator.clone();
    answer.responder = Some(local.responder.clone());
    answer
        .children
        .push(JingleChild::Group(Group::bundle([offered.name.as_str()])));
    answer.children.push(JingleChild::Content(content));
    Ok(answer)
}

fn check_transport(transport: &Transport, violations: &mut Vec<AnswerViolation>) {
    if transport.ufrag.as_deref().is_none_or(str::is_empty) {
        violations.push(AnswerViolation::MissingUfrag);
    }
    if transport.pwd.as_deref().is_none_or(str::is_empty) {
        violations.push(AnswerViolation::MissingPwd);
    }
    match transport.fingerprint() {
        None => violations.push(AnswerViolation::MissingFingerprint),
        Some(fingerprint) => {
            match &fingerprint.setup {
                None => violations.push(AnswerViolation::MissingSetup),
                Some(Setup::Active | Setup::Passive) => {}
                Some(setup) => violations.push(AnswerViolation::BadSetup {
                    setup: setup.clone(),
                }),
            }
            let hash = fingerprint.hash.to_ascii_lowercase();
            if !ACCEPTED_HASHES.contains(&hash.as_str()) {
                violations.push(AnswerViolation::ForbiddenHash {
                    hash: fingerprint.hash.clone(),
                });
            }
        }
    }
    for candidate in transport.candidates() {
        let name = candidate
            .id
            .clone()
            .unwrap_or_else(|| format!("{}:{}", candidate.ip, candidate.port));
        if candidate.component != 1 {
            violations.push(AnswerViolation::CandidateComponent {
                candidate: name.clone(),
                component: candidate.component,
            });
        }
        if candidate.ip.parse::<IpAddr>().is_err() {
            violations.push(AnswerViolation::CandidateNotIpLiteral {
                candidate: name.clone(),
                ip: candidate.ip.clone(),
            });
        }
        match candidate.generation {
            None => {
                violations.push(AnswerViolation::CandidateGenerationMissing { candidate: name })
            }
            Some(0) => {}
            Some(generation) => violations.push(AnswerViolation::CandidateGenerationNotZero {
                candidate: name,
                generation,
            }),
        }
    }
}

fn check_sources(
    context: AnswerContext,
    offer: &Jingle,
    answer: &Jingle,
    violations: &mut Vec<AnswerViolation>,
) {
    let descriptions: Vec<&Description> = answer
        .contents()
        .filter_map(|content| content.description.as_ref())
        .collect();
    let sources: Vec<&Source> = descriptions
        .iter()
        .flat_map(|description| description.sources())
        .collect();
    let groups = descriptions
        .iter()
        .flat_map(|description| description.ssrc_groups());

    if context.visitor && !sources.is_empty() {
        violations.push(AnswerViolation::VisitorSignalledSources {
            count: sources.len(),
        });
    }

    // What others already use: every source in the offer (the bridge's and other endpoints').
    let mut taken_ssrcs = BTreeMap::new();
    let mut taken_msids = BTreeMap::new();
    for source in offer
        .contents()
        .filter_map(|content| content.description.as_ref())
        .flat_map(Description::sources)
    {
        taken_ssrcs.insert(source.ssrc, source.owner());
        if let Some(msid) = source.msid() {
            taken_msids.insert(msid, source.owner());
        }
    }

    let mut seen = BTreeSet::new();
    for source in &sources {
        if source.ssrc.get() == 0 {
            violations.push(AnswerViolation::SsrcZero);
        }
        if !seen.insert(source.ssrc) {
            violations.push(AnswerViolation::DuplicateSsrc { ssrc: source.ssrc });
        }
        if let Some(owner) = taken_ssrcs.get(&source.ssrc) {
            violations.push(AnswerViolation::SsrcCollision {
                ssrc: source.ssrc,
                owner: owner.map(str::to_owned),
            });
        }
        if let Some(msid) = source.msid()
            && let Some(owner) = taken_msids.get(msid)
        {
            violations.push(AnswerViolation::MsidCollision {
                msid: msid.to_owned(),
                owner: owner.map(str::to_owned),
            });
        }
    }
    for ssrc in descriptions
        .iter()
        .filter_map(|description| description.ssrc)
    {
        if !seen.contains(&ssrc) {
            violations.push(AnswerViolation::UnsignalledSsrc { ssrc });
        }
    }
    if seen.len() > MAX_SSRCS_PER_ENDPOINT {
        violations.push(AnswerViolation::TooManySsrcs { count: seen.len() });
    }

    let mut group_count = 0;
    let mut reported = BTreeSet::new();
    for group in groups {
        group_count += 1;
        for ssrc in &group.sources {
            let has_msid = sources
                .iter()
                .any(|source| source.ssrc == *ssrc && source.msid().is_some());
            if !has_msid && reported.insert(*ssrc) {
                violations.push(AnswerViolation::GroupedSourceWithoutMsid { ssrc: *ssrc });
            }
        }
    }
    if group_count > MAX_SSRCS_PER_ENDPOINT {
        violations.push(AnswerViolation::TooManyGroups { count: group_count });
    }
}

fn check_formats(offer: &Jingle, answer: &Jingle, violations: &mut Vec<AnswerViolation>) {
    for answered in answer.contents() {
        let Some(description) = answered.description.as_ref() else {
            continue;
        };
        let Some(offered) = offer
            .contents()
            .find(|content| content.name == answered.name)
            .and_then(|content| content.description.as_ref())
        else {
            continue;
        };
        if let Some(opus) = offered.payload_type_named("opus") {
            let answered_pt = description.payload_type_named("opus").map(|pt| pt.id.get());
            if answered_pt != Some(opus.id.get()) {
                violations.push(AnswerViolation::OpusPayloadTypeChanged {
                    content: answered.name.clone(),
                    offered: opus.id.get(),
                    answered: answered_pt,
                });
            }
        }
        if let Some(level) = offered.hdrext_with_uri(AUDIO_LEVEL_URI) {
            let answered_id = description
                .hdrext_with_uri(AUDIO_LEVEL_URI)
                .map(|ext| ext.id);
            if answered_id != Some(level.id) {
                violations.push(AnswerViolation::AudioLevelIdChanged {
                    content: answered.name.clone(),
                    offered: level.id,
                    answered: answered_id,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::ice::CandidateType;
    use crate::jingle::Reason;
    use crate::rtp::{SsrcGroup, SsrcGroupSemantics};
    use crate::vectors::{EXAMPLE_5, EXAMPLE_6, jingle, same_tree};

    const OUR_SSRC: u32 = 3_735_928_559;

    fn offer() -> Jingle {
        jingle(EXAMPLE_5)
    }

    fn good_answer() -> Jingle {
        jingle(EXAMPLE_6)
    }

    fn local() -> LocalAnswer {
        let mut candidates: Vec<Candidate> = good_answer()
            .first_transport()
            .unwrap()
            .candidates()
            .cloned()
            .collect();
        for candidate in &mut candidates {
            candidate.generation = None;
        }
        LocalAnswer {
            responder: "b2f6a3c0-7f0e-4f6b-9c61-0e2a1d3c4b5a@meet.example.com/d3adb33f"
                .parse()
                .unwrap(),
            endpoint_id: "d3adb33f".to_owned(),
            ssrc: Ssrc::new(OUR_SSRC),
            msid: gateway_msid("d3adb33f", "9c4e6a2d-1b3f-4e5a-8d7c-2f1e0b9a8c7d"),
            ufrag: "Xq7e".to_owned(),
            pwd: "pR4s9tUv2wXy5zAb8cDe1fGh".to_owned(),
            candidates,
            fingerprint_hash: "sha-256".to_owned(),
            fingerprint: "0D:9A:44:E1:7B:3C:58:A2:F6:10:C9:2E:85:4B:D7:63:1F:A8:0C:E5:92:36:7D:B4:5A:E0:13:C8:6F:29:B1:74".to_owned(),
        }
    }

    /// The violations of Example 6 after `change`.
    fn broken(change: impl FnOnce(&mut Jingle)) -> Vec<AnswerViolation> {
        let mut answer = good_answer();
        change(&mut answer);
        validate_answer(&offer(), &answer)
    }

    fn content(answer: &mut Jingle) -> &mut Content {
        answer.contents_mut().next().unwrap()
    }

    fn transport(answer: &mut Jingle) -> &mut Transport {
        content(answer).transport.as_mut().unwrap()
    }

    fn description(answer: &mut Jingle) -> &mut Description {
        content(answer).description.as_mut().unwrap()
    }

    fn fingerprint(answer: &mut Jingle) -> &mut Fingerprint {
        transport(answer)
            .children
            .iter_mut()
            .find_map(|child| {
                if let TransportChild::Fingerprint(fingerprint) = child {
                    Some(fingerprint)
                } else {
                    None
                }
            })
            .unwrap()
    }

    fn first_candidate(answer: &mut Jingle) -> &mut Candidate {
        transport(answer)
            .children
            .iter_mut()
            .find_map(|child| {
                if let TransportChild::Candidate(candidate) = child {
                    Some(candidate)
                } else {
                    None
                }
            })
            .unwrap()
    }

    fn our_source(answer: &mut Jingle) -> &mut Source {
        description(answer)
            .children
            .iter_mut()
            .find_map(|child| {
                if let DescriptionChild::Source(source) = child {
                    Some(source)
                } else {
                    None
                }
            })
            .unwrap()
    }

    fn push_source(answer: &mut Jingle, source: Source) {
        description(answer)
            .children
            .push(DescriptionChild::Source(source));
    }

    #[test]
    fn built_session_accept_is_example_6_and_valid() {
        let built = build_session_accept(&offer(), &local()).unwrap();
        let expected = crate::vectors::stanzas(EXAMPLE_6)[0]
            .get_child("jingle", crate::ns::JINGLE)
            .unwrap()
            .clone();
        same_tree(&expected, &built.to_element(), "jingle").unwrap();
        assert_eq!(validate_answer(&offer(), &built), vec![]);
        assert!(
            built
                .first_transport()
                .unwrap()
                .candidates()
                .all(|c| c.generation == Some(0))
        );
        assert_eq!(
            built
                .first_transport()
                .unwrap()
                .candidates()
                .nth(1)
                .unwrap()
                .kind,
            CandidateType::Srflx
        );
    }

    #[test]
    fn transport_replace_is_answered_with_transport_accept() {
        let mut replace = offer();
        replace.action = Action::TransportReplace;
        let built = build_session_accept(&replace, &local()).unwrap();
        assert_eq!(built.action, Action::TransportAccept);
        assert_eq!(validate_answer(&replace, &built), vec![]);
    }

    #[test]
    fn builder_refuses_what_it_cannot_answer() {
        let mut source_add = offer();
        source_add.action = Action::SourceAdd;
        assert_eq!(
            build_session_accept(&source_add, &local()),
            Err(AnswerError::NotAnOffer {
                action: Action::SourceAdd
            })
        );
        let mut video_only = offer();
        description(&mut video_only).media = Some(Media::Video);
        assert_eq!(
            build_session_accept(&video_only, &local()),
            Err(AnswerError::NoAudioContent)
        );
        let mut no_opus = offer();
        description(&mut no_opus).children.retain(
            |child| !matches!(child, DescriptionChild::PayloadType(pt) if pt.id.get() == 111),
        );
        assert_eq!(
            build_session_accept(&no_opus, &local()),
            Err(AnswerError::NoOpus)
        );
    }

    #[test]
    fn example_6_is_a_valid_answer() {
        assert_eq!(validate_answer(&offer(), &good_answer()), vec![]);
    }

    #[test]
    fn rule_1_transport_violations() {
        assert_eq!(
            broken(|a| fingerprint(a).setup = Some(Setup::Actpass)),
            vec![AnswerViolation::BadSetup {
                setup: Setup::Actpass
            }]
        );
        assert_eq!(
            broken(|a| fingerprint(a).setup = None),
            vec![AnswerViolation::MissingSetup]
        );
        assert_eq!(
            broken(|a| fingerprint(a).setup = Some(Setup::Passive)),
            vec![]
        );
        assert_eq!(
            broken(|a| fingerprint(a).hash = "md5".to_owned()),
            vec![AnswerViolation::ForbiddenHash {
                hash: "md5".to_owned()
            }]
        );
        assert_eq!(broken(|a| fingerprint(a).hash = "SHA-1".to_owned()), vec![]);
        assert_eq!(
            broken(|a| transport(a)
                .children
                .retain(|child| !matches!(child, TransportChild::Fingerprint(_)))),
            vec![AnswerViolation::MissingFingerprint]
        );
        assert_eq!(
            broken(|a| transport(a).ufrag = None),
            vec![AnswerViolation::MissingUfrag]
        );
        assert_eq!(
            broken(|a| transport(a).pwd = Some(String::new())),
            vec![AnswerViolation::MissingPwd]
        );
        assert_eq!(
            broken(|a| content(a).transport = None),
            vec![AnswerViolation::NoTransport]
        );
    }

    #[test]
    fn rule_2_candidate_violations() {
        assert_eq!(
            broken(|a| first_candidate(a).generation = None),
            vec![AnswerViolation::CandidateGenerationMissing {
                candidate: "c1".to_owned()
            }]
        );
        assert_eq!(
            broken(|a| first_candidate(a).generation = Some(1)),
            vec![AnswerViolation::CandidateGenerationNotZero {
                candidate: "c1".to_owned(),
                generation: 1
            }]
        );
        assert_eq!(
            broken(|a| first_candidate(a).component = 2),
            vec![AnswerViolation::CandidateComponent {
                candidate: "c1".to_owned(),
                component: 2
            }]
        );
        assert_eq!(
            broken(|a| {
                let candidate = first_candidate(a);
                candidate.ip = "4f1c.local".to_owned();
                candidate.id = None;
            }),
            vec![AnswerViolation::CandidateNotIpLiteral {
                candidate: "4f1c.local:40512".to_owned(),
                ip: "4f1c.local".to_owned()
            }]
        );
        assert_eq!(
            broken(|a| first_candidate(a).ip = "2001:db8::1".to_owned()),
            vec![]
        );
        assert_eq!(
            broken(|a| transport(a)
                .children
                .retain(|child| !matches!(child, TransportChild::Candidate(_)))),
            vec![],
            "zero candidates is legal"
        );
    }

    #[test]
    fn rule_3_source_violations() {
        assert_eq!(
            broken(|a| our_source(a).ssrc = Ssrc::new(1_057_249_811)),
            vec![AnswerViolation::SsrcCollision {
                ssrc: Ssrc::new(1_057_249_811),
                owner: Some("cafebabe".to_owned())
            }]
        );
        assert_eq!(
            broken(|a| our_source(a).ssrc = Ssrc::new(2_912_335_467)),
            vec![AnswerViolation::SsrcCollision {
                ssrc: Ssrc::new(2_912_335_467),
                owner: Some("jvb".to_owned())
            }]
        );
        assert_eq!(
            broken(|a| our_source(a).ssrc = Ssrc::new(0)),
            vec![AnswerViolation::SsrcZero]
        );
        assert_eq!(
            broken(|a| {
                let copy = our_source(a).clone();
                push_source(a, copy);
            }),
            vec![AnswerViolation::DuplicateSsrc {
                ssrc: Ssrc::new(OUR_SSRC)
            }]
        );
        assert_eq!(
            broken(|a| description(a).ssrc = Some(Ssrc::new(5))),
            vec![AnswerViolation::UnsignalledSsrc { ssrc: Ssrc::new(5) }]
        );
        assert_eq!(
            broken(|a| description(a).ssrc = Some(Ssrc::new(OUR_SSRC))),
            vec![],
            "Jigasi's description ssrc is fine when signalled"
        );
        let cafebabe_msid = "cafebabe-audio-0-1 0a2f7c1e-5b55-4b5f-9b1e-6a1e3c9d2f10";
        assert_eq!(
            broken(|a| {
                our_source(a).children = vec![SourceChild::Parameter(Parameter::new(
                    ParameterNs::Rtp,
                    "msid",
                    cafebabe_msid,
                ))];
            }),
            vec![AnswerViolation::MsidCollision {
                msid: cafebabe_msid.to_owned(),
                owner: Some("cafebabe".to_owned())
            }]
        );
        assert_eq!(
            broken(|a| {
                push_source(a, Source::new(Ssrc::new(42), None));
                description(a)
                    .children
                    .push(DescriptionChild::SsrcGroup(SsrcGroup {
                        semantics: SsrcGroupSemantics::Fid,
                        sources: vec![Ssrc::new(OUR_SSRC), Ssrc::new(42)],
                        other: Vec::new(),
                    }));
            }),
            vec![AnswerViolation::GroupedSourceWithoutMsid {
                ssrc: Ssrc::new(42)
            }]
        );
        assert_eq!(
            broken(|a| {
                for ssrc in 1..=20 {
                    push_source(a, Source::new(Ssrc::new(ssrc), None));
                }
            }),
            vec![AnswerViolation::TooManySsrcs { count: 21 }]
        );
        assert_eq!(
            broken(|a| {
                for ssrc in 1..=19 {
                    push_source(a, Source::new(Ssrc::new(ssrc), None));
                }
            }),
            vec![],
            "20 SSRCs are allowed"
        );
        assert_eq!(
            broken(|a| {
                for _ in 0..21 {
                    description(a)
                        .children
                        .push(DescriptionChild::SsrcGroup(SsrcGroup {
                            semantics: SsrcGroupSemantics::Sim,
                            sources: vec![Ssrc::new(OUR_SSRC)],
                            other: Vec::new(),
                        }));
                }
            }),
            vec![AnswerViolation::TooManyGroups { count: 21 }]
        );
    }

    #[test]
    fn rule_4_format_violations() {
        assert_eq!(
            broken(|a| {
                for child in &mut description(a).children {
                    if let DescriptionChild::PayloadType(pt) = child
                        && pt.id.get() == 111
                    {
                        pt.id = jigasi_types::PayloadType::new(109);
                    }
                }
            }),
            vec![AnswerViolation::OpusPayloadTypeChanged {
                content: "audio".to_owned(),
                offered: 111,
                answered: Some(109)
            }]
        );
        assert_eq!(
            broken(|a| {
                for child in &mut description(a).children {
                    if let DescriptionChild::HdrExt(ext) = child {
                        ext.id = 3;
                    }
                }
            }),
            vec![AnswerViolation::AudioLevelIdChanged {
                content: "audio".to_owned(),
                offered: 1,
                answered: Some(3)
            }]
        );
        assert_eq!(
            broken(|a| description(a)
                .children
                .retain(|child| !matches!(child, DescriptionChild::HdrExt(_)))),
            vec![AnswerViolation::AudioLevelIdChanged {
                content: "audio".to_owned(),
                offered: 1,
                answered: None
            }]
        );
    }

    #[test]
    fn rule_5_visitors_may_not_signal_sources() {
        let visitor = AnswerContext { visitor: true };
        assert_eq!(
            validate_answer_with(visitor, &offer(), &good_answer()),
            vec![AnswerViolation::VisitorSignalledSources { count: 1 }]
        );
        let mut silent = good_answer();
        description(&mut silent)
            .children
            .retain(|child| !matches!(child, DescriptionChild::Source(_)));
        assert_eq!(validate_answer_with(visitor, &offer(), &silent), vec![]);
    }

    #[test]
    fn routing_violations() {
        assert_eq!(
            broken(|a| a.sid = Sid("other".to_owned())),
            vec![AnswerViolation::SidMismatch {
                offered: Sid("5o1ghn8db24v7".to_owned()),
                answered: Sid("other".to_owned())
            }]
        );
        assert_eq!(
            broken(|a| {
                a.action = Action::SessionTerminate;
                a.children.push(JingleChild::Reason(Reason::new(
                    crate::jingle::ReasonCondition::GeneralError,
                    None,
                )));
            }),
            vec![AnswerViolation::WrongAction {
                action: Action::SessionTerminate
            }]
        );
    }
}
