//! An SMTP server of the tests' own: `smtp_sink.py` (aiosmtpd) on loopback, which parses each
//! message with Python's e-mail package and writes it as N.json (and its attachments) into a
//! directory. Shared by the monthly report and the alert e-mail tests. Skipped visibly without
//! aiosmtpd unless `VOQA_REQUIRE_AIOSMTPD` is set.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::collector_proc::wait_until;
use crate::harness;

/// The SMTP sink process; killed when dropped.
pub struct Sink {
    child: Child,
    pub port: u16,
    pub out: PathBuf,
}

impl Sink {
    /// Starts the sink, or says why not (a skip, or a failure under VOQA_REQUIRE_AIOSMTPD).
    pub fn start(
        dir: &Path,
        refuse_file: Option<&Path>,
        tls: Option<(&Path, &Path)>,
    ) -> Option<Sink> {
        Self::start_with(dir, refuse_file, tls, None)
    }

    /// As `start`; with `auth` (`USER:PASSWORD`), AUTH is required with exactly those.
    pub fn start_with(
        dir: &Path,
        refuse_file: Option<&Path>,
        tls: Option<(&Path, &Path)>,
        auth: Option<&str>,
    ) -> Option<Sink> {
        let probe = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output();
        if !probe.as_ref().is_ok_and(|o| o.status.success()) {
            harness::skip(
                "VOQA_REQUIRE_AIOSMTPD",
                "python3 with aiosmtpd is not installed (pip install aiosmtpd)",
            );
            return None;
        }
        let out = dir.join("mail");
        std::fs::create_dir_all(&out).expect("mail dir");
        let port_file = dir.join("smtp.port");
        let mut command = Command::new("python3");
        command
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/support/smtp_sink.py"
            ))
            .arg("--out")
            .arg(&out)
            .arg("--port-file")
            .arg(&port_file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("smtp.log")).expect("log"));
        if let Some(file) = refuse_file {
            command.arg("--refuse-file").arg(file);
        }
        if let Some((cert, key)) = tls {
            command.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        if let Some(auth) = auth {
            command.arg("--auth").arg(auth);
        }
        let mut child = command.spawn().expect("python3");
        let mut port = None;
        wait_until("the SMTP sink to listen", Duration::from_secs(30), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "smtp sink exited ({status}): {}",
                    std::fs::read_to_string(dir.join("smtp.log")).unwrap_or_default()
                );
            }
            port = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.trim().parse().ok());
            port.is_some()
        });
        Some(Sink {
            child,
            port: port.expect("port"),
            out,
        })
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .expect("mail dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json")
            })
            .collect()
    }

    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Value> {
        wait_until(&format!("{count} message(s)"), timeout, || {
            self.messages().len() >= count
        });
        self.messages()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
