//! voqa-wire: the data contract shared by the agent and the collector.
//!
//! These are plain serde types and nothing else: no I/O, no clock, no logic beyond
//! (de)serialisation. Field names and meanings are the stable `analyze --format json`
//! contract of DESIGN.md; fields may be added, never renamed or removed, without a
//! schema version bump.
//!
//! Feature `openapi` derives `utoipa::ToSchema` on the types the collector's API takes and
//! returns, for its generated OpenAPI document; the agent builds without it.

pub mod codecs;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod histogram;
pub mod time;

pub use time::{Rfc3339Writer, TimeError, Timestamp};

use serde::{Deserialize, Serialize};

/// Version of the agent → collector batch schema.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole output of `voqa-agent analyze --format json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzeOutput {
    pub files: Vec<FileSummary>,
    pub streams: Vec<StreamSummary>,
    pub calls: Vec<CallSummary>,
    /// The settings the figures were computed with; absent from documents of agents that
    /// predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSettings>,
    /// What the SIP dialog engine did over the whole analysis; absent from documents of agents
    /// that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialogs: Option<DialogStats>,
}

/// The SIP dialog engine's counters over one analysis (`analyze`'s `dialogs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialogStats {
    /// Dialogs (INVITE Call-IDs) listed in `calls`.
    pub calls: u64,
    /// Of those, still open when the capture ended (no BYE, CANCEL, final failure or timeout).
    pub open: u64,
    /// Open dialogs evicted because the dialog table was full (not listed in `calls`).
    pub evicted: u64,
    /// Dialogs ended by a timeout (setup without final response, or a call longer than the
    /// longest allowed).
    pub timed_out: u64,
    /// Ended calls dropped from the document beyond the call limit (the oldest first).
    pub forgotten: u64,
    /// Retransmitted INVITEs, final responses, CANCELs and BYEs over all dialogs.
    pub retransmissions: u64,
    /// SIP messages of no INVITE dialog (REGISTER, OPTIONS, SUBSCRIBE, ... or no Call-ID).
    pub non_call_messages: u64,
}

/// How `analyze` measured: what a reader needs to compare two documents' figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisSettings {
    /// The jitter-buffer emulation behind `jb_discarded`, as each stream's `jitter_buffer`.
    pub jitter_buffer: String,
    /// The emulated buffer re-anchors on this many consecutive late packets (metrics-spec
    /// §9.2a: a route change or a sender pause costs this minus one discards); 0 = never.
    pub resync_after_late: u32,
    /// One-way network delay (ms) the E-model assumes where RTCP gives no round trip.
    pub assumed_one_way_ms: f64,
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
    /// What became of the IP fragments counted in `skipped.fragments` (absent in documents
    /// written before reassembly existed).
    #[serde(default)]
    pub ip_reassembly: IpReassembly,
    /// Set when the file ends in the middle of a record: the byte offset of the cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_at: Option<u64>,
    /// Human-readable warnings (a cut file, an unsupported link type, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// SIP carried over TCP (plain or WebSocket): what the stream reassembly did.
    #[serde(default)]
    pub sip_tcp: SipTcp,
}

/// SIP over TCP and WebSocket in one file. TCP segments counted here are not in `skipped`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipTcp {
    /// TCP segments of SIP connections (configured SIP ports, or a SIP or SIP-over-WebSocket
    /// start seen on another port).
    pub segments: u64,
    /// Whole SIP messages reassembled (WebSocket ones included).
    pub messages: u64,
    /// Of those, carried in WebSocket frames.
    pub websocket_messages: u64,
    /// Connection directions dropped to respect the reassembly's count or memory bound.
    pub connections_evicted: u64,
    /// Times a direction lost its place (a hole given up, a connection first seen mid-stream,
    /// bytes that were no SIP) and resynchronised on the next message start.
    pub resyncs: u64,
    /// Bytes discarded by the reassembly (before a resynchronisation point, of oversized or
    /// unfinished messages).
    pub bytes_dropped: u64,
}

