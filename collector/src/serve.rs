//! Running the collector's HTTP API on a listener, in-process: the binary's `serve` command,
//! the demo and the tests all start it through [`Server::start`] and get a [`ServerHandle`]
//! (its address, its TLS reload, its end).
//!
//! TLS is terminated here with rustls on the ring provider when the configuration names a
//! certificate and key (PEM files); without them the API is plain HTTP, meant to sit behind a
//! reverse proxy that terminates TLS. Handshakes run in their own tasks, each bounded in time
//! (`tls_handshake_timeout_s`) and at most `MAX_HANDSHAKES` at once, so a client that never
//! finishes one holds nothing for long and cannot stall other clients. [`TlsReloader`] re-reads
//! the files (the binary calls it on SIGHUP): new connections get the new certificate,
//! established ones keep theirs, and a reload that fails keeps the old pair. This module owns
//! sockets and TLS; it must not know routes or storage beyond handing both to `api`.
//!
//! Every connection is bounded (see [`limits`]): at most `max_connections` at once (beyond,
//! a new one is closed at once), each with header, keep-alive and body deadlines. On shutdown
//! the listener closes, idle connections close, requests in progress get until
//! `shutdown_timeout_s` to finish, and whatever is left then is dropped.

pub mod limits;
pub mod watchdog;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::api::{self, AppState};
use crate::config::CollectorConfig;
use crate::store::Store;

pub use limits::{BodyError, Limits, read_body};
use limits::{Run, Shared};

/// TLS handshakes in progress at once; connections beyond are closed at once (a client
/// retries) rather than queued without bound.
pub const MAX_HANDSHAKES: usize = 256;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a certificate and key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls_cert and tls_key go together: set both or neither")]
    Incomplete,
    #[error("certificate {path}: {message}")]
    Certificate { path: PathBuf, message: String },
    #[error("private key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("certificate {cert} and key {key} do not make a TLS configuration: {message}")]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

/// The PEM files of a server certificate (chain, leaf first) and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The configured pair: `None` for plain HTTP; an error when only one of them is set.
    pub fn from_config(config: &CollectorConfig) -> Result<Option<TlsFiles>, TlsError> {
        match (&config.server.tls_cert, &config.server.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })),
            _ => Err(TlsError::Incomplete),
        }
    }

    /// Reads and checks both files: a chain of at least one certificate, one private key
    /// (PKCS#8, PKCS#1 or SEC1) that belongs to the leaf.
    pub fn load(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let certificate = |message: String| TlsError::Certificate {
            path: self.cert.clone(),
            message,
        };
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| certificate(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| certificate(e.to_string()))?;
        if chain.is_empty() {
            return Err(certificate("no CERTIFICATE block in the PEM file".into()));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| TlsError::Key {
            path: self.key.clone(),
            message: match e {
                rustls_pki_types::pem::Error::NoItemsFound => {
                    "no PRIVATE KEY block in the PEM file".to_string()
                }
                other => other.to_string(),
            },
        })?;
        let pair = |message: String| TlsError::Pair {
            cert: self.cert.clone(),
            key: self.key.clone(),
            message,
        };
        // ring, deliberately: the project allows no aws-lc (nor OpenSSL) in its tree, and
        // rustls marks ring's provider deprecated only for lacking post-quantum key exchange.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| pair(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| pair(e.to_string()))?;
        // Connections are served as HTTP/1.1 only (see `limits`).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The TLS configuration new connections use, and how to replace it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TlsReloader {
    files: TlsFiles,
    current: Arc<RwLock<Arc<rustls::ServerConfig>>>,
}

impl TlsReloader {
    fn new(files: TlsFiles) -> Result<Self, TlsError> {
        let config = files.load()?;
        Ok(TlsReloader {
            files,
            current: Arc::new(RwLock::new(config)),
        })
    }

