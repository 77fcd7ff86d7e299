//! Host health for heartbeats: host uptime, CPU, memory and load, the agent's own CPU and
//! resident memory, the up/down state of watched processes (asterisk, freeswitch, kamailio,
//! rtpengine, ...), the host name and the capabilities the capture needs.
//!
//! Everything here reads `/proc` (through sysinfo or directly) and is meant for the heartbeat
//! timer thread and for `check-config`: it must never be called on the packet path, it does not
//! touch packets or capture state (the capture counters are passed in by the caller), and it
//! does not print.

mod capabilities;
mod processes;
mod sampler;

pub use capabilities::{Capabilities, capabilities};
pub use sampler::HostSampler;

/// Version reported in every heartbeat: the version of the crate this module is compiled in
/// (voqa-agent's, in the real build).
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Used when the kernel gives no usable host name, so that a default agent id is never empty.
pub const UNKNOWN_HOST: &str = "unknown-host";

/// The host name, for the default agent id; never empty (falls back to [`UNKNOWN_HOST`]).
pub fn hostname() -> String {
    let from_kernel = sysinfo::System::host_name()
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok());
    non_empty_hostname(from_kernel.as_deref())
}

fn non_empty_hostname(candidate: Option<&str>) -> String {
    match candidate.map(str::trim) {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => UNKNOWN_HOST.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_falls_back_when_empty_or_missing() {
        assert_eq!(non_empty_hostname(None), UNKNOWN_HOST);
        assert_eq!(non_empty_hostname(Some("")), UNKNOWN_HOST);
        assert_eq!(non_empty_hostname(Some(" \n")), UNKNOWN_HOST);
        assert_eq!(non_empty_hostname(Some("media-1\n")), "media-1");
    }

    #[test]
    fn live_hostname_is_not_empty() {
        let name = hostname();
        assert!(!name.is_empty());
        assert_eq!(name, name.trim());
    }
}
