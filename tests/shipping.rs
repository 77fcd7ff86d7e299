//! Agent → collector with nothing lost and nothing twice, through the real binaries over real
//! HTTP on loopback: `voqa-agent replay` ships a capture into `voqa-collector serve` while the
//! collector is down, killed, behind a faulty network, or refusing the token, and while the
//! agent itself is killed. Each test compares the set of stream-report ids the collector stored
//! (and how many copies) with the set the agent produces for the same capture.

mod support;

#[path = "support/e2e.rs"]
mod e2e;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::{AgentProcess, Collector, many_streams_capture, produced_report_ids, secret_file};

fn main() {
    let trials = trials![
        collector_down_at_start_and_up_20_s_later_gets_everything_once,
        collector_and_agent_killed_mid_stream_lose_nothing_and_store_nothing_twice,
        a_network_that_stalls_resets_and_cuts_mid_body_loses_and_duplicates_nothing,
        a_refused_token_keeps_the_data_and_sighup_with_the_right_one_delivers_it,
        a_torn_and_a_bit_flipped_spool_record_are_cut_and_counted_and_the_rest_delivered,
        a_full_spool_drops_the_oldest_counts_them_and_delivers_the_rest,
        two_collector_replicas_on_one_postgres_one_killed_mid_run_store_everything_once,
        over_https_with_a_private_ca_everything_arrives_once_and_an_untrusted_cert_is_refused,
        live_run_on_loopback_ships_every_window_and_its_final_report_on_sigterm,
    ];
    support::harness::main(file!(), trials)
}

const AGENT_ID: &str = "e2e-agent";

/// Agent config for the tests: small batches so shipping takes many requests, fast retries.
fn agent_config(dir: &Path, collectors: &[String], extra_ship: &str) -> PathBuf {
    let urls: Vec<String> = collectors.iter().map(|u| format!("{u:?}")).collect();
    let text = format!(
        r#"agent_id = "{AGENT_ID}"

[privacy]
key_file = "{key}"

[ship]
collectors = [{urls}]
token_file = "{token}"
spool_dir = "{spool}"
batch_max_records = 25
batch_max_age_ms = 100
backoff_min_ms = 50
backoff_max_s = 1
request_timeout_s = 5
{extra_ship}
"#,
        key = dir.join("pseudonym.key").display(),
        token = dir.join("token").display(),
        spool = dir.join("spool").display(),
        urls = urls.join(", "),
    );
    if !dir.join("pseudonym.key").exists() {
        secret_file(dir, "pseudonym.key", "e2e pseudonym key\n");
    }
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("write agent config");
    path
}

fn replay_args(config: &Path, capture: &Path) -> Vec<String> {
    vec![
        "replay".into(),
        "--config".into(),
        config.display().to_string(),
        "--interval".into(),
        "1".into(),
        "--speed".into(),
        "max".into(),
        capture.display().to_string(),
    ]
}

/// What the agent produces for `capture` with this config (same agent id, key and interval),
/// written to a file instead of a collector.
fn produced(dir: &Path, config: &Path, capture: &Path) -> Vec<String> {
    let out = dir.join("produced.jsonl");
    let mut args = replay_args(config, capture);
    args.push("--sink".into());
    args.push(format!("file:{}", out.display()));
    let mut p = AgentProcess::spawn(&args, dir.join("produced.log"));
    assert_eq!(p.wait(Duration::from_secs(120)), 0, "{}", p.log_text());
    let ids = produced_report_ids(&out);
    assert!(
        ids.len() >= 100,
        "the capture produced only {} reports",
        ids.len()
    );
    ids
}

