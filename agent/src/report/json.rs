//! The `analyze --format json` document written by hand, byte for byte what
//! `serde_json::to_writer_pretty` writes for the same [`AnalyzeDocument`] (two-space indent, the
//! types' field order and serde attributes, serde_json's own number formatting and its string
//! escaping), without serde's machinery per field: with 50,000 streams and 25,000 calls the
//! serde pretty printer (a call per key, a write per fragment, every key scanned for escapes)
//! was an eighth of a whole run.
//!
//! The document goes out in chunks of [`CHUNK`] bytes from one reused buffer: it stays in cache
//! and no 85 MB buffer is faulted in page by page.
//!
//! It must not decide what the document says (that is [`super::analyze_document`] and the
//! views there): only how it is spelled. Parts that are small whatever the capture (files,
//! settings, dialog counters, a stream's rare clock inference) go through serde itself,
//! re-indented, so only the per-stream and per-call objects are spelled out here; the test
//! `tests/json_writer.rs` compares the bytes with serde_json's on real documents.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};
use voqa_wire::time::put2;
use voqa_wire::{Rfc3339Writer, Timestamp};

use super::live::StreamId;
use super::{AddrText, AnalyzeDocument, SsrcText, StreamView};
use crate::calls::record::{CallView, EventView, MediaView, ProblemView};

/// Bytes gathered before they are handed to the sink: a few hundred kilobytes stay in cache and
/// make few enough writes.
const CHUNK: usize = 1 << 18;

/// A separator line: `,`, the newline and enough indentation for any depth of the document
/// (it nests five deep); cut, it is any of them. [`NEWLINE`]: the same without the comma.
const LINE: &[u8; 66] = b",\n                                                                ";
const NEWLINE: &[u8; 66] = b"\n                                                                 ";

/// `"name": ` for [`Pretty::key`], put together at compile time.
macro_rules! key {
    ($p:ident, $name:literal) => {
        $p.key(concat!("\"", $name, "\": "))
    };
}

/// A field of a stream or call object, whose fields the document writes at depth 3 (six
/// spaces): the separator line and the key are one constant, copied at once, instead of a line
/// cut to the depth and the key after it (`first`: the object's first field, without the
/// comma). A few instructions less per field, for some 3 million fields of a document of 50,000
/// streams. Only where the depth is fixed by the document's shape: `stream` and `call`.
macro_rules! field3 {
    (first $p:ident, $name:literal, $value:expr) => {
        $p.fixed_field(concat!("\n      \"", $name, "\": "), $value)
    };
    ($p:ident, $name:literal, $value:expr) => {
        $p.fixed_field(concat!(",\n      \"", $name, "\": "), $value)
    };
}

/// [`field3!`] for the objects of a call's lists (events, media, problems): depth 5.
macro_rules! field5 {
    (first $p:ident, $name:literal, $value:expr) => {
        $p.fixed_field(concat!("\n          \"", $name, "\": "), $value)
    };
    ($p:ident, $name:literal, $value:expr) => {
        $p.fixed_field(concat!(",\n          \"", $name, "\": "), $value)
    };
}

/// The key of a list-valued field of a stream or call (depth 3), as [`field3!`] writes keys.
macro_rules! key3 {
    ($p:ident, $name:literal) => {
        $p.fixed(concat!(",\n      \"", $name, "\": "))
    };
}

/// The depth at which [`write_document`] writes the fields of each stream and call (the
/// document, its list, the object), which [`field3!`] and [`field5!`] spell out.
const OBJECT_DEPTH: usize = 3;

/// Writes `doc` to `sink` exactly as `serde_json::to_writer_pretty(sink, doc)` would (no
/// trailing newline).
pub fn write_document<W: Write>(doc: &AnalyzeDocument<'_>, sink: &mut W) -> io::Result<()> {
    let mut p = Pretty::new(sink);
    p.open(b'{');
    key!(p, "files");
    p.serde(&doc.files)?;
    key!(p, "streams");
    p.open(b'[');
    for view in doc.streams.views() {
        p.item();
        stream(&mut p, &view)?;
        p.flush_if_full()?;
    }
    p.close(b']');
    key!(p, "calls");
    p.open(b'[');
    for c in doc.call_views() {
        p.item();
        call(&mut p, &c);
        p.flush_if_full()?;
    }
    p.close(b']');
    if let Some(analysis) = &doc.analysis {
        key!(p, "analysis");
        p.serde(analysis)?;
    }
    if let Some(dialogs) = &doc.dialogs {
        key!(p, "dialogs");
        p.serde(dialogs)?;
    }
    p.close(b'}');
    p.flush()
}

