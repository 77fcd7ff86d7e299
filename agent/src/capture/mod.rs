//! Packet sources. Offline: pcap/pcapng files read through a memory map, frames handed out as
//! slices of the map (never copied). Live: the AF_PACKET TPACKET_V3 ring, frames handed out as
//! slices of its blocks. Both hand out the one [`Frame`] type.
//!
//! This is the only module of the crate allowed to use `unsafe` (the memory map and the kernel
//! ring); everything it hands out is a safe, bounds-checked `&[u8]`. It does not decode packets
//! and keeps no analysis state.

pub mod afpacket;
pub mod file;
pub mod frame;
pub mod writer;

pub use file::{CaptureError, CaptureFile, Frames};
pub use frame::Frame;
