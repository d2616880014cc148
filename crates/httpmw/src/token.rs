//! API-key tokens: `<10-char id>-<22-char secret>` (spec/auth.md §1.2). Only
//! `sha256(secret)` is stored; the compare is constant-time.
//!
//! NEVER CHANGE THE FORMAT OF EXISTING TOKENS: clients and stored keys depend on it.

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const ID_LEN: usize = 10;
pub const SECRET_LEN: usize = 22;

/// A freshly generated key: the id, the secret to show once, and the hash to store.
pub struct GeneratedKey {
    pub id: String,
    pub secret: String,
    pub hashed_secret: Vec<u8>,
}

impl GeneratedKey {
    /// The token the client presents.
    pub fn token(&self) -> String {
        format!("{}-{}", self.id, self.secret)
    }
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Generates a key from the OS-seeded CSPRNG, alphabet `0-9A-Za-z`.
pub fn generate() -> GeneratedKey {
    let mut rng = rand::rng();
    let id = Alphanumeric.sample_string(&mut rng, ID_LEN);
    let secret = Alphanumeric.sample_string(&mut rng, SECRET_LEN);
    let hashed_secret = hash_secret(&secret).to_vec();
    GeneratedKey {
        id,
        secret,
        hashed_secret,
    }
}

pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares a presented secret with a stored hash in constant time.
pub fn secret_matches(secret: &str, stored: &[u8]) -> bool {
    let presented = hash_secret(secret);
    // `ct_eq` on slices of different length is false without looking at contents.
    bool::from(presented.as_slice().ct_eq(stored))
}

/// Why a token string is malformed; the text is Coder's detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("Invalid API key format: incorrect amount of API key parts, expected 2 got {0}")]
    Parts(usize),
    #[error("Invalid API key format: invalid API key ID length, expected 10 got {0}")]
    IdLength(usize),
    #[error("Invalid API key format: invalid API key secret length, expected 22 got {0}")]
    SecretLength(usize),
}

/// Splits a token into id and secret, checking the shape only.
pub fn split(token: &str) -> Result<(&str, &str), FormatError> {
    let parts = token.split('-').count();
    let Some((id, secret)) = token.split_once('-').filter(|_| parts == 2) else {
        return Err(FormatError::Parts(parts));
    };
    if id.len() != ID_LEN {
        return Err(FormatError::IdLength(id.len()));
    }
    if secret.len() != SECRET_LEN {
        return Err(FormatError::SecretLength(secret.len()));
    }
    Ok((id, secret))
}

/// Whether an id could have been generated here. Anything else is answered "API key is
/// invalid." without a database round trip.
pub fn plausible_id(id: &str) -> bool {
    id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The stored form of a workspace-agent token: SHA-256 of its canonical (lowercase,
/// hyphenated) UUID text, so the same token in any accepted spelling matches.
pub fn agent_token_hash(token: uuid::Uuid) -> [u8; 32] {
    let mut text = uuid::Uuid::encode_buffer();
    hash_secret(token.hyphenated().encode_lower(&mut text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_split_and_verify() {
        let key = generate();
        let token = key.token();
        let (id, secret) = split(&token).unwrap();
        assert_eq!(id, key.id);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(secret_matches(secret, &key.hashed_secret));
        assert!(!secret_matches("x".repeat(22).as_str(), &key.hashed_secret));
        assert!(!format!("{key:?}").contains(&key.secret));
    }

    #[test]
    fn malformed_tokens_say_what_is_wrong() {
        assert_eq!(split("abc"), Err(FormatError::Parts(1)));
        assert_eq!(split("a-b-c"), Err(FormatError::Parts(3)));
        assert_eq!(
            split("123456789-1234567890123456789012"),
            Err(FormatError::IdLength(9))
        );
        assert_eq!(
            split("1234567890-123456789012345678901"),
            Err(FormatError::SecretLength(21))
        );
        // Agent tokens are UUIDs: five parts.
        assert_eq!(
            split("1f0c4f54-6b1e-4a0c-9d3e-2f7a8f1b2c3d"),
            Err(FormatError::Parts(5))
        );
        // Lengths are bytes (as in Coder); such an id can never exist, see `plausible_id`.
        assert_eq!(
            split("ééééé-1234567890123456789012").map(|(id, _)| plausible_id(id)),
            Ok(false)
        );
        assert!(plausible_id("AbC0123xyz"));
    }
}
