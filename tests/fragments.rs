//! End-to-end IP fragment reassembly through `voqa-agent analyze`: a large INVITE with SDP sent
//! as IPv4 (and IPv6) fragments out of order keeps its call's setup time and gives its streams
//! their SDP codec, clock and Call-ID; hostile shapes (overlapping, oversized, never completed,
//! a flood of distinct ids) are refused or dropped within the limits and counted, and the
//! analysis still runs to the end. Expected values are set by the test (frame times, the SDP it
//! wrote) or computed by hand, never by the agent's own code. If tshark is installed, it is
//! asked whether the built captures are valid and where it sees the INVITE.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::*;
use voqa_agent::decode::build::{LinkSpec, ipv4_fragments};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// 2026-01-01T00:00:10Z (1,767,225,600 s is 2026-01-01T00:00:00Z).
const T0: i64 = 1_767_225_610_000_000_000;
const MS: i64 = 1_000_000;
const US: i64 = 1_000;
/// IPv4 fragment payload at an Ethernet MTU of 1500: 1500 - 20 octets of IP header.
const FRAGMENT_PAYLOAD: usize = 1480;

/// An INVITE offering Opus (dynamic PT 96, 48 kHz) at `media`, with enough ICE candidates in its
/// SDP to need three fragments at MTU 1500, as WebRTC gateways' INVITEs often do.
fn big_invite(call_id: &str, media: SocketAddr) -> String {
    let ipver = if media.is_ipv4() { "IP4" } else { "IP6" };
    let ip = media.ip();
    let port = media.port();
    let mut sdp = format!(
        "v=0\r\no=- 4711 1 IN {ipver} {ip}\r\ns=-\r\nc=IN {ipver} {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 96 101\r\na=rtpmap:96 opus/48000/2\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    for i in 0..40 {
        sdp.push_str(&format!(
            "a=candidate:{i} 1 udp {} 198.51.100.{} {} typ host generation 0\r\n",
            2_130_706_431 - i,
            i + 1,
            40_000 + i
        ));
    }
    format!(
        "INVITE sip:bob@example.invalid SIP/2.0\r\n\
         Via: SIP/2.0/UDP host;branch=z9hG4bKfrag\r\n\
         From: \"Alice\" <sip:alice@example.invalid>;tag=a1\r\n\
         To: <sip:bob@example.invalid>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// `count` RTP packets of Opus (PT 96, 20 ms = 960 ticks) every 20 ms from `start_ns`.
fn opus_stream(
    src: SocketAddr,
    dst: SocketAddr,
    ssrc: u32,
    start_ns: i64,
    count: usize,
) -> Vec<Pkt> {
    (0..count)
        .map(|i| Pkt {
            at_ns: start_ns + i as i64 * 20 * MS,
            src,
            dst,
            header: rtp_header(96, 100 + i as u16, 5000 + 960 * i as u32, ssrc),
            payload_len: 80,
        })
        .collect()
}

/// The call of the fragment tests: the INVITE from A (media at `a_media`) as fragments sent in
/// the order `order` (indexes into the fragments), 10 µs apart from T0; a 200 OK from B
/// (media at `b_media`) 50 ms later; then 50 RTP packets each way. B sends its RTP from
/// `b_send`, not the port it announced (asymmetric RTP, as behind some NATs and SBCs), so that
/// only the INVITE's SDP announces the B → A stream.
struct Call {
    link: LinkSpec,
    sip_a: SocketAddr,
    sip_b: SocketAddr,
    a_media: SocketAddr,
    b_media: SocketAddr,
    b_send: SocketAddr,
}

impl Call {
    fn v4() -> Call {
        Call {
            link: LinkSpec::Ethernet,
            sip_a: addr("192.0.2.10:5060"),
            sip_b: addr("192.0.2.20:5060"),
            a_media: addr("192.0.2.10:40000"),
            b_media: addr("192.0.2.20:50000"),
            b_send: addr("192.0.2.20:50002"),
        }
    }

    fn v6() -> Call {
        Call {
            link: LinkSpec::LinuxSll,
            sip_a: addr("[2001:db8::10]:5060"),
            sip_b: addr("[2001:db8::20]:5060"),
            a_media: addr("[2001:db8::10]:40000"),
            b_media: addr("[2001:db8::20]:50000"),
            b_send: addr("[2001:db8::20]:50002"),
        }
    }

    fn invite_fragments(&self, call_id: &str) -> Vec<Vec<u8>> {
        let invite = big_invite(call_id, self.a_media);
        assert!(
            (2 * FRAGMENT_PAYLOAD..3 * FRAGMENT_PAYLOAD - 8).contains(&invite.len()),
            "the INVITE must need exactly three fragments: {} octets",
            invite.len()
        );
        let fragments = ipv4_fragments(
            &self.link,
            self.sip_a,
            self.sip_b,
            invite.as_bytes(),
            FRAGMENT_PAYLOAD,
        );
        assert_eq!(fragments.len(), 3);
        fragments
    }

    /// The whole capture with the INVITE's fragments as `invite` (already ordered and timed).
    fn frames(&self, call_id: &str, invite: Vec<(i64, Vec<u8>)>) -> Vec<(i64, Vec<u8>)> {
        let mut frames = invite;
        frames.push((
            T0 + 50 * MS,
            sip_frame(
                &self.link,
                self.sip_b,
                self.sip_a,
                &sip_with_sdp(
                    "SIP/2.0 200 OK",
                    call_id,
                    "INVITE",
                    self.b_media,
                    &[(96, Some("opus/48000/2"))],
                ),
            ),
        ));
        let mut rtp = opus_stream(self.a_media, self.b_media, 0xA, T0 + 100 * MS, 50);
        rtp.extend(opus_stream(
            self.b_send,
            self.a_media,
            0xB,
            T0 + 105 * MS,
            50,
        ));
        rtp.sort_by_key(|p| p.at_ns);
        frames.extend(rtp_frames(&self.link, &rtp));
        frames
    }
}

/// The INVITE's fragments in `order`, 10 µs apart from T0.
fn timed(fragments: &[Vec<u8>], order: &[usize]) -> Vec<(i64, Vec<u8>)> {
    order
        .iter()
        .enumerate()
        .map(|(i, &which)| (T0 + i as i64 * 10 * US, fragments[which].clone()))
        .collect()
}

fn reassembly(doc: &Value) -> &Value {
    &doc["files"][0]["ip_reassembly"]
}

/// The counters of `files[0].ip_reassembly` that are not zero, by name.
fn nonzero(doc: &Value) -> Vec<(String, u64)> {
    reassembly(doc)
        .as_object()
        .expect("ip_reassembly object")
        .iter()
        .filter_map(|(k, v)| {
            let n = v.as_u64().expect("counter");
            (n > 0).then(|| (k.clone(), n))
        })
        .collect()
}

fn pairs(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = list.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    v.sort();
    v
}

/// Asks tshark (when installed) to read the capture; returns the frame numbers at which it
/// shows a SIP INVITE. `None` without tshark.
fn tshark_invite_frames(path: &Path) -> Option<Vec<u64>> {
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(path)
        .args([
            "-Y",
            "sip.Method == \"INVITE\"",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "tshark refused {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect(),
    )
}

fn check_reassembled_call(call: &Call, name: &str, order: &[usize]) {
    let dir = tempfile::tempdir().expect("tmp");
    let fragments = call.invite_fragments("frag-call");
    let frames = call.frames("frag-call", timed(&fragments, order));
    let path = write_pcap(dir.path(), name, call.link.linktype(), &frames);
    let doc = analyze_json(&[&path], &[]);

    let file = &doc["files"][0];
    assert_eq!(file["skipped"]["fragments"], 3, "{file}");
    assert_eq!(file["skipped"]["malformed"], 0, "{file}");
    assert_eq!(nonzero(&doc), pairs(&[("reassembled", 1)]), "{file}");

    // The INVITE counts from the fragment that completed it: the third, at T0 + 20 µs.
    let calls = doc["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let c = &calls[0];
    assert_eq!(c["call_id"], "frag-call");
    assert_eq!(c["setup"], "2026-01-01T00:00:10.000020Z", "{c}");
    assert_eq!(c["answer"], "2026-01-01T00:00:10.050000Z", "{c}");
    assert_eq!(c["from"], "alice", "{c}");

    // B → A is announced only by the fragmented INVITE's SDP: its codec, clock and Call-ID come
    // from there (without it: a heuristic stream of an unknown dynamic type, no Call-ID).
    let to_a = find_stream(&doc, &call.b_send.to_string(), &call.a_media.to_string());
    assert_eq!(to_a.len(), 1, "{doc}");
    let s = to_a[0];
    assert_eq!(s["detection"], "sdp", "{s}");
    assert_eq!(s["call_id"], "frag-call", "{s}");
    assert_eq!(s["codec"], "opus", "{s}");
    assert_eq!(s["clock_rate"], 48000, "{s}");
    assert_eq!(s["clock_source"], "sdp", "{s}");
    assert_eq!(s["packets"], 50, "{s}");
    assert_eq!(s["lost"], 0, "{s}");
    let to_b = find_stream(&doc, &call.a_media.to_string(), &call.b_media.to_string());
    assert_eq!(to_b.len(), 1, "{doc}");
    assert_eq!(to_b[0]["call_id"], "frag-call");
    let indexes: Vec<u64> = c["streams"]
        .as_array()
        .expect("call streams")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(indexes.len(), 2, "{c}");

    // Parallel analysis (every shard reassembles; each measures its share of the flows) gives
    // the same document.
    let parallel = analyze_json(&[&path], &["--threads", "3"]);
    assert_eq!(parallel, doc, "--threads 3 differs");

    if let Some(invites) = tshark_invite_frames(&path) {
        // tshark shows the reassembled INVITE at the frame that completed it: the third.
        assert_eq!(invites, vec![3], "tshark's INVITE frames");
    }

    // The control: the same capture without the middle fragment has no INVITE, so the call
    // has no setup time and the B → A stream no SDP; the lone fragments are counted.
    let missing: Vec<usize> = order.iter().copied().filter(|&i| i != 1).collect();
    let frames = call.frames("frag-call", timed(&fragments, &missing));
    let path = write_pcap(dir.path(), "missing.pcap", call.link.linktype(), &frames);
    let doc = analyze_json(&[&path], &[]);
    assert_eq!(doc["files"][0]["skipped"]["fragments"], 2);
    assert_eq!(nonzero(&doc), pairs(&[("incomplete", 1)]), "{doc}");
    for c in doc["calls"].as_array().expect("calls") {
        assert!(c["setup"].is_null(), "no INVITE, no setup time: {c}");
    }
    let to_a = find_stream(&doc, &call.b_send.to_string(), &call.a_media.to_string());
    assert!(
        to_a.iter().all(|s| s["call_id"].is_null()),
        "without the INVITE the B → A stream has no Call-ID: {to_a:?}"
    );
}

#[test]
fn ipv4_invite_in_three_fragments_out_of_order() {
    // Last fragment first, then the first, then the middle one (which completes it).
    check_reassembled_call(&Call::v4(), "v4.pcap", &[2, 0, 1]);
}

#[test]
fn ipv6_invite_in_three_fragments_in_reverse_order() {
    check_reassembled_call(&Call::v6(), "v6.pcap", &[2, 1, 0]);
}

#[test]
fn ipv4_fragments_with_vlan_tags_and_in_order() {
    let call = Call {
        link: LinkSpec::Vlan(vec![100, 200]),
        ..Call::v4()
    };
    check_reassembled_call(&call, "qinq.pcap", &[0, 1, 2]);
}

/// Sets an IPv4 fragment's identification and flags/offset word (IP header at `ip`) and fixes
/// the header checksum (RFC 1071), so tshark sees a valid header.
fn rewrite_ipv4(frame: &mut [u8], ip: usize, id: Option<u16>, flags_offset: Option<u16>) {
    if let Some(id) = id {
        frame[ip + 4..ip + 6].copy_from_slice(&id.to_be_bytes());
    }
    if let Some(word) = flags_offset {
        frame[ip + 6..ip + 8].copy_from_slice(&word.to_be_bytes());
    }
    frame[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
    let sum: u32 = frame[ip..ip + 20]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    let folded = (folded & 0xffff) + (folded >> 16);
    frame[ip + 10..ip + 12].copy_from_slice(&(!(folded as u16)).to_be_bytes());
}

/// Ethernet header length: the IPv4 header starts here in `LinkSpec::Ethernet` frames.
const ETH: usize = 14;

#[test]
fn overlapping_fragments_refuse_the_datagram() {
    let call = Call::v4();
    let dir = tempfile::tempdir().expect("tmp");
    let fragments = call.invite_fragments("overlap-call");
    // A forged fragment rewriting the start of the SDP area (offset 1472, inside the first
    // fragment's 0..1480), sent between the first and the rest.
    let mut forged = fragments[1].clone();
    rewrite_ipv4(&mut forged, ETH, None, Some(0x2000 | (1472 / 8)));
    let invite = vec![
        (T0, fragments[0].clone()),
        (T0 + 10 * US, forged),
        (T0 + 20 * US, fragments[1].clone()),
        (T0 + 30 * US, fragments[2].clone()),
    ];
    let path = write_pcap(
        dir.path(),
        "overlap.pcap",
        1,
        &call.frames("overlap-call", invite),
    );
    let doc = analyze_json(&[&path], &[]);
    assert_eq!(doc["files"][0]["skipped"]["fragments"], 4);
    // One datagram, refused once; its later fragments do not start another.
    assert_eq!(nonzero(&doc), pairs(&[("overlapping", 1)]), "{doc}");
    for c in doc["calls"].as_array().expect("calls") {
        assert!(c["setup"].is_null(), "the refused INVITE was not used: {c}");
    }
    let _ = tshark_invite_frames(&path);
}

#[test]
fn oversized_and_never_completed_fragments_are_counted() {
    let call = Call::v4();
    let dir = tempfile::tempdir().expect("tmp");
    let fragments = call.invite_fragments("lonely-call");
    // Ping-of-death shape: the last fragment at the highest offset (65,528), 1,480 octets
    // long, would end at 67,008 > 65,535.
    let mut oversized = fragments[1].clone();
    rewrite_ipv4(&mut oversized, ETH, Some(0x4242), Some(0x1fff));
    // A first fragment whose rest never comes, then 10 s of RTP (beyond the 5 s timeout).
    let mut frames = vec![(T0, oversized), (T0 + MS, fragments[0].clone())];
    let rtp = opus_stream(call.a_media, call.b_media, 0xA, T0 + 2 * MS, 500);
    frames.extend(rtp_frames(&call.link, &rtp));
    let path = write_pcap(dir.path(), "lonely.pcap", 1, &frames);
    let doc = analyze_json(&[&path], &[]);
    assert_eq!(doc["files"][0]["skipped"]["fragments"], 2);
    assert_eq!(
        nonzero(&doc),
        pairs(&[("too_big", 1), ("timed_out", 1)]),
        "{doc}"
    );
    // The RTP after them is measured as usual.
    let s = find_stream(&doc, &call.a_media.to_string(), &call.b_media.to_string());
    assert_eq!(s.len(), 1, "{doc}");
    assert_eq!(s[0]["packets"], 500);
}

#[test]
fn a_flood_of_distinct_ids_stays_within_the_limit_and_a_real_invite_still_gets_through() {
    let call = Call::v4();
    let dir = tempfile::tempdir().expect("tmp");
    let fragments = call.invite_fragments("after-flood");
    // 5,000 first fragments with distinct ids, 1 µs apart: more than the 1,024 datagrams the
    // reassembler holds at once (the 4 MiB memory limit is not reached: 1,024 x 1,480 octets).
    const FLOOD: usize = 5000;
    const LIMIT: u64 = 1024;
    let mut frames: Vec<(i64, Vec<u8>)> = (0..FLOOD)
        .map(|i| {
            let mut f = fragments[0].clone();
            // Ids from 0x2000 up: never the INVITE's 0x1234.
            rewrite_ipv4(&mut f, ETH, Some(0x2000 + i as u16), None);
            (T0 - MS + i as i64 * US, f)
        })
        .collect();
    let mut rest = call.frames("after-flood", timed(&fragments, &[0, 1, 2]));
    for (at, _) in &mut rest {
        *at += 10 * MS;
    }
    frames.extend(rest);
    let path = write_pcap(dir.path(), "flood.pcap", 1, &frames);
    let doc = analyze_json(&[&path], &[]);
    assert_eq!(doc["files"][0]["skipped"]["fragments"], FLOOD as u64 + 3);
    // 5,001 datagrams: the INVITE reassembled; of the flood, all but the newest 1,023 evicted
    // (the INVITE took the oldest one's place), and those 1,023 still incomplete when the
    // capture ends, about 1.1 s later (within the 5 s timeout).
    let flood = FLOOD as u64;
    assert_eq!(
        nonzero(&doc),
        pairs(&[
            ("reassembled", 1),
            ("evicted", flood - LIMIT + 1),
            ("incomplete", LIMIT - 1),
        ]),
        "{}",
        reassembly(&doc)
    );
    let calls = doc["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["setup"], "2026-01-01T00:00:10.010020Z");
}

#[test]
fn table_output_says_what_became_of_the_fragments() {
    let call = Call::v4();
    let dir = tempfile::tempdir().expect("tmp");
    let fragments = call.invite_fragments("table-call");
    let path = write_pcap(
        dir.path(),
        "t.pcap",
        1,
        &call.frames("table-call", timed(&fragments, &[1, 2, 0])),
    );
    let run = run_agent(&["analyze", "--format", "table", path.to_str().expect("utf8")]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("\n  ip fragments: 1 datagram(s) reassembled\n"),
        "{}",
        run.stdout
    );
}