/// The `streams` element: [`StreamView`]'s fields in its order (destructured, so that a field
/// added to the view and not here does not compile).
fn stream<W: Write>(p: &mut Pretty<'_, W>, v: &StreamView<'_>) -> io::Result<()> {
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
    } = v;
    debug_assert_eq!(
        p.depth + 1,
        OBJECT_DEPTH,
        "field3! spells the document's depth"
    );
    p.open(b'{');
    field3!(first p, "src", src);
    field3!(p, "dst", dst);
    field3!(p, "ssrc", ssrc);
    field3!(p, "payload_type", payload_type);
    field3!(p, "codec", codec);
    field3!(p, "clock_rate", clock_rate);
    field3!(p, "call_id", call_id);
    field3!(p, "first_seen", first_seen);
    field3!(p, "last_seen", last_seen);
    field3!(p, "packets", packets);
    field3!(p, "expected", expected);
    field3!(p, "lost", lost);
    field3!(p, "duplicates", duplicates);
    field3!(p, "reordered", reordered);
    field3!(p, "jitter_ms", jitter_ms);
    field3!(p, "max_jitter_ms", max_jitter_ms);
    field3!(p, "mean_jitter_ms", mean_jitter_ms);
    field3!(p, "max_delta_ms", max_delta_ms);
    field3!(p, "burst_ratio", burst_ratio);
    field3!(p, "jb_discarded", jb_discarded);
    field3!(p, "effective_loss_pct", effective_loss_pct);
    field3!(p, "rtt_ms", rtt_ms);
    field3!(p, "r_factor", r_factor);
    field3!(p, "mos", mos);
    field3!(p, "loss_bursts", loss_bursts);
    field3!(p, "max_loss_burst", max_loss_burst);
    field3!(p, "lost_rfc3550", lost_rfc3550);
    field3!(p, "delay_ms", delay_ms);
    field3!(p, "delay_source", &Plain(delay_source));
    field3!(p, "clock_source", &Plain(clock_source));
    field3!(p, "detection", &Plain(detection));
    field3!(p, "jitter_buffer", jitter_buffer);
    field3!(p, "ie", ie);
    field3!(p, "bpl", bpl);
    key3!(p, "flags");
    p.open(b'[');
    for flag in flags.as_slice() {
        p.item();
        Plain(flag).put(p);
    }
    p.close(b']');
    field3!(p, "media", &Plain(media));
    field3!(p, "srtp", srtp);
    if let Some(inference) = clock_inference {
        key3!(p, "clock_inference");
        p.serde(inference)?;
    }
    p.close(b'}');
    Ok(())
}

/// The `calls` element: a [`CallView`], `CallSummary`'s fields in its order (destructured, like
/// streams).
fn call<W: Write>(p: &mut Pretty<'_, W>, c: &CallView<'_>) {
    let CallView {
        call_id,
        from,
        to,
        streams,
        setup,
        answer,
        end,
        status,
        first_provisional,
        first_ringing,
        reason_cause,
        end_cause,
        ended_by,
        direction,
        peer,
        ring_ms,
        duration_ms,
        reinvites,
        forks,
        retransmissions,
        events,
        media,
        mos,
        worst_window_start,
        worst_window_end,
        problems,
        bye_response,
    } = c;
    debug_assert_eq!(
        p.depth + 1,
        OBJECT_DEPTH,
        "field3! spells the document's depth"
    );
    p.open(b'{');
    field3!(first p, "call_id", call_id);
    field3!(p, "from", from);
    field3!(p, "to", to);
    key3!(p, "streams");
    p.open(b'[');
    for index in *streams {
        p.item();
        index.put(p);
    }
    p.close(b']');
    field3!(p, "setup", setup);
    field3!(p, "answer", answer);
    field3!(p, "end", end);
    field3!(p, "status", status);
    field3!(p, "first_provisional", first_provisional);
    field3!(p, "first_ringing", first_ringing);
    field3!(p, "reason_cause", reason_cause);
    field3!(p, "end_cause", end_cause);
    field3!(p, "ended_by", ended_by);
    field3!(p, "direction", direction);
    field3!(p, "peer", peer);
    field3!(p, "ring_ms", ring_ms);
    field3!(p, "duration_ms", duration_ms);
    field3!(p, "reinvites", reinvites);
    field3!(p, "forks", forks);
    field3!(p, "retransmissions", retransmissions);
    key3!(p, "events");
    p.open(b'[');
    for EventView { time, kind, by } in *events {
        p.item();
        p.open(b'{');
        field5!(first p, "time", time);
        field5!(p, "kind", kind);
        field5!(p, "by", by);
        p.close(b'}');
    }
    p.close(b']');
    key3!(p, "media");
    p.open(b'[');
    for MediaView {
        stream_id,
        direction,
        codec,
        mos,
    } in *media
    {
        p.item();
        p.open(b'{');
        field5!(first p, "stream_id", stream_id);
        field5!(p, "direction", direction);
        field5!(p, "codec", codec);
        field5!(p, "mos", mos);
        p.close(b'}');
    }
    p.close(b']');
    field3!(p, "mos", mos);
    field3!(p, "worst_window_start", worst_window_start);
    field3!(p, "worst_window_end", worst_window_end);
    key3!(p, "problems");
    p.open(b'[');
    for ProblemView {
        kind,
        direction,
        start,
    } in *problems
    {
        p.item();
        p.open(b'{');
        field5!(first p, "kind", kind);
        field5!(p, "direction", direction);
        field5!(p, "start", start);
        p.close(b'}');
    }
    p.close(b']');
    if let Some(at) = bye_response {
        field3!(p, "bye_response", at);
    }
    p.close(b'}');
}

