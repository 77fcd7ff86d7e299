//! The per-packet jitter histogram carried in `StreamReport::jitter_histogram`: an
//! HdrHistogram in the V2 + deflate encoding, base64 (the HdrHistogram interval-log
//! encoding, so Java/Go tooling reads it too), of RFC 3550 jitter in microseconds.
//!
//! Every agent uses the same bounds and precision ([`JITTER_HIST_LOW_US`],
//! [`JITTER_HIST_HIGH_US`], [`JITTER_HIST_SIGFIG`]); the collector refuses any other, so that
//! merged histograms are exact over what was recorded. Decoding is bounded before the
//! HdrHistogram decoder runs (text length, inflated size, header fields): a hostile body
//! cannot make the collector allocate more than a few tens of kilobytes per histogram.
//! Must not do I/O.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
pub use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

/// Lowest discernible value, µs.
pub const JITTER_HIST_LOW_US: u64 = 1;
/// Highest trackable value, µs (10 s); agents clamp above this.
pub const JITTER_HIST_HIGH_US: u64 = 10_000_000;
/// Significant decimal digits (relative bucket width ≤ 1/128).
pub const JITTER_HIST_SIGFIG: u8 = 2;
/// Longest base64 text accepted (the agent's histograms are ~100 characters).
pub const MAX_ENCODED_LEN: usize = 16 * 1024;
/// Largest inflated V2 body accepted. A full histogram of these bounds is under 20 KiB.
const MAX_INFLATED_LEN: u64 = 64 * 1024;

const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;
const V2_HEADER_LEN: usize = 40;

/// Why a jitter histogram was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HistogramError {
    #[error("longer than {MAX_ENCODED_LEN} characters")]
    TooLong,
    #[error("not base64")]
    Base64,
    #[error("not an HdrHistogram V2+deflate encoding")]
    Cookie,
    #[error("compressed body is cut or corrupt")]
    Deflate,
    #[error("inflates to more than {MAX_INFLATED_LEN} bytes")]
    TooLarge,
    #[error(
        "bounds or precision differ from {JITTER_HIST_LOW_US}..{JITTER_HIST_HIGH_US} µs at {JITTER_HIST_SIGFIG} digits"
    )]
    Bounds,
    #[error("counts are corrupt: {0}")]
    Counts(String),
}

/// An empty histogram with the contract's bounds.
pub fn new_jitter_histogram() -> Histogram<u64> {
    // Constant, valid bounds (a unit test creates one): this cannot fail at run time.
    Histogram::new_with_bounds(JITTER_HIST_LOW_US, JITTER_HIST_HIGH_US, JITTER_HIST_SIGFIG)
        .expect("the contract's histogram bounds are valid")
}

/// Reusable encoder: holds the serializer's buffers so that encoding one histogram per
/// stream window allocates only the output string.
#[derive(Default)]
pub struct HistogramEncoder {
    serializer: V2DeflateSerializer,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for HistogramEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistogramEncoder")
    }
}

impl HistogramEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// V2 + deflate + base64 of `histogram`. `None` only if the serializer fails, which it
    /// does not for an in-memory buffer.
    pub fn encode(&mut self, histogram: &Histogram<u64>) -> Option<String> {
        self.bytes.clear();
        self.serializer.serialize(histogram, &mut self.bytes).ok()?;
        Some(BASE64.encode(&self.bytes))
    }

    /// V2 + deflate bytes of `histogram` (what the collector stores).
    pub fn encode_bytes(&mut self, histogram: &Histogram<u64>) -> Option<Vec<u8>> {
        let mut bytes = Vec::new();
        self.serializer.serialize(histogram, &mut bytes).ok()?;
        Some(bytes)
    }
}

/// Decodes a `jitter_histogram` field, checking size and bounds before decoding counts.
pub fn decode_jitter_histogram(text: &str) -> Result<Histogram<u64>, HistogramError> {
    decode_jitter_histogram_bytes(&decode_base64(text)?)
}

/// The V2 + deflate bytes of a `jitter_histogram` field (not yet checked beyond base64).
pub fn decode_base64(text: &str) -> Result<Vec<u8>, HistogramError> {
    if text.len() > MAX_ENCODED_LEN {
        return Err(HistogramError::TooLong);
    }
    BASE64
        .decode(text.as_bytes())
        .map_err(|_| HistogramError::Base64)
}

/// Decodes V2 + deflate bytes, checking size and bounds before decoding counts.
pub fn decode_jitter_histogram_bytes(bytes: &[u8]) -> Result<Histogram<u64>, HistogramError> {
    let inflated = inflate_checked(bytes)?;
    Deserializer::new()
        .deserialize(&mut inflated.as_slice())
        .map_err(|e| HistogramError::Counts(format!("{e:?}")))
}

