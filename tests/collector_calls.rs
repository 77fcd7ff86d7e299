//! Call records and call KPIs end to end (issue 12), through the `voqa-collector` binary on
//! SQLite and on PostgreSQL: a hand-built day of nine call records is ingested over HTTP, and
//! the KPIs the API answers are compared with the numbers computed by hand below. Re-sending
//! the batch stores nothing twice; a customer token sees only its own customer's calls (403
//! for another's); cursor paging returns every call exactly once.
//!
//! PostgreSQL is at 127.0.0.1:5432 (trust) when present; without it that trial is reported as
//! ignored (failed under `VOQA_REQUIRE_POSTGRES`, as in CI).

#[path = "support/harness.rs"]
mod harness;

#[path = "support/collector_proc.rs"]
mod collector_proc;

use std::collections::BTreeSet;
use std::path::Path;

use collector_proc::{Served, get_json, http_client, token_url};
use serde_json::{Value, json};
use voqa_wire::{Batch, CallRecord, CallSummary, MediaProblem, Timestamp};

fn main() {
    harness::main(
        file!(),
        vec![
            harness::trial("a_day_of_calls_on_sqlite", a_day_of_calls_on_sqlite),
            harness::trial("a_day_of_calls_on_postgres", a_day_of_calls_on_postgres),
        ],
    );
}

const AGENT: &str = "fra-media-1";

/// `acme` owns the agent's traffic; `beta` another agent's.
const CONFIG: &str = r#"
[[customers]]
id = "acme"
name = "ACME"
agents = ["fra-media-1"]
time_zone = "Europe/Berlin"
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.9
asr_min_pct = 40.0
ner_min_pct = 80.0
pdd_p95_max_ms = 400.0
one_way_audio_max_pct = 30.0

