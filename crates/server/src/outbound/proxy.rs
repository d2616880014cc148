//! Outbound proxies from the environment, chosen as Go's `http.ProxyFromEnvironment`
//! (`golang.org/x/net/http/httpproxy`) chooses them, so a deployment configured for
//! Coder behaves the same here: `HTTPS_PROXY` for https URLs and `HTTP_PROXY` for http
//! ones (each also lowercase; the uppercase name wins), never a proxy for `localhost` or a
//! loopback address, and `NO_PROXY` entries of `*`, IPs, CIDR ranges and domains (with an
//! optional port; `example.com` covers its subdomains, `.example.com` only them).

use std::net::IpAddr;

use ipnet::IpNet;

/// The proxy settings as read from the environment once at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

impl ProxyEnv {
    /// The process's variables (uppercase first, then lowercase, as Go reads them).
    pub fn from_process_env() -> ProxyEnv {
        let any = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        };
        ProxyEnv {
            http_proxy: any(["HTTP_PROXY", "http_proxy"]),
            https_proxy: any(["HTTPS_PROXY", "https_proxy"]),
            no_proxy: any(["NO_PROXY", "no_proxy"]),
        }
    }
}

#[derive(Debug, Clone)]
enum Bypass {
    All,
    Ip {
        ip: IpAddr,
        port: Option<u16>,
    },
    Net(IpNet),
    /// `.example.com`; `whole` when the entry was `example.com` (the name itself too).
    Domain {
        suffix: String,
        whole: bool,
        port: Option<u16>,
    },
}

/// Which proxy, if any, a URL is fetched through.
#[derive(Debug, Clone)]
pub struct ProxyRules {
    http: Option<url::Url>,
    https: Option<url::Url>,
    bypass: Vec<Bypass>,
}

/// Go's `parseProxy`: a value without a scheme is an http proxy's address.
fn parse_proxy(name: &str, value: &str) -> anyhow::Result<url::Url> {
    let url = match url::Url::parse(value) {
        Ok(url) if url.has_host() => url,
        _ => url::Url::parse(&format!("http://{value}"))
            .map_err(|e| anyhow::anyhow!("{name}: {value:?} is not a proxy URL: {e}"))?,
    };
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => anyhow::bail!(
            "{name}: proxies of scheme {other} are not supported (use an http:// or https:// proxy)"
        ),
    }
}

fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[')
        && let Some((host, port)) = rest.split_once("]:")
    {
        return (host, port.parse().ok());
    }
    match entry.rsplit_once(':') {
        // One colon: host:port. More: a bare IPv6 address.
        Some((host, port)) if !host.contains(':') => (host, port.parse().ok()),
        _ => (entry.trim_start_matches('[').trim_end_matches(']'), None),
    }
}

fn parse_no_proxy(value: &str) -> Vec<Bypass> {
    let mut bypass = Vec::new();
    for entry in value.split(',') {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return vec![Bypass::All];
        }
        if let Ok(net) = entry.parse::<IpNet>() {
            bypass.push(Bypass::Net(net));
            continue;
        }
        let (host, port) = split_port(&entry);
        if host.is_empty() {
            continue;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            bypass.push(Bypass::Ip { ip, port });
            continue;
        }
        let host = host.strip_prefix('*').unwrap_or(host);
        let (suffix, whole) = match host.strip_prefix('.') {
            Some(_) => (host.to_owned(), false),
            None => (format!(".{host}"), true),
        };
        bypass.push(Bypass::Domain {
            suffix,
            whole,
            port,
        });
    }
    bypass
}

impl ProxyRules {
    pub fn new(env: &ProxyEnv) -> anyhow::Result<ProxyRules> {
        Ok(ProxyRules {
            http: env
                .http_proxy
                .as_deref()
                .map(|v| parse_proxy("HTTP_PROXY", v))
                .transpose()?,
            https: env
                .https_proxy
                .as_deref()
                .map(|v| parse_proxy("HTTPS_PROXY", v))
                .transpose()?,
            bypass: env
                .no_proxy
                .as_deref()
                .map(parse_no_proxy)
                .unwrap_or_default(),
        })
    }

