//! TCP header view: ports, sequence number, flags and the segment payload.
//!
//! The agent reads TCP only to reassemble SIP signalling (`crate::reassembly::tcp`): it needs
//! the ports, the sequence number, SYN/FIN/RST and the payload. The fixed header is held as an
//! array reference obtained by a checked split, so field reads are constant indexes that cannot
//! fail; the payload range comes from the validated data offset. This module must not verify
//! checksums (capture hosts offload them), interpret options, keep connection state, allocate or
//! copy packet bytes.

use thiserror::Error;

/// Length of the fixed TCP header (data offset 5).
pub const MIN_HEADER_LEN: usize = 20;

/// TCP flag bits (low byte of the flags field).
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum TcpError {
    /// The captured bytes end inside the header (fixed part or options).
    #[error("tcp header truncated")]
    Truncated,
    /// Data offset below 5 words.
    #[error("tcp data offset below 20 octets")]
    BadDataOffset,
}

/// Checked TCP view over an IP payload (the captured part of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tcp<'a> {
    /// The fixed header (array reference: constant indexes cannot fail).
    header: &'a [u8; MIN_HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> Tcp<'a> {
    /// `buffer` is the IP payload; everything after the header (options included) is payload.
    pub fn new_checked(buffer: &'a [u8]) -> Result<Self, TcpError> {
        let Some(header) = buffer.first_chunk::<MIN_HEADER_LEN>() else {
            return Err(TcpError::Truncated);
        };
        let header_len = usize::from(header[12] >> 4) * 4;
        if header_len < MIN_HEADER_LEN {
            return Err(TcpError::BadDataOffset);
        }
        let payload = buffer.get(header_len..).ok_or(TcpError::Truncated)?;
        Ok(Self { header, payload })
    }

    pub fn source_port(&self) -> u16 {
        u16::from_be_bytes([self.header[0], self.header[1]])
    }

    pub fn destination_port(&self) -> u16 {
        u16::from_be_bytes([self.header[2], self.header[3]])
    }

    /// Sequence number of the first payload byte (of the SYN itself when SYN is set).
    pub fn sequence(&self) -> u32 {
        u32::from_be_bytes([
            self.header[4],
            self.header[5],
            self.header[6],
            self.header[7],
        ])
    }

    pub fn acknowledgment(&self) -> u32 {
        u32::from_be_bytes([
            self.header[8],
            self.header[9],
            self.header[10],
            self.header[11],
        ])
    }

    /// Header length in octets (data offset × 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.header[12] >> 4) * 4
    }

    /// The flag byte (CWR ECE URG ACK PSH RST SYN FIN); see [`flags`].
    pub fn flags(&self) -> u8 {
        self.header[13]
    }

    pub fn syn(&self) -> bool {
        self.flags() & flags::SYN != 0
    }

    pub fn fin(&self) -> bool {
        self.flags() & flags::FIN != 0
    }

    pub fn rst(&self) -> bool {
        self.flags() & flags::RST != 0
    }

    pub fn window(&self) -> u16 {
        u16::from_be_bytes([self.header[14], self.header[15]])
    }

    /// The segment's data after the header and its options.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 5060 → 40000, seq 0x01020304, ack 0x0a0b0c0d, data offset 6 (4 option bytes),
    /// flags PSH|ACK, window 512, then "INV".
    const SEGMENT: [u8; 27] = [
        0x13, 0xc4, 0x9c, 0x40, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 0x60, 0x18, 0x02, 0x00, 0, 0,
        0, 0, 1, 1, 1, 0, b'I', b'N', b'V',
    ];

    #[test]
    fn fields() {
        let tcp = Tcp::new_checked(&SEGMENT).unwrap();
        assert_eq!(tcp.source_port(), 5060);
        assert_eq!(tcp.destination_port(), 40000);
        assert_eq!(tcp.sequence(), 0x0102_0304);
        assert_eq!(tcp.acknowledgment(), 0x0a0b_0c0d);
        assert_eq!(tcp.header_len(), 24);
        assert_eq!(tcp.flags(), flags::PSH | flags::ACK);
        assert!(!tcp.syn() && !tcp.fin() && !tcp.rst());
        assert_eq!(tcp.window(), 512);
        assert_eq!(tcp.payload(), b"INV");
    }

    #[test]
    fn flags_bits() {
        for (byte, syn, fin, rst) in [
            (0x02u8, true, false, false),
            (0x12, true, false, false),
            (0x11, false, true, false),
            (0x04, false, false, true),
            (0x14, false, false, true),
        ] {
            let mut segment = SEGMENT;
            segment[13] = byte;
            let tcp = Tcp::new_checked(&segment).unwrap();
            assert_eq!(
                (tcp.syn(), tcp.fin(), tcp.rst()),
                (syn, fin, rst),
                "{byte:#x}"
            );
        }
    }

    #[test]
    fn bad_lengths() {
        assert_eq!(
            Tcp::new_checked(&SEGMENT[..19]).err(),
            Some(TcpError::Truncated)
        );
        // Options promised but not captured.
        assert_eq!(
            Tcp::new_checked(&SEGMENT[..22]).err(),
            Some(TcpError::Truncated)
        );
        let mut segment = SEGMENT;
        segment[12] = 0x40;
        assert_eq!(
            Tcp::new_checked(&segment).err(),
            Some(TcpError::BadDataOffset)
        );
        // Maximum data offset (60 octets) over a 27-byte buffer.
        segment[12] = 0xf0;
        assert_eq!(Tcp::new_checked(&segment).err(), Some(TcpError::Truncated));
        // Exactly a header, no payload.
        segment[12] = 0x50;
        assert!(
            Tcp::new_checked(&segment[..20])
                .unwrap()
                .payload()
                .is_empty()
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_payload_is_the_tail(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(tcp) = Tcp::new_checked(&data) {
                let offset = usize::from(data[12] >> 4) * 4;
                prop_assert!(offset >= MIN_HEADER_LEN);
                prop_assert_eq!(tcp.header_len(), offset);
                prop_assert_eq!(tcp.payload(), &data[offset..]);
                let _ = (tcp.source_port(), tcp.destination_port(), tcp.sequence(), tcp.flags());
            } else {
                prop_assert!(data.len() < 20 || data.len() < usize::from(data[12] >> 4) * 4 || data[12] >> 4 < 5);
            }
        }
    }
}
