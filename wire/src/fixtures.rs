//! Records for tests and benchmarks (feature `fixtures`, enabled only by dev-dependencies):
//! one clean G.711 stream report, heartbeat and batch that each test then changes where its
//! case differs, instead of every test file spelling out all forty fields again.
//!
//! The values are plausible rather than measured: a test that asserts a figure sets that
//! figure itself (or takes it from here and says so). Must not be used by the binaries.

use crate::{Batch, Heartbeat, SCHEMA_VERSION, StreamReport, StreamSummary, Timestamp};
use crate::{Transitions, WorkerCounters};

/// The media flow of every fixture stream (documentation addresses, RFC 5737).
pub const SRC: &str = "203.0.113.5:40000";
pub const DST: &str = "198.51.100.20:50000";

/// A clean PCMU stream's whole-stream figures over `[start, end]`: `packets` received of as
/// many expected, jitter 1 ms (2 ms at most), R 90, the given MOS, delay 100.125 ms assumed.
pub fn summary(
    call_id: &str,
    start: Timestamp,
    end: Timestamp,
    packets: u64,
    mos: f64,
) -> StreamSummary {
    StreamSummary {
        src: SRC.into(),
        dst: DST.into(),
        ssrc: "0x00000001".into(),
        payload_type: 0,
        codec: "PCMU".into(),
        clock_rate: Some(8000),
        call_id: Some(call_id.into()),
        first_seen: start,
        last_seen: end,
        packets,
        expected: packets,
        lost: 0,
        duplicates: 0,
        reordered: 0,
        jitter_ms: Some(1.0),
        max_jitter_ms: Some(2.0),
        mean_jitter_ms: Some(1.0),
        max_delta_ms: 21.0,
        burst_ratio: 1.0,
        jb_discarded: 0,
        effective_loss_pct: 0.0,
        rtt_ms: None,
        r_factor: Some(90.0),
        mos: Some(mos),
        loss_bursts: 0,
        max_loss_burst: 0,
        lost_rfc3550: 0,
        delay_ms: Some(100.125),
        delay_source: "assumed".into(),
        clock_source: "static".into(),
        detection: "sdp".into(),
        jitter_buffer: "fixed:60".into(),
        ie: Some(0.0),
        bpl: Some(25.1),
        flags: vec![],
        media: "audio".into(),
        srtp: false,
        clock_inference: None,
    }
}

/// The final report of a stream that lived in one window `[start, end]`, ended by a BYE: the
/// window's figures are [`summary`]'s, which are also its totals.
pub fn final_report(
    agent: &str,
    stream_id: &str,
    call_id: &str,
    start: Timestamp,
    end: Timestamp,
    packets: u64,
    mos: f64,
) -> StreamReport {
    let totals = summary(call_id, start, end, packets, mos);
    StreamReport {
        agent_id: agent.into(),
        stream_id: stream_id.into(),
        src: totals.src.clone(),
        dst: totals.dst.clone(),
        ssrc: totals.ssrc.clone(),
        payload_type: totals.payload_type,
        codec: totals.codec.clone(),
        clock_rate: totals.clock_rate,
        call_id: totals.call_id.clone(),
        window_start: start,
        window_end: end,
        is_final: true,
        end_reason: Some("bye".into()),
        packets,
        expected: packets,
        lost: 0,
        duplicates: 0,
        reordered: 0,
        jitter_ms: totals.jitter_ms,
        max_jitter_ms: totals.max_jitter_ms,
        mean_jitter_ms: totals.mean_jitter_ms,
        jitter_sum_ms: packets as f64,
        jitter_samples: packets,
        jitter_histogram: None,
        max_delta_ms: totals.max_delta_ms,
        transitions: Transitions {
            n00: packets.saturating_sub(1),
            n01: 0,
            n10: 0,
            n11: 0,
        },
        burst_ratio: 1.0,
        jb_discarded: 0,
        effective_loss_pct: 0.0,
        rtt_ms: None,
        delay_ms: totals.delay_ms,
        r_factor: totals.r_factor,
        mos: Some(mos),
        capture_drops: 0,
        totals: Some(totals),
    }
}

