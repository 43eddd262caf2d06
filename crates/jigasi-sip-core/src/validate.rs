//! Validation of raw SIP messages before the SIP stack sees them (RFC 3261, RFC 4475).
//!
//! rsipstack parses leniently and never answers a malformed request with 400 (it answers
//! `SIP/7.0` requests with 200, passes INVITEs with a wrong Content-Length up, and silently drops
//! what it cannot parse; `rsipstack-notes.md` §9). The I/O crate therefore runs
//! [`check_message`] on every received datagram first and:
//!
//! - [`Verdict::Accept`]: hands the bytes to the stack (for UDP, only the first
//!   [`MessageInfo::length`] bytes: RFC 3261 §18.3 discards bytes past Content-Length);
//! - [`Verdict::Reject`]: does not hand it on; when `respond` is true it sends
//!   [`reject_response`] back to the source address;
//! - [`Verdict::Drop`]: discards it silently.
//!
//! The decisions for the 49 RFC 4475 torture messages are listed in `RFC4475.md` next to this
//! crate's `Cargo.toml`; the table test in this module keeps that list honest.

pub(crate) mod grammar;

use std::fmt::Write as _;
use std::net::SocketAddr;

use grammar::{UriError, UriScheme};

/// What to do with one received SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Well formed enough for the stack (RFC 4475 §3.1.1 "valid" messages land here).
    Accept,
    /// A request we must not process. RFC 3261 §8.2 / §21 status and reason phrase.
    Reject {
        /// The status code to answer with (400, 415, 416, 420, 483, 505, 513, ...).
        status: u16,
        /// Reason phrase naming the problem (kept specific, like Kamailio's, for debugging).
        reason: &'static str,
        /// Whether a response is sent at all. `false` only for ACK, which is never answered
        /// (RFC 3261 §17.1.1.3).
        respond: bool,
    },
    /// Discard without an answer: responses that are broken (RFC 4475 §3.1.2.5, §3.1.2.19),
    /// garbage, and requests too broken to address a response to (no Via or CSeq).
    Drop {
        /// Why the message was discarded.
        why: DropReason,
    },
}

/// Why a message was dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Only CR/LF/whitespace: an RFC 5626 §3.5.1 CRLF keep-alive, not a SIP message.
    KeepAlive,
    /// Bytes that do not start like a SIP request or response.
    Garbage,
    /// A request so broken that no response can be addressed (no Via or no CSeq to copy,
    /// RFC 3261 §8.2.6.2).
    Unanswerable,
    /// A response with a malformed status line, an unknown version or a status code outside
    /// 100..=699 (RFC 3261 §7.2, RFC 4475 §3.1.2.19 bigcode).
    BadStatusLine,
    /// A response with missing, repeated or malformed mandatory headers (RFC 4475 §3.1.2.5
    /// scalarlg: "an element receiving this response will simply discard it").
    MalformedResponse,
    /// On a stream transport the declared Content-Length is not all here yet: the framing layer
    /// must wait for more bytes (and close the connection if none come, RFC 4475 §3.1.2.2).
    Incomplete,
    /// Larger than [`CheckPolicy::max_message_bytes`] and not answerable with 513.
    TooLarge,
}

/// The transport a message arrived on; Content-Length rules differ (RFC 3261 §18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// UDP: the datagram is the message. Content-Length larger than the body is an error;
    /// bytes past Content-Length are discarded.
    #[default]
    Datagram,
    /// TCP/TLS: Content-Length is mandatory and frames the message; bytes after it belong to
    /// the next message.
    Stream,
}

/// Knobs of [`CheckPolicy::check`]. The defaults suit the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckPolicy {
    /// Transport the message came in on. Default [`Transport::Datagram`].
    pub transport: Transport,
    /// Largest message we process. Default 65 535 bytes, the largest UDP payload; bigger
    /// requests get 513 Message Too Large (RFC 3261 §21.5.14).
    pub max_message_bytes: usize,
    /// Option tags we implement; any other tag in `Require` gets 420 Bad Extension
    /// (RFC 3261 §8.2.2.3). Default empty: the gateway implements no SIP extension that a peer
    /// could require.
    pub supported_extensions: Vec<String>,
}

impl Default for CheckPolicy {
    fn default() -> Self {
        Self {
            transport: Transport::Datagram,
            max_message_bytes: 65_535,
            supported_extensions: Vec::new(),
        }
    }
}

