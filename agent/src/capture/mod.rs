//! Packet sources. Offline: pcap/pcapng files, standard input or gzip streams read through
//! one reusable buffer (or, for `analyze`, a plain file mapped in windows: `mapped`), frames
//! handed out as slices of it (never copied one by one). Live: the
//! AF_PACKET TPACKET_V3 ring, frames handed out as slices of its blocks. Both hand out the one
//! [`Frame`] type.
//!
//! This is the only module of the crate allowed to use `unsafe` (the kernel ring, the file
//! windows and their SIGBUS handler, cache prefetch hints); everything
//! it hands out is a safe, bounds-checked `&[u8]`. It does not decode packets and keeps no
//! analysis state.

pub mod afpacket;
pub mod file;
pub mod frame;
pub mod hint;
pub mod mapped;
pub mod writer;

pub use file::{CaptureError, CaptureInput, CaptureReader, Frames};
pub use frame::Frame;
