//! The human-readable `analyze --format table` view: one line per stream, then the calls.
//! Formats only; the numbers are those of the JSON document.

use std::fmt::Write;

use voqa_wire::{AnalyzeOutput, StreamSummary};

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |x| format!("{x:.decimals$}"))
}

/// What became of a file's IP fragments, naming only the outcomes that happened.
fn fragments_line(r: &voqa_wire::IpReassembly) -> String {
    let mut line = format!("ip fragments: {} datagram(s) reassembled", r.reassembled);
    let outcomes = [
        (r.not_udp, "not UDP"),
        (r.malformed, "malformed"),
        (r.duplicates, "duplicate fragment(s)"),
        (r.overlapping, "overlapping"),
        (r.inconsistent, "inconsistent"),
        (r.too_big, "too big"),
        (r.evicted, "evicted"),
        (r.timed_out, "timed out"),
        (r.incomplete, "incomplete at the end"),
    ];
    for (count, what) in outcomes {
        if count > 0 {
            let _ = write!(line, ", {count} {what}");
        }
    }
    line
}

/// Renders the table as one string (the caller prints it).
pub fn render(out: &AnalyzeOutput) -> String {
    let mut s = String::new();
    for f in &out.files {
        let k = &f.skipped;
        let _ = write!(s, "{}: {} frames, {} bytes", f.path, f.packets, f.bytes);
        // Only the reasons that occurred: a "0 truncated" beside a "file cut short" warning
        // reads as a contradiction (these are frames cut by the snap length, not the file).
        let skipped: Vec<String> = [
            (k.non_udp, "non-UDP"),
            (k.truncated, "cut by the snap length"),
            (k.fragments, "fragments"),
            (k.malformed, "malformed"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if skipped.is_empty() {
            let _ = writeln!(s);
        } else {
            let _ = writeln!(s, "; skipped {}", skipped.join(", "));
        }
        if k.fragments > 0 {
            let _ = writeln!(s, "  {}", fragments_line(&f.ip_reassembly));
        }
        for w in &f.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        let t = &f.sip_tcp;
        if t.segments > 0 {
            let _ = writeln!(
                s,
                "  SIP over TCP: {} messages ({} over WebSocket) in {} segments; {} resyncs, {} bytes dropped, {} connections evicted",
                t.messages,
                t.websocket_messages,
                t.segments,
                t.resyncs,
                t.bytes_dropped,
                t.connections_evicted
            );
        }
    }
    let _ = writeln!(s);
    if out.streams.is_empty() {
        let _ = writeln!(s, "No RTP streams found.");
    } else {
        render_streams(&mut s, out);
    }
    render_calls(&mut s, out);
    s
}

fn render_streams(s: &mut String, out: &AnalyzeOutput) {
    let header = [
        "#",
        "source",
        "destination",
        "ssrc",
        "codec",
        "media",
        "pkts",
        "lost",
        "loss%",
        "dup",
        "reord",
        "jitter",
        "maxjit",
        "jb-disc",
        "eff-loss%",
        "rtt",
        "MOS",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for (i, st) in out.streams.iter().enumerate() {
        let loss_pct = if st.expected == 0 {
            0.0
        } else {
            100.0 * st.lost as f64 / st.expected as f64
        };
        rows.push(vec![
            i.to_string(),
            st.src.clone(),
            st.dst.clone(),
            st.ssrc.clone(),
            match st.clock_rate {
                Some(c) => format!("{}/{}", st.codec, c),
                None => st.codec.clone(),
            },
            if st.srtp {
                format!("{}+srtp", st.media)
            } else {
                st.media.clone()
            },
            st.packets.to_string(),
            st.lost.to_string(),
            format!("{loss_pct:.2}"),
            st.duplicates.to_string(),
            st.reordered.to_string(),
            opt(st.jitter_ms, 2),
            opt(st.max_jitter_ms, 2),
            st.jb_discarded.to_string(),
            format!("{:.2}", st.effective_loss_pct),
            opt(st.rtt_ms, 1),
            opt(st.mos, 2),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                let w = widths.get(c).copied().unwrap_or(0);
                if c <= 5 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        let _ = writeln!(s, "{}", line.join("  ").trim_end());
    }
    let _ = writeln!(
        s,
        "\njitter, rtt in ms; MOS by ITU-T G.107 (jitter buffer {}){}{}",
        jb_of(out),
        if out.streams.iter().any(|st| st.media == "video") {
            "; video: loss only, no MOS"
        } else {
            ""
        },
        if out.streams.iter().any(|st| st.srtp) {
            "; +srtp: negotiated as SRTP, measured from its clear RTP headers, no RTT from SRTCP"
        } else {
            ""
        }
    );
    for (i, st) in out.streams.iter().enumerate() {
        if let Some(note) = clock_note(st) {
            let _ = writeln!(s, "  #{i}: {note}");
        }
        if st.flags.iter().any(|f| f == "jb_resynced") {
            let _ = writeln!(
                s,
                "  #{i}: the jitter buffer re-synchronised on persistent lateness (delay step or sender pause)"
            );
        }
    }
}

fn render_calls(s: &mut String, out: &AnalyzeOutput) {
    if let Some(d) = &out.dialogs
        && (d.calls > 0 || d.evicted > 0)
    {
        let _ = writeln!(
            s,
            "\nSIP dialogs: {} calls, {} open at the end, {} evicted, {} timed out, {} forgotten, {} retransmissions; {} messages of no call",
            d.calls,
            d.open,
            d.evicted,
            d.timed_out,
            d.forgotten,
            d.retransmissions,
            d.non_call_messages
        );
    }
    if !out.calls.is_empty() {
        let _ = writeln!(s, "\nCalls:");
        for c in &out.calls {
            let streams: Vec<String> = c.streams.iter().map(|i| format!("#{i}")).collect();
            let time = |t: Option<voqa_wire::Timestamp>| {
                t.map_or_else(|| "-".to_owned(), |t| t.to_string())
            };
            let _ = writeln!(
                s,
                "  {}  {} -> {}  status {}  setup {}  answer {}  end {}  streams {}",
                c.call_id,
                c.from.as_deref().unwrap_or("?"),
                c.to.as_deref().unwrap_or("?"),
                c.status.map_or_else(|| "-".to_owned(), |st| st.to_string()),
                time(c.setup),
                time(c.answer),
                time(c.end),
                if streams.is_empty() {
                    "-".to_owned()
                } else {
                    streams.join(",")
                }
            );
            let _ = writeln!(s, "    {}", call_details(c));
        }
    }
}

/// The call record's second line: how it ended, ring time, duration, MOS, direction, events and
/// media problems.
fn call_details(c: &voqa_wire::CallSummary) -> String {
    let secs = |ms: Option<u64>| {
        ms.map_or_else(
            || "-".to_owned(),
            |ms| format!("{:.1} s", ms as f64 / 1000.0),
        )
    };
    let mut line = format!(
        "ended {} by {}{}  ring {}  duration {}  MOS {}",
        c.end_cause.as_deref().unwrap_or("-"),
        c.ended_by.as_deref().unwrap_or("-"),
        c.reason_cause
            .map(|q| format!(" (Q.850 cause {q})"))
            .unwrap_or_default(),
        secs(c.ring_ms),
        secs(c.duration_ms),
        c.mos.map_or_else(|| "-".to_owned(), |m| format!("{m:.2}")),
    );
    if let Some(direction) = &c.direction {
        line.push_str(&format!(
            "  {direction}{}",
            c.peer
                .as_deref()
                .map(|p| format!(" peer {p}"))
                .unwrap_or_default()
        ));
    }
    for e in &c.events {
        line.push_str(&format!(
            "  {} by {} at {}",
            e.kind,
            e.by.as_deref().unwrap_or("?"),
            e.time
        ));
    }
    if c.problems.is_empty() {
        line.push_str("  problems: none");
    } else {
        for p in &c.problems {
            line.push_str(&format!(
                "  PROBLEM {} {} from {}",
                p.kind, p.direction, p.start
            ));
        }
    }
    line
}

/// Why a stream's clock is inferred or unknown, for the notes under the table.
fn clock_note(st: &StreamSummary) -> Option<String> {
    let inference = st.clock_inference.as_ref();
    match (st.clock_source.as_str(), st.clock_rate) {
        ("inferred", Some(clock)) => {
            let how = match inference {
                Some(i) if i.method == "ts_step" => format!(
                    "from the timestamp step {} ({} ms)",
                    i.ts_step.unwrap_or(0),
                    opt(i.ptime_ms, 0)
                ),
                Some(i) if i.method == "arrival" => "from the arrival rate".to_owned(),
                _ => "from the timestamps".to_owned(),
            };
            let confidence = inference
                .and_then(|i| i.confidence.as_deref())
                .unwrap_or("unstated");
            Some(format!(
                "clock {clock} Hz inferred {how}, {confidence} confidence (PT {}, no SDP)",
                st.payload_type
            ))
        }
        ("unknown", _) => Some(format!(
            "clock unknown (PT {}, no SDP; not inferable from its timestamps and arrivals): counted, no jitter or MOS",
            st.payload_type
        )),
        _ => None,
    }
}

fn jb_of(out: &AnalyzeOutput) -> String {
    match &out.analysis {
        Some(a) if a.resync_after_late == 0 => {
            format!("{}, never re-synchronised", a.jitter_buffer)
        }
        Some(a) => format!(
            "{}, re-synchronised on {} late packets in a row",
            a.jitter_buffer, a.resync_after_late
        ),
        None => out
            .streams
            .first()
            .map_or("fixed:60", |s| s.jitter_buffer.as_str())
            .to_owned(),
    }
}
