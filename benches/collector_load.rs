//! Collector load: an in-process collector on 127.0.0.1:0 over the given store.
//!
//! 1. Ingest: 8 concurrent agents each POST batches of 500 stream reports (plain JSON over
//!    real HTTP, each report with a per-packet jitter histogram as agents ship them); stream
//!    reports stored per second.
//! 2. SLA: one customer-month of 1,000,000 calls (a final report each, spread over November,
//!    stored through the same ingest code) is evaluated over HTTP, wall time of the GET
//!    including every store query: the whole month (hour-aligned: per-call aggregates and
//!    hourly jitter rollups), a month that is not hour-aligned (plus single windows at both
//!    ends), and the report-based path that customers narrowed to subnets take.
//! 3. Report: the customer report of that month (`GET /api/v1/customers/acme/report`) as
//!    JSON, HTML and CSV, wall time and size.
//!
//! The month's calls have two MOS values (4.3, and 3.6 for every 20th call) and one loss
//! unless `distinct` is given: then every call has its own MOS (six decimals, spread over
//! [3.0, 4.41)) and its own loss (six decimals, most calls under 1 %), as a month of real
//! calls has, so that the report's figures are measured on realistic data too.
//!
//! `report-only` leaves out the report-based SLA path (it reads every stream report of the
//! month: minutes on a loaded VM) when only the report's figures are wanted.
//!
//! Usage: cargo run --release -p voqa-collector --example collector-load -- [sqlite:PATH | postgres://...] [BATCHES_PER_AGENT] [SLA_CALLS] [distinct] [report-only]

use std::sync::Arc;
use std::time::Instant;

use voqa_collector::api::{self, AppState};
use voqa_collector::auth::hash_token;
use voqa_collector::config::CollectorConfig;
use voqa_collector::store::Store;
use voqa_wire::time::NS_PER_S;
use voqa_wire::{Batch, StreamReport, Timestamp, fixtures};

const AGENTS: u32 = 8;
const REPORTS_PER_BATCH: u32 = 500;

/// Eight window histograms of 500 packets like an agent's (a few neighbouring jitter bins).
static HISTOGRAMS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    let mut encoder = voqa_wire::histogram::HistogramEncoder::new();
    (0..8u64)
        .map(|k| {
            let mut h = voqa_wire::histogram::new_jitter_histogram();
            for (i, count) in [60u64, 140, 180, 90, 30].into_iter().enumerate() {
                let _ = h.record_n(500 + 250 * k + 90 * i as u64, count);
            }
            encoder.encode(&h).unwrap_or_default()
        })
        .collect()
});

