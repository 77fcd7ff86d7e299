//! Live capture as a [`Source`]: the AF_PACKET ring (zero-copy, kernel timestamps and drop
//! counters) and pnet's datalink channel (the portable fallback: one copy per packet by pnet,
//! user-space timestamps, no drop counters).
//!
//! These sources map packet time to the wall clock: packets carry wall-clock stamps, so a wait
//! for packet time `t` ends at wall time `t` plus [`QUIET_LAG_NS`], and "nothing arrived" is
//! reported as a quiet advance to the wall clock minus that lag. This is the only place where
//! the wall clock meets the analysis; nothing here decodes or keeps packets.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::source::{Next, Source, SourceError, Wait};
use crate::capture::Frame;
use crate::capture::afpacket::{KernelCounters, PacketRing};
use crate::capture::frame::LINKTYPE_ETHERNET;

/// How far behind the wall clock a quiet source moves packet time: later than any packet still
/// sitting in an unretired ring block (retire timeout: tens of ms).
pub const QUIET_LAG_NS: i64 = 1_000_000_000;

/// Longest single wait, so the worker sees its stop flag promptly even with nothing due.
const MAX_WAIT: Duration = Duration::from_millis(250);

/// Back-off after a capture error, so a persistent error does not spin.
const ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Wall-clock time, nanoseconds since the Unix epoch.
pub fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// How long to wait for frames when the worker allows `wait`.
fn wait_time(wait: Wait) -> Duration {
    match wait {
        Wait::NoWait => Duration::ZERO,
        Wait::Idle => MAX_WAIT,
        Wait::Until(t) => {
            let left = t.saturating_add(QUIET_LAG_NS).saturating_sub(wall_ns());
            Duration::from_nanos(u64::try_from(left).unwrap_or(0)).min(MAX_WAIT)
        }
    }
}

/// One worker's AF_PACKET ring.
pub struct RingSource {
    ring: PacketRing,
    /// Drop the host's outgoing copies (loopback sees each packet twice; the kernel ignores
    /// PACKET_IGNORE_OUTGOING for fanout members).
    skip_outgoing: bool,
    stats_every: Duration,
    last_stats: Option<Instant>,
}

impl RingSource {
    pub fn new(ring: PacketRing, skip_outgoing: bool, stats_every: Duration) -> Self {
        RingSource {
            ring,
            skip_outgoing,
            stats_every,
            last_stats: None,
        }
    }
}

impl Source for RingSource {
    fn next<F: FnMut(Frame<'_>)>(
        &mut self,
        wait: Wait,
        mut on_frame: F,
    ) -> Result<Next, SourceError> {
        match self.ring.next_block(wait_time(wait)) {
            Ok(Some(block)) => {
                for f in block.frames() {
                    if self.skip_outgoing && f.is_outgoing() {
                        continue;
                    }
                    on_frame(f);
                }
                Ok(Next::Frames)
            }
            Ok(None) => Ok(Next::Quiet(wall_ns() - QUIET_LAG_NS)),
            Err(e) => {
                std::thread::sleep(ERROR_BACKOFF);
                Err(e.into())
            }
        }
    }

    fn capture_counters(&mut self, now: bool) -> Option<KernelCounters> {
        let due = self
            .last_stats
            .is_none_or(|at| at.elapsed() >= self.stats_every);
        if !(now || due) {
            return None;
        }
        self.last_stats = Some(Instant::now());
        self.ring.stats().ok()
    }

    fn close_time(&self) -> Option<i64> {
        Some(wall_ns())
    }
}

/// pnet's datalink channel (its read timeout bounds each wait).
pub struct PnetSource {
    rx: Box<dyn pnet_datalink::DataLinkReceiver>,
}

impl PnetSource {
    pub fn new(rx: Box<dyn pnet_datalink::DataLinkReceiver>) -> Self {
        PnetSource { rx }
    }
}

impl Source for PnetSource {
    fn next<F: FnMut(Frame<'_>)>(
        &mut self,
        wait: Wait,
        mut on_frame: F,
    ) -> Result<Next, SourceError> {
        // pnet cannot tell what is already queued without waiting: nothing to drain.
        if wait == Wait::NoWait {
            return Ok(Next::End);
        }
        match self.rx.next() {
            Ok(data) => {
                let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
                on_frame(Frame::new(wall_ns(), LINKTYPE_ETHERNET, data, len));
                Ok(Next::Frames)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                Ok(Next::Quiet(wall_ns() - QUIET_LAG_NS))
            }
            Err(e) => {
                std::thread::sleep(ERROR_BACKOFF);
                Err(SourceError::Pnet(e))
            }
        }
    }

    fn close_time(&self) -> Option<i64> {
        Some(wall_ns())
    }
}
