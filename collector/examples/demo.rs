//! The one-command demo: `cargo run --release -p voqa-collector --example demo [-- --once]`.
//!
//! Starts a collector in-process on a fresh SQLite database in a temporary directory, with one
//! demo customer and its commitments; creates an agent token and an ops token; replays the
//! committed capture `tests/data/demo-day.pcap` (three hours of a PBX: keepalives, eight
//! answered calls and a busy one, one bad call, a ten-minute agent outage) through the agent's
//! real pipeline and shipper (disk spool, gzip batches, HTTP) into that collector; then prints,
//! from what the collector stored and evaluated (its ops API, over HTTP), the quality of every
//! stream and the customer's SLA verdicts, with the URL, the ops token and curl commands to
//! explore further. It keeps serving until Ctrl-C; `--once` exits after printing.
//!
//! Progress goes to stderr, results to stdout. Pseudonyms use a fixed demo key, so the output
//! is the same on every run except for the port and the token.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use voqa_collector::auth::{AgentBinding, Role};
use voqa_collector::config::CollectorConfig;
use voqa_collector::serve::{Server, ServerHandle};
use voqa_collector::store::Store;
use voqa_wire::StreamSummary;

/// The agent the capture is replayed as (the demo customer's only agent).
const AGENT_ID: &str = "demo-pbx-1";
const CUSTOMER: &str = "demo";
/// The capture's three hours.
const FROM: &str = "2026-11-23T08:00:00Z";
const TO: &str = "2026-11-23T11:00:00Z";
/// A fixed pseudonymisation key, so that the demo's pseudonyms are the same on every run.
/// (Not a secret: a real agent reads its key from `privacy.key_file`.)
const PSEUDONYM_KEY: &[u8] = b"voqa demo pseudonym key (public; use your own in production)";
/// How long delivery may make no progress before the demo gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// The demo customer: commitments chosen so that the day's events decide them — the bad call
/// breaks the MOS share and the loss ceiling, the outage breaks uptime (the maintenance window
/// ends a minute before it starts), while jitter holds.
const COLLECTOR_TOML: &str = r#"
[[customers]]
id = "demo"
name = "Demo Telecom"
agents = ["demo-pbx-1"]

[customers.commitments]
mos_min = 3.6                            # a call meets quality with MOS >= 3.6 ...
calls_meeting_pct = 95.0                 # ... and 95 % of calls must
loss_max_pct = 2.0                       # per-call effective loss (network + jitter buffer)
jitter_p95_max_ms = 30.0                 # p95 of per-packet jitter over the period
uptime_min_pct = 99.5                    # heartbeats present
maintenance = ["Mon 09:00-09:30 UTC"]    # 2026-11-23 is a Monday
"#;

struct Args {
    once: bool,
    listen: String,
    capture: PathBuf,
}

const USAGE: &str = "usage: cargo run --release -p voqa-collector --example demo -- \
                     [--once] [--listen ADDR:PORT] [--capture FILE.pcap]";

fn parse_args() -> Result<Args> {
    let mut args = Args {
        once: false,
        listen: "127.0.0.1:0".into(),
        capture: Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/demo-day.pcap"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--once" => args.once = true,
            "--listen" => {
                args.listen = it
                    .next()
                    .ok_or_else(|| anyhow!("--listen needs ADDR:PORT"))?;
            }
            "--capture" => {
                args.capture = it
                    .next()
                    .ok_or_else(|| anyhow!("--capture needs a file"))?
                    .into();
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument '{other}'\n{USAGE}"),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let result = parse_args().and_then(|args| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?
            .block_on(run(args))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The causes in order, skipping one whose text an outer message already includes
            // (some library errors print their source in their own message).
            let mut text = String::new();
            for cause in e.chain() {
                let cause = cause.to_string();
                if !text.contains(&cause) {
                    if !text.is_empty() {
                        text.push_str(": ");
                    }
                    text.push_str(&cause);
                }
            }
            eprintln!("demo: error: {text}");
            ExitCode::FAILURE
        }
    }
}

fn progress(msg: &str) {
    eprintln!("demo: {msg}");
}

async fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let capture = args.capture.canonicalize().with_context(|| {
        format!(
            "the demo capture {} is missing (it is committed in the repository)",
            args.capture.display()
        )
    })?;
    let work = tempfile::Builder::new()
        .prefix("voqa-demo-")
        .tempdir()
        .context("creating a temporary directory")?;

    // The collector: a fresh SQLite in the temporary directory, the demo customer.
    let database = format!("sqlite:{}", work.path().join("voqa.db").display());
    let mut config = CollectorConfig::parse(COLLECTOR_TOML)
        .map_err(|e| anyhow!("the demo's collector configuration: {e}"))?;
    config.server.database = database.clone();
    config.server.listen = args.listen.clone();
    // The demo prints its own story; a JSON line per request would drown it.
    config.server.access_log = false;
    progress(&format!("starting a collector on {database}"));
    let store = Store::open(&database)
        .await
        .context("opening the demo store")?;
    let agent_token = store
        .create_agent_token(&AgentBinding::parse(AGENT_ID).map_err(anyhow::Error::msg)?)
        .await
        .context("creating the agent token")?;
    let ops_token = store
        .create_token(&Role::Ops)
        .await
        .context("creating the ops token")?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let customer = config
        .customer(CUSTOMER)
        .cloned()
        .ok_or_else(|| anyhow!("no demo customer"))?;
    let report_store = store.clone();
    let server = Server::start(config, store, listener, async move {
        let _ = stopped.await;
    })
    .await
    .context("starting the collector")?;
    let base = server.base_url();
    progress(&format!("collector listening on {base}"));

    // The agent: the capture through the live pipeline and the shipper, on a blocking thread
    // (the agent's replay and delivery block; the collector runs on this runtime's workers).
    let size = std::fs::metadata(&capture).map(|m| m.len()).unwrap_or(0);
    progress(&format!(
        "replaying {} ({:.1} MB) as agent {AGENT_ID} through the agent's shipper to {base}",
        capture.display(),
        size as f64 / 1e6
    ));
    let replay = {
        let (base, token, dir, capture) = (
            base.clone(),
            agent_token.secret.clone(),
            work.path().to_path_buf(),
            capture.clone(),
        );
        tokio::task::spawn_blocking(move || replay(&base, &token, &dir, &capture))
    };
    let delivered = match replay.await {
        Ok(Ok(delivered)) => delivered,
        Ok(Err(e)) => {
            shutdown(stop, server).await;
            return Err(e.context("replaying the capture into the collector"));
        }
        Err(e) => {
            shutdown(stop, server).await;
            bail!("the replay thread failed: {e}");
        }
    };
    let (summary, shipping) = (delivered.summary, delivered.shipping);
    progress(&format!(
        "replayed {} frames: {} stream reports and {} heartbeats; delivered {} records, every one \
         acknowledged by the collector ({:.1} s so far)",
        summary.frames,
        summary.reports,
        summary.heartbeats,
        shipping.acked_records,
        started.elapsed().as_secs_f64()
    ));

    // What the collector made of it, read back over its ops API.
    let results = report(&base, &ops_token.secret).await;
    let text = match results {
        Ok(text) => text,
        Err(e) => {
            shutdown(stop, server).await;
            return Err(e);
        }
    };
    // The customer's report of the day, kept after the demo exits (its database is not).
    let report_path = match write_report(&report_store, &customer).await {
        Ok(path) => path,
        Err(e) => {
            shutdown(stop, server).await;
            return Err(e);
        }
    };
    print!("{text}");
    print!("{}", access(&base, &ops_token.secret, args.once));
    println!(
        "Report of customer {CUSTOMER} (HTML): {}",
        report_path.display()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();

    if args.once {
        progress(&format!(
            "--once: stopping ({:.1} s in all)",
            started.elapsed().as_secs_f64()
        ));
    } else {
        progress("serving until Ctrl-C");
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        progress("Ctrl-C: stopping");
    }
    shutdown(stop, server).await;
    drop(work);
    Ok(())
}

async fn shutdown(stop: tokio::sync::oneshot::Sender<()>, server: ServerHandle) {
    let _ = stop.send(());
    if let Err(e) = server.wait().await {
        eprintln!("demo: the collector stopped with an error: {e}");
    }
}

