//! Live capture through an AF_PACKET socket with a memory-mapped TPACKET_V3 ring: one ring per
//! worker thread, frames handed out as `&[u8]` borrowed from the ring with the kernel's
//! per-packet timestamps, never copied.
//!
//! Layout: `socket` (configuration, errors, setup system calls), `ring` (the mapping and block
//! hand-over, `PacketRing`/`BlockGuard`), `block` (the safe frame walker over one block),
//! `bpf` (the UDP-only socket filter and a test interpreter), `stats` (kernel counters).
//! Only `socket` and `ring` contain `unsafe`, each item allowing it individually.
//!
//! This module does not decode packets or run analysis; frames are Ethernet (LINKTYPE 1) and go
//! to the same pipeline as frames read from capture files.

pub mod block;
pub mod bpf;
pub mod ring;
pub mod socket;
pub mod stats;

pub use block::Frames;
pub use ring::{BlockGuard, PacketRing};
pub use socket::{Fanout, RingConfig, RingError};
pub use stats::KernelCounters;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod config_tests {
    use super::socket::{Step, ring_request};
    use super::*;
    use std::io;

    fn config(interface: &str) -> RingConfig {
        RingConfig {
            interface: interface.into(),
            ..RingConfig::default()
        }
    }

    fn rejection(config: &RingConfig) -> String {
        match ring_request(config, 4096) {
            Err(RingError::InvalidConfig(message)) => message,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn default_request_matches_the_kernel_rules() {
        let request = ring_request(&config("eth0"), 4096).unwrap();
        assert_eq!(request.tp_block_size, 1 << 20);
        assert_eq!(request.tp_block_nr, 64);
        assert_eq!(request.tp_frame_size, 2048);
        assert_eq!(request.tp_frame_nr, 64 * 512);
        assert_eq!(request.tp_retire_blk_tov, 20);
        assert_eq!(request.tp_sizeof_priv, 0);
    }

    #[test]
    fn bad_configurations_are_explained() {
        assert!(rejection(&config("any")).contains("\"any\" is not supported"));
        assert!(rejection(&config("")).contains("no interface"));
        assert!(
            rejection(&config("a-name-longer-than-ifnamsiz"))
                .contains("not a valid interface name")
        );
        let odd_block = RingConfig {
            block_size: 3 * 4096,
            ..config("eth0")
        };
        assert!(rejection(&odd_block).contains("power of two"));
        let small_block = RingConfig {
            block_size: 2048,
            frame_size: 1024,
            ..config("eth0")
        };
        assert!(rejection(&small_block).contains("page size"));
        let no_blocks = RingConfig {
            block_count: 0,
            ..config("eth0")
        };
        assert!(rejection(&no_blocks).contains("at least 1"));
        let unaligned_frame = RingConfig {
            frame_size: 2040,
            ..config("eth0")
        };
        assert!(rejection(&unaligned_frame).contains("frame size 2040"));
        let tiny_frame = RingConfig {
            frame_size: 32,
            ..config("eth0")
        };
        assert!(rejection(&tiny_frame).contains("frame size 32"));
        let huge = RingConfig {
            block_size: 1 << 30,
            block_count: 8,
            ..config("eth0")
        };
        assert!(rejection(&huge).contains("too large"));
        let no_snaplen = RingConfig {
            snaplen: 0,
            ..config("eth0")
        };
        assert!(rejection(&no_snaplen).contains("snaplen"));
    }

    #[test]
    fn any_is_refused_before_any_system_call() {
        let error = PacketRing::open(&config("any")).unwrap_err();
        assert!(matches!(error, RingError::InvalidConfig(_)));
    }

    #[test]
    fn error_messages_name_the_interface_and_the_call() {
        let einval = io::Error::from_raw_os_error(libc::EINVAL);
        let message = Step::RxRing.error("eth0", einval).to_string();
        assert!(
            message.starts_with("eth0: setsockopt(PACKET_RX_RING): Invalid argument"),
            "{message}"
        );
        let denied = Step::Socket.error("eth0", io::Error::from_raw_os_error(libc::EPERM));
        assert!(matches!(denied, RingError::PermissionDenied { .. }));
        assert!(denied.to_string().contains("CAP_NET_RAW"));
        assert!(denied.to_string().contains("CAP_NET_ADMIN for promiscuous"));
        let missing =
            Step::InterfaceIndex.error("eth9", io::Error::from_raw_os_error(libc::ENODEV));
        assert_eq!(missing.to_string(), "eth9: no such network interface");
        // ENODEV from a step that is not an interface lookup keeps its own variant.
        let other = Step::Fanout.error("eth0", io::Error::from_raw_os_error(libc::ENODEV));
        assert!(matches!(other, RingError::Fanout { .. }));
    }
}

/// Tests against the real kernel, inside network namespaces created for the test (never the
/// host's interfaces). They need root and the `ip` command, and skip otherwise.
#[cfg(test)]
#[allow(clippy::unwrap_used, unsafe_code)]
mod live_tests {
    use super::*;
    use std::collections::HashMap;
    use std::fs::File;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    const RECEIVER_IP: &str = "10.123.0.1";
    const SENDER_IP: &str = "10.123.0.2";
    const RECEIVER_MAC: &str = "02:00:00:7b:00:01";
    const SENDER_MAC: &str = "02:00:00:7b:00:02";
    const RECEIVER_IF: &str = "veth-a";
    const SENDER_IF: &str = "veth-b";
    const PORT: u16 = 40000;

    fn can_run() -> bool {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let ip = Command::new("ip")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !(root && ip) {
            println!("SKIPPED: needs root");
        }
        root && ip
    }

    fn ip(args: &[&str]) {
        let output = Command::new("ip").args(args).output().unwrap();
        assert!(
            output.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Two namespaces joined by a veth pair: `receiver` has veth-a 10.123.0.1/30, `sender` has
    /// veth-b 10.123.0.2/30, with static neighbour entries so no ARP is needed. Both
    /// namespaces (and so the veth pair) are deleted on drop, also when a test panics.
    struct NamespacePair {
        receiver: String,
        sender: String,
    }

    impl NamespacePair {
        fn create(tag: &str) -> Self {
            let pid = std::process::id();
            let pair = Self {
                receiver: format!("voqa-afp-a-{pid}-{tag}"),
                sender: format!("voqa-afp-b-{pid}-{tag}"),
            };
            let (a, b) = (pair.receiver.as_str(), pair.sender.as_str());
            ip(&["netns", "add", a]);
            ip(&["netns", "add", b]);
            ip(&[
                "-n",
                a,
                "link",
                "add",
                RECEIVER_IF,
                "address",
                RECEIVER_MAC,
                "type",
                "veth",
                "peer",
                "name",
                SENDER_IF,
                "address",
                SENDER_MAC,
                "netns",
                b,
            ]);
            ip(&["-n", a, "addr", "add", "10.123.0.1/30", "dev", RECEIVER_IF]);
            ip(&["-n", b, "addr", "add", "10.123.0.2/30", "dev", SENDER_IF]);
            ip(&["-n", a, "link", "set", RECEIVER_IF, "up"]);
            ip(&["-n", a, "link", "set", "lo", "up"]);
            ip(&["-n", b, "link", "set", SENDER_IF, "up"]);
            ip(&[
                "-n",
                a,
                "neigh",
                "replace",
                SENDER_IP,
                "lladdr",
                SENDER_MAC,
                "dev",
                RECEIVER_IF,
                "nud",
                "permanent",
            ]);
            ip(&[
                "-n",
                b,
                "neigh",
                "replace",
                RECEIVER_IP,
                "lladdr",
                RECEIVER_MAC,
                "dev",
                SENDER_IF,
                "nud",
                "permanent",
            ]);
            pair
        }
    }

    impl Drop for NamespacePair {
        fn drop(&mut self) {
            for name in [&self.receiver, &self.sender] {
                let _ = Command::new("ip")
                    .args(["netns", "del", name])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }

    /// Runs `work` on a new thread that first enters network namespace `name` (namespaces are
    /// per thread, so this leaves the test thread and the host untouched).
    fn in_namespace<T: Send + 'static>(
        name: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = format!("/run/netns/{name}");
        thread::spawn(move || {
            let namespace = File::open(&path).unwrap();
            // SAFETY: setns on a namespace file we hold open; it only changes this thread.
            let result = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                result,
                0,
                "setns {path}: {}",
                std::io::Error::last_os_error()
            );
            work()
        })
    }

    fn payload(index: u32) -> Vec<u8> {
        let mut bytes = b"voqa-afpacket-".to_vec();
        bytes.extend_from_slice(&index.to_be_bytes());
        bytes.extend(std::iter::repeat_n((index % 251) as u8, 40));
        bytes
    }

    fn send_datagrams(pair: &NamespacePair, count: u32, extra: Vec<Vec<u8>>) -> JoinHandle<()> {
        in_namespace(&pair.sender, move || {
            let socket = UdpSocket::bind((SENDER_IP, 0)).unwrap();
            for index in 0..count {
                socket
                    .send_to(&payload(index), (RECEIVER_IP, PORT))
                    .unwrap();
            }
            for datagram in extra {
                socket.send_to(&datagram, (RECEIVER_IP, PORT)).unwrap();
            }
        })
    }

    /// What the test learns from one IPv4 frame (the filter lets nothing else through here).
    enum Seen {
        Datagram { source_port: u16, payload: Vec<u8> },
        Fragment,
    }

    fn inspect(data: &[u8]) -> Seen {
        assert_eq!(
            &data[12..14],
            &[0x08, 0x00],
            "only IPv4 expected: {data:02x?}"
        );
        let ip = &data[14..];
        assert_eq!(
            ip[9], 17,
            "the filter let a non-UDP packet through: {data:02x?}"
        );
        let header_len = usize::from(ip[0] & 0x0f) * 4;
        let fragment = u16::from_be_bytes([ip[6], ip[7]]);
        if fragment & 0x3fff != 0 {
            return Seen::Fragment;
        }
        let udp = &ip[header_len..];
        assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), PORT);
        Seen::Datagram {
            source_port: u16::from_be_bytes([udp[0], udp[1]]),
            payload: udp[8..].to_vec(),
        }
    }

    fn ring_config() -> RingConfig {
        RingConfig {
            interface: RECEIVER_IF.into(),
            block_size: 1 << 16,
            block_count: 16,
            retire_timeout_ms: 10,
            ..RingConfig::default()
        }
    }

    #[test]
    fn datagrams_arrive_in_order_with_kernel_timestamps() {
        if !can_run() {
            return;
        }
        const COUNT: u32 = 500;
        let pair = NamespacePair::create("order");
        let (ready_tx, ready_rx) = mpsc::channel();
        let receiver = in_namespace(&pair.receiver, move || {
            let missing = PacketRing::open(&RingConfig {
                interface: "voqa-none0".into(),
                ..ring_config()
            });
            let mut ring = PacketRing::open(&ring_config()).unwrap();
            assert_eq!(ring.interface(), RECEIVER_IF);
            ready_tx.send(()).unwrap();
            let mut datagrams = Vec::new();
            let mut fragments = 0;
            let deadline = Instant::now() + Duration::from_secs(10);
            while (datagrams.len() < COUNT as usize || fragments < 3) && Instant::now() < deadline {
                let Some(block) = ring.next_block(Duration::from_millis(100)).unwrap() else {
                    continue;
                };
                let mut frames = block.frames();
                for frame in frames.by_ref() {
                    assert_eq!(frame.data.len() as u32, frame.wire_len);
                    assert_eq!(frame.pkttype, Some(libc::PACKET_HOST));
                    assert_eq!(frame.vlan_tci, None);
                    match inspect(frame.data) {
                        Seen::Datagram { payload, .. } => datagrams.push((frame.ts_ns, payload)),
                        Seen::Fragment => fragments += 1,
                    }
                }
                assert!(!frames.malformed());
            }
            (missing.err(), datagrams, fragments, ring.stats().unwrap())
        });
        ready_rx.recv_timeout(Duration::from_secs(10)).ok();
        send_datagrams(&pair, COUNT, vec![vec![0x5a; 3000]])
            .join()
            .unwrap();
        let (missing, datagrams, fragments, counters) = receiver.join().unwrap();

        assert!(
            matches!(missing, Some(RingError::NoSuchInterface { .. })),
            "{missing:?}"
        );
        assert_eq!(datagrams.len(), COUNT as usize);
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        for (index, (ts_ns, bytes)) in datagrams.iter().enumerate() {
            assert_eq!(bytes, &payload(index as u32), "datagram {index}");
            assert!(
                (now_ns - ts_ns).abs() < 60_000_000_000,
                "timestamp {ts_ns} far from now {now_ns}"
            );
        }
        assert!(
            datagrams.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "timestamps not increasing"
        );
        assert_eq!(
            fragments, 3,
            "a 3000-byte datagram is 3 IPv4 fragments at MTU 1500"
        );
        assert!(counters.packets >= u64::from(COUNT) + 3, "{counters:?}");
        assert_eq!(counters.drops, 0, "{counters:?}");
    }

    #[test]
    fn a_ring_too_small_reports_drops() {
        if !can_run() {
            return;
        }
        const COUNT: u32 = 20_000;
        const SNAPLEN: u32 = 64;
        let pair = NamespacePair::create("drops");
        let (ready_tx, ready_rx) = mpsc::channel();
        let (sent_tx, sent_rx) = mpsc::channel::<()>();
        let receiver = in_namespace(&pair.receiver, move || {
            let config = RingConfig {
                interface: RECEIVER_IF.into(),
                block_size: 4096,
                block_count: 2,
                retire_timeout_ms: 1000,
                snaplen: SNAPLEN,
                ..RingConfig::default()
            };
            let mut ring = PacketRing::open(&config).unwrap();
            ready_tx.send(()).unwrap();
            sent_rx.recv_timeout(Duration::from_secs(30)).unwrap();
            thread::sleep(Duration::from_millis(200));
            let counters = ring.stats().unwrap();
            let mut delivered = 0u64;
            while let Some(block) = ring.next_block(Duration::ZERO).unwrap() {
                for frame in block.frames() {
                    assert_eq!(frame.data.len() as u32, SNAPLEN);
                    assert_eq!(frame.wire_len, 14 + 20 + 8 + payload(0).len() as u32);
                    delivered += 1;
                }
            }
            (counters, delivered)
        });
        ready_rx.recv_timeout(Duration::from_secs(10)).ok();
        send_datagrams(&pair, COUNT, Vec::new()).join().unwrap();
        sent_tx.send(()).ok();
        let (counters, delivered) = receiver.join().unwrap();

        assert!(counters.drops > 0, "{counters:?}");
        assert!(counters.freezes > 0, "{counters:?}");
        assert!(counters.packets <= u64::from(COUNT));
        assert_eq!(counters.delivered(), delivered, "{counters:?}");
        assert!(delivered > 0 && delivered < 100);
    }

    #[test]
    fn fanout_keeps_each_flow_on_one_ring_and_reassembles() {
        if !can_run() {
            return;
        }
        const FLOWS: u16 = 8;
        const PER_FLOW: u32 = 50;
        const BIG: usize = 3000;
        let pair = NamespacePair::create("fanout");
        let (ready_tx, ready_rx) = mpsc::channel();
        let receiver = in_namespace(&pair.receiver, move || {
            let config = RingConfig {
                fanout: Some(Fanout {
                    group_id: 0x7a11,
                    defrag: true,
                }),
                promiscuous: true,
                snaplen: 65535,
                ..ring_config()
            };
            let mut rings = [
                PacketRing::open(&config).unwrap(),
                PacketRing::open(&config).unwrap(),
            ];
            ready_tx.send(()).unwrap();
            // Ring index and packet count per source port; reassembled big datagrams.
            let mut owner: HashMap<u16, usize> = HashMap::new();
            let mut seen: HashMap<u16, u32> = HashMap::new();
            let mut big = Vec::new();
            let mut fragments = 0;
            let expected = u32::from(FLOWS) * PER_FLOW;
            let deadline = Instant::now() + Duration::from_secs(10);
            while (seen.values().sum::<u32>() < expected || big.is_empty())
                && Instant::now() < deadline
            {
                for (index, ring) in rings.iter_mut().enumerate() {
                    let Some(block) = ring.next_block(Duration::from_millis(20)).unwrap() else {
                        continue;
                    };
                    for frame in block.frames() {
                        match inspect(frame.data) {
                            Seen::Datagram { payload, .. } if payload.len() == BIG => {
                                big.push((frame.wire_len, payload));
                            }
                            Seen::Datagram { source_port, .. } => {
                                let first = *owner.entry(source_port).or_insert(index);
                                assert_eq!(first, index, "flow split across rings");
                                *seen.entry(source_port).or_default() += 1;
                            }
                            Seen::Fragment => fragments += 1,
                        }
                    }
                }
            }
            (seen, big, fragments)
        });
        ready_rx.recv_timeout(Duration::from_secs(10)).ok();
        in_namespace(&pair.sender, || {
            let sockets: Vec<UdpSocket> = (0..FLOWS)
                .map(|_| UdpSocket::bind((SENDER_IP, 0)).unwrap())
                .collect();
            for index in 0..PER_FLOW {
                for socket in &sockets {
                    socket
                        .send_to(&payload(index), (RECEIVER_IP, PORT))
                        .unwrap();
                }
            }
            let other = UdpSocket::bind((SENDER_IP, 0)).unwrap();
            other.send_to(&[0xa5; BIG], (RECEIVER_IP, PORT)).unwrap();
        })
        .join()
        .unwrap();
        let (seen, big, fragments) = receiver.join().unwrap();
        assert_eq!(seen.len(), usize::from(FLOWS));
        assert!(seen.values().all(|&count| count == PER_FLOW), "{seen:?}");
        // PACKET_FANOUT_FLAG_DEFRAG: the three fragments reach one ring as one datagram.
        assert_eq!(fragments, 0);
        assert_eq!(big.len(), 1);
        assert_eq!(big[0].0, (14 + 20 + 8 + BIG) as u32);
        assert!(big[0].1.iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn loopback_with_ignore_outgoing_sees_each_packet_once() {
        if !can_run() {
            return;
        }
        const COUNT: u32 = 100;
        let pair = NamespacePair::create("lo");
        in_namespace(&pair.receiver, || {
            let open = |ignore_outgoing| {
                PacketRing::open(&RingConfig {
                    interface: "lo".into(),
                    ignore_outgoing,
                    ..ring_config()
                })
                .unwrap()
            };
            let mut rings = [open(true), open(false)];
            let socket = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
            for index in 0..COUNT {
                socket
                    .send_to(&payload(index), ("127.0.0.1", PORT))
                    .unwrap();
            }
            let mut counts = [0u32; 2];
            let mut outgoing = [0u32; 2];
            let deadline = Instant::now() + Duration::from_secs(10);
            while counts[1] < 2 * COUNT && Instant::now() < deadline {
                for (index, ring) in rings.iter_mut().enumerate() {
                    assert_eq!(ring.linktype(), 1);
                    let Some(block) = ring.next_block(Duration::from_millis(20)).unwrap() else {
                        continue;
                    };
                    for frame in block.frames() {
                        // Loopback frames carry a zeroed Ethernet header.
                        assert_eq!(&frame.data[..12], &[0; 12]);
                        if let Seen::Datagram { .. } = inspect(frame.data) {
                            counts[index] += 1;
                            if frame.is_outgoing() {
                                outgoing[index] += 1;
                            }
                        }
                    }
                }
            }
            // Let the ignoring ring catch up with the other one.
            while let Some(block) = rings[0].next_block(Duration::from_millis(50)).unwrap() {
                counts[0] += block.frames().count() as u32;
            }
            assert_eq!(counts, [COUNT, 2 * COUNT]);
            assert_eq!(outgoing, [0, COUNT]);
        })
        .join()
        .unwrap();
    }
}
