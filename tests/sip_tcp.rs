//! SIP over TCP and over WebSocket, end to end through `voqa-agent analyze`.
//!
//! A capture built here carries a call whose INVITE, 200 OK, ACK and BYE go over one TCP
//! connection, cut across segments and coalesced, with a retransmission and an out-of-order
//! segment, plus G.711 RTP with a dynamic payload type that only the SDP names: the call must
//! have its Call-ID, its times and its streams, and the streams their SDP codec ("sdp", not
//! "heuristic"). Expected values come from how the capture is built (and, when tshark is
//! installed, from tshark reading the same file). The real captures in `../shared/real-captures`
//! (SIP over WebSocket; SIP over TCP partly inside IP-in-IP; SIP inside GRE/ERSPAN) are compared
//! with tshark's SIP messages and Call-IDs; those tests skip when the directory is absent.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::*;
use voqa_agent::decode::build::{LinkSpec, tcp_frame};
use voqa_agent::decode::link::linktype;

fn main() {
    let trials = trials![
        call_over_tcp_split_coalesced_retransmitted_and_reordered,
        tcp_on_a_port_that_is_not_a_sip_port_is_found_by_its_start_and_excluded_by_the_flag,
        real_sip_over_websocket_matches_tshark,
        real_sip_over_tcp_inside_ip_in_ip_matches_tshark,
        real_sip_inside_gre_erspan_matches_tshark,
    ];
    support::harness::main(file!(), trials)
}

const BASE_NS: i64 = 1_700_000_000_000_000_000;
const MS: i64 = 1_000_000;

const UAC: &str = "10.20.0.1:40001";
const UAS: &str = "10.20.0.2:5060";
const UAC_MEDIA: &str = "10.20.0.1:16000";
const UAS_MEDIA: &str = "10.20.0.2:17000";
const CALL_ID: &str = "tcp-call-1@10.20.0.1";

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const FIN_ACK: u8 = 0x11;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn ts(ns: i64) -> String {
    voqa_wire::Timestamp::from(ns).to_string()
}

fn sdp(media: SocketAddr) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
m=audio {port} RTP/AVP 97 101\r\na=rtpmap:97 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=ptime:20\r\n",
        ip = media.ip(),
        port = media.port()
    )
}

fn request(method: &str, cseq: u32, body: &str, compact: bool) -> String {
    let (ctype, clen) = if compact {
        ("c", "l")
    } else {
        ("Content-Type", "Content-Length")
    };
    let content_type = if body.is_empty() {
        String::new()
    } else {
        format!("{ctype}: application/sdp\r\n")
    };
    format!(
        "{method} sip:bob@10.20.0.2 SIP/2.0\r\nVia: SIP/2.0/TCP 10.20.0.1:40001;branch=z9hG4bK{cseq}{method}\r\n\
From: \"Alice\" <sip:alice@10.20.0.1>;tag=a1\r\nTo: <sip:bob@10.20.0.2>{to_tag}\r\n\
Call-ID: {CALL_ID}\r\nCSeq: {cseq} {method}\r\nContact: <sip:alice@10.20.0.1:40001;transport=tcp>\r\n\
{content_type}{clen}: {}\r\n\r\n{body}",
        body.len(),
        to_tag = if method == "INVITE" { "" } else { ";tag=b2" },
    )
}

fn response(status: &str, cseq: u32, method: &str, body: &str) -> String {
    let content_type = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_string()
    };
    // No Content-Length on the BYE's 200: on TCP that means an empty body (RFC 3261 §18.3).
    // (It is the last message of its segment: tshark, which reads a body up to the end of the
    // segment instead, agrees there.)
    let length = if method == "BYE" {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    format!(
        "SIP/2.0 {status}\r\nVia: SIP/2.0/TCP 10.20.0.1:40001;branch=z9hG4bK{cseq}{method}\r\n\
From: \"Alice\" <sip:alice@10.20.0.1>;tag=a1\r\nTo: <sip:bob@10.20.0.2>;tag=b2\r\n\
Call-ID: {CALL_ID}\r\nCSeq: {cseq} {method}\r\n{content_type}{length}\r\n{body}"
    )
}

