//! Capture files: pcap and pcapng read through one parser that hands out each frame as a slice
//! of the bytes it was given, never a copy.
//!
//! Two drivers feed that parser. [`frames`] walks bytes already in memory (tests, the fuzz
//! target, tools). [`CaptureReader`] streams a regular file, standard input or a gzip stream
//! through one reusable buffer ([`READ_BUFFER`] bytes, grown only to hold a single record,
//! never past [`MAX_RECORD`]): each frame borrows from that buffer until the next one is read.
//! A file that shrinks while it is read (log rotation in place) ends with
//! [`CaptureError::Shrank`]. The readers that share one read ([`CaptureInput::shard_reader`],
//! what `analyze` uses) get a plain regular file as memory-mapped windows instead of copies
//! (see [`super::mapped`], whose SIGBUS handler makes a shrinking mapped file end with the same
//! error instead of killing the process). [`CaptureInput::open`] refuses what cannot be a capture
//! (directories, devices, FIFOs, a terminal on standard input) before reading a byte of it.
//!
//! The parser never allocates per frame and never panics, whatever the input. A record cut
//! short ends iteration and is reported through `truncated_at` and one [`Warning`]; a corrupt
//! record header ends iteration with a [`Warning`]. This module does not decode packets and
//! does not print; callers decide what to tell the user.

use std::fmt;
use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::iter::FusedIterator;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;

pub use super::frame::Frame;
use super::mapped::Window;

/// Bytes read from the input per `read` call: large enough that system calls cost nothing per
/// frame (one per ~1,100 G.711 frames), small enough that the bytes just copied in are still in
/// the core's L2 cache when the parser and the analysis walk them. Measured on a 460 MB capture
/// (parse only): 64 KiB to 1 MiB alike, 4 MiB and more up to 1.5x slower.
pub const READ_BUFFER: usize = 256 << 10;

/// The largest record accepted (a pcapng block, envelope included). pcap records are bounded
/// far lower by [`PCAP_MAX_CAPLEN`]; a longer length field is refused as corrupt instead of
/// being buffered, so a hostile length cannot make the reader allocate.
pub const MAX_RECORD: usize = 16 << 20;

/// The path that names standard input.
pub const STDIN_PATH: &str = "-";

/// Container format detected from the file's magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Pcap { nanosecond: bool, big_endian: bool },
    PcapNg,
}

/// Why a capture could not be opened or read. Messages are written to follow "PATH: " on one
/// line, so they do not repeat the path. A cause (an `io::Error`) is part of the message and
/// deliberately not also a `source()`: printed with its chain, each reason appears once.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The system refused to open or read it (the message is the system's).
    #[error("{error}")]
    Io { error: io::Error },
    #[error("is a directory, not a capture file")]
    IsDirectory,
    /// A device, FIFO or socket named as a file: reading it would never end or block.
    #[error("is a {kind}, not a capture file{hint}")]
    NotAFile {
        kind: &'static str,
        hint: &'static str,
    },
    #[error(
        "standard input is a terminal, not a capture: pipe one in (`tcpdump -w - ... | voqa-agent analyze -`)"
    )]
    StdinIsTerminal,
    #[error("standard input can be read only once")]
    StdinReadTwice,
    /// The error of the thread that reads an input for several readers.
    #[error(transparent)]
    Shared(Arc<CaptureError>),
    /// The path names another file than the one checked when the inputs were opened.
    #[error("was replaced by another file since it was opened")]
    Replaced,
    /// Standard input redirected from a device or a directory.
    #[error("standard input is a {kind}, not a capture")]
    StdinNotACapture { kind: &'static str },
    #[error("empty file")]
    Empty,
    #[error("not a pcap or pcapng file ({len} bytes, too short for a file header)")]
    TooShort { len: usize },
    /// `magic` is the first four bytes of the file read big-endian, i.e. in file order.
    #[error("not a pcap or pcapng file (starts with 0x{magic:08x})")]
    NotACapture { magic: u32 },
    /// Compressed with something other than gzip (gzip is decompressed while reading).
    #[error("{0}-compressed: decompress it first (only gzip is read directly)")]
    Compressed(&'static str),
    #[error("bad capture file header: {0}")]
    BadHeader(&'static str),
    /// The gzip layer failed (corrupt deflate data, bad trailer checksum).
    #[error("gzip-compressed data is corrupt: {error}")]
    Gzip { error: io::Error },
    /// A regular file got shorter than it was when opened, before the reader reached its end.
    #[error(
        "the file shrank from {opened} to {now} bytes while being read (truncated or rotated in place); stopped at byte {read}"
    )]
    Shrank { opened: u64, now: u64, read: u64 },
}

impl From<io::Error> for CaptureError {
    fn from(error: io::Error) -> Self {
        CaptureError::Io { error }
    }
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
    /// Number of distinct warning kinds, hence the most entries a warning list holds.
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

// ---------------------------------------------------------------------------------------------
// Opening: what may be read, and how.
// ---------------------------------------------------------------------------------------------

/// A capture input that passed its checks: a regular file or standard input (a pipe or a
/// redirected file, read once). Opening reads and validates the file header.
///
/// A regular file holds neither a descriptor nor a buffer between the check and the reading:
/// `analyze` checks every input before it starts, and thousands of rotated capture files must
/// not hold thousands of descriptors (the usual limit is 1,024) or read buffers. Each
/// [`CaptureInput::reader`] opens the file again and makes sure it is still the file that was
/// checked (same device and inode), so several readers can walk it independently (one per
/// analysis thread).
pub struct CaptureInput {
    path: PathBuf,
    kind: InputKind,
    gzip: bool,
    /// Standard input: the reader that validated the header, for the one `reader` call.
    first: Mutex<Option<CaptureReader>>,
    /// Readers sharing one read of the input, made by the first [`CaptureInput::shard_reader`]
    /// call and taken one by one.
    shards: Mutex<Vec<Option<CaptureReader>>>,
}

enum InputKind {
    /// A regular file: its size, device and inode when checked.
    File {
        len: u64,
        dev: u64,
        ino: u64,
    },
    Stdin,
}

impl CaptureInput {
    /// Checks and opens `path` (`-`: standard input), detects gzip by its magic bytes and
    /// validates the capture header. Nothing but a regular file (or a pipe or file on standard
    /// input) is opened: a device, directory or FIFO is refused from its `stat`, before `open`
    /// (which blocks on a FIFO), and the opened descriptor is checked again with `fstat` in
    /// case the path was replaced in between.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        if path.as_os_str() == STDIN_PATH {
            let (reader, gzip) =
                CaptureReader::start(Raw::stream(Box::new(open_stdin()?)), None, READ_BUFFER)?;
            return Ok(Self {
                path: path.to_path_buf(),
                kind: InputKind::Stdin,
                gzip,
                first: Mutex::new(Some(reader)),
                shards: Mutex::new(Vec::new()),
            });
        }
        check_file_type(&std::fs::metadata(path)?.file_type())?;
        let (file, metadata) = open_regular(path)?;
        let kind = InputKind::File {
            len: metadata.len(),
            dev: metadata.dev(),
            ino: metadata.ino(),
        };
        let raw = Raw::At {
            file,
            pos: 0,
            opened: metadata.len(),
        };
        // The header is checked now; the reader (its buffer and descriptor) is dropped.
        let (_, gzip) = CaptureReader::start(raw, None, HEADER_BUFFER)?;
        Ok(Self {
            path: path.to_path_buf(),
            kind,
            gzip,
            first: Mutex::new(None),
            shards: Mutex::new(Vec::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_stdin(&self) -> bool {
        matches!(self.kind, InputKind::Stdin)
    }

    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Size of the file when checked (`None` for standard input); compressed size for gzip.
    pub fn len(&self) -> Option<u64> {
        match self.kind {
            InputKind::File { len, .. } => Some(len),
            InputKind::Stdin => None,
        }
    }

    /// True for a regular file that was empty when checked.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// A reader positioned at the first record. Files can be read any number of times;
    /// standard input only once.
    pub fn reader(&self) -> Result<CaptureReader, CaptureError> {
        self.reader_with_buffer(None)
    }

    /// [`CaptureInput::reader`] reading into `buffer` (the buffer of a finished reader, from
    /// [`CaptureReader::into_buffer`]), so that going from one file to the next allocates
    /// nothing.
    pub fn reader_with_buffer(
        &self,
        buffer: Option<Vec<u8>>,
    ) -> Result<CaptureReader, CaptureError> {
        let InputKind::File { len, dev, ino } = self.kind else {
            let first = self.first.lock().map(|mut f| f.take()).unwrap_or(None);
            return first.ok_or(CaptureError::StdinReadTwice);
        };
        let (file, metadata) = open_regular(&self.path)?;
        if (metadata.dev(), metadata.ino()) != (dev, ino) {
            return Err(CaptureError::Replaced);
        }
        let raw = Raw::At {
            file,
            pos: 0,
            opened: len,
        };
        CaptureReader::start_with(raw, Some(self.gzip), buffer, READ_BUFFER)
            .map(|(reader, _)| reader)
    }

    /// Reader `index` of `count` readers that share one read of this input (and one gzip
    /// decompression): `analyze --threads N`, whose shards all read every frame. The first call
    /// starts a thread that reads the input into chunks of [`READ_BUFFER`] bytes; each reader
    /// parses the chunks in place, so the input is copied out of the kernel once in all, by that
    /// thread, whatever the number of readers. Standard input can be shared too. The thread
    /// stays at most a few chunks ahead of the slowest reader: every one of the `count` readers
    /// must be taken and read to its end, or dropped (a reader that fails drops its feed; the
    /// errors of the input itself reach every reader alike).
    pub fn shard_reader(&self, index: usize, count: usize) -> Result<CaptureReader, CaptureError> {
        let mut shards = self
            .shards
            .lock()
            .map_err(|_| CaptureError::StdinReadTwice)?;
        if shards.is_empty() {
            *shards = self
                .shared_readers(count.max(1), READ_BUFFER, MAP_WINDOW)?
                .into_iter()
                .map(Some)
                .collect();
        }
        shards
            .get_mut(index)
            .and_then(Option::take)
            .ok_or(CaptureError::StdinReadTwice)
    }

    /// `count` readers over one reading thread, with chunks of `chunk_len` bytes (a plain file:
    /// mapped windows of `window_len` bytes rounded up to whole pages).
    fn shared_readers(
        &self,
        count: usize,
        chunk_len: usize,
        window_len: usize,
    ) -> Result<Vec<CaptureReader>, CaptureError> {
        let (source, prefix) = match self.kind {
            InputKind::File { len, dev, ino } => {
                let (file, metadata) = open_regular(&self.path)?;
                if (metadata.dev(), metadata.ino()) != (dev, ino) {
                    return Err(CaptureError::Replaced);
                }
                let raw = Raw::At {
                    file,
                    pos: 0,
                    opened: len,
                };
                let source = if self.gzip {
                    ByteSource::Gzip(Box::new(MultiGzDecoder::new(raw)))
                } else {
                    ByteSource::Plain(raw)
                };
                (source, Vec::new())
            }
            InputKind::Stdin => {
                let first = self.first.lock().map(|mut f| f.take()).unwrap_or(None);
                let reader = first.ok_or(CaptureError::StdinReadTwice)?;
                // The reader that checked the header read the stream's first bytes into its
                // buffer (from offset 0: nothing was consumed or moved yet); they go first.
                let prefix = reader.buf.get(..reader.end).unwrap_or_default().to_vec();
                (reader.source, prefix)
            }
        };
        share(source, prefix, count, chunk_len, window_len)
    }
}

/// The buffer of the reader that only checks a header when a file is opened (a pcapng section
/// header longer than this makes it grow, like any record).
const HEADER_BUFFER: usize = 4096;

/// Opens `path` for reading without blocking and checks, on the descriptor, that it is a
/// regular file. O_NONBLOCK: if the path became a FIFO since it was checked, `open` must not
/// wait for a writer (the `fstat` then refuses it); it changes nothing for regular files.
fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata), CaptureError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let metadata = file.metadata()?;
    check_file_type(&metadata.file_type())?;
    Ok((file, metadata))
}

/// Refuses anything but a regular file by name: reading a device never ends (`/dev/zero`) or
/// never starts (a terminal, a FIFO without a writer).
fn check_file_type(file_type: &std::fs::FileType) -> Result<(), CaptureError> {
    let (kind, hint) = if file_type.is_file() {
        return Ok(());
    } else if file_type.is_dir() {
        return Err(CaptureError::IsDirectory);
    } else if file_type.is_fifo() {
        (
            "FIFO (named pipe)",
            ": to analyse a stream, pipe it into `voqa-agent analyze -`",
        )
    } else if file_type.is_char_device() {
        ("character device", "")
    } else if file_type.is_block_device() {
        ("block device", "")
    } else if file_type.is_socket() {
        ("socket", "")
    } else {
        ("special file", "")
    };
    Err(CaptureError::NotAFile { kind, hint })
}

/// Standard input as an owned descriptor, checked: a pipe, socket or regular file is fine; a
/// terminal or another device is refused (reading it would wait for typing or never end).
fn open_stdin() -> Result<File, CaptureError> {
    use std::os::fd::AsFd;
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return Err(CaptureError::StdinIsTerminal);
    }
    let file = File::from(stdin.as_fd().try_clone_to_owned()?);
    let file_type = file.metadata()?.file_type();
    let kind = if file_type.is_char_device() {
        "character device"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_dir() {
        "directory"
    } else {
        return Ok(file);
    };
    Err(CaptureError::StdinNotACapture { kind })
}

/// The raw bytes under the parser (before gzip): a regular file read with positioned reads, or
/// a stream whose first bytes were already read to look at the magic number.
enum Raw {
    At {
        file: File,
        pos: u64,
        /// Size when opened: reading ends short of it only if the file shrank.
        opened: u64,
    },
    Stream {
        read: Box<dyn Read + Send>,
        /// Bytes read to detect gzip, handed out again before the stream's own.
        prefix: [u8; 2],
        prefix_len: usize,
        prefix_pos: usize,
        pos: u64,
    },
}

impl Raw {
    fn stream(read: Box<dyn Read + Send>) -> Self {
        Raw::Stream {
            read,
            prefix: [0; 2],
            prefix_len: 0,
            prefix_pos: 0,
            pos: 0,
        }
    }

