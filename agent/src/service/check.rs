//! `voqa-agent check-config`: validates the configuration and the permissions capture needs,
//! and says exactly what is missing. Opens (and closes) a small ring per interface as the real
//! permission test; touches nothing else.

use std::path::Path;

use super::config::{AgentConfig, Backend, SinkSpec};
use crate::capture::afpacket::{PacketRing, RingConfig};
use crate::host::capabilities;

/// One verdict line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    pub message: String,
}

fn ok(message: impl Into<String>) -> Check {
    Check {
        ok: true,
        message: message.into(),
    }
}

fn fail(message: impl Into<String>) -> Check {
    Check {
        ok: false,
        message: message.into(),
    }
}

fn check_sink_file(path: &Path) -> Check {
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        Ok(_) => ok(format!("output.sink: {} is writable", path.display())),
        Err(e) => fail(format!("output.sink: cannot write {}: {e}", path.display())),
    }
}

/// The `[ship]` section: the token file (readable, not empty, not readable by others) and the
/// spool directory (usable: it is opened, recovered and closed, as the agent will). The
/// collectors are not contacted: a collector that is down is not a configuration error.
fn check_ship(cfg: &AgentConfig) -> Vec<Check> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = vec![ok(format!(
        "ship.collectors: {}",
        cfg.ship.collectors.join(", ")
    ))];
    match &cfg.ship.token_file {
        None => out.push(fail("ship.token_file: required with ship.collectors")),
        Some(path) => match (std::fs::read_to_string(path), std::fs::metadata(path)) {
            (Ok(t), _) if t.trim().is_empty() => out.push(fail(format!(
                "ship.token_file: {} is empty",
                path.display()
            ))),
            (Ok(_), Ok(meta)) if meta.permissions().mode() & 0o077 != 0 => out.push(fail(format!(
                "ship.token_file: {} is readable by other users (mode {:o}): chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            ))),
            (Ok(_), _) => out.push(ok(format!(
                "ship.token_file: {} is readable",
                path.display()
            ))),
            (Err(e), _) => out.push(fail(format!(
                "ship.token_file: cannot read {}: {e}",
                path.display()
            ))),
        },
    }
    let dir = cfg
        .ship
        .spool_dir
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(crate::ship::config::DEFAULT_SPOOL_DIR));
    let opened = match crate::ship::delivery::spool_config(&cfg.ship, dir.clone()) {
        Ok(c) => crate::ship::spool::Spool::open(c),
        Err(e) => {
            out.push(fail(e.to_string()));
            return out;
        }
    };
    match opened {
        Err(crate::ship::spool::SpoolError::Locked(_)) => out.push(ok(format!(
            "ship.spool_dir: {} is in use by a running agent",
            dir.display()
        ))),
        Ok((spool, _)) => {
            let c = spool.counters();
            out.push(ok(format!(
                "ship.spool_dir: {} is usable ({} record(s) waiting, {} in the dead letter)",
                dir.display(),
                c.pending_records,
                c.dead_letter_records
            )));
        }
        Err(e) => out.push(fail(format!("ship.spool_dir: {}: {e}", dir.display()))),
    }
    out
}

pub fn check(cfg: &AgentConfig) -> Vec<Check> {
    let mut out: Vec<Check> = cfg.problems().into_iter().map(fail).collect();
    if out.is_empty() {
        out.push(ok("configuration values are valid"));
    }
    let caps = capabilities();
    if caps.net_raw {
        out.push(ok("CAP_NET_RAW is available (raw packet capture)"));
    } else {
        out.push(fail(
            "CAP_NET_RAW is missing: run as root or grant it (systemd: AmbientCapabilities=CAP_NET_RAW; or setcap cap_net_raw+ep voqa-agent)",
        ));
    }
    if cfg.capture.promiscuous {
        if caps.net_admin {
            out.push(ok("CAP_NET_ADMIN is available (promiscuous mode)"));
        } else {
            out.push(fail(
                "capture.promiscuous = true needs CAP_NET_ADMIN, which is missing",
            ));
        }
    }
    for iface in &cfg.capture.interfaces {
        if !Path::new("/sys/class/net").join(iface).exists() {
            out.push(fail(format!(
                "capture.interfaces: interface '{iface}' does not exist"
            )));
            continue;
        }
        if cfg.capture.backend == Backend::Pnet {
            out.push(ok(format!("{iface}: exists (pnet backend)")));
            continue;
        }
        let ring = RingConfig {
            interface: iface.clone(),
            block_size: 1 << 16,
            block_count: 2,
            ..RingConfig::default()
        };
        match PacketRing::open(&ring) {
            Ok(_) => out.push(ok(format!("{iface}: capture ring opens"))),
            Err(e) => out.push(fail(format!("{iface}: cannot open a capture ring: {e}"))),
        }
    }
    if cfg.ship.enabled() {
        out.extend(check_ship(cfg));
    } else {
        match cfg.sink() {
            SinkSpec::Stdout => out.push(ok("output.sink: stdout (no ship.collectors)")),
            SinkSpec::File(path) => out.push(check_sink_file(&path)),
        }
    }
    if let Some(key) = &cfg.privacy.key_file {
        match std::fs::read(key) {
            Ok(k) if !k.trim_ascii().is_empty() => out.push(ok(format!(
                "privacy.key_file: {} is readable",
                key.display()
            ))),
            Ok(_) => out.push(fail(format!(
                "privacy.key_file: {} is empty",
                key.display()
            ))),
            Err(e) => out.push(fail(format!(
                "privacy.key_file: cannot read {}: {e}",
                key.display()
            ))),
        }
    } else if cfg.privacy.pseudonymize {
        out.push(ok("privacy: pseudonymised with a random key per run (set privacy.key_file for stable pseudonyms)"));
    } else {
        out.push(ok(
            "privacy: pseudonymisation is OFF: Call-IDs and SIP users leave the host as captured",
        ));
    }
    if !cfg.metrics.listen.is_empty() {
        match std::net::TcpListener::bind(&cfg.metrics.listen) {
            Ok(_) => out.push(ok(format!(
                "metrics.listen: {} is free",
                cfg.metrics.listen
            ))),
            Err(e) => out.push(fail(format!(
                "metrics.listen: cannot listen on {}: {e}",
                cfg.metrics.listen
            ))),
        }
    }
    out
}