/// Facts about an accepted message that the I/O layer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageInfo {
    /// Bytes that make up the message (headers plus Content-Length body). On UDP anything after
    /// this is discarded (RFC 3261 §18.3, RFC 4475 §3.1.1.8 dblreq); on a stream it is the start
    /// of the next message.
    pub length: usize,
}

/// Checks one UDP datagram with the default [`CheckPolicy`].
///
/// Never panics, whatever the bytes.
pub fn check_message(datagram: &[u8]) -> Verdict {
    CheckPolicy::default().check(datagram)
}

impl CheckPolicy {
    /// Checks one message under this policy (RFC 3261 §7, §8.2, §18.3; RFC 4475).
    pub fn check(&self, message: &[u8]) -> Verdict {
        self.check_with_info(message).0
    }

    /// Like [`CheckPolicy::check`], and also returns where an accepted message ends.
    pub fn check_with_info(&self, message: &[u8]) -> (Verdict, Option<MessageInfo>) {
        match self.classify(message) {
            Outcome::Accept(info) => (Verdict::Accept, Some(info)),
            Outcome::Drop(why) => (Verdict::Drop { why }, None),
            Outcome::Problem(Problem::Incomplete, _) => (
                Verdict::Drop {
                    why: DropReason::Incomplete,
                },
                None,
            ),
            Outcome::Problem(problem, parsed) => {
                let verdict = match parsed.answerable() {
                    Answerable::Yes => Verdict::Reject {
                        status: problem.status(),
                        reason: problem.reason(),
                        respond: true,
                    },
                    Answerable::Ack => Verdict::Reject {
                        status: problem.status(),
                        reason: problem.reason(),
                        respond: false,
                    },
                    Answerable::No if problem == Problem::TooLarge => Verdict::Drop {
                        why: DropReason::TooLarge,
                    },
                    Answerable::No => Verdict::Drop {
                        why: DropReason::Unanswerable,
                    },
                };
                (verdict, None)
            }
        }
    }

