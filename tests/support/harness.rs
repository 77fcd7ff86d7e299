//! The test harness of the suites whose tests need something a machine may lack: the shared
//! captures beside the repository (`../shared`), root with network tools, or PostgreSQL.
//!
//! Those suites are `harness = false` targets that list their tests as libtest-mimic trials, so
//! a test whose prerequisite is missing is reported by `cargo test` as
//! `ignored (<reason>)` and counted in the ignored total, never as a pass. A test body says it
//! cannot run by calling [`skip`] (the helpers that look for a prerequisite do it for it:
//! `samples_dir`, `netns::skip_or_fail`, ...) and returning; under the matching
//! `VOQA_REQUIRE_*` variable (as in CI) [`skip`] panics instead, so nothing is skipped there.
//!
//! This module must not decide what a test checks: it only runs trials and reports skips.
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};

pub use libtest_mimic::Trial;
use libtest_mimic::{Arguments, Completion};

thread_local! {
    /// The reason the test running on this thread could not run, if it said so.
    static SKIPPED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Marks the running test as not run for `reason`, unless `$require_env` is set: then the
/// missing prerequisite is a failure and this panics. The caller returns right after.
pub fn skip(require_env: &str, reason: &str) {
    if std::env::var_os(require_env).is_some() {
        panic!("required by ${require_env} but {reason}");
    }
    println!("SKIPPED: {reason}");
    SKIPPED.with(|s| *s.borrow_mut() = Some(reason.to_owned()));
}

/// A fresh database on the test PostgreSQL (127.0.0.1:5432, trust), for a test that needs
/// one: `None` after [`skip`] when there is none (a failure under `VOQA_REQUIRE_POSTGRES`).
pub fn fresh_postgres(test: &str) -> Option<String> {
    let name = format!(
        "voqa_e2e_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    let created = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
        .arg(format!("CREATE DATABASE {name}"))
        .output();
    match created {
        Ok(out) if out.status.success() => {
            Some(format!("postgres://postgres@127.0.0.1:5432/{name}"))
        }
        other => {
            let why = match other {
                Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            skip(
                "VOQA_REQUIRE_POSTGRES",
                &format!("{test}: no PostgreSQL at 127.0.0.1:5432 ({})", why.trim()),
            );
            None
        }
    }
}

/// A trial running `body` on the harness's thread: passed, failed (panic) or ignored (the
/// body called [`skip`]).
pub fn trial(name: impl Into<String>, body: impl FnOnce() + Send + 'static) -> Trial {
    Trial::ignorable_test(name, move || {
        SKIPPED.with(|s| s.borrow_mut().take());
        body();
        Ok(match SKIPPED.with(|s| s.borrow_mut().take()) {
            Some(reason) => Completion::ignored_with(reason),
            None => Completion::Completed,
        })
    })
}

/// A trial only run on request (`--ignored`), like `#[ignore]`.
pub fn ignored_trial(name: impl Into<String>, body: impl FnOnce() + Send + 'static) -> Trial {
    trial(name, body).with_ignored_flag(true)
}

/// `trials![a, b, c]`: one trial per test function, named after it.
#[macro_export]
macro_rules! trials {
    ($($test:path),* $(,)?) => {
        vec![$($crate::support::harness::trial(stringify!($test), $test)),*]
    };
}

/// Runs the trials with libtest's command line (filters, `--exact`, `--ignored`, `--list`,
/// `--test-threads`) and exits with its status. `source` is the suite's own file (`file!()`):
/// a trial checks that no `#[test]` function was left in it, since under `harness = false` such
/// a function would silently never run.
pub fn main(source: &str, mut trials: Vec<Trial>) -> ! {
    let source = source.to_owned();
    trials.push(trial("harness::every_test_is_a_trial", move || {
        every_test_is_a_trial(&source)
    }));
    let args = Arguments::from_args();
    libtest_mimic::run(&args, trials).exit()
}

fn every_test_is_a_trial(source: &str) {
    let path = source_path(source);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let stray: Vec<String> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start();
            l.starts_with("#[test]") || l.starts_with("#[tokio::test")
        })
        .map(|(n, l)| format!("{}:{}: {}", path.display(), n + 1, l.trim()))
        .collect();
    assert!(
        stray.is_empty(),
        "this suite runs under libtest-mimic (harness = false): a #[test] function never runs; \
         list it in the suite's main() instead:\n{}",
        stray.join("\n")
    );
}

/// `file!()` is relative to the workspace root (where cargo runs rustc); the test runs in the
/// package directory.
fn source_path(source: &str) -> PathBuf {
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    [package.join(source), package.join("..").join(source)]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(source))
}
