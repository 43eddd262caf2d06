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

    const PREFIX: &str = "net.java.sip.communicator.impl.protocol.jabber";

    /// A properties file with one brewery account on an unreachable server (its task only
    /// retries), loaded as the binary would.
    fn load(dir: &Path, writable: bool) -> Arc<Config> {
        let home = dir.join("jigasi-home");
        std::fs::create_dir_all(&home).expect("home");
        let path = home.join("sip-communicator.properties");
        if !path.exists() {
            std::fs::write(
                &path,
                format!(
                    "# operator comment\n\
                     org.jitsi.jigasi.ENABLE_SIP=false\n\
                     {PREFIX}.acc-1=acc-1\n\
                     {PREFIX}.acc-1.ACCOUNT_UID=Jabber:j1@auth.example.com\n\
                     {PREFIX}.acc-1.USER_ID=j1@auth.example.com\n\
                     {PREFIX}.acc-1.PASSWORD=cHcx\n\
                     {PREFIX}.acc-1.BREWERY=JigasiBrewery@internal.auth.example.com\n\
                     {PREFIX}.acc-1.IS_SERVER_OVERRIDDEN=true\n\
                     {PREFIX}.acc-1.SERVER_ADDRESS=127.0.0.1\n\
                     {PREFIX}.acc-1.SERVER_PORT=1\n\
                     # trailing comment\n"
                ),
            )
            .expect("write");
        }
        let args = jigasi_config::CliArgs {
            config_dir: Some(dir.to_path_buf()),
            config_writable: writable,
            ..jigasi_config::CliArgs::default()
        };
        let loaded = jigasi_config::load(&args, dir, &BTreeMap::new()).expect("config");
        Arc::new(loaded.config)
    }

    fn account(uid: &str, user: Option<&str>) -> BTreeMap<String, String> {
        let mut properties: BTreeMap<String, String> = [
            ("ACCOUNT_UID", uid),
            ("PASSWORD", "pw2"),
            ("BREWERY", "JigasiBrewery@internal.auth.example.com"),
            ("IS_SERVER_OVERRIDDEN", "true"),
            ("SERVER_ADDRESS", "127.0.0.1"),
            ("SERVER_PORT", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(user) = user {
            properties.insert("USER_ID".into(), user.into());
        }
        properties
    }

    async fn start(config: Arc<Config>) -> (BreweryAccounts, watch::Receiver<BreweryStates>) {
        let (_stats_tx, stats) = watch::channel(Stats {
            conferences: 0,
            participants: 0,
            graceful_shutdown: false,
            stress_level: 0.0,
            region: None,
            version: "test".into(),
            supports_transcription: false,
            supports_sip: false,
        });
        let (dials, _dials_rx) = mpsc::channel(1);
        BreweryAccounts::start(config, stats, dials, CancellationToken::new()).expect("start")
    }

    async fn add(
        accounts: &mut BreweryAccounts,
        id: &str,
        props: BTreeMap<String, String>,
    ) -> AddOutcome {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        accounts
            .handle(MucCommand::Add {
                id: id.into(),
                properties: props,
                reply,
            })
            .await;
        outcome.await.expect("reply")
    }

    async fn remove(accounts: &mut BreweryAccounts, id: &str) -> RemoveOutcome {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        accounts
            .handle(MucCommand::Remove {
                id: id.into(),
                reply,
            })
            .await;
        outcome.await.expect("reply")
    }

    async fn list(accounts: &mut BreweryAccounts) -> Vec<String> {
        let (reply, ids) = tokio::sync::oneshot::channel();
        accounts.handle(MucCommand::List { reply }).await;
        ids.await.expect("reply")
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("jigasi-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[tokio::test]
    async fn add_replace_remove_and_persist_with_configwritable() {
        let dir = temp_dir("accounts-writable");
        let config = load(&dir, true);
        let path = config.properties_path.clone().expect("path");
        let original = std::fs::read_to_string(&path).expect("read");
        let (mut accounts, states) = start(config).await;
        assert_eq!(list(&mut accounts).await, ["acc-1"]);
        assert_eq!(states.borrow().len(), 1);

        let uid = "Jabber:j2@auth.example.com";
        let user = Some("j2@auth.example.com");
        assert_eq!(
            add(&mut accounts, "acc-2", account(uid, user)).await,
            AddOutcome::Added
        );
        assert_eq!(list(&mut accounts).await, ["acc-1", "acc-2"]);
        let ids: Vec<String> = states.borrow().iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(ids, ["acc-1", "acc-2"], "health follows the new account");
        let written = std::fs::read_to_string(&path).expect("read");
        assert!(written.starts_with(&original), "{written}");
        assert!(
            written.contains(&format!("{PREFIX}.acc-2.PASSWORD=cHcy\n")),
            "{written}"
        );

        assert_eq!(
            add(&mut accounts, "acc-2", account(uid, user)).await,
            AddOutcome::Unchanged
        );
        let other = "Jabber:j3@auth.example.com";
        assert_eq!(
            add(
                &mut accounts,
                "acc-2",
                account(other, Some("j3@auth.example.com"))
            )
            .await,
            AddOutcome::Replaced
        );
        assert_eq!(list(&mut accounts).await, ["acc-1", "acc-2"]);
        let written = std::fs::read_to_string(&path).expect("read");
        assert!(
            written.contains("j3@auth.example.com") && !written.contains("j2@"),
            "{written}"
        );

        match add(&mut accounts, "acc-4", account(uid, None)).await {
            AddOutcome::Invalid { reason } => {
                assert!(
                    reason.contains(&format!("{PREFIX}.acc-4.USER_ID")),
                    "{reason}"
                );
            }
            other @ (AddOutcome::Added
            | AddOutcome::Unchanged
            | AddOutcome::Replaced
            | AddOutcome::Failed { .. }) => panic!("expected invalid, got {other:?}"),
        }
        assert_eq!(list(&mut accounts).await, ["acc-1", "acc-2"]);

        assert_eq!(remove(&mut accounts, "acc-2").await, RemoveOutcome::Removed);
        assert_eq!(
            remove(&mut accounts, "acc-2").await,
            RemoveOutcome::NotFound
        );
        assert_eq!(std::fs::read_to_string(&path).expect("read"), original);
        // A configured account can be removed too.
        assert_eq!(remove(&mut accounts, "acc-1").await, RemoveOutcome::Removed);
        assert!(list(&mut accounts).await.is_empty());
        assert!(states.borrow().is_empty());
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "# operator comment\norg.jitsi.jigasi.ENABLE_SIP=false\n# trailing comment\n"
        );
        assert!(accounts.shutdown(std::time::Duration::from_secs(3)).await);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn without_configwritable_the_file_is_kept_and_a_failed_save_is_reported() {
        let dir = temp_dir("accounts-memory");
        let config = load(&dir, false);
        let path = config.properties_path.clone().expect("path");
        let original = std::fs::read_to_string(&path).expect("read");
        let (mut accounts, _states) = start(config).await;
        let props = account("Jabber:j2@auth.example.com", Some("j2@auth.example.com"));
        assert_eq!(
            add(&mut accounts, "acc-2", props.clone()).await,
            AddOutcome::Added
        );
        assert_eq!(remove(&mut accounts, "acc-1").await, RemoveOutcome::Removed);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), original);
        assert!(accounts.shutdown(std::time::Duration::from_secs(3)).await);

        // Writable, but the file is gone: the account runs, the request reports the failure.
        let config = load(&dir, true);
        let (mut accounts, _states) = start(config).await;
        std::fs::remove_file(&path).expect("remove");
        match add(&mut accounts, "acc-2", props).await {
            AddOutcome::Failed { reason } => assert!(reason.contains("is live"), "{reason}"),
            other @ (AddOutcome::Added
            | AddOutcome::Unchanged
            | AddOutcome::Replaced
            | AddOutcome::Invalid { .. }) => panic!("expected a failed save, got {other:?}"),
        }
        assert_eq!(list(&mut accounts).await, ["acc-1", "acc-2"]);
        assert!(accounts.shutdown(std::time::Duration::from_secs(3)).await);
        let _ = std::fs::remove_dir_all(&dir);
    }

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
