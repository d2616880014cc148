//! Command line and environment, with Coder's flag and `CODER_*` names where Coder has
//! them.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::parse_duration;

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Gatehouse: the request gate for cloud development workspaces"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Gatehouse server.
    Server(Box<ServerConfig>),
    /// Log in to a Gatehouse deployment (creating the first user if there is none).
    Login(crate::cli::login::LoginArgs),
    /// Create, list and remove API tokens.
    #[command(subcommand)]
    Tokens(crate::cli::tokens::TokensCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// HTTP bind address of the server.
    #[arg(long, env = "CODER_HTTP_ADDRESS", default_value = "127.0.0.1:3000")]
    pub http_address: SocketAddr,

    /// The URL users reach this deployment at. Defaults to http://<bound http address>.
    #[arg(long, env = "CODER_ACCESS_URL")]
    pub access_url: Option<url::Url>,

    /// PostgreSQL connection URL. When absent, an embedded SQLite database in the data
    /// directory is used.
    #[arg(long, env = "CODER_PG_CONNECTION_URL", hide_env_values = true)]
    pub postgres_url: Option<String>,

    /// Where the embedded database and other state live.
    #[arg(long, env = "CODER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Lifetime of browser and CLI login sessions.
    #[arg(long, env = "CODER_SESSION_DURATION", default_value = "24h", value_parser = parse_duration)]
    pub session_duration: Duration,

    /// Lifetime of tokens created without a lifetime.
    #[arg(long, env = "CODER_DEFAULT_TOKEN_LIFETIME", default_value = "7d", value_parser = parse_duration)]
    pub default_token_lifetime: Duration,

    /// Longest lifetime a user may ask for.
    #[arg(long, env = "CODER_MAX_TOKEN_LIFETIME", default_value = "876600h", value_parser = parse_duration)]
    pub max_token_lifetime: Duration,

    /// Longest lifetime an owner may ask for.
    #[arg(long, env = "CODER_MAX_ADMIN_TOKEN_LIFETIME", default_value = "168h", value_parser = parse_duration)]
    pub max_admin_token_lifetime: Duration,

    /// Do not extend session expiry on use.
    #[arg(
        long,
        env = "CODER_DISABLE_SESSION_EXPIRY_REFRESH",
        default_value_t = false
    )]
    pub disable_session_expiry_refresh: bool,

    /// Mark the session cookie Secure (always on when the access URL is https).
    #[arg(long, env = "CODER_SECURE_AUTH_COOKIE", default_value_t = false)]
    pub secure_auth_cookie: bool,

    /// Log output format.
    #[arg(long, env = "CODER_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `gatehouse=debug,info`.
    #[arg(long, env = "CODER_LOG_FILTER", default_value = "info")]
    pub log_filter: String,

    /// Keys that encrypt secrets stored to be read back (sub-agent tokens): comma-separated
    /// base64, 32 bytes each; the first encrypts. When unset, a key file in the data
    /// directory is used (replicas sharing PostgreSQL must share this setting instead).
    #[arg(
        long,
        env = "CODER_EXTERNAL_TOKEN_ENCRYPTION_KEYS",
        hide_env_values = true
    )]
    pub external_token_encryption_keys: Option<String>,

    /// The trusted roots for outbound TLS, in place of the system's default file (Go's
    /// `SSL_CERT_FILE`, which Coder honours).
    #[arg(long, env = "SSL_CERT_FILE", hide = true)]
    pub ssl_cert_file: Option<std::path::PathBuf>,

    /// Directories of trusted roots, `:`-separated, in place of the system's default ones
    /// (Go's `SSL_CERT_DIR`).
    #[arg(long, env = "SSL_CERT_DIR", hide = true, value_delimiter = ':')]
    pub ssl_cert_dir: Vec<std::path::PathBuf>,

    /// `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (and their lowercase names), read once.
    #[arg(skip = crate::outbound::proxy::ProxyEnv::from_process_env())]
    pub proxy_env: crate::outbound::proxy::ProxyEnv,

    /// Requests per minute per user (or IP) and path on the API; 0 means the default
    /// (512), a negative value disables the limit.
    #[arg(
        long,
        env = "CODER_API_RATE_LIMIT",
        default_value_t = 512,
        allow_negative_numbers = true,
        hide = true
    )]
    pub api_rate_limit: i64,

    /// Allow cross-origin requests from any origin (Coder's `Cors(allowAll)`); off by
    /// default, which keeps the API same-origin.
    #[arg(
        long,
        env = "CODER_DANGEROUS_ALLOW_CORS_REQUESTS",
        default_value_t = false,
        hide = true
    )]
    pub dangerous_allow_cors_requests: bool,

    /// Serve Prometheus metrics on `--prometheus-address`.
    #[arg(long, env = "CODER_PROMETHEUS_ENABLE", default_value_t = false)]
    pub prometheus_enable: bool,

    /// Where Prometheus metrics are served.
    #[arg(
        long,
        env = "CODER_PROMETHEUS_ADDRESS",
        default_value = "127.0.0.1:2112"
    )]
    pub prometheus_address: SocketAddr,

    /// Turn off every rate limit (API, login, files).
    #[arg(
        long,
        env = "CODER_DANGEROUS_DISABLE_RATE_LIMITS",
        default_value_t = false,
        hide = true
    )]
    pub dangerous_disable_rate_limits: bool,

    /// How many built-in echo provisioner daemons take jobs (0: jobs stay pending).
    #[arg(long, env = "CODER_PROVISIONER_DAEMONS", default_value_t = 3)]
    pub provisioner_daemons: usize,

    /// Development mode: enables the authz check recorder (`x-record-authz-checks`).
    #[arg(long, env = "CODER_DEV", default_value_t = false)]
    pub dev: bool,

    /// With `--dev`, record the authz checks of every request, not only those that ask.
    #[arg(
        long,
        env = "CODER_ENABLE_AUTHZ_RECORDINGS",
        default_value_t = false,
        hide = true
    )]
    pub enable_authz_recordings: bool,

    /// How long a client may take to send a request's head (slow clients are cut off).
    #[arg(long, env = "CODER_HTTP_READ_HEADER_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub http_read_header_timeout: Duration,

    /// How long a request's body may take to arrive, from the first moment it is waited
    /// for; 0 = no limit. A slower body is answered 408 and its connection closed.
    #[arg(long, env = "CODER_HTTP_READ_BODY_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub http_read_body_timeout: Duration,

    /// Connections one client address may hold open at once (an IPv6 client counts by its
    /// /64; `--proxy-trusted-origins` are not capped); 0 = no cap. One more is answered 429
    /// and closed.
    #[arg(
        long,
        env = "CODER_HTTP_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub http_max_connections_per_address: usize,

    /// Redirect requests for any host but the access URL's (or a workspace-app host) to
    /// the access URL. Plain HTTP is redirected to an https access URL whenever
    /// `--tls-enable` is on, with or without this flag.
    #[arg(long, env = "CODER_REDIRECT_TO_ACCESS_URL", default_value_t = false, action = clap::ArgAction::Set)]
    pub redirect_to_access_url: bool,

    /// How long to wait for in-flight requests on shutdown.
    #[arg(long, env = "CODER_GRACEFUL_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub graceful_shutdown_timeout: Duration,

    /// How often an open websocket is probed with a ping; one still unanswered at the next
    /// probe closes the connection as dead (Coder's websocket heartbeat: 15 s).
    #[arg(long, env = "CODER_WEBSOCKET_PROBE_INTERVAL", default_value = "15s", value_parser = parse_duration, hide = true)]
    pub websocket_probe_interval: Duration,

    /// Serve the OAuth2 authorization server (`/oauth2/*`, discovery, the MCP endpoint).
    #[arg(long, env = "CODER_OAUTH2_PROVIDER_ENABLE", default_value_t = true, action = clap::ArgAction::Set)]
    pub oauth2_provider_enable: bool,

    /// Allow RFC 7591 dynamic client registration. When set, it wins over the stored
    /// setting (`PUT /api/v2/oauth2-provider/settings`); unset, the stored setting, else on.
    #[arg(long, env = "CODER_OAUTH2_DYNAMIC_CLIENT_REGISTRATION", action = clap::ArgAction::Set)]
    pub oauth2_dynamic_client_registration: Option<bool>,

    /// Lifetime of OAuth2 refresh tokens.
    #[arg(long, env = "CODER_DEFAULT_OAUTH_REFRESH_LIFETIME", default_value = "720h", value_parser = parse_duration)]
    pub default_oauth_refresh_lifetime: Duration,

    /// How long expired API keys are kept before the purge job deletes them (0: forever).
    #[arg(long, env = "CODER_API_KEYS_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub api_keys_retention: Duration,

    /// How long agent logs of superseded builds are kept (0: forever).
    #[arg(long, env = "CODER_WORKSPACE_AGENT_LOGS_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub workspace_agent_logs_retention: Duration,

    /// HSTS max-age in seconds, sent when the access URL is https (0: off).
    #[arg(long, env = "CODER_STRICT_TRANSPORT_SECURITY", default_value_t = 0)]
    pub strict_transport_security: u64,

    /// HSTS options: `includeSubDomains`, `preload`.
    #[arg(
        long,
        env = "CODER_STRICT_TRANSPORT_SECURITY_OPTIONS",
        value_delimiter = ','
    )]
    pub strict_transport_security_options: Vec<String>,

    /// Headers a trusted proxy reports the client address in, read in this order
    /// (e.g. `X-Forwarded-For,CF-Connecting-IP`). Empty: no header is believed.
    #[arg(long, env = "CODER_PROXY_TRUSTED_HEADERS", value_delimiter = ',', value_parser = parse_header_name)]
    pub proxy_trusted_headers: Vec<axum::http::HeaderName>,

    /// Addresses or CIDR ranges of the proxies whose headers are believed
    /// (e.g. `10.0.0.0/8,127.0.0.1`). Empty: no header is believed.
    #[arg(long, env = "CODER_PROXY_TRUSTED_ORIGINS", value_delimiter = ',', value_parser = parse_ip_net)]
    pub proxy_trusted_origins: Vec<ipnet::IpNet>,

    /// The workspace-app wildcard host (e.g. `*.apps.example.com`), allowed in page CSPs.
    #[arg(long, env = "CODER_WILDCARD_ACCESS_URL")]
    pub wildcard_access_url: Option<String>,

    /// Serve the AI Bridge pass-through (`/api/v2/aibridge/{openai,anthropic}/v1/*`).
    #[arg(long, env = "CODER_AIBRIDGE_ENABLED", default_value_t = false, action = clap::ArgAction::Set)]
    pub aibridge_enabled: bool,

    /// The OpenAI API root that `/api/v2/aibridge/openai/v1/*` forwards to.
    #[arg(
        long,
        env = "CODER_AIBRIDGE_OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1/"
    )]
    pub aibridge_openai_base_url: String,

    /// The OpenAI key sent upstream in place of the caller's token.
    #[arg(long, env = "CODER_AIBRIDGE_OPENAI_KEY", hide_env_values = true)]
    pub aibridge_openai_key: Option<String>,

    /// The Anthropic API host that `/api/v2/aibridge/anthropic/v1/*` forwards to.
    #[arg(
        long,
        env = "CODER_AIBRIDGE_ANTHROPIC_BASE_URL",
        default_value = "https://api.anthropic.com/"
    )]
    pub aibridge_anthropic_base_url: String,

    /// The Anthropic key sent upstream in place of the caller's token.
    #[arg(long, env = "CODER_AIBRIDGE_ANTHROPIC_KEY", hide_env_values = true)]
    pub aibridge_anthropic_key: Option<String>,

    /// At most this many AI Bridge requests in flight (0: no limit); over it, 503.
    #[arg(long, env = "CODER_AIBRIDGE_MAX_CONCURRENCY", default_value_t = 0)]
    pub aibridge_max_concurrency: usize,

    /// At most this many AI Bridge requests per token per window (0: no limit).
    #[arg(long, env = "CODER_AIBRIDGE_RATE_LIMIT", default_value_t = 0)]
    pub aibridge_rate_limit: i64,

    /// The window of `--aibridge-rate-limit`.
    #[arg(long, env = "CODER_AIBRIDGE_RATE_WINDOW", default_value = "1s", value_parser = parse_duration)]
    pub aibridge_rate_window: Duration,

    /// Experiments to enable (comma separated; `*` enables the safe ones).
    #[arg(long, env = "CODER_EXPERIMENTS", value_delimiter = ',')]
    pub experiments: Vec<String>,

    #[command(flatten)]
    pub oidc: OidcFlags,

    #[command(flatten)]
    pub tls: TlsFlags,

    /// External auth providers, from `CODER_EXTERNAL_AUTH_<N>_*` (read at start-up).
    #[arg(skip)]
    pub external_auth: Vec<crate::external_auth::config::ProviderConfig>,
}

