//! Client secrets, authorization codes and refresh tokens: `coder_<10>_<40>`, alphabet
//! `[0-9A-Za-z]` (spec/oauth2.md §10.1). Only `sha256(secret part)` is stored, looked up
//! by the prefix and compared in constant time. Registration access tokens are 40
//! alphanumerics without a prefix (§10.2).
//!
//! NEVER CHANGE THE FORMAT: issued secrets and stored rows depend on it.

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const PREFIX_LEN: usize = 10;
pub const SECRET_LEN: usize = 40;

/// A freshly generated app secret.
pub struct AppSecret {
    pub prefix: String,
    secret: String,
}

impl AppSecret {
    pub fn generate() -> AppSecret {
        let mut rng = rand::rng();
        AppSecret {
            prefix: Alphanumeric.sample_string(&mut rng, PREFIX_LEN),
            secret: Alphanumeric.sample_string(&mut rng, SECRET_LEN),
        }
    }

    /// What the client receives, once.
    pub fn formatted(&self) -> String {
        format!("coder_{}_{}", self.prefix, self.secret)
    }

    pub fn hash(&self) -> Vec<u8> {
        hash(&self.secret).to_vec()
    }
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSecret")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A presented secret, split but not yet verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented<'a> {
    pub prefix: &'a str,
    pub secret: &'a str,
}

impl<'a> Presented<'a> {
    /// Exactly three `_`-separated parts, the first `coder` (spec/oauth2.md §10.1 rule 2),
    /// with the lengths and alphabet we issue.
    pub fn parse(raw: &'a str) -> Option<Presented<'a>> {
        let mut parts = raw.split('_');
        let (Some("coder"), Some(prefix), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let alnum =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric());
        (alnum(prefix, PREFIX_LEN) && alnum(secret, SECRET_LEN))
            .then_some(Presented { prefix, secret })
    }

    /// Constant-time comparison with a stored hash.
    pub fn matches(&self, stored: &[u8]) -> bool {
        matches_hash(self.secret, stored)
    }
}

pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// `sha256(secret) == stored`, in constant time (lengths differing is not secret).
pub fn matches_hash(secret: &str, stored: &[u8]) -> bool {
    bool::from(hash(secret).as_slice().ct_eq(stored))
}

/// A fresh RFC 7592 registration access token.
pub fn registration_token() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), SECRET_LEN)
}

/// A random token for `state`-like uses (CSRF, IDs shown once).
pub fn random_alphanumeric(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed_shapes() {
        let s = AppSecret::generate();
        let text = s.formatted();
        assert_eq!(text.len(), 57);
        let p = Presented::parse(&text).unwrap();
        assert_eq!(p.prefix, s.prefix);
        assert!(p.matches(&s.hash()));
        assert!(!p.matches(&[0; 32]));
        for bad in [
            "1234_4321",
            "notcoder_aaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "coder_1234",
            "coder__1234",
            "coder_aaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb_c",
            "coder_aaaaaaaaa!_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "",
        ] {
            assert_eq!(Presented::parse(bad), None, "{bad:?}");
        }
    }
}