/// Replays `capture` as the agent `demo-pbx-1` into the collector at `base`, exactly as
/// `voqa-agent replay FILE --collector BASE --token TOKEN --agent-id demo-pbx-1` does: the
/// agent configuration's analysis, privacy and health settings, the disk spool and the HTTP
/// shipper. Returns once the collector has acknowledged every record.
fn replay(
    base: &str,
    token: &str,
    dir: &Path,
    capture: &Path,
) -> Result<voqa_agent::pipeline::replay::Delivered> {
    use voqa_agent::pipeline::{Pace, replay};
    use voqa_agent::service::config::AgentConfig;
    use voqa_agent::ship::delivery::{Delivery, spool_config};
    use voqa_agent::ship::http::ShipperSettings;

    let key_file = dir.join("pseudonym.key");
    std::fs::write(&key_file, PSEUDONYM_KEY).context("writing the demo pseudonym key")?;
    let mut cfg = AgentConfig {
        agent_id: Some(AGENT_ID.to_owned()),
        ..AgentConfig::default()
    };
    cfg.privacy.key_file = Some(key_file);
    cfg.ship.collectors = vec![base.to_owned()];
    cfg.ship.spool_dir = Some(dir.join("spool"));
    let problems: Vec<String> = cfg
        .analysis_problems()
        .into_iter()
        .chain(cfg.ship.problems())
        .collect();
    if !problems.is_empty() {
        bail!("invalid agent configuration: {}", problems.join("; "));
    }
    let token = cfg.ship.token_source(Some(token)).map_err(|e| anyhow!(e))?;
    let spool_dir = cfg
        .ship
        .spool_dir
        .clone()
        .unwrap_or_else(|| dir.join("spool"));
    let spool = spool_config(&cfg.ship, spool_dir)?;
    let settings = ShipperSettings::from_config(&cfg.ship, token);
    let (sink, delivery) = Delivery::start(settings, spool).context("starting delivery")?;
    let opts = replay::ReplayOptions {
        agent_id: AGENT_ID.to_owned(),
        pace: Pace::Max,
        analyzer: cfg.analyzer_config(),
        privacy: cfg.pseudonymizer()?,
        heartbeat_interval_ns: cfg.heartbeat_interval_ns(),
        watch_processes: cfg.health.watch_processes.clone(),
    };
    let done = replay::run_to_collector(
        &[capture.to_path_buf()],
        &opts,
        sink,
        &delivery,
        Some(GIVE_UP_AFTER),
    );
    delivery.stop();
    Ok(done?)
}

/// A GET on the ops API, as JSON; a non-2xx answer is an error with the collector's message.
async fn get(client: &reqwest::Client, url: &str, token: &str) -> Result<Value> {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .with_context(|| format!("GET {url}: reading the answer"))?;
    if !status.is_success() {
        bail!("GET {url}: HTTP {status}: {}", body.trim());
    }
    serde_json::from_str(&body).with_context(|| format!("GET {url}: the answer is not JSON"))
}

/// One stream's whole-stream totals as the collector stored them.
struct Stream {
    totals: StreamSummary,
}

impl Stream {
    fn loss_pct(&self) -> f64 {
        let t = &self.totals;
        if t.expected == 0 {
            0.0
        } else {
            100.0 * t.lost as f64 / t.expected as f64
        }
    }

    fn codec(&self) -> String {
        match self.totals.clock_rate {
            Some(rate) => format!("{}/{rate}", self.totals.codec),
            None => self.totals.codec.clone(),
        }
    }
}

/// Every final report of the demo agent in the period (following the cursor).
async fn final_streams(client: &reqwest::Client, base: &str, token: &str) -> Result<Vec<Stream>> {
    let mut streams = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!(
            "{base}/api/v1/streams?final=true&agent={AGENT_ID}&from={FROM}&to={TO}&limit=1000"
        );
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = get(client, &url, token).await?;
        let items = page["items"]
            .as_array()
            .ok_or_else(|| anyhow!("GET {url}: no items in {page}"))?;
        for item in items {
            let totals = item
                .get("totals")
                .cloned()
                .ok_or_else(|| anyhow!("a final report without totals: {item}"))?;
            let totals: StreamSummary = serde_json::from_value(totals)
                .with_context(|| format!("the totals of {}", item["record_id"]))?;
            streams.push(Stream { totals });
        }
        match page["next_cursor"].as_str() {
            Some(c) if !items.is_empty() => cursor = Some(c.to_owned()),
            _ => break,
        }
    }
    streams.sort_by(|a, b| {
        (a.totals.first_seen, &a.totals.src).cmp(&(b.totals.first_seen, &b.totals.src))
    });
    Ok(streams)
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |x| format!("{x:.decimals$}"))
}