/// The recorded buckets of a jitter histogram's bytes, without building the histogram: each
/// non-zero bucket as (its lowest value in µs, its count), in value order, into `out` (cleared
/// first); returns the total count. Accepts and refuses exactly what
/// [`decode_jitter_histogram_bytes`] does (a property test holds the two together), for a
/// fraction of its cost: no counts array of ~2,300 entries allocated, zeroed and walked per
/// report. Recording each pair into a histogram of the jitter bounds rebuilds the histogram.
pub fn decode_jitter_buckets(
    bytes: &[u8],
    out: &mut Vec<(u64, u64)>,
) -> Result<u64, HistogramError> {
    out.clear();
    let inflated = inflate_checked(bytes)?;
    let counts_len = jitter_counts_len();
    let payload = inflated.get(V2_HEADER_LEN..).unwrap_or(&[]);
    let mut index: usize = 0;
    let mut total: u64 = 0;
    let mut at = 0usize;
    while at < payload.len() {
        let (zigzag, used) = read_varint(&payload[at..])
            .ok_or_else(|| HistogramError::Counts("truncated varint".into()))?;
        at += used;
        let count_or_zeros = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
        if count_or_zeros < 0 {
            let zeros = usize::try_from(count_or_zeros.unsigned_abs())
                .map_err(|_| HistogramError::Counts("zero run too long".into()))?;
            index = index
                .checked_add(zeros)
                .ok_or_else(|| HistogramError::Counts("zero run too long".into()))?;
        } else {
            let count = count_or_zeros as u64;
            if count > 0 {
                if index >= counts_len {
                    return Err(HistogramError::Counts("EncodedArrayTooLong".into()));
                }
                out.push((jitter_value_at(index), count));
                total = total.saturating_add(count);
            }
            index = index
                .checked_add(1)
                .ok_or_else(|| HistogramError::Counts("too many counts".into()))?;
        }
    }
    Ok(total)
}

/// Length of the counts array of a histogram of the jitter bounds.
fn jitter_counts_len() -> usize {
    static LEN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LEN.get_or_init(|| new_jitter_histogram().distinct_values())
}

/// The lowest value of counts-array `index` for the jitter bounds (lowest discernible 1 µs, so
/// unit magnitude 0; 2 significant digits, so 256 sub-buckets, half 128): HdrHistogram's
/// `value_for`.
fn jitter_value_at(index: usize) -> u64 {
    const HALF_MAGNITUDE: u32 = 7;
    const HALF: usize = 1 << HALF_MAGNITUDE;
    let mut bucket = (index >> HALF_MAGNITUDE) as i64 - 1;
    let mut sub_bucket = (index & (HALF - 1)) + HALF;
    if bucket < 0 {
        sub_bucket -= HALF;
        bucket = 0;
    }
    (sub_bucket as u64) << bucket
}

/// HdrHistogram's LEB128-64b9B: 7 bits a byte for 8 bytes, the 9th byte whole.
fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for i in 0..9 {
        let b = *bytes.get(i)?;
        if i == 8 {
            return Some((value | (u64::from(b) << 56), 9));
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The inflated V2 body of V2 + deflate bytes, its size bounded and its header checked.
fn inflate_checked(bytes: &[u8]) -> Result<Vec<u8>, HistogramError> {
    let (cookie, rest) = split_u32(bytes).ok_or(HistogramError::Cookie)?;
    if cookie != V2_COMPRESSED_COOKIE {
        return Err(HistogramError::Cookie);
    }
    let (compressed_len, compressed) = split_u32(rest).ok_or(HistogramError::Deflate)?;
    let compressed = compressed
        .get(..compressed_len as usize)
        .ok_or(HistogramError::Deflate)?;
    let mut inflated = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_INFLATED_LEN + 1)
        .read_to_end(&mut inflated)
        .map_err(|_| HistogramError::Deflate)?;
    if inflated.len() as u64 > MAX_INFLATED_LEN {
        return Err(HistogramError::TooLarge);
    }
    check_v2_header(&inflated)?;
    Ok(inflated)
}

fn split_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), rest))
}

fn split_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*head), rest))
}

