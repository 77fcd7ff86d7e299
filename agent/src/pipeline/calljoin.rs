//! The call join of live capture with several workers: it gives each call record the streams
//! that other workers measured.
//!
//! The kernel fans packets out to the capture workers by flow, so the SIP of a call reaches
//! one worker (the call's *owner*, whose dialog engine makes the record) while its media may
//! reach others; those only know the Call-ID of their streams, from the shared SDP registry.
//! Every worker therefore hands the join what it learns of a call's streams (each report window
//! of a stream with a Call-ID: its MOS; the final one: the stream's facts), the calls its dialog
//! engine retires, and its packet-time watermark. The join holds a retired call until every
//! other worker has passed the call's retirement by a report interval (so each stream that
//! started before it has reported) and none of the call's streams is open in another worker,
//! then adds the other workers' closed streams and worst windows, judges the media problems
//! again from all streams, and releases it. The owner's own streams are already in the call.
//!
//! Sans-IO and packet time only: it keeps no clock, no thread, no channel (the sink thread
//! drives it, `output.rs`). Bounded: at most `max_calls` held calls and `max_call_ids` Call-IDs
//! with stream facts, the oldest released or dropped first and counted; a call waits at most
//! `grace_ns` of packet time (of the most advanced running worker) beyond its retirement, for
//! a worker that stalls or a stream that never ends. Nothing is lost at shutdown: once every
//! worker said it is done ([`CallJoin::on_progress`] with [`DONE`]), every held call is
//! released. It must not see packets, read a clock or block.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::calls::dialog::MAX_STREAMS_PER_CALL;
use crate::calls::{Call, MediaThresholds, StreamFacts, media};

/// The watermark of a worker that will send nothing more.
pub const DONE: i64 = i64::MAX;

/// What a worker tells the join about one report window of a stream that belongs to a call.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamNote {
    pub worker: u32,
    pub call_id: Arc<str>,
    /// Identity of the stream within its worker (a hash of its 5-tuple and SSRC).
    pub stream: u64,
    /// The window's MOS with its start and end (packet time), when it had packets and a MOS.
    pub window: Option<(f64, i64, i64)>,
    /// Set on the stream's final report: what the call needs of it (boxed: most notes are
    /// interval windows without it).
    pub facts: Option<Box<StreamFacts>>,
}

/// Bounds and timing of the join.
#[derive(Debug, Clone)]
pub struct JoinSettings {
    /// Capture workers feeding the join (1: calls pass straight through).
    pub workers: u32,
    /// The report interval: a stream reports at the latest one interval after it started.
    pub interval_ns: i64,
    /// Longest wait of a retired call beyond its retirement (packet time).
    pub grace_ns: i64,
    /// How long stream facts wait for their call after their last note (packet time).
    pub retention_ns: i64,
    pub max_calls: usize,
    pub max_call_ids: usize,
    pub thresholds: MediaThresholds,
}

impl JoinSettings {
    /// The join for `workers` workers running analyzers configured as `cfg`: a call waits at
    /// most twice an idle timeout plus report interval for the other workers (a stream of the
    /// call that another worker measured ends by its idle timeout, as that worker never sees
    /// the BYE), facts wait for their call as long as a call may last; tables as large as the
    /// streams the workers may track together.
    pub fn for_analyzer(cfg: &crate::streams::AnalyzerConfig, workers: u32) -> Self {
        let interval_ns = cfg.report_interval_ns.unwrap_or(0).max(0);
        let grace_ns = cfg
            .idle_timeout_ns
            .saturating_add(interval_ns)
            .saturating_mul(2);
        let cap = cfg
            .max_streams
            .saturating_mul(workers.max(1) as usize)
            .clamp(1024, 1 << 20);
        JoinSettings {
            workers: workers.max(1),
            interval_ns,
            grace_ns,
            retention_ns: cfg
                .calls
                .dialog
                .max_call_ns
                .saturating_add(cfg.calls.dialog.linger_ns)
                .saturating_add(grace_ns),
            max_calls: cap,
            max_call_ids: cap,
            thresholds: cfg.calls.media,
        }
    }
}

