//! Stream candidates: RTP-looking flows not yet confirmed as streams. Unannounced flows must
//! pass probation (metrics-spec §1.4: consecutive sequence numbers, timestamps not going
//! backwards, the same payload type); flows whose clock rate is unknown (a dynamic payload type
//! without SDP) wait until it can be inferred. Buffered packets (metadata only, at most
//! `CANDIDATE_BUFFER`) are replayed into the stream once it is confirmed, so no packet of a real
//! stream is lost to probation.
//!
//! Clock inference ([`Candidate::inference`]) prefers the clock at which the stream's timestamp
//! step is a standard packet time (10, 20, 30, 40 or 60 ms), and lets the arrival gaps choose
//! among such clocks only by how many gaps match the packet time each implies — never by the
//! mean gap, which bunched and stalled packets drag anywhere (an Opus stream, step 960, was
//! once taken for 32 kHz that way). When the evidence does not single out one clock the clock
//! stays unknown: the stream is counted, without jitter or MOS, rather than guessed.
//!
//! Holds no payload bytes. The first two packets are kept inline (a flow with a known clock is
//! confirmed by its second packet); only candidates that need more (probation broken by loss,
//! or a clock to infer) spill into a small heap buffer, so a wave of new flows costs little.

use crate::quality::seq::{MAX_DROPOUT, MAX_MISORDER, MIN_SEQUENTIAL};
use crate::quality::stream::RtpMeta;

/// Packets kept per candidate while it is on probation.
pub const CANDIDATE_BUFFER: usize = 16;

/// Consecutive-packet pairs needed before a clock rate may be inferred with high confidence
/// (a candidate below it waits for more packets, up to a full buffer).
const INFERENCE_PAIRS: u32 = 8;

/// Clock rates a dynamic payload type may be inferred as.
pub const CLOCKS: [u32; 5] = [8000, 16000, 32000, 48000, 90000];

/// Standard packet times (ms), most common first: the order breaks ties between clocks.
pub const STANDARD_PTIMES_MS: [u32; 5] = [20, 30, 10, 40, 60];

/// Arrival gaps shorter than this are packets delivered in a bunch: they say nothing about the
/// packet time and are left out of the evidence.
const BUNCHED_NS: i64 = 2_000_000;

/// The median rate (timestamp units per second of arrival) must lie within this factor of a
/// clock for the step's packet time at it to be believed; 1.2 keeps 32 and 48 kHz apart.
const TS_STEP_RATE_FACTOR: f64 = 1.2;
/// Without a standard packet time, the median rate must lie within this factor of the clock.
const ARRIVAL_RATE_FACTOR: f64 = 1.1;
/// Votes the winning clock needs, at the least.
const MIN_VOTES: u32 = 3;

/// A confirmed candidate whose clock cannot be inferred becomes a stream (counted without
/// jitter) when it ends after at least this many consecutive sequence numbers: random UDP does
/// not do that, short real streams (a few packets of a call's start) do.
pub const SHORT_STREAM_RUN: u32 = 4;

/// How an unknown clock was inferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InferenceMethod {
    /// The timestamp step is a standard packet time at this clock, and the arrival gaps pick it
    /// among the clocks where it is.
    TsStep,
    /// The arrivals contradict every clock at which the step is a standard packet time (or there
    /// is none): the arrival rate lies within 10 % of this clock and most gaps vote for it.
    Arrival,
    /// Not inferred: the clock stays unknown.
    None,
}

impl InferenceMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            InferenceMethod::TsStep => "ts_step",
            InferenceMethod::Arrival => "arrival",
            InferenceMethod::None => "none",
        }
    }
}

/// How sure an inferred clock is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confidence {
    /// At least `INFERENCE_PAIRS` gaps voted, three quarters of them for this clock.
    High,
    /// At least `MIN_VOTES` votes and twice as many as any rival clock.
    Medium,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::High => "high",
            Confidence::Medium => "medium",
        }
    }
}

