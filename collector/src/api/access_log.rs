//! The access log: one JSON line per request, so an operator can see who tried what —
//! refused authentications included. Fields: `time` (RFC 3339 UTC, when the request arrived),
//! `method`, `path` (at most 256 bytes), `query_keys` (the names of the query parameters, not
//! their values), `status`, `latency_ms` (until the response head was ready), `peer`,
//! `token_id` (the 12-hex id of the token that authenticated, or of a revoked one that was
//! refused; never the token) and `auth_error` (why authentication or authorization was
//! refused, else null).
//!
//! Query values are left out on purpose: they are free text chosen by the client (a token
//! pasted into a URL would land in the log), and the path and parameter names say what was
//! asked. The `Authorization` header is never read here.
//!
//! `authenticate` and the role and binding checks tell the layer about the request through a
//! task-local note ([`note_token`], [`note_refusal`]): the handler runs inside the layer's
//! future, so no handler signature changes. Lines go through a bounded queue to one writer
//! thread (stderr, for journald, or an appended file created 0600); a request never waits for
//! the disk, and when the writer falls behind lines are dropped and the count written once it
//! catches up. This module must not change a response.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

use crate::config::ServerConfig;
use crate::serve::PeerAddr;

/// Lines waiting for the writer; beyond this, lines are dropped (and counted).
pub const QUEUE_LINES: usize = 4096;
/// Longest path logged (bytes, cut at a character boundary).
pub const MAX_PATH_LEN: usize = 256;
/// Most query parameter names logged, and the longest name.
pub const MAX_QUERY_KEYS: usize = 16;
pub const MAX_QUERY_KEY_LEN: usize = 64;
/// Longest refusal reason logged.
pub const MAX_REASON_LEN: usize = 512;

/// What the authentication of one request found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AuthNote {
    pub token_id: Option<String>,
    pub refusal: Option<String>,
}

tokio::task_local! {
    static NOTE: Arc<Mutex<AuthNote>>;
}

fn with_note(f: impl FnOnce(&mut AuthNote)) {
    // Outside the layer (access log off, unit tests) there is no note to write.
    let _ = NOTE.try_with(|note| f(&mut note.lock().unwrap_or_else(PoisonError::into_inner)));
}

/// The request authenticated with the token of id `token_id` (or presented that revoked one).
pub fn note_token(token_id: &str) {
    with_note(|note| note.token_id = Some(token_id.to_owned()));
}

/// The request's authentication or authorization was refused, and why.
pub fn note_refusal(reason: &str) {
    with_note(|note| note.refusal = Some(bounded(reason, MAX_REASON_LEN).to_owned()));
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn bounded(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The names of the query parameters, bounded in count and length, values left out.
fn query_keys(query: &str) -> Vec<&str> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| bounded(pair.split('=').next().unwrap_or(""), MAX_QUERY_KEY_LEN))
        .take(MAX_QUERY_KEYS)
        .collect()
}

/// Where the configured access log goes: `None` when it is off, else an appended file
/// (created 0600: it holds client addresses and token ids) or stderr.
pub fn open_sink(server: &ServerConfig) -> std::io::Result<Option<Box<dyn Write + Send>>> {
    if !server.access_log {
        return Ok(None);
    }
    match &server.access_log_path {
        None => Ok(Some(Box::new(std::io::stderr()))),
        Some(path) => open_file(path).map(|f| Some(Box::new(f) as Box<dyn Write + Send>)),
    }
}

fn open_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("access log {}: {e}", path.display())))
}

/// The running access log of one server: a queue to its writer thread.
#[derive(Debug)]
pub struct AccessLog {
    lines: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// The access log the configuration asks for, `None` when it is off. A file that cannot
    /// be opened falls back to stderr with a warning (`serve` checks it before starting, so
    /// this happens only if it vanished in between).
    pub fn start(server: &ServerConfig) -> Option<Arc<AccessLog>> {
        match open_sink(server) {
            Ok(sink) => sink.map(AccessLog::to_writer),
            Err(e) => {
                tracing::warn!("{e}; writing the access log to stderr instead");
                Some(AccessLog::to_writer(Box::new(std::io::stderr())))
            }
        }
    }

