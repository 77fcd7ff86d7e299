//! `[alerts]` in the collector's configuration: the evaluation cadence, the channels
//! (`[[alerts.webhooks]]`, `[alerts.alertmanager]`, `[alerts.smtp]` with `[[alerts.emails]]`)
//! and the `[[alerts.rules]]`. Parsed with the rest of the file by `config::CollectorConfig`,
//! checked against its customers by [`AlertsConfig::problems`], replaced on SIGHUP.
//!
//! Must not: read the secret files (the sender reads them when it signs, so a rotated secret
//! takes effect without a reload), touch the network or the store.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::deliver::smtp::{EmailChannel, SmtpConfig};
use crate::sla::Customer;

/// The notify name of `[alerts.alertmanager]`; no webhook or e-mail list may take it.
pub const ALERTMANAGER: &str = "alertmanager";

/// A duration written `"15s"`, `"5m"`, `"1h"` or `"2d"` (one whole number and a unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub Duration);

impl Span {
    pub const fn secs(s: u64) -> Span {
        Span(Duration::from_secs(s))
    }

    /// Nanoseconds, saturating (spans are bounded by validation far below that).
    pub fn ns(self) -> i64 {
        i64::try_from(self.0.as_nanos()).unwrap_or(i64::MAX)
    }

    pub fn parse(text: &str) -> Result<Span, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("'{text}': add a unit (s, m, h or d), e.g. \"15s\""))?;
        let (number, unit) = text.split_at(split);
        let n: u64 = number
            .parse()
            .map_err(|_| format!("'{text}': expected a whole number and a unit, e.g. \"5m\""))?;
        let unit_s = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(format!("'{text}': the unit is s, m, h or d")),
        };
        n.checked_mul(unit_s)
            .filter(|&s| s <= 366 * 86_400)
            .map(Span::secs)
            .ok_or_else(|| format!("'{text}': at most 366 days"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        match s {
            0 => write!(f, "0s"),
            s if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            s if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Span::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// The engine's cadence: every rule is evaluated this often.
    #[serde(default = "fifteen_seconds")]
    pub evaluate_every: Span,
    /// Base of the evidence links in notifications (`https://voqa.example.net`); default
    /// `http://` + `listen`.
    #[serde(default)]
    pub evidence_base_url: Option<String>,
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    #[serde(default)]
    pub alertmanager: Option<AlertmanagerConfig>,
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    #[serde(default)]
    pub emails: Vec<EmailChannel>,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

fn fifteen_seconds() -> Span {
    Span::secs(15)
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            evaluate_every: fifteen_seconds(),
            evidence_base_url: None,
            webhooks: Vec::new(),
            alertmanager: None,
            smtp: None,
            emails: Vec::new(),
            rules: Vec::new(),
        }
    }
}

/// `[[alerts.webhooks]]`: a generic receiver of signed JSON notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    /// File holding the HMAC-SHA-256 key (its content, trailing newline removed).
    pub secret_file: PathBuf,
}

/// `[alerts.alertmanager]`: Prometheus Alertmanager, API v2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URL, e.g. `http://127.0.0.1:9093`; alerts go to `URL/api/v2/alerts`.
    pub url: String,
}

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    SlaBurn,
    QualityDrop,
    AgentSilent,
    CaptureIncomplete,
    KpiThreshold,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::SlaBurn => "sla_burn",
            RuleKind::QualityDrop => "quality_drop",
            RuleKind::AgentSilent => "agent_silent",
            RuleKind::CaptureIncomplete => "capture_incomplete",
            RuleKind::KpiThreshold => "kpi_threshold",
        }
    }
}

