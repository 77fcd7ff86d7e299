//! IPv4 and IPv6 fragment reassembly (RFC 791, RFC 8200 §4.5), bounded and hostile-input safe.
//!
//! Fragments come in as [`Fragment`] views from `decode` and are keyed by (source,
//! destination, protocol, identification, VLAN). A datagram is handed back, as its reassembled
//! IP payload, once its last fragment has arrived and every octet up to its end is held, in
//! whatever order the fragments came. Every datagram ends in exactly one counter of
//! [`IpReassembly`]: reassembled, or refused (overlapping, inconsistent, too big), evicted,
//! timed out or incomplete at the end.
//!
//! Rules, as Linux applies them since FragmentSmack: fragments that overlap are refused and
//! the whole datagram with them (RFC 5722 for IPv6, IPv4 alike), except an exact repeat of
//! bytes already held, which is ignored and counted as a duplicate. A refused datagram leaves a
//! marker that swallows its later fragments until the timeout, so they do not start a new
//! datagram that would only time out (one datagram, one counter).
//!
//! Bounds: octets per datagram (an offset plus length beyond 65,535, what an IP length field
//! can say, is refused), separate pieces per datagram, concurrent datagrams and total buffered
//! bytes (the oldest datagram is evicted to make room), and a timeout in packet time counted
//! from a datagram's first fragment. Buffers come from a small pool and go back to it, so
//! steady-state reassembly does not allocate. This module must not read a clock, parse what it
//! reassembles (that is `decode::frame::reassembled_datagram`'s job), or panic on any input.

use std::net::IpAddr;

use hashbrown::HashMap;
use voqa_wire::IpReassembly;

use crate::decode::Fragment;

/// The highest end (offset plus length) a fragment may have: IP length fields are 16 bits.
pub const MAX_IP_PAYLOAD: usize = 65_535;

/// Separate received pieces one datagram may be in at once (pieces that touch are merged, so an
/// in-order datagram is always one piece). A 64 KiB datagram at MTU 1500 is 45 fragments.
pub const MAX_PIECES: usize = 64;

/// Buffers kept for reuse once their datagram is done.
const POOL_KEEP: usize = 8;

/// Limits of the reassembler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Most octets one datagram's reassembled IP payload may have (at most 65,535).
    pub max_datagram_bytes: usize,
    /// Most datagrams being reassembled at once (refused ones waiting for their timeout
    /// included).
    pub max_datagrams: usize,
    /// Most buffer bytes (capacity) held by datagrams being reassembled. Raised to
    /// `max_datagram_bytes` if below it, so one datagram always fits.
    pub max_total_bytes: usize,
    /// A datagram not complete this long (packet time) after its first fragment is dropped.
    pub timeout_ns: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_datagram_bytes: MAX_IP_PAYLOAD,
            // Fragmented datagrams are rare (a large INVITE now and then); this is room for
            // bursts, not a working set.
            max_datagrams: 1024,
            // Linux's ipfrag_high_thresh default.
            max_total_bytes: 4 << 20,
            // The fragments of a datagram leave their sender back to back; 5 s covers any
            // reordering a capture point sees, while keeping the memory a lost fragment's
            // siblings pin, and the chance that IPv4's 16-bit identification wraps onto a
            // stale datagram, smaller than Linux's 30 s ipfrag_time would.
            timeout_ns: 5_000_000_000,
        }
    }
}

/// Which datagram a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 protocol, or the IPv6 fragment header's next header.
    pub protocol: u8,
    /// IPv4's 16-bit or IPv6's 32-bit identification.
    pub id: u32,
    /// Outermost VLAN: the same private addresses on two VLANs are two hosts.
    pub vlan: Option<u16>,
}

impl Key {
    pub fn of(fragment: &Fragment<'_>) -> Self {
        Key {
            src: fragment.src,
            dst: fragment.dst,
            protocol: fragment.protocol,
            id: fragment.id,
            vlan: fragment.vlan,
        }
    }
}

/// A completed datagram: its key and reassembled IP payload. Give `data` back with
/// [`Reassembler::recycle`] once it has been decoded, so its buffer is reused.
#[derive(Debug)]
pub struct Reassembled {
    pub key: Key,
    pub data: Vec<u8>,
}

/// Why a datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Overlapping,
    Inconsistent,
    TooBig,
}

/// A datagram being collected.
#[derive(Debug)]
struct Collecting {
    /// The reassembled payload so far, as long as the highest end received; octets not yet
    /// received are zero (and never handed out: completion needs every octet).
    data: Vec<u8>,
    /// Received ranges `[start, end)`, sorted, disjoint and not touching (touching ones merge).
    pieces: [(u32, u32); MAX_PIECES],
    piece_count: usize,
    /// The end of the datagram, known once the last fragment (MF/M = 0) arrived.
    total: Option<u32>,
}

