//! Classic BPF socket filter that lets only UDP over IPv4/IPv6 into the capture ring, plus a
//! minimal cBPF interpreter so the program can be checked in unit tests without a kernel.
//!
//! The filter is attached before the socket is bound, so the ring never sees anything else, and
//! its accept verdict is the snapshot length, so the kernel truncates long frames for us. It
//! expects an Ethernet-style link layer (Ethernet, veth, loopback). VLAN tags stripped by the
//! NIC are not in the frame the filter sees; tags still in the frame (one 802.1Q or 802.1ad tag)
//! are skipped. Every IPv4 fragment of a UDP datagram carries protocol 17, and every IPv6
//! fragment names UDP in its fragment header, so fragments pass and can be reassembled later.
//!
//! This module has no `unsafe` and does not touch sockets; `socket.rs` attaches the program.

use libc::{
    BPF_ABS, BPF_B, BPF_H, BPF_JA, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, sock_filter,
};

const LD_WORD: u16 = (BPF_LD | BPF_W | BPF_ABS) as u16;
const LD_HALF: u16 = (BPF_LD | BPF_H | BPF_ABS) as u16;
const LD_BYTE: u16 = (BPF_LD | BPF_B | BPF_ABS) as u16;
const JUMP_IF_EQUAL: u16 = (BPF_JMP | BPF_JEQ | BPF_K) as u16;
const JUMP_ALWAYS: u16 = (BPF_JMP | BPF_JA) as u16;
const RETURN_K: u16 = (BPF_RET | BPF_K) as u16;

const ETHERTYPE_IPV4: u32 = 0x0800;
const ETHERTYPE_IPV6: u32 = 0x86dd;
const ETHERTYPE_8021Q: u32 = 0x8100;
const ETHERTYPE_8021AD: u32 = 0x88a8;
const IPPROTO_UDP: u32 = 17;
const IPV6_FRAGMENT_HEADER: u32 = 44;

const ETHERNET_HEADER_LEN: u32 = 14;
const VLAN_TAG_LEN: u32 = 4;
const IPV4_PROTOCOL_OFFSET: u32 = 9;
const IPV6_NEXT_HEADER_OFFSET: u32 = 6;
const IPV6_HEADER_LEN: u32 = 40;

// Instruction indices of the program, so that jump offsets are computed (and range-checked)
// at compile time. Blocks: ethertype dispatch, tagged ethertype dispatch, then one IP block per
// (version, tagged) pair, then the two verdicts.
const ETHERTYPE_DISPATCH: usize = 0; // 5 instructions
const TAGGED_DISPATCH: usize = 5; // 3 instructions
const IPV4_UNTAGGED: usize = 8; // 2 instructions
const IPV6_UNTAGGED: usize = 10; // 5 instructions
const IPV4_TAGGED: usize = 15; // 2 instructions
const IPV6_TAGGED: usize = 17; // 5 instructions
const ACCEPT: usize = 22;
const REJECT: usize = 23;
const PROGRAM_LEN: usize = 24;

const NO_OP: sock_filter = sock_filter {
    code: JUMP_ALWAYS,
    jt: 0,
    jf: 0,
    k: 0,
};

/// Offset for a jump at instruction `from` to land on instruction `to` (forward only).
const fn offset(from: usize, to: usize) -> u8 {
    assert!(to > from && to - from - 1 <= u8::MAX as usize);
    (to - from - 1) as u8
}

const fn load(code: u16, at: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k: at,
    }
}

/// At instruction `at`: `if A == value goto then else goto otherwise`.
const fn jump_if(at: usize, value: u32, then: usize, otherwise: usize) -> sock_filter {
    sock_filter {
        code: JUMP_IF_EQUAL,
        jt: offset(at, then),
        jf: offset(at, otherwise),
        k: value,
    }
}

const fn verdict(value: u32) -> sock_filter {
    sock_filter {
        code: RETURN_K,
        jt: 0,
        jf: 0,
        k: value,
    }
}

