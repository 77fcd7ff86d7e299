//! The `voqa-collector` command line: serve, token management, config check, backup and
//! restore. The only place
//! that prints or decides exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use std::io::Write as _;

use anyhow::Context;
use clap::{Parser, Subcommand};

use voqa_collector::auth::{AgentBinding, Role};
use voqa_collector::backup;
use voqa_collector::config::CollectorConfig;
use voqa_collector::serve::{self, Server};
use voqa_collector::store::Store;

#[derive(Parser)]
#[command(
    name = "voqa-collector",
    version,
    about = "voqa collector: ingest, storage, SLA commitments, ops API",
    long_about = "voqa collector: receives the agents' stream reports and heartbeats over \
HTTP(S), stores each once (SQLite or PostgreSQL), evaluates customers' SLA commitments and \
serves the ops and customer API.",
    after_help = "\
Examples:
  voqa-collector --config /etc/voqa/collector.toml check-config
  voqa-collector --config /etc/voqa/collector.toml serve
  voqa-collector --config /etc/voqa/collector.toml token create --role agent --agent 'fra-media-*'
  voqa-collector --config /etc/voqa/collector.toml token create --role ops
  voqa-collector --config /etc/voqa/collector.toml token list

Files:
  /etc/voqa/collector.toml      configuration (every option, commented); SIGHUP re-reads the TLS files
  /var/lib/voqa-collector/      the SQLite store of the packaged configuration

Exit status: 0 success; 2 error (one line on stderr saying why).
See also: voqa-collector-serve(1), voqa-collector-token(1), voqa-agent(1)."
)]
struct Cli {
    /// Configuration file (TOML: listen, database, limits, [[customers]]).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Database URL, overriding the file: sqlite:PATH or postgres://...
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (HTTPS with --tls-cert and --tls-key). SIGHUP re-reads the
    /// configuration's customers and commitments, and the certificate.
    #[command(after_help = "\
Examples:
  voqa-collector --config /etc/voqa/collector.toml serve
  voqa-collector --database sqlite:/tmp/test.db serve --listen 127.0.0.1:8080
  voqa-collector serve --listen 0.0.0.0:8443 --tls-cert collector.crt --tls-key collector.key

Under systemd (Type=notify) it reports READY once the listener and the store are up, and feeds
the watchdog only while the store answers.")]
    Serve {
        /// Listen address [default: 127.0.0.1:8080].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// PEM certificate chain, leaf first (with --tls-key; overrides tls_cert).
        #[arg(long, value_name = "PATH")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of the certificate (with --tls-cert; overrides tls_key).
        #[arg(long, value_name = "PATH")]
        tls_key: Option<PathBuf>,
    },
    /// Manage API tokens (only their hashes are stored).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Validate the configuration and reach the database, then exit.
    #[command(after_help = "\
Examples:
  voqa-collector --config /etc/voqa/collector.toml check-config
  sudo -u voqa voqa-collector --config /etc/voqa/collector.toml check-config")]
    CheckConfig,
    /// Copy the SQLite store while the collector serves it: one consistent snapshot, written
    /// 0600, fsynced and integrity-checked before it gets its name. PostgreSQL: prints the
    /// pg_dump recipe and fails.
    #[command(group(clap::ArgGroup::new("where").required(true).args(["out", "dir"])))]
    Backup {
        /// Write the backup to this file (must not exist).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Write it into this directory as voqa-collector-YYYYMMDDTHHMMSSZ.db (UTC), then delete
        /// the oldest such files beyond --keep.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Backups kept in --dir [default: backup_keep from the config, 7].
        #[arg(long, value_name = "N", requires = "dir")]
        keep: Option<usize>,
    },
    /// Put a backup in place of the SQLite store. Refuses while a collector serves the store,
    /// a corrupt file, a newer or foreign schema; migrates an older one.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Replace an existing store (kept beside it as STORE.replaced-TIME).
        #[arg(long)]
        force: bool,
    },
    /// Write the man pages and shell completions into DIR (package build).
    #[command(hide = true)]
    GenerateManual {
        #[arg(value_name = "DIR")]
        out: PathBuf,
    },
    /// Write a customer's SLA report for a month (of its time zone) or a period.
    Report {
        /// A configured customer's id.
        #[arg(long)]
        customer: String,
        /// A calendar month of the customer's time zone, YYYY-MM.
        #[arg(long, value_name = "YYYY-MM", conflicts_with_all = ["from", "to"])]
        period: Option<String>,
        /// Start: a date (midnight in the customer's zone) or an RFC 3339 UTC time.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// End (exclusive), as --from.
        #[arg(long, requires = "from")]
        to: Option<String>,
        /// html, csv, json or pdf (pdf needs Chromium).
        #[arg(long, default_value = "html")]
        format: String,
        /// Write here (created 0600) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Send the month's report now, as serve does on the 1st: mailed to the customer's
        /// report_recipients through [alerts.smtp] (report_mail_format decides the form)
        /// and/or posted, signed, to its report_webhook; each send recorded. The month
        /// defaults to last month of the customer's zone.
        #[arg(long, conflicts_with_all = ["from", "to", "out"])]
        send: bool,
        /// With --send: send a month that was sent already once more.
        #[arg(long, requires = "send")]
        force: bool,
        /// With --send: only this channel, email or webhook (default: every one the customer
        /// has).
        #[arg(long, requires = "send", value_name = "email|webhook")]
        channel: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once and cannot be shown again.
    Create {
        /// agent, ops or customer:ID
        #[arg(long)]
        role: String,
        /// For --role agent: the agent ids it may write as, ID[,ID...]; globs allowed
        /// (`fra-media-*`, `?` one character; `'*'` for every agent).
        #[arg(long, value_name = "ID[,ID...]")]
        agent: Option<String>,
        /// Create a customer token even if the customer is not in the configuration.
        #[arg(long)]
        force: bool,
    },
    /// List tokens (id, role, agents, created, last used, revoked); never the tokens themselves.
    List,
    /// Revoke a token by id.
    Revoke { id: String },
}

