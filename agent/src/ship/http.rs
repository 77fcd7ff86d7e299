//! The shipper: takes records from the outbox (the disk spool) in batches and POSTs them to a
//! collector over HTTPS, acknowledging them in the outbox only after a 2xx.
//!
//! Runs on a thread of its own with a small single-threaded tokio runtime; capture threads
//! never wait for it (they hand records to the sink thread, which writes the spool). The wall
//! clock lives here and only here on the agent's data path: batch ages, timeouts, backoff.
//!
//! What happens to a batch, by answer:
//! - 2xx: acknowledged (the collector has committed it); the next batch goes at once.
//! - 401/403: the token is refused. Nothing is dropped: the shipper says so loudly once, keeps
//!   the records, retries slowly, and retries at once when the token is reloaded (SIGHUP).
//! - 408, 429, 5xx, 404/405 (a proxy or a wrong path), connection errors, timeouts: retried
//!   with exponential backoff and full jitter, honouring `Retry-After`; each failure moves to
//!   the next configured collector URL, and a success comes back to the first.
//! - 413: the batch is split in halves (a single record too large goes to the dead letter).
//! - Any other 4xx: the collector will never take this batch. It is bisected down to the
//!   records it refuses, and those alone move to the dead-letter segments, counted and logged;
//!   never dropped.
//!
//! It must not parse reports (batches are assembled from the payloads' bytes) and must not hold
//! the outbox lock across an await.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use voqa_wire::Timestamp;

use super::config::ShipConfig;
use super::record::build_batch;

/// What the shipper needs of the queue it drains (the disk spool; an in-memory queue in tests).
pub trait Outbox: Send + 'static {
    /// Records and bytes waiting.
    fn pending(&self) -> (u64, u64);
    /// Up to `max_records` / `max_bytes` from the front (at least one record if any waits),
    /// into `out` (cleared first). `None` when nothing waits. Reading again without `ack`
    /// returns the same records.
    fn read_batch(
        &mut self,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<Vec<u8>>,
    ) -> io::Result<bool>;
    /// The records of the last `read_batch` are done (delivered).
    fn ack_batch(&mut self) -> io::Result<()>;
    /// The records of the last `read_batch` (given again in `records`) are refused for good:
    /// keep them apart, for an operator.
    fn dead_letter_batch(&mut self, records: &[Vec<u8>]) -> io::Result<()>;
}

/// Why the shipper could not start. Causes are part of the messages, not also `source()`, so
/// an error printed with its chain says each once.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("ship.token_file {path}: {error}")]
    Token { path: PathBuf, error: io::Error },
    #[error("ship.token_file {0}: empty")]
    EmptyToken(PathBuf),
    #[error("{key} {path}: {error}")]
    Tls {
        key: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("{key} {path}: {message}")]
    Pem {
        key: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("HTTP client: {0}")]
    Client(String),
    #[error("no collector URL configured")]
    NoCollector,
    #[error("shipper thread: {0}")]
    Thread(io::Error),
}

/// Where the bearer token comes from.
#[derive(Debug, Clone)]
pub enum TokenSource {
    Inline(String),
    File(PathBuf),
}

impl TokenSource {
    fn read(&self) -> Result<String, ShipError> {
        match self {
            TokenSource::Inline(t) => Ok(t.trim().to_owned()),
            TokenSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| ShipError::Token {
                    path: path.clone(),
                    error,
                })?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(ShipError::EmptyToken(path.clone()));
                }
                Ok(token.to_owned())
            }
        }
    }
}

