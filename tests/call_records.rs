//! End-to-end through `voqa-agent analyze` (and `replay`, the live path from a file): call
//! records (issue 12) of calls built here packet by packet: a normal call, busy, no answer after
//! ringing, CANCEL before answer, 503, a digest challenge, a forked INVITE, retransmitted INVITE
//! and 200, hold and back, one-way audio, RTP stopping after 20 s, DTX silence, a NATed phone.
//!
//! Every expected value is a time, code or address this test put on the wire, or arithmetic on
//! them done here by hand (ring time = answer − first 18x, duration = end − answer, ...).
//!
//! The PBX (10.0.0.100) is the monitored host (`--local-net 10.0.0.0/24`); alice
//! (203.0.113.10) calls it from outside, so her calls are `inbound` with her as the peer.

mod support;

use std::net::SocketAddr;

use serde_json::{Value, json};
use support::*;
use voqa_agent::decode::build::{LinkSpec, RtpHeader};
use voqa_wire::Timestamp;

fn main() {
    let trials = trials![
        normal_call_has_every_time_cause_and_direction,
        bye_response_times_the_session_disconnect_delay,
        busy_486_with_q850_cause,
        no_answer_480_after_ringing,
        cancel_before_answer,
        service_unavailable_503,
        digest_challenge_counts_from_the_first_invite,
        forked_invite_two_180s_one_200,
        retransmitted_invite_and_200_are_counted_once,
        hold_and_back_raises_no_problem,
        one_way_audio_and_late_rtp,
        rtp_stopping_after_20_s,
        dtx_silence_is_not_a_stop_but_the_same_pause_without_marker_is,
        nat_address_mismatch,
        replay_ships_the_same_call_record,
        threads_1_and_4_give_the_same_call_records,
    ];
    support::harness::main(file!(), trials)
}

const T0: i64 = 1_795_000_000_000_000_000;
const MS: i64 = 1_000_000;
const S: i64 = 1_000 * MS;

const ALICE_SIP: &str = "203.0.113.10:5060";
const PBX_SIP: &str = "10.0.0.100:5060";
const ALICE_RTP: &str = "203.0.113.10:40000";
const PBX_RTP: &str = "10.0.0.100:50000";
const LOCAL: [&str; 2] = ["--local-net", "10.0.0.0/24"];

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn ts(ns: i64) -> Value {
    serde_json::to_value(Timestamp::from_ns(ns)).expect("timestamp")
}

fn sdp(ip: &str, port: u16, attr: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 13\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:13 CN/8000\r\na={attr}\r\n"
    )
}

/// A dialog between alice (the caller, From tag `a`) and the PBX (To tag `tag`).
struct Dialog {
    call_id: String,
    tag: String,
}

