//! Proves the steady-state hot path (frame → decode → stream lookup → quality meters) makes no
//! heap allocation, with a counting global allocator: after a warm-up that creates every stream,
//! a second pass over thousands of packets of the same streams must allocate nothing — fed
//! straight to the analyzer, and through the pipeline's worker loop from a capture file.
//!
//! The traffic is shaped like real calls: the warm-up starts with a SIP INVITE per stream whose
//! SDP announces it (so the streams are found by SDP, as in production), and both phases carry
//! RTCP (a sender report from every stream's sender and a receiver report back every 10 rounds).
//! What is asserted: RTP and RTCP packets of known streams allocate nothing, and neither do SIP
//! messages without SDP of known calls (a 180 Ringing and an INFO per round: the dialog engine's
//! per-message work). SIP that creates a call, or carries SDP, allocates by design (the call's
//! record, its SDP profiles; bounded by `calls.dialog.capacity` and `max_announcements`), and
//! arrives a few times per call, not per packet.
//!
//! The SIP-heavy benchmark's traffic (whole calls, signalling only) is checked per message
//! kind: only the INVITE and the 200 OK with SDP allocate (what the call owns), the other five
//! messages of a call never.
//!
//! One `#[test]` only: the allocator counts every thread, so a second test running beside it
//! (or the harness reporting it) would be counted too.

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use voqa_agent::decode::build::{
    LinkSpec, ReportBlockSpec, ipv4_fragments, rtcp_rr, rtcp_sr, rtp_packet, tcp_frame, udp_frame,
};
use voqa_agent::pipeline::file::{FileSource, Pace, open_files};
use voqa_agent::pipeline::{Output, Worker};
use voqa_agent::streams::{Analyzer, AnalyzerConfig, Counters, Detection, WindowReport};

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

#[test]
fn steady_state_packets_do_not_allocate() {
    let frames = build_frames();
    analyzer_alone(&frames);
    through_the_worker_loop(&frames);
    fragments_reuse_pooled_buffers();
    sip_calls_allocate_per_call_not_per_message();
}

/// The messages of one call as `gen-capture --signalling-only` writes them, in order: INVITE
/// with an SDP offer, 100 Trying, 180 Ringing, 200 OK with the SDP answer, ACK, BYE, 200 OK.
const CALL_MESSAGES: [&str; 7] = [
    "INVITE",
    "100",
    "180",
    "200 (SDP)",
    "ACK",
    "BYE",
    "200 (BYE)",
];

fn call_frames(i: u32, at: i64) -> Vec<(i64, Vec<u8>)> {
    let id = format!("heavy-{i}@10.9.0.1");
    let caller = std::net::SocketAddr::from(([10, 30, (i / 250) as u8, (i % 250) as u8 + 1], 4000));
    let callee = std::net::SocketAddr::from(([10, 31, (i / 250) as u8, (i % 250) as u8 + 1], 6000));
    let (a, b) = (
        std::net::SocketAddr::from(([10, 9, 0, 1], 5060)),
        std::net::SocketAddr::from(([10, 9, 0, 2], 5060)),
    );
    let plain = |start: &str, cseq: &str, to_tag: bool| {
        format!(
            "{start}\r\nVia: SIP/2.0/UDP 10.9.0.1;branch=z9hG4bK-{i}-{}\r\n\
From: \"Alice\" <sip:alice@example.invalid>;tag=a1\r\nTo: <sip:bob@example.invalid>{}\r\n\
Call-ID: {id}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n",
            cseq.replace(' ', "-"),
            if to_tag { ";tag=b2" } else { "" }
        )
    };
    let offer = support::sip_with_sdp(
        "INVITE sip:bob@example.invalid SIP/2.0",
        &id,
        "INVITE",
        caller,
        &[
            (0, Some("PCMU/8000")),
            (8, Some("PCMA/8000")),
            (101, Some("telephone-event/8000")),
        ],
    );
    let answer = support::sip_with_sdp(
        "SIP/2.0 200 OK",
        &id,
        "INVITE",
        callee,
        &[(0, Some("PCMU/8000")), (101, Some("telephone-event/8000"))],
    )
    .replacen(
        "To: <sip:bob@example.invalid>",
        "To: <sip:bob@example.invalid>;tag=b2",
        1,
    );
    let messages = [
        (a, b, offer),
        (b, a, plain("SIP/2.0 100 Trying", "1 INVITE", false)),
        (b, a, plain("SIP/2.0 180 Ringing", "1 INVITE", true)),
        (b, a, answer),
        (
            a,
            b,
            plain("ACK sip:bob@example.invalid SIP/2.0", "1 ACK", true),
        ),
        (
            a,
            b,
            plain("BYE sip:bob@example.invalid SIP/2.0", "2 BYE", true),
        ),
        (b, a, plain("SIP/2.0 200 OK", "2 BYE", true)),
    ];
    messages
        .iter()
        .enumerate()
        .map(|(k, (src, dst, text))| {
            (
                at + k as i64 * 1_000,
                support::sip_frame(&LinkSpec::Ethernet, *src, *dst, text),
            )
        })
        .collect()
}

