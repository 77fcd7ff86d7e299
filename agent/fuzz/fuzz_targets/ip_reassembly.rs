//! Fuzzes IP fragment reassembly (`reassembly::ip::Reassembler`) with hostile fragment
//! sequences, and decodes every datagram it completes (`decode::frame::reassembled_datagram`).
//!
//! Input layout:
//! - byte 0: the limits: bits 0-2 give `max_datagrams` (1 + value), bits 3-4 `max_total_bytes`
//!   (an index into `TOTAL_BYTES`), bits 5-7 `max_datagram_bytes` (an index into
//!   `DATAGRAM_BYTES`); the timeout is 1 s of packet time;
//! - then records `[flags, id, offset_hi, offset_lo, len_hi, len_lo, dt_ms]` followed by `len`
//!   fragment bytes (fewer if the input ends):
//!   - flags bit 0: more fragments; bits 1-2: source address (one of four); bit 3: IPv6
//!     addresses; bit 4: protocol TCP instead of UDP; bit 5: IPv6 destination options as the
//!     fragment header's next header; bit 6: VLAN 7; bit 7: sweep before inserting;
//!   - `offset`: in octets as given (the decoder only hands over multiples of 8, the reassembler
//!     must cope with anything);
//!   - `dt_ms`: packet time advance before this fragment.
//!
//! Checked after every step: no panic; never more datagrams pending than `max_datagrams`, never
//! more bytes buffered than the memory limit; a completed datagram is never longer than 65,535
//! octets. At the end, after `finish`, nothing is held and every datagram started ended in
//! exactly one outcome counter.

#![no_main]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use voqa_agent::decode::Fragment;
use voqa_agent::decode::frame::reassembled_datagram;
use voqa_agent::reassembly::ip::{Config, IpReassembly, MAX_IP_PAYLOAD, Reassembler};

const RECORD_HEADER_LEN: usize = 7;
const TOTAL_BYTES: [usize; 4] = [0, 70_000, 200_000, 4 << 20];
const DATAGRAM_BYTES: [usize; 8] = [0, 8, 1500, 9000, 65_535, 65_535, 100_000, usize::MAX];
const NS_PER_MS: i64 = 1_000_000;

fn address(v6: bool, which: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            0,
            u16::from(which) + 1,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, which + 1))
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&limits, mut rest)) = input.split_first() else {
        return;
    };
    let cfg = Config {
        max_datagrams: usize::from(limits & 0b111) + 1,
        max_total_bytes: TOTAL_BYTES[usize::from((limits >> 3) & 0b11)],
        max_datagram_bytes: DATAGRAM_BYTES[usize::from(limits >> 5)],
        timeout_ns: 1_000 * NS_PER_MS,
    };
    let mut reassembler = Reassembler::new(cfg);
    let limit = reassembler.config().max_total_bytes;
    let max_datagrams = reassembler.config().max_datagrams;
    let mut counters = IpReassembly::default();
    let mut now = 0i64;
    while let Some((header, tail)) = rest.split_first_chunk::<RECORD_HEADER_LEN>() {
        let [flags, id, offset_hi, offset_lo, len_hi, len_lo, dt_ms] = *header;
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo])).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        now += i64::from(dt_ms) * NS_PER_MS;
        if flags & 0x80 != 0 {
            reassembler.sweep(now, &mut counters);
        }
        let v6 = flags & 0x08 != 0;
        let protocol = match (flags & 0x10 != 0, flags & 0x20 != 0) {
            (true, _) => 6,
            (false, true) => 60,
            (false, false) => 17,
        };
        let fragment = Fragment {
            src: address(v6, (flags >> 1) & 0b11),
            dst: address(v6, 3),
            id: u32::from(id),
            offset: u32::from(u16::from_be_bytes([offset_hi, offset_lo])),
            more: flags & 1 != 0,
            protocol,
            payload,
            vlan: (flags & 0x40 != 0).then_some(7),
            ipv6_header: None,
        };
        if let Some(done) = reassembler.insert(now, &fragment, &mut counters) {
            assert!(
                done.data.len() <= MAX_IP_PAYLOAD,
                "{} octets",
                done.data.len()
            );
            let key = &done.key;
            if let Ok(datagram) =
                reassembled_datagram(key.src, key.dst, key.protocol, key.vlan, &done.data)
            {
                assert!(datagram.payload.len() <= done.data.len());
                black_box((datagram.src, datagram.dst, datagram.payload));
            }
            reassembler.recycle(done.data);
        }
        assert!(reassembler.pending() <= max_datagrams);
        assert!(
            reassembler.buffered_bytes() <= limit,
            "{} > {limit}",
            reassembler.buffered_bytes()
        );
    }
    reassembler.finish(&mut counters);
    assert!(reassembler.is_empty());
    assert_eq!(reassembler.buffered_bytes(), 0);
    let c = counters;
    let ended = c.reassembled
        + c.overlapping
        + c.inconsistent
        + c.too_big
        + c.evicted
        + c.timed_out
        + c.incomplete;
    assert_eq!(ended, reassembler.started(), "{c:?}");
});
