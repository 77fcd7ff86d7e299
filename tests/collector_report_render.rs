//! The report's HTML in a real browser: Debian's headless Chromium loads a month's report
//! (built here by hand: November 2026 in Europe/Berlin, 30 days, Sundays without calls, an
//! agent outage over a weekend, a bad Friday, maintenance windows, notices) and
//! - dumps its DOM: the verdict and the commitments table, every chart's SVG with the number
//!   of bars, points and spans the fixture implies, the methods and provenance sections;
//! - takes a screenshot: a PNG that is not blank (decoded: many colours, the verdict's red);
//! - prints it through `report::pdf::print`: a PDF of four A4 pages (one per part of the page;
//!   a chart or table overflowing its page would add one);
//! - and a customer name and call id holding `<script>`, quotes and bidi controls come out as
//!   text in the DOM, never as elements.
//!
//! The HTML, PNG and PDF are kept under `target/report-render/` for people to look at. Reported as
//! ignored when no Chromium is installed; required (a failure) under `VOQA_REQUIRE_CHROMIUM=1`,
//! as in CI (`.ci/run` installs Debian's `chromium`).

#[path = "support/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use voqa_collector::report::html::render;
use voqa_collector::report::pdf::{self, PdfOptions};
use voqa_collector::report::*;
use voqa_collector::sla::{
    CallEvidence, CommitmentResult, DowntimeEvidence, DropSummary, Evaluation, Evidence, Gaps,
    JitterEvidence, TimeSpan, Verdict,
};
use voqa_wire::Timestamp;

const REQUIRE: &str = "VOQA_REQUIRE_CHROMIUM";
/// Longest one Chromium run may take; it starts, loads a local file and exits in seconds.
const TIMEOUT: Duration = Duration::from_secs(120);

const S: i64 = 1_000_000_000;
const MIN: i64 = 60 * S;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// 2026-11-01T00:00:00+01:00 (Europe/Berlin, winter time all month) = 2026-10-31T23:00:00Z.
const FROM: i64 = 1_793_487_600 * S;
const TO: i64 = FROM + 30 * DAY;

fn main() {
    harness::main(
        file!(),
        vec![
            harness::trial(
                "dom_has_the_verdict_charts_and_methods",
                dom_has_the_verdict_charts_and_methods,
            ),
            harness::trial("screenshot_is_not_blank", screenshot_is_not_blank),
            harness::trial("pdf_has_one_a4_page_per_part", pdf_has_one_a4_page_per_part),
            harness::trial(
                "hostile_names_render_as_text_in_the_browser",
                hostile_names_render_as_text_in_the_browser,
            ),
        ],
    )
}

/// UTC instant of 2026-11-`day` at `hour`:`minute` UTC.
fn utc(day: i64, hour: i64, minute: i64) -> i64 {
    // FROM is Nov 1 minus one hour.
    FROM + HOUR + (day - 1) * DAY + hour * HOUR + minute * MIN
}

fn t(ns: i64) -> String {
    Timestamp::from_ns(ns).to_string()
}

/// The uptime timeline: no data until the agent's first heartbeat (Nov 1 01:00 UTC), Sunday
/// maintenance 02:00–04:00 UTC, down Saturday Nov 14 08:00 UTC to Sunday Nov 15 20:00 UTC
/// (maintenance carved out), 15 minutes down on Friday Nov 20.
fn timeline() -> Vec<TimelineSpan> {
    use SpanState::*;
    let edges = [
        (NoData, FROM),
        (Up, utc(1, 1, 0)),
        (Maintenance, utc(1, 2, 0)),
        (Up, utc(1, 4, 0)),
        (Maintenance, utc(8, 2, 0)),
        (Up, utc(8, 4, 0)),
        (Down, utc(14, 8, 0)),
        (Maintenance, utc(15, 2, 0)),
        (Down, utc(15, 4, 0)),
        (Up, utc(15, 20, 0)),
        (Down, utc(20, 9, 12)),
        (Up, utc(20, 9, 27)),
        (Maintenance, utc(22, 2, 0)),
        (Up, utc(22, 4, 0)),
        (Maintenance, utc(29, 2, 0)),
        (Up, utc(29, 4, 0)),
    ];
    edges
        .iter()
        .enumerate()
        .map(|(i, &(state, from_ns))| {
            let to_ns = edges.get(i + 1).map_or(TO, |e| e.1);
            TimelineSpan {
                state,
                from_ns,
                to_ns,
                from: t(from_ns),
                to: t(to_ns),
            }
        })
        .collect()
}

