//! From decoded datagrams to RTP streams: SIP/SDP learning, the flow table, stream detection
//! (announced or heuristic with probation), RTCP round-trip sampling, and per-stream meters.
//!
//! `Analyzer` is a sans-IO core: it is fed frames with their capture timestamps and never reads
//! a clock, so a live capture and a replay of the same packets give identical results. The
//! per-RTP-packet path allocates nothing in steady state and never touches payload bytes beyond
//! the RTP header. It finds a packet's stream first by guessing the stream that followed the
//! previous packet's stream last time (periodic senders keep their order; checked against the
//! key), then through the index: the guess saves the index's cache miss with many streams.

pub mod detect;
pub mod privacy;
pub mod registry;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use hashbrown::{HashMap, HashTable};

use crate::calls::dialog::{Call, DialogCounters};
use crate::calls::{CallTracker, CallsConfig, MediaThresholds, StreamFacts, media};
use crate::capture::hint;
use crate::decode::frame::reassembled_datagram;
use crate::decode::payload::{Payload, RtcpForm, decode_payload};
use crate::decode::rtcp::{Compound, RtcpPacket};
use crate::decode::rtp::RtpPacket;
use crate::decode::sdp::{MediaType, SessionDescription, TransportProtocol};
use crate::decode::sip::SipMessage;
use crate::decode::srtcp::looks_like_srtcp;
use crate::decode::{Datagram, Decoded, Fragment, Skip, decode_frame};
use crate::quality::codec::{self, CodecInfo, MediaRole};
use crate::quality::jbuf::{JitterBufferModel, JitterBufferSettings};
use crate::quality::rtt::RttEstimator;
use crate::quality::stream::{
    ClockSource, MeterOutcome, PacketRole, QualitySummary, RtpMeta, Silence, StreamMeter,
    SummaryInputs, WindowFigures, WindowState,
};
use crate::reassembly::ip::{self as ip_reassembly, Reassembler};
use crate::reassembly::tcp::{TcpConfig, TcpCounters, TcpReassembler};
use detect::{Candidate, CandidateState, ClockInference};
use registry::{MediaProfile, RtpMapEntry, SdpRegistry, SharedRegistry};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Identity of an RTP stream: the 5-tuple (UDP implied) plus SSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ssrc: u32,
}

/// How a stream was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// Its address was announced by SIP/SDP.
    Sdp,
    /// Found by the RTP heuristic after probation.
    Heuristic,
}

impl Detection {
    pub fn as_str(self) -> &'static str {
        match self {
            Detection::Sdp => "sdp",
            Detection::Heuristic => "heuristic",
        }
    }
}

/// Settings of the analysis (defaults follow metrics-spec's project decisions).
#[derive(Debug, Clone)]
pub struct AnalyzerConfig {
    pub jitter_buffer: JitterBufferModel,
    /// The buffer re-anchors on this many consecutive late packets (metrics-spec §9.2a,
    /// default 3); 0 = never. Checked by `JitterBufferSettings::resync_after_late`.
    pub resync_after_late: u16,
    /// One-way network delay assumed when no RTCP round trip is measured.
    pub assumed_one_way_ms: f64,
    /// Most streams tracked at once; beyond it new streams are refused and counted.
    pub max_streams: usize,
    /// Most unconfirmed candidates at once.
    pub max_candidates: usize,
    /// A candidate not confirmed within this time is discarded (metrics-spec §1.4: 2 s).
    pub candidate_timeout_ns: i64,
    /// Most SDP media endpoints remembered.
    pub max_announcements: usize,
    /// Call tracking: the dialog engine's bounds (most open calls) and timeouts, local
    /// networks, media problems' thresholds.
    pub calls: CallsConfig,
    /// Interval reports every this many ns of packet time, on boundaries aligned to multiples of
    /// it (live capture); `None` for offline analysis (whole-stream results only).
    pub report_interval_ns: Option<i64>,
    /// With interval reports: a stream with no packet for this long is closed (final report).
    pub idle_timeout_ns: i64,
    /// `(index, count)`: measure only the RTP flows whose (src, dst) hash falls in this shard
    /// (parallel offline analysis). SIP and RTCP are processed by every shard, so each has the
    /// whole SDP registry and every round-trip sample.
    pub shard: Option<(u32, u32)>,
    /// Limits of IP fragment reassembly (per datagram, count, memory, packet-time timeout).
    pub reassembly: ip_reassembly::Config,
    /// SIP over TCP (and WebSocket): the SIP ports and the reassembly's bounds.
    pub tcp: TcpConfig,
}

impl AnalyzerConfig {
    /// The emulated buffer every stream gets: the model and its re-synchronisation.
    pub fn jitter_buffer_settings(&self) -> JitterBufferSettings {
        JitterBufferSettings {
            model: self.jitter_buffer,
            resync_after_late: self.resync_after_late,
        }
    }
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            jitter_buffer: JitterBufferModel::default(),
            resync_after_late: JitterBufferSettings::DEFAULT_RESYNC_AFTER_LATE,
            assumed_one_way_ms: 20.0,
            max_streams: 1_000_000,
            max_candidates: 200_000,
            candidate_timeout_ns: 2_000_000_000,
            max_announcements: 200_000,
            calls: CallsConfig::default(),
            report_interval_ns: None,
            idle_timeout_ns: 30_000_000_000,
            shard: None,
            reassembly: ip_reassembly::Config::default(),
            tcp: TcpConfig::default(),
        }
    }
}

/// Counters of everything the analyzer saw, for the `files` summary and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub frames: u64,
    pub bytes: u64,
    pub skipped: voqa_wire::Skipped,
    pub udp: u64,
    pub rtp: u64,
    pub rtcp: u64,
    pub rtcp_invalid: u64,
    /// SRTCP datagrams (RTCP of media announced as SRTP, or with an SRTCP trailer): encrypted
    /// after their first 8 bytes, so never read for round-trip time.
    pub srtcp: u64,
    pub sip: u64,
    pub sip_invalid: u64,
    /// RTP-range datagrams that failed RTP validation on a flow that is a known stream or an announced endpoint.
    pub rtp_malformed: u64,
    /// Streams refused because the flow table was full.
    pub streams_refused: u64,
    /// Candidates dropped unconfirmed (timeout or table full).
    pub candidates_dropped: u64,
    /// Heuristic streams dropped at the end because most of their packets did not follow a sequence.
    pub streams_rejected: u64,
    /// Streams closed to make room when the flow table was full.
    pub streams_evicted: u64,
    /// What became of the IP fragments (`skipped.fragments` counts their frames).
    pub ip_reassembly: voqa_wire::IpReassembly,
    /// SIP over TCP and WebSocket: segments, messages, resynchronisations, evictions.
    pub sip_tcp: TcpCounters,
}

/// One stream under measurement.
///
/// `repr(C)` and the field order are for the cache: with tens of thousands of streams the
/// records do not stay in cache, and each RTP packet pays a miss for every line of its record
/// it touches. What every packet reads or writes (the key it is matched by, the main payload
/// type, the lookup hint, then the meter's hot part, see [`StreamMeter`]) comes first and
/// is contiguous; what only stream start, window closes and the end read comes last. What only
/// interval reports need is not here but in a [`StreamWindow`] beside it.
#[derive(Debug)]
#[repr(C)]
struct ActiveStream {
    key: StreamKey,
    /// Slot of the stream whose RTP packet came right after this stream's last one: the guess
    /// for the next lookup (see [`Analyzer::predicted`]). Stale after slots move; only a guess.
    next_hint: u32,
    /// Slot of the stream whose packet came two after this stream's last one: the guess two
    /// packets ahead, prefetched without waiting for the first guess's record.
    next2_hint: u32,
    payload_type: u8,
    /// The main payload type is a real audio codec (not comfort noise or an event).
    audio_resolved: bool,
    detection: Detection,
    clock_source: ClockSource,
    meter: StreamMeter,
    /// A BYE of the stream's call was seen: it closes at the next report boundary.
    bye_ns: Option<i64>,
    codec_name: CodecName,
    /// How the clock of an unsignalled payload type was inferred (or why it was not). Boxed:
    /// few streams need it, and the per-stream state must stay within 1 KiB.
    clock_inference: Option<Box<ClockInference>>,
    /// The SDP that announced the stream; its `call_id` is the stream's call (not kept twice:
    /// the per-stream state must stay within 1 KiB).
    profile: Option<Arc<MediaProfile>>,
}

impl ActiveStream {
    /// Bytes from the start of the record that an RTP packet may read or write: up to the end
    /// of the meter's hot part (see [`StreamMeter::HOT_BYTES`]).
    const HOT_BYTES: usize = std::mem::offset_of!(ActiveStream, meter) + StreamMeter::HOT_BYTES;

    /// Call-ID of the SIP dialog whose SDP announced the stream.
    fn call_id(&self) -> Option<&Arc<str>> {
        self.profile.as_ref().and_then(|p| p.call_id.as_ref())
    }
}

/// The current report window of one stream (interval reports only), in
/// [`Analyzer::windows`] at the slot of its stream in [`Analyzer::active`].
///
/// Not part of [`ActiveStream`]: offline analysis reports no windows, and with this in every
/// record a run with 50,000 streams touched 18 MB more (4,300 page faults) and one more cache
/// line per packet, for figures it never reads.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct StreamWindow {
    /// The meter's window state (marks, maxima, jitter bins), first: every packet updates it.
    state: WindowState,
    /// Start of the current report window (packet time).
    start_ns: i64,
    /// [`Analyzer::drops_noted`] when the current report window opened: the window's
    /// `capture_drops` are the drops noted since (see [`WindowReport::capture_drops`]).
    drops_mark: u64,
}

/// A finished stream with its identity and figures.
#[derive(Debug, Clone)]
pub struct StreamResult {
    pub key: StreamKey,
    pub payload_type: u8,
    /// The codec table's static name, borrowed (no allocation per stream for known codecs), or
    /// an SDP encoding name, owned.
    pub codec: Cow<'static, str>,
    pub clock_hz: Option<u32>,
    pub clock_source: ClockSource,
    /// Set when the clock had to be inferred: the method, its confidence and evidence.
    pub clock_inference: Option<ClockInference>,
    pub detection: Detection,
    /// Call-ID of the SIP dialog that announced the stream (as captured).
    pub call_id: Option<Arc<str>>,
    pub first_ns: i64,
    pub last_ns: i64,
    pub codec_info: CodecInfo,
    pub summary: QualitySummary,
    /// Announced as SRTP by SDP (`RTP/SAVP*`); measured from its clear RTP headers all the same.
    pub srtp: bool,
    /// Where the stream fell silent (for its call's media problems).
    pub silence: Silence,
}

/// Why a stream's last report was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The SIP dialog that announced it ended.
    Bye,
    /// No packet for the idle timeout.
    Idle,
    /// The flow table was full and this stream was the least recently active.
    Evicted,
    /// Its sequence restarted; the new sequence continues as a new stream.
    Restart,
    /// The agent stopped (or the capture ended).
    Shutdown,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Bye => "bye",
            EndReason::Idle => "idle",
            EndReason::Evicted => "evicted",
            EndReason::Restart => "restart",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// One report window of one stream (interval reports, live capture).
#[derive(Debug, Clone)]
pub struct WindowReport {
    /// Identity and, on the final report, whole-stream totals (`summary`).
    pub stream: StreamResult,
    pub window_start_ns: i64,
    pub window_end_ns: i64,
    pub figures: WindowFigures,
    /// Set on the stream's last report.
    pub end: Option<EndReason>,
    /// Kernel drops the capture worker noted while this window of this stream was open: the
    /// drops of the one socket that feeds this worker, read from the kernel while the window
    /// was the one being analysed. Every stream open for the whole window carries the same
    /// number (a property of the capture, not of the stream: never sum it across streams); a
    /// stream that started or ended inside the window carries only the drops noted while it
    /// existed, so the successive windows of one flow (restarts included) never claim a drop
    /// twice.
    pub capture_drops: u64,
}

/// Everything the analysis produced.
#[derive(Debug)]
pub struct AnalysisResult {
    pub streams: Vec<StreamResult>,
    /// Every call seen (up to the call limit), in order of first appearance; calls still up
    /// when the capture ended have no end.
    pub calls: Vec<Call>,
    pub call_counters: DialogCounters,
    /// Calls forgotten beyond the call limit (offline analysis keeps at most that many).
    pub calls_forgotten: u64,
    /// The thresholds media problems are judged with.
    pub call_thresholds: MediaThresholds,
    /// Packet time of the capture's end (stands in for the end of calls still up).
    pub capture_end_ns: i64,
    pub counters: Counters,
    /// The analyzers' emptied tables, freed with the result.
    pub leftovers: Leftovers,
}

/// What is left of analyzers after [`Analyzer::finish`]: their tables (the SDP registry with an
/// announcement per media address, the dialog table, the flow index), freed when this is
/// dropped. Dropping them inside `finish` freed hundreds of thousands of small blocks one by
/// one, 5 % of a SIP-heavy `analyze`; kept here, they go with the result, which the `analyze`
/// binary does not free at all before it exits (it forgets its result).
#[derive(Default)]
pub struct Leftovers(Vec<Analyzer>);

impl Leftovers {
    /// Takes over the leftovers of another result (the shards of a parallel analysis).
    pub fn absorb(&mut self, other: Leftovers) {
        self.0.extend(other.0);
    }
}