/// The outcome of clock inference, with its evidence (reported with the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockInference {
    /// The inferred clock; `None` with [`InferenceMethod::None`].
    pub clock_hz: Option<u32>,
    pub method: InferenceMethod,
    pub confidence: Option<Confidence>,
    /// The most common timestamp step between consecutive packets.
    pub ts_step: Option<u32>,
    /// Consecutive-packet pairs examined, and how many of their arrival gaps voted for the clock.
    pub pairs: u32,
    pub matching: u32,
}

impl ClockInference {
    fn none(ts_step: Option<u32>, pairs: u32) -> Self {
        ClockInference {
            clock_hz: None,
            method: InferenceMethod::None,
            confidence: None,
            ts_step,
            pairs,
            matching: 0,
        }
    }

    /// Packet time (ms) the step means at the inferred clock.
    pub fn ptime_ms(&self) -> Option<f64> {
        let clock = self.clock_hz?;
        Some(f64::from(self.ts_step?) * 1000.0 / f64::from(clock))
    }
}

/// Packet time (ms) when `step` timestamp units are a standard packet time at `clock`.
fn standard_ptime(step: u32, clock: u32) -> Option<u32> {
    STANDARD_PTIMES_MS
        .iter()
        .copied()
        .find(|&p| u64::from(step) * 1000 == u64::from(p) * u64::from(clock))
}

#[derive(Debug, Clone)]
pub struct Candidate {
    /// The oldest two buffered packets (`head_len` of them), then the rest in arrival order.
    head: [RtpMeta; 2],
    head_len: usize,
    rest: Vec<RtpMeta>,
    /// Length of the run of consecutive sequence numbers ending with the last packet, and the
    /// longest such run so far.
    run: u32,
    longest_run: u32,
    confirmed: bool,
    needs_clock: bool,
    pub last_ns: i64,
}

/// What to do with a candidate after a packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CandidateState {
    /// Keep waiting.
    Pending,
    /// Confirmed: create the stream. `inference` is set for a candidate whose clock was
    /// unknown: the inferred clock, or why it stays unknown.
    Ready { inference: Option<ClockInference> },
}

impl Candidate {
    /// `announced`: the flow was announced by SDP (no probation needed).
    /// `needs_clock`: the payload type's clock rate is unknown.
    pub fn new(first: RtpMeta, announced: bool, needs_clock: bool) -> Self {
        Candidate {
            head: [first; 2],
            head_len: 1,
            rest: Vec::new(),
            run: 1,
            longest_run: 1,
            confirmed: announced,
            needs_clock,
            last_ns: first.ts_ns,
        }
    }

    /// Packets buffered, in arrival order.
    pub fn packets(&self) -> impl Iterator<Item = &RtpMeta> {
        self.head.iter().take(self.head_len).chain(self.rest.iter())
    }

    fn len(&self) -> usize {
        self.head_len + self.rest.len()
    }

    fn last(&self) -> RtpMeta {
        match self.rest.last() {
            Some(p) => *p,
            None => self.head[self.head_len.clamp(1, 2) - 1],
        }
    }

    /// Adds a packet (arrival order) and says whether the candidate is now a stream.
    pub fn push(&mut self, meta: RtpMeta) -> CandidateState {
        let prev = self.last();
        let consecutive = meta.seq == prev.seq.wrapping_add(1)
            && (meta.rtp_ts.wrapping_sub(prev.rtp_ts) as i32) >= 0
            && meta.pt == prev.pt;
        if consecutive {
            self.run = self.run.saturating_add(1);
            self.longest_run = self.longest_run.max(self.run);
        } else {
            self.run = 1;
        }
        if self.len() == CANDIDATE_BUFFER {
            // Keep the newest packets: drop the oldest.
            self.head[0] = self.head[1];
            if !self.rest.is_empty() {
                self.head[1] = self.rest.remove(0);
            } else {
                self.head_len = 1;
            }
        }
        if self.head_len < 2 && self.rest.is_empty() {
            self.head[self.head_len] = meta;
            self.head_len += 1;
        } else {
            if self.rest.capacity() == 0 {
                self.rest.reserve_exact(CANDIDATE_BUFFER - 2);
            }
            self.rest.push(meta);
        }
        self.last_ns = meta.ts_ns;
        if self.run >= MIN_SEQUENTIAL {
            self.confirmed = true;
        }
        self.state()
    }

