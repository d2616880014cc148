//! External auth providers from `CODER_EXTERNAL_AUTH_<N>_*` environment variables, with
//! Coder's per-type defaults (spec/oauth2.md §13, decisions.md 38). Anything that cannot
//! work stops start-up with a message naming the variable.

use std::collections::BTreeMap;

/// One configured provider.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// The id in URLs (`/external-auth/<id>/callback`); defaults to the type.
    pub id: String,
    /// `github`, `gitlab`, … or anything else for a generic OAuth2 provider.
    pub kind: String,
    pub client_id: String,
    pub client_secret: String,
    pub auth_url: url::Url,
    pub token_url: url::Url,
    pub scopes: Vec<String>,
    /// Whether the flow uses PKCE with `S256` (the list holds `S256`); `none` turns it off.
    pub pkce_s256: bool,
    pub display_name: String,
    /// Which Git URLs the provider serves (`?match=` on the agent endpoint).
    pub regex: Option<String>,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("auth_url", &self.auth_url.as_str())
            .field("pkce_s256", &self.pkce_s256)
            .finish_non_exhaustive()
    }
}

struct TypeDefaults {
    auth_url: &'static str,
    token_url: &'static str,
    scopes: &'static [&'static str],
    display_name: &'static str,
    regex: &'static str,
    pkce: &'static [&'static str],
}

/// Coder's defaults by type (`coderd/externalauth`); PKCE per spec/oauth2.md §13.2.
fn type_defaults(kind: &str) -> Option<TypeDefaults> {
    Some(match kind {
        "github" => TypeDefaults {
            auth_url: "https://github.com/login/oauth/authorize",
            token_url: "https://github.com/login/oauth/access_token",
            scopes: &["repo", "workflow"],
            display_name: "GitHub",
            regex: r"^(https?://)?github\.com(/.*)?$",
            pkce: &["S256"],
        },
        "gitlab" => TypeDefaults {
            auth_url: "https://gitlab.com/oauth/authorize",
            token_url: "https://gitlab.com/oauth/token",
            scopes: &["write_repository"],
            display_name: "GitLab",
            regex: r"^(https?://)?gitlab\.com(/.*)?$",
            pkce: &["S256"],
        },
        "bitbucket-cloud" | "bitbucket" => TypeDefaults {
            auth_url: "https://bitbucket.org/site/oauth2/authorize",
            token_url: "https://bitbucket.org/site/oauth2/access_token",
            scopes: &["account", "repository:write"],
            display_name: "Bitbucket",
            regex: r"^(https?://)?bitbucket\.org(/.*)?$",
            pkce: &["none"],
        },
        "azure-devops" => TypeDefaults {
            auth_url: "https://app.vssps.visualstudio.com/oauth2/authorize",
            token_url: "https://app.vssps.visualstudio.com/oauth2/token",
            scopes: &["vso.code_write"],
            display_name: "Azure DevOps",
            regex: r"^(https?://)?dev\.azure\.com(/.*)?$",
            pkce: &["none"],
        },
        _ => return None,
    })
}

/// Types whose PKCE default is `none` even without URL defaults here (spec/oauth2.md §13.2).
const NO_PKCE_TYPES: &[&str] = &[
    "azure-devops",
    "azure-devops-entra",
    "bitbucket-cloud",
    "bitbucket",
    "bitbucket-server",
    "jfrog",
    "slack",
];

/// Reads every provider from the environment.
pub fn from_env() -> Result<Vec<ProviderConfig>, String> {
    parse(std::env::vars())
}

/// Reads every provider from `CODER_EXTERNAL_AUTH_<N>_<FIELD>` variables.
pub fn parse(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<ProviderConfig>, String> {
    let mut by_index: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("CODER_EXTERNAL_AUTH_") else {
            continue;
        };
        let Some((index, field)) = rest.split_once('_') else {
            continue;
        };
        let Ok(index) = index.parse::<u32>() else {
            continue;
        };
        by_index
            .entry(index)
            .or_default()
            .insert(field.to_owned(), value);
    }
    let mut providers: Vec<ProviderConfig> = Vec::new();
    for (index, fields) in by_index {
        let provider = one(index, &fields)?;
        if providers.iter().any(|p| p.id == provider.id) {
            return Err(format!(
                "CODER_EXTERNAL_AUTH_{index}_ID: the id {:?} is used by another provider",
                provider.id
            ));
        }
        providers.push(provider);
    }
    Ok(providers)
}

