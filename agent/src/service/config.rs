//! The agent's configuration file (`/etc/voqa/agent.toml`): typed, defaulted, validated with
//! messages that name the key. Command-line flags override it (see `main.rs`).
//!
//! Loading never touches capture devices; `check-config` does that separately.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::quality::jbuf::{JitterBufferModel, JitterBufferSettings};
use crate::streams::AnalyzerConfig;
use crate::streams::privacy::Pseudonymizer;

/// Checks a SIP port list: ports 1..=65535, no duplicates, at most
/// [`crate::capture::afpacket::bpf::MAX_TCP_PORTS`] (the capture filter's bound).
pub fn sip_ports_problem(ports: &[u16]) -> Result<(), String> {
    let max = crate::capture::afpacket::bpf::MAX_TCP_PORTS;
    if ports.len() > max {
        return Err(format!("{} ports, at most {max} are allowed", ports.len()));
    }
    if ports.contains(&0) {
        return Err("port 0 is not a port".to_owned());
    }
    if let Some(port) = ports
        .iter()
        .enumerate()
        .find(|(i, p)| ports.get(..*i).is_some_and(|before| before.contains(p)))
        .map(|(_, p)| p)
    {
        return Err(format!("port {port} is listed twice"));
    }
    Ok(())
}

/// Parses a comma-separated SIP port list (`--sip-ports 5060,5080`; empty: none).
pub fn parse_sip_ports(text: &str) -> Result<Vec<u16>, String> {
    let ports = text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<u16>()
                .map_err(|_| format!("'{t}' is not a TCP port"))
        })
        .collect::<Result<Vec<u16>, String>>()?;
    sip_ports_problem(&ports)?;
    Ok(ports)
}

/// Default location of the config file.
pub const DEFAULT_PATH: &str = "/etc/voqa/agent.toml";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[derive(Default)]
pub struct AgentConfig {
    /// Name of this agent in reports; default: the host name.
    pub agent_id: Option<String>,
    pub capture: CaptureConfig,
    pub analysis: AnalysisConfig,
    pub calls: CallsSection,
    pub output: OutputConfig,
    pub privacy: PrivacyConfig,
    pub health: HealthConfig,
    pub metrics: MetricsConfig,
    /// Shipping to collectors, with the disk spool (see `ship::config`).
    pub ship: crate::ship::config::ShipConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Zero-copy TPACKET_V3 ring (default).
    Afpacket,
    /// pnet's portable datalink channel: one copy and one syscall per packet, user-space
    /// timestamps; slower, for systems where the ring is unavailable.
    Pnet,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {
    pub interfaces: Vec<String>,
    /// Capture workers per interface; 0 = one per CPU core.
    pub workers: usize,
    pub backend: Backend,
    /// Bytes kept of each packet. The ring packs frames at their real size, so a large value
    /// costs nothing for RTP and keeps whole SIP messages reassembled by the kernel (defrag).
    pub snaplen: u32,
    /// Ring block size (bytes, power of two, multiple of the page size) and count, per worker.
    pub block_size: usize,
    pub block_count: usize,
    /// A block is handed over when full or after this many ms (bounds latency at low rates).
    pub retire_timeout_ms: u32,
    /// Put the interfaces in promiscuous mode (SPAN/mirror ports; needs CAP_NET_ADMIN).
    pub promiscuous: bool,
    /// How often kernel drop counters are read, seconds.
    pub stats_interval_s: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Interval reports every this many seconds (aligned to the packet clock).
    pub interval_s: u64,
    /// A stream without packets for this long gets its final report.
    pub idle_timeout_s: u64,
    /// Most streams tracked per worker; the least recently active is evicted beyond it.
    pub max_streams: usize,
    /// `fixed:MS` or `adaptive[:MIN,MAX,INIT,K]`.
    pub jitter_buffer: String,
    /// The emulated buffer re-anchors on this many consecutive late packets (a route change or a
    /// sender pause without a marker bit, metrics-spec §9.2a); 0 = never; 1 is refused.
    pub resync_after_late: u32,
    /// One-way network delay assumed for the E-model when RTCP gives no round trip.
    pub assumed_one_way_ms: f64,
    /// TCP ports carrying SIP (plain or WebSocket): their connections are reassembled and the
    /// live capture filter lets them through. SIP over TLS (5061) cannot be read; leave it out.
    pub sip_ports: Vec<u16>,
}

/// `[calls]`: the SIP dialog engine and the media problems of call records (also the
/// `analyze` flags `--local-net`, `--max-call-s`, `--no-rtp-s`, `--rtp-stopped-s`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsSection {
    /// The monitored host's networks (`10.0.0.0/8`, `2001:db8::/32`, or an address): a call
    /// whose INVITE enters them is `inbound`, one that leaves them `outbound`, and the other
    /// end is its `peer`. Empty: calls have no direction and no peer.
    pub local_nets: Vec<String>,
    /// Most open calls per worker; beyond it the call seen first is forgotten (counted).
    pub max_open_calls: usize,
    /// A call without final response this long after its INVITE ends `timeout`.
    pub setup_timeout_s: u64,
    /// An answered call without BYE this long after its answer ends `timeout`.
    pub max_call_s: u64,
    /// `no_rtp`: no RTP in a direction this long after the answer.
    pub no_rtp_s: f64,
    /// `rtp_stopped`: RTP paused in one direction this long while the other went on.
    pub rtp_stopped_s: f64,
}

