//! A running deployment with calls: Prosody, Kamailio, the Jicofo + JVB stand-in with one web
//! participant in the demo room, and the real gateway; dial-in and dial-out calls with real
//! baresip phones, measured from the outside.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use jigasi_standin::{AudioSource, StandIn, StandInConfig, StandInEvent};
use jigasi_testpeers::{Baresip, BaresipConfig, audio};
use jigasi_types::Secret;

use crate::{
    DEMO_ROOM, DemoError, Deployment, GatewayProcess, READY_LINE, ROOM_NUMBER_PREFIX, SIP_USER, io,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// What the web participant in the demo room plays.
    pub participant: AudioSource,
    /// Print the gateway's log as it runs.
    pub echo: bool,
    /// Capture the media ports with tshark to report packets, loss and jitter per stream.
    pub capture: bool,
    /// `key=value` lines appended to the gateway's `sip-communicator.properties` (they override
    /// the deployment's defaults); `{kamailio}` becomes Kamailio's `ip:port`.
    pub extra_properties: Vec<String>,
}

/// What one call measured.
#[derive(Debug, Clone)]
pub struct CallReport {
    /// Dialling to established at the phone (dial-in), or the Rayo dial to established
    /// (dial-out).
    pub setup: Duration,
    /// The gateway's nick (endpoint id) in the room.
    pub nick: String,
    /// Dominant frequency the conference heard from the phone.
    pub conference_heard_hz: Option<f64>,
    /// Seconds of audio the conference received from the gateway.
    pub conference_heard_seconds: f64,
    /// Dominant frequency the phone heard from the conference.
    pub phone_heard_hz: Option<f64>,
    /// Seconds of audio the phone recorded.
    pub phone_heard_seconds: f64,
    /// WAV of what the conference heard (48 kHz).
    pub conference_wav: PathBuf,
    /// WAV of what the phone heard (baresip's recording), if any.
    pub phone_wav: Option<PathBuf>,
    /// Answer-rule violations the stand-in found in our session-accept.
    pub violations: usize,
    /// The Rayo `<ref>` (dial-out only).
    pub reference: Option<String>,
    /// Everything the gateway logged (filled by the one-call scenarios).
    pub log: String,
}

/// A deployment with the gateway running and the demo room ready.
pub struct Session {
    /// Prosody and Kamailio.
    pub deployment: Deployment,
    /// The Jicofo + JVB stand-in.
    pub standin: StandIn,
    /// The gateway process.
    pub gateway: GatewayProcess,
    /// Time from starting the gateway to its "gateway ready" line.
    pub ready_after: Duration,
    /// Where WAVs and captures go: removed with the session unless [`Session::keep_work`] was
    /// called or a test is failing (then it is kept and printed).
    pub work: PathBuf,
    work_dir: Option<tempfile::TempDir>,
    known_nicks: Vec<String>,
}

impl Session {
    /// Starts everything; returns once the gateway is ready and visible in the brewery.
    pub async fn start(binary: &Path, config: &SessionConfig) -> Result<Self, DemoError> {
        Self::start_with(binary, config, |_| {}).await
    }

