//! RTCP compound-packet view (RFC 3550 §6, App. A.2) with SR, RR, BYE and XR (RFC 3611) views,
//! including the VoIP Metrics report block (BT = 7, metrics-spec §5.4).
//!
//! `Compound::new_checked` validates the whole compound once, including every sub-packet's
//! internal counts, so that iterating it afterwards cannot fail. SDES and APP are only
//! delimited, not parsed. This module must not keep state, compute statistics (RTT etc. belong
//! to the quality code), allocate or copy packet bytes.

use thiserror::Error;

/// RTCP packet types (RFC 3550 §12.1, RFC 4585, RFC 3611).
pub mod packet_type {
    pub const SENDER_REPORT: u8 = 200;
    pub const RECEIVER_REPORT: u8 = 201;
    pub const SOURCE_DESCRIPTION: u8 = 202;
    pub const GOODBYE: u8 = 203;
    pub const APP: u8 = 204;
    pub const TRANSPORT_FEEDBACK: u8 = 205;
    pub const PAYLOAD_FEEDBACK: u8 = 206;
    pub const EXTENDED_REPORT: u8 = 207;
}

/// XR block type of the VoIP Metrics report block.
pub const XR_VOIP_METRICS: u8 = 7;

const HEADER_LEN: usize = 4;
const RTCP_VERSION: u8 = 2;
const SENDER_REPORT_FIXED_LEN: usize = 28;
const RECEIVER_REPORT_FIXED_LEN: usize = 8;
const REPORT_BLOCK_LEN: usize = 24;
const APP_MIN_LEN: usize = 12;
const EXTENDED_REPORT_FIXED_LEN: usize = 8;
const XR_BLOCK_HEADER_LEN: usize = 4;
const VOIP_METRICS_BODY_LEN: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum RtcpError {
    #[error("shorter than an rtcp header")]
    TooShort,
    #[error("rtcp version is not 2")]
    BadVersion,
    #[error("first packet is neither sr nor rr")]
    FirstNotReport,
    #[error("padding bit set on the first packet")]
    PaddingOnFirst,
    #[error("padding bit set on a packet that is not the last")]
    PaddingNotLast,
    #[error("padding count is zero or exceeds the packet")]
    BadPadding,
    #[error("packet lengths do not sum to the datagram length")]
    LengthMismatch,
    #[error("packet too short for its type")]
    SubPacketTooShort,
    #[error("report blocks run past the packet")]
    ReportBlocksOverrun,
    #[error("bye source list runs past the packet")]
    GoodbyeOverrun,
    #[error("xr block runs past the packet")]
    XrBlockOverrun,
    #[error("xr block is not voip metrics")]
    NotVoipMetrics,
    #[error("voip metrics block has the wrong length")]
    VoipMetricsLength,
}

/// A validated compound RTCP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compound<'a> {
    buffer: &'a [u8],
}

impl<'a> Compound<'a> {
    /// RFC 3550 A.2 validity (metrics-spec §1.3 step 3): V = 2 on every packet, the first is SR
    /// or RR without padding, only the last may be padded, and the `(length+1)*4` sizes sum
    /// exactly to `buffer.len()`. Each packet's own counts must fit its length.
    pub fn new_checked(buffer: &'a [u8]) -> Result<Self, RtcpError> {
        Self::validate(buffer, true)
    }

    /// As `new_checked`, but for reduced-size RTCP (RFC 5506): any packet type may come first and
    /// a lone packet may be padded.
    pub fn new_checked_rsize(buffer: &'a [u8]) -> Result<Self, RtcpError> {
        Self::validate(buffer, false)
    }

    fn validate(buffer: &'a [u8], full_compound: bool) -> Result<Self, RtcpError> {
        if buffer.len() < HEADER_LEN {
            return Err(RtcpError::TooShort);
        }
        let mut rest = buffer;
        let mut first = true;
        while !rest.is_empty() {
            let (raw, next) = split_sub_packet(rest)?;
            if first && full_compound {
                if raw.padding {
                    return Err(RtcpError::PaddingOnFirst);
                }
                if !matches!(
                    raw.packet_type,
                    packet_type::SENDER_REPORT | packet_type::RECEIVER_REPORT
                ) {
                    return Err(RtcpError::FirstNotReport);
                }
            }
            if raw.padding && !next.is_empty() {
                return Err(RtcpError::PaddingNotLast);
            }
            RtcpPacket::parse(raw)?;
            rest = next;
            first = false;
        }
        Ok(Self { buffer })
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.buffer
    }

    pub fn packets(&self) -> Packets<'a> {
        Packets { rest: self.buffer }
    }
}

/// Iterator over the packets of a validated compound.
#[derive(Clone, Debug)]
pub struct Packets<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Packets<'a> {
    type Item = RtcpPacket<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // The compound was validated with the same functions, so neither step fails; stopping on
        // error keeps the iterator total anyway.
        let parsed = split_sub_packet(self.rest)
            .and_then(|(raw, next)| RtcpPacket::parse(raw).map(|packet| (packet, next)));
        match parsed {
            Ok((packet, next)) => {
                self.rest = next;
                Some(packet)
            }
            Err(_) => {
                self.rest = &[];
                None
            }
        }
    }
}

