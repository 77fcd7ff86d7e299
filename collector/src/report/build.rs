//! Builds a customer's [`ReportDocument`] for one period from the store, through `facts`
//! (store → facts → sla → report): the evaluation as the SLA route gives it, plus the series
//! behind every chart, in the customer's time zone.
//!
//! The per-call series are counted by the store from the per-call aggregates (never the
//! whole month of rows): per local day one grouped pass (MOS bin × loss bin × codec, each
//! group with its lowest and highest values) gives the shares, the histogram and the codec
//! counts, and tells each exact percentile or which bin to rank (`Store::call_bins`,
//! `Store::call_value_positions`): the work grows with the calls of the period, the rows
//! read with the bins, not with the distinct values. The worst calls come from an ordered
//! query. The CSV alone reads every call, a page at a time (`for_each_call`).
//! Jitter percentiles come from the same merged histograms as the SLA's jitter verdict,
//! the timeline from the same uptime computation as the uptime verdict.
//!
//! Must not render anything (the renderers take the document), must not read a clock (the
//! caller passes `now_ns`), and must never put a clear SIP Call-ID into the document.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use sha2::{Digest, Sha256};
use voqa_wire::Timestamp;
use voqa_wire::histogram::quantile_ms;

use super::model::*;
use crate::facts::{self, FactsError};
use crate::sla::{self, Evaluation};
use crate::store::{CallAggregate, CallBinning, CallValue, Store, StoreError, Worst};

/// Calls read per page: one page is what the report holds of the aggregates at a time.
pub const CALLS_PAGE: u32 = 10_000;

/// Longest period a report covers, as for the SLA route.
pub const MAX_PERIOD_DAYS: i64 = 366;

const NS_PER_HOUR: f64 = 3_600_000_000_000.0;
const DAY_NS: i64 = 86_400_000_000_000;

/// Why a report could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The period asked for is malformed or unusable; the text says why.
    #[error("period: {0}")]
    Period(String),
    /// The customer's configured zone is not known (refused by check-config already).
    #[error("customer {customer:?}: unknown time zone {zone:?}")]
    TimeZone { customer: String, zone: String },
    #[error(transparent)]
    Facts(#[from] FactsError),
    #[error("reading the store: {0}")]
    Store(#[from] StoreError),
    #[error("serialising the report: {0}")]
    Json(#[from] serde_json::Error),
    #[error("writing the report: {0}")]
    Io(#[from] std::io::Error),
    /// The format asked for is none of html, csv, json, pdf.
    #[error("format {0:?}: expected html, csv, json or pdf")]
    Format(String),
    #[error(transparent)]
    Pdf(super::pdf::PdfError),
}

/// One end of a `--from`/`--to` period: a date (midnight in the customer's zone) or an
/// RFC 3339 UTC instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodBound {
    Date(Date),
    Instant(i64),
}

/// The period a report is asked for, before the customer's zone makes it instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportPeriodSpec {
    /// A calendar month of the customer's zone (`2026-11`).
    Month { year: i16, month: i8 },
    /// `[from, to)` as given.
    Range { from: PeriodBound, to: PeriodBound },
}

/// A period made instants in one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPeriod {
    pub label: String,
    pub from_ns: i64,
    pub to_ns: i64,
}

impl ReportPeriodSpec {
    /// `--period YYYY-MM`, or `--from` and `--to` (each a date or an RFC 3339 UTC time);
    /// exactly one of the two forms.
    pub fn parse(
        period: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Self, ReportError> {
        match (period, from, to) {
            (Some(period), None, None) => Self::month(period),
            (None, Some(from), Some(to)) => Ok(ReportPeriodSpec::Range {
                from: bound("from", from)?,
                to: bound("to", to)?,
            }),
            (None, None, None) => Err(ReportError::Period(
                "give a month (period=YYYY-MM) or both from and to".into(),
            )),
            (Some(_), _, _) => Err(ReportError::Period(
                "give either a month (period) or from and to, not both".into(),
            )),
            _ => Err(ReportError::Period(
                "from and to go together: give both".into(),
            )),
        }
    }

    fn month(text: &str) -> Result<Self, ReportError> {
        let bad = || {
            ReportError::Period(format!(
                "{text:?} is not a month written YYYY-MM (such as 2026-11)"
            ))
        };
        let (year, month) = text.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let year: i16 = year.parse().map_err(|_| bad())?;
        let month: i8 = month.parse().map_err(|_| bad())?;
        if !(1970..=9998).contains(&year) || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(ReportPeriodSpec::Month { year, month })
    }

    /// The period's bounds as instants in `zone`, refused when empty or longer than
    /// [`MAX_PERIOD_DAYS`].
    pub fn resolve(&self, zone: &TimeZone) -> Result<ResolvedPeriod, ReportError> {
        let (label, from_ns, to_ns) = match *self {
            ReportPeriodSpec::Month { year, month } => {
                let first = Date::new(year, month, 1)
                    .map_err(|e| ReportError::Period(format!("{year}-{month:02}: {e}")))?;
                let next = first
                    .last_of_month()
                    .tomorrow()
                    .map_err(|e| ReportError::Period(format!("{year}-{month:02}: {e}")))?;
                (
                    format!("{year:04}-{month:02}"),
                    day_start(first, zone)?,
                    day_start(next, zone)?,
                )
            }
            ReportPeriodSpec::Range { from, to } => {
                let from_ns = bound_ns(from, zone)?;
                let to_ns = bound_ns(to, zone)?;
                (
                    format!("{}/{}", bound_text(from), bound_text(to)),
                    from_ns,
                    to_ns,
                )
            }
        };
        if from_ns >= to_ns {
            return Err(ReportError::Period("from must be before to".into()));
        }
        if to_ns.saturating_sub(from_ns) > MAX_PERIOD_DAYS * DAY_NS {
            return Err(ReportError::Period(format!(
                "a report covers at most {MAX_PERIOD_DAYS} days"
            )));
        }
        Ok(ResolvedPeriod {
            label,
            from_ns,
            to_ns,
        })
    }
}

fn bound(name: &str, text: &str) -> Result<PeriodBound, ReportError> {
    if text.len() == 10
        && let Ok(date) = text.parse::<Date>()
    {
        return Ok(PeriodBound::Date(date));
    }
    Timestamp::parse(text)
        .map(|t| PeriodBound::Instant(t.as_ns()))
        .map_err(|e| {
            ReportError::Period(format!(
                "{name}: {text:?} is neither a date (YYYY-MM-DD, midnight in the customer's zone) nor an RFC 3339 UTC time: {e}"
            ))
        })
}

fn bound_text(bound: PeriodBound) -> String {
    match bound {
        PeriodBound::Date(date) => date.to_string(),
        PeriodBound::Instant(ns) => Timestamp::from_ns(ns).to_string(),
    }
}

fn bound_ns(bound: PeriodBound, zone: &TimeZone) -> Result<i64, ReportError> {
    match bound {
        PeriodBound::Date(date) => day_start(date, zone),
        PeriodBound::Instant(ns) => Ok(ns),
    }
}

/// The first instant of `date` in `zone` (midnight, or the first time after a gap).
fn day_start(date: Date, zone: &TimeZone) -> Result<i64, ReportError> {
    let zoned = date
        .to_zoned(zone.clone())
        .map_err(|e| ReportError::Period(format!("{date}: {e}")))?;
    i64::try_from(zoned.timestamp().as_nanosecond())
        .map_err(|_| ReportError::Period(format!("{date}: out of range")))
}

/// The customer's zone, by the name its configuration gives.
pub fn customer_zone(customer: &sla::Customer) -> Result<TimeZone, ReportError> {
    TimeZone::get(&customer.time_zone).map_err(|_| ReportError::TimeZone {
        customer: customer.id.clone(),
        zone: customer.time_zone.clone(),
    })
}

/// `ns` as RFC 3339 with the zone's offset at that instant (`2026-10-25T02:30:00+01:00`).
fn local_text(ns: i64, zone: &TimeZone) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(t) => t
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        Err(_) => Timestamp::from_ns(ns).to_string(),
    }
}

