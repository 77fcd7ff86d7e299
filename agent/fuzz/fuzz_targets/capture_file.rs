//! Fuzzes the pcap/pcapng parser on whole untrusted capture files through both of its drivers:
//! the slice iterator (`frames`: header detection, every record, position, truncation and
//! warning bookkeeping) and the streaming reader (`CaptureReader`: the same parser fed through a
//! small buffer by a reader that hands out a few bytes per call, so that every record crosses
//! buffer and read boundaries), and the shared-read driver (`CaptureReader::shared_from_read`:
//! a reading thread's chunks parsed in place, records across chunks assembled; its frames taken
//! alternately through `next_frame` and `next_frame_unpaced`). All must agree
//! frame for frame, warning for warning.
//!
//! Input layout: byte 0 is the number of bytes per read (1..=256), byte 1 the reader's buffer
//! size and the shared read's chunk size (1..=256, grown by the reader when one record needs
//! more); the rest is the file.

#![no_main]

use std::hint::black_box;
use std::io::Read;

use libfuzzer_sys::fuzz_target;
use voqa_agent::capture::file::{CaptureReader, Warning, frames};

/// Hands out at most `chunk` bytes per `read`, like a pipe.
struct Chunked {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
}

impl Read for Chunked {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let n = rest.len().min(out.len()).min(self.chunk);
        out[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

type Owned = (i64, u32, Vec<u8>, u32, u32);

fuzz_target!(|input: &[u8]| {
    let (chunk, buffer, data) = match input {
        [c, b, rest @ ..] => (usize::from(*c) + 1, usize::from(*b) + 1, rest),
        _ => return,
    };
    let streamed = CaptureReader::from_read_with_buffer(
        Chunked {
            data: data.to_vec(),
            pos: 0,
            chunk,
        },
        buffer,
    );
    let mut frames = match frames(data) {
        Ok(frames) => frames,
        Err(error) => {
            // gzip is decompressed by the reader only; otherwise both refuse alike.
            if !data.starts_with(&[0x1f, 0x8b]) {
                let streamed = streamed.err().expect("the reader accepted a refused header");
                assert_eq!(streamed.to_string(), error.to_string());
            }
            return;
        }
    };
    black_box(frames.format());
    let mut previous_position = frames.position();
    let mut expected: Vec<Owned> = Vec::new();
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
        expected.push((
            frame.ts_ns,
            frame.linktype,
            frame.data.to_vec(),
            frame.wire_len,
            frame.interface,
        ));
    }
    // The iterator is fused: once exhausted it stays exhausted.
    assert!(frames.next().is_none(), "iterator not fused");
    black_box(frames.truncated_at());
    for warning in frames.warnings() {
        black_box(warning.to_string());
    }

    // The streaming driver over the same bytes: the same frames, warnings, cut and position.
    let mut reader = streamed.expect("the reader refused a header the slice parser accepted");
    assert_eq!(reader.format(), frames.format());
    let mut index = 0;
    while let Some(frame) = reader.next_frame() {
        let got = (
            frame.ts_ns,
            frame.linktype,
            frame.data.to_vec(),
            frame.wire_len,
            frame.interface,
        );
        assert_eq!(Some(&got), expected.get(index), "frame {index} differs");
        index += 1;
        if index % 3 == 0 {
            // Paced sources read a frame again: it must be the same one.
            reader.unread();
            let again = reader.next_frame().map(|f| f.data.to_vec());
            assert_eq!(again.as_ref(), Some(&got.2), "unread gave another frame");
        }
    }
    assert_eq!(index, expected.len(), "the reader stopped early");
    assert!(reader.next_frame().is_none(), "reader not fused");
    assert_eq!(reader.warnings(), frames.warnings());
    assert_eq!(reader.truncated_at(), frames.truncated_at());
    assert_eq!(reader.position(), frames.position() as u64);
    assert!(reader.error().is_none(), "{:?}", reader.error());

    // The shared-read driver: one reader over a reading thread's chunks of `buffer` bytes.
    let mut shared = CaptureReader::shared_from_read(
        Chunked {
            data: data.to_vec(),
            pos: 0,
            chunk,
        },
        1,
        buffer,
    )
    .expect("shared read");
    let mut shared = shared.pop().expect("one reader");
    let mut index = 0;
    // Both entry points in turn: `next_frame_unpaced` (offline analysis at full speed, its
    // one-step read of a record inside the chunk) must give the frames `next_frame` gives.
    loop {
        let next = if index % 2 == 0 {
            shared.next_frame_unpaced()
        } else {
            shared.next_frame()
        };
        let Some(frame) = next else { break };
        let got = (
            frame.ts_ns,
            frame.linktype,
            frame.data.to_vec(),
            frame.wire_len,
            frame.interface,
        );
        assert_eq!(Some(&got), expected.get(index), "shared: frame {index} differs");
        index += 1;
    }
    assert_eq!(index, expected.len(), "the shared reader stopped early");
    assert_eq!(shared.warnings(), frames.warnings());
    assert_eq!(shared.truncated_at(), frames.truncated_at());
    assert_eq!(shared.position(), frames.position() as u64);
    assert!(shared.error().is_none(), "{:?}", shared.error());
});
