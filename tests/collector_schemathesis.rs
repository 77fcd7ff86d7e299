//! schemathesis (pip) against a real collector on loopback: it reads the served OpenAPI
//! document and sends what it generates from it, valid and invalid, to every operation, failing
//! on any 5xx and on any answer the document does not describe (status, content type, schema).
//!
//! Reported as ignored when schemathesis is not installed; required (a failure) under
//! `VOQA_REQUIRE_SCHEMATHESIS=1`, as in CI (`.ci/run` installs the pinned version). The run is
//! bounded in examples per operation and, as a backstop, in wall time (a hung run fails).
//! Beside it, the one case found by hand that schemathesis does not generate (a path segment
//! that is not UTF-8), which needs no schemathesis.

#[path = "support/harness.rs"]
mod harness;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use voqa_collector::api::{self, AppState};
use voqa_collector::auth::hash_token;
use voqa_collector::config::CollectorConfig;
use voqa_collector::store::Store;
use voqa_wire::Batch;

/// The version `.ci/run` installs (and the one the document was checked with).
const PINNED: &str = "4.32.5";
const REQUIRE: &str = "VOQA_REQUIRE_SCHEMATHESIS";
const OPS: &str = "schemathesis-ops-token";
const AGENT: &str = "schemathesis-agent-token";
/// Generated cases per operation and phase: enough to reach every documented status of every
/// operation, few enough for under a minute or two on 2 shared cores.
const MAX_EXAMPLES: &str = "40";
/// Backstop for a hung run: the bounded run takes far less.
const DEADLINE: Duration = Duration::from_secs(170);

