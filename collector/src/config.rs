//! The collector's configuration file: where it listens, its database, limits, retention, and
//! the customers with their commitments (parsed by `sla`), and `[alerts]` (parsed by
//! `alerts::config`). Flags override the file.
//!
//! Loading touches nothing but the file; `problems` also reads each customer's
//! `report_webhook` secret file, so that check-config and SIGHUP refuse a missing one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Deserialize;

use crate::alerts::config::AlertsConfig;
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
    /// Accept agent tokens created before agent bindings existed (`token create --role agent`
    /// without `--agent`) for any agent id. Off by default: such a token can write as any
    /// agent; `serve` warns at start with how many there are.
    pub allow_unbound_agent_tokens: bool,
    /// One JSON line per request (time, method, path, status, latency, peer, token id — never
    /// the token — and why authentication was refused).
    pub access_log: bool,
    /// File the access log is appended to; stderr (journald) when unset.
    pub access_log_path: Option<PathBuf>,
    /// Longest a client may take to send a request's line and headers: from its connection
    /// (after TLS) for the first request, from the request's first byte for later ones.
    pub header_read_timeout_s: u64,
    /// Longest a keep-alive connection may sit idle between requests.
    pub keep_alive_timeout_s: u64,
    /// Longest a request body may take to arrive in full, from the end of its headers.
    pub body_timeout_s: u64,
    /// Connections open at once; beyond, new ones are closed at once.
    pub max_connections: usize,
    /// Ingests handled at once; beyond, 503 with Retry-After, before the body is read.
    pub max_concurrent_ingests: usize,
    /// On SIGTERM, how long requests in progress get to finish before their connections are
    /// dropped.
    pub shutdown_timeout_s: u64,
    /// Reports and heartbeats dated more than this many seconds after the time they are
    /// received are refused (422): an agent's clock may run a little ahead, not into the future.
    pub max_future_s: u64,
    /// SLA evaluations running at once, in total and per token; beyond either, a request is
    /// answered 429 with `Retry-After` (an evaluation from stream reports holds a few MB).
    pub sla_max_concurrent: usize,
    pub sla_max_concurrent_per_token: usize,
    /// `backup --dir DIR` (the daily timer) keeps this many backups there, deleting older ones.
    pub backup_keep: usize,
    /// How often `serve` looks for monthly reports due (and failed sends due for a retry).
    pub report_check_interval_s: u64,
    /// A failed report send is retried after this long, doubling with each failure up to
    /// `report_retry_max_s`.
    pub report_retry_min_s: u64,
    pub report_retry_max_s: u64,
    /// The mailed report's form: `auto` (PDF when Chromium is installed, else the
    /// self-contained HTML), `pdf` or `html`.
    pub report_mail_format: String,
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
            allow_unbound_agent_tokens: false,
            access_log: true,
            access_log_path: None,
            header_read_timeout_s: 10,
            keep_alive_timeout_s: 60,
            body_timeout_s: 60,
            max_connections: 512,
            max_concurrent_ingests: 32,
            shutdown_timeout_s: 10,
            max_future_s: crate::api::ingest::DEFAULT_MAX_FUTURE_S,
            sla_max_concurrent: 8,
            sla_max_concurrent_per_token: 4,
            backup_keep: 7,
            report_check_interval_s: 60,
            report_retry_min_s: 60,
            report_retry_max_s: 3600,
            report_mail_format: "auto".into(),
        }
    }
}

/// The configuration a running server answers with, replaceable while it serves (SIGHUP).
/// Cheap to clone; readers take a snapshot with [`LiveConfig::current`] and keep it for one
/// request, so a request never sees half of a reload.
#[derive(Debug, Clone)]
pub struct LiveConfig(Arc<RwLock<Arc<CollectorConfig>>>);

/// What a reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Customers now configured.
    pub customers: usize,
    /// Alert rules now configured.
    pub alert_rules: usize,
    /// Server keys whose new value differs from the running one: they take effect only at
    /// the next start (the running value stays in use).
    pub restart_needed: Vec<String>,
}

impl LiveConfig {
    pub fn new(config: CollectorConfig) -> Self {
        LiveConfig(Arc::new(RwLock::new(Arc::new(config))))
    }

