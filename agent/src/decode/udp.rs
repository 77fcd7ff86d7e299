//! UDP view: ports and the payload bounded by the UDP length field.
//!
//! The header is held as `&[u8; 8]` obtained by a checked split, so field reads are constant
//! indexes that cannot fail; the payload range comes from the validated length field. (These
//! views replaced pnet's: see the README's performance table.) This module must not verify
//! checksums (capture hosts offload them), allocate or copy packet bytes.

use thiserror::Error;

pub const HEADER_LEN: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum UdpError {
    #[error("udp header truncated")]
    Truncated,
    #[error("udp length below 8 octets")]
    LengthTooSmall,
    #[error("udp length exceeds the ip payload")]
    LengthTooLarge,
}

/// Checked UDP view over a complete IP payload.
pub struct Udp<'a> {
    /// The 8-octet header (array reference: constant indexes cannot fail).
    packet: &'a [u8; HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> Udp<'a> {
    /// `buffer` is the whole IP payload; bytes after the UDP length are ignored.
    pub fn new_checked(buffer: &'a [u8]) -> Result<Self, UdpError> {
        let Some(packet) = buffer.first_chunk::<HEADER_LEN>() else {
            return Err(UdpError::Truncated);
        };
        let length = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
        if length < HEADER_LEN {
            return Err(UdpError::LengthTooSmall);
        }
        let payload = buffer
            .get(HEADER_LEN..length)
            .ok_or(UdpError::LengthTooLarge)?;
        Ok(Self { packet, payload })
    }

    pub fn source_port(&self) -> u16 {
        u16::from_be_bytes([self.packet[0], self.packet[1]])
    }

    pub fn destination_port(&self) -> u16 {
        u16::from_be_bytes([self.packet[2], self.packet[3]])
    }

    /// The length field (header included).
    pub fn length(&self) -> u16 {
        u16::from_be_bytes([self.packet[4], self.packet[5]])
    }

    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.packet[6], self.packet[7]])
    }

    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DATAGRAM: [u8; 12] = [
        0x13, 0x88, 0x27, 0x10, 0x00, 0x0b, 0xab, 0xcd, 1, 2, 3, 0xff,
    ];

    #[test]
    fn fields() {
        let udp = Udp::new_checked(&DATAGRAM).unwrap();
        assert_eq!(udp.source_port(), 5000);
        assert_eq!(udp.destination_port(), 10000);
        assert_eq!(udp.length(), 11);
        assert_eq!(udp.checksum(), 0xabcd);
        // The trailing 0xff lies beyond the UDP length.
        assert_eq!(udp.payload(), &[1, 2, 3]);
    }

    #[test]
    fn empty_payload() {
        let mut datagram = DATAGRAM;
        datagram[5] = 8;
        assert!(Udp::new_checked(&datagram).unwrap().payload().is_empty());
    }

    #[test]
    fn impossible_lengths() {
        assert_eq!(
            Udp::new_checked(&DATAGRAM[..7]).err(),
            Some(UdpError::Truncated)
        );
        let mut datagram = DATAGRAM;
        datagram[5] = 5;
        assert_eq!(
            Udp::new_checked(&datagram).err(),
            Some(UdpError::LengthTooSmall)
        );
        datagram[5] = 13;
        assert_eq!(
            Udp::new_checked(&datagram).err(),
            Some(UdpError::LengthTooLarge)
        );
    }
}