/// `[[alerts.rules]]`. Keys a kind does not use are refused by [`AlertsConfig::problems`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    pub kind: RuleKind,
    /// One customer; without it the rule applies to every configured customer.
    #[serde(default)]
    pub customer: Option<String>,
    /// `quality_drop`, `capture_incomplete`: the sliding window judged.
    #[serde(default)]
    pub window: Option<Span>,
    /// `quality_drop`: share of calls below the customer's `mos_min`; `capture_incomplete`:
    /// share of report windows with capture drops or without a jitter histogram. Percent;
    /// fires above it.
    #[serde(default)]
    pub threshold_pct: Option<f64>,
    /// `quality_drop`: fewer calls in the window never fire.
    #[serde(default)]
    pub min_calls: Option<u64>,
    /// `capture_incomplete`: fewer report windows never fire.
    #[serde(default)]
    pub min_windows: Option<u64>,
    /// How long the condition must hold before the alert fires.
    #[serde(default, rename = "for")]
    pub for_: Span,
    /// `page`, `ticket` or any word the receivers route on.
    #[serde(default = "page")]
    pub severity: String,
    /// Extra labels on every alert of the rule.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Channel names: webhooks, e-mail lists, or `alertmanager`.
    #[serde(default)]
    pub notify: Vec<String>,
    /// `sla_burn`: `uptime`, `mos` (calls meeting MOS), `loss` (needs `loss_target_pct`),
    /// `asr` (the customer's `asr_min_pct`) and `one_way_audio` (its
    /// `one_way_audio_max_pct`), the last two from the hourly call counts. Default
    /// `["uptime", "mos"]`.
    #[serde(default)]
    pub commitments: Option<Vec<String>>,
    /// `sla_burn`: burn-rate factor and windows; default the workbook's policy of the
    /// severity (`page`: 14.4× over 1 h and 5 min; `ticket`: 6× over 6 h and 30 min).
    #[serde(default)]
    pub factor: Option<f64>,
    #[serde(default)]
    pub long_window: Option<Span>,
    #[serde(default)]
    pub short_window: Option<Span>,
    /// `sla_burn` of `loss`: the share of calls that must stay within `loss_max_pct` (the
    /// SLA's loss commitment itself has no budget: every call over the ceiling breaches it).
    #[serde(default)]
    pub loss_target_pct: Option<f64>,
    /// `agent_silent`: heartbeat periods (the customer's `heartbeat_interval_s`) without one.
    #[serde(default)]
    pub periods: Option<u32>,
    /// `kpi_threshold`: `asr`, `ner` or `pdd_p95_ms`, compared with `threshold`.
    #[serde(default)]
    pub kpi: Option<String>,
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub trunk: Option<String>,
}

fn page() -> String {
    "page".to_owned()
}

/// The commitments `sla_burn` can watch.
pub const BURN_COMMITMENTS: [&str; 5] = ["uptime", "mos", "loss", "asr", "one_way_audio"];

/// What `kpi_threshold` can watch: ASR and NER fire below the threshold, the PDD p95 above it.
pub const KPI_THRESHOLD_KPIS: [&str; 3] = ["asr", "ner", "pdd_p95_ms"];

/// Most rules, channels and recipients: the engine's work per cycle stays bounded.
pub const MAX_RULES: usize = 200;
pub const MAX_CHANNELS: usize = 50;

impl RuleConfig {
    /// The commitments an `sla_burn` rule watches.
    pub fn burn_commitments(&self) -> Vec<String> {
        self.commitments
            .clone()
            .unwrap_or_else(|| vec!["uptime".to_owned(), "mos".to_owned()])
    }

    /// The burn policy of an `sla_burn` rule: its own factor and windows, else the
    /// workbook's for its severity (ticket for `ticket`, page otherwise).
    pub fn burn_policy(&self) -> super::burn::BurnPolicy {
        use super::burn::{DEFAULT_POLICIES, Severity};
        let base = if self.severity == "ticket" {
            DEFAULT_POLICIES[1]
        } else {
            DEFAULT_POLICIES[0]
        };
        super::burn::BurnPolicy {
            severity: if self.severity == "ticket" {
                Severity::Ticket
            } else {
                Severity::Page
            },
            long: self.long_window.map_or(base.long, |s| s.0),
            short: self.short_window.map_or(base.short, |s| s.0),
            factor: self.factor.unwrap_or(base.factor),
        }
    }

