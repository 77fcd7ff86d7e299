//! Fuzzes SIP-over-TCP reassembly (`reassembly::tcp`) with hostile segment sequences: any
//! sequence numbers, flags, directions, overlaps, holes, WebSocket frames and SIP framing. The
//! bounds must hold after every segment (directions, buffer capacity, message size), every
//! message handed on must fit the per-direction bound, and nothing may panic. The WebSocket
//! helpers and the TCP header view are run on the raw input too.

#![no_main]

use std::hint::black_box;
use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use voqa_agent::decode::Segment;
use voqa_agent::decode::tcp::Tcp;
use voqa_agent::reassembly::tcp::{TcpConfig, TcpReassembler};
use voqa_agent::reassembly::websocket::{self, FrameHeader};

const MAX_FLOW_BYTES: usize = 2048;
const MAX_FLOWS: usize = 4;
const MAX_TOTAL_BYTES: usize = 8192;

fuzz_target!(|data: &[u8]| {
    let _ = black_box(FrameHeader::parse(data));
    black_box(websocket::handshake(data));
    black_box(websocket::header_block_len(data));
    if let Ok(tcp) = Tcp::new_checked(data) {
        black_box((tcp.source_port(), tcp.sequence(), tcp.flags(), tcp.payload()));
    }
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let mut reassembler = TcpReassembler::new(TcpConfig {
        sip_ports: vec![5060, 5080],
        max_flow_bytes: MAX_FLOW_BYTES,
        max_flows: MAX_FLOWS,
        max_total_bytes: MAX_TOTAL_BYTES,
        idle_timeout_ns: 5_000_000_000,
    });
    let mut next_seq = [0u32; 8];
    let mut ts_ns = 0i64;
    // Records: [flags, endpoint, seq_hi, seq_lo, len] + len payload bytes.
    while let Some((header, after)) = rest.split_first_chunk::<5>() {
        let [flags, endpoint, seq_hi, seq_lo, len] = *header;
        let len = usize::from(len).min(after.len());
        let (payload, after) = after.split_at(len);
        rest = after;
        // Endpoint bits 0-2: which of 8 directions (client ports, one on a non-SIP port);
        // bit 3: reversed; bit 4: sequence continues the direction, else taken from the record.
        let which = usize::from(endpoint & 7);
        let client: SocketAddr = ([192, 0, 2, 1], 40000 + which as u16).into();
        let server_port = if which == 7 { 8080 } else { 5060 };
        let server: SocketAddr = ([192, 0, 2, 2], server_port).into();
        let (src, dst) = if endpoint & 8 != 0 {
            (server, client)
        } else {
            (client, server)
        };
        let seq = if endpoint & 16 != 0 {
            next_seq[which]
        } else {
            u32::from_be_bytes([mode, endpoint, seq_hi, seq_lo])
        };
        next_seq[which] = seq.wrapping_add(len as u32);
        ts_ns += i64::from(flags >> 5) * 1_000_000_000;
        let segment = Segment {
            src,
            dst,
            seq,
            flags: flags & 0x1f,
            payload,
            truncated: false,
            vlan: None,
        };
        reassembler.on_segment(ts_ns, &segment, |message| {
            assert!(!message.is_empty() && message.len() <= MAX_FLOW_BYTES);
            black_box(message);
        });
        assert!(reassembler.flows() <= MAX_FLOWS);
        // One direction may pass the total while it is fed (it is then evicted first if needed):
        // never more than three buffers of one direction beyond it.
        assert!(reassembler.buffered_capacity() <= MAX_TOTAL_BYTES + 3 * MAX_FLOW_BYTES);
        if mode & 1 != 0 {
            reassembler.sweep(ts_ns);
        }
    }
    let counters = *reassembler.counters();
    assert!(counters.websocket_messages <= counters.messages);
});
