//! Writes a synthetic pcap for benchmarks: concurrent G.711 streams of `--packets` packets each,
//! 20 ms apart, interleaved in time order as a media server would see them, with a little
//! arrival jitter and 0.5 % loss so the quality code takes its real paths.
//!
//! Two shapes:
//! - `--streams N`: N unsignalled streams (found by the RTP heuristic), as before.
//! - `--calls N`: N concurrent calls shaped like real traffic. Each has its SIP dialog over UDP
//!   (INVITE with an SDP offer of ~900 bytes, 100 Trying, 180 Ringing, 200 OK with the SDP
//!   answer, ACK; after the media BYE and its 200 OK) and the two G.711 streams the SDP
//!   announces (caller → callee and back), so the streams are found by SDP, not heuristics.
//!   The calls' setups are spread over the first second, answered 1.5–2 s after their INVITE;
//!   the media of every call runs from 3.1 s on, and the BYEs follow the last media round.
//!
//! `--signalling-only` (with `--calls N`) writes the calls' SIP and no media (`--packets 0`): the
//! SIP-heavy capture of the dialog engine's benchmark (7 messages per call).
//!
//! Generation is deterministic (a fixed xorshift seed): the same arguments give the same bytes.
//!
//! Usage: cargo run --release -p voqa-agent --example gen-capture -- OUT.pcap
//!        [--streams N | --calls N [--signalling-only]] [--packets M]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufWriter, Write};
use std::net::{Ipv4Addr, SocketAddr};

use voqa_agent::capture::writer::PcapWriter;
use voqa_agent::decode::build::{LinkSpec, RtpHeader, rtp_packet, udp_frame};

const T0: i64 = 1_795_000_000_000_000_000;
const MS: i64 = 1_000_000;
const SIP_PORT: u16 = 5060;

