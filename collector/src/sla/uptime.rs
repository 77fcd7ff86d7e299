//! Uptime and capture drops of a customer's agents, from their heartbeats.
//!
//! Rules (chosen here, documented for customers):
//! - An agent is down for the *whole* gap between two consecutive heartbeats that are more than
//!   two heartbeat periods apart (no grace is subtracted: once two heartbeats are missed, nothing
//!   in the gap was observed). The period's bounds count as heartbeats for this rule when no real
//!   heartbeat lies before `from` or after `to`.
//! - No data is not downtime: before an agent's first heartbeat ever (or throughout, for an agent
//!   that has never sent one) nothing is known about it, so that time is *no data* for the
//!   agent — neither up nor down. Downtime starts only once an agent has reported and then falls
//!   silent. The customer's uptime is measured over the time in which at least one of its agents
//!   had reported (`measured_ns`, maintenance removed); the rest of the period is listed as
//!   no-data intervals per agent, and `measured / observed` is the commitment's coverage.
//! - The caller passes `to` no later than "now": the future is neither up nor down.
//! - A heartbeat reporting a watched process down marks the time until the next heartbeat down.
//! - The customer is down whenever *any* of its agents is down (the union): a customer served by
//!   two media servers loses the calls of the one that failed.
//! - Maintenance windows are removed from both the period and the downtime.
//! - Kernel drop counters are cumulative since agent start; a decrease means the agent restarted,
//!   and the new value is the drops since the restart. An agent's first heartbeat is only a
//!   baseline, since what it counts may predate the period.
//!
//! Pure arithmetic on times passed in; no clock, no I/O.

use serde::Serialize;

use voqa_wire::Timestamp;
use voqa_wire::time::NS_PER_S;

/// What the store keeps of one heartbeat for SLA purposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatPoint {
    pub agent_id: String,
    pub time_ns: i64,
    /// Names of the watched processes reported down in this heartbeat.
    pub processes_down: Vec<String>,
    /// Sum of `workers[].kernel_drops`: cumulative since the agent started.
    pub kernel_drops_total: u64,
}

impl HeartbeatPoint {
    /// The SLA view of a wire heartbeat.
    pub fn from_heartbeat(heartbeat: &voqa_wire::Heartbeat) -> Self {
        Self {
            agent_id: heartbeat.agent_id.clone(),
            time_ns: heartbeat.time.as_ns(),
            processes_down: heartbeat
                .processes
                .iter()
                .filter(|p| !p.up)
                .map(|p| p.name.clone())
                .collect(),
            kernel_drops_total: heartbeat
                .workers
                .iter()
                .fold(0u64, |sum, w| sum.saturating_add(w.kernel_drops)),
        }
    }
}

/// Why an agent counted as down.
pub const REASON_NO_HEARTBEAT: &str = "no heartbeat";

/// Why a stretch of an agent is no data: it has never sent a heartbeat at all …
pub const NO_DATA_NEVER_REPORTED: &str = "agent has never reported";
/// … or the stretch lies before its first heartbeat.
pub const NO_DATA_BEFORE_FIRST: &str = "before the agent's first heartbeat";

/// One stretch in which an agent had not reported yet (maintenance already removed): no
/// data, neither up nor down.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NoDataInterval {
    pub agent: String,
    pub start_ns: i64,
    pub end_ns: i64,
    pub start: String,
    pub end: String,
    pub duration_s: f64,
    /// [`NO_DATA_NEVER_REPORTED`] or [`NO_DATA_BEFORE_FIRST`].
    pub reason: &'static str,
}

/// One stretch of downtime of one agent (maintenance already removed).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DownInterval {
    pub agent: String,
    pub start_ns: i64,
    pub end_ns: i64,
    pub start: String,
    pub end: String,
    pub duration_s: f64,
    /// `"no heartbeat"` or `"process <name> down"` (several joined with `", "`).
    pub reason: String,
}

/// One stretch between heartbeats during which an agent's kernel dropped packets.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DropInterval {
    pub agent: String,
    pub start_ns: i64,
    pub end_ns: i64,
    pub start: String,
    pub end: String,
    pub drops: u64,
}

/// Capture drops beside the verdict: when the measurement itself was incomplete.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DropSummary {
    /// Kernel drops of the customer's agents during the period.
    pub total: u64,
    /// Agent restarts seen as a counter decrease.
    pub restarts: u64,
    /// Stream windows of the customer whose capturing worker dropped packets.
    pub windows_with_drops: u64,
    /// Number of drop intervals (all of them, `intervals` may be capped).
    pub intervals_total: u64,
    /// The first intervals in time order, at most [`super::EVIDENCE_LIMIT`].
    pub intervals: Vec<DropInterval>,
}

