//! Emitters that synthesise frames, RTP and RTCP packets for tests and benchmarks.
//!
//! Allocation is fine here; this module is never on the per-packet path. It must stay simple and
//! independent of the parsers (no parser is used to build anything), so that round trips test
//! something. Inputs too large for a length field (e.g. a UDP payload above 65 507 octets)
//! produce saturated, inconsistent lengths rather than a panic.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::link::{ethertype, linktype};

const ETHERNET_MIN_FRAME: usize = 60;
const SOURCE_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const DESTINATION_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
const UDP_PROTOCOL: u8 = 17;
const TCP_PROTOCOL: u8 = 6;
const IPV6_FRAGMENT_PROTOCOL: u8 = 44;
const IPV4_FRAGMENT_ID: u16 = 0x1234;
const IPV6_FRAGMENT_ID: u32 = 0x0012_3456;
const IPV4_TTL: u8 = 64;
const IPV6_HOP_LIMIT: u8 = 64;

/// The link layer to wrap an IP packet in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkSpec {
    Ethernet,
    /// Ethernet with these VLAN ids, outermost first: one tag is 802.1Q, more are QinQ with an
    /// outer 0x88a8 tag and 0x8100 inner tags. An empty list is plain Ethernet.
    Vlan(Vec<u16>),
    LinuxSll,
    LinuxSll2,
    RawIp,
}

impl LinkSpec {
    pub fn linktype(&self) -> u32 {
        match self {
            Self::Ethernet | Self::Vlan(_) => linktype::ETHERNET,
            Self::LinuxSll => linktype::LINUX_SLL,
            Self::LinuxSll2 => linktype::LINUX_SLL2,
            Self::RawIp => linktype::RAW,
        }
    }

    fn wrap(&self, ethertype: u16, ip_packet: &[u8]) -> Vec<u8> {
        let mut frame = Vec::with_capacity(ip_packet.len() + 64);
        match self {
            Self::Ethernet | Self::Vlan(_) => {
                frame.extend_from_slice(&DESTINATION_MAC);
                frame.extend_from_slice(&SOURCE_MAC);
                let tags: &[u16] = match self {
                    Self::Vlan(tags) => tags,
                    _ => &[],
                };
                for (index, id) in tags.iter().enumerate() {
                    let tpid = if index == 0 && tags.len() > 1 {
                        ethertype::QINQ
                    } else {
                        ethertype::VLAN
                    };
                    frame.extend_from_slice(&tpid.to_be_bytes());
                    frame.extend_from_slice(&(id & 0x0fff).to_be_bytes());
                }
                frame.extend_from_slice(&ethertype.to_be_bytes());
                frame.extend_from_slice(ip_packet);
                // What a capture of a short received frame looks like: zero padding, no FCS.
                if frame.len() < ETHERNET_MIN_FRAME {
                    frame.resize(ETHERNET_MIN_FRAME, 0);
                }
            }
            Self::LinuxSll => {
                frame.extend_from_slice(&[0x00, 0x00, 0x00, 0x01, 0x00, 0x06]);
                frame.extend_from_slice(&SOURCE_MAC);
                frame.extend_from_slice(&[0x00, 0x00]);
                frame.extend_from_slice(&ethertype.to_be_bytes());
                frame.extend_from_slice(ip_packet);
            }
            Self::LinuxSll2 => {
                frame.extend_from_slice(&ethertype.to_be_bytes());
                frame.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01]);
                frame.extend_from_slice(&[0x00, 0x06]);
                frame.extend_from_slice(&SOURCE_MAC);
                frame.extend_from_slice(&[0x00, 0x00]);
                frame.extend_from_slice(ip_packet);
            }
            Self::RawIp => frame.extend_from_slice(ip_packet),
        }
        frame
    }
}

