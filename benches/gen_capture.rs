//! Writes a synthetic pcap for benchmarks: `--streams` concurrent G.711 streams of `--packets`
//! packets each, 20 ms apart, interleaved in time order as a media server would see them, with
//! a little arrival jitter and 0.5 % loss so the quality code takes its real paths.
//!
//! Usage: cargo run --release -p voqa-agent --example gen-capture -- OUT.pcap [--streams N] [--packets M]

use std::io::{BufWriter, Write};
use std::net::SocketAddr;

use voqa_agent::capture::writer::PcapWriter;
use voqa_agent::decode::build::{LinkSpec, RtpHeader, rtp_packet, udp_frame};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(out) = args.get(1).filter(|a| !a.starts_with("--")) else {
        eprintln!("usage: gen-capture OUT.pcap [--streams N] [--packets M]");
        std::process::exit(2);
    };
    let streams = arg(&args, "--streams", 10_000) as u32;
    let packets = arg(&args, "--packets", 200) as u32;
    let file = std::fs::File::create(out)?;
    let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, file), 1)?;
    let payload = [0xd5u8; 160];
    let t0: i64 = 1_795_000_000_000_000_000;
    // xorshift for deterministic jitter and loss
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut written = 0u64;
    for round in 0..packets {
        for s in 0..streams {
            let r = next();
            if r % 200 == 0 && round > 3 {
                continue; // 0.5 % loss
            }
            let src = SocketAddr::from((
                [10, (s >> 16) as u8, (s >> 8) as u8, s as u8],
                16384 + (s % 16000) as u16 * 2,
            ));
            let dst = SocketAddr::from((
                [10, 200, (s >> 8) as u8, s as u8],
                40000 + (s % 10000) as u16 * 2,
            ));
            let header = RtpHeader {
                payload_type: 0,
                marker: round == 0,
                sequence: (s as u16).wrapping_mul(7).wrapping_add(round as u16),
                timestamp: s.wrapping_mul(1000).wrapping_add(round * 160),
                ssrc: 0x5000_0000 + s,
                csrcs: vec![],
                extension: None,
                padding: 0,
            };
            // Streams are spread over the 20 ms period; ±2 ms of arrival jitter.
            let jitter_ns = (r >> 8) as i64 % 4_000_000 - 2_000_000;
            let ts = t0
                + i64::from(round) * 20_000_000
                + i64::from(s) * 20_000_000 / i64::from(streams.max(1))
                + jitter_ns.max(0);
            w.write_frame(
                ts,
                &udp_frame(
                    &LinkSpec::Ethernet,
                    src,
                    dst,
                    &rtp_packet(&header, &payload),
                ),
            )?;
            written += 1;
        }
    }
    w.into_inner().flush()?;
    eprintln!("wrote {written} packets of {streams} streams to {out}");
    Ok(())
}
