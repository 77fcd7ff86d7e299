//! Proves the steady-state hot path (frame → decode → stream lookup → quality meters) makes no
//! heap allocation, with a counting global allocator: after a warm-up that creates every stream,
//! a second pass over thousands of packets of the same streams must allocate nothing — fed
//! straight to the analyzer, and through the pipeline's worker loop from a capture file.
//!
//! One `#[test]` only: the allocator counts every thread, so a second test running beside it
//! (or the harness reporting it) would be counted too.

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use voqa_agent::decode::build::{LinkSpec, ipv4_fragments, rtp_packet, tcp_frame, udp_frame};
use voqa_agent::pipeline::file::{FileSource, Pace, open_files};
use voqa_agent::pipeline::{Output, Worker};
use voqa_agent::streams::{Analyzer, AnalyzerConfig, Counters, WindowReport};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const STREAMS: u32 = 500;
const ROUNDS: u32 = 40;
/// TCP frames per round on a SIP-over-TCP connection (a keep-alive and a bare ACK): the
/// reassembly's steady state allocates nothing either.
const TCP_PER_ROUND: u32 = 2;
/// Frames of the warm-up rounds.
const WARMUP: usize = ((STREAMS + TCP_PER_ROUND) * 4) as usize;

#[test]
fn steady_state_packets_do_not_allocate() {
    let frames = build_frames();
    analyzer_alone(&frames);
    through_the_worker_loop(&frames);
    fragments_reuse_pooled_buffers();
}

/// Fragmented datagrams are copied into the reassembler's buffers, which are pooled: once warm,
/// reassembling more of them allocates nothing either.
fn fragments_reuse_pooled_buffers() {
    let src = std::net::SocketAddr::from(([10, 0, 0, 1], 5060));
    let dst = std::net::SocketAddr::from(([10, 0, 0, 2], 5060));
    // 3,000 octets of a payload that is neither RTP nor SIP: three fragments at MTU 1500.
    let fragments = ipv4_fragments(&LinkSpec::Ethernet, src, dst, &[0u8; 3000], 1480);
    assert_eq!(fragments.len(), 3);
    let mut analyzer = Analyzer::new(AnalyzerConfig::default());
    let feed = |analyzer: &mut Analyzer, datagrams: i64, from: i64| {
        for d in from..from + datagrams {
            // Out of order, 100 µs apart, a datagram every 20 ms (sweeps run every second).
            for (i, which) in [2usize, 0, 1].into_iter().enumerate() {
                let f = &fragments[which];
                let ts = 1_000_000_000 + d * 20_000_000 + i as i64 * 100_000;
                analyzer.on_frame(ts, 1, f, f.len() as u32);
            }
        }
    };
    feed(&mut analyzer, 10, 0);
    let before = ALLOCS.load(Ordering::Relaxed);
    feed(&mut analyzer, 200, 10);
    let allocations = ALLOCS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations over 200 reassembled datagrams"
    );
    let counters = analyzer.counters();
    assert_eq!(counters.ip_reassembly.reassembled, 210);
    assert_eq!(counters.skipped.fragments, 630);
    assert_eq!(counters.udp, 210);
}

/// Every frame, prebuilt so building does not count: `ROUNDS` packets of `STREAMS` streams.
fn build_frames() -> Vec<(i64, Vec<u8>)> {
    let mut frames = Vec::new();
    let client = std::net::SocketAddr::from(([10, 2, 0, 1], 40000));
    let server = std::net::SocketAddr::from(([10, 2, 0, 2], 5060));
    for round in 0..ROUNDS {
        let ts = 1_000_000_000i64 + i64::from(round) * 20_000_000;
        frames.push((
            ts,
            tcp_frame(
                &LinkSpec::Ethernet,
                client,
                server,
                1000 + 4 * round,
                0x18,
                b"\r\n\r\n",
            ),
        ));
        frames.push((
            ts,
            tcp_frame(&LinkSpec::Ethernet, server, client, 5000, 0x10, b""),
        ));
        for s in 0..STREAMS {
            let src = std::net::SocketAddr::from((
                [10, 0, (s / 250) as u8, (s % 250) as u8 + 1],
                20000 + (s as u16 % 1000) * 2,
            ));
            let dst = std::net::SocketAddr::from(([10, 1, 0, 1], 30000));
            let h = support::rtp_header(0, 100 + round as u16, 160 * round, 0x1000 + s);
            let ts = 1_000_000_000i64 + i64::from(round) * 20_000_000 + i64::from(s) * 1000;
            frames.push((
                ts,
                udp_frame(&LinkSpec::Ethernet, src, dst, &rtp_packet(&h, &[0u8; 160])),
            ));
        }
    }
    frames
}

