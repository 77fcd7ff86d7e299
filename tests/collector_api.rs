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
use voqa_wire::fixtures::{self, batch};
use voqa_wire::{Batch, Heartbeat, StreamReport, Timestamp};

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
id = "acme-subnets"
name = "ACME, narrowed to its media peers (evaluated from stream reports)"
agents = ["fra-media-1"]
subnets = ["203.0.113.0/24"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95

[[customers]]
id = "acme-media"
name = "ACME, narrowed to its media peers since before the data (evaluated from its scope)"
agents = ["fra-media-1"]
subnets = ["203.0.113.0/24"]
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
            // The agent token posts as many agents here; tests/collector_auth.rs covers bindings.
            .token_insert_bound(
                id,
                &hash_token(token),
                role,
                (role == "agent").then_some("*"),
                0,
            )
            .await
            .expect("token");
    }
    // acme-media's subnets have been attributed since 1970; acme-subnets's only from the
    // server's start (in api::serve), so its past is evaluated from stream reports.
    let config = CollectorConfig::parse(CONFIG).expect("config");
    let acme_media = config.customer("acme-media").expect("acme-media");
    store
        .register_scope(
            "acme-media",
            &voqa_collector::sla::scope_signature(acme_media),
            0,
        )
        .await
        .expect("scope");
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

/// A time written in this file.
fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).expect(text)
}

/// A window of one clean PCMU stream (500 packets); the final one carries the totals.
fn report(
    agent: &str,
    stream: &str,
    call: &str,
    start: &str,
    end: &str,
    is_final: bool,
    mos: f64,
) -> StreamReport {
    let r = fixtures::final_report(agent, stream, call, at(start), at(end), 500, mos);
    if is_final { r } else { fixtures::interval(r) }
}

fn heartbeat(agent: &str, time: &str) -> Heartbeat {
    fixtures::heartbeat(agent, at(time))
}

