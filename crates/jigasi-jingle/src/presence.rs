//! The gateway's MUC join presence (jitsi-protocols.md §3.2, Example 4) plus the `SourceInfo`
//! modern clients prefer.

use jid::FullJid;
use minidom::Element;

use crate::colibri::Stat;
use crate::jitmeet::{
    AudioMuted, Caps, Features, JigasiInitiator, MucJoin, Nick, ParticipantRegion, SourceInfo,
    StatsId,
};
use crate::rayo::Header;
use crate::stanza::{Payload, Stanza, StanzaKind};

/// The feature by which Jicofo and clients recognise a Jigasi (§3.2).
pub const FEATURE_JIGASI: &str = "http://jitsi.org/protocol/jigasi";
/// DTMF support (SIP mode).
pub const FEATURE_DTMF: &str = "urn:xmpp:jingle:dtmf:0";
/// Jicofo may force-mute a trusted Jigasi only if it advertises this (§1.4, §6.1).
pub const FEATURE_AUDIO_MUTE: &str = "http://jitsi.org/protocol/audio-mute";
/// Transcriber mode, instead of DTMF (§2.4).
pub const FEATURE_TRANSCRIBER: &str = "http://jitsi.org/protocol/transcriber";

/// What the gateway puts in its room-join presence, written in Example 4's order: MUC `x`
/// (password), caps, nick, region, version stat, Rayo-header initiator, features, stats-id,
/// audiomuted, then `SourceInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinPresence {
    /// `room@conference.domain/<nick>`; the resource is the endpoint id.
    pub to: FullJid,
    /// `JvbRoomPassword`, if any.
    pub password: Option<String>,
    /// The caps element (added by the XMPP layer in Jigasi).
    pub caps: Option<Caps>,
    /// Display name (caller id or dialled number).
    pub nick: Option<String>,
    /// `LOCAL_REGION` as `jitsi_participant_region`.
    pub region: Option<String>,
    /// The version, sent as `<stat name="version">`.
    pub version: Option<String>,
    /// Extra Rayo/SIP headers, sent in `<initiator>` when not empty.
    pub initiator_headers: Vec<Header>,
    /// `<features>` vars; omitted when empty.
    pub features: Vec<String>,
    /// `STATS_ID`.
    pub stats_id: Option<String>,
    /// Start muted? Jigasi always starts unmuted (`false`).
    pub audio_muted: bool,
    /// Whether to add `SourceInfo` for `<endpoint>-a0` with the same muted state.
    pub source_info: bool,
}

impl JoinPresence {
    /// A join presence for a SIP call: features jigasi, dtmf and audio-mute, unmuted, with
    /// `SourceInfo`.
    pub fn sip_gateway(to: FullJid) -> Self {
        Self {
            to,
            password: None,
            caps: None,
            nick: None,
            region: None,
            version: None,
            initiator_headers: Vec::new(),
            features: vec![
                FEATURE_JIGASI.to_owned(),
                FEATURE_DTMF.to_owned(),
                FEATURE_AUDIO_MUTE.to_owned(),
            ],
            stats_id: None,
            audio_muted: false,
            source_info: true,
        }
    }

    /// The endpoint id: the nick in the room, which is also the JVB endpoint id (§1.3).
    pub fn endpoint_id(&self) -> &str {
        self.to.resource().as_str()
    }

    /// The name of the gateway's audio source, `<endpoint>-a0` (§4.3 rule 3).
    pub fn audio_source_name(&self) -> String {
        format!("{}-a0", self.endpoint_id())
    }

    /// The presence as a [`Stanza`].
    pub fn to_stanza(&self) -> Stanza {
        let mut payloads = vec![Payload::MucJoin(MucJoin {
            password: self.password.clone(),
            other: Vec::new(),
        })];
        payloads.extend(self.caps.clone().map(Payload::Caps));
        payloads.extend(self.nick.clone().map(|nick| Payload::Nick(Nick(nick))));
        payloads.extend(
            self.region
                .clone()
                .map(|region| Payload::ParticipantRegion(ParticipantRegion(region))),
        );
        payloads.extend(
            self.version
                .as_deref()
                .map(|version| Payload::Stat(Stat::new("version", version))),
        );
        if !self.initiator_headers.is_empty() {
            payloads.push(Payload::JigasiInitiator(JigasiInitiator {
                headers: self.initiator_headers.clone(),
                other: Vec::new(),
            }));
        }
        if !self.features.is_empty() {
            payloads.push(Payload::Features(Features {
                features: self.features.clone(),
                other: Vec::new(),
            }));
        }
        payloads.extend(
            self.stats_id
                .clone()
                .map(|id| Payload::StatsId(StatsId(id))),
        );
        payloads.push(Payload::AudioMuted(AudioMuted(self.audio_muted)));
        if self.source_info {
            let name = self.audio_source_name();
            payloads.push(Payload::SourceInfo(SourceInfo::for_sources([(
                name.as_str(),
                self.audio_muted,
            )])));
        }
        let mut stanza = Stanza::new(StanzaKind::Presence);
        stanza.to = Some(self.to.to_string());
        stanza.payloads = payloads;
        stanza
    }

    /// The presence element.
    pub fn to_element(&self) -> Element {
        self.to_stanza().to_element()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::vectors::{EXAMPLE_4, same_tree, stanzas};

    fn example_4_presence() -> JoinPresence {
        let mut presence = JoinPresence::sip_gateway(
            "room1@conference.meet.example.com/d3adb33f"
                .parse()
                .unwrap(),
        );
        presence.password = Some("s3cret".to_owned());
        presence.caps = Some(Caps::new(
            "sha-1",
            "http://jitsi.org",
            "q07IKJEyjvHSyhy//CH0CxmKi8w=",
        ));
        presence.nick = Some("+15551234567".to_owned());
        presence.region = Some("us-east-1".to_owned());
        presence.version = Some("Jigasi 1.1.345-g6fbf4f2".to_owned());
        presence.initiator_headers = vec![Header::new("X-Customer-Id", "42")];
        presence.stats_id = Some("jigasi-us-east-1a".to_owned());
        presence
    }

    #[test]
    fn builds_example_4_exactly() {
        let mut presence = example_4_presence();
        presence.source_info = false;
        let expected = &stanzas(EXAMPLE_4)[0];
        same_tree(expected, &presence.to_element(), "presence").unwrap();
    }

    #[test]
    fn adds_source_info_for_the_audio_source_last() {
        let mut presence = example_4_presence();
        presence.audio_muted = true;
        let el = presence.to_element();
        let last = el.children().last().unwrap();
        assert_eq!(last.name(), "SourceInfo");
        assert_eq!(last.text(), r#"{"d3adb33f-a0":{"muted":true}}"#);
        let muted = el
            .get_child("audiomuted", crate::ns::JABBER_CLIENT)
            .unwrap();
        assert_eq!(muted.text(), "true");
        assert_eq!(presence.audio_source_name(), "d3adb33f-a0");
    }

    #[test]
    fn empty_headers_and_features_are_left_out() {
        let mut presence = example_4_presence();
        presence.initiator_headers.clear();
        presence.features.clear();
        presence.password = None;
        let el = presence.to_element();
        assert!(el.get_child("initiator", crate::ns::JIGASI).is_none());
        assert!(el.get_child("features", crate::ns::JABBER_CLIENT).is_none());
        let join = el.get_child("x", crate::ns::MUC).unwrap();
        assert_eq!(join.children().count(), 0);
    }
}
