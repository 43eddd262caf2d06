#![allow(clippy::unwrap_used)]

use super::*;

const INVITE: &str = "INVITE sip:room@gw.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKproxy1\r\n\
Max-Forwards: 70\r\n\
To: <sip:room@gw.example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.10>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

fn invite_with(replace: &str, with: &str) -> Vec<u8> {
    assert!(INVITE.contains(replace), "{replace}");
    INVITE.replacen(replace, with, 1).into_bytes()
}

fn reject(status: u16, reason: &'static str) -> Verdict {
    Verdict::Reject {
        status,
        reason,
        respond: true,
    }
}

#[test]
fn a_plain_invite_is_accepted_and_its_length_reported() {
    let (verdict, info) = CheckPolicy::default().check_with_info(INVITE.as_bytes());
    assert_eq!(verdict, Verdict::Accept);
    assert_eq!(info.unwrap().length, INVITE.len());
}

#[test]
fn content_length_rules_per_transport() {
    // Shorter body than declared: 400 on UDP, "wait for more" on a stream.
    let long = invite_with("Content-Length: 4", "Content-Length: 40");
    assert_eq!(check_message(&long), reject(400, "Content-Length Mismatch"));
    let stream = CheckPolicy {
        transport: Transport::Stream,
        ..CheckPolicy::default()
    };
    assert_eq!(
        stream.check(&long),
        Verdict::Drop {
            why: DropReason::Incomplete
        }
    );
    // Longer body than declared: the extra bytes are not part of the message.
    let short = invite_with("Content-Length: 4", "Content-Length: 2");
    let (verdict, info) = CheckPolicy::default().check_with_info(&short);
    assert_eq!(verdict, Verdict::Accept);
    assert_eq!(info.unwrap().length, INVITE.len() - 2);
    // No Content-Length: fine on UDP (the datagram ends the body), an error on a stream.
    let none = invite_with("Content-Length: 4\r\n", "");
    assert_eq!(check_message(&none), Verdict::Accept);
    assert_eq!(stream.check(&none), reject(400, "Bad Content-Length"));
}

#[test]
fn leading_crlf_is_skipped_and_counted() {
    let mut message = b"\r\n\r\n".to_vec();
    message.extend_from_slice(INVITE.as_bytes());
    let (verdict, info) = CheckPolicy::default().check_with_info(&message);
    assert_eq!(verdict, Verdict::Accept);
    assert_eq!(info.unwrap().length, message.len());
}

#[test]
fn keep_alives_and_garbage_are_dropped() {
    for bytes in [&b"\r\n\r\n"[..], b"\r\n", b"   "] {
        assert_eq!(
            check_message(bytes),
            Verdict::Drop {
                why: DropReason::KeepAlive
            }
        );
    }
    for bytes in [&b"\x00\x01\x02"[..], b"<xml/>", b"\x16\x03\x01 TLS hello"] {
        assert_eq!(
            check_message(bytes),
            Verdict::Drop {
                why: DropReason::Garbage
            }
        );
    }
    // Looks like a request but has nothing to address an answer to.
    assert_eq!(
        check_message(b"INVITE sip:x@y SIP/2.0\r\n\r\n"),
        Verdict::Drop {
            why: DropReason::Unanswerable
        }
    );
}

#[test]
fn ack_is_never_answered() {
    let ack = INVITE
        .replace("INVITE sip:", "ACK sip:")
        .replace("314159 INVITE", "314159 ACK")
        .replace("Content-Length: 4", "Content-Length: 9");
    assert_eq!(
        check_message(ack.as_bytes()),
        Verdict::Reject {
            status: 400,
            reason: "Content-Length Mismatch",
            respond: false
        }
    );
    assert_eq!(reject_response(ack.as_bytes(), 400, "Bad"), None);
    // An ACK with Max-Forwards 0 still reaches the stack: it completes a transaction.
    let ack0 = INVITE
        .replace("INVITE sip:", "ACK sip:")
        .replace("314159 INVITE", "314159 ACK")
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(check_message(ack0.as_bytes()), Verdict::Accept);
}

#[test]
fn oversized_requests_get_513() {
    let policy = CheckPolicy {
        max_message_bytes: 200,
        ..CheckPolicy::default()
    };
    assert_eq!(
        policy.check(INVITE.as_bytes()),
        reject(513, "Message Too Large")
    );
    let mut huge = b"INVITE sip:x@y SIP/2.0\r\n".to_vec();
    huge.resize(300, b'a');
    assert_eq!(
        policy.check(&huge),
        Verdict::Drop {
            why: DropReason::TooLarge
        }
    );
}

