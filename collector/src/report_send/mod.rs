//! Monthly reports sent to customers (issue 14 item 6): on the first of each month of the
//! customer's time zone (an hour after it began, and at any later time if the collector was
//! down then) last month's report goes to the customer's `report_recipients` through
//! `[alerts.smtp]` (`mail`: a PDF when Chromium is installed, else the self-contained HTML,
//! with a plain-text summary of the verdicts) and/or, signed, to its `report_webhook`
//! (`webhook`: the JSON document in a JSON envelope). `voqa-collector report --send` sends
//! one now.
//!
//! Each (customer, month, channel) is a row of the store's `report_sends`, claimed before a
//! send (`Store::report_send_claim`) so that a restart, a second replica or the command line
//! never sends a month twice through a channel; a failure is recorded with its error and
//! retried with doubling delays, each channel on its own. Each attempt is counted in
//! `voqa_report_sends_total{channel,result}` when the sender has the server's metrics.
//!
//! What is due is decided by pure functions with the time passed in ([`due_period`],
//! [`retry_delay_ns`]); the sender takes its clock as an argument, so only `serve` and the
//! command line read the wall clock. Must not render or compute a report figure (it calls
//! `report::build` and `report::format`), nor speak SMTP or HTTP itself (`deliver`).

pub mod mail;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;

use crate::api::metrics::Metrics;
use crate::config::{CollectorConfig, LiveConfig};
use crate::report::build::{self, ReportError, ReportPeriodSpec};
use crate::sla::Customer;
use crate::store::report_sends::{Claim, ClaimRules, MAX_ATTEMPT, SendChannel, SendResult};
use crate::store::{Store, StoreError};

/// How long after the month began (in the customer's zone) its predecessor's report is due:
/// agents' spools deliver the last calls of the month a little late.
pub const SEND_GRACE_NS: i64 = 3600 * 1_000_000_000;

/// Due rows handled per scheduler cycle at most (the rest wait for the next cycle).
const DUE_PER_CYCLE: i64 = 64;

/// A clock: ns since the epoch. `serve` and the command line pass the wall clock; the rest of
/// this module reads no other.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Why a send could not even be attempted (a failed attempt is recorded, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ReportSendError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("customer {0:?} has no report_recipients")]
    NoRecipients(String),
    #[error("customer {0:?} has no report_webhook")]
    NoWebhook(String),
    #[error("customer {0:?} has no report_recipients and no report_webhook")]
    NoChannel(String),
    #[error("no [alerts.smtp] server is configured")]
    NoServer,
}

/// The channels a customer's reports go through, e-mail first.
pub fn channels(customer: &Customer) -> Vec<SendChannel> {
    SendChannel::ALL
        .into_iter()
        .filter(|c| configured(customer, *c))
        .collect()
}

fn configured(customer: &Customer, channel: SendChannel) -> bool {
    match channel {
        SendChannel::Email => !customer.report_recipients.is_empty(),
        SendChannel::Webhook => customer.report_webhook.is_some(),
    }
}

/// The month (`year`, `month`) whose report is due at `now_ns` in `zone`: the month before
/// the one that `now_ns − SEND_GRACE_NS` falls in, local. `None` only for an instant out of
/// the calendar's range.
pub fn due_period(now_ns: i64, zone: &TimeZone) -> Option<(i16, i8)> {
    let at =
        jiff::Timestamp::from_nanosecond(i128::from(now_ns.checked_sub(SEND_GRACE_NS)?)).ok()?;
    let previous = at
        .to_zoned(zone.clone())
        .date()
        .first_of_month()
        .yesterday()
        .ok()?;
    Some((previous.year(), previous.month()))
}

/// `YYYY-MM`, as `report --period` and `report_sends.period` write a month.
pub fn period_label(year: i16, month: i8) -> String {
    format!("{year:04}-{month:02}")
}

/// Delay before the attempt after failed attempt number `attempts` (1 for the first):
/// `min_s`, doubled per further failure, at most `max_s`.
pub fn retry_delay_ns(attempts: i64, min_s: u64, max_s: u64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let seconds = min_s.saturating_mul(1u64 << doublings).min(max_s);
    i64::try_from(seconds)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000_000)
}