/// Writes the 2-instruction IPv4 block at `at` for an IP header starting at byte `l3`.
const fn ipv4_block(program: &mut [sock_filter; PROGRAM_LEN], at: usize, l3: u32) {
    program[at] = load(LD_BYTE, l3 + IPV4_PROTOCOL_OFFSET);
    program[at + 1] = jump_if(at + 1, IPPROTO_UDP, ACCEPT, REJECT);
}

/// Writes the 5-instruction IPv6 block at `at`: UDP directly, or behind a fragment header.
const fn ipv6_block(program: &mut [sock_filter; PROGRAM_LEN], at: usize, l3: u32) {
    program[at] = load(LD_BYTE, l3 + IPV6_NEXT_HEADER_OFFSET);
    program[at + 1] = jump_if(at + 1, IPPROTO_UDP, ACCEPT, at + 2);
    program[at + 2] = jump_if(at + 2, IPV6_FRAGMENT_HEADER, at + 3, REJECT);
    program[at + 3] = load(LD_BYTE, l3 + IPV6_HEADER_LEN);
    program[at + 4] = jump_if(at + 4, IPPROTO_UDP, ACCEPT, REJECT);
}

const fn program(snaplen: u32) -> [sock_filter; PROGRAM_LEN] {
    let mut p = [NO_OP; PROGRAM_LEN];
    let d = ETHERTYPE_DISPATCH;
    p[d] = load(LD_HALF, 12);
    p[d + 1] = jump_if(d + 1, ETHERTYPE_IPV4, IPV4_UNTAGGED, d + 2);
    p[d + 2] = jump_if(d + 2, ETHERTYPE_IPV6, IPV6_UNTAGGED, d + 3);
    p[d + 3] = jump_if(d + 3, ETHERTYPE_8021Q, TAGGED_DISPATCH, d + 4);
    p[d + 4] = jump_if(d + 4, ETHERTYPE_8021AD, TAGGED_DISPATCH, REJECT);
    let t = TAGGED_DISPATCH;
    p[t] = load(LD_HALF, 12 + VLAN_TAG_LEN);
    p[t + 1] = jump_if(t + 1, ETHERTYPE_IPV4, IPV4_TAGGED, t + 2);
    p[t + 2] = jump_if(t + 2, ETHERTYPE_IPV6, IPV6_TAGGED, REJECT);
    ipv4_block(&mut p, IPV4_UNTAGGED, ETHERNET_HEADER_LEN);
    ipv6_block(&mut p, IPV6_UNTAGGED, ETHERNET_HEADER_LEN);
    ipv4_block(&mut p, IPV4_TAGGED, ETHERNET_HEADER_LEN + VLAN_TAG_LEN);
    ipv6_block(&mut p, IPV6_TAGGED, ETHERNET_HEADER_LEN + VLAN_TAG_LEN);
    p[ACCEPT] = verdict(snaplen);
    p[REJECT] = verdict(0);
    p
}

// Evaluating the program here turns any bad jump offset into a compile error.
const _: [sock_filter; PROGRAM_LEN] = program(u32::MAX);

/// The capture filter: UDP over IPv4 or IPv6 on Ethernet, untagged or with one 802.1Q/802.1ad
/// tag, IP fragments included; returns `snaplen` (bytes to keep) for those and 0 for the rest.
pub fn udp_filter(snaplen: u32) -> Vec<sock_filter> {
    program(snaplen).to_vec()
}

