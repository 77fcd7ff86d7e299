//! Input hygiene of the collector (issue 10 items 6, 12–16), over real HTTP on 127.0.0.1:0 with
//! a SQLite store: a batch followed by trailing bytes, a gzip body with trailing bytes or a
//! second member (400, nothing stored); the same batch id in upper and lower case (one batch);
//! a heartbeat dated 2099, a window with more packets than its length allows, a bidi character
//! or a 257-byte id (422 naming the field, nothing stored); the database, WAL and shared-memory
//! files 0600; and `check-config` of the real binary naming a misspelled server key.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use voqa_collector::api::{self, AppState};
use voqa_collector::auth::hash_token;
use voqa_collector::config::CollectorConfig;
use voqa_collector::store::Store;

const AGENT: &str = "agent-token";
const OPS: &str = "ops-token";

struct Server {
    base: String,
    dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Server {
    fn db(&self) -> std::path::PathBuf {
        self.dir.path().join("voqa.db")
    }
}

async fn start() -> Server {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite:{}", dir.path().join("voqa.db").display());
    let store = Store::open(&url).await.expect("store");
    // The agent token is bound to every agent id: these tests are about the records.
    for (id, token, role, agents) in [("a1", AGENT, "agent", Some("*")), ("o1", OPS, "ops", None)] {
        store
            .token_insert_bound(id, &hash_token(token), role, agents, 0)
            .await
            .expect("token");
    }
    let state = AppState {
        store,
        config: CollectorConfig::parse("max_body_bytes = 200000\n")
            .expect("config")
            .into(),
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
        dir,
        shutdown: Some(tx),
    }
}

/// An HTTP client (ring as the process's rustls provider: no aws-lc in the tree).
fn http_client() -> reqwest::Client {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn post(s: &Server, body: Vec<u8>, encoding: Option<&str>) -> (u16, Value) {
    let mut req = http_client()
        .post(format!("{}/api/v1/ingest", s.base))
        .bearer_auth(AGENT)
        .header("content-type", "application/json")
        .body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Rows of a table, read from the database file beside the running server (WAL: readers
/// never wait for its writer).
async fn rows(s: &Server, table: &'static str) -> i64 {
    let sql = match table {
        "batches" => "SELECT COUNT(*) FROM batches",
        "stream_reports" => "SELECT COUNT(*) FROM stream_reports",
        "heartbeats" => "SELECT COUNT(*) FROM heartbeats",
        other => panic!("no count for {other}"),
    };
    let url = format!("sqlite:{}?mode=ro", s.db().display());
    let pool = sqlx::SqlitePool::connect(&url).await.expect("read the db");
    let n: i64 = sqlx::query_scalar(sql)
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    n
}

/// Stored records of every kind, for "nothing was stored".
async fn stored(s: &Server) -> (i64, i64, i64) {
    (
        rows(s, "batches").await,
        rows(s, "stream_reports").await,
        rows(s, "heartbeats").await,
    )
}

fn report(stream: &str, call: &str) -> Value {
    json!({
        "agent_id": "fra-media-1", "stream_id": stream,
        "src": "203.0.113.5:40000", "dst": "198.51.100.20:50000", "ssrc": "0x00000001",
        "payload_type": 0, "codec": "PCMU", "clock_rate": 8000, "call_id": call,
        "window_start": "2026-11-20T10:00:00Z", "window_end": "2026-11-20T10:00:10Z",
        "final": false, "packets": 500, "expected": 500, "lost": 0, "duplicates": 0,
        "reordered": 0, "jitter_ms": 1.0, "max_jitter_ms": 2.0, "mean_jitter_ms": 1.0,
        "jitter_sum_ms": 500.0, "jitter_samples": 500, "max_delta_ms": 21.0,
        "transitions": {"n00": 499, "n01": 0, "n10": 0, "n11": 0}, "burst_ratio": 1.0,
        "jb_discarded": 0, "effective_loss_pct": 0.0, "rtt_ms": null, "delay_ms": 100.0,
        "r_factor": 90.0, "mos": 4.3, "capture_drops": 0
    })
}

fn heartbeat(time: &str) -> Value {
    json!({
        "agent_id": "fra-media-1", "agent_version": "0.1.0", "time": time,
        "host_uptime_s": 1000, "cpu_pct": 3.0, "agent_cpu_pct": 1.0,
        "mem_total_bytes": 1000, "mem_used_bytes": 500, "agent_rss_bytes": 100,
        "load_avg": [0.1, 0.1, 0.1], "workers": [], "streams_tracked": 1,
        "streams_evicted": 0, "processes": []
    })
}

fn batch(id: &str, reports: Vec<Value>, heartbeats: Vec<Value>) -> Value {
    json!({
        "schema": voqa_wire::SCHEMA_VERSION, "batch_id": id, "agent_id": "fra-media-1",
        "sent_at": "2026-11-20T10:00:10Z", "reports": reports, "heartbeats": heartbeats
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

fn assert_error(what: &str, reply: (u16, Value), status: u16, code: &str, text: &str) {
    let (got, body) = reply;
    assert_eq!(got, status, "{what}: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(text), "{what}: {message}");
}

#[tokio::test]
async fn trailing_bytes_and_second_gzip_members_are_refused() {
    let s = start().await;
    let good = batch(
        "00000000-0000-4000-8000-000000000001",
        vec![report("0000000000000001", "call-1")],
        vec![],
    )
    .to_string()
    .into_bytes();
    let other = batch(
        "00000000-0000-4000-8000-000000000002",
        vec![report("0000000000000002", "call-2")],
        vec![],
    )
    .to_string()
    .into_bytes();

    let garbage = [good.clone(), b"garbage".to_vec()].concat();
    assert_error(
        "trailing garbage",
        post(&s, garbage, None).await,
        400,
        "malformed_json",
        "trailing characters",
    );
    let two = [good.clone(), other.clone()].concat();
    assert_error(
        "two batches in one body",
        post(&s, two, None).await,
        400,
        "malformed_json",
        "trailing characters",
    );
    let gz_tail = [gzip(&good), b"\0\0junk".to_vec()].concat();
    assert_error(
        "gzip with trailing bytes",
        post(&s, gz_tail, Some("gzip")).await,
        400,
        "bad_gzip",
        "6 bytes follow the gzip member",
    );
    let members = [gzip(&good), gzip(&other)].concat();
    let second = gzip(&other).len();
    assert_error(
        "gzip with a second member",
        post(&s, members, Some("gzip")).await,
        400,
        "bad_gzip",
        &format!("{second} bytes follow the gzip member"),
    );
    // A second member that would complete the batch the first one starts (what a
    // multi-member decoder would accept): the body is the first member alone.
    let (head, tail) = good.split_at(good.len() / 2);
    let split = [gzip(head), gzip(tail)].concat();
    assert_error(
        "a batch split over two members",
        post(&s, split, Some("gzip")).await,
        400,
        "bad_gzip",
        &format!("{} bytes follow the gzip member", gzip(tail).len()),
    );
    assert_eq!(stored(&s).await, (0, 0, 0), "nothing refused was stored");

    // The same bodies without the extra bytes are accepted: trailing whitespace is JSON.
    let spaced = [good.clone(), b" \r\n".to_vec()].concat();
    assert_eq!(post(&s, spaced, None).await.0, 200);
    let (status, body) = post(&s, gzip(&other), Some("gzip")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stored(&s).await, (2, 2, 0));
}

#[tokio::test]
async fn a_batch_id_in_upper_case_is_the_same_batch() {
    let s = start().await;
    let lower = "0000abcd-ef00-4000-8000-00000000abcd";
    let upper = lower.to_ascii_uppercase();
    let body = |id: &str| {
        batch(
            id,
            vec![report("00000000000000aa", "call-a")],
            vec![heartbeat("2026-11-20T10:00:05Z")],
        )
        .to_string()
        .into_bytes()
    };
    let (status, first) = post(&s, body(&upper), None).await;
    assert_eq!(
        (status, &first["status"]),
        (200, &json!("stored")),
        "{first}"
    );
    assert_eq!(first["batch_id"], lower, "the id is answered canonical");
    let (status, again) = post(&s, body(lower), None).await;
    assert_eq!(
        (status, &again["status"]),
        (200, &json!("duplicate")),
        "{again}"
    );
    let mixed = "0000AbCd-eF00-4000-8000-00000000aBcD";
    assert_eq!(post(&s, body(mixed), None).await.0, 200);
    assert_eq!(
        stored(&s).await,
        (1, 1, 1),
        "one batch, one report, one heartbeat"
    );
    let url = format!("sqlite:{}?mode=ro", s.db().display());
    let pool = sqlx::SqlitePool::connect(&url).await.expect("read the db");
    let id: String = sqlx::query_scalar("SELECT batch_id FROM batches")
        .fetch_one(&pool)
        .await
        .expect("batch row");
    assert_eq!(id, lower);
}

#[tokio::test]
async fn implausible_records_are_refused_naming_the_field() {
    let s = start().await;
    let id = "00000000-0000-4000-8000-000000000099";
    let mut flood = report("0000000000000003", "call-3");
    flood["packets"] = json!(100_001);
    flood["expected"] = json!(100_001);
    let cases = [
        (
            "a heartbeat dated 2099",
            batch(id, vec![], vec![heartbeat("2099-01-01T00:00:00Z")]),
            "heartbeats[0].time: 2099-01-01T00:00:00",
            "more than 300 s after the time it was received",
        ),
        (
            "a window dated 2099",
            batch(
                id,
                vec![{
                    let mut r = report("0000000000000004", "call-4");
                    r["window_end"] = json!("2099-01-01T00:00:00Z");
                    r
                }],
                vec![],
            ),
            "reports[0].window_end: 2099-01-01T00:00:00",
            "more than 300 s after the time it was received",
        ),
        (
            "100,001 packets in 10 s",
            batch(id, vec![flood], vec![]),
            "reports[0].packets: 100001",
            "10000 per second of a 10 s window",
        ),
        (
            "a bidi override in a call id",
            batch(
                id,
                vec![report("0000000000000005", "call-\u{202e}5-llac")],
                vec![],
            ),
            "reports[0].call_id",
            "U+202E",
        ),
        (
            "a 257-byte stream id",
            batch(id, vec![report(&"f".repeat(257), "call-6")], vec![]),
            "reports[0].stream_id",
            "257 bytes long, more than 256",
        ),
        (
            "a burst ratio below 1",
            batch(
                id,
                vec![{
                    let mut r = report("0000000000000007", "call-7");
                    r["burst_ratio"] = json!(0.5);
                    r
                }],
                vec![],
            ),
            "reports[0].burst_ratio",
            "must be within 1..=499",
        ),
    ];
    for (what, body, field, why) in cases {
        let (status, reply) = post(&s, body.to_string().into_bytes(), None).await;
        assert_eq!(status, 422, "{what}: {reply}");
        assert_eq!(reply["error"]["code"], "out_of_range", "{what}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(field) && message.contains(why),
            "{what}: {message}"
        );
    }
    assert_eq!(stored(&s).await, (0, 0, 0), "nothing refused was stored");
    // Now is fine: a heartbeat dated at the receive time is stored.
    let now = voqa_wire::Timestamp::from_ns(voqa_collector::now_ns()).to_string();
    let (status, reply) = post(
        &s,
        batch(id, vec![], vec![heartbeat(&now)])
            .to_string()
            .into_bytes(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_and_its_wal_and_shm_are_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let s = start().await;
    let body = batch(
        "00000000-0000-4000-8000-000000000100",
        vec![report("0000000000000100", "call-100")],
        vec![],
    );
    assert_eq!(post(&s, body.to_string().into_bytes(), None).await.0, 200);
    assert_eq!(rows(&s, "stream_reports").await, 1);
    let db = s.db();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db.display());
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{path}: {:o}", mode & 0o777);
    }
}

#[test]
fn check_config_names_a_misspelled_server_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("collector.toml");
    let db = dir.path().join("voqa.db");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:8080\"\ndatabse = \"sqlite:{}\"\nretention_dayz = 30\n",
            db.display()
        ),
    )
    .expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_voqa-collector"))
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .current_dir(dir.path())
        .output()
        .expect("run voqa-collector");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check-config accepted it: {stderr}");
    assert!(
        stderr.contains("'databse' (line 2)") && stderr.contains("'retention_dayz' (line 3)"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("voqa.db").exists(),
        "nothing was opened with the misspelled config"
    );
    // The same file spelled right passes.
    let fixed = std::fs::read_to_string(&config)
        .expect("read")
        .replace("databse", "database")
        .replace("retention_dayz", "retention_days");
    std::fs::write(&config, fixed).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_voqa-collector"))
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .current_dir(dir.path())
        .output()
        .expect("run voqa-collector");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists(), "the spelled-right database was opened");
}
