//! The agent's crash-safe disk spool: the queue between the thread that produces records
//! (serialized `voqa_wire::AgentRecord` JSON) and the shipper that POSTs them to a collector.
//!
//! Every record is written to disk before anything else happens to it; the shipper reads batches
//! from the acknowledged position and acknowledges them only after a collector answered 2xx. The
//! collector de-duplicates by record identity, so the spool is at-least-once: after a crash it
//! may hand out records again, but it never loses a record it accepted, except (counted) when the
//! size cap forces it to, when the disk itself lost data (power loss within the fsync policy,
//! torn or corrupt bytes), or when the ledger is damaged and nothing is lost but order restarts.
//!
//! What it must not do: block the writer on the reader or on the cap (a full spool drops its
//! oldest segments instead), panic or loop forever on whatever it finds on disk (its own files
//! are input: they can be torn, truncated, bit-flipped or edited by hand), allocate more than
//! [`MAX_RECORD_BYTES`] because a length field says so, or hold its lock across unbounded disk
//! reads ([`SharedSpool::read_batch`] reads outside the lock). It uses no tokio: the shipper
//! calls [`SharedSpool::wait_for_data`] from `spawn_blocking`.
//!
//! # On-disk layout
//!
//! ```text
//! <dir>/                              0700
//!   ledger                            0600, 256 bytes: two 128-byte ledger slots
//!   00000000000000000001.seg          0600, live segments, ids increasing, oldest first
//!   00000000000000000002.seg
//!   dead/                             0700
//!     00000000000000000001.seg        0600, dead-letter segments, same record format
//! ```
//!
//! A segment is a plain sequence of records, no file header (the id is the file name):
//!
//! ```text
//! offset  size  field
//! 0       4     magic  F5 76 71 61 ("\xF5vqa"; 0xF5 never occurs in UTF-8, so never in JSON)
//! 4       4     len    u32 LE, payload length, at most MAX_RECORD_BYTES (4 MiB)
//! 8       4     crc    u32 LE, CRC32C (Castagnoli) over the len field and the payload
//! 12      len   payload
//! ```
//!
//! A writer appends to exactly one *active* live segment, and rolls to a new one (id + 1) when
//! the next record would take it past `segment_bytes` (a record larger than that gets a segment
//! of its own). Every [`Spool::open`] seals what it found and appends to a fresh segment, so an
//! old segment is never appended to after a crash: whatever recovery decided about it stays true.
//!
//! Each ledger slot (little endian) holds: magic `VQL1`, version u32 = 1, generation u64, ack
//! position (segment id u64, byte offset u64), corrupt-seen position (segment id, offset), the
//! cumulative counters acked, dropped_cap, dropped_write, corrupt and dead_letter (u64 each), and
//! a CRC32C over the 88 bytes before it. Writes alternate between the slots (generation % 2) with
//! one `pwrite`; the valid slot with the highest generation wins, so a torn ledger write leaves
//! the previous state readable.
//!
//! # Recovery (open)
//!
//! - The ledger's ack position says where reading resumes. Live segments with a smaller id are
//!   finished and deleted (an interrupted deletion). If the ack segment is gone, reading starts at
//!   the next segment; if it is shorter than the ack offset (power loss took data the ledger had
//!   already acknowledged), the offset is clamped to its end; an offset inside a record moves
//!   back to that record's start. New segments get an id above every segment file found, and an
//!   ack position at or beyond that id is reset to the start of the new segment, so a stale or
//!   edited ack position can never cover records written later.
//! - Every remaining segment (live and dead) is scanned once. Bytes that do not form a valid
//!   record (bad magic, impossible length, CRC mismatch) are skipped up to the next offset where a
//!   valid magic + length + CRC record starts; each such run counts as one corrupt record. A run
//!   that reaches the end of the file is a torn tail: the file is truncated to its last good
//!   record, the cut counted in [`Recovery`] and as one corrupt record. Empty segments are deleted.
//! - Ledger missing or with no valid slot: the spool re-sends from the oldest segment (duplicates,
//!   which the collector drops) rather than lose anything; the cumulative counters restart at 0.
//! - Corrupt runs are counted once: the ledger remembers up to which position corruption has
//!   been counted ("corrupt-seen"), and neither recovery nor the reader counts a run again.
//!
//! Opening scans every byte that is not yet acknowledged (sequential reads, hardware CRC): with a
//! full 1 GiB backlog on an SSD expect a second or two.
//!
//! # Fsync policy and invariants
//!
//! - Every [`Spool::append`] hands the whole record to the kernel (`write`) before returning, so a
//!   SIGKILL of the agent loses nothing: the page cache outlives the process. A failed `write`
//!   is undone (the segment is truncated back), counted in `dropped_write_records`, and reported.
//! - `FsyncPolicy::Interval(d)` (default 1 s): data files are `fdatasync`ed when an `append` or
//!   [`Spool::sync_if_due`] finds `d` elapsed since the last sync, so a power loss loses at most
//!   the records of the last `d` (plus whatever was appended since, if the agent stopped calling
//!   either). `EveryWrite`: each append is `fdatasync`ed before it returns and each ledger update
//!   too. `Never`: durability is left to the kernel's writeback.
//! - Order: a sync sends data first, then the ledger, so the durable ledger never acknowledges
//!   beyond durable data as far as the spool controls it; because writeback of the ledger page
//!   can still overtake data pages, recovery also clamps the ack position (see above).
//! - Segment creation and deletion `fsync` the directory (except under `Never`); a segment is
//!   `fdatasync`ed before the writer rolls past it (except under `Never`), so a newer segment on
//!   disk means the older ones are complete.
//! - The ledger is written (one `pwrite`) on every ack, so restarts resume after the last ack;
//!   the cumulative counters are persisted with it and on every sync, so they survive restarts
//!   (the increments since the last ack or sync are lost on SIGKILL; `pending_*` are recomputed).
//!
//! # Size cap and dead letters
//!
//! The cap (`max_bytes`, default 1 GiB) covers live and dead-letter segment files. Before a record
//! is written, whole segments are deleted until it fits: first the oldest live segments (acked
//! or not; their unacknowledged records count as `dropped_cap_records`), then, only when the live
//! queue has nothing but the segment being appended, the oldest dead-letter segments (their
//! records count as `dropped_cap_records` too). Undelivered records go first because each one's
//! age already makes it the least useful, while a dead letter is the only evidence of a refused
//! record an operator may need. The segment being appended to is never dropped, so the total
//! can exceed the cap by at most that one segment. The writer never waits for the reader.
//!
//! [`Spool::dead_letter`] copies records the collector refused for good into `dead/` and acks
//! them off the live queue; only the cap ever deletes dead letters (an operator may delete the
//! files while the agent is stopped).
//!
//! # Counters
//!
//! `acked_records` counts records acknowledged by a collector (records dead-lettered are counted
//! in `dead_letter_records` instead), `corrupt_records` counts corrupt runs and torn tails (live
//! and dead), and `pending_*` count the valid unacknowledged live records and their payload bytes.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use thiserror::Error;
use voqa_wire::ShippingCounters;

/// Largest payload a record may have. Recovery never allocates more than this (plus a header
/// and one read chunk) whatever a length field claims.
pub const MAX_RECORD_BYTES: usize = 4 << 20;
/// Bytes before each payload: magic, length, CRC.
pub const RECORD_HEADER_BYTES: usize = 12;
/// Default segment size at which the writer rolls to a new segment.
pub const DEFAULT_SEGMENT_BYTES: u64 = 16 << 20;
/// Default cap on the spool's total size on disk.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// Smallest accepted `segment_bytes`: below this, per-segment costs (open, fsync of the
/// directory, one ledger entry) dominate.
pub const MIN_SEGMENT_BYTES: u64 = 4096;

const MAGIC: [u8; 4] = [0xF5, b'v', b'q', b'a'];
const SEGMENT_SUFFIX: &str = ".seg";
const DEAD_DIR: &str = "dead";
const LEDGER_FILE: &str = "ledger";
/// Bytes of file read per refill while scanning; also the step of the magic search.
const CHUNK: usize = 256 << 10;

/// Errors of the spool. I/O errors name the operation and the file. The cause is part of the
/// message and not also a `source()`, so an error printed with its chain says it once.
#[derive(Debug, Error)]
pub enum SpoolError {
    #[error("spool: cannot {op} {path}: {error}")]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("spool: record of {len} bytes is larger than the maximum of {max} bytes")]
    RecordTooLarge { len: usize, max: usize },
    #[error("spool: invalid configuration: {0}")]
    Config(&'static str),
    #[error("spool: directory {0} is in use by another process")]
    Locked(PathBuf),
    #[error("spool: segment ids exhausted")]
    IdsExhausted,
    #[error("spool: a thread panicked while holding the spool lock")]
    Poisoned,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |error| SpoolError::Io {
        op,
        path: path.to_path_buf(),
        error,
    }
}

/// When the spool asks the kernel to put its files on stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` after every append and every ledger update: nothing acknowledged by `append`
    /// is lost by a power loss. Costs one device flush per record.
    EveryWrite,
    /// `fdatasync` when this much time has passed since the last sync (checked on every append
    /// and by [`Spool::sync_if_due`]): a power loss loses at most about this much.
    Interval(Duration),
    /// Never `fsync`; the kernel's writeback decides. A SIGKILL still loses nothing.
    Never,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        FsyncPolicy::Interval(Duration::from_secs(1))
    }
}

/// Where and how big the spool is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// The spool directory (created 0700 if missing), e.g. `/var/lib/voqa-agent/spool`.
    pub dir: PathBuf,
    /// Cap on the total size of all segment files (live and dead letter).
    pub max_bytes: u64,
    /// Size at which the writer rolls to a new segment.
    pub segment_bytes: u64,
    pub fsync: FsyncPolicy,
}

impl SpoolConfig {
    /// The defaults (1 GiB cap, 16 MiB segments, fsync every second) under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpoolConfig {
            dir: dir.into(),
            max_bytes: DEFAULT_MAX_BYTES,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            fsync: FsyncPolicy::default(),
        }
    }

    fn validate(&self) -> Result<(), SpoolError> {
        if self.segment_bytes < MIN_SEGMENT_BYTES {
            return Err(SpoolError::Config("segment_bytes below 4096"));
        }
        // Room for the segment being appended plus at least one droppable one, or the cap
        // could never be honoured.
        if self.max_bytes < self.segment_bytes.saturating_mul(2) {
            return Err(SpoolError::Config(
                "max_bytes must be at least twice segment_bytes",
            ));
        }
        Ok(())
    }
}

/// A position in the live queue: segment id and byte offset in it. Ordered by (segment, offset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    seg: u64,
    off: u64,
}

/// The end of a batch returned by [`Spool::read_batch`]; hand it back to [`Spool::ack`] or
/// [`Spool::dead_letter`] once the batch is done with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Position just after the batch's last record (or skipped corrupt bytes).
    to: Pos,
    /// Valid records and payload bytes of segment `to.seg` before `to.off`, so an ack can keep
    /// the pending counters exact without rescanning.
    in_seg_records: u64,
    in_seg_bytes: u64,
    /// Records and payload bytes in the batch.
    records: u64,
    bytes: u64,
}

