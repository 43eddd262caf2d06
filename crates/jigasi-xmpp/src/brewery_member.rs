//! Our membership in a brewery room: what to send on join, when stats change and on leave, and
//! how to answer what arrives there (jitsi-protocols.md §2, jigasi-behaviour.md §1.14).
//!
//! Pure: it turns incoming stanzas into replies and events. The brewery task of
//! `jigasi-runtime` moves them between this and an XMPP connection.

use jid::{BareJid, FullJid, ResourcePart};
use minidom::Element;

use crate::brewery::{Stats, stats_presence};
use crate::disco::{DiscoInfo, JITSI_CAPS_NODE};
use crate::error::StanzaError;
use crate::muc::{MucPresence, join_presence, leave_presence};
use crate::ns;
use crate::stanza::{iq_error, is_iq_request};

/// Rayo (XEP-0327) namespace: Jicofo's `dial` and `hangup` requests.
const RAYO: &str = "urn:xmpp:rayo:1";

/// What happened in the brewery, for the application.
#[derive(Debug, Clone, PartialEq)]
pub enum BreweryEvent {
    /// The server confirmed our join (self-presence, status 110).
    Joined,
    /// The join was refused (e.g. `not-authorized`, `registration-required`, `conflict`).
    JoinRefused(StanzaError),
    /// We were removed from the room (kicked) or the room was destroyed; join again later.
    Removed,
    /// Jicofo sent a Rayo `dial` or `hangup` IQ. The request is passed on whole; it has not been
    /// answered.
    RayoRequest(Element),
}

/// The outcome of [`BreweryMember::handle_stanza`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Handled {
    /// Stanzas to send, in order.
    pub replies: Vec<Element>,
    /// Something the application must know.
    pub event: Option<BreweryEvent>,
}

/// Why a [`BreweryMember`] could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid brewery room or nick")]
pub struct BadBreweryAddress {
    /// The room JID or nick as given.
    pub value: String,
}

/// One brewery room occupancy (one per brewery account and connection).
#[derive(Debug, Clone)]
pub struct BreweryMember {
    occupant: FullJid,
    stats: Stats,
    disco: DiscoInfo,
    joined: bool,
}

impl BreweryMember {
    /// A member that will join `room` (e.g. `JigasiBrewery@internal.auth.meet.example.com`)
    /// under `nick` (Jigasi uses its connection resource) and publish `stats`.
    pub fn new(
        room: &str,
        nick: &str,
        stats: Stats,
        disco: DiscoInfo,
    ) -> Result<Self, BadBreweryAddress> {
        let room = BareJid::new(room).map_err(|_| BadBreweryAddress {
            value: room.to_owned(),
        })?;
        let nick = ResourcePart::new(nick).map_err(|_| BadBreweryAddress {
            value: nick.to_owned(),
        })?;
        Ok(Self {
            occupant: room.with_resource(&nick),
            stats,
            disco,
            joined: false,
        })
    }

    /// The stanzas that join the room: the MUC join presence, then the stats presence (Jigasi
    /// sends them in this order, jitsi-protocols.md §2.1 Example 1).
    pub fn join(&mut self) -> Vec<Element> {
        self.joined = false;
        vec![
            join_presence(&self.occupant, None, vec![self.caps()]),
            self.stats_presence(),
        ]
    }

    /// New statistics; returns the presence to publish when anything changed.
    pub fn set_stats(&mut self, stats: Stats) -> Option<Element> {
        if stats == self.stats {
            return None;
        }
        self.stats = stats;
        Some(self.stats_presence())
    }

    /// The presence that leaves the room.
    pub fn leave(&mut self) -> Element {
        self.joined = false;
        leave_presence(&self.occupant)
    }

    /// Whether the server confirmed our join and we have not been removed since.
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// The current statistics.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Our occupant JID (`room@service/nick`).
    pub fn occupant(&self) -> &FullJid {
        &self.occupant
    }