    fn classify<'a>(&self, message: &'a [u8]) -> Outcome<'a> {
        let Some(parsed) = Parsed::split(message) else {
            return if message.iter().all(|b| b" \t\r\n".contains(b)) {
                Outcome::Drop(DropReason::KeepAlive)
            } else {
                Outcome::Drop(DropReason::Garbage)
            };
        };
        match parsed.start {
            Start::Response { .. } => match self.check_response(&parsed) {
                Ok(info) => Outcome::Accept(info),
                Err(why) => Outcome::Drop(why),
            },
            Start::Request { .. } | Start::BadRequestLine => {
                if message.len() > self.max_message_bytes {
                    return Outcome::Problem(Problem::TooLarge, parsed);
                }
                match self.check_request(&parsed) {
                    Ok(info) => Outcome::Accept(info),
                    Err(problem) => Outcome::Problem(problem, parsed),
                }
            }
        }
    }

    fn check_response(&self, p: &Parsed<'_>) -> Result<MessageInfo, DropReason> {
        let Start::Response { version, code } = p.start else {
            return Err(DropReason::BadStatusLine);
        };
        if !version.eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(DropReason::BadStatusLine);
        }
        let status_ok = code.len() == 3
            && grammar::parse_decimal::<u16>(code).is_some_and(|c| (100..=699).contains(&c));
        if !status_ok {
            return Err(DropReason::BadStatusLine);
        }
        if p.bad_header_line {
            return Err(DropReason::MalformedResponse);
        }
        let mandatory = ["via", "from", "to", "call-id", "cseq"];
        if mandatory.iter().any(|n| p.header(n).is_none()) || p.repeated_single_value() {
            return Err(DropReason::MalformedResponse);
        }
        let cseq = p.header("cseq").ok_or(DropReason::MalformedResponse)?;
        parse_cseq(cseq).ok_or(DropReason::MalformedResponse)?;
        for name in ["from", "to"] {
            let value = p.header(name).ok_or(DropReason::MalformedResponse)?;
            let addr = grammar::name_addr(value).map_err(|()| DropReason::MalformedResponse)?;
            grammar::uri(addr.uri, true).map_err(|_| DropReason::MalformedResponse)?;
        }
        let call_id = p.header("call-id").ok_or(DropReason::MalformedResponse)?;
        if !grammar::is_call_id(call_id) {
            return Err(DropReason::MalformedResponse);
        }
        for via in p.all("via") {
            grammar::via(via).map_err(|()| DropReason::MalformedResponse)?;
        }
        self.body_length(p).map_err(|problem| {
            if problem == Problem::Incomplete {
                DropReason::Incomplete
            } else {
                DropReason::MalformedResponse
            }
        })
    }

    fn check_request(&self, p: &Parsed<'_>) -> Result<MessageInfo, Problem> {
        let Start::Request {
            method,
            uri,
            version,
        } = p.start
        else {
            return Err(Problem::StartLine);
        };
        if !grammar::is_token(method) || !is_version_syntax(version) {
            return Err(Problem::StartLine);
        }
        if !version.eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(Problem::Version);
        }
        if p.bad_header_line {
            return Err(Problem::HeaderLine);
        }
        let mandatory = ["via", "from", "to", "call-id", "cseq", "max-forwards"];
        if mandatory.iter().any(|n| p.header(n).is_none()) {
            return Err(Problem::MissingHeader);
        }
        if p.repeated_single_value() {
            return Err(Problem::RepeatedHeader);
        }
        let (_, cseq_method) = p.header("cseq").and_then(parse_cseq).ok_or(Problem::CSeq)?;
        if cseq_method != method {
            // RFC 4475 §3.1.2.18: for a method we do not know 501 is preferred over 400.
            return Err(if known_method(method) {
                Problem::CSeqMismatch
            } else {
                Problem::UnknownMethodMismatch
            });
        }
        let max_forwards = p
            .header("max-forwards")
            .and_then(grammar::parse_decimal::<u8>)
            .ok_or(Problem::MaxForwards)?;
        let mut top_branch = None;
        for (i, via) in p.all("via").enumerate() {
            let branch = grammar::via(via).map_err(|()| Problem::Via)?;
            if i == 0 {
                top_branch = branch;
            }
        }
        // RFC 4475 §3.2.1: the magic cookie alone is no transaction identifier.
        if top_branch.as_deref() == Some(b"z9hG4bK") {
            return Err(Problem::Branch);
        }
        let mut addresses = Vec::new();
        for (name, problem) in [("from", Problem::From), ("to", Problem::To)] {
            let value = p.header(name).ok_or(problem)?;
            let addr = grammar::name_addr(value).map_err(|()| problem)?;
            let scheme = grammar::uri(addr.uri, true).map_err(|_| problem)?;
            addresses.push(scheme);
        }
        if !p.header("call-id").is_some_and(grammar::is_call_id) {
            return Err(Problem::CallId);
        }
        for contact in p.all("contact") {
            check_contact(contact).map_err(|()| Problem::Contact)?;
        }
        if let Some(date) = p.header("date")
            && !date.ends_with(b" GMT")
        {
            // RFC 3261 §20.17: the Date is always GMT (RFC 4475 §3.1.2.12 baddate).
            return Err(Problem::Date);
        }
        match grammar::uri(uri, false) {
            Ok(UriScheme::Sip | UriScheme::Sips) => {}
            Ok(UriScheme::Other) => return Err(Problem::UriScheme),
            Err(UriError::HeadersNotAllowed) => return Err(Problem::UriHeaders),
            Err(UriError::Malformed) => return Err(Problem::RequestUri),
        }
        // RFC 3261 §10.3 step 5 / RFC 4475 §3.3.4: an address-of-record is a SIP(S) URI.
        if method == b"REGISTER" && addresses.get(1) == Some(&UriScheme::Other) {
            return Err(Problem::AddressOfRecord);
        }
        // A message without the empty line after its headers was cut short (RFC 3261 §7).
        if p.truncated {
            return Err(Problem::Truncated);
        }
        let info = self.body_length(p)?;
        if method == b"ACK" {
            return Ok(info);
        }
        if max_forwards == 0 {
            return Err(Problem::TooManyHops);
        }
        if method != b"CANCEL" && !self.unsupported_required(p).is_empty() {
            return Err(Problem::BadExtension);
        }
        let body = p
            .body
            .get(..info.length.saturating_sub(p.header_len))
            .unwrap_or_default();
        check_body(p, method, body)?;
        Ok(info)
    }

    /// RFC 3261 §18.3: the body length and where the message ends.
    fn body_length(&self, p: &Parsed<'_>) -> Result<MessageInfo, Problem> {
        let declared = match p.header("content-length") {
            Some(v) => Some(grammar::parse_decimal::<usize>(v).ok_or(Problem::ContentLength)?),
            None if self.transport == Transport::Stream => return Err(Problem::ContentLength),
            None => None,
        };
        let available = p.body.len();
        let used = match declared {
            Some(n) if n > available => {
                return Err(match self.transport {
                    Transport::Datagram => Problem::ContentLengthMismatch,
                    Transport::Stream => Problem::Incomplete,
                });
            }
            Some(n) => n,
            None => available,
        };
        Ok(MessageInfo {
            length: p.header_len + used,
        })
    }

    /// Option tags in `Require` that we do not implement.
    fn unsupported_required(&self, p: &Parsed<'_>) -> Vec<String> {
        unsupported_tags(p, &self.supported_extensions)
    }
}