fn arg(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// Deterministic xorshift64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One media stream: its addresses, SSRC, payload type and first sequence number / timestamp.
struct Stream {
    src: SocketAddr,
    dst: SocketAddr,
    ssrc: u32,
    pt: u8,
    seq0: u16,
    ts0: u32,
}

/// The two parties of call `c`: caller and callee hosts (SIP on 5060, RTP on an even port).
struct Call {
    index: u32,
    caller: Ipv4Addr,
    callee: Ipv4Addr,
    caller_rtp: u16,
    callee_rtp: u16,
    /// G.711 µ-law (0) or A-law (8), alternating, so both codecs are in the capture.
    pt: u8,
    /// When the callee answers, after the INVITE (1.5–2 s: ringing time).
    answer_after_ns: i64,
}

impl Call {
    fn new(index: u32, rng: &mut Rng) -> Self {
        let host = |net: u8| {
            Ipv4Addr::new(
                10,
                net.wrapping_add((index >> 16) as u8),
                (index >> 8) as u8,
                index as u8,
            )
        };
        Call {
            index,
            caller: host(1),
            callee: host(128),
            caller_rtp: 16384 + (index % 8000) as u16 * 2,
            callee_rtp: 32768 + (index % 8000) as u16 * 2,
            pt: if index.is_multiple_of(2) { 0 } else { 8 },
            answer_after_ns: 1500 * MS + (rng.next() % 500) as i64 * MS,
        }
    }

    fn caller_number(&self) -> String {
        format!("+3120{:07}", self.index)
    }

    fn callee_number(&self) -> String {
        format!("+3130{:07}", self.index)
    }

    fn call_id(&self) -> String {
        let h = u64::from(self.index).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!("{h:016x}-{:08x}@{}", self.index, self.caller)
    }

    fn caller_tag(&self) -> String {
        format!("{:08x}", self.index.wrapping_mul(2_654_435_761))
    }

    fn callee_tag(&self) -> String {
        format!("{:08x}", self.index.wrapping_mul(40_503) ^ 0x5a5a_5a5a)
    }

    fn sip(&self, caller_side: bool) -> SocketAddr {
        let ip = if caller_side {
            self.caller
        } else {
            self.callee
        };
        SocketAddr::from((ip, SIP_PORT))
    }

    fn streams(&self) -> [Stream; 2] {
        let caller = SocketAddr::from((self.caller, self.caller_rtp));
        let callee = SocketAddr::from((self.callee, self.callee_rtp));
        let i = self.index;
        [
            Stream {
                src: caller,
                dst: callee,
                ssrc: 0x5000_0000 + 2 * i,
                pt: self.pt,
                seq0: (i as u16).wrapping_mul(7),
                ts0: i.wrapping_mul(1000),
            },
            Stream {
                src: callee,
                dst: caller,
                ssrc: 0x5000_0001 + 2 * i,
                pt: self.pt,
                seq0: (i as u16).wrapping_mul(13),
                ts0: i.wrapping_mul(3000),
            },
        ]
    }

    fn sdp(&self, offer: bool) -> String {
        let (ip, port, session) = if offer {
            (
                self.caller,
                self.caller_rtp,
                1_000_000 + u64::from(self.index),
            )
        } else {
            (
                self.callee,
                self.callee_rtp,
                2_000_000 + u64::from(self.index),
            )
        };
        let formats = if offer {
            "0 8 101".to_owned()
        } else {
            format!("{} 101", self.pt)
        };
        let mut maps = String::new();
        if offer || self.pt == 0 {
            maps.push_str("a=rtpmap:0 PCMU/8000\r\n");
        }
        if offer || self.pt == 8 {
            maps.push_str("a=rtpmap:8 PCMA/8000\r\n");
        }
        format!(
            "v=0\r\n\
             o=- {session} {session} IN IP4 {ip}\r\n\
             s=voqa bench call\r\n\
             c=IN IP4 {ip}\r\n\
             t=0 0\r\n\
             m=audio {port} RTP/AVP {formats}\r\n\
             {maps}\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-16\r\n\
             a=ptime:20\r\n\
             a=maxptime:150\r\n\
             a=sendrecv\r\n"
        )
    }

    /// The headers every message of the dialog carries, for a request from the caller (or a
    /// response to one) — `to_tag` once the callee has answered.
    fn dialog_headers(&self, cseq: &str, branch: u32, to_tag: bool) -> String {
        let to_tag = if to_tag {
            format!(";tag={}", self.callee_tag())
        } else {
            String::new()
        };
        format!(
            "Via: SIP/2.0/UDP {}:{SIP_PORT};branch=z9hG4bK{:08x}{branch};rport\r\n\
             From: \"Caller {}\" <sip:{}@{}>;tag={}\r\n\
             To: <sip:{}@{}>{to_tag}\r\n\
             Call-ID: {}\r\n\
             CSeq: {cseq}\r\n",
            self.caller,
            self.index,
            self.index,
            self.caller_number(),
            self.caller,
            self.caller_tag(),
            self.callee_number(),
            self.callee,
            self.call_id(),
        )
    }

    /// Message `step` of the dialog: (from the caller?, text).
    fn message(&self, step: Step) -> (bool, String) {
        let callee_uri = format!("sip:{}@{}:{SIP_PORT}", self.callee_number(), self.callee);
        let caller_uri = format!("sip:{}@{}:{SIP_PORT}", self.caller_number(), self.caller);
        let contact_caller = format!("Contact: <{caller_uri};transport=udp>\r\n");
        let contact_callee = format!("Contact: <{callee_uri};transport=udp>\r\n");
        const ALLOW: &str =
            "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY, PRACK\r\n";
        let with_body = |start: &str, headers: String, extra: &str, body: &str| {
            let ctype = if body.is_empty() {
                ""
            } else {
                "Content-Type: application/sdp\r\n"
            };
            format!(
                "{start}\r\n{headers}{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        match step {
            Step::Invite => (
                true,
                with_body(
                    &format!("INVITE {callee_uri} SIP/2.0"),
                    self.dialog_headers("1 INVITE", 1, false),
                    &format!(
                        "Max-Forwards: 70\r\n{contact_caller}{ALLOW}\
                         Supported: replaces, timer, 100rel\r\n\
                         Session-Expires: 1800;refresher=uac\r\nMin-SE: 90\r\n\
                         P-Asserted-Identity: <sip:{}@{}>\r\n\
                         User-Agent: voqa-bench-uac/1.0\r\n",
                        self.caller_number(),
                        self.caller
                    ),
                    &self.sdp(true),
                ),
            ),
            Step::Trying => (
                false,
                with_body(
                    "SIP/2.0 100 Trying",
                    self.dialog_headers("1 INVITE", 1, false),
                    "Server: voqa-bench-uas/1.0\r\n",
                    "",
                ),
            ),
            Step::Ringing => (
                false,
                with_body(
                    "SIP/2.0 180 Ringing",
                    self.dialog_headers("1 INVITE", 1, true),
                    &format!("{contact_callee}Server: voqa-bench-uas/1.0\r\n"),
                    "",
                ),
            ),
            Step::Ok => (
                false,
                with_body(
                    "SIP/2.0 200 OK",
                    self.dialog_headers("1 INVITE", 1, true),
                    &format!(
                        "{contact_callee}{ALLOW}Supported: replaces, timer\r\n\
                         Session-Expires: 1800;refresher=uac\r\n\
                         Server: voqa-bench-uas/1.0\r\n"
                    ),
                    &self.sdp(false),
                ),
            ),
            Step::Ack => (
                true,
                with_body(
                    &format!("ACK {callee_uri} SIP/2.0"),
                    self.dialog_headers("1 ACK", 2, true),
                    &format!("Max-Forwards: 70\r\n{contact_caller}"),
                    "",
                ),
            ),
            Step::Bye => (
                true,
                with_body(
                    &format!("BYE {callee_uri} SIP/2.0"),
                    self.dialog_headers("2 BYE", 3, true),
                    "Max-Forwards: 70\r\nReason: Q.850;cause=16;text=\"Normal call clearing\"\r\n",
                    "",
                ),
            ),
            Step::ByeOk => (
                false,
                with_body(
                    "SIP/2.0 200 OK",
                    self.dialog_headers("2 BYE", 3, true),
                    "Server: voqa-bench-uas/1.0\r\n",
                    "",
                ),
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Invite,
    Trying,
    Ringing,
    Ok,
    Ack,
    Bye,
    ByeOk,
}

struct Out {
    w: PcapWriter<BufWriter<std::fs::File>>,
    frames: u64,
    sip: u64,
    sip_bytes: u64,
    invite_len: usize,
}

impl Out {
    fn frame(
        &mut self,
        ts: i64,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> std::io::Result<()> {
        self.frames += 1;
        self.w
            .write_frame(ts, &udp_frame(&LinkSpec::Ethernet, src, dst, payload))
    }

    fn sip(&mut self, ts: i64, call: &Call, step: Step) -> std::io::Result<()> {
        let (from_caller, text) = call.message(step);
        let (src, dst) = if from_caller {
            (call.sip(true), call.sip(false))
        } else {
            (call.sip(false), call.sip(true))
        };
        if step == Step::Invite {
            self.invite_len = self.invite_len.max(text.len());
        }
        self.sip += 1;
        self.sip_bytes += text.len() as u64;
        self.frame(ts, src, dst, text.as_bytes())
    }

    /// Writes the SIP `steps` of every call in time order: call `c` starts at
    /// `start + c * spread / calls`, each step at its offset from there.
    fn dialog_phase(
        &mut self,
        calls: &[Call],
        start: i64,
        spread: i64,
        steps: &dyn Fn(&Call) -> Vec<(i64, Step)>,
    ) -> std::io::Result<()> {
        let n = calls.len().max(1) as i64;
        // (time, call, step index): a merge of the calls' schedules, one pending step per call.
        let mut heap = BinaryHeap::new();
        let schedules: Vec<Vec<(i64, Step)>> = calls.iter().map(steps).collect();
        for (c, s) in schedules.iter().enumerate() {
            if let Some(&(offset, _)) = s.first() {
                heap.push(Reverse((start + c as i64 * spread / n + offset, c, 0usize)));
            }
        }
        while let Some(Reverse((ts, c, k))) = heap.pop() {
            let step = schedules[c][k].1;
            self.sip(ts, &calls[c], step)?;
            if let Some(&(offset, _)) = schedules[c].get(k + 1) {
                heap.push(Reverse((start + c as i64 * spread / n + offset, c, k + 1)));
            }
        }
        Ok(())
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(out) = args.get(1).filter(|a| !a.starts_with("--")) else {
        eprintln!(
            "usage: gen-capture OUT.pcap [--streams N | --calls N [--signalling-only]] [--packets M]"
        );
        std::process::exit(2);
    };
    let calls_arg = arg(&args, "--calls").map(|n| n as u32);
    let packets = if args.iter().any(|a| a == "--signalling-only") {
        0
    } else {
        arg(&args, "--packets").unwrap_or(200) as u32
    };
    let file = std::fs::File::create(out)?;
    let mut o = Out {
        w: PcapWriter::new(BufWriter::with_capacity(1 << 20, file), 1)?,
        frames: 0,
        sip: 0,
        sip_bytes: 0,
        invite_len: 0,
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (streams, calls, media_t0): (Vec<Stream>, Vec<Call>, i64) = match calls_arg {
        Some(n) => {
            let calls: Vec<Call> = (0..n).map(|c| Call::new(c, &mut rng)).collect();
            // Setups over the first second; every call answered by 1 s + 2 s + 20 ms.
            o.dialog_phase(&calls, T0, 1000 * MS, &|call| {
                vec![
                    (0, Step::Invite),
                    (2 * MS, Step::Trying),
                    (60 * MS, Step::Ringing),
                    (call.answer_after_ns, Step::Ok),
                    (call.answer_after_ns + 20 * MS, Step::Ack),
                ]
            })?;
            let streams = calls.iter().flat_map(Call::streams).collect();
            (streams, calls, T0 + 3100 * MS)
        }
        None => {
            let n = arg(&args, "--streams").unwrap_or(10_000) as u32;
            let streams = (0..n)
                .map(|s| Stream {
                    src: SocketAddr::from((
                        [10, (s >> 16) as u8, (s >> 8) as u8, s as u8],
                        16384 + (s % 16000) as u16 * 2,
                    )),
                    dst: SocketAddr::from((
                        [10, 200, (s >> 8) as u8, s as u8],
                        40000 + (s % 10000) as u16 * 2,
                    )),
                    ssrc: 0x5000_0000 + s,
                    pt: 0,
                    seq0: (s as u16).wrapping_mul(7),
                    ts0: s.wrapping_mul(1000),
                })
                .collect();
            (streams, Vec::new(), T0)
        }
    };
    let payload = [0xd5u8; 160];
    let count = streams.len() as i64;
    let mut rtp = 0u64;
    for round in 0..packets {
        for (s, st) in streams.iter().enumerate() {
            let r = rng.next();
            if r.is_multiple_of(200) && round > 3 {
                continue; // 0.5 % loss
            }
            let header = RtpHeader {
                payload_type: st.pt,
                marker: round == 0,
                sequence: st.seq0.wrapping_add(round as u16),
                timestamp: st.ts0.wrapping_add(round * 160),
                ssrc: st.ssrc,
                csrcs: vec![],
                extension: None,
                padding: 0,
            };
            // Streams are spread over the 20 ms period; ±2 ms of arrival jitter.
            let jitter_ns = (r >> 8) as i64 % 4_000_000 - 2_000_000;
            let ts = media_t0
                + i64::from(round) * 20 * MS
                + s as i64 * 20 * MS / count.max(1)
                + jitter_ns.max(0);
            o.frame(ts, st.src, st.dst, &rtp_packet(&header, &payload))?;
            rtp += 1;
        }
    }
    if !calls.is_empty() {
        // Hang-ups after the last media round, spread over one second.
        let end = media_t0 + i64::from(packets) * 20 * MS + 40 * MS;
        o.dialog_phase(&calls, end, 1000 * MS, &|_| {
            vec![(0, Step::Bye), (3 * MS, Step::ByeOk)]
        })?;
    }
    o.w.into_inner().flush()?;
    eprintln!(
        "wrote {} frames to {out}: {rtp} RTP packets of {} streams, {} SIP messages of {} calls ({} bytes on average, INVITE {} bytes)",
        o.frames,
        streams.len(),
        o.sip,
        calls.len(),
        o.sip_bytes.checked_div(o.sip).unwrap_or(0),
        o.invite_len
    );
    Ok(())
}
