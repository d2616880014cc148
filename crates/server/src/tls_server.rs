//! Serving HTTPS (issue #24), with Coder's flags: `--tls-enable`, `--tls-address`, pairs of
//! `--tls-cert-file` / `--tls-key-file` chosen by SNI (the first pair when no name
//! matches), `--tls-min-version`, `--tls-client-auth` with `--tls-client-ca-file`.
//! Certificates are reloaded when their files change, so a renewed certificate (ACME,
//! cert-manager) is served to the next connection without a restart; a reload that fails
//! keeps the pairs in service and says why.

use std::{
    path::PathBuf,
    sync::{
        Arc, OnceLock, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rustls::{
    RootCertStore, ServerConfig as RustlsConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
    sign::CertifiedKey,
};

use crate::{
    config::{TlsClientAuth, TlsFlags, TlsMinVersion},
    outbound::pem_certs,
};

/// How long a client may take over its handshake: a socket that sends nothing costs
/// nothing for long.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the certificate files are checked for a change.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// One certificate with its key, and the files it came from.
#[derive(Debug)]
struct Pair {
    key: Arc<CertifiedKey>,
    leaf: CertificateDer<'static>,
}

#[derive(Debug)]
struct Pairs {
    list: Vec<Pair>,
    /// The files' modification times when they were read.
    stamps: Vec<Option<SystemTime>>,
}

/// Chooses the pair by SNI; kept behind a lock so a reload swaps them all at once.
#[derive(Debug)]
pub struct SniResolver {
    files: Vec<(PathBuf, PathBuf)>,
    pairs: RwLock<Arc<Pairs>>,
    provider: Arc<CryptoProvider>,
    /// The access URL's host, which some certificate must name, now and after a reload.
    required_name: OnceLock<String>,
}

fn stamps(files: &[(PathBuf, PathBuf)]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .flat_map(|(c, k)| [c, k])
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

fn load(files: &[(PathBuf, PathBuf)], provider: &CryptoProvider) -> anyhow::Result<Pairs> {
    let before = stamps(files);
    let mut list = Vec::with_capacity(files.len());
    for (cert_file, key_file) in files {
        let chain = pem_certs(cert_file).map_err(|e| anyhow::anyhow!("--tls-cert-file {e}"))?;
        let Some(leaf) = chain.first().cloned() else {
            anyhow::bail!(
                "--tls-cert-file {}: no certificate in it",
                cert_file.display()
            );
        };
        let key = PrivateKeyDer::from_pem_file(key_file)
            .map_err(|e| anyhow::anyhow!("--tls-key-file {}: {e}", key_file.display()))?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| anyhow::anyhow!("--tls-key-file {}: {e}", key_file.display()))?;
        let certified = CertifiedKey::new(chain, signing);
        certified.keys_match().map_err(|_| {
            anyhow::anyhow!(
                "--tls-key-file {} is not the key of --tls-cert-file {}",
                key_file.display(),
                cert_file.display()
            )
        })?;
        list.push(Pair {
            key: Arc::new(certified),
            leaf,
        });
    }
    Ok(Pairs {
        list,
        stamps: before,
    })
}

/// Some certificate of `pairs` must be valid for `name`, or clients reaching the access
/// URL would all be refused.
fn names_required(pairs: &Pairs, name: &str) -> anyhow::Result<()> {
    if pairs.list.iter().any(|p| names(&p.leaf, name)) {
        return Ok(());
    }
    anyhow::bail!(
        "--tls-cert-file: no certificate is valid for {name}, the access URL's host \
         (--access-url); add it to a certificate's subject alternative names"
    )
}

fn names(leaf: &CertificateDer<'_>, name: &str) -> bool {
    let Ok(server_name) = ServerName::try_from(name) else {
        return false;
    };
    webpki::EndEntityCert::try_from(leaf)
        .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&server_name).is_ok())
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let pairs = self
            .pairs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let chosen = hello
            .server_name()
            .and_then(|sni| pairs.list.iter().find(|p| names(&p.leaf, sni)))
            .or_else(|| pairs.list.first());
        chosen.map(|p| p.key.clone())
    }
}

impl SniResolver {
    /// Reads the files again if any of them changed since they were read (or, `forced`, in
    /// any case: SIGHUP, for a file replaced with its old modification time).
    pub fn reload(&self, forced: bool) {
        let current = self
            .pairs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if !forced && stamps(&self.files) == current.stamps {
            return;
        }
        let loaded =
            load(&self.files, &self.provider).and_then(|pairs| match self.required_name.get() {
                Some(name) => names_required(&pairs, name).map(|()| pairs),
                None => Ok(pairs),
            });
        match loaded {
            Ok(pairs) => {
                *self.pairs.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(pairs);
                tracing::info!("TLS certificates reloaded");
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificates changed but could not be reloaded; serving the previous ones");
            }
        }
    }
}

