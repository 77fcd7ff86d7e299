//! SIP over TCP (RFC 3261 §18.3) and over WebSocket (RFC 7118): per-direction byte-stream
//! reassembly that hands each whole SIP message to a callback.
//!
//! A direction (source → destination socket address) is tracked when it is on a configured SIP
//! port, or when a segment on another port starts with a SIP start line or a WebSocket upgrade
//! naming the `sip` subprotocol. Bytes are appended in sequence order; retransmitted bytes are
//! dropped; segments ahead of a hole are held (bounded in count and bytes) until the hole fills,
//! or the hole is given up and the stream resynchronised at the next SIP start line (counted).
//! A direction first seen mid-stream is resynchronised the same way. Messages are framed by
//! `Content-Length` (compact `l:` too; a missing one means an empty body on TCP), so several
//! messages in one segment and one message over many segments both work; CRLF keep-alives are
//! skipped. WebSocket directions are deframed (masked or not, fragmented or not) and each data
//! message is one SIP message.
//!
//! Bounds: every direction buffers at most `max_flow_bytes` of in-order data (a larger message
//! is dropped and counted) plus as much held out of order; at most `max_flows` directions and
//! `max_total_bytes` of buffer capacity exist at once (the least recently active direction is
//! evicted, counted); a direction idle for `idle_timeout_ns` of packet time is forgotten. A
//! message that arrives whole in one segment is framed in place, without a copy; buffers are
//! reused, so steady state allocates nothing. This module keeps no clock, does no I/O, and
//! does not look inside SIP beyond framing (that is `decode::sip`'s job).

use std::collections::VecDeque;
use std::net::SocketAddr;

use hashbrown::HashMap;

use super::websocket::{self, FrameError, FrameHeader, Handshake};
use crate::decode::Segment;
use crate::decode::sip::{MAX_START_LINE_LEN, SipMessage};
use crate::decode::tcp::flags;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The SIP ports of RFC 3261 (5060) and the common second one (5080).
pub const DEFAULT_SIP_PORTS: [u16; 2] = [5060, 5080];

/// Most segments held ahead of a hole per direction.
const MAX_PENDING_SEGMENTS: usize = 16;

/// Unmasked bytes of a WebSocket frame looked at when checking it starts a SIP message.
const WS_PROBE_LEN: usize = 256;

/// Limits of the reassembly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// TCP ports whose connections are always reassembled (both as source and destination).
    pub sip_ports: Vec<u16>,
    /// Largest SIP message and most in-order bytes buffered per direction (also the most held
    /// out of order).
    pub max_flow_bytes: usize,
    /// Most directions tracked at once.
    pub max_flows: usize,
    /// Most buffer capacity over all directions.
    pub max_total_bytes: usize,
    /// A direction with no segment for this long (packet time) is forgotten.
    pub idle_timeout_ns: i64,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            sip_ports: DEFAULT_SIP_PORTS.to_vec(),
            max_flow_bytes: 64 * 1024,
            max_flows: 4096,
            max_total_bytes: 32 * 1024 * 1024,
            idle_timeout_ns: 300_000_000_000,
        }
    }
}

/// What the reassembly did, for the analyzer's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpCounters {
    /// TCP segments of tracked (or SIP-port) directions.
    pub segments: u64,
    /// Whole SIP messages handed on (WebSocket ones included).
    pub messages: u64,
    /// Of those, carried in WebSocket frames.
    pub websocket_messages: u64,
    /// Directions started.
    pub connections: u64,
    /// Directions dropped to respect `max_flows` or `max_total_bytes`.
    pub evicted: u64,
    /// Times a direction gave up a hole or skipped bytes that were no SIP message, and looked for
    /// the next message start.
    pub resyncs: u64,
    /// Bytes discarded: before a resynchronisation point, of oversized or unfinished messages,
    /// and held out of order when a direction ended.
    pub bytes_dropped: u64,
    /// Bytes received again (retransmissions) and ignored.
    pub retransmitted_bytes: u64,
    /// Messages (or WebSocket frames) larger than `max_flow_bytes`, skipped by their length.
    pub oversized: u64,
    /// Segments that arrived ahead of a hole and were held.
    pub out_of_order: u64,
}

impl TcpCounters {
    /// The counts accumulated since `before` (for per-file summaries).
    pub fn since(&self, before: &TcpCounters) -> TcpCounters {
        TcpCounters {
            segments: self.segments.saturating_sub(before.segments),
            messages: self.messages.saturating_sub(before.messages),
            websocket_messages: self
                .websocket_messages
                .saturating_sub(before.websocket_messages),
            connections: self.connections.saturating_sub(before.connections),
            evicted: self.evicted.saturating_sub(before.evicted),
            resyncs: self.resyncs.saturating_sub(before.resyncs),
            bytes_dropped: self.bytes_dropped.saturating_sub(before.bytes_dropped),
            retransmitted_bytes: self
                .retransmitted_bytes
                .saturating_sub(before.retransmitted_bytes),
            out_of_order: self.out_of_order.saturating_sub(before.out_of_order),
            oversized: self.oversized.saturating_sub(before.oversized),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    src: SocketAddr,
    dst: SocketAddr,
}

/// How the bytes of a direction are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// At the start of a connection (SYN seen): SIP, or a WebSocket handshake.
    Start,
    /// Looking for the next SIP message start (mid-stream start, after a hole or garbage).
    Hunt,
    /// SIP messages framed by Content-Length.
    Sip,
    /// WebSocket frames, each data message a SIP message.
    WebSocket,
}

/// The framing state of one direction (everything but its byte buffer).
#[derive(Debug)]
struct Reader {
    mode: Mode,
    /// The direction carries WebSocket (a handshake or a frame was seen): resynchronise on frames.
    websocket: bool,
    /// Where the search for the end of the current message's header block resumes.
    scanned: usize,
    /// The WebSocket message being assembled (unmasked), and whether a data frame began one.
    ws_message: Vec<u8>,
    ws_in_message: bool,
    /// Bytes still to skip of an oversized message or frame whose length is known.
    skip: u64,
}

/// One direction of a TCP connection.
#[derive(Debug)]
struct Flow {
    /// Sequence number of the next byte expected.
    next_seq: u32,
    /// In-order bytes not yet framed.
    buf: Vec<u8>,
    reader: Reader,
    /// Out-of-order segments: their bytes in `held`, (sequence, start in `held`, length).
    held: Vec<u8>,
    held_segments: Vec<(u32, usize, usize)>,
    last_ns: i64,
    /// The last segment was cut by the snap length: its missing bytes will never come, so the
    /// next segment is taken where it starts instead of being held behind a hole.
    cut: bool,
}

impl Flow {
    fn new(next_seq: u32, mode: Mode, ts_ns: i64) -> Flow {
        Flow {
            next_seq,
            buf: Vec::new(),
            reader: Reader {
                mode,
                websocket: false,
                scanned: 0,
                ws_message: Vec::new(),
                ws_in_message: false,
                skip: 0,
            },
            held: Vec::new(),
            held_segments: Vec::new(),
            last_ns: ts_ns,
            cut: false,
        }
    }

