//! Writes the demo capture committed at `tests/data/demo-call.pcap` (see `support/demo.rs`).
//! Usage: cargo run -p voqa-agent --example make-demo-capture [-- OUT.pcap]

#[allow(dead_code)]
#[path = "support/demo.rs"]
mod demo;

use std::io::Write;

use voqa_agent::capture::writer::PcapWriter;

fn main() -> std::io::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/data/demo-call.pcap".to_owned());
    let d = demo::build();
    let mut w = PcapWriter::new(std::io::BufWriter::new(std::fs::File::create(&out)?), 1)?;
    for (ts, f) in &d.frames {
        w.write_frame(*ts, f)?;
    }
    w.into_inner().flush()?;
    eprintln!("wrote {} frames to {out}", d.frames.len());
    Ok(())
}
