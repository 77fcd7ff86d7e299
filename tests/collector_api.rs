//! The collector's HTTP API over real HTTP (127.0.0.1:0) on a SQLite store: every endpoint and
//! every role, refusals included; bad bodies (malformed JSON, wrong schema, oversize, wrong
//! encoding, out-of-range values) each get their 4xx and store nothing; idempotent ingest; the
//! OpenAPI document matches the real routes; and kill -9 during ingest loses no acknowledged batch.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use voqa_collector::api::{self, AppState, openapi::ROUTES};
use voqa_collector::auth::hash_token;
use voqa_collector::config::CollectorConfig;
use voqa_collector::store::Store;
use voqa_wire::{Batch, Heartbeat, StreamReport, StreamSummary, Transitions, WorkerCounters};

const CONFIG: &str = r#"
max_body_bytes = 200000
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

[[customers]]
id = "globex"
name = "Globex"
agents = ["nyc-media-1"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
"#;

struct Server {
    base: String,
    _dir: tempfile::TempDir,
    store: Store,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

const AGENT: &str = "agent-token";
const OPS: &str = "ops-token";
const ACME: &str = "acme-token";
const GLOBEX: &str = "globex-token";

async fn start() -> Server {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite:{}", dir.path().join("voqa.db").display());
    let store = Store::open(&url).await.expect("store");
    for (id, token, role) in [
        ("a1", AGENT, "agent"),
        ("o1", OPS, "ops"),
        ("c1", ACME, "customer:acme"),
        ("c2", GLOBEX, "customer:globex"),
    ] {
        store
            .token_insert(id, &hash_token(token), role, 0)
            .await
            .expect("token");
    }
    let config = CollectorConfig::parse(CONFIG).expect("config");
    let state = AppState {
        store: store.clone(),
        config: Arc::new(config),
        metrics: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api::serve(listener, state, async move {
        let _ = rx.await;
    }));
    Server {
        base: format!("http://{addr}"),
        _dir: dir,
        store,
        shutdown: Some(tx),
    }
}

fn report(
    agent: &str,
    stream: &str,
    call: &str,
    start: &str,
    end: &str,
    is_final: bool,
    mos: f64,
) -> StreamReport {
    let totals = StreamSummary {
        src: "203.0.113.5:40000".into(),
        dst: "198.51.100.20:50000".into(),
        ssrc: "0x00000001".into(),
        payload_type: 0,
        codec: "PCMU".into(),
        clock_rate: Some(8000),
        call_id: Some(call.into()),
        first_seen: start.into(),
        last_seen: end.into(),
        packets: 500,
        expected: 500,
        lost: 0,
        duplicates: 0,
        reordered: 0,
        jitter_ms: Some(1.0),
        max_jitter_ms: Some(2.0),
        mean_jitter_ms: Some(1.0),
        max_delta_ms: 21.0,
        burst_ratio: 1.0,
        jb_discarded: 0,
        effective_loss_pct: 0.0,
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
    };
    StreamReport {
        agent_id: agent.into(),
        stream_id: stream.into(),
        src: totals.src.clone(),
        dst: totals.dst.clone(),
        ssrc: totals.ssrc.clone(),
        payload_type: 0,
        codec: "PCMU".into(),
        clock_rate: Some(8000),
        call_id: Some(call.into()),
        window_start: start.into(),
        window_end: end.into(),
        is_final,
        end_reason: is_final.then(|| "bye".into()),
        packets: 500,
        expected: 500,
        lost: 0,
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
            n00: 499,
            n01: 0,
            n10: 0,
            n11: 0,
        },
        burst_ratio: 1.0,
        jb_discarded: 0,
        effective_loss_pct: 0.0,
        rtt_ms: None,
        delay_ms: Some(100.125),
        r_factor: Some(90.0),
        mos: Some(mos),
        capture_drops: 0,
        totals: is_final.then_some(totals),
    }
}

fn heartbeat(agent: &str, time: &str) -> Heartbeat {
    Heartbeat {
        agent_id: agent.into(),
        agent_version: "0.1.0".into(),
        time: time.into(),
        host_uptime_s: 1000,
        cpu_pct: 3.0,
        agent_cpu_pct: 1.0,
        mem_total_bytes: 1 << 30,
        mem_used_bytes: 1 << 29,
        agent_rss_bytes: 1 << 24,
        load_avg: [0.1, 0.1, 0.1],
        workers: vec![WorkerCounters {
            worker: 0,
            kernel_packets: 100,
            kernel_drops: 0,
            kernel_freezes: 0,
            frames: 100,
        }],
        streams_tracked: 1,
        streams_evicted: 0,
        processes: vec![],
    }
}

fn batch(
    id_suffix: u32,
    agent: &str,
    reports: Vec<StreamReport>,
    heartbeats: Vec<Heartbeat>,
) -> Batch {
    Batch {
        schema: voqa_wire::SCHEMA_VERSION,
        batch_id: format!("00000000-0000-4000-8000-{id_suffix:012x}"),
        agent_id: agent.into(),
        sent_at: "2026-11-20T10:00:00.000000Z".into(),
        reports,
        heartbeats,
    }
}

async fn post(
    s: &Server,
    token: Option<&str>,
    body: Vec<u8>,
    encoding: Option<&str>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/api/v1/ingest", s.base))
        .body(body)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(s: &Server, token: Option<&str>, path: &str) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", s.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn stored_reports(s: &Server) -> usize {
    let (status, v) = get(
        s,
        Some(OPS),
        "/api/v1/streams?from=2026-11-01&to=2026-12-01&limit=1000",
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["items"].as_array().map_or(0, Vec::len)
}

fn json_bytes(b: &Batch) -> Vec<u8> {
    serde_json::to_vec(b).expect("serialize")
}

#[tokio::test]
async fn health_is_open_and_everything_else_needs_the_right_token() {
    let s = start().await;
    assert_eq!(get(&s, None, "/healthz").await.0, 200);
    assert_eq!(get(&s, None, "/readyz").await.0, 200);
    let protected = [
        "/metrics",
        "/api/v1/agents",
        "/api/v1/streams",
        "/api/v1/calls/x",
        "/api/v1/customers/acme/sla",
        "/api/v1/openapi.json",
    ];
    for path in protected {
        let (status, body) = get(&s, None, path).await;
        assert_eq!(status, 401, "{path} without a token");
        assert_eq!(body["error"]["code"], "unauthorized", "{path}: {body}");
        assert_eq!(
            get(&s, Some("not-a-token"), path).await.0,
            401,
            "{path} with a bad token"
        );
    }
    // Agents may only ingest; customers only their own SLA.
    for path in [
        "/metrics",
        "/api/v1/agents",
        "/api/v1/streams",
        "/api/v1/calls/x",
        "/api/v1/customers/acme/sla",
    ] {
        let (status, body) = get(&s, Some(AGENT), path).await;
        assert_eq!(status, 403, "{path} as agent: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    for path in [
        "/metrics",
        "/api/v1/agents",
        "/api/v1/streams",
        "/api/v1/calls/x",
    ] {
        assert_eq!(get(&s, Some(ACME), path).await.0, 403, "{path} as customer");
    }
    assert_eq!(
        get(&s, Some(GLOBEX), "/api/v1/customers/acme/sla").await.0,
        403,
        "another customer's SLA"
    );
    assert_eq!(
        get(
            &s,
            Some(ACME),
            "/api/v1/customers/acme/sla?from=2026-11-01&to=2026-12-01"
        )
        .await
        .0,
        200
    );
    assert_eq!(
        get(
            &s,
            Some(OPS),
            "/api/v1/customers/acme/sla?from=2026-11-01&to=2026-12-01"
        )
        .await
        .0,
        200
    );
    assert_eq!(
        get(&s, Some(OPS), "/api/v1/customers/nobody/sla").await.0,
        404
    );
    let (status, _) = post(
        &s,
        Some(OPS),
        json_bytes(&batch(1, "x", vec![], vec![])),
        None,
    )
    .await;
    assert_eq!(status, 200, "ops may ingest too");
    let (status, _) = post(
        &s,
        Some(ACME),
        json_bytes(&batch(2, "x", vec![], vec![])),
        None,
    )
    .await;
    assert_eq!(status, 403, "customers may not ingest");
    let (status, body) = get(&s, Some(OPS), "/no/such/thing").await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
}

#[tokio::test]
async fn ingest_is_idempotent_and_bad_bodies_store_nothing() {
    let s = start().await;
    let good = batch(
        10,
        "fra-media-1",
        vec![report(
            "fra-media-1",
            "s1",
            "call-1",
            "2026-11-20T10:00:00Z",
            "2026-11-20T10:00:10Z",
            false,
            4.3,
        )],
        vec![heartbeat("fra-media-1", "2026-11-20T10:00:05Z")],
    );
    let (status, body) = post(&s, Some(AGENT), json_bytes(&good), None).await;
    assert_eq!((status, &body["status"]), (200, &json!("stored")), "{body}");
    let (status, body) = post(&s, Some(AGENT), json_bytes(&good), None).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("duplicate")),
        "{body}"
    );
    assert_eq!(
        stored_reports(&s).await,
        1,
        "a repeated batch is stored once"
    );

    let bad_cases: Vec<(&str, Vec<u8>, Option<&str>, u16, &str)> = vec![
        ("malformed JSON", b"{\"schema\": 1, \"batch_id\": ".to_vec(), None, 400, "malformed_json"),
        ("wrong schema version", json_bytes(&Batch { schema: 99, ..batch(11, "a", vec![], vec![]) }), None, 400, "unsupported_schema"),
        ("field of the wrong type", br#"{"schema":1,"batch_id":"00000000-0000-4000-8000-000000000012","agent_id":"a","sent_at":"x","reports":[{"agent_id":5}]}"#.to_vec(), None, 400, "invalid_field"),
        ("bad batch id", json_bytes(&Batch { batch_id: "nope".into(), ..batch(13, "a", vec![], vec![]) }), None, 400, "invalid_field"),
        ("MOS out of range", json_bytes(&batch(14, "a", vec![report("a", "s", "c", "2026-11-20T10:00:00Z", "2026-11-20T10:00:10Z", false, 7.0)], vec![])), None, 422, "out_of_range"),
        ("window ends before it starts", json_bytes(&batch(15, "a", vec![report("a", "s", "c", "2026-11-20T10:00:10Z", "2026-11-20T10:00:00Z", false, 4.0)], vec![])), None, 422, "out_of_range"),
        ("oversize", vec![b' '; 300_000], None, 413, "body_too_large"),
        ("unsupported encoding", json_bytes(&batch(16, "a", vec![], vec![])), Some("br"), 415, "unsupported_encoding"),
        ("bad gzip", b"not gzip at all".to_vec(), Some("gzip"), 400, "bad_gzip"),
    ];
    for (what, body, encoding, want_status, want_code) in bad_cases {
        let (status, reply) = post(&s, Some(AGENT), body, encoding).await;
        assert_eq!(status, want_status, "{what}: {reply}");
        assert_eq!(reply["error"]["code"], want_code, "{what}: {reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: message"
        );
    }
    assert_eq!(stored_reports(&s).await, 1, "no bad body stored anything");

    // A gzip bomb: small compressed, over the limit once decompressed.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 1_000_000]).expect("gzip");
    let (status, reply) = post(&s, Some(AGENT), gz.finish().expect("gzip"), Some("gzip")).await;
    assert_eq!(status, 413, "{reply}");

    // Gzip of a valid batch is accepted.
    let g = batch(
        20,
        "fra-media-1",
        vec![report(
            "fra-media-1",
            "s2",
            "call-2",
            "2026-11-20T11:00:00Z",
            "2026-11-20T11:00:10Z",
            true,
            3.5,
        )],
        vec![],
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&json_bytes(&g)).expect("gzip");
    let (status, reply) = post(&s, Some(AGENT), gz.finish().expect("gzip"), Some("gzip")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(stored_reports(&s).await, 2);
    drop(s.store.clone());
}

#[tokio::test]
async fn ops_api_agents_streams_calls_sla_metrics() {
    let s = start().await;
    let mut reports = Vec::new();
    for i in 0..25u32 {
        let start = format!("2026-11-20T10:{:02}:00Z", i);
        let end = format!("2026-11-20T10:{:02}:10Z", i);
        // Five calls of five windows each; the last window of each is the final report.
        reports.push(report(
            "fra-media-1",
            &format!("s{i}"),
            &format!("call-{}", i / 5),
            &start,
            &end,
            i % 5 == 4,
            if i % 2 == 0 { 4.3 } else { 3.2 },
        ));
    }
    let b = batch(
        30,
        "fra-media-1",
        reports,
        vec![heartbeat("fra-media-1", "2026-11-20T10:00:05Z")],
    );
    assert_eq!(post(&s, Some(AGENT), json_bytes(&b), None).await.0, 200);

    let (status, agents) = get(&s, Some(OPS), "/api/v1/agents").await;
    assert_eq!(status, 200, "{agents}");
    assert_eq!(agents["items"][0]["agent_id"], "fra-media-1");
    assert_eq!(
        agents["items"][0]["up"], false,
        "last heartbeat is days old"
    );

    // Pagination: 25 reports in pages of 10 → 10, 10, 5, no duplicates.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/streams?from=2026-11-20&to=2026-11-21&limit=10&cursor={c}"),
            None => "/api/v1/streams?from=2026-11-20&to=2026-11-21&limit=10".to_owned(),
        };
        let (status, page) = get(&s, Some(OPS), &path).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().expect("items") {
            assert!(
                seen.insert(item["stream_id"].as_str().expect("id").to_owned()),
                "duplicate across pages"
            );
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(seen.len(), 25);
    let (_, low) = get(
        &s,
        Some(OPS),
        "/api/v1/streams?from=2026-11-20&to=2026-11-21&max_mos=3.5&limit=100",
    )
    .await;
    assert_eq!(
        low["items"].as_array().map(Vec::len),
        Some(12),
        "12 of 25 reports have MOS 3.2"
    );
    let (_, other) = get(
        &s,
        Some(OPS),
        "/api/v1/streams?from=2026-11-20&to=2026-11-21&agent=nyc-media-1",
    )
    .await;
    assert_eq!(other["items"].as_array().map(Vec::len), Some(0));
    let (_, cust) = get(
        &s,
        Some(OPS),
        "/api/v1/streams?from=2026-11-20&to=2026-11-21&customer=acme&limit=100",
    )
    .await;
    assert_eq!(cust["items"].as_array().map(Vec::len), Some(25));
    assert_eq!(
        get(
            &s,
            Some(OPS),
            "/api/v1/streams?from=2020-01-01&to=2026-01-01"
        )
        .await
        .0,
        400,
        "range over 366 days"
    );
    assert_eq!(
        get(&s, Some(OPS), "/api/v1/streams?from=yesterday").await.0,
        400
    );
    assert_eq!(
        get(&s, Some(OPS), "/api/v1/streams?limit=5000").await.0,
        400
    );

    let (status, call) = get(&s, Some(OPS), "/api/v1/calls/call-3").await;
    assert_eq!(status, 200, "{call}");
    assert_eq!(call["reports"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        get(&s, Some(OPS), "/api/v1/calls/no-such-call").await.0,
        404
    );

    let (status, sla) = get(
        &s,
        Some(ACME),
        "/api/v1/customers/acme/sla?from=2026-11-01&to=2026-12-01",
    )
    .await;
    assert_eq!(status, 200, "{sla}");
    assert_eq!(sla["customer"], "acme");
    // 5 final reports, one per call (windows 4, 9, 14, 19, 24: MOS 4.3, 3.2, 4.3, 3.2, 4.3).
    assert_eq!(sla["calls"], 5, "{sla}");
    let mos = sla["commitments"]
        .as_array()
        .expect("commitments")
        .iter()
        .find(|c| c["name"] == "mos")
        .expect("mos");
    assert_eq!(mos["measured"], 60.0, "3 of 5 calls meet MOS 4.0: {mos}");
    assert_eq!(mos["met"], false);

    let (status, metrics) = get(&s, Some(OPS), "/metrics").await;
    assert_eq!(status, 200);
    let text = metrics.as_str().expect("text");
    assert!(text.contains("voqa_ingest_reports_total 25"), "{text}");
    assert!(
        text.contains("voqa_sla_met{customer=\"acme\",commitment=\"mos\"} 0"),
        "{text}"
    );
}

#[tokio::test]
async fn openapi_document_matches_the_real_routes() {
    let s = start().await;
    let (status, doc) = get(&s, Some(OPS), "/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(
        paths.len(),
        ROUTES
            .iter()
            .map(|r| r.1)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    for (method, path, _, _) in ROUTES {
        assert!(
            paths.get(*path).and_then(|p| p.get(*method)).is_some(),
            "{method} {path} missing from the document"
        );
        let concrete = path.replace("{call_id}", "call-x").replace("{id}", "acme");
        let client = reqwest::Client::new();
        let req = match *method {
            "get" => client.get(format!("{}{concrete}", s.base)),
            "post" => client.post(format!("{}{concrete}", s.base)).body("{}"),
            other => panic!("unexpected method {other}"),
        };
        let status = req
            .bearer_auth(OPS)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16();
        assert!(
            status != 404 || concrete.contains("call-x"),
            "{method} {path}: the router has no such route ({status})"
        );
        assert_ne!(status, 405, "{method} {path}: wrong method in the document");
    }
}
