//! The per-packet decode chain: link layer → IPv4/IPv6 (through IP-in-IP and GRE/ERSPAN
//! tunnels, at most [`MAX_TUNNELS`] deep) → UDP or TCP, yielding the datagram or segment with
//! its socket addresses, a typed view of an IP fragment, or the reason the frame was skipped.
//!
//! Runs for every captured packet, so it must not allocate, copy packet bytes or do work that
//! the result does not need. It does not verify checksums or look at the UDP or TCP payload,
//! and it keeps no state: fragments are handed over as [`Fragment`] views and TCP as
//! [`Segment`]s to the stateful `reassembly` stage, which gives a whole datagram back to
//! [`reassembled_datagram`].

use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

use super::ip::{self, IpError, Ipv4, Ipv6, Ipv6FragmentHeader};
use super::link::{self, LinkError, Network};
use super::tcp::Tcp;
use super::udp::Udp;

/// Most tunnel headers (IP-in-IP, GRE, ERSPAN) unwrapped before a frame is given up as not
/// UDP: bounds the work on hostile nesting; real captures nest one or two.
pub const MAX_TUNNELS: usize = 4;

/// IP protocol numbers of the tunnels unwrapped here (kept local: `ip::protocol` lists what the
/// IP views themselves act on).
mod tunnel {
    pub const IPV4_IN_IP: u8 = 4;
    pub const IPV6_IN_IP: u8 = 41;
    pub const GRE: u8 = 47;
    /// GRE protocol types.
    pub const GRE_IPV4: u16 = 0x0800;
    pub const GRE_IPV6: u16 = 0x86dd;
    pub const GRE_ETHERNET: u16 = 0x6558;
    /// ERSPAN type I (no sequence number in GRE) and II (8-octet ERSPAN header).
    pub const GRE_ERSPAN_2: u16 = 0x88be;
    /// ERSPAN type III (12-octet header, 8 more with the platform sub-header).
    pub const GRE_ERSPAN_3: u16 = 0x22eb;
}

/// Why a frame yielded no UDP datagram or TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum Skip {
    /// Not UDP or TCP over IP: another ethertype or protocol, or an unknown link type. (TCP the
    /// analyzer does not reassemble is counted here too.)
    #[error("not udp")]
    NonUdp,
    /// The snap length cut the frame before the end of a header or the UDP payload.
    #[error("truncated by snap length")]
    Truncated,
    /// An IP fragment: from [`decode_udp`] every fragment; from [`decode_frame`] only one cut by
    /// the snap length (its bytes are missing, so it cannot be reassembled).
    #[error("ip fragment")]
    Fragment,
    /// Length or version fields that contradict each other or the frame.
    #[error("malformed")]
    Malformed,
}

/// A decoded UDP datagram borrowing its payload from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// UDP payload: UDP length honoured, link trailers and IP padding removed.
    pub payload: &'a [u8],
    /// Outermost 802.1Q VLAN id, if any.
    pub vlan: Option<u16>,
}

/// One IP fragment (IPv4, or IPv6 with a non-atomic Fragment header) of any upper-layer
/// protocol, borrowing its data from the frame. Complete as captured: a fragment cut by the
/// snap length is not a `Fragment` but [`Skip::Fragment`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The datagram's identification: IPv4's 16 bits, or IPv6's 32 bits.
    pub id: u32,
    /// Where `payload` starts in the reassembled IP payload, in octets (a multiple of 8).
    pub offset: u32,
    /// More fragments follow (IPv4 MF, IPv6 M).
    pub more: bool,
    /// IPv4: the protocol field. IPv6: the fragment header's next header (RFC 8200: the
    /// first fragment's is the one that counts; routing or destination-options headers may
    /// still precede the upper layer in the reassembled part).
    pub protocol: u8,
    /// The fragment's data: IPv4 total length honoured, IPv6 payload length honoured.
    pub payload: &'a [u8],
    /// Outermost 802.1Q VLAN id, if any.
    pub vlan: Option<u16>,
    /// IPv6 only: the Fragment extension header as captured.
    pub ipv6_header: Option<Ipv6FragmentHeader>,
}

/// A decoded TCP segment borrowing its payload from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// Sequence number of the first payload byte (of the SYN when `flags` has SYN).
    pub seq: u32,
    /// TCP flag byte (`super::tcp::flags`).
    pub flags: u8,
    /// Segment data: IP padding and link trailers removed.
    pub payload: &'a [u8],
    /// The snap length cut the segment: `payload` is only its captured beginning.
    pub truncated: bool,
    /// Outermost 802.1Q VLAN id, if any.
    pub vlan: Option<u16>,
}

/// What one frame decodes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole UDP datagram.
    Udp(Datagram<'a>),
    /// A TCP segment (of any connection: the reassembly stage picks the SIP ones).
    Tcp(Segment<'a>),
    /// One fragment of an IP datagram (of any protocol), to be reassembled.
    Fragment(Fragment<'a>),
}

/// Decodes one captured frame of pcap link type `linktype` to a UDP datagram: TCP is
/// [`Skip::NonUdp`] and every IP fragment [`Skip::Fragment`] here. See [`decode_frame`].
pub fn decode_udp(linktype: u32, data: &[u8], wire_len: u32) -> Result<Datagram<'_>, Skip> {
    match decode_frame(linktype, data, wire_len)? {
        Decoded::Udp(datagram) => Ok(datagram),
        Decoded::Tcp(_) => Err(Skip::NonUdp),
        Decoded::Fragment(_) => Err(Skip::Fragment),
    }
}

/// The fragment fields of an IP header.
#[derive(Clone, Copy)]
struct FragmentInfo {
    id: u32,
    offset: u32,
    more: bool,
    ipv6_header: Option<Ipv6FragmentHeader>,
}

/// The IP layer of a packet, tunnels not yet unwrapped.
struct IpLayer<'a> {
    src: IpAddr,
    dst: IpAddr,
    /// For a fragment: the fragment header's next header (IPv6) or the protocol field (IPv4).
    protocol: u8,
    fragment: Option<FragmentInfo>,
    truncated: bool,
    payload: &'a [u8],
}

