//! The one error type of this crate. Every variant is the peer's fault: the element came off the
//! wire (or out of a file) and does not have the shape jitsi-protocols.md describes.

/// Why an element could not be read as one of this crate's types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The element has another name or namespace than the type expects.
    #[error("expected <{expected} xmlns='{expected_ns}'>, got <{name} xmlns='{ns}'>")]
    WrongElement {
        /// The local name the type reads.
        expected: &'static str,
        /// The namespace the type reads.
        expected_ns: &'static str,
        /// The local name found.
        name: String,
        /// The namespace found.
        ns: String,
    },
    /// A required attribute is absent.
    #[error("<{element}> lacks the required attribute '{attr}'")]
    MissingAttribute {
        /// The element's local name.
        element: &'static str,
        /// The attribute's name.
        attr: &'static str,
    },
    /// An attribute is present but its value is not acceptable.
    #[error("<{element}> attribute '{attr}' has the value {value:?}, expected {expected}")]
    BadAttribute {
        /// The element's local name.
        element: &'static str,
        /// The attribute's name.
        attr: &'static str,
        /// The value found.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The element's text content is not acceptable.
    #[error("<{element}> has the text {value:?}, expected {expected}")]
    BadText {
        /// The element's local name.
        element: &'static str,
        /// The text found.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A required child element is absent.
    #[error("<{element}> lacks the required child <{child}>")]
    MissingChild {
        /// The parent's local name.
        element: &'static str,
        /// The missing child's local name.
        child: &'static str,
    },
}
