//! Byte-level pieces of the RFC 3261 §25 grammar that the checks need.
//!
//! Everything works on `&[u8]` because SIP header values may carry UTF-8 and, inside quoted
//! strings, even raw control bytes (RFC 4475 §3.1.1.2). Every function returns `Err(())` or
//! `false` on malformed input and never indexes out of bounds.

/// RFC 3261 §25.1 `token` characters.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// A non-empty RFC 3261 `token`.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token_char(b))
}

/// RFC 3261 `word` characters (Call-ID).
fn is_word_char(b: u8) -> bool {
    is_token_char(b) || b"()<>:\\\"/[]?{}".contains(&b)
}

/// SP or HTAB.
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Index of the first non-whitespace byte at or after `i`.
pub(crate) fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while s.get(i).is_some_and(|&b| is_ws(b)) {
        i += 1;
    }
    i
}

/// `s` without leading and trailing SP/HTAB.
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = skip_ws(s, 0);
    let mut end = s.len();
    while end > start && s.get(end - 1).is_some_and(|&b| is_ws(b)) {
        end -= 1;
    }
    s.get(start..end).unwrap_or_default()
}

/// Given `s[i] == '"'`, the index just past the closing quote (RFC 3261 `quoted-string`, with
/// `quoted-pair` escapes).
pub(crate) fn quoted_end(s: &[u8], i: usize) -> Result<usize, ()> {
    if s.get(i) != Some(&b'"') {
        return Err(());
    }
    let mut j = i + 1;
    loop {
        match s.get(j) {
            None => return Err(()),
            Some(b'"') => return Ok(j + 1),
            Some(b'\\') => {
                // quoted-pair: any byte but CR and LF may follow.
                match s.get(j + 1) {
                    Some(b'\r' | b'\n') | None => return Err(()),
                    Some(_) => j += 2,
                }
            }
            Some(b'\r' | b'\n') => return Err(()),
            Some(_) => j += 1,
        }
    }
}

/// Splits a header value at commas that are outside quoted strings and angle brackets
/// (RFC 3261 §7.3.1). Returns the raw, untrimmed pieces.
pub(crate) fn split_commas(s: &[u8]) -> Result<Vec<&[u8]>, ()> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut in_angle = false;
    while let Some(&b) = s.get(i) {
        match b {
            b'"' => {
                i = quoted_end(s, i)?;
                continue;
            }
            b'<' => in_angle = true,
            b'>' => in_angle = false,
            b',' if !in_angle => {
                parts.push(s.get(start..i).ok_or(())?);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(s.get(start..).ok_or(())?);
    Ok(parts)
}

/// RFC 3261 `generic-param` list: `*( SEMI generic-param )`, LWS allowed around `;` and `=`.
/// `s` starts at the first `;` (or is empty/whitespace).
pub(crate) fn check_params(s: &[u8]) -> Result<(), ()> {
    params(s).map(|_| ())
}

/// One `generic-param`: name and optional value.
pub(crate) type Param<'a> = (&'a [u8], Option<&'a [u8]>);

/// Parses a `*( SEMI generic-param )` list into `(name, value)` pairs.
pub(crate) fn params(s: &[u8]) -> Result<Vec<Param<'_>>, ()> {
    let mut out = Vec::new();
    let mut i = skip_ws(s, 0);
    while i < s.len() {
        if s.get(i) != Some(&b';') {
            return Err(());
        }
        i = skip_ws(s, i + 1);
        let name_start = i;
        while s.get(i).is_some_and(|&b| is_token_char(b)) {
            i += 1;
        }
        let name = s.get(name_start..i).ok_or(())?;
        if name.is_empty() {
            return Err(());
        }
        i = skip_ws(s, i);
        let mut value = None;
        if s.get(i) == Some(&b'=') {
            i = skip_ws(s, i + 1);
            let value_start = i;
            if s.get(i) == Some(&b'"') {
                i = quoted_end(s, i)?;
            } else if s.get(i) == Some(&b'[') {
                while s.get(i).is_some_and(|&b| b != b']') {
                    i += 1;
                }
                if s.get(i) != Some(&b']') {
                    return Err(());
                }
                i += 1;
            } else {
                while s.get(i).is_some_and(|&b| is_token_char(b) || b == b':') {
                    i += 1;
                }
            }
            let v = s.get(value_start..i).ok_or(())?;
            if v.is_empty() {
                return Err(());
            }
            value = Some(v);
            i = skip_ws(s, i);
        }
        out.push((name, value));
    }
    Ok(out)
}

/// An address parsed from a From, To or Contact value (RFC 3261 §20.10, §20.20, §20.39).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameAddr<'a> {
    /// The URI, without angle brackets.
    pub(crate) uri: &'a [u8],
    /// Header parameters after the address (`;tag=...`), starting at the first `;`.
    pub(crate) params: &'a [u8],
}