/// serde_json's `PrettyFormatter` state (depth, whether the open container has a value yet)
/// over a chunk buffer.
struct Pretty<'s, W: Write> {
    buf: Vec<u8>,
    sink: &'s mut W,
    depth: usize,
    has_value: bool,
    /// Scratch for the parts written through serde.
    scratch: Vec<u8>,
    /// The instants' text (nine of them per call), with the date of the last one remembered.
    times: Rfc3339Writer,
}

impl<'s, W: Write> Pretty<'s, W> {
    fn new(sink: &'s mut W) -> Self {
        Pretty {
            buf: Vec::with_capacity(CHUNK + (CHUNK >> 2)),
            sink,
            depth: 0,
            has_value: false,
            scratch: Vec::new(),
            times: Rfc3339Writer::new(),
        }
    }

    fn flush_if_full(&mut self) -> io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// `,` if the container has a value already (`with_comma`), a newline and the indentation
    /// of the current depth. The whole fixed-size line is copied and cut to length: a copy of
    /// a length known at compile time is a few stores, one of a computed length a `memcpy`
    /// call (millions of them in a large document).
    fn line(&mut self, with_comma: bool) {
        let full: &[u8; 66] = if with_comma { LINE } else { NEWLINE };
        let len = usize::from(with_comma) + 1 + 2 * self.depth;
        let end = self.buf.len() + len;
        if len <= full.len() {
            self.buf.extend_from_slice(full);
            self.buf.truncate(end);
        } else {
            // Deeper than any part of the document: space by space.
            self.buf
                .extend_from_slice(&full[..1 + usize::from(with_comma)]);
            self.buf.resize(end, b' ');
        }
    }

    fn newline(&mut self) {
        self.line(false);
    }

    /// `{` or `[`.
    #[inline(always)]
    fn open(&mut self, bracket: u8) {
        self.buf.push(bracket);
        self.depth += 1;
        self.has_value = false;
    }

    /// `}` or `]`: on a line of its own unless the container is empty.
    #[inline(always)]
    fn close(&mut self, bracket: u8) {
        self.depth = self.depth.saturating_sub(1);
        if self.has_value {
            self.newline();
        }
        self.buf.push(bracket);
        self.has_value = true;
    }

    /// Before an array element or an object key.
    #[inline(always)]
    fn item(&mut self) {
        self.line(self.has_value);
    }

    /// An object key, given quoted and with its `: ` ([`key!`]: the document's keys are plain
    /// ASCII names, with nothing to escape).
    #[inline(always)]
    fn key(&mut self, quoted: &str) {
        self.item();
        self.buf.extend_from_slice(quoted.as_bytes());
    }

    /// Bytes of the document's fixed shape (a separator line with its key, [`field3!`]).
    #[inline(always)]
    fn fixed(&mut self, text: &str) {
        self.buf.extend_from_slice(text.as_bytes());
    }

    /// [`Pretty::fixed`] and a value.
    #[inline(always)]
    fn fixed_field<V: Put + ?Sized>(&mut self, line_and_key: &str, value: &V) {
        self.fixed(line_and_key);
        value.put(self);
    }

    #[inline(always)]
    fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.has_value = true;
    }

    /// A JSON string of bytes known to need no escaping (the writer's own names), quoted as
    /// they are.
    fn ascii(&mut self, text: &[u8]) {
        self.buf.push(b'"');
        self.buf.extend_from_slice(text);
        self.buf.push(b'"');
        self.has_value = true;
    }

    /// [`Pretty::ascii`] of the first `len` bytes of `text`, copied as the whole array (a
    /// fixed-size copy, see [`put_window`]): an address's digits, an SSRC's or a stream id's
    /// hex digits, three or four per stream.
    #[inline(always)]
    fn ascii_padded<const N: usize>(&mut self, text: &[u8; N], len: usize) {
        self.buf.push(b'"');
        put_window::<N>(&mut self.buf, text, 0, len);
        self.buf.push(b'"');
        self.has_value = true;
    }

    /// A JSON string, escaped as serde_json escapes (`"`, `\` and control characters only).
    /// The usual string, with nothing to escape, inline: a dozen strings per stream and call,
    /// and the call cost a third of each.
    #[inline(always)]
    fn str(&mut self, text: &str) {
        let bytes = text.as_bytes();
        if !needs_escape(bytes) {
            // Nearly every string of the document (addresses, names, pseudonyms): one copy.
            self.buf.push(b'"');
            self.buf.extend_from_slice(bytes);
            self.buf.push(b'"');
            self.has_value = true;
            return;
        }
        self.escaped(bytes);
    }

    /// [`Pretty::str`] of a string with something to escape.
    #[inline(never)]
    fn escaped(&mut self, bytes: &[u8]) {
        self.buf.push(b'"');
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape = ESCAPE[usize::from(b)];
            if escape == 0 {
                continue;
            }
            self.buf.extend_from_slice(&bytes[start..i]);
            start = i + 1;
            if escape == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.buf.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ]);
            } else {
                self.buf.extend_from_slice(&[b'\\', escape]);
            }
        }
        self.buf.extend_from_slice(&bytes[start..]);
        self.buf.push(b'"');
        self.has_value = true;
    }

    /// A value through serde_json's own pretty printer, its lines indented to this depth.
    fn serde<T: Serialize + ?Sized>(&mut self, value: &T) -> io::Result<()> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        serde_json::to_writer_pretty(&mut scratch, value).map_err(io::Error::other)?;
        // A newline in serde_json's output is always its own (strings escape theirs).
        let mut rest = &scratch[..];
        while let Some(at) = memchr::memchr(b'\n', rest) {
            self.buf.extend_from_slice(&rest[..at]);
            self.newline();
            rest = &rest[at + 1..];
        }
        self.buf.extend_from_slice(rest);
        self.has_value = true;
        self.scratch = scratch;
        Ok(())
    }
}