/// A TCP direction: sequence numbers follow the bytes sent.
struct Direction {
    src: SocketAddr,
    dst: SocketAddr,
    next: u32,
}

impl Direction {
    fn segment(&mut self, flags: u8, payload: &[u8]) -> Vec<u8> {
        let frame = tcp_frame(
            &LinkSpec::Ethernet,
            self.src,
            self.dst,
            self.next,
            flags,
            payload,
        );
        self.next = self
            .next
            .wrapping_add(payload.len() as u32 + u32::from(flags & (SYN | 0x01) != 0));
        frame
    }
}

struct Built {
    frames: Vec<(i64, Vec<u8>)>,
    invite_done_ns: i64,
    ok_ns: i64,
    bye_done_ns: i64,
    sip_messages: usize,
}

/// The call: every SIP message over one TCP connection, RTP both ways for 1 s.
fn build_call() -> Built {
    let mut uac = Direction {
        src: addr(UAC),
        dst: addr(UAS),
        next: 0xffff_ff00, // wraps inside the INVITE
    };
    let mut uas = Direction {
        src: addr(UAS),
        dst: addr(UAC),
        next: 7_000_000,
    };
    let invite = request("INVITE", 1, &sdp(addr(UAC_MEDIA)), false);
    let trying = response("100 Trying", 1, "INVITE", "");
    let ok = response("200 OK", 1, "INVITE", &sdp(addr(UAS_MEDIA)));
    let ack = request("ACK", 1, "", true);
    let bye = request("BYE", 2, "", false);
    let bye_ok = response("200 OK", 2, "BYE", "");

    let mut f: Vec<(i64, Vec<u8>)> = Vec::new();
    let t = |ms: i64| BASE_NS + ms * MS;
    f.push((t(0), uac.segment(SYN, b"")));
    f.push((t(1), uas.segment(SYN | ACK, b"")));
    f.push((t(2), uac.segment(ACK, b"")));
    // The INVITE in three segments, the third sent before the second (out of order on the wire).
    let inv = invite.as_bytes();
    let (a, b) = (200, 420);
    let seg1 = uac.segment(PSH_ACK, &inv[..a]);
    let seg2 = uac.segment(PSH_ACK, &inv[a..b]);
    let seg3 = uac.segment(PSH_ACK, &inv[b..]);
    f.push((t(10), seg1));
    f.push((t(11), seg3));
    f.push((t(12), seg2.clone()));
    let invite_done_ns = t(12);
    // Keep-alive, then 100 Trying and 200 OK coalesced in one segment with the start of nothing.
    f.push((t(13), uas.segment(PSH_ACK, b"\r\n\r\n")));
    let coalesced = format!("{trying}{ok}");
    f.push((t(50), uas.segment(PSH_ACK, coalesced.as_bytes())));
    let ok_ns = t(50);
    // The ACK, and a retransmission of INVITE segment 2 (already seen bytes).
    f.push((t(60), uac.segment(PSH_ACK, ack.as_bytes())));
    f.push((t(61), seg2));
    // RTP both ways, 50 packets of PCMA under PT 97 each.
    for i in 0..50i64 {
        for (src, dst, ssrc) in [
            (UAC_MEDIA, UAS_MEDIA, 0x1111_1111u32),
            (UAS_MEDIA, UAC_MEDIA, 0x2222_2222),
        ] {
            let header = rtp_header(97, 100 + i as u16, 8000 + 160 * i as u32, ssrc);
            let pkt = Pkt {
                at_ns: t(100 + 20 * i),
                src: addr(src),
                dst: addr(dst),
                header,
                payload_len: 160,
            };
            f.extend(rtp_frames(&LinkSpec::Ethernet, &[pkt]));
        }
    }
    // The BYE in two segments, its 200 OK, then both sides close.
    let by = bye.as_bytes();
    f.push((t(1200), uac.segment(PSH_ACK, &by[..30])));
    f.push((t(1201), uac.segment(PSH_ACK, &by[30..])));
    let bye_done_ns = t(1201);
    f.push((t(1210), uas.segment(PSH_ACK, bye_ok.as_bytes())));
    f.push((t(1220), uac.segment(FIN_ACK, b"")));
    f.push((t(1221), uas.segment(FIN_ACK, b"")));
    f.sort_by_key(|(at, _)| *at);
    Built {
        frames: f,
        invite_done_ns,
        ok_ns,
        bye_done_ns,
        sip_messages: 6,
    }
}