/// Parses `name-addr / addr-spec` followed by header parameters.
pub(crate) fn name_addr(s: &[u8]) -> Result<NameAddr<'_>, ()> {
    let mut i = skip_ws(s, 0);
    if s.get(i) == Some(&b'"') {
        i = skip_ws(s, quoted_end(s, i)?);
        if s.get(i) != Some(&b'<') {
            return Err(());
        }
        return bracketed(s, i);
    }
    if let Some(lt) = s.iter().position(|&b| b == b'<') {
        // Unquoted display name: *(token LWS). RFC 4475 §3.1.2.15 (baddn) fails here.
        let display = s.get(i..lt).ok_or(())?;
        if !display.iter().all(|&b| is_token_char(b) || is_ws(b)) {
            return Err(());
        }
        return bracketed(s, lt);
    }
    // addr-spec: the URI must not contain ',', '?' or ';' (RFC 3261 §20.10), so it ends at the
    // first ';' or whitespace. RFC 4475 §3.1.2.13 (regbadct) fails here.
    let start = i;
    while s.get(i).is_some_and(|&b| b != b';' && !is_ws(b)) {
        i += 1;
    }
    let uri = s.get(start..i).ok_or(())?;
    if uri.is_empty() || uri.iter().any(|&b| b == b',' || b == b'?' || b == b'>') {
        return Err(());
    }
    let params = s.get(i..).ok_or(())?;
    check_params(params)?;
    Ok(NameAddr { uri, params })
}

/// `s[lt] == '<'`: the URI runs to the next `>` with no whitespace inside (RFC 4475 §3.1.2.14,
/// badaspec), then header parameters follow.
fn bracketed(s: &[u8], lt: usize) -> Result<NameAddr<'_>, ()> {
    let rest = s.get(lt + 1..).ok_or(())?;
    let gt = rest.iter().position(|&b| b == b'>').ok_or(())?;
    let uri = rest.get(..gt).ok_or(())?;
    if uri.is_empty() || uri.iter().any(|&b| is_ws(b) || b == b'<' || b == b'"') {
        return Err(());
    }
    let params = rest.get(gt + 1..).ok_or(())?;
    check_params(params)?;
    Ok(NameAddr { uri, params })
}

/// The value of parameter `name` (case-insensitive) in a `;`-parameter list, if present.
pub(crate) fn param_value<'a>(params_text: &'a [u8], name: &str) -> Option<Option<&'a [u8]>> {
    params(params_text)
        .ok()?
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v)
}

/// What kind of URI a [`uri`] check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UriScheme {
    /// `sip:` (RFC 3261 §19.1).
    Sip,
    /// `sips:` (RFC 3261 §19.1).
    Sips,
    /// Any other syntactically valid `absoluteURI` scheme (RFC 3986 §3.1).
    Other,
}

/// Checks `scheme ":" ...`; for `sip`/`sips` the full RFC 3261 §19.1 SIP-URI grammar (with
/// `?headers` only when `allow_headers`), for other schemes only RFC 3986-level sanity.
pub(crate) fn uri(s: &[u8], allow_headers: bool) -> Result<UriScheme, UriError> {
    let colon = s
        .iter()
        .position(|&b| b == b':')
        .ok_or(UriError::Malformed)?;
    let scheme = s.get(..colon).ok_or(UriError::Malformed)?;
    let rest = s.get(colon + 1..).ok_or(UriError::Malformed)?;
    let valid_scheme = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.');
    if !valid_scheme {
        return Err(UriError::Malformed);
    }
    if scheme.eq_ignore_ascii_case(b"sip") {
        sip_uri(rest, allow_headers)?;
        return Ok(UriScheme::Sip);
    }
    if scheme.eq_ignore_ascii_case(b"sips") {
        sip_uri(rest, allow_headers)?;
        return Ok(UriScheme::Sips);
    }
    // absoluteURI: some visible ASCII, escapes well formed.
    if rest.is_empty()
        || rest
            .iter()
            .any(|&b| !b.is_ascii_graphic() || b"<>\"{}|\\^`".contains(&b))
        || !escapes_ok(rest)
    {
        return Err(UriError::Malformed);
    }
    Ok(UriScheme::Other)
}

