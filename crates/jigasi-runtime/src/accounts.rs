//! The brewery accounts of the running gateway: one brewery task each, started from the
//! configuration and added, replaced or removed at run time by the REST API
//! (`/configure/call-control-muc/*`, jigasi-behaviour.md §1.15). Owned by the runtime's main
//! loop; the API sends [`MucCommand`]s and gets the outcome back on a oneshot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jigasi_api::{AddOutcome, MucCommand, RemoveOutcome};
use jigasi_config::properties_edit::{
    from_latin1, remove_brewery_account, set_brewery_account, to_latin1,
};
use jigasi_config::{BreweryAccount, Config};
use jigasi_xmpp::brewery::Stats;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::RuntimeError;
use crate::brewery::{BreweryState, BreweryTask, DialMessage};

/// The brewery accounts' states, in order (configured first, then added), for health.
pub(crate) type BreweryStates = Vec<(String, watch::Receiver<BreweryState>)>;

/// One running brewery account.
struct Running {
    account: BreweryAccount,
    /// Cancelling it makes the task leave its room and close the connection.
    cancel: CancellationToken,
    state: watch::Receiver<BreweryState>,
}

/// Where run-time changes are saved.
enum Persistence {
    /// `--configwritable=true` with a properties file: rewrite it.
    Properties(PathBuf),
    /// In memory only; the reason is logged once, at the first change.
    InMemory {
        /// Why, for the log.
        why: &'static str,
        /// Whether it was logged.
        logged: bool,
    },
}

/// The set of running brewery tasks.
pub(crate) struct BreweryAccounts {
    running: Vec<Running>,
    tasks: JoinSet<()>,
    /// Parent of every task's token: cancelled at shutdown.
    cancel: CancellationToken,
    stats: watch::Receiver<Stats>,
    dials: mpsc::Sender<DialMessage>,
    config: Arc<Config>,
    states: watch::Sender<BreweryStates>,
    persistence: Persistence,
}

impl BreweryAccounts {
    /// Starts one task per configured account.
    pub(crate) fn start(
        config: Arc<Config>,
        stats: watch::Receiver<Stats>,
        dials: mpsc::Sender<DialMessage>,
        cancel: CancellationToken,
    ) -> Result<(Self, watch::Receiver<BreweryStates>), RuntimeError> {
        let persistence = match (&config.properties_path, config.config_writable) {
            (Some(path), true) => Persistence::Properties(path.clone()),
            (Some(_), false) => Persistence::InMemory {
                why: "--configwritable is not true: brewery accounts added or removed over REST last until the process ends",
                logged: false,
            },
            (None, _) => Persistence::InMemory {
                why: "the configuration is a TOML file, which is never rewritten: brewery accounts added or removed over REST last until the process ends",
                logged: false,
            },
        };
        let (states, states_rx) = watch::channel(Vec::new());
        let mut accounts = Self {
            running: Vec::new(),
            tasks: JoinSet::new(),
            cancel,
            stats,
            dials,
            config: config.clone(),
            states,
            persistence,
        };
        for account in &config.breweries {
            accounts.spawn(account.clone())?;
        }
        accounts.publish();
        Ok((accounts, states_rx))
    }

    /// Executes one command from the REST API and replies.
    pub(crate) async fn handle(&mut self, command: MucCommand) {
        match command {
            MucCommand::Add {
                id,
                properties,
                reply,
            } => {
                let outcome = self.add(&id, &properties).await;
                let _ = reply.send(outcome);
            }
            MucCommand::Remove { id, reply } => {
                let outcome = self.remove(&id).await;
                let _ = reply.send(outcome);
            }
            MucCommand::List { reply } => {
                let ids = self.running.iter().map(|r| r.account.id.clone()).collect();
                let _ = reply.send(ids);
            }
        }
    }

    /// Stops every task (each leaves its room) and waits for them up to `deadline`.
    pub(crate) async fn shutdown(mut self, deadline: std::time::Duration) -> bool {
        self.cancel.cancel();
        let leave = async { while self.tasks.join_next().await.is_some() {} };
        tokio::time::timeout(deadline, leave).await.is_ok()
    }

