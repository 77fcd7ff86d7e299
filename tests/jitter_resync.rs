//! End-to-end: the jitter-buffer re-synchronisation of metrics-spec §9.2a through the
//! `voqa-agent analyze` binary, on captures of the two situations seen on real calls that made
//! the F(60) emulation discard every later packet (MOS 1.0 with zero network loss):
//!
//! - an IVR-style sender pause: a G.711 stream stops for 9.7 s and resumes with timestamps that
//!   did not advance over the pause and without a marker bit;
//! - a route change: the path delay steps up by 180 ms in the middle of a call.
//!
//! Expected values are derived by hand here: the discards from §9.2/§9.2a, the burst ratio from
//! §8.2 transition counts, R by subtracting Ie,eff (G.107 §7.5, written out below) from the
//! clean-call R of the shared sample truth, MOS by G.107 Annex B (written out below). The agent's
//! own E-model is not used as ground truth.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::*;
use voqa_agent::decode::build::LinkSpec;

const T0: i64 = 1_795_000_000_000_000_000;
/// Packets before and after the event.
const HALF: usize = 250;
const PTIME_NS: i64 = 20_000_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// Deterministic arrival wobble within ±3 ms (µs), so the stream is not unrealistically perfect:
/// two packets' transit differs by at most 6 ms, far inside the 60 ms buffer.
fn wobble_us(i: usize) -> i64 {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5851_F42D;
    x ^= x >> 29;
    (x % 6001) as i64 - 3000
}

/// A 20 ms PCMU stream of `2 * HALF` packets, seq and timestamps strictly +1 / +160, no marker;
/// from packet `HALF` on every arrival is `shift_ns` later than its schedule.
fn pcmu_stream(src: &str, dst: &str, ssrc: u32, start_ns: i64, shift_ns: i64) -> Vec<Pkt> {
    (0..2 * HALF)
        .map(|i| {
            let shift = if i >= HALF { shift_ns } else { 0 };
            Pkt {
                at_ns: start_ns + i as i64 * PTIME_NS + shift + wobble_us(i) * 1000,
                src: addr(src),
                dst: addr(dst),
                header: rtp_header(
                    0,
                    1000u16.wrapping_add(i as u16),
                    5000 + 160 * i as u32,
                    ssrc,
                ),
                payload_len: 160,
            }
        })
        .collect()
}

/// The IVR call: INVITE/200 with SDP (PCMU), then the IVR's prompt stream to the caller that
/// pauses 9.7 s between packets `HALF - 1` and `HALF` (timestamps and sequence continue +1 step).
fn ivr_capture(dir: &Path) -> PathBuf {
    let link = LinkSpec::Ethernet;
    let caller_media = addr("198.51.100.10:40000");
    let ivr_media = addr("198.51.100.20:50000");
    let (caller_sip, ivr_sip) = (addr("198.51.100.10:5060"), addr("198.51.100.20:5060"));
    let mut frames = vec![
        (
            T0,
            sip_frame(
                &link,
                caller_sip,
                ivr_sip,
                &sip_with_sdp(
                    "INVITE sip:ivr@example.invalid SIP/2.0",
                    "ivr-call",
                    "INVITE",
                    caller_media,
                    &[(0, None)],
                ),
            ),
        ),
        (
            T0 + 30_000_000,
            sip_frame(
                &link,
                ivr_sip,
                caller_sip,
                &sip_with_sdp(
                    "SIP/2.0 200 OK",
                    "ivr-call",
                    "INVITE",
                    ivr_media,
                    &[(0, None)],
                ),
            ),
        ),
    ];
    // The pause: the gap between packets HALF-1 and HALF is 20 ms + 9.7 s of arrival time for
    // 160 timestamp units (20 ms) of media.
    let pkts = pcmu_stream(
        "198.51.100.20:50000",
        "198.51.100.10:40000",
        0x1F0,
        T0 + 100_000_000,
        9_700_000_000,
    );
    frames.extend(rtp_frames(&link, &pkts));
    write_pcap(dir, "ivr_pause.pcap", 1, &frames)
}

/// A call without signalling in the capture whose path delay steps up by 180 ms at packet `HALF`.
fn route_change_capture(dir: &Path) -> PathBuf {
    let pkts = pcmu_stream(
        "203.0.113.5:30000",
        "203.0.113.9:31000",
        0x2A0,
        T0,
        180_000_000,
    );
    write_pcap(
        dir,
        "route_change.pcap",
        1,
        &rtp_frames(&LinkSpec::Ethernet, &pkts),
    )
}

/// G.107 §7.5: Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl).
fn ie_eff(ie: f64, bpl: f64, ppl: f64, burst_r: f64) -> f64 {
    ie + (95.0 - ie) * ppl / (ppl / burst_r + bpl)
}

/// G.107 Annex B: MOS from R.
fn mos_of(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    }
}

/// R and MOS of a clean G.711 stream with the assumed 20 ms one-way delay, F(60) and 20 ms
/// packets (T = 100.125 ms): the truth file of the shared sample a_clean_pcmu.
const CLEAN_R: f64 = 90.661182;
const CLEAN_MOS: f64 = 4.35486;