/// Why a SIP URI failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UriError {
    /// Not a URI at all, or a SIP-URI that breaks the grammar.
    Malformed,
    /// A SIP-URI with `?headers` where they are not allowed (RFC 3261 §19.1.1, Request-URI).
    HeadersNotAllowed,
}

/// RFC 3261 `unreserved` (alphanum / mark).
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

/// Every `%` is followed by two hex digits.
fn escapes_ok(s: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            let ok = s.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// All bytes are in `allowed` or `%HH` escapes.
fn chars_ok(s: &[u8], allowed: impl Fn(u8) -> bool) -> bool {
    escapes_ok(s) && s.iter().all(|&b| b == b'%' || allowed(b))
}

/// The part of a SIP-URI after `sip:`.
fn sip_uri(rest: &[u8], allow_headers: bool) -> Result<(), UriError> {
    let bad = UriError::Malformed;
    // userinfo cannot contain '@', so the first '@' ends it.
    let host_part = match rest.iter().position(|&b| b == b'@') {
        Some(at) => {
            let userinfo = rest.get(..at).ok_or(bad)?;
            let (user, password) = match userinfo.iter().position(|&b| b == b':') {
                Some(c) => (
                    userinfo.get(..c).ok_or(bad)?,
                    userinfo.get(c + 1..).ok_or(bad)?,
                ),
                None => (userinfo, &b""[..]),
            };
            // '#' is tolerated in the user part: phones and PBXs send it unescaped.
            let user_ok = !user.is_empty()
                && chars_ok(user, |b| is_unreserved(b) || b"&=+$,;?/#".contains(&b));
            let password_ok = chars_ok(password, |b| is_unreserved(b) || b"&=+$,".contains(&b));
            if !user_ok || !password_ok {
                return Err(bad);
            }
            rest.get(at + 1..).ok_or(bad)?
        }
        None => rest,
    };
    let (before_headers, headers) = match host_part.iter().position(|&b| b == b'?') {
        Some(q) => (
            host_part.get(..q).ok_or(bad)?,
            Some(host_part.get(q + 1..).ok_or(bad)?),
        ),
        None => (host_part, None),
    };
    let mut pieces = before_headers.split(|&b| b == b';');
    hostport(pieces.next().unwrap_or_default()).map_err(|()| bad)?;
    for param in pieces {
        let (name, value) = match param.iter().position(|&b| b == b'=') {
            Some(e) => (param.get(..e).ok_or(bad)?, param.get(e + 1..)),
            None => (param, None),
        };
        let paramchar = |b: u8| is_unreserved(b) || b"[]/:&+$".contains(&b);
        if name.is_empty() || !chars_ok(name, paramchar) {
            return Err(bad);
        }
        if let Some(v) = value
            && (v.is_empty() || !chars_ok(v, paramchar))
        {
            return Err(bad);
        }
    }
    if let Some(headers) = headers {
        if !allow_headers {
            return Err(UriError::HeadersNotAllowed);
        }
        for header in headers.split(|&b| b == b'&') {
            let hnv = |b: u8| is_unreserved(b) || b"[]/?:+$".contains(&b);
            let (name, value) = match header.iter().position(|&b| b == b'=') {
                Some(e) => (header.get(..e).ok_or(bad)?, header.get(e + 1..).ok_or(bad)?),
                None => return Err(bad),
            };
            if name.is_empty() || !chars_ok(name, hnv) || !chars_ok(value, hnv) {
                return Err(bad);
            }
        }
    }
    Ok(())
}

/// `host [ ":" port ]` (RFC 3261 §25.1 `hostport`).
pub(crate) fn hostport(s: &[u8]) -> Result<(), ()> {
    let (host, port) = if s.first() == Some(&b'[') {
        let close = s.iter().position(|&b| b == b']').ok_or(())?;
        let inner = s.get(1..close).ok_or(())?;
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(());
        }
        match s.get(close + 1..).ok_or(())? {
            [] => (s, None),
            [b':', port @ ..] => (s.get(..=close).ok_or(())?, Some(port)),
            _ => return Err(()),
        }
    } else {
        match s.iter().position(|&b| b == b':') {
            Some(c) => (s.get(..c).ok_or(())?, Some(s.get(c + 1..).ok_or(())?)),
            None => (s, None),
        }
    };
    let host_ok = host.first() == Some(&b'[')
        || (!host.is_empty()
            && host
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'));
    if !host_ok {
        return Err(());
    }
    if let Some(port) = port
        && parse_decimal::<u16>(port).is_none()
    {
        return Err(());
    }
    Ok(())
}

/// `1*DIGIT` as a number of type `T`; `None` on empty input, non-digits or overflow.
pub(crate) fn parse_decimal<T: TryFrom<u64>>(s: &[u8]) -> Option<T> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    T::try_from(n).ok()
}

