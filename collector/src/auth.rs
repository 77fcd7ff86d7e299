//! Bearer tokens and roles. A token is shown once at creation; only its SHA-256 is stored.
//! Roles: `agent` (ingest only), `ops` (everything), `customer:<id>` (its own SLA and report).
//!
//! Never logs or returns a token after creation; compares hashes in constant time.

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Agent,
    Ops,
    Customer(String),
}

impl Role {
    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "agent" => Ok(Role::Agent),
            "ops" => Ok(Role::Ops),
            _ => match s.strip_prefix("customer:") {
                Some(id)
                    if !id.is_empty()
                        && id.len() <= 64
                        && id
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
                {
                    Ok(Role::Customer(id.to_owned()))
                }
                _ => Err(format!("role '{s}' is not agent, ops or customer:<id>")),
            },
        }
    }

    pub fn as_string(&self) -> String {
        match self {
            Role::Agent => "agent".into(),
            Role::Ops => "ops".into(),
            Role::Customer(id) => format!("customer:{id}"),
        }
    }
}

/// A new random token (`voqa_` + 43 base64url characters, 256 bits) and its id (first 8 hex of its hash).
pub fn new_token() -> std::io::Result<(String, String)> {
    let mut bytes = [0u8; 32];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let token = format!("voqa_{}", base64url(&bytes));
    let id = hash_token(&token)[..12].to_owned();
    Ok((token, id))
}

/// Hex SHA-256 of a token: what the store keeps.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Constant-time equality of two hashes.
pub fn ct_eq(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.bytes()
        .zip(b.bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 2);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print() {
        assert_eq!(Role::parse("agent"), Ok(Role::Agent));
        assert_eq!(
            Role::parse("customer:acme"),
            Ok(Role::Customer("acme".into()))
        );
        assert_eq!(
            Role::parse("customer:acme").map(|r| r.as_string()),
            Ok("customer:acme".into())
        );
        assert!(Role::parse("customer:").is_err());
        assert!(Role::parse("admin").is_err());
        assert!(Role::parse("customer:a b").is_err());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ida) = new_token().expect("urandom");
        let (b, _) = new_token().expect("urandom");
        assert_ne!(a, b);
        assert!(a.starts_with("voqa_") && a.len() == 5 + 43, "{a}");
        // SHA-256("abc") test vector.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(ida, hash_token(&a)[..12]);
        assert!(ct_eq(&hash_token(&a), &hash_token(&a)));
        assert!(!ct_eq(&hash_token(&a), &hash_token(&b)));
    }
}
