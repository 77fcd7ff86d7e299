//! Folds a period's stream reports into [`PeriodFacts`] one report at a time, in bounded
//! memory, so that the caller can stream them from the store page by page instead of holding
//! the whole period (200,000 reports took 583 MB as one `Vec`).
//!
//! What the fold keeps, whatever the number of reports:
//! - the merged jitter histogram (fixed size, see `voqa_wire::histogram`) and a few counters;
//! - per call of the period, 32 bytes: a 128-bit keyed hash of its identity and its worst MOS
//!   and loss so far. A call's streams may end hours apart, so its final reports can arrive on
//!   any page; this table is the only state that grows, with the number of distinct calls
//!   (not reports): about 37 bytes per call at the table's 7/8 load plus up to 2× while it
//!   grows, i.e. at most ~8 MB for 100,000 calls ([`ReportFold::retained_bytes`]);
//! - the evidence: at most [`EVIDENCE_LIMIT`] worst breaching calls per commitment with
//!   their strings (call id, agent, stream, addresses).
//!
//! Results do not depend on the order the reports arrive in, and equal those of folding the
//! whole period at once (tests compare with that former implementation). A call's value only
//! ever gets worse as its streams arrive, and the report that makes it worse is in hand at that
//! moment, so the evidence list can be kept exactly: a call leaves it only when
//! [`EVIDENCE_LIMIT`] worse calls are known, and returns only by getting worse again.
//!
//! Pure: no I/O, no clock; it must not keep reports or anything per report.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

use voqa_wire::StreamReport;
use voqa_wire::histogram::decode_jitter_histogram;

use super::commitments::{Customer, Subnet, parsed_subnets, report_in_subnets};
use super::evaluate::{BreachingCall, CallFacts, EVIDENCE_LIMIT, JitterFacts, PeriodFacts};

/// Identity of a call: its call id as seen by one agent, or `(agent, stream_id)` for a
/// stream without one. A call through two of a customer's monitored hosts is two measured
/// legs, each judged on its own (as the store's per-call aggregates count them). The derived
/// order (call ids before lone streams, then agent, then id) breaks ties between equally bad
/// calls in the evidence.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum CallKey<'a> {
    Call(&'a str, &'a str),
    Stream(&'a str, &'a str),
}

fn call_key(report: &StreamReport) -> CallKey<'_> {
    match report.call_id.as_deref() {
        Some(id) if !id.is_empty() => CallKey::Call(&report.agent_id, id),
        _ => CallKey::Stream(&report.agent_id, &report.stream_id),
    }
}

/// 128-bit keyed hash of a call key: two independent randomly keyed SipHashes.
///
/// The per-call table is keyed by this rather than by the strings, which keeps an entry at 32
/// bytes whatever the length of the ids. Two different calls share an identity with
/// probability about n²/2¹²⁹ (≈ 10⁻²⁷ for a million calls), and the random keys keep anyone
/// from constructing such a pair.
struct CallIdentity(RandomState, RandomState);

impl CallIdentity {
    fn new() -> Self {
        Self(RandomState::new(), RandomState::new())
    }

    fn of(&self, key: &CallKey<'_>) -> CallId {
        CallId([self.0.hash_one(key), self.1.hash_one(key)])
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct CallId([u64; 2]);

impl Hash for CallId {
    // Already a keyed random hash: its first word is the table's hash, unmixed.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0[0]);
    }
}

/// Passes [`CallId`]'s first word through as the hash.
#[derive(Default)]
struct FirstWord(u64);

impl Hasher for FirstWord {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `CallId`; fold anything else in all the same.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, word: u64) {
        self.0 = word;
    }
}

/// A call's worst MOS (lowest) and loss (highest) so far; NaN for none yet (real values are
/// finite: non-finite ones are left out like missing ones).
#[derive(Clone, Copy)]
struct CallWorst {
    mos: f64,
    loss: f64,
}

/// How a new value compares with a call's worst so far.
enum Change {
    /// Not worse: nothing to do.
    None,
    /// Equal: the stream setting it may change (ties go to the lower stream id).
    Tie,
    /// Worse than the previous value (`None`: the call's first value).
    Worse(Option<f64>),
}

