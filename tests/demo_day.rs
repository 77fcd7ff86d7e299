//! The committed demo-day capture (`tests/data/demo-day.pcap`, input of the README's one-command
//! demo) is exactly what `tests/make_demo_day.rs` builds, and `voqa-agent analyze` reports it
//! exactly against the generator's ground truth: every stream's counts, the 40 ms RTT from the
//! RTCP written, the bad call below MOS 3.6 and every other call at 4.0 or above, the calls by
//! Call-ID with their times, and the one silence over 60 s being the agent outage.

#[allow(dead_code)] // the generator's `main` and JSON writer are for the example only
#[path = "make_demo_day.rs"]
mod make_demo_day;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use make_demo_day::{DemoDay, RTT_MS, T0_NS, build, rfc3339, write_pcap};

fn committed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/demo-day.pcap")
}

fn analyze(path: &Path) -> Value {
    // Call-IDs are checked as built, so no pseudonyms.
    let out = Command::new(env!("CARGO_BIN_EXE_voqa-agent"))
        .args(["analyze", "--format", "json", "--no-pseudonymize"])
        .arg(path)
        .output()
        .expect("run voqa-agent analyze");
    assert!(
        out.status.success(),
        "analyze failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("analyze prints one JSON document")
}

/// Record times (ns) of a little-endian µs classic pcap, read independently of the agent.
fn record_times(bytes: &[u8]) -> Vec<i64> {
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "µs little-endian pcap"
    );
    let word = |at: usize| {
        let b: [u8; 4] = bytes[at..at + 4].try_into().expect("4 bytes");
        i64::from(u32::from_le_bytes(b))
    };
    let mut times = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        times.push(word(at) * 1_000_000_000 + word(at + 4) * 1_000);
        at += 16 + word(at + 8) as usize;
    }
    assert_eq!(at, bytes.len(), "no partial record");
    times
}

#[test]
fn committed_demo_day_matches_its_generator() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("demo-day.pcap");
    let file = std::fs::File::create(&path).expect("create");
    let mut w = write_pcap(&build(), std::io::BufWriter::new(file)).expect("write");
    std::io::Write::flush(&mut w).expect("flush");
    drop(w);
    let fresh = std::fs::read(&path).expect("read back");
    let committed = std::fs::read(committed()).expect("tests/data/demo-day.pcap is committed");
    assert!(
        fresh == committed,
        "tests/data/demo-day.pcap differs from its generator ({} vs {} bytes); regenerate with: \
         cargo run -p voqa-agent --example make-demo-day",
        fresh.len(),
        committed.len()
    );
    // The budget for a file committed to the repository.
    assert!(committed.len() <= 6_000_000, "{} bytes", committed.len());
}

