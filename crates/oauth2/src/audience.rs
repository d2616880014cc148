//! Resource indicators (RFC 8707) and token audiences (decisions.md 25): the protected
//! resources are exactly the deployment root and the MCP endpoint.

use url::Url;

/// The path of the MCP endpoint, a protected resource of its own.
pub const MCP_PATH: &str = "/api/experimental/mcp/http";

/// Why a `resource` parameter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidResource {
    /// RFC 8707 §2: not an absolute URI, or has a fragment (`invalid_request` territory).
    Malformed,
    /// Well-formed but not a resource this server protects (`invalid_target`).
    Unknown,
}

/// The deployment's protected resources, in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub root: String,
    pub mcp: String,
}

impl Resources {
    /// `access_url` is the normalised access URL (no trailing slash).
    pub fn new(access_url: &str) -> Resources {
        let root = canonical(access_url).unwrap_or_else(|| access_url.to_owned());
        let mcp = canonical(&format!("{access_url}{MCP_PATH}"))
            .unwrap_or_else(|| format!("{access_url}{MCP_PATH}"));
        Resources { root, mcp }
    }

    /// Checks a `resource` value and returns its canonical form.
    pub fn resolve(&self, raw: &str) -> Result<String, InvalidResource> {
        // RFC 8707 §2: an absolute URI that MUST NOT include a fragment.
        if raw.contains('#') {
            return Err(InvalidResource::Malformed);
        }
        let Some(canon) = canonical(raw) else {
            return Err(InvalidResource::Malformed);
        };
        if canon == self.root || canon == self.mcp {
            Ok(canon)
        } else {
            Err(InvalidResource::Unknown)
        }
    }

    /// The audience a grant's stored resource stands for (NULL = the root).
    pub fn audience_of<'a>(&'a self, stored: Option<&'a str>) -> &'a str {
        match stored {
            Some(r) if !r.is_empty() => r,
            _ => &self.root,
        }
    }
}

/// The comparable form of an absolute http(s) URI: lowercase scheme and host, default
/// port dropped, dot segments resolved, one trailing `/` dropped, query kept.
pub fn canonical(raw: &str) -> Option<String> {
    let url = Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return None;
    }
    let mut out = format!("{}://{}", url.scheme(), url.host_str()?);
    if let Some(port) = url.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    let path = url.path();
    out.push_str(path.strip_suffix('/').unwrap_or(path));
    if let Some(q) = url.query() {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_only_the_two_resources() {
        let r = Resources::new("https://coder.example.com");
        assert_eq!(r.resolve("https://coder.example.com"), Ok(r.root.clone()));
        assert_eq!(
            r.resolve("HTTPS://Coder.Example.com:443/"),
            Ok(r.root.clone())
        );
        assert_eq!(
            r.resolve("https://coder.example.com/api/experimental/mcp/http"),
            Ok(r.mcp.clone())
        );
        assert_eq!(
            r.resolve("https://coder.example.com/api/experimental/mcp/http/"),
            Ok(r.mcp.clone())
        );
        assert_eq!(
            r.resolve("https://api.example.com"),
            Err(InvalidResource::Unknown)
        );
        assert_eq!(
            r.resolve("https://coder.example.com/api/v2"),
            Err(InvalidResource::Unknown)
        );
        assert_eq!(
            r.resolve("https://coder.example.com#x"),
            Err(InvalidResource::Malformed)
        );
        assert_eq!(r.resolve("/relative"), Err(InvalidResource::Malformed));
        assert_eq!(r.resolve("urn:x:y"), Err(InvalidResource::Malformed));
    }
}
