//! Capture files: pcap and pcapng read straight out of a byte buffer (usually a memory map),
//! handing out each frame as a slice of that buffer.
//!
//! The reader never copies packet bytes, never allocates per frame and never panics, whatever
//! the input. A record cut short ends iteration and is reported through
//! [`Frames::truncated_at`]; a corrupt record header ends iteration with a [`Warning`]. This
//! module does not decode packets and does not print; callers decide what to tell the user.
//!
//! The only `unsafe` is the one call that memory-maps a file in [`CaptureFile::open`].

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::iter::FusedIterator;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

pub use super::frame::Frame;

/// Container format detected from the file's magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Pcap { nanosecond: bool, big_endian: bool },
    PcapNg,
}

/// Why a capture could not be opened or its header not read. Messages are written to follow
/// "PATH: " on one line, so they do not repeat the path.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("is a directory, not a capture file")]
    IsDirectory { path: PathBuf },
    #[error("empty file")]
    Empty,
    #[error("not a pcap or pcapng file ({len} bytes, too short for a file header)")]
    TooShort { len: usize },
    /// `magic` is the first four bytes of the file read big-endian, i.e. in file order.
    #[error("not a pcap or pcapng file (starts with 0x{magic:08x})")]
    NotACapture { magic: u32 },
    #[error("bad capture file header: {0}")]
    BadHeader(&'static str),
}

/// Something unusual met while iterating; each kind is reported once (with a count where it can
/// recur), so the list never grows past [`Warning::MAX_KINDS`] entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// The file ends in the middle of the record starting at `offset`; frames before it were read.
    Truncated { offset: u64 },
    /// The record header at `offset` is impossible; iteration stopped there.
    CorruptRecord { offset: u64, reason: &'static str },
    /// pcapng packets naming an interface that no Interface Description Block defined; skipped.
    UnknownInterface { packets: u64, first_offset: u64 },
    /// Records whose original length was smaller than the captured length; `wire_len` was raised
    /// to the captured length.
    WireLenBelowCaptured { records: u64, first_offset: u64 },
}

impl Warning {
    /// Number of distinct warning kinds, hence the most entries [`Frames::warnings`] returns.
    pub const MAX_KINDS: usize = 4;
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Warning::Truncated { offset } => write!(
                f,
                "file cut short inside the record at byte offset {offset}; analysed up to there"
            ),
            Warning::CorruptRecord { offset, reason } => write!(
                f,
                "corrupt record at byte offset {offset} ({reason}); stopped reading there"
            ),
            Warning::UnknownInterface {
                packets,
                first_offset,
            } => write!(
                f,
                "{packets} packet(s) on an undefined pcapng interface skipped (first at byte offset {first_offset})"
            ),
            Warning::WireLenBelowCaptured {
                records,
                first_offset,
            } => write!(
                f,
                "{records} record(s) claim an original length below the captured length (first at byte offset {first_offset})"
            ),
        }
    }
}

/// A capture file held in memory: memory-mapped when it is a regular file, read into a buffer
/// when it is a pipe or other stream (so `analyze <(zcat x.pcap.gz)` works).
pub struct CaptureFile {
    path: PathBuf,
    contents: Contents,
}

enum Contents {
    Empty,
    Mapped(Mmap),
    Read(Vec<u8>),
}

impl CaptureFile {
    /// Opens and maps `path`. Errors carry the path; a directory is an error.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let io_error = |source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io_error)?;
        let metadata = file.metadata().map_err(io_error)?;
        if metadata.is_dir() {
            return Err(CaptureError::IsDirectory {
                path: path.to_path_buf(),
            });
        }
        let contents = if !metadata.is_file() {
            let mut buffer = Vec::new();
            file.read_to_end(&mut buffer).map_err(io_error)?;
            if buffer.is_empty() {
                Contents::Empty
            } else {
                Contents::Read(buffer)
            }
        } else if metadata.len() == 0 {
            // Mapping zero bytes fails on Linux; an empty file is reported by `frames`.
            Contents::Empty
        } else {
            let map = map_read_only(&file).map_err(io_error)?;
            // Only a hint for read-ahead; reading works the same if the kernel ignores it.
            #[cfg(unix)]
            let _ = map.advise(memmap2::Advice::Sequential);
            Contents::Mapped(map)
        };
        Ok(Self {
            path: path.to_path_buf(),
            contents,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        match &self.contents {
            Contents::Empty => &[],
            Contents::Mapped(map) => map,
            Contents::Read(buffer) => buffer,
        }
    }

    /// Iterates the frames of the file; fails if the file header is not a capture header.
    pub fn frames(&self) -> Result<Frames<'_>, CaptureError> {
        frames(self.bytes())
    }
}

#[allow(unsafe_code)]
fn map_read_only(file: &File) -> io::Result<Mmap> {
    // SAFETY: the map is read-only and only ever viewed as `&[u8]`. `Mmap::map` is unsafe
    // because another process could modify or truncate the file while it is mapped; the agent
    // reads finished capture files, and such a change can at worst alter bytes the parser
    // already treats as untrusted (every length is checked) or raise SIGBUS on truncation,
    // which ends the process rather than corrupting memory.
    // `populate` pre-faults the whole map in one pass (MAP_POPULATE): far cheaper than one
    // page fault per 4 KiB while the analysis walks the file.
    unsafe { memmap2::MmapOptions::new().populate().map(file) }
}

const PCAP_MAGIC_MICRO: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NANO: u32 = 0xa1b2_3c4d;
const PCAP_MAGIC_MODIFIED: u32 = 0xa1b2_cd34;
const PCAPNG_SHB_TYPE: u32 = 0x0a0d_0d0a;
const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

const PCAP_FILE_HEADER_LEN: usize = 24;
const PCAP_RECORD_HEADER_LEN: usize = 16;
/// Highest captured length accepted without a larger snaplen (libpcap's usual maximum).
const PCAP_MAX_CAPLEN: u32 = 262_144;
/// Captured lengths up to this are accepted even when the header's snaplen is smaller: some
/// writers put a small or zero snaplen in the header and still store whole packets.
const PCAP_MIN_CAPLEN_LIMIT: u32 = 65_535;

