//! The human-readable `analyze --format table` view: one line per stream, then the calls.
//! Formats only; the numbers are those of the JSON document.

use std::fmt::Write;

use voqa_wire::AnalyzeOutput;

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |x| format!("{x:.decimals$}"))
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
        for w in &f.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
    }
    let _ = writeln!(s);
    if out.streams.is_empty() {
        let _ = writeln!(s, "No RTP streams found.");
        return s;
    }
    let header = [
        "#",
        "source",
        "destination",
        "ssrc",
        "codec",
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
                if c <= 4 {
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
        "\njitter, rtt in ms; MOS by ITU-T G.107 (jitter buffer {})",
        jb_of(out)
    );
    if !out.calls.is_empty() {
        let _ = writeln!(s, "\nCalls:");
        for c in &out.calls {
            let streams: Vec<String> = c.streams.iter().map(|i| format!("#{i}")).collect();
            let _ = writeln!(
                s,
                "  {}  {} -> {}  setup {}  end {}  streams {}",
                c.call_id,
                c.from.as_deref().unwrap_or("?"),
                c.to.as_deref().unwrap_or("?"),
                c.setup.map_or_else(|| "-".to_owned(), |t| t.to_string()),
                c.end.map_or_else(|| "-".to_owned(), |t| t.to_string()),
                if streams.is_empty() {
                    "-".to_owned()
                } else {
                    streams.join(",")
                }
            );
        }
    }
    s
}

fn jb_of(out: &AnalyzeOutput) -> &str {
    out.streams
        .first()
        .map_or("fixed:60", |s| s.jitter_buffer.as_str())
}
