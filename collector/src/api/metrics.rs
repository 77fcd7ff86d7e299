//! The collector's Prometheus metrics: ingest rate, batch latency, store errors, and the SLA
//! state of each customer as last evaluated. Counters are atomics updated by handlers.

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
        out
    }
}
