//! WebSocket (RFC 6455) pieces that SIP over WebSocket (RFC 7118) needs: the opening
//! handshake's recognition, the frame header view and unmasking.
//!
//! Stateless helpers for `super::tcp`, which keeps the per-connection state. They read borrowed
//! bytes only, never panic on hostile input and never allocate; a frame's payload length is
//! reported as read (up to 2^63 - 1) and bounding it is the caller's job.

use crate::decode::sip::SipMessage;

/// Longest frame header: 2 bytes, 8 bytes of extended length, 4 bytes of masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// Frame opcodes (RFC 6455 §5.2).
pub mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xa;
}

/// A WebSocket frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub opcode: u8,
    /// Masking key (client-to-server frames); `None` when the frame is not masked.
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
    /// Octets of the header itself (2 to 14).
    pub header_len: usize,
}

/// Why bytes are not a WebSocket frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// More bytes are needed to read the header.
    Incomplete,
    /// Reserved bits or opcodes, a control frame longer than 125 octets or fragmented, or a
    /// 64-bit length with its top bit set: not a frame RFC 6455 allows.
    Invalid,
}

impl FrameHeader {
    /// Reads the frame header at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, FrameError> {
        let Some(&[first, second]) = bytes.first_chunk::<2>() else {
            return Err(FrameError::Incomplete);
        };
        let fin = first & 0x80 != 0;
        let opcode = first & 0x0f;
        // No extension is negotiated for SIP (RFC 7118): reserved bits must be zero.
        if first & 0x70 != 0 {
            return Err(FrameError::Invalid);
        }
        let control = opcode & 0x08 != 0;
        if !matches!(
            opcode,
            self::opcode::CONTINUATION
                | self::opcode::TEXT
                | self::opcode::BINARY
                | self::opcode::CLOSE
                | self::opcode::PING
                | self::opcode::PONG
        ) {
            return Err(FrameError::Invalid);
        }
        let masked = second & 0x80 != 0;
        let (payload_len, length_len) = match second & 0x7f {
            126 => {
                let Some(&[a, b]) = bytes.get(2..).and_then(|b| b.first_chunk::<2>()) else {
                    return Err(FrameError::Incomplete);
                };
                (u64::from(u16::from_be_bytes([a, b])), 2)
            }
            127 => {
                let Some(raw) = bytes.get(2..).and_then(|b| b.first_chunk::<8>()) else {
                    return Err(FrameError::Incomplete);
                };
                let len = u64::from_be_bytes(*raw);
                if len >> 63 != 0 {
                    return Err(FrameError::Invalid);
                }
                (len, 8)
            }
            short => (u64::from(short), 0),
        };
        if control && (!fin || payload_len > 125) {
            return Err(FrameError::Invalid);
        }
        let key_at = 2 + length_len;
        let mask = if masked {
            let Some(key) = bytes.get(key_at..).and_then(|b| b.first_chunk::<4>()) else {
                return Err(FrameError::Incomplete);
            };
            Some(*key)
        } else {
            None
        };
        Ok(FrameHeader {
            fin,
            opcode,
            mask,
            payload_len,
            header_len: key_at + if masked { 4 } else { 0 },
        })
    }

    /// A data frame (text, binary or continuation).
    pub fn is_data(&self) -> bool {
        self.opcode & 0x08 == 0
    }
}

/// Appends `payload` to `out`, unmasked with `mask` (RFC 6455 §5.3) when there is one;
/// `offset` is the position of `payload[0]` within the frame's payload.
pub fn unmask_into(out: &mut Vec<u8>, payload: &[u8], mask: Option<[u8; 4]>, offset: usize) {
    match mask {
        None => out.extend_from_slice(payload),
        Some(key) => out.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[(offset + i) % 4]),
        ),
    }
}

/// What an HTTP message starting a TCP direction says about WebSocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// A complete upgrade request or 101 response for WebSocket with the `sip` subprotocol;
    /// frames follow after `header_len` octets.
    Sip { header_len: usize },
    /// HTTP, but not (or not yet visibly) an upgrade to SIP over WebSocket.
    Other,
}

