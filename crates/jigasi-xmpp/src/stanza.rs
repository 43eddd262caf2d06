//! Small stanza helpers: IQ requests and replies (RFC 6120 §8.2.3), XEP-0199 ping.

use minidom::Element;

use crate::ns;

/// Builds an IQ request of `kind` (`"get"` or `"set"`) to `to` with one payload child. The
/// session fills in the `id`.
pub fn iq(kind: &str, to: Option<&str>, payload: Element) -> Element {
    let mut iq = Element::builder("iq", ns::JABBER_CLIENT)
        .attr(name("type"), kind)
        .append(payload)
        .build();
    if let Some(to) = to {
        iq.set_attr(rxml::Namespace::NONE, name("to"), to);
    }
    iq
}

/// The empty `result` answer to the IQ request `request` (to its `from`, same `id`).
pub fn iq_result(request: &Element) -> Element {
    reply_skeleton(request, "result")
}

/// An `error` answer to the IQ request `request` with the defined condition `condition`
/// (RFC 6120 §8.3.3, e.g. `service-unavailable`) and error type `error_type` (`cancel`,
/// `modify`, `auth`, `wait`).
pub fn iq_error(request: &Element, error_type: &str, condition: &str) -> Element {
    let mut reply = reply_skeleton(request, "error");
    reply.append_child(
        Element::builder("error", ns::JABBER_CLIENT)
            .attr(name("type"), error_type)
            .append(Element::bare(condition, ns::STANZAS))
            .build(),
    );
    reply
}

/// A XEP-0199 ping request to `to` (the server domain when `None`).
pub fn ping(to: Option<&str>) -> Element {
    iq("get", to, Element::bare("ping", ns::PING))
}

/// Whether `stanza` is an IQ request (`get` or `set`).
pub fn is_iq_request(stanza: &Element) -> bool {
    stanza.is("iq", ns::JABBER_CLIENT) && matches!(stanza.attr("type"), Some("get" | "set"))
}

fn reply_skeleton(request: &Element, kind: &str) -> Element {
    let mut reply = Element::builder("iq", ns::JABBER_CLIENT)
        .attr(name("type"), kind)
        .build();
    if let Some(id) = request.attr("id") {
        reply.set_attr(rxml::Namespace::NONE, name("id"), id);
    }
    if let Some(from) = request.attr("from") {
        reply.set_attr(rxml::Namespace::NONE, name("to"), from);
    }
    // A component must stamp `from` itself; answering from the address that was asked is
    // right for clients too (the server overwrites it with our full JID anyway).
    if let Some(to) = request.attr("to") {
        reply.set_attr(rxml::Namespace::NONE, name("from"), to);
    }
    reply
}

/// An attribute name known to be a valid NCName.
pub(crate) fn name(name: &'static str) -> rxml::NcName {
    // Every caller passes a literal ASCII name without a colon, which is always a valid NCName.
    rxml::NcName::try_from(name).expect("literal attribute names are valid NCNames")
}

/// Sets attribute `key` (a literal name, no namespace) on `element`.
pub fn set_attr(element: &mut Element, key: &'static str, value: impl Into<String>) {
    element.set_attr(rxml::Namespace::NONE, name(key), value.into());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn error_reply_swaps_addresses_and_keeps_id() {
        let request: Element = "<iq xmlns='jabber:client' type='set' id='q1' \
            from='room@muc/focus' to='me@d/r'><dial xmlns='urn:xmpp:rayo:1'/></iq>"
            .parse()
            .unwrap();
        assert!(is_iq_request(&request));
        let reply = iq_error(&request, "cancel", "service-unavailable");
        assert_eq!(reply.attr("type"), Some("error"));
        assert_eq!(reply.attr("id"), Some("q1"));
        assert_eq!(reply.attr("to"), Some("room@muc/focus"));
        assert_eq!(reply.attr("from"), Some("me@d/r"));
        let error = crate::StanzaError::from_stanza(&reply).unwrap();
        assert_eq!(error.condition, "service-unavailable");
        assert_eq!(error.error_type, "cancel");
        assert!(!is_iq_request(&reply));
        assert_eq!(iq_result(&request).attr("type"), Some("result"));
    }

    #[test]
    fn ping_request_shape() {
        let ping = ping(Some("meet.example.com"));
        assert!(is_iq_request(&ping));
        assert_eq!(ping.attr("to"), Some("meet.example.com"));
        assert!(ping.has_child("ping", ns::PING));
    }
}
