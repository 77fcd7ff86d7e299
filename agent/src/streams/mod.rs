//! From decoded datagrams to RTP streams: SIP/SDP learning, the flow table, stream detection
//! (announced or heuristic with probation), RTCP round-trip sampling, and per-stream meters.
//!
//! `Analyzer` is a sans-IO core: it is fed frames with their capture timestamps and never reads
//! a clock, so a live capture and a replay of the same packets give identical results. The
//! per-RTP-packet path allocates nothing in steady state and never touches payload bytes beyond
//! the RTP header.

pub mod calls;
pub mod detect;
pub mod privacy;
pub mod registry;

use std::net::SocketAddr;
use std::sync::Arc;

use hashbrown::{HashMap, HashTable};

use crate::decode::payload::{Payload, RtcpForm, decode_payload};
use crate::decode::rtcp::{Compound, RtcpPacket};
use crate::decode::rtp::RtpPacket;
use crate::decode::sdp::SessionDescription;
use crate::decode::sip::SipMessage;
use crate::decode::{Datagram, Skip, decode_udp};
use crate::quality::codec::{self, CodecInfo, MediaRole};
use crate::quality::jbuf::JitterBufferModel;
use crate::quality::rtt::RttEstimator;
use crate::quality::stream::{
    ClockSource, MeterOutcome, PacketRole, QualitySummary, RtpMeta, StreamMeter, SummaryInputs,
    WindowFigures,
};
use calls::CallTracker;
use detect::{Candidate, CandidateState};
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
    /// One-way network delay assumed when no RTCP round trip is measured.
    pub assumed_one_way_ms: f64,
    /// Most streams tracked at once; beyond it new streams are refused and counted.
    pub max_streams: usize,
    /// Most unconfirmed candidates at once.
    pub max_candidates: usize,
    /// A candidate not confirmed within this time is discarded (metrics-spec §1.4: 2 s).
    pub candidate_timeout_ns: i64,
    /// Most SDP media endpoints and SIP calls remembered.
    pub max_announcements: usize,
    pub max_calls: usize,
    /// Interval reports every this many ns of packet time, on boundaries aligned to multiples of
    /// it (live capture); `None` for offline analysis (whole-stream results only).
    pub report_interval_ns: Option<i64>,
    /// With interval reports: a stream with no packet for this long is closed (final report).
    pub idle_timeout_ns: i64,
    /// `(index, count)`: measure only the RTP flows whose (src, dst) hash falls in this shard
    /// (parallel offline analysis). SIP and RTCP are processed by every shard, so each has the
    /// whole SDP registry and every round-trip sample.
    pub shard: Option<(u32, u32)>,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            jitter_buffer: JitterBufferModel::default(),
            assumed_one_way_ms: 20.0,
            max_streams: 1_000_000,
            max_candidates: 200_000,
            candidate_timeout_ns: 2_000_000_000,
            max_announcements: 200_000,
            max_calls: 200_000,
            report_interval_ns: None,
            idle_timeout_ns: 30_000_000_000,
            shard: None,
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
}

/// One stream under measurement.
#[derive(Debug)]
struct ActiveStream {
    key: StreamKey,
    meter: StreamMeter,
    payload_type: u8,
    codec_name: CodecName,
    clock_source: ClockSource,
    detection: Detection,
    call_id: Option<Arc<str>>,
    profile: Option<Arc<MediaProfile>>,
    /// The main payload type is a real audio codec (not comfort noise or an event).
    audio_resolved: bool,
    /// Start of the current report window (packet time).
    window_start_ns: i64,
    /// A BYE of the stream's call was seen: it closes at the next report boundary.
    bye_ns: Option<i64>,
}

/// A finished stream with its identity and figures.
#[derive(Debug, Clone)]
pub struct StreamResult {
    pub key: StreamKey,
    pub payload_type: u8,
    pub codec: String,
    pub clock_hz: Option<u32>,
    pub clock_source: ClockSource,
    pub detection: Detection,
    /// Call-ID of the SIP dialog that announced the stream (as captured).
    pub call_id: Option<Arc<str>>,
    pub first_ns: i64,
    pub last_ns: i64,
    pub codec_info: CodecInfo,
    pub summary: QualitySummary,
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
    /// Kernel drops noted by the capture worker since the previous report boundary.
    pub capture_drops: u64,
}