/// Spans in the timeline above.
const SPANS: usize = 16;
/// Down: Nov 14 08:00 → Nov 15 02:00 (18 h), Nov 15 04:00 → 20:00 (16 h), 15 min.
const DOWN_S: f64 = (18 * 3600 + 16 * 3600 + 15 * 60) as f64;
/// 30 days less 5 maintenance windows of 2 h and 2 h without data.
const MEASURED_S: f64 = (30 * 86_400 - 5 * 7_200 - 7_200) as f64;

/// Day `d` (0 = Sunday Nov 1): Sundays have no calls, Saturdays a few, Friday Nov 20 was bad
/// (capture drops, a short outage), Thursday Nov 19 a little worse than usual.
fn day(d: i64) -> DaySeries {
    let (calls, p50, p5, meeting) = match (d % 7, d + 1) {
        (0, _) => (0, None, None, None),
        (_, 20) => (1_850, Some(3.62), Some(2.41), Some(41.0)),
        (_, 19) => (1_850, Some(4.1), Some(3.3), Some(88.0)),
        (6, _) => (320, Some(4.25), Some(3.85), Some(97.5)),
        (w, _) => (
            1_850,
            Some(4.28 + 0.01 * w as f64),
            Some(3.88 + 0.02 * w as f64),
            Some(98.1),
        ),
    };
    DaySeries {
        date: format!("2026-11-{:02}", d + 1),
        from_ns: FROM + d * DAY,
        to_ns: FROM + (d + 1) * DAY,
        hours: 24.0,
        calls,
        calls_with_mos: calls,
        mos_p50: p50,
        mos_p5: p5,
        meeting_mos_pct: meeting,
    }
}

/// Calls per MOS bin of 0.1 from 1.0: 37,365 at or above 4.0, 2,637 below (40,002 in all).
fn histogram() -> Vec<HistogramBin> {
    let mut counts = [0u64; 35];
    let below = [
        (9, 2),
        (10, 1),
        (11, 2),
        (12, 2),
        (13, 3),
        (14, 4),
        (15, 5),
        (16, 7),
        (17, 9),
        (18, 12),
        (19, 18),
        (20, 25),
        (21, 35),
        (22, 50),
        (23, 80),
        (24, 110),
        (25, 170),
        (26, 260),
        (27, 380),
        (28, 560),
        (29, 900),
        (2, 1),
        (5, 1),
    ];
    for (bin, n) in below {
        counts[bin] += n;
    }
    counts[30..].copy_from_slice(&[2_100, 5_600, 10_400, 13_200, 6_065]);
    counts
        .iter()
        .enumerate()
        .map(|(i, &calls)| HistogramBin {
            lo: (10 + i) as f64 / 10.0,
            hi: (11 + i) as f64 / 10.0,
            calls,
        })
        .collect()
}

fn worst_call(i: usize, call: &str) -> ReportCall {
    let start = utc(20, 9, 30) + i as i64 * 7 * MIN;
    let mos = 1.21 + 0.09 * i as f64;
    ReportCall {
        call: call.to_owned(),
        agent_id: "fra-media-1".to_owned(),
        start: t(start),
        end: t(start + 4 * MIN),
        mos: Some(mos),
        loss_pct: 6.2 - 0.25 * i as f64,
        jitter_ms: Some(48.0 - i as f64),
        streams: 2,
        worst_stream: Some(ReportStream {
            stream_id: format!("00000000000{:05x}", 0xa100 + i),
            src: format!("203.0.113.{}:40{:03}", 10 + i, 2 * i),
            dst: "198.51.100.20:50000".to_owned(),
            codec: if i.is_multiple_of(3) { "G729" } else { "PCMA" }.to_owned(),
            mos: Some(mos),
            loss_pct: 6.2 - 0.25 * i as f64,
            jitter_ms: Some(48.0 - i as f64),
        }),
    }
}