/// A value the writer spells itself; numbers through serde_json's formatter (itoa, and its
/// shortest round-trip float form), so they print as serde_json prints them.
trait Put {
    fn put<W: Write>(&self, p: &mut Pretty<'_, W>);
}

/// The unsigned integers, as [`put_integer`] writes them (serde serialises usize as u64).
macro_rules! put_unsigned {
    ($($t:ty),* $(,)?) => {$(
        impl Put for $t {
            fn put<W: Write>(&self, p: &mut Pretty<'_, W>) {
                put_integer(*self as u64, false, &mut p.buf);
                p.has_value = true;
            }
        }
    )*};
}

put_unsigned!(u8, u16, u32, u64, usize);

impl Put for i64 {
    fn put<W: Write>(&self, p: &mut Pretty<'_, W>) {
        put_integer(self.unsigned_abs(), *self < 0, &mut p.buf);
        p.has_value = true;
    }
}

/// `magnitude` in decimal, `-` before it if `negative`: what itoa (serde_json's integer
/// formatter) writes. Spelled right-aligned in a padded array and copied as one window of a
/// fixed size, then cut to length: a copy of a computed length is a `memcpy` call, and a dozen
/// integers per stream and call (a million in a document of 50,000 streams) made that call
/// the writer's most frequent one.
#[inline]
fn put_integer(mut magnitude: u64, negative: bool, buf: &mut Vec<u8>) {
    /// The digits end here: room before for a sign and u64's 20 digits.
    const END: usize = 21;
    /// The copied window: the longest text (a sign and 20 digits never both: i64 has 19).
    const WINDOW: usize = 21;
    let mut text = [0u8; END + WINDOW];
    let mut start = END;
    while magnitude >= 100 {
        start -= 2;
        put2(&mut text, start, (magnitude % 100) as u32);
        magnitude /= 100;
    }
    if magnitude >= 10 {
        start -= 2;
        put2(&mut text, start, magnitude as u32);
    } else {
        start -= 1;
        if let Some(digit) = text.get_mut(start) {
            *digit = b'0' + magnitude as u8;
        }
    }
    if negative {
        start -= 1;
        if let Some(sign) = text.get_mut(start) {
            *sign = b'-';
        }
    }
    put_window::<WINDOW>(buf, &text, start, END - start);
}

/// Appends `text[start..start + len]` as a copy of the fixed-size window `text[start..start +
/// N]` cut back to `len` (`len` at most `N`, and `text` long enough for the window): a few
/// register moves instead of a `memcpy` call for a short text whose length is only known at
/// run time.
#[inline(always)]
fn put_window<const N: usize>(buf: &mut Vec<u8>, text: &[u8], start: usize, len: usize) {
    let end = buf.len() + len.min(N);
    match text.get(start..).and_then(|rest| rest.first_chunk::<N>()) {
        Some(window) => {
            buf.extend_from_slice(window);
            buf.truncate(end);
        }
        // Not reached by the callers' sizes; the plain copy all the same.
        None => buf.extend_from_slice(text.get(start..start + len).unwrap_or_default()),
    }
}

impl Put for f64 {
    fn put<W: Write>(&self, p: &mut Pretty<'_, W>) {
        if put_micros(*self, &mut p.buf) {
            p.has_value = true;
        } else if self.is_finite() {
            let _ = CompactFormatter.write_f64(&mut p.buf, *self);
            p.has_value = true;
        } else {
            // serde_json writes NaN and infinities as null.
            p.raw(b"null");
        }
    }
}

/// `x` as serde_json writes it, when `x` is a whole number of millionths from 0.00001 to
/// 10^9 in size (nearly every figure of the document: they are rounded to 6 decimals, `r6`):
/// its digits written straight, instead of the shortest-round-trip search. `false`, with nothing
/// written, for any other value.
///
/// Why the digits are the shortest form: `x` is the double nearest to n·10⁻⁶ (checked), and n
/// has at most 15 digits; two different decimals of at most 15 significant digits never round
/// to the same double (15 is `f64::DIGITS`), so no shorter decimal reads back as `x`. And
/// serde_json (zmij) writes decimal exponents −5 to 15 without an exponent, as `0.00001` to
/// `999999999.999999` are here, with `.0` after a whole number. Tested against serde_json.
fn put_micros(x: f64, buf: &mut Vec<u8>) -> bool {
    let scaled = x * 1e6;
    // Rounded half away from zero by the truncating conversion (no `round` call); any n whose
    // quotient is `x` would do, and the check below refuses any other.
    let n = (scaled + 0.5f64.copysign(scaled)) as i64;
    let magnitude = n.unsigned_abs();
    if !(10..1_000_000_000_000_000).contains(&magnitude) || n as f64 / 1e6 != x {
        return false;
    }
    // Spelled in a fixed array, digit by digit at fixed places (a sign and up to 9 digits
    // before the point at 10, 6 decimals after it), and copied once: calls of a formatter and
    // a copy per part cost more than the shortest-form search saved. The zeros after it pad
    // the array for `put_window`'s fixed-size copy.
    let mut text = *b"0000000000.0000000000000000";
    let mut whole = magnitude / 1_000_000;
    let mut start = 10;
    while let Some(digit) = text.get_mut(start - 1) {
        *digit = b'0' + (whole % 10) as u8;
        start -= 1;
        whole /= 10;
        if whole == 0 || start == 1 {
            break;
        }
    }
    if n < 0 {
        start -= 1;
        if let Some(sign) = text.get_mut(start) {
            *sign = b'-';
        }
    }
    let fraction = (magnitude % 1_000_000) as u32;
    put2(&mut text, 11, fraction / 10_000);
    put2(&mut text, 13, fraction / 100 % 100);
    put2(&mut text, 15, fraction % 100);
    // The trailing zeros left out, but one digit after the point always (`20.0`).
    let mut end = 17;
    while end > 12 && text[end - 1] == b'0' {
        end -= 1;
    }
    put_window::<17>(buf, &text, start, end - start);
    true
}

impl Put for bool {
    fn put<W: Write>(&self, p: &mut Pretty<'_, W>) {
        p.raw(if *self { b"true" } else { b"false" });
    }
}

impl Put for str {
    fn put<W: Write>(&self, p: &mut Pretty<'_, W>) {
        p.str(self);
    }
}

impl Put for String {
    fn put<W: Write>(&self, p: &mut Pretty<'_, W>) {
        p.str(self);
    }
}

impl<T: Put + ?Sized> Put for &T {
    fn put<W: Write>(&self, p: &mut Pretty<'_, W>) {
        (**self).put(p);
    }
}

impl Put for Timestamp {
    fn put<W: Write>(&self, p: &mut Pretty<'_, W>) {
        match p.times.write(*self) {
            Some(text) => {
                // The wire form has nothing to escape. Quoted in place and copied once (one
                // capacity check, not three: nine instants per call).
                let mut quoted = [b'"'; 29];
                quoted[1..28].copy_from_slice(&text);
                p.buf.extend_from_slice(&quoted);
                p.has_value = true;
            }
            None => p.str(&self.to_string()),
        }
    }
}

/// A string of the writer's own vocabulary (a stream's delay and clock source, detection,
/// media kind, flags: names in the code, never from the capture), which needs no escaping:
/// written without the test for it.
struct Plain<'a>(&'a str);

