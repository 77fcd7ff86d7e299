//! Alerting (issue 14): rules evaluated on a fixed cadence from the store's aggregates, their
//! states, and delivery. So far only the pure arithmetic is here: `burn` (error-budget burn
//! rates, the multiwindow method). Nothing in this folder may read a clock: the rule engine
//! passes evaluation time in, as the SLA engine does.

pub mod burn;
pub mod config;
