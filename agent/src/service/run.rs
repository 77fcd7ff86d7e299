//! `voqa-agent run`: wiring only. It starts one capture worker thread per (interface, fanout
//! member) — each running the pipeline's worker loop over its own ring (or pnet channel),
//! analyzer and counters, sharing only the SDP registry — plus the sink thread, a wall-clock
//! heartbeat thread and the local Prometheus endpoint, and handles signals.
//!
//! Nothing here touches packets or measures anything: that is `pipeline`, `streams` and
//! `quality`. Packet time drives every report; the wall clock only stamps heartbeats here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use voqa_wire::AgentRecord;

use super::config::{AgentConfig, Backend, ConfigError, SinkSpec};
use super::metrics;
use super::watchdog::{self, ProgressWatch};
use crate::capture::afpacket::{Fanout, PacketRing, RingConfig};
use crate::host::HostSampler;
use crate::pipeline::calljoin::{CallJoin, JoinSettings};
use crate::pipeline::live::{PnetSource, RingSource, wall_ns};
use crate::pipeline::output::{
    CallRecords, Queued, RecordContext, RecordOutput, RecordSender, spawn_sink,
};
use crate::pipeline::{PipelineStats, Source, Worker, WorkerStats};
use crate::ship::{JsonLinesSink, ReportSink};
use crate::streams::registry::{SdpRegistry, SharedRegistry};
use crate::streams::{Analyzer, AnalyzerConfig};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    #[error("capture worker {worker} on {interface}: {message}")]
    Capture {
        worker: u32,
        interface: String,
        message: String,
    },
    // Causes are part of the messages, not also `source()`: printed with its chain, an error
    // says each reason once.
    #[error("sink {path}: {error}")]
    Sink {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("metrics endpoint {addr}: {error}")]
    Metrics { addr: String, error: std::io::Error },
    #[error(transparent)]
    Key(#[from] ConfigError),
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("delivery to the collector: {0}")]
    Delivery(crate::ship::delivery::DeliveryError),
}

/// Not `#[from]`: that would also make the error its `source()`, and the message already
/// quotes it.
impl From<crate::ship::delivery::DeliveryError> for RunError {
    fn from(error: crate::ship::delivery::DeliveryError) -> Self {
        RunError::Delivery(error)
    }
}

/// Progress of `run`, through the one logger (`voqa_service::log`): journald fields or plain lines.
fn log(msg: &str) {
    tracing::info!("{msg}");
}

/// Something went wrong that the agent survives.
fn warn(msg: &str) {
    tracing::warn!("{msg}");
}

/// The JSON-lines sink `output.sink` names (file opened for appending, or stdout).
pub fn open_sink(spec: &SinkSpec) -> Result<Box<dyn ReportSink>, RunError> {
    Ok(match spec {
        SinkSpec::Stdout => Box::new(JsonLinesSink::new(std::io::stdout())),
        SinkSpec::File(path) => Box::new(JsonLinesSink::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|error| RunError::Sink {
                    path: path.clone(),
                    error,
                })?,
        )),
    })
}

fn workers_per_interface(cfg: &AgentConfig) -> usize {
    match (cfg.capture.backend, cfg.capture.workers) {
        // pnet's channel has no fanout we rely on: one reader per interface.
        (Backend::Pnet, _) => 1,
        (_, 0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        (_, n) => n,
    }
}

/// Everything a worker thread needs, cloned per worker.
#[derive(Clone)]
struct WorkerContext {
    analyzer: AnalyzerConfig,
    registry: SharedRegistry,
    records: RecordContext,
    tx: RecordSender,
    stop: Arc<AtomicBool>,
    shared: Arc<PipelineStats>,
    stats_interval: Duration,
    /// Capture workers in all (each worker's output tells the call join which one it is).
    workers: u32,
}

/// What `run` gets besides its configuration: systemd notifications and a test hook.
#[derive(Debug)]
pub struct RunOptions {
    /// `READY=1` once every capture socket is open, `STATUS=` lines, and `WATCHDOG=1` while
    /// every capture worker makes progress (see `watchdog`).
    pub notifier: voqa_service::notify::Notifier,
    /// TEST ONLY (`run --test-stall-worker-while PATH`, hidden): while this file exists, capture
    /// worker 0 stops making progress, as a wedged worker would. The sd_notify test uses it to
    /// check that the watchdog is then no longer fed.
    pub stall_worker_while: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            notifier: voqa_service::notify::Notifier::disabled(),
            stall_worker_while: None,
        }
    }
}

