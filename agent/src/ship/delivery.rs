//! Delivery to a collector, assembled: the sink the pipeline writes to (records go to the disk
//! spool, never to the network), the spool as the shipper's outbox, and the shipper.
//!
//! ```text
//! capture workers ──channel──► sink thread: SpoolSink::send ──append──► spool (disk)
//!                                                                   │
//!                               shipper thread (tokio) ◄─read_batch─┘──ack after 2xx
//! ```
//!
//! The sink stamps each heartbeat with the spool's counters as it writes it, so heartbeats
//! report the queue (pending, dropped by the cap, corrupt, dead letter) without another path
//! from the shipper to the heartbeat code. It must not block on the network: a full or failing
//! disk makes `send` fail (counted as dropped by the pipeline), nothing else does.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use voqa_wire::{AgentRecord, ShippingCounters};

use super::ReportSink;
use super::config::{FsyncSetting, ShipConfig};
use super::http::{DrainError, Outbox, ShipError, ShipState, Shipper, ShipperSettings, Waker};
use super::record;
use super::spool::{Cursor, FsyncPolicy, Recovery, Spool, SpoolConfig, SpoolError};

/// The spool seen as the shipper's outbox: remembers the cursor of the batch in flight.
#[derive(Debug)]
pub struct SpoolOutbox {
    spool: Spool,
    in_flight: Option<Cursor>,
}

fn io_error(e: SpoolError) -> io::Error {
    io::Error::other(e.to_string())
}

impl SpoolOutbox {
    pub fn counters(&self) -> ShippingCounters {
        self.spool.counters()
    }
}

impl Outbox for SpoolOutbox {
    fn pending(&self) -> (u64, u64) {
        let c = self.spool.counters();
        (c.pending_records, c.pending_bytes)
    }

    fn read_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<Vec<u8>>,
    ) -> io::Result<bool> {
        self.in_flight = self
            .spool
            .read_batch(max_records, max_bytes, out)
            .map_err(io_error)?;
        Ok(self.in_flight.is_some())
    }

    fn ack_batch(&mut self) -> io::Result<()> {
        match self.in_flight.take() {
            Some(c) => self.spool.ack(c).map_err(io_error),
            None => Ok(()),
        }
    }

    fn dead_letter_batch(&mut self, records: &[Vec<u8>]) -> io::Result<()> {
        match self.in_flight.take() {
            Some(c) => self.spool.dead_letter(c, records).map_err(io_error),
            None => Ok(()),
        }
    }
}

/// The pipeline's sink when shipping to a collector: appends every record to the spool.
pub struct SpoolSink {
    outbox: Arc<Mutex<SpoolOutbox>>,
    waker: Waker,
    buf: Vec<u8>,
    /// The shipper is woken only when it has something to decide: the spool went from empty
    /// to not empty (its batch-age clock starts), or a full batch waits. Waking it for every
    /// record costs a thread switch per record for nothing.
    wake_records: u64,
    wake_bytes: u64,
}

impl ReportSink for SpoolSink {
    fn send(&mut self, record: &AgentRecord) -> io::Result<()> {
        let mut outbox = self
            .outbox
            .lock()
            .map_err(|_| io::Error::other("spool lock poisoned"))?;
        let encoded = match record {
            AgentRecord::Heartbeat(h) if h.shipping.is_none() => {
                let mut h = h.clone();
                h.shipping = Some(outbox.counters());
                record::encode(&AgentRecord::Heartbeat(h), &mut self.buf)
            }
            _ => record::encode(record, &mut self.buf),
        };
        encoded.map_err(io::Error::other)?;
        outbox.spool.append(&self.buf).map_err(io_error)?;
        let (records, bytes) = outbox.pending();
        drop(outbox);
        if records == 1 || records >= self.wake_records || bytes >= self.wake_bytes {
            self.waker.wake();
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.outbox
            .lock()
            .map_err(|_| io::Error::other("spool lock poisoned"))?
            .spool
            .sync_if_due()
            .map_err(io_error)?;
        self.waker.wake();
        Ok(())
    }
}

/// The running delivery: spool and shipper.
pub struct Delivery {
    shipper: Shipper<SpoolOutbox>,
    outbox: Arc<Mutex<SpoolOutbox>>,
    pub recovery: Recovery,
    pub spool_dir: PathBuf,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("spool_dir", &self.spool_dir)
            .finish()
    }
}

