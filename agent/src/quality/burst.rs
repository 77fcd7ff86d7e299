//! Loss-burst statistics over per-packet outcomes in sequence order: the two-state Markov transition
//! counts behind the G.107 burst ratio (metrics-spec §8) and the RFC 3611 App. A.2 burst/gap state
//! machine (§5.5–5.6, Gmin 16).
//!
//! Pure arithmetic: no I/O, no clock, no allocation. Callers feed outcomes already put in sequence
//! order (see `seq::SequenceWindow`); this module never reorders anything itself.

/// Gap threshold of RFC 3611 §4.7.2: a run of this many received packets ends a burst.
pub const GMIN: u64 = 16;

/// Raw burst ratios above this are outside G.107's permitted range (1 … 8) and get flagged.
pub const BURST_R_RANGE_MAX: f64 = 8.0;

/// Transition counts of the two-state Markov loss model (§8.2); state 1 = lost or discarded.
///
/// Counts are additive, so windows and streams merge by [`MarkovCounts::add`] and the ratio is
/// recomputed from the sums (never averaged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MarkovCounts {
    pub n00: u64,
    pub n01: u64,
    pub n10: u64,
    pub n11: u64,
}

impl MarkovCounts {
    /// Counts one transition between consecutive positions (`true` = lost or discarded).
    pub fn record(&mut self, prev: bool, cur: bool) {
        let slot = match (prev, cur) {
            (false, false) => &mut self.n00,
            (false, true) => &mut self.n01,
            (true, false) => &mut self.n10,
            (true, true) => &mut self.n11,
        };
        *slot = slot.saturating_add(1);
    }

    /// Adds `count` transitions of one kind at once (used for long runs of one state).
    pub fn record_many(&mut self, prev: bool, cur: bool, count: u64) {
        let slot = match (prev, cur) {
            (false, false) => &mut self.n00,
            (false, true) => &mut self.n01,
            (true, false) => &mut self.n10,
            (true, true) => &mut self.n11,
        };
        *slot = slot.saturating_add(count);
    }

    pub fn add(&mut self, other: &MarkovCounts) {
        self.n00 = self.n00.saturating_add(other.n00);
        self.n01 = self.n01.saturating_add(other.n01);
        self.n10 = self.n10.saturating_add(other.n10);
        self.n11 = self.n11.saturating_add(other.n11);
    }

    /// `1/(p+q)` with p = P(lost | found), q = P(found | lost); 1 when undefined (§8.2).
    pub fn burst_ratio_raw(&self) -> f64 {
        let from_found = self.n00.saturating_add(self.n01);
        let from_lost = self.n10.saturating_add(self.n11);
        let p = if from_found == 0 {
            0.0
        } else {
            self.n01 as f64 / from_found as f64
        };
        let q = if from_lost == 0 {
            1.0
        } else {
            self.n10 as f64 / from_lost as f64
        };
        if p + q > 0.0 { 1.0 / (p + q) } else { 1.0 }
    }

    /// BurstR as fed to the E-model: G.107's range starts at 1, so values below are raised to 1.
    pub fn burst_ratio(&self) -> f64 {
        self.burst_ratio_raw().max(1.0)
    }

    /// True when the raw ratio exceeds G.107's range (reported as `burstr_out_of_range`).
    pub fn out_of_range(&self) -> bool {
        self.burst_ratio_raw() > BURST_R_RANGE_MAX
    }
}

/// Per-packet outcome in sequence order, as RFC 3611 A.2 distinguishes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Received,
    Lost,
    Discarded,
}

/// Burst/gap metrics derived from the A.2 counters (densities on the ×256 scale of the XR block,
/// not yet capped; durations in ms).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BurstGapMetrics {
    pub burst_density: f64,
    pub gap_density: f64,
    pub burst_duration_ms: f64,
    pub gap_duration_ms: f64,
}

impl BurstGapMetrics {
    /// Density as the 8-bit XR field: truncated, capped at 255.
    pub fn density_field(density: f64) -> u8 {
        if density.is_nan() || density <= 0.0 {
            0
        } else if density >= 255.0 {
            255
        } else {
            density as u8
        }
    }
}

