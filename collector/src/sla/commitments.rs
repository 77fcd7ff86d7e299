//! Customers and the commitments signed with them, read from the `[[customers]]` tables of
//! the collector config, validated, plus the subnet filter that narrows a customer's traffic.
//!
//! Parsing and matching only: no file access (the caller passes the TOML text), no clock.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::maintenance::{MaintenanceWindow, parse_windows};

/// One customer of the operator: whose traffic counts for it and what was promised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    pub id: String,
    pub name: String,
    /// Agents whose traffic and heartbeats count for this customer.
    pub agents: Vec<String>,
    /// Optional media peers (`"203.0.113.0/24"`, `"2001:db8::/32"`); empty means all traffic.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// IANA time zone of the customer's report days and calendar months (`Europe/Berlin`);
    /// `UTC` when not set. Maintenance windows stay in UTC, as they are written.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// E-mail addresses that receive last month's report on the first of each month (of
    /// `time_zone`), through `[alerts.smtp]`; none: no report is mailed.
    #[serde(default)]
    pub report_recipients: Vec<String>,
    /// A URL that receives last month's report as signed JSON at the same time, with the
    /// file holding its HMAC key: `{ url = "https://...", secret_file = "..." }`. None: no
    /// report is posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_webhook: Option<crate::deliver::webhook::WebhookTarget>,
    pub commitments: Commitments,
}

/// Most recipients of one customer's report (one message, one envelope).
pub const MAX_REPORT_RECIPIENTS: usize = 50;

fn utc() -> String {
    "UTC".to_owned()
}

/// The signed targets, see DESIGN.md "Commitments".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commitments {
    /// A call meets quality if its MOS is at least this …
    pub mos_min: f64,
    /// … and at least this percentage of calls must meet it.
    pub calls_meeting_pct: f64,
    /// Per-call effective loss ceiling, percent.
    pub loss_max_pct: f64,
    /// 95th percentile of per-packet jitter over the period, milliseconds.
    pub jitter_p95_max_ms: f64,
    pub uptime_min_pct: f64,
    /// Weekly UTC windows such as `"Sun 02:00-04:00 UTC"`, excluded from uptime.
    #[serde(default)]
    pub maintenance: Vec<String>,
    /// The agents' heartbeat period; a silence longer than two periods is downtime.
    #[serde(default = "fifteen")]
    pub heartbeat_interval_s: u64,
    /// Call-signalling commitments from call records (issue 12), each optional: absent means
    /// not evaluated. Answer-seizure ratio (ITU-T E.411) at least this percentage …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asr_min_pct: Option<f64>,
    /// … network effectiveness ratio (ITU-T E.425) at least this percentage …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ner_min_pct: Option<f64>,
    /// … 95th percentile of the post-dial delay (RFC 6076 SRD) at most this many ms …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdd_p95_max_ms: Option<f64>,
    /// … and at most this percentage of answered calls with a media problem (one-way audio,
    /// no RTP, RTP stopped, media address mismatch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_way_audio_max_pct: Option<f64>,
}

fn fifteen() -> u64 {
    15
}

/// Why the customers section of the config was refused.
#[derive(Debug, thiserror::Error)]
pub enum SlaConfigError {
    #[error("invalid customers config: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("customers[{index}]: id must not be empty")]
    EmptyId { index: usize },
    #[error("customer id {0:?} is used more than once")]
    DuplicateId(String),
    #[error("customer {customer:?}: {field}: {reason}")]
    Invalid {
        customer: String,
        field: String,
        reason: String,
    },
}

/// The collector config as far as SLA is concerned: every other top-level key is ignored.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ConfigFile {
    customers: Vec<Customer>,
}

/// Reads and validates the `[[customers]]` tables of the collector config.
pub fn parse_customers(toml_text: &str) -> Result<Vec<Customer>, SlaConfigError> {
    let config: ConfigFile = toml::from_str(toml_text)?;
    for (index, customer) in config.customers.iter().enumerate() {
        if customer.id.trim().is_empty() {
            return Err(SlaConfigError::EmptyId { index });
        }
        if config.customers[..index]
            .iter()
            .any(|c| c.id == customer.id)
        {
            return Err(SlaConfigError::DuplicateId(customer.id.clone()));
        }
        validate(customer)?;
    }
    Ok(config.customers)
}

