//! Identity and authorization through the real `voqa-collector` binary on loopback: agent
//! tokens bound to agent ids (exact and glob) and refused for any other agent with nothing
//! stored; unbound agent tokens refused by default and accepted only with
//! `allow_unbound_agent_tokens`; the Bearer scheme in any letter case; `token list` columns
//! (binding, last use); customer tokens for unknown customers refused unless `--force`; and
//! the JSON access log (refusals with their reason, token ids, never a token).
//!
//! Requests are raw HTTP/1.1 over `TcpStream`, so every header byte is the test's. Every wait
//! polls a condition with a deadline; nothing sleeps a guess.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_voqa-collector")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Polls `ok` every 20 ms until it holds; fails after 20 s.
fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const CUSTOMERS: &str = r#"
[[customers]]
id = "acme"
name = "ACME"
agents = ["fra-media-1"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95

[[customers]]
id = "globex"
name = "Globex"
agents = ["nyc-media-1"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
"#;

/// A database and a config file in a temporary directory, and the binary run on both.
struct Setup {
    dir: tempfile::TempDir,
    db: String,
}

impl Setup {
    /// `server_keys` go before the customers (top-level keys of the config).
    fn new(server_keys: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tmp");
        let db = format!("sqlite:{}", dir.path().join("voqa.db").display());
        let setup = Setup { dir, db };
        setup.write_config(server_keys);
        setup
    }

    fn write_config(&self, server_keys: &str) {
        std::fs::write(self.config(), format!("{server_keys}\n{CUSTOMERS}")).expect("config");
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("collector.toml")
    }

    fn access_log(&self) -> PathBuf {
        self.dir.path().join("access.log")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("--database")
            .arg(&self.db)
            .arg("--config")
            .arg(self.config())
            .args(args)
            .output()
            .expect("run voqa-collector")
    }

    /// `token create ARGS`: (id, secret); fails the test if the command fails.
    fn token(&self, args: &[&str]) -> (String, String) {
        let out = self.run(&[&["token", "create"], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "token create {args:?}: {stderr}");
        // "token ID (ROLE) created; it is shown once:"
        let id = stderr
            .lines()
            .find_map(|l| l.strip_prefix("token "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no token id in {stderr}"))
            .to_owned();
        let secret = String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_owned();
        assert!(secret.starts_with("voqa_"), "{secret}");
        (id, secret)
    }

    /// `token list` rows (after the header), split into their six columns.
    fn token_list(&self) -> Vec<Vec<String>> {
        let out = self.run(&["token", "list"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("utf8");
        let mut lines = text.lines();
        let header = lines.next().expect("a header line");
        let names: Vec<&str> = header
            .split("  ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(
            names,
            ["ID", "ROLE", "AGENTS", "CREATED", "LAST USED", "REVOKED"],
            "{text}"
        );
        lines
            .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .inspect(|cols| assert_eq!(cols.len(), 6, "{cols:?}"))
            .collect()
    }

    fn serve(&self) -> Served {
        let port = free_port();
        let log = self.dir.path().join(format!("stderr-{port}.log"));
        let child = Command::new(bin())
            .arg("--database")
            .arg(&self.db)
            .arg("--config")
            .arg(self.config())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("stderr file"))
            .spawn()
            .expect("serve");
        let served = Served { child, port, log };
        wait_until("the collector to answer /healthz", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
                && served.request("GET", "/healthz", &[], b"").0 == 200
        });
        served
    }
}

struct Served {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// One HTTP/1.1 request with exactly these extra header lines: (status, body).
    fn request(&self, method: &str, path: &str, headers: &[&str], body: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("write head");
        stream.write_all(body).expect("write body");
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).expect("read reply");
        let reply = String::from_utf8_lossy(&reply).into_owned();
        let status = reply
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {reply:?}"));
        let body = reply
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let (status, body) = self.request(
            "GET",
            path,
            &[&format!("Authorization: Bearer {token}")],
            b"",
        );
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// Posts a one-heartbeat batch as `agent` (the heartbeat's own agent id is `record_agent`).
    fn ingest_as(&self, token: &str, agent: &str, record_agent: &str, n: u32) -> (u16, Value) {
        let (status, body) = self.request(
            "POST",
            "/api/v1/ingest",
            &[&format!("Authorization: Bearer {token}")],
            batch(agent, record_agent, n).as_bytes(),
        );
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn ingest(&self, token: &str, agent: &str, n: u32) -> (u16, Value) {
        self.ingest_as(token, agent, agent, n)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The agent ids the ops API knows, sorted.
    fn agents(&self, ops: &str) -> Vec<String> {
        let (status, body) = self.get("/api/v1/agents", ops);
        assert_eq!(status, 200, "{body}");
        let mut ids: Vec<String> = body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no items in {body}"))
            .iter()
            .map(|a| a["agent_id"].as_str().expect("agent_id").to_owned())
            .collect();
        ids.sort();
        ids
    }
}

fn batch(agent: &str, record_agent: &str, n: u32) -> String {
    format!(
        r#"{{"schema":1,"batch_id":"00000000-0000-4000-8000-{n:012x}","agent_id":"{agent}","sent_at":"2026-11-20T10:00:00Z","reports":[],"heartbeats":[{{"agent_id":"{record_agent}","agent_version":"0","time":"2026-11-20T10:00:{:02}Z","host_uptime_s":1,"cpu_pct":1.0,"agent_cpu_pct":1.0,"mem_total_bytes":2,"mem_used_bytes":1,"agent_rss_bytes":1,"load_avg":[0.0,0.0,0.0],"workers":[{{"worker":0,"kernel_packets":{n},"kernel_drops":0,"kernel_freezes":0,"frames":0}}],"streams_tracked":0,"streams_evicted":0,"processes":[]}}]}}"#,
        n % 60
    )
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

#[test]
fn a_bound_token_writes_only_as_its_agents() {
    let s = Setup::new("");
    let (id, agent) = s.token(&["--role", "agent", "--agent", "fra-media-*,nyc-media-1"]);
    let (_, ops) = s.token(&["--role", "ops"]);
    let served = s.serve();

    // Covered: an exact id and two matches of the glob.
    for (n, who) in [(1, "fra-media-1"), (2, "fra-media-22"), (3, "nyc-media-1")] {
        let (status, body) = served.ingest(&agent, who, n);
        assert_eq!(status, 200, "{who}: {body}");
    }
    // Not covered: refused with 403, saying which token and binding.
    for (n, who) in [(4, "nyc-media-2"), (5, "fra-media"), (6, "lon-media-1")] {
        let (status, body) = served.ingest(&agent, who, n);
        assert_eq!(status, 403, "{who}: {body}");
        assert_eq!(code(&body), "agent_not_bound", "{body}");
        assert!(
            message(&body).contains(&id)
                && message(&body).contains(who)
                && message(&body).contains("fra-media-*,nyc-media-1"),
            "{body}"
        );
    }
    // A covered batch id cannot smuggle another agent's records.
    let (status, body) = served.ingest_as(&agent, "fra-media-1", "nyc-media-2", 7);
    assert_eq!(status, 422, "{body}");

    // Nothing of the refused batches was stored.
    assert_eq!(
        served.agents(&ops),
        ["fra-media-1", "fra-media-22", "nyc-media-1"]
    );
    // Ops may still write as any agent (it may do everything).
    assert_eq!(served.ingest(&ops, "lon-media-1", 8).0, 200);
}

#[test]
fn unbound_agent_tokens_are_refused_unless_the_config_allows_them() {
    let s = Setup::new("");
    // The binary creates no unbound agent token any more…
    let out = s.run(&["token", "create", "--role", "agent"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--agent ID"), "{stderr}");
    assert!(out.stdout.is_empty(), "no token printed");
    // …but a store from before bindings holds some: one written as an older collector did.
    let legacy = "voqa_legacy-unbound-agent-token-from-before-bindings";
    let legacy_id = voqa_collector::auth::hash_token(legacy)[..12].to_owned();
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            let store = voqa_collector::store::Store::open(&s.db)
                .await
                .expect("store");
            store
                .token_insert(
                    &legacy_id,
                    &voqa_collector::auth::hash_token(legacy),
                    "agent",
                    1,
                )
                .await
                .expect("legacy token");
            store.close().await;
        });
    }
    let (_, ops) = s.token(&["--role", "ops"]);
    let listed = s.token_list();
    let row = listed
        .iter()
        .find(|r| r[0] == legacy_id)
        .expect("legacy listed");
    assert_eq!(row[2], "UNBOUND", "{row:?}");

    {
        let served = s.serve();
        let log = served.stderr();
        assert!(
            log.contains("1 agent token(s) not bound")
                && log.contains(&legacy_id)
                && log.contains("refused"),
            "{log}"
        );
        let (status, body) = served.ingest(legacy, "fra-media-1", 1);
        assert_eq!(status, 403, "{body}");
        assert_eq!(code(&body), "unbound_agent_token", "{body}");
        let m = message(&body);
        assert!(
            m.contains("token create --role agent --agent")
                && m.contains(&format!("token revoke {legacy_id}")),
            "{body}"
        );
        assert!(served.agents(&ops).is_empty(), "nothing stored");
    }

    s.write_config("allow_unbound_agent_tokens = true");
    let served = s.serve();
    let log = served.stderr();
    assert!(log.contains("ANY agent"), "{log}");
    let (status, body) = served.ingest(legacy, "fra-media-1", 1);
    assert_eq!(status, 200, "{body}");
    assert_eq!(served.agents(&ops), ["fra-media-1"]);
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let s = Setup::new("");
    let (_, ops) = s.token(&["--role", "ops"]);
    let (revoked_id, revoked) = s.token(&["--role", "ops"]);
    assert!(s.run(&["token", "revoke", &revoked_id]).status.success());
    let served = s.serve();
    let status = |headers: &[&str]| served.request("GET", "/api/v1/agents", headers, b"").0;
    for scheme in ["Bearer", "BEARER", "bearer", "BeArEr"] {
        assert_eq!(
            status(&[&format!("Authorization: {scheme} {ops}")]),
            200,
            "{scheme}"
        );
    }
    assert_eq!(
        status(&[&format!("Authorization:   bearer \t {ops}  ")]),
        200
    );
    for bad in [
        format!("Authorization: Basic {ops}"),
        format!("Authorization: Bearer{ops}"),
        format!("Authorization: Bearer {ops} extra"),
        "Authorization: Bearer".to_string(),
        "Authorization: Bearer voqa_unknown".to_string(),
        format!("Authorization: Bearer {revoked}"),
    ] {
        assert_eq!(status(&[&bad]), 401, "{bad}");
    }
    assert_eq!(status(&[]), 401, "no header");
    let twice = format!("Authorization: Bearer {ops}");
    assert_eq!(status(&[&twice, &twice]), 401, "two Authorization headers");
}

#[test]
fn token_list_shows_binding_creation_and_last_use() {
    let s = Setup::new("");
    let (ops_id, ops) = s.token(&["--role", "ops"]);
    let (agent_id, agent) = s.token(&["--role", "agent", "--agent", "fra-media-?,nyc-media-1"]);
    let (acme_id, _) = s.token(&["--role", "customer:acme"]);
    assert!(s.run(&["token", "revoke", &acme_id]).status.success());
    // --agent belongs to agent tokens only.
    let out = s.run(&["token", "create", "--role", "ops", "--agent", "x"]);
    assert_eq!(out.status.code(), Some(2));

    let before = s.token_list();
    assert_eq!(before.len(), 3);
    for row in &before {
        assert_eq!(row[4], "-", "never used yet: {row:?}");
        assert!(row[3].starts_with("20") && row[3].ends_with('Z'), "{row:?}");
    }
    let row = |rows: &[Vec<String>], id: &str| rows.iter().find(|r| r[0] == id).expect(id).clone();
    assert_eq!(row(&before, &ops_id)[1..3], ["ops", "-"]);
    assert_eq!(
        row(&before, &agent_id)[1..3],
        ["agent", "fra-media-?,nyc-media-1"]
    );
    assert_eq!(row(&before, &acme_id)[1], "customer:acme");
    assert_eq!(row(&before, &acme_id)[5], "yes");
    assert_eq!(row(&before, &ops_id)[5], "no");

    let served = s.serve();
    assert_eq!(served.ingest(&agent, "fra-media-1", 1).0, 200);
    let first = row(&s.token_list(), &agent_id)[4].clone();
    assert!(
        first.starts_with("20") && first.ends_with('Z'),
        "last use recorded: {first}"
    );
    assert!(first >= row(&before, &agent_id)[3], "{first}");
    assert_eq!(row(&s.token_list(), &ops_id)[4], "-", "ops not used yet");
    // A second use within the minute writes nothing (at most one write a minute per token).
    assert_eq!(served.ingest(&agent, "fra-media-2", 2).0, 200);
    let second = row(&s.token_list(), &agent_id)[4].clone();
    let ns = |t: &str| voqa_wire::Timestamp::parse(t).expect("time").as_ns();
    assert!(
        second == first || ns(&second) - ns(&first) >= 60_000_000_000,
        "{first} then {second}"
    );
    assert_eq!(served.get("/api/v1/agents", &ops).0, 200);
    assert_ne!(row(&s.token_list(), &ops_id)[4], "-");
}

#[test]
fn customer_tokens_need_a_configured_customer_or_force() {
    let s = Setup::new("");
    s.token(&["--role", "customer:acme"]);
    let out = s.run(&["token", "create", "--role", "customer:acmee"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no token printed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'acmee'") && stderr.contains("acme, globex") && stderr.contains("--force"),
        "{stderr}"
    );
    let out = s.run(&["token", "create", "--role", "customer:acmee", "--force"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("'acmee'"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .starts_with("voqa_")
    );
    let roles: Vec<String> = s.token_list().into_iter().map(|r| r[1].clone()).collect();
    assert_eq!(roles, ["customer:acme", "customer:acmee"]);

    // Without a configuration no customer is known.
    let out = Command::new(bin())
        .args([
            "--database",
            &s.db,
            "token",
            "create",
            "--role",
            "customer:acme",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("configured: none"));
}

/// The access log's lines, but for the readiness probes' `/healthz`, once at least `count`
/// are written.
fn access_lines(path: &Path, count: usize) -> Vec<Value> {
    let mut lines = Vec::new();
    wait_until(&format!("{count} access log lines"), || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        lines = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .filter(|line| line["path"] != "/healthz")
            .collect();
        lines.len() >= count
    });
    lines
}

#[test]
fn the_access_log_shows_who_tried_what_and_never_a_token() {
    let s = Setup::new("");
    s.write_config(&format!(
        "access_log_path = \"{}\"",
        s.access_log().display()
    ));
    let (agent_id, agent) = s.token(&["--role", "agent", "--agent", "fra-media-1"]);
    let (ops_id, ops) = s.token(&["--role", "ops"]);
    let served = s.serve();
    let guess = "voqa_guessedTokenThatDoesNotExist";

    assert_eq!(served.request("GET", "/api/v1/agents", &[], b"").0, 401);
    assert_eq!(served.get("/api/v1/agents", guess).0, 401);
    assert_eq!(served.ingest(&agent, "fra-media-1", 1).0, 200);
    assert_eq!(served.ingest(&agent, "nyc-media-1", 2).0, 403);
    assert_eq!(
        served
            .get(&format!("/api/v1/streams?limit=1&token={ops}"), &ops)
            .0,
        200
    );
    let lines = access_lines(&s.access_log(), 5);
    assert_eq!(lines.len(), 5, "{lines:?}");
    let text = std::fs::read_to_string(s.access_log()).expect("log");
    for secret in [agent.as_str(), ops.as_str(), guess] {
        assert!(!text.contains(secret), "a token in the access log: {text}");
    }

    // It holds client addresses and token ids: readable by the collector's user only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.access_log())
            .expect("log")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    let [missing, unknown, stored, refused, streams] = &lines[..] else {
        unreachable!()
    };
    for line in &lines {
        assert!(
            line["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
        assert!(
            line["latency_ms"].as_f64().is_some_and(|l| l >= 0.0),
            "{line}"
        );
        assert!(
            line["peer"]
                .as_str()
                .is_some_and(|p| p.starts_with("127.0.0.1:")),
            "{line}"
        );
    }
    assert_eq!(missing["status"], 401);
    assert_eq!(missing["method"], "GET");
    assert_eq!(missing["path"], "/api/v1/agents");
    assert_eq!(missing["token_id"], Value::Null);
    assert_eq!(missing["auth_error"], "missing bearer token");
    assert_eq!(unknown["status"], 401);
    assert_eq!(unknown["token_id"], Value::Null);
    assert_eq!(unknown["auth_error"], "unknown token");
    assert_eq!(stored["status"], 200);
    assert_eq!(stored["method"], "POST");
    assert_eq!(stored["path"], "/api/v1/ingest");
    assert_eq!(stored["token_id"], agent_id.as_str());
    assert_eq!(stored["auth_error"], Value::Null);
    assert_eq!(refused["status"], 403);
    assert_eq!(refused["token_id"], agent_id.as_str());
    assert!(
        refused["auth_error"]
            .as_str()
            .is_some_and(|e| e.contains("nyc-media-1") && e.contains("bound to fra-media-1")),
        "{refused}"
    );
    assert_eq!(streams["token_id"], ops_id.as_str());
    assert_eq!(streams["path"], "/api/v1/streams");
    assert_eq!(streams["query_keys"], serde_json::json!(["limit", "token"]));
}
