//! Fuzzes the jitter-histogram decoder the collector runs on every ingested report: raw
//! V2+deflate bytes and the same bytes as base64 text. A decoded histogram must have the
//! contract's bounds, survive a merge, and re-encode to something that decodes equal.

#![no_main]

use libfuzzer_sys::fuzz_target;
use voqa_wire::histogram::{
    HistogramEncoder, JITTER_HIST_HIGH_US, JITTER_HIST_LOW_US, decode_jitter_histogram,
    decode_jitter_histogram_bytes, new_jitter_histogram, quantile_ms,
};

fuzz_target!(|data: &[u8]| {
    let raw = decode_jitter_histogram_bytes(data);
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