    async fn add(&mut self, id: &str, properties: &BTreeMap<String, String>) -> AddOutcome {
        let account = match jigasi_config::properties::brewery_account_from_properties(
            id,
            properties,
            &self.config.args,
        ) {
            Ok(account) => account,
            Err(error) => {
                return AddOutcome::Invalid {
                    reason: error.to_string(),
                };
            }
        };
        let position = self.running.iter().position(|r| r.account.id == id);
        let replaced = match position {
            Some(at) if self.running[at].account.account_uid == account.account_uid => {
                info!(account = %id, "brewery account already present with this ACCOUNT_UID: unchanged");
                return AddOutcome::Unchanged;
            }
            Some(at) => {
                let old = self.running.remove(at);
                old.cancel.cancel();
                info!(account = %id, "brewery account replaced over REST: leaving the old one's room");
                true
            }
            None => false,
        };
        if let Err(error) = self.spawn(account) {
            self.publish();
            return AddOutcome::Invalid {
                reason: error.to_string(),
            };
        }
        self.publish();
        info!(account = %id, replaced, "brewery account added over REST");
        let saved = self
            .save(|text| set_brewery_account(text, id, properties))
            .await;
        match (saved, replaced) {
            (Err(reason), _) => AddOutcome::Failed { reason },
            (Ok(()), true) => AddOutcome::Replaced,
            (Ok(()), false) => AddOutcome::Added,
        }
    }

    async fn remove(&mut self, id: &str) -> RemoveOutcome {
        let Some(at) = self.running.iter().position(|r| r.account.id == id) else {
            return RemoveOutcome::NotFound;
        };
        let old = self.running.remove(at);
        old.cancel.cancel();
        self.publish();
        info!(account = %id, "brewery account removed over REST: leaving its room");
        match self.save(|text| remove_brewery_account(text, id)).await {
            Ok(()) => RemoveOutcome::Removed,
            Err(reason) => RemoveOutcome::Failed { reason },
        }
    }

    fn spawn(&mut self, account: BreweryAccount) -> Result<(), RuntimeError> {
        let cancel = self.cancel.child_token();
        let (task, state) = BreweryTask::new(
            &account,
            &self.config,
            self.stats.clone(),
            cancel.clone(),
            self.dials.clone(),
        )?;
        self.tasks.spawn(task.run());
        self.running.push(Running {
            account,
            cancel,
            state,
        });
        Ok(())
    }

    fn publish(&self) {
        self.states.send_replace(
            self.running
                .iter()
                .map(|r| (r.account.id.clone(), r.state.clone()))
                .collect(),
        );
    }

    /// Applies `edit` to the properties file when it may be rewritten.
    async fn save(&mut self, edit: impl FnOnce(&str) -> String) -> Result<(), String> {
        match &mut self.persistence {
            Persistence::Properties(path) => {
                let path = path.clone();
                rewrite(&path, edit).await.map_err(|error| {
                    let reason = format!(
                        "the change is live but {} could not be rewritten: {error}",
                        path.display()
                    );
                    warn!("{reason}");
                    reason
                })
            }
            Persistence::InMemory { why, logged } => {
                if !*logged {
                    *logged = true;
                    warn!("{why}");
                }
                Ok(())
            }
        }
    }
}

/// Reads the properties file, edits it, writes the result next to it and renames it over the
/// original (keeping its permissions: it holds passwords).
async fn rewrite(path: &Path, edit: impl FnOnce(&str) -> String) -> std::io::Result<()> {
    let bytes = tokio::fs::read(path).await?;
    let permissions = tokio::fs::metadata(path).await?.permissions();
    let edited = to_latin1(&edit(&from_latin1(&bytes)));
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".tmp-{}", std::process::id()));
    let temp = PathBuf::from(temp);
    tokio::fs::write(&temp, &edited).await?;
    tokio::fs::set_permissions(&temp, permissions).await?;
    if let Err(error) = tokio::fs::rename(&temp, path).await {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(error);
    }
    info!(file = %path.display(), "properties file rewritten");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rewrite_replaces_the_file_atomically_and_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("jigasi-rewrite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("sip-communicator.properties");
        std::fs::write(&path, b"# caf\xe9\na=1\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        rewrite(&path, |text| format!("{text}b=2\n"))
            .await
            .expect("rewrite");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            b"# caf\xe9\na=1\nb=2\n"
        );
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        let missing = dir.join("missing.properties");
        assert!(rewrite(&missing, |t| t.to_owned()).await.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
