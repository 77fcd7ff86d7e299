//! Monthly reports mailed to customers (issue 14 item 6), through the `voqa-collector` binary
//! into an SMTP server of the test's own (aiosmtpd, `support/smtp_sink.py`), which parses each
//! message with Python's e-mail package and writes its parts to a directory.
//!
//! The month is last month of each customer's zone as of now: a month already past, so the
//! scheduler's catch-up sends it as soon as `serve` starts (no test-only clock). Checked:
//! each customer's report arrives once across a restart and with two replicas on the real
//! PostgreSQL; its attachment is that month's report (the page `report --format html` writes,
//! but for the generation time, and the SHA-256 of `report --format json` with the mailed
//! generation time); a server that refuses for a while gets the mail later, the failures
//! visible in the API (the error text to ops only); `report --send` refuses a month sent
//! already unless `--force`; STARTTLS with a test CA works, and without that CA nothing is sent.
//!
//! The same month posted to a customer's `report_webhook`, into a receiver of the test's own
//! on loopback that checks `X-Voqa-Signature` with the shared secret (HMAC-SHA-256 computed
//! here): each month arrives once across a restart and with two replicas; the body's `report`
//! is, byte for byte, `report --format json` (generation time aside) and hashes to its
//! `report_sha256`; a receiver answering 500 gets it later, the failures counted in
//! `voqa_report_sends_total` and visible in the API; e-mail and webhook of one month are
//! recorded and retried each on its own; an http:// URL off loopback or a missing secret is
//! refused at load and on SIGHUP.
//!
//! Needs python3 with aiosmtpd for the e-mail tests (skipped visibly without, failed under
//! `VOQA_REQUIRE_AIOSMTPD`) and, for the replicas, PostgreSQL at 127.0.0.1:5432
//! (`VOQA_REQUIRE_POSTGRES`). Every wait polls with a deadline.

#[path = "support/collector_proc.rs"]
mod collector_proc;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};

use serde_json::Value;
use sha2::{Digest, Sha256};
use voqa_collector::store::Store;
use voqa_wire::fixtures;
use voqa_wire::{StreamReport, Timestamp};

use collector_proc::{Served, get_json, wait_until};
use smtp_sink::Sink;

fn main() {
    harness::main(
        file!(),
        vec![
            harness::trial(
                "each_month_once_across_a_restart_and_the_attachment_is_that_months_report",
                each_month_once_across_a_restart_and_the_attachment_is_that_months_report,
            ),
            harness::trial(
                "two_replicas_on_postgres_send_each_month_once",
                two_replicas_on_postgres_send_each_month_once,
            ),
            harness::trial(
                "a_refusing_server_gets_the_mail_later_and_the_command_line_sends_on_demand",
                a_refusing_server_gets_the_mail_later_and_the_command_line_sends_on_demand,
            ),
            harness::trial(
                "starttls_with_a_test_ca_and_nothing_without_it",
                starttls_with_a_test_ca_and_nothing_without_it,
            ),
            harness::trial(
                "the_pdf_is_mailed_when_chromium_is_installed",
                the_pdf_is_mailed_when_chromium_is_installed,
            ),
            harness::trial(
                "the_webhook_gets_each_month_once_signed_across_a_restart",
                the_webhook_gets_each_month_once_signed_across_a_restart,
            ),
            harness::trial(
                "a_webhook_answering_500_gets_the_report_later_and_metrics_count_the_failures",
                a_webhook_answering_500_gets_the_report_later_and_metrics_count_the_failures,
            ),
            harness::trial(
                "two_replicas_on_postgres_post_each_month_once",
                two_replicas_on_postgres_post_each_month_once,
            ),
            harness::trial(
                "email_and_webhook_of_a_month_are_sent_and_retried_each_on_its_own",
                email_and_webhook_of_a_month_are_sent_and_retried_each_on_its_own,
            ),
            harness::trial(
                "a_webhook_in_clear_text_or_without_its_secret_is_refused_at_load_and_on_sighup",
                a_webhook_in_clear_text_or_without_its_secret_is_refused_at_load_and_on_sighup,
            ),
        ],
    )
}

const SECOND: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * SECOND;

/// The customers: acme in Berlin (two recipients), beta in New York, gamma not mailed.
const CUSTOMERS: &[(&str, &str, &str, &str)] = &[
    (
        "acme",
        "fra-media-1",
        "Europe/Berlin",
        r#"["noc@acme.example", "CFO <cfo@acme.example>"]"#,
    ),
    (
        "beta",
        "nyc-media-1",
        "America/New_York",
        r#"["ops@beta.example"]"#,
    ),
    ("gamma", "sfo-media-1", "UTC", "[]"),
];

fn config_text(smtp: &str) -> String {
    let mut text = String::from(
        "report_check_interval_s = 1\nreport_retry_min_s = 1\nreport_retry_max_s = 2\n\
         report_mail_format = \"html\"\n",
    );
    text.push_str(smtp);
    for (id, agent, zone, recipients) in CUSTOMERS {
        text.push_str(&format!(
            "\n[[customers]]\nid = \"{id}\"\nname = \"{id} Ltd\"\nagents = [\"{agent}\"]\n\
             time_zone = \"{zone}\"\nreport_recipients = {recipients}\n\
             [customers.commitments]\nmos_min = 4.0\ncalls_meeting_pct = 80.0\n\
             loss_max_pct = 1.0\njitter_p95_max_ms = 30.0\nuptime_min_pct = 99.0\n\
             heartbeat_interval_s = 3600\n"
        ));
    }
    text
}

fn plain_smtp(port: u16) -> String {
    format!(
        "[alerts.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
         from = \"voqa <voqa@example.net>\"\ntimeout_s = 10\n"
    )
}

/// Last month in `zone` an hour ago (the month whose report is due now), as (label, first day).
fn due_month(zone: &str) -> (String, jiff::civil::Date) {
    let tz = jiff::tz::TimeZone::get(zone).expect("zone");
    let an_hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let first = an_hour_ago
        .to_zoned(tz)
        .date()
        .first_of_month()
        .yesterday()
        .expect("a month")
        .first_of_month();
    (format!("{:04}-{:02}", first.year(), first.month()), first)
}

