//! The README's first command, `cargo run --release -p voqa-collector --example demo`, checked
//! end to end: the example binary is run with `--once` (built first if needed: `cargo test`
//! builds examples but does not run them) and what it prints is compared with the ground
//! truth of the capture's generator (`tests/make_demo_day.rs`), never with the agent or the
//! collector: every stream with its exact packet and loss counts, the bad call below the
//! demo's MOS threshold, and SLA verdicts that follow from how the day was built — 7 of 8
//! answered calls meeting MOS, the bad call over the loss ceiling, and uptime from the outage
//! the generator left in the capture, over the period without the maintenance window.
//!
//! Deterministic: the example returns only once the collector acknowledged every record, so
//! nothing here waits or races; two runs print the same results (fixed pseudonym key).

#[allow(dead_code)] // the generator's `main` and JSON writer are for its example only
#[path = "make_demo_day.rs"]
mod make_demo_day;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use make_demo_day::{DemoDay, SPAN_NS, T0_NS, build, rfc3339};

/// The demo's commitments, as its README section and `collector/examples/demo.rs` state them.
const MOS_MIN: f64 = 3.6;
const CALLS_MEETING_PCT: f64 = 95.0;
const LOSS_MAX_PCT: f64 = 2.0;
const JITTER_P95_MAX_MS: f64 = 30.0;
const UPTIME_MIN_PCT: f64 = 99.5;
/// "Mon 09:00-09:30 UTC": 2026-11-23 is a Monday and the capture starts at 08:00.
const MAINTENANCE: (i64, i64) = (T0_NS + 3600 * S, T0_NS + 5400 * S);
/// The agent's default heartbeat period (and the commitments' default).
const HEARTBEAT_NS: i64 = 15 * S;
/// A capture silence longer than this is an agent that was not capturing (replay sends no
/// heartbeat for boundaries inside it).
const SILENCE_NS: i64 = 60 * S;
const S: i64 = 1_000_000_000;
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The example's binary beside this test's (`target/<profile>/examples/demo`), built (or
/// brought up to date: a no-op when fresh) with the same profile and target directory.
fn demo_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current test binary");
    let deps = exe.parent().expect("target/<profile>/deps");
    let profile_dir = deps.parent().expect("target/<profile>");
    let target_dir = profile_dir.parent().expect("target");
    let binary = profile_dir
        .join("examples")
        .join(format!("demo{}", std::env::consts::EXE_SUFFIX));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut build = Command::new(cargo);
    // Without the variables cargo sets for a test run: ring's build script tracks
    // CARGO_MANIFEST_DIR, so passing it on would rebuild ring and everything above it here,
    // and again in the next `cargo test`.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_BIN_EXE_",
            "CARGO_CRATE_",
        ]
        .iter()
        .any(|p| name.starts_with(p))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR"].contains(&name.as_ref())
        {
            build.env_remove(name.as_ref());
        }
    }
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--quiet",
            "-p",
            "voqa-collector",
            "--example",
            "demo",
        ])
        .arg("--target-dir")
        .arg(target_dir);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(other) => {
            build.args(["--profile", other]);
        }
        None => panic!("unexpected test binary location {}", exe.display()),
    }
    let out = build.output().expect("run cargo build --example demo");
    assert!(
        out.status.success(),
        "building the demo example failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(binary.is_file(), "{} was not built", binary.display());
    binary
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the demo with `--once`; kills it and fails after [`RUN_TIMEOUT`].
fn run_demo(binary: &Path) -> Run {
    let mut child = Command::new(binary)
        .arg("--once")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the demo");
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = reader(Box::new(child.stdout.take().expect("stdout")));
    let stderr = reader(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the demo") {
            break Some(status);
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        code: status.and_then(|s| s.code()),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    assert!(
        status.is_some(),
        "the demo did not finish within {RUN_TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    run
}

/// One row of the stream table, split on whitespace:
/// `#  source  destination  codec  pkts  lost  loss%  jitter  MOS  call  [marker]`.
struct Row<'a> {
    src: &'a str,
    dst: &'a str,
    codec: &'a str,
    packets: u64,
    lost: u64,
    loss_pct: &'a str,
    mos: f64,
    call: &'a str,
    flagged: bool,
}

fn stream_rows(stdout: &str) -> Vec<Row<'_>> {
    let mut lines = stdout.lines().skip_while(|l| {
        let t: Vec<&str> = l.split_whitespace().collect();
        !(t.first() == Some(&"#") && t.get(1) == Some(&"source"))
    });
    assert!(lines.next().is_some(), "no stream table in:\n{stdout}");
    lines
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            assert!(t.len() >= 10, "short table row: {l}");
            let number = |i: usize| -> u64 {
                t[i].parse()
                    .unwrap_or_else(|_| panic!("column {i} of: {l}"))
            };
            Row {
                src: t[1],
                dst: t[2],
                codec: t[3],
                packets: number(4),
                lost: number(5),
                loss_pct: t[6],
                mos: t[8].parse().unwrap_or_else(|_| panic!("MOS of: {l}")),
                call: t[9],
                flagged: l.contains("below MOS"),
            }
        })
        .collect()
}