/// Builds the response for a rejected request (RFC 3261 §8.2.6): status line, the request's
/// Via headers in order, From, To (with a To tag added when it has none, §8.2.6.2), Call-ID and
/// CSeq, plus `Unsupported` for 420 (§8.2.2.3) and `Accept: application/sdp` for 415 (§8.2.3).
///
/// Works best-effort on malformed messages (it reads headers leniently). Returns `None` when no
/// Via or no CSeq can be found (nothing to address or match the response with) and for ACK,
/// which is never answered.
pub fn reject_response(datagram: &[u8], status: u16, reason: &str) -> Option<Vec<u8>> {
    reject_response_from(datagram, status, reason, None)
}

/// [`reject_response`], and when the source address is known, records it in the top Via as
/// `received` (RFC 3261 §18.2.1) and fills an empty `rport` (RFC 3581 §4).
pub fn reject_response_from(
    datagram: &[u8],
    status: u16,
    reason: &str,
    source: Option<SocketAddr>,
) -> Option<Vec<u8>> {
    build_response(datagram, status, reason, source, &[])
}

impl CheckPolicy {
    /// [`reject_response_from`] that leaves the policy's supported extensions out of a 420's
    /// `Unsupported` header (RFC 3261 §8.2.2.3 lists only the tags we lack).
    pub fn reject_response(
        &self,
        datagram: &[u8],
        status: u16,
        reason: &str,
        source: Option<SocketAddr>,
    ) -> Option<Vec<u8>> {
        build_response(datagram, status, reason, source, &self.supported_extensions)
    }
}