const PCAPNG_IDB: u32 = 1;
const PCAPNG_OBSOLETE_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;
/// Block type, block length and trailing block length.
const PCAPNG_BLOCK_OVERHEAD: usize = 12;
const PCAPNG_OPT_END: u16 = 0;
const PCAPNG_OPT_IF_TSRESOL: u16 = 9;
const PCAPNG_OPT_IF_TSOFFSET: u16 = 14;
/// Interfaces beyond this many per section are ignored (their packets count as unknown), so a
/// hostile file cannot make the interface table grow with its size.
const PCAPNG_MAX_INTERFACES: usize = 1 << 16;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Detects the format, validates the file header and returns an iterator over the frames.
pub fn frames(bytes: &[u8]) -> Result<Frames<'_>, CaptureError> {
    let Some(&magic_bytes) = bytes.first_chunk::<4>() else {
        return Err(if bytes.is_empty() {
            CaptureError::Empty
        } else {
            CaptureError::TooShort { len: bytes.len() }
        });
    };
    let magic_le = u32::from_le_bytes(magic_bytes);
    let magic_be = u32::from_be_bytes(magic_bytes);
    for (magic, big_endian) in [(magic_le, false), (magic_be, true)] {
        match magic {
            PCAP_MAGIC_MICRO => return pcap_frames(bytes, false, big_endian),
            PCAP_MAGIC_NANO => return pcap_frames(bytes, true, big_endian),
            _ => {}
        }
    }
    if magic_le == PCAPNG_SHB_TYPE {
        return pcapng_frames(bytes);
    }
    if magic_le == PCAP_MAGIC_MODIFIED || magic_be == PCAP_MAGIC_MODIFIED {
        return Err(CaptureError::BadHeader(
            "modified (Kuznetzov) pcap format is not supported",
        ));
    }
    Err(CaptureError::NotACapture { magic: magic_be })
}

fn pcap_frames(
    bytes: &[u8],
    nanosecond: bool,
    big_endian: bool,
) -> Result<Frames<'_>, CaptureError> {
    let Some(header) = bytes.first_chunk::<PCAP_FILE_HEADER_LEN>() else {
        return Err(CaptureError::BadHeader("pcap file header cut short"));
    };
    let version_major = u16_at(header, 4, big_endian);
    if version_major != 2 {
        return Err(CaptureError::BadHeader("unsupported pcap version"));
    }
    let snaplen = u32_at(header, 16, big_endian);
    // The upper bits of the link-type field carry FCS information, not the link type.
    let linktype = u32_at(header, 20, big_endian) & 0x0fff_ffff;
    let max_caplen = snaplen.clamp(PCAP_MIN_CAPLEN_LIMIT, PCAP_MAX_CAPLEN);
    Ok(Frames::new(
        bytes,
        PCAP_FILE_HEADER_LEN,
        FileFormat::Pcap {
            nanosecond,
            big_endian,
        },
        Reader::Pcap(PcapReader {
            linktype,
            big_endian,
            fraction_to_ns: if nanosecond { 1 } else { 1_000 },
            max_caplen,
        }),
    ))
}

fn pcapng_frames(bytes: &[u8]) -> Result<Frames<'_>, CaptureError> {
    let mut reader = PcapNgReader {
        big_endian: false,
        interfaces: Vec::new(),
        last_ts_ns: 0,
    };
    let block = match Block::new_checked(bytes, 0, reader.big_endian) {
        Ok(block) => block,
        Err(BlockError::Truncated) => {
            return Err(CaptureError::BadHeader(
                "pcapng section header block cut short",
            ));
        }
        Err(BlockError::Corrupt(reason)) => return Err(CaptureError::BadHeader(reason)),
    };
    if let Err(reason) = reader.start_section(&block) {
        return Err(CaptureError::BadHeader(reason));
    }
    Ok(Frames::new(
        bytes,
        block.total_len,
        FileFormat::PcapNg,
        Reader::PcapNg(reader),
    ))
}

/// Iterator over the frames of a capture buffer. See [`frames`].
pub struct Frames<'a> {
    bytes: &'a [u8],
    /// Offset of the next record; never beyond `bytes.len()`.
    position: usize,
    format: FileFormat,
    reader: Reader,
    finished: bool,
    truncated_at: Option<u64>,
    warnings: WarningList,
}

enum Reader {
    Pcap(PcapReader),
    PcapNg(PcapNgReader),
}

struct PcapReader {
    linktype: u32,
    big_endian: bool,
    fraction_to_ns: i64,
    max_caplen: u32,
}

struct PcapNgReader {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Simple Packet Blocks carry no timestamp; they inherit the previous frame's.
    last_ts_ns: i64,
}

#[derive(Clone, Copy)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    scale: TimestampScale,
    offset_ns: i128,
}

impl<'a> Frames<'a> {
    fn new(bytes: &'a [u8], position: usize, format: FileFormat, reader: Reader) -> Self {
        Self {
            bytes,
            position: position.min(bytes.len()),
            format,
            reader,
            finished: false,
            truncated_at: None,
            warnings: WarningList::default(),
        }
    }

    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// Bytes consumed so far: the offset of the next record (or of the record that ended
    /// iteration).
    pub fn position(&self) -> usize {
        self.position
    }

    /// Byte offset of the record the file was cut short in, once iteration reached it.
    pub fn truncated_at(&self) -> Option<u64> {
        self.truncated_at
    }

    /// Warnings met so far, at most one entry per kind.
    pub fn warnings(&self) -> &[Warning] {
        self.warnings.as_slice()
    }

    fn stop_truncated(&mut self, offset: usize) {
        let offset = offset as u64;
        self.finished = true;
        self.truncated_at = Some(offset);
        self.warnings.push(Warning::Truncated { offset });
    }

    fn stop_corrupt(&mut self, offset: usize, reason: &'static str) {
        self.finished = true;
        self.warnings.push(Warning::CorruptRecord {
            offset: offset as u64,
            reason,
        });
    }

