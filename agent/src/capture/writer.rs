//! pcap and pcapng writers, used by tests and benchmarks to build capture files with exactly
//! known contents.
//!
//! They write only what the reader in [`super::file`] needs to be exercised (file headers,
//! interface descriptions with `if_tsresol`, packet records); they are not a general-purpose
//! capture library and do no buffering of their own (wrap the writer in a `BufWriter`).

use std::io::{self, Write};

const PCAP_MAGIC_MICRO: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NANO: u32 = 0xa1b2_3c4d;
const DEFAULT_SNAPLEN: u32 = 262_144;
const NANOS_PER_SECOND: i64 = 1_000_000_000;

const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_EPB: u32 = 6;
const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const PCAPNG_OPT_IF_TSRESOL: u16 = 9;

/// Layout of a classic pcap file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapOptions {
    pub linktype: u32,
    pub nanosecond: bool,
    pub big_endian: bool,
    pub snaplen: u32,
}

impl PcapOptions {
    /// Microsecond timestamps, little endian, snaplen 262144.
    pub fn new(linktype: u32) -> Self {
        Self {
            linktype,
            nanosecond: false,
            big_endian: false,
            snaplen: DEFAULT_SNAPLEN,
        }
    }
}

fn invalid_input(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn u32_bytes(value: u32, big_endian: bool) -> [u8; 4] {
    if big_endian {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    }
}

fn u16_bytes(value: u16, big_endian: bool) -> [u8; 2] {
    if big_endian {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    }
}

fn captured_len(data: &[u8]) -> io::Result<u32> {
    u32::try_from(data.len()).map_err(|_| invalid_input("frame longer than 4 GiB"))
}

/// Writes a classic pcap file.
pub struct PcapWriter<W: Write> {
    out: W,
    options: PcapOptions,
}

impl<W: Write> PcapWriter<W> {
    /// Microsecond timestamps, little endian, snaplen 262144.
    pub fn new(w: W, linktype: u32) -> io::Result<Self> {
        Self::with_options(w, PcapOptions::new(linktype))
    }

    /// Writes the file header described by `opts`.
    pub fn with_options(mut w: W, opts: PcapOptions) -> io::Result<Self> {
        let big_endian = opts.big_endian;
        let magic = if opts.nanosecond {
            PCAP_MAGIC_NANO
        } else {
            PCAP_MAGIC_MICRO
        };
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&u32_bytes(magic, big_endian));
        header[4..6].copy_from_slice(&u16_bytes(2, big_endian));
        header[6..8].copy_from_slice(&u16_bytes(4, big_endian));
        // thiszone and sigfigs stay 0, as every modern writer leaves them.
        header[16..20].copy_from_slice(&u32_bytes(opts.snaplen, big_endian));
        header[20..24].copy_from_slice(&u32_bytes(opts.linktype, big_endian));
        w.write_all(&header)?;
        Ok(Self {
            out: w,
            options: opts,
        })
    }

    /// Writes a whole frame (`wire_len = data.len()`).
    pub fn write_frame(&mut self, ts_ns: i64, data: &[u8]) -> io::Result<()> {
        self.write_frame_with_wire_len(ts_ns, data, captured_len(data)?)
    }

    /// Writes a frame that was cut to `data.len()` bytes from `wire_len` on the wire. Microsecond
    /// files round `ts_ns` down to whole microseconds; times before 1970 or after 2106 are
    /// rejected because pcap stores unsigned 32-bit seconds.
    pub fn write_frame_with_wire_len(
        &mut self,
        ts_ns: i64,
        data: &[u8],
        wire_len: u32,
    ) -> io::Result<()> {
        let big_endian = self.options.big_endian;
        let seconds = u32::try_from(ts_ns.div_euclid(NANOS_PER_SECOND))
            .map_err(|_| invalid_input("timestamp outside the pcap range (1970..2106)"))?;
        let nanos = ts_ns.rem_euclid(NANOS_PER_SECOND);
        let fraction = if self.options.nanosecond {
            nanos
        } else {
            nanos / 1_000
        };
        let fraction = u32::try_from(fraction).unwrap_or(0);
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&u32_bytes(seconds, big_endian));
        header[4..8].copy_from_slice(&u32_bytes(fraction, big_endian));
        header[8..12].copy_from_slice(&u32_bytes(captured_len(data)?, big_endian));
        header[12..16].copy_from_slice(&u32_bytes(wire_len, big_endian));
        self.out.write_all(&header)?;
        self.out.write_all(data)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes a little-endian pcapng file with one section.
pub struct PcapNgWriter<W: Write> {
    out: W,
    /// Raw `if_tsresol` byte of each interface, by interface index.
    interface_tsresol: Vec<u8>,
}

impl<W: Write> PcapNgWriter<W> {
    /// Writes the Section Header Block.
    pub fn new(mut w: W) -> io::Result<Self> {
        let mut body = Vec::with_capacity(16);
        body.extend_from_slice(&PCAPNG_BYTE_ORDER_MAGIC.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        // Section length -1: not specified.
        body.extend_from_slice(&(-1i64).to_le_bytes());
        write_block(&mut w, PCAPNG_SHB, &body)?;
        Ok(Self {
            out: w,
            interface_tsresol: Vec::new(),
        })
    }

    /// Writes an Interface Description Block and returns the new interface's index. `tsresol`
    /// is the raw `if_tsresol` byte: 6 = µs, 9 = ns, `0x80 | n` = 2^-n s.
    pub fn add_interface(&mut self, linktype: u32, tsresol: u8) -> io::Result<u32> {
        let linktype =
            u16::try_from(linktype).map_err(|_| invalid_input("pcapng link type above 65535"))?;
        let index = u32::try_from(self.interface_tsresol.len())
            .map_err(|_| invalid_input("too many interfaces"))?;
        let mut body = Vec::with_capacity(20);
        body.extend_from_slice(&linktype.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        // Snaplen 0: no limit.
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&PCAPNG_OPT_IF_TSRESOL.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&[tsresol, 0, 0, 0]);
        // opt_endofopt
        body.extend_from_slice(&[0, 0, 0, 0]);
        write_block(&mut self.out, PCAPNG_IDB, &body)?;
        self.interface_tsresol.push(tsresol);
        Ok(index)
    }

    /// Writes an Enhanced Packet Block. `ts_ns` is rounded down to the interface's resolution;
    /// negative times are rejected (pcapng timestamps are unsigned without `if_tsoffset`).
    pub fn write_frame(&mut self, interface: u32, ts_ns: i64, data: &[u8]) -> io::Result<()> {
        let tsresol = *self
            .interface_tsresol
            .get(interface as usize)
            .ok_or_else(|| invalid_input("unknown pcapng interface"))?;
        let ns = u128::try_from(ts_ns).map_err(|_| invalid_input("negative timestamp"))?;
        let ticks = ns_to_ticks(ns, tsresol)
            .ok_or_else(|| invalid_input("timestamp does not fit the interface resolution"))?;
        let caplen = captured_len(data)?;
        let mut body = Vec::with_capacity(20 + data.len().next_multiple_of(4));
        body.extend_from_slice(&interface.to_le_bytes());
        // Truncation to the high and low 32-bit words is the format.
        body.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ticks as u32).to_le_bytes());
        body.extend_from_slice(&caplen.to_le_bytes());
        body.extend_from_slice(&caplen.to_le_bytes());
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(4), 0);
        write_block(&mut self.out, PCAPNG_EPB, &body)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Nanoseconds to `if_tsresol` units, rounded down; `None` if it does not fit 64 bits.
fn ns_to_ticks(ns: u128, tsresol: u8) -> Option<u64> {
    let exponent = u32::from(tsresol & 0x7f);
    let units_per_second = if tsresol & 0x80 != 0 {
        1u128.checked_shl(exponent)?
    } else {
        10u128.checked_pow(exponent)?
    };
    u64::try_from(ns.checked_mul(units_per_second)? / 1_000_000_000).ok()
}

/// Writes a little-endian block; `body` must already be padded to a multiple of 4.
fn write_block<W: Write>(out: &mut W, block_type: u32, body: &[u8]) -> io::Result<()> {
    let total_len = body
        .len()
        .checked_add(12)
        .and_then(|len| u32::try_from(len).ok())
        .ok_or_else(|| invalid_input("pcapng block too long"))?;
    out.write_all(&block_type.to_le_bytes())?;
    out.write_all(&total_len.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&total_len.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_header_and_record_bytes() {
        let mut writer = PcapWriter::new(Vec::new(), 1).expect("header");
        writer
            .write_frame(1_500_000_999, &[0xde, 0xad])
            .expect("frame");
        let bytes = writer.into_inner();
        let expected: Vec<u8> = [
            &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0][..],
            &[0; 8],
            &[0, 0, 4, 0, 1, 0, 0, 0],
            // 1 s, 500000 µs (the 999 ns are rounded down), caplen 2, wire length 2.
            &[1, 0, 0, 0, 0x20, 0xa1, 0x07, 0],
            &[2, 0, 0, 0, 2, 0, 0, 0],
            &[0xde, 0xad],
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn pcap_big_endian_nanosecond_bytes() {
        let opts = PcapOptions {
            linktype: 101,
            nanosecond: true,
            big_endian: true,
            snaplen: 65_535,
        };
        let mut writer = PcapWriter::with_options(Vec::new(), opts).expect("header");
        writer
            .write_frame_with_wire_len(2_000_000_007, &[1], 60)
            .expect("frame");
        let bytes = writer.into_inner();
        assert_eq!(&bytes[..8], &[0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4]);
        assert_eq!(&bytes[16..24], &[0, 0, 0xff, 0xff, 0, 0, 0, 101]);
        assert_eq!(
            &bytes[24..],
            &[0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 60, 1]
        );
    }

    #[test]
    fn pcap_rejects_timestamps_outside_u32_seconds() {
        let mut writer = PcapWriter::new(Vec::new(), 1).expect("header");
        for ts in [-1, 4_294_967_296_000_000_000, i64::MIN, i64::MAX] {
            let error = writer.write_frame(ts, &[]).expect_err("out of range");
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        }
        assert!(writer.write_frame(4_294_967_295_999_999_999, &[]).is_ok());
        assert_eq!(writer.into_inner().len(), 24 + 16);
    }

    #[test]
    fn pcapng_block_bytes() {
        let mut writer = PcapNgWriter::new(Vec::new()).expect("shb");
        let shb_len = 28;
        let index = writer.add_interface(1, 9).expect("idb");
        assert_eq!(index, 0);
        // 2^32 + 5 ns: the high timestamp word is 1.
        writer
            .write_frame(0, (1 << 32) + 5, &[0xaa, 0xbb, 0xcc])
            .expect("epb");
        let bytes = writer.into_inner();
        let expected: Vec<u8> = [
            // SHB
            &[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0][..],
            &[0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0],
            &[0xff; 8],
            &[28, 0, 0, 0],
            // IDB: linktype 1, snaplen 0, if_tsresol 9, opt_endofopt
            &[1, 0, 0, 0, 32, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
            &[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0],
            // EPB: 36 bytes, interface 0, ts high 1, low 5, caplen 3, wire 3, data + pad
            &[6, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0],
            &[3, 0, 0, 0, 3, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0, 36, 0, 0, 0],
        ]
        .concat();
        assert_eq!(bytes.len(), shb_len + 32 + 36);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn pcapng_rejects_bad_arguments() {
        let mut writer = PcapNgWriter::new(Vec::new()).expect("shb");
        assert!(writer.add_interface(70_000, 6).is_err());
        assert!(writer.write_frame(0, 0, &[]).is_err());
        writer.add_interface(1, 6).expect("idb");
        assert!(writer.write_frame(0, -1, &[]).is_err());
        assert!(writer.write_frame(1, 0, &[]).is_err());
        // 10^-30 s units overflow 64 bits for any time after the epoch.
        writer.add_interface(1, 30).expect("idb");
        assert!(writer.write_frame(1, 1_000_000_000, &[]).is_err());
    }

    #[test]
    fn ticks_round_down() {
        assert_eq!(ns_to_ticks(1_999, 6), Some(1));
        assert_eq!(ns_to_ticks(1_999, 9), Some(1_999));
        assert_eq!(ns_to_ticks(1_500_000_000, 0x80 | 10), Some(1_536));
        assert_eq!(ns_to_ticks(976_562, 0x80 | 10), Some(0));
        assert_eq!(ns_to_ticks(976_563, 0x80 | 10), Some(1));
    }
}