fn validate(customer: &Customer) -> Result<(), SlaConfigError> {
    let invalid = |field: &str, reason: String| SlaConfigError::Invalid {
        customer: customer.id.clone(),
        field: field.to_owned(),
        reason,
    };
    if customer.agents.is_empty() {
        return Err(invalid("agents", "list at least one agent".into()));
    }
    if let Some(index) = customer.agents.iter().position(|a| a.trim().is_empty()) {
        return Err(invalid(
            &format!("agents[{index}]"),
            "empty agent id".into(),
        ));
    }
    // The zone database is bundled into the binary (jiff's tzdb-bundle-always): a name known
    // here is known on every host the collector runs on.
    if let Err(e) = jiff::tz::TimeZone::get(&customer.time_zone) {
        return Err(invalid(
            "time_zone",
            format!(
                "{:?} is not an IANA time zone name such as \"Europe/Berlin\" or \"UTC\" ({e})",
                customer.time_zone
            ),
        ));
    }
    if customer.report_recipients.len() > MAX_REPORT_RECIPIENTS {
        return Err(invalid(
            "report_recipients",
            format!("at most {MAX_REPORT_RECIPIENTS} addresses"),
        ));
    }
    for (index, text) in customer.report_recipients.iter().enumerate() {
        if let Err(e) = crate::deliver::smtp::parse_recipient(text) {
            return Err(invalid(
                &format!("report_recipients[{index}]"),
                e.to_string(),
            ));
        }
    }
    if let Some(hook) = &customer.report_webhook
        && let Err(e) = crate::deliver::webhook::check_url(&hook.url)
    {
        return Err(invalid("report_webhook.url", e));
    }
    for (index, text) in customer.subnets.iter().enumerate() {
        if let Err(e) = text.parse::<Subnet>() {
            return Err(invalid(&format!("subnets[{index}]"), e.to_string()));
        }
    }
    let c = &customer.commitments;
    let ranged = [
        ("commitments.mos_min", c.mos_min, 1.0, 4.5),
        (
            "commitments.calls_meeting_pct",
            c.calls_meeting_pct,
            0.0,
            100.0,
        ),
        ("commitments.loss_max_pct", c.loss_max_pct, 0.0, 100.0),
        ("commitments.uptime_min_pct", c.uptime_min_pct, 0.0, 100.0),
        (
            "commitments.jitter_p95_max_ms",
            c.jitter_p95_max_ms,
            0.0,
            f64::MAX,
        ),
    ];
    let optional = [
        ("commitments.asr_min_pct", c.asr_min_pct, 100.0),
        ("commitments.ner_min_pct", c.ner_min_pct, 100.0),
        ("commitments.pdd_p95_max_ms", c.pdd_p95_max_ms, f64::MAX),
        (
            "commitments.one_way_audio_max_pct",
            c.one_way_audio_max_pct,
            100.0,
        ),
    ];
    let ranged = ranged.into_iter().chain(
        optional
            .into_iter()
            .filter_map(|(field, value, high)| value.map(|v| (field, v, 0.0, high))),
    );
    for (field, value, low, high) in ranged {
        if !(low..=high).contains(&value) {
            let reason = if high == f64::MAX {
                format!("{value} must be a finite number ≥ {low}")
            } else {
                format!("{value} is outside {low}..={high}")
            };
            return Err(invalid(field, reason));
        }
    }
    if c.heartbeat_interval_s == 0 || c.heartbeat_interval_s > 86_400 {
        return Err(invalid(
            "commitments.heartbeat_interval_s",
            format!("{} is outside 1..=86400", c.heartbeat_interval_s),
        ));
    }
    if let Err((index, e)) = parse_windows(&c.maintenance) {
        return Err(invalid(
            &format!("commitments.maintenance[{index}]"),
            format!(
                "{:?}: {e}",
                c.maintenance.get(index).map_or("", |s| s.as_str())
            ),
        ));
    }
    Ok(())
}

impl Commitments {
    /// The maintenance windows that parse (all of them for a validated config).
    pub fn maintenance_windows(&self) -> Vec<MaintenanceWindow> {
        self.maintenance
            .iter()
            .filter_map(|t| t.parse().ok())
            .collect()
    }
}

/// Why a subnet string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    #[error("invalid address {0:?}")]
    Address(String),
    #[error("invalid prefix length {0:?}")]
    Prefix(String),
    #[error("host bits set after the /{0} prefix")]
    HostBits(u8),
}

