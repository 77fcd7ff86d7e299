//! The per-packet decode chain: link layer → IPv4/IPv6 → UDP, yielding the UDP payload and its
//! socket addresses, a typed view of an IP fragment, or the reason the frame was skipped.
//!
//! Runs for every captured packet, so it must not allocate, copy packet bytes or do work that
//! the result does not need. It does not verify checksums or look at the UDP payload, and it
//! keeps no state: fragments are handed over as [`Fragment`] views and reassembled by the
//! stateful `reassembly` stage, which gives the whole datagram back to
//! [`reassembled_datagram`].

use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

use super::ip::{self, IpError, Ipv4, Ipv6, Ipv6FragmentHeader};
use super::link::{self, LinkError, Network};
use super::udp::Udp;

/// Why a frame yielded no UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum Skip {
    /// Not UDP over IP: another ethertype or protocol, or an unknown link type.
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

/// What one frame decodes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole UDP datagram.
    Udp(Datagram<'a>),
    /// One fragment of an IP datagram (of any protocol), to be reassembled.
    Fragment(Fragment<'a>),
}

/// Decodes one captured frame of pcap link type `linktype` to a UDP datagram, failing with
/// [`Skip::Fragment`] for every IP fragment. See [`decode_frame`].
pub fn decode_udp(linktype: u32, data: &[u8], wire_len: u32) -> Result<Datagram<'_>, Skip> {
    match decode_frame(linktype, data, wire_len)? {
        Decoded::Udp(datagram) => Ok(datagram),
        Decoded::Fragment(_) => Err(Skip::Fragment),
    }
}

/// Decodes one captured frame of pcap link type `linktype`. `wire_len` is the original length
/// on the wire; when it exceeds `data.len()` the frame was cut by the snap length, and length
/// fields pointing past the captured bytes mean `Truncated` rather than `Malformed`.
pub fn decode_frame(linktype: u32, data: &[u8], wire_len: u32) -> Result<Decoded<'_>, Skip> {
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
    let network = match frame.network {
        Network::AnyIp => match frame.payload.first().map(|byte| byte >> 4) {
            Some(4) => Network::Ipv4,
            Some(6) => Network::Ipv6,
            Some(_) => return Err(Skip::Malformed),
            None => return Err(short),
        },
        known => known,
    };

    // Fragment and protocol come before the payload-length check, so that a long non-UDP packet
    // or fragment cut by the snap length is counted for what it is, not as truncated.
    let (src_ip, dst_ip, ip_payload): (IpAddr, IpAddr, &[u8]) = match network {
        Network::Ipv6 => {
            let packet = Ipv6::new_checked(frame.payload).map_err(ip_skip)?;
            if let Some(header) = packet.fragment_header() {
                if packet.is_truncated() {
                    return Err(Skip::Fragment);
                }
                return Ok(Decoded::Fragment(Fragment {
                    src: packet.source().into(),
                    dst: packet.destination().into(),
                    id: header.identification,
                    offset: u32::from(header.offset_units) * 8,
                    more: header.more_fragments,
                    protocol: header.next_header,
                    payload: packet.payload(),
                    vlan: frame.vlan,
                    ipv6_header: Some(header),
                }));
            }
            if packet.protocol() != ip::protocol::UDP {
                return Err(Skip::NonUdp);
            }
            if packet.is_truncated() {
                return Err(short);
            }
            (
                packet.source().into(),
                packet.destination().into(),
                packet.payload(),
            )
        }
        Network::Ipv4 | Network::AnyIp => {
            let packet = Ipv4::new_checked(frame.payload).map_err(ip_skip)?;
            if packet.is_fragment() {
                if packet.is_truncated() {
                    return Err(Skip::Fragment);
                }
                return Ok(Decoded::Fragment(Fragment {
                    src: packet.source().into(),
                    dst: packet.destination().into(),
                    id: u32::from(packet.identification()),
                    offset: u32::from(packet.fragment_offset()) * 8,
                    more: packet.more_fragments(),
                    protocol: packet.protocol(),
                    payload: packet.payload(),
                    vlan: frame.vlan,
                    ipv6_header: None,
                }));
            }
            if packet.protocol() != ip::protocol::UDP {
                return Err(Skip::NonUdp);
            }
            if packet.is_truncated() {
                return Err(short);
            }
            (
                packet.source().into(),
                packet.destination().into(),
                packet.payload(),
            )
        }
    };

    // The IP payload is complete here, so any UDP length problem is a contradiction.
    let datagram = Udp::new_checked(ip_payload).map_err(|_| Skip::Malformed)?;
    Ok(Decoded::Udp(Datagram {
        src: SocketAddr::new(src_ip, datagram.source_port()),
        dst: SocketAddr::new(dst_ip, datagram.destination_port()),
        payload: datagram.payload(),
        vlan: frame.vlan,
    }))
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
