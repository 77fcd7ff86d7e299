//! The collector's Prometheus metrics: ingest rate, batch latency, store errors, the SLA
//! state of each customer as last evaluated, and the alert engine's (firing alerts by rule and
//! severity, notifications sent and failed by channel). Counters are atomics updated by
//! handlers and the engine.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::sla::Evaluation;
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
    alerts: Mutex<AlertMetrics>,
}

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
        out
    }
}
