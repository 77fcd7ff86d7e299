//! STUB on branch h/rdata only: PDF printing by headless Chromium is written on branch
//! h/rhtml, whose file replaces this one at merge. Kept so the report command and route
//! compile against the agreed signature; must not be merged over rhtml's file.

/// How to print (rhtml defines the real options).
#[derive(Debug, Clone, Default)]
pub struct PdfOptions {}

/// Why a PDF could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("PDF output is not available in this build (the renderer is merged from h/rhtml)")]
    Unavailable,
}

/// Prints the HTML to PDF (rhtml's real implementation).
pub fn print(_html: &str, _options: &PdfOptions) -> Result<Vec<u8>, PdfError> {
    Err(PdfError::Unavailable)
}
