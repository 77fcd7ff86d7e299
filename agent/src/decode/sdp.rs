//! SDP view (RFC 8866) over the body of a SIP message.
//!
//! The agent reads SDP only to learn where media will flow and how to read it:
//! connection addresses (`c=`), media sections (`m=`), payload-type mappings
//! (`a=rtpmap`), the RTCP port (`a=rtcp`, `a=rtcp-mux`), `a=ptime` and the
//! direction attributes. Everything else is ignored. Input is untrusted: the
//! parser is lenient (CRLF or LF, stray whitespace, unknown or malformed lines
//! are skipped) and never panics.
//!
//! It must not copy body bytes (strings borrow the body) and must not let
//! hostile input allocate without bound: media sections, formats and rtpmaps
//! are capped. Hostnames in address fields are not resolved (they yield `None`).
//! The usual body (one media section with up to [`INLINE_FORMATS`] formats and
//! [`INLINE_RTPMAPS`] rtpmaps) is held inline and allocates nothing: one SDP
//! comes with every other SIP message, and its four heap blocks were freed right
//! after the message. Larger bodies spill to the heap, with the same caps.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smallvec::SmallVec;

use super::sip::LineEnds;

use thiserror::Error;

/// Media sections kept per description; later ones are ignored.
pub const MAX_MEDIA: usize = 32;
/// `a=rtpmap` lines kept per media section; later ones are ignored.
pub const MAX_RTPMAPS_PER_MEDIA: usize = 64;
/// Payload types kept per `m=` line (there are only 128 distinct ones).
pub const MAX_FORMATS_PER_MEDIA: usize = 128;

const MAX_PAYLOAD_TYPE: u8 = 127;

/// Media sections held without a heap allocation (an offer or answer usually has one).
pub const INLINE_MEDIA: usize = 1;
/// Payload types of an `m=` line held without a heap allocation.
pub const INLINE_FORMATS: usize = 16;
/// `a=rtpmap` lines of a media section held without a heap allocation.
pub const INLINE_RTPMAPS: usize = 8;

/// Why a body could not be viewed as SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SdpError {
    /// The body has neither a `v=` nor an `m=` line.
    #[error("not an sdp body")]
    NotSdp,
}

/// Media direction attribute (RFC 8866 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn from_attribute(name: &[u8]) -> Option<Self> {
        [
            (&b"sendrecv"[..], Direction::SendRecv),
            (b"sendonly", Direction::SendOnly),
            (b"recvonly", Direction::RecvOnly),
            (b"inactive", Direction::Inactive),
        ]
        .into_iter()
        .find(|(attribute, _)| name.eq_ignore_ascii_case(attribute))
        .map(|(_, direction)| direction)
    }
}

/// `a=rtpmap:<payload type> <encoding>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMap<'a> {
    pub payload_type: u8,
    /// Encoding name as written (compare case-insensitively).
    pub encoding: &'a str,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

/// One `m=` section with the attributes the monitor uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media<'a> {
    /// `audio`, `video`, ...
    pub kind: &'a [u8],
    /// 0 marks a rejected or disabled stream.
    pub port: u16,
    pub port_count: u16,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, ...
    pub proto: &'a [u8],
    /// Payload types of the `m=` line; non-numeric formats are skipped.
    pub formats: SmallVec<[u8; INLINE_FORMATS]>,
    /// Media-level `c=`; see [`Media::address`] for the session fallback.
    pub connection: Option<IpAddr>,
    pub rtpmaps: SmallVec<[RtpMap<'a>; INLINE_RTPMAPS]>,
    /// `a=rtcp:<port> [IN IP4|IP6 <address>]`.
    pub rtcp: Option<(u16, Option<IpAddr>)>,
    pub rtcp_mux: bool,
    pub ptime: Option<u32>,
    /// Media-level direction, else session-level, else send-receive.
    pub direction: Direction,
}

/// What an `m=` line carries, as far as the monitor cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaType {
    #[default]
    Audio,
    Video,
    /// `image` (T.38 fax), `application`, `text`, `message`, ...: not measured.
    Other,
}

/// The transport of an `m=` line (RFC 8866 §5.14, RFC 3711, RFC 5764, RFC 8843).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportProtocol {
    /// `RTP/AVP`, `RTP/AVPF`: clear RTP and RTCP.
    Rtp,
    /// `RTP/SAVP`, `RTP/SAVPF`, `UDP/TLS/RTP/SAVP(F)` (DTLS-SRTP), `TCP/TLS/RTP/SAVPF`, ...:
    /// SRTP, whose RTP headers are clear but whose RTCP is SRTCP (encrypted after 8 bytes).
    Srtp,
    /// Anything else (`udptl` for T.38, `TCP/MSRP`, `UDP/BFCP`, ...): not RTP.
    Other,
}

