//! The e-mail channel of monthly reports: the subject, the plain-text verdict summary, the
//! attachment's name and form, and one attempt (render, then `deliver::smtp`). Must not
//! claim, record or retry (the parent module does), nor compute a report figure.

use crate::config::ServerConfig;
use crate::deliver::smtp::{self, Attachment, Mail, SmtpConfig};
use crate::report::ReportDocument;
use crate::report::format::{self, ReportFormat};
use crate::report::pdf;
use crate::sla::{Customer, Verdict};

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

/// Renders `document` and mails it to the customer's recipients: the attachment's name, or
/// the reason it failed.
pub(super) async fn send(
    server: &ServerConfig,
    smtp_config: &SmtpConfig,
    customer: &Customer,
    document: &ReportDocument,
    period: &str,
) -> Result<String, String> {
    let mut form = mail_format(server);
    let bytes = match format::render(document, form).await {
        Ok(bytes) => bytes,
        // Chromium found but failing: the HTML is the same report, and it still goes out.
        Err(e) if form == ReportFormat::Pdf && server.report_mail_format == "auto" => {
            tracing::warn!(
                customer = %customer.id,
                "printing the report of {} for {period} as PDF failed ({e}); mailing the HTML",
                customer.id
            );
            form = ReportFormat::Html;
            format::render(document, form)
                .await
                .map_err(|e| format!("rendering the report: {e}"))?
        }
        Err(e) => return Err(format!("rendering the report: {e}")),
    };
    let attachment = attachment_name(&customer.id, period, form);
    let mail = Mail {
        to: customer.report_recipients.clone(),
        subject: subject(document),
        body: summary(document, &attachment),
        attachment: Some(Attachment {
            filename: attachment.clone(),
            content_type: form.content_type().to_owned(),
            bytes,
        }),
    };
    smtp::send(smtp_config, &mail)
        .await
        .map_err(|e| e.to_string())?;
    Ok(attachment)
}

#[cfg(test)]
mod tests {
    use super::*;

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
