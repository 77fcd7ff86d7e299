//! The alert engine `serve` runs: every `evaluate_every`, the replica holding the lease in the
//! store evaluates each rule from the store's aggregates, applies the state machine to the
//! stored instances, writes states, history and notifications in one transaction, then
//! delivers what the outbox holds (per channel in order, with backoff) and re-posts firing
//! alerts to Alertmanager.
//!
//! The wall clock is read here only, once per cycle ([`run`]), and passed into the pure parts
//! (`rules`, `state`) and [`Engine::cycle`]. Must not: scan stream reports (it reads the
//! per-call aggregates, heartbeats and window flags through the store's indexed queries), send
//! anything without holding the lease, or send a notification that is not in the outbox.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch;
use super::config::{ALERTMANAGER, RuleConfig, RuleKind};
use super::notify::{self, Notification, NotifyError};
use super::rules::{self, BurnFigures, Observation};
use super::state::{self, FIRING, RuleObservations};
use crate::api::metrics::Metrics;
use crate::config::{CollectorConfig, LiveConfig};
use crate::facts::{self, FactsError};
use crate::sla::uptime::SparsePoint;
use crate::sla::{self, Customer};
use crate::store::alert_reads::ProblemCallCounts;
use crate::store::alerts::{AlertStateRow, ENGINE_LEASE, OutboxRow};
use crate::store::{CallStats, Store, StoreError};

/// Notifications tried per cycle at most.
const OUTBOX_BATCH: u32 = 200;
/// Attempts before a notification is given up (with the 5-minute cap, well over a day).
pub const MAX_ATTEMPTS: i64 = 300;
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Customers evaluated at once (store reads in flight).
const PARALLEL: usize = 8;

/// Why a cycle failed; the next one tries again.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// One replica's engine.
#[derive(Debug, Clone)]
pub struct Engine {
    store: Store,
    config: LiveConfig,
    metrics: Arc<Metrics>,
    /// This replica's name in the lease.
    holder: String,
    /// `evidence_base_url` when not configured: this server's own address.
    default_base: String,
    client: Option<reqwest::Client>,
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleOutcome {
    pub evaluated: bool,
    pub events: usize,
    pub delivered: usize,
    pub failed: usize,
}

impl Engine {
    pub fn new(
        store: Store,
        config: LiveConfig,
        metrics: Arc<Metrics>,
        holder: String,
        default_base: String,
    ) -> Engine {
        let client = match notify::http_client() {
            Ok(client) => Some(client),
            Err(e) => {
                tracing::error!("alerts: no HTTP client, webhooks and Alertmanager fail: {e}");
                None
            }
        };
        Engine {
            store,
            config,
            metrics,
            holder,
            default_base,
            client,
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// One cycle at `now_ns`: take or renew the lease; if held, evaluate, record, deliver.
    pub async fn cycle(&self, now_ns: i64) -> Result<CycleOutcome, EngineError> {
        let config = self.config.current();
        let alerts = &config.alerts;
        let mut outcome = CycleOutcome::default();
        if alerts.rules.is_empty() && self.store.alert_states().await?.is_empty() {
            self.metrics.alert_evaluator(false);
            return Ok(outcome);
        }
        let every = alerts.evaluate_every.0;
        let ttl = (every * 3).max(Duration::from_secs(3));
        let ttl_ns = i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX);
        let held = self
            .store
            .alert_lease(ENGINE_LEASE, &self.holder, now_ns, ttl_ns)
            .await?;
        self.metrics.alert_evaluator(held);
        if !held {
            // Another replica evaluates; the gauges follow the stored states anyway.
            self.metrics.alert_firing(&self.store.alert_states().await?);
            return Ok(outcome);
        }
        let observed = evaluate(&self.store, &config, now_ns).await;
        let stored = self.store.alert_states().await?;
        let base = alerts
            .evidence_base_url
            .clone()
            .unwrap_or_else(|| self.default_base.clone());
        let cycle = state::plan(alerts, &stored, &observed, &base, now_ns);
        outcome.evaluated = true;
        outcome.events = cycle.events.len();
        let committed = cycle == Default::default()
            || self
                .store
                .alert_commit(ENGINE_LEASE, &self.holder, now_ns, &cycle)
                .await?;
        if !committed {
            // The lease ran out meanwhile: another replica records and sends.
            self.metrics.alert_evaluator(false);
            return Ok(CycleOutcome::default());
        }
        for new in &cycle.events {
            tracing::info!(
                rule = %new.event.rule,
                customer = %new.event.customer,
                state = %new.event.state,
                "alert {} {} for customer {} (value {:?}, threshold {})",
                new.event.rule,
                new.event.state,
                new.event.customer,
                new.event.value,
                new.event.threshold
            );
        }
        let states = self.store.alert_states().await?;
        self.metrics.alert_firing(&states);
        let (delivered, failed) = self.deliver(&config, now_ns).await?;
        outcome.delivered = delivered;
        outcome.failed = failed;
        self.refresh_alertmanager(&config, &states, &base, now_ns)
            .await;
        Ok(outcome)
    }

    /// Tries the outbox's pending notifications that are due, oldest first; a channel whose
    /// oldest pending one is not due or fails takes no later one this cycle (so a `resolved`
    /// never overtakes its `firing`).
    async fn deliver(
        &self,
        config: &CollectorConfig,
        now_ns: i64,
    ) -> Result<(usize, usize), EngineError> {
        let pending = self.store.alert_outbox_pending(OUTBOX_BATCH).await?;
        let mut blocked: BTreeSet<String> = BTreeSet::new();
        let (mut delivered, mut failed) = (0, 0);
        for row in pending {
            if blocked.contains(&row.channel) {
                continue;
            }
            if row.next_attempt_ns > now_ns {
                blocked.insert(row.channel.clone());
                continue;
            }
            match self.send(config, &row).await {
                Ok(()) => {
                    delivered += 1;
                    self.metrics.alert_sent(&row.channel);
                    self.store
                        .alert_outbox_attempt(row.id, now_ns, None, None)
                        .await?;
                }
                Err(e) => {
                    failed += 1;
                    self.metrics.alert_failed(&row.channel);
                    let attempts = row.attempts.saturating_add(1);
                    let give_up =
                        attempts >= MAX_ATTEMPTS || matches!(e, NotifyError::UnknownChannel(_));
                    let next = (!give_up).then(|| {
                        now_ns.saturating_add(backoff_ns(config.alerts.evaluate_every.0, attempts))
                    });
                    tracing::warn!(
                        channel = %row.channel,
                        attempts,
                        "alert notification {} to '{}' failed (attempt {attempts}): {e}{}",
                        row.id,
                        row.channel,
                        if give_up { "; giving up" } else { "; will retry" }
                    );
                    self.store
                        .alert_outbox_attempt(row.id, now_ns, Some(&e.to_string()), next)
                        .await?;
                    blocked.insert(row.channel.clone());
                }
            }
        }
        Ok((delivered, failed))
    }

    async fn send(&self, config: &CollectorConfig, row: &OutboxRow) -> Result<(), NotifyError> {
        let alerts = &config.alerts;
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| NotifyError::Http("no HTTP client".into()))?;
        let parsed = || {
            serde_json::from_str::<Notification>(&row.payload)
                .map_err(|e| NotifyError::Payload(e.to_string()))
        };
        if row.channel == ALERTMANAGER {
            let am = alerts
                .alertmanager
                .as_ref()
                .ok_or_else(|| NotifyError::UnknownChannel(row.channel.clone()))?;
            return notify::send_alertmanager(client, am, &[parsed()?]).await;
        }
        if let Some(hook) = alerts.webhook(&row.channel) {
            return notify::send_webhook(client, hook, &row.payload).await;
        }
        if let (Some(list), Some(smtp)) = (alerts.email(&row.channel), &alerts.smtp) {
            return notify::send_email(smtp, list, &parsed()?).await;
        }
        Err(NotifyError::UnknownChannel(row.channel.clone()))
    }

