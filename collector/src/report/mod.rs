//! Customer SLA reports (issue 11): one customer and period as a [`ReportDocument`] (the
//! SLA evaluation plus the series behind every chart), rendered as JSON, CSV, self-contained
//! HTML, or PDF (the HTML printed by headless Chromium).
//!
//! Stage after `sla`: `build` reads through `facts` (store → facts → sla → report); the
//! renderers take only the document and compute nothing, so every form shows the same numbers.
//! Must not fetch anything at render time, and must escape every text that comes from data.

pub mod build;
pub mod csv;
pub mod format;
pub mod html;
pub mod model;
pub mod pdf;
pub mod svg;

pub use model::*;