/// RFC 3261 §20.8 `Call-ID = word [ "@" word ]`.
pub(crate) fn is_call_id(s: &[u8]) -> bool {
    let mut parts = s.splitn(2, |&b| b == b'@');
    let first = parts.next().unwrap_or_default();
    let first_ok = !first.is_empty() && first.iter().all(|&b| is_word_char(b));
    let second_ok = parts
        .next()
        .is_none_or(|w| !w.is_empty() && w.iter().all(|&b| is_word_char(b)));
    first_ok && second_ok
}

/// RFC 3261 §20.42 Via: `1#via-parm`, each `sent-protocol LWS sent-by *( SEMI via-params )`,
/// LWS allowed around `/`, `:`, `;` and `=` (RFC 4475 §3.1.1.1 wsinv). Returns the `branch`
/// parameter of the first entry (`Some(None)` when that entry has none).
pub(crate) fn via(s: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    let mut first_branch = None;
    for (n, entry) in split_commas(s)?.into_iter().enumerate() {
        let mut i = skip_ws(entry, 0);
        // sent-protocol: name / version / transport
        for k in 0..3 {
            let start = i;
            while entry.get(i).is_some_and(|&b| is_token_char(b)) {
                i += 1;
            }
            if i == start {
                return Err(());
            }
            i = skip_ws(entry, i);
            if k < 2 {
                if entry.get(i) != Some(&b'/') {
                    return Err(());
                }
                i = skip_ws(entry, i + 1);
            }
        }
        // sent-by
        let host_start = i;
        if entry.get(i) == Some(&b'[') {
            while entry.get(i).is_some_and(|&b| b != b']') {
                i += 1;
            }
            i += 1;
        } else {
            while entry
                .get(i)
                .is_some_and(|&b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            {
                i += 1;
            }
        }
        let host = entry.get(host_start..i).ok_or(())?;
        hostport(host)?;
        i = skip_ws(entry, i);
        if entry.get(i) == Some(&b':') {
            i = skip_ws(entry, i + 1);
            let port_start = i;
            while entry.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            parse_decimal::<u16>(entry.get(port_start..i).ok_or(())?).ok_or(())?;
        }
        let params_text = entry.get(i..).ok_or(())?;
        let list = params(params_text)?;
        if n == 0 {
            first_branch = list
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(b"branch"))
                .map(|(_, v)| v.map(<[u8]>::to_vec).unwrap_or_default());
        }
    }
    Ok(first_branch)
}

