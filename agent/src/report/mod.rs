//! Turning analysis results into the reports people and programs read: the stable
//! `analyze --format json` document (voqa-wire types) and the terminal table.
//!
//! Identities (Call-ID, From/To user parts) are pseudonymised here, on the way out, unless the
//! operator switched it off. Nothing here measures; it only formats.

pub mod json;
pub mod live;
pub mod table;

use std::net::SocketAddr;
use std::ops::Range;

use hashbrown::HashMap;
use serde::Serialize;
use voqa_wire::{
    AnalysisSettings, AnalyzeOutput, ClockInference as WireClockInference, FileSummary,
    StreamSummary, Timestamp,
};

use crate::calls::dialog::Call;
use crate::calls::record::{
    CallParts, CallView, EventView, MediaView, ProblemView, call_view, event_views, media_view,
    problem_views, worst_of,
};
use crate::calls::{StreamFacts, media};
use crate::capture::hint;
use crate::quality::codec::{CodecValues, MediaRole};
use crate::quality::stream::ClockSource;
use crate::streams::privacy::Pseudonymizer;
use crate::streams::{AnalysisResult, AnalyzerConfig, StreamResult};

/// Rounds to 6 decimals so JSON shows measured precision, not float noise.
pub(crate) fn r6(x: f64) -> f64 {
    round_half_away(x * 1e6) / 1e6
}

/// `y.round()` (half away from zero, the sign kept, zeros included) without the call into
/// the maths library that the default x86-64 target makes of it: the truncating conversion to
/// an integer and one correction. A dozen figures per stream and call are rounded so.
#[inline]
fn round_half_away(y: f64) -> f64 {
    // From 2^52 on every double is a whole number; NaN and infinities go the general way.
    if y.is_nan() || y.abs() >= 4_503_599_627_370_496.0 {
        return y.round();
    }
    let whole = (y as i64) as f64;
    // Exact: `y` and its whole part are close enough for the difference to be representable.
    let rounded = if (y - whole).abs() >= 0.5 {
        whole + 1f64.copysign(y)
    } else {
        whole
    };
    // `round` keeps the sign, also of a zero result (-0.3 rounds to -0.0).
    rounded.copysign(y)
}

/// The `analyze` document as it is written: [`AnalyzeOutput`]'s fields, in its order and with
/// its serde attributes, with the streams serialised straight from the analysis result
/// ([`StreamView`]) instead of first copied into owned summaries (a dozen `String`s per stream,
/// built and freed: with 50,000 streams that was a tenth of the run). Serialising it gives the
/// same bytes as serialising [`AnalyzeDocument::to_output`] (tested). The calls likewise, as
/// [`CallView`]s.
pub struct AnalyzeDocument<'a> {
    pub files: Vec<FileSummary>,
    streams: StreamList<'a>,
    calls: CallList<'a>,
    pub analysis: Option<AnalysisSettings>,
    pub dialogs: Option<voqa_wire::DialogStats>,
}

impl AnalyzeDocument<'_> {
    /// The owned document (the table, and tests), equal to what serialising `self` writes.
    pub fn to_output(&self) -> AnalyzeOutput {
        AnalyzeOutput {
            files: self.files.clone(),
            streams: self.streams.views().map(|v| v.to_summary()).collect(),
            calls: self
                .calls
                .views(&self.streams.names)
                .map(|v| v.to_summary())
                .collect(),
            analysis: self.analysis.clone(),
            dialogs: self.dialogs,
        }
    }
}

/// The streams of the document, each written as a [`StreamView`] when serialised.
struct StreamList<'a> {
    streams: &'a [StreamResult],
    /// The pseudonymised Call-IDs one after another; `spans[i]` is stream `i`'s, if it has one.
    names: String,
    spans: Vec<Option<(usize, usize)>>,
    jitter_buffer: &'a str,
}

