//! A call as the world reads it: the `analyze` call object (`voqa_wire::CallSummary`) and the
//! record the live agent ships when the call ends (`voqa_wire::CallRecord`), built by one
//! function ([`call_view`]) from the dialog, its streams' facts and its media problems: the
//! `analyze` document writes the borrowed [`CallView`], records own its [`CallSummary`].
//!
//! Formatting only: it must not measure or judge (that is `dialog` and `media`). Identities
//! leave pseudonymised here.

use voqa_wire::{CallEvent, CallMedia, CallRecord, CallSummary, MediaProblem, Timestamp};

use super::StreamFacts;
use super::dialog::Call;
use super::media::{Problem, direction_of};
use crate::report::live::{StreamId, stream_id_hex};
use crate::report::r6;
use crate::streams::privacy::Pseudonymizer;

fn ms_between(from: Option<i64>, to: Option<i64>) -> Option<u64> {
    let (from, to) = (from?, to?);
    u64::try_from(to.checked_sub(from)?)
        .ok()
        .map(|ns| ns / 1_000_000)
}

/// A call object as the `analyze` document writes it: [`CallSummary`]'s fields, in its order,
/// borrowed instead of owned (a document of 25,000 calls built and freed a dozen `String`s and
/// `Vec`s per call). [`CallView::to_summary`] is the owned object; the JSON writer writes the
/// view, byte for byte what serde writes for that summary (tested).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallView<'a> {
    pub call_id: &'a str,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub streams: &'a [usize],
    pub setup: Option<Timestamp>,
    pub answer: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub status: Option<u16>,
    pub first_provisional: Option<Timestamp>,
    pub first_ringing: Option<Timestamp>,
    pub reason_cause: Option<u16>,
    pub end_cause: Option<&'a str>,
    pub ended_by: Option<&'a str>,
    pub direction: Option<&'a str>,
    pub peer: Option<&'a str>,
    pub ring_ms: Option<u64>,
    pub duration_ms: Option<u64>,
    pub reinvites: u32,
    pub forks: u32,
    pub retransmissions: u32,
    pub events: &'a [EventView<'a>],
    pub media: &'a [MediaView<'a>],
    pub mos: Option<f64>,
    pub worst_window_start: Option<Timestamp>,
    pub worst_window_end: Option<Timestamp>,
    pub problems: &'a [ProblemView<'a>],
    pub bye_response: Option<Timestamp>,
}

/// [`CallEvent`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventView<'a> {
    pub time: Timestamp,
    pub kind: &'a str,
    pub by: Option<&'a str>,
}

/// [`CallMedia`], borrowed; the stream id is always 16 hex digits, kept inline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediaView<'a> {
    pub stream_id: StreamId,
    pub direction: &'a str,
    pub codec: &'a str,
    pub mos: Option<f64>,
}

/// [`MediaProblem`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProblemView<'a> {
    pub kind: &'a str,
    pub direction: &'a str,
    pub start: Timestamp,
}

impl CallView<'_> {
    /// The owned call object (the table, call records, tests).
    pub fn to_summary(&self) -> CallSummary {
        let text = |s: Option<&str>| s.map(str::to_owned);
        CallSummary {
            call_id: self.call_id.to_owned(),
            from: text(self.from),
            to: text(self.to),
            streams: self.streams.to_vec(),
            setup: self.setup,
            answer: self.answer,
            end: self.end,
            status: self.status,
            first_provisional: self.first_provisional,
            first_ringing: self.first_ringing,
            reason_cause: self.reason_cause,
            end_cause: text(self.end_cause),
            ended_by: text(self.ended_by),
            direction: text(self.direction),
            peer: text(self.peer),
            ring_ms: self.ring_ms,
            duration_ms: self.duration_ms,
            reinvites: self.reinvites,
            forks: self.forks,
            retransmissions: self.retransmissions,
            events: self
                .events
                .iter()
                .map(|e| CallEvent {
                    time: e.time,
                    kind: e.kind.to_owned(),
                    by: text(e.by),
                })
                .collect(),
            media: self
                .media
                .iter()
                .map(|m| CallMedia {
                    stream_id: m.stream_id.as_str().to_owned(),
                    direction: m.direction.to_owned(),
                    codec: m.codec.to_owned(),
                    mos: m.mos,
                })
                .collect(),
            mos: self.mos,
            worst_window_start: self.worst_window_start,
            worst_window_end: self.worst_window_end,
            problems: self
                .problems
                .iter()
                .map(|p| MediaProblem {
                    kind: p.kind.to_owned(),
                    direction: p.direction.to_owned(),
                    start: p.start,
                })
                .collect(),
            bye_response: self.bye_response,
        }
    }
}

/// The media entry of one of `call`'s streams (`codec`: the stream's codec name, borrowed
/// from wherever it is kept).
pub fn media_view<'a>(call: &Call, s: &StreamFacts, codec: &'a str) -> MediaView<'a> {
    MediaView {
        stream_id: stream_id_hex(&s.src, &s.dst, s.ssrc, s.first_ns),
        direction: direction_of(call.stream_direction(&s.src, &s.dst)),
        codec,
        mos: s.mos.map(r6),
    }
}

