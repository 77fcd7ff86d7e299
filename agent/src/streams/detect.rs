//! Stream candidates: RTP-looking flows not yet confirmed as streams. Unannounced flows must
//! pass probation (metrics-spec §1.4: consecutive sequence numbers, timestamps not going
//! backwards, the same payload type); flows whose clock rate is unknown wait until it can be
//! inferred from timestamp increments against arrival gaps. Buffered packets (metadata only,
//! at most `CANDIDATE_BUFFER`) are replayed into the stream once it is confirmed, so no packet
//! of a real stream is lost to probation.
//!
//! Holds no payload bytes. The first two packets are kept inline (a flow with a known clock is
//! confirmed by its second packet); only candidates that need more (probation broken by loss,
//! or a clock to infer) spill into a small heap buffer, so a wave of new flows costs little.

use crate::quality::seq::{MAX_DROPOUT, MAX_MISORDER, MIN_SEQUENTIAL};
use crate::quality::stream::RtpMeta;

/// Packets kept per candidate while it is on probation.
pub const CANDIDATE_BUFFER: usize = 16;

/// Consecutive-packet pairs needed before a clock rate is inferred.
const INFERENCE_PAIRS: u32 = 8;

/// Clock rates a dynamic payload type may be snapped to.
const CLOCKS: [u32; 5] = [8000, 16000, 32000, 48000, 90000];

#[derive(Debug, Clone)]
pub struct Candidate {
    /// The oldest two buffered packets (`head_len` of them), then the rest in arrival order.
    head: [RtpMeta; 2],
    head_len: usize,
    rest: Vec<RtpMeta>,
    /// Length of the run of consecutive sequence numbers ending with the last packet.
    run: u32,
    confirmed: bool,
    needs_clock: bool,
    /// Sums over consecutive pairs: timestamp increments and arrival gaps (ns).
    ts_sum: u64,
    arrival_sum_ns: i64,
    pairs: u32,
    pub last_ns: i64,
}

/// What to do with a candidate after a packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CandidateState {
    /// Keep waiting.
    Pending,
    /// Confirmed: create the stream. `inferred_clock` is set when the clock was inferred,
    /// `None` with `needs_clock` means the clock stayed unknown.
    Ready { inferred_clock: Option<u32> },
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
            confirmed: announced,
            needs_clock,
            ts_sum: 0,
            arrival_sum_ns: 0,
            pairs: 0,
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
            let dt = meta.ts_ns - prev.ts_ns;
            let dts = meta.rtp_ts.wrapping_sub(prev.rtp_ts);
            if dt > 0 && dts > 0 {
                self.ts_sum += u64::from(dts);
                self.arrival_sum_ns += dt;
                self.pairs += 1;
            }
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
            return CandidateState::Ready {
                inferred_clock: None,
            };
        }
        if self.pairs >= INFERENCE_PAIRS
            && let Some(clock) = self.inferred_clock()
        {
            return CandidateState::Ready {
                inferred_clock: Some(clock),
            };
        }
        if self.len() == CANDIDATE_BUFFER {
            return CandidateState::Ready {
                inferred_clock: self.inferred_clock(),
            };
        }
        CandidateState::Pending
    }

    /// Clock rate estimated from Σ timestamp increments / Σ arrival gaps, snapped to a common
    /// rate when within 20 % of it.
    pub fn inferred_clock(&self) -> Option<u32> {
        if self.pairs < 2 || self.arrival_sum_ns <= 0 {
            return None;
        }
        let rate = self.ts_sum as f64 * 1e9 / self.arrival_sum_ns as f64;
        CLOCKS
            .iter()
            .copied()
            .find(|&c| (rate / f64::from(c) - 1.0).abs() <= 0.2)
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

    #[test]
    fn two_consecutive_packets_confirm() {
        let mut c = Candidate::new(meta(0, 10, 0), false, false);
        assert_eq!(c.state(), CandidateState::Pending);
        assert_eq!(
            c.push(meta(20, 11, 160)),
            CandidateState::Ready {
                inferred_clock: None
            }
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
    fn infers_48k_from_20ms_packets() {
        let mut c = Candidate::new(meta(0, 1, 0), false, true);
        let mut state = CandidateState::Pending;
        for i in 1..=8u16 {
            // ±1 ms of arrival jitter
            let jitter = if i % 2 == 0 { 1 } else { -1 };
            state = c.push(meta(20 * i64::from(i) + jitter, 1 + i, 960 * u32::from(i)));
        }
        assert_eq!(
            state,
            CandidateState::Ready {
                inferred_clock: Some(48000)
            }
        );
    }

    #[test]
    fn infers_8k_and_16k() {
        for (inc, want) in [(160u32, 8000u32), (320, 16000)] {
            let mut c = Candidate::new(meta(0, 1, 0), false, true);
            let mut state = CandidateState::Pending;
            for i in 1..=8u16 {
                state = c.push(meta(20 * i64::from(i), 1 + i, inc * u32::from(i)));
            }
            assert_eq!(
                state,
                CandidateState::Ready {
                    inferred_clock: Some(want)
                }
            );
        }
    }

    #[test]
    fn implausible_rate_stays_unknown_after_a_full_buffer() {
        let mut c = Candidate::new(meta(0, 1, 0), true, true);
        let mut state = CandidateState::Pending;
        for i in 1..CANDIDATE_BUFFER as u16 {
            state = c.push(meta(20 * i64::from(i), 1 + i, 500 * u32::from(i))); // 25 kHz
        }
        assert_eq!(
            state,
            CandidateState::Ready {
                inferred_clock: None
            }
        );
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