/// How one call of [`Sender::send_month`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted by the SMTP server or the webhook (attempt number `attempt`).
    Sent {
        attempt: i64,
        /// The recipients, or the webhook's URL without its query.
        destination: String,
        /// The mailed file's name (e-mail only).
        attachment: Option<String>,
        report_sha256: String,
    },
    /// Attempt `attempt` failed; recorded, and due again at `next_attempt_ns`.
    Failed {
        attempt: i64,
        error: String,
        next_attempt_ns: i64,
    },
    /// Not attempted: the row was sent already, held by another sender, or not due.
    NotClaimed(Claim),
}

/// What a send needs besides the month.
#[derive(Clone)]
pub struct Sender {
    pub store: Store,
    /// This process's id in `report_sends.claimed_by` (random per process).
    pub owner: String,
    pub collector_version: &'static str,
    pub clock: Clock,
    /// `serve`'s metrics, where each attempt is counted; None for the command line.
    pub metrics: Option<Arc<Metrics>>,
}

impl Sender {
    /// Claims `customer`'s `period` on `channel` (recording it first if new) and, if this
    /// sender got it, builds the report and sends it, then records the outcome. The attempt
    /// is bounded by [`MAX_ATTEMPT`], inside the claim's lease.
    pub async fn send_month(
        &self,
        config: &CollectorConfig,
        customer: &Customer,
        period: &str,
        channel: SendChannel,
        rules: ClaimRules,
    ) -> Result<SendOutcome, ReportSendError> {
        let destination = match channel {
            SendChannel::Email => {
                if customer.report_recipients.is_empty() {
                    return Err(ReportSendError::NoRecipients(customer.id.clone()));
                }
                if config.alerts.smtp.is_none() {
                    return Err(ReportSendError::NoServer);
                }
                customer.report_recipients.join(", ")
            }
            SendChannel::Webhook => match &customer.report_webhook {
                Some(hook) => crate::deliver::webhook::display_url(&hook.url),
                None => return Err(ReportSendError::NoWebhook(customer.id.clone())),
            },
        };
        let spec = ReportPeriodSpec::parse(Some(period), None, None)?;
        let now = (self.clock)();
        self.store
            .report_send_ensure(&customer.id, period, channel, now)
            .await?;
        let claim = self
            .store
            .report_send_claim(&customer.id, period, channel, &self.owner, now, rules)
            .await?;
        let Claim::Claimed { attempt, .. } = claim else {
            return Ok(SendOutcome::NotClaimed(claim));
        };
        let outcome = match tokio::time::timeout(
            MAX_ATTEMPT,
            self.attempt(config, customer, &spec, period, channel),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(format!(
                "the attempt took longer than {} s and was abandoned",
                MAX_ATTEMPT.as_secs()
            )),
        };
        if let Some(metrics) = &self.metrics {
            metrics.report_send(channel.as_str(), outcome.is_ok());
        }
        let now = (self.clock)();
        let (result, outcome) = match &outcome {
            Ok((attachment, sha)) => (
                SendResult::Sent {
                    recipients: &destination,
                    attachment: attachment.as_deref(),
                    report_sha256: sha,
                },
                SendOutcome::Sent {
                    attempt,
                    destination: destination.clone(),
                    attachment: attachment.clone(),
                    report_sha256: sha.clone(),
                },
            ),
            Err(error) => {
                let next_attempt_ns = now.saturating_add(retry_delay_ns(
                    attempt,
                    config.server.report_retry_min_s,
                    config.server.report_retry_max_s,
                ));
                (
                    SendResult::Failed {
                        error,
                        next_attempt_ns,
                        recipients: &destination,
                    },
                    SendOutcome::Failed {
                        attempt,
                        error: error.clone(),
                        next_attempt_ns,
                    },
                )
            }
        };
        if !self
            .store
            .report_send_finish(&customer.id, period, channel, &self.owner, now, result)
            .await?
        {
            // Cannot happen within MAX_ATTEMPT < lease, unless the clock jumped.
            tracing::warn!(
                customer = %customer.id,
                period,
                "the claim on the {channel} report of {} for {period} ran out before its outcome \
                 was recorded",
                customer.id
            );
        }
        Ok(outcome)
    }

