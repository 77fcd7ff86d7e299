//! Per-stream measurement state: one `StreamMeter` per RTP stream (5-tuple + SSRC), fed packet
//! metadata in arrival order, composing sequence accounting, jitter, the jitter-buffer
//! emulation and the inputs of the E-model.
//!
//! It never sees payload bytes (only `RtpMeta`), never reads a clock, and allocates nothing
//! per packet. Its size is part of the ≤ 1 KiB-per-stream budget (asserted in tests).
//!
//! What only interval reports need (the current window's marks and jitter bins, a
//! [`WindowState`]) lives outside the meter and is passed in by the caller: offline analysis
//! has no windows, and with tens of thousands of streams those 336 bytes a stream (a third of
//! its record) cost page faults and a cache line per packet for figures nobody reads.

use super::burst::MarkovCounts;
use super::codec::{CodecInfo, MediaRole};
use super::emodel;
use super::jbuf::{JbDecision, JitterBuffer, JitterBufferSettings};
use super::jitter::Jitter;
use super::jitter_bins::JitterBins;
use super::seq::{Arrival, Rfc3550Seq, SeqUpdate, SequenceWindow};

/// The fields of one RTP packet the meters need; no payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMeta {
    /// Capture time, ns since the Unix epoch.
    pub ts_ns: i64,
    pub seq: u16,
    pub rtp_ts: u32,
    pub pt: u8,
    pub marker: bool,
}

/// How a stream's RTP clock rate was determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockSource {
    /// RFC 3551 static payload-type table.
    Static,
    /// SDP `a=rtpmap`.
    Sdp,
    /// Operator configuration (`dynamic_pt_defaults`).
    Config,
    /// Inferred from timestamp increments against arrival gaps.
    Inferred,
    /// Not known: counts only, no jitter or MOS.
    Unknown,
}

impl ClockSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockSource::Static => "static",
            ClockSource::Sdp => "sdp",
            ClockSource::Config => "config",
            ClockSource::Inferred => "inferred",
            ClockSource::Unknown => "unknown",
        }
    }
}

/// What a payload type of this stream carries, resolved once per payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketRole {
    /// The stream's main audio codec: counted, jittered, buffered.
    Audio,
    /// Telephone events, or an unknown secondary type: counted in the sequence accounting
    /// only (metrics-spec §1.5).
    SequenceOnly,
    /// Comfort noise (RFC 3389): sequence accounting only, like `SequenceOnly`; the pause that
    /// follows it is DTX silence, not a stop (see [`Silence`]).
    ComfortNoise,
}

/// Where a stream fell silent, for the call's media problems: the longest pause between two
/// packets that DTX does not explain (the packet after it has no marker bit, the one before
/// it is not comfort noise), and whether the stream's last packet was comfort noise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Silence {
    /// `(last packet before, first packet after)` the pause, in packet time.
    pub longest_gap: Option<(i64, i64)>,
    pub ends_in_cn: bool,
}

/// The outcome of feeding one packet to a meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeterOutcome {
    /// The packet was counted.
    Counted,
    /// A jump too large to be the same sequence; held in case the next packet confirms a restart.
    HeldJump,
    /// A confirmed sequence restart: the caller closes this stream and starts a new one with
    /// `held` followed by the current packet.
    Restart { held: RtpMeta },
}

/// Inputs for the quality summary that do not live in the meter itself.
#[derive(Debug, Clone, Copy)]
pub struct SummaryInputs {
    /// Session round-trip time from RTCP, ms.
    pub rtt_ms: Option<f64>,
    /// One-way network delay to assume without RTT (project default 20 ms).
    pub assumed_one_way_ms: f64,
}

/// Quality figures of a whole stream (or of a window, later), ready for reporting.
#[derive(Debug, Clone, PartialEq)]
pub struct QualitySummary {
    pub packets: u64,
    pub expected: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub lost_rfc3550: i64,
    pub jitter_ms: Option<f64>,
    pub max_jitter_ms: Option<f64>,
    pub mean_jitter_ms: Option<f64>,
    pub max_delta_ms: f64,
    pub burst_ratio: f64,
    pub burst_ratio_out_of_range: bool,
    pub loss_bursts: u64,
    pub max_loss_burst: u64,
    pub jb_discarded: u64,
    /// Times the emulated buffer re-anchored on persistent lateness (metrics-spec §9.2a).
    pub jb_resyncs: u32,
    pub effective_loss_pct: f64,
    pub rtt_ms: Option<f64>,
    pub delay_ms: Option<f64>,
    pub delay_assumed: bool,
    pub ptime_ms: Option<f64>,
    pub r_factor: Option<f64>,
    pub mos: Option<f64>,
}

