//! Helper of `benches/sla_memory.sh`: memory of SLA evaluation on the report-based path.
//!
//! `fill sqlite:PATH REPORTS` stores REPORTS stream reports (default 200,000) of agent
//! `fra-media-1` in November 2026 through the store's ingest code: calls of two streams, an
//! interval window and a final report each, every report with a per-packet jitter histogram
//! as agents ship them. No customer scope is registered, so customer `acme` (narrowed to
//! subnets) has its scope registered only when the collector starts, after the period began:
//! its November is evaluated from the stream reports. Also creates 20 tokens
//! `bench-acme-0` … `bench-acme-19` of role `customer:acme`.
//!
//! `fire BASE_URL REQUESTS TOKENS` sends REQUESTS concurrent GETs of acme's November SLA,
//! spread over the first TOKENS tokens, and prints how many got which status, the first
//! failure other than 429, and how long the slowest took; it fails if two successful answers
//! differ.
//!
//! Usage: see benches/sla_memory.sh.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;
use voqa_collector::auth::hash_token;
use voqa_collector::store::Store;
use voqa_wire::time::NS_PER_S;
use voqa_wire::{Batch, StreamReport, Timestamp, fixtures};

const AGENT: &str = "fra-media-1";
const TOKENS: usize = 20;
const BATCH: usize = 1_000;
/// The period every request asks for.
pub const PERIOD: &str = "from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z";

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap_or(Timestamp::EPOCH)
}

/// Eight window histograms of 500 packets like an agent's (a few neighbouring jitter bins).
fn histograms() -> Vec<String> {
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
}

/// Report `k` (0..4) of call `n`: streams a and b, each an interval window then a final one.
fn report(n: u64, k: u64, start: Timestamp, histogram: &str) -> StreamReport {
    let call = format!("call-{n:08}@pbx.example.com");
    let direction = k / 2;
    let is_final = k % 2 == 1;
    let src = format!("203.0.113.{}:{}", 1 + n % 200, 40_000 + 2 * direction);
    // 1 in 20 calls at MOS 3.6 on stream b; 1 in 500 with 1.5 % loss.
    let mos = if direction == 1 && n.is_multiple_of(20) {
        3.6
    } else {
        4.3
    };
    let loss = if direction == 1 && n.is_multiple_of(500) {
        1.5
    } else {
        0.2
    };
    let window_start = start.saturating_add_ns(if is_final { 20 * NS_PER_S } else { 0 });
    let window_end = window_start.saturating_add_ns(20 * NS_PER_S);
    let stream = format!("{n:014x}{direction:02x}");
    let r = fixtures::final_report(AGENT, &stream, &call, window_start, window_end, 501, mos);
    let mut r = fixtures::with_loss(r, 1);
    r.src = src.clone();
    r.jitter_histogram = Some(histogram.to_owned());
    if let Some(t) = r.totals.as_mut() {
        // The whole stream: both windows, and its own loss.
        (t.src, t.first_seen, t.effective_loss_pct) = (src, start, loss);
    }
    if is_final { r } else { fixtures::interval(r) }
}

async fn fill(url: &str, reports: u64) -> anyhow::Result<()> {
    let store = Store::open(url).await.context("opening the store")?;
    for i in 0..TOKENS {
        let token = format!("bench-acme-{i}");
        store
            .token_insert(&format!("t{i}"), &hash_token(&token), "customer:acme", 0)
            .await?;
    }
    let histograms = histograms();
    let calls = reports.div_ceil(4);
    let month_start = at("2026-11-01T00:00:00Z").as_ns();
    let month_ns: i64 = 29 * 86_400 * NS_PER_S;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    let mut batch_no = 0u64;
    let mut stored = 0u64;
    for n in 0..calls {
        let start = Timestamp::from_ns(
            month_start + (i128::from(month_ns) * i128::from(n) / i128::from(calls)) as i64,
        );
        for k in 0..4 {
            if stored == reports {
                break;
            }
            batch.push(report(n, k, start, &histograms[(n % 8) as usize]));
            stored += 1;
        }
        if batch.len() >= BATCH || stored == reports {
            let b = Batch {
                schema: voqa_wire::SCHEMA_VERSION,
                batch_id: format!("00000000-0000-4000-8000-{batch_no:012x}"),
                agent_id: AGENT.into(),
                sent_at: start,
                reports: std::mem::take(&mut batch),
                heartbeats: vec![],
                calls: Vec::new(),
            };
            store.ingest(&b, start.as_ns()).await?;
            batch_no += 1;
        }
    }
    println!(
        "filled {url}: {stored} stream reports of {calls} calls in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn fire(base: &str, requests: usize, tokens: usize) -> anyhow::Result<()> {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..requests {
        let client = client.clone();
        let url = format!("{base}/api/v1/customers/acme/sla?{PERIOD}");
        let token = format!("bench-acme-{}", i % tokens.clamp(1, TOKENS));
        tasks.push(tokio::spawn(async move {
            let response = client.get(url).bearer_auth(token).send().await?;
            let status = response.status().as_u16();
            let body = response.text().await?;
            Ok::<_, reqwest::Error>((status, body, started.elapsed()))
        }));
    }
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut answer: Option<serde_json::Value> = None;
    let mut slowest = std::time::Duration::ZERO;
    let mut failure = None;
    for task in tasks {
        let (status, body, elapsed) = task.await??;
        *statuses.entry(status).or_default() += 1;
        slowest = slowest.max(elapsed);
        if status == 200 {
            let value: serde_json::Value = serde_json::from_str(&body)?;
            match &answer {
                None => answer = Some(value),
                Some(first) if *first != value => anyhow::bail!("two answers differ"),
                Some(_) => {}
            }
        } else if status != 429 && failure.is_none() {
            failure = Some(format!("status {status}: {body}"));
        }
    }
    let summary = answer.as_ref().map(|a| {
        format!(
            "calls {} reports_used {} mos measured {}",
            a["calls"], a["reports_used"], a["commitments"][0]["measured"]
        )
    });
    println!(
        "{requests} concurrent requests over {} token(s): statuses {statuses:?}, slowest {:.1} s; {}",
        tokens.clamp(1, TOKENS),
        slowest.as_secs_f64(),
        summary.unwrap_or_default()
    );
    if let Some(failure) = failure {
        println!("first failure: {failure}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(1), arg(2)) {
        (Some("fill"), Some(url)) => {
            let reports = arg(3).and_then(|v| v.parse().ok()).unwrap_or(200_000);
            fill(url, reports).await
        }
        (Some("fire"), Some(base)) => {
            let requests = arg(3).and_then(|v| v.parse().ok()).unwrap_or(20);
            let tokens = arg(4).and_then(|v| v.parse().ok()).unwrap_or(TOKENS);
            fire(base, requests, tokens).await
        }
        _ => anyhow::bail!(
            "usage: sla-memory fill sqlite:PATH [REPORTS] | fire BASE_URL [REQUESTS] [TOKENS]"
        ),
    }
}