impl<'a> StreamList<'a> {
    fn views(&self) -> impl Iterator<Item = StreamView<'_>> + '_ {
        self.streams.iter().enumerate().map(|(i, s)| {
            let call_id = self
                .spans
                .get(i)
                .copied()
                .flatten()
                .and_then(|(a, b)| self.names.get(a..b));
            stream_view(s, call_id, self.jitter_buffer)
        })
    }
}

impl Serialize for StreamList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.views())
    }
}

/// The calls of the document, each written as a [`CallView`]: the call and its worst MOS,
/// with its texts (pseudonyms, peer) in the document's `names` and its lists in shared
/// vectors, by position: no allocation per call.
#[derive(Default)]
struct CallList<'a> {
    calls: Vec<CallEntry<'a>>,
    members: Vec<usize>,
    events: Vec<EventView<'static>>,
    media: Vec<MediaView<'a>>,
    problems: Vec<ProblemView<'static>>,
}

/// A call of [`CallList`]: spans of `names`, ranges of the list's vectors.
struct CallEntry<'a> {
    call: &'a Call,
    call_id: (usize, usize),
    from: Option<(usize, usize)>,
    to: Option<(usize, usize)>,
    peer: Option<(usize, usize)>,
    streams: Range<usize>,
    events: Range<usize>,
    media: Range<usize>,
    problems: Range<usize>,
    worst: (Option<f64>, Option<(i64, i64)>),
}

impl CallList<'_> {
    fn views<'v>(&'v self, names: &'v str) -> impl Iterator<Item = CallView<'v>> + 'v {
        let text = move |span: (usize, usize)| names.get(span.0..span.1).unwrap_or("");
        self.calls.iter().map(move |c| {
            call_view(
                c.call,
                CallParts {
                    call_id: text(c.call_id),
                    from: c.from.map(text),
                    to: c.to.map(text),
                    peer: c.peer.map(text),
                    streams: self.members.get(c.streams.clone()).unwrap_or_default(),
                    events: self.events.get(c.events.clone()).unwrap_or_default(),
                    media: self.media.get(c.media.clone()).unwrap_or_default(),
                    problems: self.problems.get(c.problems.clone()).unwrap_or_default(),
                    worst: c.worst,
                },
            )
        })
    }
}

impl Serialize for AnalyzeDocument<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // `AnalyzeOutput`'s fields and attributes, with the streams and calls as views.
        use serde::ser::SerializeStruct;
        struct Calls<'d, 'a>(&'d AnalyzeDocument<'a>);
        impl Serialize for Calls<'_, '_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let doc = self.0;
                serializer.collect_seq(doc.calls.views(&doc.streams.names).map(|v| v.to_summary()))
            }
        }
        let mut s = serializer.serialize_struct("AnalyzeOutput", 5)?;
        s.serialize_field("files", &self.files)?;
        s.serialize_field("streams", &self.streams)?;
        s.serialize_field("calls", &Calls(self))?;
        if let Some(analysis) = &self.analysis {
            s.serialize_field("analysis", analysis)?;
        } else {
            s.skip_field("analysis")?;
        }
        if let Some(dialogs) = &self.dialogs {
            s.serialize_field("dialogs", dialogs)?;
        } else {
            s.skip_field("dialogs")?;
        }
        s.end()
    }
}

impl<'a> AnalyzeDocument<'a> {
    /// The calls as written, in order.
    pub fn call_views(&self) -> impl Iterator<Item = CallView<'_>> + '_ {
        self.calls.views(&self.streams.names)
    }
}

