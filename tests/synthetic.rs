//! End-to-end on captures the tests build themselves, for what the shared samples lack:
//! SSRC change, sequence restart, G.729, IPv6, Linux SLL/SLL2 and QinQ links, DTX with comfort
//! noise, a dynamic payload type without SDP, pcapng with two interfaces, a file cut short, and
//! bad input files. Expected values are computed by hand or by the independent reference
//! jitter in `support`, never by the agent's own code.

mod support;

use std::net::SocketAddr;

use support::*;
use voqa_agent::capture::writer::PcapNgWriter;
use voqa_agent::decode::build::LinkSpec;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// `n` packets every 20 ms from `start_ns`, seq from `seq0`, ts step `ts_step`, optional per-packet
/// arrival offset (µs) from `wobble`.
#[allow(clippy::too_many_arguments)]
fn stream(
    src: &str,
    dst: &str,
    ssrc: u32,
    pt: u8,
    n: usize,
    seq0: u16,
    ts_step: u32,
    start_ns: i64,
    wobble: &dyn Fn(usize) -> i64,
) -> Vec<Pkt> {
    (0..n)
        .map(|i| Pkt {
            at_ns: start_ns + i as i64 * 20_000_000 + wobble(i) * 1000,
            src: addr(src),
            dst: addr(dst),
            header: rtp_header(
                pt,
                seq0.wrapping_add(i as u16),
                1000u32.wrapping_add(ts_step * i as u32),
                ssrc,
            ),
            payload_len: 160,
        })
        .collect()
}

fn sorted(mut p: Vec<Pkt>) -> Vec<Pkt> {
    p.sort_by_key(|x| x.at_ns);
    p
}

const T0: i64 = 1_795_000_000_000_000_000;

#[test]
fn ssrc_change_on_one_flow_makes_two_streams() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut pkts = stream(
        "192.0.2.1:20000",
        "192.0.2.2:30000",
        0x1111,
        0,
        50,
        100,
        160,
        T0,
        &|_| 0,
    );
    pkts.extend(stream(
        "192.0.2.1:20000",
        "192.0.2.2:30000",
        0x2222,
        0,
        30,
        7000,
        160,
        T0 + 1_000_000_000,
        &|_| 0,
    ));
    let path = write_pcap(
        dir.path(),
        "ssrc.pcap",
        1,
        &rtp_frames(&LinkSpec::Ethernet, &pkts),
    );
    let doc = analyze_json(&[&path], &[]);
    let s = find_stream(&doc, "192.0.2.1:20000", "192.0.2.2:30000");
    assert_eq!(s.len(), 2, "{doc}");
    assert_eq!(
        (s[0]["ssrc"].as_str(), s[0]["packets"].as_u64()),
        (Some("0x00001111"), Some(50))
    );
    assert_eq!(
        (s[1]["ssrc"].as_str(), s[1]["packets"].as_u64()),
        (Some("0x00002222"), Some(30))
    );
    assert_eq!(s[0]["detection"], "heuristic");
    assert_eq!(s[0]["lost"], 0);
}

#[test]
fn confirmed_sequence_restart_starts_a_new_stream() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut pkts = stream(
        "192.0.2.1:20000",
        "192.0.2.2:30000",
        0x1111,
        0,
        40,
        100,
        160,
        T0,
        &|_| 0,
    );
    pkts.extend(stream(
        "192.0.2.1:20000",
        "192.0.2.2:30000",
        0x1111,
        0,
        25,
        40000,
        160,
        T0 + 800_000_000,
        &|_| 0,
    ));
    let path = write_pcap(
        dir.path(),
        "restart.pcap",
        1,
        &rtp_frames(&LinkSpec::Ethernet, &pkts),
    );
    let doc = analyze_json(&[&path], &[]);
    let s = find_stream(&doc, "192.0.2.1:20000", "192.0.2.2:30000");
    assert_eq!(s.len(), 2, "{doc}");
    assert_eq!(
        (s[0]["packets"].as_u64(), s[0]["expected"].as_u64()),
        (Some(40), Some(40))
    );
    assert_eq!(
        (s[1]["packets"].as_u64(), s[1]["expected"].as_u64()),
        (Some(25), Some(25))
    );
}

