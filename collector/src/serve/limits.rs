//! Bounds on what one HTTP client can hold: how long it may take to send a request's head
//! (request line and headers), how long a keep-alive connection may sit idle, how long a
//! request body may take to arrive, how many ingests run at once, and a `Content-Length` over
//! the body limit refused before a byte of the body is read. The server module counts
//! connections and runs the shutdown deadline; this module serves one accepted connection
//! (HTTP/1.1, hyper) and reads request bodies for handlers ([`read_body`]).
//!
//! Why not hyper's own `header_read_timeout`: it starts its clock when the connection goes
//! idle, so it is also the keep-alive timeout and the two cannot differ. Here a watchdog in
//! the connection's task holds one deadline at a time, chosen by the connection's phase
//! ([`Phase`]): waiting for a first request (header timeout from the accept), idle between
//! requests (keep-alive timeout, then the header timeout from the next request's first byte),
//! or busy with a request (no deadline: its body has its own, [`TimedBody`]). When the deadline
//! passes, the connection is dropped, which closes it.
//!
//! This module must not know routes beyond the ingest path it counts, nor storage.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};

use super::{Io, PeerAddr};
use crate::api::ApiError;
use crate::config::ServerConfig;

/// The path whose requests count against `max_concurrent_ingests`.
const INGEST_PATH: &str = "/api/v1/ingest";

/// Seconds a client refused for too many ingests is asked to wait.
const INGEST_RETRY_AFTER_S: &str = "1";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The server's bounds, from the configuration's server section.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub body_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_connections: usize,
    pub max_concurrent_ingests: usize,
}

impl Limits {
    pub fn from_config(server: &ServerConfig) -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_s),
            keep_alive_timeout: Duration::from_secs(server.keep_alive_timeout_s),
            body_timeout: Duration::from_secs(server.body_timeout_s),
            shutdown_timeout: Duration::from_secs(server.shutdown_timeout_s),
            max_body_bytes: server.max_body_bytes,
            max_connections: server.max_connections,
            max_concurrent_ingests: server.max_concurrent_ingests,
        }
    }
}

/// What the server tells its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Run {
    Serving,
    /// Finish the request in progress, take no new one.
    Draining,
    /// The shutdown deadline passed: close now.
    Stopped,
}

/// Where a connection is in its life, for its deadline.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head. `first` for the connection's first request (it must come
    /// within the header timeout of `since`); otherwise the connection is idle since `since`
    /// until a byte arrives (`first_byte`), from which the head has the header timeout.
    Head {
        since: Instant,
        first: bool,
        first_byte: Option<Instant>,
    },
    /// Request number `n` of the connection is being handled; its body is bounded by
    /// [`TimedBody`].
    Busy(u64),
}

/// A connection's phase, shared by its socket wrapper, its service and its watchdog.
struct Clock {
    phase: Mutex<Phase>,
    /// Requests started on the connection, to tell whose response ends a busy phase.
    requests: std::sync::atomic::AtomicU64,
    /// Wakes the watchdog when the deadline may have moved earlier.
    changed: Notify,
}

impl Clock {
    fn new(now: Instant) -> Self {
        Clock {
            phase: Mutex::new(Phase::Head {
                since: now,
                first: true,
                first_byte: None,
            }),
            requests: std::sync::atomic::AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        // The phase is a plain value: a panic elsewhere cannot leave it half-written.
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, phase: Phase) {
        *self.phase() = phase;
        self.changed.notify_one();
    }

    /// A request's head was read: busy until its response is done ([`IdleOnDrop`]).
    fn busy(self: &Arc<Self>) -> IdleOnDrop {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        self.set(Phase::Busy(n));
        IdleOnDrop {
            clock: self.clone(),
            request: n,
        }
    }

    /// Bytes arrived: the first of an idle connection's next head starts its header clock.
    fn on_read(&self) {
        let mut phase = self.phase();
        if let Phase::Head {
            first_byte: first_byte @ None,
            first: false,
            ..
        } = &mut *phase
        {
            *first_byte = Some(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// Bytes left: an idle connection still flushing its last response is not idle yet.
    fn on_write(&self) {
        if let Phase::Head {
            since,
            first: false,
            first_byte: None,
        } = &mut *self.phase()
        {
            *since = Instant::now();
        }
    }

    /// The current deadline, if any.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        match *self.phase() {
            Phase::Head {
                since, first: true, ..
            } => Some(since + limits.header_read_timeout),
            Phase::Head {
                first_byte: Some(at),
                ..
            } => Some(at + limits.header_read_timeout),
            Phase::Head { since, .. } => Some(since + limits.keep_alive_timeout),
            Phase::Busy(_) => None,
        }
    }
}

/// Sets the connection idle when dropped: carried by a response's body, which hyper drops
/// once it has taken the whole of it. Only its own request's busy phase ends: should hyper
/// drop a body after it started the next request, that request stays busy.
struct IdleOnDrop {
    clock: Arc<Clock>,
    request: u64,
}

impl Drop for IdleOnDrop {
    fn drop(&mut self) {
        let mut phase = self.clock.phase();
        if matches!(*phase, Phase::Busy(n) if n == self.request) {
            *phase = Phase::Head {
                since: Instant::now(),
                first: false,
                first_byte: None,
            };
            drop(phase);
            self.clock.changed.notify_one();
        }
    }
}

/// The socket, telling the clock when bytes move.
struct Watched<I> {
    inner: I,
    clock: Arc<Clock>,
}

impl<I: Io> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.on_read();
        }
        polled
    }
}

