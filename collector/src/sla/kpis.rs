//! Call KPIs (issue 12): how one call record counts (`CallCounts::of`), the mergeable counts
//! the store keeps per customer-hour, and the KPIs of RFC 6076 and ITU-T E.411/E.425 computed
//! from those counts (`Kpis::from_counts`).
//!
//! Pure arithmetic: no I/O, no clock, no knowledge of tables or HTTP. Every KPI is a function
//! of sums, so counts of hours, days, peers and agents merge by addition (and one maximum)
//! and a month of calls is answered from aggregates, never from the records.
//!
//! Classification of a call (one outcome each, first match wins; written down in the README):
//! 1. `answered`: a 2xx final response (or an answer time) to the setup's last INVITE;
//! 2. `redirected`: 3xx (RFC 6076 removes these from the SER/SEER denominators);
//! 3. `user_busy`: 486 Busy Here or 600 Busy Everywhere;
//! 4. `no_answer`: the far end was alerting (a 180/183 was seen) and then 480, 487, 408, or a
//!    CANCEL without a final response ended the call: the called party did not pick up
//!    (E.425 "ring no answer"), whoever gave up first;
//! 5. `abandoned`: CANCEL (or 487) before any alerting: the caller gave up before the network
//!    reached the called party, which E.425 does not count as an effective outcome;
//! 6. `terminal_reject`: 403, 404, 410, 480 (no alerting), 484, 485, 603, 604, 606 — the called
//!    user or its terminal refused or is unreachable, not a network fault;
//! 7. anything else is a failure (other 4xx, 5xx, 6xx, no final response).

use serde::Serialize;
use utoipa::ToSchema;
use voqa_wire::CallSummary;

/// Upper edges (ms, inclusive) of the SRD histogram's buckets; one more bucket holds the
/// rest. A fixed layout, so that histograms of any hours, peers or agents merge by addition.
pub const SRD_EDGES_MS: [u64; 15] = [
    100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 4_000, 6_000, 8_000, 12_000, 20_000,
    30_000,
];

/// Buckets of the SRD histogram: one per edge and the overflow. The SDD histogram uses the
/// same layout (a BYE's answer normally takes milliseconds, a lost one seconds of Timer E
/// retransmissions: the same range).
pub const SRD_BUCKETS: usize = SRD_EDGES_MS.len() + 1;

/// The media problem kinds the agent reports, in the order `CallCounts` counts them.
pub const PROBLEM_KINDS: [&str; 4] = [
    "no_rtp",
    "one_way_audio",
    "rtp_stopped",
    "media_address_mismatch",
];

/// Counts of a set of calls: everything the KPIs need, mergeable by `add`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Call records (each one INVITE dialog: a seizure in E.411 terms).
    pub attempts: u64,
    pub answered: u64,
    pub redirected: u64,
    /// Final responses by class (the call's final status; challenges excepted, see the agent).
    pub failed_4xx: u64,
    pub failed_5xx: u64,
    pub failed_6xx: u64,
    /// Unanswered calls without a final response (CANCEL without 487 seen, timeout, shutdown).
    pub no_final: u64,
    pub user_busy: u64,
    pub no_answer: u64,
    pub abandoned: u64,
    pub terminal_reject: u64,
    /// RFC 6076 §4.7 numerator: 200, 480, 486, 600 or 603 (2xx taken as 200).
    pub seer_effective: u64,
    /// RFC 6076 §4.8 numerator: 408, 500, 503 or 504.
    pub ineffective: u64,
    /// RFC 6076 §4.9: answered calls that ended with a BYE.
    pub completed: u64,
    /// Calls with an SRD, its sum and maximum (ms), and its histogram (`SRD_EDGES_MS`).
    pub srd_count: u64,
    pub srd_sum_ms: u64,
    pub srd_max_ms: u64,
    pub srd_buckets: [u64; SRD_BUCKETS],
    /// Answered calls with a duration, and its sum (ms).
    pub duration_count: u64,
    pub duration_sum_ms: u64,
    /// Answered calls with at least one media problem, and per kind (`PROBLEM_KINDS` order).
    pub problem_calls: u64,
    pub problems: [u64; PROBLEM_KINDS.len()],
    /// Calls with an SDD (ended by a BYE whose final response was seen), its sum and maximum
    /// (ms), and its histogram (`SRD_EDGES_MS`).
    pub sdd_count: u64,
    pub sdd_sum_ms: u64,
    pub sdd_max_ms: u64,
    pub sdd_buckets: [u64; SRD_BUCKETS],
}

