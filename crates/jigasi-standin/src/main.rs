//! `jigasi-standin`: runs the Jicofo + JVB stand-in against a Prosody until Ctrl-C / SIGTERM.
//!
//! ```text
//! jigasi-standin --c2s 127.0.0.1:5222 --component 127.0.0.1:5347 --domain meet.example.com \
//!     --secret focussecret --focus-password focuspw --room room1 --tone room1=440
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use jigasi_standin::{AudioSource, StandIn, StandInConfig};
use jigasi_types::Secret;

const USAGE: &str = "usage: jigasi-standin --c2s ADDR --component ADDR [--domain D] [--secret S] \
[--focus-user U] [--focus-password P] [--room NAME]... [--tone ROOM=HZ]... [--wav ROOM=PATH]... \
[--min-participants N] [--single-participant-timeout SECS] [--no-brewery]";

#[derive(Debug)]
struct Args {
    c2s: SocketAddr,
    component: SocketAddr,
    domain: String,
    secret: String,
    focus_user: String,
    focus_password: String,
    rooms: Vec<String>,
    participants: Vec<(String, AudioSource)>,
    min_participants: usize,
    single_participant_timeout: Option<Duration>,
    brewery: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut c2s = None;
    let mut component = None;
    let mut parsed = Args {
        c2s: SocketAddr::from(([127, 0, 0, 1], 5222)),
        component: SocketAddr::from(([127, 0, 0, 1], 5347)),
        domain: "meet.example.com".into(),
        secret: "focussecret".into(),
        focus_user: "focus".into(),
        focus_password: "focuspw".into(),
        rooms: Vec::new(),
        participants: Vec::new(),
        min_participants: 2,
        single_participant_timeout: None,
        brewery: true,
    };
    while let Some(flag) = args.next() {
        if flag == "--no-brewery" {
            parsed.brewery = false;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |what: &str| format!("bad {what} {value:?} for {flag}");
        match flag.as_str() {
            "--c2s" => c2s = Some(value.parse().map_err(|_| bad("address"))?),
            "--component" => component = Some(value.parse().map_err(|_| bad("address"))?),
            "--domain" => parsed.domain = value,
            "--secret" => parsed.secret = value,
            "--focus-user" => parsed.focus_user = value,
            "--focus-password" => parsed.focus_password = value,
            "--room" => parsed.rooms.push(value),
            "--tone" => {
                let (room, hz) = value.split_once('=').ok_or_else(|| bad("ROOM=HZ"))?;
                let hz: f64 = hz.parse().map_err(|_| bad("frequency"))?;
                parsed
                    .participants
                    .push((room.to_owned(), AudioSource::Tone(hz)));
            }
            "--wav" => {
                let (room, path) = value.split_once('=').ok_or_else(|| bad("ROOM=PATH"))?;
                parsed
                    .participants
                    .push((room.to_owned(), AudioSource::Wav(path.into())));
            }
            "--min-participants" => {
                parsed.min_participants = value.parse().map_err(|_| bad("number"))?;
            }
            "--single-participant-timeout" => {
                let secs: u64 = value.parse().map_err(|_| bad("seconds"))?;
                parsed.single_participant_timeout = Some(Duration::from_secs(secs));
            }
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    parsed.c2s = c2s.unwrap_or(parsed.c2s);
    parsed.component = component.unwrap_or(parsed.component);
    Ok(parsed)
}

async fn run(args: Args) -> Result<(), String> {
    let mut config = StandInConfig::new(
        args.c2s,
        args.component,
        args.domain,
        Secret::new(args.secret),
        Secret::new(args.focus_password),
    );
    config.focus_user = args.focus_user;
    config.min_participants = args.min_participants;
    if let Some(timeout) = args.single_participant_timeout {
        config.single_participant_timeout = timeout;
    }
    if !args.brewery {
        config.brewery_jid = None;
    }
    let stand_in = StandIn::start(config)
        .await
        .map_err(|e| format!("start: {e}"))?;
    tracing::info!(focus = stand_in.focus_jid(), "stand-in running");
    let mut rooms = args.rooms;
    rooms.extend(args.participants.iter().map(|(room, _)| room.clone()));
    rooms.dedup();
    for room in &rooms {
        stand_in
            .create_conference(room)
            .await
            .map_err(|e| format!("create {room}: {e}"))?;
        tracing::info!(room, "conference created");
    }
    for (index, (room, source)) in args.participants.into_iter().enumerate() {
        let nick = format!(
            "{:08x}",
            0xcafe_0000_u32 + u32::try_from(index).unwrap_or(0)
        );
        stand_in
            .add_participant(&room, &nick, source.clone())
            .await
            .map_err(|e| format!("participant in {room}: {e}"))?;
        tracing::info!(room, nick, ?source, "simulated participant joined");
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("signal handler: {e}"))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("jigasi-standin: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn flags_are_parsed() {
        let args = parse(&[
            "--c2s",
            "127.0.0.1:6000",
            "--room",
            "a",
            "--tone",
            "a=440",
            "--min-participants",
            "1",
            "--no-brewery",
        ])
        .unwrap();
        assert_eq!(args.c2s.port(), 6000);
        assert_eq!(args.rooms, ["a"]);
        assert_eq!(
            args.participants,
            [("a".to_owned(), AudioSource::Tone(440.0))]
        );
        assert_eq!(args.min_participants, 1);
        assert!(!args.brewery);
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(parse(&["--c2s", "nope"]).is_err());
        assert!(parse(&["--tone", "a440"]).is_err());
        assert!(parse(&["--room"]).is_err());
        assert!(parse(&["--bogus", "1"]).is_err());
    }
}
