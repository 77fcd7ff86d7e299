//! Capture files as a [`Source`]: the frames of several pcap/pcapng inputs (files, standard
//! input, gzip-compressed either) in order, as one capture, either as fast as possible
//! (`analyze`, `replay --speed max`) or paced by packet time against the wall clock
//! (`replay --speed realtime`).
//!
//! Frames are lent straight out of each input's read buffer ([`CaptureReader`]). The pacing
//! sleeps here, in the source, so the analysis behind it still sees packet time only. This
//! module must not decode packets or print; per-file warnings and the error that ended an
//! input early are kept for the caller.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::source::{Next, Source, SourceError, Wait};
use crate::capture::{CaptureError, CaptureInput, CaptureReader, Frame};

/// Progress of the current file: (path, bytes consumed, total bytes).
pub type Progress<'a> = &'a mut dyn FnMut(&Path, u64, u64);

/// Frames between progress callbacks (keeps the callback off the hot path).
const PROGRESS_EVERY: u64 = 1 << 16;

/// Frames per batch at full speed: enough to amortise the loop's per-batch work.
const BATCH: usize = 1024;

/// An opened capture input (its header checked).
pub struct InputFile {
    pub path: PathBuf,
    pub file: CaptureInput,
}

/// Opens and checks every input first, so a bad path fails before any work is done.
/// `-` is standard input, and may be given once.
pub fn open_files(files: &[PathBuf]) -> Result<Vec<InputFile>, (PathBuf, CaptureError)> {
    let mut stdin_seen = false;
    files
        .iter()
        .map(|path| {
            if path.as_os_str() == crate::capture::file::STDIN_PATH {
                if stdin_seen {
                    return Err((path.clone(), CaptureError::StdinReadTwice));
                }
                stdin_seen = true;
            }
            let file = CaptureInput::open(path).map_err(|e| (path.clone(), e))?;
            Ok(InputFile {
                path: path.clone(),
                file,
            })
        })
        .collect()
}

/// How a finished file ended (for the `files` summary of `analyze`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileEnd {
    /// Byte offset of the record the file was cut short in.
    pub truncated_at: Option<u64>,
    pub warnings: Vec<String>,
}

/// How fast a file source delivers frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pace {
    /// As fast as the worker takes them.
    #[default]
    Max,
    /// Each frame at its packet time, relative to the first frame, on the wall clock.
    Realtime,
}

/// The frames of `files`, in order (`'a`: the files, `'p`: the progress callback).
pub struct FileSource<'a, 'p> {
    files: &'a [InputFile],
    index: usize,
    current: Option<CaptureReader>,
    /// The read buffer of the last finished input, for the next one (no allocation between).
    spare: Option<Vec<u8>>,
    /// The current reader's frame last read was not delivered yet (its time had not come).
    pending: bool,
    ends: Vec<FileEnd>,
    /// The error that ended the source early: which input, and why.
    failed: Option<(PathBuf, CaptureError)>,
    progress: Option<Progress<'p>>,
    frames_read: u64,
    first_ns: Option<i64>,
    pace: Pace,
    /// Reader `.0` of `.1` sharing one read of each input (analysis shards), if set.
    share: Option<(usize, usize)>,
    /// Pacing origin: the first frame's packet time and the wall instant it was delivered.
    origin: Option<(i64, Instant)>,
}

impl<'a, 'p> FileSource<'a, 'p> {
    pub fn new(files: &'a [InputFile], pace: Pace, progress: Option<Progress<'p>>) -> Self {
        FileSource {
            files,
            index: 0,
            current: None,
            spare: None,
            pending: false,
            ends: Vec::with_capacity(files.len()),
            failed: None,
            progress,
            frames_read: 0,
            first_ns: None,
            pace,
            share: None,
            origin: None,
        }
    }

    /// Makes this source reader `index` of `count` that share one read of each input (one
    /// kernel copy and one decompression for all): for shards that all read every frame, each
    /// in its own thread. All `count` sources must be read concurrently.
    pub fn sharing(mut self, index: usize, count: usize) -> Self {
        self.share = Some((index, count));
        self
    }

    /// How each finished file ended, in order.
    pub fn ends(&self) -> &[FileEnd] {
        &self.ends
    }

    /// The error that stopped reading before the end of the inputs (a file that shrank while
    /// it was read, a read error, corrupt gzip data), with the input's path.
    pub fn error(&self) -> Option<&(PathBuf, CaptureError)> {
        self.failed.as_ref()
    }

    pub fn take_error(&mut self) -> Option<(PathBuf, CaptureError)> {
        self.failed.take()
    }

    /// Packet time of the first frame delivered.
    pub fn first_ns(&self) -> Option<i64> {
        self.first_ns
    }