/// Builds the `analyze` JSON document (the caller states its settings in `analysis`).
///
/// Linear in streams + calls: streams are tied to their calls through one index built here
/// (a per-call search of every stream would be quadratic), and each distinct Call-ID is
/// pseudonymised once for the call and all of its streams.
pub fn analyze_document<'a>(
    files: Vec<FileSummary>,
    result: &'a AnalysisResult,
    privacy: &Pseudonymizer,
    jitter_buffer: &'a str,
) -> AnalyzeDocument<'a> {
    // Streams of each Call-ID as a linked list through `next` (ascending stream order), headed
    // in `first_of` with the Call-ID's pseudonym (its span in `names`): no allocation per call
    // or stream beyond the calls' output.
    let mut first_of: HashMap<&str, (usize, (usize, usize)), foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(result.streams.len(), Default::default());
    let mut next = vec![usize::MAX; result.streams.len()];
    // Sized for a pseudonym per Call-ID, From and To (`anon:` and 16 digits) so that the text
    // of 75,000 of them is not copied again at every doubling.
    let mut names = String::with_capacity(21 * 3 * result.calls.len());
    let mut spans = vec![None; result.streams.len()];
    for (i, s) in result.streams.iter().enumerate().rev() {
        let Some(id) = s.call_id.as_deref() else {
            continue;
        };
        let span = match first_of.get_mut(id) {
            Some((head, span)) => {
                next[i] = *head;
                *head = i;
                *span
            }
            None => {
                let span = push_pseudonym(&mut names, privacy, id);
                first_of.insert(id, (i, span));
                span
            }
        };
        spans[i] = Some(span);
    }
    // A stream is usually in one call: its index and media entry, without regrowing.
    let mut list = CallList {
        calls: Vec::with_capacity(result.calls.len()),
        members: Vec::with_capacity(result.streams.len()),
        media: Vec::with_capacity(result.streams.len()),
        ..CallList::default()
    };
    // Each call's first stream and Call-ID pseudonym, looked up before the calls are built:
    // then the streams of a call a few ahead are known, and asked into the cache while this
    // one is built (with 50,000 streams each result is a load from memory, and reading them
    // in call order was most of this function's time). Its identities likewise.
    let heads: Vec<Option<(usize, (usize, usize))>> = result
        .calls
        .iter()
        .map(|call| first_of.get(&*call.call_id).copied())
        .collect();
    let fetch_calls_streams = |k: usize| {
        const LINES: usize = std::mem::size_of::<StreamResult>() / hint::LINE + 1;
        let mut at = heads
            .get(k)
            .copied()
            .flatten()
            .map_or(usize::MAX, |(first, _)| first);
        // Its first two streams: nearly every call has one each way.
        for _ in 0..2 {
            let Some(s) = result.streams.get(at) else {
                break;
            };
            hint::prefetch_lines(std::ptr::from_ref(s).cast::<u8>(), LINES);
            at = next.get(at).copied().unwrap_or(usize::MAX);
        }
        if let Some(call) = result.calls.get(k) {
            for user in [&call.from_user, &call.to_user].into_iter().flatten() {
                hint::prefetch_lines(user.as_ptr(), 1);
            }
        }
    };
    /// How many calls ahead.
    const AHEAD: usize = 4;
    let mut facts: Vec<StreamFacts> = Vec::new();
    for (k, call) in result.calls.iter().enumerate() {
        fetch_calls_streams(k + AHEAD);
        let id = &*call.call_id;
        let (first, call_id) = match heads.get(k).copied().flatten() {
            Some((first, span)) => (first, span),
            None => (usize::MAX, push_pseudonym(&mut names, privacy, id)),
        };
        let members_from = list.members.len();
        let mut at = first;
        while let Some(&after) = next.get(at) {
            list.members.push(at);
            at = after;
        }
        let members = members_from..list.members.len();
        facts.clear();
        let media_from = list.media.len();
        for s in list.members[members.clone()]
            .iter()
            .filter_map(|&i| result.streams.get(i))
        {
            let f = StreamFacts::of(s);
            list.media.push(media_view(call, &f, &s.codec));
            facts.push(f);
        }
        let problems =
            media::problems(call, &facts, &result.call_thresholds, result.capture_end_ns);
        let events_from = list.events.len();
        list.events.extend(event_views(call));
        let problems_from = list.problems.len();
        list.problems.extend(problem_views(&problems));
        let user =
            |names: &mut String, u: Option<&str>| u.map(|u| push_pseudonym(names, privacy, u));
        let from = user(&mut names, call.from_user.as_deref());
        let to = user(&mut names, call.to_user.as_deref());
        let peer = call.peer.map(|p| {
            use std::fmt::Write;
            let start = names.len();
            let _ = write!(names, "{p}");
            (start, names.len())
        });
        list.calls.push(CallEntry {
            call,
            call_id,
            from,
            to,
            peer,
            streams: members,
            events: events_from..list.events.len(),
            media: media_from..list.media.len(),
            problems: problems_from..list.problems.len(),
            worst: worst_of(call, &facts),
        });
    }
    AnalyzeDocument {
        files,
        streams: StreamList {
            streams: &result.streams,
            names,
            spans,
            jitter_buffer,
        },
        calls: list,
        analysis: None,
        dialogs: Some(dialog_stats(result)),
    }
}

