//! The alert engine's reads of all customers at once: each cycle reads every aggregate its
//! rules need for every customer in one query per aggregate (grouped by agent in SQL, summed
//! per customer here), instead of about four queries per customer — 1,000 customers cost
//! 4,000 round trips a cycle before.
//!
//! What it fills in is exactly what each customer's own reads (`engine::observe`) would
//! read: the per-agent rows of one query are the rows of the per-customer query split by
//! agent, and counts add up (a test compares both on SQLite and PostgreSQL). Customers
//! narrowed to subnets keep their own call reads (their scope is their own, attributed at
//! ingest); a batched read that fails leaves its figures out, and each customer then reads
//! them itself and reports its own error. Must not: judge anything (`rules`, `state`), read a
//! clock, or write.

use std::collections::BTreeMap;

use super::config::{RuleConfig, RuleKind};
use super::engine::CustomerReads;
use super::rules;
use crate::sla::Customer;
use crate::sla::uptime::SparsePoint;
use crate::store::alert_reads::{HeartbeatGapRow, ProblemCallCounts};
use crate::store::{CallStats, Store};

/// Most agents of one `window_histograms` query.
const CHUNK: usize = 1000;

/// The rules that apply to `customer` (global ones and its own).
pub(super) fn rules_of<'a>(
    rules: &'a [RuleConfig],
    customer: &'a Customer,
) -> impl Iterator<Item = &'a RuleConfig> {
    rules
        .iter()
        .filter(|r| r.customer.as_ref().is_none_or(|c| *c == customer.id))
}

/// The starts of the call-stats spans ending now that the customer's rules read
/// (`quality_drop`'s window, `sla_burn`'s two windows over MOS or loss), sorted, once each.
pub(super) fn stats_spans(rules: &[RuleConfig], customer: &Customer, now_ns: i64) -> Vec<i64> {
    let mut froms = Vec::new();
    for rule in rules_of(rules, customer) {
        match rule.kind {
            RuleKind::QualityDrop => {
                froms.push(now_ns.saturating_sub(rule.window.unwrap_or_default().ns()));
            }
            RuleKind::SlaBurn
                if rule
                    .burn_commitments()
                    .iter()
                    .any(|k| k == "mos" || k == "loss") =>
            {
                let policy = rule.burn_policy();
                for span in [policy.long, policy.short] {
                    froms.push(
                        now_ns.saturating_sub(i64::try_from(span.as_nanos()).unwrap_or(i64::MAX)),
                    );
                }
            }
            _ => {}
        }
    }
    froms.sort_unstable();
    froms.dedup();
    froms
}

/// The agents once each, in Rust's order: what a per-customer query's `agent_id IN (…)`
/// matches, and the order `Store::heartbeat_gaps` returns them in.
fn unique(agents: &[String]) -> Vec<&String> {
    let mut agents: Vec<&String> = agents.iter().collect();
    agents.sort_unstable();
    agents.dedup();
    agents
}

/// The agents of all `customers`, once each.
fn all_agents(customers: &[&Customer]) -> Vec<String> {
    let mut agents: Vec<String> = customers
        .iter()
        .flat_map(|c| c.agents.iter().cloned())
        .collect();
    agents.sort_unstable();
    agents.dedup();
    agents
}

/// The gap rows as `sla::uptime::uptime_sparse` reads them.
pub(super) fn sparse_points(rows: impl IntoIterator<Item = HeartbeatGapRow>) -> Vec<SparsePoint> {
    rows.into_iter()
        .map(|h| SparsePoint {
            point: crate::facts::heartbeat_point(h.agent_id, h.time_ns, h.any_process_down, 0),
            dense_before: h.dense_before,
        })
        .collect()
}

