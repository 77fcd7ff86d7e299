//! Counters the pipeline publishes for heartbeats and the Prometheus endpoint: one
//! [`WorkerStats`] per worker (written by that worker alone) and the output counters of a run
//! ([`PipelineStats`], written by the sink thread and, for records that could not be queued, by
//! the workers).
//!
//! Only relaxed atomics: readers want recent figures, not a consistent snapshot. This module
//! must not know who reads the counters (metrics, heartbeats) nor how they are written out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::capture::afpacket::KernelCounters;
use crate::streams::Analyzer;

/// Counters one worker publishes (written by it alone).
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Interface the worker captures on (empty for file sources).
    pub interface: String,
    pub kernel_packets: AtomicU64,
    pub kernel_drops: AtomicU64,
    pub kernel_freezes: AtomicU64,
    pub frames: AtomicU64,
    pub streams_active: AtomicU64,
    pub streams_evicted: AtomicU64,
    /// IP fragment frames seen.
    pub ip_fragments: AtomicU64,
    /// Datagrams reassembled from fragments.
    pub ip_reassembled: AtomicU64,
    /// Datagrams whose fragments were refused (overlapping, inconsistent, too big) or dropped
    /// incomplete (evicted, timed out, capture ended).
    pub ip_reassembly_dropped: AtomicU64,
    /// SIP dialogs (INVITE calls) open in this worker's dialog engine.
    pub dialogs_open: AtomicU64,
    /// Open dialogs evicted because the dialog table was full.
    pub dialogs_evicted: AtomicU64,
    /// Dialogs ended by a timeout (setup without final response, or a call past the longest).
    pub dialogs_timed_out: AtomicU64,
    /// Retransmitted INVITEs, final responses, CANCELs and BYEs.
    pub sip_retransmissions: AtomicU64,
    /// Passes of the worker loop: it moves at least every quarter second while the worker is
    /// alive, traffic or not (what the systemd watchdog checks).
    pub loop_passes: AtomicU64,
}

impl WorkerStats {
    pub fn new(interface: impl Into<String>) -> Self {
        WorkerStats {
            interface: interface.into(),
            ..WorkerStats::default()
        }
    }

    /// Copies the analyzer's figures (after every batch: a few relaxed stores).
    pub fn publish(&self, analyzer: &Analyzer) {
        self.streams_active
            .store(analyzer.active_streams() as u64, Ordering::Relaxed);
        self.streams_evicted
            .store(analyzer.counters().streams_evicted, Ordering::Relaxed);
        self.frames
            .store(analyzer.counters().frames, Ordering::Relaxed);
        let c = analyzer.counters();
        let r = &c.ip_reassembly;
        self.ip_fragments
            .store(c.skipped.fragments, Ordering::Relaxed);
        self.ip_reassembled.store(r.reassembled, Ordering::Relaxed);
        let dropped =
            r.overlapping + r.inconsistent + r.too_big + r.evicted + r.timed_out + r.incomplete;
        self.ip_reassembly_dropped.store(dropped, Ordering::Relaxed);
        let calls = analyzer.calls();
        let d = calls.counters();
        self.dialogs_open
            .store(calls.open_calls() as u64, Ordering::Relaxed);
        self.dialogs_evicted.store(d.evicted, Ordering::Relaxed);
        self.dialogs_timed_out.store(d.timed_out, Ordering::Relaxed);
        self.sip_retransmissions
            .store(d.retransmissions, Ordering::Relaxed);
    }

    /// One more pass of the worker loop.
    pub fn pass(&self) {
        self.loop_passes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn publish_kernel(&self, k: &KernelCounters) {
        self.kernel_packets.store(k.packets, Ordering::Relaxed);
        self.kernel_drops.store(k.drops, Ordering::Relaxed);
        self.kernel_freezes.store(k.freezes, Ordering::Relaxed);
    }

    /// The heartbeat's view of this worker.
    pub fn wire(&self, worker: u32) -> voqa_wire::WorkerCounters {
        voqa_wire::WorkerCounters {
            worker,
            kernel_packets: self.kernel_packets.load(Ordering::Relaxed),
            kernel_drops: self.kernel_drops.load(Ordering::Relaxed),
            kernel_freezes: self.kernel_freezes.load(Ordering::Relaxed),
            frames: self.frames.load(Ordering::Relaxed),
        }
    }
}

/// Counters of one run of the pipeline (live `run` or `replay`).
#[derive(Debug, Default)]
pub struct PipelineStats {
    pub workers: Vec<Arc<WorkerStats>>,
    /// Stream reports the sink accepted.
    pub reports: AtomicU64,
    /// Stream reports the sink refused (its `send` failed) or that could not be queued to it.
    pub reports_dropped: AtomicU64,
    /// Heartbeats the sink accepted.
    pub heartbeats: AtomicU64,
    /// Heartbeats the sink refused or that could not be queued to it.
    pub heartbeats_dropped: AtomicU64,
    /// Call records the sink accepted.
    pub calls: AtomicU64,
    /// Call records the sink refused or that could not be queued to it.
    pub calls_dropped: AtomicU64,
    /// The call join (several workers; written by the sink thread): streams measured by
    /// another worker than the call's owner, added to its record.
    pub call_join_streams: AtomicU64,
    /// Calls released at the grace, not every worker caught up (their record may lack a stream).
    pub call_join_timed_out: AtomicU64,
    /// Calls released early because the join's table was full.
    pub call_join_evicted: AtomicU64,
    /// Streams with a Call-ID that joined no record (call never retired, table full, late).
    pub call_join_unjoined: AtomicU64,
    /// Calls retired by two workers (their SIP reached both): each released as made.
    pub call_join_duplicates: AtomicU64,
    /// Calls the join holds now (gauge).
    pub call_join_held: AtomicU64,
}

impl PipelineStats {
    pub fn with_workers(workers: Vec<Arc<WorkerStats>>) -> Self {
        PipelineStats {
            workers,
            ..PipelineStats::default()
        }
    }

    /// Per-worker counters for a heartbeat.
    pub fn worker_counters(&self) -> Vec<voqa_wire::WorkerCounters> {
        self.workers
            .iter()
            .enumerate()
            .map(|(i, w)| w.wire(i as u32))
            .collect()
    }

    /// Streams tracked and evicted over all workers.
    pub fn streams(&self) -> (u64, u64) {
        self.workers.iter().fold((0, 0), |(t, e), w| {
            (
                t + w.streams_active.load(Ordering::Relaxed),
                e + w.streams_evicted.load(Ordering::Relaxed),
            )
        })
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