/// Frames skipped, by reason. Every frame is either decoded or counted here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Not UDP over IPv4/IPv6 (other ethertypes, TCP that is not SIP, ICMP, unsupported link
    /// types).
    pub non_udp: u64,
    /// Cut short by the capture's snap length before the headers we need.
    pub truncated: u64,
    /// IP fragment frames (IPv4, and IPv6 with a non-atomic Fragment header). A fragment is not
    /// a datagram by itself, so every one is counted here; the datagrams they reassemble to are
    /// then analysed like any other, and `ip_reassembly` says what became of them.
    pub fragments: u64,
    /// Headers whose length fields or versions are inconsistent.
    pub malformed: u64,
}

/// IP fragment reassembly (IPv4 and IPv6), in datagrams unless said otherwise. Reassembly is
/// bounded per datagram, in count, in memory and in packet time; by the end of a capture every
/// datagram whose fragments were seen has ended in exactly one of `reassembled`, `overlapping`,
/// `inconsistent`, `too_big`, `evicted`, `timed_out` or `incomplete`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpReassembly {
    /// Datagrams completed from their fragments (those that were UDP were then analysed).
    pub reassembled: u64,
    /// Of `reassembled`: not UDP (TCP and others are not analysed), dropped.
    pub not_udp: u64,
    /// Of `reassembled`: UDP (or IPv6 extension) headers contradicting the reassembled length.
    pub malformed: u64,
    /// Fragment frames that repeated bytes already held (exact duplicates), ignored.
    pub duplicates: u64,
    /// Refused because two fragments overlapped with different bytes (RFC 5722; IPv4 alike).
    pub overlapping: u64,
    /// Refused because fragments contradicted each other: two different ends, data past the end,
    /// an empty fragment, or a non-last fragment whose length is not a multiple of 8.
    pub inconsistent: u64,
    /// Refused because they would exceed 65,535 octets (an offset plus length beyond what an IP
    /// length field allows) or the per-datagram limits (size, separate pieces).
    pub too_big: u64,
    /// Dropped incomplete to make room: the concurrent-datagram or memory limit was reached.
    pub evicted: u64,
    /// Dropped incomplete: the rest did not arrive within the reassembly timeout (packet time).
    pub timed_out: u64,
    /// Still incomplete when the capture ended.
    pub incomplete: u64,
}

/// One RTP stream: 5-tuple plus SSRC, from its first to its last packet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
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
    /// `audio` or `video` (by SDP `m=video`, a video codec, or an unsignalled 90 kHz clock).
    /// Video is counted (packets, loss, duplicates, reordering) but has no jitter-buffer
    /// emulation and no MOS: the E-model rates speech. Absent from older agents: `audio`.
    #[serde(default = "audio")]
    pub media: String,
    /// Announced by SDP as SRTP (`RTP/SAVP`, `RTP/SAVPF`, `UDP/TLS/RTP/SAVPF`): measured from
    /// the clear RTP headers like any stream; its RTCP (SRTCP, encrypted) gives no round trip.
    /// False when unknown (no SDP seen). Absent from older agents: false.
    #[serde(default)]
    pub srtp: bool,
    /// How the clock of a payload type without a known clock (dynamic, no SDP) was inferred, or
    /// why it was not; absent when the clock came from the static table, SDP or configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_inference: Option<ClockInference>,
}

fn audio() -> String {
    "audio".to_owned()
}