impl Collecting {
    fn pieces(&self) -> &[(u32, u32)] {
        self.pieces.get(..self.piece_count).unwrap_or(&[])
    }

    fn highest_end(&self) -> u32 {
        self.pieces().last().map_or(0, |&(_, end)| end)
    }

    fn is_complete(&self) -> bool {
        self.total
            .is_some_and(|total| self.pieces() == [(0, total)])
    }

    /// Adds `[start, end)`, known not to overlap any piece, merging with the pieces it touches.
    /// False when that would need more than [`MAX_PIECES`] pieces.
    fn add_piece(&mut self, start: u32, end: u32) -> bool {
        let count = self.piece_count;
        let pieces = &mut self.pieces;
        // First piece that lies after the new one.
        let at = pieces
            .get(..count)
            .map_or(0, |p| p.partition_point(|&(s, _)| s < start));
        let joins_before = at > 0 && pieces.get(at - 1).is_some_and(|&(_, e)| e == start);
        let joins_after = at < count && pieces.get(at).is_some_and(|&(s, _)| s == end);
        match (joins_before, joins_after) {
            (true, true) => {
                // Bridges two pieces: the earlier one absorbs both.
                let after_end = pieces.get(at).map_or(end, |&(_, e)| e);
                if let Some(before) = pieces.get_mut(at - 1) {
                    before.1 = after_end;
                }
                pieces.copy_within(at + 1..count, at);
                self.piece_count = count - 1;
            }
            (true, false) => {
                if let Some(before) = pieces.get_mut(at - 1) {
                    before.1 = end;
                }
            }
            (false, true) => {
                if let Some(after) = pieces.get_mut(at) {
                    after.0 = start;
                }
            }
            (false, false) => {
                if count >= MAX_PIECES {
                    return false;
                }
                pieces.copy_within(at..count, at + 1);
                if let Some(slot) = pieces.get_mut(at) {
                    *slot = (start, end);
                }
                self.piece_count = count + 1;
            }
        }
        true
    }
}

#[derive(Debug)]
enum State {
    Collecting(Box<Collecting>),
    /// Refused: later fragments are swallowed until the timeout.
    Refused,
}

#[derive(Debug)]
struct Pending {
    key: Key,
    /// Packet time of the first fragment (the timeout counts from it).
    first_ns: i64,
    /// Creation order, to evict the oldest.
    serial: u64,
    state: State,
}

/// The reassembler: bounded table of datagrams being collected.
#[derive(Debug)]
pub struct Reassembler {
    cfg: Config,
    /// Slab of datagrams; `None` slots are free (listed in `free`). Indexes are stable, so an
    /// eviction never moves the datagram being worked on.
    slots: Vec<Option<Pending>>,
    free: Vec<u32>,
    index: HashMap<Key, u32, foldhash::fast::RandomState>,
    /// Capacity of the buffers held by collecting datagrams.
    buffered: usize,
    /// Reused `Collecting` states (their data buffer and piece table).
    pool: Vec<Box<Collecting>>,
    serial: u64,
}

impl Reassembler {
    /// A reassembler with `cfg`'s limits. Allocates nothing until the first fragment.
    pub fn new(cfg: Config) -> Self {
        let max_datagram_bytes = cfg.max_datagram_bytes.min(MAX_IP_PAYLOAD);
        Reassembler {
            cfg: Config {
                max_datagram_bytes,
                max_datagrams: cfg.max_datagrams.max(1),
                max_total_bytes: cfg.max_total_bytes.max(max_datagram_bytes),
                timeout_ns: cfg.timeout_ns.max(0),
            },
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::default(),
            buffered: 0,
            pool: Vec::new(),
            serial: 0,
        }
    }

    /// The limits in force (after the adjustments of [`Reassembler::new`]).
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// True when no datagram is pending (the per-packet sweep test).
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Datagrams pending (being collected or refused and waiting for their timeout).
    pub fn pending(&self) -> usize {
        self.index.len()
    }

