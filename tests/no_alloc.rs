//! Proves the steady-state hot path (frame → decode → stream lookup → quality meters) makes no
//! heap allocation, with a counting global allocator: after a warm-up that creates every stream,
//! a second pass over thousands of packets of the same streams must allocate nothing.

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use voqa_agent::decode::build::{LinkSpec, rtp_packet, udp_frame};
use voqa_agent::streams::{Analyzer, AnalyzerConfig};

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

#[test]
fn steady_state_packets_do_not_allocate() {
    const STREAMS: u32 = 500;
    const ROUNDS: u32 = 40;
    // Prebuild every frame so building does not count.
    let mut frames = Vec::new();
    for round in 0..ROUNDS {
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
    let mut analyzer = Analyzer::new(AnalyzerConfig::default());
    let warmup = (STREAMS * 4) as usize;
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
    assert_eq!(result.streams.len(), STREAMS as usize);
    assert!(
        result
            .streams
            .iter()
            .all(|s| s.summary.packets == u64::from(ROUNDS) && s.summary.lost == 0)
    );
}
