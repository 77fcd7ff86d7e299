//! The systemd notification protocol (`sd_notify(3)`), the one implementation both binaries
//! use: `READY=1` once a service is up, `STATUS=` lines saying what it is doing, `WATCHDOG=1`
//! keep-alives, `STOPPING=1`. A message is one datagram of `KEY=VALUE` lines sent to the unix
//! socket named by `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket).
//!
//! Without `$NOTIFY_SOCKET` (not started by systemd, or `Type=simple`) every call does nothing.
//! Sending never blocks: a full socket buffer drops the message (systemd reads its socket
//! promptly; a lost keep-alive is one of several per watchdog period). This module only sends:
//! it must not decide *when* a service is healthy — that is each binary's `service` code — and
//! it must stay free of any other dependency than std (and `thiserror`).

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Why a notification socket or watchdog setting could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET '{0}' is neither an absolute path nor an abstract socket (@name)")]
    Address(String),
    #[error("NOTIFY_SOCKET {socket}: {error}")]
    Io { socket: String, error: io::Error },
}

/// Where notifications go, and the watchdog period systemd asked for (if any).
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

#[derive(Debug)]
struct Target {
    socket: UnixDatagram,
    addr: SocketAddr,
    name: String,
}

/// The watchdog period from `WATCHDOG_USEC` and `WATCHDOG_PID`, as `sd_watchdog_enabled(3)`
/// reads them: none when unset, zero or not a number, or when `WATCHDOG_PID` names another
/// process (a watchdog meant for a parent that exec'd something else).
pub fn watchdog_period(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        let pid: u32 = pid.trim().parse().ok()?;
        if pid != own_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

/// The socket address `$NOTIFY_SOCKET` names: an absolute path, or `@name` (abstract).
pub fn socket_addr(value: &OsStr) -> Result<SocketAddr, NotifyError> {
    let bytes = value.as_bytes();
    let bad = || NotifyError::Address(value.to_string_lossy().into_owned());
    let io = |error: io::Error| NotifyError::Io {
        socket: value.to_string_lossy().into_owned(),
        error,
    };
    match bytes.first() {
        Some(b'/') => SocketAddr::from_pathname(value).map_err(io),
        Some(b'@') if bytes.len() > 1 => SocketAddr::from_abstract_name(&bytes[1..]).map_err(io),
        _ => Err(bad()),
    }
}

/// `STATUS=` text on one line (a newline would start another assignment).
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

impl Notifier {
    /// A notifier that sends nothing (not under systemd).
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
        }
    }

    /// From the process environment (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`); a
    /// binary's `main` calls this once. `Err` for a socket that cannot be used: the caller
    /// says so and goes on without notifications (systemd then times the start out, which
    /// names the reason better than a refusal to start would).
    pub fn from_env() -> Result<Notifier, NotifyError> {
        let var = |k: &str| std::env::var(k).ok();
        Notifier::new(
            std::env::var_os("NOTIFY_SOCKET").as_deref(),
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            std::process::id(),
        )
    }

    /// From the variables' values (see [`Notifier::from_env`]).
    pub fn new(
        notify_socket: Option<&OsStr>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        own_pid: u32,
    ) -> Result<Notifier, NotifyError> {
        let Some(value) = notify_socket.filter(|v| !v.is_empty()) else {
            return Ok(Notifier::disabled());
        };
        let addr = socket_addr(value)?;
        let name = value.to_string_lossy().into_owned();
        let socket = UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|error| NotifyError::Io {
                socket: name.clone(),
                error,
            })?;
        Ok(Notifier {
            target: Some(Target { socket, addr, name }),
            watchdog: watchdog_period(watchdog_usec, watchdog_pid, own_pid),
        })
    }

    /// Whether notifications go anywhere.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// The watchdog period systemd enforces (`WatchdogSec=`): keep-alives must arrive more
    /// often than this. `None`: no watchdog.
    pub fn watchdog(&self) -> Option<Duration> {
        self.target.as_ref().and(self.watchdog)
    }

    /// Sends one message of `KEY=VALUE` lines; nothing without a socket.
    pub fn send(&self, message: &str) -> Result<(), NotifyError> {
        let Some(t) = &self.target else {
            return Ok(());
        };
        match t.socket.send_to_addr(message.as_bytes(), &t.addr) {
            Ok(_) => Ok(()),
            // Full buffer: dropped (see the module comment).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(error) => Err(NotifyError::Io {
                socket: t.name.clone(),
                error,
            }),
        }
    }

    /// `READY=1` with what the service is now doing.
    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// A `STATUS=` line.
    pub fn status(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    /// A watchdog keep-alive.
    pub fn watchdog_alive(&self) -> Result<(), NotifyError> {
        self.send("WATCHDOG=1")
    }

    /// `STOPPING=1` with the reason.
    pub fn stopping(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_period_follows_sd_watchdog_enabled() {
        assert_eq!(
            watchdog_period(Some("3000000"), None, 7),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            watchdog_period(Some("500000"), Some("7"), 7),
            Some(Duration::from_millis(500))
        );
        // Meant for another process, unset, zero, garbage.
        assert_eq!(watchdog_period(Some("500000"), Some("8"), 7), None);
        assert_eq!(watchdog_period(None, Some("7"), 7), None);
        assert_eq!(watchdog_period(Some("0"), None, 7), None);
        assert_eq!(watchdog_period(Some("-1"), None, 7), None);
        assert_eq!(watchdog_period(Some("5000000"), Some("x"), 7), None);
    }

    #[test]
    fn socket_addresses_path_and_abstract() {
        let a = socket_addr(OsStr::new("/run/systemd/notify")).expect("path");
        assert_eq!(
            a.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let a = socket_addr(OsStr::new("@voqa/test")).expect("abstract");
        assert_eq!(a.as_abstract_name(), Some(&b"voqa/test"[..]));
        for bad in ["relative/path", "@", "vsock:2:1234"] {
            assert!(
                matches!(socket_addr(OsStr::new(bad)), Err(NotifyError::Address(_))),
                "{bad}"
            );
        }
    }

    /// Messages arrive as systemd reads them, on a path socket and an abstract one; the
    /// watchdog is only reported with a socket.
    #[test]
    fn messages_reach_path_and_abstract_sockets() {
        let dir = std::env::temp_dir().join(format!("voqa-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let receiver = UnixDatagram::bind(&path).expect("bind path");
        let n = Notifier::new(Some(path.as_os_str()), Some("2000000"), None, 1).expect("notifier");
        assert_eq!(n.watchdog(), Some(Duration::from_secs(2)));
        n.ready("listening on\n127.0.0.1:8080").expect("send");
        n.watchdog_alive().expect("send");
        let mut buf = [0u8; 256];
        let len = receiver.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=listening on 127.0.0.1:8080");
        let len = receiver.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"WATCHDOG=1");
        let _ = std::fs::remove_dir_all(&dir);

        let name = format!("voqa-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract addr");
        let receiver = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        let value = format!("@{name}");
        let n = Notifier::new(Some(OsStr::new(&value)), None, None, 1).expect("notifier");
        assert_eq!(n.watchdog(), None);
        n.stopping("bye").expect("send");
        let len = receiver.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"STOPPING=1\nSTATUS=bye");

        let off = Notifier::new(None, Some("1000000"), None, 1).expect("disabled");
        assert!(!off.enabled());
        assert_eq!(off.watchdog(), None);
        off.ready("nothing").expect("no-op");
    }
}
