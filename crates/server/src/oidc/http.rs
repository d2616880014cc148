//! The HTTP client the OpenID Connect library speaks through: our reqwest (0.13) from the
//! outbound factory ([`crate::outbound`]: verified TLS, redirects off, timeouts).

use std::{future::Future, pin::Pin};

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

use crate::outbound::describe;

#[derive(Debug, Clone)]
pub struct IdpHttp(pub reqwest::Client);

#[derive(Debug, thiserror::Error)]
pub enum IdpHttpError {
    /// Described by [`crate::outbound::describe`]: a TLS failure names its cause.
    #[error("the identity provider could not be reached: {0}")]
    Transport(String),
    #[error("the identity provider's response was malformed: {0}")]
    Response(#[from] http::Error),
}

impl<'c> AsyncHttpClient<'c> for IdpHttp {
    type Error = IdpHttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, IdpHttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let transport = |e: reqwest::Error| IdpHttpError::Transport(describe(&e));
            let request = reqwest::Request::try_from(request).map_err(transport)?;
            let response = self.0.execute(request).await.map_err(transport)?;
            let mut out = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                out = out.header(name, value);
            }
            let body = response.bytes().await.map_err(transport)?.to_vec();
            Ok(out.body(body)?)
        })
    }
}
