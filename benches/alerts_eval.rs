//! Alert evaluation cost per cycle: 1,000 customers (one agent each) × 5 global rules
//! (`quality_drop`, `sla_burn` page and ticket over uptime and calls meeting MOS,
//! `agent_silent`, `capture_incomplete`) over the given store, each agent with 6 hours of
//! heartbeats (one a minute) and 12 calls in the last hour, a quarter of them below MOS 4
//! (no call records: `quality_drop`'s read of the problem calls finds none).
//! Times one engine cycle (lease, every rule read from the aggregates, the state machine, the
//! commit) several times and prints each and the median.
//!
//! Usage: cargo run -p voqa-collector --example alerts-eval -- [sqlite:PATH | postgres://...] [CUSTOMERS] [CYCLES]
//! (a store this loaded before is reused as it is, at the time it was loaded for).

use std::sync::Arc;
use std::time::Instant;

use voqa_collector::alerts::engine::Engine;
use voqa_collector::config::{CollectorConfig, LiveConfig};
use voqa_collector::store::Store;
use voqa_wire::{StreamReport, Timestamp, fixtures};

const S: i64 = 1_000_000_000;

/// Call `n` of `agent`: one clean stream of 3,000 packets over the minute from `start_ns`.
fn report(agent: &str, n: u32, mos: f64, start_ns: i64) -> StreamReport {
    let (start, end) = (
        Timestamp::from_ns(start_ns),
        Timestamp::from_ns(start_ns + 60 * S),
    );
    let (stream, call) = (format!("s{n}"), format!("{agent}-call-{n}"));
    fixtures::final_report(agent, &stream, &call, start, end, 3000, mos)
}

fn config(customers: u32) -> String {
    let mut text = String::from(
        r#"
[alerts]
evaluate_every = "15s"
[[alerts.rules]]
name = "quality"
kind = "quality_drop"
window = "15m"
threshold_pct = 20.0
min_calls = 5
[[alerts.rules]]
name = "burn-page"
kind = "sla_burn"
severity = "page"
[[alerts.rules]]
name = "burn-ticket"
kind = "sla_burn"
severity = "ticket"
[[alerts.rules]]
name = "silent"
kind = "agent_silent"
[[alerts.rules]]
name = "capture"
kind = "capture_incomplete"
window = "1h"
threshold_pct = 5.0
"#,
    );
    for c in 0..customers {
        text.push_str(&format!(
            "[[customers]]\nid = \"c{c:04}\"\nname = \"Customer {c}\"\nagents = [\"agent-{c:04}\"]\n\
             [customers.commitments]\nmos_min = 4.0\ncalls_meeting_pct = 95.0\nloss_max_pct = 1.0\n\
             jitter_p95_max_ms = 30.0\nuptime_min_pct = 99.95\nheartbeat_interval_s = 60\n\
             maintenance = [\"Sun 02:00-04:00 UTC\"]\n"
        ));
    }
    text
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = tempfile::tempdir()?;
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| format!("sqlite:{}", dir.path().join("alerts.db").display()));
    let customers: u32 = args.get(2).map_or(Ok(1000), |s| s.parse())?;
    let cycles: usize = args.get(3).map_or(Ok(5), |s| s.parse())?;
    let store = Store::open(&url).await?;
    let mut now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as i64;
    let loading = Instant::now();
    // A store loaded by an earlier run is reused, at the time it was loaded for.
    let agents = store.agents().await?;
    let loaded = agents.len() >= customers as usize;
    if loaded {
        now = agents
            .iter()
            .filter_map(|a| a.last_heartbeat_ns)
            .max()
            .unwrap_or(now)
            + 60 * S;
    }
    for c in (0..customers).filter(|_| !loaded) {
        let agent = format!("agent-{c:04}");
        let beats = (0..360)
            .map(|m| fixtures::heartbeat(&agent, Timestamp::from_ns(now - (360 - m) * 60 * S)))
            .collect();
        let reports = (0..12u32)
            .map(|n| {
                let mos = if n % 4 == 0 { 3.2 } else { 4.3 };
                report(&agent, n, mos, now - i64::from(60 - 5 * n) * 60 * S)
            })
            .collect();
        let batch = fixtures::batch(c.into(), &agent, reports, beats);
        store.ingest(&batch, now).await?;
    }
    store.refresh_statistics().await?;
    println!(
        "{} store: {customers} customers loaded in {:.1} s (360 heartbeats and 12 calls each)",
        store.backend(),
        loading.elapsed().as_secs_f64()
    );
    let config = CollectorConfig::parse(&config(customers)).map_err(anyhow::Error::msg)?;
    let engine = Engine::new(
        store.clone(),
        LiveConfig::new(config),
        Arc::default(),
        "bench".into(),
        "http://127.0.0.1:8080".into(),
    );
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    for i in 0..cycles {
        let (started, cpu_before) = (Instant::now(), cpu_seconds());
        let outcome = engine.cycle(now + i as i64 * 15 * S).await?;
        let took = started.elapsed().as_secs_f64();
        let used = cpu_seconds() - cpu_before;
        println!(
            "cycle {i}: {took:.3} s wall, {used:.3} s CPU of this process (SQLite's work \
             included, a PostgreSQL server's not) ({} transitions recorded, evaluated: {})",
            outcome.events, outcome.evaluated
        );
        times.push(took);
        cpu.push(used);
    }
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    println!(
        "{} rules × {customers} customers: median cycle {:.3} s wall, {:.3} s CPU",
        5,
        times[times.len() / 2],
        cpu[cpu.len() / 2]
    );
    store.close().await;
    Ok(())
}

/// User and system CPU time of this process so far (`/proc/self/stat`, in clock ticks of
/// 1/100 s), 0 when unreadable.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces, within parentheses).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line; 12 and 13 after the name.
    (tick(11) + tick(12)) / 100.0
}