/// RFC 3611 App. A.2 state-transition counters (Gmin 16), fed one event per sequence position.
///
/// 80 bytes; size asserted in the tests so per-stream state stays small.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rfc3611Counters {
    /// Received packets since the last loss/discard event (`pkt` of A.2).
    pending_received: u64,
    /// Events in the current cluster (`lost` of A.2).
    cluster_events: u64,
    pub c11: u64,
    pub c13: u64,
    pub c14: u64,
    pub c22: u64,
    pub c23: u64,
    pub c33: u64,
    pub loss_count: u64,
    pub discard_count: u64,
}

impl Rfc3611Counters {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn on_event(&mut self, event: Outcome) {
        match event {
            Outcome::Received => {
                self.pending_received = self.pending_received.saturating_add(1);
                return;
            }
            Outcome::Lost => self.loss_count = self.loss_count.saturating_add(1),
            Outcome::Discarded => self.discard_count = self.discard_count.saturating_add(1),
        }
        let pkt = self.pending_received;
        if pkt >= GMIN {
            // A gap just ended; classify the cluster before it.
            if self.cluster_events == 1 {
                self.c14 = self.c14.saturating_add(1);
            } else {
                self.c13 = self.c13.saturating_add(1);
            }
            self.cluster_events = 1;
            self.c11 = self.c11.saturating_add(pkt);
        } else {
            self.cluster_events = self.cluster_events.saturating_add(1);
            if pkt == 0 {
                self.c33 = self.c33.saturating_add(1);
            } else {
                self.c23 = self.c23.saturating_add(1);
                self.c22 = self.c22.saturating_add(pkt - 1);
            }
        }
        self.pending_received = 0;
    }

    /// Received packets after the last event, not yet accounted (A.2 excludes the trailing gap).
    pub fn pending_received(&self) -> u64 {
        self.pending_received
    }

