//! Multi-user chat (XEP-0045) presences: join and leave builders, and a classifier for what
//! the room sends back (jitsi-protocols.md §3.2, §6.2, §6.3).

use std::collections::BTreeMap;

use jid::{BareJid, FullJid, Jid};
use minidom::Element;

use crate::error::StanzaError;
use crate::ns;
use crate::stanza::set_attr;

/// The join presence to `room_full_jid` (`room@muc/nick`): `<x xmlns=muc>` (with `<password>`
/// if given) followed by `extensions` (nick, features, caps, stats, ...).
pub fn join_presence(
    room_full_jid: &FullJid,
    password: Option<&str>,
    extensions: Vec<Element>,
) -> Element {
    let mut x = Element::bare("x", ns::MUC);
    if let Some(password) = password {
        x.append_child(
            Element::builder("password", ns::MUC)
                .append(password)
                .build(),
        );
    }
    let mut presence = Element::builder("presence", ns::JABBER_CLIENT)
        .append(x)
        .append_all(extensions)
        .build();
    set_attr(&mut presence, "to", room_full_jid.to_string());
    presence
}

/// A presence update to the room (no `<x/>`): how stats and status changes are re-sent after
/// joining.
pub fn update_presence(room_full_jid: &FullJid, extensions: Vec<Element>) -> Element {
    let mut presence = Element::builder("presence", ns::JABBER_CLIENT)
        .append_all(extensions)
        .build();
    set_attr(&mut presence, "to", room_full_jid.to_string());
    presence
}

/// The unavailable presence that leaves the room.
pub fn leave_presence(room_full_jid: &FullJid) -> Element {
    let mut presence = Element::bare("presence", ns::JABBER_CLIENT);
    set_attr(&mut presence, "to", room_full_jid.to_string());
    set_attr(&mut presence, "type", "unavailable");
    presence
}

/// The `<item/>` of a `muc#user` presence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MucItem {
    /// `owner`, `admin`, `member`, `outcast` or `none`.
    pub affiliation: Option<String>,
    /// `moderator`, `participant`, `visitor` or `none`.
    pub role: Option<String>,
    /// The occupant's real JID, when the room shows it (Jitsi rooms do).
    pub jid: Option<String>,
}

/// What a presence from a room means.
#[derive(Debug, Clone, PartialEq)]
pub enum MucPresence {
    /// Our own presence is in the room (status 110): sent once after a successful join and again
    /// whenever our presence changes.
    SelfJoined {
        /// Our occupant JID (`room@muc/nick`).
        occupant: FullJid,
        /// Our affiliation and role.
        item: MucItem,
    },
    /// Another occupant is present (joined or updated; [`MucRoster`] tells which).
    OccupantAvailable {
        /// The occupant JID.
        occupant: FullJid,
        /// Affiliation, role and real JID.
        item: MucItem,
        /// The whole presence, for payloads (stats, features, nick).
        presence: Element,
    },
    /// Another occupant left.
    OccupantLeft {
        /// The occupant JID.
        occupant: FullJid,
    },
    /// We left (our own unavailable presence, status 110, no kick or destroy).
    SelfLeft {
        /// Our occupant JID.
        occupant: FullJid,
    },
    /// An occupant was kicked (status 307); `is_self` when it was us.
    Kicked {
        /// The occupant JID.
        occupant: FullJid,
        /// Whether we were kicked (status 110 present).
        is_self: bool,
    },
    /// The room was destroyed (`<destroy/>`), e.g. "end meeting for all".
    RoomDestroyed {
        /// The room.
        room: BareJid,
        /// The alternate venue (`jid` of `<destroy/>`), if any.
        alternate: Option<String>,
        /// The reason text, if any.
        reason: Option<String>,
    },
    /// Joining (or a presence to the room) failed.
    Error {
        /// Where the error came from (the occupant JID we tried).
        from: Option<Jid>,
        /// The condition: `not-authorized` (password), `registration-required` (members-only or
        /// lobby), `service-unavailable` (full), `conflict` (nick taken), ...
        error: StanzaError,
        /// The lobby room when the room has a lobby (Jitsi's `<lobbyroom>`).
        lobby_room: Option<String>,
    },
}

