//! Each rule kind's judgement of one customer (or one of its agents) at one instant, from
//! figures the engine read out of the store's aggregates: per-call counts (`calls`), the
//! heartbeats behind uptime, report windows' capture flags, agents' last heartbeats.
//!
//! Pure: figures and the evaluation time come in, an [`Observation`] goes out. No store, no
//! clock, no I/O; the engine (`engine.rs`) gathers the inputs and the state machine
//! (`state.rs`) decides what an observation changes.

use std::collections::BTreeMap;

use super::burn::{self, BurnPolicy, WindowCounts};
use crate::sla::kpis::{CallCounts, Kpis};
use crate::sla::uptime::UptimeOutcome;
use crate::store::alert_reads::ProblemCallCounts;
use crate::store::{CallStats, WindowHistogram};

/// One alert instance's condition at one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Identifying labels besides the rule (`customer`, and `agent` or `commitment` where the
    /// rule has several instances per customer).
    pub labels: BTreeMap<String, String>,
    pub customer: String,
    /// The measured figure, `None` when nothing could be judged.
    pub value: Option<f64>,
    pub threshold: f64,
    pub firing: bool,
    /// The span of data the figure covers, for the evidence link.
    pub window_ns: i64,
    /// One line for people: what was measured against what.
    pub summary: String,
}

fn labels(customer: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([("customer".to_owned(), customer.to_owned())]);
    for (k, v) in extra {
        labels.insert((*k).to_owned(), (*v).to_owned());
    }
    labels
}

/// `quality_drop`: the share of the window's calls that are bad — below the customer's
/// `mos_min`, or answered with a media problem (one-way audio, no RTP, RTP stopped, media
/// address mismatch; from the call records) — among the calls judged; fires above
/// `threshold_pct` once at least `min_calls` calls were judged.
///
/// A call is counted once: the judged calls are those with a MOS (`stats`) plus the problem
/// calls the MOS aggregates do not hold (a call without RTP has no MOS at all); the bad ones
/// are those below `mos_min` plus the problem calls not already below it.
pub fn quality_drop(
    customer: &str,
    stats: &CallStats,
    problems: &ProblemCallCounts,
    mos_min: f64,
    threshold_pct: f64,
    min_calls: u64,
    window_ns: i64,
) -> Observation {
    let below = stats.calls_with_mos.saturating_sub(stats.meeting_mos);
    let judged = stats
        .calls_with_mos
        .saturating_add(problems.problem_calls.saturating_sub(problems.with_mos));
    let bad = below.saturating_add(problems.problem_calls.saturating_sub(problems.below_mos));
    let value = (judged > 0).then(|| bad as f64 * 100.0 / judged as f64);
    let firing = judged >= min_calls.max(1) && value.is_some_and(|v| v > threshold_pct);
    Observation {
        labels: labels(customer, &[]),
        customer: customer.to_owned(),
        value,
        threshold: threshold_pct,
        firing,
        window_ns,
        summary: format!(
            "{bad} of {judged} calls below MOS {mos_min} or with a media problem ({below} below, {} with a media problem; {}; alert above {threshold_pct} % with at least {min_calls} calls)",
            problems.problem_calls,
            value.map_or("no calls".to_owned(), |v| format!("{v:.1} %")),
        ),
    }
}

/// `kpi_threshold`: one call KPI of the customer (or of one trunk, the peer address) over the
/// window's hours, against a threshold: ASR and NER (RFC 6076 / E.411 / E.425, see
/// `sla::kpis`) fire **below** it, the PDD p95 (the SRD bucket's upper bound) **above** it —
/// once at least `min_calls` call attempts were counted.
pub fn kpi_threshold(
    customer: &str,
    trunk: Option<&str>,
    kpi: &str,
    counts: &CallCounts,
    threshold: f64,
    min_calls: u64,
    window_ns: i64,
) -> Observation {
    let k = Kpis::from_counts(counts);
    let (value, below_fires, unit) = match kpi {
        "asr" => (k.asr_pct, true, " %"),
        "ner" => (k.ner_pct, true, " %"),
        _ => (k.pdd_p95_ms.map(|ms| ms as f64), false, " ms"),
    };
    let enough = counts.attempts >= min_calls.max(1);
    let firing = enough
        && value.is_some_and(|v| {
            if below_fires {
                v < threshold
            } else {
                v > threshold
            }
        });
    let mut extra = vec![("kpi", kpi)];
    if let Some(trunk) = trunk {
        extra.push(("trunk", trunk));
    }
    Observation {
        labels: labels(customer, &extra),
        customer: customer.to_owned(),
        value,
        threshold,
        firing,
        window_ns,
        summary: format!(
            "{kpi} {} over {} call attempts{} (alert {} {threshold}{unit} with at least {min_calls} attempts)",
            value.map_or("not measurable".to_owned(), |v| format!("{v:.1}{unit}")),
            counts.attempts,
            trunk.map_or(String::new(), |t| format!(" to/from {t}")),
            if below_fires { "below" } else { "above" },
        ),
    }
}

