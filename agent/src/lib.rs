//! voqa-agent library: the measuring pipeline of the voqa passive VoIP monitor.
//!
//! Data flows through one folder per stage: `capture` (packet sources, the one `Frame` type) →
//! `decode` (typed zero-copy views) → `reassembly` (bounded, stateful: IP fragments, SIP over
//! TCP and WebSocket) → `streams` (flow table, SIP/SDP, detection, the sans-IO `Analyzer`) →
//! `quality` (RFC 3550 counters, jitter, jitter-buffer emulation, E-model) → `report` (JSON,
//! table and wire stream reports) → `pipeline` (the one worker loop: a source feeding an
//! analyzer, its reports going to an output) → `ship` (where records leave the agent).
//! `analyze` runs the pipeline over files offline, `service` wires it for `run`, and
//! `pipeline::replay` for `replay`. ARCHITECTURE.md at the repository root is the code map.
//!
//! Invariants: only `capture` contains `unsafe`; `decode`, `reassembly`, `streams`, `quality`
//! and `report` never read the wall clock (packet time is the only clock); the per-packet path
//! does not allocate or copy packet bytes (fragments are copied into bounded, pooled buffers).

pub mod analyze;
pub mod calls;
pub mod capture;
pub mod decode;
pub mod host;
pub mod pipeline;
pub mod quality;
pub mod reassembly;
pub mod report;
pub mod service;
pub mod ship;
pub mod streams;