/// What the join did (cumulative), for the metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinCounters {
    /// Streams measured by another worker than the call's owner, added to its record.
    pub streams_joined: u64,
    /// Calls released at the grace without every worker having caught up or with a stream of
    /// theirs still open (their records may lack a stream).
    pub timed_out: u64,
    /// Calls released early because `max_calls` calls were held.
    pub evicted: u64,
    /// Streams whose call never came (within the retention, or pushed out of a full table), or
    /// that came after their call was released, or beyond a call's stream limit.
    pub streams_unjoined: u64,
    /// A second retired call with the Call-ID of one already held (its SIP reached two
    /// workers): released as its owner made it.
    pub duplicate_calls: u64,
}

/// One stream of a Call-ID as a worker reported it.
#[derive(Debug)]
struct StreamEntry {
    worker: u32,
    stream: u64,
    worst: Option<(f64, i64, i64)>,
    /// `None` while the stream is open.
    facts: Option<Box<StreamFacts>>,
}

/// The streams of one Call-ID (from every worker, the owner's included: the owner is not
/// known until its call is retired).
#[derive(Debug)]
struct Media {
    streams: Vec<StreamEntry>,
    /// Order of creation (eviction, oldest first).
    seq: u64,
    /// Packet time of the latest note (expiry).
    last_ns: i64,
}

#[derive(Debug)]
struct Held {
    call: Call,
    owner: u32,
    retired_ns: i64,
    seq: u64,
}

/// Streams kept per Call-ID: every worker's, up to this many (the call keeps at most
/// [`MAX_STREAMS_PER_CALL`] of them).
const MAX_ENTRIES_PER_CALL_ID: usize = 4 * MAX_STREAMS_PER_CALL;

/// Expired facts are looked for at most this often (packet time): a scan of the table.
const EXPIRY_EVERY_NS: i64 = 10_000_000_000;

/// The join (see the module documentation).
#[derive(Debug)]
pub struct CallJoin {
    s: JoinSettings,
    watermarks: Vec<i64>,
    media: HashMap<Arc<str>, Media>,
    media_order: VecDeque<(u64, Arc<str>)>,
    held: HashMap<Arc<str>, Held>,
    held_order: VecDeque<(u64, Arc<str>)>,
    next_seq: u64,
    next_expiry_ns: i64,
    released: Vec<Call>,
    counters: JoinCounters,
}

/// `a` is a worse window than `b`: a lower MOS, or the same MOS earlier (as one worker keeps
/// the first of equal windows it meets, in boundary order).
fn worse(a: (f64, i64, i64), b: (f64, i64, i64)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && (a.2, a.1) < (b.2, b.1))
}

fn keep_worst(slot: &mut Option<(f64, i64, i64)>, w: (f64, i64, i64)) {
    if slot.is_none_or(|cur| worse(w, cur)) {
        *slot = Some(w);
    }
}

impl CallJoin {
    pub fn new(s: JoinSettings) -> Self {
        let workers = s.workers.max(1) as usize;
        CallJoin {
            s,
            watermarks: vec![i64::MIN; workers],
            media: HashMap::new(),
            media_order: VecDeque::new(),
            held: HashMap::new(),
            held_order: VecDeque::new(),
            next_seq: 0,
            next_expiry_ns: i64::MIN,
            released: Vec::new(),
            counters: JoinCounters::default(),
        }
    }

    pub fn counters(&self) -> JoinCounters {
        self.counters
    }

    /// Calls held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Call-IDs with stream facts waiting now.
    pub fn call_ids(&self) -> usize {
        self.media.len()
    }