fn ip_layer(network: Network, bytes: &[u8]) -> Result<IpLayer<'_>, IpError> {
    Ok(match network {
        Network::Ipv6 => {
            let packet = Ipv6::new_checked(bytes)?;
            let header = packet.fragment_header();
            IpLayer {
                src: packet.source().into(),
                dst: packet.destination().into(),
                protocol: header.map_or_else(|| packet.protocol(), |h| h.next_header),
                fragment: header.map(|h| FragmentInfo {
                    id: h.identification,
                    offset: u32::from(h.offset_units) * 8,
                    more: h.more_fragments,
                    ipv6_header: Some(h),
                }),
                truncated: packet.is_truncated(),
                payload: packet.payload(),
            }
        }
        Network::Ipv4 | Network::AnyIp => {
            let packet = Ipv4::new_checked(bytes)?;
            IpLayer {
                src: packet.source().into(),
                dst: packet.destination().into(),
                protocol: packet.protocol(),
                fragment: packet.is_fragment().then(|| FragmentInfo {
                    id: u32::from(packet.identification()),
                    offset: u32::from(packet.fragment_offset()) * 8,
                    more: packet.more_fragments(),
                    ipv6_header: None,
                }),
                truncated: packet.is_truncated(),
                payload: packet.payload(),
            }
        }
    })
}

/// The frames that make up almost all of the traffic, decoded straight through: Ethernet II
/// without a VLAN tag, IPv4 without options and not a fragment, UDP, every byte captured.
/// `None` for anything else, also for such a frame with a length problem: the general chain
/// of [`decode_frame`] then decodes or classifies it. Where it returns a datagram it is the one
/// that chain returns (same checks, in a fixed order, on fixed offsets), so the result of
/// `decode_frame` does not depend on which path took the frame; only the branches and the
/// intermediate views per layer (link frame, IP layer with its `IpAddr`s) are saved.
#[inline]
fn plain_udp4(linktype: u32, data: &[u8]) -> Option<Datagram<'_>> {
    const ETHERNET: usize = 14;
    const IPV4: usize = 20;
    if linktype != link::linktype::ETHERNET {
        return None;
    }
    let (headers, rest) = data.split_first_chunk::<{ ETHERNET + IPV4 }>()?;
    let [
        ..,
        t0,
        t1, // ethertype
        v_ihl,
        _,
        l0,
        l1,
        _,
        _,
        f0,
        f1,
        _,
        protocol,
        _,
        _,
        s0,
        s1,
        s2,
        s3,
        d0,
        d1,
        d2,
        d3,
    ] = *headers;
    // Version 4 with a 20-byte header; MF clear and offset 0 (DF may be set): not a fragment.
    if u16::from_be_bytes([t0, t1]) != link::ethertype::IPV4
        || v_ihl != 0x45
        || u16::from_be_bytes([f0, f1]) & 0x3fff != 0
        || protocol != ip::protocol::UDP
    {
        return None;
    }
    // The whole IP packet captured (else truncated: the general path says how); link trailer
    // or padding past the IP total length is not part of the packet.
    let ip_payload = rest.get(..usize::from(u16::from_be_bytes([l0, l1])).checked_sub(IPV4)?)?;
    let (udp, _) = ip_payload.split_first_chunk::<{ super::udp::HEADER_LEN }>()?;
    let [p0, p1, q0, q1, n0, n1, _, _] = *udp;
    // A UDP length below the header or past the IP payload is malformed: the general path.
    let payload =
        ip_payload.get(super::udp::HEADER_LEN..usize::from(u16::from_be_bytes([n0, n1])))?;
    Some(Datagram {
        src: SocketAddr::new(
            IpAddr::V4(std::net::Ipv4Addr::new(s0, s1, s2, s3)),
            u16::from_be_bytes([p0, p1]),
        ),
        dst: SocketAddr::new(
            IpAddr::V4(std::net::Ipv4Addr::new(d0, d1, d2, d3)),
            u16::from_be_bytes([q0, q1]),
        ),
        payload,
        vlan: None,
    })
}

