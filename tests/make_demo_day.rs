//! Generator of the "demo day" capture committed at `tests/data/demo-day.pcap`, and its ground
//! truth: three simulated hours on a PBX/media server (`192.0.2.10`) talking to a SIP trunk
//! (`198.51.100.20`) — OPTIONS keepalives, eight G.711 calls with RTCP, one busy call, one bad
//! call, and a ten-minute agent outage with no packets at all.
//!
//! It is the input of the README's one-command demo and of `tests/demo_day.rs`, which checks
//! the agent against the truth this file records while building (never against the agent).
//!
//! Usage: `cargo run -p voqa-agent --example make-demo-day [-- OUT.pcap] [--truth TRUTH.json]`
//! (default output `tests/data/demo-day.pcap`; the file is byte-identical on every run).
//!
//! Determinism: one seeded splitmix64 per call (so tuning one call does not reshuffle the
//! others), integer nanosecond arithmetic only (no floating point, no libm), all event times
//! whole microseconds (classic pcap keeps µs, so the truth uses exactly the written times).

use std::io::{self, Write};
use std::net::SocketAddr;

use voqa_agent::capture::writer::PcapWriter;
use voqa_agent::decode::build::{
    LinkSpec, ReportBlockSpec, RtpHeader, rtcp_sdes_cname, rtcp_sr, rtp_packet, udp_frame,
};

/// 2026-11-23T08:00:00Z, the first packet of the capture.
pub const T0_NS: i64 = 1_795_420_800_000_000_000;
/// Three hours of capture.
pub const SPAN_NS: i64 = 3 * 3600 * NS_PER_S;
/// One-way network delay between PBX and trunk; RTCP round trip is twice this (40 ms).
pub const ONE_WAY_NS: i64 = 20 * NS_PER_MS;
/// The configured round trip, as the agent should report it.
pub const RTT_MS: f64 = 40.0;
/// OPTIONS keepalive period.
pub const KEEPALIVE_NS: i64 = 30 * NS_PER_S;
/// The agent outage: no keepalive is sent in [start, end) (offsets from T0), and no call
/// overlaps it, so the capture has a ~10.5-minute hole (09:31:00–09:41:30).
pub const OUTAGE_FROM_NS: i64 = (3600 + 31 * 60 + 10) * NS_PER_S;
pub const OUTAGE_TO_NS: i64 = (3600 + 41 * 60 + 20) * NS_PER_S;

pub const PBX_IP: &str = "192.0.2.10";
pub const TRUNK_IP: &str = "198.51.100.20";
const SIP_PORT: u16 = 5060;
const NS_PER_S: i64 = 1_000_000_000;
const NS_PER_MS: i64 = 1_000_000;
const NS_PER_US: i64 = 1_000;
const PACKET_NS: i64 = 20 * NS_PER_MS;
/// 20 ms of PCMU at 8000 Hz.
const SAMPLES_PER_PACKET: u32 = 160;
/// Seconds between the NTP (1900) and Unix (1970) epochs.
const NTP_UNIX_OFFSET_S: i64 = 2_208_988_800;
/// The trunk's clock is not synchronised with the PBX's: RTT from LSR/DLSR must not care.
const TRUNK_CLOCK_SKEW_NS: i64 = 1_234_567 * NS_PER_US;
/// No loss among the first and last packets of a stream, so that what the network dropped is
/// exactly what the receiver can count as lost (loss at the edges is invisible to
/// highest − lowest + 1).
const SPARE_EDGE_PACKETS: u32 = 5;
const SEED: u64 = 0xD3A0_DA7E_2026_1123;

/// What the simulated network did to one RTP stream, counted while building it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamTruth {
    pub src: String,
    pub dst: String,
    pub ssrc: u32,
    pub call_id: String,
    /// Packets the sender sent (sequence numbers used, consecutive).
    pub sent: u64,
    /// Packets the simulated network dropped (never among the first or last few).
    pub dropped: u64,
    /// Extra copies the network delivered.
    pub duplicates: u64,
    /// Packets arriving after a higher sequence number (the network here is FIFO: 0).
    pub reordered: u64,
    /// Capture times of the first and last packet written.
    pub first_ns: i64,
    pub last_ns: i64,
    /// Direction seen from the monitored server.
    pub inbound: bool,
}

impl StreamTruth {
    /// Packets in the capture, duplicates included.
    pub fn packets(&self) -> u64 {
        self.sent - self.dropped + self.duplicates
    }
}

/// One SIP dialog as built.
#[derive(Debug, Clone, PartialEq)]
pub struct CallTruth {
    pub call_id: String,
    /// The PBX placed the call towards the trunk (else the trunk called in).
    pub outbound: bool,
    pub invite_ns: i64,
    /// 2xx to the INVITE; None when refused.
    pub answer_ns: Option<i64>,
    /// BYE, or the final error response.
    pub end_ns: i64,
    pub status: u16,
    /// Indexes into [`DemoDay::streams`] (outbound stream first).
    pub streams: Vec<usize>,
    /// The call built to have bad quality in its inbound direction.
    pub bad: bool,
}