/// The SLA row of commitment `name`: `(target, measured, verdict)`, and the lines under it.
fn commitment<'a>(stdout: &'a str, name: &str) -> (&'a str, &'a str, &'a str, Vec<&'a str>) {
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.split_whitespace().next() == Some(name) && l.starts_with("  "))
        .unwrap_or_else(|| panic!("no SLA row '{name}' in:\n{stdout}"));
    let t: Vec<&str> = lines[at].split_whitespace().collect();
    assert!(t.len() >= 4, "short SLA row: {}", lines[at]);
    let under = lines[at + 1..]
        .iter()
        .take_while(|l| l.starts_with("      "))
        .map(|l| l.trim())
        .collect();
    (t[1], t[2], t[3], under)
}

fn percent(text: &str) -> f64 {
    text.trim_start_matches(['>', '<', '='])
        .trim_end_matches('%')
        .parse()
        .unwrap_or_else(|_| panic!("not a percentage: {text}"))
}

/// What the heartbeat rules imply for the generator's outage: the replay sends a heartbeat at
/// every multiple of the period that a frame reaches, except those a frame reaches after a
/// silence over 60 s (the outage); the collector counts the whole gap between the heartbeats
/// on either side of the silence as down. Returns the gap `(last before, first after)`.
fn expected_down(day: &DemoDay) -> (i64, i64) {
    let (last_before, first_after) = day.outage;
    assert!(first_after - last_before > SILENCE_NS);
    let floor = |t: i64| t.div_euclid(HEARTBEAT_NS) * HEARTBEAT_NS;
    (floor(last_before), floor(first_after) + HEARTBEAT_NS)
}

fn overlap(a: (i64, i64), b: (i64, i64)) -> i64 {
    (a.1.min(b.1) - a.0.max(b.0)).max(0)
}