/// Recognises the opening handshake of SIP over WebSocket (RFC 7118 §4): a `GET` with
/// `Upgrade: websocket` and `Sec-WebSocket-Protocol` naming `sip`, or the `101` answer naming
/// `sip`. Only a header block complete in `bytes` is recognised (the caller bounds `bytes`).
pub fn handshake(bytes: &[u8]) -> Handshake {
    let request = bytes.starts_with(b"GET ");
    let response = bytes.starts_with(b"HTTP/1.1 101") || bytes.starts_with(b"HTTP/1.0 101");
    if !request && !response {
        return Handshake::Other;
    }
    let Some(header_len) = header_block_len(bytes) else {
        return Handshake::Other;
    };
    // The header block has the shape of a SIP message's (start line, fields, empty line), so the
    // SIP view's header iterator reads it; its start line is checked above instead.
    let Some(block) = bytes.get(..header_len) else {
        return Handshake::Other;
    };
    let first_line_end = block
        .iter()
        .position(|b| *b == b'\n')
        .map_or(block.len(), |i| i + 1);
    let fields = block.get(first_line_end..).unwrap_or_default();
    let (mut upgrade, mut sip) = (false, false);
    for (name, value) in header_fields(fields) {
        if name.eq_ignore_ascii_case(b"Upgrade") {
            upgrade |= value.trim_ascii().eq_ignore_ascii_case(b"websocket");
        } else if name.eq_ignore_ascii_case(b"Sec-WebSocket-Protocol") {
            sip |= value
                .split(|b| *b == b',')
                .any(|p| p.trim_ascii().eq_ignore_ascii_case(b"sip"));
        }
    }
    if upgrade && sip {
        Handshake::Sip { header_len }
    } else {
        Handshake::Other
    }
}

/// Length of an HTTP/SIP header block up to and including its empty line (CRLF CRLF, or LF LF
/// from lenient peers); `None` when `bytes` does not hold it yet.
pub fn header_block_len(bytes: &[u8]) -> Option<usize> {
    let mut line_start = 0usize;
    loop {
        let rest = bytes.get(line_start..)?;
        let lf = rest.iter().position(|b| *b == b'\n')?;
        let line = rest.get(..lf)?;
        let next = line_start + lf + 1;
        if line_start > 0 && (line.is_empty() || line == b"\r") {
            return Some(next);
        }
        line_start = next;
    }
}

/// `(name, value)` of each `Name: value` line (no folding: HTTP/1.1 forbids it).
fn header_fields(block: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    block.split(|b| *b == b'\n').filter_map(|line| {
        let colon = line.iter().position(|b| *b == b':')?;
        let (name, value) = line.split_at(colon);
        Some((name.trim_ascii(), value.get(1..)?.trim_ascii()))
    })
}

