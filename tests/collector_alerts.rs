//! The alert engine end to end, through the real `voqa-collector` binary: a `quality_drop` rule
//! fires on a webhook of the test's own (which checks the HMAC signature) after a stretch of
//! bad calls is ingested, and resolves after good calls follow; a restart while it fires sends
//! nothing twice; a receiver answering 500 gets the notification once it recovers; a real
//! Prometheus Alertmanager receives the alert; two replicas on the real PostgreSQL evaluate one
//! at a time, and when the evaluator is killed the other takes over without a duplicate.
//!
//! Every wait polls with a deadline; the engine runs every second (`evaluate_every = "1s"`).
//! Alertmanager and PostgreSQL are optional here: their tests are reported as ignored without
//! them, and fail under `VOQA_REQUIRE_ALERTMANAGER` / `VOQA_REQUIRE_POSTGRES`.

#[path = "support/collector_proc.rs"]
mod collector_proc;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use collector_proc::{Served, get_json, http_client, token_url, wait_until};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use voqa_wire::{StreamReport, Timestamp, fixtures};

fn main() {
    harness::main(
        file!(),
        vec![
            harness::trial(
                "webhook_fires_signed_survives_a_restart_and_resolves",
                webhook_fires_signed_survives_a_restart_and_resolves,
            ),
            harness::trial(
                "a_failing_webhook_gets_the_notification_after_it_recovers",
                a_failing_webhook_gets_the_notification_after_it_recovers,
            ),
            harness::trial(
                "alertmanager_receives_the_alert_and_its_resolution",
                alertmanager_receives_the_alert_and_its_resolution,
            ),
            harness::trial(
                "an_email_list_receives_firing_and_resolved",
                an_email_list_receives_firing_and_resolved,
            ),
            harness::trial(
                "two_replicas_on_postgres_one_evaluator_and_a_takeover",
                two_replicas_on_postgres_one_evaluator_and_a_takeover,
            ),
        ],
    )
}

const AGENT: &str = "fra-media-1";
const SECRET: &str = "test-webhook-secret";