/// The local days of `[from_ns, to_ns)` as `(date, start, end)`, clipped to the period.
pub fn local_days(
    from_ns: i64,
    to_ns: i64,
    zone: &TimeZone,
) -> Result<Vec<(Date, i64, i64)>, ReportError> {
    let out_of_range = || ReportError::Period("period out of range".into());
    let first = jiff::Timestamp::from_nanosecond(i128::from(from_ns))
        .map_err(|_| out_of_range())?
        .to_zoned(zone.clone())
        .date();
    let mut days = Vec::new();
    let mut date = first;
    loop {
        let next = date.tomorrow().map_err(|_| out_of_range())?;
        let start = day_start(date, zone)?.max(from_ns);
        let end = day_start(next, zone)?.min(to_ns);
        if start < end {
            days.push((date, start, end));
        }
        if end >= to_ns || days.len() > (MAX_PERIOD_DAYS as usize) + 2 {
            break;
        }
        date = next;
    }
    Ok(days)
}

/// The report's name for a call: the agent's pseudonym as it is (`anon:…`, keyed on the
/// agent), a stream key as it is, and otherwise (an agent run with `--no-pseudonymize`) a
/// SHA-256 of the agent and the Call-ID, so that a clear Call-ID never reaches a report.
pub fn call_pseudonym(call: &CallAggregate) -> String {
    match call.call_id.as_deref() {
        Some(id) if id.starts_with("anon:") => id.to_owned(),
        None if call.call_key.starts_with("stream:") => call.call_key.clone(),
        _ => {
            let mut hash = Sha256::new();
            hash.update(b"voqa report call\0");
            hash.update(call.agent_id.as_bytes());
            hash.update(b"\0");
            hash.update(call.call_key.as_bytes());
            let digest = hash.finalize();
            let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("hash:{hex}")
        }
    }
}

/// The calls counted for a customer in `[from_ns, to_ns)` (in the scope its SLA is judged
/// on), a page of [`CALLS_PAGE`] at a time, agent by agent in time order: what the CSV form
/// lists, read so that no more than a page is ever held.
pub struct CallPages {
    /// `None` when the period is evaluated from stream reports (see `facts::calls_scope`):
    /// the per-call aggregates of that scope do not cover it, and there are no pages.
    scope: Option<String>,
    agents: Vec<String>,
    agent: usize,
    after: Option<(i64, String)>,
    from_ns: i64,
    to_ns: i64,
}