/// The figures expected of a stream of `2 * HALF` packets with no network loss and two
/// consecutive jitter-buffer discards (F(60), K = 3), all derived by hand.
fn expected_two_discards() -> (f64, f64, f64, f64) {
    let n = (2 * HALF) as f64;
    let ppl = 100.0 * 2.0 / n;
    // §8.2 over the 2·HALF sequence positions: one 0→1, one 1→1, one 1→0 transition.
    let n01 = 1.0;
    let n11 = 1.0;
    let n10 = 1.0;
    let n00 = (n - 1.0) - n01 - n11 - n10;
    let burst_r = 1.0 / (n01 / (n00 + n01) + n10 / (n10 + n11));
    // PCMU: Ie 0, Bpl 25.1 (G.113 App. I, G.711 with PLC). Delay and Is as in the clean call.
    let r = CLEAN_R - ie_eff(0.0, 25.1, ppl, burst_r);
    (ppl, burst_r, r, mos_of(r))
}

fn the_stream<'a>(doc: &'a Value, src: &str, dst: &str) -> &'a Value {
    let found = find_stream(doc, src, dst);
    assert_eq!(found.len(), 1, "one stream {src} -> {dst}: {doc}");
    found[0]
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} not a number: {v}"))
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} not a count: {v}"))
}

fn has_flag(v: &Value, flag: &str) -> bool {
    v["flags"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == flag))
}

/// The common assertions of both situations under the default settings.
fn assert_two_discards_and_near_clean_mos(s: &Value) {
    let (ppl, burst_r, r, mos) = expected_two_discards();
    assert_eq!(u(s, "packets"), 2 * HALF as u64, "{s}");
    assert_eq!(u(s, "expected"), 2 * HALF as u64, "{s}");
    assert_eq!(u(s, "lost"), 0, "zero network loss: {s}");
    assert_eq!(u(s, "duplicates"), 0, "{s}");
    assert_eq!(
        u(s, "jb_discarded"),
        2,
        "K − 1 = 2 discards for the event: {s}"
    );
    assert!((f(s, "effective_loss_pct") - ppl).abs() < 1e-6, "{s}");
    assert!((f(s, "burst_ratio") - burst_r).abs() < 1e-6, "{s}");
    assert!((f(s, "delay_ms") - 100.125).abs() < 1e-6, "{s}");
    assert!((f(s, "r_factor") - r).abs() < 1e-4, "R {r}: {s}");
    assert!((f(s, "mos") - mos).abs() < 1e-4, "MOS {mos}: {s}");
    // Near the clean call: two packets in 500 cost less than 0.04 MOS.
    assert!(CLEAN_MOS - f(s, "mos") < 0.04, "{s}");
    assert!(has_flag(s, "jb_resynced"), "{s}");
    assert_eq!(s["jitter_buffer"], "fixed:60");
}

#[test]
fn expected_values_by_hand() {
    // Guard the hand derivation itself: Ppl 0.4 %, BurstR = 1/(1/497 + 1/2) ≈ 1.99198,
    // Ie,eff = 95·0.4/(0.4/1.99198 + 25.1) ≈ 1.50193, R ≈ 89.15925, MOS ≈ 4.3179.
    let (ppl, burst_r, r, mos) = expected_two_discards();
    assert!((ppl - 0.4).abs() < 1e-12);
    assert!((burst_r - 1.991984).abs() < 1e-6, "{burst_r}");
    assert!((r - 89.159253).abs() < 1e-5, "{r}");
    assert!((mos - 4.317860).abs() < 1e-5, "{mos}");
    // Annex B reproduces the clean call's truth MOS from its R.
    assert!((mos_of(CLEAN_R) - CLEAN_MOS).abs() < 1e-5);
}

#[test]
fn ivr_pause_without_marker_costs_two_discards() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = ivr_capture(dir.path());
    let doc = analyze_json(&[&path], &[]);
    let s = the_stream(&doc, "198.51.100.20:50000", "198.51.100.10:40000");
    assert_eq!(s["detection"], "sdp", "{s}");
    assert_eq!(s["call_id"], "ivr-call", "{s}");
    assert_two_discards_and_near_clean_mos(s);
    // The pause is in the arrival gaps, not the sequence.
    assert!(f(s, "max_delta_ms") > 9_700.0, "{s}");
    assert_eq!(
        doc["analysis"],
        serde_json::json!({"jitter_buffer": "fixed:60", "resync_after_late": 3, "assumed_one_way_ms": 20.0})
    );

    // Without §9.2a (the behaviour seen in the field) every packet after the pause is late.
    let plain = analyze_json(&[&path], &["--resync-after-late", "0"]);
    let s = the_stream(&plain, "198.51.100.20:50000", "198.51.100.10:40000");
    assert_eq!(u(s, "jb_discarded"), HALF as u64, "{s}");
    assert_eq!(u(s, "lost"), 0, "{s}");
    assert!(f(s, "mos") < 1.5, "{s}");
    assert!(!has_flag(s, "jb_resynced"), "{s}");
    assert_eq!(plain["analysis"]["resync_after_late"], 0);

    // The adaptive buffer cannot grow past Nmax = 500 ms < 9.7 s: it re-anchors the same way.
    let adaptive = analyze_json(&[&path], &["--jitter-buffer", "adaptive"]);
    let s = the_stream(&adaptive, "198.51.100.20:50000", "198.51.100.10:40000");
    assert_eq!(u(s, "jb_discarded"), 2, "{s}");
    assert_eq!(u(s, "lost"), 0, "{s}");
}