/// Runs until SIGINT/SIGTERM (or `stop` is set), then flushes every stream's final report.
pub fn run(
    cfg: AgentConfig,
    config_path: Option<PathBuf>,
    stop: Arc<AtomicBool>,
) -> Result<(), RunError> {
    run_with(cfg, config_path, stop, RunOptions::default())
}

/// [`run`] with systemd notifications and test hooks.
pub fn run_with(
    cfg: AgentConfig,
    config_path: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    options: RunOptions,
) -> Result<(), RunError> {
    let notifier = &options.notifier;
    let problems = cfg.problems();
    if !problems.is_empty() {
        return Err(RunError::Config(problems));
    }
    let reload = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(RunError::Signal)?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .map_err(RunError::Signal)?;

    let agent_id: Arc<str> = cfg
        .agent_id
        .clone()
        .unwrap_or_else(crate::host::hostname)
        .into();
    let privacy = cfg.pseudonymizer()?;
    let per_iface = workers_per_interface(&cfg);
    let mut worker_stats = Vec::new();
    for iface in &cfg.capture.interfaces {
        for _ in 0..per_iface {
            worker_stats.push(Arc::new(WorkerStats::new(iface.clone())));
        }
    }
    let shared = Arc::new(PipelineStats::with_workers(worker_stats));

    // Sink first, so a bad path (or spool, or token) fails before capture starts.
    let (writer, delivery, destination) = if cfg.ship.enabled() {
        let (writer, delivery) = start_delivery(&cfg)?;
        let dest = format!(
            "{} (spool {})",
            cfg.ship.collectors.join(", "),
            delivery.spool_dir.display()
        );
        (writer, Some(Arc::new(delivery)), dest)
    } else {
        (open_sink(&cfg.sink())?, None, cfg.output.sink.clone())
    };
    let records = RecordContext {
        agent_id: Arc::clone(&agent_id),
        privacy,
        jitter_buffer: cfg.jitter_buffer().to_string().into(),
    };
    let analyzer = cfg.analyzer_config();
    let workers = shared.workers.len() as u32;
    // Calls of every worker meet in the sink thread's join: the SIP of a call and its media
    // may reach different workers (the kernel's fanout is by flow).
    let calls = CallRecords {
        ctx: records.clone(),
        join: CallJoin::new(JoinSettings::for_analyzer(&analyzer, workers)),
    };
    let (tx, sink) = spawn_sink(writer, Arc::clone(&shared), calls).map_err(RunError::Thread)?;

    let metrics_thread = if cfg.metrics.listen.is_empty() {
        None
    } else {
        Some(
            metrics::spawn(
                &cfg.metrics.listen,
                Arc::clone(&shared),
                delivery.clone(),
                Arc::clone(&stop),
            )
            .map_err(|error| RunError::Metrics {
                addr: cfg.metrics.listen.clone(),
                error,
            })?,
        )
    };

    let registry: SharedRegistry = Arc::new(RwLock::new(SdpRegistry::new(
        AnalyzerConfig::default().max_announcements,
    )));
    let ctx = WorkerContext {
        analyzer,
        registry,
        records,
        workers,
        tx: tx.clone(),
        stop: Arc::clone(&stop),
        shared: Arc::clone(&shared),
        stats_interval: Duration::from_secs(cfg.capture.stats_interval_s),
    };

    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), RunError>>();
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    let fanout_base = (std::process::id() & 0x7fff) as u16;
    for (n, stats) in shared.workers.iter().enumerate() {
        let iface_index = cfg
            .capture
            .interfaces
            .iter()
            .position(|i| *i == stats.interface)
            .unwrap_or(0);
        let ring = RingConfig {
            interface: stats.interface.clone(),
            block_size: cfg.capture.block_size,
            block_count: cfg.capture.block_count,
            retire_timeout_ms: cfg.capture.retire_timeout_ms,
            snaplen: cfg.capture.snaplen,
            fanout: Some(Fanout {
                group_id: fanout_base.wrapping_add(iface_index as u16),
                defrag: true,
            }),
            promiscuous: cfg.capture.promiscuous,
            // On loopback every packet is seen twice (outgoing and incoming); on a real NIC the
            // media server's own outgoing media must be measured too.
            ignore_outgoing: is_loopback(&stats.interface),
            sip_ports: cfg.analysis.sip_ports.clone(),
            ..RingConfig::default()
        };
        let ctx = ctx.clone();
        let stats = Arc::clone(stats);
        let ready = ready_tx.clone();
        let backend = cfg.capture.backend;
        let promiscuous = cfg.capture.promiscuous;
        let stall = (n == 0)
            .then(|| options.stall_worker_while.clone())
            .flatten();
        let handle = std::thread::Builder::new()
            .name(format!("voqa-capture-{n}"))
            .spawn(move || {
                let opened = match backend {
                    Backend::Afpacket => open_ring(&ring, ctx.stats_interval).map(Capture::Ring),
                    Backend::Pnet => open_pnet(&stats.interface, promiscuous).map(Capture::Pnet),
                };
                match opened {
                    Ok(Capture::Ring(source)) => {
                        let _ = ready.send(Ok(()));
                        let mut source = Stallable::new(source, stall, Arc::clone(&ctx.stop));
                        capture_worker(n as u32, &mut source, &ctx, stats);
                    }
                    Ok(Capture::Pnet(source)) => {
                        let _ = ready.send(Ok(()));
                        let mut source = Stallable::new(source, stall, Arc::clone(&ctx.stop));
                        capture_worker(n as u32, &mut source, &ctx, stats);
                    }
                    Err(message) => {
                        let _ = ready.send(Err(RunError::Capture {
                            worker: n as u32,
                            interface: stats.interface.clone(),
                            message,
                        }));
                    }
                }
            })
            .map_err(RunError::Thread)?;
        workers.push(handle);
    }
    drop(ready_tx);
    let mut startup_error = None;
    for _ in 0..workers.len() {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                startup_error.get_or_insert(e);
            }
            Err(_) => break,
        }
    }
    if let Some(e) = startup_error {
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            let _ = w.join();
        }
        drop(ctx);
        drop(tx);
        let _ = sink.join();
        return Err(e);
    }
    let capturing = format!(
        "capturing on {} with {} worker(s) per interface; reports every {} s to {}",
        cfg.capture.interfaces.join(", "),
        per_iface,
        cfg.analysis.interval_s,
        destination
    );
    log(&capturing);
    notify(notifier.ready(&capturing));

    let watch = Arc::new(Mutex::new(cfg.health.watch_processes.clone()));
    // The heartbeat thread stops only after the workers: its last heartbeat then holds their
    // final counters (kernel drops read at shutdown included), never fewer drops than the
    // final stream reports carry.
    let heartbeat_stop = Arc::new(AtomicBool::new(false));
    let heartbeat = {
        let tx = tx.clone();
        let shared = Arc::clone(&shared);
        let stop = Arc::clone(&heartbeat_stop);
        let watch = Arc::clone(&watch);
        let every = Duration::from_secs(cfg.health.heartbeat_interval_s);
        let agent_id = Arc::clone(&agent_id);
        std::thread::Builder::new()
            .name("voqa-heartbeat".into())
            .spawn(move || heartbeat_loop(&agent_id, every, &watch, &shared, &tx, &stop))
            .map_err(RunError::Thread)?
    };

    let mut watchdog = notifier.watchdog().map(|period| {
        let passes = loop_passes(&shared);
        let now = Instant::now();
        FeedState {
            watch: ProgressWatch::new(&passes, watchdog::stall_after(period), now),
            every: period / 2,
            next_feed: now,
            stalled: false,
        }
    });
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(w) = &mut watchdog {
            w.tick(&shared, notifier, &capturing);
        }
        if reload.swap(false, Ordering::SeqCst) {
            reload_config(config_path.as_deref(), &cfg, &watch);
            if let Some(d) = &delivery {
                match d.reload_token() {
                    Ok(()) => log("SIGHUP: token reloaded"),
                    Err(e) => warn(&format!("SIGHUP: keeping the old token: {e}")),
                }
            }
        }
    }
    log("stopping: flushing final reports");
    notify(notifier.stopping("stopping: flushing final reports"));
    for w in workers {
        let _ = w.join();
    }
    heartbeat_stop.store(true, Ordering::SeqCst);
    let _ = heartbeat.join();
    drop(ctx);
    drop(tx);
    if let Ok(end) = sink.join()
        && let Err(e) = end.flush
    {
        warn(&format!("sink: final flush failed: {e}"));
    }
    if let Some(d) = &delivery {
        let grace = Duration::from_secs(cfg.ship.shutdown_grace_s);
        match d.drain(Some(grace)) {
            Ok(()) => log("every record delivered"),
            Err(e) => log(&format!(
                "stopping with records not yet delivered ({e}); they stay in the spool for the \
                 next start"
            )),
        }
    }
    if let Some(m) = metrics_thread {
        let _ = m.join();
    }
    drop(delivery);
    Ok(())
}