/// The evidence behind an inferred clock rate (`clock_source: "inferred"`) or behind leaving it
/// unknown (`clock_source: "unknown"`, no jitter, no MOS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClockInference {
    /// `ts_step`: the timestamp step is a standard packet time (10, 20, 30, 40, 60 ms) at this
    /// clock and the arrival gaps pick it among the clocks where it is; `arrival`: no clock makes
    /// the step a standard packet time, timestamps per second of arrival and most gaps match
    /// this clock; `none`: not inferred, the clock is unknown.
    pub method: String,
    /// `high` or `medium`; null with `none`.
    pub confidence: Option<String>,
    /// The most common timestamp step between consecutive packets, and the packet time (ms) it
    /// means at the inferred clock.
    pub ts_step: Option<u32>,
    pub ptime_ms: Option<f64>,
    /// Consecutive-packet pairs examined, and how many of their arrival gaps match the clock.
    pub pairs: u32,
    pub matching: u32,
}

/// One SIP dialog and the streams it set up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallSummary {
    pub call_id: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Indexes into `AnalyzeOutput::streams`.
    pub streams: Vec<usize>,
    /// Time of the first INVITE (the challenged one, for a call that had to authenticate).
    pub setup: Option<Timestamp>,
    /// Time of the first 2xx to the last INVITE of the setup (re-INVITEs do not move it).
    #[serde(default)]
    pub answer: Option<Timestamp>,
    /// Time of the BYE, of the CANCEL of an unanswered call, or of the final failure response
    /// to the last INVITE. A 401/407 challenge, a 491 or a 3xx redirect does not end a call.
    pub end: Option<Timestamp>,
    /// Final response to the last INVITE transaction of the setup (so 200 for a call answered
    /// after a 401/407 challenge); null while that transaction has none.
    #[serde(default)]
    pub status: Option<u16>,
    // ---- call records (issue 12); absent from documents of older agents ----
    /// First provisional response other than 100 Trying to the call's INVITE (the end of the
    /// session request delay, RFC 6076 §4.3).
    #[serde(default)]
    pub first_provisional: Option<Timestamp>,
    /// First 180 or 183 (the far end is alerting or playing early media).
    #[serde(default)]
    pub first_ringing: Option<Timestamp>,
    /// The Q.850 cause of a `Reason: Q.850;cause=N` header on the BYE, CANCEL or final
    /// response that ended the call.
    #[serde(default)]
    pub reason_cause: Option<u16>,
    /// How the call ended: `bye`, `cancel`, `failure` (a final 3xx-6xx), `timeout` (no final
    /// response within the setup timeout, or no BYE within the longest call allowed) or
    /// `shutdown` (the agent stopped); null while the call is up.
    #[serde(default)]
    pub end_cause: Option<String>,
    /// Who ended it: `caller`, `callee`, `timeout` or `shutdown`; null when unknown.
    #[serde(default)]
    pub ended_by: Option<String>,
    /// `inbound` (the INVITE came to a local address from elsewhere), `outbound`, `internal`
    /// (both local) or `external` (neither); null when no local networks are configured.
    #[serde(default)]
    pub direction: Option<String>,
    /// The far side's SIP address (`IP:port`) for inbound and outbound calls.
    #[serde(default)]
    pub peer: Option<String>,
    /// First 180/183 to the answer (or to the end of an unanswered call), in ms.
    #[serde(default)]
    pub ring_ms: Option<u64>,
    /// Answer to end, in ms (answered calls that ended).
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// re-INVITE transactions inside the confirmed dialog (retransmissions counted once).
    #[serde(default)]
    pub reinvites: u32,
    /// Distinct To-tags in responses to the call's INVITE (2 or more: the INVITE forked).
    #[serde(default)]
    pub forks: u32,
    /// Retransmitted INVITEs, final responses and BYEs of the dialog (not counted as new).
    #[serde(default)]
    pub retransmissions: u32,
    /// What re-INVITEs (and the setup's SDP) did to the media, in time order.
    #[serde(default)]
    pub events: Vec<CallEvent>,
    /// The call's RTP streams with their direction, codec and MOS.
    #[serde(default)]
    pub media: Vec<CallMedia>,
    /// The call's MOS: that of its worst stream.
    #[serde(default)]
    pub mos: Option<f64>,
    /// The report window in which the call's MOS was worst (live: an interval report window of
    /// the worst stream; analyze: the worst stream from its first to its last packet).
    #[serde(default)]
    pub worst_window_start: Option<Timestamp>,
    #[serde(default)]
    pub worst_window_end: Option<Timestamp>,
    /// Media problems found in the call (`no_rtp`, `one_way_audio`, `rtp_stopped`,
    /// `media_address_mismatch`).
    #[serde(default)]
    pub problems: Vec<MediaProblem>,
    /// Time of the first final response to the BYE that ended the call (retransmissions
    /// counted once): `end` to it is the session disconnect delay (RFC 6076 §4.4). Absent
    /// when the call did not end by BYE, the BYE had no response in the capture, or the agent
    /// predates it (so documents of calls without it keep their bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bye_response: Option<Timestamp>,
}

