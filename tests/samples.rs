//! End-to-end: every capture in `../shared/samples` through the `voqa-agent analyze` binary,
//! compared with its ground-truth JSON (computed by the sample generator from the exact packets
//! written, not by any monitor). Counts must be exact, jitter within 0.01 ms, RTT within 1 ms,
//! reference quality within 0.02, and no stream may be reported that the truth does not list.

mod support;

use serde_json::Value;
use support::{analyze_json, samples_dir};

fn main() {
    let trials = trials![
        a_clean_pcmu,
        b_loss_5pct,
        d_jitter_normal10,
        e_duplicates,
        f_wraparound,
        h_opus_dynamic,
        i_rtcp,
        j_noise,
        k_pcapng_ns,
        k_vlan,
        l_fragments_malformed,
    ];
    support::harness::main(file!(), trials)
}

const JITTER_TOL: f64 = 0.01;
const QUALITY_TOL: f64 = 0.02;
const RTT_TOL: f64 = 1.0;

fn truth(dir: &std::path::Path, name: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(format!("{name}.truth.json"))).expect("truth file");
    serde_json::from_str(&text).expect("truth JSON")
}

fn close(got: &Value, want: &Value, tol: f64, what: &str) {
    match (got.as_f64(), want.as_f64()) {
        (Some(g), Some(w)) => assert!((g - w).abs() <= tol, "{what}: got {g}, want {w} (±{tol})"),
        (None, None) if got.is_null() && want.is_null() => {}
        _ => panic!("{what}: got {got}, want {want}"),
    }
}

fn check_sample(name: &str, file: &str) {
    let Some(dir) = samples_dir(name) else { return };
    let t = truth(&dir, name);
    let doc = analyze_json(&[&dir.join(file)], &["--threads", "1"]);
    // Parallel analysis must give the very same document.
    assert_eq!(
        doc,
        analyze_json(&[&dir.join(file)], &["--threads", "3"]),
        "{name}: --threads 3 differs"
    );
    let got = doc["streams"].as_array().expect("streams");
    let want = t["streams"].as_array().expect("truth streams");
    let ids = |v: &Value| {
        format!(
            "{} {} {}",
            v["src"].as_str().unwrap_or(""),
            v["dst"].as_str().unwrap_or(""),
            v["ssrc"].as_str().unwrap_or("").to_lowercase()
        )
    };
    let mut got_ids: Vec<String> = got.iter().map(ids).collect();
    let mut want_ids: Vec<String> = want.iter().map(ids).collect();
    got_ids.sort();
    want_ids.sort();
    assert_eq!(
        got_ids, want_ids,
        "{name}: reported streams differ from the truth"
    );

    for w in want {
        let g = got
            .iter()
            .find(|g| ids(g) == ids(w))
            .expect("matched above");
        let what = |f: &str| format!("{name} {} {f}", ids(w));
        for field in [
            "packets",
            "expected",
            "lost",
            "duplicates",
            "reordered",
            "payload_type",
            "clock_rate",
            "loss_bursts",
            "max_loss_burst",
            "lost_rfc3550",
        ] {
            assert_eq!(g[field], w[field], "{}", what(field));
        }
        assert_eq!(
            g["codec"].as_str().map(str::to_ascii_lowercase),
            w["codec"].as_str().map(str::to_ascii_lowercase),
            "{}",
            what("codec")
        );
        for field in [
            "jitter_ms",
            "max_jitter_ms",
            "mean_jitter_ms",
            "max_delta_ms",
        ] {
            close(&g[field], &w[field], JITTER_TOL, &what(field));
        }
        let rq = &w["reference_quality"];
        assert_eq!(
            g["jb_discarded"],
            rq["jb_discarded"],
            "{}",
            what("jb_discarded")
        );
        close(&g["rtt_ms"], &rq["rtt_ms"], RTT_TOL, &what("rtt_ms"));
        for (gf, wf) in [
            ("effective_loss_pct", "effective_loss_pct"),
            ("burst_ratio", "burst_ratio"),
            ("delay_ms", "delay_ms"),
            ("r_factor", "r_factor"),
            ("mos", "mos"),
        ] {
            close(&g[gf], &rq[wf], QUALITY_TOL, &what(gf));
        }
    }

    // Every SIP call of the truth is reported, tied to its streams, with its INVITE time.
    let calls = doc["calls"].as_array().expect("calls");
    for c in t["sip_calls"].as_array().into_iter().flatten() {
        let id = c["call_id"].as_str().expect("call id");
        let call = calls
            .iter()
            .find(|x| x["call_id"] == id)
            .unwrap_or_else(|| panic!("{name}: call {id} missing"));
        let streams = call["streams"].as_array().expect("call streams");
        assert!(!streams.is_empty(), "{name}: call {id} has no streams");
        let invite_ns = c["invite_time_ns"].as_i64().expect("invite time");
        let secs = invite_ns / 1_000_000_000;
        let micros = (invite_ns % 1_000_000_000) / 1000;
        let setup = call["setup"].as_str().expect("setup time");
        assert!(
            setup.ends_with(&format!("{:02}.{micros:06}Z", secs % 60)),
            "{name}: setup {setup} vs {invite_ns}"
        );
        for s in streams {
            let i = s.as_u64().expect("index") as usize;
            assert_eq!(
                got[i]["call_id"], id,
                "{name}: stream {i} not tied to call {id}"
            );
        }
    }

    // Everything in the file was accounted for.
    let f = &doc["files"][0];
    assert_eq!(f["packets"], t["frames"], "{name}: frames read");
}

