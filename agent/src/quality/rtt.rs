//! Round-trip time from RTCP as seen at the capture point (metrics-spec §5.3 and the project
//! decision on session RTT): SRs are remembered by the middle 32 bits of their NTP timestamp, report
//! blocks quoting them as LSR give samples `(t_rr − t_sr) − DLSR` on the capture clock.
//!
//! Bounded memory: the last 16 SRs per sender, at most `max_samples` samples per sender and
//! `max_ssrcs` tracked SSRCs (oldest dropped). Times are passed in (capture ns); no I/O, no clock.
//! Called per RTCP packet, not per RTP packet; medians allocate a small scratch vector.
//!
//! It must be fed clear RTCP only: SRTCP (RTCP of SRTP media) is encrypted after its first 8
//! bytes, so its "NTP timestamp", LSR and DLSR are ciphertext that can still match a remembered
//! SR by chance. The analyzer recognises SRTCP and never passes it here.

use std::collections::VecDeque;

use foldhash::fast::FixedState;
use hashbrown::HashMap;

/// SRs remembered per sender (§5.3 step 1).
pub const SR_HISTORY: usize = 16;
pub const DEFAULT_MAX_SAMPLES: usize = 256;
pub const DEFAULT_MAX_SSRCS: usize = 4096;
/// SSRCs linked by report blocks remembered per SSRC (oldest replaced).
pub const MAX_PEERS: usize = 16;
/// Samples whose SR was captured longer ago than this are rejected (§5.3 step 3).
pub const MAX_SR_AGE_NS: i64 = 60_000_000_000;

const NS_PER_MS: f64 = 1e6;

#[derive(Debug, Clone)]
struct SsrcEntry {
    /// (NTP middle 32 bits, capture ns) of recent SRs, ring buffer.
    srs: [(u32, i64); SR_HISTORY],
    sr_count: usize,
    sr_next: usize,
    /// RTT samples (ms) attributed to this SSRC as SR sender.
    samples: VecDeque<f64>,
    /// SSRCs this one reported on or that reported on it.
    peers: [u32; MAX_PEERS],
    peer_count: usize,
    peer_next: usize,
}

impl SsrcEntry {
    fn new() -> Self {
        SsrcEntry {
            srs: [(0, 0); SR_HISTORY],
            sr_count: 0,
            sr_next: 0,
            samples: VecDeque::new(),
            peers: [0; MAX_PEERS],
            peer_count: 0,
            peer_next: 0,
        }
    }

    fn remember_sr(&mut self, key: u32, capture_ns: i64) {
        if let Some(slot) = self.srs.get_mut(self.sr_next) {
            *slot = (key, capture_ns);
        }
        self.sr_next = (self.sr_next + 1) % SR_HISTORY;
        self.sr_count = (self.sr_count + 1).min(SR_HISTORY);
    }

    /// Capture time of the most recent SR with this key.
    fn find_sr(&self, key: u32) -> Option<i64> {
        (1..=self.sr_count)
            .filter_map(|back| {
                let index = (self.sr_next + SR_HISTORY - back) % SR_HISTORY;
                self.srs.get(index)
            })
            .find(|(stored, _)| *stored == key)
            .map(|&(_, capture_ns)| capture_ns)
    }

    fn link(&mut self, peer: u32) {
        let known = self.peers.get(..self.peer_count).unwrap_or(&[]);
        if known.contains(&peer) {
            return;
        }
        if let Some(slot) = self.peers.get_mut(self.peer_next) {
            *slot = peer;
        }
        self.peer_next = (self.peer_next + 1) % MAX_PEERS;
        self.peer_count = (self.peer_count + 1).min(MAX_PEERS);
    }

    fn peers(&self) -> &[u32] {
        self.peers.get(..self.peer_count).unwrap_or(&[])
    }

    fn median_ms(&self) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<f64> = self.samples.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let upper = *sorted.get(middle)?;
        if sorted.len() % 2 == 1 {
            Some(upper)
        } else {
            let lower = *sorted.get(middle.checked_sub(1)?)?;
            Some((lower + upper) / 2.0)
        }
    }
}

