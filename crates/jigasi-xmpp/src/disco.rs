//! Service discovery (XEP-0030 disco#info) answers and entity capabilities (XEP-0115).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use minidom::Element;
use sasl::common::scram::{ScramProvider, Sha1};

use crate::ns;
use crate::stanza::{self, set_attr};

/// A disco#info identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Identity {
    /// Category, e.g. `client`.
    pub category: String,
    /// Type, e.g. `pc`.
    pub kind: String,
    /// Optional `xml:lang`.
    pub lang: Option<String>,
    /// Optional name, e.g. `Jigasi`.
    pub name: Option<String>,
}

/// What we answer to disco#info, and the caps hash derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoInfo {
    /// Identities, usually one.
    pub identities: Vec<Identity>,
    /// Feature namespaces.
    pub features: Vec<String>,
}

/// The caps node Jitsi clients use (jitsi-protocols.md §1.4).
pub const JITSI_CAPS_NODE: &str = "http://jitsi.org";

impl DiscoInfo {
    /// What a Jigasi-like gateway advertises (jitsi-protocols.md §1.4's recommendation), including
    /// `http://jitsi.org/protocol/jigasi`, with identity `client/pc` named `Jigasi`.
    pub fn jigasi() -> Self {
        Self {
            identities: vec![Identity {
                category: "client".into(),
                kind: "pc".into(),
                lang: None,
                name: Some("Jigasi".into()),
            }],
            features: [
                ns::DISCO_INFO,
                ns::PING,
                "urn:xmpp:jingle:1",
                "urn:xmpp:jingle:apps:rtp:1",
                "urn:xmpp:jingle:apps:rtp:audio",
                "urn:xmpp:jingle:transports:ice-udp:1",
                "urn:xmpp:jingle:apps:dtls:0",
                "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0",
                "urn:ietf:rfc:5761",
                "urn:ietf:rfc:5888",
                ns::JIGASI,
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        }
    }

    /// Adds a feature (no duplicates).
    pub fn with_feature(mut self, feature: impl Into<String>) -> Self {
        let feature = feature.into();
        if !self.features.contains(&feature) {
            self.features.push(feature);
        }
        self
    }

    /// The XEP-0115 §5.1 verification string (`ver`), base64 SHA-1.
    pub fn caps_ver(&self) -> String {
        let mut identities: Vec<String> = self
            .identities
            .iter()
            .map(|i| {
                format!(
                    "{}/{}/{}/{}<",
                    i.category,
                    i.kind,
                    i.lang.as_deref().unwrap_or(""),
                    i.name.as_deref().unwrap_or("")
                )
            })
            .collect();
        identities.sort();
        let mut features: Vec<&str> = self.features.iter().map(String::as_str).collect();
        features.sort_unstable();
        features.dedup();
        let mut input = identities.concat();
        for feature in features {
            input.push_str(feature);
            input.push('<');
        }
        BASE64.encode(Sha1::hash(input.as_bytes()))
    }

    /// The caps element `<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node=… ver=…/>`
    /// for presences.
    pub fn caps_element(&self, node: &str) -> Element {
        caps_element(node, &self.caps_ver())
    }

    /// The `<query xmlns='disco#info'>` payload, with `node` echoed if given.
    pub fn query(&self, node: Option<&str>) -> Element {
        let mut query = Element::bare("query", ns::DISCO_INFO);
        if let Some(node) = node {
            set_attr(&mut query, "node", node);
        }
        for identity in &self.identities {
            let mut el = Element::bare("identity", ns::DISCO_INFO);
            set_attr(&mut el, "category", identity.category.clone());
            set_attr(&mut el, "type", identity.kind.clone());
            if let Some(name) = &identity.name {
                set_attr(&mut el, "name", name.clone());
            }
            if let Some(lang) = &identity.lang {
                el.set_attr(
                    rxml::Namespace::xml().clone(),
                    stanza::name("lang"),
                    lang.clone(),
                );
            }
            query.append_child(el);
        }
        for feature in &self.features {
            let mut el = Element::bare("feature", ns::DISCO_INFO);
            set_attr(&mut el, "var", feature.clone());
            query.append_child(el);
        }
        query
    }

    /// If `request` is a disco#info `get`, the result IQ to send back (echoing the queried
    /// `node`, which Jicofo's caps cache requires); otherwise `None`.
    pub fn answer(&self, request: &Element) -> Option<Element> {
        if !request.is("iq", ns::JABBER_CLIENT) || request.attr("type") != Some("get") {
            return None;
        }
        let query = request.get_child("query", ns::DISCO_INFO)?;
        let mut reply = stanza::iq_result(request);
        reply.append_child(self.query(query.attr("node")));
        Some(reply)
    }

    /// Reads the `<query/>` of a disco#info result IQ.
    pub fn from_result(result: &Element) -> Option<Self> {
        let query = result.get_child("query", ns::DISCO_INFO)?;
        let identities = query
            .children()
            .filter(|c| c.is("identity", ns::DISCO_INFO))
            .map(|c| Identity {
                category: c.attr("category").unwrap_or("").to_owned(),
                kind: c.attr("type").unwrap_or("").to_owned(),
                lang: c.attr_ns(ns::XML, "lang").map(str::to_owned),
                name: c.attr("name").map(str::to_owned),
            })
            .collect();
        let features = query
            .children()
            .filter(|c| c.is("feature", ns::DISCO_INFO))
            .filter_map(|c| c.attr("var").map(str::to_owned))
            .collect();
        Some(Self {
            identities,
            features,
        })
    }
}

/// A disco#info request to `to` (send it with `send_iq`).
pub fn info_request(to: &str) -> Element {
    stanza::iq("get", Some(to), Element::bare("query", ns::DISCO_INFO))
}

/// A caps element with a precomputed `ver`.
pub fn caps_element(node: &str, ver: &str) -> Element {
    let mut c = Element::bare("c", ns::CAPS);
    set_attr(&mut c, "hash", "sha-1");
    set_attr(&mut c, "node", node);
    set_attr(&mut c, "ver", ver);
    c
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn caps_ver_matches_xep0115_simple_example() {
        // XEP-0115 §5.2.
        let info = DiscoInfo {
            identities: vec![Identity {
                category: "client".into(),
                kind: "pc".into(),
                lang: None,
                name: Some("Exodus 0.9.1".into()),
            }],
            features: vec![
                "http://jabber.org/protocol/disco#info".into(),
                "http://jabber.org/protocol/disco#items".into(),
                "http://jabber.org/protocol/muc".into(),
                "http://jabber.org/protocol/caps".into(),
            ],
        };
        assert_eq!(info.caps_ver(), "QgayPKawpkPSDYmwT/WM94uAlu0=");
    }

    #[test]
    fn answers_disco_info_with_jigasi_feature_and_echoed_node() {
        let request: Element = "<iq xmlns='jabber:client' type='get' id='disco-1' \
            from='room1@conference.meet.example.com/focus' to='x@meet.example.com/d3adb33f'>\
            <query xmlns='http://jabber.org/protocol/disco#info' node='http://jitsi.org#abc'/></iq>"
            .parse()
            .unwrap();
        let info = DiscoInfo::jigasi();
        let reply = info.answer(&request).unwrap();
        assert_eq!(reply.attr("type"), Some("result"));
        assert_eq!(reply.attr("id"), Some("disco-1"));
        assert_eq!(
            reply.attr("to"),
            Some("room1@conference.meet.example.com/focus")
        );
        let query = reply.get_child("query", ns::DISCO_INFO).unwrap();
        assert_eq!(query.attr("node"), Some("http://jitsi.org#abc"));
        let parsed = DiscoInfo::from_result(&reply).unwrap();
        assert!(parsed.features.iter().any(|f| f == ns::JIGASI));
        assert_eq!(parsed, info);
        let set: Element = "<iq xmlns='jabber:client' type='set' id='1'>\
            <query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
            .parse()
            .unwrap();
        assert!(info.answer(&set).is_none());
    }

    #[test]
    fn with_feature_does_not_duplicate() {
        let info = DiscoInfo::jigasi()
            .with_feature(ns::JIGASI)
            .with_feature("x");
        assert_eq!(info.features.iter().filter(|f| *f == ns::JIGASI).count(), 1);
        assert!(info.features.contains(&"x".to_owned()));
    }
}
