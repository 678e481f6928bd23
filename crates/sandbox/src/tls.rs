//! HTTPS for the sandbox (`tls: true`, on with `shakedown sandbox --rbac`): clients
//! built on client-go (kubectl) send bearer tokens only over TLS, so a ServiceAccount
//! token reaches the sandbox only when it serves HTTPS.
//!
//! The certificate and its CA are fixed files in `crates/sandbox/tls/` (for 127.0.0.1
//! and localhost, valid for a century), written into every kubeconfig the sandbox
//! emits as `certificate-authority-data`. Their key is public: this proves nothing
//! about identity and must never guard anything but a loopback test server.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The CA that signed the sandbox's certificate, PEM: what a kubeconfig trusts.
pub const CA_PEM: &str = include_str!("../tls/ca.crt");
const CERT_PEM: &str = include_str!("../tls/leaf.crt");
const KEY_PEM: &str = include_str!("../tls/leaf.key");

#[derive(Debug, thiserror::Error)]
#[error("the sandbox's built-in TLS certificate cannot be loaded: {0}")]
pub struct TlsError(String);

/// An acceptor presenting the sandbox's certificate, speaking HTTP/1.1 only (the
/// server is HTTP/1.1; clients fall back from h2 through ALPN).
pub fn acceptor() -> Result<TlsAcceptor, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(CERT_PEM.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(e.to_string()))?;
    let key =
        PrivateKeyDer::from_pem_slice(KEY_PEM.as_bytes()).map_err(|e| TlsError(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_built_in_certificate_loads() {
        assert!(super::acceptor().is_ok());
    }
}