/// Noon UTC on day `day` of the month starting `first` (inside the month in every zone).
fn day_noon(first: jiff::civil::Date, day: i8) -> i64 {
    let date = jiff::civil::date(first.year(), first.month(), day);
    let ts = date
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("zoned")
        .timestamp()
        + jiff::SignedDuration::from_hours(12);
    i64::try_from(ts.as_nanosecond()).expect("ns")
}

/// One call's one final report: MOS 4.3, or 3.5 with 2 % loss for a bad one.
fn report(agent: &str, n: u32, start_ns: i64, bad: bool) -> StreamReport {
    let start = Timestamp::from_ns(start_ns);
    let end = start.saturating_add_ns(45 * SECOND);
    let (stream, call) = (format!("{n:016x}"), format!("{agent}-call-{n}"));
    let mos = if bad { 3.5 } else { 4.3 };
    let report = fixtures::final_report(agent, &stream, &call, start, end, 2250, mos);
    if bad {
        fixtures::with_loss(report, 45)
    } else {
        report
    }
}

/// Each customer's due month gets ten calls on its 10th (every fifth one bad: acme's
/// 20 % of calls below MOS 4 against 80 % required is met exactly) and hourly heartbeats from
/// the 9th to the 12th, written through the library before any collector serves the store.
async fn store_fixture(url: &str) {
    let store = Store::open(url).await.expect("open store");
    for (c, (id, agent, zone, _)) in CUSTOMERS.iter().enumerate() {
        let (_, first) = due_month(zone);
        let noon = day_noon(first, 10);
        let reports = (0..10u32)
            .map(|n| report(agent, n, noon + i64::from(n) * 60 * SECOND, n % 5 == 0))
            .collect();
        let heartbeats = (0..96)
            .map(|h| day_noon(first, 9) - 12 * HOUR + h * HOUR)
            .map(|t| fixtures::heartbeat(agent, Timestamp::from_ns(t)))
            .collect();
        let batch = fixtures::batch(c as u64, agent, reports, heartbeats);
        let outcome = store.ingest(&batch, noon).await.expect("ingest");
        assert_eq!(outcome.reports, 10, "{id}");
    }
    store.close().await;
}

/// The message whose subject names `customer`'s month.
fn message_for<'a>(messages: &'a [Value], customer: &str, period: &str) -> Vec<&'a Value> {
    let subject = format!("{customer} Ltd: SLA report {period}");
    messages
        .iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with(&subject))
        })
        .collect()
}

/// The text between `before` and the next `after` in `text`.
fn between<'a>(text: &'a str, before: &str, after: &str) -> &'a str {
    let start = text
        .find(before)
        .unwrap_or_else(|| panic!("{before:?} not in the text"))
        + before.len();
    let len = text[start..].find(after).expect("end marker");
    &text[start..start + len]
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs `voqa-collector --database URL --config CONFIG ARGS`.
fn cli(database: &str, config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(collector_proc::bin())
        .arg("--database")
        .arg(database)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run voqa-collector")
}

