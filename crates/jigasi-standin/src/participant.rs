//! A simulated web participant's XMPP side: an anonymous client on the main domain that joins
//! the room the way lib-jitsi-meet does (nick, `SourceInfo`, `audiomuted`), so that the gateway
//! sees a real occupant presence and a real departure. It answers disco#info like a browser
//! client and acks anything else addressed to it (it has no Jingle session: its media is played
//! by the bridge itself, see `media.rs`).

use std::time::Duration;

use jigasi_jingle::jitmeet::{AudioMuted, Nick, SourceInfo};
use jigasi_xmpp::disco::{DiscoInfo, Identity, JITSI_CAPS_NODE};
use jigasi_xmpp::jid::FullJid;
use jigasi_xmpp::muc::{self, MucPresence};
use jigasi_xmpp::{Auth, ClientConfig, TlsPolicy, stanza};
use jigasi_xmpp_io::{ConnectOptions, Incoming, XmppEvents, XmppHandle, connect_client};
use tokio::sync::oneshot;

use crate::config::StandInConfig;
use crate::event::StandInError;

/// A connected, joined simulated participant. Dropping it leaves the room and disconnects.
#[derive(Debug)]
pub(crate) struct SimulatedClient {
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
}

impl SimulatedClient {
    /// Logs in anonymously and joins `occupant` (`room@muc/nick`) announcing `source_name`.
    pub(crate) async fn join(
        config: &StandInConfig,
        occupant: FullJid,
        source_name: &str,
    ) -> Result<Self, StandInError> {
        let options = ConnectOptions {
            connect_timeout: config.connect_timeout,
            ..ConnectOptions::new(config.c2s_addr.ip().to_string(), config.c2s_addr.port())
        };
        let client = ClientConfig::new(config.domain.clone(), Auth::Anonymous)
            .with_tls(TlsPolicy::Disabled)
            .with_resource(occupant.resource().as_str());
        let (handle, mut events) = connect_client(options, client).await?;
        let disco = web_client_disco();
        let presence = muc::join_presence(
            &occupant,
            None,
            vec![
                disco.caps_element(JITSI_CAPS_NODE),
                Nick(format!("simulated {}", occupant.resource())).to_element(),
                AudioMuted(false).to_element(),
                SourceInfo::for_sources([(source_name, false)]).to_element(),
            ],
        );
        handle
            .send(presence)
            .await
            .map_err(|_| StandInError::Closed)?;
        tokio::time::timeout(JOIN_TIMEOUT, wait_joined(&handle, &mut events, &disco))
            .await
            .map_err(|_| StandInError::Timeout("simulated participant join"))??;
        let (stop, stopped) = oneshot::channel();
        let (finished, done) = oneshot::channel();
        tokio::spawn(async move {
            serve(handle.clone(), events, disco, stopped).await;
            // Leave politely, then close the stream.
            let _ = handle.send(muc::leave_presence(&occupant)).await;
            handle.close().await;
            let _ = finished.send(());
        });
        Ok(Self {
            stop: Some(stop),
            done: Some(done),
        })
    }

    /// Leaves the room and waits (briefly) until the connection is closed.
    pub(crate) async fn leave(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
        }
    }
}

impl Drop for SimulatedClient {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn wait_joined(
    handle: &XmppHandle,
    events: &mut XmppEvents,
    disco: &DiscoInfo,
) -> Result<(), StandInError> {
    loop {
        match events.next().await {
            Some(Incoming::Stanza(stanza)) => match MucPresence::classify(&stanza) {
                Some(MucPresence::SelfJoined { .. }) => return Ok(()),
                Some(MucPresence::Error { error, .. }) => {
                    return Err(StandInError::Refused(error.to_string()));
                }
                Some(_) | None => answer(handle, &stanza, disco).await,
            },
            Some(Incoming::Closed(_)) | None => return Err(StandInError::Closed),
        }
    }
}

async fn serve(
    handle: XmppHandle,
    mut events: XmppEvents,
    disco: DiscoInfo,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            incoming = events.next() => match incoming {
                Some(Incoming::Stanza(stanza)) => answer(&handle, &stanza, &disco).await,
                Some(Incoming::Closed(_)) | None => return,
            },
        }
    }
}

/// Answers disco#info; acks every other IQ request (mute notifications, ...).
async fn answer(handle: &XmppHandle, request: &minidom::Element, disco: &DiscoInfo) {
    if !stanza::is_iq_request(request) {
        return;
    }
    let reply = disco
        .answer(request)
        .unwrap_or_else(|| stanza::iq_result(request));
    let _ = handle.send(reply).await;
}

/// What a browser running lib-jitsi-meet answers, audio-relevant part.
fn web_client_disco() -> DiscoInfo {
    DiscoInfo {
        identities: vec![Identity {
            category: "client".into(),
            kind: "web".into(),
            lang: None,
            name: Some("simulated web participant".into()),
        }],
        features: [
            "http://jabber.org/protocol/disco#info",
            "urn:xmpp:jingle:1",
            "urn:xmpp:jingle:apps:rtp:1",
            "urn:xmpp:jingle:apps:rtp:audio",
            "urn:xmpp:jingle:transports:ice-udp:1",
            "urn:xmpp:jingle:apps:dtls:0",
            "urn:ietf:rfc:5761",
            "urn:ietf:rfc:5888",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect(),
    }
}

const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