impl Media<'_> {
    /// The media type of the `m=` line (case-insensitive).
    pub fn media_type(&self) -> MediaType {
        if self.kind.eq_ignore_ascii_case(b"audio") {
            MediaType::Audio
        } else if self.kind.eq_ignore_ascii_case(b"video") {
            MediaType::Video
        } else {
            MediaType::Other
        }
    }

    /// The transport of the `m=` line: SRTP when its last `/`-separated part is an SAVP
    /// profile, RTP when it is an AVP one (case-insensitive, as devices write both).
    pub fn transport(&self) -> TransportProtocol {
        // The profile nearly every device writes, known without splitting it: its only part
        // `RTP` and its last part `AVP` make it RTP by the rule below.
        if self.proto.eq_ignore_ascii_case(b"RTP/AVP") {
            return TransportProtocol::Rtp;
        }
        Self::transport_of(self.proto)
    }

    /// The rule of [`Media::transport`] for any `m=` line protocol.
    fn transport_of(proto: &[u8]) -> TransportProtocol {
        let profile = proto.rsplit(|b| *b == b'/').next().unwrap_or_default();
        let has_rtp = proto
            .split(|b| *b == b'/')
            .any(|part| part.eq_ignore_ascii_case(b"RTP"));
        if !has_rtp {
            TransportProtocol::Other
        } else if profile.eq_ignore_ascii_case(b"SAVP") || profile.eq_ignore_ascii_case(b"SAVPF") {
            TransportProtocol::Srtp
        } else if profile.eq_ignore_ascii_case(b"AVP") || profile.eq_ignore_ascii_case(b"AVPF") {
            TransportProtocol::Rtp
        } else {
            TransportProtocol::Other
        }
    }

    /// Connection address of this media: media-level `c=`, else session-level.
    pub fn address(&self, session: &SessionDescription) -> Option<IpAddr> {
        self.connection.or(session.connection)
    }

    /// RTCP port: `a=rtcp`, else the RTP port under `a=rtcp-mux`, else RTP
    /// port + 1 (saturating). A rejected stream (port 0) has RTCP port 0.
    pub fn rtcp_port(&self) -> u16 {
        match self.rtcp {
            Some((port, _)) => port,
            None if self.rtcp_mux || self.port == 0 => self.port,
            None => self.port.saturating_add(1),
        }
    }
}

/// The parts of a session description the monitor uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription<'a> {
    /// The value of the session's `o=` line, read by [`SessionDescription::origin_address`]
    /// only when asked: nothing in the analysis reads the origin, and parsing its six fields
    /// and address cost about a tenth of parsing a body.
    origin: Option<&'a [u8]>,
    /// Session-level `c=`.
    pub connection: Option<IpAddr>,
    pub media: SmallVec<[Media<'a>; INLINE_MEDIA]>,
    /// Session-level direction attribute, else send-receive.
    pub direction: Direction,
}

/// Where attribute and connection lines currently apply.
#[derive(Clone, Copy)]
enum Section {
    Session,
    Media,
    /// A malformed `m=` line or one beyond [`MAX_MEDIA`]: its lines are dropped.
    Ignored,
}

impl<'a> SessionDescription<'a> {
    /// Parses an SDP body, skipping lines it does not understand.
    pub fn parse(body: &'a [u8]) -> Result<Self, SdpError> {
        let mut description = SessionDescription {
            origin: None,
            connection: None,
            media: SmallVec::new(),
            direction: Direction::SendRecv,
        };
        let mut looks_like_sdp = false;
        let mut section = Section::Session;
        // Bit i set: media i carries its own direction attribute.
        let mut explicit_direction: u32 = 0;

        for raw_line in lines(body) {
            let line = trim_line(raw_line);
            let (kind, value) = match line {
                [kind, b'=', value @ ..] if kind.is_ascii_lowercase() => (*kind, value),
                _ => continue,
            };
            match kind {
                b'v' => looks_like_sdp = true,
                // The last session-level `o=` line counts, as when each one was parsed here.
                b'o' if matches!(section, Section::Session) => description.origin = Some(value),
                b'm' => {
                    looks_like_sdp = true;
                    section = Section::Ignored;
                    if description.media.len() < MAX_MEDIA
                        && let Some(media) = parse_media_line(value)
                    {
                        description.media.push(media);
                        section = Section::Media;
                    }
                }
                b'c' => {
                    let address = parse_connection(value);
                    match section {
                        Section::Session if description.connection.is_none() => {
                            description.connection = address;
                        }
                        Section::Media => {
                            if let Some(media) = description.media.last_mut()
                                && media.connection.is_none()
                            {
                                media.connection = address;
                            }
                        }
                        _ => {}
                    }
                }
                b'a' => {
                    let (name, attribute_value) = split_attribute(value);
                    let direction = Direction::from_attribute(name);
                    match section {
                        Section::Session => {
                            if let Some(direction) = direction {
                                description.direction = direction;
                            }
                        }
                        Section::Media => {
                            let index = description.media.len().saturating_sub(1);
                            if let Some(media) = description.media.last_mut() {
                                if let Some(direction) = direction {
                                    media.direction = direction;
                                    let bit = u32::try_from(index)
                                        .ok()
                                        .and_then(|i| 1u32.checked_shl(i))
                                        .unwrap_or(0);
                                    explicit_direction |= bit;
                                } else {
                                    apply_media_attribute(media, name, attribute_value);
                                }
                            }
                        }
                        Section::Ignored => {}
                    }
                }
                _ => {}
            }
        }

        if !looks_like_sdp {
            return Err(SdpError::NotSdp);
        }
        for (index, media) in description.media.iter_mut().enumerate() {
            let explicit = u32::try_from(index)
                .ok()
                .and_then(|i| explicit_direction.checked_shr(i))
                .is_some_and(|bits| bits & 1 == 1);
            if !explicit {
                media.direction = description.direction;
            }
        }
        Ok(description)
    }

