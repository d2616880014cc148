//! Finding and authenticating the client at the protocol endpoints (spec/oauth2.md §1.3,
//! §3.1 rules 3–4, §3.2 rule 9; RFC 6749 §2.3).

use axum::http::{HeaderMap, header};
use base64::{Engine, engine::general_purpose::STANDARD};
use gatehouse_store::{
    StoreError,
    models::{OAuth2App, OAuth2Token},
    system::oauth2_provider,
};
use uuid::Uuid;

use crate::{Provider, error::OAuth2Error, params::Params, secrets::Presented};

/// The client's claimed identity and secret, from HTTP Basic or the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub client_id: String,
    pub secret: Option<String>,
}

/// RFC 6749 §2.3.1: `Basic base64(urlencode(id) ":" urlencode(secret))`.
fn basic(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuth2Error> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let malformed = || OAuth2Error::invalid_client();
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let id = unescape(id);
    if id.is_empty() {
        return Ok(None);
    }
    Ok(Some((id, unescape(secret))))
}

/// Collects the client's credentials. `query` is the URL query alone, `form` the query and
/// body merged.
pub fn credentials(
    headers: &HeaderMap,
    query: &Params,
    form: &Params,
) -> Result<Credentials, OAuth2Error> {
    // OAuth 2.1 §2.4.1: a secret in the URL ends up in logs; refuse it.
    if query.one("client_secret")?.is_some() {
        tracing::warn!("client_secret in the URL query string");
        return Err(OAuth2Error::invalid_request(
            "client_secret must not be sent in the URL query string",
        ));
    }
    let form_id = form.one("client_id")?;
    let form_secret = form.one("client_secret")?;
    if let Some((id, secret)) = basic(headers)? {
        // RFC 6749 §2.3: one authentication method per request.
        if form_secret.is_some() || form_id.is_some_and(|f| f != id) {
            return Err(OAuth2Error::invalid_request(
                "Conflicting client credentials between Authorization header and request body",
            ));
        }
        return Ok(Credentials {
            client_id: id,
            secret: Some(secret).filter(|s| !s.is_empty()),
        });
    }
    let Some(id) = form_id else {
        return Err(OAuth2Error::invalid_request("Missing client_id parameter"));
    };
    Ok(Credentials {
        client_id: id.to_owned(),
        secret: form_secret.map(str::to_owned),
    })
}

/// The app named by `client_id`; anything else is 401 `invalid_client`, never revealing
/// whether the app exists (spec/oauth2.md §1.3 rules 10–11).
pub async fn find_app(provider: &Provider, client_id: &str) -> Result<OAuth2App, OAuth2Error> {
    let id = Uuid::parse_str(client_id).map_err(|_| OAuth2Error::invalid_client())?;
    match provider.store.oauth2_app(oauth2_provider(), id).await {
        Ok(app) => Ok(app),
        Err(StoreError::NotFound) => Err(OAuth2Error::invalid_client()),
        Err(e) => Err(e.into()),
    }
}

/// Resolves and authenticates the client of a token, revocation or introspection
/// request, reading the app and its secret in one query.
pub async fn authenticated_client(
    provider: &Provider,
    headers: &HeaderMap,
    query: &Params,
    form: &Params,
) -> Result<(OAuth2App, Option<Uuid>), OAuth2Error> {
    let (app, secret_id, _) =
        authenticated_client_and_token(provider, headers, query, form, None).await?;
    Ok((app, secret_id))
}

/// As [`authenticated_client`], reading in the same query the refresh-token row whose
/// lookup prefix is `token_prefix`, when one is given (`None` when there is no such row).
/// The client is authenticated first: a bad client never learns anything of the token.
pub async fn authenticated_client_and_token(
    provider: &Provider,
    headers: &HeaderMap,
    query: &Params,
    form: &Params,
    token_prefix: Option<&str>,
) -> Result<(OAuth2App, Option<Uuid>, Option<OAuth2Token>), OAuth2Error> {
    let creds = credentials(headers, query, form)?;
    let id = Uuid::parse_str(&creds.client_id).map_err(|_| OAuth2Error::invalid_client())?;
    let presented = creds.secret.as_deref().and_then(Presented::parse);
    let secret_prefix = presented.as_ref().map(|p| p.prefix);
    let subject = oauth2_provider();
    let found = match token_prefix {
        Some(token_prefix) => {
            provider
                .store
                .oauth2_client_and_token(subject, id, secret_prefix, token_prefix)
                .await
        }
        None => provider
            .store
            .oauth2_client(subject, id, secret_prefix)
            .await
            .map(|(app, secret)| (app, secret, None)),
    };
    let (app, stored, token) = match found {
        Ok(found) => found,
        Err(StoreError::NotFound) => return Err(OAuth2Error::invalid_client()),
        Err(e) => return Err(e.into()),
    };
    if app.is_public() {
        return Ok((app, None, token));
    }
    let presented = presented.ok_or_else(OAuth2Error::invalid_client)?;
    // A prefix that is not this app's still costs a comparison: no early exit that tells
    // a wrong app from a wrong secret.
    let (secret_id, hash) = match &stored {
        Some(secret) => (Some(secret.id), secret.hashed_secret.as_slice()),
        None => (None, &[0u8; 32][..]),
    };
    let matched = presented.matches(hash);
    match secret_id {
        Some(secret_id) if matched => Ok((app, Some(secret_id), token)),
        _ => Err(OAuth2Error::invalid_client()),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_basic(id: &str, secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
        h
    }

    #[test]
    fn basic_and_form_rules() {
        let none = Params::default();
        let c = credentials(&with_basic("abc", "s%3Ae"), &none, &none).unwrap();
        assert_eq!(
            c,
            Credentials {
                client_id: "abc".into(),
                secret: Some("s:e".into())
            }
        );
        let body = Params::parse(b"client_id=abc");
        assert!(credentials(&with_basic("abc", "s"), &none, &body).is_ok());
        let other = Params::parse(b"client_id=xyz");
        assert!(credentials(&with_basic("abc", "s"), &none, &other).is_err());
        let both = Params::parse(b"client_secret=s");
        assert!(credentials(&with_basic("abc", "s"), &none, &both).is_err());
        let query = Params::parse(b"client_secret=s");
        assert!(credentials(&HeaderMap::new(), &query, &query).is_err());
        assert!(credentials(&HeaderMap::new(), &none, &none).is_err());
        let form = Params::parse(b"client_id=abc&client_secret=s");
        let c = credentials(&HeaderMap::new(), &none, &form).unwrap();
        assert_eq!(c.secret.as_deref(), Some("s"));
    }
}