    fn problems(&self, customers: &[Customer], channels: &BTreeSet<&str>, p: &mut Vec<String>) {
        let at = format!("alerts.rules '{}'", self.name);
        if self.name.trim().is_empty() || self.name.len() > 128 {
            p.push("alerts.rules: name must be 1 to 128 characters".into());
        }
        if let Some(c) = &self.customer
            && !customers.iter().any(|k| &k.id == c)
        {
            p.push(format!("{at}: customer '{c}' is not configured"));
        }
        if self.severity.trim().is_empty() {
            p.push(format!("{at}: severity must not be empty"));
        }
        if self.for_ > Span::secs(7 * 86_400) {
            p.push(format!("{at}: for: at most 7d"));
        }
        for name in &self.notify {
            if !channels.contains(name.as_str()) {
                p.push(format!(
                    "{at}: notify names '{name}', which is no [[alerts.webhooks]] or \
                     [[alerts.emails]] name{}",
                    if name == ALERTMANAGER {
                        " ([alerts.alertmanager] is not configured)"
                    } else {
                        ""
                    }
                ));
            }
        }
        for (key, value) in &self.labels {
            if key.is_empty()
                || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || key.starts_with(|c: char| c.is_ascii_digit())
            {
                p.push(format!(
                    "{at}: label '{key}' is not a Prometheus label name"
                ));
            }
            if [
                "alertname",
                "rule",
                "customer",
                "severity",
                "agent",
                "commitment",
                "kpi",
                "trunk",
            ]
            .contains(&key.as_str())
            {
                p.push(format!("{at}: label '{key}' is set by the engine"));
            }
            if value.len() > 256 {
                p.push(format!("{at}: label '{key}' is longer than 256 characters"));
            }
        }
        let window_ok = |p: &mut Vec<String>| match self.window {
            None => p.push(format!("{at}: {} needs window", self.kind.as_str())),
            Some(w) if w < Span::secs(1) || w > Span::secs(31 * 86_400) => {
                p.push(format!("{at}: window must be 1s to 31d"))
            }
            Some(_) => {}
        };
        let pct_ok = |p: &mut Vec<String>| match self.threshold_pct {
            None => p.push(format!("{at}: {} needs threshold_pct", self.kind.as_str())),
            Some(t) if !(0.0..100.0).contains(&t) => p.push(format!(
                "{at}: threshold_pct must be 0 to 100 (fires above it)"
            )),
            Some(_) => {}
        };
        let unused = |keys: &[(&str, bool)], p: &mut Vec<String>| {
            for (key, set) in keys {
                if *set {
                    p.push(format!(
                        "{at}: {key} does not apply to kind {}",
                        self.kind.as_str()
                    ));
                }
            }
        };
        let burn_keys = [
            ("commitments", self.commitments.is_some()),
            ("factor", self.factor.is_some()),
            ("long_window", self.long_window.is_some()),
            ("short_window", self.short_window.is_some()),
            ("loss_target_pct", self.loss_target_pct.is_some()),
        ];
        let kpi_keys = [
            ("kpi", self.kpi.is_some()),
            ("threshold", self.threshold.is_some()),
            ("trunk", self.trunk.is_some()),
        ];
        match self.kind {
            RuleKind::QualityDrop => {
                window_ok(p);
                pct_ok(p);
                unused(&burn_keys, p);
                unused(&kpi_keys, p);
                unused(
                    &[
                        ("min_windows", self.min_windows.is_some()),
                        ("periods", self.periods.is_some()),
                    ],
                    p,
                );
            }
            RuleKind::CaptureIncomplete => {
                window_ok(p);
                pct_ok(p);
                unused(&burn_keys, p);
                unused(&kpi_keys, p);
                unused(
                    &[
                        ("min_calls", self.min_calls.is_some()),
                        ("periods", self.periods.is_some()),
                    ],
                    p,
                );
            }
            RuleKind::AgentSilent => {
                if self.periods == Some(0) {
                    p.push(format!("{at}: periods must be at least 1"));
                }
                unused(&burn_keys, p);
                unused(&kpi_keys, p);
                unused(
                    &[
                        ("window", self.window.is_some()),
                        ("threshold_pct", self.threshold_pct.is_some()),
                        ("min_calls", self.min_calls.is_some()),
                        ("min_windows", self.min_windows.is_some()),
                    ],
                    p,
                );
            }
            RuleKind::SlaBurn => {
                let commitments = self.burn_commitments();
                if commitments.is_empty() {
                    p.push(format!("{at}: commitments must name at least one"));
                }
                for c in &commitments {
                    if !BURN_COMMITMENTS.contains(&c.as_str()) {
                        p.push(format!(
                            "{at}: unknown commitment '{c}' (uptime, mos, loss, asr or \
                             one_way_audio)"
                        ));
                    }
                }
                // A rule for one customer must watch what that customer committed to; a rule
                // for all customers skips those without the commitment.
                if let Some(customer) = customers
                    .iter()
                    .find(|k| self.customer.as_ref() == Some(&k.id))
                {
                    for (name, target) in [
                        ("asr", customer.commitments.asr_min_pct),
                        ("one_way_audio", customer.commitments.one_way_audio_max_pct),
                    ] {
                        if target.is_none() && commitments.iter().any(|c| c == name) {
                            p.push(format!(
                                "{at}: commitment '{name}': customer '{}' has no {}",
                                customer.id,
                                if name == "asr" {
                                    "asr_min_pct"
                                } else {
                                    "one_way_audio_max_pct"
                                }
                            ));
                        }
                    }
                }
                match (
                    commitments.iter().any(|c| c == "loss"),
                    self.loss_target_pct,
                ) {
                    (true, None) => p.push(format!(
                        "{at}: commitment 'loss' needs loss_target_pct (the share of calls \
                         within loss_max_pct; the SLA's loss commitment has no error budget)"
                    )),
                    (false, Some(_)) => p.push(format!(
                        "{at}: loss_target_pct applies to commitment 'loss' only"
                    )),
                    (_, Some(t)) if !(t > 0.0 && t < 100.0) => {
                        p.push(format!("{at}: loss_target_pct must be between 0 and 100"))
                    }
                    _ => {}
                }
                let policy = self.burn_policy();
                if !(policy.factor.is_finite() && policy.factor > 0.0) {
                    p.push(format!("{at}: factor must be a positive number"));
                }
                if policy.short.is_zero()
                    || policy.short >= policy.long
                    || policy.long > Duration::from_secs(31 * 86_400)
                {
                    p.push(format!(
                        "{at}: short_window must be shorter than long_window (at most 31d)"
                    ));
                }
                unused(&kpi_keys, p);
                unused(
                    &[
                        ("window", self.window.is_some()),
                        ("threshold_pct", self.threshold_pct.is_some()),
                        ("min_calls", self.min_calls.is_some()),
                        ("min_windows", self.min_windows.is_some()),
                        ("periods", self.periods.is_some()),
                    ],
                    p,
                );
            }
            RuleKind::KpiThreshold => {
                window_ok(p);
                match self.kpi.as_deref() {
                    None => p.push(format!(
                        "{at}: kpi_threshold needs kpi (asr, ner or pdd_p95_ms)"
                    )),
                    Some(k) if !KPI_THRESHOLD_KPIS.contains(&k) => {
                        p.push(format!("{at}: kpi '{k}' is none of asr, ner, pdd_p95_ms"))
                    }
                    Some(_) => {}
                }
                match (self.kpi.as_deref(), self.threshold) {
                    (_, None) => p.push(format!("{at}: kpi_threshold needs threshold")),
                    (Some("asr" | "ner"), Some(v)) if !(0.0..=100.0).contains(&v) => {
                        p.push(format!(
                            "{at}: threshold of {} must be 0 to 100 (%)",
                            self.kpi.as_deref().unwrap_or_default()
                        ))
                    }
                    (_, Some(v)) if !v.is_finite() || v < 0.0 => {
                        p.push(format!("{at}: threshold must be a number ≥ 0"))
                    }
                    _ => {}
                }
                if let Some(trunk) = &self.trunk
                    && trunk.parse::<std::net::IpAddr>().is_err()
                {
                    p.push(format!(
                        "{at}: trunk '{trunk}' is not an IP address (the peer's, port left out)"
                    ));
                }
                unused(&burn_keys, p);
                unused(
                    &[
                        ("threshold_pct", self.threshold_pct.is_some()),
                        ("min_windows", self.min_windows.is_some()),
                        ("periods", self.periods.is_some()),
                    ],
                    p,
                );
            }
        }
    }
}

