//! Collector ingest throughput: an in-process collector on 127.0.0.1:0 over the given store,
//! 8 concurrent agents each POSTing batches of 500 stream reports (plain JSON over real HTTP),
//! and the stream reports stored per second. Then the SLA evaluation of one customer-month of
//! 1,000,000 calls (final reports built in memory) is timed.
//!
//! Usage: cargo run --release -p voqa-collector --example collector-load -- [sqlite:PATH | postgres://...] [BATCHES_PER_AGENT]

use std::sync::Arc;
use std::time::Instant;

use voqa_collector::api::{self, AppState};
use voqa_collector::auth::hash_token;
use voqa_collector::config::CollectorConfig;
use voqa_collector::store::Store;
use voqa_wire::{Batch, StreamReport, StreamSummary, Transitions};

const AGENTS: u32 = 8;
const REPORTS_PER_BATCH: u32 = 500;

fn summary(call: &str, mos: f64) -> StreamSummary {
    StreamSummary {
        src: "203.0.113.5:40000".into(),
        dst: "198.51.100.20:50000".into(),
        ssrc: "0x00000001".into(),
        payload_type: 0,
        codec: "PCMU".into(),
        clock_rate: Some(8000),
        call_id: Some(call.into()),
        first_seen: "2026-11-20T10:00:00Z".into(),
        last_seen: "2026-11-20T10:05:00Z".into(),
        packets: 15000,
        expected: 15000,
        lost: 0,
        duplicates: 0,
        reordered: 0,
        jitter_ms: Some(1.0),
        max_jitter_ms: Some(2.0),
        mean_jitter_ms: Some(1.0),
        max_delta_ms: 21.0,
        burst_ratio: 1.0,
        jb_discarded: 0,
        effective_loss_pct: 0.2,
        rtt_ms: None,
        r_factor: Some(90.0),
        mos: Some(mos),
        loss_bursts: 0,
        max_loss_burst: 0,
        lost_rfc3550: 0,
        delay_ms: Some(100.125),
        delay_source: "assumed".into(),
        clock_source: "static".into(),
        detection: "sdp".into(),
        jitter_buffer: "fixed:60".into(),
        ie: Some(0.0),
        bpl: Some(25.1),
        flags: vec![],
    }
}

fn report(agent: &str, n: u64, is_final: bool, day: u64) -> StreamReport {
    let call = format!("call-{agent}-{n}");
    let mos = if n % 20 == 0 { 3.6 } else { 4.3 };
    let secs = n % 86_000;
    StreamReport {
        agent_id: agent.into(),
        stream_id: format!("{n:016x}"),
        src: "203.0.113.5:40000".into(),
        dst: "198.51.100.20:50000".into(),
        ssrc: "0x00000001".into(),
        payload_type: 0,
        codec: "PCMU".into(),
        clock_rate: Some(8000),
        call_id: Some(call.clone()),
        window_start: format!(
            "2026-11-{:02}T{:02}:{:02}:{:02}.000000Z",
            1 + day % 30,
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        ),
        window_end: format!(
            "2026-11-{:02}T{:02}:{:02}:{:02}.500000Z",
            1 + day % 30,
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        ),
        is_final,
        end_reason: is_final.then(|| "bye".into()),
        packets: 500,
        expected: 500,
        lost: 1,
        duplicates: 0,
        reordered: 0,
        jitter_ms: Some(1.0),
        max_jitter_ms: Some(2.0),
        mean_jitter_ms: Some(1.0),
        jitter_sum_ms: 500.0,
        jitter_samples: 500,
        jitter_histogram: None,
        max_delta_ms: 21.0,
        transitions: Transitions {
            n00: 497,
            n01: 1,
            n10: 1,
            n11: 0,
        },
        burst_ratio: 1.0,
        jb_discarded: 0,
        effective_loss_pct: 0.2,
        rtt_ms: None,
        delay_ms: Some(100.125),
        r_factor: Some(90.0),
        mos: Some(mos),
        capture_drops: 0,
        totals: is_final.then(|| summary(&call, mos)),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = tempfile::tempdir()?;
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| format!("sqlite:{}", dir.path().join("load.db").display()));
    let batches: u32 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(25);
    let store = Store::open(&url).await?;
    let token = format!("load-{}", std::process::id());
    store
        .token_insert(&token, &hash_token(&token), "agent", 0)
        .await?;
    let config =
        CollectorConfig::parse("max_body_bytes = 67108864\n").map_err(anyhow::Error::msg)?;
    let state = AppState {
        store,
        config: Arc::new(config),
        metrics: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(api::serve(listener, state, std::future::pending()));

    // Bodies are built before the clock starts.
    let mut bodies: Vec<Vec<Vec<u8>>> = Vec::new();
    for a in 0..AGENTS {
        let agent = format!("agent-{a}");
        let mut mine = Vec::new();
        for b in 0..batches {
            let reports = (0..REPORTS_PER_BATCH)
                .map(|r| {
                    let n = (u64::from(a) << 40) | (u64::from(b) << 20) | u64::from(r);
                    report(&agent, n, r % 10 == 9, u64::from(b))
                })
                .collect();
            let batch = Batch {
                schema: voqa_wire::SCHEMA_VERSION,
                batch_id: format!("00000000-0000-4000-8000-{:04x}{:08x}", a, b),
                agent_id: agent.clone(),
                sent_at: "2026-11-20T10:00:00Z".into(),
                reports,
                heartbeats: vec![],
            };
            mine.push(serde_json::to_vec(&batch)?);
        }
        bodies.push(mine);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mine in bodies {
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for body in mine {
                let resp = client
                    .post(format!("http://{addr}/api/v1/ingest"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if !resp.status().is_success() {
                    return Err(format!(
                        "status {}: {}",
                        resp.status(),
                        resp.text().await.unwrap_or_default()
                    ));
                }
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await?.map_err(anyhow::Error::msg)?;
    }
    let secs = started.elapsed().as_secs_f64();
    let total = f64::from(AGENTS * batches * REPORTS_PER_BATCH);
    println!(
        "ingest: {} agents x {batches} batches x {REPORTS_PER_BATCH} reports = {total} reports in {secs:.2} s = {:.0} reports/s ({})",
        AGENTS,
        total / secs,
        if url.starts_with("sqlite") {
            "SQLite"
        } else {
            "PostgreSQL"
        }
    );

    // SLA evaluation of one customer-month: 1,000,000 calls (final reports) in memory.
    let customers = voqa_collector::sla::parse_customers(
        "[[customers]]\nid = \"acme\"\nname = \"ACME\"\nagents = [\"agent-0\"]\n[customers.commitments]\nmos_min = 4.0\ncalls_meeting_pct = 95.0\nloss_max_pct = 1.0\njitter_p95_max_ms = 30.0\nuptime_min_pct = 99.95\n",
    )?;
    let reports: Vec<StreamReport> = (0..1_000_000u64)
        .map(|n| report("agent-0", n, true, n / 33_334))
        .collect();
    let from = voqa_collector::time::parse_rfc3339_ns("2026-11-01").unwrap_or(0);
    let to = voqa_collector::time::parse_rfc3339_ns("2026-12-01").unwrap_or(0);
    let started = Instant::now();
    let evaluation = voqa_collector::sla::evaluate(&customers[0], from, to, &reports, &[]);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "SLA evaluation: {} calls in {:.3} s",
        evaluation.calls, secs
    );
    Ok(())
}
