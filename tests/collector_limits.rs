//! The collector's connection bounds (issue 10, item 9) through a real collector on loopback,
//! with raw TCP clients: slowloris in the request line, in the headers and in the body is cut;
//! an idle keep-alive connection is closed; 300 idle connections do not stop `/healthz`; over
//! `max_connections` a new connection is closed at once and room comes back as idle ones are
//! reaped; a `Content-Length` over the limit gets 413 without the body being sent; ingests
//! beyond `max_concurrent_ingests` get 503 with Retry-After at once; and SIGTERM of the real
//! binary with held connections lets a request in progress finish and exits within the
//! shutdown deadline.
//!
//! Timeouts are configured short (1–3 s) and every wait has a generous bound (10–30 s): the
//! tests assert what the server does (closes, answers), never how fast. Drips are a client's
//! behaviour, not synchronisation; every wait for the server polls a condition.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use voqa_collector::config::CollectorConfig;
use voqa_collector::serve::{Server, ServerHandle};
use voqa_collector::store::Store;

/// Bound on any wait for the server to act on a 1–3 s timeout.
const GENEROUS: Duration = Duration::from_secs(10);

struct Running {
    handle: Option<ServerHandle>,
    addr: SocketAddr,
    agent_token: String,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        drop(self.handle.take());
    }
}

/// A collector on 127.0.0.1:0 with `extra` appended to its config, and an agent token.
async fn start(extra: &str) -> Running {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite:{}", dir.path().join("voqa.db").display());
    let config =
        CollectorConfig::parse(&format!("database = \"{db}\"\n{extra}\n")).expect("config");
    let store = Store::open(&db).await.expect("store");
    let agent_token = store
        .create_agent_token(&voqa_collector::auth::AgentBinding::parse("*").expect("binding"))
        .await
        .expect("token")
        .secret;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = Server::start(config, store, listener, async {
        let _ = stopped.await;
    })
    .await
    .expect("start");
    Running {
        addr: handle.local_addr(),
        handle: Some(handle),
        agent_token,
        _dir: dir,
        stop: Some(stop),
    }
}

