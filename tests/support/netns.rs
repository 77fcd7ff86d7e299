//! Network-namespace test hosts for the live tests: two namespaces joined by a veth pair, and
//! ways to run programs (and our own Rust code) inside either of them.
//!
//! Host `a` is `10.77.0.1/30` on `va`, host `b` is `10.77.0.2/30` on `vb`; both have `lo` up.
//! Dropping a [`TestNet`] deletes both namespaces, also while a panic unwinds.
//!
//! Rust code runs inside a namespace by re-executing this test binary under `ip netns exec`
//! with only the (ignored) entry test [`CHILD_ENTRY`] selected and a role in the environment
//! ([`spawn_child`]). We do not `setns(2)` a thread in-process: `libc` is not a dependency the
//! test crate can use, and the workspace denies `unsafe` outside `agent/src/capture`.
//! This module must not leave namespaces or processes behind, and it must not touch any
//! namespace it did not create (stale ones are only reaped when their creator pid is gone).
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Address of host `a` (on `va`).
pub const ADDR_A: &str = "10.77.0.1";
/// Address of host `b` (on `vb`).
pub const ADDR_B: &str = "10.77.0.2";
/// Name of the `#[ignore]`d test in `live.rs` that dispatches child roles.
pub const CHILD_ENTRY: &str = "ns_child";
/// Environment variables carrying a child's role and its JSON arguments.
pub const ROLE_ENV: &str = "VOQA_LIVE_ROLE";
pub const ARGS_ENV: &str = "VOQA_LIVE_ARGS";

/// Checks what the live tests need: root, and `ip`, `gst-launch-1.0` and `tcpdump` on PATH.
/// Returns false when something is missing (the test is then reported as ignored), unless
/// `$VOQA_REQUIRE_LIVE` is set (as in CI): then it panics with the reason.
pub fn live_prerequisites(test: &str) -> bool {
    match missing_prerequisite() {
        None => true,
        Some(reason) => skip_or_fail(test, &reason),
    }
}

/// Marks the test as not run (ignored) and returns false, or panics under `$VOQA_REQUIRE_LIVE`.
pub fn skip_or_fail(test: &str, reason: &str) -> bool {
    crate::support::harness::skip("VOQA_REQUIRE_LIVE", &format!("{reason} ({test})"));
    false
}

/// Like [`live_prerequisites`] for a test that needs only root and `tools` (besides `ip`).
pub fn live_prerequisites_with(test: &str, tools: &[&str]) -> bool {
    match missing_from(tools) {
        None => true,
        Some(reason) => skip_or_fail(test, &reason),
    }
}

fn missing_prerequisite() -> Option<String> {
    missing_from(&["gst-launch-1.0", "tcpdump"])
}

fn missing_from(tools: &[&str]) -> Option<String> {
    if !is_root() {
        return Some("not running as root".into());
    }
    for &tool in std::iter::once(&"ip").chain(tools) {
        if which(tool).is_none() {
            return Some(format!("{tool} not found on PATH"));
        }
    }
    None
}