impl AlertsConfig {
    /// The channel names rules may notify.
    pub fn channel_names(&self) -> BTreeSet<&str> {
        let mut names: BTreeSet<&str> = self
            .webhooks
            .iter()
            .map(|w| w.name.as_str())
            .chain(self.emails.iter().map(|e| e.name.as_str()))
            .collect();
        if self.alertmanager.is_some() {
            names.insert(ALERTMANAGER);
        }
        names
    }

    pub fn webhook(&self, name: &str) -> Option<&WebhookConfig> {
        self.webhooks.iter().find(|w| w.name == name)
    }

    pub fn email(&self, name: &str) -> Option<&EmailChannel> {
        self.emails.iter().find(|e| e.name == name)
    }

    /// What is wrong with the section, each named; empty when valid.
    pub fn problems(&self, customers: &[Customer]) -> Vec<String> {
        let mut p = Vec::new();
        if self.evaluate_every < Span::secs(1) || self.evaluate_every > Span::secs(3600) {
            p.push("alerts.evaluate_every: must be 1s to 1h".into());
        }
        if let Some(url) = &self.evidence_base_url
            && !http_url(url)
        {
            p.push(format!(
                "alerts.evidence_base_url: '{url}' is not an http(s):// URL"
            ));
        }
        if self.webhooks.len() + self.emails.len() > MAX_CHANNELS {
            p.push(format!(
                "alerts: at most {MAX_CHANNELS} webhooks and e-mail lists"
            ));
        }
        if self.rules.len() > MAX_RULES {
            p.push(format!("alerts.rules: at most {MAX_RULES} rules"));
        }
        let mut seen = BTreeSet::new();
        for name in self
            .webhooks
            .iter()
            .map(|w| &w.name)
            .chain(self.emails.iter().map(|e| &e.name))
        {
            if name.is_empty() || name == ALERTMANAGER {
                p.push(format!(
                    "alerts: channel name '{name}' is reserved or empty"
                ));
            }
            if !seen.insert(name.as_str()) {
                p.push(format!(
                    "alerts: channel name '{name}' is used more than once (webhooks and e-mail lists share names)"
                ));
            }
        }
        for hook in &self.webhooks {
            if !http_url(&hook.url) {
                p.push(format!(
                    "alerts.webhooks '{}': url '{}' is not an http(s):// URL",
                    hook.name, hook.url
                ));
            }
        }
        if let Some(am) = &self.alertmanager
            && !http_url(&am.url)
        {
            p.push(format!(
                "alerts.alertmanager: url '{}' is not an http(s):// URL",
                am.url
            ));
        }
        if !self.emails.is_empty() && self.smtp.is_none() {
            p.push("alerts.emails: e-mail lists need [alerts.smtp]".into());
        }
        for list in &self.emails {
            if list.to.is_empty() || list.to.len() > 100 {
                p.push(format!(
                    "alerts.emails '{}': to must list 1 to 100 addresses",
                    list.name
                ));
            }
        }
        let channels = self.channel_names();
        let mut rules = BTreeSet::new();
        for rule in &self.rules {
            if !rules.insert(rule.name.as_str()) {
                p.push(format!(
                    "alerts.rules: name '{}' is used more than once",
                    rule.name
                ));
            }
            rule.problems(customers, &channels, &mut p);
        }
        p
    }
}

