//! Safe walker over one TPACKET_V3 ring block (`tpacket_block_desc` followed by a chain of
//! `tpacket3_hdr` frames), given as a plain `&[u8]`.
//!
//! Everything in the block is written by the kernel but treated as untrusted input: every count,
//! offset and length is checked against the block before use, with checked arithmetic, and the
//! first inconsistency ends the walk (reported by [`Frames::malformed`]) instead of panicking.
//! Fields are read as native-endian integers out of byte slices, so no alignment is assumed.
//!
//! This module must stay free of `unsafe`, must not allocate or copy packet bytes (it runs once
//! per captured packet), and knows nothing about sockets or the memory map: `ring.rs` owns the
//! block and decides when it goes back to the kernel.

use std::iter::FusedIterator;
use std::mem::{offset_of, size_of};

use crate::capture::frame::{Frame, LINKTYPE_ETHERNET};
use libc::{sockaddr_ll, tpacket_block_desc, tpacket_hdr_v1, tpacket_hdr_variant1, tpacket3_hdr};

/// Start of the `tpacket_hdr_v1` inside the block descriptor (the union `hdr`).
const BLOCK_HDR_V1: usize = offset_of!(tpacket_block_desc, hdr);
/// Offset of `block_status`, the word the kernel and user space hand the block over with.
pub(super) const BLOCK_STATUS_OFFSET: usize =
    BLOCK_HDR_V1 + offset_of!(tpacket_hdr_v1, block_status);
const NUM_PKTS_OFFSET: usize = BLOCK_HDR_V1 + offset_of!(tpacket_hdr_v1, num_pkts);
const FIRST_PKT_OFFSET: usize = BLOCK_HDR_V1 + offset_of!(tpacket_hdr_v1, offset_to_first_pkt);
const BLK_LEN_OFFSET: usize = BLOCK_HDR_V1 + offset_of!(tpacket_hdr_v1, blk_len);
/// Size of the block descriptor; the first packet can never start before it.
pub(super) const BLOCK_HEADER_LEN: usize = size_of::<tpacket_block_desc>();

const NEXT_OFFSET: usize = offset_of!(tpacket3_hdr, tp_next_offset);
const SEC_OFFSET: usize = offset_of!(tpacket3_hdr, tp_sec);
const NSEC_OFFSET: usize = offset_of!(tpacket3_hdr, tp_nsec);
const SNAPLEN_OFFSET: usize = offset_of!(tpacket3_hdr, tp_snaplen);
const LEN_OFFSET: usize = offset_of!(tpacket3_hdr, tp_len);
const STATUS_OFFSET: usize = offset_of!(tpacket3_hdr, tp_status);
const MAC_OFFSET: usize = offset_of!(tpacket3_hdr, tp_mac);
const HV1_OFFSET: usize = offset_of!(tpacket3_hdr, hv1);
const VLAN_TCI_OFFSET: usize = HV1_OFFSET + offset_of!(tpacket_hdr_variant1, tp_vlan_tci);
const VLAN_TPID_OFFSET: usize = HV1_OFFSET + offset_of!(tpacket_hdr_variant1, tp_vlan_tpid);
/// The kernel puts a `sockaddr_ll` right after the frame header, at `TPACKET_ALIGN(sizeof hdr)`.
const SOCKADDR_OFFSET: usize = size_of::<tpacket3_hdr>().next_multiple_of(libc::TPACKET_ALIGNMENT);
const PKTTYPE_OFFSET: usize = SOCKADDR_OFFSET + offset_of!(sockaddr_ll, sll_pkttype);
/// Frame header plus its `sockaddr_ll`: the bytes a frame must have before its packet data.
pub(super) const FRAME_HEADER_LEN: usize = SOCKADDR_OFFSET + size_of::<sockaddr_ll>();

