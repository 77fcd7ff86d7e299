//! Link-layer views: find the network-layer packet inside a captured frame.
//!
//! Handles Ethernet II (with any number of stacked 802.1Q / QinQ tags), Linux cooked captures
//! (SLL and SLL2), raw IP and BSD loopback. Ethernet and VLAN fields are read from array
//! references obtained by checked splits, so they cannot fail.
//! This module must not look past the link header (IP is `super::ip`'s job), allocate or copy
//! packet bytes.

use thiserror::Error;

/// pcap / pcapng `LINKTYPE_*` values this module understands.
pub mod linktype {
    /// BSD loopback, 4-byte address family in the capturing host's byte order.
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    /// Raw IP as written by some OpenBSD / BSD/OS libpcap versions.
    pub const RAW_OPENBSD: u32 = 12;
    /// Raw IP as written by some BSD/OS libpcap versions.
    pub const RAW_BSDOS: u32 = 14;
    pub const RAW: u32 = 101;
    /// OpenBSD loopback, 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// EtherType values the decoder acts on.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag still used by some switches.
    pub const QINQ_LEGACY: u16 = 0x9100;
}

const ETHERNET_HEADER_LEN: usize = 14;
const VLAN_TAG_LEN: usize = 4;
const SLL_HEADER_LEN: usize = 16;
const SLL_PROTOCOL_OFFSET: usize = 14;
const SLL2_HEADER_LEN: usize = 20;
const LOOPBACK_HEADER_LEN: usize = 4;

/// Address-family values seen in loopback headers (they differ between operating systems).
const AF_INET: u32 = 2;
const AF_INET6_LINUX: u32 = 10;
const AF_INET6_NETBSD_OPENBSD: u32 = 24;
const AF_INET6_FREEBSD: u32 = 28;
const AF_INET6_DARWIN: u32 = 30;

/// Which network protocol the link layer says it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    Ipv4,
    Ipv6,
    /// The link layer does not say (raw IP): the IP version nibble decides.
    AnyIp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum LinkError {
    /// The captured bytes end inside the link header.
    #[error("link header truncated")]
    Truncated,
    /// Not IP (ARP, LLDP, unknown link type, …).
    #[error("link layer does not carry ip")]
    NotIp,
}

/// The network-layer packet found inside a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkFrame<'a> {
    pub network: Network,
    /// Everything after the link header, including any Ethernet padding or trailer.
    pub payload: &'a [u8],
    /// Outermost VLAN id, if the frame was tagged.
    pub vlan: Option<u16>,
}

/// Strips the link header of a frame captured with `linktype`.
pub fn decode_link(linktype: u32, data: &[u8]) -> Result<LinkFrame<'_>, LinkError> {
    match linktype {
        linktype::ETHERNET => decode_ethernet(data),
        linktype::LINUX_SLL => {
            let protocol = read_be_u16(data, SLL_PROTOCOL_OFFSET).ok_or(LinkError::Truncated)?;
            let rest = data.get(SLL_HEADER_LEN..).ok_or(LinkError::Truncated)?;
            decode_ethertype(protocol, rest, None)
        }
        linktype::LINUX_SLL2 => {
            let protocol = read_be_u16(data, 0).ok_or(LinkError::Truncated)?;
            let rest = data.get(SLL2_HEADER_LEN..).ok_or(LinkError::Truncated)?;
            decode_ethertype(protocol, rest, None)
        }
        linktype::RAW | linktype::RAW_OPENBSD | linktype::RAW_BSDOS => Ok(LinkFrame {
            network: Network::AnyIp,
            payload: data,
            vlan: None,
        }),
        linktype::IPV4 => Ok(LinkFrame {
            network: Network::Ipv4,
            payload: data,
            vlan: None,
        }),
        linktype::IPV6 => Ok(LinkFrame {
            network: Network::Ipv6,
            payload: data,
            vlan: None,
        }),
        linktype::NULL | linktype::LOOP => decode_loopback(data),
        _ => Err(LinkError::NotIp),
    }
}

