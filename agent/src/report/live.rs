//! Interval and final stream reports of live capture, as voqa-wire `StreamReport`s: the
//! window's figures, the stream's identity (pseudonymised Call-ID) and, on the final report,
//! the whole-stream totals with exactly the fields of the `analyze` stream object.

use voqa_wire::histogram::{Histogram, HistogramEncoder, new_jitter_histogram};
use voqa_wire::{StreamReport, Transitions};

use voqa_wire::Timestamp;

use super::{r6, stream_summary};
use crate::quality::jitter_bins::JitterBins;
use crate::streams::WindowReport;
use crate::streams::privacy::Pseudonymizer;

/// Stable id of a stream: FNV-1a over its 5-tuple, SSRC and first packet time (16 hex digits).
pub fn stream_id(r: &WindowReport) -> String {
    let key = &r.stream.key;
    stream_id_of(&key.src, &key.dst, key.ssrc, r.stream.first_ns)
}

/// [`stream_id`] from its parts (call records name their streams by it): FNV-1a of the text
/// `src|dst|ssrc|first_ns`, hashed as it is formatted rather than formatted into a `String`
/// first (one per stream of every call in a document of 25,000 calls showed in profiles).
pub fn stream_id_of(
    src: &std::net::SocketAddr,
    dst: &std::net::SocketAddr,
    ssrc: u32,
    first_ns: i64,
) -> String {
    stream_id_hex(src, dst, ssrc, first_ns).as_str().to_owned()
}

/// A stream id as its 16 hex digits, kept inline (the `analyze` document's calls name their
/// streams by it without a `String` each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamId([u8; 16]);

impl StreamId {
    pub fn as_str(&self) -> &str {
        // Only hex digits are ever stored (see `stream_id_hex` and `from_hex`).
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The hex digits as bytes (the JSON writer copies them without a UTF-8 check).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The id whose text is `hex`, if it is 16 lower-case hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let bytes: [u8; 16] = hex.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .then_some(StreamId(bytes))
    }
}

/// [`stream_id_of`] without the `String`.
pub fn stream_id_hex(
    src: &std::net::SocketAddr,
    dst: &std::net::SocketAddr,
    ssrc: u32,
    first_ns: i64,
) -> StreamId {
    let mut h = Fnv1a(0xcbf2_9ce4_8422_2325);
    for addr in [src, dst] {
        h.address(addr);
        h.bytes(b"|");
    }
    // Decimal text without `write!`'s formatting machinery (a third of the id's cost).
    h.bytes(itoa::Buffer::new().format(ssrc).as_bytes());
    h.bytes(b"|");
    h.bytes(itoa::Buffer::new().format(first_ns).as_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = HEX[((h.0 >> (4 * (15 - i))) & 0xf) as usize];
    }
    StreamId(out)
}

/// FNV-1a (64-bit), fed by `write!` as the text is formatted.
struct Fnv1a(u64);

impl Fnv1a {
    fn bytes(&mut self, bytes: &[u8]) {
        // Eight bytes per pass of an unrolled loop: the hash is sequential byte by byte, but
        // the loop's own counting was as much as the hashing (some 60 bytes per stream id).
        let (words, rest) = bytes.as_chunks::<8>();
        for word in words {
            for &b in word {
                self.byte(b);
            }
        }
        for &b in rest {
            self.byte(b);
        }
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.0 ^= u64::from(b);
        self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
    }

    /// An address as its `Display` text (IPv4 formatted on the stack, see [`super::AddrText`]).
    fn address(&mut self, addr: &std::net::SocketAddr) {
        use std::fmt::Write;
        let mut buf = [0u8; 21];
        match super::AddrText(*addr).v4_ascii(&mut buf) {
            Some(text) => self.bytes(text),
            None => {
                let _ = write!(self, "{addr}");
            }
        }
    }
}

impl std::fmt::Write for Fnv1a {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

/// Turns a window's jitter bins into the wire histogram. One per worker: it reuses the
/// histogram and the serializer's buffers, so each report allocates only its text.
#[derive(Debug)]
pub struct JitterHistogramEncoder {
    histogram: Histogram<u64>,
    encoder: HistogramEncoder,
}

impl Default for JitterHistogramEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl JitterHistogramEncoder {
    pub fn new() -> Self {
        Self {
            histogram: new_jitter_histogram(),
            encoder: HistogramEncoder::new(),
        }
    }

