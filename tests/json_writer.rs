//! The hand-written `analyze --format json` writer (`report::json`) against serde_json: for
//! every capture in `../shared/samples` and `../shared/real-captures`, the document analysed
//! from it is written both ways and the bytes must be identical, with pseudonyms and without,
//! with one thread and with two. serde_json's pretty printer of the same document (the wire
//! types' serde derive) is the reference; the owned `AnalyzeOutput` the table is built from
//! must serialise to the same bytes too, so the writer is also checked against the document's
//! plain owned form, not only against the borrowed views it shares code with.
//!
//! Without the shared captures the trials are reported as ignored (they fail under
//! `$VOQA_REQUIRE_SAMPLES`).

mod support;

use std::path::{Path, PathBuf};

use voqa_agent::analyze::analyze_files;
use voqa_agent::report::{analysis_settings, analyze_document, json};
use voqa_agent::streams::AnalyzerConfig;
use voqa_agent::streams::privacy::Pseudonymizer;

fn main() {
    let trials = trials![samples, real_captures];
    support::harness::main(file!(), trials)
}

fn samples() {
    let Some(dir) = support::samples_dir("json_writer::samples") else {
        return;
    };
    compare_dir(&dir);
}

fn real_captures() {
    let Some(dir) = support::real_captures_dir("json_writer::real_captures") else {
        return;
    };
    compare_dir(&dir);
}

fn compare_dir(dir: &Path) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the capture directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x != "md" && x != "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{}: too few captures", dir.display());
    let mut streams = 0;
    let mut calls = 0;
    for file in &files {
        for threads in [1, 2] {
            for privacy in [
                Pseudonymizer::with_key(b"json-writer"),
                Pseudonymizer::disabled(),
            ] {
                let (s, c) = compare(file, threads, &privacy);
                streams += s;
                calls += c;
            }
        }
    }
    // The comparison covered real streams and calls, not empty documents only.
    assert!(streams > 0 && calls > 0, "{streams} streams, {calls} calls");
}

/// Writes `file`'s document both ways and asserts the bytes are equal; its streams and calls.
fn compare(file: &Path, threads: usize, privacy: &Pseudonymizer) -> (usize, usize) {
    let cfg = AnalyzerConfig::default();
    let settings = analysis_settings(&cfg);
    let jitter_buffer = cfg.jitter_buffer.to_string();
    let (files, result) = analyze_files(&[file.to_path_buf()], cfg, threads, None)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut doc = analyze_document(files, &result, privacy, &jitter_buffer);
    doc.analysis = Some(settings);
    let mut ours = Vec::new();
    json::write_document(&doc, &mut ours).expect("write the document");
    let theirs = serde_json::to_vec_pretty(&doc).expect("serialise the document");
    let what = format!("{} (threads {threads}, {privacy:?})", file.display());
    if ours != theirs {
        let at = ours
            .iter()
            .zip(&theirs)
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(theirs.len()));
        let around = |b: &[u8]| {
            String::from_utf8_lossy(&b[at.saturating_sub(200)..(at + 200).min(b.len())])
                .into_owned()
        };
        panic!(
            "{what}: the writer differs from serde_json at byte {at}:\n--- ours\n{}\n--- serde_json\n{}",
            around(&ours),
            around(&theirs)
        );
    }
    let owned = doc.to_output();
    assert_eq!(
        serde_json::to_vec_pretty(&owned).expect("serialise the owned document"),
        ours,
        "{what}: the owned document differs"
    );
    (owned.streams.len(), owned.calls.len())
}
