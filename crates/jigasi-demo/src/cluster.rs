//! Several gateway instances sharing one deployment, the way Jigasi is scaled out: one Prosody,
//! one Jicofo (here the stand-in) that picks the least loaded instance from the brewery for
//! each dial-out, and one Kamailio in front of the instances that spreads dial-ins over them
//! with its `dispatcher` module (a carrier or PBX in front of several Jigasi boxes).
//!
//! Each instance is its own `jigasi-rs` process with its own configuration directory, SIP port,
//! REST port, SIP account and brewery nick. The instances share the brewery XMPP account
//! (`jigasi@auth.<domain>`, as in Jitsi's Docker setup) with a distinct `RESOURCE` each, so
//! their brewery occupants are `JigasiBrewery@…/jigasi-a`, `…/jigasi-b`. Each registers at
//! Kamailio as a different SIP user (`jigasi-a`, `jigasi-b`): the registration authenticates
//! its dial-outs and keeps its binding alive, while dial-ins for the pool number
//! [`POOL_NUMBER`] do not use the location table at all: Kamailio's dispatcher sends them to the
//! instances' SIP addresses from its list, fails over on `503` (an instance in graceful
//! shutdown) or on silence (a stopped instance) and probes failed instances with OPTIONS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jigasi_standin::{AudioSource, BreweryInstance, StandIn, StandInConfig};
use jigasi_testpeers::{
    Baresip, BaresipConfig, Dispatcher, Kamailio, KamailioConfig, Prosody, ProsodyConfig, audio,
    free_port,
};
use jigasi_types::Secret;

use crate::{
    DEMO_ROOM, DemoError, GatewayAccounts, GatewayProcess, READY_LINE, gateway_properties,
    http_request, io, write_file,
};

/// The number phones dial to reach the pool of gateways (Kamailio dispatches it); calls to it
/// go to [`DEMO_ROOM`].
pub const POOL_NUMBER: &str = "jigasi";

/// Phones the Kamailio of a [`Cluster`] or a [`crate::Deployment`] knows (password `<user>pw`).
pub const PHONES: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// One gateway process of a [`Cluster`].
pub struct Instance {
    /// Short name: `a`, `b`, …
    pub name: String,
    /// Its SIP user at Kamailio and its brewery nick: `jigasi-<name>`.
    pub account: String,
    /// Its SIP port (UDP and TCP).
    pub sip_port: u16,
    /// Its REST port (127.0.0.1).
    pub rest_port: u16,
    /// The running gateway.
    pub gateway: GatewayProcess,
    /// Its command line.
    args: Vec<String>,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("name", &self.name)
            .field("sip_port", &self.sip_port)
            .field("rest_port", &self.rest_port)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// The REST API address.
    pub fn rest_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.rest_port))
    }

    /// Its destination in Kamailio's dispatcher list.
    pub fn sip_uri(&self) -> String {
        format!("sip:127.0.0.1:{}", self.sip_port)
    }

    /// Whether `occupant` (a brewery occupant JID) is this instance.
    pub fn is_occupant(&self, occupant: &str) -> bool {
        occupant
            .rsplit_once('/')
            .is_some_and(|(_, nick)| nick == self.account)
    }

    /// The directory passed as `--configdir`.
    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `GET /about/stats`: the JSON body.
    pub async fn stats(&self) -> Result<String, DemoError> {
        let rest = self.rest_addr();
        let (status, body) =
            tokio::task::spawn_blocking(move || http_request(rest, "GET", "/about/stats"))
                .await
                .map_err(|e| DemoError::Expectation(e.to_string()))??;
        if status != 200 {
            return Err(DemoError::Expectation(format!(
                "instance {}: /about/stats answered {status}: {body}",
                self.name
            )));
        }
        Ok(body)
    }

    /// The number of calls in a conference now (`conferences` of `/about/stats`).
    pub async fn conferences(&self) -> Result<u64, DemoError> {
        let body = self.stats().await?;
        json_number(&body, "conferences").ok_or_else(|| {
            DemoError::Expectation(format!("no \"conferences\" in /about/stats: {body}"))
        })
    }

    /// `POST /about/shutdown`: graceful shutdown (brewery flag at once, 503 for new calls,
    /// running calls go on).
    pub async fn request_shutdown(&self) -> Result<(), DemoError> {
        let rest = self.rest_addr();
        let (status, body) =
            tokio::task::spawn_blocking(move || http_request(rest, "POST", "/about/shutdown"))
                .await
                .map_err(|e| DemoError::Expectation(e.to_string()))??;
        if status == 200 {
            Ok(())
        } else {
            Err(DemoError::Expectation(format!(
                "instance {}: /about/shutdown answered {status}: {body}",
                self.name
            )))
        }
    }
}