impl std::fmt::Debug for Leftovers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Leftovers({} analyzers)", self.0.len())
    }
}

/// The offline/live analysis core.
#[derive(Debug)]
pub struct Analyzer {
    cfg: AnalyzerConfig,
    /// Flow table: slots of `active`, found by a precomputed hash of the stream key. Buckets
    /// hold only a slot and 32 bits of its key's hash ([`IndexEntry`]), so the table stays
    /// small with many streams and grows without reading the streams' records.
    index: HashTable<IndexEntry>,
    hasher: foldhash::fast::RandomState,
    active: Vec<ActiveStream>,
    /// With interval reports: the current window of each stream of `active`, slot for slot
    /// (pushed and swap-removed with it). Empty offline (see [`StreamWindow`]).
    windows: Vec<StreamWindow>,
    closed: Vec<StreamResult>,
    candidates: FastMap<StreamKey, Candidate>,
    /// With interval reports (live): the streams of each call by Call-ID, so that a BYE marks
    /// its call's streams without scanning every stream (which made live cost quadratic in the
    /// number of calls). Keys leave with their streams: bounded by the streams tracked.
    streams_by_call: FastMap<Arc<str>, Vec<StreamKey>>,
    registry: SharedRegistry,
    calls: CallTracker,
    /// Live (interval reports): retired calls with their problems judged, for the output.
    ended_calls: Vec<Call>,
    /// Offline: retired calls kept for the document (at most the call limit; older ones are
    /// forgotten, counted in `calls_forgotten`).
    finished_calls: std::collections::VecDeque<Call>,
    calls_forgotten: u64,
    rtt: RttEstimator,
    counters: Counters,
    last_sweep_ns: i64,
    /// Next report boundary (packet time), when interval reports are on.
    next_boundary_ns: Option<i64>,
    /// Latest packet time seen.
    now_ns: i64,
    reports: Vec<WindowReport>,
    /// Kernel drops noted by the capture worker since the analyzer started (cumulative; each
    /// stream window takes the difference to its own mark).
    drops_noted: u64,
    /// IP fragments waiting for the rest of their datagram.
    fragments: Reassembler,
    /// SIP over TCP reassembly (taken out while it hands messages to `on_sip`).
    tcp: TcpReassembler,
    /// Slot fed by the last RTP packet (`u32::MAX`: none yet), whose `next_hint` it updates.
    last_fed: u32,
    /// Slot fed by the RTP packet before that one, whose `next2_hint` it updates.
    fed_before_last: u32,
    /// The `a=rtpmap` encoding names seen, shared by every announcement that names them.
    encodings: registry::EncodingNames,
    /// The payload type a stream start resolved last and what from (see [`ResolveMemo`]).
    resolved_last: ResolveMemo,
}

impl Analyzer {
    pub fn new(cfg: AnalyzerConfig) -> Self {
        let registry = Arc::new(std::sync::RwLock::new(SdpRegistry::new(
            cfg.max_announcements,
        )));
        Self::with_registry(cfg, registry)
    }

