//! The demo call committed as `tests/data/demo-call.pcap`: a SIP/SDP-announced G.711 call with
//! DTMF events, RTCP, loss, a duplicate, a reordered pair and arrival jitter, generated
//! deterministically so its ground truth is known from how it was built (not from the agent).

use std::net::SocketAddr;

use voqa_agent::decode::build::{
    LinkSpec, ReportBlockSpec, RtpHeader, rtcp_rr, rtcp_sdes_cname, rtcp_sr, rtp_packet, udp_frame,
};

/// What the generator did to one RTP stream, as counted while building it.
#[derive(Debug, Clone, Default)]
pub struct DemoStreamTruth {
    pub src: String,
    pub dst: String,
    pub ssrc: u32,
    /// Every RTP packet written (duplicates included).
    pub packets: u64,
    pub expected: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// (arrival ns, RTP timestamp) of the audio packets (PT 0), in arrival order, for reference jitter.
    pub audio: Vec<(i64, u32)>,
}

pub struct Demo {
    pub frames: Vec<(i64, Vec<u8>)>,
    pub streams: Vec<DemoStreamTruth>,
    pub call_id: &'static str,
    /// One-way network delay between the parties: RTT is twice this.
    pub one_way_ms: f64,
}

const T0: i64 = 1_795_424_400_000_000_000; // 2026-11-23T09:00:00Z

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn sip(
    first: &str,
    call_id: &str,
    cseq: &str,
    from_tag: &str,
    to_tag: Option<&str>,
    body: Option<String>,
) -> String {
    let to = match to_tag {
        Some(t) => format!("<sip:bob@example.invalid>;tag={t}"),
        None => "<sip:bob@example.invalid>".to_owned(),
    };
    let (ctype, body) = match body {
        Some(b) => ("Content-Type: application/sdp\r\n".to_owned(), b),
        None => (String::new(), String::new()),
    };
    format!(
        "{first}\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-demo\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@example.invalid>;tag={from_tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nContact: <sip:alice@192.0.2.10:5060>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn sdp(ip: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 4242 1 IN IP4 {ip}\r\ns=voqa demo\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// Builds the demo capture: 20 s of a two-way call.
pub fn build() -> Demo {
    let link = LinkSpec::Ethernet;
    let alice_sip: SocketAddr = "192.0.2.10:5060".parse().expect("addr");
    let bob_sip: SocketAddr = "198.51.100.20:5060".parse().expect("addr");
    let alice_rtp: SocketAddr = "192.0.2.10:40000".parse().expect("addr");
    let bob_rtp: SocketAddr = "198.51.100.20:50000".parse().expect("addr");
    let alice_rtcp: SocketAddr = "192.0.2.10:40001".parse().expect("addr");
    let bob_rtcp: SocketAddr = "198.51.100.20:50001".parse().expect("addr");
    let call_id = "demo-7f3a9c@192.0.2.10";
    let one_way_ms = 30.0;
    let mut frames: Vec<(i64, Vec<u8>)> = Vec::new();
    let ms = |x: f64| (x * 1e6) as i64;

    // Signalling (the capture point is Alice's media server: Bob's messages arrive 30 ms later).
    frames.push((
        T0,
        udp_frame(
            &link,
            alice_sip,
            bob_sip,
            sip(
                "INVITE sip:bob@example.invalid SIP/2.0",
                call_id,
                "1 INVITE",
                "a1",
                None,
                Some(sdp("192.0.2.10", 40000)),
            )
            .as_bytes(),
        ),
    ));
    frames.push((
        T0 + ms(90.0),
        udp_frame(
            &link,
            bob_sip,
            alice_sip,
            sip(
                "SIP/2.0 180 Ringing",
                call_id,
                "1 INVITE",
                "a1",
                Some("b1"),
                None,
            )
            .as_bytes(),
        ),
    ));
    frames.push((
        T0 + ms(900.0),
        udp_frame(
            &link,
            bob_sip,
            alice_sip,
            sip(
                "SIP/2.0 200 OK",
                call_id,
                "1 INVITE",
                "a1",
                Some("b1"),
                Some(sdp("198.51.100.20", 50000)),
            )
            .as_bytes(),
        ),
    ));
    frames.push((
        T0 + ms(905.0),
        udp_frame(
            &link,
            alice_sip,
            bob_sip,
            sip(
                "ACK sip:bob@198.51.100.20 SIP/2.0",
                call_id,
                "1 ACK",
                "a1",
                Some("b1"),
                None,
            )
            .as_bytes(),
        ),
    ));

    let media_start = T0 + ms(1000.0);
    let n: u16 = 1000;
    let mut rng: u64 = 0x5EED_DEC0_DE12_3456;
    let mut streams = Vec::new();
    let mut rtp_frames: Vec<(i64, Vec<u8>)> = Vec::new();

    for (dir, (src, dst, ssrc, seq0, ts0)) in [
        (
            alice_rtp,
            bob_rtp,
            0xA11C_E001u32,
            61000u16,
            4_294_000_000u32,
        ),
        (bob_rtp, alice_rtp, 0xB0B0_0002u32, 100u16, 12345u32),
    ]
    .into_iter()
    .enumerate()
    {
        let mut truth = DemoStreamTruth {
            src: src.to_string(),
            dst: dst.to_string(),
            ssrc,
            ..Default::default()
        };
        // Alice->Bob leaves the capture point: no network impairment is visible (sent timing, 0.2 ms wobble).
        // Bob->Alice arrives: 30 ms delay ± 4 ms jitter, 2 % loss (incl. one burst of 3), a duplicate, a swapped pair.
        let mut arrivals: Vec<(i64, u16, u32, u8, bool)> = Vec::new();
        for i in 0..n {
            let seq = seq0.wrapping_add(i);
            let mut ts = ts0.wrapping_add(160 * u32::from(i));
            let send = media_start + ms(20.0 * f64::from(i)) + if dir == 0 { 0 } else { ms(7.0) };
            // DTMF digit: 5 telephone-event packets (PT 101) instead of audio at i = 400..405 on Alice->Bob.
            let (pt, marker) = if dir == 0 && (400..405).contains(&i) {
                ts = ts0.wrapping_add(160 * 400); // an event keeps its start timestamp
                (101u8, i == 400)
            } else {
                (0u8, i == 0)
            };
            let r = xorshift(&mut rng);
            let (arrive, lost) = if dir == 0 {
                (send + (r % 200_000) as i64, false)
            } else {
                let jitter = (r % 8_000_000) as i64 - 4_000_000;
                let lost = (r >> 20) % 100 < 2 && i > 5 || (600..603).contains(&i);
                (send + ms(one_way_ms) + jitter, lost)
            };
            if lost {
                continue;
            }
            // Classic pcap keeps microseconds: the truth uses exactly the times written.
            let arrive = arrive / 1000 * 1000;
            arrivals.push((arrive, seq, ts, pt, marker));
        }
        if dir == 1 {
            // A duplicate of packet 300 arriving 1 ms after it, and packets 700/701 swapped.
            if let Some(p) = arrivals
                .iter()
                .find(|p| p.1 == seq0.wrapping_add(300))
                .copied()
            {
                arrivals.push((p.0 + 1_000_000, p.1, p.2, p.3, p.4));
                truth.duplicates += 1;
            }
            let a = arrivals.iter().position(|p| p.1 == seq0.wrapping_add(700));
            let b = arrivals.iter().position(|p| p.1 == seq0.wrapping_add(701));
            if let (Some(a), Some(b)) = (a, b) {
                let (ta, tb) = (arrivals[a].0, arrivals[b].0);
                arrivals[a].0 = tb.max(ta) + 1000;
                arrivals[b].0 = ta.min(tb);
            }
        }
        arrivals.sort_by_key(|p| p.0);
        // Truth by construction: unique sequence numbers, expected span, reordering.
        let mut seen = std::collections::BTreeSet::new();
        let mut highest: Option<i64> = None;
        for p in &arrivals {
            let ext = i64::from(p.1.wrapping_sub(seq0)); // offsets within the call, no wrap ambiguity
            truth.packets += 1;
            if !seen.insert(ext) {
                continue;
            }
            if highest.is_some_and(|h| ext < h) {
                truth.reordered += 1;
            }
            highest = Some(highest.map_or(ext, |h| h.max(ext)));
        }
        // RFC 3550 jitter runs over every audio packet in arrival order, duplicates included.
        truth.audio = arrivals
            .iter()
            .filter(|p| p.3 == 0)
            .map(|p| (p.0, p.2))
            .collect();
        let lo = *seen.iter().next().unwrap_or(&0);
        let hi = *seen.iter().next_back().unwrap_or(&0);
        truth.expected = (hi - lo + 1) as u64;
        truth.lost = truth.expected - seen.len() as u64;
        for p in &arrivals {
            let header = RtpHeader {
                payload_type: p.3,
                marker: p.4,
                sequence: p.1,
                timestamp: p.2,
                ssrc,
                csrcs: vec![],
                extension: None,
                padding: 0,
            };
            let payload_len = if p.3 == 101 { 4 } else { 160 };
            rtp_frames.push((
                p.0,
                udp_frame(
                    &link,
                    src,
                    dst,
                    &rtp_packet(&header, &vec![0xd5; payload_len]),
                ),
            ));
        }
        streams.push(truth);
    }

    // RTCP every 5 s: Alice sends SR (leaves the capture point), Bob's RR referencing it arrives
    // after one RTT minus nothing; DLSR 100 ms. Capture-point RTT sample = 2 × 30 ms.
    for k in 1..4u32 {
        let t_sr = media_start + i64::from(k) * 5_000_000_000;
        let ntp_secs = 3_973_000_000u64 + u64::from(k) * 5;
        let ntp: u64 = ntp_secs << 32 | 0x8000_0000;
        let middle = ((ntp >> 16) & 0xFFFF_FFFF) as u32;
        let mut sr = rtcp_sr(0xA11C_E001, ntp, 160 * 250 * k, 250 * k, 40_000 * k, &[]);
        sr.extend(rtcp_sdes_cname(0xA11C_E001, "alice@192.0.2.10"));
        frames.push((t_sr, udp_frame(&link, alice_rtcp, bob_rtcp, &sr)));
        let dlsr = 6554; // 100 ms in 1/65536 s (0.1000061 s)
        let block = ReportBlockSpec {
            ssrc: 0xA11C_E001,
            fraction_lost: 0,
            cumulative_lost: 0,
            ext_highest_seq: 61000 + 250 * k,
            jitter: 2,
            lsr: middle,
            dlsr,
        };
        let mut rr = rtcp_rr(0xB0B0_0002, &[block]);
        rr.extend(rtcp_sdes_cname(0xB0B0_0002, "bob@198.51.100.20"));
        let t_rr = t_sr + ms(2.0 * one_way_ms) + (f64::from(dlsr) / 65536.0 * 1e9) as i64;
        frames.push((t_rr, udp_frame(&link, bob_rtcp, alice_rtcp, &rr)));
    }

    frames.extend(rtp_frames);
    let end = media_start + ms(20.0 * f64::from(n)) + ms(100.0);
    frames.push((
        end,
        udp_frame(
            &link,
            alice_sip,
            bob_sip,
            sip(
                "BYE sip:bob@198.51.100.20 SIP/2.0",
                call_id,
                "2 BYE",
                "a1",
                Some("b1"),
                None,
            )
            .as_bytes(),
        ),
    ));
    frames.push((
        end + ms(60.0),
        udp_frame(
            &link,
            bob_sip,
            alice_sip,
            sip("SIP/2.0 200 OK", call_id, "2 BYE", "a1", Some("b1"), None).as_bytes(),
        ),
    ));
    frames.sort_by_key(|f| f.0);
    Demo {
        frames,
        streams,
        call_id,
        one_way_ms,
    }
}
