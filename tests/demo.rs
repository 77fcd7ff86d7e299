//! The committed demo capture (`tests/data/demo-call.pcap`, the README's first example) is what
//! its generator builds, and `analyze` reports it exactly: counts from how it was built, jitter
//! from the independent reference implementation, RTT 60 ms from the RTCP the generator wrote.

mod support;

#[path = "support/demo.rs"]
mod demo;

use std::path::Path;

use voqa_agent::capture::writer::PcapWriter;

fn committed() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/demo-call.pcap")
}

#[test]
fn committed_demo_capture_matches_its_generator() {
    let d = demo::build();
    let mut w = PcapWriter::new(Vec::new(), 1).expect("header");
    for (ts, f) in &d.frames {
        w.write_frame(*ts, f).expect("frame");
    }
    let bytes = std::fs::read(committed()).expect("tests/data/demo-call.pcap is committed");
    assert!(
        w.into_inner() == bytes,
        "regenerate with: cargo run -p voqa-agent --example make-demo-capture"
    );
}

#[test]
fn demo_call_is_reported_exactly() {
    let d = demo::build();
    let doc = support::analyze_json(&[&committed()], &[]);
    let streams = doc["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 2, "{doc}");
    for t in &d.streams {
        let s = support::find_stream(&doc, &t.src, &t.dst);
        assert_eq!(s.len(), 1, "{}", t.src);
        let s = s[0];
        assert_eq!(s["ssrc"], format!("0x{:08x}", t.ssrc));
        for (field, want) in [
            ("packets", t.packets),
            ("expected", t.expected),
            ("lost", t.lost),
            ("duplicates", t.duplicates),
            ("reordered", t.reordered),
        ] {
            assert_eq!(s[field].as_u64(), Some(want), "{} {field}", t.src);
        }
        let (last, max, mean) = support::reference_jitter_ms(&t.audio, 8000.0);
        for (field, want) in [
            ("jitter_ms", last),
            ("max_jitter_ms", max),
            ("mean_jitter_ms", mean),
        ] {
            let got = s[field].as_f64().expect("jitter");
            assert!(
                (got - want).abs() < 1e-5,
                "{} {field}: {got} vs {want}",
                t.src
            );
        }
        let rtt = s["rtt_ms"].as_f64().expect("RTT from RTCP");
        assert!((rtt - 2.0 * d.one_way_ms).abs() < 0.01, "rtt {rtt}");
        assert_eq!(s["call_id"], d.call_id);
        assert_eq!(s["codec"], "PCMU");
        assert_eq!(s["delay_source"], "rtcp");
    }
    let call = &doc["calls"][0];
    assert_eq!(call["call_id"], d.call_id);
    assert_eq!(call["status"], 200);
    assert_eq!(call["streams"].as_array().map(Vec::len), Some(2));
}
