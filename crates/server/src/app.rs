//! Application state and start-up wiring shared by `gatehouse server`, tests and benches.

use std::{path::Path, sync::Arc};

use gatehouse_httpmw::{
    AuthState,
    access_redirect::AccessRedirect,
    audit::Auditor,
    authn::AuthzRecording,
    backoff::LoginBackoff,
    client_ip::TrustedProxies,
    experiments::Experiments,
    metrics::ApiMetrics,
    rate_limit::{RateLimiter, SharedBucket},
    security_headers::{CspHosts, hsts},
    user_link::LinkRefresher,
};
use gatehouse_oauth2::{Provider, Resources, SharedProvider};
use gatehouse_store::{
    Db, Store, crypto::TokenCipher, file_cache::FileCache, models::Organization,
    system::system_restricted,
};

use crate::{
    aibridge::{Bridge, SharedBridge, Upstream, UpstreamAuth, base_url},
    config::ServerConfig,
    external_auth::{ExternalAuth, SharedExternalAuth},
    jobs::provisioner::{JobSignal, Provisioner},
    oidc::Oidc,
    outbound::{Outbound, Purpose},
    shutdown::Shutdown,
};

/// Everything a handler may need. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<App>);

#[derive(Debug)]
pub struct App {
    pub store: Store,
    pub config: ServerConfig,
    /// The access URL without a trailing slash, used byte-for-byte everywhere.
    pub access_url: String,
    pub default_org: Organization,
    pub auth: Arc<AuthState>,
    /// Wakes the provisioner daemons when a job is queued.
    pub jobs: JobSignal,
    /// A provisioner handle, for running jobs by hand (tests) or spawning daemons.
    pub provisioner: Provisioner,
    /// Uploaded files, fetched once and authorized per caller.
    pub files: FileCache,
    pub limits: RateLimits,
    /// The API's Prometheus metrics (one registry per app).
    pub metrics: ApiMetrics,
    /// The OAuth2 authorization server.
    pub oauth2: SharedProvider,
    /// `--experiments` (with `--dev` bypassing the gates).
    pub experiments: Arc<Experiments>,
    /// The AI Bridge pass-through, when `--aibridge-enabled`.
    pub aibridge: Option<SharedBridge>,
    /// Hosts HTML pages' CSP lets through (the workspace-app wildcard host).
    pub csp_hosts: CspHosts,
    /// What the gate sends to the access URL instead of answering (plain HTTP beside
    /// HTTPS, `--redirect-to-access-url`).
    pub access_redirect: Option<Arc<AccessRedirect>>,
    /// `Strict-Transport-Security`, when configured and the access URL is https.
    pub hsts: Option<axum::http::HeaderValue>,
    /// Proxies whose client-address headers are believed, when configured.
    pub trusted_proxies: Option<Arc<TrustedProxies>>,
    /// Sign-in through an OpenID Connect provider, when configured.
    pub oidc: Option<Arc<Oidc>>,
    /// External auth providers (Git hosts), when any is configured.
    pub external_auth: Option<SharedExternalAuth>,
    /// The server's stop, as the websockets it serves hear it.
    pub shutdown: Shutdown,
}

impl axum::extract::FromRef<AppState> for SharedProvider {
    fn from_ref(app: &AppState) -> SharedProvider {
        app.oauth2.clone()
    }
}

/// The request-rate limiters (decisions.md 6); `None` when disabled.
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub api: Option<RateLimiter>,
    /// One bucket per address for every way of signing in (JSON, form, OIDC callback).
    pub login: Option<SharedBucket>,
    /// Per-account back-off after repeated wrong passwords.
    pub login_backoff: Option<Arc<LoginBackoff>>,
    pub files: Option<RateLimiter>,
    /// One bucket per principal for all of `/oauth2/*`.
    pub oauth2: Option<RateLimiter>,
    /// One bucket per principal for the discovery documents.
    pub well_known: Option<RateLimiter>,
}

