//! Message validation before the stack: the adapter between the raw-datagram screen
//! ([`crate::udp`]) and the pure validator of `jigasi-sip-core` (RFC 3261, RFC 4475).

use std::net::SocketAddr;

use jigasi_sip_core::validate::{CheckPolicy, DropReason, Verdict as Check, reject_response_from};

use crate::udp::Verdict;

/// Judges one complete UDP datagram from `from`.
pub(crate) fn screen_message(datagram: &[u8], from: SocketAddr) -> Verdict {
    let (check, info) = CheckPolicy::default().check_with_info(datagram);
    match check {
        // RFC 3261 §18.3: on UDP, bytes past Content-Length are discarded.
        Check::Accept => {
            Verdict::Pass(info.map_or(datagram.len(), |i| i.length.min(datagram.len())))
        }
        Check::Reject {
            status,
            reason,
            respond: true,
        } => match reject_response_from(datagram, status, reason, Some(from)) {
            Some(response) => Verdict::Answer(response),
            None => Verdict::Drop("malformed request that cannot be answered"),
        },
        Check::Reject { respond: false, .. } => Verdict::Drop("malformed ACK"),
        // The stack answers the RFC 5626 CRLF ping itself.
        Check::Drop {
            why: DropReason::KeepAlive,
        } => Verdict::Pass(datagram.len()),
        Check::Drop { why } => Verdict::Drop(drop_reason(why)),
    }
}

fn drop_reason(why: DropReason) -> &'static str {
    match why {
        DropReason::KeepAlive => "keep-alive",
        DropReason::Garbage => "garbage",
        DropReason::Unanswerable => "request without Via or CSeq",
        DropReason::BadStatusLine => "response with a bad status line",
        DropReason::MalformedResponse => "malformed response",
        DropReason::Incomplete => "incomplete message",
        DropReason::TooLarge => "too large",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: &str = "127.0.0.1:5070";

    #[test]
    fn valid_options_passes_whole() {
        let msg = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: 1@x\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            screen_message(msg, FROM.parse().unwrap_or_else(|_| unreachable!())),
            Verdict::Pass(msg.len())
        );
    }

    #[test]
    fn wrong_version_is_answered_505() {
        let msg = b"OPTIONS sip:a@127.0.0.1 SIP/7.0\r\nVia: SIP/7.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: 1@x\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        match screen_message(msg, FROM.parse().unwrap_or_else(|_| unreachable!())) {
            Verdict::Answer(response) => {
                let text = String::from_utf8_lossy(&response);
                assert!(text.starts_with("SIP/2.0 505"), "{text}");
            }
            other @ (Verdict::Pass(_) | Verdict::Drop(_)) => {
                panic!("expected an answer, got {other:?}")
            }
        }
    }

    #[test]
    fn keepalive_reaches_the_stack_and_garbage_does_not() {
        let from = FROM.parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(screen_message(b"\r\n\r\n", from), Verdict::Pass(4));
        assert_eq!(
            screen_message(&[0xff, 0, 7, 1], from),
            Verdict::Drop("garbage")
        );
    }
}