#[test]
fn g729_call_over_ipv6_announced_by_sip() {
    let dir = tempfile::tempdir().expect("tmp");
    let a = addr("[2001:db8::10]:40000");
    let b = addr("[2001:db8::20]:50000");
    let sip_a = addr("[2001:db8::10]:5060");
    let sip_b = addr("[2001:db8::20]:5060");
    let link = LinkSpec::Ethernet;
    let mut frames = vec![
        (
            T0,
            sip_frame(
                &link,
                sip_a,
                sip_b,
                &sip_with_sdp(
                    "INVITE sip:bob@example.invalid SIP/2.0",
                    "g729-call",
                    "INVITE",
                    a,
                    &[(18, Some("G729/8000"))],
                ),
            ),
        ),
        (
            T0 + 50_000_000,
            sip_frame(
                &link,
                sip_b,
                sip_a,
                &sip_with_sdp(
                    "SIP/2.0 200 OK",
                    "g729-call",
                    "INVITE",
                    b,
                    &[(18, Some("G729/8000"))],
                ),
            ),
        ),
    ];
    // Loss of seq 10, 11 and 30 on A->B; 20 ms packets of two 10 ms G.729 frames (ts step 160).
    let ab: Vec<Pkt> = stream(
        "[2001:db8::10]:40000",
        "[2001:db8::20]:50000",
        0xA1,
        18,
        100,
        0,
        160,
        T0 + 100_000_000,
        &|_| 0,
    )
    .into_iter()
    .filter(|p| ![10, 11, 30].contains(&p.header.sequence))
    .map(|mut p| {
        p.payload_len = 20;
        p
    })
    .collect();
    let ba = stream(
        "[2001:db8::20]:50000",
        "[2001:db8::10]:40000",
        0xB1,
        18,
        100,
        5000,
        160,
        T0 + 110_000_000,
        &|i| (i % 3) as i64 * 500,
    );
    frames.extend(rtp_frames(
        &link,
        &sorted([ab.clone(), ba.clone()].concat()),
    ));
    frames.sort_by_key(|f| f.0);
    let path = write_pcap(dir.path(), "g729v6.pcap", 1, &frames);
    let doc = analyze_json(&[&path], &[]);

    let s = find_stream(&doc, "[2001:db8::10]:40000", "[2001:db8::20]:50000");
    assert_eq!(s.len(), 1, "{doc}");
    let s = s[0];
    assert_eq!(s["codec"], "G729");
    assert_eq!(s["clock_rate"], 8000);
    assert_eq!(s["detection"], "sdp");
    assert_eq!(s["call_id"], "g729-call");
    assert_eq!(
        (
            s["packets"].as_u64(),
            s["expected"].as_u64(),
            s["lost"].as_u64()
        ),
        (Some(97), Some(100), Some(3))
    );
    assert_eq!(
        (s["loss_bursts"].as_u64(), s["max_loss_burst"].as_u64()),
        (Some(2), Some(2))
    );
    // G.729A row of G.113: Ie 11, Bpl 19; delay 20 assumed + 60 buffer + (20 + 5 + 10) codec.
    assert_eq!(
        (s["ie"].as_f64(), s["bpl"].as_f64()),
        (Some(11.0), Some(19.0))
    );
    assert!(
        (s["delay_ms"].as_f64().unwrap_or(0.0) - 115.0).abs() < 1e-6,
        "{s}"
    );
    // Markov over 100 positions with losses at 10,11,30: n01 = 2, n10 = 2, n11 = 1, n00 = 94.
    let p = 2.0 / 96.0;
    let q = 2.0 / 3.0;
    assert!(
        (s["burst_ratio"].as_f64().unwrap_or(0.0) - 1.0 / (p + q)).abs() < 1e-6,
        "{s}"
    );

    let r = find_stream(&doc, "[2001:db8::20]:50000", "[2001:db8::10]:40000")[0];
    let refpk: Vec<(i64, u32)> = ba.iter().map(|p| (p.at_ns, p.header.timestamp)).collect();
    let (last, max, mean) = reference_jitter_ms(&refpk, 8000.0);
    assert!((r["jitter_ms"].as_f64().unwrap_or(-1.0) - last).abs() < 1e-6);
    assert!((r["max_jitter_ms"].as_f64().unwrap_or(-1.0) - max).abs() < 1e-6);
    assert!((r["mean_jitter_ms"].as_f64().unwrap_or(-1.0) - mean).abs() < 1e-6);
    let call = &doc["calls"][0];
    assert_eq!(call["from"], "alice");
    assert_eq!(call["to"], "bob");
}