impl MucPresence {
    /// Classifies a presence from a room; `None` if it is not a presence or not from a room
    /// occupant (no `muc#user` payload and not an error).
    pub fn classify(presence: &Element) -> Option<Self> {
        if !presence.is("presence", ns::JABBER_CLIENT) {
            return None;
        }
        let kind = presence.attr("type");
        let from = presence.attr("from").and_then(|f| Jid::new(f).ok());
        if kind == Some("error") {
            let error = StanzaError::from_stanza(presence)?;
            let lobby_room = presence
                .get_child("error", ns::JABBER_CLIENT)
                .and_then(|e| e.get_child("lobbyroom", ns::JITMEET))
                .or_else(|| presence.get_child("lobbyroom", ns::JABBER_CLIENT))
                .map(Element::text);
            return Some(Self::Error {
                from,
                error,
                lobby_room,
            });
        }
        let occupant = from?.try_into_full().ok()?;
        let x = presence.get_child("x", ns::MUC_USER)?;
        let codes: Vec<&str> = x
            .children()
            .filter(|c| c.is("status", ns::MUC_USER))
            .filter_map(|c| c.attr("code"))
            .collect();
        let is_self = codes.contains(&"110");
        let item = x
            .get_child("item", ns::MUC_USER)
            .map(|i| MucItem {
                affiliation: i.attr("affiliation").map(str::to_owned),
                role: i.attr("role").map(str::to_owned),
                jid: i.attr("jid").map(str::to_owned),
            })
            .unwrap_or_default();
        match kind {
            Some("unavailable") => {
                if let Some(destroy) = x.get_child("destroy", ns::MUC_USER) {
                    return Some(Self::RoomDestroyed {
                        room: occupant.to_bare(),
                        alternate: destroy.attr("jid").map(str::to_owned),
                        reason: destroy.get_child("reason", ns::MUC_USER).map(Element::text),
                    });
                }
                if codes.contains(&"307") {
                    return Some(Self::Kicked { occupant, is_self });
                }
                Some(if is_self {
                    Self::SelfLeft { occupant }
                } else {
                    Self::OccupantLeft { occupant }
                })
            }
            None => Some(if is_self {
                Self::SelfJoined { occupant, item }
            } else {
                Self::OccupantAvailable {
                    occupant,
                    item,
                    presence: presence.clone(),
                }
            }),
            Some(_) => None,
        }
    }
}

/// A change in a room's occupant list, as told by [`MucRoster::observe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OccupantChange {
    /// A new occupant.
    Joined(FullJid),
    /// A known occupant sent new presence.
    Updated(FullJid),
    /// An occupant left, was kicked, or the room went away.
    Left(FullJid),
}

/// The occupants of one room, so that available presences can be told apart as joins or
/// updates.
#[derive(Debug, Clone, Default)]
pub struct MucRoster {
    occupants: BTreeMap<String, MucItem>,
}

impl MucRoster {
    /// An empty roster.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a classified presence; returns the change for other occupants (our own
    /// presences return `None`).
    pub fn observe(&mut self, presence: &MucPresence) -> Option<OccupantChange> {
        match presence {
            MucPresence::OccupantAvailable { occupant, item, .. } => {
                let known = self
                    .occupants
                    .insert(occupant.to_string(), item.clone())
                    .is_some();
                Some(if known {
                    OccupantChange::Updated(occupant.clone())
                } else {
                    OccupantChange::Joined(occupant.clone())
                })
            }
            MucPresence::OccupantLeft { occupant }
            | MucPresence::Kicked {
                occupant,
                is_self: false,
            } => self
                .occupants
                .remove(occupant.as_str())
                .map(|_| OccupantChange::Left(occupant.clone())),
            MucPresence::RoomDestroyed { .. } => {
                self.occupants.clear();
                None
            }
            MucPresence::SelfJoined { .. }
            | MucPresence::SelfLeft { .. }
            | MucPresence::Kicked { is_self: true, .. }
            | MucPresence::Error { .. } => None,
        }
    }

