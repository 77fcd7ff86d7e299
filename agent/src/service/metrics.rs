//! The agent's local Prometheus endpoint (`GET /metrics`, text exposition format 0.0.4) on a
//! loopback address: capture and stream counters per worker. A plain blocking listener on its
//! own thread; it reads only atomics the workers publish and never touches the packet path.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::pipeline::counters::{PipelineStats, WorkerStats};
use crate::ship::delivery::Delivery;
use crate::ship::http::ShipState;

/// Renders every metric (the shipping ones when the agent ships to a collector).
pub fn render(shared: &PipelineStats, delivery: Option<&Delivery>) -> String {
    let mut out = String::with_capacity(2048);
    type Metric = (
        &'static str,
        &'static str,
        &'static str,
        fn(&WorkerStats) -> u64,
    );
    let per_worker: [Metric; 13] = [
        (
            "voqa_capture_kernel_packets_total",
            "counter",
            "Packets the kernel delivered to the ring, drops included.",
            |w| w.kernel_packets.load(Ordering::Relaxed),
        ),
        (
            "voqa_capture_kernel_drops_total",
            "counter",
            "Packets the kernel dropped because the ring was full.",
            |w| w.kernel_drops.load(Ordering::Relaxed),
        ),
        (
            "voqa_capture_queue_freezes_total",
            "counter",
            "Times the ring queue froze.",
            |w| w.kernel_freezes.load(Ordering::Relaxed),
        ),
        ("voqa_frames_total", "counter", "Frames analysed.", |w| {
            w.frames.load(Ordering::Relaxed)
        }),
        (
            "voqa_streams_active",
            "gauge",
            "RTP streams being measured.",
            |w| w.streams_active.load(Ordering::Relaxed),
        ),
        (
            "voqa_streams_evicted_total",
            "counter",
            "Streams evicted because the flow table was full.",
            |w| w.streams_evicted.load(Ordering::Relaxed),
        ),
        (
            "voqa_ip_fragments_total",
            "counter",
            "IP fragment frames seen (IPv4, and IPv6 with a Fragment header).",
            |w| w.ip_fragments.load(Ordering::Relaxed),
        ),
        (
            "voqa_ip_reassembled_total",
            "counter",
            "Datagrams reassembled from IP fragments.",
            |w| w.ip_reassembled.load(Ordering::Relaxed),
        ),
        (
            "voqa_ip_reassembly_dropped_total",
            "counter",
            "Fragmented datagrams refused (overlapping, inconsistent, too big) or dropped incomplete (evicted, timed out).",
            |w| w.ip_reassembly_dropped.load(Ordering::Relaxed),
        ),
        (
            "voqa_sip_dialogs_open",
            "gauge",
            "SIP dialogs (INVITE calls) not ended yet.",
            |w| w.dialogs_open.load(Ordering::Relaxed),
        ),
        (
            "voqa_sip_dialogs_evicted_total",
            "counter",
            "Open SIP dialogs evicted because the dialog table was full.",
            |w| w.dialogs_evicted.load(Ordering::Relaxed),
        ),
        (
            "voqa_sip_dialogs_timed_out_total",
            "counter",
            "SIP dialogs ended by a timeout (no final response to the INVITE, or no BYE within the longest call).",
            |w| w.dialogs_timed_out.load(Ordering::Relaxed),
        ),
        (
            "voqa_sip_retransmissions_total",
            "counter",
            "Retransmitted INVITEs, final responses, CANCELs and BYEs (each counted, none a new transaction).",
            |w| w.sip_retransmissions.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, get) in per_worker {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (i, w) in shared.workers.iter().enumerate() {
            out.push_str(&format!(
                "{name}{{worker=\"{i}\",interface=\"{}\"}} {}\n",
                w.interface,
                get(w)
            ));
        }
    }
    for (name, help, v) in [
        (
            "voqa_reports_total",
            "Stream reports the sink accepted.",
            shared.reports.load(Ordering::Relaxed),
        ),
        (
            "voqa_reports_dropped_total",
            "Stream reports lost: refused by the sink or not queued to it.",
            shared.reports_dropped.load(Ordering::Relaxed),
        ),
        (
            "voqa_heartbeats_total",
            "Heartbeats the sink accepted.",
            shared.heartbeats.load(Ordering::Relaxed),
        ),
        (
            "voqa_heartbeats_dropped_total",
            "Heartbeats lost: refused by the sink or not queued to it.",
            shared.heartbeats_dropped.load(Ordering::Relaxed),
        ),
        (
            "voqa_call_records_total",
            "Call records the sink accepted.",
            shared.calls.load(Ordering::Relaxed),
        ),
        (
            "voqa_call_records_dropped_total",
            "Call records lost: refused by the sink or not queued to it.",
            shared.calls_dropped.load(Ordering::Relaxed),
        ),
        (
            "voqa_call_join_streams_total",
            "Streams measured by another capture worker than the one that saw the call's SIP, added to the call's record.",
            shared.call_join_streams.load(Ordering::Relaxed),
        ),
        (
            "voqa_call_join_timed_out_total",
            "Call records released at the join's grace before every worker caught up (they may lack a stream).",
            shared.call_join_timed_out.load(Ordering::Relaxed),
        ),
        (
            "voqa_call_join_evicted_total",
            "Call records released early because the call join's table was full.",
            shared.call_join_evicted.load(Ordering::Relaxed),
        ),
        (
            "voqa_call_join_unjoined_streams_total",
            "Streams with a Call-ID that joined no call record (call never retired, table full, or late).",
            shared.call_join_unjoined.load(Ordering::Relaxed),
        ),
        (
            "voqa_call_join_duplicate_calls_total",
            "Calls retired by two workers (their SIP reached both): each record released as its worker made it.",
            shared.call_join_duplicates.load(Ordering::Relaxed),
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
        ));
    }
    out.push_str(&format!(
        "# HELP voqa_call_join_held Calls the call join holds until the other workers caught up.\n\
         # TYPE voqa_call_join_held gauge\nvoqa_call_join_held {}\n",
        shared.call_join_held.load(Ordering::Relaxed)
    ));
    if let Some(d) = delivery {
        render_shipping(&mut out, d);
    }
    out
}

