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
    match cfg.sink() {
        SinkSpec::Stdout => out.push(ok("output.sink: stdout")),
        SinkSpec::File(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(_) => out.push(ok(format!("output.sink: {} is writable", path.display()))),
            Err(e) => out.push(fail(format!(
                "output.sink: cannot write {}: {e}",
                path.display()
            ))),
        },
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