#[test]
fn route_change_delay_step_costs_two_discards() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = route_change_capture(dir.path());
    let doc = analyze_json(&[&path], &[]);
    let s = the_stream(&doc, "203.0.113.5:30000", "203.0.113.9:31000");
    assert_eq!(s["detection"], "heuristic", "{s}");
    assert_two_discards_and_near_clean_mos(s);

    // K is the operator's: K = 5 costs 4 discards, K = 0 the rest of the call.
    let k5 = analyze_json(&[&path], &["--resync-after-late", "5"]);
    let s = the_stream(&k5, "203.0.113.5:30000", "203.0.113.9:31000");
    assert_eq!(u(s, "jb_discarded"), 4, "{s}");
    assert_eq!(k5["analysis"]["resync_after_late"], 5);
    let plain = analyze_json(&[&path], &["--resync-after-late", "0"]);
    let s = the_stream(&plain, "203.0.113.5:30000", "203.0.113.9:31000");
    assert_eq!(u(s, "jb_discarded"), HALF as u64, "{s}");

    // Adaptive: the first late packet grows N to its lateness; the wobble may make one more
    // late before the buffer settles or re-anchors: never more than K − 1 = 2.
    let adaptive = analyze_json(&[&path], &["--jitter-buffer", "adaptive"]);
    let s = the_stream(&adaptive, "203.0.113.5:30000", "203.0.113.9:31000");
    let discarded = u(s, "jb_discarded");
    assert!((1..=2).contains(&discarded), "{s}");
    assert_eq!(u(s, "lost"), 0, "{s}");
}

#[test]
fn table_states_the_resync_setting() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = route_change_capture(dir.path());
    let run = run_agent(&[
        "analyze",
        "--format",
        "table",
        "--resync-after-late",
        "4",
        path.to_str().expect("utf8"),
    ]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("jitter buffer fixed:60, re-synchronised on 4 late packets in a row"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("#0: the jitter buffer re-synchronised"),
        "{}",
        run.stdout
    );
}

#[test]
fn resync_after_late_one_is_refused_and_documented() {
    let run = run_agent(&["analyze", "--resync-after-late", "1", "/nonexistent.pcap"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--resync-after-late") && run.stderr.contains("2..=1000"),
        "{}",
        run.stderr
    );
    let help = run_agent(&["analyze", "--help"]);
    assert_eq!(help.status, 0);
    assert!(
        help.stdout.contains("--resync-after-late <N>") && help.stdout.contains("[default: 3]"),
        "{}",
        help.stdout
    );
}

/// `replay` runs the live worker loop (`run` shares it with the ring source) with the analyzer
/// settings of the config file: `analysis.resync_after_late` must reach it.
#[test]
fn replay_takes_resync_after_late_from_the_config() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = route_change_capture(dir.path());
    let discarded_with = |setting: Option<u32>| -> (u64, u64) {
        let cfg = dir.path().join("agent.toml");
        let line = setting.map_or(String::new(), |k| format!("resync_after_late = {k}\n"));
        std::fs::write(
            &cfg,
            format!("agent_id = \"jbuf\"\n[analysis]\ninterval_s = 2\n{line}[privacy]\npseudonymize = false\n"),
        )
        .expect("config");
        let out = dir.path().join("out.jsonl");
        let _ = std::fs::remove_file(&out);
        let run = run_agent(&[
            "replay",
            "--config",
            cfg.to_str().expect("utf8"),
            "--sink",
            &format!("file:{}", out.display()),
            path.to_str().expect("utf8"),
        ]);
        assert_eq!(run.status, 0, "{}", run.stderr);
        let text = std::fs::read_to_string(&out).expect("replay output");
        let mut windows = 0;
        let mut total = None;
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).expect("JSON line");
            if v["type"] != "stream" || v["src"] != "203.0.113.5:30000" {
                continue;
            }
            windows += u(&v, "jb_discarded");
            if v["final"] == true {
                total = Some(u(&v["totals"], "jb_discarded"));
            }
        }
        (windows, total.expect("a final report"))
    };
    assert_eq!(discarded_with(None), (2, 2), "default K = 3");
    assert_eq!(discarded_with(Some(5)), (4, 4));
    assert_eq!(discarded_with(Some(0)), (HALF as u64, HALF as u64));
}

#[test]
fn check_config_names_a_bad_resync_after_late() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, "[analysis]\nresync_after_late = 1\n").expect("config");
    let run = run_agent(&["check-config", "--config", cfg.to_str().expect("utf8")]);
    assert_eq!(run.status, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("analysis.resync_after_late")),
        "{}",
        run.stdout
    );
}
