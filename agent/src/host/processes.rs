//! Watched processes: which of the configured service names (asterisk, freeswitch, kamailio,
//! rtpengine, ...) have running processes, so the collector can tell "service down" from
//! "network bad".
//!
//! It keeps its own sysinfo process table, refreshed with only what matching needs (names,
//! command lines and executable paths read once per process; no CPU, memory, disk or thread
//! data). It never signals or otherwise touches the processes it sees.

use std::ffi::OsStr;
use std::path::Path;

use sysinfo::{Process, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind};
use voqa_wire::ProcessState;

/// The process table used to answer "is X running?".
pub(super) struct WatchedProcesses {
    names: Vec<String>,
    /// `None` when there is nothing to watch, or when sysinfo cannot run on this platform.
    table: Option<System>,
}

impl WatchedProcesses {
    pub(super) fn new(names: Vec<String>) -> Self {
        let table = if names.is_empty() {
            None
        } else {
            System::new().ok()
        };
        Self { names, table }
    }

    pub(super) fn names(&self) -> &[String] {
        &self.names
    }

    /// Rereads the process list and reports every watched name, in configuration order.
    pub(super) fn refresh(&mut self) -> Vec<ProcessState> {
        let Some(table) = self.table.as_mut() else {
            return self.names.iter().map(|name| down(name)).collect();
        };
        // Threads are left out (they would multiply the count of a multi-threaded server);
        // command line and executable do not change after exec, so each is read once per
        // process, which keeps a refresh at one `stat` and one `status` read per process.
        let kind = ProcessRefreshKind::nothing()
            .without_tasks()
            .with_cmd(UpdateKind::OnlyIfNotSet)
            .with_exe(UpdateKind::OnlyIfNotSet);
        table.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);

        let mut counts = vec![0_u32; self.names.len()];
        for process in table.processes().values().filter(|p| is_running(p)) {
            let identity = Identity::of(process);
            for (count, name) in counts.iter_mut().zip(&self.names) {
                if identity.matches(name) {
                    *count = count.saturating_add(1);
                }
            }
        }
        self.names
            .iter()
            .zip(counts)
            .map(|(name, count)| ProcessState {
                name: name.clone(),
                up: count > 0,
                count,
            })
            .collect()
    }
}

fn down(name: &str) -> ProcessState {
    ProcessState {
        name: name.to_owned(),
        up: false,
        count: 0,
    }
}

/// A user-space process that has not exited: kernel threads cannot be the watched services,
/// and a zombie is a service that has died but not yet been reaped.
fn is_running(process: &Process) -> bool {
    process.thread_kind().is_none()
        && !matches!(
            process.status(),
            ProcessStatus::Zombie | ProcessStatus::Dead
        )
}

/// The names under which a process can be recognised.
struct Identity<'p> {
    /// The kernel's name for it (`comm`, at most 15 bytes).
    name: &'p OsStr,
    /// Basename of `argv[0]`, which keeps names longer than 15 bytes whole.
    argv0: Option<&'p OsStr>,
    /// Basename of the executable file.
    exe: Option<&'p OsStr>,
}

impl<'p> Identity<'p> {
    fn of(process: &'p Process) -> Self {
        Self {
            name: process.name(),
            argv0: process
                .cmd()
                .first()
                .and_then(|argv0| Path::new(argv0).file_name()),
            exe: process.exe().and_then(Path::file_name),
        }
    }

    /// Exact, case-sensitive match of `watched` against any of the three names.
    fn matches(&self, watched: &str) -> bool {
        let watched = OsStr::new(watched);
        self.name == watched || self.argv0 == Some(watched) || self.exe == Some(watched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::{Child, Command};

    fn identity<'a>(name: &'a str, argv0: Option<&'a str>, exe: Option<&'a str>) -> Identity<'a> {
        Identity {
            name: OsStr::new(name),
            argv0: argv0.and_then(|a| Path::new(a).file_name()),
            exe: exe.and_then(|e| Path::new(e).file_name()),
        }
    }

    #[test]
    fn matches_name_argv0_or_exe_basename_exactly() {
        let asterisk = identity(
            "asterisk",
            Some("/usr/sbin/asterisk"),
            Some("/usr/sbin/asterisk"),
        );
        assert!(asterisk.matches("asterisk"));
        assert!(!asterisk.matches("Asterisk"), "case-sensitive");
        assert!(!asterisk.matches("aster"), "no prefix match");
        assert!(!asterisk.matches("/usr/sbin/asterisk"), "basenames only");

        // comm is cut to 15 bytes: the long name is only found through argv[0] or the exe.
        let recorder = identity(
            "rtpengine-recor",
            Some("/usr/bin/rtpengine-recording"),
            None,
        );
        assert!(recorder.matches("rtpengine-recording"));
        assert!(recorder.matches("rtpengine-recor"));
        assert!(!recorder.matches("rtpengine"));

        // Started through a differently named link: the exe basename still matches.
        let linked = identity("fs", Some("fs"), Some("/usr/bin/freeswitch"));
        assert!(linked.matches("freeswitch") && linked.matches("fs"));

        // A bare argv[0] without a directory, and no readable exe (another user's process).
        let bare = identity("kamailio", Some("kamailio"), None);
        assert!(bare.matches("kamailio") && !bare.matches("opensips"));
    }

