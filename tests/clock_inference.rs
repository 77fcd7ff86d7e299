//! End-to-end: the clock of an unsignalled dynamic payload type through `voqa-agent analyze`,
//! on captures built here.
//!
//! - An Opus-like stream (PT 111, timestamp step 960, no SDP) whose first packets arrive bunched
//!   and stalled exactly as the PT 111 stream of `real-captures/ndpi__rtp.pcapng` does: the
//!   mean-gap rule took it for 32 kHz; the step is a standard packet time at 16, 32 and 48 kHz,
//!   and the gaps that match one say 20 ms, so 48 kHz.
//! - A stream whose gaps fit two clocks equally: counted (packets, loss) without jitter or MOS,
//!   flagged, never guessed.
//!
//! Expected jitter comes from the independent RFC 3550 reference in `support`.

mod support;

use std::net::SocketAddr;

use serde_json::Value;
use support::*;
use voqa_agent::decode::build::LinkSpec;

fn main() {
    let trials = trials![
        step_960_with_irregular_arrivals_is_48k,
        step_fitting_two_clocks_equally_leaves_the_clock_unknown,
        short_unsignalled_stream_is_counted_not_dropped,
        real_captures_get_the_clock_their_readme_states,
    ];
    support::harness::main(file!(), trials)
}

const T0: i64 = 1_795_000_000_000_000_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// Arrival offsets (µs) of the first 16 packets of the PT 111 stream of ndpi__rtp.pcapng
/// (VLAN 1508, SSRC 0xb80974d8), from tshark: four bunched, then 11.8, 20, 20, 30, 10, 20, 80,
/// 36, 91, 0, 83, 10 ms.
const NDPI_PT111_US: [i64; 16] = [
    0, 0, 0, 0, 11_805, 31_851, 51_857, 81_870, 91_871, 111_787, 191_845, 227_901, 318_851,
    318_851, 401_906, 411_847,
];

fn opus_like(src: &str, dst: &str, ssrc: u32, arrivals_us: &[i64]) -> Vec<Pkt> {
    arrivals_us
        .iter()
        .enumerate()
        .map(|(i, at)| Pkt {
            at_ns: T0 + at * 1000,
            src: addr(src),
            dst: addr(dst),
            header: rtp_header(
                111,
                40_000u16.wrapping_add(i as u16),
                508_637_695u32.wrapping_add(960 * i as u32),
                ssrc,
            ),
            payload_len: 30,
        })
        .collect()
}

fn one<'a>(doc: &'a Value, src: &str, dst: &str) -> &'a Value {
    let found = find_stream(doc, src, dst);
    assert_eq!(found.len(), 1, "{doc}");
    found[0]
}

fn has_flag(v: &Value, flag: &str) -> bool {
    v["flags"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == flag))
}

