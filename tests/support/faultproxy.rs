//! A TCP fault-injection proxy for end-to-end tests: put it between the agent's HTTPS shipper
//! and the collector (real HTTP/TLS over loopback; it forwards bytes and never looks inside) to
//! prove that no report is lost or duplicated when the network misbehaves.
//!
//! Each accepted connection gets one [`Fault`] from a schedule the test sets ("the next five
//! connections fail in these ways, then pass", or a repeating cycle). Byte limits count per
//! connection (the requests of a keep-alive connection count together). Std threads only: the
//! agent's test support must not depend on an async runtime.
//!
//! Bounded so that a test can never hang on it: at most `max_connections` open at once (more
//! are closed on accept and counted), a per-connection idle timeout (no byte either way), a
//! connect timeout to the upstream, every blocking read wakes every [`TICK`] to see `stop()`,
//! and `stop()` shuts down every socket and joins every thread.
//!
//! Resets without `unsafe`: std cannot set `SO_LINGER` (unstable) and the workspace denies
//! `unsafe` outside `agent/src/capture`, so a reset is made the other way the kernel sends RST:
//! closing a socket that still has unread received data (Linux `tcp_close`, RFC 2525 §2.17).
//! [`Fault::ResetAfter`] stops reading the client exactly at the limit, waits (bounded) until the
//! client has sent at least one more byte, and closes: the client gets an RST. The upstream side
//! of that connection gets an RST only if it had sent bytes the proxy had not read, a FIN
//! otherwise — either way the server sees its request cut short.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often a blocked read wakes to check `stop()`, the idle timeout and the other direction.
pub const TICK: Duration = Duration::from_millis(20);
/// The longest a closing connection waits for the client (its FIN, or the unread byte that
/// turns a close into a reset), capped further by the idle timeout.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Faults remembered in [`ProxyStats::faults`] (the counters keep counting past it).
const FAULT_LOG_CAP: usize = 4096;

/// What happens to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward both ways, byte for byte, half-closes included.
    Pass,
    /// Accept, read nothing, forward nothing (the upstream is not even contacted), hold the
    /// connection this long, then close it (FIN).
    Stall(Duration),
    /// Forward this many request bytes (client → upstream), then reset: the client gets an RST
    /// (see the module doc for how, and for the upstream side). Nothing more flows either way.
    ResetAfter(usize),
    /// Forward this many request bytes, then close both sides gracefully (FIN): a body cut
    /// mid-way. Nothing more flows either way.
    CutAfter(usize),
    /// Forward the whole request but only this many response bytes (upstream → client), then
    /// close both sides (FIN): the server may have committed, the client never sees its 2xx.
    CutResponseAfter(usize),
    /// Accept and close at once; the upstream is not contacted.
    Refuse,
}

/// A [`Fault`] without its parameter, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    Pass,
    Stall,
    ResetAfter,
    CutAfter,
    CutResponseAfter,
    Refuse,
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Pass => FaultKind::Pass,
            Fault::Stall(_) => FaultKind::Stall,
            Fault::ResetAfter(_) => FaultKind::ResetAfter,
            Fault::CutAfter(_) => FaultKind::CutAfter,
            Fault::CutResponseAfter(_) => FaultKind::CutResponseAfter,
            Fault::Refuse => FaultKind::Refuse,
        }
    }
}

/// Bounds of a proxy.
#[derive(Debug, Clone, Copy)]
pub struct ProxyConfig {
    /// Connections open at once; further ones are closed on accept (`over_cap`).
    pub max_connections: usize,
    /// A connection with no byte either way for this long is closed (`idle_timeouts`).
    pub idle_timeout: Duration,
    /// Connecting to the upstream gives up after this (`upstream_unreachable`).
    pub connect_timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            max_connections: 64,
            idle_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// What the proxy did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections given a fault (those closed for the cap are not counted here).
    pub accepted: u64,
    pub pass: u64,
    pub stall: u64,
    pub reset_after: u64,
    pub cut_after: u64,
    pub cut_response_after: u64,
    pub refuse: u64,
    /// The fault given to each accepted connection, in accept order (first 4096).
    pub faults: Vec<FaultKind>,
    /// Closed on accept because `max_connections` were open.
    pub over_cap: u64,
    /// The upstream could not be reached (the client's connection is then closed).
    pub upstream_unreachable: u64,
    /// Closed after `idle_timeout` without a byte either way.
    pub idle_timeouts: u64,
    /// Resets that reached the client (closed with its unread bytes pending).
    pub resets_sent: u64,
    /// `ResetAfter` connections whose client sent nothing past the limit (closed with a FIN).
    pub resets_without_pending_data: u64,
    /// Bytes forwarded client → upstream and upstream → client.
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Connections open now.
    pub open: u64,
}

