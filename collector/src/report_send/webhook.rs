//! The webhook channel of monthly reports: the JSON body posted to a customer's
//! `report_webhook`, and one attempt (`deliver::webhook::post_signed`, HMAC-signed).
//!
//! The body is an envelope (who, which month, the verdicts, the report's JSON SHA-256) with
//! the report's JSON document as its last member, `report`, embedded byte for byte as
//! `report --format json` writes it: its SHA-256 is `report_sha256`, so a receiver that keeps
//! the raw text can check it, and the HTML or PDF of the same generation prints the same hash.
//! The HTML and PDF are not sent (the JSON is their only input, and they are at the API);
//! the body stays tens of kB, bounded by `deliver::webhook::MAX_BODY_BYTES`.
//! Must not claim, record or retry (the parent module does), nor compute a report figure.

use std::time::Duration;

use serde::Serialize;

use crate::deliver::webhook::{self, WebhookTarget};
use crate::report::ReportDocument;
use crate::report::build;
use crate::sla::Verdict;

/// Longest one report post may take, connection included.
pub const POST_TIMEOUT: Duration = Duration::from_secs(30);

/// The body's `type`.
pub const BODY_TYPE: &str = "voqa.monthly_report";

/// One commitment as the envelope lists it.
#[derive(Debug, Serialize)]
struct CommitmentLine<'a> {
    name: &'a str,
    verdict: Verdict,
    target: f64,
    unit: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mos_min: Option<f64>,
    measured: Option<f64>,
}

/// The envelope: everything but `report`.
#[derive(Debug, Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    customer: &'a str,
    customer_name: &'a str,
    /// `YYYY-MM` of the customer's zone.
    period: &'a str,
    time_zone: &'a str,
    from: &'a str,
    to: &'a str,
    verdict: Verdict,
    commitments: Vec<CommitmentLine<'a>>,
    calls: u64,
    calls_without_mos: u64,
    notices: usize,
    generated_at: &'a str,
    report_sha256: &'a str,
}

/// The body: the envelope's JSON with `,"report":<the JSON form>` spliced in before its
/// closing brace (serde_json writes an object's members in declaration order and ends it with
/// `}`, so the report is the last member, its bytes untouched).
pub fn body(document: &ReportDocument) -> Result<Vec<u8>, String> {
    let report = build::to_json(document).map_err(|e| format!("the report's JSON: {e}"))?;
    let e = &document.evaluation;
    let envelope = Envelope {
        kind: BODY_TYPE,
        customer: &document.customer.id,
        customer_name: &document.customer.name,
        period: &document.period.label,
        time_zone: &document.period.time_zone,
        from: &document.period.from,
        to: &document.period.to,
        verdict: e.verdict,
        commitments: e
            .commitments
            .iter()
            .map(|c| CommitmentLine {
                name: c.name,
                verdict: c.verdict,
                target: c.target,
                unit: c.unit,
                mos_min: c.mos_min,
                measured: c.measured,
            })
            .collect(),
        calls: e.calls,
        calls_without_mos: e.calls_without_mos,
        notices: document.notices.len(),
        generated_at: &document.provenance.generated_at,
        report_sha256: document.provenance.json_sha256.as_deref().unwrap_or(""),
    };
    let head = serde_json::to_vec(&envelope).map_err(|e| format!("the envelope's JSON: {e}"))?;
    Ok(splice(head, &report))
}

/// `{...}` + report → `{...,"report":REPORT}`.
fn splice(mut head: Vec<u8>, report: &[u8]) -> Vec<u8> {
    // The envelope always has members, so its text is `{...}` and never `{}`.
    if head.last() == Some(&b'}') {
        head.pop();
    }
    head.reserve(report.len() + 12);
    head.extend_from_slice(b",\"report\":");
    head.extend_from_slice(report);
    head.push(b'}');
    head
}

/// Posts `document` to the customer's webhook, signed: the URL as recorded, or the reason
/// it failed.
pub(super) async fn send(target: &WebhookTarget, document: &ReportDocument) -> Result<(), String> {
    let body = body(document)?;
    let client = webhook::http_client(POST_TIMEOUT).map_err(|e| e.to_string())?;
    webhook::post_signed(&client, &target.url, &target.secret_file, body, None)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_is_the_last_member_byte_for_byte() {
        let report = br#"{"report_version":1,"customer":{"id":"a\"b"},"x":[1.5,null]}"#;
        let body = splice(br#"{"type":"t","n":1}"#.to_vec(), report);
        assert_eq!(
            body,
            br#"{"type":"t","n":1,"report":{"report_version":1,"customer":{"id":"a\"b"},"x":[1.5,null]}}"#
        );
        let parsed: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(parsed["report"]["customer"]["id"], "a\"b");
        assert_eq!(parsed["n"], 1);
    }
}
