//! Logs through the real binary (issue 13 item 4; `voqa_service::log` is shared by both binaries):
//! - without `JOURNAL_STREAM`, each event is one line on stderr with its level and target
//!   (`INFO voqa_collector: listening on ... address=...`);
//! - with `JOURNAL_STREAM` naming the process's stderr, as systemd sets it, events arrive on
//!   the journal's socket (here a unix datagram socket of the test's own, named by the
//!   `VOQA_JOURNAL_SOCKET` hook) in the native protocol, with PRIORITY, MESSAGE, TARGET,
//!   SYSLOG_IDENTIFIER and the event's own fields, and not on stderr.

#[path = "support/collector_proc.rs"]
mod collector_proc;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use collector_proc::{Served, bin};

/// Parses one native-protocol datagram: `NAME=value\n`, or `NAME\n`, a u64 LE length, the
/// value and `\n`. Written from <https://systemd.io/JOURNAL_NATIVE_PROTOCOL/>, independently
/// of the sender.
fn parse_native(mut data: &[u8]) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    while !data.is_empty() {
        let end = data
            .iter()
            .position(|&b| b == b'\n' || b == b'=')
            .expect("a field name ends with = or a newline");
        let name = String::from_utf8(data[..end].to_vec()).expect("ascii name");
        if data[end] == b'=' {
            let rest = &data[end + 1..];
            let stop = rest.iter().position(|&b| b == b'\n').expect("newline");
            fields.insert(name, String::from_utf8_lossy(&rest[..stop]).into_owned());
            data = &rest[stop + 1..];
        } else {
            let rest = &data[end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes")) as usize;
            let value = &rest[8..8 + len];
            assert_eq!(
                rest[8 + len],
                b'\n',
                "a length-encoded value ends with a newline"
            );
            fields.insert(name, String::from_utf8_lossy(value).into_owned());
            data = &rest[8 + len + 1..];
        }
    }
    fields
}

#[test]
fn without_journald_a_line_has_level_and_target() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, "").expect("config");
    let served = Served::start(
        &dir.path().join("voqa.db"),
        &config,
        &dir.path().join("serve.log"),
    );
    let log = served.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("listening on"))
        .expect("the listening line");
    assert!(
        line.trim_start()
            .starts_with("INFO voqa_collector: listening on http://127.0.0.1:"),
        "{line}"
    );
    assert!(
        line.contains(&format!("address=http://127.0.0.1:{}", served.port)),
        "{line}"
    );
    served.sighup_and_wait("SIGHUP:");
    let log = served.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("SIGHUP:"))
        .expect("SIGHUP line");
    assert!(
        line.trim_start()
            .starts_with("INFO voqa_collector::serve: SIGHUP: configuration reloaded"),
        "{line}"
    );
    assert!(line.contains("customers=0"), "{line}");
}

#[test]
fn with_journald_the_fields_arrive_structured() {
    let dir = tempfile::tempdir().expect("tmp");
    let socket_path = dir.path().join("journal.sock");
    let journal = UnixDatagram::bind(&socket_path).expect("bind the fake journal");
    // A deadline for each receive, not a synchronisation: the events come when they come.
    journal
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let stderr_path = dir.path().join("stderr");
    let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
    let meta = std::fs::metadata(&stderr_path).expect("stat");
    let mut child = Command::new(bin())
        .arg("--database")
        .arg(format!("sqlite:{}", dir.path().join("voqa.db").display()))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env("VOQA_JOURNAL_SOCKET", &socket_path)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn serve");
    let mut listening = None;
    let mut buf = vec![0u8; 65536];
    while listening.is_none() {
        let n = match journal.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = child.kill();
                panic!("no event on the fake journal: {e}");
            }
        };
        if n == 0 {
            continue; // the layer's probe
        }
        let fields = parse_native(&buf[..n]);
        if fields
            .get("MESSAGE")
            .is_some_and(|m| m.starts_with("listening on"))
        {
            listening = Some(fields);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let fields = listening.expect("listening event");
    assert_eq!(fields["PRIORITY"], "6", "{fields:?}");
    assert_eq!(fields["TARGET"], "voqa_collector", "{fields:?}");
    assert_eq!(fields["SYSLOG_IDENTIFIER"], "voqa-collector", "{fields:?}");
    assert!(
        fields["ADDRESS"].starts_with("http://127.0.0.1:"),
        "{fields:?}"
    );
    assert!(fields["STORE"].starts_with("sqlite:"), "{fields:?}");
    assert!(fields["CODE_FILE"].ends_with("main.rs"), "{fields:?}");
    let stderr = std::fs::read_to_string(&stderr_path).expect("stderr");
    assert!(
        !stderr.contains("listening on"),
        "the event went to stderr too: {stderr}"
    );
}
