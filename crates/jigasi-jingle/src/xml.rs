//! Small helpers over `minidom::Element` shared by every element type: attribute readers that
//! turn bad input into [`ParseError`]s, a builder that writes attributes back, and the
//! enum-with-fallback macro.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;

use minidom::Element;
use minidom::rxml::{Namespace, NcName};

use crate::ParseError;

/// Declares an enum over the wire spellings of an attribute value, plus an `Other(String)`
/// variant that keeps unknown values verbatim (so unknown values never fail a parse).
macro_rules! str_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $var:ident => $s:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $var,)*
            /// A value this crate does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$var => $s,)*
                    Self::Other(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($s => Self::$var,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Declares an enum over a closed set of wire spellings; anything else is a parse error.
macro_rules! strict_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $var:ident => $s:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $var,)*
        }

        impl $name {
            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$var => $s,)*
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = ();

            fn from_str(value: &str) -> Result<Self, ()> {
                match value {
                    $($s => Ok(Self::$var),)*
                    _ => Err(()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Fails unless `el` is `<name xmlns=ns>`.
pub(crate) fn check(el: &Element, name: &'static str, ns: &'static str) -> Result<(), ParseError> {
    if el.name() == name && el.ns() == ns {
        return Ok(());
    }
    Err(ParseError::WrongElement {
        expected: name,
        expected_ns: ns,
        name: el.name().to_owned(),
        ns: el.ns(),
    })
}

/// A required attribute's raw value.
pub(crate) fn req<'a>(
    el: &'a Element,
    element: &'static str,
    attr: &'static str,
) -> Result<&'a str, ParseError> {
    el.attr(attr)
        .ok_or(ParseError::MissingAttribute { element, attr })
}

/// An optional attribute, owned.
pub(crate) fn opt(el: &Element, attr: &str) -> Option<String> {
    el.attr(attr).map(str::to_owned)
}

/// A required attribute parsed with `FromStr`.
pub(crate) fn req_parse<T: FromStr>(
    el: &Element,
    element: &'static str,
    attr: &'static str,
    expected: &'static str,
) -> Result<T, ParseError> {
    let value = req(el, element, attr)?;
    parse_value(value, element, attr, expected)
}

/// An optional attribute parsed with `FromStr`.
pub(crate) fn opt_parse<T: FromStr>(
    el: &Element,
    element: &'static str,
    attr: &'static str,
    expected: &'static str,
) -> Result<Option<T>, ParseError> {
    el.attr(attr)
        .map(|value| parse_value(value, element, attr, expected))
        .transpose()
}

/// An optional boolean attribute (`true`/`false`, also `1`/`0` as XML Schema allows).
pub(crate) fn opt_bool(
    el: &Element,
    element: &'static str,
    attr: &'static str,
) -> Result<Option<bool>, ParseError> {
    el.attr(attr)
        .map(|value| {
            bool_value(value).ok_or_else(|| ParseError::BadAttribute {
                element,
                attr,
                value: value.to_owned(),
                expected: "true or false",
            })
        })
        .transpose()
}

/// A boolean text content (`true`/`false`, surrounding whitespace ignored).
pub(crate) fn text_bool(el: &Element, element: &'static str) -> Result<bool, ParseError> {
    let text = el.text();
    bool_value(text.trim()).ok_or(ParseError::BadText {
        element,
        value: text,
        expected: "true or false",
    })
}

/// The attributes without namespace whose names are not in `known`, so that a round trip keeps
/// them. Namespaced attributes (`xml:lang`, ...) are not kept: none of the elements here uses one.
pub(crate) fn extra_attrs(el: &Element, known: &[&str]) -> BTreeMap<String, String> {
    el.attrs()
        .iter()
        .filter(|((ns, name), _)| ns.is_none() && !known.contains(&name.as_str()))
        .map(|((_, name), value)| (name.as_str().to_owned(), value.clone()))
        .collect()
}

/// Writes an element attribute by attribute, child by child.
pub(crate) struct Builder(Element);

impl Builder {
    /// An empty `<name xmlns=ns/>`.
    pub(crate) fn new(name: &str, ns: &str) -> Self {
        Self(Element::bare(name, ns))
    }

    /// Sets an attribute.
    pub(crate) fn attr(mut self, name: &str, value: impl Display) -> Self {
        set_attr(&mut self.0, name, value.to_string());
        self
    }

    /// Sets an attribute when the value is present.
    pub(crate) fn opt(self, name: &str, value: Option<impl Display>) -> Self {
        match value {
            Some(value) => self.attr(name, value),
            None => self,
        }
    }

    /// Sets a boolean attribute (`true`/`false`) when present.
    pub(crate) fn opt_bool(self, name: &str, value: Option<bool>) -> Self {
        self.opt(name, value.map(bool_str))
    }

    /// Writes back attributes kept by [`extra_attrs`].
    pub(crate) fn extra(mut self, attrs: &BTreeMap<String, String>) -> Self {
        for (name, value) in attrs {
            set_attr(&mut self.0, name, value.clone());
        }
        self
    }

    /// Appends a child.
    pub(crate) fn child(mut self, child: Element) -> Self {
        self.0.append_child(child);
        self
    }

    /// Appends children in order.
    pub(crate) fn children(mut self, children: impl IntoIterator<Item = Element>) -> Self {
        for child in children {
            self.0.append_child(child);
        }
        self
    }

    /// Appends a text node unless `text` is empty.
    pub(crate) fn text(mut self, text: &str) -> Self {
        if !text.is_empty() {
            self.0.append_text_node(text);
        }
        self
    }

    /// The finished element.
    pub(crate) fn build(self) -> Element {
        self.0
    }
}

/// `true` or `false`.
pub(crate) fn bool_str(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

fn bool_value(value: &str) -> Option<bool> {
    match value {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn parse_value<T: FromStr>(
    value: &str,
    element: &'static str,
    attr: &'static str,
    expected: &'static str,
) -> Result<T, ParseError> {
    value.parse().map_err(|_| ParseError::BadAttribute {
        element,
        attr,
        value: value.to_owned(),
        expected,
    })
}

fn set_attr(el: &mut Element, name: &str, value: String) {
    // Names are either literals of this crate or names read from a parsed element, so they are
    // valid NCNames; a caller-built `extra_attrs` key that is not one cannot be written and is
    // skipped rather than producing malformed XML.
    if let Ok(name) = NcName::try_from(name) {
        el.set_attr(Namespace::NONE, name, value);
    }
}
