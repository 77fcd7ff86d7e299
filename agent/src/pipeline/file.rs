//! Capture files as a [`Source`]: the frames of several pcap/pcapng files in order, as one
//! capture, either as fast as possible (`analyze`, `replay --speed max`) or paced by packet
//! time against the wall clock (`replay --speed realtime`).
//!
//! Frames are lent straight out of the memory map. The pacing sleeps here, in the source, so
//! the analysis behind it still sees packet time only. This module must not decode packets or
//! print; per-file warnings are kept for the caller.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::source::{Next, Source, SourceError, Wait};
use crate::capture::{CaptureError, CaptureFile, Frame, Frames};

/// Progress of the current file: (path, bytes consumed, total bytes).
pub type Progress<'a> = &'a mut dyn FnMut(&Path, u64, u64);

/// Frames between progress callbacks (keeps the callback off the hot path).
const PROGRESS_EVERY: u64 = 1 << 16;

/// Frames per batch at full speed: enough to amortise the loop's per-batch work.
const BATCH: usize = 1024;

/// An opened capture file.
pub struct InputFile {
    pub path: PathBuf,
    pub file: CaptureFile,
}

/// Opens and checks every file first, so a bad path fails before any work is done.
pub fn open_files(files: &[PathBuf]) -> Result<Vec<InputFile>, (PathBuf, CaptureError)> {
    files
        .iter()
        .map(|path| {
            let file = CaptureFile::open(path).map_err(|e| (path.clone(), e))?;
            file.frames().map_err(|e| (path.clone(), e))?;
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
    current: Option<Frames<'a>>,
    /// A frame read ahead while pacing (its time had not come yet).
    pending: Option<Frame<'a>>,
    ends: Vec<FileEnd>,
    progress: Option<Progress<'p>>,
    frames_read: u64,
    pace: Pace,
    /// Pacing origin: the first frame's packet time and the wall instant it was delivered.
    origin: Option<(i64, Instant)>,
}

impl<'a, 'p> FileSource<'a, 'p> {
    pub fn new(files: &'a [InputFile], pace: Pace, progress: Option<Progress<'p>>) -> Self {
        FileSource {
            files,
            index: 0,
            current: None,
            pending: None,
            ends: Vec::with_capacity(files.len()),
            progress,
            frames_read: 0,
            pace,
            origin: None,
        }
    }

    /// How each finished file ended, in order.
    pub fn ends(&self) -> &[FileEnd] {
        &self.ends
    }

    /// The wall instant for packet time `ts_ns` (realtime pacing).
    fn wall_for(&mut self, ts_ns: i64) -> Instant {
        let (t0, w0) = *self.origin.get_or_insert((ts_ns, Instant::now()));
        let ahead = u64::try_from(ts_ns.saturating_sub(t0)).unwrap_or(0);
        w0 + Duration::from_nanos(ahead)
    }

    fn finish_file(&mut self) -> Next {
        if let Some(frames) = self.current.take() {
            let mut warnings: Vec<String> =
                frames.warnings().iter().map(ToString::to_string).collect();
            if let Some(at) = frames.truncated_at() {
                warnings.insert(
                    0,
                    format!(
                        "file ends in the middle of a record at byte {at}: analysed up to there"
                    ),
                );
            }
            self.ends.push(FileEnd {
                truncated_at: frames.truncated_at(),
                warnings,
            });
        }
        if let (Some(cb), Some(input)) = (self.progress.as_mut(), self.files.get(self.index)) {
            let total = input.file.bytes().len() as u64;
            cb(&input.path, total, total);
        }
        self.index += 1;
        Next::FileDone
    }

    #[inline]
    fn count_frame(&mut self) {
        self.frames_read += 1;
        if self.frames_read.is_multiple_of(PROGRESS_EVERY)
            && let (Some(cb), Some(input), Some(frames)) = (
                self.progress.as_mut(),
                self.files.get(self.index),
                self.current.as_ref(),
            )
        {
            cb(
                &input.path,
                frames.position() as u64,
                input.file.bytes().len() as u64,
            );
        }
    }
}

impl Source for FileSource<'_, '_> {
    fn next<F: FnMut(Frame<'_>)>(
        &mut self,
        wait: Wait,
        mut on_frame: F,
    ) -> Result<Next, SourceError> {
        if self.current.is_none() {
            let Some(input) = self.files.get(self.index) else {
                return Ok(Next::End);
            };
            self.current = Some(input.file.frames()?);
        }
        match self.pace {
            Pace::Max => {
                for _ in 0..BATCH {
                    let Some(frame) = self.current.as_mut().and_then(Iterator::next) else {
                        return Ok(self.finish_file());
                    };
                    on_frame(frame);
                    self.count_frame();
                }
                Ok(Next::Frames)
            }
            Pace::Realtime => {
                let frame = match self.pending.take() {
                    Some(f) => f,
                    None => match self.current.as_mut().and_then(Iterator::next) {
                        Some(f) => {
                            self.count_frame();
                            f
                        }
                        None => return Ok(self.finish_file()),
                    },
                };
                // A deadline before the frame's time: sleep until the deadline only, so
                // interval reports come out on time during a pause in the capture.
                if let Wait::Until(deadline) = wait
                    && deadline < frame.ts_ns
                {
                    let at = self.wall_for(deadline);
                    sleep_until(at);
                    self.pending = Some(frame);
                    return Ok(Next::Quiet(deadline));
                }
                let at = self.wall_for(frame.ts_ns);
                if wait != Wait::NoWait {
                    sleep_until(at);
                }
                on_frame(frame);
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