impl CallPages {
    pub async fn open(
        store: &Store,
        customer: &sla::Customer,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Self, ReportError> {
        let scope = facts::calls_scope(store, customer, from_ns).await?;
        let mut agents = customer.agents.clone();
        agents.sort_unstable();
        agents.dedup();
        Ok(CallPages {
            scope,
            agents,
            agent: 0,
            after: None,
            from_ns,
            to_ns,
        })
    }

    /// False when the per-call aggregates do not cover the period (no pages then).
    pub fn available(&self) -> bool {
        self.scope.is_some()
    }

    /// The next non-empty page, `None` after the last.
    pub async fn next_page(
        &mut self,
        store: &Store,
    ) -> Result<Option<Vec<CallAggregate>>, ReportError> {
        let Some(scope) = &self.scope else {
            return Ok(None);
        };
        while let Some(agent) = self.agents.get(self.agent) {
            let page = store
                .calls_page(
                    scope,
                    agent,
                    self.from_ns,
                    self.to_ns,
                    self.after.take(),
                    CALLS_PAGE,
                )
                .await?;
            match page.last() {
                Some(last) if page.len() == CALLS_PAGE as usize => {
                    self.after = Some((last.last_start_ns, last.call_key.clone()));
                }
                _ => self.agent += 1,
            }
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
        Ok(None)
    }
}

/// Hands every call of [`CallPages`] to `each`. Returns false, without reading, when the
/// period is evaluated from stream reports.
pub async fn for_each_call(
    store: &Store,
    customer: &sla::Customer,
    from_ns: i64,
    to_ns: i64,
    mut each: impl FnMut(&CallAggregate) -> Result<(), ReportError>,
) -> Result<bool, ReportError> {
    let mut pages = CallPages::open(store, customer, from_ns, to_ns).await?;
    while let Some(page) = pages.next_page(store).await? {
        for call in &page {
            each(call)?;
        }
    }
    Ok(pages.available())
}

/// The 1-based place of the nearest-rank percentile `p` (0..=100) among `n` values (`n` > 0):
/// the smallest value with at least `p` % of the values at or below it.
fn nearest_rank_position(n: u64, p: f64) -> u64 {
    (((p / 100.0) * n as f64).ceil().max(1.0) as u64).min(n)
}

/// MOS histogram bins: 0.1 wide from 1.0 to 4.5, the last closed.
const MOS_LO: f64 = 1.0;
const MOS_BINS: usize = 35;

fn mos_bin(mos: f64) -> usize {
    // Rounded to 1e-9 first, so that 3.6 (3.5999999…) falls in [3.6, 3.7).
    let x = ((mos - MOS_LO) * 10.0 * 1e9).round() / 1e9;
    (x.floor().max(0.0) as usize).min(MOS_BINS - 1)
}

/// The edges of [`mos_bin`] as doubles: edge `i - 1` is the smallest MOS in bin `i`. The
/// store bins calls by comparing with these, so that its bins are exactly `mos_bin`'s,
/// rounding included (`mos_bin` is monotone: each step of it is).
static MOS_EDGES: std::sync::LazyLock<Vec<f64>> = std::sync::LazyLock::new(|| {
    (1..MOS_BINS)
        .map(|bin| {
            // Positive doubles order as their bits: bisect the bits for the first in `bin`.
            let (mut below, mut at) = (0f64.to_bits(), 10f64.to_bits());
            while at - below > 1 {
                let mid = below + (at - below) / 2;
                if mos_bin(f64::from_bits(mid)) >= bin {
                    at = mid;
                } else {
                    below = mid;
                }
            }
            f64::from_bits(at)
        })
        .collect()
});

/// Loss bins for locating the loss percentiles (bin `i` holds `[edge i-1, edge i)`): any
/// ascending edges give the same exact percentiles; these keep the bin that holds a
/// percentile, which the store sorts when its values differ, a small part of the month for
/// usual losses (most calls lose nothing, the others a few percent).
const LOSS_EDGES: [f64; 24] = [
    0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0,
    8.0, 10.0, 15.0, 20.0, 30.0, 50.0,
];

/// Values counted in one bin: how many, the lowest and the highest.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Bin {
    count: u64,
    lo: f64,
    hi: f64,
}

impl Bin {
    fn add(&mut self, count: u64, lo: f64, hi: f64) {
        if count == 0 {
            return;
        }
        if self.count == 0 {
            (self.lo, self.hi) = (lo, hi);
        } else {
            (self.lo, self.hi) = (self.lo.min(lo), self.hi.max(hi));
        }
        self.count += count;
    }
}

/// Where a nearest-rank percentile of binned values lies.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Located {
    /// Known from the bins: the bin holds one value, or the place is its lowest or highest.
    Value(f64),
    /// The `position`-th (1-based) smallest value of bin `bin`.
    InBin { bin: usize, position: u64 },
}

/// Locates percentile `p` among values counted in ascending, disjoint `bins`.
fn locate(bins: &[Bin], p: f64) -> Option<Located> {
    let n: u64 = bins.iter().map(|b| b.count).sum();
    if n == 0 {
        return None;
    }
    let rank = nearest_rank_position(n, p);
    let mut below = 0u64;
    for (i, bin) in bins.iter().enumerate() {
        if below + bin.count >= rank {
            let position = rank - below;
            return Some(if bin.lo == bin.hi || position == 1 {
                Located::Value(bin.lo)
            } else if position == bin.count {
                Located::Value(bin.hi)
            } else {
                Located::InBin { bin: i, position }
            });
        }
        below += bin.count;
    }
    None
}

/// The exact nearest-rank percentiles `ps` of one value of the calls of `[from, to)`, counted
/// in `bins` by the store: from the bins where they tell, otherwise by one ranked read of the
/// calls in the bins that hold them (the store sorts those calls only). The calls must not
/// change between the two reads (a closed period): a position the second read does not
/// reach is `None`.
#[allow(clippy::too_many_arguments)]
async fn binned_percentiles(
    store: &Store,
    scope: &str,
    agents: &[String],
    from: i64,
    to: i64,
    value: CallValue,
    bins: &[Bin],
    ps: &[f64],
) -> Result<Vec<Option<f64>>, ReportError> {
    let located: Vec<Option<Located>> = ps.iter().map(|&p| locate(bins, p)).collect();
    let mut asked: Vec<usize> = located
        .iter()
        .filter_map(|l| match l {
            Some(Located::InBin { bin, .. }) => Some(*bin),
            _ => None,
        })
        .collect();
    asked.sort_unstable();
    asked.dedup();
    // The asked bins' calls in ascending order are the bins one after the other.
    let offset = |bin: usize| -> u64 {
        asked
            .iter()
            .take_while(|&&b| b < bin)
            .map(|&b| bins[b].count)
            .sum()
    };
    let mut positions: Vec<u64> = located
        .iter()
        .filter_map(|l| match l {
            Some(Located::InBin { bin, position }) => Some(offset(*bin) + position),
            _ => None,
        })
        .collect();
    positions.sort_unstable();
    positions.dedup();
    let ranges: Vec<(f64, f64)> = asked.iter().map(|&b| (bins[b].lo, bins[b].hi)).collect();
    let values = store
        .call_value_positions(scope, agents, from, to, value, &ranges, &positions)
        .await?;
    Ok(located
        .iter()
        .map(|l| match *l {
            None => None,
            Some(Located::Value(v)) => Some(v),
            Some(Located::InBin { bin, position }) => positions
                .iter()
                .position(|&p| p == offset(bin) + position)
                .and_then(|i| values.get(i).copied()),
        })
        .collect())
}

/// One local day's calls.
#[derive(Clone, Default)]
struct DayCalls {
    calls: u64,
    with_mos: u64,
    /// Calls meeting the MOS target.
    meeting: u64,
    mos_p50: Option<f64>,
    mos_p5: Option<f64>,
}

/// What the calls of the period add up to.
struct CallSeries {
    days: Vec<DayCalls>,
    histogram: [u64; MOS_BINS],
    without_mos: u64,
    loss_pct: Percentiles,
    worst: Vec<CallAggregate>,
    /// `(codec, calls)` by codec name.
    codecs: Vec<(String, u64)>,
    available: bool,
}