    fn finish_file(&mut self) -> Next {
        if let Some(mut reader) = self.current.take() {
            if let Some(error) = reader.take_error() {
                let path = self.files.get(self.index).map(|i| i.path.clone());
                self.failed = Some((path.unwrap_or_default(), error));
                return Next::End;
            }
            // One line per problem: a cut file is the `Truncated` warning, nothing more.
            self.ends.push(FileEnd {
                truncated_at: reader.truncated_at(),
                warnings: reader.warnings().iter().map(ToString::to_string).collect(),
            });
            self.spare = Some(reader.into_buffer());
            if let (Some(cb), Some(input)) = (self.progress.as_mut(), self.files.get(self.index))
                && let Some(total) = input.file.len()
            {
                cb(&input.path, total, total);
            }
        }
        self.index += 1;
        Next::FileDone
    }

    /// Counts `n` delivered frames; calls the progress callback every [`PROGRESS_EVERY`].
    #[inline]
    fn count_frames(&mut self, n: u64) {
        let before = self.frames_read;
        self.frames_read += n;
        if before / PROGRESS_EVERY != self.frames_read / PROGRESS_EVERY
            && let (Some(cb), Some(input), Some(reader)) = (
                self.progress.as_mut(),
                self.files.get(self.index),
                self.current.as_ref(),
            )
            && let Some(total) = input.file.len()
        {
            cb(&input.path, reader.input_position(), total);
        }
    }

    /// Opens the reader of the current input; `false` when there is none left or it failed.
    fn open_current(&mut self) -> Result<bool, SourceError> {
        if self.current.is_some() {
            return Ok(true);
        }
        let Some(input) = self.files.get(self.index) else {
            return Ok(false);
        };
        let reader = match self.share {
            Some((index, count)) => input.file.shard_reader(index, count),
            None => input.file.reader_with_buffer(self.spare.take()),
        };
        match reader {
            Ok(reader) => {
                self.current = Some(reader);
                Ok(true)
            }
            Err(error) => {
                self.failed = Some((input.path.clone(), error));
                Ok(false)
            }
        }
    }
}

/// The wall instant for packet time `ts_ns` (realtime pacing).
fn wall_for(origin: &mut Option<(i64, Instant)>, ts_ns: i64) -> Instant {
    let (t0, w0) = *origin.get_or_insert((ts_ns, Instant::now()));
    let ahead = u64::try_from(ts_ns.saturating_sub(t0)).unwrap_or(0);
    w0 + Duration::from_nanos(ahead)
}

impl Source for FileSource<'_, '_> {
    fn next<F: FnMut(Frame<'_>)>(
        &mut self,
        wait: Wait,
        mut on_frame: F,
    ) -> Result<Next, SourceError> {
        if self.failed.is_some() || !self.open_current()? {
            return Ok(Next::End);
        }
        match self.pace {
            Pace::Max => {
                let mut delivered = 0u64;
                let mut ended = false;
                if let Some(reader) = self.current.as_mut() {
                    while delivered < BATCH as u64 {
                        // Never unread at full speed: no bookkeeping for it.
                        let Some(frame) = reader.next_frame_unpaced() else {
                            ended = true;
                            break;
                        };
                        self.first_ns.get_or_insert(frame.ts_ns);
                        on_frame(frame);
                        delivered += 1;
                    }
                }
                self.count_frames(delivered);
                if ended {
                    return Ok(self.finish_file());
                }
                Ok(Next::Frames)
            }
            Pace::Realtime => {
                let Some(reader) = self.current.as_mut() else {
                    return Ok(Next::End);
                };
                let first_read = !std::mem::take(&mut self.pending);
                let Some(frame) = reader.next_frame() else {
                    return Ok(self.finish_file());
                };
                let ts_ns = frame.ts_ns;
                // A deadline before the frame's time: sleep until the deadline only, so
                // interval reports come out on time during a pause in the capture.
                if let Wait::Until(deadline) = wait
                    && deadline < ts_ns
                {
                    reader.unread();
                    self.pending = true;
                    sleep_until(wall_for(&mut self.origin, deadline));
                    if first_read {
                        self.count_frames(1);
                    }
                    return Ok(Next::Quiet(deadline));
                }
                let at = wall_for(&mut self.origin, ts_ns);
                if wait != Wait::NoWait {
                    sleep_until(at);
                }
                self.first_ns.get_or_insert(ts_ns);
                on_frame(frame);
                if first_read {
                    self.count_frames(1);
                }
                Ok(Next::Frames)
            }
        }
    }
}

fn sleep_until(at: Instant) {
    let left = at.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        std::thread::sleep(left);
    }
}