fn assert_exactly_once(stored: &BTreeMap<String, usize>, produced: &[String]) {
    eprintln!(
        "stored {} distinct reports, produced {}",
        stored.len(),
        produced.len()
    );
    let twice: Vec<&String> = stored
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(
        twice.is_empty(),
        "{} report(s) stored twice, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    let stored_ids: Vec<&String> = stored.keys().collect();
    let produced_ids: Vec<&String> = produced.iter().collect();
    if stored_ids != produced_ids {
        let missing: Vec<&&String> = produced_ids
            .iter()
            .filter(|id| !stored.contains_key(**id))
            .collect();
        let extra: Vec<&&String> = stored_ids
            .iter()
            .filter(|id| !produced.contains(id))
            .collect();
        panic!(
            "stored {} reports, produced {}: {} missing (e.g. {:?}), {} unexpected (e.g. {:?})",
            stored_ids.len(),
            produced_ids.len(),
            missing.len(),
            &missing[..missing.len().min(5)],
            extra.len(),
            &extra[..extra.len().min(5)]
        );
    }
}

fn setup(streams: u32, seconds: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let capture = many_streams_capture(dir.path(), "many.pcap", streams, seconds, 5);
    (dir, capture)
}

fn collector_down_at_start_and_up_20_s_later_gets_everything_once() {
    let (dir, capture) = setup(20, 60);
    let mut collector = Collector::sqlite("");
    let agent_token = collector.agent_token(AGENT_ID);
    let ops = collector.token("ops");
    secret_file(dir.path(), "token", &agent_token);
    let config = agent_config(dir.path(), &[collector.url()], "");
    let expected = produced(dir.path(), &config, &capture);
    assert!(expected.len() > 1000, "only {} reports", expected.len());

    let mut agent = AgentProcess::spawn(
        &replay_args(&config, &capture),
        dir.path().join("agent.log"),
    );
    std::thread::sleep(Duration::from_secs(20));
    assert!(
        agent.child.try_wait().expect("try_wait").is_none(),
        "the agent gave up: {}",
        agent.log_text()
    );
    assert!(
        agent.log_text().contains("retrying"),
        "no retry reported: {}",
        agent.log_text()
    );
    collector.start();
    assert_eq!(
        agent.wait(Duration::from_secs(120)),
        0,
        "{}",
        agent.log_text()
    );
    assert_exactly_once(&collector.stored_reports(&ops), &expected);
}

/// Polls the collector's `voqa_ingest_reports_total` (this incarnation's count).
fn ingested(collector: &Collector, ops: &str) -> u64 {
    e2e::http_get(collector.port, "/metrics", Some(ops))
        .and_then(|(_, body)| {
            body.lines()
                .find_map(|l| l.strip_prefix("voqa_ingest_reports_total "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .map_or(0, |v| v as u64)
}

fn collector_and_agent_killed_mid_stream_lose_nothing_and_store_nothing_twice() {
    let (dir, capture) = setup(100, 60);
    let mut collector = Collector::sqlite("");
    let agent_token = collector.agent_token(AGENT_ID);
    let ops = collector.token("ops");
    secret_file(dir.path(), "token", &agent_token);
    let config = agent_config(dir.path(), &[collector.url()], "");
    let expected = produced(dir.path(), &config, &capture);
    let step = expected.len() as u64 / 6;
    collector.start();

    let mut agent = AgentProcess::spawn(
        &replay_args(&config, &capture),
        dir.path().join("agent.log"),
    );
    // Collector killed twice mid-stream, restarted on the same port and file.
    for round in 0..2 {
        e2e::wait_until(
            &format!("ingest progress before kill {round}"),
            Duration::from_secs(120),
            || ingested(&collector, &ops) >= step,
        );
        collector.kill();
        std::thread::sleep(Duration::from_millis(300));
        collector.start();
    }
    // Then the agent, mid-stream: its spool keeps what was not acknowledged.
    e2e::wait_until(
        "ingest progress before the agent's kill",
        Duration::from_secs(120),
        || ingested(&collector, &ops) >= step,
    );
    agent.kill9();
    let stored_at_kill = collector.stored_reports(&ops).len();
    assert!(
        stored_at_kill < expected.len(),
        "everything was stored before the agent's kill"
    );
    let mut agent = AgentProcess::spawn(
        &replay_args(&config, &capture),
        dir.path().join("agent2.log"),
    );
    assert_eq!(
        agent.wait(Duration::from_secs(180)),
        0,
        "{}",
        agent.log_text()
    );
    assert_exactly_once(&collector.stored_reports(&ops), &expected);
}

fn a_network_that_stalls_resets_and_cuts_mid_body_loses_and_duplicates_nothing() {
    use support::faultproxy::{Fault, FaultProxy};
    // Enough data (about 0.4 MB of gzip) for the fault rotation below to come round twice.
    let (dir, capture) = setup(100, 120);
    let mut collector = Collector::sqlite("");
    let agent_token = collector.agent_token(AGENT_ID);
    let ops = collector.token("ops");
    secret_file(dir.path(), "token", &agent_token);
    collector.start();
    let proxy = FaultProxy::start(collector.addr()).expect("proxy");
    // The shipper keeps its connection alive, so faults are per connection and strike after
    // a few batches went through it: every connection ends in one of them, in this rotation.
    proxy.set_repeating(vec![
        Fault::Refuse,
        Fault::CutAfter(30_000),
        Fault::ResetAfter(20_000),
        Fault::CutResponseAfter(400),
        Fault::Stall(Duration::from_secs(3)),
        Fault::CutAfter(9_000),
        Fault::CutResponseAfter(150),
        Fault::ResetAfter(45_000),
    ]);
    let config = agent_config(dir.path(), &[format!("http://{}", proxy.addr())], "");
    let expected = produced(dir.path(), &config, &capture);
    let mut agent = AgentProcess::spawn(
        &replay_args(&config, &capture),
        dir.path().join("agent.log"),
    );
    assert_eq!(
        agent.wait(Duration::from_secs(180)),
        0,
        "{}",
        agent.log_text()
    );
    let stats = proxy.stats();
    eprintln!("{stats:?}");
    assert!(
        stats.refuse >= 1
            && stats.cut_after >= 2
            && stats.reset_after >= 2
            && stats.cut_response_after >= 2
            && stats.stall >= 1,
        "not every fault was exercised: {stats:?}"
    );
    assert_exactly_once(&collector.stored_reports(&ops), &expected);
}

fn a_refused_token_keeps_the_data_and_sighup_with_the_right_one_delivers_it() {
    let (dir, capture) = setup(10, 30);
    let mut collector = Collector::sqlite("");
    let agent_token = collector.agent_token(AGENT_ID);
    let ops = collector.token("ops");
    secret_file(dir.path(), "token", "not-the-token");
    collector.start();
    let config = agent_config(dir.path(), &[collector.url()], "");
    let expected = produced(dir.path(), &config, &capture);
    let mut agent = AgentProcess::spawn(
        &replay_args(&config, &capture),
        dir.path().join("agent.log"),
    );
    e2e::wait_until(
        "the agent to report the refused token",
        Duration::from_secs(60),
        || agent.log_text().contains("REFUSED THE TOKEN"),
    );
    assert!(agent.log_text().contains("401"), "{}", agent.log_text());
    assert!(collector.stored_reports(&ops).is_empty());
    secret_file(dir.path(), "token", &agent_token);
    agent.signal(1); // SIGHUP
    assert_eq!(
        agent.wait(Duration::from_secs(120)),
        0,
        "{}",
        agent.log_text()
    );
    assert_exactly_once(&collector.stored_reports(&ops), &expected);
    // Replaying the same file again stores nothing twice.
    let mut again = AgentProcess::spawn(
        &replay_args(&config, &capture),
        dir.path().join("again.log"),
    );
    assert_eq!(
        again.wait(Duration::from_secs(120)),
        0,
        "{}",
        again.log_text()
    );
    assert_exactly_once(&collector.stored_reports(&ops), &expected);
}

/// Segment files of a spool directory, oldest first.
fn segments(spool: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(spool)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "seg"));
    v.sort();
    v
}

/// The stream-report record id a spool payload holds, if it holds one.
fn payload_report_id(payload: &[u8]) -> Option<String> {
    let p = voqa_agent::ship::record::decode(payload).ok()?;
    if p.kind != voqa_agent::ship::record::KIND_STREAM {
        return None;
    }
    let r: voqa_wire::StreamReport = serde_json::from_slice(p.json).ok()?;
    Some(r.record_id())
}

/// Runs the replay with the collector down until it gives up (exit 2): the spool keeps it all.
fn spool_everything(dir: &Path, config: &Path, capture: &Path) -> String {
    let mut args = replay_args(config, capture);
    args.extend(["--give-up-after".into(), "2".into()]);
    let mut agent = AgentProcess::spawn(&args, dir.join("agent-spool.log"));
    assert_eq!(
        agent.wait(Duration::from_secs(120)),
        2,
        "{}",
        agent.log_text()
    );
    let log = agent.log_text();
    assert!(
        log.contains("gave up") && log.contains("--spool-dir"),
        "{log}"
    );
    log
}

/// Delivers what the spool holds (`replay` without files) and returns the agent's log.
fn deliver_spool(dir: &Path, config: &Path) -> String {
    let args: Vec<String> = vec![
        "replay".into(),
        "--config".into(),
        config.display().to_string(),
    ];
    let mut agent = AgentProcess::spawn(&args, dir.join("agent-deliver.log"));
    assert_eq!(
        agent.wait(Duration::from_secs(120)),
        0,
        "{}",
        agent.log_text()
    );
    agent.log_text()
}

fn a_torn_and_a_bit_flipped_spool_record_are_cut_and_counted_and_the_rest_delivered() {
    let (dir, capture) = setup(10, 60);
    let mut collector = Collector::sqlite("");
    let agent_token = collector.agent_token(AGENT_ID);
    let ops = collector.token("ops");
    secret_file(dir.path(), "token", &agent_token);
    let config = agent_config(dir.path(), &[collector.url()], "");
    let expected = produced(dir.path(), &config, &capture);
    spool_everything(dir.path(), &config, &capture);

    let segs = segments(&dir.path().join("spool"));
    assert_eq!(segs.len(), 1, "one segment holds this capture: {segs:?}");
    let mut bytes = std::fs::read(&segs[0]).expect("read segment");
    let decoded = voqa_agent::ship::spool::decode_segment(&bytes);
    let reports: Vec<(std::ops::Range<usize>, String)> = decoded
        .records
        .iter()
        .filter_map(|r| payload_report_id(&bytes[r.clone()]).map(|id| (r.clone(), id)))
        .collect();
    assert!(
        reports.len() > 500,
        "{} reports in the spool",
        reports.len()
    );
    // A flipped bit in the middle of a record half way through the file …
    let (flipped, flipped_id) = reports[reports.len() / 2].clone();
    bytes[flipped.start + flipped.len() / 2] ^= 0x10;
    // … and the file cut in the middle of its last record, as a crash mid-write leaves it.
    let last = decoded.records.last().expect("records").clone();
    let torn_id = payload_report_id(&bytes[last.clone()]);
    bytes.truncate(last.start + last.len() / 2);
    std::fs::write(&segs[0], &bytes).expect("write damaged segment");

    collector.start();
    let log = deliver_spool(dir.path(), &config);
    assert!(
        log.contains("1 corrupt record(s) skipped") || log.contains("2 corrupt record(s) skipped"),
        "{log}"
    );
    assert!(log.contains("1 torn tail(s) cut"), "{log}");
    let mut lost: Vec<String> = vec![flipped_id];
    lost.extend(torn_id);
    let survivors: Vec<String> = expected
        .iter()
        .filter(|id| !lost.contains(id))
        .cloned()
        .collect();
    assert_eq!(survivors.len() + lost.len(), expected.len());
    assert_exactly_once(&collector.stored_reports(&ops), &survivors);
}

fn a_full_spool_drops_the_oldest_counts_them_and_delivers_the_rest() {
    let (dir, capture) = setup(100, 300);
    let mut collector = Collector::sqlite("");
    let agent_token = collector.agent_token(AGENT_ID);
    let ops = collector.token("ops");
    secret_file(dir.path(), "token", &agent_token);
    // The smallest cap the config accepts: 16 MiB, under what this capture produces.
    let config = agent_config(dir.path(), &[collector.url()], "spool_max_bytes = 16777216");
    let out = dir.path().join("order.jsonl");
    let mut args = replay_args(&config, &capture);
    args.extend(["--sink".into(), format!("file:{}", out.display())]);
    assert_eq!(
        AgentProcess::spawn(&args, dir.path().join("order.log")).wait(Duration::from_secs(120)),
        0
    );
    // Production order of the reports (the spool drops from the front of it).
    let order: Vec<String> = std::fs::read_to_string(&out)
        .expect("sink file")
        .lines()
        .filter_map(
            |l| match serde_json::from_str::<voqa_wire::AgentRecord>(l) {
                Ok(voqa_wire::AgentRecord::Stream(r)) => Some(r.record_id()),
                _ => None,
            },
        )
        .collect();
    let spool_log = spool_everything(dir.path(), &config, &capture);
    assert!(
        !spool_log.contains("dropped by the spool cap: 0,"),
        "{spool_log}"
    );

    collector.start();
    let log = deliver_spool(dir.path(), &config);
    let stored = collector.stored_reports(&ops);
    assert!(stored.values().all(|n| *n == 1), "a report stored twice");
    let missing = order
        .iter()
        .take_while(|id| !stored.contains_key(*id))
        .count();
    assert!(
        missing > 0 && missing < order.len(),
        "{missing} of {} dropped",
        order.len()
    );
    // Exactly the oldest were dropped: everything after the first delivered one arrived.
    assert_exactly_once(&stored, &{
        let mut rest: Vec<String> = order[missing..].to_vec();
        rest.sort();
        rest
    });
    let dropped: u64 = log
        .split("dropped by the spool cap: ")
        .nth(1)
        .and_then(|t| t.split([',', ')']).next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no drop count in: {log}"));
    assert!(
        dropped >= missing as u64,
        "{dropped} counted, {missing} reports missing"
    );
}

/// The SLA answer without what legitimately differs between two evaluations (their times).
fn sla(collector: &Collector, token: &str) -> serde_json::Value {
    let (status, body) = e2e::http_get(
        collector.port,
        "/api/v1/customers/e2e/sla?from=2026-11-23T08:00:00Z&to=2026-11-23T09:00:00Z",
        Some(token),
    )
    .expect("GET sla");
    assert_eq!(status, 200, "{body}");
    let mut v: serde_json::Value = serde_json::from_str(&body).expect("json");
    if let Some(o) = v.as_object_mut() {
        for k in ["evaluated_at", "generated_at", "evaluated_until", "now"] {
            o.remove(k);
        }
    }
    v
}

fn two_collector_replicas_on_one_postgres_one_killed_mid_run_store_everything_once() {
    const TEST: &str =
        "two_collector_replicas_on_one_postgres_one_killed_mid_run_store_everything_once";
    let Some(database) = support::harness::fresh_postgres(TEST) else {
        return;
    };
    let (dir, capture) = setup(100, 60);
    let customer = format!(
        "[[customers]]\nid = \"e2e\"\nname = \"E2E\"\nagents = [\"{AGENT_ID}\"]\n\n\
         [customers.commitments]\nmos_min = 4.0\ncalls_meeting_pct = 95.0\nloss_max_pct = 1.0\n\
         jitter_p95_max_ms = 30.0\nuptime_min_pct = 99.0\n"
    );
    let mut a = Collector::with_database(
        tempfile::tempdir().expect("tmp"),
        database.clone(),
        &customer,
    );
    let mut b = Collector::with_database(tempfile::tempdir().expect("tmp"), database, &customer);
    let agent_token = a.agent_token(AGENT_ID);
    let ops = a.token("ops");
    secret_file(dir.path(), "token", &agent_token);
    a.start();
    b.start();
    let config = agent_config(dir.path(), &[a.url(), b.url()], "");
    let expected = produced(dir.path(), &config, &capture);
    let step = expected.len() as u64 / 3;

    let mut agent = AgentProcess::spawn(
        &replay_args(&config, &capture),
        dir.path().join("agent.log"),
    );
    e2e::wait_until(
        "ingest through the first replica",
        Duration::from_secs(120),
        || ingested(&a, &ops) >= step,
    );
    a.kill();
    assert_eq!(
        agent.wait(Duration::from_secs(180)),
        0,
        "{}",
        agent.log_text()
    );
    assert!(
        ingested(&b, &ops) > 0,
        "the agent never failed over to the second replica"
    );
    assert_exactly_once(&b.stored_reports(&ops), &expected);
    // The killed replica comes back and answers the same from the shared store.
    a.start();
    assert_exactly_once(&a.stored_reports(&ops), &expected);
    let (sla_a, sla_b) = (sla(&a, &ops), sla(&b, &ops));
    assert_eq!(sla_a["calls"], 100, "{sla_a}");
    assert_eq!(
        sla_a["commitments"].as_array().map(Vec::len),
        Some(4),
        "{sla_a}"
    );
    assert_eq!(sla_a, sla_b, "the replicas disagree on the SLA");
    a.kill();
    b.kill();
    drop_postgres(&b.database);
}

fn drop_postgres(url: &str) {
    if let Some(name) = url.rsplit('/').next() {
        let _ = std::process::Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
            .arg(format!("DROP DATABASE IF EXISTS {name}"))
            .output();
    }
}

fn over_https_with_a_private_ca_everything_arrives_once_and_an_untrusted_cert_is_refused() {
    let (dir, capture) = setup(10, 30);
    // A private CA and a collector certificate for 127.0.0.1 and localhost.
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "voqa test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let key = rcgen::KeyPair::generate().expect("key");
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("params");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).expect("cert");
    let pem = |name: &str, text: String| secret_file(dir.path(), name, &text);
    let ca_file = pem("ca.pem", ca.pem());
    let cert_file = pem("collector.pem", cert.pem());
    let key_file = pem("collector.key", key.serialize_pem());

    let mut collector = Collector::sqlite("");
    let agent_token = collector.agent_token(AGENT_ID);
    let ops = collector.token("ops");
    secret_file(dir.path(), "token", &agent_token);
    collector.extra_args = vec![
        "--tls-cert".into(),
        cert_file.display().to_string(),
        "--tls-key".into(),
        key_file.display().to_string(),
    ];
    collector.start();
    let url = format!("https://localhost:{}", collector.port);

    // Without the CA the certificate is not trusted: nothing is sent, the agent says why.
    let untrusted = agent_config(dir.path(), std::slice::from_ref(&url), "");
    let mut args = replay_args(&untrusted, &capture);
    args.extend(["--give-up-after".into(), "2".into()]);
    let mut agent = AgentProcess::spawn(&args, dir.path().join("untrusted.log"));
    assert_eq!(
        agent.wait(Duration::from_secs(60)),
        2,
        "{}",
        agent.log_text()
    );
    assert!(
        agent.log_text().to_lowercase().contains("certificate"),
        "{}",
        agent.log_text()
    );
    std::fs::remove_dir_all(dir.path().join("spool")).expect("fresh spool");

    let config = agent_config(
        dir.path(),
        &[url],
        &format!("ca_file = {:?}", ca_file.display().to_string()),
    );
    let expected = produced(dir.path(), &config, &capture);
    let mut agent = AgentProcess::spawn(
        &replay_args(&config, &capture),
        dir.path().join("agent.log"),
    );
    assert_eq!(
        agent.wait(Duration::from_secs(120)),
        0,
        "{}",
        agent.log_text()
    );
    // Read back over plain HTTP: the same store, served without TLS.
    collector.kill();
    collector.extra_args.clear();
    collector.start();
    assert_exactly_once(&collector.stored_reports(&ops), &expected);
}

/// Root, for live capture on loopback; otherwise the test is reported as ignored (a failure
/// under `VOQA_REQUIRE_LIVE`, as in CI).
fn can_capture(test: &str) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if root {
        return true;
    }
    support::harness::skip(
        "VOQA_REQUIRE_LIVE",
        &format!("{test}: live capture needs root"),
    );
    false
}

fn live_run_on_loopback_ships_every_window_and_its_final_report_on_sigterm() {
    const TEST: &str = "live_run_on_loopback_ships_every_window_and_its_final_report_on_sigterm";
    if !can_capture(TEST) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut collector = Collector::sqlite("");
    let agent_token = collector.agent_token(AGENT_ID);
    let ops = collector.token("ops");
    secret_file(dir.path(), "token", &agent_token);
    collector.start();
    let config = agent_config(dir.path(), &[collector.url()], "");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(
        "\n[capture]\ninterfaces = [\"lo\"]\nworkers = 1\nretire_timeout_ms = 50\n\n\
         [analysis]\ninterval_s = 1\n\n[health]\nheartbeat_interval_s = 1\n\n[metrics]\nlisten = \"\"\n",
    );
    std::fs::write(&config, text).expect("config");
    let args: Vec<String> = vec![
        "run".into(),
        "--config".into(),
        config.display().to_string(),
    ];
    let mut agent = AgentProcess::spawn(&args, dir.path().join("agent.log"));
    e2e::wait_until("the agent to capture", Duration::from_secs(30), || {
        agent.log_text().contains("capturing on")
    });

    // Two RTP streams on loopback, 150 packets each at 50 packets/s, to bound UDP sockets.
    let receivers: Vec<std::net::UdpSocket> = (0..2)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    const PACKETS: u16 = 150;
    for seq in 0..PACKETS {
        for (k, rx) in receivers.iter().enumerate() {
            let mut pkt = vec![0x80, 0x00];
            pkt.extend_from_slice(&seq.to_be_bytes());
            pkt.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            pkt.extend_from_slice(&(0x7e57_0000u32 + k as u32).to_be_bytes());
            pkt.extend_from_slice(&[0xd5; 160]);
            sender
                .send_to(&pkt, rx.local_addr().expect("addr"))
                .expect("send");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    agent.signal(15); // SIGTERM: final reports, delivered within the shutdown grace
    assert_eq!(
        agent.wait(Duration::from_secs(60)),
        0,
        "{}",
        agent.log_text()
    );
    assert!(
        agent.log_text().contains("every record delivered"),
        "{}",
        agent.log_text()
    );

    let (status, body) = e2e::http_get(
        collector.port,
        &format!(
            "/api/v1/streams?from={}&to={}&limit=1000",
            voqa_wire::Timestamp::from_ns(now_ns() - 86_400_000_000_000),
            voqa_wire::Timestamp::from_ns(now_ns() + 86_400_000_000_000)
        ),
        Some(&ops),
    )
    .expect("GET streams");
    assert_eq!(status, 200, "{body}");
    let items: Vec<voqa_wire::StreamReport> = serde_json::from_value(
        serde_json::from_str::<serde_json::Value>(&body).expect("json")["items"].clone(),
    )
    .expect("reports");
    let mut ids: Vec<String> = items
        .iter()
        .map(voqa_wire::StreamReport::record_id)
        .collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "a report stored twice");
    let finals: Vec<&voqa_wire::StreamReport> = items.iter().filter(|r| r.is_final).collect();
    assert_eq!(finals.len(), 2, "one final report per stream: {ids:?}");
    for f in &finals {
        let totals = f.totals.as_ref().expect("totals");
        assert_eq!(totals.packets, u64::from(PACKETS), "{totals:?}");
        assert_eq!(totals.lost, 0);
        // The windows of the stream tile it and add up to its totals.
        let mut tiles: Vec<(i64, i64, u64, bool)> = items
            .iter()
            .filter(|r| r.stream_id == f.stream_id)
            .map(|r| {
                (
                    r.window_start.as_ns(),
                    r.window_end.as_ns(),
                    r.packets,
                    r.is_final,
                )
            })
            .collect();
        tiles.sort_unstable();
        let windows: u64 = tiles.iter().map(|t| t.2).sum();
        assert_eq!(
            windows,
            totals.packets,
            "windows of {} (start, end, packets, final): {tiles:?}\nagent log:\n{}",
            f.stream_id,
            agent.log_text()
        );
    }
    // Heartbeats arrived, carrying the spool's counters.
    let (_, agents) = e2e::http_get(collector.port, "/api/v1/agents", Some(&ops)).expect("agents");
    assert!(agents.contains("\"shipping\""), "{agents}");
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
