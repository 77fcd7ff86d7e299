//! The offline pipeline: capture files → `Analyzer` → results, with per-file counters and an
//! optional progress callback. Files are analysed in the order given, as one capture.
//!
//! It must not print (the binary decides what to show) and never stops on bad packets: only a
//! file that cannot be opened or is not a capture is an error.

use std::path::{Path, PathBuf};

use voqa_wire::FileSummary;

use crate::capture::{CaptureError, CaptureFile};
use crate::streams::{AnalysisResult, Analyzer, AnalyzerConfig};

/// A file that could not be analysed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct AnalyzeError {
    pub path: PathBuf,
    #[source]
    pub source: CaptureError,
}

/// Progress of the current file: (path, bytes consumed, total bytes).
pub type Progress<'a> = &'a mut dyn FnMut(&Path, u64, u64);

/// Frames between progress callbacks (keeps the callback off the hot path).
const PROGRESS_EVERY: u64 = 1 << 16;

/// Analyses `paths` in order as one capture, with `threads` workers (each reads every frame and
/// measures its shard of the RTP flows; results are identical to one thread's).
pub fn analyze_files(
    paths: &[PathBuf],
    cfg: AnalyzerConfig,
    threads: usize,
    progress: Option<Progress<'_>>,
) -> Result<(Vec<FileSummary>, AnalysisResult), AnalyzeError> {
    // Open everything first so a bad path fails fast, before minutes of work.
    let mut opened = Vec::with_capacity(paths.len());
    for path in paths {
        let file = CaptureFile::open(path).map_err(|source| AnalyzeError {
            path: path.clone(),
            source,
        })?;
        file.frames().map_err(|source| AnalyzeError {
            path: path.clone(),
            source,
        })?;
        opened.push((path.clone(), file));
    }
    let threads = threads.clamp(1, 64) as u32;
    if threads == 1 {
        return run_shard(&opened, cfg, progress);
    }
    let mut results: Vec<Result<(Vec<FileSummary>, AnalysisResult), AnalyzeError>> = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads)
            .map(|index| {
                let cfg = AnalyzerConfig {
                    shard: Some((index, threads)),
                    ..cfg.clone()
                };
                let opened = &opened;
                scope.spawn(move || run_shard(opened, cfg, None))
            })
            .collect();
        let first = run_shard(
            &opened,
            AnalyzerConfig {
                shard: Some((0, threads)),
                ..cfg.clone()
            },
            progress,
        );
        results.push(first);
        for h in handles {
            match h.join() {
                Ok(r) => results.push(r),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    let mut results = results.into_iter();
    let (files, mut merged) = match results.next() {
        Some(r) => r?,
        None => return run_shard(&opened, cfg, None),
    };
    // Frame, SIP and RTCP counts and the calls are the same in every shard (each read every
    // frame); streams and the per-stream counters are disjoint and add up.
    for r in results {
        let (_, shard) = r?;
        merged.streams.extend(shard.streams);
        let (c, s) = (&mut merged.counters, shard.counters);
        c.rtp += s.rtp;
        c.rtp_malformed += s.rtp_malformed;
        c.streams_refused += s.streams_refused;
        c.candidates_dropped += s.candidates_dropped;
        c.streams_rejected += s.streams_rejected;
        c.streams_evicted += s.streams_evicted;
    }
    merged.streams.sort_by(|a, b| {
        (a.first_ns, a.key.src, a.key.dst, a.key.ssrc)
            .cmp(&(b.first_ns, b.key.src, b.key.dst, b.key.ssrc))
    });
    Ok((files, merged))
}

fn run_shard(
    opened: &[(PathBuf, CaptureFile)],
    cfg: AnalyzerConfig,
    mut progress: Option<Progress<'_>>,
) -> Result<(Vec<FileSummary>, AnalysisResult), AnalyzeError> {
    let mut analyzer = Analyzer::new(cfg);
    let mut summaries = Vec::with_capacity(opened.len());
    for (path, file) in opened {
        let before = *analyzer.counters();
        let mut frames = file.frames().map_err(|source| AnalyzeError {
            path: path.clone(),
            source,
        })?;
        let total = file.bytes().len() as u64;
        let mut n: u64 = 0;
        while let Some(frame) = frames.next() {
            analyzer.on_frame(frame.ts_ns, frame.linktype, frame.data, frame.wire_len);
            n += 1;
            if n.is_multiple_of(PROGRESS_EVERY)
                && let Some(cb) = progress.as_mut()
            {
                cb(path, frames.position() as u64, total);
            }
        }
        if let Some(cb) = progress.as_mut() {
            cb(path, total, total);
        }
        let after = *analyzer.counters();
        let mut warnings: Vec<String> = frames.warnings().iter().map(ToString::to_string).collect();
        if let Some(at) = frames.truncated_at() {
            warnings.insert(
                0,
                format!("file ends in the middle of a record at byte {at}: analysed up to there"),
            );
        }
        summaries.push(FileSummary {
            path: path.display().to_string(),
            packets: after.frames - before.frames,
            bytes: after.bytes - before.bytes,
            skipped: voqa_wire::Skipped {
                non_udp: after.skipped.non_udp - before.skipped.non_udp,
                truncated: after.skipped.truncated - before.skipped.truncated,
                fragments: after.skipped.fragments - before.skipped.fragments,
                malformed: after.skipped.malformed - before.skipped.malformed,
            },
            truncated_at: frames.truncated_at(),
            warnings,
        });
    }
    Ok((summaries, analyzer.finish()))
}
