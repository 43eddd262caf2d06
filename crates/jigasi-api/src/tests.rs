//! The API over a real socket, with plain HTTP/1.1 requests.

#![allow(clippy::unwrap_used)]

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

struct Fixture {
    addr: SocketAddr,
    health: watch::Sender<Health>,
    stats: watch::Sender<StatsSnapshot>,
    debug: watch::Sender<DebugSnapshot>,
    graceful: CancellationToken,
    stop: CancellationToken,
}

async fn start(enable_shutdown: bool) -> Fixture {
    start_with(enable_shutdown, true).await
}

async fn start_with(enable_shutdown: bool, call_control: bool) -> Fixture {
    let (health, health_rx) = watch::channel(Health::NotReady);
    let (stats, stats_rx) = watch::channel(StatsSnapshot::default());
    let (debug, debug_rx) = watch::channel(DebugSnapshot::default());
    let graceful = CancellationToken::new();
    let stop = CancellationToken::new();
    let commands = call_control.then(|| {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(fake_runtime(rx));
        tx
    });
    let state = ApiState {
        health: health_rx,
        stats: stats_rx,
        debug: debug_rx,
        graceful_shutdown: enable_shutdown.then(|| graceful.clone()),
        call_control: commands,
        version: "9.9.9".into(),
    };
    let running = serve("127.0.0.1:0".parse().unwrap(), state, stop.clone())
        .await
        .unwrap();
    Fixture {
        addr: running.local_addr,
        health,
        stats,
        debug,
        graceful,
        stop,
    }
}

/// Answers brewery commands like the runtime: accounts by id with their `ACCOUNT_UID`; an
/// account without `USER_ID` is invalid, the id `unsaved` cannot be saved.
async fn fake_runtime(mut commands: tokio::sync::mpsc::Receiver<MucCommand>) {
    let mut accounts = std::collections::BTreeMap::from([(
        "acc-1".to_owned(),
        Some("Jabber:jigasi@auth.example.com".to_owned()),
    )]);
    while let Some(command) = commands.recv().await {
        match command {
            MucCommand::Add {
                id,
                properties,
                reply,
            } => {
                let uid = properties.get("ACCOUNT_UID").cloned();
                let outcome = if !properties.contains_key("USER_ID") {
                    AddOutcome::Invalid {
                        reason: format!("jabber.{id}.USER_ID is missing"),
                    }
                } else if id == "unsaved" {
                    AddOutcome::Failed {
                        reason: "cannot write the properties file".into(),
                    }
                } else {
                    match accounts.insert(id, uid.clone()) {
                        None => AddOutcome::Added,
                        Some(old) if old == uid => AddOutcome::Unchanged,
                        Some(_) => AddOutcome::Replaced,
                    }
                };
                let _ = reply.send(outcome);
            }
            MucCommand::Remove { id, reply } => {
                let outcome = match accounts.remove(&id) {
                    Some(_) => RemoveOutcome::Removed,
                    None => RemoveOutcome::NotFound,
                };
                let _ = reply.send(outcome);
            }
            MucCommand::List { reply } => {
                let _ = reply.send(accounts.keys().cloned().collect());
            }
        }
    }
}

/// One request; returns (status, raw headers, body).
async fn request(addr: SocketAddr, method: &str, path: &str, extra: &str) -> (u16, String, String) {
    request_with_body(addr, method, path, extra, "").await
}

/// One request with a body; returns (status, raw headers, body).
async fn request_with_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &str,
    body: &str,
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let text = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    );
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test]
async fn health_follows_the_runtime_state() {
    let f = start(false).await;
    let (status, _, body) = request(f.addr, "GET", "/about/health", "").await;
    assert_eq!((status, body.as_str()), (503, ""));

    f.health.send_replace(Health::Healthy);
    let (status, head, body) = request(f.addr, "GET", "/about/health", "").await;
    assert_eq!((status, body.as_str()), (200, "{}"));
    assert!(
        head.contains("content-type: application/json;charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("access-control-allow-origin: *"), "{head}");

    f.health.send_replace(Health::Unhealthy {
        reason: "brewery acc-xmpp-1: connection refused".into(),
    });
    let (status, _, body) = request(f.addr, "GET", "/about/health", "").await;
    assert_eq!(status, 500);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["reason"], "brewery acc-xmpp-1: connection refused");
    f.stop.cancel();
}

#[tokio::test]
async fn version_and_stats() {
    let f = start(false).await;
    let (status, _, body) = request(f.addr, "GET", "/about/version", "").await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["name"], "jigasi-rs");
    assert_eq!(body["version"], "9.9.9");

    f.stats.send_modify(|s| {
        s.conferences = 3;
        s.participants = 11;
        s.stress_level = 0.03;
    });
    let (status, _, body) = request(f.addr, "GET", "/about/stats", "").await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["conferences"], 3);
    assert_eq!(body["participants"], 11);
    assert_eq!(body["stress_level"], 0.03);
    let timestamp = body["current_timestamp"].as_str().unwrap();
    assert_eq!(
        timestamp.len(),
        "2026-11-22 05:06:07.089".len(),
        "{timestamp}"
    );
    f.stop.cancel();
}

