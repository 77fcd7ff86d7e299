//! Shared helpers for the end-to-end tests: locating the agent binary and the shared sample
//! captures, running `voqa-agent analyze`, and building small captures of our own.
#![allow(dead_code)]

pub mod faultproxy;
pub mod harness;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use voqa_agent::capture::writer::PcapWriter;
use voqa_agent::decode::build::{LinkSpec, RtpHeader, rtp_packet, udp_frame};

pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_voqa-agent"))
}

/// `../shared/samples` beside the repository, or $VOQA_SAMPLES_DIR. `None` when absent: the
/// running test is then reported as ignored ([`harness::skip`]), or fails under
/// $VOQA_REQUIRE_SAMPLES (CI).
pub fn samples_dir(_test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("VOQA_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared_dir().join("samples"));
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    harness::skip(
        "VOQA_REQUIRE_SAMPLES",
        &format!(
            "sample captures not found at {} (set VOQA_SAMPLES_DIR)",
            dir.display()
        ),
    );
    None
}

/// `../shared/real-captures` beside the repository (public captures of real traffic, see its
/// README), or $VOQA_REAL_CAPTURES_DIR; like [`samples_dir`], required by $VOQA_REQUIRE_SAMPLES.
pub fn real_captures_dir(_test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("VOQA_REAL_CAPTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared_dir().join("real-captures"));
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    harness::skip(
        "VOQA_REQUIRE_SAMPLES",
        &format!(
            "real captures not found at {} (set VOQA_REAL_CAPTURES_DIR)",
            dir.display()
        ),
    );
    None
}

/// `../shared` beside the repository.
fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run_agent(args: &[&str]) -> Run {
    let out = Command::new(agent_bin())
        .args(args)
        .output()
        .expect("run voqa-agent");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `analyze --format json --no-pseudonymize` on the files and parses the document.
pub fn analyze_json(files: &[&Path], extra: &[&str]) -> Value {
    let mut args: Vec<String> = vec![
        "analyze".into(),
        "--format".into(),
        "json".into(),
        "--no-pseudonymize".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(files.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_agent(&refs);
    assert_eq!(run.status, 0, "analyze failed: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {}", run.stdout))
}

pub fn find_stream<'a>(doc: &'a Value, src: &str, dst: &str) -> Vec<&'a Value> {
    doc["streams"]
        .as_array()
        .expect("streams array")
        .iter()
        .filter(|s| s["src"] == src && s["dst"] == dst)
        .collect()
}

/// A synthetic RTP packet to put in a capture.
#[derive(Clone, Debug)]
pub struct Pkt {
    pub at_ns: i64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub header: RtpHeader,
    pub payload_len: usize,
}

pub fn rtp_header(pt: u8, seq: u16, ts: u32, ssrc: u32) -> RtpHeader {
    RtpHeader {
        payload_type: pt,
        marker: false,
        sequence: seq,
        timestamp: ts,
        ssrc,
        csrcs: vec![],
        extension: None,
        padding: 0,
    }
}

/// Writes frames (already built) to a classic pcap in a temp dir and returns its path.
pub fn write_pcap(dir: &Path, name: &str, linktype: u32, frames: &[(i64, Vec<u8>)]) -> PathBuf {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).expect("create pcap");
    let mut w = PcapWriter::new(std::io::BufWriter::new(file), linktype).expect("pcap header");
    for (ts, data) in frames {
        w.write_frame(*ts, data).expect("write frame");
    }
    use std::io::Write;
    w.into_inner().flush().expect("flush");
    path
}

pub fn rtp_frames(link: &LinkSpec, pkts: &[Pkt]) -> Vec<(i64, Vec<u8>)> {
    pkts.iter()
        .map(|p| {
            (
                p.at_ns,
                udp_frame(
                    link,
                    p.src,
                    p.dst,
                    &rtp_packet(&p.header, &vec![0xd5; p.payload_len]),
                ),
            )
        })
        .collect()
}

pub fn sip_frame(link: &LinkSpec, src: SocketAddr, dst: SocketAddr, text: &str) -> Vec<u8> {
    udp_frame(link, src, dst, text.as_bytes())
}

/// An INVITE or 200 OK with an SDP body announcing `media` (address and port) with `rtpmaps`
/// (payload type, "encoding/clock" or None for a static type).
pub fn sip_with_sdp(
    first_line: &str,
    call_id: &str,
    cseq_method: &str,
    media: SocketAddr,
    pts: &[(u8, Option<&str>)],
) -> String {
    let ipver = if media.is_ipv4() { "IP4" } else { "IP6" };
    let fmts: Vec<String> = pts.iter().map(|(pt, _)| pt.to_string()).collect();
    let mut sdp = format!(
        "v=0\r\no=- 1 1 IN {ipver} {ip}\r\ns=-\r\nc=IN {ipver} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {fmts}\r\n",
        ip = media.ip(),
        port = media.port(),
        fmts = fmts.join(" ")
    );
    for (pt, map) in pts {
        if let Some(m) = map {
            sdp.push_str(&format!("a=rtpmap:{pt} {m}\r\n"));
        }
    }
    sdp.push_str("a=ptime:20\r\na=sendrecv\r\n");
    format!(
        "{first_line}\r\nVia: SIP/2.0/UDP host;branch=z9hG4bK1\r\nFrom: \"Alice\" <sip:alice@example.invalid>;tag=a1\r\nTo: <sip:bob@example.invalid>\r\nCall-ID: {call_id}\r\nCSeq: 1 {cseq_method}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// Reference RFC 3550 A.8 jitter (float form) in ms, written independently of the agent:
/// packets as (arrival ns, RTP timestamp) in arrival order. Returns (last, max, mean over 2..N).
/// The RFC 3550 A.8 jitter estimate (ms) after each packet but the first, in arrival order.
#[allow(dead_code)]
pub fn reference_jitter_series_ms(pkts: &[(i64, u32)], clock: f64) -> Vec<f64> {
    let mut j = 0.0f64;
    pkts.windows(2)
        .map(|w| {
            let (a0, t0) = w[0];
            let (a1, t1) = w[1];
            let d = (a1 - a0) as f64 / 1e9 * clock - (t1.wrapping_sub(t0) as i32) as f64;
            j += (d.abs() - j) / 16.0;
            j * 1000.0 / clock
        })
        .collect()
}

pub fn reference_jitter_ms(pkts: &[(i64, u32)], clock: f64) -> (f64, f64, f64) {
    let mut j = 0.0f64;
    let mut max = 0.0f64;
    let mut sum = 0.0f64;
    let mut n = 0u32;
    for w in pkts.windows(2) {
        let (a0, t0) = w[0];
        let (a1, t1) = w[1];
        let d = (a1 - a0) as f64 / 1e9 * clock - (t1.wrapping_sub(t0) as i32) as f64;
        j += (d.abs() - j) / 16.0;
        let ms = j * 1000.0 / clock;
        max = max.max(ms);
        sum += ms;
        n += 1;
    }
    let last = j * 1000.0 / clock;
    (last, max, if n == 0 { 0.0 } else { sum / f64::from(n) })
}
