//! The one decode of a UDP payload into what the stream table consumes: an RTP view, an RTCP
//! compound view, a SIP message view, or nothing of interest.
//!
//! Each payload is looked at once: the first-octet demultiplexer of metrics-spec §1.3 (as
//! [`classify`](super::rtp::classify)) picks the candidate protocol and that protocol's checked
//! constructor runs right away, so the stream table never sniffs and then parses the same bytes
//! again. The verdict keeps what the stateful caller needs to count failures where it knows the
//! flow (a malformed RTP packet on an announced flow, an invalid RTCP compound on an RTCP
//! endpoint, reduced-size RTCP accepted only on an RTCP endpoint).
//!
//! It must not allocate, copy packet bytes or keep state: it is a pure function of the bytes.

use super::rtcp::{Compound, RtcpError};
use super::rtp::{RtpError, RtpPacket};
use super::sip::SipMessage;

/// Second octets 192..=223 are RTCP packet types on a muxed port (RFC 5761 §4).
const RTCP_SECOND_BYTE: std::ops::RangeInclusive<u8> = 192..=223;

/// Which RTCP validity rules a compound passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcpForm {
    /// RFC 3550 A.2: a full compound, starting with SR or RR.
    Compound,
    /// Only the reduced-size rules of RFC 5506: trusted only on a known RTCP endpoint.
    ReducedSize,
}

