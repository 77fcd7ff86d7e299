//! The `[ship]` section of the agent's configuration: where reports go (collector URLs, token,
//! TLS), how they are batched, and the disk spool that holds them until a collector has
//! acknowledged them. Typed, defaulted, validated with messages that name the key.
//!
//! Loading it never opens a connection or a file; the shipper does that when it starts.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Default spool location: under the agent unit's `StateDirectory=voqa-agent`, the one place it may
/// write.
pub const DEFAULT_SPOOL_DIR: &str = "/var/lib/voqa-agent/spool";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShipConfig {
    /// Collector base URLs (`https://collector.example:8443`), tried in order: the agent fails
    /// over to the next on connection errors, timeouts, 5xx and 429, and comes back to the
    /// first after a success. Empty: reports go to `output.sink` instead.
    pub collectors: Vec<String>,
    /// File holding the agent's bearer token (0600; re-read on SIGHUP).
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA(s) that signed the collector's certificate; replaces the system
    /// roots when set.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) and its private key, for collectors behind mutual TLS.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// A batch is sent when it holds this many records, or this many bytes of JSON, or when its
    /// oldest record has waited this long.
    pub batch_max_records: usize,
    pub batch_max_bytes: usize,
    pub batch_max_age_ms: u64,
    /// Whole request deadline (connect, send, answer).
    pub request_timeout_s: u64,
    /// Retry delays: exponential from `backoff_min_ms` to `backoff_max_s`, with full jitter.
    pub backoff_min_ms: u64,
    pub backoff_max_s: u64,
    /// The disk spool: directory (default `/var/lib/voqa-agent/spool` for `run`; `replay` uses a
    /// temporary one unless this or `--spool-dir` is given), size cap (drop-oldest beyond it),
    /// and how often it is fsynced (`always`, `never`, or a period in ms such as `1000`).
    pub spool_dir: Option<PathBuf>,
    pub spool_max_bytes: u64,
    pub spool_fsync: String,
    /// On SIGTERM, how long the agent keeps trying to deliver what is spooled before it exits
    /// (what is left stays in the spool for the next start).
    pub shutdown_grace_s: u64,
}

impl Default for ShipConfig {
    fn default() -> Self {
        ShipConfig {
            collectors: Vec::new(),
            token_file: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            batch_max_records: 500,
            batch_max_bytes: 1 << 20,
            batch_max_age_ms: 5_000,
            request_timeout_s: 30,
            backoff_min_ms: 500,
            backoff_max_s: 60,
            spool_dir: None,
            spool_max_bytes: 1 << 30,
            spool_fsync: "1000".to_owned(),
            shutdown_grace_s: 5,
        }
    }
}

/// How often the spool is made durable (see `ship::spool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncSetting {
    Always,
    Never,
    Every(Duration),
}

impl ShipConfig {
    pub fn enabled(&self) -> bool {
        !self.collectors.is_empty()
    }

    /// Where the bearer token comes from: a flag's inline token, else `token_file`.
    pub fn token_source(&self, inline: Option<&str>) -> Result<super::http::TokenSource, String> {
        match (inline, &self.token_file) {
            (Some(t), _) if !t.trim().is_empty() => {
                Ok(super::http::TokenSource::Inline(t.trim().to_owned()))
            }
            (Some(_), _) => Err("--token: must not be empty".into()),
            (None, Some(path)) => Ok(super::http::TokenSource::File(path.clone())),
            (None, None) => {
                Err("ship.token_file: required to send to a collector (or --token)".into())
            }
        }
    }

    pub fn fsync(&self) -> Result<FsyncSetting, String> {
        match self.spool_fsync.trim() {
            "always" => Ok(FsyncSetting::Always),
            "never" => Ok(FsyncSetting::Never),
            ms => match ms.parse::<u64>() {
                Ok(n) if (1..=60_000).contains(&n) => {
                    Ok(FsyncSetting::Every(Duration::from_millis(n)))
                }
                _ => Err(format!(
                    "ship.spool_fsync: '{ms}' must be always, never, or a period of 1..=60000 ms"
                )),
            },
        }
    }

    /// Every problem of the section, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.collectors.len() > 16 {
            p.push("ship.collectors: at most 16 URLs".to_owned());
        }
        for url in &self.collectors {
            if let Err(e) = validate_url(url) {
                p.push(format!("ship.collectors: '{url}': {e}"));
            }
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            p.push("ship.client_cert and ship.client_key: set both or neither".to_owned());
        }
        if !(1..=50_000).contains(&self.batch_max_records) {
            p.push(format!(
                "ship.batch_max_records: {} must be 1..=50000",
                self.batch_max_records
            ));
        }
        if !(4096..=(64 << 20)).contains(&self.batch_max_bytes) {
            p.push(format!(
                "ship.batch_max_bytes: {} must be 4096..=67108864",
                self.batch_max_bytes
            ));
        }
        if !(1..=3_600_000).contains(&self.batch_max_age_ms) {
            p.push(format!(
                "ship.batch_max_age_ms: {} must be 1..=3600000",
                self.batch_max_age_ms
            ));
        }
        if !(1..=600).contains(&self.request_timeout_s) {
            p.push(format!(
                "ship.request_timeout_s: {} must be 1..=600",
                self.request_timeout_s
            ));
        }
        if self.backoff_min_ms == 0 || self.backoff_min_ms > self.backoff_max_s * 1000 {
            p.push(format!(
                "ship.backoff_min_ms: {} must be at least 1 and at most backoff_max_s",
                self.backoff_min_ms
            ));
        }
        if self.backoff_max_s > 3600 {
            p.push(format!(
                "ship.backoff_max_s: {} must be at most 3600",
                self.backoff_max_s
            ));
        }
        if self.spool_max_bytes < (16 << 20) {
            p.push(format!(
                "ship.spool_max_bytes: {} must be at least 16777216 (16 MiB)",
                self.spool_max_bytes
            ));
        }
        if let Err(e) = self.fsync() {
            p.push(e);
        }
        if self.shutdown_grace_s > 600 {
            p.push(format!(
                "ship.shutdown_grace_s: {} must be at most 600",
                self.shutdown_grace_s
            ));
        }
        p
    }
}

/// An `http://` or `https://` URL with a host and nothing after the path.
pub fn validate_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err("has no host".into());
    }
    if url.contains(['?', '#', ' ']) {
        return Err("must not have a query, a fragment or spaces".into());
    }
    if url.len() > 2048 {
        return Err("is longer than 2048 characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_disabled() {
        let c = ShipConfig::default();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert!(!c.enabled());
        assert_eq!(
            c.fsync(),
            Ok(FsyncSetting::Every(Duration::from_millis(1000)))
        );
    }

    #[test]
    fn problems_name_their_key() {
        let c = ShipConfig {
            collectors: vec!["ftp://x".into(), "https://".into()],
            client_cert: Some("c.pem".into()),
            batch_max_records: 0,
            spool_fsync: "often".into(),
            ..ShipConfig::default()
        };
        let p = c.problems().join("\n");
        for key in [
            "ship.collectors: 'ftp://x'",
            "ship.collectors: 'https://'",
            "ship.client_cert and ship.client_key",
            "ship.batch_max_records",
            "ship.spool_fsync",
        ] {
            assert!(p.contains(key), "{key} missing from:\n{p}");
        }
    }
}
