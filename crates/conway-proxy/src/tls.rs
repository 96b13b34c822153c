//! TLS at the gateway: certificates chosen by SNI from `[gateway.tls]`, reloaded when
//! the configuration names other files, and ALPN offering HTTP/2 and HTTP/1.1.

use std::sync::Arc;

use arc_swap::ArcSwap;
use conway_core::manifest::GatewayTls;
use rustls::ServerConfig;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::table::Table;

/// The gateway's certificates, loaded.
#[derive(Debug)]
pub struct TlsCerts {
    /// What they were loaded from.
    pub config: GatewayTls,
    by_host: Vec<(Vec<String>, Arc<CertifiedKey>)>,
}

impl TlsCerts {
    /// Loads every certificate; one that cannot be loaded is logged and skipped.
    pub fn load(config: &GatewayTls) -> Self {
        let by_host = config
            .certificates
            .iter()
            .filter_map(|certificate| match load_pair(&certificate.cert_file, &certificate.key_file) {
                Ok(key) => Some((certificate.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(), Arc::new(key))),
                Err(error) => {
                    tracing::warn!(cert = %certificate.cert_file, %error, "cannot load a TLS certificate; it is not served");
                    None
                }
            })
            .collect();
        Self {
            config: config.clone(),
            by_host,
        }
    }

    /// The certificate for `host` (SNI): the first listing it, else the first without
    /// hosts, else the first.
    fn resolve(&self, host: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let host = host.map(str::to_ascii_lowercase);
        let named =
            host.and_then(|host| self.by_host.iter().find(|(hosts, _)| hosts.contains(&host)));
        named
            .or_else(|| self.by_host.iter().find(|(hosts, _)| hosts.is_empty()))
            .or_else(|| self.by_host.first())
            .map(|(_, key)| key.clone())
    }
}

fn load_pair(cert_file: &str, key_file: &str) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| format!("{cert_file}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{cert_file}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{cert_file} holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| format!("{key_file}: {e}"))?;
    let key = any_supported_type(&key).map_err(|e| format!("{key_file}: {e}"))?;
    Ok(CertifiedKey::new(chain, key))
}

/// Picks the certificate from the table in force at each handshake.
#[derive(Debug)]
struct Resolver {
    table: Arc<ArcSwap<Table>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.table.load().tls.as_ref()?.resolve(hello.server_name())
    }
}

/// The server configuration of the HTTPS listener: certificates from the table, ALPN
/// `h2` then `http/1.1`.
pub fn server_config(table: Arc<ArcSwap<Table>>) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| ServerConfig::builder());
    let mut config = builder
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver { table }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}