/// The packet a GRE header wraps: its network layer and bytes. `Ok(None)` for a GRE payload
/// that carries no IP (another protocol type, enhanced GRE, source routing); `Err(())` when the
/// header (or the ERSPAN header) is cut short.
fn gre_inner(gre: &[u8]) -> Result<Option<link::LinkFrame<'_>>, ()> {
    fn ethernet(frame: &[u8]) -> Result<Option<link::LinkFrame<'_>>, ()> {
        match link::decode_link(link::linktype::ETHERNET, frame) {
            Ok(inner) => Ok(Some(inner)),
            Err(LinkError::Truncated) => Err(()),
            Err(LinkError::NotIp) => Ok(None),
        }
    }
    let Some(header) = gre.first_chunk::<4>() else {
        return Err(());
    };
    let (checksum, routing, key, sequence) = (
        header[0] & 0x80 != 0,
        header[0] & 0x40 != 0,
        header[0] & 0x20 != 0,
        header[0] & 0x10 != 0,
    );
    // Version 1 is PPTP's enhanced GRE (PPP inside); source routing is obsolete (RFC 2784).
    if header[1] & 0x07 != 0 || routing {
        return Ok(None);
    }
    let header_len = 4 + 4 * (usize::from(checksum) + usize::from(key) + usize::from(sequence));
    let inner = gre.get(header_len..).ok_or(())?;
    match u16::from_be_bytes([header[2], header[3]]) {
        tunnel::GRE_IPV4 => Ok(Some(link::LinkFrame {
            network: Network::Ipv4,
            payload: inner,
            vlan: None,
        })),
        tunnel::GRE_IPV6 => Ok(Some(link::LinkFrame {
            network: Network::Ipv6,
            payload: inner,
            vlan: None,
        })),
        tunnel::GRE_ETHERNET => ethernet(inner),
        // Type I has no sequence number and no ERSPAN header; type II has both.
        tunnel::GRE_ERSPAN_2 if !sequence => ethernet(inner),
        tunnel::GRE_ERSPAN_2 => ethernet(inner.get(8..).ok_or(())?),
        tunnel::GRE_ERSPAN_3 => {
            let erspan = inner.first_chunk::<12>().ok_or(())?;
            let sub_header = if erspan[11] & 0x01 != 0 { 8 } else { 0 };
            ethernet(inner.get(12 + sub_header..).ok_or(())?)
        }
        _ => Ok(None),
    }
}

/// Decodes one captured frame of pcap link type `linktype` to its UDP datagram, TCP segment or
/// IP fragment, unwrapping up to [`MAX_TUNNELS`] IP-in-IP (protocols 4 and 41) and GRE (IP,
/// transparent Ethernet, ERSPAN I/II/III) headers. `wire_len` is the original length on the
/// wire; when it exceeds `data.len()` the frame was cut by the snap length, and length fields
/// pointing past the captured bytes mean `Truncated` rather than `Malformed`.
// Inlined into the packet loop so that the common datagram stays in registers instead of
// being returned through memory; the rare shapes stay behind a call (`decode_chain`).
#[inline]
pub fn decode_frame(linktype: u32, data: &[u8], wire_len: u32) -> Result<Decoded<'_>, Skip> {
    match plain_udp4(linktype, data) {
        Some(datagram) => Ok(Decoded::Udp(datagram)),
        None => decode_chain(linktype, data, wire_len),
    }
}

/// [`decode_frame`] layer by layer, for every shape of frame.
#[inline(never)]
fn decode_chain(linktype: u32, data: &[u8], wire_len: u32) -> Result<Decoded<'_>, Skip> {
    let cut_by_snaplen = usize::try_from(wire_len).map_or(true, |wire| wire > data.len());
    let short = if cut_by_snaplen {
        Skip::Truncated
    } else {
        Skip::Malformed
    };

    let frame = link::decode_link(linktype, data).map_err(|error| match error {
        LinkError::Truncated => short,
        LinkError::NotIp => Skip::NonUdp,
    })?;
    let ip_skip = |error: IpError| match error {
        IpError::Truncated => short,
        IpError::BadVersion
        | IpError::BadHeaderLength
        | IpError::BadTotalLength
        | IpError::ExtensionOverrun => Skip::Malformed,
    };
    let vlan = frame.vlan;
    let mut network = frame.network;
    let mut bytes = frame.payload;
    for _ in 0..=MAX_TUNNELS {
        network = match network {
            Network::AnyIp => match bytes.first().map(|byte| byte >> 4) {
                Some(4) => Network::Ipv4,
                Some(6) => Network::Ipv6,
                Some(_) => return Err(Skip::Malformed),
                None => return Err(short),
            },
            known => known,
        };
        let packet = ip_layer(network, bytes).map_err(ip_skip)?;
        // Fragment and protocol come before the payload-length check, so that a long non-UDP
        // packet or fragment cut by the snap length is counted for what it is, not as truncated.
        if let Some(fragment) = packet.fragment {
            if packet.truncated {
                return Err(Skip::Fragment);
            }
            return Ok(Decoded::Fragment(Fragment {
                src: packet.src,
                dst: packet.dst,
                id: fragment.id,
                offset: fragment.offset,
                more: fragment.more,
                protocol: packet.protocol,
                payload: packet.payload,
                vlan,
                ipv6_header: fragment.ipv6_header,
            }));
        }
        match packet.protocol {
            ip::protocol::UDP => {
                if packet.truncated {
                    return Err(short);
                }
                // The IP payload is complete here, so any UDP length problem is a contradiction.
                let datagram = Udp::new_checked(packet.payload).map_err(|_| Skip::Malformed)?;
                return Ok(Decoded::Udp(Datagram {
                    src: SocketAddr::new(packet.src, datagram.source_port()),
                    dst: SocketAddr::new(packet.dst, datagram.destination_port()),
                    payload: datagram.payload(),
                    vlan,
                }));
            }
            ip::protocol::TCP => {
                // TCP is counted as "not UDP" unless the analyzer reassembles it, so a header it
                // cannot read stays in that count; a cut payload is the analyzer's to judge.
                let segment = Tcp::new_checked(packet.payload).map_err(|_| Skip::NonUdp)?;
                return Ok(Decoded::Tcp(Segment {
                    src: SocketAddr::new(packet.src, segment.source_port()),
                    dst: SocketAddr::new(packet.dst, segment.destination_port()),
                    seq: segment.sequence(),
                    flags: segment.flags(),
                    payload: segment.payload(),
                    truncated: packet.truncated,
                    vlan,
                }));
            }
            tunnel::IPV4_IN_IP => {
                network = Network::Ipv4;
                bytes = packet.payload;
            }
            tunnel::IPV6_IN_IP => {
                network = Network::Ipv6;
                bytes = packet.payload;
            }
            tunnel::GRE => match gre_inner(packet.payload) {
                Ok(Some(inner)) => {
                    network = inner.network;
                    bytes = inner.payload;
                }
                Ok(None) => return Err(Skip::NonUdp),
                Err(()) if packet.truncated => return Err(short),
                Err(()) => return Err(Skip::Malformed),
            },
            _ => return Err(Skip::NonUdp),
        }
    }
    // Nested deeper than any real capture: not worth unwrapping further.
    Err(Skip::NonUdp)
}

