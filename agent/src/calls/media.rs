//! Media problems of one call, from its dialog (answer, end, hold periods, announced media
//! addresses) and the facts of its streams: `no_rtp`, `one_way_audio`, `rtp_stopped` and
//! `media_address_mismatch`, each with the direction (the sending party) and the time it began.
//!
//! Pure arithmetic on finished facts: it must not see packets, read a clock or keep state.
//! Holding (`a=sendonly`/`recvonly`/`inactive`, `c=0.0.0.0`) explains silence, and so does
//! discontinuous transmission: a pause that a marker-bit talkspurt ends, or that follows a
//! comfort-noise packet, is silence, not a stop (the stream meter leaves such pauses out of
//! its longest gap).

use smallvec::SmallVec;

use super::StreamFacts;
use super::dialog::{Call, Party};

/// When silence becomes a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaThresholds {
    /// `no_rtp`: no RTP in a direction this long after the answer (2 s).
    pub no_rtp_ns: i64,
    /// `rtp_stopped`: RTP paused in one direction this long while the other went on (5 s).
    pub rtp_stopped_ns: i64,
}

impl Default for MediaThresholds {
    fn default() -> Self {
        MediaThresholds {
            no_rtp_ns: 2_000_000_000,
            rtp_stopped_ns: 5_000_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// No RTP in the direction within `no_rtp_ns` of the answer (late start, or none at all
    /// in either direction).
    NoRtp,
    /// No RTP in the direction during the whole answered call while the other direction had
    /// some.
    OneWayAudio,
    /// RTP in the direction paused (or ended) for more than `rtp_stopped_ns` while the other
    /// direction continued, outside hold and DTX silence.
    RtpStopped,
    /// RTP of the direction came from an address or port its sender's SDP did not announce.
    MediaAddressMismatch,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::NoRtp => "no_rtp",
            ProblemKind::OneWayAudio => "one_way_audio",
            ProblemKind::RtpStopped => "rtp_stopped",
            ProblemKind::MediaAddressMismatch => "media_address_mismatch",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The party whose RTP is missing, stopped or misaddressed.
    pub sender: Party,
    pub start_ns: i64,
}

/// Direction text of a sending party.
pub fn direction_of(sender: Option<Party>) -> &'static str {
    match sender {
        Some(Party::Caller) => "caller_to_callee",
        Some(Party::Callee) => "callee_to_caller",
        None => "unknown",
    }
}

/// The media problems of `call`, whose streams are `streams`. `capture_end_ns` stands in for
/// the end of a call still up when the capture ended. Only answered calls are judged.
pub fn problems(
    call: &Call,
    streams: &[StreamFacts],
    th: &MediaThresholds,
    capture_end_ns: i64,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let Some(answer) = call.answer_ns() else {
        return out;
    };
    let end = call.end_ns().unwrap_or(capture_end_ns);
    let held = |from: i64, to: i64| call.hold_periods().any(|(h0, h1)| h0 < to && h1 > from);
    // The audio streams with their sending parties, each found once: finding one hashes both
    // addresses, and the passes below asked for every stream's a dozen times (over half of
    // the cost of a call). Inline for the usual two to four streams: no allocation.
    let audio: SmallVec<[(&StreamFacts, Option<Party>); 4]> = streams
        .iter()
        .filter(|s| !s.video && s.packets > 0)
        .map(|s| (s, call.stream_direction(&s.src, &s.dst)))
        .collect();
    for sender in [Party::Caller, Party::Callee] {
        let other = match sender {
            Party::Caller => Party::Callee,
            Party::Callee => Party::Caller,
        };
        let of = |p: Party| {
            audio
                .iter()
                .filter(move |&&(_, party)| party == Some(p))
                .map(|&(s, _)| s)
        };
        let first = of(sender).map(|s| s.first_ns).min();
        let other_first = of(other).map(|s| s.first_ns).min();
        let other_last = of(other).map(|s| s.last_ns).max();
        let deadline = answer.saturating_add(th.no_rtp_ns);
        match first {
            None if other_first.is_some() => {
                if end > deadline && !held(answer, end) {
                    out.push(Problem {
                        kind: ProblemKind::OneWayAudio,
                        sender,
                        start_ns: answer,
                    });
                }
                continue;
            }
            None => {
                if end > deadline && !held(answer, end) {
                    out.push(Problem {
                        kind: ProblemKind::NoRtp,
                        sender,
                        start_ns: answer,
                    });
                }
                continue;
            }
            Some(first) if first > deadline && !held(answer, first) => out.push(Problem {
                kind: ProblemKind::NoRtp,
                sender,
                start_ns: answer,
            }),
            Some(_) => {}
        }
        if let Some(stop) = first_stop(
            of(sender),
            end,
            other_first,
            other_last,
            th.rtp_stopped_ns,
            &held,
        ) {
            out.push(Problem {
                kind: ProblemKind::RtpStopped,
                sender,
                start_ns: stop,
            });
        }
        if let Some(s) = of(sender).find(|s| call.source_mismatch(sender, &s.src)) {
            out.push(Problem {
                kind: ProblemKind::MediaAddressMismatch,
                sender,
                start_ns: s.first_ns,
            });
        }
    }
    out.sort_by_key(|p| p.start_ns);
    out
}

/// The earliest pause of the sender's streams longer than `limit` during which the other
/// direction went on and the call was not on hold: within a stream (its longest non-DTX gap),
/// between two of its streams, or from its last packet to the end of the call.
fn first_stop<'a>(
    streams: impl Iterator<Item = &'a StreamFacts>,
    end: i64,
    other_first: Option<i64>,
    other_last: Option<i64>,
    limit: i64,
    held: &impl Fn(i64, i64) -> bool,
) -> Option<i64> {
    let (other_first, other_last) = (other_first?, other_last?);
    // Inline: a direction usually has one or two streams, and each call judged both directions
    // with two allocations each.
    let mut spans: SmallVec<[&StreamFacts; 4]> = streams.collect();
    spans.sort_unstable_by_key(|s| (s.first_ns, s.last_ns));
    let mut gaps: SmallVec<[(i64, i64); 8]> = spans.iter().filter_map(|s| s.longest_gap).collect();
    for pair in spans.windows(2) {
        if !pair[0].ends_in_cn {
            gaps.push((pair[0].last_ns, pair[1].first_ns));
        }
    }
    if let Some(last) = spans.iter().max_by_key(|s| s.last_ns)
        && !last.ends_in_cn
    {
        gaps.push((last.last_ns, end));
    }
    gaps.sort_unstable();
    gaps.into_iter().find_map(|(g0, g1)| {
        let long = g1.saturating_sub(g0) > limit;
        // The other direction was flowing when this one stopped and went on past the limit.
        let other_went_on = other_first <= g0 && other_last >= g0.saturating_add(limit);
        (long && other_went_on && !held(g0, g1)).then_some(g0)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::calls::dialog::tests::{
        ID, feed, request, response, sa, sdp_body, tracker, with_sdp,
    };

    const S: i64 = 1_000_000_000;

    /// A call answered at 1 s between alice (192.0.2.10:4000) and bob (192.0.2.20:6000), ended
    /// by alice at 60 s.
    fn call() -> Call {
        answered_call(ID, 60)
    }

    /// The call `id` answered at 1 s between alice (192.0.2.10:4000) and bob
    /// (192.0.2.20:6000), ended by alice's BYE at `bye_s` seconds.
    pub(crate) fn answered_call(id: &str, bye_s: i64) -> Call {
        let mut t = tracker(4);
        let offer = sdp_body("192.0.2.10", 4000, 0, "sendrecv");
        let answer = sdp_body("192.0.2.20", 6000, 0, "sendrecv");
        feed(
            &mut t,
            0,
            &with_sdp(&request("INVITE", 1, false, id), &offer),
        );
        feed(
            &mut t,
            S,
            &with_sdp(&response("200 OK", 1, "INVITE", id), &answer),
        );
        feed(&mut t, bye_s * S, &request("BYE", 2, true, id));
        t.get(id).expect("call").clone()
    }

    pub(crate) fn stream(
        src: &str,
        dst: &str,
        ssrc: u32,
        first: i64,
        last: i64,
        cn: bool,
    ) -> StreamFacts {
        StreamFacts {
            src: sa(src),
            dst: sa(dst),
            ssrc,
            first_ns: first,
            last_ns: last,
            packets: 100,
            codec: "PCMU".into(),
            mos: Some(4.3),
            video: false,
            longest_gap: None,
            ends_in_cn: cn,
        }
    }

    const ALICE: &str = "192.0.2.10:4000";
    const BOB: &str = "192.0.2.20:6000";

    #[test]
    fn a_pause_between_two_streams_of_one_direction_is_a_stop_unless_comfort_noise_began_it() {
        let c = call();
        let th = MediaThresholds::default();
        let alice = stream(ALICE, BOB, 1, S, 60 * S, false);
        // Bob's SSRC changes after 8 s without RTP (10 s to 18 s).
        let streams = [
            alice.clone(),
            stream(BOB, ALICE, 2, S, 10 * S, false),
            stream(BOB, ALICE, 3, 18 * S, 60 * S, false),
        ];
        assert_eq!(
            problems(&c, &streams, &th, 0),
            vec![Problem {
                kind: ProblemKind::RtpStopped,
                sender: Party::Callee,
                start_ns: 10 * S,
            }]
        );
        let cn = [
            alice,
            stream(BOB, ALICE, 2, S, 10 * S, true),
            stream(BOB, ALICE, 3, 18 * S, 60 * S, false),
        ];
        assert_eq!(problems(&c, &cn, &th, 0), vec![]);
    }

    #[test]
    fn silence_both_ways_is_no_one_way_stop_and_unanswered_calls_are_not_judged() {
        let c = call();
        let th = MediaThresholds::default();
        // Both directions stop at 20 s (a dead path both ways): neither went on, no rtp_stopped.
        let both = [
            stream(ALICE, BOB, 1, S, 20 * S, false),
            stream(BOB, ALICE, 2, S, 20 * S, false),
        ];
        assert_eq!(problems(&c, &both, &th, 0), vec![]);
        let mut t = tracker(4);
        feed(&mut t, 0, &request("INVITE", 1, false, ID));
        feed(&mut t, S, &response("486 Busy Here", 1, "INVITE", ID));
        let busy = t.get(ID).expect("call").clone();
        assert_eq!(problems(&busy, &[], &th, 60 * S), vec![]);
        // An answered call without any RTP: no_rtp both ways, from the answer.
        let none = problems(&c, &[], &th, 0);
        assert_eq!(
            none.iter()
                .map(|p| (p.kind, p.sender, p.start_ns))
                .collect::<Vec<_>>(),
            vec![
                (ProblemKind::NoRtp, Party::Caller, S),
                (ProblemKind::NoRtp, Party::Callee, S)
            ]
        );
    }
}
