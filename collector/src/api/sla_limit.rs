//! Bounds the SLA evaluations running at once, in total and per token, so that a customer (or
//! twenty) asking for months of SLA side by side cannot take the collector's memory and CPU:
//! an evaluation beyond either limit is refused at once with 429 and `Retry-After`, never
//! queued. The limits are `sla_max_concurrent` and `sla_max_concurrent_per_token` of the
//! server config.
//!
//! Counting only: it must not know routes, tokens' roles or the store. Tokens are told apart
//! by a key the caller derives from the token (its hash), never the token itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::auth::hash_token;

/// Seconds a refused client is asked to wait: about what an evaluation of a month takes.
pub const RETRY_AFTER_S: u64 = 1;

/// The evaluations running, in total and per token. Shared by every request of a router.
#[derive(Debug)]
pub struct SlaLimiter {
    total: usize,
    per_token: usize,
    running: Mutex<Running>,
}

#[derive(Debug, Default)]
struct Running {
    total: usize,
    /// Tokens with at least one evaluation running (so at most `total` entries).
    by_token: HashMap<String, usize>,
}

/// Why an evaluation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `sla_max_concurrent` evaluations are running.
    Total(usize),
    /// `sla_max_concurrent_per_token` evaluations of this token are running.
    Token(usize),
}

/// One running evaluation; dropping it ends it (also when the request is cancelled).
#[derive(Debug)]
pub struct SlaPermit {
    limiter: Arc<SlaLimiter>,
    token: String,
}

impl SlaLimiter {
    /// At most `total` evaluations at once, at most `per_token` of them for one token (both
    /// at least 1).
    pub fn new(total: usize, per_token: usize) -> Arc<Self> {
        Arc::new(Self {
            total: total.max(1),
            per_token: per_token.max(1),
            running: Mutex::default(),
        })
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Running> {
        // Counting never panics half-way; a poisoned lock still holds consistent counts.
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts an evaluation for the token keyed `token` (see [`token_key`]), or refuses.
    pub fn try_acquire(self: &Arc<Self>, token: &str) -> Result<SlaPermit, Refusal> {
        let mut running = self.running();
        if running.total >= self.total {
            return Err(Refusal::Total(self.total));
        }
        let mine = running.by_token.get(token).copied().unwrap_or(0);
        if mine >= self.per_token {
            return Err(Refusal::Token(self.per_token));
        }
        running.total += 1;
        running.by_token.insert(token.to_owned(), mine + 1);
        Ok(SlaPermit {
            limiter: Arc::clone(self),
            token: token.to_owned(),
        })
    }

    /// Evaluations running now.
    pub fn in_flight(&self) -> usize {
        self.running().total
    }
}

impl Drop for SlaPermit {
    fn drop(&mut self) {
        let mut running = self.limiter.running();
        running.total = running.total.saturating_sub(1);
        if let Some(count) = running.by_token.get_mut(&self.token) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.by_token.remove(&self.token);
            }
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let message = match self {
            Refusal::Total(n) => format!(
                "{n} SLA evaluations are running, the most at once; retry in {RETRY_AFTER_S} s"
            ),
            Refusal::Token(n) => format!(
                "this token has {n} SLA evaluations running, the most at once; retry in {RETRY_AFTER_S} s"
            ),
        };
        let mut response =
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
                .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
        response
    }
}

/// The key a request's token is counted under: the SHA-256 of the bearer token (whatever the
/// scheme's case or the spaces around it), so that one token is one key. Call after the
/// request was authenticated; a request without one counts under `""`.
pub fn token_key(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(char::is_whitespace))
        .map(|(_, token)| hash_token(token.trim()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_total_and_per_token_and_releases_on_drop() {
        let limiter = SlaLimiter::new(3, 2);
        let a1 = limiter.try_acquire("a").expect("first of a");
        let a2 = limiter.try_acquire("a").expect("second of a");
        assert_eq!(limiter.try_acquire("a").err(), Some(Refusal::Token(2)));
        let b1 = limiter.try_acquire("b").expect("first of b");
        assert_eq!(limiter.try_acquire("c").err(), Some(Refusal::Total(3)));
        assert_eq!(limiter.in_flight(), 3);
        drop(a1);
        // A slot in total again, and a's own count went down with it.
        let a3 = limiter.try_acquire("a").expect("a again");
        drop((a2, a3, b1));
        assert_eq!(limiter.in_flight(), 0);
        assert!(limiter.running().by_token.is_empty());
    }

    #[test]
    fn one_token_one_key() {
        let key = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(value).expect("header"),
            );
            token_key(&headers)
        };
        assert_eq!(key("Bearer tok"), hash_token("tok"));
        assert_eq!(key("BEARER  tok "), hash_token("tok"));
        assert_ne!(key("Bearer tok"), key("Bearer other"));
        assert_eq!(token_key(&HeaderMap::new()), "");
    }
}
