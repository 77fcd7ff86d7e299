//! The long-running agent (`voqa-agent run`): configuration, capture workers, the report sink,
//! heartbeats, signals and the local Prometheus endpoint. It wires the pipeline stages
//! together; it measures nothing itself.

pub mod check;
pub mod config;
pub mod metrics;
pub mod run;
