//! An impairing userspace UDP relay for the live tests, and its ground-truth log.
//!
//! The relay runs inside a test namespace (as a child process, see `netns::spawn_child`): it
//! listens on `listen` (where GStreamer sends), and forwards each datagram to `dest` from a
//! socket bound to `bind`, after a seeded random decision to drop it (probability `loss`) and a
//! delay of `base_ms + uniform(0, jitter_ms)`. A receiving thread stamps, decides and hands the
//! packet to one scheduling thread, which keeps a min-heap of release times and sends each
//! packet when due; reordering happens by itself when the jitter exceeds the packet spacing.
//! The log records every received RTP sequence number in arrival order, which were dropped, and
//! the actual release (wall-clock) time of every forwarded one.
//!
//! It must stop on its own: after `idle_ms` without a datagram (once traffic has started), when
//! the stop file appears, or after `max_ms` in any case. It never alters a forwarded payload.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::netns::{self, ChildGuard};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayConfig {
    pub listen: String,
    pub bind: String,
    pub dest: String,
    /// Probability of dropping each packet.
    pub loss: f64,
    pub base_ms: f64,
    /// Width of the uniform extra delay.
    pub jitter_ms: f64,
    pub seed: u64,
    /// The first packets are never dropped: the agent's heuristic detection (RFC 3550
    /// probation) needs consecutive sequence numbers to see the stream at all.
    pub spare_first: u64,
    pub idle_ms: u64,
    pub max_ms: u64,
    pub ready_file: PathBuf,
    pub stop_file: PathBuf,
    pub log_file: PathBuf,
}