    /// The configuration in force now.
    pub fn current(&self) -> Arc<CollectorConfig> {
        // A poisoned lock only means a panic elsewhere while swapping an Arc: the value
        // inside is still a whole configuration.
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Applies what can change while serving: the `[[customers]]` (their agents, subnets and
    /// commitments) take effect for the next request, `[alerts]` (rules, channels, cadence)
    /// at the alert engine's next cycle. Server keys (listen, database, limits,
    /// timeouts, tokens policy, logs) keep their running values; those that differ are
    /// returned, to be logged as needing a restart. An invalid configuration changes nothing.
    pub fn reload(&self, new: CollectorConfig) -> Result<Reloaded, String> {
        let problems = new.problems();
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let mut current = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let restart_needed = changed_keys(&current.server, &new.server);
        let customers = new.customers.len();
        let alert_rules = new.alerts.rules.len();
        *current = Arc::new(CollectorConfig {
            server: current.server.clone(),
            customers: new.customers,
            alerts: new.alerts,
        });
        Ok(Reloaded {
            customers,
            alert_rules,
            restart_needed,
        })
    }
}

impl From<CollectorConfig> for LiveConfig {
    fn from(config: CollectorConfig) -> Self {
        LiveConfig::new(config)
    }
}

/// The server keys whose values differ, by their names in the file.
fn changed_keys(running: &ServerConfig, new: &ServerConfig) -> Vec<String> {
    match (serde_json::to_value(running), serde_json::to_value(new)) {
        (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) => a
            .iter()
            .filter(|(key, value)| b.get(*key) != Some(*value))
            .map(|(key, _)| key.clone())
            .collect(),
        // Serialising plain fields cannot fail; if it ever did, say everything may differ.
        _ => vec!["(server keys)".to_owned()],
    }
}

/// Everything the collector reads from its file.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub server: ServerConfig,
    pub customers: Vec<Customer>,
    pub alerts: AlertsConfig,
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
            #[serde(default, rename = "customers")]
            _customers: serde::de::IgnoredAny,
            #[serde(default)]
            alerts: AlertsConfig,
            /// Whatever the two above did not take. A flattened struct takes only its own
            /// fields from the keys serde buffers for flattening, and this map, declared after
            /// it, sees the rest: the known keys are ServerConfig's fields themselves, so a key
            /// added there is known here without a list to keep in step.
            /// (`deny_unknown_fields` is not supported together with `flatten`.)
            #[serde(flatten)]
            unknown: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
        }
        let top: Top =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', " "))?;
        if !top.unknown.is_empty() {
            return Err(unknown_keys(text, top.unknown.keys()));
        }
        let customers = parse_customers(text).map_err(|e| e.to_string())?;
        let cfg = CollectorConfig {
            server: top.server,
            customers,
            alerts: top.alerts,
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
                alerts: AlertsConfig::default(),
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
        for (key, value) in [
            ("header_read_timeout_s", self.server.header_read_timeout_s),
            ("keep_alive_timeout_s", self.server.keep_alive_timeout_s),
            ("body_timeout_s", self.server.body_timeout_s),
            ("shutdown_timeout_s", self.server.shutdown_timeout_s),
        ] {
            if !(1..=3600).contains(&value) {
                p.push(format!("{key}: must be 1 to 3600"));
            }
        }
        if !(1..=1_000_000).contains(&self.server.max_connections) {
            p.push("max_connections: must be 1 to 1000000".into());
        }
        if !(1..=self.server.max_connections.max(1)).contains(&self.server.max_concurrent_ingests) {
            p.push("max_concurrent_ingests: must be 1 to max_connections".into());
        }
        if !(1..=86_400).contains(&self.server.max_future_s) {
            p.push("max_future_s: must be 1 to 86400".into());
        }
        if !(1..=1024).contains(&self.server.sla_max_concurrent) {
            p.push("sla_max_concurrent: must be 1 to 1024".into());
        }
        if !(1..=1024).contains(&self.server.sla_max_concurrent_per_token) {
            p.push("sla_max_concurrent_per_token: must be 1 to 1024".into());
        }
        if !(1..=10_000).contains(&self.server.backup_keep) {
            p.push("backup_keep: must be 1 to 10000".into());
        }
        for (key, value) in [
            (
                "report_check_interval_s",
                self.server.report_check_interval_s,
            ),
            ("report_retry_min_s", self.server.report_retry_min_s),
            ("report_retry_max_s", self.server.report_retry_max_s),
        ] {
            if !(1..=86_400).contains(&value) {
                p.push(format!("{key}: must be 1 to 86400"));
            }
        }
        if !["auto", "pdf", "html"].contains(&self.server.report_mail_format.as_str()) {
            p.push(format!(
                "report_mail_format: {:?} is none of auto, pdf, html",
                self.server.report_mail_format
            ));
        }
        if self.server.report_retry_min_s > self.server.report_retry_max_s {
            p.push("report_retry_min_s: must not exceed report_retry_max_s".into());
        }
        let mailed: Vec<&str> = self
            .customers
            .iter()
            .filter(|c| !c.report_recipients.is_empty())
            .map(|c| c.id.as_str())
            .collect();
        if let Some(smtp) = &self.alerts.smtp {
            p.extend(
                smtp.problems()
                    .into_iter()
                    .map(|e| format!("[alerts.smtp] {e}")),
            );
        }
        if self.alerts.smtp.is_none() && !mailed.is_empty() {
            p.push(format!(
                "customers {} have report_recipients but there is no [alerts.smtp] server to \
                 send their reports through",
                mailed.join(", ")
            ));
        }
        // A report webhook's secret must be readable now (checked again at each send, so a
        // rotation applies): a missing file is found by check-config and SIGHUP, not on the 1st.
        for customer in &self.customers {
            if let Some(hook) = &customer.report_webhook
                && let Err(e) = crate::deliver::webhook::read_secret(&hook.secret_file)
            {
                p.push(format!("customer {:?}: report_webhook: {e}", customer.id));
            }
        }
        p.extend(self.alerts.problems(&self.customers));
        p
    }