/// The UDP datagram in a reassembled IP payload (`payload`, the fragments' data joined) of a
/// datagram from `src` to `dst` with the fragments' `protocol`: IPv6 extension headers of the
/// fragmentable part are skipped first. `Skip::NonUdp` for another protocol, `Skip::Malformed`
/// when the headers contradict the reassembled length.
pub fn reassembled_datagram(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    vlan: Option<u16>,
    payload: &[u8],
) -> Result<Datagram<'_>, Skip> {
    let (protocol, payload) = if src.is_ipv6() {
        ip::ipv6_upper_layer(protocol, payload).map_err(|_| Skip::Malformed)?
    } else {
        (protocol, payload)
    };
    if protocol != ip::protocol::UDP {
        return Err(Skip::NonUdp);
    }
    let datagram = Udp::new_checked(payload).map_err(|_| Skip::Malformed)?;
    Ok(Datagram {
        src: SocketAddr::new(src, datagram.source_port()),
        dst: SocketAddr::new(dst, datagram.destination_port()),
        payload: datagram.payload(),
        vlan,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::build::{self, LinkSpec};
    use super::super::link::linktype;
    use super::*;
    use proptest::prelude::*;

    /// Ethernet + IPv4 (10.0.0.1:5000 → 10.0.0.2:10000) + UDP with payload "abc", padded to 60.
    fn ethernet_ipv4_udp() -> Vec<u8> {
        let mut frame = vec![
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08, 0x00,
        ];
        frame.extend_from_slice(&[
            0x45, 0x00, 0x00, 31, 0x00, 0x01, 0x00, 0x00, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        frame.extend_from_slice(&[0x13, 0x88, 0x27, 0x10, 0x00, 11, 0, 0, b'a', b'b', b'c']);
        frame.resize(60, 0);
        frame
    }

    fn decode_eth(frame: &[u8]) -> Result<Datagram<'_>, Skip> {
        decode_udp(linktype::ETHERNET, frame, frame.len() as u32)
    }

    const IP: usize = 14;
    const UDP: usize = 34;

    #[test]
    fn deconstruct_ethernet_frame() {
        let frame = ethernet_ipv4_udp();
        let datagram = decode_eth(&frame).unwrap();
        assert_eq!(datagram.src, "10.0.0.1:5000".parse().unwrap());
        assert_eq!(datagram.dst, "10.0.0.2:10000".parse().unwrap());
        assert_eq!(datagram.payload, b"abc");
        assert_eq!(datagram.vlan, None);
    }

    #[test]
    fn truncated_headers() {
        let frame = ethernet_ipv4_udp();
        // Cut inside the Ethernet, IPv4 and UDP headers and inside the payload.
        for len in [0, 10, IP + 10, UDP + 4, UDP + 9] {
            assert_eq!(
                decode_udp(linktype::ETHERNET, &frame[..len], 60),
                Err(Skip::Truncated),
                "cut at {len}"
            );
            // Same bytes without a snap-length cut: the length fields lie.
            assert_eq!(
                decode_udp(linktype::ETHERNET, &frame[..len], len as u32),
                Err(Skip::Malformed),
                "short at {len}"
            );
        }
        // The padding may be cut without harm.
        assert!(decode_udp(linktype::ETHERNET, &frame[..UDP + 11], 60).is_ok());
    }

    #[test]
    fn ipv4_total_length_impossible() {
        let mut frame = ethernet_ipv4_udp();
        frame[IP + 3] = 200; // beyond the 60-byte frame
        assert_eq!(decode_eth(&frame), Err(Skip::Malformed));
        assert_eq!(
            decode_udp(linktype::ETHERNET, &frame, 214),
            Err(Skip::Truncated)
        );
        frame[IP + 3] = 19; // below the header
        assert_eq!(decode_eth(&frame), Err(Skip::Malformed));
    }

    #[test]
    fn ipv4_bad_ihl_and_version() {
        for first in [0x43u8, 0x44, 0x75, 0x65] {
            let mut frame = ethernet_ipv4_udp();
            frame[IP] = first;
            assert_eq!(decode_eth(&frame), Err(Skip::Malformed), "{first:#x}");
        }
    }

    #[test]
    fn udp_length_impossible() {
        let mut frame = ethernet_ipv4_udp();
        frame[UDP + 5] = 5;
        assert_eq!(decode_eth(&frame), Err(Skip::Malformed));
        frame[UDP + 5] = 12; // one more than the IP payload
        assert_eq!(decode_eth(&frame), Err(Skip::Malformed));
        // A UDP length shorter than the IP payload is honoured.
        frame[UDP + 5] = 10;
        assert_eq!(decode_eth(&frame).unwrap().payload, b"ab");
    }

    #[test]
    fn not_udp() {
        let mut tcp = ethernet_ipv4_udp();
        tcp[IP + 9] = 6;
        assert_eq!(decode_eth(&tcp), Err(Skip::NonUdp));
        let mut other_ethertype = ethernet_ipv4_udp();
        other_ethertype[12..14].copy_from_slice(&[0x88, 0xb5]);
        assert_eq!(decode_eth(&other_ethertype), Err(Skip::NonUdp));
        let frame = ethernet_ipv4_udp();
        assert_eq!(decode_udp(9999, &frame, 60), Err(Skip::NonUdp));
        // A long TCP segment cut by the snap length is still "not UDP".
        assert_eq!(
            decode_udp(linktype::ETHERNET, &tcp[..IP + 20], 1514),
            Err(Skip::NonUdp)
        );
    }

    #[test]
    fn ipv4_fragments_first_middle_last() {
        // (flags/offset bytes): first (MF, 0), middle (MF, 185), last (0, 370).
        for flags_offset in [[0x20u8, 0x00], [0x20, 0xb9], [0x01, 0x72]] {
            let mut frame = ethernet_ipv4_udp();
            frame[IP + 6..IP + 8].copy_from_slice(&flags_offset);
            assert_eq!(decode_eth(&frame), Err(Skip::Fragment), "{flags_offset:?}");
        }
        let src: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let dst: SocketAddr = "10.0.0.2:6000".parse().unwrap();
        let fragments = build::ipv4_fragments(&LinkSpec::Ethernet, src, dst, &[7; 100], 48);
        assert_eq!(fragments.len(), 3);
        for fragment in &fragments {
            assert_eq!(decode_eth(fragment), Err(Skip::Fragment));
        }
    }

    #[test]
    fn ipv6_fragments_and_extension_headers() {
        let src: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        let dst: SocketAddr = "[2001:db8::2]:6000".parse().unwrap();
        let fragments = build::ipv4_fragments(&LinkSpec::RawIp, src, dst, &[7; 100], 48);
        assert_eq!(fragments.len(), 3);
        for fragment in &fragments {
            assert_eq!(
                decode_udp(linktype::RAW, fragment, fragment.len() as u32),
                Err(Skip::Fragment)
            );
        }
    }

    fn fragment_of(frame: &[u8], linktype: u32) -> Fragment<'_> {
        match decode_frame(linktype, frame, frame.len() as u32) {
            Ok(Decoded::Fragment(fragment)) => fragment,
            other => panic!("not a fragment: {other:?}"),
        }
    }

    #[test]
    fn ipv4_fragment_views() {
        let src: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let dst: SocketAddr = "10.0.0.2:6000".parse().unwrap();
        let payload: Vec<u8> = (0..100u8).collect();
        // UDP datagram of 108 octets in pieces of 48: offsets 0, 48, 96.
        let frames = build::ipv4_fragments(&LinkSpec::Vlan(vec![42]), src, dst, &payload, 48);
        let views: Vec<Fragment<'_>> = frames
            .iter()
            .map(|f| fragment_of(f, linktype::ETHERNET))
            .collect();
        let layout: Vec<(u32, bool, usize)> = views
            .iter()
            .map(|f| (f.offset, f.more, f.payload.len()))
            .collect();
        assert_eq!(layout, [(0, true, 48), (48, true, 48), (96, false, 12)]);
        for view in &views {
            assert_eq!(view.src, src.ip());
            assert_eq!(view.dst, dst.ip());
            assert_eq!(view.id, 0x1234);
            assert_eq!(view.protocol, ip::protocol::UDP);
            assert_eq!(view.vlan, Some(42));
            assert_eq!(view.ipv6_header, None);
        }
        // The first fragment starts with the UDP header: ports 5000 → 6000, length 108.
        assert_eq!(&views[0].payload[..6], &[0x13, 0x88, 0x17, 0x70, 0, 108]);
        assert_eq!(views[2].payload, &payload[88..]);
        // Ethernet padding after a short last fragment is not fragment data.
        assert_eq!(frames[2].len(), 60);
        // A fragment cut by the snap length cannot be reassembled.
        let cut = &frames[0][..40];
        assert_eq!(
            decode_frame(linktype::ETHERNET, cut, frames[0].len() as u32),
            Err(Skip::Fragment)
        );
        // Any protocol: a TCP fragment is a fragment too.
        let mut tcp = frames[1].clone();
        tcp[18 + 9] = ip::protocol::TCP;
        assert_eq!(
            fragment_of(&tcp, linktype::ETHERNET).protocol,
            ip::protocol::TCP
        );
    }

    #[test]
    fn ipv6_fragment_views() {
        let src: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        let dst: SocketAddr = "[2001:db8::2]:6000".parse().unwrap();
        let frames = build::ipv4_fragments(&LinkSpec::LinuxSll, src, dst, &[7; 100], 48);
        let views: Vec<Fragment<'_>> = frames
            .iter()
            .map(|f| fragment_of(f, linktype::LINUX_SLL))
            .collect();
        let layout: Vec<(u32, bool, usize)> = views
            .iter()
            .map(|f| (f.offset, f.more, f.payload.len()))
            .collect();
        assert_eq!(layout, [(0, true, 48), (48, true, 48), (96, false, 12)]);
        for (view, units) in views.iter().zip([0u16, 6, 12]) {
            assert_eq!(view.id, 0x0012_3456);
            assert_eq!(view.protocol, ip::protocol::UDP);
            assert_eq!(view.src, src.ip());
            assert_eq!(
                view.ipv6_header,
                Some(Ipv6FragmentHeader {
                    next_header: ip::protocol::UDP,
                    offset_units: units,
                    more_fragments: units != 12,
                    identification: 0x0012_3456,
                })
            );
        }
    }

    #[test]
    fn reassembled_datagrams_are_decoded_as_udp() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let udp = [0x13, 0x88, 0x17, 0x70, 0, 11, 0, 0, b'a', b'b', b'c'];
        let datagram = reassembled_datagram(v4, v4, ip::protocol::UDP, Some(3), &udp).unwrap();
        assert_eq!(datagram.src, "10.0.0.1:5000".parse().unwrap());
        assert_eq!(datagram.dst, "10.0.0.1:6000".parse().unwrap());
        assert_eq!(datagram.payload, b"abc");
        assert_eq!(datagram.vlan, Some(3));
        assert_eq!(
            reassembled_datagram(v4, v4, ip::protocol::TCP, None, &udp),
            Err(Skip::NonUdp)
        );
        let mut long = udp;
        long[5] = 12;
        assert_eq!(
            reassembled_datagram(v4, v4, ip::protocol::UDP, None, &long),
            Err(Skip::Malformed)
        );
        // IPv6: a destination-options header in the fragmentable part comes before UDP.
        let mut with_options = vec![ip::protocol::UDP, 0, 1, 4, 0, 0, 0, 0];
        with_options.extend_from_slice(&udp);
        let datagram = reassembled_datagram(
            v6,
            v6,
            ip::protocol::DESTINATION_OPTIONS,
            None,
            &with_options,
        )
        .unwrap();
        assert_eq!(datagram.payload, b"abc");
        assert_eq!(datagram.src, "[2001:db8::1]:5000".parse().unwrap());
        // ... but not for IPv4, where 60 is just another protocol.
        assert_eq!(
            reassembled_datagram(
                v4,
                v4,
                ip::protocol::DESTINATION_OPTIONS,
                None,
                &with_options
            ),
            Err(Skip::NonUdp)
        );
        // An extension header longer than the reassembled part.
        assert_eq!(
            reassembled_datagram(v6, v6, ip::protocol::ROUTING, None, &with_options[..12]),
            Err(Skip::Malformed)
        );
    }

    #[test]
    fn raw_ip_empty_and_bad_version() {
        assert_eq!(decode_udp(linktype::RAW, &[], 0), Err(Skip::Malformed));
        assert_eq!(decode_udp(linktype::RAW, &[], 40), Err(Skip::Truncated));
        assert_eq!(
            decode_udp(linktype::RAW, &[0x70; 40], 40),
            Err(Skip::Malformed)
        );
        // IPv6 under the IPv4 link type.
        let src: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        let frame = build::udp_frame(&LinkSpec::RawIp, src, src, b"x");
        assert_eq!(
            decode_udp(linktype::IPV4, &frame, frame.len() as u32),
            Err(Skip::Malformed)
        );
        assert!(decode_udp(linktype::IPV6, &frame, frame.len() as u32).is_ok());
    }

    fn all_links() -> Vec<LinkSpec> {
        vec![
            LinkSpec::Ethernet,
            LinkSpec::Vlan(vec![]),
            LinkSpec::Vlan(vec![42]),
            LinkSpec::Vlan(vec![100, 200]),
            LinkSpec::Vlan(vec![1, 2, 3]),
            LinkSpec::LinuxSll,
            LinkSpec::LinuxSll2,
            LinkSpec::RawIp,
        ]
    }

    #[test]
    fn round_trip_every_link_and_ip_version() {
        let pairs: [(&str, &str); 2] = [
            ("192.0.2.10:16384", "198.51.100.7:20000"),
            ("[2001:db8::10]:16384", "[2001:db8:1::7]:20000"),
        ];
        for link in all_links() {
            for (src, dst) in pairs {
                let src: SocketAddr = src.parse().unwrap();
                let dst: SocketAddr = dst.parse().unwrap();
                for payload in [&b""[..], b"x", &[0xa5; 172], &[1; 1400]] {
                    let frame = build::udp_frame(&link, src, dst, payload);
                    let datagram = decode_udp(link.linktype(), &frame, frame.len() as u32)
                        .unwrap_or_else(|skip| panic!("{link:?} {src}: {skip:?}"));
                    assert_eq!(datagram.src, src);
                    assert_eq!(datagram.dst, dst);
                    assert_eq!(datagram.payload, payload);
                    let expected_vlan = match &link {
                        LinkSpec::Vlan(tags) => tags.first().copied(),
                        _ => None,
                    };
                    assert_eq!(datagram.vlan, expected_vlan);
                }
            }
        }
    }

    fn tcp_of(frame: &[u8]) -> Segment<'_> {
        match decode_frame(linktype::ETHERNET, frame, frame.len() as u32) {
            Ok(Decoded::Tcp(segment)) => segment,
            other => panic!("expected a TCP segment, got {other:?}"),
        }
    }

    #[test]
    fn tcp_segments_decode_and_stay_not_udp_for_decode_udp() {
        for (src, dst) in [
            ("10.0.0.1:40000", "10.0.0.2:5060"),
            ("[2001:db8::1]:5060", "[2001:db8::2]:40000"),
        ] {
            let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
            let frame = build::tcp_frame(
                &LinkSpec::Vlan(vec![7]),
                src,
                dst,
                0xdead_beef,
                0x19,
                b"BYE",
            );
            let segment = tcp_of(&frame);
            assert_eq!((segment.src, segment.dst), (src, dst));
            assert_eq!((segment.seq, segment.flags), (0xdead_beef, 0x19));
            assert_eq!(segment.payload, b"BYE");
            assert_eq!(segment.vlan, Some(7));
            assert!(!segment.truncated);
            assert_eq!(decode_eth(&frame), Err(Skip::NonUdp));
            // Cut by the snap length inside the payload: flagged, the captured part kept.
            let cut = &frame[..frame.len() - 1];
            match decode_frame(linktype::ETHERNET, cut, frame.len() as u32) {
                Ok(Decoded::Tcp(s)) => assert!(s.truncated && s.payload == b"BY"),
                other => panic!("{other:?}"),
            }
        }
        // A TCP header that cannot be read stays "not UDP", as TCP always was.
        let mut bad = build::tcp_frame(
            &LinkSpec::Ethernet,
            "10.0.0.1:1".parse().unwrap(),
            "10.0.0.2:2".parse().unwrap(),
            1,
            0x10,
            b"",
        );
        bad[IP + 20 + 12] = 0x30;
        assert_eq!(
            decode_frame(linktype::ETHERNET, &bad, bad.len() as u32),
            Err(Skip::NonUdp)
        );
    }

    #[test]
    fn ip_in_ip_and_gre_are_unwrapped() {
        let src: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let dst: SocketAddr = "[2001:db8::9]:5062".parse().unwrap();
        let v4_inner = build::tcp_frame(
            &LinkSpec::RawIp,
            src,
            "192.0.2.9:33093".parse().unwrap(),
            5,
            0x18,
            b"SIP/2.0 200 OK\r\n\r\n",
        );
        let v6_inner = build::udp_frame(
            &LinkSpec::RawIp,
            "[2001:db8::1]:5060".parse().unwrap(),
            dst,
            b"OPTIONS",
        );
        let outer: (IpAddr, IpAddr) = (
            "10.15.196.229".parse().unwrap(),
            "10.15.193.31".parse().unwrap(),
        );
        // IPv4 in IPv4 (protocol 4), as in sngrep's ipip.pcap.
        let frame = build::ip_in_ip(&LinkSpec::Ethernet, outer.0, outer.1, &v4_inner);
        let segment = tcp_of(&frame);
        assert_eq!(segment.src, src);
        assert_eq!(segment.payload, b"SIP/2.0 200 OK\r\n\r\n");
        // IPv6 in IPv4 (protocol 41) and IPv4 in IPv6.
        let frame = build::ip_in_ip(&LinkSpec::Ethernet, outer.0, outer.1, &v6_inner);
        assert_eq!(decode_eth(&frame).unwrap().dst, dst);
        let v6_outer: IpAddr = "2001:db8::77".parse().unwrap();
        let frame = build::ip_in_ip(&LinkSpec::Ethernet, v6_outer, v6_outer, &v4_inner);
        assert_eq!(tcp_of(&frame).src, src);
        // GRE with IPv4 inside, and transparent Ethernet bridging with a key (heplify's ERSPAN
        // capture is shaped so).
        let frame = build::gre(
            &LinkSpec::Ethernet,
            outer.0,
            outer.1,
            &build::GreSpec {
                protocol: 0x0800,
                key: None,
                sequence: None,
                extra: vec![],
            },
            &v4_inner,
        );
        assert_eq!(tcp_of(&frame).src, src);
        let inner_ethernet = build::udp_frame(
            &LinkSpec::Vlan(vec![99]),
            "10.1.1.1:5060".parse().unwrap(),
            "10.1.1.2:5060".parse().unwrap(),
            b"INVITE",
        );
        let frame = build::gre(
            &LinkSpec::Vlan(vec![5]),
            outer.0,
            outer.1,
            &build::GreSpec {
                protocol: 0x6558,
                key: Some(0),
                sequence: None,
                extra: vec![],
            },
            &inner_ethernet,
        );
        let datagram = decode_eth(&frame).unwrap();
        assert_eq!(datagram.payload, b"INVITE");
        assert_eq!(datagram.vlan, Some(5), "the outermost tag is reported");
        // ERSPAN type I (no sequence), II (sequence + 8-byte header), III (12 + 8 bytes).
        let frame = build::gre(
            &LinkSpec::Ethernet,
            outer.0,
            outer.1,
            &build::GreSpec {
                protocol: 0x88be,
                key: None,
                sequence: None,
                extra: vec![],
            },
            &inner_ethernet,
        );
        assert_eq!(decode_eth(&frame).unwrap().payload, b"INVITE");
        let frame = build::gre(
            &LinkSpec::Ethernet,
            outer.0,
            outer.1,
            &build::GreSpec {
                protocol: 0x88be,
                key: None,
                sequence: Some(1),
                extra: vec![0x10, 0, 0, 1, 0, 0, 0, 0],
            },
            &inner_ethernet,
        );
        assert_eq!(decode_eth(&frame).unwrap().payload, b"INVITE");
        let mut erspan3 = vec![0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        erspan3.extend_from_slice(&[0; 8]);
        let frame = build::gre(
            &LinkSpec::Ethernet,
            outer.0,
            outer.1,
            &build::GreSpec {
                protocol: 0x22eb,
                key: None,
                sequence: Some(1),
                extra: erspan3.clone(),
            },
            &inner_ethernet,
        );
        assert_eq!(decode_eth(&frame).unwrap().payload, b"INVITE");
        // Other GRE payloads (PPP, enhanced GRE) are not UDP; a cut GRE header is.
        let frame = build::gre(
            &LinkSpec::Ethernet,
            outer.0,
            outer.1,
            &build::GreSpec {
                protocol: 0x880b,
                key: None,
                sequence: None,
                extra: vec![],
            },
            &v4_inner,
        );
        assert_eq!(decode_eth(&frame), Err(Skip::NonUdp));
        let frame = build::gre(
            &LinkSpec::Ethernet,
            outer.0,
            outer.1,
            &build::GreSpec {
                protocol: 0x0800,
                key: Some(1),
                sequence: None,
                extra: vec![],
            },
            &[],
        );
        assert_eq!(decode_eth(&frame[..IP + 20 + 6]), Err(Skip::Malformed));
        assert_eq!(
            decode_udp(linktype::ETHERNET, &frame[..IP + 20 + 6], 200),
            Err(Skip::Truncated)
        );
    }

    #[test]
    fn tunnel_nesting_is_bounded() {
        let mut packet = build::udp_frame(
            &LinkSpec::RawIp,
            "10.0.0.1:1".parse().unwrap(),
            "10.0.0.2:2".parse().unwrap(),
            b"x",
        );
        let outer: IpAddr = "10.9.9.9".parse().unwrap();
        for depth in 1..=MAX_TUNNELS + 1 {
            packet = build::ip_in_ip(&LinkSpec::RawIp, outer, outer, &packet);
            let result = decode_udp(linktype::RAW, &packet, packet.len() as u32);
            if depth <= MAX_TUNNELS {
                assert_eq!(result.unwrap().payload, b"x", "depth {depth}");
            } else {
                assert_eq!(result, Err(Skip::NonUdp), "depth {depth}");
            }
        }
    }

    const LINKTYPES: [u32; 12] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147, 9];

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), extra in 0u32..100) {
            for linktype in LINKTYPES {
                let _ = decode_udp(linktype, &data, data.len() as u32 + extra);
                let _ = decode_udp(linktype, &data, 0);
            }
        }

        /// Mutating single bytes of a valid frame never panics, and a successful decode always
        /// returns a payload inside the frame.
        #[test]
        fn mutated_frames_never_panic(
            link_index in 0usize..8,
            v6 in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            mutations in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cut in any::<usize>(),
        ) {
            let link = &all_links()[link_index];
            let (src, dst): (SocketAddr, SocketAddr) = if v6 {
                ("[::1]:1".parse().unwrap(), "[::2]:2".parse().unwrap())
            } else {
                ("1.1.1.1:1".parse().unwrap(), "2.2.2.2:2".parse().unwrap())
            };
            let mut frame = build::udp_frame(link, src, dst, &payload);
            for (position, value) in mutations {
                let index = position % frame.len();
                frame[index] = value;
            }
            let captured = &frame[..cut % (frame.len() + 1)];
            if let Ok(datagram) = decode_udp(link.linktype(), captured, frame.len() as u32) {
                prop_assert!(datagram.payload.len() <= captured.len());
            }
        }

        /// The straight path for Ethernet/IPv4/UDP gives exactly what the layer-by-layer chain
        /// gives, on valid frames and on frames with lengths, flags, version, header length,
        /// ethertype or protocol changed, padded or cut; and it takes the plain valid frame.
        #[test]
        fn plain_udp4_is_the_chain(
            payload in proptest::collection::vec(any::<u8>(), 0..80),
            mutations in proptest::collection::vec((0usize..46, any::<u8>()), 0..3),
            pad in 0usize..20,
            cut in any::<usize>(),
        ) {
            let src: SocketAddr = "10.1.2.3:4000".parse().unwrap();
            let dst: SocketAddr = "192.168.7.9:16384".parse().unwrap();
            let mut frame = build::udp_frame(&LinkSpec::Ethernet, src, dst, &payload);
            if mutations.is_empty() {
                let fast = plain_udp4(linktype::ETHERNET, &frame).unwrap();
                prop_assert_eq!((fast.src, fast.dst, fast.payload), (src, dst, &payload[..]));
            }
            frame.resize(frame.len() + pad, 0xee);
            for (position, value) in &mutations {
                let index = position % frame.len();
                frame[index] = *value;
            }
            let wire = frame.len() as u32;
            let captured = &frame[..cut % (frame.len() + 1)];
            for linktype in [linktype::ETHERNET, linktype::LINUX_SLL] {
                if let Some(fast) = plain_udp4(linktype, captured) {
                    prop_assert_eq!(decode_chain(linktype, captured, wire), Ok(Decoded::Udp(fast)));
                }
            }
        }

        #[test]
        fn round_trip_random(
            link_index in 0usize..8,
            v6 in any::<bool>(),
            src_port in any::<u16>(),
            dst_port in any::<u16>(),
            src_v4 in any::<[u8; 4]>(),
            dst_v4 in any::<[u8; 4]>(),
            src_v6 in any::<[u8; 16]>(),
            dst_v6 in any::<[u8; 16]>(),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let link = &all_links()[link_index];
            let (src, dst) = if v6 {
                (SocketAddr::new(IpAddr::from(src_v6), src_port), SocketAddr::new(IpAddr::from(dst_v6), dst_port))
            } else {
                (SocketAddr::new(IpAddr::from(src_v4), src_port), SocketAddr::new(IpAddr::from(dst_v4), dst_port))
            };
            let frame = build::udp_frame(link, src, dst, &payload);
            let datagram = decode_udp(link.linktype(), &frame, frame.len() as u32).unwrap();
            prop_assert_eq!(datagram.src, src);
            prop_assert_eq!(datagram.dst, dst);
            prop_assert_eq!(datagram.payload, &payload[..]);
            // Any snap-length cut before the end of the payload is reported as truncation.
            let payload_end = frame.len() - trailer_len(link, v6, payload.len());
            for cut in [0, payload_end / 2, payload_end.saturating_sub(1)] {
                if cut < payload_end {
                    prop_assert_eq!(
                        decode_udp(link.linktype(), &frame[..cut], frame.len() as u32).err(),
                        Some(Skip::Truncated)
                    );
                }
            }
        }
    }

    /// Ethernet padding added by the builder after the UDP payload.
    fn trailer_len(link: &LinkSpec, v6: bool, payload_len: usize) -> usize {
        let l2 = match link {
            LinkSpec::Ethernet => 14,
            LinkSpec::Vlan(tags) => 14 + 4 * tags.len(),
            _ => return 0,
        };
        let unpadded = l2 + if v6 { 48 } else { 28 } + payload_len;
        60usize.saturating_sub(unpadded)
    }
}
