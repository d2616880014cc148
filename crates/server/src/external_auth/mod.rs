//! External auth: Gatehouse as an OAuth2 client of Git hosts, so a workspace can get its
//! owner's Git token (spec/oauth2.md §13). This is the service (providers, the first
//! leg's URL, token requests); the routes that link an account and hand an agent its
//! token are in [`crate::api::external_auth`].

pub mod config;

use std::sync::Arc;

use axum::http::{StatusCode, header};
use base64::Engine;
use chrono::Utc;
use gatehouse_httpmw::ApiError;
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use self::config::ProviderConfig;

/// The configured providers and the client that talks to them.
#[derive(Debug)]
pub struct ExternalAuth {
    pub providers: Vec<ProviderConfig>,
    http: reqwest::Client,
}

pub type SharedExternalAuth = Arc<ExternalAuth>;

impl ExternalAuth {
    /// `http` comes from the outbound factory ([`crate::outbound`]).
    pub fn new(providers: Vec<ProviderConfig>, http: reqwest::Client) -> ExternalAuth {
        ExternalAuth { providers, http }
    }

    pub fn provider(&self, id: &str) -> Result<&ProviderConfig, ApiError> {
        self.providers.iter().find(|p| p.id == id).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("External auth provider {id:?} is not configured."),
            )
        })
    }

    /// RFC 6749 §4.1.3 / §6: one token request; returns the link's new tokens.
    pub async fn token_request(
        &self,
        provider: &ProviderConfig,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, String> {
        let mut all: Vec<(&str, &str)> = form.to_vec();
        all.push(("client_id", &provider.client_id));
        if !provider.client_secret.is_empty() {
            all.push(("client_secret", &provider.client_secret));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(all)
            .finish();
        let res = self
            .http
            .post(provider.token_url.clone())
            // GitHub answers form-encoded unless asked for JSON.
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "the provider could not be reached: {}",
                    crate::outbound::describe(&e)
                )
            })?;
        let status = res.status();
        let value: serde_json::Value = res
            .json()
            .await
            .map_err(|e| format!("the provider's answer is not JSON ({status}): {e}"))?;
        if let Some(error) = value.get("error").and_then(|e| e.as_str()) {
            let description = value
                .get("error_description")
                .and_then(|e| e.as_str())
                .unwrap_or_default();
            return Err(format!("{error}: {description}"));
        }
        serde_json::from_value::<TokenResponse>(value)
            .map_err(|e| format!("the provider's token response is malformed: {e}"))
    }
}

/// A provider's token response (RFC 6749 §5.1).
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// When a token of `expires_in` seconds expires, as the link stores it.
pub fn expiry(expires_in: Option<u64>) -> chrono::DateTime<Utc> {
    crate::oidc::expiry_of(expires_in.map(std::time::Duration::from_secs))
}

/// RFC 7636 §4.2: `BASE64URL(SHA256(verifier))`.
fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The first leg of a link: where the browser goes, and the state and PKCE verifier (unless
/// the provider turns PKCE off) the second leg must bring back.
pub struct FirstLeg {
    pub url: url::Url,
    pub state: String,
    pub verifier: Option<String>,
}

impl ExternalAuth {
    pub fn first_leg(&self, provider: &ProviderConfig, redirect_uri: &str) -> FirstLeg {
        let state = Alphanumeric.sample_string(&mut rand::rng(), 32);
        let mut url = provider.auth_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &provider.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", &state)
                .append_pair("access_type", "offline");
            if !provider.scopes.is_empty() {
                q.append_pair("scope", &provider.scopes.join(" "));
            }
        }
        let verifier = provider
            .pkce_s256
            .then(|| Alphanumeric.sample_string(&mut rand::rng(), 64));
        if let Some(verifier) = &verifier {
            url.query_pairs_mut()
                .append_pair("code_challenge", &s256(verifier))
                .append_pair("code_challenge_method", "S256");
        }
        FirstLeg {
            url,
            state,
            verifier,
        }
    }

    /// The provider whose pattern matches a Git URL.
    pub fn provider_for_url(&self, git_url: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| {
            p.regex
                .as_deref()
                .and_then(|r| regex::Regex::new(r).ok())
                .is_some_and(|r| r.is_match(git_url))
        })
    }
}