/// One local day's calls (`[start, end)`): its grouped pass and its MOS percentiles, with
/// the groups for what the period adds up.
async fn day_calls(
    store: &Store,
    scope: &str,
    agents: &[String],
    binning: &CallBinning<'_>,
    start: i64,
    end: i64,
) -> Result<(DayCalls, Vec<crate::store::CallBin>), ReportError> {
    let groups = store.call_bins(scope, agents, start, end, binning).await?;
    let mut day = DayCalls::default();
    let mut mos_bins = [Bin::default(); MOS_BINS];
    for group in &groups {
        day.calls += group.calls;
        if let (Some(index), Some((lo, hi))) = (group.mos_bin, group.mos_range) {
            day.with_mos += group.calls;
            day.meeting += group.meeting_mos;
            mos_bins[(index as usize).min(MOS_BINS - 1)].add(group.calls, lo, hi);
        }
    }
    if let [p50, p5] = binned_percentiles(
        store,
        scope,
        agents,
        start,
        end,
        CallValue::MinMos,
        &mos_bins,
        &[50.0, 5.0],
    )
    .await?[..]
    {
        (day.mos_p50, day.mos_p5) = (p50, p5);
    }
    Ok((day, groups))
}

/// The per-call series of `[from, until)`, counted by the store rather than by reading every
/// call: per local day one grouped pass over the day's calls (MOS bin × loss bin × codec,
/// with each group's lowest and highest values), and a ranked read of one or two bins where
/// a percentile is not told by its bin's lowest or highest value. The same numbers, exact,
/// whatever the number of distinct values, without a million rows crossing the driver.
/// The [`WORST_CALLS`] lowest-MOS calls come from an ordered query. Empty and not
/// `available` when the period is evaluated from stream reports (see
/// `facts::calls_scope`): the per-call aggregates do not cover it.
async fn call_series(
    store: &Store,
    customer: &sla::Customer,
    days: &[(Date, i64, i64)],
    from: i64,
    until: i64,
) -> Result<CallSeries, ReportError> {
    let mut series = CallSeries {
        days: vec![DayCalls::default(); days.len()],
        histogram: [0; MOS_BINS],
        without_mos: 0,
        loss_pct: Percentiles {
            p50: None,
            p95: None,
            p99: None,
            samples: 0,
        },
        worst: Vec::new(),
        codecs: Vec::new(),
        available: true,
    };
    if from >= until {
        return Ok(series);
    }
    let Some(scope) = facts::calls_scope(store, customer, from).await? else {
        series.available = false;
        return Ok(series);
    };
    let mut agents = customer.agents.clone();
    agents.sort_unstable();
    agents.dedup();
    let binning = CallBinning {
        mos_edges: &MOS_EDGES,
        loss_edges: &LOSS_EDGES,
        mos_min: customer.commitments.mos_min,
    };
    let mut loss_bins = [Bin::default(); LOSS_EDGES.len() + 1];
    let mut codecs: std::collections::BTreeMap<String, u64> = Default::default();
    // Two days at a time: the store's readers (and cores) serve them side by side.
    for (pair, out) in days.chunks(2).zip(series.days.chunks_mut(2)) {
        // Calls are judged up to `until`, as the evaluation counts them; the store answers
        // an empty range (a day after `until`) with nothing.
        let range = |i: usize| {
            pair.get(i)
                .map(|&(_, start, end)| (start.max(from), end.min(until)))
        };
        let day = |range: Option<(i64, i64)>| {
            let (scope, agents, binning) = (&scope, &agents, &binning);
            async move {
                match range {
                    Some((start, end)) => day_calls(store, scope, agents, binning, start, end)
                        .await
                        .map(Some),
                    None => Ok(None),
                }
            }
        };
        let (first, second) = tokio::join!(day(range(0)), day(range(1)));
        for (slot, result) in out.iter_mut().zip([first?, second?]) {
            let Some((day, groups)) = result else {
                continue;
            };
            *slot = day;
            for group in &groups {
                let (loss_lo, loss_hi) = group.loss_range;
                if let Some(bin) = loss_bins.get_mut(group.loss_bin as usize) {
                    bin.add(group.calls, loss_lo, loss_hi);
                }
                match group.mos_bin {
                    Some(index) if group.mos_range.is_some() => {
                        series.histogram[(index as usize).min(MOS_BINS - 1)] += group.calls;
                        if let Some(codec) = &group.mos_codec {
                            *codecs.entry(codec.clone()).or_default() += group.calls;
                        }
                    }
                    _ => series.without_mos += group.calls,
                }
            }
        }
    }
    let samples = loss_bins.iter().map(|b| b.count).sum();
    if let [p50, p95, p99] = binned_percentiles(
        store,
        &scope,
        &agents,
        from,
        until,
        CallValue::MaxLossPct,
        &loss_bins,
        &[50.0, 95.0, 99.0],
    )
    .await?[..]
    {
        series.loss_pct = Percentiles {
            p50,
            p95,
            p99,
            samples,
        };
    }
    series.codecs = codecs.into_iter().collect();
    // Lowest MOS first, ties by agent and call key: every call with a MOS is "below" +∞.
    series.worst = store
        .calls_worst(
            &scope,
            &agents,
            from,
            until,
            Worst::MosBelow(f64::INFINITY),
            WORST_CALLS as u32,
        )
        .await?;
    Ok(series)
}