    /// Nothing is ever proxied.
    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    /// The proxy for `url`, or `None` to connect directly.
    pub fn proxy_for(&self, url: &url::Url) -> Option<url::Url> {
        let proxy = match url.scheme() {
            "https" => self.https.as_ref()?,
            "http" => self.http.as_ref()?,
            _ => return None,
        };
        let port = url.port_or_known_default()?;
        let ip = match url.host()? {
            url::Host::Domain(name) => {
                let name = name.to_ascii_lowercase();
                if name == "localhost" {
                    return None;
                }
                if self.bypass.iter().any(|b| match b {
                    Bypass::All => true,
                    Bypass::Domain {
                        suffix,
                        whole,
                        port: wanted,
                    } => {
                        (name.ends_with(suffix.as_str()) || (*whole && name == suffix[1..]))
                            && wanted.is_none_or(|p| p == port)
                    }
                    _ => false,
                }) {
                    return None;
                }
                return Some(proxy.clone());
            }
            url::Host::Ipv4(ip) => IpAddr::V4(ip),
            url::Host::Ipv6(ip) => IpAddr::V6(ip),
        };
        if ip.is_loopback() {
            return None;
        }
        let text = ip.to_string();
        let bypassed = self.bypass.iter().any(|b| match b {
            Bypass::All => true,
            Bypass::Ip {
                ip: entry,
                port: wanted,
            } => *entry == ip && wanted.is_none_or(|p| p == port),
            Bypass::Net(net) => net.contains(&ip),
            // Go matches an IP's text against domain entries too.
            Bypass::Domain {
                suffix,
                whole,
                port: wanted,
            } => {
                (text.ends_with(suffix.as_str()) || (*whole && text == suffix[1..]))
                    && wanted.is_none_or(|p| p == port)
            }
        });
        (!bypassed).then(|| proxy.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(https: &str, no_proxy: &str) -> ProxyRules {
        ProxyRules::new(&ProxyEnv {
            http_proxy: Some("proxy.corp:3128".to_owned()),
            https_proxy: Some(https.to_owned()),
            no_proxy: Some(no_proxy.to_owned()),
        })
        .unwrap()
    }

    fn via(rules: &ProxyRules, url: &str) -> Option<String> {
        rules
            .proxy_for(&url::Url::parse(url).unwrap())
            .map(|u| u.to_string())
    }

    #[test]
    fn each_scheme_has_its_proxy_and_a_bare_address_is_http() {
        let r = rules("https://secure-proxy.corp:8443", "");
        assert_eq!(
            via(&r, "https://idp.example.com/token").as_deref(),
            Some("https://secure-proxy.corp:8443/")
        );
        assert_eq!(
            via(&r, "http://git.example.com/").as_deref(),
            Some("http://proxy.corp:3128/")
        );
        // No HTTPS_PROXY: https goes direct (Go does not fall back to HTTP_PROXY).
        let only_http = ProxyRules::new(&ProxyEnv {
            http_proxy: Some("proxy.corp:3128".to_owned()),
            ..ProxyEnv::default()
        })
        .unwrap();
        assert_eq!(via(&only_http, "https://idp.example.com/"), None);
    }

    #[test]
    fn loopback_is_never_proxied() {
        let r = rules("http://proxy.corp:3128", "");
        for url in [
            "https://localhost:8443/",
            "https://LOCALHOST/",
            "https://127.0.0.1/",
            "https://127.9.9.9:3000/",
            "https://[::1]/",
        ] {
            assert_eq!(via(&r, url), None, "{url}");
        }
    }

    #[test]
    fn no_proxy_matches_as_go_matches() {
        let r = rules(
            "http://proxy.corp:3128",
            " example.com, .internal, 10.0.0.0/8, 192.0.2.7, models.test:8443, [2001:db8::1]:443",
        );
        for (url, direct) in [
            ("https://example.com/", true),
            ("https://api.example.com/", true),
            ("https://notexample.com/", false),
            ("https://internal/", false),
            ("https://idp.internal/", true),
            ("https://10.2.3.4/", true),
            ("https://192.0.2.7/", true),
            ("https://192.0.2.8/", false),
            ("https://models.test:8443/", true),
            ("https://models.test/", false),
            ("https://[2001:db8::1]/", true),
            ("https://[2001:db8::2]/", false),
        ] {
            assert_eq!(via(&r, url).is_none(), direct, "{url}");
        }
        assert_eq!(via(&rules("http://p:1", "*"), "https://a.b/"), None);
    }

    #[test]
    fn a_proxy_of_another_scheme_is_refused() {
        let err = ProxyRules::new(&ProxyEnv {
            https_proxy: Some("socks5://127.0.0.1:1080".to_owned()),
            ..ProxyEnv::default()
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HTTPS_PROXY: proxies of scheme socks5")
        );
    }
}
