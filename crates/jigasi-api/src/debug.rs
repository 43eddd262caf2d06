//! `GET /debug`: the running calls in Jigasi's shape
//! (`{"gateways":{"<id>":{"sessions":{"<name>":{"jvbConference":{...}}}}}}`), plus our own
//! fields per session.
//!
//! Personal data: the caller's (or callee's) display name and SIP URI / number are shown the way
//! the logs show them ([`jigasi_types::Pii`]: redacted unless the log level is `debug` or more
//! verbose). The room JID and the nick are shown in full: they name the conference, not a
//! person, and are what `/debug` is for (finding a call's room); the endpoint listens on
//! 127.0.0.1 unless configured otherwise.

use std::collections::BTreeMap;

use jigasi_types::Pii;

/// The running calls, as the runtime's call registry sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DebugSnapshot {
    /// One entry per call, oldest first.
    pub calls: Vec<DebugCall>,
}

/// Which side started a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDirection {
    /// A phone called in.
    In,
    /// The conference called a phone (Rayo dial).
    Out,
}

/// One running call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugCall {
    /// Our call id (also in the logs).
    pub call_id: u64,
    /// Dial-in or dial-out.
    pub direction: CallDirection,
    /// The caller's display name (dial-in) or the number dialled (dial-out). Personal data.
    pub display_name: String,
    /// The caller's SIP URI (dial-in) or the number dialled (dial-out). Personal data.
    pub remote: String,
    /// The conference room JID.
    pub room: String,
    /// Our occupant nick in the room, once known.
    pub nick: Option<String>,
    /// The SIP side: `ringing`, `idle`, `calling`, `answered` or `ended`.
    pub sip_state: String,
    /// When the call started, `yyyy-MM-dd HH:mm:ss.SSS` UTC.
    pub started: String,
    /// The phone's codec (`name/clock rate`) once agreed.
    pub codec: Option<String>,
    /// Phones sharing this call's audio engine: the phones of its room on this gateway, which
    /// hear each other directly and share the decoding of the conference's streams.
    pub media_phones: usize,
}

impl DebugSnapshot {
    /// The `/debug` JSON. All calls belong to our one SIP gateway, keyed `sip`; a session is
    /// keyed by its (redacted) display name, with ` #<call id>` added when two share one.
    pub fn to_json(&self) -> serde_json::Value {
        let mut sessions = serde_json::Map::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for call in &self.calls {
            let name = Pii(&call.display_name).to_string();
            *seen.entry(name).or_default() += 1;
        }
        for call in &self.calls {
            let name = Pii(&call.display_name).to_string();
            let key = if seen.get(&name).copied().unwrap_or(0) > 1 {
                format!("{name} #{}", call.call_id)
            } else {
                name
            };
            sessions.insert(key, call.to_json());
        }
        serde_json::json!({ "gateways": { "sip": { "sessions": sessions } } })
    }
}

impl DebugCall {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "jvbConference": {
                "meetingUrl": self.room,
                // Jigasi shows the room's meeting id; jigasi-rs does not read it (yet).
                "meetingId": serde_json::Value::Null,
                "nick": self.nick,
            },
            "callId": self.call_id,
            "direction": match self.direction {
                CallDirection::In => "in",
                CallDirection::Out => "out",
            },
            "remote": Pii(&self.remote).to_string(),
            "roomJid": self.room,
            "sipState": self.sip_state,
            "started": self.started,
            "codec": self.codec,
            "mediaPhones": self.media_phones,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: u64, name: &str) -> DebugCall {
        DebugCall {
            call_id: id,
            direction: CallDirection::In,
            display_name: name.into(),
            remote: "sip:+4930123456@pbx.example.com".into(),
            room: "room1@conference.meet.example.com".into(),
            nick: Some("0a1b2c3d".into()),
            sip_state: "answered".into(),
            started: "2026-11-22 05:06:07.089".into(),
            codec: Some("PCMU/8000".into()),
            media_phones: 2,
        }
    }

    #[test]
    fn jigasi_shape_with_personal_data_redacted() {
        let snapshot = DebugSnapshot {
            calls: vec![call(7, "+4930123456")],
        };
        let json = snapshot.to_json();
        let sessions = json["gateways"]["sip"]["sessions"]
            .as_object()
            .expect("sessions");
        assert_eq!(sessions.len(), 1);
        let (name, session) = sessions.iter().next().expect("one session");
        assert!(!name.contains("30123456"), "{name}");
        assert_eq!(
            session["jvbConference"]["meetingUrl"],
            "room1@conference.meet.example.com"
        );
        assert_eq!(session["jvbConference"]["nick"], "0a1b2c3d");
        assert!(session["jvbConference"]["meetingId"].is_null());
        assert_eq!(session["callId"], 7);
        assert_eq!(session["direction"], "in");
        assert_eq!(session["sipState"], "answered");
        assert_eq!(session["codec"], "PCMU/8000");
        assert_eq!(session["mediaPhones"], 2);
        assert_eq!(session["remote"], "sip:***@pbx.example.com");
    }

    #[test]
    fn equal_names_get_the_call_id() {
        let snapshot = DebugSnapshot {
            calls: vec![call(1, "Alice"), call(2, "Alice"), call(3, "Bob")],
        };
        let json = snapshot.to_json();
        let sessions = json["gateways"]["sip"]["sessions"]
            .as_object()
            .expect("sessions");
        assert_eq!(sessions.len(), 3);
        assert_eq!(
            sessions
                .values()
                .map(|s| s["callId"].as_u64().expect("id"))
                .collect::<std::collections::BTreeSet<_>>(),
            [1, 2, 3].into()
        );
    }

    #[test]
    fn no_calls_no_sessions() {
        let json = DebugSnapshot::default().to_json();
        assert_eq!(
            json,
            serde_json::json!({ "gateways": { "sip": { "sessions": {} } } })
        );
    }
}
