//! Error-budget burn rates over two windows at once, the multiwindow, multi-burn-rate method
//! of Google's SRE workbook ("Alerting on SLOs", alert 6), for the `sla_burn` rule.
//!
//! A commitment with a budget says "at least `target_pct` % good" (seconds up, calls meeting
//! MOS, calls under the loss ceiling, …). Its error budget is the bad share it allows,
//! `1 − target_pct / 100`; the burn rate of a window is the window's bad share divided by that
//! budget, so a burn rate of 1 spends exactly the budget over the SLA period and 14.4 spends a
//! 30-day budget's 2 % in one hour. A policy fires when both its long and its short window burn
//! at least its factor: the long window gives significance, the short one makes the alert
//! resolve soon after the burning stops.
//!
//! Pure: counts come in, a decision goes out. No store, no clock, no I/O.

use std::time::Duration;

/// Good and total of one window, in the commitment's unit (seconds for uptime, calls for call
/// shares). `total` excludes what is not judged (maintenance, no data).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowCounts {
    pub good: f64,
    pub total: f64,
}

impl WindowCounts {
    pub fn new(good: f64, total: f64) -> Self {
        WindowCounts { good, total }
    }

    /// Bad share of the window, `None` when nothing was judged in it (no burn is no evidence).
    pub fn bad_fraction(&self) -> Option<f64> {
        if self.total.is_nan()
            || self.total <= 0.0
            || !self.good.is_finite()
            || !self.total.is_finite()
        {
            return None;
        }
        Some(((self.total - self.good) / self.total).clamp(0.0, 1.0))
    }
}

/// The share a commitment allows to be bad: `1 − target_pct / 100`. `None` for a target of
/// 100 % (no budget: every bad unit is a breach, which the `sla` verdict says, not a burn rate)
/// or outside (0, 100].
pub fn error_budget(target_pct: f64) -> Option<f64> {
    if target_pct.is_nan() || target_pct <= 0.0 || target_pct >= 100.0 {
        return None;
    }
    Some(1.0 - target_pct / 100.0)
}

/// Burn rate of one window: its bad share over the budget. Computed as
/// `bad × 100 / (total × (100 − target))` so that whole-number cases are exact (30 % bad
/// against a 95 % target is 6.0, not 5.999…, and a factor of 6 is reached).
pub fn burn_rate(target_pct: f64, window: WindowCounts) -> Option<f64> {
    error_budget(target_pct)?;
    let bad = window.bad_fraction()? * window.total;
    Some(bad * 100.0 / (window.total * (100.0 - target_pct)))
}

/// How urgent a firing policy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ticket,
    Page,
}

/// One pair of windows and the burn-rate factor both must reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnPolicy {
    pub severity: Severity,
    pub long: Duration,
    pub short: Duration,
    pub factor: f64,
}

/// The workbook's defaults for a 30-day period: page at 14.4× over 1 h and 5 min (2 % of the
/// budget in an hour), ticket at 6× over 6 h and 30 min (5 % in six hours).
pub const DEFAULT_POLICIES: [BurnPolicy; 2] = [
    BurnPolicy {
        severity: Severity::Page,
        long: Duration::from_secs(3600),
        short: Duration::from_secs(300),
        factor: 14.4,
    },
    BurnPolicy {
        severity: Severity::Ticket,
        long: Duration::from_secs(6 * 3600),
        short: Duration::from_secs(1800),
        factor: 6.0,
    },
];

/// One policy's outcome, with the figures a notification quotes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnCheck {
    pub policy: BurnPolicy,
    pub long_rate: Option<f64>,
    pub short_rate: Option<f64>,
    pub firing: bool,
}

/// Checks every policy; `counts(window)` gives the good/total of the window ending at the
/// evaluation time (the caller reads them from the store's aggregates).
pub fn check(
    target_pct: f64,
    policies: &[BurnPolicy],
    mut counts: impl FnMut(Duration) -> WindowCounts,
) -> Vec<BurnCheck> {
    policies
        .iter()
        .map(|&policy| {
            let long_rate = burn_rate(target_pct, counts(policy.long));
            let short_rate = burn_rate(target_pct, counts(policy.short));
            let firing = matches!((long_rate, short_rate),
                (Some(l), Some(s)) if l >= policy.factor && s >= policy.factor);
            BurnCheck {
                policy,
                long_rate,
                short_rate,
                firing,
            }
        })
        .collect()
}

/// The most urgent firing severity, if any.
pub fn worst(checks: &[BurnCheck]) -> Option<Severity> {
    checks
        .iter()
        .filter(|c| c.firing)
        .map(|c| c.policy.severity)
        .max()
}