/// `report --customer CUSTOMER --period PERIOD --format FORMAT`: what it writes.
fn written_report(
    database: &str,
    config: &Path,
    customer: &str,
    period: &str,
    format: &str,
) -> String {
    let args = [
        "report",
        "--customer",
        customer,
        "--period",
        period,
        "--format",
        format,
    ];
    let out = cli(database, config, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// The mailed message of `customer` is its month's report: recipients, subject, the verdict
/// summary, and an attachment that is the page `report --format html` writes for that month
/// (generation time and hash aside), whose printed hash is the SHA-256 of `report --format
/// json` with the mailed generation time.
fn check_message(message: &Value, customer: &str, period: &str, database: &str, config: &Path) {
    let recipients = CUSTOMERS
        .iter()
        .find(|c| c.0 == customer)
        .map(|c| c.3)
        .expect("customer");
    let rcpt: Vec<&str> = message["rcpt_tos"]
        .as_array()
        .expect("rcpt")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for to in &rcpt {
        assert!(recipients.contains(to), "{to} is not among {recipients}");
    }
    assert_eq!(rcpt.len(), recipients.matches('@').count(), "{rcpt:?}");
    assert_eq!(message["mail_from"], "voqa@example.net");
    let body = message["body"].as_str().expect("a text body");
    assert!(
        body.contains(&format!("SLA report of {customer} Ltd for {period}")),
        "{body}"
    );
    // 2 of 10 calls below MOS 4: 80 % meet it, as required; loss: the bad calls' 2 % is
    // above 1 % -> breached for every customer.
    assert!(body.contains("Overall verdict: BREACHED"), "{body}");
    assert!(body.contains("mos         met"), "{body}");
    assert!(body.contains("measured 80 %"), "{body}");
    assert!(body.contains("loss        BREACHED"), "{body}");
    assert!(body.contains("Calls: 10 (0 without a MOS)."), "{body}");
    let attachments = message["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{message}");
    let attachment = &attachments[0];
    assert_eq!(
        attachment["filename"],
        format!("voqa-{customer}-{period}.html")
    );
    assert_eq!(attachment["content_type"], "text/html");
    assert_eq!(attachment["charset"], "utf-8");
    let mailed = std::fs::read_to_string(attachment["file"].as_str().expect("file")).expect("read");
    let generated = between(&mailed, "<dt>Generated at</dt><dd>", "</dd>");
    let sha = between(
        &mailed,
        "<dt>SHA-256 of the JSON form</dt><dd><span class=\"mono\">",
        "</span>",
    );
    assert!(
        body.contains(&format!("Report JSON SHA-256: {sha}")),
        "{body}"
    );

    let json = written_report(database, config, customer, period, "json");
    let cli_generated = between(&json, "\"generated_at\":\"", "\"").to_owned();
    let as_mailed = json.replacen(
        &format!("\"generated_at\":\"{cli_generated}\""),
        &format!("\"generated_at\":\"{generated}\""),
        1,
    );
    assert_eq!(
        sha256_hex(as_mailed.as_bytes()),
        sha,
        "the attachment's hash is this month's JSON"
    );

    let html = written_report(database, config, customer, period, "html");
    let html_generated = between(&html, "<dt>Generated at</dt><dd>", "</dd>").to_owned();
    let html_sha = between(
        &html,
        "<dt>SHA-256 of the JSON form</dt><dd><span class=\"mono\">",
        "</span>",
    )
    .to_owned();
    let html = html
        .replace(&html_generated, generated)
        .replace(&html_sha, sha);
    assert!(
        html == mailed,
        "the attachment differs from `report --format html` beyond its generation time"
    );
}

/// Polls `sends` (the sends API, as `ops`) until its first item is seen between attempts:
/// failed, after at least two. That answer.
fn second_failure(sends: &dyn Fn(&str) -> (u16, Value), ops: &str) -> Value {
    let mut body = Value::Null;
    wait_until("a second failed attempt", Duration::from_secs(60), || {
        let (status, answer) = sends(ops);
        assert_eq!(status, 200, "{answer}");
        body = answer;
        body["items"][0]["attempts"].as_i64().unwrap_or(0) >= 2
            && body["items"][0]["state"] == "failed"
    });
    body
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn each_month_once_across_a_restart_and_the_attachment_is_that_months_report() {
    let dir = tempfile::tempdir().expect("dir");
    let Some(sink) = Sink::start(dir.path(), None, None) else {
        return;
    };
    let db = dir.path().join("voqa.db");
    let url = format!("sqlite:{}", db.display());
    runtime().block_on(store_fixture(&url));
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, config_text(&plain_smtp(sink.port))).expect("config");

    let ops = collector_proc::token(&db, &config, &["ops"]);
    let first = Served::start(&db, &config, &dir.path().join("serve1.log"));
    let messages = sink.wait_for(2, Duration::from_secs(60));
    // Stopped once both sends are on record (a kill between the server's acceptance and the
    // record would leave the month `sending`: sent again only when its claim's lease ends).
    wait_until(
        "both months recorded as sent",
        Duration::from_secs(30),
        || {
            ["acme", "beta"].iter().all(|c| {
                let (_, body) = runtime().block_on(get_json(
                    &first.base(),
                    &format!("/api/v1/customers/{c}/report/sends"),
                    &ops,
                ));
                body["items"][0]["state"] == "sent"
            })
        },
    );
    drop(first);
    // A restart: the months are recorded as sent, nothing goes out again.
    let second = Served::start(&db, &config, &dir.path().join("serve2.log"));
    let log = second.log.clone();
    // What is checked is that nothing happens: three cycles (1 s each) are given the chance.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        sink.messages().len(),
        2,
        "one message per customer and month"
    );
    assert!(
        !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("mailed"),
        "resent after a restart"
    );

    for (customer, _, zone, _) in &CUSTOMERS[..2] {
        let (period, _) = due_month(zone);
        let mine = message_for(&messages, customer, &period);
        assert_eq!(mine.len(), 1, "{customer} {period}: {messages:?}");
        check_message(mine[0], customer, &period, &url, &config);
        let (status, sends) = runtime().block_on(get_json(
            &second.base(),
            &format!("/api/v1/customers/{customer}/report/sends"),
            &ops,
        ));
        assert_eq!(status, 200, "{sends}");
        let items = sends["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{sends}");
        assert_eq!(items[0]["period"], period.as_str());
        assert_eq!(items[0]["state"], "sent");
        assert_eq!(items[0]["attempts"], 1);
        assert_eq!(
            items[0]["attachment"],
            format!("voqa-{customer}-{period}.html")
        );
        assert!(
            items[0]["sent_at"].is_string() && items[0]["next_attempt"].is_null(),
            "{sends}"
        );
    }
    // gamma has no recipients: nothing recorded.
    let (status, sends) = runtime().block_on(get_json(
        &second.base(),
        "/api/v1/customers/gamma/report/sends",
        &ops,
    ));
    assert_eq!(
        (status, sends["items"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{sends}"
    );
}

fn two_replicas_on_postgres_send_each_month_once() {
    let Some(url) = harness::fresh_postgres("two_replicas_on_postgres_send_each_month_once") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let Some(sink) = Sink::start(dir.path(), None, None) else {
        return;
    };
    runtime().block_on(store_fixture(&url));
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, config_text(&plain_smtp(sink.port))).expect("config");
    let a = Served::start_url(&url, &config, &dir.path().join("a.log"));
    let b = Served::start_url(&url, &config, &dir.path().join("b.log"));
    let messages = sink.wait_for(2, Duration::from_secs(60));
    // Nothing more may happen: three more cycles of each replica get the chance.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(sink.messages().len(), 2, "each month once: {messages:?}");
    let mailed =
        a.log_text().matches("mailed to").count() + b.log_text().matches("mailed to").count();
    assert_eq!(mailed, 2, "A:\n{}\nB:\n{}", a.log_text(), b.log_text());
    for (customer, _, zone, _) in &CUSTOMERS[..2] {
        let (period, _) = due_month(zone);
        let mine = message_for(&messages, customer, &period);
        assert_eq!(mine.len(), 1, "{customer} {period}");
        check_message(mine[0], customer, &period, &url, &config);
    }
}

fn a_refusing_server_gets_the_mail_later_and_the_command_line_sends_on_demand() {
    let dir = tempfile::tempdir().expect("dir");
    let refuse = dir.path().join("refuse");
    std::fs::write(&refuse, "").expect("refuse file");
    let Some(sink) = Sink::start(dir.path(), Some(&refuse), None) else {
        return;
    };
    let db = dir.path().join("voqa.db");
    let url = format!("sqlite:{}", db.display());
    runtime().block_on(store_fixture(&url));
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, config_text(&plain_smtp(sink.port))).expect("config");
    let ops = collector_proc::token(&db, &config, &["ops"]);
    let acme = collector_proc::token(&db, &config, &["customer:acme"]);
    let beta = collector_proc::token(&db, &config, &["customer:beta"]);
    let served = Served::start(&db, &config, &dir.path().join("serve.log"));
    let sends = |token: &str| {
        runtime().block_on(get_json(
            &served.base(),
            "/api/v1/customers/acme/report/sends",
            token,
        ))
    };
    let body = second_failure(&sends, &ops);
    let item = &body["items"][0];
    assert!(
        item["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("451") && e.contains("try again later")),
        "ops see the server's answer: {body}"
    );
    assert!(
        item["next_attempt"].is_string() && item["sent_at"].is_null(),
        "{body}"
    );
    let (status, body) = sends(&acme);
    assert_eq!(status, 200);
    assert_eq!(
        body["items"][0]["last_error"], "the last attempt failed; the operator has the details",
        "a customer does not see the relay's error"
    );
    assert_eq!(sends(&beta).0, 403, "another customer's token");
    assert!(sink.messages().is_empty());

    // The server accepts again: the retry (at most report_retry_max_s later) delivers.
    std::fs::remove_file(&refuse).expect("accept");
    let messages = sink.wait_for(2, Duration::from_secs(30));
    let (_, body) = sends(&ops);
    let item = &body["items"][0];
    assert_eq!(item["state"], "sent", "{body}");
    assert!(item["attempts"].as_i64().unwrap_or(0) >= 3, "{body}");
    assert!(item["last_error"].is_null(), "{body}");
    let (period, _) = due_month("Europe/Berlin");
    let mine = message_for(&messages, "acme", &period);
    assert_eq!(mine.len(), 1);
    check_message(mine[0], "acme", &period, &url, &config);
    drop(served);

    // On demand: a month sent already is refused, unless forced; then it goes out again.
    let again = cli(
        &url,
        &config,
        &[
            "report",
            "--send",
            "--customer",
            "acme",
            "--period",
            &period,
        ],
    );
    assert_eq!(again.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("was sent already at") && stderr.contains("--force"),
        "{stderr}"
    );
    let forced = cli(
        &url,
        &config,
        &[
            "report",
            "--send",
            "--customer",
            "acme",
            "--period",
            &period,
            "--force",
        ],
    );
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let stdout = String::from_utf8_lossy(&forced.stdout);
    assert!(
        stdout.contains(&format!("voqa-acme-{period}.html")),
        "{stdout}"
    );
    let messages = sink.wait_for(3, Duration::from_secs(10));
    assert_eq!(message_for(&messages, "acme", &period).len(), 2);
    // An older month never mailed: sent now, and recorded.
    let older = cli(
        &url,
        &config,
        &[
            "report",
            "--send",
            "--customer",
            "beta",
            "--period",
            "2026-01",
        ],
    );
    assert!(
        older.status.success(),
        "{}",
        String::from_utf8_lossy(&older.stderr)
    );
    let messages = sink.wait_for(4, Duration::from_secs(10));
    assert_eq!(message_for(&messages, "beta", "2026-01").len(), 1);
    let gamma = cli(&url, &config, &["report", "--send", "--customer", "gamma"]);
    assert_eq!(gamma.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&gamma.stderr).contains("no report_recipients"));
}

/// STARTTLS to a relay whose certificate a test CA signed, with a login whose password comes
/// from `password_file`.
fn starttls_with_a_test_ca_and_nothing_without_it() {
    let dir = tempfile::tempdir().expect("dir");
    // A test CA and a certificate it signs for localhost.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "voqa test CA");
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    let (ca_pem, cert_pem, key_pem) = (
        dir.path().join("ca.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    );
    std::fs::write(&ca_pem, ca_cert.pem()).expect("ca");
    std::fs::write(&cert_pem, leaf.pem()).expect("cert");
    std::fs::write(&key_pem, leaf_key.serialize_pem()).expect("key");
    // The relay also wants a login; the password file ends with a newline, as an editor
    // writes it.
    let Some(sink) = Sink::start_with(
        dir.path(),
        None,
        Some((&cert_pem, &key_pem)),
        Some("voqa:s3cret pass"),
    ) else {
        return;
    };
    let password = dir.path().join("smtp.password");
    std::fs::write(&password, "s3cret pass\n").expect("password");
    let db = dir.path().join("voqa.db");
    let url = format!("sqlite:{}", db.display());
    runtime().block_on(store_fixture(&url));
    let starttls = |ca: Option<&Path>| {
        format!(
            "[alerts.smtp]\nhost = \"localhost\"\nport = {}\ntls = \"starttls\"\n\
             from = \"voqa <voqa@example.net>\"\ntimeout_s = 10\nusername = \"voqa\"\n\
             password_file = \"{}\"\n{}",
            sink.port,
            password.display(),
            ca.map_or(String::new(), |p| format!(
                "ca_file = \"{}\"\n",
                p.display()
            ))
        )
    };
    // Without the CA (the system's roots only) the server is not trusted: nothing is sent,
    // and the failure is recorded.
    let untrusted = dir.path().join("untrusted.toml");
    std::fs::write(&untrusted, config_text(&starttls(None))).expect("config");
    let out = cli(
        &url,
        &untrusted,
        &["report", "--send", "--customer", "beta"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("was not sent") && stderr.to_lowercase().contains("certificate"),
        "{stderr}"
    );
    // With it: sent over TLS.
    let trusted = dir.path().join("trusted.toml");
    std::fs::write(&trusted, config_text(&starttls(Some(&ca_pem)))).expect("config");
    let out = cli(&url, &trusted, &["report", "--send", "--customer", "acme"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages = sink.wait_for(1, Duration::from_secs(10));
    assert_eq!(messages.len(), 1, "nothing went out without the CA");
    assert_eq!(messages[0]["tls"], true);
    assert_eq!(messages[0]["authenticated"], true);
    let (period, _) = due_month("Europe/Berlin");
    check_message(&messages[0], "acme", &period, &url, &trusted);
    // The untrusted attempt is on record as failed, beta's month due again.
    let ops = collector_proc::token(&db, &trusted, &["ops"]);
    let served = Served::start(&db, &untrusted, &dir.path().join("serve.log"));
    let (_, body) = runtime().block_on(get_json(
        &served.base(),
        "/api/v1/customers/beta/report/sends",
        &ops,
    ));
    let item = &body["items"][0];
    assert!(
        item["attempts"].as_i64().unwrap_or(0) >= 1
            && item["last_error"]
                .as_str()
                .is_some_and(|e| e.to_lowercase().contains("certificate")),
        "{body}"
    );
    assert_eq!(sink.messages().len(), 1);
}

/// `report_mail_format = "auto"` with Chromium on PATH: the attachment is the PDF (Chromium's
/// print of the page), named .pdf, and the body still carries the verdicts and the hash.
fn the_pdf_is_mailed_when_chromium_is_installed() {
    if voqa_collector::report::pdf::find_chromium(std::env::var_os("PATH").as_deref()).is_none() {
        harness::skip(
            "VOQA_REQUIRE_CHROMIUM",
            "Chromium is not installed (apt-get install chromium)",
        );
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let Some(sink) = Sink::start(dir.path(), None, None) else {
        return;
    };
    let url = format!("sqlite:{}", dir.path().join("voqa.db").display());
    runtime().block_on(store_fixture(&url));
    let config = dir.path().join("collector.toml");
    let text = config_text(&plain_smtp(sink.port)).replace(
        "report_mail_format = \"html\"",
        "report_mail_format = \"auto\"",
    );
    std::fs::write(&config, text).expect("config");
    let out = cli(&url, &config, &["report", "--send", "--customer", "beta"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let messages = sink.wait_for(1, Duration::from_secs(10));
    let (period, _) = due_month("America/New_York");
    let attachment = &messages[0]["attachments"][0];
    assert_eq!(attachment["filename"], format!("voqa-beta-{period}.pdf"));
    assert_eq!(attachment["content_type"], "application/pdf");
    let pdf = std::fs::read(attachment["file"].as_str().expect("file")).expect("read");
    assert!(
        pdf.starts_with(b"%PDF-") && pdf.len() > 10_000,
        "{} bytes",
        pdf.len()
    );
    let body = messages[0]["body"].as_str().expect("body");
    assert!(
        body.contains("Overall verdict: BREACHED")
            && body.contains(&format!("attached: voqa-beta-{period}.pdf"))
            && body.contains("Report JSON SHA-256: "),
        "{body}"
    );
}

// ---- the webhook channel ----

/// The secret shared with the receiver (the file holds it with a newline, as an editor
/// writes it).
const SECRET: &str = "report-hook s3cret";

/// One request the receiver answered 200.
#[derive(Clone)]
struct Post {
    raw: Vec<u8>,
    signature_ok: bool,
}

/// A webhook receiver of the test's own on loopback: answers 500 while `failing`, else
/// checks `X-Voqa-Signature` against the body with [`SECRET`] and records the request.
struct Receiver {
    /// The URL configured: with a query, which must not be recorded or shown.
    url: String,
    /// The URL as the store and the API must show it.
    shown: String,
    posts: Arc<Mutex<Vec<Post>>>,
    failing: Arc<AtomicBool>,
    answered_500: Arc<AtomicU32>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(failing: bool) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
        let failing = Arc::new(AtomicBool::new(failing));
        let answered_500 = Arc::new(AtomicU32::new(0));
        let (rec, fail, count) = (posts.clone(), failing.clone(), answered_500.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (rec, fail, count) = (rec.clone(), fail.clone(), count.clone());
                async move {
                    if fail.load(Ordering::SeqCst) {
                        count.fetch_add(1, Ordering::SeqCst);
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let mut mac =
                        Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("hmac key");
                    mac.update(&body);
                    let expected: String = mac
                        .finalize()
                        .into_bytes()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    let signature_ok = headers
                        .get("x-voqa-signature")
                        .and_then(|v| v.to_str().ok())
                        == Some(format!("sha256={expected}").as_str());
                    rec.lock().expect("lock").push(Post {
                        raw: body.to_vec(),
                        signature_ok,
                    });
                    StatusCode::OK
                }
            }),
        );
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook?token=t0ken"),
            shown: format!("http://{addr}/hook"),
            posts,
            failing,
            answered_500,
            _runtime: runtime,
        }
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().expect("lock").clone()
    }

    /// Waits for `n` posts answered 200.
    fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Post> {
        wait_until(&format!("{n} report posts"), timeout, || {
            self.posts().len() >= n
        });
        self.posts()
    }
}

/// The secret file, written with a trailing newline.
fn secret_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("report-hook.secret");
    std::fs::write(&path, format!("{SECRET}\n")).expect("secret");
    path
}

/// [`config_text`] with `report_webhook` to `url` for the `hooked` customers; without
/// `smtp`, no customer has recipients (webhooks only).
fn hook_config_text(smtp: Option<&str>, url: &str, secret: &Path, hooked: &[&str]) -> String {
    let mut text = config_text(smtp.unwrap_or(""));
    if smtp.is_none() {
        for (_, _, _, recipients) in CUSTOMERS {
            text = text.replace(
                &format!("report_recipients = {recipients}\n"),
                "report_recipients = []\n",
            );
        }
    }
    for id in hooked {
        text = text.replace(
            &format!("id = \"{id}\"\n"),
            &format!(
                "id = \"{id}\"\nreport_webhook = {{ url = \"{url}\", secret_file = \"{}\" }}\n",
                secret.display()
            ),
        );
    }
    text
}

/// The posts whose body names `customer`'s `period`.
fn posts_for<'a>(posts: &'a [Post], customer: &str, period: &str) -> Vec<&'a Post> {
    posts
        .iter()
        .filter(|p| {
            let body: Value = serde_json::from_slice(&p.raw).unwrap_or(Value::Null);
            body["customer"] == customer && body["period"] == period
        })
        .collect()
}

/// A post is signed and is `customer`'s month: the envelope's verdicts (worked out for the
/// fixture: 8 of 10 calls at MOS ≥ 4 against 80 % required, met; the bad calls' 2 % loss
/// above 1 %, breached), and a `report` member that is byte for byte `report --format json`
/// with the posted generation time, whose SHA-256 (computed here) is `report_sha256`.
/// Returns that hash.
fn check_post(post: &Post, customer: &str, period: &str, database: &str, config: &Path) -> String {
    assert!(post.signature_ok, "X-Voqa-Signature does not verify");
    // The body's size, for the README's figure (a month of the fixture: 10 calls, 30 or 31 days).
    println!(
        "posted report of {customer} for {period}: {} bytes",
        post.raw.len()
    );
    let body: Value = serde_json::from_slice(&post.raw).expect("a JSON body");
    let zone = CUSTOMERS
        .iter()
        .find(|c| c.0 == customer)
        .map(|c| c.2)
        .expect("customer");
    assert_eq!(body["type"], "voqa.monthly_report");
    assert_eq!(body["customer"], customer);
    assert_eq!(body["customer_name"], format!("{customer} Ltd"));
    assert_eq!(body["period"], period);
    assert_eq!(body["time_zone"], zone);
    assert_eq!(body["verdict"], "breached", "{body}");
    assert_eq!(body["calls"], 10);
    assert_eq!(body["calls_without_mos"], 0);
    let commitments = body["commitments"].as_array().expect("commitments");
    let mos = &commitments[0];
    assert_eq!(
        (
            &mos["name"],
            &mos["verdict"],
            &mos["target"],
            &mos["mos_min"],
            &mos["measured"]
        ),
        (
            &Value::from("mos"),
            &Value::from("met"),
            &Value::from(80.0),
            &Value::from(4.0),
            &Value::from(80.0)
        ),
        "{body}"
    );
    let loss = &commitments[1];
    assert_eq!(
        (
            &loss["name"],
            &loss["verdict"],
            &loss["target"],
            &loss["measured"]
        ),
        (
            &Value::from("loss"),
            &Value::from("breached"),
            &Value::from(1.0),
            &Value::from(2.0)
        ),
        "{body}"
    );

    // The report is the last member: its bytes run from after `,"report":` to the final `}`.
    let text = std::str::from_utf8(&post.raw).expect("utf8");
    let start = text.find(",\"report\":").expect("a report member") + ",\"report\":".len();
    assert!(text.ends_with('}'));
    let report = &text[start..text.len() - 1];
    let sha = sha256_hex(report.as_bytes());
    assert_eq!(
        body["report_sha256"],
        sha.as_str(),
        "the hash is of the report's bytes"
    );
    assert_eq!(body["report"]["provenance"]["json_sha256"], Value::Null);
    let generated = body["generated_at"].as_str().expect("generated_at");
    assert_eq!(body["report"]["provenance"]["generated_at"], generated);

    let json = written_report(database, config, customer, period, "json");
    let cli_generated = between(&json, "\"generated_at\":\"", "\"").to_owned();
    let as_posted = json.replacen(
        &format!("\"generated_at\":\"{cli_generated}\""),
        &format!("\"generated_at\":\"{generated}\""),
        1,
    );
    assert!(
        as_posted == report,
        "the posted report differs from `report --format json` beyond its generation time"
    );
    sha
}

/// `GET /metrics` with an ops token: the text.
fn metrics_text(base: &str, ops: &str) -> String {
    let (status, body) = runtime().block_on(get_json(base, "/metrics", ops));
    assert_eq!(status, 200);
    body.as_str().expect("text").to_owned()
}

/// The value of one sample line of `voqa_report_sends_total`.
fn report_sends_metric(text: &str, channel: &str, result: &str) -> u64 {
    let prefix = format!("voqa_report_sends_total{{channel=\"{channel}\",result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{prefix} missing in\n{text}"))
        .parse()
        .expect("a count")
}

fn the_webhook_gets_each_month_once_signed_across_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(false);
    let secret = secret_file(dir.path());
    let db = dir.path().join("voqa.db");
    let url = format!("sqlite:{}", db.display());
    runtime().block_on(store_fixture(&url));
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        hook_config_text(None, &receiver.url, &secret, &["acme", "gamma"]),
    )
    .expect("config");
    let ops = collector_proc::token(&db, &config, &["ops"]);
    let first = Served::start(&db, &config, &dir.path().join("serve1.log"));
    receiver.wait_for(2, Duration::from_secs(60));
    wait_until(
        "both months recorded as sent",
        Duration::from_secs(30),
        || {
            ["acme", "gamma"].iter().all(|c| {
                let (_, body) = runtime().block_on(get_json(
                    &first.base(),
                    &format!("/api/v1/customers/{c}/report/sends"),
                    &ops,
                ));
                body["items"][0]["state"] == "sent"
            })
        },
    );
    let text = metrics_text(&first.base(), &ops);
    assert_eq!(report_sends_metric(&text, "webhook", "sent"), 2, "{text}");
    assert_eq!(report_sends_metric(&text, "webhook", "failed"), 0);
    assert_eq!(report_sends_metric(&text, "email", "sent"), 0);
    drop(first);
    // A restart: the months are recorded as sent, nothing is posted again.
    let second = Served::start(&db, &config, &dir.path().join("serve2.log"));
    // What is checked is that nothing happens: three cycles (1 s each) are given the chance.
    std::thread::sleep(Duration::from_millis(3500));
    let posts = receiver.posts();
    assert_eq!(posts.len(), 2, "one post per customer and month");
    assert!(
        !second.log_text().contains("posted to"),
        "posted again after a restart: {}",
        second.log_text()
    );
    for customer in ["acme", "gamma"] {
        let zone = CUSTOMERS.iter().find(|c| c.0 == customer).expect("c").2;
        let (period, _) = due_month(zone);
        let mine = posts_for(&posts, customer, &period);
        assert_eq!(mine.len(), 1, "{customer} {period}");
        let sha = check_post(mine[0], customer, &period, &url, &config);
        let (status, sends) = runtime().block_on(get_json(
            &second.base(),
            &format!("/api/v1/customers/{customer}/report/sends"),
            &ops,
        ));
        assert_eq!(status, 200, "{sends}");
        let items = sends["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{sends}");
        let item = &items[0];
        assert_eq!(item["period"], period.as_str());
        assert_eq!(item["channel"], "webhook");
        assert_eq!(item["state"], "sent");
        assert_eq!(item["attempts"], 1);
        assert_eq!(
            item["recipients"],
            receiver.shown.as_str(),
            "no query shown"
        );
        assert_eq!(item["attachment"], Value::Null);
        assert_eq!(item["report_sha256"], sha.as_str());
        assert!(item["sent_at"].is_string() && item["next_attempt"].is_null());
    }
    // beta has neither recipients nor a webhook: nothing recorded.
    let (_, sends) = runtime().block_on(get_json(
        &second.base(),
        "/api/v1/customers/beta/report/sends",
        &ops,
    ));
    assert_eq!(sends["items"].as_array().map(Vec::len), Some(0), "{sends}");
}