    /// The current occupants other than us, by occupant JID.
    pub fn occupants(&self) -> impl Iterator<Item = (&str, &MucItem)> {
        self.occupants.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of other occupants.
    pub fn len(&self) -> usize {
        self.occupants.len()
    }

    /// Whether nobody else is in the room.
    pub fn is_empty(&self) -> bool {
        self.occupants.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    fn full(s: &str) -> FullJid {
        FullJid::new(s).unwrap()
    }

    #[test]
    fn join_presence_carries_password_and_extensions() {
        let nick = Element::builder("nick", "http://jabber.org/protocol/nick")
            .append("+15551234567")
            .build();
        let presence = join_presence(
            &full("room1@conference.meet.example.com/d3adb33f"),
            Some("s3cret"),
            vec![nick],
        );
        let expected = parse(
            "<presence xmlns='jabber:client' to='room1@conference.meet.example.com/d3adb33f'>\
               <x xmlns='http://jabber.org/protocol/muc'><password>s3cret</password></x>\
               <nick xmlns='http://jabber.org/protocol/nick'>+15551234567</nick></presence>",
        );
        assert_eq!(presence, expected);
        let leave = leave_presence(&full("room1@conference.meet.example.com/d3adb33f"));
        assert_eq!(leave.attr("type"), Some("unavailable"));
    }

    // Shapes below are as Prosody 0.12 sends them (occupant-id and real JIDs included).
    #[test]
    fn classifies_self_join_and_other_occupants() {
        let own = parse(
            "<presence xmlns='jabber:client' from='jigasibrewery@internal.auth.meet.example.com/jigasi-1' \
               to='jigasi@auth.meet.example.com/jigasi-1'>\
               <occupant-id xmlns='urn:xmpp:occupant-id:0' id='abc='/>\
               <x xmlns='http://jabber.org/protocol/muc#user'>\
                 <status code='100'/><item affiliation='none' role='participant' \
                   jid='jigasi@auth.meet.example.com/jigasi-1'/>\
                 <status code='110'/></x></presence>",
        );
        let Some(MucPresence::SelfJoined { occupant, item }) = MucPresence::classify(&own) else {
            panic!("expected self join")
        };
        assert_eq!(occupant.resource().as_str(), "jigasi-1");
        assert_eq!(item.role.as_deref(), Some("participant"));

        let focus = parse(
            "<presence xmlns='jabber:client' from='jigasibrewery@internal.auth.meet.example.com/focus'>\
               <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' \
                 role='moderator' jid='focus@auth.meet.example.com/focus'/></x></presence>",
        );
        let classified = MucPresence::classify(&focus).unwrap();
        let mut roster = MucRoster::new();
        let occupant = full("jigasibrewery@internal.auth.meet.example.com/focus");
        assert_eq!(
            roster.observe(&classified),
            Some(OccupantChange::Joined(occupant.clone()))
        );
        assert_eq!(
            roster.observe(&classified),
            Some(OccupantChange::Updated(occupant.clone()))
        );
        let gone = parse(
            "<presence xmlns='jabber:client' type='unavailable' \
               from='jigasibrewery@internal.auth.meet.example.com/focus'>\
               <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' role='none'/>\
               </x></presence>",
        );
        let left = MucPresence::classify(&gone).unwrap();
        assert_eq!(
            left,
            MucPresence::OccupantLeft {
                occupant: occupant.clone()
            }
        );
        assert_eq!(roster.observe(&left), Some(OccupantChange::Left(occupant)));
        assert!(roster.is_empty());
    }

    #[test]
    fn classifies_join_errors() {
        for condition in [
            "not-authorized",
            "registration-required",
            "service-unavailable",
            "conflict",
        ] {
            let error = parse(&format!(
                "<presence xmlns='jabber:client' type='error' \
                   from='room1@conference.meet.example.com/d3adb33f'>\
                   <x xmlns='http://jabber.org/protocol/muc'/>\
                   <error type='auth'><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
                   <lobbyroom xmlns='http://jitsi.org/jitmeet'>room1@lobby.meet.example.com</lobbyroom>\
                   </error></presence>"
            ));
            let Some(MucPresence::Error {
                error, lobby_room, ..
            }) = MucPresence::classify(&error)
            else {
                panic!("expected error")
            };
            assert_eq!(error.condition, condition);
            assert_eq!(lobby_room.as_deref(), Some("room1@lobby.meet.example.com"));
        }
    }

    #[test]
    fn classifies_kick_and_destroy() {
        // jitsi-protocols.md §6.2.
        let kick = parse(
            "<presence xmlns='jabber:client' type='unavailable' \
               from='room1@conference.meet.example.com/d3adb33f'>\
               <x xmlns='http://jabber.org/protocol/muc#user'>\
                 <item affiliation='none' role='none'><actor nick='Alice'/></item>\
                 <status code='307'/><status code='110'/></x></presence>",
        );
        assert_eq!(
            MucPresence::classify(&kick),
            Some(MucPresence::Kicked {
                occupant: full("room1@conference.meet.example.com/d3adb33f"),
                is_self: true
            })
        );
        let destroy = parse(
            "<presence xmlns='jabber:client' type='unavailable' \
               from='room1@conference.meet.example.com/d3adb33f'>\
               <x xmlns='http://jabber.org/protocol/muc#user'>\
                 <item affiliation='none' role='none'/><destroy><reason>bye</reason></destroy>\
                 <status code='110'/></x></presence>",
        );
        let Some(MucPresence::RoomDestroyed {
            room,
            alternate,
            reason,
        }) = MucPresence::classify(&destroy)
        else {
            panic!("expected destroy")
        };
        assert_eq!(room.as_str(), "room1@conference.meet.example.com");
        assert_eq!(alternate, None);
        assert_eq!(reason.as_deref(), Some("bye"));
        let plain = parse("<presence xmlns='jabber:client' from='a@b/c'/>");
        assert_eq!(MucPresence::classify(&plain), None);
    }
}