    /// Posts every firing alert of rules that notify Alertmanager again: Alertmanager keeps an
    /// alert without `endsAt` only for its `resolve_timeout` after the last post.
    async fn refresh_alertmanager(
        &self,
        config: &CollectorConfig,
        states: &[AlertStateRow],
        base: &str,
        now_ns: i64,
    ) {
        let (Some(am), Some(client)) = (&config.alerts.alertmanager, &self.client) else {
            return;
        };
        let rules: BTreeMap<&str, &RuleConfig> = config
            .alerts
            .rules
            .iter()
            .filter(|r| r.notify.iter().any(|n| n == ALERTMANAGER))
            .map(|r| (r.name.as_str(), r))
            .collect();
        let firing: Vec<Notification> = states
            .iter()
            .filter(|s| s.state == FIRING)
            .filter_map(|s| rules.get(s.rule.as_str()).map(|r| (s, r)))
            .map(|(s, r)| still_firing(s, r, base, now_ns))
            .collect();
        if firing.is_empty() {
            return;
        }
        if let Err(e) = notify::send_alertmanager(client, am, &firing).await {
            self.metrics.alert_failed(ALERTMANAGER);
            tracing::warn!(
                "re-posting {} firing alert(s) to Alertmanager failed: {e}",
                firing.len()
            );
        }
    }
}

/// The notification of an instance that keeps firing (for Alertmanager's re-posts).
fn still_firing(s: &AlertStateRow, rule: &RuleConfig, base: &str, now_ns: i64) -> Notification {
    Notification {
        rule: s.rule.clone(),
        kind: rule.kind.as_str().to_owned(),
        customer: s.customer.clone(),
        state: FIRING.to_owned(),
        severity: s.severity.clone(),
        labels: serde_json::from_str(&s.labels).unwrap_or_default(),
        value: s.value,
        threshold: s.threshold,
        since: voqa_wire::Timestamp::from_ns(s.since_ns).to_string(),
        at: voqa_wire::Timestamp::from_ns(now_ns).to_string(),
        summary: format!("{} firing for customer {}", s.rule, s.customer),
        evidence_url: state::evidence_url(base, &s.customer, s.since_ns, now_ns),
    }
}

/// The wait before attempt `attempts + 1`: the cadence doubled per failure, at most 5 min.
pub fn backoff_ns(cadence: Duration, attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    let wait = cadence
        .checked_mul(1u32 << doublings.min(20))
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF);
    i64::try_from(wait.as_nanos()).unwrap_or(i64::MAX)
}

/// What every customer's evaluation shares in one cycle, read once: each agent's last and
/// first heartbeat.
#[derive(Debug, Default)]
struct Shared {
    last_beats: BTreeMap<String, i64>,
    /// `None` when the read failed: uptime burns are then not evaluated this cycle.
    first_beats: Option<Vec<(String, i64)>>,
    /// The longest uptime window of any `sla_burn` rule: each customer's heartbeats are read
    /// once, over this span, for all of its rules.
    uptime_span_ns: i64,
}

/// One customer's reads in one cycle, shared by its rules: call counts per span, and the
/// heartbeats of the longest uptime window. Most are filled in for all customers at once
/// before the rules run (`batch::read_all`); what is missing a rule reads itself.
#[derive(Debug, Default)]
pub struct CustomerReads {
    pub(super) stats: BTreeMap<(i64, i64), Option<CallStats>>,
    /// Summed hourly call counts from the hour starting at the key to now.
    hourly: BTreeMap<i64, sla::kpis::CallCounts>,
    /// `quality_drop`'s problem calls from the key to now.
    pub(super) problems: BTreeMap<i64, ProblemCallCounts>,
    /// `capture_incomplete`'s (report windows, incomplete ones) from the key to now.
    pub(super) windows: BTreeMap<i64, (u64, u64)>,
    pub(super) points: Option<(i64, Vec<SparsePoint>)>,
}

/// Evaluates every rule for its customers at `now_ns`, one task per customer (at most
/// [`PARALLEL`] at once) running all of that customer's rules on shared reads. A customer
/// whose reads failed is left out of that rule's observations (its instances then stay as
/// they are, see `state::plan`).
pub async fn evaluate(
    store: &Store,
    config: &CollectorConfig,
    now_ns: i64,
) -> BTreeMap<String, RuleObservations> {
    evaluate_with(store, config, now_ns, true).await
}