impl Cursor {
    /// Records in the batch this cursor ends.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Payload bytes in the batch this cursor ends.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// What [`Spool::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub ledger: LedgerStatus,
    /// Valid unacknowledged live records (and payload bytes) after recovery.
    pub pending_records: u64,
    pub pending_bytes: u64,
    /// Live segments kept (all sealed; appends go to a new one).
    pub live_segments: usize,
    /// Dead-letter segments kept, and the records in them.
    pub dead_letter_segments: usize,
    pub dead_letter_records: u64,
    /// Torn tails cut (files truncated to their last good record) and the bytes removed.
    pub torn_tails_cut: u64,
    pub torn_bytes_cut: u64,
    /// Corrupt runs newly counted by this recovery (torn tails included).
    pub corrupt_records: u64,
}

/// The state of the ledger file at open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LedgerStatus {
    /// A valid slot was found; reading resumes after the last ack.
    #[default]
    Loaded,
    /// No ledger file (or an empty one): a new spool, or the file was removed. Reading starts at
    /// the oldest segment.
    Missing,
    /// A ledger file without any valid slot. Reading starts at the oldest segment (re-sending
    /// what may have been acknowledged already) and the cumulative counters restart at 0.
    Corrupt,
}

/// Where the bytes of a segment come from: a file (`pread`, so the reader shares no file
/// position with anyone) or, for tests and fuzzing, memory.
trait Source {
    fn read_chunk(&self, buf: &mut [u8], off: u64) -> io::Result<usize>;
}

impl Source for File {
    fn read_chunk(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, off)
    }
}

impl Source for [u8] {
    fn read_chunk(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        let rest = usize::try_from(off)
            .ok()
            .and_then(|start| self.get(start..))
            .unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

/// One step of a [`FrameReader`].
#[derive(Debug, PartialEq, Eq)]
enum Item {
    /// A valid record at `[start, end)`; its payload is `payload` within the reader's buffer.
    Record {
        start: u64,
        end: u64,
        payload: Range<usize>,
    },
    /// Bytes `[start, end)` that hold no valid record; `end` is the next valid record or the
    /// reader's limit.
    Corrupt {
        start: u64,
        end: u64,
    },
    End,
}

/// Walks the records of one segment from `pos` up to `limit`, skipping and reporting corrupt
/// runs. Every step advances the position by at least one byte, so it terminates; the buffer
/// never grows beyond one record (`RECORD_HEADER_BYTES + MAX_RECORD_BYTES`) or one chunk.
struct FrameReader<'a, S: Source + ?Sized> {
    src: &'a S,
    limit: u64,
    pos: u64,
    buf: Vec<u8>,
    /// Offset in the source of `buf[0]`.
    buf_off: u64,
    corrupt_from: Option<u64>,
}

impl<'a, S: Source + ?Sized> FrameReader<'a, S> {
    fn new(src: &'a S, pos: u64, limit: u64, mut buf: Vec<u8>) -> Self {
        buf.clear();
        FrameReader {
            src,
            limit,
            pos,
            buf,
            buf_off: pos,
            corrupt_from: None,
        }
    }

    fn into_buf(self) -> Vec<u8> {
        self.buf
    }

    fn window(&self, off: u64, n: usize) -> Option<&[u8]> {
        let start = usize::try_from(off.checked_sub(self.buf_off)?).ok()?;
        self.buf.get(start..start.checked_add(n)?)
    }

    /// Makes the buffer hold bytes `[off, off + n)`; false if they are not all within the
    /// limit or the source ended early (a file shorter than expected reads as corrupt).
    fn fill(&mut self, off: u64, n: usize) -> io::Result<bool> {
        let Some(end) = off.checked_add(n as u64) else {
            return Ok(false);
        };
        if end > self.limit {
            return Ok(false);
        }
        if self.window(off, n).is_some() {
            return Ok(true);
        }
        // Keep what is already buffered from `off` on; read the rest.
        let buffered_end = self.buf_off + self.buf.len() as u64;
        if off >= self.buf_off && off <= buffered_end {
            let keep_from = usize::try_from(off - self.buf_off).unwrap_or(self.buf.len());
            self.buf.drain(..keep_from.min(self.buf.len()));
        } else {
            self.buf.clear();
        }
        self.buf_off = off;
        let available = usize::try_from(self.limit - off).unwrap_or(usize::MAX);
        let want = n.max(CHUNK).min(available);
        let mut have = self.buf.len();
        self.buf.resize(want, 0);
        while have < want {
            match self
                .src
                .read_chunk(&mut self.buf[have..want], off + have as u64)
            {
                Ok(0) => break,
                Ok(k) => have += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(have);
                    return Err(e);
                }
            }
        }
        self.buf.truncate(have);
        Ok(have >= n)
    }

    /// Payload length of a valid record at `p`, if there is one.
    fn frame_at(&mut self, p: u64) -> io::Result<Option<usize>> {
        if !self.fill(p, RECORD_HEADER_BYTES)? {
            return Ok(None);
        }
        let Some(header) = self.window(p, RECORD_HEADER_BYTES) else {
            return Ok(None);
        };
        let Ok(header) = <[u8; RECORD_HEADER_BYTES]>::try_from(header) else {
            return Ok(None);
        };
        if header[..4] != MAGIC {
            return Ok(None);
        }
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let stored = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        // Checked before anything is read or allocated for the payload.
        if len > MAX_RECORD_BYTES || !self.fill(p, RECORD_HEADER_BYTES + len)? {
            return Ok(None);
        }
        let Some(frame) = self.window(p, RECORD_HEADER_BYTES + len) else {
            return Ok(None);
        };
        let crc =
            crc32c::crc32c_append(crc32c::crc32c(&frame[4..8]), &frame[RECORD_HEADER_BYTES..]);
        Ok((crc == stored).then_some(len))
    }

    /// Offset of the next magic at or after `p`, or the limit.
    fn find_magic(&mut self, mut p: u64) -> io::Result<u64> {
        while p < self.limit && self.limit - p >= MAGIC.len() as u64 {
            let n = usize::try_from(self.limit - p)
                .unwrap_or(usize::MAX)
                .min(CHUNK);
            if !self.fill(p, n)? {
                return Ok(self.limit);
            }
            let Some(w) = self.window(p, n) else {
                return Ok(self.limit);
            };
            let mut i = 0;
            while let Some(k) = w
                .get(i..)
                .and_then(|s| s.iter().position(|&b| b == MAGIC[0]))
            {
                let at = i + k;
                if w.get(at..at + MAGIC.len()) == Some(&MAGIC[..]) {
                    return Ok(p + at as u64);
                }
                i = at + 1;
            }
            // The next window overlaps by three bytes so a magic cut by this one's end is found.
            p += (n - (MAGIC.len() - 1)) as u64;
        }
        Ok(self.limit)
    }

    fn next_item(&mut self) -> io::Result<Item> {
        loop {
            if self.pos >= self.limit {
                return Ok(match self.corrupt_from.take() {
                    Some(start) => Item::Corrupt {
                        start,
                        end: self.limit,
                    },
                    None => Item::End,
                });
            }
            match self.frame_at(self.pos)? {
                Some(len) => {
                    if let Some(start) = self.corrupt_from.take() {
                        // The record is handed out by the next call.
                        return Ok(Item::Corrupt {
                            start,
                            end: self.pos,
                        });
                    }
                    let start = self.pos;
                    let end = start + (RECORD_HEADER_BYTES + len) as u64;
                    self.pos = end;
                    let from = usize::try_from(start - self.buf_off)
                        .unwrap_or(usize::MAX)
                        .saturating_add(RECORD_HEADER_BYTES);
                    return Ok(Item::Record {
                        start,
                        end,
                        payload: from..from.saturating_add(len),
                    });
                }
                None => {
                    self.corrupt_from.get_or_insert(self.pos);
                    self.pos = self.find_magic(self.pos + 1)?;
                }
            }
        }
    }

    fn payload(&self, range: Range<usize>) -> &[u8] {
        self.buf.get(range).unwrap_or(&[])
    }
}

/// What a full pass over a segment found.
#[derive(Debug, Default)]
struct Scan {
    records: u64,
    bytes: u64,
    /// Records (and payload bytes) ending at or before the ack offset.
    records_before_ack: u64,
    bytes_before_ack: u64,
    /// The last offset at or before the ack offset where the scan's parse has a boundary (the
    /// end of a record or of a corrupt run).
    boundary_before_ack: u64,
    /// Start of a torn tail (a corrupt run reaching the end of the file).
    torn_from: Option<u64>,
    /// Corrupt runs, not counting the torn tail, starting at or after `count_from`.
    corrupt: u64,
}

fn scan_segment<S: Source + ?Sized>(
    src: &S,
    limit: u64,
    ack_off: Option<u64>,
    count_from: u64,
) -> io::Result<Scan> {
    let mut scan = Scan::default();
    let mut reader = FrameReader::new(src, 0, limit, Vec::new());
    loop {
        match reader.next_item()? {
            Item::Record { end, payload, .. } => {
                let len = payload.len() as u64;
                scan.records += 1;
                scan.bytes += len;
                if ack_off.is_some_and(|a| end <= a) {
                    scan.records_before_ack += 1;
                    scan.bytes_before_ack += len;
                    scan.boundary_before_ack = end;
                }
            }
            Item::Corrupt { start, end } if end >= limit => scan.torn_from = Some(start),
            Item::Corrupt { start, end } => {
                if start >= count_from {
                    scan.corrupt += 1;
                }
                if ack_off.is_some_and(|a| end <= a) {
                    scan.boundary_before_ack = end;
                }
            }
            Item::End => return Ok(scan),
        }
    }
}

/// The records of a segment file's bytes, as recovery and the reader see them: valid records
/// (payload ranges), skipped corrupt runs, and where a torn tail starts. Decoding never fails and
/// never allocates more than one record beyond the result vectors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedSegment {
    pub records: Vec<Range<usize>>,
    pub corrupt: Vec<Range<usize>>,
    pub torn_from: Option<usize>,
}

/// Decodes a whole segment held in memory (for tests, fuzzing and offline inspection).
pub fn decode_segment(data: &[u8]) -> DecodedSegment {
    let mut out = DecodedSegment::default();
    let limit = data.len() as u64;
    let mut reader = FrameReader::new(data, 0, limit, Vec::new());
    // Offsets come from `data.len()`, so they fit in usize.
    let at = |x: u64| usize::try_from(x).unwrap_or(usize::MAX);
    loop {
        match reader.next_item() {
            Ok(Item::Record { start, end, .. }) => {
                out.records.push(at(start) + RECORD_HEADER_BYTES..at(end));
            }
            Ok(Item::Corrupt { start, end }) => {
                if end >= limit {
                    out.torn_from = Some(at(start));
                }
                out.corrupt.push(at(start)..at(end));
            }
            // Reading memory cannot fail.
            Ok(Item::End) | Err(_) => return out,
        }
    }
}

