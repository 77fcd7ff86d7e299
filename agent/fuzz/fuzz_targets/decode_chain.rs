//! Fuzzes the per-packet decode chain (link → IP → UDP → RTP/RTCP demultiplexing and views) and
//! the stateful `Analyzer` fed with sequences of such frames.
//!
//! Input layout:
//! - byte 0: bits 0-2 select the link type (index into `LINKTYPES`); bit 3 turns on the
//!   analyzer's interval reports (every second of packet time);
//! - the rest is first decoded whole as one frame, then split into records, each
//!   `[len_hi, len_lo, ts_delta, flags]` followed by `len` frame bytes (fewer if the input ends):
//!   - `ts_delta`: time since the previous frame, in milliseconds (seconds if flags bit 1);
//!     flags bit 2 makes the step go backwards (out-of-order capture times);
//!   - flags bit 0: the frame was cut by the snap length (`wire_len` larger than the data);
//!   - flags bit 3: use link type `LINKTYPES[(flags >> 4) % len]` for this frame instead
//!     (pcapng files mix interfaces).
//!
//! Every frame goes through the stateless views and into one `Analyzer` (interval reports drained
//! after each frame), finished at the end.

#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use voqa_agent::decode::decode_udp;
use voqa_agent::decode::rtcp::Compound;
use voqa_agent::decode::payload::{Payload, RtcpForm, decode_payload};
use voqa_agent::decode::rtp::{MediaKind, RtpPacket, classify};
use voqa_agent::decode::sip::SipMessage;
use voqa_agent::streams::{Analyzer, AnalyzerConfig};

#[path = "../common/walk.rs"]
mod walk;

/// Ethernet, raw IP, Linux SLL, Linux SLL2, raw IPv4, raw IPv6, BSD null, OpenBSD loopback.
const LINKTYPES: [u32; 8] = [1, 101, 113, 276, 228, 229, 0, 108];
const RECORD_HEADER_LEN: usize = 4;
/// 2023-11-14T22:13:20Z, so that timestamps look like real capture times.
const START_NS: i64 = 1_700_000_000_000_000_000;
const NS_PER_MS: i64 = 1_000_000;
const NS_PER_S: i64 = 1_000_000_000;
/// `AnalyzerConfig::default()` allows a million streams and `Analyzer::new` reserves room for
/// up to 2^17 of them up front; under AddressSanitizer allocating that on every
/// input cut the speed from ~16k to ~130 executions per second. A 16 KiB input cannot hold more
/// streams than this anyway.
const MAX_STREAMS: usize = 1024;

fn analyzer_config(selector: u8) -> AnalyzerConfig {
    AnalyzerConfig {
        max_streams: MAX_STREAMS,
        report_interval_ns: (selector & 0b1000 != 0).then_some(NS_PER_S),
        ..AnalyzerConfig::default()
    }
}

fn decode_views(linktype: u32, data: &[u8], wire_len: u32) {
    let Ok(datagram) = decode_udp(linktype, data, wire_len) else {
        return;
    };
    black_box((datagram.src, datagram.dst, datagram.vlan));
    let payload = datagram.payload;
    let kind = black_box(classify(payload));
    check_payload_decode(payload, kind);
    if let Ok(packet) = RtpPacket::new_checked(payload) {
        walk::walk_rtp(&packet);
    }
    if let Ok(compound) = Compound::new_checked(payload) {
        walk::walk_compound(&compound);
    }
    if let Ok(compound) = Compound::new_checked_rsize(payload) {
        walk::walk_compound(&compound);
    }
}

/// The analyzer's one decode of a payload (`decode_payload`) must agree with the first-octet
/// demultiplexer and the checked views it replaced.
fn check_payload_decode(payload: &[u8], kind: MediaKind) {
    match decode_payload(payload) {
        Payload::Rtp(p) => {
            assert_eq!(kind, MediaKind::Rtp);
            assert_eq!(RtpPacket::new_checked(payload), Ok(p));
        }
        Payload::RtpMalformed(e) => {
            assert_eq!(kind, MediaKind::Rtp);
            assert_eq!(RtpPacket::new_checked(payload), Err(e));
        }
        Payload::Rtcp(c, RtcpForm::Compound) => {
            assert_eq!(kind, MediaKind::Rtcp);
            assert_eq!(Compound::new_checked(payload), Ok(c));
        }
        Payload::Rtcp(c, RtcpForm::ReducedSize) => {
            assert_eq!(kind, MediaKind::Rtcp);
            assert!(Compound::new_checked(payload).is_err());
            assert_eq!(Compound::new_checked_rsize(payload), Ok(c));
        }
        Payload::RtcpInvalid(e) => {
            assert_eq!(kind, MediaKind::Rtcp);
            assert_eq!(Compound::new_checked(payload), Err(e));
            assert!(Compound::new_checked_rsize(payload).is_err());
        }
        Payload::Sip(m) => {
            assert_eq!(kind, MediaKind::Other);
            assert!(payload.first().is_some_and(u8::is_ascii_uppercase));
            assert_eq!(SipMessage::parse(payload), Ok(m));
        }
        Payload::Other => {
            assert!(!matches!(kind, MediaKind::Rtp | MediaKind::Rtcp));
            assert!(
                !payload.first().is_some_and(u8::is_ascii_uppercase)
                    || SipMessage::parse(payload).is_err()
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let default_linktype = LINKTYPES[usize::from(selector) % LINKTYPES.len()];
    decode_views(default_linktype, rest, rest.len() as u32);

    let mut analyzer = Analyzer::new(analyzer_config(selector));
    let mut ts_ns = START_NS;
    let mut input = rest;
    while let Some((header, body)) = input.split_first_chunk::<RECORD_HEADER_LEN>() {
        let [len_hi, len_lo, ts_delta, flags] = *header;
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo])).min(body.len());
        let (frame, next) = body.split_at(len);
        input = next;

        let unit = if flags & 0b10 != 0 {
            NS_PER_S
        } else {
            NS_PER_MS
        };
        let step = i64::from(ts_delta) * unit;
        ts_ns = if flags & 0b100 != 0 {
            ts_ns.saturating_sub(step)
        } else {
            ts_ns.saturating_add(step)
        };
        let linktype = if flags & 0b1000 != 0 {
            LINKTYPES[usize::from(flags >> 4) % LINKTYPES.len()]
        } else {
            default_linktype
        };
        let captured = frame.len() as u32;
        let wire_len = if flags & 0b1 != 0 {
            captured.saturating_add(1 + u32::from(ts_delta))
        } else {
            captured
        };

        decode_views(linktype, frame, wire_len);
        analyzer.on_frame(ts_ns, linktype, frame, wire_len);
        black_box(analyzer.active_streams());
        for report in analyzer.drain_reports() {
            black_box(report);
        }
    }
    black_box(analyzer.counters());
    let result = analyzer.finish();
    black_box(result.streams.len());
    black_box(&result);
});