    /// Unicast address of the `o=` line (`None` without one, or when it names no IP literal).
    pub fn origin_address(&self) -> Option<IpAddr> {
        let mut fields = fields(self.origin?).skip(3);
        match (fields.next(), fields.next(), fields.next()) {
            (Some(net), Some(addr_type), Some(addr)) => parse_address(net, addr_type, addr),
            _ => None,
        }
    }

    /// The rtpmap for payload type `pt` in media section `media_index`.
    pub fn rtpmap(&self, media_index: usize, pt: u8) -> Option<&RtpMap<'a>> {
        self.media
            .get(media_index)?
            .rtpmaps
            .iter()
            .find(|map| map.payload_type == pt)
    }
}

/// The lines of a body split at each LF, as `body.split(|b| *b == b'\n')` yields them (the
/// piece after the last LF included), found with `memchr` ([`LineEnds`]) rather than byte by byte.
fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(body);
    let line_ends = LineEnds::new();
    std::iter::from_fn(move || {
        let remaining = rest?;
        match line_ends.find(remaining) {
            Some(lf) => {
                rest = remaining.get(lf.saturating_add(1)..);
                remaining.get(..lf)
            }
            None => {
                rest = None;
                Some(remaining)
            }
        }
    })
}

/// `raw_line.trim_ascii()`: a line as devices write it (no blank at either end but the CR of its
/// CRLF) is known trimmed by two compares, where the general trim read both ends byte by byte
/// (a twentieth of a body's parse).
fn trim_line(raw_line: &[u8]) -> &[u8] {
    let line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
    match (line.first(), line.last()) {
        (Some(first), Some(last))
            if !first.is_ascii_whitespace() && !last.is_ascii_whitespace() =>
        {
            line
        }
        _ => raw_line.trim_ascii(),
    }
}

/// Whitespace-separated fields of a line value.
fn fields(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|b| b.is_ascii_whitespace())
        .filter(|field| !field.is_empty())
}

/// `m=<media> <port>[/<count>] <proto> <fmt> ...`
fn parse_media_line(value: &[u8]) -> Option<Media<'_>> {
    let mut parts = fields(value);
    let kind = parts.next()?;
    let port_spec = parts.next()?;
    let proto = parts.next()?;
    let (port, port_count) = match port_spec.iter().position(|b| *b == b'/') {
        Some(slash) => (
            parse_number::<u16>(port_spec.get(..slash)?)?,
            parse_number::<u16>(port_spec.get(slash.checked_add(1)?..)?)?,
        ),
        None => (parse_number::<u16>(port_spec)?, 1),
    };
    let formats = parts
        .filter_map(parse_number::<u8>)
        .filter(|pt| *pt <= MAX_PAYLOAD_TYPE)
        .take(MAX_FORMATS_PER_MEDIA)
        .collect();
    Some(Media {
        kind,
        port,
        port_count,
        proto,
        formats,
        connection: None,
        rtpmaps: SmallVec::new(),
        rtcp: None,
        rtcp_mux: false,
        ptime: None,
        direction: Direction::SendRecv,
    })
}

/// `a=<name>[:<value>]` split into name and value.
fn split_attribute(value: &[u8]) -> (&[u8], &[u8]) {
    match value.iter().position(|b| *b == b':') {
        Some(colon) => (
            value.get(..colon).unwrap_or_default().trim_ascii(),
            value
                .get(colon.saturating_add(1)..)
                .unwrap_or_default()
                .trim_ascii(),
        ),
        None => (value, &[]),
    }
}