/// `--tls-min-version` (Coder's names; rustls speaks nothing older than TLS 1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum TlsMinVersion {
    #[default]
    Tls12,
    Tls13,
}

/// `--tls-client-auth` (Coder's names, after Go's `tls.ClientAuthType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum TlsClientAuth {
    #[default]
    None,
    Request,
    RequireAny,
    VerifyIfGiven,
    RequireAndVerify,
}

impl TlsClientAuth {
    pub fn name(self) -> &'static str {
        match self {
            TlsClientAuth::None => "none",
            TlsClientAuth::Request => "request",
            TlsClientAuth::RequireAny => "require-any",
            TlsClientAuth::VerifyIfGiven => "verify-if-given",
            TlsClientAuth::RequireAndVerify => "require-and-verify",
        }
    }
}

/// Serving HTTPS (Coder's `--tls-*` flags), beside `--http-address`.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsFlags {
    /// Serve HTTPS on `--tls-address`.
    #[arg(long, env = "CODER_TLS_ENABLE", default_value_t = false, action = clap::ArgAction::Set)]
    pub tls_enable: bool,

    /// HTTPS bind address.
    #[arg(long, env = "CODER_TLS_ADDRESS", default_value = "127.0.0.1:3443")]
    pub tls_address: Option<SocketAddr>,

    /// Certificate files (PEM, leaf first), one per key; the client's SNI picks one.
    #[arg(long, env = "CODER_TLS_CERT_FILE", value_delimiter = ',')]
    pub tls_cert_file: Vec<std::path::PathBuf>,

    /// Key files (PEM), in the order of `--tls-cert-file`.
    #[arg(long, env = "CODER_TLS_KEY_FILE", value_delimiter = ',')]
    pub tls_key_file: Vec<std::path::PathBuf>,

    /// The oldest TLS version accepted.
    #[arg(
        long,
        env = "CODER_TLS_MIN_VERSION",
        value_enum,
        default_value = "tls12"
    )]
    pub tls_min_version: TlsMinVersion,

    /// Whether clients present certificates.
    #[arg(
        long,
        env = "CODER_TLS_CLIENT_AUTH",
        value_enum,
        default_value = "none"
    )]
    pub tls_client_auth: TlsClientAuth,

    /// The CA (PEM) client certificates are verified against.
    #[arg(long, env = "CODER_TLS_CLIENT_CA_FILE")]
    pub tls_client_ca_file: Option<std::path::PathBuf>,
}

