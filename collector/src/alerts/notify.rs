//! What a notification says and how it leaves: the generic webhook (the JSON [`Notification`]
//! signed with HMAC-SHA-256 in `X-Voqa-Signature: sha256=<hex>`, posted by
//! `deliver::webhook`, the one signed POST), Prometheus Alertmanager's API v2
//! (`POST /api/v2/alerts`), and e-mail through `deliver::smtp`.
//!
//! Every send is bounded: a connect and a whole-request timeout, no redirects, the answer's
//! status read and its body never. Must not: retry or remember anything (the engine's outbox
//! does), or read a clock (times come in the notification).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::{AlertmanagerConfig, WebhookConfig};
use crate::deliver::smtp::{self, EmailChannel, Mail, SmtpConfig, SmtpError};
use crate::deliver::webhook::{self, WebhookError, error_chain, status_ok};

/// Longest one webhook or Alertmanager request may take, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The webhook body, and what every channel is built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub rule: String,
    pub kind: String,
    pub customer: String,
    /// `firing` or `resolved`.
    pub state: String,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    /// The measured figure (null when nothing could be judged).
    pub value: Option<f64>,
    pub threshold: f64,
    /// When the condition started to hold (RFC 3339 UTC).
    pub since: String,
    /// When this transition was decided.
    pub at: String,
    pub summary: String,
    /// The customer's SLA over the span the figure covers.
    pub evidence_url: String,
}

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("secret file {path}: {message}")]
    Secret { path: String, message: String },
    #[error("request failed: {0}")]
    Http(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("e-mail: {0}")]
    Smtp(#[from] SmtpError),
    #[error("channel '{0}' is not configured any more")]
    UnknownChannel(String),
    #[error("bad payload: {0}")]
    Payload(String),
}

/// The shared transport's errors are this module's, variant for variant (same texts).
impl From<WebhookError> for NotifyError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Secret { path, message } => NotifyError::Secret { path, message },
            WebhookError::Http(text) => NotifyError::Http(text),
            WebhookError::Status(code) => NotifyError::Status(code),
            too_large @ WebhookError::TooLarge(_) => NotifyError::Payload(too_large.to_string()),
        }
    }
}

/// The HTTP client of every webhook and Alertmanager send (`deliver::webhook`'s, bounded by
/// [`SEND_TIMEOUT`]).
pub fn http_client() -> Result<reqwest::Client, NotifyError> {
    Ok(webhook::http_client(SEND_TIMEOUT)?)
}

/// `sha256=<hex>` of HMAC-SHA-256 over `body` with `secret` (`deliver::webhook::signature`).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    webhook::signature(secret, body)
}

/// The secret of a webhook: the file's content without its trailing newline.
pub fn read_secret(path: &Path) -> Result<Vec<u8>, NotifyError> {
    Ok(webhook::read_secret(path)?)
}

/// Posts the notification's JSON (`payload`, as stored in the outbox) to a webhook, signed.
pub async fn send_webhook(
    client: &reqwest::Client,
    hook: &WebhookConfig,
    payload: &str,
) -> Result<(), NotifyError> {
    webhook::post_signed(
        client,
        &hook.url,
        &hook.secret_file,
        payload.as_bytes().to_vec(),
        None,
    )
    .await?;
    Ok(())
}

/// One alert as Alertmanager's API v2 takes it: labels (with `alertname`, `customer`,
/// `severity`), annotations, `startsAt`, and `endsAt` once resolved (while firing it is left
/// out: Alertmanager then keeps it for its `resolve_timeout` after each post, so the engine
/// posts firing alerts again every cycle).
pub fn alertmanager_alert(n: &Notification) -> serde_json::Value {
    let mut labels = n.labels.clone();
    labels.insert("alertname".into(), n.rule.clone());
    labels.insert("customer".into(), n.customer.clone());
    labels.insert("severity".into(), n.severity.clone());
    let mut alert = serde_json::json!({
        "labels": labels,
        "annotations": {
            "summary": n.summary,
            "value": n.value.map_or("none".to_owned(), |v| format!("{v}")),
            "threshold": format!("{}", n.threshold),
            "evidence_url": n.evidence_url,
        },
        "startsAt": n.since,
        "generatorURL": n.evidence_url,
    });
    if n.state == "resolved" {
        alert["endsAt"] = serde_json::json!(n.at);
    }
    alert
}

