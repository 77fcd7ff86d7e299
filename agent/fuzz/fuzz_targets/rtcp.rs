//! Fuzzes the RTCP compound validator (full and reduced-size) and every view behind it, and the
//! SRTCP view (clear first header and E/index trailer) at every common tag length.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

use voqa_agent::decode::rtcp::Compound;
use voqa_agent::decode::srtcp::{COMMON_TAG_LENGTHS, SrtcpPacket, looks_like_srtcp};

#[path = "../common/walk.rs"]
mod walk;

fuzz_target!(|data: &[u8]| {
    let full = Compound::new_checked(data);
    if let Ok(compound) = full {
        walk::walk_compound(&compound);
    }
    let reduced = Compound::new_checked_rsize(data);
    if let Ok(compound) = reduced {
        walk::walk_compound(&compound);
    }
    let mut any_plausible = false;
    for tag in COMMON_TAG_LENGTHS.into_iter().chain([16, usize::MAX]) {
        if let Ok(p) = SrtcpPacket::new_checked(data, tag) {
            black_box((p.packet_type(), p.ssrc()));
            assert!(p.index() < 1 << 31, "index is 31 bits");
            any_plausible |= COMMON_TAG_LENGTHS.contains(&tag) && p.encrypted() && p.index() < 1 << 24;
        }
    }
    assert_eq!(looks_like_srtcp(data), any_plausible, "looks_like_srtcp disagrees with the view");
    // Reduced-size validation only relaxes the full rules.
    assert!(
        full.is_err() || reduced.is_ok(),
        "valid compound rejected as reduced-size"
    );
});