#[tokio::test]
async fn metrics_in_prometheus_text_and_json() {
    let f = start(false).await;
    f.stats.send_modify(|s| {
        s.conferences = 4;
        s.total_conferences_completed = 17;
        s.graceful_shutdown = true;
    });
    let (status, head, body) = request(f.addr, "GET", "/metrics", "").await;
    assert_eq!(status, 200);
    assert!(head.contains("text/plain"), "{head}");
    assert!(body.contains("jitsi_jigasi_conferences 4"), "{body}");
    assert!(
        body.contains("jitsi_jigasi_total_conferences_completed 17"),
        "{body}"
    );
    assert!(body.contains("jitsi_jigasi_graceful_shutdown 1"), "{body}");
    assert!(body.contains("jitsi_jigasi_threads "), "{body}");

    let (status, _, body) =
        request(f.addr, "GET", "/metrics", "Accept: application/json\r\n").await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["conferences"], 4.0);
    assert_eq!(body["total_conferences_completed"], 17);
    f.stop.cancel();
}

#[tokio::test]
async fn shutdown_only_when_enabled() {
    let f = start(false).await;
    let (status, _, body) = request(f.addr, "POST", "/about/shutdown", "").await;
    assert_eq!(status, 503);
    assert!(body.contains("ENABLE_REST_SHUTDOWN"), "{body}");
    assert!(!f.graceful.is_cancelled());
    f.stop.cancel();

    let f = start(true).await;
    let (status, _, _) = request(f.addr, "POST", "/about/shutdown", "").await;
    assert_eq!(status, 200);
    assert!(f.graceful.is_cancelled());
    f.stop.cancel();
}

#[tokio::test]
async fn wrong_method_and_unknown_path() {
    let f = start(true).await;
    let (status, _, body) = request(f.addr, "GET", "/about/shutdown", "").await;
    assert_eq!(status, 405);
    assert!(body.contains("reason"), "{body}");
    assert!(!f.graceful.is_cancelled(), "GET must not shut down");
    let (status, head, body) = request(f.addr, "GET", "/no/such/path", "").await;
    assert_eq!(status, 404);
    assert!(head.contains("application/json"), "{head}");
    assert!(body.contains("not found"), "{body}");
    f.stop.cancel();
}

const JSON: &str = "Content-Type: application/json\r\n";
const ADD: &str = "/configure/call-control-muc/add";
const REMOVE: &str = "/configure/call-control-muc/remove";
const LIST: &str = "/configure/call-control-muc/list";