fn http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

#[cfg(test)]
mod tests {
    use crate::config::CollectorConfig;

    use super::*;

    const CUSTOMER: &str = r#"
[[customers]]
id = "acme"
name = "ACME"
agents = ["fra-media-1"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
"#;

    /// The issue's example, exactly as written there (operators copy it).
    const ISSUE_EXAMPLE: &str = r#"
[alerts]
evaluate_every = "15s"

[[alerts.webhooks]]
name = "ops-hook"
url = "https://hooks.example.net/voqa"
secret_file = "/etc/voqa/webhook.secret"   # HMAC-SHA-256 of the body, sent as  X-Voqa-Signature: sha256=<hex>

[[alerts.rules]]
name = "acme-quality"
kind = "quality_drop"          # sla_burn | quality_drop | agent_silent | capture_incomplete | kpi_threshold
customer = "acme"
window = "15m"
threshold_pct = 20.0           # share of calls below the customer's mos_min
min_calls = 5
for = "0s"
severity = "page"
notify = ["ops-hook"]
"#;

    fn parse(alerts: &str) -> Result<CollectorConfig, String> {
        CollectorConfig::parse(&format!("{alerts}\n{CUSTOMER}"))
    }

    #[test]
    fn the_issue_example_parses_as_written() {
        let cfg = parse(ISSUE_EXAMPLE).expect("the example is valid");
        let a = &cfg.alerts;
        assert_eq!(a.evaluate_every, Span::secs(15));
        assert_eq!(a.webhooks.len(), 1);
        assert_eq!(a.webhooks[0].name, "ops-hook");
        assert_eq!(a.webhooks[0].url, "https://hooks.example.net/voqa");
        assert_eq!(
            a.webhooks[0].secret_file,
            PathBuf::from("/etc/voqa/webhook.secret")
        );
        let r = &a.rules[0];
        assert_eq!(r.name, "acme-quality");
        assert_eq!(r.kind, RuleKind::QualityDrop);
        assert_eq!(r.customer.as_deref(), Some("acme"));
        assert_eq!(r.window, Some(Span::secs(900)));
        assert_eq!(r.threshold_pct, Some(20.0));
        assert_eq!(r.min_calls, Some(5));
        assert_eq!(r.for_, Span::secs(0));
        assert_eq!(r.severity, "page");
        assert_eq!(r.notify, ["ops-hook"]);
        // And the example is in the README too, word for word.
        let readme = include_str!("../../../README.md");
        let body = ISSUE_EXAMPLE.trim();
        assert!(
            readme.contains(body),
            "README.md lacks the [alerts] example"
        );
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(Span::parse("15s"), Ok(Span::secs(15)));
        assert_eq!(Span::parse("5m"), Ok(Span::secs(300)));
        assert_eq!(Span::parse("1h"), Ok(Span::secs(3600)));
        assert_eq!(Span::parse("2d"), Ok(Span::secs(172_800)));
        assert_eq!(Span::parse("0s"), Ok(Span::secs(0)));
        for bad in [
            "15",
            "s",
            "1.5h",
            "5 m",
            "-1s",
            "1w",
            "",
            "999999999999999999999s",
            "367d",
        ] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Span::secs(5400).to_string(), "90m");
        assert_eq!(Span::secs(7200).to_string(), "2h");
        assert_eq!(Span::secs(61).to_string(), "61s");
    }