#[test]
fn linux_sll_sll2_qinq_and_raw_ip_links() {
    for (name, link) in [
        ("sll", LinkSpec::LinuxSll),
        ("sll2", LinkSpec::LinuxSll2),
        ("qinq", LinkSpec::Vlan(vec![100, 200])),
        ("raw", LinkSpec::RawIp),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        let pkts = stream(
            "198.51.100.1:16384",
            "198.51.100.2:16386",
            0xC0FFEE,
            8,
            60,
            65500,
            160,
            T0,
            &|i| (i % 4) as i64 * 250,
        );
        let path = write_pcap(
            dir.path(),
            &format!("{name}.pcap"),
            link.linktype(),
            &rtp_frames(&link, &pkts),
        );
        let doc = analyze_json(&[&path], &[]);
        let s = find_stream(&doc, "198.51.100.1:16384", "198.51.100.2:16386");
        assert_eq!(s.len(), 1, "{name}: {doc}");
        assert_eq!(
            (
                s[0]["packets"].as_u64(),
                s[0]["expected"].as_u64(),
                s[0]["lost"].as_u64()
            ),
            (Some(60), Some(60), Some(0)),
            "{name}"
        );
        assert_eq!(s[0]["codec"], "PCMA", "{name}");
        let refpk: Vec<(i64, u32)> = pkts.iter().map(|p| (p.at_ns, p.header.timestamp)).collect();
        let (last, _, _) = reference_jitter_ms(&refpk, 8000.0);
        assert!(
            (s[0]["jitter_ms"].as_f64().unwrap_or(-1.0) - last).abs() < 1e-6,
            "{name}"
        );
    }
}

#[test]
fn dtx_with_comfort_noise_counts_everything_and_jitters_only_audio() {
    let dir = tempfile::tempdir().expect("tmp");
    // 30 audio packets, then a CN packet (PT 13) and 1 s of silence, then a talkspurt with marker.
    let src = addr("192.0.2.5:30000");
    let dst = addr("192.0.2.6:30002");
    let mut pkts = Vec::new();
    let mut seq: u16 = 10;
    for i in 0..30u32 {
        pkts.push(Pkt {
            at_ns: T0 + i64::from(i) * 20_000_000,
            src,
            dst,
            header: rtp_header(0, seq, 160 * i, 0xD7),
            payload_len: 160,
        });
        seq += 1;
    }
    // CN with a late arrival that would create fake jitter if it were counted as audio.
    pkts.push(Pkt {
        at_ns: T0 + 30 * 20_000_000 + 7_000_000,
        src,
        dst,
        header: rtp_header(13, seq, 160 * 30, 0xD7),
        payload_len: 1,
    });
    seq += 1;
    for i in 0..20u32 {
        let n = 80 + i; // 1 s later in media time
        let mut h = rtp_header(0, seq, 160 * n, 0xD7);
        h.marker = i == 0;
        pkts.push(Pkt {
            at_ns: T0 + i64::from(n) * 20_000_000,
            src,
            dst,
            header: h,
            payload_len: 160,
        });
        seq += 1;
    }
    let path = write_pcap(
        dir.path(),
        "dtx.pcap",
        1,
        &rtp_frames(&LinkSpec::Ethernet, &pkts),
    );
    let doc = analyze_json(&[&path], &[]);
    let s = find_stream(&doc, "192.0.2.5:30000", "192.0.2.6:30002");
    assert_eq!(s.len(), 1, "{doc}");
    let s = s[0];
    assert_eq!(
        (
            s["packets"].as_u64(),
            s["expected"].as_u64(),
            s["lost"].as_u64()
        ),
        (Some(51), Some(51), Some(0))
    );
    assert_eq!(s["payload_type"], 0);
    // Audio packets are perfectly paced in media time, so RFC 3550 jitter is exactly zero.
    assert_eq!(s["jitter_ms"].as_f64(), Some(0.0), "{s}");
    assert_eq!(s["jb_discarded"], 0);
}