/// Share of the period's budget spent so far: bad units over the units the budget allows for
/// the whole period (`period_total`, e.g. the period's seconds outside maintenance).
pub fn budget_spent(target_pct: f64, bad: f64, period_total: f64) -> Option<f64> {
    let allowed = error_budget(target_pct)? * period_total;
    (allowed > 0.0).then(|| bad / allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    /// An uptime commitment of 99.95 % over a 30-day month (2,592,000 s): the budget is
    /// 0.05 % = 1,296 s of downtime. Timeline (evaluation at the end of each case): down for
    /// `down_s` seconds ending now, up before; windows count seconds.
    fn uptime_counts(down_s: u64) -> impl FnMut(Duration) -> WindowCounts {
        move |w: Duration| {
            let len = w.as_secs();
            let bad = down_s.min(len);
            WindowCounts::new((len - bad) as f64, len as f64)
        }
    }

    #[test]
    fn budget_of_a_month_by_hand() {
        // 0.05 % of 2,592,000 s.
        let budget = error_budget(99.95).expect("a figure");
        assert!((budget * 2_592_000.0 - 1296.0).abs() < 1e-6);
        // 648 s down is half the month's budget.
        assert!((budget_spent(99.95, 648.0, 2_592_000.0).expect("a figure") - 0.5).abs() < 1e-12);
        assert_eq!(error_budget(100.0), None);
        assert_eq!(error_budget(0.0), None);
        assert_eq!(error_budget(f64::NAN), None);
    }

    #[test]
    fn ten_minutes_down_pages() {
        // 600 s down: 1 h window bad share 600/3600 = 1/6, burn (1/6)/0.0005 = 333.3;
        // 5 min window wholly down: 1/0.0005 = 2000. Both ≥ 14.4: page. 6 h: 600/21600 =
        // 1/36 → 55.6; 30 min: 600/1800 = 1/3 → 666.7: the ticket fires too; worst is page.
        let checks = check(99.95, &DEFAULT_POLICIES, uptime_counts(600));
        assert!((checks[0].long_rate.expect("a figure") - 1000.0 / 3.0).abs() < 1e-9);
        assert!((checks[0].short_rate.expect("a figure") - 2000.0).abs() < 1e-9);
        assert!((checks[1].long_rate.expect("a figure") - 500.0 / 9.0).abs() < 1e-9);
        assert!((checks[1].short_rate.expect("a figure") - 2000.0 / 3.0).abs() < 1e-9);
        assert!(checks.iter().all(|c| c.firing));
        assert_eq!(worst(&checks), Some(Severity::Page));
    }

    #[test]
    fn a_slow_burn_opens_a_ticket_not_a_page() {
        // Calls meeting MOS, target 95 %: budget 5 %. The page needs 14.4 × 5 % = 72 % of
        // calls bad in both 1 h and 5 min: 50 % bad in the last hour (burn 10) and 100 % in
        // the last 5 min (burn 20) is short of it in the long window, so no page. The ticket
        // needs 6 × 5 % = 30 %: 30 % bad in the last 6 h (burn 6.0, exactly the factor) and
        // 40 % in the last 30 min (8.0): it fires.
        let counts = |w: Duration| match w.as_secs() {
            300 => WindowCounts::new(0.0, 10.0),
            3600 => WindowCounts::new(50.0, 100.0),
            1800 => WindowCounts::new(30.0, 50.0),
            s if s == 6 * H => WindowCounts::new(420.0, 600.0),
            _ => unreachable!("only the default windows are asked for"),
        };
        let checks = check(95.0, &DEFAULT_POLICIES, counts);
        assert!((checks[0].long_rate.expect("a figure") - 10.0).abs() < 1e-9);
        assert!((checks[0].short_rate.expect("a figure") - 20.0).abs() < 1e-9);
        assert!(!checks[0].firing);
        assert!((checks[1].long_rate.expect("a figure") - 6.0).abs() < 1e-9);
        assert!((checks[1].short_rate.expect("a figure") - 8.0).abs() < 1e-9);
        assert!(checks[1].firing);
        assert_eq!(worst(&checks), Some(Severity::Ticket));
    }

    #[test]
    fn burning_that_stopped_resolves_through_the_short_window() {
        // 20 min down that ended 10 min ago: the 1 h window still burns 1/3 / 0.0005 = 666.7,
        // but the 5 min window is clean: no page. The 30 min window holds 20 min down:
        // (2/3) / 0.0005 = 1333 and 6 h 1200/21600 → 111: the ticket still fires.
        let counts = |w: Duration| {
            let len = w.as_secs();
            // Down over [now − 30 min, now − 10 min).
            let bad = len.saturating_sub(600).min(1200);
            WindowCounts::new((len - bad) as f64, len as f64)
        };
        let checks = check(99.95, &DEFAULT_POLICIES, counts);
        assert!((checks[0].long_rate.expect("a figure") - 2000.0 / 3.0).abs() < 1e-9);
        assert_eq!(checks[0].short_rate, Some(0.0));
        assert!(!checks[0].firing);
        assert!(checks[1].firing);
        assert_eq!(worst(&checks), Some(Severity::Ticket));
    }

    #[test]
    fn windows_without_judged_units_never_fire() {
        // Maintenance or no data: total 0 is no evidence either way.
        let checks = check(99.95, &DEFAULT_POLICIES, |_| WindowCounts::new(0.0, 0.0));
        assert!(checks.iter().all(|c| !c.firing && c.long_rate.is_none()));
        assert_eq!(worst(&checks), None);
        // Within budget: 1 s down in the last hour is a burn of 0.56, nothing fires.
        let checks = check(99.95, &DEFAULT_POLICIES, uptime_counts(1));
        assert!((checks[0].long_rate.expect("a figure") - (1.0 / 3600.0) / 0.0005).abs() < 1e-9);
        assert_eq!(worst(&checks), None);
        // good > total (bad input) is clamped, not a negative burn.
        assert_eq!(WindowCounts::new(12.0, 10.0).bad_fraction(), Some(0.0));
    }
}
