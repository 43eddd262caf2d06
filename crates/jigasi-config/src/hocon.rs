//! A small reader for the HOCON subset Jigasi's `jigasi.conf` uses.
//!
//! Supported: nested `{}` objects, dotted keys, `=` / `:` / `key { ... }`, quoted and unquoted
//! strings, numbers and booleans (kept as text), arrays (kept as raw text), `,` and newline
//! separators, `#` and `//` comments. Not supported, reported as warnings and skipped: `include`,
//! `${substitutions}`, `+=`. The result is a flat list of dotted paths in file order; a later
//! entry for the same path wins, as in HOCON.

/// One `path = value` found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HoconEntry {
    /// Dotted path from the root, e.g. `org.jitsi.jigasi.rest.port`.
    pub(crate) key: String,
    /// The value as text (quoted strings unescaped, arrays raw).
    pub(crate) value: String,
    /// 1-based line of the value.
    pub(crate) line: usize,
}

/// A parsed file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct HoconDoc {
    /// Entries in file order.
    pub(crate) entries: Vec<HoconEntry>,
    /// Unsupported constructs that were skipped, with their line.
    pub(crate) warnings: Vec<(usize, String)>,
}

impl HoconDoc {
    /// The last value given for `key`, with its line.
    pub(crate) fn get(&self, key: &str) -> Option<&HoconEntry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }
}

/// Parses `text`; a syntax error is `(line, message)`.
pub(crate) fn parse(text: &str) -> Result<HoconDoc, (usize, String)> {
    let mut parser = Parser {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
        doc: HoconDoc::default(),
    };
    parser.skip_blank();
    if parser.peek() == Some('{') {
        parser.bump();
        parser.object_body("", true)?;
        parser.skip_blank();
        if parser.peek().is_some() {
            return Err((parser.line, "unexpected text after the root object".into()));
        }
    } else {
        parser.object_body("", false)?;
    }
    Ok(parser.doc)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    doc: HoconDoc,
}

impl Parser {
    fn object_body(&mut self, prefix: &str, braced: bool) -> Result<(), (usize, String)> {
        loop {
            self.skip_blank();
            while self.peek() == Some(',') {
                self.bump();
                self.skip_blank();
            }
            match self.peek() {
                None if braced => return Err((self.line, "unclosed '{'".into())),
                None => return Ok(()),
                Some('}') if braced => {
                    self.bump();
                    return Ok(());
                }
                Some('}') => return Err((self.line, "unexpected '}'".into())),
                Some(_) => {}
            }
            if self.starts_with_word("include") {
                self.doc
                    .warnings
                    .push((self.line, "include is not supported; skipped".into()));
                self.skip_to_eol();
                continue;
            }
            let key = self.key()?;
            let path = if prefix.is_empty() {
                key
            } else {
                format!("{prefix}.{key}")
            };
            self.skip_inline();
            match self.peek() {
                Some('{') => {
                    self.bump();
                    self.object_body(&path, true)?;
                }
                Some('=') | Some(':') => {
                    self.bump();
                    self.skip_inline();
                    self.value(&path)?;
                }
                Some('+') if self.peek_at(1) == Some('=') => {
                    self.doc
                        .warnings
                        .push((self.line, format!("{path} += is not supported; skipped")));
                    self.pos += 2;
                    self.skip_inline();
                    self.value("")?;
                    self.doc.entries.retain(|e| !e.key.is_empty());
                }
                _ => {
                    return Err((
                        self.line,
                        format!("expected '=', ':' or '{{' after key {path}"),
                    ));
                }
            }
        }
    }

    fn value(&mut self, path: &str) -> Result<(), (usize, String)> {
        let line = self.line;
        match self.peek() {
            Some('{') => {
                self.bump();
                self.object_body(path, true)
            }
            Some('[') => {
                let raw = self.array()?;
                self.push(path, raw, line);
                Ok(())
            }
            Some('"') => {
                let text = self.quoted()?;
                self.push(path, text, line);
                Ok(())
            }
            _ => {
                let mut text = String::new();
                while let Some(c) = self.peek() {
                    if c == '$' && self.peek_at(1) == Some('{') {
                        // A substitution: keep `${...}` whole so its `}` does not end an object.
                        while let Some(c) = self.next_char() {
                            text.push(c);
                            if c == '}' || c == '\n' {
                                break;
                            }
                        }
                        continue;
                    }
                    if c == '\n' || c == ',' || c == '}' || c == '#' || self.at_slash_comment() {
                        break;
                    }
                    text.push(c);
                    self.bump();
                }
                let text = text.trim();
                if text.contains("${") {
                    self.doc.warnings.push((
                        line,
                        format!("{path}: substitutions are not supported; skipped"),
                    ));
                    return Ok(());
                }
                if text.is_empty() {
                    return Err((line, format!("{path}: missing value")));
                }
                self.push(path, text.to_owned(), line);
                Ok(())
            }
        }
    }

    fn push(&mut self, key: &str, value: String, line: usize) {
        self.doc.entries.push(HoconEntry {
            key: key.to_owned(),
            value,
            line,
        });
    }