/// One window of call `n` of `agent` on `day` of November 2026: 500 packets, one lost, a
/// jitter histogram of eight shapes; every 20th call at MOS 3.6. A final window carries the
/// stream's totals (the same figures).
fn report(agent: &str, n: u64, is_final: bool, day: u64) -> StreamReport {
    let call = format!("call-{agent}-{n}");
    let mos = if n.is_multiple_of(20) { 3.6 } else { 4.3 };
    let secs = (n % 86_000) as i64;
    // Day 1..=30 of November 2026 always exists.
    let window_start = Timestamp::from_date(2026, 11, 1 + (day % 30) as u32)
        .unwrap_or(Timestamp::EPOCH)
        .saturating_add_ns(secs * NS_PER_S);
    let window_end = window_start.saturating_add_ns(NS_PER_S / 2);
    let stream = format!("{n:016x}");
    let r = fixtures::final_report(agent, &stream, &call, window_start, window_end, 501, mos);
    let mut r = fixtures::with_loss(r, 1);
    r.jitter_histogram = Some(HISTOGRAMS[(n % 8) as usize].clone());
    if is_final { r } else { fixtures::interval(r) }
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
        .token_insert_bound(&token, &hash_token(&token), "agent", Some("agent-*"), 0)
        .await?;
    let ops_token = format!("ops-{}", std::process::id());
    store
        .token_insert(&ops_token, &hash_token(&ops_token), "ops", 0)
        .await?;
    let commitments = "[customers.commitments]\nmos_min = 4.0\ncalls_meeting_pct = 95.0\nloss_max_pct = 1.0\njitter_p95_max_ms = 30.0\nuptime_min_pct = 99.95\n";
    let config = CollectorConfig::parse(&format!(
        "max_body_bytes = 67108864\n[[customers]]\nid = \"acme\"\nname = \"ACME\"\nagents = [\"sla-0\"]\n{commitments}\n[[customers]]\nid = \"acme-subnets\"\nname = \"ACME media\"\nagents = [\"sla-0\"]\nsubnets = [\"203.0.113.0/24\"]\n{commitments}\n[[customers]]\nid = \"acme-media\"\nname = \"ACME media, scoped\"\nagents = [\"sla-0\"]\nsubnets = [\"203.0.113.0/24\"]\n{commitments}"
    ))
    .map_err(anyhow::Error::msg)?;
    let state_store = store.clone();
    let customers = config.customers.clone();
    // acme-media's scope predates the data (its month is evaluated from scoped aggregates);
    // acme-subnets's starts with the server, so its month is evaluated from stream reports.
    if let Some(acme_media) = config.customer("acme-media") {
        store
            .register_scope(
                "acme-media",
                &voqa_collector::sla::scope_signature(acme_media),
                0,
            )
            .await?;
    }
    let state = AppState {
        store,
        config: config.into(),
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
                sent_at: at("2026-11-20T10:00:00Z"),
                reports,
                heartbeats: vec![],
                calls: Vec::new(),
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
            let client = http_client();
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

    // One customer-month of calls for agent `sla-0`: a final report per call, every
    // 30 days / SLA_CALLS, stored through the ingest code (setup, not timed).
    let sla_calls: u64 = args
        .get(3)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let flags: Vec<&str> = args.iter().skip(4).map(String::as_str).collect();
    let distinct = flags.contains(&"distinct");
    // The report-based SLA path reads every stream report of the month (minutes on a loaded
    // VM): `report-only` leaves it out when only the report's figures are wanted.
    let report_only = flags.contains(&"report-only");
    let month_start = at("2026-11-01T00:00:00Z").as_ns();
    let month_ns: i64 = 30 * 86_400 * 1_000_000_000;
    let setup = Instant::now();
    let mut chunk = Vec::with_capacity(REPORTS_PER_BATCH as usize);
    let mut batch_no = 0u64;
    for n in 0..sla_calls {
        let start =
            month_start + (i128::from(month_ns) * i128::from(n) / i128::from(sla_calls)) as i64;
        let mut r = report("sla-0", n, true, 0);
        if distinct {
            let (mos, loss) = distinct_values(n);
            r.mos = Some(mos);
            r.effective_loss_pct = loss;
            if let Some(totals) = r.totals.as_mut() {
                totals.mos = Some(mos);
                totals.effective_loss_pct = loss;
            }
        }
        r.window_start = Timestamp::from_ns(start);
        r.window_end = Timestamp::from_ns(start + 5 * NS_PER_S);
        chunk.push(r);
        if chunk.len() == REPORTS_PER_BATCH as usize || n + 1 == sla_calls {
            let batch = Batch {
                schema: voqa_wire::SCHEMA_VERSION,
                batch_id: format!("00000000-0000-4000-9000-{batch_no:012x}"),
                agent_id: "sla-0".into(),
                sent_at: at("2026-12-01T00:00:00Z"),
                reports: std::mem::take(&mut chunk),
                heartbeats: vec![],
                calls: Vec::new(),
            };
            let scopes = voqa_collector::sla::report_scopes(&customers, &batch.reports);
            state_store
                .ingest_scoped(&batch, month_start + month_ns, &scopes)
                .await?;
            batch_no += 1;
        }
    }
    let load_secs = setup.elapsed().as_secs_f64();
    let analyze = Instant::now();
    state_store.refresh_statistics().await?;
    println!(
        "setup: {sla_calls} calls stored in {load_secs:.1} s; planner statistics refreshed in {:.2} s",
        analyze.elapsed().as_secs_f64()
    );
    let client = http_client();
    for (what, customer, query) in [
        (
            "month, aggregates",
            "acme",
            "from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z",
        ),
        (
            "month, aggregates, not hour-aligned",
            "acme",
            "from=2026-11-01T00:30:00Z&to=2026-11-30T23:45:00Z",
        ),
        (
            "month, aggregates (again)",
            "acme",
            "from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z",
        ),
        (
            "month, scoped aggregates (subnet-narrowed customer)",
            "acme-media",
            "from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z",
        ),
        (
            "month, from reports (subnets changed after the data)",
            "acme-subnets",
            "from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z",
        ),
    ] {
        if report_only && customer == "acme-subnets" {
            continue;
        }
        let started = Instant::now();
        let resp = client
            .get(format!(
                "http://{addr}/api/v1/customers/{customer}/sla?{query}"
            ))
            .bearer_auth(&ops_token)
            .send()
            .await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await?;
        let secs = started.elapsed().as_secs_f64();
        if !status.is_success() {
            anyhow::bail!("SLA {what}: {status} {body}");
        }
        let p95 = body["commitments"][2]["measured"].clone();
        println!(
            "SLA {what}: {} calls, jitter p95 {p95} ms over {} packets, in {secs:.3} s",
            body["calls"], body["commitments"][2]["evidence"]["samples"]
        );
    }
    // 3. The customer report of the month in each form but PDF (Chromium's time is not ours),
    // JSON and HTML three times each (the figure is their range), the CSV once.
    for format in ["json", "html", "json", "html", "json", "html", "csv"] {
        let started = Instant::now();
        let resp = client
            .get(format!(
                "http://{addr}/api/v1/customers/acme/report?period=2026-11&format={format}"
            ))
            .bearer_auth(&ops_token)
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        let secs = started.elapsed().as_secs_f64();
        if !status.is_success() {
            anyhow::bail!(
                "report {format}: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        println!(
            "report {format} of the month: {} bytes in {secs:.3} s",
            body.len()
        );
    }
    Ok(())
}

/// Call `n`'s own MOS and loss for a `distinct` month: from a SplitMix64 hash of `n`, rounded
/// to six decimals as agents write them. MOS uniform over [3.0, 4.41) (nearly every call a
/// value of its own); loss 5·u⁴ % (median 0.3 %, a long tail up to 5 %).
fn distinct_values(n: u64) -> (f64, f64) {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let u = (z >> 11) as f64 / (1u64 << 53) as f64;
    let v = (z & 0xFFFF_FFFF) as f64 / 4_294_967_296.0;
    let r6 = |x: f64| (x * 1e6).round() / 1e6;
    (r6(3.0 + 1.41 * u), r6(5.0 * v.powi(4)))
}

/// A time written in this file (always valid; the epoch stands in should one not be).
fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap_or(Timestamp::EPOCH)
}

/// An HTTP client. reqwest is built with rustls but without a crypto provider of its own (no
/// aws-lc in the tree): ring is installed as the process's provider first.
fn http_client() -> reqwest::Client {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