fn a_clean_pcmu() {
    check_sample("a_clean_pcmu", "a_clean_pcmu.pcap");
}

fn b_loss_5pct() {
    check_sample("b_loss_5pct", "b_loss_5pct.pcap");
}

fn d_jitter_normal10() {
    check_sample("d_jitter_normal10", "d_jitter_normal10.pcap");
}

fn e_duplicates() {
    check_sample("e_duplicates", "e_duplicates.pcap");
}

fn f_wraparound() {
    check_sample("f_wraparound", "f_wraparound.pcap");
}

fn h_opus_dynamic() {
    check_sample("h_opus_dynamic", "h_opus_dynamic.pcap");
}

fn i_rtcp() {
    check_sample("i_rtcp", "i_rtcp.pcap");
}

fn j_noise() {
    check_sample("j_noise", "j_noise.pcap");
}

fn k_pcapng_ns() {
    check_sample("k_pcapng_ns", "k_pcapng_ns.pcapng");
}

fn k_vlan() {
    check_sample("k_vlan", "k_vlan.pcap");
}

fn l_fragments_malformed() {
    let Some(dir) = samples_dir("l_fragments_malformed") else {
        return;
    };
    check_sample("l_fragments_malformed", "l_fragments_malformed.pcap");
    // The junk frames are counted as skipped, not silently lost: fragments and malformed/truncated.
    let doc = analyze_json(&[&dir.join("l_fragments_malformed.pcap")], &[]);
    let skipped = &doc["files"][0]["skipped"];
    let fragments = skipped["fragments"].as_u64().unwrap_or(0);
    assert_eq!(fragments, 6, "fragment frames: {skipped}");
    // What became of them (read from the file's headers): two complete pairs (ids 0x4feb and
    // 0x4fee, a UDP 5062 datagram and a SIP OPTIONS) are reassembled; the lone middle fragment
    // (id 0x4fec, MF=1, 252 octets: not a multiple of 8) is inconsistent; the lone first one
    // (id 0x4fed at 15.4 s) times out, its rest never coming within 5 s before the end at 21 s.
    let r = &doc["files"][0]["ip_reassembly"];
    let outcome = |k: &str| r[k].as_u64().unwrap_or(u64::MAX);
    assert_eq!(
        [
            "reassembled",
            "inconsistent",
            "timed_out",
            "incomplete",
            "overlapping"
        ]
        .map(outcome),
        [2, 1, 1, 0, 0],
        "ip_reassembly: {r}"
    );
    let bad =
        skipped["truncated"].as_u64().unwrap_or(0) + skipped["malformed"].as_u64().unwrap_or(0);
    assert!(bad >= 12, "truncated + malformed frames: {skipped}");
}
