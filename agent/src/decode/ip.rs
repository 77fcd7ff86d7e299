//! IPv4 and IPv6 views: addresses, upper-layer protocol, fragment status and the payload range.
//!
//! The fixed header is held as an array reference obtained by a checked split, so field reads
//! are constant indexes that cannot fail; the payload range is computed from validated lengths.
//! (These views replaced pnet's: see the README's performance table.) The views are "lax" in one way
//! only: a packet whose length field promises more bytes than were captured is accepted, with
//! `payload()` holding the captured part and `is_truncated()` true, so that the caller can
//! classify such a packet (fragment? not UDP?) before deciding it was cut by the snap length.
//! This module must not verify checksums (capture hosts offload them), reassemble fragments,
//! allocate or copy packet bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// IP protocol / IPv6 next-header numbers the decoder acts on.
pub mod protocol {
    pub const HOP_BY_HOP: u8 = 0;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const DESTINATION_OPTIONS: u8 = 60;
}

const IPV4_MIN_HEADER_LEN: usize = 20;
const IPV4_MIN_IHL: u8 = 5;
const IPV4_FLAG_MORE_FRAGMENTS: u8 = 0b001;
const IPV6_HEADER_LEN: usize = 40;
const IPV6_FRAGMENT_HEADER_LEN: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum IpError {
    /// The captured bytes end inside an IP header (fixed part, options or extension header).
    #[error("ip header truncated")]
    Truncated,
    #[error("unexpected ip version")]
    BadVersion,
    #[error("ipv4 header length below 20 octets")]
    BadHeaderLength,
    #[error("ipv4 total length shorter than its header")]
    BadTotalLength,
    #[error("ipv6 extension header runs past the payload length")]
    ExtensionOverrun,
}

/// Checked IPv4 view.
pub struct Ipv4<'a> {
    /// The fixed header (array reference: constant indexes cannot fail).
    packet: &'a [u8; IPV4_MIN_HEADER_LEN],
    payload: &'a [u8],
    header_len: usize,
    total_len: usize,
    truncated: bool,
}

impl<'a> Ipv4<'a> {
    /// Validates version, IHL and total length against each other and against `buffer`.
    /// Bytes after the total length (Ethernet padding, trailers) are ignored.
    pub fn new_checked(buffer: &'a [u8]) -> Result<Self, IpError> {
        let Some(packet) = buffer.first_chunk::<IPV4_MIN_HEADER_LEN>() else {
            return Err(IpError::Truncated);
        };
        if packet[0] >> 4 != 4 {
            return Err(IpError::BadVersion);
        }
        let ihl = packet[0] & 0x0f;
        if ihl < IPV4_MIN_IHL {
            return Err(IpError::BadHeaderLength);
        }
        let header_len = usize::from(ihl) * 4;
        if buffer.len() < header_len {
            return Err(IpError::Truncated);
        }
        let total_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
        if total_len < header_len {
            return Err(IpError::BadTotalLength);
        }
        let truncated = total_len > buffer.len();
        let payload = buffer
            .get(header_len..total_len.min(buffer.len()))
            .ok_or(IpError::Truncated)?;
        Ok(Self {
            packet,
            payload,
            header_len,
            total_len,
            truncated,
        })
    }

    pub fn source(&self) -> Ipv4Addr {
        let p = self.packet;
        Ipv4Addr::new(p[12], p[13], p[14], p[15])
    }

    pub fn destination(&self) -> Ipv4Addr {
        let p = self.packet;
        Ipv4Addr::new(p[16], p[17], p[18], p[19])
    }

    pub fn protocol(&self) -> u8 {
        self.packet[9]
    }

    /// The identification field: with source, destination and protocol it names the datagram
    /// a fragment belongs to (RFC 791).
    pub fn identification(&self) -> u16 {
        u16::from_be_bytes([self.packet[4], self.packet[5]])
    }

