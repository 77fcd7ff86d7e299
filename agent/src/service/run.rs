//! `voqa-agent run`: one capture worker thread per (interface, fanout member), each owning its
//! ring, its `Analyzer` and its counters (shared-nothing; only the SDP registry is shared), a
//! sink thread writing JSON lines, a heartbeat thread, and a local Prometheus endpoint.
//!
//! Packet time drives every report; the wall clock only advances quiet workers (so streams
//! that stop sending still report and end) and stamps heartbeats.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use voqa_wire::{AgentRecord, WorkerCounters};

use super::config::{AgentConfig, Backend, SinkSpec};
use super::metrics;
use crate::capture::afpacket::{Fanout, PacketRing, RingConfig};
use crate::host::HostSampler;
use crate::report::live::{JitterHistogramEncoder, stream_report};
use crate::ship::{JsonLinesSink, ReportSink};
use crate::streams::privacy::Pseudonymizer;
use crate::streams::registry::{SdpRegistry, SharedRegistry};
use crate::streams::{Analyzer, AnalyzerConfig};

/// Records buffered between the workers and the sink.
/// Boxed, so the channel's preallocated slots cost 8 bytes each at idle.
const CHANNEL_CAPACITY: usize = 16_384;

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
    #[error("sink {path}: {source}")]
    Sink {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("metrics endpoint {addr}: {source}")]
    Metrics {
        addr: String,
        source: std::io::Error,
    },
    #[error("pseudonym key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
}

/// Counters one worker publishes for heartbeats and metrics (written by it alone).
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub interface: String,
    pub kernel_packets: AtomicU64,
    pub kernel_drops: AtomicU64,
    pub kernel_freezes: AtomicU64,
    pub frames: AtomicU64,
    pub streams_active: AtomicU64,
    pub streams_evicted: AtomicU64,
}

/// State shared by the threads of one agent run.
#[derive(Debug, Default)]
pub struct Shared {
    pub workers: Vec<Arc<WorkerStats>>,
    pub reports: AtomicU64,
    pub reports_dropped: AtomicU64,
    pub heartbeats: AtomicU64,
}

pub fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn log(msg: &str) {
    eprintln!("voqa-agent: {msg}");
}

