//! The XML stream: an incremental, bounded reader of `<stream:stream>` children and a writer for
//! stanzas (RFC 6120 §4).
//!
//! The reader is fed arbitrary byte chunks and yields the stream header, each complete top-level
//! element as a [`minidom::Element`], and the stream end. It never buffers more than one
//! element: an element larger than the configured limit, or nested deeper than [`MAX_DEPTH`],
//! is an error, as is anything that is not well-formed XML.

use minidom::{Element, Node};
use rxml::{Event, Parse, Parser, WithOptions};

use crate::ns;

/// Deepest element nesting accepted inside a stanza; real stanzas stay far below (a Jingle
/// `source-add` is about 6 levels deep).
pub(crate) const MAX_DEPTH: usize = 64;

/// What the reader found on the stream.
#[derive(Debug)]
pub(crate) enum StreamItem {
    /// The peer's `<stream:stream>` header.
    Header(StreamHeader),
    /// A complete top-level element (stanza, features, SASL or TLS element, stream error).
    Element(Element),
    /// The peer's `</stream:stream>`.
    End,
}

/// Attributes of the peer's stream header (RFC 6120 §4.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamHeader {
    /// The stream id (`id`), which the component handshake hashes.
    pub(crate) id: Option<String>,
    /// The stream version (`version`); absent on XEP-0114 component streams.
    pub(crate) version: Option<String>,
}

/// Why the reader gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// Not well-formed or not namespace-well-formed XML.
    Malformed(String),
    /// The root element is not `<stream:stream>`.
    NotAStream,
    /// One element exceeded the size limit.
    TooLarge { limit: usize },
    /// One element nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Non-whitespace text between top-level elements.
    TextAtStreamLevel,
}

/// Incremental reader of one XML stream (one per stream restart).
pub(crate) struct StreamReader {
    parser: Parser,
    /// Open elements of the stanza being read; empty between stanzas.
    stack: Vec<Element>,
    /// Whether the stream header was seen.
    opened: bool,
    /// Whether `</stream:stream>` was seen; later bytes are an error.
    ended: bool,
    /// Bytes that contributed to the current stanza so far.
    stanza_bytes: usize,
    max_stanza_bytes: usize,
    /// The stream's default namespace, mapped to [`ns::JABBER_CLIENT`] for the application.
    stream_ns: &'static str,
}

/// The longest name or attribute value the reader accepts (text of any length is fine).
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;

impl StreamReader {
    /// A reader for a stream whose default namespace is `stream_ns`.
    pub(crate) fn new(stream_ns: &'static str, max_stanza_bytes: usize) -> Self {
        let options = rxml::parser::Options {
            // rxml reserves this much for its token buffer up front, in every parser: with the
            // stanza limit (256 KiB) that was a quarter megabyte per XMPP connection, i.e. per
            // call. Text longer than this still parses (rxml hands it over in pieces, which
            // `append_text` joins); only a name or attribute value this long is refused.
            max_token_length: max_stanza_bytes.clamp(64, MAX_TOKEN_BYTES),
            ..rxml::parser::Options::default()
        };
        Self {
            parser: Parser::with_options(options),
            stack: Vec::new(),
            opened: false,
            ended: false,
            stanza_bytes: 0,
            max_stanza_bytes,
            stream_ns,
        }
    }

    /// Consumes bytes from `buf` until one item is complete (returned) or `buf` is exhausted
    /// (`Ok(None)`). Call again with the rest of `buf` after an item.
    pub(crate) fn next(&mut self, buf: &mut &[u8]) -> Result<Option<StreamItem>, ReadError> {
        // Keep calling the parser even when `buf` is empty: one byte can complete several
        // events (`<a/>` gives a start and an end), and they come out one per call.
        loop {
            if self.ended {
                if buf.is_empty() {
                    return Ok(None);
                }
                return Err(ReadError::Malformed(
                    "data after the end of the stream".into(),
                ));
            }
            let event = match self.parser.parse(buf, false) {
                Ok(Some(event)) => event,
                // `at_eof` is false, so `Ok(None)` cannot happen; treat it like a pause.
                Ok(None) | Err(rxml::error::EndOrError::NeedMoreData) => return Ok(None),
                Err(rxml::error::EndOrError::Error(e)) => {
                    return Err(ReadError::Malformed(e.to_string()));
                }
            };
            if let Some(item) = self.handle_event(event)? {
                return Ok(Some(item));
            }
        }
    }

