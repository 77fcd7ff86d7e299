//! Where reports leave the agent. `ReportSink` is the seam: this release writes JSON lines to a
//! file or stdout; the HTTPS shipper with its disk spool implements the same trait later.
//!
//! Sinks run on their own thread (never on a capture thread) and receive finished records only:
//! no packet bytes ever reach them.

pub mod config;
pub mod delivery;
pub mod http;
pub mod record;
pub mod spool;

use std::io::{self, BufWriter, Write};

use voqa_wire::AgentRecord;

/// A destination for agent records (stream reports and heartbeats).
pub trait ReportSink: Send {
    /// Accepts one record. An error means the record was not taken.
    fn send(&mut self, record: &AgentRecord) -> io::Result<()>;
    /// Makes everything accepted so far visible/durable at the destination.
    fn flush(&mut self) -> io::Result<()>;
}

/// A new private (0700) spool directory under the system's temporary directory, for a
/// `replay` that was given none.
pub fn temp_spool_dir() -> io::Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!(
            "voqa-replay-spool-{}-{nanos:x}-{attempt}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "cannot create a temporary spool directory",
    ))
}

/// One JSON object per line (`{"type":"stream",...}` / `{"type":"heartbeat",...}`).
pub struct JsonLinesSink<W: Write + Send> {
    out: BufWriter<W>,
}

impl<W: Write + Send> JsonLinesSink<W> {
    pub fn new(writer: W) -> Self {
        JsonLinesSink {
            out: BufWriter::with_capacity(1 << 16, writer),
        }
    }
}

impl<W: Write + Send> ReportSink for JsonLinesSink<W> {
    fn send(&mut self, record: &AgentRecord) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, record).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voqa_wire::Heartbeat;

    #[test]
    fn one_json_object_per_line_tagged_by_type() {
        let hb = Heartbeat {
            agent_id: "a".into(),
            agent_version: "0".into(),
            time: voqa_wire::Timestamp::from_ns(1_795_392_000_000_000_000),
            host_uptime_s: 1,
            cpu_pct: 0.0,
            agent_cpu_pct: 0.0,
            mem_total_bytes: 2,
            mem_used_bytes: 1,
            agent_rss_bytes: 1,
            load_avg: [0.0; 3],
            workers: vec![],
            streams_tracked: 0,
            streams_evicted: 0,
            processes: vec![],
            shipping: None,
        };
        let mut sink = JsonLinesSink::new(Vec::new());
        sink.send(&AgentRecord::Heartbeat(hb.clone()))
            .expect("send");
        sink.send(&AgentRecord::Heartbeat(hb)).expect("send");
        sink.flush().expect("flush");
        let text = String::from_utf8(sink.out.into_inner().expect("buffer")).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let back: AgentRecord = serde_json::from_str(lines[0]).expect("parse");
        assert!(matches!(back, AgentRecord::Heartbeat(_)));
        assert!(
            lines[0].starts_with("{\"type\":\"heartbeat\""),
            "{}",
            lines[0]
        );
    }
}