/// Opens the spool and starts the shipper for `[ship]`.
fn start_delivery(
    cfg: &AgentConfig,
) -> Result<(Box<dyn ReportSink>, crate::ship::delivery::Delivery), RunError> {
    use crate::ship::delivery::{Delivery, spool_config};
    let token = cfg
        .ship
        .token_source(None)
        .map_err(|e| RunError::Config(vec![e]))?;
    let dir = cfg
        .ship
        .spool_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(crate::ship::config::DEFAULT_SPOOL_DIR));
    let spool = spool_config(&cfg.ship, dir)?;
    let settings = crate::ship::http::ShipperSettings::from_config(&cfg.ship, token);
    let (sink, delivery) = Delivery::start(settings, spool)?;
    let r = &delivery.recovery;
    if r.pending_records > 0 || r.corrupt_records > 0 || r.torn_tails_cut > 0 {
        log(&format!(
            "spool {}: {} record(s) from before to deliver; {} corrupt record(s) skipped, {} torn \
             tail(s) cut ({} bytes)",
            delivery.spool_dir.display(),
            r.pending_records,
            r.corrupt_records,
            r.torn_tails_cut,
            r.torn_bytes_cut
        ));
    }
    Ok((sink, delivery))
}

/// A notification that could not be sent is said once per failure, never fatal.
fn notify(result: Result<(), voqa_service::notify::NotifyError>) {
    if let Err(e) = result {
        log(&format!("systemd notification: {e}"));
    }
}