/// Reads `N` bytes at `at` as a big-endian number, as cBPF absolute loads do.
fn load_be<const N: usize>(packet: &[u8], at: u32) -> Option<u32> {
    let bytes = packet
        .get(usize::try_from(at).ok()?..)?
        .first_chunk::<N>()?;
    Some(bytes.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

/// Runs a classic BPF program over `packet` and returns its verdict (bytes to keep, 0 = drop).
///
/// Only the instructions [`udp_filter`] emits are implemented: absolute word/half/byte loads,
/// `jeq #k`, `ja` and `ret #k`. Like the kernel, a load past the end of the packet drops it; so
/// do unknown instructions and running off the end of the program.
pub fn run(program: &[sock_filter], packet: &[u8]) -> u32 {
    let mut accumulator = 0u32;
    let mut pc = 0usize;
    while let Some(insn) = program.get(pc) {
        pc = pc.saturating_add(1);
        let loaded = match insn.code {
            LD_WORD => load_be::<4>(packet, insn.k),
            LD_HALF => load_be::<2>(packet, insn.k),
            LD_BYTE => load_be::<1>(packet, insn.k),
            JUMP_IF_EQUAL => {
                let skip = if accumulator == insn.k {
                    insn.jt
                } else {
                    insn.jf
                };
                pc = pc.saturating_add(usize::from(skip));
                continue;
            }
            JUMP_ALWAYS => {
                pc = pc.saturating_add(usize::try_from(insn.k).unwrap_or(usize::MAX));
                continue;
            }
            RETURN_K => return insn.k,
            _ => return 0,
        };
        match loaded {
            Some(value) => accumulator = value,
            None => return 0,
        }
    }
    0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SNAPLEN: u32 = 1600;

    fn ethernet(tags: &[u16], ethertype: u16) -> Vec<u8> {
        let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        for &tpid in tags {
            frame.extend_from_slice(&tpid.to_be_bytes());
            frame.extend_from_slice(&100u16.to_be_bytes());
        }
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame
    }

    /// IPv4 header with `protocol` and the fragment field (flags + offset in 8-byte units).
    fn ipv4(protocol: u8, fragment: u16, payload_len: usize) -> Vec<u8> {
        let total = (20 + payload_len) as u16;
        let mut header = vec![0x45, 0];
        header.extend_from_slice(&total.to_be_bytes());
        header.extend_from_slice(&[0x12, 0x34]);
        header.extend_from_slice(&fragment.to_be_bytes());
        header.extend_from_slice(&[64, protocol, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        header
    }

    fn ipv6(next_header: u8, payload_len: usize) -> Vec<u8> {
        let mut header = vec![0x60, 0, 0, 0];
        header.extend_from_slice(&(payload_len as u16).to_be_bytes());
        header.extend_from_slice(&[next_header, 64]);
        header.extend_from_slice(&[0xfd; 16]);
        header.extend_from_slice(&[0xfe; 16]);
        header
    }

    fn udp(payload: &[u8]) -> Vec<u8> {
        let mut datagram = vec![0x13, 0xc4, 0x27, 0x10];
        datagram.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        datagram.extend_from_slice(&[0, 0]);
        datagram.extend_from_slice(payload);
        datagram
    }

    fn concat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn verdict_for(packet: &[u8]) -> u32 {
        run(&udp_filter(SNAPLEN), packet)
    }

    #[test]
    fn udp_over_ipv4_and_ipv6_is_accepted_with_the_snaplen() {
        let payload = udp(&[0x80; 172]);
        let v4 = concat(&[
            &ethernet(&[], 0x0800),
            &ipv4(17, 0x4000, payload.len()),
            &payload,
        ]);
        let v6 = concat(&[&ethernet(&[], 0x86dd), &ipv6(17, payload.len()), &payload]);
        assert_eq!(verdict_for(&v4), SNAPLEN);
        assert_eq!(verdict_for(&v6), SNAPLEN);
        assert_eq!(run(&udp_filter(96), &v4), 96);
    }

    #[test]
    fn one_vlan_tag_of_either_kind_is_skipped() {
        let payload = udp(b"rtp");
        for tpid in [0x8100, 0x88a8] {
            let v4 = concat(&[
                &ethernet(&[tpid], 0x0800),
                &ipv4(17, 0, payload.len()),
                &payload,
            ]);
            let v6 = concat(&[
                &ethernet(&[tpid], 0x86dd),
                &ipv6(17, payload.len()),
                &payload,
            ]);
            assert_eq!(verdict_for(&v4), SNAPLEN, "tpid {tpid:#x}");
            assert_eq!(verdict_for(&v6), SNAPLEN, "tpid {tpid:#x}");
            let tcp = concat(&[&ethernet(&[tpid], 0x0800), &ipv4(6, 0, 20), &[0; 20]]);
            assert_eq!(verdict_for(&tcp), 0);
        }
    }

    #[test]
    fn double_tagged_frames_are_not_matched() {
        let payload = udp(b"rtp");
        let qinq = concat(&[
            &ethernet(&[0x88a8, 0x8100], 0x0800),
            &ipv4(17, 0, payload.len()),
            &payload,
        ]);
        assert_eq!(verdict_for(&qinq), 0);
    }

    #[test]
    fn ipv4_fragments_all_pass() {
        let first = concat(&[
            &ethernet(&[], 0x0800),
            &ipv4(17, 0x2000, 1480),
            &udp(&[1; 1472]),
        ]);
        // A later fragment has no UDP header, just payload bytes, yet protocol is still 17.
        let middle = concat(&[
            &ethernet(&[], 0x0800),
            &ipv4(17, 0x2000 | 185, 1480),
            &[2; 1480],
        ]);
        let last = concat(&[&ethernet(&[], 0x0800), &ipv4(17, 370, 48), &[3; 48]]);
        for fragment in [first, middle, last] {
            assert_eq!(verdict_for(&fragment), SNAPLEN);
        }
        let tcp_fragment = concat(&[&ethernet(&[], 0x0800), &ipv4(6, 185, 100), &[0; 100]]);
        assert_eq!(verdict_for(&tcp_fragment), 0);
    }

    #[test]
    fn ipv6_fragment_header_naming_udp_passes() {
        let fragment_of_udp = [17, 0, 0x05, 0xc9, 0, 0, 0, 1];
        let frame = concat(&[
            &ethernet(&[], 0x86dd),
            &ipv6(44, 8 + 100),
            &fragment_of_udp,
            &[9; 100],
        ]);
        assert_eq!(verdict_for(&frame), SNAPLEN);
        let tagged = concat(&[
            &ethernet(&[0x8100], 0x86dd),
            &ipv6(44, 108),
            &fragment_of_udp,
            &[9; 100],
        ]);
        assert_eq!(verdict_for(&tagged), SNAPLEN);
        let fragment_of_tcp = [6, 0, 0, 0, 0, 0, 0, 1];
        let frame = concat(&[
            &ethernet(&[], 0x86dd),
            &ipv6(44, 108),
            &fragment_of_tcp,
            &[9; 100],
        ]);
        assert_eq!(verdict_for(&frame), 0);
    }

    #[test]
    fn tcp_icmp_arp_and_short_frames_are_rejected() {
        let tcp = concat(&[&ethernet(&[], 0x0800), &ipv4(6, 0, 20), &[0; 20]]);
        let icmp = concat(&[&ethernet(&[], 0x0800), &ipv4(1, 0, 8), &[0; 8]]);
        let tcp6 = concat(&[&ethernet(&[], 0x86dd), &ipv6(6, 20), &[0; 20]]);
        let icmp6 = concat(&[&ethernet(&[], 0x86dd), &ipv6(58, 8), &[0; 8]]);
        let arp = concat(&[&ethernet(&[], 0x0806), &[0, 1, 8, 0, 6, 4, 0, 1], &[0; 20]]);
        for frame in [tcp, icmp, tcp6, icmp6, arp] {
            assert_eq!(verdict_for(&frame), 0);
        }
        // Ethertype present but the IP header cut before its protocol byte.
        let cut = ethernet(&[], 0x0800);
        assert_eq!(verdict_for(&cut), 0);
        assert_eq!(verdict_for(&[]), 0);
        assert_eq!(verdict_for(&[0x08; 13]), 0);
    }

    #[test]
    fn program_shape() {
        let program = udp_filter(SNAPLEN);
        assert_eq!(program.len(), PROGRAM_LEN);
        assert!(program.len() <= libc::BPF_MAXINSNS as usize);
        // Every jump lands inside the program; the last two instructions are the verdicts.
        for (i, insn) in program.iter().enumerate() {
            if insn.code == JUMP_IF_EQUAL {
                assert!(i + 1 + usize::from(insn.jt.max(insn.jf)) < program.len());
            }
        }
        assert_eq!(
            (program[ACCEPT].code, program[ACCEPT].k),
            (RETURN_K, SNAPLEN)
        );
        assert_eq!((program[REJECT].code, program[REJECT].k), (RETURN_K, 0));
        assert!(program.iter().all(|insn| insn.code != JUMP_ALWAYS));
    }

    #[test]
    fn interpreter_basics() {
        let word = [
            load(LD_WORD, 0),
            jump_if(1, 0x0102_0304, 2, 3),
            verdict(1),
            verdict(2),
        ];
        assert_eq!(run(&word, &[1, 2, 3, 4]), 1);
        assert_eq!(run(&word, &[1, 2, 3, 5]), 2);
        assert_eq!(run(&word, &[1, 2, 3]), 0);
        let skip = [
            sock_filter {
                code: JUMP_ALWAYS,
                jt: 0,
                jf: 0,
                k: 1,
            },
            verdict(1),
            verdict(2),
        ];
        assert_eq!(run(&skip, &[]), 2);
        let unknown = [
            sock_filter {
                code: 0xffff,
                jt: 0,
                jf: 0,
                k: 0,
            },
            verdict(1),
        ];
        assert_eq!(run(&unknown, &[]), 0);
        assert_eq!(run(&[load(LD_BYTE, 0)], &[1]), 0);
        assert_eq!(run(&[], &[1]), 0);
    }

    /// Reference classifier written directly from the rules, to compare the program against.
    fn expected(frame: &[u8]) -> bool {
        let be16 = |at: usize| {
            frame
                .get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        let (ethertype, l3) = match be16(12) {
            Some(0x8100 | 0x88a8) => (be16(16), 18),
            other => (other, 14),
        };
        match ethertype {
            Some(0x0800) => frame.get(l3 + 9) == Some(&17),
            Some(0x86dd) => match frame.get(l3 + 6) {
                Some(17) => true,
                Some(44) => frame.get(l3 + 40) == Some(&17),
                _ => false,
            },
            _ => false,
        }
    }

    fn structured_frame() -> impl Strategy<Value = Vec<u8>> {
        let tags = prop::sample::select(vec![
            vec![],
            vec![0x8100u16],
            vec![0x88a8],
            vec![0x88a8, 0x8100],
        ]);
        let ethertype = prop::sample::select(vec![0x0800u16, 0x86dd, 0x0806, 0x8100, 0x1234]);
        let next = prop::sample::select(vec![17u8, 44, 6, 58, 0]);
        (tags, ethertype, next.clone(), next, 0usize..80, any::<u8>()).prop_map(
            |(tags, ethertype, proto, inner, tail, fill)| {
                let mut frame = ethernet(&tags, ethertype);
                if ethertype == 0x86dd {
                    frame.extend(ipv6(proto, 8));
                    frame.extend([inner, 0, 0, 0, 0, 0, 0, 0]);
                } else {
                    frame.extend(ipv4(proto, 0, 8));
                }
                frame.truncate(frame.len().saturating_sub(tail));
                frame.extend(std::iter::repeat_n(fill, tail % 7));
                frame
            },
        )
    }

    proptest! {
        #[test]
        fn program_matches_the_reference(frame in structured_frame()) {
            let verdict = verdict_for(&frame);
            prop_assert_eq!(verdict == SNAPLEN, expected(&frame));
            prop_assert!(verdict == 0 || verdict == SNAPLEN);
        }

        #[test]
        fn arbitrary_bytes_give_one_of_the_two_verdicts(frame in proptest::collection::vec(any::<u8>(), 0..128)) {
            let verdict = verdict_for(&frame);
            prop_assert_eq!(verdict == SNAPLEN, expected(&frame));
        }

        #[test]
        fn interpreter_never_panics(
            program in proptest::collection::vec((any::<u16>(), any::<u8>(), any::<u8>(), any::<u32>()), 0..32),
            packet in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let program: Vec<sock_filter> = program
                .into_iter()
                .map(|(code, jt, jf, k)| sock_filter { code: code % 0x40, jt, jf, k: k % 128 })
                .collect();
            let _ = run(&program, &packet);
        }
    }
}
