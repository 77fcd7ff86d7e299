//! `replay`: capture files pushed through the live pipeline — the same analyzer settings,
//! interval reports on packet-time boundaries, final reports with their end reason, records
//! built by the same `report::live::stream_report` and handed to a [`ReportSink`] — with
//! heartbeats on packet time.
//!
//! Heartbeats: one at every multiple of the heartbeat interval of packet time that the capture
//! reaches, stamped with that boundary and carrying the host's sampled figures, except for
//! boundaries inside a silence (no frame at all) longer than 60 s: a capture with nothing in it
//! for that long is taken as an agent that was not capturing (that is how a demo capture shows
//! an agent outage). At the end every open stream is closed at the last packet time, never at
//! wall time, so replaying a file twice gives the same stream reports byte for byte.
//!
//! This module does not choose the sink (the caller passes it) and does not print.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::calljoin::{CallJoin, JoinSettings};
use super::counters::{PipelineStats, WorkerStats};
use super::file::{FileSource, Pace, open_files};
use super::output::{CallRecords, RecordContext, RecordOutput, spawn_sink};
use super::worker::Worker;
use crate::capture::CaptureError;
use crate::host::HostSampler;
use crate::ship::ReportSink;
use crate::streams::privacy::Pseudonymizer;
use crate::streams::{Analyzer, AnalyzerConfig};

/// Settings of a replay (the agent configuration's analysis, privacy and health sections).
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub agent_id: String,
    pub pace: Pace,
    /// As for `run`: interval reports on (`report_interval_ns`), idle timeout, flow table size.
    pub analyzer: AnalyzerConfig,
    pub privacy: Pseudonymizer,
    /// Packet time between heartbeats; 0 sends none.
    pub heartbeat_interval_ns: i64,
    /// Processes whose up/down state the heartbeats carry.
    pub watch_processes: Vec<String>,
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub frames: u64,
    /// Stream reports the sink accepted.
    pub reports: u64,
    /// Heartbeats the sink accepted.
    pub heartbeats: u64,
    /// Packet time of the first and last frame (`None` for a capture without frames).
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// An input could not be opened, or failed while it was read (it shrank, a read error).
    #[error("{}: {error}", path.display())]
    Open { path: PathBuf, error: CaptureError },
    #[error("cannot start the sink thread: {0}")]
    Thread(std::io::Error),
    #[error(
        "the sink refused {refused} record(s) ({reports} report(s) and {heartbeats} heartbeat(s) were accepted)"
    )]
    Refused {
        refused: u64,
        reports: u64,
        heartbeats: u64,
    },
    #[error("the sink could not flush: {0}")]
    Flush(std::io::Error),
    #[error("not delivered: {0}")]
    Undelivered(crate::ship::http::DrainError),
}

/// What a replay into a collector did: the replay, and the spool's counters once every record
/// was acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    pub summary: ReplaySummary,
    pub shipping: voqa_wire::ShippingCounters,
}

/// Replays `files` into a collector through `delivery` (its `sink` goes to the pipeline) and
/// returns once the collector has acknowledged every spooled record — also those a previous,
/// interrupted replay left in the same spool. Gives up when nothing was acknowledged for
/// `give_up_after`; the records then stay in the spool.
pub fn run_to_collector(
    files: &[PathBuf],
    opts: &ReplayOptions,
    sink: Box<dyn ReportSink>,
    delivery: &crate::ship::delivery::Delivery,
    give_up_after: Option<std::time::Duration>,
) -> Result<Delivered, ReplayError> {
    let summary = if files.is_empty() {
        // Nothing new to analyse: deliver what the spool holds.
        drop(sink);
        ReplaySummary::default()
    } else {
        run(files, opts, sink)?
    };
    delivery
        .drain(give_up_after)
        .map_err(ReplayError::Undelivered)?;
    Ok(Delivered {
        summary,
        shipping: delivery.counters(),
    })
}

/// Replays `files` in order as one capture into `sink`; returns once the sink has flushed
/// everything (a shipper's flush returns once the collector acknowledged it).
pub fn run(
    files: &[PathBuf],
    opts: &ReplayOptions,
    sink: Box<dyn ReportSink>,
) -> Result<ReplaySummary, ReplayError> {
    let inputs = open_files(files).map_err(|(path, error)| ReplayError::Open { path, error })?;
    let worker_stats = Arc::new(WorkerStats::new(""));
    let stats = Arc::new(PipelineStats::with_workers(vec![Arc::clone(&worker_stats)]));
    let ctx = RecordContext {
        agent_id: opts.agent_id.as_str().into(),
        privacy: opts.privacy.clone(),
        jitter_buffer: opts.analyzer.jitter_buffer.to_string().into(),
    };
    let calls = CallRecords {
        ctx: ctx.clone(),
        join: CallJoin::new(JoinSettings::for_analyzer(&opts.analyzer, 1)),
    };
    let (tx, sink_thread) =
        spawn_sink(sink, Arc::clone(&stats), calls).map_err(ReplayError::Thread)?;
    let mut out = RecordOutput::new(ctx, tx, Arc::clone(&stats))
        .with_sampler(HostSampler::new(opts.watch_processes.clone()))
        .with_label("replay".into());
    let mut worker = Worker::new(Analyzer::new(opts.analyzer.clone()))
        .with_stats(worker_stats)
        .with_packet_heartbeats(opts.heartbeat_interval_ns);
    let mut source = FileSource::new(&inputs, opts.pace, None);
    worker.run(&mut source, &mut out, &AtomicBool::new(false));
    let first_ns = source.first_ns();
    if let Some((path, error)) = source.take_error() {
        // Nothing more is sent: the reports already handed to the sink stay delivered.
        drop(out);
        let _ = sink_thread.join();
        return Err(ReplayError::Open { path, error });
    }
    let last = worker.analyzer().packet_time();
    let last_ns = (last != i64::MIN).then_some(last);
    worker.close(last_ns.unwrap_or(0), &mut out);
    let frames = worker.analyzer().counters().frames;
    // Dropping the last sender ends the sink thread after a final flush.
    drop(out);
    let end = sink_thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    let reports = PipelineStats::get(&stats.reports);
    let heartbeats = PipelineStats::get(&stats.heartbeats);
    let refused = PipelineStats::get(&stats.reports_dropped)
        + PipelineStats::get(&stats.heartbeats_dropped)
        + PipelineStats::get(&stats.calls_dropped);
    if refused > 0 {
        return Err(ReplayError::Refused {
            refused,
            reports,
            heartbeats,
        });
    }
    end.flush.map_err(ReplayError::Flush)?;
    Ok(ReplaySummary {
        frames,
        reports,
        heartbeats,
        first_ns,
        last_ns,
    })
}