fn apply_media_attribute<'a>(media: &mut Media<'a>, name: &[u8], value: &'a [u8]) {
    if name.eq_ignore_ascii_case(b"rtpmap") {
        if media.rtpmaps.len() < MAX_RTPMAPS_PER_MEDIA
            && let Some(map) = parse_rtpmap(value)
        {
            media.rtpmaps.push(map);
        }
    } else if name.eq_ignore_ascii_case(b"rtcp") {
        if media.rtcp.is_none() {
            media.rtcp = parse_rtcp(value);
        }
    } else if name.eq_ignore_ascii_case(b"rtcp-mux") {
        media.rtcp_mux = true;
    } else if name.eq_ignore_ascii_case(b"ptime") {
        // Some devices write "20.0"; the integer part is what matters.
        let integer_end = value
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(value.len());
        media.ptime = value.get(..integer_end).and_then(parse_number::<u32>);
    }
}

/// `<pt> <encoding>/<clock rate>[/<channels>]`
fn parse_rtpmap(value: &[u8]) -> Option<RtpMap<'_>> {
    let mut parts = fields(value);
    let payload_type = parse_number::<u8>(parts.next()?).filter(|pt| *pt <= MAX_PAYLOAD_TYPE)?;
    let mut encoding_parts = parts.next()?.split(|b| *b == b'/');
    let encoding = encoding_parts.next().filter(|name| !name.is_empty())?;
    let encoding = std::str::from_utf8(encoding).ok()?;
    let clock_rate = parse_number::<u32>(encoding_parts.next()?)?;
    let channels = encoding_parts.next().and_then(parse_number::<u8>);
    Some(RtpMap {
        payload_type,
        encoding,
        clock_rate,
        channels,
    })
}

/// `<port> [IN IP4|IP6 <address>]` (RFC 3605).
fn parse_rtcp(value: &[u8]) -> Option<(u16, Option<IpAddr>)> {
    let mut parts = fields(value);
    let port = parse_number::<u16>(parts.next()?)?;
    let address = match (parts.next(), parts.next(), parts.next()) {
        (Some(net), Some(addr_type), Some(addr)) => parse_address(net, addr_type, addr),
        _ => None,
    };
    Some((port, address))
}

/// `c=IN IP4 <address>[/<ttl>[/<count>]]` or `c=IN IP6 <address>[/<count>]`.
fn parse_connection(value: &[u8]) -> Option<IpAddr> {
    let mut parts = fields(value);
    parse_address(parts.next()?, parts.next()?, parts.next()?)
}

/// An IP literal of the announced family; hostnames and mismatches yield `None`.
fn parse_address(net_type: &[u8], address_type: &[u8], address: &[u8]) -> Option<IpAddr> {
    if !net_type.eq_ignore_ascii_case(b"IN") {
        return None;
    }
    let literal_end = address
        .iter()
        .position(|b| *b == b'/')
        .unwrap_or(address.len());
    let literal = address.get(..literal_end)?;
    if address_type.eq_ignore_ascii_case(b"IP4") {
        parse_ipv4(literal).map(IpAddr::V4)
    } else if address_type.eq_ignore_ascii_case(b"IP6") {
        let literal = std::str::from_utf8(literal).ok()?;
        literal.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        None
    }
}