/// One packet cut out of a compound, padding removed.
#[derive(Clone, Copy)]
struct RawPacket<'a> {
    padding: bool,
    count: u8,
    packet_type: u8,
    /// The packet from its common header up to (excluding) the padding.
    bytes: &'a [u8],
}

fn split_sub_packet(buffer: &[u8]) -> Result<(RawPacket<'_>, &[u8]), RtcpError> {
    let header = buffer
        .first_chunk::<HEADER_LEN>()
        .ok_or(RtcpError::LengthMismatch)?;
    let [first, packet_type, length_high, length_low] = *header;
    if first >> 6 != RTCP_VERSION {
        return Err(RtcpError::BadVersion);
    }
    let size = (usize::from(u16::from_be_bytes([length_high, length_low])) + 1) * 4;
    let (packet, next) = buffer
        .split_at_checked(size)
        .ok_or(RtcpError::LengthMismatch)?;
    let padding = first & 0x20 != 0;
    let bytes = if padding {
        let count = packet.last().map_or(0, |&count| usize::from(count));
        if count == 0 || count > size - HEADER_LEN {
            return Err(RtcpError::BadPadding);
        }
        packet.get(..size - count).ok_or(RtcpError::BadPadding)?
    } else {
        packet
    };
    Ok((
        RawPacket {
            padding,
            count: first & 0x1f,
            packet_type,
            bytes,
        },
        next,
    ))
}

/// One packet of a compound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    SenderReport(SenderReport<'a>),
    ReceiverReport(ReceiverReport<'a>),
    /// The whole SDES packet (common header included, padding excluded); not parsed.
    SourceDescription(&'a [u8]),
    Goodbye(Goodbye<'a>),
    /// The whole APP packet (common header included, so the subtype stays readable).
    App(&'a [u8]),
    ExtendedReport(ExtendedReport<'a>),
    /// Any other type; `body` is the whole packet, common header included (so that e.g. the
    /// feedback message type of RTPFB/PSFB stays readable), padding excluded.
    Other {
        packet_type: u8,
        body: &'a [u8],
    },
}

impl<'a> RtcpPacket<'a> {
    fn parse(raw: RawPacket<'a>) -> Result<Self, RtcpError> {
        Ok(match raw.packet_type {
            packet_type::SENDER_REPORT => {
                Self::SenderReport(SenderReport::parse(raw.bytes, raw.count)?)
            }
            packet_type::RECEIVER_REPORT => {
                Self::ReceiverReport(ReceiverReport::parse(raw.bytes, raw.count)?)
            }
            packet_type::SOURCE_DESCRIPTION => Self::SourceDescription(raw.bytes),
            packet_type::GOODBYE => Self::Goodbye(Goodbye::parse(raw.bytes, raw.count)?),
            packet_type::APP => {
                if raw.bytes.len() < APP_MIN_LEN {
                    return Err(RtcpError::SubPacketTooShort);
                }
                Self::App(raw.bytes)
            }
            packet_type::EXTENDED_REPORT => Self::ExtendedReport(ExtendedReport::parse(raw.bytes)?),
            other => Self::Other {
                packet_type: other,
                body: raw.bytes,
            },
        })
    }
}

/// An SR or RR cut into its fixed part of `N` octets, its report blocks and the
/// profile-specific extension.
struct ReportParts<'a, const N: usize> {
    fixed: &'a [u8; N],
    blocks: &'a [u8],
    extension: &'a [u8],
}

fn split_reports<const N: usize>(bytes: &[u8], count: u8) -> Result<ReportParts<'_, N>, RtcpError> {
    let (fixed, rest) = bytes
        .split_first_chunk::<N>()
        .ok_or(RtcpError::SubPacketTooShort)?;
    let (blocks, extension) = rest
        .split_at_checked(REPORT_BLOCK_LEN * usize::from(count))
        .ok_or(RtcpError::ReportBlocksOverrun)?;
    Ok(ReportParts {
        fixed,
        blocks,
        extension,
    })
}

fn be_u32(bytes: [u8; 4]) -> u32 {
    u32::from_be_bytes(bytes)
}

/// Sender report (PT 200).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderReport<'a> {
    fixed: &'a [u8; SENDER_REPORT_FIXED_LEN],
    blocks: &'a [u8],
    extension: &'a [u8],
}

impl<'a> SenderReport<'a> {
    fn parse(bytes: &'a [u8], count: u8) -> Result<Self, RtcpError> {
        let parts = split_reports::<SENDER_REPORT_FIXED_LEN>(bytes, count)?;
        Ok(Self {
            fixed: parts.fixed,
            blocks: parts.blocks,
            extension: parts.extension,
        })
    }

    pub fn ssrc(&self) -> u32 {
        let f = self.fixed;
        be_u32([f[4], f[5], f[6], f[7]])
    }

    /// 64-bit NTP timestamp: seconds since 1900 in the high word, fraction in the low word.
    pub fn ntp_timestamp(&self) -> u64 {
        let f = self.fixed;
        u64::from_be_bytes([f[8], f[9], f[10], f[11], f[12], f[13], f[14], f[15]])
    }

    /// The middle 32 bits of the NTP timestamp, the value receivers echo as LSR.
    pub fn ntp_middle32(&self) -> u32 {
        let f = self.fixed;
        be_u32([f[10], f[11], f[12], f[13]])
    }

    pub fn rtp_timestamp(&self) -> u32 {
        let f = self.fixed;
        be_u32([f[16], f[17], f[18], f[19]])
    }

    pub fn packet_count(&self) -> u32 {
        let f = self.fixed;
        be_u32([f[20], f[21], f[22], f[23]])
    }

    pub fn octet_count(&self) -> u32 {
        let f = self.fixed;
        be_u32([f[24], f[25], f[26], f[27]])
    }

    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks::new(self.blocks)
    }

    /// Profile-specific extension after the report blocks (usually empty).
    pub fn profile_extension(&self) -> &'a [u8] {
        self.extension
    }
}

