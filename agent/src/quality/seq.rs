//! RTP sequence-number arithmetic: extended sequence numbers (metrics-spec §2.4), the RFC 3550
//! App. A.1/A.3 source state machine (§2.3, §3) and the monitor's own per-stream counters
//! (`SequenceWindow`: packets, duplicates, reordering, loss, loss runs and Markov counts, DESIGN.md
//! "Counting rules").
//!
//! Pure and deterministic: no I/O, no clock, no allocation; every per-packet method is O(1) apart
//! from bounded O(window) work when the highest sequence number jumps. Memory is fixed-size.
//! This module does not decide which packets belong to a stream nor when a stream restarts.

use super::burst::MarkovCounts;

pub const SEQ_MOD: u32 = 65536;
pub const MAX_DROPOUT: u16 = 3000;
pub const MAX_MISORDER: u16 = 100;
pub const MIN_SEQUENTIAL: u32 = 2;

/// Places `seq` at the extended number nearest to `prev_ext` (§2.4, the rule of WS-rtp and PJ-XR).
///
/// `prev_ext` is the extended number of the previous packet in arrival order. Results below 0 wrap
/// (the caller starts far enough from 0 for this not to happen; see [`extend64`]).
pub fn extend(prev_ext: u32, seq: u16) -> u32 {
    let candidate = (prev_ext & 0xFFFF_0000) | u32::from(seq);
    if candidate.saturating_add(0x8000) < prev_ext {
        candidate.wrapping_add(0x1_0000)
    } else if prev_ext.saturating_add(0x8000) < candidate {
        candidate.wrapping_sub(0x1_0000)
    } else {
        candidate
    }
}

/// [`extend`] on 64 bits; streams start at `(1 << 32) | seq` so late packets never underflow.
pub fn extend64(prev_ext: u64, seq: u16) -> u64 {
    let candidate = (prev_ext & !0xFFFF) | u64::from(seq);
    if candidate.saturating_add(0x8000) < prev_ext {
        candidate.wrapping_add(0x1_0000)
    } else if prev_ext.saturating_add(0x8000) < candidate {
        candidate.wrapping_sub(0x1_0000)
    } else {
        candidate
    }
}

/// Extended number given to the first packet of a stream.
pub fn first_ext64(seq: u16) -> u64 {
    (1u64 << 32) | u64::from(seq)
}

/// What RFC 3550 `update_seq` made of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqUpdate {
    /// Source still on probation; packet not counted by the RFC counters.
    Probation,
    /// Valid packet (in order, with a gap, late or duplicate); counted.
    Valid,
    /// Very large jump not (yet) confirmed by a sequential packet; not counted.
    BadJump,
    /// A confirmed jump re-initialised the source (Note 3): all RFC counters restarted.
    Restarted,
}

/// RFC 3550 App. A.1 per-source state, exactly as metrics-spec §2.3 (Note 1 reading: the first
/// packet runs `update_seq`, so a new source becomes valid on its second consecutive packet).
///
/// 32 bytes (size asserted in the tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3550Seq {
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    bad_seq: u32,
    probation: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
}

impl Rfc3550Seq {
    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        // SEQ_MOD + 1 never equals a 16-bit sequence number.
        self.bad_seq = SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    fn blank() -> Self {
        Rfc3550Seq {
            base_seq: 0,
            max_seq: 0,
            cycles: 0,
            bad_seq: SEQ_MOD + 1,
            probation: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
        }
    }

    /// New source heard for the first time: init, probation, then `update_seq` for this packet.
    pub fn new(first_seq: u16) -> (Self, SeqUpdate) {
        let mut state = Self::blank();
        state.init_seq(first_seq);
        state.max_seq = first_seq.wrapping_sub(1);
        state.probation = MIN_SEQUENTIAL;
        let update = state.update(first_seq);
        (state, update)
    }

    /// Source already known to be valid (announced by signalling): no probation, this packet counted.
    pub fn new_validated(first_seq: u16) -> Self {
        let mut state = Self::blank();
        state.init_seq(first_seq);
        state.received = 1;
        state
    }

    /// RFC 3550 `update_seq` for one packet in arrival order.
    pub fn update(&mut self, seq: u16) -> SeqUpdate {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received = self.received.wrapping_add(1);
                    return SeqUpdate::Valid;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqUpdate::Probation;
        }
        let mut update = SeqUpdate::Valid;
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
                update = SeqUpdate::Restarted;
            } else {
                self.bad_seq = u32::from(seq.wrapping_add(1));
                return SeqUpdate::BadJump;
            }
        }
        // Otherwise a duplicate or late packet: no state change beyond counting it.
        self.received = self.received.wrapping_add(1);
        update
    }

    pub fn is_valid(&self) -> bool {
        self.probation == 0
    }

    /// Extended highest sequence number (RR field: cycles in the high 16 bits).
    pub fn ext_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    pub fn base_seq(&self) -> u32 {
        self.base_seq
    }

    /// `ext_max − base_seq + 1`; 0 while the source is on probation.
    pub fn expected(&self) -> i64 {
        if !self.is_valid() {
            return 0;
        }
        i64::from(self.ext_max()) - i64::from(self.base_seq) + 1
    }

    pub fn received(&self) -> u32 {
        self.received
    }

    /// `expected − received`; negative when duplicates outnumber losses.
    pub fn lost(&self) -> i64 {
        self.expected() - i64::from(self.received)
    }

    /// Cumulative lost as the 24-bit two's-complement RR field, clamped to its range.
    pub fn cumulative_lost_field(&self) -> u32 {
        let clamped = self.lost().clamp(-0x80_0000, 0x7F_FFFF);
        (clamped as i32 as u32) & 0x00FF_FFFF
    }

    /// Fraction lost since the previous call (8-bit fixed point), moving the interval priors (§3).
    pub fn fraction_lost_since_last(&mut self) -> u8 {
        let expected = self.expected().max(0);
        let expected_now = u32::try_from(expected).unwrap_or(u32::MAX);
        let expected_interval = expected_now.wrapping_sub(self.expected_prior);
        self.expected_prior = expected_now;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        if expected_interval == 0 || lost_interval <= 0 {
            return 0;
        }
        // All packets of the interval lost gives 256, which the 8-bit field cannot carry.
        let fraction = (lost_interval << 8) / i64::from(expected_interval);
        u8::try_from(fraction).unwrap_or(u8::MAX)
    }
}

