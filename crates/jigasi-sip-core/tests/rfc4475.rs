//! The 49 RFC 4475 torture messages against [`check_message`], with the verdict we decided for
//! each (documented in `RFC4475.md`).
//!
//! The corpus lives outside the repository, in the shared `conformance/rfc4475/` directory next to
//! the work tree. Without it the test is skipped with a message, unless `CI=true`, where a missing
//! corpus fails.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use jigasi_sip_core::validate::{CheckPolicy, DropReason, Verdict, check_message, reject_response};

/// What we expect for one file.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Accepted and handed to the stack.
    Accept,
    /// Rejected with this status and reason, answered.
    Reject(u16, &'static str),
    /// Dropped silently.
    Drop(DropReason),
}

use Expect::{Accept, Drop, Reject};

/// File stem → expected verdict. Section numbers are RFC 4475's.
const TABLE: [(&str, Expect); 49] = [
    // §3.1.1 valid messages
    ("wsinv", Accept),
    ("intmeth", Accept),
    ("esc01", Accept),
    ("escnull", Accept),
    ("esc02", Accept),
    ("lwsdisp", Accept),
    ("longreq", Accept),
    ("dblreq", Accept),
    ("semiuri", Accept),
    ("transports", Accept),
    ("mpart01", Accept),
    ("unreason", Accept),
    ("noreason", Accept),
    // §3.1.2 invalid messages
    ("badinv01", Reject(400, "Bad Via")),
    ("clerr", Reject(400, "Content-Length Mismatch")),
    ("ncl", Reject(400, "Bad Content-Length")),
    ("scalar02", Reject(400, "Bad CSeq")),
    ("scalarlg", Drop(DropReason::MalformedResponse)),
    ("quotbal", Reject(400, "Bad To")),
    ("ltgtruri", Reject(400, "Bad Request-URI")),
    ("lwsruri", Reject(400, "Bad Request Line")),
    ("lwsstart", Reject(400, "Bad Request Line")),
    ("trws", Reject(400, "Bad Request Line")),
    ("escruri", Reject(400, "Headers Not Allowed In Request-URI")),
    ("baddate", Reject(400, "Bad Date")),
    ("regbadct", Reject(400, "Bad Contact")),
    ("badaspec", Reject(400, "Bad To")),
    ("baddn", Reject(400, "Bad From")),
    ("badvers", Reject(505, "Version Not Supported")),
    ("mismatch01", Reject(400, "CSeq Method Mismatch")),
    ("mismatch02", Reject(501, "Not Implemented")),
    ("bigcode", Drop(DropReason::BadStatusLine)),
    // §3.2 transaction layer
    ("badbranch", Reject(400, "Missing Transaction Identifier")),
    // §3.3 application layer
    ("insuf", Reject(400, "Missing Mandatory Header")),
    ("unkscm", Reject(416, "Unsupported URI Scheme")),
    ("novelsc", Reject(416, "Unsupported URI Scheme")),
    ("unksm2", Reject(400, "Address-of-Record Must Be SIP")),
    ("bext01", Reject(420, "Bad Extension")),
    ("invut", Reject(415, "Unsupported Media Type")),
    ("regaut01", Accept),
    ("multi01", Reject(400, "Repeated Single-Value Header")),
    ("mcl01", Reject(400, "Repeated Single-Value Header")),
    ("bcast", Accept),
    ("zeromf", Reject(483, "Too Many Hops")),
    ("cparam01", Accept),
    ("cparam02", Accept),
    ("regescrt", Accept),
    ("sdp01", Reject(406, "Not Acceptable")),
    // §3.4 backward compatibility
    ("inv2543", Reject(400, "Missing Mandatory Header")),
];

fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/rfc4475");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "RFC 4475 corpus missing at {} (required under CI=true)",
        dir.display()
    );
    eprintln!("skipping: RFC 4475 corpus not found at {}", dir.display());
    None
}

#[test]
fn every_torture_message_gets_its_decided_verdict() {
    let Some(dir) = corpus_dir() else { return };
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".dat").map(str::to_owned)
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = TABLE.iter().map(|(f, _)| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(files, listed, "the table must cover exactly the corpus");

    let mut failures = Vec::new();
    for (file, expect) in TABLE {
        let bytes = std::fs::read(dir.join(format!("{file}.dat"))).unwrap();
        let got = check_message(&bytes);
        let ok = match (expect, &got) {
            (Accept, Verdict::Accept) => true,
            (
                Reject(status, reason),
                Verdict::Reject {
                    status: s,
                    reason: r,
                    respond: true,
                },
            ) => status == *s && reason == *r,
            (Drop(why), Verdict::Drop { why: w }) => why == *w,
            _ => false,
        };
        if !ok {
            failures.push(format!("{file}: expected {expect:?}, got {got:?}"));
            continue;
        }
        if let Reject(status, reason) = expect {
            let response = reject_response(&bytes, status, reason)
                .unwrap_or_else(|| panic!("{file}: no response built"));
            let first_line = format!("SIP/2.0 {status} {reason}\r\n");
            assert!(response.starts_with(first_line.as_bytes()), "{file}");
            assert!(
                response.ends_with(b"\r\nContent-Length: 0\r\n\r\n"),
                "{file}"
            );
            let text = String::from_utf8_lossy(&response);
            match file {
                "bext01" => assert!(text.contains(
                    "\r\nUnsupported: nothingSupportsThis, nothingSupportsThisEither\r\n"
                )),
                "invut" => assert!(text.contains("\r\nAccept: application/sdp\r\n")),
                _ => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn responses_to_well_formed_rejects_are_themselves_valid() {
    let Some(dir) = corpus_dir() else { return };
    // Rejected requests whose Via/From/To/Call-ID are fine: our answer must parse as a response.
    for (file, expect) in TABLE {
        let Reject(status, reason) = expect else {
            continue;
        };
        if matches!(
            file,
            "badinv01" | "quotbal" | "badaspec" | "baddn" | "insuf" | "scalar02"
        ) {
            continue; // the request's own copied headers are the broken part
        }
        let bytes = std::fs::read(dir.join(format!("{file}.dat"))).unwrap();
        let response = reject_response(&bytes, status, reason).unwrap();
        assert_eq!(check_message(&response), Verdict::Accept, "{file}");
    }
}

#[test]
fn double_request_is_cut_at_content_length() {
    let Some(dir) = corpus_dir() else { return };
    let bytes = std::fs::read(dir.join("dblreq.dat")).unwrap();
    let (verdict, info) = CheckPolicy::default().check_with_info(&bytes);
    assert_eq!(verdict, Verdict::Accept);
    let message = &bytes[..info.unwrap().length];
    assert!(message.ends_with(b"Content-Length: 0\r\n\r\n"));
    assert!(!message.windows(6).any(|w| w == b"INVITE"));
}