    pub fn more_fragments(&self) -> bool {
        (self.packet[6] >> 5) & IPV4_FLAG_MORE_FRAGMENTS != 0
    }

    /// Fragment offset in 8-octet units.
    pub fn fragment_offset(&self) -> u16 {
        u16::from_be_bytes([self.packet[6], self.packet[7]]) & 0x1fff
    }

    /// True for every fragment, the first one included.
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.fragment_offset() != 0
    }

    pub fn header_len(&self) -> usize {
        self.header_len
    }

    pub fn total_len(&self) -> usize {
        self.total_len
    }

    /// True when the total length promises more bytes than were captured.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The captured part of the payload (never beyond the total length).
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// The IPv6 Fragment extension header (RFC 8200 §4.5), decoded from its 8 octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6FragmentHeader {
    /// Protocol of the fragmentable part (the reassembled packet's upper layer or the first
    /// extension header after the fragment header).
    pub next_header: u8,
    /// Fragment offset in 8-octet units (13 bits).
    pub offset_units: u16,
    /// The M flag: more fragments follow.
    pub more_fragments: bool,
    pub identification: u32,
}

impl Ipv6FragmentHeader {
    fn from_bytes(bytes: [u8; IPV6_FRAGMENT_HEADER_LEN]) -> Self {
        let [next_header, _reserved, high, low, a, b, c, d] = bytes;
        let offset_and_flags = u16::from_be_bytes([high, low]);
        Ipv6FragmentHeader {
            next_header,
            // Upper 13 bits: offset; bit 0: more fragments.
            offset_units: offset_and_flags >> 3,
            more_fragments: offset_and_flags & 1 != 0,
            identification: u32::from_be_bytes([a, b, c, d]),
        }
    }

    /// Offset 0 and M = 0: a whole packet that merely carries a fragment header (RFC 6946).
    pub fn is_atomic(&self) -> bool {
        self.offset_units == 0 && !self.more_fragments
    }
}

/// Checked IPv6 view. Hop-by-hop, routing and destination-options headers are skipped; an
/// atomic fragment header (offset 0, M = 0) is skipped too, any other ends the walk.
pub struct Ipv6<'a> {
    /// The fixed header (array reference: constant indexes cannot fail).
    packet: &'a [u8; IPV6_HEADER_LEN],
    payload: &'a [u8],
    protocol: u8,
    /// The non-atomic fragment header that ended the walk, if any.
    fragment: Option<Ipv6FragmentHeader>,
    truncated: bool,
}

impl<'a> Ipv6<'a> {
    pub fn new_checked(buffer: &'a [u8]) -> Result<Self, IpError> {
        let Some(packet) = buffer.first_chunk::<IPV6_HEADER_LEN>() else {
            return Err(IpError::Truncated);
        };
        if buffer.len() < IPV6_HEADER_LEN {
            return Err(IpError::Truncated);
        }
        if packet[0] >> 4 != 6 {
            return Err(IpError::BadVersion);
        }
        // Jumbograms (payload length 0 plus a hop-by-hop option) are not supported: their
        // extension header overruns the declared length and is reported as such.
        let declared_end =
            IPV6_HEADER_LEN + usize::from(u16::from_be_bytes([packet[4], packet[5]]));
        let captured_end = declared_end.min(buffer.len());
        let mut next_header = packet[6];
        let mut offset = IPV6_HEADER_LEN;
        let mut fragment = None;
        // Every extension header is at least 8 octets long, so the walk ends.
        loop {
            match next_header {
                protocol::HOP_BY_HOP | protocol::ROUTING | protocol::DESTINATION_OPTIONS => {
                    let [next, length_units] =
                        read_extension_bytes::<2>(buffer, offset, declared_end, captured_end)?;
                    let length = (usize::from(length_units) + 1) * 8;
                    let end = offset + length;
                    if end > declared_end {
                        return Err(IpError::ExtensionOverrun);
                    }
                    if end > captured_end {
                        return Err(IpError::Truncated);
                    }
                    next_header = next;
                    offset = end;
                }
                protocol::FRAGMENT => {
                    let header = Ipv6FragmentHeader::from_bytes(read_extension_bytes::<
                        IPV6_FRAGMENT_HEADER_LEN,
                    >(
                        buffer,
                        offset,
                        declared_end,
                        captured_end,
                    )?);
                    next_header = header.next_header;
                    offset += IPV6_FRAGMENT_HEADER_LEN;
                    if !header.is_atomic() {
                        fragment = Some(header);
                        break;
                    }
                }
                _ => break,
            }
        }
        let payload = buffer
            .get(offset..captured_end)
            .ok_or(IpError::ExtensionOverrun)?;
        Ok(Self {
            packet,
            payload,
            protocol: next_header,
            fragment,
            truncated: declared_end > buffer.len(),
        })
    }