#[test]
fn body_types_for_invite() {
    let other = invite_with("application/sdp", "application/unknownformat");
    assert_eq!(check_message(&other), reject(415, "Unsupported Media Type"));
    let missing = invite_with("Content-Type: application/sdp\r\n", "");
    assert_eq!(check_message(&missing), reject(400, "Missing Content-Type"));
    let no_boundary = invite_with("application/sdp", "multipart/mixed");
    assert_eq!(check_message(&no_boundary), reject(400, "Bad Content-Type"));
    let gzip = invite_with(
        "Content-Length: 4",
        "Content-Encoding: gzip\r\nContent-Length: 4",
    );
    assert_eq!(check_message(&gzip), reject(415, "Unsupported Media Type"));
    // INFO bodies (DTMF relay, Jigasi's JSON) are not our business here.
    let info = INVITE
        .replace("INVITE sip:", "INFO sip:")
        .replace("314159 INVITE", "314159 INFO")
        .replace("application/sdp", "application/json");
    assert_eq!(check_message(info.as_bytes()), Verdict::Accept);
}

#[test]
fn multipart_invite_needs_an_sdp_part() {
    let body = "--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--b1\r\n\
                Content-Type: application/isup\r\n\r\nxx\r\n--b1--\r\n";
    let with_sdp = INVITE
        .replace(
            "Content-Type: application/sdp",
            "Content-Type: multipart/mixed;boundary=b1",
        )
        .replace(
            "Content-Length: 4",
            &format!("Content-Length: {}", body.len()),
        )
        .replace("v=0\n", body);
    assert_eq!(check_message(with_sdp.as_bytes()), Verdict::Accept);
    let without = with_sdp.replace("application/sdp", "application/xml");
    assert_eq!(
        check_message(without.as_bytes()),
        reject(415, "Unsupported Media Type")
    );
}

#[test]
fn require_and_supported_extensions() {
    let timer = invite_with(
        "Max-Forwards: 70",
        "Max-Forwards: 70\r\nRequire: timer, 100rel",
    );
    assert_eq!(check_message(&timer), reject(420, "Bad Extension"));
    let policy = CheckPolicy {
        supported_extensions: vec!["timer".into(), "100rel".into()],
        ..CheckPolicy::default()
    };
    assert_eq!(policy.check(&timer), Verdict::Accept);
    let response =
        String::from_utf8(reject_response(&timer, 420, "Bad Extension").unwrap()).unwrap();
    assert!(
        response.contains("\r\nUnsupported: timer, 100rel\r\n"),
        "{response}"
    );
    let partial = CheckPolicy {
        supported_extensions: vec!["TIMER".into()],
        ..CheckPolicy::default()
    };
    assert_eq!(partial.check(&timer), reject(420, "Bad Extension"));
    let response = String::from_utf8(
        partial
            .reject_response(&timer, 420, "Bad Extension", None)
            .unwrap(),
    )
    .unwrap();
    assert!(
        response.contains("\r\nUnsupported: 100rel\r\n"),
        "{response}"
    );
}

#[test]
fn reject_response_copies_the_transaction_headers() {
    let response = reject_response(INVITE.as_bytes(), 486, "Busy Here").unwrap();
    let text = String::from_utf8(response.clone()).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines[0], "SIP/2.0 486 Busy Here");
    assert_eq!(
        lines[1],
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport"
    );
    assert_eq!(
        lines[2],
        "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKproxy1"
    );
    assert_eq!(
        lines[3],
        "From: \"Alice\" <sip:alice@example.com>;tag=1928301774"
    );
    assert!(
        lines[4].starts_with("To: <sip:room@gw.example.com>;tag="),
        "{}",
        lines[4]
    );
    assert_eq!(lines[5], "Call-ID: a84b4c76e66710@pc33.example.com");
    assert_eq!(lines[6], "CSeq: 314159 INVITE");
    assert_eq!(lines[7], "Content-Length: 0");
    assert!(text.ends_with("\r\n\r\n"));
    // The same request gets the same tag (retransmissions), and the response is valid SIP.
    assert_eq!(
        reject_response(INVITE.as_bytes(), 486, "Busy Here").unwrap(),
        response
    );
    assert_eq!(check_message(&response), Verdict::Accept);
    // A To tag already present is kept as is.
    let tagged = invite_with(
        "<sip:room@gw.example.com>",
        "<sip:room@gw.example.com>;tag=abc",
    );
    let text = String::from_utf8(reject_response(&tagged, 481, "Gone").unwrap()).unwrap();
    assert!(
        text.contains("\r\nTo: <sip:room@gw.example.com>;tag=abc\r\n"),
        "{text}"
    );
}

