//! End-to-end: `voqa-agent replay` through the binary. Replay pushes captures through the live
//! pipeline, so its final reports' `totals` must equal `analyze --format json` of the same
//! file (counts exact, jitter equal), its windows must tile each stream, its heartbeats must
//! fall on packet-time boundaries (none inside a silence over 60 s), and two replays of a file
//! must give the same records.
//!
//! The shared sample captures are used when present (else that test is reported as ignored, unless
//! $VOQA_REQUIRE_SAMPLES is set); the demo capture and built captures always run.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use support::{Pkt, analyze_json, rtp_frames, rtp_header, run_agent, samples_dir, write_pcap};
use voqa_agent::decode::build::LinkSpec;
use voqa_wire::{AgentRecord, Heartbeat, StreamReport};

fn main() {
    let trials = trials![
        replay_of_the_demo_call_equals_analyze,
        replay_of_every_sample_equals_analyze,
        replaying_twice_gives_identical_records,
        heartbeats_on_packet_time_none_inside_a_long_silence,
        realtime_replay_paces_by_packet_time_with_the_same_records,
        replay_refuses_bad_input_with_status_2,
    ];
    support::harness::main(file!(), trials)
}

const SEC: i64 = 1_000_000_000;

fn demo_capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/demo-call.pcap")
}

/// A config file for replay: identities as captured (to compare with `analyze
/// --no-pseudonymize`), interval and heartbeat period as given.
fn config(dir: &Path, interval_s: u64, heartbeat_s: u64, pseudonymize: bool) -> PathBuf {
    let path = dir.join(format!(
        "agent-{interval_s}-{heartbeat_s}-{pseudonymize}.toml"
    ));
    std::fs::write(
        &path,
        format!(
            "agent_id = \"replay-test\"\n[analysis]\ninterval_s = {interval_s}\n[privacy]\npseudonymize = {pseudonymize}\n[health]\nheartbeat_interval_s = {heartbeat_s}\n"
        ),
    )
    .expect("write config");
    path
}