    fn position(&self) -> u64 {
        match self {
            Raw::At { pos, .. } | Raw::Stream { pos, .. } => *pos,
        }
    }

    /// Reads the first two bytes to see whether the input is gzip; they are handed out again.
    fn sniff_gzip(&mut self) -> Result<bool, CaptureError> {
        let mut magic = [0u8; 2];
        let mut got = 0;
        while let Some(rest) = magic.get_mut(got..).filter(|r| !r.is_empty()) {
            let n = match self {
                Raw::At { file, .. } => file.read_at(rest, got as u64),
                Raw::Stream { read, .. } => read.read(rest),
            };
            match n {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(CaptureError::Io { error }),
            }
        }
        if let Raw::Stream {
            prefix, prefix_len, ..
        } = self
        {
            *prefix = magic;
            *prefix_len = got;
        }
        Ok(got == 2 && magic == GZIP_MAGIC)
    }

    /// The [`CaptureError::Shrank`] error when this is a regular file that is now shorter
    /// than when it was opened, and reading stopped before the opened size.
    fn shrank(&self) -> Option<CaptureError> {
        let Raw::At { file, pos, opened } = self else {
            return None;
        };
        let now = file.metadata().ok()?.len();
        (now < *opened && *pos < *opened).then_some(CaptureError::Shrank {
            opened: *opened,
            now,
            read: *pos,
        })
    }
}

impl Read for Raw {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Raw::At { file, pos, .. } => {
                let n = file.read_at(out, *pos)?;
                *pos += n as u64;
                Ok(n)
            }
            Raw::Stream {
                read,
                prefix,
                prefix_len,
                prefix_pos,
                pos,
            } => {
                let pending = prefix.get(*prefix_pos..*prefix_len).unwrap_or_default();
                let n = if pending.is_empty() {
                    read.read(out)?
                } else {
                    let n = pending.len().min(out.len());
                    if let (Some(dst), Some(src)) = (out.get_mut(..n), pending.get(..n)) {
                        dst.copy_from_slice(src);
                    }
                    *prefix_pos += n;
                    n
                };
                *pos += n as u64;
                Ok(n)
            }
        }
    }
}

/// Where the parser's bytes come from.
enum ByteSource {
    Plain(Raw),
    Gzip(Box<MultiGzDecoder<Raw>>),
}

impl ByteSource {
    fn raw(&self) -> &Raw {
        match self {
            ByteSource::Plain(raw) => raw,
            ByteSource::Gzip(decoder) => decoder.get_ref(),
        }
    }

    /// One `read`, retried on EINTR; 0 at the end of the input. A file that shrank is an error
    /// ([`CaptureError::Shrank`]), whether it shows as an early end or as corrupt gzip data.
    fn read(&mut self, out: &mut [u8]) -> Result<usize, CaptureError> {
        loop {
            let result = match self {
                ByteSource::Plain(raw) => raw.read(out),
                ByteSource::Gzip(decoder) => decoder.read(out),
            };
            return match result {
                Ok(0) => match self.raw().shrank() {
                    Some(shrank) => Err(shrank),
                    None => Ok(0),
                },
                Ok(n) => Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => Err(match self.raw().shrank() {
                    Some(shrank) => shrank,
                    None if matches!(self, ByteSource::Gzip(_)) => CaptureError::Gzip { error },
                    None => CaptureError::Io { error },
                }),
            };
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The streaming driver.
// ---------------------------------------------------------------------------------------------

/// Frames of one capture read through a reusable buffer. Each [`CaptureReader::next_frame`]
/// lends a frame out of that buffer; the next call may overwrite it. Memory stays bounded
/// whatever the input: [`READ_BUFFER`], or one record up to [`MAX_RECORD`].
pub struct CaptureReader {
    source: ByteSource,
    buf: Vec<u8>,
    /// Unparsed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Offset in the (decompressed) capture of `buf[start]`.
    offset: u64,
    eof: bool,
    parser: Parser,
    error: Option<CaptureError>,
    /// The frame last returned, so that [`CaptureReader::unread`] can return it again.
    last: Option<Located>,
    again: bool,
    /// Fed by a thread that reads the input once for several readers.
    shared: Option<Box<Shared>>,
}

impl CaptureReader {
    /// A reader over the bytes of any `Read` (a pipe, a decompressor, a test's slow reader):
    /// gzip is detected from its magic bytes, the capture header is read and checked.
    pub fn from_read<R: Read + Send + 'static>(read: R) -> Result<Self, CaptureError> {
        Self::start(Raw::stream(Box::new(read)), None, READ_BUFFER).map(|(reader, _)| reader)
    }

    /// [`CaptureReader::from_read`] with a buffer of `buffer_len` bytes instead of
    /// [`READ_BUFFER`] (at least 1; it still grows to hold one record): tests and fuzzing use
    /// tiny ones so that records cross buffer boundaries often.
    pub fn from_read_with_buffer<R: Read + Send + 'static>(
        read: R,
        buffer_len: usize,
    ) -> Result<Self, CaptureError> {
        Self::start(Raw::stream(Box::new(read)), None, buffer_len).map(|(reader, _)| reader)
    }

    /// `buffer_len`: [`READ_BUFFER`]; tests pass tiny ones to cross buffer boundaries often.
    fn start(
        raw: Raw,
        gzip: Option<bool>,
        buffer_len: usize,
    ) -> Result<(Self, bool), CaptureError> {
        Self::start_with(raw, gzip, None, buffer_len)
    }

    /// [`CaptureReader::start`] reusing `buffer` when given.
    fn start_with(
        mut raw: Raw,
        gzip: Option<bool>,
        buffer: Option<Vec<u8>>,
        buffer_len: usize,
    ) -> Result<(Self, bool), CaptureError> {
        let mut buf = buffer.unwrap_or_default();
        // Keeps the allocation of a reused buffer; the contents do not matter.
        buf.resize(buffer_len.max(1), 0);
        let gzip = match gzip {
            Some(known) => known,
            None => raw.sniff_gzip()?,
        };
        let source = if gzip {
            ByteSource::Gzip(Box::new(MultiGzDecoder::new(raw)))
        } else {
            ByteSource::Plain(raw)
        };
        let mut reader = CaptureReader {
            source,
            buf,
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            parser: Parser::idle(),
            error: None,
            last: None,
            again: false,
            shared: None,
        };
        loop {
            let window = reader.buf.get(reader.start..reader.end).unwrap_or_default();
            match detect(window, reader.eof)? {
                Detected::Need(n) => reader.fill(n)?,
                Detected::Ready(parser, header_len) => {
                    reader.parser = parser;
                    reader.start += header_len;
                    reader.offset = header_len as u64;
                    return Ok((reader, gzip));
                }
            }
        }
    }

    /// Reads until `buf[start..]` holds `need` bytes or the input ends; compacts the buffer
    /// first when the record would not fit behind `start`, and grows it when one record is
    /// larger than the whole buffer (the parser refuses records above [`MAX_RECORD`] before
    /// asking for them).
    fn fill(&mut self, need: usize) -> Result<(), CaptureError> {
        let need = need.min(MAX_RECORD);
        if need > self.buf.len() {
            self.buf.resize(need, 0);
        }
        if self.start + need > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < need {
            let Some(free) = self.buf.get_mut(self.end..).filter(|f| !f.is_empty()) else {
                break;
            };
            let n = match self.source.read(free) {
                Ok(n) => n,
                // A gzip file cut short (a download that stopped): analysed up to the cut,
                // which is reported as a cut record, as for a plain capture cut short.
                Err(CaptureError::Gzip { error })
                    if error.kind() == io::ErrorKind::UnexpectedEof =>
                {
                    self.parser.cut_at_end = true;
                    0
                }
                Err(error) => return Err(error),
            };
            if n == 0 {
                self.eof = true;
                break;
            }
            self.end += n;
        }
        Ok(())
    }

    /// Advances to the next frame and describes it (its bytes stay in `buf`).
    fn advance(&mut self) -> Option<Located> {
        if self.shared.is_some() {
            return self.advance_shared();
        }
        loop {
            if self.error.is_some() {
                return None;
            }
            let window = self.buf.get(self.start..self.end).unwrap_or_default();
            match self.parser.step(window, self.offset, self.eof) {
                Step::Frame(frame, len) => {
                    let located = Located {
                        data_start: self.start + frame.data_start,
                        ..frame
                    };
                    self.start += len;
                    self.offset += len as u64;
                    return Some(located);
                }
                Step::Skip(len) => {
                    self.start += len;
                    self.offset += len as u64;
                }
                Step::Need(n) => {
                    if let Err(error) = self.fill(n) {
                        self.error = Some(error);
                        return None;
                    }
                }
                Step::Stop => return None,
            }
        }
    }

    /// The next frame, borrowed from the reader's buffer; `None` at the end, after a cut or
    /// corrupt record (see [`CaptureReader::warnings`]) or a read error
    /// ([`CaptureReader::error`]).
    #[inline]
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        let located = if self.again {
            self.again = false;
            self.last?
        } else {
            let located = match self.pcap_in_chunk() {
                Some(located) => Some(located),
                None => self.advance(),
            };
            self.last = located;
            located?
        };
        if let Some(sh) = self.shared.as_deref()
            && sh.last_in_chunk
        {
            let chunk = sh.chunk.as_deref().map_or(&[][..], Chunk::data);
            return Some(located.frame(chunk));
        }
        Some(located.frame(&self.buf))
    }