    /// An analyzer that shares its SDP registry with others (one per capture worker).
    pub fn with_registry(cfg: AnalyzerConfig, registry: SharedRegistry) -> Self {
        // The stream vector is reserved, not touched: pages count in RSS only once streams use
        // them, and it never pays the 2x slack of growing by doubling. The index is NOT
        // reserved: a table sized for the maximum spreads few streams over many cache lines.
        // Offline analysis grows as needed (it is not memory-bound and starts many Analyzers).
        let reserve = if cfg.report_interval_ns.is_some() {
            cfg.max_streams.clamp(1, 1 << 17)
        } else {
            0
        };
        // Reserved the same way, only where windows are reported; empty (no allocation) offline.
        let windows = Vec::with_capacity(reserve);
        let cfg_reassembly = cfg.reassembly;
        Analyzer {
            registry,
            tcp: TcpReassembler::new(cfg.tcp.clone()),
            calls: CallTracker::new(cfg.calls.dialog.clone()),
            ended_calls: Vec::new(),
            finished_calls: std::collections::VecDeque::new(),
            calls_forgotten: 0,
            cfg,
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            active: Vec::with_capacity(reserve),
            windows,
            closed: Vec::new(),
            candidates: FastMap::default(),
            streams_by_call: FastMap::default(),
            rtt: RttEstimator::default(),
            counters: Counters::default(),
            last_sweep_ns: i64::MIN,
            next_boundary_ns: None,
            now_ns: i64::MIN,
            reports: Vec::new(),
            drops_noted: 0,
            fragments: Reassembler::new(cfg_reassembly),
            last_fed: u32::MAX,
            fed_before_last: u32::MAX,
            encodings: registry::EncodingNames::default(),
            resolved_last: ResolveMemo::default(),
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The SIP-over-TCP reassembly (its bounds and current use).
    pub fn tcp_reassembly(&self) -> &TcpReassembler {
        &self.tcp
    }

    /// Streams currently tracked.
    pub fn active_streams(&self) -> usize {
        self.active.len()
    }

    /// Feeds one captured frame. Frames that are neither UDP nor TCP of a SIP connection are
    /// counted by reason and skipped; IP fragments are counted and reassembled, and a
    /// reassembled UDP datagram is fed on.
    pub fn on_frame(&mut self, ts_ns: i64, linktype: u32, data: &[u8], wire_len: u32) {
        self.advance_to(ts_ns);
        self.counters.frames += 1;
        self.counters.bytes += data.len() as u64;
        match decode_frame(linktype, data, wire_len) {
            Ok(Decoded::Udp(dg)) => self.on_datagram(ts_ns, &dg),
            Ok(Decoded::Fragment(fragment)) => {
                self.counters.skipped.fragments += 1;
                self.on_fragment(ts_ns, &fragment);
            }
            Ok(Decoded::Tcp(segment)) => {
                // The reassembler is moved out (no allocation: its table and buffers move with
                // it) so that it can hand messages straight to `on_sip`, which needs `self`.
                let mut tcp = std::mem::replace(&mut self.tcp, TcpReassembler::placeholder());
                let (src, dst) = (segment.src, segment.dst);
                let sip = tcp.on_segment(ts_ns, &segment, |message| {
                    self.on_sip(ts_ns, src, dst, message);
                });
                self.counters.sip_tcp = *tcp.counters();
                self.tcp = tcp;
                if !sip {
                    self.counters.skipped.non_udp += 1;
                }
            }
            Err(Skip::NonUdp) => self.counters.skipped.non_udp += 1,
            Err(Skip::Truncated) => self.counters.skipped.truncated += 1,
            Err(Skip::Fragment) => self.counters.skipped.fragments += 1,
            Err(Skip::Malformed) => self.counters.skipped.malformed += 1,
        }
    }

    /// Adds a fragment to its datagram; the datagram it completes is decoded and, if UDP, fed
    /// to [`Analyzer::on_datagram`] as if it had arrived whole with its last fragment.
    #[cold]
    fn on_fragment(&mut self, ts_ns: i64, fragment: &Fragment<'_>) {
        let Some(done) = self
            .fragments
            .insert(ts_ns, fragment, &mut self.counters.ip_reassembly)
        else {
            return;
        };
        let key = &done.key;
        match reassembled_datagram(key.src, key.dst, key.protocol, key.vlan, &done.data) {
            Ok(dg) => self.on_datagram(ts_ns, &dg),
            Err(Skip::Malformed) => self.counters.ip_reassembly.malformed += 1,
            Err(_) => self.counters.ip_reassembly.not_udp += 1,
        }
        self.fragments.recycle(done.data);
    }

    /// Feeds one UDP datagram: its payload is decoded once ([`decode_payload`]) and the typed
    /// value dispatched, so no payload is sniffed and then parsed again.
    #[inline]
    pub fn on_datagram(&mut self, ts_ns: i64, dg: &Datagram<'_>) {
        self.counters.udp += 1;
        match decode_payload(dg.payload) {
            Payload::Rtp(rtp) => self.on_rtp(ts_ns, dg, Some(&rtp)),
            Payload::RtpMalformed(_) => self.on_rtp(ts_ns, dg, None),
            Payload::Rtcp(compound, form) => self.on_rtcp(ts_ns, dg, Some((compound, form))),
            Payload::RtcpInvalid(_) => self.on_rtcp(ts_ns, dg, None),
            Payload::Sip(msg) => self.on_sip_message(ts_ns, dg.src, dg.dst, msg),
            Payload::Other => {}
        }
    }

    /// An RTP packet (`None`: RTP by its first octet, but malformed).
    #[inline]
    fn on_rtp(&mut self, ts_ns: i64, dg: &Datagram<'_>, rtp: Option<&RtpPacket<'_>>) {
        // One shard of one (`analyze --threads 1`) takes every flow: no hash per packet.
        if let Some((index, count)) = self.cfg.shard
            && count > 1
            && flow_shard(&dg.src, &dg.dst, count) != index
        {
            return;
        }
        let Some(rtp) = rtp else {
            if self.is_media_flow(dg) {
                self.counters.rtp_malformed += 1;
            }
            return;
        };
        let key = StreamKey {
            src: dg.src,
            dst: dg.dst,
            ssrc: rtp.ssrc(),
        };
        let meta = RtpMeta {
            ts_ns,
            seq: rtp.sequence_number(),
            rtp_ts: rtp.timestamp(),
            pt: rtp.payload_type(),
            marker: rtp.marker(),
        };
        if let Some(slot) = self.predicted(&key).or_else(|| self.lookup(&key)) {
            self.counters.rtp += 1;
            self.note_fed(slot);
            self.feed(slot, &meta);
            self.prefetch_predicted(slot);
            return;
        }
        self.on_unknown_rtp(key, meta);
    }

    /// The packet being handled went to `slot`: the stream fed before it learns that `slot`
    /// followed it (the next guess of [`Analyzer::predicted`]).
    #[inline]
    fn note_fed(&mut self, slot: usize) {
        if let Some(prev) = self.active.get_mut(self.last_fed as usize) {
            prev.next_hint = slot as u32;
        }
        if let Some(before) = self.active.get_mut(self.fed_before_last as usize) {
            before.next2_hint = slot as u32;
        }
        self.fed_before_last = self.last_fed;
        self.last_fed = slot as u32;
    }

    /// Starts loading the record of the stream predicted to come next (the one that followed
    /// `slot`'s last time, see [`Analyzer::predicted`]) while the next frame is read and
    /// decoded, and the record of the stream predicted after that one. With tens of thousands
    /// of streams the records are out of the core's caches, and the packet otherwise waits for
    /// its record's lines (with interval reports, also for its window's). Reading and decoding
    /// one frame is shorter than a load from memory, so one packet ahead hid only part of the
    /// wait; two ahead, the record is requested a whole packet earlier. On the 50k-stream bench
    /// file this took about 4 % off the run (interleaved A/B, 9 pairs of 10), and nothing off
    /// the 10k-stream one, whose records stay closer to the core. The second guess is kept in
    /// this stream's own record (`next2_hint`), not read from the first guessed record: that
    /// record, requested only one packet ago, was often still on its way, and the read waited
    /// for it (perf: the most sampled instruction of the packet path on the 50k file; keeping
    /// the guess here took about 3 % off that run). Three ahead was slower (more lines in
    /// flight than the core tracks). Only hints: a wrong guess loads lines that are not used.
    #[inline]
    fn prefetch_predicted(&self, slot: usize) {
        let Some((next, after)) = self
            .active
            .get(slot)
            .map(|a| (a.next_hint as usize, a.next2_hint as usize))
        else {
            return;
        };
        // One line more than the hot bytes: a record need not start a line.
        const LINES: usize = ActiveStream::HOT_BYTES / hint::LINE + 1;
        if let Some(record) = self.active.get(next) {
            hint::prefetch_lines(std::ptr::from_ref(record).cast::<u8>(), LINES);
        }
        if let Some(record) = self.active.get(after) {
            hint::prefetch_lines(std::ptr::from_ref(record).cast::<u8>(), LINES);
        }
        // With interval reports the window state is fed too (offline there is none).
        if let Some(window) = self.windows.get(next) {
            const LINES: usize = std::mem::size_of::<WindowState>() / hint::LINE + 1;
            hint::prefetch_lines(std::ptr::from_ref(window).cast::<u8>(), LINES);
        }
    }

    /// True when the datagram goes to or comes from an endpoint announced by SDP.
    fn is_media_flow(&self, dg: &Datagram<'_>) -> bool {
        self.announced(&dg.dst, &dg.src).is_some()
    }

    /// The SDP profile announced for `dst` (the receiver), else for `src` (symmetric RTP).
    fn announced(&self, dst: &SocketAddr, src: &SocketAddr) -> Option<Arc<MediaProfile>> {
        // A poisoned lock only means another worker panicked mid-update; the map is still usable.
        let reg = self
            .registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        reg.lookup(dst).or_else(|| reg.lookup(src)).cloned()
    }

    fn is_srtcp_endpoint(&self, a: &SocketAddr, b: &SocketAddr) -> bool {
        let reg = self
            .registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        reg.is_srtcp(a) || reg.is_srtcp(b)
    }

    fn is_rtcp_endpoint(&self, a: &SocketAddr, b: &SocketAddr) -> bool {
        let reg = self
            .registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        reg.is_rtcp(a) || reg.is_rtcp(b)
    }

    fn on_unknown_rtp(&mut self, key: StreamKey, meta: RtpMeta) {
        let profile = self.announced(&key.dst, &key.src);
        if profile.is_none() && (key.src.port() < 1024 || key.dst.port() < 1024) {
            // Well-known service ports (DNS, NTP, ...) never carry unannounced RTP.
            return;
        }
        let state = match self.candidates.get_mut(&key) {
            Some(c) => c.push(meta),
            None => {
                if self.candidates.len() >= self.cfg.max_candidates {
                    self.counters.candidates_dropped += 1;
                    return;
                }
                let resolved = self.resolved_last.resolve(meta.pt, profile.as_deref());
                let c = Candidate::new(meta, profile.is_some(), resolved.1.is_none());
                let state = c.state();
                if let CandidateState::Ready { inference } = state {
                    // Announced with a known clock: a stream from its first packet, without a
                    // round trip through the candidate table. Its one packet's payload type was
                    // just resolved: the stream start does not resolve it again.
                    let started = self.start_stream_resolved(
                        key,
                        &c,
                        profile,
                        inference,
                        Some((meta.pt, resolved)),
                    );
                    self.started_with_this_packet(started);
                    return;
                }
                self.candidates.insert(key, c);
                state
            }
        };
        if let CandidateState::Ready { inference } = state
            && let Some(c) = self.candidates.remove(&key)
        {
            let started = self.start_stream_resolved(key, &c, profile, inference, None);
            self.started_with_this_packet(started);
        }
    }

    /// A stream just started whose last packet is the one being handled: it is the stream fed
    /// last, as if found in the table. Without this the stream fed before kept its old
    /// successor as its guess, and the new stream's next packet was guessed from that one:
    /// two guesses missed (each an index lookup) before the new stream joined the order,
    /// where now one does (its own successor is not known yet).
    fn started_with_this_packet(&mut self, slot: Option<usize>) {
        if let Some(slot) = slot {
            self.note_fed(slot);
        }
    }

    fn start_stream(
        &mut self,
        key: StreamKey,
        candidate: &Candidate,
        profile: Option<Arc<MediaProfile>>,
        inference: Option<ClockInference>,
    ) {
        self.start_stream_resolved(key, candidate, profile, inference, None);
    }

    /// [`Analyzer::start_stream`] with a payload type already resolved by the caller (`seed`),
    /// which the choice of the main payload type reuses instead of resolving it again. Returns
    /// the new stream's slot (`None`: no stream started).
    fn start_stream_resolved(
        &mut self,
        key: StreamKey,
        candidate: &Candidate,
        profile: Option<Arc<MediaProfile>>,
        inference: Option<ClockInference>,
        seed: Option<(u8, Resolved)>,
    ) -> Option<usize> {
        if self.active.len() >= self.cfg.max_streams.max(1) {
            // Full: the least recently active stream makes room (and is reported as evicted).
            let oldest = (0..self.active.len()).min_by_key(|&i| self.active[i].meter.last_ns());
            match oldest {
                Some(slot) => {
                    self.counters.streams_evicted += 1;
                    self.close_slot(slot, EndReason::Evicted, self.now_ns);
                }
                None => {
                    self.counters.streams_refused += 1;
                    return None;
                }
            }
        }
        // The candidate's packets are walked where they are (it does not change here), not
        // collected: that was an allocation per stream.
        let packets = || candidate.replayable();
        let (first, main, (mut info, mut clock, mut source)) =
            main_payload(packets(), profile.as_deref(), seed)?;
        let name = codec_name(main.pt, &info, profile.as_deref());
        // The inference (made for a payload type without a known clock) belongs to the stream
        // only when its main payload type has no known clock either.
        let clock_inference = inference.filter(|_| clock.is_none());
        if clock.is_none()
            && let Some(c) = clock_inference.and_then(|i| i.clock_hz)
        {
            clock = Some(c);
            source = ClockSource::Inferred;
            info = codec::codec_by_name(name.as_str(), c);
            if c == VIDEO_CLOCK_HZ && info.role == MediaRole::Unknown {
                // No speech codec runs a 90 kHz RTP clock (RFC 3551 §5): an unsignalled
                // stream on it is video, counted but never rated with the speech E-model.
                info.role = MediaRole::Video;
            }
        }
        let detection = if profile.is_some() {
            Detection::Sdp
        } else {
            Detection::Heuristic
        };
        let stream = ActiveStream {
            key,
            meter: StreamMeter::new(info, clock, self.cfg.jitter_buffer_settings(), &first),
            payload_type: main.pt,
            codec_name: name,
            clock_source: source,
            clock_inference: clock_inference.map(Box::new),
            detection,
            audio_resolved: measurable(info.role),
            profile,
            bye_ns: None,
            next_hint: u32::MAX,
            next2_hint: u32::MAX,
        };
        if self.cfg.report_interval_ns.is_some()
            && let Some(id) = stream.call_id()
        {
            self.streams_by_call
                .entry(id.clone())
                .or_default()
                .push(key);
        }
        let slot = self.active.len();
        self.active.push(stream);
        if self.cfg.report_interval_ns.is_some() {
            self.windows.push(StreamWindow {
                state: WindowState::default(),
                start_ns: first.ts_ns,
                drops_mark: self.drops_noted,
            });
        }
        let hash = self.key_hash(&key);
        IndexEntry::insert(&mut self.index, slot, hash);
        for p in packets() {
            self.counters.rtp += 1;
            self.feed(slot, p);
        }
        Some(slot)
    }

    #[inline]
    fn feed(&mut self, slot: usize, meta: &RtpMeta) {
        let Some(stream) = self.active.get_mut(slot) else {
            return;
        };
        let role = if meta.pt == stream.payload_type {
            if stream.audio_resolved {
                PacketRole::Audio
            } else {
                PacketRole::SequenceOnly
            }
        } else {
            stream.secondary_role(meta.pt)
        };
        let window = self.windows.get_mut(slot).map(|w| &mut w.state);
        match stream.meter.on_packet(meta, role, window) {
            MeterOutcome::Counted | MeterOutcome::HeldJump => {}
            MeterOutcome::Restart { held } => {
                let key = stream.key;
                let profile = stream.profile.clone();
                self.close_slot(slot, EndReason::Restart, meta.ts_ns);
                // The restarted sequence is a new stream of the same flow, confirmed by the two
                // sequential packets that made the restart.
                let mut c = Candidate::new(held, true, false);
                c.push(*meta);
                self.start_stream(key, &c, profile, None);
            }
        }
    }

    /// Removes a stream from the table: its final report (interval mode) or its result (offline).
    fn close_slot(&mut self, slot: usize, reason: EndReason, end_ns: i64) {
        let Some(last) = self.active.len().checked_sub(1) else {
            return;
        };
        if slot > last {
            return;
        }
        self.unindex(slot);
        let moved_hash = (slot != last).then(|| {
            // The last stream will move into `slot`: take its index entry out first.
            let hash = self.key_hash(&self.active[last].key);
            if let Ok(entry) = self
                .index
                .find_entry(IndexEntry::table_hash(hash), |e| e.slot as usize == last)
            {
                entry.remove();
            }
            hash
        });
        let mut stream = self.active.swap_remove(slot);
        // The window table mirrors `active` (empty offline).
        let window = (slot < self.windows.len()).then(|| self.windows.swap_remove(slot));
        if let Some(id) = stream.call_id()
            && let Some(keys) = self.streams_by_call.get_mut(&**id)
        {
            if let Some(at) = keys.iter().position(|k| *k == stream.key) {
                keys.swap_remove(at);
            }
            if keys.is_empty() {
                self.streams_by_call.remove(&**id);
            }
        }
        if let Some(hash) = moved_hash {
            IndexEntry::insert(&mut self.index, slot, hash);
        }
        stream.meter.finish();
        let inputs = self.inputs_for(&stream);
        let figures = window.map(|mut w| (stream.meter.take_window(&mut w.state, &inputs), w));
        let Some(result) = self.result_of(&stream) else {
            return;
        };
        match figures {
            Some((figures, window)) => {
                if let Some(id) = result.call_id.as_deref() {
                    if let Some(mos) = figures.mos {
                        self.calls.on_window(id, mos, window.start_ns, end_ns);
                    }
                    self.calls.on_stream_closed(id, StreamFacts::of(&result));
                }
                // Only the drops noted while this window was open: a restarted or evicted
                // stream's final window and its successor's windows must not both claim them.
                let capture_drops = self.drops_noted.saturating_sub(window.drops_mark);
                self.reports.push(WindowReport {
                    stream: result,
                    window_start_ns: window.start_ns,
                    window_end_ns: end_ns.max(window.start_ns),
                    figures,
                    end: Some(reason),
                    capture_drops,
                });
            }
            None => self.closed.push(result),
        }
    }

    fn inputs_for(&self, stream: &ActiveStream) -> SummaryInputs {
        SummaryInputs {
            rtt_ms: self.rtt.session_rtt_ms(stream.key.ssrc),
            assumed_one_way_ms: self.cfg.assumed_one_way_ms,
        }
    }

    /// Moves packet time forward to `ts_ns`: emits the interval reports of every boundary
    /// crossed and closes idle streams and streams whose call ended. Live capture also calls it
    /// from its poll loop when no packets arrive, so quiet streams still report and end.
    #[inline]
    pub fn advance_to(&mut self, ts_ns: i64) {
        if ts_ns <= self.now_ns {
            return;
        }
        self.now_ns = ts_ns;
        // Almost every frame: no sweep due and no report boundary to look for (offline
        // analysis has none). Checked inline; the rest is a call made about once a second.
        if ts_ns.saturating_sub(self.last_sweep_ns) < 1_000_000_000
            && self.cfg.report_interval_ns.is_none_or(|i| i <= 0)
        {
            return;
        }
        self.sweep_and_report(ts_ns);
    }

    /// [`Analyzer::advance_to`] once packet time has moved: the 1-second sweep and the
    /// interval reports of every boundary crossed.
    #[inline(never)]
    fn sweep_and_report(&mut self, ts_ns: i64) {
        if ts_ns.saturating_sub(self.last_sweep_ns) >= 1_000_000_000 {
            self.sweep_candidates(ts_ns);
            self.fragments
                .sweep(ts_ns, &mut self.counters.ip_reassembly);
            if self.tcp.flows() > 0 {
                self.tcp.sweep(ts_ns);
                self.counters.sip_tcp = *self.tcp.counters();
            }
            self.sweep_calls(ts_ns);
            self.last_sweep_ns = ts_ns;
        }
        let Some(interval) = self.cfg.report_interval_ns.filter(|i| *i > 0) else {
            return;
        };
        let next = *self
            .next_boundary_ns
            .get_or_insert_with(|| (ts_ns.div_euclid(interval) + 1) * interval);
        if ts_ns < next {
            return;
        }
        let mut boundary = next;
        while boundary <= ts_ns {
            self.report_boundary(boundary);
            boundary += interval;
            if self.active.is_empty() {
                // Nothing to report: jump straight to the boundary after `ts_ns`.
                boundary = (ts_ns.div_euclid(interval) + 1) * interval;
            }
        }
        self.next_boundary_ns = Some(boundary);
    }

    /// The next packet-time instant at which the analyzer has work to do without a new packet
    /// (quinn-proto's `poll_timeout`): the next report boundary while streams are open. Idle
    /// streams and streams whose call ended are closed at report boundaries too, so the
    /// boundary is also the earliest idle expiry. `None` when nothing is pending: no interval
    /// reports (offline analysis) or no open stream. A driver that sees no packet until then
    /// calls [`Analyzer::advance_to`] with (at least) this instant.
    pub fn next_deadline(&self) -> Option<i64> {
        let interval = self.cfg.report_interval_ns.filter(|i| *i > 0)?;
        if self.active.is_empty() {
            return None;
        }
        // Streams only start from a frame, which sets the boundary; the fallback is defensive.
        Some(
            self.next_boundary_ns
                .unwrap_or_else(|| (self.now_ns.div_euclid(interval) + 1) * interval),
        )
    }

    /// The latest packet time seen (or advanced to); `i64::MIN` before the first.
    pub fn packet_time(&self) -> i64 {
        self.now_ns
    }

    /// Interval reports of every stream for the window ending at `boundary`, then closures.
    fn report_boundary(&mut self, boundary: i64) {
        let drops_noted = self.drops_noted;
        let idle = self.cfg.idle_timeout_ns;
        let mut closing: Vec<(usize, EndReason)> = Vec::new();
        for slot in 0..self.active.len() {
            let (Some(stream), Some(window)) = (self.active.get(slot), self.windows.get(slot))
            else {
                continue;
            };
            if window.start_ns >= boundary {
                continue;
            }
            let last = stream.meter.last_ns();
            if stream.bye_ns.is_some() {
                closing.push((slot, EndReason::Bye));
                continue;
            }
            if boundary.saturating_sub(last) >= idle {
                closing.push((slot, EndReason::Idle));
                continue;
            }
            let inputs = self.inputs_for(stream);
            let (Some(stream), Some(window)) =
                (self.active.get_mut(slot), self.windows.get_mut(slot))
            else {
                continue;
            };
            let looks_like_noise = stream.detection == Detection::Heuristic
                && u64::from(stream.meter.jumps()) > stream.meter.packets();
            let figures = stream.meter.take_window(&mut window.state, &inputs);
            let start = std::mem::replace(&mut window.start_ns, boundary);
            let capture_drops =
                drops_noted.saturating_sub(std::mem::replace(&mut window.drops_mark, drops_noted));
            if looks_like_noise {
                continue;
            }
            if let Some(result) = self.identity_of(slot) {
                if let (Some(id), Some(mos)) = (result.call_id.as_deref(), figures.mos) {
                    self.calls.on_window(id, mos, start, boundary);
                }
                self.reports.push(WindowReport {
                    stream: result,
                    window_start_ns: start,
                    window_end_ns: boundary,
                    figures,
                    end: None,
                    capture_drops,
                });
            }
        }
        // Close from the highest slot down so swap_remove does not move a slot still to close.
        for (slot, reason) in closing.into_iter().rev() {
            self.close_slot(slot, reason, boundary);
        }
    }

    /// Identity of an active stream for a report (its `summary` is the running total).
    fn identity_of(&self, slot: usize) -> Option<StreamResult> {
        let stream = self.active.get(slot)?;
        let meter = &stream.meter;
        Some(StreamResult {
            key: stream.key,
            payload_type: stream.payload_type,
            codec: stream.codec_name.reported(),
            clock_hz: meter.clock_hz(),
            clock_source: stream.clock_source,
            clock_inference: stream.clock_inference.as_deref().copied(),
            detection: stream.detection,
            call_id: stream.call_id().cloned(),
            first_ns: meter.first_ns(),
            last_ns: meter.last_ns(),
            codec_info: *meter.codec(),
            summary: meter.summary(&self.inputs_for(stream)),
            srtp: stream.profile.as_ref().is_some_and(|p| p.srtp),
            silence: meter.silence(),
        })
    }

    /// Kernel drops newly counted on the worker's socket; each open stream's current window
    /// carries them (see [`WindowReport::capture_drops`]).
    pub fn note_capture_drops(&mut self, drops: u64) {
        self.drops_noted = self.drops_noted.saturating_add(drops);
    }

    /// Reports produced so far (interval mode); the caller ships them.
    pub fn drain_reports(&mut self) -> std::vec::IntoIter<WindowReport> {
        // Taking the vector (not draining it) returns a boundary's burst of reports to the
        // allocator instead of keeping its capacity for the life of the worker.
        std::mem::take(&mut self.reports).into_iter()
    }

    /// Closes every open stream (agent shutdown, end of a replayed capture): each gets its
    /// final report, `bye` when its call had already ended (it was waiting for the next
    /// boundary), else `shutdown`. Then every call ends (`shutdown` if it was up) and its
    /// record is due ([`Analyzer::drain_calls`]).
    pub fn close_all(&mut self, end_ns: i64) {
        // Fragments still waiting will not be completed by a capture that ended.
        self.fragments.finish(&mut self.counters.ip_reassembly);
        while let Some(last) = self.active.len().checked_sub(1) {
            let reason = match self.active.get(last).and_then(|s| s.bye_ns) {
                Some(_) => EndReason::Bye,
                None => EndReason::Shutdown,
            };
            self.close_slot(last, reason, end_ns);
        }
        self.calls.shut_down(end_ns);
        self.collect_retired_calls(end_ns);
    }

    /// Ends timed-out calls and retires ended ones whose streams have all closed.
    fn sweep_calls(&mut self, now_ns: i64) {
        if self.calls.is_empty() {
            return;
        }
        let streams_by_call = &self.streams_by_call;
        self.calls
            .sweep(now_ns, |id| streams_by_call.contains_key(id));
        self.collect_retired_calls(now_ns);
    }

    /// Live: judges the media of retired calls and queues them for the output. Offline: keeps
    /// them for the document, within the call limit.
    fn collect_retired_calls(&mut self, now_ns: i64) {
        if self.calls.retired_len() == 0 {
            return;
        }
        let live = self.cfg.report_interval_ns.is_some();
        let thresholds = self.cfg.calls.media;
        let limit = self.cfg.calls.dialog.capacity.max(1);
        for mut call in self.calls.drain_retired() {
            if live {
                // In stream order, as the `analyze` document lists them.
                call.streams
                    .sort_by_key(|s| (s.first_ns, s.src, s.dst, s.ssrc));
                call.problems = media::problems(&call, &call.streams, &thresholds, now_ns);
                self.ended_calls.push(call);
            } else {
                if self.finished_calls.len() >= limit {
                    self.finished_calls.pop_front();
                    self.calls_forgotten += 1;
                }
                self.finished_calls.push_back(call);
            }
        }
    }

    /// Call records due (live): calls that ended and whose streams have all closed.
    pub fn drain_calls(&mut self) -> std::vec::IntoIter<Call> {
        std::mem::take(&mut self.ended_calls).into_iter()
    }

    /// The dialog engine (its counters and current load).
    pub fn calls(&self) -> &CallTracker {
        &self.calls
    }

    fn result_of(&mut self, stream: &ActiveStream) -> Option<StreamResult> {
        let meter = &stream.meter;
        if stream.detection == Detection::Heuristic && u64::from(meter.jumps()) > meter.packets() {
            // Most of its packets did not follow any sequence: an RTP look-alike, not a stream.
            self.counters.streams_rejected += 1;
            return None;
        }
        let inputs = self.inputs_for(stream);
        Some(StreamResult {
            key: stream.key,
            payload_type: stream.payload_type,
            codec: stream.codec_name.reported(),
            clock_hz: meter.clock_hz(),
            clock_source: stream.clock_source,
            clock_inference: stream.clock_inference.as_deref().copied(),
            detection: stream.detection,
            call_id: stream.call_id().cloned(),
            first_ns: meter.first_ns(),
            last_ns: meter.last_ns(),
            codec_info: *meter.codec(),
            summary: meter.summary(&inputs),
            srtp: stream.profile.as_ref().is_some_and(|p| p.srtp),
            silence: meter.silence(),
        })
    }

    /// The 32 bits of a key's hash its index entry keeps (the high half: foldhash mixes
    /// those best).
    fn key_hash(&self, key: &StreamKey) -> u32 {
        (hash_key(&self.hasher, key) >> 32) as u32
    }

    /// The stream the last packet's stream was followed by the previous time, if it is `key`'s.
    ///
    /// Periodic senders keep their order from one packet interval to the next, so this guess
    /// is usually right. With tens of thousands of streams neither the index nor the records stay
    /// in cache, and a lookup through the index pays two misses one after the other (the index
    /// entry gives the record's address); the guess reads the slot from the record just fed (in
    /// cache), so the record's address is known at once. A wrong or stale guess (slots move when
    /// streams close) only falls back to the index: keys are unique among active streams.
    fn predicted(&self, key: &StreamKey) -> Option<usize> {
        let slot = self.active.get(self.last_fed as usize)?.next_hint as usize;
        self.active
            .get(slot)
            .is_some_and(|a| a.key == *key)
            .then_some(slot)
    }

    fn lookup(&self, key: &StreamKey) -> Option<usize> {
        let hash = self.key_hash(key);
        // The stored hash is compared first: a bucket whose 7-bit tag matches by chance is
        // passed over without loading its stream's record.
        self.index
            .find(IndexEntry::table_hash(hash), |e| {
                e.hash == hash
                    && self
                        .active
                        .get(e.slot as usize)
                        .is_some_and(|a| a.key == *key)
            })
            .map(|e| e.slot as usize)
    }

    fn unindex(&mut self, slot: usize) {
        let Some(key) = self.active.get(slot).map(|a| a.key) else {
            return;
        };
        let hash = self.key_hash(&key);
        if let Ok(entry) = self
            .index
            .find_entry(IndexEntry::table_hash(hash), |e| e.slot as usize == slot)
        {
            entry.remove();
        }
    }

    /// An RTCP compound (`None`: RTCP by its first octets, but invalid). Reduced-size RTCP, and
    /// invalid RTCP as an error, count only between known RTCP endpoints.
    ///
    /// SRTCP (RFC 3711 §3.4) is encrypted after its first 8 bytes: an SR's NTP timestamp or a
    /// report block read from it is noise that could still match an LSR, so SRTCP is counted
    /// and never parsed further. It is known from the SDP (`RTP/SAVP*`, RTCP or RTP address,
    /// the latter for rtcp-mux), else by its shape: not a valid compound, but an RTCP first
    /// header followed by an SRTCP index with the E bit.
    fn on_rtcp(&mut self, ts_ns: i64, dg: &Datagram<'_>, rtcp: Option<(Compound<'_>, RtcpForm)>) {
        if self.is_srtcp_endpoint(&dg.src, &dg.dst) {
            self.counters.srtcp += 1;
            return;
        }
        let compound = match rtcp {
            Some((c, RtcpForm::Compound)) => c,
            Some((c, RtcpForm::ReducedSize)) if self.is_rtcp_endpoint(&dg.src, &dg.dst) => c,
            _ if looks_like_srtcp(dg.payload) => {
                self.counters.srtcp += 1;
                return;
            }
            None if self.is_rtcp_endpoint(&dg.src, &dg.dst) => {
                self.counters.rtcp_invalid += 1;
                return;
            }
            _ => return,
        };
        self.counters.rtcp += 1;
        for packet in compound.packets() {
            match packet {
                RtcpPacket::SenderReport(sr) => {
                    self.rtt
                        .on_sender_report(sr.ssrc(), sr.ntp_middle32(), ts_ns);
                    for block in sr.report_blocks() {
                        self.rtt.on_report_block(
                            ts_ns,
                            sr.ssrc(),
                            block.ssrc,
                            block.lsr,
                            block.dlsr,
                        );
                    }
                }
                RtcpPacket::ReceiverReport(rr) => {
                    for block in rr.report_blocks() {
                        self.rtt.on_report_block(
                            ts_ns,
                            rr.ssrc(),
                            block.ssrc,
                            block.lsr,
                            block.dlsr,
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// A SIP message that is not yet parsed (e.g. from a reassembled byte stream).
    fn on_sip(&mut self, ts_ns: i64, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        match SipMessage::parse(payload) {
            Ok(msg) => self.on_sip_message(ts_ns, src, dst, msg),
            Err(_) => self.counters.sip_invalid += 1,
        }
    }

    fn on_sip_message(
        &mut self,
        ts_ns: i64,
        src: SocketAddr,
        dst: SocketAddr,
        msg: SipMessage<'_>,
    ) {
        self.counters.sip += 1;
        let body = msg.sdp_body();
        if body.is_some()
            && let Some(call_id) = msg.call_id()
        {
            // The call's record loads while the SDP is parsed (without a body there is nothing
            // to overlap the loads with, and the hint would only cost its lookup).
            self.calls.prefetch(call_id);
        }
        // Parsed where it stays, then only borrowed: moving the description (some 400 bytes)
        // out of its `Result` and again out of its `Option` cost two copies per body.
        let parsed = body.map(SessionDescription::parse);
        if matches!(parsed, Some(Err(_))) {
            self.counters.sip_invalid += 1;
        }
        let sdp = parsed.as_ref().and_then(|parsed| parsed.as_ref().ok());
        let ends_call = msg
            .method()
            .is_some_and(|m| m.eq_ignore_ascii_case(b"BYE") || m.eq_ignore_ascii_case(b"CANCEL"));
        // The call's Call-ID is shared (a count taken) only by the messages that use it: an SDP's
        // announcements, and an ending message under interval reports.
        let wants_call_id = sdp.is_some() || (ends_call && self.cfg.report_interval_ns.is_some());
        let call = self.calls.on_message(ts_ns, src, dst, &msg, sdp);
        let call_id: Option<Arc<str>> = call
            .filter(|_| wants_call_id)
            .map(|c| Arc::clone(&c.call_id));
        if ends_call
            && self.cfg.report_interval_ns.is_some()
            && let Some(id) = &call_id
        {
            // Taken out and put back (no allocation) so that the lookups can borrow `self`.
            if let Some((call, keys)) = self.streams_by_call.remove_entry(&**id) {
                for key in &keys {
                    if let Some(slot) = self.lookup(key)
                        && let Some(stream) = self.active.get_mut(slot)
                    {
                        stream.bye_ns.get_or_insert(ts_ns);
                    }
                }
                self.streams_by_call.insert(call, keys);
            }
        }
        let Some(sdp) = sdp else {
            return;
        };
        for media in &sdp.media {
            let media_type = media.media_type();
            let transport = media.transport();
            // Audio and video over RTP or SRTP are measured; T.38 (udptl), data channels and
            // other transports are not RTP. A lenient device's unknown profile on m=audio is
            // still taken as RTP, as before.
            if media.port == 0
                || media_type == MediaType::Other
                || (transport == TransportProtocol::Other && media_type != MediaType::Audio)
            {
                continue;
            }
            let Some(addr) = media.address(sdp) else {
                continue;
            };
            let profile = MediaProfile {
                call_id: call_id.clone(),
                rtpmaps: media
                    .rtpmaps
                    .iter()
                    .map(|m| RtpMapEntry {
                        payload_type: m.payload_type,
                        encoding: self.encodings.get(m.encoding),
                        clock_hz: m.clock_rate,
                    })
                    .collect(),
                ptime_ms: media.ptime,
                media: media_type,
                srtp: transport == TransportProtocol::Srtp,
                direction: media.direction,
            };
            let rtp_addr = SocketAddr::new(addr, media.port);
            let rtcp_addr = SocketAddr::new(addr, media.rtcp_port());
            let mut reg = self
                .registry
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            reg.announce(rtp_addr, Some(rtcp_addr), Arc::new(profile));
        }
    }

    fn sweep_candidates(&mut self, now_ns: i64) {
        let timeout = self.cfg.candidate_timeout_ns;
        // Collecting nothing allocates nothing: the common sweep costs no allocation.
        let expired: Vec<(StreamKey, Candidate)> = self
            .candidates
            .extract_if(|_, c| now_ns.saturating_sub(c.last_ns) > timeout)
            .collect();
        for (key, c) in expired {
            self.end_candidate(key, c);
        }
    }

    /// A candidate that saw its last packet (timeout, or the end of the capture): a stream if it
    /// is ready, announced, or ran in sequence long enough (its clock stays unknown if it could
    /// not be inferred); otherwise dropped and counted.
    fn end_candidate(&mut self, key: StreamKey, c: Candidate) {
        let profile = self.announced(&key.dst, &key.src);
        if let CandidateState::Ready { inference } = c.state() {
            self.start_stream(key, &c, profile, inference);
        } else if profile.is_some() || c.is_short_stream() {
            let inference = Some(c.inference());
            self.start_stream(key, &c, profile, inference);
        } else {
            self.counters.candidates_dropped += 1;
        }
    }

    /// Ends the analysis: every open stream is closed and reported.
    pub fn finish(mut self) -> AnalysisResult {
        self.fragments.finish(&mut self.counters.ip_reassembly);
        // Announced flows and short confirmed ones still waiting for a clock estimate are
        // streams all the same.
        let pending: Vec<(StreamKey, Candidate)> = self.candidates.drain().collect();
        for (key, c) in pending {
            self.end_candidate(key, c);
        }
        let end = self.now_ns;
        // Every stream closes now, the last slot first (no record moves): their index entries
        // need not be taken out one by one, and the results are pushed without regrowing.
        self.index.clear();
        // Nor need the streams of each call be taken out of `streams_by_call` one by one (a
        // Call-ID hashed and its entry found, a cache miss per stream): the map is set aside
        // whole and goes with the leftovers.
        let by_call = std::mem::take(&mut self.streams_by_call);
        let streams = if self.cfg.report_interval_ns.is_none() {
            // Offline, closing a stream is only its meter's end and its result, made where its
            // record was: the records, taken in slot order, become the results in their own
            // memory (`filter_map` over the table's `into_iter` collects in place; a result is
            // smaller than a record), not copied into a second list of fresh pages. With
            // 50,000 streams that list was 22 MB, 5,500 first-touch page faults (about 2.4 µs
            // each on the VMs measured) and a copy of every result. Slots are taken in the
            // order streams start, so the results usually come in the document's order
            // already and the sort below only checks it; otherwise it moves each result once.
            // Each meter ends right before its result is made, not in a pass of its own over
            // the table. The order key (first packet, address, SSRC) does not change when a
            // meter ends.
            let active = std::mem::take(&mut self.active);
            let made: Vec<StreamResult> = active
                .into_iter()
                .filter_map(|mut stream| {
                    stream.meter.finish();
                    self.result_of(&stream)
                })
                .collect();
            // Streams closed earlier came first: ties in the (stable) sort go to them.
            let mut streams = std::mem::take(&mut self.closed);
            if streams.is_empty() {
                streams = made;
            } else {
                streams.extend(made);
            }
            sort_results(&mut streams);
            streams
        } else {
            while let Some(last) = self.active.len().checked_sub(1) {
                self.close_slot(last, EndReason::Shutdown, end);
            }
            let mut streams = std::mem::take(&mut self.closed);
            sort_results(&mut streams);
            streams
        };
        self.streams_by_call = by_call;
        // The ring of finished calls becomes the list in place (no call moved, unless the ring
        // wrapped around), not drained into a new one call by call. When only one of the two
        // holds calls (offline, the calls still up at the end are usually all of them) it is
        // the list as it is: appending 25,000 calls of 500 bytes to an empty list moved each
        // once more. Sorted only when not in order already (the calls still up usually are).
        let finished: Vec<Call> = Vec::from(std::mem::take(&mut self.finished_calls));
        let still_up = self.calls.take_all();
        let mut calls = if finished.is_empty() {
            still_up
        } else {
            let mut calls = finished;
            calls.extend(still_up);
            calls
        };
        if !calls.is_sorted_by_key(Call::seq) {
            calls.sort_by_key(Call::seq);
        }
        AnalysisResult {
            streams,
            calls,
            call_counters: self.calls.counters(),
            calls_forgotten: self.calls_forgotten,
            call_thresholds: self.cfg.calls.media,
            capture_end_ns: end,
            counters: self.counters,
            leftovers: Leftovers(vec![self]),
        }
    }
}

impl ActiveStream {
    /// Role of a payload type other than the main one: comfort noise, events and unknown
    /// secondary types count in the sequence only. A stream that opened with such a type
    /// switches to the first real audio codec it sees.
    fn secondary_role(&mut self, pt: u8) -> PacketRole {
        let (info, clock, source) = resolve_payload(pt, self.profile.as_deref());
        if !self.audio_resolved
            && info.role == MediaRole::Audio
            && self.meter.set_codec(info, clock)
        {
            self.payload_type = pt;
            self.codec_name = codec_name(pt, &info, self.profile.as_deref());
            self.clock_source = source;
            self.clock_inference = None;
            self.audio_resolved = true;
            return PacketRole::Audio;
        }
        if info.role == MediaRole::ComfortNoise {
            return PacketRole::ComfortNoise;
        }
        PacketRole::SequenceOnly
    }
}

/// Orders results by (first packet, src, dst, SSRC), stably: the `analyze` document's order.
///
/// Results are made in slot order, and slots are taken in the order streams start, so they
/// often come sorted already (checked, nothing moved), or strictly descending (reversed).
/// Otherwise (a capture whose timestamps step back, streams closed earlier) the keys are
/// sorted apart from the results, each result then moved by one pass over the permutation:
/// when every address is IPv4 (as usual) through keys of plain integers, each address packed
/// into a `u64` in its own order (IPv4 addresses order by their 32 bits, then the port).
/// Comparing `SocketAddr`s (an enum of two address types) made the sort of 50,000 keys most of
/// `finish`'s own time.
fn sort_results(streams: &mut [StreamResult]) {
    sort_by_order(streams, |s| result_order(s.first_ns, &s.key));
}

/// [`sort_results`] for any items with an [`OrderKey`].
fn sort_by_order<T>(streams: &mut [T], order: impl Fn(&T) -> OrderKey) {
    if streams.windows(2).all(|w| order(&w[0]) > order(&w[1])) {
        streams.reverse();
        return;
    }
    if streams.is_sorted_by_key(&order) {
        return;
    }
    let pack = |a: &SocketAddr| match a {
        SocketAddr::V4(v4) => Some((u64::from(v4.ip().to_bits()) << 16) | u64::from(v4.port())),
        SocketAddr::V6(_) => None,
    };
    // (first packet, src, dst, SSRC, position): the position makes the unstable sort stable.
    let packed: Option<Vec<PackedOrder>> = streams
        .iter()
        .enumerate()
        .map(|(at, s)| {
            let (first, src, dst, ssrc) = order(s);
            Some((first, pack(&src)?, pack(&dst)?, ssrc, at))
        })
        .collect();
    match packed {
        Some(mut keys) => {
            keys.sort_unstable();
            let mut from: Vec<usize> = keys.into_iter().map(|k| k.4).collect();
            permute(streams, &mut from);
        }
        // An IPv6 address among them: `SocketAddr`s compared (stable: ties keep their order).
        None => streams.sort_by_cached_key(order),
    }
}

/// An [`OrderKey`] with both addresses packed into `u64`s, and the item's position.
type PackedOrder = (i64, u64, u64, u32, usize);

/// Puts `items[from[k]]` at position `k`, for every `k` (`from` a permutation of the
/// positions; it is used up), moving each item along its cycle by swaps: no second list.
/// A cycle visits the items in no order the core can guess, and with 50,000 results of
/// 440 bytes each swap waited on memory: the items of the next two swaps are asked into the
/// cache while this one is made.
fn permute<T>(items: &mut [T], from: &mut [usize]) {
    let lines = std::mem::size_of::<T>() / hint::LINE + 1;
    let prefetch = |items: &[T], at: usize| {
        if let Some(item) = items.get(at) {
            hint::prefetch_lines(std::ptr::from_ref(item).cast::<u8>(), lines);
        }
    };
    for start in 0..from.len() {
        let mut at = start;
        // Position `at` takes the item at `from[at]`, until the cycle closes at `start`.
        while let Some(&source) = from.get(at) {
            if source == start || source == at {
                break;
            }
            if let Some(&next) = from.get(source) {
                prefetch(items, next);
                if let Some(&after) = from.get(next) {
                    prefetch(items, after);
                }
            }
            items.swap(at, source);
            if let Some(done) = from.get_mut(at) {
                *done = at;
            }
            at = source;
        }
        if let Some(done) = from.get_mut(at) {
            *done = at;
        }
    }
}

/// (first packet, src, dst, SSRC): see [`result_order`].
type OrderKey = (i64, SocketAddr, SocketAddr, u32);

/// The sort key of a result in the `analyze` document: (first packet, src, dst, SSRC).
fn result_order(first_ns: i64, key: &StreamKey) -> OrderKey {
    (first_ns, key.src, key.dst, key.ssrc)
}

/// The shard of a flow: a fixed (unseeded) hash, identical in every thread, of its addresses,
/// so that SSRC changes and restarts of one flow stay in one shard.
pub fn flow_shard(src: &SocketAddr, dst: &SocketAddr, count: u32) -> u32 {
    use std::hash::BuildHasher;
    let ip = |a: &SocketAddr| match a {
        SocketAddr::V4(v4) => u128::from(v4.ip().to_bits()),
        SocketAddr::V6(v6) => v6.ip().to_bits(),
    };
    let h = foldhash::fast::FixedState::with_seed(0x766f_7161).hash_one((
        ip(src),
        ip(dst),
        src.port(),
        dst.port(),
    ));
    (h % u64::from(count.max(1))) as u32
}

/// Hash of a stream key from its fields as integers (faster than hashing `SocketAddr`s).
fn hash_key(hasher: &foldhash::fast::RandomState, key: &StreamKey) -> u64 {
    use std::hash::BuildHasher;
    let ip = |a: &SocketAddr| match a {
        SocketAddr::V4(v4) => u128::from(v4.ip().to_bits()),
        SocketAddr::V6(v6) => v6.ip().to_bits(),
    };
    let ports =
        (u64::from(key.src.port()) << 48) | (u64::from(key.dst.port()) << 32) | u64::from(key.ssrc);
    hasher.hash_one((ip(&key.src), ip(&key.dst), ports))
}

/// One entry of [`Analyzer::index`]: a stream's slot in `active` and 32 bits of its key's hash
/// ([`Analyzer::key_hash`]).
///
/// The table is placed by those bits alone ([`IndexEntry::table_hash`]), so when it grows it
/// moves its entries without reading a stream's record: with only the slot it hashed every
/// stream's key again, reading each record (a likely cache miss, with many streams) at every
/// doubling of the table. 8 bytes a bucket (the slot alone was 4): lookups are rare (most
/// packets find their stream through [`Analyzer::predicted`]), and the table stays far smaller
/// than the records.
#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    slot: u32,
    hash: u32,
}

impl IndexEntry {
    /// The table's 64-bit hash of an entry's 32 bits: the low bits place it, the top 7 bits
    /// are hashbrown's tag; both come from the 32 bits (the tag from their top 7), independent
    /// for tables of up to 2^25 buckets.
    fn table_hash(hash: u32) -> u64 {
        let hash = u64::from(hash);
        hash | (hash << 32)
    }

    /// The hasher the table calls when it grows.
    fn rehash(entry: &IndexEntry) -> u64 {
        Self::table_hash(entry.hash)
    }

    /// Indexes `slot` under its key's 32-bit `hash` (the key is not in the table already).
    fn insert(index: &mut HashTable<IndexEntry>, slot: usize, hash: u32) {
        index.insert_unique(
            Self::table_hash(hash),
            IndexEntry {
                slot: slot as u32,
                hash,
            },
            Self::rehash,
        );
    }
}

/// Payload roles measured as the stream's voice: known audio codecs, and unknown (dynamic) types,
/// which are rated with the G.711-with-PLC proxy values and flagged.
fn measurable(role: MediaRole) -> bool {
    matches!(role, MediaRole::Audio | MediaRole::Unknown)
}

/// What [`resolve_payload`] says of a payload type: codec, clock rate and the clock's source.
type Resolved = (CodecInfo, Option<u32>, ClockSource);

/// What the last few payload types were resolved from and to: [`resolve_payload`] for a
/// stream start, without searching the codec table by name again when the payload type, its
/// `a=rtpmap` (encoding name and clock) and the media type are those of a recent stream start,
/// as with the calls of one capture, which announce the same few codecs over and over (the
/// search was a sixth of a stream start). Several entries, replaced in turn: calls of two
/// codecs alternating missed a memo of one half of the time.
#[derive(Debug, Default)]
struct ResolveMemo {
    entries: [Option<(ResolveKey, Resolved)>; RESOLVE_MEMO_ENTRIES],
    /// The entry replaced next.
    next: usize,
}

/// Entries of [`ResolveMemo`].
const RESOLVE_MEMO_ENTRIES: usize = 4;

/// Everything [`resolve_payload`] reads of a payload type and its profile.
#[derive(Debug, Clone, PartialEq)]
struct ResolveKey {
    pt: u8,
    /// The profile's rtpmap of the payload type: encoding name and clock.
    rtpmap: Option<(Arc<str>, u32)>,
    /// Announced in an `m=video` section.
    video: bool,
}

impl ResolveMemo {
    /// The same as [`resolve_payload`]`(pt, profile)`.
    fn resolve(&mut self, pt: u8, profile: Option<&MediaProfile>) -> Resolved {
        let rtpmap = profile.and_then(|p| p.rtpmap(pt));
        let video = profile.is_some_and(|p| p.media == MediaType::Video);
        let known = self.entries.iter().flatten().find(|(key, _)| {
            key.pt == pt
                && key.video == video
                && match (&key.rtpmap, rtpmap) {
                    (None, None) => true,
                    (Some((name, clock)), Some(map)) => {
                        *clock == map.clock_hz
                            && (Arc::ptr_eq(name, &map.encoding) || **name == *map.encoding)
                    }
                    _ => false,
                }
        });
        if let Some((_, resolved)) = known {
            return *resolved;
        }
        let resolved = resolve_payload(pt, profile);
        let rtpmap = rtpmap.map(|map| (Arc::clone(&map.encoding), map.clock_hz));
        if let Some(entry) = self.entries.get_mut(self.next) {
            *entry = Some((ResolveKey { pt, rtpmap, video }, resolved));
        }
        self.next = (self.next + 1) % RESOLVE_MEMO_ENTRIES;
        resolved
    }
}

/// A new stream's first packet, its main payload type's packet (the first one that is real
/// audio, else the first one measurable, else the first one) and that payload type's
/// resolution; `None` without packets.
///
/// One pass, resolving a payload type only when it differs from the one resolved last (`seed`:
/// one the caller resolved already): a stream's first packets almost always share one payload
/// type (the candidate replays only those of its last packet's), so a stream start resolves it
/// once (it was three times: the codec table is searched by name, a tenth of a stream start).
/// The same choice as searching the packets for audio, then for a measurable type (tested
/// against that simple form).
fn main_payload<'a>(
    packets: impl Iterator<Item = &'a RtpMeta>,
    profile: Option<&MediaProfile>,
    seed: Option<(u8, Resolved)>,
) -> Option<(RtpMeta, RtpMeta, Resolved)> {
    let mut last = seed;
    let mut resolve = |pt: u8| match last {
        Some((known, resolved)) if known == pt => resolved,
        _ => {
            let resolved = resolve_payload(pt, profile);
            last = Some((pt, resolved));
            resolved
        }
    };
    let mut first = None;
    let mut measurable_one = None;
    for p in packets {
        let resolved = resolve(p.pt);
        first.get_or_insert(*p);
        if resolved.0.role == MediaRole::Audio {
            return first.map(|f| (f, *p, resolved));
        }
        if measurable_one.is_none() && measurable(resolved.0.role) {
            measurable_one = Some((*p, resolved));
        }
    }
    let first = first?;
    let (main, resolved) = measurable_one.unwrap_or_else(|| (first, resolve(first.pt)));
    Some((first, main, resolved))
}

/// Codec, clock rate and its source for a payload type (metrics-spec §1.5 resolution order).
fn resolve_payload(
    pt: u8,
    profile: Option<&MediaProfile>,
) -> (CodecInfo, Option<u32>, ClockSource) {
    let (info, clock, source) = resolve_payload_as_announced(pt, profile);
    if profile.is_some_and(|p| p.media == MediaType::Video) && info.role != MediaRole::Video {
        // Everything in an m=video section (RTX, RED, ULPFEC, unknown names) is video.
        return (
            CodecInfo {
                role: MediaRole::Video,
                ..info
            },
            clock,
            source,
        );
    }
    (info, clock, source)
}

fn resolve_payload_as_announced(
    pt: u8,
    profile: Option<&MediaProfile>,
) -> (CodecInfo, Option<u32>, ClockSource) {
    if let Some(map) = profile.and_then(|p| p.rtpmap(pt)) {
        let info = codec::codec_by_name(&map.encoding, map.clock_hz);
        let clock = (map.clock_hz > 0).then_some(map.clock_hz);
        return (
            info,
            clock,
            if clock.is_some() {
                ClockSource::Sdp
            } else {
                ClockSource::Unknown
            },
        );
    }
    if let Some(info) = codec::codec_for_static_pt(pt) {
        return (info, Some(info.clock_hz), ClockSource::Static);
    }
    (
        codec::codec_by_name("unknown", 0),
        None,
        ClockSource::Unknown,
    )
}

/// A stream's codec name without a per-stream allocation: the codec table's static name, or the
/// SDP encoding name shared with the profile that announced it.
#[derive(Debug, Clone)]
enum CodecName {
    Static(&'static str),
    Shared(Arc<str>),
}

impl CodecName {
    fn as_str(&self) -> &str {
        match self {
            CodecName::Static(s) => s,
            CodecName::Shared(s) => s,
        }
    }

    /// The name as a result carries it: a static name is borrowed, not copied.
    fn reported(&self) -> Cow<'static, str> {
        match self {
            CodecName::Static(s) => Cow::Borrowed(s),
            CodecName::Shared(s) => Cow::Owned(s.to_string()),
        }
    }
}

/// The name a stream's codec is reported under: the codec table's canonical spelling (the IANA
/// media-subtype registry's, e.g. `PCMA`, `PCMU`, `G722`, `G729`, `opus`, `telephone-event`,
/// `H264`, `VP8`) whatever case the SDP used, so `pcma` and `PCMA` in one file print alike; an
/// encoding name the table does not know is reported as the SDP wrote it.
fn codec_name(pt: u8, info: &CodecInfo, profile: Option<&MediaProfile>) -> CodecName {
    // `info` was resolved from this payload type and profile: its name is the table's
    // canonical one whenever the table knows the rtpmap's encoding.
    if info.name == UNKNOWN_CODEC
        && let Some(map) = profile.and_then(|p| p.rtpmap(pt))
    {
        return CodecName::Shared(Arc::clone(&map.encoding));
    }
    CodecName::Static(info.name)
}

/// The codec table's name for encodings it does not know.
const UNKNOWN_CODEC: &str = "unknown";

/// RTP clock of every video payload format (RFC 3551 §5 and the video payload RFCs).
const VIDEO_CLOCK_HZ: u32 = 90_000;

#[cfg(test)]
mod srtcp_tests {
    use super::*;
    use crate::decode::build::{LinkSpec, ReportBlockSpec, rtcp_rr, rtcp_sr, udp_frame};

    fn block(ssrc: u32, lsr: u32) -> ReportBlockSpec {
        ReportBlockSpec {
            ssrc,
            fraction_lost: 0,
            cumulative_lost: 0,
            ext_highest_seq: 0,
            jitter: 0,
            lsr,
            dlsr: 0,
        }
    }

    fn feed(a: &mut Analyzer, ts: i64, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        let f = udp_frame(&LinkSpec::Ethernet, src, dst, payload);
        a.on_frame(ts, 1, &f, f.len() as u32);
    }

    fn sip_with_proto(proto: &str, port: u16) -> String {
        let sdp = format!(
            "v=0\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio {port} {proto} 0\r\na=rtcp-mux\r\n"
        );
        format!(
            "INVITE sip:b@h SIP/2.0\r\nCall-ID: s\r\nCSeq: 1 INVITE\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
    }

    #[test]
    fn rtcp_of_srtp_media_is_counted_as_srtcp_and_gives_no_rtt() {
        let sip = SocketAddr::from(([192, 0, 2, 1], 5060));
        let pbx = SocketAddr::from(([192, 0, 2, 2], 5060));
        let a = SocketAddr::from(([192, 0, 2, 1], 4000));
        let b = SocketAddr::from(([192, 0, 2, 2], 6000));
        let sr = rtcp_sr(0xA, 0x0001_0002_0003_0000, 0, 0, 0, &[]);
        let rr = rtcp_rr(0xB, &[block(0xA, 0x0002_0003)]);
        let run = |proto: &str| {
            let mut an = Analyzer::new(AnalyzerConfig::default());
            feed(
                &mut an,
                1_000,
                sip,
                pbx,
                sip_with_proto(proto, 4000).as_bytes(),
            );
            // Clear-looking RTCP on the rtcp-mux address: believed only for RTP/AVP.
            feed(&mut an, 2_000_000_000, a, b, &sr);
            feed(&mut an, 2_040_000_000, b, a, &rr);
            // An SRTCP-shaped datagram between unannounced addresses.
            let x = SocketAddr::from(([198, 51, 100, 1], 7000));
            let y = SocketAddr::from(([198, 51, 100, 2], 7000));
            feed(
                &mut an,
                2_050_000_000,
                x,
                y,
                &crate::decode::srtcp::tests::MEET_SRTCP,
            );
            let c = *an.counters();
            (c.rtcp, c.srtcp, an.rtt.session_rtt_ms(0xA))
        };
        let (rtcp, srtcp, rtt) = run("RTP/AVP");
        assert_eq!((rtcp, srtcp), (2, 1));
        assert!((rtt.unwrap_or(0.0) - 40.0).abs() < 1e-9, "{rtt:?}");
        for proto in ["RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVPF"] {
            assert_eq!(run(proto), (0, 3, None), "{proto}");
        }
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn per_stream_state_fits_in_one_kib() {
        // With interval reports (the larger case) a stream also has its window.
        let per_stream = std::mem::size_of::<ActiveStream>()
            + std::mem::size_of::<StreamWindow>()
            + std::mem::size_of::<u32>()
            + 1;
        use crate::quality::codec::CodecInfo;
        use crate::quality::jbuf::JitterBuffer;
        use crate::quality::jitter::Jitter;
        use crate::quality::seq::{Rfc3550Seq, SequenceWindow};
        use std::mem::size_of;
        println!(
            "ActiveStream {} B: key {}, meter {} (codec {}, seq {}, window {}, jitter {}, jbuf {})",
            size_of::<ActiveStream>(),
            size_of::<StreamKey>(),
            size_of::<StreamMeter>(),
            size_of::<CodecInfo>(),
            size_of::<Rfc3550Seq>(),
            size_of::<SequenceWindow>(),
            size_of::<Jitter>(),
            size_of::<JitterBuffer>()
        );
        assert!(per_stream <= 1024, "{per_stream} bytes per stream");
    }
}

#[cfg(test)]
mod interval_tests {
    use super::*;
    use crate::decode::build::{LinkSpec, RtpHeader, rtp_packet, udp_frame};

    const SEC: i64 = 1_000_000_000;

    fn frame(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let h = RtpHeader {
            payload_type: 0,
            marker: false,
            sequence: seq,
            timestamp: ts,
            ssrc,
            csrcs: vec![],
            extension: None,
            padding: 0,
        };
        udp_frame(
            &LinkSpec::Ethernet,
            SocketAddr::from(([192, 0, 2, 1], 20000)),
            SocketAddr::from(([192, 0, 2, 2], 30000)),
            &rtp_packet(&h, &[0u8; 160]),
        )
    }

    fn analyzer(interval_s: i64) -> Analyzer {
        Analyzer::new(AnalyzerConfig {
            report_interval_ns: Some(interval_s * SEC),
            idle_timeout_ns: 5 * SEC,
            ..AnalyzerConfig::default()
        })
    }

    #[test]
    fn windows_tile_the_stream_and_sum_to_its_totals() {
        let mut a = analyzer(1);
        let t0 = 100 * SEC + 300_000_000; // starts mid-interval
        let mut sent = 0u64;
        for i in 0..400u32 {
            if i % 29 == 3 {
                continue; // loss
            }
            let f = frame(i as u16, 160 * i, 7);
            a.on_frame(t0 + i64::from(i) * 20_000_000, 1, &f, f.len() as u32);
            sent += 1;
        }
        // 10 s of silence: the stream ends idle at the first boundary 5 s after its last packet.
        a.advance_to(t0 + 20 * SEC);
        let reports: Vec<WindowReport> = a.drain_reports().collect();
        let last = reports.last().expect("reports");
        assert_eq!(last.end, Some(EndReason::Idle));
        assert_eq!(reports.iter().filter(|r| r.end.is_some()).count(), 1);
        assert_eq!(reports[0].window_start_ns, t0);
        assert_eq!(reports[0].window_end_ns, 101 * SEC);
        for w in reports.windows(2) {
            assert_eq!(
                w[0].window_end_ns, w[1].window_start_ns,
                "windows must tile"
            );
            assert_eq!(w[1].window_end_ns - w[1].window_start_ns, SEC);
        }
        let totals = &last.stream.summary;
        let sum = |f: fn(&WindowReport) -> u64| reports.iter().map(f).sum::<u64>();
        assert_eq!(totals.packets, sent);
        assert_eq!(sum(|r| r.figures.packets), totals.packets);
        assert_eq!(sum(|r| r.figures.expected), totals.expected);
        assert_eq!(sum(|r| r.figures.lost), totals.lost);
        assert_eq!(totals.expected, 400);
        assert_eq!(totals.lost, 14);
        // Idle: closed at the first boundary at least 5 s after the last packet.
        let last_packet = t0 + 399 * 20_000_000;
        assert!(
            last.window_end_ns >= last_packet + 5 * SEC
                && last.window_end_ns < last_packet + 6 * SEC
        );
    }

    /// The lookup's guess (the stream that followed last time) must never pick a wrong stream:
    /// the arrival order changes every round, one stream goes idle and is closed (the last
    /// slot moves into its place, so guesses go stale), and every packet must still land in
    /// its own stream.
    #[test]
    fn changing_arrival_order_and_moved_slots_keep_packets_in_their_streams() {
        let mut a = Analyzer::new(AnalyzerConfig {
            idle_timeout_ns: SEC,
            ..AnalyzerConfig::default()
        });
        let t0 = 100 * SEC;
        let mut sent = [0u64; 6];
        for round in 0..200u32 {
            let mut order: Vec<u32> = (1..=5).collect();
            order.rotate_left((round % 5) as usize);
            if round % 3 == 1 {
                order.reverse();
            }
            for (k, &ssrc) in order.iter().enumerate() {
                if ssrc == 2 && round >= 50 {
                    continue; // stream 2 ends: idle after 1 s, closed by a sweep
                }
                if (round + ssrc) % 17 == 0 {
                    continue; // a loss: the next packet is not the guessed one
                }
                let f = frame(round as u16, 160 * round, ssrc);
                let ts = t0 + i64::from(round) * 20_000_000 + k as i64 * 1_000;
                a.on_frame(ts, 1, &f, f.len() as u32);
                sent[ssrc as usize] += 1;
            }
        }
        let result = a.finish();
        assert_eq!(result.streams.len(), 5);
        for s in &result.streams {
            let ssrc = s.key.ssrc as usize;
            assert_eq!(s.summary.packets, sent[ssrc], "ssrc {ssrc}");
            assert_eq!(s.summary.duplicates, 0, "ssrc {ssrc}");
        }
        let stream2 = result.streams.iter().find(|s| s.key.ssrc == 2);
        // Its last packet (round 49) was lost: sequence 0..=48.
        assert_eq!(stream2.map(|s| s.summary.expected), Some(49));
    }

    #[test]
    fn replay_is_deterministic() {
        let run = || {
            let mut a = analyzer(2);
            for i in 0..300u32 {
                let f = frame(i as u16, 160 * i, 9);
                a.on_frame(
                    50 * SEC + i64::from(i) * 20_000_000 + i64::from(i % 7) * 100_000,
                    1,
                    &f,
                    f.len() as u32,
                );
            }
            a.close_all(60 * SEC);
            a.drain_reports()
                .map(|r| {
                    (
                        r.window_start_ns,
                        r.window_end_ns,
                        r.figures.packets,
                        r.figures.max_jitter_ms,
                        r.end,
                    )
                })
                .collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        assert_eq!(first.last().map(|r| r.4), Some(Some(EndReason::Shutdown)));
    }

    #[test]
    fn next_deadline_is_the_next_boundary_while_streams_are_open() {
        let mut a = analyzer(2);
        assert_eq!(a.next_deadline(), None, "no streams, no deadline");
        a.advance_to(11 * SEC);
        assert_eq!(a.next_deadline(), None, "time alone opens nothing");
        let t0 = 11 * SEC + 500_000_000;
        for i in 0..10u32 {
            let f = frame(i as u16, 160 * i, 3);
            a.on_frame(t0 + i64::from(i) * 20_000_000, 1, &f, f.len() as u32);
        }
        assert_eq!(a.active_streams(), 1);
        assert_eq!(a.next_deadline(), Some(12 * SEC), "after packets");
        // Nothing happens before the deadline ...
        a.advance_to(12 * SEC - 1);
        assert_eq!(a.drain_reports().count(), 0);
        // ... and at it the interval report comes out and the deadline moves on.
        a.advance_to(12 * SEC);
        assert_eq!(a.drain_reports().count(), 1);
        assert_eq!(a.next_deadline(), Some(14 * SEC), "after advance");
        // Idle (5 s) expiry happens at a boundary: following deadlines reach it, then None.
        let mut guard = 0;
        while let Some(d) = a.next_deadline() {
            a.advance_to(d);
            guard += 1;
            assert!(guard < 10, "deadlines must reach the idle expiry");
        }
        let last: Vec<WindowReport> = a.drain_reports().collect();
        assert_eq!(last.last().and_then(|r| r.end), Some(EndReason::Idle));
        assert_eq!(a.active_streams(), 0);
        assert_eq!(a.next_deadline(), None, "all streams closed");
    }

    #[test]
    fn offline_analysis_has_no_deadline() {
        let mut a = Analyzer::new(AnalyzerConfig::default());
        for i in 0..10u32 {
            let f = frame(i as u16, 160 * i, 3);
            a.on_frame(SEC + i64::from(i) * 20_000_000, 1, &f, f.len() as u32);
        }
        assert_eq!(a.active_streams(), 1);
        assert_eq!(a.next_deadline(), None);
        assert_eq!(a.packet_time(), SEC + 9 * 20_000_000);
    }

    #[test]
    fn full_table_evicts_the_least_recently_active() {
        let mut a = Analyzer::new(AnalyzerConfig {
            max_streams: 2,
            report_interval_ns: Some(SEC),
            ..AnalyzerConfig::default()
        });
        for ssrc in 1..=3u32 {
            for i in 0..3u32 {
                let f = frame(i as u16, 160 * i, ssrc);
                a.on_frame(
                    SEC + i64::from(ssrc) * 100_000_000 + i64::from(i) * 20_000_000,
                    1,
                    &f,
                    f.len() as u32,
                );
            }
        }
        assert_eq!(a.active_streams(), 2);
        assert_eq!(a.counters().streams_evicted, 1);
        let evicted: Vec<WindowReport> = a.drain_reports().collect();
        assert_eq!(evicted.len(), 1);
        assert_eq!(
            (evicted[0].stream.key.ssrc, evicted[0].end),
            (1, Some(EndReason::Evicted))
        );
        assert_eq!(evicted[0].stream.summary.packets, 3);
    }

    /// A stream that starts becomes the stream fed last: its predecessor's guess is the new
    /// stream, and in the next round of packets every stream is found by its guess (no index
    /// lookup beyond the new stream's own first one and its successor's).
    #[test]
    fn a_new_stream_joins_the_guessed_order_at_once() {
        let mut a = analyzer(1);
        let slot_of = |a: &Analyzer, ssrc: u32| a.active.iter().position(|s| s.key.ssrc == ssrc);
        // Rounds of 20 ms: streams 1 and 3 from the start, stream 2 between them from round 2
        // (confirmed by its second packet, in round 3).
        for round in 0..5u16 {
            let at = 10 * SEC + i64::from(round) * 20_000_000;
            packet(&mut a, at, round, 160 * u32::from(round), 1);
            if round >= 2 {
                packet(&mut a, at + 1_000, round, 160 * u32::from(round), 2);
            }
            if round == 3 {
                let (one, two) = (slot_of(&a, 1), slot_of(&a, 2));
                assert!(two.is_some(), "stream 2 is confirmed");
                assert_eq!(
                    Some(a.last_fed as usize),
                    two,
                    "the new stream was fed last"
                );
                let one = one
                    .and_then(|s| a.active.get(s))
                    .map(|s| s.next_hint as usize);
                assert_eq!(one, two, "stream 1's guess is the new stream");
            }
            packet(&mut a, at + 2_000, round, 160 * u32::from(round), 3);
        }
        let (one, two, three) = (slot_of(&a, 1), slot_of(&a, 2), slot_of(&a, 3));
        let hint = |slot: Option<usize>| {
            slot.and_then(|s| a.active.get(s))
                .map(|s| s.next_hint as usize)
        };
        assert_eq!(hint(one), two);
        assert_eq!(hint(two), three);
        // Two ahead: the packet after the next one (3 followed 2 followed 1, then 1 again).
        let hint2 = |slot: Option<usize>| {
            slot.and_then(|s| a.active.get(s))
                .map(|s| s.next2_hint as usize)
        };
        assert_eq!(hint2(one), three);
        assert_eq!(hint2(two), one);
    }

    /// The index finds every stream at its slot after the table grew many times (its entries
    /// placed by their stored hash bits alone) and after closes moved streams between slots.
    #[test]
    fn the_index_finds_every_stream_after_growing_and_moving() {
        let mut a = analyzer(1);
        let check = |a: &Analyzer| {
            assert_eq!(a.index.len(), a.active.len());
            for (slot, stream) in a.active.iter().enumerate() {
                assert_eq!(
                    a.lookup(&stream.key),
                    Some(slot),
                    "ssrc {}",
                    stream.key.ssrc
                );
            }
        };
        // Two packets each (a heuristic stream is confirmed by its second).
        for ssrc in 1..=3000u32 {
            packet(&mut a, 10 * SEC, 7, 160, ssrc);
            packet(&mut a, 10 * SEC + 20_000_000, 8, 320, ssrc);
        }
        assert_eq!(a.active_streams(), 3000);
        check(&a);
        for slot in (0..3000).step_by(7) {
            a.close_slot(slot.min(a.active.len() - 1), EndReason::Shutdown, 11 * SEC);
        }
        check(&a);
        let gone = StreamKey {
            ssrc: 9999,
            ..a.active[0].key
        };
        assert_eq!(a.lookup(&gone), None);
    }

    /// Feeds one 20 ms packet of `ssrc` at `at_ns`.
    fn packet(a: &mut Analyzer, at_ns: i64, seq: u16, ts: u32, ssrc: u32) {
        let f = frame(seq, ts, ssrc);
        a.on_frame(at_ns, 1, &f, f.len() as u32);
    }

    /// Regression: kernel drops noted inside a window were claimed by a restarted stream's final
    /// report *and* again by its successor's window (and by every later stream closed before
    /// the boundary): the live test saw a flow's windows claim 43,920 drops when the kernel had
    /// counted 28,147. A drop is charged to each stream window open when it was noted, once.
    #[test]
    fn capture_drops_are_charged_once_per_stream_window_across_a_restart() {
        let mut a = analyzer(1);
        let t0 = 10 * SEC;
        let mut at = t0;
        for i in 0..20u32 {
            packet(&mut a, at, 100 + i as u16, 160 * i, 5);
            at += 20_000_000;
        }
        a.note_capture_drops(100);
        // A confirmed jump (two sequential packets far away) restarts the stream mid-window.
        for i in 0..20u32 {
            packet(&mut a, at, 40_000 + i as u16, 900_000 + 160 * i, 5);
            at += 20_000_000;
        }
        a.note_capture_drops(7);
        a.advance_to(11 * SEC);
        a.note_capture_drops(30);
        a.advance_to(12 * SEC);
        let reports: Vec<WindowReport> = a.drain_reports().collect();
        let drops: Vec<(Option<EndReason>, i64, u64)> = reports
            .iter()
            .map(|r| (r.end, r.window_end_ns, r.capture_drops))
            .collect();
        assert_eq!(
            drops,
            vec![
                // The first sequence's final window: the 100 noted while it was open.
                (Some(EndReason::Restart), reports[0].window_end_ns, 100),
                // The restarted sequence: only what was noted after it began, then the next window.
                (None, 11 * SEC, 7),
                (None, 12 * SEC, 30),
            ]
        );
        let claimed: u64 = reports.iter().map(|r| r.capture_drops).sum();
        assert_eq!(
            claimed, 137,
            "one flow's windows claim each noted drop once"
        );
    }

    #[test]
    fn capture_drops_are_the_same_for_every_stream_open_in_the_window() {
        let mut a = analyzer(1);
        for i in 0..10u32 {
            packet(
                &mut a,
                20 * SEC + i64::from(i) * 20_000_000,
                i as u16,
                160 * i,
                1,
            );
            packet(
                &mut a,
                20 * SEC + i64::from(i) * 20_000_000 + 1,
                i as u16,
                160 * i,
                2,
            );
        }
        a.note_capture_drops(40);
        // A third stream starts after the drops were noted: none of them are its own.
        for i in 0..10u32 {
            packet(
                &mut a,
                20 * SEC + 500_000_000 + i64::from(i) * 20_000_000,
                i as u16,
                160 * i,
                3,
            );
        }
        a.advance_to(21 * SEC);
        let mut by_ssrc: Vec<(u32, u64)> = a
            .drain_reports()
            .map(|r| (r.stream.key.ssrc, r.capture_drops))
            .collect();
        by_ssrc.sort_unstable();
        assert_eq!(by_ssrc, vec![(1, 40), (2, 40), (3, 0)]);
        // Shutdown mid-window: the final reports carry only what was noted since the boundary.
        a.note_capture_drops(5);
        a.close_all(21 * SEC + 300_000_000);
        let finals: Vec<(u32, u64)> = a
            .drain_reports()
            .map(|r| (r.stream.key.ssrc, r.capture_drops))
            .collect();
        assert_eq!(finals.len(), 3);
        assert!(finals.iter().all(|&(_, d)| d == 5), "{finals:?}");
    }

    #[test]
    fn an_evicted_streams_drops_are_not_charged_again_to_its_replacement() {
        let mut a = Analyzer::new(AnalyzerConfig {
            max_streams: 1,
            report_interval_ns: Some(SEC),
            ..AnalyzerConfig::default()
        });
        for i in 0..3u32 {
            packet(
                &mut a,
                SEC + i64::from(i) * 20_000_000,
                i as u16,
                160 * i,
                1,
            );
        }
        a.note_capture_drops(9);
        for i in 0..3u32 {
            packet(
                &mut a,
                SEC + 200_000_000 + i64::from(i) * 20_000_000,
                i as u16,
                160 * i,
                2,
            );
        }
        a.advance_to(2 * SEC);
        let drops: Vec<(u32, Option<EndReason>, u64)> = a
            .drain_reports()
            .map(|r| (r.stream.key.ssrc, r.end, r.capture_drops))
            .collect();
        assert_eq!(drops, vec![(1, Some(EndReason::Evicted), 9), (2, None, 0)]);
    }
}

#[cfg(test)]
mod fragment_tests {
    use super::*;
    use crate::decode::build::{LinkSpec, ipv4_fragments};

    const SEC: i64 = 1_000_000_000;

    fn invite_fragments() -> Vec<Vec<u8>> {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 0\r\n{}",
            "a=x-padding:0123456789abcdef0123456789abcdef\r\n".repeat(40)
        );
        let invite = format!(
            "INVITE sip:b@example.invalid SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
             From: <sip:a@example.invalid>;tag=1\r\nTo: <sip:b@example.invalid>\r\n\
             Call-ID: fragmented\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        let src = SocketAddr::from(([192, 0, 2, 1], 5060));
        let dst = SocketAddr::from(([192, 0, 2, 2], 5060));
        ipv4_fragments(&LinkSpec::Ethernet, src, dst, invite.as_bytes(), 1480)
    }

    #[test]
    fn a_reassembled_invite_is_sip() {
        let fragments = invite_fragments();
        assert_eq!(fragments.len(), 2);
        let mut a = Analyzer::new(AnalyzerConfig::default());
        for (i, f) in fragments.iter().rev().enumerate() {
            a.on_frame(SEC + i as i64, 1, f, f.len() as u32);
        }
        let c = a.counters();
        assert_eq!((c.skipped.fragments, c.udp, c.sip), (2, 1, 1));
        assert_eq!(c.ip_reassembly.reassembled, 1);
        let result = a.finish();
        let calls = &result.calls;
        assert_eq!(calls.len(), 1);
        assert_eq!(
            calls[0].invite_ns(),
            Some(SEC + 1),
            "set up by the completing fragment"
        );
    }

    #[test]
    fn quiet_advances_time_fragments_out() {
        // Live capture: no more frames, only the worker's quiet advances of packet time.
        let fragments = invite_fragments();
        let mut a = Analyzer::new(AnalyzerConfig {
            report_interval_ns: Some(SEC),
            ..AnalyzerConfig::default()
        });
        a.on_frame(10 * SEC, 1, &fragments[0], fragments[0].len() as u32);
        a.advance_to(14 * SEC);
        assert_eq!(a.counters().ip_reassembly.timed_out, 0);
        a.advance_to(15 * SEC);
        assert_eq!(a.counters().ip_reassembly.timed_out, 1);
        // The rest, after the timeout, is a datagram of its own that the shutdown finds
        // incomplete.
        a.on_frame(16 * SEC, 1, &fragments[1], fragments[1].len() as u32);
        a.close_all(17 * SEC);
        let r = a.counters().ip_reassembly;
        assert_eq!((r.reassembled, r.timed_out, r.incomplete), (0, 1, 1));
        assert_eq!(a.counters().sip, 0);
    }
}

#[cfg(test)]
mod bye_tests {
    use super::*;
    use crate::decode::build::{LinkSpec, RtpHeader, rtp_packet, udp_frame};

    const SEC: i64 = 1_000_000_000;

    fn sip(a: &mut Analyzer, ts: i64, text: &str) {
        let f = udp_frame(
            &LinkSpec::Ethernet,
            SocketAddr::from(([192, 0, 2, 100], 5060)),
            SocketAddr::from(([192, 0, 2, 200], 5060)),
            text.as_bytes(),
        );
        a.on_frame(ts, 1, &f, f.len() as u32);
    }

    fn invite(call: u32, port: u16) -> String {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\n"
        );
        format!(
            "INVITE sip:b@example.invalid SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK{call}\r\n\
             From: <sip:a@example.invalid>;tag=1\r\nTo: <sip:b@example.invalid>\r\n\
             Call-ID: call-{call}\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
    }

    fn rtp(a: &mut Analyzer, ts: i64, port: u16, seq: u16) {
        let h = RtpHeader {
            payload_type: 0,
            marker: false,
            sequence: seq,
            timestamp: u32::from(seq) * 160,
            ssrc: u32::from(port),
            csrcs: vec![],
            extension: None,
            padding: 0,
        };
        let f = udp_frame(
            &LinkSpec::Ethernet,
            SocketAddr::from(([192, 0, 2, 9], 7000)),
            SocketAddr::from(([192, 0, 2, 1], port)),
            &rtp_packet(&h, &[0u8; 160]),
        );
        a.on_frame(ts, 1, &f, f.len() as u32);
    }

    /// A BYE ends exactly its call's streams (found through the Call-ID index, not by scanning
    /// every stream), and the index forgets streams as they close.
    #[test]
    fn a_bye_ends_only_its_calls_streams_and_the_index_empties() {
        let mut a = Analyzer::new(AnalyzerConfig {
            report_interval_ns: Some(SEC),
            ..AnalyzerConfig::default()
        });
        for call in 0..3u32 {
            sip(&mut a, SEC, &invite(call, 40_000 + 2 * call as u16));
        }
        for seq in 0..10u16 {
            for call in 0..3u16 {
                rtp(
                    &mut a,
                    SEC + 1_000_000 + i64::from(seq) * 20_000_000,
                    40_000 + 2 * call,
                    seq,
                );
            }
        }
        assert_eq!(a.active_streams(), 3);
        assert_eq!(a.streams_by_call.len(), 3);
        sip(
            &mut a,
            SEC + 300_000_000,
            "BYE sip:b@example.invalid SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKb\r\n\
             From: <sip:a@example.invalid>;tag=1\r\nTo: <sip:b@example.invalid>;tag=2\r\n\
             Call-ID: call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        );
        a.advance_to(2 * SEC);
        let ended: Vec<(u32, Option<EndReason>)> = a
            .drain_reports()
            .filter(|r| r.end.is_some())
            .map(|r| (r.stream.key.ssrc, r.end))
            .collect();
        assert_eq!(ended, vec![(40_002, Some(EndReason::Bye))]);
        assert_eq!(a.active_streams(), 2);
        assert_eq!(a.streams_by_call.len(), 2);
        assert!(!a.streams_by_call.contains_key("call-1"));
        a.close_all(3 * SEC);
        assert!(a.streams_by_call.is_empty());
    }
}

#[cfg(test)]
mod sort_tests {
    use super::*;

    proptest::proptest! {
        /// Moving items along the cycles of a permutation puts each where it belongs.
        #[test]
        fn permute_puts_each_item_where_it_belongs(
            perm in proptest::strategy::Strategy::prop_flat_map(0usize..50, |n| {
                use proptest::strategy::Strategy;
                proptest::strategy::Just((0..n).collect::<Vec<usize>>()).prop_shuffle()
            }),
        ) {
            let items: Vec<String> = (0..perm.len()).map(|i| format!("item {i}")).collect();
            let want: Vec<String> = perm.iter().map(|&i| items[i].clone()).collect();
            let mut ours = items;
            let mut from = perm;
            permute(&mut ours, &mut from);
            proptest::prop_assert_eq!(ours, want);
        }
    }

    proptest::proptest! {
        /// The results' order through packed keys and a permutation is the stable sort's, with
        /// ties of time, address and port, with an IPv6 address among them or not, and for
        /// sorted and descending input.
        #[test]
        fn sort_by_order_is_the_stable_sort(
            keys in proptest::collection::vec(
                (0i64..4, 0u32..3, 0u16..3, 0u32..3, 0u16..3, 0u32..3),
                0..40,
            ),
            v6 in proptest::option::of(proptest::prelude::any::<u128>()),
            shape in 0u8..3,
        ) {
            let addr = |ip: u32, port: u16| {
                SocketAddr::from((std::net::Ipv4Addr::from_bits(ip.wrapping_mul(0x0101_0101)), port))
            };
            let mut items: Vec<(OrderKey, usize)> = keys
                .iter()
                .map(|&(first, sip, sport, dip, dport, ssrc)| {
                    ((first, addr(sip, sport), addr(dip, dport), ssrc), 0)
                })
                .collect();
            if let (Some(ip), Some(first)) = (v6, items.first_mut()) {
                first.0.2 = SocketAddr::from((std::net::Ipv6Addr::from_bits(ip), 5));
            }
            match shape {
                0 => items.sort_by_key(|&(key, _)| std::cmp::Reverse(key)),
                1 => items.sort_by_key(|&(key, _)| key),
                _ => {}
            }
            // Each item's input position, to see that ties keep their order.
            for (at, item) in items.iter_mut().enumerate() {
                item.1 = at;
            }
            let mut want = items.clone();
            want.sort_by_key(|&(key, _)| key);
            sort_by_order(&mut items, |&(key, _)| key);
            proptest::prop_assert_eq!(items, want);
        }
    }

    #[test]
    fn sort_by_order_reverses_strictly_descending_input() {
        let key = |first: i64| -> OrderKey {
            let a = SocketAddr::from(([192, 0, 2, 1], 4000));
            (first, a, a, 1)
        };
        let mut v = vec![(key(5), 'a'), (key(3), 'b'), (key(1), 'c')];
        sort_by_order(&mut v, |&(k, _)| k);
        assert_eq!(v, vec![(key(1), 'c'), (key(3), 'b'), (key(5), 'a')]);
        let mut tie = vec![(key(5), 'a'), (key(3), 'b'), (key(3), 'c')];
        sort_by_order(&mut tie, |&(k, _)| k);
        assert_eq!(
            tie,
            vec![(key(3), 'b'), (key(3), 'c'), (key(5), 'a')],
            "ties keep their order"
        );
    }
}

#[cfg(test)]
mod main_payload_tests {
    use super::*;

    /// The choice as `start_stream` made it before `main_payload`: the first audio packet, else
    /// the first measurable one, else the first one, each payload type resolved every time.
    fn simple(
        packets: &[RtpMeta],
        profile: Option<&MediaProfile>,
    ) -> Option<(RtpMeta, RtpMeta, Resolved)> {
        let first = *packets.first()?;
        let main = packets
            .iter()
            .find(|p| resolve_payload(p.pt, profile).0.role == MediaRole::Audio)
            .or_else(|| {
                packets
                    .iter()
                    .find(|p| measurable(resolve_payload(p.pt, profile).0.role))
            })
            .copied()
            .unwrap_or(first);
        Some((first, main, resolve_payload(main.pt, profile)))
    }

    /// Static audio, comfort noise, reserved and dynamic types, some mapped by the profile.
    const TYPES: [u8; 10] = [0, 8, 9, 13, 19, 34, 96, 97, 101, 120];

    fn profile(media: MediaType) -> MediaProfile {
        let map = |payload_type: u8, encoding: &str, clock_hz: u32| RtpMapEntry {
            payload_type,
            encoding: Arc::from(encoding),
            clock_hz,
        };
        MediaProfile {
            rtpmaps: vec![
                map(96, "opus", 48000),
                map(97, "x-unheard-of", 0),
                map(101, "telephone-event", 8000),
                map(8, "pcma", 8000),
            ],
            media,
            ..MediaProfile::default()
        }
    }

    proptest::proptest! {
        #[test]
        fn the_memo_resolves_as_resolve_payload(
            lookups in proptest::collection::vec((0usize..TYPES.len(), 0u8..5), 0..60),
        ) {
            // Profiles that differ only in what the memo must tell apart: none, audio, video,
            // another encoding name for a type, another clock for it.
            let mut renamed = profile(MediaType::Audio);
            renamed.rtpmaps[0].encoding = Arc::from("OPUS");
            renamed.rtpmaps[3].encoding = Arc::from("PCMU");
            let mut reclocked = profile(MediaType::Audio);
            reclocked.rtpmaps[0].clock_hz = 16000;
            reclocked.rtpmaps[2].clock_hz = 48000;
            let profiles = [
                None,
                Some(profile(MediaType::Audio)),
                Some(profile(MediaType::Video)),
                Some(renamed),
                Some(reclocked),
            ];
            let mut memo = ResolveMemo::default();
            for (t, p) in lookups {
                let profile = profiles[usize::from(p)].as_ref();
                proptest::prop_assert_eq!(
                    memo.resolve(TYPES[t], profile),
                    resolve_payload(TYPES[t], profile)
                );
            }
        }

        #[test]
        fn main_payload_is_the_simple_choice(
            types in proptest::collection::vec(0usize..TYPES.len(), 0..20),
            which_profile in 0u8..3,
            seed_type in proptest::option::of(0usize..TYPES.len()),
        ) {
            let profile = match which_profile {
                0 => None,
                1 => Some(profile(MediaType::Audio)),
                _ => Some(profile(MediaType::Video)),
            };
            let profile = profile.as_ref();
            let packets: Vec<RtpMeta> = types
                .iter()
                .enumerate()
                .map(|(i, &t)| RtpMeta {
                    ts_ns: i as i64,
                    seq: i as u16,
                    rtp_ts: 160 * i as u32,
                    pt: TYPES[t],
                    marker: false,
                })
                .collect();
            // A seed is a correct resolution of some payload type, used or not.
            let seed = seed_type.map(|t| (TYPES[t], resolve_payload(TYPES[t], profile)));
            proptest::prop_assert_eq!(
                main_payload(packets.iter(), profile, seed),
                simple(&packets, profile)
            );
        }
    }
}
