//! voqa-agent library: the measuring pipeline of the voqa passive VoIP monitor.
//!
//! Data flows through one folder per stage: `capture` (packet sources) → `decode` (typed
//! zero-copy views) → `streams` (flow table, SIP/SDP, detection) → `quality` (RFC 3550 counters,
//! jitter, jitter-buffer emulation, E-model) → `report` (JSON and table output). `analyze` drives
//! the offline pipeline over capture files.
//!
//! Invariants: only `capture` contains `unsafe`; `decode`, `streams` and `quality` never read
//! the wall clock (packet time is the only clock); the per-packet path does not allocate.

pub mod analyze;
pub mod capture;
pub mod decode;
pub mod host;
pub mod pipeline;
pub mod quality;
pub mod report;
pub mod service;
pub mod ship;
pub mod streams;
