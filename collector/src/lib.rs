//! voqa-collector: receives agent batches, stores them (SQLite or PostgreSQL), checks each
//! customer's commitments, and serves the ops API, customer SLA and Prometheus metrics.
//!
//! Stages: `api` (HTTP, auth, validation) → `store` (durable rows) → `facts` (a customer's
//! period read from the store) → `sla` (pure evaluation) → `report` (customer reports), sent
//! monthly by `report_send` through `deliver` (SMTP, signed webhook POSTs).
//! `serve` runs the API on a listener (TLS included) for the binary, the demo and the tests;
//! `alerts` evaluates alert rules from the store on a cadence and notifies webhooks,
//! Alertmanager and e-mail. Only `api`, `serve`, `alerts::notify`, `deliver` and the binary
//! touch the network; `sla` has no I/O and no clock.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod backup;
pub mod config;
pub mod deliver;
pub mod facts;
pub mod report;
pub mod report_send;
pub mod serve;
pub mod sla;
pub mod store;

/// Wall-clock now, ns since the epoch (the collector's only clock). Times are parsed and
/// printed only through `voqa_wire::Timestamp`.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
