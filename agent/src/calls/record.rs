//! A call as the world reads it: the `analyze` call object (`voqa_wire::CallSummary`) and the
//! record the live agent ships when the call ends (`voqa_wire::CallRecord`), built by one
//! function from the dialog, its streams' facts and its media problems.
//!
//! Formatting only: it must not measure or judge (that is `dialog` and `media`). Identities
//! leave pseudonymised here.

use voqa_wire::{CallEvent, CallMedia, CallRecord, CallSummary, MediaProblem, Timestamp};

use super::StreamFacts;
use super::dialog::Call;
use super::media::{Problem, direction_of};
use crate::report::live::stream_id_of;
use crate::report::r6;
use crate::streams::privacy::Pseudonymizer;

fn ms_between(from: Option<i64>, to: Option<i64>) -> Option<u64> {
    let (from, to) = (from?, to?);
    u64::try_from(to.checked_sub(from)?)
        .ok()
        .map(|ns| ns / 1_000_000)
}

/// The call object: `call_id` already pseudonymised (shared with its streams), `streams` the
/// indexes of its streams in the `analyze` document (empty in records). The worst window is
/// the call's worst interval window where one was measured (live), else its worst stream's
/// span.
pub fn call_summary(
    call: &Call,
    call_id: String,
    streams: &[StreamFacts],
    stream_indexes: Vec<usize>,
    problems: &[Problem],
    privacy: &Pseudonymizer,
) -> CallSummary {
    let t = |ns: Option<i64>| ns.map(Timestamp::from_ns);
    let media: Vec<CallMedia> = streams
        .iter()
        .map(|s| CallMedia {
            stream_id: stream_id_of(&s.src, &s.dst, s.ssrc, s.first_ns),
            direction: direction_of(call.stream_direction(&s.src, &s.dst)).to_owned(),
            codec: s.codec.clone(),
            mos: s.mos.map(r6),
        })
        .collect();
    let worst_stream = streams.iter().filter(|s| s.mos.is_some()).min_by(|a, b| {
        a.mos
            .partial_cmp(&b.mos)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    // The call's MOS is its worst stream's (whole-stream figures, the same live and offline);
    // the window is the worst interval window where live capture measured one.
    let mos = worst_stream.and_then(|s| s.mos).map(r6);
    let window = match (call.worst_window, worst_stream) {
        (Some((_, start, end)), _) => Some((start, end)),
        (None, Some(s)) => Some((s.first_ns, s.last_ns)),
        (None, None) => None,
    };
    let ring_end = call.answer_ns().or(call.end_ns());
    CallSummary {
        call_id,
        from: call.from_user.as_deref().map(|u| privacy.apply(u)),
        to: call.to_user.as_deref().map(|u| privacy.apply(u)),
        streams: stream_indexes,
        setup: t(call.invite_ns()),
        answer: t(call.answer_ns()),
        end: t(call.end_ns()),
        status: call.status,
        first_provisional: t(call.provisional_ns()),
        first_ringing: t(call.ringing_ns()),
        reason_cause: call.reason_cause,
        end_cause: call.end_cause.map(|c| c.as_str().to_owned()),
        ended_by: call.ended_by.map(|b| b.as_str().to_owned()),
        direction: call.direction.map(|d| d.as_str().to_owned()),
        peer: call.peer.map(|p| p.to_string()),
        ring_ms: ms_between(call.ringing_ns(), ring_end),
        duration_ms: ms_between(call.answer_ns(), call.end_ns()),
        reinvites: call.reinvites,
        forks: call.forks,
        retransmissions: call.retransmissions,
        events: call
            .events
            .iter()
            .map(|e| CallEvent {
                time: Timestamp::from_ns(e.ns),
                kind: e.kind.as_str().to_owned(),
                by: e.by.map(|p| p.as_str().to_owned()),
            })
            .collect(),
        media,
        mos,
        worst_window_start: window.map(|w| Timestamp::from_ns(w.0)),
        worst_window_end: window.map(|w| Timestamp::from_ns(w.1)),
        problems: problems
            .iter()
            .map(|p| MediaProblem {
                kind: p.kind.as_str().to_owned(),
                direction: direction_of(Some(p.sender)).to_owned(),
                start: Timestamp::from_ns(p.start_ns),
            })
            .collect(),
        bye_response: t(call.bye_response_ns()),
    }
}

/// The record the agent ships for a retired call (its streams' facts and problems attached).
pub fn call_record(agent_id: &str, call: &Call, privacy: &Pseudonymizer) -> CallRecord {
    let call_id = privacy.apply(&call.call_id);
    let call_key = call_key(&call_id, call.first_ns());
    CallRecord {
        agent_id: agent_id.to_owned(),
        call_key,
        call: call_summary(
            call,
            call_id,
            &call.streams,
            Vec::new(),
            &call.problems,
            privacy,
        ),
    }
}

/// Stable key of a call: FNV-1a over its pseudonymised Call-ID and first-seen time.
pub fn call_key(call_id: &str, first_ns: i64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in call_id
        .bytes()
        .chain([b'|'])
        .chain(first_ns.to_string().into_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}