/// What the relay did, written by the child when it stops.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayLog {
    /// Every datagram received: (arrival index, RTP sequence, RTP timestamp, dropped).
    pub received: Vec<Received>,
    /// Every datagram forwarded, in release order.
    pub released: Vec<Released>,
    /// Datagrams too short to be RTP (forwarded all the same; should be none).
    pub non_rtp: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Received {
    pub index: u64,
    pub seq: u16,
    pub rtp_ts: u32,
    pub dropped: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Released {
    pub index: u64,
    pub seq: u16,
    pub rtp_ts: u32,
    /// Wall-clock time (Unix ns) just before `send_to` and just after it returned. The capture
    /// timestamp on the veth is taken inside that call (veth_xmit → netif_rx stamps the skb),
    /// so it lies between the two, whatever preempted the relay around the call.
    pub before_ns: i64,
    pub after_ns: i64,
    /// The delay the relay meant to add (base + uniform part), in ns.
    pub delay_ns: i64,
}

impl RelayLog {
    /// Arrival indexes of the first and last forwarded packets.
    pub fn forwarded_span(&self) -> (u64, u64) {
        let fwd = self.received.iter().filter(|r| !r.dropped).map(|r| r.index);
        let lo = fwd.clone().min().expect("relay forwarded nothing");
        let hi = fwd.max().expect("relay forwarded nothing");
        (lo, hi)
    }

    /// Drops a monitor can see as loss: those strictly between the first and the last forwarded
    /// packet. A drop before the first or after the last forwarded packet is invisible on the
    /// wire (the stream simply starts later or ends earlier), so it is not loss anywhere.
    pub fn visible_drops(&self) -> u64 {
        let (lo, hi) = self.forwarded_span();
        self.received
            .iter()
            .filter(|r| r.dropped && r.index > lo && r.index < hi)
            .count() as u64
    }

    pub fn forwarded(&self) -> u64 {
        self.released.len() as u64
    }

    /// Packets released after one with a higher arrival index (metrics-spec §2.3 note 4).
    pub fn reordered(&self) -> u64 {
        let mut highest: Option<u64> = None;
        let mut n = 0;
        for r in &self.released {
            match highest {
                Some(h) if r.index < h => n += 1,
                _ => highest = Some(r.index),
            }
        }
        n
    }

    /// The sender's sequence numbers in arrival order must be consecutive: otherwise packets
    /// were lost before the relay (loopback) and the relay's drops are not the whole truth.
    pub fn assert_input_consecutive(&self) {
        for w in self.received.windows(2) {
            assert_eq!(
                w[1].seq,
                w[0].seq.wrapping_add(1),
                "relay input not consecutive at arrival {}",
                w[1].index
            );
        }
    }

    /// (midpoint of the `send_to` call in ns, RTP timestamp) in release order, for
    /// `support::reference_jitter_ms`: the wire's jitter as the relay saw it.
    pub fn release_times(&self) -> Vec<(i64, u32)> {
        self.released
            .iter()
            .map(|r| (r.before_ns + (r.after_ns - r.before_ns) / 2, r.rtp_ts))
            .collect()
    }

    /// The release times with the relay's intended delay taken out: what the path would have
    /// looked like without the impairment (sender timing, loopback, relay lateness).
    pub fn times_without_relay_delay(&self) -> Vec<(i64, u32)> {
        self.release_times()
            .into_iter()
            .zip(&self.released)
            .map(|((at, ts), r)| (at - r.delay_ns, ts))
            .collect()
    }

    /// A perfect sender (arrival exactly on its RTP clock) followed by the relay's intended
    /// delays, in the actual release order: the impairment alone.
    pub fn times_of_relay_delay_only(&self, clock_hz: u32) -> Vec<(i64, u32)> {
        let Some(first) = self.released.first() else {
            return Vec::new();
        };
        self.released
            .iter()
            .map(|r| {
                let units = i64::from(r.rtp_ts.wrapping_sub(first.rtp_ts) as i32);
                (
                    units * 1_000_000_000 / i64::from(clock_hz) + r.delay_ns,
                    r.rtp_ts,
                )
            })
            .collect()
    }

    /// How far (ms) an RFC 3550 estimate over the true capture times can differ from the one
    /// over [`Self::release_times`]: each true time is within ±w/2 of the midpoint (w = the
    /// `send_to` call's duration), so each transit difference D is off by at most
    /// (w_i + w_{i−1})/2, and ||a| − |b|| ≤ |a − b| carries that through the same exponential
    /// average. Returns (bound on the last value, bound on the mean over packets 2..N).
    pub fn timestamp_uncertainty_ms(&self) -> (f64, f64) {
        let mut bound = 0.0f64;
        let mut sum = 0.0f64;
        for w in self.released.windows(2) {
            let spread_ns =
                ((w[0].after_ns - w[0].before_ns) + (w[1].after_ns - w[1].before_ns)) as f64 / 2.0;
            bound += (spread_ns / 1e6 - bound) / 16.0;
            sum += bound;
        }
        let n = self.released.len().saturating_sub(1).max(1) as f64;
        (bound, sum / n)
    }
}

/// The parent's handle on a running relay child.
pub struct Relay {
    pub config: RelayConfig,
    child: ChildGuard,
    child_log: PathBuf,
}

impl Relay {
    /// Starts the relay in `ns` and waits until it listens.
    pub fn start(ns: &str, config: RelayConfig, dir: &Path, name: &str) -> Relay {
        let child_log = dir.join(format!("{name}.log"));
        let args = serde_json::to_value(&config).expect("relay config to JSON");
        let mut child = netns::spawn_child(ns, "relay", &args, &child_log);
        netns::wait_for_file(
            &config.ready_file,
            Duration::from_secs(15),
            &mut child,
            &child_log,
        );
        Relay {
            config,
            child,
            child_log,
        }
    }

    /// Asks the relay to stop (it first releases what it holds) and returns its log.
    pub fn finish(mut self) -> RelayLog {
        std::fs::write(&self.config.stop_file, b"stop").expect("write relay stop file");
        let status = self.child.wait_bounded(Duration::from_secs(10));
        let text = std::fs::read_to_string(&self.child_log).unwrap_or_default();
        assert!(status.success(), "relay failed ({status}):\n{text}");
        let log = std::fs::read(&self.config.log_file)
            .unwrap_or_else(|e| panic!("relay log missing ({e}):\n{text}"));
        serde_json::from_slice(&log).expect("relay log JSON")
    }
}

/// SplitMix64: small, seedable, and good enough for loss and delay draws.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Pending {
    index: u64,
    seq: u16,
    rtp_ts: u32,
    delay_ns: i64,
    data: Vec<u8>,
}

fn unix_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as i64
}

