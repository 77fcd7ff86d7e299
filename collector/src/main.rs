//! The `voqa-collector` command line: serve, token management, config check. The only place
//! that prints or decides exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use std::io::Write as _;

use anyhow::Context;
use clap::{Parser, Subcommand};

use voqa_collector::auth::{AgentBinding, Role};
use voqa_collector::config::CollectorConfig;
use voqa_collector::serve::{self, Server};
use voqa_collector::store::Store;

#[derive(Parser)]
#[command(
    name = "voqa-collector",
    version,
    about = "voqa collector: ingest, storage, SLA commitments, ops API"
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
    /// Serve the HTTP API (HTTPS with --tls-cert and --tls-key; SIGHUP re-reads them).
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
    CheckConfig,
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = CollectorConfig::load(cli.config.as_deref())?;
    if let Some(db) = cli.database {
        config.server.database = db;
    }
    match cli.command {
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
        } => {
            if let Some(l) = listen {
                config.server.listen = l;
            }
            if tls_cert.is_some() {
                config.server.tls_cert = tls_cert;
            }
            if tls_key.is_some() {
                config.server.tls_key = tls_key;
            }
            let problems = config.problems();
            anyhow::ensure!(
                problems.is_empty(),
                "invalid configuration: {}",
                problems.join("; ")
            );
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
            let handle = Server::start(config, store.clone(), listener, shutdown_signal()).await?;
            eprintln!(
                "voqa-collector: listening on {} (store {database}{})",
                handle.base_url(),
                if handle.tls().is_some() {
                    "; SIGHUP reloads the certificate"
                } else {
                    "; plain HTTP: terminate TLS at a proxy in front"
                }
            );
            #[cfg(unix)]
            if let Some(tls) = handle.tls() {
                tokio::spawn(serve::reload_on_sighup(tls.clone()));
            }
            tokio::spawn(serve::retention_job(store, retention));
            handle.wait().await?;
            eprintln!("voqa-collector: stopped");
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
        Command::Report {
            customer,
            period,
            from,
            to,
            format,
            out,
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
    eprintln!(
        "voqa-collector: warning: {} agent token(s) not bound to agent ids ({}): {what}; \
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
