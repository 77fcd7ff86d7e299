//! RTP view (RFC 3550 §5.1) and the first-byte demultiplexer for a shared media port
//! (RFC 7983, RFC 5761), following metrics-spec §1.2–1.3.
//!
//! `RtpPacket::new_checked` applies exactly the structural checks 1–6 of metrics-spec §1.2; the
//! accessors cannot fail afterwards. This module must not keep stream state, interpret payload
//! types, allocate or copy packet bytes.

use thiserror::Error;

const FIXED_HEADER_LEN: usize = 12;
const CSRC_LEN: usize = 4;
const EXTENSION_HEADER_LEN: usize = 4;
const RTP_VERSION: u8 = 2;
/// Second octets 192..=223 are RTCP packet types on a muxed port (RFC 5761 §4).
const RTCP_SECOND_BYTE: std::ops::RangeInclusive<u8> = 192..=223;

/// What a UDP payload on a media port is, judged by its first two octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Stun,
    Zrtp,
    Dtls,
    TurnChannel,
    Rtp,
    Rtcp,
    Other,
}

/// metrics-spec §1.3 steps 1–2. Says nothing about validity: RTP and RTCP still need their
/// checked constructors.
pub fn classify(udp_payload: &[u8]) -> MediaKind {
    match udp_payload {
        [0..=3, ..] => MediaKind::Stun,
        [16..=19, ..] => MediaKind::Zrtp,
        [20..=63, ..] => MediaKind::Dtls,
        [64..=79, ..] => MediaKind::TurnChannel,
        [128..=191, second, ..] if RTCP_SECOND_BYTE.contains(second) => MediaKind::Rtcp,
        [128..=191, _, ..] => MediaKind::Rtp,
        _ => MediaKind::Other,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum RtpError {
    #[error("shorter than the 12-octet rtp header")]
    TooShort,
    #[error("rtp version is not 2")]
    BadVersion,
    #[error("second octet is an rtcp packet type")]
    RtcpPacketType,
    #[error("csrc list runs past the packet")]
    CsrcOverrun,
    #[error("header extension runs past the packet")]
    ExtensionOverrun,
    #[error("padding count is zero or runs into the header")]
    BadPadding,
}

/// Checked RTP view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    fixed: &'a [u8; FIXED_HEADER_LEN],
    buffer: &'a [u8],
    header_len: usize,
    padding_len: usize,
}

impl<'a> RtpPacket<'a> {
    /// metrics-spec §1.2 checks 1–6.
    pub fn new_checked(buffer: &'a [u8]) -> Result<Self, RtpError> {
        let fixed = buffer
            .first_chunk::<FIXED_HEADER_LEN>()
            .ok_or(RtpError::TooShort)?;
        let [first, second, ..] = *fixed;
        if first >> 6 != RTP_VERSION {
            return Err(RtpError::BadVersion);
        }
        if RTCP_SECOND_BYTE.contains(&second) {
            return Err(RtpError::RtcpPacketType);
        }
        let csrc_end = FIXED_HEADER_LEN + CSRC_LEN * usize::from(first & 0x0f);
        if csrc_end > buffer.len() {
            return Err(RtpError::CsrcOverrun);
        }
        let header_len = if first & 0x10 != 0 {
            let extension_words = buffer
                .get(csrc_end..)
                .and_then(|rest| rest.first_chunk::<EXTENSION_HEADER_LEN>())
                .map(|header| usize::from(u16::from_be_bytes([header[2], header[3]])))
                .ok_or(RtpError::ExtensionOverrun)?;
            let end = csrc_end + EXTENSION_HEADER_LEN + 4 * extension_words;
            if end > buffer.len() {
                return Err(RtpError::ExtensionOverrun);
            }
            end
        } else {
            csrc_end
        };
        let padding_len = if first & 0x20 != 0 {
            let count = buffer.last().map_or(0, |&count| usize::from(count));
            if count == 0 || header_len + count > buffer.len() {
                return Err(RtpError::BadPadding);
            }
            count
        } else {
            0
        };
        Ok(Self {
            fixed,
            buffer,
            header_len,
            padding_len,
        })
    }

    pub fn version(&self) -> u8 {
        self.fixed[0] >> 6
    }

    pub fn padding(&self) -> bool {
        self.fixed[0] & 0x20 != 0
    }

    pub fn extension(&self) -> bool {
        self.fixed[0] & 0x10 != 0
    }

    pub fn csrc_count(&self) -> u8 {
        self.fixed[0] & 0x0f
    }

    pub fn marker(&self) -> bool {
        self.fixed[1] & 0x80 != 0
    }

    pub fn payload_type(&self) -> u8 {
        self.fixed[1] & 0x7f
    }

    pub fn sequence_number(&self) -> u16 {
        u16::from_be_bytes([self.fixed[2], self.fixed[3]])
    }

    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.fixed[4], self.fixed[5], self.fixed[6], self.fixed[7]])
    }

    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.fixed[8], self.fixed[9], self.fixed[10], self.fixed[11]])
    }

    /// The `index`-th contributing source, `None` past the CSRC count.
    pub fn csrc(&self, index: usize) -> Option<u32> {
        if index >= usize::from(self.csrc_count()) {
            return None;
        }
        let start = FIXED_HEADER_LEN.checked_add(index.checked_mul(CSRC_LEN)?)?;
        let bytes = self.buffer.get(start..)?.first_chunk::<CSRC_LEN>()?;
        Some(u32::from_be_bytes(*bytes))
    }

    /// `(profile, data)` of the header extension; `data` excludes the 4-octet extension header.
    pub fn extension_header(&self) -> Option<(u16, &'a [u8])> {
        if !self.extension() {
            return None;
        }
        let start = FIXED_HEADER_LEN + CSRC_LEN * usize::from(self.csrc_count());
        let header = self.buffer.get(start..)?.first_chunk::<2>()?;
        let data = self
            .buffer
            .get(start + EXTENSION_HEADER_LEN..self.header_len)?;
        Some((u16::from_be_bytes(*header), data))
    }

    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Padding octets at the end, the count octet included (0 when P = 0).
    pub fn padding_len(&self) -> usize {
        self.padding_len
    }

    /// The payload without header and padding (possibly empty).
    pub fn payload(&self) -> &'a [u8] {
        let end = self.buffer.len().saturating_sub(self.padding_len);
        self.buffer.get(self.header_len..end).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::build::{self, RtpHeader};
    use super::*;
    use proptest::prelude::*;

    /// V=2, no P/X/CC, M=1, PT=0, seq 0x1234, ts 0xdeadbeef, SSRC 0x01020304, payload 4 octets.
    const PCMU: [u8; 16] = [
        0x80, 0x80, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xff, 0xfe, 0x7f,
        0x00,
    ];

    #[test]
    fn deconstruct_simple() {
        let packet = RtpPacket::new_checked(&PCMU).unwrap();
        assert_eq!(packet.version(), 2);
        assert!(!packet.padding());
        assert!(!packet.extension());
        assert_eq!(packet.csrc_count(), 0);
        assert!(packet.marker());
        assert_eq!(packet.payload_type(), 0);
        assert_eq!(packet.sequence_number(), 0x1234);
        assert_eq!(packet.timestamp(), 0xdead_beef);
        assert_eq!(packet.ssrc(), 0x0102_0304);
        assert_eq!(packet.csrc(0), None);
        assert_eq!(packet.extension_header(), None);
        assert_eq!(packet.header_len(), 12);
        assert_eq!(packet.padding_len(), 0);
        assert_eq!(packet.payload(), &[0xff, 0xfe, 0x7f, 0x00]);
    }

    #[test]
    fn deconstruct_csrc_extension_padding() {
        let bytes = [
            0xb2, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0xa0, 0xaa, 0xbb, 0xcc, 0xdd, // fixed
            0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22, // 2 CSRCs
            0xbe, 0xde, 0x00, 0x01, 0x10, 0x7f, 0x00, 0x00, // one-byte extension, 1 word
            0x01, 0x02, 0x03, // payload
            0x00, 0x00, 0x03, // padding, count 3
        ];
        let packet = RtpPacket::new_checked(&bytes).unwrap();
        assert!(packet.padding() && packet.extension());
        assert_eq!(packet.csrc_count(), 2);
        assert!(!packet.marker());
        assert_eq!(packet.payload_type(), 8);
        assert_eq!(packet.sequence_number(), 1);
        assert_eq!(packet.timestamp(), 160);
        assert_eq!(packet.ssrc(), 0xaabb_ccdd);
        assert_eq!(packet.csrc(0), Some(0x1111_1111));
        assert_eq!(packet.csrc(1), Some(0x2222_2222));
        assert_eq!(packet.csrc(2), None);
        assert_eq!(
            packet.extension_header(),
            Some((0xbede, &[0x10, 0x7f, 0x00, 0x00][..]))
        );
        assert_eq!(packet.header_len(), 28);
        assert_eq!(packet.padding_len(), 3);
        assert_eq!(packet.payload(), &[1, 2, 3]);
    }

    #[test]
    fn payload_lengths_zero_and_six() {
        let empty = RtpPacket::new_checked(&PCMU[..12]).unwrap();
        assert!(empty.payload().is_empty());
        let mut six = PCMU[..12].to_vec();
        six.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(
            RtpPacket::new_checked(&six).unwrap().payload(),
            &[1, 2, 3, 4, 5, 6]
        );
    }

    #[test]
    fn impossible_shapes() {
        assert_eq!(RtpPacket::new_checked(&PCMU[..11]), Err(RtpError::TooShort));
        assert_eq!(RtpPacket::new_checked(&[]), Err(RtpError::TooShort));

        let mut version1 = PCMU;
        version1[0] = 0x40;
        assert_eq!(RtpPacket::new_checked(&version1), Err(RtpError::BadVersion));

        for second in [192u8, 200, 223] {
            let mut rtcp_like = PCMU;
            rtcp_like[1] = second;
            assert_eq!(
                RtpPacket::new_checked(&rtcp_like),
                Err(RtpError::RtcpPacketType)
            );
        }
        let mut pt_95_no_marker = PCMU;
        pt_95_no_marker[1] = 95;
        assert!(RtpPacket::new_checked(&pt_95_no_marker).is_ok());

        // CC=15 needs 72 octets.
        let mut csrc15 = vec![0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        csrc15.resize(71, 0);
        assert_eq!(RtpPacket::new_checked(&csrc15), Err(RtpError::CsrcOverrun));
        csrc15.push(0);
        assert_eq!(RtpPacket::new_checked(&csrc15).unwrap().header_len(), 72);

        // X=1 without room for the extension header, and with a length past the end.
        let mut no_ext_header = PCMU[..14].to_vec();
        no_ext_header[0] = 0x90;
        assert_eq!(
            RtpPacket::new_checked(&no_ext_header),
            Err(RtpError::ExtensionOverrun)
        );
        let mut long_ext = PCMU[..12].to_vec();
        long_ext[0] = 0x90;
        long_ext.extend_from_slice(&[0xbe, 0xde, 0x00, 0x02, 0, 0, 0, 0]);
        assert_eq!(
            RtpPacket::new_checked(&long_ext),
            Err(RtpError::ExtensionOverrun)
        );

        // P=1: count 255 larger than the payload, and count 0.
        let mut pad255 = PCMU;
        pad255[0] = 0xa0;
        pad255[15] = 255;
        assert_eq!(RtpPacket::new_checked(&pad255), Err(RtpError::BadPadding));
        let mut pad0 = PCMU;
        pad0[0] = 0xa0;
        pad0[15] = 0;
        assert_eq!(RtpPacket::new_checked(&pad0), Err(RtpError::BadPadding));
        // Padding that eats the whole payload is legal.
        let mut pad4 = PCMU;
        pad4[0] = 0xa0;
        pad4[15] = 4;
        let packet = RtpPacket::new_checked(&pad4).unwrap();
        assert!(packet.payload().is_empty());
        assert_eq!(packet.padding_len(), 4);
        pad4[15] = 5;
        assert_eq!(RtpPacket::new_checked(&pad4), Err(RtpError::BadPadding));
    }

    #[test]
    fn classify_first_bytes() {
        let cases: [(&[u8], MediaKind); 14] = [
            (&[], MediaKind::Other),
            (&[0x00, 0x01], MediaKind::Stun),
            (&[0x03], MediaKind::Stun),
            (&[0x04], MediaKind::Other),
            (&[16], MediaKind::Zrtp),
            (&[19], MediaKind::Zrtp),
            (&[20], MediaKind::Dtls),
            (&[63], MediaKind::Dtls),
            (&[64], MediaKind::TurnChannel),
            (&[79], MediaKind::TurnChannel),
            (&[0x80], MediaKind::Other),
            (&[0x80, 0x00], MediaKind::Rtp),
            (&[0x80, 191], MediaKind::Rtp),
            (&[0xc0, 0x00], MediaKind::Other),
        ];
        for (bytes, kind) in cases {
            assert_eq!(classify(bytes), kind, "{bytes:?}");
        }
        for second in 192..=223u8 {
            assert_eq!(classify(&[0x81, second]), MediaKind::Rtcp);
        }
        assert_eq!(classify(&[0x80, 224]), MediaKind::Rtp);
        assert_eq!(classify(&[0xbf, 200]), MediaKind::Rtcp);
    }

    #[test]
    fn round_trip_with_csrcs_extension_padding() {
        let header = RtpHeader {
            payload_type: 111,
            marker: true,
            sequence: 65535,
            timestamp: 0xffff_ff00,
            ssrc: 0x1234_5678,
            csrcs: vec![1, 2, 3],
            extension: Some((0x1000, vec![9, 8, 7, 6, 5, 4, 3, 2])),
            padding: 7,
        };
        let bytes = build::rtp_packet(&header, b"opus frame");
        let packet = RtpPacket::new_checked(&bytes).unwrap();
        assert_eq!(classify(&bytes), MediaKind::Rtp);
        assert_eq!(packet.payload_type(), 111);
        assert!(packet.marker());
        assert_eq!(packet.sequence_number(), 65535);
        assert_eq!(packet.timestamp(), 0xffff_ff00);
        assert_eq!(packet.ssrc(), 0x1234_5678);
        assert_eq!(
            (0..3).map(|i| packet.csrc(i)).collect::<Vec<_>>(),
            vec![Some(1), Some(2), Some(3)]
        );
        assert_eq!(
            packet.extension_header(),
            Some((0x1000, &[9, 8, 7, 6, 5, 4, 3, 2][..]))
        );
        assert_eq!(packet.padding_len(), 7);
        assert_eq!(packet.payload(), b"opus frame");
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = classify(&data);
            if let Ok(packet) = RtpPacket::new_checked(&data) {
                prop_assert!(packet.header_len() + packet.padding_len() <= data.len());
                prop_assert_eq!(
                    packet.payload().len(),
                    data.len() - packet.header_len() - packet.padding_len()
                );
                for index in 0..17 {
                    let _ = packet.csrc(index);
                }
                let _ = packet.extension_header();
                prop_assert_eq!(classify(&data), MediaKind::Rtp);
            }
        }

        #[test]
        fn round_trip(
            payload_type in 0u8..128,
            marker in any::<bool>(),
            sequence in any::<u16>(),
            timestamp in any::<u32>(),
            ssrc in any::<u32>(),
            csrcs in proptest::collection::vec(any::<u32>(), 0..16),
            extension in proptest::option::of((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..5).prop_map(|words| {
                words.iter().flat_map(|&w| [w; 4]).collect::<Vec<u8>>()
            }))),
            padding in any::<u8>(),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            // PT 64..=95 with M=1 is reserved for RTCP on a muxed port.
            prop_assume!(!(marker && (64..=95).contains(&payload_type)));
            let header = RtpHeader { payload_type, marker, sequence, timestamp, ssrc, csrcs: csrcs.clone(), extension: extension.clone(), padding };
            let bytes = build::rtp_packet(&header, &payload);
            let packet = RtpPacket::new_checked(&bytes).unwrap();
            prop_assert_eq!(packet.payload_type(), payload_type);
            prop_assert_eq!(packet.marker(), marker);
            prop_assert_eq!(packet.sequence_number(), sequence);
            prop_assert_eq!(packet.timestamp(), timestamp);
            prop_assert_eq!(packet.ssrc(), ssrc);
            prop_assert_eq!(usize::from(packet.csrc_count()), csrcs.len());
            for (index, csrc) in csrcs.iter().enumerate() {
                prop_assert_eq!(packet.csrc(index), Some(*csrc));
            }
            prop_assert_eq!(packet.extension_header(), extension.as_ref().map(|(profile, data)| (*profile, &data[..])));
            prop_assert_eq!(packet.padding_len(), usize::from(padding));
            prop_assert_eq!(packet.payload(), &payload[..]);
        }
    }
}