/// Frames `payload` into `out` (cleared first).
fn encode_record(payload: &[u8], out: &mut Vec<u8>) -> Result<(), SpoolError> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l as usize <= MAX_RECORD_BYTES)
        .ok_or(SpoolError::RecordTooLarge {
            len: payload.len(),
            max: MAX_RECORD_BYTES,
        })?;
    let len_bytes = len.to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload);
    out.clear();
    out.reserve(RECORD_HEADER_BYTES + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

fn segment_name(id: u64) -> String {
    format!("{id:020}{SEGMENT_SUFFIX}")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Segment ids in `dir`, ascending. Other files are ignored.
fn list_segments(dir: &Path) -> Result<Vec<u64>, SpoolError> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        if let Some(id) = entry.file_name().to_str().and_then(parse_segment_name) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

fn make_private_dir(dir: &Path) -> Result<(), SpoolError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err("create directory", dir))?;
    // An existing directory may have been created with looser permissions; it holds call data.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(io_err("set permissions of", dir))
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

fn remove_file(path: &Path) -> Result<(), SpoolError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("delete", path)(e)),
        _ => Ok(()),
    }
}

/// One segment's bookkeeping: its length on disk and the valid records in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    id: u64,
    len: u64,
    records: u64,
    bytes: u64,
}

/// One directory of segments: the live queue or the dead letters.
struct Log {
    dir: PathBuf,
    /// Oldest first. When `active` is set, the last one is being appended.
    segs: VecDeque<Segment>,
    active: Option<File>,
    /// The active segment has data not yet `fdatasync`ed.
    dirty: bool,
    next_id: u64,
    /// Totals over `segs`.
    disk_bytes: u64,
    records: u64,
    bytes: u64,
}

impl Log {
    fn new(dir: PathBuf, segs: VecDeque<Segment>, next_id: u64) -> Self {
        let mut log = Log {
            dir,
            segs,
            active: None,
            dirty: false,
            next_id,
            disk_bytes: 0,
            records: 0,
            bytes: 0,
        };
        for s in &log.segs {
            log.disk_bytes += s.len;
            log.records += s.records;
            log.bytes += s.bytes;
        }
        log
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(segment_name(id))
    }

    /// Appends one framed record (`payload_len` of its bytes are payload).
    fn append(
        &mut self,
        frame: &[u8],
        payload_len: usize,
        segment_bytes: u64,
        fsync: FsyncPolicy,
    ) -> Result<(), SpoolError> {
        let frame_len = frame.len() as u64;
        let roll = match (&self.active, self.segs.back()) {
            (Some(_), Some(s)) => s.len > 0 && s.len + frame_len > segment_bytes,
            _ => true,
        };
        if roll {
            self.roll(fsync)?;
        }
        let (Some(file), Some(seg)) = (self.active.as_mut(), self.segs.back_mut()) else {
            return Err(SpoolError::Config("no active segment after roll"));
        };
        if let Err(e) = file.write_all(frame) {
            // Undo a partial write so the segment stays a clean run of records; if even that
            // fails, seal the segment: readers stop at its known length and the next open cuts
            // the garbage as a torn tail.
            let id = seg.id;
            if file.set_len(seg.len).is_err() {
                self.active = None;
            }
            return Err(io_err("write", &self.path(id))(e));
        }
        seg.len += frame_len;
        seg.records += 1;
        seg.bytes += payload_len as u64;
        self.disk_bytes += frame_len;
        self.records += 1;
        self.bytes += payload_len as u64;
        self.dirty = true;
        if fsync == FsyncPolicy::EveryWrite {
            self.sync()?;
        }
        Ok(())
    }

    /// Seals the active segment (synced first, so a newer segment implies a complete older one)
    /// and starts the next.
    fn roll(&mut self, fsync: FsyncPolicy) -> Result<(), SpoolError> {
        if fsync != FsyncPolicy::Never {
            self.sync()?;
        }
        self.active = None;
        let id = self.next_id;
        self.next_id = id.checked_add(1).ok_or(SpoolError::IdsExhausted)?;
        let path = self.path(id);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("create", &path))?;
        if fsync != FsyncPolicy::Never {
            sync_dir(&self.dir)?;
        }
        self.segs.push_back(Segment {
            id,
            len: 0,
            records: 0,
            bytes: 0,
        });
        self.active = Some(file);
        self.dirty = false;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), SpoolError> {
        if let (true, Some(file)) = (self.dirty, &self.active) {
            let id = self.segs.back().map_or(0, |s| s.id);
            file.sync_data()
                .map_err(|e| io_err("sync", &self.path(id))(e))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Whether the oldest segment may be dropped: anything but the segment being appended when
    /// the caller is appending to this log.
    fn can_drop_front(&self, appending_here: bool) -> bool {
        match self.segs.len() {
            0 => false,
            1 => !(appending_here && self.active.is_some()),
            _ => true,
        }
    }

    /// Forgets the oldest segment and deletes its file.
    fn drop_front(&mut self) -> Result<Option<Segment>, SpoolError> {
        let Some(seg) = self.segs.pop_front() else {
            return Ok(None);
        };
        if self.segs.is_empty() {
            self.active = None;
            self.dirty = false;
        }
        self.disk_bytes -= seg.len;
        self.records -= seg.records;
        self.bytes -= seg.bytes;
        remove_file(&self.path(seg.id))?;
        Ok(Some(seg))
    }

    fn is_active(&self, id: u64) -> bool {
        self.active.is_some() && self.segs.back().is_some_and(|s| s.id == id)
    }
}

/// The persisted state: read position and cumulative counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LedgerState {
    generation: u64,
    ack: Pos,
    /// Corrupt runs starting before this position have been counted.
    corrupt_seen: Pos,
    acked: u64,
    dropped_cap: u64,
    dropped_write: u64,
    corrupt: u64,
    dead_letter: u64,
}

const LEDGER_MAGIC: [u8; 4] = *b"VQL1";
const LEDGER_VERSION: u32 = 1;
const LEDGER_SLOT: usize = 128;
const LEDGER_BODY: usize = 88;

impl LedgerState {
    fn encode(&self) -> [u8; LEDGER_SLOT] {
        let mut slot = [0u8; LEDGER_SLOT];
        slot[0..4].copy_from_slice(&LEDGER_MAGIC);
        slot[4..8].copy_from_slice(&LEDGER_VERSION.to_le_bytes());
        let fields = [
            self.generation,
            self.ack.seg,
            self.ack.off,
            self.corrupt_seen.seg,
            self.corrupt_seen.off,
            self.acked,
            self.dropped_cap,
            self.dropped_write,
            self.corrupt,
            self.dead_letter,
        ];
        for (i, f) in fields.iter().enumerate() {
            slot[8 + i * 8..16 + i * 8].copy_from_slice(&f.to_le_bytes());
        }
        let crc = crc32c::crc32c(&slot[..LEDGER_BODY]);
        slot[LEDGER_BODY..LEDGER_BODY + 4].copy_from_slice(&crc.to_le_bytes());
        slot
    }

    fn decode(slot: &[u8]) -> Option<LedgerState> {
        let body = slot.get(..LEDGER_BODY)?;
        let crc = slot.get(LEDGER_BODY..LEDGER_BODY + 4)?;
        if crc32c::crc32c(body).to_le_bytes() != crc
            || body[0..4] != LEDGER_MAGIC
            || body[4..8] != LEDGER_VERSION.to_le_bytes()
        {
            return None;
        }
        let f = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&body[8 + i * 8..16 + i * 8]);
            u64::from_le_bytes(b)
        };
        Some(LedgerState {
            generation: f(0),
            ack: Pos {
                seg: f(1),
                off: f(2),
            },
            corrupt_seen: Pos {
                seg: f(3),
                off: f(4),
            },
            acked: f(5),
            dropped_cap: f(6),
            dropped_write: f(7),
            corrupt: f(8),
            dead_letter: f(9),
        })
    }

    /// The newest valid slot of a ledger file's bytes.
    fn load(bytes: &[u8]) -> (LedgerState, LedgerStatus) {
        if bytes.is_empty() {
            return (LedgerState::default(), LedgerStatus::Missing);
        }
        let best = bytes
            .chunks(LEDGER_SLOT)
            .take(2)
            .filter_map(LedgerState::decode)
            .max_by_key(|s| s.generation);
        match best {
            Some(s) => (s, LedgerStatus::Loaded),
            None => (LedgerState::default(), LedgerStatus::Corrupt),
        }
    }
}

/// The spool. Single-owner API (`&mut self`); share it between the writer thread and the
/// shipper with [`SharedSpool`].
pub struct Spool {
    cfg: SpoolConfig,
    live: Log,
    dead: Log,
    ledger_file: File,
    ledger_path: PathBuf,
    state: LedgerState,
    /// Valid records and payload bytes of the ack segment before the ack offset.
    head_consumed: (u64, u64),
    /// The ledger on disk is older than `state` / has not been `fdatasync`ed since written.
    ledger_stale: bool,
    ledger_unsynced: bool,
    last_sync: Instant,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.cfg.dir)
            .field("ack", &self.state.ack)
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

/// What a read needs from the spool's state, taken under the lock so the disk reads can run
/// without it.
#[derive(Debug, Clone)]
struct ReadPlan {
    dir: PathBuf,
    start: Pos,
    head_consumed: (u64, u64),
    /// (id, readable length) of the live segments from the ack segment on.
    segs: Vec<(u64, u64)>,
}

#[derive(Debug, Default)]
struct ReadOutcome {
    cursor: Option<Cursor>,
    /// Start positions of the corrupt runs crossed.
    corrupt: Vec<Pos>,
}

impl ReadPlan {
    /// Reads records from `start` into `out`: at most `max_records` (at least 1) and at most
    /// `max_bytes` of payload, except that the first record is always taken whatever its size.
    fn execute(
        &self,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<ReadOutcome, SpoolError> {
        out.clear();
        let max_records = max_records.max(1);
        let mut outcome = ReadOutcome::default();
        let mut pos = self.start;
        let (mut in_seg_records, mut in_seg_bytes) = self.head_consumed;
        let mut bytes = 0usize;
        let mut buf = Vec::new();
        'segments: for &(id, len) in &self.segs {
            if id < pos.seg {
                continue;
            }
            let from = if id == pos.seg { pos.off } else { 0 };
            if id != pos.seg {
                in_seg_records = 0;
                in_seg_bytes = 0;
            }
            pos = Pos { seg: id, off: from };
            if from >= len {
                continue;
            }
            let path = self.dir.join(segment_name(id));
            let file = match File::open(&path) {
                Ok(f) => f,
                // Dropped by the cap since the plan was made: its records are gone.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    pos.off = len;
                    in_seg_records = 0;
                    in_seg_bytes = 0;
                    continue;
                }
                Err(e) => return Err(io_err("open", &path)(e)),
            };
            let mut reader = FrameReader::new(&file, from, len, std::mem::take(&mut buf));
            loop {
                if out.len() >= max_records || (bytes >= max_bytes && !out.is_empty()) {
                    break 'segments;
                }
                match reader.next_item().map_err(io_err("read", &path))? {
                    Item::Record { end, payload, .. } => {
                        let payload = reader.payload(payload);
                        if !out.is_empty() && bytes.saturating_add(payload.len()) > max_bytes {
                            break 'segments;
                        }
                        bytes += payload.len();
                        in_seg_records += 1;
                        in_seg_bytes += payload.len() as u64;
                        out.push(payload.to_vec());
                        pos.off = end;
                    }
                    Item::Corrupt { start, end } => {
                        outcome.corrupt.push(Pos {
                            seg: id,
                            off: start,
                        });
                        pos.off = end;
                    }
                    Item::End => {
                        pos.off = len;
                        break;
                    }
                }
            }
            buf = reader.into_buf();
        }
        if pos > self.start {
            outcome.cursor = Some(Cursor {
                to: pos,
                in_seg_records,
                in_seg_bytes,
                records: out.len() as u64,
                bytes: bytes as u64,
            });
        }
        Ok(outcome)
    }
}