/// A change of a call's media, from SDP in the dialog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallEvent {
    pub time: Timestamp,
    /// `hold` (`a=sendonly`, `recvonly`, `inactive` or `c=0.0.0.0`), `resume`, `codec_change`
    /// (the first audio payload type changed) or `t38` (an `m=image` T.38 section).
    pub kind: String,
    /// `caller` or `callee`: whose SDP it was; null when unknown.
    pub by: Option<String>,
}

/// One RTP stream of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallMedia {
    /// The stream's id, as in its stream reports (16 hex digits).
    pub stream_id: String,
    /// `caller_to_callee`, `callee_to_caller` or `unknown`.
    pub direction: String,
    pub codec: String,
    pub mos: Option<f64>,
}

/// A media problem of a call: what, in which direction, from when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MediaProblem {
    /// `no_rtp`, `one_way_audio`, `rtp_stopped` or `media_address_mismatch`.
    pub kind: String,
    /// `caller_to_callee` or `callee_to_caller`.
    pub direction: String,
    pub start: Timestamp,
}

/// A call record as the agent ships it when the call ends: the `analyze` call object (its
/// `streams` indexes empty: `media` names the streams by id) with the agent and a stable key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallRecord {
    pub agent_id: String,
    /// Stable identity of the call: 16 hex digits derived from its (pseudonymised) Call-ID and
    /// the packet time it was first seen, the same in every retry of the record.
    pub call_key: String,
    #[serde(flatten)]
    pub call: CallSummary,
}

impl CallRecord {
    /// The record's identity, `AGENT/call/CALL_KEY`: stored once by the collector however
    /// often it is retried.
    pub fn record_id(&self) -> String {
        format!("{}/call/{}", self.agent_id, self.call_key)
    }
}

/// Markov transition counts over sequence positions (1 = lost or discarded), mergeable by sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transitions {
    pub n00: u64,
    pub n01: u64,
    pub n10: u64,
    pub n11: u64,
}

/// One stream's figures for one window `[window_start, window_end)` of packet time; the last
/// report of a stream has `final: true` and carries the whole stream's totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamReport {
    pub agent_id: String,
    /// Stable identity of the stream across its reports: 16 hex digits.
    pub stream_id: String,
    pub src: String,
    pub dst: String,
    pub ssrc: String,
    pub payload_type: u8,
    pub codec: String,
    pub clock_rate: Option<u32>,
    pub call_id: Option<String>,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Why the stream ended (`bye`, `idle`, `evicted`, `restart`, `shutdown`), on final reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    /// Packets of the window (duplicates included).
    pub packets: u64,
    /// Sequence positions classified in this window (they leave the reorder window), and how
    /// many of them were never received. Over all reports of a stream these sum to its totals.
    pub expected: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// RFC 3550 jitter at the end of the window; max and mean over the window's packets.
    pub jitter_ms: Option<f64>,
    pub max_jitter_ms: Option<f64>,
    pub mean_jitter_ms: Option<f64>,
    /// Sum and count of the per-packet jitter estimates, for merging means across windows.
    pub jitter_sum_ms: f64,
    pub jitter_samples: u64,
    /// Per-packet jitter of the window's packets (µs): an HdrHistogram, V2 + deflate, base64,
    /// with the bounds of [`histogram`]. Absent when the stream has no clock rate, and from
    /// agents that predate it; the collector merges these for exact percentiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_histogram: Option<String>,
    pub max_delta_ms: f64,
    pub transitions: Transitions,
    pub burst_ratio: f64,
    pub jb_discarded: u64,
    pub effective_loss_pct: f64,
    pub rtt_ms: Option<f64>,
    pub delay_ms: Option<f64>,
    pub r_factor: Option<f64>,
    pub mos: Option<f64>,
    /// Kernel drops of the capturing worker during this window: when non-zero, loss in this
    /// window may be the monitor's, not the network's.
    pub capture_drops: u64,
    /// Whole-stream totals with exactly the fields of the `analyze` stream object (final reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<StreamSummary>,
}