/// Appends `id`'s pseudonym to `names` and returns its span there.
fn push_pseudonym(names: &mut String, privacy: &Pseudonymizer, id: &str) -> (usize, usize) {
    let start = names.len();
    privacy.apply_to(id, names);
    (start, names.len())
}

/// The dialog engine's counters of an analysis (`dialogs`). Open dialogs are the listed calls
/// without an end: the offline analysis leaves calls that are up at the capture's end open.
pub fn dialog_stats(result: &AnalysisResult) -> voqa_wire::DialogStats {
    let c = &result.call_counters;
    voqa_wire::DialogStats {
        calls: result.calls.len() as u64,
        open: result
            .calls
            .iter()
            .filter(|call| call.end_ns().is_none())
            .count() as u64,
        evicted: c.evicted,
        timed_out: c.timed_out,
        forgotten: result.calls_forgotten,
        retransmissions: c.retransmissions,
        non_call_messages: c.non_call_messages,
    }
}

/// The settings block of the `analyze` document: the jitter buffer and its re-synchronisation,
/// the assumed delay.
pub fn analysis_settings(cfg: &AnalyzerConfig) -> AnalysisSettings {
    AnalysisSettings {
        jitter_buffer: cfg.jitter_buffer.to_string(),
        resync_after_late: u32::from(cfg.resync_after_late),
        assumed_one_way_ms: cfg.assumed_one_way_ms,
    }
}

/// A socket address written as its `Display` text, without a `String`: IPv4 formatted digit by
/// digit on the stack (two per stream in a document of 50,000 streams showed in profiles), IPv6
/// through `Display` (its text form has rules).
#[derive(Clone, Copy)]
struct AddrText(SocketAddr);

impl AddrText {
    /// The IPv4 text in `buf`, or `None` for IPv6.
    fn v4<'b>(&self, buf: &'b mut [u8; 21]) -> Option<&'b str> {
        std::str::from_utf8(self.v4_ascii(buf)?).ok()
    }

    /// [`AddrText::v4`] as the bytes (ASCII digits, dots and a colon) for writers of bytes: an
    /// octet is one 4-byte copy from a table, its dot included (two addresses per stream and
    /// two per call's stream id in a document of 50,000 streams).
    fn v4_ascii<'b>(&self, buf: &'b mut [u8; 21]) -> Option<&'b [u8]> {
        /// Each octet's digits and a dot, padded to 4 bytes; the length is 2 to 4.
        static OCTETS: [([u8; 4], u8); 256] = {
            let mut table = [([0u8; 4], 0u8); 256];
            let mut n = 0;
            while n < 256 {
                let (hundreds, tens, ones) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
                table[n] = if n >= 100 {
                    ([b'0' + hundreds, b'0' + tens, b'0' + ones, b'.'], 4)
                } else if n >= 10 {
                    ([b'0' + tens, b'0' + ones, b'.', 0], 3)
                } else {
                    ([b'0' + ones, b'.', 0, 0], 2)
                };
                n += 1;
            }
            table
        };
        let SocketAddr::V4(v4) = self.0 else {
            return None;
        };
        let mut at = 0;
        for octet in v4.ip().octets() {
            let (text, len) = &OCTETS[usize::from(octet)];
            // At most 12 bytes precede an octet: the 4 bytes fit in the 21.
            if let Some(slot) = buf.get_mut(at..at + 4) {
                slot.copy_from_slice(text);
            }
            at += usize::from(*len);
        }
        // The last octet's dot is the port's colon.
        if let Some(colon) = buf.get_mut(at - 1) {
            *colon = b':';
        }
        let mut digits = itoa::Buffer::new();
        let port = digits.format(v4.port()).as_bytes();
        // "255.255.255.255:65535" is 21 bytes: it always fits.
        if let Some(slot) = buf.get_mut(at..at + port.len()) {
            slot.copy_from_slice(port);
            at += port.len();
        }
        buf.get(..at)
    }

    fn text(&self) -> String {
        let mut buf = [0u8; 21];
        match self.v4(&mut buf) {
            Some(text) => text.to_owned(),
            None => self.0.to_string(),
        }
    }
}