    fn key(&mut self) -> Result<String, (usize, String)> {
        let mut key = String::new();
        loop {
            if self.peek() == Some('"') {
                key.push_str(&self.quoted()?);
            } else {
                let start = key.len();
                while let Some(c) = self.peek() {
                    if c.is_whitespace() || "=:{}[],.\"#+".contains(c) || self.at_slash_comment() {
                        break;
                    }
                    key.push(c);
                    self.bump();
                }
                if key.len() == start {
                    return Err((self.line, "expected a key".into()));
                }
            }
            if self.peek() == Some('.') {
                self.bump();
                key.push('.');
            } else {
                return Ok(key);
            }
        }
    }

    fn quoted(&mut self) -> Result<String, (usize, String)> {
        let line = self.line;
        self.bump();
        let mut out = String::new();
        loop {
            match self.peek() {
                None | Some('\n') => return Err((line, "unterminated string".into())),
                Some('"') => {
                    self.bump();
                    return Ok(out);
                }
                Some('\\') => {
                    self.bump();
                    let escaped = self.peek().ok_or((line, "unterminated string".into()))?;
                    self.bump();
                    match escaped {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'u' => {
                            let hex: String = (0..4).filter_map(|_| self.next_char()).collect();
                            let c = u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or((line, format!("bad escape \\u{hex}")))?;
                            out.push(c);
                        }
                        other => out.push(other),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.bump();
                }
            }
        }
    }

    fn array(&mut self) -> Result<String, (usize, String)> {
        let line = self.line;
        let mut depth = 0usize;
        let mut raw = String::new();
        while let Some(c) = self.peek() {
            if c == '"' {
                let s = self.quoted()?;
                raw.push('"');
                raw.push_str(&s);
                raw.push('"');
                continue;
            }
            raw.push(c);
            self.bump();
            match c {
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(raw);
                    }
                }
                _ => {}
            }
        }
        Err((line, "unclosed '['".into()))
    }

    fn skip_blank(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' || self.at_slash_comment() {
                self.skip_to_eol();
            } else {
                return;
            }
        }
    }

    fn skip_inline(&mut self) {
        while matches!(self.peek(), Some(c) if c != '\n' && c.is_whitespace()) {
            self.bump();
        }
    }

    fn skip_to_eol(&mut self) {
        while matches!(self.peek(), Some(c) if c != '\n') {
            self.bump();
        }
    }

    fn starts_with_word(&self, word: &str) -> bool {
        let n = word.chars().count();
        self.chars[self.pos..]
            .iter()
            .take(n)
            .copied()
            .eq(word.chars())
            && self
                .peek_at(n)
                .is_some_and(|c| c.is_whitespace() || c == '"')
    }

    fn at_slash_comment(&self) -> bool {
        self.peek() == Some('/') && self.peek_at(1) == Some('/')
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn next_char(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.bump();
        Some(c)
    }

    fn bump(&mut self) {
        if self.peek() == Some('\n') {
            self.line += 1;
        }
        self.pos += 1;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn value(doc: &HoconDoc, key: &str) -> Option<String> {
        doc.get(key).map(|e| e.value.clone())
    }

    #[test]
    fn nested_objects_dotted_keys_and_comments() {
        let doc = parse(
            "# comment\n\
             org.jitsi.jigasi {\n\
               rest {\n\
                 host = \"0.0.0.0\" // trailing\n\
                 port: 9788\n\
               }\n\
               transcription.port = 0, debug = true\n\
             }\n\
             org.jitsi.jigasi.rest.tls-port = 8743\n\
             a.\"quoted.key\" = [1, 2]\n",
        )
        .unwrap();
        assert_eq!(
            value(&doc, "org.jitsi.jigasi.rest.host").as_deref(),
            Some("0.0.0.0")
        );
        assert_eq!(
            value(&doc, "org.jitsi.jigasi.rest.port").as_deref(),
            Some("9788")
        );
        assert_eq!(doc.get("org.jitsi.jigasi.rest.port").unwrap().line, 5);
        assert_eq!(
            value(&doc, "org.jitsi.jigasi.transcription.port").as_deref(),
            Some("0")
        );
        assert_eq!(
            value(&doc, "org.jitsi.jigasi.debug").as_deref(),
            Some("true")
        );
        assert_eq!(value(&doc, "a.quoted.key").as_deref(), Some("[1, 2]"));
        assert_eq!(doc.entries.len(), 6);
        assert!(doc.warnings.is_empty());
    }

    #[test]
    fn root_braces_and_later_values_win() {
        let doc = parse("{ a = 1\n a = 2 }").unwrap();
        assert_eq!(value(&doc, "a").as_deref(), Some("2"));
    }

    #[test]
    fn unsupported_constructs_are_warnings() {
        let doc = parse("include \"other.conf\"\nx = ${HOME}\ny += 3\nz = ok\n").unwrap();
        assert_eq!(doc.warnings.len(), 3, "{:?}", doc.warnings);
        assert_eq!(doc.warnings[0].0, 1);
        assert!(doc.warnings[0].1.contains("include"));
        assert!(doc.warnings[1].1.contains("substitutions"));
        assert!(doc.warnings[2].1.contains("+="));
        assert_eq!(doc.entries.len(), 1);
        assert_eq!(value(&doc, "z").as_deref(), Some("ok"));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(parse("a {\n b = 1\n").unwrap_err().0, 3);
        let (line, msg) = parse("a = 1\nb c\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(msg.contains("after key b"), "{msg}");
        assert!(parse("a = \"open\n").is_err());
        assert!(parse("}").is_err());
    }
}
