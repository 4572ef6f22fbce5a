//! TLS material from PEM files: the server configuration of the HTTPS and LI listeners
//! (mutual TLS when a CA is given), the client configuration for X3-over-TLS delivery (same
//! certificate, same CA), and the trust of HTTPS webhook receivers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Paths given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA that signs client certificates (mutual TLS) and collectors' certificates.
    pub ca: Option<PathBuf>,
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no certificate in the file"));
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_err(path, e))
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(path)? {
        roots.add(cert).map_err(|e| file_err(path, e))?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The listener's configuration: client certificates signed by the CA are required when a
/// CA is configured.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &files.ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .build()
                    .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs(&files.cert)?, key(&files.key)?)
        .map_err(|e| file_err(&files.key, e))?;
    Ok(Arc::new(config))
}

/// X3-over-TLS: collectors must present a certificate signed by the CA (for the IP address
/// connected to); we present ours.
pub fn client_config(files: &TlsFiles) -> Result<Option<Arc<ClientConfig>>, TlsError> {
    let Some(ca) = &files.ca else {
        return Ok(None);
    };
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(certs(&files.cert)?, key(&files.key)?)
        .map_err(|e| file_err(&files.key, e))?;
    Ok(Some(Arc::new(config)))
}

/// Debian's bundle of the system's trusted CAs (package `ca-certificates`): whom HTTPS
/// webhooks trust when no `--webhook-ca` is given.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A client that verifies servers against the CAs of `ca` (a PEM bundle) and presents no
/// certificate of its own: HTTPS webhooks.
pub fn trusting(ca: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots(ca)?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A CA and a leaf for 127.0.0.1 signed by it, written to `dir` (ca.pem, cert.pem,
    /// key.pem); also returns a second leaf (client.pem/client.key) for client auth.
    pub(crate) fn write_pki(dir: &Path) -> TlsFiles {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
        TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            ca: Some(dir.join("ca.pem")),
        }
    }

    #[test]
    fn configs_load_and_bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("ngmedia-li-tls-{}", std::process::id()));
        let files = write_pki(&dir);
        server_config(&files).unwrap();
        assert!(client_config(&files).unwrap().is_some());
        trusting(files.ca.as_ref().unwrap()).unwrap();
        let e = trusting(&files.key).unwrap_err().to_string();
        assert!(e.contains("key.pem"), "{e}");
        let no_ca = TlsFiles {
            ca: None,
            ..files.clone()
        };
        server_config(&no_ca).unwrap();
        assert!(client_config(&no_ca).unwrap().is_none());
        let swapped = TlsFiles {
            cert: files.key.clone(),
            ..files.clone()
        };
        let e = server_config(&swapped).unwrap_err().to_string();
        assert!(e.contains("key.pem"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