/// The SIP-heavy benchmark's traffic (whole calls, signalling only), offline configuration:
/// after 2,000 calls of warm-up, 1,000 more are fed with the allocations of each message
/// counted by its kind. Only what a call owns may allocate, and only on the two messages that
/// bring it: the INVITE (the dialog's record: Call-ID and From/To users, 3; its SDP offer's
/// announcement, 2: profile and rtpmap list = 5) and the 200 OK with the answer (its
/// announcement, 2), plus the tables' amortised growth. The SDP view itself allocates nothing
/// for a body with one media section (its sections, formats and rtpmaps are held inline).
/// The other five messages of every call allocate nothing. All within one second of packet
/// time, so no sweep retires calls in between (retiring moves records, it is not per message).
fn sip_calls_allocate_per_call_not_per_message() {
    const WARM: u32 = 2_000;
    const STEADY: u32 = 1_000;
    let t0 = 10_000_000_000i64;
    let frames: Vec<(i64, Vec<u8>)> = (0..WARM + STEADY)
        .flat_map(|i| call_frames(i, t0 + i64::from(i) * 200_000))
        .collect();
    let mut analyzer = Analyzer::new(AnalyzerConfig::default());
    let warmup = (WARM * 7) as usize;
    for (ts, f) in &frames[..warmup] {
        analyzer.on_frame(*ts, 1, f, f.len() as u32);
    }
    let mut per_kind = [0u64; 7];
    let mut least = [u64::MAX; 7];
    for (k, (ts, f)) in frames[warmup..].iter().enumerate() {
        let before = ALLOCS.load(Ordering::Relaxed);
        analyzer.on_frame(*ts, 1, f, f.len() as u32);
        let n = ALLOCS.load(Ordering::Relaxed) - before;
        per_kind[k % 7] += n;
        least[k % 7] = least[k % 7].min(n);
    }
    let last_ts = frames.last().map_or(0, |f| f.0);
    assert!(last_ts - t0 < 1_000_000_000, "one second of packet time");
    assert_eq!(analyzer.counters().sip, u64::from(WARM + STEADY) * 7);
    assert_eq!(analyzer.calls().len(), (WARM + STEADY) as usize);
    for (k, kind) in CALL_MESSAGES.iter().enumerate() {
        println!(
            "{kind}: {:.3} allocations per message over {STEADY} calls (least {})",
            per_kind[k] as f64 / f64::from(STEADY),
            least[k]
        );
    }
    for k in [1, 2, 4, 5, 6] {
        assert_eq!(
            per_kind[k], 0,
            "{}: {} allocations over {STEADY} messages of known calls",
            CALL_MESSAGES[k], per_kind[k]
        );
    }
    // Growth of the call and announcement tables: a few doublings over 1,000 calls.
    let growth = 32;
    assert_eq!(least[0], 5, "INVITE with the offer");
    assert!(
        per_kind[0] <= 5 * u64::from(STEADY) + growth,
        "{per_kind:?}"
    );
    assert_eq!(least[3], 2, "200 OK with the answer");
    assert!(
        per_kind[3] <= 2 * u64::from(STEADY) + growth,
        "{per_kind:?}"
    );
    let result = analyzer.finish();
    assert_eq!(result.calls.len(), (WARM + STEADY) as usize);
    assert!(
        result
            .calls
            .iter()
            .all(|c| c.status == Some(200) && c.end_ns().is_some()),
        "every call answered and ended"
    );
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

/// Where stream `s` is sent from (its SDP-announced address) and to.
fn stream_addrs(s: u32) -> (std::net::SocketAddr, std::net::SocketAddr) {
    let src = std::net::SocketAddr::from((
        [10, 0, (s / 250) as u8, (s % 250) as u8 + 1],
        20000 + (s as u16 % 1000) * 2,
    ));
    let dst = std::net::SocketAddr::from(([10, 1, 0, 1], 30000));
    (src, dst)
}

/// Every frame, prebuilt so building does not count: one INVITE per stream announcing it, then
/// `ROUNDS` packets of `STREAMS` streams, with RTCP every 10 rounds.
fn build_frames() -> Vec<(i64, Vec<u8>)> {
    let mut frames = Vec::new();
    let client = std::net::SocketAddr::from(([10, 2, 0, 1], 40000));
    let server = std::net::SocketAddr::from(([10, 2, 0, 2], 5060));
    for s in 0..STREAMS {
        let (src, _) = stream_addrs(s);
        let invite = support::sip_with_sdp(
            "INVITE sip:bob@example.invalid SIP/2.0",
            &format!("call-{s}"),
            "INVITE",
            src,
            &[(0, Some("PCMU/8000"))],
        );
        let sip_a = std::net::SocketAddr::from(([10, 9, 0, 1], 5060));
        let sip_b = std::net::SocketAddr::from(([10, 9, 0, 2], 5060));
        frames.push((
            900_000_000 + i64::from(s) * 1000,
            support::sip_frame(&LinkSpec::Ethernet, sip_a, sip_b, &invite),
        ));
    }
    for round in 0..ROUNDS {
        let ts = 1_000_000_000i64 + i64::from(round) * 20_000_000;
        let sip_a = std::net::SocketAddr::from(([10, 9, 0, 1], 5060));
        let sip_b = std::net::SocketAddr::from(([10, 9, 0, 2], 5060));
        for (i, start) in [
            "SIP/2.0 180 Ringing",
            "INFO sip:bob@example.invalid SIP/2.0",
        ]
        .iter()
        .enumerate()
        {
            let cseq = if i == 0 { "1 INVITE" } else { "2 INFO" };
            let text = format!(
                "{start}\r\nVia: SIP/2.0/UDP 10.9.0.1;branch=z9hG4bK-{round}\r\n\
From: <sip:alice@example.invalid>;tag=a\r\nTo: <sip:bob@example.invalid>;tag=b\r\n\
Call-ID: call-{}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n",
                round % STREAMS
            );
            frames.push((
                ts,
                support::sip_frame(&LinkSpec::Ethernet, sip_b, sip_a, &text),
            ));
        }
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
            let (src, dst) = stream_addrs(s);
            let h = support::rtp_header(0, 100 + round as u16, 160 * round, 0x1000 + s);
            let ts = 1_000_000_000i64 + i64::from(round) * 20_000_000 + i64::from(s) * 1000;
            frames.push((
                ts,
                udp_frame(&LinkSpec::Ethernet, src, dst, &rtp_packet(&h, &[0u8; 160])),
            ));
            if round % 10 == 3 {
                // RTCP on the next port up: the sender's SR, and the receiver's RR about it.
                let rtcp =
                    |a: std::net::SocketAddr| std::net::SocketAddr::new(a.ip(), a.port() + 1);
                let ntp = (u64::from(round) << 32) | u64::from(s);
                let sr = rtcp_sr(
                    0x1000 + s,
                    ntp,
                    160 * round,
                    round + 1,
                    160 * (round + 1),
                    &[],
                );
                frames.push((
                    ts + 1,
                    udp_frame(&LinkSpec::Ethernet, rtcp(src), rtcp(dst), &sr),
                ));
                let block = ReportBlockSpec {
                    ssrc: 0x1000 + s,
                    fraction_lost: 0,
                    cumulative_lost: 0,
                    ext_highest_seq: 100 + round,
                    jitter: 8,
                    lsr: 0,
                    dlsr: 0,
                };
                let rr = rtcp_rr(0x9000 + s, &[block]);
                frames.push((
                    ts + 2,
                    udp_frame(&LinkSpec::Ethernet, rtcp(dst), rtcp(src), &rr),
                ));
            }
        }
    }
    frames
}