    /// [`CaptureReader::next_frame`] for a reader read straight through, never asked to
    /// [`CaptureReader::unread`] (offline analysis at full speed): the same frames, without
    /// keeping a copy of each frame's location for `unread`, which only a paced source needs.
    /// `unread` after this call returns nothing again.
    #[inline(always)]
    pub fn next_frame_unpaced(&mut self) -> Option<Frame<'_>> {
        if self.again {
            return self.next_frame();
        }
        self.last = None;
        let located = match self.pcap_in_chunk() {
            Some(located) => located,
            None => self.advance()?,
        };
        if let Some(sh) = self.shared.as_deref()
            && sh.last_in_chunk
        {
            let chunk = sh.chunk.as_deref().map_or(&[][..], Chunk::data);
            return Some(located.frame(chunk));
        }
        Some(located.frame(&self.buf))
    }

    /// Makes the next [`CaptureReader::next_frame`] return the frame it returned last, again
    /// (a paced source that read a frame whose time has not come yet).
    pub fn unread(&mut self) {
        self.again = self.last.is_some();
    }

    pub fn format(&self) -> FileFormat {
        self.parser.format
    }

    /// Bytes of the capture consumed so far (decompressed bytes for gzip).
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// Bytes of the input file read so far (compressed bytes for gzip): progress against
    /// [`CaptureInput::len`].
    pub fn input_position(&self) -> u64 {
        match &self.shared {
            Some(sh) => sh.input_pos.load(Ordering::Relaxed),
            None => self.source.raw().position(),
        }
    }

    /// Byte offset of the record the file was cut short in, once reading reached it.
    pub fn truncated_at(&self) -> Option<u64> {
        self.parser.truncated_at
    }

    /// Warnings met so far, at most one entry per kind.
    pub fn warnings(&self) -> &[Warning] {
        self.parser.warnings.as_slice()
    }

    /// The error that ended reading early, if one did.
    pub fn error(&self) -> Option<&CaptureError> {
        self.error.as_ref()
    }

    pub fn take_error(&mut self) -> Option<CaptureError> {
        self.error.take()
    }

    /// The read buffer, for the next input's reader ([`CaptureInput::reader_with_buffer`]).
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

// ---------------------------------------------------------------------------------------------
// One read of an input shared by several readers.
// ---------------------------------------------------------------------------------------------

/// Bytes of the input read by the sharing thread: `bytes[..len]`, or a mapped window of the
/// file (see [`super::mapped`]).
struct Chunk {
    bytes: Vec<u8>,
    len: usize,
    mapped: Option<MappedChunk>,
}

/// A window of a plain regular file, with what [`CaptureError::Shrank`] needs if the file
/// shrinks while it is mapped.
struct MappedChunk {
    window: Window,
    file: Arc<File>,
    /// Size of the file when it was opened.
    opened: u64,
}

impl Chunk {
    /// The chunk's bytes.
    #[inline]
    fn data(&self) -> &[u8] {
        match &self.mapped {
            Some(m) => m.window.bytes(),
            None => self.bytes.get(..self.len).unwrap_or_default(),
        }
    }

    /// The error to end with when the file shrank while this window was mapped: its bytes past
    /// the new end read as zeros and must not be trusted. A fault (an access to a page past the
    /// new end) is noted by the SIGBUS handler and checked after each record; the rest of the
    /// page the file now ends in reads as zeros without a fault, so a reader that is done with
    /// a window also checks the file's size once (`done`).
    #[inline]
    fn shrank(&self, done: bool) -> Option<CaptureError> {
        let m = self.mapped.as_ref()?;
        let fault = m.window.fault();
        if fault.is_none() && !done {
            return None;
        }
        let now = m.file.metadata().map_or(0, |meta| meta.len());
        let end = m.window.offset() + m.window.bytes().len() as u64;
        let read = match fault {
            Some(at) => at,
            None if now < end && now < m.opened => end,
            None => return None,
        };
        Some(CaptureError::Shrank {
            opened: m.opened,
            now,
            read,
        })
    }
}

/// What the sharing thread sends each reader.
enum Feed {
    Data(Arc<Chunk>),
    /// The input ended; `cut`: a gzip stream cut short.
    End {
        cut: bool,
    },
    Error(Arc<CaptureError>),
}

/// Chunks each reader may have queued: bounds the memory to about (this + 2) chunks per
/// reader, and keeps the thread at most that far ahead of the slowest reader.
const SHARED_QUEUE: usize = 4;

impl CaptureReader {
    /// `count` readers sharing one read of `read` in chunks of `chunk_len` bytes (see
    /// [`CaptureInput::shard_reader`]); gzip is detected. For tests and fuzzing of the shared
    /// driver. The readers must be consumed concurrently (or there must be only one).
    pub fn shared_from_read<R: Read + Send + 'static>(
        read: R,
        count: usize,
        chunk_len: usize,
    ) -> Result<Vec<CaptureReader>, CaptureError> {
        let mut raw = Raw::stream(Box::new(read));
        let source = if raw.sniff_gzip()? {
            ByteSource::Gzip(Box::new(MultiGzDecoder::new(raw)))
        } else {
            ByteSource::Plain(raw)
        };
        share(source, Vec::new(), count, chunk_len, chunk_len)
    }
}

/// Starts the thread that reads `source` (after handing out `prefix`) for `count` readers, in
/// chunks of `chunk_len` bytes (a plain regular file: mapped windows of `window_len` bytes).
fn share(
    source: ByteSource,
    prefix: Vec<u8>,
    count: usize,
    chunk_len: usize,
    window_len: usize,
) -> Result<Vec<CaptureReader>, CaptureError> {
    let input_pos = Arc::new(AtomicU64::new(0));
    let mut feeds = Vec::with_capacity(count);
    let mut readers = Vec::with_capacity(count);
    for _ in 0..count {
        let (tx, rx) = std::sync::mpsc::sync_channel(SHARED_QUEUE);
        feeds.push(Some(tx));
        readers.push(Shared {
            feed: rx,
            chunk: None,
            start: 0,
            carrying: false,
            last_in_chunk: false,
            header_read: false,
            input_pos: Arc::clone(&input_pos),
        });
    }
    let pos = Arc::clone(&input_pos);
    std::thread::Builder::new()
        .name("voqa-read".into())
        .spawn(move || {
            read_for_all(source, prefix, feeds, chunk_len.max(1), window_len, &pos);
        })
        .map_err(|error| CaptureError::Io { error })?;
    readers
        .into_iter()
        .map(CaptureReader::start_shared)
        .collect()
}

/// The sharing thread: reads chunk after chunk and sends each to every reader still there.
/// A chunk is reused once no reader holds it any more, so reading allocates only at the start.
fn read_for_all(
    mut source: ByteSource,
    prefix: Vec<u8>,
    mut feeds: Vec<Option<SyncSender<Feed>>>,
    chunk_len: usize,
    window_len: usize,
    input_pos: &AtomicU64,
) {
    let mut pool: Vec<Arc<Chunk>> = Vec::new();
    let send = send_all;
    if !prefix.is_empty() {
        let len = prefix.len();
        let chunk = Arc::new(Chunk {
            bytes: prefix,
            len,
            mapped: None,
        });
        if !send(&mut feeds, &|| Feed::Data(Arc::clone(&chunk))) {
            return;
        }
    }
    // A plain regular file is mapped window by window rather than copied out of the kernel,
    // unless mapping fails (then it is read from where mapping stopped).
    if let ByteSource::Plain(Raw::At { file, pos, opened }) = &mut source
        && *pos == 0
    {
        match map_for_all(file, *opened, window_len, &mut feeds, input_pos) {
            Mapped::Done => return,
            Mapped::Fallback(at) => *pos = at,
        }
    }
    loop {
        let reusable = pool.iter_mut().position(|c| Arc::get_mut(c).is_some());
        let mut chunk = match reusable {
            Some(i) => pool.swap_remove(i),
            None => Arc::new(Chunk {
                bytes: vec![0; chunk_len],
                len: 0,
                mapped: None,
            }),
        };
        let Some(filling) = Arc::get_mut(&mut chunk) else {
            return;
        };
        filling.len = 0;
        let mut end: Option<Feed> = None;
        while filling.len < filling.bytes.len() {
            let Some(free) = filling.bytes.get_mut(filling.len..) else {
                break;
            };
            match source.read(free) {
                Ok(0) => {
                    end = Some(Feed::End { cut: false });
                    break;
                }
                Ok(n) => filling.len += n,
                Err(CaptureError::Gzip { error })
                    if error.kind() == io::ErrorKind::UnexpectedEof =>
                {
                    end = Some(Feed::End { cut: true });
                    break;
                }
                Err(error) => {
                    end = Some(Feed::Error(Arc::new(error)));
                    break;
                }
            }
        }
        input_pos.store(source.raw().position(), Ordering::Relaxed);
        if filling.len > 0 {
            let sent = Arc::clone(&chunk);
            if !send(&mut feeds, &|| Feed::Data(Arc::clone(&sent))) {
                return;
            }
            pool.push(chunk);
        }
        if let Some(end) = end {
            let (cut, error) = match end {
                Feed::End { cut } => (cut, None),
                Feed::Error(error) => (false, Some(error)),
                Feed::Data(_) => (false, None),
            };
            send(&mut feeds, &|| match &error {
                Some(error) => Feed::Error(Arc::clone(error)),
                None => Feed::End { cut },
            });
            return;
        }
    }
}

/// Sends a message to every reader still there; `false` when none is left.
fn send_all(feeds: &mut [Option<SyncSender<Feed>>], make: &dyn Fn() -> Feed) -> bool {
    for feed in feeds.iter_mut() {
        if let Some(tx) = feed
            && tx.send(make()).is_err()
        {
            // That reader is gone (its shard finished or failed); the others go on.
            *feed = None;
        }
    }
    feeds.iter().any(Option::is_some)
}

/// Bytes of a plain file mapped per window by the sharing thread. With the few windows a
/// reader can hold (the queue and the one parsed) the file adds about 12 MiB to RSS.
const MAP_WINDOW: usize = 2 << 20;

/// How [`map_for_all`] ended.
enum Mapped {
    /// The input was sent to its end, or to its error, or no reader is left.
    Done,
    /// A window could not be mapped (the table of windows is full, or `mmap` failed): the
    /// rest, from this offset, is to be read.
    Fallback(u64),
}