fn commitment(
    name: &'static str,
    target: f64,
    measured: f64,
    verdict: Verdict,
    coverage: f64,
    detail: &str,
    evidence: Evidence,
) -> CommitmentResult {
    CommitmentResult {
        name,
        target,
        unit: if name == "jitter_p95" { "ms" } else { "%" },
        mos_min: (name == "mos").then_some(4.0),
        measured: Some(measured),
        verdict,
        reason: None,
        met: verdict.met(),
        coverage: Some(coverage),
        detail: detail.to_owned(),
        evidence,
    }
}

/// The month's report of `name` with the first worst call's id `call`.
fn month(name: &str, call: &str) -> ReportDocument {
    let calls_evidence = Evidence::Calls(CallEvidence {
        considered: 40_002,
        within: 37_365,
        breaching: 2_637,
        calls: vec![],
    });
    let uptime_pct = 100.0 * (1.0 - DOWN_S / MEASURED_S);
    let commitments = vec![
        commitment(
            "mos",
            95.0,
            93.408_329_583_520_82,
            Verdict::Breached,
            40_002.0 / 40_130.0,
            "37365 of 40002 calls (93.41 %) had MOS ≥ 4; 128 calls without MOS not counted",
            calls_evidence.clone(),
        ),
        commitment(
            "loss",
            1.0,
            6.2,
            Verdict::Breached,
            1.0,
            "worst call 6.20 %; 39911 of 40130 calls (99.45 %) within 1 %",
            calls_evidence,
        ),
        commitment(
            "jitter_p95",
            30.0,
            14.2,
            Verdict::Met,
            1.0 - 12.0 / 96_310.0,
            "p95 14.20 ms over 48000000 packets in 96310 windows (per-packet histograms merged)",
            Evidence::Jitter(JitterEvidence {
                method: "per_packet_histograms",
                samples: 48_000_000,
                windows: 96_310,
                windows_without_histogram: 12,
                hourly_rollups: 700,
                single_windows: 310,
                p50_ms: Some(3.1),
                p99_ms: Some(27.9),
            }),
        ),
        commitment(
            "uptime",
            99.5,
            uptime_pct,
            Verdict::Breached,
            MEASURED_S / (30.0 * 86_400.0 - 36_000.0),
            "95.1624 % up: 123300 s down of 2548800 s observed (36000 s maintenance excluded, 7200 s without data)",
            Evidence::Downtime(DowntimeEvidence {
                period_s: 2_592_000.0,
                maintenance_s: 36_000.0,
                measured_s: MEASURED_S,
                downtime_s: DOWN_S,
                maintenance: [1, 8, 15, 22, 29]
                    .iter()
                    .map(|&d| TimeSpan {
                        start_ns: utc(d, 2, 0),
                        end_ns: utc(d, 4, 0),
                        start: t(utc(d, 2, 0)),
                        end: t(utc(d, 4, 0)),
                    })
                    .collect(),
                intervals_total: 3,
                intervals: vec![],
            }),
        ),
    ];
    let mut worst: Vec<ReportCall> = (0..WORST_CALLS)
        .map(|i| {
            worst_call(
                i,
                &format!("anon:{:016x}", 0x9f3a_5c11_0000_0000_u64 + i as u64 * 7919),
            )
        })
        .collect();
    worst[0].call = call.to_owned();
    let notice = |kind, text: &str, from: i64, to: i64| Notice {
        kind,
        text: text.to_owned(),
        from: Some(t(from)),
        to: Some(t(to)),
    };
    ReportDocument {
        report_version: REPORT_VERSION,
        customer: ReportCustomer {
            id: "acme".to_owned(),
            name: name.to_owned(),
            time_zone: "Europe/Berlin".to_owned(),
        },
        period: ReportPeriod {
            label: "2026-11".to_owned(),
            from: t(FROM),
            to: t(TO),
            from_ns: FROM,
            to_ns: TO,
            from_local: "2026-11-01T00:00:00+01:00".to_owned(),
            to_local: "2026-12-01T00:00:00+01:00".to_owned(),
            time_zone: "Europe/Berlin".to_owned(),
            evaluated_until: t(TO),
        },
        provenance: Provenance {
            collector_version: "0.1.0".to_owned(),
            generated_at: "2026-12-01T06:00:00.000000Z".to_owned(),
            json_sha256: Some(
                "3f7c2a9e0b14d6e8a5c1f4b7d2e9a0c3b6f8e1d4a7c0b3e6f9a2d5c8e1b4a7d0".to_owned(),
            ),
        },
        evaluation: Evaluation {
            customer: "acme".to_owned(),
            from_ns: FROM,
            to_ns: TO,
            from: t(FROM),
            to: t(TO),
            evaluated_until_ns: TO,
            evaluated_until: t(TO),
            verdict: Verdict::Breached,
            commitments_without_data: vec![],
            commitments,
            calls: 40_130,
            calls_without_mos: 128,
            reports_used: 96_310,
            capture_drops: DropSummary {
                total: 18_204,
                restarts: 0,
                windows_with_drops: 412,
                intervals_total: 1,
                intervals: vec![],
            },
            gaps: Gaps::default(),
        },
        days: (0..30).map(day).collect(),
        mos_histogram: histogram(),
        calls_without_mos: 128,
        loss_pct: Percentiles {
            p50: Some(0.0),
            p95: Some(0.42),
            p99: Some(1.85),
            samples: 40_130,
        },
        jitter_ms: Percentiles {
            p50: Some(3.1),
            p95: Some(14.2),
            p99: Some(27.9),
            samples: 48_000_000,
        },
        uptime_timeline: timeline(),
        worst_calls: worst,
        notices: vec![
            notice(
                NoticeKind::NoData,
                "No data before agent fra-media-1 first reported: neither up nor down.",
                FROM,
                utc(1, 1, 0),
            ),
            notice(
                NoticeKind::AgentOutage,
                "Agent fra-media-1 sent no heartbeat for 34 hours (maintenance excluded): counted as down, and calls in that time were not measured.",
                utc(14, 8, 0),
                utc(15, 20, 0),
            ),
            notice(
                NoticeKind::CaptureDrops,
                "The capture of agent fra-media-1 dropped 18,204 packets: the quality of calls in this stretch is less certain.",
                utc(20, 8, 0),
                utc(20, 11, 0),
            ),
            notice(
                NoticeKind::AgentOutage,
                "Agent fra-media-1 sent no heartbeat for 15 minutes: counted as down.",
                utc(20, 9, 12),
                utc(20, 9, 27),
            ),
            notice(
                NoticeKind::WithoutHistogram,
                "12 report windows from an older agent had no jitter histogram and are not in the jitter percentile.",
                utc(3, 10, 0),
                utc(3, 11, 0),
            ),
        ],
        methods: Methods {
            emodel: "ITU-T G.107 E-model: R = 93.2 − Id − Ie,eff, MOS from R; default values for everything not measured (Ro, Is, A = 0).".to_owned(),
            codecs: vec![
                CodecMethod { codec: "PCMA".to_owned(), ie: 0.0, bpl: 25.1, streams: 61_200 },
                CodecMethod { codec: "G729".to_owned(), ie: 11.0, bpl: 19.0, streams: 19_060 },
            ],
            jitter_buffer: "A fixed 60 ms jitter buffer is emulated; late packets count as lost; after 8 consecutive late packets it resynchronises (metrics-spec §9.2, §9.2a).".to_owned(),
            assumed_delay: "100 ms one-way delay is assumed where no RTCP round trip was seen.".to_owned(),
            percentiles: "Jitter percentiles come from per-packet HdrHistograms merged exactly across agents, streams and windows; call percentiles are nearest-rank over calls.".to_owned(),
            pseudonymisation: "Call ids are HMAC-SHA-256 pseudonyms (anon: + 64 bits) made on the agent.".to_owned(),
            time_zone: "Days are Europe/Berlin days (23 or 25 hours on a DST change).".to_owned(),
            uptime: "Down: no heartbeat for two heartbeat periods or a watched process down; maintenance windows excluded; no data before an agent's first heartbeat.".to_owned(),
        },
    }
}

