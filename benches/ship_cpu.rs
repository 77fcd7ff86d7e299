//! Agent CPU for shipping at CALLS concurrent calls (default 1,000 = 2,000 streams): one
//! interval report per stream every 10 s (200 reports/s at 1,000 calls) plus a heartbeat every
//! 15 s, fed at that real rate for DURATION seconds into the real `SpoolSink` (spool with the
//! `[ship]` defaults: fsync every 1 s, batches of 500 / 1 MiB / 5 s) while the real shipper
//! delivers them over TLS to the real `voqa-collector serve` in another process (so its CPU is
//! not counted; see `ship_support.rs`).
//!
//! Pacing (`burst`, the default, is what the agent does): the analyzer closes every stream's
//! window at the same multiple of `interval_s` of packet time, so the 2,000 reports of a
//! window reach the sink together every 10 s. `spread` feeds one report every 5 ms instead.
//!
//! Measured from the first record to the last acknowledgement (a `drain` after DURATION):
//! - the whole process's CPU (utime + stime from /proc/self/stat): reports are built before
//!   the clock starts, so what is left is the sink, the shipper and this loop's sleeping;
//! - per thread (/proc/self/task/TID/stat): the sink thread (`SpoolSink::send`: encode, spool
//!   append, fsync every second), the shipper thread `voqa-ship` (read, batch, gzip, TLS,
//!   HTTP), and any other thread;
//! - `baseline` (a fourth argument) runs the same loop with a sink that discards records (no
//!   spool, no shipper, no collector): the loop's own cost (its sleeps and wake-ups), to
//!   subtract.
//!
//! Printed as % of one core. Run:
//!   cargo run --release -p voqa-agent --example ship-cpu -- [DURATION_S=60] [CALLS=1000] [burst|spread] [baseline]

#[path = "ship_support.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{
    Collector, Result, collector_metric, current_tid, heartbeat, make_pki, process_cpu, report,
    thread_cpu, threads,
};
use voqa_agent::ship::ReportSink;
use voqa_agent::ship::config::ShipConfig;
use voqa_agent::ship::delivery::{Delivery, spool_config};
use voqa_agent::ship::http::{ShipperSettings, TokenSource};
use voqa_wire::AgentRecord;

const AGENT: &str = "cpu-agent";

/// Discards records: the baseline loop.
struct NullSink;