/// The pseudonymiser the configuration asks for.
pub fn pseudonymizer(cfg: &AgentConfig) -> Result<Pseudonymizer, RunError> {
    if !cfg.privacy.pseudonymize {
        return Ok(Pseudonymizer::disabled());
    }
    match &cfg.privacy.key_file {
        Some(path) => {
            let key = std::fs::read(path).map_err(|e| RunError::Key {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let key = key.trim_ascii();
            if key.is_empty() {
                return Err(RunError::Key {
                    path: path.clone(),
                    message: "empty key file".into(),
                });
            }
            Ok(Pseudonymizer::with_key(key))
        }
        None => Ok(Pseudonymizer::random()),
    }
}

fn workers_per_interface(cfg: &AgentConfig) -> usize {
    match (cfg.capture.backend, cfg.capture.workers) {
        // pnet's channel has no fanout we rely on: one reader per interface.
        (Backend::Pnet, _) => 1,
        (_, 0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        (_, n) => n,
    }
}

/// Everything a worker needs, cloned per worker.
#[derive(Clone)]
struct WorkerContext {
    agent_id: Arc<str>,
    analyzer: AnalyzerConfig,
    registry: SharedRegistry,
    privacy: Pseudonymizer,
    jitter_buffer: Arc<str>,
    tx: SyncSender<Box<AgentRecord>>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    stats_interval: Duration,
}

/// Runs until SIGINT/SIGTERM (or `stop` is set), then flushes every stream's final report.
pub fn run(
    cfg: AgentConfig,
    config_path: Option<PathBuf>,
    stop: Arc<AtomicBool>,
) -> Result<(), RunError> {
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
    let privacy = pseudonymizer(&cfg)?;
    let per_iface = workers_per_interface(&cfg);
    let mut shared = Shared::default();
    for iface in &cfg.capture.interfaces {
        for _ in 0..per_iface {
            shared.workers.push(Arc::new(WorkerStats {
                interface: iface.clone(),
                ..WorkerStats::default()
            }));
        }
    }
    let shared = Arc::new(shared);

    // Sink first, so a bad path fails before capture starts.
    let writer: Box<dyn ReportSink> = match cfg.sink() {
        SinkSpec::Stdout => Box::new(JsonLinesSink::new(std::io::stdout())),
        SinkSpec::File(path) => Box::new(JsonLinesSink::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| RunError::Sink {
                    path: path.clone(),
                    source,
                })?,
        )),
    };
    let (tx, rx) = sync_channel::<Box<AgentRecord>>(CHANNEL_CAPACITY);
    let sink = std::thread::Builder::new()
        .name("voqa-sink".into())
        .spawn(move || sink_loop(writer, rx))
        .map_err(RunError::Signal)?;

    let metrics_thread = if cfg.metrics.listen.is_empty() {
        None
    } else {
        Some(
            metrics::spawn(&cfg.metrics.listen, Arc::clone(&shared), Arc::clone(&stop)).map_err(
                |source| RunError::Metrics {
                    addr: cfg.metrics.listen.clone(),
                    source,
                },
            )?,
        )
    };

    let registry: SharedRegistry = Arc::new(RwLock::new(SdpRegistry::new(
        AnalyzerConfig::default().max_announcements,
    )));
    let ctx = WorkerContext {
        agent_id: Arc::clone(&agent_id),
        analyzer: AnalyzerConfig {
            jitter_buffer: cfg.jitter_buffer(),
            assumed_one_way_ms: cfg.analysis.assumed_one_way_ms,
            max_streams: cfg.analysis.max_streams,
            report_interval_ns: Some(cfg.analysis.interval_s as i64 * 1_000_000_000),
            idle_timeout_ns: cfg.analysis.idle_timeout_s as i64 * 1_000_000_000,
            ..AnalyzerConfig::default()
        },
        registry,
        privacy,
        jitter_buffer: cfg.jitter_buffer().to_string().into(),
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
            ..RingConfig::default()
        };
        let ctx = ctx.clone();
        let stats = Arc::clone(stats);
        let ready = ready_tx.clone();
        let backend = cfg.capture.backend;
        let promiscuous = cfg.capture.promiscuous;
        let handle = std::thread::Builder::new()
            .name(format!("voqa-capture-{n}"))
            .spawn(move || match backend {
                Backend::Afpacket => afpacket_worker(n as u32, ring, ctx, stats, ready),
                Backend::Pnet => pnet_worker(n as u32, promiscuous, ctx, stats, ready),
            })
            .map_err(RunError::Signal)?;
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
    log(&format!(
        "capturing on {} with {} worker(s) per interface; reports every {} s to {}",
        cfg.capture.interfaces.join(", "),
        per_iface,
        cfg.analysis.interval_s,
        cfg.output.sink
    ));

    let watch = Arc::new(Mutex::new(cfg.health.watch_processes.clone()));
    let heartbeat = {
        let tx = tx.clone();
        let shared = Arc::clone(&shared);
        let stop = Arc::clone(&stop);
        let watch = Arc::clone(&watch);
        let every = Duration::from_secs(cfg.health.heartbeat_interval_s);
        let agent_id = Arc::clone(&agent_id);
        std::thread::Builder::new()
            .name("voqa-heartbeat".into())
            .spawn(move || heartbeat_loop(&agent_id, every, &watch, &shared, &tx, &stop))
            .map_err(RunError::Signal)?
    };

    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        if reload.swap(false, Ordering::SeqCst) {
            reload_config(config_path.as_deref(), &cfg, &watch);
        }
    }
    log("stopping: flushing final reports");
    for w in workers {
        let _ = w.join();
    }
    let _ = heartbeat.join();
    drop(ctx);
    drop(tx);
    let _ = sink.join();
    if let Some(m) = metrics_thread {
        let _ = m.join();
    }
    Ok(())
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
        Ok(new) => log(&format!(
            "SIGHUP: keeping the running configuration: {}",
            new.problems().join("; ")
        )),
        Err(e) => log(&format!("SIGHUP: keeping the running configuration: {e}")),
    }
}

