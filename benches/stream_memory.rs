//! Memory per tracked stream, measured in-process: an `Analyzer` in live (interval) mode is
//! fed N concurrent G.711 streams (3 packets each, so every one is confirmed), time advances
//! past the candidate timeout, and the growth of the process's anonymous RSS is divided by N.
//!
//! Then CPU per packet and per stream in the same live mode: the N streams go on for about
//! 2 million packets (whole seconds of packet time, 20 ms apart, interval reports every second of packet time, reports
//! drained), and the thread's CPU time (`/proc/thread-self/schedstat`) is divided by the
//! packets and by the stream-seconds. Frames are prebuilt once per stream and only their RTP
//! sequence number and timestamp are rewritten, so building them does not count.
//!
//! Usage: cargo run --release -p voqa-agent --example stream-memory -- [N...]

use std::net::SocketAddr;

use voqa_agent::decode::build::{LinkSpec, RtpHeader, rtp_packet, udp_frame};
use voqa_agent::streams::{Analyzer, AnalyzerConfig};

fn rss_anon_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let counts: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![10_000, 100_000]
    } else {
        counts
    };
    for n in counts {
        // Prebuilt frames for one packet of every stream, reused with new seq/ts per round.
        let before = rss_anon_kib();
        let mut a = Analyzer::new(AnalyzerConfig {
            max_streams: n as usize,
            report_interval_ns: Some(3_600_000_000_000),
            ..AnalyzerConfig::default()
        });
        let t0 = 1_795_000_000_000_000_000i64;
        for round in 0..3u32 {
            for s in 0..n {
                let src = SocketAddr::from(([10, (s >> 16) as u8, (s >> 8) as u8, s as u8], 20000));
                let dst = SocketAddr::from(([10, 200, 0, 1], 40000 + (s % 10000) as u16 * 2));
                let h = RtpHeader {
                    payload_type: 0,
                    marker: false,
                    sequence: round as u16,
                    timestamp: round * 160,
                    ssrc: s,
                    csrcs: vec![],
                    extension: None,
                    padding: 0,
                };
                let f = udp_frame(&LinkSpec::Ethernet, src, dst, &rtp_packet(&h, &[0u8; 160]));
                let ts = t0 + i64::from(round) * 20_000_000 + i64::from(s) * 100;
                a.on_frame(ts, 1, &f, f.len() as u32);
            }
        }
        // Past the 2 s candidate timeout: the (empty) candidate table is swept and shrunk.
        a.advance_to(t0 + 5_000_000_000);
        let after = rss_anon_kib();
        let per_stream = (after.saturating_sub(before)) * 1024 / u64::from(n);
        println!(
            "{n} streams tracked: {} active, anonymous RSS +{} KiB = {per_stream} bytes per stream",
            a.active_streams(),
            after.saturating_sub(before)
        );
        drop(a);
        cpu_per_packet(n);
    }
}

/// This thread's CPU time in ns (`None` where schedstat is unavailable).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn cpu_per_packet(n: u32) {
    let mut a = Analyzer::new(AnalyzerConfig {
        max_streams: n as usize,
        report_interval_ns: Some(1_000_000_000),
        ..AnalyzerConfig::default()
    });
    let mut frames: Vec<Vec<u8>> = (0..n)
        .map(|s| {
            let src = SocketAddr::from(([10, (s >> 16) as u8, (s >> 8) as u8, s as u8], 20000));
            let dst = SocketAddr::from(([10, 200, 0, 1], 40000 + (s % 10000) as u16 * 2));
            let h = RtpHeader {
                payload_type: 0,
                marker: false,
                sequence: 0,
                timestamp: 0,
                ssrc: s,
                csrcs: vec![],
                extension: None,
                padding: 0,
            };
            udp_frame(&LinkSpec::Ethernet, src, dst, &rtp_packet(&h, &[0u8; 160]))
        })
        .collect();
    // RTP header after Ethernet (14) + IPv4 (20) + UDP (8): sequence at +2, timestamp at +4.
    const RTP: usize = 42;
    // Whole seconds of packet time (50 rounds each), so every N pays the same reports per
    // stream-second.
    let rounds = ((2_000_000 / n) / 50).max(1) * 50;
    let t0 = 1_795_000_000_000_000_000i64;
    // Returns (packets, reports) of rounds `from..to`.
    let mut run = |a: &mut Analyzer, from: u32, to: u32| {
        let (mut packets, mut reports) = (0u64, 0u64);
        for round in from..to {
            for (s, f) in frames.iter_mut().enumerate() {
                f[RTP + 2..RTP + 4].copy_from_slice(&(round as u16).to_be_bytes());
                f[RTP + 4..RTP + 8].copy_from_slice(&(round * 160).to_be_bytes());
                let ts = t0 + i64::from(round) * 20_000_000 + s as i64 * 20_000_000 / i64::from(n);
                a.on_frame(ts, 1, f, f.len() as u32);
                packets += 1;
            }
            reports += a.drain_reports().len() as u64;
        }
        (packets, reports)
    };
    // Warm-up (every stream confirmed and one report boundary crossed) is not counted.
    run(&mut a, 0, 60);
    let start = thread_cpu_ns();
    let (measured, reports) = run(&mut a, 60, 60 + rounds);
    let (Some(start), Some(end)) = (start, thread_cpu_ns()) else {
        println!("  (no /proc/thread-self/schedstat: CPU not measured)");
        return;
    };
    let cpu = end.saturating_sub(start) as f64;
    let stream_seconds = f64::from(n) * f64::from(rounds) * 0.02;
    println!(
        "  live mode, {n} streams, {measured} packets ({rounds} rounds, {} interval reports): {:.3} s CPU = {:.0} ns per packet, {:.2} us CPU per stream-second",
        reports,
        cpu / 1e9,
        cpu / measured as f64,
        cpu / 1e3 / stream_seconds
    );
}