impl ProxyStats {
    fn count(&mut self, kind: FaultKind) {
        self.accepted += 1;
        if self.faults.len() < FAULT_LOG_CAP {
            self.faults.push(kind);
        }
        let counter = match kind {
            FaultKind::Pass => &mut self.pass,
            FaultKind::Stall => &mut self.stall,
            FaultKind::ResetAfter => &mut self.reset_after,
            FaultKind::CutAfter => &mut self.cut_after,
            FaultKind::CutResponseAfter => &mut self.cut_response_after,
            FaultKind::Refuse => &mut self.refuse,
        };
        *counter += 1;
    }
}

/// Which fault the next connection gets.
#[derive(Default)]
struct Plan {
    /// Used first, in order.
    queue: VecDeque<Fault>,
    /// Then cycled through; empty = Pass forever.
    cycle: Vec<Fault>,
    next: usize,
}

impl Plan {
    fn next_fault(&mut self) -> Fault {
        if let Some(fault) = self.queue.pop_front() {
            return fault;
        }
        if self.cycle.is_empty() {
            return Fault::Pass;
        }
        let fault = self.cycle[self.next % self.cycle.len()].clone();
        self.next = self.next.wrapping_add(1);
        fault
    }
}

struct Shared {
    config: ProxyConfig,
    upstream: Mutex<SocketAddr>,
    plan: Mutex<Plan>,
    /// Counters, and the condition variable that announces every change (and `stop()`).
    stats: Mutex<ProxyStats>,
    changed: Condvar,
    stopping: AtomicBool,
    /// Sockets of open connections (for `stop()` to shut down) and handler threads.
    sockets: Mutex<Vec<(u64, Arc<TcpStream>)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_socket: AtomicU64,
}

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn update(&self, f: impl FnOnce(&mut ProxyStats)) {
        f(&mut lock(&self.stats));
        self.changed.notify_all();
    }

    fn register(&self, socket: &Arc<TcpStream>) -> u64 {
        let id = self.next_socket.fetch_add(1, Ordering::Relaxed);
        lock(&self.sockets).push((id, Arc::clone(socket)));
        // A stop() that ran between accept and here must not miss this socket.
        if self.stopping() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        id
    }

    fn unregister(&self, id: u64) {
        lock(&self.sockets).retain(|(i, _)| *i != id);
    }
}

/// The proxy: listens on `127.0.0.1:0` and forwards to an upstream address.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` with the default bounds (64 connections, 10 s idle).
    pub fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        Self::start_with(upstream, ProxyConfig::default())
    }

    pub fn start_with(upstream: SocketAddr, config: ProxyConfig) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            upstream: Mutex::new(upstream),
            plan: Mutex::new(Plan::default()),
            stats: Mutex::new(ProxyStats::default()),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            next_socket: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("faultproxy-accept".into())
                .spawn(move || accept_loop(&listener, &shared))?
        };
        Ok(FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next `faults.len()` connections (counted from this call) get these faults in order,
    /// then every connection passes. Replaces any earlier schedule or cycle.
    pub fn set_schedule(&self, faults: Vec<Fault>) {
        let mut plan = lock(&self.shared.plan);
        *plan = Plan {
            queue: faults.into(),
            ..Plan::default()
        };
    }

    /// Connection k (counted from this call) gets `faults[k % len]`, forever; an empty list is
    /// Pass forever. Replaces any earlier schedule or cycle.
    pub fn set_repeating(&self, faults: Vec<Fault>) {
        let mut plan = lock(&self.shared.plan);
        *plan = Plan {
            cycle: faults,
            ..Plan::default()
        };
    }

    /// Faults still queued by [`set_schedule`](Self::set_schedule).
    pub fn pending_faults(&self) -> usize {
        lock(&self.shared.plan).queue.len()
    }

    /// New connections go to `upstream` (e.g. the collector restarted on another port); open
    /// ones keep theirs.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *lock(&self.shared.upstream) = upstream;
    }

    pub fn stats(&self) -> ProxyStats {
        lock(&self.shared.stats).clone()
    }

    /// Waits until `done(stats)` holds, at most `timeout`; returns whether it held. For tests
    /// that must wait for the proxy (e.g. every connection closed) without sleeping blindly.
    pub fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&ProxyStats) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut stats = lock(&self.shared.stats);
        loop {
            if done(&stats) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            stats = self
                .shared
                .changed
                .wait_timeout(stats, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Closes the listener and every open connection, and joins every thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.update(|_| {}); // wakes stalled connections
        // accept() has no timeout: one connection to ourselves wakes it to see the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = acceptor.join();
        for (_, socket) in lock(&self.shared.sockets).iter() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for handle in threads {
            let _ = handle.join();
        }
    }
}