fn is_root() -> bool {
    // Effective uid is the second field of the Uid: line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Two namespaces `voqa-<tag>-<pid>-a` / `-b` joined by `va` <-> `vb`.
pub struct TestNet {
    pub a: String,
    pub b: String,
}

impl TestNet {
    /// Creates the pair. `Err` carries why (e.g. no CAP_SYS_ADMIN in a container), so callers
    /// can skip; whatever was created before the failure is deleted.
    pub fn new(tag: &str) -> Result<TestNet, String> {
        reap_stale_namespaces();
        let pid = std::process::id();
        let net = TestNet {
            a: format!("voqa-{tag}-{pid}-a"),
            b: format!("voqa-{tag}-{pid}-b"),
        };
        // Leftovers of an earlier run of this very process id (pid reuse) would make `add` fail.
        net.delete();
        let (a, b) = (net.a.as_str(), net.b.as_str());
        let addr_a = format!("{ADDR_A}/30");
        let addr_b = format!("{ADDR_B}/30");
        let steps: [&[&str]; 9] = [
            &["netns", "add", a],
            &["netns", "add", b],
            // Created directly inside the namespaces, so parallel tests never clash on names.
            &[
                "link", "add", "va", "netns", a, "type", "veth", "peer", "name", "vb", "netns", b,
            ],
            &["-n", a, "addr", "add", &addr_a, "dev", "va"],
            &["-n", b, "addr", "add", &addr_b, "dev", "vb"],
            &["-n", a, "link", "set", "va", "up"],
            &["-n", b, "link", "set", "vb", "up"],
            &["-n", a, "link", "set", "lo", "up"],
            &["-n", b, "link", "set", "lo", "up"],
        ];
        for step in steps {
            ip(step)?; // on error `net` drops here and deletes what exists
        }
        net.wait_link_up()?;
        Ok(net)
    }

    /// veth carrier comes up asynchronously; traffic sent before that is lost.
    fn wait_link_up(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let ok = [(&self.a, "va"), (&self.b, "vb")].iter().all(|(ns, dev)| {
                Command::new("ip")
                    .args(["-n", ns, "-o", "link", "show", dev])
                    .output()
                    .map(|o| {
                        let s = String::from_utf8_lossy(&o.stdout);
                        s.contains("state UP") || s.contains(",LOWER_UP")
                    })
                    .unwrap_or(false)
            });
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("veth pair did not come up within 5 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn delete(&self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        self.delete();
    }
}

/// Deletes `voqa-<tag>-<pid>-{a,b}` namespaces whose creating process no longer exists (a test
/// run killed with SIGKILL cannot run its Drop).
fn reap_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix("voqa-") else {
            continue;
        };
        let parts: Vec<&str> = rest.rsplitn(3, '-').collect();
        // rsplitn: ["a"|"b", pid, tag]
        if parts.len() != 3 || !(parts[0] == "a" || parts[0] == "b") {
            continue;
        }
        let Ok(pid) = parts[1].parse::<u32>() else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip")
                .args(["netns", "del", name])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A child process killed (SIGKILL) and reaped when dropped, unless it already exited.
pub struct ChildGuard {
    pub child: Child,
    pub what: String,
}

impl ChildGuard {
    pub fn new(what: &str, child: Child) -> ChildGuard {
        ChildGuard {
            child,
            what: what.to_string(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`INT`, `TERM`) through kill(1): no libc in the test crate.
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status();
    }

    /// Waits at most `limit` for the process to exit; kills it and panics if it does not.
    pub fn wait_bounded(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("{} did not exit within {:?}", self.what, limit);
                }
                Err(e) => panic!("wait for {}: {e}", self.what),
            }
        }
    }

    /// Signals, then waits (bounded) for the exit.
    pub fn stop(&mut self, sig: &str, limit: Duration) -> std::process::ExitStatus {
        self.signal(sig);
        self.wait_bounded(limit)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd args` inside namespace `ns` (`ip netns exec`, which execs, so the child's pid is
/// the command's own pid and signals reach it directly). Stdout and stderr go to `log`.
pub fn run_in(ns: &str, cmd: &str, args: &[&str], log: &Path) -> ChildGuard {
    let out = std::fs::File::create(log).expect("create child log");
    let err = out.try_clone().expect("clone log handle");
    let child = Command::new("ip")
        .args(["netns", "exec", ns, cmd])
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd} in {ns}: {e}"));
    ChildGuard::new(cmd, child)
}

/// Re-executes this test binary inside `ns`, running only [`CHILD_ENTRY`] with `role` and
/// `args` (JSON) in the environment: our stand-in for running a closure after `setns`.
/// The child's output goes to `log`.
pub fn spawn_child(ns: &str, role: &str, args: &serde_json::Value, log: &Path) -> ChildGuard {
    let exe = std::env::current_exe().expect("current test binary");
    let out = std::fs::File::create(log).expect("create child log");
    let err = out.try_clone().expect("clone log handle");
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(exe)
        .args([
            CHILD_ENTRY,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE_ENV, role)
        .env(ARGS_ENV, args.to_string())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn child {role} in {ns}: {e}"));
    ChildGuard::new(&format!("child {role} in {ns}"), child)
}

/// The role and arguments of this process when it was started by [`spawn_child`].
pub fn child_role() -> Option<(String, serde_json::Value)> {
    let role = std::env::var(ROLE_ENV).ok()?;
    let args = std::env::var(ARGS_ENV).unwrap_or_else(|_| "null".into());
    let args = serde_json::from_str(&args).expect("child args are JSON");
    Some((role, args))
}

/// Waits until `path` exists (a child's ready marker), at most `limit`; panics with the log.
pub fn wait_for_file(path: &Path, limit: Duration, child: &mut ChildGuard, log: &Path) {
    let deadline = Instant::now() + limit;
    while !path.exists() {
        if let Ok(Some(status)) = child.child.try_wait() {
            panic!(
                "{} exited ({status}) before it was ready:\n{}",
                child.what,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            panic!(
                "{} not ready within {limit:?}:\n{}",
                child.what,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Child role `udp-send`: from a socket bound to `bind`, sends each of `payloads` (strings) to
/// `dest`, `gap_ms` apart.
pub fn child_udp_send(args: &serde_json::Value) {
    let bind: SocketAddr = args["bind"]
        .as_str()
        .expect("bind")
        .parse()
        .expect("bind addr");
    let dest: SocketAddr = args["dest"]
        .as_str()
        .expect("dest")
        .parse()
        .expect("dest addr");
    let gap = Duration::from_millis(args["gap_ms"].as_u64().unwrap_or(0));
    let socket = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
    for payload in args["payloads"].as_array().expect("payloads") {
        let bytes = payload.as_str().expect("payload text").as_bytes();
        socket.send_to(bytes, dest).expect("send datagram");
        std::thread::sleep(gap);
    }
}

/// Sends `payloads` from `bind` to `dest` inside namespace `ns` and waits (at most 10 s).
pub fn send_datagrams(
    ns: &str,
    bind: &str,
    dest: &str,
    payloads: &[String],
    gap_ms: u64,
    dir: &Path,
) {
    let log = dir.join(format!("udp-send-{}.log", unique()));
    let args = serde_json::json!({
        "bind": bind, "dest": dest, "payloads": payloads, "gap_ms": gap_ms,
    });
    let mut child = spawn_child(ns, "udp-send", &args, &log);
    let status = child.wait_bounded(Duration::from_secs(10));
    assert!(
        status.success(),
        "udp-send in {ns} failed:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `tcpdump` on `iface` inside `ns` writing UDP frames to `pcap` unbuffered, in immediate mode:
/// without it libpcap's TPACKET_V3 ring holds the last partly filled block until its 1 s
/// timeout and SIGINT discards it, losing the last packets (seen: 48 of 50 captured).
pub struct Tcpdump {
    guard: ChildGuard,
    log: PathBuf,
}

impl Tcpdump {
    pub fn start(ns: &str, iface: &str, pcap: &Path, log: &Path) -> Tcpdump {
        let pcap_s = pcap.display().to_string();
        let mut guard = run_in(
            ns,
            "tcpdump",
            &[
                "-i",
                iface,
                "-n",
                "-U",
                "--immediate-mode",
                // Nanosecond timestamps, as the agent's ring has: the comparison of the two
                // captures is then not blurred by tcpdump's default microsecond rounding.
                "--time-stamp-precision=nano",
                "-w",
                &pcap_s,
                "udp",
            ],
            log,
        );
        // "listening on" is printed once the socket is bound and the filter installed.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("listening on") {
                break;
            }
            if let Ok(Some(status)) = guard.child.try_wait() {
                panic!("tcpdump exited ({status}): {text}");
            }
            assert!(Instant::now() < deadline, "tcpdump not listening: {text}");
            std::thread::sleep(Duration::from_millis(10));
        }
        Tcpdump {
            guard,
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// SIGINT, wait, and return the count tcpdump reports as dropped by the kernel.
    pub fn stop(mut self) -> u64 {
        let status = self.guard.stop("INT", Duration::from_secs(10));
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(status.success(), "tcpdump failed ({status}): {text}");
        text.lines()
            .find(|l| l.contains("dropped by kernel"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no drop count in tcpdump output: {text}"))
    }
}
