//! The SLA answer over real HTTP (a collector on 127.0.0.1:0, SQLite store): verdicts that
//! are true. A fresh collector answers "no data", not a breach; a period reaching into the
//! future is judged up to now only (`evaluated_until`); an agent that reported from mid-period
//! and then fell silent is down only after it had reported, with the time before listed as no
//! data; the MOS threshold and each commitment's coverage are in the answer as data.
//!
//! Data is written straight into the store (the ingest API is tested elsewhere), so these
//! tests need only an ops token.

use std::sync::Arc;

use serde_json::Value;
use voqa_collector::api::{self, AppState};
use voqa_collector::auth::hash_token;
use voqa_collector::config::CollectorConfig;
use voqa_collector::store::Store;
use voqa_wire::fixtures;
use voqa_wire::{Heartbeat, Timestamp};

const OPS: &str = "ops-token-sla";
const SECOND: i64 = 1_000_000_000;

/// One customer, one agent, an uptime commitment; no maintenance, so every figure below is
/// simple arithmetic.
const CONFIG: &str = r#"
[[customers]]
id = "acme"
name = "ACME Contact Centre"
agents = ["fra-media-1"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
"#;

struct Server {
    base: String,
    store: Store,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A fresh collector: an empty SQLite store with one ops token.
async fn start() -> Server {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite:{}", dir.path().join("voqa.db").display());
    let store = Store::open(&url).await.expect("store");
    store
        .token_insert("o1", &hash_token(OPS), "ops", 0)
        .await
        .expect("token");
    let state = AppState {
        store: store.clone(),
        config: CollectorConfig::parse(CONFIG).expect("config").into(),
        metrics: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api::serve(listener, state, async move {
        let _ = rx.await;
    }));
    Server {
        base: format!("http://{addr}"),
        store,
        _dir: dir,
        shutdown: Some(tx),
    }
}

/// An HTTP client; ring is installed as the process's rustls provider (no aws-lc).
fn http_client() -> reqwest::Client {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn get(s: &Server, path: &str) -> (u16, Value) {
    let resp = http_client()
        .get(format!("{}{path}", s.base))
        .bearer_auth(OPS)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn heartbeat(time_ns: i64) -> Heartbeat {
    fixtures::heartbeat("fra-media-1", Timestamp::from_ns(time_ns))
}

/// Stores heartbeats of fra-media-1 every 15 s in `[from_ns, to_ns)`.
async fn heartbeats_every_15_s(store: &Store, from_ns: i64, to_ns: i64) {
    let beats: Vec<Heartbeat> = (from_ns..to_ns)
        .step_by((15 * SECOND) as usize)
        .map(heartbeat)
        .collect();
    let id = u64::try_from(from_ns.rem_euclid(1 << 40)).unwrap_or(0);
    let batch = fixtures::batch(id, "fra-media-1", vec![], beats);
    store.ingest(&batch, to_ns).await.expect("ingest");
}

fn commitment<'a>(sla: &'a Value, name: &str) -> &'a Value {
    sla["commitments"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {sla}"))
}

fn ns(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

fn now_ns() -> i64 {
    voqa_collector::now_ns()
}

/// The issue's first-use run: a fresh collector, a customer with an uptime commitment.
/// It answered `measured 0.0, met false, 0.0000 % up: 2556000 s down`.
#[tokio::test]
async fn a_fresh_collector_has_no_data_not_a_breach() {
    let s = start().await;
    for query in ["", "?from=2026-11-01&to=2026-12-01"] {
        let (status, sla) = get(&s, &format!("/api/v1/customers/acme/sla{query}")).await;
        assert_eq!(status, 200, "{sla}");
        assert_eq!(sla["verdict"], "no_data", "{query}: {sla}");
        assert_eq!(
            sla["commitments_without_data"],
            serde_json::json!(["mos", "loss", "jitter_p95", "uptime"])
        );
        let uptime = commitment(&sla, "uptime");
        assert_eq!(uptime["verdict"], "no_data", "{uptime}");
        assert_eq!(uptime["met"], Value::Null, "{uptime}");
        assert_eq!(uptime["measured"], Value::Null, "{uptime}");
        assert_eq!(
            uptime["reason"],
            "no heartbeat from the customer's agents before or in the period"
        );
        assert_eq!(uptime["coverage"], 0.0);
        assert_eq!(uptime["evidence"]["downtime_s"], 0.0);
        assert!(
            !uptime["detail"].as_str().unwrap_or("").contains("% up"),
            "{uptime}"
        );
        assert_eq!(sla["gaps"]["outages_total"], 0);
        assert_eq!(sla["gaps"]["no_data_total"], 1);
        assert_eq!(sla["gaps"]["no_data"][0]["agent"], "fra-media-1");
        assert_eq!(
            sla["gaps"]["no_data"][0]["reason"],
            "agent has never reported"
        );
        // The MOS threshold is data.
        let mos = commitment(&sla, "mos");
        assert_eq!(
            (mos["mos_min"].as_f64(), mos["target"].as_f64()),
            (Some(4.0), Some(95.0))
        );
        assert_eq!(mos["reason"], "no calls in the period");
    }
    // A period of the past is evaluated to its end.
    let (_, sla) = get(
        &s,
        "/api/v1/customers/acme/sla?from=2026-11-01&to=2026-12-01",
    )
    .await;
    assert_eq!(sla["evaluated_until"], "2026-12-01T00:00:00.000000Z");
    // No data is no metric: neither met (1) nor breached (0).
    let resp = http_client()
        .get(format!("{}/metrics", s.base))
        .bearer_auth(OPS)
        .send()
        .await
        .expect("metrics");
    let text = resp.text().await.unwrap_or_default();
    assert!(text.contains("voqa_sla_met"), "{text}");
    assert!(!text.contains("commitment=\"uptime\""), "{text}");
}

/// `?to=` in the future: judged up to now. The agent has reported every 15 s for the last
/// hour (and a few minutes ahead, as a clock slightly fast would): up all along, so 100 %.
#[tokio::test]
async fn the_future_is_not_downtime() {
    let s = start().await;
    let now = now_ns();
    // Whole seconds, so that the query's times are exact.
    let first = (now - 3600 * SECOND).div_euclid(SECOND) * SECOND;
    heartbeats_every_15_s(&s.store, first, now + 240 * SECOND).await;
    let from = first - 3600 * SECOND;
    let to = first + 3600 * SECOND + 86_400 * SECOND;
    let query = format!(
        "/api/v1/customers/acme/sla?from={}&to={}",
        Timestamp::from_ns(from),
        Timestamp::from_ns(to)
    );
    let before = now_ns();
    let (status, sla) = get(&s, &query).await;
    let after = now_ns();
    assert_eq!(status, 200, "{sla}");
    let until = ns(&sla["evaluated_until_ns"]);
    assert!(
        (before..=after).contains(&until),
        "evaluated until {until}, asked between {before} and {after}: {sla}"
    );
    assert_eq!(ns(&sla["to_ns"]), to);
    let uptime = commitment(&sla, "uptime");
    assert_eq!(uptime["verdict"], "met", "{uptime}");
    assert_eq!(uptime["measured"], 100.0, "{uptime}");
    assert_eq!(uptime["evidence"]["downtime_s"], 0.0, "{uptime}");
    // The hour before the agent's first heartbeat is no data: coverage is the rest.
    let expected = (until - first) as f64 / (until - from) as f64;
    assert_eq!(uptime["coverage"].as_f64(), Some(expected), "{uptime}");
    assert_eq!(sla["gaps"]["no_data_total"], 1);
    assert_eq!(ns(&sla["gaps"]["no_data"][0]["start_ns"]), from);
    assert_eq!(ns(&sla["gaps"]["no_data"][0]["end_ns"]), first);
    // Met on what could be measured; the call commitments had nothing to measure.
    assert_eq!(sla["verdict"], "met", "{sla}");
    assert_eq!(
        sla["commitments_without_data"],
        serde_json::json!(["mos", "loss", "jitter_p95"])
    );

    // A period entirely in the future: nothing to judge.
    let query = format!(
        "/api/v1/customers/acme/sla?from={}&to={}",
        Timestamp::from_ns(to - 3600 * SECOND),
        Timestamp::from_ns(to)
    );
    let (status, sla) = get(&s, &query).await;
    assert_eq!(status, 200, "{sla}");
    assert_eq!(sla["verdict"], "no_data", "{sla}");
    let uptime = commitment(&sla, "uptime");
    assert_eq!(
        uptime["reason"], "the period lies in the future",
        "{uptime}"
    );
    assert_eq!(ns(&sla["evaluated_until_ns"]), to - 3600 * SECOND);
}

/// The agent first reports at 08:00 on 23 Nov, every 15 s until 09:59:45, then falls
/// silent. Over that day: 00:00-08:00 is no data; down from 09:59:45 to midnight.
#[tokio::test]
async fn reporting_from_mid_period_then_silent() {
    let s = start().await;
    let at = |text: &str| Timestamp::parse(text).map(Timestamp::as_ns).expect(text);
    heartbeats_every_15_s(
        &s.store,
        at("2026-11-23T08:00:00Z"),
        at("2026-11-23T10:00:00Z"),
    )
    .await;
    let (status, sla) = get(
        &s,
        "/api/v1/customers/acme/sla?from=2026-11-23&to=2026-11-24",
    )
    .await;
    assert_eq!(status, 200, "{sla}");
    let uptime = commitment(&sla, "uptime");
    // Measured 16 h = 57,600 s; down 09:59:45 → 24:00 = 50,415 s; up 7,185 s.
    assert_eq!(uptime["evidence"]["measured_s"], 57_600.0, "{uptime}");
    assert_eq!(uptime["evidence"]["downtime_s"], 50_415.0, "{uptime}");
    assert_eq!(
        uptime["measured"].as_f64(),
        Some(7_185.0 / 57_600.0 * 100.0),
        "{uptime}"
    );
    assert_eq!(uptime["verdict"], "breached");
    assert_eq!(uptime["met"], false);
    assert_eq!(uptime["coverage"], 57_600.0 / 86_400.0);
    let outages = &sla["gaps"]["outages"];
    assert_eq!(sla["gaps"]["outages_total"], 1, "{sla}");
    assert_eq!(outages[0]["start"], "2026-11-23T09:59:45.000000Z");
    assert_eq!(outages[0]["end"], "2026-11-24T00:00:00.000000Z");
    assert_eq!(outages[0]["reason"], "no heartbeat");
    assert_eq!(
        sla["gaps"]["no_data"][0]["start"],
        "2026-11-23T00:00:00.000000Z"
    );
    assert_eq!(
        sla["gaps"]["no_data"][0]["end"],
        "2026-11-23T08:00:00.000000Z"
    );
    assert_eq!(
        sla["gaps"]["no_data"][0]["reason"],
        "before the agent's first heartbeat"
    );
    assert_eq!(sla["verdict"], "breached");
    // The day before the agent's first heartbeat ever: no data, not down.
    let (_, sla) = get(
        &s,
        "/api/v1/customers/acme/sla?from=2026-11-22&to=2026-11-23",
    )
    .await;
    assert_eq!(commitment(&sla, "uptime")["verdict"], "no_data", "{sla}");
    assert_eq!(
        commitment(&sla, "uptime")["reason"],
        "no heartbeat from the customer's agents before or in the period"
    );
    // The next day it has reported before and is silent throughout: down all day.
    let (_, sla) = get(
        &s,
        "/api/v1/customers/acme/sla?from=2026-11-24&to=2026-11-25",
    )
    .await;
    assert_eq!(commitment(&sla, "uptime")["measured"], 0.0, "{sla}");
    assert_eq!(commitment(&sla, "uptime")["verdict"], "breached");
}