impl Drop for FaultProxy {
    /// A test that panics before `stop()` still leaves no thread or socket behind.
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(_) if shared.stopping() => return,
            // Transient (e.g. the peer reset before accept, or out of descriptors): go on.
            Err(_) => continue,
        };
        if shared.stopping() {
            return;
        }
        {
            let mut stats = lock(&shared.stats);
            if stats.open >= shared.config.max_connections as u64 {
                stats.over_cap += 1;
                drop(stats);
                shared.changed.notify_all();
                drop(client);
                continue;
            }
            stats.open += 1;
        }
        let fault = lock(&shared.plan).next_fault();
        shared.update(|s| s.count(fault.kind()));
        let spawned = {
            let shared = Arc::clone(shared);
            thread::Builder::new()
                .name("faultproxy-conn".into())
                .spawn(move || {
                    handle(&shared, client, &fault);
                    shared.update(|s| s.open = s.open.saturating_sub(1));
                })
        };
        let mut threads = lock(&shared.threads);
        // Forget finished connections so a long test does not accumulate handles.
        threads.retain(|t| !t.is_finished());
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(_) => shared.update(|s| s.open = s.open.saturating_sub(1)),
        }
    }
}

/// Per-connection state shared by its two directions.
struct Conn {
    born: Instant,
    /// Milliseconds since `born` of the last byte either way.
    last_activity_ms: AtomicU64,
    /// Set when the connection must stop forwarding (cut, reset, error, idle).
    done: AtomicBool,
    /// Both directions notice idleness; it is counted once.
    idle_counted: AtomicBool,
}