    /// Derived metrics with the §5.6 guards; `ms_per_packet` = audio per packet (frame × frames).
    pub fn metrics(&self, ms_per_packet: f64) -> BurstGapMetrics {
        let c31 = self.c13 as f64;
        let c32 = self.c23 as f64;
        let (c11, c13, c14) = (self.c11 as f64, self.c13 as f64, self.c14 as f64);
        let (c22, c23, c33) = (self.c22 as f64, self.c23 as f64, self.c33 as f64);
        let ctotal = c11 + c14 + c13 + c22 + c23 + c31 + c32 + c33;
        if ctotal == 0.0 {
            return BurstGapMetrics::default();
        }
        let to_burst_end = c31 + c32 + c33;
        let p32 = if to_burst_end == 0.0 {
            0.0
        } else {
            c32 / to_burst_end
        };
        let p23 = if c22 + c23 < 1.0 {
            1.0
        } else {
            1.0 - c22 / (c22 + c23)
        };
        let burst_density = if p23 + p32 == 0.0 {
            0.0
        } else {
            256.0 * p23 / (p23 + p32)
        };
        let gap_density = if c11 + c14 == 0.0 {
            0.0
        } else {
            256.0 * c14 / (c11 + c14)
        };
        let c13_nonzero = if c13 == 0.0 { 1.0 } else { c13 };
        let gap_duration_ms = (c11 + c14 + c13) * ms_per_packet / c13_nonzero;
        let burst_duration_ms = ctotal * ms_per_packet / c13_nonzero - gap_duration_ms;
        BurstGapMetrics {
            burst_density,
            gap_density,
            burst_duration_ms,
            gap_duration_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn markov_of(flags: &str) -> MarkovCounts {
        let bits: Vec<bool> = flags.bytes().map(|b| b == b'1').collect();
        let mut counts = MarkovCounts::default();
        for pair in bits.windows(2) {
            counts.record(pair[0], pair[1]);
        }
        counts
    }

    /// T-XR-1 / T-BR-2 outcome sequence: 20×R, L, 20×R, L, L, R, L, R, R, L, 30×R.
    fn txr1() -> Vec<Outcome> {
        use Outcome::{Lost as L, Received as R};
        let mut seq = vec![R; 20];
        seq.push(L);
        seq.extend(std::iter::repeat_n(R, 20));
        seq.extend([L, L, R, L, R, R, L]);
        seq.extend(std::iter::repeat_n(R, 30));
        seq
    }

    #[test]
    fn t_br_1() {
        let counts = markov_of("0000100001100000111000");
        assert_eq!(
            counts,
            MarkovCounts {
                n00: 12,
                n01: 3,
                n10: 3,
                n11: 3
            }
        );
        assert!((counts.burst_ratio() - 1.0 / 0.7).abs() < 1e-9);
        assert!((counts.burst_ratio() - 1.428571).abs() < 1e-6);
        assert!(!counts.out_of_range());
    }

    #[test]
    fn t_br_2() {
        let flags: String = txr1()
            .iter()
            .map(|o| if *o == Outcome::Received { '0' } else { '1' })
            .collect();
        assert_eq!(flags.len(), 78);
        let counts = markov_of(&flags);
        assert_eq!(
            (counts.n00, counts.n01, counts.n10, counts.n11),
            (68, 4, 4, 1)
        );
        assert!((counts.burst_ratio() - 1.168831).abs() < 1e-6);
    }

    #[test]
    fn burst_ratio_edge_cases() {
        let none = MarkovCounts::default();
        assert_eq!(none.burst_ratio(), 1.0);
        // Alternating loss is more spread out than random: raw < 1, clamped to 1.
        let alternating = markov_of("0101010101");
        assert!(alternating.burst_ratio_raw() < 1.0);
        assert_eq!(alternating.burst_ratio(), 1.0);
        // One long burst in a long clean run: far above 8.
        let bursty = markov_of(&format!(
            "{}{}{}",
            "0".repeat(200),
            "1".repeat(50),
            "0".repeat(200)
        ));
        assert!(bursty.out_of_range());
        let mut merged = markov_of("0011");
        merged.add(&markov_of("1100"));
        assert_eq!(
            (merged.n00, merged.n01, merged.n10, merged.n11),
            (2, 1, 1, 2)
        );
        let mut many = MarkovCounts::default();
        many.record_many(true, true, 5);
        assert_eq!(many.n11, 5);
    }

    #[test]
    fn t_xr_1_counters_and_metrics() {
        let mut counters = Rfc3611Counters::new();
        for outcome in txr1() {
            counters.on_event(outcome);
        }
        assert_eq!(counters.c11, 40);
        assert_eq!(counters.c13, 1);
        assert_eq!(counters.c14, 1);
        assert_eq!(counters.c22, 1);
        assert_eq!(counters.c23, 2);
        assert_eq!(counters.c33, 1);
        assert_eq!(counters.loss_count, 5);
        assert_eq!(counters.discard_count, 0);
        assert_eq!(counters.pending_received(), 30);
        let m = counters.metrics(20.0);
        assert!((m.burst_density - 146.285714).abs() < 1e-5);
        assert!((m.gap_density - 6.243902).abs() < 1e-5);
        assert!((m.gap_duration_ms - 840.0).abs() < 1e-9);
        assert!((m.burst_duration_ms - 140.0).abs() < 1e-9);
        assert_eq!(BurstGapMetrics::density_field(m.burst_density), 146);
        assert_eq!(BurstGapMetrics::density_field(m.gap_density), 6);
        assert_eq!(BurstGapMetrics::density_field(300.0), 255);
    }

    #[test]
    fn a2_guards() {
        let empty = Rfc3611Counters::new();
        assert_eq!(empty.metrics(20.0), BurstGapMetrics::default());
        // Only received packets: nothing accounted yet, all zero.
        let mut clean = Rfc3611Counters::new();
        for _ in 0..100 {
            clean.on_event(Outcome::Received);
        }
        assert_eq!(clean.metrics(20.0), BurstGapMetrics::default());
        // Discards count as events too.
        let mut discards = Rfc3611Counters::new();
        discards.on_event(Outcome::Discarded);
        discards.on_event(Outcome::Discarded);
        assert_eq!(discards.discard_count, 2);
        // No received packet before them: both count as burst-to-burst transitions.
        assert_eq!((discards.c13, discards.c33), (0, 2));
        let m = discards.metrics(20.0);
        assert_eq!(m.burst_density, 256.0);
        assert_eq!(m.gap_density, 0.0);
        // c13 = 0 is treated as 1 in the duration formulas.
        assert_eq!((m.gap_duration_ms, m.burst_duration_ms), (0.0, 40.0));
    }

    #[test]
    fn compact() {
        assert!(std::mem::size_of::<Rfc3611Counters>() <= 80);
        assert_eq!(std::mem::size_of::<MarkovCounts>(), 32);
    }
}