#[test]
fn demo_prints_what_the_demo_day_implies() {
    let day = build();
    let binary = demo_binary();
    let run = run_demo(&binary);
    let out = &run.stdout;
    assert_eq!(
        run.code,
        Some(0),
        "the demo failed\nstdout:\n{out}\nstderr:\n{}",
        run.stderr
    );
    let context = format!("\nstdout:\n{out}\nstderr:\n{}", run.stderr);

    // Progress on stderr: the whole capture replayed and delivered.
    assert!(
        run.stderr
            .contains(&format!("replayed {} frames", day.frames.len())),
        "{context}"
    );
    // Heartbeats: every boundary a frame reaches, but not those in the outage's silence.
    let last_ns = day.frames.last().expect("frames").0;
    let heartbeats = (T0_NS / HEARTBEAT_NS + 1..=last_ns / HEARTBEAT_NS)
        .map(|k| k * HEARTBEAT_NS)
        .filter(|b| !(day.outage.0 < *b && *b <= day.outage.1))
        .count();
    assert!(
        run.stderr
            .contains(&format!(" and {heartbeats} heartbeats;")),
        "expected {heartbeats} heartbeats{context}"
    );
    assert!(run.stderr.contains("every one acknowledged"), "{context}");

    // The stream table: every stream of the capture, counts exactly as built.
    let rows = stream_rows(out);
    assert_eq!(rows.len(), day.streams.len(), "16 streams{context}");
    assert_eq!(rows.len(), 16);
    let row_of = |src: &str, dst: &str| -> &Row<'_> {
        let found: Vec<&Row<'_>> = rows
            .iter()
            .filter(|r| r.src == src && r.dst == dst)
            .collect();
        assert_eq!(found.len(), 1, "one row {src} -> {dst}{context}");
        found[0]
    };
    for t in &day.streams {
        let r = row_of(&t.src, &t.dst);
        let what = format!("{} -> {}", t.src, t.dst);
        assert_eq!(r.codec, "PCMU/8000", "{what}");
        assert_eq!(r.packets, t.packets(), "{what} packets");
        assert_eq!(r.lost, t.dropped, "{what} lost");
        assert_eq!(
            r.loss_pct,
            format!("{:.2}", 100.0 * t.dropped as f64 / t.sent as f64),
            "{what} loss %"
        );
        assert!(r.call.starts_with("anon:"), "{what}: pseudonymised call id");
    }
    // Streams of a call share its (pseudonymised) id; different calls have different ids.
    let answered: Vec<_> = day.calls.iter().filter(|c| !c.streams.is_empty()).collect();
    assert_eq!(answered.len(), 8, "8 answered calls");
    let mut ids = Vec::new();
    for c in &answered {
        let call_ids: Vec<&str> = c
            .streams
            .iter()
            .map(|&i| row_of(&day.streams[i].src, &day.streams[i].dst).call)
            .collect();
        assert!(call_ids.iter().all(|id| *id == call_ids[0]), "{call_ids:?}");
        ids.push(call_ids[0]);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), answered.len(), "one id per call");

    // The bad call below the MOS threshold (and flagged), every other call at or above it.
    let mut bad_stream = None;
    for c in &answered {
        let worst = c
            .streams
            .iter()
            .map(|&i| row_of(&day.streams[i].src, &day.streams[i].dst))
            .min_by(|a, b| a.mos.total_cmp(&b.mos))
            .expect("streams");
        if c.bad {
            assert!(worst.mos < MOS_MIN, "bad call MOS {}{context}", worst.mos);
            assert!(worst.flagged, "the bad call's stream is flagged{context}");
            bad_stream = Some(worst);
        } else {
            assert!(worst.mos >= MOS_MIN, "call MOS {}{context}", worst.mos);
        }
    }
    assert_eq!(rows.iter().filter(|r| r.flagged).count(), 1, "{context}");
    let bad = bad_stream.expect("one bad call");
    let bad_truth = day
        .streams
        .iter()
        .find(|t| t.src == bad.src && t.dst == bad.dst)
        .expect("truth of the bad stream");

    // SLA verdicts.
    let (target, measured, verdict, why) = commitment(out, "mos");
    let meeting = answered.iter().filter(|c| !c.bad).count();
    let share = 100.0 * meeting as f64 / answered.len() as f64;
    assert_eq!(share, 87.5);
    assert_eq!(percent(target), CALLS_MEETING_PCT, "{context}");
    assert_eq!(measured, format!("{share:.2}%"), "{context}");
    assert_eq!(verdict, "BREACHED", "{context}");
    assert!(
        why.iter()
            .any(|l| l.starts_with("why:") && l.contains(bad.call)),
        "the MOS breach names the bad call{context}"
    );

    // Loss: the bad call's network loss alone is over the ceiling (the jitter buffer's
    // discards only add to it); every other call's stays under it.
    let (target, measured, verdict, why) = commitment(out, "loss");
    assert_eq!(percent(target), LOSS_MAX_PCT, "{context}");
    let bad_network_loss = 100.0 * bad_truth.dropped as f64 / bad_truth.sent as f64;
    assert!(bad_network_loss > LOSS_MAX_PCT);
    assert!(percent(measured) >= bad_network_loss, "{context}");
    for t in day
        .streams
        .iter()
        .filter(|t| !(t.src == bad.src && t.dst == bad.dst))
    {
        assert!(100.0 * (t.dropped as f64) / (t.sent as f64) < LOSS_MAX_PCT);
    }
    assert_eq!(verdict, "BREACHED", "{context}");
    assert!(
        why.iter()
            .any(|l| l.starts_with("why:") && l.contains(bad.call) && l.contains(bad.src)),
        "the loss breach names the bad call's stream{context}"
    );

    let (target, measured, verdict, _) = commitment(out, "jitter_p95");
    assert_eq!(target, format!("<={JITTER_P95_MAX_MS:.2}ms"), "{context}");
    let p95: f64 = measured
        .trim_end_matches("ms")
        .parse()
        .unwrap_or_else(|_| panic!("jitter p95 '{measured}'"));
    assert!(p95 > 0.0 && p95 <= JITTER_P95_MAX_MS, "{context}");
    assert_eq!(verdict, "met", "{context}");

    // Uptime: the outage's heartbeat gap over the period without the maintenance window.
    let (target, measured, verdict, why) = commitment(out, "uptime");
    assert_eq!(percent(target), UPTIME_MIN_PCT, "{context}");
    let period = (T0_NS, T0_NS + SPAN_NS);
    let (down_from, down_to) = expected_down(&day);
    let silence = day.outage.1 - day.outage.0;
    let down = down_to - down_from;
    // Consistent with the ~10.5-minute outage: at least the silence, at most two heartbeat
    // periods more (the heartbeats that bound it).
    assert!(silence <= down && down <= silence + 2 * HEARTBEAT_NS);
    assert_eq!(overlap((down_from, down_to), MAINTENANCE), 0);
    // Evaluated: the period outside maintenance from the agent's first heartbeat on (it
    // comes one heartbeat period after T0; before it there is no data, which is not downtime).
    let first_heartbeat = (T0_NS / HEARTBEAT_NS + 1) * HEARTBEAT_NS;
    let with_data = (first_heartbeat, period.1);
    let evaluated = with_data.1 - with_data.0 - overlap(with_data, MAINTENANCE);
    let uptime = 100.0 * (evaluated - down) as f64 / evaluated as f64;
    assert!(
        (percent(measured) - uptime).abs() < 0.0006,
        "uptime {measured}, expected {uptime:.4}{context}"
    );
    assert!(uptime < UPTIME_MIN_PCT);
    assert_eq!(verdict, "BREACHED", "{context}");
    assert!(
        why.iter().any(|l| l.starts_with("why:")
            && l.contains(&rfc3339(down_from))
            && l.contains(&rfc3339(down_to))),
        "the uptime breach shows the outage {} to {}{context}",
        rfc3339(down_from),
        rfc3339(down_to)
    );
    assert!(
        why.iter()
            .any(|l| l.contains(&format!("of {} s evaluated", evaluated / S))),
        "the uptime breach is a share of {} s{context}",
        evaluated / S
    );
    assert!(out.contains("BREACHED (3 of 4 commitments)"), "{context}");

    // Where to go next: the URL, the ops token, two curl commands with both.
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("Collector: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no collector URL{context}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("Ops token: "))
        .unwrap_or_else(|| panic!("no ops token{context}"));
    assert!(token.starts_with("voqa_"), "{token}");
    let curls: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("curl "))
        .collect();
    assert_eq!(curls.len(), 2, "{context}");
    for c in curls {
        assert!(
            c.contains(&format!("Bearer {token}")) && c.contains(url),
            "{c}"
        );
    }

    // The demo customer's report of the day, written where it outlives the demo (0600).
    let report = out
        .lines()
        .find_map(|l| l.strip_prefix("Report of customer demo (HTML): "))
        .unwrap_or_else(|| panic!("no report path{context}"));
    let report = std::path::Path::new(report);
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(report).unwrap_or_else(|e| panic!("{}: {e}", report.display()));
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o600,
            "{}",
            report.display()
        );
    }
    let html = std::fs::read_to_string(report).expect("the report is UTF-8");
    assert!(
        html.contains("Demo Telecom") && html.contains("</html>"),
        "{}",
        report.display()
    );

    // A second run prints the same results: only the port and the token differ.
    let again = run_demo(&binary);
    assert_eq!(again.code, Some(0), "second run: {}", again.stderr);
    let results = |text: &str| -> String {
        text.lines()
            .take_while(|l| !l.starts_with("Collector: "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(results(out), results(&again.stdout), "stable output");
}