/// Capture-point RTT estimator for all RTCP sessions of a capture.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    entries: HashMap<u32, SsrcEntry, FixedState>,
    /// Insertion order, for dropping the oldest SSRC when full.
    order: VecDeque<u32>,
    max_ssrcs: usize,
    max_samples: usize,
}

impl Default for RttEstimator {
    fn default() -> Self {
        Self::new()
    }
}

impl RttEstimator {
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_SSRCS, DEFAULT_MAX_SAMPLES)
    }

    /// Custom bounds (each at least 1).
    pub fn with_limits(max_ssrcs: usize, max_samples: usize) -> Self {
        RttEstimator {
            entries: HashMap::with_hasher(FixedState::default()),
            order: VecDeque::new(),
            max_ssrcs: max_ssrcs.max(1),
            max_samples: max_samples.max(1),
        }
    }

    /// Number of SSRCs currently tracked.
    pub fn tracked_ssrcs(&self) -> usize {
        self.entries.len()
    }

    fn entry_mut(&mut self, ssrc: u32) -> Option<&mut SsrcEntry> {
        if !self.entries.contains_key(&ssrc) {
            while self.entries.len() >= self.max_ssrcs {
                match self.order.pop_front() {
                    Some(oldest) => {
                        self.entries.remove(&oldest);
                    }
                    None => break,
                }
            }
            self.entries.insert(ssrc, SsrcEntry::new());
            self.order.push_back(ssrc);
        }
        self.entries.get_mut(&ssrc)
    }

    /// Remembers an SR: key = middle 32 bits of its NTP timestamp, captured at `capture_ns`.
    pub fn on_sender_report(&mut self, sender_ssrc: u32, ntp_middle32: u32, capture_ns: i64) {
        if let Some(entry) = self.entry_mut(sender_ssrc) {
            entry.remember_sr(ntp_middle32, capture_ns);
        }
    }

    /// A report block from `reporter_ssrc` about `source_ssrc` captured at `capture_ns`. Links the
    /// two SSRCs into one session and, if LSR matches a remembered SR of `source_ssrc`, records and
    /// returns the sample `(t_rr − t_sr) − DLSR/65536 s` in ms. None if LSR is 0, no SR matches, the
    /// sample is negative or the SR is more than 60 s old.
    pub fn on_report_block(
        &mut self,
        capture_ns: i64,
        reporter_ssrc: u32,
        source_ssrc: u32,
        lsr: u32,
        dlsr: u32,
    ) -> Option<f64> {
        if reporter_ssrc != source_ssrc {
            if let Some(reporter) = self.entry_mut(reporter_ssrc) {
                reporter.link(source_ssrc);
            }
            if let Some(source) = self.entry_mut(source_ssrc) {
                source.link(reporter_ssrc);
            }
        }
        if lsr == 0 {
            return None;
        }
        let max_samples = self.max_samples;
        let source = self.entries.get_mut(&source_ssrc)?;
        let sr_capture_ns = source.find_sr(lsr)?;
        let elapsed_ns = capture_ns.saturating_sub(sr_capture_ns);
        if elapsed_ns > MAX_SR_AGE_NS {
            return None;
        }
        let sample_ms = elapsed_ns as f64 / NS_PER_MS - f64::from(dlsr) * 1000.0 / 65536.0;
        if sample_ms < 0.0 {
            return None;
        }
        if source.samples.len() >= max_samples {
            source.samples.pop_front();
        }
        source.samples.push_back(sample_ms);
        Some(sample_ms)
    }

    /// Median of the samples attributed to SR sender `sender_ssrc`, ms.
    pub fn sender_median_ms(&self, sender_ssrc: u32) -> Option<f64> {
        self.entries.get(&sender_ssrc)?.median_ms()
    }

    /// Samples attributed to SR sender `sender_ssrc`, oldest first (for shipping to the collector).
    pub fn sender_samples_ms(&self, sender_ssrc: u32) -> impl Iterator<Item = f64> + '_ {
        self.entries
            .get(&sender_ssrc)
            .into_iter()
            .flat_map(|entry| entry.samples.iter().copied())
    }

    /// RTT of the session `ssrc` belongs to (project decision): the SSRC plus every SSRC linked to
    /// it by a report block in either direction; sum of the medians of those with samples (the
    /// whole round trip when capturing mid-path, ≈ one median when at an endpoint). None without
    /// any sample.
    pub fn session_rtt_ms(&self, ssrc: u32) -> Option<f64> {
        let entry = self.entries.get(&ssrc)?;
        let mut members = [0u32; MAX_PEERS + 1];
        members[0] = ssrc;
        let peers = entry.peers();
        for (slot, peer) in members.iter_mut().skip(1).zip(peers) {
            *slot = *peer;
        }
        let members = members.get_mut(..=peers.len())?;
        // Fixed summation order keeps the result independent of hash order.
        members.sort_unstable();
        let mut total: Option<f64> = None;
        let mut previous: Option<u32> = None;
        for &member in members.iter() {
            if previous == Some(member) {
                continue;
            }
            previous = Some(member);
            if let Some(median) = self.sender_median_ms(member) {
                total = Some(total.unwrap_or(0.0) + median);
            }
        }
        total
    }
}

