//! The output seam of live capture and replay: workers turn window reports, ended calls (and
//! replay's packet-time heartbeats) into `voqa_wire::AgentRecord`s and queue them, boxed, on a bounded
//! channel; one sink thread hands them to a [`ReportSink`] (JSON lines today, the spool-backed
//! shipper later) and counts what the sink accepted and refused.
//!
//! Workers only ever block on the channel, never on a disk or the network: the sink thread is
//! the only one that writes. No packet bytes reach this module, only finished reports.

use std::io;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use voqa_wire::{AgentRecord, Timestamp};

use super::counters::PipelineStats;
use super::source::SourceError;
use super::worker::Output;
use crate::calls::Call;
use crate::calls::record::call_record;
use crate::host::HostSampler;
use crate::report::live::{JitterHistogramEncoder, stream_report};
use crate::ship::ReportSink;
use crate::streams::privacy::Pseudonymizer;
use crate::streams::{Analyzer, WindowReport};

/// Records buffered between the workers and the sink. Boxed, so the channel's preallocated
/// slots cost 8 bytes each at idle.
pub const CHANNEL_CAPACITY: usize = 16_384;

/// The sending side workers and the heartbeat thread use.
pub type RecordSender = SyncSender<Box<AgentRecord>>;

/// Sink trouble, through the one logger (`voqa_service::log`).
fn log(msg: &str) {
    tracing::warn!("{msg}");
}

/// How the records of a worker are labelled.
#[derive(Debug, Clone)]
pub struct RecordContext {
    pub agent_id: Arc<str>,
    pub privacy: Pseudonymizer,
    /// The jitter-buffer model's name, as `totals.jitter_buffer` shows it.
    pub jitter_buffer: Arc<str>,
}

/// A worker's [`Output`] that queues wire records for the sink thread.
pub struct RecordOutput {
    ctx: RecordContext,
    histograms: JitterHistogramEncoder,
    tx: RecordSender,
    stats: Arc<PipelineStats>,
    /// Host figures for packet-time heartbeats (replay); live heartbeats come from their own
    /// wall-clock thread.
    sampler: Option<HostSampler>,
    /// Names the worker in error messages.
    label: String,
}

impl RecordOutput {
    pub fn new(ctx: RecordContext, tx: RecordSender, stats: Arc<PipelineStats>) -> Self {
        RecordOutput {
            ctx,
            histograms: JitterHistogramEncoder::new(),
            tx,
            stats,
            sampler: None,
            label: String::new(),
        }
    }

    /// Heartbeats from [`Output::heartbeat`] carry this sampler's host figures.
    pub fn with_sampler(mut self, sampler: HostSampler) -> Self {
        self.sampler = Some(sampler);
        self
    }

    pub fn with_label(mut self, label: String) -> Self {
        self.label = label;
        self
    }

    /// Queues a record; blocks while the channel is full (the ring absorbs the short wait at a
    /// boundary burst). Fails only when the sink thread is gone.
    fn queue(&self, record: AgentRecord) -> bool {
        self.tx.send(Box::new(record)).is_ok()
    }
}

impl Output for RecordOutput {
    fn reports(&mut self, reports: std::vec::IntoIter<WindowReport>) {
        for r in reports {
            let record = AgentRecord::Stream(stream_report(
                &self.ctx.agent_id,
                &r,
                &self.ctx.privacy,
                &self.ctx.jitter_buffer,
                &mut self.histograms,
            ));
            if !self.queue(record) {
                PipelineStats::add(&self.stats.reports_dropped, 1);
            }
        }
    }

    fn calls(&mut self, calls: std::vec::IntoIter<Call>) {
        for call in calls {
            let record =
                AgentRecord::Call(call_record(&self.ctx.agent_id, &call, &self.ctx.privacy));
            if !self.queue(record) {
                PipelineStats::add(&self.stats.calls_dropped, 1);
            }
        }
    }

    fn heartbeat(&mut self, at_ns: i64, analyzer: &Analyzer) {
        let Some(sampler) = self.sampler.as_mut() else {
            return;
        };
        let c = analyzer.counters();
        let worker = voqa_wire::WorkerCounters {
            worker: 0,
            frames: c.frames,
            ..voqa_wire::WorkerCounters::default()
        };
        let hb = sampler.sample(
            &self.ctx.agent_id,
            Timestamp::from_ns(at_ns),
            vec![worker],
            analyzer.active_streams() as u64,
            c.streams_evicted,
        );
        if !self.queue(AgentRecord::Heartbeat(hb)) {
            PipelineStats::add(&self.stats.heartbeats_dropped, 1);
        }
    }

    fn source_error(&mut self, error: &SourceError) {
        log(&format!("{}: {error}", self.label));
    }
}

