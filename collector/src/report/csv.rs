//! The CSV form of a customer report: one row per call of the period (pseudonymised), with
//! its numbers and the stream that set its MOS, RFC 4180 quoted, after a header row.
//!
//! Streamed: calls are read a page at a time (`build::CallPages`) and handed on a page of
//! rows at a time as they come (to a file or stdout by the command, to the response body by
//! the API), so a month of a million calls is never held. Must compute nothing the JSON form does
//! not: each row is the call's stored aggregate, and must never write a clear Call-ID.

use std::io::Write;

use voqa_wire::Timestamp;

use super::build::{CallPages, ReportError, ReportPeriodSpec, call_pseudonym, customer_zone};
use crate::sla;
use crate::store::{CallAggregate, Store};

/// The header row, in column order.
pub const HEADER: [&str; 10] = [
    "call",
    "agent_id",
    "start",
    "end",
    "mos",
    "loss_pct",
    "jitter_ms",
    "streams",
    "worst_stream_id",
    "worst_stream_codec",
];

/// One field as RFC 4180 writes it: as is, unless it holds a comma, a double quote, CR or
/// LF (or begins with a space), then in double quotes with each double quote doubled.
pub fn quote(field: &str) -> std::borrow::Cow<'_, str> {
    if field.contains([',', '"', '\r', '\n']) || field.starts_with(' ') || field.ends_with(' ') {
        std::borrow::Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(field)
    }
}

/// Writes one record: the fields quoted, comma-separated, ended by CRLF (RFC 4180).
pub fn write_record<W: Write>(out: &mut W, fields: &[&str]) -> std::io::Result<()> {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(quote(field).as_bytes())?;
    }
    out.write_all(b"\r\n")
}

fn number(value: Option<f64>) -> String {
    value.map(|v| format!("{v}")).unwrap_or_default()
}

/// The row of one call.
pub fn write_call<W: Write>(out: &mut W, call: &CallAggregate) -> std::io::Result<()> {
    write_record(
        out,
        &[
            &call_pseudonym(call),
            &call.agent_id,
            &Timestamp::from_ns(call.first_start_ns).to_string(),
            &Timestamp::from_ns(call.last_end_ns).to_string(),
            &number(call.min_mos),
            &number(Some(call.max_loss_pct)),
            &number(call.max_jitter_ms),
            &call.streams.to_string(),
            call.mos_stream_id.as_deref().unwrap_or(""),
            call.mos_codec.as_deref().unwrap_or(""),
        ],
    )
}

/// Writes the CSV of `customer` over `period` as of `now_ns`: the header, then every call
/// the SLA counts (`last_start` in the period, up to now), agent by agent in time order.
/// Returns the number of call rows. A period evaluated from stream reports (see
/// `facts::calls_scope`) has the header only.
pub async fn write<W: Write>(
    store: &Store,
    customer: &sla::Customer,
    period: &ReportPeriodSpec,
    now_ns: i64,
    out: &mut W,
) -> Result<u64, ReportError> {
    let rows = write_chunks(store, customer, period, now_ns, &mut WriteSink(&mut *out)).await?;
    out.flush()?;
    Ok(rows)
}

/// Where [`write_chunks`] hands its bytes, a chunk at a time.
pub trait ChunkSink {
    fn emit(&mut self, chunk: Vec<u8>) -> impl Future<Output = Result<(), ReportError>> + Send;
}

/// A [`ChunkSink`] that writes each chunk to a writer as it comes.
struct WriteSink<'a, W>(&'a mut W);

impl<W: Write> ChunkSink for WriteSink<'_, W> {
    fn emit(&mut self, chunk: Vec<u8>) -> impl Future<Output = Result<(), ReportError>> + Send {
        let written = self.0.write_all(&chunk).map_err(ReportError::from);
        std::future::ready(written)
    }
}

/// A [`ChunkSink`] into a bounded channel (the API's response body): each chunk waits for
/// room, so a slow reader slows the reading of pages instead of growing memory; a reader
/// gone is an error that ends the writing.
impl ChunkSink for tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>> {
    async fn emit(&mut self, chunk: Vec<u8>) -> Result<(), ReportError> {
        self.send(Ok(chunk)).await.map_err(|_| {
            ReportError::Io(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client went away",
            ))
        })
    }
}

/// [`write`], handing the bytes to `sink` in chunks: the header with the first page of rows,
/// then one chunk per page ([`super::build::CALLS_PAGE`] calls). What is held at a time is
/// one page of calls and its rows; the sink decides how fast the next page is read (a bounded
/// channel to a response body waits for the client).
pub async fn write_chunks(
    store: &Store,
    customer: &sla::Customer,
    period: &ReportPeriodSpec,
    now_ns: i64,
    sink: &mut impl ChunkSink,
) -> Result<u64, ReportError> {
    let zone = customer_zone(customer)?;
    let resolved = period.resolve(&zone)?;
    let until = sla::evaluated_until(resolved.from_ns, resolved.to_ns, now_ns);
    let mut chunk = Vec::new();
    write_record(&mut chunk, &HEADER)?;
    let mut rows = 0u64;
    if resolved.from_ns < until {
        let mut pages = CallPages::open(store, customer, resolved.from_ns, until).await?;
        while let Some(page) = pages.next_page(store).await? {
            for call in &page {
                write_call(&mut chunk, call)?;
                rows += 1;
            }
            sink.emit(std::mem::take(&mut chunk)).await?;
        }
    }
    if !chunk.is_empty() {
        sink.emit(chunk).await?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An independent RFC 4180 reader of one record (no trailing CRLF), for the round trip.
    fn parse_record(text: &str) -> Option<Vec<String>> {
        let mut fields = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            let mut field = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next()? {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        '"' => break,
                        c => field.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    if c == '"' || c == '\r' || c == '\n' {
                        return None;
                    }
                    field.push(c);
                    chars.next();
                }
            }
            fields.push(field);
            match chars.next() {
                None => return Some(fields),
                Some(',') => {}
                Some(_) => return None,
            }
        }
    }

    #[test]
    fn quotes_only_what_needs_it() {
        let mut out = Vec::new();
        write_record(&mut out, &["a", "b,c", "say \"hi\"", "line\r\nbreak", ""]).expect("vec");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "a,\"b,c\",\"say \"\"hi\"\"\",\"line\r\nbreak\",\r\n"
        );
    }

    proptest! {
        #[test]
        fn records_round_trip(fields in proptest::collection::vec("\\PC{0,12}|[,\"\r\n a]{0,6}", 1..6)) {
            let mut out = Vec::new();
            let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
            write_record(&mut out, &refs).expect("vec");
            let text = String::from_utf8(out).expect("utf-8");
            let body = text.strip_suffix("\r\n").expect("CRLF-terminated");
            prop_assert_eq!(parse_record(body), Some(fields));
        }
    }
}
