//! Bearer tokens and roles. A token is shown once at creation; only its SHA-256 is stored.
//! Roles: `agent` (ingest only), `ops` (everything), `customer:<id>` (its own SLA and report).
//! An agent token is bound to the agent ids it may write as ([`AgentBinding`]: exact ids and
//! `*`/`?` glob patterns); the `Authorization` header is parsed here ([`bearer_token`]).
//!
//! Never logs or returns a token after creation; compares hashes in constant time. Pure: no
//! I/O beyond reading random bytes for a new token, no knowledge of HTTP status codes.

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

/// Most patterns one agent token may be bound to.
pub const MAX_BINDING_PATTERNS: usize = 64;
/// Longest pattern (bytes): agent ids are at most 128 bytes.
pub const MAX_PATTERN_LEN: usize = 128;

/// The agent ids an agent token may write as: exact ids and glob patterns (`*` any run of
/// characters, `?` exactly one), case-sensitive like the ids themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentBinding {
    patterns: Vec<String>,
}

impl AgentBinding {
    /// Parses `ID[,ID…]` (as given to `token create --agent` and as stored): each pattern is
    /// 1 to 128 bytes without whitespace, control characters or commas; duplicates are
    /// dropped, the order is kept.
    pub fn parse(list: &str) -> Result<AgentBinding, String> {
        let mut patterns: Vec<String> = Vec::new();
        for pattern in list.split(',').map(str::trim) {
            if pattern.is_empty() {
                return Err(format!(
                    "agent binding '{list}': an empty agent id (expected ID[,ID…])"
                ));
            }
            if pattern.len() > MAX_PATTERN_LEN {
                return Err(format!(
                    "agent binding: '{pattern}' is longer than {MAX_PATTERN_LEN} bytes"
                ));
            }
            if let Some(bad) = pattern
                .chars()
                .find(|c| c.is_whitespace() || c.is_control())
            {
                return Err(format!(
                    "agent binding: '{}' contains {bad:?} (no whitespace or control characters)",
                    pattern.escape_debug()
                ));
            }
            if !patterns.iter().any(|p| p == pattern) {
                patterns.push(pattern.to_owned());
            }
        }
        if patterns.len() > MAX_BINDING_PATTERNS {
            return Err(format!(
                "agent binding: at most {MAX_BINDING_PATTERNS} ids or patterns per token"
            ));
        }
        Ok(AgentBinding { patterns })
    }

    /// True when `agent_id` matches one of the patterns.
    pub fn covers(&self, agent_id: &str) -> bool {
        self.patterns.iter().any(|p| glob_match(p, agent_id))
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

impl std::fmt::Display for AgentBinding {
    /// `ID[,ID…]`: what `parse` reads back, and what the store keeps.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.patterns.join(","))
    }
}

/// Whether `text` matches the glob `pattern`: `*` matches any run of characters (none
/// included), `?` exactly one character, everything else itself. Linear backtracking over
/// the last `*` only, so the cost is at most `pattern × text` characters, never exponential.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it currently stands for up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry from there.
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Who made a request: the token's id (12 hex, never the token), its role and, for an agent
/// token, its binding (`None`: created before bindings existed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub role: Role,
    pub agents: Option<AgentBinding>,
}

/// The token of an `Authorization` header value: scheme `Bearer` in any letter case
/// (RFC 7235 §2.1), then one token68 (no inner whitespace), surrounding whitespace ignored.
/// The error says what is wrong without repeating the value.
pub fn bearer_token(value: &str) -> Result<&str, &'static str> {
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let Some((scheme, rest)) = value.split_once([' ', '\t']) else {
        return Err("malformed Authorization header (expected: Bearer TOKEN)");
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("unsupported authorization scheme (expected: Bearer TOKEN)");
    }
    let token = rest.trim_start_matches([' ', '\t']);
    if token.is_empty() || token.contains([' ', '\t']) {
        return Err("malformed Authorization header (expected: Bearer TOKEN)");
    }
    if token.len() > 256 {
        return Err("bearer token too long");
    }
    Ok(token)
}