#[test]
fn dynamic_payload_type_without_sdp_gets_an_inferred_clock() {
    let dir = tempfile::tempdir().expect("tmp");
    // PT 96 at 16 kHz, 20 ms packets (ts step 320), with arrival wobble.
    let pkts = stream(
        "203.0.113.7:40000",
        "203.0.113.8:41000",
        0x96,
        96,
        200,
        1,
        320,
        T0,
        &|i| ((i * 7) % 5) as i64 * 400,
    );
    let path = write_pcap(
        dir.path(),
        "dyn.pcap",
        1,
        &rtp_frames(&LinkSpec::Ethernet, &pkts),
    );
    let doc = analyze_json(&[&path], &[]);
    let s = find_stream(&doc, "203.0.113.7:40000", "203.0.113.8:41000");
    assert_eq!(s.len(), 1, "{doc}");
    let s = s[0];
    assert_eq!(s["clock_rate"], 16000);
    assert_eq!(s["clock_source"], "inferred");
    assert!(
        s["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .any(|f| f == "clock_inferred")
    );
    assert_eq!(s["packets"], 200);
    let refpk: Vec<(i64, u32)> = pkts.iter().map(|p| (p.at_ns, p.header.timestamp)).collect();
    let (last, max, _) = reference_jitter_ms(&refpk, 16000.0);
    assert!(
        (s["jitter_ms"].as_f64().unwrap_or(-1.0) - last).abs() < 1e-6,
        "{s} vs {last}"
    );
    assert!(
        (s["max_jitter_ms"].as_f64().unwrap_or(-1.0) - max).abs() < 1e-6,
        "{s} vs {max}"
    );
}

#[test]
fn pcapng_with_two_interfaces_and_resolutions() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("two.pcapng");
    let file = std::fs::File::create(&path).expect("create");
    let mut w = PcapNgWriter::new(std::io::BufWriter::new(file)).expect("shb");
    let eth = w.add_interface(1, 9).expect("if0");
    let sll = w.add_interface(113, 6).expect("if1");
    let a = stream(
        "192.0.2.1:10000",
        "192.0.2.2:10002",
        0xA,
        0,
        40,
        1,
        160,
        T0,
        &|i| (i % 2) as i64 * 333,
    );
    let b = stream(
        "192.0.2.3:10004",
        "192.0.2.4:10006",
        0xB,
        8,
        40,
        1,
        160,
        T0 + 3_000_000,
        &|_| 0,
    );
    let mut all: Vec<(u32, Pkt, LinkSpec)> = a
        .into_iter()
        .map(|p| (eth, p, LinkSpec::Ethernet))
        .collect();
    all.extend(b.into_iter().map(|p| (sll, p, LinkSpec::LinuxSll)));
    all.sort_by_key(|x| x.1.at_ns);
    for (iface, p, link) in &all {
        let frame = rtp_frames(link, std::slice::from_ref(p));
        w.write_frame(*iface, frame[0].0, &frame[0].1).expect("epb");
    }
    use std::io::Write;
    w.into_inner().flush().expect("flush");
    let doc = analyze_json(&[&path], &[]);
    assert_eq!(doc["streams"].as_array().map(Vec::len), Some(2), "{doc}");
    let a = find_stream(&doc, "192.0.2.1:10000", "192.0.2.2:10002")[0];
    // ns interface keeps 333 µs offsets exactly: max delta 20.333 ms.
    assert!(
        (a["max_delta_ms"].as_f64().unwrap_or(0.0) - 20.333).abs() < 1e-9,
        "{a}"
    );
    assert_eq!(
        find_stream(&doc, "192.0.2.3:10004", "192.0.2.4:10006")[0]["packets"],
        40
    );
}