[[customers]]
id = "beta"
name = "Beta"
agents = ["fra-media-2"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.9
"#;

/// 2026-11-20T00:00:00Z plus `s` seconds (fractional).
fn at(s: f64) -> Option<Timestamp> {
    Some(Timestamp::from_ns(
        1_795_132_800_000_000_000 + (s * 1e9).round() as i64,
    ))
}

const IN_PEER: &str = "192.0.2.10:5060";
const OUT_PEER: &str = "198.51.100.20:5060";

struct Call {
    key: &'static str,
    /// Hour of the day (UTC) of its INVITE.
    hour: f64,
    inbound: bool,
    /// Seconds after the INVITE: first non-100 provisional (= first 18x here), answer, end.
    provisional: Option<f64>,
    answer: Option<f64>,
    end: f64,
    status: Option<u16>,
    end_cause: &'static str,
    forks: u32,
    one_way: bool,
    /// Seconds after the INVITE: the first final response to the ending BYE.
    bye_response: Option<f64>,
}

/// The day (all on 2026-11-20, UTC):
///
/// | # | call                                | dir | outcome          | SRD ms | duration ms |
/// |---|-------------------------------------|-----|------------------|--------|-------------|
/// | 1 | 180 at 0.150, 200 at 4, BYE at 64   | in  | answered         | 150    | 60 000      |
/// | 2 | 486 at 0.120                        | out | user busy        | 120    | —           |
/// | 3 | 180 at 0.300, 480 at 30.3           | in  | no answer        | 300    | —           |
/// | 4 | 180 at 0.200, CANCEL at 8 (487)     | in  | no answer        | 200    | —           |
/// | 5 | 503 at 0.050                        | out | failed (ISA)     | 50     | —           |
/// | 6 | 401 at 0.040, re-INVITE, 180 at 0.380, 200 at 5.380, BYE at 125.380 | out | answered | 380 | 120 000 |
/// | 7 | forked: 180s from two forks (first 0.250), 200 at 3.250, BYE at 33.250 | in | answered | 250 | 30 000 |
/// | 8 | 183 at 0.500, 200 at 2.5, BYE at 92.5, one-way audio | out | answered | 500 | 90 000 |
/// | 9 | CANCEL at 1 before any 18x (487)    | in  | abandoned        | —      | —           |
///
/// The BYEs' responses (SDD): call 1's 200 at 64.040 (40 ms), call 6's at 125.392 (12 ms),
/// call 8's at 94.200 (1 700 ms: lost and retransmitted); call 7's BYE was never answered.
fn day() -> Vec<Call> {
    let call = |key, hour, inbound, status, end_cause| Call {
        key,
        hour,
        inbound,
        provisional: None,
        answer: None,
        end: 0.0,
        status,
        end_cause,
        forks: 1,
        one_way: false,
        bye_response: None,
    };
    vec![
        Call {
            provisional: Some(0.150),
            answer: Some(4.0),
            end: 64.0,
            bye_response: Some(64.040),
            ..call("00000000000000d1", 10.0, true, Some(200), "bye")
        },
        Call {
            end: 0.120,
            ..call("00000000000000d2", 10.1, false, Some(486), "failure")
        },
        Call {
            provisional: Some(0.300),
            end: 30.300,
            ..call("00000000000000d3", 10.2, true, Some(480), "failure")
        },
        Call {
            provisional: Some(0.200),
            end: 8.0,
            ..call("00000000000000d4", 10.3, true, Some(487), "cancel")
        },
        Call {
            end: 0.050,
            ..call("00000000000000d5", 11.0, false, Some(503), "failure")
        },
        Call {
            provisional: Some(0.380),
            answer: Some(5.380),
            end: 125.380,
            bye_response: Some(125.392),
            ..call("00000000000000d6", 11.5, false, Some(200), "bye")
        },
        Call {
            provisional: Some(0.250),
            answer: Some(3.250),
            end: 33.250,
            forks: 2,
            ..call("00000000000000d7", 12.0, true, Some(200), "bye")
        },
        Call {
            provisional: Some(0.500),
            answer: Some(2.5),
            end: 92.5,
            bye_response: Some(94.2),
            one_way: true,
            ..call("00000000000000d8", 13.0, false, Some(200), "bye")
        },
        Call {
            end: 1.0,
            ..call("00000000000000d9", 14.0, true, Some(487), "cancel")
        },
    ]
}

fn record(c: &Call) -> CallRecord {
    let t0 = c.hour * 3600.0;
    let answered = c.answer.is_some();
    CallRecord {
        agent_id: AGENT.into(),
        call_key: c.key.into(),
        call: CallSummary {
            call_id: format!("anon:{}", c.key),
            setup: at(t0),
            first_provisional: c.provisional.and_then(|p| at(t0 + p)),
            first_ringing: c.provisional.and_then(|p| at(t0 + p)),
            answer: c.answer.and_then(|a| at(t0 + a)),
            end: at(t0 + c.end),
            status: c.status,
            end_cause: Some(c.end_cause.into()),
            direction: Some(if c.inbound { "inbound" } else { "outbound" }.into()),
            peer: Some(if c.inbound { IN_PEER } else { OUT_PEER }.into()),
            duration_ms: c
                .answer
                .map(|a| ((c.end - a) * 1000.0).round() as u64)
                .filter(|_| answered),
            forks: c.forks,
            problems: if c.one_way {
                vec![MediaProblem {
                    kind: "one_way_audio".into(),
                    direction: "callee_to_caller".into(),
                    start: at(t0 + 2.5).expect("time"),
                }]
            } else {
                Vec::new()
            },
            bye_response: c.bye_response.and_then(|b| at(t0 + b)),
            ..CallSummary::default()
        },
    }
}

fn batch() -> Batch {
    Batch {
        schema: voqa_wire::SCHEMA_VERSION,
        batch_id: "5e0c1a2b-0000-4000-8000-00000000ca11".into(),
        agent_id: AGENT.into(),
        sent_at: at(86_000.0).expect("time"),
        reports: Vec::new(),
        heartbeats: Vec::new(),
        calls: day().iter().map(record).collect(),
    }
}

fn a_day_of_calls_on_sqlite() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite:{}", dir.path().join("voqa.db").display());
    check(&url, dir.path());
}

fn a_day_of_calls_on_postgres() {
    let Some(url) = harness::fresh_postgres("a_day_of_calls_on_postgres") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    check(&url, dir.path());
}

fn close(value: &Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - expected).abs() < 1e-9)
}