/// Runs replay into a file sink; returns the output lines.
fn replay(files: &[&Path], out: &Path, extra: &[&str]) -> Vec<String> {
    let _ = std::fs::remove_file(out);
    let mut args: Vec<String> = vec!["replay".into(), "--sink".into()];
    args.push(format!("file:{}", out.display()));
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(files.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_agent(&refs);
    assert_eq!(run.status, 0, "replay failed: {}", run.stderr);
    std::fs::read_to_string(out)
        .expect("replay output")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn records(lines: &[String]) -> (Vec<StreamReport>, Vec<Heartbeat>) {
    let mut reports = Vec::new();
    let mut heartbeats = Vec::new();
    for line in lines {
        match serde_json::from_str::<AgentRecord>(line).expect("a wire record per line") {
            AgentRecord::Stream(r) => reports.push(r),
            AgentRecord::Heartbeat(h) => heartbeats.push(h),
            // Call records are checked by tests/call_records.rs.
            AgentRecord::Call(_) => {}
        }
    }
    (reports, heartbeats)
}

/// Replays `file` and checks it against `analyze` of the same file: one final report per
/// analysed stream whose totals equal the analyze stream object; windows that tile each
/// stream, sum to its totals and carry exactly the record ids the boundaries predict.
fn check_against_analyze(name: &str, file: &Path, dir: &Path) {
    let interval_s = 5;
    let cfg = config(dir, interval_s, 15, false);
    let cfg = cfg.display().to_string();
    let lines = replay(
        &[file],
        &dir.join(format!("{name}.jsonl")),
        &["--config", &cfg],
    );
    let (reports, _) = records(&lines);
    let doc = analyze_json(&[file], &[]);
    let streams = doc["streams"].as_array().expect("streams");
    let finals: Vec<&StreamReport> = reports.iter().filter(|r| r.is_final).collect();
    assert_eq!(
        finals.len(),
        streams.len(),
        "{name}: one final report per analysed stream"
    );
    let last_packet_ns = reports
        .iter()
        .filter(|r| r.is_final)
        .map(|r| r.window_end.as_ns())
        .max()
        .unwrap_or(0);
    for s in streams {
        let key = |r: &&StreamReport| r.src == s["src"] && r.dst == s["dst"] && r.ssrc == s["ssrc"];
        let fin = finals
            .iter()
            .copied()
            .find(key)
            .unwrap_or_else(|| panic!("{name}: no final report for {s}"));
        let totals = serde_json::to_value(fin.totals.as_ref().expect("final carries totals"))
            .expect("totals JSON");
        assert_eq!(
            &totals, s,
            "{name}: replay totals differ from analyze for {}",
            s["ssrc"]
        );
        // Windows of this stream tile it and sum to the totals.
        let mut windows: Vec<&StreamReport> = reports
            .iter()
            .filter(|r| r.stream_id == fin.stream_id)
            .collect();
        windows.sort_by_key(|r| (r.window_start, r.is_final));
        assert_eq!(windows.last().map(|r| r.is_final), Some(true));
        assert_eq!(
            windows[0].window_start.as_ns() / 1000,
            fin.totals
                .as_ref()
                .map_or(0, |t| t.first_seen.as_ns() / 1000),
            "{name}: the first window starts at the first packet"
        );
        for w in windows.windows(2) {
            assert_eq!(w[0].window_end, w[1].window_start, "{name}: windows tile");
        }
        let sum = |f: fn(&StreamReport) -> u64| windows.iter().map(|r| f(r)).sum::<u64>();
        assert_eq!(
            sum(|r| r.packets),
            s["packets"].as_u64().expect("packets"),
            "{name}"
        );
        assert_eq!(
            sum(|r| r.expected),
            s["expected"].as_u64().expect("expected"),
            "{name}"
        );
        assert_eq!(sum(|r| r.lost), s["lost"].as_u64().expect("lost"), "{name}");
        // Record ids: a window from the first packet to each boundary, the last one final.
        let first = windows[0].window_start.as_ns();
        let end = fin.window_end.as_ns();
        let interval = interval_s as i64 * SEC;
        let mut starts = vec![first];
        let mut b = (first.div_euclid(interval) + 1) * interval;
        while b < end || (b == end && end < last_packet_ns) {
            starts.push(b);
            b += interval;
        }
        let expected: BTreeSet<String> = starts
            .iter()
            .enumerate()
            .map(|(i, start)| {
                let flag = if i + 1 == starts.len() { 'f' } else { 'i' };
                format!("replay-test/{}/{start}/{flag}", fin.stream_id)
            })
            .collect();
        let got: BTreeSet<String> = windows.iter().map(|r| r.record_id()).collect();
        assert_eq!(got, expected, "{name}: record ids of {}", s["ssrc"]);
    }
    // No record id twice.
    let ids: BTreeSet<String> = reports.iter().map(StreamReport::record_id).collect();
    assert_eq!(ids.len(), reports.len(), "{name}: record ids are unique");
}

fn replay_of_the_demo_call_equals_analyze() {
    let dir = tempfile::tempdir().expect("tmp");
    check_against_analyze("demo-call", &demo_capture(), dir.path());
}

fn replay_of_every_sample_equals_analyze() {
    let Some(samples) = samples_dir("replay_of_every_sample_equals_analyze") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&samples)
        .expect("samples dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no captures in {}", samples.display());
    for file in &files {
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        check_against_analyze(&name, file, dir.path());
    }
}

/// Host figures are sampled at replay time; everything else of a heartbeat is packet time.
fn without_host_figures(line: &str) -> Value {
    let mut v: Value = serde_json::from_str(line).expect("JSON");
    if v["type"] == "heartbeat"
        && let Some(o) = v.as_object_mut()
    {
        for k in [
            "host_uptime_s",
            "cpu_pct",
            "agent_cpu_pct",
            "mem_total_bytes",
            "mem_used_bytes",
            "agent_rss_bytes",
            "load_avg",
        ] {
            o.remove(k);
        }
    }
    v
}

fn replaying_twice_gives_identical_records() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("key");
    std::fs::write(&key, "a fixed pseudonym key\n").expect("key");
    let cfg = config(dir.path(), 2, 5, true);
    let args = [
        "--config",
        cfg.to_str().expect("utf-8"),
        "--pseudonym-key-file",
        key.to_str().expect("utf-8"),
        "--agent-id",
        "fra-media-1",
    ];
    let first = replay(&[&demo_capture()], &dir.path().join("1.jsonl"), &args);
    let second = replay(&[&demo_capture()], &dir.path().join("2.jsonl"), &args);
    assert_eq!(first.len(), second.len());
    let streams = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.starts_with("{\"type\":\"stream\""))
            .cloned()
            .collect()
    };
    assert_eq!(
        streams(&first),
        streams(&second),
        "stream records are byte-identical"
    );
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(without_host_figures(a), without_host_figures(b));
    }
    let (reports, heartbeats) = records(&first);
    assert!(reports.iter().all(|r| r.agent_id == "fra-media-1"));
    let call_ids: BTreeSet<Option<String>> = reports.iter().map(|r| r.call_id.clone()).collect();
    assert_eq!(call_ids.len(), 1, "one call");
    assert!(
        call_ids
            .iter()
            .all(|c| c.as_deref().is_some_and(|c| c.starts_with("anon:"))),
        "{call_ids:?}"
    );
    // 20 s of packet time from 09:00:00.x: heartbeats at :05, :10, :15, :20.
    let times: Vec<String> = heartbeats.iter().map(|h| h.time.to_string()).collect();
    assert_eq!(
        times,
        [
            "2026-11-23T09:00:05.000000Z",
            "2026-11-23T09:00:10.000000Z",
            "2026-11-23T09:00:15.000000Z",
            "2026-11-23T09:00:20.000000Z"
        ]
    );
    // The demo call ends with a BYE: its streams end as `bye`, at the last packet time.
    let finals: Vec<&StreamReport> = reports.iter().filter(|r| r.is_final).collect();
    assert_eq!(finals.len(), 2);
    assert!(
        finals
            .iter()
            .all(|r| r.end_reason.as_deref() == Some("bye")),
        "{:?}",
        finals.iter().map(|r| &r.end_reason).collect::<Vec<_>>()
    );
}