/// Decodes the 24-bit two's-complement cumulative-lost field of a report block.
pub fn decode_cumulative_lost(raw: u32) -> i32 {
    let value = (raw & 0x00FF_FFFF) as i32;
    if value & 0x80_0000 != 0 {
        value - 0x100_0000
    } else {
        value
    }
}

/// Positions tracked individually below (and including) the highest extended number seen.
/// Positions tracked exactly behind the highest one. RFC 3550 A.1 already treats a packet more
/// than `MAX_MISORDER` (100) behind as a jump, so the stream meter never feeds older ones; 128
/// keeps that margin and makes loss classification lag only 128 packets (2.56 s at 50 pkt/s).
pub const WINDOW: u64 = 128;
const WINDOW_WORDS: usize = (WINDOW / 64) as usize;

/// Result of [`SequenceWindow::on_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub ext: u64,
    pub duplicate: bool,
    pub reordered: bool,
}

/// Fixed-size bitmap over the window; bit `ext % WINDOW` stands for the window position `ext`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WindowBits([u64; WINDOW_WORDS]);

impl WindowBits {
    fn slot(ext: u64) -> (usize, u64) {
        let offset = ext % WINDOW;
        ((offset / 64) as usize, 1u64 << (offset % 64))
    }

    fn get(&self, ext: u64) -> bool {
        let (word, mask) = Self::slot(ext);
        self.0.get(word).is_some_and(|w| w & mask != 0)
    }

    fn set(&mut self, ext: u64) {
        let (word, mask) = Self::slot(ext);
        if let Some(w) = self.0.get_mut(word) {
            *w |= mask;
        }
    }

    fn clear(&mut self, ext: u64) {
        let (word, mask) = Self::slot(ext);
        if let Some(w) = self.0.get_mut(word) {
            *w &= !mask;
        }
    }

    fn clear_all(&mut self) {
        self.0 = [0; WINDOW_WORDS];
    }
}

/// The monitor's loss accounting over all packets of a stream, in arrival order (metrics-spec §3
/// "monitor loss", §8.2 Markov input, DESIGN.md counting rules).
///
/// Extended numbers come from [`extend64`] against the previous packet in arrival order. Positions
/// `ext_hi − WINDOW + 1 ..= ext_hi` are tracked exactly (received / discarded bits). A position is
/// *finalized* when it leaves that window or at [`SequenceWindow::finish`]; finalized positions are
/// fed, in sequence order, into the Markov counts (flag = never received OR discarded) and the
/// network loss-run counters (flag = never received).
///
/// Approximations, all confined to packets displaced by more than `WINDOW` positions:
/// * a packet older than the window can't be checked for duplication: it counts as received, not
///   duplicate, reordered, and in [`SequenceWindow::too_late`]; the finalized outcome of its
///   position (usually "lost") stays as it was, so Markov/loss-run counts may differ from `lost()`;
/// * if such a packet lies below `ext_lo`, `ext_lo` moves down (expected grows), but the positions
///   uncovered that way are never fed to the Markov/loss-run counters.
///
/// Positions below the first packet only count once `ext_lo` moves down to them.
/// 264 bytes, fixed (size asserted in the tests).
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceWindow {
    prev_ext: u64,
    ext_lo: u64,
    ext_hi: u64,
    /// Lowest position not yet finalized; positions `pending_lo ..= ext_hi` are pending.
    pending_lo: u64,
    received_bits: WindowBits,
    discarded_bits: WindowBits,
    packets: u64,
    duplicates: u64,
    reordered: u64,
    too_late: u64,
    discarded: u64,
    markov: MarkovCounts,
    /// Flag of the last finalized position (None before the first).
    last_final_flag: Option<bool>,
    /// Length of the loss run ending at the last finalized position (0 if it was received).
    current_loss_run: u64,
    loss_bursts: u64,
    max_loss_burst: u64,
    /// Positions classified so far (left the window or flushed), and how many were lost.
    finalized: u64,
    finalized_lost: u64,
    finished: bool,
}

