//! SIGHUP (`systemctl reload`) re-reads the collector's configuration while it serves, through
//! the real binary: a customer's changed commitment is the target of the next SLA answer; an
//! invalid file changes nothing and says why; a changed server key is named as needing a
//! restart and keeps its running value.

#[path = "support/collector_proc.rs"]
mod collector_proc;

use collector_proc::{Served, get_json, token};

fn config(mos_min: f64, extra: &str) -> String {
    format!(
        r#"{extra}
[[customers]]
id = "acme"
name = "ACME Contact Centre"
agents = ["fra-media-1"]
[customers.commitments]
mos_min = {mos_min:.1}
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
"#
    )
}

/// The `mos` commitment's per-call MOS threshold in the SLA answer.
fn mos_min(sla: &serde_json::Value) -> f64 {
    let commitments = sla["commitments"].as_array().expect("commitments");
    let mos = commitments
        .iter()
        .find(|c| c["name"] == "mos")
        .unwrap_or_else(|| panic!("no mos commitment in {sla}"));
    mos["mos_min"]
        .as_f64()
        .unwrap_or_else(|| panic!("no mos_min in {mos}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_new_commitment_and_keeps_the_old_config_when_invalid() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("collector.toml");
    std::fs::write(&path, config(4.0, "")).expect("config");
    let db = dir.path().join("voqa.db");
    let ops = token(&db, &path, &["ops"]);
    let served = Served::start(&db, &path, &dir.path().join("serve.log"));
    let sla = "/api/v1/customers/acme/sla?from=2026-11-20&to=2026-11-21";
    let (status, body) = get_json(&served.base(), sla, &ops).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mos_min(&body), 4.0);

    // A new commitment: the next answer uses it.
    std::fs::write(&path, config(3.6, "")).expect("config");
    served.sighup_and_wait("configuration reloaded");
    let (status, body) = get_json(&served.base(), sla, &ops).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mos_min(&body), 3.6);

    // An invalid file: nothing changes, and the log says why.
    std::fs::write(&path, config(3.1, "retention_dayz = 30")).expect("config");
    served.sighup_and_wait("configuration not reloaded");
    assert!(
        served.log_text().contains("'retention_dayz' (line 1)"),
        "{}",
        served.log_text()
    );
    let (status, body) = get_json(&served.base(), sla, &ops).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mos_min(&body), 3.6);

    // A server key: named as needing a restart; the customers still reload.
    std::fs::write(&path, config(3.9, "max_body_bytes = 4096")).expect("config");
    served.sighup_and_wait("configuration reloaded");
    assert!(
        served
            .log_text()
            .contains("changed max_body_bytes take effect at the next restart"),
        "{}",
        served.log_text()
    );
    let (_, body) = get_json(&served.base(), sla, &ops).await;
    assert_eq!(mos_min(&body), 3.9);

    // A customer removed: its SLA is no longer served.
    std::fs::write(&path, "max_body_bytes = 4096\n").expect("config");
    served.sighup_and_wait("configuration reloaded");
    let (status, body) = get_json(&served.base(), sla, &ops).await;
    assert_eq!(status, 404, "{body}");
}