/// Posts alerts to Alertmanager (`URL/api/v2/alerts`).
pub async fn send_alertmanager(
    client: &reqwest::Client,
    am: &AlertmanagerConfig,
    notifications: &[Notification],
) -> Result<(), NotifyError> {
    let alerts: Vec<serde_json::Value> = notifications.iter().map(alertmanager_alert).collect();
    let response = client
        .post(format!("{}/api/v2/alerts", am.url.trim_end_matches('/')))
        .json(&alerts)
        .send()
        .await
        .map_err(|e| NotifyError::Http(error_chain(&e)))?;
    Ok(status_ok(response.status())?)
}

/// The e-mail of a notification.
pub fn mail(list: &EmailChannel, n: &Notification) -> Mail {
    let value = n.value.map_or("none".to_owned(), |v| format!("{v:.2}"));
    Mail {
        to: list.to.clone(),
        subject: format!(
            "[voqa {}] {} {} ({})",
            n.severity,
            n.state.to_uppercase(),
            n.rule,
            n.customer
        ),
        body: format!(
            "{}\n\nrule: {} ({})\ncustomer: {}\nstate: {}\nvalue: {value} (threshold {})\nsince: {}\nat: {}\nevidence: {}\n",
            n.summary,
            n.rule,
            n.kind,
            n.customer,
            n.state,
            n.threshold,
            n.since,
            n.at,
            n.evidence_url
        ),
        attachment: None,
    }
}

/// Sends a notification to an e-mail list through the configured server.
pub async fn send_email(
    smtp_config: &SmtpConfig,
    list: &EmailChannel,
    n: &Notification,
) -> Result<(), NotifyError> {
    smtp::send(smtp_config, &mail(list, n)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn secrets_lose_their_newline_and_are_bounded() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("s");
        std::fs::write(&path, "Jefe\n").expect("write");
        assert_eq!(read_secret(&path).expect("secret"), b"Jefe");
        std::fs::write(&path, "\n").expect("write");
        assert!(read_secret(&path).is_err());
        std::fs::write(&path, vec![b'x'; 5000]).expect("write");
        assert!(read_secret(&path).is_err());
        assert!(read_secret(&dir.path().join("missing")).is_err());
    }

    fn notification(state: &str) -> Notification {
        Notification {
            rule: "acme-quality".into(),
            kind: "quality_drop".into(),
            customer: "acme".into(),
            state: state.into(),
            severity: "page".into(),
            labels: BTreeMap::from([
                ("customer".into(), "acme".into()),
                ("team".into(), "noc".into()),
            ]),
            value: Some(40.0),
            threshold: 20.0,
            since: "2026-12-07T02:00:00.000000Z".into(),
            at: "2026-12-07T02:10:00.000000Z".into(),
            summary: "4 of 10 calls below MOS 4".into(),
            evidence_url: "http://c/api/v1/customers/acme/sla?from=a&to=b".into(),
        }
    }

    #[test]
    fn alertmanager_alerts_carry_name_customer_severity_and_end_when_resolved() {
        let firing = alertmanager_alert(&notification("firing"));
        assert_eq!(firing["labels"]["alertname"], "acme-quality");
        assert_eq!(firing["labels"]["customer"], "acme");
        assert_eq!(firing["labels"]["severity"], "page");
        assert_eq!(firing["labels"]["team"], "noc");
        assert_eq!(firing["startsAt"], "2026-12-07T02:00:00.000000Z");
        assert!(firing.get("endsAt").is_none());
        let resolved = alertmanager_alert(&notification("resolved"));
        assert_eq!(resolved["endsAt"], "2026-12-07T02:10:00.000000Z");
    }

    #[test]
    fn the_mail_says_what_for_whom_and_where_the_evidence_is() {
        let list = EmailChannel {
            name: "oncall".into(),
            to: vec!["noc@example.net".into()],
        };
        let m = mail(&list, &notification("firing"));
        assert_eq!(m.subject, "[voqa page] FIRING acme-quality (acme)");
        assert!(m.body.contains("value: 40.00 (threshold 20)"), "{}", m.body);
        assert!(
            m.body
                .contains("evidence: http://c/api/v1/customers/acme/sla"),
            "{}",
            m.body
        );
        assert_eq!(m.to, ["noc@example.net"]);
    }
}
