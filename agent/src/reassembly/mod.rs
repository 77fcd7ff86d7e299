//! Stateful, bounded reassembly between `decode` (stateless views of one packet) and `streams`
//! (the analyzer): the places where one packet is not a whole message.
//!
//! `tcp` turns TCP segments of SIP connections (plain, or WebSocket per RFC 7118) back into
//! whole SIP messages. Every buffer here is bounded in size, in count and in time (packet time,
//! never the wall clock); what does not fit is dropped and counted, never grown without limit.
//! Nothing here reads a clock, does I/O or allocates per packet in steady state.

pub mod tcp;
pub mod websocket;