/// The V2 header must name our bounds and a payload that is exactly the rest of the body.
fn check_v2_header(v2: &[u8]) -> Result<(), HistogramError> {
    let header = || -> Option<(u32, u32, u32, u32, u64, u64, u64)> {
        let (cookie, r) = split_u32(v2)?;
        let (payload_len, r) = split_u32(r)?;
        let (offset, r) = split_u32(r)?;
        let (digits, r) = split_u32(r)?;
        let (low, r) = split_u64(r)?;
        let (high, r) = split_u64(r)?;
        let (ratio, _) = split_u64(r)?;
        Some((cookie, payload_len, offset, digits, low, high, ratio))
    };
    let (cookie, payload_len, offset, digits, low, high, ratio) =
        header().ok_or(HistogramError::Deflate)?;
    if cookie != V2_COOKIE {
        return Err(HistogramError::Cookie);
    }
    if payload_len as usize != v2.len() - V2_HEADER_LEN {
        return Err(HistogramError::Deflate);
    }
    if offset != 0
        || digits != u32::from(JITTER_HIST_SIGFIG)
        || low != JITTER_HIST_LOW_US
        || high != JITTER_HIST_HIGH_US
        || f64::from_bits(ratio) != 1.0
    {
        return Err(HistogramError::Bounds);
    }
    Ok(())
}

