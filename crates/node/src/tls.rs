//! TLS on the sync API: the primary's certificate, and how a satellite trusts it.
//!
//! A primary serves TLS with a certificate from a CA (`serve --tls-cert --tls-key`) or
//! one it made itself (`init primary --self-signed`). A satellite trusts the primary
//! by one of three means, chosen at `init satellite`:
//!
//! | trust | how the certificate is checked |
//! |---|---|
//! | the system's roots (default) | chain to a root the operating system trusts, name matches the URL |
//! | `--ca FILE` | chain to a certificate in FILE (a private CA, or the self-signed certificate itself), name matches |
//! | `--tls-fingerprint SHA256` | exactly this certificate, whatever its name (like SSH's host key) |
//!
//! Every handshake also proves the primary holds the certificate's private key.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
pub use sitesync_service::config::Trust;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// A certificate or key could not be made or read.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A PEM file is missing, unreadable or holds nothing usable.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls or rcgen refused.
    #[error("TLS: {0}")]
    Setup(String),
}

/// The cryptography behind every TLS connection (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's TLS cryptography, for HTTP clients that build their own TLS
/// configuration (every `reqwest::Client`; without it, building one panics). Call it
/// once at start; calling it again does nothing.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A self-signed certificate for `names` (host names or IP addresses) and its key, as
/// PEM.
pub fn self_signed(names: Vec<String>) -> Result<(String, String), TlsError> {
    let made =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Setup(e.to_string()))?;
    Ok((made.cert.pem(), made.signing_key.serialize_pem()))
}

/// A certificate's SHA-256 fingerprint, as colon-separated uppercase hex (the form
/// browsers and `openssl x509 -fingerprint -sha256` show).
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A fingerprint as a person may type it (any case, with or without colons, with or
/// without a `sha256:` prefix), in the form [`fingerprint`] prints; `None` when it is not
/// 32 bytes of hex.
pub fn normalise_fingerprint(typed: &str) -> Option<String> {
    let typed = typed.trim();
    let typed = typed
        .strip_prefix("sha256:")
        .or_else(|| typed.strip_prefix("SHA256:"))
        .unwrap_or(typed);
    let hex: String = typed.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let upper = hex.to_ascii_uppercase();
    let pairs: Vec<&str> = (0..32).map(|i| &upper[i * 2..i * 2 + 2]).collect();
    Some(pairs.join(":"))
}

/// The certificates in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |message: String| TlsError::File {
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("cannot read certificates: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(bad(
            "holds no certificate (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

/// The private key in a PEM file.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        path: path.to_path_buf(),
        message: format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
    })
}

/// The primary's TLS: its certificate chain and key, loaded and checked to match.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = load_certs(cert)?;
    let key = load_key(key)?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Setup(format!("the certificate and key do not fit: {e}")))?;
    Ok(Arc::new(config))
}

/// The client side of TLS for [`Trust::Ca`] and [`Trust::Pinned`]; `None` for
/// [`Trust::System`], which the HTTP client's own platform verifier handles.
pub fn client_config(trust: &Trust) -> Result<Option<rustls::ClientConfig>, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let config = match trust {
        Trust::System => return Ok(None),
        Trust::Ca(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in load_certs(path)? {
                roots.add(cert).map_err(|e| TlsError::File {
                    path: path.clone(),
                    message: format!("a certificate cannot be trusted as a root: {e}"),
                })?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Pinned(expected) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                expected: expected.clone(),
                provider: provider(),
            }))
            .with_no_client_auth(),
    };
    Ok(Some(config))
}

/// Accepts exactly one certificate, by fingerprint, and checks that the server holds
/// its key (the handshake signature), as rustls's own verifier would.
#[derive(Debug)]
struct Pinned {
    expected: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = fingerprint(end_entity);
        if presented == self.expected {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the primary's certificate has fingerprint {presented}, not the expected {}",
                self.expected
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_read_in_any_typed_form() {
        let printed = fingerprint(b"certificate");
        assert_eq!(printed.len(), 95);
        let bare = printed.replace(':', "").to_lowercase();
        assert_eq!(normalise_fingerprint(&bare), Some(printed.clone()));
        assert_eq!(
            normalise_fingerprint(&format!("sha256:{printed}")),
            Some(printed.clone())
        );
        assert_eq!(normalise_fingerprint("AB:CD"), None);
        assert_eq!(normalise_fingerprint(&"zz".repeat(32)), None);
    }

    #[test]
    fn a_self_signed_certificate_loads_as_the_server_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(vec!["localhost".into()]).unwrap();
        let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        server_config(&cert_path, &key_path).unwrap();
        // The key of another certificate does not fit.
        let (_, other_key) = self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(&key_path, other_key).unwrap();
        let error = server_config(&cert_path, &key_path)
            .unwrap_err()
            .to_string();
        assert!(error.contains("do not fit"), "{error}");
        // A key file given as the certificate is refused by name.
        let error = load_certs(&key_path).unwrap_err().to_string();
        assert!(error.contains("tls.key"), "{error}");
    }
}
