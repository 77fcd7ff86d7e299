//! The SDP registry: media endpoints announced by SIP/SDP (address:port where a party receives
//! RTP, its RTCP address, and its payload-type map), so that announced streams are tracked from
//! their first packet with the right clock rate.
//!
//! Each announcement also says whether the media is audio or video (video is measured for loss
//! but never rated with the speech E-model), whether it is SRTP (`RTP/SAVP*`: its RTCP is
//! SRTCP, encrypted, and must never feed the round-trip estimate) and its direction attribute.
//!
//! Bounded (oldest announcements are evicted first); it stores no payload and no SIP text beyond
//! the encoding names of `a=rtpmap`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use hashbrown::HashMap;

use crate::decode::sdp::{Direction, MediaType};

/// One `a=rtpmap` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMapEntry {
    pub payload_type: u8,
    /// Shared with every stream that uses it (no per-stream copy).
    pub encoding: Arc<str>,
    pub clock_hz: u32,
}

/// Names kept by [`EncodingNames`]; further distinct names (a hostile or broken sender) are
/// allocated per announcement as before, never kept.
const MAX_ENCODING_NAMES: usize = 64;

/// The `a=rtpmap` encoding names seen so far, each allocated once and shared by every
/// announcement naming it: a SIP-heavy capture announces the same few names (PCMU, PCMA,
/// telephone-event) twice per call, and an allocation (and later a free) per name and SDP was
/// a visible share of its analysis. Exact bytes, case kept: the names are passed on unchanged.
#[derive(Debug, Default)]
pub struct EncodingNames {
    names: Vec<Arc<str>>,
}

impl EncodingNames {
    /// The shared name equal to `name`.
    pub fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(known) = self.names.iter().find(|known| &***known == name) {
            return Arc::clone(known);
        }
        let new: Arc<str> = Arc::from(name);
        if self.names.len() < MAX_ENCODING_NAMES {
            self.names.push(Arc::clone(&new));
        }
        new
    }
}

/// What an SDP media section says about the RTP sent to its address.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaProfile {
    /// Call-ID of the SIP dialog that announced it (as captured; pseudonymised on output).
    pub call_id: Option<Arc<str>>,
    pub rtpmaps: Vec<RtpMapEntry>,
    pub ptime_ms: Option<u32>,
    /// `m=audio` or `m=video`.
    pub media: MediaType,
    /// Announced as SRTP (`RTP/SAVP`, `RTP/SAVPF`, `UDP/TLS/RTP/SAVPF`, ...).
    pub srtp: bool,
    /// The direction attribute of the announcement (`a=sendonly` on hold, ...).
    pub direction: Direction,
}

impl MediaProfile {
    pub fn rtpmap(&self, payload_type: u8) -> Option<&RtpMapEntry> {
        self.rtpmaps.iter().find(|m| m.payload_type == payload_type)
    }
}

/// The registry as shared by capture workers: SIP may reach one worker and its media another,
/// so every worker reads (on new flows only) and writes (on SDP) the same registry.
pub type SharedRegistry = std::sync::Arc<std::sync::RwLock<SdpRegistry>>;

/// A socket address as a key of the registry's maps, hashed from its parts as integers: the
/// derived hash of a `SocketAddr` feeds the hasher its variant, its octets as a slice and its
/// port one by one (some 47 instructions), and every announcement hashes two or three addresses
/// (its RTP and RTCP addresses, the one it evicts), every new flow one or two. Equal keys hash
/// alike (the hash reads a subset of what equality compares); nothing iterates the maps, so
/// their order is no output's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key(SocketAddr);

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self.0 {
            SocketAddr::V4(v4) => {
                state.write_u64((u64::from(v4.ip().to_bits()) << 16) | u64::from(v4.port()));
            }
            SocketAddr::V6(v6) => {
                state.write_u128(v6.ip().to_bits());
                state.write_u16(v6.port());
            }
        }
    }
}

#[derive(Debug)]
pub struct SdpRegistry {
    media: HashMap<Key, Arc<MediaProfile>, foldhash::fast::RandomState>,
    /// RTCP addresses and whether their media is SRTP (then the RTCP is SRTCP).
    rtcp: HashMap<Key, bool, foldhash::fast::RandomState>,
    order: VecDeque<SocketAddr>,
    capacity: usize,
    evicted: u64,
}