    fn handle_event(&mut self, event: Event) -> Result<Option<StreamItem>, ReadError> {
        match event {
            Event::XmlDeclaration(..) => Ok(None),
            Event::StartElement(metrics, (namespace, name), attrs) => {
                if !self.opened {
                    if name.as_str() != "stream" || namespace.as_str() != ns::STREAM {
                        return Err(ReadError::NotAStream);
                    }
                    self.opened = true;
                    let get = |key: &str| attrs.get(rxml::Namespace::none(), key).cloned();
                    return Ok(Some(StreamItem::Header(StreamHeader {
                        id: get("id"),
                        version: get("version"),
                    })));
                }
                if self.stack.len() >= MAX_DEPTH {
                    return Err(ReadError::TooDeep);
                }
                self.count(metrics.len())?;
                let namespace = if namespace.as_str() == self.stream_ns {
                    ns::JABBER_CLIENT.to_owned()
                } else {
                    namespace.as_str().to_owned()
                };
                let mut element = Element::bare(name.as_str(), namespace);
                for ((attr_ns, attr_name), value) in attrs {
                    element.set_attr(attr_ns, attr_name, value);
                }
                self.stack.push(element);
                Ok(None)
            }
            Event::EndElement(metrics) => {
                let Some(element) = self.stack.pop() else {
                    self.ended = true;
                    return Ok(Some(StreamItem::End));
                };
                self.count(metrics.len())?;
                match self.stack.last_mut() {
                    Some(parent) => {
                        parent.append_child(element);
                        Ok(None)
                    }
                    None => {
                        self.stanza_bytes = 0;
                        Ok(Some(StreamItem::Element(element)))
                    }
                }
            }
            Event::Text(metrics, text) => {
                let Some(top) = self.stack.last_mut() else {
                    // Whitespace between stanzas is a keep-alive (RFC 6120 §4.6.1); it is not
                    // stored, so it cannot grow memory.
                    if text.chars().all(|c| c.is_ascii_whitespace()) {
                        return Ok(None);
                    }
                    return Err(ReadError::TextAtStreamLevel);
                };
                top.append_text(text);
                self.count(metrics.len()).map(|()| None)
            }
        }
    }

    fn count(&mut self, bytes: usize) -> Result<(), ReadError> {
        self.stanza_bytes = self.stanza_bytes.saturating_add(bytes);
        if self.stanza_bytes > self.max_stanza_bytes {
            return Err(ReadError::TooLarge {
                limit: self.max_stanza_bytes,
            });
        }
        Ok(())
    }
}

/// Why an element could not be serialised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlWriteError {
    /// An element or attribute name is not a valid XML name without a colon.
    #[error("invalid XML name {0:?}")]
    InvalidName(String),
    /// Text or an attribute value contains a character XML 1.0 cannot carry (e.g. U+0000).
    #[error("character U+{0:04X} cannot appear in XML 1.0")]
    InvalidChar(u32),
}

/// Serialises `element` as a top-level child of a stream whose default namespace is
/// `stream_ns`. Elements in [`ns::JABBER_CLIENT`] are written in `stream_ns`.
pub(crate) fn write_element(
    element: &Element,
    stream_ns: &str,
    out: &mut Vec<u8>,
) -> Result<(), XmlWriteError> {
    write_inner(element, stream_ns, stream_ns, out)
}

/// Serialises an element as a standalone document fragment with an explicit default namespace
/// (used by tests and logging).
pub fn to_xml_string(element: &Element) -> Result<String, XmlWriteError> {
    let mut out = Vec::new();
    write_inner(element, "", ns::JABBER_CLIENT, &mut out)?;
    // Only `&str` pieces are ever pushed, so the buffer is valid UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn write_inner(
    element: &Element,
    parent_ns: &str,
    stream_ns: &str,
    out: &mut Vec<u8>,
) -> Result<(), XmlWriteError> {
    let name = element.name();
    check_name(name)?;
    let element_ns = element.ns();
    let wire_ns = if element_ns == ns::JABBER_CLIENT {
        stream_ns
    } else {
        element_ns.as_str()
    };
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    if wire_ns != parent_ns {
        out.extend_from_slice(b" xmlns='");
        escape_into(wire_ns, out)?;
        out.push(b'\'');
    }
    let mut prefix_count = 0usize;
    for ((attr_ns, attr_name), value) in element.attrs() {
        out.push(b' ');
        if attr_ns.is_none() {
            out.extend_from_slice(attr_name.as_bytes());
        } else if attr_ns.as_str() == ns::XML {
            out.extend_from_slice(b"xml:");
            out.extend_from_slice(attr_name.as_bytes());
        } else {
            // A namespaced attribute gets a fresh prefix declared on this element.
            let prefix = format!("a{prefix_count}");
            prefix_count += 1;
            out.extend_from_slice(format!("xmlns:{prefix}='").as_bytes());
            escape_into(attr_ns.as_str(), out)?;
            out.extend_from_slice(format!("' {prefix}:").as_bytes());
            out.extend_from_slice(attr_name.as_bytes());
        }
        out.extend_from_slice(b"='");
        escape_into(value, out)?;
        out.push(b'\'');
    }
    if element.nodes().next().is_none() {
        out.extend_from_slice(b"/>");
        return Ok(());
    }
    out.push(b'>');
    for node in element.nodes() {
        match node {
            Node::Element(child) => write_inner(child, wire_ns, stream_ns, out)?,
            Node::Text(text) => escape_into(text, out)?,
        }
    }
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
    Ok(())
}

