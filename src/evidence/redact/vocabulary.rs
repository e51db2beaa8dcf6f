//! The credential-word vocabulary: which identifiers name a secret.
//!
//! Every rule that finds a value by its key (`secret=`, `auth_pass = 0x55
//! "..."`, `--password X`, `DB(secret/1001)`, a gdb struct field) asks
//! [`credential`] whether the key names a credential. The words live here,
//! apart from the patterns, because they are one decision taken once: a
//! new credential name is a word added to a list, not a new pattern.

/// Identifier parts that name a credential (`auth_pass`, `md5_creds`,
/// `db.password`, `X-Auth-Token`).
pub(super) const CREDENTIAL_PARTS: &[&str] = &[
    "pass",
    "passwd",
    "password",
    "passwords",
    "pwd",
    "pin",
    "pincode",
    "key",
    "cred",
    "creds",
    "credential",
    "credentials",
    "token",
    "secret",
    "secrets",
    "jwt",
    "passphrase",
    "community",
    "apikey",
    "authkey",
    "privkey",
    "requirepass",
    "authpass",
    // A digest's HA1 is MD5(user:realm:password): as good as the password.
    "ha1",
];

/// Endings that make a credential of a part (`md5secret`, `remotesecret`,
/// `PGPASSWORD`, `authtoken`, `rocommunity`).
pub(super) const CREDENTIAL_ENDINGS: &[&str] = &[
    "secret",
    "password",
    "passwd",
    "passphrase",
    "token",
    "pincode",
    "community",
    "apikey",
];

/// A last part that makes the whole a setting *about* a credential
/// (`key_file`, `token_expiration`, `pin_timeout`), not one.
const NOT_A_VALUE: &[&str] = &[
    "file",
    "path",
    "dir",
    "type",
    "len",
    "length",
    "size",
    "algorithm",
    "algo",
    "method",
    "format",
    "expires",
    "expiry",
    "expiration",
    "ttl",
    "timeout",
    "policy",
    "count",
    "retries",
    "max",
    "min",
    "mode",
    "enabled",
    "required",
];

/// Keys too common in prose to be taken with `:` or a blank (`unexpected
/// token: ')'`, `key: 1001`): only with `=` or as a quoted key.
pub(super) const WEAK: &[&str] = &[
    "token",
    "key",
    "keys",
    "jwt",
    "cred",
    "creds",
    "credential",
    "credentials",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strength {
    Weak,
    Strong,
}

/// Whether an identifier names a credential: a whole `_`, `-` or
/// `.`-separated part, or a part ending in a credential word.
pub(super) fn credential(ident: &[u8]) -> Option<Strength> {
    let lower = ident.to_ascii_lowercase();
    let trimmed: &[u8] = {
        let start = lower
            .iter()
            .position(|b| !b"-_.$".contains(b))
            .unwrap_or(lower.len());
        &lower[start..]
    };
    let parts: Vec<&[u8]> = trimmed
        .split(|b| b"_-.".contains(b))
        .filter(|part| !part.is_empty())
        .collect();
    if parts.len() > 1
        && parts
            .last()
            .is_some_and(|last| NOT_A_VALUE.iter().any(|w| w.as_bytes() == *last))
    {
        return None;
    }
    let named = parts.iter().any(|part| {
        CREDENTIAL_PARTS.iter().any(|w| w.as_bytes() == *part)
            || CREDENTIAL_ENDINGS.iter().any(|w| {
                // `rwcommunity6`, `secret2`: a number after the word.
                let digits = part.iter().rev().take_while(|b| b.is_ascii_digit()).count();
                part[..part.len() - digits].ends_with(w.as_bytes())
            })
    });
    if !named {
        return None;
    }
    let weak = parts.len() == 1 && WEAK.iter().any(|w| w.as_bytes() == parts[0]);
    Some(if weak {
        Strength::Weak
    } else {
        Strength::Strong
    })
}

/// Whether a path (`secret/1001`, `/secret/1001`, `peer->secret`) names a
/// credential in one of its parts.
pub(super) fn path_names_credential(path: &[u8]) -> bool {
    path.split(|b| !(b.is_ascii_alphanumeric() || b"_-.".contains(b)))
        .any(|part| credential(part).is_some())
}