impl StreamReport {
    /// The report's identity: agent, stream, window start and final flag. It is the same for
    /// every copy of the report however often it is retried, in whatever batch, and across
    /// agent restarts (stream ids derive from the stream's 5-tuple, SSRC and first packet
    /// time); the collector stores each identity once. Printed as
    /// `AGENT/STREAM/WINDOW_START_NS/i|f`.
    pub fn record_id(&self) -> String {
        stream_record_id(
            &self.agent_id,
            &self.stream_id,
            self.window_start.as_ns(),
            self.is_final,
        )
    }
}

/// [`StreamReport::record_id`] from its parts (for stores that keep them in columns).
pub fn stream_record_id(
    agent_id: &str,
    stream_id: &str,
    window_start_ns: i64,
    is_final: bool,
) -> String {
    format!(
        "{agent_id}/{stream_id}/{window_start_ns}/{}",
        if is_final { 'f' } else { 'i' }
    )
}

/// Capture counters of one worker (cumulative since the agent started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerCounters {
    pub worker: u32,
    /// Packets the kernel handed to the ring, drops included (PACKET_STATISTICS tp_packets).
    pub kernel_packets: u64,
    /// Packets the kernel dropped because the ring was full.
    pub kernel_drops: u64,
    /// Times the ring queue froze.
    pub kernel_freezes: u64,
    /// Frames the worker analysed.
    pub frames: u64,
}

/// State of one watched process (asterisk, freeswitch, kamailio, rtpengine, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProcessState {
    pub name: String,
    pub up: bool,
    /// Number of running processes with that name.
    pub count: u32,
}

/// Host and agent health, sent every heartbeat interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Heartbeat {
    pub agent_id: String,
    pub agent_version: String,
    /// Time of the heartbeat (RFC 3339): the wall clock in live capture, packet time in replay.
    pub time: Timestamp,
    pub host_uptime_s: u64,
    /// Whole-host CPU use, percent of all cores.
    pub cpu_pct: f64,
    /// CPU use of the agent process, percent of one core.
    pub agent_cpu_pct: f64,
    pub mem_total_bytes: u64,
    pub mem_used_bytes: u64,
    /// Resident memory of the agent process.
    pub agent_rss_bytes: u64,
    pub load_avg: [f64; 3],
    pub workers: Vec<WorkerCounters>,
    pub streams_tracked: u64,
    pub streams_evicted: u64,
    pub processes: Vec<ProcessState>,
    /// The agent's outbound queue at the time of the heartbeat (absent from agents without a
    /// shipper, e.g. `run --sink file:...`, and from agents that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<ShippingCounters>,
}