fn decode_ethernet(data: &[u8]) -> Result<LinkFrame<'_>, LinkError> {
    let Some(ethernet) = data.first_chunk::<14>() else {
        return Err(LinkError::Truncated);
    };
    let rest = data
        .get(ETHERNET_HEADER_LEN..)
        .ok_or(LinkError::Truncated)?;
    decode_ethertype(u16::from_be_bytes([ethernet[12], ethernet[13]]), rest, None)
}

/// Follows VLAN tags until an IP ethertype. Each tag consumes four bytes, so the loop ends.
fn decode_ethertype<'a>(
    mut protocol: u16,
    mut rest: &'a [u8],
    mut vlan: Option<u16>,
) -> Result<LinkFrame<'a>, LinkError> {
    loop {
        match protocol {
            ethertype::IPV4 => {
                return Ok(LinkFrame {
                    network: Network::Ipv4,
                    payload: rest,
                    vlan,
                });
            }
            ethertype::IPV6 => {
                return Ok(LinkFrame {
                    network: Network::Ipv6,
                    payload: rest,
                    vlan,
                });
            }
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_LEGACY => {
                let Some(tag) = rest.first_chunk::<4>() else {
                    return Err(LinkError::Truncated);
                };
                vlan = vlan.or(Some(u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff));
                protocol = u16::from_be_bytes([tag[2], tag[3]]);
                rest = rest.get(VLAN_TAG_LEN..).ok_or(LinkError::Truncated)?;
            }
            _ => return Err(LinkError::NotIp),
        }
    }
}

fn decode_loopback(data: &[u8]) -> Result<LinkFrame<'_>, LinkError> {
    let (family_bytes, payload) = data
        .split_first_chunk::<LOOPBACK_HEADER_LEN>()
        .ok_or(LinkError::Truncated)?;
    // LINKTYPE_NULL uses the writer's byte order and LINKTYPE_LOOP uses big endian; every family
    // value fits in 16 bits, so whichever order gives a small number is the right one.
    let little = u32::from_le_bytes(*family_bytes);
    let family = if little > 0xffff {
        u32::from_be_bytes(*family_bytes)
    } else {
        little
    };
    let network = match family {
        AF_INET => Network::Ipv4,
        AF_INET6_LINUX | AF_INET6_NETBSD_OPENBSD | AF_INET6_FREEBSD | AF_INET6_DARWIN => {
            Network::Ipv6
        }
        _ => return Err(LinkError::NotIp),
    };
    Ok(LinkFrame {
        network,
        payload,
        vlan: None,
    })
}