/// A UDP payload, decoded once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// An RTP packet that passed metrics-spec §1.2 checks 1–6.
    Rtp(RtpPacket<'a>),
    /// RTP by its first octet, but failing a structural check.
    RtpMalformed(RtpError),
    /// A valid RTCP compound, and which rules it passed.
    Rtcp(Compound<'a>, RtcpForm),
    /// RTCP by its first two octets, invalid even as reduced-size RTCP (the full-compound error).
    RtcpInvalid(RtcpError),
    /// A SIP request or response (start line valid; headers and body split).
    Sip(SipMessage<'a>),
    /// Empty, STUN, DTLS, ZRTP, TURN channel data, or anything else the monitor ignores.
    Other,
}

/// Decodes a UDP payload. Allocation-free; never panics.
pub fn decode_payload(payload: &[u8]) -> Payload<'_> {
    match payload {
        [128..=191, second, ..] if RTCP_SECOND_BYTE.contains(second) => {
            match Compound::new_checked(payload) {
                Ok(c) => Payload::Rtcp(c, RtcpForm::Compound),
                Err(full) => match Compound::new_checked_rsize(payload) {
                    Ok(c) => Payload::Rtcp(c, RtcpForm::ReducedSize),
                    Err(_) => Payload::RtcpInvalid(full),
                },
            }
        }
        // One octet alone is not RTP by the demultiplexer (it needs two): ignored, not malformed.
        [128..=191, _, ..] => match RtpPacket::new_checked(payload) {
            Ok(p) => Payload::Rtp(p),
            Err(e) => Payload::RtpMalformed(e),
        },
        // A SIP message starts with a method (upper-case token) or "SIP/2.0".
        [b'A'..=b'Z', ..] => match SipMessage::parse(payload) {
            Ok(m) => Payload::Sip(m),
            Err(_) => Payload::Other,
        },
        _ => Payload::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::build::{ReportBlockSpec, RtpHeader, rtcp_rr, rtcp_sdes_cname, rtp_packet};
    use crate::decode::rtp::{MediaKind, classify};
    use crate::decode::sip::looks_like_sip;
    use proptest::prelude::*;

    /// The classification the stream table made before this module: `classify`, then the
    /// checked constructors, `looks_like_sip` only for an upper-case first octet outside the
    /// RTP range.
    fn old(payload: &[u8]) -> Payload<'_> {
        let Some(&first) = payload.first() else {
            return Payload::Other;
        };
        if (128..=191).contains(&first) {
            match classify(payload) {
                MediaKind::Rtp => match RtpPacket::new_checked(payload) {
                    Ok(p) => Payload::Rtp(p),
                    Err(e) => Payload::RtpMalformed(e),
                },
                MediaKind::Rtcp => match Compound::new_checked(payload) {
                    Ok(c) => Payload::Rtcp(c, RtcpForm::Compound),
                    Err(e) => match Compound::new_checked_rsize(payload) {
                        Ok(c) => Payload::Rtcp(c, RtcpForm::ReducedSize),
                        Err(_) => Payload::RtcpInvalid(e),
                    },
                },
                _ => Payload::Other,
            }
        } else if first.is_ascii_uppercase() && looks_like_sip(payload) {
            SipMessage::parse(payload).map_or(Payload::Other, Payload::Sip)
        } else {
            Payload::Other
        }
    }

    fn rtp(pt: u8, seq: u16) -> Vec<u8> {
        rtp_packet(
            &RtpHeader {
                payload_type: pt,
                marker: false,
                sequence: seq,
                timestamp: 160,
                ssrc: 0x1234_5678,
                csrcs: vec![],
                extension: None,
                padding: 0,
            },
            &[0xd5; 160],
        )
    }

    #[test]
    fn known_payloads() {
        let p = rtp(8, 77);
        match decode_payload(&p) {
            Payload::Rtp(v) => {
                assert_eq!(
                    (v.payload_type(), v.sequence_number(), v.ssrc()),
                    (8, 77, 0x1234_5678)
                );
            }
            other => panic!("{other:?}"),
        }
        let rr = rtcp_rr(
            1,
            &[ReportBlockSpec {
                ssrc: 2,
                fraction_lost: 0,
                cumulative_lost: 0,
                ext_highest_seq: 0,
                jitter: 0,
                lsr: 0,
                dlsr: 0,
            }],
        );
        assert!(matches!(
            decode_payload(&rr),
            Payload::Rtcp(_, RtcpForm::Compound)
        ));
        // A lone SDES is valid only as reduced-size RTCP.
        let sdes = rtcp_sdes_cname(1, "a@b");
        assert!(matches!(
            decode_payload(&sdes),
            Payload::Rtcp(_, RtcpForm::ReducedSize)
        ));
        assert!(matches!(
            decode_payload(&rr[..rr.len() - 4]),
            Payload::RtcpInvalid(_)
        ));
        // 12 octets needed for RTP.
        assert_eq!(
            decode_payload(&p[..11]),
            Payload::RtpMalformed(RtpError::TooShort)
        );
        let sip = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n";
        match decode_payload(sip) {
            Payload::Sip(m) => assert_eq!(m.call_id(), Some(&b"x"[..])),
            other => panic!("{other:?}"),
        }
        assert!(decode_payload(b"SIP/2.0 200 OK\r\n\r\n").is_sip());
        assert_eq!(decode_payload(b"HELLO WORLD"), Payload::Other);
        assert_eq!(decode_payload(b""), Payload::Other);
        assert_eq!(decode_payload(&[0x80]), Payload::Other, "one octet");
        assert_eq!(decode_payload(&[0, 1, 0, 0]), Payload::Other, "STUN");
        assert_eq!(decode_payload(&[0x17, 0xfe, 0xfd]), Payload::Other, "DTLS");
    }

    impl Payload<'_> {
        fn is_sip(&self) -> bool {
            matches!(self, Payload::Sip(_))
        }
    }

    /// Bytes that reach every branch: random, or with an RTP/RTCP first octet, or after a SIP
    /// start line, or a valid RTP packet with a random tail cut.
    fn payloads() -> impl Strategy<Value = Vec<u8>> {
        let random = proptest::collection::vec(any::<u8>(), 0..64);
        prop_oneof![
            random.clone(),
            (128u8..=191, random.clone()).prop_map(|(first, mut rest)| {
                rest.insert(0, first);
                rest
            }),
            (128u8..=191, 192u8..=223, random.clone()).prop_map(|(a, b, rest)| {
                let mut v = vec![a, b];
                v.extend(rest);
                v
            }),
            (
                prop_oneof![
                    Just(&b"INVITE sip:bob@example.com SIP/2.0\r\n"[..]),
                    Just(&b"SIP/2.0 180 Ringing\r\n"[..]),
                    Just(&b"BYE x SIP/2.0\n"[..]),
                    Just(&b"SIP/2.0 2000 OK\r\n"[..]),
                ],
                random.clone()
            )
                .prop_map(|(start, rest)| {
                    let mut v = start.to_vec();
                    v.extend(rest);
                    v
                }),
            (any::<u8>(), any::<u16>(), 0usize..200).prop_map(|(pt, seq, cut)| {
                let mut p = rtp(pt & 0x7f, seq);
                p.truncate(cut);
                p
            }),
        ]
    }

    proptest! {
        #[test]
        fn agrees_with_the_old_classification(bytes in payloads()) {
            prop_assert_eq!(decode_payload(&bytes), old(&bytes));
        }
    }
}