/// State of the agent's disk spool and shipper (cumulative counters since the spool was
/// created, except the `pending_*` levels).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShippingCounters {
    /// Records and bytes written to the spool and not yet acknowledged by a collector.
    pub pending_records: u64,
    pub pending_bytes: u64,
    /// Records acknowledged by a collector (2xx).
    pub acked_records: u64,
    /// Records dropped, oldest first, because the spool reached its size cap.
    pub dropped_cap_records: u64,
    /// Records that could not be written to the spool (disk full, I/O error).
    pub dropped_write_records: u64,
    /// Torn or corrupt spool records cut at start-up or skipped while reading.
    pub corrupt_records: u64,
    /// Records a collector refused for good (a 4xx other than 401/403/408/429), kept in the
    /// dead-letter segments for an operator.
    pub dead_letter_records: u64,
}

impl Heartbeat {
    /// The heartbeat's identity: agent and time (`AGENT/hb/TIME_NS`), stored once.
    pub fn record_id(&self) -> String {
        format!("{}/hb/{}", self.agent_id, self.time.as_ns())
    }
}

/// One line of the agent's JSON-lines output (`run --sink file:PATH|stdout`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// Records travel boxed between threads; the size difference costs nothing there.
#[allow(clippy::large_enum_variant)]
pub enum AgentRecord {
    Stream(StreamReport),
    Heartbeat(Heartbeat),
    Call(CallRecord),
}

impl AgentRecord {
    /// The record's identity (each variant's `record_id`).
    pub fn record_id(&self) -> String {
        match self {
            AgentRecord::Stream(r) => r.record_id(),
            AgentRecord::Heartbeat(h) => h.record_id(),
            AgentRecord::Call(c) => c.record_id(),
        }
    }
}