const _: () = assert!(FRAME_HEADER_LEN == libc::TPACKET3_HDRLEN);
const _: () = assert!(BLOCK_STATUS_OFFSET == 8);
const _: () = assert!(BLK_LEN_OFFSET + 4 <= BLOCK_HEADER_LEN);

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Reads a native-endian `u32` at `at`; `None` when it does not fit in `bytes`.
fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..)
        .and_then(<[u8]>::first_chunk::<4>)
        .map(|chunk| u32::from_ne_bytes(*chunk))
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    bytes
        .get(at..)
        .and_then(<[u8]>::first_chunk::<2>)
        .map(|chunk| u16::from_ne_bytes(*chunk))
}

/// The three fields of the block descriptor the walk needs.
#[derive(Debug, Clone, Copy)]
struct BlockHeader {
    num_pkts: u32,
    offset_to_first_pkt: u32,
    blk_len: u32,
}

impl BlockHeader {
    fn parse(block: &[u8]) -> Option<Self> {
        if block.len() < BLOCK_HEADER_LEN {
            return None;
        }
        Some(Self {
            num_pkts: read_u32(block, NUM_PKTS_OFFSET)?,
            offset_to_first_pkt: read_u32(block, FIRST_PKT_OFFSET)?,
            blk_len: read_u32(block, BLK_LEN_OFFSET)?,
        })
    }
}

/// View over one `tpacket3_hdr` and its `sockaddr_ll`. The constructor proves that all
/// [`FRAME_HEADER_LEN`] bytes exist, so the accessors below cannot fail.
#[derive(Debug, Clone, Copy)]
struct FrameHeader<'a> {
    bytes: &'a [u8; FRAME_HEADER_LEN],
}

impl<'a> FrameHeader<'a> {
    fn new_checked(area: &'a [u8], at: usize) -> Option<Self> {
        let bytes = area.get(at..)?.first_chunk::<FRAME_HEADER_LEN>()?;
        Some(Self { bytes })
    }

    fn u32_at(&self, at: usize) -> u32 {
        read_u32(self.bytes, at).unwrap_or(0)
    }

    fn u16_at(&self, at: usize) -> u16 {
        read_u16(self.bytes, at).unwrap_or(0)
    }

    fn next_offset(&self) -> u32 {
        self.u32_at(NEXT_OFFSET)
    }
    fn sec(&self) -> u32 {
        self.u32_at(SEC_OFFSET)
    }
    fn nsec(&self) -> u32 {
        self.u32_at(NSEC_OFFSET)
    }
    fn snaplen(&self) -> u32 {
        self.u32_at(SNAPLEN_OFFSET)
    }
    fn len(&self) -> u32 {
        self.u32_at(LEN_OFFSET)
    }
    fn status(&self) -> u32 {
        self.u32_at(STATUS_OFFSET)
    }
    fn mac(&self) -> u16 {
        self.u16_at(MAC_OFFSET)
    }
    /// The kernel field is 32 bits wide but a TCI is 16; the high half is always zero.
    fn vlan_tci(&self) -> u16 {
        (self.u32_at(VLAN_TCI_OFFSET) & 0xffff) as u16
    }
    fn vlan_tpid(&self) -> u16 {
        self.u16_at(VLAN_TPID_OFFSET)
    }
    fn pkttype(&self) -> u8 {
        self.bytes.get(PKTTYPE_OFFSET).copied().unwrap_or(0)
    }
}

/// Iterator over the frames of one block; see [`frames`].
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    /// The block cut to `blk_len`, the part the kernel says it filled.
    area: &'a [u8],
    /// Offset of the next frame header inside `area`.
    next: usize,
    /// Frames announced by `num_pkts` and not yet returned.
    remaining: u32,
    malformed: bool,
}