/// A dotted-quad IPv4 literal, exactly as `Ipv4Addr`'s `FromStr` reads it (four decimal
/// octets of one to three digits, at most 255, no leading zero), folded from the bytes: the
/// UTF-8 check and the std parser cost more than the rest of an `o=` or `c=` line.
fn parse_ipv4(literal: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut filled = 0;
    let (mut value, mut digits, mut leading_zero) = (0u32, 0u32, false);
    for &byte in literal {
        match byte {
            b'0'..=b'9' => {
                if digits == 0 {
                    leading_zero = byte == b'0';
                } else if leading_zero {
                    return None;
                }
                digits += 1;
                if digits > 3 {
                    return None;
                }
                value = value * 10 + u32::from(byte - b'0');
            }
            b'.' => {
                *octets.get_mut(filled)? = u8::try_from(value).ok().filter(|_| digits > 0)?;
                filled += 1;
                (value, digits) = (0, 0);
            }
            _ => return None,
        }
    }
    if filled != 3 || digits == 0 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

/// Unsigned decimal without sign or whitespace; `None` if out of range.
///
/// Folded from the bytes: going through `str::from_utf8` and `FromStr` cost a UTF-8 check and
/// a call per number, and an SDP has a dozen (3 % of a SIP-heavy analysis).
///
/// Up to 19 digits cannot overflow a `u64`: such a number (every number of a real SDP) is folded
/// without a check per digit, its bytes checked all at once after the fold.
fn parse_number<T: TryFrom<u64>>(digits: &[u8]) -> Option<T> {
    if digits.is_empty() {
        return None;
    }
    if digits.len() <= 19 {
        let (mut value, mut non_digit) = (0u64, false);
        for &byte in digits {
            let digit = byte.wrapping_sub(b'0');
            non_digit |= digit > 9;
            value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
        }
        return if non_digit {
            None
        } else {
            T::try_from(value).ok()
        };
    }
    let value = digits.iter().try_fold(0u64, |acc, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })?;
    T::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The `FromStr` form `parse_number` replaced.
    fn parse_number_by_str<T: std::str::FromStr>(digits: &[u8]) -> Option<T> {
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    }

    proptest! {
        /// `parse_ipv4` reads exactly what `Ipv4Addr`'s `FromStr` reads.
        #[test]
        fn parse_ipv4_equals_the_from_str_form(
            bytes in proptest::collection::vec(
                prop_oneof![8 => b'0'..=b'9', 3 => Just(b'.'), 1 => any::<u8>()], 0..20),
        ) {
            let by_str = std::str::from_utf8(&bytes).ok().and_then(|s| s.parse::<Ipv4Addr>().ok());
            prop_assert_eq!(parse_ipv4(&bytes), by_str);
        }

        #[test]
        fn parse_ipv4_reads_every_address(octets in any::<[u8; 4]>()) {
            let text = Ipv4Addr::from(octets).to_string();
            prop_assert_eq!(parse_ipv4(text.as_bytes()), Some(Ipv4Addr::from(octets)));
        }

        /// The shortcut for `RTP/AVP` gives what the general rule gives, in any case.
        #[test]
        fn transport_shortcut_agrees_with_the_rule(
            parts in proptest::collection::vec(
                prop::sample::select(vec!["RTP", "rtp", "AVP", "avp", "SAVP", "AVPF", "UDP", ""]),
                1..4,
            ),
        ) {
            let proto = parts.join("/");
            let media = parse_media_line(format!("audio 4000 {proto} 0").as_bytes())
                .map(|m| (m.transport(), Media::transport_of(m.proto)));
            if let Some((transport, by_rule)) = media {
                prop_assert_eq!(transport, by_rule);
            }
        }

        #[test]
        fn trim_line_equals_trim_ascii(
            bytes in proptest::collection::vec(
                prop::sample::select(vec![b'\r', b' ', b'\t', b'\x0c', b'\n', b'a', b'=', b'0']),
                0..12,
            ),
        ) {
            prop_assert_eq!(trim_line(&bytes), bytes.trim_ascii());
        }

        #[test]
        fn parse_number_equals_the_from_str_form(
            digits in proptest::collection::vec(
                prop_oneof![4 => b'0'..=b'9', 1 => any::<u8>()], 0..24),
        ) {
            prop_assert_eq!(parse_number::<u8>(&digits), parse_number_by_str::<u8>(&digits));
            prop_assert_eq!(parse_number::<u16>(&digits), parse_number_by_str::<u16>(&digits));
            prop_assert_eq!(parse_number::<u32>(&digits), parse_number_by_str::<u32>(&digits));
        }
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    #[test]
    fn pcmu_pcma_offer() {
        let body = b"v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";
        let sdp = SessionDescription::parse(body).expect("sdp");
        assert_eq!(sdp.origin_address(), v4(192, 0, 2, 10));
        assert_eq!(sdp.connection, v4(192, 0, 2, 10));
        assert_eq!(sdp.direction, Direction::SendRecv);
        assert_eq!(sdp.media.len(), 1);
        let audio = &sdp.media[0];
        assert_eq!(audio.kind, b"audio");
        assert_eq!((audio.port, audio.port_count), (49170, 1));
        assert_eq!(audio.proto, b"RTP/AVP");
        assert_eq!(audio.formats[..], [0, 8, 101]);
        assert_eq!(audio.connection, None);
        assert_eq!(audio.address(&sdp), v4(192, 0, 2, 10));
        assert_eq!(audio.ptime, Some(20));
        assert_eq!(audio.direction, Direction::SendRecv);
        assert_eq!(audio.rtcp_port(), 49171);
        assert_eq!(audio.rtpmaps.len(), 3);
        assert_eq!(
            sdp.rtpmap(0, 101),
            Some(&RtpMap {
                payload_type: 101,
                encoding: "telephone-event",
                clock_rate: 8000,
                channels: None
            })
        );
        assert_eq!(sdp.rtpmap(0, 8).map(|m| m.encoding), Some("PCMA"));
        assert_eq!(sdp.rtpmap(0, 9), None);
        assert_eq!(sdp.rtpmap(1, 0), None);
    }

    #[test]
    fn opus_offer_lf_only() {
        let body = b"v=0\no=- 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\n\
m=audio 40000 RTP/AVP 111 101\na=rtpmap:111 opus/48000/2\n\
a=fmtp:111 minptime=10;useinbandfec=1\na=rtpmap:101 telephone-event/48000\n";
        let sdp = SessionDescription::parse(body).expect("sdp");
        assert_eq!(
            sdp.rtpmap(0, 111),
            Some(&RtpMap {
                payload_type: 111,
                encoding: "opus",
                clock_rate: 48000,
                channels: Some(2)
            })
        );
        assert_eq!(sdp.rtpmap(0, 101).map(|m| m.clock_rate), Some(48000));
    }

    /// The origin read on request is the one parsing every `o=` line gave: the last
    /// session-level one, whatever it holds; one in a media section does not count.
    #[test]
    fn origin_address_is_the_last_session_level_origin() {
        let cases: [(&[u8], Option<IpAddr>); 5] = [
            (
                b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n",
                v4(192, 0, 2, 1),
            ),
            (
                b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\no=- 2 2 IN IP4 192.0.2.2\r\n",
                v4(192, 0, 2, 2),
            ),
            (b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\no=broken\r\n", None),
            (
                b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n\
o=- 2 2 IN IP4 192.0.2.2\r\n",
                v4(192, 0, 2, 1),
            ),
            (b"v=0\r\no=- 1 1 IN IP4 host.example\r\n", None),
        ];
        for (body, expected) in cases {
            let sdp = SessionDescription::parse(body).expect("sdp");
            assert_eq!(
                sdp.origin_address(),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn ipv6_connection() {
        let body = b"v=0\r\no=- 1 1 IN IP6 2001:db8::2\r\nc=IN IP6 2001:db8::1\r\nm=audio 5004 RTP/AVP 0\r\n";
        let sdp = SessionDescription::parse(body).expect("sdp");
        let expected: IpAddr = "2001:db8::1".parse().expect("literal");
        assert_eq!(sdp.connection, Some(expected));
        assert_eq!(sdp.origin_address(), "2001:db8::2".parse().ok());
        assert_eq!(sdp.media[0].address(&sdp), Some(expected));
    }

    #[test]
    fn rfc3605_rtcp_attribute_and_rtcp_mux() {
        let body = b"v=0\r\nc=IN IP4 192.0.2.1\r\n\
m=audio 49170 RTP/AVP 0\r\na=rtcp:53020 IN IP4 126.16.64.4\r\n\
m=audio 49180 RTP/AVP 0\r\na=rtcp:53020\r\n\
m=audio 49190 RTP/SAVPF 0\r\na=rtcp-mux\r\n\
m=audio 65535 RTP/AVP 0\r\n\
m=audio 0 RTP/AVP 0\r\n";
        let sdp = SessionDescription::parse(body).expect("sdp");
        assert_eq!(sdp.media[0].rtcp, Some((53020, v4(126, 16, 64, 4))));
        assert_eq!(sdp.media[0].rtcp_port(), 53020);
        assert_eq!(sdp.media[1].rtcp, Some((53020, None)));
        assert!(sdp.media[2].rtcp_mux);
        assert_eq!(sdp.media[2].rtcp_port(), 49190);
        assert_eq!(sdp.media[3].rtcp_port(), 65535);
        assert_eq!(sdp.media[4].port, 0);
        assert_eq!(sdp.media[4].rtcp_port(), 0);
    }

    #[test]
    fn media_connection_overrides_session_and_hostnames_are_none() {
        let body = b"v=0\r\nc=IN IP4 224.2.1.1/127\r\n\
m=audio 4000 RTP/AVP 0\r\nc=IN IP4 198.51.100.7\r\n\
m=video 4002/2 RTP/AVP 31 webrtc-datachannel 300 34\r\n\
m=audio 4004 RTP/AVP 0\r\nc=IN IP4 host.example.com\r\n";
        let sdp = SessionDescription::parse(body).expect("sdp");
        assert_eq!(sdp.connection, v4(224, 2, 1, 1));
        assert_eq!(sdp.media[0].address(&sdp), v4(198, 51, 100, 7));
        assert_eq!(sdp.media[1].address(&sdp), v4(224, 2, 1, 1));
        assert_eq!(sdp.media[1].kind, b"video");
        assert_eq!((sdp.media[1].port, sdp.media[1].port_count), (4002, 2));
        assert_eq!(sdp.media[1].formats[..], [31, 34]);
        assert_eq!(sdp.media[2].connection, None);
        assert_eq!(sdp.media[2].address(&sdp), v4(224, 2, 1, 1));

        let mismatched = SessionDescription::parse(b"v=0\nc=IN IP4 2001:db8::1\n").expect("sdp");
        assert_eq!(mismatched.connection, None);
    }

    #[test]
    fn directions_session_and_media_level() {
        let body = b"v=0\na=recvonly\nm=audio 1 RTP/AVP 0\nm=audio 2 RTP/AVP 0\na=INACTIVE\n\
m=audio 3 RTP/AVP 0\na=sendonly\n";
        let sdp = SessionDescription::parse(body).expect("sdp");
        assert_eq!(sdp.direction, Direction::RecvOnly);
        let directions: Vec<Direction> = sdp.media.iter().map(|m| m.direction).collect();
        assert_eq!(
            directions,
            vec![
                Direction::RecvOnly,
                Direction::Inactive,
                Direction::SendOnly
            ]
        );
    }

    #[test]
    fn lenient_lines_and_malformed_attributes() {
        let body = b"  v=0  \r\ngarbage line\r\nX=upper\r\n\
m=audio notaport RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
m=audio 7000 RTP/AVP 0 200 96\r\n\
a=rtpmap:96\r\na=rtpmap:200 X/8000\r\na=rtpmap:96 /8000\r\na=rtpmap:96 AMR/x\r\n\
a=rtpmap:96 AMR-WB/16000/300\r\na=ptime:20.0\r\na=rtcp:99999\r\n";
        let sdp = SessionDescription::parse(body).expect("sdp");
        assert_eq!(sdp.media.len(), 1, "malformed m= line is dropped");
        let audio = &sdp.media[0];
        assert_eq!(audio.port, 7000);
        assert_eq!(audio.formats[..], [0, 96]);
        assert_eq!(
            audio.rtpmaps[..],
            [RtpMap {
                payload_type: 96,
                encoding: "AMR-WB",
                clock_rate: 16000,
                channels: None
            }]
        );
        assert_eq!(audio.ptime, Some(20));
        assert_eq!(audio.rtcp, None);
    }

    /// The usual offer (one audio section, a handful of formats and rtpmaps) is held inline:
    /// parsing it allocates nothing. One past each inline size spills and keeps everything.
    #[test]
    fn usual_offer_is_held_inline_and_larger_ones_spill_whole() {
        let body = b"v=0\r\no=- 1 1 IN IP4 10.1.0.1\r\ns=-\r\nc=IN IP4 10.1.0.1\r\nt=0 0\r\n\
m=audio 16830 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";
        let sdp = SessionDescription::parse(body).expect("sdp");
        assert!(!sdp.media.spilled());
        assert!(!sdp.media[0].formats.spilled() && !sdp.media[0].rtpmaps.spilled());
        assert_eq!(sdp.media[0].rtpmaps.len(), 3);

        let mut body = String::from("v=0\r\n");
        for m in 0..=INLINE_MEDIA {
            body.push_str(&format!("m=audio {} RTP/AVP", 1000 + m));
            for pt in 0..=INLINE_FORMATS {
                body.push_str(&format!(" {pt}"));
            }
            body.push_str("\r\n");
            for pt in 0..=INLINE_RTPMAPS {
                body.push_str(&format!("a=rtpmap:{pt} C{pt}/8000\r\n"));
            }
        }
        let sdp = SessionDescription::parse(body.as_bytes()).expect("sdp");
        assert_eq!(sdp.media.len(), INLINE_MEDIA + 1);
        for (m, media) in sdp.media.iter().enumerate() {
            assert_eq!(usize::from(media.port), 1000 + m);
            assert_eq!(media.formats.len(), INLINE_FORMATS + 1);
            assert_eq!(media.rtpmaps.len(), INLINE_RTPMAPS + 1);
            assert_eq!(media.rtpmaps.last().map(|r| r.encoding), Some("C8"));
        }
    }

    #[test]
    fn not_sdp_is_an_error() {
        assert_eq!(SessionDescription::parse(b""), Err(SdpError::NotSdp));
        assert_eq!(
            SessionDescription::parse(b"<html>hello</html>"),
            Err(SdpError::NotSdp)
        );
        assert_eq!(
            SessionDescription::parse(b"a=rtpmap:0 PCMU/8000\nc=IN IP4 1.2.3.4\n"),
            Err(SdpError::NotSdp)
        );
        assert!(SessionDescription::parse(b"m=audio 1 RTP/AVP 0").is_ok());
    }

    #[test]
    fn hostile_input_is_bounded() {
        let mut body = b"v=0\n".to_vec();
        for index in 0..100u16 {
            body.extend_from_slice(format!("m=audio {index} RTP/AVP 0\n").as_bytes());
            for pt in 0..100u8 {
                body.extend_from_slice(format!("a=rtpmap:{} X/8000\n", pt % 128).as_bytes());
            }
        }
        let sdp = SessionDescription::parse(&body).expect("sdp");
        assert_eq!(sdp.media.len(), MAX_MEDIA);
        assert!(
            sdp.media
                .iter()
                .all(|m| m.rtpmaps.len() == MAX_RTPMAPS_PER_MEDIA)
        );
        assert_eq!(sdp.media[MAX_MEDIA - 1].port, 31);

        let mut formats = b"m=audio 1 RTP/AVP".to_vec();
        for _ in 0..1000 {
            formats.extend_from_slice(b" 0");
        }
        let sdp = SessionDescription::parse(&formats).expect("sdp");
        assert_eq!(sdp.media[0].formats.len(), MAX_FORMATS_PER_MEDIA);
    }

    proptest! {
        #[test]
        fn lines_split_like_the_bytewise_split(
            bytes in proptest::collection::vec(
                prop::sample::select(vec![b'\n', b'\r', b'a', b'=', b' ']),
                0..80,
            )
        ) {
            let ours: Vec<&[u8]> = lines(&bytes).collect();
            let split: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
            prop_assert_eq!(ours, split);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(sdp) = SessionDescription::parse(&bytes) {
                exercise(&sdp);
            }
        }

        #[test]
        fn line_soup_never_panics(
            lines in proptest::collection::vec(
                (
                    prop::sample::select(vec![
                        "v=", "m=", "c=", "o=", "a=rtpmap:", "a=rtcp:", "a=rtcp-mux", "a=ptime:",
                        "a=sendonly", "a=", "x", "",
                    ]),
                    proptest::collection::vec(
                        prop::sample::select(vec![
                            &b"audio"[..], b" ", b"/", b"0", b"65535", b"65536", b"127", b"128",
                            b"IN", b"IP4", b"IP6", b"192.0.2.1", b"::1", b"RTP/AVP", b"\r", b"\xff",
                            b"opus/48000/2", b"4294967296",
                        ]),
                        0..12,
                    ),
                ),
                0..40,
            ),
        ) {
            let mut body = Vec::new();
            for (prefix, parts) in &lines {
                body.extend_from_slice(prefix.as_bytes());
                body.extend(parts.concat());
                body.push(b'\n');
            }
            if let Ok(sdp) = SessionDescription::parse(&body) {
                exercise(&sdp);
                prop_assert!(sdp.media.len() <= MAX_MEDIA);
            }
        }

        #[test]
        fn media_line_round_trip(
            port in any::<u16>(),
            formats in proptest::collection::vec(0u8..=127, 0..10),
            pt in 96u8..=127,
            clock in any::<u32>(),
            channels in proptest::option::of(any::<u8>()),
        ) {
            let format_list: String = formats.iter().map(|f| format!(" {f}")).collect();
            let channel_suffix = channels.map(|c| format!("/{c}")).unwrap_or_default();
            let body = format!(
                "v=0\r\nm=audio {port} RTP/AVP{format_list}\r\na=rtpmap:{pt} Codec/{clock}{channel_suffix}\r\n"
            );
            let sdp = SessionDescription::parse(body.as_bytes()).expect("sdp");
            prop_assert_eq!(sdp.media[0].port, port);
            prop_assert_eq!(&sdp.media[0].formats[..], &formats[..]);
            prop_assert_eq!(
                sdp.rtpmap(0, pt),
                Some(&RtpMap { payload_type: pt, encoding: "Codec", clock_rate: clock, channels })
            );
        }
    }

    #[test]
    fn media_types_and_transports() {
        let body = b"v=0\r\nc=IN IP4 192.0.2.1\r\n\
m=audio 4000 RTP/AVP 0\r\n\
m=audio 4002 RTP/SAVP 0\r\n\
m=video 4004 RTP/SAVPF 96\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
m=video 9 udp/tls/rtp/savpf 96\r\n\
m=audio 4006 rtp/avpf 0\r\n\
m=image 4008 udptl t38\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
m=audio 4010 TCP/TLS/RTP/SAVPF 0\r\n\
m=text 4012 RTP/AVP 98\r\n\
m=audio 4014 RTP/XYZ 0\r\n";
        let sdp = SessionDescription::parse(body).expect("sdp");
        let got: Vec<(MediaType, TransportProtocol)> = sdp
            .media
            .iter()
            .map(|m| (m.media_type(), m.transport()))
            .collect();
        use MediaType::{Audio, Other as OtherMedia, Video};
        use TransportProtocol::{Other, Rtp, Srtp};
        assert_eq!(
            got,
            vec![
                (Audio, Rtp),
                (Audio, Srtp),
                (Video, Srtp),
                (Audio, Srtp),
                (Video, Srtp),
                (Audio, Rtp),
                (OtherMedia, Other),
                (OtherMedia, Other),
                (Audio, Srtp),
                (OtherMedia, Rtp),
                (Audio, Other),
            ]
        );
    }

    fn exercise(sdp: &SessionDescription<'_>) {
        for (index, media) in sdp.media.iter().enumerate() {
            let _ = (media.address(sdp), media.rtcp_port());
            let _ = (media.media_type(), media.transport());
            assert!(media.rtpmaps.len() <= MAX_RTPMAPS_PER_MEDIA);
            assert!(media.formats.iter().all(|pt| *pt <= 127));
            for map in &media.rtpmaps {
                assert_eq!(
                    sdp.rtpmap(index, map.payload_type).map(|m| m.payload_type),
                    Some(map.payload_type)
                );
            }
        }
    }
}
