//! Kernel capture counters of one packet socket, accumulated from `PACKET_STATISTICS` reads.
//!
//! The kernel resets its counters on every read and, for TPACKET_V3, already counts dropped
//! packets inside `tp_packets`. This module folds those reset-on-read samples into cumulative
//! 64-bit totals and does nothing else: no syscalls, no `unsafe` (`socket.rs` reads the sample).

/// Cumulative kernel counters of one ring since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Packets that passed the filter, whether they reached the ring or were dropped.
    pub packets: u64,
    /// Packets that passed the filter but were dropped because the ring was full.
    pub drops: u64,
    /// Times the kernel froze the queue because no block was free.
    pub freezes: u64,
}

/// One reset-on-read `tpacket_stats_v3` sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSample {
    pub packets: u32,
    pub drops: u32,
    pub freezes: u32,
}

impl From<libc::tpacket_stats_v3> for StatsSample {
    fn from(raw: libc::tpacket_stats_v3) -> Self {
        Self {
            packets: raw.tp_packets,
            drops: raw.tp_drops,
            freezes: raw.tp_freeze_q_cnt,
        }
    }
}

impl KernelCounters {
    /// Adds a sample taken since the previous one. `packets` is added as is: it includes drops.
    pub fn accumulate(&mut self, sample: StatsSample) {
        self.packets = self.packets.saturating_add(u64::from(sample.packets));
        self.drops = self.drops.saturating_add(u64::from(sample.drops));
        self.freezes = self.freezes.saturating_add(u64::from(sample.freezes));
    }

    /// Packets that actually reached the ring.
    pub fn delivered(&self) -> u64 {
        self.packets.saturating_sub(self.drops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn samples_add_up_and_packets_already_include_drops() {
        let mut counters = KernelCounters::default();
        counters.accumulate(StatsSample {
            packets: 1000,
            drops: 0,
            freezes: 0,
        });
        counters.accumulate(StatsSample {
            packets: 500,
            drops: 120,
            freezes: 1,
        });
        counters.accumulate(StatsSample::default());
        assert_eq!(
            counters,
            KernelCounters {
                packets: 1500,
                drops: 120,
                freezes: 1
            }
        );
        assert_eq!(counters.delivered(), 1380);
    }

    #[test]
    fn totals_go_past_u32() {
        let mut counters = KernelCounters::default();
        let sample = StatsSample {
            packets: u32::MAX,
            drops: u32::MAX,
            freezes: 3,
        };
        counters.accumulate(sample);
        counters.accumulate(sample);
        assert_eq!(counters.packets, 2 * u64::from(u32::MAX));
        assert_eq!(counters.drops, 2 * u64::from(u32::MAX));
        assert_eq!(counters.freezes, 6);
        assert_eq!(counters.delivered(), 0);
    }

    #[test]
    fn conversion_from_the_kernel_struct() {
        let raw = libc::tpacket_stats_v3 {
            tp_packets: 7,
            tp_drops: 2,
            tp_freeze_q_cnt: 1,
        };
        assert_eq!(
            StatsSample::from(raw),
            StatsSample {
                packets: 7,
                drops: 2,
                freezes: 1
            }
        );
    }

    proptest! {
        #[test]
        fn accumulation_is_order_independent(samples in proptest::collection::vec(any::<(u32, u32, u32)>(), 0..50)) {
            let samples: Vec<StatsSample> = samples
                .into_iter()
                .map(|(packets, drops, freezes)| StatsSample { packets, drops, freezes })
                .collect();
            let mut forward = KernelCounters::default();
            samples.iter().for_each(|&s| forward.accumulate(s));
            let mut backward = KernelCounters::default();
            samples.iter().rev().for_each(|&s| backward.accumulate(s));
            prop_assert_eq!(forward, backward);
            let packets: u64 = samples.iter().map(|s| u64::from(s.packets)).sum();
            prop_assert_eq!(forward.packets, packets);
        }
    }
}