/// Creates (or truncates) a file only its owner may read: reports hold call data.
fn create_private(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // An existing file keeps its mode on open: narrow it as well.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private", path.display()))?;
    }
    Ok(file)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Journald-structured under systemd, plain `LEVEL target: message` lines otherwise.
    voqa_service::log::init("voqa-collector");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("voqa-collector: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voqa-collector: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The command line's overrides of the file, applied at start and again on SIGHUP.
#[derive(Clone, Default)]
struct Overrides {
    database: Option<String>,
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

impl Overrides {
    fn apply(&self, config: &mut CollectorConfig) {
        if let Some(db) = &self.database {
            config.server.database = db.clone();
        }
        if let Some(l) = &self.listen {
            config.server.listen = l.clone();
        }
        if self.tls_cert.is_some() {
            config.server.tls_cert = self.tls_cert.clone();
        }
        if self.tls_key.is_some() {
            config.server.tls_key = self.tls_key.clone();
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::GenerateManual { out } = &cli.command {
        use clap::CommandFactory;
        for path in voqa_service::docs::write_manual(Cli::command(), out)? {
            println!("{}", path.display());
        }
        return Ok(());
    }
    let mut config = CollectorConfig::load(cli.config.as_deref())?;
    let mut overrides = Overrides {
        database: cli.database,
        ..Overrides::default()
    };
    overrides.apply(&mut config);
    match cli.command {
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
        } => {
            overrides = Overrides {
                listen,
                tls_cert,
                tls_key,
                ..overrides
            };
            overrides.apply(&mut config);
            let problems = config.problems();
            anyhow::ensure!(
                problems.is_empty(),
                "invalid configuration: {}",
                problems.join("; ")
            );
            // Held until the process ends: `restore` refuses while it is (SQLite only).
            let _lock = match backup::sqlite_path(&config.server.database) {
                Ok(path) => Some(
                    backup::StoreLock::acquire(&path)
                        .context("another collector or a restore holds this store")?,
                ),
                Err(_) => None,
            };
            let store = Store::open(&config.server.database)
                .await
                .context("opening the store")?;
            // A log file that cannot be opened is a configuration error, found now.
            voqa_collector::api::access_log::open_sink(&config.server)?;
            warn_unbound_agent_tokens(&store, config.server.allow_unbound_agent_tokens).await?;
            let listener = tokio::net::TcpListener::bind(&config.server.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.server.listen))?;
            let database = redact(&config.server.database);
            let retention = std::time::Duration::from_secs(config.server.retention_days * 86_400);
            let notifier = std::sync::Arc::new(
                voqa_service::notify::Notifier::from_env().unwrap_or_else(|e| {
                    eprintln!("voqa-collector: no systemd notifications: {e}");
                    voqa_service::notify::Notifier::disabled()
                }),
            );
            let handle = Server::start(config, store.clone(), listener, shutdown_signal()).await?;
            #[cfg(unix)]
            {
                // SIGHUP re-reads the file (when there is one) with the same overrides. Watched
                // before the listening line and READY=1: a reload from then on must not find
                // SIGHUP's default action (the end of the process) still in place.
                let source: Option<serve::ConfigSource> = cli.config.clone().map(|path| {
                    Box::new(move || {
                        let mut config =
                            CollectorConfig::load(Some(&path)).map_err(|e| e.to_string())?;
                        overrides.apply(&mut config);
                        Ok(config)
                    }) as serve::ConfigSource
                });
                tokio::spawn(serve::reload_on_sighup(&handle, source));
            }
            let listening = format!(
                "listening on {} (store {database}{})",
                handle.base_url(),
                if handle.tls().is_some() {
                    "; SIGHUP reloads the configuration and the certificate"
                } else {
                    "; plain HTTP: terminate TLS at a proxy in front; SIGHUP reloads the configuration"
                }
            );
            tracing::info!(address = %handle.base_url(), store = %database, "{listening}");
            // The listener accepts and the store answered its migrations: ready.
            if let Err(e) = notifier.ready(&listening) {
                tracing::warn!("systemd notification: {e}");
            }
            if let Some(period) = notifier.watchdog() {
                tokio::spawn(serve::watchdog::feed_while_store_answers(
                    store.clone(),
                    std::sync::Arc::clone(&notifier),
                    period,
                    listening,
                ));
            }
            // The alert engine: every replica runs one; the lease in the store lets one evaluate.
            let engine = voqa_collector::alerts::engine::Engine::new(
                store.clone(),
                handle.live_config().clone(),
                handle.metrics(),
                format!("{}-{}", hostname(), std::process::id()),
                handle.base_url(),
            );
            let holder = engine.holder().to_owned();
            tokio::spawn(voqa_collector::alerts::engine::run(engine));
            tokio::spawn(serve::retention_job(store.clone(), retention));
            // Monthly reports to customers' report_recipients and report_webhook; the wall
            // clock enters here.
            let sender = voqa_collector::report_send::Sender {
                store: store.clone(),
                owner: voqa_collector::report_send::new_owner()
                    .context("a random id for report sends")?,
                collector_version: env!("CARGO_PKG_VERSION"),
                clock: std::sync::Arc::new(voqa_collector::now_ns),
                metrics: Some(handle.metrics()),
            };
            tokio::spawn(voqa_collector::report_send::run(
                sender,
                handle.live_config().clone(),
            ));
            handle.wait().await?;
            // Another replica may take over at once instead of waiting for the lease to expire.
            if let Err(e) = store
                .alert_lease_release(voqa_collector::store::alerts::ENGINE_LEASE, &holder)
                .await
            {
                tracing::warn!("releasing the alert engine's lease: {e}");
            }
            let _ = notifier.stopping("stopped");
            tracing::info!("stopped");
            Ok(())
        }
        Command::Token(cmd) => {
            let store = Store::open(&config.server.database)
                .await
                .context("opening the store")?;
            match cmd {
                TokenCommand::Create { role, agent, force } => {
                    let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
                    let mut what = role.as_string();
                    let token = match (&role, agent) {
                        (Role::Agent, Some(agent)) => {
                            let binding =
                                AgentBinding::parse(&agent).map_err(anyhow::Error::msg)?;
                            what = format!("agent, bound to {binding}");
                            store.create_agent_token(&binding).await?
                        }
                        (Role::Agent, None) => anyhow::bail!(
                            "an agent token is bound to the agent ids it may write as: add \
                             --agent ID[,ID...] (globs like fra-media-* allowed)"
                        ),
                        (_, Some(_)) => anyhow::bail!("--agent goes with --role agent only"),
                        (Role::Customer(id), None) if config.customer(id).is_none() => {
                            let configured = config
                                .customers
                                .iter()
                                .map(|c| c.id.as_str())
                                .collect::<Vec<_>>();
                            let configured = if configured.is_empty() {
                                "none (is --config given?)".to_string()
                            } else {
                                configured.join(", ")
                            };
                            anyhow::ensure!(
                                force,
                                "customer '{id}' is not in the configuration (configured: \
                                 {configured}); check the id, or add --force to create the \
                                 token anyway"
                            );
                            eprintln!(
                                "voqa-collector: warning: customer '{id}' is not in the \
                                 configuration (configured: {configured}); creating the token \
                                 anyway (--force)"
                            );
                            store.create_token(&role).await?
                        }
                        (_, None) => store.create_token(&role).await?,
                    };
                    eprintln!("token {} ({}) created; it is shown once:", token.id, what);
                    println!("{}", token.secret);
                }
                TokenCommand::List => {
                    let tokens = store.token_list().await?;
                    println!(
                        "{:<12}  {:<24}  {:<24}  {:<27}  {:<27}  REVOKED",
                        "ID", "ROLE", "AGENTS", "CREATED", "LAST USED"
                    );
                    for t in tokens {
                        let agents = match (t.role.as_str(), t.agents.as_deref()) {
                            (_, Some(agents)) => agents.to_string(),
                            ("agent", None) => "UNBOUND".to_string(),
                            _ => "-".to_string(),
                        };
                        let last_used = t.last_used_ns.map_or("-".to_string(), |ns| {
                            voqa_wire::Timestamp::from_ns(ns).to_string()
                        });
                        println!(
                            "{:<12}  {:<24}  {:<24}  {:<27}  {:<27}  {}",
                            t.id,
                            t.role,
                            agents,
                            voqa_wire::Timestamp::from_ns(t.created_ns).to_string(),
                            last_used,
                            if t.revoked { "yes" } else { "no" }
                        );
                    }
                }
                TokenCommand::Revoke { id } => {
                    anyhow::ensure!(store.token_revoke(&id).await?, "no token with id {id}");
                    println!("token {id} revoked");
                }
            }
            Ok(())
        }
        Command::Backup { out, dir, keep } => {
            let problems = config.problems();
            anyhow::ensure!(
                problems.is_empty(),
                "invalid configuration: {}",
                problems.join("; ")
            );
            let store = backup::sqlite_path(&config.server.database)?;
            let (info, pruned) = match (out, dir) {
                (Some(out), _) => (backup::backup(&store, &out).await?, Vec::new()),
                (None, Some(dir)) => {
                    let keep = keep.unwrap_or(config.server.backup_keep);
                    backup::backup_into_dir(&store, &dir, keep, voqa_collector::now_ns()).await?
                }
                (None, None) => anyhow::bail!("--out FILE or --dir DIR"),
            };
            println!(
                "backup {} written: {} bytes, schema version {}, integrity ok",
                info.path.display(),
                info.bytes,
                info.schema_version
            );
            for path in pruned {
                println!("deleted old backup {}", path.display());
            }
            Ok(())
        }
        Command::Restore { file, force } => {
            let store = backup::sqlite_path(&config.server.database).map_err(|e| match e {
                backup::BackupError::Postgres { .. } => anyhow::anyhow!(
                    "the store is PostgreSQL: restore it with pg_restore:\n{}",
                    backup::pg_recipe()
                ),
                other => other.into(),
            })?;
            let info = backup::restore(&file, &store, force, voqa_collector::now_ns()).await?;
            if let Some(replaced) = &info.replaced {
                println!("the previous store was moved to {}", replaced.display());
            }
            let migrated = if info.from_version == info.to_version {
                String::new()
            } else {
                format!(", migrated from schema version {}", info.from_version)
            };
            println!(
                "restored {} into {}: integrity ok, schema version {}{migrated}",
                file.display(),
                info.store.display(),
                info.to_version
            );
            Ok(())
        }
        Command::GenerateManual { .. } => Ok(()),
        Command::Report {
            customer,
            period,
            send: true,
            force,
            channel,
            ..
        } => {
            send_report(
                &config,
                &customer,
                period.as_deref(),
                force,
                channel.as_deref(),
            )
            .await
        }
        Command::Report {
            customer,
            period,
            from,
            to,
            format,
            out,
            ..
        } => {
            use voqa_collector::report::build::ReportPeriodSpec;
            use voqa_collector::report::format::{ReportFormat, produce};
            let format = ReportFormat::parse(&format)?;
            let spec = ReportPeriodSpec::parse(period.as_deref(), from.as_deref(), to.as_deref())?;
            let customer = config.customer(&customer).cloned().with_context(|| {
                format!("no customer '{customer}' in the configuration (is --config given?)")
            })?;
            let store = Store::open(&config.server.database)
                .await
                .context("opening the store")?;
            let now = voqa_collector::now_ns();
            let mut sink: Box<dyn std::io::Write> = match &out {
                Some(path) => Box::new(std::io::BufWriter::new(create_private(path)?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            // CSV is written as the calls are read; the other forms are whole documents.
            if format == ReportFormat::Csv {
                voqa_collector::report::csv::write(&store, &customer, &spec, now, &mut sink)
                    .await?;
            } else {
                let bytes = produce(
                    &store,
                    &customer,
                    &spec,
                    format,
                    now,
                    env!("CARGO_PKG_VERSION"),
                )
                .await?;
                sink.write_all(&bytes)?;
            }
            sink.flush()?;
            drop(sink);
            if let Some(path) = out {
                eprintln!("voqa-collector: report written to {}", path.display());
            }
            store.close().await;
            Ok(())
        }
        Command::CheckConfig => {
            let problems = config.problems();
            for p in &problems {
                println!("FAIL {p}");
            }
            println!(
                "ok   {} customer(s) with commitments",
                config.customers.len()
            );
            match Store::open(&config.server.database).await {
                Ok(s) => {
                    s.ping().await?;
                    println!(
                        "ok   store {} reachable, migrations applied",
                        redact(&config.server.database)
                    );
                }
                Err(e) => {
                    println!("FAIL store {}: {e}", redact(&config.server.database));
                    anyhow::bail!("store unreachable");
                }
            }
            anyhow::ensure!(problems.is_empty(), "{} problem(s) found", problems.len());
            Ok(())
        }
    }
}

/// `report --send`: sends one month's report now through each of the customer's channels
/// (or `channel`), and records each send as `serve` does. Fails (exit 2) if any channel did
/// not send, after trying every one.
async fn send_report(
    config: &CollectorConfig,
    customer: &str,
    period: Option<&str>,
    force: bool,
    channel: Option<&str>,
) -> anyhow::Result<()> {
    use voqa_collector::report_send::{self, ReportSendError, SendOutcome};
    use voqa_collector::store::report_sends::{Claim, ClaimRules, SendChannel};
    let problems = config.problems();
    anyhow::ensure!(
        problems.is_empty(),
        "invalid configuration: {}",
        problems.join("; ")
    );
    let customer = config.customer(customer).with_context(|| {
        format!("no customer '{customer}' in the configuration (is --config given?)")
    })?;
    let channels =
        match channel {
            Some(text) => vec![SendChannel::parse(text).with_context(|| {
                format!("--channel {text:?}: the channels are email and webhook")
            })?],
            None => report_send::channels(customer),
        };
    if channels.is_empty() {
        return Err(ReportSendError::NoChannel(customer.id.clone()).into());
    }
    let now = voqa_collector::now_ns();
    let period = match period {
        Some(p) => {
            // Checked (and normalised) as `report --period` checks it.
            voqa_collector::report::build::ReportPeriodSpec::parse(Some(p), None, None)?;
            p.to_owned()
        }
        None => {
            let zone = voqa_collector::report::build::customer_zone(customer)?;
            let (year, month) =
                report_send::due_period(now, &zone).context("the clock is outside the calendar")?;
            report_send::period_label(year, month)
        }
    };
    let store = Store::open(&config.server.database)
        .await
        .context("opening the store")?;
    let sender = report_send::Sender {
        store: store.clone(),
        owner: report_send::new_owner().context("a random id for report sends")?,
        collector_version: env!("CARGO_PKG_VERSION"),
        clock: std::sync::Arc::new(voqa_collector::now_ns),
        metrics: None,
    };
    let rules = ClaimRules {
        ignore_schedule: true,
        resend: force,
    };
    let time = |ns: i64| voqa_wire::Timestamp::from_ns(ns).to_string();
    let id = &customer.id;
    let mut failures = Vec::new();
    for channel in channels {
        let outcome = sender
            .send_month(config, customer, &period, channel, rules)
            .await;
        let failure = match outcome {
            Ok(SendOutcome::Sent {
                destination,
                attachment,
                report_sha256,
                ..
            }) => {
                println!(
                    "report of {id} for {period} {} {destination} ({}report JSON SHA-256 {report_sha256})",
                    report_send::sent_verb(channel),
                    attachment.map_or(String::new(), |a| format!("{a}, "))
                );
                continue;
            }
            Err(e) => format!("the {channel} report of {id} for {period} was not sent: {e}"),
            Ok(SendOutcome::Failed {
                error,
                next_attempt_ns,
                ..
            }) => format!(
                "the {channel} report of {id} for {period} was not sent: {error} (recorded; \
                 serve retries it from {})",
                time(next_attempt_ns)
            ),
            Ok(SendOutcome::NotClaimed(Claim::AlreadySent { sent_ns })) => format!(
                "the {channel} report of {id} for {period} was sent already{}; add --force to \
                 send it again",
                sent_ns.map_or(String::new(), |ns| format!(" at {}", time(ns)))
            ),
            Ok(SendOutcome::NotClaimed(Claim::Busy { until_ns, by })) => format!(
                "the {channel} report of {id} for {period} is being sent by {} right now \
                 (claimed until {})",
                by.as_deref().unwrap_or("another collector"),
                time(until_ns)
            ),
            Ok(SendOutcome::NotClaimed(other)) => {
                format!("the {channel} report of {id} for {period} was not sent: {other:?}")
            }
        };
        failures.push(failure);
    }
    store.close().await;
    anyhow::ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}

/// Says at start how many agent tokens are not bound to agent ids, and what becomes of them.
async fn warn_unbound_agent_tokens(store: &Store, allowed: bool) -> anyhow::Result<()> {
    let unbound: Vec<String> = store
        .token_list()
        .await
        .context("listing tokens")?
        .into_iter()
        .filter(|t| t.role == "agent" && t.agents.is_none() && !t.revoked)
        .map(|t| t.id)
        .collect();
    if unbound.is_empty() {
        return Ok(());
    }
    let what = if allowed {
        "they may write as ANY agent (allow_unbound_agent_tokens = true)"
    } else {
        "their requests are refused with 403 (allow_unbound_agent_tokens = false)"
    };
    tracing::warn!(
        "{} agent token(s) not bound to agent ids ({}): {what}; \
         bind each with `voqa-collector token create --role agent --agent ID[,ID...]`, give the \
         new token to the agent, then `voqa-collector token revoke ID`",
        unbound.len(),
        unbound.join(", ")
    );
    Ok(())
}

/// The database URL without a password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://***@{}", &url[..s], &url[a + 1..]),
        _ => url.to_owned(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// This host's name, for the alert engine's lease holder (`/proc/sys/kernel/hostname`, else
/// `localhost`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().chars().take(64).collect())
        .ok()
        .filter(|h: &String| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
