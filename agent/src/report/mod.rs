//! Turning analysis results into the reports people and programs read: the stable
//! `analyze --format json` document (voqa-wire types) and the terminal table.
//!
//! Identities (Call-ID, From/To user parts) are pseudonymised here, on the way out, unless the
//! operator switched it off. Nothing here measures; it only formats.

pub mod live;
pub mod table;

use std::net::SocketAddr;

use hashbrown::HashMap;
use voqa_wire::{
    AnalysisSettings, AnalyzeOutput, ClockInference as WireClockInference, FileSummary,
    StreamSummary, Timestamp,
};

use crate::calls::record::call_summary;
use crate::calls::{StreamFacts, media};
use crate::quality::codec::{CodecValues, MediaRole};
use crate::quality::stream::ClockSource;
use crate::streams::privacy::Pseudonymizer;
use crate::streams::{AnalysisResult, AnalyzerConfig, StreamResult};

/// Rounds to 6 decimals so JSON shows measured precision, not float noise.
pub(crate) fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Builds the `analyze` JSON document.
///
/// Linear in streams + calls: streams are tied to their calls through one index built here
/// (a per-call search of every stream would be quadratic), and each distinct Call-ID is
/// pseudonymised once for the call and all of its streams.
pub fn analyze_output(
    files: Vec<FileSummary>,
    result: &AnalysisResult,
    privacy: &Pseudonymizer,
    jitter_buffer: &str,
) -> AnalyzeOutput {
    // Streams of each Call-ID as a linked list through `next` (ascending stream order), headed
    // in `first_of`: no allocation per call beyond its output.
    let mut first_of: HashMap<&str, usize, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(result.streams.len(), Default::default());
    let mut next = vec![usize::MAX; result.streams.len()];
    for (i, s) in result.streams.iter().enumerate().rev() {
        if let Some(id) = s.call_id.as_deref()
            && let Some(head) = first_of.insert(id, i)
        {
            next[i] = head;
        }
    }
    // Pseudonyms of the Call-IDs that streams carry, shared with their calls.
    let mut pseudonyms: HashMap<&str, String, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(first_of.len(), Default::default());
    let streams: Vec<StreamSummary> = result
        .streams
        .iter()
        .map(|s| {
            let call_id = s.call_id.as_deref().map(|c| {
                pseudonyms
                    .entry(c)
                    .or_insert_with(|| privacy.apply(c))
                    .clone()
            });
            stream_summary_with(s, call_id, jitter_buffer)
        })
        .collect();
    let mut calls = Vec::with_capacity(result.calls.len());
    for call in &result.calls {
        let id = &*call.call_id;
        let mut members = Vec::new();
        let mut at = first_of.get(id).copied().unwrap_or(usize::MAX);
        while let Some(&after) = next.get(at) {
            members.push(at);
            at = after;
        }
        let facts: Vec<StreamFacts> = members
            .iter()
            .filter_map(|&i| result.streams.get(i))
            .map(StreamFacts::of)
            .collect();
        let problems =
            media::problems(call, &facts, &result.call_thresholds, result.capture_end_ns);
        let call_id = pseudonyms.remove(id).unwrap_or_else(|| privacy.apply(id));
        calls.push(call_summary(
            call, call_id, &facts, members, &problems, privacy,
        ));
    }
    AnalyzeOutput {
        files,
        streams,
        calls,
        // The caller states its settings (`analysis_settings`).
        analysis: None,
        dialogs: Some(dialog_stats(result)),
    }
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

/// `addr.to_string()`, without the formatting machinery for IPv4 (two per stream in a document
/// of 50,000 streams showed in profiles); IPv6 keeps `Display` (its text form has rules).
fn socket_addr_text(addr: &SocketAddr) -> String {
    let SocketAddr::V4(v4) = addr else {
        return addr.to_string();
    };
    fn push_decimal(out: &mut String, mut n: u32) {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &d in &digits[i..] {
            out.push(char::from(d));
        }
    }
    let mut out = String::with_capacity(21);
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_decimal(&mut out, u32::from(octet));
    }
    out.push(':');
    push_decimal(&mut out, u32::from(v4.port()));
    out
}

pub(crate) fn stream_summary(
    s: &StreamResult,
    privacy: &Pseudonymizer,
    jitter_buffer: &str,
) -> StreamSummary {
    let call_id = s.call_id.as_deref().map(|c| privacy.apply(c));
    stream_summary_with(s, call_id, jitter_buffer)
}

/// A stream's summary with its Call-ID already pseudonymised.
fn stream_summary_with(
    s: &StreamResult,
    call_id: Option<String>,
    jitter_buffer: &str,
) -> StreamSummary {
    let q = &s.summary;
    let mut flags = Vec::new();
    if s.clock_source == ClockSource::Inferred {
        flags.push("clock_inferred".to_owned());
    }
    if s.clock_source == ClockSource::Unknown {
        flags.push("clock_unknown".to_owned());
    }
    // The codec-values flags qualify the E-model inputs, which video does not use.
    match s.codec_info.values {
        _ if s.codec_info.role == MediaRole::Video => {}
        CodecValues::G113 => {}
        CodecValues::PlcProxy => flags.push("codec_values_proxy".to_owned()),
        CodecValues::BplDefaulted => flags.push("bpl_defaulted".to_owned()),
        CodecValues::Unknown => flags.push("codec_values_unknown".to_owned()),
    }
    if q.delay_ms.is_some() && q.delay_assumed {
        flags.push("delay_assumed".to_owned());
    }
    if q.burst_ratio_out_of_range {
        flags.push("burstr_out_of_range".to_owned());
    }
    if q.jb_resyncs > 0 {
        // The emulated buffer re-anchored on persistent lateness (metrics-spec §9.2a): a delay
        // step or a sender pause without a marker bit; its K − 1 discards are in jb_discarded.
        flags.push("jb_resynced".to_owned());
    }
    StreamSummary {
        src: socket_addr_text(&s.key.src),
        dst: socket_addr_text(&s.key.dst),
        ssrc: format!("0x{:08x}", s.key.ssrc),
        payload_type: s.payload_type,
        codec: s.codec.clone(),
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
        }
        .to_owned(),
        clock_source: s.clock_source.as_str().to_owned(),
        detection: s.detection.as_str().to_owned(),
        jitter_buffer: jitter_buffer.to_owned(),
        ie: q.r_factor.map(|_| s.codec_info.ie),
        bpl: q.r_factor.map(|_| s.codec_info.bpl),
        flags,
        media: if s.codec_info.role == MediaRole::Video {
            "video"
        } else {
            "audio"
        }
        .to_owned(),
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
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn socket_addr_text_is_display(ip in any::<[u8; 4]>(), port in any::<u16>(), v6 in any::<[u16; 8]>()) {
            let a = SocketAddr::from((ip, port));
            prop_assert_eq!(socket_addr_text(&a), a.to_string());
            let b = SocketAddr::from((std::net::Ipv6Addr::from(v6), port));
            prop_assert_eq!(socket_addr_text(&b), b.to_string());
        }
    }

    #[test]
    fn socket_addr_text_edges() {
        for (a, text) in [
            (SocketAddr::from(([0, 0, 0, 0], 0)), "0.0.0.0:0"),
            (
                SocketAddr::from(([255, 255, 255, 255], 65535)),
                "255.255.255.255:65535",
            ),
            (SocketAddr::from(([10, 1, 20, 3], 5060)), "10.1.20.3:5060"),
        ] {
            assert_eq!(socket_addr_text(&a), text);
        }
    }
}