/// The acceptor for `--tls-*`, and the resolver whose files are watched.
pub struct TlsServer {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub resolver: Arc<SniResolver>,
}

impl TlsServer {
    pub fn new(flags: &TlsFlags) -> anyhow::Result<TlsServer> {
        if flags.tls_cert_file.is_empty() {
            anyhow::bail!("--tls-enable needs at least one --tls-cert-file and --tls-key-file");
        }
        if flags.tls_cert_file.len() != flags.tls_key_file.len() {
            anyhow::bail!(
                "--tls-cert-file and --tls-key-file must come in pairs ({} certificates, {} keys)",
                flags.tls_cert_file.len(),
                flags.tls_key_file.len()
            );
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let files: Vec<(PathBuf, PathBuf)> = flags
            .tls_cert_file
            .iter()
            .cloned()
            .zip(flags.tls_key_file.iter().cloned())
            .collect();
        let pairs = load(&files, &provider)?;
        let resolver = Arc::new(SniResolver {
            files,
            pairs: RwLock::new(Arc::new(pairs)),
            provider: provider.clone(),
            required_name: OnceLock::new(),
        });
        let versions: &[&rustls::SupportedProtocolVersion] = match flags.tls_min_version {
            TlsMinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsMinVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let builder = RustlsConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)?;
        let builder = match flags.tls_client_auth {
            TlsClientAuth::None => builder.with_no_client_auth(),
            TlsClientAuth::VerifyIfGiven | TlsClientAuth::RequireAndVerify => {
                let Some(ca_file) = &flags.tls_client_ca_file else {
                    anyhow::bail!(
                        "--tls-client-auth {} needs --tls-client-ca-file",
                        flags.tls_client_auth.name()
                    );
                };
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(ca_file)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        anyhow::anyhow!("--tls-client-ca-file {}: {e}", ca_file.display())
                    })?
                {
                    roots.add(cert).map_err(|e| {
                        anyhow::anyhow!("--tls-client-ca-file {}: {e}", ca_file.display())
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let verifier = if flags.tls_client_auth == TlsClientAuth::VerifyIfGiven {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| anyhow::anyhow!("--tls-client-ca-file: {e}"))?,
                )
            }
            TlsClientAuth::Request | TlsClientAuth::RequireAny => anyhow::bail!(
                "--tls-client-auth {}: a client certificate that is not verified is not supported; \
                 use verify-if-given or require-and-verify with --tls-client-ca-file",
                flags.tls_client_auth.name()
            ),
        };
        let mut config = builder.with_cert_resolver(resolver.clone());
        // The server speaks HTTP/1.1 (websockets included).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsServer {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            resolver,
        })
    }

    /// Refuses certificates none of which is valid for `host` (the access URL's), now and
    /// at every reload.
    pub fn require_name(&self, host: &str) -> anyhow::Result<()> {
        let pairs = self
            .resolver
            .pairs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        names_required(&pairs, host)?;
        let _ = self.resolver.required_name.set(host.to_owned());
        Ok(())
    }

    /// Checks the certificate files every [`RELOAD_EVERY`], and reads them again on SIGHUP,
    /// for as long as the process runs.
    pub fn watch(&self) {
        let resolver = self.resolver.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            loop {
                tick.tick().await;
                resolver.reload(false);
            }
        });
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let resolver = self.resolver.clone();
            match signal(SignalKind::hangup()) {
                Ok(mut hangups) => {
                    tokio::spawn(async move {
                        while hangups.recv().await.is_some() {
                            tracing::info!("SIGHUP: reading the TLS certificates again");
                            resolver.reload(true);
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP"),
            }
        }
    }
}

/// Seconds since the epoch at which a failed handshake was last logged.
static LAST_HANDSHAKE_LOG: AtomicU64 = AtomicU64::new(0);
/// Failed handshakes not logged since then.
static UNLOGGED_HANDSHAKES: AtomicU64 = AtomicU64::new(0);
/// At most one line per this many seconds: a scanner or a plain-HTTP client on the TLS
/// port must not flood the log, but an operator should still learn that it happens.
const HANDSHAKE_LOG_EVERY_SECS: u64 = 60;

/// Records a handshake that failed or timed out; logged at most once a minute, with how
/// many were not.
pub fn handshake_failed(peer: std::net::SocketAddr, reason: &dyn std::fmt::Display) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_HANDSHAKE_LOG.load(Ordering::Relaxed);
    if now.saturating_sub(last) < HANDSHAKE_LOG_EVERY_SECS
        || LAST_HANDSHAKE_LOG
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        UNLOGGED_HANDSHAKES.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(peer = %peer, reason = %reason, "TLS handshake failed");
        return;
    }
    let unlogged = UNLOGGED_HANDSHAKES.swap(0, Ordering::Relaxed);
    tracing::warn!(
        peer = %peer,
        reason = %reason,
        not_logged_since_last = unlogged,
        "TLS handshake failed (at most one such line a minute)"
    );
}
