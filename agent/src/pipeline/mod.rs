//! The pipeline that drives the analysis: one worker loop ([`worker::Worker`]) fed by any
//! [`source::Source`] — the AF_PACKET ring or a pnet channel (`live`), capture files at full
//! speed or paced (`file`) — with its output going to the sink thread as wire records
//! (`output`: live capture and `replay`) or collected in memory (`analyze`). Worker and output
//! counters live in `counters`, read by heartbeats and the metrics endpoint.
//!
//! The pipeline measures nothing itself (that is `streams`/`quality`) and knows nothing of
//! configuration files, signals or threads beyond the sink thread (that is `service`). Packet
//! time drives the analyzer; only live sources consult the wall clock, to map deadlines.

pub mod calljoin;
pub mod counters;
pub mod file;
pub mod live;
pub mod output;
pub mod replay;
pub mod source;
pub mod worker;

pub use counters::{PipelineStats, WorkerStats};
pub use file::{FileSource, InputFile, Pace};
pub use source::{Next, Source, SourceError, Wait};
pub use worker::{Output, Worker};
