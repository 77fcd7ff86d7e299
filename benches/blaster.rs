//! A fast RTP sender for live-capture benchmarks: prepared G.711 packets of `--streams`
//! concurrent streams, sent with `sendmmsg` in batches at `--rate` packets/s (0 = as fast as
//! possible) for `--seconds`. Each stream keeps its own sequence numbers and timestamps, so the
//! agent measures real streams, not noise. Prints the packets sent.
//!
//! Usage: blaster DST_IP [--port-base 40000] [--streams 1000] [--rate 100000] [--seconds 10]
//!
//! Benchmark tool, not product code: `sendmmsg` needs `unsafe` (a raw syscall on our own buffers).
#![allow(unsafe_code)]

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const BATCH: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dst) = args.get(1).and_then(|a| a.parse::<Ipv4Addr>().ok()) else {
        eprintln!("usage: blaster DST_IP [--port-base P] [--streams N] [--rate PPS] [--seconds S]");
        std::process::exit(2);
    };
    let port_base = arg(&args, "--port-base", 40000) as u16;
    let streams = arg(&args, "--streams", 1000).max(1) as u32;
    let rate = arg(&args, "--rate", 100_000);
    let seconds = arg(&args, "--seconds", 10);
    let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
    let fd = socket.as_raw_fd();

    // One sockaddr per stream (distinct destination ports = distinct 5-tuples).
    let addrs: Vec<libc::sockaddr_in> = (0..streams)
        .map(|s| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            // Even ports from the base, wrapping before 65535 (port 0 is invalid).
            sin_port: (port_base.saturating_add((s % 12000) as u16 * 2)).to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(dst).to_be(),
            },
            sin_zero: [0; 8],
        })
        .collect();
    let mut seq: Vec<u16> = (0..streams).map(|s| (s * 7) as u16).collect();
    let mut ts: Vec<u32> = (0..streams).map(|s| s.wrapping_mul(1000)).collect();
    let mut bufs = vec![[0u8; 172]; BATCH];
    let mut iov: Vec<libc::iovec> = Vec::with_capacity(BATCH);
    let mut hdrs: Vec<libc::mmsghdr> = Vec::with_capacity(BATCH);
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut sent: u64 = 0;
    let mut next_stream: u32 = 0;
    let mut errors: u64 = 0;
    while Instant::now() < end {
        if rate > 0 {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            if sent >= due {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
        }
        iov.clear();
        hdrs.clear();
        let mut targets = [0u32; BATCH];
        for (i, buf) in bufs.iter_mut().enumerate() {
            let s = next_stream;
            next_stream = (next_stream + 1) % streams;
            targets[i] = s;
            let k = s as usize;
            buf[0] = 0x80;
            buf[1] = 0;
            buf[2..4].copy_from_slice(&seq[k].to_be_bytes());
            buf[4..8].copy_from_slice(&ts[k].to_be_bytes());
            buf[8..12].copy_from_slice(&(0x5000_0000u32 + s).to_be_bytes());
            seq[k] = seq[k].wrapping_add(1);
            ts[k] = ts[k].wrapping_add(160);
            iov.push(libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            });
        }
        for (i, target) in targets.iter().enumerate() {
            // SAFETY: zeroed mmsghdr is a valid empty header; pointers below stay alive until sendmmsg returns.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = (&addrs[*target as usize] as *const libc::sockaddr_in)
                .cast_mut()
                .cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
            h.msg_hdr.msg_iov = &mut iov[i];
            h.msg_hdr.msg_iovlen = 1;
            hdrs.push(h);
        }
        // SAFETY: `hdrs` holds BATCH valid headers pointing into `addrs`, `iov` and `bufs`.
        let n = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), BATCH as u32, 0) };
        if n < 0 {
            errors += 1;
            if errors == 1 {
                eprintln!("sendmmsg: {}", std::io::Error::last_os_error());
            }
        }
        let n = n.max(0) as usize;
        sent += n as u64;
        // Packets the kernel did not take were not sent: their streams resend those numbers.
        for &s in targets.iter().skip(n).rev() {
            let k = s as usize;
            seq[k] = seq[k].wrapping_sub(1);
            ts[k] = ts[k].wrapping_sub(160);
        }
        if n < BATCH {
            next_stream = targets[n];
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sent {sent} packets of {streams} streams in {secs:.2} s ({:.0} packets/s); {errors} failed sendmmsg calls",
        sent as f64 / secs
    );
}