async fn post(
    s: &Server,
    token: Option<&str>,
    body: Vec<u8>,
    encoding: Option<&str>,
) -> (u16, Value) {
    let mut req = http_client()
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
    let mut req = http_client().get(format!("{}{path}", s.base));
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

/// Call records (issue 12) are stored with the batch: acknowledged with 200 and counted as
/// `calls`; `skipped_calls` stays in the answer and is 0. A record without any time is placed
/// at its receipt rather than refused (which would dead-letter the agent's batch).
#[tokio::test]
async fn call_records_are_stored_and_acknowledged() {
    let s = start().await;
    let mut with_calls = batch(
        40,
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
        vec![],
    );
    for key in ["00000000000000c1", "00000000000000c2"] {
        with_calls.calls.push(voqa_wire::CallRecord {
            agent_id: "fra-media-1".into(),
            call_key: key.into(),
            call: voqa_wire::CallSummary {
                call_id: "call-1".into(),
                status: Some(486),
                end_cause: Some("failure".into()),
                ..Default::default()
            },
        });
    }
    let (status, body) = post(&s, Some(AGENT), json_bytes(&with_calls), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            &body["status"],
            &body["reports"],
            &body["calls"],
            &body["skipped_calls"]
        ),
        (&json!("stored"), &json!(1), &json!(2), &json!(0)),
        "{body}"
    );
    assert_eq!(stored_reports(&s).await, 1);
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

    // (what, body, Content-Encoding, status, error code)
    type BadCase<'a> = (&'a str, Vec<u8>, Option<&'a str>, u16, &'a str);
    let bad_cases: Vec<BadCase> = vec![
        ("malformed JSON", b"{\"schema\": 1, \"batch_id\": ".to_vec(), None, 400, "malformed_json"),
        ("wrong schema version", json_bytes(&Batch { schema: 99, ..batch(11, "a", vec![], vec![]) }), None, 400, "unsupported_schema"),
        ("field of the wrong type", br#"{"schema":1,"batch_id":"00000000-0000-4000-8000-000000000012","agent_id":"a","sent_at":"x","reports":[{"agent_id":5}]}"#.to_vec(), None, 400, "invalid_field"),
        ("bad batch id", json_bytes(&Batch { batch_id: "nope".into(), ..batch(13, "a", vec![], vec![]) }), None, 400, "invalid_field"),
        ("MOS out of range", json_bytes(&batch(14, "a", vec![report("a", "s", "c", "2026-11-20T10:00:00Z", "2026-11-20T10:00:10Z", false, 7.0)], vec![])), None, 422, "out_of_range"),
        ("window ends before it starts", json_bytes(&batch(15, "a", vec![report("a", "s", "c", "2026-11-20T10:00:10Z", "2026-11-20T10:00:00Z", false, 4.0)], vec![])), None, 422, "out_of_range"),
        ("more jitter samples than packets", json_bytes(&batch(19, "a", vec![StreamReport { jitter_samples: 501, ..histogram_window("s", "c", "2026-11-20T10:00:00Z", "2026-11-20T10:00:10Z", None, 1_000) }], vec![])), None, 422, "invalid_value"),
        ("window longer than two hours", json_bytes(&batch(18, "a", vec![report("a", "s", "c", "2026-11-20T10:00:00Z", "2026-11-20T12:00:01Z", false, 4.0)], vec![])), None, 422, "invalid_value"),
        ("jitter histogram not HdrHistogram", json_bytes(&batch(17, "a", vec![StreamReport { jitter_histogram: Some("bm90IGEgaGlzdG9ncmFt".into()), ..report("a", "s", "c", "2026-11-20T10:00:00Z", "2026-11-20T10:00:10Z", false, 4.0) }], vec![])), None, 422, "invalid_value"),
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

    // Times are strict RFC 3339 UTC (`voqa_wire::Timestamp`): an offset is refused, never
    // converted, and so are impossible dates and leap seconds; the reply names field and reason.
    for (field, text, reason) in [
        ("window_start", "2026-11-20T11:30:00+01:30", "not UTC"),
        ("window_end", "2026-11-20T10:00:10-00:30", "not UTC"),
        ("window_start", "2026-02-30T10:00:00Z", "no such date"),
        ("window_end", "2016-12-31T23:59:60Z", "out of range"),
    ] {
        let mut value = serde_json::to_value(&good).expect("value");
        value["batch_id"] = json!("00000000-0000-4000-8000-0000000000aa");
        value["reports"][0][field] = json!(text);
        let (status, reply) = post(&s, Some(AGENT), value.to_string().into_bytes(), None).await;
        assert_eq!(status, 400, "{text}: {reply}");
        assert_eq!(reply["error"]["code"], "invalid_field", "{reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("reports[0].{field}")) && message.contains(reason),
            "{text}: {message}"
        );
    }
    let mut value = serde_json::to_value(&good).expect("value");
    value["heartbeats"][0]["time"] = json!("2026-11-20T11:00:05+01:00");
    let (status, reply) = post(&s, Some(AGENT), value.to_string().into_bytes(), None).await;
    assert_eq!(
        (status, &reply["error"]["code"]),
        (400, &json!("invalid_field"))
    );
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("heartbeats[0].time") && m.contains("not UTC")),
        "{reply}"
    );
    assert_eq!(
        stored_reports(&s).await,
        1,
        "no refused time stored anything"
    );

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