/// A new random token (`voqa_` + 43 base64url characters, 256 bits) and its id (first 12 hex
/// of its hash).
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
    use proptest::prelude::*;

    /// The obvious recursive definition, exponential but fine for short inputs: what
    /// `glob_match` must agree with.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|skip| reference(rest, &t[skip..])),
            Some((&c, rest)) => match t.split_first() {
                Some((&x, trest)) if c == '?' || c == x => reference(rest, trest),
                _ => false,
            },
        }
    }

    fn reference_match(p: &str, t: &str) -> bool {
        reference(
            &p.chars().collect::<Vec<_>>(),
            &t.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn glob_examples() {
        assert!(glob_match("fra-media-*", "fra-media-1"));
        assert!(glob_match("fra-media-*", "fra-media-"));
        assert!(!glob_match("fra-media-*", "fra-media"));
        assert!(!glob_match("fra-media-*", "nyc-media-1"));
        assert!(glob_match("fra-media-?", "fra-media-2"));
        assert!(!glob_match("fra-media-?", "fra-media-12"));
        assert!(glob_match("*-media-*", "fra-media-12"));
        assert!(glob_match("*", ""));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("?é?", "aéb"), "? is one character, not one byte");
        assert!(
            !glob_match("FRA-*", "fra-1"),
            "case-sensitive like agent ids"
        );
        // The classic exponential case for naive backtracking stays fast.
        let text = "a".repeat(128);
        assert!(!glob_match(&format!("{}b", "a*".repeat(60)), &text));
    }

    proptest! {
        #[test]
        fn glob_agrees_with_the_reference(
            p in "[ab*?]{0,8}",
            t in "[abc]{0,10}",
        ) {
            prop_assert_eq!(glob_match(&p, &t), reference_match(&p, &t));
        }

        #[test]
        fn a_pattern_without_wildcards_is_equality(p in "[a-z0-9.-]{0,12}", t in "[a-z0-9.-]{0,12}") {
            prop_assert_eq!(glob_match(&p, &t), p == t);
            prop_assert!(glob_match(&p, &p));
        }

        #[test]
        fn wildcards_match_what_they_replace(
            t in "[a-zé0-9-]{1,20}",
            mask in proptest::collection::vec(0u8..3, 20),
        ) {
            // Replace some characters by `?` and some runs by `*`: the text still matches.
            let mut p = String::new();
            for (c, m) in t.chars().zip(mask.iter().chain(std::iter::repeat(&0))) {
                match m {
                    0 => p.push(c),
                    1 => p.push('?'),
                    _ => if !p.ends_with('*') { p.push('*') },
                }
            }
            prop_assert!(glob_match(&p, &t), "{} should match {}", p, t);
            let prefix: String = t.chars().take(3).collect();
            let pattern = format!("{prefix}*");
            prop_assert!(glob_match(&pattern, &t));
        }

        #[test]
        fn bearer_scheme_is_case_insensitive(
            upper in proptest::collection::vec(any::<bool>(), 6),
            lead in " {0,3}", mid in "[ \t]{1,3}", trail in " {0,3}",
        ) {
            let scheme: String = "bearer"
                .chars()
                .zip(&upper)
                .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c })
                .collect();
            let value = format!("{lead}{scheme}{mid}voqa_abc{trail}");
            prop_assert_eq!(bearer_token(&value), Ok("voqa_abc"));
        }
    }

    #[test]
    fn bearer_refusals() {
        assert_eq!(bearer_token("BEARER x"), Ok("x"));
        assert_eq!(bearer_token("  bearer   x  "), Ok("x"));
        assert!(bearer_token("Bearer").is_err());
        assert!(bearer_token("Bearer ").is_err());
        assert!(bearer_token("Bearerx").is_err());
        assert!(bearer_token("Basic dXNlcjpwYXNz").is_err());
        assert!(bearer_token("Bearer a b").is_err());
        assert!(bearer_token("x").is_err());
        assert!(bearer_token("").is_err());
        assert!(bearer_token(&format!("Bearer {}", "a".repeat(257))).is_err());
        // The message never repeats the value.
        let err = bearer_token("Basic c2VjcmV0").expect_err("basic");
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }

    #[test]
    fn bindings_parse_cover_and_print() {
        let b = AgentBinding::parse("fra-media-*, nyc-media-1,fra-media-*").expect("valid");
        assert_eq!(b.patterns(), ["fra-media-*", "nyc-media-1"]);
        assert_eq!(b.to_string(), "fra-media-*,nyc-media-1");
        assert_eq!(AgentBinding::parse(&b.to_string()), Ok(b.clone()));
        assert!(b.covers("fra-media-7"));
        assert!(b.covers("nyc-media-1"));
        assert!(!b.covers("nyc-media-2"));
        assert!(!b.covers(""));
        for bad in ["", "a,,b", "a b", "a\u{7}", &"x".repeat(129)] {
            assert!(AgentBinding::parse(bad).is_err(), "{bad:?}");
        }
        let many = (0..65)
            .map(|i| format!("a{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(AgentBinding::parse(&many).is_err());
    }

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
