//! Self-test of the fault-injection proxy (`tests/support/faultproxy.rs`) against a tiny std
//! HTTP-ish upstream written here: each fault does to the bytes exactly what it promises (Pass
//! byte-exact both ways, CutAfter delivers exactly n bytes then EOF, ResetAfter gives the client
//! a reset, CutResponseAfter lets the whole request through, Stall holds then closes), the
//! schedule and cycle, the bounds (cap, idle timeout, unreachable upstream), and a prompt
//! `stop()` with connections open. In its own binary so that other tests do not run it.
//! Bounded waits only (every client read has a timeout; no fixed sleeps).

#[path = "support/faultproxy.rs"]
mod faultproxy;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use faultproxy::{Fault, FaultKind, FaultProxy, ProxyConfig};

/// Longest any single step may take before the test fails instead of hanging.
const STEP: Duration = Duration::from_secs(5);

/// Deterministic bytes (xorshift64), so a byte-exact comparison means something.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn request(body_len: usize, seed: u64) -> Vec<u8> {
    let mut r = format!("POST /ingest HTTP/1.1\r\nContent-Length: {body_len}\r\n\r\n").into_bytes();
    r.extend(pattern(body_len, seed));
    r
}

fn response(body_len: usize) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {body_len}\r\n\r\n").into_bytes();
    r.extend(pattern(body_len, 0xC0FFEE));
    r
}

/// What the upstream saw on one connection.
#[derive(Debug, PartialEq)]
enum Event {
    /// A whole request (headers and body), answered with [`response`].
    Request(Vec<u8>),
    /// The connection ended; `partial` holds the bytes of an unfinished request.
    Closed { partial: Vec<u8>, reset: bool },
}

/// A tiny keep-alive HTTP-ish server: reads `Content-Length`-framed requests, reports each
/// one, answers each with `response_len` body bytes.
struct Upstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    events: Mutex<Receiver<Event>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    fn start(response_len: usize) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let thread = {
            let (accepted, stop) = (Arc::clone(&accepted), Arc::clone(&stop));
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let tx = tx.clone();
                    thread::spawn(move || serve(conn, &tx, response_len));
                }
            })
        };
        Upstream {
            addr,
            accepted,
            events: Mutex::new(rx),
            stop,
            thread: Some(thread),
        }
    }

    fn next_event(&self) -> Event {
        self.events
            .lock()
            .expect("events")
            .recv_timeout(STEP)
            .expect("an upstream event in time")
    }

    /// The next request or cut request, skipping the clean closes of finished keep-alive
    /// connections (which arrive whenever a client drops one).
    fn next_request_or_cut(&self) -> Event {
        loop {
            match self.next_event() {
                Event::Closed { partial, .. } if partial.is_empty() => {}
                event => return event,
            }
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept to see the flag.
        let _ = TcpStream::connect_timeout(&self.addr, STEP);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, tx: &Sender<Event>, response_len: usize) {
    conn.set_read_timeout(Some(STEP)).expect("timeout");
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // A whole request in the buffer?
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let body_len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + body_len {
                let rest = buf.split_off(end + 4 + body_len);
                let _ = tx.send(Event::Request(std::mem::replace(&mut buf, rest)));
                let _ = conn.write_all(&response(response_len));
                continue;
            }
        }
        match conn.read(&mut chunk) {
            Ok(0) => {
                let _ = tx.send(Event::Closed {
                    partial: buf,
                    reset: false,
                });
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => {
                let _ = tx.send(Event::Closed {
                    partial: buf,
                    reset: e.kind() == io::ErrorKind::ConnectionReset,
                });
                return;
            }
        }
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, STEP).expect("connect to the proxy");
    s.set_read_timeout(Some(STEP)).expect("timeout");
    s
}

/// Reads exactly one [`response`] of `body_len` (or fails).
fn read_response(s: &mut TcpStream, body_len: usize) -> Vec<u8> {
    let mut got = vec![0u8; response(body_len).len()];
    s.read_exact(&mut got).expect("whole response");
    got
}

fn wait_closed(proxy: &FaultProxy) {
    assert!(
        proxy.wait_until(STEP, |s| s.open == 0),
        "every connection closed: {:?}",
        proxy.stats()
    );
}

#[test]
fn pass_forwards_both_ways_byte_exactly_with_keep_alive_and_half_close() {
    let up = Upstream::start(200_000);
    let proxy = FaultProxy::start(up.addr).expect("proxy");
    let mut c = connect(proxy.addr());
    let mut sent = 0;
    for seed in [1, 2] {
        let req = request(100_000, seed);
        c.write_all(&req).expect("send");
        sent += req.len();
        assert_eq!(read_response(&mut c, 200_000), response(200_000));
        assert_eq!(up.next_event(), Event::Request(req));
    }
    // The client's FIN reaches the upstream, whose FIN comes back.
    c.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(
        up.next_event(),
        Event::Closed {
            partial: vec![],
            reset: false
        }
    );
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).expect("EOF from the upstream");
    assert!(rest.is_empty());
    wait_closed(&proxy);
    let s = proxy.stats();
    assert_eq!((s.accepted, s.pass), (1, 1));
    assert_eq!(s.bytes_up, sent as u64);
    assert_eq!(s.bytes_down, 2 * response(200_000).len() as u64);
    proxy.stop();
}

