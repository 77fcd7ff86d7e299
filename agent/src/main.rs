//! The `voqa-agent` command line. Parses arguments, runs the pipeline from the library, prints
//! results. The only place that prints, reads the environment or decides exit codes.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use voqa_agent::analyze::analyze_files;
use voqa_agent::quality::jbuf::{JitterBufferModel, JitterBufferSettings};
use voqa_agent::report;
use voqa_agent::service::config::{self, AgentConfig};
use voqa_agent::streams::AnalyzerConfig;
use voqa_agent::streams::privacy::Pseudonymizer;

#[derive(Parser)]
#[command(
    name = "voqa-agent",
    version,
    about = "Passive VoIP quality monitor: RTP loss, jitter and MOS per stream and call",
    long_about = "Passive VoIP quality monitor: RTP loss, duplicates, reordering, RFC 3550 \
jitter, jitter-buffer discards, RTCP round trip and ITU-T G.107 MOS per stream and call, from \
capture files (analyze) or live traffic (run), shipped to a voqa collector. RTP payload is \
never kept; Call-IDs and SIP users are pseudonymised before they leave the host.",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const AFTER_HELP: &str = "\
Examples:
  voqa-agent analyze call.pcap                  table of every stream and call
  voqa-agent analyze --format json day.pcapng.gz > report.json
  tcpdump -i eth0 -w - udp | voqa-agent analyze -
  voqa-agent check-config                       validate /etc/voqa/agent.toml and permissions
  voqa-agent run                                live capture as configured (systemd: voqa-agent.service)
  voqa-agent run -i eth0 --sink file:/tmp/reports.jsonl
  voqa-agent replay --collector https://collector:8443 --token-file agent.token day.pcap

Files:
  /etc/voqa/agent.toml      configuration (every option, commented); SIGHUP re-reads it
  /var/lib/voqa-agent/      disk spool of reports not yet acknowledged by the collector

Exit status: 0 success; 2 error (one line on stderr saying why).
See also: voqa-agent-analyze(1), voqa-agent-run(1), voqa-collector(1).";