/// Columns padded to their widest cell: left-aligned where `left(column)`, else right-aligned.
fn table(rows: &[Vec<String>], left: impl Fn(usize) -> bool) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                let pad = " ".repeat(widths[c].saturating_sub(cell.chars().count()));
                if left(c) {
                    format!("{cell}{pad}")
                } else {
                    format!("{pad}{cell}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The results: the stream table and the SLA verdicts, from the collector's API.
async fn report(base: &str, token: &str) -> Result<String> {
    #[allow(deprecated)] // ring: the project keeps aws-lc out of its tree
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    let streams = final_streams(&client, base, token).await?;
    let sla = get(
        &client,
        &format!("{base}/api/v1/customers/{CUSTOMER}/sla?from={FROM}&to={TO}"),
        token,
    )
    .await?;
    let customer = voqa_collector::config::CollectorConfig::parse(COLLECTOR_TOML)
        .map_err(|e| anyhow!(e))?
        .customers
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no demo customer"))?;
    let mos_min = customer.commitments.mos_min;

    let mut out = String::new();
    out.push_str(&format!(
        "Streams of agent {AGENT_ID} stored by the collector ({} final reports, {FROM} to {TO}):\n\n",
        streams.len()
    ));
    let mut rows = vec![
        [
            "#",
            "source",
            "destination",
            "codec",
            "pkts",
            "lost",
            "loss%",
            "jitter",
            "MOS",
            "call",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for (i, s) in streams.iter().enumerate() {
        let t = &s.totals;
        let mut row = vec![
            i.to_string(),
            t.src.clone(),
            t.dst.clone(),
            s.codec(),
            t.packets.to_string(),
            t.lost.to_string(),
            format!("{:.2}", s.loss_pct()),
            opt(t.jitter_ms, 2),
            opt(t.mos, 2),
            t.call_id.clone().unwrap_or_else(|| "-".into()),
        ];
        if t.mos.is_some_and(|m| m < mos_min) {
            row.push(format!("<- below MOS {mos_min}"));
        }
        rows.push(row);
    }
    // Addresses, codec, call id and the marker left-aligned; numbers right-aligned.
    out.push_str(&table(&rows, |c| !(4..=8).contains(&c)));
    out.push_str(&format!(
        "\njitter in ms (RFC 3550, at the end of the stream); MOS by ITU-T G.107 (jitter buffer {})\n",
        streams
            .first()
            .map_or("fixed:60", |s| s.totals.jitter_buffer.as_str())
    ));

    out.push('\n');
    out.push_str(&sla_text(&sla, &customer, &streams)?);
    Ok(out)
}

fn pct(v: f64) -> String {
    format!("{v:.2}%")
}

/// The SLA verdicts, one line per commitment, and a line of explanation for each breach.
fn sla_text(
    sla: &Value,
    customer: &voqa_collector::sla::Customer,
    streams: &[Stream],
) -> Result<String> {
    let c = &customer.commitments;
    let commitments = sla["commitments"]
        .as_array()
        .ok_or_else(|| anyhow!("the SLA answer has no commitments: {sla}"))?;
    // The collector's verdicts: met, breached, or no data (nothing to measure is no breach).
    let verdict = |v: &Value| match v["verdict"].as_str() {
        Some("met") => "met",
        Some("breached") => "BREACHED",
        _ => "no data",
    };
    let count = |which: &str| {
        commitments
            .iter()
            .filter(|v| v["verdict"].as_str() == Some(which))
            .count()
    };
    let (breached, no_data) = (count("breached"), count("no_data"));
    let overall = match sla["verdict"].as_str() {
        Some("breached") => format!("BREACHED ({breached} of {} commitments)", commitments.len()),
        Some("met") if no_data > 0 => format!("met where measured ({no_data} without data)"),
        Some("met") => "all commitments met".to_owned(),
        _ => "no data".to_owned(),
    };
    let mut out = format!(
        "SLA of customer {} ({}) from {} to {}: {} calls, {overall}\n\n",
        customer.id,
        customer.name,
        sla["from"].as_str().unwrap_or(FROM),
        sla["to"].as_str().unwrap_or(TO),
        sla["calls"],
    );
    let mut rows = vec![
        [
            "commitment",
            "target",
            "measured",
            "verdict",
            "what was measured",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    let mut why: Vec<(usize, String)> = Vec::new();
    for (i, v) in commitments.iter().enumerate() {
        let name = v["name"].as_str().unwrap_or("?");
        let target = v["target"].as_f64();
        let measured = v["measured"].as_f64();
        let unit = v["unit"].as_str().unwrap_or("");
        let (target, measured, what) = match name {
            "mos" => (
                target.map(|t| format!(">={}", pct(t))),
                measured.map(pct),
                format!("share of calls with MOS >= {}", c.mos_min),
            ),
            "loss" => (
                target.map(|t| format!("<={}", pct(t))),
                measured.map(pct),
                "effective loss of the worst call".to_owned(),
            ),
            "jitter_p95" => (
                target.map(|t| format!("<={t:.2}ms")),
                measured.map(|m| format!("{m:.2}ms")),
                "p95 of per-packet jitter, all streams".to_owned(),
            ),
            "uptime" => (
                target.map(|t| format!(">={}", pct(t))),
                measured.map(|m| format!("{m:.3}%")),
                format!(
                    "agent heartbeats present (maintenance {} excluded)",
                    if c.maintenance.is_empty() {
                        "none".to_owned()
                    } else {
                        c.maintenance.join(", ")
                    }
                ),
            ),
            _ => (
                target.map(|t| format!("{t}{unit}")),
                measured.map(|m| format!("{m}{unit}")),
                String::new(),
            ),
        };
        rows.push(vec![
            name.to_owned(),
            target.unwrap_or_else(|| "-".into()),
            measured.unwrap_or_else(|| "-".into()),
            verdict(v).to_owned(),
            what,
        ]);
        let detail = v["detail"].as_str().unwrap_or("");
        if v["verdict"].as_str() == Some("breached") {
            why.push((i, explain(name, v, c, streams)));
        }
        if !detail.is_empty() {
            why.push((i, format!("collector: {detail}")));
        }
    }
    let table_text = table(&rows, |c| c == 0 || c > 2);
    for (i, line) in table_text.lines().enumerate() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
        if i > 0 {
            for (_, text) in why.iter().filter(|(c, _)| *c == i - 1) {
                out.push_str(&format!("      {text}\n"));
            }
        }
    }
    Ok(out)
}

/// One line on why a commitment was breached, from its evidence and the streams' figures.
fn explain(
    name: &str,
    v: &Value,
    c: &voqa_collector::sla::Commitments,
    streams: &[Stream],
) -> String {
    let evidence = &v["evidence"];
    let stream_of = |call: &Value| {
        streams.iter().find(|s| {
            Some(s.totals.src.as_str()) == call["src"].as_str()
                && Some(s.totals.dst.as_str()) == call["dst"].as_str()
        })
    };
    let describe = |s: &Stream| {
        let t = &s.totals;
        format!(
            "lost {} of {} packets ({:.2} %), the {} jitter buffer discarded {} more \
             (effective loss {:.2} %), jitter up to {} ms",
            t.lost,
            t.expected,
            s.loss_pct(),
            t.jitter_buffer,
            t.jb_discarded,
            t.effective_loss_pct,
            opt(t.max_jitter_ms, 1),
        )
    };
    match name {
        "mos" | "loss" => {
            let calls = evidence["calls"].as_array().cloned().unwrap_or_default();
            let lines: Vec<String> = calls
                .iter()
                .take(3)
                .map(|call| {
                    let id = call["call_id"].as_str().unwrap_or("(no call id)");
                    let value = call["value"]
                        .as_f64()
                        .map_or("?".into(), |x| format!("{x:.2}"));
                    match (name, stream_of(call)) {
                        ("mos", Some(s)) => format!(
                            "why: call {id} had MOS {value}: its stream {} -> {} {}",
                            s.totals.src,
                            s.totals.dst,
                            describe(s)
                        ),
                        (_, Some(s)) => format!(
                            "why: call {id} lost {value} % on {} -> {}: {} packets lost in the \
                             network and {} discarded by the jitter buffer, of {}",
                            s.totals.src,
                            s.totals.dst,
                            s.totals.lost,
                            s.totals.jb_discarded,
                            s.totals.expected
                        ),
                        ("mos", None) => format!("why: call {id} had MOS {value}"),
                        (_, None) => format!("why: call {id} lost {value} % (effective)"),
                    }
                })
                .collect();
            let more = calls.len().saturating_sub(3);
            let mut text = if lines.is_empty() {
                format!("why: {} call(s) breached", evidence["breaching"])
            } else {
                lines.join("\n      ")
            };
            if more > 0 {
                text.push_str(&format!(" (and {more} more)"));
            }
            text
        }
        "jitter_p95" => format!(
            "why: p95 {} ms over {} packets (p50 {} ms, p99 {} ms) above {} ms",
            opt(v["measured"].as_f64(), 2),
            evidence["samples"],
            opt(evidence["p50_ms"].as_f64(), 2),
            opt(evidence["p99_ms"].as_f64(), 2),
            c.jitter_p95_max_ms
        ),
        "uptime" => {
            let intervals = evidence["intervals"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let lines: Vec<String> = intervals
                .iter()
                .map(|d| {
                    let secs = d["duration_s"].as_f64().unwrap_or(0.0);
                    format!(
                        "why: {} down ({}) from {} to {}: {:.0} s ({:.1} min) not covered by \
                         maintenance, of {:.0} s evaluated",
                        d["agent"].as_str().unwrap_or("?"),
                        d["reason"].as_str().unwrap_or("?"),
                        d["start"].as_str().unwrap_or("?"),
                        d["end"].as_str().unwrap_or("?"),
                        secs,
                        secs / 60.0,
                        // Outside maintenance, once the agent had reported.
                        evidence["measured_s"].as_f64().unwrap_or(0.0),
                    )
                })
                .collect();
            if lines.is_empty() {
                "why: downtime without listed intervals".to_owned()
            } else {
                lines.join("\n      ")
            }
        }
        _ => "why: see the collector's detail".to_owned(),
    }
}

/// Writes the demo customer's report of the replayed hours as HTML (0600) in the temporary
/// directory of the system, where it outlives the demo; returns its path.
async fn write_report(store: &Store, customer: &voqa_collector::sla::Customer) -> Result<PathBuf> {
    use voqa_collector::report::build::ReportPeriodSpec;
    use voqa_collector::report::format::{ReportFormat, produce};
    let period = ReportPeriodSpec::parse(None, Some(FROM), Some(TO)).context("the demo period")?;
    let html = produce(
        store,
        customer,
        &period,
        ReportFormat::Html,
        voqa_collector::now_ns(),
        env!("CARGO_PKG_VERSION"),
    )
    .await
    .context("building the demo customer's report")?;
    let path = std::env::temp_dir().join(format!("voqa-demo-report-{CUSTOMER}.html"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    std::io::Write::write_all(&mut file, &html)
        .with_context(|| format!("cannot write {}", path.display()))?;
    progress(&format!("wrote the customer report to {}", path.display()));
    Ok(path)
}

/// Where to look further.
fn access(base: &str, token: &str, once: bool) -> String {
    let sla = format!("{base}/api/v1/customers/{CUSTOMER}/sla?from={FROM}&to={TO}");
    let streams = format!("{base}/api/v1/streams?final=true&from={FROM}&to={TO}");
    format!(
        "\nCollector: {base} ({})\nOps token: {token}\n\
         \x20 curl -s -H 'Authorization: Bearer {token}' '{sla}'\n\
         \x20 curl -s -H 'Authorization: Bearer {token}' '{streams}'\n",
        if once {
            "stopped after printing: --once"
        } else {
            "serving until Ctrl-C; its database is deleted on exit"
        }
    )
}
