//! Live SIP over TCP: a real TCP connection between two network namespaces carries an INVITE
//! (written in two pieces) and an ACK to port 5060, and the media it announces flows as RTP;
//! `voqa-agent run` on the receiving side must tie that RTP stream to the Call-ID, which proves
//! that its capture filter let the TCP segments through and that the live pipeline reassembled
//! them. A second connection to port 8081 (not a SIP port) carries an INVITE as well: the
//! capture filter must keep it out, so its media stays unannounced (no Call-ID), although
//! `analyze` of the same traffic would find it by its start line.
//!
//! Needs root and `ip`; without them it prints `SKIPPED:` and passes unless `$VOQA_REQUIRE_LIVE`
//! is set. Bounded in time; everything lives in namespaces `voqa-siptcp-<pid>-{a,b}`.

mod support;

#[path = "support/netns.rs"]
mod netns;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netns::{ADDR_A, ADDR_B, ChildGuard, TestNet};
use serde_json::{Value, json};
use voqa_wire::{AgentRecord, StreamReport};

fn main() {
    let mut trials = trials![live_capture_reassembles_sip_over_tcp_on_the_sip_ports_only,];
    trials.push(support::harness::ignored_trial("ns_child", ns_child));
    support::harness::main(file!(), trials)
}

const CALL_ID: &str = "live-tcp-1@10.77.0.1";
const HIDDEN_CALL_ID: &str = "not-on-a-sip-port@10.77.0.1";

/// Entry point of the child processes started inside a namespace (see netns.rs).
fn ns_child() {
    let Some((role, args)) = netns::child_role() else {
        return;
    };
    match role.as_str() {
        "tcp-server" => tcp_server(&args),
        "tcp-client" => tcp_client(&args),
        "rtp-send" => rtp_send(&args),
        other => panic!("unknown child role {other}"),
    }
}

/// Accepts one connection on `bind`, answers the first bytes with `reply` (if any), reads
/// until the peer closes. Writes `ready` once listening.
fn tcp_server(args: &Value) {
    let bind: SocketAddr = args["bind"].as_str().expect("bind").parse().expect("addr");
    let listener = TcpListener::bind(bind).unwrap_or_else(|e| panic!("listen {bind}: {e}"));
    std::fs::write(args["ready"].as_str().expect("ready"), b"").expect("ready file");
    let (mut conn, _) = listener.accept().expect("accept");
    let mut buf = [0u8; 4096];
    let mut replied = false;
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) if !replied => {
                if let Some(reply) = args["reply"].as_str() {
                    conn.write_all(reply.as_bytes()).expect("reply");
                }
                replied = true;
            }
            Ok(_) => {}
        }
    }
}

/// Connects to `dest` and writes each of `chunks`, `gap_ms` apart (TCP_NODELAY: one segment
/// each), then closes.
fn tcp_client(args: &Value) {
    let dest: SocketAddr = args["dest"].as_str().expect("dest").parse().expect("addr");
    let mut conn = TcpStream::connect(dest).unwrap_or_else(|e| panic!("connect {dest}: {e}"));
    conn.set_nodelay(true).expect("nodelay");
    let gap = Duration::from_millis(args["gap_ms"].as_u64().unwrap_or(0));
    for chunk in args["chunks"].as_array().expect("chunks") {
        conn.write_all(chunk.as_str().expect("text").as_bytes())
            .expect("write");
        std::thread::sleep(gap);
    }
    // Give the server's reply time to arrive before closing.
    std::thread::sleep(Duration::from_millis(200));
}

