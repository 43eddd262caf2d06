//! Rewriting the brewery accounts of a `sip-communicator.properties` in place, for
//! `--configwritable=true` (accounts added or removed over REST survive a restart).
//!
//! Only the lines of the one account change: `<prefix><id>=<id>` and every
//! `<prefix><id>.<KEY>=...` (continuation lines included). Every other line, comment and blank
//! line is kept byte for byte. A changed account is written where its first line was; a new one
//! is appended at the end. `PASSWORD` is stored base64-encoded, as Jigasi stores it.
//!
//! The text is the file decoded as ISO-8859-1 ([`from_latin1`]), the encoding Java properties use;
//! written values escape everything outside printable ASCII as `\uXXXX`, so [`to_latin1`] of
//! the result is lossless.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::keys::JABBER_PREFIX;

/// Decodes ISO-8859-1 bytes (each byte is one character).
pub fn from_latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Encodes text made by [`from_latin1`] and the functions here back into ISO-8859-1 bytes. A
/// character above U+00FF (which these functions never write) becomes `\uXXXX`.
pub fn to_latin1(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len());
    for c in text.chars() {
        match u8::try_from(u32::from(c)) {
            Ok(b) => bytes.push(b),
            Err(_) => bytes.extend(escape_char(c).bytes()),
        }
    }
    bytes
}

/// Replaces (or appends) brewery account `id` with `properties` (names without the account
/// prefix, `PASSWORD` in plain text as in the REST request).
pub fn set_brewery_account(text: &str, id: &str, properties: &BTreeMap<String, String>) -> String {
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut block = format!(
        "{}={}{newline}",
        escape_key(&format!("{JABBER_PREFIX}{id}")),
        escape_value(id)
    );
    for (name, value) in properties {
        let value = if name == "PASSWORD" {
            base64::engine::general_purpose::STANDARD.encode(value)
        } else {
            value.clone()
        };
        block.push_str(&format!(
            "{}={}{newline}",
            escape_key(&format!("{JABBER_PREFIX}{id}.{name}")),
            escape_value(&value)
        ));
    }
    let (kept, first) = without_account(text, id);
    match first {
        Some(at) => format!("{}{block}{}", &kept[..at], &kept[at..]),
        None if kept.is_empty() || kept.ends_with('\n') => format!("{kept}{block}"),
        None => format!("{kept}{newline}{block}"),
    }
}

/// Removes every line of brewery account `id`; the text is unchanged if there is none.
pub fn remove_brewery_account(text: &str, id: &str) -> String {
    without_account(text, id).0
}

/// The text without the account's logical lines, and where its first line was (in the result).
fn without_account(text: &str, id: &str) -> (String, Option<usize>) {
    let declaration = format!("{JABBER_PREFIX}{id}");
    let properties = format!("{declaration}.");
    let mut kept = String::with_capacity(text.len());
    let mut first = None;
    for logical in logical_lines(text) {
        let ours = key_of(logical).is_some_and(|k| k == declaration || k.starts_with(&properties));
        if ours {
            first.get_or_insert(kept.len());
        } else {
            kept.push_str(logical);
        }
    }
    (kept, first)
}

/// Splits into logical lines (with their terminators): a non-comment line ending in an odd
/// number of backslashes continues on the next physical line.
fn logical_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    let mut first_physical = true;
    while pos < text.len() {
        let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
        let physical = &text[pos..end];
        let content = physical.trim_end_matches(['\n', '\r']);
        let comment = first_physical && is_comment_or_blank(content);
        let trailing = content.len() - content.trim_end_matches('\\').len();
        pos = end;
        if comment || trailing.is_multiple_of(2) || end == text.len() {
            lines.push(&text[start..end]);
            start = end;
            first_physical = true;
        } else {
            first_physical = false;
        }
    }
    lines
}

fn is_comment_or_blank(line: &str) -> bool {
    let trimmed = line.trim_start_matches([' ', '\t', '\x0c']);
    trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!')
}

/// The unescaped key of a logical line; `None` for comments and blank lines.
fn key_of(line: &str) -> Option<String> {
    let first = line.lines().next().unwrap_or("");
    if is_comment_or_blank(first) {
        return None;
    }
    let mut key = String::new();
    let mut chars = line.trim_start_matches([' ', '\t', '\x0c']).chars();
    while let Some(c) = chars.next() {
        match c {
            '=' | ':' | ' ' | '\t' | '\x0c' | '\r' | '\n' => break,
            '\\' => match chars.next() {
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    key.extend(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32));
                }
                Some('t') => key.push('\t'),
                Some('n') => key.push('\n'),
                Some('r') => key.push('\r'),
                Some('f') => key.push('\x0c'),
                Some(other) => key.push(other),
                None => break,
            },
            other => key.push(other),
        }
    }
    Some(key)
}

fn escape_char(c: char) -> String {
    format!("\\u{:04X}", u32::from(c))
}

fn escape_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '=' | ':' | ' ' | '#' | '!' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => push_escaped(&mut out, c),
        }
    }
    out
}

fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' ' if i == 0 => out.push_str("\\ "),
            _ => push_escaped(&mut out, c),
        }
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\x0c' => out.push_str("\\f"),
        ' '..='~' => out.push(c),
        _ => out.push_str(&escape_char(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# Jigasi settings\n\
        org.jitsi.jigasi.ENABLE_SIP=true\n\
        \n\
        net.java.sip.communicator.impl.protocol.jabber.acc-1=acc-1\n\
        net.java.sip.communicator.impl.protocol.jabber.acc-1.USER_ID=jigasi@auth.example.com\n\
        net.java.sip.communicator.impl.protocol.jabber.acc-1.BREWERY=JigasiBrewery@internal.auth.example.com\n\
        ! a comment after the account \\\n\
        net.java.sip.communicator.impl.protocol.jabber.acc-10.USER_ID=other@example.com\n\
        org.jitsi.jigasi.LOCAL_REGION=eu\\\n\
        \x20   -west\n";

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Parses with the same Java-properties reader the loader uses.
    fn parse(text: &str) -> BTreeMap<String, String> {
        java_properties::read(to_latin1(text).as_slice())
            .expect("valid properties")
            .into_iter()
            .collect()
    }

    #[test]
    fn a_new_account_is_appended_with_a_base64_password_and_everything_else_kept() {
        let added = props(&[
            ("USER_ID", "jigasi2@auth.example.com"),
            ("PASSWORD", "s3cret é"),
            ("BREWERY", "JigasiBrewery@internal.auth.example.com"),
        ]);
        let text = set_brewery_account(FILE, "acc-2", &added);
        assert!(text.starts_with(FILE), "{text}");
        let parsed = parse(&text);
        let prefix = "net.java.sip.communicator.impl.protocol.jabber.acc-2";
        assert_eq!(parsed[prefix], "acc-2");
        assert_eq!(
            parsed[&format!("{prefix}.USER_ID")],
            "jigasi2@auth.example.com"
        );
        let stored = &parsed[&format!("{prefix}.PASSWORD")];
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(stored)
            .expect("base64");
        assert_eq!(String::from_utf8(decoded).expect("utf-8"), "s3cret é");
        assert_eq!(parsed["org.jitsi.jigasi.LOCAL_REGION"], "eu-west");
    }

    #[test]
    fn replacing_an_account_writes_it_where_it_was_and_drops_its_old_keys() {
        let text = set_brewery_account(
            FILE,
            "acc-1",
            &props(&[("USER_ID", "new@example.com"), ("BREWERY", "b@x")]),
        );
        let expected = "# Jigasi settings\n\
            org.jitsi.jigasi.ENABLE_SIP=true\n\
            \n\
            net.java.sip.communicator.impl.protocol.jabber.acc-1=acc-1\n\
            net.java.sip.communicator.impl.protocol.jabber.acc-1.BREWERY=b@x\n\
            net.java.sip.communicator.impl.protocol.jabber.acc-1.USER_ID=new@example.com\n\
            ! a comment after the account \\\n\
            net.java.sip.communicator.impl.protocol.jabber.acc-10.USER_ID=other@example.com\n\
            org.jitsi.jigasi.LOCAL_REGION=eu\\\n\
            \x20   -west\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn removing_keeps_comments_and_similar_ids() {
        let text = remove_brewery_account(FILE, "acc-1");
        let expected = "# Jigasi settings\n\
            org.jitsi.jigasi.ENABLE_SIP=true\n\
            \n\
            ! a comment after the account \\\n\
            net.java.sip.communicator.impl.protocol.jabber.acc-10.USER_ID=other@example.com\n\
            org.jitsi.jigasi.LOCAL_REGION=eu\\\n\
            \x20   -west\n";
        assert_eq!(text, expected);
        assert_eq!(remove_brewery_account(&text, "acc-1"), text, "idempotent");
    }

    #[test]
    fn round_trip_add_then_remove_gives_the_original_back() {
        let added = set_brewery_account(
            FILE,
            "acc-2",
            &props(&[("USER_ID", "a@b"), ("RESOURCE", " lead space=x:y\\z")]),
        );
        assert_eq!(
            parse(&added)["net.java.sip.communicator.impl.protocol.jabber.acc-2.RESOURCE"],
            " lead space=x:y\\z"
        );
        assert_eq!(remove_brewery_account(&added, "acc-2"), FILE);
    }

    #[test]
    fn a_file_without_final_newline_and_with_crlf_gets_a_clean_block() {
        let text = set_brewery_account("a=1\r\nb=2", "x", &props(&[("USER_ID", "u@d")]));
        assert_eq!(
            text,
            "a=1\r\nb=2\r\nnet.java.sip.communicator.impl.protocol.jabber.x=x\r\n\
             net.java.sip.communicator.impl.protocol.jabber.x.USER_ID=u@d\r\n"
        );
    }

    #[test]
    fn escaped_keys_are_recognised() {
        let text = "net.java.sip.communicator.impl.protocol.jabber.a\\u0063c=acc\nkeep=1\n";
        assert_eq!(remove_brewery_account(text, "acc"), "keep=1\n");
    }

    #[test]
    fn latin1_round_trips() {
        let bytes: Vec<u8> = (0u8..=255).collect();
        assert_eq!(to_latin1(&from_latin1(&bytes)), bytes);
        assert_eq!(to_latin1("\u{20ac}"), b"\\u20AC");
    }
}