fn change(current: &mut f64, candidate: f64, worse: fn(f64, f64) -> bool) -> Change {
    if current.is_nan() {
        *current = candidate;
        Change::Worse(None)
    } else if worse(candidate, *current) {
        let previous = *current;
        *current = candidate;
        Change::Worse(Some(previous))
    } else if candidate == *current {
        Change::Tie
    } else {
        Change::None
    }
}

fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

/// The owned form of a [`CallKey`], kept for evidence entries only.
struct OwnedKey {
    lone_stream: bool,
    agent: String,
    id: String,
}

impl OwnedKey {
    fn key(&self) -> CallKey<'_> {
        if self.lone_stream {
            CallKey::Stream(&self.agent, &self.id)
        } else {
            CallKey::Call(&self.agent, &self.id)
        }
    }
}

/// A breaching call in an evidence list.
struct Entry {
    value: f64,
    key: OwnedKey,
    stream_id: String,
    src: String,
    dst: String,
}

/// The [`EVIDENCE_LIMIT`] worst breaching calls, worst first: by value (`descending` for
/// loss, ascending for MOS, in `f64::total_cmp` order), then by call key.
struct Worst {
    descending: bool,
    entries: Vec<Entry>,
}

impl Worst {
    fn new(descending: bool) -> Self {
        Self {
            descending,
            entries: Vec::new(),
        }
    }

    fn order(&self, a: (f64, CallKey<'_>), b: (f64, CallKey<'_>)) -> Ordering {
        let values = if self.descending {
            b.0.total_cmp(&a.0)
        } else {
            a.0.total_cmp(&b.0)
        };
        values.then_with(|| a.1.cmp(&b.1))
    }

    fn find(&self, value: f64, key: CallKey<'_>) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|e| self.order((e.value, e.key.key()), (value, key)))
    }

    /// The call of `report` got the breaching value `value` (`change` from its previous one).
    fn update(&mut self, change: &Change, value: f64, report: &StreamReport) {
        let key = call_key(report);
        match *change {
            Change::None => {}
            Change::Tie => {
                // Listed under the same value: the lower stream id sets it.
                if let Ok(i) = self.find(value, key) {
                    let entry = &mut self.entries[i];
                    if report.stream_id < entry.stream_id {
                        entry.stream_id.clone_from(&report.stream_id);
                        entry.src.clone_from(&report.src);
                        entry.dst.clone_from(&report.dst);
                    }
                }
            }
            Change::Worse(previous) => {
                if let Some(previous) = previous
                    && let Ok(i) = self.find(previous, key)
                {
                    self.entries.remove(i);
                }
                let (Err(at) | Ok(at)) = self.find(value, key);
                if at >= EVIDENCE_LIMIT {
                    return;
                }
                let (lone_stream, agent, id) = match key {
                    CallKey::Call(agent, id) => (false, agent, id),
                    CallKey::Stream(agent, id) => (true, agent, id),
                };
                self.entries.insert(
                    at,
                    Entry {
                        value,
                        key: OwnedKey {
                            lone_stream,
                            agent: agent.to_owned(),
                            id: id.to_owned(),
                        },
                        stream_id: report.stream_id.clone(),
                        src: report.src.clone(),
                        dst: report.dst.clone(),
                    },
                );
                self.entries.truncate(EVIDENCE_LIMIT);
            }
        }
    }

    fn finish(self) -> Vec<BreachingCall> {
        self.entries
            .into_iter()
            .map(|e| BreachingCall {
                call_id: (!e.key.lone_stream).then_some(e.key.id),
                value: e.value,
                agent: e.key.agent,
                worst_stream: Some(e.stream_id),
                src: Some(e.src),
                dst: Some(e.dst),
            })
            .collect()
    }

    fn retained_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self
                .entries
                .iter()
                .map(|e| {
                    e.key.agent.capacity()
                        + e.key.id.capacity()
                        + e.stream_id.capacity()
                        + e.src.capacity()
                        + e.dst.capacity()
                })
                .sum::<usize>()
    }
}

