//! rustls client configuration for STARTTLS, built with an explicit aws-lc-rs provider so no
//! process-wide default provider is needed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use crate::ConnectError;

/// Connectors built so far, by `(ca_file, dangerous_accept_invalid_certs)`. Every per-call XMPP
/// connection with the same settings shares one rustls `ClientConfig`: its parsed roots and its
/// session cache (so later connections resume TLS sessions) instead of about 14 KB rebuilt per
/// call. Immutable once built; a changed CA file is read again only after a restart.
static CONNECTORS: Mutex<Vec<(ConnectorKey, TlsConnector)>> = Mutex::new(Vec::new());

/// `(ca_file, dangerous_accept_invalid_certs)`.
type ConnectorKey = (Option<PathBuf>, bool);

/// The connector for these settings: either trusting the CA certificates in `ca_file` (PEM), or,
/// with `dangerous_accept_invalid_certs`, any certificate (tests against self-signed Prosody).
/// Built once per distinct setting and shared afterwards.
pub(crate) async fn connector(
    ca_file: Option<&Path>,
    dangerous_accept_invalid_certs: bool,
) -> Result<TlsConnector, ConnectError> {
    let key = (
        ca_file.map(Path::to_path_buf),
        dangerous_accept_invalid_certs,
    );
    if let Some(found) = cached(&key) {
        return Ok(found);
    }
    let built = build_connector(ca_file, dangerous_accept_invalid_certs).await?;
    let mut connectors = CONNECTORS.lock().unwrap_or_else(|e| e.into_inner());
    // Two connections may have built one at once: keep the first, so all share it.
    if let Some(existing) = lookup(&connectors, &key) {
        return Ok(existing);
    }
    connectors.push((key, built.clone()));
    Ok(built)
}

fn cached(key: &ConnectorKey) -> Option<TlsConnector> {
    lookup(&CONNECTORS.lock().unwrap_or_else(|e| e.into_inner()), key)
}

fn lookup(connectors: &[(ConnectorKey, TlsConnector)], key: &ConnectorKey) -> Option<TlsConnector> {
    connectors
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, connector)| connector.clone())
}

async fn build_connector(
    ca_file: Option<&Path>,
    dangerous_accept_invalid_certs: bool,
) -> Result<TlsConnector, ConnectError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Tls(e.to_string()))?;
    let config = if dangerous_accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        if let Some(path) = ca_file {
            let pem = tokio::fs::read(path)
                .await
                .map_err(|e| ConnectError::CaFile(format!("{}: {e}", path.display())))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert =
                    cert.map_err(|e| ConnectError::CaFile(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| ConnectError::CaFile(format!("{}: {e}", path.display())))?;
            }
        }
        if roots.is_empty() {
            return Err(ConnectError::CaFile(
                "no CA certificates: set ca_file (system roots are not available)".into(),
            ));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The TLS server name to verify.
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, ConnectError> {
    ServerName::try_from(name.to_owned()).map_err(|e| ConnectError::Tls(e.to_string()))
}

/// Accepts any certificate chain but still checks the handshake signature against the
/// certificate's key. Only for tests against self-signed servers.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_with_the_same_settings_share_one_tls_config() {
        let first = connector(None, true).await.expect("accept-any connector");
        let second = connector(None, true).await.expect("accept-any connector");
        assert!(Arc::ptr_eq(first.config(), second.config()));
    }

    #[tokio::test]
    async fn a_missing_ca_file_is_an_error_every_time_not_a_cached_connector() {
        let missing = Path::new("/nonexistent/jigasi-rs-test-ca.pem");
        for _ in 0..2 {
            assert!(matches!(
                connector(Some(missing), false).await,
                Err(ConnectError::CaFile(_))
            ));
        }
        assert!(cached(&(Some(missing.to_path_buf()), false)).is_none());
    }
}