fn a_webhook_answering_500_gets_the_report_later_and_metrics_count_the_failures() {
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(true);
    let secret = secret_file(dir.path());
    let db = dir.path().join("voqa.db");
    let url = format!("sqlite:{}", db.display());
    runtime().block_on(store_fixture(&url));
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        hook_config_text(None, &receiver.url, &secret, &["acme"]),
    )
    .expect("config");
    let ops = collector_proc::token(&db, &config, &["ops"]);
    let acme = collector_proc::token(&db, &config, &["customer:acme"]);
    let served = Served::start(&db, &config, &dir.path().join("serve.log"));
    let sends = |token: &str| {
        runtime().block_on(get_json(
            &served.base(),
            "/api/v1/customers/acme/report/sends",
            token,
        ))
    };
    let body = second_failure(&sends, &ops);
    let item = &body["items"][0];
    assert_eq!(item["channel"], "webhook");
    assert!(
        item["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("answered HTTP 500")),
        "ops see the receiver's answer: {body}"
    );
    assert!(
        item["next_attempt"].is_string() && item["sent_at"].is_null(),
        "{body}"
    );
    let (_, mine) = sends(&acme);
    assert_eq!(
        mine["items"][0]["last_error"],
        "the last attempt failed; the operator has the details"
    );
    let text = metrics_text(&served.base(), &ops);
    assert!(
        report_sends_metric(&text, "webhook", "failed") >= 2,
        "{text}"
    );
    assert_eq!(report_sends_metric(&text, "webhook", "sent"), 0, "{text}");
    assert!(receiver.posts().is_empty());

    // The receiver recovers: the retry (at most report_retry_max_s later) delivers.
    receiver.failing.store(false, Ordering::SeqCst);
    let posts = receiver.wait_for(1, Duration::from_secs(30));
    let (period, _) = due_month("Europe/Berlin");
    wait_until(
        "the month recorded as sent",
        Duration::from_secs(30),
        || sends(&ops).1["items"][0]["state"] == "sent",
    );
    let (_, body) = sends(&ops);
    let item = &body["items"][0];
    let failures = receiver.answered_500.load(Ordering::SeqCst);
    assert!(failures >= 2);
    assert_eq!(item["attempts"], i64::from(failures) + 1, "{body}");
    assert!(item["last_error"].is_null(), "{body}");
    let text = metrics_text(&served.base(), &ops);
    assert_eq!(
        report_sends_metric(&text, "webhook", "failed"),
        u64::from(failures),
        "every 500 counted once: {text}"
    );
    assert_eq!(report_sends_metric(&text, "webhook", "sent"), 1, "{text}");
    let sha = check_post(&posts[0], "acme", &period, &url, &config);
    assert_eq!(item["report_sha256"], sha.as_str());
    assert!(
        served.log_text().contains("answered HTTP 500"),
        "{}",
        served.log_text()
    );
    drop(served);

    // On demand: sent already is refused unless forced; a channel the customer lacks is
    // named.
    let again = cli(&url, &config, &["report", "--send", "--customer", "acme"]);
    assert_eq!(again.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("webhook report of acme") && stderr.contains("was sent already at"),
        "{stderr}"
    );
    let forced = cli(
        &url,
        &config,
        &[
            "report",
            "--send",
            "--customer",
            "acme",
            "--channel",
            "webhook",
            "--force",
        ],
    );
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let stdout = String::from_utf8_lossy(&forced.stdout);
    assert!(
        stdout.contains(&format!(
            "report of acme for {period} posted to {}",
            receiver.shown
        )),
        "{stdout}"
    );
    let posts = receiver.wait_for(2, Duration::from_secs(10));
    assert_eq!(posts_for(&posts, "acme", &period).len(), 2);
    check_post(&posts[1], "acme", &period, &url, &config);
    let email = cli(
        &url,
        &config,
        &[
            "report",
            "--send",
            "--customer",
            "acme",
            "--channel",
            "email",
        ],
    );
    assert_eq!(email.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&email.stderr).contains("no report_recipients"),
        "{}",
        String::from_utf8_lossy(&email.stderr)
    );
    let none = cli(&url, &config, &["report", "--send", "--customer", "beta"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&none.stderr)
            .contains("has no report_recipients and no report_webhook"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
}

fn two_replicas_on_postgres_post_each_month_once() {
    let Some(url) = harness::fresh_postgres("two_replicas_on_postgres_post_each_month_once") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let receiver = Receiver::start(false);
    let secret = secret_file(dir.path());
    runtime().block_on(store_fixture(&url));
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        hook_config_text(None, &receiver.url, &secret, &["acme", "beta", "gamma"]),
    )
    .expect("config");
    let a = Served::start_url(&url, &config, &dir.path().join("a.log"));
    let b = Served::start_url(&url, &config, &dir.path().join("b.log"));
    receiver.wait_for(3, Duration::from_secs(60));
    // Nothing more may happen: three more cycles of each replica get the chance.
    std::thread::sleep(Duration::from_millis(3500));
    let posts = receiver.posts();
    assert_eq!(posts.len(), 3, "each month once");
    let posted =
        a.log_text().matches("posted to").count() + b.log_text().matches("posted to").count();
    assert_eq!(posted, 3, "A:\n{}\nB:\n{}", a.log_text(), b.log_text());
    for (customer, _, zone, _) in CUSTOMERS {
        let (period, _) = due_month(zone);
        let mine = posts_for(&posts, customer, &period);
        assert_eq!(mine.len(), 1, "{customer} {period}");
        check_post(mine[0], customer, &period, &url, &config);
    }
}