#[test]
fn demo_day_is_reported_exactly() {
    let day: DemoDay = build();
    let doc = analyze(&committed());

    let file = &doc["files"][0];
    assert_eq!(file["packets"].as_u64(), Some(day.frames.len() as u64));
    for reason in ["non_udp", "truncated", "fragments", "malformed"] {
        assert_eq!(file["skipped"][reason], 0, "{reason}");
    }

    let streams = doc["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), day.streams.len(), "no extra streams");
    let stream_of = |src: &str, dst: &str| -> &Value {
        let found: Vec<&Value> = streams
            .iter()
            .filter(|s| s["src"] == src && s["dst"] == dst)
            .collect();
        assert_eq!(found.len(), 1, "one stream {src} -> {dst}");
        found[0]
    };
    for t in &day.streams {
        let s = stream_of(&t.src, &t.dst);
        let what = format!("{} -> {}", t.src, t.dst);
        assert_eq!(s["ssrc"], format!("0x{:08x}", t.ssrc), "{what}");
        assert_eq!(s["call_id"], t.call_id.as_str(), "{what}");
        assert_eq!(s["codec"], "PCMU", "{what}");
        assert_eq!(s["detection"], "sdp", "{what}");
        for (field, want) in [
            ("packets", t.packets()),
            ("expected", t.sent),
            ("lost", t.dropped),
            ("duplicates", t.duplicates),
            ("reordered", t.reordered),
        ] {
            assert_eq!(s[field].as_u64(), Some(want), "{what} {field}");
        }
        assert_eq!(s["first_seen"], rfc3339(t.first_ns), "{what}");
        assert_eq!(s["last_seen"], rfc3339(t.last_ns), "{what}");
        let rtt = s["rtt_ms"].as_f64().expect("RTT from the RTCP written");
        assert!((rtt - RTT_MS).abs() < 1.0, "{what}: rtt {rtt}");
        assert_eq!(s["delay_source"], "rtcp", "{what}");
    }

    // Verdicts per call: its worst stream.
    let mos = |i: usize| {
        let t = &day.streams[i];
        stream_of(&t.src, &t.dst)["mos"].as_f64().expect("MOS")
    };
    let mut bad_calls = 0;
    for c in day.calls.iter().filter(|c| !c.streams.is_empty()) {
        let worst = c
            .streams
            .iter()
            .map(|&i| mos(i))
            .fold(f64::INFINITY, f64::min);
        if c.bad {
            bad_calls += 1;
            assert!(worst < 3.6, "bad call {}: MOS {worst}", c.call_id);
        } else {
            assert!(worst >= 4.0, "call {}: MOS {worst}", c.call_id);
        }
    }
    assert_eq!(bad_calls, 1);

    // Calls: every dialog built, with its times and streams. Dialogs without an INVITE (the
    // OPTIONS keepalives' Call-ID) are not calls and must carry no stream.
    let calls = doc["calls"].as_array().expect("calls");
    let (with_invite, others): (Vec<&Value>, Vec<&Value>) =
        calls.iter().partition(|c| !c["setup"].is_null());
    for c in others {
        assert_eq!(c["streams"].as_array().map(Vec::len), Some(0), "{c}");
    }
    assert_eq!(with_invite.len(), day.calls.len(), "calls found");
    assert_eq!(day.calls.len(), 9, "8 answered calls and 1 busy");
    for t in &day.calls {
        let c = with_invite
            .iter()
            .find(|c| c["call_id"] == t.call_id.as_str())
            .unwrap_or_else(|| panic!("call {} not found", t.call_id));
        assert_eq!(
            c["status"].as_u64(),
            Some(u64::from(t.status)),
            "{}",
            t.call_id
        );
        assert_eq!(c["setup"], rfc3339(t.invite_ns), "{}", t.call_id);
        assert_eq!(
            c["answer"],
            t.answer_ns.map(rfc3339).map_or(Value::Null, Value::from)
        );
        assert_eq!(c["end"], rfc3339(t.end_ns), "{}", t.call_id);
        let mut got: Vec<(String, String)> = c["streams"]
            .as_array()
            .expect("stream indexes")
            .iter()
            .map(|i| {
                let s = &streams[i.as_u64().expect("index") as usize];
                (s["src"].to_string(), s["dst"].to_string())
            })
            .collect();
        let mut want: Vec<(String, String)> = t
            .streams
            .iter()
            .map(|&i| {
                let s = &day.streams[i];
                (
                    Value::from(s.src.as_str()).to_string(),
                    Value::from(s.dst.as_str()).to_string(),
                )
            })
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{}", t.call_id);
    }
}

#[test]
fn demo_day_has_one_outage_and_spans_three_hours() {
    let day = build();
    let bytes = std::fs::read(committed()).expect("tests/data/demo-day.pcap is committed");
    let times = record_times(&bytes);
    assert_eq!(times.len(), day.frames.len());
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "capture order");
    assert_eq!(times[0], T0_NS, "starts at 2026-11-23T08:00:00Z");
    let span = times[times.len() - 1] - times[0];
    assert!(
        ((2 * 3600 + 59 * 60) * 1_000_000_000..=3 * 3600 * 1_000_000_000).contains(&span),
        "three hours: {span} ns"
    );
    let silences: Vec<(i64, i64)> = times
        .windows(2)
        .filter(|w| w[1] - w[0] > 60_000_000_000)
        .map(|w| (w[0], w[1]))
        .collect();
    assert_eq!(
        silences,
        vec![day.outage],
        "the outage is the only silence over 60 s"
    );
    let minutes = (day.outage.1 - day.outage.0) / 60_000_000_000;
    assert!((9..=11).contains(&minutes), "about ten minutes: {minutes}");
    // Keepalives everywhere else: no other silence reaches 31 s.
    let longest_other = times
        .windows(2)
        .map(|w| (w[0], w[1]))
        .filter(|&g| g != day.outage)
        .map(|(a, b)| b - a)
        .max()
        .unwrap_or(0);
    assert!(longest_other <= 31_000_000_000, "{longest_other} ns");
}