/// The sharing thread's loop for a plain regular file: maps it in windows of [`MAP_WINDOW`]
/// bytes, populated here (the page-table work stays off the analysis threads), and sends each
/// window to every reader, which parses it in place. Nothing is copied out of the kernel. A
/// window is unmapped here too, once no reader holds it. The size is checked before each
/// window: a file that got shorter than when it was opened ends with
/// [`CaptureError::Shrank`], as a read one does; a window the file shrinks under is caught by
/// the readers ([`Chunk::shrank`]).
fn map_for_all(
    file: &File,
    opened: u64,
    window_len: usize,
    feeds: &mut [Option<SyncSender<Feed>>],
    input_pos: &AtomicU64,
) -> Mapped {
    let Ok(shared) = file.try_clone().map(Arc::new) else {
        return Mapped::Fallback(0);
    };
    let window_len = super::mapped::whole_pages(window_len);
    let mut pos = 0u64;
    let mut sent: Vec<Arc<Chunk>> = Vec::new();
    loop {
        // Unmapped here, not in the analysis thread, once every reader is done with them.
        sent.retain(|c| Arc::strong_count(c) > 1);
        let now = match file.metadata() {
            Ok(meta) => meta.len(),
            Err(error) => {
                let error = Arc::new(CaptureError::Io { error });
                send_all(feeds, &|| Feed::Error(Arc::clone(&error)));
                return Mapped::Done;
            }
        };
        // Shorter than when opened, even after everything was mapped: the readers may still be
        // parsing the last window, whose end the file no longer has.
        if now < opened {
            let error = Arc::new(CaptureError::Shrank {
                opened,
                now,
                read: pos,
            });
            send_all(feeds, &|| Feed::Error(Arc::clone(&error)));
            return Mapped::Done;
        }
        if pos >= now {
            send_all(feeds, &|| Feed::End { cut: false });
            return Mapped::Done;
        }
        let len = usize::try_from(now - pos).map_or(window_len, |left| left.min(window_len));
        let window = match Window::map(file, pos, len) {
            Ok(Some(window)) => window,
            Ok(None) | Err(_) => return Mapped::Fallback(pos),
        };
        pos += len as u64;
        input_pos.store(pos, Ordering::Relaxed);
        let chunk = Arc::new(Chunk {
            bytes: Vec::new(),
            len,
            mapped: Some(MappedChunk {
                window,
                file: Arc::clone(&shared),
                opened,
            }),
        });
        if !send_all(feeds, &|| Feed::Data(Arc::clone(&chunk))) {
            return Mapped::Done;
        }
        sent.push(chunk);
    }
}

/// A reader's side of a shared read: the chunk it parses in place, or the record it is
/// assembling (in the reader's `buf`) because the record spans two chunks.
struct Shared {
    feed: Receiver<Feed>,
    chunk: Option<Arc<Chunk>>,
    /// Unparsed bytes of the chunk are `chunk.data()[start..]`.
    start: usize,
    /// The window is the reader's `buf[start..end]` (a record across chunks), not the chunk.
    carrying: bool,
    /// The frame last returned lies in the chunk (else in `buf`).
    last_in_chunk: bool,
    header_read: bool,
    input_pos: Arc<AtomicU64>,
}

impl CaptureReader {
    /// A reader fed by a sharing thread. It reads the capture header on its first
    /// `next_frame`, in the thread that uses it: the readers of one input consume the feed
    /// concurrently, and a reader waiting for a header (possibly longer than the feed's queue)
    /// while the others have not started would wait forever.
    fn start_shared(shared: Shared) -> Result<Self, CaptureError> {
        Ok(CaptureReader {
            source: ByteSource::Plain(Raw::stream(Box::new(io::empty()))),
            buf: Vec::new(),
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            parser: Parser::idle(),
            error: None,
            last: None,
            again: false,
            shared: Some(Box::new(shared)),
        })
    }

    /// Reads and checks the capture header from the feed (done once, on the first frame).
    fn shared_header(&mut self) -> Result<(), CaptureError> {
        loop {
            match detect(self.shared_window(), self.eof)? {
                Detected::Need(n) => self.shared_need(n)?,
                Detected::Ready(parser, header_len) => {
                    self.parser = parser;
                    self.shared_consume(header_len);
                    self.offset = header_len as u64;
                    return Ok(());
                }
            }
        }
    }

    /// The unparsed bytes at hand: the rest of the chunk, or the record being assembled.
    fn shared_window(&self) -> &[u8] {
        match &self.shared {
            Some(sh) if sh.carrying => self.buf.get(self.start..self.end).unwrap_or_default(),
            Some(sh) => sh
                .chunk
                .as_deref()
                .and_then(|c| c.data().get(sh.start..))
                .unwrap_or_default(),
            None => &[],
        }
    }

    fn shared_consume(&mut self, len: usize) {
        let Some(sh) = self.shared.as_mut() else {
            return;
        };
        if sh.carrying {
            self.start += len;
            if self.start >= self.end {
                // The record across chunks is consumed: back to parsing the chunk in place.
                sh.carrying = false;
            }
        } else {
            sh.start += len;
        }
    }

    /// Receives the next message of the feed: `Ok(Some(chunk))`, or `Ok(None)` at the end.
    fn shared_receive(&mut self) -> Result<Option<Arc<Chunk>>, CaptureError> {
        let Some(sh) = self.shared.as_mut() else {
            return Ok(None);
        };
        let message = match sh.feed.try_recv() {
            Ok(message) => message,
            Err(TryRecvError::Empty) => match sh.feed.recv() {
                Ok(message) => message,
                Err(_) => Feed::End { cut: false },
            },
            Err(TryRecvError::Disconnected) => Feed::End { cut: false },
        };
        match message {
            Feed::Data(chunk) => Ok(Some(chunk)),
            Feed::End { cut } => {
                self.eof = true;
                self.parser.cut_at_end |= cut;
                Ok(None)
            }
            Feed::Error(error) => Err(CaptureError::Shared(error)),
        }
    }

    /// Makes the window hold `need` bytes (or all that is left): takes the next chunk when
    /// this one is used up, and assembles a record that spans chunks in `buf`.
    fn shared_need(&mut self, need: usize) -> Result<(), CaptureError> {
        let need = need.min(MAX_RECORD);
        loop {
            let have = self.shared_window().len();
            if have >= need || self.eof {
                return Ok(());
            }
            let Some(sh) = self.shared.as_mut() else {
                return Ok(());
            };
            if !sh.carrying {
                if have == 0 {
                    // The chunk is used up: parse the next one in place.
                    if let Some(error) = sh.chunk.take().and_then(|c| c.shrank(true)) {
                        return Err(error);
                    }
                    let next = self.shared_receive()?;
                    if let Some(sh) = self.shared.as_mut() {
                        sh.chunk = next;
                        sh.start = 0;
                    }
                    continue;
                }
                // A record continues in the next chunk: assemble it, starting with this part.
                self.buf.clear();
                if let Some(rest) = sh.chunk.as_deref().and_then(|c| c.data().get(sh.start..)) {
                    self.buf.extend_from_slice(rest);
                }
                sh.start = sh.chunk.as_deref().map_or(0, |c| c.data().len());
                sh.carrying = true;
                self.start = 0;
                self.end = self.buf.len();
            }
            // Carrying: append from the chunk, exactly what the record needs.
            let Some(sh) = self.shared.as_mut() else {
                return Ok(());
            };
            let available = sh
                .chunk
                .as_deref()
                .and_then(|c| c.data().get(sh.start..))
                .unwrap_or_default();
            if available.is_empty() {
                if let Some(error) = sh.chunk.take().and_then(|c| c.shrank(true)) {
                    return Err(error);
                }
                let next = self.shared_receive()?;
                if let Some(sh) = self.shared.as_mut() {
                    sh.chunk = next;
                    sh.start = 0;
                }
                continue;
            }
            let take = available.len().min(need - have);
            self.buf
                .extend_from_slice(available.get(..take).unwrap_or_default());
            sh.start += take;
            self.end = self.buf.len();
            if let Some(error) = sh.chunk.as_deref().and_then(|c| c.shrank(false)) {
                return Err(error);
            }
        }
    }

    /// The error to end with if the file shrank under the mapped window being parsed.
    #[inline]
    fn shared_shrank(&self) -> Option<CaptureError> {
        self.shared
            .as_deref()?
            .chunk
            .as_deref()
            .filter(|c| c.mapped.is_some())
            .and_then(|c| c.shrank(false))
    }

    /// How far ahead of the record being parsed [`CaptureReader::pcap_in_chunk`] prefetches
    /// the capture bytes: a few records (their bytes come from memory in a few hundred ns).
    const PREFETCH_AHEAD: usize = 2048;

    /// What [`CaptureReader::advance`] does for almost every record of a pcap file, in
    /// one step: a well-formed record wholly inside the chunk parsed in place (the common case
    /// of the general loop, which costs about as much per record as decoding the frame).
    /// `None`, having changed nothing, for anything else: the capture header, a record across
    /// chunks or past the chunk, pcapng, a record the parser rejects or warns about, a window
    /// the file shrank under, an earlier error; the general path then takes the same record.
    // Always inlined: as a call it returned the location through memory and cost about 20
    // instructions per frame of its ~100 (callgrind).
    #[inline(always)]
    fn pcap_in_chunk(&mut self) -> Option<Located> {
        let Reader::Pcap(reader) = self.parser.reader else {
            return None;
        };
        if self.parser.finished || self.error.is_some() {
            return None;
        }
        let sh = self.shared.as_deref_mut()?;
        if sh.carrying || !sh.header_read {
            return None;
        }
        let chunk = sh.chunk.as_deref()?;
        let window = chunk.data().get(sh.start..)?;
        let header = window.first_chunk::<PCAP_RECORD_HEADER_LEN>()?;
        let big_endian = reader.big_endian;
        let caplen = u32_at(header, 8, big_endian);
        let wire_len = u32_at(header, 12, big_endian);
        // Larger than the snapshot length (corrupt) or shorter on the wire than captured (a
        // warning): the general path says so.
        if caplen > reader.max_caplen || wire_len < caplen {
            return None;
        }
        // caplen <= PCAP_MAX_CAPLEN, so the record length cannot overflow.
        let len = PCAP_RECORD_HEADER_LEN + caplen as usize;
        // A fault noted in the window: `Chunk::shrank` (on the general path) builds the error.
        if window.len() < len
            || chunk
                .mapped
                .as_ref()
                .is_some_and(|m| m.window.fault().is_some())
        {
            return None;
        }
        // As in `Parser::step_pcap`: cannot overflow.
        let ts_ns = i64::from(u32_at(header, 0, big_endian)) * NANOS_PER_SECOND as i64
            + i64::from(u32_at(header, 4, big_endian)) * reader.fraction_to_ns;
        let located = Located {
            ts_ns,
            linktype: reader.linktype,
            data_start: sh.start + PCAP_RECORD_HEADER_LEN,
            data_len: caplen as usize,
            wire_len,
            interface: 0,
        };
        // The mapped pages come from memory, not from a cache: ask for the bytes this record's
        // length further on (`PREFETCH_AHEAD` ahead), so that the records read next are there
        // when parsed. Only a hint, past the window's end too.
        // A fixed number of lines first (unrolled: no loop for the usual voice record of
        // 4 lines or fewer; a few lines past a short record are only hints too), then the
        // rest of a longer record.
        const FIXED_LINES: usize = 4;
        let ahead = window.as_ptr().wrapping_add(Self::PREFETCH_AHEAD);
        super::hint::prefetch_lines(ahead, FIXED_LINES);
        let lines = len.div_ceil(super::hint::LINE);
        if lines > FIXED_LINES {
            super::hint::prefetch_lines(
                ahead.wrapping_add(FIXED_LINES * super::hint::LINE),
                lines - FIXED_LINES,
            );
        }
        sh.last_in_chunk = true;
        sh.start += len;
        self.offset += len as u64;
        Some(located)
    }