/// Receiver report (PT 201).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    fixed: &'a [u8; RECEIVER_REPORT_FIXED_LEN],
    blocks: &'a [u8],
    extension: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    fn parse(bytes: &'a [u8], count: u8) -> Result<Self, RtcpError> {
        let parts = split_reports::<RECEIVER_REPORT_FIXED_LEN>(bytes, count)?;
        Ok(Self {
            fixed: parts.fixed,
            blocks: parts.blocks,
            extension: parts.extension,
        })
    }

    pub fn ssrc(&self) -> u32 {
        let f = self.fixed;
        be_u32([f[4], f[5], f[6], f[7]])
    }

    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks::new(self.blocks)
    }

    pub fn profile_extension(&self) -> &'a [u8] {
        self.extension
    }
}

/// One reception report block (RFC 3550 §6.4.1), decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// Signed 24-bit field, sign-extended.
    pub cumulative_lost: i32,
    pub ext_highest_seq: u32,
    /// Timestamp units of the reported source's clock.
    pub jitter: u32,
    pub lsr: u32,
    /// Units of 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    fn from_bytes(b: &[u8; REPORT_BLOCK_LEN]) -> Self {
        Self {
            ssrc: be_u32([b[0], b[1], b[2], b[3]]),
            fraction_lost: b[4],
            // Place the 24 bits high and shift back arithmetically to extend the sign.
            cumulative_lost: i32::from_be_bytes([b[5], b[6], b[7], 0]) >> 8,
            ext_highest_seq: be_u32([b[8], b[9], b[10], b[11]]),
            jitter: be_u32([b[12], b[13], b[14], b[15]]),
            lsr: be_u32([b[16], b[17], b[18], b[19]]),
            dlsr: be_u32([b[20], b[21], b[22], b[23]]),
        }
    }
}

/// Iterator over the report blocks of an SR or RR.
#[derive(Clone, Debug)]
pub struct ReportBlocks<'a> {
    chunks: std::slice::ChunksExact<'a, u8>,
}

impl<'a> ReportBlocks<'a> {
    fn new(blocks: &'a [u8]) -> Self {
        Self {
            chunks: blocks.chunks_exact(REPORT_BLOCK_LEN),
        }
    }
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        let chunk = self.chunks.next()?;
        chunk.first_chunk().map(ReportBlock::from_bytes)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

/// BYE (PT 203).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Goodbye<'a> {
    sources: &'a [u8],
    rest: &'a [u8],
}

impl<'a> Goodbye<'a> {
    fn parse(bytes: &'a [u8], count: u8) -> Result<Self, RtcpError> {
        let body = bytes
            .get(HEADER_LEN..)
            .ok_or(RtcpError::SubPacketTooShort)?;
        let (sources, rest) = body
            .split_at_checked(4 * usize::from(count))
            .ok_or(RtcpError::GoodbyeOverrun)?;
        Ok(Self { sources, rest })
    }

    pub fn ssrcs(&self) -> impl ExactSizeIterator<Item = u32> + use<'a> {
        self.sources
            .chunks_exact(4)
            .map(|chunk| chunk.first_chunk().map_or(0, |bytes| be_u32(*bytes)))
    }

    /// The optional reason text, if present and within the packet.
    pub fn reason(&self) -> Option<&'a [u8]> {
        let (&length, text) = self.rest.split_first()?;
        text.get(..usize::from(length))
    }
}

/// Extended report (PT 207, RFC 3611).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtendedReport<'a> {
    fixed: &'a [u8; EXTENDED_REPORT_FIXED_LEN],
    blocks: &'a [u8],
}

impl<'a> ExtendedReport<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, RtcpError> {
        let (fixed, blocks) = bytes
            .split_first_chunk::<EXTENDED_REPORT_FIXED_LEN>()
            .ok_or(RtcpError::SubPacketTooShort)?;
        let mut rest = blocks;
        while !rest.is_empty() {
            let (_, next) = split_xr_block(rest).ok_or(RtcpError::XrBlockOverrun)?;
            rest = next;
        }
        Ok(Self { fixed, blocks })
    }

    pub fn ssrc(&self) -> u32 {
        let f = self.fixed;
        be_u32([f[4], f[5], f[6], f[7]])
    }

    pub fn blocks(&self) -> XrBlocks<'a> {
        XrBlocks { rest: self.blocks }
    }
}

/// One XR report block; `body` follows the 4-octet block header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XrBlock<'a> {
    pub block_type: u8,
    pub type_specific: u8,
    pub body: &'a [u8],
}

