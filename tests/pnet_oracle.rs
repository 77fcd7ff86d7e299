//! Our L2–L4 views against pnet's (`pnet_packet`, the user's choice, which our own views
//! replaced for speed): on random Ethernet/VLAN frames carrying IPv4 or IPv6 UDP, both must read
//! the same addresses, ports and payload.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use pnet_packet::Packet;
use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::udp::UdpPacket;
use pnet_packet::vlan::VlanPacket;
use proptest::prelude::*;
use voqa_agent::decode::build::{LinkSpec, udp_frame};
use voqa_agent::decode::decode_udp;

/// pnet's reading of a frame: (src, dst, vlan, payload).
fn pnet_read(frame: &[u8]) -> Option<(SocketAddr, SocketAddr, Option<u16>, Vec<u8>)> {
    let eth = EthernetPacket::new(frame)?;
    let (mut ethertype, mut rest, mut vlan) = (eth.get_ethertype(), eth.payload().to_vec(), None);
    while [EtherTypes::Vlan, EtherTypes::QinQ, EtherTypes::PBridge].contains(&ethertype) {
        let tag = VlanPacket::new(&rest)?;
        vlan = vlan.or(Some(tag.get_vlan_identifier()));
        ethertype = tag.get_ethertype();
        rest = tag.payload().to_vec();
    }
    let (src_ip, dst_ip, l4): (IpAddr, IpAddr, Vec<u8>) = if ethertype == EtherTypes::Ipv4 {
        let ip = Ipv4Packet::new(&rest)?;
        let hl = usize::from(ip.get_header_length()) * 4;
        let total = usize::from(ip.get_total_length());
        (
            ip.get_source().into(),
            ip.get_destination().into(),
            rest.get(hl..total)?.to_vec(),
        )
    } else {
        let ip = Ipv6Packet::new(&rest)?;
        let len = usize::from(ip.get_payload_length());
        (
            ip.get_source().into(),
            ip.get_destination().into(),
            rest.get(40..40 + len)?.to_vec(),
        )
    };
    let udp = UdpPacket::new(&l4)?;
    let payload = l4.get(8..usize::from(udp.get_length()))?.to_vec();
    Some((
        SocketAddr::new(src_ip, udp.get_source()),
        SocketAddr::new(dst_ip, udp.get_destination()),
        vlan,
        payload,
    ))
}

fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

proptest! {
    #[test]
    fn our_views_read_what_pnet_reads(
        v6 in any::<bool>(),
        a in addr(), b in addr(),
        sport in 1u16.., dport in 1u16..,
        vlans in proptest::collection::vec(0u16..4095, 0..3),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        // Both ends of one IP version.
        let (src_ip, dst_ip) = match (v6, a, b) {
            (false, IpAddr::V4(x), IpAddr::V4(y)) => (IpAddr::V4(x), IpAddr::V4(y)),
            (false, _, _) => (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))),
            (true, IpAddr::V6(x), IpAddr::V6(y)) => (IpAddr::V6(x), IpAddr::V6(y)),
            (true, _, _) => (IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        };
        let src = SocketAddr::new(src_ip, sport);
        let dst = SocketAddr::new(dst_ip, dport);
        let link = if vlans.is_empty() { LinkSpec::Ethernet } else { LinkSpec::Vlan(vlans.clone()) };
        let frame = udp_frame(&link, src, dst, &payload);
        let ours = decode_udp(1, &frame, frame.len() as u32).expect("our views decode a valid frame");
        let theirs = pnet_read(&frame).expect("pnet decodes a valid frame");
        prop_assert_eq!(ours.src, theirs.0);
        prop_assert_eq!(ours.dst, theirs.1);
        prop_assert_eq!(ours.vlan, theirs.2);
        prop_assert_eq!(ours.payload, &theirs.3[..]);
    }
}