fn build_response(
    datagram: &[u8],
    status: u16,
    reason: &str,
    source: Option<SocketAddr>,
    supported: &[String],
) -> Option<Vec<u8>> {
    let p = Parsed::split(datagram)?;
    if let Start::Request { method, .. } = p.start
        && method == b"ACK"
    {
        return None;
    }
    if matches!(p.start, Start::Response { .. }) {
        return None;
    }
    let vias: Vec<&[u8]> = p.all("via").collect();
    let cseq = p.header("cseq")?;
    if vias.is_empty() {
        return None;
    }
    let reason: String = reason.chars().filter(|c| !c.is_control()).collect();
    let mut out = Vec::with_capacity(512);
    let _ = write!(Buf(&mut out), "SIP/2.0 {status} {reason}\r\n");
    for (i, via) in vias.iter().enumerate() {
        out.extend_from_slice(b"Via: ");
        match (i, source) {
            (0, Some(source)) => out.extend_from_slice(&stamp_via(via, source)),
            _ => out.extend_from_slice(via),
        }
        out.extend_from_slice(b"\r\n");
    }
    if let Some(from) = p.header("from") {
        out.extend_from_slice(b"From: ");
        out.extend_from_slice(from);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(to) = p.header("to") {
        out.extend_from_slice(b"To: ");
        out.extend_from_slice(to);
        let has_tag = grammar::name_addr(to)
            .ok()
            .and_then(|a| grammar::param_value(a.params, "tag"))
            .is_some();
        if !has_tag && status > 100 {
            let _ = write!(Buf(&mut out), ";tag={}", response_tag(&p));
        }
        out.extend_from_slice(b"\r\n");
    }
    if let Some(call_id) = p.header("call-id") {
        out.extend_from_slice(b"Call-ID: ");
        out.extend_from_slice(call_id);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"CSeq: ");
    out.extend_from_slice(cseq);
    out.extend_from_slice(b"\r\n");
    if status == 420 {
        let _ = write!(
            Buf(&mut out),
            "Unsupported: {}\r\n",
            unsupported_tags(&p, supported).join(", ")
        );
    }
    if status == 415 {
        out.extend_from_slice(b"Accept: application/sdp\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Some(out)
}

/// The problems [`CheckPolicy::check`] finds in requests, each with its status and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    StartLine,
    Version,
    HeaderLine,
    Truncated,
    MissingHeader,
    RepeatedHeader,
    CSeq,
    CSeqMismatch,
    UnknownMethodMismatch,
    MaxForwards,
    ContentLength,
    ContentLengthMismatch,
    Incomplete,
    Via,
    Branch,
    From,
    To,
    CallId,
    Contact,
    Date,
    RequestUri,
    UriHeaders,
    UriScheme,
    AddressOfRecord,
    TooManyHops,
    BadExtension,
    ContentType,
    MissingContentType,
    UnsupportedMediaType,
    NotAcceptable,
    TooLarge,
}

impl Problem {
    fn status(self) -> u16 {
        match self {
            Self::Version => 505,
            Self::UnknownMethodMismatch => 501,
            Self::UriScheme => 416,
            Self::TooManyHops => 483,
            Self::BadExtension => 420,
            Self::UnsupportedMediaType => 415,
            Self::NotAcceptable => 406,
            Self::TooLarge => 513,
            Self::StartLine
            | Self::HeaderLine
            | Self::Truncated
            | Self::MissingHeader
            | Self::RepeatedHeader
            | Self::CSeq
            | Self::CSeqMismatch
            | Self::MaxForwards
            | Self::ContentLength
            | Self::ContentLengthMismatch
            | Self::Incomplete
            | Self::Via
            | Self::Branch
            | Self::From
            | Self::To
            | Self::CallId
            | Self::Contact
            | Self::Date
            | Self::RequestUri
            | Self::UriHeaders
            | Self::AddressOfRecord
            | Self::ContentType
            | Self::MissingContentType => 400,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Self::StartLine => "Bad Request Line",
            Self::Version => "Version Not Supported",
            Self::HeaderLine => "Malformed Header Line",
            Self::Truncated => "Truncated Message",
            Self::MissingHeader => "Missing Mandatory Header",
            Self::RepeatedHeader => "Repeated Single-Value Header",
            Self::CSeq => "Bad CSeq",
            Self::CSeqMismatch => "CSeq Method Mismatch",
            Self::UnknownMethodMismatch => "Not Implemented",
            Self::MaxForwards => "Bad Max-Forwards",
            Self::ContentLength => "Bad Content-Length",
            Self::ContentLengthMismatch => "Content-Length Mismatch",
            Self::Incomplete => "Incomplete Message",
            Self::Via => "Bad Via",
            Self::Branch => "Missing Transaction Identifier",
            Self::From => "Bad From",
            Self::To => "Bad To",
            Self::CallId => "Bad Call-ID",
            Self::Contact => "Bad Contact",
            Self::Date => "Bad Date",
            Self::RequestUri => "Bad Request-URI",
            Self::UriHeaders => "Headers Not Allowed In Request-URI",
            Self::UriScheme => "Unsupported URI Scheme",
            Self::AddressOfRecord => "Address-of-Record Must Be SIP",
            Self::TooManyHops => "Too Many Hops",
            Self::BadExtension => "Bad Extension",
            Self::ContentType => "Bad Content-Type",
            Self::MissingContentType => "Missing Content-Type",
            Self::UnsupportedMediaType => "Unsupported Media Type",
            Self::NotAcceptable => "Not Acceptable",
            Self::TooLarge => "Message Too Large",
        }
    }
}

enum Outcome<'a> {
    Accept(MessageInfo),
    Drop(DropReason),
    Problem(Problem, Parsed<'a>),
}

enum Answerable {
    Yes,
    Ack,
    No,
}

#[derive(Debug, Clone, Copy)]
enum Start<'a> {
    Request {
        method: &'a [u8],
        uri: &'a [u8],
        version: &'a [u8],
    },
    /// Looks like a request (does not start with `SIP/`) but the line is malformed.
    BadRequestLine,
    Response {
        version: &'a [u8],
        code: &'a [u8],
    },
}

/// A message cut into start line, unfolded headers and body. Lenient: bad lines are flagged,
/// not fatal, so [`reject_response`] can still copy what it finds.
struct Parsed<'a> {
    start: Start<'a>,
    /// `(canonical lowercase name, unfolded trimmed value)`, in order.
    headers: Vec<(String, Vec<u8>)>,
    /// Some header line had no colon or a bad name, or a continuation line had nothing to
    /// continue.
    bad_header_line: bool,
    /// No empty line ended the headers.
    truncated: bool,
    /// Bytes of the whole input up to and including the empty line (leading CRLFs included).
    header_len: usize,
    /// Everything after the empty line.
    body: &'a [u8],
}