    /// Builds the report and sends it through `channel`: the attachment's name (e-mail) and
    /// the report's JSON SHA-256, or the reason it failed.
    async fn attempt(
        &self,
        config: &CollectorConfig,
        customer: &Customer,
        spec: &ReportPeriodSpec,
        period: &str,
        channel: SendChannel,
    ) -> Result<(Option<String>, String), String> {
        let document = build::build(
            &self.store,
            customer,
            spec,
            (self.clock)(),
            self.collector_version,
        )
        .await
        .map_err(|e| format!("building the report: {e}"))?;
        let sha = document.provenance.json_sha256.clone().unwrap_or_default();
        let attachment = match channel {
            SendChannel::Email => {
                let smtp = config
                    .alerts
                    .smtp
                    .as_ref()
                    .ok_or_else(|| "no [alerts.smtp] server is configured".to_owned())?;
                Some(mail::send(&config.server, smtp, customer, &document, period).await?)
            }
            SendChannel::Webhook => {
                let target = customer
                    .report_webhook
                    .as_ref()
                    .ok_or_else(|| "no report_webhook is configured".to_owned())?;
                webhook::send(target, &document).await?;
                None
            }
        };
        Ok((attachment, sha))
    }

    /// One scheduler cycle at the sender's now: records each customer's due month on each of
    /// its channels, then attempts every row due (new months, and failures whose retry time
    /// has come).
    pub async fn cycle(&self, config: &CollectorConfig) -> Result<(), ReportSendError> {
        let now = (self.clock)();
        for customer in &config.customers {
            let channels = channels(customer);
            if channels.is_empty() {
                continue;
            }
            let zone = build::customer_zone(customer)?;
            if let Some((year, month)) = due_period(now, &zone) {
                let period = period_label(year, month);
                for channel in channels {
                    self.store
                        .report_send_ensure(&customer.id, &period, channel, now)
                        .await?;
                }
            }
        }
        for row in self.store.report_sends_due(now, DUE_PER_CYCLE).await? {
            // A customer since removed, a channel no longer configured, or one a newer
            // collector wrote: its row waits, untouched.
            let Some(channel) = SendChannel::parse(&row.channel) else {
                continue;
            };
            let Some(customer) = config
                .customer(&row.customer_id)
                .filter(|c| configured(c, channel))
            else {
                continue;
            };
            let asap = ClaimRules {
                ignore_schedule: false,
                resend: false,
            };
            match self
                .send_month(config, customer, &row.period, channel, asap)
                .await
            {
                Ok(SendOutcome::Sent {
                    attempt,
                    destination,
                    attachment,
                    ..
                }) => tracing::info!(
                    customer = %customer.id,
                    period = %row.period,
                    channel = channel.as_str(),
                    "report of {} for {} {} {destination} ({}attempt {attempt})",
                    customer.id,
                    row.period,
                    sent_verb(channel),
                    attachment.map_or(String::new(), |a| format!("{a}, "))
                ),
                Ok(SendOutcome::Failed {
                    attempt,
                    error,
                    next_attempt_ns,
                }) => tracing::warn!(
                    customer = %customer.id,
                    period = %row.period,
                    channel = channel.as_str(),
                    "{channel} report of {} for {}: attempt {attempt} failed: {error}; next \
                     attempt at {}",
                    customer.id,
                    row.period,
                    voqa_wire::Timestamp::from_ns(next_attempt_ns)
                ),
                // Another replica took it between the listing and the claim.
                Ok(SendOutcome::NotClaimed(_)) => {}
                Err(e) => tracing::warn!(
                    customer = %customer.id,
                    "{channel} report of {} for {}: {e}",
                    customer.id,
                    row.period
                ),
            }
        }
        Ok(())
    }
}

/// What the log and the command line say a sent report was: `mailed to` or `posted to`.
pub fn sent_verb(channel: SendChannel) -> &'static str {
    match channel {
        SendChannel::Email => "mailed to",
        SendChannel::Webhook => "posted to",
    }
}

/// A random id for this process's claims: `pid<PID>-<12 hex>`.
pub fn new_owner() -> std::io::Result<String> {
    let (_, id) = crate::auth::new_token()?;
    Ok(format!("pid{}-{id}", std::process::id()))
}