/// The one outcome a call counts as (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    Redirected,
    UserBusy,
    NoAnswer,
    Abandoned,
    TerminalReject,
    Failed,
}

/// Classifies one call record.
pub fn outcome(call: &CallSummary) -> Outcome {
    let status = call.status.unwrap_or(0);
    let alerted = call.first_ringing.is_some();
    let cancelled = call.end_cause.as_deref() == Some("cancel");
    if (200..300).contains(&status) || (call.answer.is_some() && call.status.is_none()) {
        return Outcome::Answered;
    }
    match status {
        300..=399 => Outcome::Redirected,
        486 | 600 => Outcome::UserBusy,
        480 | 487 | 408 if alerted => Outcome::NoAnswer,
        0 if alerted && cancelled => Outcome::NoAnswer,
        487 => Outcome::Abandoned,
        0 if cancelled => Outcome::Abandoned,
        403 | 404 | 410 | 480 | 484 | 485 | 603 | 604 | 606 => Outcome::TerminalReject,
        _ => Outcome::Failed,
    }
}

/// Session request delay of one call in ms (RFC 6076 §4.3): from its first INVITE to the first
/// response other than 100 Trying — a 18x, else the 2xx, else the final failure response.
/// A challenged call's first INVITE is the challenged one, so the 401/407 round trip is part
/// of its SRD (the delay the caller waits through). None without both times.
pub fn srd_ms(call: &CallSummary) -> Option<u64> {
    let setup = call.setup?;
    let failure_response = (call.end_cause.as_deref() == Some("failure"))
        .then_some(call.end)
        .flatten();
    let first = call
        .first_provisional
        .or(call.answer)
        .or(failure_response)?;
    let ns = first.as_ns().checked_sub(setup.as_ns())?;
    (ns >= 0).then_some((ns / 1_000_000) as u64)
}

/// Session disconnect delay of one call in ms (RFC 6076 §4.4): from the BYE that ended it (the
/// record's `end`) to the first final response to that BYE (`bye_response`). Only calls ended
/// by a BYE have one; a BYE never answered in the capture has none (not a timeout value: the
/// agent cannot tell a lost response from one it did not capture).
pub fn sdd_ms(call: &CallSummary) -> Option<u64> {
    if call.end_cause.as_deref() != Some("bye") {
        return None;
    }
    let ns = call.bye_response?.as_ns().checked_sub(call.end?.as_ns())?;
    (ns >= 0).then_some((ns / 1_000_000) as u64)
}

/// The SRD bucket a delay falls in.
pub fn srd_bucket(ms: u64) -> usize {
    SRD_EDGES_MS
        .iter()
        .position(|&edge| ms <= edge)
        .unwrap_or(SRD_EDGES_MS.len())
}