/// Figures of one report window (interval report): counters are differences since the
/// previous window, so over all windows of a stream they sum to its totals.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowFigures {
    pub packets: u64,
    /// Sequence positions classified in this window, and how many were never received.
    pub expected: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub jitter_ms: Option<f64>,
    pub max_jitter_ms: Option<f64>,
    pub mean_jitter_ms: Option<f64>,
    pub jitter_sum_ms: f64,
    pub jitter_samples: u64,
    /// The window's per-packet jitter estimates, binned (one per jitter sample).
    pub jitter_bins: JitterBins,
    pub max_delta_ms: f64,
    pub transitions: MarkovCounts,
    pub burst_ratio: f64,
    pub jb_discarded: u64,
    pub effective_loss_pct: f64,
    pub rtt_ms: Option<f64>,
    pub delay_ms: Option<f64>,
    pub r_factor: Option<f64>,
    pub mos: Option<f64>,
}

/// Cumulative values at the start of the current window.
///
/// `repr(C)`, the two maxima first: they are the only fields every packet updates.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct WindowMarks {
    /// Maxima within the current window.
    max_jitter_ms: f64,
    max_delta_ns: i64,
    packets: u64,
    finalized: u64,
    finalized_lost: u64,
    duplicates: u64,
    reordered: u64,
    discarded: u64,
    markov: MarkovCounts,
    jitter_sum_ms: f64,
    jitter_samples: u64,
}

/// The state of a stream's current report window (interval reports only): the cumulative
/// values at its start, its maxima and its per-packet jitter bins. Given to
/// [`StreamMeter::on_packet`] by callers that report windows, and taken by
/// [`StreamMeter::take_window`]; offline analysis keeps none (see the module comment).
///
/// `repr(C)`: the maxima, updated by every packet, come first; then one line of the bins per
/// packet.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub struct WindowState {
    marks: WindowMarks,
    /// Per-packet jitter of the current window.
    jitter_bins: JitterBins,
}

/// Per-stream meters. Created from the stream's first counted packet.
///
/// `repr(C)` and the field order are for the cache (with many streams every line of the state
/// an RTP packet touches is a likely miss): the fields each packet reads or writes come first,
/// contiguous; the codec, read only at stream start and at the end, comes last. The window
/// state is not here (see [`WindowState`]).
#[derive(Debug)]
#[repr(C)]
pub struct StreamMeter {
    packets: u64,
    first_ns: i64,
    last_ns: i64,
    max_delta_ns: i64,
    seq: Rfc3550Seq,
    /// Extended RTP timestamp of the first and of the previous audio packet.
    /// (Non-zero: extended timestamps have bit 32 set; the niche keeps the meter 8 bytes
    /// smaller.)
    ts_base: Option<std::num::NonZeroU64>,
    ts_prev_ext: u64,
    /// Extended sequence number of the previous audio packet, for the ptime estimate.
    prev_audio_ext: Option<u64>,
    clock_hz: Option<u32>,
    prev_audio_ts: u32,
    /// Boyer–Moore majority vote over timestamp increments of consecutive packets.
    ptime_candidate: u32,
    ptime_votes: u32,
    /// The longest pause not explained by DTX, as ms after `first_ns`, and its length in ms
    /// in the low 31 bits of `gap_ms_cn`, whose top bit says the last packet was comfort noise:
    /// 8 bytes in all, because the per-stream state must stay within 1 KiB. See [`Silence`].
    gap_start_ms: u32,
    gap_ms_cn: u32,
    /// Packets that jumped too far to belong to the sequence (not counted).
    jumps: u32,
    window: SequenceWindow,
    jitter: Jitter,
    jbuf: JitterBuffer,
    held_jump: Option<RtpMeta>,
    codec: CodecInfo,
}

impl StreamMeter {
    /// Bytes from the start of the meter that `on_packet` may read or write: everything before
    /// the codec (the codec, last, is read only at stream start and at the end).
    pub const HOT_BYTES: usize = std::mem::offset_of!(StreamMeter, codec);
}

/// The top bit of `StreamMeter::gap_ms_cn`: the last packet was comfort noise.
const CN_BIT: u32 = 1 << 31;

impl StreamMeter {
    /// Starts a meter with the stream's first counted packet (not yet fed: call `on_packet`).
    /// `jitter_buffer`: the emulated buffer (a bare model gets the default re-synchronisation).
    pub fn new(
        codec: CodecInfo,
        clock_hz: Option<u32>,
        jitter_buffer: impl Into<JitterBufferSettings>,
        first: &RtpMeta,
    ) -> Self {
        StreamMeter {
            codec,
            clock_hz,
            first_ns: first.ts_ns,
            last_ns: first.ts_ns,
            max_delta_ns: 0,
            packets: 0,
            seq: Rfc3550Seq::new_validated(first.seq),
            window: SequenceWindow::new(first.seq),
            jitter: Jitter::default(),
            jbuf: JitterBuffer::new(jitter_buffer),
            ts_base: None,
            ts_prev_ext: 0,
            prev_audio_ext: None,
            prev_audio_ts: 0,
            ptime_candidate: 0,
            ptime_votes: 0,
            held_jump: None,
            jumps: 0,
            gap_start_ms: 0,
            gap_ms_cn: 0,
        }
    }

    /// Replaces the codec while no audio packet has been measured yet (a stream that opened
    /// with comfort noise or a telephone event learns its real codec from the first audio packet).
    pub fn set_codec(&mut self, codec: CodecInfo, clock_hz: Option<u32>) -> bool {
        if self.ts_base.is_some() {
            return false;
        }
        self.codec = codec;
        self.clock_hz = clock_hz;
        true
    }

