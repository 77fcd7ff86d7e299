//! Live end-to-end tests: real traffic between two network namespaces, impaired by a seeded
//! userspace relay whose log is the ground truth, captured by tcpdump and by `voqa-agent run`.
//!
//! They need root, `ip`, `gst-launch-1.0` and `tcpdump`; without them they are reported as
//! ignored (libtest-mimic harness, `support::harness`), unless `$VOQA_REQUIRE_LIVE` is set
//! (CI), which turns a skip into a failure.
//! Every test is bounded in time (well under 60 s) and kills what it started, also on panic.
//! They must not touch the host's own network configuration: everything lives in namespaces
//! named `voqa-<tag>-<pid>-{a,b}`.

mod support;

#[path = "support/netns.rs"]
mod netns;
#[path = "support/relay.rs"]
mod relay;
#[path = "support/sip_call.rs"]
mod sip_call;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netns::{ADDR_A, ADDR_B, ChildGuard, Tcpdump, TestNet};
use relay::{Relay, RelayConfig, RelayLog};
use serde_json::Value;
use voqa_wire::{AgentRecord, Heartbeat, StreamReport};

fn main() {
    let mut trials = trials![
        gstreamer_through_relay_matches_relay_ground_truth,
        live_agent_totals_equal_offline_analysis,
        live_workers_give_each_call_all_its_streams,
        kernel_drops_are_reported_when_the_ring_is_too_small,
        check_config_names_the_missing_capability_and_runs_without_root,
        unprivileged_agent_with_only_cap_net_raw_captures,
        sd_notify_ready_and_watchdog_stops_while_a_worker_is_stalled,
    ];
    trials.push(support::harness::ignored_trial("ns_child", ns_child));
    support::harness::main(file!(), trials)
}

/// Port GStreamer sends to inside each namespace (the relay's listening port on 127.0.0.1).
const RELAY_PORT: u16 = 6000;
const PTIME: Duration = Duration::from_millis(20);
/// Width of the relay's uniform extra delay in these tests.
const RELAY_JITTER_MS: f64 = 8.0;