fn step_960_with_irregular_arrivals_is_48k() {
    let dir = tempfile::tempdir().expect("tmp");
    // The ndpi start, then 184 packets at 20 ms ± 1.5 ms (a stream that settles).
    let mut arrivals: Vec<i64> = NDPI_PT111_US.to_vec();
    let settle = arrivals[15];
    arrivals.extend((1..=184i64).map(|k| settle + 20_000 * k + ((k * 37) % 7 - 3) * 500));
    let pkts = opus_like(
        "10.140.67.167:55402",
        "148.153.85.97:6008",
        0xb809_74d8,
        &arrivals,
    );
    // What the old rule saw at its decision (the first 8 pairs with a positive gap, packets
    // 3..11): 8 · 960 / 0.2279 s = 33.7 kHz, within 20 % of 32 kHz and not of 48 kHz.
    let rate = 8.0 * 960.0 / ((NDPI_PT111_US[11] - NDPI_PT111_US[3]) as f64 / 1e6);
    assert!((rate / 32000.0 - 1.0).abs() <= 0.2 && (rate / 48000.0 - 1.0).abs() > 0.2);

    let path = write_pcap(
        dir.path(),
        "opus_like.pcap",
        1,
        &rtp_frames(&LinkSpec::Ethernet, &pkts),
    );
    let doc = analyze_json(&[&path], &[]);
    let s = one(&doc, "10.140.67.167:55402", "148.153.85.97:6008");
    assert_eq!(s["clock_rate"], 48000, "{s}");
    assert_eq!(s["clock_source"], "inferred", "{s}");
    assert!(has_flag(s, "clock_inferred"), "{s}");
    let inference = &s["clock_inference"];
    assert_eq!(inference["method"], "ts_step", "{s}");
    assert_eq!(inference["confidence"], "medium", "{s}");
    assert_eq!(inference["ts_step"], 960, "{s}");
    assert_eq!(inference["ptime_ms"], 20.0, "{s}");
    // 15 pairs in the probation buffer; 11 not bunched, 6 of them nearest to 20 ms.
    assert_eq!(
        (inference["pairs"].as_u64(), inference["matching"].as_u64()),
        (Some(15), Some(6))
    );
    assert_eq!(s["packets"], 200);
    assert_eq!(s["lost"], 0);
    // Jitter on the 48 kHz clock, as the independent RFC 3550 reference computes it; the 32 kHz
    // reading would differ by far more than the tolerance.
    let refpk: Vec<(i64, u32)> = pkts.iter().map(|p| (p.at_ns, p.header.timestamp)).collect();
    let (last48, max48, _) = reference_jitter_ms(&refpk, 48000.0);
    let (last32, _, _) = reference_jitter_ms(&refpk, 32000.0);
    let got = s["jitter_ms"].as_f64().expect("jitter");
    assert!((got - last48).abs() < 1e-3, "{got} vs {last48}: {s}");
    assert!(
        (s["max_jitter_ms"].as_f64().expect("max") - max48).abs() < 1e-3,
        "{s}"
    );
    assert!(
        (last32 - last48).abs() > 0.1,
        "the test tells the clocks apart"
    );
    assert!(s["mos"].as_f64().is_some(), "{s}");

    let table = run_agent(&["analyze", "--format", "table", path.to_str().expect("utf8")]);
    assert_eq!(table.status, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains(
            "#0: clock 48000 Hz inferred from the timestamp step 960 (20 ms), medium confidence (PT 111, no SDP)"
        ),
        "{}",
        table.stdout
    );
}

fn step_fitting_two_clocks_equally_leaves_the_clock_unknown() {
    let dir = tempfile::tempdir().expect("tmp");
    // Gaps alternate 20 and 30 ms: 48 kHz (20 ms) and 32 kHz (30 ms) explain as many each.
    let mut at = 0i64;
    let arrivals: Vec<i64> = (0..100)
        .map(|i| {
            let now = at;
            at += if i % 2 == 0 { 20_000 } else { 30_000 };
            now
        })
        .collect();
    let mut pkts = opus_like("192.0.2.50:7000", "192.0.2.60:7002", 0x777, &arrivals);
    // Two packets lost in the network (after probation): still counted without a clock.
    pkts.retain(|p| ![40_050u16, 40_051].contains(&p.header.sequence));
    let path = write_pcap(
        dir.path(),
        "ambiguous.pcap",
        1,
        &rtp_frames(&LinkSpec::Ethernet, &pkts),
    );
    let doc = analyze_json(&[&path], &[]);
    let s = one(&doc, "192.0.2.50:7000", "192.0.2.60:7002");
    assert_eq!(s["clock_rate"], Value::Null, "{s}");
    assert_eq!(s["clock_source"], "unknown", "{s}");
    assert!(has_flag(s, "clock_unknown"), "{s}");
    assert_eq!(s["clock_inference"]["method"], "none", "{s}");
    assert_eq!(s["clock_inference"]["confidence"], Value::Null, "{s}");
    assert_eq!(s["clock_inference"]["ts_step"], 960, "{s}");
    assert_eq!(
        (
            s["packets"].as_u64(),
            s["expected"].as_u64(),
            s["lost"].as_u64()
        ),
        (Some(98), Some(100), Some(2)),
        "{s}"
    );
    for key in ["jitter_ms", "max_jitter_ms", "mos", "r_factor"] {
        assert_eq!(s[key], Value::Null, "{key}: {s}");
    }
    let table = run_agent(&["analyze", "--format", "table", path.to_str().expect("utf8")]);
    assert!(
        table.stdout.contains("#0: clock unknown (PT 111, no SDP"),
        "{}",
        table.stdout
    );
}

