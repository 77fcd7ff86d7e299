//! Shared parts of the shipping benches (`ship_load.rs`, `ship_cpu.rs`, `spool_rss.rs`):
//! realistic stream reports and heartbeats, a self-signed CA and a collector certificate
//! (rcgen, ring), and the real `voqa-collector serve` binary on a fresh SQLite file over TLS,
//! in its own process (so its CPU and memory are not the agent's).
//!
//! The collector binary is `$VOQA_COLLECTOR_BIN`, else `voqa-collector` beside the example's
//! directory (`target/release/`), built on demand with `cargo build --release -p voqa-collector`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use voqa_wire::time::NS_PER_S;
use voqa_wire::{Heartbeat, StreamReport, Timestamp, Transitions, WorkerCounters};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// Eight window histograms like an agent's (a few neighbouring jitter bins), as in
/// `benches/collector_load.rs`.
static HISTOGRAMS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    let mut encoder = voqa_wire::histogram::HistogramEncoder::new();
    (0..8u64)
        .map(|k| {
            let mut h = voqa_wire::histogram::new_jitter_histogram();
            for (i, count) in [60u64, 140, 180, 90, 30].into_iter().enumerate() {
                let _ = h.record_n(500 + 250 * k + 90 * i as u64, count);
            }
            encoder.encode(&h).unwrap_or_default()
        })
        .collect()
});

/// Interval report `window` (10 s windows from 2026-11-20T00:00Z) of stream `stream` of
/// `agent`: 500 packets, one lost, a jitter histogram; every record id is distinct.
pub fn report(agent: &str, stream: u64, window: i64) -> StreamReport {
    let base = Timestamp::from_date(2026, 11, 20).unwrap_or(Timestamp::EPOCH);
    let window_start = base.saturating_add_ns(window * 10 * NS_PER_S);
    StreamReport {
        agent_id: agent.into(),
        stream_id: format!("{stream:016x}"),
        src: "203.0.113.5:40000".into(),
        dst: "198.51.100.20:50000".into(),
        ssrc: "0x00000001".into(),
        payload_type: 0,
        codec: "PCMU".into(),
        clock_rate: Some(8000),
        call_id: Some(format!("anon:{:016x}", stream / 2)),
        window_start,
        window_end: window_start.saturating_add_ns(10 * NS_PER_S),
        is_final: false,
        end_reason: None,
        packets: 500,
        expected: 500,
        lost: 1,
        duplicates: 0,
        reordered: 0,
        jitter_ms: Some(1.0),
        max_jitter_ms: Some(2.0),
        mean_jitter_ms: Some(1.0),
        jitter_sum_ms: 500.0,
        jitter_samples: 500,
        jitter_histogram: Some(HISTOGRAMS[(stream % 8) as usize].clone()),
        max_delta_ms: 21.0,
        transitions: Transitions {
            n00: 497,
            n01: 1,
            n10: 1,
            n11: 0,
        },
        burst_ratio: 1.0,
        jb_discarded: 0,
        effective_loss_pct: 0.2,
        rtt_ms: None,
        delay_ms: Some(100.125),
        r_factor: Some(90.0),
        mos: Some(4.3),
        capture_drops: 0,
        totals: None,
    }
}

/// A heartbeat of `agent` at `t_s` seconds after 2026-11-20T00:00Z (two workers).
pub fn heartbeat(agent: &str, t_s: i64) -> Heartbeat {
    let base = Timestamp::from_date(2026, 11, 20).unwrap_or(Timestamp::EPOCH);
    Heartbeat {
        agent_id: agent.into(),
        agent_version: "0.1.0".into(),
        time: base.saturating_add_ns(t_s * NS_PER_S),
        host_uptime_s: 1000 + t_s as u64,
        cpu_pct: 3.5,
        agent_cpu_pct: 1.0,
        mem_total_bytes: 24 << 30,
        mem_used_bytes: 4 << 30,
        agent_rss_bytes: 20 << 20,
        load_avg: [0.5, 0.4, 0.3],
        workers: vec![WorkerCounters::default(); 2],
        streams_tracked: 2000,
        streams_evicted: 0,
        processes: vec![],
        shipping: None,
    }
}

/// A CA and a certificate for 127.0.0.1/localhost it signed, as PEM files in `dir`:
/// (ca.pem, cert.pem, key.pem).
pub fn make_pki(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "voqa bench CA");
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca, ca_cert.pem())?;
    std::fs::write(&cert, leaf.pem())?;
    std::fs::write(&key, leaf_key.serialize_pem())?;
    Ok((ca, cert, key))
}