    /// [`Self::start`] with the stand-in's configuration adjusted by `standin` (e.g. a shorter
    /// single-participant timeout).
    pub async fn start_with(
        binary: &Path,
        config: &SessionConfig,
        standin: impl FnOnce(&mut StandInConfig),
    ) -> Result<Self, DemoError> {
        let deployment = Deployment::start()?;
        let prosody = &deployment.prosody;
        let mut standin_config = StandInConfig::new(
            prosody.c2s_addr(),
            prosody.component_addr(),
            prosody.domain(),
            Secret::new(prosody.component_secret().to_owned()),
            Secret::new("focuspw".to_owned()),
        );
        standin(&mut standin_config);
        let standin = StandIn::start(standin_config)
            .await
            .map_err(|e| DemoError::Expectation(format!("stand-in: {e}")))?;
        standin
            .create_conference(DEMO_ROOM)
            .await
            .map_err(|e| DemoError::Expectation(format!("stand-in conference: {e}")))?;
        standin
            .add_participant(DEMO_ROOM, "web1", config.participant.clone())
            .await
            .map_err(|e| DemoError::Expectation(format!("stand-in participant: {e}")))?;
        if !config.extra_properties.is_empty() {
            let path = deployment.properties_path();
            let mut text = std::fs::read_to_string(&path)
                .map_err(io(format!("cannot read {}", path.display())))?;
            let kamailio = deployment.kamailio.addr().to_string();
            for line in &config.extra_properties {
                text.push_str(&line.replace("{kamailio}", &kamailio));
                text.push('\n');
            }
            std::fs::write(&path, text).map_err(io(format!("cannot write {}", path.display())))?;
        }
        let started = Instant::now();
        let mut gateway = GatewayProcess::spawn(binary, &deployment.gateway_args(), config.echo)?;
        gateway.wait_for_line(READY_LINE, Duration::from_secs(20))?;
        let ready_after = started.elapsed();
        standin
            .wait_for(Duration::from_secs(10), |event| match event {
                StandInEvent::GatewayAvailable { .. } => Some(()),
                _ => None,
            })
            .await
            .ok_or_else(|| {
                DemoError::Expectation("the stand-in never saw the gateway in the brewery".into())
            })?;
        let work_dir = tempfile::Builder::new()
            .prefix("jigasi-demo-calls-")
            .tempdir()
            .map_err(io("temp dir"))?;
        Ok(Self {
            deployment,
            standin,
            gateway,
            ready_after,
            work: work_dir.path().to_path_buf(),
            work_dir: Some(work_dir),
            known_nicks: Vec::new(),
        })
    }

    /// Keeps [`Session::work`] after the session (the demo points the user at its WAV files).
    pub fn keep_work(&mut self) -> PathBuf {
        if let Some(dir) = self.work_dir.take() {
            let _ = dir.keep();
        }
        self.work.clone()
    }

    /// A phone (baresip `alice`, registered at Kamailio) calls the gateway's number; Kamailio adds
    /// the room header. The phone plays `phone_wav` (48 kHz mono) for `talk`.
    pub async fn dial_in(
        &mut self,
        name: &str,
        phone_wav: &Path,
        talk: Duration,
    ) -> Result<CallReport, DemoError> {
        let registrar = self.deployment.kamailio.addr();
        let mut phone = Baresip::start(BaresipConfig {
            record: true,
            play_wav: Some(phone_wav.to_path_buf()),
            codecs: "PCMU".into(),
            ..BaresipConfig::registering("alice", "alicepw", registrar)
        })?;
        phone.wait_registered(Duration::from_secs(5))?;
        let dialled = Instant::now();
        phone.dial(&format!("sip:{SIP_USER}@{}", registrar.ip()))?;
        self.established(&mut phone).await?;
        let setup = dialled.elapsed();
        self.talk_and_measure(name, &mut phone, setup, talk, None)
            .await
    }

    /// A dial-in call from baresip `alice` playing a tone, established, for lifecycle tests:
    /// returns the phone and the gateway's nick in the room.
    pub async fn established_dial_in(
        &mut self,
        tone_hz: u32,
    ) -> Result<(Baresip, String), DemoError> {
        let registrar = self.deployment.kamailio.addr();
        let tone = audio::tone_wav(&self.work, 48_000, tone_hz, 60)?;
        let mut phone = Baresip::start(BaresipConfig {
            play_wav: Some(tone),
            codecs: "PCMU".into(),
            ..BaresipConfig::registering("alice", "alicepw", registrar)
        })?;
        phone.wait_registered(Duration::from_secs(5))?;
        phone.dial(&format!("sip:{SIP_USER}@{}", registrar.ip()))?;
        self.established(&mut phone).await?;
        let nick = self.new_gateway_nick().await?;
        Ok((phone, nick))
    }

    /// Calls room `room` (the number [`crate::ROOM_NUMBER_PREFIX`]`<room>`, for which Kamailio
    /// adds the room header) from a baresip phone registered at Kamailio as `user` (one of
    /// [`crate::PHONES`]) that offers only `codecs` (baresip's `audio_codecs`), plays
    /// `phone_wav` (48 kHz mono) and records what it hears. Returns once the call is
    /// established, with the phone and the gateway's nick in that room.
    pub async fn phone_joins_room(
        &mut self,
        room: &str,
        user: &str,
        codecs: &str,
        phone_wav: &Path,
    ) -> Result<(Baresip, String), DemoError> {
        let registrar = self.deployment.kamailio.addr();
        let mut phone = Baresip::start(BaresipConfig {
            record: true,
            play_wav: Some(phone_wav.to_path_buf()),
            codecs: codecs.into(),
            ..BaresipConfig::registering(user, &format!("{user}pw"), registrar)
        })?;
        phone.wait_registered(Duration::from_secs(5))?;
        phone.dial(&format!(
            "sip:{ROOM_NUMBER_PREFIX}{room}@{}",
            registrar.ip()
        ))?;
        self.established(&mut phone).await?;
        let nick = self.next_nick(Some(room)).await?;
        Ok((phone, nick))
    }

