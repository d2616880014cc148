//! The OAuth2 protocol model (spec/oauth2.md §9): every enum and message of the
//! authorization server, with serde names spelled as the RFCs spell them. Server and
//! clients use these types for protocol values, never raw strings.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Declares a string enum whose wire names are given once and used by serde,
/// `Display` and `parse`.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// The value with this exact wire name (names are case-sensitive).
            pub fn parse(raw: &str) -> Option<$name> {
                match raw { $($wire => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// RFC 6749 grant types (§9.1). Only the first two are accepted.
    GrantType {
        AuthorizationCode = "authorization_code",
        RefreshToken = "refresh_token",
        Password = "password",
        ClientCredentials = "client_credentials",
        Implicit = "implicit",
    }
}

wire_enum! {
    /// RFC 6749 §3.1.1 response types (§9.2). `token` parses, then is refused.
    ResponseType {
        Code = "code",
        Token = "token",
    }
}

wire_enum! {
    /// RFC 7591 §2 `token_endpoint_auth_method` values we support (§9.3).
    TokenEndpointAuthMethod {
        ClientSecretBasic = "client_secret_basic",
        ClientSecretPost = "client_secret_post",
        None = "none",
    }
}

wire_enum! {
    /// RFC 7636 §4.2 challenge methods (§9.4). Only `S256` is accepted.
    CodeChallengeMethod {
        S256 = "S256",
        Plain = "plain",
    }
}

wire_enum! {
    /// Token types (§9.5). Only `Bearer` is issued.
    TokenType {
        Bearer = "Bearer",
        DPoP = "DPoP",
    }
}

wire_enum! {
    /// RFC 7009 §2.1 `token_type_hint` (§9.6).
    TokenTypeHint {
        AccessToken = "access_token",
        RefreshToken = "refresh_token",
    }
}

wire_enum! {
    /// Error codes: RFC 6749 §4.1.2.1 and §5.2, RFC 7009 §2.2.1, RFC 8707 §2, RFC 7591 §3.2.2,
    /// RFC 6750 §3.1 (§9.7).
    ErrorCode {
        InvalidRequest = "invalid_request",
        InvalidClient = "invalid_client",
        InvalidGrant = "invalid_grant",
        UnauthorizedClient = "unauthorized_client",
        UnsupportedGrantType = "unsupported_grant_type",
        InvalidScope = "invalid_scope",
        AccessDenied = "access_denied",
        UnsupportedResponseType = "unsupported_response_type",
        ServerError = "server_error",
        TemporarilyUnavailable = "temporarily_unavailable",
        UnsupportedTokenType = "unsupported_token_type",
        InvalidTarget = "invalid_target",
        InvalidClientMetadata = "invalid_client_metadata",
        InvalidRedirectUri = "invalid_redirect_uri",
        InvalidToken = "invalid_token",
        InsufficientScope = "insufficient_scope",
    }
}

wire_enum! {
    /// Whether a client can keep a secret (RFC 6749 §2.1).
    ClientType {
        Confidential = "confidential",
        Public = "public",
    }
}

/// RFC 6749 §5.2 error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OAuth2Error {
    pub error: ErrorCode,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error_description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

/// The token endpoint's form (RFC 6749 §4.1.3, §6; RFC 7636 §4.5; RFC 8707 §2). The wire
/// format is `application/x-www-form-urlencoded`; this struct documents and builds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenRequest {
    pub grant_type: Option<GrantType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_verifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// RFC 6749 §5.1 success body (`expiry` is Coder's extra for golang.org/x/oauth2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: TokenType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Always sent (decisions.md 27), space separated.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<DateTime<Utc>>,
}

/// RFC 7009 §2.1 request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenRevocationRequest {
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type_hint: Option<TokenTypeHint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// RFC 7662 §2.2 introspection response (decisions.md 29).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<TokenType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// RFC 8414 §2 authorization server metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_methods_supported: Vec<TokenEndpointAuthMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_methods_supported: Vec<TokenEndpointAuthMethod>,
    pub response_types_supported: Vec<ResponseType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types_supported: Vec<GrantType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_challenge_methods_supported: Vec<CodeChallengeMethod>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_methods_supported: Vec<TokenEndpointAuthMethod>,
    /// RFC 9207 §3.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// RFC 9728 §2 protected resource metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProtectedResourceMetadata {
    pub resource: String,
    pub authorization_servers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bearer_methods_supported: Vec<String>,
}

/// RFC 7591 §2 client metadata, as sent to `/oauth2/register` and RFC 7592 `PUT`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClientRegistrationRequest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_statement: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<String>>,
}

/// RFC 7591 §3.2.1 response, and (without the secret, RFC 7592 §3) the client
/// configuration. `client_secret_expires_at` is sent whenever a secret is issued
/// (RFC 7591 §3.2.1: REQUIRED then; 0 = never expires).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClientRegistrationResponse {
    pub client_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_id_issued_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<ResponseType>,
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<String>>,
    /// Only in the registration response (RFC 7592 §3: never echoed afterwards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
    pub registration_client_uri: String,
}

/// The endpoints of `OAuth2ProviderApp` (spec/types.md §10.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OAuth2AppEndpoints {
    pub authorization: String,
    pub token: String,
    pub token_revoke: String,
    pub device_authorization: String,
}

/// `OAuth2ProviderApp`: Coder's five fields plus the additive ones (decisions.md 45).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OAuth2ProviderApp {
    pub id: Uuid,
    pub name: String,
    pub callback_url: String,
    pub icon: String,
    pub endpoints: OAuth2AppEndpoints,
    pub redirect_uris: Vec<String>,
    pub client_type: ClientType,
    pub dynamically_registered: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

/// `GET /api/v2/oauth2-provider/apps` [main].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OAuth2ProviderAppsResponse {
    pub apps: Vec<OAuth2ProviderApp>,
    pub count: i64,
}

/// `POST` / `PUT /api/v2/oauth2-provider/apps[/{app}]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OAuth2AppRequest {
    #[serde(default)]
    pub name: String,
    /// Deprecated: the primary redirect URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Space-separated scope allowlist; `""` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OAuth2ProviderAppSecret {
    pub id: Uuid,
    pub last_used_at: Option<DateTime<Utc>>,
    pub client_secret_truncated: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OAuth2ProviderAppSecretFull {
    pub id: Uuid,
    pub client_secret_full: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OAuth2ProviderSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_client_registration_enabled: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for g in GrantType::ALL {
            assert_eq!(GrantType::parse(g.as_str()), Some(*g));
            assert_eq!(
                serde_json::to_string(g).unwrap(),
                format!("\"{}\"", g.as_str())
            );
        }
        assert_eq!(CodeChallengeMethod::parse("s256"), None);
        assert_eq!(
            serde_json::to_string(&ErrorCode::InvalidTarget).unwrap(),
            "\"invalid_target\""
        );
    }
}