/// What the sink thread did, returned when it ends.
#[derive(Debug)]
pub struct SinkEnd {
    /// Records the sink refused (`send` failed).
    pub refused: u64,
    /// The last flush: `Err` when the sink could not make everything durable.
    pub flush: io::Result<()>,
}

/// Starts the sink thread; it ends (with a final flush) once every sender is dropped.
pub fn spawn_sink(
    sink: Box<dyn ReportSink>,
    stats: Arc<PipelineStats>,
) -> io::Result<(RecordSender, JoinHandle<SinkEnd>)> {
    let (tx, rx) = sync_channel::<Box<AgentRecord>>(CHANNEL_CAPACITY);
    let handle = std::thread::Builder::new()
        .name("voqa-sink".into())
        .spawn(move || sink_loop(sink, &rx, &stats))?;
    Ok((tx, handle))
}

/// Hands one record to the sink and counts the outcome by record kind.
fn deliver(sink: &mut dyn ReportSink, record: &AgentRecord, stats: &PipelineStats) -> bool {
    let ok = sink.send(record).is_ok();
    let counter = match (record, ok) {
        (AgentRecord::Stream(_), true) => &stats.reports,
        (AgentRecord::Stream(_), false) => &stats.reports_dropped,
        (AgentRecord::Heartbeat(_), true) => &stats.heartbeats,
        (AgentRecord::Heartbeat(_), false) => &stats.heartbeats_dropped,
        (AgentRecord::Call(_), true) => &stats.calls,
        (AgentRecord::Call(_), false) => &stats.calls_dropped,
    };
    PipelineStats::add(counter, 1);
    ok
}

fn sink_loop(
    mut sink: Box<dyn ReportSink>,
    rx: &Receiver<Box<AgentRecord>>,
    stats: &PipelineStats,
) -> SinkEnd {
    let mut failing = false;
    let mut refused = 0u64;
    let mut note = |ok: bool, failing: &mut bool| {
        if !ok {
            refused += 1;
        }
        if ok == *failing {
            *failing = !ok;
            log(if *failing {
                "sink: write failed; reports are being lost (counted in voqa_reports_dropped_total)"
            } else {
                "sink: writing again"
            });
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(record) => {
                note(deliver(sink.as_mut(), &record, stats), &mut failing);
                // Drain what is queued, then flush, so reports are visible promptly.
                while let Ok(next) = rx.try_recv() {
                    note(deliver(sink.as_mut(), &next, stats), &mut failing);
                }
                if let Err(e) = sink.flush() {
                    log(&format!("sink: flush failed: {e}"));
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = sink.flush();
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    SinkEnd {
        refused,
        flush: sink.flush(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voqa_wire::Heartbeat;

    /// Refuses every other record.
    struct Flaky {
        n: u32,
        accepted: Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl ReportSink for Flaky {
        fn send(&mut self, record: &AgentRecord) -> io::Result<()> {
            self.n += 1;
            if self.n.is_multiple_of(2) {
                return Err(io::Error::other("disk full"));
            }
            if let AgentRecord::Heartbeat(h) = record
                && let Ok(mut a) = self.accepted.lock()
            {
                a.push(h.record_id());
            }
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn heartbeat(ns: i64) -> AgentRecord {
        AgentRecord::Heartbeat(Heartbeat {
            agent_id: "a".into(),
            agent_version: "0".into(),
            time: Timestamp::from_ns(ns),
            host_uptime_s: 1,
            cpu_pct: 0.0,
            agent_cpu_pct: 0.0,
            mem_total_bytes: 2,
            mem_used_bytes: 1,
            agent_rss_bytes: 1,
            load_avg: [0.0; 3],
            workers: vec![],
            streams_tracked: 0,
            streams_evicted: 0,
            processes: vec![],
            shipping: None,
        })
    }

    #[test]
    fn refused_records_are_counted_as_dropped_not_sent() {
        let stats = Arc::new(PipelineStats::default());
        let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Flaky {
            n: 0,
            accepted: Arc::clone(&accepted),
        };
        let (tx, handle) = spawn_sink(Box::new(sink), Arc::clone(&stats)).expect("thread");
        for i in 0..5 {
            tx.send(Box::new(heartbeat(i))).expect("queue");
        }
        drop(tx);
        let end = handle.join().expect("sink thread");
        assert_eq!(end.refused, 2);
        assert!(end.flush.is_ok());
        assert_eq!(PipelineStats::get(&stats.heartbeats), 3);
        assert_eq!(PipelineStats::get(&stats.heartbeats_dropped), 2);
        assert_eq!(accepted.lock().map(|a| a.len()).unwrap_or(0), 3);
    }
}
