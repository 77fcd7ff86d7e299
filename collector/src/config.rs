//! The collector's configuration file: where it listens, its database, limits, retention, and
//! the customers with their commitments (parsed by `sla`). Flags override the file.
//!
//! Loading touches nothing but the file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::sla::{Customer, parse_customers};

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// PEM certificate chain (leaf first) and private key: with both, `serve` terminates TLS
    /// itself (rustls) and re-reads them on SIGHUP; with neither it serves plain HTTP, to be
    /// put behind a reverse proxy that terminates TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Longest a client may take to complete its TLS handshake before it is disconnected.
    pub tls_handshake_timeout_s: u64,
    /// `sqlite:PATH` (default `sqlite:voqa.db`) or `postgres://...`.
    pub database: String,
    /// Largest request body accepted (bytes, after decompression too).
    pub max_body_bytes: usize,
    /// Per-stream rows older than this are deleted (aggregates the reports need are kept).
    pub retention_days: u64,
    /// Serve /metrics without a token to loopback clients.
    pub metrics_open_on_loopback: bool,
    /// SLA evaluations running at once, in total and per token; beyond either, a request is
    /// answered 429 with `Retry-After` (an evaluation from stream reports holds a few MB).
    pub sla_max_concurrent: usize,
    pub sla_max_concurrent_per_token: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            tls_cert: None,
            tls_key: None,
            tls_handshake_timeout_s: 10,
            database: "sqlite:voqa.db".into(),
            max_body_bytes: 8 << 20,
            retention_days: 90,
            metrics_open_on_loopback: false,
            sla_max_concurrent: 8,
            sla_max_concurrent_per_token: 4,
        }
    }
}

/// Everything the collector reads from its file.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub server: ServerConfig,
    pub customers: Vec<Customer>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl CollectorConfig {
    pub fn parse(text: &str) -> Result<Self, String> {
        /// Top level: server keys plus `[[customers]]` (parsed separately by `sla`).
        #[derive(Deserialize)]
        struct Top {
            #[serde(default, flatten)]
            server: ServerConfig,
        }
        let top: Top =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', " "))?;
        let customers = parse_customers(text).map_err(|e| e.to_string())?;
        let cfg = CollectorConfig {
            server: top.server,
            customers,
        };
        let problems = cfg.problems();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems.join("; "))
        }
    }

    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(CollectorConfig {
                server: ServerConfig::default(),
                customers: Vec::new(),
            });
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.into(),
            message,
        })
    }

    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(format!(
                "listen: '{}' is not an address:port",
                self.server.listen
            ));
        }
        let db = &self.server.database;
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            p.push(format!(
                "database: '{db}' is neither sqlite:PATH nor postgres://..."
            ));
        }
        if self.server.max_body_bytes < 1024 {
            p.push("max_body_bytes: must be at least 1024".into());
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            p.push("tls_cert and tls_key: set both (TLS) or neither (plain HTTP)".into());
        }
        if !(1..=300).contains(&self.server.tls_handshake_timeout_s) {
            p.push("tls_handshake_timeout_s: must be 1 to 300".into());
        }
        if self.server.retention_days == 0 {
            p.push("retention_days: must be at least 1".into());
        }
        if !(1..=1024).contains(&self.server.sla_max_concurrent) {
            p.push("sla_max_concurrent: must be 1 to 1024".into());
        }
        if !(1..=1024).contains(&self.server.sla_max_concurrent_per_token) {
            p.push("sla_max_concurrent_per_token: must be 1 to 1024".into());
        }
        p
    }

    pub fn customer(&self, id: &str) -> Option<&Customer> {
        self.customers.iter().find(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packaged_example_is_valid() {
        let cfg =
            CollectorConfig::parse(include_str!("../../packaging/collector.toml")).expect("valid");
        assert_eq!(cfg.server.listen, "127.0.0.1:8080");
        assert_eq!(cfg.customers.len(), 1);
        assert_eq!(cfg.customers[0].id, "acme");
        assert!(cfg.problems().is_empty());
    }

    /// Every server key is in the packaged example, set or commented out, so an operator
    /// finds each one there.
    #[test]
    fn packaged_example_documents_every_key() {
        let example = include_str!("../../packaging/collector.toml");
        let keys = serde_json::to_value(ServerConfig::default()).expect("serialises");
        let keys = keys.as_object().expect("a table");
        assert!(keys.contains_key("tls_cert") && keys.contains_key("tls_handshake_timeout_s"));
        for key in keys.keys() {
            let documented = example.lines().any(|line| {
                let line = line.trim_start().trim_start_matches('#').trim_start();
                line.strip_prefix(key.as_str())
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
            assert!(
                documented,
                "packaging/collector.toml does not mention {key}"
            );
        }
    }

    #[test]
    fn tls_needs_both_files() {
        let err = CollectorConfig::parse("tls_cert = \"/etc/voqa/c.pem\"\n").expect_err("half");
        assert!(err.contains("tls_cert and tls_key"), "{err}");
        let cfg =
            CollectorConfig::parse("tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n").expect("both");
        assert_eq!(cfg.server.tls_key.as_deref(), Some(Path::new("k.pem")));
        let err = CollectorConfig::parse("tls_handshake_timeout_s = 0\n").expect_err("zero");
        assert!(err.contains("tls_handshake_timeout_s"), "{err}");
    }

    #[test]
    fn sla_limits_have_defaults_and_bounds() {
        let cfg = CollectorConfig::parse("").expect("defaults");
        assert_eq!(
            (
                cfg.server.sla_max_concurrent,
                cfg.server.sla_max_concurrent_per_token
            ),
            (8, 4)
        );
        let cfg =
            CollectorConfig::parse("sla_max_concurrent = 2\nsla_max_concurrent_per_token = 1\n")
                .expect("set");
        assert_eq!(cfg.server.sla_max_concurrent_per_token, 1);
        let err =
            CollectorConfig::parse("sla_max_concurrent = 0\nsla_max_concurrent_per_token = 0\n")
                .expect_err("zero");
        assert!(
            err.contains("sla_max_concurrent:") && err.contains("sla_max_concurrent_per_token:"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let err = CollectorConfig::parse("listen = \"nowhere\"\ndatabase = \"mysql://x\"\n")
            .expect_err("invalid");
        assert!(err.contains("listen") && err.contains("database"), "{err}");
    }
}