    pub fn source(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.packet[8..24]);
        Ipv6Addr::from(a)
    }

    pub fn destination(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.packet[24..40]);
        Ipv6Addr::from(a)
    }

    /// Upper-layer protocol after the skipped extension headers. For a fragment this is the
    /// fragment header's next header (the protocol of the reassembled packet).
    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    /// True when a non-atomic fragment header was found.
    pub fn is_fragment(&self) -> bool {
        self.fragment.is_some()
    }

    /// The non-atomic fragment header, for a fragment; `payload()` is then the fragment's data
    /// (the bytes after the fragment header).
    pub fn fragment_header(&self) -> Option<Ipv6FragmentHeader> {
        self.fragment
    }

    /// True when the payload length promises more bytes than were captured.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The captured part of the upper-layer payload (never beyond the payload length).
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// The first `N` bytes of an extension header at `offset`, distinguishing a header that runs past
/// the declared payload (malformed) from one cut by the capture (truncated).
fn read_extension_bytes<const N: usize>(
    buffer: &[u8],
    offset: usize,
    declared_end: usize,
    captured_end: usize,
) -> Result<[u8; N], IpError> {
    let end = offset + N;
    if end > declared_end {
        return Err(IpError::ExtensionOverrun);
    }
    if end > captured_end {
        return Err(IpError::Truncated);
    }
    buffer
        .get(offset..)
        .and_then(|rest| rest.first_chunk::<N>())
        .copied()
        .ok_or(IpError::Truncated)
}

