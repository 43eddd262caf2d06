//! SIP over TLS: the listener's certificate, and the client side toward a registrar, proxy or
//! `sips:` peer with our own certificate checks.
//!
//! rsipstack dials TLS connections itself with the trust anchors of its `TlsConfig` and no way
//! to accept an invalid certificate. We therefore dial outbound TLS connections ourselves (with
//! the configured CA file or the platform roots, or, with
//! `dangerous_accept_invalid_certs`, without checks) and hand them to the stack's transport
//! layer, which then sends the requests for that peer over them. The stack's own TLS
//! configuration gets the same trust anchors, so a connection it dials by itself (e.g. after
//! ours closed in the middle of a dialog) is checked the same way.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rsipstack::transport::tls::{TlsConfig, TlsConnection};
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// The TLS listener (Jigasi: `SIP_PREFERRED_SECURE_PORT`, 5061, on all interfaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListen {
    /// Address to listen on. Port 0 picks a free port (tests).
    pub bind: SocketAddr,
    /// PEM file with our certificate chain, leaf first.
    pub cert_pem_path: PathBuf,
    /// PEM file with the private key (PKCS#8 or PKCS#1).
    pub key_pem_path: PathBuf,
}

/// How TLS servers we connect to (registrar, proxy, `sips:` targets) are checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsClientOptions {
    /// PEM file with the CA certificates to trust. `None` trusts the platform's CA bundle
    /// (`SSL_CERT_FILE`, else the first of the usual bundle paths such as
    /// `/etc/ssl/certs/ca-certificates.crt`).
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (Jigasi's `ALWAYS_TRUST_MODE_ENABLED`). Dangerous: anyone on
    /// the path can impersonate the registrar.
    pub dangerous_accept_invalid_certs: bool,
}

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the expected kind.
    #[error("{path} holds no usable {what}")]
    NoPem {
        /// The file.
        path: PathBuf,
        /// What we looked for ("certificate", "private key").
        what: &'static str,
    },
    /// The crypto provider cannot make a TLS configuration (a build problem, not a setting).
    #[error("TLS crypto provider unusable: {0}")]
    Provider(String),
    /// The certificate and key do not form a usable server identity.
    #[error("certificate {cert} and key {key} cannot be used: {reason}")]
    BadIdentity {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
}

/// Makes sure rustls has a process-wide crypto provider. rsipstack builds its TLS configs with
/// rustls's default builders, and two providers (ring and aws-lc-rs) are linked into this
/// workspace, so rustls cannot pick one by itself.
pub(crate) fn install_crypto_provider() {
    // An `Err` means a provider is installed already, which is all we need.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoPem {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// Reads and checks the listener's certificate and key; returns both PEM texts for the stack.
pub(crate) fn load_listener_identity(listen: &TlsListen) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let cert_pem = read(&listen.cert_pem_path)?;
    let key_pem = read(&listen.key_pem_path)?;
    let certs = certificates(&listen.cert_pem_path, &cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoPem {
        path: listen.key_pem_path.clone(),
        what: "private key",
    })?;
    // The same check rsipstack's listener makes later, where a failure would only be logged.
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| TlsError::BadIdentity {
            cert: listen.cert_pem_path.clone(),
            key: listen.key_pem_path.clone(),
            reason: e.to_string(),
        })?;
    Ok((cert_pem, key_pem))
}

/// Where Linux distributions keep the platform CA bundle.
const PLATFORM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The PEM text of the trust anchors: the CA file, or the platform bundle (empty if none).
fn trust_anchor_pem(options: &TlsClientOptions) -> Result<Vec<u8>, TlsError> {
    if let Some(path) = &options.ca_file {
        let pem = read(path)?;
        certificates(path, &pem)?;
        return Ok(pem);
    }
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let bundle = from_env
        .into_iter()
        .chain(PLATFORM_BUNDLES.iter().map(PathBuf::from))
        .find(|path| path.is_file());
    match bundle {
        Some(path) => read(&path),
        None => {
            warn!("no platform CA bundle found: TLS servers cannot be verified");
            Ok(Vec::new())
        }
    }
}