fn analyzer_alone(frames: &[(i64, Vec<u8>)]) {
    let mut analyzer = Analyzer::new(AnalyzerConfig::default());
    let warmup = WARMUP;
    for (ts, f) in &frames[..warmup] {
        analyzer.on_frame(*ts, 1, f, f.len() as u32);
    }
    assert_eq!(
        analyzer.active_streams(),
        STREAMS as usize,
        "warm-up must create every stream"
    );
    let before = ALLOCS.load(Ordering::Relaxed);
    for (ts, f) in &frames[warmup..] {
        analyzer.on_frame(*ts, 1, f, f.len() as u32);
    }
    let allocations = ALLOCS.load(Ordering::Relaxed) - before;
    let steady = frames.len() - warmup;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations over {steady} steady-state packets"
    );
    let result = analyzer.finish();
    assert_eq!(
        result.counters.sip_tcp.segments,
        u64::from(ROUNDS * TCP_PER_ROUND)
    );
    assert_eq!(result.counters.skipped.non_udp, 0);
    assert_eq!(result.streams.len(), STREAMS as usize);
    assert!(
        result
            .streams
            .iter()
            .all(|s| s.summary.packets == u64::from(ROUNDS) && s.summary.lost == 0)
    );
}

/// Counts allocations at the end of each file (the warm-up file, then the steady-state one).
struct AllocsAtFileEnd(Vec<u64>);

impl Output for AllocsAtFileEnd {
    fn reports(&mut self, reports: std::vec::IntoIter<WindowReport>) {
        assert_eq!(reports.len(), 0, "no boundary is crossed");
    }
    fn file_done(&mut self, _counters: &Counters) {
        self.0.push(ALLOCS.load(Ordering::Relaxed));
    }
}

/// The live configuration (interval reports on) through `Worker::run` and a `FileSource`:
/// the warm-up in one file, the steady state in a second; nothing may be allocated between
/// the ends of the two files (opening the second pcap included).
fn through_the_worker_loop(frames: &[(i64, Vec<u8>)]) {
    let dir = tempfile::tempdir().expect("tmp");
    let warmup = WARMUP;
    let a = support::write_pcap(dir.path(), "warm.pcap", 1, &frames[..warmup]);
    let b = support::write_pcap(dir.path(), "steady.pcap", 1, &frames[warmup..]);
    let inputs = open_files(&[a, b]).expect("open");
    let cfg = AnalyzerConfig {
        report_interval_ns: Some(10_000_000_000),
        ..AnalyzerConfig::default()
    };
    let mut worker = Worker::new(Analyzer::new(cfg));
    let mut source = FileSource::new(&inputs, Pace::Max, None);
    let mut out = AllocsAtFileEnd(Vec::with_capacity(4));
    worker.run(
        &mut source,
        &mut out,
        &std::sync::atomic::AtomicBool::new(false),
    );
    assert_eq!(worker.analyzer().active_streams(), STREAMS as usize);
    assert_eq!(worker.analyzer().counters().frames, frames.len() as u64);
    let [warm_end, steady_end] = out.0[..] else {
        panic!("two file ends expected, got {:?}", out.0);
    };
    let allocations = steady_end - warm_end;
    assert_eq!(
        allocations,
        0,
        "{allocations} allocations over {} steady-state packets through the worker loop",
        frames.len() - warmup
    );
}