impl Serialize for AddrText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 21];
        match self.v4(&mut buf) {
            Some(text) => serializer.serialize_str(text),
            None => serializer.collect_str(&self.0),
        }
    }
}

/// An SSRC as `0x` and eight lower-case hex digits, without a `String`.
#[derive(Clone, Copy)]
struct SsrcText(u32);

impl SsrcText {
    fn fill(self, buf: &mut [u8; 10]) -> &str {
        *buf = self.ascii();
        std::str::from_utf8(buf).unwrap_or("0x????????")
    }

    /// The text as bytes, for the JSON writer (no UTF-8 check: they are ASCII).
    fn ascii(self) -> [u8; 10] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = *b"0x00000000";
        for i in 0..8 {
            buf[2 + i] = HEX[((self.0 >> (28 - 4 * i)) & 0xf) as usize];
        }
        buf
    }
}

impl Serialize for SsrcText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.fill(&mut [0u8; 10]))
    }
}

/// A stream's flags: at most one of each kind, so a fixed array, not a `Vec` per stream.
#[derive(Clone, Copy, Default)]
struct Flags {
    items: [&'static str; 5],
    len: usize,
}

impl Flags {
    fn push(&mut self, flag: &'static str) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = flag;
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[&'static str] {
        self.items.get(..self.len).unwrap_or(&[])
    }
}

impl Serialize for Flags {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.as_slice())
    }
}

/// One stream of the `analyze` document as it is written: [`StreamSummary`]'s fields, in its
/// order and with its serde attributes, borrowed from the result or formatted on the stack.
/// [`StreamView::to_summary`] gives the owned summary; the field list is kept in step with
/// [`StreamSummary`] by that exhaustive conversion and by the test that serialises both.
#[derive(Serialize)]
pub(crate) struct StreamView<'a> {
    src: AddrText,
    dst: AddrText,
    ssrc: SsrcText,
    payload_type: u8,
    codec: &'a str,
    clock_rate: Option<u32>,
    call_id: Option<&'a str>,
    first_seen: Timestamp,
    last_seen: Timestamp,
    packets: u64,
    expected: u64,
    lost: u64,
    duplicates: u64,
    reordered: u64,
    jitter_ms: Option<f64>,
    max_jitter_ms: Option<f64>,
    mean_jitter_ms: Option<f64>,
    max_delta_ms: f64,
    burst_ratio: f64,
    jb_discarded: u64,
    effective_loss_pct: f64,
    rtt_ms: Option<f64>,
    r_factor: Option<f64>,
    mos: Option<f64>,
    loss_bursts: u64,
    max_loss_burst: u64,
    lost_rfc3550: i64,
    delay_ms: Option<f64>,
    delay_source: &'static str,
    clock_source: &'static str,
    detection: &'static str,
    jitter_buffer: &'a str,
    ie: Option<f64>,
    bpl: Option<f64>,
    flags: Flags,
    media: &'static str,
    srtp: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    clock_inference: Option<WireClockInference>,
}

