//! STUB on branch h/rdata only: the HTML renderer is written on branch h/rhtml, whose file
//! replaces this one at merge. Kept so the report command and route compile against the
//! agreed signature; must not be merged over rhtml's file.

use super::model::ReportDocument;

/// Renders the document as one self-contained HTML page (rhtml's real implementation).
pub fn render(doc: &ReportDocument) -> String {
    let json = super::build::to_json(doc).unwrap_or_default();
    let text = String::from_utf8_lossy(&json)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"><title>report</title></head><body><pre>{text}</pre></body></html>"
    )
}
