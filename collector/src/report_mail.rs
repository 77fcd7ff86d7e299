//! Monthly reports mailed to customers (issue 14 item 6): on the first of each month of the
//! customer's time zone (an hour after it began, and at any later time if the collector was
//! down then) last month's report goes to the customer's `report_recipients` through
//! `[alerts.smtp]`, as a PDF when Chromium is installed, else the self-contained HTML, with a
//! plain-text summary of the verdicts in the body. `voqa-collector report --send` sends one now.
//!
//! Each (customer, month) is a row of the store's `report_sends`, claimed before a send
//! (`Store::report_send_claim`) so that a restart, a second replica or the command line never
//! sends a month twice; a failure is recorded with its error and retried with doubling delays.
//!
//! What is due is decided by pure functions with the time passed in ([`due_period`],
//! [`retry_delay_ns`]); the sender takes its clock as an argument, so only `serve` and the
//! command line read the wall clock. Must not render or compute a report figure (it calls
//! `report::build` and `report::format`), nor speak SMTP itself (`deliver::smtp`).

use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;

use crate::config::{CollectorConfig, LiveConfig, ServerConfig};
use crate::deliver::smtp::{self, Attachment, Mail, SmtpConfig};
use crate::report::ReportDocument;
use crate::report::build::{self, ReportError, ReportPeriodSpec};
use crate::report::format::{self, ReportFormat};
use crate::report::pdf;
use crate::sla::{Customer, Verdict};
use crate::store::report_sends::{Claim, ClaimRules, MAX_ATTEMPT, SendResult};
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
pub enum ReportMailError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("customer {0:?} has no report_recipients")]
    NoRecipients(String),
    #[error("no [alerts.smtp] server is configured")]
    NoServer,
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

/// The subject line: who, which month, the overall verdict.
pub fn subject(document: &ReportDocument) -> String {
    format!(
        "{}: SLA report {} — {}",
        document.customer.name,
        document.period.label,
        verdict_text(document.evaluation.verdict)
    )
}

fn verdict_text(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Met => "met",
        Verdict::Breached => "BREACHED",
        Verdict::NoData => "no data",
    }
}

