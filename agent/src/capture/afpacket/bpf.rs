//! Classic BPF socket filter that lets only UDP over IPv4/IPv6, and TCP to or from the
//! configured SIP ports, into the capture ring, plus a minimal cBPF interpreter so the program
//! can be checked in unit tests without a kernel.
//!
//! The filter is attached before the socket is bound, so the ring never sees anything else, and
//! its accept verdict is the snapshot length, so the kernel truncates long frames for us. It
//! expects an Ethernet-style link layer (Ethernet, veth, loopback). VLAN tags stripped by the
//! NIC are not in the frame the filter sees; tags still in the frame (one 802.1Q or 802.1ad tag)
//! are skipped. Every IPv4 fragment of a UDP datagram carries protocol 17, and every IPv6
//! fragment names UDP in its fragment header, so fragments pass and can be reassembled later.
//! TCP is matched by port: IPv4 past its options (`ldx 4*([l3]&0xf)`), IPv6 directly after the
//! fixed header; a non-first IPv4 fragment of TCP has no ports and is dropped (SIP over TCP sends
//! segments that fit the path, so TCP is not fragmented in practice).
//!
//! This module has no `unsafe` and does not touch sockets; `socket.rs` attaches the program.

use libc::{
    BPF_ABS, BPF_B, BPF_H, BPF_IND, BPF_JA, BPF_JEQ, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_LDX,
    BPF_MSH, BPF_RET, BPF_W, sock_filter,
};

const LD_WORD: u16 = (BPF_LD | BPF_W | BPF_ABS) as u16;
const LD_HALF: u16 = (BPF_LD | BPF_H | BPF_ABS) as u16;
const LD_BYTE: u16 = (BPF_LD | BPF_B | BPF_ABS) as u16;
/// `A = half at X + k`.
const LD_HALF_INDEXED: u16 = (BPF_LD | BPF_H | BPF_IND) as u16;
/// `X = 4 * (byte at k & 0xf)`: the IPv4 header length.
const LDX_IP_HEADER_LEN: u16 = (BPF_LDX | BPF_B | BPF_MSH) as u16;
const JUMP_IF_EQUAL: u16 = (BPF_JMP | BPF_JEQ | BPF_K) as u16;
const JUMP_IF_ANY_BIT: u16 = (BPF_JMP | BPF_JSET | BPF_K) as u16;
const JUMP_ALWAYS: u16 = (BPF_JMP | BPF_JA) as u16;
const RETURN_K: u16 = (BPF_RET | BPF_K) as u16;

const ETHERTYPE_IPV4: u32 = 0x0800;
const ETHERTYPE_IPV6: u32 = 0x86dd;
const ETHERTYPE_8021Q: u32 = 0x8100;
const ETHERTYPE_8021AD: u32 = 0x88a8;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
const IPV6_FRAGMENT_HEADER: u32 = 44;

const ETHERNET_HEADER_LEN: u32 = 14;
const VLAN_TAG_LEN: u32 = 4;
const IPV4_FRAGMENT_OFFSET: u32 = 6;
const IPV4_FRAGMENT_OFFSET_MASK: u32 = 0x1fff;
const IPV4_PROTOCOL_OFFSET: u32 = 9;
const IPV6_NEXT_HEADER_OFFSET: u32 = 6;
const IPV6_HEADER_LEN: u32 = 40;

/// Most TCP ports the filter matches: each costs two instructions per IP block, and every
/// jump must stay within cBPF's 255-instruction reach.
pub const MAX_TCP_PORTS: usize = 16;

/// A jump target while the program is assembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Next,
    Label(usize),
}

/// A forward-only cBPF assembler with labels, resolved (and range-checked) at the end.
struct Assembler {
    code: Vec<(u16, Target, Target, u32)>,
    labels: Vec<Option<usize>>,
}

impl Assembler {
    fn new() -> Self {
        Assembler {
            code: Vec::new(),
            labels: Vec::new(),
        }
    }

    fn label(&mut self) -> Target {
        self.labels.push(None);
        Target::Label(self.labels.len() - 1)
    }

    fn bind(&mut self, label: Target) {
        if let Target::Label(index) = label
            && let Some(slot) = self.labels.get_mut(index)
        {
            *slot = Some(self.code.len());
        }
    }

    fn load(&mut self, code: u16, k: u32) {
        self.code.push((code, Target::Next, Target::Next, k));
    }