impl CallCounts {
    /// What one call record adds.
    pub fn of(call: &CallSummary) -> Self {
        let mut c = CallCounts {
            attempts: 1,
            ..CallCounts::default()
        };
        let outcome = outcome(call);
        match outcome {
            Outcome::Answered => c.answered = 1,
            Outcome::Redirected => c.redirected = 1,
            Outcome::UserBusy => c.user_busy = 1,
            Outcome::NoAnswer => c.no_answer = 1,
            Outcome::Abandoned => c.abandoned = 1,
            Outcome::TerminalReject => c.terminal_reject = 1,
            Outcome::Failed => {}
        }
        if outcome != Outcome::Answered {
            match call.status {
                Some(400..=499) => c.failed_4xx = 1,
                Some(500..=599) => c.failed_5xx = 1,
                Some(600..=699) => c.failed_6xx = 1,
                None => c.no_final = 1,
                _ => {}
            }
        }
        let seer =
            outcome == Outcome::Answered || matches!(call.status, Some(480 | 486 | 600 | 603));
        c.seer_effective = u64::from(seer);
        c.ineffective = u64::from(matches!(call.status, Some(408 | 500 | 503 | 504)));
        if outcome == Outcome::Answered {
            c.completed = u64::from(call.end_cause.as_deref() == Some("bye"));
            if let Some(ms) = call.duration_ms {
                c.duration_count = 1;
                c.duration_sum_ms = ms;
            }
            for (index, kind) in PROBLEM_KINDS.iter().enumerate() {
                c.problems[index] = u64::from(call.problems.iter().any(|p| p.kind == *kind));
            }
            c.problem_calls = u64::from(!call.problems.is_empty());
        }
        if let Some(ms) = srd_ms(call) {
            c.srd_count = 1;
            c.srd_sum_ms = ms;
            c.srd_max_ms = ms;
            c.srd_buckets[srd_bucket(ms)] = 1;
        }
        if let Some(ms) = sdd_ms(call) {
            c.sdd_count = 1;
            c.sdd_sum_ms = ms;
            c.sdd_max_ms = ms;
            c.sdd_buckets[srd_bucket(ms)] = 1;
        }
        c
    }

    /// Adds `other`'s counts (saturating: counts never wrap).
    pub fn add(&mut self, other: &CallCounts) {
        for (mine, theirs) in self.fields_mut().into_iter().zip(other.fields()) {
            *mine = mine.saturating_add(theirs);
        }
        for (mine, theirs) in self.srd_buckets.iter_mut().zip(other.srd_buckets) {
            *mine = mine.saturating_add(theirs);
        }
        for (mine, theirs) in self.problems.iter_mut().zip(other.problems) {
            *mine = mine.saturating_add(theirs);
        }
        for (mine, theirs) in self.sdd_buckets.iter_mut().zip(other.sdd_buckets) {
            *mine = mine.saturating_add(theirs);
        }
        self.srd_max_ms = self.srd_max_ms.max(other.srd_max_ms);
        self.sdd_max_ms = self.sdd_max_ms.max(other.sdd_max_ms);
    }

    /// The summed scalar counts in `COLUMNS` order (without the maxima, which merge by max).
    pub fn fields(&self) -> [u64; SUMMED] {
        [
            self.attempts,
            self.answered,
            self.redirected,
            self.failed_4xx,
            self.failed_5xx,
            self.failed_6xx,
            self.no_final,
            self.user_busy,
            self.no_answer,
            self.abandoned,
            self.terminal_reject,
            self.seer_effective,
            self.ineffective,
            self.completed,
            self.srd_count,
            self.srd_sum_ms,
            self.duration_count,
            self.duration_sum_ms,
            self.problem_calls,
            self.sdd_count,
            self.sdd_sum_ms,
        ]
    }

    fn fields_mut(&mut self) -> [&mut u64; SUMMED] {
        [
            &mut self.attempts,
            &mut self.answered,
            &mut self.redirected,
            &mut self.failed_4xx,
            &mut self.failed_5xx,
            &mut self.failed_6xx,
            &mut self.no_final,
            &mut self.user_busy,
            &mut self.no_answer,
            &mut self.abandoned,
            &mut self.terminal_reject,
            &mut self.seer_effective,
            &mut self.ineffective,
            &mut self.completed,
            &mut self.srd_count,
            &mut self.srd_sum_ms,
            &mut self.duration_count,
            &mut self.duration_sum_ms,
            &mut self.problem_calls,
            &mut self.sdd_count,
            &mut self.sdd_sum_ms,
        ]
    }