impl Default for CallsSection {
    fn default() -> Self {
        let d = crate::calls::CallsConfig::default();
        CallsSection {
            local_nets: Vec::new(),
            max_open_calls: d.dialog.capacity,
            setup_timeout_s: (d.dialog.setup_timeout_ns / 1_000_000_000) as u64,
            max_call_s: (d.dialog.max_call_ns / 1_000_000_000) as u64,
            no_rtp_s: d.media.no_rtp_ns as f64 / 1e9,
            rtp_stopped_s: d.media.rtp_stopped_ns as f64 / 1e9,
        }
    }
}

impl CallsSection {
    /// What is wrong with the section, one line per problem.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for net in &self.local_nets {
            if let Err(e) = net.parse::<crate::calls::LocalNet>() {
                p.push(format!("calls.local_nets: {e}"));
            }
        }
        if self.max_open_calls == 0 {
            p.push("calls.max_open_calls: must be at least 1".to_owned());
        }
        if !(1..=86_400).contains(&self.setup_timeout_s) {
            p.push(format!(
                "calls.setup_timeout_s: {} must be 1..=86400",
                self.setup_timeout_s
            ));
        }
        if !(1..=7 * 86_400).contains(&self.max_call_s) {
            p.push(format!(
                "calls.max_call_s: {} must be 1..=604800",
                self.max_call_s
            ));
        }
        for (name, v) in [
            ("no_rtp_s", self.no_rtp_s),
            ("rtp_stopped_s", self.rtp_stopped_s),
        ] {
            if !(0.1..=3600.0).contains(&v) {
                p.push(format!("calls.{name}: {v} must be 0.1..=3600"));
            }
        }
        p
    }

    /// The settings of call tracking (invalid values, which `problems` names, give way to the
    /// defaults).
    pub fn calls_config(&self) -> crate::calls::CallsConfig {
        use crate::calls::{CallsConfig, DialogConfig, LocalNets, MediaThresholds};
        let d = CallsConfig::default();
        let ok = self.problems().is_empty();
        let pick = |v: i64, default: i64| if ok { v } else { default };
        CallsConfig {
            dialog: DialogConfig {
                capacity: pick(self.max_open_calls as i64, d.dialog.capacity as i64) as usize,
                setup_timeout_ns: pick(secs_to_ns(self.setup_timeout_s), d.dialog.setup_timeout_ns),
                max_call_ns: pick(secs_to_ns(self.max_call_s), d.dialog.max_call_ns),
                local_nets: LocalNets(
                    self.local_nets
                        .iter()
                        .filter_map(|n| n.parse().ok())
                        .collect(),
                ),
                ..d.dialog
            },
            media: MediaThresholds {
                no_rtp_ns: pick((self.no_rtp_s * 1e9) as i64, d.media.no_rtp_ns),
                rtp_stopped_ns: pick((self.rtp_stopped_s * 1e9) as i64, d.media.rtp_stopped_ns),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    /// `stdout` or `file:PATH` (JSON lines).
    pub sink: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Pseudonymise Call-IDs and SIP user parts before they leave the host.
    pub pseudonymize: bool,
    /// Secret key for the pseudonyms; without it a random key per run is used.
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    pub heartbeat_interval_s: u64,
    /// Process names whose up/down state the heartbeats carry (asterisk, freeswitch, ...).
    pub watch_processes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Prometheus endpoint address; empty string disables it. Loopback by default.
    pub listen: String,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            interfaces: Vec::new(),
            workers: 0,
            backend: Backend::Afpacket,
            snaplen: 65535,
            // 4 MiB per worker: 200 ms of 100,000 packets/s. The ring is mapped into the agent,
            // so it counts in its RSS; raise block_count for higher rates.
            block_size: 1 << 20,
            block_count: 4,
            retire_timeout_ms: 20,
            promiscuous: false,
            stats_interval_s: 2,
        }
    }
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            interval_s: 10,
            idle_timeout_s: 30,
            max_streams: 100_000,
            jitter_buffer: "fixed:60".to_owned(),
            resync_after_late: u32::from(JitterBufferSettings::DEFAULT_RESYNC_AFTER_LATE),
            assumed_one_way_ms: 20.0,
            sip_ports: crate::reassembly::tcp::DEFAULT_SIP_PORTS.to_vec(),
        }
    }
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            sink: "stdout".to_owned(),
        }
    }
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            pseudonymize: true,
            key_file: None,
        }
    }
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            heartbeat_interval_s: 15,
            watch_processes: Vec::new(),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: "127.0.0.1:9477".to_owned(),
        }
    }
}