/// True when `bytes` (the start of a frame payload, unmasked) begin with a SIP start line: how
/// a WebSocket frame is recognised when resynchronising inside a connection.
pub fn starts_with_sip(bytes: &[u8]) -> bool {
    SipMessage::parse(bytes).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_lengths_and_masks() {
        // RFC 6455 §5.7 examples: unmasked "Hello", masked "Hello".
        let unmasked = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let h = FrameHeader::parse(&unmasked).unwrap();
        assert_eq!(
            h,
            FrameHeader {
                fin: true,
                opcode: opcode::TEXT,
                mask: None,
                payload_len: 5,
                header_len: 2
            }
        );
        let masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let h = FrameHeader::parse(&masked).unwrap();
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(h.header_len, 6);
        let mut out = Vec::new();
        unmask_into(&mut out, &masked[6..8], h.mask, 0);
        unmask_into(&mut out, &masked[8..], h.mask, 2);
        assert_eq!(out, b"Hello");
        // A fragmented unmasked text message: "Hel" then "lo".
        let first = FrameHeader::parse(&[0x01, 0x03, 0x48, 0x65, 0x6c]).unwrap();
        assert!(!first.fin && first.opcode == opcode::TEXT);
        let last = FrameHeader::parse(&[0x80, 0x02, 0x6c, 0x6f]).unwrap();
        assert!(last.fin && last.opcode == opcode::CONTINUATION);
        // 256 bytes binary, 16-bit length; 64 KiB binary, 64-bit length.
        let h = FrameHeader::parse(&[0x82, 0x7e, 0x01, 0x00]).unwrap();
        assert_eq!((h.payload_len, h.header_len), (256, 4));
        let h = FrameHeader::parse(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap();
        assert_eq!((h.payload_len, h.header_len), (65536, 10));
        let h = FrameHeader::parse(&[0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4]).unwrap();
        assert_eq!((h.header_len, h.mask), (14, Some([1, 2, 3, 4])));
    }

    #[test]
    fn incomplete_and_invalid_headers() {
        assert_eq!(FrameHeader::parse(&[0x81]), Err(FrameError::Incomplete));
        assert_eq!(
            FrameHeader::parse(&[0x81, 0x7e, 1]),
            Err(FrameError::Incomplete)
        );
        assert_eq!(
            FrameHeader::parse(&[0x81, 0x7f, 0, 0, 0, 0, 0, 0, 1]),
            Err(FrameError::Incomplete)
        );
        assert_eq!(
            FrameHeader::parse(&[0x81, 0x85, 1, 2, 3]),
            Err(FrameError::Incomplete)
        );
        // Reserved bit, reserved opcode, long or fragmented control frame, 64-bit top bit.
        assert_eq!(FrameHeader::parse(&[0xc1, 0x00]), Err(FrameError::Invalid));
        assert_eq!(FrameHeader::parse(&[0x83, 0x00]), Err(FrameError::Invalid));
        assert_eq!(
            FrameHeader::parse(&[0x89, 0x7e, 0, 126]),
            Err(FrameError::Invalid)
        );
        assert_eq!(FrameHeader::parse(&[0x09, 0x00]), Err(FrameError::Invalid));
        assert_eq!(
            FrameHeader::parse(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(FrameError::Invalid)
        );
        let ping = FrameHeader::parse(&[0x89, 0x00]).unwrap();
        assert!(!ping.is_data());
    }

    #[test]
    fn handshakes() {
        let request = b"GET / HTTP/1.1\r\nHost: proxy.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert_eq!(
            handshake(request),
            Handshake::Sip {
                header_len: request.len()
            }
        );
        let mut with_frame = request.to_vec();
        with_frame.extend_from_slice(&[0x81, 0x00]);
        assert_eq!(
            handshake(&with_frame),
            Handshake::Sip {
                header_len: request.len()
            }
        );
        let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Protocol: sip\r\n\r\n";
        assert_eq!(
            handshake(response),
            Handshake::Sip {
                header_len: response.len()
            }
        );
        // Another subprotocol, no upgrade, a plain GET, a cut header block, other text.
        let chat =
            String::from_utf8_lossy(request).replace("Protocol: sip", "Protocol: chat, mqtt");
        assert_eq!(handshake(chat.as_bytes()), Handshake::Other);
        let listed =
            String::from_utf8_lossy(request).replace("Protocol: sip", "Protocol: chat, SIP");
        assert!(matches!(
            handshake(listed.as_bytes()),
            Handshake::Sip { .. }
        ));
        let no_upgrade = String::from_utf8_lossy(request).replace("Upgrade: websocket", "X: y");
        assert_eq!(handshake(no_upgrade.as_bytes()), Handshake::Other);
        assert_eq!(
            handshake(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Handshake::Other
        );
        assert_eq!(handshake(&request[..request.len() - 2]), Handshake::Other);
        assert_eq!(
            handshake(b"INVITE sip:a@b SIP/2.0\r\n\r\n"),
            Handshake::Other
        );
        assert_eq!(handshake(b"HTTP/1.1 200 OK\r\n\r\n"), Handshake::Other);
    }

    #[test]
    fn header_block_lengths() {
        assert_eq!(header_block_len(b"A\r\nB: c\r\n\r\nbody"), Some(11));
        assert_eq!(header_block_len(b"A\nB: c\n\nbody"), Some(8));
        assert_eq!(header_block_len(b"A\r\n\r\n"), Some(5));
        assert_eq!(header_block_len(b"A\r\nB: c\r\n"), None);
        assert_eq!(header_block_len(b""), None);
        // An empty first line is not the end of a header block.
        assert_eq!(header_block_len(b"\r\n\r\n"), Some(4));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_is_consistent(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            match FrameHeader::parse(&bytes) {
                Ok(h) => {
                    prop_assert!(h.header_len >= 2 && h.header_len <= MAX_HEADER_LEN);
                    prop_assert!(h.header_len <= bytes.len());
                    prop_assert!(h.payload_len < 1 << 63);
                }
                Err(FrameError::Incomplete) => prop_assert!(bytes.len() < MAX_HEADER_LEN),
                Err(FrameError::Invalid) => {}
            }
            let _ = handshake(&bytes);
            let _ = header_block_len(&bytes);
        }

        #[test]
        fn unmasking_twice_is_identity(payload in proptest::collection::vec(any::<u8>(), 0..64), key in any::<[u8; 4]>(), split in 0usize..64) {
            let split = split.min(payload.len());
            let mut masked = Vec::new();
            unmask_into(&mut masked, &payload, Some(key), 0);
            let mut out = Vec::new();
            unmask_into(&mut out, &masked[..split], Some(key), 0);
            unmask_into(&mut out, &masked[split..], Some(key), split);
            prop_assert_eq!(out, payload);
        }
    }
}
