//! `voqa-collector serve` terminating TLS itself, through the real binary: a self-signed
//! certificate made here (rcgen, ring), a client that trusts only it ingests and reads over
//! HTTPS; SIGHUP with a new certificate makes new connections see it, and a failed reload keeps
//! the old one; a bad key file is a clear startup error; a client that never finishes its
//! handshake is disconnected after `tls_handshake_timeout_s`.
//!
//! Every wait polls a condition (a log line, an exit) with a deadline; nothing sleeps a guess.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_voqa-collector")
}

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM).
fn self_signed() -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("certificate");
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

/// A client that trusts exactly `cert_pem`, on its own connection pool.
fn client(cert_pem: &str) -> reqwest::Client {
    // reqwest is built without a provider of its own (no aws-lc): ring is the process's.
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let _ = provider.as_ref().clone().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("pem"))
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
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

/// A running `serve`, its address, and its log lines as they come.
struct Served {
    child: Child,
    base: String,
    log: mpsc::Receiver<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Waits (at most 20 s) for a log line containing `text`.
    fn wait_for_log(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {text:?}: {e}"),
            }
        }
    }

    fn sighup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

fn serve(args: &[&str]) -> Served {
    let mut child = Command::new(bin())
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, log) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut served = Served {
        child,
        base: String::new(),
        log,
    };
    let line = served.wait_for_log("listening on ");
    served.base = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("address")
        .to_owned();
    served
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

fn batch(n: u32) -> Value {
    json!({
        "schema": 1,
        "batch_id": format!("00000000-0000-4000-8000-{n:012x}"),
        "agent_id": "tls-agent",
        "sent_at": "2026-11-20T10:00:00Z",
        "reports": [],
        "heartbeats": [{
            "agent_id": "tls-agent", "agent_version": "0", "time": format!("2026-11-20T10:00:{n:02}Z"),
            "host_uptime_s": 1, "cpu_pct": 1.0, "agent_cpu_pct": 1.0, "mem_total_bytes": 2,
            "mem_used_bytes": 1, "agent_rss_bytes": 1, "load_avg": [0.0, 0.0, 0.0],
            "workers": [], "streams_tracked": 0, "streams_evicted": 0, "processes": []
        }]
    })
}

struct Setup {
    _dir: tempfile::TempDir,
    db: String,
    cert: PathBuf,
    key: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite:{}", dir.path().join("voqa.db").display());
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    Setup {
        db,
        cert,
        key,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_ingest_and_read_then_sighup_serves_the_new_certificate() {
    let s = setup();
    let (cert_a, key_a) = self_signed();
    write(&s.cert, &cert_a);
    write(&s.key, &key_a);
    let agent = token(&s.db, &["agent", "--agent", "tls-agent"]);
    let ops = token(&s.db, &["ops"]);
    let served = serve(&[
        "--database",
        &s.db,
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        s.cert.to_str().expect("path"),
        "--tls-key",
        s.key.to_str().expect("path"),
    ]);
    assert!(
        served.base.starts_with("https://127.0.0.1:"),
        "{}",
        served.base
    );

    let trusts_a = client(&cert_a);
    let resp = trusts_a
        .post(format!("{}/api/v1/ingest", served.base))
        .bearer_auth(&agent)
        .json(&batch(1))
        .send()
        .await
        .expect("ingest over https");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        (&body["status"], &body["heartbeats"]),
        (&json!("stored"), &json!(1))
    );
    let resp = trusts_a
        .get(format!("{}/api/v1/agents", served.base))
        .bearer_auth(&ops)
        .send()
        .await
        .expect("read over https");
    let agents: Value = resp.json().await.expect("json");
    assert_eq!(agents["items"][0]["agent_id"], "tls-agent", "{agents}");
    // Plain HTTP to the TLS port gets no API answer.
    let plain = http_client()
        .get(served.base.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(plain.map(|r| r.status().is_success()).ok() != Some(true));

    // A new certificate and SIGHUP: new connections are served with it.
    let (cert_b, key_b) = self_signed();
    write(&s.cert, &cert_b);
    write(&s.key, &key_b);
    served.sighup();
    served.wait_for_log("reloaded TLS certificate");
    let trusts_b = client(&cert_b);
    let resp = trusts_b
        .post(format!("{}/api/v1/ingest", served.base))
        .bearer_auth(&agent)
        .json(&batch(2))
        .send()
        .await
        .expect("ingest with the new certificate");
    assert_eq!(resp.status().as_u16(), 200);
    let refused = client(&cert_a)
        .get(format!("{}/healthz", served.base))
        .send()
        .await;
    assert!(refused.is_err(), "the old certificate is no longer served");

    // A reload that fails (a key that is not PEM) keeps the certificate in use.
    write(&s.key, "not a key\n");
    served.sighup();
    let line = served.wait_for_log("TLS reload failed");
    assert!(line.contains("key.pem"), "{line}");
    let resp = client(&cert_b)
        .get(format!("{}/healthz", served.base))
        .send()
        .await
        .expect("still served with the new certificate");
    assert_eq!(resp.status().as_u16(), 200);
}

#[test]
fn a_bad_key_file_is_a_clear_startup_error() {
    let s = setup();
    let (cert, _) = self_signed();
    write(&s.cert, &cert);
    write(
        &s.key,
        "-----BEGIN NOTHING-----\nAAAA\n-----END NOTHING-----\n",
    );
    for (key, why) in [
        (s.key.clone(), "no PRIVATE KEY block"),
        (s.key.with_file_name("missing.pem"), "missing.pem"),
    ] {
        let out = Command::new(bin())
            .args([
                "--database",
                &s.db,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                s.cert.to_str().expect("path"),
                "--tls-key",
                key.to_str().expect("path"),
            ])
            .output()
            .expect("serve");
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("TLS: private key") && stderr.contains(why),
            "{stderr}"
        );
    }
    // Only one of the pair is a configuration error too.
    let out = Command::new(bin())
        .args([
            "--database",
            &s.db,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            s.cert.to_str().expect("path"),
        ])
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls_cert and tls_key"));
}

#[test]
fn a_client_that_never_finishes_its_handshake_is_disconnected() {
    let s = setup();
    let (cert, key) = self_signed();
    write(&s.cert, &cert);
    write(&s.key, &key);
    let config = s.cert.with_file_name("collector.toml");
    write(
        &config,
        &format!(
            "database = \"{}\"\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\ntls_handshake_timeout_s = 1\n",
            s.db,
            s.cert.display(),
            s.key.display()
        ),
    );
    let served = serve(&["--config", config.to_str().expect("path"), "serve"]);
    let addr = served.base.trim_start_matches("https://").to_owned();
    let started = Instant::now();
    let mut idle = std::net::TcpStream::connect(&addr).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    // The server closes the connection (EOF or reset) once the handshake time is up.
    let read = idle.read(&mut buf);
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
}

/// An HTTP client. reqwest is built with rustls but without a crypto provider of its own (no
/// aws-lc in the tree): ring is installed as the process's provider first.
fn http_client() -> reqwest::Client {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