impl Put for Plain<'_> {
    #[inline(always)]
    fn put<W: Write>(&self, p: &mut Pretty<'_, W>) {
        debug_assert!(
            !needs_escape(self.0.as_bytes()),
            "{:?} needs escaping",
            self.0
        );
        p.ascii(self.0.as_bytes());
    }
}

impl Put for AddrText {
    fn put<W: Write>(&self, p: &mut Pretty<'_, W>) {
        let mut text = [0u8; 21];
        match self.v4_ascii(&mut text).map(<[u8]>::len) {
            Some(len) => p.ascii_padded(&text, len),
            // IPv6 through `Display`: rare, and its text form has rules.
            None => p.str(&self.0.to_string()),
        }
    }
}

impl Put for SsrcText {
    fn put<W: Write>(&self, p: &mut Pretty<'_, W>) {
        p.ascii_padded(&self.ascii(), 10);
    }
}

impl Put for StreamId {
    fn put<W: Write>(&self, p: &mut Pretty<'_, W>) {
        p.ascii_padded(self.as_bytes(), 16);
    }
}

impl<T: Put> Put for Option<T> {
    #[inline]
    fn put<W: Write>(&self, p: &mut Pretty<'_, W>) {
        match self {
            Some(value) => value.put(p),
            None => p.raw(b"null"),
        }
    }
}

