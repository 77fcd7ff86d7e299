//! The customer SLA report as data (`ReportDocument`): the SLA evaluation plus the series
//! behind every chart. It is the JSON form of the report (stable, documented in the OpenAPI
//! document), and the only input of the HTML and CSV renderers, which compute nothing of their
//! own: every figure a reader sees is here first, so the JSON's SHA-256 ties an HTML or PDF
//! to the numbers it shows.
//!
//! Built by `report::build` (store → facts → report); must not read the store or a clock.
//! Fields may be added, never renamed or removed, without bumping `REPORT_VERSION`.

use serde::Serialize;

use crate::sla::Evaluation;

/// Version of the report document's shape.
pub const REPORT_VERSION: u32 = 1;

/// One customer's report for one period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportDocument {
    /// [`REPORT_VERSION`].
    pub report_version: u32,
    pub customer: ReportCustomer,
    pub period: ReportPeriod,
    pub provenance: Provenance,
    /// The SLA answer of the period, exactly as `GET /api/v1/customers/{id}/sla` gives it.
    pub evaluation: Evaluation,
    /// One entry per day of the period in the customer's time zone (a DST day is 23 or 25
    /// hours long), in order.
    pub days: Vec<DaySeries>,
    /// Calls by their MOS (a call's MOS is its worst stream's), fixed bins of 0.1 from 1.0 to
    /// 4.5 (the last bin includes 4.5); calls without a MOS are counted in `calls_without_mos`.
    pub mos_histogram: Vec<HistogramBin>,
    pub calls_without_mos: u64,
    /// Per-call worst effective loss (%), percentiles over the calls of the period.
    pub loss_pct: Percentiles,
    /// Per-packet jitter (ms), percentiles of the period's merged jitter histograms.
    pub jitter_ms: Percentiles,
    /// The period cut into consecutive spans by state, from `period.from` to `period.to`.
    pub uptime_timeline: Vec<TimelineSpan>,
    /// The lowest-MOS calls of the period, worst first (at most [`WORST_CALLS`]).
    pub worst_calls: Vec<ReportCall>,
    /// Where measurement was incomplete; each says what, when, and what it means for the verdicts.
    pub notices: Vec<Notice>,
    pub methods: Methods,
}

/// Most calls listed in `worst_calls`.
pub const WORST_CALLS: usize = 20;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportCustomer {
    pub id: String,
    pub name: String,
    /// IANA time zone of the customer's days (`UTC` unless configured).
    pub time_zone: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportPeriod {
    /// `2026-11` for a calendar month, else `FROM/TO` as given.
    pub label: String,
    /// Start and end (exclusive) as instants, RFC 3339 UTC, and in ns since the epoch.
    pub from: String,
    pub to: String,
    pub from_ns: i64,
    pub to_ns: i64,
    /// The same bounds in the customer's zone, RFC 3339 with the zone's offset.
    pub from_local: String,
    pub to_local: String,
    pub time_zone: String,
    /// `min(to, generation time)`: nothing after it is judged.
    pub evaluated_until: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Provenance {
    pub collector_version: String,
    /// Generation time, RFC 3339 UTC.
    pub generated_at: String,
    /// Lower-case hex SHA-256 of this document's JSON form with this field null (that is,
    /// of `serde_json::to_vec` of the document as built, before the hash is set). Null in the
    /// JSON form itself; the HTML, PDF and CSV forms print it.
    pub json_sha256: Option<String>,
}

/// One day of the customer's zone.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DaySeries {
    /// Local date, `YYYY-MM-DD`.
    pub date: String,
    /// The day's bounds as instants (ns), clipped to the period.
    pub from_ns: i64,
    pub to_ns: i64,
    /// Length in hours (23, 24 or 25 on whole days; less where the period clips the day).
    pub hours: f64,
    /// Calls of the day (by the time the SLA assigns them to a period).
    pub calls: u64,
    pub calls_with_mos: u64,
    /// Median and 5th percentile of the day's call MOS (nearest rank); null without calls with a MOS.
    pub mos_p50: Option<f64>,
    pub mos_p5: Option<f64>,
    /// Percent of the day's calls with a MOS that meet `mos_min`; null without such calls.
    pub meeting_mos_pct: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistogramBin {
    /// `[lo, hi)`; the last bin is closed.
    pub lo: f64,
    pub hi: f64,
    pub calls: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    /// How many values (calls, or jitter samples) the percentiles are over.
    pub samples: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpanState {
    Up,
    Down,
    Maintenance,
    NoData,
    /// After `evaluated_until`: not judged yet.
    Future,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineSpan {
    pub state: SpanState,
    pub from_ns: i64,
    pub to_ns: i64,
    pub from: String,
    pub to: String,
}

/// One call as the report lists it (worst calls, CSV rows).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportCall {
    /// Pseudonymised call id (never the clear SIP Call-ID).
    pub call: String,
    pub agent_id: String,
    pub start: String,
    pub end: String,
    /// The call's MOS: its worst stream's.
    pub mos: Option<f64>,
    pub loss_pct: f64,
    pub jitter_ms: Option<f64>,
    pub streams: u64,
    /// The stream that set the call's MOS (`None` when no stream has one).
    pub worst_stream: Option<ReportStream>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportStream {
    pub stream_id: String,
    pub src: String,
    pub dst: String,
    pub codec: String,
    pub mos: Option<f64>,
    pub loss_pct: f64,
    pub jitter_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    CaptureDrops,
    AgentOutage,
    NoData,
    WithoutHistogram,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Notice {
    pub kind: NoticeKind,
    /// One sentence for the reader.
    pub text: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// How the numbers were made, for the methods section.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Methods {
    /// E-model description (ITU-T G.107) and the default values used.
    pub emodel: String,
    /// Codec impairment values of the codecs seen in the period.
    pub codecs: Vec<CodecMethod>,
    /// Jitter-buffer emulation and its resync rule (metrics-spec §9.2, §9.2a).
    pub jitter_buffer: String,
    /// One-way delay assumed when no RTCP round trip was measured.
    pub assumed_delay: String,
    /// How percentiles are merged across agents, streams and windows.
    pub percentiles: String,
    pub pseudonymisation: String,
    pub time_zone: String,
    /// What counts as up, down, maintenance and no data.
    pub uptime: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CodecMethod {
    pub codec: String,
    /// Equipment impairment factor Ie and packet-loss robustness Bpl (G.113).
    pub ie: f64,
    pub bpl: f64,
    /// Calls of the period whose MOS was set by a stream of this codec (the per-call
    /// aggregates keep each call's worst stream and its codec, not every stream's: counting
    /// every stream would read the per-stream rows, which retention deletes).
    pub streams: u64,
}