/// An IPv4 or IPv6 network in CIDR notation; a bare address is a single-host network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    network: IpAddr,
    prefix: u8,
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Subnet {
    type Err = SubnetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| SubnetError::Address(address.to_owned()))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= max && p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| SubnetError::Prefix(p.to_owned()))?,
        };
        let host_bits_clear = match network {
            IpAddr::V4(a) => u32::from(a) & !mask_v4(prefix) == 0,
            IpAddr::V6(a) => u128::from(a) & !mask_v6(prefix) == 0,
        };
        if !host_bits_clear {
            return Err(SubnetError::HostBits(prefix));
        }
        Ok(Self { network, prefix })
    }
}

impl Subnet {
    /// True if `ip` lies in this network; an IPv4-mapped IPv6 address matches an IPv4 network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                u32::from(a) & mask_v4(self.prefix) == u32::from(net)
            }
            (IpAddr::V4(net), IpAddr::V6(a)) => a
                .to_ipv4_mapped()
                .is_some_and(|a| u32::from(a) & mask_v4(self.prefix) == u32::from(net)),
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                u128::from(a) & mask_v6(self.prefix) == u128::from(net)
            }
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

/// The address of a wire endpoint: `"192.0.2.10:40000"`, `"[2001:db8::1]:5004"` or a bare address.
pub fn endpoint_ip(endpoint: &str) -> Option<IpAddr> {
    endpoint
        .parse::<SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| endpoint.parse::<IpAddr>())
        .ok()
}

