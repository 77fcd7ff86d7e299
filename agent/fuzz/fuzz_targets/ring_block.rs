//! The TPACKET_V3 block walker over arbitrary bytes: the kernel's offsets and lengths are
//! treated as untrusted, so no block content may make the walker panic, loop, or hand out a
//! frame outside the block.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voqa_agent::capture::afpacket::block;

fuzz_target!(|data: &[u8]| {
    let mut frames = block::frames(data);
    let base = data.as_ptr() as usize;
    let end = base + data.len();
    let mut n = 0usize;
    for f in frames.by_ref() {
        let start = f.data.as_ptr() as usize;
        assert!(f.data.is_empty() || (start >= base && start + f.data.len() <= end), "frame outside the block");
        n += 1;
        assert!(n <= data.len(), "more frames than bytes: the walk does not terminate");
    }
    let _ = (frames.malformed(), frames.skipped());
});
