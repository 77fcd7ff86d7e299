//! The output seam of live capture and replay: workers turn window reports, ended calls (and
//! replay's packet-time heartbeats) into `voqa_wire::AgentRecord`s and queue them, boxed, on a bounded
//! channel; one sink thread hands them to a [`ReportSink`] (JSON lines today, the spool-backed
//! shipper later) and counts what the sink accepted and refused.
//!
//! Calls go through the call join (`calljoin`) on the sink thread: with several capture
//! workers, each worker also queues what it learns of calls' streams (a note per report window
//! of a stream with a Call-ID) and its packet-time watermark, and the join gives each call
//! record the streams other workers measured. With one worker calls pass straight through.
//!
//! Workers only ever block on the channel, never on a disk or the network: the sink thread is
//! the only one that writes. No packet bytes reach this module, only finished reports.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use voqa_wire::{AgentRecord, Timestamp};

use super::calljoin::{CallJoin, DONE, StreamNote};
use super::counters::PipelineStats;
use super::source::SourceError;
use super::worker::Output;
use crate::calls::record::call_record;
use crate::calls::{Call, StreamFacts};
use crate::host::HostSampler;
use crate::report::live::{JitterHistogramEncoder, stream_report};
use crate::ship::ReportSink;
use crate::streams::privacy::Pseudonymizer;
use crate::streams::{Analyzer, WindowReport};

/// Records buffered between the workers and the sink. Boxed, so the channel's preallocated
/// slots cost 8 bytes each at idle.
pub const CHANNEL_CAPACITY: usize = 16_384;

/// What workers and the heartbeat thread queue for the sink thread.
#[derive(Debug)]
pub enum Queued {
    /// A record for the sink as it is.
    Record(AgentRecord),
    /// A report of a stream that belongs to a call (several workers): the record, and what
    /// the call join needs of it.
    CallStream {
        record: AgentRecord,
        note: StreamNote,
    },
    /// A call the worker's dialog engine retired when the worker's packet time was `at_ns`.
    Call { worker: u32, at_ns: i64, call: Call },
    /// The worker has queued everything up to packet time `ns` ([`DONE`]: everything).
    Progress { worker: u32, ns: i64 },
}

/// The sending side workers and the heartbeat thread use.
pub type RecordSender = SyncSender<Box<Queued>>;

/// Packet time between two watermarks a worker queues (a call waits at most this much longer
/// for its release).
const PROGRESS_EVERY_NS: i64 = 250_000_000;

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
    /// The worker's index among the capture workers.
    worker: u32,
    /// Several workers: notes for the call join and watermarks are queued.
    join_notes: bool,
    /// Packet time of the last watermark queued.
    progress_ns: i64,
    done: bool,
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
            worker: 0,
            join_notes: false,
            progress_ns: i64::MIN,
            done: false,
        }
    }

    /// This output is worker `worker` of `workers` feeding one sink (and its call join).
    pub fn with_worker(mut self, worker: u32, workers: u32) -> Self {
        self.worker = worker;
        self.join_notes = workers > 1;
        self
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
        self.send(Queued::Record(record))
    }

    fn send(&self, item: Queued) -> bool {
        self.tx.send(Box::new(item)).is_ok()
    }
}

/// What the call join needs of a report of a stream with a Call-ID, from worker `worker`.
pub(crate) fn note_of(worker: u32, r: &WindowReport) -> Option<StreamNote> {
    let call_id = r.stream.call_id.as_ref()?;
    // A window without packets (a stream the BYE did not end here, waiting for its idle
    // timeout) is not one the owner of the call would have rated.
    let window = r
        .figures
        .mos
        .filter(|_| r.figures.packets > 0)
        .map(|mos| (mos, r.window_start_ns, r.window_end_ns));
    Some(StreamNote {
        worker,
        call_id: Arc::clone(call_id),
        stream: std::hash::BuildHasher::hash_one(
            &foldhash::fast::FixedState::with_seed(0),
            r.stream.key,
        ),
        window,
        facts: r.end.map(|_| Box::new(StreamFacts::of(&r.stream))),
    })
}

