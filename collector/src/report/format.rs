//! The report's output forms (html, csv, json, pdf) and their media types, shared by the
//! `report` command and the API route, so both produce the same bytes for the same request.
//!
//! Dispatch only: the document is built by `build`, rendered by `html`/`pdf`/`csv`; this
//! module must not compute figures of its own.

use super::build::{self, ReportError, ReportPeriodSpec};
use super::{ReportDocument, csv, html, pdf};
use crate::sla;
use crate::store::Store;

/// Strict Content-Security-Policy of the HTML report: nothing is fetched, nothing runs.
pub const HTML_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One output form of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Csv,
    Json,
    Pdf,
}

impl ReportFormat {
    pub fn parse(text: &str) -> Result<Self, ReportError> {
        match text {
            "html" => Ok(ReportFormat::Html),
            "csv" => Ok(ReportFormat::Csv),
            "json" => Ok(ReportFormat::Json),
            "pdf" => Ok(ReportFormat::Pdf),
            other => Err(ReportError::Format(other.to_owned())),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ReportFormat::Html => "text/html; charset=utf-8",
            ReportFormat::Csv => "text/csv; charset=utf-8; header=present",
            ReportFormat::Json => "application/json",
            ReportFormat::Pdf => "application/pdf",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Html => "html",
            ReportFormat::Csv => "csv",
            ReportFormat::Json => "json",
            ReportFormat::Pdf => "pdf",
        }
    }
}

/// The report in `format`, whole, in memory. (The command writes CSV through
/// `csv::write` straight to its output instead.)
pub async fn produce(
    store: &Store,
    customer: &sla::Customer,
    period: &ReportPeriodSpec,
    format: ReportFormat,
    now_ns: i64,
    collector_version: &str,
) -> Result<Vec<u8>, ReportError> {
    if format == ReportFormat::Csv {
        let mut out = Vec::new();
        csv::write(store, customer, period, now_ns, &mut out).await?;
        return Ok(out);
    }
    let document = build::build(store, customer, period, now_ns, collector_version).await?;
    render(&document, format).await
}

/// A built document in one of its whole-document forms (json, html, pdf); CSV is read from
/// the store call by call (`csv::write`) and is refused here.
pub async fn render(
    document: &ReportDocument,
    format: ReportFormat,
) -> Result<Vec<u8>, ReportError> {
    match format {
        ReportFormat::Csv => Err(ReportError::Format("csv (streamed, not rendered)".into())),
        ReportFormat::Json => build::to_json(document),
        ReportFormat::Html => Ok(html::render(document).into_bytes()),
        // Chromium runs for seconds: off the async workers.
        ReportFormat::Pdf => {
            let page = html::render(document);
            tokio::task::spawn_blocking(move || pdf::print(&page, &pdf::PdfOptions::default()))
                .await
                .map_err(|e| ReportError::Facts(e.into()))?
                .map_err(ReportError::Pdf)
        }
    }
}
