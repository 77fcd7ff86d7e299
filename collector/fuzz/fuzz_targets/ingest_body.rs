//! Fuzzes what the collector does with an ingest body before it touches the store: JSON
//! parsing into a voqa-wire `Batch` (naming the bad field), the value checks, the jitter
//! histograms of every report, and the attribution of reports to subnet-narrowed customers.

#![no_main]

use libfuzzer_sys::fuzz_target;
use voqa_collector::api::ingest::{parse_batch, validate};
use voqa_collector::sla::{parse_customers, report_scopes};
use voqa_wire::histogram::decode_jitter_histogram;

const CUSTOMERS: &str = r#"
[[customers]]
id = "acme"
name = "ACME"
agents = ["a", "fra-media-1"]
subnets = ["203.0.113.0/24", "2001:db8::/32"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
"#;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = parse_batch(data) else {
        return;
    };
    let _ = validate(&batch);
    for report in &batch.reports {
        if let Some(text) = &report.jitter_histogram {
            let _ = decode_jitter_histogram(text);
        }
    }
    let customers = parse_customers(CUSTOMERS).expect("fixed config parses");
    let scopes = report_scopes(&customers, &batch.reports);
    assert!(scopes.len() == batch.reports.len() || scopes.is_empty());
});