fn split_xr_block(bytes: &[u8]) -> Option<(XrBlock<'_>, &[u8])> {
    let ([block_type, type_specific, length_high, length_low], rest) =
        bytes.split_first_chunk::<XR_BLOCK_HEADER_LEN>()?;
    let body_len = 4 * usize::from(u16::from_be_bytes([*length_high, *length_low]));
    let (body, next) = rest.split_at_checked(body_len)?;
    Some((
        XrBlock {
            block_type: *block_type,
            type_specific: *type_specific,
            body,
        },
        next,
    ))
}

/// Iterator over the blocks of a validated XR packet.
#[derive(Clone, Debug)]
pub struct XrBlocks<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for XrBlocks<'a> {
    type Item = XrBlock<'a>;

    fn next(&mut self) -> Option<XrBlock<'a>> {
        let Some((block, next)) = split_xr_block(self.rest) else {
            self.rest = &[];
            return None;
        };
        self.rest = next;
        Some(block)
    }
}

/// VoIP Metrics report block (RFC 3611 §4.7), metrics-spec §5.4. Levels and factors use 127 for
/// "unavailable"; this view returns the raw values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoipMetrics<'a> {
    body: &'a [u8; VOIP_METRICS_BODY_LEN],
}

impl<'a> VoipMetrics<'a> {
    pub fn new_checked(block: &XrBlock<'a>) -> Result<Self, RtcpError> {
        if block.block_type != XR_VOIP_METRICS {
            return Err(RtcpError::NotVoipMetrics);
        }
        if block.body.len() != VOIP_METRICS_BODY_LEN {
            return Err(RtcpError::VoipMetricsLength);
        }
        let body = block
            .body
            .first_chunk()
            .ok_or(RtcpError::VoipMetricsLength)?;
        Ok(Self { body })
    }

    fn u16_at(&self, offset: usize) -> u16 {
        let b = self.body;
        match (b.get(offset), b.get(offset + 1)) {
            (Some(&high), Some(&low)) => u16::from_be_bytes([high, low]),
            _ => 0,
        }
    }

    /// SSRC of the source the block reports on.
    pub fn ssrc(&self) -> u32 {
        let b = self.body;
        be_u32([b[0], b[1], b[2], b[3]])
    }
    /// Fraction lost since the start of reception, ×256.
    pub fn loss_rate(&self) -> u8 {
        self.body[4]
    }
    /// Fraction discarded by the jitter buffer, ×256.
    pub fn discard_rate(&self) -> u8 {
        self.body[5]
    }
    pub fn burst_density(&self) -> u8 {
        self.body[6]
    }
    pub fn gap_density(&self) -> u8 {
        self.body[7]
    }
    pub fn burst_duration_ms(&self) -> u16 {
        self.u16_at(8)
    }
    pub fn gap_duration_ms(&self) -> u16 {
        self.u16_at(10)
    }
    pub fn round_trip_delay_ms(&self) -> u16 {
        self.u16_at(12)
    }
    pub fn end_system_delay_ms(&self) -> u16 {
        self.u16_at(14)
    }
    /// dBm0, signed; 127 = unavailable.
    pub fn signal_level(&self) -> i8 {
        i8::from_be_bytes([self.body[16]])
    }
    /// dBm0, signed; 127 = unavailable.
    pub fn noise_level(&self) -> i8 {
        i8::from_be_bytes([self.body[17]])
    }
    /// Residual echo return loss, dB; 127 = unavailable.
    pub fn rerl(&self) -> u8 {
        self.body[18]
    }
    pub fn gmin(&self) -> u8 {
        self.body[19]
    }
    pub fn r_factor(&self) -> u8 {
        self.body[20]
    }
    pub fn ext_r_factor(&self) -> u8 {
        self.body[21]
    }
    /// MOS × 10; 127 = unavailable.
    pub fn mos_lq(&self) -> u8 {
        self.body[22]
    }
    /// MOS × 10; 127 = unavailable.
    pub fn mos_cq(&self) -> u8 {
        self.body[23]
    }
    /// Receiver configuration byte: PLC (bits 7–6), jitter-buffer adaptive (5–4), rate (3–0).
    pub fn rx_config(&self) -> u8 {
        self.body[24]
    }
    pub fn jb_nominal(&self) -> u16 {
        self.u16_at(26)
    }
    pub fn jb_maximum(&self) -> u16 {
        self.u16_at(28)
    }
    pub fn jb_abs_max(&self) -> u16 {
        self.u16_at(30)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::build::{self, ReportBlockSpec};
    use super::*;
    use proptest::prelude::*;

    fn only_packet(bytes: &[u8]) -> RtcpPacket<'_> {
        let compound = Compound::new_checked_rsize(bytes).unwrap();
        let mut packets = compound.packets();
        let packet = packets.next().unwrap();
        assert!(packets.next().is_none());
        packet
    }

    /// RR, 2 blocks, the second one with cumulative lost −2.
    const RR_TWO_BLOCKS: [u8; 56] = [
        0x82, 201, 0x00, 0x0d, 0xca, 0xfe, 0xba, 0xbe, // header, SSRC
        0x11, 0x11, 0x11, 0x11, 0x40, 0x00, 0x00, 0x05, // block 1: SSRC, 25 %, 5 lost
        0x00, 0x01, 0x00, 0x10, 0x00, 0x00, 0x00, 0x50, // ext seq 65552, jitter 80
        0xb7, 0x05, 0x20, 0x00, 0x00, 0x05, 0x40, 0x00, // LSR, DLSR (RFC 3550 Figure 2)
        0x22, 0x22, 0x22, 0x22, 0x00, 0xff, 0xff, 0xfe, // block 2: SSRC, 0, −2
        0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, // ext seq 65535, jitter 0
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // no SR yet
    ];