/// Everything the analysis produced.
#[derive(Debug)]
pub struct AnalysisResult {
    pub streams: Vec<StreamResult>,
    pub calls: CallTracker,
    pub counters: Counters,
}

/// The offline/live analysis core.
#[derive(Debug)]
pub struct Analyzer {
    cfg: AnalyzerConfig,
    /// Flow table: slots of `active`, found by a precomputed hash of the stream key. Buckets
    /// hold only a `u32`, so the table stays cache-resident with many streams.
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    active: Vec<ActiveStream>,
    closed: Vec<StreamResult>,
    candidates: FastMap<StreamKey, Candidate>,
    registry: SharedRegistry,
    calls: CallTracker,
    rtt: RttEstimator,
    counters: Counters,
    last_sweep_ns: i64,
    /// Next report boundary (packet time), when interval reports are on.
    next_boundary_ns: Option<i64>,
    /// Latest packet time seen.
    now_ns: i64,
    reports: Vec<WindowReport>,
    drops_since_boundary: u64,
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
        Analyzer {
            registry,
            calls: CallTracker::new(cfg.max_calls),
            cfg,
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            active: Vec::with_capacity(reserve),
            closed: Vec::new(),
            candidates: FastMap::default(),
            rtt: RttEstimator::default(),
            counters: Counters::default(),
            last_sweep_ns: i64::MIN,
            next_boundary_ns: None,
            now_ns: i64::MIN,
            reports: Vec::new(),
            drops_since_boundary: 0,
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Streams currently tracked.
    pub fn active_streams(&self) -> usize {
        self.active.len()
    }

    /// Feeds one captured frame. Frames that are not UDP are counted by reason and skipped.
    pub fn on_frame(&mut self, ts_ns: i64, linktype: u32, data: &[u8], wire_len: u32) {
        self.advance_to(ts_ns);
        self.counters.frames += 1;
        self.counters.bytes += data.len() as u64;
        match decode_udp(linktype, data, wire_len) {
            Ok(dg) => self.on_datagram(ts_ns, &dg),
            Err(Skip::NonUdp) => self.counters.skipped.non_udp += 1,
            Err(Skip::Truncated) => self.counters.skipped.truncated += 1,
            Err(Skip::Fragment) => self.counters.skipped.fragments += 1,
            Err(Skip::Malformed) => self.counters.skipped.malformed += 1,
        }
    }

    /// Feeds one UDP datagram: its payload is decoded once ([`decode_payload`]) and the typed
    /// value dispatched, so no payload is sniffed and then parsed again.
    pub fn on_datagram(&mut self, ts_ns: i64, dg: &Datagram<'_>) {
        self.counters.udp += 1;
        match decode_payload(dg.payload) {
            Payload::Rtp(rtp) => self.on_rtp(ts_ns, dg, Some(&rtp)),
            Payload::RtpMalformed(_) => self.on_rtp(ts_ns, dg, None),
            Payload::Rtcp(compound, form) => self.on_rtcp(ts_ns, dg, Some((compound, form))),
            Payload::RtcpInvalid(_) => self.on_rtcp(ts_ns, dg, None),
            Payload::Sip(msg) => self.on_sip_message(ts_ns, msg),
            Payload::Other => {}
        }
    }

    /// An RTP packet (`None`: RTP by its first octet, but malformed).
    fn on_rtp(&mut self, ts_ns: i64, dg: &Datagram<'_>, rtp: Option<&RtpPacket<'_>>) {
        if let Some((index, count)) = self.cfg.shard
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
        if let Some(slot) = self.lookup(&key) {
            self.counters.rtp += 1;
            self.feed(slot, &meta);
            return;
        }
        self.on_unknown_rtp(key, meta);
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
                let (_, clock, _) = resolve_payload(meta.pt, profile.as_deref());
                let c = Candidate::new(meta, profile.is_some(), clock.is_none());
                let state = c.state();
                if let CandidateState::Ready { inferred_clock } = state {
                    // Announced with a known clock: a stream from its first packet, without a
                    // round trip through the candidate table.
                    self.start_stream(key, &c, profile, inferred_clock);
                    return;
                }
                self.candidates.insert(key, c);
                state
            }
        };
        if let CandidateState::Ready { inferred_clock } = state
            && let Some(c) = self.candidates.remove(&key)
        {
            self.start_stream(key, &c, profile, inferred_clock);
        }
    }

    fn start_stream(
        &mut self,
        key: StreamKey,
        candidate: &Candidate,
        profile: Option<Arc<MediaProfile>>,
        inferred_clock: Option<u32>,
    ) {
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
                    return;
                }
            }
        }
        let packets: Vec<RtpMeta> = candidate.replayable().copied().collect();
        let Some(first) = packets.first().copied() else {
            return;
        };
        // The main payload type is the first one that is real audio, else the first one seen.
        let main = packets
            .iter()
            .find(|p| resolve_payload(p.pt, profile.as_deref()).0.role == MediaRole::Audio)
            .or_else(|| {
                packets
                    .iter()
                    .find(|p| measurable(resolve_payload(p.pt, profile.as_deref()).0.role))
            })
            .copied()
            .unwrap_or(first);
        let (mut info, mut clock, mut source) = resolve_payload(main.pt, profile.as_deref());
        let name = codec_name(main.pt, &info, profile.as_deref());
        if clock.is_none()
            && let Some(c) = inferred_clock
        {
            clock = Some(c);
            source = ClockSource::Inferred;
            info = codec::codec_by_name(name.as_str(), c);
        }
        let detection = if profile.is_some() {
            Detection::Sdp
        } else {
            Detection::Heuristic
        };
        let stream = ActiveStream {
            key,
            meter: StreamMeter::new(info, clock, self.cfg.jitter_buffer, &first),
            payload_type: main.pt,
            codec_name: name,
            clock_source: source,
            detection,
            call_id: profile.as_ref().and_then(|p| p.call_id.clone()),
            audio_resolved: measurable(info.role),
            profile,
            window_start_ns: first.ts_ns,
            bye_ns: None,
        };
        let slot = self.active.len();
        self.active.push(stream);
        let hash = self.key_hash(&key);
        let (hasher, active) = (&self.hasher, &self.active);
        self.index
            .insert_unique(hash, slot as u32, |&s| key_hash_of(hasher, active, s));
        for p in &packets {
            self.counters.rtp += 1;
            self.feed(slot, p);
        }
    }

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
        match stream.meter.on_packet(meta, role) {
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
            if let Ok(entry) = self.index.find_entry(hash, |&s| s as usize == last) {
                entry.remove();
            }
            hash
        });
        let mut stream = self.active.swap_remove(slot);
        if let Some(hash) = moved_hash {
            let (hasher, active) = (&self.hasher, &self.active);
            self.index
                .insert_unique(hash, slot as u32, |&s| key_hash_of(hasher, active, s));
        }
        stream.meter.finish();
        let inputs = self.inputs_for(&stream);
        let figures = self
            .cfg
            .report_interval_ns
            .map(|_| stream.meter.take_window(&inputs));
        let Some(result) = self.result_of(&stream) else {
            return;
        };
        match figures {
            Some(figures) => {
                let capture_drops = self.drops_since_boundary;
                self.reports.push(WindowReport {
                    stream: result,
                    window_start_ns: stream.window_start_ns,
                    window_end_ns: end_ns.max(stream.window_start_ns),
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
    pub fn advance_to(&mut self, ts_ns: i64) {
        if ts_ns <= self.now_ns {
            return;
        }
        self.now_ns = ts_ns;
        if ts_ns.saturating_sub(self.last_sweep_ns) >= 1_000_000_000 {
            self.sweep_candidates(ts_ns);
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
        let capture_drops = std::mem::take(&mut self.drops_since_boundary);
        let idle = self.cfg.idle_timeout_ns;
        let mut closing: Vec<(usize, EndReason)> = Vec::new();
        for slot in 0..self.active.len() {
            let Some(stream) = self.active.get(slot) else {
                continue;
            };
            if stream.window_start_ns >= boundary {
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
            let Some(stream) = self.active.get_mut(slot) else {
                continue;
            };
            let looks_like_noise = stream.detection == Detection::Heuristic
                && u64::from(stream.meter.jumps()) > stream.meter.packets();
            let figures = stream.meter.take_window(&inputs);
            let start = std::mem::replace(&mut stream.window_start_ns, boundary);
            if looks_like_noise {
                continue;
            }
            if let Some(result) = self.identity_of(slot) {
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
        self.drops_since_boundary = capture_drops;
        for (slot, reason) in closing.into_iter().rev() {
            self.close_slot(slot, reason, boundary);
        }
        self.drops_since_boundary = 0;
    }

    /// Identity of an active stream for a report (its `summary` is the running total).
    fn identity_of(&self, slot: usize) -> Option<StreamResult> {
        let stream = self.active.get(slot)?;
        let meter = &stream.meter;
        Some(StreamResult {
            key: stream.key,
            payload_type: stream.payload_type,
            codec: stream.codec_name.as_str().to_owned(),
            clock_hz: meter.clock_hz(),
            clock_source: stream.clock_source,
            detection: stream.detection,
            call_id: stream.call_id.clone(),
            first_ns: meter.first_ns(),
            last_ns: meter.last_ns(),
            codec_info: *meter.codec(),
            summary: meter.summary(&self.inputs_for(stream)),
        })
    }

    /// Kernel drops seen by the capture worker; they are attached to the next boundary's reports.
    pub fn note_capture_drops(&mut self, drops: u64) {
        self.drops_since_boundary = self.drops_since_boundary.saturating_add(drops);
    }

    /// Reports produced so far (interval mode); the caller ships them.
    pub fn drain_reports(&mut self) -> std::vec::IntoIter<WindowReport> {
        // Taking the vector (not draining it) returns a boundary's burst of reports to the
        // allocator instead of keeping its capacity for the life of the worker.
        std::mem::take(&mut self.reports).into_iter()
    }

    /// Closes every open stream (agent shutdown, end of a replayed capture): each gets its
    /// final report, `bye` when its call had already ended (it was waiting for the next
    /// boundary), else `shutdown`.
    pub fn close_all(&mut self, end_ns: i64) {
        while let Some(last) = self.active.len().checked_sub(1) {
            let reason = match self.active.get(last).and_then(|s| s.bye_ns) {
                Some(_) => EndReason::Bye,
                None => EndReason::Shutdown,
            };
            self.close_slot(last, reason, end_ns);
        }
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
            codec: stream.codec_name.as_str().to_owned(),
            clock_hz: meter.clock_hz(),
            clock_source: stream.clock_source,
            detection: stream.detection,
            call_id: stream.call_id.clone(),
            first_ns: meter.first_ns(),
            last_ns: meter.last_ns(),
            codec_info: *meter.codec(),
            summary: meter.summary(&inputs),
        })
    }

    fn key_hash(&self, key: &StreamKey) -> u64 {
        hash_key(&self.hasher, key)
    }

    fn lookup(&self, key: &StreamKey) -> Option<usize> {
        let hash = self.key_hash(key);
        self.index
            .find(hash, |&s| {
                self.active.get(s as usize).is_some_and(|a| a.key == *key)
            })
            .map(|&s| s as usize)
    }

    fn unindex(&mut self, slot: usize) {
        let Some(key) = self.active.get(slot).map(|a| a.key) else {
            return;
        };
        let hash = self.key_hash(&key);
        if let Ok(entry) = self.index.find_entry(hash, |&s| s as usize == slot) {
            entry.remove();
        }
    }

    /// An RTCP compound (`None`: RTCP by its first octets, but invalid). Reduced-size RTCP, and
    /// invalid RTCP as an error, count only between known RTCP endpoints.
    fn on_rtcp(&mut self, ts_ns: i64, dg: &Datagram<'_>, rtcp: Option<(Compound<'_>, RtcpForm)>) {
        let compound = match rtcp {
            Some((c, RtcpForm::Compound)) => c,
            Some((c, RtcpForm::ReducedSize)) if self.is_rtcp_endpoint(&dg.src, &dg.dst) => c,
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
    #[allow(dead_code)]
    fn on_sip(&mut self, ts_ns: i64, payload: &[u8]) {
        match SipMessage::parse(payload) {
            Ok(msg) => self.on_sip_message(ts_ns, msg),
            Err(_) => self.counters.sip_invalid += 1,
        }
    }

    fn on_sip_message(&mut self, ts_ns: i64, msg: SipMessage<'_>) {
        self.counters.sip += 1;
        let call_id: Option<Arc<str>> = self
            .calls
            .on_message(ts_ns, &msg)
            .and_then(|i| self.calls.get(i))
            .map(|c| Arc::from(c.call_id.as_str()));
        let ends_call = msg
            .method()
            .is_some_and(|m| m.eq_ignore_ascii_case(b"BYE") || m.eq_ignore_ascii_case(b"CANCEL"));
        if ends_call
            && self.cfg.report_interval_ns.is_some()
            && let Some(id) = &call_id
        {
            for stream in self
                .active
                .iter_mut()
                .filter(|s| s.call_id.as_deref() == Some(&**id))
            {
                stream.bye_ns.get_or_insert(ts_ns);
            }
        }
        let Some(body) = msg.sdp_body() else {
            return;
        };
        let Ok(sdp) = SessionDescription::parse(body) else {
            self.counters.sip_invalid += 1;
            return;
        };
        for media in &sdp.media {
            if media.port == 0 || !media.kind.eq_ignore_ascii_case(b"audio") {
                continue;
            }
            let Some(addr) = media.address(&sdp) else {
                continue;
            };
            let profile = MediaProfile {
                call_id: call_id.clone(),
                rtpmaps: media
                    .rtpmaps
                    .iter()
                    .map(|m| RtpMapEntry {
                        payload_type: m.payload_type,
                        encoding: m.encoding.into(),
                        clock_hz: m.clock_rate,
                    })
                    .collect(),
                ptime_ms: media.ptime,
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
        let before = self.candidates.len();
        self.candidates
            .retain(|_, c| now_ns.saturating_sub(c.last_ns) <= timeout);
        self.counters.candidates_dropped += (before - self.candidates.len()) as u64;
    }

    /// Ends the analysis: every open stream is closed and reported.
    pub fn finish(mut self) -> AnalysisResult {
        // Announced flows still waiting for a clock estimate are streams all the same.
        let pending: Vec<(StreamKey, Candidate)> = self.candidates.drain().collect();
        for (key, c) in pending {
            let profile = self.announced(&key.dst, &key.src);
            if let CandidateState::Ready { inferred_clock } = c.state() {
                self.start_stream(key, &c, profile, inferred_clock);
            } else if profile.is_some() {
                let inferred = c.inferred_clock();
                self.start_stream(key, &c, profile, inferred);
            }
        }
        let end = self.now_ns;
        while let Some(last) = self.active.len().checked_sub(1) {
            self.close_slot(last, EndReason::Shutdown, end);
        }
        let mut streams = std::mem::take(&mut self.closed);
        // Sorts (key, index) pairs and then moves each result once: a comparison sort moving the
        // large results themselves cost several percent of a run with 50,000 streams. Stable.
        streams.sort_by_cached_key(|s| (s.first_ns, s.key.src, s.key.dst, s.key.ssrc));
        AnalysisResult {
            streams,
            calls: self.calls,
            counters: self.counters,
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
            self.audio_resolved = true;
            return PacketRole::Audio;
        }
        PacketRole::SequenceOnly
    }
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

fn key_hash_of(hasher: &foldhash::fast::RandomState, active: &[ActiveStream], slot: u32) -> u64 {
    active
        .get(slot as usize)
        .map_or(0, |a| hash_key(hasher, &a.key))
}

/// Payload roles measured as the stream's voice: known audio codecs, and unknown (dynamic) types,
/// which are rated with the G.711-with-PLC proxy values and flagged.
fn measurable(role: MediaRole) -> bool {
    matches!(role, MediaRole::Audio | MediaRole::Unknown)
}

/// Codec, clock rate and its source for a payload type (metrics-spec §1.5 resolution order).
fn resolve_payload(
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
}

fn codec_name(pt: u8, info: &CodecInfo, profile: Option<&MediaProfile>) -> CodecName {
    if let Some(map) = profile.and_then(|p| p.rtpmap(pt)) {
        return CodecName::Shared(Arc::clone(&map.encoding));
    }
    CodecName::Static(info.name)
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn per_stream_state_fits_in_one_kib() {
        let per_stream = std::mem::size_of::<ActiveStream>() + std::mem::size_of::<u32>() + 1;
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
}