    #[test]
    fn unknown_notify_names_and_customers_are_refused_by_name() {
        let err = parse(&ISSUE_EXAMPLE.replace(
            "notify = [\"ops-hook\"]",
            "notify = [\"ops-hoook\", \"alertmanager\"]",
        ))
        .expect_err("unknown channel");
        assert!(
            err.contains("notify names 'ops-hoook'")
                && err.contains("[alerts.alertmanager] is not configured"),
            "{err}"
        );
        let ok = parse(&format!(
            "{}\n[alerts.alertmanager]\nurl = \"http://127.0.0.1:9093\"\n",
            ISSUE_EXAMPLE.replace(
                "notify = [\"ops-hook\"]",
                "notify = [\"ops-hook\", \"alertmanager\"]"
            )
        ));
        assert!(ok.is_ok(), "{ok:?}");
        let err = parse(&ISSUE_EXAMPLE.replace("customer = \"acme\"", "customer = \"acne\""))
            .expect_err("unknown customer");
        assert!(err.contains("customer 'acne' is not configured"), "{err}");
        // A misspelled key inside [alerts] or a rule is refused too.
        let err = parse(&ISSUE_EXAMPLE.replace("min_calls", "min_call")).expect_err("typo");
        assert!(err.contains("min_call"), "{err}");
        let err =
            parse(&ISSUE_EXAMPLE.replace("evaluate_every", "evaluate_evry")).expect_err("typo");
        assert!(err.contains("evaluate_evry"), "{err}");
    }

