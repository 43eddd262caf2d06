//! Out-of-dialog requests we originate (REGISTER, keep-alive OPTIONS) and the CRLF keep-alive.
//!
//! rsipstack's own `Registration` rewrites the Contact with the address the registrar saw
//! (`received`/`rport` of a 401) and picks the transport of a proxied REGISTER from the
//! Request-URI only; the gateway must advertise the configured public address and use the
//! configured transport. So these requests are built here on the stack's transaction layer.

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::dialog::authenticate::{Credential, handle_client_authenticate};
use rsipstack::sip::headers::CallId;
use rsipstack::sip::{Header, Method, Response, SipMessage, StatusCode, StatusCodeKind, Uri};
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::make_tag;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::stream::StreamConnection;
use rsipstack::transport::{SipAddr, SipConnection};

use crate::Transport;
use crate::tls::TlsClient;

/// Where our out-of-dialog requests go: the registrar (acting as outbound proxy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peer {
    /// Its resolved address.
    pub(crate) addr: SocketAddr,
    /// The transport to reach it.
    pub(crate) transport: Transport,
    /// Its host name as configured (the TLS server name).
    pub(crate) host: String,
}

impl Peer {
    fn sip_addr(&self) -> SipAddr {
        SipAddr {
            r#type: Some(self.transport.to_stack()),
            addr: self.addr.into(),
        }
    }
}

/// One out-of-dialog request.
pub(crate) struct OutOfDialog {
    pub(crate) method: Method,
    pub(crate) request_uri: Uri,
    /// From and To (we address our own address of record).
    pub(crate) aor: Uri,
    pub(crate) call_id: String,
    /// The address to put in Via (the advertised address for the transport).
    pub(crate) via_addr: SocketAddr,
    /// Further headers (Contact, Expires).
    pub(crate) headers: Vec<Header>,
}

/// Why a request got no final response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestFailure {
    /// It could not be sent (connection refused, TLS handshake failed, no route).
    Transport(String),
    /// The transaction ended without a final response (timer F).
    TimedOut,
}

/// Sends out-of-dialog requests through the stack, answering one digest challenge.
pub(crate) struct Requester {
    endpoint: Arc<EndpointInner>,
    tls: Option<Arc<TlsClient>>,
    credential: Option<Credential>,
}

impl Requester {
    pub(crate) fn new(
        endpoint: Arc<EndpointInner>,
        tls: Option<Arc<TlsClient>>,
        credential: Option<Credential>,
    ) -> Self {
        Self {
            endpoint,
            tls,
            credential,
        }
    }

    /// For TLS, makes sure a checked connection to `peer` exists.
    async fn connect(&self, peer: &Peer) -> Result<(), RequestFailure> {
        if peer.transport != Transport::Tls {
            return Ok(());
        }
        let tls = self
            .tls
            .as_ref()
            .ok_or_else(|| RequestFailure::Transport("TLS client not configured".into()))?;
        tls.ensure(&self.endpoint.transport_layer, peer.addr, &peer.host)
            .await
            .map_err(|e| RequestFailure::Transport(e.to_string()))
    }

    /// Sends `request` to `peer` with CSeq `*cseq` and returns the final response. A 401/407 is
    /// answered once with the account's credentials (CSeq incremented); a second challenge is
    /// returned as the final response.
    pub(crate) async fn send(
        &self,
        request: OutOfDialog,
        cseq: &mut u32,
        peer: &Peer,
    ) -> Result<Response, RequestFailure> {
        self.connect(peer).await?;
        let transport = |e: rsipstack::Error| RequestFailure::Transport(e.to_string());
        let via_addr = SipAddr {
            r#type: Some(peer.transport.to_stack()),
            addr: request.via_addr.into(),
        };
        let via = self
            .endpoint
            .get_via(Some(via_addr), None)
            .map_err(transport)?;
        let from = rsipstack::sip::typed::From {
            display_name: None,
            uri: request.aor.clone(),
            params: vec![],
        }
        .with_tag(make_tag());
        let to = rsipstack::sip::typed::To {
            display_name: None,
            uri: request.aor,
            params: vec![],
        };
        let mut message = self.endpoint.make_request(
            request.method,
            request.request_uri,
            via,
            from,
            to,
            *cseq,
            Some(CallId::new(request.call_id)),
        );
        message.headers.extend(request.headers);
        let key =
            TransactionKey::from_request(&message, TransactionRole::Client).map_err(transport)?;
        let mut tx = Transaction::new_client(key, message, self.endpoint.clone(), None);
        tx.destination = Some(peer.sip_addr());
        tx.send().await.map_err(transport)?;
        let mut challenged = false;
        while let Some(message) = tx.receive().await {
            let SipMessage::Response(response) = message else {
                continue;
            };
            if response.status_code.kind() == StatusCodeKind::Provisional {
                continue;
            }
            let challenge = matches!(
                response.status_code,
                StatusCode::Unauthorized | StatusCode::ProxyAuthenticationRequired
            );
            match (&self.credential, challenge && !challenged) {
                (Some(credential), true) => {
                    challenged = true;
                    *cseq += 1;
                    tx = handle_client_authenticate(*cseq, &tx, response, credential)
                        .await
                        .map_err(transport)?;
                    tx.send().await.map_err(transport)?;
                }
                (Some(_) | None, _) => return Ok(response),
            }
        }
        Err(RequestFailure::TimedOut)
    }