/// Reads until the server closes the connection (EOF or reset), at most `bound`: what it sent,
/// or `None` if it was still open at the bound.
async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(bound, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

/// Reads until `text` has arrived, at most `bound`.
async fn read_until(stream: &mut TcpStream, text: &str, bound: Duration) -> String {
    let mut got = Vec::new();
    let found = tokio::time::timeout(bound, async {
        let mut buf = [0u8; 4096];
        loop {
            if String::from_utf8_lossy(&got).contains(text) {
                return true;
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let got = String::from_utf8_lossy(&got).into_owned();
    assert_eq!(found, Ok(true), "no {text:?} from the server; got {got:?}");
    got
}

/// `GET /healthz` on a fresh connection: the status line, or the failure.
async fn healthz(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let got = read_until_closed(&mut s, GENEROUS)
        .await
        .ok_or("no answer within the bound")?;
    got.lines()
        .next()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| "closed without an answer".to_owned())
}

/// Writes `bytes` one at a time, `every` apart, until done or the server closes.
fn drip(mut writer: tokio::net::tcp::OwnedWriteHalf, bytes: Vec<u8>, every: Duration) {
    tokio::spawn(async move {
        for b in bytes {
            if writer.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    });
}

fn ingest_head(token: &str, content_length: usize, extra: &str) -> String {
    format!(
        "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {content_length}\r\n{extra}\r\n"
    )
}

/// Sends `prefix`, then drips `filler` (minutes' worth at 5 bytes/s) and expects the server to
/// cut the connection within the bound, without having answered 200.
async fn expect_cut_while_dripping(addr: SocketAddr, prefix: &str, filler: u8) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    stream.write_all(prefix.as_bytes()).await.expect("write");
    let (mut reader, writer) = stream.into_split();
    drip(writer, vec![filler; 1000], Duration::from_millis(200));
    let mut got = Vec::new();
    let closed = tokio::time::timeout(GENEROUS, async {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let got = String::from_utf8_lossy(&got).into_owned();
    assert!(closed.is_ok(), "still open after {GENEROUS:?}: {got:?}");
    // Cut by the 1 s timeout, not by something sooner (the timer cannot fire early).
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(!got.contains("200 OK"), "{got:?}");
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_in_the_request_line_is_cut() {
    let server = start("header_read_timeout_s = 1\nkeep_alive_timeout_s = 60\n").await;
    let got = expect_cut_while_dripping(server.addr, "GET /healthz?", b'a').await;
    assert_eq!(got, "", "closed without an answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_in_the_headers_is_cut() {
    let server = start("header_read_timeout_s = 1\nkeep_alive_timeout_s = 60\n").await;
    // Each header line is complete and valid; the head just never ends.
    let got = expect_cut_while_dripping(
        server.addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ",
        b'a',
    )
    .await;
    assert_eq!(got, "", "closed without an answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_in_the_body_gets_408_and_is_cut() {
    let server = start("header_read_timeout_s = 5\nbody_timeout_s = 1\n").await;
    let head = ingest_head(&server.agent_token, 1000, "");
    let got = expect_cut_while_dripping(server.addr, &head, b' ').await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");
    assert!(got.contains("body_timeout"), "{got:?}");
    assert!(
        got.to_ascii_lowercase().contains("connection: close"),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connection_is_closed_and_a_busy_one_is_not_cut_by_it() {
    // Keep-alive shorter than the header timeout: the idle wait is its own bound.
    let server = start("header_read_timeout_s = 30\nkeep_alive_timeout_s = 1\n").await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    for _ in 0..2 {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        read_until(&mut s, "{\"status\":\"ok\"}", GENEROUS).await;
    }
    let started = Instant::now();
    let rest = read_until_closed(&mut s, GENEROUS).await;
    assert_eq!(rest.as_deref(), Some(""), "closed, with nothing more sent");
    assert!(started.elapsed() >= Duration::from_millis(900));

    // A request whose body takes longer than the keep-alive timeout is not idle: answered.
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(ingest_head(&server.agent_token, 12, "Expect: 100-continue\r\n").as_bytes())
        .await
        .expect("write");
    read_until(&mut s, "100 Continue", GENEROUS).await;
    let started = Instant::now();
    for b in b"{}          " {
        s.write_all(&[*b]).await.expect("drip");
        // The client's pace (2.4 s for the body), not a wait for the server.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(started.elapsed() > Duration::from_secs(1));
    let got = read_until(&mut s, "\r\n\r\n", GENEROUS).await;
    assert!(
        got.contains("HTTP/1.1 400"),
        "answered (not a batch): {got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_beside_300_idle_connections() {
    // The defaults (max_connections 512, header timeout 10 s): 300 silent clients hold 300
    // connections, and a fresh one is still served.
    let server = start("").await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    let started = Instant::now();
    assert_eq!(
        healthz(server.addr).await.as_deref(),
        Ok("HTTP/1.1 200 OK"),
        "with 300 idle connections"
    );
    eprintln!(
        "/healthz beside 300 idle connections: {:?}",
        started.elapsed()
    );
    // The idle ones are still open: nothing was cut to make room.
    let mut probe = [0u8; 1];
    let first = &mut idle[0];
    assert!(
        tokio::time::timeout(Duration::from_millis(100), first.read(&mut probe))
            .await
            .is_err(),
        "an idle connection was closed early"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_connections_new_ones_are_closed_until_idle_ones_are_reaped() {
    let server =
        start("max_connections = 20\nmax_concurrent_ingests = 2\nheader_read_timeout_s = 2\n")
            .await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    // The 21st is accepted after the 20 (the backlog is in order) and closed unanswered.
    let refused = healthz(server.addr).await;
    assert!(refused.is_err(), "21st connection: {refused:?}");
    // The silent ones are cut by the header timeout, which frees room.
    for s in &mut idle {
        assert_eq!(read_until_closed(s, GENEROUS).await.as_deref(), Some(""));
    }
    let deadline = Instant::now() + GENEROUS;
    loop {
        match healthz(server.addr).await {
            Ok(status) => {
                assert_eq!(status, "HTTP/1.1 200 OK");
                break;
            }
            // The server may not yet have seen every closed connection's end.
            Err(e) => assert!(Instant::now() < deadline, "never served again: {e}"),
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_over_the_limit_is_refused_before_the_body() {
    let server = start("max_body_bytes = 200000\n").await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(ingest_head(&server.agent_token, 10_000_000, "").as_bytes())
        .await
        .expect("write");
    // No byte of the body is sent: the answer must not wait for it.
    let got = read_until_closed(&mut s, GENEROUS)
        .await
        .expect("answered and closed without the body");
    assert!(got.starts_with("HTTP/1.1 413"), "{got:?}");
    assert!(got.contains("body_too_large"), "{got:?}");
    // Within the limit, the same request waits for its body (and is then refused as not a
    // batch): the 413 came from the declared length.
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(ingest_head(&server.agent_token, 2, "").as_bytes())
        .await
        .expect("write");
    s.write_all(b"{}").await.expect("body");
    let got = read_until(&mut s, "\r\n\r\n", GENEROUS).await;
    assert!(got.starts_with("HTTP/1.1 400"), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingests_beyond_the_limit_get_503_at_once() {
    let server = start("max_concurrent_ingests = 2\nbody_timeout_s = 60\n").await;
    // Two ingests that hold their slot: the 100 Continue proves the handler is reading the
    // body (the slot is taken before), then the body stalls.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(server.addr).await.expect("connect");
        s.write_all(ingest_head(&server.agent_token, 1000, "Expect: 100-continue\r\n").as_bytes())
            .await
            .expect("write");
        read_until(&mut s, "100 Continue", GENEROUS).await;
        s.write_all(b"{").await.expect("some body");
        held.push(s);
    }
    let mut third = TcpStream::connect(server.addr).await.expect("connect");
    third
        .write_all(ingest_head(&server.agent_token, 1000, "").as_bytes())
        .await
        .expect("write");
    let got = read_until_closed(&mut third, GENEROUS)
        .await
        .expect("refused without the body");
    assert!(got.starts_with("HTTP/1.1 503"), "{got:?}");
    assert!(
        got.to_ascii_lowercase().contains("retry-after: 1"),
        "{got:?}"
    );
    assert!(got.contains("too_many_ingests"), "{got:?}");
    // Other requests are not limited by it.
    assert_eq!(healthz(server.addr).await.as_deref(), Ok("HTTP/1.1 200 OK"));
    // When the held ones go away, their slots come back.
    drop(held);
    let deadline = Instant::now() + GENEROUS;
    loop {
        let mut s = TcpStream::connect(server.addr).await.expect("connect");
        s.write_all(ingest_head(&server.agent_token, 2, "").as_bytes())
            .await
            .expect("write");
        let _ = s.write_all(b"{}").await;
        let got = read_until(&mut s, "\r\n\r\n", GENEROUS).await;
        if got.starts_with("HTTP/1.1 400") {
            break;
        }
        assert!(got.starts_with("HTTP/1.1 503"), "{got:?}");
        assert!(Instant::now() < deadline, "slots never came back");
        tokio::task::yield_now().await;
    }
}

/// SIGTERM to the real binary while clients hold connections: an ingest in progress whose
/// body arrives after the signal still gets its answer; an ingest whose body never arrives and
/// silent connections do not keep the process alive past the shutdown deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_held_connections_exits_within_the_deadline() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite:{}", dir.path().join("voqa.db").display());
    let config = dir.path().join("collector.toml");
    // Long header and body timeouts: only the shutdown deadline can end the held ones.
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"{db}\"\nheader_read_timeout_s = 600\n\
             keep_alive_timeout_s = 600\nbody_timeout_s = 600\nshutdown_timeout_s = 2\n"
        ),
    )
    .expect("config");
    let bin = env!("CARGO_BIN_EXE_voqa-collector");
    let out = Command::new(bin)
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
        .output()
        .expect("token create");
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned();
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, log) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |text: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match log.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {text:?}: {e}"),
            }
        }
    };
    let line = wait_for("listening on http://");
    let addr: SocketAddr = line
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .expect("address");

    let batch = serde_json::json!({
        "schema": 1, "batch_id": "00000000-0000-4000-8000-000000000001",
        "agent_id": "term-agent", "sent_at": "2026-11-20T10:00:00Z",
        "reports": [], "heartbeats": []
    })
    .to_string();
    let mut in_progress = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(ingest_head(&token, batch.len(), "Expect: 100-continue\r\n").as_bytes())
            .await
            .expect("write");
        read_until(&mut s, "100 Continue", GENEROUS).await;
        in_progress.push(s);
    }
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // A served keep-alive connection, idle.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    read_until(&mut idle, "{\"status\":\"ok\"}", GENEROUS).await;

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    wait_for("shutting down: draining");
    // The first ingest finishes after the signal, within the deadline: it is answered.
    let mut finishing = in_progress.remove(0);
    finishing.write_all(batch.as_bytes()).await.expect("body");
    let got = read_until_closed(&mut finishing, GENEROUS)
        .await
        .expect("answered, then closed (draining)");
    assert!(got.contains("HTTP/1.1 200 OK"), "{got:?}");
    // The idle keep-alive connection was closed by the drain.
    assert_eq!(
        read_until_closed(&mut idle, GENEROUS).await.as_deref(),
        Some("")
    );
    // The second ingest never sends its body: the deadline drops it and the process exits.
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "still running 30 s after SIGTERM with a 2 s shutdown deadline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    wait_for("shutdown deadline (2 s) passed");
    wait_for("stopped");
    assert_eq!(
        read_until_closed(&mut in_progress[0], GENEROUS)
            .await
            .as_deref(),
        Some(""),
        "the stalled ingest was dropped unanswered"
    );
}

/// The same bounds hold behind TLS: a client that finishes its handshake and then drips its
/// headers is cut by the header timeout, while a prompt one is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_slowloris_is_cut_and_a_prompt_client_served() {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let pki = tempfile::tempdir().expect("tmp");
    let cert = pki.path().join("cert.pem");
    let key = pki.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key");
    let server = start(&format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\nheader_read_timeout_s = 1\n",
        cert.display(),
        key.display()
    ))
    .await;
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(certified.cert.pem().as_bytes()).expect("pem"))
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let connect = || async {
        let tcp = TcpStream::connect(server.addr).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        connector.connect(name, tcp).await.expect("handshake")
    };

    let mut prompt = connect().await;
    prompt
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    let _ = tokio::time::timeout(GENEROUS, prompt.read_to_string(&mut answer)).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");

    let mut slow = connect().await;
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    let cut = tokio::time::timeout(GENEROUS, async {
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_millis(200), slow.read(&mut buf)).await {
                // Nothing yet: drip one more byte of the header (the client's pace).
                Err(_) => {
                    if slow.write_all(b"a").await.is_err() {
                        return Vec::new();
                    }
                }
                Ok(Ok(0) | Err(_)) => return Vec::new(),
                Ok(Ok(n)) => return buf[..n].to_vec(),
            }
        }
    })
    .await;
    assert_eq!(cut.as_deref(), Ok(&[][..]), "closed without an answer");
    assert!(started.elapsed() >= Duration::from_millis(900));
}