impl Spool {
    /// Opens (or creates) the spool under `cfg.dir`, recovering whatever a crash left: see the
    /// module documentation. Takes an exclusive lock on the ledger file (`flock`), so a second
    /// agent on the same directory gets [`SpoolError::Locked`].
    pub fn open(cfg: SpoolConfig) -> Result<(Spool, Recovery), SpoolError> {
        cfg.validate()?;
        let never = cfg.fsync == FsyncPolicy::Never;
        make_private_dir(&cfg.dir)?;
        let dead_dir = cfg.dir.join(DEAD_DIR);
        make_private_dir(&dead_dir)?;

        let ledger_path = cfg.dir.join(LEDGER_FILE);
        let ledger_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&ledger_path)
            .map_err(io_err("open", &ledger_path))?;
        match ledger_file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(SpoolError::Locked(cfg.dir.clone())),
            Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &ledger_path)(e)),
        }
        fs::set_permissions(&ledger_path, fs::Permissions::from_mode(0o600))
            .map_err(io_err("set permissions of", &ledger_path))?;
        let mut ledger_bytes = [0u8; 2 * LEDGER_SLOT];
        let mut n = 0;
        while n < ledger_bytes.len() {
            match FileExt::read_at(&ledger_file, &mut ledger_bytes[n..], n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("read", &ledger_path)(e)),
            }
        }
        let (mut state, ledger_status) = LedgerState::load(&ledger_bytes[..n]);
        let mut recovery = Recovery {
            ledger: ledger_status,
            ..Recovery::default()
        };
        let mut dir_changed = false;

        // Live segments.
        let ids = list_segments(&cfg.dir)?;
        let mut segs = VecDeque::new();
        let mut head_consumed = (0, 0);
        let seen = state.corrupt_seen;
        for &id in &ids {
            let path = cfg.dir.join(segment_name(id));
            if id < state.ack.seg {
                // Fully acknowledged; its deletion was interrupted.
                remove_file(&path)?;
                dir_changed = true;
                continue;
            }
            let ack_off = (id == state.ack.seg).then_some(state.ack.off);
            // Runs before the ack were passed by a reader, runs before `seen` were counted.
            let count_from = match id.cmp(&seen.seg) {
                std::cmp::Ordering::Less => u64::MAX,
                std::cmp::Ordering::Equal => seen.off,
                std::cmp::Ordering::Greater => 0,
            }
            .max(ack_off.unwrap_or(0));
            let Some((seg, scan)) = recover_segment(
                &path,
                id,
                ack_off,
                count_from,
                count_from,
                never,
                &mut recovery,
            )?
            else {
                dir_changed = true;
                continue;
            };
            if ack_off.is_some() {
                head_consumed = (scan.records_before_ack, scan.bytes_before_ack);
                // Power loss may have taken acknowledged bytes: never point past the data. And
                // an offset inside a record (a hand-edited ledger) moves back to the record's
                // start, so the reader walks the same records as this scan did (re-sending
                // rather than skipping).
                state.ack.off = scan.boundary_before_ack.min(seg.len);
            }
            segs.push_back(seg);
        }
        // Reading resumes at the oldest remaining segment if the ack segment is gone.
        if let Some(front) = segs.front()
            && front.id != state.ack.seg
        {
            state.ack = Pos {
                seg: front.id,
                off: 0,
            };
            head_consumed = (0, 0);
        }
        let next_live = ids
            .last()
            .copied()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or(SpoolError::IdsExhausted)?;
        // An ack beyond every segment means all of them were acknowledged (and deleted above);
        // it must not cover the segment about to be created, nor (if the ledger was edited)
        // push the ids towards exhaustion.
        if state.ack.seg >= next_live {
            state.ack = Pos {
                seg: next_live,
                off: 0,
            };
            head_consumed = (0, 0);
        }

        // Dead-letter segments: only torn tails are cut and counted (their other corrupt runs
        // are left for an operator and not counted, so they are not counted at every start).
        let dead_ids = list_segments(&dead_dir)?;
        let mut dead_segs = VecDeque::new();
        let mut dead_changed = false;
        for &id in &dead_ids {
            let path = dead_dir.join(segment_name(id));
            match recover_segment(&path, id, None, u64::MAX, 0, never, &mut recovery)? {
                Some((seg, _)) => dead_segs.push_back(seg),
                None => dead_changed = true,
            }
        }
        let next_dead = dead_ids
            .last()
            .copied()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or(SpoolError::IdsExhausted)?;

        // Everything that exists now has been scanned and its corruption counted.
        state.corrupt_seen = Pos {
            seg: next_live,
            off: 0,
        };
        state.corrupt += recovery.corrupt_records;

        let live = Log::new(cfg.dir.clone(), segs, next_live);
        let dead = Log::new(dead_dir.clone(), dead_segs, next_dead);
        recovery.live_segments = live.segs.len();
        recovery.dead_letter_segments = dead.segs.len();
        recovery.dead_letter_records = dead.records;
        let mut spool = Spool {
            cfg,
            live,
            dead,
            ledger_file,
            ledger_path,
            state,
            head_consumed,
            ledger_stale: true,
            ledger_unsynced: false,
            last_sync: Instant::now(),
            scratch: Vec::new(),
        };
        let (pending_records, pending_bytes) = spool.pending();
        recovery.pending_records = pending_records;
        recovery.pending_bytes = pending_bytes;
        if !never {
            if dir_changed {
                sync_dir(&spool.cfg.dir)?;
            }
            if dead_changed {
                sync_dir(&dead_dir)?;
            }
        }
        spool.write_ledger()?;
        if !never {
            spool.sync_ledger()?;
        }
        Ok((spool, recovery))
    }

    /// The configuration the spool was opened with.
    pub fn config(&self) -> &SpoolConfig {
        &self.cfg
    }

    /// Appends one record (at most [`MAX_RECORD_BYTES`]). Never waits for the reader: if the cap
    /// is reached, the oldest segments are dropped first. On return the record has been handed
    /// to the kernel (and synced under `EveryWrite`). On error the record was not stored and is
    /// counted in `dropped_write_records`.
    pub fn append(&mut self, record: &[u8]) -> Result<(), SpoolError> {
        let mut frame = std::mem::take(&mut self.scratch);
        let result = encode_record(record, &mut frame).and_then(|()| {
            self.make_room(frame.len() as u64, false)?;
            self.live
                .append(&frame, record.len(), self.cfg.segment_bytes, self.cfg.fsync)
        });
        self.scratch = frame;
        if let Err(e) = result {
            self.state.dropped_write += 1;
            self.ledger_stale = true;
            return Err(e);
        }
        self.sync_if_due()
    }

    /// Runs the fsync policy: under `Interval(d)`, syncs when `d` has passed since the last sync;
    /// otherwise only writes the ledger (no fsync) if counters changed. Call it from a timer so the last
    /// records before a quiet period get synced too.
    pub fn sync_if_due(&mut self) -> Result<(), SpoolError> {
        if let FsyncPolicy::Interval(d) = self.cfg.fsync
            && self.last_sync.elapsed() >= d
        {
            return self.sync();
        }
        if self.ledger_stale {
            self.write_ledger()?;
        }
        Ok(())
    }

    /// Makes everything written so far durable: data segments first, then the ledger that
    /// refers to them. Done regardless of the policy (the policy decides when it is called).
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        self.live.sync()?;
        self.dead.sync()?;
        if self.ledger_stale {
            self.write_ledger()?;
        }
        self.sync_ledger()?;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Reads the next batch from the acknowledged position into `out` (cleared first): at most
    /// `max_records` records and `max_bytes` payload bytes (but always at least one record),
    /// never past what has been appended. Returns `None` when there is nothing to read.
    /// Repeated calls without an ack return the same records. Corrupt bytes are skipped and
    /// counted; if nothing but corrupt bytes remained, they are acknowledged away and `None` is
    /// returned, so a `Some` batch is never empty.
    pub fn read_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Option<Cursor>, SpoolError> {
        let Some(plan) = self.read_plan() else {
            out.clear();
            return Ok(None);
        };
        let outcome = plan.execute(max_records, max_bytes, out)?;
        self.finish_read(outcome, out.is_empty())
    }

    /// Whether records were appended after the batch `cursor` ends.
    pub fn has_more_after(&self, cursor: &Cursor) -> bool {
        self.has_data_after(cursor.to)
    }

    /// Whether anything is waiting to be read (appended and not acknowledged).
    pub fn has_pending(&self) -> bool {
        self.has_data_after(self.state.ack)
    }

    /// Marks the records up to `cursor` as delivered: persists the ledger (one `pwrite`, plus
    /// `fdatasync` under `EveryWrite`) and deletes segments that are entirely acknowledged. An
    /// ack of a cursor at or before the current position (e.g. records the cap has dropped
    /// meanwhile, or a repeated ack) changes nothing.
    pub fn ack(&mut self, cursor: Cursor) -> Result<(), SpoolError> {
        self.ack_inner(cursor, 0)
    }

    /// Moves records the collector refused for good to the dead-letter segments, then acks up
    /// to `cursor` (normally `records` is the batch `cursor` ends, or part of it). The records
    /// count as `dead_letter_records`, not as `acked_records`.
    pub fn dead_letter(&mut self, cursor: Cursor, records: &[Vec<u8>]) -> Result<(), SpoolError> {
        let mut frame = std::mem::take(&mut self.scratch);
        let mut result = Ok(());
        for record in records {
            result = encode_record(record, &mut frame).and_then(|()| {
                self.make_room(frame.len() as u64, true)?;
                self.dead
                    .append(&frame, record.len(), self.cfg.segment_bytes, self.cfg.fsync)
            });
            if result.is_err() {
                break;
            }
            self.state.dead_letter += 1;
            self.ledger_stale = true;
        }
        self.scratch = frame;
        // Not acked unless every record is safely in the dead letters: the batch is retried.
        result?;
        self.ack_inner(cursor, records.len() as u64)
    }

    /// The shipping counters (see the module documentation for which survive restarts).
    pub fn counters(&self) -> ShippingCounters {
        let (pending_records, pending_bytes) = self.pending();
        ShippingCounters {
            pending_records,
            pending_bytes,
            acked_records: self.state.acked,
            dropped_cap_records: self.state.dropped_cap,
            dropped_write_records: self.state.dropped_write,
            corrupt_records: self.state.corrupt,
            dead_letter_records: self.state.dead_letter,
        }
    }

    /// Bytes of segment files on disk (live and dead letter), the quantity the cap limits.
    pub fn disk_bytes(&self) -> u64 {
        self.live.disk_bytes + self.dead.disk_bytes
    }

    /// Every pending record's payload, oldest first, without acknowledging anything (for tests
    /// and inspection; reads the whole backlog into memory).
    pub fn pending_payloads(&mut self) -> Result<Vec<Vec<u8>>, SpoolError> {
        let mut out = Vec::new();
        if let Some(plan) = self.read_plan() {
            let outcome = plan.execute(usize::MAX, usize::MAX, &mut out)?;
            self.note_corrupt(&outcome.corrupt);
        }
        Ok(out)
    }

    /// Every dead-letter payload, oldest first (for tests and operators).
    pub fn dead_letter_payloads(&self) -> Result<Vec<Vec<u8>>, SpoolError> {
        let plan = ReadPlan {
            dir: self.dead.dir.clone(),
            start: Pos::default(),
            head_consumed: (0, 0),
            segs: self.dead.segs.iter().map(|s| (s.id, s.len)).collect(),
        };
        let mut out = Vec::new();
        plan.execute(usize::MAX, usize::MAX, &mut out)?;
        Ok(out)
    }

    fn pending(&self) -> (u64, u64) {
        let head = match self.live.segs.front() {
            Some(f) if f.id == self.state.ack.seg => self.head_consumed,
            _ => (0, 0),
        };
        (
            self.live.records.saturating_sub(head.0),
            self.live.bytes.saturating_sub(head.1),
        )
    }

    fn has_data_after(&self, p: Pos) -> bool {
        self.live
            .segs
            .iter()
            .rev()
            .take_while(|s| s.id >= p.seg)
            .any(|s| {
                if s.id == p.seg {
                    s.len > p.off
                } else {
                    s.len > 0
                }
            })
    }

    fn read_plan(&self) -> Option<ReadPlan> {
        if !self.has_pending() {
            return None;
        }
        Some(ReadPlan {
            dir: self.live.dir.clone(),
            start: self.state.ack,
            head_consumed: self.head_consumed,
            segs: self
                .live
                .segs
                .iter()
                .filter(|s| s.id >= self.state.ack.seg)
                .map(|s| (s.id, s.len))
                .collect(),
        })
    }

    /// Books what a read found; acks a batch that held nothing but corrupt bytes.
    fn finish_read(
        &mut self,
        outcome: ReadOutcome,
        empty: bool,
    ) -> Result<Option<Cursor>, SpoolError> {
        self.note_corrupt(&outcome.corrupt);
        match outcome.cursor {
            Some(cursor) if empty => {
                self.ack_inner(cursor, 0)?;
                Ok(None)
            }
            other => {
                if self.ledger_stale {
                    self.write_ledger()?;
                }
                Ok(other)
            }
        }
    }

    /// Counts corrupt runs not counted before (each run is identified by its start).
    fn note_corrupt(&mut self, starts: &[Pos]) {
        for &start in starts {
            if start >= self.state.corrupt_seen {
                self.state.corrupt += 1;
                self.state.corrupt_seen = Pos {
                    seg: start.seg,
                    off: start.off.saturating_add(1),
                };
                self.ledger_stale = true;
            }
        }
    }

    fn ack_inner(&mut self, cursor: Cursor, dead_lettered: u64) -> Result<(), SpoolError> {
        // Never past the data: a cursor from another spool must not skip future records.
        let end = self.live.segs.back().map_or(self.state.ack, |s| Pos {
            seg: s.id,
            off: s.len,
        });
        let to = cursor.to.min(end);
        if to <= self.state.ack {
            return Ok(());
        }
        let before = self.pending();
        self.state.ack = to;
        self.head_consumed = if to == cursor.to {
            (cursor.in_seg_records, cursor.in_seg_bytes)
        } else {
            // Clamped: count from the segment's totals.
            self.live
                .segs
                .back()
                .map_or((0, 0), |s| (s.records, s.bytes))
        };
        // Segments entirely before the ack position are done.
        let mut finished = Vec::new();
        while let Some(front) = self.live.segs.front().copied() {
            let done = front.id < to.seg
                || (front.id == to.seg && to.off >= front.len && !self.live.is_active(front.id));
            if !done {
                break;
            }
            self.live.segs.pop_front();
            self.live.disk_bytes -= front.len;
            self.live.records -= front.records;
            self.live.bytes -= front.bytes;
            finished.push(front.id);
        }
        self.normalize_ack();
        // At the end of the segment everything in it is consumed, even records the segment's
        // count includes but the reader found damaged (the count was taken at append time).
        if let Some(front) = self.live.segs.front()
            && front.id == self.state.ack.seg
            && self.state.ack.off >= front.len
        {
            self.head_consumed = (front.records, front.bytes);
        }
        let after = self.pending();
        let delivered = before.0.saturating_sub(after.0);
        self.state.acked += delivered.saturating_sub(dead_lettered);
        self.ledger_stale = true;
        // The ledger goes first: a crash between the two leaves finished segments that the
        // next open deletes, never an ack position in a deleted segment's place.
        self.write_ledger()?;
        if self.cfg.fsync == FsyncPolicy::EveryWrite {
            self.sync_ledger()?;
        }
        for id in &finished {
            remove_file(&self.live.path(*id))?;
        }
        if !finished.is_empty() && self.cfg.fsync != FsyncPolicy::Never {
            sync_dir(&self.live.dir)?;
        }
        Ok(())
    }

    /// Keeps the ack position inside the oldest live segment when its own segment is gone.
    fn normalize_ack(&mut self) {
        if let Some(front) = self.live.segs.front()
            && front.id > self.state.ack.seg
        {
            self.state.ack = Pos {
                seg: front.id,
                off: 0,
            };
            self.head_consumed = (0, 0);
        }
    }

    /// Drops whole segments, oldest live first, then oldest dead letters, until `frame_len` more
    /// bytes fit under the cap or nothing droppable is left.
    fn make_room(&mut self, frame_len: u64, to_dead: bool) -> Result<(), SpoolError> {
        let mut dropped_any = (false, false);
        while self.disk_bytes() + frame_len > self.cfg.max_bytes {
            // The live active segment is never dropped, even for a dead letter: the writer is
            // appending to it.
            if self.live.can_drop_front(true) {
                let head = match self.live.segs.front() {
                    Some(f) if f.id == self.state.ack.seg => self.head_consumed,
                    _ => (0, 0),
                };
                if let Some(seg) = self.live.drop_front()? {
                    self.state.dropped_cap += seg.records.saturating_sub(head.0);
                }
                self.normalize_ack();
                dropped_any.0 = true;
            } else if self.dead.can_drop_front(to_dead) {
                if let Some(seg) = self.dead.drop_front()? {
                    self.state.dropped_cap += seg.records;
                }
                dropped_any.1 = true;
            } else {
                break;
            }
            self.ledger_stale = true;
        }
        if self.cfg.fsync != FsyncPolicy::Never {
            if dropped_any.0 {
                sync_dir(&self.live.dir)?;
            }
            if dropped_any.1 {
                sync_dir(&self.dead.dir)?;
            }
        }
        Ok(())
    }

    /// Writes the state to the next ledger slot (one `pwrite`, no fsync).
    fn write_ledger(&mut self) -> Result<(), SpoolError> {
        self.state.generation = self.state.generation.wrapping_add(1);
        let slot = self.state.encode();
        let off = (self.state.generation % 2) * LEDGER_SLOT as u64;
        self.ledger_file
            .write_all_at(&slot, off)
            .map_err(io_err("write", &self.ledger_path))?;
        self.ledger_stale = false;
        self.ledger_unsynced = true;
        Ok(())
    }

    fn sync_ledger(&mut self) -> Result<(), SpoolError> {
        if self.ledger_unsynced {
            self.ledger_file
                .sync_data()
                .map_err(io_err("sync", &self.ledger_path))?;
            self.ledger_unsynced = false;
        }
        Ok(())
    }
}