/// `serve`'s scheduler: a cycle every `report_check_interval_s` (read from the live
/// configuration, so SIGHUP's customers, recipients and webhooks apply at the next cycle).
/// Runs until the process ends; a failed cycle is logged and the next one tries again.
pub async fn run(sender: Sender, live: LiveConfig) {
    loop {
        let config = live.current();
        let any = config.customers.iter().any(|c| !channels(c).is_empty());
        if any && let Err(e) = sender.cycle(&config).await {
            tracing::warn!("monthly reports: {e}");
        }
        tokio::time::sleep(Duration::from_secs(config.server.report_check_interval_s)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(text: &str) -> i64 {
        voqa_wire::Timestamp::parse(text).expect(text).as_ns()
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).expect(name)
    }

    /// Each case worked by hand: the local time of the instant minus one hour, its month, and
    /// the month before.
    #[test]
    fn the_due_month_is_last_month_of_the_customers_zone_an_hour_in() {
        let cases = [
            // UTC: 1 December 00:59 is still within the grace hour: October is last due.
            ("2026-12-01T00:59:59Z", "UTC", (2026, 10)),
            ("2026-12-01T01:00:00Z", "UTC", (2026, 11)),
            ("2026-12-07T02:35:00Z", "UTC", (2026, 11)),
            // Auckland is UTC+13 in (southern) summer: 1 December 00:00 NZDT is 30 November
            // 11:00 UTC, so November is due there at 12:00 UTC on the 30th, half a day before
            // UTC's customers.
            ("2026-11-30T11:59:59Z", "Pacific/Auckland", (2026, 10)),
            ("2026-11-30T12:00:00Z", "Pacific/Auckland", (2026, 11)),
            ("2026-11-30T12:00:00Z", "UTC", (2026, 10)),
            // Auckland's DST starts on the last Sunday of September (27 September 2026,
            // 02:00 NZST becomes 03:00 NZDT): 1 October 00:00 NZDT is 30 September 11:00 UTC.
            ("2026-09-30T11:59:59Z", "Pacific/Auckland", (2026, 8)),
            ("2026-09-30T12:00:00Z", "Pacific/Auckland", (2026, 9)),
            // ... and it ends on the first Sunday of April (5 April 2026): 1 April is still
            // NZDT (+13), 1 May is NZST (+12): 1 May 00:00 is 30 April 12:00 UTC.
            ("2026-04-30T12:59:59Z", "Pacific/Auckland", (2026, 3)),
            ("2026-04-30T13:00:00Z", "Pacific/Auckland", (2026, 4)),
            // Berlin after its autumn change (CET, +1): 1 November 00:00 is 31 October 23:00
            // UTC; an hour later October is due.
            ("2026-11-01T00:00:00Z", "Europe/Berlin", (2026, 10)),
            ("2026-10-31T23:59:59Z", "Europe/Berlin", (2026, 9)),
            // Los Angeles (PST, −8): 1 January 00:00 is 08:00 UTC; the year turns.
            ("2027-01-01T08:59:59Z", "America/Los_Angeles", (2026, 11)),
            ("2027-01-01T09:00:00Z", "America/Los_Angeles", (2026, 12)),
            ("2027-01-01T09:00:00Z", "UTC", (2026, 12)),
        ];
        for (at, name, expected) in cases {
            assert_eq!(
                due_period(ns(at), &zone(name)),
                Some(expected),
                "{at} in {name}"
            );
        }
        assert_eq!(period_label(2026, 3), "2026-03");
    }

    #[test]
    fn a_customer_is_sent_through_the_channels_it_has() {
        let customers = crate::sla::parse_customers(
            r#"
[[customers]]
id = "both"
name = "B"
agents = ["a"]
report_recipients = ["noc@b.example"]
report_webhook = { url = "https://hooks.b.example/r", secret_file = "/s" }
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.9

[[customers]]
id = "hook"
name = "H"
agents = ["a"]
report_webhook = { url = "http://127.0.0.1:9/r", secret_file = "/s" }
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.9

[[customers]]
id = "none"
name = "N"
agents = ["a"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.9
"#,
        )
        .expect("customers");
        let got: Vec<Vec<SendChannel>> = customers.iter().map(channels).collect();
        assert_eq!(
            got,
            [
                vec![SendChannel::Email, SendChannel::Webhook],
                vec![SendChannel::Webhook],
                vec![],
            ]
        );
        assert_eq!(sent_verb(SendChannel::Webhook), "posted to");
    }

    #[test]
    fn retries_double_up_to_the_ceiling() {
        let s = 1_000_000_000;
        let delays: Vec<i64> = (1..=8).map(|a| retry_delay_ns(a, 60, 3600) / s).collect();
        assert_eq!(delays, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(retry_delay_ns(1_000_000, 60, 3600), 3600 * s);
        assert_eq!(
            retry_delay_ns(0, 1, 2),
            s,
            "a zero count is the first delay"
        );
    }
}
