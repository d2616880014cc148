//! One factory for every HTTP client Gatehouse has (issue #24): the OpenID provider's
//! discovery, token, userinfo and keys; external auth's token exchange and refresh; the AI
//! Bridge. Each speaks TLS with rustls and verifies the peer against the operating
//! system's trust store, or, as Go (and so Coder) does, against `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` when they are set, so a private CA works the way it does for Coder.
//! Nothing turns verification off. Proxies come from `HTTPS_PROXY` / `HTTP_PROXY` /
//! `NO_PROXY`, chosen as Go chooses them ([`proxy`]), redirects are never followed (a token request must not be bounced
//! elsewhere), a connection must be made within [`CONNECT_TIMEOUT`], and a failed
//! handshake is described by its cause (unknown issuer, expired, wrong name).

use std::{path::PathBuf, sync::Arc, time::Duration};

use rustls::{CertificateError, RootCertStore, pki_types::CertificateDer};

pub mod proxy;

use proxy::{ProxyEnv, ProxyRules};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where trusted roots come from: `SSL_CERT_FILE` and `SSL_CERT_DIR` (`:`-separated), each
/// replacing the system's default location when set, as in Go's `crypto/x509`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustSources {
    pub cert_file: Option<PathBuf>,
    pub cert_dirs: Vec<PathBuf>,
}

/// What a client is for, which sets its request timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// An identity provider or Git host: short requests, 10 s each.
    Provider,
    /// A model API: responses stream for as long as the model writes; only a read that
    /// waits longer than 5 minutes fails.
    Streaming,
}

#[derive(Debug, Clone)]
pub struct Outbound {
    tls: Arc<rustls::ClientConfig>,
    proxies: Arc<ProxyRules>,
}

/// Every certificate in a PEM file (the listener's chains and client CA too).
pub(crate) fn pem_certs(path: &std::path::Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn load_roots(trust: &TrustSources) -> anyhow::Result<RootCertStore> {
    let mut certs = Vec::new();
    if trust.cert_file.is_none() && trust.cert_dirs.is_empty() {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "could not read part of the system's trust store");
        }
        certs = found.certs;
    }
    if let Some(file) = &trust.cert_file {
        certs.extend(pem_certs(file).map_err(|e| anyhow::anyhow!("SSL_CERT_FILE: {e}"))?);
    }
    for dir in &trust.cert_dirs {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("SSL_CERT_DIR: {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            // A hashed directory holds PEM files and symlinks to them; anything else in
            // it (a README) is skipped, as Go skips what does not parse.
            if path.is_file()
                && let Ok(found) = pem_certs(&path)
            {
                certs.extend(found);
            }
        }
    }
    let mut roots = RootCertStore::empty();
    let (_, ignored) = roots.add_parsable_certificates(certs);
    if ignored > 0 {
        tracing::warn!(
            ignored,
            "trusted certificates that could not be parsed were skipped"
        );
    }
    if roots.is_empty() {
        tracing::warn!(
            "no trusted certificates were found: every outbound TLS connection will fail"
        );
    }
    Ok(roots)
}

impl Outbound {
    pub fn new(trust: &TrustSources, proxy_env: &ProxyEnv) -> anyhow::Result<Outbound> {
        let proxies = Arc::new(ProxyRules::new(proxy_env)?);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(load_roots(trust)?)
            .with_no_client_auth();
        Ok(Outbound {
            tls: Arc::new(tls),
            proxies,
        })
    }

    pub fn client(&self, purpose: Purpose) -> anyhow::Result<reqwest::Client> {
        let builder = reqwest::Client::builder()
            .tls_backend_preconfigured((*self.tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            // reqwest's own reading of the environment differs from Go's (loopback
            // included): only the rules read at start-up choose a proxy.
            .no_proxy();
        let builder = match self.proxies.is_empty() {
            true => builder,
            false => {
                let proxies = self.proxies.clone();
                builder.proxy(reqwest::Proxy::custom(move |url| proxies.proxy_for(url)))
            }
        };
        let builder = match purpose {
            Purpose::Provider => builder.timeout(Duration::from_secs(10)),
            Purpose::Streaming => builder.read_timeout(Duration::from_secs(300)),
        };
        Ok(builder.build()?)
    }
}

/// A failed request as a user should read it: for a TLS failure, the host and why its
/// certificate was refused; otherwise the transport's own account.
pub fn describe(err: &reqwest::Error) -> String {
    let host = err
        .url()
        .and_then(|u| u.host_str())
        .unwrap_or("the server")
        .to_owned();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return format!(
                "TLS handshake with {host} failed: {}",
                tls_reason(tls, &host)
            );
        }
        // The connector reports the handshake as an `io::Error` around rustls's, and an
        // `io::Error`'s `source()` skips the error it wraps: look inside.
        cause = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    error_chain(err)
}

/// An error and its sources, `: `-joined, as a user should read them.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn tls_reason(err: &rustls::Error, host: &str) -> String {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "its certificate is signed by an unknown authority (trust your CA with \
             SSL_CERT_FILE or SSL_CERT_DIR)"
                .to_owned()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "its certificate has expired".to_owned(),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!("its certificate is not valid for the name {host}"),
        other => other.to_string(),
    }
}