    /// An access log written to `out` by a thread of its own, which ends once every handle
    /// to this log is gone.
    pub fn to_writer(out: Box<dyn Write + Send>) -> Arc<AccessLog> {
        let (lines, queue) = sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(&queue, out, &counted));
        if let Err(e) = spawned {
            // Without its thread every line is dropped (and counted) instead of blocking.
            tracing::error!("cannot start the access log writer: {e}");
        }
        Arc::new(AccessLog { lines, dropped })
    }

    fn send(&self, line: String) {
        match self.lines.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn write_loop(queue: &Receiver<String>, mut out: Box<dyn Write + Send>, dropped: &AtomicU64) {
    let mut reported = 0;
    while let Ok(first) = queue.recv() {
        // Write what queued up, then flush once.
        let mut next = Some(first);
        while let Some(line) = next {
            // A failing log device must not stop the collector; nothing better to do here.
            let _ = out.write_all(line.as_bytes());
            next = queue.try_recv().ok();
        }
        let lost = dropped.load(Ordering::Relaxed);
        if lost != reported {
            let line = json!({
                "time": voqa_wire::Timestamp::from_ns(crate::now_ns()).to_string(),
                "access_log_dropped": lost,
            });
            let _ = writeln!(out, "{line}");
            reported = lost;
        }
        let _ = out.flush();
    }
}

/// The axum middleware: times the request, runs it with a fresh note, writes its line.
pub async fn layer(State(log): State<Arc<AccessLog>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let time = voqa_wire::Timestamp::from_ns(crate::now_ns());
    let method = request.method().as_str().to_owned();
    let path = bounded(request.uri().path(), MAX_PATH_LEN).to_owned();
    let query = request.uri().query().map(|q| {
        query_keys(q)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    });
    let peer = request
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map(|ConnectInfo(PeerAddr(addr))| addr.to_string());
    let note = Arc::new(Mutex::new(AuthNote::default()));
    let response = NOTE.scope(note.clone(), next.run(request)).await;
    let note = note.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let line = json!({
        "time": time.to_string(),
        "method": method,
        "path": path,
        "query_keys": query,
        "status": response.status().as_u16(),
        "latency_ms": (latency_ms * 1000.0).round() / 1000.0,
        "peer": peer,
        "token_id": note.token_id,
        "auth_error": note.refusal,
    });
    log.send(format!("{line}\n"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_cuts_at_a_character_boundary() {
        assert_eq!(bounded("abc", 5), "abc");
        assert_eq!(bounded("abcdef", 3), "abc");
        assert_eq!(bounded("aé", 2), "a", "é is two bytes");
    }

    #[test]
    fn query_keys_keep_names_only() {
        assert_eq!(
            query_keys("from=2026-11-01T00:00:00Z&to=x&token=secret&flag"),
            ["from", "to", "token", "flag"]
        );
        assert_eq!(query_keys("&&a=1&"), ["a"]);
        let many = (0..40)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(query_keys(&many).len(), MAX_QUERY_KEYS);
        let long = format!("{}=v", "k".repeat(300));
        assert_eq!(query_keys(&long)[0].len(), MAX_QUERY_KEY_LEN);
    }

    #[tokio::test]
    async fn notes_reach_only_their_own_scope() {
        note_token("outside");
        let note = Arc::new(Mutex::new(AuthNote::default()));
        NOTE.scope(note.clone(), async {
            note_token("0123456789ab");
            note_refusal(&"x".repeat(2000));
        })
        .await;
        let note = note.lock().expect("lock").clone();
        assert_eq!(note.token_id.as_deref(), Some("0123456789ab"));
        assert_eq!(note.refusal.map(|r| r.len()), Some(MAX_REASON_LEN));
    }
}