    /// The state after the first packet (an announced flow with a known clock is ready at once).
    pub fn state(&self) -> CandidateState {
        if !self.confirmed {
            return CandidateState::Pending;
        }
        if !self.needs_clock {
            return CandidateState::Ready { inference: None };
        }
        let inference = self.inference();
        if inference.confidence == Some(Confidence::High) || self.len() == CANDIDATE_BUFFER {
            return CandidateState::Ready {
                inference: Some(inference),
            };
        }
        CandidateState::Pending
    }

    /// Confirmed by probation (or announced).
    pub fn is_confirmed(&self) -> bool {
        self.confirmed
    }

    /// A candidate that ended (timed out, or the capture ended) before its clock could be
    /// inferred is still a stream when announced or when its packets ran in sequence long enough
    /// (at some point: a telephone event ends with retransmitted packets that break the run).
    pub fn is_short_stream(&self) -> bool {
        self.confirmed && self.longest_run >= SHORT_STREAM_RUN
    }

    /// Timestamp advances between runs of consecutive buffered packets (next sequence number,
    /// same payload type): (timestamp step, arrival gap in ns), the gap measured from the first
    /// packet with the previous timestamp. For audio that is the previous packet; for video,
    /// whose frames span several packets with one timestamp, it is the frame's first packet,
    /// sent when the frame was taken. A timestamp going back or a gap in the sequence starts
    /// over.
    fn pairs(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        let mut prev: Option<RtpMeta> = None;
        // Timestamp and arrival of the first packet of the current timestamp run.
        let mut run = (0u32, 0i64);
        self.packets().filter_map(move |p| {
            let consecutive = prev.is_some_and(|q| p.seq == q.seq.wrapping_add(1) && p.pt == q.pt);
            prev = Some(*p);
            let dts = p.rtp_ts.wrapping_sub(run.0);
            if consecutive && dts == 0 {
                return None; // another packet of the same frame
            }
            let from = run;
            run = (p.rtp_ts, p.ts_ns);
            let dt = p.ts_ns.saturating_sub(from.1);
            (consecutive && (dts as i32) > 0 && dt >= 0).then_some((dts, dt))
        })
    }