    /// Handles a stanza that arrived on the brewery connection.
    ///
    /// IQ requests always get an answer here or are passed on as [`BreweryEvent::RayoRequest`]
    /// (whose answer is then the application's job); nothing is left unanswered.
    pub fn handle_stanza(&mut self, stanza: &Element) -> Handled {
        if stanza.is("presence", ns::JABBER_CLIENT) {
            return self.handle_presence(stanza);
        }
        if !is_iq_request(stanza) {
            return Handled::default();
        }
        if let Some(answer) = self.disco.answer(stanza) {
            return Handled {
                replies: vec![answer],
                event: None,
            };
        }
        if stanza.attr("type") == Some("set")
            && stanza
                .children()
                .any(|c| c.ns() == RAYO && (c.name() == "dial" || c.name() == "hangup"))
        {
            return Handled {
                replies: Vec::new(),
                event: Some(BreweryEvent::RayoRequest(stanza.clone())),
            };
        }
        Handled {
            replies: vec![iq_error(stanza, "cancel", "service-unavailable")],
            event: None,
        }
    }

    fn handle_presence(&mut self, presence: &Element) -> Handled {
        let event = match MucPresence::classify(presence) {
            Some(MucPresence::SelfJoined { occupant, .. }) if occupant == self.occupant => {
                let first = !self.joined;
                self.joined = true;
                first.then_some(BreweryEvent::Joined)
            }
            Some(MucPresence::Kicked {
                occupant,
                is_self: true,
            }) if occupant == self.occupant => {
                self.joined = false;
                Some(BreweryEvent::Removed)
            }
            Some(MucPresence::RoomDestroyed { room, .. }) if room == self.occupant.to_bare() => {
                self.joined = false;
                Some(BreweryEvent::Removed)
            }
            Some(MucPresence::Error { from, error, .. })
                if from
                    .as_ref()
                    .is_some_and(|f| f.to_bare() == self.occupant.to_bare()) =>
            {
                self.joined = false;
                Some(BreweryEvent::JoinRefused(error))
            }
            Some(
                MucPresence::SelfJoined { .. }
                | MucPresence::OccupantAvailable { .. }
                | MucPresence::OccupantLeft { .. }
                | MucPresence::SelfLeft { .. }
                | MucPresence::Kicked { .. }
                | MucPresence::RoomDestroyed { .. }
                | MucPresence::Error { .. },
            )
            | None => None,
        };
        Handled {
            replies: Vec::new(),
            event,
        }
    }

    fn caps(&self) -> Element {
        self.disco.caps_element(JITSI_CAPS_NODE)
    }

    fn stats_presence(&self) -> Element {
        stats_presence(&self.occupant, &self.stats, self.caps())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const ROOM: &str = "jigasibrewery@internal.auth.meet.example.com";

    fn stats() -> Stats {
        Stats {
            conferences: 0,
            participants: 0,
            graceful_shutdown: false,
            stress_level: 0.0,
            region: None,
            version: "0.1.0".into(),
            supports_transcription: false,
            supports_sip: true,
        }
    }

    fn member() -> BreweryMember {
        BreweryMember::new(ROOM, "jitsi-abc123", stats(), DiscoInfo::jigasi()).unwrap()
    }

    fn parse(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    #[test]
    fn join_sends_muc_join_then_stats() {
        let mut m = member();
        let out = m.join();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].attr("to"), Some(&*format!("{ROOM}/jitsi-abc123")));
        assert!(out[0].get_child("x", ns::MUC).is_some());
        let stats = Stats::from_presence(&out[1]).unwrap().unwrap();
        assert_eq!(stats, self::stats());
        assert!(!m.is_joined());
    }

    #[test]
    fn self_presence_confirms_the_join_once() {
        let mut m = member();
        m.join();
        let self_presence = parse(&format!(
            "<presence xmlns='jabber:client' from='{ROOM}/jitsi-abc123' to='jigasi@auth.meet.example.com/jitsi-abc123'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>\
             <status code='110'/></x></presence>"
        ));
        assert_eq!(
            m.handle_stanza(&self_presence).event,
            Some(BreweryEvent::Joined)
        );
        assert!(m.is_joined());
        // Our own stats presence is reflected with 110 too: not a second Joined.
        assert_eq!(m.handle_stanza(&self_presence).event, None);
    }

