//! Backups and restores of the SQLite store, and the lock that tells a restore the store is
//! live.
//!
//! `backup` copies the store while a collector serves it: `VACUUM INTO` reads one snapshot
//! (WAL lets the collector keep writing meanwhile) into a 0600 temporary file in the
//! destination directory, which is fsynced, checked with `PRAGMA integrity_check`, and only then
//! linked under its final name (never over an existing file). With `--dir`, files are named by
//! UTC time and the oldest beyond `keep` are deleted — only files of exactly that name pattern.
//!
//! `restore` puts a backup in place of a store that no collector serves: `serve` holds an
//! exclusive `flock` on `PATH.lock` for as long as it runs, and restore takes the same lock, so
//! neither can start while the other holds it. What this detects, honestly: a `serve` of this
//! version or later on the same host, on the same path. It does not detect an older collector,
//! another program writing the file, or a collector on another host over a network file
//! system. The backup is copied beside the store, checked (integrity, schema migrations no newer
//! than this binary's and identical to its own), migrated if older, and then renamed into place;
//! the store it replaces is kept, renamed, not deleted.
//!
//! PostgreSQL stores are not copied here: the errors say to use `pg_dump`/`pg_restore` and
//! give the commands. This module must not open a `Store` (it would start writer tasks and
//! apply migrations to a live database) nor touch a file it did not name or create.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::store::sqlite::MIGRATOR;

/// Prefix and suffix of the files `backup --dir` writes and prunes:
/// `voqa-collector-YYYYMMDDTHHMMSSZ.db`.
pub const BACKUP_PREFIX: &str = "voqa-collector-";
pub const BACKUP_SUFFIX: &str = "Z.db";

/// Why a backup or restore was refused or failed. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the store is PostgreSQL: back it up with pg_dump, not with this command:\n{recipe}")]
    Postgres { recipe: String },
    #[error("'{0}' is not a sqlite:PATH or postgres://... store URL")]
    Url(String),
    #[error(
        "{store} is in use by a running collector (it holds {lock}): stop it first \
         (systemctl stop voqa-collector)"
    )]
    Live { store: PathBuf, lock: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("{0} does not exist: there is nothing to back up")]
    NoStore(PathBuf),
    #[error("{0} already exists; choose another name (a backup never overwrites a file)")]
    Exists(PathBuf),
    #[error("{path} failed its integrity check: {report}")]
    Corrupt { path: PathBuf, report: String },
    #[error("{0} is not a voqa-collector store (it has no _sqlx_migrations table)")]
    NotAStore(PathBuf),
    #[error(
        "{path} has schema version {found}, newer than this collector's ({known}): restore it \
         with the voqa-collector version that wrote it, or upgrade this one"
    )]
    Newer {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{path}: {message}")]
    Schema { path: PathBuf, message: String },
    #[error(
        "{target} exists: add --force to replace it (the store it replaces is kept as \
         {kept})"
    )]
    TargetExists { target: PathBuf, kept: PathBuf },
    #[error("--keep must be at least 1")]
    Keep,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

fn sql(path: &Path) -> impl FnOnce(sqlx::Error) -> BackupError + '_ {
    move |source| BackupError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

/// The SQLite file of a store URL; for PostgreSQL, the refusal with the pg_dump recipe.
pub fn sqlite_path(url: &str) -> Result<PathBuf, BackupError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        return Ok(PathBuf::from(path));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(BackupError::Postgres {
            recipe: pg_recipe(),
        });
    }
    Err(BackupError::Url(url.to_owned()))
}

/// The commands for a PostgreSQL store (the URL is left to the operator: it may hold a
/// password, which does not belong in a log).
pub fn pg_recipe() -> String {
    "  backup:  pg_dump --format=custom --file=voqa-$(date -u +%Y%m%dT%H%M%SZ).dump \"$DATABASE_URL\"\n  \
     check:   pg_restore --list voqa-....dump > /dev/null\n  \
     restore: systemctl stop voqa-collector; createdb voqa_restored; \
     pg_restore --dbname=voqa_restored --no-owner voqa-....dump\n           \
     then point `database` at voqa_restored and start the collector (it migrates an older schema)"
        .to_owned()
}

