//! `packaging/prometheus/voqa-rules.yml`, the recording and alerting rules for teams that alert
//! from Prometheus: `promtool check rules` accepts it, `promtool test rules` runs its unit tests
//! (`voqa-rules.test.yml`: synthetic series, alerts expected and not expected at hand-worked
//! times), and every voqa metric the rules read is one the agent or the collector exports.
//!
//! Reported as ignored when promtool (Debian's `prometheus` package) is missing; required under
//! `VOQA_REQUIRE_PROMTOOL=1`, as in CI (`.ci/run` installs it).

#[path = "support/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;

const REQUIRE: &str = "VOQA_REQUIRE_PROMTOOL";

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/prometheus")
}

/// Runs `promtool ARGS` in the rules' folder; `None` (skipped) when promtool is missing.
fn promtool(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("promtool")
        .args(args)
        .current_dir(rules_dir())
        .output()
    {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            harness::skip(
                REQUIRE,
                "promtool is not installed (apt-get install prometheus)",
            );
            None
        }
        Err(e) => panic!("running promtool: {e}"),
    }
}

fn assert_success(what: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rules_are_valid() {
    if let Some(out) = promtool(&["check", "rules", "voqa-rules.yml"]) {
        assert_success("promtool check rules", &out);
    }
}

fn rules_fire_when_and_only_when_expected() {
    if let Some(out) = promtool(&["test", "rules", "voqa-rules.test.yml"]) {
        assert_success("promtool test rules", &out);
    }
}

/// The `voqa_*` names in `text` (recording rules' `voqa:…` names are not metrics).
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("voqa_") {
        let start = i + at;
        let before_ok = start == 0
            || !(bytes[start - 1].is_ascii_alphanumeric()
                || bytes[start - 1] == b'_'
                || bytes[start - 1] == b':');
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if before_ok && bytes.get(end) != Some(&b':') {
            names.push(text[start..end].to_owned());
        }
        i = end;
    }
    names.sort();
    names.dedup();
    names
}

fn source_text(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            source_text(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).expect("source file"));
        }
    }
}

/// A rule over a metric nobody exports never fires: each name the rules read must be written
/// as a metric name (a string literal) in the agent's or the collector's code.
fn rules_read_only_exported_metrics() {
    let rules = std::fs::read_to_string(rules_dir().join("voqa-rules.yml")).expect("rules file");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut code = String::new();
    source_text(&root.join("agent/src"), &mut code);
    source_text(&root.join("collector/src"), &mut code);
    let names = metric_names(&rules);
    assert!(names.len() >= 8, "too few metric names found: {names:?}");
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| {
            !code.contains(&format!("\"{n}\""))
                && !code.contains(&format!("\"# HELP {n} "))
                && !code.contains(&format!("\"{n}{{"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "rules read metrics no code exports: {missing:?}"
    );
}

fn metric_names_skip_recording_rules() {
    let names = metric_names("rate(voqa_a_total[5m]) / voqa:b:rate5m + x_voqa_c + voqa_d{x=\"1\"}");
    assert_eq!(names, ["voqa_a_total", "voqa_d"]);
}

fn main() {
    harness::main(
        file!(),
        vec![
            harness::trial("rules_are_valid", rules_are_valid),
            harness::trial(
                "rules_fire_when_and_only_when_expected",
                rules_fire_when_and_only_when_expected,
            ),
            harness::trial(
                "rules_read_only_exported_metrics",
                rules_read_only_exported_metrics,
            ),
            harness::trial(
                "metric_names_skip_recording_rules",
                metric_names_skip_recording_rules,
            ),
        ],
    );
}
