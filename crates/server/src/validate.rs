//! Input rules for names, emails and passwords, with Coder's messages.

/// Coder's username rule: ASCII letters and digits in groups joined by single hyphens,
/// at most 32 characters, and not a reserved word.
pub fn username(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("username is required".to_owned());
    }
    if name.len() > 32 {
        return Err("must be <= 32 characters".to_owned());
    }
    if matches!(name.to_ascii_lowercase().as_str(), "me" | "new" | "create") {
        return Err(format!("cannot use {name:?} as a name"));
    }
    let groups_ok = name
        .split('-')
        .all(|g| !g.is_empty() && g.chars().all(|c| c.is_ascii_alphanumeric()));
    if !groups_ok {
        return Err("must be alphanumeric with hyphens".to_owned());
    }
    Ok(())
}

/// A pragmatic email check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn email(addr: &str) -> bool {
    let Some((local, domain)) = addr.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !addr.chars().any(|c| c.is_whitespace() || c.is_control())
        && addr.len() <= 254
}

/// Password strength: 6–64 characters and at least 52 bits of estimated entropy (the
/// threshold Coder uses), estimated from the character classes used and the length after
/// collapsing runs of repeated characters.
pub fn password(pw: &str) -> Result<(), String> {
    let len = pw.chars().count();
    if len < 6 {
        return Err("password must be at least 6 characters".to_owned());
    }
    if len > 64 {
        return Err("password must be at most 64 characters".to_owned());
    }
    let mut base = 0u32;
    if pw.chars().any(|c| c.is_ascii_lowercase()) {
        base += 26;
    }
    if pw.chars().any(|c| c.is_ascii_uppercase()) {
        base += 26;
    }
    if pw.chars().any(|c| c.is_ascii_digit()) {
        base += 10;
    }
    if pw.chars().any(|c| c.is_ascii_punctuation() || c == ' ') {
        base += 33;
    }
    if !pw.is_ascii() {
        base += 32;
    }
    let mut effective = 0u32;
    let mut prev = None;
    let mut run = 0;
    for c in pw.chars() {
        run = if Some(c) == prev { run + 1 } else { 1 };
        prev = Some(c);
        if run <= 2 {
            effective += 1;
        }
    }
    let bits = f64::from(effective) * f64::from(base.max(1)).log2();
    if bits < 52.0 {
        return Err("insecure password, try including more special characters, using uppercase letters, using numbers or using a longer password".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(username("alice").is_ok());
        assert!(username("alice-2").is_ok());
        assert!(username("-alice").is_err());
        assert!(username("al--ice").is_err());
        assert!(username("al ice").is_err());
        assert!(username("me").is_err());
        assert!(username(&"a".repeat(33)).is_err());
    }

    #[test]
    fn passwords() {
        assert!(password("SomeSecurePassword!").is_ok());
        assert!(password("password").is_err());
        assert!(password("aaaaaaaaaaaaaaaaaaaaaaaa").is_err());
        assert!(password("abc").is_err());
    }

    #[test]
    fn emails() {
        assert!(email("admin@example.com"));
        assert!(!email("admin"));
        assert!(!email("admin@localhost"));
        assert!(!email("a b@example.com"));
    }
}
