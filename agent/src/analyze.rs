//! Offline analysis (`voqa-agent analyze`): capture files → the pipeline's worker loop →
//! results, with per-file counters and an optional progress callback. Files are analysed in the
//! order given, as one capture; with several threads each runs the same loop over every frame
//! and measures its shard of the RTP flows, and the shards' results are merged.
//!
//! The shards share one read of each input (`FileSource::sharing`): a thread reads it into
//! chunks that every shard parses in place, whatever the number of threads, beside the
//! analysis rather than in its way (also with one thread): a plain file is mapped in windows
//! (not copied out of the kernel at all), a gzip file decompressed once; standard input works
//! the same way.
//!
//! It must not print (the binary decides what to show) and never stops on bad packets: only a
//! file that cannot be opened, is not a capture, or fails while it is read (it shrank, a read
//! error, corrupt gzip data) is an error.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use voqa_wire::FileSummary;

use crate::capture::CaptureError;
use crate::pipeline::file::{FileEnd, FileSource, Pace, open_files};
use crate::pipeline::{InputFile, Output, Worker};
use crate::streams::{AnalysisResult, Analyzer, AnalyzerConfig, Counters, WindowReport};

pub use crate::pipeline::file::Progress;

/// A file that could not be analysed. The message is "PATH: reason"; the reason is not also
/// exposed as `source()`, so printing the error with its chain states it once.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", path.display())]
pub struct AnalyzeError {
    pub path: PathBuf,
    pub error: CaptureError,
}