#[test]
fn cut_after_delivers_exactly_n_bytes_then_eof() {
    let up = Upstream::start(100);
    let proxy = FaultProxy::start(up.addr).expect("proxy");
    proxy.set_schedule(vec![Fault::CutAfter(1_000)]);
    let req = request(50_000, 3);
    let mut c = connect(proxy.addr());
    c.write_all(&req).expect("send");
    assert_eq!(
        up.next_event(),
        Event::Closed {
            partial: req[..1_000].to_vec(),
            reset: false
        }
    );
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("a clean EOF, not a reset");
    assert!(got.is_empty(), "no response crosses a cut");
    // The proxy waits (bounded) for the client's FIN so that its close stays graceful.
    drop(c);
    wait_closed(&proxy);
    let s = proxy.stats();
    assert_eq!((s.cut_after, s.bytes_up, s.bytes_down), (1, 1_000, 0));
    proxy.stop();
}

#[test]
fn reset_after_gives_the_client_a_reset() {
    let up = Upstream::start(100);
    let proxy = FaultProxy::start(up.addr).expect("proxy");
    proxy.set_schedule(vec![Fault::ResetAfter(1_000)]);
    let req = request(50_000, 4);
    let mut c = connect(proxy.addr());
    // The request may or may not all be buffered before the reset; the first error the
    // client meets (writing or reading) is the reset.
    let error = match c.write_all(&req) {
        Err(e) => e,
        Ok(()) => c
            .read(&mut [0u8; 16])
            .expect_err("a reset, not a response or an EOF"),
    };
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset, "{error}");
    match up.next_event() {
        Event::Closed { partial, .. } => assert_eq!(partial, req[..1_000].to_vec()),
        other => panic!("the upstream must see a cut request: {other:?}"),
    }
    wait_closed(&proxy);
    let s = proxy.stats();
    assert_eq!((s.reset_after, s.resets_sent, s.bytes_up), (1, 1, 1_000));
    proxy.stop();
}

#[test]
fn cut_response_after_lets_the_upstream_receive_the_whole_request() {
    let up = Upstream::start(1_000);
    let proxy = FaultProxy::start(up.addr).expect("proxy");
    proxy.set_schedule(vec![Fault::CutResponseAfter(10)]);
    let req = request(20_000, 5);
    let mut c = connect(proxy.addr());
    c.write_all(&req).expect("send");
    assert_eq!(up.next_event(), Event::Request(req.clone()));
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("EOF after the cut");
    assert_eq!(got, response(1_000)[..10].to_vec());
    drop(c);
    wait_closed(&proxy);
    let s = proxy.stats();
    assert_eq!(
        (s.cut_response_after, s.bytes_up, s.bytes_down),
        (1, req.len() as u64, 10)
    );
    proxy.stop();
}

#[test]
fn stall_holds_then_closes_without_contacting_the_upstream() {
    let up = Upstream::start(100);
    let proxy = FaultProxy::start(up.addr).expect("proxy");
    let hold = Duration::from_millis(150);
    proxy.set_schedule(vec![Fault::Stall(hold)]);
    let start = Instant::now();
    let mut c = connect(proxy.addr());
    c.write_all(&request(1_000, 6)).expect("send");
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("closed with a FIN");
    assert!(got.is_empty());
    assert!(start.elapsed() >= hold, "held {:?}", start.elapsed());
    drop(c);
    wait_closed(&proxy);
    assert_eq!(up.accepted(), 0);
    let s = proxy.stats();
    assert_eq!((s.stall, s.bytes_up, s.bytes_down), (1, 0, 0));
    proxy.stop();
}