    #[inline]
    fn next_pcap(&mut self) -> Option<Frame<'a>> {
        let Reader::Pcap(reader) = &self.reader else {
            return None;
        };
        let offset = self.position;
        let rest = self.bytes.get(offset..)?;
        if rest.is_empty() {
            self.finished = true;
            return None;
        }
        let Some(header) = rest.first_chunk::<PCAP_RECORD_HEADER_LEN>() else {
            self.stop_truncated(offset);
            return None;
        };
        let big_endian = reader.big_endian;
        let seconds = u32_at(header, 0, big_endian);
        let fraction = u32_at(header, 4, big_endian);
        let caplen = u32_at(header, 8, big_endian);
        let orig_len = u32_at(header, 12, big_endian);
        if caplen > reader.max_caplen {
            self.stop_corrupt(offset, "captured length larger than the snapshot length");
            return None;
        }
        let linktype = reader.linktype;
        // At most (2^32 - 1) * 10^9 + (2^32 - 1) * 10^3 < 2^63: cannot overflow.
        let ts_ns = i64::from(seconds) * NANOS_PER_SECOND as i64
            + i64::from(fraction) * reader.fraction_to_ns;
        // caplen <= PCAP_MAX_CAPLEN, so the end index cannot overflow.
        let end = PCAP_RECORD_HEADER_LEN + caplen as usize;
        let Some(data) = rest.get(PCAP_RECORD_HEADER_LEN..end) else {
            self.stop_truncated(offset);
            return None;
        };
        self.position = offset + end;
        let wire_len = self.checked_wire_len(orig_len, caplen, offset);
        Some(Frame {
            ts_ns,
            linktype,
            data,
            wire_len,
            interface: 0,
            pkttype: None,
            vlan_tci: None,
            vlan_tpid: None,
        })
    }

    #[inline]
    fn checked_wire_len(&mut self, orig_len: u32, caplen: u32, offset: usize) -> u32 {
        if orig_len >= caplen {
            orig_len
        } else {
            self.warnings.count_wire_len_below_captured(offset as u64);
            caplen
        }
    }

    fn next_pcapng(&mut self) -> Option<Frame<'a>> {
        loop {
            let Reader::PcapNg(reader) = &mut self.reader else {
                return None;
            };
            let offset = self.position;
            if offset >= self.bytes.len() {
                self.finished = true;
                return None;
            }
            let block = match Block::new_checked(self.bytes, offset, reader.big_endian) {
                Ok(block) => block,
                Err(BlockError::Truncated) => {
                    self.stop_truncated(offset);
                    return None;
                }
                Err(BlockError::Corrupt(reason)) => {
                    self.stop_corrupt(offset, reason);
                    return None;
                }
            };
            let packet = match block.block_type {
                PCAPNG_EPB => block.enhanced_packet(),
                PCAPNG_SPB => block.simple_packet(),
                PCAPNG_OBSOLETE_PB => block.obsolete_packet(),
                PCAPNG_IDB => {
                    if let Err(reason) = reader.add_interface(&block) {
                        self.stop_corrupt(offset, reason);
                        return None;
                    }
                    self.position = offset + block.total_len;
                    continue;
                }
                PCAPNG_SHB_TYPE => {
                    if let Err(reason) = reader.start_section(&block) {
                        self.stop_corrupt(offset, reason);
                        return None;
                    }
                    self.position = offset + block.total_len;
                    continue;
                }
                // Other block types (name resolution, statistics, custom, ...) are legal and
                // carry no packets.
                _ => {
                    self.position = offset + block.total_len;
                    continue;
                }
            };
            let packet = match packet {
                Ok(packet) => packet,
                Err(reason) => {
                    self.stop_corrupt(offset, reason);
                    return None;
                }
            };
            self.position = offset + block.total_len;
            let Some(interface) = reader.interfaces.get(packet.interface as usize).copied() else {
                self.warnings.count_unknown_interface(offset as u64);
                continue;
            };
            let ts_ns = match packet.timestamp {
                Some(ticks) => interface.ts_ns(ticks),
                None => reader.last_ts_ns,
            };
            reader.last_ts_ns = ts_ns;
            let mut data = packet.data;
            if packet.captured_len_from_snaplen && interface.snaplen != 0 {
                // Simple Packet Blocks store min(original length, snaplen) bytes plus padding.
                let stored = (packet.orig_len.min(interface.snaplen) as usize).min(data.len());
                data = data.get(..stored).unwrap_or(data);
            }
            let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
            let wire_len = self.checked_wire_len(packet.orig_len, caplen, offset);
            return Some(Frame {
                ts_ns,
                linktype: interface.linktype,
                data,
                wire_len,
                interface: packet.interface,
                pkttype: None,
                vlan_tci: None,
                vlan_tpid: None,
            });
        }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    #[inline]
    fn next(&mut self) -> Option<Frame<'a>> {
        if self.finished {
            return None;
        }
        match self.reader {
            Reader::Pcap(_) => self.next_pcap(),
            Reader::PcapNg(_) => self.next_pcapng(),
        }
    }
}

impl FusedIterator for Frames<'_> {}

impl PcapNgReader {
    /// Applies a Section Header Block: byte order, and a fresh interface list.
    fn start_section(&mut self, block: &Block<'_>) -> Result<(), &'static str> {
        if block.block_type != PCAPNG_SHB_TYPE {
            return Err("pcapng file does not start with a section header block");
        }
        // Block::new_checked has already chosen the byte order from the byte-order magic.
        let Some(fields) = block.body.first_chunk::<16>() else {
            return Err("pcapng section header block too short");
        };
        if u16_at(fields, 4, block.big_endian) != 1 {
            return Err("unsupported pcapng major version");
        }
        self.big_endian = block.big_endian;
        self.interfaces.clear();
        Ok(())
    }

    fn add_interface(&mut self, block: &Block<'_>) -> Result<(), &'static str> {
        let big_endian = block.big_endian;
        let Some(fields) = block.body.first_chunk::<8>() else {
            return Err("pcapng interface description block too short");
        };
        if self.interfaces.len() >= PCAPNG_MAX_INTERFACES {
            return Ok(());
        }
        let mut interface = Interface {
            linktype: u32::from(u16_at(fields, 0, big_endian)),
            snaplen: u32_at(fields, 4, big_endian),
            scale: TimestampScale::from_tsresol(6),
            offset_ns: 0,
        };
        let mut options = block.body.get(8..).unwrap_or_default();
        // A malformed option list ends option parsing but keeps the interface: the options
        // only refine timestamps.
        while let Some(option_header) = options.first_chunk::<4>() {
            let code = u16_at(option_header, 0, big_endian);
            let len = usize::from(u16_at(option_header, 2, big_endian));
            let Some(value) = options.get(4..4 + len) else {
                break;
            };
            match code {
                PCAPNG_OPT_END => break,
                PCAPNG_OPT_IF_TSRESOL => {
                    if let Some(&tsresol) = value.first() {
                        interface.scale = TimestampScale::from_tsresol(tsresol);
                    }
                }
                PCAPNG_OPT_IF_TSOFFSET => {
                    if let Some(&raw) = value.first_chunk::<8>() {
                        let seconds = if big_endian {
                            i64::from_be_bytes(raw)
                        } else {
                            i64::from_le_bytes(raw)
                        };
                        interface.offset_ns = i128::from(seconds) * i128::from(NANOS_PER_SECOND);
                    }
                }
                _ => {}
            }
            let padded = (4 + len).next_multiple_of(4);
            options = options.get(padded..).unwrap_or_default();
        }
        self.interfaces.push(interface);
        Ok(())
    }
}

impl Interface {
    #[inline]
    fn ts_ns(&self, ticks: u64) -> i64 {
        let ns = i128::try_from(self.scale.to_ns(ticks)).unwrap_or(i128::MAX);
        let ns = ns.saturating_add(self.offset_ns);
        i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
    }
}

/// How pcapng timestamp units become nanoseconds, chosen once per interface so the per-packet
/// conversion is a multiplication, a 64-bit division or a shift, never a 128-bit division.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimestampScale {
    /// Units of 10^-n s with n <= 9: multiply by 10^(9-n).
    Multiply(u64),
    /// Units of 10^-n s with 9 < n <= 28: divide by 10^(n-9).
    Divide(u64),
    /// Units of 2^-n s: ns = ticks * 10^9 / 2^n.
    BinaryShift(u32),
    /// Units so small that any 64-bit tick count is below one nanosecond.
    Zero,
}

impl TimestampScale {
    fn from_tsresol(tsresol: u8) -> Self {
        let exponent = u32::from(tsresol & 0x7f);
        if tsresol & 0x80 != 0 {
            return Self::BinaryShift(exponent);
        }
        if exponent <= 9 {
            Self::Multiply(10u64.pow(9 - exponent))
        } else {
            match 10u64.checked_pow(exponent - 9) {
                Some(divisor) => Self::Divide(divisor),
                None => Self::Zero,
            }
        }
    }

