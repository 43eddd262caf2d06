//! Redaction of personal data (phone numbers, SIP URIs, JIDs) in logs.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether [`Pii`] values are shown in full. Off by default; the binary turns it on when the log
/// level is `debug` or more verbose, so personal data appears only in debug logs.
static SHOW_PII: AtomicBool = AtomicBool::new(false);

/// Shows (`true`) or redacts (`false`) every [`Pii`] value from now on.
pub fn set_show_pii(show: bool) {
    SHOW_PII.store(show, Ordering::Relaxed);
}

/// A piece of personal data to be logged: a phone number, a SIP URI or a JID.
///
/// `Display` keeps what is useful for operations and hides who it is: the domain of an address
/// (`sip:***@pbx.example.com`, `***@meet.example.com/***`) or the last two digits of a number
/// (`***42`). With [`set_show_pii`]`(true)` the value is shown as is.
#[derive(Clone, Copy)]
pub struct Pii<'a>(pub &'a str);

impl fmt::Display for Pii<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if SHOW_PII.load(Ordering::Relaxed) {
            return f.write_str(self.0);
        }
        write_redacted(self.0, f)
    }
}

impl fmt::Debug for Pii<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

fn write_redacted(value: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if let Some((user, host)) = value.split_once('@') {
        // Keep a URI scheme (sip:, sips:, tel:, xmpp:) and the host; hide a JID resource.
        let scheme = user.find(':').map_or("", |i| &user[..=i]);
        let host = host.split_once('/').map_or(host, |(domain, _)| domain);
        let resource = if value.contains('/') { "/***" } else { "" };
        return write!(f, "{scheme}***@{host}{resource}");
    }
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if digits >= 3 && digits * 2 >= value.chars().count() {
        let tail: String = value
            .chars()
            .filter(char::is_ascii_digit)
            .skip(digits - 2)
            .collect();
        return write!(f, "***{tail}");
    }
    f.write_str("***")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_domains_and_last_digits_only() {
        // SHOW_PII is process-global; this is the only test that touches it.
        set_show_pii(false);
        assert_eq!(
            Pii("sip:+4930123456@pbx.example.com").to_string(),
            "sip:***@pbx.example.com"
        );
        assert_eq!(
            Pii("jigasi@auth.meet.example.com").to_string(),
            "***@auth.meet.example.com"
        );
        assert_eq!(
            Pii("room@conference.meet.example.com/abcd1234").to_string(),
            "***@conference.meet.example.com/***"
        );
        assert_eq!(Pii("+49 30 1234 5642").to_string(), "***42");
        assert_eq!(Pii("alice").to_string(), "***");
        assert_eq!(format!("{:?}", Pii("alice")), "\"***\"");
        set_show_pii(true);
        assert_eq!(
            Pii("sip:+4930123456@pbx.example.com").to_string(),
            "sip:+4930123456@pbx.example.com"
        );
        set_show_pii(false);
    }
}