/// [`evaluate`], with the reads of all customers at once (`batched`) or, for the test that
/// they observe the same, each customer's own reads only.
async fn evaluate_with(
    store: &Store,
    config: &CollectorConfig,
    now_ns: i64,
    batched: bool,
) -> BTreeMap<String, RuleObservations> {
    let mut shared = Shared::default();
    match store.agents().await {
        Ok(agents) => {
            shared.last_beats = agents
                .into_iter()
                .filter_map(|a| a.last_heartbeat_ns.map(|t| (a.agent_id, t)))
                .collect();
        }
        Err(e) => tracing::warn!("alerts: reading the agents failed, agent_silent skipped: {e}"),
    }
    let all_agents: Vec<String> = config
        .customers
        .iter()
        .flat_map(|c| c.agents.iter().cloned())
        .collect();
    match store.first_heartbeats(&all_agents).await {
        Ok(first) => shared.first_beats = Some(first),
        Err(e) => {
            tracing::warn!("alerts: reading first heartbeats failed, uptime burn skipped: {e}")
        }
    }
    shared.uptime_span_ns = config
        .alerts
        .rules
        .iter()
        .filter(|r| {
            r.kind == RuleKind::SlaBurn && r.burn_commitments().iter().any(|c| c == "uptime")
        })
        .map(|r| i64::try_from(r.burn_policy().long.as_nanos()).unwrap_or(i64::MAX))
        .max()
        .unwrap_or(0);
    // Every customer's reads at once (one query per aggregate, not one per customer); the
    // tasks below read only what this left out.
    let mut batched = if batched {
        batch::read_all(
            store,
            &config.alerts.rules,
            &config.customers,
            now_ns,
            shared
                .first_beats
                .is_some()
                .then_some(shared.uptime_span_ns),
        )
        .await
    } else {
        BTreeMap::new()
    };
    let shared = Arc::new(shared);
    let rules = Arc::new(config.alerts.rules.clone());
    let mut observed: BTreeMap<String, RuleObservations> = rules
        .iter()
        .map(|r| (r.name.clone(), RuleObservations::default()))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    let mut queue = config.customers.iter().cloned();
    loop {
        while tasks.len() < PARALLEL {
            let Some(customer) = queue.next() else { break };
            let (store, rules, shared) = (store.clone(), rules.clone(), shared.clone());
            let mut reads = batched.remove(&customer.id).unwrap_or_default();
            tasks.spawn(async move {
                let mut results = Vec::new();
                for rule in batch::rules_of(&rules, &customer) {
                    let result =
                        observe(&store, rule, &customer, now_ns, &shared, &mut reads).await;
                    results.push((rule.name.clone(), result));
                }
                (customer.id, results)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        match joined {
            Ok((customer, results)) => {
                for (rule, result) in results {
                    match result {
                        Ok(list) => {
                            if let Some(o) = observed.get_mut(&rule) {
                                o.by_customer.insert(customer.clone(), list);
                            }
                        }
                        Err(e) => tracing::warn!(
                            rule = %rule,
                            customer = %customer,
                            "alerts: rule {rule} for customer {customer} not evaluated: {e}"
                        ),
                    }
                }
            }
            Err(e) => tracing::error!("alerts: an evaluation task failed: {e}"),
        }
    }
    observed
}

/// One rule's instances for one customer, from the store's aggregates.
async fn observe(
    store: &Store,
    rule: &RuleConfig,
    customer: &Customer,
    now_ns: i64,
    shared: &Shared,
    reads: &mut CustomerReads,
) -> Result<Vec<Observation>, FactsError> {
    let c = &customer.commitments;
    let window_ns = rule.window.unwrap_or_default().ns();
    let from = now_ns.saturating_sub(window_ns);
    Ok(match rule.kind {
        RuleKind::QualityDrop => {
            let Some(stats) = call_stats(store, customer, from, now_ns, reads).await? else {
                return Ok(Vec::new());
            };
            let problems = match reads.problems.get(&from) {
                Some(known) => *known,
                None => {
                    // The call records of the same scope as the MOS aggregates (a read
                    // without a store query for a customer not narrowed to subnets).
                    let scope = facts::calls_scope(store, customer, from)
                        .await?
                        .unwrap_or_default();
                    store
                        .problem_call_counts(&scope, &customer.agents, from, now_ns, c.mos_min)
                        .await?
                }
            };
            vec![rules::quality_drop(
                &customer.id,
                &stats,
                &problems,
                c.mos_min,
                rule.threshold_pct.unwrap_or(100.0),
                rule.min_calls.unwrap_or(1),
                window_ns,
            )]
        }
        RuleKind::CaptureIncomplete => {
            let (n, incomplete) = match reads.windows.get(&from) {
                Some(known) => *known,
                None => {
                    let windows = store
                        .window_histograms(&customer.agents, from, now_ns)
                        .await?;
                    rules::incomplete_windows(&windows)
                }
            };
            vec![rules::capture_incomplete(
                &customer.id,
                n,
                incomplete,
                rule.threshold_pct.unwrap_or(100.0),
                rule.min_windows.unwrap_or(1),
                window_ns,
            )]
        }
        RuleKind::AgentSilent => {
            let maintenance = sla::maintenance::maintenance_spans(
                &c.maintenance_windows(),
                now_ns,
                now_ns.saturating_add(1),
            );
            customer
                .agents
                .iter()
                .map(|agent| {
                    rules::agent_silent(
                        &customer.id,
                        agent,
                        shared.last_beats.get(agent).copied(),
                        now_ns,
                        c.heartbeat_interval_s,
                        rule.periods.unwrap_or(3),
                        &maintenance,
                    )
                })
                .collect()
        }
        RuleKind::SlaBurn => burn(store, rule, customer, now_ns, shared, reads).await?,
        RuleKind::KpiThreshold => {
            let from_hour = hour_start(from);
            let counts = match rule.trunk.as_deref() {
                None => hourly_counts(store, customer, from, now_ns, reads).await?,
                Some(trunk) => {
                    facts::call_counts_of_peer(store, customer, from_hour, now_ns, trunk).await?
                }
            };
            vec![rules::kpi_threshold(
                &customer.id,
                rule.trunk.as_deref(),
                rule.kpi.as_deref().unwrap_or("asr"),
                &counts,
                rule.threshold.unwrap_or(0.0),
                rule.min_calls.unwrap_or(1),
                now_ns.saturating_sub(from_hour),
            )]
        }
    })
}

/// The customer's calls over `[from, to)` from the per-call aggregates (read once per span
/// and cycle); `None` when its subnet scope was not attributed over the whole span (no
/// aggregate can judge it).
async fn call_stats(
    store: &Store,
    customer: &Customer,
    from: i64,
    to: i64,
    reads: &mut CustomerReads,
) -> Result<Option<CallStats>, FactsError> {
    if let Some(known) = reads.stats.get(&(from, to)) {
        return Ok(*known);
    }
    let stats = match facts::calls_scope(store, customer, from).await? {
        None => None,
        Some(scope) => {
            let c = &customer.commitments;
            Some(
                store
                    .call_stats(
                        &scope,
                        &customer.agents,
                        from,
                        to,
                        c.mos_min,
                        c.loss_max_pct,
                    )
                    .await?,
            )
        }
    };
    reads.stats.insert((from, to), stats);
    Ok(stats)
}

/// The start of the UTC hour holding `t`. The call counts are hourly (UTC hours of the
/// first INVITE): a window over them is the hours overlapping `[t, now]`, the current one
/// included.
fn hour_start(t: i64) -> i64 {
    t - t.rem_euclid(crate::store::HOUR_NS)
}

/// The customer's summed hourly call counts of the hours overlapping `[from, to]` (read once
/// per hour and cycle).
async fn hourly_counts(
    store: &Store,
    customer: &Customer,
    from: i64,
    to: i64,
    reads: &mut CustomerReads,
) -> Result<sla::kpis::CallCounts, FactsError> {
    let from_hour = hour_start(from);
    if let Some(known) = reads.hourly.get(&from_hour) {
        return Ok(*known);
    }
    let counts = facts::call_counts(store, customer, from_hour, to).await?;
    reads.hourly.insert(from_hour, counts);
    Ok(counts)
}

/// `sla_burn`: each watched commitment's burn over the rule's two windows.
async fn burn(
    store: &Store,
    rule: &RuleConfig,
    customer: &Customer,
    now_ns: i64,
    shared: &Shared,
    reads: &mut CustomerReads,
) -> Result<Vec<Observation>, FactsError> {
    let policy = rule.burn_policy();
    let long_ns = i64::try_from(policy.long.as_nanos()).unwrap_or(i64::MAX);
    let short_ns = i64::try_from(policy.short.as_nanos()).unwrap_or(i64::MAX);
    let c = &customer.commitments;
    let commitments = rule.burn_commitments();
    let mut out = Vec::new();
    if commitments.iter().any(|k| k == "mos" || k == "loss") {
        let long = call_stats(store, customer, now_ns - long_ns, now_ns, reads).await?;
        let short = call_stats(store, customer, now_ns - short_ns, now_ns, reads).await?;
        if let (Some(long), Some(short)) = (long, short) {
            if commitments.iter().any(|k| k == "mos") {
                out.push(rules::sla_burn(
                    &customer.id,
                    "mos",
                    c.calls_meeting_pct,
                    policy,
                    BurnFigures::Mos(&long).counts(),
                    BurnFigures::Mos(&short).counts(),
                ));
            }
            if let Some(target) = rule.loss_target_pct
                && commitments.iter().any(|k| k == "loss")
            {
                out.push(rules::sla_burn(
                    &customer.id,
                    "loss",
                    target,
                    policy,
                    BurnFigures::Loss(&long).counts(),
                    BurnFigures::Loss(&short).counts(),
                ));
            }
        }
    }
    if commitments.iter().any(|k| k == "uptime") {
        let Some(first) = &shared.first_beats else {
            return Err(FactsError::Store(StoreError::Unavailable {
                backend: store.backend(),
                message: "first heartbeats could not be read this cycle".into(),
            }));
        };
        // One read per customer and cycle, over the longest window any rule needs.
        let from = now_ns - long_ns.max(shared.uptime_span_ns);
        let covered = reads
            .points
            .as_ref()
            .is_some_and(|(f, _)| *f <= now_ns - long_ns);
        if !covered {
            let points = heartbeat_gaps(store, customer, from, now_ns).await?;
            reads.points = Some((from, points));
        }
        let points = reads.points.as_ref().map_or(&[][..], |(_, p)| p.as_slice());
        // An agent missing from the first heartbeats read at the start of the cycle (its first
        // ones arrived since) first reported at its earliest heartbeat read here.
        let mut first = first.clone();
        for agent in &customer.agents {
            if !first.iter().any(|(a, _)| a == agent)
                && let Some(p) = points.iter().find(|p| p.point.agent_id == *agent)
            {
                first.push((agent.clone(), p.point.time_ns));
            }
        }
        let windows = c.maintenance_windows();
        let outcome = |from: i64| {
            let maintenance = sla::maintenance::maintenance_spans(&windows, from, now_ns);
            // Ordered by agent, then time: filtered, not cut at one index.
            let inside: Vec<_> = points
                .iter()
                .filter(|p| p.point.time_ns >= from)
                .cloned()
                .collect();
            sla::uptime::uptime_sparse(
                &customer.agents,
                &inside,
                &first,
                from,
                now_ns,
                c.heartbeat_interval_s,
                &maintenance,
            )
        };
        let (long, short) = (outcome(now_ns - long_ns), outcome(now_ns - short_ns));
        out.push(rules::sla_burn(
            &customer.id,
            "uptime",
            c.uptime_min_pct,
            policy,
            BurnFigures::Uptime(&long).counts(),
            BurnFigures::Uptime(&short).counts(),
        ));
    }
    // ASR and calls with a media problem: from the hourly call counts, so both windows widen
    // to whole UTC hours (the short one is at least the current hour so far). A customer
    // without the commitment has nothing to burn.
    let signalling: Vec<(&str, f64)> = [
        ("asr", c.asr_min_pct),
        (
            "one_way_audio",
            c.one_way_audio_max_pct.map(|max| 100.0 - max),
        ),
    ]
    .into_iter()
    .filter(|(name, _)| commitments.iter().any(|k| k == name))
    .filter_map(|(name, target)| target.map(|t| (name, t)))
    .collect();
    if !signalling.is_empty() {
        let long = hourly_counts(store, customer, now_ns - long_ns, now_ns, reads).await?;
        let short = hourly_counts(store, customer, now_ns - short_ns, now_ns, reads).await?;
        for (name, target) in signalling {
            let figures = |counts| {
                if name == "asr" {
                    BurnFigures::Asr(counts)
                } else {
                    BurnFigures::OneWayAudio(counts)
                }
            };
            out.push(rules::sla_burn(
                &customer.id,
                name,
                target,
                policy,
                figures(&long).counts(),
                figures(&short).counts(),
            ));
        }
    }
    Ok(out)
}

/// The customer's heartbeats in `[from, to)` that its uptime can depend on (the store's gap
/// query: a few per agent instead of one per heartbeat period), as `sla::uptime_sparse` reads
/// them.
async fn heartbeat_gaps(
    store: &Store,
    customer: &Customer,
    from: i64,
    to: i64,
) -> Result<Vec<SparsePoint>, FactsError> {
    let max_gap = sla::uptime::max_gap_ns(customer.commitments.heartbeat_interval_s);
    let rows = store
        .heartbeat_gaps(&customer.agents, from, to, max_gap)
        .await?;
    Ok(batch::sparse_points(rows))
}

/// Runs the engine until the process ends: one cycle every `evaluate_every` (re-read each
/// cycle, so a reload changes the cadence), the wall clock read here and nowhere below.
pub async fn run(engine: Engine) {
    loop {
        let started = Instant::now();
        let every = engine.config.current().alerts.evaluate_every.0;
        match engine.cycle(crate::now_ns()).await {
            Ok(outcome) => {
                if outcome.evaluated {
                    engine
                        .metrics
                        .alert_cycle_seconds(started.elapsed().as_secs_f64());
                }
            }
            Err(e) => tracing::warn!("alert cycle failed, retrying next cycle: {e}"),
        }
        tokio::time::sleep(every.saturating_sub(started.elapsed())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{DAY_NS, SECOND, batch, heartbeat, report};

    const CONFIG: &str = r#"
[alerts]
evaluate_every = "15s"

[[alerts.rules]]
name = "silent"
kind = "agent_silent"
periods = 3

[[alerts.rules]]
name = "burn"
kind = "sla_burn"
commitments = ["uptime"]
factor = 10.0
long_window = "1h"
short_window = "10m"

[[alerts.rules]]
name = "quality"
kind = "quality_drop"
window = "10m"
threshold_pct = 20.0
min_calls = 2
for = "30s"

[[customers]]
id = "acme"
name = "ACME"
agents = ["a1"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
heartbeat_interval_s = 15
maintenance = ["Mon 02:00-03:00 UTC"]
"#;

    /// `kpi_threshold` on a real SQLite store from stored call records: the customer's ASR
    /// (1 of 4 answered = 25 % < 50 %) and one trunk's PDD p95 (its two calls rang after
    /// 3,000 ms > 2,000; the other trunk's after 100 ms does not count for it).
    #[tokio::test]
    async fn kpi_threshold_cycles_on_sqlite_from_call_records() {
        use voqa_wire::{CallRecord, CallSummary};
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&format!("sqlite:{}", dir.path().join("k.db").display()))
            .await
            .expect("open");
        let text = CONFIG.replace(
            "[[customers]]",
            "[[alerts.rules]]\nname = \"asr\"\nkind = \"kpi_threshold\"\nkpi = \"asr\"\n\
             threshold = 50.0\nwindow = \"1h\"\nmin_calls = 4\n\n\
             [[alerts.rules]]\nname = \"pdd\"\nkind = \"kpi_threshold\"\nkpi = \"pdd_p95_ms\"\n\
             threshold = 2000.0\nwindow = \"1h\"\ntrunk = \"192.0.2.1\"\n\n[[customers]]",
        );
        let config = CollectorConfig::parse(&text).expect("config");
        let engine = Engine::new(
            store.clone(),
            LiveConfig::new(config),
            Arc::default(),
            "t".into(),
            "http://c".into(),
        );
        let t = |s: i64| Some(voqa_wire::Timestamp::from_ns(DAY_NS + s * SECOND));
        // Four calls between 05:00:00 and 05:00:30: one answered (ringing after 3 s), three
        // 503s (the first also after 3 s on the same trunk, two on another after 100 ms).
        let call = |n: u32, peer: &str, ring_ms: i64, status: u16| CallRecord {
            agent_id: "a1".into(),
            call_key: format!("{n:016x}"),
            call: CallSummary {
                call_id: format!("anon:{n}"),
                setup: t(18_000 + i64::from(n)),
                first_provisional: t(18_000 + i64::from(n))
                    .map(|s| voqa_wire::Timestamp::from_ns(s.as_ns() + ring_ms * 1_000_000)),
                answer: (status == 200).then(|| t(18_010)).flatten(),
                end: t(18_030),
                status: Some(status),
                end_cause: Some(if status == 200 { "bye" } else { "failure" }.into()),
                direction: Some("outbound".into()),
                peer: Some(peer.into()),
                ..CallSummary::default()
            },
        };
        let mut b = batch("k1", "a1", vec![], vec![]);
        b.calls = vec![
            call(1, "192.0.2.1:5060", 3_000, 200),
            call(2, "192.0.2.1:5060", 3_000, 503),
            call(3, "198.51.100.9:5060", 100, 503),
            call(4, "198.51.100.9:5060", 100, 503),
        ];
        store.ingest(&b, DAY_NS).await.expect("ingest");
        engine.cycle(DAY_NS + 18_100 * SECOND).await.expect("cycle");
        let states = store.alert_states().await.expect("states");
        let of = |rule: &str| {
            states
                .iter()
                .find(|s| s.rule == rule)
                .map(|s| (s.state.clone(), s.value, s.key.clone()))
        };
        assert_eq!(
            of("asr"),
            Some((
                state::FIRING.to_owned(),
                Some(25.0),
                "asr|customer=acme,kpi=asr".to_owned()
            ))
        );
        assert_eq!(
            of("pdd"),
            Some((
                state::FIRING.to_owned(),
                Some(3000.0),
                "pdd|customer=acme,kpi=pdd_p95_ms,trunk=192.0.2.1".to_owned()
            ))
        );
        // Two hours later the window holds no calls: no figure, both resolve.
        engine.cycle(DAY_NS + 25_300 * SECOND).await.expect("cycle");
        let states = store.alert_states().await.expect("states");
        assert!(
            states.iter().all(|s| s.state != state::FIRING),
            "{states:?}"
        );
    }

    /// `sla_burn` of ASR and one-way audio, and `quality_drop` with media problems, on a real
    /// SQLite store from stored call records and stream reports. Between 05:00:00 and 05:00:07
    /// seven calls: c1 answered with one-way audio (its stream MOS 4.3), c2 answered without
    /// RTP (no stream), c3 answered and clean (MOS 4.3), c4–c6 failed with 503, and a stream
    /// c7 with MOS 3.0 but no call record.
    #[tokio::test]
    async fn signalling_burns_and_media_problems_on_sqlite() {
        use voqa_wire::{CallRecord, CallSummary, MediaProblem};
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&format!("sqlite:{}", dir.path().join("s.db").display()))
            .await
            .expect("open");
        let text = CONFIG
            .replace(
                "[[customers]]",
                "[[alerts.rules]]\nname = \"calls\"\nkind = \"sla_burn\"\n\
                 commitments = [\"asr\", \"one_way_audio\"]\nfactor = 1.2\n\
                 long_window = \"1h\"\nshort_window = \"10m\"\n\n[[customers]]",
            )
            .replace("min_calls = 2", "min_calls = 4")
            .replace("threshold_pct = 20.0", "threshold_pct = 40.0")
            .replace(
                "heartbeat_interval_s = 15",
                "heartbeat_interval_s = 15\nasr_min_pct = 60.0\none_way_audio_max_pct = 1.0",
            );
        let config = CollectorConfig::parse(&text).expect("config");
        let engine = Engine::new(
            store.clone(),
            LiveConfig::new(config),
            Arc::default(),
            "t".into(),
            "http://c".into(),
        );
        let t = |s: i64| voqa_wire::Timestamp::from_ns(DAY_NS + s * SECOND);
        let call = |n: i64, status: u16, problem: Option<&str>| CallRecord {
            agent_id: "a1".into(),
            call_key: format!("{n:016x}"),
            call: CallSummary {
                call_id: format!("anon:{n}"),
                setup: Some(t(18_000 + n)),
                answer: (status == 200).then(|| t(18_010)),
                end: Some(t(18_060)),
                status: Some(status),
                end_cause: Some(if status == 200 { "bye" } else { "failure" }.into()),
                problems: problem
                    .map(|kind| MediaProblem {
                        kind: kind.into(),
                        direction: "caller_to_callee".into(),
                        start: t(18_011),
                    })
                    .into_iter()
                    .collect(),
                ..CallSummary::default()
            },
        };
        let mut b = batch(
            "s1",
            "a1",
            vec![
                report("a1", 1, Some("anon:1"), 18_000, 18_060, true, Some(4.3)),
                report("a1", 3, Some("anon:3"), 18_000, 18_060, true, Some(4.3)),
                report("a1", 7, Some("anon:7"), 18_000, 18_060, true, Some(3.0)),
            ],
            vec![],
        );
        b.calls = vec![
            call(1, 200, Some("one_way_audio")),
            call(2, 200, Some("no_rtp")),
            call(3, 200, None),
            call(4, 503, None),
            call(5, 503, None),
            call(6, 503, None),
        ];
        store.ingest(&b, DAY_NS).await.expect("ingest");
        engine.cycle(DAY_NS + 18_100 * SECOND).await.expect("cycle");
        let states = store.alert_states().await.expect("states");
        let of = |key: &str| {
            states
                .iter()
                .find(|s| s.key == key)
                .map(|s| (s.state.clone(), s.value))
        };
        // ASR 3 of 6 = 50 %: 50 % failed of a 40 % budget = 1.25× in both windows (the same
        // hour), ≥ 1.2: firing at 1.25.
        assert_eq!(
            of("calls|commitment=asr,customer=acme"),
            Some((state::FIRING.to_owned(), Some(1.25)))
        );
        // 2 of 3 answered calls with a media problem against a 1 % budget: 66.7×.
        let (st, value) = of("calls|commitment=one_way_audio,customer=acme").expect("instance");
        assert_eq!(st, state::FIRING);
        assert!(
            (value.expect("rate") - 200.0 / 3.0).abs() < 1e-9,
            "{value:?}"
        );
        // quality_drop: MOS judged c1, c3, c7 (c7 below); problem calls c1 (has a MOS, not
        // below) and c2 (no MOS). Judged 3 + 1 = 4, bad c7 + c1 + c2 = 3: 75 % > 40 % with 4
        // calls; `for` 30 s holds it pending. Without media problems it would be 1 of 3.
        assert_eq!(
            of("quality|customer=acme"),
            Some(("pending".to_owned(), Some(75.0)))
        );
        store.close().await;
    }

    /// The engine's cycles on a real SQLite store, at times passed in (the fixture's day is a
    /// Monday, 2026-11-23; `at(s)` is `s` seconds after its midnight UTC).
    #[tokio::test]
    async fn cycles_on_sqlite_fire_hold_and_resolve_as_the_rules_say() {
        let at = |s: i64| DAY_NS + s * SECOND;
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&format!("sqlite:{}", dir.path().join("e.db").display()))
            .await
            .expect("open");
        let config = CollectorConfig::parse(CONFIG).expect("config");
        let engine = Engine::new(
            store.clone(),
            LiveConfig::new(config),
            Arc::default(),
            "t".into(),
            "http://c".into(),
        );
        let beats = |from: i64, to: i64| {
            (from..=to)
                .step_by(15)
                .map(|s| heartbeat("a1", s, false, 0))
                .collect::<Vec<_>>()
        };
        let mut batches = 0;
        let mut ingest = |reports, heartbeats| {
            batches += 1;
            let b = batch(&format!("b{batches}"), "a1", reports, heartbeats);
            let store = store.clone();
            async move { store.ingest(&b, DAY_NS).await.expect("ingest") }
        };
        let firing = || async {
            let mut f: Vec<(String, Option<f64>)> = store
                .alert_states()
                .await
                .expect("states")
                .into_iter()
                .filter(|s| s.state == state::FIRING)
                .map(|s| (s.rule, s.value))
                .collect();
            f.sort_by(|a, b| a.0.cmp(&b.0));
            f
        };
        // Heartbeats every 15 s from 00:00 to 01:00.
        ingest(vec![], beats(0, 3600)).await;
        // 01:00:30: 30 s of silence, within three periods (45 s): nothing.
        engine.cycle(at(3630)).await.expect("cycle");
        assert!(firing().await.is_empty());
        // 01:01:00: 60 s of silence: the agent is silent. Uptime burn: the last hour measured
        // 3,600 s with 60 s down (1/60 bad / 0.05 % budget = 33.3×), the last 10 min 600 s
        // with 60 s down (200×): both ≥ 10×, it fires at the lower, 33.3.
        engine.cycle(at(3660)).await.expect("cycle");
        let f = firing().await;
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].0, "burn");
        assert!(
            (f[0].1.expect("rate") - (60.0 / 3600.0) / 0.0005).abs() < 1e-6,
            "{f:?}"
        );
        assert_eq!(f[1], ("silent".to_owned(), Some(60.0)));
        let states = store.alert_states().await.expect("states");
        let silent = states.iter().find(|s| s.rule == "silent").expect("silent");
        assert_eq!(silent.key, "silent|agent=a1,customer=acme");
        // Heartbeats resume: the agent is no longer silent; the burn goes on (75 s down).
        ingest(vec![], beats(3675, 3690)).await;
        engine.cycle(at(3690)).await.expect("cycle");
        assert_eq!(
            firing()
                .await
                .iter()
                .map(|f| f.0.as_str())
                .collect::<Vec<_>>(),
            ["burn"]
        );
        // Heartbeats until 02:00, then silence into the maintenance window (02:00-03:00).
        // 02:30: silent for 30 min, but in maintenance: not firing. The burn resolves: the
        // last hour measured only 01:30-02:00, all up; the last 10 min are all maintenance.
        ingest(vec![], beats(3705, 7200)).await;
        engine.cycle(at(9000)).await.expect("cycle");
        assert!(firing().await.is_empty(), "{:?}", firing().await);
        // 03:00: the window is over and the agent still silent: it fires.
        engine.cycle(at(10_800)).await.expect("cycle");
        assert!(firing().await.iter().any(|f| f.0 == "silent"));
        // Two calls below MOS 4 in the last 10 min: 100 % > 20 % with 2 calls; `for` 30 s
        // holds the alert pending at 03:00:00 and 03:00:15, firing at 03:00:30.
        ingest(
            vec![
                report("a1", 0, Some("c0"), 10_700, 10_790, true, Some(2.0)),
                report("a1", 1, Some("c1"), 10_700, 10_790, true, Some(2.5)),
            ],
            vec![],
        )
        .await;
        for (t, expect) in [(10_800, "pending"), (10_815, "pending"), (10_830, "firing")] {
            engine.cycle(at(t)).await.expect("cycle");
            let states = store.alert_states().await.expect("states");
            let q = states
                .iter()
                .find(|s| s.rule == "quality")
                .expect("quality");
            assert_eq!((t, q.state.as_str()), (t, expect));
            assert_eq!(q.value, Some(100.0));
            assert_eq!(q.since_ns, at(10_800));
        }
        // The history: each transition once, in order.
        let history = store
            .alert_history(at(0), at(20_000), Some("acme"), 100)
            .await
            .expect("history");
        let h: Vec<(&str, &str, i64)> = history
            .iter()
            .map(|e| {
                (
                    e.rule.as_str(),
                    e.state.as_str(),
                    (e.at_ns - DAY_NS) / SECOND,
                )
            })
            .collect();
        assert_eq!(
            h,
            [
                // Rules in their configured order within one cycle.
                ("silent", "firing", 3660),
                ("burn", "firing", 3660),
                ("silent", "resolved", 3690),
                ("burn", "resolved", 9000),
                ("silent", "firing", 10_800),
                // At 03:00:15 both burn windows measure only 03:00:00-03:00:15 (the rest is
                // maintenance or before it), all of it down: the agent is still silent.
                ("burn", "firing", 10_815),
                ("quality", "firing", 10_830),
            ]
        );
        store.close().await;
    }

    /// The reads of all customers at once (`batch::read_all`: one query per aggregate,
    /// grouped by agent) give every rule of every customer exactly the observations that each
    /// customer's own reads give. Customers share an agent (a2), list one twice (a3), have none
    /// with data (a9), and one is narrowed to a subnet (its calls are read on its own, its
    /// report windows and heartbeats with the others'); one rule is for one customer only with
    /// another window. The data: heartbeats with a gap and a process down, calls above and
    /// below MOS 4, call records with media problems, report windows with and without
    /// capture drops.
    async fn batched_reads_observe_as_per_customer_reads(store: Store) {
        let text = r#"
[alerts]
evaluate_every = "15s"
[[alerts.rules]]
name = "quality"
kind = "quality_drop"
window = "1h"
threshold_pct = 20.0
min_calls = 1
[[alerts.rules]]
name = "quality-c2"
kind = "quality_drop"
window = "10m"
threshold_pct = 10.0
customer = "c2"
[[alerts.rules]]
name = "burn-page"
kind = "sla_burn"
commitments = ["uptime", "mos", "loss"]
loss_target_pct = 99.0
[[alerts.rules]]
name = "burn-ticket"
kind = "sla_burn"
severity = "ticket"
[[alerts.rules]]
name = "silent"
kind = "agent_silent"
[[alerts.rules]]
name = "capture"
kind = "capture_incomplete"
window = "1h"
threshold_pct = 30.0
"#;
        let mut text = text.to_owned();
        for (id, agents, extra, mos_min) in [
            ("c1", r#"["a1", "a2"]"#, "", 4.0),
            ("c2", r#"["a2", "a3"]"#, "", 3.5),
            ("c3", r#"["a3", "a3", "a4"]"#, "", 4.0),
            (
                "c4",
                r#"["a4", "a1"]"#,
                "subnets = [\"198.51.100.0/24\"]\n",
                4.0,
            ),
            ("c5", r#"["a9"]"#, "", 4.0),
        ] {
            text.push_str(&format!(
                "[[customers]]\nid = \"{id}\"\nname = \"{id}\"\nagents = {agents}\n{extra}\
                 [customers.commitments]\nmos_min = {mos_min}\ncalls_meeting_pct = 95.0\n\
                 loss_max_pct = 1.0\njitter_p95_max_ms = 30.0\nuptime_min_pct = 99.95\n\
                 heartbeat_interval_s = 15\n"
            ));
        }
        let config = CollectorConfig::parse(&text).expect("config");
        use voqa_wire::{CallRecord, CallSummary, MediaProblem};
        let t = |s: i64| voqa_wire::Timestamp::from_ns(DAY_NS + s * SECOND);
        // Heartbeats every 15 s from 00:00 to 05:00; a1 silent 02:00–02:05, a2 reports a
        // process down at 03:00, a4 starts at 04:00.
        for (agent, from) in [("a1", 0), ("a2", 0), ("a3", 0), ("a4", 14_400)] {
            let beats: Vec<_> = (from..=18_000)
                .step_by(15)
                .filter(|s| agent != "a1" || !(7_201..7_500).contains(s))
                .map(|s| heartbeat(agent, s, agent == "a2" && s == 10_800, 0))
                .collect();
            store
                .ingest(&batch(&format!("h-{agent}"), agent, vec![], beats), DAY_NS)
                .await
                .expect("ingest");
        }
        // Calls between 04:10 and 04:58, MOS 3.0–4.4; every third window complete.
        for (n, agent) in ["a1", "a2", "a3", "a4"].iter().enumerate() {
            let mut reports = Vec::new();
            let mut records = Vec::new();
            for k in 0..(6 + n as u32) {
                let start = 15_000 + i64::from(k) * 400 + n as i64 * 7;
                let mos = 3.0 + f64::from((k + n as u32) % 8) * 0.2;
                let call_id = format!("{agent}-{k}");
                let mut r = report(agent, k, Some(&call_id), start, start + 60, true, Some(mos));
                if k % 3 == 0 {
                    // Complete: no drops, and no jitter samples that would need a histogram.
                    r.capture_drops = 0;
                    r.jitter_samples = 0;
                }
                reports.push(r);
                if k % 2 == 0 {
                    records.push(CallRecord {
                        agent_id: (*agent).into(),
                        call_key: format!("{:016x}", n * 100 + k as usize),
                        call: CallSummary {
                            call_id: call_id.clone(),
                            setup: Some(t(start)),
                            answer: Some(t(start + 1)),
                            end: Some(t(start + 60)),
                            status: Some(200),
                            end_cause: Some("bye".into()),
                            problems: vec![MediaProblem {
                                kind: "one_way_audio".into(),
                                direction: "caller_to_callee".into(),
                                start: t(start + 2),
                            }],
                            ..CallSummary::default()
                        },
                    });
                }
            }
            let mut b = batch(&format!("r-{agent}"), agent, reports, vec![]);
            b.calls = records;
            store.ingest(&b, DAY_NS).await.expect("ingest");
        }
        let now = DAY_NS + 18_010 * SECOND;
        let batched = evaluate_with(&store, &config, now, true).await;
        let single = evaluate_with(&store, &config, now, false).await;
        assert_eq!(batched, single);
        // Not empty: every customer has each global rule's figures, and they differ.
        let of = |rule: &str, customer: &str| {
            batched[rule].by_customer[customer]
                .iter()
                .map(|o| o.value)
                .collect::<Vec<_>>()
        };
        for customer in ["c1", "c2", "c3", "c4", "c5"] {
            for rule in ["burn-page", "burn-ticket", "silent", "capture"] {
                assert!(
                    batched[rule].by_customer.contains_key(customer),
                    "{rule} {customer}"
                );
            }
        }
        // capture: c1 = a1's 6 windows and a2's 7, of which 2 + 3 without drops: 8 of 13.
        assert_eq!(of("capture", "c1"), [Some(8.0 * 100.0 / 13.0)]);
        // c5's agent never reported: no windows, no figure.
        assert_eq!(of("capture", "c5"), [None]);
        assert!(batched["quality-c2"].by_customer.keys().eq(["c2"]));
        assert!(of("quality", "c1")[0].is_some_and(|v| v > 0.0));
        assert_ne!(of("quality", "c1"), of("quality", "c2"));
    }

    #[tokio::test]
    async fn sqlite_batched_reads_observe_as_per_customer_reads() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&format!("sqlite:{}", dir.path().join("b.db").display()))
            .await
            .expect("open");
        batched_reads_observe_as_per_customer_reads(store.clone()).await;
        store.close().await;
    }

    /// The same on PostgreSQL (its own schema, dropped after); runs as the store's
    /// PostgreSQL suite does (`$VOQA_REQUIRE_POSTGRES` at build time, or `--ignored`).
    #[cfg_attr(
        not(voqa_require_postgres),
        ignore = "needs PostgreSQL at 127.0.0.1:5432: set VOQA_REQUIRE_POSTGRES=1 or run with --ignored"
    )]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_batched_reads_observe_as_per_customer_reads() {
        crate::store::alert_reads::tests::with_postgres(
            "batched",
            batched_reads_observe_as_per_customer_reads,
        )
        .await;
    }

    #[test]
    fn backoff_doubles_from_the_cadence_up_to_five_minutes() {
        let s = 1_000_000_000;
        let every = Duration::from_secs(1);
        assert_eq!(backoff_ns(every, 1), 2 * s);
        assert_eq!(backoff_ns(every, 2), 4 * s);
        assert_eq!(backoff_ns(every, 8), 256 * s);
        assert_eq!(backoff_ns(every, 9), 300 * s);
        assert_eq!(backoff_ns(Duration::from_secs(15), 100), 300 * s);
    }
}