impl SequenceWindow {
    pub fn new(first_seq: u16) -> Self {
        let ext = first_ext64(first_seq);
        let mut received_bits = WindowBits([0; WINDOW_WORDS]);
        received_bits.set(ext);
        SequenceWindow {
            prev_ext: ext,
            ext_lo: ext,
            ext_hi: ext,
            pending_lo: ext,
            received_bits,
            discarded_bits: WindowBits([0; WINDOW_WORDS]),
            packets: 1,
            duplicates: 0,
            reordered: 0,
            too_late: 0,
            discarded: 0,
            markov: MarkovCounts::default(),
            last_final_flag: None,
            current_loss_run: 0,
            loss_bursts: 0,
            max_loss_burst: 0,
            finalized: 0,
            finalized_lost: 0,
            finished: false,
        }
    }

    /// Lowest position still tracked by the bitmaps.
    fn window_lo(&self) -> u64 {
        self.ext_hi.saturating_sub(WINDOW - 1)
    }

    #[inline]
    fn finalize_one(&mut self, lost: bool, discarded: bool) {
        let flag = lost || discarded;
        self.finalized = self.finalized.saturating_add(1);
        if lost {
            self.finalized_lost = self.finalized_lost.saturating_add(1);
        }
        if let Some(prev) = self.last_final_flag {
            self.markov.record(prev, flag);
        }
        self.last_final_flag = Some(flag);
        if lost {
            if self.current_loss_run == 0 {
                self.loss_bursts = self.loss_bursts.saturating_add(1);
            }
            self.current_loss_run = self.current_loss_run.saturating_add(1);
            self.max_loss_burst = self.max_loss_burst.max(self.current_loss_run);
        } else {
            self.current_loss_run = 0;
        }
    }

    /// Finalizes `count` consecutive never-received positions in O(1).
    fn finalize_lost_run(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        self.finalize_one(true, false);
        let rest = count - 1;
        self.finalized = self.finalized.saturating_add(rest);
        self.finalized_lost = self.finalized_lost.saturating_add(rest);
        if rest > 0 {
            self.markov.record_many(true, true, rest);
            self.current_loss_run = self.current_loss_run.saturating_add(rest);
            self.max_loss_burst = self.max_loss_burst.max(self.current_loss_run);
        }
    }

    /// Finalizes every pending position below `until` (exclusive), in sequence order.
    #[inline]
    fn finalize_below(&mut self, until: u64) {
        if until <= self.pending_lo {
            return;
        }
        // Pending positions are all inside the window, so this loop runs at most WINDOW times.
        let tracked_end = until.min(self.ext_hi.saturating_add(1));
        let mut position = self.pending_lo;
        // Usually (and at every clean stream's end, up to WINDOW positions per stream) all of
        // them arrived and none was discarded: one step for the run, not one per position.
        if position < tracked_end && self.all_kept(position, tracked_end) {
            self.finalize_kept_run(tracked_end - position);
            position = tracked_end;
        }
        while position < tracked_end {
            let received = self.received_bits.get(position);
            let discarded = received && self.discarded_bits.get(position);
            self.finalize_one(!received, discarded);
            position += 1;
        }
        // Positions above the old highest were never received.
        self.finalize_lost_run(until - position);
        self.pending_lo = until;
    }

    /// Whether every position of `lo..end` (at most WINDOW of them, inside the window) was
    /// received and not discarded.
    fn all_kept(&self, lo: u64, end: u64) -> bool {
        const _: () = assert!(WINDOW_WORDS == 2, "the window is read as one u128");
        let count = end - lo;
        if count > WINDOW {
            return false;
        }
        let bits = |w: &WindowBits| u128::from(w.0[0]) | (u128::from(w.0[1]) << 64);
        // Bit `lo % WINDOW` first, the window's bits in position order from there (mod WINDOW).
        let kept = (bits(&self.received_bits) & !bits(&self.discarded_bits))
            .rotate_right((lo % WINDOW) as u32);
        let wanted = u128::MAX >> (WINDOW - count);
        kept & wanted == wanted
    }

    /// `finalize_one(false, false)` `count` (at least 1) times, in O(1).
    fn finalize_kept_run(&mut self, count: u64) {
        self.finalize_one(false, false);
        let rest = count - 1;
        self.finalized = self.finalized.saturating_add(rest);
        self.markov.record_many(false, false, rest);
    }

    /// [`SequenceWindow::finalize_below`] one position at a time (the oracle of its run step).
    #[cfg(test)]
    fn finalize_below_each(&mut self, until: u64) {
        if until <= self.pending_lo {
            return;
        }
        let tracked_end = until.min(self.ext_hi.saturating_add(1));
        let mut position = self.pending_lo;
        while position < tracked_end {
            let received = self.received_bits.get(position);
            let discarded = received && self.discarded_bits.get(position);
            self.finalize_one(!received, discarded);
            position += 1;
        }
        self.finalize_lost_run(until - position);
        self.pending_lo = until;
    }