    fn jump(&mut self, code: u16, k: u32, then: Target, otherwise: Target) {
        self.code.push((code, then, otherwise, k));
    }

    /// An unconditional jump, written as a `jeq` whose branches both go to `target` (`ja`
    /// takes its offset in `k`, which label resolution does not fill).
    fn goto(&mut self, target: Target) {
        self.jump(JUMP_IF_EQUAL, 0, target, target);
    }

    fn ret(&mut self, k: u32) {
        self.code.push((RETURN_K, Target::Next, Target::Next, k));
    }

    /// The program, or `None` if a label is unbound or a jump goes backwards or too far.
    fn finish(self) -> Option<Vec<sock_filter>> {
        let resolve = |at: usize, target: Target| -> Option<u8> {
            let to = match target {
                Target::Next => at + 1,
                Target::Label(index) => (*self.labels.get(index)?)?,
            };
            u8::try_from(to.checked_sub(at + 1)?).ok()
        };
        self.code
            .iter()
            .enumerate()
            .map(|(at, &(code, then, otherwise, k))| {
                Some(sock_filter {
                    code,
                    jt: resolve(at, then)?,
                    jf: resolve(at, otherwise)?,
                    k,
                })
            })
            .collect()
    }
}

/// Jumps to `accept` when A is one of `ports`, else falls through.
fn match_ports(asm: &mut Assembler, ports: &[u16], accept: Target) {
    for &port in ports {
        asm.jump(JUMP_IF_EQUAL, u32::from(port), accept, Target::Next);
    }
}

/// The IPv4 block for a header at byte `l3`: UDP (every fragment), TCP on a SIP port.
fn ipv4_block(asm: &mut Assembler, l3: u32, ports: &[u16], accept: Target, reject: Target) {
    asm.load(LD_BYTE, l3 + IPV4_PROTOCOL_OFFSET);
    if ports.is_empty() {
        asm.jump(JUMP_IF_EQUAL, IPPROTO_UDP, accept, reject);
        return;
    }
    asm.jump(JUMP_IF_EQUAL, IPPROTO_UDP, accept, Target::Next);
    asm.jump(JUMP_IF_EQUAL, IPPROTO_TCP, Target::Next, reject);
    asm.load(LD_HALF, l3 + IPV4_FRAGMENT_OFFSET);
    asm.jump(
        JUMP_IF_ANY_BIT,
        IPV4_FRAGMENT_OFFSET_MASK,
        reject,
        Target::Next,
    );
    asm.load(LDX_IP_HEADER_LEN, l3);
    asm.load(LD_HALF_INDEXED, l3);
    match_ports(asm, ports, accept);
    asm.load(LD_HALF_INDEXED, l3 + 2);
    match_ports(asm, ports, accept);
    asm.goto(reject);
}

/// The IPv6 block at `l3`: UDP directly or behind a fragment header, TCP directly on a SIP port.
fn ipv6_block(asm: &mut Assembler, l3: u32, ports: &[u16], accept: Target, reject: Target) {
    let fragment = asm.label();
    asm.load(LD_BYTE, l3 + IPV6_NEXT_HEADER_OFFSET);
    asm.jump(JUMP_IF_EQUAL, IPPROTO_UDP, accept, Target::Next);
    if ports.is_empty() {
        asm.jump(JUMP_IF_EQUAL, IPV6_FRAGMENT_HEADER, Target::Next, reject);
    } else {
        asm.jump(JUMP_IF_EQUAL, IPV6_FRAGMENT_HEADER, fragment, Target::Next);
        asm.jump(JUMP_IF_EQUAL, IPPROTO_TCP, Target::Next, reject);
        asm.load(LD_HALF, l3 + IPV6_HEADER_LEN);
        match_ports(asm, ports, accept);
        asm.load(LD_HALF, l3 + IPV6_HEADER_LEN + 2);
        match_ports(asm, ports, accept);
        asm.goto(reject);
    }
    asm.bind(fragment);
    asm.load(LD_BYTE, l3 + IPV6_HEADER_LEN);
    asm.jump(JUMP_IF_EQUAL, IPPROTO_UDP, accept, reject);
}

