//! Sign-in through an OpenID Connect provider (Gatehouse as a relying party), and the
//! refresh of an expired OIDC link on a later request (spec/auth.md §1.4).
//!
//! The provider's discovery document and keys are read once at start-up. A sign-in keeps
//! the provider's tokens on the user's link (encrypted at rest) and issues an API key with
//! its own lifetime: the key and the link expire separately.

pub mod http;
pub mod login;

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
};

use chrono::{TimeDelta, Utc};
use gatehouse_httpmw::user_link::{LinkRefreshError, LinkRefresher};
use gatehouse_store::{
    Store,
    models::{now, zero_time},
    queries::links::UserLink,
    system::system_restricted,
};
use openidconnect::{
    ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    OAuth2TokenResponse, RedirectUrl, RefreshToken, RequestTokenError,
    core::{CoreClient, CoreProviderMetadata},
};
use uuid::Uuid;

use self::http::IdpHttp;
use crate::{config::OidcFlags, outbound::error_chain};

/// The login type of keys and links made by an OIDC sign-in.
pub const LOGIN_TYPE: &str = "oidc";

/// The callback path registered with the provider.
pub const CALLBACK_PATH: &str = "/api/v2/users/oidc/callback";

pub(crate) type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A configured provider.
pub struct Oidc {
    pub(crate) client: Client,
    pub(crate) http: IdpHttp,
    pub(crate) flags: OidcFlags,
    pub(crate) issuer: String,
    store: Store,
    /// One refresh per user at a time: concurrent requests wait for it and reuse its result.
    refreshing: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// Reads the provider's discovery document. `None` when no issuer is configured; an
    /// error names the setting that is wrong, so a misconfigured server does not start.
    pub async fn discover(
        flags: &OidcFlags,
        access_url: &str,
        store: Store,
        http: reqwest::Client,
    ) -> anyhow::Result<Option<Arc<Oidc>>> {
        let Some(issuer) = flags.oidc_issuer_url.as_deref().filter(|s| !s.is_empty()) else {
            if flags.oidc_client_id.is_some() {
                anyhow::bail!(
                    "--oidc-client-id (CODER_OIDC_CLIENT_ID) is set but --oidc-issuer-url (CODER_OIDC_ISSUER_URL) is not"
                );
            }
            return Ok(None);
        };
        let client_id = flags
            .oidc_client_id
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--oidc-client-id (CODER_OIDC_CLIENT_ID) is required with --oidc-issuer-url"
                )
            })?;
        let issuer_url = IssuerUrl::new(issuer.to_owned()).map_err(|e| {
            anyhow::anyhow!("--oidc-issuer-url (CODER_OIDC_ISSUER_URL) {issuer:?}: {e}")
        })?;
        let http = IdpHttp(http);
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &http)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "--oidc-issuer-url (CODER_OIDC_ISSUER_URL): discovery at {issuer:?} failed: {}",
                    error_chain(&e)
                )
            })?;
        let redirect = RedirectUrl::new(format!("{access_url}{CALLBACK_PATH}"))
            .map_err(|e| anyhow::anyhow!("the OIDC callback URL: {e}"))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client_id),
            flags.oidc_client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect);
        Ok(Some(Arc::new(Oidc {
            client,
            http,
            flags: flags.clone(),
            issuer: issuer.trim_end_matches('/').to_owned(),
            store,
            refreshing: Mutex::new(HashMap::new()),
        })))
    }

    fn refresh_lock(&self, user_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Locks nobody holds or waits for are dropped, so the map stays small.
        map.retain(|_, lock| Arc::strong_count(lock) > 1);
        map.entry(user_id).or_default().clone()
    }

    async fn refresh_link(&self, user_id: Uuid) -> Result<(), LinkRefreshError> {
        let lock = self.refresh_lock(user_id);
        let _held = lock.lock().await;
        self.store
            .refresh_user_link(system_restricted(), user_id, LOGIN_TYPE, |link| {
                self.refreshed(link)
            })
            .await?
    }

    /// The link after a refresh at the provider; `None` when it needs none (another
    /// request or replica refreshed it while this one waited).
    async fn refreshed(
        &self,
        link: Option<UserLink>,
    ) -> Result<Option<UserLink>, LinkRefreshError> {
        let Some(link) = link else {
            return Err(LinkRefreshError::Failed(
                "the user's OIDC link no longer exists".to_owned(),
            ));
        };
        if link.oauth_expiry == zero_time() || link.oauth_expiry > now() {
            return Ok(None);
        }
        if link.oauth_refresh_token.is_empty() {
            return Err(LinkRefreshError::NoRefreshToken(link.oauth_expiry));
        }
        let refresh_token = RefreshToken::new(link.oauth_refresh_token.clone());
        let request = self
            .client
            .exchange_refresh_token(&refresh_token)
            .map_err(|e| LinkRefreshError::Failed(e.to_string()))?;
        let response = request
            .request_async(&self.http)
            .await
            .map_err(|e| LinkRefreshError::Failed(token_error(&e)))?;
        let refreshed = UserLink {
            oauth_access_token: response.access_token().secret().clone(),
            // RFC 6749 §6: a provider that does not rotate keeps the old refresh token.
            oauth_refresh_token: response
                .refresh_token()
                .map_or(link.oauth_refresh_token.clone(), |t| t.secret().clone()),
            oauth_expiry: expiry_of(response.expires_in()),
            ..link
        };
        tracing::debug!(user_id = %refreshed.user_id, expiry = %refreshed.oauth_expiry, "OIDC link refreshed");
        Ok(Some(refreshed))
    }
}

impl LinkRefresher for Oidc {
    fn refresh<'a>(
        &'a self,
        user_id: Uuid,
        login_type: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), LinkRefreshError>> + Send + 'a>> {
        Box::pin(async move {
            if login_type != LOGIN_TYPE {
                return Err(LinkRefreshError::NotConfigured);
            }
            self.refresh_link(user_id).await
        })
    }
}

/// A token's expiry as the link stores it; no `expires_in` means it never expires.
pub(crate) fn expiry_of(expires_in: Option<std::time::Duration>) -> chrono::DateTime<Utc> {
    expires_in
        .and_then(|d| TimeDelta::from_std(d).ok())
        .and_then(|d| Utc::now().checked_add_signed(d))
        .unwrap_or_else(zero_time)
}

/// A token endpoint's refusal as the provider worded it (`error: description`).
pub(crate) fn token_error<RE, T>(e: &RequestTokenError<RE, T>) -> String
where
    RE: std::error::Error + 'static,
    T: openidconnect::ErrorResponse + 'static,
{
    match e {
        RequestTokenError::ServerResponse(body) => serde_json::to_value(body).map_or_else(
            |_| e.to_string(),
            |v| {
                let error = v["error"].as_str().unwrap_or("error");
                match v["error_description"].as_str() {
                    Some(description) => format!("{error}: {description}"),
                    None => error.to_owned(),
                }
            },
        ),
        other => error_chain(other),
    }
}
