//! The one worker loop: it owns an [`Analyzer`], feeds it every frame a [`Source`] hands over,
//! advances it to the source's quiet times and to its own deadlines, and passes the reports it
//! produces to an [`Output`]. Live capture workers, `replay` and offline `analyze` (each of its
//! shards) all run this loop; only the source and the output differ.
//!
//! The loop never reads a clock: packet time comes from frames and from the source's quiet
//! advances, deadlines go to the source as packet time. It must not allocate or copy per
//! frame; the per-frame work is the analyzer's plus one comparison for packet-time heartbeats.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::counters::WorkerStats;
use super::source::{Next, Source, SourceError, Wait};
use crate::streams::{Analyzer, Counters, WindowReport};

/// Where a worker's results go.
pub trait Output {
    /// Reports the analyzer produced since the last call (often none).
    fn reports(&mut self, reports: std::vec::IntoIter<WindowReport>);

    /// Calls that ended and whose streams all closed since the last call (their records are
    /// due), retired by the time the worker's packet time was `now_ns`; live and replay only.
    fn calls(&mut self, calls: std::vec::IntoIter<crate::calls::Call>, now_ns: i64) {
        let _ = (calls, now_ns);
    }

    /// Everything up to packet time `packet_ns` has been passed on (after every pass of the
    /// loop: the call join's watermark).
    fn progress(&mut self, packet_ns: i64) {
        let _ = packet_ns;
    }

    /// The worker will pass on nothing more (after [`Worker::close`]).
    fn done(&mut self) {}

    /// A packet-time heartbeat boundary passed (only with [`Worker::with_packet_heartbeats`]).
    fn heartbeat(&mut self, at_ns: i64, analyzer: &Analyzer) {
        let _ = (at_ns, analyzer);
    }

    /// A file source finished one file: the analyzer's counters at that point.
    fn file_done(&mut self, counters: &Counters) {
        let _ = counters;
    }

    /// The source failed; the loop keeps reading.
    fn source_error(&mut self, error: &SourceError) {
        let _ = error;
    }
}

/// A capture with no frame at all for longer than this is an agent that was not capturing:
/// replay sends no heartbeat for the boundaries inside such a silence.
pub const HEARTBEAT_SILENCE_NS: i64 = 60_000_000_000;

/// Batches drained after the stop flag is seen, at most (a busy ring never runs dry).
const MAX_DRAIN_BATCHES: u32 = 4096;

/// Heartbeat boundaries on packet time (multiples of the period).
#[derive(Debug, Clone, Copy)]
struct PacketHeartbeats {
    period_ns: i64,
    /// Next boundary; `i64::MIN` before the first frame, `i64::MAX` when heartbeats are off
    /// (so the per-frame test never passes).
    due_ns: i64,
    /// Time of the latest frame (not of quiet advances: a silence is a gap between frames).
    last_frame_ns: i64,
}

impl PacketHeartbeats {
    const OFF: PacketHeartbeats = PacketHeartbeats {
        period_ns: 1,
        due_ns: i64::MAX,
        last_frame_ns: i64::MIN,
    };

    /// A frame at `ts_ns` reached `due_ns`: the boundaries to send, as (first, last, period),
    /// none for the first frame and for a gap longer than [`HEARTBEAT_SILENCE_NS`].
    fn cross(&mut self, previous_frame_ns: i64, ts_ns: i64) -> Option<(i64, i64)> {
        let period = self.period_ns;
        let next_due = ts_ns
            .div_euclid(period)
            .saturating_add(1)
            .saturating_mul(period);
        let first = std::mem::replace(&mut self.due_ns, next_due);
        if first == i64::MIN || previous_frame_ns == i64::MIN {
            return None;
        }
        if ts_ns.saturating_sub(previous_frame_ns) > HEARTBEAT_SILENCE_NS {
            return None;
        }
        Some((first, next_due - period))
    }
}

/// One worker: an analyzer and what it publishes.
#[derive(Debug)]
pub struct Worker {
    analyzer: Analyzer,
    stats: Option<Arc<WorkerStats>>,
    drops_seen: u64,
    heartbeats: PacketHeartbeats,
}

impl Worker {
    pub fn new(analyzer: Analyzer) -> Self {
        Worker {
            analyzer,
            stats: None,
            drops_seen: 0,
            heartbeats: PacketHeartbeats::OFF,
        }
    }

    /// Publishes frames, streams and kernel counters to `stats` after every batch.
    pub fn with_stats(mut self, stats: Arc<WorkerStats>) -> Self {
        self.stats = Some(stats);
        self
    }

    /// Calls [`Output::heartbeat`] at every multiple of `period_ns` of packet time that a frame
    /// reaches, except inside a silence longer than [`HEARTBEAT_SILENCE_NS`] (replay).
    pub fn with_packet_heartbeats(mut self, period_ns: i64) -> Self {
        if period_ns > 0 {
            self.heartbeats = PacketHeartbeats {
                period_ns,
                due_ns: i64::MIN,
                last_frame_ns: i64::MIN,
            };
        }
        self
    }

    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    pub fn into_analyzer(self) -> Analyzer {
        self.analyzer
    }