/// Dials TLS connections for the stack and keeps track of the live ones.
pub(crate) struct TlsClient {
    connector: tokio_rustls::TlsConnector,
    /// PEM text of the trust anchors, for the stack's own TLS configuration.
    anchors: Vec<u8>,
    /// Our live connections by peer; a connection's token is cancelled when the stack retires
    /// it.
    flows: Mutex<HashMap<SocketAddr, CancellationToken>>,
    cancel: CancellationToken,
}

impl TlsClient {
    pub(crate) fn new(
        options: &TlsClientOptions,
        cancel: CancellationToken,
    ) -> Result<Self, TlsError> {
        let provider = provider();
        let anchors = trust_anchor_pem(options)?;
        let mut roots = RootCertStore::empty();
        let (added, ignored) =
            roots.add_parsable_certificates(CertificateDer::pem_slice_iter(&anchors).flatten());
        debug!(added, ignored, "TLS trust anchors loaded");
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Provider(e.to_string()))?;
        let config = if options.dangerous_accept_invalid_certs {
            warn!("SIP TLS server certificates are not checked (dangerous_accept_invalid_certs)");
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
                .with_no_client_auth()
        } else {
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(Self {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            anchors,
            flows: Mutex::new(HashMap::new()),
            cancel,
        })
    }

    /// The stack's TLS configuration for connections it dials itself.
    pub(crate) fn stack_config(&self) -> TlsConfig {
        TlsConfig {
            ca_certs: (!self.anchors.is_empty()).then(|| self.anchors.clone()),
            ..TlsConfig::default()
        }
    }

    /// Makes sure the stack has a live TLS connection to `addr`, dialing one (checking the
    /// certificate against `server_name`) if needed.
    pub(crate) async fn ensure(
        &self,
        transport_layer: &TransportLayer,
        addr: SocketAddr,
        server_name: &str,
    ) -> Result<(), rsipstack::Error> {
        let live = self
            .flows
            .lock()
            .map(|flows| flows.get(&addr).is_some_and(|t| !t.is_cancelled()))
            .unwrap_or(false);
        if live {
            return Ok(());
        }
        let name = match server_name.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(server_name.to_owned()).map_err(|_| {
                rsipstack::Error::Error(format!("invalid TLS server name {server_name:?}"))
            })?,
        };
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let stream = self.connector.connect(name, tcp).await?;
        let token = self.cancel.child_token();
        let remote = SipAddr {
            r#type: Some(rsipstack::sip::Transport::Tls),
            addr: addr.into(),
        };
        let connection =
            TlsConnection::from_client_stream(stream, remote, Some(token.clone())).await?;
        transport_layer.add_connection(SipConnection::Tls(connection));
        if let Ok(mut flows) = self.flows.lock() {
            flows.retain(|_, t| !t.is_cancelled());
            flows.insert(addr, token);
        }
        debug!(%addr, server_name, "TLS connection established");
        Ok(())
    }
}

/// Accepts any server certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn missing_files_are_typed_errors() {
        let listen = TlsListen {
            bind: "127.0.0.1:0".parse().unwrap(),
            cert_pem_path: "/nonexistent/cert.pem".into(),
            key_pem_path: "/nonexistent/key.pem".into(),
        };
        assert!(matches!(
            load_listener_identity(&listen),
            Err(TlsError::Read { .. })
        ));
        let options = TlsClientOptions {
            ca_file: Some("/nonexistent/ca.pem".into()),
            dangerous_accept_invalid_certs: false,
        };
        assert!(matches!(
            TlsClient::new(&options, CancellationToken::new()),
            Err(TlsError::Read { .. })
        ));
    }

    #[test]
    fn garbage_pem_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            b"-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let options = TlsClientOptions {
            ca_file: Some(junk.clone()),
            dangerous_accept_invalid_certs: false,
        };
        assert!(matches!(
            TlsClient::new(&options, CancellationToken::new()),
            Err(TlsError::NoPem { .. })
        ));
        let listen = TlsListen {
            bind: "127.0.0.1:0".parse().unwrap(),
            cert_pem_path: junk.clone(),
            key_pem_path: junk,
        };
        assert!(matches!(
            load_listener_identity(&listen),
            Err(TlsError::NoPem { .. })
        ));
    }
}
