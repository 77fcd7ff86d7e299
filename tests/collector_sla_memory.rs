//! SLA evaluation in bounded memory (issue 10 item 10), over a real SQLite store and real HTTP
//! on 127.0.0.1:0:
//! - the report-based path (a subnet-narrowed customer whose scope was registered after the
//!   period began) streams the period page by page and gives what the aggregates give, with
//!   calls whose streams end pages apart and more breaching calls than the evidence lists;
//! - what the fold keeps does not grow with the number of reports;
//! - SLA evaluations beyond the limits, in total and per token, are answered 429 with
//!   `Retry-After`: the limiter's permits are held by the test itself, so there is no race.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use voqa_collector::api::sla_limit::{SlaLimiter, token_key};
use voqa_collector::api::{self, AppState};
use voqa_collector::auth::hash_token;
use voqa_collector::config::CollectorConfig;
use voqa_collector::facts::{self, REPORT_PAGE};
use voqa_collector::sla::{self, ReportFold};
use voqa_collector::store::Store;
use voqa_wire::fixtures;
use voqa_wire::time::NS_PER_S;
use voqa_wire::{StreamReport, StreamSummary, Timestamp, Transitions};

const COMMITMENTS: &str = "[customers.commitments]\nmos_min = 4.0\ncalls_meeting_pct = 95.0\nloss_max_pct = 1.0\njitter_p95_max_ms = 30.0\nuptime_min_pct = 99.95\n";

const OPS: &str = "ops-token";
const ACME: &str = "acme-token";
const AGENT: &str = "fra-media-1";
const DAY: &str = "from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z";

fn config() -> CollectorConfig {
    CollectorConfig::parse(&format!(
        "[[customers]]\nid = \"acme\"\nname = \"ACME\"\nagents = [\"{AGENT}\"]\n{COMMITMENTS}\n\
         [[customers]]\nid = \"acme-subnets\"\nname = \"ACME media peers\"\nagents = [\"{AGENT}\"]\n\
         subnets = [\"203.0.113.0/24\"]\n{COMMITMENTS}"
    ))
    .expect("config")
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).expect(text)
}

/// A window histogram of 100 packets at `jitter_us`.
fn histogram(jitter_us: u64) -> String {
    let mut h = voqa_wire::histogram::new_jitter_histogram();
    h.record_n(jitter_us, 100).expect("in range");
    voqa_wire::histogram::HistogramEncoder::new()
        .encode(&h)
        .expect("encodes")
}

/// A 10 s window of `stream` of `call` from `start`; final with `(mos, loss)` totals.
fn report(
    stream: &str,
    call: &str,
    start: Timestamp,
    jitter: &str,
    figures: Option<(f64, f64)>,
) -> StreamReport {
    StreamReport {
        agent_id: AGENT.into(),
        stream_id: stream.into(),
        src: "203.0.113.7:40000".into(),
        dst: "198.51.100.20:50000".into(),
        ssrc: "0x00000001".into(),
        payload_type: 0,
        codec: "PCMU".into(),
        clock_rate: Some(8000),
        call_id: Some(call.into()),
        window_start: start,
        window_end: start.saturating_add_ns(10 * NS_PER_S),
        is_final: figures.is_some(),
        end_reason: figures.map(|_| "bye".into()),
        packets: 100,
        expected: 100,
        lost: 0,
        duplicates: 0,
        reordered: 0,
        jitter_ms: Some(1.0),
        max_jitter_ms: Some(1.0),
        mean_jitter_ms: Some(1.0),
        jitter_sum_ms: 100.0,
        jitter_samples: 100,
        jitter_histogram: Some(jitter.to_owned()),
        max_delta_ms: 20.0,
        transitions: Transitions::default(),
        burst_ratio: 1.0,
        jb_discarded: 0,
        effective_loss_pct: 0.0,
        rtt_ms: None,
        delay_ms: None,
        r_factor: None,
        mos: figures.map(|(mos, _)| mos),
        capture_drops: 0,
        totals: figures.map(|(mos, loss)| StreamSummary {
            src: "203.0.113.7:40000".into(),
            dst: "198.51.100.20:50000".into(),
            ssrc: "0x00000001".into(),
            payload_type: 0,
            codec: "PCMU".into(),
            clock_rate: Some(8000),
            call_id: Some(call.into()),
            first_seen: start,
            last_seen: start,
            packets: 1500,
            expected: 1500,
            lost: 0,
            duplicates: 0,
            reordered: 0,
            jitter_ms: None,
            max_jitter_ms: None,
            mean_jitter_ms: None,
            max_delta_ms: 20.0,
            burst_ratio: 1.0,
            jb_discarded: 0,
            effective_loss_pct: loss,
            rtt_ms: None,
            r_factor: None,
            mos: Some(mos),
            loss_bursts: 0,
            max_loss_burst: 0,
            lost_rfc3550: 0,
            delay_ms: None,
            delay_source: "assumed".into(),
            clock_source: "static".into(),
            detection: "sdp".into(),
            jitter_buffer: "fixed:60".into(),
            ie: None,
            bpl: None,
            flags: vec![],
            media: "audio".into(),
            srtp: false,
            clock_inference: None,
        }),
    }
}

