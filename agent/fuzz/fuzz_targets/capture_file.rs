//! Fuzzes the pcap/pcapng reader on whole untrusted capture files: header detection, every
//! record, and the iterator's position, truncation and warning bookkeeping.

#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use voqa_agent::capture::file::{Warning, frames};

fuzz_target!(|data: &[u8]| {
    let Ok(mut frames) = frames(data) else {
        return;
    };
    black_box(frames.format());
    let mut previous_position = frames.position();
    while let Some(frame) = frames.next() {
        black_box(frame);
        // Frames borrow from the file buffer.
        let data_range = data.as_ptr_range();
        let frame_range = frame.data.as_ptr_range();
        assert!(
            frame.data.is_empty()
                || (frame_range.start >= data_range.start && frame_range.end <= data_range.end),
            "frame data outside the file buffer"
        );
        assert!(
            frame.wire_len as usize >= frame.data.len(),
            "wire_len below captured length"
        );
        let position = frames.position();
        assert!(position >= previous_position, "position went backwards");
        assert!(position <= data.len(), "position past the end of the file");
        previous_position = position;
        black_box(frames.truncated_at());
        assert!(
            frames.warnings().len() <= Warning::MAX_KINDS,
            "too many warnings"
        );
    }
    // The iterator is fused: once exhausted it stays exhausted.
    assert!(frames.next().is_none(), "iterator not fused");
    black_box(frames.truncated_at());
    for warning in frames.warnings() {
        black_box(warning.to_string());
    }
});
