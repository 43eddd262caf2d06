//! The few SIP messages a benchmark caller needs (RFC 3261 over UDP, no proxy): INVITE with a
//! PCMU offer and the `Jitsi-Conference-Room` header, ACK, BYE, 200 to the gateway's requests,
//! and the parts of a response we read.

use std::net::SocketAddr;

/// Why a SIP message from the gateway could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SipError {
    /// Not UTF-8 or no start line.
    #[error("not a SIP message")]
    NotSip,
    /// The SDP answer has no usable `c=` / `m=audio` line.
    #[error("bad SDP answer: {0}")]
    BadSdp(&'static str),
}

/// A parsed SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// `Some(code)` for a response, `None` for a request.
    pub(crate) status: Option<u16>,
    /// The request method (requests only).
    pub(crate) method: Option<String>,
    /// Headers in order: (lower-case name, value).
    pub(crate) headers: Vec<(String, String)>,
    /// The body.
    pub(crate) body: String,
}

impl Message {
    /// Parses one datagram.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, SipError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SipError::NotSip)?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut lines = head.split("\r\n");
        let start = lines.next().ok_or(SipError::NotSip)?;
        let (status, method) = if let Some(rest) = start.strip_prefix("SIP/2.0 ") {
            let code = rest
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .ok_or(SipError::NotSip)?;
            (Some(code), None)
        } else if start.ends_with(" SIP/2.0") {
            let method = start.split_whitespace().next().ok_or(SipError::NotSip)?;
            (None, Some(method.to_owned()))
        } else {
            return Err(SipError::NotSip);
        };
        let headers = lines
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                Some((expand(name.trim()), value.trim().to_owned()))
            })
            .collect();
        Ok(Self {
            status,
            method,
            headers,
            body: body.to_owned(),
        })
    }

    /// The first value of header `name` (lower case, compact forms expanded).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `CSeq` method.
    pub(crate) fn cseq_method(&self) -> Option<&str> {
        self.header("cseq")?.split_whitespace().nth(1)
    }

    /// The URI inside the `Contact` header.
    pub(crate) fn contact_uri(&self) -> Option<String> {
        let contact = self.header("contact")?;
        let uri = match (contact.find('<'), contact.find('>')) {
            (Some(a), Some(b)) if a < b => &contact[a + 1..b],
            _ => contact.split(';').next().unwrap_or(contact),
        };
        Some(uri.trim().to_owned())
    }

    /// The address the SDP body sends audio to (`c=` address, `m=audio` port).
    pub(crate) fn sdp_audio_addr(&self) -> Result<SocketAddr, SipError> {
        let mut ip = None;
        let mut port = None;
        for line in self.body.lines() {
            if let Some(c) = line.strip_prefix("c=IN IP4 ") {
                ip = c.trim().parse::<std::net::IpAddr>().ok();
            } else if let Some(m) = line.strip_prefix("m=audio ") {
                port = m
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.parse::<u16>().ok());
            }
        }
        let ip = ip.ok_or(SipError::BadSdp("no c=IN IP4 line"))?;
        let port = port
            .filter(|&p| p != 0)
            .ok_or(SipError::BadSdp("no m=audio port"))?;
        Ok(SocketAddr::new(ip, port))
    }
}

/// Expands RFC 3261 compact header names and lower-cases.
fn expand(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "v" => "via".into(),
        "f" => "from".into(),
        "t" => "to".into(),
        "i" => "call-id".into(),
        "m" => "contact".into(),
        "l" => "content-length".into(),
        "c" => "content-type".into(),
        _ => lower,
    }
}

/// What identifies one benchmark call's dialog on the caller side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dialog {
    /// Our SIP socket.
    pub(crate) local: SocketAddr,
    /// The gateway's SIP address.
    pub(crate) gateway: SocketAddr,
    /// `sip:jigasi@...` (request URI of the INVITE).
    pub(crate) target: String,
    /// Our user part.
    pub(crate) user: String,
    /// Call-ID.
    pub(crate) call_id: String,
    /// Our From tag.
    pub(crate) tag: String,
    /// The `To` header of the 2xx (with the gateway's tag), once answered.
    pub(crate) remote_to: Option<String>,
    /// The gateway's Contact URI (where in-dialog requests go), once answered.
    pub(crate) remote_target: Option<String>,
}

impl Dialog {
    fn common(&self, branch: &str, cseq: u32, method: &str) -> String {
        let to = self
            .remote_to
            .clone()
            .unwrap_or_else(|| format!("<{}>", self.target));
        format!(
            "Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
             From: <sip:{user}@{ip}>;tag={tag}\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:{user}@{local}>\r\n\
             Max-Forwards: 70\r\n",
            local = self.local,
            ip = self.local.ip(),
            user = self.user,
            tag = self.tag,
            call_id = self.call_id,
        )
    }

    /// The INVITE: a PCMU offer for `rtp` and the room header.
    pub(crate) fn invite(&self, branch: &str, room: &str, rtp: SocketAddr) -> String {
        let sdp = format!(
            "v=0\r\no=bench 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
            ip = rtp.ip(),
            port = rtp.port()
        );
        format!(
            "INVITE {target} SIP/2.0\r\n{common}Jitsi-Conference-Room: {room}\r\n\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            target = self.target,
            common = self.common(branch, 1, "INVITE"),
            len = sdp.len()
        )
    }