pub struct DemoDay {
    /// Frames in capture order (Ethernet), times in ns (whole µs).
    pub frames: Vec<(i64, Vec<u8>)>,
    pub streams: Vec<StreamTruth>,
    pub calls: Vec<CallTruth>,
    /// The silence of the outage: last packet before it and first packet after it.
    pub outage: (i64, i64),
    /// OPTIONS requests sent (each answered by a 200 OK).
    pub keepalives: u64,
}

/// splitmix64: tiny, well mixed, and ours (no dependency whose stream could change).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, n) (n > 0); the modulo bias is irrelevant at these sizes.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `per_million` / 1e6.
    fn chance(&mut self, per_million: u64) -> bool {
        self.below(1_000_000) < per_million
    }

    /// Uniform whole microseconds in [0, max_us), as ns.
    fn us(&mut self, max_us: u64) -> i64 {
        self.below(max_us) as i64 * NS_PER_US
    }
}

/// Loss process of one direction.
#[derive(Clone, Copy)]
enum Loss {
    None,
    /// Independent losses.
    Random {
        per_million: u64,
    },
    /// Gilbert–Elliott: good/bad states, per-million transition and loss probabilities.
    Bursty {
        good_to_bad: u64,
        bad_to_good: u64,
        loss_good: u64,
        loss_bad: u64,
    },
}

/// Delay variation of one direction (added to the fixed one-way delay).
#[derive(Clone, Copy)]
enum Jitter {
    /// Uniform extra delay in [0, max_us).
    Uniform { max_us: u64 },
    /// A congested queue: uniform base plus spikes (one every `spike_every` packets on
    /// average) of `spike_min_us..spike_max_us` that drain by `drain_us` per packet, arriving
    /// bunched — the bufferbloat pattern a fixed jitter buffer discards from.
    Bufferbloat {
        base_us: u64,
        spike_every: u64,
        spike_min_us: u64,
        spike_max_us: u64,
        drain_us: u64,
    },
}

struct CallSpec {
    /// INVITE time, offset from T0.
    at_ns: i64,
    outbound: bool,
    /// INVITE to 200 OK (or to 486).
    ring_ns: i64,
    talk_s: u32,
    loss_in: Loss,
    jitter_in: Jitter,
    /// Inbound packet indexes the network delivers twice.
    duplicate_in: &'static [u32],
    busy: bool,
    bad: bool,
    /// Who hangs up.
    pbx_hangs_up: bool,
    /// Extension on the PBX and number on the trunk side.
    ext: u32,
    number: u32,
}

const fn hms(h: i64, m: i64, s: i64, ms: i64) -> i64 {
    ((h - 8) * 3600 + m * 60 + s) * NS_PER_S + ms * NS_PER_MS
}

fn specs() -> Vec<CallSpec> {
    let good = |max_us| Jitter::Uniform { max_us };
    let random = |per_million| Loss::Random { per_million };
    let call = |at_ns, outbound, talk_s, loss_in, jitter_in, ext, number| CallSpec {
        at_ns,
        outbound,
        ring_ns: 0,
        talk_s,
        loss_in,
        jitter_in,
        duplicate_in: &[],
        busy: false,
        bad: false,
        pbx_hangs_up: outbound,
        ext,
        number,
    };
    vec![
        CallSpec {
            ring_ns: 4_200 * NS_PER_MS,
            ..call(
                hms(8, 7, 12, 418),
                true,
                30,
                random(3_000),
                good(2_500),
                201,
                142,
            )
        },
        CallSpec {
            ring_ns: 6_100 * NS_PER_MS,
            duplicate_in: &[777],
            ..call(
                hms(8, 26, 45, 77),
                false,
                30,
                random(5_000),
                good(3_000),
                204,
                118,
            )
        },
        CallSpec {
            ring_ns: 3_050 * NS_PER_MS,
            ..call(
                hms(8, 58, 3, 902),
                true,
                31,
                Loss::None,
                good(1_500),
                207,
                163,
            )
        },
        // Refused: the extension is busy; no media.
        CallSpec {
            ring_ns: 1_480 * NS_PER_MS,
            busy: true,
            ..call(hms(9, 15, 30, 250), false, 0, Loss::None, good(0), 201, 129)
        },
        CallSpec {
            ring_ns: 5_300 * NS_PER_MS,
            pbx_hangs_up: true,
            ..call(
                hms(9, 23, 18, 640),
                false,
                30,
                random(8_000),
                good(4_000),
                211,
                151,
            )
        },
        // The bad call: the trunk's direction crosses a congested link (bursty loss,
        // bufferbloat spikes beyond the 60 ms jitter buffer).
        CallSpec {
            ring_ns: 7_700 * NS_PER_MS,
            bad: true,
            ..call(
                hms(10, 4, 51, 333),
                true,
                34,
                Loss::Bursty {
                    good_to_bad: 16_000,
                    bad_to_good: 150_000,
                    loss_good: 8_000,
                    loss_bad: 900_000,
                },
                Jitter::Bufferbloat {
                    base_us: 12_000,
                    spike_every: 150,
                    spike_min_us: 60_000,
                    spike_max_us: 140_000,
                    drain_us: 14_000,
                },
                204,
                187,
            )
        },
        CallSpec {
            ring_ns: 4_900 * NS_PER_MS,
            ..call(
                hms(10, 22, 7, 5),
                false,
                31,
                random(2_000),
                good(2_000),
                207,
                104,
            )
        },
        // Overlaps the previous call: two calls' media at once.
        CallSpec {
            ring_ns: 2_600 * NS_PER_MS,
            duplicate_in: &[1_203],
            ..call(
                hms(10, 22, 20, 871),
                true,
                30,
                random(10_000),
                good(3_500),
                215,
                176,
            )
        },
        CallSpec {
            ring_ns: 5_550 * NS_PER_MS,
            ..call(
                hms(10, 48, 40, 512),
                false,
                30,
                random(4_000),
                good(2_500),
                201,
                133,
            )
        },
    ]
}

