//! The REST API of jigasi-rs, compatible with Jigasi's (jigasi-behaviour.md §1.15).
//!
//! | Method | Path | Answer |
//! |---|---|---|
//! | GET | `/about/health` | 200 `{}`; 503 without body while not ready (SIP not registered); 500 `{"reason": ...}` when unhealthy (unlike Jigasi, a lost brewery XMPP connection counts: jigasi#331) |
//! | GET | `/about/version` | `{"name":"jigasi-rs","version":...,"os":...}` |
//! | GET | `/about/stats` | Jigasi's JSON keys |
//! | POST | `/about/shutdown` | 200 and graceful shutdown when `ENABLE_REST_SHUTDOWN=true`, else 503 |
//! | GET | `/metrics` | Prometheus text (`jitsi_jigasi_` names; per-call quality gauges from [`StatsSnapshot::quality_prometheus`]), or JSON with `Accept: application/json` |
//! | GET | `/debug` | the running calls in Jigasi's shape plus our own fields ([`DebugSnapshot`]) |
//! | POST | `/configure/call-control-muc/add` | `application/json` account properties + `"id"`: 200 added / unchanged (same id and `ACCOUNT_UID`) / replaced; 400 bad JSON, bad or missing id, an account that does not parse (the reason names the key); 415 other content type; 500 not saved |
//! | POST | `/configure/call-control-muc/remove` | `{"id":...}`: 200 removed, 400 unknown id |
//! | GET | `/configure/call-control-muc/list` | JSON array of account ids |
//!
//! Wrong method → 405, unknown path → 404, both with a JSON reason. JSON answers carry
//! `Access-Control-Allow-Origin: *` and `Content-Type: application/json;charset=UTF-8` like Jigasi's.
//!
//! The API only reads `watch` channels published by the runtime, cancels a token to request a
//! graceful shutdown and sends [`MucCommand`]s to the runtime (which replies on a oneshot); it
//! owns no gateway state.

mod call_control;
mod debug;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use call_control::{AddOutcome, MucCommand, RemoveOutcome};
pub use debug::{CallDirection, DebugCall, DebugSnapshot};
pub use stats::{
    CallQualitySample, LegQualitySample, POOR_MOS, StatsSnapshot, StreamQualitySample,
    utc_timestamp,
};

/// What `/about/health` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Everything needed to take calls is up.
    Healthy,
    /// The gateway cannot take calls yet (Jigasi: SIP not registered): 503 without a body.
    NotReady,
    /// Something that should work does not: 500 with this reason.
    Unhealthy {
        /// Why, e.g. "brewery acc-xmpp-1: connection refused".
        reason: String,
    },
}

/// Everything the API reads or triggers.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// Health as the runtime sees it.
    pub health: watch::Receiver<Health>,
    /// Statistics as the runtime sees them.
    pub stats: watch::Receiver<StatsSnapshot>,
    /// The running calls for `/debug`.
    pub debug: watch::Receiver<DebugSnapshot>,
    /// Cancelled by `POST /about/shutdown`; `None` unless `ENABLE_REST_SHUTDOWN=true`.
    pub graceful_shutdown: Option<CancellationToken>,
    /// Where `/configure/call-control-muc/*` sends its commands; `None` answers 503.
    pub call_control: Option<tokio::sync::mpsc::Sender<MucCommand>>,
    /// Our version.
    pub version: String,
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The listening socket could not be bound.
    #[error("cannot listen for the REST API on {addr}: {source}")]
    Bind {
        /// The address from the configuration.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// A running API server.
#[derive(Debug)]
pub struct RunningApi {
    /// The bound address (useful with port 0).
    pub local_addr: SocketAddr,
    /// The server task; it ends when the stop token is cancelled.
    pub task: JoinHandle<()>,
}

/// Binds `bind` and serves the API until `stop` is cancelled.
pub async fn serve(
    bind: SocketAddr,
    state: ApiState,
    stop: CancellationToken,
) -> Result<RunningApi, ApiError> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| ApiError::Bind { addr: bind, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ApiError::Bind { addr: bind, source })?;
    let app = router(state);
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(error) = result {
            warn!(%error, "REST API server failed");
        }
    });
    info!(%local_addr, "REST API listening");
    Ok(RunningApi { local_addr, task })
}

/// Shared by all handlers.
struct AppState {
    api: ApiState,
    metrics: PrometheusRecorder,
}

fn router(api: ApiState) -> Router {
    let state = Arc::new(AppState {
        api,
        metrics: PrometheusBuilder::new().build_recorder(),
    });
    Router::new()
        .route("/about/health", get(health))
        .route("/about/version", get(version))
        .route("/about/stats", get(stats))
        .route("/about/shutdown", axum::routing::post(shutdown))
        .route("/metrics", get(metrics_handler))
        .route("/debug", get(debug_handler))
        .route(
            "/configure/call-control-muc/add",
            axum::routing::post(call_control::add),
        )
        .route(
            "/configure/call-control-muc/remove",
            axum::routing::post(call_control::remove),
        )
        .route("/configure/call-control-muc/list", get(call_control::list))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let health = state.api.health.borrow().clone();
    match health {
        Health::Healthy => json(StatusCode::OK, serde_json::json!({})),
        Health::NotReady => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Health::Unhealthy { reason } => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "reason": reason }),
        ),
    }
}

async fn version(State(state): State<Arc<AppState>>) -> Response {
    json(
        StatusCode::OK,
        serde_json::json!({
            "name": "jigasi-rs",
            "version": state.api.version,
            "os": std::env::consts::OS,
        }),
    )
}

async fn stats(State(state): State<Arc<AppState>>) -> Response {
    let snapshot = state.api.stats.borrow().clone();
    json(
        StatusCode::OK,
        snapshot.to_json(&utc_timestamp(std::time::SystemTime::now())),
    )
}

async fn shutdown(State(state): State<Arc<AppState>>) -> Response {
    match &state.api.graceful_shutdown {
        Some(token) => {
            info!("graceful shutdown requested over REST");
            token.cancel();
            json(StatusCode::OK, serde_json::json!({}))
        }
        None => json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "reason": "shutdown over REST is disabled (org.jitsi.jigasi.ENABLE_REST_SHUTDOWN)" }),
        ),
    }
}

async fn metrics_handler(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let snapshot = state.api.stats.borrow().clone();
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    if wants_json {
        return json(StatusCode::OK, snapshot.metrics_json());
    }
    metrics::with_local_recorder(&state.metrics, || snapshot.record_metrics());
    let mut body = state.metrics.handle().render();
    body.push_str(&snapshot.quality_prometheus());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

async fn debug_handler(State(state): State<Arc<AppState>>) -> Response {
    let snapshot = state.api.debug.borrow().clone();
    json(StatusCode::OK, snapshot.to_json())
}

async fn not_found() -> Response {
    json(
        StatusCode::NOT_FOUND,
        serde_json::json!({ "reason": "not found" }),
    )
}

async fn method_not_allowed() -> Response {
    json(
        StatusCode::METHOD_NOT_ALLOWED,
        serde_json::json!({ "reason": "method not allowed" }),
    )
}

/// A JSON answer with Jigasi's headers.
fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json;charset=UTF-8"),
            ),
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
