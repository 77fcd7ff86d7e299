//! Shipping end to end: stream reports/s from the agent's sink into the collector's SQLite over
//! loopback TLS, through the real parts.
//!
//! - A CA and a collector certificate are made with rcgen (ring); the real `voqa-collector
//!   serve --tls-cert --tls-key` runs in its own process on a fresh SQLite file.
//! - AGENTS agents, each one `Delivery` (its own spool directory, agent id and `agent` token)
//!   with the `[ship]` defaults (batches of 500 records / 1 MiB / 5 s, spool fsync every 1 s),
//!   trusting the CA through `ShipperSettings.ca_file`.
//! - Each agent's thread writes its share of TOTAL realistic `StreamReport`s (each with a jitter
//!   histogram; built before the clock starts, as capture workers build them on other threads)
//!   through the real `SpoolSink::send` as fast as it goes, then `Delivery::drain`s.
//! - Clock: from the first append to the last acknowledgement. Also printed: how long the
//!   appends took and how much was still unacknowledged when they ended (a large backlog means
//!   the shipper, not the sink, is the bottleneck).
//! - At the end the collector must have stored exactly TOTAL reports: its
//!   `voqa_ingest_reports_total` (this process's count, from /metrics) and, after it stopped,
//!   `SELECT count(*) FROM stream_reports` (with the `sqlite3` tool, when installed).
//!
//! Run (release; fresh temporary directories each run; `$TMPDIR` picks the file system):
//!   cargo run --release -p voqa-agent --example ship-load -- [TOTAL=200000] [AGENTS=1] [BATCH_RECORDS=500]
//! (BATCH_RECORDS other than 500 also raises batch_max_bytes to 2 KiB per record.)

#[path = "ship_support.rs"]
mod support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use support::{Collector, Result, collector_metric, make_pki, process_cpu, report, sqlite_count};
use voqa_agent::ship::config::ShipConfig;
use voqa_agent::ship::delivery::{Delivery, spool_config};
use voqa_agent::ship::http::{ShipperSettings, TokenSource};
use voqa_wire::AgentRecord;

struct AgentResult {
    appended: Duration,
    backlog_after_appends: u64,
    done: Duration,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let total: u64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let agents: u64 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    // Optional: batch_max_records (default 500, the `[ship]` default), to see whether one
    // shipper is bound by round trips (one batch in flight at a time).
    let batch_records: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(500);
    let per_agent = total / agents;
    let total = per_agent * agents;

    let dir = tempfile::tempdir()?;
    let (ca, cert, key) = make_pki(dir.path())?;
    let collector = Collector::start(dir.path(), &cert, &key)?;

    let cfg = ShipConfig {
        collectors: vec![collector.base.clone()],
        ca_file: Some(ca.clone()),
        batch_max_records: batch_records,
        batch_max_bytes: (batch_records * 2048).max(1 << 20),
        ..ShipConfig::default()
    };
    let barrier = Arc::new(Barrier::new(agents as usize + 1));
    let mut threads = Vec::new();
    for a in 0..agents {
        let agent = format!("load-{a}");
        let token = collector.agent_token(&agent)?;
        let settings = ShipperSettings::from_config(&cfg, TokenSource::Inline(token));
        let spool = spool_config(&cfg, dir.path().join(format!("spool-{a}")))?;
        // Records first, off the clock.
        let records: Vec<AgentRecord> = (0..per_agent)
            .map(|i| AgentRecord::Stream(report(&agent, i % 2000, (i / 2000) as i64)))
            .collect();
        let barrier = Arc::clone(&barrier);
        threads.push(std::thread::spawn(move || -> Result<AgentResult> {
            let (mut sink, delivery) = Delivery::start(settings, spool)?;
            barrier.wait();
            let start = Instant::now();
            for r in &records {
                sink.send(r)?;
            }
            sink.flush()?;
            let appended = start.elapsed();
            let backlog_after_appends = delivery.counters().pending_records;
            delivery
                .drain(Some(Duration::from_secs(60)))
                .map_err(|e| e.to_string())?;
            let done = start.elapsed();
            delivery.stop();
            drop(records);
            Ok(AgentResult {
                appended,
                backlog_after_appends,
                done,
            })
        }));
    }
    let (me, collector_pid) = (std::process::id(), collector.pid());
    let cpu0 = (process_cpu(me), process_cpu(collector_pid));
    barrier.wait();
    let start = Instant::now();
    let mut results = Vec::new();
    for t in threads {
        results.push(t.join().map_err(|_| "agent thread panicked")??);
    }
    let wall = start.elapsed();
    // Where the two cores went: this process (the agents' sinks and shippers) and the
    // collector, CPU seconds over the run.
    let cpu_of = |now: Option<Duration>, then: Option<Duration>| {
        now.zip(then)
            .map_or(f64::NAN, |(n, t)| (n - t).as_secs_f64())
    };
    let agents_cpu = cpu_of(process_cpu(me), cpu0.0);
    let collector_cpu = cpu_of(process_cpu(collector_pid), cpu0.1);

    let stored_metric = collector_metric(&collector.base, &ca, "voqa_ingest_reports_total")?;
    let db = collector.db_path.clone();
    collector.stop()?;
    let stored_rows = sqlite_count(&db, "stream_reports");

    for (a, r) in results.iter().enumerate() {
        println!(
            "agent {a}: appends {:.2} s ({:.0} reports/s into the spool), backlog at the last \
             append {} reports, all acknowledged after {:.2} s",
            r.appended.as_secs_f64(),
            per_agent as f64 / r.appended.as_secs_f64(),
            r.backlog_after_appends,
            r.done.as_secs_f64()
        );
    }
    println!(
        "{total} reports, {agents} agent(s): first append to last ack {:.2} s = {:.0} reports/s; \
         collector stored {stored_metric} (metrics), {} (stream_reports rows)",
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64(),
        stored_rows.map_or("?".to_owned(), |n| n.to_string())
    );
    println!(
        "CPU over the run: agents {agents_cpu:.2} s ({:.1} µs/report), collector {collector_cpu:.2} s \
         ({:.1} µs/report), of {:.2} s × {} cores",
        agents_cpu * 1e6 / total as f64,
        collector_cpu * 1e6 / total as f64,
        wall.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if stored_metric != total || stored_rows.is_some_and(|n| n != total) {
        return Err(format!("stored {stored_metric} / {stored_rows:?}, expected {total}").into());
    }
    Ok(())
}