/// A UDP datagram from `src` to `dst` in IPv4 (both addresses v4) or IPv6 (otherwise; a v4
/// address is then written v4-mapped). IPv4: header checksum filled, UDP checksum 0.
/// IPv6: UDP checksum computed.
pub fn udp_frame(link: &LinkSpec, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut datagram = udp_datagram(src.port(), dst.port(), payload);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(source), IpAddr::V4(destination)) => {
            let packet = ipv4_packet(source.octets(), destination.octets(), 0, 0, &datagram);
            link.wrap(ethertype::IPV4, &packet)
        }
        (source, destination) => {
            let source = to_ipv6(source);
            let destination = to_ipv6(destination);
            let checksum = udp_ipv6_checksum(&source, &destination, &datagram);
            datagram[6..8].copy_from_slice(&checksum.to_be_bytes());
            let packet = ipv6_packet(&source, &destination, UDP_PROTOCOL, &datagram);
            link.wrap(ethertype::IPV6, &packet)
        }
    }
}

/// The UDP datagram for `payload`, fragmented into pieces of at most `fragment_payload_size`
/// octets (rounded down to a multiple of 8, at least 8). Despite the name, IPv6 addresses give
/// IPv6 fragments (fragment extension header). UDP checksum is 0 for IPv4 and computed for IPv6.
/// A datagram that fits in one piece comes back as one unfragmented packet.
pub fn ipv4_fragments(
    link: &LinkSpec,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
    fragment_payload_size: usize,
) -> Vec<Vec<u8>> {
    let chunk_size = (fragment_payload_size / 8 * 8).max(8);
    let mut datagram = udp_datagram(src.port(), dst.port(), payload);
    let chunk_count = datagram.len().div_ceil(chunk_size);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(source), IpAddr::V4(destination)) => datagram
            .chunks(chunk_size)
            .enumerate()
            .map(|(index, chunk)| {
                let more = index + 1 < chunk_count;
                let offset_units = saturating_u16(index * chunk_size / 8) & 0x1fff;
                let flags_offset = if more { 0x2000 } else { 0 } | offset_units;
                let packet = ipv4_packet(
                    source.octets(),
                    destination.octets(),
                    IPV4_FRAGMENT_ID,
                    flags_offset,
                    chunk,
                );
                link.wrap(ethertype::IPV4, &packet)
            })
            .collect(),
        (source, destination) => {
            let source = to_ipv6(source);
            let destination = to_ipv6(destination);
            let checksum = udp_ipv6_checksum(&source, &destination, &datagram);
            datagram[6..8].copy_from_slice(&checksum.to_be_bytes());
            datagram
                .chunks(chunk_size)
                .enumerate()
                .map(|(index, chunk)| {
                    let more = index + 1 < chunk_count;
                    let offset_units = saturating_u16(index * chunk_size / 8) & 0x1fff;
                    let offset_and_flags = (offset_units << 3) | u16::from(more);
                    let mut body = vec![UDP_PROTOCOL, 0];
                    body.extend_from_slice(&offset_and_flags.to_be_bytes());
                    body.extend_from_slice(&IPV6_FRAGMENT_ID.to_be_bytes());
                    body.extend_from_slice(chunk);
                    let packet = ipv6_packet(&source, &destination, IPV6_FRAGMENT_PROTOCOL, &body);
                    link.wrap(ethertype::IPV6, &packet)
                })
                .collect()
        }
    }
}

fn saturating_u16(value: usize) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}