/// Every customer's reads for this cycle that can be read for all at once, by customer id.
/// `uptime_span_ns` is the span each customer's heartbeats are read over (`None`: the uptime
/// burns are not evaluated this cycle).
pub(super) async fn read_all(
    store: &Store,
    rules: &[RuleConfig],
    customers: &[Customer],
    now_ns: i64,
    uptime_span_ns: Option<i64>,
) -> BTreeMap<String, CustomerReads> {
    let (stats, problems, windows, points) = tokio::join!(
        call_stats(store, rules, customers, now_ns),
        problem_counts(store, rules, customers, now_ns),
        window_counts(store, rules, customers, now_ns),
        heartbeat_gaps(store, rules, customers, now_ns, uptime_span_ns),
    );
    let mut reads: BTreeMap<String, CustomerReads> = BTreeMap::new();
    for (customer, span, value) in stats {
        reads
            .entry(customer)
            .or_default()
            .stats
            .insert(span, Some(value));
    }
    for (customer, from, value) in problems {
        reads
            .entry(customer)
            .or_default()
            .problems
            .insert(from, value);
    }
    for (customer, from, value) in windows {
        reads
            .entry(customer)
            .or_default()
            .windows
            .insert(from, value);
    }
    for (customer, from, value) in points {
        reads.entry(customer).or_default().points = Some((from, value));
    }
    reads
}

/// The call stats of every span of every customer not narrowed to subnets: one query per
/// set of spans and thresholds (customers with the same rules and commitments share one).
async fn call_stats(
    store: &Store,
    rules: &[RuleConfig],
    customers: &[Customer],
    now_ns: i64,
) -> Vec<(String, (i64, i64), CallStats)> {
    type Key = (Vec<i64>, u64, u64);
    let mut groups: BTreeMap<Key, Vec<&Customer>> = BTreeMap::new();
    for customer in customers.iter().filter(|c| c.subnets.is_empty()) {
        let froms = stats_spans(rules, customer, now_ns);
        if froms.is_empty() {
            continue;
        }
        let c = &customer.commitments;
        groups
            .entry((froms, c.mos_min.to_bits(), c.loss_max_pct.to_bits()))
            .or_default()
            .push(customer);
    }
    let mut out = Vec::new();
    for ((froms, mos_min, loss_max), members) in groups {
        let rows = match store
            .call_stats_spans_by_agent(
                "",
                &all_agents(&members),
                &froms,
                now_ns,
                f64::from_bits(mos_min),
                f64::from_bits(loss_max),
            )
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!("alerts: call stats of all customers not read at once: {e}");
                continue;
            }
        };
        let by_agent: BTreeMap<&str, &Vec<CallStats>> =
            rows.iter().map(|(a, s)| (a.as_str(), s)).collect();
        for customer in members {
            let mut sums = vec![CallStats::default(); froms.len()];
            for agent in unique(&customer.agents) {
                if let Some(spans) = by_agent.get(agent.as_str()) {
                    for (sum, one) in sums.iter_mut().zip(spans.iter()) {
                        sum.add(one);
                    }
                }
            }
            for (from, sum) in froms.iter().zip(sums) {
                out.push((customer.id.clone(), (*from, now_ns), sum));
            }
        }
    }
    out
}

/// `quality_drop`'s problem-call counts of every customer not narrowed to subnets, by the
/// window's start: one query per window and MOS minimum.
async fn problem_counts(
    store: &Store,
    rules: &[RuleConfig],
    customers: &[Customer],
    now_ns: i64,
) -> Vec<(String, i64, ProblemCallCounts)> {
    let mut groups: BTreeMap<(i64, u64), Vec<&Customer>> = BTreeMap::new();
    for customer in customers.iter().filter(|c| c.subnets.is_empty()) {
        for rule in rules_of(rules, customer).filter(|r| r.kind == RuleKind::QualityDrop) {
            let from = now_ns.saturating_sub(rule.window.unwrap_or_default().ns());
            let members = groups
                .entry((from, customer.commitments.mos_min.to_bits()))
                .or_default();
            if !members.iter().any(|m| m.id == customer.id) {
                members.push(customer);
            }
        }
    }
    let mut out = Vec::new();
    for ((from, mos_min), members) in groups {
        let rows = match store
            .problem_call_counts_by_agent(
                "",
                &all_agents(&members),
                from,
                now_ns,
                f64::from_bits(mos_min),
            )
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!("alerts: problem calls of all customers not read at once: {e}");
                continue;
            }
        };
        let by_agent: BTreeMap<&str, &ProblemCallCounts> =
            rows.iter().map(|(a, c)| (a.as_str(), c)).collect();
        for customer in members {
            let mut sum = ProblemCallCounts::default();
            for agent in unique(&customer.agents) {
                if let Some(one) = by_agent.get(agent.as_str()) {
                    sum.add(one);
                }
            }
            out.push((customer.id.clone(), from, sum));
        }
    }
    out
}

