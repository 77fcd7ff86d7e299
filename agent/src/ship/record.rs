//! How an agent record is laid out as a spool payload, and how a batch body is assembled from
//! payloads without parsing them again.
//!
//! A payload is `[kind][agent id length][agent id][JSON]`: the kind byte (`S` stream report,
//! `H` heartbeat, `C` call record) and the agent id let the shipper build `voqa_wire::Batch` JSON by
//! concatenation — at tens of thousands of reports per second, re-parsing each report would
//! cost more than sending it. The JSON is the `voqa-wire` type itself (not the tagged
//! `AgentRecord`), exactly what the batch's `reports`/`heartbeats` arrays hold.
//!
//! This module does no I/O.

use sha2::{Digest, Sha256};
use voqa_wire::{AgentRecord, SCHEMA_VERSION, Timestamp};

pub const KIND_STREAM: u8 = b'S';
pub const KIND_HEARTBEAT: u8 = b'H';
pub const KIND_CALL: u8 = b'C';

/// Why a payload cannot go into a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("spool payload too short")]
    Short,
    #[error("spool payload of unknown kind {0:#04x} (written by another agent version?)")]
    Kind(u8),
    #[error("spool payload agent id is not UTF-8")]
    AgentId,
    #[error("agent id longer than 255 bytes")]
    AgentIdTooLong,
    #[error("cannot serialize the record: {0}")]
    Json(String),
}

/// Writes `record` as a spool payload into `out` (cleared first).
pub fn encode(record: &AgentRecord, out: &mut Vec<u8>) -> Result<(), PayloadError> {
    out.clear();
    let (kind, agent_id) = match record {
        AgentRecord::Stream(r) => (KIND_STREAM, r.agent_id.as_str()),
        AgentRecord::Heartbeat(h) => (KIND_HEARTBEAT, h.agent_id.as_str()),
        AgentRecord::Call(c) => (KIND_CALL, c.agent_id.as_str()),
    };
    let id_len = u8::try_from(agent_id.len()).map_err(|_| PayloadError::AgentIdTooLong)?;
    out.push(kind);
    out.push(id_len);
    out.extend_from_slice(agent_id.as_bytes());
    let json = match record {
        AgentRecord::Stream(r) => serde_json::to_writer(&mut *out, r),
        AgentRecord::Heartbeat(h) => serde_json::to_writer(&mut *out, h),
        AgentRecord::Call(c) => serde_json::to_writer(&mut *out, c),
    };
    json.map_err(|e| PayloadError::Json(e.to_string()))
}

/// A payload's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload<'a> {
    pub kind: u8,
    pub agent_id: &'a str,
    pub json: &'a [u8],
}

pub fn decode(payload: &[u8]) -> Result<Payload<'_>, PayloadError> {
    let (&kind, rest) = payload.split_first().ok_or(PayloadError::Short)?;
    if ![KIND_STREAM, KIND_HEARTBEAT, KIND_CALL].contains(&kind) {
        return Err(PayloadError::Kind(kind));
    }
    let (&len, rest) = rest.split_first().ok_or(PayloadError::Short)?;
    let id = rest.get(..usize::from(len)).ok_or(PayloadError::Short)?;
    let json = &rest[usize::from(len)..];
    if json.is_empty() {
        return Err(PayloadError::Short);
    }
    let agent_id = std::str::from_utf8(id).map_err(|_| PayloadError::AgentId)?;
    Ok(Payload {
        kind,
        agent_id,
        json,
    })
}

/// A batch body ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchBody {
    /// The `Batch` JSON (not compressed).
    pub json: Vec<u8>,
    /// Derived from the records' bytes, so a retry of the same records carries the same id.
    pub batch_id: String,
    pub reports: usize,
    pub heartbeats: usize,
    pub calls: usize,
}

