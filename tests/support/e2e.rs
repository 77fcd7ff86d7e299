//! End-to-end harness for agent → collector tests: runs the real `voqa-collector` binary
//! (SQLite in a temporary directory, or a fresh schema on the test PostgreSQL), creates its
//! tokens, runs `voqa-agent replay` into it, and reads back what the collector stored, by
//! record id. Every wait polls with a deadline; nothing sleeps a fixed time hoping a server is
//! ready.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use voqa_wire::{AgentRecord, StreamReport};

pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_voqa-agent"))
}

/// The collector binary beside the agent's (`cargo test --workspace` builds both); built on
/// demand when only the agent's tests were asked for.
pub fn collector_bin() -> PathBuf {
    let bin = agent_bin().with_file_name("voqa-collector");
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        if bin.is_file() {
            return;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "voqa-collector", "--bin", "voqa-collector"]);
        // The test's own package variables would make build scripts (ring's) rerun and rebuild
        // half the tree, twice.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_TARGET_TMPDIR",
            ]
            .iter()
            .any(|p| key.starts_with(p))
            {
                cmd.env_remove(key);
            }
        }
        if agent_bin().parent().and_then(Path::file_name) == Some("release".as_ref()) {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build for the collector");
        assert!(status.success(), "building voqa-collector failed");
    });
    assert!(bin.is_file(), "no collector binary at {}", bin.display());
    bin
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One collector process and what it needs to be restarted the same way.
pub struct Collector {
    pub dir: tempfile::TempDir,
    pub database: String,
    pub port: u16,
    pub config: PathBuf,
    pub extra_args: Vec<String>,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Collector {
    /// A collector on a fresh SQLite file, with `config_toml` as its config (may be empty).
    pub fn sqlite(config_toml: &str) -> Collector {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = format!("sqlite:{}", dir.path().join("voqa.db").display());
        Collector::with_database(dir, database, config_toml)
    }

    pub fn with_database(dir: tempfile::TempDir, database: String, config_toml: &str) -> Collector {
        let config = dir.path().join("collector.toml");
        std::fs::write(&config, config_toml).expect("write config");
        let log = dir.path().join("collector.log");
        Collector {
            dir,
            database,
            port: free_port(),
            config,
            extra_args: Vec::new(),
            child: None,
            log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(collector_bin());
        cmd.arg("--database")
            .arg(&self.database)
            .arg("--config")
            .arg(&self.config);
        cmd
    }

    /// `token create --role ROLE`: the secret.
    pub fn token(&self, role: &str) -> String {
        self.token_with(&["--role", role])
    }

    /// `token create --role agent --agent AGENTS`: the secret of a token bound to `agents`.
    pub fn agent_token(&self, agents: &str) -> String {
        self.token_with(&["--role", "agent", "--agent", agents])
    }

    fn token_with(&self, args: &[&str]) -> String {
        let out = self
            .command()
            .args(["token", "create"])
            .args(args)
            .output()
            .expect("token create");
        assert!(
            out.status.success(),
            "token create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_owned()
    }

    /// Starts `serve` and waits until it answers `/healthz`.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "collector already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = self
            .command()
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn collector");
        self.child = Some(child);
        let port = self.port;
        if self.extra_args.iter().any(|a| a == "--tls-cert") {
            // HTTPS: this plain client cannot ask; a listening port is enough.
            wait_until("the collector to listen", Duration::from_secs(30), || {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            return;
        }
        wait_until(
            "the collector to answer /healthz",
            Duration::from_secs(30),
            || http_get(port, "/healthz", None).is_some_and(|(s, _)| s == 200),
        );
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every stream report the collector holds (all agents), by record id, with how many
    /// copies of each it stored.
    pub fn stored_reports(&self, ops_token: &str) -> BTreeMap<String, usize> {
        let mut ids = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/streams?{}&limit=1000", self.query_range());
            if let Some(c) = &cursor {
                path.push_str("&cursor=");
                path.push_str(c);
            }
            let (status, body) =
                http_get(self.port, &path, Some(ops_token)).expect("GET /api/v1/streams");
            assert_eq!(status, 200, "{path}: {body}");
            let v: Value = serde_json::from_str(&body).expect("json");
            for item in v["items"].as_array().expect("items") {
                let report = item.get("report").unwrap_or(item);
                let id = record_id_of(report).unwrap_or_else(|| panic!("no record id in {item}"));
                *ids.entry(id).or_insert(0) += 1;
            }
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        ids
    }

    /// The range the test captures live in (2026-11; queries span at most 366 days).
    fn query_range(&self) -> String {
        "from=2026-06-01&to=2027-05-31".to_owned()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `AGENT/STREAM/WINDOW_START_NS/i|f` of a report as JSON (the wire's `record_id`).
pub fn record_id_of(v: &Value) -> Option<String> {
    if let Some(id) = v.get("record_id").and_then(Value::as_str) {
        return Some(id.to_owned());
    }
    let r: StreamReport = serde_json::from_value(v.clone()).ok()?;
    Some(r.record_id())
}

/// A minimal HTTP/1.1 GET over loopback (status, body), `None` when nothing answers.
pub fn http_get(port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    use std::io::Write;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{auth}connection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The stream-report record ids of JSON lines written by `replay --sink file:` (each once;
/// panics on a repeated id: the agent must not produce one twice).
pub fn produced_report_ids(jsonl: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(jsonl).expect("read sink file");
    let mut ids = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let rec: AgentRecord = serde_json::from_str(line).expect("an agent record");
        if let AgentRecord::Stream(r) = rec {
            ids.push(r.record_id());
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        ids.len(),
        "the agent produced a record id twice"
    );
    sorted
}

/// A 0600 file holding `text` (tokens, keys).
pub fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write secret");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// A running `voqa-agent` process (replay or run), its stderr kept in a file.
pub struct AgentProcess {
    pub child: Child,
    pub log: PathBuf,
}

impl AgentProcess {
    pub fn spawn(args: &[String], log: PathBuf) -> AgentProcess {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("agent log");
        let child = Command::new(agent_bin())
            .args(args)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn agent");
        AgentProcess { child, log }
    }

    /// Waits for the exit, at most `timeout` (then kills it and fails).
    pub fn wait(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "agent did not exit within {timeout:?}; its log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY-free: plain kill(2) through the shell's `kill` keeps `unsafe` out of tests.
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// 2026-11-23T08:00:00Z: inside `Collector::query_range`.
pub const CAPTURE_EPOCH_NS: i64 = 1_795_420_800_000_000_000;

/// A capture of `streams` G.711 streams (no SIP: found by the RTP heuristic), each sending
/// `pps` packets per second for `seconds` of packet time, starting at [`CAPTURE_EPOCH_NS`] and
/// staggered by 1 ms. Stream `k` lost nothing; the counts are exact by construction.
pub fn many_streams_capture(
    dir: &Path,
    name: &str,
    streams: u32,
    seconds: u32,
    pps: u32,
) -> PathBuf {
    use voqa_agent::capture::writer::PcapWriter;
    use voqa_agent::decode::build::{LinkSpec, RtpHeader, rtp_packet, udp_frame};
    let path = dir.join(name);
    let file = std::fs::File::create(&path).expect("create pcap");
    let link = LinkSpec::Ethernet;
    let mut w = PcapWriter::new(std::io::BufWriter::new(file), link.linktype()).expect("pcap");
    let step_ns = 1_000_000_000 / i64::from(pps);
    let payload = vec![0xd5u8; 160];
    for tick in 0..i64::from(seconds * pps) {
        for k in 0..streams {
            let src = SocketAddr::from(([192, 0, 2, 10], 20_000 + 2 * k as u16));
            let dst = SocketAddr::from(([198, 51, 100, 20], 30_000 + 2 * k as u16));
            let header = RtpHeader {
                payload_type: 0,
                marker: false,
                sequence: tick as u16,
                timestamp: (tick as u32).wrapping_mul(8000 / pps),
                ssrc: 0x5000_0000 + k,
                csrcs: vec![],
                extension: None,
                padding: 0,
            };
            // Spread over the tick in stream order, so the file stays in time order.
            let at =
                CAPTURE_EPOCH_NS + tick * step_ns + i64::from(k) * (step_ns / i64::from(streams));
            let frame = udp_frame(&link, src, dst, &rtp_packet(&header, &payload));
            w.write_frame(at, &frame).expect("write frame");
        }
    }
    use std::io::Write;
    w.into_inner().flush().expect("flush");
    path
}