/// Endpoint formula of RFC 3550 §6.4.1: RTT = A − LSR − DLSR in NTP middle-32 units, as ms.
/// None if LSR is 0 or the result is negative.
pub fn rtt_from_fields(arrival_middle32: u32, lsr: u32, dlsr: u32) -> Option<f64> {
    if lsr == 0 {
        return None;
    }
    let units = arrival_middle32.wrapping_sub(lsr).wrapping_sub(dlsr) as i32;
    if units < 0 {
        return None;
    }
    Some(f64::from(units) * 1000.0 / 65536.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn t_rtt_1_endpoint_formula() {
        let rtt = rtt_from_fields(0xB710_8000, 0xB705_2000, 0x0005_4000);
        assert_eq!(rtt, Some(6125.0)); // 6.125 s
        assert_eq!(rtt_from_fields(0xB710_8000, 0, 0x0005_4000), None);
        assert_eq!(rtt_from_fields(0xB705_2000, 0xB705_2000, 1), None);
    }

    #[test]
    fn worked_example_5_3() {
        let mut rtt = RttEstimator::new();
        rtt.on_sender_report(0xA, 0xB705_2000, 10 * SECOND);
        let sample = rtt.on_report_block(15_400_000_000, 0xB, 0xA, 0xB705_2000, 0x0005_4000);
        assert!(sample.is_some_and(|ms| close(ms, 150.0)));
        assert!(rtt.sender_median_ms(0xA).is_some_and(|ms| close(ms, 150.0)));
        // Only one sender has samples: its median alone, from either SSRC of the session.
        assert!(rtt.session_rtt_ms(0xA).is_some_and(|ms| close(ms, 150.0)));
        assert!(rtt.session_rtt_ms(0xB).is_some_and(|ms| close(ms, 150.0)));
        assert_eq!(rtt.session_rtt_ms(0xC), None);
    }

    #[test]
    fn two_sender_session_sums_medians() {
        let mut rtt = RttEstimator::new();
        let (a, b) = (0x1111_1111, 0x2222_2222);
        for round in 0..5i64 {
            let t0 = round * 5 * SECOND;
            let key_a = 0x1000_0000 + round as u32;
            let key_b = 0x2000_0000 + round as u32;
            // A's SR leaves, B answers 1.080 s later having held it 1 s: 80 ms far leg.
            rtt.on_sender_report(a, key_a, t0);
            let far = rtt.on_report_block(t0 + 1_080_000_000 + round * 1000, b, a, key_a, 65_536);
            assert!(far.is_some());
            // B's SR arrives, A answers after holding it 0.5 s: 8 µs near leg.
            rtt.on_sender_report(b, key_b, t0 + 2 * SECOND);
            let near = rtt.on_report_block(t0 + 2_500_008_000, a, b, key_b, 32_768);
            assert!(near.is_some_and(|ms| close(ms, 0.008)));
        }
        // Far samples 80.000..80.004 ms: median 80.002.
        assert!(rtt.sender_median_ms(a).is_some_and(|ms| close(ms, 80.002)));
        assert!(rtt.sender_median_ms(b).is_some_and(|ms| close(ms, 0.008)));
        for ssrc in [a, b] {
            assert!(rtt.session_rtt_ms(ssrc).is_some_and(|ms| close(ms, 80.010)));
        }
        assert_eq!(rtt.sender_samples_ms(a).count(), 5);
    }

    #[test]
    fn even_count_median() {
        let mut rtt = RttEstimator::new();
        rtt.on_sender_report(1, 100, 0);
        rtt.on_report_block(10_000_000, 2, 1, 100, 0);
        rtt.on_report_block(30_000_000, 2, 1, 100, 0);
        assert!(rtt.sender_median_ms(1).is_some_and(|ms| close(ms, 20.0)));
    }

    #[test]
    fn rejections() {
        let mut rtt = RttEstimator::new();
        rtt.on_sender_report(1, 0x1234_5678, 10 * SECOND);
        // LSR 0: no SR received yet by the reporter.
        assert_eq!(rtt.on_report_block(11 * SECOND, 2, 1, 0, 0), None);
        // Unknown LSR, or an SR of another SSRC.
        assert_eq!(rtt.on_report_block(11 * SECOND, 2, 1, 0x1234_5679, 0), None);
        assert_eq!(rtt.on_report_block(11 * SECOND, 1, 2, 0x1234_5678, 0), None);
        // Negative: DLSR (2 s) longer than the elapsed 1 s.
        assert_eq!(
            rtt.on_report_block(11 * SECOND, 2, 1, 0x1234_5678, 131_072),
            None
        );
        // SR older than 60 s.
        assert_eq!(rtt.on_report_block(71 * SECOND, 2, 1, 0x1234_5678, 0), None);
        assert!(
            rtt.on_report_block(70 * SECOND, 2, 1, 0x1234_5678, 0)
                .is_some()
        );
        assert_eq!(rtt.sender_samples_ms(1).count(), 1);
        // Extreme times don't panic.
        assert_eq!(rtt.on_report_block(i64::MIN, 2, 1, 0x1234_5678, 0), None);
        assert_eq!(rtt.on_report_block(i64::MAX, 2, 1, 0x1234_5678, 0), None);
    }

    #[test]
    fn bounded_memory() {
        let mut rtt = RttEstimator::with_limits(4, 3);
        // Only the last 16 SRs are remembered.
        for key in 1..=20u32 {
            rtt.on_sender_report(1, key, i64::from(key) * SECOND);
        }
        assert_eq!(rtt.on_report_block(21 * SECOND, 2, 1, 4, 0), None);
        assert!(rtt.on_report_block(21 * SECOND, 2, 1, 5, 0).is_some());
        for _ in 0..10 {
            rtt.on_report_block(21 * SECOND, 2, 1, 20, 0);
        }
        assert_eq!(rtt.sender_samples_ms(1).count(), 3);
        // Senders beyond the limit push out the oldest.
        for ssrc in 10..20u32 {
            rtt.on_sender_report(ssrc, 7, 0);
        }
        assert_eq!(rtt.tracked_ssrcs(), 4);
        assert_eq!(rtt.sender_median_ms(1), None);
        // Many peers: bounded, no panic.
        let mut rtt = RttEstimator::new();
        for reporter in 0..100u32 {
            rtt.on_report_block(0, reporter + 1000, 5, 0, 0);
        }
        assert_eq!(rtt.session_rtt_ms(5), None);
        let limited = RttEstimator::with_limits(0, 0);
        assert_eq!(limited.max_ssrcs, 1);
    }
}