    /// At most 2^64 * 10^9 < 2^94.
    #[inline]
    fn to_ns(self, ticks: u64) -> u128 {
        match self {
            Self::Multiply(factor) => u128::from(ticks) * u128::from(factor),
            Self::Divide(divisor) => u128::from(ticks.checked_div(divisor).unwrap_or(0)),
            Self::BinaryShift(exponent) => (u128::from(ticks) * u128::from(NANOS_PER_SECOND))
                .checked_shr(exponent)
                .unwrap_or(0),
            Self::Zero => 0,
        }
    }
}

/// A pcapng block whose envelope (type, lengths, trailer) has been validated.
struct Block<'a> {
    block_type: u32,
    big_endian: bool,
    total_len: usize,
    /// Bytes between the block length and the trailing block length.
    body: &'a [u8],
}

enum BlockError {
    Truncated,
    Corrupt(&'static str),
}

/// A packet carried by an EPB, SPB or obsolete PB, before interface lookup.
struct PacketRecord<'a> {
    interface: u32,
    /// Raw timestamp units; `None` for Simple Packet Blocks.
    timestamp: Option<u64>,
    orig_len: u32,
    data: &'a [u8],
    /// Simple Packet Blocks do not store a captured length.
    captured_len_from_snaplen: bool,
}

impl<'a> Block<'a> {
    /// Validates the block at `offset`. `big_endian` is the current section's byte order; a
    /// Section Header Block sets its own from its byte-order magic.
    #[inline]
    fn new_checked(bytes: &'a [u8], offset: usize, big_endian: bool) -> Result<Self, BlockError> {
        let rest = bytes.get(offset..).ok_or(BlockError::Truncated)?;
        let header = rest.first_chunk::<8>().ok_or(BlockError::Truncated)?;
        // The SHB type reads the same in both byte orders.
        let block_type = u32_at(header, 0, big_endian);
        let mut big_endian = big_endian;
        if block_type == PCAPNG_SHB_TYPE {
            let shb_start = rest.first_chunk::<12>().ok_or(BlockError::Truncated)?;
            big_endian = match u32_at(shb_start, 8, false) {
                PCAPNG_BYTE_ORDER_MAGIC => false,
                magic if magic.swap_bytes() == PCAPNG_BYTE_ORDER_MAGIC => true,
                _ => {
                    return Err(BlockError::Corrupt(
                        "bad byte-order magic in pcapng section header",
                    ));
                }
            };
        }
        let total_len = u32_at(header, 4, big_endian) as usize;
        if total_len < PCAPNG_BLOCK_OVERHEAD {
            return Err(BlockError::Corrupt("pcapng block length below 12"));
        }
        if !total_len.is_multiple_of(4) {
            return Err(BlockError::Corrupt(
                "pcapng block length not a multiple of 4",
            ));
        }
        let block = rest.get(..total_len).ok_or(BlockError::Truncated)?;
        let (envelope, trailer) = block
            .split_at_checked(total_len - 4)
            .ok_or(BlockError::Truncated)?;
        let trailer_len = trailer
            .first_chunk::<4>()
            .map_or(0, |t| u32_at(t, 0, big_endian));
        if trailer_len as usize != total_len {
            return Err(BlockError::Corrupt(
                "pcapng trailing block length does not match",
            ));
        }
        Ok(Self {
            block_type,
            big_endian,
            total_len,
            body: envelope.get(8..).unwrap_or_default(),
        })
    }

    #[inline]
    fn enhanced_packet(&self) -> Result<PacketRecord<'a>, &'static str> {
        let fields = self
            .body
            .first_chunk::<20>()
            .ok_or("enhanced packet block too short")?;
        let big_endian = self.big_endian;
        let caplen = u32_at(fields, 12, big_endian) as usize;
        let data = self
            .body
            .get(20..)
            .and_then(|rest| rest.get(..caplen))
            .ok_or("enhanced packet block captured length runs past the block")?;
        Ok(PacketRecord {
            interface: u32_at(fields, 0, big_endian),
            timestamp: Some(timestamp_ticks(fields, 4, big_endian)),
            orig_len: u32_at(fields, 16, big_endian),
            data,
            captured_len_from_snaplen: false,
        })
    }

    fn simple_packet(&self) -> Result<PacketRecord<'a>, &'static str> {
        let fields = self
            .body
            .first_chunk::<4>()
            .ok_or("simple packet block too short")?;
        let orig_len = u32_at(fields, 0, self.big_endian);
        let data = self.body.get(4..).unwrap_or_default();
        let data = data.get(..orig_len as usize).unwrap_or(data);
        Ok(PacketRecord {
            interface: 0,
            timestamp: None,
            orig_len,
            data,
            captured_len_from_snaplen: true,
        })
    }

    fn obsolete_packet(&self) -> Result<PacketRecord<'a>, &'static str> {
        let fields = self
            .body
            .first_chunk::<20>()
            .ok_or("packet block too short")?;
        let big_endian = self.big_endian;
        let caplen = u32_at(fields, 12, big_endian) as usize;
        let data = self
            .body
            .get(20..)
            .and_then(|rest| rest.get(..caplen))
            .ok_or("packet block captured length runs past the block")?;
        Ok(PacketRecord {
            interface: u32::from(u16_at(fields, 0, big_endian)),
            timestamp: Some(timestamp_ticks(fields, 4, big_endian)),
            orig_len: u32_at(fields, 16, big_endian),
            data,
            captured_len_from_snaplen: false,
        })
    }
}

/// pcapng timestamps are two 32-bit words, high word first, each in section byte order.
#[inline]
fn timestamp_ticks<const N: usize>(fields: &[u8; N], at: usize, big_endian: bool) -> u64 {
    let high = u64::from(u32_at(fields, at, big_endian));
    let low = u64::from(u32_at(fields, at + 4, big_endian));
    (high << 32) | low
}

/// Reads a u32 at a fixed offset of a fixed-size header. Callers pass constant offsets inside
/// the array, so after inlining the fallback disappears; it exists so that no path can panic.
#[inline(always)]
fn u32_at<const N: usize>(header: &[u8; N], at: usize, big_endian: bool) -> u32 {
    match header.get(at..).and_then(<[u8]>::first_chunk::<4>) {
        Some(&word) if big_endian => u32::from_be_bytes(word),
        Some(&word) => u32::from_le_bytes(word),
        None => 0,
    }
}

#[inline(always)]
fn u16_at<const N: usize>(header: &[u8; N], at: usize, big_endian: bool) -> u16 {
    match header.get(at..).and_then(<[u8]>::first_chunk::<2>) {
        Some(&word) if big_endian => u16::from_be_bytes(word),
        Some(&word) => u16::from_le_bytes(word),
        None => 0,
    }
}

/// Fixed-capacity warning list: one slot per kind, counters updated in place, no allocation.
struct WarningList {
    entries: [Warning; Warning::MAX_KINDS],
    len: usize,
}

