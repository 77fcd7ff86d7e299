//! Fuzzes the disk spool's recovery and reader on an arbitrary segment file (and, optionally, an
//! arbitrary ledger): the in-memory decoder, then a real `Spool::open` + read/ack loop on a
//! directory holding those bytes.
//!
//! Input layout: byte 0 = ledger length n (0 = no ledger file, at most 255), the next n bytes
//! are the ledger, the rest is segment 00000000000000000001.seg.

#![no_main]

use std::fs;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use voqa_agent::ship::spool::{
    FsyncPolicy, MAX_RECORD_BYTES, RECORD_HEADER_BYTES, Spool, SpoolConfig, decode_segment,
};

fn dir() -> PathBuf {
    std::env::temp_dir().join(format!("voqa-spool-fuzz-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&ledger_len, rest)) = data.split_first() else {
        return;
    };
    let (ledger, segment) = rest.split_at(usize::from(ledger_len).min(rest.len()));

    // The decoder: records and corrupt runs tile the input in order, records are in bounds.
    let decoded = decode_segment(segment);
    let mut spans: Vec<(usize, usize, bool)> = decoded
        .records
        .iter()
        .map(|r| (r.start - RECORD_HEADER_BYTES, r.end, true))
        .chain(decoded.corrupt.iter().map(|r| (r.start, r.end, false)))
        .collect();
    spans.sort_unstable();
    let mut at = 0;
    for &(start, end, is_record) in &spans {
        assert_eq!(start, at, "gap or overlap at {start}");
        assert!(start < end && end <= segment.len());
        if is_record {
            assert!(end - start - RECORD_HEADER_BYTES <= MAX_RECORD_BYTES);
        }
        at = end;
    }
    assert_eq!(at, segment.len(), "decoding stopped early");
    let torn_expected = spans.last().filter(|s| !s.2).map(|s| s.0);
    assert_eq!(decoded.torn_from, torn_expected);

    // Recovery and the reader on a real directory.
    let dir = dir();
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("fuzz dir");
    if !ledger.is_empty() {
        fs::write(dir.join("ledger"), ledger).expect("ledger");
    }
    fs::write(dir.join("00000000000000000001.seg"), segment).expect("segment");
    let cfg = SpoolConfig {
        dir: dir.clone(),
        max_bytes: 1 << 30,
        segment_bytes: 1 << 20,
        fsync: FsyncPolicy::Never,
    };
    let (mut spool, recovery) = Spool::open(cfg.clone()).expect("open never fails on bad bytes");
    assert!(recovery.pending_records <= decoded.records.len() as u64);
    let pending = spool.pending_payloads().expect("list");
    assert_eq!(pending.len() as u64, recovery.pending_records);
    // Whatever the ledger said, the pending records are a suffix of the valid ones.
    let valid: Vec<&[u8]> = decoded.records.iter().map(|r| &segment[r.clone()]).collect();
    let suffix = &valid[valid.len() - pending.len()..];
    assert!(pending.iter().map(|p| &p[..]).eq(suffix.iter().copied()));
    // A read/ack loop delivers exactly those and terminates.
    let mut out = Vec::new();
    let mut delivered = 0;
    while let Some(cursor) = spool.read_batch(7, 4096, &mut out).expect("read") {
        assert!(!out.is_empty());
        delivered += out.len();
        spool.ack(cursor).expect("ack");
        assert!(delivered <= pending.len());
    }
    assert_eq!(delivered, pending.len());
    assert_eq!(spool.counters().pending_records, 0);
    spool.append(b"{}").expect("append after recovery");
    drop(spool);
    // A second open finds nothing more to cut.
    let (_, again) = Spool::open(cfg).expect("reopen");
    assert_eq!(again.torn_tails_cut, 0);
    assert_eq!(again.pending_records, 1);
});
