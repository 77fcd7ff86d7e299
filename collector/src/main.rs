//! The `voqa-collector` command line: serve, token management, config check. The only place
//! that prints or decides exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use voqa_collector::api::{self, AppState};
use voqa_collector::auth::{Role, new_token};
use voqa_collector::config::CollectorConfig;
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
    /// Serve the HTTP API.
    Serve {
        /// Listen address [default: 127.0.0.1:8080].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Manage API tokens (only their hashes are stored).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Validate the configuration and reach the database, then exit.
    CheckConfig,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once and cannot be shown again.
    Create {
        /// agent, ops or customer:ID
        #[arg(long)]
        role: String,
    },
    /// List tokens (id, role, created, revoked); never the tokens themselves.
    List,
    /// Revoke a token by id.
    Revoke { id: String },
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
        Command::Serve { listen } => {
            if let Some(l) = listen {
                config.server.listen = l;
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
            let listener = tokio::net::TcpListener::bind(&config.server.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.server.listen))?;
            let local = listener.local_addr()?;
            eprintln!(
                "voqa-collector: listening on http://{local} (store {})",
                redact(&config.server.database)
            );
            let retention = std::time::Duration::from_secs(config.server.retention_days * 86_400);
            let state = AppState {
                store: store.clone(),
                config: Arc::new(config),
                metrics: Arc::default(),
            };
            tokio::spawn(retention_job(store, retention));
            api::serve(listener, state, shutdown_signal()).await?;
            eprintln!("voqa-collector: stopped");
            Ok(())
        }
        Command::Token(cmd) => {
            let store = Store::open(&config.server.database)
                .await
                .context("opening the store")?;
            match cmd {
                TokenCommand::Create { role } => {
                    let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
                    let (token, id) = new_token().context("reading /dev/urandom")?;
                    store
                        .token_insert(
                            &id,
                            &voqa_collector::auth::hash_token(&token),
                            &role.as_string(),
                            voqa_collector::now_ns(),
                        )
                        .await?;
                    eprintln!(
                        "token {id} ({}) created; it is shown once:",
                        role.as_string()
                    );
                    println!("{token}");
                }
                TokenCommand::List => {
                    for t in store.token_list().await? {
                        println!(
                            "{}  {:<24}  created {}{}",
                            t.id,
                            t.role,
                            voqa_wire::Timestamp::from_ns(t.created_ns),
                            if t.revoked { "  REVOKED" } else { "" }
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

/// The database URL without a password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://***@{}", &url[..s], &url[a + 1..]),
        _ => url.to_owned(),
    }
}

async fn retention_job(store: Store, keep: std::time::Duration) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let before = voqa_collector::now_ns() - keep.as_nanos() as i64;
        match store.delete_reports_before(before).await {
            Ok(n) if n > 0 => eprintln!("voqa-collector: retention deleted {n} per-stream rows"),
            Ok(_) => {}
            Err(e) => eprintln!("voqa-collector: retention failed: {e}"),
        }
        // Fresh planner statistics keep the SLA queries on their indexes as tables grow.
        if let Err(e) = store.refresh_statistics().await {
            eprintln!("voqa-collector: refreshing planner statistics failed: {e}");
        }
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