impl Dialog {
    fn new(call_id: &str) -> Dialog {
        Dialog {
            call_id: call_id.to_owned(),
            tag: "pbx".to_owned(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn text(
        &self,
        start: &str,
        cseq: &str,
        from: (&str, &str),
        to: (&str, Option<&str>),
        extra: &str,
        body: Option<&str>,
    ) -> String {
        let body_headers = match body {
            Some(b) => format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n",
                b.len()
            ),
            None => "Content-Length: 0\r\n".to_owned(),
        };
        let to_tag = to.1.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "{start}\r\nVia: SIP/2.0/UDP {ALICE_SIP};branch=z9hG4bK-{cseq_branch}\r\n\
From: <sip:{}@example.com>;tag={}\r\nTo: <sip:{}@example.com>{to_tag}\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq}\r\n{extra}{body_headers}\r\n{body}",
            from.0,
            from.1,
            to.0,
            cseq_branch = cseq.replace(' ', "-"),
            call_id = self.call_id,
            body = body.unwrap_or(""),
        )
    }

    /// A request from alice (`in_dialog`: with the PBX's To tag).
    fn req(&self, at: i64, method: &str, cseq: u32, in_dialog: bool, body: Option<&str>) -> Frame {
        self.req_x(at, method, cseq, in_dialog, "", body)
    }

    fn req_x(
        &self,
        at: i64,
        method: &str,
        cseq: u32,
        in_dialog: bool,
        extra: &str,
        body: Option<&str>,
    ) -> Frame {
        let text = self.text(
            &format!("{method} sip:bob@example.com SIP/2.0"),
            &format!("{cseq} {method}"),
            ("alice", "a"),
            ("bob", in_dialog.then_some(self.tag.as_str())),
            extra,
            body,
        );
        (
            at,
            sip_frame(&LinkSpec::Ethernet, addr(ALICE_SIP), addr(PBX_SIP), &text),
        )
    }

    /// A request from the PBX inside the dialog (BYE, re-INVITE of the callee).
    fn pbx_req(&self, at: i64, method: &str, cseq: u32, extra: &str) -> Frame {
        let text = self.text(
            &format!("{method} sip:alice@example.com SIP/2.0"),
            &format!("{cseq} {method}"),
            ("bob", &self.tag),
            ("alice", Some("a")),
            extra,
            None,
        );
        (
            at,
            sip_frame(&LinkSpec::Ethernet, addr(PBX_SIP), addr(ALICE_SIP), &text),
        )
    }

    /// A response of the PBX to alice's request.
    fn resp(&self, at: i64, status: &str, cseq: u32, method: &str, body: Option<&str>) -> Frame {
        self.resp_x(at, status, cseq, method, "", body)
    }

    fn resp_x(
        &self,
        at: i64,
        status: &str,
        cseq: u32,
        method: &str,
        extra: &str,
        body: Option<&str>,
    ) -> Frame {
        let tag = (!status.starts_with("100")).then_some(self.tag.as_str());
        let text = self.text(
            &format!("SIP/2.0 {status}"),
            &format!("{cseq} {method}"),
            ("alice", "a"),
            ("bob", tag),
            extra,
            body,
        );
        (
            at,
            sip_frame(&LinkSpec::Ethernet, addr(PBX_SIP), addr(ALICE_SIP), &text),
        )
    }

    /// Alice's response to a request of the PBX (its BYE).
    fn alice_resp(&self, at: i64, status: &str, cseq: u32, method: &str) -> Frame {
        let text = self.text(
            &format!("SIP/2.0 {status}"),
            &format!("{cseq} {method}"),
            ("bob", &self.tag),
            ("alice", Some("a")),
            "",
            None,
        );
        (
            at,
            sip_frame(&LinkSpec::Ethernet, addr(ALICE_SIP), addr(PBX_SIP), &text),
        )
    }

    fn tagged(&self, tag: &str) -> Dialog {
        Dialog {
            call_id: self.call_id.clone(),
            tag: tag.to_owned(),
        }
    }
}

type Frame = (i64, Vec<u8>);

/// RTP every 20 ms over `[start, end)`, sequence and timestamp following on; `marker_at` sets
/// the marker bit on the packet at that time, `pt_at` gives a packet another payload type.
struct Rtp<'a> {
    src: &'a str,
    dst: &'a str,
    ssrc: u32,
    spans: Vec<(i64, i64)>,
    marker_after_gaps: bool,
    cn_before_gaps: bool,
}

impl Rtp<'_> {
    fn frames(&self) -> Vec<Frame> {
        let mut pkts = Vec::new();
        let mut seq: u16 = 1000;
        for (i, &(start, end)) in self.spans.iter().enumerate() {
            let mut at = start;
            while at < end {
                let last_of_span = at + 20 * MS >= end && i + 1 < self.spans.len();
                let pt = if last_of_span && self.cn_before_gaps {
                    13
                } else {
                    0
                };
                let mut header: RtpHeader =
                    rtp_header(pt, seq, ((at - T0) / MS * 8) as u32, self.ssrc);
                header.marker = self.marker_after_gaps && i > 0 && at == start;
                pkts.push(Pkt {
                    at_ns: at,
                    src: addr(self.src),
                    dst: addr(self.dst),
                    header,
                    payload_len: if pt == 13 { 1 } else { 160 },
                });
                seq = seq.wrapping_add(1);
                at += 20 * MS;
            }
        }
        rtp_frames(&LinkSpec::Ethernet, &pkts)
    }
}

fn rtp(src: &str, dst: &str, ssrc: u32, start: i64, end: i64) -> Vec<Frame> {
    Rtp {
        src,
        dst,
        ssrc,
        spans: vec![(start, end)],
        marker_after_gaps: false,
        cn_before_gaps: false,
    }
    .frames()
}

fn analyze(frames: Vec<Frame>) -> Value {
    let dir = tempfile::tempdir().expect("tmp");
    let mut frames = frames;
    frames.sort_by_key(|f| f.0);
    let path = write_pcap(dir.path(), "c.pcap", 1, &frames);
    analyze_json(&[&path], &LOCAL)
}

fn only_call(doc: &Value) -> &Value {
    let calls = doc["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1, "{doc:#}");
    &calls[0]
}

/// Asserts the listed fields of a call object.
fn assert_fields(call: &Value, expected: Value) {
    for (key, want) in expected.as_object().expect("object") {
        assert_eq!(&call[key], want, "{key} of {call:#}");
    }
}

fn problems(call: &Value) -> Vec<(String, String, Value)> {
    call["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap_or("?").to_owned(),
                p["direction"].as_str().unwrap_or("?").to_owned(),
                p["start"].clone(),
            )
        })
        .collect()
}

