//! Raw SIP probes: a single request over UDP, answered or not.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::PeerError;

/// Sends an out-of-dialog `OPTIONS <request_uri>` over UDP to `target` from a foreign domain
/// (`other.test`, so the testpeers Kamailio does not challenge it) and returns the final status
/// code. Provisional answers are skipped; no answer within 3 s is [`PeerError::Timeout`].
///
/// Through a registrar this tells whether a user is registered: Kamailio relays the OPTIONS to
/// the registered contact (which answers, normally 200) or answers 404 itself.
pub fn sip_options(target: SocketAddr, request_uri: &str) -> Result<u16, PeerError> {
    let io = |context: &str| {
        let context = context.to_owned();
        move |source| PeerError::Io { context, source }
    };
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(io("bind OPTIONS probe socket"))?;
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(io("set probe timeout"))?;
    let local = socket.local_addr().map_err(io("probe local address"))?;
    let request = format!(
        "OPTIONS {request_uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-probe-{port};rport\r\n\
         From: <sip:probe@other.test>;tag=probe{port}\r\n\
         To: <{request_uri}>\r\n\
         Call-ID: probe-{port}@other.test\r\n\
         CSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        port = local.port(),
    );
    socket
        .send_to(request.as_bytes(), target)
        .map_err(io("send OPTIONS probe"))?;
    let mut buf = [0u8; 8192];
    loop {
        let (n, _) = socket.recv_from(&mut buf).map_err(|_| PeerError::Timeout {
            what: format!("an answer to OPTIONS {request_uri} from {target}"),
            after: Duration::from_secs(3),
        })?;
        let text = String::from_utf8_lossy(&buf[..n]);
        let status = parse_status(&text).ok_or_else(|| PeerError::Protocol {
            program: format!("SIP at {target}"),
            reason: format!("not a SIP response: {}", text.lines().next().unwrap_or("")),
        })?;
        if status >= 200 {
            return Ok(status);
        }
    }
}

/// The status code of a SIP response's status line.
fn parse_status(text: &str) -> Option<u16> {
    let mut words = text.lines().next()?.split_whitespace();
    if words.next()? != "SIP/2.0" {
        return None;
    }
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("SIP/2.0 200 OK\r\nVia: x\r\n"), Some(200));
        assert_eq!(parse_status("SIP/2.0 404 Not here\r\n"), Some(404));
        assert_eq!(parse_status("OPTIONS sip:x SIP/2.0\r\n"), None);
        assert_eq!(parse_status(""), None);
    }

    #[test]
    fn answered_by_a_scripted_server() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            server.send_to(b"SIP/2.0 100 Trying\r\n\r\n", from).unwrap();
            server
                .send_to(b"SIP/2.0 486 Busy Here\r\n\r\n", from)
                .unwrap();
            request
        });
        assert_eq!(sip_options(addr, "sip:jigasi@127.0.0.1").unwrap(), 486);
        let request = thread.join().unwrap();
        assert!(request.starts_with("OPTIONS sip:jigasi@127.0.0.1 SIP/2.0\r\n"));
        assert!(request.contains("To: <sip:jigasi@127.0.0.1>\r\n"));
    }
}