/// Child role `relay`: runs until idle/stop/max, then writes the log file.
pub fn child_main(args: &serde_json::Value) {
    let config: RelayConfig = serde_json::from_value(args.clone()).expect("relay config");
    let listen: SocketAddr = config.listen.parse().expect("listen addr");
    let bind: SocketAddr = config.bind.parse().expect("bind addr");
    let dest: SocketAddr = config.dest.parse().expect("dest addr");
    let input = UdpSocket::bind(listen).unwrap_or_else(|e| panic!("bind {listen}: {e}"));
    let output = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
    // The read timeout only paces the idle/stop checks; release timing is the scheduler's.
    input
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("read timeout");

    let (tx, rx) = mpsc::channel::<(Instant, Pending)>();
    let scheduler = std::thread::spawn(move || schedule(rx, output, dest));

    std::fs::write(&config.ready_file, b"ready").expect("write ready file");
    let started = Instant::now();
    let mut rng = SplitMix64(config.seed);
    let mut received = Vec::new();
    let mut non_rtp = 0u64;
    let mut last_packet: Option<Instant> = None;
    let mut buf = vec![0u8; 65536];
    loop {
        if started.elapsed() > Duration::from_millis(config.max_ms) {
            break;
        }
        let len = match input.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // Stop and idle are only honoured once the socket is drained, so a stop
                // requested right after the sender exits loses nothing still queued.
                let idle = last_packet
                    .is_some_and(|t| t.elapsed() > Duration::from_millis(config.idle_ms));
                if idle || config.stop_file.exists() {
                    break;
                }
                continue;
            }
            Err(e) => panic!("relay recv: {e}"),
        };
        let now = Instant::now();
        last_packet = Some(now);
        let data = buf[..len].to_vec();
        let (seq, rtp_ts) = if len >= 12 && data[0] >> 6 == 2 {
            (
                u16::from_be_bytes([data[2], data[3]]),
                u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            )
        } else {
            non_rtp += 1;
            (0, 0)
        };
        let index = received.len() as u64;
        // Draw both numbers for every packet so the delay sequence does not depend on drops.
        let loss_draw = rng.next_f64();
        let delay_ms = config.base_ms + config.jitter_ms * rng.next_f64();
        let dropped = index >= config.spare_first && loss_draw < config.loss;
        received.push(Received {
            index,
            seq,
            rtp_ts,
            dropped,
        });
        if !dropped {
            let delay_ns = (delay_ms * 1e6) as i64;
            let due = now + Duration::from_nanos(delay_ns.unsigned_abs());
            let pending = Pending {
                index,
                seq,
                rtp_ts,
                delay_ns,
                data,
            };
            tx.send((due, pending)).expect("scheduler alive");
        }
    }
    drop(tx);
    let released = scheduler.join().expect("scheduler thread");
    let log = RelayLog {
        received,
        released,
        non_rtp,
    };
    let tmp = config.log_file.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&log).expect("log JSON")).expect("write relay log");
    std::fs::rename(&tmp, &config.log_file).expect("publish relay log");
}

/// The scheduling thread: a min-heap of (release time, arrival index); waits on the channel
/// until the earliest release (futex-timed, so sub-millisecond precise, unlike SO_RCVTIMEO,
/// which rounds to scheduler ticks), sends what is due, and returns the release log once
/// the receiver is gone and the heap is empty.
fn schedule(
    rx: mpsc::Receiver<(Instant, Pending)>,
    output: UdpSocket,
    dest: SocketAddr,
) -> Vec<Released> {
    let mut heap: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut held: std::collections::HashMap<u64, Pending> = std::collections::HashMap::new();
    let mut released = Vec::new();
    let mut receiver_open = true;
    loop {
        let now = Instant::now();
        while let Some(Reverse((due, index))) = heap.peek().copied() {
            if due > now {
                break;
            }
            heap.pop();
            let p = held.remove(&index).expect("held packet");
            let before_ns = unix_ns();
            output.send_to(&p.data, dest).expect("relay send");
            let after_ns = unix_ns();
            released.push(Released {
                index: p.index,
                seq: p.seq,
                rtp_ts: p.rtp_ts,
                before_ns,
                after_ns,
                delay_ns: p.delay_ns,
            });
        }
        let wait = heap
            .peek()
            .map(|Reverse((due, _))| due.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(100));
        if receiver_open {
            match rx.recv_timeout(wait) {
                Ok((due, p)) => {
                    heap.push(Reverse((due, p.index)));
                    held.insert(p.index, p);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => receiver_open = false,
            }
        } else if heap.is_empty() {
            return released;
        } else {
            std::thread::sleep(wait);
        }
    }
}

/// A relay configuration with the files placed in `dir` under `name`.
pub fn config(dir: &Path, name: &str, listen: &str, bind: &str, dest: &str) -> RelayConfig {
    RelayConfig {
        listen: listen.into(),
        bind: bind.into(),
        dest: dest.into(),
        loss: 0.0,
        base_ms: 0.0,
        jitter_ms: 0.0,
        seed: 1,
        spare_first: 5,
        idle_ms: 3000,
        max_ms: 50_000,
        ready_file: dir.join(format!("{name}.ready")),
        stop_file: dir.join(format!("{name}.stop")),
        log_file: dir.join(format!("{name}.json")),
    }
}