/// Assembles a `voqa_wire::Batch` from payloads. Payloads that cannot be decoded are returned
/// by index in `Err` so the caller can dead-letter them; none of them is dropped silently.
pub fn build_batch(payloads: &[Vec<u8>], sent_at: Timestamp) -> Result<BatchBody, Vec<usize>> {
    let bad: Vec<usize> = payloads
        .iter()
        .enumerate()
        .filter(|(_, p)| decode(p).is_err())
        .map(|(i, _)| i)
        .collect();
    if !bad.is_empty() {
        return Err(bad);
    }
    let parts: Vec<Payload<'_>> = payloads.iter().filter_map(|p| decode(p).ok()).collect();
    let agent_id = parts.first().map_or("", |p| p.agent_id);
    let mut hasher = Sha256::new();
    for p in payloads {
        hasher.update((p.len() as u64).to_le_bytes());
        hasher.update(p);
    }
    let digest = hasher.finalize();
    let batch_id = uuid_from(&digest[..16]);
    let size: usize = payloads.iter().map(|p| p.len() + 1).sum();
    let mut json = Vec::with_capacity(size + 256);
    json.extend_from_slice(b"{\"schema\":");
    json.extend_from_slice(SCHEMA_VERSION.to_string().as_bytes());
    json.extend_from_slice(b",\"batch_id\":\"");
    json.extend_from_slice(batch_id.as_bytes());
    json.extend_from_slice(b"\",\"agent_id\":");
    // The agent id came from a `&str` and serde_json escapes it; this cannot fail.
    json.extend_from_slice(
        serde_json::to_string(agent_id)
            .unwrap_or_else(|_| "\"\"".into())
            .as_bytes(),
    );
    json.extend_from_slice(b",\"sent_at\":\"");
    json.extend_from_slice(sent_at.to_string().as_bytes());
    json.extend_from_slice(b"\"");
    let mut counts = [0usize; 3];
    for (key, kind, count) in [
        ("reports", KIND_STREAM, 0),
        ("heartbeats", KIND_HEARTBEAT, 1),
        ("calls", KIND_CALL, 2),
    ] {
        let count = &mut counts[count];
        json.extend_from_slice(b",\"");
        json.extend_from_slice(key.as_bytes());
        json.extend_from_slice(b"\":[");
        for p in parts.iter().filter(|p| p.kind == kind) {
            if *count > 0 {
                json.push(b',');
            }
            json.extend_from_slice(p.json);
            *count += 1;
        }
        json.push(b']');
    }
    json.push(b'}');
    Ok(BatchBody {
        json,
        batch_id,
        reports: counts[0],
        heartbeats: counts[1],
        calls: counts[2],
    })
}

