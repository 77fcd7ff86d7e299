//! voqa-wire: the data contract shared by the agent and the collector.
//!
//! These are plain serde types and nothing else: no I/O, no clock, no logic beyond
//! (de)serialisation. Field names and meanings are the stable `analyze --format json`
//! contract of DESIGN.md; fields may be added, never renamed or removed, without a
//! schema version bump.

use serde::{Deserialize, Serialize};

/// Version of the agent → collector batch schema.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole output of `voqa-agent analyze --format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzeOutput {
    pub files: Vec<FileSummary>,
    pub streams: Vec<StreamSummary>,
    pub calls: Vec<CallSummary>,
}

/// What was read from one capture file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileSummary {
    pub path: String,
    /// Frames read from the file (every record, skipped ones included).
    pub packets: u64,
    /// Captured bytes of those frames.
    pub bytes: u64,
    pub skipped: Skipped,
    /// Set when the file ends in the middle of a record: the byte offset of the cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_at: Option<u64>,
    /// Human-readable warnings (a cut file, an unsupported link type, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Frames skipped, by reason. Every frame is either decoded or counted here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Not UDP over IPv4/IPv6 (other ethertypes, TCP, ICMP, unsupported link types).
    pub non_udp: u64,
    /// Cut short by the capture's snap length before the headers we need.
    pub truncated: u64,
    /// IP fragments (not reassembled offline).
    pub fragments: u64,
    /// Headers whose length fields or versions are inconsistent.
    pub malformed: u64,
}

/// One RTP stream: 5-tuple plus SSRC, from its first to its last packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSummary {
    pub src: String,
    pub dst: String,
    /// SSRC as `0x` and eight lower-case hex digits.
    pub ssrc: String,
    pub payload_type: u8,
    pub codec: String,
    /// RTP clock rate in Hz; null when it could not be determined.
    pub clock_rate: Option<u32>,
    pub call_id: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub packets: u64,
    pub expected: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// RFC 3550 A.8 jitter after the last packet; null without a clock rate.
    pub jitter_ms: Option<f64>,
    pub max_jitter_ms: Option<f64>,
    pub mean_jitter_ms: Option<f64>,
    pub max_delta_ms: f64,
    pub burst_ratio: f64,
    pub jb_discarded: u64,
    pub effective_loss_pct: f64,
    pub rtt_ms: Option<f64>,
    pub r_factor: Option<f64>,
    pub mos: Option<f64>,
    // ---- additions beyond the DESIGN.md minimum ----
    /// Runs of consecutive sequence numbers never received, and the longest one.
    pub loss_bursts: u64,
    pub max_loss_burst: u64,
    /// RFC 3550 A.3 cumulative loss (expected − received; negative with duplicates).
    pub lost_rfc3550: i64,
    /// Mouth-to-ear delay fed to the E-model, and where its network part came from.
    pub delay_ms: Option<f64>,
    /// `rtcp` (measured round trip / 2) or `assumed` (configured one-way delay).
    pub delay_source: String,
    /// `static` (RFC 3551 table), `sdp` (a=rtpmap), `config`, `inferred` (timestamps vs arrival) or `unknown`.
    pub clock_source: String,
    /// `sdp` (announced by SIP/SDP) or `heuristic`.
    pub detection: String,
    /// The jitter-buffer emulation behind `jb_discarded`, e.g. `fixed:60`.
    pub jitter_buffer: String,
    /// The E-model inputs used for this codec.
    pub ie: Option<f64>,
    pub bpl: Option<f64>,
    /// Conditions a reader should know about, e.g. `clock_inferred`, `codec_values_defaulted`.
    pub flags: Vec<String>,
}

/// One SIP dialog and the streams it set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSummary {
    pub call_id: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Indexes into `AnalyzeOutput::streams`.
    pub streams: Vec<usize>,
    /// Time of the first INVITE.
    pub setup: Option<String>,
    /// Time of the final 2xx to the INVITE.
    #[serde(default)]
    pub answer: Option<String>,
    /// Time of the BYE (or CANCEL, or a final failure response).
    pub end: Option<String>,
    /// Final response to the INVITE, if seen.
    #[serde(default)]
    pub status: Option<u16>,
}