/// The period's stream reports folded one by one into [`PeriodFacts`] (see the module doc
/// for what it keeps). A report counts when its agent serves the customer, its
/// `window_start` lies in `[from_ns, to_ns)` and an endpoint is in the customer's subnets;
/// others are ignored, so a wider query cannot skew the result. A call is judged by its worst
/// stream's whole-stream totals (final reports).
pub struct ReportFold {
    agents: Vec<String>,
    subnets: Vec<Subnet>,
    from_ns: i64,
    to_ns: i64,
    mos_min: f64,
    loss_max_pct: f64,
    identity: CallIdentity,
    calls: HashMap<CallId, CallWorst, BuildHasherDefault<FirstWord>>,
    jitter: JitterFacts,
    reports_used: u64,
    windows_with_drops: u64,
    low_mos: Worst,
    high_loss: Worst,
}

impl std::fmt::Debug for ReportFold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportFold")
            .field("from_ns", &self.from_ns)
            .field("to_ns", &self.to_ns)
            .field("reports_used", &self.reports_used)
            .field("calls", &self.calls.len())
            .finish_non_exhaustive()
    }
}

impl ReportFold {
    pub fn new(customer: &Customer, from_ns: i64, to_ns: i64) -> Self {
        Self {
            agents: customer.agents.clone(),
            subnets: parsed_subnets(customer),
            from_ns,
            to_ns,
            mos_min: customer.commitments.mos_min,
            loss_max_pct: customer.commitments.loss_max_pct,
            identity: CallIdentity::new(),
            calls: HashMap::default(),
            jitter: JitterFacts::default(),
            reports_used: 0,
            windows_with_drops: 0,
            low_mos: Worst::new(false),
            high_loss: Worst::new(true),
        }
    }

    /// Folds one report in (or ignores it, see [`ReportFold`]).
    pub fn add(&mut self, report: &StreamReport) {
        let belongs = self.agents.contains(&report.agent_id)
            && (self.from_ns..self.to_ns).contains(&report.window_start.as_ns())
            && report_in_subnets(&self.subnets, report);
        if !belongs {
            return;
        }
        self.reports_used += 1;
        if report.capture_drops > 0 {
            self.windows_with_drops += 1;
        }
        let jitter = &mut self.jitter;
        jitter.windows += 1;
        jitter.single_windows += 1;
        // The collector validated every stored histogram at ingest; one that still fails to
        // decode is left out and counted like a missing one.
        match report
            .jitter_histogram
            .as_deref()
            .map(decode_jitter_histogram)
        {
            Some(Ok(h)) if jitter.histogram.add(&h).is_ok() => {}
            _ if report.jitter_samples > 0 => {
                jitter.add_without_histogram(&report.agent_id, report.window_start.as_ns(), 1)
            }
            _ => {}
        }
        if !report.is_final {
            return;
        }
        let totals = report.totals.as_ref();
        let mos = finite(totals.and_then(|t| t.mos));
        let loss = finite(totals.map(|t| t.effective_loss_pct));
        let id = self.identity.of(&call_key(report));
        let call = self.calls.entry(id).or_insert(CallWorst {
            mos: f64::NAN,
            loss: f64::NAN,
        });
        if let Some(mos) = mos {
            let change = change(&mut call.mos, mos, |a, b| a < b);
            if mos < self.mos_min {
                self.low_mos.update(&change, mos, report);
            }
        }
        if let Some(loss) = loss {
            let change = change(&mut call.loss, loss, |a, b| a > b);
            if loss > self.loss_max_pct {
                self.high_loss.update(&change, loss, report);
            }
        }
    }

    /// The facts of every report folded in.
    pub fn finish(self) -> PeriodFacts {
        let mut facts = CallFacts {
            calls: self.calls.len() as u64,
            ..CallFacts::default()
        };
        for call in self.calls.values() {
            if !call.mos.is_nan() {
                facts.with_mos += 1;
                facts.meeting_mos += u64::from(call.mos >= self.mos_min);
            }
            if !call.loss.is_nan() {
                facts.with_loss += 1;
                facts.within_loss += u64::from(call.loss <= self.loss_max_pct);
                facts.worst_loss = Some(facts.worst_loss.map_or(call.loss, |w| w.max(call.loss)));
            }
        }
        facts.low_mos = self.low_mos.finish();
        facts.high_loss = self.high_loss.finish();
        PeriodFacts {
            calls: facts,
            jitter: self.jitter,
            reports_used: self.reports_used,
            windows_with_drops: self.windows_with_drops,
            call_counts: None,
        }
    }