fn render_shipping(out: &mut String, d: &Delivery) {
    let c = d.counters();
    let s = d.shipper_counters();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    for (name, kind, help, v) in [
        (
            "voqa_ship_pending_records",
            "gauge",
            "Records in the spool not yet acknowledged by a collector.",
            c.pending_records,
        ),
        (
            "voqa_ship_pending_bytes",
            "gauge",
            "Payload bytes of those records.",
            c.pending_bytes,
        ),
        (
            "voqa_ship_acked_records_total",
            "counter",
            "Records a collector acknowledged (cumulative over the spool's life).",
            c.acked_records,
        ),
        (
            "voqa_ship_dropped_cap_records_total",
            "counter",
            "Records dropped, oldest first, because the spool reached its size cap.",
            c.dropped_cap_records,
        ),
        (
            "voqa_ship_dropped_write_records_total",
            "counter",
            "Records that could not be written to the spool.",
            c.dropped_write_records,
        ),
        (
            "voqa_ship_corrupt_records_total",
            "counter",
            "Torn or corrupt spool records cut or skipped.",
            c.corrupt_records,
        ),
        (
            "voqa_ship_dead_letter_records_total",
            "counter",
            "Records a collector refused for good, kept in the dead letter.",
            c.dead_letter_records,
        ),
        (
            "voqa_ship_batches_total",
            "counter",
            "Batches acknowledged since start.",
            load(&s.batches_sent),
        ),
        (
            "voqa_ship_send_failures_total",
            "counter",
            "Requests that failed and were retried (connection, timeout, 5xx, 429).",
            load(&s.send_failures),
        ),
        (
            "voqa_ship_unauthorized_total",
            "counter",
            "Requests refused for the token (401/403).",
            load(&s.unauthorized),
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
        ));
    }
    let state = match d.state() {
        ShipState::Idle => "idle",
        ShipState::Delivering => "delivering",
        ShipState::Retrying(_) => "retrying",
        ShipState::Unauthorized(_) => "unauthorized",
    };
    out.push_str("# HELP voqa_ship_state The shipper's state (1 for the current one).\n# TYPE voqa_ship_state gauge\n");
    for s in ["idle", "delivering", "retrying", "unauthorized"] {
        out.push_str(&format!(
            "voqa_ship_state{{state=\"{s}\"}} {}\n",
            u8::from(s == state)
        ));
    }
}