    /// Accounts one packet (arrival order) and classifies it.
    #[inline]
    pub fn on_packet(&mut self, seq: u16) -> Arrival {
        let ext = extend64(self.prev_ext, seq);
        self.prev_ext = ext;
        self.packets = self.packets.saturating_add(1);

        // The next packet in order, by far the most common arrival: the same steps as the
        // general branch below, specialised. Position `ext - WINDOW` (the one that leaves the
        // window) has the bit slot of `ext` (they differ by WINDOW), so one load serves both.
        if self.ext_hi.checked_add(1) == Some(ext) {
            let new_window_lo = ext.saturating_sub(WINDOW - 1);
            // `word` is 0 or 1 (`ext % WINDOW / 64`): the indexing below cannot fail.
            let (word, mask) = WindowBits::slot(ext);
            if new_window_lo <= self.pending_lo {
                // Young stream: nothing leaves the window yet.
            } else if self.pending_lo.wrapping_add(1) == new_window_lo
                && self.pending_lo.wrapping_add(WINDOW) == ext
            {
                // Steady state: exactly one position, `ext - WINDOW`, is finalized.
                let received = self.received_bits.0[word] & mask != 0;
                let discarded = received && self.discarded_bits.0[word] & mask != 0;
                self.finalize_one(!received, discarded);
                self.pending_lo = new_window_lo;
            } else {
                self.finalize_below(new_window_lo);
            }
            self.discarded_bits.0[word] &= !mask;
            self.received_bits.0[word] |= mask;
            self.ext_hi = ext;
            return Arrival {
                ext,
                duplicate: false,
                reordered: false,
            };
        }
        self.arrive(ext)
    }

    /// [`SequenceWindow::on_packet`] without its in-order fast path: the reference the fast
    /// path is tested against.
    #[cfg(test)]
    fn on_packet_general(&mut self, seq: u16) -> Arrival {
        let ext = extend64(self.prev_ext, seq);
        self.prev_ext = ext;
        self.packets = self.packets.saturating_add(1);
        self.arrive(ext)
    }

    /// Classifies the packet at extended number `ext` (any arrival; `packets` counted already).
    #[inline]
    fn arrive(&mut self, ext: u64) -> Arrival {
        if ext > self.ext_hi {
            let new_window_lo = ext.saturating_sub(WINDOW - 1);
            self.finalize_below(new_window_lo);
            if ext - self.ext_hi >= WINDOW {
                self.received_bits.clear_all();
                self.discarded_bits.clear_all();
            } else {
                for position in self.ext_hi + 1..=ext {
                    self.received_bits.clear(position);
                    self.discarded_bits.clear(position);
                }
            }
            self.received_bits.set(ext);
            self.ext_hi = ext;
            return Arrival {
                ext,
                duplicate: false,
                reordered: false,
            };
        }

        if ext >= self.window_lo() {
            if self.received_bits.get(ext) {
                self.duplicates = self.duplicates.saturating_add(1);
                return Arrival {
                    ext,
                    duplicate: true,
                    reordered: false,
                };
            }
            self.received_bits.set(ext);
            if ext < self.ext_lo {
                // Untracked positions between ext and the old low edge become pending, unless
                // finalization already started (their outcome then stays unrecorded).
                if self.last_final_flag.is_none() && !self.finished {
                    self.pending_lo = ext;
                }
                self.ext_lo = ext;
            }
            self.reordered = self.reordered.saturating_add(1);
            return Arrival {
                ext,
                duplicate: false,
                reordered: true,
            };
        }

        // Older than the window: cannot tell duplicates apart, see the type's doc comment.
        self.too_late = self.too_late.saturating_add(1);
        self.reordered = self.reordered.saturating_add(1);
        self.ext_lo = self.ext_lo.min(ext);
        Arrival {
            ext,
            duplicate: false,
            reordered: true,
        }
    }

    /// The jitter-buffer emulation declared the received packet `ext` late.
    ///
    /// Counted once per position while it is pending; for a position already finalized (or older
    /// than the window) the count grows but the finalized outcome stays as it was.
    pub fn mark_discarded(&mut self, ext: u64) {
        if ext > self.ext_hi {
            return;
        }
        if ext >= self.window_lo() {
            if !self.received_bits.get(ext) || self.discarded_bits.get(ext) {
                return;
            }
            self.discarded_bits.set(ext);
        }
        self.discarded = self.discarded.saturating_add(1);
    }

    /// Stream end: finalizes every pending position.
    pub fn finish(&mut self) {
        self.finalize_below(self.ext_hi.saturating_add(1));
        self.finished = true;
    }

