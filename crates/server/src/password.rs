//! Password hashing with Argon2id (a slow, memory-hard KDF). Hashing runs on the
//! blocking pool so it never stalls request handling.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// A PHC-format hash of a password.
pub async fn hash(password: String) -> Result<Vec<u8>, String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string().into_bytes())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Verifies a password against a stored hash. An empty or unparsable hash never matches,
/// but still costs a full hash so timing does not reveal which case it was.
pub async fn verify(password: String, stored: Vec<u8>) -> bool {
    tokio::task::spawn_blocking(move || {
        let argon = Argon2::default();
        match std::str::from_utf8(&stored) {
            Ok(phc) if !phc.is_empty() => argon.verify_password(password.as_bytes(), phc).is_ok(),
            _ => {
                let _ = argon.hash_password(password.as_bytes());
                false
            }
        }
    })
    .await
    .unwrap_or(false)
}