/// Serves `/metrics` until `stop` is set.
pub fn spawn(
    addr: &str,
    shared: Arc<PipelineStats>,
    delivery: Option<Arc<Delivery>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    std::thread::Builder::new().name("voqa-metrics".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                    let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
                    let mut buf = [0u8; 1024];
                    let n = conn.read(&mut buf).unwrap_or(0);
                    let request = String::from_utf8_lossy(buf.get(..n).unwrap_or(&[]));
                    let (status, body) = if request.starts_with("GET /metrics") {
                        ("200 OK", render(&shared, delivery.as_deref()))
                    } else {
                        ("404 Not Found", "only GET /metrics is served\n".to_owned())
                    };
                    let _ = write!(
                        conn,
                        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_worker_and_counter() {
        let w = Arc::new(WorkerStats {
            interface: "eth0".into(),
            ..WorkerStats::default()
        });
        w.kernel_drops.store(7, Ordering::Relaxed);
        w.ip_reassembled.store(4, Ordering::Relaxed);
        let shared = PipelineStats::with_workers(vec![w]);
        shared.reports.store(3, Ordering::Relaxed);
        shared.reports_dropped.store(2, Ordering::Relaxed);
        shared.call_join_streams.store(5, Ordering::Relaxed);
        shared.call_join_held.store(6, Ordering::Relaxed);
        let text = render(&shared, None);
        assert!(text.contains("voqa_call_join_streams_total 5\n"), "{text}");
        assert!(text.contains("# TYPE voqa_call_join_held gauge\nvoqa_call_join_held 6\n"));
        assert!(
            text.contains("voqa_call_join_timed_out_total 0\n"),
            "{text}"
        );
        assert!(
            text.contains("voqa_capture_kernel_drops_total{worker=\"0\",interface=\"eth0\"} 7\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE voqa_streams_active gauge\n"));
        assert!(
            text.contains("voqa_ip_reassembled_total{worker=\"0\",interface=\"eth0\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("voqa_reports_total 3\n"));
        assert!(text.contains("voqa_reports_dropped_total 2\n"), "{text}");
        assert!(text.contains("voqa_heartbeats_dropped_total 0\n"), "{text}");
    }

    /// The dialog counters come from a real analyzer fed SIP: an INVITE sent twice (one
    /// retransmission) opens one dialog; a second call's BYE ends that call (not counted open).
    #[test]
    fn dialog_counters_come_from_the_analyzer() {
        use crate::capture::frame::LINKTYPE_ETHERNET;
        use crate::decode::build::{LinkSpec, udp_frame};
        use crate::streams::{Analyzer, AnalyzerConfig};
        let (a, b) = (
            std::net::SocketAddr::from(([10, 1, 0, 1], 5060)),
            std::net::SocketAddr::from(([10, 1, 0, 2], 5060)),
        );
        let sip = |start: &str, call: &str, cseq: &str, to_tag: &str| {
            format!(
                "{start}\r\nVia: SIP/2.0/UDP 10.1.0.1;branch=z9hG4bK{call}{cseq}\r\n\
                 From: <sip:alice@x>;tag=a\r\nTo: <sip:bob@x>{to_tag}\r\nCall-ID: {call}\r\n\
                 CSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
            )
        };
        let messages = [
            sip("INVITE sip:bob@x SIP/2.0", "one", "1 INVITE", ""),
            sip("INVITE sip:bob@x SIP/2.0", "one", "1 INVITE", ""),
            sip("INVITE sip:bob@x SIP/2.0", "two", "1 INVITE", ""),
            sip("SIP/2.0 200 OK", "two", "1 INVITE", ";tag=b"),
            sip("BYE sip:bob@x SIP/2.0", "two", "2 BYE", ";tag=b"),
            sip("OPTIONS sip:bob@x SIP/2.0", "three", "1 OPTIONS", ""),
        ];
        let mut analyzer = Analyzer::new(AnalyzerConfig::default());
        for (i, m) in messages.iter().enumerate() {
            let frame = udp_frame(&LinkSpec::Ethernet, a, b, m.as_bytes());
            analyzer.on_frame(
                1_000_000 * i as i64,
                LINKTYPE_ETHERNET,
                &frame,
                frame.len() as u32,
            );
        }
        let w = Arc::new(WorkerStats::new("eth0"));
        w.publish(&analyzer);
        let text = render(&PipelineStats::with_workers(vec![w]), None);
        for line in [
            "# TYPE voqa_sip_dialogs_open gauge\n",
            "voqa_sip_dialogs_open{worker=\"0\",interface=\"eth0\"} 1\n",
            "voqa_sip_retransmissions_total{worker=\"0\",interface=\"eth0\"} 1\n",
            "voqa_sip_dialogs_evicted_total{worker=\"0\",interface=\"eth0\"} 0\n",
            "voqa_sip_dialogs_timed_out_total{worker=\"0\",interface=\"eth0\"} 0\n",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn serves_metrics_over_http() {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(PipelineStats::default());
        let probe = TcpListener::bind("127.0.0.1:0").expect("port");
        let addr = probe.local_addr().expect("addr").to_string();
        drop(probe);
        let handle = spawn(&addr, shared, None, Arc::clone(&stop)).expect("listen");
        let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        let mut reply = String::new();
        conn.read_to_string(&mut reply).expect("read");
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        assert!(reply.contains("voqa_heartbeats_total 0"));
        stop.store(true, Ordering::Relaxed);
        handle.join().expect("join");
    }
}