fn config(dir: &Path, hook_url: &str, extra: &str) -> PathBuf {
    let secret = dir.join("webhook.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("secret");
    let path = dir.join("collector.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[alerts]
evaluate_every = "1s"

[[alerts.webhooks]]
name = "ops-hook"
url = "{hook_url}"
secret_file = "{}"
{extra}
[[alerts.rules]]
name = "acme-quality"
kind = "quality_drop"
customer = "acme"
window = "10m"
threshold_pct = 20.0
min_calls = 5
for = "0s"
severity = "page"
notify = ["ops-hook"{}]

[[customers]]
id = "acme"
name = "ACME"
agents = ["{AGENT}"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95

[[customers]]
id = "globex"
name = "Globex"
agents = ["other-agent"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
"#,
            secret.display(),
            match (
                extra.contains("[alerts.alertmanager]"),
                extra.contains("[[alerts.emails]]"),
            ) {
                (true, _) => ", \"alertmanager\"",
                (false, true) => ", \"ops-mail\"",
                (false, false) => "",
            }
        ),
    )
    .expect("config");
    path
}

/// One webhook request as received.
#[derive(Debug, Clone)]
struct Received {
    body: Value,
    signature_ok: bool,
    at: Instant,
}

/// A webhook receiver of the test's own on loopback: verifies `X-Voqa-Signature` against the
/// body with the shared secret, records each request, answers 500 to the first `fail_first`.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    answered_500: Arc<AtomicU32>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(fail_first: u32) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let answered_500 = Arc::new(AtomicU32::new(0));
        let (rec, fails) = (received.clone(), answered_500.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (rec, fails) = (rec.clone(), fails.clone());
                async move {
                    if fails.load(Ordering::SeqCst) < fail_first {
                        fails.fetch_add(1, Ordering::SeqCst);
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let mut mac =
                        Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("hmac key");
                    mac.update(&body);
                    let expected: String = mac
                        .finalize()
                        .into_bytes()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    let signature_ok = headers
                        .get("x-voqa-signature")
                        .and_then(|v| v.to_str().ok())
                        == Some(format!("sha256={expected}").as_str());
                    rec.lock().expect("lock").push(Received {
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        signature_ok,
                        at: Instant::now(),
                    });
                    StatusCode::OK
                }
            }),
        );
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            received,
            answered_500,
            _runtime: runtime,
        }
    }

    fn states(&self) -> Vec<String> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .map(|r| r.body["state"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    fn all(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

static BATCH: AtomicU32 = AtomicU32::new(1);

/// A final report of one call of `AGENT` with `mos`, its window ending a second ago.
fn call(n: u32, mos: f64, now_ns: i64) -> StreamReport {
    let start = Timestamp::from_ns(now_ns - 11_000_000_000);
    let end = Timestamp::from_ns(now_ns - 1_000_000_000);
    let (stream, call) = (format!("stream-{n}"), format!("call-{n}"));
    fixtures::final_report(AGENT, &stream, &call, start, end, 500, mos)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Ingests calls `first..first + count`, all with `mos`; returns when the collector acknowledged.
fn ingest(base: &str, agent_token: &str, first: u32, count: u32, mos: f64) -> Instant {
    let now = now_ns();
    let id = BATCH.fetch_add(1, Ordering::SeqCst) + std::process::id() * 1000;
    let reports = (first..first + count).map(|n| call(n, mos, now)).collect();
    let batch = fixtures::batch(id.into(), AGENT, reports, vec![]);
    let status = rt().block_on(async {
        http_client()
            .post(format!("{base}/api/v1/ingest"))
            .bearer_auth(agent_token)
            .json(&batch)
            .send()
            .await
            .expect("ingest")
            .status()
    });
    assert!(status.is_success(), "ingest answered {status}");
    Instant::now()
}

fn metrics(base: &str, ops: &str) -> String {
    rt().block_on(async {
        http_client()
            .get(format!("{base}/metrics"))
            .bearer_auth(ops)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    })
}

/// Whether a replica's metrics say it holds the engine's lease (the sample line, not the HELP).
fn is_evaluator(metrics: &str) -> bool {
    metrics.lines().any(|line| line == "voqa_alert_evaluator 1")
}

fn get(base: &str, path: &str, token: &str) -> (u16, Value) {
    rt().block_on(get_json(base, path, token))
}

/// The bad stretch: 4 of 8 calls below MOS 4 (50 % > 20 %, 8 ≥ 5 calls); the good one after:
/// 30 more good calls make it 4 of 38 (10.5 %).
fn bad_stretch(base: &str, agent: &str) -> Instant {
    ingest(base, agent, 0, 4, 4.3);
    ingest(base, agent, 4, 4, 2.1)
}

fn webhook_fires_signed_survives_a_restart_and_resolves() {
    let dir = tempfile::tempdir().expect("tmp");
    let receiver = Receiver::start(0);
    let cfg = config(dir.path(), &receiver.url, "");
    let database = format!("sqlite:{}", dir.path().join("voqa.db").display());
    let ops = token_url(&database, &cfg, &["ops"]);
    let agent = token_url(&database, &cfg, &["agent", "--agent", AGENT]);
    let own = token_url(&database, &cfg, &["customer:acme"]);
    let other = token_url(&database, &cfg, &["customer:globex"]);
    let mut served = Served::start_url(&database, &cfg, &dir.path().join("serve.log"));

    // Four good calls alone are fewer than min_calls and fine anyway: nothing.
    ingest(&served.base(), &agent, 0, 4, 4.3);
    let ingested = ingest(&served.base(), &agent, 4, 4, 2.1);
    wait_until("the firing notification", Duration::from_secs(30), || {
        !receiver.all().is_empty()
    });
    let got = receiver.all();
    let latency = got[0].at.duration_since(ingested);
    println!("bad stretch ingested → firing notification received: {latency:?}");
    assert!(
        latency < Duration::from_secs(3),
        "one cadence (1 s) and a little: {latency:?}"
    );
    let n = &got[0].body;
    assert!(got[0].signature_ok, "the HMAC verifies: {n}");
    assert_eq!(n["state"], "firing");
    assert_eq!(n["rule"], "acme-quality");
    assert_eq!(n["customer"], "acme");
    assert_eq!(n["value"], 50.0, "4 of 8 calls below MOS 4: {n}");
    assert_eq!(n["threshold"], 20.0);
    assert!(n["since"].as_str().is_some_and(|s| s.ends_with('Z')), "{n}");
    let evidence = n["evidence_url"].as_str().expect("evidence_url");
    let prefix = format!("{}/api/v1/customers/acme/sla?from=", served.base());
    assert!(evidence.starts_with(&prefix), "{evidence}");
    // The link works with an ops token.
    let path = evidence.trim_start_matches(&served.base());
    let (status, _) = get(&served.base(), path, &ops);
    assert_eq!(status, 200, "{evidence}");

    // The API: firing for ops and the customer itself; 403 for another customer.
    let (status, active) = get(&served.base(), "/api/v1/alerts", &ops);
    assert_eq!(status, 200, "{active}");
    assert_eq!(active["items"][0]["state"], "firing", "{active}");
    assert_eq!(active["items"][0]["labels"]["customer"], "acme", "{active}");
    let (status, mine) = get(&served.base(), "/api/v1/alerts", &own);
    assert_eq!(
        (status, mine["items"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (status, theirs) = get(&served.base(), "/api/v1/alerts", &other);
    assert_eq!(
        (status, theirs["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, _) = get(
        &served.base(),
        "/api/v1/alerts/history?customer=acme",
        &other,
    );
    assert_eq!(status, 403);
    let text = metrics(&served.base(), &ops);
    assert!(
        text.contains("voqa_alerts_firing{rule=\"acme-quality\",severity=\"page\"} 1"),
        "{text}"
    );

    // A restart while firing: the new process knows it fires and sends nothing again.
    served.kill();
    let served = Served::start_url(&database, &cfg, &dir.path().join("serve2.log"));
    wait_until(
        "the restarted engine to evaluate",
        Duration::from_secs(30),
        || is_evaluator(&metrics(&served.base(), &ops)),
    );
    // Three more cycles than needed to send anything.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.states(), ["firing"], "nothing sent twice");

    // Good calls: 4 of 38 below (10.5 %): resolved, once.
    ingest(&served.base(), &agent, 8, 30, 4.4);
    wait_until("the resolved notification", Duration::from_secs(30), || {
        receiver.states().len() >= 2
    });
    let got = receiver.all();
    assert_eq!(receiver.states(), ["firing", "resolved"]);
    assert!(got[1].signature_ok);
    assert!(
        (got[1].body["value"].as_f64().expect("value") - 400.0 / 38.0).abs() < 1e-9,
        "{}",
        got[1].body
    );
    assert_eq!(got[1].body["since"], got[0].body["since"]);
    let (_, active) = get(&served.base(), "/api/v1/alerts", &ops);
    assert_eq!(
        active["items"].as_array().map(Vec::len),
        Some(0),
        "{active}"
    );
    let (status, history) = get(&served.base(), "/api/v1/alerts/history?customer=acme", &own);
    assert_eq!(status, 200, "{history}");
    let states: Vec<&str> = history["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["state"].as_str())
        .collect();
    assert_eq!(states, ["firing", "resolved"], "{history}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.states(), ["firing", "resolved"], "nothing more");
}

/// The e-mail channel through a real SMTP conversation (aiosmtpd on loopback, clear text,
/// which the transport allows to loopback only): the list gets one message when the rule fires
/// and one when it resolves, each naming the rule, the customer, the value against the
/// threshold and the evidence link — the same facts as the signed webhook beside it.
fn an_email_list_receives_firing_and_resolved() {
    let dir = tempfile::tempdir().expect("tmp");
    let Some(sink) = smtp_sink::Sink::start(dir.path(), None, None) else {
        return;
    };
    let receiver = Receiver::start(0);
    let extra = format!(
        "\n[alerts.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"voqa@example.net\"\n\n\
         [[alerts.emails]]\nname = \"ops-mail\"\nto = [\"noc@example.net\", \"oncall@example.net\"]\n",
        sink.port
    );
    let cfg = config(dir.path(), &receiver.url, &extra);
    let database = format!("sqlite:{}", dir.path().join("voqa.db").display());
    let agent = token_url(&database, &cfg, &["agent", "--agent", AGENT]);
    let served = Served::start_url(&database, &cfg, &dir.path().join("serve.log"));

    bad_stretch(&served.base(), &agent);
    let firing = sink.wait_for(1, Duration::from_secs(30));
    let m = &firing[0];
    assert_eq!(
        m["subject"], "[voqa page] FIRING acme-quality (acme)",
        "{m}"
    );
    assert_eq!(m["mail_from"], "voqa@example.net", "{m}");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["noc@example.net", "oncall@example.net"]),
        "{m}"
    );
    let body = m["body"].as_str().expect("a text body");
    // 4 of 8 calls below MOS 4 (see bad_stretch).
    assert!(body.contains("value: 50.00 (threshold 20)"), "{body}");
    assert!(body.contains("customer: acme"), "{body}");
    assert!(
        body.contains(&format!(
            "evidence: {}/api/v1/customers/acme/sla?from=",
            served.base()
        )),
        "{body}"
    );
    // The webhook beside it got the same firing, once.
    wait_until("the webhook's firing", Duration::from_secs(30), || {
        !receiver.all().is_empty()
    });

    // Good calls: 4 of 38 below (10.5 %) resolves it: one more message, and no repeat.
    ingest(&served.base(), &agent, 8, 30, 4.4);
    let both = sink.wait_for(2, Duration::from_secs(30));
    assert_eq!(
        both[1]["subject"],
        "[voqa page] RESOLVED acme-quality (acme)"
    );
    assert!(
        both[1]["body"]
            .as_str()
            .is_some_and(|b| b.contains("value: 10.53 (threshold 20)")),
        "{}",
        both[1]
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.messages().len(), 2, "nothing sent twice");
    assert_eq!(receiver.states(), ["firing", "resolved"]);
}

fn a_failing_webhook_gets_the_notification_after_it_recovers() {
    let dir = tempfile::tempdir().expect("tmp");
    // 500 to the first three attempts (backoff 2 s, 4 s, 8 s at a 1 s cadence).
    let receiver = Receiver::start(3);
    let cfg = config(dir.path(), &receiver.url, "");
    let database = format!("sqlite:{}", dir.path().join("voqa.db").display());
    let ops = token_url(&database, &cfg, &["ops"]);
    let agent = token_url(&database, &cfg, &["agent", "--agent", AGENT]);
    let served = Served::start_url(&database, &cfg, &dir.path().join("serve.log"));
    bad_stretch(&served.base(), &agent);
    wait_until(
        "delivery after the failures",
        Duration::from_secs(60),
        || !receiver.all().is_empty(),
    );
    assert_eq!(receiver.answered_500.load(Ordering::SeqCst), 3);
    assert_eq!(receiver.states(), ["firing"]);
    assert!(receiver.all()[0].signature_ok);
    let text = metrics(&served.base(), &ops);
    assert!(
        text.contains("voqa_alert_notifications_failed_total{channel=\"ops-hook\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("voqa_alert_notifications_sent_total{channel=\"ops-hook\"} 1"),
        "{text}"
    );
    assert!(
        served.log_text().contains("answered HTTP 500"),
        "{}",
        served.log_text()
    );
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn alertmanager_receives_the_alert_and_its_resolution() {
    let bin = std::env::var_os("VOQA_ALERTMANAGER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus-alertmanager"));
    if !bin.is_file() {
        harness::skip(
            "VOQA_REQUIRE_ALERTMANAGER",
            &format!(
                "no Alertmanager at {} (apt install prometheus-alertmanager)",
                bin.display()
            ),
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .expect("am config");
    let port = free_port();
    let am = Killed(
        Command::new(&bin)
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager"),
    );
    let am_url = format!("http://127.0.0.1:{port}");
    let alerts = || -> Option<Value> {
        rt().block_on(async {
            let resp = http_client()
                .get(format!("{am_url}/api/v2/alerts"))
                .send()
                .await
                .ok()?;
            resp.json::<Value>().await.ok()
        })
    };
    wait_until("Alertmanager to answer", Duration::from_secs(30), || {
        alerts().is_some()
    });
    let receiver = Receiver::start(0);
    let cfg = config(
        dir.path(),
        &receiver.url,
        &format!("[alerts.alertmanager]\nurl = \"{am_url}\"\n"),
    );
    let database = format!("sqlite:{}", dir.path().join("voqa.db").display());
    let agent = token_url(&database, &cfg, &["agent", "--agent", AGENT]);
    let served = Served::start_url(&database, &cfg, &dir.path().join("serve.log"));
    bad_stretch(&served.base(), &agent);
    let active = |a: &Value| {
        a.as_array().is_some_and(|list| {
            list.iter().any(|x| {
                x["labels"]["alertname"] == "acme-quality"
                    && x["labels"]["customer"] == "acme"
                    && x["labels"]["severity"] == "page"
                    && x["status"]["state"] == "active"
            })
        })
    };
    wait_until("the alert in Alertmanager", Duration::from_secs(30), || {
        alerts().is_some_and(|a| active(&a))
    });
    let a = alerts().expect("alerts");
    let alert = a
        .as_array()
        .and_then(|l| {
            l.iter()
                .find(|x| x["labels"]["alertname"] == "acme-quality")
        })
        .expect("the alert");
    assert!(
        alert["annotations"]["evidence_url"]
            .as_str()
            .is_some_and(|u| u.contains("/api/v1/customers/acme/sla?from=")),
        "{alert}"
    );
    // Good calls: resolved, and Alertmanager no longer lists it as active.
    ingest(&served.base(), &agent, 8, 30, 4.4);
    wait_until(
        "the alert to resolve in Alertmanager",
        Duration::from_secs(30),
        || alerts().is_some_and(|a| !active(&a)),
    );
    assert_eq!(receiver.states(), ["firing", "resolved"]);
    drop(am);
}

fn two_replicas_on_postgres_one_evaluator_and_a_takeover() {
    let Some(database) = harness::fresh_postgres("alerts replicas") else {
        return;
    };
    // Dropped however the test ends (declared first: dropped after the replicas).
    let _database = DropDatabase(database.clone());
    let dir = tempfile::tempdir().expect("tmp");
    let receiver = Receiver::start(0);
    let cfg = config(dir.path(), &receiver.url, "");
    let ops = token_url(&database, &cfg, &["ops"]);
    let agent = token_url(&database, &cfg, &["agent", "--agent", AGENT]);
    let mut a = Served::start_url(&database, &cfg, &dir.path().join("a.log"));
    let mut b = Served::start_url(&database, &cfg, &dir.path().join("b.log"));
    let evaluator = |s: &Served| is_evaluator(&metrics(&s.base(), &ops));
    wait_until("one evaluator", Duration::from_secs(30), || {
        evaluator(&a) || evaluator(&b)
    });
    // For a few cycles, exactly one of the two holds the lease.
    for _ in 0..10 {
        let (ea, eb) = (evaluator(&a), evaluator(&b));
        assert!(ea != eb, "evaluators: a {ea}, b {eb}");
        std::thread::sleep(Duration::from_millis(300));
    }
    bad_stretch(&a.base(), &agent);
    wait_until("the firing notification", Duration::from_secs(30), || {
        !receiver.all().is_empty()
    });
    // Kill the evaluator; the other takes over (the lease expires after 3 s) and, knowing
    // the alert fires, sends nothing again; then the good calls resolve it, once.
    let (survivor, victim) = if evaluator(&a) {
        (&mut b, &mut a)
    } else {
        (&mut a, &mut b)
    };
    victim.kill();
    wait_until("the takeover", Duration::from_secs(30), || {
        evaluator(survivor)
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        receiver.states(),
        ["firing"],
        "no duplicate after the takeover"
    );
    ingest(&survivor.base(), &agent, 8, 30, 4.4);
    wait_until("the resolved notification", Duration::from_secs(30), || {
        receiver.states().len() >= 2
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.states(), ["firing", "resolved"]);
    assert!(receiver.all().iter().all(|r| r.signature_ok));
}

/// The test's PostgreSQL database, dropped when the test ends, passed or failed.
struct DropDatabase(String);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        if let Some(name) = self.0.rsplit('/').next() {
            let _ = Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
                .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .output();
        }
    }
}