/// RFC 3261 §20.15 `media-type = m-type SLASH m-subtype *(SEMI m-parameter)`. Returns the
/// lowercased `type/subtype` and the parameter text.
pub(crate) fn media_type(s: &[u8]) -> Result<(String, &[u8]), ()> {
    let mut i = skip_ws(s, 0);
    let type_start = i;
    while s.get(i).is_some_and(|&b| is_token_char(b)) {
        i += 1;
    }
    let m_type = s.get(type_start..i).ok_or(())?;
    i = skip_ws(s, i);
    if s.get(i) != Some(&b'/') {
        return Err(());
    }
    i = skip_ws(s, i + 1);
    let sub_start = i;
    while s.get(i).is_some_and(|&b| is_token_char(b)) {
        i += 1;
    }
    let m_sub = s.get(sub_start..i).ok_or(())?;
    if m_type.is_empty() || m_sub.is_empty() {
        return Err(());
    }
    let rest = s.get(i..).ok_or(())?;
    check_params(rest)?;
    let mut name = String::from_utf8_lossy(m_type).to_ascii_lowercase();
    name.push('/');
    name.push_str(&String::from_utf8_lossy(m_sub).to_ascii_lowercase());
    Ok((name, rest))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn tokens_and_words() {
        assert!(is_token(b"!interesting-Method0123456789_*+`.%indeed'~"));
        assert!(!is_token(b"Bell,"));
        assert!(!is_token(b""));
        assert!(is_call_id(b"intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"));
        assert!(!is_call_id(b"a@b@c"));
        assert!(!is_call_id(b"has space"));
    }

    #[test]
    fn quoted_strings_respect_escapes() {
        assert_eq!(quoted_end(br#""a\"b" x"#, 0), Ok(6));
        assert_eq!(quoted_end(br#""unterminated"#, 0), Err(()));
        assert_eq!(quoted_end(b"\"ends in escape\\", 0), Err(()));
    }

    #[test]
    fn name_addr_forms() {
        let a = name_addr(b"\"J \\\"R\\\"\" <sip:j@example.com> ; tag = x").unwrap();
        assert_eq!(a.uri, b"sip:j@example.com");
        assert_eq!(param_value(a.params, "tag"), Some(Some(&b"x"[..])));
        assert!(name_addr(b"caller<sip:caller@example.com>;tag=323").is_ok());
        assert!(name_addr(b"Bell, Alexander <sip:a@example.com>").is_err());
        assert!(name_addr(b"\"Watson\" < sip:t@example.org >").is_err());
        assert!(name_addr(b"sip:user@example.com?Route=%3Csip:x%3E").is_err());
        assert!(name_addr(b"\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(name_addr(b"").is_err());
        assert!(name_addr(b"<sip:a@b>;;").is_err());
    }

    #[test]
    fn sip_uris() {
        assert_eq!(uri(b"sip:user@example.com", false), Ok(UriScheme::Sip));
        assert_eq!(
            uri(b"SIPS:example.com:5061;transport=tls", false),
            Ok(UriScheme::Sips)
        );
        assert_eq!(
            uri(b"sip:user@example.com?Route=%3Csip:example.com%3E", false),
            Err(UriError::HeadersNotAllowed)
        );
        assert!(uri(b"sip:user@example.com?Route=%3Csip:example.com%3E", true).is_ok());
        assert_eq!(
            uri(b"soap.beep://192.0.2.103:3002", false),
            Ok(UriScheme::Other)
        );
        assert_eq!(
            uri(b"<sip:user@example.com>", false),
            Err(UriError::Malformed)
        );
        assert_eq!(
            uri(b"sip:user@exa mple.com", false),
            Err(UriError::Malformed)
        );
        assert_eq!(
            uri(b"sip:user@example.com:99999", false),
            Err(UriError::Malformed)
        );
        assert_eq!(uri(b"sip:%zz@example.com", false), Err(UriError::Malformed));
        assert_eq!(uri(b"sip:@example.com", false), Err(UriError::Malformed));
        assert_eq!(uri(b"sip:[::1]:5060", false), Ok(UriScheme::Sip));
        assert_eq!(uri(b"sip:[::1", false), Err(UriError::Malformed));
        assert_eq!(uri(b"1sip:x", false), Err(UriError::Malformed));
    }

    #[test]
    fn via_values() {
        assert_eq!(
            via(b"SIP/2.0/UDP host:5060;branch=z9hG4bKabc;rport").unwrap(),
            Some(b"z9hG4bKabc".to_vec())
        );
        assert!(via(b"SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw").is_ok());
        assert!(via(b"SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(via(b"SIP/2.0/UDP").is_err());
        assert!(via(b"SIP/2.0/UDP [::1]:5060").is_ok());
        assert_eq!(via(b"SIP/2.0/UDP host").unwrap(), None);
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal::<u32>(b"0009"), Some(9));
        assert_eq!(parse_decimal::<u32>(b"4294967296"), None);
        assert_eq!(parse_decimal::<u32>(b"36893488147419103232"), None);
        assert_eq!(parse_decimal::<u32>(b"-1"), None);
        assert_eq!(parse_decimal::<u32>(b""), None);
    }

    #[test]
    fn media_types() {
        let (t, params_text) = media_type(b"multipart/mixed;boundary=7a9c").unwrap();
        assert_eq!(t, "multipart/mixed");
        assert_eq!(
            param_value(params_text, "boundary"),
            Some(Some(&b"7a9c"[..]))
        );
        assert!(media_type(b"application").is_err());
    }
}
