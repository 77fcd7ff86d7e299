//! The alert state machine: inactive → pending (the rule's `for:`) → firing → resolved, one
//! instance per rule and labels, and [`plan`], which turns one cycle's observations and the
//! stored instances into the store writes and notifications of that cycle.
//!
//! Pure: the stored states, the observations and the evaluation time come in; the changes
//! (an `AlertCycle` for `Store::alert_commit`) go out. No store, no clock, no I/O. An instance
//! whose rule and customer were not evaluated this cycle (a store error) is left as it was,
//! so a failed read never resolves anything.

use std::collections::{BTreeMap, BTreeSet};

use voqa_wire::Timestamp;

use super::config::{AlertsConfig, RuleConfig};
use super::notify::Notification;
use super::rules::Observation;
use crate::store::alerts::{AlertCycle, AlertEventRow, AlertStateRow, NewAlertEvent};

pub const PENDING: &str = "pending";
pub const FIRING: &str = "firing";
pub const RESOLVED: &str = "resolved";

/// The de-duplication key of an instance: its rule and identifying labels.
pub fn instance_key(rule: &str, labels: &BTreeMap<String, String>) -> String {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{rule}|{}", labels.join(","))
}

/// What one observation does to one instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing to store (inactive and staying so).
    Inactive,
    /// Pending or firing, without a transition worth a notification.
    Hold(AlertStateRow),
    /// Pending long enough (or `for` is 0): fires now.
    Fire(AlertStateRow),
    /// Was firing, the condition no longer holds.
    Resolve(AlertStateRow),
    /// Was pending, the condition no longer holds: forgotten without a word.
    Drop,
}

/// The transition of one instance: `prev` as stored, `obs` this cycle's condition (`None`:
/// not observed any more, e.g. its customer or agent left the configuration), at `now_ns`.
pub fn step(
    prev: Option<&AlertStateRow>,
    obs: Option<&Observation>,
    rule: &RuleConfig,
    key: &str,
    now_ns: i64,
) -> Step {
    let holds = obs.is_some_and(|o| o.firing);
    match (prev, holds) {
        (None, false) => Step::Inactive,
        (Some(prev), false) if prev.state == FIRING => Step::Resolve(AlertStateRow {
            value: obs.and_then(|o| o.value).or(prev.value),
            updated_ns: now_ns,
            ..prev.clone()
        }),
        (Some(_), false) => Step::Drop,
        (prev, true) => {
            let Some(obs) = obs else {
                return Step::Inactive;
            };
            let since = prev.map_or(now_ns, |p| p.since_ns);
            let firing_before = prev.is_some_and(|p| p.state == FIRING);
            let due = now_ns.saturating_sub(since) >= rule.for_.ns();
            let row = AlertStateRow {
                key: key.to_owned(),
                rule: rule.name.clone(),
                customer: obs.customer.clone(),
                labels: labels_json(rule, obs),
                severity: rule.severity.clone(),
                state: if firing_before || due {
                    FIRING
                } else {
                    PENDING
                }
                .to_owned(),
                since_ns: since,
                fired_ns: prev
                    .and_then(|p| p.fired_ns)
                    .or((firing_before || due).then_some(now_ns)),
                value: obs.value,
                threshold: obs.threshold,
                updated_ns: now_ns,
            };
            if !firing_before && due {
                Step::Fire(row)
            } else {
                Step::Hold(row)
            }
        }
    }
}

/// Every label of an instance: the rule's own, then the identifying ones.
pub fn all_labels(rule: &RuleConfig, obs: &Observation) -> BTreeMap<String, String> {
    let mut labels = rule.labels.clone();
    labels.extend(obs.labels.clone());
    labels
}

fn labels_json(rule: &RuleConfig, obs: &Observation) -> String {
    serde_json::to_string(&all_labels(rule, obs)).unwrap_or_else(|_| "{}".to_owned())
}

/// One cycle's observations of one rule: per customer evaluated, its instances (a customer
/// evaluated with no instance, e.g. no agent reported yet, is an empty list).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleObservations {
    pub by_customer: BTreeMap<String, Vec<Observation>>,
}