    #[test]
    fn join_error_is_reported() {
        let mut m = member();
        let error = parse(&format!(
            "<presence xmlns='jabber:client' from='{ROOM}/jitsi-abc123' type='error'>\
             <x xmlns='http://jabber.org/protocol/muc'/>\
             <error type='auth'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
        ));
        match m.handle_stanza(&error).event {
            Some(BreweryEvent::JoinRefused(e)) => assert_eq!(e.condition, "not-authorized"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn stats_are_republished_only_on_change() {
        let mut m = member();
        assert!(m.set_stats(stats()).is_none());
        let mut busier = stats();
        busier.conferences = 1;
        busier.participants = 3;
        busier.stress_level = 0.01;
        let presence = m.set_stats(busier.clone()).unwrap();
        assert_eq!(Stats::from_presence(&presence).unwrap(), Some(busier));
    }

    #[test]
    fn disco_info_is_answered_with_the_jigasi_feature() {
        let mut m = member();
        let iq = parse(
            "<iq xmlns='jabber:client' type='get' id='d1' from='focus@auth.meet.example.com/f' \
             to='jigasi@auth.meet.example.com/jitsi-abc123'>\
             <query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        );
        let out = m.handle_stanza(&iq);
        assert_eq!(out.replies.len(), 1);
        let answer = &out.replies[0];
        assert_eq!(answer.attr("type"), Some("result"));
        assert_eq!(answer.attr("id"), Some("d1"));
        let query = answer.get_child("query", ns::DISCO_INFO).unwrap();
        assert!(
            query
                .children()
                .any(|f| f.name() == "feature" && f.attr("var") == Some(ns::JIGASI))
        );
    }

    #[test]
    fn rayo_dial_is_passed_on_and_other_iqs_get_service_unavailable() {
        let mut m = member();
        let dial = parse(
            "<iq xmlns='jabber:client' type='set' id='r1' from='jigasibrewery@internal.auth.meet.example.com/focus'>\
             <dial xmlns='urn:xmpp:rayo:1' to='+15551234' from='fromnumber'>\
             <header xmlns='urn:xmpp:rayo:1' name='JvbRoomName' value='room@conference.meet.example.com'/></dial></iq>",
        );
        let out = m.handle_stanza(&dial);
        assert!(out.replies.is_empty());
        assert_eq!(out.event, Some(BreweryEvent::RayoRequest(dial.clone())));

        let unknown = parse(
            "<iq xmlns='jabber:client' type='get' id='u1' from='x@y/z'><query xmlns='urn:example:unknown'/></iq>",
        );
        let out = m.handle_stanza(&unknown);
        assert_eq!(out.replies.len(), 1);
        assert_eq!(out.replies[0].attr("type"), Some("error"));
        assert!(
            out.replies[0]
                .get_child("error", ns::JABBER_CLIENT)
                .and_then(|e| e.get_child("service-unavailable", ns::STANZAS))
                .is_some()
        );
        // Results and errors are never answered.
        let result = parse("<iq xmlns='jabber:client' type='result' id='u2' from='x@y/z'/>");
        assert_eq!(m.handle_stanza(&result), Handled::default());
    }

    #[test]
    fn kick_and_destroy_remove_us() {
        let mut m = member();
        m.join();
        let kick = parse(&format!(
            "<presence xmlns='jabber:client' from='{ROOM}/jitsi-abc123' type='unavailable'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/>\
             <status code='307'/><status code='110'/></x></presence>"
        ));
        assert_eq!(m.handle_stanza(&kick).event, Some(BreweryEvent::Removed));
        let destroy = parse(&format!(
            "<presence xmlns='jabber:client' from='{ROOM}/jitsi-abc123' type='unavailable'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/>\
             <destroy/><status code='110'/></x></presence>"
        ));
        assert_eq!(m.handle_stanza(&destroy).event, Some(BreweryEvent::Removed));
    }

    #[test]
    fn bad_addresses_are_errors() {
        assert!(BreweryMember::new("not a jid@", "n", stats(), DiscoInfo::jigasi()).is_err());
        assert!(BreweryMember::new(ROOM, "", stats(), DiscoInfo::jigasi()).is_err());
    }
}