/// `count` RTP packets (PT 8, 160 bytes of payload) every 20 ms from `bind` to `dest`.
fn rtp_send(args: &Value) {
    let bind: SocketAddr = args["bind"].as_str().expect("bind").parse().expect("addr");
    let dest: SocketAddr = args["dest"].as_str().expect("dest").parse().expect("addr");
    let ssrc = args["ssrc"].as_u64().expect("ssrc") as u32;
    let socket = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
    let mut packet = [0xd5u8; 172];
    packet[0] = 0x80;
    packet[1] = 8;
    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
    let start = Instant::now();
    for i in 0..args["count"].as_u64().expect("count") {
        packet[2..4].copy_from_slice(&(i as u16).to_be_bytes());
        packet[4..8].copy_from_slice(&((i as u32) * 160).to_be_bytes());
        socket.send_to(&packet, dest).expect("send");
        let next = start + Duration::from_millis(20 * (i + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

fn invite(call_id: &str, media_port: u16, server: &str) -> String {
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 {ADDR_A}\r\ns=-\r\nc=IN IP4 {ADDR_A}\r\nt=0 0\r\n\
         m=audio {media_port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\n"
    );
    format!(
        "INVITE sip:bob@{server} SIP/2.0\r\nVia: SIP/2.0/TCP {ADDR_A};branch=z9hG4bK-{media_port}\r\n\
         From: <sip:alice@{ADDR_A}>;tag=a1\r\nTo: <sip:bob@{ADDR_B}>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn start_agent(ns: &str, dir: &Path) -> (ChildGuard, PathBuf, PathBuf) {
    let out = dir.join("agent-out.jsonl");
    let log = dir.join("agent.log");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[capture]\ninterfaces = [\"vb\"]\nworkers = 1\nretire_timeout_ms = 100\n\n\
             [analysis]\ninterval_s = 1\nsip_ports = [5060, 5080]\n\n\
             [output]\nsink = \"file:{}\"\n\n[privacy]\npseudonymize = false\n\n\
             [health]\nheartbeat_interval_s = 1\n",
            out.display()
        ),
    )
    .expect("config");
    let bin = support::agent_bin().display().to_string();
    let config_s = config.display().to_string();
    let mut guard = netns::run_in(ns, &bin, &["run", "--config", &config_s], &log);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !records(&out)
        .iter()
        .any(|r| matches!(r, AgentRecord::Heartbeat(_)))
    {
        if let Ok(Some(status)) = guard.child.try_wait() {
            panic!(
                "voqa-agent run exited ({status}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "no heartbeat within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The ring is attached just after the first heartbeat at the latest.
    std::thread::sleep(Duration::from_millis(500));
    (guard, out, log)
}

fn records(out: &Path) -> Vec<AgentRecord> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad sink line ({e}): {l}")))
        .collect()
}

fn wait_child(mut child: ChildGuard, log: &Path) {
    let status = child.wait_bounded(Duration::from_secs(20));
    assert!(
        status.success(),
        "child failed:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn live_capture_reassembles_sip_over_tcp_on_the_sip_ports_only() {
    const TEST: &str = "live_capture_reassembles_sip_over_tcp_on_the_sip_ports_only";
    if !netns::live_prerequisites(TEST) {
        return;
    }
    let net = match TestNet::new("siptcp") {
        Ok(net) => net,
        Err(reason) => {
            // Prints the skip line, or panics under $VOQA_REQUIRE_LIVE.
            netns::skip_or_fail(TEST, &reason);
            return;
        }
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let (agent, out, agent_log) = start_agent(&net.b, dir);

    let mut servers = Vec::new();
    for (port, reply) in [
        (
            5060u16,
            Some(format!(
                "SIP/2.0 100 Trying\r\nCall-ID: {CALL_ID}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
            )),
        ),
        (8081, None),
    ] {
        let ready = dir.join(format!("server-{port}.ready"));
        let log = dir.join(format!("server-{port}.log"));
        let mut child = netns::spawn_child(
            &net.b,
            "tcp-server",
            &json!({"bind": format!("{ADDR_B}:{port}"), "ready": ready, "reply": reply}),
            &log,
        );
        netns::wait_for_file(&ready, Duration::from_secs(10), &mut child, &log);
        servers.push((child, log));
    }
    let sip = invite(CALL_ID, 40_000, &format!("{ADDR_B}:5060"));
    let ack = format!(
        "ACK sip:bob@{ADDR_B} SIP/2.0\r\nCall-ID: {CALL_ID}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    let hidden = invite(HIDDEN_CALL_ID, 40_002, &format!("{ADDR_B}:8081"));
    for (port, chunks) in [
        (5060u16, json!([&sip[..120], &sip[120..], ack])),
        (8081, json!([hidden])),
    ] {
        let log = dir.join(format!("client-{port}.log"));
        let client = netns::spawn_child(
            &net.a,
            "tcp-client",
            &json!({"dest": format!("{ADDR_B}:{port}"), "chunks": chunks, "gap_ms": 50}),
            &log,
        );
        wait_child(client, &log);
    }
    for (child, log) in servers {
        wait_child(child, &log);
    }
    // The announced media, and the media of the INVITE the filter kept out.
    let mut senders = Vec::new();
    for (from, to, ssrc) in [
        (50_000u16, 40_000u16, 0x7c90_0001u64),
        (50_002, 40_002, 0x7c90_0002),
    ] {
        let log = dir.join(format!("rtp-{to}.log"));
        let child = netns::spawn_child(
            &net.b,
            "rtp-send",
            &json!({"bind": format!("{ADDR_B}:{from}"), "dest": format!("{ADDR_A}:{to}"), "ssrc": ssrc, "count": 100}),
            &log,
        );
        senders.push((child, log));
    }
    for (child, log) in senders {
        wait_child(child, &log);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let mut agent = agent;
    let status = agent.stop("TERM", Duration::from_secs(15));
    assert!(
        status.success(),
        "agent exit {status}:\n{}",
        std::fs::read_to_string(&agent_log).unwrap_or_default()
    );
    let records = records(&out);
    let reports: Vec<&StreamReport> = records
        .iter()
        .filter_map(|r| match r {
            AgentRecord::Stream(s) => Some(s),
            _ => None,
        })
        .collect();
    let of = |dst: &str| -> Vec<&StreamReport> {
        reports.iter().copied().filter(|r| r.dst == dst).collect()
    };
    let announced = of(&format!("{ADDR_A}:40000"));
    assert!(
        !announced.is_empty(),
        "no reports of the announced stream: {reports:#?}"
    );
    assert!(
        announced
            .iter()
            .all(|r| r.call_id.as_deref() == Some(CALL_ID)),
        "the stream announced over TCP carries its Call-ID: {announced:#?}"
    );
    assert_eq!(announced.iter().map(|r| r.packets).sum::<u64>(), 100);
    let hidden = of(&format!("{ADDR_A}:40002"));
    assert!(
        !hidden.is_empty(),
        "the unannounced stream is found by the heuristic"
    );
    assert!(
        hidden.iter().all(|r| r.call_id.is_none()),
        "TCP on port 8081 must not pass the capture filter: {hidden:#?}"
    );
}