/// acme is mailed and posted: the mail goes at once, the webhook fails until the receiver
/// recovers, and each channel's record says so.
fn email_and_webhook_of_a_month_are_sent_and_retried_each_on_its_own() {
    let dir = tempfile::tempdir().expect("dir");
    let Some(sink) = Sink::start(dir.path(), None, None) else {
        return;
    };
    let receiver = Receiver::start(true);
    let secret = secret_file(dir.path());
    let db = dir.path().join("voqa.db");
    let url = format!("sqlite:{}", db.display());
    runtime().block_on(store_fixture(&url));
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        hook_config_text(
            Some(&plain_smtp(sink.port)),
            &receiver.url,
            &secret,
            &["acme"],
        ),
    )
    .expect("config");
    let ops = collector_proc::token(&db, &config, &["ops"]);
    let served = Served::start(&db, &config, &dir.path().join("serve.log"));
    let (period, _) = due_month("Europe/Berlin");
    let items = || {
        let (status, body) = runtime().block_on(get_json(
            &served.base(),
            "/api/v1/customers/acme/report/sends",
            &ops,
        ));
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().cloned().unwrap_or_default()
    };
    wait_until(
        "the mail sent and the webhook failed twice",
        Duration::from_secs(60),
        || {
            let items = items();
            items.len() == 2
                && items[0]["state"] == "sent"
                && items[1]["state"] == "failed"
                && items[1]["attempts"].as_i64().unwrap_or(0) >= 2
        },
    );
    let now = items();
    assert_eq!(
        (&now[0]["period"], &now[0]["channel"], &now[0]["attempts"]),
        (
            &Value::from(period.as_str()),
            &Value::from("email"),
            &Value::from(1)
        )
    );
    assert_eq!(
        (&now[1]["period"], &now[1]["channel"]),
        (&Value::from(period.as_str()), &Value::from("webhook"))
    );
    receiver.failing.store(false, Ordering::SeqCst);
    let posts = receiver.wait_for(1, Duration::from_secs(30));
    wait_until(
        "the webhook recorded as sent",
        Duration::from_secs(30),
        || items()[1]["state"] == "sent",
    );
    // The mail went once, the failures of the other channel notwithstanding.
    let messages = sink.wait_for(2, Duration::from_secs(30));
    assert_eq!(message_for(&messages, "acme", &period).len(), 1);
    check_message(
        message_for(&messages, "acme", &period)[0],
        "acme",
        &period,
        &url,
        &config,
    );
    check_post(&posts[0], "acme", &period, &url, &config);
    let text = metrics_text(&served.base(), &ops);
    // acme and beta mailed once each; acme's webhook failed as often as the receiver said 500.
    assert_eq!(report_sends_metric(&text, "email", "sent"), 2, "{text}");
    assert_eq!(report_sends_metric(&text, "email", "failed"), 0, "{text}");
    assert_eq!(report_sends_metric(&text, "webhook", "sent"), 1, "{text}");
    assert_eq!(
        report_sends_metric(&text, "webhook", "failed"),
        u64::from(receiver.answered_500.load(Ordering::SeqCst)),
        "{text}"
    );
}

