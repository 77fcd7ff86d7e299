//! The heartbeat sampler: host uptime, CPU, memory and load, the agent's own CPU and resident
//! memory, and the watched processes, gathered into a [`Heartbeat`] with the capture counters
//! the caller passes in.
//!
//! Runs on the heartbeat timer thread. Each sample refreshes only global CPU times, RAM figures
//! and the agent's own process entry (plus the watched-process table); it never refreshes disks,
//! networks, swap, or other processes' CPU and memory, and never touches capture state.

use std::fmt;
use std::time::Instant;

use sysinfo::{
    CpuRefreshKind, MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, RefreshKind,
    System,
};
use voqa_wire::{Heartbeat, WorkerCounters};

use super::AGENT_VERSION;
use super::processes::WatchedProcesses;

/// Samples host and agent health for heartbeats.
///
/// CPU percentages are differences between two readings of the kernel's counters, so each
/// sample reports the CPU use since the previous one (or since [`HostSampler::new`], which takes
/// the first reading). sysinfo does not reread global CPU times less than
/// [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] (200 ms) after the previous reading: a `sample()`
/// that soon after `new` reports `cpu_pct` 0 (sysinfo's value before it has two readings), and
/// one that soon after another sample repeats that sample's host figure.
pub struct HostSampler {
    /// `None` only where sysinfo cannot run; every figure is then reported as 0.
    system: Option<System>,
    own_pid: Pid,
    /// The agent's accumulated CPU time (ms) at the previous reading, and when it was read.
    previous_own_cpu: Option<(Instant, u64)>,
    /// The agent's CPU use between the last two readings, percent of one core.
    own_cpu_pct: f64,
    watched: WatchedProcesses,
}

impl fmt::Debug for HostSampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostSampler")
            .field("own_pid", &self.own_pid)
            .field("watched", &self.watched.names())
            .finish_non_exhaustive()
    }
}

impl HostSampler {
    /// `watch`: process names to watch (matched against the process name, and also against the
    /// basename of `argv[0]` / exe so that "asterisk" matches "/usr/sbin/asterisk";
    /// case-sensitive). Takes the first CPU reading, so the first heartbeat is meaningful.
    pub fn new(watch: Vec<String>) -> Self {
        let mut sampler = Self {
            system: System::new().ok(),
            own_pid: Pid::from_u32(std::process::id()),
            previous_own_cpu: None,
            own_cpu_pct: 0.0,
            watched: WatchedProcesses::new(watch),
        };
        sampler.refresh_system();
        sampler
    }

    /// Refreshes CPU, memory and processes and builds a heartbeat. `workers`, `streams_tracked`
    /// and `streams_evicted` are the capture side's counters, copied as given.
    pub fn sample(
        &mut self,
        agent_id: &str,
        time: voqa_wire::Timestamp,
        workers: Vec<WorkerCounters>,
        streams_tracked: u64,
        streams_evicted: u64,
    ) -> Heartbeat {
        self.refresh_system();
        let processes = self.watched.refresh();
        let figures = self.system_figures();
        let load = System::load_average().unwrap_or_default();
        Heartbeat {
            agent_id: agent_id.to_owned(),
            agent_version: AGENT_VERSION.to_owned(),
            time,
            host_uptime_s: System::uptime().unwrap_or(0),
            cpu_pct: figures.cpu_pct,
            agent_cpu_pct: figures.agent_cpu_pct,
            mem_total_bytes: figures.mem_total_bytes,
            mem_used_bytes: figures.mem_used_bytes,
            agent_rss_bytes: figures.agent_rss_bytes,
            load_avg: [load.one, load.five, load.fifteen],
            workers,
            streams_tracked,
            streams_evicted,
            processes,
            shipping: None,
        }
    }

    /// One reading of global CPU times, RAM, and the agent's own CPU time and resident memory.
    ///
    /// The agent's CPU % is computed here from its accumulated CPU time over wall time rather
    /// than taken from sysinfo's `cpu_usage()`, which stays 0 until a process has been seen with
    /// a non-zero CPU time twice (a freshly started agent often has none at `new`).
    fn refresh_system(&mut self) {
        let Some(system) = self.system.as_mut() else {
            return;
        };
        system.refresh_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_usage())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.own_pid]),
            true,
            ProcessRefreshKind::nothing()
                .without_tasks()
                .with_cpu()
                .with_memory(),
        );
        let Some(own) = system.process(self.own_pid) else {
            return;
        };
        let now = Instant::now();
        let cpu_ms = own.accumulated_cpu_time();
        if let Some((then, previous_ms)) = self.previous_own_cpu {
            let wall_ms = now.duration_since(then).as_secs_f64() * 1000.0;
            if wall_ms > 0.0 {
                let used_ms = cpu_ms.saturating_sub(previous_ms) as f64;
                self.own_cpu_pct = round_percent(used_ms / wall_ms * 100.0);
            }
        }
        self.previous_own_cpu = Some((now, cpu_ms));
    }

    fn system_figures(&self) -> SystemFigures {
        let Some(system) = self.system.as_ref() else {
            return SystemFigures::default();
        };
        let own = system.process(self.own_pid);
        SystemFigures {
            cpu_pct: percent(system.global_cpu_usage()),
            agent_cpu_pct: self.own_cpu_pct,
            mem_total_bytes: system.total_memory(),
            // "Used" is what applications hold: page cache and reclaimable slab count as free.
            mem_used_bytes: system
                .total_memory()
                .saturating_sub(system.available_memory()),
            agent_rss_bytes: own.map_or(0, |p| p.memory()),
        }
    }
}

