//! Memory per tracked stream, measured in-process: an `Analyzer` in live (interval) mode is
//! fed N concurrent G.711 streams (3 packets each, so every one is confirmed), time advances
//! past the candidate timeout, and the growth of the process's anonymous RSS is divided by N.
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
    }
}