fn sink_loop(mut sink: Box<dyn ReportSink>, rx: Receiver<Box<AgentRecord>>) {
    let mut failing = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(record) => {
                let sent = sink.send(&record);
                if sent.is_err() != failing {
                    failing = sent.is_err();
                    log(if failing {
                        "sink: write failed; reports are being lost"
                    } else {
                        "sink: writing again"
                    });
                }
                // Drain what is queued, then flush, so reports are visible promptly.
                while let Ok(next) = rx.try_recv() {
                    let _ = sink.send(&next);
                }
                let _ = sink.flush();
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = sink.flush();
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = sink.flush();
}

fn heartbeat_loop(
    agent_id: &str,
    every: Duration,
    watch: &Mutex<Vec<String>>,
    shared: &Shared,
    tx: &SyncSender<Box<AgentRecord>>,
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
            let workers: Vec<WorkerCounters> = shared
                .workers
                .iter()
                .enumerate()
                .map(|(i, w)| WorkerCounters {
                    worker: i as u32,
                    kernel_packets: w.kernel_packets.load(Ordering::Relaxed),
                    kernel_drops: w.kernel_drops.load(Ordering::Relaxed),
                    kernel_freezes: w.kernel_freezes.load(Ordering::Relaxed),
                    frames: w.frames.load(Ordering::Relaxed),
                })
                .collect();
            let tracked = shared
                .workers
                .iter()
                .map(|w| w.streams_active.load(Ordering::Relaxed))
                .sum();
            let evicted = shared
                .workers
                .iter()
                .map(|w| w.streams_evicted.load(Ordering::Relaxed))
                .sum();
            let hb = sampler.sample(
                agent_id,
                voqa_wire::Timestamp::from_ns(wall_ns()),
                workers,
                tracked,
                evicted,
            );
            if tx.send(Box::new(AgentRecord::Heartbeat(hb))).is_ok() {
                shared.heartbeats.fetch_add(1, Ordering::Relaxed);
            }
            next += every;
            if stopping {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ships the analyzer's pending reports. Blocking: a report is never dropped; the sink writes
/// far faster than workers produce, and the ring absorbs the short wait at a boundary burst.
fn ship(analyzer: &mut Analyzer, ctx: &WorkerContext, histograms: &mut JitterHistogramEncoder) {
    for r in analyzer.drain_reports() {
        let record = Box::new(AgentRecord::Stream(stream_report(
            &ctx.agent_id,
            &r,
            &ctx.privacy,
            &ctx.jitter_buffer,
            histograms,
        )));
        if ctx.tx.send(record).is_ok() {
            ctx.shared.reports.fetch_add(1, Ordering::Relaxed);
        } else {
            ctx.shared.reports_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn publish(analyzer: &Analyzer, stats: &WorkerStats) {
    stats
        .streams_active
        .store(analyzer.active_streams() as u64, Ordering::Relaxed);
    stats
        .streams_evicted
        .store(analyzer.counters().streams_evicted, Ordering::Relaxed);
    stats
        .frames
        .store(analyzer.counters().frames, Ordering::Relaxed);
}

/// How far behind the wall clock a quiet worker moves its packet clock: later than any packet
/// still sitting in an unretired ring block.
const QUIET_LAG_NS: i64 = 1_000_000_000;

/// `sll_pkttype` of a packet the host sent.
const PACKET_OUTGOING: u8 = 4;

fn afpacket_worker(
    worker: u32,
    ring_cfg: RingConfig,
    ctx: WorkerContext,
    stats: Arc<WorkerStats>,
    ready: std::sync::mpsc::Sender<Result<(), RunError>>,
) {
    let mut ring = match PacketRing::open(&ring_cfg) {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(RunError::Capture {
                worker,
                interface: ring_cfg.interface.clone(),
                message: e.to_string(),
            }));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let linktype = ring.linktype();
    // The kernel ignores PACKET_IGNORE_OUTGOING for fanout members, so loopback's outgoing
    // copies are dropped here (each packet would otherwise be seen twice).
    let skip_outgoing = ring_cfg.ignore_outgoing;
    let mut analyzer = Analyzer::with_registry(ctx.analyzer.clone(), Arc::clone(&ctx.registry));
    let mut histograms = JitterHistogramEncoder::new();
    let mut last_stats = Instant::now();
    let mut drops_seen = 0u64;
    while !ctx.stop.load(Ordering::Relaxed) {
        match ring.next_block(Duration::from_millis(100)) {
            Ok(Some(block)) => {
                for f in block.frames() {
                    if skip_outgoing && f.pkttype == PACKET_OUTGOING {
                        continue;
                    }
                    analyzer.on_frame(f.ts_ns, linktype, f.data, f.wire_len);
                }
            }
            Ok(None) => analyzer.advance_to(wall_ns() - QUIET_LAG_NS),
            Err(e) => {
                log(&format!("worker {worker} on {}: {e}", ring_cfg.interface));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if last_stats.elapsed() >= ctx.stats_interval {
            last_stats = Instant::now();
            read_kernel_stats(&mut ring, &mut analyzer, &stats, &mut drops_seen);
        }
        ship(&mut analyzer, &ctx, &mut histograms);
        publish(&analyzer, &stats);
    }
    // Drain what the kernel already delivered, then close every stream.
    while let Ok(Some(block)) = ring.next_block(Duration::ZERO) {
        for f in block.frames() {
            if skip_outgoing && f.pkttype == PACKET_OUTGOING {
                continue;
            }
            analyzer.on_frame(f.ts_ns, linktype, f.data, f.wire_len);
        }
    }
    read_kernel_stats(&mut ring, &mut analyzer, &stats, &mut drops_seen);
    analyzer.close_all(wall_ns());
    ship(&mut analyzer, &ctx, &mut histograms);
    publish(&analyzer, &stats);
}

fn read_kernel_stats(
    ring: &mut PacketRing,
    analyzer: &mut Analyzer,
    stats: &WorkerStats,
    drops_seen: &mut u64,
) {
    if let Ok(k) = ring.stats() {
        stats.kernel_packets.store(k.packets, Ordering::Relaxed);
        stats.kernel_drops.store(k.drops, Ordering::Relaxed);
        stats.kernel_freezes.store(k.freezes, Ordering::Relaxed);
        if k.drops > *drops_seen {
            analyzer.note_capture_drops(k.drops - *drops_seen);
            *drops_seen = k.drops;
        }
    }
}

/// The portable fallback: pnet's datalink channel (one copy and syscall per packet, and
/// user-space receive timestamps, so jitter is slightly overstated). No kernel drop counters.
fn pnet_worker(
    worker: u32,
    promiscuous: bool,
    ctx: WorkerContext,
    stats: Arc<WorkerStats>,
    ready: std::sync::mpsc::Sender<Result<(), RunError>>,
) {
    let fail = |message: String| RunError::Capture {
        worker,
        interface: stats.interface.clone(),
        message,
    };
    let Some(iface) = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == stats.interface)
    else {
        let _ = ready.send(Err(fail("no such interface".into())));
        return;
    };
    let config = pnet_datalink::Config {
        read_timeout: Some(Duration::from_millis(100)),
        promiscuous,
        ..pnet_datalink::Config::default()
    };
    let mut rx = match pnet_datalink::channel(&iface, config) {
        Ok(pnet_datalink::Channel::Ethernet(_, rx)) => rx,
        Ok(_) => {
            let _ = ready.send(Err(fail("unsupported channel type".into())));
            return;
        }
        Err(e) => {
            let _ = ready.send(Err(fail(e.to_string())));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut analyzer = Analyzer::with_registry(ctx.analyzer.clone(), Arc::clone(&ctx.registry));
    let mut histograms = JitterHistogramEncoder::new();
    while !ctx.stop.load(Ordering::Relaxed) {
        match rx.next() {
            Ok(frame) => {
                let len = frame.len() as u32;
                analyzer.on_frame(wall_ns(), 1, frame, len);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                analyzer.advance_to(wall_ns() - QUIET_LAG_NS);
            }
            Err(e) => {
                log(&format!("worker {worker} on {}: {e}", stats.interface));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        ship(&mut analyzer, &ctx, &mut histograms);
        publish(&analyzer, &stats);
    }
    analyzer.close_all(wall_ns());
    ship(&mut analyzer, &ctx, &mut histograms);
    publish(&analyzer, &stats);
}