    fn capacity(&self) -> usize {
        self.buf.capacity() + self.held.capacity() + self.reader.ws_message.capacity()
    }

    fn buffered(&self) -> usize {
        self.buf.len() + self.held.len() + self.reader.ws_message.len()
    }
}

/// The reassembly of every tracked direction.
#[derive(Debug)]
pub struct TcpReassembler {
    cfg: TcpConfig,
    flows: FastMap<FlowKey, Flow>,
    /// Eviction order ("second chance"): directions by the packet time they were queued at; one
    /// active since is queued again instead of evicted. Entries of removed directions are
    /// skipped, and dropped when they outnumber the live ones.
    order: VecDeque<(FlowKey, i64)>,
    /// Sum of the flows' buffer capacities.
    capacity: usize,
    counters: TcpCounters,
}

/// `a` is before `b` in sequence space (RFC 1982 serial arithmetic on 32 bits).
fn seq_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl TcpReassembler {
    pub fn new(cfg: TcpConfig) -> Self {
        TcpReassembler {
            cfg,
            flows: FastMap::default(),
            order: VecDeque::new(),
            capacity: 0,
            counters: TcpCounters::default(),
        }
    }

    /// An empty reassembler with no SIP port, built without allocating: what stands in while
    /// the real one is moved out to hand a message to its owner.
    pub fn placeholder() -> Self {
        TcpReassembler {
            cfg: TcpConfig {
                sip_ports: Vec::new(),
                max_flow_bytes: 0,
                max_flows: 0,
                max_total_bytes: 0,
                idle_timeout_ns: 0,
            },
            flows: FastMap::default(),
            order: VecDeque::new(),
            capacity: 0,
            counters: TcpCounters::default(),
        }
    }

    pub fn counters(&self) -> &TcpCounters {
        &self.counters
    }

    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    /// Directions tracked now.
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    /// Buffer capacity held now over all directions (bounded by `max_total_bytes`, give or take
    /// one direction's growth).
    pub fn buffered_capacity(&self) -> usize {
        self.capacity
    }

    fn is_sip_port(&self, port: u16) -> bool {
        self.cfg.sip_ports.contains(&port)
    }

    /// Feeds one TCP segment captured at `ts_ns`; every SIP message it completes is passed to
    /// `emit` (with this segment's time). Returns false when the segment is of no interest (not
    /// on a SIP port, of no tracked direction, and not starting a SIP or SIP-over-WebSocket
    /// stream): the caller counts it as skipped.
    pub fn on_segment(
        &mut self,
        ts_ns: i64,
        segment: &Segment<'_>,
        mut emit: impl FnMut(&[u8]),
    ) -> bool {
        let key = FlowKey {
            src: segment.src,
            dst: segment.dst,
        };
        let known = !self.flows.is_empty() && self.flows.contains_key(&key);
        let sip_port = self.is_sip_port(segment.src.port()) || self.is_sip_port(segment.dst.port());
        if !known && !sip_port && !starts_sip_stream(segment.payload) {
            return false;
        }
        self.counters.segments += 1;
        let syn = segment.flags & flags::SYN != 0;
        if segment.flags & flags::RST != 0 {
            // The connection is gone in both directions.
            self.remove(&key);
            self.remove(&FlowKey {
                src: segment.dst,
                dst: segment.src,
            });
            return true;
        }
        // Data starts after the SYN's own sequence number.
        let data_seq = segment.seq.wrapping_add(u32::from(syn));
        if syn && known {
            // A retransmitted SYN starts at or a little before where the direction is now; a
            // new connection on the same addresses starts anywhere else (a fresh ISN).
            let window = self.cfg.max_flow_bytes.saturating_mul(4) as u32;
            let same = self.flows.get(&key).is_some_and(|f| {
                f.next_seq == data_seq
                    || (seq_before(data_seq, f.next_seq)
                        && f.next_seq.wrapping_sub(data_seq) <= window)
            });
            if !same {
                // A new connection on the same addresses: start over.
                self.remove(&key);
            }
        }
        if !self.flows.contains_key(&key) {
            if !syn && segment.payload.is_empty() {
                // A bare ACK (or FIN) of a direction never seen with data: nothing to track.
                return true;
            }
            self.make_room();
            let mode = if syn { Mode::Start } else { Mode::Hunt };
            self.flows.insert(key, Flow::new(data_seq, mode, ts_ns));
            self.order.push_back((key, ts_ns));
            self.counters.connections += 1;
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return true;
        };
        let before = flow.capacity();
        flow.last_ns = ts_ns;
        accept(
            flow,
            &self.cfg,
            &mut self.counters,
            data_seq,
            segment.payload,
            &mut emit,
        );
        if segment.truncated && !segment.payload.is_empty() {
            // What was captured is framed; the message it ends in cannot complete.
            flow.cut = true;
            give_up_hole(flow, &mut self.counters, flow.next_seq);
        }
        let after = flow.capacity();
        let fin = segment.flags & flags::FIN != 0
            && flow.held_segments.is_empty()
            && flow.next_seq == data_seq.wrapping_add(segment.payload.len() as u32);
        self.capacity = self.capacity.saturating_sub(before).saturating_add(after);
        if fin {
            // The sender is done: what is left can never complete.
            self.remove(&key);
        } else if self.capacity > self.cfg.max_total_bytes {
            self.shrink_to_budget(Some(key));
        }
        true
    }

    /// Forgets directions idle for the configured timeout at packet time `now_ns`.
    pub fn sweep(&mut self, now_ns: i64) {
        let timeout = self.cfg.idle_timeout_ns;
        let (mut dropped, mut released) = (0u64, 0usize);
        self.flows.retain(|_, flow| {
            let keep = now_ns.saturating_sub(flow.last_ns) <= timeout;
            if !keep {
                dropped += flow.buffered() as u64;
                released += flow.capacity();
            }
            keep
        });
        self.counters.bytes_dropped += dropped;
        self.capacity = self.capacity.saturating_sub(released);
        self.compact_order();
    }

    fn remove(&mut self, key: &FlowKey) {
        if let Some(flow) = self.flows.remove(key) {
            self.counters.bytes_dropped += flow.buffered() as u64;
            self.capacity = self.capacity.saturating_sub(flow.capacity());
        }
        self.compact_order();
    }

    /// Drops the eviction-order entries of removed directions once they are the majority, so
    /// the queue stays within twice the table.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.flows.len() + 64 {
            let flows = &self.flows;
            self.order.retain(|(key, _)| flows.contains_key(key));
        }
    }

    /// Makes room for one more direction.
    fn make_room(&mut self) {
        while self.flows.len() >= self.cfg.max_flows.max(1) {
            if !self.evict_oldest(None) {
                break;
            }
        }
    }

    /// Evicts the least recently active directions (sparing `keep` while others exist) until
    /// the buffers fit `max_total_bytes`.
    fn shrink_to_budget(&mut self, keep: Option<FlowKey>) {
        while self.capacity > self.cfg.max_total_bytes {
            if !self.evict_oldest(keep) && !keep.is_some_and(|k| self.evict(&k)) {
                break;
            }
        }
    }

    /// Evicts the least recently queued direction not active since it was queued (CLOCK
    /// second chance: amortised constant time, close to least recently active).
    fn evict_oldest(&mut self, keep: Option<FlowKey>) -> bool {
        // Every live direction is requeued at most once per pass, so two passes suffice.
        let mut budget = 2 * self.order.len() + 2;
        while budget > 0 {
            budget -= 1;
            let Some((key, queued_ns)) = self.order.pop_front() else {
                return false;
            };
            let Some(flow) = self.flows.get(&key) else {
                continue;
            };
            if Some(key) == keep || flow.last_ns > queued_ns {
                self.order.push_back((key, flow.last_ns));
                continue;
            }
            return self.evict(&key);
        }
        false
    }

    fn evict(&mut self, key: &FlowKey) -> bool {
        if !self.flows.contains_key(key) {
            return false;
        }
        self.remove(key);
        self.counters.evicted += 1;
        true
    }
}

