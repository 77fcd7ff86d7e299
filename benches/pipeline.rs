//! Throughput of the measuring pipeline on one core, in packets/s (criterion `Throughput::Elements`):
//! - `decode_udp`: link → IPv4 → UDP views alone (the pnet-based part of the hot path);
//! - `decode_rtp`: the same plus the RTP header view;
//! - `pipeline_10k_streams`: frame → decode → flow table → quality meters for 10,000 concurrent
//!   G.711 streams (the whole per-packet path `analyze` runs), stream creation included;
//! - `pcap_parse`: iterating the frames of the same capture held in memory;
//! - `worker_loop_10k_streams`: `pipeline_10k_streams` driven as `analyze` drives it: the
//!   pipeline's worker loop over a `FileSource` (the same capture, memory-mapped from a file),
//!   so the loop's per-batch and per-frame overhead shows against the bare analyzer.
//!
//! Run: cargo bench -p voqa-agent --bench pipeline

use std::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use voqa_agent::capture::file::frames;
use voqa_agent::capture::writer::PcapWriter;
use voqa_agent::decode::build::{LinkSpec, RtpHeader, rtp_packet, udp_frame};
use voqa_agent::decode::decode_udp;
use voqa_agent::decode::rtp::RtpPacket;
use voqa_agent::pipeline::file::{FileSource, Pace, open_files};
use voqa_agent::pipeline::{Output, Worker};
use voqa_agent::streams::{Analyzer, AnalyzerConfig, WindowReport};

/// Offline analysis produces no window reports.
struct Discard;

impl Output for Discard {
    fn reports(&mut self, _reports: std::vec::IntoIter<WindowReport>) {}
}

const STREAMS: u32 = 10_000;
const ROUNDS: u32 = 30;

fn capture() -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), 1).expect("pcap header");
    let payload = [0xd5u8; 160];
    for round in 0..ROUNDS {
        for s in 0..STREAMS {
            let src = SocketAddr::from((
                [10, 1, (s >> 8) as u8, s as u8],
                16384 + (s % 8000) as u16 * 2,
            ));
            let dst = SocketAddr::from(([10, 2, (s >> 8) as u8, s as u8], 40000));
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
            let ts =
                1_795_000_000_000_000_000i64 + i64::from(round) * 20_000_000 + i64::from(s) * 2_000;
            w.write_frame(
                ts,
                &udp_frame(&LinkSpec::Ethernet, src, dst, &rtp_packet(&h, &payload)),
            )
            .expect("frame");
        }
    }
    w.into_inner()
}

fn bench(c: &mut Criterion) {
    let pcap = capture();
    let owned: Vec<(i64, Vec<u8>)> = frames(&pcap)
        .expect("valid pcap")
        .map(|f| (f.ts_ns, f.data.to_vec()))
        .collect();
    let n = owned.len() as u64;
    let mut g = c.benchmark_group("hot_path");
    g.throughput(Throughput::Elements(n));
    g.sample_size(20);
    g.bench_function("decode_udp", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for (_, f) in &owned {
                if let Ok(d) = decode_udp(1, f, f.len() as u32) {
                    bytes += d.payload.len();
                }
            }
            bytes
        })
    });
    g.bench_function("decode_rtp", |b| {
        b.iter(|| {
            let mut seqs = 0u64;
            for (_, f) in &owned {
                if let Ok(d) = decode_udp(1, f, f.len() as u32)
                    && let Ok(r) = RtpPacket::new_checked(d.payload)
                {
                    seqs += u64::from(r.sequence_number());
                }
            }
            seqs
        })
    });
    g.bench_function("pcap_parse", |b| {
        b.iter(|| {
            frames(&pcap)
                .expect("pcap")
                .map(|f| f.data.len())
                .sum::<usize>()
        })
    });
    g.bench_function("pipeline_10k_streams", |b| {
        b.iter(|| {
            let mut a = Analyzer::new(AnalyzerConfig::default());
            for f in frames(&pcap).expect("pcap") {
                a.on_frame(f.ts_ns, f.linktype, f.data, f.wire_len);
            }
            a.active_streams()
        })
    });
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("bench.pcap");
    std::fs::write(&path, &pcap).expect("write pcap");
    let inputs = open_files(&[path]).expect("open pcap");
    g.bench_function("worker_loop_10k_streams", |b| {
        b.iter(|| {
            let mut w = Worker::new(Analyzer::new(AnalyzerConfig::default()));
            let mut source = FileSource::new(&inputs, Pace::Max, None);
            w.run(
                &mut source,
                &mut Discard,
                &std::sync::atomic::AtomicBool::new(false),
            );
            w.analyzer().active_streams()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
