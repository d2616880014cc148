//! The HTTP client the OpenID Connect library speaks through: our reqwest (0.13), with
//! redirects off (a provider must not bounce token requests elsewhere) and a timeout, so
//! a provider that hangs fails one request instead of holding it forever.

use std::{future::Future, pin::Pin, time::Duration};

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

#[derive(Debug, Clone)]
pub struct IdpHttp(pub reqwest::Client);

impl IdpHttp {
    pub fn new() -> reqwest::Result<IdpHttp> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map(IdpHttp)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdpHttpError {
    #[error("the identity provider could not be reached: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("the identity provider's response was malformed: {0}")]
    Response(#[from] http::Error),
}

impl<'c> AsyncHttpClient<'c> for IdpHttp {
    type Error = IdpHttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, IdpHttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)?;
            let response = self.0.execute(request).await?;
            let mut out = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                out = out.header(name, value);
            }
            let body = response.bytes().await?.to_vec();
            Ok(out.body(body)?)
        })
    }
}