struct Server {
    base: String,
    store: Store,
    client: reqwest::Client,
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

/// A collector on a fresh SQLite store counting SLA evaluations in `limiter`; the
/// subnet-narrowed customer's scope is registered now, as at a server start, so the past is
/// evaluated from stream reports.
async fn start(limiter: Arc<SlaLimiter>) -> Server {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite:{}", dir.path().join("voqa.db").display());
    let store = Store::open(&url).await.expect("store");
    for (id, token, role) in [("o1", OPS, "ops"), ("c1", ACME, "customer:acme")] {
        store
            .token_insert(id, &hash_token(token), role, 0)
            .await
            .expect("token");
    }
    let config = config();
    facts::register_scopes(&store, &config.customers, voqa_collector::now_ns()).await;
    let state = AppState {
        store: store.clone(),
        config: config.into(),
        metrics: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = api::router_with_sla_limiter(state, limiter);
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    Server {
        base: format!("http://{addr}"),
        store,
        client: reqwest::Client::new(),
        _dir: dir,
        shutdown: Some(tx),
    }
}

/// GET with a token: status, `Retry-After` and JSON body.
async fn get(s: &Server, token: &str, path: &str) -> (u16, Option<String>, Value) {
    let response = s
        .client
        .get(format!("{}{path}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

fn commitment<'a>(evaluation: &'a Value, name: &str) -> &'a Value {
    evaluation["commitments"]
        .as_array()
        .expect("commitments")
        .iter()
        .find(|c| c["name"] == name)
        .expect("commitment")
}

/// 700 calls on 2026-11-20, one a minute from midnight. Stream a: an interval window and a
/// final one 10 s later, MOS 4.3, loss 0.1 %. Stream b: its final 5 hours later (so the two
/// finals of a call are hundreds of reports, several pages, apart), MOS 3.5 + (i % 7) / 100
/// for even calls (350 breaching calls: more than the evidence lists hold, ties between
/// calls of equal value), else 4.2; loss 2 % for every 50th call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_report_path_equals_the_aggregates_across_pages() {
    let s = start(SlaLimiter::new(8, 4)).await;
    let midnight = at("2026-11-20T00:00:00Z");
    let jitter = [histogram(1_000), histogram(3_000), histogram(45_000)];
    let mut reports = Vec::new();
    for i in 0..700i64 {
        let call = format!("call-{i:03}");
        let start = midnight.saturating_add_ns(i * 60 * NS_PER_S);
        let h = &jitter[(i % 3) as usize];
        let a = format!("{call}-a");
        let b = format!("{call}-b");
        reports.push(report(&a, &call, start, h, None));
        reports.push(report(
            &a,
            &call,
            start.saturating_add_ns(10 * NS_PER_S),
            h,
            Some((4.3, 0.1)),
        ));
        let mos_b = if i % 2 == 0 {
            3.5 + (i % 7) as f64 / 100.0
        } else {
            4.2
        };
        let loss_b = if i % 50 == 0 { 2.0 } else { 0.1 };
        reports.push(report(
            &b,
            &call,
            start.saturating_add_ns(5 * 3600 * NS_PER_S),
            h,
            Some((mos_b, loss_b)),
        ));
    }
    assert!(reports.len() > 2 * REPORT_PAGE as usize);
    for (n, chunk) in reports.chunks(500).enumerate() {
        let batch = fixtures::batch(n as u64, AGENT, chunk.to_vec(), vec![]);
        s.store
            .ingest(&batch, midnight.as_ns())
            .await
            .expect("ingest");
    }

    let (status, _, fast) = get(&s, ACME, &format!("/api/v1/customers/acme/sla?{DAY}")).await;
    assert_eq!(status, 200, "{fast}");
    let (status, _, slow) = get(
        &s,
        OPS,
        &format!("/api/v1/customers/acme-subnets/sla?{DAY}"),
    )
    .await;
    assert_eq!(status, 200, "{slow}");
    // The slow path read every report window by window.
    let jitter_evidence = &commitment(&slow, "jitter_p95")["evidence"];
    assert_eq!(jitter_evidence["single_windows"], 2100, "{jitter_evidence}");
    assert_eq!(jitter_evidence["hourly_rollups"], 0);
    for e in [&fast, &slow] {
        assert_eq!(e["calls"], 700, "{e}");
        assert_eq!(e["reports_used"], 2100, "{e}");
        let mos = commitment(e, "mos");
        assert_eq!(mos["evidence"]["breaching"], 350, "{mos}");
        assert_eq!(mos["measured"], 50.0);
        let listed = mos["evidence"]["calls"].as_array().expect("calls");
        assert_eq!(listed.len(), sla::EVIDENCE_LIMIT);
        // Worst first: MOS 3.5 for i % 14 == 0 (50 calls: 0, 14, …, 686), by call id.
        assert_eq!(listed[0]["call_id"], "call-000");
        assert_eq!(listed[0]["worst_stream"], "call-000-b");
        assert_eq!(listed[0]["value"], 3.5);
        assert_eq!(listed[49]["call_id"], "call-686");
        assert_eq!(listed[50]["value"], 3.51);
        let loss = commitment(e, "loss");
        assert_eq!(loss["evidence"]["breaching"], 14, "{loss}");
        assert_eq!(loss["evidence"]["calls"][0]["call_id"], "call-000");
        // p95 of 210,000 packets, a third each at 1, 3 and 45 ms: 45 ms's bucket.
        assert_eq!(commitment(e, "jitter_p95")["met"], false);
    }
    for name in ["mos", "loss"] {
        assert_eq!(
            commitment(&fast, name),
            commitment(&slow, name),
            "{name}: aggregates and streamed reports disagree"
        );
    }
    assert_eq!(
        commitment(&fast, "jitter_p95")["measured"],
        commitment(&slow, "jitter_p95")["measured"]
    );
}

/// What the fold keeps is the same after 100 reports per call as after one: it keeps per
/// call, not per report.
#[test]
fn fold_state_does_not_grow_with_reports() {
    let customer = config().customer("acme-subnets").expect("customer").clone();
    let from = at("2026-11-20T00:00:00Z");
    let h = histogram(2_000);
    let retained = |windows_per_call: i64| {
        let mut fold = ReportFold::new(&customer, from.as_ns(), from.as_ns() + 86_400 * NS_PER_S);
        for call in 0..200i64 {
            let id = format!("call-{call}");
            let stream = format!("{id}-a");
            let start = from.saturating_add_ns(call * NS_PER_S);
            for w in 0..windows_per_call {
                let window = start.saturating_add_ns(w * 10 * NS_PER_S);
                fold.add(&report(&stream, &id, window, &h, None));
            }
            // Every call breaches: the evidence lists are full.
            fold.add(&report(&stream, &id, start, &h, Some((3.0, 5.0))));
        }
        let bytes = fold.retained_bytes();
        let facts = fold.finish();
        assert_eq!(facts.calls.calls, 200);
        assert_eq!(facts.reports_used, 200 * (windows_per_call as u64 + 1));
        assert_eq!(facts.calls.low_mos.len(), sla::EVIDENCE_LIMIT);
        bytes
    };
    let few = retained(1);
    let many = retained(100);
    assert_eq!(few, many, "retained bytes after 400 and 20,200 reports");
    // 200 calls: a 256-slot table and two lists of 100 calls with their strings.
    assert!(many < 64 * 1024, "{many} bytes");
}

/// Limits 2 in total and 1 per token; the test holds permits itself, so each refusal is
/// certain, and the permits of answered requests are back once their answer arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_beyond_the_limits_get_429_with_retry_after() {
    let limiter = SlaLimiter::new(2, 1);
    let s = start(Arc::clone(&limiter)).await;
    let path = format!("/api/v1/customers/acme/sla?{DAY}");
    let key = |token: &str| {
        let mut headers = axum::http::HeaderMap::new();
        let value = format!("Bearer {token}");
        headers.insert(
            axum::http::header::AUTHORIZATION,
            value.parse().expect("header"),
        );
        token_key(&headers)
    };

    // ACME's one evaluation is running: ACME is refused, ops is not.
    let held = limiter.try_acquire(&key(ACME)).expect("permit");
    let (status, retry_after, body) = get(&s, ACME, &path).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(body["error"]["code"], "too_many_requests");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("this token")),
        "{body}"
    );
    let (status, _, body) = get(&s, OPS, &path).await;
    assert_eq!(status, 200, "{body}");

    // Two evaluations running (ACME's and another token's): everyone is refused.
    let other = limiter.try_acquire("another token").expect("permit");
    let (status, retry_after, body) = get(&s, OPS, &path).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("2 SLA evaluations are running")),
        "{body}"
    );

    // Refusals cost no permit; answered requests gave theirs back.
    assert_eq!(limiter.in_flight(), 2);
    drop((held, other));
    let (status, _, body) = get(&s, ACME, &path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer"], "acme");
    assert_eq!(limiter.in_flight(), 0);

    // Authentication comes first: a bad token is 401, not a refusal for load.
    let _a = limiter.try_acquire("x").expect("permit");
    let _b = limiter.try_acquire("y").expect("permit");
    let (status, _, _) = get(&s, "no-such-token", &path).await;
    assert_eq!(status, 401);
}
