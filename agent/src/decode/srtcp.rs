//! SRTCP view (RFC 3711 §3.4) over an untrusted UDP payload: what the monitor can read of an
//! encrypted RTCP packet, which is only its first 8 bytes (version, type, length and sender
//! SSRC of the first RTCP packet) and the trailer word holding the E (encrypted) flag and the
//! 31-bit SRTCP index, found before an authentication tag whose length the SDP crypto suite
//! decides (0 after AEAD/GCM, 4 for HMAC-SHA1-32, 10 for HMAC-SHA1-80; an MKI is not supported).
//!
//! The view exists so that SRTCP is recognised and kept away from the round-trip estimate: the
//! rest of the packet is ciphertext and must never be read as report blocks. It does not
//! decrypt, authenticate or keep state, allocates nothing and never panics.

use thiserror::Error;

/// Authentication tag lengths tried by [`looks_like_srtcp`], in bytes.
pub const COMMON_TAG_LENGTHS: [usize; 3] = [0, 4, 10];

/// Largest SRTCP index [`looks_like_srtcp`] accepts. Senders start the index at 0 and add one
/// per packet (about one every 5 s): 2^24 is years of a session, and the top byte of the
/// trailer word is then exactly 0x80, which a random byte is once in 256.
pub const MAX_PLAUSIBLE_INDEX: u32 = (1 << 24) - 1;

/// Why a payload cannot be viewed as SRTCP with the given tag length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SrtcpError {
    #[error("shorter than an rtcp header, its first packet and the srtcp trailer")]
    TooShort,
    #[error("rtcp version is not 2")]
    BadVersion,
    #[error("first packet type is not an rtcp type (200-207)")]
    NotRtcp,
}

/// A checked SRTCP packet: clear first header, index trailer at a known tag length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtcpPacket<'a> {
    bytes: &'a [u8],
    /// Offset of the E||index word.
    trailer_at: usize,
}