fn realistic() -> ReportDocument {
    month("ACME Kundenservice GmbH", "anon:9f3a5c1100000000")
}

/// Where this suite keeps its PNG and PDF: `target/report-render/`.
fn keep_dir() -> PathBuf {
    // The test binary is target/<profile>/deps/<name>.
    let exe = std::env::current_exe().expect("current exe");
    let target = exe
        .ancestors()
        .nth(3)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
    let dir = target.join("report-render");
    std::fs::create_dir_all(&dir).expect("create target/report-render");
    dir
}

/// Chromium, or `None` after reporting the skip.
fn chromium() -> Option<PathBuf> {
    let found = pdf::find_chromium(std::env::var_os("PATH").as_deref());
    if found.is_none() {
        harness::skip(
            REQUIRE,
            "Chromium is not installed: none of chromium, chromium-browser, google-chrome on \
             PATH (apt-get install chromium)",
        );
    }
    found
}

/// Runs headless Chromium on `html` with `args`, the page's URL last; returns its stdout.
fn run_chromium(program: &Path, html: &str, args: &[String]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("report.html");
    std::fs::write(&page, html).expect("write page");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut command = pdf::headless_command(program, &dir.path().join("profile"));
    command
        .args(args)
        .arg(pdf::file_url(&page))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    let mut child = command.spawn().expect("start chromium");
    let status = pdf::wait_or_kill(&mut child, TIMEOUT).expect("wait for chromium");
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("chromium {args:?} failed ({s}): {stderr}"),
        None => panic!("chromium {args:?} did not finish in {TIMEOUT:?}: {stderr}"),
    }
    std::fs::read_to_string(&out_path).expect("chromium stdout")
}