/// Scans one segment file at open, cuts a torn tail, and returns its bookkeeping; `None` when
/// the segment held no valid record and was deleted.
fn recover_segment(
    path: &Path,
    id: u64,
    ack_off: Option<u64>,
    count_from: u64,
    torn_count_from: u64,
    never_sync: bool,
    recovery: &mut Recovery,
) -> Result<Option<(Segment, Scan)>, SpoolError> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let len = file.metadata().map_err(io_err("stat", path))?.len();
    let scan = scan_segment(&file, len, ack_off, count_from).map_err(io_err("read", path))?;
    recovery.corrupt_records += scan.corrupt;
    let mut valid_len = len;
    if let Some(torn) = scan.torn_from {
        file.set_len(torn).map_err(io_err("truncate", path))?;
        if !never_sync {
            file.sync_all().map_err(io_err("sync", path))?;
        }
        recovery.torn_tails_cut += 1;
        recovery.torn_bytes_cut += len - torn;
        if torn >= torn_count_from {
            recovery.corrupt_records += 1;
        }
        valid_len = torn;
    }
    if scan.records == 0 {
        drop(file);
        remove_file(path)?;
        return Ok(None);
    }
    Ok(Some((
        Segment {
            id,
            len: valid_len,
            records: scan.records,
            bytes: scan.bytes,
        },
        scan,
    )))
}

/// A [`Spool`] shared by the writer thread and the shipper: clone it freely. The lock is held
/// for appends, acks and bookkeeping; [`SharedSpool::read_batch`] reads the disk without it.
#[derive(Clone)]
pub struct SharedSpool {
    inner: Arc<Shared>,
}

struct Shared {
    spool: Mutex<Spool>,
    /// Signalled after every append.
    appended: Condvar,
}

impl std::fmt::Debug for SharedSpool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSpool").finish_non_exhaustive()
    }
}

impl SharedSpool {
    pub fn new(spool: Spool) -> Self {
        SharedSpool {
            inner: Arc::new(Shared {
                spool: Mutex::new(spool),
                appended: Condvar::new(),
            }),
        }
    }

    /// [`Spool::open`], shared.
    pub fn open(cfg: SpoolConfig) -> Result<(SharedSpool, Recovery), SpoolError> {
        let (spool, recovery) = Spool::open(cfg)?;
        Ok((SharedSpool::new(spool), recovery))
    }