impl Default for WarningList {
    fn default() -> Self {
        Self {
            entries: [Warning::Truncated { offset: 0 }; Warning::MAX_KINDS],
            len: 0,
        }
    }
}

impl WarningList {
    fn as_slice(&self) -> &[Warning] {
        self.entries.get(..self.len).unwrap_or_default()
    }

    fn push(&mut self, warning: Warning) {
        if let Some(slot) = self.entries.get_mut(self.len) {
            *slot = warning;
            self.len += 1;
        }
    }

    #[cold]
    fn count_unknown_interface(&mut self, offset: u64) {
        for entry in self.entries.iter_mut().take(self.len) {
            if let Warning::UnknownInterface { packets, .. } = entry {
                *packets = packets.saturating_add(1);
                return;
            }
        }
        self.push(Warning::UnknownInterface {
            packets: 1,
            first_offset: offset,
        });
    }

    #[cold]
    fn count_wire_len_below_captured(&mut self, offset: u64) {
        for entry in self.entries.iter_mut().take(self.len) {
            if let Warning::WireLenBelowCaptured { records, .. } = entry {
                *records = records.saturating_add(1);
                return;
            }
        }
        self.push(Warning::WireLenBelowCaptured {
            records: 1,
            first_offset: offset,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::writer::{PcapNgWriter, PcapOptions, PcapWriter};
    use super::*;
    use proptest::prelude::*;

    fn collect(bytes: &[u8]) -> (Vec<Frame<'_>>, Frames<'_>) {
        let mut frames = frames(bytes).expect("valid header");
        let collected: Vec<_> = frames.by_ref().collect();
        (collected, frames)
    }

    fn payload(index: usize) -> Vec<u8> {
        (0..(index * 37) % 200)
            .map(|i| (i * 7 + index) as u8)
            .collect()
    }

    /// Timestamps that exercise seconds, sub-microsecond digits and the ends of the pcap range.
    const TIMESTAMPS: [i64; 5] = [
        0,
        1_700_000_000_123_456_789,
        1_700_000_000_999_999_999,
        1_000_000_001,
        4_294_967_295_999_999_999,
    ];

    fn pcap_file(opts: PcapOptions) -> Vec<u8> {
        let mut writer = PcapWriter::with_options(Vec::new(), opts).expect("header");
        for (index, &ts) in TIMESTAMPS.iter().enumerate() {
            writer.write_frame(ts, &payload(index)).expect("frame");
        }
        writer
            .write_frame_with_wire_len(5_000_000_000, &payload(3), 1514)
            .expect("frame");
        writer.into_inner()
    }

    #[test]
    fn pcap_round_trip_all_variants() {
        for nanosecond in [false, true] {
            for big_endian in [false, true] {
                let opts = PcapOptions {
                    linktype: 113,
                    nanosecond,
                    big_endian,
                    snaplen: 65_535,
                };
                let bytes = pcap_file(opts);
                let (got, frames) = collect(&bytes);
                assert_eq!(
                    frames.format(),
                    FileFormat::Pcap {
                        nanosecond,
                        big_endian
                    }
                );
                assert_eq!(got.len(), TIMESTAMPS.len() + 1);
                for (index, (frame, &ts)) in got.iter().zip(&TIMESTAMPS).enumerate() {
                    let expected_ts = if nanosecond { ts } else { ts - ts % 1_000 };
                    assert_eq!(frame.ts_ns, expected_ts, "ns={nanosecond} be={big_endian}");
                    assert_eq!(frame.linktype, 113);
                    assert_eq!(frame.data, payload(index).as_slice());
                    assert_eq!(frame.wire_len as usize, payload(index).len());
                    assert_eq!(frame.interface, 0);
                }
                let cut = got.last().expect("frame");
                assert_eq!((cut.ts_ns, cut.wire_len), (5_000_000_000, 1514));
                assert_eq!(cut.data, payload(3).as_slice());
                assert_eq!(frames.truncated_at(), None);
                assert!(frames.warnings().is_empty());
                assert_eq!(frames.position(), bytes.len());
            }
        }
    }

    #[test]
    fn pcap_frames_borrow_the_input_buffer() {
        let bytes = pcap_file(PcapOptions::new(1));
        let (got, _) = collect(&bytes);
        let range = bytes.as_ptr_range();
        for frame in got.iter().filter(|f| !f.data.is_empty()) {
            assert!(range.contains(&frame.data.as_ptr()));
        }
    }

    #[test]
    fn pcap_linktype_fcs_bits_are_masked() {
        let mut bytes = pcap_file(PcapOptions::new(1));
        // F bit and an FCS length of 4 bytes (in units of 16 bits: 2) in bits 28..32.
        bytes[20..24].copy_from_slice(&(1u32 | 0x1000_0000 | (2 << 29)).to_le_bytes());
        let (got, _) = collect(&bytes);
        assert!(got.iter().all(|f| f.linktype == 1));
    }

    #[test]
    fn pcap_hand_built_record_header() {
        // Big-endian nanosecond file, linktype 101, one record: 3 s + 7 ns, 4 of 60 bytes.
        let mut bytes = vec![0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4];
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&[0, 0, 0xff, 0xff, 0, 0, 0, 101]);
        bytes.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 7, 0, 0, 0, 4, 0, 0, 0, 60]);
        bytes.extend_from_slice(&[0x45, 0, 0, 60]);
        let (got, frames) = collect(&bytes);
        assert_eq!(
            got,
            vec![Frame {
                ts_ns: 3_000_000_007,
                linktype: 101,
                data: &[0x45, 0, 0, 60],
                wire_len: 60,
                interface: 0,
                pkttype: None,
                vlan_tci: None,
                vlan_tpid: None,
            }]
        );
        assert!(frames.warnings().is_empty());
    }

    #[test]
    fn wire_len_below_captured_is_raised_and_counted() {
        let mut writer = PcapWriter::new(Vec::new(), 1).expect("header");
        writer
            .write_frame_with_wire_len(0, &[1; 10], 4)
            .expect("frame");
        writer.write_frame(0, &[2; 10]).expect("frame");
        writer
            .write_frame_with_wire_len(0, &[3; 10], 0)
            .expect("frame");
        let bytes = writer.into_inner();
        let (got, frames) = collect(&bytes);
        assert_eq!(
            got.iter().map(|f| f.wire_len).collect::<Vec<_>>(),
            [10, 10, 10]
        );
        assert_eq!(
            frames.warnings(),
            [Warning::WireLenBelowCaptured {
                records: 2,
                first_offset: 24
            }]
        );
    }