impl<'a> SrtcpPacket<'a> {
    /// Views `payload` as SRTCP whose authentication tag is `tag_len` bytes: version 2, an RTCP
    /// packet type (SR, RR, SDES, BYE, APP, RTPFB, PSFB or XR: reduced-size RTCP, RFC 5506, may
    /// start with any), and room for the first packet (its clear length) before the trailer.
    pub fn new_checked(payload: &'a [u8], tag_len: usize) -> Result<Self, SrtcpError> {
        let header: [u8; 8] = payload
            .get(..8)
            .and_then(|h| h.try_into().ok())
            .ok_or(SrtcpError::TooShort)?;
        if header[0] >> 6 != 2 {
            return Err(SrtcpError::BadVersion);
        }
        if !(200..=207).contains(&header[1]) {
            return Err(SrtcpError::NotRtcp);
        }
        let first_len = (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
        let trailer_at = payload
            .len()
            .checked_sub(tag_len)
            .and_then(|n| n.checked_sub(4))
            .ok_or(SrtcpError::TooShort)?;
        if trailer_at < first_len {
            return Err(SrtcpError::TooShort);
        }
        Ok(SrtcpPacket {
            bytes: payload,
            trailer_at,
        })
    }

    /// Packet type of the first (clear) RTCP header.
    pub fn packet_type(&self) -> u8 {
        self.bytes.get(1).copied().unwrap_or(0)
    }

    /// Sender SSRC of the first packet (clear).
    pub fn ssrc(&self) -> u32 {
        self.word(4)
    }

    /// The E flag: the compound after the first 8 bytes is encrypted.
    pub fn encrypted(&self) -> bool {
        self.word(self.trailer_at) & 0x8000_0000 != 0
    }

    /// The 31-bit SRTCP index.
    pub fn index(&self) -> u32 {
        self.word(self.trailer_at) & 0x7fff_ffff
    }

    fn word(&self, at: usize) -> u32 {
        self.bytes
            .get(at..at.saturating_add(4))
            .and_then(|w| w.try_into().ok())
            .map_or(0, u32::from_be_bytes)
    }
}

/// SRTCP by its shape, for RTCP whose media was not announced (the SDP says it when it was):
/// for one of the [`COMMON_TAG_LENGTHS`], a checked [`SrtcpPacket`] that is encrypted with an
/// index up to [`MAX_PLAUSIBLE_INDEX`]. Meant for datagrams that already failed RTCP compound
/// validation, so that clear RTCP is never taken for SRTCP; unencrypted SRTCP (E = 0) is not
/// recognised by shape.
pub fn looks_like_srtcp(payload: &[u8]) -> bool {
    COMMON_TAG_LENGTHS.iter().any(|&tag| {
        SrtcpPacket::new_checked(payload, tag)
            .is_ok_and(|p| p.encrypted() && p.index() <= MAX_PLAUSIBLE_INDEX)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::decode::build::rtcp_sr;
    use proptest::prelude::*;

    /// Frame 24 of ndpi__stun_dtls_rtp.pcapng (Google STUN/DTLS-SRTP, rtcp-mux), byte for
    /// byte: an encrypted XR with AEAD (no tag after the index), E set, SRTCP index 1.
    pub(crate) const MEET_SRTCP: [u8; 40] = [
        0x80, 0xcf, 0x00, 0x04, 0xed, 0xa7, 0x06, 0xe6, 0x5b, 0x0b, 0x93, 0x91, 0x5e, 0xb3, 0xcd,
        0x23, 0xbf, 0x23, 0xe7, 0x56, 0x35, 0x88, 0x3e, 0x41, 0x2f, 0xef, 0x49, 0xbb, 0x4c, 0x75,
        0x86, 0x0f, 0x6a, 0x41, 0x61, 0x2e, 0x80, 0x00, 0x00, 0x01,
    ];

    /// An SRTCP packet as RFC 3711 §3.4 lays it out: a clear SR header and SSRC, 20 bytes of
    /// "ciphertext", E + index, and an authentication tag of `tag` bytes.
    fn srtcp(e_and_index: u32, tag: usize) -> Vec<u8> {
        let mut p = rtcp_sr(0x1234_5678, 0, 0, 0, 0, &[]);
        for b in p.iter_mut().skip(8) {
            *b = 0x5a;
        }
        p.extend_from_slice(&e_and_index.to_be_bytes());
        p.extend(std::iter::repeat_n(0xa5, tag));
        p
    }

    #[test]
    fn real_webrtc_srtcp() {
        let p = SrtcpPacket::new_checked(&MEET_SRTCP, 0).expect("srtcp");
        assert_eq!(
            (p.packet_type(), p.ssrc(), p.encrypted(), p.index()),
            (207, 0xeda7_06e6, true, 1)
        );
        assert!(looks_like_srtcp(&MEET_SRTCP));
    }

    #[test]
    fn trailer_found_for_each_tag_length() {
        for tag in COMMON_TAG_LENGTHS {
            let bytes = srtcp(0x8000_0007, tag);
            let p = SrtcpPacket::new_checked(&bytes, tag).expect("srtcp");
            assert_eq!((p.ssrc(), p.encrypted(), p.index()), (0x1234_5678, true, 7));
            assert!(looks_like_srtcp(&bytes), "tag {tag}");
            assert!(looks_like_srtcp(&srtcp(
                0x8000_0000 | MAX_PLAUSIBLE_INDEX,
                tag
            )));
            assert!(!looks_like_srtcp(&srtcp(
                0x8000_0000 | (MAX_PLAUSIBLE_INDEX + 1),
                tag
            )));
            // E clear: unencrypted SRTCP is known only from the SDP.
            let clear = srtcp(7, tag);
            assert!(
                !SrtcpPacket::new_checked(&clear, tag)
                    .expect("view")
                    .encrypted()
            );
            assert!(!looks_like_srtcp(&clear), "tag {tag}");
        }
    }

    #[test]
    fn malformed_shapes() {
        assert_eq!(SrtcpPacket::new_checked(&[], 0), Err(SrtcpError::TooShort));
        assert_eq!(
            SrtcpPacket::new_checked(&MEET_SRTCP[..7], 0),
            Err(SrtcpError::TooShort)
        );
        // The first packet claims 20 bytes: no room for it and a trailer in 20 bytes.
        assert_eq!(
            SrtcpPacket::new_checked(&MEET_SRTCP[..20], 0),
            Err(SrtcpError::TooShort)
        );
        assert_eq!(
            SrtcpPacket::new_checked(&MEET_SRTCP, 40),
            Err(SrtcpError::TooShort)
        );
        let mut v1 = MEET_SRTCP;
        v1[0] = 0x40;
        assert_eq!(
            SrtcpPacket::new_checked(&v1, 0),
            Err(SrtcpError::BadVersion)
        );
        let mut rtp = MEET_SRTCP;
        rtp[1] = 0x60;
        assert_eq!(SrtcpPacket::new_checked(&rtp, 0), Err(SrtcpError::NotRtcp));
        assert!(!looks_like_srtcp(&v1) && !looks_like_srtcp(&rtp));
    }

    proptest! {
        #[test]
        fn never_panics_and_trailer_is_inside(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            tag in 0usize..64,
        ) {
            if let Ok(p) = SrtcpPacket::new_checked(&bytes, tag) {
                prop_assert!(p.trailer_at + 4 + tag == bytes.len());
                prop_assert!(p.index() <= 0x7fff_ffff);
                let _ = (p.packet_type(), p.ssrc(), p.encrypted());
            }
            let _ = looks_like_srtcp(&bytes);
        }

        #[test]
        fn built_srtcp_round_trips(index in 0u32..=0x7fff_ffff, tag in prop::sample::select(COMMON_TAG_LENGTHS.to_vec())) {
            let bytes = srtcp(0x8000_0000 | index, tag);
            let p = SrtcpPacket::new_checked(&bytes, tag).expect("srtcp");
            prop_assert_eq!((p.encrypted(), p.index()), (true, index));
            // At the other tag lengths the word read is tag bytes (0xa5: index far too big)
            // or body bytes (0x5a: E clear), so only the real trailer can decide.
            prop_assert_eq!(looks_like_srtcp(&bytes), index <= MAX_PLAUSIBLE_INDEX);
        }
    }
}