    /// Runs until the source ends or `stop` is set (then drains what the source already holds).
    /// Streams stay open: call [`Worker::close`] (live, replay) or finish the analyzer (offline).
    pub fn run<S: Source, O: Output>(&mut self, source: &mut S, out: &mut O, stop: &AtomicBool) {
        let mut drained = 0u32;
        loop {
            let stopping = stop.load(Ordering::Relaxed);
            let wait = if stopping {
                Wait::NoWait
            } else {
                self.analyzer
                    .next_deadline()
                    .map_or(Wait::Idle, Wait::Until)
            };
            let analyzer = &mut self.analyzer;
            let heartbeats = &mut self.heartbeats;
            let next = source.next(wait, |f| {
                analyzer.on_frame(f.ts_ns, f.linktype, f.data, f.wire_len);
                let previous = std::mem::replace(&mut heartbeats.last_frame_ns, f.ts_ns);
                if f.ts_ns >= heartbeats.due_ns
                    && let Some((first, last)) = heartbeats.cross(previous, f.ts_ns)
                {
                    // Reports of the boundary go out before the heartbeat stamped with it.
                    out.reports(analyzer.drain_reports());
                    out.calls(analyzer.drain_calls(), analyzer.packet_time());
                    let mut at = first;
                    while at <= last {
                        out.heartbeat(at, analyzer);
                        at = at.saturating_add(heartbeats.period_ns);
                    }
                }
            });
            let mut done = false;
            match next {
                Ok(Next::Frames) => {}
                Ok(Next::Quiet(t)) => {
                    self.analyzer.advance_to(t);
                    done = stopping;
                }
                Ok(Next::FileDone) => out.file_done(self.analyzer.counters()),
                Ok(Next::End) => done = true,
                Err(e) => {
                    out.source_error(&e);
                    done = stopping;
                }
            }
            if stopping {
                drained += 1;
            }
            let last = done || drained > MAX_DRAIN_BATCHES;
            // The last pass reads the kernel counters whatever their period, so the final
            // reports and the published totals (the last heartbeat) hold every drop.
            self.read_capture_counters(source, last);
            let now = self.analyzer.packet_time();
            out.reports(self.analyzer.drain_reports());
            out.calls(self.analyzer.drain_calls(), now);
            out.progress(now);
            if let Some(stats) = &self.stats {
                stats.publish(&self.analyzer);
                stats.pass();
            }
            if last {
                return;
            }
        }
    }

    /// Closes every open stream at `end_ns` (packet time), outputs the final reports and the
    /// records of every call, and tells the output it is done.
    pub fn close<O: Output>(&mut self, end_ns: i64, out: &mut O) {
        self.analyzer.close_all(end_ns);
        out.reports(self.analyzer.drain_reports());
        out.calls(
            self.analyzer.drain_calls(),
            self.analyzer.packet_time().max(end_ns),
        );
        out.done();
        if let Some(stats) = &self.stats {
            stats.publish(&self.analyzer);
        }
    }

    /// Kernel drops go to the analyzer (each open stream window carries those noted while it
    /// was open: `WindowReport::capture_drops`) and the kernel counters to the published stats.
    /// The counters are cumulative per socket, so only their growth is noted: a drop is noted
    /// once, by the one worker whose socket dropped it.
    fn read_capture_counters<S: Source>(&mut self, source: &mut S, now: bool) {
        let Some(k) = source.capture_counters(now) else {
            return;
        };
        if let Some(stats) = &self.stats {
            stats.publish_kernel(&k);
        }
        if k.drops > self.drops_seen {
            self.analyzer.note_capture_drops(k.drops - self.drops_seen);
            self.drops_seen = k.drops;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_on_boundaries_except_in_long_silences() {
        const S: i64 = 1_000_000_000;
        let mut h = PacketHeartbeats {
            period_ns: 15 * S,
            due_ns: i64::MIN,
            last_frame_ns: i64::MIN,
        };
        assert_eq!(
            h.cross(i64::MIN, 7 * S),
            None,
            "first frame only sets the clock"
        );
        assert_eq!(h.due_ns, 15 * S);
        assert_eq!(h.cross(14 * S, 15 * S), Some((15 * S, 15 * S)));
        assert_eq!(h.due_ns, 30 * S);
        // A 50 s gap (not a silence) crosses three boundaries.
        assert_eq!(h.cross(29 * S, 79 * S), Some((30 * S, 75 * S)));
        // A 61 s gap is a silence: its boundaries get no heartbeat.
        assert_eq!(h.cross(80 * S, 141 * S), None);
        assert_eq!(h.due_ns, 150 * S);
    }
}
