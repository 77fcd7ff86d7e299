//! Packet sources. Offline: pcap/pcapng files read through a memory map, frames handed out as
//! slices of the map (never copied). Live capture (AF_PACKET ring) will live here too.
//!
//! This is the only module of the crate allowed to use `unsafe` (the memory map, and later the
//! kernel ring); everything it hands out is a safe, bounds-checked `&[u8]`.

pub mod afpacket;
pub mod file;
pub mod writer;

pub use file::{CaptureError, CaptureFile, Frame, Frames};