    #[test]
    fn receiver_report_two_blocks() {
        let compound = Compound::new_checked(&RR_TWO_BLOCKS).unwrap();
        let packets: Vec<_> = compound.packets().collect();
        assert_eq!(packets.len(), 1);
        let RtcpPacket::ReceiverReport(rr) = packets[0] else {
            panic!("not an RR: {:?}", packets[0]);
        };
        assert_eq!(rr.ssrc(), 0xcafe_babe);
        assert!(rr.profile_extension().is_empty());
        let blocks: Vec<_> = rr.report_blocks().collect();
        assert_eq!(
            blocks,
            vec![
                ReportBlock {
                    ssrc: 0x1111_1111,
                    fraction_lost: 64,
                    cumulative_lost: 5,
                    ext_highest_seq: 65552,
                    jitter: 80,
                    lsr: 0xb705_2000,
                    dlsr: 0x0005_4000,
                },
                ReportBlock {
                    ssrc: 0x2222_2222,
                    fraction_lost: 0,
                    cumulative_lost: -2,
                    ext_highest_seq: 65535,
                    jitter: 0,
                    lsr: 0,
                    dlsr: 0,
                },
            ]
        );
    }

    /// metrics-spec §5.3, T-RTT-1 and the passive worked example: an SR whose NTP middle word is
    /// 0xB7052000 and the RR echoing it.
    #[test]
    fn lsr_dlsr_round_trip_example() {
        let ntp = 0x0000_b705_2000_0000u64 | 0xdead_0000_0000_beef;
        let sr_bytes = build::rtcp_sr(0x1111_1111, ntp, 0, 0, 0, &[]);
        let RtcpPacket::SenderReport(sr) = only_packet(&sr_bytes) else {
            panic!("not an SR");
        };
        assert_eq!(sr.ntp_middle32(), 0xb705_2000);

        let compound = Compound::new_checked(&RR_TWO_BLOCKS).unwrap();
        let Some(RtcpPacket::ReceiverReport(rr)) = compound.packets().next() else {
            panic!("not an RR");
        };
        let block = rr.report_blocks().next().unwrap();
        assert_eq!(block.ssrc, sr.ssrc());
        assert_eq!(block.lsr, sr.ntp_middle32());
        let arrival = 0xb710_8000u32;
        let rtt_units = arrival.wrapping_sub(block.lsr).wrapping_sub(block.dlsr);
        assert_eq!(rtt_units, 0x0006_2000);
        assert_eq!(f64::from(rtt_units) / 65536.0, 6.125);
        assert_eq!(f64::from(block.dlsr) / 65536.0, 5.25);
    }

    #[test]
    fn sender_report_with_sdes_compound() {
        // SR with one report block followed by SDES CNAME, as sent by a typical softphone.
        let sr = [
            0x81, 200, 0x00, 0x0c, 0x5e, 0xa1, 0x0c, 0x01, // header, SSRC
            0xe9, 0x4c, 0x1c, 0x6e, 0x8a, 0x3d, 0x70, 0xa4, // NTP
            0x00, 0x01, 0xf4, 0x00, 0x00, 0x00, 0x01, 0xf4, // RTP ts 128000, 500 packets
            0x00, 0x01, 0x38, 0x80, // 80000 octets
            0x0a, 0x0b, 0x0c, 0x0d, 0x03, 0xff, 0xff, 0xff, // block: SSRC, 3/256, −1
            0x00, 0x02, 0x00, 0x07, 0x00, 0x00, 0x01, 0x00, // ext seq, jitter 256
            0x4c, 0x1c, 0x6e, 0x8a, 0x00, 0x00, 0x80, 0x00, // LSR, DLSR 0.5 s
        ];
        let mut bytes = sr.to_vec();
        bytes.extend_from_slice(&build::rtcp_sdes_cname(0x5ea1_0c01, "alice@host"));
        let compound = Compound::new_checked(&bytes).unwrap();
        let packets: Vec<_> = compound.packets().collect();
        assert_eq!(packets.len(), 2);
        let RtcpPacket::SenderReport(report) = packets[0] else {
            panic!("not an SR");
        };
        assert_eq!(report.ssrc(), 0x5ea1_0c01);
        assert_eq!(report.ntp_timestamp(), 0xe94c_1c6e_8a3d_70a4);
        assert_eq!(report.ntp_middle32(), 0x1c6e_8a3d);
        assert_eq!(report.rtp_timestamp(), 128_000);
        assert_eq!(report.packet_count(), 500);
        assert_eq!(report.octet_count(), 80_000);
        let blocks: Vec<_> = report.report_blocks().collect();
        assert_eq!(
            blocks,
            vec![ReportBlock {
                ssrc: 0x0a0b_0c0d,
                fraction_lost: 3,
                cumulative_lost: -1,
                ext_highest_seq: 0x0002_0007,
                jitter: 256,
                lsr: 0x4c1c_6e8a,
                dlsr: 0x8000,
            }]
        );
        let RtcpPacket::SourceDescription(sdes) = packets[1] else {
            panic!("not SDES");
        };
        assert_eq!(sdes[1], 202);
        assert_eq!(&sdes[10..20], b"alice@host");
    }

