//! The API over a real socket, with plain HTTP/1.1 requests.

#![allow(clippy::unwrap_used)]

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

struct Fixture {
    addr: SocketAddr,
    health: watch::Sender<Health>,
    stats: watch::Sender<StatsSnapshot>,
    graceful: CancellationToken,
    stop: CancellationToken,
}

async fn start(enable_shutdown: bool) -> Fixture {
    let (health, health_rx) = watch::channel(Health::NotReady);
    let (stats, stats_rx) = watch::channel(StatsSnapshot::default());
    let graceful = CancellationToken::new();
    let stop = CancellationToken::new();
    let state = ApiState {
        health: health_rx,
        stats: stats_rx,
        graceful_shutdown: enable_shutdown.then(|| graceful.clone()),
        version: "9.9.9".into(),
    };
    let running = serve("127.0.0.1:0".parse().unwrap(), state, stop.clone())
        .await
        .unwrap();
    Fixture {
        addr: running.local_addr,
        health,
        stats,
        graceful,
        stop,
    }
}

/// One request; returns (status, raw headers, body).
async fn request(addr: SocketAddr, method: &str, path: &str, extra: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let text = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n{extra}\r\n"
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
