//! The brewery presence: the `<stats xmlns='http://jitsi.org/protocol/colibri'>` payload by
//! which Jicofo discovers and selects Jigasi instances (jitsi-protocols.md §2.1).

use jid::FullJid;
use minidom::Element;

use crate::ns;
use crate::stanza::set_attr;

/// What a Jigasi publishes about itself (Jigasi's `Statistics.java`).
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Sessions that are in a room.
    pub conferences: u32,
    /// Sum over sessions of (room members − 1); Jicofo picks the instance with the fewest.
    pub participants: u32,
    /// Jicofo skips instances that are shutting down gracefully.
    pub graceful_shutdown: bool,
    /// conferences / `CONFERENCES_THRESHOLD` (default 100).
    pub stress_level: f64,
    /// `LOCAL_REGION`; the stat is omitted when `None`.
    pub region: Option<String>,
    /// Our version string.
    pub version: String,
    /// Whether a transcription gateway is enabled.
    pub supports_transcription: bool,
    /// Whether the SIP gateway is enabled.
    pub supports_sip: bool,
}

/// Why a `<stats>` payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    /// A required stat is missing.
    #[error("missing stat {0}")]
    Missing(&'static str),
    /// A stat value does not parse.
    #[error("bad value {value:?} for stat {name}")]
    BadValue {
        /// The stat name.
        name: &'static str,
        /// The value found.
        value: String,
    },
}

impl Stats {
    /// The `<stats>` element, stat names and order exactly as Jigasi sends them.
    pub fn to_element(&self) -> Element {
        let mut stats = Element::bare("stats", ns::COLIBRI);
        let mut push = |name: &str, value: String| {
            let mut stat = Element::bare("stat", ns::COLIBRI);
            set_attr(&mut stat, "name", name.to_owned());
            set_attr(&mut stat, "value", value);
            stats.append_child(stat);
        };
        push("conferences", self.conferences.to_string());
        push("participants", self.participants.to_string());
        push("graceful_shutdown", self.graceful_shutdown.to_string());
        push("stress_level", java_double(self.stress_level));
        if let Some(region) = &self.region {
            push("region", region.clone());
        }
        push("version", self.version.clone());
        push(
            "supports_transcription",
            self.supports_transcription.to_string(),
        );
        push("supports_sip", self.supports_sip.to_string());
        stats
    }

    /// Reads the stats from a (brewery member's) presence; `Ok(None)` if it carries none.
    pub fn from_presence(presence: &Element) -> Result<Option<Self>, StatsError> {
        let Some(stats) = presence.get_child("stats", ns::COLIBRI) else {
            return Ok(None);
        };
        let get = |name: &'static str| {
            stats
                .children()
                .filter(|c| c.is("stat", ns::COLIBRI))
                .find(|c| c.attr("name") == Some(name))
                .and_then(|c| c.attr("value"))
                .map(str::to_owned)
        };
        fn parse<T: std::str::FromStr>(name: &'static str, value: String) -> Result<T, StatsError> {
            value
                .parse()
                .map_err(|_| StatsError::BadValue { name, value })
        }
        let required = |name: &'static str| get(name).ok_or(StatsError::Missing(name));
        Ok(Some(Self {
            conferences: parse("conferences", required("conferences")?)?,
            participants: parse("participants", required("participants")?)?,
            graceful_shutdown: parse("graceful_shutdown", required("graceful_shutdown")?)?,
            stress_level: parse("stress_level", required("stress_level")?)?,
            region: get("region"),
            version: get("version").unwrap_or_default(),
            supports_transcription: get("supports_transcription")
                .map(|v| parse("supports_transcription", v))
                .transpose()?
                .unwrap_or(false),
            supports_sip: get("supports_sip")
                .map(|v| parse("supports_sip", v))
                .transpose()?
                .unwrap_or(false),
        }))
    }
}

/// The stats presence to the brewery occupant JID `to` (`JigasiBrewery@internal.auth.…/nick`):
/// `caps` (see [`crate::disco::DiscoInfo::caps_element`]) followed by the `<stats>` element, as
/// in jitsi-protocols.md §2.1 Example 1. Send it after the join presence and whenever a stat
/// changes.
pub fn stats_presence(to: &FullJid, stats: &Stats, caps: Element) -> Element {
    let mut presence = Element::builder("presence", ns::JABBER_CLIENT)
        .append(caps)
        .append(stats.to_element())
        .build();
    set_attr(&mut presence, "to", to.to_string());
    presence
}