#[test]
fn file_cut_short_is_analysed_up_to_the_cut() {
    let dir = tempfile::tempdir().expect("tmp");
    let pkts = stream(
        "192.0.2.1:20000",
        "192.0.2.2:30000",
        0x77,
        0,
        100,
        1,
        160,
        T0,
        &|_| 0,
    );
    let path = write_pcap(
        dir.path(),
        "cut.pcap",
        1,
        &rtp_frames(&LinkSpec::Ethernet, &pkts),
    );
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() - 50]).expect("cut"); // inside the last record
    let run = run_agent(&["analyze", "--format", "json", path.to_str().expect("utf8")]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(doc["streams"][0]["packets"], 99);
    assert_eq!(doc["files"][0]["packets"], 99);
    assert!(doc["files"][0]["truncated_at"].as_u64().is_some());
    // One warning for one problem.
    let warnings = doc["files"][0]["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.contains("cut short")),
        "{warnings:?}"
    );
}

#[test]
fn bad_input_files_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "this is not a capture file\n").expect("write");
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").expect("write");
    let missing = dir.path().join("missing.pcap");
    for p in [&text, &empty, &missing, &dir.path().to_path_buf()] {
        let name = p.to_str().expect("utf8");
        let run = run_agent(&["analyze", "--format", "json", name]);
        assert_eq!(run.status, 2, "{name}: {}", run.stderr);
        assert!(run.stderr.starts_with("voqa-agent: "), "{}", run.stderr);
        assert!(
            run.stderr.contains(name),
            "message must name the file: {}",
            run.stderr
        );
        assert_eq!(
            run.stderr.trim_end().lines().count(),
            1,
            "one line: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn pseudonymised_by_default_and_stable_with_a_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let a = addr("192.0.2.10:40000");
    let link = LinkSpec::Ethernet;
    let mut frames = vec![(
        T0,
        sip_frame(
            &link,
            addr("192.0.2.10:5060"),
            addr("192.0.2.20:5060"),
            &sip_with_sdp(
                "INVITE sip:bob@example.invalid SIP/2.0",
                "secret-call",
                "INVITE",
                a,
                &[(0, None)],
            ),
        ),
    )];
    frames.extend(rtp_frames(
        &link,
        &stream(
            "192.0.2.20:50000",
            "192.0.2.10:40000",
            0x5,
            0,
            10,
            1,
            160,
            T0 + 10_000_000,
            &|_| 0,
        ),
    ));
    let path = write_pcap(dir.path(), "p.pcap", 1, &frames);
    let keyfile = dir.path().join("key");
    std::fs::write(&keyfile, "operator-secret\n").expect("key");
    let run = |extra: &[&str]| {
        let mut args = vec!["analyze", "--format", "json"];
        args.extend_from_slice(extra);
        args.push(path.to_str().expect("utf8"));
        let r = run_agent(&args);
        assert_eq!(r.status, 0, "{}", r.stderr);
        r.stdout
    };
    let plain = run(&[]);
    assert!(
        !plain.contains("secret-call") && !plain.contains("alice"),
        "{plain}"
    );
    let k1 = run(&["--pseudonym-key-file", keyfile.to_str().expect("utf8")]);
    let k2 = run(&["--pseudonym-key-file", keyfile.to_str().expect("utf8")]);
    assert_eq!(k1, k2, "same key, same pseudonyms");
    assert!(!k1.contains("secret-call"));
    assert!(run(&["--no-pseudonymize"]).contains("secret-call"));
}

#[test]
fn table_output_lists_streams() {
    let dir = tempfile::tempdir().expect("tmp");
    let pkts = stream(
        "192.0.2.1:20000",
        "192.0.2.2:30000",
        0x1111,
        0,
        50,
        100,
        160,
        T0,
        &|_| 0,
    );
    let path = write_pcap(
        dir.path(),
        "t.pcap",
        1,
        &rtp_frames(&LinkSpec::Ethernet, &pkts),
    );
    let run = run_agent(&["analyze", "--format", "table", path.to_str().expect("utf8")]);
    assert_eq!(run.status, 0);
    assert!(
        run.stdout.contains("192.0.2.1:20000") && run.stdout.contains("0x00001111"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("PCMU/8000"), "{}", run.stdout);
}

#[test]
fn jitter_buffer_discards_fixed_and_adaptive() {
    // 100 packets every 20 ms; packet 30 arrives 50 ms late and packet 60 arrives 70 ms late.
    // F(60): only the 70 ms one is late (x = 70 > 60). A(20,500,40,4): the first spike exceeds
    // the initial 40 ms (late, N grows to 50), the second exceeds 50 (late): 2 discards.
    let dir = tempfile::tempdir().expect("tmp");
    let pkts = sorted(stream(
        "192.0.2.1:20000",
        "192.0.2.2:30000",
        0x1B,
        0,
        100,
        1,
        160,
        T0,
        &|i| match i {
            30 => 50_000,
            60 => 70_000,
            _ => 0,
        },
    ));
    let path = write_pcap(
        dir.path(),
        "jb.pcap",
        1,
        &rtp_frames(&LinkSpec::Ethernet, &pkts),
    );
    let fixed = analyze_json(&[&path], &[]);
    let s = find_stream(&fixed, "192.0.2.1:20000", "192.0.2.2:30000")[0];
    assert_eq!(
        (
            s["jb_discarded"].as_u64(),
            s["lost"].as_u64(),
            s["reordered"].as_u64()
        ),
        (Some(1), Some(0), Some(2)),
        "{s}"
    );
    assert!(
        (s["effective_loss_pct"].as_f64().unwrap_or(0.0) - 1.0).abs() < 1e-9,
        "{s}"
    );
    assert_eq!(s["jitter_buffer"], "fixed:60");
    let adaptive = analyze_json(&[&path], &["--jitter-buffer", "adaptive"]);
    let s = find_stream(&adaptive, "192.0.2.1:20000", "192.0.2.2:30000")[0];
    assert_eq!(s["jb_discarded"].as_u64(), Some(2), "{s}");
    assert!(
        (s["effective_loss_pct"].as_f64().unwrap_or(0.0) - 2.0).abs() < 1e-9,
        "{s}"
    );
    assert_eq!(s["jitter_buffer"], "adaptive:20,500,40,4");
}

#[test]
fn stun_dtls_and_random_udp_are_not_streams() {
    let dir = tempfile::tempdir().expect("tmp");
    let link = LinkSpec::Ethernet;
    let src = addr("192.0.2.1:50000");
    let dst = addr("192.0.2.2:50002");
    let mut frames = Vec::new();
    let mut rng: u64 = 42;
    for i in 0..200u32 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // STUN binding request (first byte 0x00), DTLS record (0x16) and random bytes whose first
        // byte is in the RTP range but whose sequence numbers are random.
        let stun = [
            0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        let dtls = [
            0x16,
            0xfe,
            0xfd,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            (i & 0xff) as u8,
            0,
            4,
            1,
            2,
            3,
            4,
        ];
        let mut junk = rng.to_be_bytes().repeat(4);
        junk[0] = 0x80;
        junk[1] = 0x00;
        for payload in [&stun[..], &dtls[..], &junk[..]] {
            frames.push((
                T0 + i64::from(i) * 20_000_000,
                udp_frame_of(&link, src, dst, payload),
            ));
        }
    }
    let path = write_pcap(dir.path(), "noise.pcap", 1, &frames);
    let doc = analyze_json(&[&path], &[]);
    assert_eq!(doc["streams"].as_array().map(Vec::len), Some(0), "{doc}");
    assert_eq!(doc["files"][0]["packets"], 600);
}

fn udp_frame_of(link: &LinkSpec, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    voqa_agent::decode::build::udp_frame(link, src, dst, payload)
}
