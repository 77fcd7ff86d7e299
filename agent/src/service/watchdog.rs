//! When the agent may tell systemd's watchdog it is alive: only while every capture worker
//! makes progress. Each worker counts the passes of its loop (`WorkerStats::loop_passes`); a
//! live worker passes at least every quarter second even with no traffic (its source's longest
//! wait), so a counter that stands still for [`stall_after`] is a wedged worker, and the agent
//! stops feeding the watchdog so that systemd restarts it.
//!
//! Pure: the caller reads the counters and the clock and sends the notifications; this must
//! not sleep, read a clock or do I/O.

use std::time::{Duration, Instant};

/// The shortest silence that counts as a stall: several of a live source's longest waits
/// (250 ms), so an idle worker is never taken for a wedged one.
pub const MIN_STALL: Duration = Duration::from_secs(1);

/// How long a worker may go without a pass before the watchdog is no longer fed: half the
/// watchdog period (so systemd acts within one and a half periods of the wedge), at least
/// [`MIN_STALL`].
pub fn stall_after(watchdog: Duration) -> Duration {
    (watchdog / 2).max(MIN_STALL)
}

/// A worker that made no progress for `silent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    pub worker: usize,
    pub silent: Duration,
}

/// The last change seen of each worker's pass counter.
#[derive(Debug)]
pub struct ProgressWatch {
    stall_after: Duration,
    seen: Vec<(u64, Instant)>,
}

impl ProgressWatch {
    /// `passes`: each worker's counter now.
    pub fn new(passes: &[u64], stall_after: Duration, now: Instant) -> Self {
        ProgressWatch {
            stall_after,
            seen: passes.iter().map(|&p| (p, now)).collect(),
        }
    }

    /// Notes the counters at `now`; the worker silent the longest, if any has been silent for
    /// `stall_after` or more.
    pub fn observe(&mut self, passes: &[u64], now: Instant) -> Option<Stall> {
        let mut worst: Option<Stall> = None;
        for (worker, (&p, seen)) in passes.iter().zip(self.seen.iter_mut()).enumerate() {
            if p != seen.0 {
                *seen = (p, now);
                continue;
            }
            let silent = now.saturating_duration_since(seen.1);
            if silent >= self.stall_after && worst.is_none_or(|w| silent > w.silent) {
                worst = Some(Stall { worker, silent });
            }
        }
        worst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_threshold_is_half_the_period_but_at_least_a_second() {
        assert_eq!(
            stall_after(Duration::from_secs(30)),
            Duration::from_secs(15)
        );
        assert_eq!(stall_after(Duration::from_millis(600)), MIN_STALL);
    }

    #[test]
    fn a_worker_whose_counter_stands_still_is_a_stall_until_it_moves_again() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut w = ProgressWatch::new(&[5, 9], s, t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(w.observe(&[6, 10], at(300)), None);
        // Worker 1 stops at 10; worker 0 goes on.
        assert_eq!(w.observe(&[7, 10], at(900)), None);
        assert_eq!(w.observe(&[8, 10], at(1299)), None, "999 ms silent");
        assert_eq!(
            w.observe(&[9, 10], at(1300)),
            Some(Stall {
                worker: 1,
                silent: s
            })
        );
        // Both stand still: the longest silence is named.
        assert_eq!(
            w.observe(&[9, 10], at(2400)),
            Some(Stall {
                worker: 1,
                silent: Duration::from_millis(2100)
            })
        );
        // Progress again: healthy at once.
        assert_eq!(w.observe(&[10, 11], at(2500)), None);
    }
}