/// The analyzers after their results were taken ([`Analyzer::take_result`]): flow index, SDP
/// registry, call tables. Dropping it frees them; a process that exits right after the
/// analysis can `std::mem::forget` it instead and skip freeing them one by one (a few percent
/// of a run with tens of thousands of streams and calls).
pub struct Spent(#[allow(dead_code)] Vec<Analyzer>);

/// Analyses `paths` in order as one capture, with `threads` workers (each reads every frame and
/// measures its shard of the RTP flows; results are identical to one thread's).
pub fn analyze_files(
    paths: &[PathBuf],
    cfg: AnalyzerConfig,
    threads: usize,
    progress: Option<Progress<'_>>,
) -> Result<(Vec<FileSummary>, AnalysisResult), AnalyzeError> {
    analyze_files_keeping(paths, cfg, threads, progress).map(|(files, result, _)| (files, result))
}

/// [`analyze_files`], also returning the spent analyzers, for the caller to drop or forget.
pub fn analyze_files_keeping(
    paths: &[PathBuf],
    cfg: AnalyzerConfig,
    threads: usize,
    progress: Option<Progress<'_>>,
) -> Result<(Vec<FileSummary>, AnalysisResult, Spent), AnalyzeError> {
    // Open everything first so a bad path fails fast, before minutes of work.
    let opened = open_files(paths).map_err(|(path, error)| AnalyzeError { path, error })?;
    let threads = threads.clamp(1, 64) as u32;
    if threads == 1 {
        // A shared read with one shard too: the reading thread does the kernel copy (and any
        // gzip decompression) beside the analysis instead of in its way.
        return run_shard(&opened, cfg, progress, Some((0, 1)))
            .map(|(files, result, spent)| (files, result, Spent(vec![spent])));
    }
    let mut results: Vec<Result<(Vec<FileSummary>, AnalysisResult, Analyzer), AnalyzeError>> =
        Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads)
            .map(|index| {
                let cfg = AnalyzerConfig {
                    shard: Some((index, threads)),
                    ..cfg.clone()
                };
                let opened = &opened;
                let share = Some((index as usize, threads as usize));
                scope.spawn(move || run_shard(opened, cfg, None, share))
            })
            .collect();
        let first = run_shard(
            &opened,
            AnalyzerConfig {
                shard: Some((0, threads)),
                ..cfg.clone()
            },
            progress,
            Some((0, threads as usize)),
        );
        results.push(first);
        for h in handles {
            match h.join() {
                Ok(r) => results.push(r),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    let mut results = results
        .into_iter()
        .collect::<Result<Vec<_>, AnalyzeError>>()?
        .into_iter();
    let Some((files, mut merged, first)) = results.next() else {
        return run_shard(&opened, cfg, None, None)
            .map(|(files, result, spent)| (files, result, Spent(vec![spent])));
    };
    let mut spent = vec![first];
    // Frame, SIP (over UDP and TCP) and RTCP counts and the calls are the same in every shard
    // (each read every frame); streams and the per-stream counters are disjoint and add up.
    for (_, shard, analyzer) in results {
        spent.push(analyzer);
        merged.streams.extend(shard.streams);
        let (c, s) = (&mut merged.counters, shard.counters);
        c.rtp += s.rtp;
        c.rtp_malformed += s.rtp_malformed;
        c.streams_refused += s.streams_refused;
        c.candidates_dropped += s.candidates_dropped;
        c.streams_rejected += s.streams_rejected;
        c.streams_evicted += s.streams_evicted;
    }
    // Sorts (key, index) pairs and then moves each result once: a comparison sort moving the
    // large results themselves cost several percent of a run with 50,000 streams. Stable.
    merged
        .streams
        .sort_by_cached_key(|s| (s.first_ns, s.key.src, s.key.dst, s.key.ssrc));
    Ok((files, merged, Spent(spent)))
}

/// The offline output: no interval reports exist without a report interval; it keeps the
/// analyzer's counters at the end of each file, for the per-file summaries.
#[derive(Default)]
struct CollectFiles {
    at_file_end: Vec<Counters>,
}

impl Output for CollectFiles {
    fn reports(&mut self, _reports: std::vec::IntoIter<WindowReport>) {}

    fn file_done(&mut self, counters: &Counters) {
        self.at_file_end.push(*counters);
    }
}

fn run_shard(
    opened: &[InputFile],
    cfg: AnalyzerConfig,
    progress: Option<Progress<'_>>,
    share: Option<(usize, usize)>,
) -> Result<(Vec<FileSummary>, AnalysisResult, Analyzer), AnalyzeError> {
    let mut worker = Worker::new(Analyzer::new(cfg));
    let mut source = FileSource::new(opened, Pace::Max, progress);
    if let Some((index, count)) = share {
        source = source.sharing(index, count);
    }
    let mut out = CollectFiles::default();
    worker.run(&mut source, &mut out, &AtomicBool::new(false));
    if let Some((path, error)) = source.take_error() {
        return Err(AnalyzeError { path, error });
    }
    // Datagrams still incomplete at the end are counted by `finish`: the last file's summary
    // takes its counters from there, so that every fragment of the file is accounted for.
    let mut analyzer = worker.into_analyzer();
    let result = analyzer.take_result();
    let mut summaries = Vec::with_capacity(opened.len());
    let mut before = Counters::default();
    let no_end = FileEnd::default();
    for (i, input) in opened.iter().enumerate() {
        let after = if i + 1 == opened.len() {
            result.counters
        } else {
            out.at_file_end.get(i).copied().unwrap_or(before)
        };
        let end = source.ends().get(i).unwrap_or(&no_end);
        summaries.push(FileSummary {
            path: input.path.display().to_string(),
            packets: after.frames - before.frames,
            bytes: after.bytes - before.bytes,
            skipped: voqa_wire::Skipped {
                non_udp: after.skipped.non_udp - before.skipped.non_udp,
                truncated: after.skipped.truncated - before.skipped.truncated,
                fragments: after.skipped.fragments - before.skipped.fragments,
                malformed: after.skipped.malformed - before.skipped.malformed,
            },
            ip_reassembly: reassembly_since(&after.ip_reassembly, &before.ip_reassembly),
            truncated_at: end.truncated_at,
            warnings: end.warnings.clone(),
            sip_tcp: {
                let tcp = after.sip_tcp.since(&before.sip_tcp);
                voqa_wire::SipTcp {
                    segments: tcp.segments,
                    messages: tcp.messages,
                    websocket_messages: tcp.websocket_messages,
                    connections_evicted: tcp.evicted,
                    resyncs: tcp.resyncs,
                    bytes_dropped: tcp.bytes_dropped,
                }
            },
        });
        before = after;
    }
    Ok((summaries, result, analyzer))
}

/// The reassembly counters between two points of the run.
fn reassembly_since(
    after: &voqa_wire::IpReassembly,
    before: &voqa_wire::IpReassembly,
) -> voqa_wire::IpReassembly {
    voqa_wire::IpReassembly {
        reassembled: after.reassembled - before.reassembled,
        not_udp: after.not_udp - before.not_udp,
        malformed: after.malformed - before.malformed,
        duplicates: after.duplicates - before.duplicates,
        overlapping: after.overlapping - before.overlapping,
        inconsistent: after.inconsistent - before.inconsistent,
        too_big: after.too_big - before.too_big,
        evicted: after.evicted - before.evicted,
        timed_out: after.timed_out - before.timed_out,
        incomplete: after.incomplete - before.incomplete,
    }
}