/// Builds the report of `customer` over `period` as of `now_ns`.
pub async fn build(
    store: &Store,
    customer: &sla::Customer,
    period: &ReportPeriodSpec,
    now_ns: i64,
    collector_version: &str,
) -> Result<ReportDocument, ReportError> {
    let zone = customer_zone(customer)?;
    let resolved = period.resolve(&zone)?;
    let (from, to) = (resolved.from_ns, resolved.to_ns);
    let until = sla::evaluated_until(from, to, now_ns);
    let days = local_days(from, to, &zone)?;
    // Independent reads: the evaluation and the series run side by side.
    let (evaluated, series) = tokio::join!(
        facts::evaluate_with_facts(store, customer, from, to, now_ns),
        call_series(store, customer, &days, from, until)
    );
    let ((evaluation, period_facts), mut series) = (evaluated?, series?);
    let worst = std::mem::take(&mut series.worst);

    let day_series = days
        .iter()
        .zip(series.days.iter())
        .map(|(&(date, start, end), day)| DaySeries {
            date: date.to_string(),
            from_ns: start,
            to_ns: end,
            hours: (end - start) as f64 / NS_PER_HOUR,
            calls: day.calls,
            calls_with_mos: day.with_mos,
            mos_p50: day.mos_p50,
            mos_p5: day.mos_p5,
            meeting_mos_pct: (day.with_mos > 0)
                .then(|| day.meeting as f64 / day.with_mos as f64 * 100.0),
        })
        .collect();
    let loss_pct = series.loss_pct.clone();
    let jitter = &period_facts.jitter.histogram;
    let jitter_ms = Percentiles {
        p50: quantile_ms(jitter, 0.50),
        p95: quantile_ms(jitter, 0.95),
        p99: quantile_ms(jitter, 0.99),
        samples: jitter.len(),
    };
    let mos_histogram = (0..MOS_BINS)
        .map(|i| HistogramBin {
            lo: (10.0 * MOS_LO + i as f64).round() / 10.0,
            hi: (10.0 * MOS_LO + i as f64 + 1.0).round() / 10.0,
            calls: series.histogram[i],
        })
        .collect();

    let mut worst_calls = Vec::with_capacity(worst.len());
    for call in &worst {
        worst_calls.push(report_call(store, call).await?);
    }

    let timeline = uptime_timeline(store, customer, from, to, until).await?;
    let mut notices = notices(&evaluation);
    if !series.available {
        notices.push(Notice {
            kind: NoticeKind::NoData,
            text: "The per-call series (daily MOS, MOS distribution, loss percentiles, worst calls) are empty: this period starts before the collector began attributing this customer's subnets per call; the verdicts are computed from the stream reports.".into(),
            from: None,
            to: None,
        });
    }
    let codecs = series
        .codecs
        .iter()
        .map(|(name, calls)| {
            let info = voqa_wire::codecs::codec_by_name(name, 0);
            CodecMethod {
                codec: name.clone(),
                ie: info.ie,
                bpl: info.bpl,
                streams: *calls,
            }
        })
        .collect();

    let mut document = ReportDocument {
        report_version: REPORT_VERSION,
        customer: ReportCustomer {
            id: customer.id.clone(),
            name: customer.name.clone(),
            time_zone: customer.time_zone.clone(),
        },
        period: ReportPeriod {
            label: resolved.label,
            from: Timestamp::from_ns(from).to_string(),
            to: Timestamp::from_ns(to).to_string(),
            from_ns: from,
            to_ns: to,
            from_local: local_text(from, &zone),
            to_local: local_text(to, &zone),
            time_zone: customer.time_zone.clone(),
            evaluated_until: Timestamp::from_ns(until).to_string(),
        },
        provenance: Provenance {
            collector_version: collector_version.to_owned(),
            generated_at: Timestamp::from_ns(now_ns).to_string(),
            json_sha256: None,
        },
        evaluation,
        days: day_series,
        mos_histogram,
        calls_without_mos: series.without_mos,
        loss_pct,
        jitter_ms,
        uptime_timeline: timeline,
        worst_calls,
        notices,
        methods: methods(customer, codecs),
    };
    document.provenance.json_sha256 = Some(json_sha256(&document)?);
    Ok(document)
}

/// The JSON form: the document with `provenance.json_sha256` null, compact, exactly the
/// bytes whose SHA-256 the other forms print.
pub fn to_json(document: &ReportDocument) -> Result<Vec<u8>, ReportError> {
    let mut unhashed = document.clone();
    unhashed.provenance.json_sha256 = None;
    Ok(serde_json::to_vec(&unhashed)?)
}

