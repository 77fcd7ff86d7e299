//! Fuzzes the jitter-histogram decoder the collector runs on every ingested report: raw
//! V2+deflate bytes and the same bytes as base64 text. A decoded histogram must have the
//! contract's bounds, survive a merge, and re-encode to something that decodes equal. The
//! bucket decoder ingest uses (`decode_jitter_buckets`) must accept and refuse the same inputs
//! and describe the same histogram.

#![no_main]

use libfuzzer_sys::fuzz_target;
use voqa_wire::histogram::{
    HistogramEncoder, JITTER_HIST_HIGH_US, JITTER_HIST_LOW_US, decode_jitter_buckets,
    decode_jitter_histogram, decode_jitter_histogram_bytes, new_jitter_histogram, quantile_ms,
};

fuzz_target!(|data: &[u8]| {
    let raw = decode_jitter_histogram_bytes(data);
    let mut buckets = Vec::new();
    let fast = decode_jitter_buckets(data, &mut buckets);
    assert_eq!(raw.is_ok(), fast.is_ok(), "the two decoders disagree");
    if let (Ok(h), Ok(total)) = (&raw, &fast) {
        let mut rebuilt = new_jitter_histogram();
        for &(value, count) in &buckets {
            rebuilt.record_n(value, count).expect("a bucket of the bounds");
        }
        assert_eq!(&rebuilt, h);
        assert_eq!(*total, h.len());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = decode_jitter_histogram(text);
    }
    if let Ok(h) = raw {
        assert_eq!(h.low(), JITTER_HIST_LOW_US);
        assert_eq!(h.high(), JITTER_HIST_HIGH_US);
        let mut total = new_jitter_histogram();
        assert!(total.add(&h).is_ok(), "same bounds always merge");
        let _ = quantile_ms(&total, 0.95);
        let bytes = HistogramEncoder::new()
            .encode_bytes(&h)
            .expect("in-memory encoding");
        let back = decode_jitter_histogram_bytes(&bytes).expect("own encoding decodes");
        assert_eq!(back, h);
    }
});