/// Held by `serve` for as long as it runs, and by `restore` while it replaces the store:
/// an exclusive `flock` on `PATH.lock` (created 0600, never deleted: deleting a lock file
/// races with its next user). The kernel releases it when the process ends, however it ends.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    pub fn lock_path(store: &Path) -> PathBuf {
        let mut name = store.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock or says who holds it; never waits.
    pub fn acquire(store: &Path) -> Result<StoreLock, BackupError> {
        let lock = Self::lock_path(store);
        let file = private_file(&lock, false)?;
        give_to_dir_owner(&lock)?;
        match file.try_lock() {
            Ok(()) => Ok(StoreLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(BackupError::Live {
                store: store.to_owned(),
                lock,
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(io(&lock)(e)),
        }
    }
}

/// Run as root, gives `path` to the owner of its directory (the service user's state
/// directory), so that files root creates for the service (the restored store, the lock) stay
/// usable by it. As anyone else, files are already the caller's: nothing to do.
fn give_to_dir_owner(path: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the process's effective user.
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        if !root {
            return Ok(());
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let owner = std::fs::metadata(dir).map_err(io(dir))?;
        let file = std::fs::metadata(path).map_err(io(path))?;
        if (file.uid(), file.gid()) != (owner.uid(), owner.gid()) {
            std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid()))
                .map_err(io(path))?;
        }
    }
    Ok(())
}

/// Opens (creating if missing) a file readable and writable by its owner only; with
/// `create_new`, refuses an existing one.
fn private_file(path: &Path, create_new: bool) -> Result<File, BackupError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(io(path))
}

/// A connection to an existing SQLite file (never created here), without touching its
/// journal mode.
async fn connect(path: &Path) -> Result<SqliteConnection, BackupError> {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(sql(path))?
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30));
    SqliteConnection::connect_with(&options)
        .await
        .map_err(sql(path))
}

/// What a backup or restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    pub path: PathBuf,
    pub bytes: u64,
    /// The newest schema migration applied in the copy.
    pub schema_version: i64,
}

/// Copies the store at `store` into `out` (which must not exist): one consistent snapshot,
/// written to a 0600 temporary file beside `out`, fsynced, integrity-checked, then linked as
/// `out`. On any failure nothing is left at `out`.
pub async fn backup(store: &Path, out: &Path) -> Result<BackupInfo, BackupError> {
    if !store.is_file() {
        return Err(BackupError::NoStore(store.to_owned()));
    }
    if out.exists() {
        return Err(BackupError::Exists(out.to_owned()));
    }
    let tmp = temp_beside(out, "backup")?;
    let result = write_checked(store, &tmp, out).await;
    // Linked or failed: the temporary name goes either way.
    let _ = std::fs::remove_file(&tmp);
    result
}

async fn write_checked(store: &Path, tmp: &Path, out: &Path) -> Result<BackupInfo, BackupError> {
    // VACUUM INTO accepts an empty existing file: created here 0600, so the copy is never
    // readable by others, whatever the umask.
    drop(private_file(tmp, true)?);
    let mut source = connect(store).await?;
    let target = tmp.to_str().ok_or_else(|| BackupError::Io {
        path: tmp.to_owned(),
        source: std::io::Error::other("the path is not UTF-8"),
    })?;
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut source)
        .await
        .map_err(sql(store))?;
    let _ = source.close().await;
    let schema_version = check(tmp).await?;
    let file = File::open(tmp).map_err(io(tmp))?;
    file.sync_all().map_err(io(tmp))?;
    let bytes = file.metadata().map_err(io(tmp))?.len();
    // A hard link does not replace an existing file, unlike rename: two backups racing for
    // one name cannot overwrite each other.
    std::fs::hard_link(tmp, out).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            BackupError::Exists(out.to_owned())
        } else {
            io(out)(e)
        }
    })?;
    sync_dir(out)?;
    Ok(BackupInfo {
        path: out.to_owned(),
        bytes,
        schema_version,
    })
}

/// `PRAGMA integrity_check` and the schema check of a copy; its newest migration.
async fn check(path: &Path) -> Result<i64, BackupError> {
    let mut conn = connect(path).await?;
    let report: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .map_err(sql(path))?;
    let result = if report != ["ok"] {
        Err(BackupError::Corrupt {
            path: path.to_owned(),
            report: report.join("; "),
        })
    } else {
        schema_version(&mut conn, path).await
    };
    let _ = conn.close().await;
    result
}