#[derive(Debug, Default)]
struct SystemFigures {
    cpu_pct: f64,
    agent_cpu_pct: f64,
    mem_total_bytes: u64,
    mem_used_bytes: u64,
    agent_rss_bytes: u64,
}

/// A sysinfo percentage, rounded to 0.01 so that JSON shows `12.3`, not the f32 artefact
/// `12.300000190734863`; a non-finite value becomes 0.
fn percent(value: f32) -> f64 {
    round_percent(f64::from(value))
}

fn round_percent(value: f64) -> f64 {
    if value.is_finite() {
        (value * 100.0).round() / 100.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn workers() -> Vec<WorkerCounters> {
        vec![
            WorkerCounters {
                worker: 0,
                kernel_packets: 1000,
                kernel_drops: 3,
                kernel_freezes: 1,
                frames: 997,
            },
            WorkerCounters {
                worker: 1,
                kernel_packets: 20,
                kernel_drops: 0,
                kernel_freezes: 0,
                frames: 20,
            },
        ]
    }

    #[test]
    fn percent_rounds_and_rejects_non_finite() {
        assert_eq!(percent(12.3), 12.3);
        assert_eq!(percent(0.004), 0.0);
        assert_eq!(percent(99.996), 100.0);
        assert_eq!(percent(f32::NAN), 0.0);
        assert_eq!(percent(f32::INFINITY), 0.0);
    }

    #[test]
    fn real_sample_is_plausible() {
        let mut sampler = HostSampler::new(vec!["voqa-no-such-process-xyz".to_owned()]);
        // Burn some CPU between the two readings so the agent's own figure has something to show.
        let start = Instant::now();
        let mut spin: u64 = 0;
        while start.elapsed() < Duration::from_millis(300) {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        let beat = sampler.sample(
            "media-1",
            voqa_wire::Timestamp::from_ns(1_795_428_000_000_000_000),
            workers(),
            42,
            7,
        );
        assert_eq!(beat.agent_id, "media-1");
        assert_eq!(beat.agent_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(beat.time.to_string(), "2026-11-23T10:00:00.000000Z");
        assert!(beat.host_uptime_s > 0);
        assert!(
            beat.mem_total_bytes > beat.mem_used_bytes && beat.mem_used_bytes > 0,
            "total {} used {}",
            beat.mem_total_bytes,
            beat.mem_used_bytes
        );
        assert!(beat.agent_rss_bytes > 0 && beat.agent_rss_bytes < beat.mem_total_bytes);
        assert!(beat.load_avg.iter().all(|l| l.is_finite() && *l >= 0.0));
        assert!(
            (0.0..=100.0).contains(&beat.cpu_pct),
            "cpu {}",
            beat.cpu_pct
        );
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        assert!(
            beat.agent_cpu_pct > 0.0 && beat.agent_cpu_pct <= 100.0 * cores,
            "agent cpu {}",
            beat.agent_cpu_pct
        );
        assert_eq!(beat.workers, workers());
        assert_eq!((beat.streams_tracked, beat.streams_evicted), (42, 7));
        assert_eq!(beat.processes.len(), 1);
        assert_eq!(beat.processes[0].name, "voqa-no-such-process-xyz");
        assert!(!beat.processes[0].up);
        assert_eq!(beat.processes[0].count, 0);
    }

    /// Sampling repeatedly keeps answering for every watched process. (How fast a sample is
    /// is a benchmark's business: a wall-clock limit here failed under a loaded CI machine.)
    #[test]
    fn repeated_samples_report_every_watched_process() {
        let mut sampler = HostSampler::new(vec![
            "asterisk".to_owned(),
            "freeswitch".to_owned(),
            "kamailio".to_owned(),
            "rtpengine".to_owned(),
        ]);
        for _ in 0..5 {
            let beat = sampler.sample("a", voqa_wire::Timestamp::EPOCH, Vec::new(), 0, 0);
            let names: Vec<&str> = beat.processes.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names, ["asterisk", "freeswitch", "kamailio", "rtpengine"]);
        }
    }

    #[test]
    fn nothing_watched_gives_no_process_states() {
        let mut sampler = HostSampler::new(Vec::new());
        let beat = sampler.sample("a", voqa_wire::Timestamp::EPOCH, Vec::new(), 0, 0);
        assert!(beat.processes.is_empty());
        assert!(beat.mem_total_bytes > 0);
        assert!(format!("{sampler:?}").contains("HostSampler"));
    }
}