    /// Buffer bytes held by datagrams being collected.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Adds one fragment seen at packet time `now_ns`. Returns the datagram it completes, if
    /// any; refusals, duplicates and evictions are counted in `counters`.
    pub fn insert(
        &mut self,
        now_ns: i64,
        fragment: &Fragment<'_>,
        counters: &mut IpReassembly,
    ) -> Option<Reassembled> {
        let key = Key::of(fragment);
        let existing = self.index.get(&key).copied();
        if let Some(slot) = existing
            && matches!(
                self.pending_at(slot).map(|p| &p.state),
                Some(State::Refused)
            )
        {
            return None;
        }
        let len = fragment.payload.len();
        let start = fragment.offset as usize;
        let end = start.saturating_add(len);
        let refusal = if end > self.cfg.max_datagram_bytes {
            Some(Refusal::TooBig)
        } else if len == 0 || (fragment.more && len % 8 != 0) || start % 8 != 0 {
            // RFC 8200 §4.5: a non-last fragment's length is a multiple of 8 octets.
            Some(Refusal::Inconsistent)
        } else {
            None
        };
        let slot = match existing {
            Some(slot) => slot,
            None => self.create(key, now_ns, counters)?,
        };
        if let Some(refusal) = refusal {
            self.refuse(slot, refusal, counters);
            return None;
        }
        // Both fit in u32: end <= max_datagram_bytes <= 65,535.
        let (start32, end32) = (start as u32, end as u32);
        match self.check(slot, start32, end32, fragment) {
            Check::Refuse(refusal) => {
                self.refuse(slot, refusal, counters);
                return None;
            }
            Check::Duplicate => {
                counters.duplicates += 1;
                return None;
            }
            Check::Fits => {}
        }
        if !self.make_room(slot, end, counters) {
            self.refuse(slot, Refusal::TooBig, counters);
            return None;
        }
        let collecting = match self.pending_at_mut(slot).map(|p| &mut p.state) {
            Some(State::Collecting(c)) => c,
            _ => return None,
        };
        if collecting.data.len() < end {
            // Within the capacity `make_room` reserved: no allocation, no change to `buffered`.
            collecting.data.resize(end, 0);
        }
        if let Some(target) = collecting.data.get_mut(start..end) {
            target.copy_from_slice(fragment.payload);
        }
        if !fragment.more {
            collecting.total = Some(end32);
        }
        let added = collecting.add_piece(start32, end32);
        let complete = collecting.is_complete();
        if !added {
            self.refuse(slot, Refusal::TooBig, counters);
            return None;
        }
        if !complete {
            return None;
        }
        let pending = self.remove(slot)?;
        let State::Collecting(mut collecting) = pending.state else {
            return None;
        };
        self.buffered -= collecting.data.capacity();
        counters.reassembled += 1;
        let data = std::mem::take(&mut collecting.data);
        self.keep(collecting);
        Some(Reassembled {
            key: pending.key,
            data,
        })
    }

    /// Gives a completed datagram's buffer back for reuse.
    pub fn recycle(&mut self, mut data: Vec<u8>) {
        if let Some(spare) = self.pool.iter_mut().find(|c| c.data.capacity() == 0) {
            data.clear();
            spare.data = data;
        }
    }