/// The collector binary (see the module doc).
pub fn collector_bin() -> Result<PathBuf> {
    release_bin("voqa-collector", "VOQA_COLLECTOR_BIN")
}

/// `$ENV_VAR`, else the release binary `name` beside this example
/// (`target/release/examples/NAME` → `target/release/name`), built if missing.
pub fn release_bin(name: &str, env_var: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("no target directory")?;
    let bin = profile_dir.join(name);
    if !bin.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "-p", name, "--bin", name])
            .status()?;
        if !status.success() {
            return Err(format!("building {name} failed").into());
        }
    }
    Ok(bin)
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One `voqa-collector serve` over TLS on a fresh SQLite file in `dir`.
pub struct Collector {
    child: Child,
    pub base: String,
    pub db_path: PathBuf,
    bin: PathBuf,
}

impl Collector {
    pub fn start(dir: &Path, cert: &Path, key: &Path) -> Result<Collector> {
        let bin = collector_bin()?;
        let db_path = dir.join("collector.db");
        let database = format!("sqlite:{}", db_path.display());
        let config = dir.join("collector.toml");
        // Bodies up to 8 MiB (the default) fit the agent's 1 MiB batches; /metrics open on
        // loopback so the bench can read the ingest counters without an ops token.
        std::fs::write(&config, "metrics_open_on_loopback = true\n")?;
        let port = free_port()?;
        let mut child = Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .args(["--database", &database, "serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !line.contains("listening on") {
                    eprintln!("[collector] {line}");
                }
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    return Err("the collector did not start".into());
                }
            }
        }
        Ok(Collector {
            child,
            base: format!("https://127.0.0.1:{port}"),
            db_path,
            bin,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A new token of role `agent` bound to `agent` (through the binary, on the same database).
    pub fn agent_token(&self, agent: &str) -> Result<String> {
        let out = Command::new(&self.bin)
            .args([
                "--database",
                &format!("sqlite:{}", self.db_path.display()),
                "token",
                "create",
                "--role",
                "agent",
                "--agent",
                agent,
            ])
            .output()?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    /// Stops the collector (SIGTERM, graceful) and waits for it.
    pub fn stop(mut self) -> Result<()> {
        stop_child(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        Ok(())
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stop_child(pid: u32) {
    // `kill -TERM PID` through the shell tool keeps this file free of `unsafe`.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

/// Rows of `table` in a SQLite file, through the `sqlite3` command-line tool (None when it is
/// not installed).
pub fn sqlite_count(db: &Path, table: &str) -> Option<u64> {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(format!("SELECT count(*) FROM {table};"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// The value of one Prometheus counter on the collector's /metrics (open on loopback),
/// fetched with a client that trusts only `ca`.
pub fn collector_metric(base: &str, ca: &Path, name: &str) -> Result<u64> {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = reqwest::Certificate::from_pem_bundle(&std::fs::read(ca)?)?;
    let client = reqwest::Client::builder().tls_certs_only(certs).build()?;
    let url = format!("{base}/metrics");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let text = rt.block_on(async { client.get(&url).send().await?.text().await })?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse::<f64>().ok().map(|f| f as u64))?
        })
        .ok_or_else(|| format!("no {name} in /metrics").into())
}

/// CPU time (user + system) of one thread of this process, from /proc/self/task/TID/stat.
pub fn thread_cpu(tid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    cpu_from_stat(&stat)
}

/// CPU time (user + system) of a process, from /proc/PID/stat.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_from_stat(&stat)
}

fn cpu_from_stat(stat: &str) -> Option<Duration> {
    // Fields after the command name (which may contain spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let hz = clock_ticks();
    Some(Duration::from_nanos((utime + stime) * 1_000_000_000 / hz))
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`: keeps `unsafe` out).
fn clock_ticks() -> u64 {
    static HZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&hz| hz > 0)
            .unwrap_or(100)
    })
}

/// Threads of this process by name (comm): (tid, name).
pub fn threads() -> Vec<(u32, String)> {
    let mut v = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            v.push((tid, comm.trim().to_owned()));
        }
    }
    v
}

/// This thread's id (from /proc/thread-self).
pub fn current_tid() -> Option<u32> {
    std::fs::read_link("/proc/thread-self")
        .ok()?
        .file_name()?
        .to_str()?
        .parse()
        .ok()
}