    /// Every stored value in [`columns`] order: the summed fields, the SRD buckets, the problem
    /// kinds, then `srd_max_ms`.
    pub fn values(&self) -> Vec<u64> {
        let mut values = self.fields().to_vec();
        values.extend(self.srd_buckets);
        values.extend(self.problems);
        values.push(self.srd_max_ms);
        values.extend(self.sdd_buckets);
        values.push(self.sdd_max_ms);
        values
    }

    /// The inverse of [`values`](Self::values); None when the count of values is wrong.
    pub fn from_values(values: &[u64]) -> Option<Self> {
        if values.len() != columns().len() {
            return None;
        }
        let mut c = CallCounts::default();
        for (field, value) in c.fields_mut().into_iter().zip(values) {
            *field = *value;
        }
        let rest = values.get(SUMMED..)?;
        c.srd_buckets.copy_from_slice(rest.get(..SRD_BUCKETS)?);
        let rest = rest.get(SRD_BUCKETS..)?;
        c.problems.copy_from_slice(rest.get(..PROBLEM_KINDS.len())?);
        c.srd_max_ms = *rest.get(PROBLEM_KINDS.len())?;
        let rest = rest.get(PROBLEM_KINDS.len() + 1..)?;
        c.sdd_buckets.copy_from_slice(rest.get(..SRD_BUCKETS)?);
        c.sdd_max_ms = *rest.get(SRD_BUCKETS)?;
        Some(c)
    }
}

/// Whether an aggregate column merges by maximum (`srd_max_ms`, `sdd_max_ms`) instead of sum.
pub fn merges_by_max(column: &str) -> bool {
    column.ends_with("_max_ms")
}

/// Scalar counts merged by sum.
pub const SUMMED: usize = 21;

/// The aggregate table's count columns, in [`CallCounts::values`] order; those ending in
/// `_max_ms` ([`merges_by_max`]) merge by maximum, every other by sum.
pub fn columns() -> Vec<String> {
    let mut names: Vec<String> = [
        "attempts",
        "answered",
        "redirected",
        "failed_4xx",
        "failed_5xx",
        "failed_6xx",
        "no_final",
        "user_busy",
        "no_answer",
        "abandoned",
        "terminal_reject",
        "seer_effective",
        "ineffective",
        "completed",
        "srd_count",
        "srd_sum_ms",
        "duration_count",
        "duration_sum_ms",
        "problem_calls",
        "sdd_count",
        "sdd_sum_ms",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    names.extend((0..SRD_BUCKETS).map(|i| format!("srd_b{i:02}")));
    names.extend(PROBLEM_KINDS.iter().map(|k| format!("p_{k}")));
    names.push("srd_max_ms".to_owned());
    names.extend((0..SRD_BUCKETS).map(|i| format!("sdd_b{i:02}")));
    names.push("sdd_max_ms".to_owned());
    names
}

/// The KPIs of a set of calls. Percentages are null when their denominator is zero.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Kpis {
    /// Call attempts (INVITE dialogs; E.411 seizures, RFC 6076 "total INVITE requests").
    pub attempts: u64,
    pub answered: u64,
    /// Answer-seizure ratio, ITU-T E.411: answered / attempts × 100.
    pub asr_pct: Option<f64>,
    /// Network effectiveness ratio, ITU-T E.425: (answered + user busy + ring no answer +
    /// terminal reject) / attempts × 100.
    pub ner_pct: Option<f64>,
    /// Session establishment ratio, RFC 6076 §4.6: answered / (attempts − 3xx) × 100.
    pub ser_pct: Option<f64>,
    /// Session establishment effectiveness ratio, RFC 6076 §4.7: (200 + 480 + 486 + 600 +
    /// 603) / (attempts − 3xx) × 100.
    pub seer_pct: Option<f64>,
    /// Ineffective session attempts, RFC 6076 §4.8: (408 + 500 + 503 + 504) / attempts × 100.
    pub isa_pct: Option<f64>,
    /// Session completion ratio, RFC 6076 §4.9: answered calls ended by a BYE / attempts × 100.
    pub scr_pct: Option<f64>,
    /// Session request delay (post-dial delay), RFC 6076 §4.3: mean, and the 95th percentile
    /// as an upper bound: the upper edge of the histogram bucket holding it, or the largest
    /// delay seen when that is lower (or beyond the last edge), ms.
    pub srd_mean_ms: Option<f64>,
    pub pdd_p95_ms: Option<u64>,
    /// Session duration, RFC 6076 §4.5: mean answer-to-end time of answered calls, ms.
    pub session_duration_mean_ms: Option<f64>,
    /// Session disconnect delay, RFC 6076 §4.4 (BYE → its first final response, calls ended
    /// by a BYE whose response was seen): mean, and the 95th percentile as an upper bound the
    /// way `pdd_p95_ms` is, ms.
    pub sdd_mean_ms: Option<f64>,
    pub sdd_p95_ms: Option<u64>,
    /// Calls by outcome (see the README's classification).
    pub user_busy: u64,
    pub no_answer: u64,
    pub abandoned: u64,
    pub terminal_reject: u64,
    pub redirected: u64,
    /// Unanswered calls by the class of their final response, and without one.
    pub failed_4xx: u64,
    pub failed_5xx: u64,
    pub failed_6xx: u64,
    pub no_final: u64,
    /// Answered calls with any media problem, and their share of answered calls.
    pub media_problem_calls: u64,
    pub media_problem_pct: Option<f64>,
    /// Answered calls with each kind of problem.
    pub no_rtp: u64,
    pub one_way_audio: u64,
    pub rtp_stopped: u64,
    pub media_address_mismatch: u64,
}