/// Whether a segment of an untracked direction on a non-SIP port starts a stream worth
/// tracking: a SIP start line, or a WebSocket handshake for the `sip` subprotocol.
fn starts_sip_stream(payload: &[u8]) -> bool {
    match payload.first() {
        Some(b'G' | b'H') => {
            matches!(websocket::handshake(payload), Handshake::Sip { .. })
                || probe_sip(payload) == Probe::Sip
        }
        Some(first) if first.is_ascii_uppercase() => probe_sip(payload) == Probe::Sip,
        _ => false,
    }
}

/// Takes in the payload of one segment whose first byte has sequence number `seq`.
fn accept(
    flow: &mut Flow,
    cfg: &TcpConfig,
    counters: &mut TcpCounters,
    seq: u32,
    payload: &[u8],
    emit: &mut impl FnMut(&[u8]),
) {
    if payload.is_empty() {
        return;
    }
    let window = cfg.max_flow_bytes.max(1);
    let offset = seq.wrapping_sub(flow.next_seq) as i32;
    if offset > 0 && flow.cut && flow.held_segments.is_empty() {
        // The hole is the cut segment's missing tail (already counted as a resync).
        flow.next_seq = seq;
    }
    flow.cut = false;
    let offset = seq.wrapping_sub(flow.next_seq) as i32;
    if offset > 0 {
        let ahead = offset as usize;
        let fits = flow.held_segments.len() < MAX_PENDING_SEGMENTS
            && flow.held.len() + payload.len() <= window
            && ahead <= window.saturating_mul(4);
        if fits {
            counters.out_of_order += 1;
            let start = flow.held.len();
            reserve_bounded(&mut flow.held, payload.len(), window);
            flow.held.extend_from_slice(payload);
            flow.held_segments.push((seq, start, payload.len()));
            return;
        }
        // The hole will not fill within the bounds: give it up and resume at the earliest
        // data we have (a held segment, or this one), hole after hole.
        while seq_before(flow.next_seq, seq) {
            let earliest = flow
                .held_segments
                .iter()
                .map(|&(s, _, _)| s)
                .fold(seq, |a, s| if seq_before(s, a) { s } else { a });
            give_up_hole(flow, counters, earliest);
            release_held(flow, cfg, counters, emit);
        }
    }
    append_in_order(flow, cfg, counters, seq, payload, emit);
    release_held(flow, cfg, counters, emit);
}

/// Abandons the hole before `resume`: the partial message is lost and the stream
/// resynchronises.
fn give_up_hole(flow: &mut Flow, counters: &mut TcpCounters, resume: u32) {
    counters.resyncs += 1;
    counters.bytes_dropped += flow.buf.len() as u64;
    flow.buf.clear();
    resync(&mut flow.reader);
    flow.next_seq = resume;
}

fn resync(reader: &mut Reader) {
    reader.mode = Mode::Hunt;
    reader.scanned = 0;
    reader.ws_message.clear();
    reader.ws_in_message = false;
    reader.skip = 0;
}

/// Appends the part of an in-order (or overlapping) segment not seen yet and frames it.
fn append_in_order(
    flow: &mut Flow,
    cfg: &TcpConfig,
    counters: &mut TcpCounters,
    seq: u32,
    payload: &[u8],
    emit: &mut impl FnMut(&[u8]),
) {
    let offset = seq.wrapping_sub(flow.next_seq) as i32;
    if offset > 0 {
        return;
    }
    let seen = offset.unsigned_abs() as usize;
    if seen >= payload.len() {
        counters.retransmitted_bytes += payload.len() as u64;
        return;
    }
    counters.retransmitted_bytes += seen as u64;
    let Some(fresh) = payload.get(seen..) else {
        return;
    };
    flow.next_seq = flow.next_seq.wrapping_add(fresh.len() as u32);
    push(flow, cfg, counters, fresh, emit);
}

/// Feeds held segments that the stream has now reached.
fn release_held(
    flow: &mut Flow,
    cfg: &TcpConfig,
    counters: &mut TcpCounters,
    emit: &mut impl FnMut(&[u8]),
) {
    loop {
        // The held segment starting earliest at or before the next expected byte.
        let next = flow
            .held_segments
            .iter()
            .enumerate()
            .filter(|(_, (s, _, _))| !seq_before(flow.next_seq, *s))
            .min_by_key(|(_, (s, _, _))| s.wrapping_sub(flow.next_seq))
            .map(|(i, _)| i);
        let Some(index) = next else {
            break;
        };
        let (seq, start, len) = flow.held_segments.swap_remove(index);
        // Moved out so that the held bytes can be read while the flow is fed.
        let held = std::mem::take(&mut flow.held);
        if let Some(bytes) = held.get(start..start + len) {
            append_in_order(flow, cfg, counters, seq, bytes, emit);
        }
        flow.held = held;
    }
    if flow.held_segments.is_empty() {
        flow.held.clear();
    }
}

/// Grows `buf` for `more` bytes without its capacity passing `limit` (when it fits).
fn reserve_bounded(buf: &mut Vec<u8>, more: usize, limit: usize) {
    let needed = buf.len() + more;
    if needed > buf.capacity() {
        let target = needed.next_power_of_two().min(limit).max(needed);
        buf.reserve_exact(target - buf.len());
    }
}

/// Frames new in-order bytes: in place when nothing is buffered, else through the buffer, which
/// never holds more than `max_flow_bytes`.
fn push(
    flow: &mut Flow,
    cfg: &TcpConfig,
    counters: &mut TcpCounters,
    data: &[u8],
    emit: &mut impl FnMut(&[u8]),
) {
    let max = cfg.max_flow_bytes.max(1);
    let mut rest = data;
    if flow.buf.is_empty() {
        let consumed = drive(&mut flow.reader, counters, rest, max, emit);
        rest = rest.get(consumed..).unwrap_or_default();
    }
    while !rest.is_empty() {
        let room = max.saturating_sub(flow.buf.len());
        if room == 0 {
            // Full and still no complete message: drop it and look for the next start.
            counters.resyncs += 1;
            counters.bytes_dropped += flow.buf.len() as u64;
            flow.buf.clear();
            resync(&mut flow.reader);
            continue;
        }
        let (chunk, after) = rest.split_at(room.min(rest.len()));
        reserve_bounded(&mut flow.buf, chunk.len(), max);
        flow.buf.extend_from_slice(chunk);
        rest = after;
        let consumed = drive(&mut flow.reader, counters, &flow.buf, max, emit);
        flow.buf.drain(..consumed.min(flow.buf.len()));
    }
}