impl StreamView<'_> {
    /// The owned summary (live reports, the table): the same fields, copied.
    pub(crate) fn to_summary(&self) -> StreamSummary {
        // Destructured so that a field added to one side and not the other does not compile.
        let StreamView {
            src,
            dst,
            ssrc,
            payload_type,
            codec,
            clock_rate,
            call_id,
            first_seen,
            last_seen,
            packets,
            expected,
            lost,
            duplicates,
            reordered,
            jitter_ms,
            max_jitter_ms,
            mean_jitter_ms,
            max_delta_ms,
            burst_ratio,
            jb_discarded,
            effective_loss_pct,
            rtt_ms,
            r_factor,
            mos,
            loss_bursts,
            max_loss_burst,
            lost_rfc3550,
            delay_ms,
            delay_source,
            clock_source,
            detection,
            jitter_buffer,
            ie,
            bpl,
            flags,
            media,
            srtp,
            clock_inference,
        } = self;
        StreamSummary {
            src: src.text(),
            dst: dst.text(),
            ssrc: ssrc.fill(&mut [0u8; 10]).to_owned(),
            payload_type: *payload_type,
            codec: (*codec).to_owned(),
            clock_rate: *clock_rate,
            call_id: call_id.map(str::to_owned),
            first_seen: *first_seen,
            last_seen: *last_seen,
            packets: *packets,
            expected: *expected,
            lost: *lost,
            duplicates: *duplicates,
            reordered: *reordered,
            jitter_ms: *jitter_ms,
            max_jitter_ms: *max_jitter_ms,
            mean_jitter_ms: *mean_jitter_ms,
            max_delta_ms: *max_delta_ms,
            burst_ratio: *burst_ratio,
            jb_discarded: *jb_discarded,
            effective_loss_pct: *effective_loss_pct,
            rtt_ms: *rtt_ms,
            r_factor: *r_factor,
            mos: *mos,
            loss_bursts: *loss_bursts,
            max_loss_burst: *max_loss_burst,
            lost_rfc3550: *lost_rfc3550,
            delay_ms: *delay_ms,
            delay_source: (*delay_source).to_owned(),
            clock_source: (*clock_source).to_owned(),
            detection: (*detection).to_owned(),
            jitter_buffer: (*jitter_buffer).to_owned(),
            ie: *ie,
            bpl: *bpl,
            flags: flags.as_slice().iter().map(|f| (*f).to_owned()).collect(),
            media: (*media).to_owned(),
            srtp: *srtp,
            clock_inference: clock_inference.clone(),
        }
    }
}

pub(crate) fn stream_summary(
    s: &StreamResult,
    privacy: &Pseudonymizer,
    jitter_buffer: &str,
) -> StreamSummary {
    let call_id = s.call_id.as_deref().map(|c| privacy.apply(c));
    stream_view(s, call_id.as_deref(), jitter_buffer).to_summary()
}

