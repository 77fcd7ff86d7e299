//! Stateful, bounded reassembly between `decode` and `streams`: the pieces a stateless view
//! cannot handle alone (IP fragments; TCP byte streams carrying SIP) are collected here until
//! they form a whole unit, which goes back through `decode` and on to the `Analyzer`.
//!
//! Everything held here is bounded in size per unit, in count, in total memory and in time —
//! packet time, the only clock left of `ship` — and everything dropped is counted. This stage
//! must not read a clock, allocate per packet in steady state (buffers are pooled and reused),
//! look at what it reassembles (parsing is `decode`'s job), or run at all for traffic that needs
//! no reassembly: ordinary UDP datagrams pass it by.
//!
//! `ip` collects IPv4/IPv6 fragments into datagrams; `tcp` turns TCP segments of SIP
//! connections (plain, or WebSocket per RFC 7118, `websocket`) back into whole SIP messages.

pub mod ip;
pub mod tcp;
pub mod websocket;