/// The shipper's settings, from `[ship]` or from `replay`'s flags.
#[derive(Debug, Clone)]
pub struct ShipperSettings {
    pub collectors: Vec<String>,
    pub token: TokenSource,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub batch_max_records: usize,
    pub batch_max_bytes: usize,
    pub batch_max_age: Duration,
    pub request_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl ShipperSettings {
    pub fn from_config(cfg: &ShipConfig, token: TokenSource) -> Self {
        ShipperSettings {
            collectors: cfg.collectors.clone(),
            token,
            ca_file: cfg.ca_file.clone(),
            client_cert: cfg.client_cert.clone(),
            client_key: cfg.client_key.clone(),
            batch_max_records: cfg.batch_max_records,
            batch_max_bytes: cfg.batch_max_bytes,
            batch_max_age: Duration::from_millis(cfg.batch_max_age_ms),
            request_timeout: Duration::from_secs(cfg.request_timeout_s),
            backoff_min: Duration::from_millis(cfg.backoff_min_ms),
            backoff_max: Duration::from_secs(cfg.backoff_max_s),
        }
    }
}

/// What the shipper is doing, for logs, metrics and `drain`'s error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipState {
    Idle,
    Delivering,
    /// Retrying after this reason.
    Retrying(String),
    /// The collector refused the token.
    Unauthorized(String),
}

/// Counters of the shipper (cumulative since it started).
#[derive(Debug, Default)]
pub struct ShipperCounters {
    pub batches_sent: AtomicU64,
    pub records_acked: AtomicU64,
    pub records_dead_lettered: AtomicU64,
    pub send_failures: AtomicU64,
    pub unauthorized: AtomicU64,
}

struct Shared<O> {
    outbox: Arc<Mutex<O>>,
    wake: Notify,
    stop: AtomicBool,
    /// Send what waits now, whatever its age (shutdown, end of replay).
    hurry: AtomicBool,
    token: RwLock<String>,
    token_source: TokenSource,
    state: Mutex<ShipState>,
    counters: ShipperCounters,
}

/// The running shipper. Dropping it stops the thread after its current request.
pub struct Shipper<O: Outbox> {
    shared: Arc<Shared<O>>,
    thread: Option<JoinHandle<()>>,
}

/// How far a `drain` got.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pending} record(s) not acknowledged, none for {waited_s} s: {state:?}")]
pub struct DrainError {
    pub pending: u64,
    pub waited_s: u64,
    pub state: ShipState,
}