    /// Re-reads the certificate and key; on success new connections use them, on failure
    /// the previous pair stays in use and the reason is returned.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = self.files.load()?;
        // A poisoned lock only means a panic elsewhere while swapping an Arc: the value
        // inside is still a whole configuration.
        let mut current = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = config;
        Ok(())
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    fn config(&self) -> Arc<rustls::ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The client address of a connection, for handlers (`ConnectInfo<PeerAddr>`), whatever the
/// transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// A connection, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Starts the collector's API; see [`Server::start`].
#[derive(Debug)]
pub struct Server;

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    tls: Option<TlsReloader>,
    state: AppState,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Serves the API for `store` on `listener` until `shutdown` resolves, with TLS when the
    /// configuration names a certificate and key (which are loaded now: a bad file is an
    /// error here, before anything is served). Registers the scopes of subnet-narrowed
    /// customers from now on, as every collector start does. Returns once serving.
    pub async fn start(
        config: CollectorConfig,
        store: Store,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<ServerHandle, ServeError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(ServeError::Config(problems.join("; ")));
        }
        let tls = TlsFiles::from_config(&config)?
            .map(TlsReloader::new)
            .transpose()?;
        let state = AppState {
            store,
            config: config.into(),
            metrics: Arc::default(),
        };
        Self::start_with_state(state, tls, listener, shutdown).await
    }

    /// Like [`Server::start`] with a prepared state (shared metrics, a config already behind
    /// an `Arc`) and, optionally, TLS.
    pub async fn start_with_state(
        state: AppState,
        tls: Option<TlsReloader>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<ServerHandle, ServeError> {
        let local_addr = listener.local_addr()?;
        let config = state.config.current();
        let handshake_timeout = Duration::from_secs(config.server.tls_handshake_timeout_s);
        let limits = Arc::new(Limits::from_config(&config.server));
        crate::facts::register_scopes(&state.store, &config.customers, crate::now_ns()).await;
        let (run, watch_run) = watch::channel(Run::Serving);
        let shared = Shared {
            app: api::router(state.clone()),
            ingests: Arc::new(Semaphore::new(limits.max_concurrent_ingests)),
            limits,
            run: watch_run,
        };
        let task = tokio::spawn(accept_loop(
            listener,
            tls.clone(),
            handshake_timeout,
            shared,
            run,
            shutdown,
        ));
        Ok(ServerHandle {
            local_addr,
            tls,
            state,
            task,
        })
    }
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https://ADDR` or `http://ADDR`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// The TLS reload of this server, if it serves TLS.
    pub fn tls(&self) -> Option<&TlsReloader> {
        self.tls.as_ref()
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// The metrics the API serves (the alert engine adds its own to them).
    pub fn metrics(&self) -> Arc<crate::api::metrics::Metrics> {
        Arc::clone(&self.state.metrics)
    }

    /// The configuration in force now (SIGHUP may replace its customers).
    pub fn config(&self) -> Arc<CollectorConfig> {
        self.state.config.current()
    }

    /// The live configuration, to reload it (see [`reload_on_sighup`]).
    pub fn live_config(&self) -> &crate::config::LiveConfig {
        &self.state.config
    }

    /// Waits until the server has stopped: after its shutdown future resolved, once open
    /// requests finished or `shutdown_timeout_s` later, whichever comes first.
    pub async fn wait(self) -> std::io::Result<()> {
        self.task
            .await
            .map_err(|e| std::io::Error::other(format!("server task: {e}")))?
    }
}

/// Accepts TCP connections and serves each in its own task (after its TLS handshake when
/// serving TLS) until `shutdown` resolves; then stops accepting, drains, and returns once every
/// connection has closed or the shutdown deadline has dropped it.
async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsReloader>,
    handshake_timeout: Duration,
    shared: Shared,
    run: watch::Sender<Run>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max_connections = shared.limits.max_connections;
    let connections = Arc::new(Semaphore::new(max_connections));
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let shutdown_timeout = shared.limits.shutdown_timeout;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait a little instead of spinning.
                tracing::error!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Too many connections: close this one now (the client retries) rather than queue
        // it; idle ones are reaped by their deadlines, which frees room.
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            drop(tcp);
            continue;
        };
        let peer = PeerAddr(peer);
        let shared = shared.clone();
        let Some(tls) = &tls else {
            tokio::spawn(async move {
                let _permit = permit;
                limits::serve_connection(tcp, peer, shared).await;
            });
            continue;
        };
        let Ok(handshake) = handshakes.clone().try_acquire_owned() else {
            // Too many handshakes in flight: close this one now rather than queue it.
            drop(tcp);
            continue;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
        tokio::spawn(serve_tls(
            acceptor,
            tcp,
            peer,
            shared,
            handshake_timeout,
            handshake,
            permit,
        ));
    }
    drop(listener);
    tracing::info!(
        "shutting down: draining {} connection(s), at most {} s",
        max_connections.saturating_sub(connections.available_permits()),
        shutdown_timeout.as_secs()
    );
    // Idle connections close now; busy ones after their response.
    let _ = run.send(Run::Draining);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(shutdown_timeout, connections.acquire_many(all))
        .await
        .is_err()
    {
        tracing::info!(
            "shutdown deadline ({} s) passed: dropping {} connection(s)",
            shutdown_timeout.as_secs(),
            max_connections.saturating_sub(connections.available_permits())
        );
        let _ = run.send(Run::Stopped);
        // Each connection's task returns as soon as it sees the word; this only waits for
        // them to be scheduled, bounded in case one is stuck in a blocking call.
        let _ = tokio::time::timeout(Duration::from_secs(5), connections.acquire_many(all)).await;
    }
    Ok(())
}