/// What the framing found at the start of the bytes.
enum Step {
    /// `n` bytes used (a message handed on, a handshake, a frame or keep-alive bytes).
    Used(usize),
    /// `n` bytes that are no message, discarded.
    Dropped(usize),
    /// Wait for more bytes.
    Wait,
}

/// Frames as many messages as `bytes` hold; returns how many bytes were consumed (used or
/// dropped): the rest must be kept for the next segment.
fn drive(
    reader: &mut Reader,
    counters: &mut TcpCounters,
    bytes: &[u8],
    max: usize,
    emit: &mut impl FnMut(&[u8]),
) -> usize {
    let mut pos = 0usize;
    // A step that consumes nothing changes the mode; a few in a row mean no progress is possible.
    let mut idle_steps = 0u8;
    loop {
        let Some(rest) = bytes.get(pos..).filter(|r| !r.is_empty()) else {
            return pos;
        };
        if idle_steps > 3 {
            return pos;
        }
        let step = match reader.mode {
            _ if reader.skip > 0 => {
                let n = usize::try_from(reader.skip)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                reader.skip -= n as u64;
                Step::Dropped(n)
            }
            Mode::Start => start(reader, rest, max),
            Mode::Hunt => hunt(reader, counters, rest),
            Mode::Sip => sip_message(reader, counters, rest, max, emit),
            Mode::WebSocket => ws_frame(reader, counters, rest, max, emit),
        };
        match step {
            Step::Used(0) | Step::Dropped(0) => idle_steps += 1,
            Step::Used(n) => {
                idle_steps = 0;
                pos += n;
            }
            Step::Dropped(n) => {
                idle_steps = 0;
                counters.bytes_dropped += n as u64;
                pos += n;
            }
            Step::Wait => return pos,
        }
    }
}

/// Number of leading CR/LF bytes (keep-alives between messages, RFC 5626 §3.5.1).
fn leading_line_ends(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count()
}

fn start(reader: &mut Reader, rest: &[u8], max: usize) -> Step {
    let blank = leading_line_ends(rest);
    if blank > 0 {
        return Step::Used(blank);
    }
    if rest.starts_with(b"GET ") || rest.starts_with(b"HTTP/") {
        return match websocket::handshake(rest) {
            Handshake::Sip { header_len } => {
                reader.mode = Mode::WebSocket;
                reader.websocket = true;
                Step::Used(header_len)
            }
            // Some other HTTP: nothing for us until a SIP start line shows up.
            Handshake::Other
                if websocket::header_block_len(rest).is_some() || rest.len() >= max =>
            {
                reader.mode = Mode::Hunt;
                Step::Used(0)
            }
            Handshake::Other => Step::Wait,
        };
    }
    reader.mode = Mode::Sip;
    Step::Used(0)
}

/// Result of checking one position while hunting.
enum Probe {
    Sip,
    WebSocket,
    No,
    NeedMore,
}

/// Looks for the next position where a SIP message (or a WebSocket frame carrying one) starts.
fn hunt(reader: &mut Reader, counters: &mut TcpCounters, rest: &[u8]) -> Step {
    let blank = leading_line_ends(rest);
    if blank > 0 {
        return Step::Used(blank);
    }
    // A direction first seen at its WebSocket handshake (no SYN captured).
    if let Handshake::Sip { header_len } = websocket::handshake(rest) {
        reader.mode = Mode::WebSocket;
        reader.websocket = true;
        return Step::Used(header_len);
    }
    let mut at_line_start = true;
    for (p, &byte) in rest.iter().enumerate() {
        // A text or binary frame that starts a message begins with one of these bytes (FIN or
        // not, no reserved bit): only there is a WebSocket header worth reading.
        let probe = if matches!(byte, 0x81 | 0x82 | 0x01 | 0x02) {
            match probe_ws(rest.get(p..).unwrap_or_default()) {
                Probe::No if at_line_start && !reader.websocket => {
                    probe_sip(rest.get(p..).unwrap_or_default())
                }
                other => other,
            }
        } else if at_line_start && !reader.websocket {
            probe_sip(rest.get(p..).unwrap_or_default())
        } else {
            Probe::No
        };
        match probe {
            Probe::Sip => {
                reader.mode = Mode::Sip;
                reader.scanned = 0;
                return found(counters, p);
            }
            Probe::WebSocket => {
                reader.mode = Mode::WebSocket;
                reader.websocket = true;
                return found(counters, p);
            }
            Probe::NeedMore if p == 0 => return Step::Wait,
            Probe::NeedMore => return Step::Dropped(p),
            Probe::No => {}
        }
        at_line_start = byte == b'\n';
    }
    // Keep nothing: a start line cannot begin inside what was searched... except that the last
    // byte may be the line end before one.
    Step::Dropped(rest.len())
}

fn found(counters: &mut TcpCounters, p: usize) -> Step {
    if p == 0 {
        Step::Used(0)
    } else {
        counters.resyncs += 1;
        Step::Dropped(p)
    }
}

fn probe_sip(bytes: &[u8]) -> Probe {
    if !bytes.first().is_some_and(u8::is_ascii_uppercase) {
        return Probe::No;
    }
    let line = bytes.get(..MAX_START_LINE_LEN).unwrap_or(bytes);
    if !line.contains(&b'\n') && !line.contains(&b'\r') {
        return if bytes.len() < MAX_START_LINE_LEN {
            Probe::NeedMore
        } else {
            Probe::No
        };
    }
    // Inside a stream a line may start anywhere in a message ("ITE sip:a SIP/2.0" is a cut
    // INVITE): requests are accepted with a registered method only.
    let Some(line_end) = line.iter().position(|b| *b == b'\n' || *b == b'\r') else {
        return Probe::No;
    };
    // The start line alone: the probe must not walk a whole header block at every position.
    let start_line = bytes.get(..=line_end).unwrap_or_default();
    match SipMessage::parse(start_line).map(|m| m.method()) {
        Ok(None) => Probe::Sip,
        Ok(Some(method)) if KNOWN_METHODS.iter().any(|k| k.eq_ignore_ascii_case(method)) => {
            Probe::Sip
        }
        _ => Probe::No,
    }
}

/// SIP methods registered with IANA (RFC 3261 and extensions).
const KNOWN_METHODS: [&[u8]; 14] = [
    b"INVITE",
    b"ACK",
    b"BYE",
    b"CANCEL",
    b"REGISTER",
    b"OPTIONS",
    b"PRACK",
    b"SUBSCRIBE",
    b"NOTIFY",
    b"PUBLISH",
    b"INFO",
    b"REFER",
    b"MESSAGE",
    b"UPDATE",
];

