//! The one frame type every packet source hands out: a capture file's record and a ring
//! block's packet alike, so the pipeline has a single per-frame path.
//!
//! A `Frame` only borrows the bytes of its source (a capture reader's buffer, a ring block); it
//! must never own or copy them, and carries no more than what the sources know about a packet.

/// LINKTYPE_ETHERNET: the link type of every frame of the AF_PACKET ring and pnet channels.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// `sll_pkttype` of a packet the host itself sent (`PACKET_OUTGOING`).
pub const PACKET_OUTGOING: u8 = 4;

/// One captured frame, borrowed from its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Capture time in nanoseconds since the Unix epoch (the kernel's or the file's stamp).
    pub ts_ns: i64,
    /// LINKTYPE number of the interface the frame was captured on (1 Ethernet, 101 raw IP, ...).
    pub linktype: u32,
    /// Captured bytes (may be empty, may be shorter than `wire_len`).
    pub data: &'a [u8],
    /// Length on the wire; never smaller than `data.len()`.
    pub wire_len: u32,
    /// pcapng interface index within its section (0 for pcap files and live sources).
    pub interface: u32,
    /// `sll_pkttype` (`PACKET_HOST`, [`PACKET_OUTGOING`], ...) where the source knows it: the
    /// ring does, capture files and pnet do not.
    pub pkttype: Option<u8>,
    /// 802.1Q TCI the NIC stripped from the frame (ring, `TP_STATUS_VLAN_VALID`).
    pub vlan_tci: Option<u16>,
    /// TPID of the stripped tag (ring, `TP_STATUS_VLAN_TPID_VALID`).
    pub vlan_tpid: Option<u16>,
}

impl<'a> Frame<'a> {
    /// A frame with nothing known beyond its bytes, time and link type (files, pnet).
    pub fn new(ts_ns: i64, linktype: u32, data: &'a [u8], wire_len: u32) -> Self {
        Frame {
            ts_ns,
            linktype,
            data,
            wire_len,
            interface: 0,
            pkttype: None,
            vlan_tci: None,
            vlan_tpid: None,
        }
    }

    /// True when the source says the host sent this packet.
    pub fn is_outgoing(&self) -> bool {
        self.pkttype == Some(PACKET_OUTGOING)
    }
}