/// A number as the report prints it: up to three decimals, no trailing zeros.
fn figure(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// The plain-text body: the period, each commitment's target, measured value and verdict,
/// the calls counted, the notices, and where the whole report is.
pub fn summary(document: &ReportDocument, attachment: &str) -> String {
    let e = &document.evaluation;
    let p = &document.period;
    let mut out = format!(
        "SLA report of {} for {} ({}, {} to {}).\n\nOverall verdict: {}\n\n",
        document.customer.name,
        p.label,
        p.time_zone,
        p.from_local,
        p.to_local,
        verdict_text(e.verdict)
    );
    for c in &e.commitments {
        let target = match (c.name, c.mos_min) {
            ("mos", Some(mos_min)) => format!(
                "at least {} % of calls at MOS >= {}",
                figure(c.target),
                figure(mos_min)
            ),
            ("uptime", _) => format!("at least {} %", figure(c.target)),
            _ => format!("at most {} {}", figure(c.target), c.unit),
        };
        let measured = c.measured.map_or("not measured".to_owned(), |m| {
            format!("{} {}", figure(m), c.unit)
        });
        out.push_str(&format!(
            "  {:<11} {:<7}  target {target}; measured {measured}\n",
            c.name,
            verdict_text(c.verdict)
        ));
    }
    out.push_str(&format!(
        "\nCalls: {} ({} without a MOS).\n",
        e.calls, e.calls_without_mos
    ));
    if !document.notices.is_empty() {
        out.push_str(&format!(
            "Notices: {} (where measurement was incomplete; see the report).\n",
            document.notices.len()
        ));
    }
    out.push_str(&format!("\nThe full report is attached: {attachment}\n"));
    if let Some(sha) = &document.provenance.json_sha256 {
        out.push_str(&format!("Report JSON SHA-256: {sha}\n"));
    }
    out
}

/// The attachment's file name: `voqa-<customer>-<YYYY-MM>.<ext>`, the id reduced to
/// characters safe in a MIME parameter and a file system.
pub fn attachment_name(customer_id: &str, period: &str, format: ReportFormat) -> String {
    let id: String = customer_id
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("voqa-{id}-{period}.{}", format.extension())
}

/// The mailed report's form per `report_mail_format` (`auto`: PDF when Chromium is on PATH).
fn mail_format(server: &ServerConfig) -> ReportFormat {
    match server.report_mail_format.as_str() {
        "html" => ReportFormat::Html,
        "pdf" => ReportFormat::Pdf,
        _ if pdf::find_chromium(std::env::var_os("PATH").as_deref()).is_some() => ReportFormat::Pdf,
        _ => ReportFormat::Html,
    }
}

/// How one call of [`send_month`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Handed to the SMTP server (attempt number `attempt`).
    Sent {
        attempt: i64,
        attachment: String,
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
}

impl Sender {
    /// Claims `customer`'s `period` (recording it first if new) and, if this sender got it,
    /// builds, renders and mails the report, then records the outcome. The attempt is bounded
    /// by [`MAX_ATTEMPT`], inside the claim's lease.
    pub async fn send_month(
        &self,
        config: &CollectorConfig,
        customer: &Customer,
        period: &str,
        rules: ClaimRules,
    ) -> Result<SendOutcome, ReportMailError> {
        if customer.report_recipients.is_empty() {
            return Err(ReportMailError::NoRecipients(customer.id.clone()));
        }
        let smtp = config
            .alerts
            .smtp
            .as_ref()
            .ok_or(ReportMailError::NoServer)?;
        let spec = ReportPeriodSpec::parse(Some(period), None, None)?;
        let now = (self.clock)();
        self.store
            .report_send_ensure(&customer.id, period, now)
            .await?;
        let claim = self
            .store
            .report_send_claim(&customer.id, period, &self.owner, now, rules)
            .await?;
        let Claim::Claimed { attempt, .. } = claim else {
            return Ok(SendOutcome::NotClaimed(claim));
        };
        let recipients = customer.report_recipients.join(", ");
        let outcome = match tokio::time::timeout(
            MAX_ATTEMPT,
            self.attempt(&config.server, smtp, customer, &spec, period),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(format!(
                "the attempt took longer than {} s and was abandoned",
                MAX_ATTEMPT.as_secs()
            )),
        };
        let now = (self.clock)();
        let (result, outcome) = match &outcome {
            Ok((attachment, sha)) => (
                SendResult::Sent {
                    recipients: &recipients,
                    attachment,
                    report_sha256: sha,
                },
                SendOutcome::Sent {
                    attempt,
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
                        recipients: &recipients,
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
            .report_send_finish(&customer.id, period, &self.owner, now, result)
            .await?
        {
            // Cannot happen within MAX_ATTEMPT < lease, unless the clock jumped.
            tracing::warn!(
                customer = %customer.id,
                period,
                "the claim on the report of {} for {period} ran out before its outcome was recorded",
                customer.id
            );
        }
        Ok(outcome)
    }

    /// Builds, renders and sends: the attachment's name and the report's JSON SHA-256, or
    /// the reason it failed.
    async fn attempt(
        &self,
        server: &ServerConfig,
        smtp: &SmtpConfig,
        customer: &Customer,
        spec: &ReportPeriodSpec,
        period: &str,
    ) -> Result<(String, String), String> {
        let document = build::build(
            &self.store,
            customer,
            spec,
            (self.clock)(),
            self.collector_version,
        )
        .await
        .map_err(|e| format!("building the report: {e}"))?;
        let mut form = mail_format(server);
        let bytes = match format::render(&document, form).await {
            Ok(bytes) => bytes,
            // Chromium found but failing: the HTML is the same report, and it still goes out.
            Err(e) if form == ReportFormat::Pdf && server.report_mail_format == "auto" => {
                tracing::warn!(
                    customer = %customer.id,
                    "printing the report of {} for {period} as PDF failed ({e}); mailing the HTML",
                    customer.id
                );
                form = ReportFormat::Html;
                format::render(&document, form)
                    .await
                    .map_err(|e| format!("rendering the report: {e}"))?
            }
            Err(e) => return Err(format!("rendering the report: {e}")),
        };
        let attachment = attachment_name(&customer.id, period, form);
        let sha = document.provenance.json_sha256.clone().unwrap_or_default();
        let mail = Mail {
            to: customer.report_recipients.clone(),
            subject: subject(&document),
            body: summary(&document, &attachment),
            attachment: Some(Attachment {
                filename: attachment.clone(),
                content_type: form.content_type().to_owned(),
                bytes,
            }),
        };
        smtp::send(smtp, &mail).await.map_err(|e| e.to_string())?;
        Ok((attachment, sha))
    }

    /// One scheduler cycle at the sender's now: records each mailed customer's due month,
    /// then attempts every row due (new months, and failures whose retry time has come).
    pub async fn cycle(&self, config: &CollectorConfig) -> Result<(), ReportMailError> {
        let now = (self.clock)();
        for customer in config
            .customers
            .iter()
            .filter(|c| !c.report_recipients.is_empty())
        {
            let zone = build::customer_zone(customer)?;
            if let Some((year, month)) = due_period(now, &zone) {
                self.store
                    .report_send_ensure(&customer.id, &period_label(year, month), now)
                    .await?;
            }
        }
        for row in self.store.report_sends_due(now, DUE_PER_CYCLE).await? {
            // A customer since removed, or no longer mailed: its row waits, untouched.
            let Some(customer) = config
                .customer(&row.customer_id)
                .filter(|c| !c.report_recipients.is_empty())
            else {
                continue;
            };
            let asap = ClaimRules {
                ignore_schedule: false,
                resend: false,
            };
            match self.send_month(config, customer, &row.period, asap).await {
                Ok(SendOutcome::Sent {
                    attempt,
                    attachment,
                    ..
                }) => tracing::info!(
                    customer = %customer.id,
                    period = %row.period,
                    "report of {} for {} mailed to {} ({attachment}, attempt {attempt})",
                    customer.id,
                    row.period,
                    customer.report_recipients.join(", ")
                ),
                Ok(SendOutcome::Failed {
                    attempt,
                    error,
                    next_attempt_ns,
                }) => tracing::warn!(
                    customer = %customer.id,
                    period = %row.period,
                    "report of {} for {}: attempt {attempt} failed: {error}; next attempt at {}",
                    customer.id,
                    row.period,
                    voqa_wire::Timestamp::from_ns(next_attempt_ns)
                ),
                // Another replica took it between the listing and the claim.
                Ok(SendOutcome::NotClaimed(_)) => {}
                Err(e) => tracing::warn!(
                    customer = %customer.id,
                    "report of {} for {}: {e}",
                    customer.id,
                    row.period
                ),
            }
        }
        Ok(())
    }
}

/// A random id for this process's claims: `pid<PID>-<12 hex>`.
pub fn new_owner() -> std::io::Result<String> {
    let (_, id) = crate::auth::new_token()?;
    Ok(format!("pid{}-{id}", std::process::id()))
}

/// `serve`'s scheduler: a cycle every `report_check_interval_s` (read from the live
/// configuration, so SIGHUP's customers and recipients apply at the next cycle). Runs until
/// the process ends; a failed cycle is logged and the next one tries again.
pub async fn run(sender: Sender, live: LiveConfig) {
    loop {
        let config = live.current();
        let any = config
            .customers
            .iter()
            .any(|c| !c.report_recipients.is_empty());
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

    #[test]
    fn attachment_names_are_safe() {
        assert_eq!(
            attachment_name("acme", "2026-11", ReportFormat::Pdf),
            "voqa-acme-2026-11.pdf"
        );
        assert_eq!(
            attachment_name("a/b \"c\"", "2026-11", ReportFormat::Html),
            "voqa-a_b__c_-2026-11.html"
        );
    }

    #[test]
    fn figures_print_like_the_report() {
        assert_eq!(figure(95.0), "95");
        assert_eq!(figure(99.95), "99.95");
        assert_eq!(figure(4.0), "4");
        assert_eq!(figure(1.23456), "1.235");
    }
}
