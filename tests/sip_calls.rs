//! End-to-end through `voqa-agent analyze`: SIP calls as a PBX makes them (digest challenges,
//! re-INVITEs, busy, CANCEL), registrations that are not calls, SRTP announced by SDP, video
//! streams and codec-name spelling. The captures are built here; every expected value is the
//! time or code the test itself put on the wire.
//!
//! The real captures of `../shared/real-captures` are checked too when present (skipped
//! otherwise, unless VOQA_REQUIRE_SAMPLES is set): their calls were read with
//! `tshark -n -r FILE -Y sip -T fields -e frame.time_epoch -e sip.Call-ID -e sip.CSeq
//! -e sip.Status-Code -e sip.Method` and `tshark -n -q -r FILE -z sip,stat`.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use support::*;
use voqa_agent::decode::build::{LinkSpec, ReportBlockSpec, rtcp_rr, rtcp_sr, udp_frame};
use voqa_wire::Timestamp;

fn main() {
    let trials = trials![
        asterisk_401_challenge_then_answered_call_with_rtp,
        proxy_407_challenge_with_retransmitted_200_is_answered_once,
        registrations_and_options_only_are_not_calls,
        reinvite_to_hold_with_sendonly_keeps_status_answer_and_streams,
        busy_486_ends_the_call_at_the_response,
        cancel_before_answer_ends_at_the_cancel_with_487,
        table_shows_status_answer_and_end,
        clear_rtcp_gives_the_round_trip_as_control,
        srtp_streams_are_measured_flagged_and_their_rtcp_gives_no_round_trip,
        srtp_is_shown_in_the_table,
        video_announced_by_sdp_is_video_without_mos,
        unsignalled_video_by_static_type_or_90khz_clock_has_no_mos,
        codec_names_are_spelled_one_way_whatever_the_sdp_case,
        sngrep_registrations_and_challenged_calls,
        heplify_answered_and_ringing_calls_beside_registrations,
        heplify_websocket_capture_udp_legs_are_two_answered_calls,
    ];
    support::harness::main(file!(), trials)
}

const T0: i64 = 1_795_000_000_000_000_000;
const MS: i64 = 1_000_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// The JSON form of a capture time, as the agent prints it.
fn ts(ns: i64) -> Value {
    serde_json::to_value(Timestamp::from_ns(ns)).expect("timestamp")
}

const ALICE_SIP: &str = "10.0.0.1:5060";
const PBX_SIP: &str = "10.0.0.100:5060";
const ALICE_RTP: &str = "10.0.0.1:40000";
const PBX_RTP: &str = "10.0.0.100:50000";

/// One `m=` section of an SDP body.
struct M<'a> {
    kind: &'a str,
    port: u16,
    proto: &'a str,
    maps: &'a [(u8, &'a str)],
    attrs: &'a [&'a str],
}

