//! Typed zero-copy views over packet bytes, from the link layer up to RTP, RTCP (and what SRTCP
//! leaves in clear), SIP and SDP.
//!
//! Views validate lengths once in `new_checked` and never panic afterwards; they keep no state
//! and do no I/O. Decoding a frame allocates nothing and copies no packet bytes.

pub mod build;
pub mod frame;
pub mod ip;
pub mod link;
pub mod payload;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod sip;
pub mod srtcp;
pub mod tcp;
pub mod udp;

pub use frame::{Datagram, Decoded, Fragment, Segment, Skip, decode_frame, decode_udp};