/// Where reports go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    Stdout,
    File(PathBuf),
}

impl std::str::FromStr for SinkSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "stdout" || s == "-" {
            return Ok(SinkSpec::Stdout);
        }
        match s.strip_prefix("file:") {
            Some(path) if !path.is_empty() => Ok(SinkSpec::File(PathBuf::from(path))),
            _ => Err(format!("sink '{s}' is not 'stdout' or 'file:PATH'")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The cause is in the message, not also a `source()`: printed with its chain, once.
    #[error("{path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("pseudonym key {path}: {message}")]
    Key { path: PathBuf, message: String },
}

impl AgentConfig {
    /// Reads `path`. A missing file is an error when `explicit`; the default path may be absent
    /// (flags alone can configure the agent).
    pub fn load(path: &Path, explicit: bool) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(AgentConfig::default());
            }
            Err(error) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    error,
                });
            }
        };
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', " "))
    }

    /// What an installed but not yet edited configuration lacks before `run` is worth
    /// starting: an interface to capture on and a destination (a collector, or a file sink;
    /// stdout is the default nobody chose). Empty when both are there. The package's postinst
    /// and the unit's start condition ask this through `check-config --configured`.
    pub fn unconfigured(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if self.capture.interfaces.is_empty() {
            missing.push(
                "capture.interfaces names no interface (e.g. interfaces = [\"eth0\"])".to_owned(),
            );
        }
        if !self.ship.enabled() && self.sink() == SinkSpec::Stdout {
            missing.push(
                "ship.collectors names no collector (e.g. collectors = \
                 [\"https://collector.example:8443\"], with ship.token_file)"
                    .to_owned(),
            );
        }
        missing
    }

    /// Every problem, each naming its key; empty when the config can run live capture.
    pub fn problems(&self) -> Vec<String> {
        let mut p = self.capture_problems();
        p.extend(self.analysis_problems());
        p
    }

    /// Problems of the `capture` section (live capture only; `replay` reads files).
    fn capture_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.capture.interfaces.is_empty() {
            p.push(
                "capture.interfaces: no interface configured (set it or pass --interface)"
                    .to_owned(),
            );
        }
        for iface in &self.capture.interfaces {
            if iface.is_empty() || iface.len() > 15 || iface.contains('/') {
                p.push(format!(
                    "capture.interfaces: '{iface}' is not a valid interface name"
                ));
            }
        }
        let c = &self.capture;
        if !c.block_size.is_power_of_two() || c.block_size < 4096 {
            p.push(format!(
                "capture.block_size: {} must be a power of two ≥ 4096",
                c.block_size
            ));
        }
        if c.block_count == 0 || c.block_count > 65536 {
            p.push(format!(
                "capture.block_count: {} must be 1..=65536",
                c.block_count
            ));
        }
        if !(64..=65535).contains(&c.snaplen) {
            p.push(format!("capture.snaplen: {} must be 64..=65535", c.snaplen));
        }
        if c.workers > 256 {
            p.push(format!("capture.workers: {} is more than 256", c.workers));
        }
        if c.stats_interval_s == 0 {
            p.push("capture.stats_interval_s: must be at least 1".to_owned());
        }
        p
    }

    /// Problems of everything but the `capture` section: what `replay` needs.
    pub fn analysis_problems(&self) -> Vec<String> {
        let mut p = self.ship.problems();
        let a = &self.analysis;
        if a.interval_s == 0 || a.interval_s > 3600 {
            p.push(format!(
                "analysis.interval_s: {} must be 1..=3600",
                a.interval_s
            ));
        }
        if a.idle_timeout_s == 0 {
            p.push("analysis.idle_timeout_s: must be at least 1".to_owned());
        }
        if a.max_streams == 0 {
            p.push("analysis.max_streams: must be at least 1".to_owned());
        }
        if let Err(e) = a.jitter_buffer.parse::<JitterBufferModel>() {
            p.push(format!("analysis.jitter_buffer: {e}"));
        }
        if let Err(e) = JitterBufferSettings::resync_after_late(a.resync_after_late) {
            p.push(format!("analysis.resync_after_late: {e}"));
        }
        if !(0.0..=10_000.0).contains(&a.assumed_one_way_ms) {
            p.push(format!(
                "analysis.assumed_one_way_ms: {} must be 0..=10000",
                a.assumed_one_way_ms
            ));
        }
        if let Err(e) = sip_ports_problem(&a.sip_ports) {
            p.push(format!("analysis.sip_ports: {e}"));
        }
        p.extend(self.calls.problems());
        if let Err(e) = self.output.sink.parse::<SinkSpec>() {
            p.push(format!("output.sink: {e}"));
        }
        if self.health.heartbeat_interval_s == 0 {
            p.push("health.heartbeat_interval_s: must be at least 1".to_owned());
        }
        if !self.metrics.listen.is_empty()
            && self.metrics.listen.parse::<std::net::SocketAddr>().is_err()
        {
            p.push(format!(
                "metrics.listen: '{}' is not an address:port",
                self.metrics.listen
            ));
        }
        p
    }

    pub fn sink(&self) -> SinkSpec {
        self.output.sink.parse().unwrap_or(SinkSpec::Stdout)
    }

    pub fn jitter_buffer(&self) -> JitterBufferModel {
        self.analysis.jitter_buffer.parse().unwrap_or_default()
    }

    /// `analysis.resync_after_late`, the default where invalid (`problems` names it).
    pub fn resync_after_late(&self) -> u16 {
        JitterBufferSettings::resync_after_late(self.analysis.resync_after_late)
            .unwrap_or(JitterBufferSettings::DEFAULT_RESYNC_AFTER_LATE)
    }

    /// The analyzer settings of live capture and replay: interval reports on packet-time
    /// boundaries, the idle timeout, the flow table size, the quality model.
    pub fn analyzer_config(&self) -> AnalyzerConfig {
        AnalyzerConfig {
            jitter_buffer: self.jitter_buffer(),
            resync_after_late: self.resync_after_late(),
            assumed_one_way_ms: self.analysis.assumed_one_way_ms,
            max_streams: self.analysis.max_streams,
            report_interval_ns: Some(secs_to_ns(self.analysis.interval_s)),
            idle_timeout_ns: secs_to_ns(self.analysis.idle_timeout_s),
            tcp: crate::reassembly::tcp::TcpConfig {
                sip_ports: self.analysis.sip_ports.clone(),
                ..crate::reassembly::tcp::TcpConfig::default()
            },
            calls: self.calls.calls_config(),
            ..AnalyzerConfig::default()
        }
    }

    /// The pseudonymiser `privacy` asks for: disabled, keyed by `privacy.key_file` (stable
    /// pseudonyms across restarts), or a random key for this run.
    pub fn pseudonymizer(&self) -> Result<Pseudonymizer, ConfigError> {
        if !self.privacy.pseudonymize {
            return Ok(Pseudonymizer::disabled());
        }
        let Some(path) = &self.privacy.key_file else {
            return Ok(Pseudonymizer::random());
        };
        let key = std::fs::read(path).map_err(|e| ConfigError::Key {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let key = key.trim_ascii();
        if key.is_empty() {
            return Err(ConfigError::Key {
                path: path.clone(),
                message: "empty key file".into(),
            });
        }
        Ok(Pseudonymizer::with_key(key))
    }
}

fn secs_to_ns(s: u64) -> i64 {
    i64::try_from(s)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000_000)
}