impl<'a> Parsed<'a> {
    fn split(message: &'a [u8]) -> Option<Self> {
        // RFC 3261 §7.5: CRLFs before the start line are ignored.
        let lead = message
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(message.len());
        let text = message.get(lead..)?;
        if text.is_empty() {
            return None;
        }
        let (head, body, truncated, header_len) = match find_blank_line(text) {
            Some((end, after)) => (text.get(..end)?, text.get(after..)?, false, lead + after),
            None => (text, &b""[..], true, message.len()),
        };
        let mut lines = head.split(|&b| b == b'\n').map(|l| match l {
            [rest @ .., b'\r'] => rest,
            l => l,
        });
        let start_line = lines.next()?;
        let start = parse_start(start_line)?;
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        let mut bad_header_line = false;
        for line in lines {
            if line.is_empty() {
                // Only possible as the last line of a message with no blank line after it.
                continue;
            }
            if line.first().is_some_and(|&b| grammar::is_ws(b)) {
                match headers.last_mut() {
                    Some((_, value)) => {
                        let more = grammar::trim(line);
                        if !more.is_empty() {
                            if !value.is_empty() {
                                value.push(b' ');
                            }
                            value.extend_from_slice(more);
                        }
                    }
                    None => bad_header_line = true,
                }
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                bad_header_line = true;
                continue;
            };
            let name = grammar::trim(line.get(..colon).unwrap_or_default());
            if !grammar::is_token(name) {
                bad_header_line = true;
                continue;
            }
            let value = grammar::trim(line.get(colon + 1..).unwrap_or_default());
            headers.push((canonical_name(name), value.to_vec()));
        }
        Some(Self {
            start,
            headers,
            bad_header_line,
            truncated,
            header_len,
            body,
        })
    }

    /// First value of a header (canonical lowercase name).
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// All values of a header, in order.
    fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// A header that allows one value appears twice (RFC 4475 §3.3.8, §3.3.9).
    fn repeated_single_value(&self) -> bool {
        SINGLE_VALUE
            .iter()
            .any(|name| self.all(name).take(2).count() > 1)
    }

    fn answerable(&self) -> Answerable {
        if let Start::Request { method, .. } = self.start
            && method == b"ACK"
        {
            return Answerable::Ack;
        }
        if self.header("via").is_some() && self.header("cseq").is_some() {
            Answerable::Yes
        } else {
            Answerable::No
        }
    }
}

/// `(end of headers, start of body)`: the first empty line, CRLF or bare LF.
fn find_blank_line(text: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(nl) = text.get(i..)?.iter().position(|&b| b == b'\n') {
        let line_end = i + nl;
        let next = line_end + 1;
        match text.get(next..) {
            Some([b'\r', b'\n', ..]) => return Some((line_end, next + 2)),
            Some([b'\n', ..]) => return Some((line_end, next + 1)),
            _ => i = next,
        }
    }
    None
}

fn parse_start(line: &[u8]) -> Option<Start<'_>> {
    if line.len() >= 4 && line.get(..4)?.eq_ignore_ascii_case(b"SIP/") {
        let mut parts = line.splitn(3, |&b| b == b' ');
        let version = parts.next()?;
        let code = parts.next().unwrap_or_default();
        return Some(Start::Response { version, code });
    }
    // A request must at least start with a token character; anything else is garbage.
    if !line.first().is_some_and(|&b| grammar::is_token_char(b)) {
        return None;
    }
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    match parts.as_slice() {
        [method, uri, version] if !method.is_empty() && !uri.is_empty() && !version.is_empty() => {
            Some(Start::Request {
                method,
                uri,
                version,
            })
        }
        _ => Some(Start::BadRequestLine),
    }
}

/// `SIP/<digits>.<digits>` (RFC 3261 §7.1 SIP-Version), any case.
fn is_version_syntax(v: &[u8]) -> bool {
    let Some(rest) = v.get(4..) else { return false };
    if !v.get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/")) {
        return false;
    }
    let mut parts = rest.splitn(2, |&b| b == b'.');
    let major = parts.next().unwrap_or_default();
    let minor = parts.next().unwrap_or_default();
    !major.is_empty()
        && !minor.is_empty()
        && major.iter().all(u8::is_ascii_digit)
        && minor.iter().all(u8::is_ascii_digit)
}