    /// Sends a keep-alive double CRLF to `peer` (RFC 5626 §4.4.1; on UDP one datagram).
    pub(crate) async fn send_crlf(&self, peer: &Peer) -> Result<(), RequestFailure> {
        self.connect(peer).await?;
        let transport = |e: rsipstack::Error| RequestFailure::Transport(e.to_string());
        let target = peer.sip_addr();
        let (connection, _) = self
            .endpoint
            .transport_layer
            .lookup(&target, None)
            .await
            .map_err(transport)?;
        const PING: &[u8] = b"\r\n\r\n";
        match connection {
            SipConnection::Udp(udp) => udp.send_raw(PING, &target).await.map_err(transport),
            SipConnection::Tcp(tcp) => tcp.send_raw(PING).await.map_err(transport),
            SipConnection::Tls(tls) => tls.send_raw(PING).await.map_err(transport),
            SipConnection::Channel(_)
            | SipConnection::TlsPlatform(_)
            | SipConnection::TcpListener(_)
            | SipConnection::TlsListener(_) => Err(RequestFailure::Transport(
                "no connection for a CRLF keep-alive".into(),
            )),
        }
    }
}

/// The expiry the registrar granted to `ours` (the `host:port` of our Contact): the `expires`
/// parameter of our binding among the 200's Contact values, else its `Expires` header. `None`
/// when neither says.
pub(crate) fn granted_expiry(response: &Response, ours: &str) -> Option<u32> {
    let contacts: Vec<String> = response
        .headers
        .iter()
        .filter(|h| matches!(h, Header::Contact(_)))
        .map(|h| h.value().to_owned())
        .collect();
    let expires = response
        .headers
        .iter()
        .find(|h| matches!(h, Header::Expires(_)))
        .map(|h| h.value().to_owned());
    granted_from(&contacts, expires.as_deref(), ours)
}

/// [`granted_expiry`] on header values.
fn granted_from(contacts: &[String], expires: Option<&str>, ours: &str) -> Option<u32> {
    let ours = ours.to_ascii_lowercase();
    let binding = contacts
        .iter()
        .flat_map(|value| split_contacts(value))
        .find_map(|contact| {
            let (uri, params) = match (contact.find('<'), contact.find('>')) {
                (Some(open), Some(close)) if open < close => {
                    (&contact[open + 1..close], &contact[close + 1..])
                }
                _ => contact.split_once(';').unwrap_or((contact, "")),
            };
            let host_port = uri
                .split_once('@')
                .map_or(uri, |(_, rest)| rest)
                .split(';')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            (host_port == ours).then_some(params)
        });
    let from_param = binding.and_then(|params| {
        params.split(';').find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("expires")
                .then(|| value.trim().parse().ok())?
        })
    });
    from_param.or_else(|| expires.and_then(|e| e.trim().parse().ok()))
}

/// Splits a Contact header value at the commas between contacts (not inside quotes or `<>`).
fn split_contacts(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut angle) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contacts(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn our_binding_expiry_wins() {
        let values = contacts(&[
            "<sip:jigasi@10.0.0.9:5062>;expires=600, <sip:jigasi@192.0.2.1:5060;transport=tcp>;expires=120",
        ]);
        assert_eq!(
            granted_from(&values, Some("3600"), "192.0.2.1:5060"),
            Some(120)
        );
    }

    #[test]
    fn expires_header_when_our_binding_has_none() {
        let values = contacts(&["<sip:jigasi@192.0.2.1:5060>"]);
        assert_eq!(
            granted_from(&values, Some(" 300 "), "192.0.2.1:5060"),
            Some(300)
        );
        assert_eq!(granted_from(&[], Some("300"), "192.0.2.1:5060"), Some(300));
        assert_eq!(granted_from(&[], None, "192.0.2.1:5060"), None);
    }

    #[test]
    fn other_bindings_and_garbage_are_ignored() {
        let values = contacts(&[
            "\"a, b\" <sip:x@10.0.0.1:5060>;expires=5",
            "<<>>;;expires=abc",
            "sip:jigasi@192.0.2.1:5060;expires=77",
            "",
        ]);
        assert_eq!(granted_from(&values, None, "192.0.2.1:5060"), Some(77));
        assert_eq!(granted_from(&values, None, "198.51.100.1:5060"), None);
    }

    #[test]
    fn contact_lists_split_outside_quotes() {
        assert_eq!(
            split_contacts("\"a, b\" <sip:x@h;p=1,2>;q=1, <sip:y@h>"),
            vec!["\"a, b\" <sip:x@h;p=1,2>;q=1", "<sip:y@h>"]
        );
    }
}