impl<O: Outbox> Shipper<O> {
    /// Starts the shipper thread over `outbox`.
    pub fn start(settings: ShipperSettings, outbox: Arc<Mutex<O>>) -> Result<Self, ShipError> {
        if settings.collectors.is_empty() {
            return Err(ShipError::NoCollector);
        }
        let token = settings.token.read()?;
        let client = http_client(&settings)?;
        let shared = Arc::new(Shared {
            outbox,
            wake: Notify::new(),
            stop: AtomicBool::new(false),
            hurry: AtomicBool::new(false),
            token: RwLock::new(token),
            token_source: settings.token.clone(),
            state: Mutex::new(ShipState::Idle),
            counters: ShipperCounters::default(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ShipError::Thread)?;
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("voqa-ship".into())
            .spawn(move || runtime.block_on(ship_loop(thread_shared, settings, client)))
            .map_err(ShipError::Thread)?;
        Ok(Shipper {
            shared,
            thread: Some(thread),
        })
    }

    /// New records are in the outbox (called by the sink after a write).
    pub fn notify(&self) {
        self.shared.wake.notify_one();
    }

    /// A waker the sink thread can keep.
    pub fn waker(&self) -> Waker {
        let shared: Arc<dyn Wake> = self.shared.clone();
        Waker(shared)
    }

    /// Re-reads the token (SIGHUP) and retries at once. On error the old token stays.
    pub fn reload_token(&self) -> Result<(), ShipError> {
        let token = self.shared.token_source.read()?;
        if let Ok(mut t) = self.shared.token.write() {
            *t = token;
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    pub fn state(&self) -> ShipState {
        self.shared
            .state
            .lock()
            .map(|s| s.clone())
            .unwrap_or(ShipState::Idle)
    }

    pub fn counters(&self) -> &ShipperCounters {
        &self.shared.counters
    }

    /// Sends everything waiting, whatever its age, and returns once the outbox is empty, or
    /// with what is left when `timeout` passes (`None`: wait as long as it takes).
    pub fn drain(&self, timeout: Option<Duration>) -> Result<(), DrainError> {
        let start = Instant::now();
        self.shared.hurry.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        loop {
            let (pending, _) = self
                .shared
                .outbox
                .lock()
                .map(|o| o.pending())
                .unwrap_or((u64::MAX, 0));
            if pending == 0 {
                return Ok(());
            }
            if timeout.is_some_and(|t| start.elapsed() >= t) {
                return Err(DrainError {
                    pending,
                    waited_s: start.elapsed().as_secs(),
                    state: self.state(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the thread after its current request (which is then retried on the next start).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<O: Outbox> Drop for Shipper<O> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Wakes the shipper from another thread without knowing its outbox type.
#[derive(Clone)]
pub struct Waker(Arc<dyn Wake>);

impl Waker {
    pub fn wake(&self) {
        self.0.wake();
    }
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

pub trait Wake: Send + Sync {
    fn wake(&self);
}

impl<O: Outbox> Wake for Shared<O> {
    fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The shipper's state changes, through the one logger (`voqa_service::log`), target `voqa_agent::ship`.
fn log(msg: &str) {
    tracing::info!("ship: {msg}");
}

/// A shipping failure the shipper survives (it retries or moves the record aside).
fn warn(msg: &str) {
    tracing::warn!("ship: {msg}");
}

/// The HTTPS client: rustls with the ring provider, the configured CA (or the system roots)
/// and the optional client certificate.
fn http_client(s: &ShipperSettings) -> Result<reqwest::Client, ShipError> {
    // reqwest is built without a crypto provider of its own (no aws-lc): use ring. A second
    // install (another shipper in this process) is refused harmlessly.
    // (ring has no post-quantum key exchange, hence rustls's deprecation note; aws-lc, which
    // has, is kept out of the tree by project rule.)
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .timeout(s.request_timeout)
        .connect_timeout(s.request_timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(2)
        .user_agent(concat!("voqa-agent/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &s.ca_file {
        let pem = read_file("ship.ca_file", path)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| pem_error("ship.ca_file", path, e))?;
        if certs.is_empty() {
            return Err(ShipError::Pem {
                key: "ship.ca_file",
                path: path.clone(),
                message: "no certificate in the file".into(),
            });
        }
        b = b.tls_certs_only(certs);
    }
    if let (Some(cert), Some(key)) = (&s.client_cert, &s.client_key) {
        let mut pem = read_file("ship.client_cert", cert)?;
        pem.push(b'\n');
        pem.extend_from_slice(&read_file("ship.client_key", key)?);
        let id =
            reqwest::Identity::from_pem(&pem).map_err(|e| pem_error("ship.client_key", key, e))?;
        b = b.identity(id);
    }
    b.build()
        .map_err(|e| ShipError::Client(voqa_service::log::error_chain(&e)))
}

fn read_file(key: &'static str, path: &PathBuf) -> Result<Vec<u8>, ShipError> {
    std::fs::read(path).map_err(|error| ShipError::Tls {
        key,
        path: path.clone(),
        error,
    })
}

fn pem_error(key: &'static str, path: &std::path::Path, e: reqwest::Error) -> ShipError {
    ShipError::Pem {
        key,
        path: path.to_path_buf(),
        message: voqa_service::log::error_chain(&e),
    }
}

/// What became of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Acked,
    Unauthorized(String),
    TooLarge,
    Refused(String),
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

fn classify(status: u16, retry_after: Option<Duration>, body: &str) -> Outcome {
    let detail = || {
        let b: String = body.chars().take(300).collect();
        format!("HTTP {status}: {}", b.trim())
    };
    match status {
        200..=299 => Outcome::Acked,
        401 | 403 => Outcome::Unauthorized(detail()),
        413 => Outcome::TooLarge,
        404 | 405 | 408 | 429 | 500..=599 => Outcome::Retry {
            reason: detail(),
            after: retry_after,
        },
        // 1xx/3xx here mean a proxy in the way (redirects are not followed): retry.
        100..=199 | 300..=399 => Outcome::Retry {
            reason: detail(),
            after: None,
        },
        _ => Outcome::Refused(detail()),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs; treated as absent), capped.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(600)))
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Vec<u8>,
    batch_id: &str,
) -> Outcome {
    let sent = client
        .post(url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::CONTENT_ENCODING, "gzip")
        .header("x-voqa-batch-id", batch_id)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let after = retry_after(resp.headers());
            // Read a bounded part of the answer, for the log.
            let mut text = String::new();
            if !(200..300).contains(&status) {
                let mut resp = resp;
                while let Ok(Some(chunk)) = resp.chunk().await {
                    text.push_str(&String::from_utf8_lossy(&chunk));
                    if text.len() > 1024 {
                        break;
                    }
                }
            }
            classify(status, after, &text)
        }
        Err(e) => Outcome::Retry {
            reason: voqa_service::log::error_chain(&e),
            after: None,
        },
    }
}

fn gzip(json: &[u8]) -> io::Result<Vec<u8>> {
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    let mut enc = GzEncoder::new(Vec::with_capacity(json.len() / 4 + 64), Compression::fast());
    enc.write_all(json)?;
    enc.finish()
}

fn now_ts() -> Timestamp {
    Timestamp::from_ns(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64),
    )
}

/// Small xorshift for backoff jitter (no need for a cryptographic RNG here).
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        Jitter(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Full jitter: uniform in [min, min(max, min·2^attempt)].
    fn backoff(&mut self, min: Duration, max: Duration, attempt: u32) -> Duration {
        let cap = min
            .saturating_mul(1u32 << attempt.min(20))
            .min(max)
            .max(min);
        let span = (cap - min).as_millis() as u64;
        min + Duration::from_millis(if span == 0 {
            0
        } else {
            self.next() % (span + 1)
        })
    }
}

/// Batches grow this many times while a backlog of at least four batches drains…
const BACKLOG_FACTOR: usize = 8;
/// … up to this much JSON (before gzip).
const BACKLOG_MAX_BYTES: usize = 4 << 20;

fn ingest_url(base: &str) -> String {
    format!("{}/api/v1/ingest", base.trim_end_matches('/'))
}

impl<O: Outbox> Shared<O> {
    fn set_state(&self, state: ShipState) {
        if let Ok(mut s) = self.state.lock()
            && *s != state
        {
            match &state {
                ShipState::Retrying(r) => warn(&format!("collector unavailable, retrying: {r}")),
                ShipState::Unauthorized(r) => warn(&format!(
                    "the collector REFUSED THE TOKEN ({r}); every record is kept in the \
                         spool: fix ship.token_file and reload (SIGHUP)"
                )),
                ShipState::Delivering
                    if matches!(*s, ShipState::Retrying(_) | ShipState::Unauthorized(_)) =>
                {
                    log("delivering again")
                }
                _ => {}
            }
            *s = state;
        }
    }

    /// Waits for new records, a wake-up, or `limit`, whichever comes first.
    async fn pause(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.wake.notified()).await;
    }
}

async fn ship_loop<O: Outbox>(shared: Arc<Shared<O>>, s: ShipperSettings, client: reqwest::Client) {
    let urls: Vec<String> = s.collectors.iter().map(|u| ingest_url(u)).collect();
    let mut url_index = 0usize;
    let mut failures: u32 = 0;
    let mut limit = s.batch_max_records;
    let mut jitter = Jitter::new();
    let mut waiting_since: Option<Instant> = None;
    let mut records: Vec<Vec<u8>> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let (pending, bytes) = match shared.outbox.lock() {
            Ok(o) => o.pending(),
            Err(_) => return,
        };
        if pending == 0 {
            waiting_since = None;
            shared.set_state(ShipState::Idle);
            shared.pause(Duration::from_secs(1)).await;
            continue;
        }
        let first = *waiting_since.get_or_insert_with(Instant::now);
        let full = pending >= limit as u64 || bytes >= s.batch_max_bytes as u64;
        let due = first + s.batch_max_age;
        if !full && !shared.hurry.load(Ordering::SeqCst) && Instant::now() < due {
            shared
                .pause(due.saturating_duration_since(Instant::now()))
                .await;
            continue;
        }
        // Draining a backlog (after an outage), one round trip per batch would cap delivery
        // at one batch per commit: send larger batches then, still well under the collector's
        // 8 MiB body limit (a 413 halves them anyway).
        let (take_records, take_bytes) =
            if pending >= 4 * s.batch_max_records as u64 && limit == s.batch_max_records {
                (
                    limit.saturating_mul(BACKLOG_FACTOR),
                    s.batch_max_bytes
                        .saturating_mul(BACKLOG_FACTOR)
                        .min(BACKLOG_MAX_BYTES.max(s.batch_max_bytes)),
                )
            } else {
                (limit, s.batch_max_bytes)
            };
        let read = shared
            .outbox
            .lock()
            .map_err(|_| io::Error::other("outbox lock poisoned"))
            .and_then(|mut o| o.read_batch(take_records, take_bytes, &mut records));
        match read {
            Ok(true) if !records.is_empty() => {}
            Ok(_) => {
                shared.pause(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => {
                warn(&format!("cannot read the spool: {e}"));
                shared.pause(Duration::from_secs(1)).await;
                continue;
            }
        }
        let body = match build_batch(&records, now_ts()) {
            Ok(b) => b,
            Err(bad) => {
                // A record of a format this agent cannot send: keep it for an operator. The
                // good records before it go first.
                match bad.first() {
                    Some(0) | None if records.len() == 1 => {
                        warn("a spool record of an unknown format moved to the dead letter");
                        dead_letter(&shared, &records);
                    }
                    Some(0) | None => limit = 1,
                    Some(&n) => limit = n,
                }
                continue;
            }
        };
        let gz = match gzip(&body.json) {
            Ok(g) => g,
            Err(e) => {
                warn(&format!("cannot compress a batch: {e}"));
                shared.pause(Duration::from_secs(1)).await;
                continue;
            }
        };
        let token = shared.token.read().map(|t| t.clone()).unwrap_or_default();
        let url = &urls[url_index % urls.len()];
        match post(&client, url, &token, gz, &body.batch_id).await {
            Outcome::Acked => {
                let n = records.len();
                let acked = shared
                    .outbox
                    .lock()
                    .map_err(|_| io::Error::other("outbox lock poisoned"))
                    .and_then(|mut o| o.ack_batch());
                if let Err(e) = acked {
                    // Delivered but not marked: it will be sent again and the collector keeps
                    // one copy. Loud, because it repeats until the disk is fixed.
                    warn(&format!(
                        "cannot record an acknowledgement in the spool: {e}"
                    ));
                    shared.pause(Duration::from_secs(1)).await;
                }
                shared.counters.batches_sent.fetch_add(1, Ordering::Relaxed);
                shared
                    .counters
                    .records_acked
                    .fetch_add(n as u64, Ordering::Relaxed);
                shared.set_state(ShipState::Delivering);
                failures = 0;
                url_index = 0;
                limit = (limit.saturating_mul(2)).min(s.batch_max_records);
                waiting_since = None;
            }
            Outcome::Unauthorized(reason) => {
                shared.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
                shared.set_state(ShipState::Unauthorized(format!("{url}: {reason}")));
                failures = failures.saturating_add(1);
                // A token fixed with SIGHUP wakes the pause at once.
                shared
                    .pause(jitter.backoff(
                        s.backoff_min,
                        s.backoff_max.min(Duration::from_secs(30)),
                        failures,
                    ))
                    .await;
            }
            Outcome::TooLarge | Outcome::Refused(_) if records.len() > 1 => {
                // Find the records it refuses: halve until a batch passes or one record is
                // left; successes double the size again.
                limit = records.len() / 2;
            }
            Outcome::TooLarge => {
                warn("one record is larger than the collector accepts: moved to the dead letter");
                dead_letter(&shared, &records);
            }
            Outcome::Refused(reason) => {
                warn(&format!(
                    "the collector refused a record for good ({reason}): moved to the dead letter"
                ));
                dead_letter(&shared, &records);
            }
            Outcome::Retry { reason, after } => {
                shared
                    .counters
                    .send_failures
                    .fetch_add(1, Ordering::Relaxed);
                shared.set_state(ShipState::Retrying(format!("{url}: {reason}")));
                failures = failures.saturating_add(1);
                url_index = (url_index + 1) % urls.len();
                // Fail over at once while there is another URL to try in this round; back off
                // once every URL has failed (or when told how long to wait).
                if after.is_some() || (failures as usize).is_multiple_of(urls.len()) {
                    let round = failures / urls.len().max(1) as u32;
                    let wait = after
                        .unwrap_or_else(|| jitter.backoff(s.backoff_min, s.backoff_max, round));
                    let until = Instant::now() + wait;
                    while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
                        // Only stop interrupts a backoff; new records must not hammer a
                        // collector that asked us to wait.
                        tokio::time::sleep(
                            until
                                .saturating_duration_since(Instant::now())
                                .min(Duration::from_millis(100)),
                        )
                        .await;
                    }
                }
            }
        }
    }
}

fn dead_letter<O: Outbox>(shared: &Shared<O>, records: &[Vec<u8>]) {
    let moved = shared
        .outbox
        .lock()
        .map_err(|_| io::Error::other("outbox lock poisoned"))
        .and_then(|mut o| o.dead_letter_batch(records));
    match moved {
        Ok(()) => {
            shared
                .counters
                .records_dead_lettered
                .fetch_add(records.len() as u64, Ordering::Relaxed);
        }
        Err(e) => warn(&format!("cannot move a record to the dead letter: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::tests::{heartbeat, payload, report};
    use super::*;
    use std::collections::VecDeque;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use voqa_wire::{AgentRecord, Batch};

    /// An in-memory outbox with the spool's contract.
    #[derive(Default)]
    struct MemOutbox {
        queue: VecDeque<Vec<u8>>,
        acked: Vec<Vec<u8>>,
        dead: Vec<Vec<u8>>,
        /// Records of the last read (what ack/dead letter act on).
        last: usize,
    }

    impl Outbox for MemOutbox {
        fn pending(&self) -> (u64, u64) {
            (
                self.queue.len() as u64,
                self.queue.iter().map(|r| r.len() as u64).sum(),
            )
        }
        fn read_batch(
            &mut self,
            max_records: usize,
            max_bytes: usize,
            out: &mut Vec<Vec<u8>>,
        ) -> io::Result<bool> {
            out.clear();
            let mut bytes = 0;
            for r in self.queue.iter().take(max_records) {
                if !out.is_empty() && bytes + r.len() > max_bytes {
                    break;
                }
                bytes += r.len();
                out.push(r.clone());
            }
            self.last = out.len();
            Ok(!out.is_empty())
        }
        fn ack_batch(&mut self) -> io::Result<()> {
            for _ in 0..std::mem::take(&mut self.last) {
                if let Some(r) = self.queue.pop_front() {
                    self.acked.push(r);
                }
            }
            Ok(())
        }
        fn dead_letter_batch(&mut self, records: &[Vec<u8>]) -> io::Result<()> {
            assert_eq!(
                records.len(),
                self.last,
                "dead letter of the last batch only"
            );
            for _ in 0..std::mem::take(&mut self.last) {
                if let Some(r) = self.queue.pop_front() {
                    self.dead.push(r);
                }
            }
            Ok(())
        }
    }

    /// A scripted collector: answers each request with the next (status, headers) of a
    /// function of the decoded batch; records every batch it answered 2xx.
    struct FakeCollector {
        addr: std::net::SocketAddr,
        got: Arc<Mutex<Vec<(String, Batch)>>>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    type Script = dyn Fn(&str, &Batch) -> (u16, &'static str) + Send + Sync;

    impl FakeCollector {
        fn start(script: Box<Script>) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.set_nonblocking(true).expect("nonblocking");
            let addr = listener.local_addr().expect("addr");
            let got = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let (g, st) = (Arc::clone(&got), Arc::clone(&stop));
            let thread = std::thread::spawn(move || {
                while !st.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let _ = serve_one(conn, &*script, &g);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
            FakeCollector {
                addr,
                got,
                stop,
                thread: Some(thread),
            }
        }
        fn url(&self) -> String {
            format!("http://{}", self.addr)
        }
        fn batches(&self) -> Vec<(String, Batch)> {
            self.got.lock().expect("lock").clone()
        }
    }

    impl Drop for FakeCollector {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// One HTTP/1.1 request per connection (`Connection: close`), enough for reqwest.
    fn serve_one(
        conn: TcpStream,
        script: &Script,
        got: &Mutex<Vec<(String, Batch)>>,
    ) -> io::Result<()> {
        conn.set_nonblocking(false)?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut reader = BufReader::new(conn.try_clone()?);
        let mut len = 0usize;
        let mut token = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let l = line.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if let Some(v) = line.trim_end().strip_prefix("authorization: Bearer ") {
                token = v.to_owned();
            }
            if let Some(v) = line.trim_end().strip_prefix("Authorization: Bearer ") {
                token = v.to_owned();
            }
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut json)?;
        let batch: Batch = serde_json::from_slice(&json).map_err(io::Error::other)?;
        let (status, extra) = script(&token, &batch);
        if (200..300).contains(&status) {
            got.lock().expect("lock").push((token, batch));
        }
        let mut w = conn;
        write!(
            w,
            "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n{extra}\r\n{{}}"
        )?;
        w.flush()
    }

    fn settings(urls: Vec<String>, token: TokenSource) -> ShipperSettings {
        ShipperSettings {
            collectors: urls,
            token,
            ca_file: None,
            client_cert: None,
            client_key: None,
            batch_max_records: 4,
            batch_max_bytes: 1 << 20,
            batch_max_age: Duration::from_millis(50),
            request_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
        }
    }

    fn outbox_with(n: u32) -> (Arc<Mutex<MemOutbox>>, Vec<AgentRecord>) {
        let mut out = MemOutbox::default();
        let mut records = Vec::new();
        for i in 0..n {
            let r = if i % 5 == 4 {
                AgentRecord::Heartbeat(heartbeat("fra-1", i64::from(i)))
            } else {
                AgentRecord::Stream(report("fra-1", i, i64::from(i), i % 2 == 0))
            };
            out.queue.push_back(payload(&r));
            records.push(r);
        }
        (Arc::new(Mutex::new(out)), records)
    }

    fn delivered(c: &FakeCollector) -> Vec<AgentRecord> {
        c.batches()
            .into_iter()
            .flat_map(|(_, b)| {
                // Batch order: reports then heartbeats; compare as sets by record id.
                b.reports
                    .into_iter()
                    .map(AgentRecord::Stream)
                    .chain(b.heartbeats.into_iter().map(AgentRecord::Heartbeat))
                    .chain(b.calls.into_iter().map(AgentRecord::Call))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn ids(records: &[AgentRecord]) -> Vec<String> {
        let mut v: Vec<String> = records.iter().map(AgentRecord::record_id).collect();
        v.sort();
        v
    }

    #[test]
    fn delivers_everything_in_batches_and_acks_only_after_2xx() {
        let c = FakeCollector::start(Box::new(|_, _| (200, "")));
        let (outbox, records) = outbox_with(10);
        let shipper = Shipper::start(
            settings(vec![c.url()], TokenSource::Inline("secret".into())),
            Arc::clone(&outbox),
        )
        .expect("start");
        shipper
            .drain(Some(Duration::from_secs(10)))
            .expect("drained");
        assert_eq!(ids(&delivered(&c)), ids(&records));
        let batches = c.batches();
        assert!(
            batches
                .iter()
                .all(|(t, b)| t == "secret" && b.agent_id == "fra-1")
        );
        assert!(
            batches
                .iter()
                .all(|(_, b)| b.reports.len() + b.heartbeats.len() <= 4)
        );
        assert_eq!(outbox.lock().expect("lock").acked.len(), 10);
        assert_eq!(shipper.counters().records_acked.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn server_errors_are_retried_and_nothing_is_acked_early() {
        let calls = Arc::new(AtomicU64::new(0));
        let c2 = Arc::clone(&calls);
        let c = FakeCollector::start(Box::new(move |_, _| {
            if c2.fetch_add(1, Ordering::SeqCst) < 3 {
                (503, "retry-after: 0\r\n")
            } else {
                (200, "")
            }
        }));
        let (outbox, records) = outbox_with(3);
        let shipper = Shipper::start(
            settings(vec![c.url()], TokenSource::Inline("t".into())),
            Arc::clone(&outbox),
        )
        .expect("start");
        shipper
            .drain(Some(Duration::from_secs(10)))
            .expect("drained");
        assert_eq!(ids(&delivered(&c)), ids(&records));
        assert!(calls.load(Ordering::SeqCst) >= 4);
        assert!(shipper.counters().send_failures.load(Ordering::Relaxed) >= 3);
    }

    #[test]
    fn a_refused_record_is_found_by_bisection_and_dead_lettered_alone() {
        // The collector refuses any batch containing stream 2's report.
        let c = FakeCollector::start(Box::new(|_, b: &Batch| {
            if b.reports
                .iter()
                .any(|r| r.stream_id == format!("{:016x}", 2))
            {
                (422, "")
            } else {
                (200, "")
            }
        }));
        let (outbox, records) = outbox_with(9);
        let shipper = Shipper::start(
            settings(vec![c.url()], TokenSource::Inline("t".into())),
            Arc::clone(&outbox),
        )
        .expect("start");
        shipper
            .drain(Some(Duration::from_secs(10)))
            .expect("drained");
        let ob = outbox.lock().expect("lock");
        assert_eq!(ob.dead.len(), 1);
        assert_eq!(ob.dead[0], payload(&records[2]));
        let mut expected = records.clone();
        expected.remove(2);
        assert_eq!(ids(&delivered(&c)), ids(&expected));
        assert_eq!(
            shipper
                .counters()
                .records_dead_lettered
                .load(Ordering::Relaxed),
            1
        );
    }

    #[test]
    fn a_refused_token_keeps_every_record_until_the_token_is_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "wrong\n").expect("write");
        let c = FakeCollector::start(Box::new(|token, _| {
            if token == "right" {
                (200, "")
            } else {
                (401, "")
            }
        }));
        let (outbox, records) = outbox_with(6);
        let shipper = Shipper::start(
            settings(vec![c.url()], TokenSource::File(token_file.clone())),
            Arc::clone(&outbox),
        )
        .expect("start");
        let err = shipper
            .drain(Some(Duration::from_millis(500)))
            .expect_err("refused token");
        assert_eq!(err.pending, 6);
        assert!(
            matches!(err.state, ShipState::Unauthorized(ref r) if r.contains("401")),
            "{err}"
        );
        assert!(outbox.lock().expect("lock").dead.is_empty());
        std::fs::write(&token_file, "right\n").expect("write");
        shipper.reload_token().expect("reload");
        shipper
            .drain(Some(Duration::from_secs(10)))
            .expect("drained");
        assert_eq!(ids(&delivered(&c)), ids(&records));
    }

    #[test]
    fn fails_over_to_the_next_collector() {
        // A port with nothing listening: connection refused.
        let dead = TcpListener::bind("127.0.0.1:0").expect("bind");
        let dead_url = format!("http://{}", dead.local_addr().expect("addr"));
        drop(dead);
        let c = FakeCollector::start(Box::new(|_, _| (200, "")));
        let (outbox, records) = outbox_with(5);
        let shipper = Shipper::start(
            settings(vec![dead_url, c.url()], TokenSource::Inline("t".into())),
            Arc::clone(&outbox),
        )
        .expect("start");
        shipper
            .drain(Some(Duration::from_secs(10)))
            .expect("drained");
        assert_eq!(ids(&delivered(&c)), ids(&records));
    }

    #[test]
    fn classification_of_answers() {
        assert_eq!(classify(204, None, ""), Outcome::Acked);
        assert!(matches!(
            classify(401, None, "no"),
            Outcome::Unauthorized(_)
        ));
        assert!(matches!(classify(403, None, ""), Outcome::Unauthorized(_)));
        assert_eq!(classify(413, None, ""), Outcome::TooLarge);
        for s in [404, 408, 429, 500, 502, 503, 301] {
            assert!(
                matches!(classify(s, None, ""), Outcome::Retry { .. }),
                "{s}"
            );
        }
        for s in [400, 409, 415, 422] {
            assert!(matches!(classify(s, None, ""), Outcome::Refused(_)), "{s}");
        }
        let mut j = Jitter::new();
        for attempt in 0..40 {
            let d = j.backoff(Duration::from_millis(500), Duration::from_secs(60), attempt);
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(60));
        }
        assert_eq!(
            ingest_url("https://c:8443/"),
            "https://c:8443/api/v1/ingest"
        );
    }
}
