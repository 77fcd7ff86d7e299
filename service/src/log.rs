//! The one logging setup of `voqa-agent` and `voqa-collector`: both log through `tracing`
//! events, and [`init`] decides where they go.
//!
//! - Under systemd with the service's stderr connected to the journal (`JOURNAL_STREAM` names
//!   the device and inode of our stderr), events go to journald over its native protocol (a
//!   datagram per event on `/run/systemd/journal/socket`), with `PRIORITY`, `MESSAGE`,
//!   `TARGET`, `SYSLOG_IDENTIFIER`, `CODE_FILE`/`CODE_LINE` and every field of the event as a
//!   journal field of its own (`journalctl -o verbose`, `journalctl FIELD=value`).
//! - Otherwise one plain line per event on stderr: `LEVEL target: message key=value ...`, no
//!   colours and no time stamp (journald or the terminal add their own).
//!
//! Stdout stays for command results (a token, a table, a report): logs never go there. This
//! crate must not block its caller on the journal (the socket is non-blocking; an event the
//! journal cannot take now is dropped) and must not read anything but the two environment
//! variables below. `VOQA_JOURNAL_SOCKET` replaces the journal's socket path: a test hook.

use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// An error and its causes on one line, `top: cause: cause`, a cause left out when the text
/// before already holds it (HTTP and SMTP clients' own messages alone say "connection error"
/// and hide why). For log lines and the errors both binaries record.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// The journal's native socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Where [`init`] sends events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Journald,
    Lines,
}

/// Installs the process's logger (once; later calls change nothing) and says which it is.
/// `identifier` is the journal's `SYSLOG_IDENTIFIER` (the binary's name).
pub fn init(identifier: &'static str) -> Output {
    // voqa's own events from INFO; the libraries' (sqlx, hyper...) from WARN only.
    let filter = Targets::new()
        .with_target("voqa", Level::INFO)
        .with_default(Level::WARN);
    let journal = stderr_is_journal()
        .then(|| Journald::connect(identifier))
        .flatten();
    match journal {
        Some(layer) => {
            let _ = tracing_subscriber::registry()
                .with(layer.with_filter(filter))
                .try_init();
            Output::Journald
        }
        None => {
            let lines = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .without_time()
                .with_target(true)
                .with_level(true)
                .with_writer(std::io::stderr);
            let _ = tracing_subscriber::registry()
                .with(lines.with_filter(filter))
                .try_init();
            Output::Lines
        }
    }
}

/// `JOURNAL_STREAM` is `DEVICE:INODE` of the stream systemd connected to the journal; it is
/// inherited by children whose stderr may be redirected elsewhere, so it counts only when it
/// names our own stderr.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// The journald layer: one native-protocol datagram per event.
struct Journald {
    socket: UnixDatagram,
    path: PathBuf,
    identifier: &'static str,
}

impl Journald {
    /// `None` when the journal's socket does not take a datagram (then plain lines are used).
    fn connect(identifier: &'static str) -> Option<Journald> {
        let path = std::env::var_os("VOQA_JOURNAL_SOCKET")
            .map_or_else(|| PathBuf::from(JOURNAL_SOCKET), PathBuf::from);
        let socket = UnixDatagram::unbound().ok()?;
        socket.set_nonblocking(true).ok()?;
        // journald discards an empty datagram: a probe that the socket is there and listening.
        socket.send_to(&[], &path).ok()?;
        Some(Journald {
            socket,
            path,
            identifier,
        })
    }
}

/// Syslog priorities: error 3, warning 4, info 6, debug 7.
fn priority(level: &Level) -> &'static [u8] {
    match *level {
        Level::ERROR => b"3",
        Level::WARN => b"4",
        Level::INFO => b"6",
        _ => b"7",
    }
}

/// Appends `NAME\n<u64 LE length>value\n`: the native protocol's binary-safe form, right for
/// any value (newlines included).
fn put(buf: &mut Vec<u8>, name: &str, value: &[u8]) {
    buf.extend_from_slice(name.as_bytes());
    buf.push(b'\n');
    buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    buf.extend_from_slice(value);
    buf.push(b'\n');
}

/// A journal field name from an event field's: upper case, `[A-Z0-9_]`, not starting with `_`
/// (those are journald's trusted fields) nor a digit; names the layer sets itself get `F_`.
fn field_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' | '0'..='9' => c,
            _ => '_',
        })
        .collect::<String>()
        .trim_start_matches(|c: char| c == '_' || c.is_ascii_digit())
        .to_owned();
    if out.is_empty()
        || matches!(
            out.as_str(),
            "MESSAGE" | "PRIORITY" | "TARGET" | "SYSLOG_IDENTIFIER" | "CODE_FILE" | "CODE_LINE"
        )
    {
        out.insert_str(0, "F_");
    }
    out.truncate(64);
    out
}

struct Fields<'a> {
    buf: &'a mut Vec<u8>,
    message: String,
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            put(self.buf, &field_name(field.name()), value.as_bytes());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            put(
                self.buf,
                &field_name(field.name()),
                format!("{value:?}").as_bytes(),
            );
        }
    }
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for Journald {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut buf = Vec::with_capacity(256);
        put(&mut buf, "PRIORITY", priority(meta.level()));
        put(&mut buf, "SYSLOG_IDENTIFIER", self.identifier.as_bytes());
        put(&mut buf, "TARGET", meta.target().as_bytes());
        if let Some(file) = meta.file() {
            put(&mut buf, "CODE_FILE", file.as_bytes());
        }
        if let Some(line) = meta.line() {
            put(&mut buf, "CODE_LINE", line.to_string().as_bytes());
        }
        let mut fields = Fields {
            buf: &mut buf,
            message: String::new(),
        };
        event.record(&mut fields);
        let message = std::mem::take(&mut fields.message);
        put(&mut buf, "MESSAGE", message.as_bytes());
        // Non-blocking: a journal that cannot take it now loses this event rather than stall
        // a capture or request thread.
        let _ = self.socket.send_to(&buf, &self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chains_name_each_cause_once() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let refused = E("Connection refused (os error 111)", None);
        let io = E("Connection refused (os error 111)", Some(Box::new(refused)));
        let top = E("Connection error", Some(Box::new(io)));
        assert_eq!(
            error_chain(&top),
            "Connection error: Connection refused (os error 111)"
        );
        assert_eq!(error_chain(&E("alone", None)), "alone");
    }

    #[test]
    fn field_names_follow_the_journal_rules() {
        assert_eq!(field_name("path"), "PATH");
        assert_eq!(field_name("store.url"), "STORE_URL");
        assert_eq!(field_name("_secret"), "SECRET");
        assert_eq!(field_name("9lives"), "LIVES");
        assert_eq!(field_name("message"), "F_MESSAGE");
        assert_eq!(field_name("priority"), "F_PRIORITY");
        assert_eq!(field_name("___"), "F_");
    }

    #[test]
    fn values_are_length_prefixed() {
        let mut buf = Vec::new();
        put(&mut buf, "MESSAGE", b"two\nlines");
        let mut expected = b"MESSAGE\n".to_vec();
        expected.extend_from_slice(&9u64.to_le_bytes());
        expected.extend_from_slice(b"two\nlines\n");
        assert_eq!(buf, expected);
    }
}
