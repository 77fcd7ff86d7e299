//! Per-window histogram of per-packet RFC 3550 jitter, small enough to live inside every
//! stream's state (224 bytes) and cheap enough for the hot path (a shift, a leading-zero
//! count and one increment; no allocation).
//!
//! Bins are log-linear over 10 µs units: 16 exact bins for 0–160 µs, then 8 bins per octave
//! up to 655.36 ms, so a bin's midpoint is within 6.25 % of any value in it. Values above
//! the top are counted in the top bin. Counts saturate at 65,535 per bin per window (a
//! stream would need 6,500 packets/s for 10 s, all in one bin); `saturated` says so.
//! At report time the bins become an HdrHistogram with the wire contract's bounds
//! (`voqa_wire::histogram`), each bin's count recorded at its midpoint.
//! Must not allocate or read the clock.

use voqa_wire::histogram::Histogram;

/// Exact bins below 16 units (160 µs).
const LINEAR: usize = 16;
/// Bins per octave above that.
const PER_OCTAVE: usize = 8;
/// Octaves 2^4..2^16 units.
const OCTAVES: usize = 12;
pub const BINS: usize = LINEAR + PER_OCTAVE * OCTAVES;
const UNIT_US: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterBins {
    counts: [u16; BINS],
}

impl Default for JitterBins {
    fn default() -> Self {
        Self { counts: [0; BINS] }
    }
}

/// The bin of a jitter value in 10 µs units.
fn bin_of(units: u32) -> usize {
    if (units as usize) < LINEAR {
        return units as usize;
    }
    let octave = 31 - units.leading_zeros() as usize; // ≥ 4
    if octave >= 4 + OCTAVES {
        return BINS - 1;
    }
    let sub = ((units >> (octave - 3)) & 7) as usize;
    LINEAR + (octave - 4) * PER_OCTAVE + sub
}

/// Lowest value of a bin and its width, in 10 µs units.
fn bin_range(bin: usize) -> (u64, u64) {
    if bin < LINEAR {
        return (bin as u64, 1);
    }
    let octave = (bin - LINEAR) / PER_OCTAVE + 4;
    let sub = ((bin - LINEAR) % PER_OCTAVE) as u64;
    let width = 1u64 << (octave - 3);
    ((8 + sub) * width, width)
}

/// The value a bin's packets are reported at, in µs: the middle of the bin.
pub fn bin_midpoint_us(bin: usize) -> u64 {
    let (low, width) = bin_range(bin);
    low * UNIT_US + width * UNIT_US / 2
}

impl JitterBins {
    /// Counts one packet's jitter estimate (ms). NaN and negatives count as 0.
    #[inline]
    pub fn record_ms(&mut self, jitter_ms: f64) {
        // `as` saturates: huge values land in the top bin, NaN in bin 0.
        let units = (jitter_ms * (1000.0 / UNIT_US as f64)) as u32;
        let slot = &mut self.counts[bin_of(units)];
        *slot = slot.saturating_add(1);
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&c| c == 0)
    }

    /// Packets counted (a saturated bin counts as 65,535).
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    pub fn saturated(&self) -> bool {
        self.counts.contains(&u16::MAX)
    }

    /// Non-empty bins as `(midpoint µs, count)`, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(bin, &c)| (bin_midpoint_us(bin), u64::from(c)))
    }

    /// Fills `histogram` (cleared first) with these bins at their midpoints.
    pub fn fill(&self, histogram: &mut Histogram<u64>) {
        histogram.reset();
        for (value, count) in self.iter() {
            // Midpoints are below 1 s and the contract's histogram reaches 10 s.
            let _ = histogram.record_n(value, count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_by_hand() {
        assert_eq!(size_of::<JitterBins>(), 224);
        // 0.123 ms = 12.3 units → exact bin 12, reported at 125 µs.
        assert_eq!(bin_of(12), 12);
        assert_eq!(bin_midpoint_us(12), 125);
        // 16 units (160 µs) opens the first octave: bins of 2 units.
        assert_eq!(bin_of(16), 16);
        assert_eq!(bin_of(17), 16);
        assert_eq!(bin_of(18), 17);
        assert_eq!(bin_midpoint_us(16), 170);
        // 2.25 ms = 225 units: octave 7 (128..256, width 16), sub (225 >> 4) & 7 = 6.
        assert_eq!(bin_of(225), 16 + 3 * 8 + 6);
        assert_eq!(bin_range(16 + 3 * 8 + 6), (224, 16));
        assert_eq!(bin_midpoint_us(16 + 3 * 8 + 6), 2_320);
        // 30 ms = 3000 units: octave 11 (2048..4096, width 256), sub 3 → 2816..3072.
        assert_eq!(bin_range(bin_of(3000)), (2816, 256));
        // The top: 65535 units is the last bin; above it clamps there.
        assert_eq!(bin_of(65_535), BINS - 1);
        assert_eq!(bin_of(1 << 20), BINS - 1);
        assert_eq!(bin_of(u32::MAX), BINS - 1);
        assert_eq!(bin_range(BINS - 1), (61_440, 4_096));
    }

    #[test]
    fn records_and_saturates() {
        let mut bins = JitterBins::default();
        assert!(bins.is_empty());
        for ms in [0.0, 0.004, 0.123, 2.25, 2.3, f64::NAN, -1.0, 1e9] {
            bins.record_ms(ms);
        }
        let got: Vec<(u64, u64)> = bins.iter().collect();
        assert_eq!(
            got,
            vec![(5, 4), (125, 1), (2_320, 2), (bin_midpoint_us(BINS - 1), 1)]
        );
        for _ in 0..70_000 {
            bins.record_ms(0.001);
        }
        assert!(bins.saturated());
        assert_eq!(bins.total(), 65_535 + 4);
    }

    #[test]
    fn fills_a_contract_histogram() {
        let mut bins = JitterBins::default();
        for i in 0..100 {
            bins.record_ms(f64::from(i) * 0.5);
        }
        let mut h = voqa_wire::histogram::new_jitter_histogram();
        h.record(1).expect("in range");
        bins.fill(&mut h);
        assert_eq!(h.len(), 100);
        // The 95th of 0, 0.5, …, 49.5 ms is 47.0 ms = 4700 units: octave 12 (4096..8192,
        // width 512), sub 1 → 4608..5120 units, reported at its middle, 48.64 ms.
        let p95 = voqa_wire::histogram::quantile_ms(&h, 0.95).expect("non-empty");
        assert!((p95 - 48.64).abs() < 48.64 / 256.0, "{p95}");
    }

    proptest! {
        #[test]
        fn midpoint_within_a_sixteenth(units in 0u32..65_536) {
            let bin = bin_of(units);
            let (low, width) = bin_range(bin);
            prop_assert!(low <= u64::from(units) && u64::from(units) < low + width);
            let mid = bin_midpoint_us(bin) as f64;
            let value = f64::from(units) * UNIT_US as f64;
            if units >= 16 {
                prop_assert!((mid - value).abs() <= value / 16.0, "{} vs {}", mid, value);
            } else {
                prop_assert!((mid - value).abs() <= 5.0);
            }
        }

        #[test]
        fn bins_are_monotonic(a in 0u32..70_000, b in 0u32..70_000) {
            if a <= b {
                prop_assert!(bin_of(a) <= bin_of(b));
            }
        }
    }
}