fn a_webhook_in_clear_text_or_without_its_secret_is_refused_at_load_and_on_sighup() {
    let dir = tempfile::tempdir().expect("dir");
    let secret = secret_file(dir.path());
    let db = dir.path().join("voqa.db");
    let url = format!("sqlite:{}", db.display());
    let config = dir.path().join("collector.toml");
    let refused = |text: &str, expected: &str| {
        std::fs::write(&config, text).expect("config");
        let out = cli(&url, &config, &["check-config"]);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success() && said.contains(expected), "{said}");
    };
    refused(
        &hook_config_text(None, "http://hooks.acme.example/voqa", &secret, &["acme"]),
        "report_webhook.url",
    );
    let missing = dir.path().join("missing.secret");
    refused(
        &hook_config_text(None, "https://hooks.acme.example/voqa", &missing, &["acme"]),
        "report_webhook: secret file",
    );
    // Loaded while valid; a reload that loses the secret is refused and the running
    // configuration kept.
    let good = hook_config_text(None, "https://hooks.acme.example/voqa", &secret, &["acme"]);
    std::fs::write(&config, &good).expect("config");
    let out = cli(&url, &config, &["check-config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let served = Served::start(&db, &config, &dir.path().join("serve.log"));
    std::fs::write(
        &config,
        hook_config_text(None, "https://hooks.acme.example/voqa", &missing, &["acme"]),
    )
    .expect("config");
    served.sighup_and_wait("configuration not reloaded");
    assert!(
        served.log_text().contains("report_webhook: secret file"),
        "{}",
        served.log_text()
    );
    std::fs::write(
        &config,
        hook_config_text(None, "http://10.0.0.1/voqa", &secret, &["acme"]),
    )
    .expect("config");
    served.sighup_and_wait("configuration not reloaded");
    assert!(
        served.log_text().contains("report_webhook.url"),
        "{}",
        served.log_text()
    );
}