    /// Packets rejected as sequence jumps that never became a restart.
    pub fn jumps(&self) -> u32 {
        self.jumps
    }

    pub fn codec(&self) -> &CodecInfo {
        &self.codec
    }

    pub fn clock_hz(&self) -> Option<u32> {
        self.clock_hz
    }

    pub fn first_ns(&self) -> i64 {
        self.first_ns
    }

    pub fn last_ns(&self) -> i64 {
        self.last_ns
    }

    /// The stream's longest pause not explained by DTX, and whether it ends in comfort noise.
    pub fn silence(&self) -> Silence {
        const MS: i64 = 1_000_000;
        let start = self.first_ns + i64::from(self.gap_start_ms) * MS;
        let gap_ms = self.gap_ms_cn & !CN_BIT;
        Silence {
            longest_gap: (gap_ms > 0).then(|| (start, start + i64::from(gap_ms) * MS)),
            ends_in_cn: self.gap_ms_cn & CN_BIT != 0,
        }
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Feeds one packet in arrival order. The first call must be with the packet given to `new`.
    /// `window`: the stream's current report window, when windows are reported (always the
    /// same one until [`StreamMeter::take_window`] closes it); `None` offline.
    #[inline]
    pub fn on_packet(
        &mut self,
        meta: &RtpMeta,
        role: PacketRole,
        window: Option<&mut WindowState>,
    ) -> MeterOutcome {
        if self.packets > 0 {
            match self.seq.update(meta.seq) {
                SeqUpdate::Valid | SeqUpdate::Probation => {}
                SeqUpdate::BadJump => {
                    self.jumps = self.jumps.saturating_add(1);
                    self.held_jump = Some(*meta);
                    return MeterOutcome::HeldJump;
                }
                SeqUpdate::Restarted => {
                    if let Some(held) = self.held_jump.take() {
                        return MeterOutcome::Restart { held };
                    }
                    // A restart without a held packet cannot happen with RFC 3550 A.1 (the
                    // jump packet is always the one before); count the packet normally.
                }
            }
        }
        self.held_jump = None;
        self.count(meta, role, window);
        MeterOutcome::Counted
    }

    fn count(&mut self, meta: &RtpMeta, role: PacketRole, mut window: Option<&mut WindowState>) {
        if self.packets > 0 {
            let delta = meta.ts_ns.saturating_sub(self.last_ns);
            if delta > self.max_delta_ns {
                self.max_delta_ns = delta;
            }
            if let Some(w) = window.as_deref_mut()
                && delta > w.marks.max_delta_ns
            {
                w.marks.max_delta_ns = delta;
            }
            let delta_ms = u32::try_from(delta / 1_000_000).map_or(!CN_BIT, |d| d.min(!CN_BIT));
            let after_cn = self.gap_ms_cn & CN_BIT != 0;
            if delta_ms > self.gap_ms_cn & !CN_BIT && !meta.marker && !after_cn {
                self.gap_ms_cn = delta_ms | (self.gap_ms_cn & CN_BIT);
                let start_ms = (self.last_ns - self.first_ns) / 1_000_000;
                self.gap_start_ms = u32::try_from(start_ms).unwrap_or(u32::MAX);
            }
        }
        if role == PacketRole::ComfortNoise {
            self.gap_ms_cn |= CN_BIT;
        } else {
            self.gap_ms_cn &= !CN_BIT;
        }
        self.packets += 1;
        if meta.ts_ns > self.last_ns {
            self.last_ns = meta.ts_ns;
        }
        let arrival = if self.packets == 1 {
            // The window counted the first packet when it was created.
            Arrival {
                ext: self.window.ext_hi(),
                duplicate: false,
                reordered: false,
            }
        } else {
            self.window.on_packet(meta.seq)
        };
        if role != PacketRole::Audio {
            return;
        }
        let Some(clock) = self.clock_hz else {
            return;
        };
        // RTP timestamps extended to 64 bits against the previous audio packet (±2^31).
        let ts_ext = match self.ts_base {
            None => {
                let ext = (1u64 << 32) | u64::from(meta.rtp_ts);
                self.ts_base = std::num::NonZeroU64::new(ext);
                ext
            }
            Some(_) => extend_ts(self.ts_prev_ext, meta.rtp_ts),
        };
        self.ts_prev_ext = ts_ext;

        let samples_before = self.jitter.samples();
        self.jitter.on_packet(meta.ts_ns, meta.rtp_ts, clock);

        let jitter_now_ms = self.jitter.jitter_ms(clock);
        if let Some(w) = window {
            if self.jitter.samples() != samples_before {
                w.jitter_bins.record_ms(jitter_now_ms);
            }
            if jitter_now_ms > w.marks.max_jitter_ms {
                w.marks.max_jitter_ms = jitter_now_ms;
            }
        }
        let base = self.ts_base.map_or(ts_ext, std::num::NonZeroU64::get);
        let media_ms = (ts_ext as f64 - base as f64) * 1000.0 / f64::from(clock);
        let arrival_ms = (meta.ts_ns - self.first_ns) as f64 / 1e6;
        let decision = self.jbuf.on_packet(
            media_ms,
            arrival_ms,
            meta.marker,
            jitter_now_ms,
            arrival.duplicate,
        );
        if decision == JbDecision::Late {
            self.window.mark_discarded(arrival.ext);
        }

        if !arrival.duplicate {
            if let Some(prev) = self.prev_audio_ext
                && arrival.ext == prev + 1
            {
                let inc = meta.rtp_ts.wrapping_sub(self.prev_audio_ts);
                // Ignore implausible increments (talkspurt gaps, > 1 s of audio).
                if inc > 0 && u64::from(inc) * 1000 <= u64::from(clock) * 1000 {
                    self.vote_ptime(inc);
                }
            }
            self.prev_audio_ext = Some(arrival.ext);
            self.prev_audio_ts = meta.rtp_ts;
        }
    }

    fn vote_ptime(&mut self, inc: u32) {
        if self.ptime_votes == 0 {
            self.ptime_candidate = inc;
            self.ptime_votes = 1;
        } else if self.ptime_candidate == inc {
            self.ptime_votes = self.ptime_votes.saturating_add(1);
        } else {
            self.ptime_votes -= 1;
        }
    }

    /// Packet time in ms (the timestamp increment most packets show), if known.
    pub fn ptime_ms(&self) -> Option<f64> {
        let clock = self.clock_hz?;
        (self.ptime_votes > 0).then(|| f64::from(self.ptime_candidate) * 1000.0 / f64::from(clock))
    }

    /// Closes the reorder window: every position becomes final. Call once at stream end.
    pub fn finish(&mut self) {
        self.window.finish();
    }

    /// Figures since the previous window (`window`, the state every packet since was fed
    /// with), and starts the next one in it. After `finish` (the final window) every remaining
    /// position is counted, so the windows sum exactly to the totals.
    pub fn take_window(
        &mut self,
        window: &mut WindowState,
        inputs: &SummaryInputs,
    ) -> WindowFigures {
        let (finalized, finalized_lost) = if self.window.is_finished() {
            // Positions the finalizer never saw (a late packet below the first) still belong to the totals.
            (
                self.window.expected().max(self.window.finalized().0),
                self.window.lost().max(self.window.finalized().1),
            )
        } else {
            self.window.finalized()
        };
        let m = window.marks;
        let markov_now = self.window.markov();
        let transitions = MarkovCounts {
            n00: markov_now.n00.saturating_sub(m.markov.n00),
            n01: markov_now.n01.saturating_sub(m.markov.n01),
            n10: markov_now.n10.saturating_sub(m.markov.n10),
            n11: markov_now.n11.saturating_sub(m.markov.n11),
        };
        let expected = finalized.saturating_sub(m.finalized);
        let lost = finalized_lost.saturating_sub(m.finalized_lost);
        let discarded = self.window.discarded().saturating_sub(m.discarded);
        let effective_loss_pct = if expected == 0 {
            0.0
        } else {
            100.0 * (lost + discarded).min(expected) as f64 / expected as f64
        };
        let burst_ratio = transitions.burst_ratio();
        let jitter_known = self.clock_hz.is_some() && self.ts_base.is_some();
        let jitter_sum_ms = self.jitter.sum_ms() - m.jitter_sum_ms;
        let jitter_samples = self.jitter.samples().saturating_sub(m.jitter_samples);
        let (jitter_ms, max_jitter_ms, mean_jitter_ms) = match self.clock_hz {
            Some(c) if jitter_known => (
                Some(self.jitter.jitter_ms(c)),
                Some(m.max_jitter_ms),
                Some(if jitter_samples == 0 {
                    0.0
                } else {
                    jitter_sum_ms / jitter_samples as f64
                }),
            ),
            _ => (None, None, None),
        };
        let (delay_ms, r_factor, mos) = self.rate(inputs, effective_loss_pct, burst_ratio);
        let figures = WindowFigures {
            packets: self.packets.saturating_sub(m.packets),
            expected,
            lost,
            duplicates: self.window.duplicates().saturating_sub(m.duplicates),
            reordered: self.window.reordered().saturating_sub(m.reordered),
            jitter_ms,
            max_jitter_ms,
            mean_jitter_ms,
            jitter_sum_ms,
            jitter_samples,
            jitter_bins: std::mem::take(&mut window.jitter_bins),
            max_delta_ms: m.max_delta_ns as f64 / 1e6,
            transitions,
            burst_ratio,
            jb_discarded: if jitter_known { discarded } else { 0 },
            effective_loss_pct,
            rtt_ms: inputs.rtt_ms,
            delay_ms,
            r_factor,
            mos,
        };
        window.marks = WindowMarks {
            packets: self.packets,
            finalized,
            finalized_lost,
            duplicates: self.window.duplicates(),
            reordered: self.window.reordered(),
            discarded: self.window.discarded(),
            markov: markov_now,
            jitter_sum_ms: self.jitter.sum_ms(),
            jitter_samples: self.jitter.samples(),
            max_jitter_ms: 0.0,
            max_delta_ns: 0,
        };
        figures
    }

    /// Mouth-to-ear delay, R and MOS for the given loss figures (None when not ratable).
    fn rate(
        &self,
        inputs: &SummaryInputs,
        loss_pct: f64,
        burst_ratio: f64,
    ) -> (Option<f64>, Option<f64>, Option<f64>) {
        let jitter_known = self.clock_hz.is_some() && self.ts_base.is_some();
        if !(matches!(self.codec.role, MediaRole::Audio | MediaRole::Unknown) && jitter_known) {
            return (None, None, None);
        }
        let net = inputs
            .rtt_ms
            .map_or(inputs.assumed_one_way_ms, |rtt| rtt / 2.0);
        let codec_delay =
            super::codec::codec_delay_ms(&self.codec, self.ptime_ms().unwrap_or(20.0));
        let delay = net + self.jbuf.delay_ms() + codec_delay;
        let (r, m) = emodel::rate(self.codec.ie, self.codec.bpl, loss_pct, burst_ratio, delay);
        (Some(delay), Some(r), Some(m))
    }

    /// The stream's figures; call after `finish` for whole-stream totals.
    pub fn summary(&self, inputs: &SummaryInputs) -> QualitySummary {
        let expected = self.window.expected();
        let lost = self.window.lost();
        let discarded = self.window.discarded();
        let effective_loss_pct = if expected == 0 {
            0.0
        } else {
            100.0 * (lost + discarded) as f64 / expected as f64
        };
        let markov = self.window.markov();
        let burst_ratio = markov.burst_ratio();
        let clock = self.clock_hz;
        let jitter_known = clock.is_some() && self.ts_base.is_some();
        let (jitter_ms, max_jitter_ms, mean_jitter_ms) = match clock {
            Some(c) if jitter_known => (
                Some(self.jitter.jitter_ms(c)),
                Some(self.jitter.max_ms()),
                Some(self.jitter.mean_ms()),
            ),
            _ => (None, None, None),
        };
        let ptime_ms = self.ptime_ms();
        let (delay_ms, r_factor, mos) = self.rate(inputs, effective_loss_pct, burst_ratio);
        let delay_assumed = inputs.rtt_ms.is_none();
        QualitySummary {
            packets: self.packets,
            expected,
            lost,
            duplicates: self.window.duplicates(),
            reordered: self.window.reordered(),
            lost_rfc3550: expected as i64 - self.packets as i64,
            jitter_ms,
            max_jitter_ms,
            mean_jitter_ms,
            max_delta_ms: self.max_delta_ns as f64 / 1e6,
            burst_ratio,
            burst_ratio_out_of_range: markov.out_of_range(),
            loss_bursts: self.window.loss_bursts(),
            max_loss_burst: self.window.max_loss_burst(),
            jb_discarded: if jitter_known { discarded } else { 0 },
            jb_resyncs: self.jbuf.resyncs(),
            effective_loss_pct,
            rtt_ms: inputs.rtt_ms,
            delay_ms,
            delay_assumed,
            ptime_ms,
            r_factor,
            mos,
        }
    }
}

/// Extends a 32-bit RTP timestamp to 64 bits by the nearest-candidate rule (±2^31 of `prev`).
pub fn extend_ts(prev: u64, ts: u32) -> u64 {
    let cand = (prev & !0xFFFF_FFFF) | u64::from(ts);
    if cand.wrapping_add(0x8000_0000) < prev {
        cand.wrapping_add(1 << 32)
    } else if prev.wrapping_add(0x8000_0000) < cand {
        cand.wrapping_sub(1 << 32)
    } else {
        cand
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec;
    use super::super::jbuf::JitterBufferModel;
    use super::*;

    fn pcmu() -> CodecInfo {
        codec::codec_for_static_pt(0).expect("PT 0 is PCMU")
    }

    fn meta(ts_ms: f64, seq: u16, rtp_ts: u32) -> RtpMeta {
        RtpMeta {
            ts_ns: (ts_ms * 1e6) as i64,
            seq,
            rtp_ts,
            pt: 0,
            marker: false,
        }
    }

    fn feed(packets: &[RtpMeta]) -> StreamMeter {
        let mut m = StreamMeter::new(
            pcmu(),
            Some(8000),
            JitterBufferModel::default(),
            &packets[0],
        );
        for p in packets {
            assert_eq!(
                m.on_packet(p, PacketRole::Audio, None),
                MeterOutcome::Counted
            );
        }
        m.finish();
        m
    }

    /// [`feed`] with a report window (interval reports): the meter and the window's state.
    fn feed_windowed(packets: &[RtpMeta]) -> (StreamMeter, WindowState) {
        let mut m = StreamMeter::new(
            pcmu(),
            Some(8000),
            JitterBufferModel::default(),
            &packets[0],
        );
        let mut w = WindowState::default();
        for p in packets {
            assert_eq!(
                m.on_packet(p, PacketRole::Audio, Some(&mut w)),
                MeterOutcome::Counted
            );
        }
        m.finish();
        (m, w)
    }

    #[test]
    fn meter_size_fits_the_per_stream_budget() {
        // 864 bytes with the window state inside; 528 without it (offline analysis).
        assert!(
            std::mem::size_of::<StreamMeter>() <= 528,
            "{}",
            std::mem::size_of::<StreamMeter>()
        );
        assert!(
            std::mem::size_of::<WindowState>() <= 336,
            "{}",
            std::mem::size_of::<WindowState>()
        );
    }

    #[test]
    fn t_jit_1_per_packet_jitter_bins() {
        // metrics-spec §10.7: per-packet J of T-JIT-1 is 0, 0.3125, 0.60546875, 0.567626953,
        // 1.157150269, 1.709828377, 1.602964103 ms. In 10 µs units (truncated) and bins
        // (jitter_bins.rs): 0 → exact, 31 → [30,32), 60 → [60,64), 56 → [56,60),
        // 115 → [112,120), 170 and 160 → [160,176); reported at the bins' middles in µs.
        let arrivals = [0.0, 20.0, 45.0, 60.0, 80.0, 110.0, 120.0, 140.0];
        let pkts: Vec<RtpMeta> = arrivals
            .iter()
            .enumerate()
            .map(|(i, a)| meta(*a, 100 + i as u16, 160 * i as u32))
            .collect();
        let (mut m, mut window) = feed_windowed(&pkts);
        let w = m.take_window(
            &mut window,
            &SummaryInputs {
                rtt_ms: None,
                assumed_one_way_ms: 20.0,
            },
        );
        assert_eq!(w.jitter_samples, 7);
        let bins: Vec<(u64, u64)> = w.jitter_bins.iter().collect();
        assert_eq!(
            bins,
            vec![(5, 1), (310, 1), (580, 1), (620, 1), (1_160, 1), (1_680, 2)]
        );
    }

    #[test]
    fn t_jit_1_through_the_meter() {
        // metrics-spec §4.3: arrival ms and timestamps; J after the last packet 12.8237… ts units.
        let arrivals = [0.0, 20.0, 45.0, 60.0, 80.0, 110.0, 120.0, 140.0];
        let pkts: Vec<RtpMeta> = arrivals
            .iter()
            .enumerate()
            .map(|(i, a)| meta(*a, 100 + i as u16, 160 * i as u32))
            .collect();
        let m = feed(&pkts);
        let s = m.summary(&SummaryInputs {
            rtt_ms: None,
            assumed_one_way_ms: 20.0,
        });
        assert_eq!(
            (s.packets, s.expected, s.lost, s.duplicates, s.reordered),
            (8, 8, 0, 0, 0)
        );
        let j = s.jitter_ms.expect("clock known");
        assert!((j - 12.823712825775146 / 8.0).abs() < 1e-9, "{j}");
        assert!((s.max_jitter_ms.unwrap_or(0.0) - 1.709828377).abs() < 1e-6);
        assert!((s.max_delta_ms - 30.0).abs() < 1e-9);
        assert_eq!(s.ptime_ms, Some(20.0));
    }

    #[test]
    fn t_seq_1_counts_through_the_meter() {
        // metrics-spec §3.1 arrival order; monitor counters expected 13, unique 10, lost 3.
        let seqs = [65533u16, 65534, 65535, 0, 2, 1, 1, 4, 5, 8, 9];
        let pkts: Vec<RtpMeta> = seqs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let ext = if *s > 60000 {
                    u32::from(*s)
                } else {
                    65536 + u32::from(*s)
                };
                meta(20.0 * i as f64, *s, 160 * (ext - 65533))
            })
            .collect();
        let m = feed(&pkts);
        let s = m.summary(&SummaryInputs {
            rtt_ms: None,
            assumed_one_way_ms: 20.0,
        });
        assert_eq!(s.packets, 11);
        assert_eq!(s.expected, 13);
        assert_eq!(s.lost, 3);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.reordered, 1);
        assert_eq!(s.lost_rfc3550, 2);
    }

    #[test]
    fn clean_g711_gives_the_reference_mos_for_assumed_delay() {
        // 50 packets, perfect 20 ms spacing: T = 20 (assumed) + 60 (F60) + 20.125 (G.711 at 20 ms).
        let pkts: Vec<RtpMeta> = (0..50)
            .map(|i| meta(20.0 * i as f64, i as u16, 160 * i as u32))
            .collect();
        let m = feed(&pkts);
        let s = m.summary(&SummaryInputs {
            rtt_ms: None,
            assumed_one_way_ms: 20.0,
        });
        let delay = s.delay_ms.expect("delay");
        assert!((delay - 100.125).abs() < 1e-9, "{delay}");
        // Reference value from the sample truth files (a_clean_pcmu: 90.661182 / 4.35486).
        assert!((s.r_factor.expect("r") - 90.661182).abs() < 1e-4);
        assert!((s.mos.expect("mos") - 4.35486).abs() < 1e-4);
        assert!(s.delay_assumed);
    }

    #[test]
    fn t_jb_3_through_the_meter() {
        // metrics-spec §9.2a T-JB-3 as RTP: 20 ms packets, the path delay steps up 200 ms at
        // packet 4. F(60) discards packets 4 and 5 and re-anchors on 6: Ppl = 100·2/7.
        let rows = [
            (0.0, 100.0),
            (20.0, 120.0),
            (40.0, 140.0),
            (60.0, 360.0),
            (80.0, 380.0),
            (100.0, 400.0),
            (120.0, 420.0),
        ];
        let pkts: Vec<RtpMeta> = rows
            .iter()
            .enumerate()
            .map(|(i, (s, a))| meta(*a, 1 + i as u16, (*s * 8.0) as u32))
            .collect();
        let m = feed(&pkts);
        let s = m.summary(&SummaryInputs {
            rtt_ms: None,
            assumed_one_way_ms: 20.0,
        });
        assert_eq!((s.expected, s.lost, s.jb_discarded), (7, 0, 2));
        assert_eq!(s.jb_resyncs, 1);
        assert!((s.effective_loss_pct - 28.571).abs() < 1e-3, "{s:?}");
        // The setting reaches the buffer: with K = 0 (off) the step costs every later packet.
        let off = JitterBufferSettings {
            model: JitterBufferModel::default(),
            resync_after_late: 0,
        };
        let mut m = StreamMeter::new(pcmu(), Some(8000), off, &pkts[0]);
        for p in &pkts {
            m.on_packet(p, PacketRole::Audio, None);
        }
        m.finish();
        let s = m.summary(&SummaryInputs {
            rtt_ms: None,
            assumed_one_way_ms: 20.0,
        });
        assert_eq!((s.jb_discarded, s.jb_resyncs), (4, 0));
    }

    #[test]
    fn rtt_replaces_the_assumed_delay() {
        let pkts: Vec<RtpMeta> = (0..50)
            .map(|i| meta(20.0 * i as f64, i as u16, 160 * i as u32))
            .collect();
        let m = feed(&pkts);
        let s = m.summary(&SummaryInputs {
            rtt_ms: Some(80.015274),
            assumed_one_way_ms: 20.0,
        });
        // i_rtcp truth: delay 120.132637, R 90.261627, MOS 4.345357.
        assert!((s.delay_ms.expect("delay") - 120.132637).abs() < 1e-6);
        assert!((s.r_factor.expect("r") - 90.261627).abs() < 1e-4);
        assert!(!s.delay_assumed);
    }

    #[test]
    fn big_jump_then_sequential_packet_is_a_restart() {
        let mut pkts: Vec<RtpMeta> = (0..10)
            .map(|i| meta(20.0 * i as f64, 1000 + i as u16, 160 * i as u32))
            .collect();
        let first = pkts[0];
        let mut m = StreamMeter::new(pcmu(), Some(8000), JitterBufferModel::default(), &first);
        for p in pkts.drain(..) {
            assert_eq!(
                m.on_packet(&p, PacketRole::Audio, None),
                MeterOutcome::Counted
            );
        }
        let jump = meta(220.0, 40000, 99_999);
        assert_eq!(
            m.on_packet(&jump, PacketRole::Audio, None),
            MeterOutcome::HeldJump
        );
        let next = meta(240.0, 40001, 100_159);
        assert_eq!(
            m.on_packet(&next, PacketRole::Audio, None),
            MeterOutcome::Restart { held: jump }
        );
        assert_eq!(m.packets(), 10);
    }

    #[test]
    fn sequence_only_packets_count_but_do_not_jitter() {
        let mut pkts: Vec<RtpMeta> = (0..20)
            .map(|i| meta(20.0 * i as f64, i as u16, 160 * i as u32))
            .collect();
        // A telephone-event packet keeps an old timestamp and arrives late: it must not disturb jitter.
        let first = pkts[0];
        let mut m = StreamMeter::new(pcmu(), Some(8000), JitterBufferModel::default(), &first);
        let event = RtpMeta {
            ts_ns: 400_000_000 + 3_000_000,
            seq: 20,
            rtp_ts: 0,
            pt: 101,
            marker: false,
        };
        for p in pkts.drain(..) {
            m.on_packet(&p, PacketRole::Audio, None);
        }
        m.on_packet(&event, PacketRole::SequenceOnly, None);
        m.on_packet(&meta(420.0, 21, 160 * 21), PacketRole::Audio, None);
        m.finish();
        let s = m.summary(&SummaryInputs {
            rtt_ms: None,
            assumed_one_way_ms: 20.0,
        });
        assert_eq!(s.packets, 22);
        assert_eq!(s.expected, 22);
        assert_eq!(s.jitter_ms, Some(0.0));
    }

    #[test]
    fn windows_sum_to_the_totals() {
        // 2000 packets across the seq wrap: every 37th lost, every 53rd duplicated, pairs swapped
        // every 41, a 90 ms spike every 97 (late for F(60)); a window is taken every 137 packets.
        let mut arrivals: Vec<RtpMeta> = Vec::new();
        for i in 0..2000u32 {
            if i % 37 == 5 {
                continue;
            }
            let spike = if i % 97 == 50 { 90.0 } else { 0.0 };
            let p = meta(
                20.0 * f64::from(i) + spike,
                64000u16.wrapping_add(i as u16),
                160 * i,
            );
            arrivals.push(p);
            if i % 53 == 7 {
                arrivals.push(RtpMeta {
                    ts_ns: p.ts_ns + 500_000,
                    ..p
                });
            }
        }
        for k in (0..arrivals.len() - 1).step_by(41) {
            arrivals.swap(k, k + 1);
        }
        let mut m = StreamMeter::new(
            pcmu(),
            Some(8000),
            JitterBufferModel::default(),
            &arrivals[0],
        );
        let inputs = SummaryInputs {
            rtt_ms: None,
            assumed_one_way_ms: 20.0,
        };
        let mut windows = Vec::new();
        let mut state = WindowState::default();
        for (n, p) in arrivals.iter().enumerate() {
            m.on_packet(p, PacketRole::Audio, Some(&mut state));
            if n % 137 == 136 {
                windows.push(m.take_window(&mut state, &inputs));
            }
        }
        m.finish();
        windows.push(m.take_window(&mut state, &inputs));
        let t = m.summary(&inputs);
        let sum = |f: fn(&WindowFigures) -> u64| windows.iter().map(f).sum::<u64>();
        assert_eq!(sum(|w| w.packets), t.packets);
        assert_eq!(sum(|w| w.expected), t.expected);
        assert_eq!(sum(|w| w.lost), t.lost);
        assert_eq!(sum(|w| w.duplicates), t.duplicates);
        assert_eq!(sum(|w| w.reordered), t.reordered);
        assert_eq!(sum(|w| w.jb_discarded), t.jb_discarded);
        assert!(
            t.lost > 40 && t.duplicates > 30 && t.jb_discarded > 10,
            "{t:?}"
        );
        let mut markov = MarkovCounts::default();
        for w in &windows {
            markov.add(&w.transitions);
        }
        assert!((markov.burst_ratio() - t.burst_ratio).abs() < 1e-12);
        for w in &windows {
            assert_eq!(w.jitter_bins.total(), w.jitter_samples);
        }
        let jitter_sum: f64 = windows.iter().map(|w| w.jitter_sum_ms).sum();
        let samples: u64 = sum(|w| w.jitter_samples);
        assert!((jitter_sum / samples as f64 - t.mean_jitter_ms.unwrap_or(0.0)).abs() < 1e-9);
        let max = windows
            .iter()
            .filter_map(|w| w.max_jitter_ms)
            .fold(0.0, f64::max);
        assert!((max - t.max_jitter_ms.unwrap_or(0.0)).abs() < 1e-12);
    }

    #[test]
    fn totals_do_not_depend_on_the_window_state() {
        // Offline analysis feeds no window state; the whole-stream figures must be those of a
        // meter that reports windows (here: a window every 50 packets, a restart-free stream
        // with loss, spikes, duplicates and reordering).
        let mut arrivals: Vec<RtpMeta> = Vec::new();
        for i in 0..1500u32 {
            if i % 29 == 3 {
                continue;
            }
            let spike = if i % 71 == 9 { 120.0 } else { f64::from(i % 7) };
            let p = meta(
                20.0 * f64::from(i) + spike,
                65000u16.wrapping_add(i as u16),
                160 * i,
            );
            arrivals.push(p);
            if i % 61 == 11 {
                arrivals.push(p);
            }
        }
        for k in (0..arrivals.len() - 1).step_by(33) {
            arrivals.swap(k, k + 1);
        }
        let inputs = SummaryInputs {
            rtt_ms: Some(80.0),
            assumed_one_way_ms: 20.0,
        };
        let new = || {
            StreamMeter::new(
                pcmu(),
                Some(8000),
                JitterBufferModel::default(),
                &arrivals[0],
            )
        };
        let (mut bare, mut windowed) = (new(), new());
        let mut state = WindowState::default();
        for (n, p) in arrivals.iter().enumerate() {
            let a = bare.on_packet(p, PacketRole::Audio, None);
            let b = windowed.on_packet(p, PacketRole::Audio, Some(&mut state));
            assert_eq!(a, b);
            if n % 50 == 49 {
                windowed.take_window(&mut state, &inputs);
            }
        }
        bare.finish();
        windowed.finish();
        assert_eq!(bare.summary(&inputs), windowed.summary(&inputs));
        assert_eq!(bare.silence(), windowed.silence());
        assert_eq!(bare.ptime_ms(), windowed.ptime_ms());
    }

    #[test]
    fn extend_ts_handles_wrap_both_ways() {
        let prev = (1u64 << 32) | 0xFFFF_FF00;
        assert_eq!(extend_ts(prev, 0x0000_0100), (2u64 << 32) | 0x100);
        let prev = (2u64 << 32) | 0x10;
        assert_eq!(extend_ts(prev, 0xFFFF_FFF0), (1u64 << 32) | 0xFFFF_FFF0);
        assert_eq!(extend_ts(prev, 0x20), (2u64 << 32) | 0x20);
    }
}