    /// Every packet attributed to the stream, duplicates included.
    /// Positions classified so far and how many of them were never received. Interval reports
    /// count these (they no longer change); after `finish` they cover every position tracked.
    pub fn finalized(&self) -> (u64, u64) {
        (self.finalized, self.finalized_lost)
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// Packets older than the window (diagnostic; see the type's doc comment).
    pub fn too_late(&self) -> u64 {
        self.too_late
    }

    pub fn ext_lo(&self) -> u64 {
        self.ext_lo
    }

    pub fn ext_hi(&self) -> u64 {
        self.ext_hi
    }

    /// Extended number of the previous packet in arrival order.
    pub fn last_ext(&self) -> u64 {
        self.prev_ext
    }

    pub fn expected(&self) -> u64 {
        self.ext_hi.saturating_sub(self.ext_lo).saturating_add(1)
    }

    pub fn received_unique(&self) -> u64 {
        self.packets.saturating_sub(self.duplicates)
    }

    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received_unique())
    }

    /// Markov transition counts over finalized positions (flag = lost or discarded, §8.2).
    pub fn markov(&self) -> MarkovCounts {
        self.markov
    }

    /// Runs of consecutive never-received positions among finalized positions.
    pub fn loss_bursts(&self) -> u64 {
        self.loss_bursts
    }

    pub fn max_loss_burst(&self) -> u64 {
        self.max_loss_burst
    }

    pub fn discarded(&self) -> u64 {
        self.discarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const T_SEQ_1: [u16; 11] = [65533, 65534, 65535, 0, 2, 1, 1, 4, 5, 8, 9];

    #[test]
    fn extend_examples() {
        assert_eq!(extend(0x1_0000, 65533), 65533);
        assert_eq!(extend(0x1_0000, 5), 0x1_0005);
        assert_eq!(extend(65535, 0), 65536);
        assert_eq!(extend(65538, 1), 65537);
        assert_eq!(extend(65536, 65535), 65535);
        assert_eq!(extend64(first_ext64(65533), 65534), (1 << 32) | 65534);
        assert_eq!(extend64(first_ext64(65535), 0), (1 << 32) + 65536);
        assert_eq!(extend64(first_ext64(0), 65535), (1 << 32) - 1);
        // Never panics at the edges.
        assert_eq!(extend(u32::MAX, 0), 0);
        assert_eq!(extend(0, 0xFFFF), 0xFFFF_FFFF);
        let _ = extend64(u64::MAX, 0);
        let _ = extend64(0, 0xFFFF);
    }

    #[test]
    fn t_seq_1_rfc_rows() {
        // (valid?, received, cycles, max_seq, expected, lost); base_seq 65534 from row 2 on.
        let rows: [(SeqUpdate, u32, u32, u16, i64, i64); 11] = [
            (SeqUpdate::Probation, 0, 0, 65533, 0, 0),
            (SeqUpdate::Valid, 1, 0, 65534, 1, 0),
            (SeqUpdate::Valid, 2, 0, 65535, 2, 0),
            (SeqUpdate::Valid, 3, 65536, 0, 3, 0),
            (SeqUpdate::Valid, 4, 65536, 2, 5, 1),
            (SeqUpdate::Valid, 5, 65536, 2, 5, 0),
            (SeqUpdate::Valid, 6, 65536, 2, 5, -1),
            (SeqUpdate::Valid, 7, 65536, 4, 7, 0),
            (SeqUpdate::Valid, 8, 65536, 5, 8, 0),
            (SeqUpdate::Valid, 9, 65536, 8, 11, 2),
            (SeqUpdate::Valid, 10, 65536, 9, 12, 2),
        ];
        let (mut state, first) = Rfc3550Seq::new(T_SEQ_1[0]);
        assert_eq!(first, rows[0].0);
        assert_eq!(state.probation, 1);
        assert_eq!(state.max_seq, 65533);
        for (index, (&seq, row)) in T_SEQ_1.iter().zip(rows.iter()).enumerate() {
            if index > 0 {
                assert_eq!(state.update(seq), row.0, "row {}", index + 1);
                assert_eq!(state.probation, 0);
                assert_eq!(state.base_seq(), 65534);
            }
            assert_eq!(state.received(), row.1, "row {}", index + 1);
            assert_eq!(state.cycles, row.2, "row {}", index + 1);
            assert_eq!(state.max_seq, row.3, "row {}", index + 1);
            assert_eq!(state.expected(), row.4, "row {}", index + 1);
            assert_eq!(state.lost(), row.5, "row {}", index + 1);
            if index == 4 {
                assert_eq!(state.ext_max(), 0x0001_0002);
                assert_eq!(state.cumulative_lost_field(), 1);
                assert_eq!(state.fraction_lost_since_last(), 51);
            }
        }
        assert_eq!(state.ext_max(), 0x0001_0009);
        assert_eq!(state.cumulative_lost_field(), 2);
        assert_eq!(state.fraction_lost_since_last(), 36);
        // No new packets: empty interval.
        assert_eq!(state.fraction_lost_since_last(), 0);
    }

    #[test]
    fn t_seq_2_negative_loss() {
        let (mut state, _) = Rfc3550Seq::new(10);
        for seq in [11, 12, 12, 12] {
            assert_eq!(state.update(seq), SeqUpdate::Valid);
        }
        assert_eq!(state.base_seq(), 11);
        assert_eq!(state.ext_max(), 12);
        assert_eq!(state.expected(), 2);
        assert_eq!(state.received(), 4);
        assert_eq!(state.lost(), -2);
        assert_eq!(state.cumulative_lost_field(), 0xFF_FFFE);
        assert_eq!(state.fraction_lost_since_last(), 0);
    }

    #[test]
    fn cumulative_lost_encodings() {
        let mut state = Rfc3550Seq::new_validated(0);
        let field = |state: &mut Rfc3550Seq, lost: i64| {
            // Set counters so that lost() == lost: expected 20_000_001 fixed by cycles/max_seq.
            state.cycles = 305 * SEQ_MOD;
            state.max_seq = 11_520; // ext_max = 20_000_000
            state.received = u32::try_from(20_000_001 - lost).unwrap_or(0);
            assert_eq!(state.lost(), lost);
            state.cumulative_lost_field()
        };
        assert_eq!(field(&mut state, 2), 0x00_0002);
        assert_eq!(field(&mut state, -2), 0xFF_FFFE);
        assert_eq!(field(&mut state, 10_000_000), 0x7F_FFFF);
        assert_eq!(field(&mut state, -10_000_000), 0x80_0000);
        assert_eq!(decode_cumulative_lost(0x80_0000), -8_388_608);
        assert_eq!(decode_cumulative_lost(0xFF_FFFE), -2);
        assert_eq!(decode_cumulative_lost(0x7F_FFFF), 8_388_607);
        assert_eq!(decode_cumulative_lost(0xAB00_0002), 2);
    }

    #[test]
    fn new_validated_counts_first_packet() {
        let mut state = Rfc3550Seq::new_validated(100);
        assert!(state.is_valid());
        assert_eq!(
            (state.expected(), state.received(), state.lost()),
            (1, 1, 0)
        );
        assert_eq!(state.update(102), SeqUpdate::Valid);
        assert_eq!(
            (state.expected(), state.received(), state.lost()),
            (3, 2, 1)
        );
    }

    #[test]
    fn restart_after_confirmed_jump() {
        let (mut state, _) = Rfc3550Seq::new(1000);
        for seq in 1001..=1010 {
            assert_eq!(state.update(seq), SeqUpdate::Valid);
        }
        assert_eq!(state.received(), 10);
        // A jump of 20000: first packet is held as suspect, the sequential second confirms it.
        assert_eq!(state.update(21_010), SeqUpdate::BadJump);
        assert_eq!(state.received(), 10);
        assert_eq!(state.update(21_011), SeqUpdate::Restarted);
        assert_eq!(state.base_seq(), 21_011);
        assert_eq!(
            (state.expected(), state.received(), state.lost()),
            (1, 1, 0)
        );
        assert_eq!(state.update(21_012), SeqUpdate::Valid);
        assert_eq!(state.expected(), 2);
        // A lone jump followed by the old sequence is not a restart.
        assert_eq!(state.update(50_000), SeqUpdate::BadJump);
        assert_eq!(state.update(21_013), SeqUpdate::Valid);
        assert_eq!(state.expected(), 3);
    }

    #[test]
    fn probation_resets_on_non_sequential() {
        let (mut state, first) = Rfc3550Seq::new(10);
        assert_eq!(first, SeqUpdate::Probation);
        assert_eq!(state.update(20), SeqUpdate::Probation);
        assert!(!state.is_valid());
        assert_eq!(state.expected(), 0);
        assert_eq!(state.update(21), SeqUpdate::Valid);
        assert_eq!(state.base_seq(), 21);
    }

    #[test]
    fn fraction_all_lost_saturates() {
        let mut state = Rfc3550Seq::new_validated(0);
        assert_eq!(state.fraction_lost_since_last(), 0);
        // Interval of 10 expected, 0 received would be 256/256.
        state.max_seq = 10;
        assert_eq!(state.fraction_lost_since_last(), 255);
    }

    fn window_of(seqs: &[u16]) -> SequenceWindow {
        let mut window = SequenceWindow::new(seqs[0]);
        for &seq in &seqs[1..] {
            window.on_packet(seq);
        }
        window
    }

    #[test]
    fn t_seq_1_window() {
        let mut window = SequenceWindow::new(T_SEQ_1[0]);
        let mut arrivals = Vec::new();
        for &seq in &T_SEQ_1[1..] {
            arrivals.push(window.on_packet(seq));
        }
        let base = 1u64 << 32;
        assert_eq!(window.ext_lo(), base + 65533);
        assert_eq!(window.ext_hi(), base + 65545);
        assert_eq!(window.packets(), 11);
        assert_eq!(window.expected(), 13);
        assert_eq!(window.received_unique(), 10);
        assert_eq!(window.lost(), 3);
        assert_eq!(window.duplicates(), 1);
        assert_eq!(window.reordered(), 1);
        // 1 arrives late (reordered), then again (duplicate).
        assert_eq!(
            arrivals[4],
            Arrival {
                ext: base + 65537,
                duplicate: false,
                reordered: true
            }
        );
        assert!(arrivals[5].duplicate && !arrivals[5].reordered);
        window.finish();
        // Outcomes 65533..=65545: R R R R R R L R R L L R R (3, 6, 7 missing).
        assert_eq!(window.loss_bursts(), 2);
        assert_eq!(window.max_loss_burst(), 2);
        let markov = window.markov();
        assert_eq!(
            (markov.n00, markov.n01, markov.n10, markov.n11),
            (7, 2, 2, 1)
        );
    }

    #[test]
    fn t_seq_2_window() {
        let window = window_of(&[10, 11, 12, 12, 12]);
        assert_eq!(window.expected(), 3);
        assert_eq!(window.received_unique(), 3);
        assert_eq!(window.lost(), 0);
        assert_eq!(window.duplicates(), 2);
        assert_eq!(window.packets(), 5);
    }

    #[test]
    fn window_restart_like_jump_is_bounded() {
        let mut window = SequenceWindow::new(100);
        window.on_packet(101);
        // Forward jump of 40000 wraps to a backward distance under extend's nearest rule, so the
        // packet lands 25536 below; then a forward run from there.
        let arrival = window.on_packet(40_101);
        assert!(arrival.ext < window.ext_hi());
        assert_eq!(window.too_late(), 1);
        window.on_packet(40_102);
        assert_eq!(window.packets(), 4);
        // Large real forward jumps (30000 at a time) are O(window) and count the hole as lost.
        let mut window = SequenceWindow::new(0);
        let mut seq: u16 = 0;
        for _ in 0..10 {
            seq = seq.wrapping_add(30_000);
            window.on_packet(seq);
        }
        window.finish();
        assert_eq!(window.expected(), 300_001);
        assert_eq!(window.lost(), 300_001 - 11);
        assert_eq!(window.loss_bursts(), 10);
        assert_eq!(window.max_loss_burst(), 29_999);
        let markov = window.markov();
        assert_eq!(markov.n00 + markov.n01 + markov.n10 + markov.n11, 300_000);
        assert_eq!(markov.n11, 10 * 29_998);
    }

    #[test]
    fn too_late_packet_counts_as_received() {
        let mut window = SequenceWindow::new(0);
        for seq in 2..=1000u16 {
            window.on_packet(seq);
        }
        // Position 1 was finalized as lost long ago.
        let arrival = window.on_packet(1);
        assert!(arrival.reordered && !arrival.duplicate);
        assert_eq!(window.too_late(), 1);
        assert_eq!(window.lost(), 0);
        window.finish();
        assert_eq!(window.loss_bursts(), 1);
        // A duplicate of an old packet is not recognised (documented approximation).
        window.on_packet(3);
        assert_eq!(window.duplicates(), 0);
    }

    #[test]
    fn packet_below_first_moves_ext_lo() {
        let mut window = SequenceWindow::new(1000);
        window.on_packet(1001);
        let arrival = window.on_packet(997);
        assert!(arrival.reordered);
        assert_eq!(window.expected(), 5);
        assert_eq!(window.lost(), 2);
        window.finish();
        assert_eq!(window.loss_bursts(), 1);
        assert_eq!(window.max_loss_burst(), 2);
        // Outcomes 997..=1001: R L L R R.
        let markov = window.markov();
        assert_eq!(
            (markov.n00, markov.n01, markov.n10, markov.n11),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn discards_feed_markov_not_loss_runs() {
        let mut window = SequenceWindow::new(0);
        for seq in 1..=9u16 {
            let arrival = window.on_packet(seq);
            if seq == 4 || seq == 5 {
                window.mark_discarded(arrival.ext);
                window.mark_discarded(arrival.ext); // counted once
            }
        }
        assert_eq!(window.discarded(), 2);
        window.finish();
        assert_eq!(window.loss_bursts(), 0);
        let markov = window.markov();
        assert_eq!(
            (markov.n00, markov.n01, markov.n10, markov.n11),
            (6, 1, 1, 1)
        );
        // Unknown or future positions are ignored.
        window.mark_discarded(window.ext_hi() + 1);
        assert_eq!(window.discarded(), 2);
    }

    #[test]
    fn compact() {
        assert_eq!(std::mem::size_of::<Rfc3550Seq>(), 32);
        assert!(std::mem::size_of::<SequenceWindow>() <= 288);
    }

    /// Brute-force reference: counts over a HashSet of extended numbers.
    fn reference(exts: &[u64]) -> (u64, u64, u64, u64, u64, Vec<bool>) {
        let mut seen = HashSet::new();
        let (mut duplicates, mut reordered, mut highest) = (0, 0, 0);
        for &ext in exts {
            if !seen.insert(ext) {
                duplicates += 1;
            } else if ext < highest {
                reordered += 1;
            }
            highest = highest.max(ext);
        }
        let lo = exts.iter().copied().min().unwrap_or(0);
        let hi = highest;
        let flags: Vec<bool> = (lo..=hi).map(|e| !seen.contains(&e)).collect();
        (
            exts.len() as u64,
            duplicates,
            reordered,
            hi - lo + 1,
            seen.len() as u64,
            flags,
        )
    }

    proptest! {
        #[test]
        fn window_matches_brute_force(
            start in 64_000u32..65_536,
            len in 1usize..1500,
            keys in proptest::collection::vec((0u64..(WINDOW - 1), 0u8..8, any::<bool>()), 1500),
        ) {
            // Sequence run crossing the wrap; drop ~1/8, duplicate some, displace each by < WINDOW.
            let mut events: Vec<(u64, u64)> = Vec::new();
            for (index, &(offset, drop, dup)) in keys.iter().take(len).enumerate() {
                let ext = (1u64 << 32) + u64::from(start) + index as u64;
                if drop == 0 && index != 0 {
                    continue;
                }
                events.push((ext + offset, ext));
                if dup {
                    events.push((ext + (offset / 2), ext));
                }
            }
            events.sort();
            let exts: Vec<u64> = events.iter().map(|&(_, ext)| ext).collect();
            let seqs: Vec<u16> = exts.iter().map(|&ext| (ext & 0xFFFF) as u16).collect();
            let mut window = SequenceWindow::new(seqs[0]);
            let mut got = vec![window.ext_lo()];
            for &seq in &seqs[1..] {
                got.push(window.on_packet(seq).ext);
            }
            // Same extended numbers up to the constant offset of the first packet.
            let shift = got[0].wrapping_sub(exts[0]);
            for (g, e) in got.iter().zip(exts.iter()) {
                prop_assert_eq!(g.wrapping_sub(*e), shift);
            }
            window.finish();
            let (packets, duplicates, reordered, expected, unique, flags) = reference(&exts);
            prop_assert_eq!(window.packets(), packets);
            prop_assert_eq!(window.duplicates(), duplicates);
            prop_assert_eq!(window.reordered(), reordered);
            prop_assert_eq!(window.expected(), expected);
            prop_assert_eq!(window.received_unique(), unique);
            prop_assert_eq!(window.lost(), expected - unique);
            prop_assert_eq!(window.too_late(), 0);
            let mut markov = MarkovCounts::default();
            for pair in flags.windows(2) {
                markov.record(pair[0], pair[1]);
            }
            prop_assert_eq!(window.markov(), markov);
            let (mut runs, mut longest, mut current) = (0u64, 0u64, 0u64);
            for &lost in &flags {
                if lost {
                    if current == 0 { runs += 1; }
                    current += 1;
                    longest = longest.max(current);
                } else {
                    current = 0;
                }
            }
            prop_assert_eq!(window.loss_bursts(), runs);
            prop_assert_eq!(window.max_loss_burst(), longest);
        }

        #[test]
        fn in_order_fast_path_is_the_general_path(
            first in any::<u16>(),
            steps in proptest::collection::vec((0u8..16, any::<bool>(), any::<bool>()), 1..700),
        ) {
            // Mostly next-in-order packets (the fast path), with gaps, late, duplicate and
            // discarded ones mixed in: both paths must leave identical state after every packet.
            let mut fast = SequenceWindow::new(first);
            let mut general = fast.clone();
            let mut seq = first;
            for &(kind, discard, discard_old) in &steps {
                let next = match kind {
                    0 => seq.wrapping_add(3),
                    1 => seq.wrapping_sub(5),
                    2 => seq,
                    3 => seq.wrapping_add(200),
                    _ => seq.wrapping_add(1),
                };
                if kind != 1 && kind != 2 {
                    seq = next;
                }
                let a = fast.on_packet(next);
                let b = general.on_packet_general(next);
                prop_assert_eq!(a, b);
                if discard {
                    fast.mark_discarded(a.ext);
                    general.mark_discarded(b.ext);
                }
                if discard_old {
                    fast.mark_discarded(a.ext.wrapping_sub(WINDOW - 1));
                    general.mark_discarded(b.ext.wrapping_sub(WINDOW - 1));
                }
                prop_assert_eq!(&fast, &general);
            }
            fast.finish();
            general.finish();
            prop_assert_eq!(&fast, &general);
        }

        /// Finalizing with the run step for positions all kept is finalizing them one by one,
        /// whatever the packets before (gaps, late, duplicate and discarded ones, few or many)
        /// and wherever the window stands.
        #[test]
        fn kept_runs_finalize_as_one_by_one(
            first in any::<u16>(),
            steps in proptest::collection::vec((0u8..24, any::<bool>()), 1..400),
            cut in 0u64..(2 * WINDOW),
        ) {
            let mut window = SequenceWindow::new(first);
            let mut seq = first;
            for &(kind, discard) in &steps {
                seq = match kind {
                    0 => seq.wrapping_add(3),
                    1 => seq.wrapping_sub(5),
                    2 => seq,
                    3 => seq.wrapping_add(200),
                    _ => seq.wrapping_add(1),
                };
                let a = window.on_packet(seq);
                if discard && kind == 4 {
                    window.mark_discarded(a.ext);
                }
            }
            // Part of the pending positions, then the rest (the stream's end).
            let mut runs = window.clone();
            let mut each = window;
            let until = each.pending_lo.saturating_add(cut);
            runs.finalize_below(until);
            each.finalize_below_each(until);
            prop_assert_eq!(&runs, &each);
            runs.finish();
            each.finalize_below_each(each.ext_hi.saturating_add(1));
            each.finished = true;
            prop_assert_eq!(&runs, &each);
        }

        #[test]
        fn window_never_panics(seqs in proptest::collection::vec(any::<u16>(), 1..400),
                               discard in proptest::collection::vec(any::<bool>(), 400)) {
            let mut window = SequenceWindow::new(seqs[0]);
            for (&seq, &d) in seqs[1..].iter().zip(discard.iter()) {
                let arrival = window.on_packet(seq);
                if d { window.mark_discarded(arrival.ext); }
            }
            window.finish();
            prop_assert!(window.received_unique() <= window.packets());
            prop_assert!(window.ext_lo() <= window.ext_hi());
            window.on_packet(seqs[0]);
        }

        #[test]
        fn extend_picks_nearest_candidate(prev in (1u64 << 20)..(1u64 << 40), seq in any::<u16>()) {
            let ext = extend64(prev, seq);
            prop_assert_eq!(ext & 0xFFFF, u64::from(seq));
            prop_assert!(ext.abs_diff(prev) <= 0x8000);
            let narrow = u32::try_from(prev & 0xFFFF_FFFF).unwrap_or(0);
            if (0x1_0000..=u32::MAX - 0x1_0000).contains(&narrow) {
                prop_assert_eq!(u64::from(extend(narrow, seq)), (prev & 0xFFFF_FFFF) + ext - prev);
            }
        }

        #[test]
        fn rfc_state_never_panics(seqs in proptest::collection::vec(any::<u16>(), 1..300)) {
            let (mut state, _) = Rfc3550Seq::new(seqs[0]);
            for &seq in &seqs[1..] {
                state.update(seq);
                let _ = state.fraction_lost_since_last();
                let _ = state.cumulative_lost_field();
            }
        }
    }
}