fn loop_passes(shared: &PipelineStats) -> Vec<u64> {
    shared
        .workers
        .iter()
        .map(|w| w.loop_passes.load(Ordering::Relaxed))
        .collect()
}

/// The main loop's side of the systemd watchdog.
struct FeedState {
    watch: ProgressWatch,
    every: Duration,
    next_feed: Instant,
    stalled: bool,
}

impl FeedState {
    /// Feeds the watchdog every half period while no worker is stalled; says in `STATUS=` (and
    /// the log) when one stalls and when all progress again.
    fn tick(
        &mut self,
        shared: &PipelineStats,
        notifier: &voqa_service::notify::Notifier,
        running: &str,
    ) {
        let now = Instant::now();
        match self.watch.observe(&loop_passes(shared), now) {
            Some(stall) => {
                if !self.stalled {
                    let iface = shared
                        .workers
                        .get(stall.worker)
                        .map_or("?", |w| w.interface.as_str());
                    let text = format!(
                        "capture worker {} on {iface} made no progress for {:.1} s: watchdog not \
                         fed",
                        stall.worker,
                        stall.silent.as_secs_f64()
                    );
                    log(&text);
                    notify(notifier.status(&text));
                    self.stalled = true;
                }
            }
            None => {
                if self.stalled {
                    log("every capture worker makes progress again: watchdog fed");
                    notify(notifier.status(running));
                    self.stalled = false;
                }
                if now >= self.next_feed {
                    notify(notifier.watchdog_alive());
                    self.next_feed = now + self.every;
                }
            }
        }
    }
}

/// A source that stops making progress while a file exists: the hidden test hook of
/// [`RunOptions::stall_worker_while`]. Without a file it only forwards.
struct Stallable<S> {
    inner: S,
    while_exists: Option<PathBuf>,
    stop: Arc<AtomicBool>,
}

impl<S: Source> Stallable<S> {
    fn new(inner: S, while_exists: Option<PathBuf>, stop: Arc<AtomicBool>) -> Self {
        Stallable {
            inner,
            while_exists,
            stop,
        }
    }
}