/// A UUID-shaped id (version 8, RFC 9562 "custom") from 16 bytes.
fn uuid_from(b: &[u8]) -> String {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&b[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use voqa_wire::{Batch, Heartbeat, StreamReport, Transitions};

    pub fn heartbeat(agent: &str, t_s: i64) -> Heartbeat {
        Heartbeat {
            agent_id: agent.into(),
            agent_version: "0.1.0".into(),
            time: Timestamp::from_ns(t_s * 1_000_000_000),
            host_uptime_s: 1,
            cpu_pct: 1.5,
            agent_cpu_pct: 0.5,
            mem_total_bytes: 2,
            mem_used_bytes: 1,
            agent_rss_bytes: 1,
            load_avg: [0.0; 3],
            workers: vec![],
            streams_tracked: 0,
            streams_evicted: 0,
            processes: vec![],
            shipping: None,
        }
    }

    pub fn report(agent: &str, stream: u32, window: i64, is_final: bool) -> StreamReport {
        StreamReport {
            agent_id: agent.into(),
            stream_id: format!("{stream:016x}"),
            src: "192.0.2.10:40000".into(),
            dst: "198.51.100.20:50000".into(),
            ssrc: "0x00000001".into(),
            payload_type: 0,
            codec: "PCMU".into(),
            clock_rate: Some(8000),
            call_id: Some("anon:1".into()),
            window_start: Timestamp::from_ns(window * 10_000_000_000),
            window_end: Timestamp::from_ns((window + 1) * 10_000_000_000),
            is_final,
            end_reason: None,
            packets: 500,
            expected: 500,
            lost: 0,
            duplicates: 0,
            reordered: 0,
            jitter_ms: Some(0.1),
            max_jitter_ms: Some(0.2),
            mean_jitter_ms: Some(0.1),
            jitter_sum_ms: 50.0,
            jitter_samples: 500,
            jitter_histogram: None,
            max_delta_ms: 20.1,
            transitions: Transitions::default(),
            burst_ratio: 1.0,
            jb_discarded: 0,
            effective_loss_pct: 0.0,
            rtt_ms: None,
            delay_ms: Some(100.0),
            r_factor: Some(93.0),
            mos: Some(4.4),
            capture_drops: 0,
            totals: None,
        }
    }

    pub fn payload(record: &AgentRecord) -> Vec<u8> {
        let mut out = Vec::new();
        encode(record, &mut out).expect("encode");
        out
    }

    #[test]
    fn batch_body_is_a_wire_batch_with_every_record() {
        let records = [
            AgentRecord::Stream(report("fra-1", 1, 0, false)),
            AgentRecord::Heartbeat(heartbeat("fra-1", 15)),
            AgentRecord::Stream(report("fra-1", 1, 1, true)),
            AgentRecord::Call(voqa_wire::CallRecord {
                agent_id: "fra-1".into(),
                call_key: "00000000000000c1".into(),
                call: voqa_wire::CallSummary {
                    call_id: "anon:00".into(),
                    status: Some(486),
                    ..Default::default()
                },
            }),
        ];
        let payloads: Vec<Vec<u8>> = records.iter().map(payload).collect();
        let body = build_batch(&payloads, Timestamp::from_ns(7_000)).expect("build");
        let batch: Batch = serde_json::from_slice(&body.json).expect("a wire batch");
        assert_eq!(batch.schema, SCHEMA_VERSION);
        assert_eq!(batch.agent_id, "fra-1");
        assert_eq!(batch.batch_id, body.batch_id);
        assert_eq!(batch.sent_at, Timestamp::from_ns(7_000));
        assert_eq!(batch.reports.len(), 2);
        assert_eq!(batch.heartbeats.len(), 1);
        assert_eq!((body.calls, batch.calls.len()), (1, 1));
        assert_eq!(AgentRecord::Call(batch.calls[0].clone()), records[3]);
        assert_eq!(AgentRecord::Stream(batch.reports[1].clone()), records[2]);
        assert_eq!(
            AgentRecord::Heartbeat(batch.heartbeats[0].clone()),
            records[1]
        );
        // Same records, later retry: same id; other records: another id.
        let again = build_batch(&payloads, Timestamp::from_ns(9)).expect("build");
        assert_eq!(again.batch_id, body.batch_id);
        let other = build_batch(&payloads[..2], Timestamp::from_ns(9)).expect("build");
        assert_ne!(other.batch_id, body.batch_id);
        assert_eq!(body.batch_id.len(), 36);
        assert_eq!(&body.batch_id[14..15], "8");
    }

    #[test]
    fn empty_batch_and_bad_payloads() {
        let body = build_batch(&[], Timestamp::EPOCH).expect("build");
        let batch: Batch = serde_json::from_slice(&body.json).expect("a wire batch");
        assert!(batch.reports.is_empty() && batch.heartbeats.is_empty());
        let good = payload(&AgentRecord::Heartbeat(heartbeat("a", 1)));
        let bad = vec![
            good.clone(),
            vec![],
            b"X\x01a{}".to_vec(),
            b"S\x09a{}".to_vec(),
            good,
        ];
        assert_eq!(build_batch(&bad, Timestamp::EPOCH), Err(vec![1, 2, 3]));
    }

    proptest::proptest! {
        /// Any bytes: a payload or an error, never a panic; and whatever decodes re-encodes
        /// to its own parts.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Ok(p) = decode(&bytes) {
                proptest::prop_assert!([KIND_STREAM, KIND_HEARTBEAT, KIND_CALL].contains(&p.kind));
                proptest::prop_assert_eq!(2 + p.agent_id.len() + p.json.len(), bytes.len());
            }
        }
    }

    #[test]
    fn agent_ids_are_escaped() {
        let p = payload(&AgentRecord::Heartbeat(heartbeat("we\"ird\\id", 1)));
        let body = build_batch(&[p], Timestamp::EPOCH).expect("build");
        let batch: Batch = serde_json::from_slice(&body.json).expect("a wire batch");
        assert_eq!(batch.agent_id, "we\"ird\\id");
        let long = "x".repeat(256);
        let mut out = Vec::new();
        assert_eq!(
            encode(&AgentRecord::Heartbeat(heartbeat(&long, 1)), &mut out),
            Err(PayloadError::AgentIdTooLong)
        );
    }
}
