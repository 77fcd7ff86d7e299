//! The real `voqa-collector` binary for the collector's own end-to-end tests: one-shot
//! commands (`token create`, `backup`, `restore`) and a `serve` process on 127.0.0.1:0 whose
//! address is read from its own log line. Every wait polls with a deadline; nothing sleeps a
//! fixed time hoping a server is ready.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_voqa-collector")
}

/// `voqa-collector --database sqlite:DB --config CONFIG ARGS...`
pub fn cli(db: &Path, config: &Path, args: &[&str]) -> Output {
    cli_url(&format!("sqlite:{}", db.display()), config, args)
}

/// `voqa-collector --database URL --config CONFIG ARGS...` (any store URL).
pub fn cli_url(database: &str, config: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--database")
        .arg(database)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run voqa-collector")
}

/// `token create --role ROLE_ARGS...`: the secret.
pub fn token(db: &Path, config: &Path, role_args: &[&str]) -> String {
    token_url(&format!("sqlite:{}", db.display()), config, role_args)
}

/// [`token`] on any store URL.
pub fn token_url(database: &str, config: &Path, role_args: &[&str]) -> String {
    let mut args = vec!["token", "create", "--role"];
    args.extend_from_slice(role_args);
    let out = cli_url(database, config, &args);
    assert!(
        out.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `serve` process; killed when dropped.
pub struct Served {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Served {
    /// Starts `serve --listen 127.0.0.1:0` with its log (stderr) in `log`, and waits for the
    /// line that says where it listens.
    pub fn start(db: &Path, config: &Path, log: &Path) -> Served {
        Self::start_url(&format!("sqlite:{}", db.display()), config, log)
    }

    /// [`Served::start`] on any store URL (`postgres://...` too).
    pub fn start_url(database: &str, config: &Path, log: &Path) -> Served {
        let log_file = std::fs::File::create(log).expect("log file");
        let child = Command::new(bin())
            .arg("--database")
            .arg(database)
            .arg("--config")
            .arg(config)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn serve");
        let mut served = Served {
            child,
            port: 0,
            log: log.to_owned(),
        };
        let mut port = None;
        wait_until("the collector to listen", Duration::from_secs(30), || {
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!("serve exited ({status}): {}", served.log_text());
            }
            port = served.log_text().lines().find_map(|line| {
                let rest = line.split("listening on http://").nth(1)?;
                let addr = rest.split([' ', ')', ';']).next()?;
                addr.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
            });
            port.is_some()
        });
        served.port = port.expect("port");
        served
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }

    /// Sends SIGHUP (through kill(1): the tests have no libc of their own) and waits until
    /// the log holds one more line containing `marker` than before.
    pub fn sighup_and_wait(&self, marker: &str) {
        let before = self.log_text().matches(marker).count();
        let status = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(status.success());
        wait_until(
            &format!("'{marker}' in the log"),
            Duration::from_secs(30),
            || self.log_text().matches(marker).count() > before,
        );
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client. reqwest is built with rustls but without a crypto provider of its own (no
/// aws-lc in the tree): ring is installed as the process's provider first.
pub fn http_client() -> reqwest::Client {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// GET with a bearer token: status and JSON body.
pub async fn get_json(base: &str, path: &str, token: &str) -> (u16, serde_json::Value) {
    let resp = http_client()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}