fn check_name(name: &str) -> Result<(), XmlWriteError> {
    <&rxml::NcNameStr>::try_from(name)
        .map(|_| ())
        .map_err(|_| XmlWriteError::InvalidName(name.to_owned()))
}

/// Escapes text for both content and single- or double-quoted attribute values.
fn escape_into(text: &str, out: &mut Vec<u8>) -> Result<(), XmlWriteError> {
    for c in text.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '\'' => out.extend_from_slice(b"&apos;"),
            '"' => out.extend_from_slice(b"&quot;"),
            // Keep line breaks and tabs in attribute values intact through normalisation.
            '\r' => out.extend_from_slice(b"&#13;"),
            '\t' | '\n' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'.. => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            other => return Err(XmlWriteError::InvalidChar(u32::from(other))),
        }
    }
    Ok(())
}

/// Escapes an attribute value for the hand-written stream header.
pub(crate) fn escape_attr(value: &str) -> String {
    let mut out = Vec::new();
    // The header values come from config (domain names); a character XML cannot carry is
    // replaced rather than failing the whole stream open.
    if escape_into(value, &mut out).is_err() {
        let cleaned: String = value
            .chars()
            .filter(|c| !c.is_control() || matches!(c, '\t' | '\n'))
            .collect();
        out.clear();
        let _ = escape_into(&cleaned, &mut out);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read_all(reader: &mut StreamReader, data: &[u8]) -> Result<Vec<StreamItem>, ReadError> {
        let mut buf = data;
        let mut items = Vec::new();
        while let Some(item) = reader.next(&mut buf)? {
            items.push(item);
        }
        assert!(buf.is_empty());
        Ok(items)
    }

    const STREAM: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='abc' version='1.0' from='d'>\
        <message to='a@b' xml:lang='en'><body>hi &amp; bye</body></message> \n\
        <iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>";

    #[test]
    fn reads_header_stanzas_and_end_in_any_chunking() {
        for chunk in [1, 2, 3, 7, 64, STREAM.len()] {
            let mut reader = StreamReader::new(ns::JABBER_CLIENT, 4096);
            let mut items = Vec::new();
            for piece in STREAM.chunks(chunk) {
                items.extend(read_all(&mut reader, piece).unwrap());
            }
            assert_eq!(items.len(), 4, "chunk {chunk}");
            let StreamItem::Header(header) = &items[0] else {
                panic!("expected header")
            };
            assert_eq!(header.id.as_deref(), Some("abc"));
            assert_eq!(header.version.as_deref(), Some("1.0"));
            let StreamItem::Element(message) = &items[1] else {
                panic!("expected message")
            };
            assert!(message.is("message", ns::JABBER_CLIENT));
            assert_eq!(message.attr_ns(ns::XML, "lang"), Some("en"));
            assert_eq!(
                message.get_child("body", ns::JABBER_CLIENT).unwrap().text(),
                "hi & bye"
            );
            let StreamItem::Element(iq) = &items[2] else {
                panic!("expected iq")
            };
            assert!(iq.has_child("ping", ns::PING));
            assert!(matches!(items[3], StreamItem::End));
        }
    }

    #[test]
    fn component_namespace_is_mapped_to_jabber_client() {
        let mut reader = StreamReader::new(ns::COMPONENT_ACCEPT, 4096);
        let items = read_all(
            &mut reader,
            b"<stream:stream xmlns='jabber:component:accept' \
              xmlns:stream='http://etherx.jabber.org/streams' id='x'><handshake/>",
        )
        .unwrap();
        let StreamItem::Element(handshake) = &items[1] else {
            panic!("expected element")
        };
        assert!(handshake.is("handshake", ns::JABBER_CLIENT));
    }

    #[test]
    fn rejects_non_stream_root_garbage_and_oversize() {
        let mut reader = StreamReader::new(ns::JABBER_CLIENT, 4096);
        assert_eq!(
            read_all(&mut reader, b"<html xmlns='x'>").unwrap_err(),
            ReadError::NotAStream
        );
        let mut reader = StreamReader::new(ns::JABBER_CLIENT, 4096);
        assert!(matches!(
            read_all(&mut reader, b"\x00\x01garbage").unwrap_err(),
            ReadError::Malformed(_)
        ));
        let mut reader = StreamReader::new(ns::JABBER_CLIENT, 100);
        let mut data = b"<stream:stream xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams'><message><body>"
            .to_vec();
        data.extend(std::iter::repeat_n(b'x', 500));
        assert_eq!(
            read_all(&mut reader, &data).unwrap_err(),
            ReadError::TooLarge { limit: 100 }
        );
    }

    #[test]
    fn long_text_parses_in_pieces_and_long_attribute_values_are_refused() {
        let head: &[u8] = b"<stream:stream xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams'>";
        // Text well beyond the lexer's token buffer arrives whole, in any chunking.
        let text = "0123456789abcdef".repeat(3 * MAX_TOKEN_BYTES / 16 + 1);
        let data = [
            head,
            format!("<message><body>{text}</body></message>").as_bytes(),
        ]
        .concat();
        for chunk in [1000, data.len()] {
            let mut reader = StreamReader::new(ns::JABBER_CLIENT, 1 << 20);
            let mut items = Vec::new();
            for piece in data.chunks(chunk) {
                let mut buf = piece;
                while let Some(item) = reader.next(&mut buf).unwrap() {
                    items.push(item);
                }
            }
            let Some(StreamItem::Element(message)) = items.last() else {
                panic!("no message: {items:?}");
            };
            let body = message.get_child("body", ns::JABBER_CLIENT).unwrap();
            assert_eq!(body.text(), text);
        }
        // An attribute value that long is an error, not a crash or an unbounded buffer.
        let value = "v".repeat(MAX_TOKEN_BYTES + 1);
        let data = [head, format!("<message id='{value}'/>").as_bytes()].concat();
        let mut reader = StreamReader::new(ns::JABBER_CLIENT, 1 << 20);
        assert!(matches!(
            read_all(&mut reader, &data).unwrap_err(),
            ReadError::Malformed(_)
        ));
    }

    #[test]
    fn rejects_deep_nesting() {
        let mut reader = StreamReader::new(ns::JABBER_CLIENT, 1 << 20);
        let mut data = b"<stream:stream xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams'>"
            .to_vec();
        for _ in 0..=MAX_DEPTH {
            data.extend_from_slice(b"<a>");
        }
        assert_eq!(
            read_all(&mut reader, &data).unwrap_err(),
            ReadError::TooDeep
        );
    }

    #[test]
    fn writer_round_trips_through_the_reader() {
        let original: Element = "<iq xmlns='jabber:client' type='set' id='a&amp;b' to='x@y/z'>\
            <query xmlns='urn:test' xml:lang='de'><item name='&lt;&quot;&apos;'>t&lt;x</item>\
            <presence xmlns='jabber:client'/></query></iq>"
            .parse()
            .unwrap();
        for stream_ns in [ns::JABBER_CLIENT, ns::COMPONENT_ACCEPT] {
            let mut wire = Vec::new();
            write_element(&original, stream_ns, &mut wire).unwrap();
            let text = String::from_utf8(wire.clone()).unwrap();
            assert!(text.starts_with("<iq id="), "{text}");
            let mut reader = StreamReader::new(stream_ns, 4096);
            let mut doc = format!(
                "<stream:stream xmlns='{stream_ns}' xmlns:stream='http://etherx.jabber.org/streams'>"
            )
            .into_bytes();
            doc.extend(wire);
            let items = read_all(&mut reader, &doc).unwrap();
            let StreamItem::Element(parsed) = &items[1] else {
                panic!("expected element")
            };
            assert_eq!(parsed, &original, "{text}");
        }
    }

    #[test]
    fn writer_rejects_unwritable_content() {
        let bad_text = Element::builder("message", ns::JABBER_CLIENT)
            .append("nul\u{0}")
            .build();
        assert_eq!(
            to_xml_string(&bad_text).unwrap_err(),
            XmlWriteError::InvalidChar(0)
        );
        let bad_name = Element::bare("no good", ns::JABBER_CLIENT);
        assert!(matches!(
            to_xml_string(&bad_name).unwrap_err(),
            XmlWriteError::InvalidName(_)
        ));
    }
}
