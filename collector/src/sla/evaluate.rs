//! Checks one customer's commitments over a period `[from, to)` and gathers the evidence.
//!
//! Two inputs give the same verdicts: [`PeriodFacts`] built by the caller from the store's
//! per-call and per-hour aggregates (the fast path, a month of a million calls in well under
//! a second), or the period's stream reports, folded by [`super::fold::ReportFold`] (needed
//! when a customer is narrowed to subnets, which the aggregates do not record). Reports are
//! re-filtered there (agent, subnets, `window_start` within the period) so a wider query
//! cannot skew the result. Jitter p95 comes from the merged per-packet HdrHistograms.
//!
//! Verdicts are honest about what was measured: each commitment is `met`, `breached` or
//! `no_data` (nothing to measure: no calls, no jitter samples, no agent that had reported),
//! says which share of the period or calls it rests on (`coverage`), and the period is judged
//! only up to "now" (`evaluated_until`), which the caller passes in. The gaps in the
//! measurement (no-data stretches, outages, capture drops, windows without histograms) are
//! listed beside the verdict.
//! Must not do I/O, read the clock or touch the database: every time is passed in.

use std::collections::BTreeMap;

use serde::Serialize;
use voqa_wire::StreamReport;
use voqa_wire::histogram::{Histogram, new_jitter_histogram, quantile_ms};

use super::commitments::Customer;
use super::fold::facts_from_reports;
use super::kpis::{CallCounts, Kpis};
use super::maintenance::maintenance_spans;
use super::uptime::{
    DownInterval, DropInterval, DropSummary, HeartbeatPoint, NoDataInterval, capture_drops, uptime,
};
use voqa_wire::Timestamp;
use voqa_wire::time::NS_PER_S;

/// Most calls or intervals listed as evidence per commitment; totals are always given.
pub const EVIDENCE_LIMIT: usize = 100;

/// How the jitter percentile is obtained: per-packet jitter histograms merged exactly.
pub const JITTER_METHOD: &str = "per_packet_histograms";

/// A commitment's (or the whole answer's) verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Met,
    Breached,
    /// Nothing could be measured: neither met nor breached (the result says why).
    NoData,
}

impl Verdict {
    /// The pre-verdict `met` field: `None` for no data.
    pub fn met(self) -> Option<bool> {
        match self {
            Verdict::Met => Some(true),
            Verdict::Breached => Some(false),
            Verdict::NoData => None,
        }
    }

    fn of(met: bool) -> Self {
        if met { Verdict::Met } else { Verdict::Breached }
    }
}

/// The verdict for one customer and period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Evaluation {
    pub customer: String,
    pub from_ns: i64,
    pub to_ns: i64,
    pub from: String,
    pub to: String,
    /// `min(to, now)`: the period is judged up to here, never into the future.
    pub evaluated_until_ns: i64,
    pub evaluated_until: String,
    /// `breached` if any commitment is breached; else `met` if any is met (the commitments
    /// without data are listed in `commitments_without_data`); else `no_data`.
    pub verdict: Verdict,
    /// Names of the commitments whose verdict is `no_data`.
    pub commitments_without_data: Vec<&'static str>,
    /// In order: `mos`, `loss`, `jitter_p95`, `uptime`, then those of the optional
    /// call-signalling commitments configured: `asr`, `ner`, `pdd_p95`, `one_way_audio`.
    pub commitments: Vec<CommitmentResult>,
    /// Calls with a final report in the period (a stream without call id is its own call).
    pub calls: u64,
    /// Of those, calls none of whose streams has a MOS (excluded from the MOS commitment).
    pub calls_without_mos: u64,
    /// Stream reports that belonged to the customer and period, of all passed in.
    pub reports_used: u64,
    pub capture_drops: DropSummary,
    /// Where the measurement is incomplete, beside the verdict.
    pub gaps: Gaps,
}

/// One commitment: target, measured value, verdict and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CommitmentResult {
    /// `"mos"`, `"loss"`, `"jitter_p95"`, `"uptime"`, or a call-signalling commitment's
    /// `"asr"`, `"ner"`, `"pdd_p95"`, `"one_way_audio"`.
    pub name: &'static str,
    pub target: f64,
    /// Unit of `target` and `measured`: `"%"` or `"ms"`.
    pub unit: &'static str,
    /// The per-call MOS threshold (`mos` only): a call meets quality at MOS ≥ `mos_min`, and
    /// `target` % of the calls must.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mos_min: Option<f64>,
    pub measured: Option<f64>,
    pub verdict: Verdict,
    /// Why there is no verdict; `None` unless `verdict` is `no_data`.
    pub reason: Option<String>,
    /// `verdict` as it was before verdicts: `true` met, `false` breached, `None` no data.
    pub met: Option<bool>,
    /// Share (0..=1) of what the commitment is about that was measured: for `mos` the calls
    /// with a MOS of all calls, for `loss` the calls with a loss figure, for `jitter_p95` the
    /// report windows whose jitter is in the percentile (all but those with samples and no
    /// histogram), for `uptime` the time outside maintenance, up to `evaluated_until`, in
    /// which an agent had reported. `None` when there is nothing to share out (no calls, no
    /// windows, no time).
    pub coverage: Option<f64>,
    pub detail: String,
    pub evidence: Evidence,
}

/// The measurement's gaps over the evaluated period; each list holds the first
/// [`EVIDENCE_LIMIT`] in time order, its `_total` counts them all.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Gaps {
    /// Stretches in which an agent had not reported yet (no data: neither up nor down).
    pub no_data_total: u64,
    pub no_data: Vec<NoDataInterval>,
    /// Agent outages: the uptime commitment's down intervals.
    pub outages_total: u64,
    pub outages: Vec<DownInterval>,
    /// Stretches between heartbeats in which an agent's capture dropped packets.
    pub capture_drops_total: u64,
    pub capture_drops: Vec<DropInterval>,
    /// Hours of an agent with report windows that had jitter samples but no histogram (left
    /// out of the jitter percentile); consecutive hours are joined.
    pub without_histogram_total: u64,
    pub without_histogram: Vec<HistogramGap>,
}

/// Consecutive hours of one agent with windows that came without a jitter histogram.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HistogramGap {
    pub agent: String,
    pub start_ns: i64,
    pub end_ns: i64,
    pub start: String,
    pub end: String,
    /// Windows without a histogram in the stretch.
    pub windows: u64,
}