impl AgentConfig {
    /// Heartbeat period in nanoseconds.
    pub fn heartbeat_interval_ns(&self) -> i64 {
        secs_to_ns(self.health.heartbeat_interval_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_example_parses() {
        let cfg = AgentConfig::parse(
            r#"
agent_id = "fra-media-1"
[capture]
interfaces = ["eth0", "eth1"]
workers = 2
snaplen = 256
block_size = 4194304
block_count = 16
[analysis]
interval_s = 5
jitter_buffer = "adaptive"
[output]
sink = "file:/var/lib/voqa-agent/reports.jsonl"
[privacy]
pseudonymize = false
[health]
watch_processes = ["asterisk", "kamailio"]
[metrics]
listen = "127.0.0.1:9999"
"#,
        )
        .expect("valid");
        assert_eq!(cfg.agent_id.as_deref(), Some("fra-media-1"));
        assert_eq!(cfg.capture.interfaces, vec!["eth0", "eth1"]);
        assert_eq!(cfg.capture.block_count, 16);
        assert_eq!(
            cfg.capture.retire_timeout_ms, 20,
            "unset keys keep their defaults"
        );
        assert_eq!(cfg.analysis.interval_s, 5);
        assert_eq!(
            cfg.sink(),
            SinkSpec::File("/var/lib/voqa-agent/reports.jsonl".into())
        );
        assert!(!cfg.privacy.pseudonymize);
        assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = AgentConfig::parse("[capture]\ninterface = [\"eth0\"]\n").expect_err("typo");
        assert!(err.contains("interface"), "{err}");
        let mut cfg = AgentConfig::default();
        cfg.capture.interfaces = vec!["eth0".into()];
        cfg.capture.block_size = 5000;
        cfg.analysis.jitter_buffer = "elastic".into();
        cfg.output.sink = "ftp://x".into();
        let problems = cfg.problems().join("\n");
        assert!(problems.contains("capture.block_size"), "{problems}");
        assert!(problems.contains("analysis.jitter_buffer"), "{problems}");
        assert!(problems.contains("output.sink"), "{problems}");
    }

    #[test]
    fn resync_after_late_is_read_checked_and_reaches_the_analyzer() {
        let cfg = AgentConfig::default();
        assert_eq!(cfg.analysis.resync_after_late, 3);
        assert_eq!(cfg.analyzer_config().resync_after_late, 3);
        let cfg = AgentConfig::parse("[analysis]\nresync_after_late = 5\n").expect("valid");
        assert!(
            cfg.analysis_problems().is_empty(),
            "{:?}",
            cfg.analysis_problems()
        );
        assert_eq!(cfg.analyzer_config().resync_after_late, 5);
        assert_eq!(
            cfg.analyzer_config()
                .jitter_buffer_settings()
                .resync_after_late,
            5
        );
        let cfg = AgentConfig::parse("[analysis]\nresync_after_late = 0\n").expect("valid");
        assert!(cfg.analysis_problems().is_empty());
        assert_eq!(cfg.analyzer_config().resync_after_late, 0, "0 = never");
        for bad in [1, 1001] {
            let cfg = AgentConfig::parse(&format!("[analysis]\nresync_after_late = {bad}\n"))
                .expect("parses");
            let problems = cfg.analysis_problems().join("\n");
            assert!(
                problems.contains("analysis.resync_after_late") && problems.contains("2..=1000"),
                "{problems}"
            );
        }
        assert!(AgentConfig::parse("[analysis]\nresync_after_late = -1\n").is_err());
    }

    #[test]
    fn missing_default_file_is_fine_but_explicit_is_not() {
        let dir = tempfile::tempdir().expect("tmp");
        let absent = dir.path().join("agent.toml");
        assert_eq!(
            AgentConfig::load(&absent, false).expect("defaults"),
            AgentConfig::default()
        );
        assert!(matches!(
            AgentConfig::load(&absent, true),
            Err(ConfigError::Read { .. })
        ));
    }

    #[test]
    fn packaged_example_config_is_valid_and_documents_the_defaults() {
        let text = include_str!("../../../packaging/agent.toml");
        let cfg = AgentConfig::parse(text).expect("packaging/agent.toml parses");
        // Installed as /etc/voqa/agent.toml: the defaults, which name no interface and no
        // collector, so the package does not start the agent before it is edited.
        assert_eq!(
            cfg,
            AgentConfig::default(),
            "the example shows the defaults"
        );
        assert_eq!(cfg.unconfigured().len(), 2, "{:?}", cfg.unconfigured());
        let mut edited = cfg.clone();
        edited.capture.interfaces = vec!["eth0".into()];
        assert!(edited.problems().is_empty(), "{:?}", edited.problems());
    }

    #[test]
    fn sip_ports_are_validated_and_reach_the_analyzer() {
        let cfg = AgentConfig::parse("[analysis]\nsip_ports = [5060, 5090]\n").expect("valid");
        assert_eq!(cfg.analyzer_config().tcp.sip_ports, vec![5060, 5090]);
        assert_eq!(
            AgentConfig::default().analyzer_config().tcp.sip_ports,
            vec![5060, 5080]
        );
        let mut bad = AgentConfig::default();
        bad.analysis.sip_ports = vec![5060, 0];
        assert!(
            bad.analysis_problems()
                .join("\n")
                .contains("analysis.sip_ports: port 0")
        );
        bad.analysis.sip_ports = vec![5060, 5060];
        assert!(
            bad.analysis_problems()
                .join("\n")
                .contains("5060 is listed twice")
        );
        bad.analysis.sip_ports = (1..=17).collect();
        assert!(bad.analysis_problems().join("\n").contains("at most 16"));
        assert_eq!(parse_sip_ports("5060, 5080"), Ok(vec![5060, 5080]));
        assert_eq!(parse_sip_ports(""), Ok(vec![]));
        assert!(
            parse_sip_ports("5060,x")
                .expect_err("x is no port")
                .contains("'x'")
        );
        assert!(parse_sip_ports("70000").is_err());
    }

    #[test]
    fn sink_specs() {
        assert_eq!("stdout".parse::<SinkSpec>(), Ok(SinkSpec::Stdout));
        assert_eq!(
            "file:/tmp/x".parse::<SinkSpec>(),
            Ok(SinkSpec::File("/tmp/x".into()))
        );
        assert!("file:".parse::<SinkSpec>().is_err());
    }

    #[test]
    fn configured_means_an_interface_and_a_destination() {
        let missing = AgentConfig::default().unconfigured();
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].starts_with("capture.interfaces"), "{missing:?}");
        assert!(missing[1].starts_with("ship.collectors"), "{missing:?}");
        let only_iface = AgentConfig::parse("[capture]\ninterfaces = [\"eth0\"]\n").expect("cfg");
        let missing = only_iface.unconfigured();
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(missing[0].starts_with("ship.collectors"), "{missing:?}");
        let shipped = AgentConfig::parse(
            "[capture]\ninterfaces = [\"eth0\"]\n[ship]\ncollectors = [\"https://c:8443\"]\n",
        )
        .expect("cfg");
        assert!(shipped.unconfigured().is_empty());
        let to_file = AgentConfig::parse(
            "[capture]\ninterfaces = [\"eth0\"]\n[output]\nsink = \"file:/tmp/r.jsonl\"\n",
        )
        .expect("cfg");
        assert!(to_file.unconfigured().is_empty());
    }
}