/// Prosody, Kamailio with a dispatcher over the instances, the stand-in (with one web
/// participant `web1` in [`DEMO_ROOM`]) and N gateway instances.
pub struct Cluster {
    /// The gateways (declared first: they stop before the peers).
    pub instances: Vec<Instance>,
    /// The Jicofo + JVB stand-in.
    pub standin: StandIn,
    /// Registrar, proxy and dispatcher.
    pub kamailio: Kamailio,
    /// The XMPP server.
    pub prosody: Prosody,
    /// The gateway binary.
    binary: PathBuf,
    /// Where the phones' tone WAVs go (removed with the cluster).
    work: tempfile::TempDir,
}

impl Cluster {
    /// Starts everything with `count` instances named `a`, `b`, …; returns once every
    /// instance is ready and the stand-in sees all of them in the brewery.
    pub async fn start(
        binary: &Path,
        count: usize,
        participant: AudioSource,
    ) -> Result<Self, DemoError> {
        let names: Vec<String> = (b'a'..=b'z')
            .take(count)
            .map(|c| char::from(c).to_string())
            .collect();
        let ports: Vec<(u16, u16)> = names.iter().map(|_| (free_port(), free_port())).collect();
        let prosody = Prosody::start(ProsodyConfig::default())?;
        let mut users: Vec<(String, String)> = names
            .iter()
            .map(|name| (format!("jigasi-{name}"), format!("secret-{name}")))
            .collect();
        users.extend(
            PHONES
                .iter()
                .map(|phone| ((*phone).to_owned(), format!("{phone}pw"))),
        );
        let destinations = ports
            .iter()
            .map(|(sip, _)| format!("sip:127.0.0.1:{sip}"))
            .collect();
        let kamailio = Kamailio::start(KamailioConfig {
            users,
            extra_route: Some(format!(
                "if ($rU == \"{POOL_NUMBER}\") {{ append_hf(\"Jitsi-Conference-Room: {DEMO_ROOM}@conference.{}\\r\\n\"); }}",
                prosody.domain()
            )),
            dispatcher: Some(Dispatcher::round_robin(POOL_NUMBER, destinations)),
            ..KamailioConfig::default()
        })?;
        let standin = StandIn::start(StandInConfig::new(
            prosody.c2s_addr(),
            prosody.component_addr(),
            prosody.domain(),
            Secret::new(prosody.component_secret().to_owned()),
            Secret::new("focuspw".to_owned()),
        ))
        .await
        .map_err(|e| DemoError::Expectation(format!("stand-in: {e}")))?;
        standin
            .create_conference(DEMO_ROOM)
            .await
            .map_err(|e| DemoError::Expectation(format!("stand-in conference: {e}")))?;
        standin
            .add_participant(DEMO_ROOM, "web1", participant)
            .await
            .map_err(|e| DemoError::Expectation(format!("stand-in participant: {e}")))?;
        let work = tempfile::Builder::new()
            .prefix("jigasi-cluster-")
            .tempdir()
            .map_err(io("temp dir"))?;
        let mut cluster = Self {
            instances: Vec::new(),
            standin,
            kamailio,
            prosody,
            binary: binary.to_path_buf(),
            work,
        };
        for (name, (sip_port, rest_port)) in names.into_iter().zip(ports) {
            let instance = cluster.spawn_instance(binary, name, sip_port, rest_port)?;
            cluster.instances.push(instance);
        }
        let accounts: Vec<String> = cluster
            .instances
            .iter()
            .map(|i| i.account.clone())
            .collect();
        cluster
            .wait_brewery(Duration::from_secs(10), |gateways| {
                accounts.iter().all(|account| {
                    gateways
                        .iter()
                        .any(|g| g.occupant.ends_with(&format!("/{account}")))
                })
            })
            .await
            .map_err(|seen| {
                DemoError::Expectation(format!(
                    "the stand-in did not see every instance in the brewery: {seen:?}"
                ))
            })?;
        Ok(cluster)
    }