#[derive(Subcommand)]
enum Command {
    /// Analyse pcap/pcapng capture files and report every RTP stream and call.
    #[command(after_help = "\
Examples:
  voqa-agent analyze call.pcap
  voqa-agent analyze --format json --jitter-buffer adaptive a.pcap b.pcapng
  zcat old.pcap.gz | voqa-agent analyze -
  voqa-agent analyze --pseudonym-key-file /etc/voqa/pseudonym.key --stats big.pcapng")]
    Analyze(AnalyzeArgs),
    /// Capture live traffic and emit interval and final stream reports plus heartbeats.
    #[command(after_help = "\
Examples:
  voqa-agent run                                  as /etc/voqa/agent.toml says
  voqa-agent run -i eth0 -i eth1 --workers 2 --sink file:/var/lib/voqa-agent/reports.jsonl

Needs CAP_NET_RAW (and CAP_NET_ADMIN for capture.promiscuous). Under systemd (Type=notify) it
reports READY once every capture socket is open, and feeds the watchdog only while every
capture worker makes progress. SIGHUP re-reads the configuration and the token file;
SIGTERM flushes every open stream's final report.")]
    Run(RunArgs),
    /// Push capture files through the live pipeline (interval and final reports, heartbeats
    /// on packet time) into a sink or a collector.
    #[command(after_help = "\
Examples:
  voqa-agent replay --sink stdout day.pcap
  voqa-agent replay --collector https://collector:8443 --token-file agent.token \\
      --agent-id fra-media-1 --spool-dir /tmp/spool day.pcap
  voqa-agent replay --collector https://collector:8443 --token-file agent.token \\
      --spool-dir /tmp/spool                      resume what was not delivered")]
    Replay(ReplayArgs),
    /// Validate the configuration and the capture permissions, then exit.
    #[command(after_help = "\
Examples:
  voqa-agent check-config                         /etc/voqa/agent.toml
  sudo -u voqa voqa-agent check-config -i eth0    as the service user would run
  voqa-agent check-config --configured            exit 0 only if the file names an interface
                                                  and a collector (the unit's start condition)")]
    CheckConfig(CheckArgs),
    /// Write the man pages and shell completions into DIR (package build).
    #[command(hide = true)]
    GenerateManual {
        #[arg(value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct CheckArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Only say whether the configuration names a capture interface and a destination (a
    /// collector, or a file sink): exit 0 if so, 1 if not, 255 if it cannot be read. The
    /// systemd unit's ExecCondition and the package's postinst use it, so that an agent
    /// installed but not yet configured is not started.
    #[arg(long)]
    configured: bool,
}

#[derive(clap::Args)]
struct ConfigArgs {
    /// Configuration file [default: /etc/voqa/agent.toml, if present].
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Interface to capture on (repeatable); replaces capture.interfaces.
    #[arg(long = "interface", short = 'i', value_name = "IF")]
    interfaces: Vec<String>,
    /// Where reports go: stdout or file:PATH (JSON lines); replaces output.sink.
    #[arg(long, value_name = "SINK")]
    sink: Option<String>,
    /// Seconds between interval reports; replaces analysis.interval_s.
    #[arg(long, value_name = "SECONDS")]
    interval: Option<u64>,
    /// Capture workers per interface (0 = one per core); replaces capture.workers.
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// File holding the pseudonym key (stable pseudonyms across restarts); replaces
    /// privacy.key_file.
    #[arg(long, value_name = "PATH")]
    pseudonym_key_file: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Speed {
    /// As fast as possible.
    Max,
    /// Frames at their packet time, relative to the first, on the wall clock.
    Realtime,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Capture files (pcap or pcapng, gzip-compressed or not; `-`: standard input), replayed
    /// in order as one capture. With none, replay only delivers what the spool (--spool-dir)
    /// holds.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Collector base URL (http:// or https://); repeat it for failover. Replaces
    /// ship.collectors.
    #[arg(long = "collector", value_name = "URL", conflicts_with = "sink")]
    collectors: Vec<String>,
    /// Bearer token of role `agent` for the collector [default: ship.token_file].
    #[arg(long, value_name = "TOKEN", conflicts_with = "token_file")]
    token: Option<String>,
    /// File holding the token (re-read on SIGHUP); replaces ship.token_file.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Spool directory [default: ship.spool_dir, else a temporary one, removed on success].
    /// Replaying again with the same directory resumes what was not delivered.
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    /// Give up (exit 2, keeping the spool) when nothing was acknowledged for this long;
    /// 0 = never.
    #[arg(long, value_name = "SECONDS", default_value = "300")]
    give_up_after: u64,
    /// Where records go instead of a collector: stdout or file:PATH (JSON lines)
    /// [default: output.sink of the config].
    #[arg(long, value_name = "SINK")]
    sink: Option<String>,
    /// Agent id in the records [default: agent_id of the config, else the host name].
    #[arg(long, value_name = "ID")]
    agent_id: Option<String>,
    /// Replay speed.
    #[arg(long, value_enum, default_value = "max")]
    speed: Speed,
    /// Configuration file [default: /etc/voqa/agent.toml, if present].
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Seconds between interval reports; replaces analysis.interval_s.
    #[arg(long, value_name = "SECONDS")]
    interval: Option<u64>,
    /// File holding the pseudonym key; replaces privacy.key_file.
    #[arg(long, value_name = "PATH")]
    pseudonym_key_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// TEST ONLY: while this file exists, capture worker 0 stops making progress (the
    /// sd_notify test checks the watchdog is then no longer fed).
    #[arg(long, hide = true, value_name = "PATH")]
    test_stall_worker_while: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(clap::Args)]
struct AnalyzeArgs {
    /// Capture files (pcap or pcapng, gzip-compressed or not), analysed in order as one
    /// capture; `-` reads standard input (a pipe: `tcpdump -w - | voqa-agent analyze -`).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Jitter-buffer emulation behind discards and effective loss: fixed:MS or adaptive[:MIN,MAX,INIT,K].
    #[arg(long, default_value = "fixed:60", value_parser = parse_jitter_buffer)]
    jitter_buffer: JitterBufferModel,
    /// The emulated jitter buffer re-anchors on this many late packets in a row instead of
    /// discarding them (a route change or a sender pause without a marker bit costs N-1
    /// discards, not the rest of the call; metrics-spec §9.2a). 0 = never re-anchor;
    /// 1 is refused (nothing would ever be late); at most 1000.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = parse_resync_after_late)]
    resync_after_late: u16,
    /// One-way network delay (ms) assumed for the E-model when RTCP gives no round trip.
    #[arg(long, default_value_t = 20.0, value_parser = parse_delay)]
    assumed_one_way_ms: f64,
    /// File holding the secret key for pseudonymising Call-IDs and SIP user parts
    /// (else $VOQA_PSEUDONYM_KEY; else a random key for this run only).
    #[arg(long, value_name = "PATH")]
    pseudonym_key_file: Option<PathBuf>,
    /// Show Call-IDs and SIP user parts as captured, not pseudonymised.
    #[arg(long)]
    no_pseudonymize: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Print throughput, memory use (anonymous and file-backed RSS) and the time spent on the
    /// output to stderr at the end.
    #[arg(long)]
    stats: bool,
    /// Analysis threads, each measuring a share of the flows (results are identical)
    /// [default: one per CPU core, at most 8].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// TCP ports carrying SIP (plain or WebSocket), comma-separated; their connections are
    /// reassembled even when first seen mid-stream. On other ports SIP over TCP is found when a
    /// segment starts a SIP message or a SIP WebSocket handshake. SIP over TLS cannot be read.
    #[arg(long, value_name = "PORTS", default_value = "5060,5080", value_parser = voqa_agent::service::config::parse_sip_ports)]
    sip_ports: std::vec::Vec<u16>,
    /// A network of the monitored host (repeatable; ADDRESS or ADDRESS/PREFIX): calls whose
    /// INVITE enters these networks are inbound, those leaving them outbound, with the far
    /// side as their peer. Without it calls have no direction and no peer.
    #[arg(long = "local-net", value_name = "NET")]
    local_nets: Vec<String>,
    /// An answered call without BYE ends `timeout` this many seconds after its answer.
    #[arg(long, value_name = "S", default_value_t = 14_400)]
    max_call_s: u64,
    /// Media problem `no_rtp`: no RTP in a direction this many seconds after the answer.
    #[arg(long, value_name = "S", default_value_t = 2.0)]
    no_rtp_s: f64,
    /// Media problem `rtp_stopped`: RTP paused this many seconds in one direction while the
    /// other went on (hold, comfort noise and marker-bit DTX silence excepted).
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    rtp_stopped_s: f64,
}

fn parse_jitter_buffer(s: &str) -> Result<JitterBufferModel, String> {
    s.parse::<JitterBufferModel>().map_err(|e| e.to_string())
}

fn parse_resync_after_late(s: &str) -> Result<u16, String> {
    let v: u32 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of packets"))?;
    JitterBufferSettings::resync_after_late(v).map_err(|e| e.to_string())
}

fn parse_delay(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of milliseconds"))?;
    if (0.0..=10_000.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} ms is outside 0..=10000"))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Journald-structured under systemd, plain `LEVEL target: message` lines otherwise.
    voqa_service::log::init("voqa-agent");
    let result = match cli.command {
        Command::Analyze(args) => run_analyze(args),
        Command::Run(args) => run_live(args),
        Command::Replay(args) => run_replay(args),
        Command::CheckConfig(args) if args.configured => return configured(&args.config),
        Command::CheckConfig(args) => check_config(args.config),
        Command::GenerateManual { out } => generate_manual(&out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voqa-agent: {}", error_text(e.as_ref()));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line, each reason once: a cause whose text the line
/// already holds (an error that quotes its source in its own message) is not repeated.
fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// The config file with command-line overrides applied.
fn load_config(args: &ConfigArgs) -> anyhow::Result<(AgentConfig, Option<PathBuf>)> {
    let (path, explicit) = match &args.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(config::DEFAULT_PATH), false),
    };
    let mut cfg = AgentConfig::load(&path, explicit)?;
    if !args.interfaces.is_empty() {
        cfg.capture.interfaces = args.interfaces.clone();
    }
    if let Some(sink) = &args.sink {
        cfg.output.sink = sink.clone();
    }
    if let Some(interval) = args.interval {
        cfg.analysis.interval_s = interval;
    }
    if let Some(workers) = args.workers {
        cfg.capture.workers = workers;
    }
    if let Some(key) = &args.pseudonym_key_file {
        cfg.privacy.key_file = Some(key.clone());
    }
    let used = (explicit || path.exists()).then_some(path);
    Ok((cfg, used))
}

/// Says what the spool recovered at start, when there was anything to say.
fn report_recovery(d: &voqa_agent::ship::delivery::Delivery) {
    let r = &d.recovery;
    if r.pending_records > 0 || r.corrupt_records > 0 || r.torn_tails_cut > 0 {
        tracing::info!(
            "spool {}: {} record(s) from before to deliver; {} corrupt record(s) \
             skipped, {} torn tail(s) cut ({} bytes)",
            d.spool_dir.display(),
            r.pending_records,
            r.corrupt_records,
            r.torn_tails_cut,
            r.torn_bytes_cut
        );
    }
}

fn run_replay(args: ReplayArgs) -> anyhow::Result<()> {
    use voqa_agent::pipeline::{Pace, replay};
    let (path, explicit) = match &args.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(config::DEFAULT_PATH), false),
    };
    let mut cfg = AgentConfig::load(&path, explicit)?;
    if let Some(interval) = args.interval {
        cfg.analysis.interval_s = interval;
    }
    if let Some(sink) = &args.sink {
        cfg.output.sink = sink.clone();
    }
    if let Some(key) = &args.pseudonym_key_file {
        cfg.privacy.key_file = Some(key.clone());
    }
    let problems = cfg.analysis_problems();
    if !problems.is_empty() {
        anyhow::bail!("invalid configuration:\n  {}", problems.join("\n  "));
    }
    let agent_id = args
        .agent_id
        .clone()
        .or_else(|| cfg.agent_id.clone())
        .unwrap_or_else(voqa_agent::host::hostname);
    if agent_id.trim().is_empty() {
        anyhow::bail!("--agent-id: must not be empty");
    }
    if !args.collectors.is_empty() {
        cfg.ship.collectors = args.collectors.clone();
    }
    if let Some(path) = &args.token_file {
        cfg.ship.token_file = Some(path.clone());
    }
    if let Some(dir) = &args.spool_dir {
        cfg.ship.spool_dir = Some(dir.clone());
    }
    let ship_problems = cfg.ship.problems();
    if !ship_problems.is_empty() {
        anyhow::bail!("invalid configuration:\n  {}", ship_problems.join("\n  "));
    }
    let shipping = args.sink.is_none() && cfg.ship.enabled();
    let mut delivery = None;
    let mut temp_spool = None;
    let sink = if shipping {
        let token = cfg
            .ship
            .token_source(args.token.as_deref())
            .map_err(|e| anyhow::anyhow!(e))?;
        let dir = match &cfg.ship.spool_dir {
            Some(d) => d.clone(),
            None => {
                let d = voqa_agent::ship::temp_spool_dir()?;
                temp_spool = Some(d.clone());
                d
            }
        };
        let spool = voqa_agent::ship::delivery::spool_config(&cfg.ship, dir)?;
        let settings = voqa_agent::ship::http::ShipperSettings::from_config(&cfg.ship, token);
        let (sink, d) = voqa_agent::ship::delivery::Delivery::start(settings, spool)?;
        report_recovery(&d);
        delivery = Some(Arc::new(d));
        sink
    } else {
        voqa_agent::service::run::open_sink(&cfg.sink())?
    };
    // SIGHUP re-reads the token file (a fixed token delivers what was refused).
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))?;
    let watcher = delivery.clone().map(|d| {
        let hup = Arc::clone(&hup);
        std::thread::spawn(move || {
            // Ends with the process (replay exits right after the drain).
            loop {
                std::thread::sleep(std::time::Duration::from_millis(100));
                if hup.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    match d.reload_token() {
                        Ok(()) => tracing::info!("SIGHUP: token reloaded"),
                        Err(e) => tracing::warn!("SIGHUP: keeping the old token: {e}"),
                    }
                }
            }
        })
    });
    drop(watcher);
    let opts = replay::ReplayOptions {
        agent_id,
        pace: match args.speed {
            Speed::Max => Pace::Max,
            Speed::Realtime => Pace::Realtime,
        },
        analyzer: cfg.analyzer_config(),
        privacy: cfg.pseudonymizer()?,
        heartbeat_interval_ns: cfg.heartbeat_interval_ns(),
        watch_processes: cfg.health.watch_processes.clone(),
    };
    let Some(delivery) = delivery else {
        if args.files.is_empty() {
            anyhow::bail!(
                "nothing to replay: give capture files (or a collector and --spool-dir to resume)"
            );
        }
        let summary = replay::run(&args.files, &opts, sink)?;
        eprintln!(
            "voqa-agent: replayed {} frames: {} stream reports and {} heartbeats written",
            summary.frames, summary.reports, summary.heartbeats
        );
        return Ok(());
    };
    let give_up =
        (args.give_up_after > 0).then(|| std::time::Duration::from_secs(args.give_up_after));
    let done = match replay::run_to_collector(&args.files, &opts, sink, &delivery, give_up) {
        Ok(done) => done,
        Err(e @ replay::ReplayError::Undelivered(_)) => {
            let c = delivery.counters();
            anyhow::bail!(
                "gave up: {e}; the records stay in the spool {dir}: run `voqa-agent replay \
                 --spool-dir {dir}` with the same collector to resume (dropped by the spool cap: \
                 {}, dead letter: {})",
                c.dropped_cap_records,
                c.dead_letter_records,
                dir = delivery.spool_dir.display(),
            );
        }
        Err(e) => return Err(e.into()),
    };
    let (summary, c) = (done.summary, done.shipping);
    eprintln!(
        "voqa-agent: replayed {} frames: {} stream reports and {} heartbeats; every spooled record \
         acknowledged by the collector (dropped by the spool cap: {}, corrupt: {}, dead letter: {})",
        summary.frames,
        summary.reports,
        summary.heartbeats,
        c.dropped_cap_records,
        c.corrupt_records,
        c.dead_letter_records
    );
    if let Some(dir) = temp_spool {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

fn run_live(args: RunArgs) -> anyhow::Result<()> {
    let (cfg, path) = load_config(&args.config)?;
    let stop = Arc::new(AtomicBool::new(false));
    let notifier = voqa_service::notify::Notifier::from_env().unwrap_or_else(|e| {
        eprintln!("voqa-agent: no systemd notifications: {e}");
        voqa_service::notify::Notifier::disabled()
    });
    let options = voqa_agent::service::run::RunOptions {
        notifier,
        stall_worker_while: args.test_stall_worker_while,
    };
    voqa_agent::service::run::run_with(cfg, path, stop, options)?;
    Ok(())
}

/// `check-config --configured`: 0 when the configuration names an interface and a destination,
/// 1 when not (saying what to edit), 255 when it cannot be read (ExecCondition: a failure,
/// not a skip).
fn configured(args: &ConfigArgs) -> ExitCode {
    let (cfg, path) = match load_config(args) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("voqa-agent: {}", error_text(e.as_ref()));
            return ExitCode::from(255);
        }
    };
    let file = path.map_or_else(
        || format!("{} (absent)", config::DEFAULT_PATH),
        |p| p.display().to_string(),
    );
    let missing = cfg.unconfigured();
    if missing.is_empty() {
        println!("ok   {file} names what to capture and where reports go");
        return ExitCode::SUCCESS;
    }
    println!("not configured: {file}: {}", missing.join("; "));
    ExitCode::from(1)
}