/// Formats like Java's `Double.toString` (what Jigasi's stats show): `0.0`, `0.03`, `1.0E-4`.
pub fn java_double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        // Rust prints the shortest string that round-trips, as Java does; Java always keeps
        // at least one fractional digit.
        let text = format!("{value}");
        return if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        };
    }
    // Computerised scientific notation: mantissa with at least one fractional digit.
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text.as_str(), "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_owned()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::disco;

    fn example_stats() -> Stats {
        Stats {
            conferences: 0,
            participants: 0,
            graceful_shutdown: false,
            stress_level: 0.0,
            region: Some("us-east-1".into()),
            version: "1.1.345-g6fbf4f2".into(),
            supports_transcription: false,
            supports_sip: true,
        }
    }

    #[test]
    fn stats_presence_is_exactly_example_1() {
        // jitsi-protocols.md §2.1 Example 1, second stanza.
        let expected: Element = r#"<presence xmlns="jabber:client" to="JigasiBrewery@internal.auth.meet.example.com/jitsi-5u2ls8">
  <c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="http://jitsi.org" ver="L0tTKRSE2ekOnP0ThbyNHFoBqJk="/>
  <stats xmlns="http://jitsi.org/protocol/colibri">
    <stat name="conferences" value="0"/>
    <stat name="participants" value="0"/>
    <stat name="graceful_shutdown" value="false"/>
    <stat name="stress_level" value="0.0"/>
    <stat name="region" value="us-east-1"/>
    <stat name="version" value="1.1.345-g6fbf4f2"/>
    <stat name="supports_transcription" value="false"/>
    <stat name="supports_sip" value="true"/>
  </stats>
</presence>"#
            .parse()
            .unwrap();
        let to = FullJid::new("JigasiBrewery@internal.auth.meet.example.com/jitsi-5u2ls8").unwrap();
        let caps = disco::caps_element("http://jitsi.org", "L0tTKRSE2ekOnP0ThbyNHFoBqJk=");
        let ours = stats_presence(&to, &example_stats(), caps);
        // JIDs are normalised (RFC 7622 §3.3: the local part is case-folded), as Prosody does;
        // everything else is byte for byte the example.
        assert_eq!(
            ours.attr("to"),
            Some("jigasibrewery@internal.auth.meet.example.com/jitsi-5u2ls8")
        );
        let mut expected = expected;
        crate::stanza::set_attr(
            &mut expected,
            "to",
            "jigasibrewery@internal.auth.meet.example.com/jitsi-5u2ls8",
        );
        // Compare serialisations with the indentation of the example removed.
        let normalise = |xml: String| -> String {
            xml.lines()
                .map(str::trim)
                .collect::<String>()
                .replace('"', "'")
        };
        let ours_text = crate::to_xml_string(&ours).unwrap();
        let expected_text = normalise(crate::to_xml_string(&strip_whitespace(&expected)).unwrap());
        assert_eq!(ours_text, expected_text);
        assert_eq!(ours, strip_whitespace(&expected));
        // The stat order is part of the contract.
        let names: Vec<&str> = ours
            .get_child("stats", ns::COLIBRI)
            .unwrap()
            .children()
            .filter_map(|c| c.attr("name"))
            .collect();
        assert_eq!(
            names,
            [
                "conferences",
                "participants",
                "graceful_shutdown",
                "stress_level",
                "region",
                "version",
                "supports_transcription",
                "supports_sip"
            ]
        );
    }

    /// Drops whitespace-only text nodes (the example's indentation).
    fn strip_whitespace(element: &Element) -> Element {
        let mut out = Element::bare(element.name(), element.ns());
        for ((ns, name), value) in element.attrs() {
            out.set_attr(ns.clone(), name.clone(), value.clone());
        }
        for node in element.nodes() {
            match node {
                minidom::Node::Element(child) => {
                    out.append_child(strip_whitespace(child));
                }
                minidom::Node::Text(text) if text.trim().is_empty() => {}
                minidom::Node::Text(text) => out.append_text(text.clone()),
            }
        }
        out
    }

    #[test]
    fn region_is_omitted_when_unset_and_values_round_trip() {
        let stats = Stats {
            region: None,
            conferences: 3,
            participants: 7,
            stress_level: 0.03,
            graceful_shutdown: true,
            ..example_stats()
        };
        let element = stats.to_element();
        assert!(!element.children().any(|c| c.attr("name") == Some("region")));
        let presence = Element::builder("presence", ns::JABBER_CLIENT)
            .append(element)
            .build();
        assert_eq!(Stats::from_presence(&presence).unwrap(), Some(stats));
        let bare = Element::bare("presence", ns::JABBER_CLIENT);
        assert_eq!(Stats::from_presence(&bare).unwrap(), None);
    }

    #[test]
    fn bad_stats_are_typed_errors() {
        let presence: Element = "<presence xmlns='jabber:client'>\
            <stats xmlns='http://jitsi.org/protocol/colibri'>\
            <stat name='conferences' value='many'/></stats></presence>"
            .parse()
            .unwrap();
        assert_eq!(
            Stats::from_presence(&presence).unwrap_err(),
            StatsError::BadValue {
                name: "conferences",
                value: "many".into()
            }
        );
    }

    #[test]
    fn doubles_print_like_java() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(0.03), "0.03");
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(0.5), "0.5");
        assert_eq!(java_double(12.25), "12.25");
        assert_eq!(java_double(1e-4), "1.0E-4");
        assert_eq!(java_double(1.5e-5), "1.5E-5");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(-2.0), "-2.0");
        assert_eq!(java_double(f64::NAN), "NaN");
    }
}