/// The newest migration applied, after checking that every applied migration succeeded and is
/// one of this binary's, byte for byte. Newer than this binary: refused.
async fn schema_version(conn: &mut SqliteConnection, path: &Path) -> Result<i64, BackupError> {
    let has_table: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(sql(path))?;
    if has_table == 0 {
        return Err(BackupError::NotAStore(path.to_owned()));
    }
    let applied: Vec<(i64, bool, Vec<u8>)> =
        sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await
            .map_err(sql(path))?;
    let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let schema = |message: String| BackupError::Schema {
        path: path.to_owned(),
        message,
    };
    let found = applied.iter().map(|(v, _, _)| *v).max().unwrap_or(0);
    if found > known {
        return Err(BackupError::Newer {
            path: path.to_owned(),
            found,
            known,
        });
    }
    for (version, success, checksum) in &applied {
        if !success {
            return Err(schema(format!(
                "schema migration {version} did not complete in this store"
            )));
        }
        match MIGRATOR.iter().find(|m| m.version == *version) {
            None => {
                return Err(schema(format!(
                    "schema migration {version} is not one of this collector's"
                )));
            }
            Some(m) if m.checksum.as_ref() != checksum.as_slice() => {
                return Err(schema(format!(
                    "schema migration {version} differs from this collector's migration \
                     {version} (written by another build)"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(found)
}

/// A fresh 0600-to-be temporary name in the directory of `path`, starting with a dot (so
/// pruning never matches it).
fn temp_beside(path: &Path, what: &str) -> Result<PathBuf, BackupError> {
    let name = path.file_name().ok_or_else(|| BackupError::Io {
        path: path.to_owned(),
        source: std::io::Error::other("not a file name"),
    })?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{what}-{}", std::process::id()));
    Ok(path.with_file_name(tmp))
}

/// Makes a rename or link in the directory of `path` durable.
fn sync_dir(path: &Path) -> Result<(), BackupError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// `voqa-collector-YYYYMMDDTHHMMSSZ.db` for a time (ns since the epoch, UTC).
pub fn backup_name(now_ns: i64) -> String {
    let text = voqa_wire::Timestamp::from_ns(now_ns).to_string();
    // "2026-11-23T08:00:00.000000Z": the date and the whole seconds, without separators.
    let compact: String = text
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!("{BACKUP_PREFIX}{compact}{BACKUP_SUFFIX}")
}

/// Whether a file name is one `backup --dir` wrote (`backup_name`'s exact pattern).
pub fn is_backup_name(name: &str) -> bool {
    let Some(stamp) = name
        .strip_prefix(BACKUP_PREFIX)
        .and_then(|rest| rest.strip_suffix(BACKUP_SUFFIX))
    else {
        return false;
    };
    let bytes = stamp.as_bytes();
    bytes.len() == 15
        && bytes[8] == b'T'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 8 || b.is_ascii_digit())
}

/// Backs up into `dir` (created 0700 if missing) under a name from the time, then deletes the
/// oldest backups beyond `keep`. Returns the new backup and the files deleted.
pub async fn backup_into_dir(
    store: &Path,
    dir: &Path,
    keep: usize,
    now_ns: i64,
) -> Result<(BackupInfo, Vec<PathBuf>), BackupError> {
    if keep == 0 {
        return Err(BackupError::Keep);
    }
    if !dir.is_dir() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(io(dir))?;
    }
    let info = backup(store, &dir.join(backup_name(now_ns))).await?;
    let pruned = prune(dir, keep)?;
    Ok((info, pruned))
}

/// Deletes the oldest `backup_name` files in `dir` beyond the newest `keep` (names sort by
/// time). Other files are never touched.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| is_backup_name(name))
        .collect();
    names.sort_unstable();
    let excess = names.len().saturating_sub(keep);
    let mut deleted = Vec::with_capacity(excess);
    for name in names.into_iter().take(excess) {
        let path = dir.join(name);
        std::fs::remove_file(&path).map_err(io(&path))?;
        deleted.push(path);
    }
    Ok(deleted)
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreInfo {
    pub store: PathBuf,
    /// Schema version of the backup as read, and after migration.
    pub from_version: i64,
    pub to_version: i64,
    /// Where the store it replaced was moved, if there was one.
    pub replaced: Option<PathBuf>,
}

/// Puts the backup `file` in place of the store at `store`. Refuses while a collector serves
/// it (the lock), when the backup is corrupt, not a store, or of a newer or foreign schema,
/// and when a store exists there unless `force` (which keeps that store as
/// `STORE.replaced-TIME`, its WAL beside it). An older schema is migrated on the copy before
/// it is put in place, so a failure leaves the existing store as it was.
pub async fn restore(
    file: &Path,
    store: &Path,
    force: bool,
    now_ns: i64,
) -> Result<RestoreInfo, BackupError> {
    if !file.is_file() {
        return Err(BackupError::Io {
            path: file.to_owned(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let _lock = StoreLock::acquire(store)?;
    let kept = {
        let stamp = backup_name(now_ns);
        let stamp = stamp
            .trim_start_matches(BACKUP_PREFIX)
            .trim_end_matches(".db");
        let mut name = store.as_os_str().to_owned();
        name.push(format!(".replaced-{stamp}"));
        PathBuf::from(name)
    };
    if store.exists() && !force {
        return Err(BackupError::TargetExists {
            target: store.to_owned(),
            kept,
        });
    }
    let tmp = temp_beside(store, "restore")?;
    let result = restore_via(file, store, &tmp, &kept).await;
    let _ = std::fs::remove_file(&tmp);
    result
}

async fn restore_via(
    file: &Path,
    store: &Path,
    tmp: &Path,
    kept: &Path,
) -> Result<RestoreInfo, BackupError> {
    {
        let mut from = File::open(file).map_err(io(file))?;
        let mut to = private_file(tmp, true)?;
        std::io::copy(&mut from, &mut to).map_err(io(tmp))?;
        to.sync_all().map_err(io(tmp))?;
    }
    // Run as root (sudo), the copy would be root's and the collector's user could not open it.
    give_to_dir_owner(tmp)?;
    // Checked on the copy: what is put in place is what was checked.
    let from_version = check(tmp)
        .await
        .map_err(|e| rename_in_error(e, tmp, file))?;
    let mut conn = connect(tmp).await?;
    let migrated = MIGRATOR.run(&mut conn).await;
    let _ = conn.close().await;
    migrated.map_err(|e| BackupError::Schema {
        path: file.to_owned(),
        message: format!("migrating to this collector's schema failed: {e}"),
    })?;
    let to_version = check(tmp).await?;
    let with = |suffix: &str| {
        let mut name = store.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let mut replaced = None;
    if store.exists() {
        // The old store moves aside with its WAL (the WAL belongs to it: left under the store's
        // name it would be replayed into the restored file). The shared-memory index is
        // rebuilt from the WAL, so it is deleted.
        std::fs::rename(store, kept).map_err(io(store))?;
        let wal = with("-wal");
        if wal.exists() {
            let mut kept_wal = kept.as_os_str().to_owned();
            kept_wal.push("-wal");
            std::fs::rename(&wal, PathBuf::from(kept_wal)).map_err(io(&wal))?;
        }
        replaced = Some(kept.to_owned());
    }
    for stale in [with("-wal"), with("-shm"), with("-journal")] {
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&stale)(e)),
            _ => {}
        }
    }
    std::fs::rename(tmp, store).map_err(io(store))?;
    sync_dir(store)?;
    Ok(RestoreInfo {
        store: store.to_owned(),
        from_version,
        to_version,
        replaced,
    })
}

/// The checks ran on the copy; their messages name the file the operator gave.
fn rename_in_error(error: BackupError, tmp: &Path, file: &Path) -> BackupError {
    let swap = |path: PathBuf| if path == tmp { file.to_owned() } else { path };
    match error {
        BackupError::Corrupt { path, report } => BackupError::Corrupt {
            path: swap(path),
            report,
        },
        BackupError::NotAStore(path) => BackupError::NotAStore(swap(path)),
        BackupError::Newer { path, found, known } => BackupError::Newer {
            path: swap(path),
            found,
            known,
        },
        BackupError::Schema { path, message } => BackupError::Schema {
            path: swap(path),
            message,
        },
        BackupError::Sqlite { path, source } => BackupError::Sqlite {
            path: swap(path),
            source,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time_and_only_they_are_backups() {
        // 2026-11-23T08:00:05Z and a second later.
        let t = 1_795_420_805_000_000_000;
        assert_eq!(backup_name(t), "voqa-collector-20261123T080005Z.db");
        assert!(backup_name(t) < backup_name(t + 1_000_000_000));
        assert!(is_backup_name("voqa-collector-20261123T080005Z.db"));
        for other in [
            "voqa-collector-20261123T080005Z.db-wal",
            ".voqa-collector-20261123T080005Z.db.backup-12",
            "voqa-collector-2026112XT080005Z.db",
            "voqa-collector-20261123T08000Z.db",
            "voqa.db",
            "voqa-collector-garbage.db",
        ] {
            assert!(!is_backup_name(other), "{other}");
        }
    }

    #[test]
    fn the_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = dir.path().join("voqa.db");
        let held = StoreLock::acquire(&store).expect("first");
        let err = StoreLock::acquire(&store).expect_err("second while held");
        assert!(
            matches!(&err, BackupError::Live { lock, .. } if *lock == dir.path().join("voqa.db.lock")),
            "{err}"
        );
        drop(held);
        StoreLock::acquire(&store).expect("after release");
    }

    #[test]
    fn postgres_is_refused_with_the_recipe() {
        let err = sqlite_path("postgres://voqa:secret@db/voqa").expect_err("postgres");
        let text = err.to_string();
        assert!(text.contains("pg_dump --format=custom"), "{text}");
        assert!(text.contains("pg_restore"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(
            sqlite_path("sqlite:/var/lib/x.db").expect("sqlite"),
            PathBuf::from("/var/lib/x.db")
        );
    }
}