/// Jitter in ms at `quantile` (0..=1) of a µs histogram: the middle of the bucket holding
/// that rank, so a value recorded exactly comes back within half a bucket (≤ 0.4 %).
pub fn quantile_ms(histogram: &Histogram<u64>, quantile: f64) -> Option<f64> {
    if histogram.is_empty() {
        return None;
    }
    let value = histogram.value_at_quantile(quantile);
    Some(histogram.median_equivalent(value) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Histogram<u64> {
        let mut h = new_jitter_histogram();
        for (value, count) in [(5u64, 10u64), (125, 3), (2_250, 40), (634_880, 1)] {
            h.record_n(value, count).expect("in range");
        }
        h
    }

    #[test]
    fn round_trips_and_merges() {
        let h = sample();
        let text = HistogramEncoder::new().encode(&h).expect("encodes");
        assert!(text.len() < 200, "{} characters", text.len());
        let back = decode_jitter_histogram(&text).expect("decodes");
        assert_eq!(back, h);
        let mut total = new_jitter_histogram();
        total.add(&back).expect("same bounds");
        total.add(&back).expect("same bounds");
        assert_eq!(total.len(), 108);
        // 54 values per copy: ranks 1..20 are 5 µs, 21..26 are 125 µs, 27..106 are 2250 µs.
        assert_eq!(quantile_ms(&total, 0.10), Some(0.005));
        assert_eq!(quantile_ms(&total, 0.24), Some(0.125));
        let p95 = quantile_ms(&total, 0.95).expect("non-empty");
        assert!((p95 - 2.25).abs() <= 2.25 / 256.0, "{p95}");
        let top = quantile_ms(&total, 1.0).expect("non-empty");
        assert!((top - 634.88).abs() <= 634.88 / 256.0, "{top}");
    }

    #[test]
    fn refuses_foreign_bounds_and_garbage() {
        let mut other = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        other.record(10).expect("in range");
        let text = HistogramEncoder::new().encode(&other).expect("encodes");
        assert_eq!(decode_jitter_histogram(&text), Err(HistogramError::Bounds));
        assert_eq!(decode_jitter_histogram("***"), Err(HistogramError::Base64));
        assert_eq!(decode_jitter_histogram("AAAA"), Err(HistogramError::Cookie));
        let long = "A".repeat(MAX_ENCODED_LEN + 4);
        assert_eq!(decode_jitter_histogram(&long), Err(HistogramError::TooLong));
        let good = HistogramEncoder::new().encode(&sample()).expect("encodes");
        let mut raw = BASE64.decode(good).expect("base64");
        raw.truncate(raw.len() - 3);
        assert_eq!(
            decode_jitter_histogram(&BASE64.encode(&raw)),
            Err(HistogramError::Deflate)
        );
    }

    #[test]
    fn refuses_a_deflate_bomb() {
        // A valid header claiming a huge payload, then a megabyte of zeros.
        let mut v2 = Vec::new();
        v2.extend_from_slice(&V2_COOKIE.to_be_bytes());
        v2.extend_from_slice(&(1u32 << 20).to_be_bytes());
        v2.extend_from_slice(&0u32.to_be_bytes());
        v2.extend_from_slice(&u32::from(JITTER_HIST_SIGFIG).to_be_bytes());
        v2.extend_from_slice(&JITTER_HIST_LOW_US.to_be_bytes());
        v2.extend_from_slice(&JITTER_HIST_HIGH_US.to_be_bytes());
        v2.extend_from_slice(&1.0f64.to_bits().to_be_bytes());
        v2.resize(V2_HEADER_LEN + (1 << 20), 0);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut z, &v2).expect("memory");
        let compressed = z.finish().expect("memory");
        let mut body = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
        body.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
        body.extend_from_slice(&compressed);
        let text = BASE64.encode(&body);
        assert!(text.len() <= MAX_ENCODED_LEN, "{}", text.len());
        assert_eq!(
            decode_jitter_histogram(&text),
            Err(HistogramError::TooLarge)
        );
    }

    /// The histogram `decode_jitter_buckets` describes, rebuilt by recording its pairs.
    fn rebuilt(bytes: &[u8]) -> Result<(Histogram<u64>, u64), HistogramError> {
        let mut buckets = Vec::new();
        let total = decode_jitter_buckets(bytes, &mut buckets)?;
        let mut h = new_jitter_histogram();
        for (value, count) in buckets {
            h.record_n(value, count)
                .expect("a bucket of the jitter bounds");
        }
        Ok((h, total))
    }

    /// V2 + deflate bytes around an (already inflated) V2 body.
    fn wrap_v2(v2: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut z, v2).expect("memory");
        let compressed = z.finish().expect("memory");
        let mut body = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
        body.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
        body.extend_from_slice(&compressed);
        body
    }

    #[test]
    fn buckets_of_the_sample() {
        let bytes = decode_base64(&HistogramEncoder::new().encode(&sample()).expect("encodes"))
            .expect("base64");
        let mut buckets = Vec::new();
        assert_eq!(decode_jitter_buckets(&bytes, &mut buckets), Ok(54));
        assert_eq!(buckets.len(), 4);
        assert_eq!(buckets[0], (5, 10));
        assert_eq!(buckets[1], (125, 3));
        // 2,250 and 634,880 fall in wider buckets: their lowest values.
        assert_eq!(buckets[2].1, 40);
        assert!(buckets[2].0 <= 2_250 && 2_250 - buckets[2].0 < 2_250 / 128);
        assert_eq!(rebuilt(&bytes).map(|(h, _)| h), Ok(sample()));
    }

    proptest! {
        /// The bucket decoder describes exactly the histogram the full decoder builds.
        #[test]
        fn buckets_equal_the_full_decoder(
            values in proptest::collection::vec((1u64..=JITTER_HIST_HIGH_US, 1u64..5_000), 0..80)
        ) {
            let mut h = new_jitter_histogram();
            for (v, n) in values {
                h.record_n(v, n).expect("in range");
            }
            let text = HistogramEncoder::new().encode(&h).expect("encodes");
            let bytes = decode_base64(&text).expect("base64");
            let full = decode_jitter_histogram_bytes(&bytes).expect("decodes");
            prop_assert_eq!(&full, &h);
            let (again, total) = rebuilt(&bytes).expect("decodes");
            prop_assert_eq!(again, full);
            prop_assert_eq!(total, h.len());
        }

        /// Damaged payloads (inside a valid deflate stream): both decoders accept or refuse
        /// together, and agree on what they accept.
        #[test]
        fn both_decoders_agree_on_damaged_payloads(
            flips in proptest::collection::vec((0usize..64, any::<u8>()), 1..6),
            cut in 0usize..8,
        ) {
            let bytes = decode_base64(&HistogramEncoder::new().encode(&sample()).expect("encodes"))
                .expect("base64");
            let mut v2 = inflate_checked(&bytes).expect("inflates");
            let payload_len = v2.len() - V2_HEADER_LEN;
            for (at, byte) in flips {
                v2[V2_HEADER_LEN + at % payload_len] ^= byte;
            }
            v2.truncate(v2.len() - cut.min(payload_len));
            let new_len = (v2.len() - V2_HEADER_LEN) as u32;
            v2[4..8].copy_from_slice(&new_len.to_be_bytes());
            let damaged = wrap_v2(&v2);
            let full = decode_jitter_histogram_bytes(&damaged);
            let fast = rebuilt(&damaged);
            prop_assert_eq!(full.is_ok(), fast.is_ok(), "{:?} vs {:?}", full.as_ref().err(), fast.as_ref().err());
            if let (Ok(full), Ok((fast, _))) = (full, fast) {
                prop_assert_eq!(fast, full);
            }
        }

        #[test]
        fn decoding_arbitrary_text_never_panics(text in "[A-Za-z0-9+/=]{0,400}") {
            let _ = decode_jitter_histogram(&text);
        }

        #[test]
        fn decoding_mutated_encodings_never_panics(flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..6)) {
            let good = HistogramEncoder::new().encode(&sample()).expect("encodes");
            let mut raw = BASE64.decode(good).expect("base64");
            for (at, byte) in flips {
                let len = raw.len();
                raw[at % len] ^= byte;
            }
            let _ = decode_jitter_histogram(&BASE64.encode(&raw));
        }
    }
}