/// G.107's R has no lower bound: a window whose jitter buffer discarded a long burst (CPU
/// starvation, a delay step) gives Ppl 70 %, BurstR 30 and R ≈ −150 by the very formulas the
/// agent implements (MOS 1). The collector refused such a report for good (422, dead letter:
/// data lost) when it only accepted −100..=150; it must store it. R above the model's maximum
/// (about 115 with the largest advantage factor) is still refused.
#[tokio::test]
async fn a_very_low_r_factor_is_stored_and_an_impossible_one_refused() {
    let s = start().await;
    let window = |r_factor: f64| StreamReport {
        r_factor: Some(r_factor),
        ..report(
            "fra-media-1",
            "s-low-r",
            "call-low-r",
            "2026-11-20T10:00:00Z",
            "2026-11-20T10:00:01Z",
            false,
            1.0,
        )
    };
    let (status, body) = post(
        &s,
        Some(AGENT),
        json_bytes(&batch(40, "fra-media-1", vec![window(-149.7)], vec![])),
        None,
    )
    .await;
    assert_eq!((status, &body["status"]), (200, &json!("stored")), "{body}");
    let (status, body) = post(
        &s,
        Some(AGENT),
        json_bytes(&batch(41, "fra-media-1", vec![window(151.0)], vec![])),
        None,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "out_of_range", "{body}");
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
    // Query times follow the wire's grammar (plus a bare date): an offset is refused with
    // its reason rather than converted.
    let (status, body) = get(
        &s,
        Some(OPS),
        "/api/v1/streams?from=2026-11-20T10:30:00%2B01:30&to=2026-11-21",
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("invalid_parameter"))
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("from: '2026-11-20T10:30:00+01:30' is not an RFC 3339 UTC time")
            && message.contains("not UTC"),
        "{message}"
    );
    let (status, body) = get(&s, Some(OPS), "/api/v1/streams?from=2026-02-30").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no such date: 2026-02-30")),
        "{body}"
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
        let client = http_client();
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

/// A window of `packets` packets whose per-packet jitter is all `jitter_us`.
fn histogram_window(
    stream: &str,
    call: &str,
    start: &str,
    end: &str,
    final_figures: Option<(f64, f64)>,
    jitter_us: u64,
) -> StreamReport {
    let mut r = report(
        "fra-media-1",
        stream,
        call,
        start,
        end,
        final_figures.is_some(),
        final_figures.map_or(4.4, |(mos, _)| mos),
    );
    let mut h = voqa_wire::histogram::new_jitter_histogram();
    h.record_n(jitter_us, 100).expect("in range");
    r.jitter_samples = 100;
    r.jitter_histogram = voqa_wire::histogram::HistogramEncoder::new().encode(&h);
    if let (Some(totals), Some((_, loss))) = (r.totals.as_mut(), final_figures) {
        totals.effective_loss_pct = loss;
    }
    r
}

fn commitment<'a>(evaluation: &'a Value, name: &str) -> &'a Value {
    evaluation["commitments"]
        .as_array()
        .expect("commitments")
        .iter()
        .find(|c| c["name"] == name)
        .expect("commitment")
}

