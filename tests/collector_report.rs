//! Customer reports (issue 11) against a fixture month whose every figure is computed by
//! hand below: October 2026 for a customer in Europe/Berlin (DST ends on Sunday 25 October,
//! a 25-hour day), with a no-data stretch before the agent's first heartbeat, weekly
//! maintenance, a four-hour outage, capture drops, a call without a MOS and a clear Call-ID.
//!
//! The same fixture is stored in SQLite and in PostgreSQL (through `Store::ingest`) and the
//! report built by the library must give the same hand-computed numbers on both; on SQLite the
//! `voqa-collector report` binary writes the JSON (file 0600) and the CSV, and the served API
//! answers the report to ops and to the customer's own token, 403 to another customer's, and
//! an honest no-data report for an empty month.
//!
//! PostgreSQL is at 127.0.0.1:5432 (trust) when present; without it that test is reported as
//! ignored (failed under `VOQA_REQUIRE_POSTGRES`, as in CI).

#[path = "support/harness.rs"]
mod harness;

use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};
use voqa_collector::api::{self, AppState};
use voqa_collector::auth::hash_token;
use voqa_collector::config::CollectorConfig;
use voqa_collector::report::build::{
    ReportPeriodSpec, build, call_pseudonym, customer_zone, for_each_call, local_days, to_json,
};
use voqa_collector::store::Store;
use voqa_wire::{Heartbeat, StreamReport, Timestamp, Transitions, fixtures};

fn main() {
    harness::main(
        file!(),
        vec![
            harness::trial(
                "fixture_month_on_sqlite_through_the_library_and_the_binary",
                fixture_month_on_sqlite_through_the_library_and_the_binary,
            ),
            harness::trial("fixture_month_on_postgres", fixture_month_on_postgres),
            harness::trial(
                "many_calls_series_match_every_call_on_sqlite",
                many_calls_series_match_every_call_on_sqlite,
            ),
            harness::trial(
                "many_calls_series_match_every_call_on_postgres",
                many_calls_series_match_every_call_on_postgres,
            ),
            harness::trial(
                "served_report_respects_tokens_and_tells_no_data_honestly",
                served_report_respects_tokens_and_tells_no_data_honestly,
            ),
        ],
    )
}

const AGENT: &str = "fra-media-1";
const SECOND: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * SECOND;

const CONFIG: &str = r#"
[[customers]]
id = "acme"
name = "ACME Contact Centre"
agents = ["fra-media-1"]
time_zone = "Europe/Berlin"
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
maintenance = ["Sun 02:00-04:00 UTC"]
heartbeat_interval_s = 3600