async fn post_json(addr: SocketAddr, path: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, head, body) = request_with_body(addr, "POST", path, JSON, body).await;
    assert!(
        head.contains("content-type: application/json;charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    (status, serde_json::from_str(&body).unwrap())
}

#[tokio::test]
async fn call_control_add_statuses() {
    let f = start(false).await;
    let account = r#"{"id":"acc-2","ACCOUNT_UID":"Jabber:j2@auth.example.com","USER_ID":"j2@auth.example.com","PASSWORD":"pw","BREWERY":"JigasiBrewery@internal.auth.example.com","SERVER_PORT":5222,"ALLOW_NON_SECURE":true}"#;
    let (status, body) = post_json(f.addr, ADD, account).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("added")));
    // Same id and ACCOUNT_UID: nothing changes.
    let (status, body) = post_json(f.addr, ADD, account).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("unchanged")));
    // Same id, other ACCOUNT_UID: replaced.
    let other = account.replace("Jabber:j2@", "Jabber:j3@");
    let (status, body) = post_json(f.addr, ADD, &other).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("replaced")));

    // Content type: 415, also for a charset-less variant's absence.
    let (status, _, body) = request_with_body(f.addr, "POST", ADD, "", account).await;
    assert_eq!(status, 415, "{body}");
    let (status, _, _) =
        request_with_body(f.addr, "POST", ADD, "Content-Type: text/plain\r\n", account).await;
    assert_eq!(status, 415);
    let (status, _, _) = request_with_body(
        f.addr,
        "POST",
        ADD,
        "Content-Type: application/json; charset=utf-8\r\n",
        account,
    )
    .await;
    assert_eq!(status, 200);

    // Bad JSON, not an object, no id, dotted id, non-string id, nested value: 400 with a reason.
    for (body, reason) in [
        ("{not json", "invalid JSON"),
        ("[1,2]", "JSON object"),
        (r#"{"USER_ID":"a@b"}"#, "id is missing"),
        (r#"{"id":"acc.2","USER_ID":"a@b"}"#, "without dots"),
        (r#"{"id":"","USER_ID":"a@b"}"#, "without dots"),
        (r#"{"id":7,"USER_ID":"a@b"}"#, "id: expected a string"),
        (r#"{"id":"acc-4","USER_ID":{"x":1}}"#, "USER_ID: expected"),
    ] {
        let (status, json) = post_json(f.addr, ADD, body).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            json["reason"].as_str().unwrap().contains(reason),
            "{body}: {json}"
        );
    }
    // The runtime refuses the account: 400 naming the key.
    let (status, json) = post_json(f.addr, ADD, r#"{"id":"acc-5","BREWERY":"b@m"}"#).await;
    assert_eq!(status, 400);
    assert!(
        json["reason"].as_str().unwrap().contains("USER_ID"),
        "{json}"
    );
    // Live but not saved: 500.
    let (status, json) = post_json(f.addr, ADD, r#"{"id":"unsaved","USER_ID":"a@b"}"#).await;
    assert_eq!(status, 500);
    assert!(
        json["reason"].as_str().unwrap().contains("properties"),
        "{json}"
    );

    let (status, _, _) = request(f.addr, "GET", ADD, "").await;
    assert_eq!(status, 405);
    f.stop.cancel();
}

#[tokio::test]
async fn call_control_remove_and_list() {
    let f = start(false).await;
    let (status, head, body) = request(f.addr, "GET", LIST, "").await;
    assert_eq!(status, 200);
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    assert_eq!(body, r#"["acc-1"]"#);

    let (status, _) = post_json(f.addr, ADD, r#"{"id":"acc-2","USER_ID":"a@b"}"#).await;
    assert_eq!(status, 200);
    let (_, _, body) = request(f.addr, "GET", LIST, "").await;
    assert_eq!(body, r#"["acc-1","acc-2"]"#);

    let (status, json) = post_json(f.addr, REMOVE, r#"{"id":"acc-1"}"#).await;
    assert_eq!((status, json["result"].as_str()), (200, Some("removed")));
    let (status, json) = post_json(f.addr, REMOVE, r#"{"id":"acc-1"}"#).await;
    assert_eq!(status, 400);
    assert!(json["reason"].as_str().unwrap().contains("acc-1"), "{json}");
    let (status, _) = post_json(f.addr, REMOVE, "{}").await;
    assert_eq!(status, 400);
    let (status, _, _) = request_with_body(f.addr, "POST", REMOVE, "", r#"{"id":"acc-2"}"#).await;
    assert_eq!(status, 415);
    let (_, _, body) = request(f.addr, "GET", LIST, "").await;
    assert_eq!(body, r#"["acc-2"]"#);
    let (status, _, _) = request(f.addr, "POST", LIST, "").await;
    assert_eq!(status, 405);
    f.stop.cancel();
}

#[tokio::test]
async fn call_control_without_a_runtime_is_unavailable() {
    let f = start_with(false, false).await;
    let (status, _, _) = request(f.addr, "GET", LIST, "").await;
    assert_eq!(status, 503);
    let (status, json) = post_json(f.addr, ADD, r#"{"id":"acc-2","USER_ID":"a@b"}"#).await;
    assert_eq!(status, 503);
    assert!(json["reason"].is_string());
    f.stop.cancel();
}

#[tokio::test]
async fn debug_lists_the_running_calls() {
    let f = start(false).await;
    let (status, head, body) = request(f.addr, "GET", "/debug", "").await;
    assert_eq!(status, 200);
    assert!(head.contains("application/json"), "{head}");
    assert_eq!(body, r#"{"gateways":{"sip":{"sessions":{}}}}"#);

    f.debug.send_replace(DebugSnapshot {
        calls: vec![DebugCall {
            call_id: 3,
            direction: CallDirection::Out,
            display_name: "+4930123456".into(),
            remote: "+4930123456".into(),
            room: "room1@conference.meet.example.com".into(),
            nick: Some("0a1b2c3d".into()),
            sip_state: "calling".into(),
            started: "2026-11-22 05:06:07.089".into(),
            codec: None,
            media_phones: 0,
        }],
    });
    let (status, _, body) = request(f.addr, "GET", "/debug", "").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let sessions = json["gateways"]["sip"]["sessions"].as_object().unwrap();
    assert_eq!(sessions.len(), 1);
    let session = sessions.values().next().unwrap();
    assert_eq!(
        session["jvbConference"]["meetingUrl"],
        "room1@conference.meet.example.com"
    );
    assert_eq!(session["direction"], "out");
    assert_eq!(session["sipState"], "calling");
    assert!(!body.contains("30123456"), "phone number leaked: {body}");
    f.stop.cancel();
}