    /// The clock of an unsignalled payload type, from the buffered packets (see the module doc).
    /// Evidence: every consecutive pair not delivered in a bunch (gap ≥ 2 ms) votes for the
    /// clock whose predicted gap (its timestamp step / clock) is nearest to its arrival gap (by
    /// ratio); the median of their rates (step / gap) is robust to bunches and stalls, where the
    /// mean is not.
    /// 1. The step: the most common timestamp step between consecutive packets.
    /// 2. Among the clocks at which the step is a standard packet time, the one with most votes
    ///    wins (ties: the more common packet time) if it has at least `MIN_VOTES`, twice as many
    ///    as any other such clock, and the median rate lies within a factor 1.2 of it.
    /// 3. Otherwise a clock at which the step is no standard packet time may win on the arrivals
    ///    alone: the median or the overall rate within 10 % of it, most votes among all clocks
    ///    for it, at least `MIN_VOTES`, half of all votes and twice as many as any other clock.
    /// 4. Otherwise the clock stays unknown.
    pub fn inference(&self) -> ClockInference {
        // Most common step (ties: the first seen); at most 15 pairs, counted without allocating.
        let mut pairs = 0u32;
        let (mut step, mut step_count) = (0u32, 0usize);
        for (dts, _) in self.pairs() {
            pairs += 1;
            let count = self.pairs().filter(|&(d, _)| d == dts).count();
            if count > step_count {
                (step, step_count) = (dts, count);
            }
        }
        if pairs == 0 {
            return ClockInference::none(None, 0);
        }
        // Votes per clock, over all clocks and over the standard-packet-time ones only.
        let standard = CLOCKS.map(|c| standard_ptime(step, c));
        let mut votes_all = [0u32; CLOCKS.len()];
        let mut votes_std = [0u32; CLOCKS.len()];
        let mut rates = [0.0f64; CANDIDATE_BUFFER];
        let mut voters = 0usize;
        let (mut ts_total, mut gap_total) = (0.0f64, 0.0f64);
        for (dts, dt) in self.pairs().filter(|&(_, dt)| dt >= BUNCHED_NS) {
            let gap = dt as f64;
            let distance = |c: u32| (gap * f64::from(c) / (f64::from(dts) * 1e9)).ln().abs();
            let nearest = |only_standard: bool| {
                (0..CLOCKS.len())
                    .filter(|&i| !only_standard || standard[i].is_some())
                    .min_by(|&a, &b| distance(CLOCKS[a]).total_cmp(&distance(CLOCKS[b])))
            };
            if let Some(i) = nearest(false) {
                votes_all[i] += 1;
            }
            if let Some(i) = nearest(true) {
                votes_std[i] += 1;
            }
            if let Some(slot) = rates.get_mut(voters) {
                *slot = f64::from(dts) * 1e9 / gap;
                voters += 1;
            }
            ts_total += f64::from(dts);
            gap_total += gap;
        }
        if voters == 0 {
            return ClockInference::none(Some(step), pairs);
        }
        let rates = &mut rates[..voters];
        rates.sort_unstable_by(f64::total_cmp);
        let median = if voters % 2 == 1 {
            rates[voters / 2]
        } else {
            (rates[voters / 2 - 1] + rates[voters / 2]) / 2.0
        };
        // The overall rate of the voting pairs: steadier than the median over a few video
        // frames of varying duration, but dragged by stalls, so only the fallback uses it.
        let overall = ts_total * 1e9 / gap_total;
        let near = |rate: f64, clock: u32, factor: f64| {
            let ratio = rate / f64::from(clock);
            ratio <= factor && ratio >= 1.0 / factor
        };
        let inferred = |i: usize, method: InferenceMethod, votes: u32| {
            let high = voters >= INFERENCE_PAIRS as usize && 4 * votes as usize >= 3 * voters;
            ClockInference {
                clock_hz: Some(CLOCKS[i]),
                method,
                confidence: Some(if high && method == InferenceMethod::TsStep {
                    Confidence::High
                } else {
                    Confidence::Medium
                }),
                ts_step: Some(step),
                pairs,
                matching: votes,
            }
        };
        // 2. The standard-packet-time clocks, by votes, ties to the more common packet time.
        let rank = |i: usize| {
            standard[i]
                .and_then(|p| STANDARD_PTIMES_MS.iter().position(|&q| q == p))
                .unwrap_or(usize::MAX)
        };
        let best_std = (0..CLOCKS.len())
            .filter(|&i| standard[i].is_some())
            .max_by(|&a, &b| votes_std[a].cmp(&votes_std[b]).then(rank(b).cmp(&rank(a))));
        if let Some(w) = best_std {
            let rival = (0..CLOCKS.len())
                .filter(|&i| i != w && standard[i].is_some())
                .map(|i| votes_std[i])
                .max()
                .unwrap_or(0);
            if votes_std[w] >= MIN_VOTES
                && votes_std[w] >= 2 * rival
                && near(median, CLOCKS[w], TS_STEP_RATE_FACTOR)
            {
                return inferred(w, InferenceMethod::TsStep, votes_std[w]);
            }
        }
        // 3. A clock the step is no standard packet time at, on the arrivals alone.
        let best_all = (0..CLOCKS.len()).max_by_key(|&i| votes_all[i]);
        if let Some(w) = best_all
            && standard[w].is_none()
        {
            let rival = (0..CLOCKS.len())
                .filter(|&i| i != w)
                .map(|i| votes_all[i])
                .max()
                .unwrap_or(0);
            if votes_all[w] >= MIN_VOTES
                && votes_all[w] >= 2 * rival
                && 2 * votes_all[w] as usize >= voters
                && (near(median, CLOCKS[w], ARRIVAL_RATE_FACTOR)
                    || near(overall, CLOCKS[w], ARRIVAL_RATE_FACTOR))
            {
                return inferred(w, InferenceMethod::Arrival, votes_all[w]);
            }
        }
        ClockInference::none(Some(step), pairs)
    }