fn problem(kind: &str, direction: &str, start: i64) -> (String, String, Value) {
    (kind.to_owned(), direction.to_owned(), ts(start))
}

/// INVITE at T0 with alice's offer, 100 at +10 ms, 180 at +100 ms, 200 with the PBX's answer at
/// +3 s, ACK; then media as given and a BYE from `bye_from_pbx` or alice at `bye_at`.
fn answered_call(d: &Dialog, alice_sdp: &str, bye_at: i64) -> Vec<Frame> {
    vec![
        d.req(T0, "INVITE", 1, false, Some(alice_sdp)),
        d.resp(T0 + 10 * MS, "100 Trying", 1, "INVITE", None),
        d.resp(T0 + 100 * MS, "180 Ringing", 1, "INVITE", None),
        d.resp(
            T0 + 3 * S,
            "200 OK",
            1,
            "INVITE",
            Some(&sdp("10.0.0.100", 50000, "sendrecv")),
        ),
        d.req(T0 + 3 * S + 10 * MS, "ACK", 1, true, None),
        d.req(bye_at, "BYE", 2, true, None),
        d.resp(bye_at + 10 * MS, "200 OK", 2, "BYE", None),
    ]
}

fn normal_call_frames() -> Vec<Frame> {
    let d = Dialog::new("normal@203.0.113.10");
    let mut frames = answered_call(
        &d,
        &sdp("203.0.113.10", 40000, "sendrecv"),
        T0 + 13 * S, // replaced below by the PBX's BYE
    );
    frames.truncate(5);
    frames.push(d.pbx_req(
        T0 + 13 * S,
        "BYE",
        1,
        "Reason: Q.850;cause=16;text=\"Normal call clearing\"\r\n",
    ));
    frames.extend(rtp(ALICE_RTP, PBX_RTP, 0xA1, T0 + 3020 * MS, T0 + 13 * S));
    frames.extend(rtp(PBX_RTP, ALICE_RTP, 0xB1, T0 + 3030 * MS, T0 + 13 * S));
    frames
}