fn one(index: u32, fields: &BTreeMap<String, String>) -> Result<ProviderConfig, String> {
    let var = |field: &str| format!("CODER_EXTERNAL_AUTH_{index}_{field}");
    let get = |field: &str| {
        fields
            .get(field)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let kind = get("TYPE").unwrap_or_default().to_ascii_lowercase();
    let id = get("ID").map_or_else(|| kind.clone(), str::to_owned);
    if id.is_empty() {
        return Err(format!("{} or {} is required", var("ID"), var("TYPE")));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(format!(
            "{}: {id:?} may hold only letters, digits, '-', '_' and '.'",
            var("ID")
        ));
    }
    let defaults = type_defaults(&kind);
    let client_id = get("CLIENT_ID")
        .ok_or_else(|| format!("{} is required", var("CLIENT_ID")))?
        .to_owned();
    let client_secret = get("CLIENT_SECRET").unwrap_or_default().to_owned();
    let url_of = |field: &str, default: Option<&str>| -> Result<url::Url, String> {
        let raw = get(field)
            .or(default)
            .ok_or_else(|| format!("{} is required for type {kind:?}", var(field)))?;
        let url = url::Url::parse(raw).map_err(|e| format!("{}: {raw:?}: {e}", var(field)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{}: {raw:?} is not an http(s) URL", var(field)));
        }
        Ok(url)
    };
    let auth_url = url_of("AUTH_URL", defaults.as_ref().map(|d| d.auth_url))?;
    let token_url = url_of("TOKEN_URL", defaults.as_ref().map(|d| d.token_url))?;
    let scopes = match get("SCOPES") {
        Some(s) => s
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None => defaults
            .as_ref()
            .map(|d| d.scopes.iter().map(|s| (*s).to_owned()).collect())
            .unwrap_or_default(),
    };
    // decisions.md 38: explicit list → per-type default → S256; `plain` or anything
    // unknown fails start-up; `none` must stand alone.
    let pkce: Vec<String> = match get("PKCE_METHODS") {
        Some(list) => list
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None if NO_PKCE_TYPES.contains(&kind.as_str()) => vec!["none".to_owned()],
        None => defaults.as_ref().map_or_else(
            || vec!["S256".to_owned()],
            |d| d.pkce.iter().map(|s| (*s).to_owned()).collect(),
        ),
    };
    for method in &pkce {
        if method != "S256" && method != "none" {
            return Err(format!(
                "{}: {method:?} is not supported (use S256, or none to turn PKCE off)",
                var("PKCE_METHODS")
            ));
        }
    }
    if pkce.iter().any(|m| m == "none") && pkce.len() > 1 {
        return Err(format!(
            "{}: none turns PKCE off and must stand alone",
            var("PKCE_METHODS")
        ));
    }
    let regex = get("REGEX")
        .map(str::to_owned)
        .or_else(|| defaults.as_ref().map(|d| d.regex.to_owned()));
    if let Some(r) = &regex {
        regex_lite_check(r).map_err(|e| format!("{}: {e}", var("REGEX")))?;
    }
    Ok(ProviderConfig {
        display_name: get("DISPLAY_NAME").map_or_else(
            || {
                defaults
                    .as_ref()
                    .map_or_else(|| id.clone(), |d| d.display_name.to_owned())
            },
            str::to_owned,
        ),
        id,
        kind,
        client_id,
        client_secret,
        auth_url,
        token_url,
        scopes,
        pkce_s256: pkce.iter().any(|m| m == "S256"),
        regex,
    })
}

fn regex_lite_check(pattern: &str) -> Result<(), String> {
    regex::Regex::new(pattern)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn types_bring_their_defaults_and_pkce() {
        let p = parse(vars(&[
            ("CODER_EXTERNAL_AUTH_0_TYPE", "github"),
            ("CODER_EXTERNAL_AUTH_0_CLIENT_ID", "a"),
            ("CODER_EXTERNAL_AUTH_1_TYPE", "bitbucket-cloud"),
            ("CODER_EXTERNAL_AUTH_1_CLIENT_ID", "b"),
            ("CODER_EXTERNAL_AUTH_2_ID", "mine"),
            ("CODER_EXTERNAL_AUTH_2_CLIENT_ID", "c"),
            ("CODER_EXTERNAL_AUTH_2_AUTH_URL", "https://git.example/auth"),
            (
                "CODER_EXTERNAL_AUTH_2_TOKEN_URL",
                "https://git.example/token",
            ),
            ("CODER_EXTERNAL_AUTH_3_TYPE", "github"),
            ("CODER_EXTERNAL_AUTH_3_ID", "github-nopkce"),
            ("CODER_EXTERNAL_AUTH_3_CLIENT_ID", "d"),
            ("CODER_EXTERNAL_AUTH_3_PKCE_METHODS", "none"),
        ]))
        .unwrap();
        assert_eq!(p[0].id, "github");
        assert_eq!(
            p[0].token_url.as_str(),
            "https://github.com/login/oauth/access_token"
        );
        assert!(p[0].pkce_s256);
        assert!(!p[1].pkce_s256, "bitbucket defaults to none");
        assert!(p[2].pkce_s256, "an unknown type defaults to S256");
        assert!(!p[3].pkce_s256, "PKCE_METHODS=none turns it off");
    }

    #[test]
    fn misconfiguration_names_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("CODER_EXTERNAL_AUTH_0_TYPE", "github")],
                "CODER_EXTERNAL_AUTH_0_CLIENT_ID is required",
            ),
            (
                &[
                    ("CODER_EXTERNAL_AUTH_0_ID", "x"),
                    ("CODER_EXTERNAL_AUTH_0_CLIENT_ID", "a"),
                ],
                "CODER_EXTERNAL_AUTH_0_AUTH_URL is required",
            ),
            (
                &[
                    ("CODER_EXTERNAL_AUTH_0_TYPE", "github"),
                    ("CODER_EXTERNAL_AUTH_0_CLIENT_ID", "a"),
                    ("CODER_EXTERNAL_AUTH_0_AUTH_URL", "not a url"),
                ],
                "CODER_EXTERNAL_AUTH_0_AUTH_URL: \"not a url\"",
            ),
            (
                &[
                    ("CODER_EXTERNAL_AUTH_0_TYPE", "github"),
                    ("CODER_EXTERNAL_AUTH_0_CLIENT_ID", "a"),
                    ("CODER_EXTERNAL_AUTH_0_PKCE_METHODS", "plain"),
                ],
                "CODER_EXTERNAL_AUTH_0_PKCE_METHODS: \"plain\" is not supported",
            ),
            (
                &[
                    ("CODER_EXTERNAL_AUTH_0_TYPE", "github"),
                    ("CODER_EXTERNAL_AUTH_0_CLIENT_ID", "a"),
                    ("CODER_EXTERNAL_AUTH_0_PKCE_METHODS", "S256,none"),
                ],
                "must stand alone",
            ),
            (
                &[
                    ("CODER_EXTERNAL_AUTH_0_TYPE", "github"),
                    ("CODER_EXTERNAL_AUTH_0_CLIENT_ID", "a"),
                    ("CODER_EXTERNAL_AUTH_1_TYPE", "github"),
                    ("CODER_EXTERNAL_AUTH_1_CLIENT_ID", "b"),
                ],
                "CODER_EXTERNAL_AUTH_1_ID: the id \"github\" is used",
            ),
            (
                &[("CODER_EXTERNAL_AUTH_4_CLIENT_ID", "a")],
                "CODER_EXTERNAL_AUTH_4_ID or CODER_EXTERNAL_AUTH_4_TYPE is required",
            ),
        ];
        for (input, expected) in cases {
            let err = parse(vars(input)).unwrap_err();
            assert!(err.contains(expected), "{input:?}: {err}");
        }
    }
}