    /// ACK for the 2xx.
    pub(crate) fn ack(&self, branch: &str) -> String {
        self.in_dialog("ACK", branch, 1)
    }

    /// BYE.
    pub(crate) fn bye(&self, branch: &str) -> String {
        self.in_dialog("BYE", branch, 2)
    }

    fn in_dialog(&self, method: &str, branch: &str, cseq: u32) -> String {
        let uri = self.remote_target.as_deref().unwrap_or(&self.target);
        format!(
            "{method} {uri} SIP/2.0\r\n{common}Content-Length: 0\r\n\r\n",
            common = self.common(branch, cseq, method)
        )
    }
}

/// A `200 OK` (no body) to a request from the gateway, echoing its dialog headers.
pub(crate) fn ok_to(request: &Message) -> String {
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for via in request.all("via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    for name in ["from", "to", "call-id", "cseq"] {
        if let Some(value) = request.header(name) {
            out.push_str(&format!("{}: {value}\r\n", header_case(name)));
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

fn header_case(name: &str) -> &'static str {
    match name {
        "from" => "From",
        "to" => "To",
        "call-id" => "Call-ID",
        _ => "CSeq",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dialog() -> Dialog {
        Dialog {
            local: "127.0.0.1:40000".parse().unwrap(),
            gateway: "127.0.0.1:5060".parse().unwrap(),
            target: "sip:jigasi@127.0.0.1:5060".into(),
            user: "phone7".into(),
            call_id: "c7@bench".into(),
            tag: "t7".into(),
            remote_to: None,
            remote_target: None,
        }
    }

    #[test]
    fn invite_carries_the_room_and_a_pcmu_offer_with_a_correct_length() {
        let invite = dialog().invite(
            "b1",
            "bench7@conference.x",
            "127.0.0.1:41000".parse().unwrap(),
        );
        let parsed = Message::parse(invite.as_bytes()).unwrap();
        assert_eq!(parsed.method.as_deref(), Some("INVITE"));
        assert_eq!(
            parsed.header("jitsi-conference-room"),
            Some("bench7@conference.x")
        );
        assert_eq!(parsed.cseq_method(), Some("INVITE"));
        let length: usize = parsed.header("content-length").unwrap().parse().unwrap();
        assert_eq!(length, parsed.body.len());
        assert_eq!(
            parsed.sdp_audio_addr().unwrap(),
            "127.0.0.1:41000".parse().unwrap()
        );
    }

    #[test]
    fn a_200_answer_gives_the_dialog_target_and_media_address() {
        let answer = "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKb1\r\n\
            From: <sip:phone7@127.0.0.1>;tag=t7\r\nTo: <sip:jigasi@127.0.0.1>;tag=gw1\r\n\
            i: c7@bench\r\nCSeq: 1 INVITE\r\nm: <sip:jigasi@127.0.0.1:5060;transport=udp>\r\n\
            Content-Length: 60\r\n\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 20004 RTP/AVP 0\r\n";
        let parsed = Message::parse(answer.as_bytes()).unwrap();
        assert_eq!(parsed.status, Some(200));
        assert_eq!(parsed.header("call-id"), Some("c7@bench"));
        assert_eq!(
            parsed.contact_uri().as_deref(),
            Some("sip:jigasi@127.0.0.1:5060;transport=udp")
        );
        assert_eq!(
            parsed.sdp_audio_addr().unwrap(),
            "127.0.0.1:20004".parse().unwrap()
        );
        let mut dialog = dialog();
        dialog.remote_to = parsed.header("to").map(str::to_owned);
        dialog.remote_target = parsed.contact_uri();
        let bye = dialog.bye("b2");
        assert!(bye.starts_with("BYE sip:jigasi@127.0.0.1:5060;transport=udp SIP/2.0\r\n"));
        assert!(bye.contains("To: <sip:jigasi@127.0.0.1>;tag=gw1\r\n"));
        assert!(bye.contains("CSeq: 2 BYE\r\n"));
        let ok = ok_to(&Message::parse(bye.as_bytes()).unwrap());
        assert!(ok.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:40000"));
        assert!(ok.contains("CSeq: 2 BYE\r\n"));
    }

    #[test]
    fn garbage_and_bad_sdp_are_typed_errors() {
        assert_eq!(Message::parse(b"\xff\xfe"), Err(SipError::NotSip));
        assert_eq!(
            Message::parse(b"HELLO there\r\n\r\n"),
            Err(SipError::NotSip)
        );
        assert_eq!(
            Message::parse(b"SIP/2.0 abc OK\r\n\r\n"),
            Err(SipError::NotSip)
        );
        let no_port =
            Message::parse(b"SIP/2.0 200 OK\r\n\r\nc=IN IP4 127.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n")
                .unwrap();
        assert!(matches!(no_port.sdp_audio_addr(), Err(SipError::BadSdp(_))));
    }
}