    #[test]
    fn pcap_corrupt_caplen_stops_with_offset() {
        let mut writer = PcapWriter::new(Vec::new(), 1).expect("header");
        writer.write_frame(1_000, &[1; 20]).expect("frame");
        let mut bytes = writer.into_inner();
        let second = bytes.len();
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&(300_000u32).to_le_bytes());
        bytes.extend_from_slice(&(300_000u32).to_le_bytes());
        bytes.extend_from_slice(&[0; 64]);
        let (got, frames) = collect(&bytes);
        assert_eq!(got.len(), 1);
        assert_eq!(frames.truncated_at(), None);
        assert_eq!(frames.position(), second);
        assert!(matches!(
            frames.warnings(),
            [Warning::CorruptRecord { offset, .. }] if *offset == second as u64
        ));
    }

    #[test]
    fn pcap_caplen_above_small_snaplen_but_below_64k_is_accepted() {
        let opts = PcapOptions {
            snaplen: 96,
            ..PcapOptions::new(1)
        };
        let mut writer = PcapWriter::with_options(Vec::new(), opts).expect("header");
        writer.write_frame(0, &[9; 1500]).expect("frame");
        let bytes = writer.into_inner();
        let (got, frames) = collect(&bytes);
        assert_eq!(got.len(), 1);
        assert!(frames.warnings().is_empty());
    }

    /// Block in either byte order; `body` is padded here.
    fn block(big_endian: bool, block_type: u32, body: &[u8]) -> Vec<u8> {
        let word = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let padded = body.len().next_multiple_of(4);
        let total = (padded + 12) as u32;
        let mut out = Vec::new();
        out.extend_from_slice(&word(block_type));
        out.extend_from_slice(&word(total));
        out.extend_from_slice(body);
        out.resize(8 + padded, 0);
        out.extend_from_slice(&word(total));
        out
    }

    fn be_section_header() -> Vec<u8> {
        let mut body = vec![0x1a, 0x2b, 0x3c, 0x4d, 0, 1, 0, 0];
        body.extend_from_slice(&(-1i64).to_be_bytes());
        block(true, PCAPNG_SHB_TYPE, &body)
    }

    fn be_interface(linktype: u16, snaplen: u32, options: &[u8]) -> Vec<u8> {
        let mut body = linktype.to_be_bytes().to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&snaplen.to_be_bytes());
        body.extend_from_slice(options);
        block(true, PCAPNG_IDB, &body)
    }

    fn be_enhanced_packet(interface: u32, ticks: u64, data: &[u8], orig_len: u32) -> Vec<u8> {
        let mut body = interface.to_be_bytes().to_vec();
        body.extend_from_slice(&((ticks >> 32) as u32).to_be_bytes());
        body.extend_from_slice(&(ticks as u32).to_be_bytes());
        body.extend_from_slice(&(data.len() as u32).to_be_bytes());
        body.extend_from_slice(&orig_len.to_be_bytes());
        body.extend_from_slice(data);
        block(true, PCAPNG_EPB, &body)
    }

    /// ns → 2^-n units → ns, both rounding down, computed independently of the reader.
    fn binary_round_trip(ns: i64, exponent: u32) -> i64 {
        let ticks = (ns as u128) << exponent;
        let ticks = ticks / 1_000_000_000;
        ((ticks * 1_000_000_000) >> exponent) as i64
    }

    #[test]
    fn pcapng_round_trip_interfaces_and_byte_orders() {
        let mut writer = PcapNgWriter::new(Vec::new()).expect("shb");
        let eth = writer.add_interface(1, 6).expect("idb");
        let raw = writer.add_interface(101, 9).expect("idb");
        let sll2 = writer.add_interface(276, 0x80 | 20).expect("idb");
        assert_eq!((eth, raw, sll2), (0, 1, 2));
        let ts = 1_700_000_000_123_456_789;
        writer.write_frame(raw, ts, &[0x45, 1, 2]).expect("epb");
        writer.write_frame(eth, ts + 1, &payload(5)).expect("epb");
        writer.write_frame(sll2, ts + 2, &[7; 5]).expect("epb");
        writer.write_frame(raw, ts + 3, &[]).expect("epb");
        let mut bytes = writer.into_inner();

        // Second section, big endian: a new interface list.
        let second_section = bytes.len();
        bytes.extend(be_section_header());
        // if_tsresol 3 (ms) and if_tsoffset 10 s, then opt_endofopt.
        let mut options = vec![0, 9, 0, 1, 3, 0, 0, 0, 0, 14, 0, 8];
        options.extend_from_slice(&10i64.to_be_bytes());
        options.extend_from_slice(&[0, 0, 0, 0]);
        bytes.extend(be_interface(113, 4, &options));
        bytes.extend(be_enhanced_packet(0, 1_234, &[1, 2, 3], 3));
        // Name resolution block: unknown to the reader, skipped silently.
        bytes.extend(block(true, 4, &[0, 0, 0, 0]));
        // Simple Packet Block: 6 bytes on the wire, interface snaplen 4.
        let mut simple = 6u32.to_be_bytes().to_vec();
        simple.extend_from_slice(&[9, 8, 7, 6, 5, 4]);
        bytes.extend(block(true, PCAPNG_SPB, &simple));
        // Obsolete Packet Block on interface 0: 2 s in ms units.
        let mut obsolete = vec![
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07, 0xd0, 0, 0, 0, 2, 0, 0, 0, 9,
        ];
        obsolete.extend_from_slice(&[0xaa, 0xbb]);
        bytes.extend(block(true, PCAPNG_OBSOLETE_PB, &obsolete));
        // Interface 1 was defined in the first section only.
        bytes.extend(be_enhanced_packet(1, 0, &[1], 1));

        let (got, frames) = collect(&bytes);
        assert_eq!(frames.format(), FileFormat::PcapNg);
        let summary: Vec<_> = got
            .iter()
            .map(|f| (f.interface, f.linktype, f.ts_ns, f.data, f.wire_len))
            .collect();
        let eth_payload = payload(5);
        assert_eq!(
            summary,
            vec![
                (1, 101, ts, &[0x45u8, 1, 2][..], 3),
                (0, 1, (ts + 1) / 1_000 * 1_000, &eth_payload[..], 185),
                (2, 276, binary_round_trip(ts + 2, 20), &[7; 5][..], 5),
                (1, 101, ts + 3, &[][..], 0),
                (0, 113, 11_234_000_000, &[1, 2, 3][..], 3),
                (0, 113, 11_234_000_000, &[9, 8, 7, 6][..], 6),
                (0, 113, 12_000_000_000, &[0xaa, 0xbb][..], 9),
            ]
        );
        assert_eq!(
            frames.warnings(),
            [Warning::UnknownInterface {
                packets: 1,
                first_offset: (bytes.len() - 36) as u64
            }]
        );
        assert_eq!(frames.truncated_at(), None);
        assert_eq!(frames.position(), bytes.len());
        assert!(second_section > 0);
    }

    #[test]
    fn pcapng_binary_resolution_hand_vector() {
        // 2^-10 s units: 1536 ticks = 1.5 s; 1 tick = 976562.5 ns, rounded down.
        let scale = TimestampScale::from_tsresol(0x80 | 10);
        assert_eq!(scale.to_ns(1536), 1_500_000_000);
        assert_eq!(scale.to_ns(1), 976_562);
        assert_eq!(TimestampScale::from_tsresol(6).to_ns(7), 7_000);
        assert_eq!(TimestampScale::from_tsresol(12).to_ns(123_456_789), 123_456);
        assert_eq!(TimestampScale::from_tsresol(0).to_ns(2), 2_000_000_000);
        assert_eq!(TimestampScale::from_tsresol(127).to_ns(u64::MAX), 0);
        assert_eq!(TimestampScale::from_tsresol(0xff).to_ns(u64::MAX), 0);
        // 2^64 - 1 seconds saturates to i64::MAX ns instead of overflowing.
        let interface = Interface {
            linktype: 1,
            snaplen: 0,
            scale: TimestampScale::from_tsresol(0),
            offset_ns: i128::from(i64::MIN) * 1_000_000_000,
        };
        assert_eq!(interface.ts_ns(0), i64::MIN);
        let interface = Interface {
            offset_ns: 0,
            ..interface
        };
        assert_eq!(interface.ts_ns(u64::MAX), i64::MAX);
    }

    #[test]
    fn pcapng_corrupt_blocks_stop_with_offset() {
        let mut writer = PcapNgWriter::new(Vec::new()).expect("shb");
        writer.add_interface(1, 9).expect("idb");
        writer.write_frame(0, 5, &[1, 2, 3, 4]).expect("epb");
        let good = writer.into_inner();
        let cases: [(&str, Vec<u8>); 4] = [
            ("not a multiple of 4", {
                let mut b = block(false, PCAPNG_EPB, &[0; 24]);
                b[4] = 37;
                b
            }),
            ("below 12", {
                let mut b = block(false, PCAPNG_EPB, &[0; 24]);
                b[4] = 8;
                b
            }),
            ("trailing", {
                let mut b = block(false, PCAPNG_EPB, &[0; 24]);
                let last = b.len() - 4;
                b[last] = 0;
                b
            }),
            ("captured length runs past", {
                let mut body = vec![0; 20];
                body[12] = 200;
                block(false, PCAPNG_EPB, &body)
            }),
        ];
        for (expected, bad) in cases {
            let mut bytes = good.clone();
            bytes.extend_from_slice(&bad);
            bytes.extend_from_slice(&block(false, 4, &[]));
            let (got, frames) = collect(&bytes);
            assert_eq!(got.len(), 1, "{expected}");
            assert_eq!(frames.truncated_at(), None);
            match frames.warnings() {
                [Warning::CorruptRecord { offset, reason }] => {
                    assert_eq!(*offset, good.len() as u64);
                    assert!(reason.contains(expected), "{reason} / {expected}");
                }
                other => panic!("{expected}: {other:?}"),
            }
        }
    }

    fn assert_truncation_at_every_offset(bytes: &[u8], last_record: usize, frames_before: usize) {
        let full = collect(bytes).0.len();
        assert_eq!(full, frames_before + 1);
        for cut in last_record + 1..bytes.len() {
            let cut_bytes = &bytes[..cut];
            let (got, frames) = collect(cut_bytes);
            assert_eq!(got.len(), frames_before, "cut at {cut}");
            assert_eq!(
                frames.truncated_at(),
                Some(last_record as u64),
                "cut at {cut}"
            );
            assert_eq!(
                frames.warnings(),
                [Warning::Truncated {
                    offset: last_record as u64
                }]
            );
        }
        // Cutting exactly at the record boundary is a complete file.
        let (got, frames) = collect(&bytes[..last_record]);
        assert_eq!((got.len(), frames.truncated_at()), (frames_before, None));
    }

    #[test]
    fn pcap_cut_inside_last_record() {
        let mut writer = PcapWriter::new(Vec::new(), 1).expect("header");
        writer.write_frame(1, &[1; 30]).expect("frame");
        writer.write_frame(2, &[2; 40]).expect("frame");
        let last = 24 + 16 + 30 + 16 + 40;
        writer.write_frame(3, &[3; 50]).expect("frame");
        let bytes = writer.into_inner();
        assert_truncation_at_every_offset(&bytes, last, 2);
    }

    #[test]
    fn pcapng_cut_inside_last_record() {
        let mut writer = PcapNgWriter::new(Vec::new()).expect("shb");
        writer.add_interface(1, 9).expect("idb");
        writer.write_frame(0, 1, &[1; 30]).expect("epb");
        let last = writer.into_inner().len();
        let mut writer = PcapNgWriter::new(Vec::new()).expect("shb");
        writer.add_interface(1, 9).expect("idb");
        writer.write_frame(0, 1, &[1; 30]).expect("epb");
        writer.write_frame(0, 2, &[2; 41]).expect("epb");
        let bytes = writer.into_inner();
        assert_truncation_at_every_offset(&bytes, last, 1);
    }

    #[test]
    fn cut_inside_file_header_is_an_error() {
        let pcap = pcap_file(PcapOptions::new(1));
        for cut in 1..24 {
            let error = frames(&pcap[..cut]).err().expect("error");
            assert!(
                matches!(
                    error,
                    CaptureError::TooShort { .. } | CaptureError::BadHeader(_)
                ),
                "{cut}: {error}"
            );
        }
        let pcapng = PcapNgWriter::new(Vec::new()).expect("shb").into_inner();
        for cut in 1..pcapng.len() {
            let error = frames(&pcapng[..cut]).err().expect("error");
            assert!(
                matches!(
                    error,
                    CaptureError::TooShort { .. } | CaptureError::BadHeader(_)
                ),
                "{cut}: {error}"
            );
        }
        // A header and nothing else is a valid, empty capture.
        assert_eq!(frames(&pcap[..24]).expect("header").count(), 0);
        assert_eq!(frames(&pcapng).expect("header").count(), 0);
    }

    #[test]
    fn header_errors_have_clear_messages() {
        assert!(matches!(frames(&[]), Err(CaptureError::Empty)));
        let text = b"Hello, this is a text file.\n";
        let error = frames(text).err().expect("error");
        assert!(matches!(
            error,
            CaptureError::NotACapture { magic: 0x4865_6c6c }
        ));
        assert_eq!(
            error.to_string(),
            "not a pcap or pcapng file (starts with 0x48656c6c)"
        );
        assert_eq!(
            frames(b"ab").err().expect("error").to_string(),
            "not a pcap or pcapng file (2 bytes, too short for a file header)"
        );
        let mut pcap = pcap_file(PcapOptions::new(1));
        pcap[4] = 3;
        assert_eq!(
            frames(&pcap).err().expect("error").to_string(),
            "bad capture file header: unsupported pcap version"
        );
        let mut pcapng = PcapNgWriter::new(Vec::new()).expect("shb").into_inner();
        pcapng[8] = 0;
        assert!(matches!(frames(&pcapng), Err(CaptureError::BadHeader(_))));
    }

    #[test]
    fn capture_file_errors_for_empty_text_directory_and_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pcap");
        std::fs::write(&empty, b"").expect("write");
        let file = CaptureFile::open(&empty).expect("open");
        assert!(file.bytes().is_empty());
        assert!(matches!(file.frames(), Err(CaptureError::Empty)));

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, b"just some text\n").expect("write");
        let file = CaptureFile::open(&text).expect("open");
        assert!(matches!(
            file.frames(),
            Err(CaptureError::NotACapture { .. })
        ));

        match CaptureFile::open(dir.path()) {
            Err(CaptureError::IsDirectory { path }) => assert_eq!(path, dir.path()),
            other => panic!("{:?}", other.err()),
        }
        let missing = dir.path().join("missing.pcap");
        match CaptureFile::open(&missing) {
            Err(error @ CaptureError::Io { .. }) => {
                assert!(error.to_string().contains("No such file"), "{error}")
            }
            other => panic!("{:?}", other.err()),
        }

        let good = dir.path().join("good.pcap");
        std::fs::write(&good, pcap_file(PcapOptions::new(1))).expect("write");
        let file = CaptureFile::open(&good).expect("open");
        assert_eq!(file.path(), good);
        assert_eq!(file.frames().expect("frames").count(), TIMESTAMPS.len() + 1);
    }

    /// `../shared/samples` beside the repository (or $VOQA_SAMPLES_DIR).
    fn samples_dir() -> std::path::PathBuf {
        std::env::var_os("VOQA_SAMPLES_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/samples"))
    }

    /// Reads `"frames": N` from a truth file without a JSON parser.
    fn truth_frames(truth: &str) -> Option<usize> {
        let after = truth.split_once("\"frames\":")?.1.trim_start();
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }

    #[test]
    fn sample_captures_match_truth_frame_counts() {
        let dir = samples_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            assert!(
                std::env::var_os("VOQA_REQUIRE_SAMPLES").is_none(),
                "samples required at {}",
                dir.display()
            );
            println!("SKIPPED: {} not present", dir.display());
            return;
        };
        let mut checked = 0;
        for entry in entries {
            let path = entry.expect("dir entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let Some(stem) = name
                .strip_suffix(".pcap")
                .or_else(|| name.strip_suffix(".pcapng"))
            else {
                continue;
            };
            let truth = std::fs::read_to_string(path.with_file_name(format!("{stem}.truth.json")))
                .expect("truth file");
            let expected = truth_frames(&truth).expect("frames field");
            let file = CaptureFile::open(&path).expect("open");
            let mut frames = file.frames().expect("header");
            let got: Vec<_> = frames.by_ref().collect();
            assert_eq!(got.len(), expected, "{name}");
            assert_eq!(frames.truncated_at(), None, "{name}");
            assert!(
                frames.warnings().is_empty(),
                "{name}: {:?}",
                frames.warnings()
            );
            assert!(got.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns), "{name}");
            if stem == "k_pcapng_ns" {
                assert_eq!(frames.format(), FileFormat::PcapNg);
                assert!(truth.contains("\"timestamp_resolution_ns\": 1"));
                assert!(
                    got.iter().any(|f| f.ts_ns % 1_000 != 0),
                    "k_pcapng_ns should carry sub-microsecond timestamps"
                );
            }
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} samples found");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(mut frames) = frames(&bytes) {
                let count = frames.by_ref().count();
                prop_assert!(count <= bytes.len() / 12 + 1);
                prop_assert!(frames.position() <= bytes.len());
            }
        }

        #[test]
        fn arbitrary_records_after_pcap_header_never_panic(
            big_endian in any::<bool>(),
            nanosecond in any::<bool>(),
            tail in proptest::collection::vec(any::<u8>(), 0..1024),
        ) {
            let opts = PcapOptions { linktype: 1, nanosecond, big_endian, snaplen: 0 };
            let mut bytes = PcapWriter::with_options(Vec::new(), opts).expect("header").into_inner();
            bytes.extend_from_slice(&tail);
            let mut frames = frames(&bytes).expect("valid header");
            let count = frames.by_ref().count();
            prop_assert!(count <= tail.len() / 16 + 1);
            prop_assert!(frames.next().is_none());
            prop_assert!(frames.warnings().len() <= Warning::MAX_KINDS);
        }

        #[test]
        fn arbitrary_blocks_after_pcapng_header_never_panic(
            tail in proptest::collection::vec(any::<u8>(), 0..1024),
            blocks in proptest::collection::vec(
                (prop_oneof![Just(1u32), Just(2), Just(3), Just(6), Just(0x0a0d_0d0a), any::<u32>()],
                 proptest::collection::vec(any::<u8>(), 0..64)),
                0..8),
        ) {
            let mut writer = PcapNgWriter::new(Vec::new()).expect("shb");
            writer.add_interface(1, 9).expect("idb");
            let mut bytes = writer.into_inner();
            // Well-formed envelopes with arbitrary bodies reach the per-block parsers.
            for (block_type, body) in &blocks {
                bytes.extend(block(false, *block_type, body));
            }
            bytes.extend_from_slice(&tail);
            let mut frames = frames(&bytes).expect("valid header");
            let count = frames.by_ref().count();
            prop_assert!(count <= bytes.len() / 12);
            prop_assert!(frames.position() <= bytes.len());
        }

        #[test]
        fn pcap_round_trip_any_frames(
            records in proptest::collection::vec(
                (0i64..4_294_967_296_000_000_000, proptest::collection::vec(any::<u8>(), 0..100)),
                0..20),
            nanosecond in any::<bool>(),
            big_endian in any::<bool>(),
        ) {
            let opts = PcapOptions { linktype: 1, nanosecond, big_endian, snaplen: 65_535 };
            let mut writer = PcapWriter::with_options(Vec::new(), opts).expect("header");
            for (ts, data) in &records {
                writer.write_frame(*ts, data).expect("frame");
            }
            let bytes = writer.into_inner();
            let (got, _) = collect(&bytes);
            prop_assert_eq!(got.len(), records.len());
            for (frame, (ts, data)) in got.iter().zip(&records) {
                let expected = if nanosecond { *ts } else { ts - ts % 1_000 };
                prop_assert_eq!(frame.ts_ns, expected);
                prop_assert_eq!(frame.data, data.as_slice());
            }
        }

        #[test]
        fn pcapng_round_trip_any_resolution(
            tsresol in prop_oneof![0u8..=9, (0u8..=30).prop_map(|n| 0x80 | n)],
            ts in 0i64..4_000_000_000_000_000_000,
        ) {
            let mut writer = PcapNgWriter::new(Vec::new()).expect("shb");
            writer.add_interface(1, tsresol).expect("idb");
            writer.write_frame(0, ts, &[1, 2, 3]).expect("epb");
            let bytes = writer.into_inner();
            let (got, _) = collect(&bytes);
            prop_assert_eq!(got.len(), 1);
            let expected = if tsresol & 0x80 != 0 {
                binary_round_trip(ts, u32::from(tsresol & 0x7f))
            } else {
                let unit = 10i64.pow(9 - u32::from(tsresol));
                ts - ts % unit
            };
            prop_assert_eq!(got[0].ts_ns, expected);
        }
    }
}