fn pct(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 * 100.0 / denominator as f64)
}

fn mean(sum: u64, count: u64) -> Option<f64> {
    (count > 0).then(|| sum as f64 / count as f64)
}

/// The SRD at quantile `q` (0..=1) from a histogram: the upper edge of the bucket where the
/// cumulative count first reaches `q` of the total (`max_ms` in the overflow bucket).
pub fn srd_quantile_ms(buckets: &[u64; SRD_BUCKETS], max_ms: u64, q: f64) -> Option<u64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    // The rank of the quantile: the smallest n with n ≥ q·total (at least 1).
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0u64;
    for (index, count) in buckets.iter().enumerate() {
        seen += count;
        if seen >= rank {
            // The bucket's upper edge bounds the quantile from above, and so does the largest
            // delay seen (the only bound in the overflow bucket).
            return Some(
                SRD_EDGES_MS
                    .get(index)
                    .map_or(max_ms, |&edge| edge.min(max_ms)),
            );
        }
    }
    Some(max_ms)
}

impl Kpis {
    pub fn from_counts(c: &CallCounts) -> Self {
        let established_base = c.attempts.saturating_sub(c.redirected);
        let effective = c.answered + c.user_busy + c.no_answer + c.terminal_reject;
        Kpis {
            attempts: c.attempts,
            answered: c.answered,
            asr_pct: pct(c.answered, c.attempts),
            ner_pct: pct(effective, c.attempts),
            ser_pct: pct(c.answered, established_base),
            seer_pct: pct(c.seer_effective, established_base),
            isa_pct: pct(c.ineffective, c.attempts),
            scr_pct: pct(c.completed, c.attempts),
            srd_mean_ms: mean(c.srd_sum_ms, c.srd_count),
            pdd_p95_ms: srd_quantile_ms(&c.srd_buckets, c.srd_max_ms, 0.95),
            session_duration_mean_ms: mean(c.duration_sum_ms, c.duration_count),
            sdd_mean_ms: mean(c.sdd_sum_ms, c.sdd_count),
            sdd_p95_ms: srd_quantile_ms(&c.sdd_buckets, c.sdd_max_ms, 0.95),
            user_busy: c.user_busy,
            no_answer: c.no_answer,
            abandoned: c.abandoned,
            terminal_reject: c.terminal_reject,
            redirected: c.redirected,
            failed_4xx: c.failed_4xx,
            failed_5xx: c.failed_5xx,
            failed_6xx: c.failed_6xx,
            no_final: c.no_final,
            media_problem_calls: c.problem_calls,
            media_problem_pct: pct(c.problem_calls, c.answered),
            no_rtp: c.problems[0],
            one_way_audio: c.problems[1],
            rtp_stopped: c.problems[2],
            media_address_mismatch: c.problems[3],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voqa_wire::{MediaProblem, Timestamp};

    const T0: i64 = 1_795_428_000_000_000_000;

    fn at(ms: i64) -> Option<Timestamp> {
        Some(Timestamp::from_ns(T0 + ms * 1_000_000))
    }

    fn call(status: Option<u16>, end_cause: &str) -> CallSummary {
        CallSummary {
            call_id: "c".into(),
            setup: at(0),
            status,
            end_cause: Some(end_cause.into()),
            ..CallSummary::default()
        }
    }

    fn answered(provisional_ms: i64, answer_ms: i64, duration_ms: u64) -> CallSummary {
        CallSummary {
            first_provisional: at(provisional_ms),
            first_ringing: at(provisional_ms),
            answer: at(answer_ms),
            end: at(answer_ms + duration_ms as i64),
            duration_ms: Some(duration_ms),
            ..call(Some(200), "bye")
        }
    }

    fn ringing(mut c: CallSummary, ms: i64) -> CallSummary {
        c.first_provisional = at(ms);
        c.first_ringing = at(ms);
        c
    }

    fn sum(calls: &[CallSummary]) -> CallCounts {
        let mut total = CallCounts::default();
        for c in calls {
            total.add(&CallCounts::of(c));
        }
        total
    }

    #[test]
    fn outcomes_follow_the_written_classification() {
        assert_eq!(outcome(&answered(100, 2000, 1)), Outcome::Answered);
        assert_eq!(outcome(&call(Some(302), "failure")), Outcome::Redirected);
        assert_eq!(outcome(&call(Some(486), "failure")), Outcome::UserBusy);
        assert_eq!(outcome(&call(Some(600), "failure")), Outcome::UserBusy);
        assert_eq!(
            outcome(&ringing(call(Some(480), "failure"), 300)),
            Outcome::NoAnswer
        );
        // 480 without alerting: the user is not reachable, a terminal reject.
        assert_eq!(
            outcome(&call(Some(480), "failure")),
            Outcome::TerminalReject
        );
        // CANCEL after ringing is no answer (with or without the 487 seen) …
        assert_eq!(
            outcome(&ringing(call(Some(487), "cancel"), 300)),
            Outcome::NoAnswer
        );
        assert_eq!(
            outcome(&ringing(call(None, "cancel"), 300)),
            Outcome::NoAnswer
        );
        // … before it, the caller abandoned.
        assert_eq!(outcome(&call(Some(487), "cancel")), Outcome::Abandoned);
        assert_eq!(outcome(&call(None, "cancel")), Outcome::Abandoned);
        assert_eq!(outcome(&call(Some(503), "failure")), Outcome::Failed);
        assert_eq!(outcome(&call(Some(408), "failure")), Outcome::Failed);
        assert_eq!(outcome(&call(None, "timeout")), Outcome::Failed);
        assert_eq!(
            outcome(&call(Some(603), "failure")),
            Outcome::TerminalReject
        );
    }

    #[test]
    fn srd_runs_from_the_first_invite_to_the_first_non_100_response() {
        // Ringing at 250 ms, answer at 4 s: SRD 250.
        assert_eq!(srd_ms(&answered(250, 4000, 1000)), Some(250));
        // No provisional: the 200 ends it.
        let mut c = answered(0, 900, 10);
        c.first_provisional = None;
        c.first_ringing = None;
        assert_eq!(srd_ms(&c), Some(900));
        // A failure without provisional: its final response (the end) ends it.
        let mut busy = call(Some(486), "failure");
        busy.end = at(120);
        assert_eq!(srd_ms(&busy), Some(120));
        // A cancel without any response has no SRD (the end is the CANCEL, not a response).
        let mut cancel = call(None, "cancel");
        cancel.end = at(5000);
        assert_eq!(srd_ms(&cancel), None);
        // Challenged: setup is the challenged INVITE, so the 401 round trip (here 40 ms,
        // then 300 ms to the 180 after the authenticated INVITE) is inside the SRD: 340.
        let mut challenged = answered(340, 3000, 60_000);
        challenged.setup = at(0);
        assert_eq!(srd_ms(&challenged), Some(340));
    }

    #[test]
    fn srd_buckets_and_p95() {
        assert_eq!(srd_bucket(0), 0);
        assert_eq!(srd_bucket(100), 0);
        assert_eq!(srd_bucket(101), 1);
        assert_eq!(srd_bucket(30_000), 14);
        assert_eq!(srd_bucket(30_001), 15);
        // 20 delays: 19 of 150 ms (bucket ≤200) and 1 of 2500 ms (bucket ≤3000).
        // p95 rank = ceil(0.95·20) = 19 → the ≤200 bucket; p99 rank 20 → ≤3000.
        let mut b = [0u64; SRD_BUCKETS];
        b[1] = 19;
        b[8] = 1;
        assert_eq!(srd_quantile_ms(&b, 2500, 0.95), Some(200));
        assert_eq!(srd_quantile_ms(&b, 2500, 0.99), Some(2500));
        // Beyond the last edge: the maximum seen.
        let mut over = [0u64; SRD_BUCKETS];
        over[15] = 3;
        assert_eq!(srd_quantile_ms(&over, 45_000, 0.95), Some(45_000));
        assert_eq!(srd_quantile_ms(&[0; SRD_BUCKETS], 0, 0.95), None);
    }

    /// A hand-built day: every KPI computed by hand from the list below.
    #[test]
    fn kpis_of_a_hand_built_day() {
        let mut one_way = answered(200, 3000, 30_000);
        one_way.problems = vec![MediaProblem {
            kind: "one_way_audio".into(),
            direction: "callee_to_caller".into(),
            start: Timestamp::from_ns(T0),
        }];
        let mut busy = call(Some(486), "failure");
        busy.end = at(150);
        let mut no_answer = ringing(call(Some(480), "failure"), 400);
        no_answer.end = at(30_400);
        let cancel_early = call(Some(487), "cancel");
        let mut unavailable = call(Some(503), "failure");
        unavailable.end = at(50);
        let redirect = call(Some(302), "failure");
        let calls = [
            answered(100, 5000, 60_000),  // SRD 100, duration 60 s
            answered(300, 4000, 120_000), // SRD 300, duration 120 s
            one_way,                      // SRD 200, duration 30 s, one-way audio
            busy,                         // SRD 150
            no_answer,                    // SRD 400
            cancel_early,                 // no SRD
            unavailable,                  // SRD 50
            redirect,                     // no SRD
        ];
        let k = Kpis::from_counts(&sum(&calls));
        // 8 attempts, 3 answered.
        assert_eq!((k.attempts, k.answered), (8, 3));
        // ASR = 3/8 = 37.5 %.
        assert_eq!(k.asr_pct, Some(37.5));
        // NER = (3 answered + 1 busy + 1 no answer + 0 reject) / 8 = 62.5 %.
        assert_eq!(k.ner_pct, Some(62.5));
        // SER = 3 / (8 − 1 redirect) = 42.857… %.
        assert!((k.ser_pct.unwrap_or(f64::NAN) - 300.0 / 7.0).abs() < 1e-9);
        // SEER = (3 answered + 480 + 486) / 7 = 5/7.
        assert!((k.seer_pct.unwrap_or(f64::NAN) - 500.0 / 7.0).abs() < 1e-9);
        // ISA = 1 (503) / 8 = 12.5 %.
        assert_eq!(k.isa_pct, Some(12.5));
        // SCR = 3 answered and ended by BYE / 8 = 37.5 %.
        assert_eq!(k.scr_pct, Some(37.5));
        // SRD mean = (100+300+200+150+400+50)/6 = 200.
        assert_eq!(k.srd_mean_ms, Some(200.0));
        // p95 rank ceil(5.7)=6 → the largest, 400 ms, in the ≤500 bucket, whose edge the
        // maximum (400) tightens.
        assert_eq!(k.pdd_p95_ms, Some(400));
        // Duration mean = (60+120+30)/3 s = 70 000 ms.
        assert_eq!(k.session_duration_mean_ms, Some(70_000.0));
        // 1 of 3 answered calls with a problem.
        assert_eq!(k.media_problem_calls, 1);
        assert_eq!(k.one_way_audio, 1);
        assert!((k.media_problem_pct.unwrap_or(f64::NAN) - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!((k.failed_4xx, k.failed_5xx, k.abandoned), (3, 1, 1));
        assert_eq!(k.sdd_mean_ms, None);
    }

    /// An answered call ended by a BYE at `end_ms` whose first final response came `sdd` ms
    /// later (`None`: never answered).
    fn hung_up(end_ms: i64, sdd: Option<i64>) -> CallSummary {
        CallSummary {
            end: at(end_ms),
            bye_response: sdd.and_then(|d| at(end_ms + d)),
            ..answered(100, 1_000, (end_ms - 1_000) as u64)
        }
    }

    #[test]
    fn sdd_runs_from_the_bye_to_its_response_of_calls_ended_by_bye() {
        assert_eq!(sdd_ms(&hung_up(60_000, Some(25))), Some(25));
        assert_eq!(sdd_ms(&hung_up(60_000, None)), None);
        // Not ended by a BYE (a CANCEL, a failure): no SDD whatever the record says.
        let cancelled = CallSummary {
            end: at(8_000),
            bye_response: at(8_030),
            ..call(Some(487), "cancel")
        };
        assert_eq!(sdd_ms(&cancelled), None);
        // A response time before the BYE is not a delay.
        assert_eq!(sdd_ms(&hung_up(60_000, Some(-5))), None);

        // 19 BYEs answered in 30 ms, one in 4.5 s, one unanswered, one CANCEL.
        let mut calls: Vec<CallSummary> = (0..19).map(|_| hung_up(60_000, Some(30))).collect();
        calls.push(hung_up(90_000, Some(4_500)));
        calls.push(hung_up(90_000, None));
        calls.push(cancelled);
        let c = sum(&calls);
        assert_eq!(
            (c.sdd_count, c.sdd_sum_ms, c.sdd_max_ms),
            (20, 5_070, 4_500)
        );
        // 19 in the ≤100 ms bucket, 1 in ≤6000.
        assert_eq!((c.sdd_buckets[0], c.sdd_buckets[10]), (19, 1));
        let k = Kpis::from_counts(&c);
        // Mean (19 × 30 + 4500) / 20 = 253.5 ms; p95 rank ceil(19.0) = 19, in the ≤100 bucket.
        assert_eq!(k.sdd_mean_ms, Some(253.5));
        assert_eq!(k.sdd_p95_ms, Some(100));
        // Counts merge: two halves added give the same KPIs.
        let (a, b) = calls.split_at(10);
        let mut merged = sum(a);
        merged.add(&sum(b));
        assert_eq!(merged, c);
    }

    #[test]
    fn empty_counts_have_no_ratios() {
        let k = Kpis::from_counts(&CallCounts::default());
        assert_eq!((k.asr_pct, k.ner_pct, k.pdd_p95_ms), (None, None, None));
    }

    #[test]
    fn values_round_trip_and_match_columns() {
        let mut c = CallCounts::of(&answered(250, 1000, 5000));
        c.add(&CallCounts::of(&call(Some(486), "failure")));
        c.add(&CallCounts::of(&hung_up(9_000, Some(2_500))));
        assert_eq!((c.sdd_count, c.sdd_max_ms, c.sdd_buckets[8]), (1, 2_500, 1));
        let values = c.values();
        assert_eq!(values.len(), columns().len());
        assert_eq!(CallCounts::from_values(&values), Some(c));
        assert_eq!(CallCounts::from_values(&values[1..]), None);
    }
}