/// Report windows of a capture window: how many, and how many are incomplete (capture drops,
/// or jitter samples without a histogram).
pub fn incomplete_windows(windows: &[WindowHistogram]) -> (u64, u64) {
    let incomplete = windows
        .iter()
        .filter(|w| w.capture_drops > 0 || (w.histogram.is_none() && w.jitter_samples > 0))
        .count();
    (windows.len() as u64, incomplete as u64)
}

/// `capture_incomplete`: the share of report windows whose measurement is incomplete; fires
/// above `threshold_pct` once at least `min_windows` windows arrived.
pub fn capture_incomplete(
    customer: &str,
    windows: u64,
    incomplete: u64,
    threshold_pct: f64,
    min_windows: u64,
    window_ns: i64,
) -> Observation {
    let value = (windows > 0).then(|| incomplete as f64 * 100.0 / windows as f64);
    let firing = windows >= min_windows.max(1) && value.is_some_and(|v| v > threshold_pct);
    Observation {
        labels: labels(customer, &[]),
        customer: customer.to_owned(),
        value,
        threshold: threshold_pct,
        firing,
        window_ns,
        summary: format!(
            "{incomplete} of {windows} report windows with capture drops or without a jitter histogram (alert above {threshold_pct} %)"
        ),
    }
}

/// `agent_silent`: an agent that has reported (`last_heartbeat_ns`) and sent nothing for more
/// than `periods` heartbeat intervals. Never fires inside one of its maintenance windows
/// (`maintenance`: spans around `now_ns`), nor for an agent that never reported.
pub fn agent_silent(
    customer: &str,
    agent: &str,
    last_heartbeat_ns: Option<i64>,
    now_ns: i64,
    interval_s: u64,
    periods: u32,
    maintenance: &[(i64, i64)],
) -> Observation {
    let threshold_s = interval_s.saturating_mul(u64::from(periods)) as f64;
    let silence_s = last_heartbeat_ns.map(|last| now_ns.saturating_sub(last).max(0) as f64 / 1e9);
    let in_maintenance = maintenance
        .iter()
        .any(|&(start, end)| start <= now_ns && now_ns < end);
    let firing = !in_maintenance && silence_s.is_some_and(|s| s > threshold_s);
    Observation {
        labels: labels(customer, &[("agent", agent)]),
        customer: customer.to_owned(),
        value: silence_s,
        threshold: threshold_s,
        firing,
        window_ns: (threshold_s * 1e9) as i64,
        summary: match silence_s {
            Some(s) if in_maintenance => format!(
                "agent {agent}: no heartbeat for {s:.0} s, inside a maintenance window (suppressed)"
            ),
            Some(s) => format!(
                "agent {agent}: no heartbeat for {s:.0} s (alert after {threshold_s:.0} s: {periods} periods of {interval_s} s)"
            ),
            None => format!("agent {agent} has never reported"),
        },
    }
}