#[test]
fn reject_response_stamps_received_and_rport() {
    let source: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    let response = reject_response_from(INVITE.as_bytes(), 400, "Bad", Some(source)).unwrap();
    let text = String::from_utf8(response).unwrap();
    assert!(
        text.contains(
            "\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport=40000;received=198.51.100.7\r\n"
        ),
        "{text}"
    );
}

#[test]
fn reject_response_refuses_what_it_cannot_address() {
    assert_eq!(reject_response(b"", 400, "x"), None);
    assert_eq!(reject_response(b"\xff\xfe", 400, "x"), None);
    let no_via = invite_with(
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\nVia: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKproxy1\r\n",
        "",
    );
    assert_eq!(reject_response(&no_via, 400, "x"), None);
    // Responses are never answered.
    let ok = reject_response(INVITE.as_bytes(), 486, "Busy Here").unwrap();
    assert_eq!(reject_response(&ok, 400, "x"), None);
    // A reason phrase cannot inject header lines.
    let text =
        String::from_utf8(reject_response(INVITE.as_bytes(), 400, "Bad\r\nX-Evil: 1").unwrap())
            .unwrap();
    assert!(text.starts_with("SIP/2.0 400 BadX-Evil: 1\r\n"), "{text}");
}

#[test]
fn compact_and_folded_headers() {
    let compact = "OPTIONS sip:gw.example.com SIP/2.0\r\n\
v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n\
f: <sip:a@example.com>;tag=1\r\n\
t: sip:gw.example.com\r\n\
i: abc@def\r\n\
CSeq: 1\r\n  OPTIONS\r\n\
Max-Forwards: 70\r\n\
l: 0\r\n\r\n";
    assert_eq!(check_message(compact.as_bytes()), Verdict::Accept);
    let continuation_first = "OPTIONS sip:gw.example.com SIP/2.0\r\n folded\r\n\r\n";
    assert_eq!(
        check_message(continuation_first.as_bytes()),
        Verdict::Drop {
            why: DropReason::Unanswerable
        }
    );
}

/// xorshift64*: a tiny seeded generator, so the fuzz loops are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_bytes_and_mutations_never_panic() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let alphabet = b"SIP/2.0 INVITE sip:@;=<>\"\\,:\r\n\t%0123456789abcXYZ\x00\xff";
    let seeds: Vec<Vec<u8>> = vec![
        INVITE.as_bytes().to_vec(),
        reject_response(INVITE.as_bytes(), 486, "Busy Here").unwrap(),
    ];
    for round in 0..20_000 {
        let bytes: Vec<u8> = if round % 3 == 0 {
            let len = rng.below(300);
            (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect()
        } else {
            let mut m = seeds[rng.below(seeds.len())].clone();
            for _ in 0..=rng.below(8) {
                let at = rng.below(m.len() + 1);
                match rng.below(4) {
                    0 if at < m.len() => m[at] = (rng.next() & 0xff) as u8,
                    1 if at < m.len() => {
                        m.remove(at);
                    }
                    2 => m.insert(at, alphabet[rng.below(alphabet.len())]),
                    _ => m.truncate(at),
                }
            }
            m
        };
        for transport in [Transport::Datagram, Transport::Stream] {
            let policy = CheckPolicy {
                transport,
                ..CheckPolicy::default()
            };
            let (verdict, info) = policy.check_with_info(&bytes);
            if let Some(info) = info {
                assert!(info.length <= bytes.len());
            }
            if let Verdict::Reject {
                status,
                reason,
                respond: true,
            } = verdict
            {
                // Whatever we decided to answer, we can build the answer.
                let response = reject_response(&bytes, status, reason);
                assert!(response.is_some(), "{:?}", String::from_utf8_lossy(&bytes));
            }
        }
    }
}
