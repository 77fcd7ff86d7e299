//! What the worker loop reads from: a [`Source`] hands over batches of borrowed
//! [`Frame`]s, says when nothing arrived until some packet time (quiet advance), gives kernel
//! drop counters where it has them, and says when input ends.
//!
//! Sources own the mapping between packet time and their clock: a live source waits on the
//! wall clock, a file source at full speed never waits, a paced replay sleeps. The analysis
//! behind them sees packet time only. A source must never copy packet bytes or allocate per
//! frame: frames are lent to the callback for the duration of one call.

use crate::capture::Frame;
use crate::capture::afpacket::{KernelCounters, RingError};

/// How long a source may wait for frames in one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Hand over what is already there and return (draining at shutdown).
    NoWait,
    /// Nothing is due: wait for frames up to the source's own idle period.
    Idle,
    /// Wait for frames at most until this packet-time instant (the analyzer's next deadline).
    Until(i64),
}

/// What one call of [`Source::next`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A batch of frames went to the callback (possibly none: an empty retired ring block).
    Frames,
    /// Nothing arrived: no frame older than this packet time can still come (quiet advance).
    Quiet(i64),
    /// One input file ended (file sources); the next call continues with the following file.
    FileDone,
    /// No frame will ever come again.
    End,
}

/// A source failure the worker reports and then keeps reading through (a live source backs
/// off before returning one, so the loop never spins).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Ring(#[from] RingError),
    #[error("pnet channel: {0}")]
    Pnet(std::io::Error),
    #[error(transparent)]
    File(#[from] crate::capture::CaptureError),
}

/// A packet source driven by the worker loop.
pub trait Source {
    /// Hands the next batch of frames to `on_frame`, waiting for one as `wait` allows.
    fn next<F: FnMut(Frame<'_>)>(&mut self, wait: Wait, on_frame: F) -> Result<Next, SourceError>;

    /// Kernel capture counters (cumulative), for sources that have them. Sources read the
    /// kernel at their own pace and answer `None` in between, unless `now` asks for a reading.
    fn capture_counters(&mut self, now: bool) -> Option<KernelCounters> {
        let _ = now;
        None
    }

    /// Packet time at which streams still open when the source stops are closed: the wall
    /// clock for live sources; `None` for files (the last packet time).
    fn close_time(&self) -> Option<i64> {
        None
    }
}