    /// The conference (the stand-in acting as Jicofo) sends a Rayo dial for `bob`, a baresip
    /// phone registered at Kamailio that answers automatically and plays `phone_wav`.
    pub async fn dial_out(
        &mut self,
        name: &str,
        phone_wav: &Path,
        talk: Duration,
    ) -> Result<CallReport, DemoError> {
        let registrar = self.deployment.kamailio.addr();
        let mut phone = Baresip::start(BaresipConfig {
            record: true,
            auto_answer: true,
            play_wav: Some(phone_wav.to_path_buf()),
            codecs: "PCMU".into(),
            ..BaresipConfig::registering("bob", "bobpw", registrar)
        })?;
        phone.wait_registered(Duration::from_secs(5))?;
        let dialled = Instant::now();
        let reference = self
            .standin
            .dial(DEMO_ROOM, "bob", &[("X-Demo", "dial-out")])
            .await
            .map_err(|e| {
                DemoError::Expectation(format!(
                    "dial failed: {e:?}\ngateway log:\n{}",
                    self.gateway.log()
                ))
            })?;
        self.established(&mut phone).await?;
        let setup = dialled.elapsed();
        self.talk_and_measure(
            name,
            &mut phone,
            setup,
            talk,
            Some(format!("{reference:?}")),
        )
        .await
    }

    async fn established(&mut self, phone: &mut Baresip) -> Result<(), DemoError> {
        match phone.wait_event("CALL_ESTABLISHED", Duration::from_secs(20)) {
            Ok(_) => Ok(()),
            Err(error) => Err(DemoError::Expectation(format!(
                "the call was not established: {error}\nphone log:\n{}\ngateway log:\n{}",
                phone.log(),
                self.gateway.log()
            ))),
        }
    }

    async fn talk_and_measure(
        &mut self,
        name: &str,
        phone: &mut Baresip,
        setup: Duration,
        talk: Duration,
        reference: Option<String>,
    ) -> Result<CallReport, DemoError> {
        let nick = self.new_gateway_nick().await?;
        tokio::time::sleep(talk).await;
        // What the conference heard is read while the gateway is still in the room.
        let heard = self
            .standin
            .received_audio(DEMO_ROOM, &nick)
            .await
            .map_err(|e| DemoError::Expectation(format!("stand-in audio: {e}")))?;
        phone.hangup()?;
        let _ = phone.wait_event("CALL_CLOSED", Duration::from_secs(5));
        let samples: Vec<f32> = heard.iter().map(|&s| f32::from(s) / 32768.0).collect();
        let conference_wav = self.work.join(format!("{name}-conference-heard.wav"));
        audio::write_wav(&conference_wav, 48_000, &samples)?;
        let recording = phone.received_recordings().into_iter().next();
        let phone_wav = match &recording {
            Some(path) => {
                let kept = self.work.join(format!("{name}-phone-heard.wav"));
                std::fs::copy(path, &kept).map_err(io("copy the phone's recording"))?;
                Some(kept)
            }
            None => None,
        };
        let (phone_heard_hz, phone_heard_seconds) = match &phone_wav {
            Some(path) => {
                let wav = audio::read_wav(path)?;
                (
                    audio::dominant_frequency_of(&wav.mono(), wav.rate),
                    wav.duration().as_secs_f64(),
                )
            }
            None => (None, 0.0),
        };
        let violations = self
            .standin
            .violations(DEMO_ROOM)
            .await
            .map_err(|e| DemoError::Expectation(format!("stand-in violations: {e}")))?
            .len();
        #[allow(clippy::cast_precision_loss)]
        let conference_heard_seconds = heard.len() as f64 / 48_000.0;
        Ok(CallReport {
            setup,
            nick,
            conference_heard_hz: audio::dominant_frequency_of(&samples, 48_000),
            conference_heard_seconds,
            phone_heard_hz,
            phone_heard_seconds,
            conference_wav,
            phone_wav,
            violations,
            reference,
            log: String::new(),
        })
    }

