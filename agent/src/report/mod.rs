//! Turning analysis results into the reports people and programs read: the stable
//! `analyze --format json` document (voqa-wire types) and the terminal table.
//!
//! Identities (Call-ID, From/To user parts) are pseudonymised here, on the way out, unless the
//! operator switched it off. Nothing here measures; it only formats.

pub mod live;
pub mod table;

use voqa_wire::{
    AnalysisSettings, AnalyzeOutput, CallSummary, ClockInference as WireClockInference,
    FileSummary, StreamSummary, Timestamp,
};

use crate::quality::codec::{CodecValues, MediaRole};
use crate::quality::stream::ClockSource;
use crate::streams::privacy::Pseudonymizer;
use crate::streams::{AnalysisResult, AnalyzerConfig, StreamResult};

/// Rounds to 6 decimals so JSON shows measured precision, not float noise.
pub(crate) fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Builds the `analyze` JSON document.
pub fn analyze_output(
    files: Vec<FileSummary>,
    result: &AnalysisResult,
    privacy: &Pseudonymizer,
    jitter_buffer: &str,
) -> AnalyzeOutput {
    let streams: Vec<StreamSummary> = result
        .streams
        .iter()
        .map(|s| stream_summary(s, privacy, jitter_buffer))
        .collect();
    let mut calls = Vec::new();
    for (_, call) in result.calls.iter() {
        let members: Vec<usize> = result
            .streams
            .iter()
            .enumerate()
            .filter(|(_, s)| s.call_id.as_deref() == Some(call.call_id.as_str()))
            .map(|(i, _)| i)
            .collect();
        calls.push(CallSummary {
            call_id: privacy.apply(&call.call_id),
            from: call.from_user.as_deref().map(|u| privacy.apply(u)),
            to: call.to_user.as_deref().map(|u| privacy.apply(u)),
            streams: members,
            setup: call.invite_ns.map(Timestamp::from_ns),
            answer: call.answer_ns.map(Timestamp::from_ns),
            end: call.end_ns.map(Timestamp::from_ns),
            status: call.status,
        });
    }
    AnalyzeOutput {
        files,
        streams,
        calls,
        // The caller states its settings (`analysis_settings`).
        analysis: None,
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

pub(crate) fn stream_summary(
    s: &StreamResult,
    privacy: &Pseudonymizer,
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
    let call_id = s.call_id.as_deref().map(|c| privacy.apply(c));
    StreamSummary {
        src: s.key.src.to_string(),
        dst: s.key.dst.to_string(),
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