    /// `None` for a window without jitter samples, and for one whose busiest bin overflowed
    /// (over 65,535 packets in one bin of one window: a saturated histogram would understate
    /// that bin and bias every percentile above it). The collector counts such windows as
    /// windows without a histogram, beside the verdict.
    pub fn encode(&mut self, bins: &JitterBins) -> Option<String> {
        if bins.is_empty() || bins.saturated() {
            return None;
        }
        bins.fill(&mut self.histogram);
        self.encoder.encode(&self.histogram)
    }
}

pub fn stream_report(
    agent_id: &str,
    r: &WindowReport,
    privacy: &Pseudonymizer,
    jitter_buffer: &str,
    histograms: &mut JitterHistogramEncoder,
) -> StreamReport {
    let s = &r.stream;
    let f = &r.figures;
    StreamReport {
        agent_id: agent_id.to_owned(),
        stream_id: stream_id(r),
        src: s.key.src.to_string(),
        dst: s.key.dst.to_string(),
        ssrc: format!("0x{:08x}", s.key.ssrc),
        payload_type: s.payload_type,
        codec: s.codec.to_string(),
        clock_rate: s.clock_hz,
        call_id: s.call_id.as_deref().map(|c| privacy.apply(c)),
        window_start: Timestamp::from_ns(r.window_start_ns),
        window_end: Timestamp::from_ns(r.window_end_ns),
        is_final: r.end.is_some(),
        end_reason: r.end.map(|e| e.as_str().to_owned()),
        packets: f.packets,
        expected: f.expected,
        lost: f.lost,
        duplicates: f.duplicates,
        reordered: f.reordered,
        jitter_ms: f.jitter_ms.map(r6),
        max_jitter_ms: f.max_jitter_ms.map(r6),
        mean_jitter_ms: f.mean_jitter_ms.map(r6),
        jitter_sum_ms: f.jitter_sum_ms,
        jitter_samples: f.jitter_samples,
        jitter_histogram: histograms.encode(&f.jitter_bins),
        max_delta_ms: r6(f.max_delta_ms),
        transitions: Transitions {
            n00: f.transitions.n00,
            n01: f.transitions.n01,
            n10: f.transitions.n10,
            n11: f.transitions.n11,
        },
        burst_ratio: r6(f.burst_ratio),
        jb_discarded: f.jb_discarded,
        effective_loss_pct: r6(f.effective_loss_pct),
        rtt_ms: f.rtt_ms.map(r6),
        delay_ms: f.delay_ms.map(r6),
        r_factor: f.r_factor.map(r6),
        mos: f.mos.map(r6),
        capture_drops: r.capture_drops,
        totals: r.end.map(|_| stream_summary(s, privacy, jitter_buffer)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_bins_and_refuses_saturated_ones() {
        let mut encoder = JitterHistogramEncoder::new();
        let mut bins = JitterBins::default();
        assert_eq!(encoder.encode(&bins), None, "no samples, no histogram");
        for _ in 0..10 {
            bins.record_ms(2.25);
        }
        let text = encoder.encode(&bins).expect("histogram");
        let h = voqa_wire::histogram::decode_jitter_histogram(&text).expect("decodes");
        assert_eq!(h.len(), 10);
        // 2.25 ms falls in the bin 2,240..2,400 µs, shipped at its middle.
        assert_eq!(h.count_at(2_320), 10);
        for _ in 0..70_000 {
            bins.record_ms(2.25);
        }
        assert_eq!(
            encoder.encode(&bins),
            None,
            "a saturated bin ships no histogram"
        );
    }

    proptest::proptest! {
        /// The streamed hash equals FNV-1a of the formatted text, as call records always named
        /// their streams.
        #[test]
        fn stream_id_is_fnv_of_the_text(
            a in proptest::prelude::any::<[u8; 4]>(),
            c in proptest::prelude::any::<[u8; 4]>(),
            b in proptest::prelude::any::<[u16; 8]>(),
            ports in proptest::prelude::any::<(u16, u16)>(),
            ssrc in proptest::prelude::any::<u32>(),
            first_ns in proptest::prelude::any::<i64>(),
            v6 in proptest::prelude::any::<bool>(),
        ) {
            let src = std::net::SocketAddr::from((a, ports.0));
            let dst = if v6 {
                std::net::SocketAddr::from((std::net::Ipv6Addr::from(b), ports.1))
            } else {
                std::net::SocketAddr::from((c, ports.1))
            };
            let text = format!("{src}|{dst}|{ssrc}|{first_ns}");
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for byte in text.bytes() {
                h ^= u64::from(byte);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            proptest::prop_assert_eq!(stream_id_of(&src, &dst, ssrc, first_ns), format!("{h:016x}"));
        }
    }
}
