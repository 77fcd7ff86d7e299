//! Collector memory under stalled uploads (issue 10, item 11): starts the real
//! `voqa-collector serve` on loopback with a fresh SQLite database and an agent token, opens
//! CLIENTS connections that each send the headers of an ingest with `Content-Length: BODY`
//! and then half of the body, and stall. It samples the server's `/proc/PID/status` (VmRSS):
//! at rest, while the uploads are stalled, and after they end: either the clients disconnect
//! (`disconnect`) or they stay and the server's body timeout cuts them (`timeout`). Finally
//! `/healthz` must still answer.
//!
//! The collector binary is `$VOQA_COLLECTOR_BIN`, else `target/debug/voqa-collector` (build it
//! first with `cargo build -p voqa-collector`). Run:
//!   cargo run -p voqa-collector --example stalled-uploads -- [CLIENTS=300] [BODY=8388608]
//!       [disconnect|timeout] [EXTRA_CONFIG_TOML]
//! $MAX_BODY_BYTES sets the server's max_body_bytes (default 8388608).
//! $STALL_WRITE_BYTES sets the size of each write (default 65536).
//! EXTRA_CONFIG_TOML is appended to the server's config (e.g. "max_concurrent_ingests = 1000"
//! to let every upload in, as before the limits existed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn collector_bin() -> PathBuf {
    std::env::var_os("VOQA_COLLECTOR_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/voqa-collector"),
        PathBuf::from,
    )
}

/// VmRSS of `pid` in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn healthz(addr: &str) -> Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.lines().next().unwrap_or("").to_owned())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let clients: usize = args.first().map_or(Ok(300), |a| a.parse())?;
    let body: usize = args.get(1).map_or(Ok(8 << 20), |a| a.parse())?;
    let end = args.get(2).map_or("disconnect", String::as_str).to_owned();
    let extra = args.get(3).cloned().unwrap_or_default();
    // The server's max_body_bytes ($MAX_BODY_BYTES, default 8 MiB): a Content-Length of twice
    // it, half sent, makes every stalled upload hold the whole limit on a server that reads
    // before it checks.
    let max_body: usize = std::env::var("MAX_BODY_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8 << 20);
    let dir = tempfile::tempdir()?;
    let db = format!("sqlite:{}", dir.path().join("voqa.db").display());
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"{db}\"\nmax_body_bytes = {max_body}\n\
             body_timeout_s = 20\n{extra}\n"
        ),
    )?;
    let bin = collector_bin();
    let out = Command::new(&bin)
        .args([
            "--database",
            &db,
            "token",
            "create",
            "--role",
            "agent",
            "--agent",
            "*",
        ])
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    let token = String::from_utf8(out.stdout)?.trim().to_owned();
    let mut child = Command::new(&bin)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let served = Served(child);
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().ok_or("collector exited before listening")??;
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap_or("").to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    println!("collector pid {pid} on {addr}; {clients} clients, Content-Length {body}, then {end}");
    println!("rss at rest:            {:8.1} MiB", rss_mib(pid));

    let head = format!(
        "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {body}\r\n\r\n"
    );
    // Each write's size ($STALL_WRITE_BYTES, default 64 KiB): small writes arrive as small
    // frames, which is what pinned the connection's read buffers before `read_body`.
    let write_bytes: usize = std::env::var("STALL_WRITE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64 << 10);
    let chunk = vec![b' '; write_bytes.max(1)];
    let mut conns = Vec::with_capacity(clients);
    let mut refused = 0usize;
    let started = Instant::now();
    for _ in 0..clients {
        let mut s = TcpStream::connect(&addr)?;
        s.set_write_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(head.as_bytes())?;
        let mut sent = 0;
        let mut ok = true;
        while sent < body / 2 {
            let n = chunk.len().min(body / 2 - sent);
            if s.write_all(&chunk[..n]).is_err() {
                // Refused up front (503 / closed): the server did not take the body.
                ok = false;
                break;
            }
            sent += n;
        }
        if !ok {
            refused += 1;
        }
        conns.push(s);
    }
    println!(
        "{clients} uploads stalled at half their body in {:.1} s ({refused} could not send it all)",
        started.elapsed().as_secs_f64()
    );
    let mut peak: f64 = 0.0;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        peak = peak.max(rss_mib(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("rss while stalled:      {peak:8.1} MiB");
    println!("/healthz while stalled: {}", healthz(&addr)?);

    let ended = Instant::now();
    if end == "timeout" {
        // Wait until the server has answered or closed every stalled upload.
        for s in &mut conns {
            s.set_read_timeout(Some(Duration::from_secs(120)))?;
            let mut buf = [0u8; 4096];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        }
        println!(
            "server ended every upload after {:.1} s",
            ended.elapsed().as_secs_f64()
        );
    }
    drop(conns);
    let closed = Instant::now();
    for wait in [1u64, 5, 10] {
        let at = closed + Duration::from_secs(wait);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        println!("rss {wait:2} s after the end: {:8.1} MiB", rss_mib(pid));
    }
    println!("/healthz after:         {}", healthz(&addr)?);
    drop(served);
    Ok(())
}