fn to_ipv6(address: IpAddr) -> Ipv6Addr {
    match address {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn udp_datagram(source_port: u16, destination_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut datagram = Vec::with_capacity(8 + payload.len());
    datagram.extend_from_slice(&source_port.to_be_bytes());
    datagram.extend_from_slice(&destination_port.to_be_bytes());
    datagram.extend_from_slice(&saturating_u16(8 + payload.len()).to_be_bytes());
    datagram.extend_from_slice(&[0, 0]);
    datagram.extend_from_slice(payload);
    datagram
}

fn ipv4_packet(
    source: [u8; 4],
    destination: [u8; 4],
    identification: u16,
    flags_and_offset: u16,
    body: &[u8],
) -> Vec<u8> {
    let mut packet = Vec::with_capacity(20 + body.len());
    packet.extend_from_slice(&[0x45, 0x00]);
    packet.extend_from_slice(&saturating_u16(20 + body.len()).to_be_bytes());
    packet.extend_from_slice(&identification.to_be_bytes());
    packet.extend_from_slice(&flags_and_offset.to_be_bytes());
    packet.extend_from_slice(&[IPV4_TTL, UDP_PROTOCOL, 0, 0]);
    packet.extend_from_slice(&source);
    packet.extend_from_slice(&destination);
    let checksum = internet_checksum(0, &packet);
    packet[10..12].copy_from_slice(&checksum.to_be_bytes());
    packet.extend_from_slice(body);
    packet
}

fn ipv6_packet(source: &Ipv6Addr, destination: &Ipv6Addr, next_header: u8, body: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(40 + body.len());
    packet.extend_from_slice(&[0x60, 0x00, 0x00, 0x00]);
    packet.extend_from_slice(&saturating_u16(body.len()).to_be_bytes());
    packet.extend_from_slice(&[next_header, IPV6_HOP_LIMIT]);
    packet.extend_from_slice(&source.octets());
    packet.extend_from_slice(&destination.octets());
    packet.extend_from_slice(body);
    packet
}

/// RFC 768 / RFC 8200 §8.1 checksum over the IPv6 pseudo-header and the datagram (whose
/// checksum field is zero). A computed 0 is sent as 0xffff.
fn udp_ipv6_checksum(source: &Ipv6Addr, destination: &Ipv6Addr, datagram: &[u8]) -> u16 {
    let mut pseudo_header = Vec::with_capacity(40);
    pseudo_header.extend_from_slice(&source.octets());
    pseudo_header.extend_from_slice(&destination.octets());
    pseudo_header.extend_from_slice(
        &u32::try_from(datagram.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    pseudo_header.extend_from_slice(&[0, 0, 0, UDP_PROTOCOL]);
    let partial = ones_complement_sum(0, &pseudo_header);
    match internet_checksum(partial, datagram) {
        0 => 0xffff,
        checksum => checksum,
    }
}

fn ones_complement_sum(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for pair in &mut chunks {
        if let [high, low] = pair {
            sum += u32::from(u16::from_be_bytes([*high, *low]));
        }
        sum = (sum & 0xffff) + (sum >> 16);
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    (sum & 0xffff) + (sum >> 16)
}

fn internet_checksum(initial: u32, bytes: &[u8]) -> u16 {
    let mut sum = ones_complement_sum(initial, bytes);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

/// A TCP segment from `src` to `dst` with sequence number `seq`, flag byte `flags` (e.g. 0x18
/// PSH|ACK) and no options, in IPv4 (both addresses v4) or IPv6; TCP checksum 0.
pub fn tcp_frame(
    link: &LinkSpec,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut segment = Vec::with_capacity(20 + payload.len());
    segment.extend_from_slice(&src.port().to_be_bytes());
    segment.extend_from_slice(&dst.port().to_be_bytes());
    segment.extend_from_slice(&seq.to_be_bytes());
    segment.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    segment.extend_from_slice(payload);
    let (ethertype, packet) = ip_packet(src.ip(), dst.ip(), TCP_PROTOCOL, &segment);
    link.wrap(ethertype, &packet)
}

/// `inner` (an IP packet, e.g. a frame built with [`LinkSpec::RawIp`]) inside an outer IP
/// header from `outer_src` to `outer_dst` with protocol 4 or 41 (IP-in-IP) as its version says.
pub fn ip_in_ip(link: &LinkSpec, outer_src: IpAddr, outer_dst: IpAddr, inner: &[u8]) -> Vec<u8> {
    let protocol = if inner.first().is_some_and(|b| b >> 4 == 6) {
        41
    } else {
        4
    };
    let (ethertype, packet) = ip_packet(outer_src, outer_dst, protocol, inner);
    link.wrap(ethertype, &packet)
}

/// A GRE header to emit: protocol type (0x0800 IPv4, 0x86dd IPv6, 0x6558 Ethernet, 0x88be or
/// 0x22eb ERSPAN, ...), optional key and sequence number (K and S bits), and `extra` bytes (e.g.
/// an ERSPAN header) written between the GRE header and the packet it carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GreSpec {
    pub protocol: u16,
    pub key: Option<u32>,
    pub sequence: Option<u32>,
    pub extra: Vec<u8>,
}

/// `inner` inside GRE (IP protocol 47) as `gre` describes, from `outer_src` to `outer_dst`.
pub fn gre(
    link: &LinkSpec,
    outer_src: IpAddr,
    outer_dst: IpAddr,
    gre: &GreSpec,
    inner: &[u8],
) -> Vec<u8> {
    let mut body = vec![
        if gre.key.is_some() { 0x20 } else { 0 } | if gre.sequence.is_some() { 0x10 } else { 0 },
        0,
    ];
    body.extend_from_slice(&gre.protocol.to_be_bytes());
    if let Some(key) = gre.key {
        body.extend_from_slice(&key.to_be_bytes());
    }
    if let Some(sequence) = gre.sequence {
        body.extend_from_slice(&sequence.to_be_bytes());
    }
    body.extend_from_slice(&gre.extra);
    body.extend_from_slice(inner);
    let (ethertype, packet) = ip_packet(outer_src, outer_dst, 47, &body);
    link.wrap(ethertype, &packet)
}

/// An IPv4 (both addresses v4) or IPv6 packet with `protocol` around `body`, and its ethertype.
fn ip_packet(src: IpAddr, dst: IpAddr, protocol: u8, body: &[u8]) -> (u16, Vec<u8>) {
    match (src, dst) {
        (IpAddr::V4(source), IpAddr::V4(destination)) => {
            let mut packet = ipv4_packet(source.octets(), destination.octets(), 0, 0, body);
            packet[9] = protocol;
            packet[10..12].copy_from_slice(&[0, 0]);
            let checksum = internet_checksum(0, &packet[..20]);
            packet[10..12].copy_from_slice(&checksum.to_be_bytes());
            (ethertype::IPV4, packet)
        }
        (source, destination) => (
            ethertype::IPV6,
            ipv6_packet(&to_ipv6(source), &to_ipv6(destination), protocol, body),
        ),
    }
}

/// Fields of an RTP header to emit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpHeader {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// At most 15 are written.
    pub csrcs: Vec<u32>,
    /// `(profile, data)`; data is zero-padded to a multiple of 4 octets.
    pub extension: Option<(u16, Vec<u8>)>,
    /// Number of padding octets including the count octet; 0 = no padding (P = 0).
    pub padding: u8,
}

pub fn rtp_packet(header: &RtpHeader, payload: &[u8]) -> Vec<u8> {
    let csrcs = &header.csrcs[..header.csrcs.len().min(15)];
    let mut first = 0x80 | u8::try_from(csrcs.len()).unwrap_or(15);
    if header.padding > 0 {
        first |= 0x20;
    }
    if header.extension.is_some() {
        first |= 0x10;
    }
    let mut packet = vec![
        first,
        (u8::from(header.marker) << 7) | (header.payload_type & 0x7f),
    ];
    packet.extend_from_slice(&header.sequence.to_be_bytes());
    packet.extend_from_slice(&header.timestamp.to_be_bytes());
    packet.extend_from_slice(&header.ssrc.to_be_bytes());
    for csrc in csrcs {
        packet.extend_from_slice(&csrc.to_be_bytes());
    }
    if let Some((profile, data)) = &header.extension {
        let words = data.len().div_ceil(4);
        packet.extend_from_slice(&profile.to_be_bytes());
        packet.extend_from_slice(&saturating_u16(words).to_be_bytes());
        packet.extend_from_slice(data);
        packet.resize(packet.len() + (words * 4 - data.len()), 0);
    }
    packet.extend_from_slice(payload);
    if header.padding > 0 {
        packet.resize(packet.len() + usize::from(header.padding) - 1, 0);
        packet.push(header.padding);
    }
    packet
}

/// One reception report block to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportBlockSpec {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// Written as 24-bit two's complement (values outside ±2^23 wrap).
    pub cumulative_lost: i32,
    pub ext_highest_seq: u32,
    pub jitter: u32,
    pub lsr: u32,
    pub dlsr: u32,
}

fn rtcp_header(count: usize, packet_type: u8, total_len: usize) -> [u8; 4] {
    let count_bits = u8::try_from(count).unwrap_or(31) & 0x1f;
    let [high, low] = saturating_u16(total_len / 4 - 1).to_be_bytes();
    [0x80 | count_bits, packet_type, high, low]
}

fn push_report_blocks(packet: &mut Vec<u8>, blocks: &[ReportBlockSpec]) {
    for block in blocks {
        packet.extend_from_slice(&block.ssrc.to_be_bytes());
        packet.push(block.fraction_lost);
        let [_, lost_high, lost_mid, lost_low] = block.cumulative_lost.to_be_bytes();
        packet.extend_from_slice(&[lost_high, lost_mid, lost_low]);
        packet.extend_from_slice(&block.ext_highest_seq.to_be_bytes());
        packet.extend_from_slice(&block.jitter.to_be_bytes());
        packet.extend_from_slice(&block.lsr.to_be_bytes());
        packet.extend_from_slice(&block.dlsr.to_be_bytes());
    }
}

/// A sender report with at most 31 report blocks.
pub fn rtcp_sr(
    ssrc: u32,
    ntp: u64,
    rtp_ts: u32,
    packets: u32,
    octets: u32,
    blocks: &[ReportBlockSpec],
) -> Vec<u8> {
    let blocks = &blocks[..blocks.len().min(31)];
    let total_len = 28 + 24 * blocks.len();
    let mut packet = Vec::with_capacity(total_len);
    packet.extend_from_slice(&rtcp_header(blocks.len(), 200, total_len));
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(&ntp.to_be_bytes());
    packet.extend_from_slice(&rtp_ts.to_be_bytes());
    packet.extend_from_slice(&packets.to_be_bytes());
    packet.extend_from_slice(&octets.to_be_bytes());
    push_report_blocks(&mut packet, blocks);
    packet
}

/// A receiver report with at most 31 report blocks.
pub fn rtcp_rr(ssrc: u32, blocks: &[ReportBlockSpec]) -> Vec<u8> {
    let blocks = &blocks[..blocks.len().min(31)];
    let total_len = 8 + 24 * blocks.len();
    let mut packet = Vec::with_capacity(total_len);
    packet.extend_from_slice(&rtcp_header(blocks.len(), 201, total_len));
    packet.extend_from_slice(&ssrc.to_be_bytes());
    push_report_blocks(&mut packet, blocks);
    packet
}

/// An SDES packet with one chunk holding one CNAME item (truncated to 255 octets).
pub fn rtcp_sdes_cname(ssrc: u32, cname: &str) -> Vec<u8> {
    let text = &cname.as_bytes()[..cname.len().min(255)];
    let mut chunk = ssrc.to_be_bytes().to_vec();
    chunk.push(1);
    chunk.push(u8::try_from(text.len()).unwrap_or(u8::MAX));
    chunk.extend_from_slice(text);
    // The item list ends with at least one null octet, then pads to a 32-bit boundary.
    chunk.push(0);
    chunk.resize(chunk.len().next_multiple_of(4), 0);
    let mut packet = rtcp_header(1, 202, 4 + chunk.len()).to_vec();
    packet.extend_from_slice(&chunk);
    packet
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies() {
        let frame = udp_frame(
            &LinkSpec::RawIp,
            "192.168.0.1:1000".parse().unwrap(),
            "192.168.0.199:2000".parse().unwrap(),
            b"hello",
        );
        assert_eq!(internet_checksum(0, &frame[..20]), 0);
        assert_eq!(&frame[26..28], &[0, 0]);
        assert_eq!(frame.len(), 33);
    }

    #[test]
    fn ipv6_udp_checksum_verifies() {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let frame = udp_frame(
            &LinkSpec::RawIp,
            SocketAddr::new(src.into(), 5060),
            SocketAddr::new(dst.into(), 5062),
            b"odd",
        );
        let datagram = &frame[40..];
        assert_ne!(&datagram[6..8], &[0, 0]);
        // Summing the pseudo-header and the datagram with its checksum gives all ones.
        let mut pseudo = src.octets().to_vec();
        pseudo.extend_from_slice(&dst.octets());
        pseudo.extend_from_slice(&(datagram.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 17]);
        assert_eq!(
            internet_checksum(ones_complement_sum(0, &pseudo), datagram),
            0
        );
    }

    #[test]
    fn known_checksum_vector() {
        // RFC 1071 §3 example words sum to 0xddf2, so the checksum is 0x220d.
        assert_eq!(
            internet_checksum(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn link_headers_and_padding() {
        let src: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let dst: SocketAddr = "10.0.0.2:2".parse().unwrap();
        assert_eq!(udp_frame(&LinkSpec::Ethernet, src, dst, b"").len(), 60);
        let qinq = udp_frame(&LinkSpec::Vlan(vec![5, 6]), src, dst, &[0; 100]);
        assert_eq!(
            &qinq[12..22],
            &[0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 6, 0x08, 0x00]
        );
        assert_eq!(qinq.len(), 14 + 8 + 28 + 100);
        let sll = udp_frame(&LinkSpec::LinuxSll, src, dst, b"");
        assert_eq!(&sll[14..16], &[0x08, 0x00]);
        assert_eq!(sll.len(), 16 + 28);
        let sll2 = udp_frame(&LinkSpec::LinuxSll2, src, dst, b"");
        assert_eq!(&sll2[0..2], &[0x08, 0x00]);
        assert_eq!(sll2.len(), 20 + 28);
    }

    #[test]
    fn fragments_cover_the_datagram() {
        let src: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let dst: SocketAddr = "10.0.0.2:2".parse().unwrap();
        let fragments = ipv4_fragments(&LinkSpec::RawIp, src, dst, &[9; 100], 50);
        // 108 octets in 48-octet pieces.
        assert_eq!(fragments.len(), 3);
        assert_eq!(&fragments[0][6..8], &[0x20, 0]);
        assert_eq!(&fragments[1][6..8], &[0x20, 6]);
        assert_eq!(&fragments[2][6..8], &[0x00, 12]);
        assert_eq!(fragments[2].len(), 20 + 12);
    }

    #[test]
    fn rtp_and_sdes_layout() {
        let header = RtpHeader {
            payload_type: 8,
            marker: false,
            sequence: 1,
            timestamp: 2,
            ssrc: 3,
            csrcs: vec![],
            extension: Some((0xbede, vec![1, 2, 3, 4, 5])),
            padding: 2,
        };
        let packet = rtp_packet(&header, b"x");
        assert_eq!(
            packet,
            vec![
                0xb0, 8, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0, 2, 1, 2, 3, 4, 5, 0, 0, 0,
                b'x', 0, 2
            ]
        );
        let sdes = rtcp_sdes_cname(0x01020304, "ab");
        assert_eq!(
            sdes,
            vec![0x81, 202, 0, 3, 1, 2, 3, 4, 1, 2, b'a', b'b', 0, 0, 0, 0]
        );
        // A CNAME filling the word exactly still gets a full word of nulls.
        assert_eq!(rtcp_sdes_cname(1, "abcdef").len(), 20);
    }
}