/// Lower-case hex SHA-256 of [`to_json`].
pub fn json_sha256(document: &ReportDocument) -> Result<String, ReportError> {
    let digest = Sha256::digest(to_json(document)?);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// A worst call as listed: its aggregate, and the stream that set its MOS from its final
/// reports while retention keeps them (otherwise the stream id and codec the aggregate kept).
async fn report_call(store: &Store, call: &CallAggregate) -> Result<ReportCall, ReportError> {
    let finals = store.call_finals(&call.agent_id, &call.call_key).await?;
    let stream_mos = |row: &crate::store::StreamRow| {
        row.report.totals.as_ref().map_or(row.report.mos, |t| t.mos)
    };
    let chosen = match &call.mos_stream_id {
        Some(id) => finals.iter().find(|row| &row.report.stream_id == id),
        None => finals
            .iter()
            .filter(|row| stream_mos(row).is_some() && stream_mos(row) == call.min_mos)
            .min_by(|a, b| a.report.stream_id.cmp(&b.report.stream_id)),
    };
    let worst_stream = match chosen {
        Some(row) => {
            let r = &row.report;
            let (loss, jitter) = match &r.totals {
                Some(t) => (t.effective_loss_pct, t.max_jitter_ms),
                None => (r.effective_loss_pct, r.max_jitter_ms),
            };
            Some(ReportStream {
                stream_id: r.stream_id.clone(),
                src: r.src.clone(),
                dst: r.dst.clone(),
                codec: r.codec.clone(),
                mos: stream_mos(row),
                loss_pct: loss,
                jitter_ms: jitter,
            })
        }
        None => call.mos_stream_id.as_ref().map(|id| ReportStream {
            stream_id: id.clone(),
            src: String::new(),
            dst: String::new(),
            codec: call.mos_codec.clone().unwrap_or_default(),
            mos: call.min_mos,
            loss_pct: call.max_loss_pct,
            jitter_ms: call.max_jitter_ms,
        }),
    };
    Ok(ReportCall {
        call: call_pseudonym(call),
        agent_id: call.agent_id.clone(),
        start: Timestamp::from_ns(call.first_start_ns).to_string(),
        end: Timestamp::from_ns(call.last_end_ns).to_string(),
        mos: call.min_mos,
        loss_pct: call.max_loss_pct,
        jitter_ms: call.max_jitter_ms,
        streams: call.streams,
        worst_stream,
    })
}

/// The period cut into spans: maintenance, then downtime (any agent down), then no data
/// (no agent had reported yet), else up; after `until`, future. The same uptime computation
/// as the uptime verdict (`sla::uptime::uptime`), on the same heartbeats.
async fn uptime_timeline(
    store: &Store,
    customer: &sla::Customer,
    from: i64,
    to: i64,
    until: i64,
) -> Result<Vec<TimelineSpan>, ReportError> {
    let mut marks: Vec<(i64, i64, SpanState)> = Vec::new();
    if from < until {
        let points = facts::heartbeat_points(store, customer, from, until).await?;
        let first = store.first_heartbeats(&customer.agents).await?;
        let maintenance = sla::maintenance::maintenance_spans(
            &customer.commitments.maintenance_windows(),
            from,
            until,
        );
        let outcome = sla::uptime::uptime(
            &customer.agents,
            &points,
            &first,
            from,
            until,
            customer.commitments.heartbeat_interval_s,
            &maintenance,
        );
        marks.extend(
            maintenance
                .iter()
                .map(|&(a, b)| (a, b, SpanState::Maintenance)),
        );
        marks.extend(
            outcome
                .intervals
                .iter()
                .map(|d| (d.start_ns, d.end_ns, SpanState::Down)),
        );
        // No data for the customer: every agent without data at once.
        let mut agents = customer.agents.clone();
        agents.sort_unstable();
        agents.dedup();
        let mut common: Option<Vec<(i64, i64)>> = None;
        for agent in &agents {
            let mut spans: Vec<(i64, i64)> = outcome
                .no_data
                .iter()
                .filter(|n| &n.agent == agent)
                .map(|n| (n.start_ns, n.end_ns))
                .collect();
            sla::uptime::merge_spans(&mut spans);
            common = Some(match common {
                None => spans,
                Some(previous) => intersect(&previous, &spans),
            });
        }
        marks.extend(
            common
                .unwrap_or_default()
                .into_iter()
                .map(|(a, b)| (a, b, SpanState::NoData)),
        );
    }
    let state_at = |t: i64| -> SpanState {
        if t >= until {
            return SpanState::Future;
        }
        for state in [SpanState::Maintenance, SpanState::Down, SpanState::NoData] {
            if marks.iter().any(|&(a, b, s)| s == state && a <= t && t < b) {
                return state;
            }
        }
        SpanState::Up
    };
    let mut cuts: Vec<i64> = vec![from, to, until.clamp(from, to)];
    for &(a, b, _) in &marks {
        cuts.push(a.clamp(from, to));
        cuts.push(b.clamp(from, to));
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut spans: Vec<TimelineSpan> = Vec::new();
    for pair in cuts.windows(2) {
        let [a, b] = pair else { continue };
        let state = state_at(*a);
        match spans.last_mut() {
            Some(last) if last.state == state && last.to_ns == *a => {
                last.to_ns = *b;
                last.to = Timestamp::from_ns(*b).to_string();
            }
            _ => spans.push(TimelineSpan {
                state,
                from_ns: *a,
                to_ns: *b,
                from: Timestamp::from_ns(*a).to_string(),
                to: Timestamp::from_ns(*b).to_string(),
            }),
        }
    }
    Ok(spans)
}

/// The intersection of two sorted, disjoint span lists.
fn intersect(a: &[(i64, i64)], b: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while let (Some(&(a0, a1)), Some(&(b0, b1))) = (a.get(i), b.get(j)) {
        let (start, end) = (a0.max(b0), a1.min(b1));
        if start < end {
            out.push((start, end));
        }
        if a1 < b1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Where measurement was incomplete, from the evaluation's gaps and capture drops.
fn notices(evaluation: &Evaluation) -> Vec<Notice> {
    let gaps = &evaluation.gaps;
    let mut notices = Vec::new();
    for drop in &gaps.capture_drops {
        notices.push(Notice {
            kind: NoticeKind::CaptureDrops,
            text: format!(
                "Agent {} dropped {} packets at capture (kernel drops) in this stretch: the calls and jitter measured there are missing packets the network delivered.",
                drop.agent, drop.drops
            ),
            from: Some(drop.start.clone()),
            to: Some(drop.end.clone()),
        });
    }
    if evaluation.capture_drops.windows_with_drops > 0 {
        notices.push(Notice {
            kind: NoticeKind::CaptureDrops,
            text: format!(
                "{} report windows of the period had capture drops: their streams are measured from incomplete captures.",
                evaluation.capture_drops.windows_with_drops
            ),
            from: None,
            to: None,
        });
    }
    for outage in &gaps.outages {
        notices.push(Notice {
            kind: NoticeKind::AgentOutage,
            text: format!(
                "Agent {} was down ({}) for {:.0} s: calls in this stretch were not measured, and it counts as downtime.",
                outage.agent, outage.reason, outage.duration_s
            ),
            from: Some(outage.start.clone()),
            to: Some(outage.end.clone()),
        });
    }
    for gap in &gaps.no_data {
        notices.push(Notice {
            kind: NoticeKind::NoData,
            text: format!(
                "No data from agent {} ({}) for {:.0} s: not measured, neither up nor down.",
                gap.agent, gap.reason, gap.duration_s
            ),
            from: Some(gap.start.clone()),
            to: Some(gap.end.clone()),
        });
    }
    for gap in &gaps.without_histogram {
        notices.push(Notice {
            kind: NoticeKind::WithoutHistogram,
            text: format!(
                "{} report windows of agent {} came without a jitter histogram: their packets are not in the jitter percentiles.",
                gap.windows, gap.agent
            ),
            from: Some(gap.start.clone()),
            to: Some(gap.end.clone()),
        });
    }
    let listed = (gaps.capture_drops.len() + gaps.outages.len() + gaps.no_data.len()) as u64;
    let total = gaps.capture_drops_total + gaps.outages_total + gaps.no_data_total;
    if total > listed {
        notices.push(Notice {
            kind: NoticeKind::NoData,
            text: format!(
                "{} more stretches of capture drops, outages or missing data are not listed here; the SLA evaluation counts them all.",
                total - listed
            ),
            from: None,
            to: None,
        });
    }
    notices
}

fn methods(customer: &sla::Customer, codecs: Vec<CodecMethod>) -> Methods {
    Methods {
        emodel: "MOS by the ITU-T G.107 E-model: R = Ro − Is − Id − Ie,eff + A with the G.107 default values (R = 93.2 for G.711 without impairments), Ie,eff from the codec's Ie and Bpl, the effective loss (network loss plus jitter-buffer discards) and the burst ratio; MOS from R by G.107 Annex B. A call's MOS is its worst stream's.".into(),
        codecs,
        jitter_buffer: "Each stream is played through an emulated fixed jitter buffer (60 ms unless the agent is configured otherwise); a packet later than the buffer is discarded and counted as lost. After 3 late packets in a row the buffer re-synchronises on the new delay (metrics-spec §9.2, §9.2a).".into(),
        assumed_delay: "Without an RTCP round trip the one-way network delay is assumed to be 20 ms (the agent's assumed_one_way_ms); such streams are flagged delay_source = assumed.".into(),
        percentiles: "Jitter percentiles are exact merges of per-packet jitter histograms (HdrHistogram) over every agent, stream and report window of the period; they are not averages of per-window percentiles. MOS and loss percentiles are nearest-rank over the calls.".into(),
        pseudonymisation: "Call ids are the agent's keyed pseudonyms (anon:…); a call id the agent shipped in clear is shown as hash: and the first 8 bytes of a SHA-256 of the agent and the Call-ID. No SIP user part or clear Call-ID appears in a report.".into(),
        time_zone: format!(
            "Days and months are those of {} (a day with a daylight-saving change has 23 or 25 hours); instants are also given in UTC. Maintenance windows are configured in UTC.",
            customer.time_zone
        ),
        uptime: format!(
            "Up: a heartbeat of the agent at least every {} s and no watched process down. Down: a longer silence, or a watched process down (any agent down counts). Maintenance: the configured windows, excluded from the uptime share. No data: before an agent's first heartbeat ever, neither up nor down.",
            2 * customer.commitments.heartbeat_interval_s
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).expect("bundled zone")
    }

    fn ns(text: &str) -> i64 {
        Timestamp::parse(text).expect("time").as_ns()
    }

    #[test]
    fn a_month_is_the_zones_calendar_month() {
        let spec = ReportPeriodSpec::parse(Some("2026-10"), None, None).expect("month");
        let berlin = spec.resolve(&zone("Europe/Berlin")).expect("resolves");
        // CEST (+02:00) on 1 October, CET (+01:00) on 1 November.
        assert_eq!(berlin.from_ns, ns("2026-09-30T22:00:00Z"));
        assert_eq!(berlin.to_ns, ns("2026-10-31T23:00:00Z"));
        assert_eq!(berlin.label, "2026-10");
        let utc = spec.resolve(&zone("UTC")).expect("resolves");
        assert_eq!(
            (utc.from_ns, utc.to_ns),
            (ns("2026-10-01T00:00:00Z"), ns("2026-11-01T00:00:00Z"))
        );
        let days = local_days(berlin.from_ns, berlin.to_ns, &zone("Europe/Berlin")).expect("days");
        assert_eq!(days.len(), 31);
        let hours: Vec<i64> = days
            .iter()
            .map(|d| (d.2 - d.1) / 3_600_000_000_000)
            .collect();
        // DST ends on Sunday 25 October 2026: a 25-hour day; every other day has 24.
        assert_eq!(hours.iter().sum::<i64>(), 31 * 24 + 1);
        assert_eq!(days[24].0.to_string(), "2026-10-25");
        assert_eq!(hours[24], 25);
        // March 2026: DST begins on the 29th, a 23-hour day.
        let march = ReportPeriodSpec::parse(Some("2026-03"), None, None)
            .expect("month")
            .resolve(&zone("Europe/Berlin"))
            .expect("resolves");
        let days = local_days(march.from_ns, march.to_ns, &zone("Europe/Berlin")).expect("days");
        assert_eq!((days[28].2 - days[28].1) / 3_600_000_000_000, 23);
    }

    #[test]
    fn periods_are_checked() {
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "2026-00", "x"] {
            let err = ReportPeriodSpec::parse(Some(bad), None, None).expect_err(bad);
            assert!(err.to_string().contains("YYYY-MM"), "{err}");
        }
        let err = ReportPeriodSpec::parse(None, Some("2026-11-02"), None).expect_err("half");
        assert!(err.to_string().contains("both"), "{err}");
        let range = ReportPeriodSpec::parse(None, Some("2026-11-02"), Some("2026-11-01T12:00:00Z"))
            .expect("parses");
        let err = range.resolve(&zone("UTC")).expect_err("backwards");
        assert!(err.to_string().contains("before"), "{err}");
        let long =
            ReportPeriodSpec::parse(None, Some("2025-01-01"), Some("2026-02-01")).expect("parses");
        assert!(long.resolve(&zone("UTC")).is_err());
        let range = ReportPeriodSpec::parse(None, Some("2026-11-02"), Some("2026-11-03T06:00:00Z"))
            .expect("parses")
            .resolve(&zone("Asia/Tokyo"))
            .expect("resolves");
        assert_eq!(range.from_ns, ns("2026-11-01T15:00:00Z"));
        assert_eq!(range.to_ns, ns("2026-11-03T06:00:00Z"));
        assert_eq!(range.label, "2026-11-02/2026-11-03T06:00:00.000000Z");
    }

    /// Nearest rank over a plain sorted list, the definition the bins must agree with.
    fn rank_of_sorted(sorted: &[f64], p: f64) -> Option<f64> {
        let n = sorted.len() as u64;
        (n > 0).then(|| sorted[nearest_rank_position(n, p) as usize - 1])
    }

    #[test]
    fn nearest_rank_positions() {
        // 20 values: p50 → 10th, p5 → 1st, p95 → 19th, p99 → 20th; p0 is the 1st.
        assert_eq!(nearest_rank_position(20, 50.0), 10);
        assert_eq!(nearest_rank_position(20, 5.0), 1);
        assert_eq!(nearest_rank_position(20, 95.0), 19);
        assert_eq!(nearest_rank_position(20, 99.0), 20);
        assert_eq!(nearest_rank_position(20, 0.0), 1);
        assert_eq!(nearest_rank_position(1, 5.0), 1);
        // 10 values: p30 → 3rd, p31 → 4th, p41 → 5th, p100 → 10th.
        assert_eq!(nearest_rank_position(10, 30.0), 3);
        assert_eq!(nearest_rank_position(10, 31.0), 4);
        assert_eq!(nearest_rank_position(10, 41.0), 5);
        assert_eq!(nearest_rank_position(10, 100.0), 10);
    }

    #[test]
    fn percentiles_are_located_in_bins() {
        let bin = |count, lo, hi| Bin { count, lo, hi };
        // Values 2.0 ×3 | 3.5, 3.6, 3.9 | 4.1 ×6: 12 values in three bins.
        let bins = [bin(3, 2.0, 2.0), bin(3, 3.5, 3.9), bin(6, 4.1, 4.1)];
        // p25 → rank 3 → the first bin, one value: 2.0.
        assert_eq!(locate(&bins, 25.0), Some(Located::Value(2.0)));
        // p26 → rank 4 → first of the middle bin: its lowest.
        assert_eq!(locate(&bins, 26.0), Some(Located::Value(3.5)));
        // p40 → rank 5 → second of the middle bin: only a ranked read tells (3.6).
        assert_eq!(
            locate(&bins, 40.0),
            Some(Located::InBin {
                bin: 1,
                position: 2
            })
        );
        // p50 → rank 6 → last of the middle bin: its highest.
        assert_eq!(locate(&bins, 50.0), Some(Located::Value(3.9)));
        // p51 → rank 7 → the last bin.
        assert_eq!(locate(&bins, 51.0), Some(Located::Value(4.1)));
        assert_eq!(locate(&bins, 100.0), Some(Located::Value(4.1)));
        // Empty bins are passed over; no values, no percentile.
        let sparse = [bin(0, 0.0, 0.0), bin(2, 1.0, 1.5), bin(0, 0.0, 0.0)];
        assert_eq!(locate(&sparse, 5.0), Some(Located::Value(1.0)));
        assert_eq!(locate(&sparse, 99.0), Some(Located::Value(1.5)));
        assert_eq!(locate(&[bin(0, 0.0, 0.0)], 50.0), None);
        assert_eq!(locate(&[], 50.0), None);
        // Against the plain definition: wherever the bins tell a value, it is the rank's.
        let values: Vec<f64> = (0..97).map(|i| f64::from((i * 37) % 50) / 10.0).collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let mut bins = [Bin::default(); 6];
        for &v in &values {
            bins[((v / 1.0) as usize).min(5)].add(1, v, v);
        }
        for p in [0.0, 1.0, 5.0, 25.0, 50.0, 77.0, 95.0, 99.0, 100.0] {
            match locate(&bins, p).expect("values") {
                Located::Value(v) => assert_eq!(Some(v), rank_of_sorted(&sorted, p), "p{p}"),
                Located::InBin { bin, position } => {
                    let below: u64 = bins[..bin].iter().map(|b| b.count).sum();
                    let r = (below + position) as usize;
                    assert_eq!(Some(sorted[r - 1]), rank_of_sorted(&sorted, p), "p{p}");
                    assert!(bins[bin].lo <= sorted[r - 1] && sorted[r - 1] <= bins[bin].hi);
                }
            }
        }
    }

    #[test]
    fn mos_edges_are_the_bins_edges() {
        assert_eq!(MOS_EDGES.len(), MOS_BINS - 1);
        for (i, &edge) in MOS_EDGES.iter().enumerate() {
            // The edge is in bin i + 1, the double just below it in bin i.
            assert_eq!(mos_bin(edge), i + 1, "edge {edge}");
            assert_eq!(
                mos_bin(f64::from_bits(edge.to_bits() - 1)),
                i,
                "below {edge}"
            );
        }
        // 3.6 is 3.5999999999999996 as a double, and still in [3.6, 3.7): its edge is below.
        assert!(MOS_EDGES[25] < 3.6 && 3.6 < MOS_EDGES[26]);
        // The store's bin (edges at or below) is mos_bin for every MOS the agent writes
        // (six decimals), over the whole range and beyond.
        for micro in (0..5_000_000u64).step_by(997) {
            let mos = micro as f64 / 1e6;
            let by_edges = MOS_EDGES.iter().filter(|&&e| e <= mos).count();
            assert_eq!(by_edges, mos_bin(mos), "{mos}");
        }
    }

    #[test]
    fn mos_bins_hold_their_lower_edge() {
        assert_eq!(mos_bin(1.0), 0);
        assert_eq!(mos_bin(3.6), 26);
        assert_eq!(mos_bin(3.599), 25);
        assert_eq!(mos_bin(4.5), 34);
        assert_eq!(mos_bin(4.49), 34);
        assert_eq!(mos_bin(0.5), 0);
    }

    #[test]
    fn clear_call_ids_never_reach_the_report() {
        let call = |id: Option<&str>, key: &str| CallAggregate {
            scope: String::new(),
            agent_id: "a1".into(),
            call_key: key.into(),
            call_id: id.map(str::to_owned),
            streams: 2,
            first_start_ns: 0,
            last_end_ns: 1,
            last_start_ns: 0,
            min_mos: None,
            max_loss_pct: 0.0,
            max_jitter_ms: None,
            mos_stream_id: None,
            mos_codec: None,
        };
        assert_eq!(
            call_pseudonym(&call(
                Some("anon:0123456789abcdef"),
                "anon:0123456789abcdef"
            )),
            "anon:0123456789abcdef"
        );
        assert_eq!(call_pseudonym(&call(None, "stream:00ab")), "stream:00ab");
        let clear = call_pseudonym(&call(
            Some("a84b4c76e66710@pc33.example.com"),
            "a84b4c76e66710@pc33.example.com",
        ));
        assert!(clear.starts_with("hash:") && clear.len() == 21, "{clear}");
        assert!(!clear.contains("pc33"));
    }

    #[test]
    fn timeline_spans_intersect() {
        assert_eq!(
            intersect(&[(0, 10), (20, 30)], &[(5, 25)]),
            vec![(5, 10), (20, 25)]
        );
        assert!(intersect(&[(0, 10)], &[]).is_empty());
    }
}
