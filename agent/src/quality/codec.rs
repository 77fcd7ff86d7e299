//! Codec knowledge for quality scoring, from the one table in `voqa_wire::codecs` (shared with
//! the collector's report methods section). Re-exported here so the quality code keeps its
//! `quality::codec` paths; must not hold a second copy of any value.

pub use voqa_wire::codecs::*;