/// What a verdict rests on.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    Calls(CallEvidence),
    Jitter(JitterEvidence),
    Downtime(DowntimeEvidence),
    Signalling(SignallingEvidence),
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CallEvidence {
    /// Calls that had the measured value.
    pub considered: u64,
    pub within: u64,
    pub breaching: u64,
    /// The worst breaching calls, worst first, at most [`EVIDENCE_LIMIT`].
    pub calls: Vec<BreachingCall>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BreachingCall {
    /// `None` for a stream without call id, which counts as its own call.
    pub call_id: Option<String>,
    /// The MOS or loss percentage of the call.
    pub value: f64,
    pub agent: String,
    /// The stream that set the call's value (the worse direction) and its addresses; `None`
    /// once the call's stream rows are past retention (the per-call aggregate is kept).
    pub worst_stream: Option<String>,
    pub src: Option<String>,
    pub dst: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JitterEvidence {
    /// [`JITTER_METHOD`]: the agents' per-packet jitter histograms (binned to within 1/16 of
    /// the value, see `voqa_wire::histogram`) merged over the period.
    pub method: &'static str,
    /// Packets in the merged histogram.
    pub samples: u64,
    /// Report windows of the period (from hourly rollups and from single windows).
    pub windows: u64,
    /// Windows with jitter samples but no histogram (agents older than histograms): not in
    /// the percentile.
    pub windows_without_histogram: u64,
    /// Whole hours read from the hourly rollups, and windows read one by one (the parts of
    /// the period that are not whole hours).
    pub hourly_rollups: u64,
    pub single_windows: u64,
    /// p50 and p99 beside the p95 the commitment is on.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Call counts of a period and the worst breaching calls.
#[derive(Debug, Clone, Default)]
pub struct CallFacts {
    pub calls: u64,
    /// Calls with a MOS, and of those the ones at or above `mos_min`.
    pub with_mos: u64,
    pub meeting_mos: u64,
    /// Calls with a loss figure, and of those the ones at or below `loss_max_pct`.
    pub with_loss: u64,
    pub within_loss: u64,
    pub worst_loss: Option<f64>,
    /// Worst first, at most [`EVIDENCE_LIMIT`].
    pub low_mos: Vec<BreachingCall>,
    pub high_loss: Vec<BreachingCall>,
}

/// The period's merged per-packet jitter and where it came from.
#[derive(Debug, Clone)]
pub struct JitterFacts {
    pub histogram: Histogram<u64>,
    pub windows: u64,
    pub windows_without_histogram: u64,
    /// Where those windows were: agent → hour start (ns) → windows; bounded by agents × hours
    /// whatever the number of windows. Fill through [`JitterFacts::add_without_histogram`].
    pub without_histogram_hours: BTreeMap<String, BTreeMap<i64, u64>>,
    pub hourly_rollups: u64,
    pub single_windows: u64,
}

impl Default for JitterFacts {
    fn default() -> Self {
        Self {
            histogram: new_jitter_histogram(),
            windows: 0,
            windows_without_histogram: 0,
            without_histogram_hours: BTreeMap::new(),
            hourly_rollups: 0,
            single_windows: 0,
        }
    }
}

/// One hour in nanoseconds: the granularity at which windows without histograms are placed.
const HOUR_NS: i64 = 3_600 * NS_PER_S;

impl JitterFacts {
    /// Counts `windows` windows of `agent` without a histogram (but with jitter samples), in
    /// the hour holding `window_start_ns`.
    pub fn add_without_histogram(&mut self, agent: &str, window_start_ns: i64, windows: u64) {
        if windows == 0 {
            return;
        }
        self.windows_without_histogram = self.windows_without_histogram.saturating_add(windows);
        let hour = window_start_ns.div_euclid(HOUR_NS).saturating_mul(HOUR_NS);
        let hours = match self.without_histogram_hours.get_mut(agent) {
            Some(hours) => hours,
            None => self
                .without_histogram_hours
                .entry(agent.to_owned())
                .or_default(),
        };
        let count = hours.entry(hour).or_default();
        *count = count.saturating_add(windows);
    }

    /// The hours with windows without histograms as spans within `[from_ns, to_ns)`,
    /// consecutive hours of an agent joined, in time order.
    fn histogram_gaps(&self, from_ns: i64, to_ns: i64) -> Vec<(&str, i64, i64, u64)> {
        let mut spans: Vec<(&str, i64, i64, u64)> = Vec::new();
        for (agent, hours) in &self.without_histogram_hours {
            let mut last: Option<(i64, i64, u64)> = None;
            for (&hour, &windows) in hours {
                let (start, end) = (hour.max(from_ns), hour.saturating_add(HOUR_NS).min(to_ns));
                match last.as_mut() {
                    Some(span) if span.1 >= start => {
                        span.1 = span.1.max(end);
                        span.2 = span.2.saturating_add(windows);
                    }
                    _ => {
                        if let Some((s, e, w)) = last.take() {
                            spans.push((agent, s, e, w));
                        }
                        last = Some((start, end.max(start), windows));
                    }
                }
            }
            if let Some((s, e, w)) = last {
                spans.push((agent, s, e, w));
            }
        }
        spans.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
        spans
    }
}

/// Everything but heartbeats that the verdicts rest on.
#[derive(Debug, Clone, Default)]
pub struct PeriodFacts {
    pub calls: CallFacts,
    pub jitter: JitterFacts,
    /// Report windows of the customer in the period, and those with capture drops.
    pub reports_used: u64,
    pub windows_with_drops: u64,
    /// The period's call-record counts (issue 12), for the call-signalling commitments;
    /// `None` when not loaded (those commitments then have no data).
    pub call_counts: Option<CallCounts>,
}

/// What a call-signalling commitment (`asr`, `ner`, `pdd_p95`, `one_way_audio`) rests on:
/// the period's call records as counted at ingest (see `sla::kpis`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SignallingEvidence {
    /// Call records (INVITE dialogs) in the period, and those answered.
    pub attempts: u64,
    pub answered: u64,
    /// Answered, user busy, ring no answer or terminal reject (the E.425 numerator).
    pub effective: u64,
    /// Calls with a session request delay (the base of `pdd_p95`).
    pub with_srd: u64,
    /// Answered calls with any media problem.
    pub media_problem_calls: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DowntimeEvidence {
    /// The evaluated period (up to `evaluated_until`).
    pub period_s: f64,
    pub maintenance_s: f64,
    /// Time outside maintenance in which at least one agent had reported: the base of the
    /// uptime percentage.
    pub measured_s: f64,
    pub downtime_s: f64,
    /// The maintenance occurrences within the period.
    pub maintenance: Vec<TimeSpan>,
    pub intervals_total: u64,
    /// The first down intervals in time order, at most [`EVIDENCE_LIMIT`].
    pub intervals: Vec<DownInterval>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimeSpan {
    pub start_ns: i64,
    pub end_ns: i64,
    pub start: String,
    pub end: String,
}

fn seconds(ns: i64) -> f64 {
    ns as f64 / NS_PER_S as f64
}

/// Percentage with the multiplication first, so that 950 of 1000 is exactly 95.
fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// Evaluates every commitment of `customer` over `[from_ns, min(to_ns, now_ns))` from stream
/// reports.
///
/// `reports`: the stream reports (interval and final) of the customer's agents for the period;
/// a report counts when its agent serves the customer, its `window_start` lies in the
/// evaluated period and an endpoint is in the customer's subnets. `heartbeats`: the heartbeat
/// points of the customer's agents; one just before `from` and one just after `to` make the
/// period's edges exact (see [`super::uptime`]). `first_heartbeats`: each agent's first
/// heartbeat ever (absent for an agent that never sent one); the time before it is no data.
pub fn evaluate(
    customer: &Customer,
    from_ns: i64,
    to_ns: i64,
    now_ns: i64,
    reports: &[StreamReport],
    heartbeats: &[HeartbeatPoint],
    first_heartbeats: &[(String, i64)],
) -> Evaluation {
    let until = evaluated_until(from_ns, to_ns, now_ns);
    let facts = facts_from_reports(customer, from_ns, until, reports);
    judge(
        customer,
        from_ns,
        to_ns,
        now_ns,
        &facts,
        heartbeats,
        first_heartbeats,
    )
}

/// The end of what can be judged of `[from_ns, to_ns)` at `now_ns`: `min(to, now)`, and not
/// before `from` (a period entirely in the future is judged over nothing).
pub fn evaluated_until(from_ns: i64, to_ns: i64, now_ns: i64) -> i64 {
    to_ns.min(now_ns).max(from_ns.min(to_ns))
}

/// The verdicts for `customer` over `[from_ns, min(to_ns, now_ns))` from the period's facts
/// (gathered over that same span) and the heartbeats of its agents (see [`evaluate`]).
pub fn judge(
    customer: &Customer,
    from_ns: i64,
    to_ns: i64,
    now_ns: i64,
    facts: &PeriodFacts,
    heartbeats: &[HeartbeatPoint],
    first_heartbeats: &[(String, i64)],
) -> Evaluation {
    let until = evaluated_until(from_ns, to_ns, now_ns);
    // Why nothing at all can be measured, whatever the data.
    let no_period = if from_ns >= to_ns {
        Some("empty period")
    } else if until <= from_ns {
        Some("the period lies in the future")
    } else {
        None
    };
    let commitments = &customer.commitments;
    let CallFacts {
        calls: call_count,
        with_mos,
        meeting_mos: meeting,
        with_loss,
        within_loss: within,
        worst_loss,
        ..
    } = facts.calls;
    let calls_without_mos = call_count.saturating_sub(with_mos);
    let no_calls = || no_period.unwrap_or("no calls in the period").to_owned();

    let mos = {
        let breaching = with_mos.saturating_sub(meeting);
        let measured = percent(meeting, with_mos);
        let (verdict, reason, detail) = match measured {
            Some(pct) => (
                Verdict::of(pct >= commitments.calls_meeting_pct),
                None,
                format!(
                    "{meeting} of {with_mos} calls ({pct:.2} %) had MOS ≥ {}; {calls_without_mos} calls without MOS not counted",
                    commitments.mos_min
                ),
            ),
            None => {
                let reason = if call_count > 0 {
                    format!("none of the {call_count} calls in the period has a MOS")
                } else {
                    no_calls()
                };
                (Verdict::NoData, Some(reason.clone()), reason)
            }
        };
        CommitmentResult {
            name: "mos",
            target: commitments.calls_meeting_pct,
            unit: "%",
            mos_min: Some(commitments.mos_min),
            measured,
            verdict,
            reason,
            met: verdict.met(),
            coverage: share(with_mos, call_count),
            detail,
            evidence: Evidence::Calls(CallEvidence {
                considered: with_mos,
                within: meeting,
                breaching,
                calls: facts.calls.low_mos.clone(),
            }),
        }
    };

    let loss = {
        let breaching = with_loss.saturating_sub(within);
        let (verdict, reason, detail) = match (worst_loss, percent(within, with_loss)) {
            (Some(worst_value), Some(pct)) => (
                Verdict::of(breaching == 0),
                None,
                format!(
                    "worst call {worst_value:.2} %; {within} of {with_loss} calls ({pct:.2} %) within {} %",
                    commitments.loss_max_pct
                ),
            ),
            _ => {
                let reason = if call_count > 0 {
                    format!("none of the {call_count} calls in the period has a loss figure")
                } else {
                    no_calls()
                };
                (Verdict::NoData, Some(reason.clone()), reason)
            }
        };
        CommitmentResult {
            name: "loss",
            target: commitments.loss_max_pct,
            unit: "%",
            mos_min: None,
            measured: worst_loss.filter(|_| verdict != Verdict::NoData),
            verdict,
            reason,
            met: verdict.met(),
            coverage: share(with_loss, call_count),
            detail,
            evidence: Evidence::Calls(CallEvidence {
                considered: with_loss,
                within,
                breaching,
                calls: facts.calls.high_loss.clone(),
            }),
        }
    };

    let jitter = {
        let facts = &facts.jitter;
        let samples = facts.histogram.len();
        let p95 = quantile_ms(&facts.histogram, 0.95);
        let (verdict, reason, detail) = match p95 {
            Some(value) => (
                Verdict::of(value <= commitments.jitter_p95_max_ms),
                None,
                format!(
                    "p95 {value:.2} ms over {samples} packets in {} windows (per-packet histograms merged)",
                    facts.windows
                ),
            ),
            None => {
                let reason = match no_period {
                    Some(why) => why.to_owned(),
                    None if facts.windows_without_histogram > 0 => format!(
                        "no jitter histograms in the period: {} of {} windows had jitter samples but no histogram",
                        facts.windows_without_histogram, facts.windows
                    ),
                    None if facts.windows > 0 => format!(
                        "no jitter samples in the {} windows of the period",
                        facts.windows
                    ),
                    None => "no report windows in the period".to_owned(),
                };
                (Verdict::NoData, Some(reason.clone()), reason)
            }
        };
        CommitmentResult {
            name: "jitter_p95",
            target: commitments.jitter_p95_max_ms,
            unit: "ms",
            mos_min: None,
            measured: p95,
            verdict,
            reason,
            met: verdict.met(),
            coverage: share(
                facts
                    .windows
                    .saturating_sub(facts.windows_without_histogram),
                facts.windows,
            ),
            detail,
            evidence: Evidence::Jitter(JitterEvidence {
                method: JITTER_METHOD,
                samples,
                windows: facts.windows,
                windows_without_histogram: facts.windows_without_histogram,
                hourly_rollups: facts.hourly_rollups,
                single_windows: facts.single_windows,
                p50_ms: quantile_ms(&facts.histogram, 0.50),
                p99_ms: quantile_ms(&facts.histogram, 0.99),
            }),
        }
    };

    let maintenance = maintenance_spans(&commitments.maintenance_windows(), from_ns, until);
    let outcome = uptime(
        &customer.agents,
        heartbeats,
        first_heartbeats,
        from_ns,
        until,
        commitments.heartbeat_interval_s,
        &maintenance,
    );
    let observed_ns = outcome.period_ns.saturating_sub(outcome.maintenance_ns);
    let uptime_result = {
        let measured = if customer.agents.is_empty() {
            None
        } else {
            outcome.uptime_pct
        };
        let (verdict, reason, detail) = match measured {
            Some(pct) => {
                let without_data = observed_ns.saturating_sub(outcome.measured_ns);
                let without_data = if without_data > 0 {
                    format!(", {:.0} s without data", seconds(without_data))
                } else {
                    String::new()
                };
                (
                    Verdict::of(pct >= commitments.uptime_min_pct),
                    None,
                    format!(
                        "{pct:.4} % up: {:.0} s down of {:.0} s observed ({:.0} s maintenance excluded{without_data})",
                        seconds(outcome.downtime_ns),
                        seconds(outcome.measured_ns),
                        seconds(outcome.maintenance_ns)
                    ),
                )
            }
            None => {
                let reason = match no_period {
                    _ if customer.agents.is_empty() => {
                        "no agents configured for the customer".to_owned()
                    }
                    Some(why) => why.to_owned(),
                    None if observed_ns == 0 => {
                        "the period lies entirely within maintenance".to_owned()
                    }
                    None => {
                        "no heartbeat from the customer's agents before or in the period".to_owned()
                    }
                };
                (Verdict::NoData, Some(reason.clone()), reason)
            }
        };
        CommitmentResult {
            name: "uptime",
            target: commitments.uptime_min_pct,
            unit: "%",
            mos_min: None,
            measured,
            verdict,
            reason,
            met: verdict.met(),
            coverage: share_ns(outcome.measured_ns, observed_ns),
            detail,
            evidence: Evidence::Downtime(DowntimeEvidence {
                period_s: seconds(outcome.period_ns),
                maintenance_s: seconds(outcome.maintenance_ns),
                measured_s: seconds(outcome.measured_ns),
                downtime_s: seconds(outcome.downtime_ns),
                maintenance: maintenance
                    .iter()
                    .map(|&(start, end)| TimeSpan {
                        start_ns: start,
                        end_ns: end,
                        start: Timestamp::from_ns(start).to_string(),
                        end: Timestamp::from_ns(end).to_string(),
                    })
                    .collect(),
                intervals_total: outcome.intervals.len() as u64,
                intervals: capped(&outcome.intervals),
            }),
        }
    };

    let mut drops = capture_drops(&customer.agents, heartbeats, from_ns, until, EVIDENCE_LIMIT);
    drops.windows_with_drops = facts.windows_with_drops;

    let histogram_gaps = facts.jitter.histogram_gaps(from_ns, until);
    let gaps = Gaps {
        no_data_total: outcome.no_data.len() as u64,
        no_data: capped(&outcome.no_data),
        outages_total: outcome.intervals.len() as u64,
        outages: capped(&outcome.intervals),
        capture_drops_total: drops.intervals_total,
        capture_drops: drops.intervals.clone(),
        without_histogram_total: histogram_gaps.len() as u64,
        without_histogram: histogram_gaps
            .iter()
            .take(EVIDENCE_LIMIT)
            .map(|&(agent, start, end, windows)| HistogramGap {
                agent: agent.to_owned(),
                start_ns: start,
                end_ns: end,
                start: Timestamp::from_ns(start).to_string(),
                end: Timestamp::from_ns(end).to_string(),
                windows,
            })
            .collect(),
    };

    let mut results = vec![mos, loss, jitter, uptime_result];
    results.extend(signalling(
        commitments,
        facts.call_counts.as_ref(),
        no_period,
    ));
    let verdict = if results.iter().any(|r| r.verdict == Verdict::Breached) {
        Verdict::Breached
    } else if results.iter().any(|r| r.verdict == Verdict::Met) {
        Verdict::Met
    } else {
        Verdict::NoData
    };
    let commitments_without_data = results
        .iter()
        .filter(|r| r.verdict == Verdict::NoData)
        .map(|r| r.name)
        .collect();

    Evaluation {
        customer: customer.id.clone(),
        from_ns,
        to_ns,
        from: Timestamp::from_ns(from_ns).to_string(),
        to: Timestamp::from_ns(to_ns).to_string(),
        evaluated_until_ns: until,
        evaluated_until: Timestamp::from_ns(until).to_string(),
        verdict,
        commitments_without_data,
        commitments: results,
        calls: call_count,
        calls_without_mos,
        reports_used: facts.reports_used,
        capture_drops: drops,
        gaps,
    }
}

/// The results of the call-signalling commitments configured (none when none is), judged on
/// the period's call counts: ASR and NER at least their target, the PDD p95 and the share of
/// answered calls with a media problem at most theirs.
fn signalling(
    commitments: &super::commitments::Commitments,
    counts: Option<&CallCounts>,
    no_period: Option<&str>,
) -> Vec<CommitmentResult> {
    let kpis = counts.map(Kpis::from_counts);
    let evidence = counts.map_or(
        SignallingEvidence {
            attempts: 0,
            answered: 0,
            effective: 0,
            with_srd: 0,
            media_problem_calls: 0,
        },
        |c| SignallingEvidence {
            attempts: c.attempts,
            answered: c.answered,
            effective: c.answered + c.user_busy + c.no_answer + c.terminal_reject,
            with_srd: c.srd_count,
            media_problem_calls: c.problem_calls,
        },
    );
    let attempts = evidence.attempts;
    let answered = evidence.answered;
    // (name, target, unit, at least?, measured, what the measurement needs, detail)
    type Spec<'a> = (
        &'static str,
        Option<f64>,
        &'static str,
        bool,
        Option<f64>,
        &'a str,
        String,
    );
    let specs: [Spec<'_>; 4] = [
        (
            "asr",
            commitments.asr_min_pct,
            "%",
            true,
            kpis.as_ref().and_then(|k| k.asr_pct),
            "no call records in the period",
            format!("{answered} of {attempts} call attempts answered (ITU-T E.411 ASR)"),
        ),
        (
            "ner",
            commitments.ner_min_pct,
            "%",
            true,
            kpis.as_ref().and_then(|k| k.ner_pct),
            "no call records in the period",
            format!(
                "{} of {attempts} call attempts answered, busy, not answered after ringing or \
                 rejected by the called terminal (ITU-T E.425 NER)",
                evidence.effective
            ),
        ),
        (
            "pdd_p95",
            commitments.pdd_p95_max_ms,
            "ms",
            false,
            kpis.as_ref().and_then(|k| k.pdd_p95_ms).map(|ms| ms as f64),
            "no call in the period had a response to its INVITE",
            format!(
                "95th percentile of the session request delay (RFC 6076 §4.1) over {} calls, \
                 an upper bound from fixed histogram buckets",
                evidence.with_srd
            ),
        ),
        (
            "one_way_audio",
            commitments.one_way_audio_max_pct,
            "%",
            false,
            kpis.as_ref().and_then(|k| k.media_problem_pct),
            "no answered call in the period",
            format!(
                "{} of {answered} answered calls had a media problem (one-way audio, no RTP, \
                 RTP stopped or media address mismatch)",
                evidence.media_problem_calls
            ),
        ),
    ];
    specs
        .into_iter()
        .filter_map(
            |(name, target, unit, at_least, measured, missing, detail)| {
                let target = target?;
                let (verdict, reason, detail) = match measured {
                    Some(m) => (
                        Verdict::of(if at_least { m >= target } else { m <= target }),
                        None,
                        detail,
                    ),
                    None => {
                        let why = match (no_period, counts) {
                            (Some(why), _) => why.to_owned(),
                            (None, None) => "call records were not read".to_owned(),
                            (None, Some(_)) => missing.to_owned(),
                        };
                        (Verdict::NoData, Some(why.clone()), why)
                    }
                };
                let coverage = match name {
                    "pdd_p95" => share(evidence.with_srd, attempts),
                    _ => None,
                };
                Some(CommitmentResult {
                    name,
                    target,
                    unit,
                    mos_min: None,
                    measured,
                    verdict,
                    reason,
                    met: verdict.met(),
                    coverage,
                    detail,
                    evidence: Evidence::Signalling(evidence.clone()),
                })
            },
        )
        .collect()
}

/// The first [`EVIDENCE_LIMIT`] entries.
fn capped<T: Clone>(entries: &[T]) -> Vec<T> {
    entries.iter().take(EVIDENCE_LIMIT).cloned().collect()
}

/// `part / whole` as a share in 0..=1, `None` for an empty whole.
fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part.min(whole) as f64 / whole as f64)
}

fn share_ns(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part.clamp(0, whole) as f64 / whole as f64)
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::commitments::{Commitments, parse_customers};
    use super::*;
    use voqa_wire::time::NS_PER_MIN;
    use voqa_wire::{StreamSummary, Transitions};

    const S: i64 = NS_PER_S;

    fn at(text: &str) -> i64 {
        Timestamp::parse(text).map_or(i64::MIN, Timestamp::as_ns)
    }

    fn acme() -> Customer {
        Customer {
            id: "acme".into(),
            name: "ACME Contact Centre".into(),
            agents: vec!["fra-media-1".into(), "fra-media-2".into()],
            subnets: vec!["203.0.113.0/24".into()],
            time_zone: "UTC".into(),
            report_recipients: Vec::new(),
            report_webhook: None,
            commitments: Commitments {
                mos_min: 4.0,
                calls_meeting_pct: 95.0,
                loss_max_pct: 1.0,
                jitter_p95_max_ms: 30.0,
                uptime_min_pct: 99.95,
                maintenance: vec!["Sun 02:00-04:00 UTC".into()],
                heartbeat_interval_s: 15,
                asr_min_pct: None,
                ner_min_pct: None,
                pdd_p95_max_ms: None,
                one_way_audio_max_pct: None,
            },
        }
    }

    /// A final report's totals with these figures (shared with `fold`'s tests).
    pub(in crate::sla) fn totals(mos: Option<f64>, loss: f64) -> StreamSummary {
        StreamSummary {
            src: String::new(),
            dst: String::new(),
            ssrc: "0x00000001".into(),
            payload_type: 0,
            codec: "PCMU".into(),
            clock_rate: Some(8000),
            call_id: None,
            first_seen: Timestamp::EPOCH,
            last_seen: Timestamp::EPOCH,
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
            mos,
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
        }
    }

    /// A window's per-packet histogram: `samples` packets all at `mean_ms`.
    fn window_histogram(mean_ms: f64, samples: u64) -> String {
        let mut h = new_jitter_histogram();
        h.record_n((mean_ms * 1000.0) as u64, samples)
            .expect("in range");
        voqa_wire::histogram::HistogramEncoder::new()
            .encode(&h)
            .expect("encodes")
    }

    /// An interval report; `final_figures` turns it into a final one with totals.
    pub(in crate::sla) fn report(
        agent: &str,
        stream_id: &str,
        call_id: Option<&str>,
        start_ns: i64,
        src: &str,
        jitter: Option<(f64, u64)>,
        final_figures: Option<(Option<f64>, f64)>,
    ) -> StreamReport {
        let (mean, samples) = jitter.map_or((None, 0), |(m, n)| (Some(m), n));
        StreamReport {
            agent_id: agent.into(),
            stream_id: stream_id.into(),
            src: src.into(),
            dst: "198.51.100.20:50000".into(),
            ssrc: "0x00000001".into(),
            payload_type: 0,
            codec: "PCMU".into(),
            clock_rate: Some(8000),
            call_id: call_id.map(str::to_owned),
            window_start: Timestamp::from_ns(start_ns),
            window_end: Timestamp::from_ns(start_ns + 10 * S),
            is_final: final_figures.is_some(),
            end_reason: final_figures.map(|_| "bye".to_owned()),
            packets: samples,
            expected: samples,
            lost: 0,
            duplicates: 0,
            reordered: 0,
            jitter_ms: mean,
            max_jitter_ms: mean,
            mean_jitter_ms: mean,
            jitter_sum_ms: mean.unwrap_or(0.0) * samples as f64,
            jitter_samples: samples,
            jitter_histogram: mean.map(|m| window_histogram(m, samples)),
            max_delta_ms: 20.0,
            transitions: Transitions::default(),
            burst_ratio: 1.0,
            jb_discarded: 0,
            effective_loss_pct: 0.0,
            rtt_ms: None,
            delay_ms: None,
            r_factor: None,
            mos: None,
            capture_drops: 0,
            totals: final_figures.map(|(mos, loss)| totals(mos, loss)),
        }
    }

    fn beat(agent: &str, time_ns: i64, down: &[&str], drops: u64) -> HeartbeatPoint {
        HeartbeatPoint {
            agent_id: agent.into(),
            time_ns,
            processes_down: down.iter().map(|s| s.to_string()).collect(),
            kernel_drops_total: drops,
        }
    }

    fn result<'e>(evaluation: &'e Evaluation, name: &str) -> &'e CommitmentResult {
        let found = evaluation.commitments.iter().find(|c| c.name == name);
        found.unwrap_or_else(|| panic!("no {name} result"))
    }

    fn call_evidence(result: &CommitmentResult) -> &CallEvidence {
        match &result.evidence {
            Evidence::Calls(calls) => calls,
            other => panic!("expected call evidence, got {other:?}"),
        }
    }

    fn downtime_evidence(result: &CommitmentResult) -> &DowntimeEvidence {
        match &result.evidence {
            Evidence::Downtime(downtime) => downtime,
            other => panic!("expected downtime evidence, got {other:?}"),
        }
    }

    /// November 2026 for ACME; every figure below is worked out by hand in the comments.
    fn november_reports(from: i64) -> Vec<StreamReport> {
        let mut reports = Vec::new();
        let media = "203.0.113.10:40000";
        for i in 0..1000i64 {
            let call = format!("call-{i:04}");
            let start = from + i * 2000 * S;
            // 50 calls (i % 20 == 0) have one direction at MOS 3.5: 950 of 1000 meet 4.0.
            let (mos_a, mos_b) = if i % 20 == 0 { (4.4, 3.5) } else { (4.3, 4.4) };
            // Call 7's second direction lost 1.2 %: the only loss breach.
            let loss_b = if i == 7 { 1.2 } else { 0.2 };
            // Jitter windows: 40 at 40 ms, 40 at 12.5 ms, 920 at 2 ms, 100 packets each.
            let jitter = match i % 25 {
                0 => 40.0,
                1 => 12.5,
                _ => 2.0,
            };
            let a = format!("{i:016x}");
            let b = format!("{:016x}", i + 1_000_000);
            if i == 1 {
                // A stream without call id is a call of its own.
                reports.push(report(
                    "fra-media-2",
                    &a,
                    None,
                    start,
                    media,
                    Some((jitter, 100)),
                    None,
                ));
                reports.push(report(
                    "fra-media-2",
                    &a,
                    None,
                    start + 10 * S,
                    media,
                    None,
                    Some((Some(4.3), 0.2)),
                ));
                continue;
            }
            reports.push(report(
                "fra-media-1",
                &a,
                Some(&call),
                start,
                media,
                Some((jitter, 100)),
                None,
            ));
            reports.push(report(
                "fra-media-1",
                &a,
                Some(&call),
                start + 10 * S,
                media,
                None,
                Some((Some(mos_a), 0.2)),
            ));
            reports.push(report(
                "fra-media-1",
                &b,
                Some(&call),
                start + 10 * S,
                media,
                None,
                Some((Some(mos_b), loss_b)),
            ));
        }
        // Three calls without a MOS (no clock rate), loss 0.
        for i in 0..3i64 {
            let call = format!("nomos-{i}");
            for direction in 0..2i64 {
                let id = format!("{:016x}", 2_000_000 + 2 * i + direction);
                reports.push(report(
                    "fra-media-1",
                    &id,
                    Some(&call),
                    from + i * S,
                    media,
                    None,
                    Some((None, 0.0)),
                ));
            }
        }
        // Reports that must not count: another agent, before the period, outside the subnets.
        let bad = Some((Some(1.0), 50.0));
        reports.push(report(
            "lon-media-1",
            "00000000000000aa",
            Some("x-other"),
            from,
            media,
            Some((500.0, 100_000)),
            bad,
        ));
        reports.push(report(
            "fra-media-1",
            "00000000000000bb",
            Some("x-early"),
            from - S,
            media,
            Some((500.0, 100_000)),
            bad,
        ));
        reports.push(report(
            "fra-media-1",
            "00000000000000cc",
            Some("x-outside"),
            from,
            "192.0.2.1:4000",
            Some((500.0, 100_000)),
            bad,
        ));
        reports
    }

    fn november_heartbeats(from: i64, to: i64) -> Vec<HeartbeatPoint> {
        let mut beats = Vec::new();
        // fra-media-1: every 15 s from 00:00:00, silent between Sun 8 Nov 03:55 and 04:05
        // (10 minutes, the first 5 inside the Sunday 02:00-04:00 maintenance), asterisk down in
        // the 12 heartbeats 10:00:00 .. 10:02:45 of Tue 17 Nov (down until 10:03:00).
        let silent = (at("2026-11-08T03:55:00Z"), at("2026-11-08T04:05:00Z"));
        let asterisk = (at("2026-11-17T10:00:00Z"), at("2026-11-17T10:03:00Z"));
        // Kernel drops: +40 and +60 at 20 Nov 12:00:15 and 12:00:30 (cumulative 40, 100); the
        // agent restarts at 25 Nov 00:00:00 and reports 5 drops since the restart.
        let drops_1 = at("2026-11-20T12:00:15Z");
        let drops_2 = at("2026-11-20T12:00:30Z");
        let restart = at("2026-11-25T00:00:00Z");
        for t in (from..to).step_by(15 * S as usize) {
            if t > silent.0 && t < silent.1 {
                continue;
            }
            let down: &[&str] = if (asterisk.0..asterisk.1).contains(&t) {
                &["asterisk"]
            } else {
                &[]
            };
            let drops = if t >= restart {
                5
            } else if t >= drops_2 {
                100
            } else if t >= drops_1 {
                40
            } else {
                0
            };
            beats.push(beat("fra-media-1", t, down, drops));
        }
        // fra-media-2: every 15 s from 00:00:07, silent between 17 Nov 10:02:07 and 10:05:07.
        let silent = (at("2026-11-17T10:02:07Z"), at("2026-11-17T10:05:07Z"));
        for t in (from + 7 * S..to).step_by(15 * S as usize) {
            if t > silent.0 && t < silent.1 {
                continue;
            }
            beats.push(beat("fra-media-2", t, &[], 0));
        }
        // An agent not serving ACME, silent all month: ignored.
        beats.push(beat("lon-media-1", from, &["asterisk"], 0));
        beats
    }

    /// The optional call-signalling commitments, judged on hand-made counts: 10 attempts,
    /// 6 answered, 1 busy, 1 no answer; SRDs 9 × ≤200 ms and one of 450 ms; 1 answered call
    /// with one-way audio.
    #[test]
    fn signalling_commitments_are_judged_only_when_configured() {
        let mut counts = CallCounts {
            attempts: 10,
            answered: 6,
            user_busy: 1,
            no_answer: 1,
            srd_count: 10,
            srd_max_ms: 450,
            problem_calls: 1,
            ..CallCounts::default()
        };
        counts.srd_buckets[1] = 9;
        counts.srd_buckets[3] = 1;
        let facts = PeriodFacts {
            call_counts: Some(counts),
            ..PeriodFacts::default()
        };
        let (from, to) = (at("2026-11-01T00:00:00Z"), at("2026-11-02T00:00:00Z"));
        // Without the optional commitments: the four classic ones only.
        let plain = judge(&acme(), from, to, to, &facts, &[], &[]);
        assert_eq!(plain.commitments.len(), 4);
        let mut customer = acme();
        customer.commitments.asr_min_pct = Some(50.0);
        customer.commitments.ner_min_pct = Some(80.0);
        customer.commitments.pdd_p95_max_ms = Some(300.0);
        customer.commitments.one_way_audio_max_pct = Some(10.0);
        let e = judge(&customer, from, to, to, &facts, &[], &[]);
        let got: Vec<(&str, Option<f64>, Verdict)> = e.commitments[4..]
            .iter()
            .map(|c| (c.name, c.measured, c.verdict))
            .collect();
        // ASR 6/10 = 60 ≥ 50 met; NER (6+1+1)/10 = 80 ≥ 80 met; PDD p95: rank ceil(9.5) = 10,
        // the 450 ms call's bucket (≤500), capped by the maximum 450 > 300 breached; media
        // problems 1/6 = 16.7 % > 10 breached.
        assert_eq!(
            got[..3],
            [
                ("asr", Some(60.0), Verdict::Met),
                ("ner", Some(80.0), Verdict::Met),
                ("pdd_p95", Some(450.0), Verdict::Breached),
            ]
        );
        assert_eq!(got[3].0, "one_way_audio");
        assert!((got[3].1.unwrap_or(0.0) - 100.0 / 6.0).abs() < 1e-9);
        assert_eq!(got[3].2, Verdict::Breached);
        assert_eq!(e.verdict, Verdict::Breached);
        // Without call counts: configured but no data, with the reason.
        let none = judge(&customer, from, to, to, &PeriodFacts::default(), &[], &[]);
        assert!(
            none.commitments[4..]
                .iter()
                .all(|c| c.verdict == Verdict::NoData)
        );
        assert_eq!(
            none.commitments[4].reason.as_deref(),
            Some("call records were not read")
        );
    }

    #[test]
    fn november_2026_by_hand() {
        let from = at("2026-11-01T00:00:00Z");
        let to = at("2026-12-01T00:00:00Z");
        let reports = november_reports(from);
        let beats = november_heartbeats(from, to);
        // Both agents have reported since October; judged on 6 December.
        let first = vec![
            ("fra-media-1".to_string(), at("2026-10-01T00:00:00Z")),
            ("fra-media-2".to_string(), at("2026-10-01T00:00:07Z")),
        ];
        let now = at("2026-12-06T20:00:00Z");
        let e = evaluate(&acme(), from, to, now, &reports, &beats, &first);
        assert_eq!(
            (e.from.as_str(), e.to.as_str()),
            ("2026-11-01T00:00:00.000000Z", "2026-12-01T00:00:00.000000Z")
        );
        assert_eq!(
            (e.evaluated_until_ns, e.evaluated_until.as_str()),
            (to, "2026-12-01T00:00:00.000000Z")
        );
        // Loss breached, the rest met: breached overall, every commitment measured.
        assert_eq!(e.verdict, Verdict::Breached);
        assert!(e.commitments_without_data.is_empty());
        let verdicts: Vec<(&str, Verdict)> =
            e.commitments.iter().map(|c| (c.name, c.verdict)).collect();
        assert_eq!(
            verdicts,
            vec![
                ("mos", Verdict::Met),
                ("loss", Verdict::Breached),
                ("jitter_p95", Verdict::Met),
                ("uptime", Verdict::Met)
            ]
        );
        assert!(e.commitments.iter().all(|c| c.reason.is_none()));
        // Coverage: 1000 of 1003 calls had a MOS, all had a loss figure, every window had a
        // histogram, and both agents reported all month.
        let coverage: Vec<Option<f64>> = e.commitments.iter().map(|c| c.coverage).collect();
        assert_eq!(
            coverage,
            vec![Some(1000.0 / 1003.0), Some(1.0), Some(1.0), Some(1.0)]
        );
        // The MOS threshold is data, on the mos commitment only.
        let thresholds: Vec<Option<f64>> = e.commitments.iter().map(|c| c.mos_min).collect();
        assert_eq!(thresholds, vec![Some(4.0), None, None, None]);
        // Gaps: no stretch without data, the three outages and the two drop intervals below.
        assert_eq!((e.gaps.no_data_total, e.gaps.outages_total), (0, 3));
        assert_eq!(e.gaps.capture_drops_total, 2);
        assert_eq!(e.gaps.capture_drops, e.capture_drops.intervals);
        assert_eq!(e.gaps.without_histogram_total, 0);

        // Calls: 999 with call ids + 1 stream without + 3 without MOS = 1003.
        assert_eq!(e.calls, 1003);
        assert_eq!(e.calls_without_mos, 3);
        // Reports: 999 × 3 + 2 + 3 × 2 = 3005; the three bad ones are filtered out.
        assert_eq!(e.reports_used, 3005);

        // MOS: 950 of 1000 calls ≥ 4.0 = 95.0 % ≥ 95 → met; the 50 breaches are at 3.5.
        let mos = result(&e, "mos");
        assert_eq!(
            (mos.measured, mos.met, mos.target),
            (Some(95.0), Some(true), 95.0)
        );
        let evidence = call_evidence(mos);
        assert_eq!(
            (evidence.considered, evidence.within, evidence.breaching),
            (1000, 950, 50)
        );
        assert_eq!(evidence.calls.len(), 50);
        assert_eq!(evidence.calls[0].call_id.as_deref(), Some("call-0000"));
        assert_eq!(evidence.calls[0].value, 3.5);
        assert_eq!(
            evidence.calls[0].worst_stream,
            Some(format!("{:016x}", 1_000_000))
        );
        assert_eq!(evidence.calls[49].call_id.as_deref(), Some("call-0980"));
        assert!(
            mos.detail
                .starts_with("950 of 1000 calls (95.00 %) had MOS ≥ 4"),
            "{}",
            mos.detail
        );

        // Loss: call 7 at 1.2 % > 1.0 → breached; 1002 of 1003 calls within.
        let loss = result(&e, "loss");
        assert_eq!((loss.measured, loss.met), (Some(1.2), Some(false)));
        let evidence = call_evidence(loss);
        assert_eq!(
            (evidence.considered, evidence.within, evidence.breaching),
            (1003, 1002, 1)
        );
        assert_eq!(evidence.calls[0].call_id.as_deref(), Some("call-0007"));
        assert_eq!(
            evidence.calls[0].worst_stream,
            Some(format!("{:016x}", 1_000_007))
        );
        assert_eq!(evidence.calls[0].src.as_deref(), Some("203.0.113.10:40000"));

        // Jitter: 1000 windows × 100 packets = 100,000 packets in the merged histograms;
        // rank ceil(0.95 × 100,000) = 95,000. Cumulative 92,000 at 2 ms, 96,000 at 12.5 ms →
        // p95 is the 12,500 µs bucket. At 2 significant digits that bucket is 64 µs wide,
        // 12,480..12,543 µs, reported at its middle: 12.512 ms ≤ 30 → met. p50 is the 2,000 µs
        // bucket (8 µs wide, 2,000..2,007 → 2.004 ms); p99 (rank 99,000) the 40,000 µs one
        // (256 wide, 39,936..40,191 → 40.064 ms).
        let jitter = result(&e, "jitter_p95");
        assert_eq!((jitter.measured, jitter.met), (Some(12.512), Some(true)));
        match &jitter.evidence {
            Evidence::Jitter(j) => {
                assert_eq!(j.method, "per_packet_histograms");
                assert_eq!(
                    (j.samples, j.windows, j.windows_without_histogram),
                    (100_000, 3005, 0)
                );
                assert_eq!((j.hourly_rollups, j.single_windows), (0, 3005));
                assert_eq!((j.p50_ms, j.p99_ms), (Some(2.004), Some(40.064)));
            }
            other => panic!("expected jitter evidence, got {other:?}"),
        }

        // Uptime. Period 30 d = 2,592,000 s; maintenance Sundays 1, 8, 15, 22, 29 × 2 h =
        // 36,000 s; observed 2,556,000 s. Downtime:
        //   fra-media-1 silent 03:55-04:05 on 8 Nov = 600 s, of which 300 s in maintenance → 300 s;
        //   17 Nov: fra-media-1 asterisk down 10:00:00-10:03:00 ∪ fra-media-2 silent
        //   10:02:07-10:05:07 = 10:00:00-10:05:07 = 307 s.
        //   Total 607 s → (2,556,000 − 607) / 2,556,000 × 100 = 99.976251956… % ≥ 99.95 → met.
        let uptime = result(&e, "uptime");
        assert_eq!(
            uptime.detail,
            "99.9763 % up: 607 s down of 2556000 s observed (36000 s maintenance excluded)"
        );
        let expected = (2_556_000.0 - 607.0) / 2_556_000.0 * 100.0;
        assert_eq!(uptime.measured, Some(expected));
        assert!((expected - 99.976_251_956).abs() < 1e-8);
        assert_eq!(uptime.met, Some(true));
        let downtime = downtime_evidence(uptime);
        assert_eq!(
            (
                downtime.period_s,
                downtime.maintenance_s,
                downtime.measured_s,
                downtime.downtime_s
            ),
            (2_592_000.0, 36_000.0, 2_556_000.0, 607.0)
        );
        assert_eq!(e.gaps.outages, downtime.intervals);
        assert_eq!(downtime.maintenance.len(), 5);
        assert_eq!(downtime.maintenance[1].start, "2026-11-08T02:00:00.000000Z");
        let intervals: Vec<(&str, &str, &str, &str)> = downtime
            .intervals
            .iter()
            .map(|i| {
                (
                    i.agent.as_str(),
                    i.start.as_str(),
                    i.end.as_str(),
                    i.reason.as_str(),
                )
            })
            .collect();
        assert_eq!(
            intervals,
            vec![
                (
                    "fra-media-1",
                    "2026-11-08T04:00:00.000000Z",
                    "2026-11-08T04:05:00.000000Z",
                    "no heartbeat"
                ),
                (
                    "fra-media-1",
                    "2026-11-17T10:00:00.000000Z",
                    "2026-11-17T10:03:00.000000Z",
                    "process asterisk down"
                ),
                (
                    "fra-media-2",
                    "2026-11-17T10:02:07.000000Z",
                    "2026-11-17T10:05:07.000000Z",
                    "no heartbeat"
                ),
            ]
        );

        // Capture drops: 40 + 60 + 5 (after the restart) = 105.
        let drops = &e.capture_drops;
        assert_eq!(
            (drops.total, drops.restarts, drops.intervals_total),
            (105, 1, 2)
        );
        assert_eq!(
            (
                drops.intervals[0].start.as_str(),
                drops.intervals[0].end.as_str(),
                drops.intervals[0].drops
            ),
            (
                "2026-11-20T12:00:00.000000Z",
                "2026-11-20T12:00:30.000000Z",
                100
            )
        );
        assert_eq!(
            (
                drops.intervals[1].start.as_str(),
                drops.intervals[1].end.as_str(),
                drops.intervals[1].drops
            ),
            (
                "2026-11-24T23:59:45.000000Z",
                "2026-11-25T00:00:00.000000Z",
                5
            )
        );
    }

    #[test]
    fn serialises_for_the_api() {
        let from = at("2026-11-01T00:00:00Z");
        let to = at("2026-11-02T00:00:00Z");
        let reports = vec![report(
            "fra-media-1",
            "01",
            Some("c"),
            from,
            "203.0.113.1:1",
            Some((3.0, 10)),
            Some((Some(3.9), 2.0)),
        )];
        let e = evaluate(&acme(), from, to, to, &reports, &[], &[]);
        let json = serde_json::to_value(&e).unwrap_or_default();
        assert_eq!(json["customer"], "acme");
        assert_eq!(json["from"], "2026-11-01T00:00:00.000000Z");
        assert_eq!(json["evaluated_until"], "2026-11-02T00:00:00.000000Z");
        assert_eq!(json["evaluated_until_ns"], to);
        assert_eq!(json["verdict"], "breached");
        assert_eq!(
            json["commitments_without_data"],
            serde_json::json!(["uptime"])
        );
        assert_eq!(json["commitments"][0]["name"], "mos");
        assert_eq!(json["commitments"][0]["measured"], 0.0);
        assert_eq!(json["commitments"][0]["verdict"], "breached");
        assert_eq!(json["commitments"][0]["reason"], serde_json::Value::Null);
        assert_eq!(json["commitments"][0]["met"], false);
        assert_eq!(json["commitments"][0]["mos_min"], 4.0);
        assert_eq!(json["commitments"][0]["coverage"], 1.0);
        // Only the mos commitment has a MOS threshold.
        assert!(json["commitments"][1].get("mos_min").is_none());
        assert_eq!(json["commitments"][0]["evidence"]["kind"], "calls");
        assert_eq!(
            json["commitments"][0]["evidence"]["calls"][0]["call_id"],
            "c"
        );
        assert_eq!(
            json["commitments"][2]["evidence"]["method"],
            "per_packet_histograms"
        );
        assert_eq!(json["commitments"][2]["measured"], 3.0);
        assert_eq!(json["commitments"][3]["evidence"]["kind"], "downtime");
        // No heartbeat ever: no data, with the reason, and no downtime.
        assert_eq!(json["commitments"][3]["verdict"], "no_data");
        assert_eq!(json["commitments"][3]["met"], serde_json::Value::Null);
        assert_eq!(json["commitments"][3]["measured"], serde_json::Value::Null);
        assert_eq!(
            json["commitments"][3]["reason"],
            "no heartbeat from the customer's agents before or in the period"
        );
        assert_eq!(json["commitments"][3]["coverage"], 0.0);
        assert_eq!(json["commitments"][3]["evidence"]["downtime_s"], 0.0);
        assert_eq!(json["capture_drops"]["total"], 0);
        // 1 Nov is a Sunday: each agent's stretch is split around the 02:00-04:00 maintenance.
        assert_eq!(json["gaps"]["no_data_total"], 4);
        assert_eq!(json["gaps"]["no_data"][0]["agent"], "fra-media-1");
        assert_eq!(
            json["gaps"]["no_data"][0]["reason"],
            "agent has never reported"
        );
        assert_eq!(json["gaps"]["outages_total"], 0);
    }

    #[test]
    fn nothing_to_measure() {
        let from = at("2026-11-01T00:00:00Z");
        let to = at("2026-12-01T00:00:00Z");
        // A fresh collector: no reports, no heartbeat ever (the issue's "0.0000 % up").
        let e = evaluate(&acme(), from, to, to, &[], &[], &[]);
        assert_eq!((e.calls, e.calls_without_mos, e.reports_used), (0, 0, 0));
        for name in ["mos", "loss", "jitter_p95"] {
            let r = result(&e, name);
            assert_eq!(
                (r.measured, r.met, r.verdict, r.coverage),
                (None, None, Verdict::NoData, None),
                "{name}"
            );
        }
        assert_eq!(
            result(&e, "mos").reason.as_deref(),
            Some("no calls in the period")
        );
        assert_eq!(
            result(&e, "jitter_p95").reason.as_deref(),
            Some("no report windows in the period")
        );
        // Neither agent has ever reported: no data, not 0 % up.
        let uptime = result(&e, "uptime");
        assert_eq!(
            (uptime.measured, uptime.met, uptime.verdict),
            (None, None, Verdict::NoData)
        );
        assert_eq!(uptime.coverage, Some(0.0));
        assert_eq!(downtime_evidence(uptime).downtime_s, 0.0);
        assert_eq!(downtime_evidence(uptime).measured_s, 0.0);
        assert_eq!(downtime_evidence(uptime).intervals_total, 0);
        assert_eq!(e.verdict, Verdict::NoData);
        assert_eq!(
            e.commitments_without_data,
            vec!["mos", "loss", "jitter_p95", "uptime"]
        );
        // Each agent's no-data stretch is split around the five maintenance windows.
        assert_eq!(e.gaps.no_data_total, 12);
        let no_data_s: f64 = e.gaps.no_data.iter().map(|i| i.duration_s).sum();
        assert_eq!(no_data_s, 2.0 * 2_556_000.0);
        assert_eq!(e.gaps.outages_total, 0);
    }

    #[test]
    fn the_future_is_neither_up_nor_down() {
        // Asked on 15 Nov 12:00 for all of November; the agents have reported every 15 s
        // since 1 Nov. Judged up to now: all up, and the 15.5 days to come are not down.
        let from = at("2026-11-01T00:00:00Z");
        let to = at("2026-12-01T00:00:00Z");
        let now = at("2026-11-15T12:00:00Z");
        let beats: Vec<HeartbeatPoint> = (from..now)
            .step_by(15 * S as usize)
            .flat_map(|t| {
                [
                    beat("fra-media-1", t, &[], 0),
                    beat("fra-media-2", t, &[], 0),
                ]
            })
            .collect();
        let first = vec![
            ("fra-media-1".to_string(), from),
            ("fra-media-2".to_string(), from),
        ];
        let e = evaluate(&acme(), from, to, now, &[], &beats, &first);
        assert_eq!(
            (e.to.as_str(), e.evaluated_until.as_str()),
            ("2026-12-01T00:00:00.000000Z", "2026-11-15T12:00:00.000000Z")
        );
        let uptime = result(&e, "uptime");
        assert_eq!(
            (uptime.measured, uptime.verdict),
            (Some(100.0), Verdict::Met)
        );
        let downtime = downtime_evidence(uptime);
        // 14.5 days = 1,252,800 s; maintenance Sundays 1, 8 and 15 Nov, 2 h each = 21,600 s.
        assert_eq!(
            (
                downtime.period_s,
                downtime.maintenance_s,
                downtime.measured_s,
                downtime.downtime_s
            ),
            (1_252_800.0, 21_600.0, 1_231_200.0, 0.0)
        );
        assert_eq!(uptime.coverage, Some(1.0));
        // Calls and jitter: nothing yet, so met overall with those listed as without data.
        assert_eq!(e.verdict, Verdict::Met);
        assert_eq!(
            e.commitments_without_data,
            vec!["mos", "loss", "jitter_p95"]
        );

        // Before the fix the same answer was judged to `to`: 15.5 silent days of downtime.
        let unclipped = evaluate(&acme(), from, to, to, &[], &beats, &first);
        assert_eq!(result(&unclipped, "uptime").verdict, Verdict::Breached);

        // A period entirely in the future: nothing to judge.
        let e = evaluate(&acme(), now + S, to, now, &[], &beats, &first);
        assert_eq!(e.evaluated_until_ns, now + S);
        assert_eq!(e.verdict, Verdict::NoData);
        for c in &e.commitments {
            assert_eq!(c.verdict, Verdict::NoData, "{}", c.name);
            assert_eq!(
                c.reason.as_deref(),
                Some("the period lies in the future"),
                "{}",
                c.name
            );
        }
        assert_eq!(e.gaps.no_data_total, 0);
    }

    #[test]
    fn an_agent_reporting_from_mid_period_then_silent() {
        // ACME on Monday 2 Nov (no maintenance that day). fra-media-1 first reports at 06:00
        // and every 15 s until 17:59:45, then falls silent; fra-media-2 never reports.
        let from = at("2026-11-02T00:00:00Z");
        let to = at("2026-11-03T00:00:00Z");
        let start = at("2026-11-02T06:00:00Z");
        let last = at("2026-11-02T17:59:45Z");
        let beats: Vec<HeartbeatPoint> = (start..=last)
            .step_by(15 * S as usize)
            .map(|t| beat("fra-media-1", t, &[], 0))
            .collect();
        let first = vec![("fra-media-1".to_string(), start)];
        let e = evaluate(&acme(), from, to, to, &[], &beats, &first);
        let uptime = result(&e, "uptime");
        // Measured: 06:00-24:00 = 64,800 s of 86,400. Down: 17:59:45-24:00 = 21,615 s (the
        // whole gap from the last heartbeat). Up 43,185 s → 66.6435… %.
        let downtime = downtime_evidence(uptime);
        assert_eq!(
            (downtime.measured_s, downtime.downtime_s),
            (64_800.0, 21_615.0)
        );
        assert_eq!(uptime.measured, Some(43_185.0 / 64_800.0 * 100.0));
        assert_eq!(uptime.verdict, Verdict::Breached);
        assert_eq!(uptime.coverage, Some(0.75));
        assert_eq!(
            uptime.detail,
            "66.6435 % up: 21615 s down of 64800 s observed (0 s maintenance excluded, 21600 s without data)"
        );
        assert_eq!(downtime.intervals.len(), 1);
        assert_eq!(
            (
                downtime.intervals[0].start.as_str(),
                downtime.intervals[0].end.as_str()
            ),
            ("2026-11-02T17:59:45.000000Z", "2026-11-03T00:00:00.000000Z")
        );
        // Gaps: fra-media-1 before 06:00, fra-media-2 all day; the outage.
        let no_data: Vec<(&str, &str, &str, &str)> = e
            .gaps
            .no_data
            .iter()
            .map(|i| (i.agent.as_str(), i.start.as_str(), i.end.as_str(), i.reason))
            .collect();
        assert_eq!(
            no_data,
            vec![
                (
                    "fra-media-1",
                    "2026-11-02T00:00:00.000000Z",
                    "2026-11-02T06:00:00.000000Z",
                    "before the agent's first heartbeat"
                ),
                (
                    "fra-media-2",
                    "2026-11-02T00:00:00.000000Z",
                    "2026-11-03T00:00:00.000000Z",
                    "agent has never reported"
                ),
            ]
        );
        assert_eq!(e.gaps.outages, downtime.intervals);
        assert_eq!(e.verdict, Verdict::Breached);
    }

    #[test]
    fn windows_without_histograms_are_listed_and_uncovered() {
        let from = at("2026-11-02T00:00:00Z");
        let to = at("2026-11-03T00:00:00Z");
        let without = |agent: &str, id: &str, start: i64| {
            let mut r = report(
                agent,
                id,
                None,
                start,
                "203.0.113.1:1",
                Some((5.0, 50)),
                None,
            );
            r.jitter_histogram = None;
            r
        };
        // fra-media-1: windows without histograms at 10:05 and 11:30 (consecutive hours,
        // joined) and 14:00; fra-media-2: one at 10:10. One window with a histogram.
        let reports = vec![
            without("fra-media-1", "01", at("2026-11-02T10:05:00Z")),
            without("fra-media-1", "02", at("2026-11-02T11:30:00Z")),
            without("fra-media-1", "03", at("2026-11-02T14:00:00Z")),
            without("fra-media-2", "04", at("2026-11-02T10:10:00Z")),
            report(
                "fra-media-1",
                "05",
                None,
                at("2026-11-02T12:00:00Z"),
                "203.0.113.1:1",
                Some((5.0, 50)),
                None,
            ),
        ];
        let e = evaluate(&acme(), from, to, to, &reports, &[], &[]);
        let jitter = result(&e, "jitter_p95");
        assert_eq!(jitter.verdict, Verdict::Met);
        assert_eq!(jitter.coverage, Some(1.0 / 5.0));
        let gaps: Vec<(&str, &str, &str, u64)> = e
            .gaps
            .without_histogram
            .iter()
            .map(|g| {
                (
                    g.agent.as_str(),
                    g.start.as_str(),
                    g.end.as_str(),
                    g.windows,
                )
            })
            .collect();
        assert_eq!(
            gaps,
            vec![
                (
                    "fra-media-1",
                    "2026-11-02T10:00:00.000000Z",
                    "2026-11-02T12:00:00.000000Z",
                    2
                ),
                (
                    "fra-media-2",
                    "2026-11-02T10:00:00.000000Z",
                    "2026-11-02T11:00:00.000000Z",
                    1
                ),
                (
                    "fra-media-1",
                    "2026-11-02T14:00:00.000000Z",
                    "2026-11-02T15:00:00.000000Z",
                    1
                ),
            ]
        );
        // Without the one window that had a histogram, jitter has no data, and says why.
        let e = evaluate(&acme(), from, to, to, &reports[..4], &[], &[]);
        let jitter = result(&e, "jitter_p95");
        assert_eq!(
            (jitter.verdict, jitter.coverage),
            (Verdict::NoData, Some(0.0))
        );
        assert_eq!(
            jitter.reason.as_deref(),
            Some(
                "no jitter histograms in the period: 4 of 4 windows had jitter samples but no histogram"
            )
        );
    }

    #[test]
    fn overall_verdict_breached_if_any_then_met_then_no_data() {
        let from = at("2026-11-02T00:00:00Z");
        let to = at("2026-11-03T00:00:00Z");
        let call = |id: &str, mos: f64| {
            report(
                "fra-media-1",
                id,
                Some(id),
                from,
                "203.0.113.1:1",
                None,
                Some((Some(mos), 0.5)),
            )
        };
        // One call at MOS 4.2: mos and loss met, jitter and uptime without data → met.
        let e = evaluate(&acme(), from, to, to, &[call("a", 4.2)], &[], &[]);
        assert_eq!(e.verdict, Verdict::Met);
        assert_eq!(e.commitments_without_data, vec!["jitter_p95", "uptime"]);
        // One call at MOS 3.0: mos breached → breached, whatever has no data.
        let e = evaluate(&acme(), from, to, to, &[call("a", 3.0)], &[], &[]);
        assert_eq!(e.verdict, Verdict::Breached);
        assert_eq!(result(&e, "mos").verdict, Verdict::Breached);
        assert_eq!(result(&e, "loss").verdict, Verdict::Met);
        // A call without a MOS: the mos commitment has no data (coverage 0), loss is met.
        let mut no_mos = call("b", 4.0);
        if let Some(t) = no_mos.totals.as_mut() {
            t.mos = None;
        }
        let e = evaluate(&acme(), from, to, to, &[no_mos], &[], &[]);
        let mos = result(&e, "mos");
        assert_eq!((mos.verdict, mos.coverage), (Verdict::NoData, Some(0.0)));
        assert_eq!(
            mos.reason.as_deref(),
            Some("none of the 1 calls in the period has a MOS")
        );
        assert_eq!(e.verdict, Verdict::Met);
    }

    #[test]
    fn period_inside_maintenance_has_no_uptime_verdict() {
        let from = at("2026-11-08T02:30:00Z");
        let to = at("2026-11-08T03:30:00Z");
        let now = at("2026-12-06T20:00:00Z");
        let before = vec![
            ("fra-media-1".to_string(), from - 86_400 * S),
            ("fra-media-2".to_string(), from - 86_400 * S),
        ];
        let e = evaluate(&acme(), from, to, now, &[], &[], &before);
        let uptime = result(&e, "uptime");
        assert_eq!((uptime.measured, uptime.met), (None, None));
        assert_eq!(uptime.verdict, Verdict::NoData);
        assert_eq!(uptime.detail, "the period lies entirely within maintenance");
        assert_eq!(uptime.coverage, None);
        // Half in maintenance: 03:30-04:30 observes 30 minutes, all silent after the agents
        // had reported.
        let (from2, to2) = (from + 60 * NS_PER_MIN, to + 60 * NS_PER_MIN);
        let e = evaluate(&acme(), from2, to2, now, &[], &[], &before);
        let uptime = result(&e, "uptime");
        assert_eq!(uptime.measured, Some(0.0));
        assert_eq!(downtime_evidence(uptime).maintenance_s, 1800.0);
        // The same without any heartbeat ever: no data.
        let e = evaluate(&acme(), from2, to2, now, &[], &[], &[]);
        assert_eq!(result(&e, "uptime").verdict, Verdict::NoData);
        // An empty period and a customer without agents have no verdict either.
        let e = evaluate(&acme(), to, from, now, &[], &[], &before);
        assert_eq!(result(&e, "uptime").met, None);
        assert_eq!(result(&e, "uptime").reason.as_deref(), Some("empty period"));
        assert_eq!(e.evaluated_until_ns, from);
        let mut lonely = acme();
        lonely.agents.clear();
        let e = evaluate(&lonely, from, to + 86_400 * S, now, &[], &[], &before);
        assert_eq!(result(&e, "uptime").measured, None);
        assert_eq!(
            result(&e, "uptime").reason.as_deref(),
            Some("no agents configured for the customer")
        );
    }

    #[test]
    fn customers_from_config_evaluate() {
        let text = r#"
[[customers]]
id = "acme"
name = "ACME"
agents = ["a"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 50.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.0
"#;
        let customers = parse_customers(text).unwrap_or_default();
        let from = at("2026-11-01T00:00:00Z");
        let reports = vec![
            report(
                "a",
                "01",
                None,
                from,
                "192.0.2.1:1",
                None,
                Some((Some(4.1), 0.0)),
            ),
            report(
                "a",
                "02",
                None,
                from,
                "192.0.2.1:1",
                None,
                Some((Some(3.9), 0.0)),
            ),
        ];
        let beats: Vec<HeartbeatPoint> = (0..=4)
            .map(|k| beat("a", from + k * 15 * S, &[], 0))
            .collect();
        let e = evaluate(
            &customers[0],
            from,
            from + 60 * S,
            from + 60 * S,
            &reports,
            &beats,
            &[],
        );
        assert_eq!(result(&e, "mos").measured, Some(50.0));
        assert_eq!(result(&e, "mos").met, Some(true));
        assert_eq!(result(&e, "uptime").measured, Some(100.0));
        assert_eq!(call_evidence(result(&e, "mos")).calls[0].call_id, None);
    }

    #[test]
    fn in_subnets_checks_either_endpoint() {
        let customer = acme();
        let inside = report("a", "01", None, 0, "203.0.113.77:4000", None, None);
        assert!(super::super::in_subnets(&customer, &inside));
        let mut reversed = report("a", "01", None, 0, "198.51.100.1:4000", None, None);
        reversed.dst = "203.0.113.5:6000".into();
        assert!(super::super::in_subnets(&customer, &reversed));
        let outside = report("a", "01", None, 0, "192.0.2.1:4000", None, None);
        assert!(!super::super::in_subnets(&customer, &outside));
        let mut open = acme();
        open.subnets.clear();
        assert!(super::super::in_subnets(&open, &outside));
    }

    /// One million single-stream calls of a month plus one interval window each.
    #[test]
    #[cfg_attr(debug_assertions, ignore)]
    fn a_million_calls_in_well_under_a_second() {
        const CALLS: i64 = 1_000_000;
        let from = at("2026-11-01T00:00:00Z");
        let to = at("2026-12-01T00:00:00Z");
        let step = (to - from) / CALLS;
        let mut reports = Vec::with_capacity(2 * CALLS as usize);
        for i in 0..CALLS {
            let call = format!("{i:08x}");
            let start = from + i * step;
            // 1 in 20 calls at MOS 3.5 → 95 % meet; 1 in 1000 at 1.5 % loss.
            let mos = if i % 20 == 0 { 3.5 } else { 4.3 };
            let loss = if i % 1000 == 0 { 1.5 } else { 0.5 };
            // Both windows of call i at (i % 100) / 10 ms, 50 packets: 100 equal buckets of
            // 1,000,000 packets; p95 rank 95,000,000 falls at the end of bucket 94 → 9.4 ms.
            let jitter = Some(((i % 100) as f64 / 10.0, 50));
            reports.push(report(
                "fra-media-1",
                &call,
                Some(&call),
                start,
                "203.0.113.9:4000",
                jitter,
                None,
            ));
            reports.push(report(
                "fra-media-1",
                &call,
                Some(&call),
                start,
                "203.0.113.9:4000",
                jitter,
                Some((Some(mos), loss)),
            ));
        }
        let beats: Vec<HeartbeatPoint> = (from..to)
            .step_by(15 * S as usize)
            .flat_map(|t| {
                [
                    beat("fra-media-1", t, &[], 0),
                    beat("fra-media-2", t, &[], 0),
                ]
            })
            .collect();
        let customer = acme();
        let started = std::time::Instant::now();
        let e = evaluate(&customer, from, to, to, &reports, &beats, &[]);
        let elapsed = started.elapsed();
        eprintln!(
            "evaluate: {} reports, {} heartbeats in {elapsed:?}",
            reports.len(),
            beats.len()
        );
        assert_eq!(e.calls, 1_000_000);
        assert_eq!(e.reports_used, 2_000_000);
        assert_eq!(result(&e, "mos").measured, Some(95.0));
        assert_eq!(call_evidence(result(&e, "mos")).breaching, 50_000);
        assert_eq!(call_evidence(result(&e, "mos")).calls.len(), EVIDENCE_LIMIT);
        assert_eq!(
            call_evidence(result(&e, "mos")).calls[0].call_id.as_deref(),
            Some("00000000")
        );
        assert_eq!(result(&e, "loss").measured, Some(1.5));
        assert_eq!(call_evidence(result(&e, "loss")).breaching, 1000);
        assert_eq!(result(&e, "jitter_p95").measured, Some(9.4));
        assert_eq!(result(&e, "uptime").measured, Some(100.0));
    }
}
