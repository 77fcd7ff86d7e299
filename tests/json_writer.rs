//! The hand-written `analyze --format json` writer (`report::json`) against serde_json: for
//! every capture in `../shared/samples` and `../shared/real-captures`, the document analysed
//! from it is written both ways and the bytes must be identical, with pseudonyms and without,
//! with one thread and with two. serde_json's pretty printer of the same document (the wire
//! types' serde derive) is the reference; the owned `AnalyzeOutput` the table is built from
//! must serialise to the same bytes too, so the writer is also checked against the document's
//! plain owned form, not only against the borrowed views it shares code with.
//!
//! Without the shared captures those trials are reported as ignored (they fail under
//! `$VOQA_REQUIRE_SAMPLES`). A capture built here, of 150 calls, 300 streams and several of the
//! writer's chunks, is compared the same way without them, and written into a sink that fails
//! part way: the writer must return the error at the first failed write, not write on.

mod support;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use voqa_agent::analyze::analyze_files;
use voqa_agent::report::{analysis_settings, analyze_document, json};
use voqa_agent::streams::AnalyzerConfig;
use voqa_agent::streams::privacy::Pseudonymizer;

fn main() {
    let trials = trials![samples, real_captures, many_chunks, failing_sink];
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

/// Calls in [`many_calls_capture`]: 150 calls and their 300 streams make a document of several
/// of the writer's 256 KiB chunks, the last one partly filled.
const CALLS: u16 = 150;

/// `CALLS` calls, each an INVITE and a 200 OK announcing one G.711 stream each way and ten
/// packets of each stream, the calls one after another.
fn many_calls_capture(dir: &Path) -> PathBuf {
    use voqa_agent::capture::writer::PcapWriter;
    use voqa_agent::decode::build::{LinkSpec, rtp_packet, udp_frame};
    let path = dir.join("many-calls.pcap");
    let link = LinkSpec::Ethernet;
    let file = std::fs::File::create(&path).expect("create the capture");
    let mut w = PcapWriter::new(io::BufWriter::new(file), link.linktype()).expect("pcap header");
    let (a_sip, b_sip) = (
        SocketAddr::from(([192, 0, 2, 1], 5060)),
        SocketAddr::from(([192, 0, 2, 2], 5060)),
    );
    let mut at = 1_800_000_000_000_000_000i64;
    for k in 0..CALLS {
        let call_id = format!("batch-{k}@192.0.2.1");
        let a = SocketAddr::from(([192, 0, 2, 1], 20_000 + 2 * k));
        let b = SocketAddr::from(([192, 0, 2, 2], 30_000 + 2 * k));
        let invite = support::sip_with_sdp(
            "INVITE sip:bob@example.invalid SIP/2.0",
            &call_id,
            "INVITE",
            a,
            &[(0, None)],
        );
        let ok = support::sip_with_sdp("SIP/2.0 200 OK", &call_id, "INVITE", b, &[(0, None)]);
        for (src, dst, text) in [(a_sip, b_sip, invite), (b_sip, a_sip, ok)] {
            at += 1_000_000;
            let frame = support::sip_frame(&link, src, dst, &text);
            w.write_frame(at, &frame).expect("write SIP");
        }
        for n in 0..10u16 {
            for (ssrc, src, dst) in [(u32::from(k) + 1, a, b), (u32::from(k) + 10_001, b, a)] {
                at += 1_000_000;
                let header = support::rtp_header(0, n, u32::from(n) * 160, ssrc);
                let frame = udp_frame(&link, src, dst, &rtp_packet(&header, &[0xd5; 160]));
                w.write_frame(at, &frame).expect("write RTP");
            }
        }
    }
    w.into_inner().flush().expect("flush the capture");
    path
}

fn many_chunks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = many_calls_capture(dir.path());
    for threads in [1, 2] {
        let (streams, calls) = compare(&file, threads, &Pseudonymizer::with_key(b"batches"));
        assert_eq!(
            (streams, calls),
            (2 * usize::from(CALLS), usize::from(CALLS))
        );
    }
}

/// A sink that takes `left` bytes and then fails every write.
struct Failing {
    left: usize,
    writes_after_failure: usize,
}

impl Write for Failing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            self.writes_after_failure += 1;
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "reader gone"));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn failing_sink() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = many_calls_capture(dir.path());
    let cfg = AnalyzerConfig::default();
    let (files, result) = analyze_files(&[file], cfg, 1, None).expect("analyze");
    let doc = analyze_document(files, &result, &Pseudonymizer::disabled(), "fixed");
    let mut whole = Vec::new();
    json::write_document(&doc, &mut whole).expect("write the document");
    let at = |key: &str| {
        whole
            .windows(key.len())
            .position(|w| w == key.as_bytes())
            .unwrap_or_else(|| panic!("{key} in the document"))
    };
    let (streams, calls) = (at("\"streams\": ["), at("\"calls\": ["));
    // Failing before the streams, in them (in the first chunk and in a later one), in the calls.
    for left in [
        10,
        streams + 100,
        (streams + calls) / 2,
        (calls + whole.len()) / 2,
    ] {
        let mut sink = Failing {
            left,
            writes_after_failure: 0,
        };
        let error = json::write_document(&doc, &mut sink).expect_err("the sink failed");
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe, "{error}");
        // The writer stops at the first failed write.
        assert_eq!(sink.writes_after_failure, 1, "failing after {left} bytes");
    }
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