/// Sorts spans and merges overlapping or touching ones, dropping empty ones.
pub fn merge_spans(spans: &mut Vec<(i64, i64)>) {
    spans.retain(|(start, end)| start < end);
    spans.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for &(start, end) in spans.iter() {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    *spans = merged;
}

/// Total length of sorted, disjoint spans.
pub fn spans_length(spans: &[(i64, i64)]) -> i64 {
    spans.iter().fold(0i64, |sum, (start, end)| {
        sum.saturating_add(end.saturating_sub(*start))
    })
}

/// The parts of `[start, end)` outside the sorted, disjoint `holes`.
fn subtract(start: i64, end: i64, holes: &[(i64, i64)], out: &mut Vec<(i64, i64)>) {
    let mut cursor = start;
    let first = holes.partition_point(|hole| hole.1 <= start);
    for &(hole_start, hole_end) in holes.get(first..).unwrap_or(&[]) {
        if hole_start >= end {
            break;
        }
        if hole_start > cursor {
            out.push((cursor, hole_start));
        }
        cursor = cursor.max(hole_end);
    }
    if cursor < end {
        out.push((cursor, end));
    }
}

fn process_reason(processes_down: &[String]) -> String {
    processes_down
        .iter()
        .map(|name| format!("process {name} down"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A heartbeat the store's gap query kept (`Store::heartbeat_gaps`): only the heartbeats that
/// bound a gap longer than two periods, report a process down or follow one, and the first
/// and last of each agent in the span read. Between two kept heartbeats the store left out
/// only heartbeats less than two periods apart, none reporting a process down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparsePoint {
    pub point: HeartbeatPoint,
    /// The agent's previous heartbeat in the span read lies at most two periods before this
    /// one (it may have been left out): nothing between the two was down. `false` for the
    /// first heartbeat of the span.
    pub dense_before: bool,
}

/// What the uptime rules read of a heartbeat, full ([`HeartbeatPoint`]) or from the gap
/// query ([`SparsePoint`]).
pub trait Beat {
    fn point(&self) -> &HeartbeatPoint;
    /// See [`SparsePoint::dense_before`]; every heartbeat is present in a full list.
    fn dense_before(&self) -> bool {
        false
    }
}

impl Beat for HeartbeatPoint {
    fn point(&self) -> &HeartbeatPoint {
        self
    }
}

impl Beat for SparsePoint {
    fn point(&self) -> &HeartbeatPoint {
        &self.point
    }
    fn dense_before(&self) -> bool {
        self.dense_before
    }
}

/// Heartbeats of one agent, sorted by time.
fn agent_heartbeats<'a, B: Beat>(agent: &str, heartbeats: &'a [B]) -> Vec<&'a B> {
    let mut points: Vec<&B> = heartbeats
        .iter()
        .filter(|h| h.point().agent_id == agent)
        .collect();
    points.sort_by_key(|h| h.point().time_ns);
    points
}

/// Raw down spans of one agent in `[from_ns, to_ns)`, before maintenance, consecutive spans
/// with the same reason merged.
fn agent_down_spans<B: Beat>(
    points: &[&B],
    from_ns: i64,
    to_ns: i64,
    max_gap_ns: i64,
) -> Vec<(i64, i64, String)> {
    let mut spans: Vec<(i64, i64, String)> = Vec::new();
    // The last heartbeat at or before `from` and the first at or after `to` bound the timeline;
    // without them the period's own bounds stand in.
    let first = points
        .partition_point(|h| h.point().time_ns <= from_ns)
        .saturating_sub(1);
    let last = points.partition_point(|h| h.point().time_ns < to_ns);
    let inner = points
        .get(first..=last.min(points.len().saturating_sub(1)))
        .unwrap_or(&[]);
    let mut nodes: Vec<(i64, Option<&B>)> = Vec::with_capacity(inner.len() + 2);
    if inner.first().is_none_or(|h| h.point().time_ns > from_ns) {
        nodes.push((from_ns, None));
    }
    nodes.extend(inner.iter().map(|h| (h.point().time_ns, Some(*h))));
    if inner.last().is_none_or(|h| h.point().time_ns < to_ns) {
        nodes.push((to_ns, None));
    }
    for pair in nodes.windows(2) {
        let [(a, a_point), (b, b_point)] = pair else {
            continue;
        };
        // A heartbeat the gap query kept after left-out ones closes no gap (see SparsePoint).
        let gap = b.saturating_sub(*a) > max_gap_ns && !b_point.is_some_and(|p| p.dense_before());
        let reason = if gap {
            REASON_NO_HEARTBEAT.to_owned()
        } else {
            match a_point.map(|p| p.point()) {
                Some(point) if !point.processes_down.is_empty() => {
                    process_reason(&point.processes_down)
                }
                _ => continue,
            }
        };
        let (start, end) = ((*a).max(from_ns), (*b).min(to_ns));
        if start >= end {
            continue;
        }
        match spans.last_mut() {
            Some(last) if last.1 == start && last.2 == reason => last.1 = end,
            _ => spans.push((start, end, reason)),
        }
    }
    spans
}

/// The longest silence that is not downtime: two heartbeat periods.
pub fn max_gap_ns(heartbeat_interval_s: u64) -> i64 {
    i64::try_from(heartbeat_interval_s)
        .unwrap_or(i64::MAX)
        .saturating_mul(NS_PER_S)
        .saturating_mul(2)
}

/// What the uptime computation found.
#[derive(Debug, Clone, PartialEq)]
pub struct UptimeOutcome {
    pub period_ns: i64,
    /// Maintenance within the period.
    pub maintenance_ns: i64,
    /// Time outside maintenance in which at least one agent had reported: what the uptime
    /// percentage is a share of.
    pub measured_ns: i64,
    /// Union of all agents' downtime outside maintenance.
    pub downtime_ns: i64,
    /// `None` when nothing was measured (no agent had reported, or the whole period is
    /// maintenance, or it is empty).
    pub uptime_pct: Option<f64>,
    /// Every agent's down intervals outside maintenance, in time order.
    pub intervals: Vec<DownInterval>,
    /// Every agent's no-data stretches outside maintenance, in time order.
    pub no_data: Vec<NoDataInterval>,
}

/// The first heartbeat of `agent` as far as known: the store's first one ever
/// (`first_heartbeats`), or an earlier one among `points` (a spooled heartbeat that arrived
/// between the two reads).
fn first_heartbeat<B: Beat>(
    agent: &str,
    points: &[&B],
    first_heartbeats: &[(String, i64)],
) -> Option<i64> {
    let stored = first_heartbeats
        .iter()
        .filter(|(id, _)| id == agent)
        .map(|&(_, time_ns)| time_ns)
        .min();
    let seen = points.first().map(|h| h.point().time_ns);
    match (stored, seen) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Uptime of a customer served by `agents` over `[from_ns, to_ns)`.
///
/// `first_heartbeats`: each agent's first heartbeat ever (agents that never sent one are
/// absent); time before it is no data. `to_ns` must not lie in the future.
pub fn uptime(
    agents: &[String],
    heartbeats: &[HeartbeatPoint],
    first_heartbeats: &[(String, i64)],
    from_ns: i64,
    to_ns: i64,
    heartbeat_interval_s: u64,
    maintenance: &[(i64, i64)],
) -> UptimeOutcome {
    uptime_of(
        agents,
        heartbeats,
        first_heartbeats,
        from_ns,
        to_ns,
        heartbeat_interval_s,
        maintenance,
    )
}

/// [`uptime`] from the heartbeats the store's gap query kept (`Store::heartbeat_gaps` over a
/// span that starts at or before `from_ns`, read with the same heartbeat interval; pass those
/// at or after `from_ns`). The same rules and the same result as [`uptime`] over every
/// heartbeat of `[from_ns, to_ns)`, as long as `first_heartbeats` holds every agent that has
/// reported, without reading the heartbeats between gaps.
pub fn uptime_sparse(
    agents: &[String],
    heartbeats: &[SparsePoint],
    first_heartbeats: &[(String, i64)],
    from_ns: i64,
    to_ns: i64,
    heartbeat_interval_s: u64,
    maintenance: &[(i64, i64)],
) -> UptimeOutcome {
    uptime_of(
        agents,
        heartbeats,
        first_heartbeats,
        from_ns,
        to_ns,
        heartbeat_interval_s,
        maintenance,
    )
}

fn uptime_of<B: Beat>(
    agents: &[String],
    heartbeats: &[B],
    first_heartbeats: &[(String, i64)],
    from_ns: i64,
    to_ns: i64,
    heartbeat_interval_s: u64,
    maintenance: &[(i64, i64)],
) -> UptimeOutcome {
    let period_ns = to_ns.saturating_sub(from_ns).max(0);
    // Callers pass spans clipped to the period; the `min` keeps the arithmetic safe if not.
    let maintenance_ns = spans_length(maintenance).min(period_ns);
    let max_gap_ns = max_gap_ns(heartbeat_interval_s);
    let mut intervals = Vec::new();
    let mut no_data = Vec::new();
    let mut all_spans = Vec::new();
    let mut data_spans = Vec::new();
    let mut pieces = Vec::new();
    if period_ns > 0 {
        for agent in agents {
            let points = agent_heartbeats(agent, heartbeats);
            let first = first_heartbeat(agent, &points, first_heartbeats);
            // The agent has data from its first heartbeat on (or from `from` if earlier).
            let data_from = first.map_or(to_ns, |first| first.clamp(from_ns, to_ns));
            if data_from > from_ns {
                let reason = if first.is_some() {
                    NO_DATA_BEFORE_FIRST
                } else {
                    NO_DATA_NEVER_REPORTED
                };
                pieces.clear();
                subtract(from_ns, data_from, maintenance, &mut pieces);
                no_data.extend(pieces.iter().map(|&(start, end)| NoDataInterval {
                    agent: agent.clone(),
                    start_ns: start,
                    end_ns: end,
                    start: Timestamp::from_ns(start).to_string(),
                    end: Timestamp::from_ns(end).to_string(),
                    duration_s: end.saturating_sub(start) as f64 / NS_PER_S as f64,
                    reason,
                }));
            }
            if data_from >= to_ns {
                continue;
            }
            data_spans.push((data_from, to_ns));
            // Points before `data_from` cannot exist (it is at most the earliest point).
            for (start, end, reason) in agent_down_spans(&points, data_from, to_ns, max_gap_ns) {
                pieces.clear();
                subtract(start, end, maintenance, &mut pieces);
                for &(piece_start, piece_end) in &pieces {
                    all_spans.push((piece_start, piece_end));
                    intervals.push(DownInterval {
                        agent: agent.clone(),
                        start_ns: piece_start,
                        end_ns: piece_end,
                        start: Timestamp::from_ns(piece_start).to_string(),
                        end: Timestamp::from_ns(piece_end).to_string(),
                        duration_s: piece_end.saturating_sub(piece_start) as f64 / NS_PER_S as f64,
                        reason: reason.clone(),
                    });
                }
            }
        }
    }
    merge_spans(&mut all_spans);
    let downtime_ns = spans_length(&all_spans);
    merge_spans(&mut data_spans);
    let mut measured = Vec::new();
    for &(start, end) in &data_spans {
        subtract(start, end, maintenance, &mut measured);
    }
    // Downtime lies within the measured spans; the `min` keeps the arithmetic safe anyway.
    let measured_ns = spans_length(&measured).min(period_ns.saturating_sub(maintenance_ns));
    intervals.sort_by(|a, b| (a.start_ns, &a.agent).cmp(&(b.start_ns, &b.agent)));
    no_data.sort_by(|a, b| (a.start_ns, &a.agent).cmp(&(b.start_ns, &b.agent)));
    let uptime_pct = (measured_ns > 0)
        .then(|| measured_ns.saturating_sub(downtime_ns) as f64 / measured_ns as f64 * 100.0);
    UptimeOutcome {
        period_ns,
        maintenance_ns,
        measured_ns,
        downtime_ns,
        uptime_pct,
        intervals,
        no_data,
    }
}

/// Kernel drops of `agents` reported by heartbeats inside `[from_ns, to_ns)`.
pub fn capture_drops(
    agents: &[String],
    heartbeats: &[HeartbeatPoint],
    from_ns: i64,
    to_ns: i64,
    limit: usize,
) -> DropSummary {
    let mut total = 0u64;
    let mut restarts = 0u64;
    let mut intervals: Vec<DropInterval> = Vec::new();
    for agent in agents {
        let points = agent_heartbeats(agent, heartbeats);
        let mut agent_intervals: Vec<(i64, i64, u64)> = Vec::new();
        for pair in points.windows(2) {
            let [previous, current] = pair else { continue };
            if current.time_ns < from_ns || current.time_ns >= to_ns {
                continue;
            }
            let increase = match current
                .kernel_drops_total
                .checked_sub(previous.kernel_drops_total)
            {
                Some(increase) => increase,
                None => {
                    restarts += 1;
                    current.kernel_drops_total
                }
            };
            if increase == 0 {
                continue;
            }
            total = total.saturating_add(increase);
            let start = previous.time_ns.max(from_ns);
            match agent_intervals.last_mut() {
                Some(last) if last.1 == start => {
                    last.1 = current.time_ns;
                    last.2 = last.2.saturating_add(increase);
                }
                _ => agent_intervals.push((start, current.time_ns, increase)),
            }
        }
        intervals.extend(
            agent_intervals
                .into_iter()
                .map(|(start, end, drops)| DropInterval {
                    agent: agent.clone(),
                    start_ns: start,
                    end_ns: end,
                    start: String::new(),
                    end: String::new(),
                    drops,
                }),
        );
    }
    intervals.sort_by(|a, b| (a.start_ns, &a.agent).cmp(&(b.start_ns, &b.agent)));
    let intervals_total = intervals.len() as u64;
    intervals.truncate(limit);
    for interval in &mut intervals {
        interval.start = Timestamp::from_ns(interval.start_ns).to_string();
        interval.end = Timestamp::from_ns(interval.end_ns).to_string();
    }
    DropSummary {
        total,
        restarts,
        windows_with_drops: 0,
        intervals_total,
        intervals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use voqa_wire::time::NS_PER_MIN;

    const S: i64 = NS_PER_S;

    fn beat(agent: &str, time_s: i64, down: &[&str], drops: u64) -> HeartbeatPoint {
        HeartbeatPoint {
            agent_id: agent.into(),
            time_ns: time_s * S,
            processes_down: down.iter().map(|s| s.to_string()).collect(),
            kernel_drops_total: drops,
        }
    }

    fn every_15_s(agent: &str, from_s: i64, to_s: i64) -> Vec<HeartbeatPoint> {
        (from_s..to_s)
            .step_by(15)
            .map(|t| beat(agent, t, &[], 0))
            .collect()
    }

    fn agents(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn regular_heartbeats_mean_full_uptime() {
        let beats = every_15_s("a", 0, 3600);
        let out = uptime(&agents(&["a"]), &beats, &[], 0, 3600 * S, 15, &[]);
        assert_eq!(out.downtime_ns, 0);
        assert_eq!(out.uptime_pct, Some(100.0));
        assert!(out.intervals.is_empty());
    }

    #[test]
    fn a_gap_longer_than_two_periods_is_down_whole() {
        // Heartbeats every 15 s over an hour, none in (600, 900): gap 600 -> 900 = 300 s.
        let mut beats = every_15_s("a", 0, 3600);
        beats.retain(|h| h.time_ns <= 600 * S || h.time_ns >= 900 * S);
        let out = uptime(&agents(&["a"]), &beats, &[], 0, 3600 * S, 15, &[]);
        assert_eq!(out.downtime_ns, 300 * S);
        assert_eq!(out.uptime_pct, Some(3300.0 / 3600.0 * 100.0));
        assert_eq!(out.intervals.len(), 1);
        assert_eq!(out.intervals[0].reason, "no heartbeat");
        assert_eq!(
            (out.intervals[0].start_ns, out.intervals[0].end_ns),
            (600 * S, 900 * S)
        );
        // Exactly two periods is still up; 30 s + 1 ns is not.
        let beats = vec![beat("a", 0, &[], 0), beat("a", 30, &[], 0)];
        assert_eq!(
            uptime(&agents(&["a"]), &beats, &[], 0, 30 * S, 15, &[]).downtime_ns,
            0
        );
        let mut late = beats.clone();
        late[1].time_ns += 1;
        assert_eq!(
            uptime(&agents(&["a"]), &late, &[], 0, 30 * S, 15, &[]).downtime_ns,
            30 * S
        );
    }

    /// The agent's first heartbeat ever was long before the periods of a test.
    fn reported_before(names: &[&str]) -> Vec<(String, i64)> {
        names.iter().map(|s| (s.to_string(), -3600 * S)).collect()
    }

    #[test]
    fn period_edges_count_as_gaps_unless_outer_heartbeats_are_given() {
        // First heartbeat 40 s after `from`, last 50 s before `to`; the agent had reported
        // before the period.
        let beats = every_15_s("a", 40, 560);
        let before = reported_before(&["a"]);
        let out = uptime(&agents(&["a"]), &beats, &before, 0, 600 * S, 15, &[]);
        // Heartbeats at 40, 55, ..., 550: down [0, 40) and [550, 600).
        assert_eq!(out.downtime_ns, 90 * S);
        assert_eq!(out.measured_ns, 600 * S);
        assert!(out.no_data.is_empty());
        // Had it first reported at 40 s, [0, 40) would be no data, not down: 50 of 560 s down.
        let out = uptime(&agents(&["a"]), &beats, &[], 0, 600 * S, 15, &[]);
        assert_eq!((out.downtime_ns, out.measured_ns), (50 * S, 560 * S));
        assert_eq!(out.uptime_pct, Some(510.0 / 560.0 * 100.0));
        let no_data: Vec<(i64, i64, &str)> = out
            .no_data
            .iter()
            .map(|i| (i.start_ns / S, i.end_ns / S, i.reason))
            .collect();
        assert_eq!(no_data, vec![(0, 40, NO_DATA_BEFORE_FIRST)]);
        // A heartbeat 5 s before `from` and one 10 s after `to` make the edges short gaps.
        let mut framed = beats.clone();
        framed.push(beat("a", 570, &[], 0));
        framed.push(beat("a", 590, &[], 0));
        framed.push(beat("a", 615, &[], 0));
        framed.push(beat("a", -5, &[], 0));
        framed.push(beat("a", 25, &[], 0));
        assert_eq!(
            uptime(&agents(&["a"]), &framed, &[], 0, 600 * S, 15, &[]).downtime_ns,
            0
        );
    }

    #[test]
    fn process_down_marks_until_the_next_heartbeat() {
        let mut beats = every_15_s("a", 0, 600);
        for h in beats
            .iter_mut()
            .filter(|h| (60 * S..105 * S).contains(&h.time_ns))
        {
            h.processes_down = vec!["asterisk".into(), "rtpengine".into()];
        }
        let out = uptime(&agents(&["a"]), &beats, &[], 0, 600 * S, 15, &[]);
        // Heartbeats 60, 75, 90 report it down: down [60, 105).
        assert_eq!(out.downtime_ns, 45 * S);
        assert_eq!(out.intervals.len(), 1);
        assert_eq!(
            out.intervals[0].reason,
            "process asterisk down, process rtpengine down"
        );
        // The last heartbeat reporting a process down keeps it down until `to`.
        let mut beats = every_15_s("a", 0, 600);
        if let Some(last) = beats.last_mut() {
            last.processes_down = vec!["asterisk".into()];
        }
        let out = uptime(&agents(&["a"]), &beats, &[], 0, 600 * S, 15, &[]);
        assert_eq!(out.downtime_ns, 15 * S);
        assert_eq!(out.intervals[0].reason, "process asterisk down");
    }

    #[test]
    fn customer_downtime_is_the_union_over_agents() {
        // a: gap 100..200; b: gap 150..300. Union 100..300 = 200 s; evidence lists both.
        let mut a = every_15_s("a", 0, 600);
        a.retain(|h| h.time_ns <= 100 * S || h.time_ns >= 200 * S);
        a.push(beat("a", 100, &[], 0));
        a.push(beat("a", 200, &[], 0));
        let mut b = every_15_s("b", 0, 600);
        b.retain(|h| h.time_ns <= 150 * S || h.time_ns >= 300 * S);
        b.push(beat("b", 300, &[], 0));
        let all: Vec<HeartbeatPoint> = a.into_iter().chain(b).collect();
        let out = uptime(&agents(&["a", "b"]), &all, &[], 0, 600 * S, 15, &[]);
        assert_eq!(out.downtime_ns, 200 * S);
        let spans: Vec<(&str, i64, i64)> = out
            .intervals
            .iter()
            .map(|i| (i.agent.as_str(), i.start_ns / S, i.end_ns / S))
            .collect();
        assert_eq!(spans, vec![("a", 100, 200), ("b", 150, 300)]);
        // Heartbeats of agents not serving the customer are ignored. An agent that has never
        // reported is no data, not down: the uptime is a's alone, 100..200 down of 600 s.
        let out = uptime(&agents(&["a", "c"]), &all, &[], 0, 600 * S, 15, &[]);
        assert_eq!(out.uptime_pct, Some(500.0 / 600.0 * 100.0));
        assert_eq!(out.measured_ns, 600 * S);
        assert_eq!(out.no_data.len(), 1);
        assert_eq!(
            (
                out.no_data[0].agent.as_str(),
                out.no_data[0].start_ns,
                out.no_data[0].end_ns,
                out.no_data[0].reason
            ),
            ("c", 0, 600 * S, NO_DATA_NEVER_REPORTED)
        );
        // Once c has reported (before the period) and falls silent, it is down all along.
        let before = reported_before(&["c"]);
        let out = uptime(&agents(&["a", "c"]), &all, &before, 0, 600 * S, 15, &[]);
        assert_eq!(out.uptime_pct, Some(0.0));
        assert!(out.no_data.is_empty());
    }

    #[test]
    fn maintenance_is_removed_from_period_and_downtime() {
        // Gap 100..400, maintenance 300..500: 200 s counted of 600 - 200 observed.
        let beats = vec![
            beat("a", 0, &[], 0),
            beat("a", 100, &[], 0),
            beat("a", 400, &[], 0),
        ];
        let mut beats = beats;
        beats.extend(every_15_s("a", 410, 620));
        let out = uptime(
            &agents(&["a"]),
            &beats,
            &[],
            0,
            600 * S,
            15,
            &[(300 * S, 500 * S)],
        );
        // Also down: 0 -> 100 gap (100 s).
        assert_eq!(out.maintenance_ns, 200 * S);
        assert_eq!(out.downtime_ns, 300 * S);
        assert_eq!(out.uptime_pct, Some(100.0 / 400.0 * 100.0));
        let spans: Vec<(i64, i64)> = out
            .intervals
            .iter()
            .map(|i| (i.start_ns / S, i.end_ns / S))
            .collect();
        // The two gaps touch and share a reason, so they read as one interval.
        assert_eq!(spans, vec![(0, 300)]);
        // A period entirely inside maintenance has no uptime figure.
        let out = uptime(
            &agents(&["a"]),
            &[],
            &[],
            310 * S,
            490 * S,
            15,
            &[(310 * S, 490 * S)],
        );
        assert_eq!(out.uptime_pct, None);
        assert_eq!(out.downtime_ns, 0);
    }

    #[test]
    fn an_agent_that_never_reported_is_no_data_not_down() {
        // The fresh collector: no heartbeat ever. Nothing measured, nothing down.
        let out = uptime(&agents(&["a"]), &[], &[], 0, 3600 * S, 15, &[]);
        assert_eq!(out.uptime_pct, None);
        assert_eq!((out.downtime_ns, out.measured_ns), (0, 0));
        assert!(out.intervals.is_empty());
        assert_eq!(out.no_data.len(), 1);
        assert_eq!(out.no_data[0].reason, NO_DATA_NEVER_REPORTED);
        assert_eq!(out.no_data[0].duration_s, 3600.0);
        // Maintenance is neither: it is cut out of the no-data stretch.
        let out = uptime(
            &agents(&["a"]),
            &[],
            &[],
            0,
            3600 * S,
            15,
            &[(600 * S, 1200 * S)],
        );
        let no_data: Vec<(i64, i64)> = out
            .no_data
            .iter()
            .map(|i| (i.start_ns / S, i.end_ns / S))
            .collect();
        assert_eq!(no_data, vec![(0, 600), (1200, 3600)]);
        // An agent whose first heartbeat comes after the period is no data for it too.
        let out = uptime(
            &agents(&["a"]),
            &[],
            &[("a".into(), 7200 * S)],
            0,
            3600 * S,
            15,
            &[],
        );
        assert_eq!(out.uptime_pct, None);
        assert_eq!(out.no_data[0].reason, NO_DATA_BEFORE_FIRST);
        // An agent that reported before and is silent throughout the period is down.
        let before = reported_before(&["a"]);
        let out = uptime(&agents(&["a"]), &[], &before, 0, 3600 * S, 15, &[]);
        assert_eq!(out.uptime_pct, Some(0.0));
        assert_eq!(out.intervals[0].reason, "no heartbeat");
        // ... unless the period is shorter than two heartbeat periods (its bounds stand in
        // for heartbeats).
        let out = uptime(&agents(&["a"]), &[], &before, 0, 10 * S, 15, &[]);
        assert_eq!(out.uptime_pct, Some(100.0));
        let out = uptime(&agents(&["a"]), &[], &before, 5 * S, 5 * S, 15, &[]);
        assert_eq!(out.uptime_pct, None);
    }

    #[test]
    fn reporting_from_mid_period_then_silent() {
        // Period [0, 3600). The agent first reports at 1000 s, every 15 s until 1990 s, then
        // falls silent. [0, 1000) is no data; the gap 1990 -> 3600 (> 30 s) is down whole.
        let beats = every_15_s("a", 1000, 2000);
        assert_eq!(beats.last().map(|h| h.time_ns), Some(1990 * S));
        let first = vec![("a".to_string(), 1000 * S)];
        let out = uptime(&agents(&["a"]), &beats, &first, 0, 3600 * S, 15, &[]);
        assert_eq!(out.measured_ns, 2600 * S);
        assert_eq!(out.downtime_ns, 1610 * S);
        assert_eq!(out.uptime_pct, Some(990.0 / 2600.0 * 100.0));
        let down: Vec<(i64, i64)> = out
            .intervals
            .iter()
            .map(|i| (i.start_ns / S, i.end_ns / S))
            .collect();
        assert_eq!(down, vec![(1990, 3600)]);
        let no_data: Vec<(i64, i64)> = out
            .no_data
            .iter()
            .map(|i| (i.start_ns / S, i.end_ns / S))
            .collect();
        assert_eq!(no_data, vec![(0, 1000)]);
        // Judged at 2010 s (the caller passes min(to, now)), the agent has been silent 20 s,
        // under two periods: not down yet.
        let out = uptime(&agents(&["a"]), &beats, &first, 0, 2010 * S, 15, &[]);
        assert_eq!((out.downtime_ns, out.measured_ns), (0, 1010 * S));
        assert_eq!(out.uptime_pct, Some(100.0));
        // At 2021 s it has been silent 31 s: down from its last heartbeat.
        let out = uptime(&agents(&["a"]), &beats, &first, 0, 2021 * S, 15, &[]);
        assert_eq!(out.downtime_ns, 31 * S);
        // A heartbeat earlier than the stored first one (spooled, arrived in between) counts.
        let mut spooled = beats.clone();
        spooled.push(beat("a", 985, &[], 0));
        let out = uptime(&agents(&["a"]), &spooled, &first, 0, 2010 * S, 15, &[]);
        assert_eq!(out.measured_ns, 1025 * S);
    }

    #[test]
    fn drops_with_a_counter_reset() {
        // a: 0 (baseline), 10, 10, 25, [restart] 4, 9 -> 10 + 15 + 4 + 5 = 34 drops, 1 restart.
        let beats = vec![
            beat("a", 0, &[], 0),
            beat("a", 15, &[], 10),
            beat("a", 30, &[], 10),
            beat("a", 45, &[], 25),
            beat("a", 60, &[], 4),
            beat("a", 75, &[], 9),
            beat("a", 90, &[], 9),
            beat("b", 0, &[], 1000),
            beat("b", 30, &[], 1003),
        ];
        let out = capture_drops(&agents(&["a", "b"]), &beats, 0, 100 * S, 100);
        assert_eq!(out.total, 37);
        assert_eq!(out.restarts, 1);
        let spans: Vec<(&str, i64, i64, u64)> = out
            .intervals
            .iter()
            .map(|i| (i.agent.as_str(), i.start_ns / S, i.end_ns / S, i.drops))
            .collect();
        assert_eq!(
            spans,
            vec![("a", 0, 15, 10), ("b", 0, 30, 3), ("a", 30, 75, 24)]
        );
        assert_eq!(out.intervals[0].end, "1970-01-01T00:00:15.000000Z");
        // Only increases reported inside the period count; the cap keeps the total count.
        let out = capture_drops(&agents(&["a"]), &beats, 20 * S, 50 * S, 1);
        assert_eq!((out.total, out.restarts, out.intervals_total), (15, 0, 1));
        assert_eq!(
            (out.intervals[0].start_ns, out.intervals[0].end_ns),
            (30 * S, 45 * S)
        );
        let out = capture_drops(&agents(&["a"]), &beats, 0, 100 * S, 1);
        assert_eq!((out.intervals_total, out.intervals.len()), (2, 1));
    }

    #[test]
    fn merge_and_subtract_spans() {
        let mut spans = vec![(5, 7), (1, 3), (2, 4), (4, 5), (9, 9), (10, 12)];
        merge_spans(&mut spans);
        assert_eq!(spans, vec![(1, 7), (10, 12)]);
        assert_eq!(spans_length(&spans), 8);
        let mut out = Vec::new();
        subtract(0, 20, &spans, &mut out);
        assert_eq!(out, vec![(0, 1), (7, 10), (12, 20)]);
        out.clear();
        subtract(2, 6, &spans, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn heartbeat_point_from_wire() {
        let heartbeat = voqa_wire::Heartbeat {
            agent_id: "a".into(),
            agent_version: "0.1.0".into(),
            time: Timestamp::from_ns(NS_PER_MIN),
            host_uptime_s: 1,
            cpu_pct: 0.0,
            agent_cpu_pct: 0.0,
            mem_total_bytes: 0,
            mem_used_bytes: 0,
            agent_rss_bytes: 0,
            load_avg: [0.0; 3],
            workers: vec![
                voqa_wire::WorkerCounters {
                    worker: 0,
                    kernel_drops: 3,
                    ..Default::default()
                },
                voqa_wire::WorkerCounters {
                    worker: 1,
                    kernel_drops: 4,
                    ..Default::default()
                },
            ],
            streams_tracked: 0,
            streams_evicted: 0,
            processes: vec![
                voqa_wire::ProcessState {
                    name: "asterisk".into(),
                    up: false,
                    count: 0,
                },
                voqa_wire::ProcessState {
                    name: "kamailio".into(),
                    up: true,
                    count: 2,
                },
            ],
            shipping: None,
        };
        let point = HeartbeatPoint::from_heartbeat(&heartbeat);
        assert_eq!(point, beat("a", 60, &["asterisk"], 7));
        assert_eq!(point.time_ns, NS_PER_MIN);
    }

    proptest! {
        #[test]
        fn downtime_is_bounded_by_the_observed_period(
            times in proptest::collection::vec(-100i64..1000, 0..40),
            down in proptest::collection::vec(any::<bool>(), 40),
            maintenance_start in 0i64..900, maintenance_length in 0i64..300,
        ) {
            let beats: Vec<HeartbeatPoint> = times
                .iter()
                .zip(&down)
                .map(|(&t, &d)| beat("a", t, if d { &["x"] } else { &[] }, 0))
                .collect();
            let maintenance = [(maintenance_start * S, (maintenance_start + maintenance_length).min(900) * S)];
            let maintenance: Vec<(i64, i64)> = maintenance.into_iter().filter(|(s, e)| s < e).collect();
            let out = uptime(&agents(&["a"]), &beats, &[], 0, 900 * S, 15, &maintenance);
            prop_assert!(out.downtime_ns >= 0);
            prop_assert!(out.downtime_ns <= out.period_ns - out.maintenance_ns);
            if let Some(pct) = out.uptime_pct {
                prop_assert!((0.0..=100.0).contains(&pct));
            }
            for i in &out.intervals {
                prop_assert!(0 <= i.start_ns && i.start_ns < i.end_ns && i.end_ns <= 900 * S);
                prop_assert!(maintenance.iter().all(|(s, e)| i.end_ns <= *s || i.start_ns >= *e));
            }
        }
    }
}