impl SdpRegistry {
    pub fn new(capacity: usize) -> Self {
        SdpRegistry {
            media: HashMap::default(),
            rtcp: HashMap::default(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            evicted: 0,
        }
    }

    /// Records that RTP for `media` (and RTCP for `rtcp`) is described by `profile`.
    /// A later announcement of the same address (re-INVITE, answer) replaces the earlier one.
    pub fn announce(
        &mut self,
        media: SocketAddr,
        rtcp: Option<SocketAddr>,
        profile: Arc<MediaProfile>,
    ) {
        let srtp = profile.srtp;
        if self.media.insert(Key(media), profile).is_none() {
            self.order.push_back(media);
        }
        if let Some(rtcp) = rtcp {
            self.rtcp.insert(Key(rtcp), srtp);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.media.remove(&Key(old));
                self.evicted += 1;
            }
        }
        if self.rtcp.len() > self.capacity.saturating_mul(2) {
            // RTCP entries are only a hint for reduced-size validation; start over rather than track order.
            self.rtcp.clear();
        }
    }

    pub fn lookup(&self, addr: &SocketAddr) -> Option<&Arc<MediaProfile>> {
        if self.media.is_empty() {
            return None;
        }
        self.media.get(&Key(*addr))
    }

    pub fn is_rtcp(&self, addr: &SocketAddr) -> bool {
        self.rtcp.contains_key(&Key(*addr))
    }

    /// True when `addr` was announced as the RTCP address of SRTP media, or as the address of
    /// SRTP media itself (RTCP multiplexed on the RTP port, `a=rtcp-mux`): RTCP there is SRTCP.
    pub fn is_srtcp(&self, addr: &SocketAddr) -> bool {
        if self.media.is_empty() {
            return false;
        }
        self.rtcp.get(&Key(*addr)).copied().unwrap_or(false)
            || self.media.get(&Key(*addr)).is_some_and(|p| p.srtp)
    }

    pub fn len(&self) -> usize {
        self.media.len()
    }

    pub fn is_empty(&self) -> bool {
        self.media.is_empty()
    }

    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_names_are_shared_exactly_and_bounded() {
        let mut names = EncodingNames::default();
        let a = names.get("PCMU");
        let b = names.get("PCMU");
        assert!(Arc::ptr_eq(&a, &b), "one allocation for a name seen twice");
        let lower = names.get("pcmu");
        assert_eq!(&*lower, "pcmu", "case is kept");
        assert!(!Arc::ptr_eq(&a, &lower));
        for i in 0..100 {
            assert_eq!(&*names.get(&format!("x{i}")), format!("x{i}"));
        }
        assert_eq!(names.names.len(), MAX_ENCODING_NAMES);
        // Past the bound a name is still returned, just not kept.
        let late = names.get("late");
        assert_eq!(&*late, "late");
        assert!(!Arc::ptr_eq(&late, &names.get("late")));
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 10], port))
    }

    #[test]
    fn announce_lookup_and_replace() {
        let mut r = SdpRegistry::new(10);
        let p1 = Arc::new(MediaProfile {
            call_id: Some("1".into()),
            ..Default::default()
        });
        let p2 = Arc::new(MediaProfile {
            call_id: Some("2".into()),
            ..Default::default()
        });
        r.announce(addr(40000), Some(addr(40001)), p1);
        assert_eq!(
            r.lookup(&addr(40000))
                .and_then(|p| p.call_id.clone())
                .as_deref(),
            Some("1")
        );
        assert!(r.is_rtcp(&addr(40001)));
        r.announce(addr(40000), None, p2);
        assert_eq!(
            r.lookup(&addr(40000))
                .and_then(|p| p.call_id.clone())
                .as_deref(),
            Some("2")
        );
        assert_eq!(r.len(), 1);
        assert!(r.lookup(&addr(40002)).is_none());
    }

    #[test]
    fn srtp_announcements_mark_their_rtcp_and_muxed_addresses() {
        let mut r = SdpRegistry::new(10);
        let srtp = Arc::new(MediaProfile {
            srtp: true,
            ..Default::default()
        });
        r.announce(addr(40000), Some(addr(40001)), Arc::clone(&srtp));
        r.announce(
            addr(41000),
            Some(addr(41001)),
            Arc::new(MediaProfile::default()),
        );
        // rtcp-mux: the RTCP address is the RTP address.
        r.announce(addr(42000), Some(addr(42000)), srtp);
        assert!(r.is_srtcp(&addr(40001)));
        assert!(r.is_srtcp(&addr(40000)));
        assert!(r.is_srtcp(&addr(42000)));
        assert!(!r.is_srtcp(&addr(41001)));
        assert!(!r.is_srtcp(&addr(41000)));
        assert!(!r.is_srtcp(&addr(43000)));
        assert!(r.is_rtcp(&addr(41001)));
    }

    #[test]
    fn registry_is_bounded_oldest_first() {
        let mut r = SdpRegistry::new(3);
        for port in 0..5u16 {
            r.announce(addr(10000 + port), None, Arc::new(MediaProfile::default()));
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.evicted(), 2);
        assert!(r.lookup(&addr(10000)).is_none());
        assert!(r.lookup(&addr(10004)).is_some());
    }
}