#[test]
fn schedule_then_pass_forever_and_cycles() {
    let up = Upstream::start(100);
    let proxy = FaultProxy::start(up.addr).expect("proxy");
    proxy.set_schedule(vec![
        Fault::Refuse,
        Fault::CutAfter(5),
        Fault::ResetAfter(3),
    ]);
    assert_eq!(proxy.pending_faults(), 3);
    let req = request(2_000, 7);

    // 1: refused before the upstream is contacted (closed or reset, never answered).
    let mut c = connect(proxy.addr());
    let _ = c.write_all(&req);
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    assert!(got.is_empty());
    // 2 and 3: cut at 5 and reset at 3 bytes.
    for n in [5, 3] {
        let mut c = connect(proxy.addr());
        let _ = c.write_all(&req);
        match up.next_request_or_cut() {
            Event::Closed { partial, .. } => assert_eq!(partial, req[..n].to_vec()),
            other => panic!("cut request expected: {other:?}"),
        }
        let _ = c.read_to_end(&mut Vec::new());
    }
    // 4 and 5: the schedule is used up, everything passes.
    for _ in 0..2 {
        let mut c = connect(proxy.addr());
        c.write_all(&req).expect("send");
        assert_eq!(read_response(&mut c, 100), response(100));
        assert_eq!(up.next_request_or_cut(), Event::Request(req.clone()));
    }
    assert_eq!(
        up.accepted(),
        4,
        "the refused connection never reached the upstream"
    );
    assert_eq!(proxy.pending_faults(), 0);

    // A cycle: refuse, pass, refuse, pass.
    proxy.set_repeating(vec![Fault::Refuse, Fault::Pass]);
    for _ in 0..2 {
        let mut refused = connect(proxy.addr());
        let _ = refused.read_to_end(&mut Vec::new());
        let mut c = connect(proxy.addr());
        c.write_all(&req).expect("send");
        assert_eq!(read_response(&mut c, 100), response(100));
    }
    let s = proxy.stats();
    use FaultKind::*;
    assert_eq!(
        s.faults,
        vec![
            Refuse, CutAfter, ResetAfter, Pass, Pass, Refuse, Pass, Refuse, Pass
        ]
    );
    assert_eq!((s.refuse, s.pass, s.cut_after, s.reset_after), (3, 4, 1, 1));
    proxy.stop();
}

#[test]
fn set_upstream_moves_new_connections() {
    let a = Upstream::start(10);
    let b = Upstream::start(20);
    let proxy = FaultProxy::start(a.addr).expect("proxy");
    let req = request(100, 8);
    let mut first = connect(proxy.addr());
    first.write_all(&req).expect("send");
    assert_eq!(read_response(&mut first, 10), response(10));
    proxy.set_upstream(b.addr);
    let mut second = connect(proxy.addr());
    second.write_all(&req).expect("send");
    assert_eq!(read_response(&mut second, 20), response(20));
    // The open connection keeps its upstream.
    first.write_all(&req).expect("send again");
    assert_eq!(read_response(&mut first, 10), response(10));
    assert_eq!((a.accepted(), b.accepted()), (1, 1));
    proxy.stop();
}

#[test]
fn bounded_by_the_cap_the_idle_timeout_and_an_unreachable_upstream() {
    let up = Upstream::start(10);
    let config = ProxyConfig {
        max_connections: 2,
        idle_timeout: Duration::from_millis(200),
        connect_timeout: Duration::from_secs(1),
    };
    let proxy = FaultProxy::start_with(up.addr, config).expect("proxy");
    let mut idle: Vec<TcpStream> = (0..2).map(|_| connect(proxy.addr())).collect();
    assert!(proxy.wait_until(STEP, |s| s.open == 2));
    let mut over = connect(proxy.addr());
    let _ = over.read_to_end(&mut Vec::new());
    assert!(proxy.wait_until(STEP, |s| s.over_cap == 1));
    // Nothing crosses the idle connections: the proxy closes them itself.
    for c in &mut idle {
        let mut got = Vec::new();
        c.read_to_end(&mut got).expect("closed for idleness");
        assert!(got.is_empty());
    }
    drop(idle);
    wait_closed(&proxy);
    assert_eq!(proxy.stats().idle_timeouts, 2);

    // An upstream that is gone: the client's connection is closed, counted.
    let gone = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    proxy.set_upstream(gone);
    let mut c = connect(proxy.addr());
    let _ = c.read_to_end(&mut Vec::new());
    assert!(proxy.wait_until(STEP, |s| s.upstream_unreachable == 1));
    proxy.stop();
}

#[test]
fn stop_returns_promptly_with_connections_open() {
    let up = Upstream::start(10);
    let proxy = FaultProxy::start(up.addr).expect("proxy");
    proxy.set_schedule(vec![Fault::Stall(Duration::from_secs(60))]);
    let mut clients = vec![connect(proxy.addr())];
    // Three passing connections in the middle of a request the upstream is waiting for.
    let req = request(10_000, 9);
    for _ in 0..3 {
        let mut c = connect(proxy.addr());
        c.write_all(&req[..5_000]).expect("half a request");
        clients.push(c);
    }
    assert!(proxy.wait_until(STEP, |s| s.open == 4 && s.bytes_up == 15_000));
    let start = Instant::now();
    proxy.stop();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "stop took {took:?}");
    for c in &mut clients {
        // Closed or reset, but not left hanging (that would be a timeout error).
        if let Err(e) = c.read_to_end(&mut Vec::new()) {
            assert!(
                !matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ),
                "{e}"
            );
        }
    }
}