    pub fn customer(&self, id: &str) -> Option<&Customer> {
        self.customers.iter().find(|c| c.id == id)
    }
}

/// The refusal of misspelled or unknown top-level keys: each named with its line, and the
/// keys that exist (ServerConfig's fields, as it serialises them, and `customers`).
fn unknown_keys<'a>(text: &str, keys: impl Iterator<Item = &'a String>) -> String {
    let known = match serde_json::to_value(ServerConfig::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    let named = keys
        .map(|key| match line_of_key(text, key) {
            Some(line) => format!("'{key}' (line {line})"),
            None => format!("'{key}'"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "unknown key {named}; the keys are {}, [[customers]] tables and [alerts]",
        known.join(", ")
    )
}

/// The 1-based line where a bare top-level key (`key = ...` or `[key]`) is set, if found.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let rest = line
                .strip_prefix("[[")
                .or_else(|| line.strip_prefix('['))
                .map(str::trim_start)
                .unwrap_or(line);
            rest.strip_prefix(key).is_some_and(|after| {
                let after = after.trim_start();
                after.starts_with('=') || after.starts_with(']') || after.starts_with('.')
            })
        })
        .map(|index| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packaged_example_is_valid() {
        let text = include_str!("../../packaging/collector.toml");
        let cfg = CollectorConfig::parse(text).expect("valid");
        assert_eq!(cfg.server.listen, "127.0.0.1:8080");
        // Installed as /etc/voqa/collector.toml: the store in the unit's StateDirectory, and
        // no customer until the operator adds one.
        assert_eq!(
            cfg.server.database,
            "sqlite:/var/lib/voqa-collector/voqa.db"
        );
        assert!(cfg.customers.is_empty());
        assert!(cfg.problems().is_empty());
        // The commented customer example is valid once uncommented.
        let start = text.find("# [[customers]]").expect("customer example");
        let example: String = text[start..]
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        // Its report_recipients need the commented [alerts.smtp] example, uncommented too.
        let smtp_start = text.find("# [alerts.smtp]").expect("smtp example");
        let smtp: String = text[smtp_start..]
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let with_customer = CollectorConfig::parse(&format!("{smtp}\n{example}"))
            .expect("example customer is valid");
        assert_eq!(with_customer.customers.len(), 1);
        assert_eq!(with_customer.customers[0].id, "acme");
        assert_eq!(
            with_customer.customers[0].report_recipients,
            ["noc@acme.example"]
        );
        let smtp = with_customer.alerts.smtp.expect("smtp example");
        assert_eq!(
            (smtp.port, smtp.tls),
            (587, crate::deliver::smtp::SmtpTls::Starttls)
        );
        assert!(
            CollectorConfig::parse(&example).is_err(),
            "recipients without a server are refused"
        );
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
    fn auth_keys_default_to_the_safe_side() {
        let cfg = CollectorConfig::parse("").expect("empty");
        assert!(!cfg.server.allow_unbound_agent_tokens);
        assert!(cfg.server.access_log);
        assert_eq!(cfg.server.access_log_path, None);
        let cfg = CollectorConfig::parse(
            "allow_unbound_agent_tokens = true\naccess_log = false\naccess_log_path = \"a.log\"\n",
        )
        .expect("set");
        assert!(cfg.server.allow_unbound_agent_tokens && !cfg.server.access_log);
        assert_eq!(
            cfg.server.access_log_path.as_deref(),
            Some(Path::new("a.log"))
        );
        assert!(
            crate::api::access_log::open_sink(&cfg.server)
                .expect("off")
                .is_none(),
            "access_log = false writes nowhere, whatever the path"
        );
    }

    #[test]
    fn connection_limits_are_checked() {
        let cfg = CollectorConfig::parse(
            "header_read_timeout_s = 2\nkeep_alive_timeout_s = 5\nbody_timeout_s = 3\n\
             max_connections = 100\nmax_concurrent_ingests = 4\nshutdown_timeout_s = 7\n",
        )
        .expect("valid");
        assert_eq!(
            (
                cfg.server.header_read_timeout_s,
                cfg.server.keep_alive_timeout_s,
                cfg.server.body_timeout_s,
                cfg.server.max_connections,
                cfg.server.max_concurrent_ingests,
                cfg.server.shutdown_timeout_s
            ),
            (2, 5, 3, 100, 4, 7)
        );
        let err = CollectorConfig::parse("body_timeout_s = 0\nshutdown_timeout_s = 0\n")
            .expect_err("zero");
        assert!(
            err.contains("body_timeout_s") && err.contains("shutdown_timeout_s"),
            "{err}"
        );
        let err = CollectorConfig::parse("max_connections = 10\nmax_concurrent_ingests = 11\n")
            .expect_err("more ingests than connections");
        assert!(err.contains("max_concurrent_ingests"), "{err}");
        let err = CollectorConfig::parse("max_connections = 0\n").expect_err("zero");
        assert!(err.contains("max_connections"), "{err}");
    }

    #[test]
    fn misspelled_server_keys_are_refused_and_named() {
        let err = CollectorConfig::parse(
            "listen = \"127.0.0.1:9000\"\ndatabse = \"sqlite:/var/lib/voqa/voqa.db\"\nretention_dayz = 30\n",
        )
        .expect_err("misspelled keys");
        assert!(
            err.contains("'databse' (line 2)") && err.contains("'retention_dayz' (line 3)"),
            "{err}"
        );
        assert!(
            err.contains("database") && err.contains("retention_days"),
            "the real keys are listed: {err}"
        );
        // A misspelled table, before or after the customers, and a dotted key.
        let err = CollectorConfig::parse("[[customer]]\nid = \"x\"\n").expect_err("table");
        assert!(err.contains("'customer' (line 1)"), "{err}");
        let err = CollectorConfig::parse(concat!(
            include_str!("../../packaging/collector.toml"),
            "\n[limits]\nmax = 1\n"
        ))
        .expect_err("trailing table");
        assert!(err.contains("'limits'"), "{err}");
        let err = CollectorConfig::parse("tls.cert = \"x\"\n").expect_err("dotted");
        assert!(err.contains("'tls' (line 1)"), "{err}");
        // Every key ServerConfig has is accepted (a key added there needs no list here).
        let every = toml::to_string(&ServerConfig::default()).expect("serialises");
        let cfg = CollectorConfig::parse(&every).expect("every server key is known");
        assert_eq!(cfg.server.max_future_s, 300);
        assert!(every.contains("max_future_s"), "{every}");
    }

    #[test]
    fn max_future_s_is_bounded() {
        let cfg = CollectorConfig::parse("max_future_s = 60\n").expect("valid");
        assert_eq!(cfg.server.max_future_s, 60);
        let err = CollectorConfig::parse("max_future_s = 0\n").expect_err("zero");
        assert!(err.contains("max_future_s"), "{err}");
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
    fn alerts_smtp_is_read_for_reports() {
        let customer = "[[customers]]\nid = \"acme\"\nname = \"ACME\"\nagents = [\"a\"]\n\
                        report_recipients = [\"noc@acme.example\"]\n\
                        [customers.commitments]\nmos_min = 4.0\ncalls_meeting_pct = 95.0\n\
                        loss_max_pct = 1.0\njitter_p95_max_ms = 30.0\nuptime_min_pct = 99.9\n";
        let err = CollectorConfig::parse(customer).expect_err("no server");
        assert!(
            err.contains("customers acme have report_recipients but there is no [alerts.smtp]"),
            "{err}"
        );
        // The rest of [alerts] is the alert engine's: ignored here, whatever it holds.
        let smtp = "[alerts]\nevaluate_every = \"15s\"\n[alerts.smtp]\nhost = \"127.0.0.1\"\nport = 2525\n\
                    tls = \"none\"\nfrom = \"voqa@example.net\"\n";
        let cfg = CollectorConfig::parse(&format!("{smtp}{customer}")).expect("valid");
        let server = cfg.alerts.smtp.as_ref().expect("smtp");
        assert_eq!(
            (server.host.as_str(), server.port, server.timeout_s),
            ("127.0.0.1", 2525, 30)
        );
        assert_eq!(cfg.customers[0].report_recipients, ["noc@acme.example"]);
        let err = CollectorConfig::parse(&smtp.replace("127.0.0.1", "mail.example.net"))
            .expect_err("clear text off loopback");
        assert!(err.contains("[alerts.smtp] tls = \"none\""), "{err}");
        let err = CollectorConfig::parse(&smtp.replace("port = 2525", "port = 2525\nprot = 1"))
            .expect_err("misspelled");
        assert!(err.contains("prot"), "{err}");
        let err = CollectorConfig::parse(
            "report_retry_min_s = 10\nreport_retry_max_s = 5\nreport_mail_format = \"doc\"\n",
        )
        .expect_err("bad report keys");
        assert!(
            err.contains("report_retry_min_s") && err.contains("report_mail_format"),
            "{err}"
        );
    }

    #[test]
    fn a_report_webhook_needs_no_smtp_but_a_readable_secret() {
        let dir = tempfile::tempdir().expect("tmp");
        let secret = dir.path().join("acme.secret");
        let customer = |path: &std::path::Path| {
            format!(
                "[[customers]]\nid = \"acme\"\nname = \"ACME\"\nagents = [\"a\"]\n\
                 report_webhook = {{ url = \"https://hooks.acme.example/voqa\", secret_file = {:?} }}\n\
                 [customers.commitments]\nmos_min = 4.0\ncalls_meeting_pct = 95.0\n\
                 loss_max_pct = 1.0\njitter_p95_max_ms = 30.0\nuptime_min_pct = 99.9\n",
                path.display().to_string()
            )
        };
        let err = CollectorConfig::parse(&customer(&secret)).expect_err("no secret file yet");
        assert!(
            err.contains("customer \"acme\": report_webhook: secret file")
                && err.contains("acme.secret"),
            "{err}"
        );
        std::fs::write(&secret, "s3cret\n").expect("secret");
        let cfg = CollectorConfig::parse(&customer(&secret)).expect("valid without [alerts.smtp]");
        let hook = cfg.customers[0].report_webhook.as_ref().expect("hook");
        assert_eq!(hook.url, "https://hooks.acme.example/voqa");
    }

    #[test]
    fn bad_values_are_named() {
        let err = CollectorConfig::parse("listen = \"nowhere\"\ndatabase = \"mysql://x\"\n")
            .expect_err("invalid");
        assert!(err.contains("listen") && err.contains("database"), "{err}");
    }
}