fn program(snaplen: u32, ports: &[u16]) -> Option<Vec<sock_filter>> {
    let mut asm = Assembler::new();
    let (tagged, v4, v6, v4_tagged, v6_tagged, accept, reject) = (
        asm.label(),
        asm.label(),
        asm.label(),
        asm.label(),
        asm.label(),
        asm.label(),
        asm.label(),
    );
    asm.load(LD_HALF, 12);
    asm.jump(JUMP_IF_EQUAL, ETHERTYPE_IPV4, v4, Target::Next);
    asm.jump(JUMP_IF_EQUAL, ETHERTYPE_IPV6, v6, Target::Next);
    asm.jump(JUMP_IF_EQUAL, ETHERTYPE_8021Q, tagged, Target::Next);
    asm.jump(JUMP_IF_EQUAL, ETHERTYPE_8021AD, tagged, reject);
    asm.bind(tagged);
    asm.load(LD_HALF, 12 + VLAN_TAG_LEN);
    asm.jump(JUMP_IF_EQUAL, ETHERTYPE_IPV4, v4_tagged, Target::Next);
    asm.jump(JUMP_IF_EQUAL, ETHERTYPE_IPV6, v6_tagged, reject);
    asm.bind(v4);
    ipv4_block(&mut asm, ETHERNET_HEADER_LEN, ports, accept, reject);
    asm.bind(v6);
    ipv6_block(&mut asm, ETHERNET_HEADER_LEN, ports, accept, reject);
    asm.bind(v4_tagged);
    ipv4_block(
        &mut asm,
        ETHERNET_HEADER_LEN + VLAN_TAG_LEN,
        ports,
        accept,
        reject,
    );
    asm.bind(v6_tagged);
    ipv6_block(
        &mut asm,
        ETHERNET_HEADER_LEN + VLAN_TAG_LEN,
        ports,
        accept,
        reject,
    );
    asm.bind(accept);
    asm.ret(snaplen);
    asm.bind(reject);
    asm.ret(0);
    asm.finish()
}

/// The capture filter: UDP over IPv4 or IPv6 (fragments included), and TCP from or to one of
/// `tcp_ports` (SIP over TCP; at most [`MAX_TCP_PORTS`] are used, duplicates ignored), on
/// Ethernet, untagged or with one 802.1Q/802.1ad tag; returns `snaplen` (bytes to keep) for those
/// and 0 for the rest.
pub fn capture_filter(snaplen: u32, tcp_ports: &[u16]) -> Vec<sock_filter> {
    let mut ports: Vec<u16> = Vec::with_capacity(MAX_TCP_PORTS);
    for &port in tcp_ports {
        if !ports.contains(&port) && ports.len() < MAX_TCP_PORTS {
            ports.push(port);
        }
    }
    // With at most MAX_TCP_PORTS every jump fits (checked by the tests); UDP alone always does.
    program(snaplen, &ports)
        .or_else(|| program(snaplen, &[]))
        .unwrap_or_else(|| {
            vec![sock_filter {
                code: RETURN_K,
                jt: 0,
                jf: 0,
                k: 0,
            }]
        })
}

