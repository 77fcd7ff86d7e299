//! `voqa-collector backup` and `restore` through the real binary (issue 13 item 5):
//! - a backup taken while batches are being ingested over HTTP by a serving collector, restored
//!   into a fresh directory, holds every batch acknowledged before the backup started; the SLA
//!   of a period those batches cover is the same on both collectors; the restored store takes
//!   new ingest; the backup file is 0600;
//! - restore refuses a store a collector serves, a backup of a newer schema, and a file that is
//!   not a store, each with a message that says why; it migrates a backup of an older schema;
//! - `backup --dir --keep N` keeps the newest N backups and touches no other file.

#[path = "support/collector_proc.rs"]
mod collector_proc;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use collector_proc::{Served, cli, get_json, http_client, token, wait_until};
use voqa_wire::fixtures;
use voqa_wire::{StreamReport, Timestamp};

const AGENT: &str = "fra-media-1";
const SECOND: i64 = 1_000_000_000;
/// 2026-11-20T00:00:00Z: batch `n` carries the minute starting `n` minutes later.
const T0: i64 = 1_795_132_800 * SECOND;

const CONFIG: &str = r#"
[[customers]]
id = "acme"
name = "ACME Contact Centre"
agents = ["fra-media-1"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
"#;

/// Call `n`: one stream, one final report from minute `n` + 5 s to + 50 s; every fifth call
/// has MOS 3.5 and 2 % loss (below the commitments), the others 4.3 and none.
fn report(n: u32) -> StreamReport {
    let start = Timestamp::from_ns(T0 + i64::from(n) * 60 * SECOND + 5 * SECOND);
    let end = start.saturating_add_ns(45 * SECOND);
    let bad = n.is_multiple_of(5);
    let (stream, call) = (format!("{n:016x}"), format!("call-{n}"));
    let mos = if bad { 3.5 } else { 4.3 };
    let report = fixtures::final_report(AGENT, &stream, &call, start, end, 2250, mos);
    if bad {
        fixtures::with_loss(report, 45)
    } else {
        report
    }
}

/// Batch `n`: call `n` and the heartbeats of its minute, every 15 s.
fn batch(n: u32) -> Vec<u8> {
    let minute = T0 + i64::from(n) * 60 * SECOND;
    let heartbeats = (0..4)
        .map(|q| fixtures::heartbeat(AGENT, Timestamp::from_ns(minute + q * 15 * SECOND)))
        .collect();
    let batch = fixtures::batch(n.into(), AGENT, vec![report(n)], heartbeats);
    serde_json::to_vec(&batch).expect("json")
}

async fn post_batch(base: &str, token: &str, n: u32) -> bool {
    http_client()
        .post(format!("{base}/api/v1/ingest"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(batch(n))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// The stream ids a collector holds (every page).
async fn stored_streams(base: &str, ops: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/streams?from=2026-11-19&to=2026-11-30&limit=1000".to_owned();
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(c);
        }
        let (status, body) = get_json(base, &path, ops).await;
        assert_eq!(status, 200, "{path}: {body}");
        for item in body["items"].as_array().expect("items") {
            let report = item.get("report").unwrap_or(item);
            ids.insert(report["stream_id"].as_str().expect("stream_id").to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    ids
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The names in a directory, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn write_config(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("collector.toml");
    std::fs::write(&config, CONFIG).expect("config");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_ingest_restores_every_acknowledged_batch_and_the_same_sla() {
    let live_dir = tempfile::tempdir().expect("tmp");
    let config = write_config(live_dir.path());
    let db = live_dir.path().join("voqa.db");
    let agent = token(&db, &config, &["agent", "--agent", AGENT]);
    let ops = token(&db, &config, &["ops"]);
    let live = Served::start(&db, &config, &live_dir.path().join("serve.log"));
    let base = live.base();

    // Two senders, batches 0, 2, 4... and 1, 3, 5..., each recorded once acknowledged.
    let acked = Arc::new(Mutex::new(BTreeSet::<u32>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for first in 0..2u32 {
        let (acked, stop, base, agent) = (acked.clone(), stop.clone(), base.clone(), agent.clone());
        senders.push(tokio::spawn(async move {
            let mut n = first;
            while !stop.load(Ordering::Relaxed) {
                if post_batch(&base, &agent, n).await {
                    acked.lock().expect("lock").insert(n);
                    n += 2;
                }
            }
        }));
    }
    let count = |acked: &Arc<Mutex<BTreeSet<u32>>>| acked.lock().expect("lock").len();
    let acked_probe = acked.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("40 acknowledged batches", Duration::from_secs(60), || {
            count(&acked_probe) >= 40
        })
    })
    .await
    .expect("wait");

    // The backup, while the senders keep going.
    let before: BTreeSet<u32> = acked.lock().expect("lock").clone();
    let backup_dir = tempfile::tempdir().expect("tmp");
    let backup = backup_dir.path().join("voqa-backup.db");
    let out = {
        let (db, config, backup) = (db.clone(), config.clone(), backup.clone());
        tokio::task::spawn_blocking(move || {
            cli(
                &db,
                &config,
                &["backup", "--out", backup.to_str().expect("utf8")],
            )
        })
        .await
        .expect("backup")
    };
    assert!(out.status.success(), "backup: {}", text(&out));
    assert!(text(&out).contains("integrity ok"), "{}", text(&out));
    // Ingest went on: more batches acknowledged after the backup than before it.
    let after_backup = count(&acked);
    let acked_probe = acked.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(
            "10 more acknowledged batches",
            Duration::from_secs(60),
            || count(&acked_probe) >= after_backup + 10,
        )
    })
    .await
    .expect("wait");
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.expect("sender");
    }
    let mode = std::fs::metadata(&backup)
        .expect("backup file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "backup mode {:o}", mode & 0o777);
    // Nothing but the backup is left in its directory (the temporary name is gone).
    let names = file_names(backup_dir.path());
    assert_eq!(names, ["voqa-backup.db"]);

    // Restore into a fresh directory and serve it.
    let fresh_dir = tempfile::tempdir().expect("tmp");
    let fresh_config = write_config(fresh_dir.path());
    let fresh_db = fresh_dir.path().join("voqa.db");
    let out = cli(
        &fresh_db,
        &fresh_config,
        &["restore", backup.to_str().expect("utf8")],
    );
    assert!(out.status.success(), "restore: {}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "integrity ok, schema version {}",
            current_schema()
        )),
        "{}",
        text(&out)
    );
    let restored = Served::start(
        &fresh_db,
        &fresh_config,
        &fresh_dir.path().join("serve.log"),
    );

    // Every batch acknowledged before the backup started is there; nothing that was never
    // acknowledged or sent is.
    let held = stored_streams(&restored.base(), &ops).await;
    let missing: Vec<u32> = before
        .iter()
        .filter(|n| !held.contains(&format!("{n:016x}")))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} batches acknowledged before the backup are missing: {missing:?}",
        missing.len(),
        before.len()
    );
    let live_held = stored_streams(&base, &ops).await;
    assert!(
        held.is_subset(&live_held),
        "the restored store holds streams the live one does not"
    );
    assert!(
        held.len() < live_held.len(),
        "ingest after the backup is not in it"
    );

    // The SLA of a period that only batches acknowledged before the backup cover (ending a
    // minute before the first one that was not, so its heartbeats cannot matter): identical.
    let first_missing = (0..).find(|n| !before.contains(n)).expect("a gap");
    assert!(first_missing >= 20, "batches 0..{first_missing} only");
    let to = Timestamp::from_ns(T0 + i64::from(first_missing - 1) * 60 * SECOND);
    let path = format!("/api/v1/customers/acme/sla?from=2026-11-20T00:00:00Z&to={to}");
    let (status, live_sla) = get_json(&base, &path, &ops).await;
    assert_eq!(status, 200, "{live_sla}");
    let (status, restored_sla) = get_json(&restored.base(), &path, &ops).await;
    assert_eq!(status, 200, "{restored_sla}");
    assert_eq!(live_sla, restored_sla);
    // And it is the SLA of those calls: calls 0..first_missing-1, every fifth below MOS 4.
    let calls = u64::from(first_missing - 1);
    assert_eq!(live_sla["calls"], calls, "{live_sla}");

    // The restored store takes new ingest.
    let next = live_held.len() as u32 + 1000;
    assert!(post_batch(&restored.base(), &agent, next).await);
    let held = stored_streams(&restored.base(), &ops).await;
    assert!(held.contains(&format!("{next:016x}")));

    // Restoring over a store a collector serves is refused, --force or not, and says why.
    for args in [vec!["restore"], vec!["restore", "--force"]] {
        let mut args = args;
        args.push(backup.to_str().expect("utf8"));
        let out = cli(&fresh_db, &fresh_config, &args);
        assert!(!out.status.success(), "restore over a live store succeeded");
        assert!(
            text(&out).contains("is in use by a running collector"),
            "{}",
            text(&out)
        );
    }
    drop(restored);
    // Stopped, it is still there: replacing it needs --force, and keeps it aside.
    let out = cli(
        &fresh_db,
        &fresh_config,
        &["restore", backup.to_str().expect("utf8")],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("add --force to replace it"),
        "{}",
        text(&out)
    );
    let out = cli(
        &fresh_db,
        &fresh_config,
        &["restore", "--force", backup.to_str().expect("utf8")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the previous store was moved to"),
        "{}",
        text(&out)
    );
}

#[test]
fn restore_refuses_a_newer_schema_and_a_non_store_and_migrates_an_older_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = write_config(dir.path());
    let db = dir.path().join("voqa.db");
    token(&db, &config, &["ops"]);
    let backup = dir.path().join("b.db");
    let out = cli(
        &db,
        &config,
        &["backup", "--out", backup.to_str().expect("utf8")],
    );
    assert!(out.status.success(), "{}", text(&out));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let exec = |path: &Path, sql: &'static str| {
        rt.block_on(async {
            use sqlx::Connection;
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .expect("connect");
            sqlx::query(sql).execute(&mut conn).await.expect(sql);
            conn.close().await.expect("close");
        })
    };

    // A newer schema: a migration this binary does not have.
    let newer = dir.path().join("newer.db");
    std::fs::copy(&backup, &newer).expect("copy");
    exec(
        &newer,
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, \
         execution_time) VALUES (9999, 'future', CURRENT_TIMESTAMP, TRUE, x'00', 0)",
    );
    let target = dir.path().join("restored.db");
    let out = cli(
        &target,
        &config,
        &["restore", newer.to_str().expect("utf8")],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!(
            "has schema version 9999, newer than this collector's ({})",
            current_schema()
        )),
        "{}",
        text(&out)
    );
    assert!(!target.exists(), "a refused restore created the store");

    // Not a store at all.
    let other = dir.path().join("other.db");
    std::fs::copy(&backup, &other).expect("copy");
    exec(&other, "DROP TABLE _sqlx_migrations");
    let out = cli(
        &target,
        &config,
        &["restore", other.to_str().expect("utf8")],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("is not a voqa-collector store"),
        "{}",
        text(&out)
    );
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"not a database at all, just bytes").expect("write");
    let out = cli(
        &target,
        &config,
        &["restore", garbage.to_str().expect("utf8")],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!target.exists());

    // An older schema: a store made by migrations 1 to 3 only, as an older collector left it.
    let older = dir.path().join("older.db");
    rt.block_on(async {
        use sqlx::Connection;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&older)
            .create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("connect");
        let mut before = sqlx::migrate!("./migrations/sqlite");
        before.migrations = std::borrow::Cow::Owned(
            before
                .migrations
                .iter()
                .filter(|m| m.version < 4)
                .cloned()
                .collect(),
        );
        before.run(&mut conn).await.expect("migrations 1-3");
        conn.close().await.expect("close");
    });
    let out = cli(
        &target,
        &config,
        &["restore", older.to_str().expect("utf8")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "schema version {}, migrated from schema version 3",
            current_schema()
        )),
        "{}",
        text(&out)
    );
    // The migrated store works: a token bound to an agent needs migration 4's column.
    token(&target, &config, &["agent", "--agent", AGENT]);
}