/// RFC 3261 §20.16 `CSeq = 1*DIGIT LWS Method`, the number a 32-bit unsigned integer.
fn parse_cseq(value: &[u8]) -> Option<(u32, &[u8])> {
    let digits_end = value.iter().position(|&b| !b.is_ascii_digit())?;
    let number = grammar::parse_decimal::<u32>(value.get(..digits_end)?)?;
    let rest = value.get(digits_end..)?;
    if !rest.first().is_some_and(|&b| grammar::is_ws(b)) {
        return None;
    }
    let method = grammar::trim(rest);
    grammar::is_token(method).then_some((number, method))
}

fn known_method(method: &[u8]) -> bool {
    KNOWN_METHODS.iter().any(|m| m.as_bytes() == method)
}

/// RFC 3261 §20.10 Contact: `"*"` or a list of addresses with parameters.
fn check_contact(value: &[u8]) -> Result<(), ()> {
    if grammar::trim(value) == b"*" {
        return Ok(());
    }
    for entry in grammar::split_commas(value)? {
        let addr = grammar::name_addr(entry)?;
        grammar::uri(addr.uri, true).map_err(|_| ())?;
    }
    Ok(())
}

/// RFC 3261 §8.2.3 and §20.15: body type checks. Only INVITE and UPDATE bodies are session
/// descriptions we must understand; INFO/MESSAGE bodies are the application's business.
fn check_body(p: &Parsed<'_>, method: &[u8], body: &[u8]) -> Result<(), Problem> {
    let content_type = match p.header("content-type") {
        Some(v) => Some(grammar::media_type(v).map_err(|()| Problem::ContentType)?),
        None if !body.is_empty() => return Err(Problem::MissingContentType),
        None => None,
    };
    if let Some((kind, params_text)) = &content_type
        && kind.starts_with("multipart/")
        && !matches!(grammar::param_value(params_text, "boundary"), Some(Some(_)))
    {
        return Err(Problem::ContentType);
    }
    if method != b"INVITE" {
        return Ok(());
    }
    // RFC 3261 §20.1 / RFC 4475 §3.3.15 (sdp01): our answer is SDP, so the peer must accept it.
    let accept: Vec<&[u8]> = p.all("accept").collect();
    if !accept.is_empty() && accept.iter().any(|v| !grammar::trim(v).is_empty()) {
        let accepts_sdp = accept
            .iter()
            .flat_map(|v| v.split(|&b| b == b','))
            .filter_map(|range| grammar::media_type(range).ok())
            .any(|(kind, _)| matches!(kind.as_str(), "application/sdp" | "application/*" | "*/*"));
        if !accepts_sdp {
            return Err(Problem::NotAcceptable);
        }
    }
    if body.is_empty() {
        return Ok(());
    }
    if let Some(encoding) = p.header("content-encoding")
        && !grammar::trim(encoding).eq_ignore_ascii_case(b"identity")
    {
        return Err(Problem::UnsupportedMediaType);
    }
    let Some((kind, params_text)) = content_type else {
        return Err(Problem::MissingContentType);
    };
    match kind.as_str() {
        "application/sdp" => Ok(()),
        "multipart/mixed" | "multipart/alternative" | "multipart/related" => {
            let boundary = grammar::param_value(params_text, "boundary")
                .flatten()
                .unwrap_or_default();
            let boundary = boundary
                .strip_prefix(b"\"")
                .and_then(|b| b.strip_suffix(b"\""))
                .unwrap_or(boundary);
            if multipart_has_sdp(body, boundary) {
                Ok(())
            } else {
                Err(Problem::UnsupportedMediaType)
            }
        }
        _ => Err(Problem::UnsupportedMediaType),
    }
}