/// A WebSocket data frame header whose (unmasked) payload starts with a SIP start line.
fn probe_ws(bytes: &[u8]) -> Probe {
    let header = match FrameHeader::parse(bytes) {
        Ok(h) => h,
        Err(FrameError::Incomplete) => return Probe::NeedMore,
        Err(FrameError::Invalid) => return Probe::No,
    };
    // A message's first frame (text or binary), not a continuation.
    if !matches!(
        header.opcode,
        websocket::opcode::TEXT | websocket::opcode::BINARY
    ) {
        return Probe::No;
    }
    let payload = bytes.get(header.header_len..).unwrap_or_default();
    let want = usize::try_from(header.payload_len)
        .unwrap_or(usize::MAX)
        .min(WS_PROBE_LEN);
    let Some(prefix) = payload.get(..want) else {
        return Probe::NeedMore;
    };
    let mut probe = [0u8; WS_PROBE_LEN];
    for (i, (out, b)) in probe.iter_mut().zip(prefix).enumerate() {
        *out = match header.mask {
            Some(key) => b ^ key[i % 4],
            None => *b,
        };
    }
    if websocket::starts_with_sip(probe.get(..prefix.len()).unwrap_or_default()) {
        Probe::WebSocket
    } else {
        Probe::No
    }
}

/// One SIP message framed by Content-Length at the start of `rest`.
fn sip_message(
    reader: &mut Reader,
    counters: &mut TcpCounters,
    rest: &[u8],
    max: usize,
    emit: &mut impl FnMut(&[u8]),
) -> Step {
    let blank = leading_line_ends(rest);
    if blank > 0 {
        reader.scanned = 0;
        return Step::Used(blank);
    }
    // Resume the search for the empty line where the last segment left it (minus the 3 bytes
    // a CRLFCRLF split across segments can have started with).
    let from = reader.scanned.saturating_sub(3);
    let header_len = match rest.get(from..).and_then(header_end) {
        Some(end) => from + end,
        None => {
            reader.scanned = rest.len();
            if probe_sip(rest) == Probe::No || rest.len() >= max {
                // Not a message start, or a header block larger than a message may be.
                counters.resyncs += 1;
                resync(reader);
                return Step::Dropped(1);
            }
            return Step::Wait;
        }
    };
    let Some(head) = rest.get(..header_len) else {
        return Step::Wait;
    };
    let Ok(message) = SipMessage::parse(head) else {
        counters.resyncs += 1;
        resync(reader);
        return Step::Dropped(1);
    };
    // RFC 3261 §18.3: on a stream transport a missing Content-Length means an empty body; an
    // unreadable one cannot be framed, so the body is skipped by resynchronising.
    let body_len = match message.header("Content-Length") {
        None => 0,
        Some(value) => match parse_length(value) {
            Some(n) => n,
            None => {
                counters.resyncs += 1;
                resync(reader);
                return Step::Dropped(header_len);
            }
        },
    };
    let total = header_len.saturating_add(body_len);
    if total > max {
        // Too large to buffer: skip it by its length and go on with the next message.
        counters.oversized += 1;
        reader.scanned = 0;
        reader.skip = body_len as u64;
        return Step::Dropped(header_len);
    }
    let Some(whole) = rest.get(..total) else {
        reader.scanned = header_len;
        return Step::Wait;
    };
    reader.scanned = 0;
    counters.messages += 1;
    emit(whole);
    Step::Used(total)
}

impl PartialEq for Probe {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// Offset just past the empty line that ends a header block (CRLF CRLF or LF LF, lenient to a
/// mix), if `bytes` holds it.
fn header_end(bytes: &[u8]) -> Option<usize> {
    let mut from = 0usize;
    loop {
        let lf = bytes.get(from..)?.iter().position(|b| *b == b'\n')? + from;
        match bytes.get(lf + 1) {
            Some(b'\n') => return Some(lf + 2),
            Some(b'\r') if bytes.get(lf + 2) == Some(&b'\n') => return Some(lf + 3),
            Some(_) => from = lf + 1,
            None => return None,
        }
    }
}

/// A Content-Length value: digits only, at most 9 of them (anything larger exceeds every bound).
fn parse_length(value: &[u8]) -> Option<usize> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0usize, |n, d| n * 10 + usize::from(d - b'0')),
    )
}