/// The upper-layer protocol and payload of a reassembled IPv6 fragmentable part: the routing
/// and destination-options headers that may follow the fragment header (RFC 8200 §4.1) are
/// skipped. `next_header` is the fragment header's. Another fragment header is not walked into
/// (nested fragmentation is not a thing): its number comes back as the protocol.
pub fn ipv6_upper_layer(mut next_header: u8, payload: &[u8]) -> Result<(u8, &[u8]), IpError> {
    let mut offset = 0usize;
    // Every extension header is at least 8 octets long, so the walk ends.
    while matches!(
        next_header,
        protocol::HOP_BY_HOP | protocol::ROUTING | protocol::DESTINATION_OPTIONS
    ) {
        let [next, length_units] =
            read_extension_bytes::<2>(payload, offset, payload.len(), payload.len())?;
        let end = offset + (usize::from(length_units) + 1) * 8;
        if end > payload.len() {
            return Err(IpError::ExtensionOverrun);
        }
        next_header = next;
        offset = end;
    }
    let rest = payload.get(offset..).ok_or(IpError::ExtensionOverrun)?;
    Ok((next_header, rest))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// 10.0.0.1 → 10.0.0.2, UDP, total length 28, id 0x1234, DF, TTL 64 (checksum not checked).
    const IPV4_UDP: [u8; 28] = [
        0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 10, 0, 0, 1, 10, 0,
        0, 2, 0x13, 0x88, 0x13, 0x89, 0x00, 0x08, 0x00, 0x00,
    ];

    fn ipv6_header(next_header: u8, payload_len: u16) -> Vec<u8> {
        let mut packet = vec![0x60, 0, 0, 0];
        packet.extend_from_slice(&payload_len.to_be_bytes());
        packet.extend_from_slice(&[next_header, 64]);
        packet.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
        packet.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets());
        packet
    }

    #[test]
    fn ipv4_fields() {
        let ip = Ipv4::new_checked(&IPV4_UDP).unwrap();
        assert_eq!(ip.source(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(ip.destination(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(ip.protocol(), protocol::UDP);
        assert!(!ip.more_fragments());
        assert_eq!(ip.fragment_offset(), 0);
        assert!(!ip.is_fragment());
        assert_eq!(ip.header_len(), 20);
        assert_eq!(ip.total_len(), 28);
        assert!(!ip.is_truncated());
        assert_eq!(ip.payload(), &IPV4_UDP[20..]);
    }

    #[test]
    fn ipv4_padding_is_ignored() {
        let mut padded = IPV4_UDP.to_vec();
        padded.extend_from_slice(&[0xee; 18]);
        let ip = Ipv4::new_checked(&padded).unwrap();
        assert_eq!(ip.payload(), &IPV4_UDP[20..]);
    }

    #[test]
    fn ipv4_options_are_skipped() {
        let mut packet = IPV4_UDP.to_vec();
        packet[0] = 0x46;
        packet[3] = 32;
        packet.splice(20..20, [1, 1, 1, 0]);
        let ip = Ipv4::new_checked(&packet).unwrap();
        assert_eq!(ip.header_len(), 24);
        assert_eq!(ip.payload(), &IPV4_UDP[20..]);
    }

    #[test]
    fn ipv4_fragment_flags() {
        let mut packet = IPV4_UDP;
        packet[6] = 0x20; // MF, offset 0
        let ip = Ipv4::new_checked(&packet).unwrap();
        assert!(ip.more_fragments() && ip.is_fragment());
        packet[6..8].copy_from_slice(&[0x00, 0xb9]); // offset 185, last
        let ip = Ipv4::new_checked(&packet).unwrap();
        assert!(!ip.more_fragments());
        assert_eq!(ip.fragment_offset(), 185);
        assert!(ip.is_fragment());
    }

    #[test]
    fn ipv4_impossible_lengths() {
        assert_eq!(
            Ipv4::new_checked(&IPV4_UDP[..19]).err(),
            Some(IpError::Truncated)
        );
        let mut packet = IPV4_UDP;
        packet[0] = 0x75;
        assert_eq!(Ipv4::new_checked(&packet).err(), Some(IpError::BadVersion));
        for ihl in [0x43u8, 0x44] {
            let mut packet = IPV4_UDP;
            packet[0] = ihl;
            assert_eq!(
                Ipv4::new_checked(&packet).err(),
                Some(IpError::BadHeaderLength)
            );
        }
        let mut packet = IPV4_UDP;
        packet[0] = 0x4f; // 60-byte header in a 28-byte buffer
        assert_eq!(Ipv4::new_checked(&packet).err(), Some(IpError::Truncated));
        let mut packet = IPV4_UDP;
        packet[3] = 19;
        assert_eq!(
            Ipv4::new_checked(&packet).err(),
            Some(IpError::BadTotalLength)
        );
        let mut packet = IPV4_UDP;
        packet[3] = 40;
        let ip = Ipv4::new_checked(&packet).unwrap();
        assert!(ip.is_truncated());
        assert_eq!(ip.payload(), &IPV4_UDP[20..]);
    }

    #[test]
    fn ipv6_plain_udp() {
        let mut packet = ipv6_header(protocol::UDP, 8);
        packet.extend_from_slice(&[0x13, 0x88, 0x13, 0x89, 0, 8, 0, 0, 0xee, 0xee]);
        let ip = Ipv6::new_checked(&packet).unwrap();
        assert_eq!(ip.source(), Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(
            ip.destination(),
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)
        );
        assert_eq!(ip.protocol(), protocol::UDP);
        assert!(!ip.is_fragment());
        assert!(!ip.is_truncated());
        assert_eq!(ip.payload(), &packet[40..48]);
    }

    #[test]
    fn ipv6_extension_headers_skipped() {
        let mut packet = ipv6_header(protocol::HOP_BY_HOP, 8 + 16 + 8 + 8 + 8);
        packet.extend_from_slice(&[protocol::ROUTING, 0, 1, 4, 0, 0, 0, 0]);
        packet.extend_from_slice(&[protocol::DESTINATION_OPTIONS, 1, 0, 0, 0, 0, 0, 0]);
        packet.extend_from_slice(&[0; 8]);
        packet.extend_from_slice(&[protocol::FRAGMENT, 0, 1, 4, 0, 0, 0, 0]);
        packet.extend_from_slice(&[protocol::UDP, 0, 0, 0, 0, 0, 0, 9]); // atomic fragment
        packet.extend_from_slice(&[0x13, 0x88, 0x13, 0x89, 0, 8, 0, 0]);
        let ip = Ipv6::new_checked(&packet).unwrap();
        assert_eq!(ip.protocol(), protocol::UDP);
        assert!(!ip.is_fragment());
        assert_eq!(ip.payload(), &packet[80..]);
    }

    #[test]
    fn ipv6_fragments() {
        // (offset/flags word, is fragment): first (M=1), middle, last, atomic.
        for (word, expected) in [
            (0x0001u16, true),
            (0x00b9, true),
            (0x00b8, true),
            (0x0000, false),
        ] {
            let mut packet = ipv6_header(protocol::FRAGMENT, 16);
            packet.extend_from_slice(&[protocol::UDP, 0]);
            packet.extend_from_slice(&word.to_be_bytes());
            packet.extend_from_slice(&[0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]);
            let ip = Ipv6::new_checked(&packet).unwrap();
            assert_eq!(ip.is_fragment(), expected, "{word:#x}");
            assert_eq!(ip.protocol(), protocol::UDP);
        }
    }

    #[test]
    fn ipv6_upper_layer_not_udp() {
        for next in [
            protocol::AH,
            protocol::ESP,
            protocol::NO_NEXT_HEADER,
            protocol::TCP,
        ] {
            let mut packet = ipv6_header(next, 8);
            packet.extend_from_slice(&[0; 8]);
            assert_eq!(Ipv6::new_checked(&packet).unwrap().protocol(), next);
        }
    }

    #[test]
    fn ipv6_impossible_lengths() {
        let packet = ipv6_header(protocol::UDP, 0);
        assert_eq!(
            Ipv6::new_checked(&packet[..39]).err(),
            Some(IpError::Truncated)
        );
        let mut bad_version = packet.clone();
        bad_version[0] = 0x40;
        assert_eq!(
            Ipv6::new_checked(&bad_version).err(),
            Some(IpError::BadVersion)
        );
        // Extension header longer than the declared payload.
        let mut overrun = ipv6_header(protocol::HOP_BY_HOP, 8);
        overrun.extend_from_slice(&[protocol::UDP, 1, 0, 0, 0, 0, 0, 0]);
        overrun.extend_from_slice(&[0; 8]);
        assert_eq!(
            Ipv6::new_checked(&overrun).err(),
            Some(IpError::ExtensionOverrun)
        );
        // Extension header cut by the capture.
        let mut cut = ipv6_header(protocol::HOP_BY_HOP, 16);
        cut.extend_from_slice(&[protocol::UDP, 0, 0, 0]);
        assert_eq!(Ipv6::new_checked(&cut).err(), Some(IpError::Truncated));
        // Payload cut by the capture.
        let mut short = ipv6_header(protocol::UDP, 100);
        short.extend_from_slice(&[0; 8]);
        let ip = Ipv6::new_checked(&short).unwrap();
        assert!(ip.is_truncated());
        assert_eq!(ip.payload().len(), 8);
    }
}