    /// The nick of the gateway's next participant in the demo room: the next one the stand-in
    /// sends a `session-initiate` to that it has not seen before (waits up to 10 s).
    pub async fn new_gateway_nick(&mut self) -> Result<String, DemoError> {
        self.next_nick(None).await
    }

    /// [`Self::new_gateway_nick`], in `room` only when given.
    async fn next_nick(&mut self, room: Option<&str>) -> Result<String, DemoError> {
        let known = self.known_nicks.clone();
        let room = match room {
            Some(room) => Some(
                self.standin
                    .room_jid(room)
                    .map_err(|e| DemoError::Expectation(format!("room {room}: {e}")))?
                    .to_lowercase(),
            ),
            None => None,
        };
        let nick = self
            .standin
            .wait_for(Duration::from_secs(10), |event| match event {
                StandInEvent::SessionInitiated {
                    nick,
                    room: in_room,
                    ..
                } if !known.contains(nick) && room.as_ref().is_none_or(|r| r == in_room) => {
                    Some(nick.clone())
                }
                _ => None,
            })
            .await
            .ok_or_else(|| {
                DemoError::Expectation("the gateway never got a session-initiate".into())
            })?;
        self.known_nicks.push(nick.clone());
        Ok(nick)
    }

    /// Stops the gateway (SIGTERM) and returns its exit status and log.
    pub fn stop(mut self) -> Result<(std::process::ExitStatus, String), DemoError> {
        let exit = self.gateway.terminate(Duration::from_secs(10))?;
        Ok((exit, self.gateway.log()))
    }
}

/// Generates a speech WAV with espeak-ng and sox at `rate`, `path` being the output.
pub fn speech(text: &str, voice: &str, rate: u32, path: &Path) -> Result<(), DemoError> {
    let raw = path.with_extension("raw.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .map_err(io("run espeak-ng"))?;
    if !status.success() {
        return Err(DemoError::Expectation(format!(
            "espeak-ng failed: {status}"
        )));
    }
    let status = Command::new("sox")
        .arg(&raw)
        .args(["-r", &rate.to_string(), "-c", "1", "-b", "16"])
        .arg(path)
        .status()
        .map_err(io("run sox"))?;
    if !status.success() {
        return Err(DemoError::Expectation(format!("sox failed: {status}")));
    }
    Ok(())
}

/// A dial-in call carrying tones, for tests: the phone plays `phone_tone` Hz, the web
/// participant `participant_tone` Hz.
pub async fn dial_in_scenario(
    binary: &Path,
    echo: bool,
    phone_tone: u32,
    participant_tone: f64,
    talk: Duration,
) -> Result<CallReport, DemoError> {
    let config = SessionConfig {
        participant: AudioSource::Tone(participant_tone),
        echo,
        capture: false,
        extra_properties: Vec::new(),
    };
    let mut session = Session::start(binary, &config).await?;
    let tone = audio::tone_wav(&session.work, 48_000, phone_tone, 30)?;
    let report = session.dial_in("dial-in", &tone, talk).await?;
    let (_, log) = session.stop()?;
    Ok(CallReport { log, ..report })
}

/// A dial-out call carrying tones, for tests.
pub async fn dial_out_scenario(
    binary: &Path,
    echo: bool,
    phone_tone: u32,
    participant_tone: f64,
    talk: Duration,
) -> Result<(String, CallReport), DemoError> {
    let config = SessionConfig {
        participant: AudioSource::Tone(participant_tone),
        echo,
        capture: false,
        extra_properties: Vec::new(),
    };
    let mut session = Session::start(binary, &config).await?;
    let tone = audio::tone_wav(&session.work, 48_000, phone_tone, 30)?;
    let report = session.dial_out("dial-out", &tone, talk).await?;
    let (_, log) = session.stop()?;
    Ok((
        report.reference.clone().unwrap_or_default(),
        CallReport { log, ..report },
    ))
}

impl Drop for Session {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.work_dir.take()
        {
            let kept = dir.keep();
            eprintln!("session files kept for inspection: {}", kept.display());
        }
    }
}