/// One WebSocket frame at the start of `rest`: data is unmasked into the message being built,
/// which is handed on when the frame ends it.
fn ws_frame(
    reader: &mut Reader,
    counters: &mut TcpCounters,
    rest: &[u8],
    max: usize,
    emit: &mut impl FnMut(&[u8]),
) -> Step {
    let header = match FrameHeader::parse(rest) {
        Ok(h) => h,
        Err(FrameError::Incomplete) => return Step::Wait,
        Err(FrameError::Invalid) => {
            counters.resyncs += 1;
            resync(reader);
            return Step::Dropped(1);
        }
    };
    let len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
    let frame_len = header.header_len.saturating_add(len);
    if frame_len > max || reader.ws_message.len().saturating_add(len) > max {
        // Larger than any SIP message may be: drop the message built so far and skip the frame
        // by its length.
        counters.oversized += 1;
        counters.bytes_dropped += reader.ws_message.len() as u64;
        reader.ws_message.clear();
        reader.ws_in_message = false;
        reader.skip = header.payload_len;
        return Step::Dropped(header.header_len);
    }
    let Some(payload) = rest.get(header.header_len..frame_len) else {
        return Step::Wait;
    };
    if !header.is_data() {
        // Ping, pong and close carry no SIP; a close ends nothing here (the FIN does).
        return Step::Used(frame_len);
    }
    match header.opcode {
        websocket::opcode::CONTINUATION if !reader.ws_in_message => {
            // The middle of a message whose start was lost.
            return Step::Dropped(frame_len);
        }
        websocket::opcode::CONTINUATION => {}
        _ => {
            if reader.ws_in_message {
                // A new message before the last one ended: the old one is incomplete.
                counters.bytes_dropped += reader.ws_message.len() as u64;
            }
            reader.ws_message.clear();
            reader.ws_in_message = true;
        }
    }
    reserve_bounded(&mut reader.ws_message, payload.len(), max);
    websocket::unmask_into(&mut reader.ws_message, payload, header.mask, 0);
    if header.fin {
        reader.ws_in_message = false;
        let blank = leading_line_ends(&reader.ws_message);
        if let Some(message) = reader.ws_message.get(blank..).filter(|m| !m.is_empty()) {
            counters.messages += 1;
            counters.websocket_messages += 1;
            emit(message);
        }
        reader.ws_message.clear();
    }
    Step::Used(frame_len)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLIENT: &str = "192.0.2.1:40000";
    const SERVER: &str = "192.0.2.2:5060";

    fn segment(seq: u32, flags: u8, payload: &[u8]) -> Segment<'_> {
        Segment {
            src: CLIENT.parse().unwrap(),
            dst: SERVER.parse().unwrap(),
            seq,
            flags,
            payload,
            truncated: false,
            vlan: None,
        }
    }

    fn message(method: &str, call: &str, body: &str) -> String {
        format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK{call}\r\n\
Call-ID: {call}\r\nCSeq: 1 {method}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// Feeds segments and returns the messages emitted, as strings.
    fn feed(r: &mut TcpReassembler, segments: &[(u32, u8, Vec<u8>)]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, (seq, flags, payload)) in segments.iter().enumerate() {
            r.on_segment(i as i64, &segment(*seq, *flags, payload), |m| {
                out.push(String::from_utf8_lossy(m).into_owned())
            });
        }
        out
    }

    const ACK: u8 = flags::ACK;
    const SYN: u8 = flags::SYN;

    #[test]
    fn several_messages_per_segment_and_one_message_over_several() {
        let a = message("INVITE", "a", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n");
        let b = message("ACK", "b", "");
        let c = message("BYE", "c", "x");
        let stream = format!("{a}{b}\r\n\r\n{c}");
        let bytes = stream.as_bytes();
        let mut r = TcpReassembler::new(TcpConfig::default());
        let isn = 1000u32;
        let mut segments = vec![(isn, SYN, vec![])];
        // Split at arbitrary points: inside a's headers, inside its CRLFCRLF, across b/c.
        let cuts = [0, 17, a.len() - 2 - 31, a.len() - 1, bytes.len()];
        for w in cuts.windows(2) {
            segments.push((isn + 1 + w[0] as u32, ACK, bytes[w[0]..w[1]].to_vec()));
        }
        let got = feed(&mut r, &segments);
        assert_eq!(got, vec![a, b, c]);
        let counters = r.counters();
        assert_eq!(counters.messages, 3);
        assert_eq!((counters.resyncs, counters.bytes_dropped), (0, 0));
    }

    #[test]
    fn retransmission_and_out_of_order() {
        let a = message("INVITE", "a", "body-a");
        let b = message("BYE", "b", "");
        let stream = format!("{a}{b}");
        let bytes = stream.as_bytes();
        let s = |from: usize, to: usize| (100 + from as u32, ACK, bytes[from..to].to_vec());
        let mut r = TcpReassembler::new(TcpConfig::default());
        let got = feed(
            &mut r,
            &[
                (99, SYN, vec![]),
                s(0, 40),
                s(80, bytes.len()), // ahead of a hole
                s(0, 40),           // retransmission
                s(30, 80),          // fills the hole, overlapping
            ],
        );
        assert_eq!(got, vec![a, b]);
        assert_eq!(r.counters().out_of_order, 1);
        assert_eq!(r.counters().retransmitted_bytes, 40 + 10);
        assert_eq!(r.counters().resyncs, 0);
    }

    #[test]
    fn mid_stream_start_resyncs_on_a_start_line() {
        let a = message("INVITE", "a", "v=0\r\n");
        let b = "SIP/2.0 200 OK\r\nCall-ID: b\r\nl: 3\r\n\r\nabc".to_string();
        let stream = format!("{a}{b}");
        let bytes = stream.as_bytes();
        // Starts 20 bytes into a: a is lost, b is found.
        let mut r = TcpReassembler::new(TcpConfig::default());
        let got = feed(&mut r, &[(5000, ACK, bytes[20..].to_vec())]);
        assert_eq!(got, vec![b.clone()]);
        assert_eq!(r.counters().resyncs, 1);
        assert_eq!(r.counters().bytes_dropped, (a.len() - 20) as u64);
        // Starting exactly at a message boundary loses nothing.
        let mut r = TcpReassembler::new(TcpConfig::default());
        let got = feed(&mut r, &[(5000, ACK, bytes.to_vec())]);
        assert_eq!(got, vec![a, b]);
        assert_eq!(r.counters().resyncs, 0);
    }

    #[test]
    fn missing_content_length_is_an_empty_body_and_keepalives_are_skipped() {
        let stream = "\r\n\r\nOPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\n\r\n\r\n\r\nSIP/2.0 200 OK\nCall-ID: x\nContent-Length:  2 \n\nhi";
        let mut r = TcpReassembler::new(TcpConfig::default());
        let got = feed(&mut r, &[(0, ACK, stream.as_bytes().to_vec())]);
        assert_eq!(
            got,
            vec![
                "OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\n\r\n".to_string(),
                "SIP/2.0 200 OK\nCall-ID: x\nContent-Length:  2 \n\nhi".to_string()
            ]
        );
        assert_eq!(r.counters().bytes_dropped, 0);
    }

    #[test]
    fn oversized_message_is_dropped_and_the_next_one_found() {
        let cfg = TcpConfig {
            max_flow_bytes: 512,
            ..TcpConfig::default()
        };
        let big = message("MESSAGE", "big", &"x".repeat(2000));
        let small = message("BYE", "small", "");
        let stream = format!("{big}{small}");
        let bytes = stream.as_bytes();
        let mut r = TcpReassembler::new(cfg);
        let mut segments = vec![(0, SYN, vec![])];
        for (i, chunk) in bytes.chunks(100).enumerate() {
            segments.push((1 + 100 * i as u32, ACK, chunk.to_vec()));
        }
        let got = feed(&mut r, &segments);
        assert_eq!(got, vec![small]);
        assert_eq!(r.counters().oversized, 1);
        assert_eq!(r.counters().resyncs, 0);
        assert_eq!(r.counters().bytes_dropped, big.len() as u64);
        assert!(r.buffered_capacity() <= 2 * 512);
    }

    #[test]
    fn hole_too_large_is_given_up() {
        let a = message("INVITE", "a", "");
        let b = message("BYE", "b", "");
        let mut r = TcpReassembler::new(TcpConfig::default());
        let mut segments = vec![(0, SYN, vec![]), (1, ACK, a.as_bytes()[..10].to_vec())];
        // The rest of a never arrives; b comes 17 segments later, each ahead of the hole.
        let mut seq = 1 + a.len() as u32 + 1000;
        for _ in 0..MAX_PENDING_SEGMENTS {
            segments.push((seq, ACK, b"\r\n".to_vec()));
            seq += 2;
        }
        segments.push((seq, ACK, b.as_bytes().to_vec()));
        let got = feed(&mut r, &segments);
        assert_eq!(got, vec![b]);
        assert_eq!(r.counters().resyncs, 1);
        assert_eq!(r.counters().out_of_order, MAX_PENDING_SEGMENTS as u64);
    }

    #[test]
    fn fin_and_rst_close_and_syn_restarts() {
        let a = message("INVITE", "a", "");
        let mut r = TcpReassembler::new(TcpConfig::default());
        feed(
            &mut r,
            &[(0, SYN, vec![]), (1, ACK, a.as_bytes()[..10].to_vec())],
        );
        assert_eq!(r.flows(), 1);
        feed(&mut r, &[(11, ACK | flags::FIN, vec![])]);
        assert_eq!(r.flows(), 0);
        assert_eq!(r.counters().bytes_dropped, 10);
        feed(&mut r, &[(500, SYN, vec![]), (501, ACK, b"INV".to_vec())]);
        // A retransmitted SYN does not restart the direction.
        feed(&mut r, &[(500, SYN, vec![])]);
        assert_eq!(r.counters().bytes_dropped, 10);
        // A new SYN with another sequence number is a new connection.
        let got = feed(
            &mut r,
            &[(9000, SYN, vec![]), (9001, ACK, a.as_bytes().to_vec())],
        );
        assert_eq!(got, vec![a.clone()]);
        feed(&mut r, &[(0, flags::RST, vec![])]);
        assert_eq!(r.flows(), 0);
    }

    #[test]
    fn other_ports_only_when_sip_or_websocket_starts() {
        let mut r = TcpReassembler::new(TcpConfig::default());
        let mut seg = segment(1, ACK, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        seg.dst = "192.0.2.2:80".parse().unwrap();
        assert!(!r.on_segment(0, &seg, |_| {}));
        let tls = [0x16, 3, 1, 0, 5];
        seg.payload = &tls;
        assert!(!r.on_segment(0, &seg, |_| {}));
        let a = message("INVITE", "a", "");
        seg.payload = a.as_bytes();
        seg.dst = "192.0.2.2:5090".parse().unwrap();
        let mut got = 0;
        assert!(r.on_segment(0, &seg, |_| got += 1));
        assert_eq!(got, 1);
        // Later segments of that direction are tracked even when they start mid-message.
        seg.seq += a.len() as u32;
        seg.payload = &a.as_bytes()[..5];
        assert!(r.on_segment(0, &seg, |_| got += 1));
        assert_eq!(r.flows(), 1);
    }

    fn ws_frame_bytes(payload: &[u8], mask: Option<[u8; 4]>, opcode: u8, fin: bool) -> Vec<u8> {
        let mut f = vec![(u8::from(fin) << 7) | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n < 65536 => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if let Some(key) = mask {
            f.extend_from_slice(&key);
        }
        websocket::unmask_into(&mut f, payload, mask, 0);
        f
    }

    const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn websocket_masked_fragmented_and_pinged() {
        let a = message("INVITE", "ws-a", "v=0\r\n");
        let b = message("BYE", "ws-b", "");
        let key = Some([1, 2, 3, 4]);
        let mut stream = UPGRADE.as_bytes().to_vec();
        stream.extend(ws_frame_bytes(&a.as_bytes()[..30], key, 1, false));
        stream.extend(ws_frame_bytes(b"", key, 9, true)); // ping between fragments
        stream.extend(ws_frame_bytes(&a.as_bytes()[30..], key, 0, true));
        stream.extend(ws_frame_bytes(b.as_bytes(), key, 2, true));
        stream.extend(ws_frame_bytes(b"\r\n\r\n", key, 1, true)); // keep-alive
        let mut r = TcpReassembler::new(TcpConfig::default());
        let mut segments = vec![(0, SYN, vec![])];
        for (i, chunk) in stream.chunks(37).enumerate() {
            segments.push((1 + 37 * i as u32, ACK, chunk.to_vec()));
        }
        let got = feed(&mut r, &segments);
        assert_eq!(got, vec![a, b]);
        assert_eq!(r.counters().websocket_messages, 2);
        assert_eq!(r.counters().bytes_dropped, 0);
    }

    #[test]
    fn websocket_on_another_port_and_mid_stream_resync() {
        let a = message("INVITE", "ws-a", "");
        let b = message("BYE", "ws-b", "");
        let mut stream = UPGRADE.as_bytes().to_vec();
        let first = stream.len();
        stream.extend(ws_frame_bytes(a.as_bytes(), None, 1, true));
        let second = stream.len();
        stream.extend(ws_frame_bytes(b.as_bytes(), Some([9, 8, 7, 6]), 1, true));
        let mut r = TcpReassembler::new(TcpConfig::default());
        let mut out = Vec::new();
        let mut seg = segment(1, ACK, &stream[..first]);
        seg.dst = "192.0.2.2:8080".parse().unwrap();
        assert!(r.on_segment(0, &seg, |m| out.push(m.to_vec())));
        seg.seq = 1 + first as u32;
        seg.payload = &stream[first..];
        assert!(r.on_segment(0, &seg, |m| out.push(m.to_vec())));
        assert_eq!(out, vec![a.as_bytes().to_vec(), b.as_bytes().to_vec()]);
        // Mid-stream on a SIP port: found at the second frame (masked).
        let mut r = TcpReassembler::new(TcpConfig::default());
        let mut out = Vec::new();
        let seg = segment(7, ACK, &stream[first + 5..]);
        assert!(r.on_segment(0, &seg, |m| out.push(m.to_vec())));
        assert_eq!(out, vec![b.as_bytes().to_vec()]);
        assert_eq!(r.counters().resyncs, 1);
        assert_eq!(r.counters().bytes_dropped, (second - first - 5) as u64);
    }

    #[test]
    fn websocket_resyncs_on_the_next_frame_after_a_lost_one() {
        let (a, b, c) = (
            message("INVITE", "a", ""),
            message("ACK", "b", ""),
            message("BYE", "c", ""),
        );
        let key = Some([5, 6, 7, 8]);
        let mut stream = UPGRADE.as_bytes().to_vec();
        stream.extend(ws_frame_bytes(a.as_bytes(), key, 1, true));
        let b_at = stream.len();
        stream.extend(ws_frame_bytes(b.as_bytes(), key, 1, true));
        let c_at = stream.len();
        stream.extend(ws_frame_bytes(c.as_bytes(), key, 1, true));
        let mut r = TcpReassembler::new(TcpConfig::default());
        let mut out = Vec::new();
        r.on_segment(0, &segment(0, SYN, b""), |_| {});
        r.on_segment(1, &segment(1, ACK, &stream[..b_at + 10]), |m| {
            out.push(m.to_vec())
        });
        // b's frame is cut by the snap length; c arrives whole.
        let mut cut = segment(1 + b_at as u32 + 10, ACK, &stream[b_at + 10..b_at + 20]);
        cut.truncated = true;
        r.on_segment(2, &cut, |m| out.push(m.to_vec()));
        r.on_segment(3, &segment(1 + c_at as u32, ACK, &stream[c_at..]), |m| {
            out.push(m.to_vec())
        });
        assert_eq!(out, vec![a.as_bytes().to_vec(), c.as_bytes().to_vec()]);
        assert_eq!(r.counters().websocket_messages, 2);
        assert_eq!(r.counters().resyncs, 1);
    }

    #[test]
    fn flow_and_memory_caps_evict_oldest() {
        let cfg = TcpConfig {
            max_flows: 4,
            max_total_bytes: 4096,
            max_flow_bytes: 2048,
            ..TcpConfig::default()
        };
        let mut r = TcpReassembler::new(cfg);
        let partial = message("MESSAGE", "p", &"y".repeat(1500));
        for i in 0..10u16 {
            let mut seg = segment(1, ACK, &partial.as_bytes()[..1400]);
            seg.src = format!("192.0.2.1:{}", 10_000 + i).parse().unwrap();
            r.on_segment(i64::from(i), &seg, |_| {});
            assert!(r.flows() <= 4);
            assert!(
                r.buffered_capacity() <= 4096 + 2048,
                "{}",
                r.buffered_capacity()
            );
        }
        assert_eq!(r.counters().evicted, 8, "two directions of 2 KiB fit 4 KiB");
        r.sweep(10 + 300_000_000_000);
        assert_eq!(r.flows(), 0);
        assert_eq!(r.buffered_capacity(), 0);
    }

    #[test]
    fn a_segment_cut_by_the_snap_length_does_not_stall_the_stream() {
        let a = message("INVITE", "a", &"s".repeat(300));
        let b = message("BYE", "b", "");
        let mut r = TcpReassembler::new(TcpConfig::default());
        let mut out = Vec::new();
        r.on_segment(0, &segment(0, SYN, b""), |_| {});
        // a is 400+ bytes on the wire, only 100 captured.
        let mut cut = segment(1, ACK, &a.as_bytes()[..100]);
        cut.truncated = true;
        r.on_segment(1, &cut, |m| out.push(m.to_vec()));
        let next = 1 + a.len() as u32;
        r.on_segment(2, &segment(next, ACK, b.as_bytes()), |m| {
            out.push(m.to_vec())
        });
        assert_eq!(out, vec![b.as_bytes().to_vec()]);
        assert_eq!(r.counters().resyncs, 1);
        assert_eq!(r.counters().out_of_order, 0);
        assert_eq!(r.counters().bytes_dropped, 100);
    }

    #[test]
    fn eviction_spares_directions_active_since_they_started() {
        let cfg = TcpConfig {
            max_flows: 3,
            ..TcpConfig::default()
        };
        let mut r = TcpReassembler::new(cfg);
        let port = |p: u16| -> SocketAddr { format!("192.0.2.1:{p}").parse().unwrap() };
        let partial = b"INVITE sip:a SIP/2.0\r\nCall-ID: x\r\n";
        let feed_from = |r: &mut TcpReassembler, p: u16, ts: i64, seq: u32| {
            let mut seg = segment(seq, ACK, &partial[..]);
            seg.src = port(p);
            r.on_segment(ts, &seg, |_| {});
        };
        feed_from(&mut r, 1, 0, 0);
        feed_from(&mut r, 2, 1, 0);
        feed_from(&mut r, 3, 2, 0);
        // Direction 1 is active again: 2 is now the least recently active.
        feed_from(&mut r, 1, 3, partial.len() as u32);
        feed_from(&mut r, 4, 4, 0);
        assert_eq!(r.counters().evicted, 1);
        // 2 is gone (its next segment starts a new direction), 1 is kept.
        let before = r.counters().connections;
        feed_from(&mut r, 1, 5, 2 * partial.len() as u32);
        assert_eq!(r.counters().connections, before);
        feed_from(&mut r, 2, 6, partial.len() as u32);
        assert_eq!(r.counters().connections, before + 1);
    }

    #[test]
    fn sequence_wraps() {
        let a = message("INVITE", "wrap", "0123456789");
        let mut r = TcpReassembler::new(TcpConfig::default());
        let isn = u32::MAX - 20;
        let got = feed(
            &mut r,
            &[
                (isn, SYN, vec![]),
                (isn.wrapping_add(1 + 30), ACK, a.as_bytes()[30..].to_vec()),
                (isn.wrapping_add(1), ACK, a.as_bytes()[..30].to_vec()),
            ],
        );
        assert_eq!(got, vec![a]);
    }

    fn call_messages() -> Vec<String> {
        vec![
            message(
                "INVITE",
                "p1",
                "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n",
            ),
            "SIP/2.0 100 Trying\r\nCall-ID: p1\r\nl: 0\r\n\r\n".to_string(),
            message("ACK", "p1", ""),
            message("BYE", "p1", ""),
            "SIP/2.0 200 OK\r\ni: p1\r\n\r\n".to_string(),
        ]
    }

    proptest! {
        /// Any segmentation, delivered in any order within the holding bound, with duplicates,
        /// gives back exactly the messages.
        #[test]
        fn random_segmentation_order_and_duplicates(
            cuts in proptest::collection::vec(1usize..400, 1..12),
            swaps in proptest::collection::vec((0usize..16, 0usize..16), 0..6),
            dups in proptest::collection::vec(0usize..16, 0..4),
            isn in any::<u32>(),
            keepalive in any::<bool>(),
        ) {
            let messages = call_messages();
            let sep = if keepalive { "\r\n\r\n" } else { "" };
            let stream = messages.iter().map(|m| format!("{sep}{m}")).collect::<String>();
            let bytes = stream.as_bytes();
            let mut bounds = vec![0usize];
            for c in cuts {
                let next = (bounds.last().unwrap() + c).min(bytes.len());
                if next > *bounds.last().unwrap() { bounds.push(next); }
            }
            if *bounds.last().unwrap() < bytes.len() { bounds.push(bytes.len()); }
            let mut segs: Vec<(u32, u8, Vec<u8>)> = bounds
                .windows(2)
                .map(|w| (isn.wrapping_add(1 + w[0] as u32), ACK, bytes[w[0]..w[1]].to_vec()))
                .collect();
            let n = segs.len();
            for (a, b) in swaps { segs.swap(a % n, b % n); }
            for d in dups { let s = segs[d % n].clone(); segs.insert((d * 7) % (segs.len() + 1), s); }
            segs.insert(0, (isn, SYN, vec![]));
            let mut r = TcpReassembler::new(TcpConfig::default());
            let got = feed(&mut r, &segs);
            prop_assert_eq!(got, messages);
            prop_assert_eq!(r.counters().bytes_dropped, 0);
        }

        /// Hostile segments never push the buffers past their caps, and never panic.
        #[test]
        fn hostile_input_respects_caps(
            segs in proptest::collection::vec((0u16..8, any::<u32>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)), 1..60),
            text in proptest::collection::vec(prop::sample::select(vec![
                &b"INVITE sip:a SIP/2.0\r\n"[..], b"Content-Length: 99\r\n", b"l: 7\r\n", b"\r\n",
                b"\r\n\r\n", b"SIP/2.0 200 OK\r\n", b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: sip\r\n\r\n",
                &[0x81, 0x7e, 0xff, 0xff], &[0x82, 0x85, 1, 2, 3, 4], &[0x81, 0x7f, 0, 0, 0, 1, 0, 0, 0, 0],
            ]), 0..40),
        ) {
            let cfg = TcpConfig { max_flows: 3, max_total_bytes: 8192, max_flow_bytes: 1024, ..TcpConfig::default() };
            let mut r = TcpReassembler::new(cfg);
            let text: Vec<u8> = text.concat();
            let mut next = 0u32;
            for (i, (port, seq, flag, mut payload)) in segs.into_iter().enumerate() {
                if i % 2 == 0 { payload.extend_from_slice(&text[..text.len().min(400)]); }
                let seq = if flag & 0x40 != 0 { next } else { seq };
                next = seq.wrapping_add(payload.len() as u32);
                let mut seg = segment(seq, flag & 0x1f, &payload);
                seg.src = format!("192.0.2.1:{}", 5060 + port).parse().unwrap();
                r.on_segment(i as i64, &seg, |m| assert!(m.len() <= 1024));
                prop_assert!(r.flows() <= 3);
                // One direction may exceed the total while it is fed; never more than that.
                prop_assert!(r.buffered_capacity() <= 8192 + 3 * 1024);
            }
        }
    }
}
