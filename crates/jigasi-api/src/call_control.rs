//! `/configure/call-control-muc/{add,remove,list}`: brewery accounts at run time
//! (jigasi-behaviour.md §1.15). The handlers check the HTTP side (content type, JSON shape, the
//! account id) and hand a [`MucCommand`] to the runtime, which owns the brewery tasks, checks the
//! account itself and replies.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use tokio::sync::{mpsc, oneshot};

use crate::{AppState, json};

/// A request to the runtime about brewery ("call control MUC") accounts.
#[derive(Debug)]
pub enum MucCommand {
    /// Add account `id`, or replace it when its `ACCOUNT_UID` differs.
    Add {
        /// The account id (no dots).
        id: String,
        /// Jigasi's account properties without the account prefix; `PASSWORD` in plain text.
        properties: BTreeMap<String, String>,
        /// Where the outcome goes.
        reply: oneshot::Sender<AddOutcome>,
    },
    /// Stop account `id` (it leaves its brewery room).
    Remove {
        /// The account id.
        id: String,
        /// Where the outcome goes.
        reply: oneshot::Sender<RemoveOutcome>,
    },
    /// The ids of every running account, configured and added.
    List {
        /// Where the ids go.
        reply: oneshot::Sender<Vec<String>>,
    },
}

/// What an `add` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// A new account was started.
    Added,
    /// An account with the same id and `ACCOUNT_UID` exists; nothing changed (Jigasi's rule).
    Unchanged,
    /// The account with this id had another `ACCOUNT_UID`: it was stopped and the new one started.
    Replaced,
    /// The properties do not make an account (400); the reason names the key.
    Invalid {
        /// Why.
        reason: String,
    },
    /// The change is live but could not be saved, or could not be made (500).
    Failed {
        /// Why.
        reason: String,
    },
}

/// What a `remove` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// The account was stopped.
    Removed,
    /// No account has this id (400, as in Jigasi).
    NotFound,
    /// The account was stopped but the properties file could not be rewritten (500).
    Failed {
        /// Why.
        reason: String,
    },
}

pub(crate) async fn add(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let object = match json_object(&headers, &body) {
        Ok(object) => object,
        Err(response) => return response,
    };
    let id = match account_id(&object) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let mut properties = BTreeMap::new();
    for (key, value) in object {
        if key == "id" {
            continue;
        }
        let text = match value {
            serde_json::Value::String(text) => text,
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            serde_json::Value::Null
            | serde_json::Value::Array(_)
            | serde_json::Value::Object(_) => {
                return bad_request(&format!("{key}: expected a string, number or boolean"));
            }
        };
        properties.insert(key, text);
    }
    let outcome = ask(&state, |reply| MucCommand::Add {
        id: id.clone(),
        properties,
        reply,
    })
    .await;
    match outcome {
        Ok(AddOutcome::Added) => ok(&id, "added"),
        Ok(AddOutcome::Unchanged) => ok(&id, "unchanged"),
        Ok(AddOutcome::Replaced) => ok(&id, "replaced"),
        Ok(AddOutcome::Invalid { reason }) => bad_request(&reason),
        Ok(AddOutcome::Failed { reason }) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "reason": reason }),
        ),
        Err(response) => response,
    }
}

pub(crate) async fn remove(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let object = match json_object(&headers, &body) {
        Ok(object) => object,
        Err(response) => return response,
    };
    let id = match account_id(&object) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let outcome = ask(&state, |reply| MucCommand::Remove {
        id: id.clone(),
        reply,
    })
    .await;
    match outcome {
        Ok(RemoveOutcome::Removed) => ok(&id, "removed"),
        Ok(RemoveOutcome::NotFound) => bad_request(&format!("no account with id {id}")),
        Ok(RemoveOutcome::Failed { reason }) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "reason": reason }),
        ),
        Err(response) => response,
    }
}

pub(crate) async fn list(State(state): State<Arc<AppState>>) -> Response {
    match ask(&state, |reply| MucCommand::List { reply }).await {
        Ok(ids) => json(StatusCode::OK, serde_json::json!(ids)),
        Err(response) => response,
    }
}

/// Sends a command to the runtime and waits for its reply; 503 when the runtime does not take
/// commands (no channel, or it is shutting down).
async fn ask<T>(
    state: &AppState,
    command: impl FnOnce(oneshot::Sender<T>) -> MucCommand,
) -> Result<T, Response> {
    let unavailable = || {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "reason": "brewery accounts cannot be changed now" }),
        )
    };
    let Some(commands) = &state.api.call_control else {
        return Err(unavailable());
    };
    let (reply, answer) = oneshot::channel();
    send(commands, command(reply))
        .await
        .map_err(|()| unavailable())?;
    answer.await.map_err(|_| unavailable())
}

async fn send(commands: &mpsc::Sender<MucCommand>, command: MucCommand) -> Result<(), ()> {
    commands.send(command).await.map_err(|_| ())
}

/// The request body as a JSON object: 415 unless `Content-Type: application/json`, 400 unless
/// the body is a JSON object.
#[allow(clippy::result_large_err)]
fn json_object(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(json(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            serde_json::json!({ "reason": "expected Content-Type: application/json" }),
        ));
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
        Ok(_) => Err(bad_request("expected a JSON object")),
        Err(error) => Err(bad_request(&format!("invalid JSON: {error}"))),
    }
}

/// The `"id"` member: a non-empty string without dots (dots would break the property names).
#[allow(clippy::result_large_err)]
fn account_id(object: &serde_json::Map<String, serde_json::Value>) -> Result<String, Response> {
    match object.get("id") {
        Some(serde_json::Value::String(id)) if !id.is_empty() && !id.contains('.') => {
            Ok(id.clone())
        }
        Some(serde_json::Value::String(_)) => Err(bad_request(
            "id: expected a non-empty account id without dots",
        )),
        Some(_) => Err(bad_request("id: expected a string")),
        None => Err(bad_request("id is missing")),
    }
}

fn ok(id: &str, result: &str) -> Response {
    json(
        StatusCode::OK,
        serde_json::json!({ "id": id, "result": result }),
    )
}

fn bad_request(reason: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        serde_json::json!({ "reason": reason }),
    )
}