/// Sign-in through an OpenID Connect provider (off unless an issuer is given).
#[derive(Debug, Clone, Args)]
pub struct OidcFlags {
    /// The provider's issuer URL; its discovery document is read at start-up.
    #[arg(long, env = "CODER_OIDC_ISSUER_URL")]
    pub oidc_issuer_url: Option<String>,

    /// The client id registered with the provider.
    #[arg(long, env = "CODER_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,

    /// The client secret registered with the provider.
    #[arg(long, env = "CODER_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,

    /// The claim holding the user's e-mail address.
    #[arg(long, env = "CODER_OIDC_EMAIL_FIELD", default_value = "email")]
    pub oidc_email_field: String,

    /// The claim holding the user's name (falls back to the e-mail's local part).
    #[arg(
        long,
        env = "CODER_OIDC_USERNAME_FIELD",
        default_value = "preferred_username"
    )]
    pub oidc_username_field: String,

    /// Scopes asked of the provider.
    #[arg(
        long,
        env = "CODER_OIDC_SCOPES",
        value_delimiter = ',',
        default_value = "openid,profile,email"
    )]
    pub oidc_scopes: Vec<String>,

    /// E-mail domains allowed to sign in (empty: any).
    #[arg(long, env = "CODER_OIDC_EMAIL_DOMAIN", value_delimiter = ',')]
    pub oidc_email_domain: Vec<String>,

    /// Whether a first sign-in creates the user.
    #[arg(long, env = "CODER_OIDC_ALLOW_SIGNUPS", default_value_t = true, action = clap::ArgAction::Set)]
    pub oidc_allow_signups: bool,

    /// Accept e-mail addresses the provider has not verified.
    #[arg(long, env = "CODER_OIDC_IGNORE_EMAIL_VERIFIED", default_value_t = false, action = clap::ArgAction::Set)]
    pub oidc_ignore_email_verified: bool,

    /// The login button's text.
    #[arg(
        long,
        env = "CODER_OIDC_SIGN_IN_TEXT",
        default_value = "OpenID Connect"
    )]
    pub oidc_sign_in_text: String,
}