    fn spawn_instance(
        &self,
        binary: &Path,
        name: String,
        sip_port: u16,
        rest_port: u16,
    ) -> Result<Instance, DemoError> {
        let account = format!("jigasi-{name}");
        let dir = tempfile::Builder::new()
            .prefix(&format!("jigasi-{name}-"))
            .tempdir()
            .map_err(io("cannot create the instance directory"))?;
        let properties = gateway_properties(
            &GatewayAccounts {
                sip_port,
                rest_port,
                sip_user: &account,
                sip_password: &format!("secret-{name}"),
                brewery_resource: Some(&account),
            },
            &self.prosody,
            self.kamailio.addr(),
        );
        write_file(
            &dir.path()
                .join("jigasi-home")
                .join("sip-communicator.properties"),
            &properties,
        )?;
        let args = vec![
            format!("--configdir={}", dir.path().display()),
            "--configdirname=jigasi-home".into(),
            format!("--domain={}", self.prosody.domain()),
            "--host=127.0.0.1".into(),
            "--min-port=20000".into(),
            "--max-port=20100".into(),
            format!("--logdir={}", dir.path().join("logs").display()),
        ];
        let mut gateway = GatewayProcess::spawn(binary, &args, false)?;
        gateway.wait_for_line(READY_LINE, Duration::from_secs(20))?;
        Ok(Instance {
            name,
            account,
            sip_port,
            rest_port,
            gateway,
            args,
            dir,
        })
    }

    /// Starts instance `name` again (same configuration and ports) after it exited, and waits
    /// until it is ready and back in the brewery (a rolling restart).
    pub async fn restart(&mut self, name: &str) -> Result<(), DemoError> {
        let binary = self.binary.clone();
        let instance = self
            .instances
            .iter_mut()
            .find(|i| i.name == name)
            .ok_or_else(|| DemoError::Expectation(format!("no instance {name}")))?;
        let mut gateway = GatewayProcess::spawn(&binary, &instance.args, false)?;
        gateway.wait_for_line(READY_LINE, Duration::from_secs(20))?;
        instance.gateway = gateway;
        let account = format!("/{}", instance.account);
        self.wait_brewery(Duration::from_secs(10), |gateways| {
            gateways.iter().any(|g| g.occupant.ends_with(&account))
        })
        .await
        .map(|_| ())
        .map_err(|seen| {
            DemoError::Expectation(format!(
                "instance {name} did not rejoin the brewery: {seen:?}"
            ))
        })
    }

    /// Where the phones' tone WAVs go (removed with the cluster).
    pub fn work(&self) -> &Path {
        self.work.path()
    }

    /// The instance called `name`.
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// The instance whose brewery occupant JID is `occupant`.
    pub fn by_occupant(&self, occupant: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.is_occupant(occupant))
    }

    /// Polls the stand-in's brewery view until `ready` holds; the last view on timeout.
    pub async fn wait_brewery(
        &self,
        timeout: Duration,
        ready: impl Fn(&[BreweryInstance]) -> bool,
    ) -> Result<Vec<BreweryInstance>, Vec<BreweryInstance>> {
        let deadline = Instant::now() + timeout;
        loop {
            let gateways = self.standin.gateways().await.unwrap_or_default();
            if ready(&gateways) {
                return Ok(gateways);
            }
            if Instant::now() >= deadline {
                return Err(gateways);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A baresip phone registered at Kamailio as `user` (one of [`PHONES`]) playing a
    /// `tone_hz` tone; with `auto_answer` it answers calls (dial-out target).
    pub fn phone(&self, user: &str, tone_hz: u32, auto_answer: bool) -> Result<Baresip, DemoError> {
        let tone = audio::tone_wav(self.work.path(), 48_000, tone_hz, 60)?;
        let mut phone = Baresip::start(BaresipConfig {
            auto_answer,
            play_wav: Some(tone),
            codecs: "PCMU".into(),
            ..BaresipConfig::registering(user, &format!("{user}pw"), self.kamailio.addr())
        })?;
        phone.wait_registered(Duration::from_secs(5))?;
        Ok(phone)
    }

    /// The pool number's URI at Kamailio (what a phone dials to reach any instance).
    pub fn pool_uri(&self) -> String {
        format!("sip:{POOL_NUMBER}@{}", self.kamailio.addr().ip())
    }
}

/// The unsigned number after `"key":` in a flat JSON object.
fn json_number(json: &str, key: &str) -> Option<u64> {
    let needle = format!("\"{key}\":");
    let at = json.find(&needle)? + needle.len();
    let digits: String = json[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_number_from_the_stats_json() {
        let json = r#"{"conferences":2,"participants": 5,"total_conferences_completed":11}"#;
        assert_eq!(json_number(json, "conferences"), Some(2));
        assert_eq!(json_number(json, "participants"), Some(5));
        assert_eq!(json_number(json, "total_conferences_completed"), Some(11));
        assert_eq!(json_number(json, "graceful_shutdown"), None);
        assert_eq!(json_number(r#"{"conferences":true}"#, "conferences"), None);
    }
}