fn short_unsignalled_stream_is_counted_not_dropped() {
    // Six packets of a dynamic PT, then nothing (a call's first packets at the capture's end,
    // or a stream that stops before its clock can be inferred): a stream with an unknown clock.
    let dir = tempfile::tempdir().expect("tmp");
    let arrivals: Vec<i64> = vec![0, 18_400, 45_300, 75_600, 75_600, 93_000];
    let mut pkts = opus_like("192.0.2.70:9000", "192.0.2.80:9002", 0x120, &arrivals);
    for p in &mut pkts {
        p.header.payload_type = 120;
    }
    // A packet of another flow 5 s later: the candidate times out (2 s) while packets flow.
    let mut later = opus_like("192.0.2.90:9100", "192.0.2.91:9102", 0x5, &[5_000_000]);
    pkts.append(&mut later);
    let path = write_pcap(
        dir.path(),
        "short.pcap",
        1,
        &rtp_frames(&LinkSpec::Ethernet, &pkts),
    );
    let doc = analyze_json(&[&path], &[]);
    let s = one(&doc, "192.0.2.70:9000", "192.0.2.80:9002");
    assert_eq!(s["packets"], 6, "{s}");
    assert_eq!(s["clock_source"], "unknown", "{s}");
    // 18.4 and 17.4 ms are nearest to 20 ms (48 kHz), 26.9 and 30.3 to 30 ms (32 kHz): a tie.
    assert_eq!(s["clock_inference"]["pairs"], 5, "{s}");
    assert_eq!(s["jitter_ms"], Value::Null, "{s}");
    // A lone packet is no stream.
    assert!(
        find_stream(&doc, "192.0.2.90:9100", "192.0.2.91:9102").is_empty(),
        "{doc}"
    );
}

/// `../shared/real-captures` (or $VOQA_REAL_CAPTURES_DIR); `None` with a SKIPPED line when
/// absent, unless $VOQA_REQUIRE_SAMPLES is set (CI): then it panics.
fn real_captures(test: &str) -> Option<std::path::PathBuf> {
    support::real_captures_dir(test)
}

/// The unsignalled streams of the public captures whose clock is known from their README:
/// nDPI's PT 111 (Opus, 48 kHz), WhatsApp's PT 120 (16 kHz), Teams' PT 104 (16 kHz).
/// Packet and loss counts are tshark's (`-z rtp,streams`); the PT 111 jitter and discards come
/// from an independent re-implementation of RFC 3550 A.8 and §9.2/§9.2a at 48 kHz (Python, over
/// tshark's per-packet fields), not from the agent.
fn real_captures_get_the_clock_their_readme_states() {
    let Some(dir) = real_captures("real_captures_get_the_clock_their_readme_states") else {
        return;
    };
    let doc = analyze_json(&[&dir.join("ndpi__rtp.pcapng")], &[]);
    let s = one(&doc, "10.140.67.167:55402", "148.153.85.97:6008");
    assert_eq!(s["clock_rate"], 48000, "{s}");
    assert_eq!(s["clock_inference"]["method"], "ts_step", "{s}");
    assert_eq!(
        (s["packets"].as_u64(), s["lost"].as_u64()),
        (Some(29), Some(0))
    );
    assert!(
        (s["jitter_ms"].as_f64().expect("jitter") - 17.7845).abs() < 1e-3,
        "{s}"
    );
    assert!(
        (s["max_jitter_ms"].as_f64().expect("max") - 20.1502).abs() < 1e-3,
        "{s}"
    );
    assert_eq!(s["jb_discarded"], 6, "{s}");

    let doc = analyze_json(&[&dir.join("ndpi__stun_wa_call.pcapng")], &[]);
    for (src, dst, packets) in [
        ("192.168.12.156:46652", "93.57.123.227:3478", 140),
        ("93.57.123.227:3478", "192.168.12.156:46652", 179),
    ] {
        let s = one(&doc, src, dst);
        assert_eq!(
            (s["payload_type"].as_u64(), s["clock_rate"].as_u64()),
            (Some(120), Some(16000)),
            "{s}"
        );
        assert_eq!(
            s["clock_inference"]["method"], "arrival",
            "120 ms packets: {s}"
        );
        assert_eq!(s["packets"], packets, "{s}");
    }

    let doc = analyze_json(&[&dir.join("ndpi__teams.pcap")], &[]);
    let s = one(&doc, "93.71.110.205:16332", "192.168.1.6:50016");
    assert_eq!(s["clock_rate"], 16000, "{s}");
    assert_eq!(s["clock_inference"]["method"], "ts_step", "{s}");

    // Encrypted UDP that is not RTP stays no stream.
    let doc = analyze_json(&[&dir.join("ndpi__telegram.pcap")], &[]);
    assert_eq!(doc["streams"].as_array().map(Vec::len), Some(0), "{doc}");
}
