//! Colibri `stats`/`stat` as carried in brewery and room presence (jitsi-protocols.md §2.1,
//! §3.2). A plain name/value list: interpreting the stats is the brewery's business.

use minidom::Element;

use crate::xml::{self, Builder};
use crate::{ParseError, ns};

/// `<stat xmlns="http://jitsi.org/protocol/colibri" name= value=/>`: inside `stats`, or alone in
/// room presence (`name="version"`, §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// `name`.
    pub name: String,
    /// `value`.
    pub value: String,
}

impl Stat {
    /// A stat.
    pub fn new(name: &str, value: impl ToString) -> Self {
        Self {
            name: name.to_owned(),
            value: value.to_string(),
        }
    }

    /// Reads a stat.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "stat", ns::COLIBRI)?;
        Ok(Self {
            name: xml::req(el, "stat", "name")?.to_owned(),
            value: xml::opt(el, "value").unwrap_or_default(),
        })
    }

    /// Writes the stat.
    pub fn to_element(&self) -> Element {
        Builder::new("stat", ns::COLIBRI)
            .attr("name", &self.name)
            .attr("value", &self.value)
            .build()
    }
}

/// `<stats xmlns="http://jitsi.org/protocol/colibri">` (jitsi-xmpp-extensions
/// `ColibriStatsExtension`; §2.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    /// The stats in order.
    pub stats: Vec<Stat>,
    /// Other children, kept verbatim after the stats.
    pub other: Vec<Element>,
}

impl Stats {
    /// Reads the stats.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        xml::check(el, "stats", ns::COLIBRI)?;
        let mut stats = Vec::new();
        let mut other = Vec::new();
        for child in el.children() {
            if child.is("stat", ns::COLIBRI) {
                stats.push(Stat::parse(child)?);
            } else {
                other.push(child.clone());
            }
        }
        Ok(Self { stats, other })
    }

    /// Writes the stats.
    pub fn to_element(&self) -> Element {
        Builder::new("stats", ns::COLIBRI)
            .children(self.stats.iter().map(Stat::to_element))
            .children(self.other.iter().cloned())
            .build()
    }

    /// The value of the first stat called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.stats
            .iter()
            .find(|stat| stat.name == name)
            .map(|stat| stat.value.as_str())
    }
}