    /// [`CaptureReader::advance`] for a reader fed by a sharing thread.
    fn advance_shared(&mut self) -> Option<Located> {
        if let Some(sh) = self.shared.as_mut()
            && !std::mem::replace(&mut sh.header_read, true)
            && let Err(error) = self.shared_header()
        {
            self.error = Some(error);
            return None;
        }
        loop {
            if self.error.is_some() {
                return None;
            }
            let sh = self.shared.as_deref()?;
            let carrying = sh.carrying;
            let base = if carrying { self.start } else { sh.start };
            // Field by field (not `shared_window`), so that the parser can be borrowed too.
            let window = if carrying {
                self.buf.get(self.start..self.end).unwrap_or_default()
            } else {
                sh.chunk
                    .as_deref()
                    .and_then(|c| c.data().get(sh.start..))
                    .unwrap_or_default()
            };
            let warned = self.parser.warnings.len;
            let step = self.parser.step(window, self.offset, self.eof);
            // A mapped window the file shrank under reads zeros past the new end: whatever
            // the parser made of them (a record, a warning) is dropped for the error.
            if let Some(error) = self.shared_shrank() {
                self.parser.warnings.len = warned;
                self.error = Some(error);
                return None;
            }
            match step {
                Step::Frame(frame, len) => {
                    let located = Located {
                        data_start: base + frame.data_start,
                        ..frame
                    };
                    if let Some(sh) = self.shared.as_mut() {
                        sh.last_in_chunk = !carrying;
                    }
                    // Consumed after the frame is lent: a finished carry must stay in `buf`
                    // until the next call (see `shared_consume`, which only flips the mode).
                    self.shared_consume(len);
                    self.offset += len as u64;
                    return Some(located);
                }
                Step::Skip(len) => {
                    self.shared_consume(len);
                    self.offset += len as u64;
                }
                Step::Need(n) => {
                    if let Err(error) = self.shared_need(n) {
                        self.error = Some(error);
                        return None;
                    }
                }
                Step::Stop => return None,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The parser: one for both drivers.
// ---------------------------------------------------------------------------------------------

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
/// Block type and block length: where a block's body starts.
const PCAPNG_BODY_START: usize = 8;
const PCAPNG_OPT_END: u16 = 0;
const PCAPNG_OPT_IF_TSRESOL: u16 = 9;
const PCAPNG_OPT_IF_TSOFFSET: u16 = 14;
/// Interfaces beyond this many per section are ignored (their packets count as unknown), so a
/// hostile file cannot make the interface table grow with its size.
const PCAPNG_MAX_INTERFACES: usize = 1 << 16;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Magic numbers of compressed files, for a clear refusal instead of "not a pcap file".
const COMPRESSED_MAGIC: [(&[u8], &str); 6] = [
    (&GZIP_MAGIC, "gzip"),
    (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
    (&[0xfd, 0x37, 0x7a, 0x58], "xz"),
    (&[0x42, 0x5a, 0x68], "bzip2"),
    (&[0x04, 0x22, 0x4d, 0x18], "lz4"),
    (&[0x50, 0x4b, 0x03, 0x04], "zip"),
];

/// What the start of a capture says.
enum Detected {
    /// The header is not complete: this many bytes from the start are needed.
    Need(usize),
    /// A valid header of this many bytes, and the parser for what follows.
    Ready(Parser, usize),
}

/// Detects the format and validates the file header at the start of `bytes`. `at_end`: no
/// more bytes will come (a header cut short is then an error rather than a request).
fn detect(bytes: &[u8], at_end: bool) -> Result<Detected, CaptureError> {
    let Some(&magic_bytes) = bytes.first_chunk::<4>() else {
        if !at_end {
            return Ok(Detected::Need(4));
        }
        if let Some((_, name)) = COMPRESSED_MAGIC
            .iter()
            .find(|(magic, _)| !bytes.is_empty() && bytes.starts_with(magic))
        {
            return Err(CaptureError::Compressed(name));
        }
        return Err(if bytes.is_empty() {
            CaptureError::Empty
        } else {
            CaptureError::TooShort { len: bytes.len() }
        });
    };
    let magic_le = u32::from_le_bytes(magic_bytes);
    let magic_be = u32::from_be_bytes(magic_bytes);
    for (magic, big_endian) in [(magic_le, false), (magic_be, true)] {
        let nanosecond = match magic {
            PCAP_MAGIC_MICRO => false,
            PCAP_MAGIC_NANO => true,
            _ => continue,
        };
        let Some(header) = bytes.first_chunk::<PCAP_FILE_HEADER_LEN>() else {
            if !at_end {
                return Ok(Detected::Need(PCAP_FILE_HEADER_LEN));
            }
            return Err(CaptureError::BadHeader("pcap file header cut short"));
        };
        return pcap_parser(header, nanosecond, big_endian)
            .map(|parser| Detected::Ready(parser, PCAP_FILE_HEADER_LEN));
    }
    if magic_le == PCAPNG_SHB_TYPE {
        let mut reader = PcapNgReader {
            big_endian: false,
            interfaces: Vec::new(),
            last_ts_ns: 0,
        };
        let block = match Block::new_checked(bytes, reader.big_endian) {
            Ok(block) => block,
            Err(BlockError::Need(n)) if !at_end => return Ok(Detected::Need(n)),
            Err(BlockError::Need(_)) => {
                return Err(CaptureError::BadHeader(
                    "pcapng section header block cut short",
                ));
            }
            Err(BlockError::Corrupt(reason)) => return Err(CaptureError::BadHeader(reason)),
        };
        reader
            .start_section(&block)
            .map_err(CaptureError::BadHeader)?;
        let parser = Parser::new(FileFormat::PcapNg, Reader::PcapNg(reader));
        return Ok(Detected::Ready(parser, block.total_len));
    }
    if magic_le == PCAP_MAGIC_MODIFIED || magic_be == PCAP_MAGIC_MODIFIED {
        return Err(CaptureError::BadHeader(
            "modified (Kuznetzov) pcap format is not supported",
        ));
    }
    if let Some((_, name)) = COMPRESSED_MAGIC
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
    {
        return Err(CaptureError::Compressed(name));
    }
    Err(CaptureError::NotACapture { magic: magic_be })
}

fn pcap_parser(
    header: &[u8; PCAP_FILE_HEADER_LEN],
    nanosecond: bool,
    big_endian: bool,
) -> Result<Parser, CaptureError> {
    let version_major = u16_at(header, 4, big_endian);
    if version_major != 2 {
        return Err(CaptureError::BadHeader("unsupported pcap version"));
    }
    let snaplen = u32_at(header, 16, big_endian);
    // The upper bits of the link-type field carry FCS information, not the link type.
    let linktype = u32_at(header, 20, big_endian) & 0x0fff_ffff;
    let max_caplen = snaplen.clamp(PCAP_MIN_CAPLEN_LIMIT, PCAP_MAX_CAPLEN);
    Ok(Parser::new(
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

/// Detects the format, validates the file header and returns an iterator over the frames of
/// a capture held in memory (the slice driver of the parser; files are streamed by
/// [`CaptureReader`]).
pub fn frames(bytes: &[u8]) -> Result<Frames<'_>, CaptureError> {
    match detect(bytes, true)? {
        Detected::Ready(parser, header_len) => Ok(Frames {
            bytes,
            position: header_len.min(bytes.len()),
            parser,
        }),
        // With `at_end`, a header cut short is an error, never a request for more.
        Detected::Need(_) => Err(CaptureError::BadHeader("file header cut short")),
    }
}

/// Iterator over the frames of a capture in memory. See [`frames`].
pub struct Frames<'a> {
    bytes: &'a [u8],
    /// Offset of the next record; never beyond `bytes.len()`.
    position: usize,
    parser: Parser,
}

impl<'a> Frames<'a> {
    pub fn format(&self) -> FileFormat {
        self.parser.format
    }

    /// Bytes consumed so far: the offset of the next record (or of the record that ended
    /// iteration).
    pub fn position(&self) -> usize {
        self.position
    }

    /// Byte offset of the record the file was cut short in, once iteration reached it.
    pub fn truncated_at(&self) -> Option<u64> {
        self.parser.truncated_at
    }

    /// Warnings met so far, at most one entry per kind.
    pub fn warnings(&self) -> &[Warning] {
        self.parser.warnings.as_slice()
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    #[inline]
    fn next(&mut self) -> Option<Frame<'a>> {
        let bytes = self.bytes;
        loop {
            let window = bytes.get(self.position..).unwrap_or_default();
            match self.parser.step(window, self.position as u64, true) {
                Step::Frame(located, len) => {
                    self.position += len;
                    return Some(located.frame(window));
                }
                Step::Skip(len) => self.position += len,
                Step::Need(_) | Step::Stop => return None,
            }
        }
    }
}

impl FusedIterator for Frames<'_> {}

/// A frame found by the parser, with its bytes given as a range of the parser's window.
#[derive(Debug, Clone, Copy)]
struct Located {
    ts_ns: i64,
    linktype: u32,
    data_start: usize,
    data_len: usize,
    wire_len: u32,
    interface: u32,
}

impl Located {
    /// The frame, borrowing its bytes from `bytes` (the window it was located in).
    #[inline]
    fn frame(self, bytes: &[u8]) -> Frame<'_> {
        let end = self.data_start.saturating_add(self.data_len);
        Frame {
            ts_ns: self.ts_ns,
            linktype: self.linktype,
            data: bytes.get(self.data_start..end).unwrap_or_default(),
            wire_len: self.wire_len,
            interface: self.interface,
            pkttype: None,
            vlan_tci: None,
            vlan_tpid: None,
        }
    }
}

/// What the parser made of the bytes at the start of its window.
enum Step {
    /// A frame, and the length of its record.
    Frame(Located, usize),
    /// A record without a frame (pcapng interface, section or other block; a packet on an
    /// unknown interface) of this length.
    Skip(usize),
    /// The record is not complete: this many bytes from the window's start are needed.
    Need(usize),
    /// Finished: the end, a record cut short or a corrupt one (see the warnings).
    Stop,
}

/// The record parser: given the bytes at a record boundary, it says what the next record is.
/// It keeps the format's state (pcapng interfaces and byte order) and the warnings.
struct Parser {
    format: FileFormat,
    reader: Reader,
    finished: bool,
    /// The input ended early (a gzip stream cut short): even at a record boundary the end is
    /// a cut, not the end of the capture.
    cut_at_end: bool,
    truncated_at: Option<u64>,
    warnings: WarningList,
}

enum Reader {
    Pcap(PcapReader),
    PcapNg(PcapNgReader),
}

#[derive(Clone, Copy)]
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

impl Parser {
    fn new(format: FileFormat, reader: Reader) -> Self {
        Self {
            format,
            reader,
            finished: false,
            cut_at_end: false,
            truncated_at: None,
            warnings: WarningList::default(),
        }
    }

    /// A parser that yields nothing (before a header was read).
    fn idle() -> Self {
        let format = FileFormat::Pcap {
            nanosecond: false,
            big_endian: false,
        };
        let reader = Reader::Pcap(PcapReader {
            linktype: 0,
            big_endian: false,
            fraction_to_ns: 1,
            max_caplen: 0,
        });
        Self {
            finished: true,
            ..Self::new(format, reader)
        }
    }

    /// Parses the record at the start of `window`, which is at byte `offset` of the capture.
    /// `at_end`: the window holds everything that is left of the capture.
    #[inline]
    fn step(&mut self, window: &[u8], offset: u64, at_end: bool) -> Step {
        if self.finished {
            return Step::Stop;
        }
        match self.reader {
            Reader::Pcap(reader) => self.step_pcap(reader, window, offset, at_end),
            Reader::PcapNg(_) => self.step_pcapng(window, offset, at_end),
        }
    }

    /// A record that needs `need` bytes and has fewer: ask for them, or, at the end, stop (a
    /// cut record if anything of it is there).
    #[cold]
    fn incomplete(&mut self, window: &[u8], offset: u64, need: usize, at_end: bool) -> Step {
        if !at_end {
            return Step::Need(need);
        }
        self.finished = true;
        if !window.is_empty() || self.cut_at_end {
            self.truncated_at = Some(offset);
            self.warnings.push(Warning::Truncated { offset });
        }
        Step::Stop
    }

    #[cold]
    fn stop_corrupt(&mut self, offset: u64, reason: &'static str) -> Step {
        self.finished = true;
        self.warnings
            .push(Warning::CorruptRecord { offset, reason });
        Step::Stop
    }

    #[inline]
    fn step_pcap(&mut self, reader: PcapReader, window: &[u8], offset: u64, at_end: bool) -> Step {
        let Some(header) = window.first_chunk::<PCAP_RECORD_HEADER_LEN>() else {
            return self.incomplete(window, offset, PCAP_RECORD_HEADER_LEN, at_end);
        };
        let big_endian = reader.big_endian;
        let seconds = u32_at(header, 0, big_endian);
        let fraction = u32_at(header, 4, big_endian);
        let caplen = u32_at(header, 8, big_endian);
        let orig_len = u32_at(header, 12, big_endian);
        if caplen > reader.max_caplen {
            return self.stop_corrupt(offset, "captured length larger than the snapshot length");
        }
        // caplen <= PCAP_MAX_CAPLEN, so the record length cannot overflow.
        let len = PCAP_RECORD_HEADER_LEN + caplen as usize;
        if window.len() < len {
            return self.incomplete(window, offset, len, at_end);
        }
        // At most (2^32 - 1) * 10^9 + (2^32 - 1) * 10^3 < 2^63: cannot overflow.
        let ts_ns = i64::from(seconds) * NANOS_PER_SECOND as i64
            + i64::from(fraction) * reader.fraction_to_ns;
        let wire_len = self.checked_wire_len(orig_len, caplen, offset);
        Step::Frame(
            Located {
                ts_ns,
                linktype: reader.linktype,
                data_start: PCAP_RECORD_HEADER_LEN,
                data_len: caplen as usize,
                wire_len,
                interface: 0,
            },
            len,
        )
    }

    #[inline]
    fn checked_wire_len(&mut self, orig_len: u32, caplen: u32, offset: u64) -> u32 {
        if orig_len >= caplen {
            orig_len
        } else {
            self.warnings.count_wire_len_below_captured(offset);
            caplen
        }
    }

    fn step_pcapng(&mut self, window: &[u8], offset: u64, at_end: bool) -> Step {
        let Reader::PcapNg(reader) = &mut self.reader else {
            return Step::Stop;
        };
        let block = match Block::new_checked(window, reader.big_endian) {
            Ok(block) => block,
            Err(BlockError::Need(need)) => return self.incomplete(window, offset, need, at_end),
            Err(BlockError::Corrupt(reason)) => return self.stop_corrupt(offset, reason),
        };
        let len = block.total_len;
        let packet = match block.block_type {
            PCAPNG_EPB => block.enhanced_packet(),
            PCAPNG_SPB => block.simple_packet(),
            PCAPNG_OBSOLETE_PB => block.obsolete_packet(),
            PCAPNG_IDB => {
                return match reader.add_interface(&block) {
                    Ok(()) => Step::Skip(len),
                    Err(reason) => self.stop_corrupt(offset, reason),
                };
            }
            PCAPNG_SHB_TYPE => {
                return match reader.start_section(&block) {
                    Ok(()) => Step::Skip(len),
                    Err(reason) => self.stop_corrupt(offset, reason),
                };
            }
            // Other block types (name resolution, statistics, custom, ...) are legal and
            // carry no packets.
            _ => return Step::Skip(len),
        };
        let packet = match packet {
            Ok(packet) => packet,
            Err(reason) => return self.stop_corrupt(offset, reason),
        };
        let Some(interface) = reader.interfaces.get(packet.interface as usize).copied() else {
            self.warnings.count_unknown_interface(offset);
            return Step::Skip(len);
        };
        let ts_ns = match packet.timestamp {
            Some(ticks) => interface.ts_ns(ticks),
            None => reader.last_ts_ns,
        };
        reader.last_ts_ns = ts_ns;
        let mut data_len = packet.data_len;
        if packet.captured_len_from_snaplen && interface.snaplen != 0 {
            // Simple Packet Blocks store min(original length, snaplen) bytes plus padding.
            data_len = data_len.min(packet.orig_len.min(interface.snaplen) as usize);
        }
        let caplen = u32::try_from(data_len).unwrap_or(u32::MAX);
        let wire_len = self.checked_wire_len(packet.orig_len, caplen, offset);
        Step::Frame(
            Located {
                ts_ns,
                linktype: interface.linktype,
                data_start: packet.data_start,
                data_len,
                wire_len,
                interface: packet.interface,
            },
            len,
        )
    }
}
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
    /// The block is not complete: this many bytes from its start are needed.
    Need(usize),
    Corrupt(&'static str),
}

/// A packet carried by an EPB, SPB or obsolete PB, before interface lookup.
struct PacketRecord {
    interface: u32,
    /// Raw timestamp units; `None` for Simple Packet Blocks.
    timestamp: Option<u64>,
    orig_len: u32,
    /// The packet bytes: offset from the block's start, and length (inside the block).
    data_start: usize,
    data_len: usize,
    /// Simple Packet Blocks do not store a captured length.
    captured_len_from_snaplen: bool,
}

impl<'a> Block<'a> {
    /// Validates the block at the start of `bytes`. `big_endian` is the current section's byte
    /// order; a Section Header Block sets its own from its byte-order magic.
    #[inline]
    fn new_checked(bytes: &'a [u8], big_endian: bool) -> Result<Self, BlockError> {
        let header = bytes.first_chunk::<8>().ok_or(BlockError::Need(8))?;
        // The SHB type reads the same in both byte orders.
        let block_type = u32_at(header, 0, big_endian);
        let mut big_endian = big_endian;
        if block_type == PCAPNG_SHB_TYPE {
            let shb_start = bytes.first_chunk::<12>().ok_or(BlockError::Need(12))?;
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
        if total_len > MAX_RECORD {
            return Err(BlockError::Corrupt("pcapng block length above 16 MiB"));
        }
        let block = bytes.get(..total_len).ok_or(BlockError::Need(total_len))?;
        let (envelope, trailer) = block
            .split_at_checked(total_len - 4)
            .ok_or(BlockError::Need(total_len))?;
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
            body: envelope.get(PCAPNG_BODY_START..).unwrap_or_default(),
        })
    }

    /// Fields of `N` bytes then `caplen` packet bytes: the packet's place in the block.
    #[inline]
    fn packet_after<const N: usize>(
        &self,
        caplen: usize,
        too_long: &'static str,
    ) -> Result<(usize, usize), &'static str> {
        let room = self.body.len().saturating_sub(N);
        if self.body.len() < N || caplen > room {
            return Err(too_long);
        }
        Ok((PCAPNG_BODY_START + N, caplen))
    }

    #[inline]
    fn enhanced_packet(&self) -> Result<PacketRecord, &'static str> {
        let fields = self
            .body
            .first_chunk::<20>()
            .ok_or("enhanced packet block too short")?;
        let big_endian = self.big_endian;
        let caplen = u32_at(fields, 12, big_endian) as usize;
        let (data_start, data_len) = self.packet_after::<20>(
            caplen,
            "enhanced packet block captured length runs past the block",
        )?;
        Ok(PacketRecord {
            interface: u32_at(fields, 0, big_endian),
            timestamp: Some(timestamp_ticks(fields, 4, big_endian)),
            orig_len: u32_at(fields, 16, big_endian),
            data_start,
            data_len,
            captured_len_from_snaplen: false,
        })
    }

    fn simple_packet(&self) -> Result<PacketRecord, &'static str> {
        let fields = self
            .body
            .first_chunk::<4>()
            .ok_or("simple packet block too short")?;
        let orig_len = u32_at(fields, 0, self.big_endian);
        let stored = self.body.len() - 4;
        Ok(PacketRecord {
            interface: 0,
            timestamp: None,
            orig_len,
            data_start: PCAPNG_BODY_START + 4,
            data_len: stored.min(orig_len as usize),
            captured_len_from_snaplen: true,
        })
    }

    fn obsolete_packet(&self) -> Result<PacketRecord, &'static str> {
        let fields = self
            .body
            .first_chunk::<20>()
            .ok_or("packet block too short")?;
        let big_endian = self.big_endian;
        let caplen = u32_at(fields, 12, big_endian) as usize;
        let (data_start, data_len) =
            self.packet_after::<20>(caplen, "packet block captured length runs past the block")?;
        Ok(PacketRecord {
            interface: u32::from(u16_at(fields, 0, big_endian)),
            timestamp: Some(timestamp_ticks(fields, 4, big_endian)),
            orig_len: u32_at(fields, 16, big_endian),
            data_start,
            data_len,
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

    /// Frames with everything owned, to compare the two drivers.
    type Owned = Vec<(i64, u32, Vec<u8>, u32, u32)>;

    fn drain(reader: &mut CaptureReader) -> Owned {
        drain_n(reader, usize::MAX)
    }

    /// The next `n` frames (fewer at the end).
    fn drain_n(reader: &mut CaptureReader, n: usize) -> Owned {
        let mut out = Vec::new();
        while out.len() < n
            && let Some(f) = reader.next_frame()
        {
            out.push((
                f.ts_ns,
                f.linktype,
                f.data.to_vec(),
                f.wire_len,
                f.interface,
            ));
        }
        out
    }

    /// A 20,000-frame capture written to `dir` (to be cut while it is read), and its input.
    fn rotating_capture(dir: &Path) -> (Vec<u8>, PathBuf, CaptureInput) {
        let bytes = big_pcap(20_000);
        let path = dir.join("rotating.pcap");
        std::fs::write(&path, &bytes).expect("write");
        let input = CaptureInput::open(&path).expect("open");
        (bytes, path, input)
    }

    fn slice_frames(bytes: &[u8]) -> Owned {
        frames(bytes)
            .expect("header")
            .map(|f| {
                (
                    f.ts_ns,
                    f.linktype,
                    f.data.to_vec(),
                    f.wire_len,
                    f.interface,
                )
            })
            .collect()
    }

    /// A `Read` that hands out at most `chunk` bytes per call, like a pipe.
    struct Chunked {
        data: Vec<u8>,
        pos: usize,
        chunk: usize,
    }

    impl Read for Chunked {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let rest = self.data.get(self.pos..).unwrap_or_default();
            let n = rest.len().min(out.len()).min(self.chunk);
            out[..n].copy_from_slice(&rest[..n]);
            self.pos += n;
            Ok(n)
        }
    }

    /// A streaming reader over `bytes` with a `buffer`-byte buffer, fed `chunk` bytes a read.
    fn stream(bytes: &[u8], chunk: usize, buffer: usize) -> Result<CaptureReader, CaptureError> {
        let raw = Raw::stream(Box::new(Chunked {
            data: bytes.to_vec(),
            pos: 0,
            chunk,
        }));
        CaptureReader::start(raw, None, buffer).map(|(reader, _)| reader)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    /// A pcap of `count` frames of 200 varied bytes (so that gzip cannot shrink it to nothing).
    fn big_pcap(count: usize) -> Vec<u8> {
        let mut writer = PcapWriter::new(Vec::new(), 1).expect("header");
        let mut x: u32 = 0x1234_5678;
        let mut data = [0u8; 200];
        for i in 0..count {
            for byte in &mut data {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *byte = x as u8;
            }
            writer.write_frame(i as i64 * 1_000, &data).expect("frame");
        }
        writer.into_inner()
    }

    #[test]
    fn capture_input_errors_for_empty_text_directory_and_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pcap");
        std::fs::write(&empty, b"").expect("write");
        assert!(matches!(
            CaptureInput::open(&empty),
            Err(CaptureError::Empty)
        ));

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, b"just some text\n").expect("write");
        assert!(matches!(
            CaptureInput::open(&text),
            Err(CaptureError::NotACapture { magic: 0x6a75_7374 })
        ));

        assert!(matches!(
            CaptureInput::open(dir.path()),
            Err(CaptureError::IsDirectory)
        ));
        let missing = dir.path().join("missing.pcap");
        match CaptureInput::open(&missing) {
            Err(error @ CaptureError::Io { .. }) => {
                assert_eq!(error.to_string(), "No such file or directory (os error 2)");
                // The reason is in the message only: a chain printer shows it once.
                assert!(std::error::Error::source(&error).is_none());
            }
            other => panic!("{:?}", other.err()),
        }

        let good = dir.path().join("good.pcap");
        std::fs::write(&good, pcap_file(PcapOptions::new(1))).expect("write");
        let input = CaptureInput::open(&good).expect("open");
        assert_eq!(input.path(), good);
        assert!(!input.is_gzip() && !input.is_stdin());
        // Any number of independent readers over one open file.
        for _ in 0..3 {
            let mut reader = input.reader().expect("reader");
            assert_eq!(drain(&mut reader).len(), TIMESTAMPS.len() + 1);
            assert!(reader.error().is_none() && reader.warnings().is_empty());
        }
    }

    /// Drains every reader in its own thread (as the analysis shards do: the readers of one
    /// shared read must be consumed concurrently) and returns what each saw.
    type Drained = (Owned, Vec<Warning>, Option<u64>, Option<String>);

    /// Every frame through [`CaptureReader::next_frame_unpaced`].
    fn drain_unpaced(reader: &mut CaptureReader) -> Owned {
        let mut out = Vec::new();
        while let Some(f) = reader.next_frame_unpaced() {
            out.push((
                f.ts_ns,
                f.linktype,
                f.data.to_vec(),
                f.wire_len,
                f.interface,
            ));
        }
        out
    }

    /// Drains every reader on its own thread; odd-numbered readers through
    /// [`CaptureReader::next_frame_unpaced`], so that both ways meet the same checks.
    fn drain_all(readers: Vec<CaptureReader>) -> Vec<Drained> {
        let handles: Vec<_> = readers
            .into_iter()
            .enumerate()
            .map(|(index, mut reader)| {
                std::thread::spawn(move || {
                    let frames = if index % 2 == 1 {
                        drain_unpaced(&mut reader)
                    } else {
                        drain(&mut reader)
                    };
                    (
                        frames,
                        reader.warnings().to_vec(),
                        reader.truncated_at(),
                        reader.error().map(ToString::to_string),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("reader thread"))
            .collect()
    }

    #[test]
    fn shared_readers_parse_one_read_in_place_like_the_slice_parser() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pcap = big_pcap(700);
        let mut writer = PcapNgWriter::new(Vec::new()).expect("shb");
        writer.add_interface(1, 9).expect("idb");
        for i in 0..300 {
            writer
                .write_frame(0, i * 1000, &payload(i as usize))
                .expect("epb");
        }
        let pcapng = writer.into_inner();
        let cut = pcap[..pcap.len() - 7].to_vec();
        for (name, bytes) in [("a.pcap", &pcap), ("b.pcapng", &pcapng), ("c.pcap", &cut)] {
            let expected = slice_frames(bytes);
            let mut slice = frames(bytes).expect("header");
            slice.by_ref().count();
            for (name, contents) in [
                (name.to_string(), bytes.clone()),
                (format!("{name}.gz"), gzip(bytes)),
            ] {
                let path = dir.path().join(&name);
                std::fs::write(&path, &contents).expect("write");
                let input = CaptureInput::open(&path).expect("open");
                for chunk in [5, 97, 4096, 1 << 20] {
                    for count in [1, 3] {
                        let readers = input.shared_readers(count, chunk, chunk).expect("shared");
                        for (got, warnings, truncated_at, error) in drain_all(readers) {
                            assert_eq!(got, expected, "{name} chunk {chunk} count {count}");
                            assert_eq!(warnings, slice.warnings(), "{name} chunk {chunk}");
                            assert_eq!(truncated_at, slice.truncated_at(), "{name} chunk {chunk}");
                            assert_eq!(error, None);
                        }
                    }
                }
                // The sharing API as the shards use it: each takes its own reader.
                let shard_input = CaptureInput::open(&path).expect("open");
                let readers = (0..2)
                    .map(|i| shard_input.shard_reader(i, 2).expect("shard reader"))
                    .collect();
                for (got, ..) in drain_all(readers) {
                    assert_eq!(got, expected, "{name} shard readers");
                }
                assert!(shard_input.shard_reader(0, 2).is_err(), "taken once");
            }
        }
    }

    #[test]
    fn shared_readers_frames_borrow_the_shared_chunk() {
        let bytes = big_pcap(100);
        let source = ByteSource::Plain(Raw::stream(Box::new(io::Cursor::new(bytes.clone()))));
        let mut readers = share(source, Vec::new(), 1, 1 << 20, 1 << 20).expect("share");
        let mut reader = readers.pop().expect("reader");
        let mut in_chunk = 0;
        while let Some(data) = reader.next_frame().map(|f| f.data.as_ptr()) {
            // The frame was lent from the chunk the reader holds, not copied.
            in_chunk += usize::from(reader_chunk_range(&reader).contains(&data));
        }
        assert_eq!(in_chunk, 100);
    }

    fn reader_chunk_range(reader: &CaptureReader) -> std::ops::Range<*const u8> {
        reader
            .shared
            .as_deref()
            .and_then(|s| s.chunk.as_deref())
            .map_or(std::ptr::null()..std::ptr::null(), |c| {
                c.data().as_ptr_range()
            })
    }

    #[test]
    fn shared_read_hands_out_a_prefix_first() {
        // Standard input: the bytes read to check the header are handed out before the rest.
        let bytes = pcap_file(PcapOptions::new(1));
        let expected = slice_frames(&bytes);
        for split in [0, 1, 10, 24, 40, bytes.len()] {
            let rest = bytes[split..].to_vec();
            let source = ByteSource::Plain(Raw::stream(Box::new(io::Cursor::new(rest))));
            let readers = share(source, bytes[..split].to_vec(), 2, 13, 13).expect("share");
            for (got, ..) in drain_all(readers) {
                assert_eq!(got, expected, "split {split}");
            }
        }
    }

    #[test]
    fn a_file_that_shrinks_during_a_shared_read_ends_every_reader_with_the_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (bytes, path, input) = rotating_capture(dir.path());
        let readers = input.shared_readers(2, 64 << 10, 64 << 10).expect("shared");
        let barrier = Arc::new(std::sync::Barrier::new(3));
        let handles: Vec<_> = readers
            .into_iter()
            .map(|mut reader| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        assert!(reader.next_frame().is_some());
                    }
                    barrier.wait(); // the file is cut now
                    barrier.wait();
                    let rest = drain(&mut reader).len();
                    (
                        rest,
                        reader.warnings().to_vec(),
                        reader.error().map(ToString::to_string),
                    )
                })
            })
            .collect();
        barrier.wait();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open for write")
            .set_len(1000)
            .expect("truncate");
        barrier.wait();
        for handle in handles {
            let (rest, warnings, error) = handle.join().expect("reader");
            // The reading thread was at most a few chunks ahead when the file was cut.
            assert!(100 + rest < 20_000, "{rest}");
            assert!(warnings.is_empty(), "{warnings:?}");
            let error = error.expect("error");
            assert!(
                error.starts_with(&format!(
                    "the file shrank from {} to 1000 bytes while being read",
                    bytes.len()
                )),
                "{error}"
            );
        }
    }

    #[test]
    fn a_file_that_shrinks_under_its_mapped_window_ends_with_an_error_not_sigbus() {
        // One window maps the whole file, so the cut happens under a live mapping: the next
        // access past the new end would be SIGBUS without the handler of `mapped`.
        let dir = tempfile::tempdir().expect("tempdir");
        let (bytes, path, input) = rotating_capture(dir.path());
        let mut reader = input
            .shared_readers(1, 64 << 10, 1 << 30)
            .expect("shared")
            .pop()
            .expect("reader");
        let expected = slice_frames(&bytes);
        let mut got = drain_n(&mut reader, 100);
        let mapped = reader
            .shared
            .as_deref()
            .and_then(|s| s.chunk.as_deref())
            .is_some_and(|c| c.mapped.is_some());
        assert!(mapped, "a plain file is mapped, not read");
        let cut = 300_000u64;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(cut))
            .expect("truncate");
        got.extend(drain(&mut reader));
        // Reading stopped at the cut. Every frame before the page the file now ends in is the
        // file's; the rest of that page reads as zeros without a fault, so frames made of it
        // may come before the error.
        let page_start = cut - cut % 4096;
        let whole = (page_start as usize - 24) / (16 + 200);
        assert!(
            got.len() >= whole && got.len() < expected.len(),
            "{}",
            got.len()
        );
        assert_eq!(got[..whole], expected[..whole]);
        assert!(reader.warnings().is_empty(), "{:?}", reader.warnings());
        match reader.error() {
            Some(error @ CaptureError::Shrank { opened, now, read }) => {
                assert_eq!((*opened, *now), (bytes.len() as u64, cut));
                assert!(*read >= cut && *read < bytes.len() as u64, "{read}");
                assert!(error.to_string().starts_with(&format!(
                    "the file shrank from {} to {cut} bytes while being read",
                    bytes.len()
                )));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_file_replaced_after_its_check_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("capture.pcap");
        std::fs::write(&path, pcap_file(PcapOptions::new(1))).expect("write");
        let input = CaptureInput::open(&path).expect("open");
        // Rotation by rename: the name now points at another file.
        let other = dir.path().join("other.pcap");
        std::fs::write(&other, pcap_file(PcapOptions::new(1))).expect("write");
        std::fs::rename(&other, &path).expect("rename");
        assert!(matches!(input.reader(), Err(CaptureError::Replaced)));
    }

    #[test]
    fn devices_and_fifos_are_refused_without_reading() {
        match CaptureInput::open(Path::new("/dev/zero")) {
            Err(error @ CaptureError::NotAFile { .. }) => assert_eq!(
                error.to_string(),
                "is a character device, not a capture file"
            ),
            other => panic!("{:?}", other.err()),
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        // Opening a FIFO without a writer would block forever; this must return at once.
        match CaptureInput::open(&fifo) {
            Err(error @ CaptureError::NotAFile { .. }) => {
                assert!(
                    error
                        .to_string()
                        .starts_with("is a FIFO (named pipe), not a capture file: ")
                )
            }
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn streaming_reader_matches_the_slice_parser_across_buffer_boundaries() {
        let pcap = pcap_file(PcapOptions::new(1));
        let mut writer = PcapNgWriter::new(Vec::new()).expect("shb");
        writer.add_interface(1, 9).expect("idb");
        for (index, &ts) in TIMESTAMPS.iter().enumerate() {
            writer.write_frame(0, ts, &payload(index)).expect("epb");
        }
        let pcapng = writer.into_inner();
        for bytes in [&pcap, &pcapng] {
            let expected = slice_frames(bytes);
            assert_eq!(expected.len(), if bytes == &pcap { 6 } else { 5 });
            for (chunk, buffer) in [(1, 1), (1, 7), (3, 64), (1000, 16), (1 << 20, 1 << 20)] {
                let mut reader = stream(bytes, chunk, buffer).expect("header");
                assert_eq!(
                    drain(&mut reader),
                    expected,
                    "chunk {chunk} buffer {buffer}"
                );
                assert_eq!(reader.position(), bytes.len() as u64);
                assert!(reader.warnings().is_empty() && reader.error().is_none());
            }
        }
    }

    #[test]
    fn frames_borrow_the_read_buffer() {
        let bytes = pcap_file(PcapOptions::new(1));
        let mut reader = stream(&bytes, 1 << 20, 1 << 20).expect("header");
        let range = reader.buf.as_ptr_range();
        while let Some(frame) = reader.next_frame() {
            assert!(frame.data.is_empty() || range.contains(&frame.data.as_ptr()));
        }
    }

    #[test]
    fn a_cut_file_gives_one_truncated_warning_through_the_reader() {
        let bytes = pcap_file(PcapOptions::new(1));
        let cut = bytes.len() - 3;
        let mut reader = stream(&bytes[..cut], 5, 32).expect("header");
        assert_eq!(drain(&mut reader).len(), TIMESTAMPS.len());
        let last = (cut - (16 + payload(3).len() - 3)) as u64;
        assert_eq!(reader.truncated_at(), Some(last));
        assert_eq!(reader.warnings(), [Warning::Truncated { offset: last }]);
        assert!(reader.error().is_none());
    }

    #[test]
    fn unread_returns_the_same_frame_again() {
        let bytes = pcap_file(PcapOptions::new(1));
        let expected = slice_frames(&bytes);
        let mut reader = stream(&bytes, 2, 8).expect("header");
        let mut got = Vec::new();
        while let Some(first) = reader.next_frame().map(|f| (f.ts_ns, f.data.to_vec())) {
            reader.unread();
            let again = reader.next_frame().map(|f| (f.ts_ns, f.data.to_vec()));
            assert_eq!(again.as_ref(), Some(&first));
            got.push(first);
        }
        assert_eq!(got.len(), expected.len());
        assert!(
            got.iter()
                .zip(&expected)
                .all(|(g, e)| (g.0, &g.1) == (e.0, &e.2))
        );
    }

    #[test]
    fn gzip_is_read_directly_from_files_and_streams() {
        let bytes = big_pcap(3_000);
        let expected = slice_frames(&bytes);
        let compressed = gzip(&bytes);
        assert!(compressed.len() < bytes.len());
        let mut reader = stream(&compressed, 4096, 1 << 16).expect("header");
        assert_eq!(drain(&mut reader), expected);
        assert!(reader.error().is_none() && reader.warnings().is_empty());

        // Two gzip members one after the other are one stream (as `cat a.gz b.gz`).
        let mut two = gzip(&bytes[..1000]);
        two.extend(gzip(&bytes[1000..]));
        let mut reader = stream(&two, 4096, 1 << 16).expect("header");
        assert_eq!(drain(&mut reader), expected);

        let dir = tempfile::tempdir().expect("tempdir");
        // Detected by the magic bytes, whatever the name.
        let path = dir.path().join("capture.pcap");
        std::fs::write(&path, &compressed).expect("write");
        let input = CaptureInput::open(&path).expect("open");
        assert!(input.is_gzip());
        for _ in 0..2 {
            let mut reader = input.reader().expect("reader");
            assert_eq!(drain(&mut reader), expected);
            assert_eq!(reader.input_position(), compressed.len() as u64);
        }

        // A bad checksum is an error, not a silent end.
        let mut corrupt = compressed.clone();
        let crc = corrupt.len() - 8;
        corrupt[crc] ^= 1;
        let mut reader = stream(&corrupt, 4096, 1 << 16).expect("header");
        assert_eq!(drain(&mut reader), expected);
        assert!(
            matches!(reader.error(), Some(CaptureError::Gzip { .. })),
            "{:?}",
            reader.error()
        );
        // A gzip file cut short is a capture cut short: the frames before the cut, one warning.
        let cut = &compressed[..compressed.len() / 2];
        let mut reader = stream(cut, 4096, 1 << 16).expect("header");
        let got = drain(&mut reader);
        assert!(!got.is_empty() && got.len() < expected.len());
        assert_eq!(got, expected[..got.len()]);
        assert!(reader.error().is_none(), "{:?}", reader.error());
        let at = reader.truncated_at().expect("cut");
        assert_eq!(reader.warnings(), [Warning::Truncated { offset: at }]);
        assert_eq!(at, 24 + got.len() as u64 * (16 + 200));
    }

    #[test]
    fn other_compressions_are_named() {
        let zstd = [0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0];
        let error = frames(&zstd).err().expect("error");
        assert_eq!(
            error.to_string(),
            "zstd-compressed: decompress it first (only gzip is read directly)"
        );
        assert!(matches!(
            stream(b"BZh91AY&SY", 3, 16),
            Err(CaptureError::Compressed("bzip2"))
        ));
    }

    #[test]
    fn a_file_that_shrinks_while_read_ends_with_an_error() {
        let bytes = big_pcap(20_000);
        assert!(bytes.len() > 3 * READ_BUFFER);
        let dir = tempfile::tempdir().expect("tempdir");
        for compress in [false, true] {
            let path = dir.path().join(if compress {
                "rotating.pcap.gz"
            } else {
                "rotating.pcap"
            });
            let contents = if compress {
                gzip(&bytes)
            } else {
                bytes.clone()
            };
            std::fs::write(&path, &contents).expect("write");
            let input = CaptureInput::open(&path).expect("open");
            let mut reader = input.reader().expect("reader");
            // The first frames come from the first buffer-full; then the file is cut (as
            // logrotate's copytruncate does) before the reader gets to the rest.
            for _ in 0..100 {
                assert!(reader.next_frame().is_some());
            }
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .expect("open for write");
            file.set_len(1000).expect("truncate");
            let rest = drain(&mut reader);
            assert!(100 + rest.len() < 20_000, "compress {compress}");
            match reader.error() {
                Some(error @ CaptureError::Shrank { opened, now, read }) => {
                    assert_eq!((*opened, *now), (contents.len() as u64, 1000));
                    assert!(*read < contents.len() as u64);
                    assert!(error.to_string().starts_with(&format!(
                        "the file shrank from {} to 1000 bytes while being read",
                        contents.len()
                    )));
                }
                other => panic!("compress {compress}: {other:?}"),
            }
            // The cut is the error, not also a "cut short" warning.
            assert!(reader.warnings().is_empty(), "{:?}", reader.warnings());
        }
    }

    #[test]
    fn hostile_block_lengths_are_refused_and_large_blocks_are_read() {
        let mut writer = PcapNgWriter::new(Vec::new()).expect("shb");
        writer.add_interface(1, 9).expect("idb");
        let head = writer.into_inner();
        // A custom block claiming almost 4 GiB: refused from its header, nothing buffered.
        let mut bytes = head.clone();
        bytes.extend_from_slice(&0x0000_0bad_u32.to_le_bytes());
        bytes.extend_from_slice(&0xffff_fff0_u32.to_le_bytes());
        bytes.extend_from_slice(&[0; 64]);
        let mut reader = stream(&bytes, 1 << 20, 1024).expect("header");
        assert!(drain(&mut reader).is_empty());
        assert_eq!(
            reader.warnings(),
            [Warning::CorruptRecord {
                offset: head.len() as u64,
                reason: "pcapng block length above 16 MiB"
            }]
        );
        assert_eq!(reader.buf.len(), 1024, "the buffer did not grow");
        // A legitimate 2 MiB block (larger than the buffer) grows it once and is skipped;
        // the packet after it is read.
        let mut bytes = head;
        bytes.extend(block(false, 0x0000_0bad, &vec![7; 2 << 20]));
        bytes.extend(block(false, PCAPNG_EPB, &{
            let mut body = vec![0; 20];
            body[12] = 4;
            body[16] = 4;
            body.extend_from_slice(&[1, 2, 3, 4]);
            body
        }));
        let mut reader = stream(&bytes, 1 << 16, 1024).expect("header");
        assert_eq!(drain(&mut reader), slice_frames(&bytes));
        assert_eq!(slice_frames(&bytes).len(), 1);
        assert!(reader.buf.len() <= MAX_RECORD);
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
            let bytes = std::fs::read(&path).expect("read");
            let mut frames = frames(&bytes).expect("header");
            let got: Vec<_> = frames.by_ref().collect();
            // The streaming reader over the file gives the same frames.
            let input = CaptureInput::open(&path).expect("open");
            let streamed = drain(&mut input.reader().expect("reader"));
            assert_eq!(streamed.len(), got.len(), "{name}");
            assert!(
                streamed
                    .iter()
                    .zip(&got)
                    .all(|(s, g)| (s.0, s.2.as_slice()) == (g.ts_ns, g.data)),
                "{name}"
            );
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
        fn streaming_reader_agrees_with_slice_parser(
            head in prop_oneof![Just(0u8), Just(1), Just(2)],
            tail in proptest::collection::vec(any::<u8>(), 0..600),
            chunk in 1usize..70,
            buffer in 1usize..100,
        ) {
            let mut bytes = match head {
                0 => PcapWriter::new(Vec::new(), 1).expect("header").into_inner(),
                1 => {
                    let mut writer = PcapNgWriter::new(Vec::new()).expect("shb");
                    writer.add_interface(1, 9).expect("idb");
                    writer.into_inner()
                }
                _ => Vec::new(),
            };
            bytes.extend_from_slice(&tail);
            prop_assume!(!bytes.starts_with(&GZIP_MAGIC));
            match (frames(&bytes), stream(&bytes, chunk, buffer)) {
                (Ok(mut slice), Ok(mut reader)) => {
                    let expected: Owned = slice
                        .by_ref()
                        .map(|f| (f.ts_ns, f.linktype, f.data.to_vec(), f.wire_len, f.interface))
                        .collect();
                    prop_assert_eq!(drain(&mut reader), expected);
                    prop_assert_eq!(reader.warnings(), slice.warnings());
                    prop_assert_eq!(reader.truncated_at(), slice.truncated_at());
                    prop_assert_eq!(reader.position(), slice.position() as u64);
                    prop_assert!(reader.error().is_none());
                }
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => prop_assert!(false, "{:?} vs {:?}", a.err(), b.err().map(|e| e.to_string())),
            }
        }

        #[test]
        fn shared_readers_agree_with_slice_parser(
            head in prop_oneof![Just(0u8), Just(1)],
            tail in proptest::collection::vec(any::<u8>(), 0..600),
            chunk in 1usize..70,
        ) {
            let mut bytes = if head == 0 {
                PcapWriter::new(Vec::new(), 1).expect("header").into_inner()
            } else {
                let mut writer = PcapNgWriter::new(Vec::new()).expect("shb");
                writer.add_interface(1, 9).expect("idb");
                writer.into_inner()
            };
            bytes.extend_from_slice(&tail);
            let mut slice = frames(&bytes).expect("header");
            let expected: Owned = slice
                .by_ref()
                .map(|f| (f.ts_ns, f.linktype, f.data.to_vec(), f.wire_len, f.interface))
                .collect();
            let source = ByteSource::Plain(Raw::stream(Box::new(io::Cursor::new(bytes.clone()))));
            let readers = share(source, Vec::new(), 2, chunk, chunk).expect("share");
            for (got, warnings, truncated_at, error) in drain_all(readers) {
                prop_assert_eq!(&got, &expected);
                prop_assert_eq!(warnings.as_slice(), slice.warnings());
                prop_assert_eq!(truncated_at, slice.truncated_at());
                prop_assert_eq!(error, None);
            }
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