/// Why delivery could not start (the wrapped errors speak for themselves).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Ship(#[from] ShipError),
    #[error("ship.spool_fsync: {0}")]
    Fsync(String),
}

/// The spool settings of a `[ship]` section, in `dir`.
pub fn spool_config(cfg: &ShipConfig, dir: PathBuf) -> Result<SpoolConfig, DeliveryError> {
    let mut s = SpoolConfig::new(dir);
    s.max_bytes = cfg.spool_max_bytes;
    // Segments small enough that the cap drops in fine steps (at least 8 segments fit).
    s.segment_bytes = s.segment_bytes.min(cfg.spool_max_bytes / 8).max(1 << 20);
    s.fsync = match cfg.fsync().map_err(DeliveryError::Fsync)? {
        FsyncSetting::Always => FsyncPolicy::EveryWrite,
        FsyncSetting::Never => FsyncPolicy::Never,
        FsyncSetting::Every(d) => FsyncPolicy::Interval(d),
    };
    Ok(s)
}

impl Delivery {
    /// Opens (and recovers) the spool and starts the shipper. The returned sink goes to the
    /// pipeline's sink thread.
    pub fn start(
        settings: ShipperSettings,
        spool: SpoolConfig,
    ) -> Result<(Box<dyn ReportSink>, Delivery), DeliveryError> {
        let spool_dir = spool.dir.clone();
        let (spool, recovery) = Spool::open(spool)?;
        let outbox = Arc::new(Mutex::new(SpoolOutbox {
            spool,
            in_flight: None,
        }));
        let (wake_records, wake_bytes) = (
            settings.batch_max_records as u64,
            settings.batch_max_bytes as u64,
        );
        let shipper = Shipper::start(settings, Arc::clone(&outbox))?;
        let sink = SpoolSink {
            outbox: Arc::clone(&outbox),
            waker: shipper.waker(),
            buf: Vec::with_capacity(4096),
            wake_records,
            wake_bytes,
        };
        Ok((
            Box::new(sink),
            Delivery {
                shipper,
                outbox,
                recovery,
                spool_dir,
            },
        ))
    }

    pub fn counters(&self) -> ShippingCounters {
        self.outbox.lock().map(|o| o.counters()).unwrap_or_default()
    }

    pub fn state(&self) -> ShipState {
        self.shipper.state()
    }

    pub fn reload_token(&self) -> Result<(), ShipError> {
        self.shipper.reload_token()
    }

    /// Delivers everything spooled. Gives up when nothing was acknowledged for `idle_limit`
    /// (`None`: never), with what is left and why.
    pub fn drain(&self, idle_limit: Option<Duration>) -> Result<(), DrainError> {
        let acked = || {
            self.shipper
                .counters()
                .records_acked
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let mut last = acked();
        let mut since = Instant::now();
        loop {
            match self.shipper.drain(Some(Duration::from_millis(500))) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let now = acked();
                    if now != last {
                        last = now;
                        since = Instant::now();
                    } else if idle_limit.is_some_and(|l| since.elapsed() >= l) {
                        return Err(DrainError {
                            waited_s: since.elapsed().as_secs(),
                            ..e
                        });
                    }
                }
            }
        }
    }

    pub fn shipper_counters(&self) -> &super::http::ShipperCounters {
        self.shipper.counters()
    }

    /// Syncs the spool and stops the shipper; what is not delivered stays for the next start.
    /// (Dropping the delivery does the same.)
    pub fn stop(self) {}
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Ok(mut o) = self.outbox.lock() {
            let _ = o.spool.sync();
        }
        // The shipper's own Drop stops its thread after the current request.
    }
}