    /// `sleep`, started through a symlink named `link_name` in a fresh directory, so that its
    /// `comm` and `argv[0]` carry that name (a symlink, not a copy: executing a just-written file
    /// can fail with ETXTBSY while other tests fork).
    struct WatchedChild {
        child: Child,
        dir: PathBuf,
    }

    impl WatchedChild {
        fn spawn(link_name: &str) -> Self {
            Self::spawn_in("only", link_name)
        }

        fn spawn_in(dir_tag: &str, link_name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("voqa-host-test-{dir_tag}-{link_name}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            let sleep = ["/usr/bin/sleep", "/bin/sleep"]
                .into_iter()
                .find(|p| Path::new(p).exists())
                .expect("a sleep binary");
            let link = dir.join(link_name);
            std::os::unix::fs::symlink(sleep, &link).expect("symlink");
            let child = Command::new(&link).arg("30").spawn().expect("spawn sleep");
            Self { child, dir }
        }

        fn stop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Drop for WatchedChild {
        fn drop(&mut self) {
            self.stop();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn state<'a>(states: &'a [ProcessState], name: &str) -> &'a ProcessState {
        states
            .iter()
            .find(|s| s.name == name)
            .expect("every watched name is reported")
    }

    #[test]
    fn watched_child_goes_up_then_down() {
        // Longer than 15 bytes, so the kernel name is truncated and argv[0] must do the matching;
        // the short name is matched through `comm` as well.
        let long_name = format!("voqa-test-watched-{}", std::process::id());
        let short_name = format!("vqw{}", std::process::id());
        let absent = format!("voqa-test-absent-{}", std::process::id());
        let mut watched =
            WatchedProcesses::new(vec![long_name.clone(), short_name.clone(), absent.clone()]);

        let before = watched.refresh();
        assert_eq!(state(&before, &long_name).count, 0);

        let mut long_child = WatchedChild::spawn(&long_name);
        let mut short_child = WatchedChild::spawn(&short_name);
        let running = watched.refresh();
        assert_eq!(
            running.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            [long_name.as_str(), short_name.as_str(), absent.as_str()],
            "configuration order"
        );
        assert_eq!(
            state(&running, &long_name),
            &ProcessState {
                name: long_name.clone(),
                up: true,
                count: 1
            }
        );
        assert_eq!(
            state(&running, &short_name),
            &ProcessState {
                name: short_name.clone(),
                up: true,
                count: 1
            }
        );
        assert_eq!(
            state(&running, &absent),
            &ProcessState {
                name: absent.clone(),
                up: false,
                count: 0
            }
        );

        // Killed but not yet reaped: a zombie is not a running service.
        let _ = long_child.child.kill();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while state(&watched.refresh(), &long_name).up {
            assert!(std::time::Instant::now() < deadline, "zombie still counted");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let zombie = std::fs::read_to_string(format!("/proc/{}/stat", long_child.child.id()))
            .unwrap_or_default();
        assert!(zombie.contains(") Z "), "child is a zombie: {zombie}");

        long_child.stop();
        short_child.stop();
        let stopped = watched.refresh();
        for name in [&long_name, &short_name, &absent] {
            assert_eq!(
                state(&stopped, name),
                &ProcessState {
                    name: name.clone(),
                    up: false,
                    count: 0
                }
            );
        }
    }

    #[test]
    fn two_instances_count_two() {
        let name = format!("voqa-test-pair-{}", std::process::id());
        let mut watched = WatchedProcesses::new(vec![name.clone()]);
        let _first = WatchedChild::spawn_in("a", &name);
        let _second = WatchedChild::spawn_in("b", &name);
        let states = watched.refresh();
        assert_eq!(
            states,
            [ProcessState {
                name: name.clone(),
                up: true,
                count: 2
            }]
        );
    }

    #[test]
    fn nothing_watched_reports_nothing() {
        let mut watched = WatchedProcesses::new(Vec::new());
        assert!(watched.refresh().is_empty());
        assert!(watched.names().is_empty());
    }
}