impl<S: Source> Source for Stallable<S> {
    fn next<F: FnMut(crate::capture::Frame<'_>)>(
        &mut self,
        wait: crate::pipeline::Wait,
        on_frame: F,
    ) -> Result<crate::pipeline::Next, crate::pipeline::SourceError> {
        if let Some(path) = &self.while_exists {
            // Wedged, as a worker stuck in a syscall would be; only stop ends it.
            while path.exists() && !self.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.inner.next(wait, on_frame)
    }

    fn capture_counters(&mut self, now: bool) -> Option<crate::capture::afpacket::KernelCounters> {
        self.inner.capture_counters(now)
    }

    fn close_time(&self) -> Option<i64> {
        self.inner.close_time()
    }
}

/// The capture a worker opened.
enum Capture {
    Ring(RingSource),
    Pnet(PnetSource),
}

fn open_ring(cfg: &RingConfig, stats_interval: Duration) -> Result<RingSource, String> {
    let ring = PacketRing::open(cfg).map_err(|e| e.to_string())?;
    // The kernel ignores PACKET_IGNORE_OUTGOING for fanout members, so loopback's outgoing
    // copies are dropped by the source (each packet would otherwise be seen twice).
    Ok(RingSource::new(ring, cfg.ignore_outgoing, stats_interval))
}

/// The portable fallback: pnet's datalink channel (one copy and syscall per packet, and
/// user-space receive timestamps, so jitter is slightly overstated). No kernel drop counters.
fn open_pnet(interface: &str, promiscuous: bool) -> Result<PnetSource, String> {
    let iface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == interface)
        .ok_or_else(|| "no such interface".to_owned())?;
    let config = pnet_datalink::Config {
        read_timeout: Some(Duration::from_millis(100)),
        promiscuous,
        ..pnet_datalink::Config::default()
    };
    match pnet_datalink::channel(&iface, config) {
        Ok(pnet_datalink::Channel::Ethernet(_, rx)) => Ok(PnetSource::new(rx)),
        Ok(_) => Err("unsupported channel type".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// One capture worker: the pipeline's loop until stop, then every stream closed at the
/// source's close time (the wall clock).
fn capture_worker<S: Source>(
    worker: u32,
    source: &mut S,
    ctx: &WorkerContext,
    stats: Arc<WorkerStats>,
) {
    let label = format!("worker {worker} on {}", stats.interface);
    let mut out = RecordOutput::new(ctx.records.clone(), ctx.tx.clone(), Arc::clone(&ctx.shared))
        .with_label(label)
        .with_worker(worker, ctx.workers);
    let analyzer = Analyzer::with_registry(ctx.analyzer.clone(), Arc::clone(&ctx.registry));
    let mut w = Worker::new(analyzer).with_stats(stats);
    w.run(source, &mut out, &ctx.stop);
    let end = source
        .close_time()
        .unwrap_or_else(|| w.analyzer().packet_time());
    w.close(end, &mut out);
}

fn is_loopback(iface: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/type")).is_ok_and(|t| t.trim() == "772")
}

/// SIGHUP: re-read the file; apply what can change without reopening capture.
fn reload_config(
    path: Option<&std::path::Path>,
    running: &AgentConfig,
    watch: &Mutex<Vec<String>>,
) {
    let Some(path) = path else {
        log("SIGHUP: no config file to re-read");
        return;
    };
    match AgentConfig::load(path, true) {
        Ok(new) if new.problems().is_empty() => {
            if let Ok(mut w) = watch.lock() {
                *w = new.health.watch_processes.clone();
            }
            if new.capture != running.capture
                || new.analysis != running.analysis
                || new.output != running.output
            {
                log(
                    "SIGHUP: watched processes reloaded; capture, analysis and output changes need a restart",
                );
            } else {
                log("SIGHUP: configuration reloaded");
            }
        }
        Ok(new) => warn(&format!(
            "SIGHUP: keeping the running configuration: {}",
            new.problems().join("; ")
        )),
        Err(e) => warn(&format!("SIGHUP: keeping the running configuration: {e}")),
    }
}

/// Live heartbeats: every `every` of wall time, and once more when `stop` is set (after the
/// workers have finished, so that last one carries their final counters).
fn heartbeat_loop(
    agent_id: &str,
    every: Duration,
    watch: &Mutex<Vec<String>>,
    shared: &PipelineStats,
    tx: &RecordSender,
    stop: &AtomicBool,
) {
    let current_watch = || watch.lock().map(|w| w.clone()).unwrap_or_default();
    let mut watching = current_watch();
    let mut sampler = HostSampler::new(watching.clone());
    let mut next = Instant::now() + every;
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if stopping || Instant::now() >= next {
            let now_watch = current_watch();
            if now_watch != watching {
                watching = now_watch;
                sampler = HostSampler::new(watching.clone());
            }
            let (tracked, evicted) = shared.streams();
            let hb = sampler.sample(
                agent_id,
                voqa_wire::Timestamp::from_ns(wall_ns()),
                shared.worker_counters(),
                tracked,
                evicted,
            );
            // The sink thread counts what its sink accepts; here only what cannot be queued.
            if tx
                .send(Box::new(Queued::Record(AgentRecord::Heartbeat(hb))))
                .is_err()
            {
                PipelineStats::add(&shared.heartbeats_dropped, 1);
            }
            next += every;
            if stopping {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