const CONFIG: &str = r#"
[[customers]]
id = "acme"
name = "ACME"
agents = ["fra-media-1"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95

[[customers]]
id = "acme-subnets"
name = "ACME, narrowed to subnets (evaluated from stream reports)"
agents = ["fra-media-1"]
subnets = ["203.0.113.0/24"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
"#;

/// The schemathesis command, or `None` (after reporting the skip) when it is not installed.
fn schemathesis() -> Option<String> {
    let bin = std::env::var("VOQA_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".to_owned());
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success());
    match version {
        Some(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            if !text.contains(PINNED) {
                // Another version may judge differently; say so, and run it anyway.
                eprintln!("note: {} (CI pins {PINNED})", text.trim());
            }
            Some(bin)
        }
        None => {
            harness::skip(
                REQUIRE,
                &format!("schemathesis is not installed (pip install 'schemathesis=={PINNED}')"),
            );
            None
        }
    }
}

/// One call with an interim and a final report and a heartbeat, so the listings, the call and
/// the SLA answers schemathesis gets are full ones, not only empty lists.
fn seed_batch() -> Batch {
    let summary = json!({
        "src": "203.0.113.5:40000", "dst": "198.51.100.20:50000", "ssrc": "0x00000001",
        "payload_type": 0, "codec": "PCMU", "clock_rate": 8000, "call_id": "call-1",
        "first_seen": "2026-11-20T09:00:00Z", "last_seen": "2026-11-20T09:00:20Z",
        "packets": 1000, "expected": 1000, "lost": 0, "duplicates": 0, "reordered": 0,
        "jitter_ms": 1.0, "max_jitter_ms": 2.0, "mean_jitter_ms": 1.0, "max_delta_ms": 21.0,
        "burst_ratio": 1.0, "jb_discarded": 0, "effective_loss_pct": 0.0, "rtt_ms": null,
        "r_factor": 90.0, "mos": 4.3, "loss_bursts": 0, "max_loss_burst": 0, "lost_rfc3550": 0,
        "delay_ms": 100.0, "delay_source": "assumed", "clock_source": "static",
        "detection": "sdp", "jitter_buffer": "fixed:60", "ie": 0.0, "bpl": 25.1, "flags": []
    });
    let report = |start: &str, end: &str, is_final: bool| {
        json!({
            "agent_id": "fra-media-1", "stream_id": "00000000000000a1",
            "src": "203.0.113.5:40000", "dst": "198.51.100.20:50000", "ssrc": "0x00000001",
            "payload_type": 0, "codec": "PCMU", "clock_rate": 8000, "call_id": "call-1",
            "window_start": start, "window_end": end, "final": is_final,
            "packets": 500, "expected": 500, "lost": 0, "duplicates": 0, "reordered": 0,
            "jitter_ms": 1.0, "max_jitter_ms": 2.0, "mean_jitter_ms": 1.0,
            "jitter_sum_ms": 500.0, "jitter_samples": 500, "max_delta_ms": 21.0,
            "transitions": {"n00": 499, "n01": 0, "n10": 0, "n11": 0},
            "burst_ratio": 1.0, "jb_discarded": 0, "effective_loss_pct": 0.0, "rtt_ms": null,
            "delay_ms": 100.0, "r_factor": 90.0, "mos": 4.3, "capture_drops": 0,
            "totals": if is_final { summary.clone() } else { json!(null) }
        })
    };
    serde_json::from_value(json!({
        "schema": voqa_wire::SCHEMA_VERSION,
        "batch_id": "00000000-0000-4000-8000-00000000a001",
        "agent_id": "fra-media-1",
        "sent_at": "2026-11-20T09:01:00Z",
        "reports": [
            report("2026-11-20T09:00:00Z", "2026-11-20T09:00:10Z", false),
            report("2026-11-20T09:00:10Z", "2026-11-20T09:00:20Z", true),
        ],
        "heartbeats": [{
            "agent_id": "fra-media-1", "agent_version": "0.1.0", "time": "2026-11-20T09:00:15Z",
            "host_uptime_s": 1000, "cpu_pct": 3.0, "agent_cpu_pct": 1.0,
            "mem_total_bytes": 1073741824u64, "mem_used_bytes": 536870912u64,
            "agent_rss_bytes": 16777216u64, "load_avg": [0.1, 0.1, 0.1],
            "workers": [{"worker": 0, "kernel_packets": 100, "kernel_drops": 0,
                         "kernel_freezes": 0, "frames": 100}],
            "streams_tracked": 1, "streams_evicted": 0, "processes": []
        }]
    }))
    .expect("seed batch is a valid Batch")
}

/// A collector on 127.0.0.1:0 with an ops and an agent token and one call stored; it serves
/// until the returned sender is dropped.
async fn start(dir: &std::path::Path) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let url = format!("sqlite:{}", dir.join("voqa.db").display());
    let store = Store::open(&url).await.expect("store");
    for (id, token, role) in [("o1", OPS, "ops"), ("a1", AGENT, "agent")] {
        store
            .token_insert(id, &hash_token(token), role, 0)
            .await
            .expect("token");
    }
    let config = CollectorConfig::parse(CONFIG).expect("config");
    let batch = seed_batch();
    let scopes = voqa_collector::sla::report_scopes(&config.customers, &batch.reports);
    store
        .ingest_scoped(&batch, 1_795_424_500_000_000_000, &scopes)
        .await
        .expect("seed");
    let state = AppState {
        store,
        config: config.into(),
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
    (addr, tx)
}

/// Runs schemathesis with `token` over the operations `filter` selects; returns its exit code
/// and its output.
fn run(
    bin: &str,
    addr: SocketAddr,
    token: &str,
    filter: &[&str],
    report: &std::path::Path,
) -> (i32, String) {
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg(format!("http://{addr}/api/v1/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // Every check but positive_data_acceptance, which demands that every request valid by
        // the schema be accepted: JSON Schema cannot say `from` < `to`, "a real calendar date
        // within 1677..2262", `lost` <= `expected` or "a cursor this API issued", and the
        // collector refuses those with a 400/422 naming the field, by design.
        .args(["--checks", "all"])
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["--max-examples", MAX_EXAMPLES])
        // Reproducible: the same cases on every machine and every run.
        .args(["--seed", "10017", "--generation-deterministic"])
        // One worker: with two, hypothesis (under CPython 3.11) parses its own source from two
        // threads at once and now and then dies with "AST constructor recursion depth
        // mismatch", an error of the tool, not of the API.
        .args(["--workers", "1", "--request-timeout", "20"])
        .args(["--no-color", "--output-truncate", "false"])
        .args(["--report", "junit,har", "--report-dir"])
        .arg(report)
        .args(filter)
        .current_dir(report)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn schemathesis");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    // Drain both pipes on their own threads so a chatty run cannot block on a full pipe.
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "schemathesis still running after {DEADLINE:?}:\n{}",
                out.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = format!(
        "{}\n{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    (status.code().unwrap_or(-1), text)
}

fn every_operation_answers_as_documented() {
    let Some(bin) = schemathesis() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (addr, shutdown) = rt.block_on(start(dir.path()));
    // As ops: every operation (ops may use them all). As an agent: ingest, and the refusals
    // (403) of the ops-only operations, which must be described too.
    let runs: [(&str, &str, &[&str]); 2] = [("ops", OPS, &[]), ("agent", AGENT, &[])];
    let mut failures = Vec::new();
    for (name, token, filter) in runs {
        // $VOQA_SCHEMATHESIS_REPORTS keeps the reports (JUnit, and every request and response
        // as HAR) for a look after the run; by default they go with the temporary directory.
        let report = std::env::var_os("VOQA_SCHEMATHESIS_REPORTS")
            .map_or_else(|| dir.path().to_path_buf(), std::path::PathBuf::from)
            .join(name);
        std::fs::create_dir_all(&report).expect("report dir");
        let (code, output) = run(&bin, addr, token, filter, &report);
        println!("== schemathesis as {name}: exit {code}\n{output}");
        if code != 0 {
            failures.push(format!("as {name}: exit {code}"));
        }
    }
    drop(shutdown);
    assert!(
        failures.is_empty(),
        "schemathesis found failures ({}); see the output above",
        failures.join(", ")
    );
}

/// Found beside schemathesis (which does not send bytes that are not UTF-8 in a path): a path
/// segment that is not UTF-8 once percent-decoded got axum's plain-text 400, before the token
/// was even checked, where the document promises the JSON error body.
fn undecodable_path_segments_get_the_json_error_body() {
    let dir = tempfile::tempdir().expect("tmp");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (addr, _shutdown) = start(dir.path()).await;
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        for (path, param) in [
            ("/api/v1/calls/%FF", "call_id"),
            ("/api/v1/calls/a%C0b", "call_id"),
            ("/api/v1/customers/%FF/sla", "id"),
        ] {
            let url = format!("http://{addr}{path}");
            let anonymous = client.get(&url).send().await.expect("request");
            assert_eq!(anonymous.status().as_u16(), 401, "{path} without a token");
            let resp = client
                .get(&url)
                .bearer_auth(OPS)
                .send()
                .await
                .expect("request");
            assert_eq!(resp.status().as_u16(), 400, "{path}");
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert_eq!(content_type, "application/json", "{path}");
            let body: serde_json::Value = resp.json().await.expect("JSON body");
            assert_eq!(body["error"]["code"], "invalid_parameter", "{path}: {body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(param), "{path}: {body}");
        }
    });
}

fn main() {
    harness::main(
        file!(),
        vec![
            harness::trial(
                "every_operation_answers_as_documented",
                every_operation_answers_as_documented,
            ),
            harness::trial(
                "undecodable_path_segments_get_the_json_error_body",
                undecodable_path_segments_get_the_json_error_body,
            ),
        ],
    );
}