/// Whether some part of a RFC 2046 §5.1 multipart body is `application/sdp`.
fn multipart_has_sdp(body: &[u8], boundary: &[u8]) -> bool {
    if boundary.is_empty() {
        return false;
    }
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(boundary);
    let mut rest = body;
    while let Some(pos) = find(rest, &delimiter) {
        let Some(after) = rest.get(pos + delimiter.len()..) else {
            return false;
        };
        if after.starts_with(b"--") {
            return false;
        }
        let part_end = find(after, &delimiter).unwrap_or(after.len());
        let part = after.get(..part_end).unwrap_or_default();
        let headers_end = find_blank_line(part).map_or(part.len(), |(end, _)| end);
        let sdp = part
            .get(..headers_end)
            .unwrap_or_default()
            .split(|&b| b == b'\n')
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                let name = grammar::trim(line.get(..colon)?);
                let is_type = name.eq_ignore_ascii_case(b"content-type") || name == b"c";
                is_type.then(|| line.get(colon + 1..).unwrap_or_default())
            })
            .filter_map(|v| {
                grammar::media_type(grammar::trim(v.strip_suffix(b"\r").unwrap_or(v))).ok()
            })
            .any(|(kind, _)| kind == "application/sdp");
        if sdp {
            return true;
        }
        rest = after;
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Option tags in all `Require` headers that are not in `supported` (case-insensitive).
fn unsupported_tags(p: &Parsed<'_>, supported: &[String]) -> Vec<String> {
    p.all("require")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(grammar::trim)
        .filter(|tag| !tag.is_empty())
        .map(|tag| String::from_utf8_lossy(tag).into_owned())
        .filter(|tag| !supported.iter().any(|s| s.eq_ignore_ascii_case(tag)))
        .collect()
}

/// A To tag for a stateless rejection: a hash of the request's identifying fields, so a
/// retransmitted request gets the same tag (RFC 3261 §8.2.6.2 asks for one tag per request).
fn response_tag(p: &Parsed<'_>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for name in ["call-id", "from", "cseq", "via"] {
        for &b in p.header(name).unwrap_or_default() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Adds `received` (when the sent-by host differs from the source) and fills an empty `rport`
/// in the first entry of a Via value.
fn stamp_via(via: &[u8], source: SocketAddr) -> Vec<u8> {
    let first_raw = grammar::split_commas(via)
        .ok()
        .and_then(|entries| entries.first().copied())
        .unwrap_or(via);
    let rest = via.get(first_raw.len()..).unwrap_or_default();
    let ip = source.ip().to_string();
    let mut pieces: Vec<Vec<u8>> = grammar::trim(first_raw)
        .split(|&b| b == b';')
        .map(<[u8]>::to_vec)
        .collect();
    let sent_by_is_source = pieces
        .first()
        .is_some_and(|p| String::from_utf8_lossy(p).contains(ip.as_str()));
    let mut has_received = false;
    for piece in pieces.iter_mut().skip(1) {
        let name = grammar::trim(piece.split(|&b| b == b'=').next().unwrap_or_default());
        if name.eq_ignore_ascii_case(b"received") {
            has_received = true;
        }
        if name.eq_ignore_ascii_case(b"rport") && !piece.contains(&b'=') {
            *piece = format!("rport={}", source.port()).into_bytes();
        }
    }
    let mut out = pieces.join(&b';');
    if !sent_by_is_source && !has_received {
        let _ = write!(Buf(&mut out), ";received={ip}");
    }
    out.extend_from_slice(rest);
    out
}

/// `fmt::Write` over a byte buffer.
struct Buf<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Long name for RFC 3261 §7.3.3 compact forms (and the registered ones of later RFCs),
/// lowercased.
fn canonical_name(name: &[u8]) -> String {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    let long = match lower.as_str() {
        "i" => "call-id",
        "m" => "contact",
        "e" => "content-encoding",
        "l" => "content-length",
        "c" => "content-type",
        "f" => "from",
        "s" => "subject",
        "k" => "supported",
        "t" => "to",
        "v" => "via",
        "o" => "event",
        "r" => "refer-to",
        "b" => "referred-by",
        "u" => "allow-events",
        "x" => "session-expires",
        _ => return lower,
    };
    long.to_owned()
}

/// Headers that carry exactly one value (RFC 3261 §7.3.1; RFC 4475 §3.3.8 multi01, §3.3.9
/// mcl01).
const SINGLE_VALUE: [&str; 7] = [
    "from",
    "to",
    "call-id",
    "cseq",
    "max-forwards",
    "content-length",
    "content-type",
];

/// Methods of RFC 3261 and the extensions a gateway meets (RFC 3262, 3265, 3311, 3428, 3515,
/// 3903, 6086).
const KNOWN_METHODS: [&str; 14] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
];

#[cfg(test)]
mod tests;
