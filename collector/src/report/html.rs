//! The report as one self-contained HTML5 page: the verdict first in plain words, then the
//! commitments, where measurement was incomplete, the quality charts, the uptime timeline, the
//! worst calls, the methods and the report's provenance. Inline CSS and inline SVG only (charts
//! from [`super::svg`]); a Content-Security-Policy meta tag forbids everything else, so the
//! file can be mailed, archived and opened offline, and printed on A4 (print CSS: four parts,
//! each starting a page, and no chart or table row cut across pages).
//!
//! Renders a [`ReportDocument`] and nothing else: every figure comes from the document (so the
//! page shows what the JSON form holds); only presentation is derived here (labels, durations,
//! axis ranges). Must not read the store or a clock, fetch anything, or emit script; every text
//! from data goes through [`svg::escape`].

use std::fmt::Write as _;

use jiff::tz::TimeZone;
use voqa_wire::Timestamp;
use voqa_wire::time::{NS_PER_DAY, NS_PER_HOUR, NS_PER_MIN, NS_PER_S};

use super::model::{NoticeKind, ReportCall, ReportDocument, SpanState, TimelineSpan, WORST_CALLS};
use super::svg::{self, Axis, Bar, Bin, DayChart, Series, Span, Threshold, escape, fmt_value};
use crate::sla::{CommitmentResult, Verdict};

/// The page's Content-Security-Policy: nothing may be loaded or run; only the inline style
/// block applies, and images only from `data:` URLs (there are none; inline SVG needs no
/// source).
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// Rows of the "not up" intervals table under the timeline; the JSON form lists them all.
const MAX_INTERVAL_ROWS: usize = 30;

/// Notices listed; the JSON form lists them all.
const MAX_NOTICES: usize = 40;