/// The part of `dom` from the element with `id` to the end of the `</tag>` closing it (the
/// fixture's elements of one kind do not nest).
fn element<'a>(dom: &'a str, tag: &str, id: &str) -> &'a str {
    let open = format!(r#"id="{id}""#);
    let at = dom
        .find(&open)
        .unwrap_or_else(|| panic!("no element #{id} in the DOM"));
    let start = dom[..at].rfind(&format!("<{tag}")).expect("opening tag");
    let close = format!("</{tag}>");
    let end = dom[at..].find(&close).expect("closing tag") + at + close.len();
    &dom[start..end]
}

fn dom_has_the_verdict_charts_and_methods() {
    let Some(program) = chromium() else { return };
    let html = render(&realistic());
    let dom = run_chromium(&program, &html, &["--dump-dom".to_owned()]);

    // The verdict first, in plain words.
    let verdict = element(&dom, "section", "verdict");
    assert!(
        verdict.contains(r#"<p class="word">Breached</p>"#),
        "{verdict}"
    );
    assert!(
        verdict.contains(
            "3 of 4 commitments were not kept: call quality (MOS), packet loss, uptime. 40,130 \
             calls in the period, 128 of them without a MOS."
        ),
        "{verdict}"
    );
    assert!(dom.find(r#"id="verdict""#) < dom.find(r#"id="commitments""#));

    // One row per commitment: target, measured, verdict, coverage.
    let table = element(&dom, "table", "commitments");
    let rows: Vec<&str> = table.split(r#"<tr class="commitment""#).skip(1).collect();
    assert_eq!(rows.len(), 4, "{table}");
    let expect = [
        (
            "mos",
            "at least 95 % of calls",
            "93.41 % of calls",
            "Breached",
            "99.6 % of calls had a MOS",
        ),
        (
            "loss",
            "at most 1 % on every call",
            "worst call 6.20 %",
            "Breached",
            "100 % of calls had a loss figure",
        ),
        (
            "jitter_p95",
            "at most 30 ms",
            "14.2 ms",
            "Met",
            "99.9 % of report windows",
        ),
        // Coverage is rounded down (40,002 / 40,130 = 99.68 %, 1 − 12 / 96,310 = 99.99 %).
        // 100 × (1 − 123,300 / 2,548,800) = 95.16243 %; coverage 2,548,800 / 2,556,000 = 99.72 %.
        (
            "uptime",
            "at least 99.5 % of the time",
            "95.162 %",
            "Breached",
            "99.7 % of the time",
        ),
    ];
    for (row, (name, target, measured, word, coverage)) in rows.iter().zip(expect) {
        assert!(row.starts_with(&format!(r#" data-name="{name}""#)), "{row}");
        for text in [target, measured, word, coverage] {
            assert!(row.contains(text), "{name}: {text:?} not in {row}");
        }
    }

    // The charts, each an inline SVG with a viewBox, holding what the fixture implies.
    for id in [
        "chart-mos-trend",
        "chart-mos-share",
        "chart-mos-histogram",
        "chart-loss",
        "chart-jitter",
        "chart-uptime",
    ] {
        let svg = element(&dom, "svg", id);
        assert!(svg.contains("viewBox="), "{id} has no viewBox");
        assert!(svg.contains("<title"), "{id} has no title");
    }
    let trend = element(&dom, "svg", "chart-mos-trend");
    // 25 days with calls, 5 Sundays without: two dots a day, two lines each broken by the
    // Sundays into 5 runs (Nov 2–7, 9–14, 16–21, 23–28, 30 alone: 4 lines of 2+ points).
    assert_eq!(trend.matches("<circle").count(), 50);
    assert_eq!(trend.matches("<polyline").count(), 8);
    assert_eq!(trend.matches(r#"class="no-data""#).count(), 5);
    let share = element(&dom, "svg", "chart-mos-share");
    assert_eq!(share.matches(r#"class="bar""#).count(), 25);
    // Below the 95 % target: Nov 19 (88 %) and Nov 20 (41 %) only.
    let orange = format!(r#"fill="{}""#, voqa_collector::report::svg::ORANGE);
    let below: Vec<&str> = share
        .split(r#"<rect class="bar""#)
        .skip(1)
        .filter(|bar| {
            bar.split('>')
                .next()
                .is_some_and(|attrs| attrs.contains(&orange))
        })
        .collect();
    assert_eq!(below.len(), 2, "{share}");
    let hist = element(&dom, "svg", "chart-mos-histogram");
    assert_eq!(hist.matches(r#"class="bar""#).count(), 35);
    let uptime = element(&dom, "svg", "chart-uptime");
    assert_eq!(uptime.matches(r#"class="span "#).count(), SPANS);
    assert_eq!(uptime.matches(r#"class="span down""#).count(), 3);
    assert_eq!(uptime.matches(r#"class="span maint""#).count(), 5);
    assert_eq!(uptime.matches(r#"class="span nodata""#).count(), 1);
    let loss = element(&dom, "svg", "chart-loss");
    assert!(
        loss.contains(">1.85 %</text>") && loss.contains(">limit 1 %</text>"),
        "{loss}"
    );
    let jitter = element(&dom, "svg", "chart-jitter");
    assert!(jitter.contains(">14.2 ms</text>") && jitter.contains(">p95 limit 30 ms</text>"));

    // Where measurement was incomplete, the worst calls, how, and whose numbers.
    let notices = element(&dom, "section", "notices");
    assert_eq!(notices.matches(r#"<li class="notice""#).count(), 5);
    assert!(notices.contains("Capture drops:"));
    let calls = element(&dom, "table", "worst-calls-table");
    assert_eq!(calls.matches(r#"<tr class="call""#).count(), WORST_CALLS);
    assert!(
        calls.contains("203.0.113.10:40000"),
        "the stream that set the value"
    );
    let methods = element(&dom, "section", "methods");
    for text in [
        "ITU-T G.107",
        "jitter buffer",
        "100 ms one-way delay",
        "HMAC-SHA-256",
        "Europe/Berlin",
        "G729",
    ] {
        assert!(methods.contains(text), "{text:?} not in the methods");
    }
    let provenance = element(&dom, "section", "provenance");
    for text in [
        "3f7c2a9e0b14d6e8a5c1f4b7d2e9a0c3b6f8e1d4a7c0b3e6f9a2d5c8e1b4a7d0",
        "voqa-collector 0.1.0",
        "2026-12-01T06:00:00.000000Z",
        "2026-11-01T00:00:00+01:00",
    ] {
        assert!(provenance.contains(text), "{text:?} not in the provenance");
    }
    // No script anywhere, and the policy survived parsing.
    assert!(!dom.to_ascii_lowercase().contains("<script"));
    assert!(dom.contains(r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">"#));
}

fn screenshot_is_not_blank() {
    let Some(program) = chromium() else { return };
    let html = render(&realistic());
    let keep = keep_dir();
    std::fs::write(keep.join("report.html"), &html).expect("keep the HTML");
    let png_path = keep.join("report.png");
    let _ = std::fs::remove_file(&png_path);
    let (width, height) = (900u32, 1400u32);
    run_chromium(
        &program,
        &html,
        &[
            format!("--screenshot={}", png_path.display()),
            format!("--window-size={width},{height}"),
            "--hide-scrollbars".to_owned(),
        ],
    );
    let file = std::fs::File::open(&png_path).expect("chromium wrote the screenshot");
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    assert_eq!((info.width, info.height), (width, height));
    let channels = info.color_type.samples();
    assert!(channels >= 3, "colour PNG, got {:?}", info.color_type);
    let pixels: Vec<[u8; 3]> = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    let distinct: std::collections::BTreeSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(
        distinct.len() >= 50,
        "only {} colours: blank?",
        distinct.len()
    );
    let white = pixels.iter().filter(|p| **p == [255, 255, 255]).count();
    assert!(
        white < pixels.len() * 95 / 100,
        "{white} of {} pixels white",
        pixels.len()
    );
    // The first screen holds the verdict: the breached box's and badges' red (#c62828) and
    // the met badge's green (#2e7d32).
    for (name, rgb) in [("red", [0xc6, 0x28, 0x28]), ("green", [0x2e, 0x7d, 0x32])] {
        assert!(pixels.contains(&rgb), "no {name} pixel in the first screen");
    }
}

fn pdf_has_one_a4_page_per_part() {
    let Some(program) = chromium() else { return };
    let html = render(&realistic());
    let opts = PdfOptions {
        chromium: Some(program),
        timeout: TIMEOUT,
    };
    let bytes = pdf::print(&html, &opts).expect("PDF");
    std::fs::write(keep_dir().join("report.pdf"), &bytes).expect("keep the PDF");
    let text = String::from_utf8_lossy(&bytes);
    // Page objects are `/Type /Page` (the page tree is `/Type /Pages`).
    let pages = text
        .match_indices("/Type /Page")
        .filter(|(i, m)| !text[i + m.len()..].starts_with('s'))
        .count();
    // Four parts (verdict, quality, availability and worst calls, methods and provenance),
    // each starting a page and fitting on it.
    assert_eq!(pages, 4, "page objects");
    // A4 is 210 × 297 mm: 595.28 × 841.89 points.
    let boxes = media_boxes(&text);
    assert_eq!(boxes.len(), 4, "one media box per page: {boxes:?}");
    for b in &boxes {
        let a4 = b[0] == 0.0
            && b[1] == 0.0
            && (b[2] - 595.28).abs() < 1.0
            && (b[3] - 841.89).abs() < 1.0;
        assert!(a4, "not A4: {b:?}");
    }
}

/// The numbers of every `/MediaBox [x0 y0 x1 y1]`.
fn media_boxes(text: &str) -> Vec<Vec<f64>> {
    text.match_indices("/MediaBox [")
        .map(|(i, m)| {
            let rest = &text[i + m.len()..];
            let inner = &rest[..rest.find(']').expect("closing ]")];
            inner
                .split_whitespace()
                .map(|v| v.parse::<f64>().expect("a number"))
                .collect()
        })
        .collect()
}

fn hostile_names_render_as_text_in_the_browser() {
    let Some(program) = chromium() else { return };
    let name = "ACME \"Support\" <script>document.title='pwned'</script> O'Brien \u{202E}txt.exe";
    let call = "anon:<img src=x onerror=alert(1)>\u{2067}'\"\u{2069}";
    let html = render(&month(name, call));
    let dom = run_chromium(&program, &html, &["--dump-dom".to_owned()]);
    // The browser built no element from data: no script, no img, and the text is all there.
    let lower = dom.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "a script element");
    assert!(!lower.contains("<img"), "an img element");
    assert!(!dom.contains("pwned</title>"), "the title was rewritten");
    // Serialised back, the text nodes hold the markup characters escaped (quotes need no
    // escaping in text) and the bidi controls as visible code points.
    assert!(
        dom.contains(
            "ACME \"Support\" &lt;script&gt;document.title='pwned'&lt;/script&gt; O'Brien [U+202E]txt.exe"
        ),
        "customer name not shown as text"
    );
    assert!(
        dom.contains("anon:&lt;img src=x onerror=alert(1)&gt;[U+2067]'\"[U+2069]"),
        "call id not shown as text"
    );
    for c in ['\u{202E}', '\u{2067}', '\u{2069}'] {
        assert!(!dom.contains(c), "raw bidi control {c:?} in the DOM");
    }
}