fn audio<'a>(port: u16, maps: &'a [(u8, &'a str)]) -> M<'a> {
    M {
        kind: "audio",
        port,
        proto: "RTP/AVP",
        maps,
        attrs: &["sendrecv"],
    }
}

fn sdp(ip: &str, media: &[M<'_>]) -> String {
    let mut s = format!("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n");
    for m in media {
        let fmts: Vec<String> = m.maps.iter().map(|(pt, _)| pt.to_string()).collect();
        s.push_str(&format!(
            "m={} {} {} {}\r\n",
            m.kind,
            m.port,
            m.proto,
            fmts.join(" ")
        ));
        for (pt, map) in m.maps {
            s.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
        }
        for a in m.attrs {
            s.push_str(&format!("a={a}\r\n"));
        }
    }
    s
}

/// A dialog between alice (the caller) and the PBX; builds its messages as UDP frames.
struct Dialog {
    call_id: String,
    alice: SocketAddr,
    pbx: SocketAddr,
}

impl Dialog {
    fn new(call_id: &str) -> Dialog {
        Dialog {
            call_id: call_id.to_owned(),
            alice: addr(ALICE_SIP),
            pbx: addr(PBX_SIP),
        }
    }

    fn text(
        &self,
        start: &str,
        cseq: u32,
        method: &str,
        to_tag: bool,
        body: Option<&str>,
    ) -> String {
        let body_headers = match body {
            Some(b) => format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n",
                b.len()
            ),
            None => "Content-Length: 0\r\n".to_owned(),
        };
        format!(
            "{start}\r\nVia: SIP/2.0/UDP {alice};branch=z9hG4bK-{cseq}-{method}\r\nMax-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@pbx.example>;tag=a-1\r\nTo: <sip:bob@pbx.example>{tag}\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:alice@{alice}>\r\n\
User-Agent: sip_calls test\r\n{body_headers}\r\n{body}",
            alice = self.alice,
            tag = if to_tag { ";tag=as-9" } else { "" },
            call_id = self.call_id,
            body = body.unwrap_or(""),
        )
    }

    /// A request from alice to the PBX.
    fn req(
        &self,
        at: i64,
        method: &str,
        cseq: u32,
        to_tag: bool,
        body: Option<&str>,
    ) -> (i64, Vec<u8>) {
        let text = self.text(
            &format!("{method} sip:bob@pbx.example SIP/2.0"),
            cseq,
            method,
            to_tag,
            body,
        );
        (
            at,
            sip_frame(&LinkSpec::Ethernet, self.alice, self.pbx, &text),
        )
    }

    /// A response from the PBX to alice's request `method` with CSeq `cseq`.
    fn resp(
        &self,
        at: i64,
        status: &str,
        cseq: u32,
        method: &str,
        body: Option<&str>,
    ) -> (i64, Vec<u8>) {
        let text = self.text(&format!("SIP/2.0 {status}"), cseq, method, true, body);
        (
            at,
            sip_frame(&LinkSpec::Ethernet, self.pbx, self.alice, &text),
        )
    }
}

/// `n` RTP packets every 20 ms from `start_ns`.
fn rtp(src: &str, dst: &str, ssrc: u32, pt: u8, n: usize, start_ns: i64) -> Vec<(i64, Vec<u8>)> {
    let pkts: Vec<Pkt> = (0..n)
        .map(|i| Pkt {
            at_ns: start_ns + i as i64 * 20 * MS,
            src: addr(src),
            dst: addr(dst),
            header: rtp_header(pt, 100 + i as u16, 8000 + 160 * i as u32, ssrc),
            payload_len: 160,
        })
        .collect();
    rtp_frames(&LinkSpec::Ethernet, &pkts)
}

fn analyze(frames: Vec<(i64, Vec<u8>)>) -> Value {
    let dir = tempfile::tempdir().expect("tmp");
    let mut frames = frames;
    frames.sort_by_key(|f| f.0);
    let path = write_pcap(dir.path(), "c.pcap", 1, &frames);
    analyze_json(&[&path], &[])
}

fn calls(doc: &Value) -> &Vec<Value> {
    doc["calls"].as_array().expect("calls array")
}

fn only_call(doc: &Value) -> &Value {
    let calls = calls(doc);
    assert_eq!(calls.len(), 1, "{doc:#}");
    &calls[0]
}

/// Asserts status, setup, answer and end of a call (times as ns, None for null).
fn assert_call(
    call: &Value,
    status: Option<u64>,
    setup: Option<i64>,
    answer: Option<i64>,
    end: Option<i64>,
) {
    let t = |v: Option<i64>| v.map_or(Value::Null, ts);
    assert_eq!(call["status"].as_u64(), status, "status of {call}");
    assert_eq!(call["setup"], t(setup), "setup of {call}");
    assert_eq!(call["answer"], t(answer), "answer of {call}");
    assert_eq!(call["end"], t(end), "end of {call}");
}

fn asterisk_401_challenge_then_answered_call_with_rtp() {
    let d = Dialog::new("ast-401@10.0.0.1");
    let offer = sdp(
        "10.0.0.1",
        &[audio(
            40000,
            &[(8, "PCMA/8000"), (101, "telephone-event/8000")],
        )],
    );
    let answer = sdp(
        "10.0.0.100",
        &[audio(
            50000,
            &[(8, "PCMA/8000"), (101, "telephone-event/8000")],
        )],
    );
    let mut frames = vec![
        d.req(T0, "INVITE", 1, false, Some(&offer)),
        d.resp(T0 + 20 * MS, "401 Unauthorized", 1, "INVITE", None),
        d.req(T0 + 25 * MS, "ACK", 1, true, None),
        d.req(T0 + 40 * MS, "INVITE", 2, false, Some(&offer)),
        d.resp(T0 + 50 * MS, "100 Trying", 2, "INVITE", None),
        d.resp(T0 + 60 * MS, "180 Ringing", 2, "INVITE", None),
        d.resp(T0 + 2000 * MS, "200 OK", 2, "INVITE", Some(&answer)),
        d.req(T0 + 2010 * MS, "ACK", 2, true, None),
        d.req(T0 + 5500 * MS, "BYE", 3, true, None),
        d.resp(T0 + 5510 * MS, "200 OK", 3, "BYE", None),
    ];
    frames.extend(rtp(ALICE_RTP, PBX_RTP, 0xA1, 8, 150, T0 + 2020 * MS));
    frames.extend(rtp(PBX_RTP, ALICE_RTP, 0xB1, 8, 150, T0 + 2030 * MS));
    let doc = analyze(frames);
    let call = only_call(&doc);
    assert_eq!(call["call_id"], "ast-401@10.0.0.1");
    assert_eq!(
        (&call["from"], &call["to"]),
        (&Value::from("alice"), &Value::from("bob"))
    );
    assert_call(
        call,
        Some(200),
        Some(T0),
        Some(T0 + 2000 * MS),
        Some(T0 + 5500 * MS),
    );
    assert_eq!(call["streams"].as_array().map(Vec::len), Some(2), "{doc:#}");
    for s in doc["streams"].as_array().expect("streams") {
        assert_eq!(s["call_id"], "ast-401@10.0.0.1");
        assert_eq!(
            (&s["media"], &s["srtp"]),
            (&Value::from("audio"), &Value::from(false))
        );
        assert_eq!(s["codec"], "PCMA");
        assert_eq!(s["packets"], 150);
    }
}

fn proxy_407_challenge_with_retransmitted_200_is_answered_once() {
    let d = Dialog::new("proxy-407");
    let offer = sdp("10.0.0.1", &[audio(40000, &[(0, "PCMU/8000")])]);
    let frames = vec![
        d.req(T0, "INVITE", 10, false, Some(&offer)),
        // The first INVITE is retransmitted before the challenge arrives.
        d.req(T0 + 500 * MS, "INVITE", 10, false, Some(&offer)),
        d.resp(
            T0 + 520 * MS,
            "407 Proxy Authentication Required",
            10,
            "INVITE",
            None,
        ),
        d.req(T0 + 525 * MS, "ACK", 10, true, None),
        d.req(T0 + 600 * MS, "INVITE", 11, false, Some(&offer)),
        d.resp(T0 + 3000 * MS, "200 OK", 11, "INVITE", None),
        // The ACK was lost: the 200 is retransmitted; answer stays at the first one.
        d.resp(T0 + 3500 * MS, "200 OK", 11, "INVITE", None),
        d.req(T0 + 3510 * MS, "ACK", 11, true, None),
        d.req(T0 + 9000 * MS, "BYE", 12, true, None),
        d.resp(T0 + 9010 * MS, "200 OK", 12, "BYE", None),
    ];
    let doc = analyze(frames);
    assert_call(
        only_call(&doc),
        Some(200),
        Some(T0),
        Some(T0 + 3000 * MS),
        Some(T0 + 9000 * MS),
    );
}

fn registrations_and_options_only_are_not_calls() {
    let d = Dialog::new("reg-1@10.0.0.1");
    let o = Dialog::new("options-keepalive");
    let s = Dialog::new("presence-sub");
    let frames = vec![
        d.req(T0, "REGISTER", 1, false, None),
        d.resp(T0 + 10 * MS, "401 Unauthorized", 1, "REGISTER", None),
        d.req(T0 + 20 * MS, "REGISTER", 2, false, None),
        d.resp(T0 + 30 * MS, "200 OK", 2, "REGISTER", None),
        o.req(T0 + 40 * MS, "OPTIONS", 1, false, None),
        o.resp(T0 + 50 * MS, "200 OK", 1, "OPTIONS", None),
        s.req(T0 + 60 * MS, "SUBSCRIBE", 1, false, None),
        s.resp(T0 + 70 * MS, "202 Accepted", 1, "SUBSCRIBE", None),
        s.req(T0 + 80 * MS, "NOTIFY", 1, true, None),
        s.req(T0 + 90 * MS, "MESSAGE", 2, true, None),
        d.req(T0 + 3_600_000 * MS, "REGISTER", 3, false, None),
        d.resp(T0 + 3_600_010 * MS, "200 OK", 3, "REGISTER", None),
    ];
    let dir = tempfile::tempdir().expect("tmp");
    let path = write_pcap(dir.path(), "reg.pcap", 1, &frames);
    let doc = analyze_json(&[&path], &[]);
    assert_eq!(calls(&doc).len(), 0, "{doc:#}");
    let run = run_agent(&["analyze", "--format", "table", path.to_str().expect("utf8")]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("Calls:"), "{}", run.stdout);
}

fn reinvite_to_hold_with_sendonly_keeps_status_answer_and_streams() {
    let d = Dialog::new("hold-call");
    let offer = sdp("10.0.0.1", &[audio(40000, &[(0, "PCMU/8000")])]);
    let answer = sdp("10.0.0.100", &[audio(50000, &[(0, "PCMU/8000")])]);
    let hold = sdp(
        "10.0.0.1",
        &[M {
            attrs: &["sendonly"],
            ..audio(40000, &[(0, "PCMU/8000")])
        }],
    );
    let held = sdp(
        "10.0.0.100",
        &[M {
            attrs: &["recvonly"],
            ..audio(50000, &[(0, "PCMU/8000")])
        }],
    );
    let mut frames = vec![
        d.req(T0, "INVITE", 1, false, Some(&offer)),
        d.resp(T0 + 1000 * MS, "200 OK", 1, "INVITE", Some(&answer)),
        d.req(T0 + 1010 * MS, "ACK", 1, true, None),
        // Hold at 4 s: alice keeps sending (music on hold), the PBX stops.
        d.req(T0 + 4000 * MS, "INVITE", 2, true, Some(&hold)),
        d.resp(T0 + 4050 * MS, "200 OK", 2, "INVITE", Some(&held)),
        d.req(T0 + 4060 * MS, "ACK", 2, true, None),
        // Resume at 6 s.
        d.req(T0 + 6000 * MS, "INVITE", 3, true, Some(&offer)),
        d.resp(T0 + 6050 * MS, "200 OK", 3, "INVITE", Some(&answer)),
        d.req(T0 + 6060 * MS, "ACK", 3, true, None),
        d.req(T0 + 8000 * MS, "BYE", 4, true, None),
        d.resp(T0 + 8010 * MS, "200 OK", 4, "BYE", None),
    ];
    // Alice sends throughout; the PBX before and after the hold (one sequence, a 2 s gap).
    frames.extend(rtp(ALICE_RTP, PBX_RTP, 0xA2, 0, 345, T0 + 1020 * MS));
    let before: Vec<(i64, Vec<u8>)> = rtp(PBX_RTP, ALICE_RTP, 0xB2, 0, 345, T0 + 1030 * MS)
        .into_iter()
        .filter(|(at, _)| *at < T0 + 4000 * MS || *at > T0 + 6050 * MS)
        .collect();
    let pbx_packets = before.len() as u64;
    frames.extend(before);
    let doc = analyze(frames);
    let call = only_call(&doc);
    assert_call(
        call,
        Some(200),
        Some(T0),
        Some(T0 + 1000 * MS),
        Some(T0 + 8000 * MS),
    );
    assert_eq!(call["streams"].as_array().map(Vec::len), Some(2), "{doc:#}");
    let a = find_stream(&doc, ALICE_RTP, PBX_RTP);
    let b = find_stream(&doc, PBX_RTP, ALICE_RTP);
    assert_eq!((a.len(), b.len()), (1, 1), "{doc:#}");
    assert_eq!(a[0]["packets"], 345);
    assert_eq!(b[0]["packets"].as_u64(), Some(pbx_packets));
}

fn busy_486_ends_the_call_at_the_response() {
    let d = Dialog::new("busy-call");
    let offer = sdp("10.0.0.1", &[audio(40000, &[(0, "PCMU/8000")])]);
    let frames = vec![
        d.req(T0, "INVITE", 1, false, Some(&offer)),
        d.resp(T0 + 10 * MS, "100 Trying", 1, "INVITE", None),
        d.resp(T0 + 700 * MS, "486 Busy Here", 1, "INVITE", None),
        d.req(T0 + 705 * MS, "ACK", 1, true, None),
        // The ACK was lost: the 486 is retransmitted; the end stays at the first.
        d.resp(T0 + 1200 * MS, "486 Busy Here", 1, "INVITE", None),
        d.req(T0 + 1205 * MS, "ACK", 1, true, None),
    ];
    let doc = analyze(frames);
    assert_call(
        only_call(&doc),
        Some(486),
        Some(T0),
        None,
        Some(T0 + 700 * MS),
    );
}

fn cancel_before_answer_ends_at_the_cancel_with_487() {
    let d = Dialog::new("cancelled-call");
    let offer = sdp("10.0.0.1", &[audio(40000, &[(0, "PCMU/8000")])]);
    let frames = vec![
        d.req(T0, "INVITE", 1, false, Some(&offer)),
        d.resp(
            T0 + 30 * MS,
            "407 Proxy Authentication Required",
            1,
            "INVITE",
            None,
        ),
        d.req(T0 + 35 * MS, "ACK", 1, true, None),
        d.req(T0 + 50 * MS, "INVITE", 2, false, Some(&offer)),
        d.resp(T0 + 80 * MS, "180 Ringing", 2, "INVITE", None),
        d.req(T0 + 12_000 * MS, "CANCEL", 2, false, None),
        d.resp(T0 + 12_010 * MS, "200 OK", 2, "CANCEL", None),
        d.resp(
            T0 + 12_020 * MS,
            "487 Request Terminated",
            2,
            "INVITE",
            None,
        ),
        d.req(T0 + 12_025 * MS, "ACK", 2, true, None),
    ];
    let doc = analyze(frames);
    assert_call(
        only_call(&doc),
        Some(487),
        Some(T0),
        None,
        Some(T0 + 12_000 * MS),
    );
}

fn table_shows_status_answer_and_end() {
    let d = Dialog::new("table-call");
    let frames = vec![
        d.req(T0, "INVITE", 1, false, None),
        d.resp(T0 + 20 * MS, "401 Unauthorized", 1, "INVITE", None),
        d.req(T0 + 40 * MS, "INVITE", 2, false, None),
        d.resp(T0 + 1000 * MS, "200 OK", 2, "INVITE", None),
        d.req(T0 + 3000 * MS, "BYE", 3, true, None),
    ];
    let dir = tempfile::tempdir().expect("tmp");
    let path = write_pcap(dir.path(), "t.pcap", 1, &frames);
    let run = run_agent(&[
        "analyze",
        "--format",
        "table",
        "--no-pseudonymize",
        path.to_str().expect("utf8"),
    ]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("table-call"))
        .unwrap_or_else(|| panic!("no call line: {}", run.stdout));
    let t = |ns: i64| Timestamp::from_ns(ns).to_string();
    assert!(line.contains("status 200"), "{line}");
    assert!(line.contains(&format!("setup {}", t(T0))), "{line}");
    assert!(
        line.contains(&format!("answer {}", t(T0 + 1000 * MS))),
        "{line}"
    );
    assert!(
        line.contains(&format!("end {}", t(T0 + 3000 * MS))),
        "{line}"
    );
}

// ---- SRTP ----

/// A call whose media is announced with `proto`, RTP both ways, and RTCP between the RTCP
/// ports: an SR from alice at 3 s and, 40 ms later, an RR from the PBX quoting it with DLSR 0
/// (a 40 ms round trip, were the RTCP clear and believed).
fn call_with_rtcp(proto: &'static str, rtcp_mux: bool) -> Value {
    let d = Dialog::new("media-call");
    let attrs: &'static [&'static str] = if rtcp_mux {
        &["sendrecv", "rtcp-mux"]
    } else {
        &["sendrecv"]
    };
    let m = |port| M {
        proto,
        attrs,
        ..audio(port, &[(0, "PCMU/8000")])
    };
    let offer = sdp("10.0.0.1", &[m(40000)]);
    let answer = sdp("10.0.0.100", &[m(50000)]);
    let mut frames = vec![
        d.req(T0, "INVITE", 1, false, Some(&offer)),
        d.resp(T0 + 500 * MS, "200 OK", 1, "INVITE", Some(&answer)),
        d.req(T0 + 510 * MS, "ACK", 1, true, None),
    ];
    frames.extend(rtp(ALICE_RTP, PBX_RTP, 0xA3, 0, 250, T0 + 1000 * MS));
    frames.extend(rtp(PBX_RTP, ALICE_RTP, 0xB3, 0, 250, T0 + 1010 * MS));
    let (a_rtcp, b_rtcp) = if rtcp_mux {
        (addr(ALICE_RTP), addr(PBX_RTP))
    } else {
        (addr("10.0.0.1:40001"), addr("10.0.0.100:50001"))
    };
    let ntp: u64 = 0xE000_0000_8000_0000;
    let lsr = (ntp >> 16) as u32;
    let sr = rtcp_sr(0xA3, ntp, 8000, 100, 16000, &[]);
    let rr = rtcp_rr(
        0xB3,
        &[ReportBlockSpec {
            ssrc: 0xA3,
            fraction_lost: 0,
            cumulative_lost: 0,
            ext_highest_seq: 200,
            jitter: 0,
            lsr,
            dlsr: 0,
        }],
    );
    frames.push((
        T0 + 3000 * MS,
        udp_frame(&LinkSpec::Ethernet, a_rtcp, b_rtcp, &sr),
    ));
    frames.push((
        T0 + 3040 * MS,
        udp_frame(&LinkSpec::Ethernet, b_rtcp, a_rtcp, &rr),
    ));
    analyze(frames)
}

fn clear_rtcp_gives_the_round_trip_as_control() {
    let doc = call_with_rtcp("RTP/AVP", false);
    let a = &find_stream(&doc, ALICE_RTP, PBX_RTP)[0];
    assert_eq!(a["srtp"], false);
    assert!(
        (a["rtt_ms"].as_f64().unwrap_or(-1.0) - 40.0).abs() < 1e-6,
        "{a}"
    );
}

fn srtp_streams_are_measured_flagged_and_their_rtcp_gives_no_round_trip() {
    for (proto, mux) in [
        ("RTP/SAVP", false),
        ("RTP/SAVPF", false),
        ("UDP/TLS/RTP/SAVPF", true),
    ] {
        let doc = call_with_rtcp(proto, mux);
        let streams = doc["streams"].as_array().expect("streams");
        assert_eq!(streams.len(), 2, "{proto}: {doc:#}");
        for s in streams {
            assert_eq!(s["srtp"], true, "{proto}: {s}");
            assert_eq!(s["packets"], 250, "{proto}: {s}");
            assert_eq!(s["lost"], 0, "{proto}: {s}");
            assert!(
                s["rtt_ms"].is_null(),
                "{proto}: SRTCP must not give an RTT: {s}"
            );
            assert_eq!(s["delay_source"], "assumed", "{proto}");
            assert!(s["mos"].as_f64().is_some(), "{proto}: {s}");
        }
    }
}

fn srtp_is_shown_in_the_table() {
    let d = Dialog::new("srtp-table");
    let m = |port| M {
        proto: "RTP/SAVP",
        ..audio(port, &[(0, "PCMU/8000")])
    };
    let mut frames = vec![
        d.req(T0, "INVITE", 1, false, Some(&sdp("10.0.0.1", &[m(40000)]))),
        d.resp(
            T0 + 500 * MS,
            "200 OK",
            1,
            "INVITE",
            Some(&sdp("10.0.0.100", &[m(50000)])),
        ),
    ];
    frames.extend(rtp(ALICE_RTP, PBX_RTP, 0xA4, 0, 50, T0 + 1000 * MS));
    frames.extend(rtp(
        "10.9.9.9:30000",
        "10.9.9.8:30002",
        0xC4,
        0,
        50,
        T0 + 1000 * MS,
    ));
    frames.sort_by_key(|f| f.0);
    let dir = tempfile::tempdir().expect("tmp");
    let path = write_pcap(dir.path(), "s.pcap", 1, &frames);
    let run = run_agent(&["analyze", "--format", "table", path.to_str().expect("utf8")]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let line_of = |src: &str| {
        run.stdout
            .lines()
            .find(|l| l.contains(src))
            .unwrap_or_else(|| panic!("no {src}: {}", run.stdout))
            .to_owned()
    };
    assert!(line_of(ALICE_RTP).contains("audio+srtp"), "{}", run.stdout);
    let clear = line_of("10.9.9.9:30000");
    assert!(
        clear.contains("audio") && !clear.contains("srtp"),
        "{clear}"
    );
}

// ---- video and codec names ----

/// `frames` video frames at 30 fps of `per_frame` packets each (1 ms apart, marker on the
/// last), 90 kHz timestamps.
fn video(
    src: &str,
    dst: &str,
    ssrc: u32,
    pt: u8,
    frames: usize,
    per_frame: usize,
    start_ns: i64,
) -> Vec<(i64, Vec<u8>)> {
    let mut pkts = Vec::new();
    let mut seq = 1000u16;
    for f in 0..frames {
        for p in 0..per_frame {
            let mut header = rtp_header(pt, seq, 90_000 + 3000 * f as u32, ssrc);
            header.marker = p + 1 == per_frame;
            pkts.push(Pkt {
                at_ns: start_ns + f as i64 * 33_333_333 + p as i64 * MS,
                src: addr(src),
                dst: addr(dst),
                header,
                payload_len: 1000,
            });
            seq = seq.wrapping_add(1);
        }
    }
    rtp_frames(&LinkSpec::Ethernet, &pkts)
}

fn video_announced_by_sdp_is_video_without_mos() {
    let d = Dialog::new("video-call");
    let media = |ip: &str, a: u16, v: u16| {
        sdp(
            ip,
            &[
                audio(a, &[(8, "PCMA/8000")]),
                M {
                    kind: "video",
                    port: v,
                    proto: "RTP/AVP",
                    maps: &[(96, "H264/90000"), (97, "rtx/90000")],
                    attrs: &["sendrecv"],
                },
            ],
        )
    };
    let mut frames = vec![
        d.req(
            T0,
            "INVITE",
            1,
            false,
            Some(&media("10.0.0.1", 40000, 40002)),
        ),
        d.resp(
            T0 + 500 * MS,
            "200 OK",
            1,
            "INVITE",
            Some(&media("10.0.0.100", 50000, 50002)),
        ),
    ];
    frames.extend(rtp(ALICE_RTP, PBX_RTP, 0xA5, 8, 150, T0 + 1000 * MS));
    frames.extend(video(
        "10.0.0.1:40002",
        "10.0.0.100:50002",
        0xA6,
        96,
        90,
        3,
        T0 + 1000 * MS,
    ));
    // A dynamic type without a known name in the video section (RTX) is video too.
    frames.extend(video(
        "10.0.0.100:50002",
        "10.0.0.1:40002",
        0xB6,
        97,
        60,
        2,
        T0 + 1000 * MS,
    ));
    let doc = analyze(frames);
    let a = &find_stream(&doc, ALICE_RTP, PBX_RTP)[0];
    assert_eq!(
        (&a["media"], &a["codec"]),
        (&Value::from("audio"), &Value::from("PCMA"))
    );
    assert!(a["mos"].as_f64().is_some(), "{a}");
    let v = &find_stream(&doc, "10.0.0.1:40002", "10.0.0.100:50002")[0];
    assert_eq!(v["media"], "video", "{v}");
    assert_eq!(v["codec"], "H264");
    assert_eq!(v["clock_rate"], 90000);
    assert_eq!(
        (v["packets"].as_u64(), v["lost"].as_u64()),
        (Some(270), Some(0))
    );
    assert!(v["mos"].is_null() && v["r_factor"].is_null(), "{v}");
    assert_eq!(v["call_id"], "video-call");
    let flags = v["flags"].as_array().expect("flags");
    assert!(!flags.iter().any(|f| f == "codec_values_unknown"), "{v}");
    let r = &find_stream(&doc, "10.0.0.100:50002", "10.0.0.1:40002")[0];
    assert_eq!(
        (&r["media"], &r["codec"]),
        (&Value::from("video"), &Value::from("rtx"))
    );
    assert!(r["mos"].is_null(), "{r}");
    assert_eq!(only_call(&doc)["streams"].as_array().map(Vec::len), Some(3));
}

fn unsignalled_video_by_static_type_or_90khz_clock_has_no_mos() {
    let mut frames = video("10.1.0.1:6000", "10.1.0.2:6000", 0x34, 34, 60, 2, T0);
    frames.extend(video("10.1.0.1:6002", "10.1.0.2:6002", 0x60, 96, 60, 3, T0));
    let doc = analyze(frames);
    let h263 = &find_stream(&doc, "10.1.0.1:6000", "10.1.0.2:6000")[0];
    assert_eq!(
        (&h263["media"], &h263["codec"]),
        (&Value::from("video"), &Value::from("H263"))
    );
    assert!(h263["mos"].is_null(), "{h263}");
    let dynamic = &find_stream(&doc, "10.1.0.1:6002", "10.1.0.2:6002")[0];
    assert_eq!(dynamic["media"], "video", "{dynamic}");
    assert_eq!(dynamic["clock_rate"], 90000, "{dynamic}");
    assert!(dynamic["mos"].is_null(), "{dynamic}");
}

fn codec_names_are_spelled_one_way_whatever_the_sdp_case() {
    let mut frames = Vec::new();
    for (i, (map, ssrc)) in [("pcma/8000", 1u32), ("PCMA/8000", 2), ("Pcma/8000", 3)]
        .iter()
        .enumerate()
    {
        let d = Dialog::new(&format!("case-{i}"));
        let port = 40000 + 10 * i as u16;
        let maps = [(8u8, *map)];
        frames.push(d.req(
            T0 + i as i64 * MS,
            "INVITE",
            1,
            false,
            Some(&sdp("10.0.0.1", &[audio(port, &maps)])),
        ));
        frames.extend(rtp(
            &format!("10.0.0.100:{}", 50000 + i),
            &format!("10.0.0.1:{port}"),
            *ssrc,
            8,
            50,
            T0 + 100 * MS,
        ));
    }
    // Opus is registered in lower case; an unknown name keeps its SDP spelling.
    let d = Dialog::new("opus");
    frames.push(d.req(
        T0 + 5 * MS,
        "INVITE",
        1,
        false,
        Some(&sdp(
            "10.0.0.1",
            &[
                audio(41000, &[(111, "OPUS/48000/2")]),
                audio(41002, &[(112, "X-Vendor/8000")]),
            ],
        )),
    ));
    let opus: Vec<(i64, Vec<u8>)> = (0..50)
        .map(|i| {
            let p = Pkt {
                at_ns: T0 + 100 * MS + i * 20 * MS,
                src: addr("10.0.0.100:51000"),
                dst: addr("10.0.0.1:41000"),
                header: rtp_header(111, i as u16, 960 * i as u32, 0x0F),
                payload_len: 80,
            };
            rtp_frames(&LinkSpec::Ethernet, &[p]).remove(0)
        })
        .collect();
    frames.extend(opus);
    frames.extend(rtp(
        "10.0.0.100:51002",
        "10.0.0.1:41002",
        0x0E,
        112,
        50,
        T0 + 100 * MS,
    ));
    let doc = analyze(frames);
    let codecs: Vec<(&str, &str)> = doc["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            (
                s["dst"].as_str().unwrap_or("?"),
                s["codec"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    let codec_of = |dst: &str| codecs.iter().find(|(d, _)| *d == dst).map(|(_, c)| *c);
    assert_eq!(codec_of("10.0.0.1:40000"), Some("PCMA"), "{codecs:?}");
    assert_eq!(codec_of("10.0.0.1:40010"), Some("PCMA"), "{codecs:?}");
    assert_eq!(codec_of("10.0.0.1:40020"), Some("PCMA"), "{codecs:?}");
    assert_eq!(codec_of("10.0.0.1:41000"), Some("opus"), "{codecs:?}");
    assert_eq!(codec_of("10.0.0.1:41002"), Some("X-Vendor"), "{codecs:?}");
}

// ---- real captures ----

/// `../shared/real-captures` beside the repository, or $VOQA_REAL_CAPTURES_DIR; `None` (and a
/// SKIPPED line) when absent, unless $VOQA_REQUIRE_SAMPLES is set: then it panics.
fn real_captures_dir(test: &str) -> Option<PathBuf> {
    support::real_captures_dir(test)
}

/// The capture time `s.micros` (epoch seconds as tshark prints them) in ns.
fn epoch(s: i64, micros: i64) -> i64 {
    s * 1_000_000_000 + micros * 1000
}

fn sngrep_registrations_and_challenged_calls() {
    let Some(dir) = real_captures_dir("sngrep_registrations_and_challenged_calls") else {
        return;
    };
    let doc = analyze_json(&[&dir.join("sngrep__aaa.pcap")], &[]);
    // tshark: 18 REGISTER on two Call-IDs (not calls) and four INVITE dialogs.
    let got: Vec<&str> = calls(&doc)
        .iter()
        .map(|c| c["call_id"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        got,
        vec![
            "105090259-446faf7a@192.168.1.2",
            "85216695-42dcdb1d@192.168.1.2",
            "24487391-449bf2a0@192.168.1.2",
            "11894297-4432a9f8@192.168.1.2",
        ]
    );
    let c = calls(&doc);
    // INVITE x3 (retransmitted) at 1120470049.188993, 100, CANCEL at 1120470083.308013
    // (retransmitted ten times), then 408 to the INVITE: ended by the CANCEL, status 408.
    assert_call(
        &c[0],
        Some(408),
        Some(epoch(1120470049, 188993)),
        None,
        Some(epoch(1120470083, 308013)),
    );
    // INVITE x3 from 1120470233.794463, 407, ACK, INVITE CSeq 2, 403 at 1120470268.128176.
    assert_call(
        &c[1],
        Some(403),
        Some(epoch(1120470233, 794463)),
        None,
        Some(epoch(1120470268, 128176)),
    );
    // INVITE 1120470848.528833, 407, ACK, INVITE CSeq 2, 100, 403 at 1120470900.056743.
    assert_call(
        &c[2],
        Some(403),
        Some(epoch(1120470848, 528833)),
        None,
        Some(epoch(1120470900, 56743)),
    );
    // INVITE 1120470966.443914, 407, INVITE CSeq 2, 100, 183, 480 at 1120470984.332623.
    assert_call(
        &c[3],
        Some(480),
        Some(epoch(1120470966, 443914)),
        None,
        Some(epoch(1120470984, 332623)),
    );
    // The early media of the 183 (9 PCMA packets to the PBX) belongs to the last call.
    assert_eq!(c[3]["streams"], serde_json::json!([0]), "{doc:#}");
}

fn heplify_answered_and_ringing_calls_beside_registrations() {
    let Some(dir) = real_captures_dir("heplify_answered_and_ringing_calls_beside_registrations")
    else {
        return;
    };
    let doc = analyze_json(&[&dir.join("heplify__rtp_rtcp_sip_ipv4_udp.pcap")], &[]);
    let c = calls(&doc);
    let ids: Vec<&str> = c
        .iter()
        .map(|c| c["call_id"].as_str().unwrap_or("?"))
        .collect();
    // tshark: two INVITEs (two Call-IDs), three REGISTERs on two other Call-IDs.
    assert_eq!(ids, vec!["12013223@200.57.7.195", "12015624@200.57.7.195"]);
    // INVITE 1105725482.965944, 100, 180, 200 at 1105725491.443869, ACK; no BYE captured.
    assert_call(
        &c[0],
        Some(200),
        Some(epoch(1105725482, 965944)),
        Some(epoch(1105725491, 443869)),
        None,
    );
    // INVITE 1105725507.631897, 100, 180, and the capture ends ringing.
    assert_call(&c[1], None, Some(epoch(1105725507, 631897)), None, None);
    for s in doc["streams"].as_array().expect("streams") {
        assert_eq!(
            (&s["media"], &s["srtp"]),
            (&Value::from("audio"), &Value::from(false)),
            "{s}"
        );
        assert_eq!(s["codec"], "PCMA", "{s}");
    }
}

fn heplify_websocket_capture_udp_legs_are_two_answered_calls() {
    let Some(dir) = real_captures_dir("heplify_websocket_capture_udp_legs_are_two_answered_calls")
    else {
        return;
    };
    let doc = analyze_json(&[&dir.join("heplify__sip_tcp_websocket.pcap")], &[]);
    let c = calls(&doc);
    let ids: Vec<&str> = c
        .iter()
        .map(|c| c["call_id"].as_str().unwrap_or("?"))
        .collect();
    // tshark `-Y "sip && udp"`: one OPTIONS keep-alive (not a call) and two INVITE dialogs.
    assert_eq!(
        ids,
        vec![
            "kovfhoptshgn59q712sr",
            "926ffd16-6154-1237-09ba-0270b3230128"
        ]
    );
    // The first dialog also runs over WebSocket (tshark `-Y "sip && tcp"`): INVITE CSeq 2206 at
    // 1542051165.605116, its 407, the authenticated INVITE 2207; the BYE at 1542051177.928829.
    // Over UDP alone it starts at INVITE 2207 (1542051165.662384) and its BYE is at
    // 1542051177.929060. Either view gives status 200 and the answer of the UDP 200, which
    // came 153 µs before the WebSocket copy.
    let c0 = &c[0];
    assert_eq!(c0["status"], 200, "{c0}");
    assert_eq!(c0["answer"], ts(epoch(1542051174, 592989)), "{c0}");
    let udp_only = (ts(epoch(1542051165, 662384)), ts(epoch(1542051177, 929060)));
    let with_websocket = (ts(epoch(1542051165, 605116)), ts(epoch(1542051177, 928829)));
    let got = (c0["setup"].clone(), c0["end"].clone());
    assert!(got == udp_only || got == with_websocket, "{c0}");
    // Every message of the second leg was captured twice (two hops): the copies change nothing.
    assert_call(
        &c[1],
        Some(200),
        Some(epoch(1542051165, 690467)),
        Some(epoch(1542051174, 552252)),
        Some(epoch(1542051177, 934326)),
    );
}