/// The link to the evidence: the customer's SLA over the span the figure covers, up to now.
pub fn evidence_url(base: &str, customer: &str, from_ns: i64, to_ns: i64) -> String {
    format!(
        "{}/api/v1/customers/{}/sla?from={}&to={}",
        base.trim_end_matches('/'),
        percent_encode(customer),
        Timestamp::from_ns(from_ns),
        Timestamp::from_ns(to_ns.max(from_ns.saturating_add(1_000_000_000)))
    )
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a path segment.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The changes of one cycle: for each configured rule, each customer evaluated, each stored
/// or observed instance, its [`step`]; events and their notifications for `Fire` and
/// `Resolve`. Stored instances of rules no longer configured resolve into the history
/// without notifications (their channels went with them).
pub fn plan(
    config: &AlertsConfig,
    stored: &[AlertStateRow],
    observed: &BTreeMap<String, RuleObservations>,
    evidence_base: &str,
    now_ns: i64,
) -> AlertCycle {
    let mut cycle = AlertCycle::default();
    let by_key: BTreeMap<&str, &AlertStateRow> =
        stored.iter().map(|s| (s.key.as_str(), s)).collect();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for rule in &config.rules {
        let Some(obs) = observed.get(&rule.name) else {
            // Not evaluated this cycle: its instances stay as they are.
            seen.extend(
                stored
                    .iter()
                    .filter(|s| s.rule == rule.name)
                    .map(|s| s.key.clone()),
            );
            continue;
        };
        let mut keyed: BTreeMap<String, &Observation> = BTreeMap::new();
        for list in obs.by_customer.values() {
            for o in list {
                keyed.insert(instance_key(&rule.name, &all_labels(rule, o)), o);
            }
        }
        // Stored instances of customers not evaluated this cycle are kept as they are.
        for s in stored.iter().filter(|s| s.rule == rule.name) {
            if !obs.by_customer.contains_key(&s.customer) && !keyed.contains_key(&s.key) {
                seen.insert(s.key.clone());
            }
        }
        let keys: BTreeSet<String> = keyed
            .keys()
            .cloned()
            .chain(
                stored
                    .iter()
                    .filter(|s| s.rule == rule.name && !seen.contains(&s.key))
                    .map(|s| s.key.clone()),
            )
            .collect();
        for key in keys {
            seen.insert(key.clone());
            let prev = by_key.get(key.as_str()).copied();
            let o = keyed.get(&key).copied();
            match step(prev, o, rule, &key, now_ns) {
                Step::Inactive => {}
                Step::Drop => cycle.delete.push(key),
                Step::Hold(row) => cycle.upsert.push(row),
                Step::Fire(row) => {
                    let event = event_of(&row, FIRING, now_ns);
                    let notify = notifications(rule, &event, o, evidence_base);
                    cycle.events.push(NewAlertEvent { event, notify });
                    cycle.upsert.push(row);
                }
                Step::Resolve(row) => {
                    let event = event_of(&row, RESOLVED, now_ns);
                    let notify = notifications(rule, &event, o, evidence_base);
                    cycle.events.push(NewAlertEvent { event, notify });
                    cycle.delete.push(key);
                }
            }
        }
    }
    // Rules removed from the configuration: their instances leave quietly.
    for s in stored.iter().filter(|s| !seen.contains(&s.key)) {
        if s.state == FIRING {
            cycle.events.push(NewAlertEvent {
                event: event_of(s, RESOLVED, now_ns),
                notify: Vec::new(),
            });
        }
        cycle.delete.push(s.key.clone());
    }
    cycle
}

fn event_of(row: &AlertStateRow, state: &str, now_ns: i64) -> AlertEventRow {
    AlertEventRow {
        id: 0,
        key: row.key.clone(),
        rule: row.rule.clone(),
        customer: row.customer.clone(),
        labels: row.labels.clone(),
        severity: row.severity.clone(),
        state: state.to_owned(),
        value: row.value,
        threshold: row.threshold,
        since_ns: row.since_ns,
        at_ns: now_ns,
    }
}

fn notifications(
    rule: &RuleConfig,
    event: &AlertEventRow,
    obs: Option<&Observation>,
    evidence_base: &str,
) -> Vec<(String, String)> {
    let window_ns = obs.map_or(3_600_000_000_000, |o| o.window_ns.max(1_000_000_000));
    let labels: BTreeMap<String, String> = serde_json::from_str(&event.labels).unwrap_or_default();
    let notification = Notification {
        rule: event.rule.clone(),
        kind: rule.kind.as_str().to_owned(),
        customer: event.customer.clone(),
        state: event.state.clone(),
        severity: event.severity.clone(),
        labels,
        value: event.value,
        threshold: event.threshold,
        since: Timestamp::from_ns(event.since_ns).to_string(),
        at: Timestamp::from_ns(event.at_ns).to_string(),
        summary: obs.map_or_else(|| "no longer observed".to_owned(), |o| o.summary.clone()),
        evidence_url: evidence_url(
            evidence_base,
            &event.customer,
            event.since_ns.saturating_sub(window_ns),
            event.at_ns,
        ),
    };
    let payload = serde_json::to_string(&notification).unwrap_or_else(|_| "{}".to_owned());
    rule.notify
        .iter()
        .map(|channel| (channel.clone(), payload.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::config::{RuleKind, Span};

    const S: i64 = 1_000_000_000;

    fn rule(for_s: u64) -> RuleConfig {
        RuleConfig {
            name: "q".into(),
            kind: RuleKind::QualityDrop,
            customer: Some("acme".into()),
            window: Some(Span::secs(900)),
            threshold_pct: Some(20.0),
            min_calls: Some(5),
            min_windows: None,
            for_: Span::secs(for_s),
            severity: "page".into(),
            labels: BTreeMap::from([("team".to_owned(), "noc".to_owned())]),
            notify: vec!["hook".into()],
            commitments: None,
            factor: None,
            long_window: None,
            short_window: None,
            loss_target_pct: None,
            periods: None,
            kpi: None,
            threshold: None,
            trunk: None,
        }
    }

    fn obs(firing: bool, value: f64) -> Observation {
        Observation {
            labels: BTreeMap::from([("customer".to_owned(), "acme".to_owned())]),
            customer: "acme".into(),
            value: Some(value),
            threshold: 20.0,
            firing,
            window_ns: 900 * S,
            summary: "s".into(),
        }
    }

    fn config(for_s: u64) -> AlertsConfig {
        AlertsConfig {
            rules: vec![rule(for_s)],
            ..AlertsConfig::default()
        }
    }

    fn observed(o: Option<Observation>) -> BTreeMap<String, RuleObservations> {
        BTreeMap::from([(
            "q".to_owned(),
            RuleObservations {
                by_customer: BTreeMap::from([("acme".to_owned(), o.into_iter().collect())]),
            },
        )])
    }

    /// Applies a cycle to the stored rows, as the store would.
    fn apply(stored: &mut Vec<AlertStateRow>, cycle: &AlertCycle) {
        stored.retain(|s| !cycle.delete.contains(&s.key));
        for u in &cycle.upsert {
            stored.retain(|s| s.key != u.key);
            stored.push(u.clone());
        }
    }

    #[test]
    fn for_holds_the_alert_pending_until_it_has_lasted() {
        // for = 60 s, cadence 15 s: bad from t=0; pending at 0, 15, 30, 45; fires at 60.
        let cfg = config(60);
        let mut stored = Vec::new();
        let mut fired_at = None;
        for t in (0..=90).step_by(15) {
            let cycle = plan(
                &cfg,
                &stored,
                &observed(Some(obs(true, 40.0))),
                "http://c",
                t * S,
            );
            if !cycle.events.is_empty() {
                assert_eq!(cycle.events.len(), 1, "one firing, once");
                assert_eq!(cycle.events[0].event.state, FIRING);
                assert!(fired_at.is_none(), "fired twice");
                fired_at = Some(t);
            }
            apply(&mut stored, &cycle);
            assert_eq!(stored.len(), 1);
            assert_eq!(
                stored[0].state,
                if t < 60 { PENDING } else { FIRING },
                "t={t}"
            );
            assert_eq!(stored[0].since_ns, 0);
        }
        assert_eq!(fired_at, Some(60));
        // Resolves once, then nothing.
        let cycle = plan(
            &cfg,
            &stored,
            &observed(Some(obs(false, 5.0))),
            "http://c",
            105 * S,
        );
        assert_eq!(cycle.events.len(), 1);
        let e = &cycle.events[0];
        assert_eq!(
            (e.event.state.as_str(), e.event.since_ns, e.event.value),
            (RESOLVED, 0, Some(5.0))
        );
        apply(&mut stored, &cycle);
        assert!(stored.is_empty());
        let cycle = plan(
            &cfg,
            &stored,
            &observed(Some(obs(false, 5.0))),
            "http://c",
            120 * S,
        );
        assert_eq!(cycle, AlertCycle::default());
    }

    #[test]
    fn a_blip_shorter_than_for_sends_nothing() {
        let cfg = config(60);
        let mut stored = Vec::new();
        for (t, bad) in [(0, true), (15, true), (30, false), (45, true), (60, true)] {
            let cycle = plan(
                &cfg,
                &stored,
                &observed(Some(obs(bad, 0.0))),
                "http://c",
                t * S,
            );
            assert!(cycle.events.is_empty(), "t={t}");
            apply(&mut stored, &cycle);
        }
        // The pending clock restarted at 45 s.
        assert_eq!(stored[0].since_ns, 45 * S);
    }

    #[test]
    fn for_zero_fires_at_once_with_a_notification_per_channel() {
        let cfg = config(0);
        let cycle = plan(
            &cfg,
            &[],
            &observed(Some(obs(true, 40.0))),
            "https://c.example/",
            100 * S,
        );
        assert_eq!(cycle.events.len(), 1);
        let (channel, payload) = &cycle.events[0].notify[0];
        assert_eq!(channel, "hook");
        let n: Notification = serde_json::from_str(payload).expect("payload");
        assert_eq!(
            (n.rule.as_str(), n.customer.as_str(), n.state.as_str()),
            ("q", "acme", "firing")
        );
        assert_eq!((n.value, n.threshold), (Some(40.0), 20.0));
        assert_eq!(n.since, "1970-01-01T00:01:40.000000Z");
        // The evidence: the customer's SLA from a window before `since` up to now.
        // 100 s − 900 s of window, up to now (100 s).
        assert_eq!(
            n.evidence_url,
            "https://c.example/api/v1/customers/acme/sla?from=1969-12-31T23:46:40.000000Z\
             &to=1970-01-01T00:01:40.000000Z"
        );
        assert_eq!(n.labels["team"], "noc");
        assert_eq!(cycle.upsert[0].key, "q|customer=acme,team=noc");
    }

    #[test]
    fn an_unevaluated_customer_keeps_its_alert() {
        let cfg = config(0);
        let cycle = plan(&cfg, &[], &observed(Some(obs(true, 40.0))), "http://c", 0);
        let mut stored = Vec::new();
        apply(&mut stored, &cycle);
        // The store failed for acme this cycle: no entry for it; nothing changes.
        let failed = BTreeMap::from([("q".to_owned(), RuleObservations::default())]);
        assert_eq!(
            plan(&cfg, &stored, &failed, "http://c", 15 * S),
            AlertCycle::default()
        );
        // Nor when the whole rule could not be evaluated.
        assert_eq!(
            plan(&cfg, &stored, &BTreeMap::new(), "http://c", 15 * S),
            AlertCycle::default()
        );
        // Evaluated with no instance any more (e.g. the agent left): resolves.
        let cycle = plan(&cfg, &stored, &observed(None), "http://c", 30 * S);
        assert_eq!(cycle.events[0].event.state, RESOLVED);
        assert_eq!(cycle.delete, [stored[0].key.clone()]);
        // A rule removed from the configuration: resolved in the history, no notification.
        let cycle = plan(
            &AlertsConfig::default(),
            &stored,
            &BTreeMap::new(),
            "http://c",
            30 * S,
        );
        assert_eq!(cycle.events.len(), 1);
        assert!(cycle.events[0].notify.is_empty());
        assert_eq!(cycle.delete.len(), 1);
    }

    #[test]
    fn restart_while_firing_sends_nothing_again() {
        // The stored state is all the engine remembers: firing stays firing, no new event.
        let cfg = config(0);
        let mut stored = Vec::new();
        apply(
            &mut stored,
            &plan(&cfg, &[], &observed(Some(obs(true, 40.0))), "http://c", 0),
        );
        let cycle = plan(
            &cfg,
            &stored,
            &observed(Some(obs(true, 45.0))),
            "http://c",
            15 * S,
        );
        assert!(cycle.events.is_empty());
        assert_eq!(cycle.upsert[0].value, Some(45.0));
        assert_eq!(cycle.upsert[0].fired_ns, Some(0));
    }

    #[test]
    fn customer_ids_are_escaped_in_the_link() {
        assert_eq!(
            evidence_url("http://h", "a b/c", 0, 0),
            "http://h/api/v1/customers/a%20b%2Fc/sla?from=1970-01-01T00:00:00.000000Z&to=1970-01-01T00:00:01.000000Z"
        );
    }
}
