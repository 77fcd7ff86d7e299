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
//! steady-state reassembly does not allocate. Beyond `max_total_bytes` of buffers, memory is
//! at most about 0.6 KiB of bookkeeping per pending datagram and the pooled buffers (at most
//! 8 of at most 64 KiB). This module must not read a clock, parse what it
//! reassembles (that is `decode::frame::reassembled_datagram`'s job), or panic on any input.

use std::net::IpAddr;

use hashbrown::HashMap;
/// The reassembly counters (the `ip_reassembly` object of `analyze`'s file summaries).
pub use voqa_wire::IpReassembly;

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
    /// Reused `Collecting` states (their data buffer and piece table). Boxed: a state moves
    /// between the pool and a slot as a pointer, not as its 0.5 KiB piece table.
    #[allow(clippy::vec_box)]
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
                // Slots are indexed by u32; a million pending datagrams is already absurd.
                max_datagrams: cfg.max_datagrams.clamp(1, 1 << 20),
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

    /// Datagrams started so far. Once [`Reassembler::finish`] has run, each has ended in
    /// exactly one outcome counter of [`IpReassembly`] (the accounting the tests check).
    pub fn started(&self) -> u64 {
        self.serial
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
        } else if len == 0 || (fragment.more && !len.is_multiple_of(8)) || !start.is_multiple_of(8)
        {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;

    const SEC: i64 = 1_000_000_000;

    fn fragment(id: u32, offset: usize, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment {
            src: Ipv4Addr::new(10, 0, 0, 1).into(),
            dst: Ipv4Addr::new(10, 0, 0, 2).into(),
            id,
            offset: offset as u32,
            more,
            protocol: 17,
            payload: data,
            vlan: None,
            ipv6_header: None,
        }
    }

    /// `(offset, more, bytes)` pieces of `datagram`, `chunk` octets each (the last shorter):
    /// written independently of the reassembler.
    fn split(datagram: &[u8], chunk: usize) -> Vec<(usize, bool, Vec<u8>)> {
        let count = datagram.len().div_ceil(chunk);
        datagram
            .chunks(chunk)
            .enumerate()
            .map(|(i, c)| (i * chunk, i + 1 < count, c.to_vec()))
            .collect()
    }

    fn datagram(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// Feeds `pieces` in the given order; returns what completed (at most one expected).
    fn feed(
        r: &mut Reassembler,
        counters: &mut IpReassembly,
        id: u32,
        pieces: &[(usize, bool, Vec<u8>)],
    ) -> Vec<Vec<u8>> {
        let mut done = Vec::new();
        for (offset, more, bytes) in pieces {
            if let Some(whole) = r.insert(0, &fragment(id, *offset, *more, bytes), counters) {
                assert_eq!(whole.key.id, id);
                done.push(whole.data.clone());
                r.recycle(whole.data);
            }
        }
        done
    }

    fn reassembler() -> Reassembler {
        Reassembler::new(Config::default())
    }

    #[test]
    fn in_order_reverse_and_shuffled_arrival_reassemble() {
        let original = datagram(1000);
        let pieces = split(&original, 400);
        assert_eq!(pieces.len(), 3);
        let mut reversed = pieces.clone();
        reversed.reverse();
        let middle_first = vec![pieces[1].clone(), pieces[2].clone(), pieces[0].clone()];
        for order in [pieces, reversed, middle_first] {
            let mut r = reassembler();
            let mut c = IpReassembly::default();
            assert_eq!(feed(&mut r, &mut c, 7, &order), vec![original.clone()]);
            assert_eq!(c.reassembled, 1);
            assert_eq!(
                c,
                IpReassembly {
                    reassembled: 1,
                    ..IpReassembly::default()
                }
            );
            assert!(r.is_empty());
            assert_eq!(r.buffered_bytes(), 0);
        }
    }

    #[test]
    fn completes_only_with_the_last_octet() {
        let original = datagram(100);
        let pieces = split(&original, 48);
        let mut r = reassembler();
        let mut c = IpReassembly::default();
        // The last fragment alone, then the first: a hole remains, nothing completes.
        assert!(feed(&mut r, &mut c, 1, &[pieces[2].clone(), pieces[0].clone()]).is_empty());
        assert_eq!(r.pending(), 1);
        assert_eq!(
            feed(&mut r, &mut c, 1, &[pieces[1].clone()]),
            vec![original]
        );
    }

    #[test]
    fn interleaved_datagrams_stay_apart() {
        let a = datagram(300);
        let b: Vec<u8> = datagram(250).iter().map(|x| !x).collect();
        let pa = split(&a, 96);
        let pb = split(&b, 96);
        let mut r = reassembler();
        let mut c = IpReassembly::default();
        let mut done = Vec::new();
        for i in (0..4).rev() {
            for (id, pieces) in [(1, &pa), (2, &pb)] {
                if let Some((offset, more, bytes)) = pieces.get(i)
                    && let Some(whole) = r.insert(0, &fragment(id, *offset, *more, bytes), &mut c)
                {
                    done.push((whole.key.id, whole.data));
                }
            }
        }
        done.sort();
        assert_eq!(done, vec![(1, a), (2, b)]);
        assert_eq!(c.reassembled, 2);
        // Same id from another source is another datagram.
        let mut other = fragment(1, 0, true, &[0; 8]);
        other.src = Ipv4Addr::new(10, 0, 0, 3).into();
        assert!(r.insert(0, &other, &mut c).is_none());
        assert_eq!(r.pending(), 1);
    }

    #[test]
    fn overlap_refuses_the_datagram_and_swallows_its_rest() {
        let original = datagram(200);
        let mut r = reassembler();
        let mut c = IpReassembly::default();
        assert!(
            r.insert(0, &fragment(9, 0, true, &original[..64]), &mut c)
                .is_none()
        );
        // Starts inside the first fragment (RFC 1858's overlap attack).
        assert!(
            r.insert(0, &fragment(9, 56, true, &original[56..128]), &mut c)
                .is_none()
        );
        assert_eq!(c.overlapping, 1);
        assert_eq!(r.buffered_bytes(), 0, "a refused datagram holds no buffer");
        // The rest of it arrives: swallowed, nothing completes, nothing else counted.
        assert!(
            r.insert(0, &fragment(9, 64, true, &original[64..128]), &mut c)
                .is_none()
        );
        assert!(
            r.insert(0, &fragment(9, 128, false, &original[128..]), &mut c)
                .is_none()
        );
        assert_eq!(
            c,
            IpReassembly {
                overlapping: 1,
                ..IpReassembly::default()
            }
        );
        // The marker leaves at the timeout without counting as a timeout.
        r.sweep(5 * SEC, &mut c);
        assert!(r.is_empty());
        assert_eq!(
            c,
            IpReassembly {
                overlapping: 1,
                ..IpReassembly::default()
            }
        );
    }

    #[test]
    fn same_range_with_other_bytes_is_an_overlap_exact_repeat_a_duplicate() {
        let original = datagram(100);
        let pieces = split(&original, 48);
        let mut r = reassembler();
        let mut c = IpReassembly::default();
        let mut with_repeats = vec![pieces[0].clone(), pieces[0].clone(), pieces[2].clone()];
        with_repeats.extend([pieces[2].clone(), pieces[1].clone()]);
        assert_eq!(
            feed(&mut r, &mut c, 3, &with_repeats),
            vec![original.clone()]
        );
        assert_eq!(c.duplicates, 2);
        assert_eq!(c.reassembled, 1);
        // A repeat of part of what is held (another fragmentation of the same bytes) is harmless.
        let mut c = IpReassembly::default();
        let mut r = reassembler();
        assert!(feed(&mut r, &mut c, 4, &[pieces[0].clone()]).is_empty());
        assert!(
            r.insert(0, &fragment(4, 8, true, &original[8..24]), &mut c)
                .is_none()
        );
        assert_eq!(c.duplicates, 1);
        // Same range, one byte changed: an overlap.
        let mut changed = pieces[0].clone();
        changed.2[5] ^= 1;
        assert!(feed(&mut r, &mut c, 4, &[changed]).is_empty());
        assert_eq!(c.overlapping, 1);
        assert_eq!(c.reassembled, 0);
    }

    #[test]
    fn contradictions_are_inconsistent() {
        let data = [1u8; 64];
        type Case = Vec<(usize, bool, usize)>;
        let cases: [(&str, Case); 5] = [
            ("non-last fragment not a multiple of 8", vec![(0, true, 20)]),
            ("empty fragment", vec![(0, true, 16), (16, true, 0)]),
            ("two different ends", vec![(16, false, 16), (40, false, 8)]),
            (
                "last fragment before data held",
                vec![(32, true, 16), (0, false, 16)],
            ),
            ("data past the end", vec![(16, false, 16), (32, true, 16)]),
        ];
        for (what, fragments) in cases {
            let mut r = reassembler();
            let mut c = IpReassembly::default();
            for (offset, more, len) in fragments {
                assert!(
                    r.insert(0, &fragment(5, offset, more, &data[..len]), &mut c)
                        .is_none()
                );
            }
            assert_eq!(
                c,
                IpReassembly {
                    inconsistent: 1,
                    ..IpReassembly::default()
                },
                "{what}"
            );
        }
    }

    #[test]
    fn beyond_65535_octets_is_too_big() {
        let mut r = reassembler();
        let mut c = IpReassembly::default();
        // 65,528 + 8 = 65,536: one octet too many.
        assert!(
            r.insert(0, &fragment(1, 65_528, false, &[0; 8]), &mut c)
                .is_none()
        );
        assert_eq!(c.too_big, 1);
        assert_eq!(r.buffered_bytes(), 0);
        // 65,528 + 7 = 65,535 is the largest IP payload there is: accepted and held.
        assert!(
            r.insert(0, &fragment(2, 65_528, false, &[0; 7]), &mut c)
                .is_none()
        );
        assert_eq!(c.too_big, 1);
        assert_eq!(r.buffered_bytes(), 65_535);
        // A smaller per-datagram limit.
        let mut r = Reassembler::new(Config {
            max_datagram_bytes: 1500,
            ..Config::default()
        });
        assert!(
            r.insert(0, &fragment(1, 1496, false, &[0; 8]), &mut c)
                .is_none()
        );
        assert_eq!(c.too_big, 2);
    }

    #[test]
    fn more_than_max_pieces_is_too_big() {
        let mut r = reassembler();
        let mut c = IpReassembly::default();
        // Every other 8-octet block: pieces that never touch.
        for i in 0..MAX_PIECES {
            assert!(
                r.insert(0, &fragment(1, i * 16, true, &[0; 8]), &mut c)
                    .is_none()
            );
        }
        assert_eq!(c.too_big, 0);
        assert!(
            r.insert(0, &fragment(1, MAX_PIECES * 16, true, &[0; 8]), &mut c)
                .is_none()
        );
        assert_eq!(c.too_big, 1);
        // Filling holes merges pieces instead: 64 pieces plus 63 fillers complete fine.
        let original = datagram(8 * (2 * MAX_PIECES - 1));
        let pieces = split(&original, 8);
        let (even, odd): (Vec<_>, Vec<_>) = pieces
            .iter()
            .cloned()
            .enumerate()
            .partition(|(i, _)| i % 2 == 0);
        let order: Vec<_> = even.into_iter().chain(odd).map(|(_, p)| p).collect();
        let mut c = IpReassembly::default();
        assert_eq!(feed(&mut r, &mut c, 2, &order), vec![original]);
    }

    #[test]
    fn tiny_first_fragment_is_reassembled() {
        // A first fragment holding only the 8-octet UDP header, then the rest.
        let original = datagram(1208);
        let pieces = vec![
            (0, true, original[..8].to_vec()),
            (8, false, original[8..].to_vec()),
        ];
        let mut r = reassembler();
        let mut c = IpReassembly::default();
        assert_eq!(feed(&mut r, &mut c, 1, &pieces), vec![original]);
    }

    #[test]
    fn timeout_in_packet_time_from_the_first_fragment() {
        let original = datagram(100);
        let pieces = split(&original, 48);
        let mut r = reassembler();
        let mut c = IpReassembly::default();
        let (offset, more, bytes) = &pieces[0];
        assert!(
            r.insert(10 * SEC, &fragment(1, *offset, *more, bytes), &mut c)
                .is_none()
        );
        r.sweep(15 * SEC - 1, &mut c);
        assert_eq!(r.pending(), 1);
        r.sweep(15 * SEC, &mut c);
        assert!(r.is_empty());
        assert_eq!(
            c,
            IpReassembly {
                timed_out: 1,
                ..IpReassembly::default()
            }
        );
        // The rest, too late: a new datagram that never completes.
        assert!(feed(&mut r, &mut c, 1, &pieces[1..]).is_empty());
        r.finish(&mut c);
        assert_eq!(
            c,
            IpReassembly {
                timed_out: 1,
                incomplete: 1,
                ..IpReassembly::default()
            }
        );
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn table_full_evicts_the_oldest() {
        let mut r = Reassembler::new(Config {
            max_datagrams: 4,
            ..Config::default()
        });
        let mut c = IpReassembly::default();
        let original = datagram(100);
        let pieces = split(&original, 48);
        for id in 0..5 {
            assert!(feed(&mut r, &mut c, id, &pieces[..1]).is_empty());
        }
        assert_eq!(r.pending(), 4);
        assert_eq!(c.evicted, 1);
        // id 0 was evicted: its rest starts a new datagram (evicting id 1) and stays incomplete.
        assert!(feed(&mut r, &mut c, 0, &pieces[1..]).is_empty());
        assert_eq!(c.evicted, 2);
        // ids 2..4 are still there and complete.
        for id in 2..5 {
            assert_eq!(
                feed(&mut r, &mut c, id, &pieces[1..]),
                vec![original.clone()]
            );
        }
        assert_eq!(c.reassembled, 3);
    }

    #[test]
    fn memory_limit_evicts_the_oldest_and_holds() {
        let mut r = Reassembler::new(Config {
            max_total_bytes: 100_000,
            ..Config::default()
        });
        let mut c = IpReassembly::default();
        // Each datagram's last fragment at 40,000 makes it hold 40,008 octets.
        for id in 0..3 {
            assert!(
                r.insert(0, &fragment(id, 40_000, false, &[1; 8]), &mut c)
                    .is_none()
            );
            assert!(r.buffered_bytes() <= 100_000, "{}", r.buffered_bytes());
        }
        assert_eq!(c.evicted, 1);
        assert_eq!(r.pending(), 2);
        assert_eq!(r.buffered_bytes(), 80_016);
    }

    #[test]
    fn buffers_are_reused() {
        let original = datagram(3000);
        let pieces = split(&original, 1480);
        let mut r = reassembler();
        let mut c = IpReassembly::default();
        let mut first_ptr = None;
        for id in 0..3 {
            let mut done = None;
            for (offset, more, bytes) in &pieces {
                if let Some(whole) = r.insert(0, &fragment(id, *offset, *more, bytes), &mut c) {
                    done = Some(whole);
                }
            }
            let whole = done.unwrap();
            assert_eq!(whole.data, original);
            let ptr = whole.data.as_ptr();
            assert_eq!(
                *first_ptr.get_or_insert(ptr),
                ptr,
                "datagram {id} got a new buffer"
            );
            r.recycle(whole.data);
        }
    }

    #[derive(Debug, Clone)]
    struct Hostile {
        source: u8,
        id: u8,
        offset_units: u16,
        len: u16,
        more: bool,
        advance_ms: u16,
    }

    fn hostile() -> impl Strategy<Value = Hostile> {
        // Small offsets and 8-octet multiples often, so datagrams also complete and overlap.
        let offset_units = prop_oneof![0u16..16, 0u16..8192];
        let len = prop_oneof![(0u16..8).prop_map(|units| units * 8), 0u16..3000];
        (0u8..3, 0u8..6, offset_units, len, any::<bool>(), 0u16..2000).prop_map(
            |(source, id, offset_units, len, more, advance_ms)| Hostile {
                source,
                id,
                offset_units,
                len,
                more,
                advance_ms,
            },
        )
    }

    proptest! {
        /// Any fragmentation of any datagram, in any order, with repeats, reassembles to the
        /// original exactly once, when its last missing octet arrives.
        #[test]
        fn random_fragmentation_in_random_order_reassembles(
            len in 1usize..4000,
            chunk_units in 1usize..200,
            shuffle_seed in any::<u64>(),
            repeats in proptest::collection::vec(
                (any::<proptest::sample::Index>(), any::<proptest::sample::Index>()),
                0..4,
            ),
        ) {
            let original = datagram(len);
            // At most MAX_PIECES fragments, so the piece table cannot overflow.
            let chunk = (chunk_units * 8).max(len.div_ceil(MAX_PIECES).div_ceil(8) * 8);
            let mut pieces = split(&original, chunk);
            // Fisher-Yates with a small LCG: deterministic for a given seed.
            let mut state = shuffle_seed | 1;
            for i in (1..pieces.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                pieces.swap(i, (state >> 33) as usize % (i + 1));
            }
            // Repeats of any fragment but the one that completes, after their original and
            // before the end (one arriving after completion would start a new datagram).
            for (which, place) in &repeats {
                let n = pieces.len();
                if n < 2 {
                    break;
                }
                let source = which.index(n - 1);
                let at = source + 1 + place.index(n - 1 - source);
                let copy = pieces[source].clone();
                pieces.insert(at, copy);
            }
            let mut r = reassembler();
            let mut c = IpReassembly::default();
            let done = feed(&mut r, &mut c, 1, &pieces);
            prop_assert_eq!(done, vec![original]);
            prop_assert_eq!(c.reassembled, 1);
            prop_assert_eq!(c.overlapping + c.inconsistent + c.too_big + c.evicted, 0);
            prop_assert!(r.is_empty());
            prop_assert_eq!(r.buffered_bytes(), 0);
        }

        /// Frames fragmented by the test builder (IPv4 or IPv6, any link), decoded and
        /// reassembled in any order, give the datagram the unfragmented frame decodes to.
        #[test]
        fn fragmented_frames_reassemble_to_the_unfragmented_datagram(
            v6 in any::<bool>(),
            vlan in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 0..3000),
            piece_units in 1usize..200,
            shuffle_seed in any::<u64>(),
        ) {
            use crate::decode::build::{self, LinkSpec};
            use crate::decode::frame::{decode_frame, decode_udp, reassembled_datagram, Decoded};
            let (src, dst): (std::net::SocketAddr, std::net::SocketAddr) = if v6 {
                ("[2001:db8::1]:5060".parse().unwrap(), "[2001:db8::2]:5062".parse().unwrap())
            } else {
                ("192.0.2.1:5060".parse().unwrap(), "192.0.2.2:5062".parse().unwrap())
            };
            let link = if vlan { LinkSpec::Vlan(vec![7]) } else { LinkSpec::RawIp };
            let whole = build::udp_frame(&link, src, dst, &payload);
            let expected = decode_udp(link.linktype(), &whole, whole.len() as u32).unwrap();
            let piece = (piece_units * 8).max((payload.len() + 8).div_ceil(MAX_PIECES).div_ceil(8) * 8);
            let mut frames = build::ipv4_fragments(&link, src, dst, &payload, piece);
            let mut state = shuffle_seed | 1;
            for i in (1..frames.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                frames.swap(i, (state >> 33) as usize % (i + 1));
            }
            let mut r = reassembler();
            let mut c = IpReassembly::default();
            let mut done = Vec::new();
            for frame in &frames {
                match decode_frame(link.linktype(), frame, frame.len() as u32) {
                    Ok(Decoded::Fragment(f)) => {
                        if let Some(whole) = r.insert(0, &f, &mut c) {
                            done.push(whole);
                        }
                    }
                    // Small enough for one piece: not fragmented at all.
                    Ok(Decoded::Udp(datagram)) => prop_assert_eq!(datagram, expected),
                    Ok(Decoded::Tcp(segment)) => prop_assert!(false, "{:?}", segment),
                    Err(skip) => prop_assert!(false, "{:?}", skip),
                }
            }
            prop_assert!(done.len() <= 1);
            prop_assert_eq!(done.len() + usize::from(frames.len() == 1), 1);
            if let Some(whole) = done.first() {
                let k = &whole.key;
                let datagram =
                    reassembled_datagram(k.src, k.dst, k.protocol, k.vlan, &whole.data).unwrap();
                prop_assert_eq!(datagram, expected);
            }
        }

        /// Hostile fragments never panic, never exceed the limits, never hand out more than
        /// 65,535 octets, and every datagram started ends in exactly one counter.
        #[test]
        fn hostile_fragments_stay_within_limits(
            ops in proptest::collection::vec(hostile(), 1..300),
            max_datagrams in 1usize..8,
            max_total_bytes in 0usize..300_000,
        ) {
            let cfg = Config {
                max_datagrams,
                max_total_bytes,
                timeout_ns: SEC,
                ..Config::default()
            };
            let mut r = Reassembler::new(cfg);
            let limit = r.config().max_total_bytes;
            let mut c = IpReassembly::default();
            let data = datagram(3000);
            let mut now = 0i64;
            for op in &ops {
                now += i64::from(op.advance_ms) * 1_000_000;
                r.sweep(now, &mut c);
                let mut f = fragment(u32::from(op.id), usize::from(op.offset_units) * 8, op.more, &data[..usize::from(op.len)]);
                f.src = Ipv4Addr::new(10, 0, 0, op.source).into();
                if let Some(whole) = r.insert(now, &f, &mut c) {
                    prop_assert!(whole.data.len() <= MAX_IP_PAYLOAD);
                    r.recycle(whole.data);
                }
                prop_assert!(r.pending() <= max_datagrams);
                prop_assert!(r.buffered_bytes() <= limit, "{} > {}", r.buffered_bytes(), limit);
            }
            r.finish(&mut c);
            prop_assert!(r.is_empty());
            prop_assert_eq!(r.buffered_bytes(), 0);
            let ended = c.reassembled + c.overlapping + c.inconsistent + c.too_big + c.evicted
                + c.timed_out + c.incomplete;
            prop_assert_eq!(ended, r.started(), "{:?}", c);
        }
    }
}