fn read_be_u16(data: &[u8], offset: usize) -> Option<u16> {
    let bytes = data.get(offset..)?.first_chunk::<2>()?;
    Some(u16::from_be_bytes(*bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ETH_IPV4: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00, 0x45, 0x00];

    #[test]
    fn ethernet_ipv4() {
        let frame = decode_link(linktype::ETHERNET, &ETH_IPV4).unwrap();
        assert_eq!(frame.network, Network::Ipv4);
        assert_eq!(frame.payload, &[0x45, 0x00]);
        assert_eq!(frame.vlan, None);
    }

    #[test]
    fn ethernet_truncated() {
        assert_eq!(
            decode_link(linktype::ETHERNET, &ETH_IPV4[..13]),
            Err(LinkError::Truncated)
        );
        assert_eq!(
            decode_link(linktype::ETHERNET, &[]),
            Err(LinkError::Truncated)
        );
    }

    #[test]
    fn ethernet_exactly_header_gives_empty_payload() {
        let frame = decode_link(linktype::ETHERNET, &ETH_IPV4[..14]).unwrap();
        assert!(frame.payload.is_empty());
    }

    #[test]
    fn ethernet_other_ethertypes_are_not_ip() {
        for ethertype in [0x0806u16, 0x88b5, 0x88cc, 0x0042] {
            let mut frame = ETH_IPV4;
            frame[12..14].copy_from_slice(&ethertype.to_be_bytes());
            assert_eq!(
                decode_link(linktype::ETHERNET, &frame),
                Err(LinkError::NotIp),
                "{ethertype:#x}"
            );
        }
    }

    #[test]
    fn vlan_single_and_stacked() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x81, 0x00, 0xe0, 0x64, 0x86, 0xdd, 0x60]);
        let decoded = decode_link(linktype::ETHERNET, &frame).unwrap();
        assert_eq!(decoded.network, Network::Ipv6);
        // PCP 7 bits must not leak into the id.
        assert_eq!(decoded.vlan, Some(100));
        assert_eq!(decoded.payload, &[0x60]);

        for outer in [[0x88, 0xa8], [0x91, 0x00]] {
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(&outer);
            frame.extend_from_slice(&[0x00, 0x0a, 0x81, 0x00, 0x0f, 0xff, 0x08, 0x00, 0x45]);
            let decoded = decode_link(linktype::ETHERNET, &frame).unwrap();
            assert_eq!(decoded.network, Network::Ipv4);
            assert_eq!(decoded.vlan, Some(10));
            assert_eq!(decoded.payload, &[0x45]);
        }
    }

    #[test]
    fn vlan_tag_truncated() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x64, 0x08]);
        assert_eq!(
            decode_link(linktype::ETHERNET, &frame),
            Err(LinkError::Truncated)
        );
    }

    #[test]
    fn linux_sll() {
        let mut frame = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        frame.push(0x45);
        let decoded = decode_link(linktype::LINUX_SLL, &frame).unwrap();
        assert_eq!(decoded.network, Network::Ipv4);
        assert_eq!(decoded.payload, &[0x45]);
        assert_eq!(
            decode_link(linktype::LINUX_SLL, &frame[..15]),
            Err(LinkError::Truncated)
        );
        frame[14..16].copy_from_slice(&[0x00, 0x04]);
        assert_eq!(
            decode_link(linktype::LINUX_SLL, &frame),
            Err(LinkError::NotIp)
        );
    }

    #[test]
    fn linux_sll2() {
        let mut frame = vec![
            0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        frame.push(0x60);
        let decoded = decode_link(linktype::LINUX_SLL2, &frame).unwrap();
        assert_eq!(decoded.network, Network::Ipv6);
        assert_eq!(decoded.payload, &[0x60]);
        assert_eq!(
            decode_link(linktype::LINUX_SLL2, &frame[..19]),
            Err(LinkError::Truncated)
        );
    }

    #[test]
    fn raw_ip_variants() {
        let data = [0x45, 0, 0, 20];
        for lt in [linktype::RAW, linktype::RAW_OPENBSD, linktype::RAW_BSDOS] {
            let decoded = decode_link(lt, &data).unwrap();
            assert_eq!(decoded.network, Network::AnyIp);
            assert_eq!(decoded.payload, &data);
        }
        assert_eq!(
            decode_link(linktype::IPV4, &data).unwrap().network,
            Network::Ipv4
        );
        assert_eq!(
            decode_link(linktype::IPV6, &data).unwrap().network,
            Network::Ipv6
        );
    }

    #[test]
    fn loopback_both_byte_orders() {
        let cases: [([u8; 4], Network); 6] = [
            ([2, 0, 0, 0], Network::Ipv4),
            ([0, 0, 0, 2], Network::Ipv4),
            ([30, 0, 0, 0], Network::Ipv6),
            ([0, 0, 0, 24], Network::Ipv6),
            ([28, 0, 0, 0], Network::Ipv6),
            ([10, 0, 0, 0], Network::Ipv6),
        ];
        for (header, network) in cases {
            let mut frame = header.to_vec();
            frame.push(0x99);
            for lt in [linktype::NULL, linktype::LOOP] {
                let decoded = decode_link(lt, &frame).unwrap();
                assert_eq!(decoded.network, network, "{header:?}");
                assert_eq!(decoded.payload, &[0x99]);
            }
        }
        assert_eq!(
            decode_link(linktype::NULL, &[7, 0, 0, 0, 0x45]),
            Err(LinkError::NotIp)
        );
        assert_eq!(
            decode_link(linktype::LOOP, &[0, 0, 2]),
            Err(LinkError::Truncated)
        );
    }

    #[test]
    fn unknown_linktype() {
        assert_eq!(decode_link(147, &ETH_IPV4), Err(LinkError::NotIp));
    }
}
