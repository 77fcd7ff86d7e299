//! Facts: what the SLA engine needs for one customer and period, loaded from the store
//! (store → facts → sla): per-call aggregates, hourly jitter rollups (plus single windows for
//! the parts of the period that are not whole hours) and heartbeats. Aggregates of a customer
//! narrowed to subnets are kept in its own scope, attributed at ingest since its agents and
//! subnets were configured (`Store::register_scope`); a period that starts before that is
//! evaluated from the stream reports instead, streamed a page at a time through
//! [`sla::ReportFold`] so that memory does not grow with the number of reports.
//!
//! Called by the API, and meant for the report command and the demo alike: it takes the store
//! and returns its own error, and knows nothing of HTTP. Holds no SLA rules (those are in
//! `sla`) and writes only scope registrations.

use voqa_wire::histogram::decode_jitter_histogram_bytes;

use crate::sla::{self, BreachingCall, CallFacts, EVIDENCE_LIMIT, HeartbeatPoint, PeriodFacts};
use crate::store::{CallAggregate, HOUR_NS, Store, StoreError, StreamQuery, Worst};

/// Stream reports read per page on the report-based path: one page is what an evaluation
/// holds of them at a time (a report takes a few kB parsed).
pub const REPORT_PAGE: u32 = 500;

/// Why the facts of a period could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    /// The store failed a read.
    #[error("reading the store: {0}")]
    Store(#[from] StoreError),
    /// A blocking part of the evaluation (folding reports, merging histograms) panicked or
    /// was cancelled.
    #[error("evaluation task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Evaluates a customer's commitments over `[from, to)` from what the store holds, as of
/// `now`: the facts are loaded up to `min(to, now)` only, since the future is not judged.
pub async fn evaluate(
    store: &Store,
    customer: &sla::Customer,
    from: i64,
    to: i64,
    now: i64,
) -> Result<sla::Evaluation, FactsError> {
    Ok(evaluate_with_facts(store, customer, from, to, now).await?.0)
}

/// [`evaluate`], also returning the facts the verdicts rest on (the customer report draws
/// its jitter percentiles from the same merged histogram as the jitter verdict).
pub async fn evaluate_with_facts(
    store: &Store,
    customer: &sla::Customer,
    from: i64,
    to: i64,
    now: i64,
) -> Result<(sla::Evaluation, PeriodFacts), FactsError> {
    let (period_to, to) = (to, sla::evaluated_until(from, to, now));
    let mut facts = period_facts(store, customer, from, to).await?;
    facts.call_counts = Some(call_counts(store, customer, from, to).await?);
    let points = heartbeat_points(store, customer, from, to).await?;
    let first = store.first_heartbeats(&customer.agents).await?;
    let evaluation = sla::judge(customer, from, period_to, now, &facts, &points, &first);
    Ok((evaluation, facts))
}

/// The scope of the per-call aggregates that a period starting at `from` is judged on:
/// `""` (all of the agents' traffic), the customer's id when narrowed to subnets and
/// attributed since before `from`, or `None` when the period must be evaluated from the
/// stream reports instead.
pub async fn calls_scope(
    store: &Store,
    customer: &sla::Customer,
    from: i64,
) -> Result<Option<String>, FactsError> {
    if customer.subnets.is_empty() {
        return Ok(Some(String::new()));
    }
    let since = store
        .scope_since(&customer.id, &sla::scope_signature(customer))
        .await?;
    Ok(since
        .filter(|&since| from >= since)
        .map(|_| customer.id.clone()))
}

/// Everything but heartbeats that the verdicts rest on: from the aggregates where they
/// cover the period, otherwise from the stream reports.
pub async fn period_facts(
    store: &Store,
    customer: &sla::Customer,
    from: i64,
    to: i64,
) -> Result<PeriodFacts, FactsError> {
    match calls_scope(store, customer, from).await? {
        Some(scope) => facts_from_aggregates(store, customer, &scope, from, to).await,
        None => facts_from_reports(store, customer, from, to).await,
    }
}

/// The summed call-record counts (issue 12) of the customer's hours starting in `[from, to)`:
/// all of its agents' calls, or for a customer narrowed to subnets the calls attributed to it
/// at ingest.
pub async fn call_counts(
    store: &Store,
    customer: &sla::Customer,
    from: i64,
    to: i64,
) -> Result<sla::kpis::CallCounts, FactsError> {
    let rows = store
        .call_counts(
            call_counts_scope(customer),
            &customer.agents,
            from,
            to,
            crate::store::CallGroup::Total,
        )
        .await?;
    let mut total = sla::kpis::CallCounts::default();
    for row in &rows {
        total.add(&row.counts);
    }
    Ok(total)
}

/// The scope a customer's call counts are kept under: its agents' (`""`), or its own when it is
/// narrowed to subnets (attributed at ingest).
fn call_counts_scope(customer: &sla::Customer) -> &str {
    if customer.subnets.is_empty() {
        ""
    } else {
        customer.id.as_str()
    }
}

/// As [`call_counts`], for the calls of one peer (a trunk: its IP address, port left out).
/// Peers beyond the hourly cap are counted only under `other` and are not found here.
pub async fn call_counts_of_peer(
    store: &Store,
    customer: &sla::Customer,
    from: i64,
    to: i64,
    peer: &str,
) -> Result<sla::kpis::CallCounts, FactsError> {
    let rows = store
        .call_counts(
            call_counts_scope(customer),
            &customer.agents,
            from,
            to,
            crate::store::CallGroup::Peer,
        )
        .await?;
    let mut total = sla::kpis::CallCounts::default();
    for row in rows.iter().filter(|r| r.label == peer) {
        total.add(&row.counts);
    }
    Ok(total)
}

/// The heartbeats of the customer's agents in `[from, to)`, as the uptime check reads them.
pub async fn heartbeat_points(
    store: &Store,
    customer: &sla::Customer,
    from: i64,
    to: i64,
) -> Result<Vec<HeartbeatPoint>, FactsError> {
    let beats = store.heartbeats(&customer.agents, from, to).await?;
    Ok(beats
        .into_iter()
        .map(|h| {
            heartbeat_point(
                h.agent_id,
                h.time_ns,
                h.any_process_down,
                h.kernel_drops_total,
            )
        })
        .collect())
}

/// The uptime check's view of a stored heartbeat: the store keeps only whether a watched
/// process was down, so that is one process named "watched process".
pub fn heartbeat_point(
    agent_id: String,
    time_ns: i64,
    any_process_down: bool,
    kernel_drops_total: u64,
) -> HeartbeatPoint {
    HeartbeatPoint {
        agent_id,
        time_ns,
        processes_down: if any_process_down {
            vec!["watched process".to_owned()]
        } else {
            Vec::new()
        },
        kernel_drops_total,
    }
}

/// The slow path: the period's reports, [`REPORT_PAGE`] at a time, folded as they come.
/// Holds one page and the fold's state (see [`sla::ReportFold`]), never the whole period.
async fn facts_from_reports(
    store: &Store,
    customer: &sla::Customer,
    from: i64,
    to: i64,
) -> Result<PeriodFacts, FactsError> {
    let mut fold = sla::ReportFold::new(customer, from, to);
    let mut query = StreamQuery {
        agents: Some(customer.agents.clone()),
        agent: None,
        from_ns: from,
        // A window that starts before `to` may end up to MAX_WINDOW_NS after it; the fold
        // keeps the reports by window start.
        to_ns: to.saturating_add(crate::store::MAX_WINDOW_NS),
        max_mos: None,
        final_only: false,
        after: None,
        limit: REPORT_PAGE,
    };
    loop {
        let page = store.streams(&query).await?;
        let full = page.len() == REPORT_PAGE as usize;
        query.after = page.last().map(|r| (r.window_end_ns, r.id));
        // Decoding and merging histograms is CPU work: off the async workers, a page at a time.
        fold = tokio::task::spawn_blocking(move || {
            for row in &page {
                fold.add(&row.report);
            }
            fold
        })
        .await?;
        if !full {
            break;
        }
    }
    Ok(fold.finish())
}

/// Registers the scope of every subnet-narrowed customer (at server start): ingest attributes
/// their traffic from now on, and periods from now on are evaluated from aggregates.
pub async fn register_scopes(store: &Store, customers: &[sla::Customer], now_ns: i64) {
    let narrowed: Vec<String> = customers
        .iter()
        .filter(|c| !c.subnets.is_empty())
        .map(|c| c.id.clone())
        .collect();
    if let Err(e) = store.retain_scopes(&narrowed).await {
        tracing::error!("cannot forget the scopes of former subnet customers: {e}");
    }
    for customer in customers.iter().filter(|c| !c.subnets.is_empty()) {
        let signature = sla::scope_signature(customer);
        if let Err(e) = store.register_scope(&customer.id, &signature, now_ns).await {
            tracing::warn!(
                customer = %customer.id,
                "cannot register the scope of customer '{}' ({e}); its SLA is evaluated from stream reports",
                customer.id
            );
        }
    }
}

/// The fast path: counts and worst calls from `calls`, jitter from `jitter_hourly`, all in
/// `scope` (`""` for a customer's whole agents, its id when narrowed to subnets).
async fn facts_from_aggregates(
    store: &Store,
    customer: &sla::Customer,
    scope: &str,
    from: i64,
    to: i64,
) -> Result<PeriodFacts, FactsError> {
    let agents = &customer.agents;
    let c = &customer.commitments;
    let limit = EVIDENCE_LIMIT as u32;
    // Three independent reads; the store's pool runs them side by side.
    let (stats, low_mos, high_loss) = tokio::join!(
        store.call_stats(scope, agents, from, to, c.mos_min, c.loss_max_pct),
        store.calls_worst(scope, agents, from, to, Worst::MosBelow(c.mos_min), limit),
        store.calls_worst(
            scope,
            agents,
            from,
            to,
            Worst::LossAbove(c.loss_max_pct),
            limit
        ),
    );
    let (stats, low_mos, high_loss) = (stats?, low_mos?, high_loss?);
    let mut low = Vec::with_capacity(low_mos.len());
    for call in &low_mos {
        low.push(breaching_call(store, call, Worst::MosBelow(c.mos_min)).await?);
    }
    let mut high = Vec::with_capacity(high_loss.len());
    for call in &high_loss {
        high.push(breaching_call(store, call, Worst::LossAbove(c.loss_max_pct)).await?);
    }

    // Whole hours from the rollups, the rest window by window.
    // Saturating: a period at the ends of the i64 nanosecond range has no whole hours.
    let hour_floor = |t: i64| t.div_euclid(HOUR_NS).saturating_mul(HOUR_NS);
    let first_hour = if from.rem_euclid(HOUR_NS) == 0 {
        hour_floor(from)
    } else {
        hour_floor(from).saturating_add(HOUR_NS)
    };
    let last_hour = hour_floor(to);
    let (hours, edges) = if first_hour < last_hour {
        let hours = store
            .jitter_hours(scope, agents, first_hour, last_hour)
            .await?;
        let mut edges = store.window_histograms(agents, from, first_hour).await?;
        edges.extend(store.window_histograms(agents, last_hour, to).await?);
        (hours, edges)
    } else {
        let edges = store.window_histograms(agents, from, to).await?;
        (Vec::new(), edges)
    };

    let subnets = sla::parsed_subnets(customer);
    let edges: Vec<_> = edges
        .into_iter()
        .filter(|w| sla::endpoints_in_subnets(&subnets, &w.src, &w.dst))
        .collect();
    let (jitter, reports_used, windows_with_drops) = tokio::task::spawn_blocking(move || {
        let mut jitter = sla::JitterFacts::default();
        let mut windows_with_drops = 0u64;
        for hour in &hours {
            jitter.hourly_rollups += 1;
            jitter.windows += hour.windows;
            jitter.add_without_histogram(
                &hour.agent_id,
                hour.hour_ns,
                hour.windows_without_histogram,
            );
            windows_with_drops += hour.windows_with_drops;
            // Rollups were written by this collector from validated histograms.
            if let Ok(h) = decode_jitter_histogram_bytes(&hour.histogram) {
                let _ = jitter.histogram.add(&h);
            }
        }
        for window in &edges {
            jitter.single_windows += 1;
            jitter.windows += 1;
            windows_with_drops += u64::from(window.capture_drops > 0);
            match window
                .histogram
                .as_deref()
                .map(decode_jitter_histogram_bytes)
            {
                Some(Ok(h)) if jitter.histogram.add(&h).is_ok() => {}
                _ if window.jitter_samples > 0 => {
                    jitter.add_without_histogram(&window.agent_id, window.window_start_ns, 1)
                }
                _ => {}
            }
        }
        let reports_used = jitter.windows;
        (jitter, reports_used, windows_with_drops)
    })
    .await?;

    Ok(PeriodFacts {
        calls: CallFacts {
            calls: stats.calls,
            with_mos: stats.calls_with_mos,
            meeting_mos: stats.meeting_mos,
            with_loss: stats.calls,
            within_loss: stats.meeting_loss,
            worst_loss: stats.worst_loss_pct,
            low_mos: low,
            high_loss: high,
        },
        jitter,
        reports_used,
        windows_with_drops,
        call_counts: None,
    })
}

/// A breaching call's evidence entry: its value from the aggregate, and the stream that
/// set it from the call's final reports while they are retained.
async fn breaching_call(
    store: &Store,
    call: &CallAggregate,
    worst: Worst,
) -> Result<BreachingCall, FactsError> {
    let finals = store.call_finals(&call.agent_id, &call.call_key).await?;
    let value = match worst {
        Worst::MosBelow(_) => call.min_mos.unwrap_or(f64::NAN),
        Worst::LossAbove(_) => call.max_loss_pct,
    };
    let stream_value = |row: &crate::store::StreamRow| {
        let totals = row.report.totals.as_ref();
        match worst {
            Worst::MosBelow(_) => totals.and_then(|t| t.mos),
            Worst::LossAbove(_) => totals.map(|t| t.effective_loss_pct),
        }
    };
    let stream = finals
        .iter()
        .filter(|row| stream_value(row) == Some(value))
        .min_by(|a, b| a.report.stream_id.cmp(&b.report.stream_id));
    Ok(BreachingCall {
        call_id: call.call_id.clone(),
        value,
        agent: call.agent_id.clone(),
        worst_stream: stream.map(|row| row.report.stream_id.clone()),
        src: stream.map(|row| row.report.src.clone()),
        dst: stream.map(|row| row.report.dst.clone()),
    })
}