/// The customer's subnets that parse (all of them for a validated config).
pub fn parsed_subnets(customer: &Customer) -> Vec<Subnet> {
    customer
        .subnets
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// True if either endpoint of the report lies in one of `subnets`, or if `subnets` is empty.
pub fn report_in_subnets(subnets: &[Subnet], report: &voqa_wire::StreamReport) -> bool {
    endpoints_in_subnets(subnets, &report.src, &report.dst)
}

/// True if either endpoint lies in one of `subnets`, or if `subnets` is empty.
pub fn endpoints_in_subnets(subnets: &[Subnet], src: &str, dst: &str) -> bool {
    subnets.is_empty()
        || [src, dst]
            .into_iter()
            .filter_map(endpoint_ip)
            .any(|ip| subnets.iter().any(|s| s.contains(ip)))
}

/// What a subnet-narrowed customer's scope is attributed by, as a canonical text: its agents
/// and subnets (`network/prefix`), each sorted and deduplicated, so that a reordered or
/// respelled list is recognised as the same and any real change starts a new scope.
pub fn scope_signature(customer: &Customer) -> String {
    let mut subnets: Vec<String> = parsed_subnets(customer)
        .iter()
        .map(|s| format!("{}/{}", s.network, s.prefix))
        .collect();
    subnets.sort_unstable();
    subnets.dedup();
    let mut agents = customer.agents.clone();
    agents.sort_unstable();
    agents.dedup();
    format!("agents={};subnets={}", agents.join(","), subnets.join(","))
}

/// For each report, the ids of the subnet-narrowed customers whose agents include its agent
/// and whose subnets hold one of its endpoints: the scopes it is attributed to at ingest.
pub fn report_scopes(
    customers: &[Customer],
    reports: &[voqa_wire::StreamReport],
) -> Vec<Vec<String>> {
    let narrowed: Vec<(&Customer, Vec<Subnet>)> = customers
        .iter()
        .filter(|c| !c.subnets.is_empty())
        .map(|c| (c, parsed_subnets(c)))
        .collect();
    if narrowed.is_empty() {
        return Vec::new();
    }
    reports
        .iter()
        .map(|report| {
            narrowed
                .iter()
                .filter(|(c, subnets)| {
                    c.agents.contains(&report.agent_id) && report_in_subnets(subnets, report)
                })
                .map(|(c, _)| c.id.clone())
                .collect()
        })
        .collect()
}

/// For each call record of a batch, the ids of the subnet-narrowed customers whose agents
/// include its agent and whose subnets hold its peer's address or an endpoint of one of its
/// streams (`media[].stream_id`) reported in the same batch: the scopes it is attributed to at
/// ingest, by the same match as stream reports. A stream reported only in an earlier batch
/// cannot attribute the call (ingest reads nothing back); its peer still can.
pub fn call_scopes(customers: &[Customer], batch: &voqa_wire::Batch) -> Vec<Vec<String>> {
    let narrowed: Vec<(&Customer, Vec<Subnet>)> = customers
        .iter()
        .filter(|c| !c.subnets.is_empty() && c.agents.contains(&batch.agent_id))
        .map(|c| (c, parsed_subnets(c)))
        .collect();
    if narrowed.is_empty() || batch.calls.is_empty() {
        return Vec::new();
    }
    let streams: std::collections::HashMap<&str, Vec<&voqa_wire::StreamReport>> = batch
        .reports
        .iter()
        .fold(Default::default(), |mut map, report| {
            map.entry(report.stream_id.as_str())
                .or_default()
                .push(report);
            map
        });
    batch
        .calls
        .iter()
        .map(|record| {
            narrowed
                .iter()
                .filter(|(_, subnets)| {
                    let peer = record.call.peer.as_deref().unwrap_or_default();
                    endpoints_in_subnets(subnets, peer, peer)
                        || record.call.media.iter().any(|m| {
                            streams.get(m.stream_id.as_str()).is_some_and(|reports| {
                                reports.iter().any(|r| report_in_subnets(subnets, r))
                            })
                        })
                })
                .map(|(c, _)| c.id.clone())
                .collect()
        })
        .collect()
}

/// True if the customer has no subnets configured, or the report's source or destination
/// address lies within one of them.
pub fn in_subnets(customer: &Customer, report: &voqa_wire::StreamReport) -> bool {
    customer.subnets.is_empty() || report_in_subnets(&parsed_subnets(customer), report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scope_signature_ignores_order_and_spelling_not_content() {
        let mut customer: Customer = parse_customers(DESIGN_EXAMPLE).expect("example").remove(0);
        customer.subnets = vec!["2001:db8::/32".into(), "203.0.113.0/24".into()];
        let signature = scope_signature(&customer);
        assert_eq!(
            signature,
            "agents=fra-media-1,fra-media-2;subnets=2001:db8::/32,203.0.113.0/24"
        );
        customer.subnets = vec!["203.0.113.0/24".into(), "2001:0db8::/32".into()];
        customer.agents.reverse();
        assert_eq!(scope_signature(&customer), signature);
        customer.agents.push("fra-media-3".into());
        assert_ne!(scope_signature(&customer), signature);
    }

    pub(crate) const DESIGN_EXAMPLE: &str = r#"
listen = "127.0.0.1:8080"
[database]
path = "voqa.db"

[[customers]]
id = "acme"
name = "ACME Contact Centre"
agents = ["fra-media-1", "fra-media-2"]      # whose traffic counts for this customer
subnets = ["203.0.113.0/24"]                 # optional: narrow to these media peers

[customers.commitments]
mos_min = 4.0            # a call meets quality if its MOS ≥ this …
calls_meeting_pct = 95.0 # … and at least this share of calls must meet it
loss_max_pct = 1.0       # per-call effective loss
jitter_p95_max_ms = 30.0 # over all packets of the period (merged histograms)
uptime_min_pct = 99.95   # heartbeats present and watched services up
maintenance = ["Sun 02:00-04:00 UTC"]   # excluded from uptime
"#;

    #[test]
    fn parses_the_design_example() {
        let customers = parse_customers(DESIGN_EXAMPLE).expect("valid");
        assert_eq!(customers.len(), 1);
        let acme = &customers[0];
        assert_eq!(acme.id, "acme");
        assert_eq!(acme.name, "ACME Contact Centre");
        assert_eq!(acme.agents, ["fra-media-1", "fra-media-2"]);
        assert_eq!(acme.subnets, ["203.0.113.0/24"]);
        let c = &acme.commitments;
        assert_eq!(
            (
                c.mos_min,
                c.calls_meeting_pct,
                c.loss_max_pct,
                c.jitter_p95_max_ms,
                c.uptime_min_pct
            ),
            (4.0, 95.0, 1.0, 30.0, 99.95)
        );
        assert_eq!(c.maintenance, ["Sun 02:00-04:00 UTC"]);
        assert_eq!(c.heartbeat_interval_s, 15);
        assert_eq!(c.maintenance_windows().len(), 1);
    }

    #[test]
    fn time_zone_defaults_to_utc_and_unknown_names_are_refused() {
        let acme = parse_customers(DESIGN_EXAMPLE).expect("valid");
        assert_eq!(acme[0].time_zone, "UTC");
        let berlin = DESIGN_EXAMPLE.replace(
            "name = \"ACME Contact Centre\"",
            "name = \"ACME Contact Centre\"\ntime_zone = \"Europe/Berlin\"",
        );
        assert_ne!(berlin, DESIGN_EXAMPLE, "the fixture has the name line");
        assert_eq!(
            parse_customers(&berlin).expect("valid")[0].time_zone,
            "Europe/Berlin"
        );
        for bad in ["Europe/Berlinn", "CEST+2", ""] {
            let text = DESIGN_EXAMPLE.replace(
                "name = \"ACME Contact Centre\"",
                &format!("name = \"ACME Contact Centre\"\ntime_zone = {bad:?}"),
            );
            let err = error_text(&text);
            assert!(
                err.starts_with(&format!(
                    "customer \"acme\": time_zone: {bad:?} is not an IANA time zone name"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn report_recipients_are_addresses() {
        let acme = parse_customers(DESIGN_EXAMPLE).expect("valid");
        assert!(acme[0].report_recipients.is_empty());
        let with = |list: &str| {
            DESIGN_EXAMPLE.replace(
                "name = \"ACME Contact Centre\"",
                &format!("name = \"ACME Contact Centre\"\nreport_recipients = {list}"),
            )
        };
        let ok = parse_customers(&with(r#"["noc@acme.example", "CFO <cfo@acme.example>"]"#))
            .expect("valid");
        assert_eq!(
            ok[0].report_recipients,
            ["noc@acme.example", "CFO <cfo@acme.example>"]
        );
        let err = error_text(&with(r#"["noc@acme.example", "noc.acme.example"]"#));
        assert!(
            err.starts_with("customer \"acme\": report_recipients[1]: ")
                && err.contains("noc.acme.example"),
            "{err}"
        );
        let many = format!(
            "[{}]",
            (0..=MAX_REPORT_RECIPIENTS)
                .map(|i| format!("\"n{i}@acme.example\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(error_text(&with(&many)).contains("report_recipients: at most"));
    }

    #[test]
    fn a_report_webhook_is_https_or_loopback() {
        assert!(
            parse_customers(DESIGN_EXAMPLE).expect("valid")[0]
                .report_webhook
                .is_none()
        );
        let with = |hook: &str| {
            DESIGN_EXAMPLE.replace(
                "name = \"ACME Contact Centre\"",
                &format!("name = \"ACME Contact Centre\"\nreport_webhook = {hook}"),
            )
        };
        let ok = parse_customers(&with(
            r#"{ url = "https://hooks.acme.example/voqa", secret_file = "/etc/voqa/acme.secret" }"#,
        ))
        .expect("valid");
        let hook = ok[0].report_webhook.as_ref().expect("hook");
        assert_eq!(hook.url, "https://hooks.acme.example/voqa");
        assert_eq!(
            hook.secret_file,
            std::path::Path::new("/etc/voqa/acme.secret")
        );
        let err = error_text(&with(
            r#"{ url = "http://hooks.acme.example/voqa", secret_file = "s" }"#,
        ));
        assert!(
            err.starts_with("customer \"acme\": report_webhook.url: ")
                && err.contains("clear text"),
            "{err}"
        );
        // A misspelled key is refused, not ignored.
        assert!(parse_customers(&with(r#"{ url = "https://h.example/", secret = "s" }"#)).is_err());
    }

    #[test]
    fn call_commitments_are_optional_and_ranged() {
        let acme = &parse_customers(DESIGN_EXAMPLE).expect("valid")[0];
        let c = &acme.commitments;
        assert_eq!(
            (
                c.asr_min_pct,
                c.ner_min_pct,
                c.pdd_p95_max_ms,
                c.one_way_audio_max_pct
            ),
            (None, None, None, None),
            "absent: not evaluated"
        );
        let with = |line: &str| {
            DESIGN_EXAMPLE.replace(
                "uptime_min_pct = 99.95",
                &format!("uptime_min_pct = 99.95\n{line}"),
            )
        };
        let set = parse_customers(&with(
            "asr_min_pct = 45.0\nner_min_pct = 95.0\npdd_p95_max_ms = 3000.0\none_way_audio_max_pct = 0.5",
        ))
        .expect("valid");
        let c = &set[0].commitments;
        assert_eq!(
            (
                c.asr_min_pct,
                c.ner_min_pct,
                c.pdd_p95_max_ms,
                c.one_way_audio_max_pct
            ),
            (Some(45.0), Some(95.0), Some(3000.0), Some(0.5))
        );
        for (line, field) in [
            ("asr_min_pct = 101.0", "commitments.asr_min_pct"),
            ("ner_min_pct = -1.0", "commitments.ner_min_pct"),
            ("pdd_p95_max_ms = -5.0", "commitments.pdd_p95_max_ms"),
            (
                "one_way_audio_max_pct = 200.0",
                "commitments.one_way_audio_max_pct",
            ),
        ] {
            let err = error_text(&with(line));
            assert!(
                err.starts_with(&format!("customer \"acme\": {field}:")),
                "{err}"
            );
        }
    }

    #[test]
    fn calls_are_attributed_by_peer_or_by_their_streams_in_the_batch() {
        let acme = &parse_customers(DESIGN_EXAMPLE).expect("valid")[0];
        let call = |peer: &str, stream: &str| voqa_wire::CallRecord {
            agent_id: "fra-media-1".into(),
            call_key: "k".into(),
            call: voqa_wire::CallSummary {
                peer: Some(peer.into()),
                media: vec![voqa_wire::CallMedia {
                    stream_id: stream.into(),
                    direction: "caller_to_callee".into(),
                    codec: "PCMA".into(),
                    mos: None,
                }],
                ..Default::default()
            },
        };
        // Its source is in acme's subnet (its destination is not).
        let report = crate::sla::evaluate::tests::report(
            "fra-media-1",
            "s-in",
            None,
            0,
            "203.0.113.9:4000",
            None,
            None,
        );
        let batch = voqa_wire::Batch {
            schema: voqa_wire::SCHEMA_VERSION,
            batch_id: "b".into(),
            agent_id: "fra-media-1".into(),
            sent_at: voqa_wire::Timestamp::from_ns(0),
            reports: vec![report],
            heartbeats: vec![],
            calls: vec![
                call("203.0.113.7:5060", "s-none"),
                call("198.51.100.1:5060", "s-in"),
                call("198.51.100.1:5060", "s-none"),
            ],
        };
        let acme_only = vec!["acme".to_owned()];
        assert_eq!(
            call_scopes(std::slice::from_ref(acme), &batch),
            vec![acme_only.clone(), acme_only, vec![]]
        );
        // Another agent's batch is not the customer's.
        let other = voqa_wire::Batch {
            agent_id: "elsewhere".into(),
            ..batch
        };
        assert!(call_scopes(std::slice::from_ref(acme), &other).is_empty());
    }

    #[test]
    fn a_config_without_customers_has_none() {
        assert!(parse_customers("").expect("valid").is_empty());
        assert!(
            parse_customers("listen = \"[::1]:80\"")
                .expect("valid")
                .is_empty()
        );
    }

    fn error_text(toml_text: &str) -> String {
        match parse_customers(toml_text) {
            Ok(_) => String::from("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn names_the_customer_and_field_in_errors() {
        let with = |from: &str, to: &str| DESIGN_EXAMPLE.replace(from, to);
        let cases = [
            (
                with("mos_min = 4.0", "mos_min = 4.6"),
                "customer \"acme\": commitments.mos_min: 4.6 is outside 1..=4.5",
            ),
            (
                with("mos_min = 4.0", "mos_min = 0.5"),
                "customer \"acme\": commitments.mos_min: 0.5 is outside 1..=4.5",
            ),
            (
                with("calls_meeting_pct = 95.0", "calls_meeting_pct = 101.0"),
                "customer \"acme\": commitments.calls_meeting_pct: 101 is outside 0..=100",
            ),
            (
                with("loss_max_pct = 1.0", "loss_max_pct = -1.0"),
                "customer \"acme\": commitments.loss_max_pct: -1 is outside 0..=100",
            ),
            (
                with("uptime_min_pct = 99.95", "uptime_min_pct = nan"),
                "customer \"acme\": commitments.uptime_min_pct: NaN is outside 0..=100",
            ),
            (
                with("jitter_p95_max_ms = 30.0", "jitter_p95_max_ms = inf"),
                "customer \"acme\": commitments.jitter_p95_max_ms: inf must be a finite number ≥ 0",
            ),
            (
                with("203.0.113.0/24", "203.0.113.0/33"),
                "customer \"acme\": subnets[0]: invalid prefix length \"33\"",
            ),
            (
                with("203.0.113.0/24", "203.0.113.1/24"),
                "customer \"acme\": subnets[0]: host bits set after the /24 prefix",
            ),
            (
                with("203.0.113.0/24", "acme.example/24"),
                "customer \"acme\": subnets[0]: invalid address \"acme.example\"",
            ),
            (
                with("Sun 02:00-04:00 UTC", "Sun 02:00-04:00 CET"),
                "customer \"acme\": commitments.maintenance[0]: \"Sun 02:00-04:00 CET\": time zone \"CET\" is not supported (write UTC)",
            ),
            (
                with("[\"fra-media-1\", \"fra-media-2\"]", "[]"),
                "customer \"acme\": agents: list at least one agent",
            ),
            (
                with("id = \"acme\"", "id = \" \""),
                "customers[0]: id must not be empty",
            ),
            (
                with("maintenance = ", "heartbeat_interval_s = 0\nmaintenance = "),
                "customer \"acme\": commitments.heartbeat_interval_s: 0 is outside 1..=86400",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(error_text(&text), expected);
        }
        let twice = format!(
            "{DESIGN_EXAMPLE}\n{}",
            &DESIGN_EXAMPLE[DESIGN_EXAMPLE.find("[[customers]]").unwrap_or(0)..]
        );
        assert_eq!(
            error_text(&twice),
            "customer id \"acme\" is used more than once"
        );
    }

    #[test]
    fn toml_errors_are_reported_with_their_position() {
        let missing = DESIGN_EXAMPLE.replace("mos_min = 4.0", "");
        let text = error_text(&missing);
        assert!(
            text.starts_with("invalid customers config:") && text.contains("mos_min"),
            "{text}"
        );
        let typo = DESIGN_EXAMPLE.replace("maintenance =", "maintenence =");
        assert!(error_text(&typo).contains("maintenence"));
        assert!(error_text("customers = 3").starts_with("invalid customers config:"));
    }

    #[test]
    fn subnets_match_ipv4_ipv6_and_mapped_addresses() {
        let net: Subnet = "203.0.113.0/24".parse().expect("valid");
        assert!(net.contains("203.0.113.255".parse().expect("ip")));
        assert!(!net.contains("203.0.114.0".parse().expect("ip")));
        assert!(net.contains("::ffff:203.0.113.7".parse().expect("ip")));
        let net6: Subnet = "2001:db8::/32".parse().expect("valid");
        assert!(net6.contains("2001:db8:ffff::1".parse().expect("ip")));
        assert!(!net6.contains("2001:db9::1".parse().expect("ip")));
        assert!(!net6.contains("203.0.113.1".parse().expect("ip")));
        let all: Subnet = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains("198.51.100.1".parse().expect("ip")));
        let host: Subnet = "192.0.2.1".parse().expect("valid");
        assert!(host.contains("192.0.2.1".parse().expect("ip")));
        assert!(!host.contains("192.0.2.2".parse().expect("ip")));
        assert_eq!(
            "10.0.0.0/+8".parse::<Subnet>(),
            Err(SubnetError::Prefix("+8".into()))
        );
    }

    #[test]
    fn endpoints_with_and_without_ports() {
        assert_eq!(endpoint_ip("192.0.2.10:40000"), "192.0.2.10".parse().ok());
        assert_eq!(
            endpoint_ip("[2001:db8::1]:5004"),
            "2001:db8::1".parse().ok()
        );
        assert_eq!(endpoint_ip("2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(endpoint_ip("not an address"), None);
    }

    proptest! {
        #[test]
        fn subnet_parse_never_panics(text in "\\PC{0,50}") {
            let _ = text.parse::<Subnet>();
        }

        #[test]
        fn every_address_is_in_its_own_prefix(bits: u32, prefix in 0u8..=32) {
            let network = std::net::Ipv4Addr::from(bits & mask_v4(prefix));
            let subnet: Subnet = format!("{network}/{prefix}").parse().expect("masked network");
            prop_assert!(subnet.contains(IpAddr::V4(std::net::Ipv4Addr::from(bits))));
        }

        #[test]
        fn parse_customers_never_panics(text in "\\PC{0,200}") {
            let _ = parse_customers(&text);
        }
    }
}