    /// The buffered packets that belong to the sequence of the last packet (within the
    /// RFC 3550 dropout/misorder limits); the rest were noise before the stream settled.
    pub fn replayable(&self) -> impl Iterator<Item = &RtpMeta> {
        let last = self.last();
        self.packets().filter(move |p| {
            let ahead = last.seq.wrapping_sub(p.seq);
            let behind = p.seq.wrapping_sub(last.seq);
            p.pt == last.pt && (ahead < MAX_DROPOUT || behind <= MAX_MISORDER)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(ms: i64, seq: u16, ts: u32) -> RtpMeta {
        RtpMeta {
            ts_ns: ms * 1_000_000,
            seq,
            rtp_ts: ts,
            pt: 0,
            marker: false,
        }
    }

    fn meta_us(us: i64, seq: u16, ts: u32) -> RtpMeta {
        RtpMeta {
            ts_ns: us * 1_000,
            seq,
            rtp_ts: ts,
            pt: 111,
            marker: false,
        }
    }

    /// A candidate of packets at `arrivals_us` with timestamps `step` apart (unknown clock).
    fn candidate(arrivals_us: &[i64], step: u32, announced: bool) -> (Candidate, CandidateState) {
        let mut c = Candidate::new(meta_us(arrivals_us[0], 1, 7), announced, true);
        let mut state = c.state();
        for (i, at) in arrivals_us.iter().enumerate().skip(1) {
            state = c.push(meta_us(*at, 1 + i as u16, 7 + step * i as u32));
        }
        (c, state)
    }

    fn inferred(state: CandidateState) -> Option<ClockInference> {
        match state {
            CandidateState::Ready { inference } => inference,
            CandidateState::Pending => None,
        }
    }

    #[test]
    fn two_consecutive_packets_confirm() {
        let mut c = Candidate::new(meta(0, 10, 0), false, false);
        assert_eq!(c.state(), CandidateState::Pending);
        assert_eq!(
            c.push(meta(20, 11, 160)),
            CandidateState::Ready { inference: None }
        );
    }

    #[test]
    fn random_sequence_numbers_do_not_confirm() {
        let mut c = Candidate::new(meta(0, 10, 0), false, false);
        for (i, seq) in [5000u16, 77, 40000, 1234, 999, 31000].iter().enumerate() {
            assert_eq!(
                c.push(meta(20 * (i as i64 + 1), *seq, 160)),
                CandidateState::Pending
            );
        }
    }

    #[test]
    fn timestamps_going_back_or_pt_changing_do_not_confirm() {
        let mut c = Candidate::new(meta(0, 10, 1000), false, false);
        assert_eq!(c.push(meta(20, 11, 500)), CandidateState::Pending);
        let mut c = Candidate::new(meta(0, 10, 1000), false, false);
        let mut other = meta(20, 11, 1160);
        other.pt = 8;
        assert_eq!(c.push(other), CandidateState::Pending);
    }

    #[test]
    fn standard_packet_times() {
        assert_eq!(standard_ptime(960, 48000), Some(20));
        assert_eq!(standard_ptime(960, 32000), Some(30));
        assert_eq!(standard_ptime(960, 16000), Some(60));
        assert_eq!(standard_ptime(960, 8000), None); // 120 ms
        assert_eq!(standard_ptime(960, 90000), None); // 10.67 ms
        assert_eq!(standard_ptime(160, 8000), Some(20));
        assert_eq!(standard_ptime(160, 16000), Some(10));
        assert_eq!(standard_ptime(3000, 90000), None); // 33.3 ms video frames
        assert_eq!(standard_ptime(0, 8000), None);
    }

    #[test]
    fn infers_48k_from_20ms_packets() {
        // ±1 ms of arrival jitter: 8 pairs, all matching 20 ms → high confidence at once.
        let arrivals: Vec<i64> = (0..=8i64)
            .map(|i| 20_000 * i + if i % 2 == 0 { 1000 } else { -1000 })
            .collect();
        let (_, state) = candidate(&arrivals, 960, false);
        assert_eq!(
            inferred(state),
            Some(ClockInference {
                clock_hz: Some(48000),
                method: InferenceMethod::TsStep,
                confidence: Some(Confidence::High),
                ts_step: Some(960),
                pairs: 8,
                matching: 8,
            })
        );
        assert_eq!(inferred(state).and_then(|i| i.ptime_ms()), Some(20.0));
    }

    #[test]
    fn infers_8k_and_16k() {
        for (inc, want) in [(160u32, 8000u32), (320, 16000)] {
            let arrivals: Vec<i64> = (0..=8i64).map(|i| 20_000 * i).collect();
            let (_, state) = candidate(&arrivals, inc, false);
            let inference = inferred(state).expect("ready");
            assert_eq!(inference.clock_hz, Some(want));
            assert_eq!(inference.confidence, Some(Confidence::High));
        }
    }

    /// The first 16 packets of the PT 111 stream in `real-captures/ndpi__rtp.pcapng` (VLAN 1508,
    /// SSRC 0xb80974d8; arrival offsets from tshark, µs): four packets bunched, then gaps of
    /// 11.8, 20, 20, 30, 10, 20, 80, 36, 91, 0, 83, 10 ms. Step 960.
    const NDPI_PT111_US: [i64; 16] = [
        0, 0, 0, 0, 11_805, 31_851, 51_857, 81_870, 91_871, 111_787, 191_845, 227_901, 318_851,
        318_851, 401_906, 411_847,
    ];

    #[test]
    fn irregular_arrivals_with_step_960_are_48k_not_32k() {
        // The old rule (Σ steps / Σ gaps, snapped within 20 %) said 32 kHz: 15·960 / 0.4118 s.
        let rate: f64 = 15.0 * 960.0 / 0.411_847;
        assert!((rate / 32000.0 - 1.0).abs() <= 0.2 && (rate / 48000.0 - 1.0).abs() > 0.2);
        let (c, state) = candidate(&NDPI_PT111_US, 960, false);
        // Not sure enough to stop early: decided when the buffer is full.
        assert_eq!(c.len(), CANDIDATE_BUFFER);
        let inference = inferred(state).expect("ready with a full buffer");
        // 11 gaps vote (the 4 bunched ones do not): nearest to 20 ms (48 kHz) are 11.8, 20.0,
        // 20.0, 10.0, 19.9 and 9.9; to 30 ms (32 kHz) 30.0 and 36.1; to 60 ms (16 kHz) 80.1, 91.0
        // and 83.1. 6 ≥ 2·3, and the median gap is 20.0 ms: 48 kHz, but only 6 of 11 agree.
        assert_eq!(
            inference,
            ClockInference {
                clock_hz: Some(48000),
                method: InferenceMethod::TsStep,
                confidence: Some(Confidence::Medium),
                ts_step: Some(960),
                pairs: 15,
                matching: 6,
            }
        );
    }

    /// The PT 104 stream of `real-captures/ndpi__teams.pcap` (16 kHz per its README): step 320,
    /// gaps from 9 to 26 ms around 20 ms. 16 kHz (20 ms) against 32 kHz (10 ms) and 8 kHz (40).
    #[test]
    fn jittery_20ms_at_16k() {
        let gaps_us = [
            19_069, 24_170, 9_306, 25_978, 19_907, 25_341, 9_245, 24_382, 24_626, 9_496, 26_004,
            24_257, 19_252, 13_630, 19_843,
        ];
        let mut at = 0;
        let mut arrivals = vec![0i64];
        for g in gaps_us {
            at += g;
            arrivals.push(at);
        }
        let (_, state) = candidate(&arrivals, 320, false);
        let inference = inferred(state).expect("ready with a full buffer");
        // Nearest to 20 ms: 11 gaps; to 10 ms: 9.3, 9.2, 9.5, 13.6.
        assert_eq!(inference.clock_hz, Some(16000));
        assert_eq!(inference.method, InferenceMethod::TsStep);
        assert_eq!((inference.pairs, inference.matching), (15, 11));
        assert_eq!(inference.confidence, Some(Confidence::Medium));
    }

    /// WhatsApp's PT 120 (`real-captures/ndpi__stun_wa_call.pcapng`): step 1920 every 120 ms,
    /// 16 kHz. The step is a standard packet time only at 32 kHz (60 ms) and 48 kHz (40 ms),
    /// which the arrivals contradict: 16 kHz on the arrivals alone.
    #[test]
    fn non_standard_packet_time_falls_back_to_the_arrivals() {
        let arrivals: Vec<i64> = (0..16i64)
            .map(|i| 120_000 * i + ((i * 7) % 5 - 2) * 1_500)
            .collect();
        let (_, state) = candidate(&arrivals, 1920, false);
        let inference = inferred(state).expect("ready");
        assert_eq!(inference.clock_hz, Some(16000));
        assert_eq!(inference.method, InferenceMethod::Arrival);
        assert_eq!(inference.confidence, Some(Confidence::Medium));
        assert_eq!(inference.matching, 15);
    }

    #[test]
    fn ambiguous_or_bunched_arrivals_leave_the_clock_unknown() {
        // Step 960, gaps alternating 20 and 30 ms: 48 kHz and 32 kHz explain equally many.
        let mut at = 0;
        let arrivals: Vec<i64> = (0..16)
            .map(|i| {
                let now = at;
                at += if i % 2 == 0 { 20_000 } else { 30_000 };
                now
            })
            .collect();
        let (_, state) = candidate(&arrivals, 960, false);
        let inference = inferred(state).expect("ready with a full buffer");
        assert_eq!(inference.clock_hz, None);
        assert_eq!(inference.method, InferenceMethod::None);
        assert_eq!(inference.ts_step, Some(960));
        // Every packet at one instant (a replayed buffer): no arrival evidence at all.
        let (_, state) = candidate(&[5_000_000; 16], 160, false);
        assert_eq!(inferred(state).and_then(|i| i.clock_hz), None);
        // Timestamps that never move (an event-only stream): no step, no clock.
        let arrivals: Vec<i64> = (0..16).map(|i| 20_000 * i).collect();
        let (_, state) = candidate(&arrivals, 0, true);
        let inference = inferred(state).expect("ready");
        assert_eq!((inference.clock_hz, inference.ts_step), (None, None));
    }

    #[test]
    fn implausible_rate_stays_unknown_after_a_full_buffer() {
        let arrivals: Vec<i64> = (0..CANDIDATE_BUFFER as i64).map(|i| 20_000 * i).collect();
        // Step 500 every 20 ms = 25 kHz: no standard packet time at any clock, no clock near.
        let (_, state) = candidate(&arrivals, 500, true);
        let inference = inferred(state).expect("ready");
        assert_eq!(inference.clock_hz, None);
        assert_eq!(inference.method, InferenceMethod::None);
    }

    #[test]
    fn video_steps_fall_back_to_the_arrival_rate() {
        // 30 frames/s at 90 kHz: step 3000 is no standard packet time; 33.3 ms gaps say 90 kHz.
        let arrivals: Vec<i64> = (0..CANDIDATE_BUFFER as i64)
            .map(|i| i * 100_000 / 3)
            .collect();
        let (_, state) = candidate(&arrivals, 3000, false);
        let inference = inferred(state).expect("ready");
        assert_eq!(inference.clock_hz, Some(90000));
        assert_eq!(inference.method, InferenceMethod::Arrival);
        assert_eq!(inference.confidence, Some(Confidence::Medium));
    }

    #[test]
    fn video_frames_of_several_packets_are_timed_from_their_first_packet() {
        // 30 frames/s at 90 kHz, 3 packets per frame 4 ms apart: last packet to next frame's first
        // is 25.3 ms (118 kHz if read as the gap), first to first 33.3 ms.
        let mut c = Candidate::new(meta_us(0, 1, 0), true, true);
        for n in 1..CANDIDATE_BUFFER as i64 {
            let (frame, part) = (n / 3, n % 3);
            c.push(meta_us(
                frame * 100_000 / 3 + part * 4_000,
                1 + n as u16,
                3000 * frame as u32,
            ));
        }
        let inference = c.inference();
        assert_eq!(inference.clock_hz, Some(90000), "{inference:?}");
        assert_eq!(inference.method, InferenceMethod::Arrival);
        assert_eq!((inference.pairs, inference.matching), (5, 5));
    }

    #[test]
    fn short_streams() {
        let arrivals: Vec<i64> = (0..4).map(|i| 20_000 * i).collect();
        let (c, state) = candidate(&arrivals, 960, false);
        assert_eq!(state, CandidateState::Pending);
        assert!(c.is_short_stream());
        let (c, _) = candidate(&arrivals[..3], 960, false);
        assert!(c.is_confirmed() && !c.is_short_stream());
        // An RFC 4733 event: 8 packets in sequence, then the end packet twice more.
        let mut c = Candidate::new(meta_us(0, 7984, 13280), false, true);
        for i in 1..8u16 {
            c.push(meta_us(20_000 * i64::from(i), 7984 + i, 13280));
        }
        c.push(meta_us(140_042, 7991, 13280));
        c.push(meta_us(140_083, 7991, 13280));
        assert!(c.is_short_stream());
        assert_eq!(c.inference().clock_hz, None);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// A paced stream at any candidate clock and standard packet time, with each gap off
            /// by up to 15 % and up to a quarter of the gaps bunched (0) or stalled (2–6 packet
            /// times), is never given a wrong clock; with at least 8 pairs it gets the right one.
            /// (More noise than that can make a stream look exactly like another packet time.)
            #[test]
            fn never_a_wrong_clock(
                clock_index in 0usize..CLOCKS.len(),
                ptime in proptest::sample::select(STANDARD_PTIMES_MS.to_vec()),
                wobble in proptest::collection::vec(-0.15f64..0.15, 15),
                noise in proptest::collection::vec((any::<bool>(), 2u32..7), 15),
                noisy in proptest::collection::btree_set(0usize..15, 0..4),
                len in 3usize..=CANDIDATE_BUFFER,
            ) {
                let pairs = len - 1;
                let noisy: Vec<usize> = noisy.into_iter().filter(|&i| i < pairs).collect();
                prop_assume!(noisy.len() * 4 <= pairs);
                let clock = CLOCKS[clock_index];
                let step = ptime * clock / 1000;
                let ptime_us = i64::from(ptime) * 1000;
                let mut at = 0i64;
                let mut arrivals = vec![0i64];
                for i in 0..pairs {
                    let gap = if noisy.contains(&i) {
                        let (bunch, times) = noise[i];
                        if bunch { 0 } else { ptime_us * i64::from(times) }
                    } else {
                        (ptime_us as f64 * (1.0 + wobble[i])) as i64
                    };
                    at += gap;
                    arrivals.push(at);
                }
                let (c, _) = candidate(&arrivals, step, true);
                let inference = c.inference();
                prop_assert!(
                    inference.clock_hz.is_none() || inference.clock_hz == Some(clock),
                    "{:?} for {} Hz / {} ms", inference, clock, ptime
                );
                if pairs >= INFERENCE_PAIRS as usize {
                    prop_assert_eq!(inference.clock_hz, Some(clock), "{:?}", inference);
                    prop_assert_eq!(inference.method, InferenceMethod::TsStep);
                }
            }

            /// Whatever the packets, inference never panics and its evidence is consistent.
            #[test]
            fn inference_is_total(
                packets in proptest::collection::vec((0i64..200_000, any::<u32>(), 0u16..3), 1..CANDIDATE_BUFFER),
            ) {
                let mut at = 0;
                let mut seq = 0u16;
                let mut ts = 0u32;
                let mut c = Candidate::new(meta_us(0, 0, 0), true, true);
                for (gap, step, skip) in packets {
                    at += gap;
                    seq = seq.wrapping_add(1 + skip);
                    ts = ts.wrapping_add(step);
                    c.push(meta_us(at, seq, ts));
                }
                let i = c.inference();
                prop_assert!(i.matching <= i.pairs);
                prop_assert_eq!(i.clock_hz.is_some(), i.confidence.is_some());
                prop_assert_eq!(i.clock_hz.is_none(), i.method == InferenceMethod::None);
            }
        }
    }

    #[test]
    fn replay_skips_noise_before_the_run() {
        let mut c = Candidate::new(meta(0, 50000, 0), false, false);
        c.push(meta(20, 100, 160));
        c.push(meta(40, 101, 320));
        let seqs: Vec<u16> = c.replayable().map(|p| p.seq).collect();
        assert_eq!(seqs, vec![100, 101]);
    }
}
