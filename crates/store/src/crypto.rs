//! Encryption at rest for secrets that must be read back (decisions.md 35): sub-agent
//! tokens now, IdP tokens later. XChaCha20-Poly1305 with a random 24-byte nonce; the
//! row's id is the associated data, so a ciphertext cannot be moved to another row.
//! Several keys may be configured: the first encrypts, any decrypts (rotation).

use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit, Payload},
};
use sha2::{Digest, Sha256};

const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;

pub struct TokenCipher {
    keys: Vec<([u8; KEY_ID_LEN], XChaCha20Poly1305)>,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCipher")
            .field("keys", &self.keys.len())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("no encryption key configured")]
    NoKey,
    #[error("an encryption key must be 32 bytes, base64-encoded (got {0} bytes)")]
    KeyLength(usize),
    #[error("an encryption key is not valid base64")]
    KeyEncoding,
}

impl TokenCipher {
    /// Keys as raw 32-byte values; the first one encrypts.
    pub fn new(keys: &[[u8; 32]]) -> Result<TokenCipher, CipherError> {
        if keys.is_empty() {
            return Err(CipherError::NoKey);
        }
        let keys = keys
            .iter()
            .map(|k| {
                let digest = Sha256::digest(k);
                let mut id = [0u8; KEY_ID_LEN];
                id.copy_from_slice(&digest[..KEY_ID_LEN]);
                XChaCha20Poly1305::new_from_slice(k)
                    .map(|c| (id, c))
                    .map_err(|_| CipherError::KeyLength(k.len()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TokenCipher { keys })
    }

    /// Keys as `CODER_EXTERNAL_TOKEN_ENCRYPTION_KEYS` spells them: comma-separated
    /// standard base64, 32 bytes each.
    pub fn from_base64_list(list: &str) -> Result<TokenCipher, CipherError> {
        use base64::Engine;
        let keys = list
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(k)
                    .map_err(|_| CipherError::KeyEncoding)?;
                <[u8; 32]>::try_from(raw.as_slice()).map_err(|_| CipherError::KeyLength(raw.len()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        TokenCipher::new(&keys)
    }

    /// `key id ‖ nonce ‖ ciphertext`, bound to `context` (the row id).
    pub fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let (id, cipher) = &self.keys[0];
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = XNonce::from(nonce_bytes);
        // Encryption only fails for inputs beyond 256 GiB.
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + sealed.len());
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        out
    }

    /// The plaintext, or `None` when the key is unknown or the data was tampered with.
    pub fn decrypt(&self, blob: &[u8], context: &[u8]) -> Option<Vec<u8>> {
        if blob.len() < KEY_ID_LEN + NONCE_LEN {
            return None;
        }
        let (id, rest) = blob.split_at(KEY_ID_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let (_, cipher) = self.keys.iter().find(|(k, _)| k.as_slice() == id)?;
        let nonce = XNonce::try_from(nonce).ok()?;
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: context,
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_rotation_and_tamper() {
        let old = TokenCipher::new(&[[1; 32]]).unwrap();
        let blob = old.encrypt(b"secret", b"row-1");
        assert!(!blob.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            old.decrypt(&blob, b"row-1").as_deref(),
            Some(&b"secret"[..])
        );
        assert_eq!(old.decrypt(&blob, b"row-2"), None, "bound to its row");
        let rotated = TokenCipher::new(&[[2; 32], [1; 32]]).unwrap();
        assert_eq!(
            rotated.decrypt(&blob, b"row-1").as_deref(),
            Some(&b"secret"[..])
        );
        let mut tampered = blob.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert_eq!(old.decrypt(&tampered, b"row-1"), None);
        assert_eq!(
            TokenCipher::new(&[[2; 32]])
                .unwrap()
                .decrypt(&blob, b"row-1"),
            None
        );
    }

    #[test]
    fn base64_keys() {
        assert!(
            TokenCipher::from_base64_list("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").is_ok()
        );
        assert_eq!(
            TokenCipher::from_base64_list("c2hvcnQ=").unwrap_err(),
            CipherError::KeyLength(5)
        );
        assert_eq!(
            TokenCipher::from_base64_list("***").unwrap_err(),
            CipherError::KeyEncoding
        );
        assert_eq!(
            TokenCipher::from_base64_list("").unwrap_err(),
            CipherError::NoKey
        );
    }
}