/// Child processes started by `netns::spawn_child` land here (see netns.rs): this is how Rust
/// code runs inside a namespace without `setns` in-process. Run directly, it does nothing.
fn ns_child() {
    let Some((role, args)) = netns::child_role() else {
        return;
    };
    match role.as_str() {
        "relay" => relay::child_main(&args),
        "udp-send" => netns::child_udp_send(&args),
        "probe" => probe_child(&args),
        "blast" => blast_child(&args),
        other => panic!("unknown child role {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

fn test_net(tag: &str, test: &str) -> Option<TestNet> {
    match TestNet::new(tag) {
        Ok(net) => Some(net),
        Err(reason) => {
            netns::skip_or_fail(test, &format!("cannot create network namespaces: {reason}"));
            None
        }
    }
}

/// A G.711 µ-law sender: 20 ms packets of 160 samples, `packets` of them in real time, to the
/// relay on 127.0.0.1 inside `ns`. SSRC, first sequence number and timestamp are fixed so the
/// stream is recognisable; the sequence is started close to the wrap on purpose.
fn gst_sender(ns: &str, packets: u32, ssrc: u32, first_seq: u16, log: &Path) -> ChildGuard {
    gst_sender_to(ns, packets, ssrc, first_seq, RELAY_PORT, log)
}

/// [`gst_sender`] to the relay listening on `port` (several relays in one namespace).
fn gst_sender_to(
    ns: &str,
    packets: u32,
    ssrc: u32,
    first_seq: u16,
    port: u16,
    log: &Path,
) -> ChildGuard {
    let num_buffers = format!("num-buffers={packets}");
    let pay = [
        "rtppcmupay".to_string(),
        format!("ssrc={ssrc}"),
        format!("seqnum-offset={first_seq}"),
        "timestamp-offset=1000".to_string(),
    ];
    let sink_port = format!("port={port}");
    let mut args: Vec<&str> = vec![
        "-q",
        "audiotestsrc",
        "is-live=true",
        &num_buffers,
        "samplesperbuffer=160",
        "!",
        "audio/x-raw,rate=8000,channels=1",
        "!",
        "mulawenc",
        "!",
    ];
    args.extend(pay.iter().map(String::as_str));
    args.extend(["!", "udpsink", "host=127.0.0.1", &sink_port]);
    netns::run_in(ns, "gst-launch-1.0", &args, log)
}

fn wait_gst(gst: &mut ChildGuard, packets: u32, log: &Path) {
    let limit = PTIME * packets + Duration::from_secs(15);
    let status = gst.wait_bounded(limit);
    assert!(
        status.success(),
        "gst-launch failed ({status}):\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The relay's impairments in these tests: 2 % loss, delay uniform in [1, 9] ms.
fn impaired(mut config: RelayConfig, seed: u64) -> RelayConfig {
    config.loss = 0.02;
    config.base_ms = 1.0;
    config.jitter_ms = RELAY_JITTER_MS;
    config.seed = seed;
    config
}

/// The offline stream must be exactly what the relay forwarded.
fn assert_stream_matches_relay(what: &str, s: &Value, log: &RelayLog, ssrc: u32, sent: u32) {
    assert_eq!(
        log.received.len() as u32,
        sent,
        "{what}: relay got every packet sent"
    );
    log.assert_input_consecutive();
    assert_eq!(log.non_rtp, 0, "{what}: relay saw non-RTP input");
    let (lo, hi) = log.forwarded_span();
    // The first `spare_first` packets are never dropped, so the stream starts at the first one;
    // a drop after the last forwarded packet is invisible and not loss (RelayLog::visible_drops).
    assert_eq!(lo, 0, "{what}: first packet forwarded");
    assert!(
        log.visible_drops() > 0,
        "{what}: the seeded relay dropped nothing; pick another seed"
    );
    assert_eq!(s["ssrc"], format!("0x{ssrc:08x}"), "{what}: ssrc");
    assert_eq!(s["clock_rate"], 8000, "{what}: clock");
    assert_eq!(s["packets"], log.forwarded(), "{what}: packets");
    assert_eq!(s["expected"], hi - lo + 1, "{what}: expected");
    assert_eq!(s["lost"], log.visible_drops(), "{what}: lost = relay drops");
    assert_eq!(s["duplicates"], 0, "{what}: duplicates");
    assert_eq!(s["reordered"], log.reordered(), "{what}: reordered");
}

/// The relay's own contribution to jitter must be what uniform(0, J) delay produces.
///
/// Per packet the relay adds U_i ~ uniform(0, J) (J = 8 ms), so over consecutive packets
/// ΔU = U_i − U_{i−1} has the triangular density on [−J, J], with E|ΔU| = J/3 (2.67 ms) and
/// sd|ΔU| = J/√18 (1.89 ms). The RFC 3550 A.8 estimator is an exponential average of |D| with
/// gain 1/16: its stationary mean is E|ΔU| = J/3; after any one packet its sd is about
/// sd|ΔU|·√(1/31) ≈ 0.34 ms, ≈ 0.45 ms allowing for neighbouring ΔU sharing a U. Its mean over
/// N ≈ 400–500 packets is steadier (sd ≈ 0.12 ms), less a ≈ 3 % ramp-up deficit from J = 0.
/// Windows (≈ 3.5 sd, generous): last value J/3 ± 1.6 ms, mean J/3 ± 0.6 ms.
fn assert_relay_jitter_in_uniform_range(what: &str, relay_last: f64, relay_mean: f64) {
    let centre = RELAY_JITTER_MS / 3.0;
    assert!(
        (centre - 1.6..=centre + 1.6).contains(&relay_last),
        "{what}: the relay's own jitter {relay_last:.3} ms is not what uniform(0, {RELAY_JITTER_MS}) ms delay gives (≈ {centre:.2} ms)"
    );
    assert!(
        (centre - 0.6..=centre + 0.6).contains(&relay_mean),
        "{what}: the relay's own mean jitter {relay_mean:.3} ms is not what uniform(0, {RELAY_JITTER_MS}) ms delay gives (≈ {centre:.2} ms)"
    );
}

/// The agent's jitter against the relay's ground truth, in two steps.
///
/// 1. Measurement: the RFC 3550 jitter of the relay's release times must equal the agent's
///    within the timestamp uncertainty of those release times (`RelayLog::
///    timestamp_uncertainty_ms`, a few µs normally, more when the relay is preempted around
///    `send_to`) plus 10 µs for the pcap's µs timestamps.
/// 2. Range: the wire's transit is (sender and loopback timing, relay lateness) + U_i, so per
///    packet pair |D_wire| lies within |ΔU| ± |D_rest|; the A.8 average is linear with
///    positive weights, so J_wire lies within J_U ± J_rest, where J_U (the relay's delays
///    alone) must be in the uniform range above and J_rest is measured from the relay's log.
///    On a quiet machine J_rest is a fraction of a ms; on an overloaded one GStreamer's send
///    timing can add several ms (seen: mean jitter 5.7 ms with 2 CPU hogs), which a fixed
///    window around J/3 would wrongly call a measurement error.
fn assert_jitter_matches_relay(what: &str, s: &Value, log: &RelayLog) {
    let jitter = |pkts: &[(i64, u32)]| support::reference_jitter_ms(pkts, 8000.0);
    let (wire_last, _, wire_mean) = jitter(&log.release_times());
    let (u_last, _, u_mean) = jitter(&log.times_of_relay_delay_only(8000));
    let (rest_last, _, rest_mean) = jitter(&log.times_without_relay_delay());
    let (unc_last, unc_mean) = log.timestamp_uncertainty_ms();
    let measured = s["jitter_ms"].as_f64().expect("jitter_ms");
    let measured_mean = s["mean_jitter_ms"].as_f64().expect("mean_jitter_ms");
    let detail = format!(
        "agent {measured:.4}/{measured_mean:.4} ms (last/mean); relay release times \
         {wire_last:.4}/{wire_mean:.4} ± {unc_last:.4}/{unc_mean:.4}; relay delay alone \
         {u_last:.4}/{u_mean:.4}; everything else {rest_last:.4}/{rest_mean:.4}"
    );
    assert_relay_jitter_in_uniform_range(what, u_last, u_mean);
    assert!(
        (measured - wire_last).abs() <= unc_last + 0.01,
        "{what}: jitter differs from the relay's release times: {detail}"
    );
    assert!(
        (measured_mean - wire_mean).abs() <= unc_mean + 0.01,
        "{what}: mean jitter differs from the relay's release times: {detail}"
    );
    let slack = 0.01;
    assert!(
        (u_last - rest_last - unc_last - slack..=u_last + rest_last + unc_last + slack)
            .contains(&measured),
        "{what}: jitter outside relay delay ± other noise: {detail}"
    );
    assert!(
        (u_mean - rest_mean - unc_mean - slack..=u_mean + rest_mean + unc_mean + slack)
            .contains(&measured_mean),
        "{what}: mean jitter outside relay delay ± other noise: {detail}"
    );
}

/// The windows' per-packet jitter histograms, merged, against the relay's release times:
/// every jitter sample is in a histogram, and the merged p50/p95 are the relay's per-packet
/// percentiles (nearest rank) within the agent's bin precision (1/16 of the value, 10 µs
/// units) plus the release times' timestamp uncertainty.
fn assert_jitter_histograms_match_relay(what: &str, reports: &[&StreamReport], log: &RelayLog) {
    use voqa_wire::histogram::{decode_jitter_histogram, new_jitter_histogram, quantile_ms};
    let mut merged = new_jitter_histogram();
    for r in reports {
        match &r.jitter_histogram {
            Some(text) => {
                let h = decode_jitter_histogram(text)
                    .unwrap_or_else(|e| panic!("{what}: bad jitter_histogram: {e}"));
                assert_eq!(
                    h.len(),
                    r.jitter_samples,
                    "{what}: histogram count vs jitter_samples"
                );
                merged.add(&h).expect("same bounds");
            }
            None => assert_eq!(r.jitter_samples, 0, "{what}: samples without a histogram"),
        }
    }
    let mut series = support::reference_jitter_series_ms(&log.release_times(), 8000.0);
    assert_eq!(
        merged.len(),
        series.len() as u64,
        "{what}: merged count vs relay packets"
    );
    series.sort_by(f64::total_cmp);
    let (unc_last, unc_mean) = log.timestamp_uncertainty_ms();
    let unc = unc_last.max(unc_mean);
    for q in [0.50, 0.95] {
        let rank = ((q * series.len() as f64).ceil() as usize).max(1);
        let truth = series[rank - 1];
        let got = quantile_ms(&merged, q).expect("non-empty");
        assert!(
            (got - truth).abs() <= truth / 16.0 + 0.01 + unc,
            "{what}: merged p{} {got:.4} ms vs relay {truth:.4} ms (± {unc:.4})",
            q * 100.0
        );
    }
}

fn sock(ip: &str, port: u16) -> String {
    format!("{ip}:{port}")
}

// ---------------------------------------------------------------------------------------------

fn gstreamer_through_relay_matches_relay_ground_truth() {
    const TEST: &str = "gstreamer_through_relay_matches_relay_ground_truth";
    if !netns::live_prerequisites(TEST) {
        return;
    }
    let Some(net) = test_net("gst", TEST) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    const PACKETS: u32 = 500; // 10 s
    const SSRC: u32 = 0x6a57_0001;
    let (src_port, dst_port) = (40_000, 50_000);

    let pcap = dir.join("vb.pcap");
    let tcpdump = Tcpdump::start(&net.b, "vb", &pcap, &dir.join("tcpdump.log"));
    let config = impaired(
        relay::config(
            dir,
            "relay-ab",
            &sock("127.0.0.1", RELAY_PORT),
            &sock(ADDR_A, src_port),
            &sock(ADDR_B, dst_port),
        ),
        7,
    );
    let relay = Relay::start(&net.a, config, dir, "relay-ab");
    let gst_log = dir.join("gst-ab.log");
    let mut gst = gst_sender(&net.a, PACKETS, SSRC, 65_300, &gst_log);
    wait_gst(&mut gst, PACKETS, &gst_log);
    let log = relay.finish();
    // The relay has sent everything when it exits; immediate mode hands it to tcpdump at once,
    // the margin only covers tcpdump's own write.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        tcpdump.stop(),
        0,
        "tcpdump dropped packets: the capture is not the truth"
    );

    let doc = support::analyze_json(&[&pcap], &[]);
    let streams = doc["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 1, "exactly one stream: {streams:#?}");
    let found = support::find_stream(&doc, &sock(ADDR_A, src_port), &sock(ADDR_B, dst_port));
    assert_eq!(found.len(), 1, "the stream is a→b: {streams:#?}");
    let s = found[0];
    assert_stream_matches_relay("a→b", s, &log, SSRC, PACKETS);
    assert_jitter_matches_relay("a→b", s, &log);
}

// ---------------------------------------------------------------------------------------------
// `voqa-agent run`

/// `voqa-agent run` inside namespace b on `vb`, writing JSON lines to `out`.
struct LiveAgent {
    guard: ChildGuard,
    out: PathBuf,
    log: PathBuf,
}

impl LiveAgent {
    fn start(ns: &str, dir: &Path, extra_config: &str) -> LiveAgent {
        let bin = support::agent_bin().display().to_string();
        Self::start_with(ns, dir, extra_config, &[], &bin, 1)
    }

    /// Like [`LiveAgent::start`] with `workers` capture workers on `vb` (one fanout group).
    fn start_workers(ns: &str, dir: &Path, extra_config: &str, workers: usize) -> LiveAgent {
        let bin = support::agent_bin().display().to_string();
        Self::start_with(ns, dir, extra_config, &[], &bin, workers)
    }

    /// Like [`LiveAgent::start`], with the agent `bin` run through `launcher` (e.g. `setpriv`
    /// and its options; empty: directly).
    fn start_with(
        ns: &str,
        dir: &Path,
        extra_config: &str,
        launcher: &[&str],
        bin: &str,
        workers: usize,
    ) -> LiveAgent {
        let out = dir.join("agent-out.jsonl");
        let log = dir.join("agent.log");
        let config = dir.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "[capture]\ninterfaces = [\"vb\"]\nworkers = {workers}\n{extra_config}\n\
                 [analysis]\ninterval_s = 1\nidle_timeout_s = 30\n\n\
                 [output]\nsink = \"file:{out}\"\n\n\
                 [privacy]\npseudonymize = false\n\n\
                 [health]\nheartbeat_interval_s = 1\n",
                out = out.display()
            ),
        )
        .expect("write agent config");
        let (config_s, sink) = (
            config.display().to_string(),
            format!("file:{}", out.display()),
        );
        let run_args = [
            "run",
            "--config",
            &config_s,
            "--interface",
            "vb",
            "--sink",
            &sink,
            "--interval",
            "1",
        ];
        let guard = match launcher.split_first() {
            None => netns::run_in(ns, bin, &run_args, &log),
            Some((cmd, options)) => {
                let mut args: Vec<&str> = options.to_vec();
                args.push(bin);
                args.extend(run_args);
                netns::run_in(ns, cmd, &args, &log)
            }
        };
        let mut agent = LiveAgent { guard, out, log };
        agent.wait_for_heartbeat();
        agent
    }

    /// A heartbeat means the workers run; the extra pause covers a ring being attached just
    /// after the first heartbeat, since a packet missed by the agent but captured by tcpdump
    /// would break the exact comparison.
    fn wait_for_heartbeat(&mut self) {
        self.wait_until("a heartbeat", Duration::from_secs(10), |records| {
            records
                .iter()
                .any(|r| matches!(r, AgentRecord::Heartbeat(_)))
        });
        std::thread::sleep(Duration::from_millis(500));
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls the sink until `done` holds for its records (at most `limit`); fails at once if the
    /// agent exits.
    fn wait_until(&mut self, what: &str, limit: Duration, done: impl Fn(&[AgentRecord]) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.records()) {
                return;
            }
            if let Ok(Some(status)) = self.guard.child.try_wait() {
                panic!("voqa-agent run exited ({status}):\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "live: not reached within {limit:?}: {what}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Complete lines of the sink so far, parsed with the wire types (a partial last line is
    /// left for later).
    fn records(&self) -> Vec<AgentRecord> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let complete = match text.rfind('\n') {
            Some(end) => &text[..end],
            None => "",
        };
        complete
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad sink line ({e}): {l}")))
            .collect()
    }

    /// SIGTERM: the agent flushes final reports of every open stream and exits 0.
    fn terminate(mut self) -> Vec<AgentRecord> {
        let status = self.guard.stop("TERM", Duration::from_secs(15));
        assert!(
            status.success(),
            "voqa-agent run exit status {status} after SIGTERM:\n{}",
            self.log_text()
        );
        self.records()
    }
}

fn stream_reports(records: &[AgentRecord]) -> Vec<&StreamReport> {
    records
        .iter()
        .filter_map(|r| match r {
            AgentRecord::Stream(s) => Some(s),
            AgentRecord::Heartbeat(_) | AgentRecord::Call(_) => None,
        })
        .collect()
}

fn heartbeats(records: &[AgentRecord]) -> Vec<&Heartbeat> {
    records
        .iter()
        .filter_map(|r| match r {
            AgentRecord::Heartbeat(h) => Some(h),
            AgentRecord::Stream(_) | AgentRecord::Call(_) => None,
        })
        .collect()
}

/// The live reports of one direction: one stream id, windows tiling the stream, counters
/// summing to the final totals, and totals equal to the offline analysis of tcpdump's capture.
fn check_live_direction(what: &str, reports: &[&StreamReport], offline: &Value, call_id: &str) {
    let ids: std::collections::BTreeSet<&str> =
        reports.iter().map(|r| r.stream_id.as_str()).collect();
    assert_eq!(ids.len(), 1, "{what}: one stream, got ids {ids:?}");
    let finals: Vec<_> = reports.iter().filter(|r| r.is_final).collect();
    assert_eq!(finals.len(), 1, "{what}: exactly one final report");
    let last = reports.last().expect("reports");
    assert!(last.is_final, "{what}: the final report comes last");
    let totals = last.totals.as_ref().expect("final report carries totals");

    for w in reports.windows(2) {
        assert_eq!(
            w[0].window_end, w[1].window_start,
            "{what}: windows must tile (no gap, no overlap)"
        );
    }
    for r in reports {
        assert!(
            r.window_start < r.window_end,
            "{what}: empty or inverted window {r:?}"
        );
    }
    let sum = |f: fn(&StreamReport) -> u64| reports.iter().map(|r| f(r)).sum::<u64>();
    assert_eq!(
        sum(|r| r.packets),
        totals.packets,
        "{what}: Σ window packets"
    );
    assert_eq!(
        sum(|r| r.expected),
        totals.expected,
        "{what}: Σ window expected"
    );
    assert_eq!(sum(|r| r.lost), totals.lost, "{what}: Σ window lost");
    assert_eq!(
        sum(|r| r.duplicates),
        totals.duplicates,
        "{what}: Σ window duplicates"
    );
    assert_eq!(
        sum(|r| r.reordered),
        totals.reordered,
        "{what}: Σ window reordered"
    );

    for key in ["packets", "expected", "lost", "duplicates", "reordered"] {
        let live = serde_json::to_value(totals).expect("totals to JSON")[key].clone();
        assert_eq!(
            live, offline[key],
            "{what}: live totals.{key} vs offline analysis"
        );
    }
    for key in ["jitter_ms", "max_jitter_ms", "mean_jitter_ms"] {
        let live = serde_json::to_value(totals).expect("totals to JSON")[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: live {key} missing"));
        let off = offline[key].as_f64().expect("offline jitter");
        println!("{what}: {key} live {live} offline {off}");
        assert!(
            (live - off).abs() <= 0.01,
            "{what}: live {key} {live} vs offline {off}"
        );
    }
    assert_eq!(
        totals.call_id.as_deref(),
        Some(call_id),
        "{what}: totals.call_id"
    );
    assert_eq!(
        last.call_id.as_deref(),
        Some(call_id),
        "{what}: report call_id"
    );
    assert_eq!(offline["call_id"], call_id, "{what}: offline call_id");
}

fn live_agent_totals_equal_offline_analysis() {
    const TEST: &str = "live_agent_totals_equal_offline_analysis";
    if !netns::live_prerequisites(TEST) {
        return;
    }
    let Some(net) = test_net("run", TEST) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    const PACKETS: u32 = 400; // 8 s each way
    const SSRC_AB: u32 = 0x6a57_00ab;
    const SSRC_BA: u32 = 0x6a57_00ba;
    let call = sip_call::SipCall::new("voqa-live-call-1@10.77.0.1", 40_000, 50_000);
    let busy = sip_call::SipCall::new("voqa-live-busy-1@10.77.0.1", 40_010, 50_010);
    let (a_media, b_media) = (sock(ADDR_A, call.a_port), sock(ADDR_B, call.b_port));

    let pcap = dir.join("vb.pcap");
    let tcpdump = Tcpdump::start(&net.b, "vb", &pcap, &dir.join("tcpdump.log"));
    // Short block retirement so that the last packets are analysed well before SIGTERM; host b
    // is the monitored host, so calls from a are inbound with a as the peer.
    let mut agent = LiveAgent::start(
        &net.b,
        dir,
        &format!("retire_timeout_ms = 100\n\n[calls]\nlocal_nets = [\"{ADDR_B}/32\"]\n"),
    );

    busy.busy(&net, dir);
    call.setup(&net, dir);
    let listen = sock("127.0.0.1", RELAY_PORT);
    let relay_ab = Relay::start(
        &net.a,
        impaired(
            relay::config(dir, "relay-ab", &listen, &a_media, &b_media),
            11,
        ),
        dir,
        "relay-ab",
    );
    let relay_ba = Relay::start(
        &net.b,
        impaired(
            relay::config(dir, "relay-ba", &listen, &b_media, &a_media),
            12,
        ),
        dir,
        "relay-ba",
    );
    let (log_ab, log_ba) = (dir.join("gst-ab.log"), dir.join("gst-ba.log"));
    let mut gst_ab = gst_sender(&net.a, PACKETS, SSRC_AB, 65_000, &log_ab);
    let mut gst_ba = gst_sender(&net.b, PACKETS, SSRC_BA, 100, &log_ba);
    wait_gst(&mut gst_ab, PACKETS, &log_ab);
    wait_gst(&mut gst_ba, PACKETS, &log_ba);
    let truth_ab = relay_ab.finish();
    let truth_ba = relay_ba.finish();
    call.teardown(&net, dir);
    // No sleep racing the capture: tcpdump (-U) has the last message on disk, then the agent
    // has analysed at least as many frames as tcpdump wrote and closed both streams on the BYE.
    let (doc, captured) = analyze_capture(tcpdump, &pcap, &call.ok_bye());
    agent.wait_until(
        "every frame tcpdump saw analysed, both streams ended by the BYE",
        Duration::from_secs(20),
        |r| {
            let frames: u64 = heartbeats(r)
                .last()
                .map_or(0, |h| h.workers.iter().map(|w| w.frames).sum());
            let byes = stream_reports(r)
                .iter()
                .filter(|s| s.is_final && s.end_reason.as_deref() == Some("bye"))
                .count();
            frames >= captured && byes == 2
        },
    );
    let records = agent.terminate();
    assert_eq!(
        doc["streams"].as_array().expect("streams").len(),
        2,
        "offline: two streams"
    );
    let reports = stream_reports(&records);
    let live_pairs: std::collections::BTreeSet<(&str, &str)> = reports
        .iter()
        .map(|r| (r.src.as_str(), r.dst.as_str()))
        .collect();
    assert_eq!(
        live_pairs.len(),
        2,
        "live: one stream per direction, got {live_pairs:?}"
    );

    for (what, src, dst, truth, ssrc) in [
        ("a→b", &a_media, &b_media, &truth_ab, SSRC_AB),
        ("b→a", &b_media, &a_media, &truth_ba, SSRC_BA),
    ] {
        let offline = support::find_stream(&doc, src, dst);
        assert_eq!(offline.len(), 1, "{what}: one offline stream");
        let offline = offline[0];
        assert_stream_matches_relay(what, offline, truth, ssrc, PACKETS);
        assert_jitter_matches_relay(what, offline, truth);
        let live: Vec<&StreamReport> = reports
            .iter()
            .copied()
            .filter(|r| r.src == *src && r.dst == *dst)
            .collect();
        assert!(!live.is_empty(), "{what}: no live reports");
        check_live_direction(what, &live, offline, &call.call_id);
        assert_jitter_histograms_match_relay(what, &live, truth);
    }
    assert!(
        !heartbeats(&records).is_empty(),
        "live: heartbeats in the sink"
    );
    check_call_records(&records, &doc, &call.call_id, &busy.call_id);
}

/// Once tcpdump's file holds `last` (the last message sent), stops tcpdump (asserting it
/// dropped nothing) and analyses its capture with host b as the local network: the document
/// and the number of packets captured.
fn analyze_capture(tcpdump: Tcpdump, pcap: &Path, last: &str) -> (Value, u64) {
    wait_for_bytes(pcap, last.as_bytes(), Duration::from_secs(10));
    assert_eq!(
        tcpdump.stop(),
        0,
        "tcpdump dropped packets: the capture is not the truth"
    );
    let local = format!("{ADDR_B}/32");
    let doc = support::analyze_json(&[pcap], &["--local-net", &local]);
    let captured = doc["files"][0]["packets"].as_u64().expect("packets");
    (doc, captured)
}

/// Waits until `path` contains `needle` (at most `limit`).
fn wait_for_bytes(path: &Path, needle: &[u8], limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let bytes = std::fs::read(path).unwrap_or_default();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} does not hold the last message after {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The live call records against the calls of `analyze` on tcpdump's capture, field by field.
/// What legitimately differs is left out, each for its reason:
/// - `streams`: indexes into the `analyze` document's stream list, which a record has no
///   counterpart of (a record names its streams in `media[].stream_id`, compared);
/// - `worst_window_start` / `worst_window_end`: live is the worst interval-report window (1 s
///   here), `analyze` the worst stream from its first to its last packet (no windows offline).
///
/// Everything else must be equal: times (both captures take the kernel's nanosecond receive
/// time of the same frames), status, Q.850 cause, end cause and party, direction and peer,
/// ring time and duration, counters, events, media (stream ids, directions, codecs, MOS), the
/// call's MOS and problems.
fn check_call_records(records: &[AgentRecord], doc: &Value, answered: &str, busy: &str) {
    compare_call_records(records, doc, &[answered, busy]);
    let offline = doc["calls"].as_array().expect("calls");
    // What the calls were built with, so that equality is not that of two wrong records.
    let busy_call = offline.iter().find(|c| c["call_id"] == busy).expect("busy");
    assert_eq!(busy_call["status"], 486);
    assert_eq!(busy_call["reason_cause"], 17);
    assert_eq!(busy_call["end_cause"], "failure");
    assert_eq!(busy_call["ended_by"], "callee");
    assert!(busy_call["answer"].is_null() && busy_call["first_ringing"].is_string());
    let answered_call = offline
        .iter()
        .find(|c| c["call_id"] == answered)
        .expect("answered");
    assert_eq!(answered_call["status"], 200);
    assert_eq!(answered_call["end_cause"], "bye");
    assert_eq!(answered_call["ended_by"], "caller");
    assert_eq!(answered_call["direction"], "inbound");
    assert_eq!(answered_call["peer"], format!("{ADDR_A}:5060"));
    assert_eq!(
        answered_call["media"].as_array().map(Vec::len),
        Some(2),
        "{answered_call:#}"
    );
    assert!(answered_call["mos"].is_number(), "{answered_call:#}");
}

// ---------------------------------------------------------------------------------------------
// Several capture workers: the call join

/// Child role `probe`: for each `[bind, dest, count]` of `flows`, `count` datagrams of four zero
/// bytes (no RTP, no SIP: the agent only counts them as frames) from `bind` to `dest`.
fn probe_child(args: &Value) {
    let mut sockets: Vec<(String, UdpSocket)> = Vec::new();
    for flow in args["flows"].as_array().expect("flows") {
        let bind = flow[0].as_str().expect("bind").to_string();
        let dest: SocketAddr = flow[1].as_str().expect("dest").parse().expect("dest addr");
        let count = flow[2].as_u64().expect("count");
        if !sockets.iter().any(|(b, _)| *b == bind) {
            let socket = UdpSocket::bind(&bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
            sockets.push((bind.clone(), socket));
        }
        let socket = &sockets.iter().find(|(b, _)| *b == bind).expect("socket").1;
        for _ in 0..count {
            socket.send_to(&[0u8; 4], dest).expect("send probe");
            // Paced a little, so that no ring or veth queue drops a probe.
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Frames each capture worker analysed, from the latest heartbeat.
fn worker_frames(records: &[AgentRecord], workers: usize) -> Vec<u64> {
    let mut frames = vec![0; workers];
    if let Some(h) = heartbeats(records).last() {
        for w in &h.workers {
            if let Some(f) = frames.get_mut(w.worker as usize) {
                *f = w.frames;
            }
        }
    }
    frames
}

/// Where the kernel's fanout puts a flow: probed, since its hash is seeded at boot. Each probed
/// flow gets a distinct power of two of datagrams, so the growth of each worker's frame count
/// says which flows it got.
struct FanoutProbe<'a> {
    net: &'a TestNet,
    dir: &'a Path,
    round: u32,
}

impl FanoutProbe<'_> {
    /// Worker (0 or 1) of each flow `(ns, bind, dest)`; `None` when the counts did not add up
    /// (a stray datagram): the caller probes other flows.
    fn workers_of(
        &mut self,
        agent: &mut LiveAgent,
        flows: &[(&str, String, String)],
    ) -> Option<Vec<usize>> {
        assert!(flows.len() <= 12);
        self.round += 1;
        let before = worker_frames(&agent.records(), 2);
        let total: u64 = (1u64 << flows.len()) - 1;
        for ns in [&self.net.a, &self.net.b] {
            let mine: Vec<Value> = flows
                .iter()
                .enumerate()
                .filter(|(_, f)| f.0 == ns.as_str())
                .map(|(i, f)| serde_json::json!([f.1, f.2, 1u64 << i]))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let log = self.dir.join(format!("probe-{}-{ns}.log", self.round));
            let mut child =
                netns::spawn_child(ns, "probe", &serde_json::json!({ "flows": mine }), &log);
            let status = child.wait_bounded(Duration::from_secs(20));
            assert!(
                status.success(),
                "probe failed: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        let grown = loop {
            let now = worker_frames(&agent.records(), 2);
            let grown: Vec<u64> = now.iter().zip(&before).map(|(n, b)| n - b).collect();
            if grown.iter().sum::<u64>() >= total || Instant::now() > deadline {
                break grown;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        println!(
            "probe round {}: {flows:?} grew workers by {grown:?}",
            self.round
        );
        if grown.iter().sum::<u64>() != total || grown[0] & grown[1] != 0 {
            return None;
        }
        Some(
            (0..flows.len())
                .map(|i| usize::from(grown[1] & (1 << i) != 0))
                .collect(),
        )
    }
}

/// Ports of the two answered calls, chosen by probing so that the test cannot pass without the
/// join: call 1's media (both directions, one flow) reaches the worker that does not see the
/// SIP; call 2's caller sends from another port than the one it announced, and its two
/// directions reach different workers — the caller's the SIP worker, the callee's the other.
struct Placement {
    sip_worker: usize,
    /// (a port, b port) of call 1.
    call1: (u16, u16),
    /// (a announced, a sends from, b) of call 2.
    call2: (u16, u16, u16),
}

fn place_flows(net: &TestNet, dir: &Path, agent: &mut LiveAgent) -> Placement {
    let mut probe = FanoutProbe { net, dir, round: 0 };
    let (a, b) = (net.a.as_str(), net.b.as_str());
    let b2: u16 = 51_000;
    let mut sip_worker = None;
    let mut call1 = None;
    let mut send_from = None;
    let mut announced = None;
    for round in 0..8u16 {
        let mut flows: Vec<(&str, String, String)> = Vec::new();
        let mut roles = Vec::new();
        if sip_worker.is_none() {
            flows.push((a, sock(ADDR_A, 5060), sock(ADDR_B, 5060)));
            roles.push(('s', 0u16));
        }
        for k in 0..3u16 {
            let n = round * 3 + k;
            if call1.is_none() {
                flows.push((
                    a,
                    sock(ADDR_A, 40_000 + 4 * n),
                    sock(ADDR_B, 50_000 + 4 * n),
                ));
                roles.push(('1', n));
            }
            if send_from.is_none() {
                flows.push((a, sock(ADDR_A, 41_000 + 4 * n), sock(ADDR_B, b2)));
                roles.push(('f', n));
            }
            if announced.is_none() {
                // The callee's direction of call 2, sent the way it will flow.
                flows.push((b, sock(ADDR_B, b2), sock(ADDR_A, 42_000 + 4 * n)));
                roles.push(('a', n));
            }
        }
        let Some(workers) = probe.workers_of(agent, &flows) else {
            continue;
        };
        if let Some(i) = roles.iter().position(|r| r.0 == 's') {
            sip_worker = Some(workers[i]);
        }
        let Some(sip) = sip_worker else { continue };
        for (i, (role, n)) in roles.iter().enumerate() {
            let (sip_side, n) = (workers[i] == sip, *n);
            match role {
                '1' if !sip_side && call1.is_none() => {
                    call1 = Some((40_000 + 4 * n, 50_000 + 4 * n))
                }
                'f' if sip_side && send_from.is_none() => send_from = Some(41_000 + 4 * n),
                'a' if !sip_side && announced.is_none() => announced = Some(42_000 + 4 * n),
                _ => {}
            }
        }
        if let (Some(sip_worker), Some(call1), Some(from), Some(ann)) =
            (sip_worker, call1, send_from, announced)
        {
            return Placement {
                sip_worker,
                call1,
                call2: (ann, from, b2),
            };
        }
    }
    panic!("no flow placement found in 8 probe rounds (each fails with probability < 1/4)");
}

/// A relay with the usual impairments from `bind` to `dest`, fed by GStreamer on `port`.
fn media_leg(
    ns: &str,
    dir: &Path,
    name: &str,
    port: u16,
    bind: &str,
    dest: &str,
    seed: u64,
) -> Relay {
    let listen = sock("127.0.0.1", port);
    Relay::start(
        ns,
        impaired(relay::config(dir, name, &listen, bind, dest), seed),
        dir,
        name,
    )
}

/// `capture.workers = 2`: the kernel's fanout sends the SIP of a call to one worker and its
/// media (by probing, see [`place_flows`]) to the other, or splits a call's two directions
/// between both. Every call record equals `analyze`'s on tcpdump's capture of the same traffic:
/// call 1 (all media on the other worker) released in steady state by the join once the other
/// worker's packet time passed the call's retirement; call 2 (one direction on each worker,
/// the caller's from an unannounced port: media_address_mismatch) released by the shutdown
/// flush; a busy call. Each worker's frame count is checked against the flows it should have
/// had, so the split really happened.
fn live_workers_give_each_call_all_its_streams() {
    const TEST: &str = "live_workers_give_each_call_all_its_streams";
    if !netns::live_prerequisites(TEST) {
        return;
    }
    let Some(net) = test_net("join", TEST) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    const PACKETS: u32 = 250; // 5 s each way
    let mut agent = LiveAgent::start_workers(
        &net.b,
        dir,
        &format!("retire_timeout_ms = 100\n\n[calls]\nlocal_nets = [\"{ADDR_B}/32\"]\n"),
        2,
    );
    let place = place_flows(&net, dir, &mut agent);
    let other = 1 - place.sip_worker;
    println!(
        "SIP on worker {}; call 1 media {:?} and call 2's callee direction on worker {other}",
        place.sip_worker, place.call1
    );
    let baseline = worker_frames(&agent.records(), 2);

    let pcap = dir.join("vb.pcap");
    let tcpdump = Tcpdump::start(&net.b, "vb", &pcap, &dir.join("tcpdump.log"));
    let busy = sip_call::SipCall::new("voqa-join-busy@10.77.0.1", 40_010, 50_010);
    let call1 = sip_call::SipCall::new("voqa-join-1@10.77.0.1", place.call1.0, place.call1.1);
    let (ann2, from2, b2) = place.call2;
    let call2 = sip_call::SipCall::new("voqa-join-2@10.77.0.1", ann2, b2);
    busy.busy(&net, dir);
    call1.setup(&net, dir);
    call2.setup(&net, dir);
    let (a1, b1) = (sock(ADDR_A, call1.a_port), sock(ADDR_B, call1.b_port));
    let (a2_announced, a2_from, b2) = (sock(ADDR_A, ann2), sock(ADDR_A, from2), sock(ADDR_B, b2));
    let legs = [
        media_leg(&net.a, dir, "c1-ab", 6000, &a1, &b1, 21),
        media_leg(&net.b, dir, "c1-ba", 6000, &b1, &a1, 22),
        media_leg(&net.a, dir, "c2-ab", 6002, &a2_from, &b2, 23),
        media_leg(&net.b, dir, "c2-ba", 6002, &b2, &a2_announced, 24),
    ];
    let mut senders: Vec<(ChildGuard, PathBuf)> = [
        (&net.a, 0x10ab_u32, 6000u16),
        (&net.b, 0x10ba, 6000),
        (&net.a, 0x20ab, 6002),
        (&net.b, 0x20ba, 6002),
    ]
    .iter()
    .map(|&(ns, ssrc, port)| {
        let log = dir.join(format!("gst-{ssrc:x}.log"));
        (gst_sender_to(ns, PACKETS, ssrc, 1000, port, &log), log)
    })
    .collect();
    for (gst, log) in &mut senders {
        wait_gst(gst, PACKETS, log);
    }
    for leg in legs {
        leg.finish();
    }
    call1.teardown(&net, dir);
    let bye_sent = Instant::now();
    // Steady state: the record of call 1 is released by the join, without a shutdown, once its
    // owner retired it (32 s after the BYE) and the other worker passed that time.
    agent.wait_until(
        "the record of call 1 (with its streams from the other worker)",
        Duration::from_secs(60),
        |r| {
            r.iter()
                .any(|r| matches!(r, AgentRecord::Call(c) if c.call.call_id == call1.call_id))
        },
    );
    println!(
        "call 1's record {:.1} s after its BYE (linger 32 s, then the other worker's watermark)",
        bye_sent.elapsed().as_secs_f64()
    );
    // Call 2 ends now and is still lingering at the shutdown: its record comes from the flush.
    call2.teardown(&net, dir);
    let (doc, captured) = analyze_capture(tcpdump, &pcap, &call2.ok_bye());
    agent.wait_until(
        "every frame tcpdump saw analysed",
        Duration::from_secs(20),
        |r| worker_frames(r, 2).iter().sum::<u64>() - baseline.iter().sum::<u64>() >= captured,
    );
    let records = agent.terminate();

    // The fanout split the flows as probed: the other worker had exactly call 1's two streams
    // and call 2's callee stream; the SIP worker everything else (all SIP, call 2's caller).
    let packets_of = |src: &str, dst: &str| -> u64 {
        let found = support::find_stream(&doc, src, dst);
        assert_eq!(found.len(), 1, "one offline stream {src} -> {dst}");
        found[0]["packets"].as_u64().expect("packets")
    };
    let on_other = packets_of(&a1, &b1) + packets_of(&b1, &a1) + packets_of(&b2, &a2_announced);
    let caller2 = packets_of(&a2_from, &b2);
    let grown: Vec<u64> = worker_frames(&records, 2)
        .iter()
        .zip(&baseline)
        .map(|(n, b)| n - b)
        .collect();
    println!("frames per worker since the probes: {grown:?}; captured {captured}");
    assert_eq!(grown[other], on_other, "frames of the worker without SIP");
    assert_eq!(
        grown[place.sip_worker],
        captured - on_other,
        "frames of the SIP worker"
    );
    assert!(caller2 > 0 && grown[place.sip_worker] > caller2);

    let ids = [
        call1.call_id.as_str(),
        call2.call_id.as_str(),
        busy.call_id.as_str(),
    ];
    compare_call_records(&records, &doc, &ids);
    let offline = doc["calls"].as_array().expect("calls");
    let by_id = |id: &str| offline.iter().find(|c| c["call_id"] == id).expect("call");
    for id in [&call1.call_id, &call2.call_id] {
        let c = by_id(id);
        assert_eq!(c["status"], 200, "{c:#}");
        assert_eq!(c["media"].as_array().map(Vec::len), Some(2), "{c:#}");
        assert!(c["mos"].is_number(), "{c:#}");
    }
    assert_eq!(by_id(&busy.call_id)["status"], 486);
    assert_eq!(
        problems_of(by_id(&call1.call_id)),
        Vec::<(String, String)>::new()
    );
    assert_eq!(
        problems_of(by_id(&call2.call_id)),
        vec![(
            "media_address_mismatch".to_string(),
            "caller_to_callee".to_string()
        )]
    );
}

fn problems_of(call: &Value) -> Vec<(String, String)> {
    call["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap_or("?").to_string(),
                p["direction"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// The live call records of `ids` against `analyze`'s calls, field by field, less what
/// legitimately differs (see [`check_call_records`]): exactly one record per call, and no
/// other call on either side.
fn compare_call_records(records: &[AgentRecord], doc: &Value, ids: &[&str]) {
    let live: Vec<&voqa_wire::CallRecord> = records
        .iter()
        .filter_map(|r| match r {
            AgentRecord::Call(c) => Some(c),
            _ => None,
        })
        .collect();
    let offline = doc["calls"].as_array().expect("calls");
    assert_eq!(live.len(), ids.len(), "live call records: {live:#?}");
    assert_eq!(offline.len(), ids.len(), "offline calls: {offline:#?}");
    let strip = |mut v: Value| {
        let object = v.as_object_mut().expect("call object");
        for key in ["streams", "worst_window_start", "worst_window_end"] {
            object.remove(key);
        }
        v
    };
    for id in ids {
        let live_call = live
            .iter()
            .find(|c| c.call.call_id == *id)
            .unwrap_or_else(|| panic!("no live record of {id}: {live:#?}"));
        let offline_call = offline
            .iter()
            .find(|c| c["call_id"] == *id)
            .unwrap_or_else(|| panic!("no offline call {id}"));
        let live_value = strip(serde_json::to_value(&live_call.call).expect("record to JSON"));
        let offline_value = strip(offline_call.clone());
        let (l, o) = (
            live_value.as_object().expect("object"),
            offline_value.as_object().expect("object"),
        );
        assert_eq!(
            l.keys().collect::<Vec<_>>(),
            o.keys().collect::<Vec<_>>(),
            "{id}: the same fields"
        );
        for (key, value) in l {
            assert_eq!(value, &o[key], "{id}: field {key}: live vs offline");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Kernel drops

/// Child role `blast`: `count` small RTP-like datagrams (12-byte header, 8-byte payload, one
/// SSRC, consecutive sequence numbers) as fast as possible (or `gap_us` apart) from `bind` to
/// `dest`; writes the burst's start and end (Unix ns) to `out`.
fn blast_child(args: &Value) {
    let bind: SocketAddr = args["bind"].as_str().expect("bind").parse().expect("bind");
    let dest: SocketAddr = args["dest"].as_str().expect("dest").parse().expect("dest");
    let count = args["count"].as_u64().expect("count");
    // Optional pacing (µs between packets): a capture that must see every packet.
    let gap = Duration::from_micros(args["gap_us"].as_u64().unwrap_or(0));
    let out = PathBuf::from(args["out"].as_str().expect("out"));
    let socket = UdpSocket::bind(bind).expect("bind blast socket");
    let mut packet = [0u8; 20];
    packet[0] = 0x80; // version 2, PT 0 (PCMU)
    packet[8..12].copy_from_slice(&0x6a57_d0d0u32.to_be_bytes());
    let start = unix_ns();
    for i in 0..count {
        packet[2..4].copy_from_slice(&(i as u16).to_be_bytes());
        packet[4..8].copy_from_slice(&((i as u32).wrapping_mul(160)).to_be_bytes());
        // ENOBUFS under pressure is part of the point; keep going.
        let _ = socket.send_to(&packet, dest);
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
    }
    let end = unix_ns();
    std::fs::write(&out, format!("{start} {end}")).expect("write blast times");
}

fn unix_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as i64
}

fn kernel_drops_are_reported_when_the_ring_is_too_small() {
    const TEST: &str = "kernel_drops_are_reported_when_the_ring_is_too_small";
    if !netns::live_prerequisites(TEST) {
        return;
    }
    let Some(net) = test_net("drops", TEST) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    // Two 4 KiB blocks that retire only after 1 s: the ring holds a few dozen frames.
    let agent = LiveAgent::start(
        &net.b,
        dir,
        "block_size = 4096\nblock_count = 2\nretire_timeout_ms = 1000\n",
    );
    let times = dir.join("blast-times");
    let blast_log = dir.join("blast.log");
    let args = serde_json::json!({
        "bind": sock(ADDR_A, 42_000),
        "dest": sock(ADDR_B, 52_000),
        "count": 200_000,
        "out": times.display().to_string(),
    });
    let mut blast = netns::spawn_child(&net.a, "blast", &args, &blast_log);
    let status = blast.wait_bounded(Duration::from_secs(30));
    assert!(
        status.success(),
        "blast failed:\n{}",
        std::fs::read_to_string(&blast_log).unwrap_or_default()
    );
    let text = std::fs::read_to_string(&times).expect("blast times");
    let (start, end) = text.split_once(' ').expect("two times");
    let (burst_start, burst_end): (i64, i64) =
        (start.parse().expect("start"), end.parse().expect("end"));
    // Let the 1 s blocks retire and at least one more heartbeat and window close.
    std::thread::sleep(Duration::from_millis(2500));
    let records = agent.terminate();

    let beats = heartbeats(&records);
    let last = beats.last().expect("heartbeats");
    let drops: u64 = last.workers.iter().map(|w| w.kernel_drops).sum();
    assert!(
        drops > 0,
        "last heartbeat reports no kernel drops: {last:?}"
    );

    let reports = stream_reports(&records);
    let overlapping: Vec<(&StreamReport, f64)> = reports
        .iter()
        .filter_map(|r| {
            let (ws, we) = (r.window_start.as_ns(), r.window_end.as_ns());
            let overlap = we.min(burst_end) - ws.max(burst_start);
            (overlap > 0).then(|| (*r, overlap as f64 / (we - ws).max(1) as f64))
        })
        .collect();
    assert!(
        !overlapping.is_empty(),
        "no stream report overlaps the burst [{burst_start}, {burst_end}]: {reports:#?}"
    );
    assert!(
        overlapping.iter().any(|(r, _)| r.capture_drops > 0),
        "no report overlapping the burst has capture_drops > 0: {overlapping:#?}"
    );
    // Drops are known only when the worker reads the ring's statistics (wall-clock paced), and
    // are charged to the packet-time window then being analysed, which can trail the kernel
    // drops by up to a statistics period. So a window that only touches the burst may show
    // none and the window just after it may show some (both seen); what must hold is that
    // the stream's windows never claim more drops than the kernel counted. The blast loses so
    // much that its sequence restarts several times, each restart a new stream of the same
    // flow: each drop may be charged to one of those windows only (it was charged to the
    // restarted stream's last window and again to its successor's, up to 6.8x the kernel's
    // count under CPU load, before `WindowReport::capture_drops` became per stream window).
    // The last heartbeat is written after the worker's final read of the kernel counters.
    let claimed: u64 = reports
        .iter()
        .filter(|r| r.src == sock(ADDR_A, 42_000))
        .map(|r| r.capture_drops)
        .sum();
    assert!(
        claimed <= drops,
        "the blast stream's windows claim {claimed} capture drops, the kernel counted {drops}"
    );
}

/// `check-config` says exactly what is missing for an unprivileged user, and the agent runs
/// without root once it has CAP_NET_RAW (as the systemd unit grants it).
fn check_config_names_the_missing_capability_and_runs_without_root() {
    const TEST: &str = "check_config_names_the_missing_capability_and_runs_without_root";
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    let has_setpriv = std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok();
    if !is_root || !has_setpriv {
        let reason = if is_root {
            "setpriv (util-linux) missing"
        } else {
            "needs root to drop privileges"
        };
        netns::skip_or_fail(TEST, reason);
        return;
    }
    let (_dir, bin) = agent_copy_for_others();
    let check = |caps: &[&str]| {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(caps);
        cmd.arg(&bin)
            .args(["check-config", "--interface", "lo", "--sink", "stdout"]);
        let out = cmd.output().expect("setpriv");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = check(&["--inh-caps=-all"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("FAIL CAP_NET_RAW is missing"), "{text}");
    assert!(
        text.contains("FAIL lo: cannot open a capture ring"),
        "{text}"
    );
    let (code, text) = check(&["--inh-caps=+net_raw", "--ambient-caps=+net_raw"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok   lo: capture ring opens"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// As the systemd unit runs it

/// A copy of the agent binary an unprivileged user can execute (the build directory may not be
/// traversable), in a 0755 directory of its own.
fn agent_copy_for_others() -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let bin = dir.path().join("voqa-agent");
    // Copied by `cp`, not in this process: a file this process held open for writing could be
    // inherited by a child another test thread forks at that moment, and executing it would
    // then fail with ETXTBSY (exit 126) — a race, not a product bug.
    let copied = std::process::Command::new("cp")
        .arg(support::agent_bin())
        .arg(&bin)
        .status()
        .expect("cp");
    assert!(copied.success(), "copy binary");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (dir, bin)
}

/// `voqa-agent run` as an unprivileged user (uid 65534) whose only capability is CAP_NET_RAW
/// (ambient, and the only one in its bounding set: what voqa-agent.service grants) captures a
/// stream on the namespace's interface, packet for packet as tcpdump (root) saw it.
fn unprivileged_agent_with_only_cap_net_raw_captures() {
    const TEST: &str = "unprivileged_agent_with_only_cap_net_raw_captures";
    if !netns::live_prerequisites_with(TEST, &["tcpdump", "setpriv"]) {
        return;
    }
    let Some(net) = test_net("priv", TEST) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    // The agent's user writes its sink here.
    std::os::unix::fs::chown(dir, Some(65534), Some(65534)).expect("chown");
    let (_bin_dir, bin) = agent_copy_for_others();
    let bin = bin.display().to_string();
    let pcap = dir.join("vb.pcap");
    let tcpdump = Tcpdump::start(&net.b, "vb", &pcap, &dir.join("tcpdump.log"));
    let launcher = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all,+net_raw",
        "--ambient-caps=+net_raw",
        "--bounding-set=-all,+net_raw",
    ];
    let agent = LiveAgent::start_with(&net.b, dir, "retire_timeout_ms = 100\n", &launcher, &bin, 1);
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.guard.pid()))
        .expect("agent status");
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert!(field("Uid:").starts_with("65534 65534"), "{status}");
    // CAP_NET_RAW is bit 13: 0x2000, effective and bounding alike, and nothing else.
    assert_eq!(field("CapEff:"), "0000000000002000", "{status}");
    assert_eq!(field("CapBnd:"), "0000000000002000", "{status}");

    const COUNT: u64 = 300;
    let times = dir.join("blast-times");
    let blast_log = dir.join("blast.log");
    let args = serde_json::json!({
        "bind": sock(ADDR_A, 43_000),
        "dest": sock(ADDR_B, 53_000),
        "count": COUNT,
        "gap_us": 1000,
        "out": times.display().to_string(),
    });
    let mut blast = netns::spawn_child(&net.a, "blast", &args, &blast_log);
    let status = blast.wait_bounded(Duration::from_secs(30));
    assert!(status.success(), "blast failed");
    // The 100 ms blocks retire and a 1 s window closes well within this.
    std::thread::sleep(Duration::from_millis(1500));
    let records = agent.terminate();
    assert_eq!(tcpdump.stop(), 0, "tcpdump dropped packets");

    let doc = support::analyze_json(&[&pcap], &[]);
    let offline = support::find_stream(&doc, &sock(ADDR_A, 43_000), &sock(ADDR_B, 53_000));
    assert_eq!(offline.len(), 1, "tcpdump saw the stream: {doc:#}");
    assert_eq!(offline[0]["packets"], COUNT, "tcpdump saw every packet");
    let reports = stream_reports(&records);
    let finals: Vec<_> = reports
        .iter()
        .filter(|r| r.is_final && r.src == sock(ADDR_A, 43_000))
        .collect();
    assert_eq!(
        finals.len(),
        1,
        "one final report of the stream: {reports:#?}"
    );
    let totals = finals[0].totals.as_ref().expect("totals");
    assert_eq!(
        totals.packets, COUNT,
        "the unprivileged agent saw every packet"
    );
    assert_eq!(totals.lost, 0);
}

/// `run` under a NOTIFY_SOCKET of the test's own: READY=1 once capture is up, WATCHDOG=1 every
/// half watchdog period; while worker 0 is stalled (the hidden test hook) one STATUS names it
/// and no WATCHDOG=1 comes; once it moves again, keep-alives resume; SIGTERM says STOPPING=1.
fn sd_notify_ready_and_watchdog_stops_while_a_worker_is_stalled() {
    const TEST: &str = "sd_notify_ready_and_watchdog_stops_while_a_worker_is_stalled";
    if !netns::live_prerequisites_with(TEST, &[]) {
        return;
    }
    let Some(net) = test_net("notify", TEST) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    // A path socket: the agent runs in another network namespace, where abstract names differ.
    let socket_path = dir.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let recv = |socket: &std::os::unix::net::UnixDatagram| {
        let mut buf = [0u8; 1024];
        let n = socket.recv(&mut buf).expect("a notification within 15 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let config = dir.join("agent.toml");
    let out = dir.join("out.jsonl");
    std::fs::write(
        &config,
        format!(
            "[capture]\ninterfaces = [\"vb\"]\nworkers = 1\n\n[output]\nsink = \"file:{}\"\n\n\
             [metrics]\nlisten = \"\"\n",
            out.display()
        ),
    )
    .expect("config");
    let stall = dir.join("stall");
    let (notify_env, stall_s, config_s) = (
        format!("NOTIFY_SOCKET={}", socket_path.display()),
        stall.display().to_string(),
        config.display().to_string(),
    );
    let bin = support::agent_bin().display().to_string();
    let log = dir.join("agent.log");
    // 1 s watchdog: keep-alives every 500 ms, a stall declared after 1 s.
    let mut agent = netns::run_in(
        &net.b,
        "env",
        &[
            &notify_env,
            "WATCHDOG_USEC=1000000",
            &bin,
            "run",
            "--config",
            &config_s,
            "--test-stall-worker-while",
            &stall_s,
        ],
        &log,
    );
    let first = recv(&socket);
    assert!(
        first.starts_with("READY=1\nSTATUS=capturing on vb with 1 worker(s) per interface"),
        "{first}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    for _ in 0..3 {
        assert_eq!(recv(&socket), "WATCHDOG=1");
    }

    std::fs::write(&stall, b"").expect("stall worker 0");
    // Keep-alives sent before the stall was seen may come first; at most 10 s of them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let m = recv(&socket);
        if m != "WATCHDOG=1" {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "still fed 10 s after worker 0 was stalled"
        );
    };
    assert!(
        status.starts_with("STATUS=capture worker 0 on vb made no progress for ")
            && status.ends_with(" s: watchdog not fed"),
        "{status}"
    );
    // Four watchdog periods without a keep-alive (a fed watchdog sends eight).
    socket
        .set_read_timeout(Some(Duration::from_secs(4)))
        .expect("timeout");
    let mut buf = [0u8; 1024];
    let quiet = socket.recv(&mut buf);
    assert!(
        quiet.is_err(),
        "notified while the worker was stalled: {:?}",
        quiet.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    );
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");

    std::fs::remove_file(&stall).expect("unstall");
    let resumed = recv(&socket);
    assert!(resumed.starts_with("STATUS=capturing on vb"), "{resumed}");
    assert_eq!(recv(&socket), "WATCHDOG=1");

    let status = agent.stop("TERM", Duration::from_secs(15));
    assert!(status.success(), "exit after SIGTERM: {status}");
    let rest: Vec<String> = std::iter::from_fn(|| {
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .ok()?;
        let mut buf = [0u8; 1024];
        let n = socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
    .collect();
    assert!(
        rest.iter()
            .any(|m| m.starts_with("STOPPING=1\nSTATUS=stopping")),
        "no STOPPING=1 after SIGTERM: {rest:?}"
    );
}
