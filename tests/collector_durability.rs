//! Kill -9 during a stream of ingests: every batch that got a 2xx is there after a restart.
//! Runs the real `voqa-collector` binary on a SQLite file.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_voqa-collector")
}

/// `token create --role ROLE_ARGS...` (an agent token needs `--agent ID` after its role).
fn token(db: &str, role_args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(["--database", db, "token", "create", "--role"])
        .args(role_args)
        .output()
        .expect("token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn serve(db: &str, port: u16) -> Child {
    let child = Command::new(bin())
        .args([
            "--database",
            db,
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "collector did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn batch_json(n: u32) -> String {
    format!(
        r#"{{"schema":1,"batch_id":"00000000-0000-4000-8000-{n:012x}","agent_id":"a","sent_at":"2026-11-20T10:00:00Z","reports":[],"heartbeats":[{{"agent_id":"a","agent_version":"0","time":"2026-11-20T10:00:{:02}.{:06}Z","host_uptime_s":1,"cpu_pct":1.0,"agent_cpu_pct":1.0,"mem_total_bytes":2,"mem_used_bytes":1,"agent_rss_bytes":1,"load_avg":[0.0,0.0,0.0],"workers":[{{"worker":0,"kernel_packets":{n},"kernel_drops":0,"kernel_freezes":0,"frames":0}}],"streams_tracked":0,"streams_evicted":0,"processes":[]}}]}}"#,
        (n / 1_000_000) % 60,
        n % 1_000_000
    )
}

#[test]
fn kill_9_loses_no_acknowledged_batch() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite:{}", dir.path().join("voqa.db").display());
    let agent = token(&db, &["agent", "--agent", "a"]);
    let port = free_port();
    let mut child = serve(&db, port);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for t in 0..4u32 {
        let (acked, stop, agent) = (acked.clone(), stop.clone(), agent.clone());
        senders.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt");
            rt.block_on(async {
                let client = http_client();
                let mut n = t;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let resp = client
                        .post(format!("http://127.0.0.1:{port}/api/v1/ingest"))
                        .bearer_auth(&agent)
                        .body(batch_json(n))
                        .timeout(Duration::from_secs(2))
                        .send()
                        .await;
                    if let Ok(r) = resp
                        && r.status().is_success()
                    {
                        acked.lock().expect("lock").push(n);
                    }
                    n += 4;
                }
            });
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
    let _ = child.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in senders {
        s.join().expect("sender");
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() > 20,
        "only {} batches acknowledged before the kill",
        acked.len()
    );

    // Restart on the same file: every acknowledged batch must be a duplicate now (already stored).
    let port = free_port();
    let mut child = serve(&db, port);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let missing: Vec<u32> = rt.block_on(async {
        let client = http_client();
        let mut missing = Vec::new();
        for &n in &acked {
            let body: serde_json::Value = client
                .post(format!("http://127.0.0.1:{port}/api/v1/ingest"))
                .bearer_auth(&agent)
                .body(batch_json(n))
                .send()
                .await
                .expect("post")
                .json()
                .await
                .expect("json");
            if body["status"] != "duplicate" {
                missing.push(n);
            }
        }
        missing
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged batches were lost: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
}

/// An HTTP client. reqwest is built with rustls but without a crypto provider of its own (no
/// aws-lc in the tree): ring is installed as the process's provider first.
fn http_client() -> reqwest::Client {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