    #[test]
    fn builder_round_trip_sr_rr() {
        let blocks = [
            ReportBlockSpec {
                ssrc: 7,
                fraction_lost: 12,
                cumulative_lost: -2,
                ext_highest_seq: 0x0001_0002,
                jitter: 33,
                lsr: 0xb705_2000,
                dlsr: 0x0005_4000,
            },
            ReportBlockSpec {
                ssrc: 8,
                fraction_lost: 255,
                cumulative_lost: 0x7f_ffff,
                ext_highest_seq: 1,
                jitter: 0,
                lsr: 0,
                dlsr: 0,
            },
        ];
        let sr = build::rtcp_sr(1, 0x0102_0304_0506_0708, 9, 10, 11, &blocks);
        // −2 is encoded as 0xFFFFFE.
        assert_eq!(&sr[33..36], &[0xff, 0xff, 0xfe]);
        let mut compound_bytes = sr.clone();
        compound_bytes.extend_from_slice(&build::rtcp_rr(1, &blocks[1..]));
        compound_bytes.extend_from_slice(&build::rtcp_sdes_cname(1, "x"));
        let compound = Compound::new_checked(&compound_bytes).unwrap();
        let packets: Vec<_> = compound.packets().collect();
        assert_eq!(packets.len(), 3);
        let RtcpPacket::SenderReport(report) = packets[0] else {
            panic!("not an SR");
        };
        assert_eq!(report.ntp_timestamp(), 0x0102_0304_0506_0708);
        assert_eq!(report.ntp_middle32(), 0x0304_0506);
        assert_eq!(
            (
                report.rtp_timestamp(),
                report.packet_count(),
                report.octet_count()
            ),
            (9, 10, 11)
        );
        let decoded: Vec<_> = report.report_blocks().collect();
        assert_eq!(decoded.len(), 2);
        for (block, spec) in decoded.iter().zip(&blocks) {
            assert_eq!(block.ssrc, spec.ssrc);
            assert_eq!(block.fraction_lost, spec.fraction_lost);
            assert_eq!(block.cumulative_lost, spec.cumulative_lost);
            assert_eq!(block.ext_highest_seq, spec.ext_highest_seq);
            assert_eq!(block.jitter, spec.jitter);
            assert_eq!(block.lsr, spec.lsr);
            assert_eq!(block.dlsr, spec.dlsr);
        }
        let RtcpPacket::ReceiverReport(rr) = packets[1] else {
            panic!("not an RR");
        };
        assert_eq!(rr.report_blocks().len(), 1);
    }

    #[test]
    fn lengths_that_do_not_sum() {
        let mut longer = RR_TWO_BLOCKS.to_vec();
        longer.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(Compound::new_checked(&longer), Err(RtcpError::BadVersion));
        longer.truncate(58);
        assert_eq!(
            Compound::new_checked(&longer),
            Err(RtcpError::LengthMismatch)
        );
        assert_eq!(
            Compound::new_checked(&RR_TWO_BLOCKS[..52]),
            Err(RtcpError::LengthMismatch)
        );
        let mut length_too_small = RR_TWO_BLOCKS;
        length_too_small[3] = 0x0c;
        assert_eq!(
            Compound::new_checked(&length_too_small),
            Err(RtcpError::ReportBlocksOverrun)
        );
    }

    #[test]
    fn compound_rules() {
        assert_eq!(Compound::new_checked(&[]), Err(RtcpError::TooShort));
        assert_eq!(
            Compound::new_checked(&[0x80, 201]),
            Err(RtcpError::TooShort)
        );
        let mut version1 = RR_TWO_BLOCKS;
        version1[0] = 0x42;
        assert_eq!(Compound::new_checked(&version1), Err(RtcpError::BadVersion));

        let sdes = build::rtcp_sdes_cname(1, "abc");
        assert_eq!(Compound::new_checked(&sdes), Err(RtcpError::FirstNotReport));
        assert!(Compound::new_checked_rsize(&sdes).is_ok());

        // Padding on the first packet, even when it is also the last.
        let mut padded = build::rtcp_rr(5, &[]);
        padded[0] |= 0x20;
        padded[3] = 2;
        padded.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(
            Compound::new_checked(&padded),
            Err(RtcpError::PaddingOnFirst)
        );
        assert!(Compound::new_checked_rsize(&padded).is_ok());

        // Padding on the last packet is fine; on a middle one it is not.
        let mut compound_bytes = build::rtcp_rr(5, &[]);
        compound_bytes.extend_from_slice(&padded);
        let compound = Compound::new_checked(&compound_bytes).unwrap();
        assert_eq!(compound.packets().count(), 2);
        let mut middle = compound_bytes.clone();
        middle.extend_from_slice(&build::rtcp_rr(6, &[]));
        assert_eq!(
            Compound::new_checked(&middle),
            Err(RtcpError::PaddingNotLast)
        );

        // Padding counts 0 and larger than the body.
        let last = compound_bytes.len() - 1;
        compound_bytes[last] = 0;
        assert_eq!(
            Compound::new_checked(&compound_bytes),
            Err(RtcpError::BadPadding)
        );
        compound_bytes[last] = 9;
        assert_eq!(
            Compound::new_checked(&compound_bytes),
            Err(RtcpError::BadPadding)
        );
    }

