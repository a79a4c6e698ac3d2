//! TLS client settings: system roots, a custom CA file, or a pinned certificate thumbprint.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha1::Digest as _;

use super::config::CertCheck;
use super::error::WinRmError;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Build a client configuration for `check`.
pub fn client_config(check: &CertCheck) -> Result<Arc<ClientConfig>, WinRmError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| WinRmError::Config(format!("TLS setup failed: {e}")))?;
    let config = match check {
        CertCheck::Thumbprint(hex) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                pin: hex.clone(),
                provider,
            }))
            .with_no_client_auth(),
        CertCheck::CaFile(path) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| WinRmError::Config(format!("cannot read ca_file '{path}': {e}")))?;
            for c in certs {
                let c = c.map_err(|e| {
                    WinRmError::Config(format!("ca_file '{path}' is not valid PEM: {e}"))
                })?;
                roots.add(c).map_err(|e| {
                    WinRmError::Config(format!("ca_file '{path}' has an unusable certificate: {e}"))
                })?;
            }
            if roots.is_empty() {
                return Err(WinRmError::Config(format!(
                    "ca_file '{path}' holds no certificate"
                )));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        CertCheck::SystemRoots => {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(WinRmError::Config(
                    "no system CA certificates found: set ca_file or thumbprint".into(),
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// The SHA-1 and SHA-256 thumbprints (lowercase hex) of a DER certificate.
pub fn thumbprints(der: &[u8]) -> (String, String) {
    (
        hex::encode(sha1::Sha1::digest(der)),
        hex::encode(sha2::Sha256::digest(der)),
    )
}

/// Accepts exactly the certificate whose digest is pinned (self-signed WinRM listeners).
#[derive(Debug)]
struct PinnedVerifier {
    pin: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (s1, s256) = thumbprints(end_entity.as_ref());
        if self.pin == s1 || self.pin == s256 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server certificate (SHA-256 {s256}) does not match the pinned thumbprint"
            )))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
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
        verify_tls13_signature(
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