fn tshark() -> Option<PathBuf> {
    let found = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("tshark not installed: the tshark cross-check is skipped");
    }
    found.then(|| PathBuf::from("tshark"))
}

/// SIP messages tshark reassembles in `path` (frame numbers of the messages), as
/// (Call-ID, method or status) pairs.
fn tshark_sip(tshark: &Path, path: &Path) -> Vec<(String, String)> {
    let out = Command::new(tshark)
        .args(["-n", "-o", "tcp.reassemble_out_of_order:TRUE", "-r"])
        .arg(path)
        .args([
            "-Y",
            "sip",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=|",
            "-e",
            "sip.Call-ID",
            "-e",
            "sip.Method",
            "-e",
            "sip.Status-Code",
        ])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut messages = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let ids: Vec<&str> = fields.first().map_or(vec![], |f| f.split('|').collect());
        let methods: Vec<&str> = fields.get(1).map_or(vec![], |f| f.split('|').collect());
        let statuses: Vec<&str> = fields.get(2).map_or(vec![], |f| f.split('|').collect());
        // A frame may complete several messages; each has one Call-ID.
        let mut kinds = methods
            .into_iter()
            .filter(|m| !m.is_empty())
            .chain(statuses.into_iter().filter(|s| !s.is_empty()));
        for id in ids {
            messages.push((id.to_string(), kinds.next().unwrap_or("").to_string()));
        }
    }
    messages
}