impl ReportSink for NullSink {
    fn send(&mut self, record: &AgentRecord) -> std::io::Result<()> {
        std::hint::black_box(record);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let duration_s: u64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(60);
    let calls: u64 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(1000);
    let mode = args.get(3).map_or("burst", String::as_str);
    if !["burst", "spread"].contains(&mode) {
        return Err(format!("pacing {mode}: burst or spread").into());
    }
    let baseline = args.get(4).is_some_and(|a| a == "baseline");
    let streams = calls * 2;
    let windows = duration_s / 10;
    let heartbeats = duration_s / 15;
    // Every record, built before the clock starts (capture workers build them elsewhere).
    let reports: Vec<Vec<AgentRecord>> = (0..windows)
        .map(|w| {
            (0..streams)
                .map(|s| AgentRecord::Stream(report(AGENT, s, w as i64)))
                .collect()
        })
        .collect();
    let hbs: Vec<AgentRecord> = (1..=heartbeats)
        .map(|h| AgentRecord::Heartbeat(heartbeat(AGENT, (h * 15) as i64)))
        .collect();
    let expected_reports = windows * streams;

    let dir = tempfile::tempdir()?;
    let mut collector = None;
    let mut delivery = None;
    let mut sink: Box<dyn ReportSink> = if baseline {
        Box::new(NullSink)
    } else {
        let (ca, cert, key) = make_pki(dir.path())?;
        let c = Collector::start(dir.path(), &cert, &key)?;
        let cfg = ShipConfig {
            collectors: vec![c.base.clone()],
            ca_file: Some(ca.clone()),
            ..ShipConfig::default()
        };
        let settings =
            ShipperSettings::from_config(&cfg, TokenSource::Inline(c.agent_token(AGENT)?));
        let (s, d) = Delivery::start(settings, spool_config(&cfg, dir.path().join("spool"))?)?;
        collector = Some((c, ca));
        delivery = Some(d);
        s
    };

    let tid = current_tid().ok_or("no /proc/thread-self")?;
    let pid = std::process::id();
    let before_threads: Vec<(u32, String, Duration)> = threads()
        .into_iter()
        .map(|(t, n)| {
            let c = thread_cpu(t).unwrap_or_default();
            (t, n, c)
        })
        .collect();
    let cpu0 = process_cpu(pid).ok_or("no /proc/self/stat")?;
    let sink0 = thread_cpu(tid).unwrap_or_default();
    let t0 = Instant::now();

    // Events in time order: (offset, what): a window's reports at 10 s, 20 s, ...; heartbeats
    // at 15 s, 30 s, ...
    let mut events: Vec<(Duration, Option<usize>, Option<usize>)> = Vec::new();
    for w in 0..windows as usize {
        events.push((Duration::from_secs(10 * (w as u64 + 1)), Some(w), None));
    }
    for h in 0..heartbeats as usize {
        events.push((Duration::from_secs(15 * (h as u64 + 1)), None, Some(h)));
    }
    events.sort_by_key(|e| e.0);
    // Spread: the window's reports over the 10 s before its boundary, one every 10 s / streams.
    let step = Duration::from_secs(10) / streams.max(1) as u32;
    for (at, window, hb) in events {
        if let Some(w) = window {
            if mode == "spread" {
                let begin = t0 + at - Duration::from_secs(10);
                for (i, r) in reports[w].iter().enumerate() {
                    sleep_until(begin + step * (i as u32 + 1));
                    sink.send(r)?;
                }
            } else {
                sleep_until(t0 + at);
                for r in &reports[w] {
                    sink.send(r)?;
                }
            }
        }
        if let Some(h) = hb {
            sleep_until(t0 + at);
            sink.send(&hbs[h])?;
        }
        // The sink thread flushes when its channel is idle (fsync when due).
        sink.flush()?;
    }
    sleep_until(t0 + Duration::from_secs(duration_s));
    let fed = t0.elapsed();
    if let Some(d) = &delivery {
        d.drain(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
    }
    let wall = t0.elapsed();
    let cpu = process_cpu(pid).ok_or("no /proc/self/stat")? - cpu0;
    let sink_cpu = thread_cpu(tid).unwrap_or_default() - sink0;
    let mut per_thread: Vec<(String, Duration)> = Vec::new();
    for (t, n) in threads() {
        let now = thread_cpu(t).unwrap_or_default();
        let before = before_threads
            .iter()
            .find(|b| b.0 == t)
            .map_or(Duration::ZERO, |b| b.2);
        let d = now.saturating_sub(before);
        if t != tid && !d.is_zero() {
            per_thread.push((format!("{n}[{t}]"), d));
        }
    }
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / wall.as_secs_f64();
    let records = expected_reports + heartbeats;
    println!(
        "{mode}{}: {calls} calls ({streams} streams), {records} records ({expected_reports} reports, \
         {heartbeats} heartbeats) fed over {:.1} s, last ack at {:.1} s",
        if baseline {
            " baseline (records discarded)"
        } else {
            ""
        },
        fed.as_secs_f64(),
        wall.as_secs_f64()
    );
    println!(
        "  process CPU {:.3} s = {:.3} % of one core; sink thread {:.3} s = {:.3} %",
        cpu.as_secs_f64(),
        pct(cpu),
        sink_cpu.as_secs_f64(),
        pct(sink_cpu)
    );
    for (n, d) in &per_thread {
        println!("  thread {n}: {:.3} s = {:.3} %", d.as_secs_f64(), pct(*d));
    }
    if records > 0 {
        println!(
            "  {:.1} µs of process CPU per record",
            cpu.as_secs_f64() * 1e6 / records as f64
        );
    }
    if let (Some(d), Some((c, ca))) = (delivery, collector) {
        d.stop();
        let stored = collector_metric(&c.base, &ca, "voqa_ingest_reports_total")?;
        c.stop()?;
        println!("  collector stored {stored} reports (expected {expected_reports})");
        if stored != expected_reports {
            return Err("collector count mismatch".into());
        }
    }
    Ok(())
}