impl Default for OidcFlags {
    fn default() -> OidcFlags {
        OidcFlags {
            oidc_issuer_url: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_email_field: "email".to_owned(),
            oidc_username_field: "preferred_username".to_owned(),
            oidc_scopes: vec!["openid".into(), "profile".into(), "email".into()],
            oidc_email_domain: Vec::new(),
            oidc_allow_signups: true,
            oidc_ignore_email_verified: false,
            oidc_sign_in_text: "OpenID Connect".to_owned(),
        }
    }
}

impl ServerConfig {
    /// Where outbound TLS takes its trusted roots from.
    pub fn trust_sources(&self) -> crate::outbound::TrustSources {
        crate::outbound::TrustSources {
            cert_file: self.ssl_cert_file.clone(),
            cert_dirs: self.ssl_cert_dir.clone(),
        }
    }

    /// The data directory: the flag, else `gatehouse` under the user's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            dirs::data_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("gatehouse")
        })
    }

    /// A configuration for tests and benchmarks: defaults, no data directory needed.
    pub fn for_tests() -> ServerConfig {
        ServerConfig {
            http_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            access_url: url::Url::parse("http://gatehouse.test").ok(),
            postgres_url: None,
            data_dir: None,
            session_duration: Duration::from_secs(24 * 3600),
            default_token_lifetime: Duration::from_secs(7 * 86_400),
            max_token_lifetime: Duration::from_secs(876_600 * 3600),
            max_admin_token_lifetime: Duration::from_secs(168 * 3600),
            disable_session_expiry_refresh: false,
            secure_auth_cookie: false,
            log_format: LogFormat::Human,
            log_filter: "info".to_owned(),
            graceful_shutdown_timeout: Duration::from_secs(5),
            websocket_probe_interval: Duration::from_secs(15),
            http_read_header_timeout: Duration::from_secs(30),
            http_read_body_timeout: Duration::from_secs(60),
            http_max_connections_per_address: 256,
            redirect_to_access_url: false,
            dev: false,
            enable_authz_recordings: false,
            provisioner_daemons: 0,
            api_rate_limit: 512,
            dangerous_disable_rate_limits: false,
            dangerous_allow_cors_requests: false,
            prometheus_enable: false,
            prometheus_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            // A fixed test key: tests must not write a key file into the user's data dir.
            oauth2_provider_enable: true,
            oauth2_dynamic_client_registration: None,
            default_oauth_refresh_lifetime: Duration::from_secs(720 * 3600),
            experiments: Vec::new(),
            oidc: OidcFlags::default(),
            tls: TlsFlags::default(),
            external_auth: Vec::new(),
            strict_transport_security: 0,
            strict_transport_security_options: Vec::new(),
            proxy_trusted_headers: Vec::new(),
            proxy_trusted_origins: Vec::new(),
            wildcard_access_url: None,
            api_keys_retention: Duration::from_secs(7 * 86_400),
            workspace_agent_logs_retention: Duration::from_secs(7 * 86_400),
            aibridge_enabled: false,
            aibridge_openai_base_url: "https://api.openai.com/v1/".to_owned(),
            aibridge_openai_key: None,
            aibridge_anthropic_base_url: "https://api.anthropic.com/".to_owned(),
            aibridge_anthropic_key: None,
            aibridge_max_concurrency: 0,
            aibridge_rate_limit: 0,
            aibridge_rate_window: Duration::from_secs(1),
            external_token_encryption_keys: Some(
                "R2F0ZWhvdXNlIHRlc3Qga2V5LCBub3QgZm9yIHVzZSE=".to_owned(),
            ),
            ssl_cert_file: None,
            ssl_cert_dir: Vec::new(),
            proxy_env: crate::outbound::proxy::ProxyEnv::default(),
        }
    }
}

fn parse_header_name(s: &str) -> Result<axum::http::HeaderName, String> {
    axum::http::HeaderName::from_bytes(s.trim().as_bytes())
        .map_err(|_| format!("{s:?} is not a valid HTTP header name"))
}

/// A CIDR range, or a bare address meaning just that address.
fn parse_ip_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is neither an IP address nor a CIDR range"))
}