/// Frames of the warm-up: the INVITEs and the first 4 rounds, with the first RTCP (round 3),
/// which creates the round-trip state of every SSRC.
fn warmup_len(frames: &[(i64, Vec<u8>)]) -> usize {
    let steady_start = 1_000_000_000i64 + 4 * 20_000_000;
    frames
        .iter()
        .position(|(ts, _)| *ts >= steady_start)
        .unwrap_or(frames.len())
}

fn analyzer_alone(frames: &[(i64, Vec<u8>)]) {
    let mut analyzer = Analyzer::new(AnalyzerConfig::default());
    let warmup = warmup_len(frames);
    for (ts, f) in &frames[..warmup] {
        analyzer.on_frame(*ts, 1, f, f.len() as u32);
    }
    assert_eq!(
        analyzer.active_streams(),
        STREAMS as usize,
        "warm-up must create every stream"
    );
    let warm = *analyzer.counters();
    let before = ALLOCS.load(Ordering::Relaxed);
    for (ts, f) in &frames[warmup..] {
        analyzer.on_frame(*ts, 1, f, f.len() as u32);
    }
    let allocations = ALLOCS.load(Ordering::Relaxed) - before;
    let c = analyzer.counters();
    // The steady state is RTP and RTCP of the known streams (an SR and an RR per stream in
    // rounds 13, 23 and 33), all valid, and two SIP messages of known calls per round.
    assert_eq!(warm.sip, u64::from(STREAMS) + 2 * 4);
    assert_eq!(c.sip - warm.sip, 2 * u64::from(ROUNDS - 4));
    assert_eq!(c.rtcp - warm.rtcp, u64::from(STREAMS) * 2 * 3);
    assert_eq!(c.rtp - warm.rtp, u64::from(STREAMS) * u64::from(ROUNDS - 4));
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
        result.streams.iter().all(|s| s.detection == Detection::Sdp),
        "every stream was announced by SDP"
    );
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
    let warmup = warmup_len(frames);
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