/// 40 calls on 2026-11-20, one every 5 minutes from 10:00: two streams, three 10 s windows
/// each (the third final), 100 packets per window. Stream a: jitter 1 ms, MOS 4.3, loss 0.1 %.
/// Stream b: jitter 50 ms when i % 8 == 0, else 3 ms; MOS 3.6 when i % 5 == 0, else 4.2; loss
/// 1.5 % for call 7, else 0.1 %. Every figure below is worked out by hand from this.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sla_from_aggregates_equals_sla_from_reports_with_exact_jitter_percentiles() {
    let s = start().await;
    for part in 0..4u32 {
        let mut reports = Vec::new();
        for i in part * 10..part * 10 + 10 {
            let call = format!("call-{i:02}");
            let minute = 600 + 5 * i; // minutes after midnight
            for (stream, jitter_us, mos, loss) in [
                ("a", 1_000, 4.3, 0.1),
                (
                    "b",
                    if i % 8 == 0 { 50_000 } else { 3_000 },
                    if i % 5 == 0 { 3.6 } else { 4.2 },
                    if i == 7 { 1.5 } else { 0.1 },
                ),
            ] {
                for w in 0..3u32 {
                    let at = |second: u32| {
                        format!(
                            "2026-11-20T{:02}:{:02}:{:02}Z",
                            minute / 60,
                            minute % 60,
                            second
                        )
                    };
                    reports.push(histogram_window(
                        &format!("{call}-{stream}"),
                        &call,
                        &at(10 * w),
                        &at(10 * w + 10),
                        (w == 2).then_some((mos, loss)),
                        jitter_us,
                    ));
                }
            }
        }
        let b = batch(100 + u64::from(part), "fra-media-1", reports, vec![]);
        let (status, body) = post(&s, Some(AGENT), json_bytes(&b), None).await;
        assert_eq!(status, 200, "{body}");
    }

    // Whole day (hour-aligned: the fast path reads only hourly rollups).
    // Packets: 40 × 2 × 3 × 100 = 24,000: 12,000 at 1 ms, 35 × 300 = 10,500 at 3 ms, 5 × 300
    // = 1,500 at 50 ms (calls 0, 8, 16, 24, 32). p95 rank 22,800 > 22,500 → the 50,000 µs
    // bucket (256 µs wide at 2 digits: 49,920..50,175, middle 50.048 ms) > 30 → breached.
    // MOS: calls 0, 5, …, 35 (8) at 3.6 → 32 of 40 = 80 %. Loss: call 7 at 1.5 % breaches.
    let day = "from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z";
    let (status, fast) = get(&s, Some(ACME), &format!("/api/v1/customers/acme/sla?{day}")).await;
    assert_eq!(status, 200, "{fast}");
    let (status, slow) = get(
        &s,
        Some(OPS),
        &format!("/api/v1/customers/acme-subnets/sla?{day}"),
    )
    .await;
    assert_eq!(status, 200, "{slow}");
    let (status, scoped) = get(
        &s,
        Some(OPS),
        &format!("/api/v1/customers/acme-media/sla?{day}"),
    )
    .await;
    assert_eq!(status, 200, "{scoped}");
    for e in [&fast, &slow, &scoped] {
        assert_eq!(e["calls"], 40, "{e}");
        assert_eq!(e["reports_used"], 240, "{e}");
        let mos = commitment(e, "mos");
        assert_eq!(
            (mos["measured"].as_f64(), mos["met"].as_bool()),
            (Some(80.0), Some(false))
        );
        let calls: Vec<&str> = mos["evidence"]["calls"]
            .as_array()
            .expect("calls")
            .iter()
            .map(|c| c["call_id"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(
            calls,
            [
                "call-00", "call-05", "call-10", "call-15", "call-20", "call-25", "call-30",
                "call-35"
            ]
        );
        assert_eq!(mos["evidence"]["calls"][0]["worst_stream"], "call-00-b");
        assert_eq!(mos["evidence"]["calls"][0]["value"], 3.6);
        let loss = commitment(e, "loss");
        assert_eq!(
            (loss["measured"].as_f64(), loss["met"].as_bool()),
            (Some(1.5), Some(false))
        );
        assert_eq!(loss["evidence"]["breaching"], 1);
        assert_eq!(loss["evidence"]["calls"][0]["call_id"], "call-07");
        assert_eq!(loss["evidence"]["calls"][0]["worst_stream"], "call-07-b");
        let jitter = commitment(e, "jitter_p95");
        assert_eq!(
            (jitter["measured"].as_f64(), jitter["met"].as_bool()),
            (Some(50.048), Some(false)),
            "{jitter}"
        );
        assert_eq!(jitter["evidence"]["samples"], 24_000);
        assert_eq!(jitter["evidence"]["p99_ms"], 50.048);
    }
    // Hours 10..13 hold windows: four rollups, no single windows.
    assert_eq!(
        commitment(&fast, "jitter_p95")["evidence"]["hourly_rollups"],
        4
    );
    assert_eq!(
        commitment(&fast, "jitter_p95")["evidence"]["single_windows"],
        0
    );
    assert_eq!(
        commitment(&slow, "jitter_p95")["evidence"]["single_windows"],
        240
    );
    assert_eq!(
        commitment(&scoped, "jitter_p95")["evidence"]["hourly_rollups"],
        4
    );
    for name in ["mos", "loss"] {
        assert_eq!(
            commitment(&fast, name),
            commitment(&slow, name),
            "{name}: aggregates and reports disagree"
        );
        assert_eq!(
            commitment(&scoped, name),
            commitment(&slow, name),
            "{name}: scoped aggregates and reports disagree"
        );
    }

    // 10:30..12:15 (not hour-aligned: hour 11 from the rollup, the rest window by window).
    // Calls whose final window (start + 20 s) starts inside: 5i min + 20 s in [30, 135) min →
    // i = 6..=26, 21 calls, 126 windows, 12,600 packets: 6,300 at 1 ms, 18 × 300 = 5,400 at
    // 3 ms, 900 at 50 ms (calls 8, 16, 24). p95 rank 11,970 > 11,700 → 50.048 ms.
    // MOS breaches: calls 10, 15, 20, 25 → 17 of 21 meet.
    let part = "from=2026-11-20T10:30:00Z&to=2026-11-20T12:15:00Z";
    let (_, fast) = get(
        &s,
        Some(ACME),
        &format!("/api/v1/customers/acme/sla?{part}"),
    )
    .await;
    let (_, slow) = get(
        &s,
        Some(OPS),
        &format!("/api/v1/customers/acme-subnets/sla?{part}"),
    )
    .await;
    let (_, scoped) = get(
        &s,
        Some(OPS),
        &format!("/api/v1/customers/acme-media/sla?{part}"),
    )
    .await;
    for e in [&fast, &slow, &scoped] {
        assert_eq!(e["calls"], 21, "{e}");
        assert_eq!(e["reports_used"], 126, "{e}");
        let mos = commitment(e, "mos");
        assert_eq!(mos["evidence"]["within"], 17, "{mos}");
        assert_eq!(mos["evidence"]["breaching"], 4, "{mos}");
        let jitter = commitment(e, "jitter_p95");
        assert_eq!(jitter["measured"], 50.048, "{jitter}");
        assert_eq!(jitter["evidence"]["samples"], 12_600, "{jitter}");
    }
    let evidence = &commitment(&fast, "jitter_p95")["evidence"];
    // Hour 11 (calls 12..=23, 72 windows) from its rollup; 10:30..11:00 (calls 6..=11) and
    // 12:00..12:15 (calls 24..=26) window by window: (6 + 3) × 6 = 54 windows.
    assert_eq!(
        (
            evidence["hourly_rollups"].as_u64(),
            evidence["single_windows"].as_u64()
        ),
        (Some(1), Some(54))
    );
    assert_eq!(
        commitment(&scoped, "jitter_p95")["evidence"]["single_windows"],
        54
    );
    for name in ["mos", "loss", "jitter_p95"] {
        assert_eq!(
            commitment(&fast, name)["measured"],
            commitment(&slow, name)["measured"],
            "{name}"
        );
        assert_eq!(
            commitment(&scoped, name)["measured"],
            commitment(&slow, name)["measured"],
            "{name}"
        );
    }

    // A period ending inside a window: 10:00:00..10:00:15 holds the windows of call 0 that
    // start at :00 and :10 (the second ends after the period), two per stream; its final
    // window starts at :20, so no call belongs to the period.
    let inside = "from=2026-11-20T10:00:00Z&to=2026-11-20T10:00:15Z";
    for customer in ["acme", "acme-media", "acme-subnets"] {
        let (status, e) = get(
            &s,
            Some(OPS),
            &format!("/api/v1/customers/{customer}/sla?{inside}"),
        )
        .await;
        assert_eq!(status, 200, "{e}");
        assert_eq!(
            (e["calls"].as_u64(), e["reports_used"].as_u64()),
            (Some(0), Some(4)),
            "{customer}: {e}"
        );
    }

    // Traffic of the same agent with peers outside 203.0.113.0/24, on 21 November: 5 calls
    // at MOS 3.0. It counts for acme (the whole agent), not for the subnet-narrowed customers,
    // whichever way they are evaluated.
    let outside: Vec<StreamReport> = (0..5u32)
        .map(|i| {
            let mut r = histogram_window(
                &format!("out-{i}"),
                &format!("out-{i}"),
                &format!("2026-11-21T09:0{i}:00Z"),
                &format!("2026-11-21T09:0{i}:10Z"),
                Some((3.0, 0.1)),
                2_000,
            );
            r.src = "192.0.2.7:40000".into();
            r.dst = "198.51.100.20:50000".into();
            r
        })
        .collect();
    let b = batch(200, "fra-media-1", outside, vec![]);
    assert_eq!(post(&s, Some(AGENT), json_bytes(&b), None).await.0, 200);
    let next_day = "from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z";
    for (customer, calls) in [("acme", 5), ("acme-media", 0), ("acme-subnets", 0)] {
        let (status, e) = get(
            &s,
            Some(OPS),
            &format!("/api/v1/customers/{customer}/sla?{next_day}"),
        )
        .await;
        assert_eq!(status, 200, "{e}");
        assert_eq!(
            (e["calls"].as_u64(), e["reports_used"].as_u64()),
            (Some(calls), Some(calls)),
            "{customer}: {e}"
        );
    }

    // A call's streams, each with its windows' histograms merged.
    let (status, call) = get(&s, Some(OPS), "/api/v1/calls/call-08").await;
    assert_eq!(status, 200, "{call}");
    let streams = call["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 2);
    assert_eq!(streams[0]["stream_id"], "call-08-a");
    assert_eq!(streams[0]["jitter"]["samples"], 300);
    // 1,000 µs sits in a 4 µs bucket (1,000..1,003, middle 1,002).
    assert_eq!(streams[0]["jitter"]["p95_ms"], 1.002);
    assert_eq!(streams[1]["jitter"]["p95_ms"], 50.048);
    assert_eq!(streams[1]["windows"], 3);
}

/// Calls `first..last` on 2026-11-22 (one stream each: an interval and a final report).
fn call_reports(first: u32, last: u32) -> Vec<StreamReport> {
    (first..last)
        .flat_map(|i| {
            let at = |second: u32| format!("2026-11-22T10:{:02}:{:02}Z", i, second);
            let (stream, call) = (format!("rec-{i}"), format!("rec-call-{i}"));
            [
                report("fra-media-1", &stream, &call, &at(0), &at(10), false, 4.3),
                report("fra-media-1", &stream, &call, &at(10), &at(20), true, 3.9),
            ]
        })
        .collect()
}

async fn sla_calls(s: &Server) -> Value {
    let (status, e) = get(
        s,
        Some(OPS),
        "/api/v1/customers/acme/sla?from=2026-11-22&to=2026-11-23",
    )
    .await;
    assert_eq!(status, 200, "{e}");
    e["calls"].clone()
}

/// Idempotency is per record over HTTP too: the same reports under a new batch id are
/// acknowledged as duplicates and change nothing; a partly overlapping batch stores only its
/// new records; concurrent overlapping uploads store and count each record once; every
/// stored report is listed with its record id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_record_is_stored_and_counted_once_whatever_its_batch() {
    let s = start().await;
    let beat = heartbeat("fra-media-1", "2026-11-22T10:00:05Z");
    let first = batch(300, "fra-media-1", call_reports(0, 5), vec![beat.clone()]);
    let (status, body) = post(&s, Some(AGENT), json_bytes(&first), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "stored", "batch_id": first.batch_id, "reports": 10, "heartbeats": 1,
               "duplicate_reports": 0, "duplicate_heartbeats": 0, "calls": 0,
               "duplicate_calls": 0, "skipped_calls": 0})
    );
    assert_eq!(sla_calls(&s).await, 5);

    let again = batch(301, "fra-media-1", call_reports(0, 5), vec![beat]);
    let (status, body) = post(&s, Some(AGENT), json_bytes(&again), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            &body["status"],
            &body["reports"],
            &body["duplicate_reports"],
            &body["duplicate_heartbeats"]
        ),
        (&json!("duplicate"), &json!(0), &json!(10), &json!(1)),
        "{body}"
    );
    assert_eq!(sla_calls(&s).await, 5, "re-sent calls count once");

    // Calls 3 and 4 again, calls 5 and 6 new.
    let overlap = batch(302, "fra-media-1", call_reports(3, 7), vec![]);
    let (status, body) = post(&s, Some(AGENT), json_bytes(&overlap), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            &body["status"],
            &body["reports"],
            &body["duplicate_reports"]
        ),
        (&json!("stored"), &json!(4), &json!(4)),
        "{body}"
    );
    assert_eq!(sla_calls(&s).await, 7);

    // Six uploads at once, each overlapping the next (calls k..k+3), some repeating stored ones.
    let mut uploads = Vec::new();
    for k in 0..6u32 {
        let body = json_bytes(&batch(
            400 + u64::from(k),
            "fra-media-1",
            call_reports(5 + k, 8 + k),
            vec![],
        ));
        let url = format!("{}/api/v1/ingest", s.base);
        uploads.push(tokio::spawn(async move {
            let resp = http_client()
                .post(url)
                .bearer_auth(AGENT)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("request");
            assert_eq!(resp.status().as_u16(), 200);
            resp.json::<Value>().await.expect("json")
        }));
    }
    let mut new_reports = 0;
    for upload in uploads {
        new_reports += upload.await.expect("upload")["reports"]
            .as_u64()
            .expect("count");
    }
    // Calls 7..=12 were new: 6 calls, 12 reports (24 of the 36 sent were stored already).
    assert_eq!(new_reports, 12);
    assert_eq!(sla_calls(&s).await, 13);

    let (status, page) = get(
        &s,
        Some(OPS),
        "/api/v1/streams?from=2026-11-22&to=2026-11-23&limit=1000",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 26);
    let mut ids = std::collections::BTreeSet::new();
    for item in items {
        let report: StreamReport = serde_json::from_value(item.clone()).expect("a report");
        assert_eq!(item["record_id"], json!(report.record_id()), "{item}");
        assert!(ids.insert(report.record_id()), "listed once: {item}");
    }
    let (_, metrics) = get(&s, Some(OPS), "/metrics").await;
    let text = metrics.as_str().expect("text");
    assert!(text.contains("voqa_ingest_reports_total 26"), "{text}");
    assert!(
        text.contains("voqa_ingest_duplicate_reports_total 38"),
        "{text}"
    );
}