fn generate_manual(out: &Path) -> anyhow::Result<()> {
    use clap::CommandFactory;
    for path in voqa_service::docs::write_manual(Cli::command(), out)? {
        println!("{}", path.display());
    }
    Ok(())
}

fn check_config(args: ConfigArgs) -> anyhow::Result<()> {
    let (cfg, path) = load_config(&args)?;
    match &path {
        Some(p) => println!("ok   {} parsed", p.display()),
        None => println!(
            "ok   no config file ({} absent): defaults and flags",
            config::DEFAULT_PATH
        ),
    }
    let checks = voqa_agent::service::check::check(&cfg);
    for c in &checks {
        println!("{} {}", if c.ok { "ok  " } else { "FAIL" }, c.message);
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        anyhow::bail!("{failed} problem(s) found");
    }
    Ok(())
}

fn pseudonymizer(args: &AnalyzeArgs) -> anyhow::Result<Pseudonymizer> {
    if args.no_pseudonymize {
        return Ok(Pseudonymizer::disabled());
    }
    if let Some(path) = &args.pseudonym_key_file {
        let key = std::fs::read(path).map_err(|e| {
            anyhow::anyhow!("{}: cannot read the pseudonym key: {e}", path.display())
        })?;
        let key = key.trim_ascii();
        if key.is_empty() {
            anyhow::bail!("{}: the pseudonym key file is empty", path.display());
        }
        return Ok(Pseudonymizer::with_key(key));
    }
    match std::env::var("VOQA_PSEUDONYM_KEY") {
        Ok(k) if !k.is_empty() => Ok(Pseudonymizer::with_key(k.as_bytes())),
        _ => Ok(Pseudonymizer::random()),
    }
}