const STYLE: &str = r#"
:root { color-scheme: light; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: #212121; max-width: 760px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 2px; }
h2 { font-size: 17px; margin: 18px 0 8px; border-bottom: 1px solid #e0e0e0; padding-bottom: 2px; }
h3 { font-size: 14px; margin: 10px 0 2px; }
p { margin: 6px 0; }
.sub { color: #555; margin: 0; }
.verdict { border: 2px solid; border-radius: 6px; padding: 10px 16px; margin: 14px 0; }
.verdict.met { background: #e8f5e9; border-color: #2e7d32; }
.verdict.breached { background: #ffebee; border-color: #c62828; }
.verdict.no-data { background: #f5f5f5; border-color: #757575; }
.verdict .word { font-size: 26px; font-weight: 700; margin: 0; }
.verdict.met .word { color: #1b5e20; }
.verdict.breached .word { color: #b71c1c; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #e0e0e0; vertical-align: top; }
th { background: #fafafa; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr, li, figure, .verdict, dl > div { break-inside: avoid; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600;
  font-size: 12px; white-space: nowrap; }
.badge.met { background: #2e7d32; color: #fff; }
.badge.breached { background: #c62828; color: #fff; }
.badge.no-data { background: #e0e0e0; color: #212121; }
.detail { color: #616161; font-size: 11.5px; }
.notices { padding-left: 18px; }
.notices li { margin: 4px 0; }
.kind { font-weight: 600; }
figure { margin: 8px 0 14px; }
figcaption { font-size: 12px; color: #555; }
svg.chart { width: 100%; height: auto; display: block; }
.pair { display: flex; gap: 16px; }
.pair svg.chart { width: 50%; }
.mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 11.5px;
  overflow-wrap: anywhere; }
table.calls, #intervals { font-size: 11px; }
table.calls .mono { font-size: 10px; }
table.calls td, table.calls th, #intervals td, #intervals th { padding: 2px 4px; }
.nowrap { white-space: nowrap; }
dl { margin: 4px 0; }
dt { font-weight: 600; margin-top: 6px; }
dd { margin: 0 0 0 14px; }
.part + .part { break-before: page; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 12px; }
  h2 { margin-top: 12px; }
}
"#;

/// The report as one HTML5 document (see the module header).
pub fn render(doc: &ReportDocument) -> String {
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, doc);
    out.push_str(r#"<body><div class="part" id="summary">"#);
    title(&mut out, doc);
    verdict(&mut out, doc);
    commitments(&mut out, doc);
    notices(&mut out, doc);
    out.push_str(r#"</div><div class="part" id="quality">"#);
    quality(&mut out, doc);
    out.push_str(r#"</div><div class="part" id="availability">"#);
    uptime(&mut out, doc);
    worst_calls(&mut out, doc);
    out.push_str(r#"</div><div class="part" id="about">"#);
    methods(&mut out, doc);
    provenance(&mut out, doc);
    out.push_str("</div></body></html>\n");
    out
}

fn head(out: &mut String, doc: &ReportDocument) {
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{}"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="generator" content="voqa-collector {}"><title>Voice quality report: {} – {}</title><style>{STYLE}</style></head>"#,
        escape(CONTENT_SECURITY_POLICY),
        escape(&doc.provenance.collector_version),
        escape(&doc.customer.name),
        escape(&doc.period.label),
    );
}

/// Data text isolated from its surroundings (`<bdi>`), so right-to-left names lay out on their
/// own and cannot reorder the sentence around them.
fn data(text: &str) -> String {
    format!("<bdi>{}</bdi>", escape(text))
}

fn title(out: &mut String, doc: &ReportDocument) {
    let p = &doc.period;
    let (from, from_offset) = local_time(&p.from_local);
    let (to, to_offset) = local_time(&p.to_local);
    let bounds = if from_offset == to_offset {
        format!(
            "{} to {} {} time ({})",
            escape(&from),
            escape(&to),
            data(&p.time_zone),
            escape(&from_offset)
        )
    } else {
        // A DST change within the period: each bound with its own offset.
        format!(
            "{} ({}) to {} ({}) {} time",
            escape(&from),
            escape(&from_offset),
            escape(&to),
            escape(&to_offset),
            data(&p.time_zone)
        )
    };
    let _ = write!(
        out,
        r#"<header><h1>Voice quality report: {}</h1><p class="sub">Period {}: {bounds}. Customer id {}.</p></header>"#,
        data(&doc.customer.name),
        data(&p.label),
        data(&doc.customer.id),
    );
}

/// `(css class, word)` of a verdict.
fn verdict_word(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Met => ("met", "Met"),
        Verdict::Breached => ("breached", "Breached"),
        Verdict::NoData => ("no-data", "No data"),
    }
}

fn badge(v: Verdict) -> String {
    let (class, word) = verdict_word(v);
    format!(r#"<span class="badge {class}">{word}</span>"#)
}

/// A commitment's name in plain words, for sentences.
fn short_name(name: &str) -> String {
    match name {
        "mos" => "call quality (MOS)".to_owned(),
        "loss" => "packet loss".to_owned(),
        "jitter_p95" => "jitter".to_owned(),
        "uptime" => "uptime".to_owned(),
        "asr" => "answer-seizure ratio".to_owned(),
        "ner" => "network effectiveness".to_owned(),
        "pdd_p95" => "post-dial delay".to_owned(),
        "one_way_audio" => "calls with media problems".to_owned(),
        other => data(other),
    }
}

fn join_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.map(short_name).collect::<Vec<_>>().join(", ")
}

fn verdict(out: &mut String, doc: &ReportDocument) {
    let e = &doc.evaluation;
    let (class, word) = verdict_word(e.verdict);
    let total = e.commitments.len();
    let of = |v: Verdict| e.commitments.iter().filter(move |c| c.verdict == v);
    let sentence = match e.verdict {
        Verdict::Breached => {
            let breached = of(Verdict::Breached).count();
            format!(
                "{breached} of {total} commitments {} not kept: {}.",
                if breached == 1 { "was" } else { "were" },
                join_names(of(Verdict::Breached).map(|c| c.name))
            )
        }
        Verdict::Met => format!(
            "Every commitment that could be measured was kept ({} of {total}).",
            of(Verdict::Met).count()
        ),
        Verdict::NoData => "Nothing in this period could be measured, so no commitment is \
                            judged kept or broken."
            .to_owned(),
    };
    let _ = write!(
        out,
        r#"<section class="verdict {class}" id="verdict"><p class="word">{word}</p><p>{sentence}"#
    );
    if e.verdict != Verdict::NoData && of(Verdict::NoData).next().is_some() {
        let _ = write!(
            out,
            " Not measured (no data, neither kept nor broken): {}.",
            join_names(of(Verdict::NoData).map(|c| c.name))
        );
    }
    let _ = write!(
        out,
        " {} calls in the period{}.</p>",
        count(e.calls),
        if e.calls_without_mos > 0 {
            format!(", {} of them without a MOS", count(e.calls_without_mos))
        } else {
            String::new()
        }
    );
    if e.evaluated_until_ns < e.to_ns {
        let _ = write!(
            out,
            "<p>The period is not over: it is judged up to {}; what follows is not judged yet.</p>",
            escape(&local_time_of(&e.evaluated_until, &zone_of(doc)))
        );
    }
    if !doc.notices.is_empty() {
        let _ = write!(
            out,
            r##"<p>Measurement was incomplete at times: see the {} under <a href="#notices">“Where measurement was incomplete”</a>.</p>"##,
            plural(doc.notices.len() as u64, "notice", "notices")
        );
    }
    out.push_str("</section>");
}

/// Title, target, measured value and what the coverage is a share of, in plain words.
struct Described {
    title: String,
    target: String,
    measured: String,
    coverage_of: &'static str,
}

fn describe(c: &CommitmentResult) -> Described {
    let num = |v: f64| fmt_target(v);
    let measured = |f: &dyn Fn(f64) -> String| c.measured.map_or_else(|| "—".to_owned(), f);
    match c.name {
        "mos" => Described {
            title: format!(
                "Calls with good voice quality (MOS ≥ {})",
                c.mos_min.map_or_else(|| "?".to_owned(), num)
            ),
            target: format!("at least {} % of calls", num(c.target)),
            measured: measured(&|m| format!("{} % of calls", fmt_value(m, 2))),
            coverage_of: "of calls had a MOS",
        },
        "loss" => Described {
            title: "Packet loss on each call".to_owned(),
            target: format!("at most {} % on every call", num(c.target)),
            measured: measured(&|m| format!("worst call {} %", fmt_value(m, 2))),
            coverage_of: "of calls had a loss figure",
        },
        "jitter_p95" => Described {
            title: "Jitter (95 % of packets at or below)".to_owned(),
            target: format!("at most {} ms", num(c.target)),
            measured: measured(&|m| format!("{} ms", fmt_value(m, 1))),
            coverage_of: "of report windows in the percentile",
        },
        "uptime" => Described {
            title: "Uptime of the monitored service".to_owned(),
            target: format!("at least {} % of the time", num(c.target)),
            measured: measured(&|m| format!("{} %", fmt_value(m, 3))),
            coverage_of: "of the time (outside maintenance) measured",
        },
        "asr" => Described {
            title: "Answered call attempts (ASR, ITU-T E.411)".to_owned(),
            target: format!("at least {} % of attempts", num(c.target)),
            measured: measured(&|m| format!("{} % of attempts", fmt_value(m, 2))),
            coverage_of: "measured",
        },
        "ner" => Described {
            title: "Network effectiveness (NER, ITU-T E.425)".to_owned(),
            target: format!("at least {} % of attempts", num(c.target)),
            measured: measured(&|m| format!("{} % of attempts", fmt_value(m, 2))),
            coverage_of: "measured",
        },
        "pdd_p95" => Described {
            title: "Post-dial delay (95 % of calls at or below)".to_owned(),
            target: format!("at most {} ms", num(c.target)),
            measured: measured(&|m| format!("{} ms", fmt_value(m, 0))),
            coverage_of: "of attempts had a response to their INVITE",
        },
        "one_way_audio" => Described {
            title: "Answered calls with one-way audio or another media problem".to_owned(),
            target: format!("at most {} % of answered calls", num(c.target)),
            measured: measured(&|m| format!("{} % of answered calls", fmt_value(m, 2))),
            coverage_of: "measured",
        },
        other => Described {
            title: escape(other),
            target: format!("{} {}", num(c.target), escape(c.unit)),
            measured: measured(&|m| format!("{} {}", fmt_value(m, 2), escape(c.unit))),
            coverage_of: "measured",
        },
    }
}

fn commitments(out: &mut String, doc: &ReportDocument) {
    out.push_str(
        r#"<section id="commitments-section"><h2>Commitments</h2><table id="commitments"><thead><tr><th>Commitment</th><th>Target</th><th>Measured</th><th>Verdict</th><th>Coverage</th></tr></thead><tbody>"#,
    );
    for c in &doc.evaluation.commitments {
        let d = describe(c);
        let coverage = c.coverage.map_or_else(
            || "—".to_owned(),
            |share| format!("{} % {}", share_pct(share), d.coverage_of),
        );
        // The SLA's own sentence (the reason when there is no verdict), in small print.
        let why = c.reason.as_deref().unwrap_or(&c.detail);
        let _ = write!(
            out,
            r#"<tr class="commitment" data-name="{}"><td>{}<div class="detail">{}</div></td><td>{}</td><td class="num">{}</td><td>{}</td><td class="detail">{}</td></tr>"#,
            escape(c.name),
            d.title,
            escape(why),
            d.target,
            d.measured,
            badge(c.verdict),
            coverage
        );
    }
    out.push_str("</tbody></table></section>");
}

fn notice_kind(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::CaptureDrops => "Capture drops",
        NoticeKind::AgentOutage => "Agent outage",
        NoticeKind::NoData => "No data",
        NoticeKind::WithoutHistogram => "Jitter not in the percentile",
    }
}

fn notices(out: &mut String, doc: &ReportDocument) {
    out.push_str(r#"<section id="notices"><h2>Where measurement was incomplete</h2>"#);
    if doc.notices.is_empty() {
        out.push_str("<p>Nothing: the whole period was measured without gaps.</p></section>");
        return;
    }
    out.push_str(r#"<ul class="notices">"#);
    let zone = zone_of(doc);
    for notice in doc.notices.iter().take(MAX_NOTICES) {
        let when = match (&notice.from, &notice.to) {
            (Some(from), Some(to)) => format!(
                " <span class=\"detail\">({} – {})</span>",
                local_cell(from, &zone),
                local_cell(to, &zone)
            ),
            (Some(at), None) | (None, Some(at)) => {
                format!(" <span class=\"detail\">({})</span>", local_cell(at, &zone))
            }
            (None, None) => String::new(),
        };
        let _ = write!(
            out,
            r#"<li class="notice"><span class="kind">{}:</span> {}{when}</li>"#,
            notice_kind(notice.kind),
            data(&notice.text)
        );
    }
    out.push_str("</ul>");
    if doc.notices.len() > MAX_NOTICES {
        let _ = write!(
            out,
            "<p class=\"detail\">… and {} more; the JSON form of the report lists them all.</p>",
            count((doc.notices.len() - MAX_NOTICES) as u64)
        );
    }
    out.push_str("</section>");
}

fn commitment<'a>(doc: &'a ReportDocument, name: &str) -> Option<&'a CommitmentResult> {
    doc.evaluation.commitments.iter().find(|c| c.name == name)
}

/// The days' labels (day of month when the period is within one month, else `MM-DD`) and the
/// axis title.
fn day_labels(doc: &ReportDocument) -> (Vec<String>, String) {
    let month = |d: &str| d.get(..7).map(str::to_owned);
    let first = doc.days.first().and_then(|d| month(&d.date));
    let one_month = first.is_some() && doc.days.iter().all(|d| month(&d.date) == first);
    let labels = doc
        .days
        .iter()
        .map(|d| {
            if one_month {
                d.date.get(8..).map_or_else(
                    || d.date.clone(),
                    |day| day.trim_start_matches('0').to_owned(),
                )
            } else {
                d.date.get(5..).unwrap_or(&d.date).to_owned()
            }
        })
        .collect();
    let title = match first.filter(|_| one_month) {
        Some(m) => format!("Day of {m} ({})", doc.customer.time_zone),
        None => format!("Day ({})", doc.customer.time_zone),
    };
    (labels, title)
}

fn figure(out: &mut String, id: &str, heading: &str, chart: &str, caption: &str) {
    let _ = write!(
        out,
        r#"<figure id="{id}"><h3>{heading}</h3>{chart}<figcaption>{caption}</figcaption></figure>"#
    );
}

fn quality(out: &mut String, doc: &ReportDocument) {
    out.push_str("<h2>Voice quality</h2>");
    let (labels, x_title) = day_labels(doc);
    let mos = commitment(doc, "mos");
    let mos_min = mos.and_then(|c| c.mos_min).filter(|v| v.is_finite());

    // Daily MOS trend: the axis starts a little below the lowest value or the threshold.
    let p50: Vec<Option<f64>> = doc.days.iter().map(|d| d.mos_p50).collect();
    let p5: Vec<Option<f64>> = doc.days.iter().map(|d| d.mos_p5).collect();
    let lowest = p5
        .iter()
        .chain(&p50)
        .flatten()
        .copied()
        .chain(mos_min)
        .filter(|v| v.is_finite())
        .fold(4.5_f64, f64::min);
    let bottom = ((lowest - 0.25) * 2.0).floor().clamp(2.0, 8.0) / 2.0;
    let axis = Axis::fixed(bottom, 4.5, 0.5, 1, "MOS");
    let threshold = mos_min.map(|v| Threshold {
        value: v,
        label: format!("MOS {} (good)", fmt_target(v)),
    });
    let days = |id, title, y, threshold| DayChart {
        id,
        title,
        categories: &labels,
        x_title: &x_title,
        y,
        threshold,
        empty_label: "no calls with a MOS",
    };
    let chart = svg::line_chart(
        &days(
            "chart-mos-trend",
            "Daily call MOS: median and 5th percentile",
            &axis,
            threshold.as_ref(),
        ),
        &[
            Series {
                name: "median call",
                colour: svg::BLUE,
                dashed: false,
                values: &p50,
            },
            Series {
                name: "5th percentile",
                colour: svg::ORANGE,
                dashed: true,
                values: &p5,
            },
        ],
    );
    figure(
        out,
        "fig-mos-trend",
        "Daily call quality (MOS)",
        &chart,
        "Each day's median call MOS, and the 5th percentile: 5 % of the day's calls were \
         worse. A call's MOS is its worse direction's; higher is better.",
    );

    let share: Vec<Option<f64>> = doc.days.iter().map(|d| d.meeting_mos_pct).collect();
    let target = mos.map(|c| Threshold {
        value: c.target,
        label: format!("target {} %", fmt_target(c.target)),
    });
    let percent = Axis::fixed(0.0, 100.0, 20.0, 0, "% of calls");
    let chart = svg::bar_chart(
        &days(
            "chart-mos-share",
            "Daily share of calls meeting the MOS commitment",
            &percent,
            target.as_ref(),
        ),
        &share,
    );
    let caption = match mos_min {
        Some(m) => format!(
            "Share of each day's calls with MOS ≥ {}; the commitment is judged over the whole \
             period, not day by day.",
            fmt_target(m)
        ),
        None => "Share of each day's calls meeting the MOS threshold.".to_owned(),
    };
    figure(
        out,
        "fig-mos-share",
        "Calls meeting the quality commitment, per day",
        &chart,
        &caption,
    );

    let bins: Vec<Bin> = doc
        .mos_histogram
        .iter()
        .map(|b| Bin {
            lo: b.lo,
            hi: b.hi,
            count: b.calls,
        })
        .collect();
    let threshold = mos_min.map(|v| Threshold {
        value: v,
        label: format!("MOS {}", fmt_target(v)),
    });
    let chart = svg::histogram(
        "chart-mos-histogram",
        "Calls by MOS",
        &bins,
        "call MOS (bins of 0.1)",
        "calls",
        threshold.as_ref(),
    );
    let with_mos: u64 = doc.mos_histogram.iter().map(|b| b.calls).sum();
    let caption = format!(
        "{} calls with a MOS, by their MOS; red bins are below the threshold.{}",
        count(with_mos),
        if doc.calls_without_mos > 0 {
            format!(
                " {} calls without a MOS are not shown.",
                count(doc.calls_without_mos)
            )
        } else {
            String::new()
        }
    );
    figure(
        out,
        "fig-mos-histogram",
        "Distribution of call quality",
        &chart,
        &caption,
    );

    let bars =
        |p: &super::model::Percentiles, judged: &str| -> Vec<(&'static str, Option<f64>, bool)> {
            [("p50", p.p50), ("p95", p.p95), ("p99", p.p99)]
                .into_iter()
                .map(|(label, value)| (label, value, label == judged))
                .collect()
        };
    let as_bars = |rows: &[(&'static str, Option<f64>, bool)]| -> Vec<Bar<'static>> {
        rows.iter()
            .map(|&(label, value, judged)| Bar {
                label,
                value,
                judged,
            })
            .collect()
    };
    let loss_limit = commitment(doc, "loss").map(|c| Threshold {
        value: c.target,
        label: format!("limit {} %", fmt_target(c.target)),
    });
    let jitter_limit = commitment(doc, "jitter_p95").map(|c| Threshold {
        value: c.target,
        label: format!("p95 limit {} ms", fmt_target(c.target)),
    });
    let loss = svg::percentile_bars(
        "chart-loss",
        "Packet loss per call: percentiles",
        "%",
        &as_bars(&bars(&doc.loss_pct, "p99")),
        loss_limit.as_ref(),
        2,
    );
    let jitter = svg::percentile_bars(
        "chart-jitter",
        "Jitter per packet: percentiles",
        "ms",
        &as_bars(&bars(&doc.jitter_ms, "p95")),
        jitter_limit.as_ref(),
        1,
    );
    let _ = write!(
        out,
        r#"<figure id="fig-percentiles"><h3>Packet loss and jitter</h3><div class="pair">{loss}{jitter}</div><figcaption>Loss: each call's worst direction, percentiles over {} calls (the limit applies to every call). Jitter: percentiles over {} packets, from the agents' per-packet histograms merged exactly; the commitment is on p95.</figcaption></figure>"#,
        count(doc.loss_pct.samples),
        count(doc.jitter_ms.samples)
    );
}

fn state_word(state: SpanState) -> &'static str {
    match state {
        SpanState::Up => "Up",
        SpanState::Down => "Down",
        SpanState::Maintenance => "Maintenance",
        SpanState::NoData => "No data",
        SpanState::Future => "Not yet judged",
    }
}

fn span_text(s: &TimelineSpan, zone: &TimeZone) -> String {
    format!(
        "{}: {} – {} ({})",
        state_word(s.state),
        local_time_of(&s.from, zone),
        local_time_of(&s.to, zone),
        duration(s.to_ns.saturating_sub(s.from_ns))
    )
}

fn uptime(out: &mut String, doc: &ReportDocument) {
    out.push_str(r#"<section id="uptime"><h2>Availability</h2>"#);
    let zone = zone_of(doc);
    let (labels, x_title) = day_labels(doc);
    let spans: Vec<Span> = doc
        .uptime_timeline
        .iter()
        .map(|s| Span {
            state: s.state,
            from_ns: s.from_ns,
            to_ns: s.to_ns,
            tooltip: span_text(s, &zone),
        })
        .collect();
    let ticks: Vec<(i64, String)> = doc
        .days
        .iter()
        .zip(labels)
        .map(|(d, label)| (d.from_ns, label))
        .collect();
    let chart = svg::timeline(
        "chart-uptime",
        "Uptime timeline",
        doc.period.from_ns,
        doc.period.to_ns,
        &spans,
        &ticks,
        &x_title,
    );
    figure(
        out,
        "fig-uptime",
        "Uptime over the period",
        &chart,
        "Up, down, maintenance windows (excluded from uptime), stretches with no data \
         (neither up nor down) and time not judged yet. Short stretches are drawn at least \
         1.5 units wide so they stay visible.",
    );
    let not_up: Vec<&TimelineSpan> = doc
        .uptime_timeline
        .iter()
        .filter(|s| {
            matches!(
                s.state,
                SpanState::Down | SpanState::Maintenance | SpanState::NoData
            )
        })
        .collect();
    if not_up.is_empty() {
        out.push_str("<p>No downtime, maintenance or stretch without data in the period.</p>");
    } else {
        let _ = write!(
            out,
            r#"<table id="intervals"><thead><tr><th>State</th><th>From ({zone_name})</th><th>To ({zone_name})</th><th class="num">Duration</th></tr></thead><tbody>"#,
            zone_name = "local",
        );
        for s in not_up.iter().take(MAX_INTERVAL_ROWS) {
            let _ = write!(
                out,
                r#"<tr class="{}"><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td></tr>"#,
                match s.state {
                    SpanState::Down => "down",
                    SpanState::Maintenance => "maintenance",
                    _ => "no-data",
                },
                state_word(s.state),
                local_cell(&s.from, &zone),
                local_cell(&s.to, &zone),
                duration(s.to_ns.saturating_sub(s.from_ns))
            );
        }
        out.push_str("</tbody></table>");
        if not_up.len() > MAX_INTERVAL_ROWS {
            let _ = write!(
                out,
                "<p class=\"detail\">… and {} more; the JSON form of the report lists them all.</p>",
                count((not_up.len() - MAX_INTERVAL_ROWS) as u64)
            );
        }
    }
    out.push_str("</section>");
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "—".to_owned(), |v| fmt_value(v, decimals))
}

fn worst_calls(out: &mut String, doc: &ReportDocument) {
    out.push_str(r#"<section id="worst-calls"><h2>Worst calls</h2>"#);
    if doc.worst_calls.is_empty() {
        out.push_str("<p>No calls with a MOS in the period.</p></section>");
        return;
    }
    let _ = write!(
        out,
        r#"<p class="detail">The lowest-MOS calls, worst first. Call ids are pseudonyms; the worst stream is the direction that set the call's MOS (its stream id and agent show on hovering; the JSON and CSV forms list them).</p><table class="calls" id="worst-calls-table"><thead><tr><th>Call</th><th>Start (local)</th><th class="num">MOS</th><th class="num">Loss %</th><th class="num">Jitter ms</th><th>Codec</th><th>Worst stream</th></tr></thead><tbody>"#,
    );
    let zone = zone_of(doc);
    for call in doc.worst_calls.iter().take(WORST_CALLS) {
        worst_call_row(out, call, &zone);
    }
    out.push_str("</tbody></table></section>");
}

/// One line per call, so twenty calls fit on a page beside the uptime timeline.
fn worst_call_row(out: &mut String, call: &ReportCall, zone: &TimeZone) {
    let (codec, stream) = match &call.worst_stream {
        Some(s) => (
            data(&s.codec),
            format!(
                r#"<span class="mono" title="stream {}, agent {}"><span class="nowrap">{}</span> → <span class="nowrap">{}</span></span>"#,
                escape(&s.stream_id),
                escape(&call.agent_id),
                data(&s.src),
                data(&s.dst),
            ),
        ),
        None => ("—".to_owned(), "—".to_owned()),
    };
    // Minutes are enough to find a call; the seconds are in the JSON and CSV forms.
    // Local time to the minute; its offset (which tells the repeated DST hour apart) as the
    // cell's title, so that the row keeps the width that fits twenty calls on the A4 page.
    let start = local_minute_of(&call.start, zone);
    let (minute, offset) = start.rsplit_once(' ').unwrap_or((start.as_str(), ""));
    let _ = write!(
        out,
        r#"<tr class="call"><td class="mono nowrap">{}</td><td class="nowrap" title="{}">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{codec}</td><td>{stream}</td></tr>"#,
        data(&call.call),
        escape(offset),
        escape(minute),
        opt(call.mos, 2),
        fmt_value(call.loss_pct, 2),
        opt(call.jitter_ms, 1),
    );
}

fn methods(out: &mut String, doc: &ReportDocument) {
    let m = &doc.methods;
    out.push_str(r#"<section id="methods"><h2>How the numbers were made</h2><dl>"#);
    for (term, text) in [
        ("Call quality (E-model, ITU-T G.107)", &m.emodel),
        ("Jitter-buffer emulation", &m.jitter_buffer),
        ("Delay when no RTCP was seen", &m.assumed_delay),
        ("Percentiles", &m.percentiles),
        ("Uptime", &m.uptime),
        ("Pseudonymisation", &m.pseudonymisation),
        ("Time zone", &m.time_zone),
    ] {
        let _ = write!(out, "<div><dt>{term}</dt><dd>{}</dd></div>", data(text));
    }
    out.push_str("</dl>");
    if m.codecs.is_empty() {
        out.push_str("<p>No codec was seen in the period.</p>");
    } else {
        out.push_str(
            r#"<h3>Codec values used (ITU-T G.113)</h3><table id="codecs"><thead><tr><th>Codec</th><th class="num">Ie</th><th class="num">Bpl</th><th class="num">Streams</th></tr></thead><tbody>"#,
        );
        for c in &m.codecs {
            let _ = write!(
                out,
                r#"<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
                data(&c.codec),
                fmt_target(c.ie),
                fmt_target(c.bpl),
                count(c.streams)
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>");
}

fn provenance(out: &mut String, doc: &ReportDocument) {
    let p = &doc.period;
    let hash = doc.provenance.json_sha256.as_deref().map_or_else(
        || "not computed".to_owned(),
        |h| format!(r#"<span class="mono">{}</span>"#, escape(h)),
    );
    out.push_str(r#"<section id="provenance"><h2>About this report</h2><dl>"#);
    for (term, text) in [
        (
            "Customer",
            format!(
                "{} (id {})",
                data(&doc.customer.name),
                data(&doc.customer.id)
            ),
        ),
        (
            "Period",
            format!(
                "{}: from {} to {} (exclusive), time zone {}; in UTC {} to {}",
                data(&p.label),
                escape(&p.from_local),
                escape(&p.to_local),
                data(&p.time_zone),
                escape(&p.from),
                escape(&p.to)
            ),
        ),
        ("Judged up to", escape(&p.evaluated_until)),
        ("Generated at", escape(&doc.provenance.generated_at)),
        (
            "Made by",
            format!(
                "voqa-collector {} (report format {})",
                escape(&doc.provenance.collector_version),
                doc.report_version
            ),
        ),
        ("SHA-256 of the JSON form", hash),
    ] {
        let _ = write!(out, "<div><dt>{term}</dt><dd>{text}</dd></div>");
    }
    out.push_str(
        "</dl><p class=\"detail\">The JSON form of this same report (<code>--format json</code>, \
         generated together with this page) holds every figure shown here; its SHA-256 is the \
         value above, so an auditor can tie this page to those numbers.</p></section>",
    );
}

/// A target or codec value as written in the configuration: shortest exact form (`95`,
/// `99.95`, `4.03`).
fn fmt_target(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "—".to_owned()
    }
}

/// A share (0..=1) as a percentage with one decimal, rounded down: 99.99 % measured must not
/// read as 100 %, which only a whole share shows.
fn share_pct(share: f64) -> String {
    if !share.is_finite() {
        return "—".to_owned();
    }
    if share >= 1.0 {
        return "100".to_owned();
    }
    fmt_value((share.max(0.0) * 1000.0).floor() / 10.0, 1)
}

/// `1234567` → `1,234,567`.
fn count(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn plural(v: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(v), if v == 1 { one } else { many })
}

/// The customer's zone, in which the page shows every instant (the document keeps them in
/// UTC). The report was built in it, so it is known; UTC should it not be (the offset shown
/// with each time then says so).
fn zone_of(doc: &ReportDocument) -> TimeZone {
    TimeZone::get(&doc.customer.time_zone).unwrap_or(TimeZone::UTC)
}

/// An RFC 3339 UTC time as the customer reads it: local date and time with the offset of
/// that instant, `2026-10-25 02:30:00 UTC+01:00` (the repeated hour of a DST change is told
/// apart by its offset); text that is not a time as it is (the caller escapes).
fn local_time_of(text: &str, zone: &TimeZone) -> String {
    zoned(text, zone, "%Y-%m-%d %H:%M:%S")
}

/// [`local_time_of`] to the minute: `2026-10-25 02:30 UTC+01:00`.
fn local_minute_of(text: &str, zone: &TimeZone) -> String {
    zoned(text, zone, "%Y-%m-%d %H:%M")
}

/// [`local_time_of`] as page markup for tables and lists: the local time as text and its
/// offset as the element's title, so that rows keep the width that fits each part on its A4
/// page (the zone is named in the heading or the title section).
fn local_cell(text: &str, zone: &TimeZone) -> String {
    let local = local_time_of(text, zone);
    match local.rsplit_once(' ') {
        Some((time, offset)) if offset.starts_with("UTC") => format!(
            r#"<span title="{}">{}</span>"#,
            escape(offset),
            escape(time)
        ),
        _ => escape(&local),
    }
}

fn zoned(text: &str, zone: &TimeZone, format: &str) -> String {
    let Some(zoned) = Timestamp::parse(text)
        .ok()
        .and_then(|t| jiff::Timestamp::from_nanosecond(i128::from(t.as_ns())).ok())
        .map(|t| t.to_zoned(zone.clone()))
    else {
        return text.to_owned();
    };
    let offset = zoned.offset();
    let offset = if offset.seconds() == 0 {
        "UTC".to_owned()
    } else {
        format!("UTC{}", zoned.strftime("%:z"))
    };
    format!("{} {offset}", zoned.strftime(format))
}

/// A local RFC 3339 time with offset (`2026-11-01T00:00:00+01:00`) as its date and minute
/// (`2026-11-01 00:00`) and its offset from UTC (`UTC+01:00`); anything else as it is with an
/// empty offset (the caller escapes).
fn local_time(text: &str) -> (String, String) {
    let b = text.as_bytes();
    let well_formed = b.len() >= 19
        && b.get(10) == Some(&b'T')
        && text.is_char_boundary(16)
        && text.is_char_boundary(19);
    if !well_formed {
        return (text.to_owned(), String::new());
    }
    // The offset follows the seconds and any fraction.
    let offset = text[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let zone = match offset {
        "Z" | "+00:00" => "UTC".to_owned(),
        o => format!("UTC{o}"),
    };
    (format!("{} {}", &text[..10], &text[11..16]), zone)
}

/// A length of time in plain units: `45 s`, `12 min`, `2 h 15 min`, `3 d 4 h`.
fn duration(ns: i64) -> String {
    let ns = ns.max(0);
    if ns < NS_PER_MIN {
        return format!("{} s", ns / NS_PER_S);
    }
    if ns < NS_PER_HOUR {
        let (m, s) = (ns / NS_PER_MIN, (ns % NS_PER_MIN) / NS_PER_S);
        return if s == 0 {
            format!("{m} min")
        } else {
            format!("{m} min {s} s")
        };
    }
    if ns < NS_PER_DAY {
        let (h, m) = (ns / NS_PER_HOUR, (ns % NS_PER_HOUR) / NS_PER_MIN);
        return if m == 0 {
            format!("{h} h")
        } else {
            format!("{h} h {m} min")
        };
    }
    let (d, h) = (ns / NS_PER_DAY, (ns % NS_PER_DAY) / NS_PER_HOUR);
    if h == 0 {
        format!("{d} d")
    } else {
        format!("{d} d {h} h")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::*;
    use crate::sla::{
        CallEvidence, CommitmentResult, DropSummary, Evaluation, Evidence, Gaps, JitterEvidence,
    };
    use proptest::prelude::*;

    const DAY: i64 = 86_400_000_000_000;
    /// 2026-11-01T00:00:00Z.
    const FROM: i64 = 1_793_491_200_000_000_000;

    fn result(
        name: &'static str,
        target: f64,
        measured: Option<f64>,
        verdict: Verdict,
    ) -> CommitmentResult {
        CommitmentResult {
            name,
            target,
            unit: if name == "jitter_p95" { "ms" } else { "%" },
            mos_min: (name == "mos").then_some(4.0),
            measured,
            verdict,
            reason: (verdict == Verdict::NoData).then(|| "no calls in the period".to_owned()),
            met: verdict.met(),
            coverage: measured.map(|_| 1.0),
            detail: format!("{name} detail"),
            evidence: Evidence::Calls(CallEvidence {
                considered: 0,
                within: 0,
                breaching: 0,
                calls: Vec::new(),
            }),
        }
    }

    /// A three-day report of one customer, with `name`, `call` and `text` wherever the page
    /// shows text from data.
    fn doc(name: &str, call: &str, text: &str) -> ReportDocument {
        let t = |ns: i64| Timestamp::from_ns(ns).to_string();
        let day = |i: i64, mos: Option<f64>| DaySeries {
            date: format!("2026-11-0{}", i + 1),
            from_ns: FROM + i * DAY,
            to_ns: FROM + (i + 1) * DAY,
            hours: 24.0,
            calls: u64::from(mos.is_some()) * 10,
            calls_with_mos: u64::from(mos.is_some()) * 10,
            mos_p50: mos,
            mos_p5: mos.map(|m| m - 0.5),
            meeting_mos_pct: mos.map(|_| 90.0),
        };
        let stream = ReportStream {
            stream_id: text.to_owned(),
            src: text.to_owned(),
            dst: "198.51.100.20:50000".to_owned(),
            codec: text.to_owned(),
            mos: Some(2.1),
            loss_pct: 4.0,
            jitter_ms: Some(25.0),
        };
        ReportDocument {
            report_version: REPORT_VERSION,
            customer: ReportCustomer {
                id: name.to_owned(),
                name: name.to_owned(),
                time_zone: text.to_owned(),
            },
            period: ReportPeriod {
                label: text.to_owned(),
                from: t(FROM),
                to: t(FROM + 3 * DAY),
                from_ns: FROM,
                to_ns: FROM + 3 * DAY,
                from_local: "2026-11-01T00:00:00+00:00".to_owned(),
                to_local: text.to_owned(),
                time_zone: text.to_owned(),
                evaluated_until: t(FROM + 3 * DAY),
            },
            provenance: Provenance {
                collector_version: text.to_owned(),
                generated_at: t(FROM + 4 * DAY),
                json_sha256: Some(text.to_owned()),
            },
            evaluation: Evaluation {
                customer: name.to_owned(),
                from_ns: FROM,
                to_ns: FROM + 3 * DAY,
                from: t(FROM),
                to: t(FROM + 3 * DAY),
                evaluated_until_ns: FROM + 3 * DAY,
                evaluated_until: t(FROM + 3 * DAY),
                verdict: Verdict::Breached,
                commitments_without_data: vec![],
                commitments: vec![
                    result("mos", 95.0, Some(90.0), Verdict::Breached),
                    result("loss", 1.0, Some(4.0), Verdict::Breached),
                    CommitmentResult {
                        evidence: Evidence::Jitter(JitterEvidence {
                            method: "per_packet_histograms",
                            samples: 1,
                            windows: 1,
                            windows_without_histogram: 0,
                            hourly_rollups: 0,
                            single_windows: 1,
                            p50_ms: Some(1.0),
                            p99_ms: Some(2.0),
                        }),
                        ..result("jitter_p95", 30.0, Some(12.5), Verdict::Met)
                    },
                    result("uptime", 99.9, Some(99.95), Verdict::Met),
                ],
                calls: 20,
                calls_without_mos: 0,
                reports_used: 40,
                capture_drops: DropSummary {
                    total: 0,
                    restarts: 0,
                    windows_with_drops: 0,
                    intervals_total: 0,
                    intervals: vec![],
                },
                gaps: Gaps::default(),
            },
            days: vec![day(0, Some(4.2)), day(1, None), day(2, Some(3.9))],
            mos_histogram: (10..45)
                .map(|i| HistogramBin {
                    lo: f64::from(i) / 10.0,
                    hi: f64::from(i + 1) / 10.0,
                    calls: u64::from(i == 21 || i == 42) * 10,
                })
                .collect(),
            calls_without_mos: 0,
            loss_pct: Percentiles {
                p50: Some(0.0),
                p95: Some(4.0),
                p99: Some(4.0),
                samples: 20,
            },
            jitter_ms: Percentiles {
                p50: Some(1.0),
                p95: Some(12.5),
                p99: Some(2.0),
                samples: 1000,
            },
            uptime_timeline: vec![
                TimelineSpan {
                    state: SpanState::Up,
                    from_ns: FROM,
                    to_ns: FROM + DAY,
                    from: t(FROM),
                    to: text.to_owned(),
                },
                TimelineSpan {
                    state: SpanState::Down,
                    from_ns: FROM + DAY,
                    to_ns: FROM + DAY + 3_600_000_000_000,
                    from: text.to_owned(),
                    to: t(FROM + DAY + 3_600_000_000_000),
                },
                TimelineSpan {
                    state: SpanState::Up,
                    from_ns: FROM + DAY + 3_600_000_000_000,
                    to_ns: FROM + 3 * DAY,
                    from: t(FROM + DAY + 3_600_000_000_000),
                    to: t(FROM + 3 * DAY),
                },
            ],
            worst_calls: vec![ReportCall {
                call: call.to_owned(),
                agent_id: text.to_owned(),
                start: text.to_owned(),
                end: t(FROM + 60_000_000_000),
                mos: Some(2.1),
                loss_pct: 4.0,
                jitter_ms: Some(25.0),
                streams: 2,
                worst_stream: Some(stream),
            }],
            notices: vec![Notice {
                kind: NoticeKind::CaptureDrops,
                text: text.to_owned(),
                from: Some(text.to_owned()),
                to: None,
            }],
            methods: Methods {
                emodel: text.to_owned(),
                codecs: vec![CodecMethod {
                    codec: text.to_owned(),
                    ie: 0.0,
                    bpl: 25.1,
                    streams: 40,
                }],
                jitter_buffer: text.to_owned(),
                assumed_delay: text.to_owned(),
                percentiles: text.to_owned(),
                pseudonymisation: text.to_owned(),
                time_zone: text.to_owned(),
                uptime: text.to_owned(),
            },
        }
    }

    /// The names of all elements the page opens or closes, and whether anything else follows
    /// a `<` (which would be markup from data).
    fn element_names(html: &str) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        for (i, _) in html.match_indices('<') {
            let rest = &html[i + 1..];
            if rest.starts_with("!DOCTYPE html>") {
                continue;
            }
            let name: String = rest
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if name.is_empty() {
                return Err(format!(
                    "bare < at {i}: {:?}",
                    &html[i..(i + 40).min(html.len())]
                ));
            }
            names.push(name);
        }
        Ok(names)
    }

    /// Every element the renderer writes; anything else came from data.
    const ELEMENTS: &[&str] = &[
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "div",
        "header",
        "h1",
        "h2",
        "h3",
        "p",
        "section",
        "span",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "ul",
        "li",
        "a",
        "bdi",
        "figure",
        "figcaption",
        "dl",
        "dt",
        "dd",
        "br",
        "code",
        "svg",
        "defs",
        "pattern",
        "rect",
        "path",
        "circle",
        "line",
        "polyline",
        "text",
    ];

    #[test]
    fn hostile_names_and_call_ids_render_as_text() {
        let name = "ACME <script>alert(\"pwned\")</script> O'Brien \u{202E}fdp.exe\u{202C}";
        let call = "anon:<img src=x onerror=alert(1)>\u{2066}\"'\u{2069}";
        let html = render(&doc(name, call, "note <b>bold</b> \u{200F}"));
        assert!(!html.contains("<script"), "a script element from data");
        assert!(!html.contains("<img"), "an img element from data");
        assert!(!html.contains("<b>"), "markup from data");
        for c in ['\u{202E}', '\u{202C}', '\u{2066}', '\u{2069}', '\u{200F}'] {
            assert!(!html.contains(c), "raw bidi control {c:?}");
        }
        assert!(html.contains(
            "ACME &lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; O&#39;Brien [U+202E]fdp.exe[U+202C]"
        ));
        assert!(
            html.contains("anon:&lt;img src=x onerror=alert(1)&gt;[U+2066]&quot;&#39;[U+2069]")
        );
        let names = element_names(&html).expect("no bare <");
        assert!(
            names.iter().all(|n| ELEMENTS.contains(&n.as_str())),
            "{names:?}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn text_from_data_never_opens_markup(name in any::<String>(), call in any::<String>(), text in any::<String>()) {
            let html = render(&doc(&name, &call, &text));
            let names = element_names(&html).map_err(TestCaseError::fail)?;
            for n in &names {
                prop_assert!(ELEMENTS.contains(&n.as_str()), "element {:?} from data", n);
            }
            // No script of any kind, and the policy is the first thing after the charset.
            prop_assert!(!names.iter().any(|n| n.eq_ignore_ascii_case("script")));
            prop_assert!(html.starts_with(r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;; img-src data:">"#));
        }
    }

    #[test]
    fn the_same_document_gives_the_same_bytes() {
        let d = doc("ACME", "anon:1", "x");
        let a = render(&d);
        assert_eq!(a, render(&d));
        assert_eq!(a, render(&d.clone()));
        // Print CSS: A4, parts on their own pages, charts never cut.
        assert!(a.contains("@page { size: A4;"));
        assert!(a.contains(".part + .part { break-before: page; }"));
        assert!(a.contains("tr, li, figure, .verdict, dl > div { break-inside: avoid; }"));
    }

    #[test]
    fn the_verdict_comes_first_in_plain_words() {
        let html = render(&doc("ACME", "anon:1", "x"));
        let verdict = html.find(r#"id="verdict""#).expect("verdict");
        assert!(verdict < html.find(r#"id="commitments""#).expect("table"));
        assert!(html.contains(
            r#"<p class="word">Breached</p><p>2 of 4 commitments were not kept: call quality (MOS), packet loss. 20 calls in the period.</p>"#
        ));
        let mut met = doc("ACME", "anon:1", "x");
        met.evaluation.verdict = Verdict::Met;
        met.evaluation.commitments[0] = result("mos", 95.0, None, Verdict::NoData);
        met.evaluation.commitments[1] = result("loss", 1.0, Some(0.5), Verdict::Met);
        let html = render(&met);
        assert!(html.contains(
            "Every commitment that could be measured was kept (3 of 4). Not measured (no data, neither kept nor broken): call quality (MOS)."
        ));
        // The no-data commitment shows its reason and no measured value.
        assert!(html.contains(r#"<tr class="commitment" data-name="mos"><td>Calls with good voice quality (MOS ≥ 4)<div class="detail">no calls in the period</div></td><td>at least 95 % of calls</td><td class="num">—</td><td><span class="badge no-data">No data</span></td>"#));
    }

    #[test]
    fn an_empty_period_is_an_honest_no_data_page() {
        let mut d = doc("ACME", "anon:1", "x");
        d.evaluation.verdict = Verdict::NoData;
        d.evaluation.calls = 0;
        d.evaluation.commitments = ["mos", "loss", "jitter_p95", "uptime"]
            .into_iter()
            .map(|name| result(name, 1.0, None, Verdict::NoData))
            .collect();
        d.days.clear();
        d.mos_histogram.clear();
        d.uptime_timeline.clear();
        d.worst_calls.clear();
        d.notices.clear();
        d.methods.codecs.clear();
        d.loss_pct = Percentiles {
            p50: None,
            p95: None,
            p99: None,
            samples: 0,
        };
        d.jitter_ms = d.loss_pct.clone();
        let html = render(&d);
        assert!(html.contains(r#"<p class="word">No data</p><p>Nothing in this period could be measured, so no commitment is judged kept or broken. 0 calls in the period.</p>"#));
        assert_eq!(
            html.matches(r#"<span class="badge no-data">No data</span>"#)
                .count(),
            4
        );
        assert!(html.contains("<p>No calls with a MOS in the period.</p>"));
        assert!(html.contains("<p>No codec was seen in the period.</p>"));
        // Every chart is still drawn (empty), and nothing non-finite reached the SVG.
        for id in [
            "chart-mos-trend",
            "chart-mos-share",
            "chart-mos-histogram",
            "chart-loss",
            "chart-jitter",
            "chart-uptime",
        ] {
            assert!(html.contains(&format!(r#"id="{id}""#)), "{id}");
        }
        assert!(!html.contains("NaN"), "NaN in the page");
        assert!(
            !html.contains("=\"inf") && !html.contains("=\"-inf"),
            "infinite coordinate"
        );
    }

    #[test]
    fn presentation_helpers() {
        assert_eq!(share_pct(1.0), "100");
        assert_eq!(share_pct(0.99995), "99.9");
        assert_eq!(share_pct(0.5), "50.0");
        assert_eq!(share_pct(0.0), "0.0");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(duration(45 * NS_PER_S), "45 s");
        assert_eq!(duration(12 * NS_PER_MIN), "12 min");
        assert_eq!(duration(90 * NS_PER_S), "1 min 30 s");
        assert_eq!(duration(2 * NS_PER_HOUR + 15 * NS_PER_MIN), "2 h 15 min");
        assert_eq!(duration(3 * NS_PER_DAY + 4 * NS_PER_HOUR), "3 d 4 h");
        let utc = TimeZone::UTC;
        assert_eq!(
            local_time_of("2026-11-12T10:04:31.250000Z", &utc),
            "2026-11-12 10:04:31 UTC"
        );
        assert_eq!(local_time_of("not a time", &utc), "not a time");
        assert_eq!(
            local_minute_of("2026-11-12T10:04:31.250000Z", &utc),
            "2026-11-12 10:04 UTC"
        );
        assert_eq!(
            local_minute_of("not a time at all", &utc),
            "not a time at all"
        );
        // Berlin on 25 October 2026: 00:30 UTC is 02:30 summer time, 01:30 UTC (after the
        // clocks went back at 01:00 UTC) is 02:30 again, winter time; 12 November is winter.
        let berlin = TimeZone::get("Europe/Berlin").expect("bundled zone");
        assert_eq!(
            local_time_of("2026-10-25T00:30:00Z", &berlin),
            "2026-10-25 02:30:00 UTC+02:00"
        );
        assert_eq!(
            local_time_of("2026-10-25T01:30:00Z", &berlin),
            "2026-10-25 02:30:00 UTC+01:00"
        );
        assert_eq!(
            local_minute_of("2026-11-12T10:04:31.250000Z", &berlin),
            "2026-11-12 11:04 UTC+01:00"
        );
        // West of UTC: New York is UTC-05:00 on 12 November, the day before in the evening.
        let new_york = TimeZone::get("America/New_York").expect("bundled zone");
        assert_eq!(
            local_minute_of("2026-11-12T03:04:00Z", &new_york),
            "2026-11-11 22:04 UTC-05:00"
        );
        let local = |date: &str, zone: &str| (date.to_owned(), zone.to_owned());
        assert_eq!(
            local_time("2026-11-01T00:00:00+01:00"),
            local("2026-11-01 00:00", "UTC+01:00")
        );
        assert_eq!(
            local_time("2026-03-29T03:00:00.5-04:00"),
            local("2026-03-29 03:00", "UTC-04:00")
        );
        assert_eq!(
            local_time("2026-11-01T00:00:00Z"),
            local("2026-11-01 00:00", "UTC")
        );
        assert_eq!(local_time("é"), local("é", ""));
        assert_eq!(fmt_target(95.0), "95");
        assert_eq!(fmt_target(99.95), "99.95");
    }
}