    fn lock(&self) -> Result<MutexGuard<'_, Spool>, SpoolError> {
        // A panic under the lock may have left the in-memory state half-updated; the files are
        // still recoverable, so the caller should reopen rather than continue.
        self.inner.spool.lock().map_err(|_| SpoolError::Poisoned)
    }

    /// [`Spool::append`], then wakes a shipper blocked in [`SharedSpool::wait_for_data`].
    pub fn append(&self, record: &[u8]) -> Result<(), SpoolError> {
        let result = self.lock()?.append(record);
        self.inner.appended.notify_all();
        result
    }

    /// [`Spool::read_batch`], with the disk reads done outside the lock so the writer is not
    /// held up by them. A segment the cap deletes meanwhile is still read through its open file
    /// or skipped if already gone; the ack of such records is then a harmless no-op.
    pub fn read_batch(
        &self,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Option<Cursor>, SpoolError> {
        let Some(plan) = self.lock()?.read_plan() else {
            out.clear();
            return Ok(None);
        };
        let outcome = plan.execute(max_records, max_bytes, out)?;
        self.lock()?.finish_read(outcome, out.is_empty())
    }

    /// Blocks up to `timeout` until something is waiting to be read; returns whether it is.
    /// Meant for `tokio::task::spawn_blocking` in the shipper.
    pub fn wait_for_data(&self, timeout: Duration) -> Result<bool, SpoolError> {
        let guard = self.lock()?;
        let (guard, _) = self
            .inner
            .appended
            .wait_timeout_while(guard, timeout, |s| !s.has_pending())
            .map_err(|_| SpoolError::Poisoned)?;
        Ok(guard.has_pending())
    }

    pub fn ack(&self, cursor: Cursor) -> Result<(), SpoolError> {
        self.lock()?.ack(cursor)
    }

    pub fn dead_letter(&self, cursor: Cursor, records: &[Vec<u8>]) -> Result<(), SpoolError> {
        self.lock()?.dead_letter(cursor, records)
    }

    pub fn has_more_after(&self, cursor: &Cursor) -> Result<bool, SpoolError> {
        Ok(self.lock()?.has_more_after(cursor))
    }

    pub fn sync(&self) -> Result<(), SpoolError> {
        self.lock()?.sync()
    }

    pub fn sync_if_due(&self) -> Result<(), SpoolError> {
        self.lock()?.sync_if_due()
    }

    pub fn counters(&self) -> Result<ShippingCounters, SpoolError> {
        Ok(self.lock()?.counters())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(dir: &Path) -> SpoolConfig {
        SpoolConfig {
            dir: dir.to_path_buf(),
            max_bytes: 1 << 30,
            segment_bytes: MIN_SEGMENT_BYTES,
            fsync: FsyncPolicy::Never,
        }
    }

    /// A record that says which one it is: id (8 bytes LE) then `len` filler bytes.
    fn record(id: u64, len: usize) -> Vec<u8> {
        let mut r = id.to_le_bytes().to_vec();
        r.extend((0..len).map(|i| b'a' + ((i as u64 + id) % 26) as u8));
        r
    }

    fn id_of(r: &[u8]) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&r[..8]);
        u64::from_le_bytes(b)
    }

    fn ids(records: &[Vec<u8>]) -> Vec<u64> {
        records.iter().map(|r| id_of(r)).collect()
    }

    fn open(c: &SpoolConfig) -> (Spool, Recovery) {
        Spool::open(c.clone()).expect("open")
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = list_segments(dir)
            .expect("list")
            .into_iter()
            .map(|id| dir.join(segment_name(id)))
            .collect();
        v.sort();
        v
    }

    fn append_ids(spool: &mut Spool, range: Range<u64>, len: usize) {
        for id in range {
            spool.append(&record(id, len)).expect("append");
        }
    }

    fn drain(spool: &mut Spool, batch: usize) -> Vec<u64> {
        let mut out = Vec::new();
        let mut all = Vec::new();
        while let Some(c) = spool.read_batch(batch, usize::MAX, &mut out).expect("read") {
            all.extend(ids(&out));
            spool.ack(c).expect("ack");
        }
        all
    }

    #[test]
    fn round_trip_across_segment_rolls() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (mut spool, rec) = open(&cfg(tmp.path()));
        assert_eq!(rec.ledger, LedgerStatus::Missing);
        append_ids(&mut spool, 0..50, 1000);
        assert!(
            segment_files(tmp.path()).len() >= 12,
            "rolled every ~4 records"
        );
        assert_eq!(spool.counters().pending_records, 50);
        assert_eq!(drain(&mut spool, 7), (0..50).collect::<Vec<_>>());
        let c = spool.counters();
        assert_eq!(
            (c.pending_records, c.pending_bytes, c.acked_records),
            (0, 0, 50)
        );
        // Everything acknowledged: only the segment being appended is left.
        assert_eq!(segment_files(tmp.path()).len(), 1);
        append_ids(&mut spool, 50..53, 10);
        assert_eq!(drain(&mut spool, 100), vec![50, 51, 52]);
    }

    #[test]
    fn batches_respect_limits_and_repeat_until_acked() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (mut spool, _) = open(&cfg(tmp.path()));
        append_ids(&mut spool, 0..10, 100);
        let mut out = Vec::new();
        let c1 = spool
            .read_batch(3, usize::MAX, &mut out)
            .expect("read")
            .expect("some");
        assert_eq!(ids(&out), vec![0, 1, 2]);
        assert_eq!(c1.records(), 3);
        let c2 = spool
            .read_batch(3, usize::MAX, &mut out)
            .expect("read")
            .expect("some");
        assert_eq!((ids(&out), c1), (vec![0, 1, 2], c2));
        assert!(spool.has_more_after(&c1));
        // 108-byte payloads: 250 bytes hold two; a tiny limit still yields one record.
        spool.read_batch(100, 250, &mut out).expect("read");
        assert_eq!(ids(&out), vec![0, 1]);
        spool.read_batch(100, 1, &mut out).expect("read");
        assert_eq!(ids(&out), vec![0]);
        spool.ack(c1).expect("ack");
        spool.ack(c1).expect("a repeated ack is harmless");
        let c = spool
            .read_batch(100, usize::MAX, &mut out)
            .expect("read")
            .expect("some");
        assert_eq!(ids(&out), (3..10).collect::<Vec<_>>());
        assert!(!spool.has_more_after(&c));
        spool.ack(c).expect("ack");
        assert_eq!(
            spool.read_batch(100, usize::MAX, &mut out).expect("read"),
            None
        );
        assert!(out.is_empty());
    }

    #[test]
    fn restart_resumes_after_the_ack_and_rereads_unacked() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = cfg(tmp.path());
        let (mut spool, _) = open(&c);
        append_ids(&mut spool, 0..20, 500);
        let mut out = Vec::new();
        let cur = spool
            .read_batch(10, usize::MAX, &mut out)
            .expect("read")
            .expect("some");
        spool.ack(cur).expect("ack");
        // Read but not acked: must come back after the restart.
        spool.read_batch(5, usize::MAX, &mut out).expect("read");
        assert_eq!(ids(&out), (10..15).collect::<Vec<_>>());
        drop(spool); // as after SIGKILL: nothing synced, the page cache has it all
        let (mut spool, rec) = open(&c);
        assert_eq!(rec.ledger, LedgerStatus::Loaded);
        assert_eq!(
            (rec.pending_records, rec.torn_tails_cut, rec.corrupt_records),
            (10, 0, 0)
        );
        assert_eq!(spool.counters().acked_records, 10);
        append_ids(&mut spool, 20..22, 10);
        assert_eq!(drain(&mut spool, 4), (10..22).collect::<Vec<_>>());
    }

    #[test]
    fn truncated_last_record_is_cut_and_counted() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = SpoolConfig {
            segment_bytes: 1 << 20,
            ..cfg(tmp.path())
        };
        let (mut spool, _) = open(&c);
        append_ids(&mut spool, 0..10, 200);
        drop(spool);
        let seg = segment_files(tmp.path()).pop().expect("segment");
        let len = fs::metadata(&seg).expect("stat").len();
        let f = OpenOptions::new().write(true).open(&seg).expect("open");
        f.set_len(len - 5).expect("cut");
        drop(f);
        let (mut spool, rec) = open(&c);
        assert_eq!(rec.torn_tails_cut, 1);
        assert_eq!(rec.torn_bytes_cut, (RECORD_HEADER_BYTES + 208 - 5) as u64);
        assert_eq!(rec.corrupt_records, 1);
        assert_eq!(rec.pending_records, 9);
        assert_eq!(fs::metadata(&seg).expect("stat").len(), len - 220);
        assert_eq!(spool.counters().corrupt_records, 1);
        assert_eq!(drain(&mut spool, 100), (0..9).collect::<Vec<_>>());
        // Counted once, not again by the reader or the next recovery.
        drop(spool);
        let (spool, rec) = open(&c);
        assert_eq!(
            (rec.corrupt_records, spool.counters().corrupt_records),
            (0, 1)
        );
    }

    /// Flips one bit at `at` of the only segment file.
    fn flip(dir: &Path, at: usize) {
        let seg = segment_files(dir).pop().expect("segment");
        let mut bytes = fs::read(&seg).expect("read");
        bytes[at] ^= 0x10;
        fs::write(&seg, bytes).expect("write");
    }

    #[test]
    fn flipped_bits_in_the_middle_are_skipped_and_counted() {
        let frame = RECORD_HEADER_BYTES + 208;
        // In the payload, the CRC, the length (an impossible one) and the magic.
        for at in [4 * frame + 100, 4 * frame + 9, 4 * frame + 7, 4 * frame] {
            let tmp = tempfile::tempdir().expect("tmp");
            let c = SpoolConfig {
                segment_bytes: 1 << 20,
                ..cfg(tmp.path())
            };
            let (mut spool, _) = open(&c);
            append_ids(&mut spool, 0..10, 200);
            drop(spool);
            flip(tmp.path(), at);
            let (mut spool, rec) = open(&c);
            assert_eq!(
                (rec.corrupt_records, rec.torn_tails_cut),
                (1, 0),
                "flip at {at}"
            );
            assert_eq!(rec.pending_records, 9);
            let expect: Vec<u64> = (0..10).filter(|&i| i != 4).collect();
            assert_eq!(spool.pending_payloads().expect("list").len(), 9);
            assert_eq!(drain(&mut spool, 3), expect);
            assert_eq!(spool.counters().corrupt_records, 1, "counted once");
        }
    }

    #[test]
    fn corruption_found_by_the_reader_is_counted_once() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = SpoolConfig {
            segment_bytes: 1 << 20,
            ..cfg(tmp.path())
        };
        let (mut spool, _) = open(&c);
        append_ids(&mut spool, 0..10, 200);
        // Damage the segment being appended behind the spool's back.
        let seg = segment_files(tmp.path()).pop().expect("segment");
        let f = OpenOptions::new().write(true).open(&seg).expect("open");
        f.write_all_at(&[0xAA; 3], (2 * (RECORD_HEADER_BYTES + 208) + 50) as u64)
            .expect("damage");
        let mut out = Vec::new();
        for _ in 0..3 {
            spool.read_batch(5, usize::MAX, &mut out).expect("read");
            assert_eq!(ids(&out), vec![0, 1, 3, 4, 5]);
        }
        assert_eq!(spool.counters().corrupt_records, 1);
        assert_eq!(
            spool.counters().pending_records,
            10,
            "pending counts what was written"
        );
        assert_eq!(drain(&mut spool, 5), vec![0, 1, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(spool.counters().pending_records, 0);
        drop(spool);
        let (spool, rec) = open(&c);
        assert_eq!(
            (rec.corrupt_records, spool.counters().corrupt_records),
            (0, 1)
        );
    }

    #[test]
    fn garbage_length_fields_do_not_allocate_or_hang() {
        let mut good = Vec::new();
        encode_record(b"after", &mut good).expect("encode");
        for len in [
            u32::MAX,
            MAX_RECORD_BYTES as u32,
            MAX_RECORD_BYTES as u32 + 1,
            1000,
        ] {
            let mut data = MAGIC.to_vec();
            data.extend_from_slice(&len.to_le_bytes());
            data.extend_from_slice(&[0; 4]);
            data.extend_from_slice(&[7; 100]);
            data.extend_from_slice(&good);
            let mut reader = FrameReader::new(&data[..], 0, data.len() as u64, Vec::new());
            let mut items = Vec::new();
            loop {
                match reader.next_item().expect("memory") {
                    Item::End => break,
                    Item::Record { payload, .. } => items.push(reader.payload(payload).to_vec()),
                    Item::Corrupt { .. } => items.push(b"corrupt".to_vec()),
                }
            }
            assert_eq!(
                items,
                vec![b"corrupt".to_vec(), b"after".to_vec()],
                "len {len}"
            );
            assert!(
                reader.buf.capacity() <= CHUNK,
                "len {len}: buffer {}",
                reader.buf.capacity()
            );

            // The same as a spool file, with a claimed length and nothing after it.
            let tmp = tempfile::tempdir().expect("tmp");
            fs::write(tmp.path().join(segment_name(1)), &data[..112]).expect("write");
            let (mut spool, rec) = open(&cfg(tmp.path()));
            assert_eq!((rec.torn_tails_cut, rec.pending_records), (1, 0));
            assert!(spool.pending_payloads().expect("list").is_empty());
            assert!(
                segment_files(tmp.path()).is_empty(),
                "empty segment deleted"
            );
        }
    }

    #[test]
    fn cap_drops_oldest_segments_and_appends_keep_working() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = SpoolConfig {
            max_bytes: 4 * MIN_SEGMENT_BYTES,
            ..cfg(tmp.path())
        };
        let (mut spool, _) = open(&c);
        let mut out = Vec::new();
        append_ids(&mut spool, 0..3, 500);
        let early = spool
            .read_batch(2, usize::MAX, &mut out)
            .expect("read")
            .expect("some");
        append_ids(&mut spool, 3..200, 500);
        let counters = spool.counters();
        assert!(counters.dropped_cap_records > 100, "{counters:?}");
        assert_eq!(counters.pending_records + counters.dropped_cap_records, 200);
        assert!(spool.disk_bytes() <= c.max_bytes);
        let on_disk: u64 = segment_files(tmp.path())
            .iter()
            .map(|p| fs::metadata(p).expect("stat").len())
            .sum();
        assert_eq!(on_disk, spool.disk_bytes());
        // The batch read before the drop is gone; acking it changes nothing.
        spool.ack(early).expect("ack of dropped records");
        assert_eq!(spool.counters().acked_records, 0);
        let left = drain(&mut spool, 10);
        let first = 200 - counters.pending_records;
        assert_eq!(
            left,
            (first..200).collect::<Vec<_>>(),
            "newest records kept, in order"
        );
        assert_eq!(spool.counters().acked_records, counters.pending_records);
    }

    #[test]
    fn dead_letters_move_count_and_survive_restarts() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = cfg(tmp.path());
        let (mut spool, _) = open(&c);
        append_ids(&mut spool, 0..10, 300);
        let mut out = Vec::new();
        let cur = spool
            .read_batch(4, usize::MAX, &mut out)
            .expect("read")
            .expect("some");
        spool.dead_letter(cur, &out).expect("dead letter");
        let counters = spool.counters();
        assert_eq!(
            (
                counters.dead_letter_records,
                counters.acked_records,
                counters.pending_records
            ),
            (4, 0, 6)
        );
        assert_eq!(
            ids(&spool.dead_letter_payloads().expect("dead")),
            vec![0, 1, 2, 3]
        );
        assert_eq!(drain(&mut spool, 100), (4..10).collect::<Vec<_>>());
        assert_eq!(spool.counters().acked_records, 6);
        drop(spool);
        let (spool, rec) = open(&c);
        assert_eq!((rec.dead_letter_segments, rec.dead_letter_records), (1, 4));
        assert_eq!(spool.counters().dead_letter_records, 4);
        assert_eq!(
            ids(&spool.dead_letter_payloads().expect("dead")),
            vec![0, 1, 2, 3]
        );
    }

    #[test]
    fn dead_letters_are_dropped_only_after_the_live_queue() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = SpoolConfig {
            max_bytes: 4 * MIN_SEGMENT_BYTES,
            ..cfg(tmp.path())
        };
        let (mut spool, _) = open(&c);
        append_ids(&mut spool, 0..20, 500);
        let mut out = Vec::new();
        let cur = spool
            .read_batch(20, usize::MAX, &mut out)
            .expect("read")
            .expect("some");
        spool.dead_letter(cur, &out).expect("dead letter"); // ~10 KiB of dead letters
        append_ids(&mut spool, 20..40, 500);
        assert_eq!(
            spool.dead_letter_payloads().expect("dead").len(),
            20,
            "live dropped first"
        );
        assert!(spool.counters().dropped_cap_records > 0);
        // Nothing droppable left in the live queue: a flood of dead letters eats the oldest.
        let cur = spool
            .read_batch(100, usize::MAX, &mut out)
            .expect("read")
            .expect("some");
        let flood: Vec<Vec<u8>> = (100..140).map(|i| record(i, 500)).collect();
        spool.dead_letter(cur, &flood).expect("dead letter");
        let dead = ids(&spool.dead_letter_payloads().expect("dead"));
        assert_eq!(dead.last(), Some(&139));
        assert!(
            dead.len() < 60 && dead.windows(2).all(|w| w[0] < w[1]),
            "{dead:?}"
        );
        assert!(spool.disk_bytes() <= c.max_bytes);
    }

    #[test]
    fn missing_or_corrupt_ledger_resends_from_the_oldest_segment() {
        for damage in ["missing", "garbage", "empty"] {
            let tmp = tempfile::tempdir().expect("tmp");
            let c = cfg(tmp.path());
            let (mut spool, _) = open(&c);
            append_ids(&mut spool, 0..30, 400);
            let mut out = Vec::new();
            let cur = spool
                .read_batch(12, usize::MAX, &mut out)
                .expect("read")
                .expect("some");
            spool.ack(cur).expect("ack");
            drop(spool);
            let ledger = tmp.path().join(LEDGER_FILE);
            match damage {
                "missing" => fs::remove_file(&ledger).expect("rm"),
                "garbage" => fs::write(&ledger, [0x5Au8; 256]).expect("write"),
                _ => fs::write(&ledger, []).expect("write"),
            }
            let (mut spool, rec) = open(&c);
            let status = if damage == "garbage" {
                LedgerStatus::Corrupt
            } else {
                LedgerStatus::Missing
            };
            assert_eq!(rec.ledger, status);
            // Segments wholly acknowledged were deleted; the rest comes again, nothing is lost.
            let again = drain(&mut spool, 100);
            assert!(
                again.len() >= 18 && again.ends_with(&(12..30).collect::<Vec<_>>()),
                "{again:?}"
            );
        }
    }

    #[test]
    fn an_edited_ledger_neither_skips_nor_exhausts() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = SpoolConfig {
            segment_bytes: 1 << 20,
            ..cfg(tmp.path())
        };
        let (mut spool, _) = open(&c);
        append_ids(&mut spool, 0..10, 100);
        drop(spool);
        let frame = (RECORD_HEADER_BYTES + 108) as u64;
        let write = |ack: Pos| {
            let state = LedgerState {
                generation: 7,
                ack,
                ..LedgerState::default()
            };
            let mut bytes = state.encode().to_vec();
            bytes.extend_from_slice(&[0; LEDGER_SLOT]);
            fs::write(tmp.path().join(LEDGER_FILE), bytes).expect("ledger");
        };
        // Inside record 3: back to its start, record 3 is sent again.
        write(Pos {
            seg: 1,
            off: 3 * frame + 50,
        });
        let (mut spool, rec) = open(&c);
        assert_eq!(rec.pending_records, 7);
        assert_eq!(
            ids(&spool.pending_payloads().expect("list")),
            (3..10).collect::<Vec<_>>()
        );
        drop(spool);
        // Beyond every segment: everything counts as acknowledged, new records are not.
        write(Pos {
            seg: u64::MAX,
            off: u64::MAX,
        });
        let (mut spool, rec) = open(&c);
        assert_eq!(rec.pending_records, 0);
        append_ids(&mut spool, 10..12, 100);
        assert_eq!(drain(&mut spool, 100), vec![10, 11]);
    }

    #[test]
    fn a_torn_ledger_write_falls_back_to_the_previous_slot() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = SpoolConfig {
            segment_bytes: 1 << 20,
            ..cfg(tmp.path())
        };
        let (mut spool, _) = open(&c);
        append_ids(&mut spool, 0..10, 100);
        let mut out = Vec::new();
        let cur = spool
            .read_batch(3, usize::MAX, &mut out)
            .expect("read")
            .expect("some");
        spool.ack(cur).expect("ack");
        let cur = spool
            .read_batch(3, usize::MAX, &mut out)
            .expect("read")
            .expect("some");
        spool.ack(cur).expect("ack");
        let newest = (spool.state.generation % 2) as usize * LEDGER_SLOT;
        drop(spool);
        let ledger = tmp.path().join(LEDGER_FILE);
        let mut bytes = fs::read(&ledger).expect("read");
        bytes[newest + 20] ^= 1;
        fs::write(&ledger, bytes).expect("write");
        let (mut spool, rec) = open(&c);
        assert_eq!(rec.ledger, LedgerStatus::Loaded);
        assert_eq!(drain(&mut spool, 100), (3..10).collect::<Vec<_>>());
    }

    #[test]
    fn ack_never_runs_ahead_of_data_lost_by_the_disk() {
        // Power loss after the ledger reached the disk but before the data did.
        let tmp = tempfile::tempdir().expect("tmp");
        let c = SpoolConfig {
            segment_bytes: 1 << 20,
            ..cfg(tmp.path())
        };
        let (mut spool, _) = open(&c);
        append_ids(&mut spool, 0..10, 100);
        drain(&mut spool, 100);
        drop(spool);
        let seg = segment_files(tmp.path()).pop().expect("segment");
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .expect("open")
            .set_len(5 * 120)
            .expect("cut");
        let (mut spool, rec) = open(&c);
        assert_eq!(rec.pending_records, 0);
        append_ids(&mut spool, 10..13, 100);
        assert_eq!(
            drain(&mut spool, 100),
            vec![10, 11, 12],
            "new records not covered by the old ack"
        );
    }

    #[test]
    fn files_are_private_and_the_directory_is_locked() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("spool");
        let c = cfg(&dir);
        let (mut spool, _) = open(&c);
        append_ids(&mut spool, 0..3, 10);
        let mut out = Vec::new();
        let cur = spool
            .read_batch(1, usize::MAX, &mut out)
            .expect("read")
            .expect("some");
        spool.dead_letter(cur, &out).expect("dead letter");
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(DEAD_DIR)), 0o700);
        assert_eq!(mode(&dir.join(LEDGER_FILE)), 0o600);
        let mut files = segment_files(&dir);
        files.extend(segment_files(&dir.join(DEAD_DIR)));
        assert_eq!(files.len(), 2);
        for f in files {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
        assert!(matches!(Spool::open(c.clone()), Err(SpoolError::Locked(_))));
        drop(spool);
        assert!(Spool::open(c).is_ok(), "lock released on drop");
    }

    #[test]
    fn bad_records_and_configs_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = cfg(tmp.path());
        assert!(matches!(
            Spool::open(SpoolConfig {
                segment_bytes: 100,
                ..c.clone()
            }),
            Err(SpoolError::Config(_))
        ));
        assert!(matches!(
            Spool::open(SpoolConfig {
                max_bytes: MIN_SEGMENT_BYTES,
                ..c.clone()
            }),
            Err(SpoolError::Config(_))
        ));
        let (mut spool, _) = open(&c);
        let big = vec![b'x'; MAX_RECORD_BYTES + 1];
        assert!(matches!(
            spool.append(&big),
            Err(SpoolError::RecordTooLarge { .. })
        ));
        assert_eq!(spool.counters().dropped_write_records, 1);
        // A maximal record fits, in a segment of its own.
        spool
            .append(&vec![b'y'; MAX_RECORD_BYTES])
            .expect("max record");
        spool.append(b"small").expect("append");
        let mut out = Vec::new();
        spool.read_batch(10, usize::MAX, &mut out).expect("read");
        assert_eq!(out.len(), 2);
        drop(spool);
        let (spool, _) = open(&c);
        assert_eq!(spool.counters().dropped_write_records, 1, "persisted");
    }

    #[test]
    fn every_policy_round_trips() {
        for fsync in [
            FsyncPolicy::EveryWrite,
            FsyncPolicy::Interval(Duration::ZERO),
            FsyncPolicy::default(),
        ] {
            let tmp = tempfile::tempdir().expect("tmp");
            let c = SpoolConfig {
                fsync,
                ..cfg(tmp.path())
            };
            let (mut spool, _) = open(&c);
            append_ids(&mut spool, 0..12, 700);
            spool.sync().expect("sync");
            spool.sync_if_due().expect("tick");
            assert_eq!(drain(&mut spool, 5), (0..12).collect::<Vec<_>>());
        }
    }

    #[test]
    fn shared_spool_between_a_writer_and_a_shipper() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = SpoolConfig {
            fsync: FsyncPolicy::default(),
            ..cfg(tmp.path())
        };
        let (shared, _) = SharedSpool::open(c).expect("open");
        const N: u64 = 2000;
        let writer = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                for id in 0..N {
                    shared.append(&record(id, 100)).expect("append");
                }
            })
        };
        let mut seen = Vec::new();
        let mut out = Vec::new();
        while (seen.len() as u64) < N {
            match shared.read_batch(64, 1 << 20, &mut out).expect("read") {
                Some(c) => {
                    seen.extend(ids(&out));
                    shared.ack(c).expect("ack");
                }
                None => {
                    shared
                        .wait_for_data(Duration::from_millis(100))
                        .expect("wait");
                }
            }
        }
        writer.join().expect("writer");
        assert_eq!(seen, (0..N).collect::<Vec<_>>());
        let counters = shared.counters().expect("counters");
        assert_eq!((counters.acked_records, counters.pending_records), (N, 0));
        assert!(
            !shared
                .wait_for_data(Duration::from_millis(1))
                .expect("wait")
        );
    }

    #[test]
    fn segment_names_round_trip_and_strangers_are_ignored() {
        assert_eq!(segment_name(1), "00000000000000000001.seg");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        for bad in [
            "99999999999999999999.seg",
            "1.seg",
            "0000000000000000000a.seg",
            "00000000000000000001.tmp",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }

    /// One step of the model-based property test.
    #[derive(Debug, Clone)]
    enum Op {
        Append(usize),
        Read {
            max_records: usize,
            max_bytes: usize,
        },
        Ack,
        AckAgain,
        Reopen,
        /// Reopen after cutting this many bytes off the newest segment file.
        CutTail(u64),
        Sync,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0usize..600).prop_map(Op::Append),
            3 => (1usize..12, prop_oneof![Just(usize::MAX), 1usize..2000])
                .prop_map(|(max_records, max_bytes)| Op::Read { max_records, max_bytes }),
            3 => Just(Op::Ack),
            1 => Just(Op::AckAgain),
            1 => Just(Op::Reopen),
            1 => (0u64..700).prop_map(Op::CutTail),
            1 => Just(Op::Sync),
        ]
    }

    /// The model: every record ever appended, whether it still exists on disk, and how many
    /// (a prefix) are acknowledged.
    struct Model {
        log: Vec<(Vec<u8>, bool)>,
        acked: usize,
    }

    impl Model {
        fn pending(&self) -> Vec<&Vec<u8>> {
            self.log[self.acked..]
                .iter()
                .filter(|(_, alive)| *alive)
                .map(|(r, _)| r)
                .collect()
        }
    }

    proptest! {
        // A fixed seed keeps the test deterministic; 64 cases of up to 80 operations each run in
        // about a second (1500 cases of each passed during development).
        #![proptest_config(ProptestConfig {
            cases: 64,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5b001),
            ..ProptestConfig::default()
        })]

        /// Against a model with no cap: reads return exactly the oldest unacknowledged records
        /// that exist (so nothing acked comes back within a session and nothing fully written is
        /// lost, across reopens and torn tails); counters match; nothing panics.
        #[test]
        fn spool_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
            let tmp = tempfile::tempdir().expect("tmp");
            let c = cfg(tmp.path());
            let (mut spool, _) = open(&c);
            let mut model = Model { log: Vec::new(), acked: 0 };
            let mut last: Option<(Cursor, usize)> = None;
            let mut acked_cursor: Option<Cursor> = None;
            let mut out = Vec::new();
            for op in ops {
                match op {
                    Op::Append(len) => {
                        let r = record(model.log.len() as u64, len);
                        spool.append(&r).expect("append");
                        model.log.push((r, true));
                    }
                    Op::Read { max_records, max_bytes } => {
                        let cur = spool.read_batch(max_records, max_bytes, &mut out).expect("read");
                        let pending = model.pending();
                        let mut n = 0;
                        let mut bytes = 0;
                        for r in &pending {
                            if n == max_records || (n > 0 && bytes + r.len() > max_bytes) {
                                break;
                            }
                            n += 1;
                            bytes += r.len();
                        }
                        prop_assert_eq!(&out.iter().collect::<Vec<_>>(), &pending[..n].to_vec());
                        prop_assert_eq!(cur.is_some(), n > 0);
                        last = cur.map(|c| {
                            // Index in the log just after the batch's last record.
                            let end = if n == 0 { model.acked } else {
                                (id_of(&out[n - 1]) + 1) as usize
                            };
                            (c, end)
                        });
                    }
                    Op::Ack => {
                        if let Some((cur, end)) = last.take() {
                            spool.ack(cur).expect("ack");
                            model.acked = model.acked.max(end);
                            acked_cursor = Some(cur);
                        }
                    }
                    Op::AckAgain => {
                        if let Some(cur) = acked_cursor {
                            spool.ack(cur).expect("ack again");
                        }
                    }
                    Op::Reopen => {
                        drop(spool);
                        let (s, rec) = open(&c);
                        spool = s;
                        prop_assert_eq!(rec.ledger, LedgerStatus::Loaded);
                        prop_assert_eq!(rec.torn_tails_cut, 0);
                        last = None;
                        acked_cursor = None;
                    }
                    Op::CutTail(k) => {
                        drop(spool);
                        last = None;
                        acked_cursor = None;
                        let mut expect_torn = 0;
                        if let Some(seg) = segment_files(tmp.path()).pop() {
                            let bytes = fs::read(&seg).expect("read");
                            let decoded = decode_segment(&bytes);
                            let new_len = bytes.len().saturating_sub(k as usize);
                            // The file's records are the newest records that still exist.
                            let alive: Vec<usize> = (0..model.log.len()).filter(|&i| model.log[i].1).collect();
                            let in_file = &alive[alive.len() - decoded.records.len()..];
                            for (range, &i) in decoded.records.iter().zip(in_file) {
                                prop_assert_eq!(&bytes[range.clone()], &model.log[i].0[..]);
                                if range.end > new_len {
                                    model.log[i].1 = false;
                                }
                            }
                            if !decoded.records.iter().any(|r| r.end == new_len) && new_len > 0 {
                                expect_torn = 1;
                            }
                            OpenOptions::new().write(true).open(&seg).expect("open")
                                .set_len(new_len as u64).expect("cut");
                        }
                        let (s, rec) = open(&c);
                        spool = s;
                        prop_assert_eq!(rec.torn_tails_cut, expect_torn);
                    }
                    Op::Sync => spool.sync().expect("sync"),
                }
                let pending = model.pending();
                let counters = spool.counters();
                prop_assert_eq!(counters.pending_records, pending.len() as u64);
                prop_assert_eq!(counters.pending_bytes, pending.iter().map(|r| r.len() as u64).sum::<u64>());
            }
            let expect: Vec<Vec<u8>> = model.pending().into_iter().cloned().collect();
            prop_assert_eq!(spool.pending_payloads().expect("list"), expect);
        }

        /// With a small cap: the disk stays under it, every appended record is pending, acked or
        /// counted as dropped, and records come out in order, never again once acked.
        #[test]
        fn cap_keeps_accounts(ops in proptest::collection::vec(op(), 1..80)) {
            let tmp = tempfile::tempdir().expect("tmp");
            let c = SpoolConfig { max_bytes: 3 * MIN_SEGMENT_BYTES, ..cfg(tmp.path()) };
            let (mut spool, _) = open(&c);
            let mut appended = 0u64;
            let mut next_expected = 0u64; // every id below this was acked or dropped
            let mut last: Option<(Cursor, u64)> = None;
            let mut out = Vec::new();
            for op in ops {
                match op {
                    Op::Append(len) => {
                        spool.append(&record(appended, len * 2)).expect("append");
                        appended += 1;
                    }
                    Op::Read { max_records, max_bytes } => {
                        last = spool.read_batch(max_records, max_bytes, &mut out).expect("read")
                            .map(|cur| (cur, id_of(&out[out.len() - 1]) + 1));
                        let got = ids(&out);
                        prop_assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "{got:?}");
                        if let Some(&first) = got.first() {
                            prop_assert!(first >= next_expected);
                        }
                    }
                    Op::Ack | Op::AckAgain => {
                        if let Some((cur, end)) = last.take() {
                            spool.ack(cur).expect("ack");
                            next_expected = next_expected.max(end);
                        }
                    }
                    Op::Reopen | Op::CutTail(_) => {
                        drop(spool);
                        spool = open(&c).0;
                        last = None;
                    }
                    Op::Sync => spool.sync().expect("sync"),
                }
                let k = spool.counters();
                prop_assert_eq!(k.pending_records + k.acked_records + k.dropped_cap_records, appended, "{:?}", k);
                prop_assert!(spool.disk_bytes() <= c.max_bytes);
            }
        }
    }
}