/// Files larger than this get a progress bar when stderr is a terminal.
const PROGRESS_MIN_BYTES: u64 = 100 * 1024 * 1024;

/// (RssAnon, RssFile) in KiB from /proc/self/status; zeros where unavailable.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("RssAnon:"), field("RssFile:"))
}

fn run_analyze(args: AnalyzeArgs) -> anyhow::Result<()> {
    let privacy = pseudonymizer(&args)?;
    let calls = voqa_agent::service::config::CallsSection {
        local_nets: args.local_nets.clone(),
        max_call_s: args.max_call_s,
        no_rtp_s: args.no_rtp_s,
        rtp_stopped_s: args.rtp_stopped_s,
        ..Default::default()
    };
    if let Some(problem) = calls.problems().first() {
        anyhow::bail!(
            "{problem} (set by --local-net, --max-call-s, --no-rtp-s or --rtp-stopped-s)"
        );
    }
    let cfg = AnalyzerConfig {
        calls: calls.calls_config(),
        jitter_buffer: args.jitter_buffer,
        resync_after_late: args.resync_after_late,
        assumed_one_way_ms: args.assumed_one_way_ms,
        tcp: voqa_agent::reassembly::tcp::TcpConfig {
            sip_ports: args.sip_ports.clone(),
            ..voqa_agent::reassembly::tcp::TcpConfig::default()
        },
        ..AnalyzerConfig::default()
    };
    let settings = report::analysis_settings(&cfg);
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_draw = Instant::now();
    let mut drew = false;
    let mut progress = |path: &Path, done: u64, total: u64| {
        if total < PROGRESS_MIN_BYTES || (done < total && last_draw.elapsed().as_millis() < 200) {
            return;
        }
        last_draw = Instant::now();
        drew = true;
        let pct = if total == 0 {
            100.0
        } else {
            100.0 * done as f64 / total as f64
        };
        let width = 30usize;
        let filled = ((pct / 100.0) * width as f64) as usize;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{} [{}{}] {:5.1}% {} / {} MB  {:.1} s",
            path.display(),
            "#".repeat(filled.min(width)),
            " ".repeat(width - filled.min(width)),
            pct,
            done / 1_000_000,
            total / 1_000_000,
            started.elapsed().as_secs_f64()
        );
        if done >= total {
            let _ = writeln!(err);
        }
    };
    let progress_ref: Option<voqa_agent::analyze::Progress<'_>> = if show_progress {
        Some(&mut progress)
    } else {
        None
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8)
    });
    let (files, result) = analyze_files(&args.files, cfg, threads, progress_ref)?;
    if args.stats {
        let secs = started.elapsed().as_secs_f64();
        let frames = result.counters.frames;
        let (anon, file) = rss_kib();
        eprintln!(
            "voqa-agent: {frames} frames, {} streams in {secs:.3} s ({:.2} M frames/s); RSS {} KiB anonymous + {} KiB file-backed",
            result.streams.len(),
            frames as f64 / secs.max(1e-9) / 1e6,
            anon,
            file
        );
    }
    let jitter_buffer = args.jitter_buffer.to_string();
    let output_started = Instant::now();
    let mut output = report::analyze_document(files, &result, &privacy, &jitter_buffer);
    let document_built = output_started.elapsed();
    output.analysis = Some(settings);
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    });
    // Stdout is line-buffered; a report of thousands of streams needs a real buffer (the JSON
    // writer gathers its own chunks and writes them whole, past the buffer).
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let write_result = match format {
        Format::Json => {
            report::json::write_document(&output, &mut stdout).and_then(|()| writeln!(stdout))
        }
        Format::Table => stdout.write_all(report::table::render(&output.to_output()).as_bytes()),
    }
    .and_then(|()| stdout.flush());
    if args.stats {
        eprintln!(
            "voqa-agent: output in {:.3} s ({:.3} s building the document, {:.3} s writing it)",
            output_started.elapsed().as_secs_f64(),
            document_built.as_secs_f64(),
            (output_started.elapsed() - document_built).as_secs_f64()
        );
    }
    // The process ends right after this: freeing the results' many small allocations one by
    // one (a few percent of a whole run with 50,000 streams) would only delay the exit.
    std::mem::forget(output);
    std::mem::forget(result);
    match write_result {
        Ok(()) => Ok(()),
        // A closed pipe (`| head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow::anyhow!("cannot write the report: {e}")),
    }
}