/// The UDP-only filter (no TCP port): [`capture_filter`] with an empty port list.
pub fn udp_filter(snaplen: u32) -> Vec<sock_filter> {
    capture_filter(snaplen, &[])
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
/// Only the instructions [`capture_filter`] emits are implemented: absolute word/half/byte
/// loads, `ldh [x + k]`, `ldxb 4*([k]&0xf)`, `jeq #k`, `jset #k`, `ja` and `ret #k`. Like the kernel, a load past the end of the packet drops it; so
/// do unknown instructions and running off the end of the program.
pub fn run(program: &[sock_filter], packet: &[u8]) -> u32 {
    let mut accumulator = 0u32;
    let mut index = 0u32;
    let mut pc = 0usize;
    while let Some(insn) = program.get(pc) {
        pc = pc.saturating_add(1);
        let loaded = match insn.code {
            LD_WORD => load_be::<4>(packet, insn.k),
            LD_HALF => load_be::<2>(packet, insn.k),
            LD_BYTE => load_be::<1>(packet, insn.k),
            LD_HALF_INDEXED => match index.checked_add(insn.k) {
                Some(at) => load_be::<2>(packet, at),
                None => None,
            },
            LDX_IP_HEADER_LEN => {
                match load_be::<1>(packet, insn.k) {
                    Some(byte) => index = 4 * (byte & 0x0f),
                    None => return 0,
                }
                continue;
            }
            JUMP_IF_EQUAL | JUMP_IF_ANY_BIT => {
                let taken = if insn.code == JUMP_IF_EQUAL {
                    accumulator == insn.k
                } else {
                    accumulator & insn.k != 0
                };
                let skip = if taken { insn.jt } else { insn.jf };
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
    const SIP_PORTS: [u16; 2] = [5060, 5080];

    fn load(code: u16, k: u32) -> sock_filter {
        sock_filter {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    /// At instruction `at`: `if A == value goto then else goto otherwise`.
    fn jump_if(at: usize, value: u32, then: usize, otherwise: usize) -> sock_filter {
        sock_filter {
            code: JUMP_IF_EQUAL,
            jt: (then - at - 1) as u8,
            jf: (otherwise - at - 1) as u8,
            k: value,
        }
    }

    fn verdict(k: u32) -> sock_filter {
        sock_filter {
            code: RETURN_K,
            jt: 0,
            jf: 0,
            k,
        }
    }

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
        run(&capture_filter(SNAPLEN, &SIP_PORTS), packet)
    }

    /// A TCP header (no options unless `options` words) from `src` to `dst` port.
    fn tcp(src: u16, dst: u16, options: usize) -> Vec<u8> {
        let mut header = src.to_be_bytes().to_vec();
        header.extend_from_slice(&dst.to_be_bytes());
        header.extend_from_slice(&[
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            ((5 + options) as u8) << 4,
            0x18,
            1,
            0,
        ]);
        header.extend_from_slice(&[0, 0, 0, 0]);
        header.extend(std::iter::repeat_n(1, options * 4));
        header
    }

    /// IPv4 header with IHL `words` (options filled with NOPs).
    fn ipv4_with_options(protocol: u8, words: usize, payload_len: usize) -> Vec<u8> {
        let mut header = ipv4(protocol, 0, payload_len + (words - 5) * 4);
        header[0] = 0x40 | words as u8;
        header.extend(std::iter::repeat_n(1, (words - 5) * 4));
        header
    }

    #[test]
    fn tcp_on_the_sip_ports_passes_in_both_directions() {
        for (src, dst, pass) in [
            (40000, 5060, true),
            (5060, 40000, true),
            (5080, 5080, true),
            (33093, 5080, true),
            (40000, 5061, false), // SIP over TLS stays out
            (443, 40000, false),
            (80, 8080, false),
        ] {
            let segment = tcp(src, dst, 0);
            for tags in [&[][..], &[0x8100], &[0x88a8]] {
                let v4 = concat(&[&ethernet(tags, 0x0800), &ipv4(6, 0x4000, 20), &segment]);
                let v6 = concat(&[&ethernet(tags, 0x86dd), &ipv6(6, 20), &segment]);
                let want = if pass { SNAPLEN } else { 0 };
                assert_eq!(verdict_for(&v4), want, "v4 {src}->{dst} {tags:?}");
                assert_eq!(verdict_for(&v6), want, "v6 {src}->{dst} {tags:?}");
            }
        }
        // IPv4 options move the TCP header: the ports are found behind them.
        let segment = tcp(40000, 5060, 2);
        let v4 = concat(&[
            &ethernet(&[], 0x0800),
            &ipv4_with_options(6, 8, 28),
            &segment,
        ]);
        assert_eq!(verdict_for(&v4), SNAPLEN);
        // The port bytes where they would be without the options do not count.
        let mut shifted = concat(&[
            &ethernet(&[], 0x0800),
            &ipv4_with_options(6, 8, 28),
            &tcp(1, 2, 0),
        ]);
        shifted[14 + 20..14 + 22].copy_from_slice(&5060u16.to_be_bytes());
        assert_eq!(verdict_for(&shifted), 0);
        // Cut before the ports: dropped, like any load past the end.
        let cut = concat(&[&ethernet(&[], 0x0800), &ipv4(6, 0, 20), &[0x13]]);
        assert_eq!(verdict_for(&cut), 0);
    }

    #[test]
    fn configured_ports_replace_the_defaults_and_are_bounded() {
        let on = |ports: &[u16], dst: u16| {
            let frame = concat(&[&ethernet(&[], 0x0800), &ipv4(6, 0, 20), &tcp(50000, dst, 0)]);
            run(&capture_filter(SNAPLEN, ports), &frame) == SNAPLEN
        };
        assert!(on(&[5090], 5090));
        assert!(!on(&[5090], 5060));
        assert!(!on(&[], 5060));
        let many: Vec<u16> = (6000..6000 + MAX_TCP_PORTS as u16).collect();
        assert!(on(&many, 6000) && on(&many, 6000 + MAX_TCP_PORTS as u16 - 1));
        // Ports past the bound are ignored rather than making the program invalid.
        let too_many: Vec<u16> = (6000..6100).collect();
        assert!(on(&too_many, 6000));
        assert!(!on(&too_many, 6000 + MAX_TCP_PORTS as u16));
        let program = capture_filter(SNAPLEN, &too_many);
        assert!(program.len() <= libc::BPF_MAXINSNS as usize);
        // UDP is unaffected by the port list.
        let udp_frame = concat(&[&ethernet(&[], 0x0800), &ipv4(17, 0, 11), &udp(b"abc")]);
        assert_eq!(
            run(&capture_filter(SNAPLEN, &too_many), &udp_frame),
            SNAPLEN
        );
        assert_eq!(run(&udp_filter(SNAPLEN), &udp_frame), SNAPLEN);
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
        for ports in [&[][..], &SIP_PORTS, &[1; 40]] {
            let program = capture_filter(SNAPLEN, ports);
            assert!(program.len() <= libc::BPF_MAXINSNS as usize);
            // Every jump lands inside the program; the last two instructions are the verdicts.
            for (i, insn) in program.iter().enumerate() {
                if insn.code == JUMP_IF_EQUAL || insn.code == JUMP_IF_ANY_BIT {
                    assert!(i + 1 + usize::from(insn.jt.max(insn.jf)) < program.len());
                }
            }
            let [.., accept, reject] = program.as_slice() else {
                panic!("too short");
            };
            assert_eq!((accept.code, accept.k), (RETURN_K, SNAPLEN));
            assert_eq!((reject.code, reject.k), (RETURN_K, 0));
            assert!(program.iter().all(|insn| insn.code != JUMP_ALWAYS));
        }
        // The UDP-only program is the original 24 instructions.
        assert_eq!(udp_filter(SNAPLEN).len(), 24);
        // The largest port list still assembles (no jump beyond 255 instructions).
        let most: Vec<u16> = (1..=MAX_TCP_PORTS as u16).collect();
        assert!(program(SNAPLEN, &most).is_some());
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
        let sip_port = |at: usize| {
            let ports = [be16(at), be16(at + 2)];
            ports.contains(&Some(5060)) || ports.contains(&Some(5080))
        };
        match ethertype {
            Some(0x0800) => match frame.get(l3 + 9) {
                Some(17) => true,
                Some(6) => {
                    let first = be16(l3 + 6).is_some_and(|f| f & 0x1fff == 0);
                    let ihl = usize::from(frame.get(l3).map_or(0, |b| b & 0x0f)) * 4;
                    // The filter drops the frame when either port load runs past the end.
                    first && be16(l3 + ihl + 2).is_some() && sip_port(l3 + ihl)
                }
                _ => false,
            },
            Some(0x86dd) => match frame.get(l3 + 6) {
                Some(17) => true,
                Some(44) => frame.get(l3 + 40) == Some(&17),
                Some(6) => be16(l3 + 42).is_some() && sip_port(l3 + 40),
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
        let port = prop::sample::select(vec![5060u16, 5080, 5061, 40000]);
        let fragment = prop::sample::select(vec![0u16, 0x4000, 0x2000, 0x2001, 185]);
        (
            tags,
            ethertype,
            next.clone(),
            next,
            0usize..80,
            any::<u8>(),
            (port.clone(), port, fragment, 5usize..8),
        )
            .prop_map(
                |(tags, ethertype, proto, inner, tail, fill, (sport, dport, fragment, ihl))| {
                    let mut frame = ethernet(&tags, ethertype);
                    if ethertype == 0x86dd {
                        frame.extend(ipv6(proto, 20));
                        if proto == 6 {
                            frame.extend(tcp(sport, dport, 0));
                        } else {
                            frame.extend([inner, 0, 0, 0, 0, 0, 0, 0]);
                        }
                    } else if proto == 6 {
                        let mut header = ipv4_with_options(6, ihl, 20);
                        header[6..8].copy_from_slice(&fragment.to_be_bytes());
                        frame.extend(header);
                        frame.extend(tcp(sport, dport, 0));
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