/// Two talk spurts of one G.711 stream each, 40 s long, separated by two minutes of nothing.
fn capture_with_a_gap(dir: &Path) -> PathBuf {
    let src: SocketAddr = "192.0.2.1:20000".parse().expect("addr");
    let dst: SocketAddr = "192.0.2.2:30000".parse().expect("addr");
    let mut pkts = Vec::new();
    for (segment, start) in [
        (0u32, 1000 * SEC + 300_000_000),
        (1, 1160 * SEC + 300_000_000),
    ] {
        for i in 0..2000u32 {
            pkts.push(Pkt {
                at_ns: start + i64::from(i) * 20_000_000,
                src,
                dst,
                header: rtp_header(0, i as u16, 160 * i, 0x1000 + segment),
                payload_len: 160,
            });
        }
    }
    write_pcap(dir, "gap.pcap", 1, &rtp_frames(&LinkSpec::Ethernet, &pkts))
}

fn heartbeats_on_packet_time_none_inside_a_long_silence() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = capture_with_a_gap(dir.path());
    let cfg = config(dir.path(), 10, 15, false);
    let lines = replay(
        &[&file],
        &dir.path().join("gap.jsonl"),
        &["--config", cfg.to_str().expect("utf-8")],
    );
    let (reports, heartbeats) = records(&lines);
    // Frames from 1000.3 s to 1040.28 s and from 1160.3 s to 1200.28 s: boundaries of 15 s
    // inside the 120 s silence (1050 ... 1155) get no heartbeat.
    let times: Vec<i64> = heartbeats.iter().map(|h| h.time.as_ns() / SEC).collect();
    assert_eq!(times, [1005, 1020, 1035, 1170, 1185, 1200]);
    let frames: Vec<u64> = heartbeats
        .iter()
        .map(|h| h.workers.first().map_or(0, |w| w.frames))
        .collect();
    assert!(frames.windows(2).all(|w| w[0] < w[1]), "{frames:?}");
    assert!(heartbeats.iter().all(|h| h.agent_id == "replay-test"));
    // The first talk spurt ends idle (30 s after its last packet, at a boundary); the second
    // is closed at the last packet time, not at wall time.
    let finals: Vec<&StreamReport> = reports.iter().filter(|r| r.is_final).collect();
    assert_eq!(finals.len(), 2);
    assert_eq!(finals[0].end_reason.as_deref(), Some("idle"));
    assert_eq!(finals[0].window_end.as_ns(), 1080 * SEC);
    assert_eq!(finals[1].end_reason.as_deref(), Some("shutdown"));
    assert_eq!(
        finals[1].window_end.as_ns(),
        1160 * SEC + 300_000_000 + 1999 * 20_000_000
    );
    for f in &finals {
        assert_eq!(f.totals.as_ref().map(|t| t.packets), Some(2000));
    }
}