impl<I: Io> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.on_write();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.on_write();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The request body did not arrive within `body_timeout_s`.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within the body timeout")]
pub struct BodyTimedOut;

/// A request body with a deadline for all of it, counted from when its head was read, so a
/// body dripped a byte at a time ends at the deadline whatever its rate. Sets `timed_out` so
/// the response closes the connection (what is left of the body is never read).
pub struct TimedBody {
    inner: hyper::body::Incoming,
    deadline: Instant,
    /// Made on the first wait only: a body that is already there costs no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(BoxError::from)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Why a request body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body over {limit} bytes")]
    TooLarge { limit: usize },
    #[error("request body not received within the body timeout")]
    TimedOut,
    #[error("request body could not be read: {0}")]
    Failed(String),
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        let (status, code) = match e {
            BodyError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            BodyError::TimedOut => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            BodyError::Failed(_) => (StatusCode::BAD_REQUEST, "body_unreadable"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// Reads a whole request body of at most `limit` bytes into one buffer (413 beyond, 408 when
/// [`TimedBody`]'s deadline passes).
///
/// Each frame is copied into the buffer as it arrives and dropped, so the body never exists
/// twice (collecting the frames and then joining them would, at the end); the buffer grows
/// with what arrived, never reserved ahead from a `Content-Length` that a stalled client may
/// never send.
pub async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut body = body;
    let mut out = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| classify(e.into_inner()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if out.len() + data.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        out.extend_from_slice(&data);
    }
    Ok(Bytes::from(out))
}

/// A body error from [`TimedBody`] (the deadline) or from the connection.
fn classify(error: BoxError) -> BodyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(e) = source {
        if e.is::<BodyTimedOut>() {
            return BodyError::TimedOut;
        }
        source = e.source();
    }
    BodyError::Failed(error.to_string())
}

/// A response body that marks its connection idle once hyper is done with it.
pub struct GuardedBody {
    inner: axum::body::Body,
    _idle: IdleOnDrop,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// One connection's requests into the router, with the per-request bounds.
#[derive(Clone)]
struct ConnService {
    app: Router,
    peer: PeerAddr,
    limits: Arc<Limits>,
    ingests: Arc<Semaphore>,
    clock: Arc<Clock>,
}

/// A refusal sent without reading the request body; the connection closes after it, since
/// the unread body would otherwise be read (or waited for) as the next request.
fn refusal(status: StatusCode, code: &'static str, message: String) -> Response<axum::body::Body> {
    let mut response = ApiError::new(status, code, message).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

impl ConnService {
    fn respond(&self, request: Request<hyper::body::Incoming>) -> ResponseFuture {
        let idle = self.clock.busy();
        let guarded = move |response: Response<axum::body::Body>| {
            Ok(response.map(|inner| GuardedBody { inner, _idle: idle }))
        };
        let limit = self.limits.max_body_bytes;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            let response = refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body over {limit} bytes"),
            );
            return Box::pin(std::future::ready(guarded(response)));
        }
        let permit: Option<OwnedSemaphorePermit> =
            if request.method() == Method::POST && request.uri().path() == INGEST_PATH {
                match self.ingests.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        let mut response = refusal(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "too_many_ingests",
                            format!(
                                "{} ingests in progress; retry shortly",
                                self.limits.max_concurrent_ingests
                            ),
                        );
                        response.headers_mut().insert(
                            header::RETRY_AFTER,
                            HeaderValue::from_static(INGEST_RETRY_AFTER_S),
                        );
                        return Box::pin(std::future::ready(guarded(response)));
                    }
                }
            } else {
                None
            };
        let timed_out = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + self.limits.body_timeout;
        let mut request = request.map(|inner| {
            axum::body::Body::new(TimedBody {
                inner,
                deadline,
                sleep: None,
                timed_out: timed_out.clone(),
            })
        });
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let mut app = self.app.clone();
        Box::pin(async move {
            let response = match tower_service::Service::call(&mut app, request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            // The ingest is over once its response is ready (the batch is stored or refused).
            drop(permit);
            let mut response = response;
            if timed_out.load(Ordering::Relaxed) {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            guarded(response)
        })
    }
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<GuardedBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<hyper::body::Incoming>> for ConnService {
    type Response = Response<GuardedBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<hyper::body::Incoming>) -> Self::Future {
        self.respond(request)
    }
}

/// What every connection shares: the router, the bounds, the ingest count, the server's word.
#[derive(Clone)]
pub(super) struct Shared {
    pub app: Router,
    pub limits: Arc<Limits>,
    pub ingests: Arc<Semaphore>,
    pub run: watch::Receiver<Run>,
}

/// Serves one connection (TCP accepted and, with TLS, handshaken) until it closes, its
/// deadline passes, or the server stops.
pub(super) async fn serve_connection<I: Io>(io: I, peer: PeerAddr, shared: Shared) {
    let clock = Arc::new(Clock::new(Instant::now()));
    let service = ConnService {
        app: shared.app,
        peer,
        limits: shared.limits.clone(),
        ingests: shared.ingests,
        clock: clock.clone(),
    };
    let io = TokioIo::new(Watched {
        inner: io,
        clock: clock.clone(),
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        // The watchdog below times heads and idleness (see the module's doc).
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let limits = shared.limits;
    let mut run = shared.run;
    let mut draining = false;
    if *run.borrow_and_update() != Run::Serving {
        return;
    }
    loop {
        let deadline = clock.deadline(&limits);
        let expired = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = connection.as_mut() => return,
            () = expired => {
                // The phase may have moved on since the deadline was read.
                if clock.deadline(&limits).is_some_and(|at| at <= Instant::now()) {
                    return;
                }
            }
            () = clock.changed.notified() => {}
            changed = run.changed() => {
                let now = if changed.is_ok() { *run.borrow_and_update() } else { Run::Stopped };
                match now {
                    Run::Serving => {}
                    Run::Draining if !draining => {
                        draining = true;
                        // Closes an idle connection now, a busy one after its response.
                        connection.as_mut().graceful_shutdown();
                    }
                    Run::Draining => {}
                    Run::Stopped => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            max_body_bytes: 1024,
            max_connections: 4,
            max_concurrent_ingests: 2,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_phase() {
        let limits = limits();
        let start = Instant::now();
        let clock = Arc::new(Clock::new(start));
        // A fresh connection has the header timeout for its first head.
        assert_eq!(
            clock.deadline(&limits),
            Some(start + limits.header_read_timeout)
        );
        // A byte of the first head does not extend it (slowloris in the request line).
        tokio::time::advance(Duration::from_secs(3)).await;
        clock.on_read();
        assert_eq!(
            clock.deadline(&limits),
            Some(start + limits.header_read_timeout)
        );
        let first = clock.busy();
        assert_eq!(clock.deadline(&limits), None);
        // A late drop of an earlier response does not end a later request's busy phase.
        let second = clock.busy();
        drop(first);
        assert_eq!(clock.deadline(&limits), None);
        // Response done (hyper drops its body): idle, with the keep-alive timeout.
        drop(second);
        let idle_since = Instant::now();
        assert_eq!(
            clock.deadline(&limits),
            Some(idle_since + limits.keep_alive_timeout)
        );
        // Writing out the last response keeps it from counting as idle.
        tokio::time::advance(Duration::from_secs(5)).await;
        clock.on_write();
        let flushed = Instant::now();
        assert_eq!(
            clock.deadline(&limits),
            Some(flushed + limits.keep_alive_timeout)
        );
        // The next head's first byte starts the header timeout; later bytes do not move it.
        tokio::time::advance(Duration::from_secs(50)).await;
        clock.on_read();
        let first_byte = Instant::now();
        tokio::time::advance(Duration::from_secs(4)).await;
        clock.on_read();
        clock.on_write();
        assert_eq!(
            clock.deadline(&limits),
            Some(first_byte + limits.header_read_timeout)
        );
    }

    #[tokio::test]
    async fn read_body_refuses_over_the_limit_and_names_a_timeout() {
        let body = axum::body::Body::from(vec![b'x'; 1025]);
        assert!(matches!(
            read_body(body, 1024).await,
            Err(BodyError::TooLarge { limit: 1024 })
        ));
        let body = axum::body::Body::from(vec![b'x'; 1024]);
        assert_eq!(read_body(body, 1024).await.expect("fits").len(), 1024);
        let failed = axum::body::Body::new(http_body_util_err());
        assert!(matches!(
            read_body(failed, 1024).await,
            Err(BodyError::TimedOut)
        ));
    }

    /// A body whose first frame is the body timeout's error, as [`TimedBody`] yields it.
    fn http_body_util_err() -> impl HttpBody<Data = Bytes, Error = BoxError> + Send + 'static {
        struct Failing;
        impl HttpBody for Failing {
            type Data = Bytes;
            type Error = BoxError;
            fn poll_frame(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
                Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
            }
        }
        Failing
    }
}