/// serde_json's escape table: 0 = as is, `u` = `\u00XX`, otherwise `\` and that byte.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Whether any byte of `bytes` is one that [`ESCAPE`] escapes, eight bytes at a time: a
/// byte-by-byte table walk over every string of the document was a tenth of the writer.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    /// A byte of `x` is zero (exact as a yes or no; which byte is not needed).
    fn zero_byte(x: u64) -> bool {
        x.wrapping_sub(ONES) & !x & HIGH != 0
    }
    /// A control character (below 0x20), a quote or a backslash among the 8 bytes.
    fn special(word: &[u8; 8]) -> bool {
        let x = u64::from_le_bytes(*word);
        x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0
            || zero_byte(x ^ (ONES * u64::from(b'"')))
            || zero_byte(x ^ (ONES * u64::from(b'\\')))
    }
    let (words, rest) = bytes.as_chunks::<8>();
    if words.iter().any(special) {
        return true;
    }
    if rest.is_empty() {
        return false;
    }
    // The last bytes as the last 8 (overlapping the words): one test instead of a table
    // lookup per byte. Strings shorter than 8 bytes are tested byte by byte.
    match bytes.last_chunk::<8>() {
        Some(last) => special(last),
        None => rest.iter().any(|&b| ESCAPE[usize::from(b)] != 0),
    }
}