impl RateLimits {
    pub fn from_config(config: &ServerConfig) -> RateLimits {
        const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);
        if config.dangerous_disable_rate_limits {
            return RateLimits {
                api: None,
                login: None,
                login_backoff: None,
                files: None,
                oauth2: None,
                well_known: None,
            };
        }
        let api = if config.api_rate_limit == 0 {
            512
        } else {
            config.api_rate_limit
        };
        RateLimits {
            api: RateLimiter::new(api, MINUTE),
            login: RateLimiter::new(60, MINUTE).map(|limiter| SharedBucket {
                limiter,
                bucket: "login",
            }),
            login_backoff: Some(Arc::default()),
            files: RateLimiter::new(12, MINUTE),
            oauth2: RateLimiter::new(60, MINUTE),
            well_known: RateLimiter::new(60, MINUTE),
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

/// Cookies are `Secure` for an https access URL, or with `--secure-auth-cookie`.
fn secure_cookies(config: &ServerConfig, access_url: &str) -> bool {
    config.secure_auth_cookie || access_url.starts_with("https://")
}

/// Strips one trailing `/` (decisions.md 4).
pub fn normalise_access_url(url: &str) -> String {
    url.strip_suffix('/').unwrap_or(url).to_owned()
}

/// Opens the configured database: PostgreSQL when a URL is given, else SQLite in the
/// data directory.
pub async fn open_database(config: &ServerConfig) -> anyhow::Result<Db> {
    match &config.postgres_url {
        Some(url) => Ok(Db::postgres(url, None).await?),
        None => {
            let dir = config.data_dir();
            std::fs::create_dir_all(&dir).map_err(|e| {
                anyhow::anyhow!("cannot create data directory {}: {e}", dir.display())
            })?;
            Ok(Db::sqlite(&dir.join("gatehouse.db")).await?)
        }
    }
}

/// Opens a SQLite database at an explicit path (tests, benches).
pub async fn open_sqlite(path: &Path) -> anyhow::Result<Db> {
    Ok(Db::sqlite(path).await?)
}

impl AppState {
    /// Whether cookies are `Secure`: an https access URL, or `--secure-auth-cookie`.
    pub fn secure_cookies(&self) -> bool {
        secure_cookies(&self.config, &self.access_url)
    }

    /// The purge job's retention settings.
    pub fn retention(&self) -> gatehouse_store::queries::purge::Retention {
        let delta = |d: std::time::Duration| {
            chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
        };
        gatehouse_store::queries::purge::Retention {
            api_keys: delta(self.config.api_keys_retention),
            workspace_agent_logs: delta(self.config.workspace_agent_logs_retention),
        }
    }

    /// Migrates the database, makes sure the default organization exists, and builds the
    /// state. `access_url` must already be normalised.
    pub async fn start(
        db: Db,
        config: ServerConfig,
        access_url: String,
    ) -> anyhow::Result<AppState> {
        let cipher = match &config.external_token_encryption_keys {
            Some(list) => TokenCipher::from_base64_list(list)
                .map_err(|e| anyhow::anyhow!("CODER_EXTERNAL_TOKEN_ENCRYPTION_KEYS: {e}"))?,
            None => key_file_cipher(&config.data_dir())?,
        };
        let store = Store::new(db).with_cipher(cipher);
        store.migrate().await?;
        // PostgreSQL: the authentication cache is live only while this runs.
        if let Some(listener) = store.auth_cache_listener() {
            use tracing::Instrument as _;
            tokio::spawn(listener.instrument(tracing::info_span!(
                "auth_cache_listener",
                service = "auth-cache"
            )));
        }
        let default_org = store
            .ensure_default_organization(system_restricted())
            .await?;
        let resources = Resources::new(&access_url);
        // Every outbound client (identity provider, Git hosts, model APIs) from one factory.
        let outbound = Outbound::new(&config.trust_sources(), &config.proxy_env)?;
        let oidc = Oidc::discover(
            &config.oidc,
            &access_url,
            store.clone(),
            outbound.client(Purpose::Provider)?,
        )
        .await?;
        let external_auth = if config.external_auth.is_empty() {
            None
        } else {
            Some(Arc::new(ExternalAuth::new(
                config.external_auth.clone(),
                outbound.client(Purpose::Provider)?,
            )))
        };
        let auth = Arc::new(AuthState {
            store: store.clone(),
            resource_metadata_url: format!("{access_url}/.well-known/oauth-protected-resource"),
            mcp_audience: resources.mcp.clone(),
            disable_session_expiry_refresh: config.disable_session_expiry_refresh,
            authz_recording: match (config.dev, config.enable_authz_recordings) {
                (false, _) => AuthzRecording::Off,
                (true, false) => AuthzRecording::OnRequest,
                (true, true) => AuthzRecording::Always,
            },
            links: oidc.clone().map(|o| -> Arc<dyn LinkRefresher> { o }),
            audit: Auditor::new(store.clone()),
        });
        let provisioner = Provisioner::new(store.clone());
        let jobs = JobSignal::default();
        let limits = RateLimits::from_config(&config);
        let lifetime = |d: std::time::Duration| {
            chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
        };
        let refresh = if config.default_oauth_refresh_lifetime.is_zero() {
            config.session_duration
        } else {
            config.default_oauth_refresh_lifetime
        };
        let experiments = Arc::new(Experiments::new(&config.experiments, config.dev));
        let hsts = hsts(
            &access_url,
            config.strict_transport_security,
            &config.strict_transport_security_options,
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        let trusted_proxies = TrustedProxies {
            headers: config.proxy_trusted_headers.clone(),
            origins: config.proxy_trusted_origins.clone(),
        };
        // One list without the other would silently believe nothing: say so at start-up.
        if trusted_proxies.headers.is_empty() != trusted_proxies.origins.is_empty() {
            anyhow::bail!(
                "--proxy-trusted-headers (CODER_PROXY_TRUSTED_HEADERS) and \
                 --proxy-trusted-origins (CODER_PROXY_TRUSTED_ORIGINS) must be set together"
            );
        }
        let trusted_proxies = trusted_proxies
            .is_enabled()
            .then(|| Arc::new(trusted_proxies));
        let csp_hosts = CspHosts {
            app_hosts: config
                .wildcard_access_url
                .iter()
                .map(|w| {
                    let w = w.trim();
                    let w = w.split_once("://").map_or(w, |(_, rest)| rest);
                    w.trim_end_matches('/').to_owned()
                })
                .filter(|w| !w.is_empty())
                .collect(),
            ..CspHosts::default()
        };
        crate::proxy_hosts::refresh_proxy_hosts(&store, &csp_hosts.proxies)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the workspace proxies: {e}"))?;
        let aibridge = if config.aibridge_enabled {
            let openai = Upstream {
                base: base_url(&config.aibridge_openai_base_url)
                    .map_err(|e| anyhow::anyhow!("--aibridge-openai-base-url: {e}"))?,
                key: config.aibridge_openai_key.clone(),
                auth: UpstreamAuth::Bearer,
            };
            let anthropic = Upstream {
                base: base_url(&config.aibridge_anthropic_base_url)
                    .map_err(|e| anyhow::anyhow!("--aibridge-anthropic-base-url: {e}"))?,
                key: config.aibridge_anthropic_key.clone(),
                auth: UpstreamAuth::XApiKey,
            };
            Some(Arc::new(Bridge::new(
                openai,
                anthropic,
                outbound.client(Purpose::Streaming)?,
            )))
        } else {
            None
        };
        let oauth2 = Arc::new(Provider {
            store: store.clone(),
            issuer: access_url.clone(),
            resources,
            access_lifetime: lifetime(config.session_duration),
            refresh_lifetime: lifetime(refresh),
            dcr_flag: config.oauth2_dynamic_client_registration,
            secure_cookies: secure_cookies(&config, &access_url),
            csp_hosts: csp_hosts.clone(),
            audit: auth.audit.clone(),
        });
        let access_redirect = url::Url::parse(&access_url).ok().and_then(|url| {
            AccessRedirect::new(
                &url,
                config.tls.tls_enable,
                config.redirect_to_access_url,
                csp_hosts.app_hosts.first().map(String::as_str),
            )
        });
        Ok(AppState(Arc::new(App {
            store,
            config,
            access_url,
            default_org,
            auth,
            jobs,
            provisioner,
            files: FileCache::new(),
            limits,
            metrics: ApiMetrics::new(),
            oauth2,
            experiments,
            aibridge,
            csp_hosts,
            access_redirect,
            hsts,
            trusted_proxies,
            oidc,
            external_auth,
            shutdown: Shutdown::default(),
        })))
    }
}

/// The data directory's token-encryption key, created (owner-only) on first start.
fn key_file_cipher(data_dir: &Path) -> anyhow::Result<TokenCipher> {
    use base64::Engine;
    let path = data_dir.join("token-encryption.key");
    let encoded = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)?;
            let key: [u8; 32] = rand::random();
            let encoded = base64::engine::general_purpose::STANDARD.encode(key);
            std::fs::write(&path, &encoded)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
            tracing::info!(path = %path.display(), "created the token encryption key");
            encoded
        }
        Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    };
    TokenCipher::from_base64_list(&encoded).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