impl Drop for RecordOutput {
    /// A worker that ends without [`Output::done`] (it panicked) must not hold calls back.
    fn drop(&mut self) {
        self.done();
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
            let item = match self.join_notes.then(|| note_of(self.worker, &r)).flatten() {
                Some(note) => Queued::CallStream { record, note },
                None => Queued::Record(record),
            };
            if !self.send(item) {
                PipelineStats::add(&self.stats.reports_dropped, 1);
            }
        }
    }

    fn calls(&mut self, calls: std::vec::IntoIter<Call>, now_ns: i64) {
        for call in calls {
            let item = Queued::Call {
                worker: self.worker,
                at_ns: now_ns,
                call,
            };
            if !self.send(item) {
                PipelineStats::add(&self.stats.calls_dropped, 1);
            }
        }
    }

    fn progress(&mut self, packet_ns: i64) {
        if self.join_notes
            && !self.done
            && packet_ns >= self.progress_ns.saturating_add(PROGRESS_EVERY_NS)
        {
            self.progress_ns = packet_ns;
            let _ = self.send(Queued::Progress {
                worker: self.worker,
                ns: packet_ns,
            });
        }
    }

    fn done(&mut self) {
        if self.join_notes && !self.done {
            let _ = self.send(Queued::Progress {
                worker: self.worker,
                ns: DONE,
            });
        }
        self.done = true;
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

/// How the sink thread makes call records: the join of the workers' calls and streams, and
/// the labels of the records.
#[derive(Debug)]
pub struct CallRecords {
    pub ctx: RecordContext,
    pub join: CallJoin,
}

/// Starts the sink thread; it ends (with a final flush) once every sender is dropped.
pub fn spawn_sink(
    sink: Box<dyn ReportSink>,
    stats: Arc<PipelineStats>,
    calls: CallRecords,
) -> io::Result<(RecordSender, JoinHandle<SinkEnd>)> {
    let (tx, rx) = sync_channel::<Box<Queued>>(CHANNEL_CAPACITY);
    let handle = std::thread::Builder::new()
        .name("voqa-sink".into())
        .spawn(move || sink_loop(sink, &rx, &stats, calls))?;
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

/// Takes one queued item: records go to the sink, the rest to the join, whose released calls
/// go to the sink as records.
fn take(
    item: Queued,
    sink: &mut dyn ReportSink,
    stats: &PipelineStats,
    calls: &mut CallRecords,
    note: &mut impl FnMut(bool),
) {
    match item {
        Queued::Record(record) => note(deliver(sink, &record, stats)),
        Queued::CallStream { record, note: n } => {
            note(deliver(sink, &record, stats));
            calls.join.on_stream(n);
        }
        Queued::Call {
            worker,
            at_ns,
            call,
        } => calls.join.on_call(worker, at_ns, call),
        Queued::Progress { worker, ns } => calls.join.on_progress(worker, ns),
    }
    release(sink, stats, calls, note);
}

/// Records of the calls the join released.
fn release(
    sink: &mut dyn ReportSink,
    stats: &PipelineStats,
    calls: &mut CallRecords,
    note: &mut impl FnMut(bool),
) {
    for call in calls.join.take_released() {
        let record = AgentRecord::Call(call_record(&calls.ctx.agent_id, &call, &calls.ctx.privacy));
        note(deliver(sink, &record, stats));
    }
    let c = calls.join.counters();
    let store = |a: &std::sync::atomic::AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
    store(&stats.call_join_streams, c.streams_joined);
    store(&stats.call_join_timed_out, c.timed_out);
    store(&stats.call_join_evicted, c.evicted);
    store(&stats.call_join_unjoined, c.streams_unjoined);
    store(&stats.call_join_duplicates, c.duplicate_calls);
    store(&stats.call_join_held, calls.join.held() as u64);
}

fn sink_loop(
    mut sink: Box<dyn ReportSink>,
    rx: &Receiver<Box<Queued>>,
    stats: &PipelineStats,
    mut calls: CallRecords,
) -> SinkEnd {
    let mut failing = false;
    let mut refused = 0u64;
    let mut note = |ok: bool| {
        if !ok {
            refused += 1;
        }
        if ok == failing {
            failing = !ok;
            log(if failing {
                "sink: write failed; reports are being lost (counted in voqa_reports_dropped_total)"
            } else {
                "sink: writing again"
            });
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(item) => {
                take(*item, sink.as_mut(), stats, &mut calls, &mut note);
                // Drain what is queued, then flush, so reports are visible promptly.
                while let Ok(next) = rx.try_recv() {
                    take(*next, sink.as_mut(), stats, &mut calls, &mut note);
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
    // Every worker is gone: the calls still held go out with what arrived.
    calls.join.finish();
    release(sink.as_mut(), stats, &mut calls, &mut note);
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

    /// Collects call records.
    struct Calls(Arc<std::sync::Mutex<Vec<voqa_wire::CallRecord>>>);

    impl ReportSink for Calls {
        fn send(&mut self, record: &AgentRecord) -> io::Result<()> {
            if let AgentRecord::Call(c) = record
                && let Ok(mut calls) = self.0.lock()
            {
                calls.push(c.clone());
            }
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Two workers through the sink thread: worker 0 retires a call it has no stream of,
    /// worker 1 queued the final note of the call's stream; the record leaves only once worker
    /// 1's watermark passed the retirement by the interval (1 s), with the stream, and the join
    /// counters are published.
    #[test]
    fn the_sink_thread_joins_calls_of_two_workers() {
        use crate::calls::dialog::tests::{feed, request, response, sa, tracker};
        const S: i64 = 1_000_000_000;
        let mut t = tracker(2);
        feed(&mut t, 0, &request("INVITE", 1, false, "j@x"));
        feed(&mut t, S, &response("200 OK", 1, "INVITE", "j@x"));
        feed(&mut t, 9 * S, &request("BYE", 2, true, "j@x"));
        let call = t.get("j@x").expect("call").clone();
        let facts = StreamFacts {
            src: sa("192.0.2.10:4000"),
            dst: sa("192.0.2.20:6000"),
            ssrc: 7,
            first_ns: S,
            last_ns: 9 * S,
            packets: 400,
            codec: "PCMU".into(),
            mos: Some(4.1),
            video: false,
            longest_gap: None,
            ends_in_cn: false,
        };
        let stats = Arc::new(PipelineStats::default());
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, handle) = spawn_sink(
            Box::new(Calls(Arc::clone(&got))),
            Arc::clone(&stats),
            call_records(2),
        )
        .expect("thread");
        let send = |q: Queued| tx.send(Box::new(q)).expect("queue");
        send(Queued::Progress {
            worker: 1,
            ns: 40 * S,
        });
        send(Queued::CallStream {
            record: heartbeat(1),
            note: StreamNote {
                worker: 1,
                call_id: "j@x".into(),
                stream: 1,
                window: Some((4.0, 8 * S, 9 * S)),
                facts: Some(Box::new(facts.clone())),
            },
        });
        send(Queued::Call {
            worker: 0,
            at_ns: 41 * S,
            call,
        });
        send(Queued::Progress {
            worker: 1,
            ns: 41 * S,
        });
        // The sink thread takes items in order; a heartbeat marks that it got this far.
        let wait_for = |n: u64| {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while PipelineStats::get(&stats.heartbeats) < n {
                assert!(std::time::Instant::now() < deadline, "sink thread stuck");
                std::thread::yield_now();
            }
        };
        send(Queued::Record(heartbeat(2)));
        wait_for(2);
        assert!(got.lock().map(|g| g.is_empty()).unwrap_or(false), "held");
        assert_eq!(PipelineStats::get(&stats.call_join_held), 1);
        send(Queued::Progress {
            worker: 1,
            ns: 42 * S,
        });
        send(Queued::Record(heartbeat(3)));
        wait_for(3);
        let records = got.lock().map(|g| g.clone()).unwrap_or_default();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].call.call_id, "j@x");
        assert_eq!(records[0].call.media.len(), 1);
        assert_eq!(records[0].call.mos, Some(4.1));
        assert_eq!(PipelineStats::get(&stats.call_join_streams), 1);
        assert_eq!(PipelineStats::get(&stats.call_join_held), 0);
        assert_eq!(PipelineStats::get(&stats.calls), 1);
        drop(tx);
        handle.join().expect("sink thread");
    }

    pub(crate) fn call_records(workers: u32) -> CallRecords {
        let cfg = crate::streams::AnalyzerConfig {
            report_interval_ns: Some(1_000_000_000),
            ..crate::streams::AnalyzerConfig::default()
        };
        CallRecords {
            ctx: RecordContext {
                agent_id: "a".into(),
                privacy: Pseudonymizer::disabled(),
                jitter_buffer: "fixed".into(),
            },
            join: CallJoin::new(super::super::calljoin::JoinSettings::for_analyzer(
                &cfg, workers,
            )),
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
        let (tx, handle) =
            spawn_sink(Box::new(sink), Arc::clone(&stats), call_records(1)).expect("thread");
        for i in 0..5 {
            tx.send(Box::new(Queued::Record(heartbeat(i))))
                .expect("queue");
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
