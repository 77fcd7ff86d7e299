//! Call KPIs at scale (issue 12): one customer-month of N call records (default 1,000,000,
//! spread over November 2026 across 200 peers, both directions, every outcome) is stored
//! through `Store::ingest_attributed` in batches of 500 (the ingest path, without HTTP), then
//! `GET /api/v1/customers/acme/kpis` is timed over HTTP on an in-process collector for the
//! whole month: the total, and grouped by day (Europe/Berlin), hour, peer and direction. Wall
//! time of each request includes every store query; each is run three times.
//!
//! Usage: cargo run --release -p voqa-collector --example collector-calls-load -- [sqlite:PATH | postgres://...] [CALLS]

use std::sync::Arc;
use std::time::Instant;

use voqa_collector::api::{self, AppState};
use voqa_collector::auth::hash_token;
use voqa_collector::config::CollectorConfig;
use voqa_collector::store::Store;
use voqa_wire::{Batch, CallRecord, CallSummary, MediaProblem, Timestamp};

const AGENT: &str = "fra-media-1";
const PER_BATCH: u64 = 500;
const MS: i64 = 1_000_000;

const CONFIG: &str = r#"
[[customers]]
id = "acme"
name = "ACME"
agents = ["fra-media-1"]
time_zone = "Europe/Berlin"
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.9
asr_min_pct = 40.0
ner_min_pct = 90.0
pdd_p95_max_ms = 3000.0
one_way_audio_max_pct = 1.0
"#;

/// Call `n` of `total`: its INVITE spread evenly over November, and an outcome by `n % 20`.
fn call(n: u64, total: u64) -> CallRecord {
    let month_ns: i64 = 30 * 86_400 * 1_000_000_000;
    let start = Timestamp::from_date(2026, 11, 1)
        .unwrap_or(Timestamp::EPOCH)
        .saturating_add_ns((month_ns / total.max(1) as i64) * n as i64);
    let at = |ms: i64| Some(start.saturating_add_ns(ms * MS));
    let srd = 100 + (n % 37) as i64 * 40;
    let (status, end_cause, answer, ringing) = match n % 20 {
        0..=11 => (Some(200), "bye", true, true),
        12 | 13 => (Some(486), "failure", false, false),
        14 | 15 => (Some(480), "failure", false, true),
        16 => (Some(487), "cancel", false, true),
        17 => (Some(503), "failure", false, false),
        18 => (Some(404), "failure", false, false),
        _ => (None, "cancel", false, false),
    };
    CallRecord {
        agent_id: AGENT.into(),
        call_key: format!("{n:016x}"),
        call: CallSummary {
            call_id: format!("anon:{n:016x}"),
            setup: at(0),
            first_provisional: ringing.then(|| at(srd)).flatten(),
            first_ringing: ringing.then(|| at(srd)).flatten(),
            answer: answer.then(|| at(srd + 4_000)).flatten(),
            // A failure's final response ends it (and its SRD); a cancel comes after 8 s.
            end: match (answer, end_cause) {
                (true, _) => at(srd + 64_000),
                (false, "failure") => at(srd),
                _ => at(8_000),
            },
            status,
            end_cause: Some(end_cause.into()),
            direction: Some(
                if n.is_multiple_of(3) {
                    "outbound"
                } else {
                    "inbound"
                }
                .into(),
            ),
            peer: Some(format!("192.0.2.{}:5060", n % 200)),
            duration_ms: answer.then_some(60_000),
            problems: if answer && n.is_multiple_of(97) {
                vec![MediaProblem {
                    kind: "one_way_audio".into(),
                    direction: "callee_to_caller".into(),
                    start: start.saturating_add_ns((srd + 4_000) * MS),
                }]
            } else {
                Vec::new()
            },
            ..CallSummary::default()
        },
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "sqlite:/tmp/voqa-calls-load.db".into());
    let total: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let store = Store::open(&url).await?;
    let ops = "calls-load-ops";
    store.token_insert(ops, &hash_token(ops), "ops", 0).await?;

    let started = Instant::now();
    let mut n = 0u64;
    let mut batch_no = 0u64;
    while n < total {
        let calls: Vec<CallRecord> = (n..(n + PER_BATCH).min(total))
            .map(|i| call(i, total))
            .collect();
        n += calls.len() as u64;
        batch_no += 1;
        let batch = Batch {
            schema: voqa_wire::SCHEMA_VERSION,
            batch_id: format!("00000000-0000-4000-8000-{batch_no:012x}"),
            agent_id: AGENT.into(),
            sent_at: Timestamp::from_date(2026, 12, 1).unwrap_or(Timestamp::EPOCH),
            reports: Vec::new(),
            heartbeats: Vec::new(),
            calls,
        };
        store
            .ingest_attributed(&batch, voqa_collector::now_ns(), &[], &[])
            .await?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "stored {total} call records in {secs:.1} s: {:.0} calls/s ({})",
        total as f64 / secs,
        store.backend()
    );
    store.refresh_statistics().await?;

    let state = AppState {
        store: store.clone(),
        config: CollectorConfig::parse(CONFIG)
            .map_err(anyhow::Error::msg)?
            .into(),
        metrics: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(api::serve(listener, state, std::future::pending()));
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    for group in [
        "",
        "&group_by=day",
        "&group_by=hour",
        "&group_by=peer",
        "&group_by=direction",
    ] {
        for run in 1..=3 {
            let t = Instant::now();
            let resp = client
                .get(format!(
                    "{base}/api/v1/customers/acme/kpis?from=2026-11-01&to=2026-12-01{group}"
                ))
                .bearer_auth(ops)
                .send()
                .await?;
            let status = resp.status();
            let body: serde_json::Value = resp.json().await?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            println!(
                "kpis{group} run {run}: {status} in {ms:.1} ms — attempts {}, ASR {:.2} %, NER {:.2} %, PDD p95 {} ms, groups {}",
                body["total"]["attempts"],
                body["total"]["asr_pct"].as_f64().unwrap_or(f64::NAN),
                body["total"]["ner_pct"].as_f64().unwrap_or(f64::NAN),
                body["total"]["pdd_p95_ms"],
                body["groups"].as_array().map_or(0, Vec::len),
            );
        }
    }
    for run in 1..=3 {
        let t = Instant::now();
        let resp = client
            .get(format!(
                "{base}/api/v1/customers/acme/sla?from=2026-11-01&to=2026-12-01"
            ))
            .bearer_auth(ops)
            .send()
            .await?;
        let status = resp.status();
        let _ = resp.bytes().await?;
        println!(
            "sla (with the call commitments) run {run}: {status} in {:.1} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(())
}