impl Conn {
    fn touch(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The source closed its sending side.
    Eof,
    /// The byte limit was forwarded.
    Limit,
    /// No byte either way for the idle timeout.
    Idle,
    /// A read or write failed.
    Error,
    /// `stop()` or the other direction ended the connection.
    Stopped,
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn prepare(socket: &TcpStream, shared: &Shared) {
    let _ = socket.set_nodelay(true);
    let _ = socket.set_read_timeout(Some(TICK));
    // A peer that never reads must not block a write for longer than the idle timeout.
    let _ = socket.set_write_timeout(Some(shared.config.idle_timeout));
}

/// Copies `from` → `to` until EOF, `limit` bytes, idle, an error or a stop. Reads never take
/// more than the limit allows, so bytes past it stay unread in the kernel.
fn pump(
    from: &TcpStream,
    to: &TcpStream,
    limit: Option<usize>,
    up: bool,
    conn: &Conn,
    shared: &Shared,
) -> Outcome {
    let mut buf = [0u8; 16 * 1024];
    let mut forwarded = 0usize;
    loop {
        if shared.stopping() || conn.done.load(Ordering::SeqCst) {
            return Outcome::Stopped;
        }
        let want = match limit {
            Some(n) if forwarded >= n => return Outcome::Limit,
            Some(n) => (n - forwarded).min(buf.len()),
            None => buf.len(),
        };
        let read = match (&*from).read(&mut buf[..want]) {
            Ok(0) => return Outcome::Eof,
            Ok(k) => k,
            Err(e) if is_timeout(&e) => {
                if conn.idle_for() >= shared.config.idle_timeout {
                    if !conn.idle_counted.swap(true, Ordering::SeqCst) {
                        shared.update(|s| s.idle_timeouts += 1);
                    }
                    return Outcome::Idle;
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Outcome::Error,
        };
        // Re-checked after the read: nothing may cross once the connection is cut.
        if conn.done.load(Ordering::SeqCst) {
            return Outcome::Stopped;
        }
        let chunk = buf.get(..read).unwrap_or(&[]);
        if (&*to).write_all(chunk).is_err() {
            return Outcome::Error;
        }
        forwarded += read;
        conn.touch();
        shared.update(|s| {
            if up {
                s.bytes_up += read as u64;
            } else {
                s.bytes_down += read as u64;
            }
        });
    }
}

/// How a connection's client socket is closed at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// At once, whatever is pending (Refuse).
    Now,
    /// FIN, then wait for the client's (see [`graceful_close`]).
    Graceful,
    /// RST (see [`reset_close`]).
    Reset,
}

fn handle(shared: &Arc<Shared>, client: TcpStream, fault: &Fault) {
    prepare(&client, shared);
    let client = Arc::new(client);
    let client_id = shared.register(&client);
    let close = match fault {
        Fault::Refuse => Close::Now,
        Fault::Stall(hold) => {
            let deadline = Instant::now() + *hold;
            let stats = lock(&shared.stats);
            let _ = shared
                .changed
                .wait_timeout_while(stats, *hold, |_| {
                    !shared.stopping() && Instant::now() < deadline
                })
                .unwrap_or_else(PoisonError::into_inner);
            Close::Graceful
        }
        Fault::Pass | Fault::ResetAfter(_) | Fault::CutAfter(_) | Fault::CutResponseAfter(_) => {
            relay(shared, &client, fault)
        }
    };
    match close {
        Close::Now => {}
        Close::Graceful => graceful_close(&client, shared),
        Close::Reset => reset_close(&client, shared),
    }
    shared.unregister(client_id);
    // Dropping the last reference closes the socket (with an RST if bytes are unread).
    drop(client);
}

/// Forwards one connection under `fault`; returns how to close the client.
fn relay(shared: &Arc<Shared>, client: &Arc<TcpStream>, fault: &Fault) -> Close {
    let target = *lock(&shared.upstream);
    let upstream = match TcpStream::connect_timeout(&target, shared.config.connect_timeout) {
        Ok(s) => s,
        Err(_) => {
            shared.update(|s| s.upstream_unreachable += 1);
            return Close::Graceful;
        }
    };
    prepare(&upstream, shared);
    let upstream = Arc::new(upstream);
    let upstream_id = shared.register(&upstream);
    let conn = Arc::new(Conn {
        born: Instant::now(),
        last_activity_ms: AtomicU64::new(0),
        done: AtomicBool::new(false),
        idle_counted: AtomicBool::new(false),
    });
    let response_limit = match fault {
        Fault::CutResponseAfter(n) => Some(*n),
        _ => None,
    };
    let request_limit = match fault {
        Fault::ResetAfter(n) | Fault::CutAfter(n) => Some(*n),
        _ => None,
    };
    // Upstream → client on a second thread.
    let down = {
        let (shared, client, upstream, conn) = (
            Arc::clone(shared),
            Arc::clone(client),
            Arc::clone(&upstream),
            Arc::clone(&conn),
        );
        thread::Builder::new()
            .name("faultproxy-down".into())
            .spawn(move || {
                let outcome = pump(&upstream, &client, response_limit, false, &conn, &shared);
                match outcome {
                    // The server half-closed: pass its FIN on, unless the connection is cut.
                    Outcome::Eof if !conn.done.load(Ordering::SeqCst) => {
                        let _ = client.shutdown(Shutdown::Write);
                    }
                    Outcome::Eof | Outcome::Stopped => {}
                    // Response cut (FIN to the client), or a failure: end both directions;
                    // the request side then closes the client.
                    Outcome::Limit | Outcome::Idle | Outcome::Error => {
                        conn.done.store(true, Ordering::SeqCst);
                        let _ = client.shutdown(Shutdown::Write);
                        let _ = upstream.shutdown(Shutdown::Both);
                    }
                }
            })
    };
    let outcome = match down {
        Ok(_) => pump(client, &upstream, request_limit, true, &conn, shared),
        Err(_) => Outcome::Error,
    };
    if outcome == Outcome::Eof {
        // The client half-closed: pass its FIN on and let the response finish.
        let _ = upstream.shutdown(Shutdown::Write);
    } else {
        // Cut, reset, idle, error or stop: nothing more crosses either way.
        conn.done.store(true, Ordering::SeqCst);
        let _ = upstream.shutdown(Shutdown::Both);
    }
    if let Ok(handle) = down {
        let _ = handle.join();
    }
    shared.unregister(upstream_id);
    drop(upstream);
    if matches!(fault, Fault::ResetAfter(_)) && outcome == Outcome::Limit {
        Close::Reset
    } else {
        Close::Graceful
    }
}

fn close_deadline(shared: &Shared) -> Instant {
    Instant::now() + CLOSE_WAIT.min(shared.config.idle_timeout)
}

/// FIN to the client, then reads (and discards) what it still sends until it closes too, so
/// that the final close is not turned into a reset by unread bytes. Bounded.
fn graceful_close(client: &TcpStream, shared: &Shared) {
    let _ = client.shutdown(Shutdown::Write);
    let deadline = close_deadline(shared);
    let mut buf = [0u8; 4096];
    while !shared.stopping() && Instant::now() < deadline {
        match (&*client).read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Waits (bounded) until the client has a byte we have not read, so that closing sends an RST.
fn reset_close(client: &TcpStream, shared: &Shared) {
    let deadline = close_deadline(shared);
    let mut byte = [0u8; 1];
    while !shared.stopping() && Instant::now() < deadline {
        match client.peek(&mut byte) {
            Ok(0) => break,
            Ok(_) => {
                shared.update(|s| s.resets_sent += 1);
                return;
            }
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    shared.update(|s| s.resets_without_pending_data += 1);
}