    /// Calls released since the last call (their records are due), in release order.
    pub fn take_released(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.released)
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// A report window of a stream of a call, from `note.worker`.
    pub fn on_stream(&mut self, note: StreamNote) {
        if self.s.workers <= 1 {
            return;
        }
        let StreamNote {
            worker,
            call_id,
            stream,
            window,
            facts,
        } = note;
        // The note's packet time: its window's end, else its worker's watermark.
        let now = window
            .map(|w| w.2)
            .or(facts.as_ref().map(|f| f.last_ns))
            .unwrap_or(i64::MIN)
            .max(self.watermarks.get(worker as usize).copied().unwrap_or(0));
        if !self.media.contains_key(&call_id) {
            if self.media.len() >= self.s.max_call_ids.max(1) {
                self.evict_media();
            }
            let seq = self.seq();
            self.media_order.push_back((seq, Arc::clone(&call_id)));
            self.media.insert(
                Arc::clone(&call_id),
                Media {
                    // A call's two directions, the common case (growth would reserve four).
                    streams: Vec::with_capacity(2),
                    seq,
                    last_ns: now,
                },
            );
            self.compact_orders();
        }
        let Some(m) = self.media.get_mut(&call_id) else {
            return;
        };
        m.last_ns = m.last_ns.max(now);
        // The open entry of this stream, else a new one (a stream that restarted after its
        // final report is a new stream).
        let at = m
            .streams
            .iter()
            .position(|e| e.worker == worker && e.stream == stream && e.facts.is_none());
        let at = match at {
            Some(at) => at,
            None if m.streams.len() < MAX_ENTRIES_PER_CALL_ID => {
                m.streams.push(StreamEntry {
                    worker,
                    stream,
                    worst: None,
                    facts: None,
                });
                m.streams.len() - 1
            }
            None => {
                if facts.is_some() {
                    self.counters.streams_unjoined += 1;
                }
                return;
            }
        };
        let Some(e) = m.streams.get_mut(at) else {
            return;
        };
        if let Some(w) = window {
            keep_worst(&mut e.worst, w);
        }
        let closed = facts.is_some();
        if closed {
            e.facts = facts;
        }
        if closed && self.held.contains_key(&call_id) {
            self.try_release(&call_id);
        }
    }

    /// A call retired by `worker`'s dialog engine when that worker's packet time was
    /// `retired_ns`: held until complete (at once with one worker).
    pub fn on_call(&mut self, worker: u32, retired_ns: i64, call: Call) {
        if self.s.workers <= 1 {
            self.released.push(call);
            return;
        }
        if self.held.contains_key(&call.call_id) {
            self.counters.duplicate_calls += 1;
            self.released.push(call);
            return;
        }
        if self.held.len() >= self.s.max_calls.max(1)
            && let Some(oldest) = self.oldest_held()
        {
            self.counters.evicted += 1;
            self.release(&oldest);
        }
        let id = Arc::clone(&call.call_id);
        let seq = self.seq();
        self.held_order.push_back((seq, Arc::clone(&id)));
        self.held.insert(
            Arc::clone(&id),
            Held {
                call,
                owner: worker,
                retired_ns,
                seq,
            },
        );
        self.compact_orders();
        self.try_release(&id);
    }

    /// `worker` has handed over everything up to packet time `ns` ([`DONE`]: everything).
    pub fn on_progress(&mut self, worker: u32, ns: i64) {
        let Some(w) = self.watermarks.get_mut(worker as usize) else {
            return;
        };
        if ns <= *w {
            return;
        }
        *w = ns;
        if self.s.workers <= 1 {
            return;
        }
        for id in self.held_in_order() {
            self.try_release(&id);
        }
        self.expire();
    }

    /// Every worker is done (or gone): every held call is released with what arrived.
    pub fn finish(&mut self) {
        for w in &mut self.watermarks {
            *w = DONE;
        }
        for id in self.held_in_order() {
            self.release(&id);
        }
        let left: u64 = self
            .media
            .values()
            .map(|m| m.streams.iter().filter(|e| e.facts.is_some()).count() as u64)
            .sum();
        self.counters.streams_unjoined += left;
        self.media.clear();
        self.media_order.clear();
    }