/// What `examples/demo.rs` does, through the library only: a collector in-process on a
/// temporary SQLite, tokens created, a customer with commitments, served on an ephemeral
/// loopback port, its SLA queried, then stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_server_for_the_demo() {
    use voqa_collector::auth::{AgentBinding, Role};
    use voqa_collector::serve::Server;

    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&format!("sqlite:{}", dir.path().join("demo.db").display()))
        .await
        .expect("store");
    let agent = store
        .create_agent_token(&AgentBinding::parse("fra-media-1").expect("binding"))
        .await
        .expect("agent token");
    let customer = store
        .create_token(&Role::Customer("demo".into()))
        .await
        .expect("customer token");
    assert!(agent.secret.starts_with("voqa_") && agent.id.len() == 12);
    let config = CollectorConfig::parse(
        r#"
[[customers]]
id = "demo"
name = "Demo Customer"
agents = ["fra-media-1"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
"#,
    )
    .expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = Server::start(config, store, listener, async move {
        let _ = stopped.await;
    })
    .await
    .expect("start");
    let base = server.base_url();
    assert_eq!(base, format!("http://{}", server.local_addr()));

    let client = http_client();
    let b = batch(500, "fra-media-1", call_reports(0, 4), vec![]);
    let resp = client
        .post(format!("{base}/api/v1/ingest"))
        .bearer_auth(&agent.secret)
        .json(&b)
        .send()
        .await
        .expect("ingest");
    assert_eq!(resp.status().as_u16(), 200);
    let sla: Value = client
        .get(format!(
            "{base}/api/v1/customers/demo/sla?from=2026-11-22&to=2026-11-23"
        ))
        .bearer_auth(&customer.secret)
        .send()
        .await
        .expect("sla")
        .json()
        .await
        .expect("json");
    assert_eq!(sla["customer"], "demo", "{sla}");
    assert_eq!(sla["calls"], 4, "{sla}");
    // Final reports at MOS 3.9: no call meets 4.0.
    assert_eq!(commitment(&sla, "mos")["met"], false, "{sla}");

    let _ = stop.send(());
    server.wait().await.expect("clean stop");
}

/// An HTTP client. reqwest is built with rustls but without a crypto provider of its own (no
/// aws-lc in the tree): ring is installed as the process's provider first.
fn http_client() -> reqwest::Client {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