    #[test]
    fn each_kind_gets_its_own_keys_checked() {
        let rule = |body: &str| {
            parse(&format!(
                "[[alerts.webhooks]]\nname = \"h\"\nurl = \"http://127.0.0.1:1/x\"\nsecret_file = \"s\"\n\
                 [[alerts.rules]]\nname = \"r\"\nnotify = [\"h\"]\n{body}\n"
            ))
        };
        assert!(rule("kind = \"agent_silent\"\nperiods = 3").is_ok());
        assert!(rule("kind = \"agent_silent\"\ncustomer = \"acme\"").is_ok());
        let err = rule("kind = \"agent_silent\"\nwindow = \"5m\"").expect_err("unused");
        assert!(
            err.contains("window does not apply to kind agent_silent"),
            "{err}"
        );
        let err = rule("kind = \"quality_drop\"").expect_err("needs keys");
        assert!(
            err.contains("needs window") && err.contains("needs threshold_pct"),
            "{err}"
        );
        assert!(
            rule("kind = \"capture_incomplete\"\nwindow = \"1h\"\nthreshold_pct = 5.0").is_ok()
        );
        assert!(rule("kind = \"sla_burn\"\ncustomer = \"acme\"").is_ok());
        assert!(rule("kind = \"sla_burn\"\ncommitments = [\"asr\", \"one_way_audio\"]").is_ok());
        let err = rule("kind = \"sla_burn\"\ncustomer = \"acme\"\ncommitments = [\"asr\"]")
            .expect_err("acme has no ASR commitment");
        assert!(
            err.contains("commitment 'asr': customer 'acme' has no asr_min_pct"),
            "{err}"
        );
        let err = rule("kind = \"sla_burn\"\ncommitments = [\"jitter\"]").expect_err("unknown");
        assert!(err.contains("unknown commitment 'jitter'"), "{err}");
        let err = rule("kind = \"sla_burn\"\ncommitments = [\"loss\"]").expect_err("no target");
        assert!(err.contains("needs loss_target_pct"), "{err}");
        assert!(
            rule("kind = \"sla_burn\"\ncommitments = [\"loss\"]\nloss_target_pct = 98.0").is_ok()
        );
        let err = rule("kind = \"sla_burn\"\nshort_window = \"2h\"").expect_err("windows");
        assert!(err.contains("short_window must be shorter"), "{err}");
        assert!(
            rule("kind = \"kpi_threshold\"\nkpi = \"asr\"\nthreshold = 50.0\nwindow = \"1h\"\nmin_calls = 20")
                .is_ok()
        );
        assert!(
            rule("kind = \"kpi_threshold\"\nkpi = \"pdd_p95_ms\"\nthreshold = 4000.0\nwindow = \"6h\"\ntrunk = \"203.0.113.7\"")
                .is_ok()
        );
        let err =
            rule("kind = \"kpi_threshold\"\nkpi = \"mos\"\nthreshold = 50.0\nwindow = \"1h\"")
                .expect_err("kpi");
        assert!(
            err.contains("kpi 'mos' is none of asr, ner, pdd_p95_ms"),
            "{err}"
        );
        let err =
            rule("kind = \"kpi_threshold\"\nkpi = \"ner\"\nthreshold = 150.0\nwindow = \"1h\"")
                .expect_err("pct");
        assert!(err.contains("must be 0 to 100"), "{err}");
        let err = rule(
            "kind = \"kpi_threshold\"\nkpi = \"asr\"\nwindow = \"1h\"\ntrunk = \"pbx.example\"",
        )
        .expect_err("threshold and trunk");
        assert!(
            err.contains("needs threshold") && err.contains("trunk 'pbx.example' is not an IP"),
            "{err}"
        );
        let err = rule("kind = \"quality_drop\"\nwindow = \"5m\"\nthreshold_pct = 10.0\nlabels = { severity = \"x\" }")
            .expect_err("reserved label");
        assert!(
            err.contains("label 'severity' is set by the engine"),
            "{err}"
        );
        let err = rule("kind = \"nonsense\"").expect_err("kind");
        assert!(err.contains("nonsense"), "{err}");
    }

    #[test]
    fn channels_and_cadence_are_checked() {
        let err = parse("[alerts]\nevaluate_every = \"0s\"\n").expect_err("zero");
        assert!(err.contains("evaluate_every"), "{err}");
        let err = parse(
            "[[alerts.emails]]\nname = \"oncall\"\nto = [\"a@example.net\"]\n\
             [[alerts.webhooks]]\nname = \"oncall\"\nurl = \"ftp://x\"\nsecret_file = \"s\"\n",
        )
        .expect_err("bad channels");
        assert!(err.contains("need [alerts.smtp]"), "{err}");
        assert!(err.contains("'oncall' is used more than once"), "{err}");
        assert!(err.contains("is not an http(s):// URL"), "{err}");
        let cfg = parse(
            "[alerts.smtp]\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\nfrom = \"voqa@example.net\"\n\
             [[alerts.emails]]\nname = \"oncall\"\nto = [\"a@example.net\"]\n",
        )
        .expect("smtp and a list");
        assert_eq!(cfg.alerts.email("oncall").map(|e| e.to.len()), Some(1));
        // No [alerts] at all: no rules, the default cadence.
        let cfg = parse("").expect("empty");
        assert_eq!(cfg.alerts, AlertsConfig::default());
    }
}