fn realtime_replay_paces_by_packet_time_with_the_same_records() {
    let dir = tempfile::tempdir().expect("tmp");
    let src: SocketAddr = "192.0.2.1:20000".parse().expect("addr");
    let dst: SocketAddr = "192.0.2.2:30000".parse().expect("addr");
    // 1.5 s of packet time.
    let pkts: Vec<Pkt> = (0..76u32)
        .map(|i| Pkt {
            at_ns: 500 * SEC + i64::from(i) * 20_000_000,
            src,
            dst,
            header: rtp_header(0, i as u16, 160 * i, 7),
            payload_len: 160,
        })
        .collect();
    let file = write_pcap(
        dir.path(),
        "short.pcap",
        1,
        &rtp_frames(&LinkSpec::Ethernet, &pkts),
    );
    let cfg = config(dir.path(), 1, 15, false);
    let cfg = cfg.to_str().expect("utf-8");
    let started = Instant::now();
    let paced = replay(
        &[&file],
        &dir.path().join("rt.jsonl"),
        &["--config", cfg, "--speed", "realtime"],
    );
    let took = started.elapsed();
    assert!(
        took.as_millis() >= 1400,
        "1.5 s of packets replayed in {took:?}"
    );
    let fast = replay(
        &[&file],
        &dir.path().join("max.jsonl"),
        &["--config", cfg, "--speed", "max"],
    );
    assert_eq!(paced, fast, "pacing changes when, not what");
    let (reports, _) = records(&fast);
    assert_eq!(reports.len(), 2, "one interval report and the final one");
}

fn replay_refuses_bad_input_with_status_2() {
    let missing = run_agent(&["replay", "--sink", "stdout", "/nonexistent/x.pcap"]);
    assert_eq!(missing.status, 2);
    assert!(
        missing.stderr.contains("/nonexistent/x.pcap"),
        "{}",
        missing.stderr
    );
    let demo = demo_capture();
    let demo = demo.to_str().expect("utf-8");
    let scheme = run_agent(&["replay", "--collector", "ftp://x", "--token", "t", demo]);
    assert_eq!(scheme.status, 2);
    assert!(
        scheme.stderr.contains("http:// or https://"),
        "{}",
        scheme.stderr
    );
    let no_token = run_agent(&["replay", "--collector", "https://collector.example", demo]);
    assert_eq!(no_token.status, 2, "--collector needs --token");
    let both = run_agent(&[
        "replay",
        "--collector",
        "https://c.example",
        "--token",
        "t",
        "--sink",
        "stdout",
        demo,
    ]);
    assert_eq!(both.status, 2, "--collector and --sink exclude each other");
}