/// One stream object alone, as `serde_json::to_string_pretty` writes one (the view tests).
#[cfg(test)]
pub(super) fn stream_text(view: &StreamView<'_>) -> String {
    let mut out = Vec::new();
    let mut p = Pretty::new(&mut out);
    // Written where the document writes it (in its list of streams), then out-dented by
    // those two levels to stand alone (its strings hold no newline: they escape theirs).
    p.depth = OBJECT_DEPTH - 1;
    let written = stream(&mut p, view).and_then(|()| p.flush());
    assert!(written.is_ok());
    String::from_utf8(out)
        .unwrap_or_default()
        .replace("\n    ", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::live::StreamId;
    use crate::report::{CallList, StreamList};
    use proptest::prelude::*;
    use voqa_wire::{
        AnalysisSettings, CallEvent, CallMedia, CallSummary, DialogStats, FileSummary, MediaProblem,
    };

    fn float() -> impl Strategy<Value = f64> {
        // NaN and infinities included (serde_json writes them as null).
        prop_oneof![
            any::<f64>(),
            -1e6f64..1e6,
            Just(f64::NAN),
            Just(f64::NEG_INFINITY)
        ]
    }

    proptest! {
        /// Whole documents of calls (and the parts written through serde) with any text, any
        /// times and figures, empty and filled lists: the same bytes as serde_json's.
        #[test]
        fn documents_write_what_serde_writes(
            texts in proptest::collection::vec(any::<String>(), 12),
            counts in any::<[u32; 4]>(),
            times in proptest::collection::vec(proptest::option::of(any::<i64>()), 10),
            mos in proptest::option::of(float()),
            media_mos in proptest::collection::vec(proptest::option::of(float()), 0..3),
            events in 0usize..3,
            problems in 0usize..3,
            indexes in proptest::collection::vec(any::<usize>(), 0..4),
            parts in any::<[bool; 4]>(),
            assumed in float(),
            stream_id in any::<u64>(),
        ) {
            let t = |i: usize| times[i].map(Timestamp::from_ns);
            let text = |i: usize| texts[i].clone();
            let call = CallSummary {
                call_id: text(0),
                from: parts[0].then(|| text(1)),
                to: Some(text(2)),
                streams: indexes,
                setup: t(0),
                answer: t(1),
                end: t(2),
                status: Some(counts[0] as u16),
                first_provisional: t(3),
                first_ringing: t(4),
                reason_cause: parts[1].then_some(counts[1] as u16),
                end_cause: Some(text(3)),
                ended_by: parts[2].then(|| text(4)),
                direction: Some(text(5)),
                peer: parts[3].then(|| text(6)),
                ring_ms: Some(u64::from(counts[2]) << 20),
                duration_ms: None,
                reinvites: counts[0],
                forks: counts[1],
                retransmissions: counts[3],
                events: (0..events)
                    .map(|i| CallEvent {
                        time: Timestamp::from_ns(i as i64),
                        kind: text(7),
                        by: (i % 2 == 0).then(|| text(8)),
                    })
                    .collect(),
                media: media_mos
                    .iter()
                    .map(|&mos| CallMedia {
                        stream_id: format!("{stream_id:016x}"),
                        direction: text(10),
                        codec: text(11),
                        mos,
                    })
                    .collect(),
                mos,
                worst_window_start: t(5),
                worst_window_end: t(6),
                problems: (0..problems)
                    .map(|i| MediaProblem {
                        kind: text(7),
                        direction: text(8),
                        start: Timestamp::from_ns(-(i as i64)),
                    })
                    .collect(),
                bye_response: t(7),
            };
            // The calls: views of the owned objects, written, must be serde's bytes of those
            // objects (and the views must stand for them exactly).
            let calls = [call, CallSummary::default()];
            let view_parts: Vec<_> = calls.iter().map(ViewParts::of).collect();
            let views: Vec<CallView<'_>> =
                calls.iter().zip(&view_parts).map(|(c, v)| v.view(c)).collect();
            for (view, owned) in views.iter().zip(&calls) {
                // Compared as Debug text: NaN MOS values are equal there.
                prop_assert_eq!(format!("{:?}", view.to_summary()), format!("{owned:?}"));
            }
            let mut ours = Vec::new();
            let mut p = Pretty::new(&mut ours);
            // The list one level deeper, as in the document, then out-dented by that level.
            p.depth = OBJECT_DEPTH - 2;
            p.open(b'[');
            for view in &views {
                p.item();
                super::call(&mut p, view);
            }
            p.close(b']');
            prop_assert!(p.flush().is_ok());
            prop_assert_eq!(
                String::from_utf8(ours).unwrap_or_default().replace("\n  ", "\n"),
                serde_json::to_string_pretty(&calls).unwrap_or_default()
            );
            // The rest of the document (its calls are those of real captures: tests/json_writer.rs).
            let doc = AnalyzeDocument {
                files: vec![FileSummary {
                    path: text(0),
                    packets: u64::from(counts[0]),
                    bytes: u64::MAX,
                    skipped: Default::default(),
                    ip_reassembly: Default::default(),
                    truncated_at: parts[0].then_some(7),
                    warnings: if parts[1] { vec![text(1), text(2)] } else { vec![] },
                    sip_tcp: Default::default(),
                }],
                streams: StreamList {
                    streams: &[],
                    names: String::new(),
                    spans: Vec::new(),
                    jitter_buffer: "fixed:60",
                },
                calls: CallList::default(),
                analysis: parts[2].then(|| AnalysisSettings {
                    jitter_buffer: text(3),
                    resync_after_late: counts[3],
                    assumed_one_way_ms: assumed,
                }),
                dialogs: parts[3].then_some(DialogStats::default()),
            };
            let mut ours = Vec::new();
            prop_assert!(write_document(&doc, &mut ours).is_ok());
            prop_assert_eq!(
                String::from_utf8(ours).unwrap_or_default(),
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            );
        }
    }

    /// The lists of a [`CallView`] of an owned call object, borrowed from it.
    struct ViewParts<'c> {
        events: Vec<EventView<'c>>,
        media: Vec<MediaView<'c>>,
        problems: Vec<ProblemView<'c>>,
    }

    impl<'c> ViewParts<'c> {
        fn of(c: &'c CallSummary) -> Self {
            ViewParts {
                events: c
                    .events
                    .iter()
                    .map(|e| EventView {
                        time: e.time,
                        kind: &e.kind,
                        by: e.by.as_deref(),
                    })
                    .collect(),
                media: c
                    .media
                    .iter()
                    .filter_map(|m| {
                        Some(MediaView {
                            stream_id: StreamId::from_hex(&m.stream_id)?,
                            direction: &m.direction,
                            codec: &m.codec,
                            mos: m.mos,
                        })
                    })
                    .collect(),
                problems: c
                    .problems
                    .iter()
                    .map(|p| ProblemView {
                        kind: &p.kind,
                        direction: &p.direction,
                        start: p.start,
                    })
                    .collect(),
            }
        }

        fn view(&'c self, c: &'c CallSummary) -> CallView<'c> {
            CallView {
                call_id: &c.call_id,
                from: c.from.as_deref(),
                to: c.to.as_deref(),
                streams: &c.streams,
                setup: c.setup,
                answer: c.answer,
                end: c.end,
                status: c.status,
                first_provisional: c.first_provisional,
                first_ringing: c.first_ringing,
                reason_cause: c.reason_cause,
                end_cause: c.end_cause.as_deref(),
                ended_by: c.ended_by.as_deref(),
                direction: c.direction.as_deref(),
                peer: c.peer.as_deref(),
                ring_ms: c.ring_ms,
                duration_ms: c.duration_ms,
                reinvites: c.reinvites,
                forks: c.forks,
                retransmissions: c.retransmissions,
                events: &self.events,
                media: &self.media,
                mos: c.mos,
                worst_window_start: c.worst_window_start,
                worst_window_end: c.worst_window_end,
                problems: &self.problems,
                bye_response: c.bye_response,
            }
        }
    }

    proptest! {
        /// The word-at-a-time test agrees with the table, byte by byte, on any bytes (the
        /// special ones made likely, at any position).
        #[test]
        fn escape_test_is_the_table(
            bytes in proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(b'"'), Just(b'\\'), 0u8..0x21, 0x7eu8..],
                0..40,
            ),
        ) {
            prop_assert_eq!(
                needs_escape(&bytes),
                bytes.iter().any(|&b| ESCAPE[usize::from(b)] != 0)
            );
        }
    }

    /// serde_json's spelling of a float (its formatter, as the writer's fallback uses it).
    fn serde_float(x: f64) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = CompactFormatter.write_f64(&mut out, x);
        out
    }

    proptest! {
        /// The millionths fast path writes what serde_json writes, for every figure rounded
        /// as the document rounds (`r6`), at any size (in and out of its range), and for any
        /// float at all; whatever it declines is left to serde_json's formatter.
        #[test]
        fn micros_spell_as_serde_json(
            v in prop_oneof![
                any::<f64>(),
                -1e10f64..1e10,
                -10.0f64..10.0,
                -1e-4f64..1e-4,
                (-1_000_000_000_000_000i64..1_000_000_000_000_000).prop_map(|n| n as f64 / 1e6),
                (-100_000i64..100_000).prop_map(|n| n as f64 / 1e6),
            ],
        ) {
            for x in [v, crate::report::r6(v)] {
                let mut ours = Vec::new();
                if put_micros(x, &mut ours) {
                    prop_assert_eq!(
                        String::from_utf8(ours).unwrap_or_default(),
                        String::from_utf8(serde_float(x)).unwrap_or_default(),
                        "{}", x
                    );
                }
            }
        }
    }

    proptest! {
        /// Integers spell as serde_json (itoa) spells them, at every size and sign.
        #[test]
        fn integers_spell_as_serde_json(
            n in prop_oneof![any::<u64>(), 0u64..1000, Just(u64::MAX), Just(0)],
            i in prop_oneof![any::<i64>(), -1000i64..1000, Just(i64::MIN), Just(i64::MAX)],
        ) {
            let mut ours = Vec::new();
            put_integer(n, false, &mut ours);
            prop_assert_eq!(ours, serde_json::to_vec(&n).unwrap_or_default());
            let mut ours = b"x".to_vec();
            put_integer(i.unsigned_abs(), i < 0, &mut ours);
            prop_assert_eq!(&ours[1..], &serde_json::to_vec(&i).unwrap_or_default()[..]);
            // The powers of ten and their neighbours, where the digit count changes.
            let mut p = 1u64;
            while let Some(next) = p.checked_mul(10) {
                for x in [p - 1, p, p + 1] {
                    let mut ours = Vec::new();
                    put_integer(x, true, &mut ours);
                    prop_assert_eq!(ours, format!("-{x}").into_bytes());
                }
                p = next;
            }
        }
    }

    #[test]
    fn micros_edges() {
        for x in [
            0.00001,
            -0.00001,
            0.000012,
            0.1,
            0.5,
            1.0,
            4.35486,
            20.0,
            -20.0,
            93.2,
            100.000001,
            999_999_999.999999,
            123_456_789.5,
            1e9 - 1e-6,
        ] {
            let mut ours = Vec::new();
            assert!(put_micros(x, &mut ours), "{x}");
            assert_eq!(ours, serde_float(x), "{x}");
        }
        // Outside the fast path: zero (its sign), below 0.00001, 10^9 and up, non-finite,
        // more than six decimals.
        for x in [
            0.0,
            -0.0,
            0.000009,
            1e-7,
            1e9,
            1e300,
            f64::NAN,
            f64::INFINITY,
            0.1234567,
        ] {
            assert!(!put_micros(x, &mut Vec::new()), "{x}");
        }
    }

    fn both<T: Put + Serialize + ?Sized>(value: &T) -> (String, String) {
        let mut out = Vec::new();
        let mut p = Pretty::new(&mut out);
        value.put(&mut p);
        let _ = p.flush();
        (
            String::from_utf8(out).unwrap_or_default(),
            serde_json::to_string_pretty(value).unwrap_or_default(),
        )
    }

    #[test]
    fn scalars_spell_as_serde_json() {
        let every_byte: String = (0u8..128).map(char::from).collect();
        for text in [
            "",
            "plain",
            "q\"b\\s/",
            "é ü 日本 \u{7f}",
            "\u{2028}",
            every_byte.as_str(),
        ] {
            let (ours, theirs) = both(text);
            assert_eq!(ours, theirs);
        }
        for x in [
            0.0,
            -0.0,
            1.0,
            20.0,
            4.35486,
            1e-7,
            1e21,
            123456789.123456,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let (ours, theirs) = both(&x);
            assert_eq!(ours, theirs, "{x}");
        }
        for n in [0u64, 9, 10, u64::MAX] {
            assert_eq!(both(&n).0, both(&n).1);
        }
        for n in [i64::MIN, -1, 0, i64::MAX] {
            assert_eq!(both(&n).0, both(&n).1);
        }
        for t in [i64::MIN, -1, 0, 1_795_000_000_123_456_789, i64::MAX] {
            let t = Timestamp::from_ns(t);
            assert_eq!(both(&t).0, both(&t).1);
            assert_eq!(both(&Some(t)).0, both(&Some(t)).1);
        }
        assert_eq!(both(&None::<u32>).0, "null");
    }
}
