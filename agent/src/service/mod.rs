//! The long-running agent (`voqa-agent run`) and `check-config`: the configuration file, the
//! threads (capture workers running `pipeline::Worker`, the sink thread, heartbeats, the local
//! Prometheus endpoint), signals and systemd notifications (`watchdog`). Wiring only: it measures nothing and touches no packet.

pub mod check;
pub mod config;
pub mod metrics;
pub mod run;
pub mod watchdog;