    /// The held calls in retirement order, so that records leave as their calls were retired.
    fn held_in_order(&self) -> Vec<Arc<str>> {
        let mut ids: Vec<(u64, Arc<str>)> = self
            .held
            .iter()
            .map(|(id, h)| (h.seq, Arc::clone(id)))
            .collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// The packet time of the most advanced worker still running (`None`: all are done).
    fn running_front(&self) -> Option<i64> {
        self.watermarks.iter().copied().filter(|w| *w != DONE).max()
    }

    fn try_release(&mut self, id: &Arc<str>) {
        let Some(h) = self.held.get(id) else {
            return;
        };
        let (owner, retired) = (h.owner, h.retired_ns);
        let caught_up = {
            let need = retired.saturating_add(self.s.interval_ns);
            self.watermarks
                .iter()
                .enumerate()
                .all(|(v, &wm)| v as u32 == owner || wm >= need)
        };
        let open_elsewhere = self.media.get(id).is_some_and(|m| {
            m.streams
                .iter()
                .any(|e| e.worker != owner && e.facts.is_none())
        });
        let complete = caught_up && !open_elsewhere;
        let front = self.running_front();
        let all_done = front.is_none();
        let late = front.is_some_and(|f| f >= retired.saturating_add(self.s.grace_ns));
        if complete || all_done {
            self.release(id);
        } else if late {
            self.counters.timed_out += 1;
            self.release(id);
        }
    }

    /// Releases a held call with the other workers' streams of its Call-ID.
    fn release(&mut self, id: &Arc<str>) {
        let Some(Held {
            mut call,
            owner,
            retired_ns,
            ..
        }) = self.held.remove(id)
        else {
            return;
        };
        if let Some(m) = self.media.remove(id) {
            let mut added = false;
            for e in m.streams.into_iter().filter(|e| e.worker != owner) {
                if let Some(w) = e.worst {
                    keep_worst(&mut call.worst_window, w);
                }
                let Some(facts) = e.facts else {
                    continue;
                };
                if call.streams.len() < MAX_STREAMS_PER_CALL {
                    call.streams.push(*facts);
                    self.counters.streams_joined += 1;
                    added = true;
                } else {
                    self.counters.streams_unjoined += 1;
                }
            }
            if added {
                // In stream order, as the worker sorts its own (and `analyze` lists them);
                // judged again from all of the call's streams.
                call.streams
                    .sort_by_key(|s| (s.first_ns, s.src, s.dst, s.ssrc));
                let end = call.end_ns().unwrap_or(retired_ns);
                call.problems = media::problems(&call, &call.streams, &self.s.thresholds, end);
            }
        }
        self.released.push(call);
    }

    fn oldest_held(&mut self) -> Option<Arc<str>> {
        while let Some((seq, id)) = self.held_order.pop_front() {
            if self.held.get(&id).is_some_and(|h| h.seq == seq) {
                return Some(id);
            }
        }
        None
    }

    fn evict_media(&mut self) {
        while let Some((seq, id)) = self.media_order.pop_front() {
            if self.media.get(&id).is_some_and(|m| m.seq == seq) {
                if let Some(m) = self.media.remove(&id) {
                    self.counters.streams_unjoined += m.streams.len() as u64;
                }
                return;
            }
        }
    }

    /// Drops order entries of released calls and removed facts once they outnumber the live
    /// ones, so the queues stay within twice the tables.
    fn compact_orders(&mut self) {
        if self.held_order.len() > 2 * self.held.len() + 64 {
            let held = &self.held;
            self.held_order
                .retain(|(seq, id)| held.get(id).is_some_and(|h| h.seq == *seq));
        }
        if self.media_order.len() > 2 * self.media.len() + 64 {
            let media = &self.media;
            self.media_order
                .retain(|(seq, id)| media.get(id).is_some_and(|m| m.seq == *seq));
        }
    }

    /// Facts whose call did not come within the retention are dropped (counted).
    fn expire(&mut self) {
        let Some(front) = self.running_front() else {
            return;
        };
        if front < self.next_expiry_ns {
            return;
        }
        self.next_expiry_ns = front.saturating_add(EXPIRY_EVERY_NS);
        let before = front.saturating_sub(self.s.retention_ns);
        let held = &self.held;
        let mut dropped = 0u64;
        self.media.retain(|id, m| {
            let keep = m.last_ns >= before || held.contains_key(id);
            if !keep {
                dropped += m.streams.len() as u64;
            }
            keep
        });
        self.counters.streams_unjoined += dropped;
        self.compact_orders();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::Party;
    use crate::calls::media::{Problem, ProblemKind};

    const S: i64 = 1_000_000_000;
    const ALICE: &str = "192.0.2.10:4000";
    const BOB: &str = "192.0.2.20:6000";

    /// A call answered at 1 s between alice (192.0.2.10:4000) and bob (192.0.2.20:6000), ended
    /// by alice's BYE at `bye` s, as its owner retires it (no streams of its own).
    fn call(id: &str, bye: i64) -> Call {
        crate::calls::media::tests::answered_call(id, bye)
    }

    fn facts(src: &str, dst: &str, ssrc: u32, first: i64, last: i64, mos: f64) -> StreamFacts {
        StreamFacts {
            mos: Some(mos),
            ..crate::calls::media::tests::stream(src, dst, ssrc, first, last, false)
        }
    }

    fn note(
        worker: u32,
        id: &str,
        stream: u64,
        window: (f64, i64, i64),
        facts: Option<StreamFacts>,
    ) -> StreamNote {
        StreamNote {
            worker,
            call_id: id.into(),
            stream,
            window: Some(window),
            facts: facts.map(Box::new),
        }
    }

    fn settings(workers: u32) -> JoinSettings {
        JoinSettings {
            workers,
            interval_ns: S,
            grace_ns: 60 * S,
            retention_ns: 600 * S,
            max_calls: 4,
            max_call_ids: 4,
            thresholds: MediaThresholds::default(),
        }
    }

    #[test]
    fn one_worker_passes_calls_through_at_once() {
        let mut j = CallJoin::new(settings(1));
        let c = call("a@x", 20);
        j.on_call(0, 52 * S, c.clone());
        assert_eq!(j.take_released(), vec![c]);
        assert_eq!(j.held(), 0);
    }

    /// The owner (worker 0) saw the SIP and no media; worker 1 measured alice's stream (closed
    /// at its idle timeout, before the owner retired the call) and bob's (still open when the
    /// call is retired). The record waits for worker 1 to pass the retirement by an interval
    /// and for bob's stream to close, then holds both streams, the worst window over both and
    /// no problem (both directions flowed).
    #[test]
    fn a_call_waits_for_the_other_workers_watermark_and_open_streams() {
        let mut j = CallJoin::new(settings(2));
        let id = "split@x";
        j.on_progress(0, 10 * S);
        j.on_progress(1, 10 * S);
        // Alice's stream: windows of MOS 4.1 and 3.9 (the worst: 5 s to 6 s), then its end.
        j.on_stream(note(1, id, 7, (4.1, S, 2 * S), None));
        j.on_stream(note(1, id, 7, (3.9, 5 * S, 6 * S), None));
        let alice = facts(ALICE, BOB, 1, S, 20 * S, 4.0);
        j.on_stream(note(1, id, 7, (4.2, 19 * S, 20 * S), Some(alice.clone())));
        // Bob's stream is open; one window of MOS 3.9 later than alice's worst (a tie: the
        // earlier one stays the call's worst).
        j.on_stream(note(1, id, 8, (3.9, 7 * S, 8 * S), None));
        j.on_call(0, 52 * S, call(id, 20));
        assert!(j.take_released().is_empty(), "worker 1 is behind");
        j.on_progress(1, 52 * S);
        assert!(
            j.take_released().is_empty(),
            "one interval past the retirement is needed"
        );
        j.on_progress(1, 53 * S);
        assert!(j.take_released().is_empty(), "bob's stream is still open");
        let bob = facts(BOB, ALICE, 2, S + S / 2, 20 * S, 4.3);
        j.on_stream(note(1, id, 8, (4.4, 52 * S, 53 * S), Some(bob.clone())));
        let out = j.take_released();
        assert_eq!(out.len(), 1);
        let c = &out[0];
        assert_eq!(c.streams, vec![alice, bob]);
        assert_eq!(c.worst_window, Some((3.9, 5 * S, 6 * S)));
        assert_eq!(c.problems, vec![]);
        assert_eq!(j.counters().streams_joined, 2);
        assert_eq!((j.held(), j.call_ids()), (0, 0));
    }

    /// The owner measured alice's stream itself (it is in the call); worker 1 measured bob's,
    /// which stopped at 8 s of a call that lasted to 20 s: the joined record has both streams
    /// and the rtp_stopped problem that only both together show. The owner's own notes for
    /// alice's stream are not added twice.
    #[test]
    fn problems_are_judged_again_from_all_streams() {
        let mut j = CallJoin::new(settings(2));
        let id = "stop@x";
        let alice = facts(ALICE, BOB, 1, S, 20 * S, 4.2);
        let mut c = call(id, 20);
        c.streams.push(alice.clone());
        c.worst_window = Some((4.2, 10 * S, 11 * S));
        j.on_stream(note(0, id, 1, (4.2, 10 * S, 11 * S), Some(alice.clone())));
        let bob = facts(BOB, ALICE, 2, S, 8 * S, 4.3);
        j.on_stream(note(1, id, 2, (4.3, 2 * S, 3 * S), Some(bob.clone())));
        j.on_progress(1, 60 * S);
        j.on_call(0, 52 * S, c);
        let out = j.take_released();
        assert_eq!(
            out.len(),
            1,
            "worker 1 is past the retirement: released at once"
        );
        assert_eq!(out[0].streams, vec![alice, bob]);
        assert_eq!(out[0].worst_window, Some((4.2, 10 * S, 11 * S)));
        assert_eq!(
            out[0].problems,
            vec![Problem {
                kind: ProblemKind::RtpStopped,
                sender: Party::Callee,
                start_ns: 8 * S
            }]
        );
        assert_eq!(j.counters().streams_joined, 1);
    }

    /// A worker that never moves again (stalled) holds a call only for the grace, measured on
    /// the most advanced running worker; the late release is counted, and a note that comes
    /// after the release waits for a call that never comes, until the retention drops it.
    #[test]
    fn a_stalled_worker_holds_a_call_only_for_the_grace() {
        let mut j = CallJoin::new(settings(3));
        let id = "stall@x";
        j.on_progress(2, 40 * S);
        j.on_call(0, 52 * S, call(id, 20));
        j.on_progress(0, 60 * S);
        j.on_progress(1, 100 * S);
        assert!(j.take_released().is_empty(), "worker 2 is behind");
        j.on_progress(1, 112 * S);
        let out = j.take_released();
        assert_eq!(out.len(), 1, "52 s + 60 s of grace");
        assert!(out[0].streams.is_empty());
        assert_eq!(j.counters().timed_out, 1);
        j.on_stream(note(
            2,
            id,
            9,
            (4.0, 45 * S, 46 * S),
            Some(facts(ALICE, BOB, 1, S, 20 * S, 4.0)),
        ));
        assert_eq!(j.call_ids(), 1);
        j.on_progress(1, 40 * S + 600 * S);
        assert_eq!(
            j.call_ids(),
            1,
            "within the retention of its note (its window ended at 46 s)"
        );
        j.on_progress(1, 40 * S + 611 * S);
        assert_eq!(j.call_ids(), 0);
        assert_eq!(j.counters().streams_unjoined, 1);
    }

    /// Full tables: the oldest held call is released early, the oldest Call-ID's facts dropped;
    /// both counted.
    #[test]
    fn full_tables_release_and_drop_the_oldest_counted() {
        let mut j = CallJoin::new(settings(2));
        for i in 0..5 {
            j.on_call(0, 52 * S, call(&format!("c{i}@x"), 20));
        }
        let out = j.take_released();
        assert_eq!(out.len(), 1);
        assert_eq!(&*out[0].call_id, "c0@x");
        assert_eq!((j.held(), j.counters().evicted), (4, 1));
        for i in 0..5 {
            j.on_stream(note(1, &format!("m{i}@x"), 1, (4.0, S, 2 * S), None));
        }
        assert_eq!(j.call_ids(), 4);
        assert_eq!(j.counters().streams_unjoined, 1);
        // m0's stream closing now is a new Call-ID again (its facts were dropped).
        j.on_stream(note(
            1,
            "m0@x",
            1,
            (4.0, S, 2 * S),
            Some(facts(ALICE, BOB, 1, S, 2 * S, 4.0)),
        ));
        assert_eq!(j.call_ids(), 4);
        assert_eq!(j.counters().streams_unjoined, 2, "m1 made room");
    }

    /// Shutdown: workers close their streams (final notes), retire their calls and say they
    /// are done; the last one done releases every held call with every stream, in the order
    /// they were retired. A stream still open then (its worker died) does not hold it.
    #[test]
    fn shutdown_releases_everything_once_every_worker_is_done() {
        let mut j = CallJoin::new(settings(2));
        j.on_stream(note(1, "b@x", 5, (4.0, S, 2 * S), None));
        j.on_call(0, 30 * S, call("a@x", 20));
        j.on_call(0, 30 * S, call("b@x", 20));
        j.on_progress(0, DONE);
        assert!(j.take_released().is_empty());
        let alice = facts(ALICE, BOB, 1, S, 20 * S, 4.0);
        j.on_stream(note(
            1,
            "a@x",
            3,
            (4.0, 20 * S, 30 * S),
            Some(alice.clone()),
        ));
        j.on_progress(1, DONE);
        let out = j.take_released();
        let ids: Vec<&str> = out.iter().map(|c| &*c.call_id).collect();
        assert_eq!(ids, vec!["a@x", "b@x"]);
        assert_eq!(out[0].streams, vec![alice]);
        assert!(out[1].streams.is_empty());
        j.finish();
        assert!(j.take_released().is_empty());
        // Nothing lost when the channel closes without DONE messages either.
        let mut k = CallJoin::new(settings(2));
        k.on_call(0, 30 * S, call("c@x", 20));
        k.on_stream(note(
            1,
            "orphan@x",
            1,
            (4.0, S, 2 * S),
            Some(facts(ALICE, BOB, 1, S, 2 * S, 4.0)),
        ));
        k.finish();
        assert_eq!(k.take_released().len(), 1);
        assert_eq!(k.counters().streams_unjoined, 1);
    }

    /// What the join keeps: per Call-ID a key (shared with the worker's own), the entry and
    /// per stream an entry whose facts are boxed only once the stream closed.
    #[test]
    fn join_entries_are_small() {
        use std::mem::size_of;
        let (entry, media, held) = (
            size_of::<StreamEntry>(),
            size_of::<Media>(),
            size_of::<Held>(),
        );
        let facts = size_of::<StreamFacts>();
        println!(
            "StreamEntry {entry} B, Media {media} B, Held {held} B, StreamFacts {facts} B (+ codec name)"
        );
        assert!(entry <= 64, "{entry}");
        assert!(media <= 48, "{media}");
    }

    #[test]
    fn worst_window_ties_go_to_the_earliest() {
        let mut w = None;
        keep_worst(&mut w, (3.5, 10 * S, 11 * S));
        keep_worst(&mut w, (3.5, 4 * S, 5 * S));
        keep_worst(&mut w, (3.6, 0, S));
        assert_eq!(w, Some((3.5, 4 * S, 5 * S)));
        keep_worst(&mut w, (3.4, 20 * S, 21 * S));
        assert_eq!(w, Some((3.4, 20 * S, 21 * S)));
    }

    /// The join against one worker, on real analyzers: a call whose SIP and one direction of
    /// media reach worker 0 and whose other direction reaches worker 1 (then: all media on
    /// worker 1), driven as the worker loop drives them (reports, retired calls, watermark after
    /// every step; the idle worker advanced as a quiet live source would), gives exactly the
    /// `Call` one analyzer fed everything retires: streams, MOS, worst window, problems.
    #[test]
    fn two_analyzers_and_the_join_give_the_one_analyzer_call() {
        use crate::calls::dialog::tests::{request, response, sa, sdp_body, with_sdp};
        use crate::capture::frame::LINKTYPE_ETHERNET;
        use crate::decode::build::{LinkSpec, RtpHeader, rtp_packet, udp_frame};
        use crate::pipeline::output::note_of;
        use crate::streams::registry::{SdpRegistry, SharedRegistry};
        use crate::streams::{Analyzer, AnalyzerConfig};
        const MS: i64 = 1_000_000;
        let id = "eq@x";
        let (alice_sip, bob_sip) = (sa("192.0.2.10:5060"), sa("192.0.2.20:5060"));
        let (alice, bob) = (sa(ALICE), sa(BOB));
        // (time, src, dst, payload, is media)
        let mut frames: Vec<(i64, std::net::SocketAddr, std::net::SocketAddr, Vec<u8>)> = vec![
            (
                0,
                alice_sip,
                bob_sip,
                with_sdp(
                    &request("INVITE", 1, false, id),
                    &sdp_body("192.0.2.10", 4000, 0, "sendrecv"),
                )
                .into_bytes(),
            ),
            (
                S,
                bob_sip,
                alice_sip,
                with_sdp(
                    &response("200 OK", 1, "INVITE", id),
                    &sdp_body("192.0.2.20", 6000, 0, "sendrecv"),
                )
                .into_bytes(),
            ),
            (
                20 * S,
                alice_sip,
                bob_sip,
                request("BYE", 2, true, id).into_bytes(),
            ),
        ];
        // Alice talks 1 s to 20 s and loses every 3rd packet from 5 s to 6 s (the worst
        // window); bob talks 1 s to 8 s only (rtp_stopped).
        for (src, dst, ssrc, end) in [(alice, bob, 0xa1u32, 20 * S), (bob, alice, 0xb0, 8 * S)] {
            let mut n = 0u16;
            let mut at = S + 20 * MS;
            while at < end {
                let lost = ssrc == 0xa1 && (5 * S..6 * S).contains(&at) && n.is_multiple_of(3);
                if !lost {
                    let header = RtpHeader {
                        payload_type: 0,
                        marker: false,
                        sequence: n,
                        timestamp: u32::from(n) * 160,
                        ssrc,
                        csrcs: vec![],
                        extension: None,
                        padding: 0,
                    };
                    frames.push((at, src, dst, rtp_packet(&header, &[0xff; 160])));
                }
                n = n.wrapping_add(1);
                at += 20 * MS;
            }
        }
        frames.sort_by_key(|f| f.0);
        let cfg = AnalyzerConfig {
            report_interval_ns: Some(S),
            ..AnalyzerConfig::default()
        };
        let frame = |f: &(i64, std::net::SocketAddr, std::net::SocketAddr, Vec<u8>)| {
            udp_frame(&LinkSpec::Ethernet, f.1, f.2, &f.3)
        };
        // One analyzer, fed everything: the reference.
        let mut one = Analyzer::new(cfg.clone());
        let mut expected = Vec::new();
        let end = 100 * S;
        let mut t = 0;
        let mut next = frames.iter().peekable();
        while t <= end {
            while let Some(f) = next.next_if(|f| f.0 <= t) {
                let bytes = frame(f);
                one.on_frame(f.0, LINKTYPE_ETHERNET, &bytes, bytes.len() as u32);
            }
            one.advance_to(t);
            let _ = one.drain_reports();
            expected.extend(one.drain_calls());
            t += 10 * MS;
        }
        one.close_all(end);
        expected.extend(one.drain_calls());
        assert_eq!(expected.len(), 1);
        assert_eq!(expected[0].streams.len(), 2);
        assert!(expected[0].worst_window.is_some());
        // Bob's last packet left at 7.98 s while alice talked on to 20 s.
        assert_eq!(
            expected[0].problems,
            vec![Problem {
                kind: ProblemKind::RtpStopped,
                sender: Party::Callee,
                start_ns: 7_980 * MS
            }]
        );

        for bob_on in [0usize, 1] {
            let registry: SharedRegistry = Arc::new(std::sync::RwLock::new(SdpRegistry::new(
                cfg.max_announcements,
            )));
            let mut workers = [
                Analyzer::with_registry(cfg.clone(), Arc::clone(&registry)),
                Analyzer::with_registry(cfg.clone(), Arc::clone(&registry)),
            ];
            let mut join = CallJoin::new(JoinSettings::for_analyzer(&cfg, 2));
            let route = |f: &(i64, std::net::SocketAddr, std::net::SocketAddr, Vec<u8>)| {
                if f.1.port() == 5060 {
                    0
                } else if f.1 == bob {
                    bob_on
                } else {
                    1
                }
            };
            let drive = |k: usize, a: &mut Analyzer, join: &mut CallJoin| {
                let now = a.packet_time();
                for r in a.drain_reports() {
                    if let Some(n) = note_of(k as u32, &r) {
                        join.on_stream(n);
                    }
                }
                for c in a.drain_calls() {
                    join.on_call(k as u32, now, c);
                }
                join.on_progress(k as u32, now);
            };
            let mut got = Vec::new();
            let mut t = 0;
            let mut next = frames.iter().peekable();
            while t <= end {
                while let Some(f) = next.next_if(|f| f.0 <= t) {
                    let bytes = frame(f);
                    let k = route(f);
                    workers[k].on_frame(f.0, LINKTYPE_ETHERNET, &bytes, bytes.len() as u32);
                    drive(k, &mut workers[k], &mut join);
                }
                for (k, a) in workers.iter_mut().enumerate() {
                    // Quiet advance: nothing more arrived up to `t`.
                    a.advance_to(t);
                    drive(k, a, &mut join);
                }
                got.extend(join.take_released());
                t += 10 * MS;
            }
            assert_eq!(
                got.len(),
                1,
                "released before the shutdown (bob on {bob_on})"
            );
            for (k, a) in workers.iter_mut().enumerate() {
                a.close_all(end);
                drive(k, a, &mut join);
                join.on_progress(k as u32, DONE);
            }
            join.finish();
            got.extend(join.take_released());
            assert_eq!(got, expected, "bob's media on worker {bob_on}");
            assert_eq!(
                join.counters(),
                JoinCounters {
                    streams_joined: if bob_on == 1 { 2 } else { 1 },
                    ..JoinCounters::default()
                }
            );
        }
    }
}
