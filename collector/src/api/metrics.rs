//! The collector's Prometheus metrics: ingest rate, batch latency, store errors, the SLA
//! state of each customer as last evaluated, the alert engine's (firing alerts by rule and
//! severity, notifications sent and failed by channel), monthly report sends by channel and
//! result (`voqa_report_sends_total`), and per configured customer the call
//! records stored since the collector started (attempts, answered, failures by response class,
//! the session request delay histogram, media problems by kind). Counters are updated by
//! handlers and the engine. Labels are bounded: customer ids from the configuration, rules,
//! fixed classes and kinds — never an address, a peer or a call.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::sla::Evaluation;
use crate::sla::kpis::{CallCounts, PROBLEM_KINDS, SRD_EDGES_MS};
use crate::store::IngestOutcome;

#[derive(Debug, Default)]
pub struct Metrics {
    batches: AtomicU64,
    duplicates: AtomicU64,
    reports: AtomicU64,
    heartbeats: AtomicU64,
    duplicate_reports: AtomicU64,
    duplicate_heartbeats: AtomicU64,
    latency_us_sum: AtomicU64,
    store_errors: AtomicU64,
    /// (customer, commitment) → met (1), breached (0); absent when never evaluated or when
    /// the last evaluation had no data for it (no data is not a breach).
    sla: Mutex<Vec<(String, &'static str, Option<bool>)>>,
    /// Customer id → the counts of the call records stored for it since start.
    calls: Mutex<BTreeMap<String, CallCounts>>,
    alerts: Mutex<AlertMetrics>,
    /// Report send attempts: [email, webhook] × [sent, failed].
    report_sends: [[AtomicU64; 2]; 2],
}

/// The channels of `voqa_report_sends_total`, in the order of `Metrics::report_sends`.
const REPORT_CHANNELS: [&str; 2] = ["email", "webhook"];

/// The alert engine's figures.
#[derive(Debug, Default)]
struct AlertMetrics {
    /// (rule, severity) → instances firing.
    firing: BTreeMap<(String, String), u64>,
    sent: BTreeMap<String, u64>,
    failed: BTreeMap<String, u64>,
    evaluator: bool,
    cycle_seconds: f64,
}

/// A label value in the exposition format: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn ingested(&self, outcome: &IngestOutcome, latency: Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.latency_us_sum
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
        if outcome.is_duplicate() {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        self.reports.fetch_add(outcome.reports, Ordering::Relaxed);
        self.heartbeats
            .fetch_add(outcome.heartbeats, Ordering::Relaxed);
        self.duplicate_reports
            .fetch_add(outcome.duplicate_reports, Ordering::Relaxed);
        self.duplicate_heartbeats
            .fetch_add(outcome.duplicate_heartbeats, Ordering::Relaxed);
    }

    /// Adds the new call records of a batch of `agent_id` to the customers they count for:
    /// scope `""` to every customer without subnets that lists the agent, a customer's own
    /// scope to it (subnet customers). Customers not configured are not counted.
    pub fn ingested_calls(
        &self,
        customers: &[crate::sla::Customer],
        agent_id: &str,
        new: &[(String, CallCounts)],
    ) {
        let Ok(mut calls) = self.calls.lock() else {
            return;
        };
        for (scope, counts) in new {
            for customer in customers {
                let counts_for = if scope.is_empty() {
                    customer.subnets.is_empty() && customer.agents.iter().any(|a| a == agent_id)
                } else {
                    customer.id == *scope
                };
                if counts_for {
                    calls.entry(customer.id.clone()).or_default().add(counts);
                }
            }
        }
    }

    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sla_state(&self, e: &Evaluation) {
        if let Ok(mut sla) = self.sla.lock() {
            sla.retain(|(c, _, _)| *c != e.customer);
            for r in &e.commitments {
                sla.push((e.customer.clone(), r.name, r.verdict.met()));
            }
        }
    }