    #[test]
    fn report_count_must_fit() {
        let mut sr = build::rtcp_sr(1, 0, 0, 0, 0, &[]);
        sr[0] |= 1;
        assert_eq!(
            Compound::new_checked(&sr),
            Err(RtcpError::ReportBlocksOverrun)
        );
        // An SR whose length leaves no room for the sender info.
        let short_sr = [0x80, 200, 0, 1, 0, 0, 0, 1];
        assert_eq!(
            Compound::new_checked(&short_sr),
            Err(RtcpError::SubPacketTooShort)
        );
    }

    #[test]
    fn goodbye_and_app() {
        let mut bytes = build::rtcp_rr(1, &[]);
        bytes.extend_from_slice(&[
            0x82, 203, 0x00, 0x04, 0, 0, 0, 1, 0, 0, 0, 2, 4, b'd', b'o', b'n', b'e', 0, 0, 0,
        ]);
        bytes.extend_from_slice(&[0x85, 204, 0x00, 0x02, 0, 0, 0, 1, b'T', b'E', b'S', b'T']);
        bytes.extend_from_slice(&[0x81, 206, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2]);
        let compound = Compound::new_checked(&bytes).unwrap();
        let packets: Vec<_> = compound.packets().collect();
        assert_eq!(packets.len(), 4);
        let RtcpPacket::Goodbye(bye) = packets[1] else {
            panic!("not BYE");
        };
        assert_eq!(bye.ssrcs().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(bye.reason(), Some(&b"done"[..]));
        let RtcpPacket::App(app) = packets[2] else {
            panic!("not APP");
        };
        assert_eq!(app[0] & 0x1f, 5);
        assert_eq!(&app[8..12], b"TEST");
        assert_eq!(
            packets[3],
            RtcpPacket::Other {
                packet_type: 206,
                body: &bytes[40..52]
            }
        );

        let mut bad_bye = build::rtcp_rr(1, &[]);
        bad_bye.extend_from_slice(&[0x83, 203, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(
            Compound::new_checked(&bad_bye),
            Err(RtcpError::GoodbyeOverrun)
        );
        let mut short_app = build::rtcp_rr(1, &[]);
        short_app.extend_from_slice(&[0x80, 204, 0x00, 0x01, 0, 0, 0, 1]);
        assert_eq!(
            Compound::new_checked(&short_app),
            Err(RtcpError::SubPacketTooShort)
        );
    }

    /// RR + XR with a VoIP Metrics block followed by a 2-word unknown block.
    fn rr_with_xr() -> Vec<u8> {
        let mut bytes = build::rtcp_rr(0x0a0a_0a0a, &[]);
        bytes.extend_from_slice(&[0x80, 207, 0x00, 0x0c, 0x0a, 0x0a, 0x0a, 0x0a]);
        bytes.extend_from_slice(&[
            7, 0, 0x00, 0x08, // BT 7, length 8
            0x12, 0x34, 0x56, 0x78, // source SSRC
            13, 2, 200, 5, // loss 13/256, discard 2/256, burst density, gap density
            0x00, 0x78, 0x13, 0x88, // burst 120 ms, gap 5000 ms
            0x00, 0x96, 0x00, 0x28, // RTT 150 ms, end-system 40 ms
            0xe2, 0xb5, 127, 16, // signal −30 dBm0, noise −75 dBm0, RERL n/a, Gmin 16
            88, 127, 41, 39, // R 88, ext R n/a, MOS-LQ 4.1, MOS-CQ 3.9
            0xf3, 0x00, 0x00, 0x3c, // RX config (PLC std, adaptive, rate 3), JB nominal 60
            0x00, 0x78, 0x01, 0x2c, // JB max 120, abs max 300
        ]);
        bytes.extend_from_slice(&[42, 9, 0x00, 0x01, 1, 2, 3, 4]);
        bytes
    }

    #[test]
    fn extended_report_voip_metrics() {
        let bytes = rr_with_xr();
        let compound = Compound::new_checked(&bytes).unwrap();
        let packets: Vec<_> = compound.packets().collect();
        let RtcpPacket::ExtendedReport(xr) = packets[1] else {
            panic!("not XR");
        };
        assert_eq!(xr.ssrc(), 0x0a0a_0a0a);
        let blocks: Vec<_> = xr.blocks().collect();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks[1],
            XrBlock {
                block_type: 42,
                type_specific: 9,
                body: &[1, 2, 3, 4]
            }
        );
        assert_eq!(
            VoipMetrics::new_checked(&blocks[1]),
            Err(RtcpError::NotVoipMetrics)
        );
        let metrics = VoipMetrics::new_checked(&blocks[0]).unwrap();
        assert_eq!(metrics.ssrc(), 0x1234_5678);
        assert_eq!(metrics.loss_rate(), 13);
        assert_eq!(metrics.discard_rate(), 2);
        assert_eq!(metrics.burst_density(), 200);
        assert_eq!(metrics.gap_density(), 5);
        assert_eq!(metrics.burst_duration_ms(), 120);
        assert_eq!(metrics.gap_duration_ms(), 5000);
        assert_eq!(metrics.round_trip_delay_ms(), 150);
        assert_eq!(metrics.end_system_delay_ms(), 40);
        assert_eq!(metrics.signal_level(), -30);
        assert_eq!(metrics.noise_level(), -75);
        assert_eq!(metrics.rerl(), 127);
        assert_eq!(metrics.gmin(), 16);
        assert_eq!(metrics.r_factor(), 88);
        assert_eq!(metrics.ext_r_factor(), 127);
        assert_eq!(metrics.mos_lq(), 41);
        assert_eq!(metrics.mos_cq(), 39);
        assert_eq!(metrics.rx_config(), 0xf3);
        assert_eq!(metrics.jb_nominal(), 60);
        assert_eq!(metrics.jb_maximum(), 120);
        assert_eq!(metrics.jb_abs_max(), 300);

        let short_block = XrBlock {
            block_type: 7,
            type_specific: 0,
            body: &[0; 28],
        };
        assert_eq!(
            VoipMetrics::new_checked(&short_block),
            Err(RtcpError::VoipMetricsLength)
        );
    }

    /// The values metrics-spec T-XR-1 expects (loss rate 16, burst density 146, gap density 6,
    /// burst 140 ms, gap 840 ms, Gmin 16) survive the wire format.
    #[test]
    fn voip_metrics_t_xr_1_values() {
        let mut bytes = build::rtcp_rr(1, &[]);
        bytes.extend_from_slice(&[0x80, 207, 0x00, 0x0a, 0, 0, 0, 1, 7, 0, 0, 8, 0, 0, 0, 2]);
        bytes.extend_from_slice(&[16, 0, 146, 6, 0x00, 0x8c, 0x03, 0x48]);
        bytes.extend_from_slice(&[0, 0, 0, 0, 127, 127, 127, 16]);
        bytes.extend_from_slice(&[127; 4]);
        bytes.extend_from_slice(&[0; 8]);
        let compound = Compound::new_checked(&bytes).unwrap();
        let Some(RtcpPacket::ExtendedReport(xr)) = compound.packets().nth(1) else {
            panic!("not XR");
        };
        let block = xr.blocks().next().unwrap();
        let metrics = VoipMetrics::new_checked(&block).unwrap();
        assert_eq!(metrics.ssrc(), 2);
        assert_eq!(metrics.loss_rate(), 16);
        assert_eq!(metrics.burst_density(), 146);
        assert_eq!(metrics.gap_density(), 6);
        assert_eq!(metrics.burst_duration_ms(), 140);
        assert_eq!(metrics.gap_duration_ms(), 840);
        assert_eq!(metrics.gmin(), 16);
        assert_eq!(metrics.signal_level(), 127);
        assert_eq!(metrics.mos_cq(), 127);
    }

    #[test]
    fn extended_report_block_overrun() {
        let mut bytes = rr_with_xr();
        // Claim 9 words for the VoIP block: it then overlaps the last block's header.
        bytes[8 + 8 + 3] = 9;
        assert_eq!(
            Compound::new_checked(&bytes),
            Err(RtcpError::XrBlockOverrun)
        );
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            for compound in [Compound::new_checked(&data), Compound::new_checked_rsize(&data)]
                .into_iter()
                .flatten()
            {
                let mut total = 0;
                for packet in compound.packets() {
                    total += 1;
                    match packet {
                        RtcpPacket::SenderReport(sr) => { let _ = sr.report_blocks().count(); }
                        RtcpPacket::ReceiverReport(rr) => { let _ = rr.report_blocks().count(); }
                        RtcpPacket::Goodbye(bye) => { let _ = (bye.ssrcs().count(), bye.reason()); }
                        RtcpPacket::ExtendedReport(xr) => {
                            for block in xr.blocks() {
                                if let Ok(metrics) = VoipMetrics::new_checked(&block) {
                                    let _ = (metrics.jb_abs_max(), metrics.signal_level());
                                }
                            }
                        }
                        _ => {}
                    }
                }
                prop_assert!(total >= 1);
            }
        }

        /// Prefixing random bytes with a valid RR header makes the fuzzer reach sub-packet parsing.
        #[test]
        fn never_panics_after_valid_header(tail in proptest::collection::vec(any::<u8>(), 0..120)) {
            let mut data = build::rtcp_rr(1, &[]);
            data.extend_from_slice(&tail);
            if let Ok(compound) = Compound::new_checked(&data) {
                prop_assert!(compound.packets().count() >= 1);
            }
        }

        #[test]
        fn report_block_round_trip(
            ssrc in any::<u32>(),
            fraction_lost in any::<u8>(),
            cumulative_lost in -0x80_0000i32..0x80_0000,
            ext_highest_seq in any::<u32>(),
            jitter in any::<u32>(),
            lsr in any::<u32>(),
            dlsr in any::<u32>(),
        ) {
            let spec = ReportBlockSpec { ssrc, fraction_lost, cumulative_lost, ext_highest_seq, jitter, lsr, dlsr };
            let bytes = build::rtcp_rr(99, &[spec]);
            let compound = Compound::new_checked(&bytes).unwrap();
            let Some(RtcpPacket::ReceiverReport(rr)) = compound.packets().next() else {
                panic!("not an RR");
            };
            let block = rr.report_blocks().next().unwrap();
            prop_assert_eq!(block, ReportBlock { ssrc, fraction_lost, cumulative_lost, ext_highest_seq, jitter, lsr, dlsr });
        }
    }
}
