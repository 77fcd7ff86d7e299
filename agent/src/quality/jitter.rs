//! RFC 3550 interarrival jitter (metrics-spec §4, App. A.8), float and integer forms, plus the
//! per-packet summary (max and mean of the estimate) that the `analyze` output reports.
//!
//! Pure and deterministic: capture times are passed in (nanoseconds), the clock is never read; no
//! I/O, no allocation. Deciding which packets feed the estimator (telephone-event and CN are
//! excluded, §1.5) is the caller's job.

/// Jitter estimator of one stream; 64 bytes (size asserted in the tests).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Jitter {
    /// Arrival (ns) and RTP timestamp of the previous packet; `clock_hz == 0` means "none yet".
    prev_arrival_ns: i64,
    prev_ts: u32,
    clock_hz: u32,
    /// Float estimate J, timestamp units.
    estimate_ts: f64,
    /// Integer form: 16 × J, as RFC 3550 A.8 keeps it.
    estimate_q4: i64,
    max_ms: f64,
    sum_ms: f64,
    samples: u64,
}

impl Jitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one packet in arrival order. The first packet (or the first with a different clock)
    /// only sets the reference; a clock of 0 (unknown) is ignored.
    pub fn on_packet(&mut self, arrival_ns: i64, rtp_ts: u32, clock_hz: u32) {
        if clock_hz == 0 {
            return;
        }
        if self.clock_hz != clock_hz {
            self.restart_reference(arrival_ns, rtp_ts, clock_hz);
            return;
        }
        let arrival_delta_ns = arrival_ns.saturating_sub(self.prev_arrival_ns);
        // Differences, not absolute transit times, keep full precision and handle ts wrap.
        let arrival_delta_ts = arrival_delta_ns as f64 * f64::from(clock_hz) / 1e9;
        let ts_delta = f64::from(rtp_ts.wrapping_sub(self.prev_ts) as i32);
        let deviation = (arrival_delta_ts - ts_delta).abs();
        self.prev_arrival_ns = arrival_ns;
        self.prev_ts = rtp_ts;

        self.estimate_ts += (deviation - self.estimate_ts) / 16.0;
        // `as` saturates for huge or NaN deviations; the integer form never overflows below.
        // `deviation >= 0`, so adding 0.5 and truncating rounds half away from zero like
        // `f64::round`, without the libm call on the per-packet path.
        let rounded = (deviation + 0.5) as i64;
        self.estimate_q4 = self
            .estimate_q4
            .saturating_add(rounded)
            .saturating_sub(self.estimate_q4.saturating_add(8) >> 4);

        let estimate_ms = self.jitter_ms(clock_hz);
        self.max_ms = self.max_ms.max(estimate_ms);
        self.sum_ms += estimate_ms;
        self.samples = self.samples.saturating_add(1);
    }

    fn restart_reference(&mut self, arrival_ns: i64, rtp_ts: u32, clock_hz: u32) {
        self.prev_arrival_ns = arrival_ns;
        self.prev_ts = rtp_ts;
        self.clock_hz = clock_hz;
        self.estimate_ts = 0.0;
        self.estimate_q4 = 0;
    }

    /// Restarts the estimator (after a sequence restart): the next packet sets a new reference and
    /// J starts from 0. The max/mean summaries keep covering the whole stream; use
    /// [`Jitter::new`] to drop them too.
    pub fn reset(&mut self) {
        self.clock_hz = 0;
        self.estimate_ts = 0.0;
        self.estimate_q4 = 0;
    }

    /// Current float estimate J in timestamp units.
    pub fn jitter_ts(&self) -> f64 {
        self.estimate_ts
    }

    /// Current estimate in ms for the given RTP clock (0 for an unknown clock).
    pub fn jitter_ms(&self, clock_hz: u32) -> f64 {
        if clock_hz == 0 {
            return 0.0;
        }
        self.estimate_ts * 1000.0 / f64::from(clock_hz)
    }

    /// Largest per-packet estimate (packets 2..N), ms.
    pub fn max_ms(&self) -> f64 {
        self.max_ms
    }

    /// Mean of the per-packet estimates (packets 2..N), ms; 0 without any.
    pub fn mean_ms(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.sum_ms / self.samples as f64
        }
    }

    /// Sum and count of the per-packet estimates (ms), for merging means across windows.
    pub fn sum_ms(&self) -> f64 {
        self.sum_ms
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// RR "interarrival jitter" field from the float form (J truncated).
    pub fn rr_jitter(&self) -> u32 {
        self.estimate_ts as u32
    }

    /// RR field from the integer form of A.8 (`Jq4 >> 4`), as endpoints compute it.
    pub fn rr_jitter_integer(&self) -> u32 {
        u32::try_from((self.estimate_q4 >> 4).max(0)).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(ms: f64) -> i64 {
        (ms * 1e6).round() as i64
    }

    #[test]
    fn t_jit_1() {
        let packets = [
            (0u32, 0.0),
            (160, 20.0),
            (320, 45.0),
            (480, 60.0),
            (640, 80.0),
            (800, 110.0),
            (960, 120.0),
            (1120, 140.0),
        ];
        let expected = [
            (0.0, 0, 0.0),
            (0.0, 0, 0.0),
            (2.5, 2, 0.3125),
            (4.84375, 4, 0.60546875),
            (4.541015625, 4, 0.567626953),
            (9.2572021484375, 9, 1.157150269),
            (13.678627014160156, 13, 1.709828377),
            (12.823712825775146, 12, 1.602964103),
        ];
        let q4 = [0, 0, 40, 77, 72, 147, 218, 204];
        let mut jitter = Jitter::new();
        let mut per_packet_ms = Vec::new();
        for (index, (&(ts, arrival), &(j, reported, j_ms))) in
            packets.iter().zip(expected.iter()).enumerate()
        {
            jitter.on_packet(ns(arrival), ts, 8000);
            assert!((jitter.jitter_ts() - j).abs() < 1e-9, "packet {index}");
            assert_eq!(jitter.estimate_q4, q4[index], "packet {index}");
            assert_eq!(jitter.rr_jitter_integer(), reported, "packet {index}");
            assert!(
                (jitter.jitter_ms(8000) - j_ms).abs() < 1e-9,
                "packet {index}"
            );
            if index > 0 {
                per_packet_ms.push(jitter.jitter_ms(8000));
            }
        }
        assert_eq!(jitter.rr_jitter(), 12);
        assert_eq!(jitter.samples(), 7);
        assert!((jitter.max_ms() - 1.7098283767700195).abs() < 1e-12);
        let mean = per_packet_ms.iter().sum::<f64>() / 7.0;
        assert!((jitter.mean_ms() - mean).abs() < 1e-12);
        assert!((mean - 0.8507912073816571).abs() < 1e-12);
    }

    #[test]
    fn t_jit_2_reordering() {
        let packets = [
            (0u32, 0.0),
            (160, 20.0),
            (480, 60.0),
            (320, 62.0),
            (640, 80.0),
        ];
        let expected_j = [0.0, 0.0, 0.0, 11.0, 21.3125];
        let expected_int = [0, 0, 0, 11, 21];
        let mut jitter = Jitter::new();
        for (index, &(ts, arrival)) in packets.iter().enumerate() {
            jitter.on_packet(ns(arrival), ts, 8000);
            assert!((jitter.jitter_ts() - expected_j[index]).abs() < 1e-9);
            assert_eq!(jitter.rr_jitter_integer(), expected_int[index]);
        }
        assert!((jitter.jitter_ms(8000) - 2.6640625).abs() < 1e-12);
        assert_eq!(jitter.estimate_q4, 341);
    }

    #[test]
    fn timestamp_wrap() {
        // Same input as T-JIT-1 with timestamps starting just below 2^32.
        let start = u32::MAX - 300;
        let arrivals = [0.0, 20.0, 45.0, 60.0, 80.0, 110.0, 120.0, 140.0];
        let mut jitter = Jitter::new();
        for (index, &arrival) in arrivals.iter().enumerate() {
            jitter.on_packet(ns(arrival), start.wrapping_add(160 * index as u32), 8000);
        }
        assert!((jitter.jitter_ts() - 12.823712825775146).abs() < 1e-9);
    }

    #[test]
    fn clock_handling_and_reset() {
        let mut jitter = Jitter::new();
        jitter.on_packet(0, 0, 0);
        assert_eq!(jitter.samples(), 0);
        jitter.on_packet(0, 0, 48_000);
        jitter.on_packet(ns(25.0), 960, 48_000); // 5 ms late = 240 ts units
        assert!((jitter.jitter_ts() - 15.0).abs() < 1e-9);
        assert!((jitter.jitter_ms(48_000) - 0.3125).abs() < 1e-12);
        // Clock change restarts the reference without a sample.
        jitter.on_packet(ns(30.0), 5, 8000);
        assert_eq!(jitter.jitter_ts(), 0.0);
        assert_eq!(jitter.samples(), 1);
        jitter.reset();
        jitter.on_packet(ns(1000.0), 77, 8000);
        assert_eq!(jitter.samples(), 1);
        assert!((jitter.max_ms() - 0.3125).abs() < 1e-12);
        // Absurd inputs do not panic.
        jitter.on_packet(i64::MIN, 0, 8000);
        jitter.on_packet(i64::MAX, u32::MAX, 8000);
        assert_eq!(jitter.jitter_ms(0), 0.0);
    }

    #[test]
    fn compact() {
        assert!(std::mem::size_of::<Jitter>() <= 64);
    }
}