fn check(url: &str, dir: &Path) {
    let config = dir.join("collector.toml");
    std::fs::write(&config, CONFIG).expect("config");
    let agent = token_url(url, &config, &["agent", "--agent", AGENT]);
    let ops = token_url(url, &config, &["ops"]);
    let acme = token_url(url, &config, &["customer:acme"]);
    let beta = token_url(url, &config, &["customer:beta"]);
    let served = Served::start_url(url, &config, &dir.join("serve.log"));
    let base = served.base();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let post = |body: Vec<u8>| {
            let base = base.clone();
            let agent = agent.clone();
            async move {
                let resp = http_client()
                    .post(format!("{base}/api/v1/ingest"))
                    .bearer_auth(agent)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("POST");
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.expect("json");
                (status, body)
            }
        };
        let body = serde_json::to_vec(&batch()).expect("batch json");
        let (status, ack) = post(body.clone()).await;
        assert_eq!(status, 200, "{ack}");
        assert_eq!(
            (&ack["status"], &ack["calls"], &ack["skipped_calls"]),
            (&json!("stored"), &json!(9), &json!(0)),
            "{ack}"
        );
        // The same batch again: acknowledged, nothing stored twice.
        let (status, ack) = post(body).await;
        assert_eq!(status, 200, "{ack}");
        assert_eq!(
            (&ack["status"], &ack["calls"], &ack["duplicate_calls"]),
            (&json!("duplicate"), &json!(0), &json!(9)),
            "{ack}"
        );

        // Prometheus: per customer, counted once (the re-sent batch added nothing).
        let (status, metrics) = get_json(&base, "/metrics", &ops).await;
        assert_eq!(status, 200);
        let text = metrics.as_str().unwrap_or_default();
        for line in [
            "voqa_calls_attempts_total{customer=\"acme\"} 9",
            "voqa_calls_answered_total{customer=\"acme\"} 4",
            "voqa_calls_failed_total{customer=\"acme\",class=\"5xx\"} 1",
            "voqa_call_media_problems_total{customer=\"acme\",kind=\"one_way_audio\"} 1",
            "voqa_call_srd_seconds_count{customer=\"acme\"} 8",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains("customer=\"beta\""), "beta has no calls");

        let range = "from=2026-11-20&to=2026-11-21";
        let (status, k) = get_json(
            &base,
            &format!("/api/v1/customers/acme/kpis?{range}"),
            &acme,
        )
        .await;
        assert_eq!(status, 200, "{k}");
        let t = &k["total"];
        // 9 attempts, 4 answered (calls 1, 6, 7, 8).
        assert_eq!(
            (&t["attempts"], &t["answered"]),
            (&json!(9), &json!(4)),
            "{k}"
        );
        // ASR = 4/9; NER = (4 answered + 1 busy + 2 no answer + 0 rejects)/9 = 7/9.
        assert!(close(&t["asr_pct"], 400.0 / 9.0), "{t}");
        assert!(close(&t["ner_pct"], 700.0 / 9.0), "{t}");
        // No 3xx: SER = 4/9; SEER = (4 + the 480 + the 486)/9 = 6/9; ISA = the 503: 1/9;
        // SCR = the 4 answered calls ended by BYE / 9.
        assert!(close(&t["ser_pct"], 400.0 / 9.0), "{t}");
        assert!(close(&t["seer_pct"], 600.0 / 9.0), "{t}");
        assert!(close(&t["isa_pct"], 100.0 / 9.0), "{t}");
        assert!(close(&t["scr_pct"], 400.0 / 9.0), "{t}");
        // SRD: 150+120+300+200+50+380+250+500 = 1950 over 8 calls = 243.75 ms (the challenged
        // call's 380 counts from its first, challenged INVITE). p95: rank ceil(7.6) = 8, the
        // largest, 500, in the ≤500 bucket.
        assert!(close(&t["srd_mean_ms"], 243.75), "{t}");
        assert_eq!(t["pdd_p95_ms"], json!(500), "{t}");
        // Durations 60+120+30+90 s over 4 answered calls: 75 000 ms.
        assert!(close(&t["session_duration_mean_ms"], 75_000.0), "{t}");
        // One of four answered calls with a media problem (one-way audio): 25 %.
        assert_eq!(
            (&t["media_problem_calls"], &t["one_way_audio"]),
            (&json!(1), &json!(1))
        );
        assert!(close(&t["media_problem_pct"], 25.0), "{t}");
        // 4xx: 486, 480, 487, 487; 5xx: 503; busy 1, no answer 2 (480 and CANCEL after 180),
        // abandoned 1 (CANCEL before any 18x).
        assert_eq!(
            (
                &t["failed_4xx"],
                &t["failed_5xx"],
                &t["user_busy"],
                &t["no_answer"],
                &t["abandoned"]
            ),
            (&json!(4), &json!(1), &json!(1), &json!(2), &json!(1)),
            "{t}"
        );
        // SDD over the 3 BYEs answered: (40 + 12 + 1700) / 3 = 584 ms; p95: rank ceil(2.85) =
        // 3, the largest, 1700, in the ≤2000 bucket, whose edge the maximum tightens.
        assert!(close(&t["sdd_mean_ms"], 584.0), "{t}");
        assert_eq!(t["sdd_p95_ms"], json!(1700), "{t}");

        // The call commitments in the SLA answer: ASR 44.4 ≥ 40 met, NER 77.8 < 80 breached,
        // PDD p95 500 > 400 breached, media problems 25 ≤ 30 met.
        let (status, sla) =
            get_json(&base, &format!("/api/v1/customers/acme/sla?{range}"), &acme).await;
        assert_eq!(status, 200, "{sla}");
        let verdicts: Vec<(Value, Value)> = sla["commitments"]
            .as_array()
            .expect("commitments")
            .iter()
            .skip(4)
            .map(|c| (c["name"].clone(), c["verdict"].clone()))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                (json!("asr"), json!("met")),
                (json!("ner"), json!("breached")),
                (json!("pdd_p95"), json!("breached")),
                (json!("one_way_audio"), json!("met")),
            ],
            "{sla}"
        );
        assert_eq!(sla["commitments"][6]["measured"], json!(500.0));

        // By direction: inbound calls 1, 3, 4, 7, 9 (answered 1 and 7); outbound 2, 5, 6, 8
        // (answered 6 and 8). By peer the same split.
        let (status, k) = get_json(
            &base,
            &format!("/api/v1/customers/acme/kpis?{range}&group_by=direction"),
            &ops,
        )
        .await;
        assert_eq!(status, 200, "{k}");
        let groups: Vec<(String, u64, u64)> = k["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| {
                (
                    g["key"].as_str().unwrap_or_default().to_owned(),
                    g["kpis"]["attempts"].as_u64().unwrap_or(0),
                    g["kpis"]["answered"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(
            groups,
            vec![("inbound".into(), 5, 2), ("outbound".into(), 4, 2)]
        );
        let (_, k) = get_json(
            &base,
            &format!("/api/v1/customers/acme/kpis?{range}&group_by=peer"),
            &ops,
        )
        .await;
        assert_eq!(
            k["groups"]
                .as_array()
                .expect("groups")
                .iter()
                .map(|g| (g["key"].clone(), g["kpis"]["attempts"].clone()))
                .collect::<Vec<_>>(),
            vec![
                (json!("192.0.2.10"), json!(5)),
                (json!("198.51.100.20"), json!(4))
            ]
        );
        // By hour: 10:00 calls 1-4, 11:00 calls 5-6, then one each at 12, 13 and 14.
        let (_, k) = get_json(
            &base,
            &format!("/api/v1/customers/acme/kpis?{range}&group_by=hour"),
            &ops,
        )
        .await;
        let hours: Vec<u64> = k["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| g["kpis"]["attempts"].as_u64().unwrap_or(0))
            .collect();
        assert_eq!(hours, vec![4, 2, 1, 1, 1], "{k}");
        // By day of Europe/Berlin: 11:00-15:00 local, all on the 20th.
        let (_, k) = get_json(
            &base,
            &format!("/api/v1/customers/acme/kpis?{range}&group_by=day"),
            &ops,
        )
        .await;
        assert_eq!(k["groups"][0]["key"], json!("2026-11-20"), "{k}");
        assert_eq!(k["groups"][0]["kpis"]["attempts"], json!(9), "{k}");

        // Another customer's token: 403 on acme's KPIs and calls, and its own list is empty.
        let (status, _) = get_json(
            &base,
            &format!("/api/v1/customers/acme/kpis?{range}"),
            &beta,
        )
        .await;
        assert_eq!(status, 403);
        let (status, _) = get_json(
            &base,
            &format!("/api/v1/calls?customer=acme&{range}"),
            &beta,
        )
        .await;
        assert_eq!(status, 403);
        let (status, page) = get_json(&base, &format!("/api/v1/calls?{range}"), &beta).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["items"], json!([]));

        // Paging two at a time returns every call once, in INVITE order.
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let path = match &cursor {
                None => format!("/api/v1/calls?{range}&limit=2"),
                Some(c) => format!("/api/v1/calls?{range}&limit=2&cursor={c}"),
            };
            let (status, page) = get_json(&base, &path, &acme).await;
            assert_eq!(status, 200, "{page}");
            for item in page["items"].as_array().expect("items") {
                keys.push(item["call_key"].as_str().expect("key").to_owned());
                assert_eq!(
                    item["record_id"],
                    json!(format!(
                        "{AGENT}/call/{}",
                        item["call_key"].as_str().unwrap_or("")
                    ))
                );
            }
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        let expected: Vec<String> = day().iter().map(|c| c.key.to_owned()).collect();
        assert_eq!(keys, expected);
        assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), 9);

        // Filters.
        for (query, count) in [
            ("status=486", 1),
            ("status=no_answer", 2),
            ("status=abandoned", 1),
            ("problem=one_way_audio", 1),
            ("problem=any", 1),
            ("peer=198.51.100.20", 4),
            ("customer=acme", 9),
        ] {
            let (status, page) =
                get_json(&base, &format!("/api/v1/calls?{range}&{query}"), &ops).await;
            assert_eq!(status, 200, "{query}: {page}");
            assert_eq!(
                page["items"].as_array().map(Vec::len),
                Some(count),
                "{query}: {page}"
            );
        }
        for bad in ["status=99", "problem=loud", "peer=nowhere", "limit=0"] {
            let (status, _) = get_json(&base, &format!("/api/v1/calls?{range}&{bad}"), &ops).await;
            assert_eq!(status, 400, "{bad}");
        }
    });
    drop(served);
}