fn normal_call_has_every_time_cause_and_direction() {
    let doc = analyze(normal_call_frames());
    let call = only_call(&doc);
    assert_fields(
        call,
        json!({
            "setup": ts(T0), "first_provisional": ts(T0 + 100 * MS),
            "first_ringing": ts(T0 + 100 * MS), "answer": ts(T0 + 3 * S),
            "end": ts(T0 + 13 * S), "status": 200, "reason_cause": 16,
            "end_cause": "bye", "ended_by": "callee", "direction": "inbound",
            "peer": ALICE_SIP, "ring_ms": 2900, "duration_ms": 10_000, "forks": 1,
            "retransmissions": 0, "reinvites": 0, "events": [], "problems": [],
        }),
    );
    let media = call["media"].as_array().expect("media");
    let dirs: Vec<(&str, &str)> = media
        .iter()
        .map(|m| {
            (
                m["direction"].as_str().unwrap_or("?"),
                m["codec"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    assert_eq!(
        dirs,
        vec![("caller_to_callee", "PCMU"), ("callee_to_caller", "PCMU")]
    );
    // The call's MOS is its worst stream's, and the window that stream's span.
    let streams = doc["streams"].as_array().expect("streams");
    let worst = streams
        .iter()
        .min_by(|a, b| {
            a["mos"]
                .as_f64()
                .partial_cmp(&b["mos"].as_f64())
                .expect("mos")
        })
        .expect("a stream");
    assert!(worst["mos"].as_f64().is_some());
    assert_eq!(call["mos"], worst["mos"]);
    assert_eq!(call["worst_window_start"], worst["first_seen"]);
    assert_eq!(call["worst_window_end"], worst["last_seen"]);
    for m in media {
        assert_eq!(m["stream_id"].as_str().map(str::len), Some(16), "{m}");
    }
}

/// Two answered calls ended by the PBX's BYE: the first BYE is retransmitted once (Timer E,
/// 500 ms) and then answered by alice, whose 200 is retransmitted too; the second BYE is never
/// answered. The first call's `bye_response` is alice's first 200 (SDD = 620 ms after the
/// `end`), the second has none.
fn bye_response_times_the_session_disconnect_delay() {
    let answered = Dialog::new("sdd-answered");
    let unanswered = Dialog::new("sdd-unanswered");
    let alice_sdp = sdp("203.0.113.10", 40000, "sendrecv");
    let mut frames = answered_call(&answered, &alice_sdp, 0);
    frames.truncate(5);
    frames.extend([
        answered.pbx_req(T0 + 13 * S, "BYE", 1, ""),
        answered.pbx_req(T0 + 13_500 * MS, "BYE", 1, ""),
        answered.alice_resp(T0 + 13_620 * MS, "200 OK", 1, "BYE"),
        answered.alice_resp(T0 + 14_120 * MS, "200 OK", 1, "BYE"),
    ]);
    let mut second = answered_call(&unanswered, &alice_sdp, 0);
    second.truncate(5);
    second.push(unanswered.pbx_req(T0 + 20 * S, "BYE", 1, ""));
    frames.extend(second);
    let doc = analyze(frames);
    let calls = doc["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 2, "{doc:#}");
    assert_fields(
        &calls[0],
        json!({
            "end": ts(T0 + 13 * S), "end_cause": "bye", "ended_by": "callee",
            "bye_response": ts(T0 + 13_620 * MS), "retransmissions": 1,
        }),
    );
    assert_fields(
        &calls[1],
        json!({"end": ts(T0 + 20 * S), "end_cause": "bye", "bye_response": null}),
    );
    // Absent, not null, when there is none: older readers and byte-stable documents.
    assert!(calls[1].get("bye_response").is_none(), "{:#}", calls[1]);
}

fn busy_486_with_q850_cause() {
    let d = Dialog::new("busy");
    let doc = analyze(vec![
        d.req(
            T0,
            "INVITE",
            1,
            false,
            Some(&sdp("203.0.113.10", 40000, "sendrecv")),
        ),
        d.resp(T0 + 10 * MS, "100 Trying", 1, "INVITE", None),
        d.resp_x(
            T0 + 500 * MS,
            "486 Busy Here",
            1,
            "INVITE",
            "Reason: Q.850;cause=17;text=\"User busy\"\r\n",
            None,
        ),
        d.req(T0 + 510 * MS, "ACK", 1, true, None),
    ]);
    assert_fields(
        only_call(&doc),
        json!({
            "setup": ts(T0), "first_provisional": null, "first_ringing": null,
            "answer": null, "end": ts(T0 + 500 * MS), "status": 486, "reason_cause": 17,
            "end_cause": "failure", "ended_by": "callee", "ring_ms": null,
            "duration_ms": null, "problems": [], "media": [], "mos": null,
        }),
    );
}

fn no_answer_480_after_ringing() {
    let d = Dialog::new("no-answer");
    let doc = analyze(vec![
        d.req(T0, "INVITE", 1, false, None),
        d.resp(T0 + 200 * MS, "180 Ringing", 1, "INVITE", None),
        d.resp(
            T0 + 30 * S,
            "480 Temporarily Unavailable",
            1,
            "INVITE",
            None,
        ),
        d.req(T0 + 30 * S + 5 * MS, "ACK", 1, true, None),
    ]);
    assert_fields(
        only_call(&doc),
        json!({
            "first_ringing": ts(T0 + 200 * MS), "end": ts(T0 + 30 * S), "status": 480,
            "end_cause": "failure", "ended_by": "callee", "ring_ms": 29_800,
            "reason_cause": null,
        }),
    );
}

fn cancel_before_answer() {
    let d = Dialog::new("cancelled");
    let doc = analyze(vec![
        d.req(T0, "INVITE", 1, false, None),
        d.resp(T0 + S, "180 Ringing", 1, "INVITE", None),
        d.req_x(
            T0 + 5 * S,
            "CANCEL",
            1,
            false,
            "Reason: Q.850;cause=31\r\n",
            None,
        ),
        d.resp(T0 + 5 * S + 5 * MS, "200 OK", 1, "CANCEL", None),
        d.resp(
            T0 + 5 * S + 10 * MS,
            "487 Request Terminated",
            1,
            "INVITE",
            None,
        ),
        d.req(T0 + 5 * S + 15 * MS, "ACK", 1, true, None),
    ]);
    assert_fields(
        only_call(&doc),
        json!({
            "end": ts(T0 + 5 * S), "status": 487, "end_cause": "cancel",
            "ended_by": "caller", "ring_ms": 4000, "reason_cause": 31, "answer": null,
        }),
    );
}

fn service_unavailable_503() {
    let d = Dialog::new("unavailable");
    let doc = analyze(vec![
        d.req(T0, "INVITE", 1, false, None),
        d.resp(T0 + 40 * MS, "503 Service Unavailable", 1, "INVITE", None),
        d.req(T0 + 45 * MS, "ACK", 1, true, None),
    ]);
    assert_fields(
        only_call(&doc),
        json!({"status": 503, "end": ts(T0 + 40 * MS), "end_cause": "failure",
               "ended_by": "callee", "direction": "inbound", "peer": ALICE_SIP}),
    );
}

fn digest_challenge_counts_from_the_first_invite() {
    let d = Dialog::new("challenged");
    let doc = analyze(vec![
        d.req(T0, "INVITE", 1, false, None),
        d.resp(
            T0 + 20 * MS,
            "407 Proxy Authentication Required",
            1,
            "INVITE",
            None,
        ),
        d.req(T0 + 25 * MS, "ACK", 1, true, None),
        d.req(T0 + 50 * MS, "INVITE", 2, false, None),
        d.resp(T0 + 60 * MS, "100 Trying", 2, "INVITE", None),
        d.resp(T0 + S, "183 Session Progress", 2, "INVITE", None),
        d.resp(T0 + 2 * S, "200 OK", 2, "INVITE", None),
        d.req(T0 + 2 * S + 5 * MS, "ACK", 2, true, None),
        d.req(T0 + 4 * S, "BYE", 3, true, None),
    ]);
    assert_fields(
        only_call(&doc),
        json!({
            "setup": ts(T0), "first_provisional": ts(T0 + S), "first_ringing": ts(T0 + S),
            "answer": ts(T0 + 2 * S), "status": 200, "ring_ms": 1000, "duration_ms": 2000,
            "retransmissions": 0, "ended_by": "caller", "end_cause": "bye",
        }),
    );
}

fn forked_invite_two_180s_one_200() {
    let d = Dialog::new("forked");
    let (a, b) = (d.tagged("fork-a"), d.tagged("fork-b"));
    let doc = analyze(vec![
        d.req(T0, "INVITE", 1, false, None),
        d.resp(T0 + 10 * MS, "100 Trying", 1, "INVITE", None),
        a.resp(T0 + S, "180 Ringing", 1, "INVITE", None),
        b.resp(T0 + 1200 * MS, "180 Ringing", 1, "INVITE", None),
        b.resp(T0 + 3 * S, "200 OK", 1, "INVITE", None),
        b.req(T0 + 3 * S + 5 * MS, "ACK", 1, true, None),
        b.req(T0 + 8 * S, "BYE", 2, true, None),
    ]);
    assert_fields(
        only_call(&doc),
        json!({"forks": 2, "first_ringing": ts(T0 + S), "answer": ts(T0 + 3 * S),
               "end": ts(T0 + 8 * S), "ring_ms": 2000, "duration_ms": 5000}),
    );
}

fn retransmitted_invite_and_200_are_counted_once() {
    let d = Dialog::new("retransmitted");
    let doc = analyze(vec![
        d.req(T0, "INVITE", 1, false, None),
        d.req(T0 + 500 * MS, "INVITE", 1, false, None),
        d.resp(T0 + S, "200 OK", 1, "INVITE", None),
        d.resp(T0 + 1500 * MS, "200 OK", 1, "INVITE", None),
        d.req(T0 + 1510 * MS, "ACK", 1, true, None),
        d.req(T0 + 6 * S, "BYE", 2, true, None),
    ]);
    assert_fields(
        only_call(&doc),
        json!({"retransmissions": 2, "setup": ts(T0), "answer": ts(T0 + S),
               "end": ts(T0 + 6 * S), "duration_ms": 5000, "status": 200}),
    );
}

fn hold_and_back_raises_no_problem() {
    let d = Dialog::new("hold");
    let mut frames = answered_call(&d, &sdp("203.0.113.10", 40000, "sendrecv"), T0 + 25 * S);
    frames.extend([
        d.req(
            T0 + 5 * S,
            "INVITE",
            3,
            true,
            Some(&sdp("203.0.113.10", 40000, "sendonly")),
        ),
        d.resp(
            T0 + 5 * S + 20 * MS,
            "200 OK",
            3,
            "INVITE",
            Some(&sdp("10.0.0.100", 50000, "recvonly")),
        ),
        d.req(
            T0 + 15 * S,
            "INVITE",
            4,
            true,
            Some(&sdp("203.0.113.10", 40000, "sendrecv")),
        ),
        d.resp(
            T0 + 15 * S + 20 * MS,
            "200 OK",
            4,
            "INVITE",
            Some(&sdp("10.0.0.100", 50000, "sendrecv")),
        ),
    ]);
    // Alice plays music on hold; the PBX sends nothing for the 10 s of the hold.
    frames.extend(rtp(ALICE_RTP, PBX_RTP, 0xA1, T0 + 3020 * MS, T0 + 25 * S));
    frames.extend(
        Rtp {
            src: PBX_RTP,
            dst: ALICE_RTP,
            ssrc: 0xB1,
            spans: vec![
                (T0 + 3030 * MS, T0 + 5 * S),
                (T0 + 15 * S + 30 * MS, T0 + 25 * S),
            ],
            marker_after_gaps: false,
            cn_before_gaps: false,
        }
        .frames(),
    );
    let doc = analyze(frames);
    let call = only_call(&doc);
    assert_fields(
        call,
        json!({
            "reinvites": 2, "problems": [], "answer": ts(T0 + 3 * S),
            "events": [
                {"time": ts(T0 + 5 * S), "kind": "hold", "by": "caller"},
                {"time": ts(T0 + 15 * S), "kind": "resume", "by": "caller"},
            ],
        }),
    );
}

fn one_way_audio_and_late_rtp() {
    // Only alice's audio reaches the PBX: one-way audio towards alice.
    let d = Dialog::new("one-way");
    let mut frames = answered_call(&d, &sdp("203.0.113.10", 40000, "sendrecv"), T0 + 20 * S);
    frames.extend(rtp(ALICE_RTP, PBX_RTP, 0xA1, T0 + 3020 * MS, T0 + 20 * S));
    let doc = analyze(frames);
    assert_eq!(
        problems(only_call(&doc)),
        vec![problem("one_way_audio", "callee_to_caller", T0 + 3 * S)]
    );
    // The PBX's audio starts 4 s after the answer (2 s allowed).
    let late = || {
        let d = Dialog::new("late");
        let mut f = answered_call(&d, &sdp("203.0.113.10", 40000, "sendrecv"), T0 + 20 * S);
        f.extend(rtp(ALICE_RTP, PBX_RTP, 0xA1, T0 + 3020 * MS, T0 + 20 * S));
        f.extend(rtp(PBX_RTP, ALICE_RTP, 0xB1, T0 + 7 * S, T0 + 20 * S));
        f.sort_by_key(|f| f.0);
        f
    };
    let doc = analyze(late());
    assert_eq!(
        problems(only_call(&doc)),
        vec![problem("no_rtp", "callee_to_caller", T0 + 3 * S)]
    );
    // With --no-rtp-s 5 the same call has no problem.
    let dir = tempfile::tempdir().expect("tmp");
    let path = write_pcap(dir.path(), "late.pcap", 1, &late());
    let doc = analyze_json(&[&path], &["--no-rtp-s", "5"]);
    assert_eq!(problems(only_call(&doc)), vec![]);
}

fn rtp_stopping_after_20_s() {
    let d = Dialog::new("stopped");
    let mut frames = answered_call(&d, &sdp("203.0.113.10", 40000, "sendrecv"), T0 + 43 * S);
    frames.extend(rtp(ALICE_RTP, PBX_RTP, 0xA1, T0 + 3 * S, T0 + 43 * S));
    // The PBX's RTP runs 20 s from the answer and stops: its last packet is at +23 s - 20 ms.
    frames.extend(rtp(PBX_RTP, ALICE_RTP, 0xB1, T0 + 3 * S, T0 + 23 * S));
    let doc = analyze(frames);
    assert_eq!(
        problems(only_call(&doc)),
        vec![problem(
            "rtp_stopped",
            "callee_to_caller",
            T0 + 23 * S - 20 * MS
        )]
    );
}

fn dtx_call(marker: bool, cn: bool) -> Value {
    let d = Dialog::new("dtx");
    let mut frames = answered_call(&d, &sdp("203.0.113.10", 40000, "sendrecv"), T0 + 30 * S);
    frames.extend(rtp(ALICE_RTP, PBX_RTP, 0xA1, T0 + 3 * S, T0 + 30 * S));
    // The PBX's side is silent from +8 s to +18 s (10 s), then talks again.
    frames.extend(
        Rtp {
            src: PBX_RTP,
            dst: ALICE_RTP,
            ssrc: 0xB1,
            spans: vec![(T0 + 3 * S, T0 + 8 * S), (T0 + 18 * S, T0 + 30 * S)],
            marker_after_gaps: marker,
            cn_before_gaps: cn,
        }
        .frames(),
    );
    analyze(frames)
}

fn dtx_silence_is_not_a_stop_but_the_same_pause_without_marker_is() {
    // Talkspurt after silence with the marker bit (RFC 3551 §4.1): DTX.
    assert_eq!(problems(only_call(&dtx_call(true, false))), vec![]);
    // Silence announced by a comfort-noise packet (RFC 3389): DTX.
    assert_eq!(problems(only_call(&dtx_call(false, true))), vec![]);
    // The same pause with neither: the RTP stopped.
    assert_eq!(
        problems(only_call(&dtx_call(false, false))),
        vec![problem(
            "rtp_stopped",
            "callee_to_caller",
            T0 + 8 * S - 20 * MS
        )]
    );
}

fn nat_address_mismatch() {
    // Alice is behind NAT: her SDP names her private address, her RTP comes from the NAT's.
    let d = Dialog::new("nat");
    let mut frames = answered_call(&d, &sdp("192.168.1.10", 4000, "sendrecv"), T0 + 13 * S);
    frames.extend(rtp(
        "203.0.113.10:31000",
        PBX_RTP,
        0xA1,
        T0 + 3020 * MS,
        T0 + 13 * S,
    ));
    // The PBX latches onto the address the RTP came from (symmetric RTP).
    frames.extend(rtp(
        PBX_RTP,
        "203.0.113.10:31000",
        0xB1,
        T0 + 3030 * MS,
        T0 + 13 * S,
    ));
    let doc = analyze(frames);
    let call = only_call(&doc);
    assert_eq!(
        problems(call),
        vec![problem(
            "media_address_mismatch",
            "caller_to_callee",
            T0 + 3020 * MS
        )]
    );
    let dirs: Vec<&str> = call["media"]
        .as_array()
        .expect("media")
        .iter()
        .map(|m| m["direction"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(dirs, vec!["caller_to_callee", "callee_to_caller"]);
}

fn replay_ships_the_same_call_record() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut frames = normal_call_frames();
    frames.sort_by_key(|f| f.0);
    let path = write_pcap(dir.path(), "normal.pcap", 1, &frames);
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "[calls]\nlocal_nets = [\"10.0.0.0/24\"]\n[privacy]\npseudonymize = false\n",
    )
    .expect("config");
    let out = dir.path().join("records.jsonl");
    let cfg = config.display().to_string();
    let sink = format!("file:{}", out.display());
    let file = path.display().to_string();
    let run = run_agent(&[
        "replay",
        "--config",
        &cfg,
        "--sink",
        &sink,
        "--agent-id",
        "test-agent",
        &file,
    ]);
    assert_eq!(run.status, 0, "replay failed: {}", run.stderr);
    let text = std::fs::read_to_string(&out).expect("records");
    let records: Vec<voqa_wire::AgentRecord> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    let calls: Vec<&voqa_wire::CallRecord> = records
        .iter()
        .filter_map(|r| match r {
            voqa_wire::AgentRecord::Call(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 1, "{text}");
    let record = calls[0];
    assert_eq!(record.agent_id, "test-agent");
    assert_eq!(
        record.record_id(),
        format!("test-agent/call/{}", record.call_key)
    );
    // The record's streams are those of the stream reports.
    let stream_ids: std::collections::BTreeSet<&str> = records
        .iter()
        .filter_map(|r| match r {
            voqa_wire::AgentRecord::Stream(s) => Some(s.stream_id.as_str()),
            _ => None,
        })
        .collect();
    for m in &record.call.media {
        assert!(stream_ids.contains(m.stream_id.as_str()), "{m:?}");
    }
    // Everything else equals the analyze call object, but the stream indexes and the window.
    let doc = analyze_json(&[&path], &LOCAL);
    let mut offline: voqa_wire::CallSummary =
        serde_json::from_value(only_call(&doc).clone()).expect("call object");
    let mut live = record.call.clone();
    offline.streams.clear();
    for c in [&mut offline, &mut live] {
        c.worst_window_start = None;
        c.worst_window_end = None;
    }
    assert_eq!(live, offline);
}

/// `analyze --threads 4` shards the RTP flows by their addresses, but every shard reads every
/// SIP message and the document joins each call to the streams of all shards by Call-ID: the
/// call records (media, MOS, problems) must be those of `--threads 1`. Ten calls with their own
/// media ports, so that the two directions of some calls land in different shards (asserted
/// with the agent's own shard function): answered with media both ways, one-way audio, RTP
/// stopping, a late direction, and a busy call.
fn threads_1_and_4_give_the_same_call_records() {
    let mut frames = Vec::new();
    let mut flows = Vec::new();
    for i in 0..10u16 {
        let d = Dialog::new(&format!("shard-{i}@203.0.113.10"));
        let start = T0 + i64::from(i) * 100 * MS;
        let (alice_port, pbx_port) = (40000 + 2 * i, 50000 + 2 * i);
        let alice_rtp = format!("203.0.113.10:{alice_port}");
        let pbx_rtp = format!("10.0.0.100:{pbx_port}");
        frames.push(d.req(
            start,
            "INVITE",
            1,
            false,
            Some(&sdp("203.0.113.10", alice_port, "sendrecv")),
        ));
        frames.push(d.resp(start + 100 * MS, "180 Ringing", 1, "INVITE", None));
        if i == 9 {
            frames.push(d.resp(start + 2 * S, "486 Busy Here", 1, "INVITE", None));
            frames.push(d.req(start + 2 * S + 10 * MS, "ACK", 1, true, None));
            continue;
        }
        frames.push(d.resp(
            start + 3 * S,
            "200 OK",
            1,
            "INVITE",
            Some(&sdp("10.0.0.100", pbx_port, "sendrecv")),
        ));
        frames.push(d.req(start + 3 * S + 10 * MS, "ACK", 1, true, None));
        let (media, end) = (start + 3 * S + 20 * MS, start + 20 * S);
        let (a_ssrc, p_ssrc) = (0xA000 + u32::from(i), 0xB000 + u32::from(i));
        frames.extend(rtp(&alice_rtp, &pbx_rtp, a_ssrc, media, end));
        match i % 4 {
            // One-way audio: nothing from the PBX.
            1 => {}
            // The PBX's RTP stops 8 s into the call.
            2 => frames.extend(rtp(&pbx_rtp, &alice_rtp, p_ssrc, media, media + 8 * S)),
            // The PBX's RTP starts 5 s late.
            3 => frames.extend(rtp(&pbx_rtp, &alice_rtp, p_ssrc, media + 5 * S, end)),
            _ => frames.extend(rtp(&pbx_rtp, &alice_rtp, p_ssrc, media, end)),
        }
        frames.push(d.req(end, "BYE", 2, true, None));
        frames.push(d.resp(end + 10 * MS, "200 OK", 2, "BYE", None));
        flows.push((addr(&alice_rtp), addr(&pbx_rtp)));
    }
    let split = flows
        .iter()
        .filter(|(a, p)| {
            voqa_agent::streams::flow_shard(a, p, 4) != voqa_agent::streams::flow_shard(p, a, 4)
        })
        .count();
    assert!(
        split > 0,
        "no call has its two directions in different shards: the test would prove nothing"
    );
    frames.sort_by_key(|f| f.0);
    let dir = tempfile::tempdir().expect("tmp");
    let path = write_pcap(dir.path(), "shards.pcap", 1, &frames);
    let one = analyze_json(&[&path], &[LOCAL[0], LOCAL[1], "--threads", "1"]);
    let four = analyze_json(&[&path], &[LOCAL[0], LOCAL[1], "--threads", "4"]);
    let calls = one["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 10, "{one:#}");
    // The single-threaded records are the reference; they hold what the calls were built with.
    let media: Vec<usize> = calls
        .iter()
        .map(|c| c["media"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(
        media,
        vec![2, 1, 2, 2, 2, 1, 2, 2, 2, 0],
        "streams per call"
    );
    let kinds: Vec<Vec<String>> = calls
        .iter()
        .map(|c| problems(c).into_iter().map(|p| p.0).collect())
        .collect();
    assert_eq!(kinds[1], vec!["one_way_audio"], "{:#}", calls[1]);
    assert_eq!(kinds[2], vec!["rtp_stopped"], "{:#}", calls[2]);
    assert_eq!(kinds[3], vec!["no_rtp"], "{:#}", calls[3]);
    assert!(kinds[0].is_empty() && kinds[4].is_empty(), "{kinds:?}");
    assert_eq!(calls[9]["status"], 486);
    assert_eq!(one["streams"].as_array().map(Vec::len), Some(16));
    // Field by field: every call object, the streams they index and the dialog counters.
    assert_eq!(
        four["calls"], one["calls"],
        "calls differ between 1 and 4 threads"
    );
    assert_eq!(four["streams"], one["streams"]);
    assert_eq!(four["dialogs"], one["dialogs"]);
    assert_eq!(
        one["dialogs"],
        json!({"calls": 10, "open": 0, "evicted": 0, "timed_out": 0, "forgotten": 0,
               "retransmissions": 0, "non_call_messages": 0}),
        "{one:#}"
    );
    // The table states the same counters above its calls.
    let file = path.display().to_string();
    let table = run_agent(&["analyze", "--format", "table", LOCAL[0], LOCAL[1], &file]);
    assert_eq!(table.status, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains(
            "SIP dialogs: 10 calls, 0 open at the end, 0 evicted, 0 timed out, 0 forgotten, \
             0 retransmissions; 0 messages of no call"
        ),
        "{}",
        table.stdout
    );
}