    /// Drops every datagram whose first fragment is older than the timeout at `now_ns`;
    /// those still collecting count as timed out.
    pub fn sweep(&mut self, now_ns: i64, counters: &mut IpReassembly) {
        if self.index.is_empty() {
            return;
        }
        let timeout = self.cfg.timeout_ns;
        for slot in 0..self.slots.len() {
            let expired = self
                .slots
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|p| now_ns.saturating_sub(p.first_ns) >= timeout);
            if expired && self.discard(slot as u32) {
                counters.timed_out += 1;
            }
        }
    }

    /// The end of the capture: datagrams still collecting count as incomplete; all are dropped.
    pub fn finish(&mut self, counters: &mut IpReassembly) {
        for slot in 0..self.slots.len() {
            if self.discard(slot as u32) {
                counters.incomplete += 1;
            }
        }
    }

    /// Checks of a new fragment `[start, end)` against what the datagram already holds.
    fn check(&self, slot: u32, start: u32, end: u32, fragment: &Fragment<'_>) -> Check {
        let Some(State::Collecting(c)) = self.pending_at(slot).map(|p| &p.state) else {
            return Check::Refuse(Refusal::Inconsistent);
        };
        if let Some(total) = c.total {
            let consistent = if fragment.more {
                end <= total
            } else {
                end == total
            };
            if !consistent {
                return Check::Refuse(Refusal::Inconsistent);
            }
        } else if !fragment.more && c.highest_end() > end {
            // A last fragment ending before data already received.
            return Check::Refuse(Refusal::Inconsistent);
        }
        // Pieces are sorted and disjoint: only the ones around `start` can intersect.
        let pieces = c.pieces();
        let first = pieces.partition_point(|&(_, e)| e <= start);
        match pieces.get(first) {
            Some(&(s, e)) if s < end => {
                let held = c.data.get(start as usize..end as usize);
                if s <= start && end <= e && held == Some(fragment.payload) {
                    Check::Duplicate
                } else {
                    Check::Refuse(Refusal::Overlapping)
                }
            }
            _ => Check::Fits,
        }
    }

    /// Ensures the datagram in `slot` can grow its buffer to `end` octets within the total
    /// memory limit, evicting the oldest other datagrams if needed.
    fn make_room(&mut self, slot: u32, end: usize, counters: &mut IpReassembly) -> bool {
        let capacity = match self.pending_at(slot).map(|p| &p.state) {
            Some(State::Collecting(c)) => c.data.capacity(),
            _ => return false,
        };
        let growth = end.saturating_sub(capacity);
        while self.buffered + growth > self.cfg.max_total_bytes {
            let Some(oldest) = self.oldest(Some(slot), true) else {
                return false;
            };
            if self.discard(oldest) {
                counters.evicted += 1;
            }
        }
        if growth > 0
            && let Some(State::Collecting(c)) = self.pending_at_mut(slot).map(|p| &mut p.state)
        {
            // Exactly what is needed, so the memory limit holds for capacity, not just length.
            c.data.reserve_exact(end - c.data.len());
            let grown = c.data.capacity();
            self.buffered = self.buffered - capacity + grown;
        }
        true
    }

    /// A new datagram in a free slot, evicting the oldest one when the table is full.
    fn create(&mut self, key: Key, now_ns: i64, counters: &mut IpReassembly) -> Option<u32> {
        while self.index.len() >= self.cfg.max_datagrams {
            let oldest = self.oldest(None, false)?;
            if self.discard(oldest) {
                counters.evicted += 1;
            }
        }
        let mut collecting = self.pool.pop().unwrap_or_else(|| {
            Box::new(Collecting {
                data: Vec::new(),
                pieces: [(0, 0); MAX_PIECES],
                piece_count: 0,
                total: None,
            })
        });
        collecting.data.clear();
        collecting.piece_count = 0;
        collecting.total = None;
        self.buffered += collecting.data.capacity();
        self.serial += 1;
        let pending = Pending {
            key,
            first_ns: now_ns,
            serial: self.serial,
            state: State::Collecting(collecting),
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(place) = self.slots.get_mut(slot as usize) {
                    *place = Some(pending);
                }
                slot
            }
            None => {
                self.slots.push(Some(pending));
                u32::try_from(self.slots.len() - 1).ok()?
            }
        };
        self.index.insert(key, slot);
        Some(slot)
    }

    /// Refuses the datagram in `slot`: its buffer goes back to the pool and a marker stays to
    /// swallow its later fragments.
    fn refuse(&mut self, slot: u32, refusal: Refusal, counters: &mut IpReassembly) {
        let Some(pending) = self.pending_at_mut(slot) else {
            return;
        };
        let State::Collecting(collecting) = std::mem::replace(&mut pending.state, State::Refused)
        else {
            return;
        };
        self.buffered -= collecting.data.capacity();
        self.keep(collecting);
        match refusal {
            Refusal::Overlapping => counters.overlapping += 1,
            Refusal::Inconsistent => counters.inconsistent += 1,
            Refusal::TooBig => counters.too_big += 1,
        }
    }

    /// Removes the datagram in `slot`; true when it was still collecting (a loss to count).
    fn discard(&mut self, slot: u32) -> bool {
        let Some(pending) = self.remove(slot) else {
            return false;
        };
        match pending.state {
            State::Collecting(collecting) => {
                self.buffered -= collecting.data.capacity();
                self.keep(collecting);
                true
            }
            State::Refused => false,
        }
    }

    fn remove(&mut self, slot: u32) -> Option<Pending> {
        let pending = self.slots.get_mut(slot as usize)?.take()?;
        self.index.remove(&pending.key);
        self.free.push(slot);
        Some(pending)
    }

    /// The oldest pending datagram other than `except`; with `collecting_only`, only those
    /// holding a buffer (evicting a refused marker frees no memory).
    fn oldest(&self, except: Option<u32>, collecting_only: bool) -> Option<u32> {
        self.slots
            .iter()
            .enumerate()
            .filter(|&(slot, _)| Some(slot as u32) != except)
            .filter_map(|(slot, p)| p.as_ref().map(|p| (slot, p)))
            .filter(|(_, p)| !collecting_only || matches!(p.state, State::Collecting(_)))
            .min_by_key(|(_, p)| p.serial)
            .map(|(slot, _)| slot as u32)
    }

    /// Keeps a finished datagram's state for reuse, up to [`POOL_KEEP`].
    fn keep(&mut self, mut collecting: Box<Collecting>) {
        if self.pool.len() < POOL_KEEP {
            collecting.data.clear();
            self.pool.push(collecting);
        }
    }

    fn pending_at(&self, slot: u32) -> Option<&Pending> {
        self.slots.get(slot as usize)?.as_ref()
    }

    fn pending_at_mut(&mut self, slot: u32) -> Option<&mut Pending> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }
}

enum Check {
    Fits,
    Duplicate,
    Refuse(Refusal),
}