/// Walks the frames of a whole TPACKET_V3 block: `num_pkts` frames, the first at
/// `offset_to_first_pkt`, each following one at `tp_next_offset` from the previous one. The walk
/// stops at the first inconsistency (a header or packet reaching past `blk_len` or the block, a
/// packet overlapping its header or the next one, a snapshot longer than the wire length, an
/// invalid timestamp); the frames before it are still returned.
pub fn frames(block: &[u8]) -> Frames<'_> {
    let stopped = Frames {
        area: &[],
        next: 0,
        remaining: 0,
        malformed: true,
    };
    let Some(header) = BlockHeader::parse(block) else {
        return stopped;
    };
    let first = header.offset_to_first_pkt as usize;
    let Some(area) = block.get(..header.blk_len as usize) else {
        return Frames {
            remaining: header.num_pkts,
            ..stopped
        };
    };
    if header.num_pkts == 0 {
        return Frames {
            area,
            malformed: false,
            ..stopped
        };
    }
    if first < BLOCK_HEADER_LEN {
        return Frames {
            remaining: header.num_pkts,
            ..stopped
        };
    }
    Frames {
        area,
        next: first,
        remaining: header.num_pkts,
        malformed: false,
    }
}

impl<'a> Frames<'a> {
    /// True when the walk stopped at an inconsistency before `num_pkts` frames were returned.
    pub fn malformed(&self) -> bool {
        self.malformed
    }

    /// Frames announced by the block but not returned because the walk stopped early.
    pub fn skipped(&self) -> u32 {
        if self.malformed { self.remaining } else { 0 }
    }

    fn stop(&mut self) -> Option<Frame<'a>> {
        self.malformed = true;
        None
    }

    /// Decodes the frame at `self.next`, and on success moves `self.next` to the following one.
    fn decode_next(&mut self) -> Option<Frame<'a>> {
        let at = self.next;
        let header = FrameHeader::new_checked(self.area, at)?;
        let mac = usize::from(header.mac());
        if mac < FRAME_HEADER_LEN {
            return None;
        }
        let snaplen = header.snaplen();
        let wire_len = header.len();
        if snaplen > wire_len {
            return None;
        }
        let data_start = at.checked_add(mac)?;
        let data_end = data_start.checked_add(snaplen as usize)?;
        let data = self.area.get(data_start..data_end)?;
        let nsec = header.nsec();
        if i64::from(nsec) >= NANOS_PER_SEC {
            return None;
        }
        let ts_ns = i64::from(header.sec())
            .checked_mul(NANOS_PER_SEC)?
            .checked_add(i64::from(nsec))?;
        let status = header.status();
        let frame = Frame {
            ts_ns,
            linktype: LINKTYPE_ETHERNET,
            data,
            wire_len,
            interface: 0,
            vlan_tci: (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| header.vlan_tci()),
            vlan_tpid: (status & libc::TP_STATUS_VLAN_TPID_VALID != 0).then(|| header.vlan_tpid()),
            pkttype: Some(header.pkttype()),
        };
        // The last frame's `tp_next_offset` is meaningless; only follow it when more are due.
        if self.remaining > 1 {
            let step = header.next_offset() as usize;
            // Frames never overlap, which also guarantees the walk moves forward.
            if step < data_end - at {
                self.remaining -= 1;
                self.malformed = true;
                return Some(frame);
            }
            match at.checked_add(step) {
                Some(next) => self.next = next,
                None => {
                    self.remaining -= 1;
                    self.malformed = true;
                    return Some(frame);
                }
            }
        }
        self.remaining -= 1;
        Some(frame)
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        if self.malformed || self.remaining == 0 {
            return None;
        }
        match self.decode_next() {
            Some(frame) => Some(frame),
            None => self.stop(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.malformed {
            (0, Some(0))
        } else {
            (0, Some(self.remaining as usize))
        }
    }
}