/// Handshakes one TLS connection within `timeout`, then serves it. A failed or unfinished
/// handshake, or a server that stops meanwhile, just closes the connection.
async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: PeerAddr,
    shared: Shared,
    timeout: Duration,
    handshake: OwnedSemaphorePermit,
    _connection: OwnedSemaphorePermit,
) {
    let mut run = shared.run.clone();
    let stopping = async move {
        // Any word from the server during a handshake means it is shutting down.
        let _ = run.changed().await;
    };
    let stream = tokio::select! {
        handshaken = tokio::time::timeout(timeout, acceptor.accept(tcp)) => handshaken,
        () = stopping => return,
    };
    drop(handshake);
    if let Ok(Ok(stream)) = stream {
        limits::serve_connection(stream, peer, shared).await;
    }
}

/// How SIGHUP re-reads the configuration: the binary's own means (its file, with the command
/// line's overrides applied again). `Err` is the reason, logged; the running one is kept.
pub type ConfigSource = Box<dyn Fn() -> Result<CollectorConfig, String> + Send + Sync>;

/// On every SIGHUP (`systemctl reload`): re-reads the configuration through `source`, if any,
/// and applies what can change live ([`crate::config::LiveConfig::reload`]: the customers and
/// their commitments; subnet customers' scopes are registered from now); then re-reads the
/// TLS files, if serving TLS. Each outcome is logged; a failure keeps what was running. Runs
/// until the process ends.
#[cfg(unix)]
pub fn reload_on_sighup(
    handle: &ServerHandle,
    source: Option<ConfigSource>,
) -> impl Future<Output = ()> + Send + 'static {
    let tls = handle.tls().cloned();
    let live = handle.live_config().clone();
    let store = handle.store().clone();
    // Registered now, not when the task first runs: SIGHUP's default action ends the process,
    // and `systemctl reload` may come as soon as READY=1 is sent (the caller spawns this before
    // it says it is listening), while a spawned task may not have run yet on a busy machine.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    async move {
        let mut hangups = match hangups {
            Ok(hangups) => hangups,
            Err(e) => {
                tracing::error!("cannot watch SIGHUP, reload disabled: {e}");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            match &source {
                Some(source) => reload_config(source, &live, &store).await,
                None => tracing::info!("SIGHUP: no --config file, no configuration to re-read"),
            }
            if let Some(tls) = &tls {
                match tls.reload() {
                    Ok(()) => tracing::info!(
                        "SIGHUP: reloaded TLS certificate {} and key {}",
                        tls.files().cert.display(),
                        tls.files().key.display()
                    ),
                    Err(e) => tracing::warn!(
                        "SIGHUP: TLS reload failed, keeping the previous certificate: {e}"
                    ),
                }
            }
        }
    }
}

async fn reload_config(source: &ConfigSource, live: &crate::config::LiveConfig, store: &Store) {
    let reloaded = source().and_then(|new| live.reload(new));
    match reloaded {
        Ok(done) => {
            crate::facts::register_scopes(store, &live.current().customers, crate::now_ns()).await;
            tracing::info!(
                customers = done.customers,
                alert_rules = done.alert_rules,
                "SIGHUP: configuration reloaded: {} customer(s) with their \
                 commitments in force, {} alert rule(s)",
                done.customers,
                done.alert_rules
            );
            if !done.restart_needed.is_empty() {
                tracing::warn!(
                    keys = %done.restart_needed.join(","),
                    "SIGHUP: changed {} take effect at the next restart; the \
                     running values stay in use until then",
                    done.restart_needed.join(", ")
                );
            }
        }
        Err(e) => {
            tracing::warn!("SIGHUP: configuration not reloaded, keeping the running one: {e}")
        }
    }
}

/// Hourly: deletes per-stream rows older than `keep` and refreshes planner statistics.
pub async fn retention_job(store: Store, keep: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let before =
            crate::now_ns().saturating_sub(i64::try_from(keep.as_nanos()).unwrap_or(i64::MAX));
        match store.delete_reports_before(before).await {
            Ok(n) if n > 0 => tracing::info!(rows = n, "retention deleted {n} per-stream rows"),
            Ok(_) => {}
            Err(e) => tracing::error!("retention failed: {e}"),
        }
        // Fresh planner statistics keep the SLA queries on their indexes as tables grow.
        if let Err(e) = store.refresh_statistics().await {
            tracing::error!("refreshing planner statistics failed: {e}");
        }
    }
}
