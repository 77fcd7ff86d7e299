//! Agent memory with a full spool: fills a spool to its cap (default 1 GiB, the `[ship]`
//! default; segments as `ship::delivery::spool_config` sizes them) with realistic stream
//! reports in the agent's payload format (`ship::record::encode`) while no collector runs,
//! writing past the cap so that the oldest segments are dropped as in a long outage. Then it
//! starts the real `voqa-collector serve` over TLS (see `ship_support.rs`) and the real
//! `voqa-agent replay --spool-dir DIR --collector URL --token T` (no capture files: it only
//! delivers what the spool holds; `--config` gives `ship.ca_file`), and samples
//! `/proc/PID/status` (VmRSS, RssAnon, VmHWM) every 5 ms:
//! - while it opens (until it prints the recovery line: the scan of the backlog),
//! - while it ships, until it exits (every record acknowledged).
//!
//! Finally the collector must have stored every record the spool held.
//!
//! The agent binary is `$VOQA_AGENT_BIN`, else `voqa-agent` in `target/release/` (built on
//! demand). Run:
//!   cargo run --release -p voqa-agent --example spool-rss -- [CAP_MIB=1024] [FILL_MIB=1100]

#[path = "ship_support.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{Collector, Result, collector_metric, make_pki, report, sqlite_count};
use voqa_agent::ship::config::ShipConfig;
use voqa_agent::ship::delivery::spool_config;
use voqa_agent::ship::record;
use voqa_agent::ship::spool::Spool;
use voqa_wire::AgentRecord;

const AGENT: &str = "rss-agent";

fn agent_bin() -> Result<PathBuf> {
    support::release_bin("voqa-agent", "VOQA_AGENT_BIN")
}

/// (VmRSS, RssAnon, VmHWM) in KiB.
fn status_kib(pid: u32) -> Option<(u64, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("RssAnon:")?, field("VmHWM:")?))
}

#[derive(Default, Debug, Clone, Copy)]
struct Peak {
    rss: u64,
    anon: u64,
    hwm: u64,
    samples: u64,
}

impl Peak {
    fn add(&mut self, (rss, anon, hwm): (u64, u64, u64)) {
        self.rss = self.rss.max(rss);
        self.anon = self.anon.max(anon);
        self.hwm = self.hwm.max(hwm);
        self.samples += 1;
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let cap_mib: u64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(1024);
    let fill_mib: u64 = args
        .get(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(cap_mib + 76);
    let dir = tempfile::tempdir()?;
    let spool_dir = dir.path().join("spool");

    // 1. Fill the spool, collector down.
    let cfg = ShipConfig {
        spool_max_bytes: cap_mib << 20,
        ..ShipConfig::default()
    };
    let fill_start = Instant::now();
    let (held, dropped, disk) = {
        let (mut spool, _) = Spool::open(spool_config(&cfg, spool_dir.clone())?)?;
        let mut buf = Vec::new();
        let mut written: u64 = 0;
        let mut i: u64 = 0;
        while written < fill_mib << 20 {
            let r = AgentRecord::Stream(report(AGENT, i % 2000, (i / 2000) as i64));
            record::encode(&r, &mut buf)?;
            spool.append(&buf)?;
            written += buf.len() as u64 + 12;
            i += 1;
        }
        spool.sync()?;
        let c = spool.counters();
        (c.pending_records, c.dropped_cap_records, spool.disk_bytes())
    };
    println!(
        "spool filled in {:.1} s: {held} records pending, {dropped} dropped by the cap, {:.0} MiB \
         on disk (cap {cap_mib} MiB)",
        fill_start.elapsed().as_secs_f64(),
        disk as f64 / f64::from(1 << 20)
    );
    // The spool's files leave the page cache as little as they would after an outage; drop
    // them if we may (root), so the recovery scan reads the disk.
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "1");

    // 2. Collector up, agent replays the spool.
    let (ca, cert, key) = make_pki(dir.path())?;
    let collector = Collector::start(dir.path(), &cert, &key)?;
    let token = collector.agent_token(AGENT)?;
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "agent_id = \"{AGENT}\"\n[ship]\nca_file = \"{}\"\n",
            ca.display()
        ),
    )?;
    let start = Instant::now();
    let mut child = Command::new(agent_bin()?)
        .arg("replay")
        .arg("--config")
        .arg(&config)
        .arg("--spool-dir")
        .arg(&spool_dir)
        .args(["--collector", &collector.base, "--token", &token])
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let opened = Arc::new(AtomicBool::new(false));
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let o = Arc::clone(&opened);
    let log = std::thread::spawn(move || {
        let mut opened_at = None;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("[agent] {line}");
            if line.contains("from before to deliver") {
                o.store(true, Ordering::SeqCst);
                opened_at = Some(start.elapsed());
            }
        }
        opened_at
    });
    let (mut open, mut ship) = (Peak::default(), Peak::default());
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if let Some(s) = status_kib(pid) {
            if opened.load(Ordering::SeqCst) {
                ship.add(s);
            } else {
                open.add(s);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = start.elapsed();
    let opened_at = log.join().map_err(|_| "log thread")?;
    if !status.success() {
        return Err(format!("voqa-agent replay: {status}").into());
    }
    let stored = collector_metric(&collector.base, &ca, "voqa_ingest_reports_total")?;
    let db = collector.db_path.clone();
    collector.stop()?;
    let rows = sqlite_count(&db, "stream_reports");
    println!(
        "replay: opened (recovery scan) in {:.2} s, everything acknowledged after {:.1} s \
         ({:.0} reports/s)",
        opened_at.map_or(f64::NAN, |d| d.as_secs_f64()),
        wall.as_secs_f64(),
        held as f64 / wall.as_secs_f64()
    );
    println!(
        "  while opening: peak VmRSS {:.1} MiB, RssAnon {:.1} MiB ({} samples)",
        mib(open.rss),
        mib(open.anon),
        open.samples
    );
    println!(
        "  while shipping: peak VmRSS {:.1} MiB, RssAnon {:.1} MiB, VmHWM {:.1} MiB ({} samples)",
        mib(ship.rss),
        mib(ship.anon),
        mib(ship.hwm.max(open.hwm)),
        ship.samples
    );
    println!(
        "  collector stored {stored} (metrics), {} (rows); the spool held {held}",
        rows.map_or("?".to_owned(), |n| n.to_string())
    );
    if stored != held || rows.is_some_and(|n| n != held) {
        return Err("collector count mismatch".into());
    }
    Ok(())
}
