//! Quality measurement of one RTP stream: sequence and loss accounting (RFC 3550 A.1/A.3),
//! interarrival jitter (A.8), jitter-buffer emulation, burst statistics, RTCP round trip and
//! the ITU-T G.107 E-model. Formulas follow `metrics-spec.md`.
//!
//! Pure and deterministic: every function takes capture timestamps as arguments and never
//! reads a clock; per-packet methods allocate nothing.

pub mod burst;
pub mod codec;
pub mod emodel;
pub mod jbuf;
pub mod jitter;
pub mod jitter_bins;
pub mod rtt;
pub mod seq;
pub mod stream;