impl FusedIterator for Frames<'_> {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A frame to lay out in a synthetic block, as the kernel would.
    #[derive(Debug, Clone)]
    struct TestFrame {
        pub sec: u32,
        pub nsec: u32,
        pub data: Vec<u8>,
        pub wire_len: u32,
        pub status: u32,
        pub vlan_tci: u32,
        pub vlan_tpid: u16,
        pub pkttype: u8,
    }

    impl TestFrame {
        pub fn simple(sec: u32, nsec: u32, data: &[u8]) -> Self {
            Self {
                sec,
                nsec,
                data: data.to_vec(),
                wire_len: data.len() as u32,
                status: libc::TP_STATUS_USER,
                vlan_tci: 0,
                vlan_tpid: 0,
                pkttype: libc::PACKET_HOST,
            }
        }
    }

    /// Where the kernel puts packet data for SOCK_RAW: `TPACKET_ALIGN(hdrlen) + 16`.
    const MAC: usize = FRAME_HEADER_LEN.next_multiple_of(16) + 16;

    fn put_u32(block: &mut [u8], at: usize, value: u32) {
        block[at..at + 4].copy_from_slice(&value.to_ne_bytes());
    }

    fn put_u16(block: &mut [u8], at: usize, value: u16) {
        block[at..at + 2].copy_from_slice(&value.to_ne_bytes());
    }

    /// Builds a block laid out like the kernel's `prb_fill_curr_block`; returns the block and
    /// the offset of each frame header.
    fn build_block(size: usize, frames: &[TestFrame]) -> (Vec<u8>, Vec<usize>) {
        let mut block = vec![0u8; size];
        let first = BLOCK_HEADER_LEN;
        let mut at = first;
        let mut offsets = Vec::new();
        for frame in frames {
            let total = (MAC + frame.data.len()).next_multiple_of(8);
            offsets.push(at);
            put_u32(&mut block, at + NEXT_OFFSET, total as u32);
            put_u32(&mut block, at + SEC_OFFSET, frame.sec);
            put_u32(&mut block, at + NSEC_OFFSET, frame.nsec);
            put_u32(&mut block, at + SNAPLEN_OFFSET, frame.data.len() as u32);
            put_u32(&mut block, at + LEN_OFFSET, frame.wire_len);
            put_u32(&mut block, at + STATUS_OFFSET, frame.status);
            put_u16(&mut block, at + MAC_OFFSET, MAC as u16);
            put_u32(&mut block, at + VLAN_TCI_OFFSET, frame.vlan_tci);
            put_u16(&mut block, at + VLAN_TPID_OFFSET, frame.vlan_tpid);
            block[at + PKTTYPE_OFFSET] = frame.pkttype;
            block[at + MAC..at + MAC + frame.data.len()].copy_from_slice(&frame.data);
            at += total;
        }
        put_u32(&mut block, 0, 3);
        put_u32(&mut block, BLOCK_STATUS_OFFSET, libc::TP_STATUS_USER);
        put_u32(&mut block, NUM_PKTS_OFFSET, frames.len() as u32);
        put_u32(&mut block, FIRST_PKT_OFFSET, first as u32);
        put_u32(&mut block, BLK_LEN_OFFSET, at as u32);
        (block, offsets)
    }

    #[test]
    fn layout_matches_the_kernel_headers() {
        assert_eq!(BLOCK_HEADER_LEN, 48);
        assert_eq!(FRAME_HEADER_LEN, 68);
        assert_eq!(
            (NUM_PKTS_OFFSET, FIRST_PKT_OFFSET, BLK_LEN_OFFSET),
            (12, 16, 20)
        );
        assert_eq!(
            (SNAPLEN_OFFSET, LEN_OFFSET, STATUS_OFFSET, MAC_OFFSET),
            (12, 16, 20, 24)
        );
        assert_eq!(
            (VLAN_TCI_OFFSET, VLAN_TPID_OFFSET, PKTTYPE_OFFSET),
            (32, 36, 58)
        );
    }

    #[test]
    fn one_frame() {
        let (block, _) = build_block(
            4096,
            &[TestFrame::simple(1_700_000_000, 123_456_789, b"hello")],
        );
        let mut walk = frames(&block);
        let frame = walk.next().unwrap();
        assert_eq!(frame.ts_ns, 1_700_000_000_123_456_789);
        assert_eq!(frame.data, b"hello");
        assert_eq!(frame.wire_len, 5);
        assert_eq!(frame.vlan_tci, None);
        assert_eq!(frame.vlan_tpid, None);
        assert_eq!(frame.pkttype, Some(libc::PACKET_HOST));
        assert_eq!(walk.next(), None);
        assert!(!walk.malformed());
        assert_eq!(walk.skipped(), 0);
    }

    #[test]
    fn several_frames_in_order() {
        let list: Vec<TestFrame> = (0..5u8)
            .map(|i| TestFrame::simple(10, u32::from(i) * 1000, &vec![i; 60 + usize::from(i) * 7]))
            .collect();
        let (block, _) = build_block(4096, &list);
        let got: Vec<_> = frames(&block).collect();
        assert_eq!(got.len(), 5);
        for (i, frame) in got.iter().enumerate() {
            assert_eq!(frame.ts_ns, 10_000_000_000 + i as i64 * 1000);
            assert_eq!(frame.data, &list[i].data[..]);
        }
    }

    #[test]
    fn empty_block_is_not_malformed() {
        let (block, _) = build_block(4096, &[]);
        let mut walk = frames(&block);
        assert_eq!(walk.next(), None);
        assert!(!walk.malformed());
    }

    #[test]
    fn vlan_metadata_and_truncated_snapshot() {
        let mut frame = TestFrame::simple(1, 2, &[0xab; 64]);
        frame.wire_len = 1514;
        frame.status |= libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID;
        frame.vlan_tci = 0x2064;
        frame.vlan_tpid = 0x8100;
        frame.pkttype = libc::PACKET_OUTGOING;
        let mut no_tpid = TestFrame::simple(1, 3, &[1; 10]);
        no_tpid.status |= libc::TP_STATUS_VLAN_VALID;
        no_tpid.vlan_tci = 7;
        let (block, _) = build_block(4096, &[frame, no_tpid]);
        let got: Vec<_> = frames(&block).collect();
        assert_eq!(got[0].vlan_tci, Some(0x2064));
        assert_eq!(got[0].vlan_tpid, Some(0x8100));
        assert_eq!(got[0].wire_len, 1514);
        assert_eq!(got[0].data.len(), 64);
        assert_eq!(got[0].pkttype, Some(libc::PACKET_OUTGOING));
        assert_eq!(got[1].vlan_tci, Some(7));
        assert_eq!(got[1].vlan_tpid, None);
    }

    fn three_frames() -> (Vec<u8>, Vec<usize>) {
        let list: Vec<TestFrame> = (0..3u8)
            .map(|i| TestFrame::simple(1, u32::from(i), &[i; 100]))
            .collect();
        build_block(4096, &list)
    }

    #[test]
    fn next_offset_outside_the_block_stops_after_the_good_frame() {
        let (mut block, offsets) = three_frames();
        put_u32(&mut block, offsets[0] + NEXT_OFFSET, 1 << 20);
        let mut walk = frames(&block);
        assert_eq!(walk.next().unwrap().data, &[0; 100]);
        assert_eq!(walk.next(), None);
        assert!(walk.malformed());
        assert_eq!(walk.skipped(), 2);
    }

    #[test]
    fn next_offset_overlapping_the_packet_stops() {
        let (mut block, offsets) = three_frames();
        put_u32(&mut block, offsets[1] + NEXT_OFFSET, 0);
        let mut walk = frames(&block);
        assert_eq!(walk.by_ref().count(), 2);
        assert!(walk.malformed());
        assert_eq!(walk.skipped(), 1);
    }

    #[test]
    fn num_pkts_larger_than_what_fits() {
        let (mut block, _) = three_frames();
        put_u32(&mut block, NUM_PKTS_OFFSET, 1000);
        let mut walk = frames(&block);
        assert_eq!(walk.by_ref().count(), 3);
        assert!(walk.malformed());
        // The third frame's `tp_next_offset` points to the end of blk_len: no header fits there.
        assert_eq!(walk.skipped(), 997);
    }

    #[test]
    fn snaplen_past_the_block_end() {
        let (mut block, offsets) = three_frames();
        put_u32(&mut block, offsets[2] + SNAPLEN_OFFSET, 5000);
        put_u32(&mut block, offsets[2] + LEN_OFFSET, 5000);
        let mut walk = frames(&block);
        assert_eq!(walk.by_ref().count(), 2);
        assert!(walk.malformed());
        // Also with blk_len claiming the whole block.
        put_u32(&mut block, BLK_LEN_OFFSET, 4096);
        assert_eq!(frames(&block).count(), 2);
    }

    #[test]
    fn snaplen_larger_than_wire_len_stops() {
        let (mut block, offsets) = three_frames();
        put_u32(&mut block, offsets[0] + LEN_OFFSET, 99);
        let mut walk = frames(&block);
        assert_eq!(walk.next(), None);
        assert!(walk.malformed());
    }

    #[test]
    fn mac_offset_inside_the_header_stops() {
        let (mut block, offsets) = three_frames();
        put_u16(&mut block, offsets[1] + MAC_OFFSET, 20);
        assert_eq!(frames(&block).count(), 1);
    }

    #[test]
    fn bad_nanoseconds_stop() {
        let (mut block, offsets) = three_frames();
        put_u32(&mut block, offsets[0] + NSEC_OFFSET, 1_000_000_000);
        assert_eq!(frames(&block).count(), 0);
    }

    #[test]
    fn offset_to_first_pkt_past_the_end_or_inside_the_descriptor() {
        let (mut block, _) = three_frames();
        put_u32(&mut block, FIRST_PKT_OFFSET, u32::MAX);
        let mut walk = frames(&block);
        assert_eq!(walk.next(), None);
        assert!(walk.malformed());
        assert_eq!(walk.skipped(), 3);
        put_u32(&mut block, FIRST_PKT_OFFSET, 8);
        assert_eq!(frames(&block).count(), 0);
        assert!(frames(&block).malformed());
    }

    #[test]
    fn blk_len_past_the_block_or_short_block() {
        let (mut block, _) = three_frames();
        put_u32(&mut block, BLK_LEN_OFFSET, 4097);
        assert_eq!(frames(&block).count(), 0);
        assert!(frames(&block).malformed());
        assert!(frames(&block[..BLOCK_HEADER_LEN - 1]).malformed());
        assert!(frames(&[]).malformed());
    }

    #[test]
    fn blk_len_cutting_the_last_frame_stops_there() {
        let (mut block, offsets) = three_frames();
        put_u32(&mut block, BLK_LEN_OFFSET, offsets[2] as u32 + 50);
        assert_eq!(frames(&block).count(), 2);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut walk = frames(&bytes);
            let mut count = 0usize;
            for frame in walk.by_ref() {
                prop_assert!(frame.data.len() <= frame.wire_len as usize);
                count += 1;
            }
            prop_assert!(count <= bytes.len() / FRAME_HEADER_LEN);
        }

        #[test]
        fn corrupting_one_word_never_panics(
            sizes in proptest::collection::vec(0usize..300, 0..8),
            at in 0usize..4096,
            value in any::<u32>(),
        ) {
            let list: Vec<TestFrame> = sizes.iter().map(|&n| TestFrame::simple(5, 6, &vec![0x5a; n])).collect();
            let (mut block, _) = build_block(4096, &list);
            prop_assert_eq!(frames(&block).count(), list.len());
            let at = at.min(4092);
            put_u32(&mut block, at, value);
            let walk = frames(&block);
            prop_assert!(walk.count() <= 4096 / FRAME_HEADER_LEN);
        }
    }
}