/// `capture_incomplete`'s report windows of every customer (no scope: all of its agents'),
/// as (windows, incomplete) by the window's start: one query per rule window.
async fn window_counts(
    store: &Store,
    rules: &[RuleConfig],
    customers: &[Customer],
    now_ns: i64,
) -> Vec<(String, i64, (u64, u64))> {
    let mut groups: BTreeMap<i64, Vec<&Customer>> = BTreeMap::new();
    for customer in customers {
        for rule in rules_of(rules, customer).filter(|r| r.kind == RuleKind::CaptureIncomplete) {
            let from = now_ns.saturating_sub(rule.window.unwrap_or_default().ns());
            let members = groups.entry(from).or_default();
            if !members.iter().any(|m| m.id == customer.id) {
                members.push(customer);
            }
        }
    }
    let mut out = Vec::new();
    'window: for (from, members) in groups {
        let mut by_agent: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for chunk in all_agents(&members).chunks(CHUNK) {
            match store.window_histograms(chunk, from, now_ns).await {
                Ok(rows) => {
                    for row in rows {
                        by_agent.entry(row.agent_id.clone()).or_default().push(row);
                    }
                }
                Err(e) => {
                    tracing::debug!(
                        "alerts: report windows of all customers not read at once: {e}"
                    );
                    continue 'window;
                }
            }
        }
        let counts: BTreeMap<&str, (u64, u64)> = by_agent
            .iter()
            .map(|(a, rows)| (a.as_str(), rules::incomplete_windows(rows)))
            .collect();
        for customer in members {
            let (mut n, mut incomplete) = (0, 0);
            for agent in unique(&customer.agents) {
                if let Some((a, b)) = counts.get(agent.as_str()) {
                    n += a;
                    incomplete += b;
                }
            }
            out.push((customer.id.clone(), from, (n, incomplete)));
        }
    }
    out
}

/// The uptime burns' heartbeats of every customer one of whose rules burns uptime, over
/// `[now − span, now)`: one read per heartbeat interval (the gap length follows from it).
async fn heartbeat_gaps(
    store: &Store,
    rules: &[RuleConfig],
    customers: &[Customer],
    now_ns: i64,
    span_ns: Option<i64>,
) -> Vec<(String, i64, Vec<SparsePoint>)> {
    let Some(span_ns) = span_ns else {
        return Vec::new();
    };
    let from = now_ns - span_ns;
    let mut groups: BTreeMap<u64, Vec<&Customer>> = BTreeMap::new();
    for customer in customers {
        let burns_uptime = rules_of(rules, customer).any(|r| {
            r.kind == RuleKind::SlaBurn && r.burn_commitments().iter().any(|c| c == "uptime")
        });
        if burns_uptime {
            groups
                .entry(customer.commitments.heartbeat_interval_s)
                .or_default()
                .push(customer);
        }
    }
    let mut out = Vec::new();
    for (interval_s, members) in groups {
        let max_gap = crate::sla::uptime::max_gap_ns(interval_s);
        let rows = match store
            .heartbeat_gaps(&all_agents(&members), from, now_ns, max_gap)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!("alerts: heartbeats of all customers not read at once: {e}");
                continue;
            }
        };
        let mut by_agent: BTreeMap<String, Vec<HeartbeatGapRow>> = BTreeMap::new();
        for row in rows {
            by_agent.entry(row.agent_id.clone()).or_default().push(row);
        }
        for customer in members {
            let rows = unique(&customer.agents)
                .into_iter()
                .filter_map(|a| by_agent.get(a.as_str()))
                .flatten()
                .cloned();
            out.push((customer.id.clone(), from, sparse_points(rows)));
        }
    }
    out
}