    /// Distinct calls seen so far (the size of the per-call table).
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// Heap bytes the fold holds besides its fixed-size histogram: the per-call table at its
    /// current capacity (an entry plus a control byte per slot) and the evidence lists with
    /// their strings. Independent of the number of reports folded; grows with distinct calls.
    pub fn retained_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(CallId, CallWorst)>() + 1;
        self.calls.capacity() * slot
            + self.low_mos.retained_bytes()
            + self.high_loss.retained_bytes()
    }
}

/// Folds the period's stream reports into [`PeriodFacts`] (see [`ReportFold`]).
pub fn facts_from_reports(
    customer: &Customer,
    from_ns: i64,
    to_ns: i64,
    reports: &[StreamReport],
) -> PeriodFacts {
    let mut fold = ReportFold::new(customer, from_ns, to_ns);
    for report in reports {
        fold.add(report);
    }
    fold.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::commitments::Commitments;
    use proptest::prelude::*;
    use voqa_wire::histogram::{HistogramEncoder, new_jitter_histogram, quantile_ms};
    use voqa_wire::{StreamSummary, Timestamp, Transitions};

    const S: i64 = 1_000_000_000;

    /// The fold as it was before it streamed (every final report of the period held, sorted
    /// by call): the reference the streaming fold must equal.
    fn reference(
        customer: &Customer,
        from_ns: i64,
        to_ns: i64,
        reports: &[StreamReport],
    ) -> PeriodFacts {
        fn worse_of<'a>(
            current: Option<(f64, &'a StreamReport)>,
            candidate: (f64, &'a StreamReport),
            worse: fn(f64, f64) -> bool,
        ) -> Option<(f64, &'a StreamReport)> {
            match current {
                Some((value, report))
                    if !worse(candidate.0, value)
                        && (candidate.0 != value || candidate.1.stream_id >= report.stream_id) =>
                {
                    current
                }
                _ => Some(candidate),
            }
        }
        fn worst(
            mut entries: Vec<(f64, &StreamReport)>,
            worse_first: fn(f64, f64) -> Ordering,
        ) -> Vec<BreachingCall> {
            entries.sort_by(|a, b| {
                worse_first(a.0, b.0).then_with(|| call_key(a.1).cmp(&call_key(b.1)))
            });
            entries.truncate(EVIDENCE_LIMIT);
            entries
                .into_iter()
                .map(|(value, report)| BreachingCall {
                    call_id: match call_key(report) {
                        CallKey::Call(_, id) => Some(id.to_owned()),
                        CallKey::Stream(..) => None,
                    },
                    value,
                    worst_stream: Some(report.stream_id.clone()),
                    agent: report.agent_id.clone(),
                    src: Some(report.src.clone()),
                    dst: Some(report.dst.clone()),
                })
                .collect()
        }
        let commitments = &customer.commitments;
        let subnets = parsed_subnets(customer);
        let mut finals: Vec<(CallKey<'_>, Option<f64>, Option<f64>, &StreamReport)> = Vec::new();
        let mut jitter = JitterFacts::default();
        let mut windows_with_drops = 0u64;
        let mut reports_used = 0u64;
        for report in reports {
            let belongs = customer.agents.contains(&report.agent_id)
                && (from_ns..to_ns).contains(&report.window_start.as_ns())
                && report_in_subnets(&subnets, report);
            if !belongs {
                continue;
            }
            reports_used += 1;
            if report.capture_drops > 0 {
                windows_with_drops += 1;
            }
            jitter.windows += 1;
            jitter.single_windows += 1;
            match report
                .jitter_histogram
                .as_deref()
                .map(decode_jitter_histogram)
            {
                Some(Ok(h)) if jitter.histogram.add(&h).is_ok() => {}
                _ if report.jitter_samples > 0 => {
                    jitter.add_without_histogram(&report.agent_id, report.window_start.as_ns(), 1)
                }
                _ => {}
            }
            if report.is_final {
                let totals = report.totals.as_ref();
                finals.push((
                    call_key(report),
                    finite(totals.and_then(|t| t.mos)),
                    finite(totals.map(|t| t.effective_loss_pct)),
                    report,
                ));
            }
        }
        finals.sort_by_key(|stream| stream.0);
        let mut calls = CallFacts::default();
        let mut low_mos = Vec::new();
        let mut high_loss = Vec::new();
        for call in finals.chunk_by(|a, b| a.0 == b.0) {
            calls.calls += 1;
            let mut call_mos = None;
            let mut call_loss = None;
            for &(_, mos, loss, report) in call {
                if let Some(mos) = mos {
                    call_mos = worse_of(call_mos, (mos, report), |a, b| a < b);
                }
                if let Some(loss) = loss {
                    call_loss = worse_of(call_loss, (loss, report), |a, b| a > b);
                }
            }
            if let Some((mos, report)) = call_mos {
                calls.with_mos += 1;
                if mos < commitments.mos_min {
                    low_mos.push((mos, report));
                }
            }
            if let Some((loss, report)) = call_loss {
                calls.with_loss += 1;
                calls.worst_loss = Some(calls.worst_loss.map_or(loss, |w: f64| w.max(loss)));
                if loss > commitments.loss_max_pct {
                    high_loss.push((loss, report));
                }
            }
        }
        calls.meeting_mos = calls.with_mos - low_mos.len() as u64;
        calls.within_loss = calls.with_loss - high_loss.len() as u64;
        calls.low_mos = worst(low_mos, |a, b| a.total_cmp(&b));
        calls.high_loss = worst(high_loss, |a, b| b.total_cmp(&a));
        PeriodFacts {
            calls,
            jitter,
            reports_used,
            windows_with_drops,
            call_counts: None,
        }
    }

    /// Everything in the facts, as comparable text (the histogram by its percentiles).
    fn summary(facts: &PeriodFacts) -> String {
        let j = &facts.jitter;
        let quantiles: Vec<Option<f64>> = [0.0, 0.5, 0.95, 0.99, 1.0]
            .iter()
            .map(|&q| quantile_ms(&j.histogram, q))
            .collect();
        format!(
            "{:?}\njitter {} {} {} {} {} {:?}\nreports {} drops {}",
            facts.calls,
            j.histogram.len(),
            j.windows,
            j.windows_without_histogram,
            j.hourly_rollups,
            j.single_windows,
            quantiles,
            facts.reports_used,
            facts.windows_with_drops
        )
    }

    fn customer(mos_min: f64, loss_max_pct: f64) -> Customer {
        Customer {
            id: "acme".into(),
            name: "ACME".into(),
            agents: vec!["a1".into(), "a2".into()],
            subnets: vec!["203.0.113.0/24".into()],
            time_zone: "UTC".into(),
            report_recipients: Vec::new(),
            report_webhook: None,
            commitments: Commitments {
                mos_min,
                calls_meeting_pct: 95.0,
                loss_max_pct,
                jitter_p95_max_ms: 30.0,
                uptime_min_pct: 99.9,
                maintenance: vec![],
                heartbeat_interval_s: 15,
                asr_min_pct: None,
                ner_min_pct: None,
                pdd_p95_max_ms: None,
                one_way_audio_max_pct: None,
            },
        }
    }

    /// A window's histogram of 100 packets at `jitter_us` (encoded once per value: encoding
    /// dominates the tests' time otherwise).
    fn histogram(jitter_us: u64) -> String {
        thread_local! {
            static CACHE: std::cell::RefCell<HashMap<u64, String>> = Default::default();
        }
        CACHE.with_borrow_mut(|cache| {
            cache
                .entry(jitter_us)
                .or_insert_with(|| {
                    let mut h = new_jitter_histogram();
                    h.record_n(jitter_us, 100).expect("in range");
                    HistogramEncoder::new().encode(&h).expect("encodes")
                })
                .clone()
        })
    }

    /// A report: interval when `figures` is `None`, final with `(mos, loss)` otherwise.
    #[allow(clippy::too_many_arguments)]
    fn report(
        agent: &str,
        stream: &str,
        call: Option<&str>,
        start_ns: i64,
        src: &str,
        jitter_us: Option<u64>,
        drops: u64,
        figures: Option<(Option<f64>, f64)>,
    ) -> StreamReport {
        StreamReport {
            agent_id: agent.into(),
            stream_id: stream.into(),
            src: src.into(),
            dst: "198.51.100.20:50000".into(),
            ssrc: "0x00000001".into(),
            payload_type: 0,
            codec: "PCMU".into(),
            clock_rate: Some(8000),
            call_id: call.map(str::to_owned),
            window_start: Timestamp::from_ns(start_ns),
            window_end: Timestamp::from_ns(start_ns + 10 * S),
            is_final: figures.is_some(),
            end_reason: figures.map(|_| "bye".to_owned()),
            packets: 100,
            expected: 100,
            lost: 0,
            duplicates: 0,
            reordered: 0,
            jitter_ms: None,
            max_jitter_ms: None,
            mean_jitter_ms: None,
            jitter_sum_ms: 0.0,
            jitter_samples: if jitter_us.is_some() { 100 } else { 7 },
            jitter_histogram: jitter_us.map(histogram),
            max_delta_ms: 20.0,
            transitions: Transitions::default(),
            burst_ratio: 1.0,
            jb_discarded: 0,
            effective_loss_pct: 0.0,
            rtt_ms: None,
            delay_ms: None,
            r_factor: None,
            mos: None,
            capture_drops: drops,
            totals: figures.map(|(mos, loss)| StreamSummary {
                src: src.into(),
                dst: "198.51.100.20:50000".into(),
                call_id: call.map(str::to_owned),
                ..crate::sla::evaluate::tests::totals(mos, loss)
            }),
        }
    }

    /// One generated report: few agents, calls, streams and values, so that calls span many
    /// streams, values tie and lone streams mix with call ids; some reports lie outside the
    /// customer (agent, time, subnet). A stream keeps its addresses, as real ones do (its id
    /// comes from them).
    fn arbitrary_report() -> impl Strategy<Value = StreamReport> {
        (
            0usize..3,
            0u8..6,
            prop::option::weighted(0.8, 0u8..40),
            -2i64..20,
            prop::option::of(prop::sample::select(vec![
                500u64, 2_000, 12_500, 40_000, 60_000,
            ])),
            0u64..3,
            prop::option::weighted(
                0.6,
                (
                    prop::option::weighted(
                        0.8,
                        prop::sample::select(vec![
                            1.0,
                            3.0,
                            3.5,
                            3.9,
                            3.99,
                            4.0,
                            4.2,
                            4.4,
                            f64::NAN,
                        ]),
                    ),
                    prop::sample::select(vec![0.0, 0.5, 1.0, 1.01, 2.0, 5.0, 50.0, f64::INFINITY]),
                ),
            ),
        )
            .prop_map(|(agent, stream, call, minute, jitter, drops, figures)| {
                let agent = ["a1", "a2", "z9"][agent];
                let src = [
                    "203.0.113.1:4000",
                    "203.0.113.2:4000",
                    "192.0.2.1:4000",
                    "203.0.113.3:4000",
                ][usize::from(stream % 4)];
                let call = call.map(|c| format!("call-{c}"));
                report(
                    agent,
                    &format!("s{stream}"),
                    call.as_deref(),
                    minute * 60 * S,
                    src,
                    jitter,
                    drops,
                    figures,
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Streamed in any order and split into any pages, the fold equals the former
        /// whole-period fold, evidence included (with a small evidence limit in play: at most
        /// 240 calls, so lists of up to 100 entries are cut).
        #[test]
        fn streaming_fold_equals_the_whole_period_fold(
            reports in prop::collection::vec(arbitrary_report(), 0..400),
            seed in any::<u64>(),
            (mos_min, loss_max) in prop::sample::select(vec![(4.0, 1.0), (4.5, 0.0), (3.0, 10.0)]),
        ) {
            let customer = customer(mos_min, loss_max);
            let (from, to) = (0, 15 * 60 * S);
            let expected = summary(&reference(&customer, from, to, &reports));
            // A deterministic shuffle of the input order from the seed.
            let mut shuffled = reports.clone();
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            for input in [&reports, &shuffled] {
                let mut fold = ReportFold::new(&customer, from, to);
                for page in input.chunks(7) {
                    for report in page {
                        fold.add(report);
                    }
                }
                prop_assert_eq!(&summary(&fold.finish()), &expected);
            }
        }
    }

    /// Calls with many breaching streams each: the evidence holds the worst calls with the
    /// stream that set the value (lowest stream id among equal ones), as the reference does.
    #[test]
    fn evidence_keeps_the_worst_calls_and_their_streams() {
        let customer = customer(4.0, 1.0);
        let mut reports = Vec::new();
        // 300 calls; call i's streams have MOS 3.0 + (i % 7) / 10 and a tie on the worst.
        for i in 0..300 {
            let call = format!("c{i:03}");
            for stream in ["s9", "s1", "s5"] {
                let mos = 3.0 + f64::from(i % 7) / 10.0 + if stream == "s5" { 0.05 } else { 0.0 };
                let loss = 1.0 + f64::from(i % 11) / 10.0;
                reports.push(report(
                    "a1",
                    stream,
                    Some(&call),
                    0,
                    "203.0.113.1:4000",
                    None,
                    0,
                    Some((Some(mos), loss)),
                ));
            }
        }
        let facts = facts_from_reports(&customer, 0, S, &reports);
        assert_eq!(
            summary(&facts),
            summary(&reference(&customer, 0, S, &reports))
        );
        assert_eq!(facts.calls.calls, 300);
        assert_eq!(facts.calls.low_mos.len(), EVIDENCE_LIMIT);
        // MOS 3.0: calls 0, 7, 14, … (43 of them), the tie between s9 and s1 goes to s1.
        assert_eq!(facts.calls.low_mos[0].call_id.as_deref(), Some("c000"));
        assert_eq!(facts.calls.low_mos[0].worst_stream.as_deref(), Some("s1"));
        assert_eq!(facts.calls.low_mos[42].call_id.as_deref(), Some("c294"));
        assert_eq!(facts.calls.low_mos[43].value, 3.1);
        // Loss 2.0: calls 10, 21, …; 272 of 300 calls breach 1.0 (those with i % 11 > 0).
        assert_eq!(facts.calls.high_loss[0].value, 2.0);
        assert_eq!(facts.calls.within_loss, 28);
    }

    /// What the fold holds does not grow with reports: 100,000 interval windows and finals
    /// of the same 100 calls leave it where 100 calls leave it.
    #[test]
    fn retained_state_depends_on_calls_not_reports() {
        let customer = customer(4.0, 1.0);
        let fill = |repeats: usize| {
            let mut fold = ReportFold::new(&customer, 0, 3600 * S);
            let mut interval = report("a1", "s", None, 0, "203.0.113.1:4000", Some(1_000), 1, None);
            let mut last = fold.retained_bytes();
            for round in 0..repeats {
                for call in 0..100 {
                    let id = format!("call-{call}");
                    interval.call_id = Some(id.clone());
                    fold.add(&interval);
                    let mos = 3.0 + (round % 5) as f64 / 10.0;
                    fold.add(&report(
                        "a1",
                        &format!("s{round}"),
                        Some(&id),
                        0,
                        "203.0.113.1:4000",
                        None,
                        0,
                        Some((Some(mos), 2.0)),
                    ));
                }
                last = fold.retained_bytes();
            }
            (fold.calls(), last, fold.finish())
        };
        let (calls_few, bytes_few, few) = fill(1);
        let (calls_many, bytes_many, many) = fill(500);
        assert_eq!((calls_few, calls_many), (100, 100));
        assert_eq!(many.reports_used, 100_000);
        assert_eq!(few.calls.low_mos.len(), 100);
        // The same calls, possibly other streams and values in the evidence: the table is
        // the same size, the strings differ by a few bytes at most.
        assert!(
            bytes_many <= bytes_few + 100 * 8,
            "{bytes_few} bytes after 200 reports, {bytes_many} after 100,000"
        );
        // 100 calls: a 128-slot table (33 bytes a slot) and two lists of 100 entries.
        assert!(bytes_many < 64 * 1024, "{bytes_many}");
    }

    /// The per-call table is the part that grows: bounded by about 80 bytes per call.
    #[test]
    fn per_call_state_is_compact() {
        let customer = customer(1.0, 100.0);
        let mut fold = ReportFold::new(&customer, 0, S);
        for call in 0..100_000 {
            fold.add(&report(
                "a1",
                "stream-with-a-long-identifier-0123456789abcdef",
                Some(&format!("a-long-call-id-{call:08}@pbx.example.com")),
                0,
                "203.0.113.1:4000",
                None,
                0,
                Some((Some(4.2), 0.1)),
            ));
        }
        assert_eq!(fold.calls(), 100_000);
        // No call breaches (MOS ≥ 1, loss ≤ 100): no strings kept at all.
        assert!(
            fold.retained_bytes() <= 100_000 * 80,
            "{} bytes for 100,000 calls",
            fold.retained_bytes()
        );
    }
}