    /// The firing instances now (replaces the previous figures).
    pub fn alert_firing(&self, states: &[crate::store::alerts::AlertStateRow]) {
        if let Ok(mut a) = self.alerts.lock() {
            a.firing.clear();
            for s in states.iter().filter(|s| s.state == "firing") {
                *a.firing
                    .entry((s.rule.clone(), s.severity.clone()))
                    .or_default() += 1;
            }
        }
    }

    pub fn alert_sent(&self, channel: &str) {
        if let Ok(mut a) = self.alerts.lock() {
            *a.sent.entry(channel.to_owned()).or_default() += 1;
        }
    }

    /// One attempt to send a monthly report through `channel` (`email` or `webhook`; another
    /// name is not counted), accepted or failed.
    pub fn report_send(&self, channel: &str, sent: bool) {
        if let Some(i) = REPORT_CHANNELS.iter().position(|c| *c == channel) {
            self.report_sends[i][usize::from(!sent)].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn alert_failed(&self, channel: &str) {
        if let Ok(mut a) = self.alerts.lock() {
            *a.failed.entry(channel.to_owned()).or_default() += 1;
        }
    }

    /// Whether this replica holds the evaluator's lease.
    pub fn alert_evaluator(&self, holds: bool) {
        if let Ok(mut a) = self.alerts.lock() {
            a.evaluator = holds;
        }
    }

    pub fn alert_cycle_seconds(&self, seconds: f64) {
        if let Ok(mut a) = self.alerts.lock() {
            a.cycle_seconds = seconds;
        }
    }

    pub async fn render(&self, _state: &super::AppState) -> String {
        let mut out = String::new();
        let counters = [
            (
                "voqa_ingest_batches_total",
                "Batches accepted (stored or duplicate).",
                self.batches.load(Ordering::Relaxed),
            ),
            (
                "voqa_ingest_duplicate_batches_total",
                "Batches whose every record was already stored.",
                self.duplicates.load(Ordering::Relaxed),
            ),
            (
                "voqa_ingest_reports_total",
                "Stream reports stored (new records only).",
                self.reports.load(Ordering::Relaxed),
            ),
            (
                "voqa_ingest_duplicate_reports_total",
                "Stream reports acknowledged that were already stored.",
                self.duplicate_reports.load(Ordering::Relaxed),
            ),
            (
                "voqa_ingest_duplicate_heartbeats_total",
                "Heartbeats acknowledged that were already stored.",
                self.duplicate_heartbeats.load(Ordering::Relaxed),
            ),
            (
                "voqa_ingest_heartbeats_total",
                "Heartbeats stored (new records only).",
                self.heartbeats.load(Ordering::Relaxed),
            ),
            (
                "voqa_store_errors_total",
                "Store operations that failed.",
                self.store_errors.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, v) in counters {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            );
        }
        let _ = write!(
            out,
            "# HELP voqa_ingest_batch_latency_seconds Time to validate and commit a batch.\n# TYPE voqa_ingest_batch_latency_seconds summary\nvoqa_ingest_batch_latency_seconds_sum {}\nvoqa_ingest_batch_latency_seconds_count {}\n",
            self.latency_us_sum.load(Ordering::Relaxed) as f64 / 1e6,
            self.batches.load(Ordering::Relaxed)
        );
        let _ = write!(
            out,
            "# HELP voqa_sla_met Commitment met (1) or breached (0) at its last evaluation.\n# TYPE voqa_sla_met gauge\n"
        );
        if let Ok(sla) = self.sla.lock() {
            for (customer, commitment, met) in sla.iter() {
                if let Some(m) = met {
                    let _ = writeln!(
                        out,
                        "voqa_sla_met{{customer=\"{customer}\",commitment=\"{commitment}\"}} {}",
                        u8::from(*m)
                    );
                }
            }
        }
        if let Ok(a) = self.alerts.lock() {
            out.push_str(
                "# HELP voqa_alerts_firing Alert instances firing, by rule and severity.\n\
                 # TYPE voqa_alerts_firing gauge\n",
            );
            for ((rule, severity), n) in &a.firing {
                let _ = writeln!(
                    out,
                    "voqa_alerts_firing{{rule=\"{}\",severity=\"{}\"}} {n}",
                    label(rule),
                    label(severity)
                );
            }
            for (name, help, map) in [
                (
                    "voqa_alert_notifications_sent_total",
                    "Alert notifications a channel accepted.",
                    &a.sent,
                ),
                (
                    "voqa_alert_notifications_failed_total",
                    "Alert notification attempts that failed (each is retried with backoff).",
                    &a.failed,
                ),
            ] {
                let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n");
                for (channel, n) in map {
                    let _ = writeln!(out, "{name}{{channel=\"{}\"}} {n}", label(channel));
                }
            }
            let _ = write!(
                out,
                "# HELP voqa_alert_evaluator Whether this replica holds the alert engine's lease (1) or not (0).\n\
                 # TYPE voqa_alert_evaluator gauge\nvoqa_alert_evaluator {}\n\
                 # HELP voqa_alert_cycle_seconds Duration of the last alert evaluation cycle.\n\
                 # TYPE voqa_alert_cycle_seconds gauge\nvoqa_alert_cycle_seconds {}\n",
                u8::from(a.evaluator),
                a.cycle_seconds
            );
        }
        self.render_report_sends(&mut out);
        if let Ok(calls) = self.calls.lock() {
            render_calls(&mut out, &calls);
        }
        out
    }

    /// Every channel and result, zeros included, so that a rate or an alert on failures has
    /// its series from the start.
    fn render_report_sends(&self, out: &mut String) {
        let name = "voqa_report_sends_total";
        let _ = write!(
            out,
            "# HELP {name} Monthly report send attempts by channel and result (a failure is retried with backoff).\n# TYPE {name} counter\n"
        );
        for (channel, counts) in REPORT_CHANNELS.iter().zip(&self.report_sends) {
            for (result, n) in ["sent", "failed"].iter().zip(counts) {
                let _ = writeln!(
                    out,
                    "{name}{{channel=\"{channel}\",result=\"{result}\"}} {}",
                    n.load(Ordering::Relaxed)
                );
            }
        }
    }
}

/// The per-customer call metrics.
fn render_calls(out: &mut String, calls: &BTreeMap<String, CallCounts>) {
    type Counter = (&'static str, &'static str, fn(&CallCounts) -> u64);
    let simple: [Counter; 2] = [
        (
            "voqa_calls_attempts_total",
            "Call records (INVITE dialogs) stored since start, per customer.",
            |c| c.attempts,
        ),
        (
            "voqa_calls_answered_total",
            "Answered (2xx) calls stored since start, per customer.",
            |c| c.answered,
        ),
    ];
    for (name, help, value) in simple {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n");
        for (customer, c) in calls {
            let _ = writeln!(out, "{name}{{customer=\"{customer}\"}} {}", value(c));
        }
    }
    let name = "voqa_calls_failed_total";
    let _ = write!(
        out,
        "# HELP {name} Unanswered calls by the class of their final response (none: no final response), per customer.\n# TYPE {name} counter\n"
    );
    for (customer, c) in calls {
        for (class, v) in [
            ("4xx", c.failed_4xx),
            ("5xx", c.failed_5xx),
            ("6xx", c.failed_6xx),
            ("none", c.no_final),
        ] {
            let _ = writeln!(
                out,
                "{name}{{customer=\"{customer}\",class=\"{class}\"}} {v}"
            );
        }
    }
    let name = "voqa_call_media_problems_total";
    let _ = write!(
        out,
        "# HELP {name} Answered calls with each kind of media problem, per customer.\n# TYPE {name} counter\n"
    );
    for (customer, c) in calls {
        for (kind, v) in PROBLEM_KINDS.iter().zip(c.problems) {
            let _ = writeln!(out, "{name}{{customer=\"{customer}\",kind=\"{kind}\"}} {v}");
        }
    }
    let name = "voqa_call_srd_seconds";
    let _ = write!(
        out,
        "# HELP {name} Session request delay (post-dial delay, RFC 6076 SRD) of calls, per customer.\n# TYPE {name} histogram\n"
    );
    for (customer, c) in calls {
        let mut cumulative = 0u64;
        for (edge, v) in SRD_EDGES_MS.iter().zip(c.srd_buckets) {
            cumulative += v;
            let _ = writeln!(
                out,
                "{name}_bucket{{customer=\"{customer}\",le=\"{}\"}} {cumulative}",
                *edge as f64 / 1000.0
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{customer=\"{customer}\",le=\"+Inf\"}} {}",
            c.srd_count
        );
        let _ = writeln!(
            out,
            "{name}_sum{{customer=\"{customer}\"}} {}",
            c.srd_sum_ms as f64 / 1000.0
        );
        let _ = writeln!(
            out,
            "{name}_count{{customer=\"{customer}\"}} {}",
            c.srd_count
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_sends_are_counted_by_channel_and_result() {
        let metrics = Metrics::default();
        metrics.report_send("webhook", false);
        metrics.report_send("webhook", false);
        metrics.report_send("webhook", true);
        metrics.report_send("email", true);
        metrics.report_send("pigeon", true);
        let mut text = String::new();
        metrics.render_report_sends(&mut text);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "voqa_report_sends_total{channel=\"email\",result=\"sent\"} 1",
                "voqa_report_sends_total{channel=\"email\",result=\"failed\"} 0",
                "voqa_report_sends_total{channel=\"webhook\",result=\"sent\"} 1",
                "voqa_report_sends_total{channel=\"webhook\",result=\"failed\"} 2",
            ]
        );
        assert!(text.contains("# TYPE voqa_report_sends_total counter\n"));
    }

    #[test]
    fn calls_count_for_their_customers_only() {
        let customers = crate::sla::parse_customers(
            r#"
[[customers]]
id = "acme"
name = "A"
agents = ["a1"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.9

[[customers]]
id = "nets"
name = "N"
agents = ["a1"]
subnets = ["192.0.2.0/24"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.9
"#,
        )
        .expect("customers");
        let metrics = Metrics::default();
        let mut three = CallCounts {
            attempts: 3,
            answered: 2,
            failed_4xx: 1,
            srd_count: 2,
            srd_sum_ms: 750,
            ..CallCounts::default()
        };
        three.srd_buckets[1] = 1; // 150 ms: ≤ 0.2 s
        three.srd_buckets[4] = 1; // 600 ms: ≤ 0.75 s
        three.problems[1] = 1;
        let one = CallCounts {
            attempts: 1,
            ..CallCounts::default()
        };
        metrics.ingested_calls(
            &customers,
            "a1",
            &[(String::new(), three), ("nets".into(), one)],
        );
        // Another agent's calls count for nobody.
        metrics.ingested_calls(&customers, "a9", &[(String::new(), three)]);
        let calls = metrics.calls.lock().expect("lock").clone();
        let mut text = String::new();
        render_calls(&mut text, &calls);
        for line in [
            "voqa_calls_attempts_total{customer=\"acme\"} 3",
            "voqa_calls_attempts_total{customer=\"nets\"} 1",
            "voqa_calls_answered_total{customer=\"acme\"} 2",
            "voqa_calls_failed_total{customer=\"acme\",class=\"4xx\"} 1",
            "voqa_call_media_problems_total{customer=\"acme\",kind=\"one_way_audio\"} 1",
            "voqa_call_srd_seconds_bucket{customer=\"acme\",le=\"0.1\"} 0",
            "voqa_call_srd_seconds_bucket{customer=\"acme\",le=\"0.2\"} 1",
            "voqa_call_srd_seconds_bucket{customer=\"acme\",le=\"0.5\"} 1",
            "voqa_call_srd_seconds_bucket{customer=\"acme\",le=\"0.75\"} 2",
            "voqa_call_srd_seconds_bucket{customer=\"acme\",le=\"+Inf\"} 2",
            "voqa_call_srd_seconds_sum{customer=\"acme\"} 0.75",
            "voqa_call_srd_seconds_count{customer=\"acme\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("192.0.2"), "no address in a label");
    }
}