/// The same window as an interval report: not final, no end reason, no totals.
pub fn interval(mut report: StreamReport) -> StreamReport {
    report.is_final = false;
    report.end_reason = None;
    report.totals = None;
    report
}

/// `report` with `lost` of its expected packets lost, in the window and in its totals
/// (received packets, the loss percentages and the Markov transitions follow: each loss an
/// isolated one between two received packets, so there is no burst).
pub fn with_loss(mut report: StreamReport, lost: u64) -> StreamReport {
    let expected = report.expected;
    let lost = lost.min(expected);
    let pct = if expected == 0 {
        0.0
    } else {
        lost as f64 * 100.0 / expected as f64
    };
    report.packets = expected - lost;
    report.lost = lost;
    // One jitter sample per received packet at most (the ingest checks it); the mean stays.
    let samples = report.jitter_samples.min(report.packets);
    if report.jitter_samples > 0 {
        report.jitter_sum_ms *= samples as f64 / report.jitter_samples as f64;
    }
    report.jitter_samples = samples;
    report.effective_loss_pct = pct;
    report.transitions = Transitions {
        n00: expected.saturating_sub(1).saturating_sub(2 * lost),
        n01: lost,
        n10: lost,
        n11: 0,
    };
    if let Some(t) = report.totals.as_mut() {
        t.packets = t.expected - lost.min(t.expected);
        t.lost = lost;
        t.lost_rfc3550 = lost as i64;
        t.effective_loss_pct = pct;
    }
    report
}

/// A heartbeat of `agent` at `time`: one worker without drops, 3 % CPU, nothing watched.
pub fn heartbeat(agent: &str, time: Timestamp) -> Heartbeat {
    Heartbeat {
        agent_id: agent.into(),
        agent_version: "0.1.0".into(),
        time,
        host_uptime_s: 1000,
        cpu_pct: 3.0,
        agent_cpu_pct: 1.0,
        mem_total_bytes: 1 << 30,
        mem_used_bytes: 1 << 29,
        agent_rss_bytes: 1 << 24,
        load_avg: [0.1, 0.1, 0.1],
        workers: vec![WorkerCounters {
            worker: 0,
            kernel_packets: 100,
            kernel_drops: 0,
            kernel_freezes: 0,
            frames: 100,
        }],
        streams_tracked: 1,
        streams_evicted: 0,
        processes: vec![],
        shipping: None,
    }
}

/// A batch of `agent`'s records with a batch id made from `n` (a UUID whose last group is
/// `n`), sent at its newest record's time (a heartbeat's, or a window's end; else the epoch).
pub fn batch(n: u64, agent: &str, reports: Vec<StreamReport>, heartbeats: Vec<Heartbeat>) -> Batch {
    let sent_at = (heartbeats.iter().map(|h| h.time))
        .chain(reports.iter().map(|r| r.window_end))
        .max()
        .unwrap_or(Timestamp::EPOCH);
    Batch {
        schema: SCHEMA_VERSION,
        batch_id: format!("00000000-0000-4000-8000-{n:012x}"),
        agent_id: agent.into(),
        sent_at,
        reports,
        heartbeats,
        calls: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_moves_window_and_totals_together() {
        let start = Timestamp::from_ns(0);
        let r = with_loss(
            final_report("a", "s", "c", start, start.saturating_add_ns(1), 200, 4.0),
            5,
        );
        assert_eq!((r.packets, r.lost, r.effective_loss_pct), (195, 5, 2.5));
        assert_eq!((r.jitter_samples, r.jitter_sum_ms), (195, 195.0));
        let tr = &r.transitions;
        // 200 packets: 199 transitions, 5 into a loss and 5 out of it.
        assert_eq!((tr.n00, tr.n01, tr.n10, tr.n11), (189, 5, 5, 0));
        let t = r.totals.expect("final");
        assert_eq!(
            (t.packets, t.expected, t.lost, t.lost_rfc3550),
            (195, 200, 5, 5)
        );
        assert_eq!(t.effective_loss_pct, 2.5);
        let i = interval(final_report("a", "s", "c", start, start, 10, 4.0));
        assert!(!i.is_final && i.totals.is_none() && i.end_reason.is_none());
    }
}