/// The events of `call`, as written.
pub fn event_views(call: &Call) -> impl Iterator<Item = EventView<'static>> + '_ {
    call.events.iter().map(|e| EventView {
        time: Timestamp::from_ns(e.ns),
        kind: e.kind.as_str(),
        by: e.by.map(|p| p.as_str()),
    })
}

/// The media problems, as written.
pub fn problem_views(problems: &[Problem]) -> impl Iterator<Item = ProblemView<'static>> + '_ {
    problems.iter().map(|p| ProblemView {
        kind: p.kind.as_str(),
        direction: direction_of(Some(p.sender)),
        start: Timestamp::from_ns(p.start_ns),
    })
}

/// The call's MOS and worst window: its worst stream's MOS (whole-stream figures, the same
/// live and offline); the window is the worst interval window where live capture measured
/// one, else the worst stream's span.
pub fn worst_of(call: &Call, streams: &[StreamFacts]) -> (Option<f64>, Option<(i64, i64)>) {
    let worst_stream = streams.iter().filter(|s| s.mos.is_some()).min_by(|a, b| {
        a.mos
            .partial_cmp(&b.mos)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mos = worst_stream.and_then(|s| s.mos).map(r6);
    let window = match (call.worst_window, worst_stream) {
        (Some((_, start, end)), _) => Some((start, end)),
        (None, Some(s)) => Some((s.first_ns, s.last_ns)),
        (None, None) => None,
    };
    (mos, window)
}

/// The parts of a call object that are not the call's own (its identities already
/// pseudonymised, its lists as written, its worst MOS and window from [`worst_of`]).
#[derive(Debug, Clone, Copy)]
pub struct CallParts<'a> {
    pub call_id: &'a str,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub peer: Option<&'a str>,
    pub streams: &'a [usize],
    pub events: &'a [EventView<'a>],
    pub media: &'a [MediaView<'a>],
    pub problems: &'a [ProblemView<'a>],
    pub worst: (Option<f64>, Option<(i64, i64)>),
}

/// The call object of `call` with `parts`.
pub fn call_view<'a>(call: &Call, parts: CallParts<'a>) -> CallView<'a> {
    let t = |ns: Option<i64>| ns.map(Timestamp::from_ns);
    let (mos, window) = parts.worst;
    let ring_end = call.answer_ns().or(call.end_ns());
    CallView {
        call_id: parts.call_id,
        from: parts.from,
        to: parts.to,
        streams: parts.streams,
        setup: t(call.invite_ns()),
        answer: t(call.answer_ns()),
        end: t(call.end_ns()),
        status: call.status,
        first_provisional: t(call.provisional_ns()),
        first_ringing: t(call.ringing_ns()),
        reason_cause: call.reason_cause,
        end_cause: call.end_cause.map(|c| c.as_str()),
        ended_by: call.ended_by.map(|b| b.as_str()),
        direction: call.direction.map(|d| d.as_str()),
        peer: parts.peer,
        ring_ms: ms_between(call.ringing_ns(), ring_end),
        duration_ms: ms_between(call.answer_ns(), call.end_ns()),
        reinvites: call.reinvites,
        forks: call.forks,
        retransmissions: call.retransmissions,
        events: parts.events,
        media: parts.media,
        mos,
        worst_window_start: window.map(|w| Timestamp::from_ns(w.0)),
        worst_window_end: window.map(|w| Timestamp::from_ns(w.1)),
        problems: parts.problems,
        bye_response: t(call.bye_response_ns()),
    }
}

/// The owned call object: `call_id` already pseudonymised, `streams` the indexes of its
/// streams in the `analyze` document (empty in records).
pub fn call_summary(
    call: &Call,
    call_id: &str,
    streams: &[StreamFacts],
    stream_indexes: &[usize],
    problems: &[Problem],
    privacy: &Pseudonymizer,
) -> CallSummary {
    let from = call.from_user.as_deref().map(|u| privacy.apply(u));
    let to = call.to_user.as_deref().map(|u| privacy.apply(u));
    let peer = call.peer.map(|p| p.to_string());
    let events: Vec<EventView<'_>> = event_views(call).collect();
    let media: Vec<MediaView<'_>> = streams
        .iter()
        .map(|s| media_view(call, s, &s.codec))
        .collect();
    let problems: Vec<ProblemView<'_>> = problem_views(problems).collect();
    call_view(
        call,
        CallParts {
            call_id,
            from: from.as_deref(),
            to: to.as_deref(),
            peer: peer.as_deref(),
            streams: stream_indexes,
            events: &events,
            media: &media,
            problems: &problems,
            worst: worst_of(call, streams),
        },
    )
    .to_summary()
}

/// The record the agent ships for a retired call (its streams' facts and problems attached).
pub fn call_record(agent_id: &str, call: &Call, privacy: &Pseudonymizer) -> CallRecord {
    let call_id = privacy.apply(&call.call_id);
    let call_key = call_key(&call_id, call.first_ns());
    CallRecord {
        agent_id: agent_id.to_owned(),
        call_key,
        call: call_summary(call, &call_id, &call.streams, &[], &call.problems, privacy),
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
