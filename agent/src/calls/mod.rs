//! Calls as first-class records (issue 12): the SIP dialog engine (`dialog`), the media
//! problems found from a call's dialog and its streams (`media`), and the call's record as the
//! `analyze` document and the collector receive it (`record`).
//!
//! This stage sits beside `streams`: the analyzer feeds it SIP messages (with their parsed SDP)
//! and the facts of the streams that close; it never sees RTP packets, so the per-packet path
//! does not pay for it. It must not read a clock (packet time only), print, or keep SIP text
//! beyond Call-ID and user parts (pseudonymised on output by `record`).

pub mod dialog;
pub mod media;
pub mod record;

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

pub use dialog::{Call, CallTracker, DialogConfig, DialogPhase, EndCause, Party};
pub use media::MediaThresholds;

use crate::streams::StreamResult;

/// Settings of call tracking: the dialog engine's bounds and timeouts, the local networks that
/// give calls a direction, and the media problems' thresholds.
#[derive(Debug, Clone, Default)]
pub struct CallsConfig {
    pub dialog: DialogConfig,
    pub media: MediaThresholds,
}

/// A call's direction relative to the monitored host's networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallDirection {
    /// The INVITE came from outside the local networks to an address inside them.
    Inbound,
    /// The INVITE went from a local address to one outside.
    Outbound,
    /// Both ends local.
    Internal,
    /// Neither end local (a monitored trunk between two other hosts).
    External,
}

impl CallDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            CallDirection::Inbound => "inbound",
            CallDirection::Outbound => "outbound",
            CallDirection::Internal => "internal",
            CallDirection::External => "external",
        }
    }
}

/// One network prefix (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a local network could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a network (ADDRESS or ADDRESS/PREFIX, e.g. 10.0.0.0/8)")]
pub struct LocalNetError(String);

impl FromStr for LocalNet {
    type Err = LocalNetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LocalNetError(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(LocalNet { addr, prefix })
    }
}

impl LocalNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => (u128::from(v4.to_bits()), 32u32),
            IpAddr::V6(v6) => (v6.to_bits(), 128u32),
        };
        let ((net, width), (ip, ip_width)) = (bits(self.addr), bits(ip));
        if width != ip_width {
            return false;
        }
        let prefix = u32::from(self.prefix);
        if prefix == 0 {
            return true;
        }
        let shift = width - prefix;
        (net >> shift) == (ip >> shift)
    }
}

/// The monitored host's networks (empty: calls get no direction and no peer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalNets(pub Vec<LocalNet>);

impl LocalNets {
    fn is_local(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// Peer and direction of a call whose INVITE went from `src` to `dst`.
    pub fn classify(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> (Option<SocketAddr>, Option<CallDirection>) {
        if self.0.is_empty() {
            return (None, None);
        }
        match (self.is_local(src.ip()), self.is_local(dst.ip())) {
            (false, true) => (Some(src), Some(CallDirection::Inbound)),
            (true, false) => (Some(dst), Some(CallDirection::Outbound)),
            (true, true) => (None, Some(CallDirection::Internal)),
            (false, false) => (None, Some(CallDirection::External)),
        }
    }
}

/// What a call needs to know of one of its streams once it closed: where it flowed, when, its
/// codec and MOS, and where it fell silent.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamFacts {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ssrc: u32,
    pub first_ns: i64,
    pub last_ns: i64,
    pub packets: u64,
    /// As [`crate::streams::StreamResult::codec`]: a known codec's name is not copied per stream.
    pub codec: std::borrow::Cow<'static, str>,
    pub mos: Option<f64>,
    /// Video (no MOS, not judged for audio problems).
    pub video: bool,
    /// The longest pause between packets not explained by DTX (the packet after it carried no
    /// marker bit and the one before it was no comfort noise): `(last before, first after)`.
    pub longest_gap: Option<(i64, i64)>,
    /// The stream's last packet was comfort noise: it went silent, it did not stop.
    pub ends_in_cn: bool,
}

impl StreamFacts {
    pub fn of(s: &StreamResult) -> Self {
        StreamFacts {
            src: s.key.src,
            dst: s.key.dst,
            ssrc: s.key.ssrc,
            first_ns: s.first_ns,
            last_ns: s.last_ns,
            packets: s.summary.packets,
            codec: s.codec.clone(),
            mos: s.summary.mos,
            video: s.codec_info.role == crate::quality::codec::MediaRole::Video,
            longest_gap: s.silence.longest_gap,
            ends_in_cn: s.silence.ends_in_cn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn local_networks_parse_match_and_classify() {
        let nets = LocalNets(
            ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]
                .iter()
                .map(|s| s.parse().expect("net"))
                .collect(),
        );
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129"] {
            assert!(bad.parse::<LocalNet>().is_err(), "{bad}");
        }
        let inside = sa("10.1.2.3:5060");
        let outside = sa("198.51.100.1:5060");
        assert_eq!(
            nets.classify(outside, inside),
            (Some(outside), Some(CallDirection::Inbound))
        );
        assert_eq!(
            nets.classify(inside, outside),
            (Some(outside), Some(CallDirection::Outbound))
        );
        assert_eq!(
            nets.classify(inside, sa("192.0.2.7:5060")),
            (None, Some(CallDirection::Internal))
        );
        assert_eq!(
            nets.classify(outside, sa("192.0.2.8:5060")),
            (None, Some(CallDirection::External))
        );
        assert_eq!(
            nets.classify(sa("[2001:db8::1]:5060"), sa("[2001:db9::1]:5060"))
                .1,
            Some(CallDirection::Outbound)
        );
        assert_eq!(LocalNets::default().classify(outside, inside), (None, None));
    }
}