fn call_over_tcp_split_coalesced_retransmitted_and_reordered() {
    let dir = tempfile::tempdir().expect("tmp");
    let built = build_call();
    let path = write_pcap(
        dir.path(),
        "sip-tcp.pcap",
        linktype::ETHERNET,
        &built.frames,
    );
    let doc = analyze_json(&[&path], &[]);

    let file = &doc["files"][0];
    assert_eq!(file["skipped"]["non_udp"], 0, "every TCP frame is SIP's");
    let tcp = &file["sip_tcp"];
    assert_eq!(tcp["messages"], built.sip_messages);
    assert_eq!(tcp["websocket_messages"], 0);
    // All 15 TCP frames: handshake, 3 + 1 INVITE segments (one a retransmission), keep-alive,
    // 100+200, ACK, 2 BYE segments, its 200, 2 FINs.
    assert_eq!(tcp["segments"], 15);
    assert_eq!(tcp["resyncs"], 0);
    assert_eq!(tcp["bytes_dropped"], 0);

    let calls = doc["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call["call_id"], CALL_ID);
    assert_eq!(call["status"], 200);
    // A message split over segments is dated by the segment that completes it, like tshark.
    assert_eq!(call["setup"], ts(built.invite_done_ns));
    assert_eq!(call["answer"], ts(built.ok_ns));
    assert_eq!(call["end"], ts(built.bye_done_ns));
    assert_eq!(call["streams"].as_array().expect("streams").len(), 2);

    let streams = doc["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 2);
    for (src, dst) in [(UAC_MEDIA, UAS_MEDIA), (UAS_MEDIA, UAC_MEDIA)] {
        let s = find_stream(&doc, src, dst);
        assert_eq!(s.len(), 1, "{src} -> {dst}");
        let s = s[0];
        assert_eq!(s["detection"], "sdp");
        assert_eq!(s["payload_type"], 97);
        assert!(
            s["codec"]
                .as_str()
                .is_some_and(|c| c.eq_ignore_ascii_case("PCMA")),
            "{}",
            s["codec"]
        );
        assert_eq!(s["clock_rate"], 8000);
        assert_eq!(s["clock_source"], "sdp");
        assert_eq!(s["call_id"], CALL_ID);
        assert_eq!(s["packets"], 50);
        assert_eq!(s["lost"], 0);
    }

    // The same file, read by tshark: the same six messages of the one call.
    if let Some(tshark) = tshark() {
        let messages = tshark_sip(&tshark, &path);
        let kinds: Vec<&str> = messages.iter().map(|(_, k)| k.as_str()).collect();
        assert_eq!(
            kinds,
            ["INVITE", "100", "200", "ACK", "BYE", "200"],
            "{messages:?}"
        );
        assert!(messages.iter().all(|(id, _)| id == CALL_ID));
    }
}

fn tcp_on_a_port_that_is_not_a_sip_port_is_found_by_its_start_and_excluded_by_the_flag() {
    let dir = tempfile::tempdir().expect("tmp");
    let built = build_call();
    let path = write_pcap(
        dir.path(),
        "sip-tcp.pcap",
        linktype::ETHERNET,
        &built.frames,
    );
    // Without 5060 among the SIP ports the connection is still found: its first data segment
    // starts an INVITE. Only the SYN handshake (3 frames) before it and the server's keep-alive
    // before its first message are "not UDP".
    let doc = analyze_json(&[&path], &["--sip-ports", "5080"]);
    let file = &doc["files"][0];
    assert_eq!(file["skipped"]["non_udp"], 4);
    assert_eq!(file["sip_tcp"]["messages"], 6);
    assert_eq!(doc["calls"][0]["call_id"], CALL_ID);
    assert_eq!(doc["calls"][0]["status"], 200);
    // A bad port list is refused with exit code 2 and the reason.
    let run = run_agent(&[
        "analyze",
        "--sip-ports",
        "5060,abc",
        path.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("'abc' is not a TCP port"),
        "{}",
        run.stderr
    );
}

/// `../shared/real-captures`, or None (and a SKIPPED line) when absent, unless
/// $VOQA_REQUIRE_SAMPLES is set.
fn real_captures(test: &str) -> Option<PathBuf> {
    support::real_captures_dir(test)
}

/// Call-IDs voqa lists as calls, and its count of SIP messages over TCP.
fn voqa_view(path: &Path, extra: &[&str]) -> (BTreeSet<String>, Value) {
    let doc = analyze_json(&[path], extra);
    let ids = doc["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter_map(|c| c["call_id"].as_str().map(str::to_string))
        .collect();
    (ids, doc["files"][0].clone())
}

fn real_sip_over_websocket_matches_tshark() {
    let Some(dir) = real_captures("real_sip_over_websocket_matches_tshark") else {
        return;
    };
    let path = dir.join("heplify__sip_tcp_websocket.pcap");
    let (ids, file) = voqa_view(&path, &[]);
    // tshark -n -r heplify__sip_tcp_websocket.pcap -Y 'sip && tcp': 11 messages, one Call-ID
    // (kovfhoptshgn59q712sr), all in WebSocket frames on port 8080 after an HTTP upgrade.
    assert_eq!(file["sip_tcp"]["messages"], 11);
    assert_eq!(file["sip_tcp"]["websocket_messages"], 11);
    assert_eq!(file["sip_tcp"]["resyncs"], 0);
    assert_eq!(file["sip_tcp"]["bytes_dropped"], 0);
    assert!(ids.contains("kovfhoptshgn59q712sr"), "{ids:?}");
    if let Some(tshark) = tshark() {
        let messages = tshark_sip(&tshark, &path);
        let over_tcp = Command::new(&tshark)
            .args(["-n", "-r"])
            .arg(&path)
            .args(["-Y", "sip && tcp", "-T", "fields", "-e", "sip.Call-ID"])
            .output()
            .expect("tshark");
        let tcp_lines = String::from_utf8_lossy(&over_tcp.stdout).lines().count();
        assert_eq!(file["sip_tcp"]["messages"], tcp_lines);
        // Every Call-ID tshark sees (UDP and WebSocket) is one voqa knows (calls include the
        // OPTIONS dialog here; a later change that drops non-INVITE dialogs from `calls` would
        // make this a subset check).
        let tshark_ids: BTreeSet<String> = messages.into_iter().map(|(id, _)| id).collect();
        let invite_ids: BTreeSet<String> = tshark_ids
            .iter()
            .filter(|id| !id.contains("@0.0.0.0"))
            .cloned()
            .collect();
        assert!(
            invite_ids.is_subset(&ids),
            "tshark {tshark_ids:?} voqa {ids:?}"
        );
    }
}

fn real_sip_over_tcp_inside_ip_in_ip_matches_tshark() {
    let Some(dir) = real_captures("real_sip_over_tcp_inside_ip_in_ip_matches_tshark") else {
        return;
    };
    let path = dir.join("sngrep__ipip.pcap");
    // SIP on TCP port 5090, first seen mid-connection (no SYN), 183 and 200 inside IP-in-IP.
    // tshark: INVITE, 183, 200, BYE of Call-ID 1RLuVzzBClYCf2.
    for extra in [&[][..], &["--sip-ports", "5060,5090"]] {
        let (ids, file) = voqa_view(&path, extra);
        assert_eq!(file["sip_tcp"]["messages"], 4, "{extra:?}");
        assert_eq!(file["skipped"]["non_udp"], 0);
        assert_eq!(ids, BTreeSet::from(["1RLuVzzBClYCf2".to_string()]));
    }
    let doc = analyze_json(&[&path], &[]);
    let call = &doc["calls"][0];
    assert_eq!(call["status"], 200);
    assert_eq!(call["setup"], "2021-12-14T13:49:07.335564Z");
    assert_eq!(call["answer"], "2021-12-14T13:49:08.995124Z");
    assert_eq!(call["end"], "2021-12-14T13:49:41.007679Z");
    if let Some(tshark) = tshark() {
        let messages = tshark_sip(&tshark, &path);
        let kinds: Vec<&str> = messages.iter().map(|(_, k)| k.as_str()).collect();
        assert_eq!(kinds, ["INVITE", "183", "200", "BYE"]);
    }
}

fn real_sip_inside_gre_erspan_matches_tshark() {
    let Some(dir) = real_captures("real_sip_inside_gre_erspan_matches_tshark") else {
        return;
    };
    let path = dir.join("heplify__erspan_sip_ipv4_udp.pcapng");
    let (ids, file) = voqa_view(&path, &[]);
    assert_eq!(file["packets"], 140);
    assert_eq!(file["skipped"]["non_udp"], 0);
    assert_eq!(file["skipped"]["malformed"], 0);
    if let Some(tshark) = tshark() {
        // tshark decodes GRE → Ethernet → IPv4 → UDP → SIP in all 140 frames, 7 Call-IDs.
        let messages = tshark_sip(&tshark, &path);
        assert_eq!(messages.len(), 140);
        let tshark_ids: BTreeSet<String> = messages.into_iter().map(|(id, _)| id).collect();
        assert_eq!(tshark_ids.len(), 7);
        // Dialogs that are calls are a subset of all dialogs; voqa lists no Call-ID tshark lacks.
        assert!(
            ids.is_subset(&tshark_ids),
            "voqa {ids:?} tshark {tshark_ids:?}"
        );
        assert!(ids.contains("ddd141f1d982d8989fb73db754a8fbb7@192.168.1.191"));
        assert!(ids.contains("cdfef7c7647e97e4ff66fbf504c524e4@192.168.1.191"));
    }
}