#[test]
fn backup_dir_keeps_the_newest_n_and_nothing_else_is_touched() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = write_config(dir.path());
    let db = dir.path().join("voqa.db");
    token(&db, &config, &["ops"]);
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).expect("mkdir");
    // Older backups (by name: their times are in 2025), and files that only look alike.
    for name in [
        "voqa-collector-20250101T000000Z.db",
        "voqa-collector-20250102T000000Z.db",
        "voqa-collector-20250103T000000Z.db",
        "voqa-collector-notes.db",
        "voqa-collector-20250101T000000Z.db-wal",
        "README",
    ] {
        std::fs::write(backups.join(name), b"x").expect("write");
    }
    let out = cli(
        &db,
        &config,
        &[
            "backup",
            "--dir",
            backups.to_str().expect("utf8"),
            "--keep",
            "2",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let names = file_names(&backups);
    let new = names
        .iter()
        .find(|n| n.starts_with("voqa-collector-20") && !n.starts_with("voqa-collector-2025"))
        .expect("the new backup")
        .clone();
    assert_eq!(
        names,
        [
            "README",
            "voqa-collector-20250101T000000Z.db-wal",
            "voqa-collector-20250103T000000Z.db",
            new.as_str(),
            "voqa-collector-notes.db",
        ]
    );
    let mode = std::fs::metadata(backups.join(&new))
        .expect("new")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(text(&out).contains("deleted old backup"), "{}", text(&out));

    // Without --keep, the configured backup_keep applies (1 here: only the new one stays).
    std::fs::write(&config, format!("backup_keep = 1\n{CONFIG}")).expect("config");
    let other = dir.path().join("other-backups");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("voqa-collector-20250101T000000Z.db"), b"x").expect("write");
    let out = cli(
        &db,
        &config,
        &["backup", "--dir", other.to_str().expect("utf8")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let kept = file_names(&other);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(!kept[0].starts_with("voqa-collector-2025"), "{kept:?}");
}

/// The schema version this build migrates to: its newest SQLite migration's number (the
/// versions are the migration files' prefixes, `0005_….sql`).
fn current_schema() -> u32 {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".sql")?.split('_').next()?.parse().ok()
        })
        .max()
        .expect("at least one migration")
}