/// The good/total of one burn window for one commitment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BurnFigures<'a> {
    /// Seconds measured and down, outside maintenance (from `sla::uptime`).
    Uptime(&'a UptimeOutcome),
    /// Calls with a MOS and those meeting `mos_min`.
    Mos(&'a CallStats),
    /// Calls and those within `loss_max_pct`.
    Loss(&'a CallStats),
    /// Call attempts and those answered (the ASR of `sla::kpis`, ITU-T E.411): the budget of
    /// `asr_min_pct` is the failed-attempt share it allows.
    Asr(&'a CallCounts),
    /// Answered calls and those without a media problem (`sla::kpis`' media-problem share):
    /// the budget of `one_way_audio_max_pct` is that share; the target is `100 − max`.
    OneWayAudio(&'a CallCounts),
}

impl BurnFigures<'_> {
    pub fn counts(&self) -> WindowCounts {
        match self {
            BurnFigures::Uptime(u) => WindowCounts::new(
                u.measured_ns.saturating_sub(u.downtime_ns) as f64 / 1e9,
                u.measured_ns as f64 / 1e9,
            ),
            BurnFigures::Mos(s) => WindowCounts::new(s.meeting_mos as f64, s.calls_with_mos as f64),
            BurnFigures::Loss(s) => WindowCounts::new(s.meeting_loss as f64, s.calls as f64),
            BurnFigures::Asr(c) => WindowCounts::new(c.answered as f64, c.attempts as f64),
            BurnFigures::OneWayAudio(c) => WindowCounts::new(
                c.answered.saturating_sub(c.problem_calls) as f64,
                c.answered as f64,
            ),
        }
    }
}

/// `sla_burn` of one commitment: fires when both windows of `policy` burn the error budget
/// of `target_pct` at least `policy.factor` times as fast as the period allows. The value is
/// the lower of the two burn rates (what must stay at or above the factor).
pub fn sla_burn(
    customer: &str,
    commitment: &str,
    target_pct: f64,
    policy: BurnPolicy,
    long: WindowCounts,
    short: WindowCounts,
) -> Observation {
    let checks = burn::check(target_pct, &[policy], |w| {
        if w == policy.long { long } else { short }
    });
    let check = checks.first().copied();
    let (long_rate, short_rate, firing) = check.map_or((None, None, false), |c| {
        (c.long_rate, c.short_rate, c.firing)
    });
    let value = match (long_rate, short_rate) {
        (Some(l), Some(s)) => Some(l.min(s)),
        _ => None,
    };
    let rate = |r: Option<f64>| r.map_or("no data".to_owned(), |r| format!("{r:.2}×"));
    Observation {
        labels: labels(customer, &[("commitment", commitment)]),
        customer: customer.to_owned(),
        value,
        threshold: policy.factor,
        firing,
        window_ns: i64::try_from(policy.long.as_nanos()).unwrap_or(i64::MAX),
        summary: format!(
            "{commitment} (target {target_pct} %): error budget burning {} over {} s and {} over {} s (alert at {}× in both)",
            rate(long_rate),
            policy.long.as_secs(),
            rate(short_rate),
            policy.short.as_secs(),
            policy.factor
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::alerts::burn::Severity;

    const S: i64 = 1_000_000_000;

    #[test]
    fn kpi_threshold_fires_below_for_ratios_and_above_for_pdd() {
        // 10 attempts: 6 answered, 1 busy, 1 no answer, 2 failed (503).
        // ASR = 6/10 = 60 %; NER = (6 + 1 + 1 + 0)/10 = 80 %.
        let mut c = CallCounts {
            attempts: 10,
            answered: 6,
            user_busy: 1,
            no_answer: 1,
            ..CallCounts::default()
        };
        let asr = kpi_threshold("acme", None, "asr", &c, 70.0, 5, 3600 * S);
        assert_eq!(asr.value, Some(60.0));
        assert!(asr.firing, "60 % < 70 %");
        assert_eq!(asr.labels["kpi"], "asr");
        assert!(!asr.labels.contains_key("trunk"));
        assert!(
            !kpi_threshold("acme", None, "asr", &c, 60.0, 5, 3600 * S).firing,
            "not below"
        );
        let ner = kpi_threshold("acme", Some("203.0.113.7"), "ner", &c, 85.0, 5, 3600 * S);
        assert_eq!(ner.value, Some(80.0));
        assert!(ner.firing);
        assert_eq!(ner.labels["trunk"], "203.0.113.7");
        // Too few attempts never fire, however bad.
        assert!(!kpi_threshold("acme", None, "asr", &c, 70.0, 11, 3600 * S).firing);
        // PDD: no SRD measured is no figure (and no alert) ...
        let none = kpi_threshold("acme", None, "pdd_p95_ms", &c, 2000.0, 1, 3600 * S);
        assert_eq!((none.value, none.firing), (None, false));
        // ... ten calls at 3,000 ms: the p95 is 3,000 ms (the bucket's edge bounded by the
        // largest delay), above 2,000, not above 3,000.
        c.srd_buckets[crate::sla::kpis::srd_bucket(3000)] = 10;
        c.srd_count = 10;
        c.srd_sum_ms = 30_000;
        c.srd_max_ms = 3000;
        let pdd = kpi_threshold("acme", None, "pdd_p95_ms", &c, 2000.0, 1, 3600 * S);
        assert_eq!((pdd.value, pdd.firing), (Some(3000.0), true));
        assert!(!kpi_threshold("acme", None, "pdd_p95_ms", &c, 3000.0, 1, 3600 * S).firing);
    }

    fn stats(calls_with_mos: u64, meeting_mos: u64) -> CallStats {
        CallStats {
            calls: calls_with_mos,
            calls_with_mos,
            meeting_mos,
            meeting_loss: calls_with_mos,
            meeting_both: meeting_mos,
            worst_loss_pct: Some(0.0),
        }
    }

    fn none() -> ProblemCallCounts {
        ProblemCallCounts::default()
    }

    #[test]
    fn quality_drop_counts_a_call_below_mos_or_with_a_media_problem_once() {
        // 10 calls with a MOS, 2 of them below 4.0. 5 answered call records with a media
        // problem: 3 of them have streams with a MOS in the window (1 of those is one of the
        // 2 below), 2 have none (no RTP at all).
        // Judged: 10 + (5 − 3) = 12. Bad: 2 below + (5 − 1) problem calls not already below
        // = 6 (the 2 below, the 2 problem calls with a good MOS, the 2 without a MOS).
        // 6 / 12 = 50 %.
        let problems = ProblemCallCounts {
            problem_calls: 5,
            with_mos: 3,
            below_mos: 1,
        };
        let o = quality_drop("acme", &stats(10, 8), &problems, 4.0, 40.0, 12, 900 * S);
        assert_eq!(o.value, Some(50.0));
        assert!(o.firing, "50 % > 40 % with 12 calls judged");
        assert!(o.summary.starts_with("6 of 12 calls"), "{}", o.summary);
        // 13 calls needed: not enough calls judged.
        assert!(!quality_drop("acme", &stats(10, 8), &problems, 4.0, 40.0, 13, S).firing);
        // Without the problem calls the share is 2 / 10 = 20 %: below the threshold.
        let o = quality_drop("acme", &stats(10, 8), &none(), 4.0, 40.0, 1, S);
        assert_eq!((o.value, o.firing), (Some(20.0), false));
        // Only calls without RTP (no MOS anywhere): 3 of 3 bad.
        let only = ProblemCallCounts {
            problem_calls: 3,
            with_mos: 0,
            below_mos: 0,
        };
        let o = quality_drop("acme", &stats(0, 0), &only, 4.0, 40.0, 1, S);
        assert_eq!((o.value, o.firing), (Some(100.0), true));
    }

    #[test]
    fn sla_burn_of_asr_and_one_way_audio_from_call_counts() {
        use crate::sla::kpis::Kpis;
        let page = crate::alerts::burn::DEFAULT_POLICIES[0];
        // ASR commitment 60 %: budget 40 % of attempts may fail. Long window: 200 attempts,
        // 40 answered → 160 failed = 80 % → 0.8 / 0.4 = 2.0×; short: 20 attempts, 2 answered
        // → 90 % → 2.25×. Below the page's 14.4: not firing, value the lower, 2.0.
        let long = CallCounts {
            attempts: 200,
            answered: 40,
            problem_calls: 10,
            ..CallCounts::default()
        };
        let short = CallCounts {
            attempts: 20,
            answered: 2,
            problem_calls: 2,
            ..CallCounts::default()
        };
        // The bad share is the complement of the KPI's ASR.
        let asr = Kpis::from_counts(&long).asr_pct.expect("asr");
        let counts = BurnFigures::Asr(&long).counts();
        assert_eq!((counts.good, counts.total), (40.0, 200.0));
        assert!((counts.bad_fraction().expect("share") - (1.0 - asr / 100.0)).abs() < 1e-12);
        let o = sla_burn(
            "acme",
            "asr",
            60.0,
            page,
            BurnFigures::Asr(&long).counts(),
            BurnFigures::Asr(&short).counts(),
        );
        assert!(!o.firing);
        assert!((o.value.expect("rate") - 2.0).abs() < 1e-9, "{o:?}");
        assert_eq!(o.labels["commitment"], "asr");
        // One-way audio at most 1 % of answered calls: target 99 %, budget 1 %. Long window:
        // 10 of 40 answered with a problem = 25 % → 25×; short: 2 of 2 = 100 % → 100×. Both
        // ≥ 14.4: fires at the lower, 25.
        let o = sla_burn(
            "acme",
            "one_way_audio",
            100.0 - 1.0,
            page,
            BurnFigures::OneWayAudio(&long).counts(),
            BurnFigures::OneWayAudio(&short).counts(),
        );
        assert!(o.firing);
        assert!((o.value.expect("rate") - 25.0).abs() < 1e-9, "{o:?}");
        let media = Kpis::from_counts(&long).media_problem_pct.expect("share");
        assert!(
            (media - 25.0).abs() < 1e-12,
            "the KPI's own media-problem share"
        );
        // No answered call in the short window: no figure, no alert.
        let unanswered = CallCounts {
            attempts: 5,
            ..CallCounts::default()
        };
        let o = sla_burn(
            "acme",
            "one_way_audio",
            99.0,
            page,
            BurnFigures::OneWayAudio(&long).counts(),
            BurnFigures::OneWayAudio(&unanswered).counts(),
        );
        assert!(!o.firing && o.value.is_none());
    }

    #[test]
    fn quality_drop_needs_the_share_and_the_calls() {
        // 2 of 8 calls below: 25 % > 20 % with 8 ≥ 5 calls: fires.
        let o = quality_drop("acme", &stats(8, 6), &none(), 4.0, 20.0, 5, 900 * S);
        assert_eq!(o.value, Some(25.0));
        assert!(o.firing);
        assert_eq!(o.labels["customer"], "acme");
        // 1 of 5: exactly 20 % is not above 20 %.
        assert!(!quality_drop("acme", &stats(5, 4), &none(), 4.0, 20.0, 5, S).firing);
        // Two bad calls at night: 100 % of 2, but fewer than 5 calls: silent.
        let night = quality_drop("acme", &stats(2, 0), &none(), 4.0, 20.0, 5, S);
        assert_eq!(night.value, Some(100.0));
        assert!(!night.firing);
        // No calls: no figure, no alert.
        assert_eq!(
            quality_drop("acme", &stats(0, 0), &none(), 4.0, 20.0, 5, S).value,
            None
        );
    }

    #[test]
    fn capture_incomplete_counts_drops_and_missing_histograms() {
        let w = |drops: u64, hist: bool, samples: u64| WindowHistogram {
            agent_id: "a".into(),
            window_start_ns: 0,
            src: String::new(),
            dst: String::new(),
            jitter_samples: samples,
            capture_drops: drops,
            histogram: hist.then(Vec::new),
        };
        // Drops; no histogram with samples; no histogram without samples (nothing to miss); fine.
        let windows = [
            w(3, true, 10),
            w(0, false, 10),
            w(0, false, 0),
            w(0, true, 10),
        ];
        assert_eq!(incomplete_windows(&windows), (4, 2));
        let o = capture_incomplete("acme", 4, 2, 25.0, 4, 3600 * S);
        assert_eq!(o.value, Some(50.0));
        assert!(o.firing);
        assert!(
            !capture_incomplete("acme", 4, 2, 25.0, 5, S).firing,
            "too few windows"
        );
        assert!(
            !capture_incomplete("acme", 4, 1, 25.0, 1, S).firing,
            "25 % is not above 25 %"
        );
    }

    #[test]
    fn agent_silent_counts_periods_and_respects_maintenance() {
        let now = 1000 * S;
        // Interval 15 s × 3 periods = 45 s. Last heartbeat 46 s ago: fires.
        let o = agent_silent("acme", "a1", Some(now - 46 * S), now, 15, 3, &[]);
        assert_eq!((o.value, o.threshold), (Some(46.0), 45.0));
        assert!(o.firing);
        assert_eq!(o.labels["agent"], "a1");
        // 45 s exactly: not more than three periods yet.
        assert!(!agent_silent("acme", "a1", Some(now - 45 * S), now, 15, 3, &[]).firing);
        // Inside a maintenance window [now − 10 min, now + 1 h): suppressed.
        let m = [(now - 600 * S, now + 3600 * S)];
        let o = agent_silent("acme", "a1", Some(now - 300 * S), now, 15, 3, &m);
        assert!(
            !o.firing && o.summary.contains("maintenance"),
            "{}",
            o.summary
        );
        // The window ended at now: it fires again.
        let m = [(now - 600 * S, now)];
        assert!(agent_silent("acme", "a1", Some(now - 300 * S), now, 15, 3, &m).firing);
        // Never reported: nothing to miss.
        assert!(!agent_silent("acme", "a1", None, now, 15, 3, &[]).firing);
    }

    #[test]
    fn sla_burn_of_calls_meeting_mos() {
        // Target 95 %: budget 5 %. Page policy 14.4× over 1 h and 5 min needs 72 % bad in both.
        let page = crate::alerts::burn::DEFAULT_POLICIES[0];
        assert_eq!(page.severity, Severity::Page);
        // 1 h: 80 of 100 calls bad → 0.8 / 0.05 = 16×; 5 min: 9 of 10 bad → 18×. Fires; the
        // value is the lower, 16.
        let long = BurnFigures::Mos(&stats(100, 20)).counts();
        let short = BurnFigures::Mos(&stats(10, 1)).counts();
        let o = sla_burn("acme", "mos", 95.0, page, long, short);
        assert!(o.firing);
        assert!((o.value.expect("a rate") - 16.0).abs() < 1e-9);
        assert_eq!(
            (o.threshold, o.labels["commitment"].as_str()),
            (14.4, "mos")
        );
        // Burning stopped: the last 5 min are clean, the page resolves.
        let short = BurnFigures::Mos(&stats(10, 10)).counts();
        let o = sla_burn("acme", "mos", 95.0, page, long, short);
        assert!(!o.firing);
        assert_eq!(o.value, Some(0.0));
    }

    #[test]
    fn sla_burn_of_uptime_from_the_uptime_outcome() {
        // 99.95 % uptime: budget 0.05 %. A custom policy 10× over 1 h and 10 min. The hour
        // measured 3,600 s with 20 s down: 20/3600/0.0005 = 11.1×; the 10 min measured 600 s
        // with 20 s down: 20/600/0.0005 = 66.7×: fires.
        let policy = BurnPolicy {
            severity: Severity::Page,
            long: Duration::from_secs(3600),
            short: Duration::from_secs(600),
            factor: 10.0,
        };
        let outcome = |measured_s: i64, down_s: i64| UptimeOutcome {
            period_ns: measured_s * S,
            maintenance_ns: 0,
            measured_ns: measured_s * S,
            downtime_ns: down_s * S,
            uptime_pct: None,
            intervals: vec![],
            no_data: vec![],
        };
        let (l, s) = (outcome(3600, 20), outcome(600, 20));
        let o = sla_burn(
            "acme",
            "uptime",
            99.95,
            policy,
            BurnFigures::Uptime(&l).counts(),
            BurnFigures::Uptime(&s).counts(),
        );
        assert!(o.firing);
        assert!((o.value.expect("a rate") - 20.0 / 3600.0 / 0.0005).abs() < 1e-6);
        // Nothing measured (the hour was maintenance): no figure, no alert.
        let none = outcome(0, 0);
        let o = sla_burn(
            "acme",
            "uptime",
            99.95,
            policy,
            BurnFigures::Uptime(&none).counts(),
            BurnFigures::Uptime(&none).counts(),
        );
        assert!(!o.firing && o.value.is_none());
    }
}