/// One agent → collector upload (`POST /api/v1/ingest`, gzip or plain JSON). Idempotent per
/// record: the collector stores each report and heartbeat once by its `record_id`, whatever
/// batch it arrives in, and acknowledges repeats; `batch_id` names the upload in logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Batch {
    /// Must equal [`SCHEMA_VERSION`].
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1))]
    pub schema: u32,
    /// UUID chosen by the agent (36 characters, lower-case hex and dashes).
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
        )
    )]
    pub batch_id: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub agent_id: String,
    /// Wall-clock time the batch was sent (RFC 3339).
    pub sent_at: Timestamp,
    #[serde(default)]
    pub reports: Vec<StreamReport>,
    #[serde(default)]
    pub heartbeats: Vec<Heartbeat>,
    /// Call records (absent from batches of agents that predate them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<CallRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stream keys of DESIGN.md's `analyze --format json` contract, in its order.
    const DESIGN_STREAM_KEYS: [&str; 26] = [
        "src",
        "dst",
        "ssrc",
        "payload_type",
        "codec",
        "clock_rate",
        "call_id",
        "first_seen",
        "last_seen",
        "packets",
        "expected",
        "lost",
        "duplicates",
        "reordered",
        "jitter_ms",
        "max_jitter_ms",
        "mean_jitter_ms",
        "max_delta_ms",
        "burst_ratio",
        "jb_discarded",
        "effective_loss_pct",
        "rtt_ms",
        "r_factor",
        "mos",
        "loss_bursts",
        "max_loss_burst",
    ];

    fn sample() -> StreamSummary {
        StreamSummary {
            src: "192.0.2.10:40000".into(),
            dst: "198.51.100.20:50000".into(),
            ssrc: "0x1a2b3c4d".into(),
            payload_type: 0,
            codec: "PCMU".into(),
            clock_rate: Some(8000),
            call_id: None,
            first_seen: Timestamp::from_ns(1_795_428_000_000_000_000),
            last_seen: Timestamp::from_ns(1_795_428_030_000_000_000),
            packets: 1500,
            expected: 1500,
            lost: 0,
            duplicates: 0,
            reordered: 0,
            jitter_ms: Some(0.12),
            max_jitter_ms: Some(0.5),
            mean_jitter_ms: Some(0.1),
            max_delta_ms: 20.4,
            burst_ratio: 1.0,
            jb_discarded: 0,
            effective_loss_pct: 0.0,
            rtt_ms: None,
            r_factor: Some(93.2),
            mos: Some(4.41),
            loss_bursts: 0,
            max_loss_burst: 0,
            lost_rfc3550: 0,
            delay_ms: Some(100.125),
            delay_source: "assumed".into(),
            clock_source: "static".into(),
            detection: "sdp".into(),
            jitter_buffer: "fixed:60".into(),
            ie: Some(0.0),
            bpl: Some(25.1),
            flags: vec![],
            media: "audio".into(),
            srtp: false,
            clock_inference: None,
        }
    }

    #[test]
    fn stream_objects_of_older_agents_read_as_clear_audio() {
        let mut v = serde_json::to_value(sample()).expect("serialize");
        let object = v.as_object_mut().expect("object");
        assert_eq!(object.remove("media"), Some(serde_json::json!("audio")));
        assert_eq!(object.remove("srtp"), Some(serde_json::json!(false)));
        let old: StreamSummary = serde_json::from_value(v).expect("older document");
        assert_eq!(old, sample());
        let mut video = sample();
        video.media = "video".into();
        video.srtp = true;
        let text = serde_json::to_string(&video).expect("serialize");
        assert!(text.contains("\"media\":\"video\"") && text.contains("\"srtp\":true"));
        assert_eq!(
            serde_json::from_str::<StreamSummary>(&text).expect("parse"),
            video
        );
    }

    #[test]
    fn stream_keys_follow_the_design_contract_in_order() {
        let v = serde_json::to_value(sample()).expect("serialize");
        let text = serde_json::to_string(&sample()).expect("serialize");
        let mut last = 0;
        for key in &DESIGN_STREAM_KEYS[..24] {
            assert!(v.get(*key).is_some(), "missing {key}");
            let pos = text.find(&format!("\"{key}\":")).expect("key in text");
            assert!(pos >= last, "{key} out of DESIGN.md order");
            last = pos;
        }
        assert_eq!(v["ssrc"], "0x1a2b3c4d");
        assert!(v["rtt_ms"].is_null() && v["call_id"].is_null());
    }

    #[test]
    fn analyze_document_round_trips() {
        let doc = AnalyzeOutput {
            files: vec![FileSummary {
                path: "x.pcap".into(),
                packets: 3,
                bytes: 600,
                skipped: Skipped {
                    non_udp: 1,
                    truncated: 0,
                    fragments: 2,
                    malformed: 0,
                },
                ip_reassembly: IpReassembly {
                    reassembled: 1,
                    ..IpReassembly::default()
                },
                truncated_at: None,
                warnings: vec![],
                sip_tcp: SipTcp {
                    segments: 4,
                    messages: 3,
                    ..SipTcp::default()
                },
            }],
            streams: vec![sample()],
            calls: vec![CallSummary {
                call_id: "c".into(),
                from: Some("a".into()),
                to: None,
                streams: vec![0],
                setup: None,
                answer: None,
                end: None,
                status: Some(200),
                ..CallSummary::default()
            }],
            analysis: Some(AnalysisSettings {
                jitter_buffer: "fixed:60".into(),
                resync_after_late: 3,
                assumed_one_way_ms: 20.0,
            }),
            dialogs: Some(DialogStats {
                calls: 1,
                open: 1,
                retransmissions: 2,
                ..DialogStats::default()
            }),
        };
        let text = serde_json::to_string(&doc).expect("serialize");
        assert!(!text.contains("truncated_at"), "absent cut is omitted");
        assert!(
            text.contains(r#""ip_reassembly":{"reassembled":1,"#),
            "{text}"
        );
        assert!(text.contains(r#""resync_after_late":3"#), "{text}");
        assert!(
            text.contains(r#""dialogs":{"calls":1,"open":1,"evicted":0,"#),
            "{text}"
        );
        let back: AnalyzeOutput = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, doc);
        // A document from an agent before `analysis` still parses.
        let old = text
            .split_once(r#","analysis""#)
            .map(|(head, _)| format!("{head}}}"))
            .expect("analysis last");
        let back: AnalyzeOutput = serde_json::from_str(&old).expect("old document parses");
        assert_eq!(back.analysis, None);
        assert_eq!(
            back.dialogs, None,
            "a document before `dialogs` still parses"
        );
    }

    fn call_record() -> CallRecord {
        CallRecord {
            agent_id: "fra-media-1".into(),
            call_key: "00000000000000c1".into(),
            call: CallSummary {
                call_id: "anon:0123456789abcdef".into(),
                status: Some(200),
                setup: Some(Timestamp::from_ns(1_795_428_000_000_000_000)),
                end_cause: Some("bye".into()),
                ended_by: Some("callee".into()),
                reason_cause: Some(16),
                duration_ms: Some(10_000),
                media: vec![CallMedia {
                    stream_id: "00000000000000a1".into(),
                    direction: "caller_to_callee".into(),
                    codec: "PCMU".into(),
                    mos: Some(4.2),
                }],
                problems: vec![MediaProblem {
                    kind: "rtp_stopped".into(),
                    direction: "callee_to_caller".into(),
                    start: Timestamp::from_ns(1_795_428_020_000_000_000),
                }],
                ..CallSummary::default()
            },
        }
    }

    #[test]
    fn call_records_are_flat_tagged_lines_with_a_stable_id() {
        let record = AgentRecord::Call(call_record());
        let line = serde_json::to_string(&record).expect("serialize");
        // One flat object: the call object's fields beside the agent and the key.
        assert!(
            line.starts_with(r#"{"type":"call","agent_id":"fra-media-1","call_key":"00000000000000c1","call_id":"anon:"#),
            "{line}"
        );
        assert!(line.contains(r#""reason_cause":16"#), "{line}");
        assert_eq!(
            serde_json::from_str::<AgentRecord>(&line).expect("parse"),
            record
        );
        assert_eq!(record.record_id(), "fra-media-1/call/00000000000000c1");
    }

    #[test]
    fn call_objects_and_batches_of_older_agents_still_parse() {
        // A call object as agents wrote it before call records.
        let old = r#"{"call_id":"c","from":"a","to":null,"streams":[0],"setup":null,"end":null}"#;
        let call: CallSummary = serde_json::from_str(old).expect("older call object");
        assert_eq!(
            (
                call.call_id.as_str(),
                call.streams.as_slice(),
                call.problems.len(),
                call.forks
            ),
            ("c", &[0usize][..], 0, 0)
        );
        assert_eq!(
            call.bye_response, None,
            "older agents sent no BYE response time"
        );
        // Absent when unknown (documents of calls without one keep their bytes), a timestamp
        // when known, read back the same.
        let text = serde_json::to_string(&call).expect("serialize");
        assert!(!text.contains("bye_response"), "{text}");
        let answered = CallSummary {
            bye_response: Some(Timestamp::from_ns(1_795_000_000_040_000_000)),
            ..call
        };
        let text = serde_json::to_string(&answered).expect("serialize");
        assert!(
            text.ends_with(r#""bye_response":"2026-11-18T11:06:40.040000Z"}"#),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<CallSummary>(&text).expect("parse"),
            answered
        );
        // A batch without `calls`, and one with.
        let mut batch = Batch {
            schema: SCHEMA_VERSION,
            batch_id: "00000000-0000-4000-8000-000000000001".into(),
            agent_id: "fra-media-1".into(),
            sent_at: Timestamp::from_ns(0),
            reports: vec![],
            heartbeats: vec![],
            calls: vec![],
        };
        let text = serde_json::to_string(&batch).expect("serialize");
        assert!(!text.contains("calls"), "empty calls are omitted: {text}");
        assert_eq!(serde_json::from_str::<Batch>(&text).expect("parse"), batch);
        batch.calls.push(call_record());
        let text = serde_json::to_string(&batch).expect("serialize");
        assert_eq!(serde_json::from_str::<Batch>(&text).expect("parse"), batch);
    }
}