/// NTP timestamp (64-bit, 32.32) of a Unix time in ns.
fn ntp(ns: i64) -> u64 {
    let secs = ns.div_euclid(NS_PER_S) + NTP_UNIX_OFFSET_S;
    let frac = ((ns.rem_euclid(NS_PER_S) as u128) << 32) / NS_PER_S as u128;
    ((secs as u64) << 32) | frac as u64
}

fn middle32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// DLSR for a hold of `ns`, in 1/65536 s, rounded down so that the capture-point sample
/// `(t_rr − t_sr) − DLSR` is never below the true round trip.
fn dlsr(ns: i64) -> u32 {
    ((ns.max(0) as u128 * 65_536) / NS_PER_S as u128) as u32
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("literal IP"), port)
}

fn hex(rng: &mut Rng, digits: usize) -> String {
    let v = rng.next();
    format!("{v:016x}")[..digits.min(16)].to_owned()
}

/// A SIP message: start line, headers in order, optional SDP body.
fn sip(start: &str, headers: &[(&str, String)], sdp: Option<&str>) -> Vec<u8> {
    let mut text = format!("{start}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = sdp.unwrap_or("");
    if sdp.is_some() {
        text.push_str("Content-Type: application/sdp\r\n");
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    text.into_bytes()
}

fn sdp(ip: &str, port: u16, session: u64) -> String {
    format!(
        "v=0\r\no=- {session} {session} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

/// One RTP packet as it reaches the capture point.
#[derive(Clone, Copy)]
struct Arrival {
    at_ns: i64,
    /// Index in the sender's sequence (0-based).
    index: u32,
}

/// Arrivals (capture order) of one direction with `n` packets first sent at `start_ns` and
/// captured `delay_ns` later (0 for the PBX's own packets), impaired by `loss`/`jitter`.
/// Returns the arrivals, how many packets were dropped and how many duplicated.
fn impair(
    rng: &mut Rng,
    n: u32,
    start_ns: i64,
    delay_ns: i64,
    loss: Loss,
    jitter: Jitter,
    duplicates: &[u32],
) -> (Vec<Arrival>, u64, u64) {
    let mut out = Vec::with_capacity(n as usize + duplicates.len());
    let mut dropped = 0u64;
    let mut duplicated = 0u64;
    let mut bad_state = false;
    let mut queue_ns = 0i64;
    let mut previous_ns = i64::MIN;
    for index in 0..n {
        let sent = start_ns + i64::from(index) * PACKET_NS;
        let extra = match jitter {
            Jitter::Uniform { max_us } => rng.us(max_us.max(1)),
            Jitter::Bufferbloat {
                base_us,
                spike_every,
                spike_min_us,
                spike_max_us,
                drain_us,
            } => {
                if rng.below(spike_every) == 0 {
                    queue_ns +=
                        (spike_min_us + rng.below(spike_max_us - spike_min_us)) as i64 * NS_PER_US;
                } else {
                    queue_ns = (queue_ns - drain_us as i64 * NS_PER_US).max(0);
                }
                queue_ns + rng.us(base_us)
            }
        };
        let lost = match loss {
            Loss::None => false,
            Loss::Random { per_million } => rng.chance(per_million),
            Loss::Bursty {
                good_to_bad,
                bad_to_good,
                loss_good,
                loss_bad,
            } => {
                bad_state = if bad_state {
                    !rng.chance(bad_to_good)
                } else {
                    rng.chance(good_to_bad)
                };
                rng.chance(if bad_state { loss_bad } else { loss_good })
            }
        };
        let spared = index < SPARE_EDGE_PACKETS || index >= n.saturating_sub(SPARE_EDGE_PACKETS);
        if lost && !spared {
            dropped += 1;
            continue;
        }
        // A FIFO path: a packet never overtakes the previous one (the link serialises it).
        let at = (sent + delay_ns + extra).max(previous_ns.saturating_add(40 * NS_PER_US));
        previous_ns = at;
        out.push(Arrival { at_ns: at, index });
        if duplicates.contains(&index) {
            // A duplicating switch: the copy right behind the original.
            out.push(Arrival {
                at_ns: at + 180 * NS_PER_US,
                index,
            });
            previous_ns = at + 180 * NS_PER_US;
            duplicated += 1;
        }
    }
    (out, dropped, duplicated)
}

/// Per-stream state needed to write its RTP and the RTCP that describes it.
struct Rtp {
    src: SocketAddr,
    dst: SocketAddr,
    ssrc: u32,
    seq0: u16,
    ts0: u32,
    /// First send time (sender's clock = capture clock).
    start_ns: i64,
    arrivals: Vec<Arrival>,
}

impl Rtp {
    fn frames(&self, link: &LinkSpec, out: &mut Vec<(i64, Vec<u8>)>) {
        let payload = [0xffu8; 160]; // PCMU silence: voice content is never the point
        for a in &self.arrivals {
            let header = RtpHeader {
                payload_type: 0,
                marker: a.index == 0,
                sequence: self.seq0.wrapping_add(a.index as u16),
                timestamp: self.ts0.wrapping_add(SAMPLES_PER_PACKET * a.index),
                ssrc: self.ssrc,
                csrcs: vec![],
                extension: None,
                padding: 0,
            };
            out.push((
                a.at_ns,
                udp_frame(link, self.src, self.dst, &rtp_packet(&header, &payload)),
            ));
        }
    }

    /// What a receiver of this stream knows at capture time `t` (for its report block):
    /// (highest index received, distinct packets received, running RFC 3550 jitter in
    /// timestamp units).
    fn receiver_view(&self, t: i64, extra_delay_ns: i64) -> Option<(u32, u64, u32)> {
        let mut highest = None;
        let mut received = 0u64;
        let mut last_index = None;
        let mut jitter_x16 = 0i64; // jitter × 16 in ns (integer form of A.8)
        let mut prev: Option<(i64, u32)> = None;
        for a in &self.arrivals {
            let at = a.at_ns + extra_delay_ns;
            if at > t {
                break;
            }
            if last_index != Some(a.index) {
                received += 1;
            }
            last_index = Some(a.index);
            highest = Some(highest.map_or(a.index, |h: u32| h.max(a.index)));
            if let Some((pat, pidx)) = prev {
                let d = (at - pat) - (i64::from(a.index) - i64::from(pidx)) * PACKET_NS;
                jitter_x16 += d.abs() - jitter_x16 / 16;
            }
            prev = Some((at, a.index));
        }
        // ns → 8 kHz units: / 125000.
        highest.map(|h| (h, received, (jitter_x16 / 16 / 125_000) as u32))
    }
}

/// RTCP of one call: both parties send SR + SDES every ~5 s while media flows, each SR with a
/// report block on the other party quoting its last SR (LSR) and the hold since (DLSR).
/// Network delay of RTCP is the fixed one-way delay, so every capture-point RTT sample is the
/// configured round trip (plus < 16 µs of DLSR rounding).
fn rtcp_frames(
    rng: &mut Rng,
    link: &LinkSpec,
    pbx: &Rtp,
    trunk: &Rtp,
    end_ns: i64,
    out: &mut Vec<(i64, Vec<u8>)>,
) {
    // Send instants (each party's own clock = capture clock for the PBX; the trunk's are
    // expressed on the capture clock too, its NTP field carries the skew).
    let schedule = |rng: &mut Rng, start: i64| {
        let mut times = Vec::new();
        let mut t = start + 1_000 * NS_PER_MS + rng.us(2_000_000);
        while t < end_ns - NS_PER_S {
            times.push(t);
            // RFC 3550 randomises the interval: 5 s ± 0.5 s here.
            t += 4_500 * NS_PER_MS + rng.us(1_000_000);
        }
        times
    };
    let pbx_times = schedule(rng, pbx.start_ns);
    let trunk_times = schedule(rng, trunk.start_ns);
    let rtcp_port = |a: SocketAddr| SocketAddr::new(a.ip(), a.port() + 1);
    // Merge both parties' reports in time order, tracking the last SR each has received.
    let mut pbx_last_rx: Option<(u64, i64)> = None; // (NTP of trunk SR, capture arrival)
    let mut trunk_last_rx: Option<(u64, i64)> = None; // (NTP of PBX SR, arrival at trunk)
    let mut pbx_sr_sent: Vec<(i64, u64)> = Vec::new();
    let mut events: Vec<(i64, bool)> = pbx_times.iter().map(|&t| (t, true)).collect();
    events.extend(trunk_times.iter().map(|&t| (t, false)));
    events.sort_by_key(|e| e.0);
    // (expected, received) at the PBX's previous report, for the interval's fraction lost.
    let mut previous_view: (u64, u64) = (0, 0);
    for (t, from_pbx) in events {
        if from_pbx {
            // The trunk's SRs that reached the PBX by now.
            let ntp_now = ntp(t);
            let (lsr, hold) = pbx_last_rx.map_or((0, 0), |(n, at)| (middle32(n), t - at));
            let sent = ((t - pbx.start_ns) / PACKET_NS + 1) as u32;
            let block = trunk
                .receiver_view(t, 0)
                .map(|(highest, received, jitter)| {
                    let expected = u64::from(highest) + 1;
                    let interval_expected = expected - previous_view.0;
                    let interval_lost =
                        interval_expected.saturating_sub(received - previous_view.1);
                    previous_view = (expected, received);
                    ReportBlockSpec {
                        ssrc: trunk.ssrc,
                        fraction_lost: (interval_lost * 256 / interval_expected.max(1)).min(255)
                            as u8,
                        cumulative_lost: expected.saturating_sub(received) as i32,
                        ext_highest_seq: u32::from(trunk.seq0).wrapping_add(highest),
                        jitter,
                        lsr,
                        dlsr: if lsr == 0 { 0 } else { dlsr(hold) },
                    }
                });
            let blocks: Vec<ReportBlockSpec> = block.into_iter().collect();
            let mut packet = rtcp_sr(
                pbx.ssrc,
                ntp_now,
                pbx.ts0.wrapping_add(((t - pbx.start_ns) / 125_000) as u32),
                sent,
                sent * 160,
                &blocks,
            );
            packet.extend(rtcp_sdes_cname(pbx.ssrc, "media@192.0.2.10"));
            out.push((
                t,
                udp_frame(link, rtcp_port(pbx.src), rtcp_port(pbx.dst), &packet),
            ));
            pbx_sr_sent.push((t, ntp_now));
        } else {
            // The PBX's SRs that reached the trunk by now (one-way delay later).
            trunk_last_rx = pbx_sr_sent
                .iter()
                .rev()
                .find(|(sent, _)| sent + ONE_WAY_NS <= t)
                .map(|&(sent, n)| (n, sent + ONE_WAY_NS))
                .or(trunk_last_rx);
            let (lsr, hold) = trunk_last_rx.map_or((0, 0), |(n, at)| (middle32(n), t - at));
            let ntp_now = ntp(t + TRUNK_CLOCK_SKEW_NS);
            let sent = ((t - trunk.start_ns) / PACKET_NS + 1) as u32;
            // The PBX's stream is unimpaired: the trunk received everything sent a
            // one-way delay ago.
            let block = pbx
                .receiver_view(t, ONE_WAY_NS)
                .map(|(highest, _, jitter)| ReportBlockSpec {
                    ssrc: pbx.ssrc,
                    fraction_lost: 0,
                    cumulative_lost: 0,
                    ext_highest_seq: u32::from(pbx.seq0).wrapping_add(highest),
                    jitter,
                    lsr,
                    dlsr: if lsr == 0 { 0 } else { dlsr(hold) },
                });
            let blocks: Vec<ReportBlockSpec> = block.into_iter().collect();
            let mut packet = rtcp_sr(
                trunk.ssrc,
                ntp_now,
                trunk
                    .ts0
                    .wrapping_add(((t - trunk.start_ns) / 125_000) as u32),
                sent,
                sent * 160,
                &blocks,
            );
            packet.extend(rtcp_sdes_cname(trunk.ssrc, "rtp@198.51.100.20"));
            let arrive = t + ONE_WAY_NS;
            out.push((
                arrive,
                udp_frame(link, rtcp_port(trunk.src), rtcp_port(trunk.dst), &packet),
            ));
            pbx_last_rx = Some((ntp_now, arrive));
        }
    }
}

/// Appends one SIP frame from `src` to `dst` captured at `t`.
fn put(
    frames: &mut Vec<(i64, Vec<u8>)>,
    link: &LinkSpec,
    t: i64,
    (src, dst): (SocketAddr, SocketAddr),
    bytes: &[u8],
) {
    frames.push((t, udp_frame(link, src, dst, bytes)));
}

/// One call: its signalling, media and RTCP into `frames`, its streams' truth into `streams`.
fn build_call(
    rng: &mut Rng,
    link: &LinkSpec,
    n: usize,
    spec: &CallSpec,
    frames: &mut Vec<(i64, Vec<u8>)>,
    streams: &mut Vec<StreamTruth>,
) -> CallTruth {
    let pbx_sip = addr(PBX_IP, SIP_PORT);
    let trunk_sip = addr(TRUNK_IP, SIP_PORT);
    let invite_ns = T0_NS + spec.at_ns;
    let call_id = if spec.outbound {
        format!("{}@{PBX_IP}", hex(rng, 16))
    } else {
        let h = hex(rng, 16);
        format!("{}-{}-{}@{TRUNK_IP}", &h[..8], &h[8..12], &h[12..])
    };
    let pbx_user = format!("sip:{}@{PBX_IP}", spec.ext);
    let trunk_user = format!("sip:+1555010{:04}@{TRUNK_IP}", spec.number);
    let outbound = spec.outbound;
    let (caller, callee) = if outbound {
        (&pbx_user, &trunk_user)
    } else {
        (&trunk_user, &pbx_user)
    };
    let (caller_sip, callee_sip) = if outbound {
        (pbx_sip, trunk_sip)
    } else {
        (trunk_sip, pbx_sip)
    };
    let from_caller = (caller_sip, callee_sip);
    let from_callee = (callee_sip, caller_sip);
    // Capture is at the PBX: its own messages are stamped when they leave, the trunk's when
    // they arrive one way later. Times below are when a party sends (on the capture clock).
    let caller_seen = |t: i64| if outbound { t } else { t + ONE_WAY_NS };
    let callee_seen = |t: i64| if outbound { t + ONE_WAY_NS } else { t };
    let from_tag = hex(rng, 8);
    let to_tag = hex(rng, 8);
    let via = format!(
        "SIP/2.0/UDP {}:{SIP_PORT};branch=z9hG4bK{}",
        caller_sip.ip(),
        hex(rng, 12)
    );
    let from = format!("<{caller}>;tag={from_tag}");
    let to = format!("<{callee}>");
    let to_tagged = format!("<{callee}>;tag={to_tag}");
    // Distinct media ports per call (two calls overlap).
    let pbx_media = addr(PBX_IP, 10_000 + 2 * (n as u16 * 131 % 997));
    let trunk_media = addr(TRUNK_IP, 30_000 + 2 * (n as u16 * 89 % 499));
    let (caller_media, callee_media) = if outbound {
        (pbx_media, trunk_media)
    } else {
        (trunk_media, pbx_media)
    };
    let session = rng.below(1 << 40);
    let offer = sdp(&caller_media.ip().to_string(), caller_media.port(), session);
    let answer = sdp(
        &callee_media.ip().to_string(),
        callee_media.port(),
        session ^ 0x5A5A,
    );
    let dialog = |cseq: &str, to_value: &str| -> Vec<(&str, String)> {
        vec![
            ("Via", via.clone()),
            ("From", from.clone()),
            ("To", to_value.to_owned()),
            ("Call-ID", call_id.clone()),
            ("CSeq", cseq.to_owned()),
        ]
    };

    // INVITE: the PBX captures it at `invite_ns` whichever way it goes.
    let invite_sent = if outbound {
        invite_ns
    } else {
        invite_ns - ONE_WAY_NS
    };
    let mut headers = dialog("101 INVITE", &to);
    headers.insert(1, ("Max-Forwards", "70".into()));
    headers.push(("Contact", format!("<{caller}:{SIP_PORT}>")));
    headers.push(("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS".into()));
    let invite = sip(&format!("INVITE {callee} SIP/2.0"), &headers, Some(&offer));
    put(frames, link, caller_seen(invite_sent), from_caller, &invite);
    let callee_has_invite = invite_sent + ONE_WAY_NS;
    let trying = sip("SIP/2.0 100 Trying", &dialog("101 INVITE", &to), None);
    let t = callee_seen(callee_has_invite + 300 * NS_PER_US);
    put(frames, link, t, from_callee, &trying);
    let ringing = sip(
        "SIP/2.0 180 Ringing",
        &dialog("101 INVITE", &to_tagged),
        None,
    );
    let t = callee_seen(callee_has_invite + 45 * NS_PER_MS + rng.us(20_000));
    put(frames, link, t, from_callee, &ringing);
    let final_sent = callee_has_invite + spec.ring_ns;

    if spec.busy {
        let end_ns = callee_seen(final_sent);
        let busy = sip(
            "SIP/2.0 486 Busy Here",
            &dialog("101 INVITE", &to_tagged),
            None,
        );
        put(frames, link, end_ns, from_callee, &busy);
        // The ACK of a non-2xx final response belongs to the INVITE transaction (same branch).
        let ack = sip(
            &format!("ACK {callee} SIP/2.0"),
            &dialog("101 ACK", &to_tagged),
            None,
        );
        let t = caller_seen(final_sent + ONE_WAY_NS + 200 * NS_PER_US);
        put(frames, link, t, from_caller, &ack);
        return CallTruth {
            call_id,
            outbound,
            invite_ns,
            answer_ns: None,
            end_ns,
            status: 486,
            streams: vec![],
            bad: spec.bad,
        };
    }

    let mut headers = dialog("101 INVITE", &to_tagged);
    headers.push(("Contact", format!("<{callee}:{SIP_PORT}>")));
    let answer_ns = callee_seen(final_sent);
    let ok = sip("SIP/2.0 200 OK", &headers, Some(&answer));
    put(frames, link, answer_ns, from_callee, &ok);
    let ack_sent = final_sent + ONE_WAY_NS + 250 * NS_PER_US;
    let mut headers = dialog("101 ACK", &to_tagged);
    headers[0].1 = format!(
        "SIP/2.0/UDP {}:{SIP_PORT};branch=z9hG4bK{}",
        caller_sip.ip(),
        hex(rng, 12)
    );
    let ack = sip(&format!("ACK {callee}:{SIP_PORT} SIP/2.0"), &headers, None);
    put(frames, link, caller_seen(ack_sent), from_caller, &ack);

    // Media: both parties send once the call is up (send times on the capture clock).
    let packets = spec.talk_s * 50;
    let pbx_start = answer_ns.max(caller_seen(ack_sent)) + 10 * NS_PER_MS + rng.us(5_000);
    let trunk_start = pbx_start - ONE_WAY_NS + 3 * NS_PER_MS + rng.us(10_000);
    // The PBX's own packets are captured as they leave: only its scheduling wobble shows.
    let (out_arrivals, out_dropped, _) = impair(
        rng,
        packets,
        pbx_start,
        0,
        Loss::None,
        Jitter::Uniform { max_us: 150 },
        &[],
    );
    let (in_arrivals, in_dropped, in_duplicated) = impair(
        rng,
        packets,
        trunk_start,
        ONE_WAY_NS,
        spec.loss_in,
        spec.jitter_in,
        spec.duplicate_in,
    );
    let pbx_rtp = Rtp {
        src: pbx_media,
        dst: trunk_media,
        ssrc: rng.next() as u32,
        seq0: rng.next() as u16,
        ts0: rng.next() as u32,
        start_ns: pbx_start,
        arrivals: out_arrivals,
    };
    let trunk_rtp = Rtp {
        src: trunk_media,
        dst: pbx_media,
        ssrc: rng.next() as u32,
        seq0: rng.next() as u16,
        ts0: rng.next() as u32,
        start_ns: trunk_start,
        arrivals: in_arrivals,
    };
    pbx_rtp.frames(link, frames);
    trunk_rtp.frames(link, frames);
    let media_end = pbx_start + i64::from(packets) * PACKET_NS;
    rtcp_frames(rng, link, &pbx_rtp, &trunk_rtp, media_end, frames);

    // Hang-up after the last media packet has been seen (a queue may still have been
    // draining), so that no stream outlives its dialog: BYE, then 200 OK.
    let last_media = [&pbx_rtp, &trunk_rtp]
        .iter()
        .filter_map(|r| r.arrivals.last().map(|a| a.at_ns))
        .max()
        .unwrap_or(media_end);
    let bye_at = last_media + 30 * NS_PER_MS + rng.us(20_000);
    let bye_by_caller = spec.pbx_hangs_up == outbound;
    let ok_at = if spec.pbx_hangs_up {
        bye_at + 2 * ONE_WAY_NS + 600 * NS_PER_US
    } else {
        bye_at + 500 * NS_PER_US
    };
    // From/To/Request-URI follow the party that hangs up.
    let (bye_from, bye_to, bye_uri, bye_host, bye_dir) = if bye_by_caller {
        (&from, &to_tagged, callee, caller_sip.ip(), from_caller)
    } else {
        (&to_tagged, &from, caller, callee_sip.ip(), from_callee)
    };
    let bye_via = format!(
        "SIP/2.0/UDP {bye_host}:{SIP_PORT};branch=z9hG4bK{}",
        hex(rng, 12)
    );
    let headers = vec![
        ("Via", bye_via.clone()),
        ("Max-Forwards", "70".into()),
        ("From", bye_from.clone()),
        ("To", bye_to.clone()),
        ("Call-ID", call_id.clone()),
        ("CSeq", "102 BYE".to_owned()),
    ];
    let bye = sip(&format!("BYE {bye_uri}:{SIP_PORT} SIP/2.0"), &headers, None);
    put(frames, link, bye_at, bye_dir, &bye);
    let headers = vec![
        ("Via", bye_via),
        ("From", bye_from.clone()),
        ("To", bye_to.clone()),
        ("Call-ID", call_id.clone()),
        ("CSeq", "102 BYE".to_owned()),
    ];
    let bye_ok = sip("SIP/2.0 200 OK", &headers, None);
    put(frames, link, ok_at, (bye_dir.1, bye_dir.0), &bye_ok);

    let truth = |r: &Rtp, dropped: u64, duplicates: u64, inbound: bool| StreamTruth {
        src: r.src.to_string(),
        dst: r.dst.to_string(),
        ssrc: r.ssrc,
        call_id: call_id.clone(),
        sent: u64::from(packets),
        dropped,
        duplicates,
        reordered: 0,
        first_ns: r.arrivals.first().map_or(0, |a| a.at_ns),
        last_ns: r.arrivals.last().map_or(0, |a| a.at_ns),
        inbound,
    };
    let first = streams.len();
    streams.push(truth(&pbx_rtp, out_dropped, 0, false));
    streams.push(truth(&trunk_rtp, in_dropped, in_duplicated, true));
    CallTruth {
        call_id: call_id.clone(),
        outbound,
        invite_ns,
        answer_ns: Some(answer_ns),
        end_ns: bye_at,
        status: 200,
        streams: vec![first, first + 1],
        bad: spec.bad,
    }
}

/// Builds the whole capture and its truth.
pub fn build() -> DemoDay {
    let link = LinkSpec::Ethernet;
    let pbx_sip = addr(PBX_IP, SIP_PORT);
    let trunk_sip = addr(TRUNK_IP, SIP_PORT);
    let mut frames: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut streams = Vec::new();
    let mut calls = Vec::new();

    // Keepalives: the PBX qualifies the trunk every 30 s (one dialog-less Call-ID, CSeq
    // counting up, as many PBXs do), except while the agent is down.
    let mut rng = Rng::new(SEED);
    let keepalive_id = format!("{}@{PBX_IP}", hex(&mut rng, 16));
    let keepalive_tag = hex(&mut rng, 8);
    let mut keepalives = 0u64;
    let mut k = 0i64;
    while k * KEEPALIVE_NS < SPAN_NS {
        let offset = k * KEEPALIVE_NS;
        k += 1;
        if (OUTAGE_FROM_NS..OUTAGE_TO_NS).contains(&offset) {
            continue;
        }
        keepalives += 1;
        // A timer wakes a little late, by up to 3 ms.
        let t = T0_NS + offset + if offset == 0 { 0 } else { rng.us(3_000) };
        let branch = format!("z9hG4bK{}", hex(&mut rng, 12));
        let via = format!("SIP/2.0/UDP {PBX_IP}:{SIP_PORT};branch={branch};rport");
        let from = format!("<sip:qualify@{PBX_IP}>;tag={keepalive_tag}");
        let cseq = format!("{keepalives} OPTIONS");
        let request = sip(
            &format!("OPTIONS sip:{TRUNK_IP}:{SIP_PORT} SIP/2.0"),
            &[
                ("Via", via.clone()),
                ("Max-Forwards", "70".into()),
                ("From", from.clone()),
                ("To", format!("<sip:{TRUNK_IP}:{SIP_PORT}>")),
                ("Call-ID", keepalive_id.clone()),
                ("CSeq", cseq.clone()),
                ("User-Agent", "demo-pbx/20.4".into()),
            ],
            None,
        );
        frames.push((t, udp_frame(&link, pbx_sip, trunk_sip, &request)));
        let reply = sip(
            "SIP/2.0 200 OK",
            &[
                ("Via", format!("{via};received={PBX_IP}")),
                ("From", from),
                (
                    "To",
                    format!("<sip:{TRUNK_IP}:{SIP_PORT}>;tag={}", hex(&mut rng, 8)),
                ),
                ("Call-ID", keepalive_id.clone()),
                ("CSeq", cseq),
                ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS".into()),
                ("Accept", "application/sdp".into()),
                ("Server", "demo-trunk/3.1".into()),
            ],
            None,
        );
        frames.push((
            t + 2 * ONE_WAY_NS + 400 * NS_PER_US + rng.us(1_500),
            udp_frame(&link, trunk_sip, pbx_sip, &reply),
        ));
    }

    for (n, spec) in specs().into_iter().enumerate() {
        let mut rng = Rng::new(SEED ^ (n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let call = build_call(&mut rng, &link, n, &spec, &mut frames, &mut streams);
        calls.push(call);
    }

    // Capture order; the sort is stable, so equal times keep construction order.
    frames.sort_by_key(|f| f.0);
    // The one silence longer than a minute is the outage, and nothing overlaps it.
    let gaps: Vec<(i64, i64)> = frames
        .windows(2)
        .map(|w| (w[0].0, w[1].0))
        .filter(|(a, b)| b - a > 60 * NS_PER_S)
        .collect();
    assert_eq!(gaps.len(), 1, "exactly one silence over 60 s (the outage)");
    DemoDay {
        frames,
        streams,
        calls,
        outage: gaps[0],
        keepalives,
    }
}

/// Writes the capture (classic pcap, µs, Ethernet) to `w`.
pub fn write_pcap<W: Write>(d: &DemoDay, w: W) -> io::Result<W> {
    let mut writer = PcapWriter::new(w, LinkSpec::Ethernet.linktype())?;
    for (ts, frame) in &d.frames {
        writer.write_frame(*ts, frame)?;
    }
    Ok(writer.into_inner())
}

/// RFC 3339 UTC with microseconds, from ns since the epoch (civil-from-days, no clock read).
pub fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(NS_PER_S);
    let micros = ns.rem_euclid(NS_PER_S) / NS_PER_US;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// The ground truth as JSON (what `--truth PATH` writes).
pub fn truth_json(d: &DemoDay) -> serde_json::Value {
    use serde_json::json;
    let streams: Vec<_> = d
        .streams
        .iter()
        .map(|s| {
            json!({
                "src": s.src, "dst": s.dst, "ssrc": format!("0x{:08x}", s.ssrc),
                "call_id": s.call_id, "direction": if s.inbound { "inbound" } else { "outbound" },
                "sent": s.sent, "dropped": s.dropped, "duplicates": s.duplicates,
                "reordered": s.reordered, "packets": s.packets(),
                "expected": s.sent, "lost": s.dropped,
                "first": rfc3339(s.first_ns), "last": rfc3339(s.last_ns),
            })
        })
        .collect();
    let calls: Vec<_> = d
        .calls
        .iter()
        .map(|c| {
            json!({
                "call_id": c.call_id,
                "direction": if c.outbound { "outbound" } else { "inbound" },
                "invite": rfc3339(c.invite_ns), "answer": c.answer_ns.map(rfc3339),
                "end": rfc3339(c.end_ns), "status": c.status, "streams": c.streams,
                "bad": c.bad,
            })
        })
        .collect();
    json!({
        "start": rfc3339(T0_NS),
        "end": rfc3339(d.frames.last().map_or(T0_NS, |f| f.0)),
        "monitored": PBX_IP, "trunk": TRUNK_IP,
        "rtt_ms": RTT_MS,
        "frames": d.frames.len(),
        "keepalives": d.keepalives,
        "outage": {"last_before": rfc3339(d.outage.0), "first_after": rfc3339(d.outage.1)},
        "calls": calls,
        "streams": streams,
    })
}

#[allow(dead_code)] // only the example's entry point; the test includes this file as a module
fn main() -> io::Result<()> {
    let mut out = "tests/data/demo-day.pcap".to_owned();
    let mut truth: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--truth" {
            truth = Some(args.next().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "--truth needs a path")
            })?);
        } else {
            out = arg;
        }
    }
    let day = build();
    let file = io::BufWriter::new(std::fs::File::create(&out)?);
    write_pcap(&day, file)?.flush()?;
    eprintln!("wrote {} frames to {out}", day.frames.len());
    if let Some(path) = truth {
        let text = serde_json::to_string_pretty(&truth_json(&day)).map_err(io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        eprintln!("wrote the ground truth to {path}");
    }
    Ok(())
}
