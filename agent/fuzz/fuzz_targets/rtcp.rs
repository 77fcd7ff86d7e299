//! Fuzzes the RTCP compound validator (full and reduced-size) and every view behind it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use voqa_agent::decode::rtcp::Compound;

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
    // Reduced-size validation only relaxes the full rules.
    assert!(
        full.is_err() || reduced.is_ok(),
        "valid compound rejected as reduced-size"
    );
});
