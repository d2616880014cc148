//! A typed async client for the Gatehouse API, used by the CLI and by tests.

use reqwest::{Method, StatusCode};
use serde::{Serialize, de::DeserializeOwned};
use url::Url;

use crate::{
    apikeys::{ApiKey, ApiKeyWithOwner, CreateTokenRequest, GenerateApiKeyResponse},
    error::Response,
    users::{
        CreateFirstUserRequest, CreateFirstUserResponse, LoginWithPasswordRequest,
        LoginWithPasswordResponse, User,
    },
};

/// The header Gatehouse (like Coder) reads the session token from.
pub const SESSION_TOKEN_HEADER: &str = "Coder-Session-Token";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error envelope.
    #[error("{status}: {}{}", .response.message, detail_suffix(&.response.detail))]
    Api {
        status: StatusCode,
        response: Response,
    },
    #[error("could not reach the server: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("invalid URL: {0}")]
    Url(#[from] url::ParseError),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
    session_token: Option<String>,
}

impl Client {
    pub fn new(base: Url) -> Client {
        Client {
            base,
            http: reqwest::Client::new(),
            session_token: None,
        }
    }

    pub fn with_session_token(mut self, token: impl Into<String>) -> Client {
        self.session_token = Some(token.into());
        self
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    async fn request<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(StatusCode, Option<T>), ClientError> {
        let url = self.base.join(path)?;
        let mut req = self.http.request(method, url);
        if let Some(token) = &self.session_token {
            req = req.header(SESSION_TOKEN_HEADER, token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().await?;
        let status = res.status();
        if !status.is_success() {
            let bytes = res.bytes().await?;
            let response = serde_json::from_slice::<Response>(&bytes).unwrap_or_else(|_| {
                Response::message(String::from_utf8_lossy(&bytes).trim().to_owned())
            });
            return Err(ClientError::Api { status, response });
        }
        if status == StatusCode::NO_CONTENT {
            return Ok((status, None));
        }
        Ok((status, Some(res.json::<T>().await?)))
    }

    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        match self.request(method, path, body).await? {
            (_, Some(v)) => Ok(v),
            (status, None) => Err(ClientError::Api {
                status,
                response: Response::message("The server sent an empty response."),
            }),
        }
    }

    /// Whether the first user exists (`GET /api/v2/users/first`).
    pub async fn has_first_user(&self) -> Result<bool, ClientError> {
        match self
            .request::<(), Response>(Method::GET, "api/v2/users/first", None)
            .await
        {
            Ok(_) => Ok(true),
            Err(ClientError::Api {
                status: StatusCode::NOT_FOUND,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn create_first_user(
        &self,
        req: &CreateFirstUserRequest,
    ) -> Result<CreateFirstUserResponse, ClientError> {
        self.call(Method::POST, "api/v2/users/first", Some(req))
            .await
    }

    pub async fn login(
        &self,
        req: &LoginWithPasswordRequest,
    ) -> Result<LoginWithPasswordResponse, ClientError> {
        self.call(Method::POST, "api/v2/users/login", Some(req))
            .await
    }

    pub async fn user(&self, user: &str) -> Result<User, ClientError> {
        self.call::<(), _>(Method::GET, &format!("api/v2/users/{user}"), None)
            .await
    }

    pub async fn create_token(
        &self,
        user: &str,
        req: &CreateTokenRequest,
    ) -> Result<GenerateApiKeyResponse, ClientError> {
        self.call(
            Method::POST,
            &format!("api/v2/users/{user}/keys/tokens"),
            Some(req),
        )
        .await
    }

    /// Lists tokens; Coder sends `null` for none, which comes back as an empty list.
    pub async fn tokens(&self, user: &str) -> Result<Vec<ApiKeyWithOwner>, ClientError> {
        let list: Option<Vec<ApiKeyWithOwner>> = self
            .call::<(), _>(
                Method::GET,
                &format!("api/v2/users/{user}/keys/tokens"),
                None,
            )
            .await?;
        Ok(list.unwrap_or_default())
    }

    pub async fn token_by_name(&self, user: &str, name: &str) -> Result<ApiKey, ClientError> {
        self.call::<(), _>(
            Method::GET,
            &format!("api/v2/users/{user}/keys/tokens/{name}"),
            None,
        )
        .await
    }

    pub async fn delete_key(&self, user: &str, key_id: &str) -> Result<(), ClientError> {
        self.request::<(), Response>(
            Method::DELETE,
            &format!("api/v2/users/{user}/keys/{key_id}"),
            None,
        )
        .await
        .map(|_| ())
    }
}