[[customers]]
id = "other"
name = "Other Ltd"
agents = ["elsewhere-1"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
"#;

fn ns(text: &str) -> i64 {
    Timestamp::parse(text).expect(text).as_ns()
}

/// A window histogram of 100 packets at `jitter_us`.
fn histogram(jitter_us: u64) -> String {
    let mut h = voqa_wire::histogram::new_jitter_histogram();
    h.record_n(jitter_us, 100).expect("in range");
    voqa_wire::histogram::HistogramEncoder::new()
        .encode(&h)
        .expect("encodes")
}

/// The one (final) report of a 60 s stream, with its whole-stream totals.
fn stream(
    stream_id: &str,
    call: &str,
    start_ns: i64,
    mos: Option<f64>,
    loss: f64,
    jitter_us: u64,
    capture_drops: u64,
) -> StreamReport {
    let start = Timestamp::from_ns(start_ns);
    let end = Timestamp::from_ns(start_ns + 60 * SECOND);
    let mut r = fixtures::final_report(AGENT, stream_id, call, start, end, 100, 0.0);
    // Where this file's streams differ from the fixture: their own source, the jitter of the
    // histogram, the given MOS (or none), loss and drops, no R nor delay, no transitions.
    let max_jitter_ms = Some(jitter_us as f64 / 1000.0);
    r.src = "203.0.113.7:40000".into();
    r.max_jitter_ms = max_jitter_ms;
    r.jitter_histogram = Some(histogram(jitter_us));
    r.max_delta_ms = 20.0;
    r.transitions = Transitions::default();
    r.effective_loss_pct = loss;
    (r.delay_ms, r.r_factor, r.mos) = (None, None, mos);
    r.capture_drops = capture_drops;
    if let Some(t) = r.totals.as_mut() {
        t.src = r.src.clone();
        (t.jitter_ms, t.max_jitter_ms, t.mean_jitter_ms) = (None, max_jitter_ms, None);
        t.max_delta_ms = 20.0;
        t.effective_loss_pct = loss;
        (t.delay_ms, t.r_factor, t.mos) = (None, None, mos);
    }
    r
}

fn heartbeat(time_ns: i64, kernel_drops: u64) -> Heartbeat {
    let mut beat = fixtures::heartbeat(AGENT, Timestamp::from_ns(time_ns));
    beat.workers[0].kernel_drops = kernel_drops;
    beat
}

/// The fixture's calls: (call id, start, worst stream's MOS, its loss %). The other stream
/// of each call has MOS 4.4 and no loss, so each call's figures are its worst stream's.
/// Local (Berlin) days are in the comments: the 25th is the 25-hour day.
const CALLS: &[(&str, &str, Option<f64>, f64)] = &[
    // 2026-10-05 (CEST, UTC+2)
    (
        "anon:0000000000000001",
        "2026-10-05T08:00:00Z",
        Some(4.4),
        0.0,
    ),
    (
        "anon:0000000000000002",
        "2026-10-05T09:00:00Z",
        Some(4.3),
        0.5,
    ),
    (
        "anon:0000000000000003",
        "2026-10-05T10:00:00Z",
        Some(4.2),
        0.2,
    ),
    (
        "anon:0000000000000004",
        "2026-10-05T11:00:00Z",
        Some(3.5),
        2.0,
    ),
    // 2026-10-12: a call whose streams have no MOS (counted, not rated).
    ("anon:0000000000000005", "2026-10-12T10:00:00Z", None, 0.0),
    // 2026-10-25: 00:30 CEST (22:30 UTC on the 24th), 02:30 CEST, 02:30 CET (the hour
    // that happens twice) and 23:30 CET. The clear Call-ID must not reach the report.
    (
        "anon:0000000000000006",
        "2026-10-24T22:30:00Z",
        Some(4.1),
        0.3,
    ),
    (
        "anon:0000000000000007",
        "2026-10-25T00:30:00Z",
        Some(3.9),
        1.5,
    ),
    (
        "secret-call@pbx.example.com",
        "2026-10-25T01:30:00Z",
        Some(4.35),
        0.1,
    ),
    (
        "anon:0000000000000009",
        "2026-10-25T22:30:00Z",
        Some(2.8),
        5.0,
    ),
    // 2026-10-31, 23:30 CET: still October in Berlin (22:30 UTC).
    (
        "anon:0000000000000010",
        "2026-10-31T22:30:00Z",
        Some(4.0),
        0.4,
    ),
];

/// Stores the fixture: the calls above, heartbeats every hour from 2 October 00:00 UTC
/// (before it: no data) to the end of the month except 11:00–13:00 on 10 October (down from
/// 10:00 to 14:00), and the kernel drop counter rising by 500 at 12:00 on 20 October.
async fn store_fixture(store: &Store) {
    let mut reports = Vec::new();
    for (index, &(call, start, mos, loss)) in CALLS.iter().enumerate() {
        let start = ns(start);
        // The 2.8 call was the jittery one: 2 ms per packet on both streams, 1 ms elsewhere.
        let jitter_us = if mos == Some(2.8) { 2000 } else { 1000 };
        // The 3.5 call's worst stream had capture drops in its window.
        let drops = u64::from(mos == Some(3.5)) * 3;
        reports.push(stream(
            &format!("{index:02}a"),
            call,
            start,
            mos,
            loss,
            jitter_us,
            drops,
        ));
        let other_mos = mos.map(|_| 4.4);
        reports.push(stream(
            &format!("{index:02}b"),
            call,
            start,
            other_mos,
            0.0,
            jitter_us,
            0,
        ));
    }
    let mut heartbeats = Vec::new();
    let mut t = ns("2026-10-02T00:00:00Z");
    while t < ns("2026-10-31T23:00:00Z") {
        let outage = t > ns("2026-10-10T10:00:00Z") && t < ns("2026-10-10T14:00:00Z");
        if !outage {
            let drops = if t >= ns("2026-10-20T12:00:00Z") {
                500
            } else {
                0
            };
            heartbeats.push(heartbeat(t, drops));
        }
        t += HOUR;
    }
    for (n, chunk) in heartbeats.chunks(200).enumerate() {
        let first = if n == 0 { reports.clone() } else { vec![] };
        let batch = fixtures::batch(n as u64, AGENT, first, chunk.to_vec());
        store
            .ingest(&batch, ns("2026-11-01T00:00:00Z"))
            .await
            .expect("ingest");
    }
}

fn config() -> CollectorConfig {
    CollectorConfig::parse(CONFIG).expect("config")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn commitment<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["evaluation"]["commitments"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name}"))
}

/// Every figure of the fixture month, computed by hand.
fn check_document(doc: &Value) {
    // The period: Berlin's October, CEST at the start, CET at the end.
    let period = &doc["period"];
    assert_eq!(period["label"], "2026-10");
    assert_eq!(period["from_ns"].as_i64(), Some(ns("2026-09-30T22:00:00Z")));
    assert_eq!(period["to_ns"].as_i64(), Some(ns("2026-10-31T23:00:00Z")));
    assert_eq!(period["from_local"], "2026-10-01T00:00:00+02:00");
    assert_eq!(period["to_local"], "2026-11-01T00:00:00+01:00");
    assert_eq!(doc["customer"]["time_zone"], "Europe/Berlin");

    // Days: 31, the 25th has 25 hours.
    let days = doc["days"].as_array().expect("days");
    assert_eq!(days.len(), 31);
    let day = |date: &str| {
        days.iter()
            .find(|d| d["date"] == date)
            .unwrap_or_else(|| panic!("no day {date}"))
    };
    assert_eq!(f(&day("2026-10-25")["hours"]), 25.0);
    assert_eq!(f(&day("2026-10-24")["hours"]), 24.0);
    // 5 October: MOS 3.5, 4.2, 4.3, 4.4 → median (rank 2) 4.2, p5 (rank 1) 3.5, 3 of 4 ≥ 4.0.
    let d5 = day("2026-10-05");
    assert_eq!(
        (d5["calls"].as_u64(), d5["calls_with_mos"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!((f(&d5["mos_p50"]), f(&d5["mos_p5"])), (4.2, 3.5));
    assert!(close(f(&d5["meeting_mos_pct"]), 75.0));
    // 25 October (local): 4.1 (22:30 UTC on the 24th), 3.9, 4.35, 2.8 → median 3.9, p5 2.8, 2 of 4.
    let d25 = day("2026-10-25");
    assert_eq!(d25["calls"].as_u64(), Some(4));
    assert_eq!((f(&d25["mos_p50"]), f(&d25["mos_p5"])), (3.9, 2.8));
    assert!(close(f(&d25["meeting_mos_pct"]), 50.0));
    assert_eq!(
        day("2026-10-24")["calls"].as_u64(),
        Some(0),
        "the 22:30 UTC call is the 25th's"
    );
    let d31 = day("2026-10-31");
    assert_eq!((d31["calls"].as_u64(), f(&d31["mos_p50"])), (Some(1), 4.0));
    assert!(close(f(&d31["meeting_mos_pct"]), 100.0));
    // 12 October: one call without a MOS.
    let d12 = day("2026-10-12");
    assert_eq!(
        (d12["calls"].as_u64(), d12["calls_with_mos"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(d12["mos_p50"].is_null() && d12["meeting_mos_pct"].is_null());
    let total: u64 = days.iter().map(|d| d["calls"].as_u64().unwrap_or(0)).sum();
    assert_eq!(total, 10);

    // MOS histogram: 35 bins of 0.1 from 1.0; 4.3 and 4.35 share [4.3, 4.4).
    let bins = doc["mos_histogram"].as_array().expect("bins");
    assert_eq!(bins.len(), 35);
    let count = |lo: f64| {
        bins.iter()
            .find(|b| close(f(&b["lo"]), lo))
            .and_then(|b| b["calls"].as_u64())
            .unwrap_or_else(|| panic!("no bin {lo}"))
    };
    for (lo, n) in [
        (2.8, 1),
        (3.5, 1),
        (3.9, 1),
        (4.0, 1),
        (4.1, 1),
        (4.2, 1),
        (4.3, 2),
        (4.4, 1),
    ] {
        assert_eq!(count(lo), n, "bin {lo}");
    }
    assert_eq!(
        bins.iter()
            .map(|b| b["calls"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        9
    );
    assert_eq!(f(&bins[34]["hi"]), 4.5);
    assert_eq!(doc["calls_without_mos"].as_u64(), Some(1));

    // Loss per call, sorted: 0, 0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.5, 2, 5 → p50 (rank 5) 0.3,
    // p95 (rank 10) and p99 5.
    let loss = &doc["loss_pct"];
    assert_eq!(loss["samples"].as_u64(), Some(10));
    assert_eq!(
        (f(&loss["p50"]), f(&loss["p95"]), f(&loss["p99"])),
        (0.3, 5.0, 5.0)
    );
    // Jitter: 20 windows of 100 packets; the 2.8 call's two at 2 ms (200 packets, 10 %),
    // the rest at 1 ms → p50 1 ms, p95 and p99 2 ms, each reported as the middle of its
    // histogram bucket: at 2 significant digits (256 sub-buckets) 1000 µs lies in
    // [1000, 1004) (width 4 from 512 µs) → 1.002 ms, 2000 µs in [2000, 2008) → 2.004 ms.
    let jitter = &doc["jitter_ms"];
    assert_eq!(jitter["samples"].as_u64(), Some(2000));
    assert_eq!(
        (f(&jitter["p50"]), f(&jitter["p95"]), f(&jitter["p99"])),
        (1.002, 2.004, 2.004)
    );

    // Verdicts: 6 of 9 calls ≥ 4.0 (66.67 % < 95 %); worst loss 5 % > 1 %; jitter p95 2 ms;
    // uptime: 745 h period − 8 h maintenance (Sundays 4, 11, 18, 25) − 26 h before the first
    // heartbeat = 2,559,600 s measured, 14,400 s down → 99.4374 %.
    let ev = &doc["evaluation"];
    assert_eq!(ev["verdict"], "breached");
    assert_eq!(ev["calls"].as_u64(), Some(10));
    let mos = commitment(doc, "mos");
    assert_eq!(mos["verdict"], "breached");
    assert!(close(f(&mos["measured"]), 6.0 / 9.0 * 100.0), "{mos}");
    let loss_c = commitment(doc, "loss");
    assert_eq!(
        (loss_c["verdict"].as_str(), f(&loss_c["measured"])),
        (Some("breached"), 5.0)
    );
    let jitter_c = commitment(doc, "jitter_p95");
    assert_eq!(
        (jitter_c["verdict"].as_str(), f(&jitter_c["measured"])),
        (Some("met"), 2.004)
    );
    let uptime = commitment(doc, "uptime");
    assert_eq!(uptime["verdict"], "breached");
    let expected_uptime = (2_559_600.0 - 14_400.0) / 2_559_600.0 * 100.0;
    assert!(
        (f(&uptime["measured"]) - expected_uptime).abs() < 1e-6,
        "{uptime}"
    );

    // Timeline: no data, then up with four maintenance windows and one outage, no future.
    let spans: Vec<(String, i64, i64)> = doc["uptime_timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|s| {
            (
                s["state"].as_str().unwrap_or("").to_owned(),
                s["from_ns"].as_i64().unwrap_or(0),
                s["to_ns"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let expected: Vec<(String, i64, i64)> = [
        ("no_data", "2026-09-30T22:00:00Z", "2026-10-02T00:00:00Z"),
        ("up", "2026-10-02T00:00:00Z", "2026-10-04T02:00:00Z"),
        (
            "maintenance",
            "2026-10-04T02:00:00Z",
            "2026-10-04T04:00:00Z",
        ),
        ("up", "2026-10-04T04:00:00Z", "2026-10-10T10:00:00Z"),
        ("down", "2026-10-10T10:00:00Z", "2026-10-10T14:00:00Z"),
        ("up", "2026-10-10T14:00:00Z", "2026-10-11T02:00:00Z"),
        (
            "maintenance",
            "2026-10-11T02:00:00Z",
            "2026-10-11T04:00:00Z",
        ),
        ("up", "2026-10-11T04:00:00Z", "2026-10-18T02:00:00Z"),
        (
            "maintenance",
            "2026-10-18T02:00:00Z",
            "2026-10-18T04:00:00Z",
        ),
        ("up", "2026-10-18T04:00:00Z", "2026-10-25T02:00:00Z"),
        (
            "maintenance",
            "2026-10-25T02:00:00Z",
            "2026-10-25T04:00:00Z",
        ),
        ("up", "2026-10-25T04:00:00Z", "2026-10-31T23:00:00Z"),
    ]
    .iter()
    .map(|&(state, a, b)| (state.to_owned(), ns(a), ns(b)))
    .collect();
    assert_eq!(spans, expected);

    // Worst calls: lowest MOS first, with the stream that set it; the clear Call-ID is hashed.
    let worst = doc["worst_calls"].as_array().expect("worst");
    assert_eq!(worst.len(), 9);
    let order: Vec<f64> = worst.iter().map(|c| f(&c["mos"])).collect();
    assert_eq!(order, [2.8, 3.5, 3.9, 4.0, 4.1, 4.2, 4.3, 4.35, 4.4]);
    assert_eq!(worst[0]["call"], "anon:0000000000000009");
    assert_eq!(worst[0]["worst_stream"]["stream_id"], "08a");
    assert_eq!(worst[0]["worst_stream"]["codec"], "PCMU");
    assert_eq!(f(&worst[0]["loss_pct"]), 5.0);
    let hashed = &worst[7]["call"];
    assert!(
        hashed.as_str().is_some_and(|c| c.starts_with("hash:")),
        "{hashed}"
    );
    let text = doc.to_string();
    assert!(!text.contains("secret-call"), "a clear Call-ID leaked");

    // Notices: the capture drops (500 between the heartbeats at 11:00 and 12:00 on the
    // 20th), the report window with drops, the outage, and the stretch without data.
    let notices = doc["notices"].as_array().expect("notices");
    let has = |kind: &str, from: Option<&str>| {
        notices.iter().any(|n| {
            n["kind"] == kind
                && from.is_none_or(|from| n["from"].as_str().is_some_and(|t| ns(t) == ns(from)))
        })
    };
    assert!(
        has("capture_drops", Some("2026-10-20T11:00:00Z")),
        "{notices:?}"
    );
    assert!(
        notices.iter().any(|n| n["kind"] == "capture_drops"
            && n["text"].as_str().is_some_and(|t| t.contains("500")))
    );
    assert!(notices.iter().any(|n| {
        n["kind"] == "capture_drops"
            && n["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("1 report windows"))
    }));
    assert!(
        has("agent_outage", Some("2026-10-10T10:00:00Z")),
        "{notices:?}"
    );
    assert!(has("no_data", Some("2026-09-30T22:00:00Z")), "{notices:?}");

    // Methods: the codec seen, with its G.113 values from the one table.
    let codecs = doc["methods"]["codecs"].as_array().expect("codecs");
    assert_eq!(codecs.len(), 1);
    assert_eq!(
        (
            codecs[0]["codec"].as_str(),
            f(&codecs[0]["ie"]),
            f(&codecs[0]["bpl"])
        ),
        (Some("PCMU"), 0.0, 25.1)
    );
    assert!(
        doc["methods"]["time_zone"]
            .as_str()
            .is_some_and(|t| t.contains("Europe/Berlin"))
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn october() -> ReportPeriodSpec {
    ReportPeriodSpec::parse(Some("2026-10"), None, None).expect("period")
}

const NOW: &str = "2026-12-01T00:00:00Z";

async fn check_store(store: &Store) {
    store_fixture(store).await;
    let config = config();
    let customer = config.customer("acme").expect("acme");
    let doc = build(store, customer, &october(), ns(NOW), "test")
        .await
        .expect("report");
    let hash = doc.provenance.json_sha256.clone().expect("hash set");
    let json = to_json(&doc).expect("json");
    let digest: String = Sha256::digest(&json)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hash, digest, "the hash is of the JSON form's bytes");
    let value: Value = serde_json::from_slice(&json).expect("parses");
    assert!(value["provenance"]["json_sha256"].is_null());
    check_document(&value);
    check_local_times(&voqa_collector::report::html::render(&doc));
}

/// The page shows instants in the customer's zone, the offset of each as its element's title
/// (the document keeps UTC), hand-converted to Berlin time: CEST (UTC+02:00) until 01:00 UTC on 25
/// October, CET (UTC+01:00) after.
fn check_local_times(html: &str) {
    let has = |text: &str| assert!(html.contains(text), "the page shows {text:?}");
    // The outage, 10:00–14:00 UTC on 10 October, in the intervals table and a notice.
    let outage = "<span title=\"UTC+02:00\">2026-10-10 12:00:00</span>";
    let back = "<span title=\"UTC+02:00\">2026-10-10 16:00:00</span>";
    has(&format!("<td>{outage}</td><td>{back}</td>"));
    has(&format!("({outage} – {back})"));
    has("<th>From (local)</th>");
    // Worst calls, to the minute with the offset as the cell's title: 00:30 UTC and 01:30 UTC
    // on the 25th are both 02:30 local, told apart by their offsets; 22:30 UTC on the 25th is
    // 23:30 CET the same day.
    has("<th>Start (local)</th>");
    has("<td class=\"nowrap\" title=\"UTC+02:00\">2026-10-25 02:30</td>");
    has("<td class=\"nowrap\" title=\"UTC+01:00\">2026-10-25 02:30</td>");
    has("<td class=\"nowrap\" title=\"UTC+01:00\">2026-10-25 23:30</td>");
    // 08:00 UTC on 5 October is 10:00 CEST.
    has("<td class=\"nowrap\" title=\"UTC+02:00\">2026-10-05 10:00</td>");
    assert!(
        !html.contains(" UTC)</span>"),
        "no time is labelled plain UTC"
    );
}

fn fixture_month_on_sqlite_through_the_library_and_the_binary() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite:{}", dir.path().join("voqa.db").display());
    runtime().block_on(async {
        let store = Store::open(&url).await.expect("store");
        check_store(&store).await;
        store.close().await;
    });
    // The command, on the same database.
    let config_path = dir.path().join("collector.toml");
    std::fs::write(&config_path, CONFIG).expect("config");
    let bin = env!("CARGO_BIN_EXE_voqa-collector");
    let out = dir.path().join("report.json");
    let run = std::process::Command::new(bin)
        .arg("--config")
        .arg(&config_path)
        .args([
            "--database",
            &url,
            "report",
            "--customer",
            "acme",
            "--period",
            "2026-10",
            "--format",
            "json",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out)
        .expect("written")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let value: Value = serde_json::from_slice(&std::fs::read(&out).expect("read")).expect("json");
    check_document(&value);

    let csv = std::process::Command::new(bin)
        .arg("--config")
        .arg(&config_path)
        .args([
            "--database",
            &url,
            "report",
            "--customer",
            "acme",
            "--period",
            "2026-10",
            "--format",
            "csv",
        ])
        .output()
        .expect("runs");
    assert!(
        csv.status.success(),
        "{}",
        String::from_utf8_lossy(&csv.stderr)
    );
    let text = String::from_utf8(csv.stdout).expect("utf-8");
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(
        lines[0],
        "call,agent_id,start,end,mos,loss_pct,jitter_ms,streams,worst_stream_id,worst_stream_codec"
    );
    assert_eq!(lines.len(), 11, "a header and ten calls: {text}");
    assert!(!text.contains("secret-call"));
    // The jittery call: worst stream 08a, MOS 2.8, 5 % loss, 2 ms max jitter, two streams.
    let row = lines
        .iter()
        .find(|l| l.starts_with("anon:0000000000000009,"))
        .expect("row");
    assert_eq!(
        *row,
        "anon:0000000000000009,fra-media-1,2026-10-25T22:30:00.000000Z,2026-10-25T22:31:00.000000Z,2.8,5,2,2,08a,PCMU"
    );
    // The call without a MOS: empty MOS and worst-stream fields.
    let row = lines
        .iter()
        .find(|l| l.starts_with("anon:0000000000000005,"))
        .expect("row");
    assert!(row.ends_with(",,0,1,2,,"), "{row}");
    // MOS column over the rows: the nine rated calls, hand-listed.
    let mut mos: Vec<f64> = lines[1..]
        .iter()
        .filter_map(|l| l.split(',').nth(4).and_then(|v| v.parse().ok()))
        .collect();
    mos.sort_by(f64::total_cmp);
    assert_eq!(mos, [2.8, 3.5, 3.9, 4.0, 4.1, 4.2, 4.3, 4.35, 4.4]);
}

fn fixture_month_on_postgres() {
    let Some(url) = harness::fresh_postgres("fixture_month_on_postgres") else {
        return;
    };
    runtime().block_on(async {
        let store = Store::open(&url).await.expect("store");
        check_store(&store).await;
        store.close().await;
    });
}

// ---- The per-call series against every call ----
//
// The report counts its per-call series in the store, one row per distinct value; the CSV
// reads every call. Here 3,000 calls of two agents over October in Berlin (the 25-hour day
// included) with many tied and many distinct MOS values, calls without a MOS and two codecs
// are stored, and each series of the document is recomputed from the full rows the CSV
// reads (`for_each_call`) the plain way: sort each day's MOS and take the nearest rank.

const MANY_CONFIG: &str = r#"
[[customers]]
id = "many"
name = "Many Calls"
agents = ["fra-media-1", "fra-media-2"]
time_zone = "Europe/Berlin"
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
"#;

const MANY_CALLS: i64 = 3000;

/// Call `n`: agent, start, MOS (`None` for every 13th), loss %, codec. The MOS takes 347
/// two-decimal values (ties) and, for every 5th call, six decimals (nearly all distinct).
fn many_call(n: i64) -> (&'static str, i64, Option<f64>, f64, &'static str) {
    let agent = if n % 3 == 0 { "fra-media-2" } else { AGENT };
    // Spread over [30 Sep 22:00 UTC, 31 Oct 23:00 UTC): October in Berlin.
    let from = ns("2026-09-30T22:00:00Z");
    let span = ns("2026-10-31T23:00:00Z") - from;
    let start = from + span / MANY_CALLS * n;
    let mut mos = 1.0 + ((n * 7919) % 347) as f64 / 100.0;
    if n % 5 == 0 {
        mos += ((n * 31) % 997) as f64 / 1e6;
    }
    let mos = (n % 13 != 0).then_some(mos);
    let loss = ((n * 17) % 50) as f64 / 10.0;
    let codec = if n % 4 == 0 { "G729" } else { "PCMU" };
    (agent, start, mos, loss, codec)
}

async fn store_many(store: &Store) {
    let mut by_agent: std::collections::BTreeMap<&str, Vec<StreamReport>> = Default::default();
    for n in 0..MANY_CALLS {
        let (agent, start, mos, loss, codec) = many_call(n);
        let mut report = stream(
            &format!("{n:04}"),
            &format!("anon:{n:016x}"),
            start,
            mos,
            loss,
            1000,
            0,
        );
        report.agent_id = agent.into();
        report.codec = codec.into();
        if let Some(totals) = report.totals.as_mut() {
            totals.codec = codec.into();
        }
        by_agent.entry(agent).or_default().push(report);
    }
    let mut batch_no = 0u64;
    for (agent, reports) in by_agent {
        for chunk in reports.chunks(500) {
            let batch = fixtures::batch(batch_no, agent, chunk.to_vec(), vec![]);
            store
                .ingest(&batch, ns("2026-11-01T00:00:00Z"))
                .await
                .expect("ingest");
            batch_no += 1;
        }
    }
}

/// Nearest rank over a sorted list, as the methods section defines it.
fn rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let r = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(r.min(sorted.len()) - 1).copied()
}

async fn check_many(store: &Store) {
    store_many(store).await;
    let config = CollectorConfig::parse(MANY_CONFIG).expect("config");
    let customer = config.customer("many").expect("many");
    let doc = build(store, customer, &october(), ns(NOW), "test")
        .await
        .expect("report");

    let mut calls = Vec::new();
    let available = for_each_call(
        store,
        customer,
        doc.period.from_ns,
        doc.period.to_ns,
        |call| {
            calls.push(call.clone());
            Ok(())
        },
    )
    .await
    .expect("every call");
    assert!(available);
    assert_eq!(
        calls.len() as i64,
        MANY_CALLS,
        "every stored call is in October"
    );

    let zone = customer_zone(customer).expect("Europe/Berlin");
    let days = local_days(doc.period.from_ns, doc.period.to_ns, &zone).expect("days");
    assert_eq!(doc.days.len(), days.len());
    let mut histogram = [0u64; 35];
    for (day, &(date, start, end)) in doc.days.iter().zip(&days) {
        let of_day: Vec<_> = calls
            .iter()
            .filter(|c| c.last_start_ns >= start && c.last_start_ns < end)
            .collect();
        let mut mos: Vec<f64> = of_day.iter().filter_map(|c| c.min_mos).collect();
        mos.sort_by(f64::total_cmp);
        let meeting = mos.iter().filter(|&&m| m >= 4.0).count();
        for &m in &mos {
            // The chart's bins: 0.1 wide from 1.0, rounded to 1e-9 first, the last closed.
            let x = ((m - 1.0) * 10.0 * 1e9).round() / 1e9;
            histogram[(x.floor().max(0.0) as usize).min(34)] += 1;
        }
        assert_eq!(day.date, date.to_string());
        assert_eq!(day.calls, of_day.len() as u64, "{date}");
        assert_eq!(day.calls_with_mos, mos.len() as u64, "{date}");
        assert_eq!(day.mos_p50, rank(&mos, 50.0), "{date}");
        assert_eq!(day.mos_p5, rank(&mos, 5.0), "{date}");
        assert_eq!(
            day.meeting_mos_pct,
            (!mos.is_empty()).then(|| meeting as f64 / mos.len() as f64 * 100.0),
            "{date}"
        );
    }
    assert!(
        doc.days
            .iter()
            .any(|d| d.date == "2026-10-25" && d.calls > 0)
    );
    let bins: Vec<u64> = doc.mos_histogram.iter().map(|b| b.calls).collect();
    assert_eq!(bins, histogram);
    let without_mos = calls.iter().filter(|c| c.min_mos.is_none()).count() as u64;
    assert_eq!(doc.calls_without_mos, without_mos);
    assert_eq!(
        without_mos,
        (0..MANY_CALLS).filter(|n| n % 13 == 0).count() as u64
    );

    let mut losses: Vec<f64> = calls.iter().map(|c| c.max_loss_pct).collect();
    losses.sort_by(f64::total_cmp);
    assert_eq!(doc.loss_pct.samples, MANY_CALLS as u64);
    assert_eq!(doc.loss_pct.p50, rank(&losses, 50.0));
    assert_eq!(doc.loss_pct.p95, rank(&losses, 95.0));
    assert_eq!(doc.loss_pct.p99, rank(&losses, 99.0));

    // The 20 lowest MOS, ties by agent and call key: MOS 1.0 (n·7919 ≡ 0 mod 347: n = 347,
    // 694, 1041, …) is shared by calls of both agents, so the tie order is exercised.
    let mut rated: Vec<_> = calls.iter().filter(|c| c.min_mos.is_some()).collect();
    rated.sort_by(|a, b| {
        a.min_mos
            .unwrap_or(f64::INFINITY)
            .total_cmp(&b.min_mos.unwrap_or(f64::INFINITY))
            .then_with(|| a.agent_id.cmp(&b.agent_id))
            .then_with(|| a.call_key.cmp(&b.call_key))
    });
    let expected: Vec<(String, String, Option<f64>)> = rated
        .iter()
        .take(20)
        .map(|c| (call_pseudonym(c), c.agent_id.clone(), c.min_mos))
        .collect();
    let listed: Vec<(String, String, Option<f64>)> = doc
        .worst_calls
        .iter()
        .map(|c| (c.call.clone(), c.agent_id.clone(), c.mos))
        .collect();
    assert_eq!(listed, expected);
    let agents_at_one: std::collections::BTreeSet<&str> = rated
        .iter()
        .filter(|c| c.min_mos == Some(1.0))
        .map(|c| c.agent_id.as_str())
        .collect();
    assert_eq!(
        agents_at_one.len(),
        2,
        "ties of both agents at the lowest MOS"
    );

    let mut codecs: std::collections::BTreeMap<String, u64> = Default::default();
    for c in &rated {
        *codecs
            .entry(c.mos_codec.clone().expect("codec kept"))
            .or_default() += 1;
    }
    let listed: Vec<(String, u64)> = doc
        .methods
        .codecs
        .iter()
        .map(|c| (c.codec.clone(), c.streams))
        .collect();
    assert_eq!(listed, codecs.into_iter().collect::<Vec<_>>());
    assert_eq!(listed.len(), 2);
}

fn many_calls_series_match_every_call_on_sqlite() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite:{}", dir.path().join("voqa.db").display());
    runtime().block_on(async {
        let store = Store::open(&url).await.expect("store");
        check_many(&store).await;
        check_streamed_csv(&store).await;
        store.close().await;
    });
}

/// The API streams the CSV (a page of calls per chunk through a bounded channel): the
/// served bytes are the command's, a header and one row per stored call, each call once.
async fn check_streamed_csv(store: &Store) {
    store
        .token_insert("o1", &hash_token("ops-token"), "ops", 0)
        .await
        .expect("token");
    let config = CollectorConfig::parse(MANY_CONFIG).expect("config");
    let customer = config.customer("many").expect("many").clone();
    let state = AppState {
        store: store.clone(),
        config: config.into(),
        metrics: Arc::default(),
    };
    let (base, stop) = serve_api(state).await;
    let resp = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/customers/many/report?period=2026-10&format=csv"
        ))
        .bearer_auth("ops-token")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8; header=present")
    );
    let served = resp.bytes().await.expect("body");
    let mut written = Vec::new();
    let rows =
        voqa_collector::report::csv::write(store, &customer, &october(), ns(NOW), &mut written)
            .await
            .expect("csv");
    assert_eq!(rows, MANY_CALLS as u64);
    assert_eq!(served.as_ref(), written.as_slice());
    let text = String::from_utf8(written).expect("utf-8");
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(lines.len() as i64, MANY_CALLS + 1);
    let calls: std::collections::BTreeSet<&str> = lines[1..]
        .iter()
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(calls.len() as i64, MANY_CALLS, "each call once");
    assert!(calls.contains(format!("anon:{:016x}", MANY_CALLS - 1).as_str()));
    let _ = stop.send(());
}

/// The API over `state` on a free loopback port: its base URL, and the sender that stops it.
async fn serve_api(state: AppState) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    (base, stop)
}

fn many_calls_series_match_every_call_on_postgres() {
    let Some(url) = harness::fresh_postgres("many_calls_series_match_every_call_on_postgres")
    else {
        return;
    };
    runtime().block_on(async {
        let store = Store::open(&url).await.expect("store");
        check_many(&store).await;
        store.close().await;
    });
}

fn served_report_respects_tokens_and_tells_no_data_honestly() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite:{}", dir.path().join("voqa.db").display());
    runtime().block_on(async {
        let store = Store::open(&url).await.expect("store");
        store_fixture(&store).await;
        for (id, token, role) in [
            ("o1", "ops-token", "ops"),
            ("c1", "acme-token", "customer:acme"),
            ("c2", "other-token", "customer:other"),
        ] {
            store
                .token_insert(id, &hash_token(token), role, 0)
                .await
                .expect("token");
        }
        let state = AppState {
            store: store.clone(),
            config: config().into(),
            metrics: Arc::default(),
        };
        let (base, tx) = serve_api(state).await;
        let client = reqwest::Client::new();
        let get = |path: &str, token: &str| {
            client
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
        };

        let resp = get(
            "/api/v1/customers/acme/report?period=2026-10&format=json",
            "other-token",
        )
        .await
        .expect("request");
        assert_eq!(resp.status().as_u16(), 403, "another customer's token");
        let resp = get("/api/v1/customers/acme/report?period=2026-13", "ops-token")
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 400);

        let resp = get(
            "/api/v1/customers/acme/report?period=2026-10&format=json",
            "acme-token",
        )
        .await
        .expect("request");
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        let doc: Value = resp.json().await.expect("json");
        // Generated now, so the calls are judged up to now (after the month): same figures.
        check_document(&doc);

        let resp = get(
            "/api/v1/customers/acme/report?period=2026-10&format=html",
            "ops-token",
        )
        .await
        .expect("request");
        assert_eq!(resp.status().as_u16(), 200);
        let csp = resp
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("text/html"))
        );

        let resp = get(
            "/api/v1/customers/acme/report?period=2026-10&format=csv",
            "ops-token",
        )
        .await
        .expect("request");
        assert_eq!(resp.status().as_u16(), 200);
        let text = resp.text().await.expect("text");
        assert_eq!(text.split_terminator("\r\n").count(), 11);

        // August: nothing stored. An honest no-data report, not an error.
        let resp = get("/api/v1/customers/acme/report?period=2026-08", "acme-token")
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 200);
        let doc: Value = resp.json().await.expect("json");
        assert_eq!(doc["evaluation"]["verdict"], "no_data");
        assert_eq!(doc["days"].as_array().map(Vec::len), Some(31));
        assert!(
            doc["days"]
                .as_array()
                .is_some_and(|d| d.iter().all(|d| d["calls"] == 0 && d["mos_p50"].is_null()))
        );
        assert!(doc["worst_calls"].as_array().is_some_and(Vec::is_empty));
        assert!(doc["loss_pct"]["p50"].is_null());
        let timeline = doc["uptime_timeline"].as_array().expect("timeline");
        assert!(
            timeline
                .iter()
                .all(|s| s["state"] == "no_data" || s["state"] == "maintenance"),
            "{timeline:?}"
        );
        let _ = tx.send(());
        store.close().await;
    });
}