/// A stream as the document shows it, with its Call-ID already pseudonymised.
fn stream_view<'a>(
    s: &'a StreamResult,
    call_id: Option<&'a str>,
    jitter_buffer: &'a str,
) -> StreamView<'a> {
    let q = &s.summary;
    let mut flags = Flags::default();
    if s.clock_source == ClockSource::Inferred {
        flags.push("clock_inferred");
    }
    if s.clock_source == ClockSource::Unknown {
        flags.push("clock_unknown");
    }
    // The codec-values flags qualify the E-model inputs, which video does not use.
    match s.codec_info.values {
        _ if s.codec_info.role == MediaRole::Video => {}
        CodecValues::G113 => {}
        CodecValues::PlcProxy => flags.push("codec_values_proxy"),
        CodecValues::BplDefaulted => flags.push("bpl_defaulted"),
        CodecValues::Unknown => flags.push("codec_values_unknown"),
    }
    if q.delay_ms.is_some() && q.delay_assumed {
        flags.push("delay_assumed");
    }
    if q.burst_ratio_out_of_range {
        flags.push("burstr_out_of_range");
    }
    if q.jb_resyncs > 0 {
        // The emulated buffer re-anchored on persistent lateness (metrics-spec §9.2a): a delay
        // step or a sender pause without a marker bit; its K − 1 discards are in jb_discarded.
        flags.push("jb_resynced");
    }
    StreamView {
        src: AddrText(s.key.src),
        dst: AddrText(s.key.dst),
        ssrc: SsrcText(s.key.ssrc),
        payload_type: s.payload_type,
        codec: &s.codec,
        clock_rate: s.clock_hz,
        call_id,
        first_seen: Timestamp::from_ns(s.first_ns),
        last_seen: Timestamp::from_ns(s.last_ns),
        packets: q.packets,
        expected: q.expected,
        lost: q.lost,
        duplicates: q.duplicates,
        reordered: q.reordered,
        jitter_ms: q.jitter_ms.map(r6),
        max_jitter_ms: q.max_jitter_ms.map(r6),
        mean_jitter_ms: q.mean_jitter_ms.map(r6),
        max_delta_ms: r6(q.max_delta_ms),
        burst_ratio: r6(q.burst_ratio),
        jb_discarded: q.jb_discarded,
        effective_loss_pct: r6(q.effective_loss_pct),
        rtt_ms: q.rtt_ms.map(r6),
        r_factor: q.r_factor.map(r6),
        mos: q.mos.map(r6),
        loss_bursts: q.loss_bursts,
        max_loss_burst: q.max_loss_burst,
        lost_rfc3550: q.lost_rfc3550,
        delay_ms: q.delay_ms.map(r6),
        delay_source: if q.rtt_ms.is_some() {
            "rtcp"
        } else {
            "assumed"
        },
        clock_source: s.clock_source.as_str(),
        detection: s.detection.as_str(),
        jitter_buffer,
        ie: q.r_factor.map(|_| s.codec_info.ie),
        bpl: q.r_factor.map(|_| s.codec_info.bpl),
        flags,
        media: if s.codec_info.role == MediaRole::Video {
            "video"
        } else {
            "audio"
        },
        srtp: s.srtp,
        clock_inference: s.clock_inference.map(|i| WireClockInference {
            method: i.method.as_str().to_owned(),
            confidence: i.confidence.map(|c| c.as_str().to_owned()),
            ts_step: i.ts_step,
            ptime_ms: i.ptime_ms().map(r6),
            pairs: i.pairs,
            matching: i.matching,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::codec::codec_by_name;
    use crate::quality::stream::QualitySummary;
    use crate::streams::detect::{ClockInference, Confidence, InferenceMethod};
    use crate::streams::{Detection, StreamKey};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn addr_text_is_display(ip in any::<[u8; 4]>(), port in any::<u16>(), v6 in any::<[u16; 8]>()) {
            for a in [SocketAddr::from((ip, port)), SocketAddr::from((std::net::Ipv6Addr::from(v6), port))] {
                prop_assert_eq!(AddrText(a).text(), a.to_string());
                prop_assert_eq!(
                    serde_json::to_string(&AddrText(a)).expect("serialize"),
                    serde_json::to_string(&a.to_string()).expect("serialize")
                );
            }
        }

        #[test]
        fn ssrc_text_is_hex(ssrc in any::<u32>()) {
            prop_assert_eq!(
                serde_json::to_string(&SsrcText(ssrc)).expect("serialize"),
                format!("\"0x{ssrc:08x}\"")
            );
        }

        /// The written stream and the owned `StreamSummary` it stands for serialise to the same
        /// bytes, in both of the document's forms, whatever the figures and flags.
        #[test]
        fn stream_view_writes_what_the_summary_writes(
            ssrc in any::<u32>(),
            pt in 0u8..128,
            packets in any::<u64>(),
            lost in any::<i64>(),
            figures in proptest::collection::vec(proptest::option::of(-1e9f64..1e9), 8),
            bools in any::<[bool; 6]>(),
            source in 0usize..5,
            call in proptest::option::of(any::<String>()),
            inferred in any::<bool>(),
        ) {
            let sources = [
                ClockSource::Static,
                ClockSource::Sdp,
                ClockSource::Config,
                ClockSource::Inferred,
                ClockSource::Unknown,
            ];
            // Codecs of every `CodecValues` kind: G.113, PLC proxy, Bpl defaulted, unknown.
            let names = ["PCMU", "opus", "G729", "G723", "no-such-codec"];
            let mut codec_info = codec_by_name(names[usize::from(pt) % names.len()], 8000);
            if bools[4] {
                codec_info.role = MediaRole::Video;
            }
            let s = StreamResult {
                key: StreamKey {
                    src: SocketAddr::from(([10, 0, 0, 1], 4000)),
                    dst: SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 5004)),
                    ssrc,
                },
                payload_type: pt,
                codec: "PCMU\"\\x".into(),
                clock_hz: figures[0].map(|f| f.abs() as u32),
                clock_source: sources[source],
                clock_inference: inferred.then_some(ClockInference {
                    clock_hz: Some(48_000),
                    method: InferenceMethod::TsStep,
                    confidence: Some(Confidence::High),
                    ts_step: Some(960),
                    pairs: 40,
                    matching: 39,
                }),
                detection: if bools[5] { Detection::Sdp } else { Detection::Heuristic },
                call_id: None,
                first_ns: lost,
                last_ns: lost.saturating_add(1),
                codec_info,
                summary: QualitySummary {
                    packets,
                    expected: packets / 2,
                    lost: packets / 3,
                    duplicates: 1,
                    reordered: 2,
                    lost_rfc3550: lost,
                    jitter_ms: figures[1],
                    max_jitter_ms: figures[2],
                    mean_jitter_ms: figures[3],
                    max_delta_ms: figures[4].unwrap_or(0.0),
                    burst_ratio: figures[5].unwrap_or(1.0),
                    burst_ratio_out_of_range: bools[0],
                    loss_bursts: 3,
                    max_loss_burst: 4,
                    jb_discarded: 5,
                    jb_resyncs: u32::from(bools[1]),
                    effective_loss_pct: 0.5,
                    rtt_ms: figures[6],
                    delay_ms: figures[7],
                    delay_assumed: bools[2],
                    ptime_ms: Some(20.0),
                    r_factor: figures[5],
                    mos: figures[6],
                },
                srtp: bools[3],
                silence: Default::default(),
            };
            let view = stream_view(&s, call.as_deref(), "fixed:60");
            let owned = view.to_summary();
            // The hand-written writer spells the stream as serde_json spells the summary.
            prop_assert_eq!(
                json::stream_text(&view),
                serde_json::to_string_pretty(&owned).expect("serialize")
            );
            prop_assert_eq!(
                serde_json::to_string_pretty(&view).expect("serialize"),
                serde_json::to_string_pretty(&owned).expect("serialize")
            );
            prop_assert_eq!(
                serde_json::to_string(&view).expect("serialize"),
                serde_json::to_string(&owned).expect("serialize")
            );
        }
    }

    proptest! {
        /// The rounding without the library call is `f64::round`, bit for bit (signs of zero
        /// included), at every size, halves and NaN included.
        #[test]
        fn round_half_away_is_round(
            y in prop_oneof![
                any::<f64>(),
                -1e7f64..1e7,
                (-1_000_000i64..1_000_000).prop_map(|n| n as f64 + 0.5),
                (-1_000_000i64..1_000_000).prop_map(|n| n as f64 - 0.5),
                Just(0.49999999999999994),
                Just(-0.49999999999999994),
                Just(4_503_599_627_370_495.5),
                Just(-0.0),
            ],
        ) {
            prop_assert_eq!(round_half_away(y).to_bits(), y.round().to_bits(), "{}", y);
        }
    }

    #[test]
    fn addr_text_edges() {
        for (a, text) in [
            (SocketAddr::from(([0, 0, 0, 0], 0)), "0.0.0.0:0"),
            (
                SocketAddr::from(([255, 255, 255, 255], 65535)),
                "255.255.255.255:65535",
            ),
            (SocketAddr::from(([10, 1, 20, 3], 5060)), "10.1.20.3:5060"),
        ] {
            assert_eq!(AddrText(a).text(), text);
        }
    }
}
