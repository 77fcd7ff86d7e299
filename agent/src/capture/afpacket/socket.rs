//! AF_PACKET socket setup: the ring configuration and its validation, the setup errors, the
//! order of the setup calls, and thin typed wrappers around each system call (socket creation,
//! interface lookup, filter attach/lock, TPACKET_V3 ring request, bind, fanout, promiscuous
//! membership, statistics, poll).
//!
//! Each wrapper is one system call returning `io::Result`; `prepare` and `start` run them in
//! the order the kernel requires and turn failures into [`RingError`]s. The `unsafe` here is
//! limited to passing pointers to live, correctly sized values into the kernel. This module
//! does not map the ring (`ring.rs` does) and keeps no state.

use std::ffi::c_int;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::block::FRAME_HEADER_LEN;
use super::bpf;

/// Settings of one capture ring (one per worker thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingConfig {
    /// Interface to capture on, e.g. "eth0". The pseudo-interface "any" is not supported.
    pub interface: String,
    /// Bytes per block: a power of two and a multiple of the page size.
    pub block_size: usize,
    /// Blocks in the ring; the ring takes `block_size * block_count` bytes of kernel memory.
    pub block_count: usize,
    /// Only validated by the kernel in TPACKET_V3 (packets are packed at their real size):
    /// a multiple of 16, at least the frame header size and at most `block_size`.
    pub frame_size: usize,
    /// A partly filled block is handed over after this many milliseconds, bounding latency at
    /// low packet rates; 0 lets the kernel choose.
    pub retire_timeout_ms: u32,
    /// Bytes kept of each packet (the filter's accept verdict).
    pub snaplen: u32,
    /// Share the interface's traffic with other rings of the same group by flow hash.
    pub fanout: Option<Fanout>,
    /// Put the interface in promiscuous mode while the ring is open (needed on mirror ports).
    pub promiscuous: bool,
    /// Skip packets the host sends; needed on loopback, where each packet is seen twice.
    pub ignore_outgoing: bool,
    /// TCP ports let through the filter (SIP over TCP), besides all UDP.
    pub sip_ports: Vec<u16>,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            interface: String::new(),
            block_size: 1 << 20,
            block_count: 64,
            frame_size: 2048,
            retire_timeout_ms: 20,
            snaplen: 1600,
            fanout: None,
            promiscuous: false,
            ignore_outgoing: false,
            sip_ports: crate::reassembly::tcp::DEFAULT_SIP_PORTS.to_vec(),
        }
    }
}

/// Membership of a `PACKET_FANOUT_HASH` group: packets of one flow (both directions) always
/// go to the same ring of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fanout {
    pub group_id: u16,
    /// Reassemble IPv4 fragments before hashing (`PACKET_FANOUT_FLAG_DEFRAG`), so a fragmented
    /// datagram reaches one ring, whole.
    pub defrag: bool,
}

/// Why a ring could not be set up or read. Each setup step has its own variant naming the
/// interface and the failed call, e.g. "eth0: setsockopt(PACKET_RX_RING): Invalid argument".
/// The system error is part of the message and not also a `source()`: printed with its chain,
/// the reason appears once.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error(
        "{interface}: permission denied: live capture needs CAP_NET_RAW \
         (and CAP_NET_ADMIN for promiscuous mode)"
    )]
    PermissionDenied { interface: String },
    #[error("{interface}: no such network interface")]
    NoSuchInterface { interface: String },
    #[error("invalid capture ring configuration: {0}")]
    InvalidConfig(String),
    #[error("{interface}: link type {hardware_type} is not supported (only Ethernet and loopback)")]
    UnsupportedLinkType {
        interface: String,
        hardware_type: u16,
    },
    #[error("{interface}: socket(AF_PACKET): {error}")]
    Socket { interface: String, error: io::Error },
    #[error("{interface}: ioctl(SIOCGIFINDEX): {error}")]
    InterfaceIndex { interface: String, error: io::Error },
    #[error("{interface}: ioctl(SIOCGIFHWADDR): {error}")]
    HardwareType { interface: String, error: io::Error },
    #[error("{interface}: setsockopt(SO_ATTACH_FILTER): {error}")]
    AttachFilter { interface: String, error: io::Error },
    #[error("{interface}: setsockopt(SO_LOCK_FILTER): {error}")]
    LockFilter { interface: String, error: io::Error },
    #[error("{interface}: setsockopt(PACKET_VERSION): {error}")]
    Version { interface: String, error: io::Error },
    #[error("{interface}: setsockopt(PACKET_RX_RING): {error}")]
    RxRing { interface: String, error: io::Error },
    #[error("{interface}: mmap: {error}")]
    Mmap { interface: String, error: io::Error },
    #[error("{interface}: setsockopt(PACKET_IGNORE_OUTGOING): {error}")]
    IgnoreOutgoing { interface: String, error: io::Error },
    #[error("{interface}: bind: {error}")]
    Bind { interface: String, error: io::Error },
    #[error("{interface}: setsockopt(PACKET_FANOUT): {error}")]
    Fanout { interface: String, error: io::Error },
    #[error("{interface}: setsockopt(PACKET_ADD_MEMBERSHIP): {error}")]
    Promiscuous { interface: String, error: io::Error },
    #[error("{interface}: poll: {error}")]
    Poll { interface: String, error: io::Error },
    #[error("{interface}: socket error: {error}")]
    SocketError { interface: String, error: io::Error },
    #[error("{interface}: getsockopt(PACKET_STATISTICS): {error}")]
    Statistics { interface: String, error: io::Error },
}

/// The system call a [`RingError`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Socket,
    InterfaceIndex,
    HardwareType,
    AttachFilter,
    LockFilter,
    Version,
    RxRing,
    Mmap,
    IgnoreOutgoing,
    Bind,
    Fanout,
    Promiscuous,
    Poll,
    SocketError,
    Statistics,
}

impl Step {
    /// Builds the error for this step, singling out missing privileges and unknown interfaces.
    pub(super) fn error(self, interface: &str, error: io::Error) -> RingError {
        let interface = interface.to_owned();
        let lookup = matches!(self, Step::InterfaceIndex | Step::HardwareType | Step::Bind);
        match error.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => return RingError::PermissionDenied { interface },
            Some(libc::ENODEV) if lookup => return RingError::NoSuchInterface { interface },
            _ => {}
        }
        match self {
            Step::Socket => RingError::Socket { interface, error },
            Step::InterfaceIndex => RingError::InterfaceIndex { interface, error },
            Step::HardwareType => RingError::HardwareType { interface, error },
            Step::AttachFilter => RingError::AttachFilter { interface, error },
            Step::LockFilter => RingError::LockFilter { interface, error },
            Step::Version => RingError::Version { interface, error },
            Step::RxRing => RingError::RxRing { interface, error },
            Step::Mmap => RingError::Mmap { interface, error },
            Step::IgnoreOutgoing => RingError::IgnoreOutgoing { interface, error },
            Step::Bind => RingError::Bind { interface, error },
            Step::Fanout => RingError::Fanout { interface, error },
            Step::Promiscuous => RingError::Promiscuous { interface, error },
            Step::Poll => RingError::Poll { interface, error },
            Step::SocketError => RingError::SocketError { interface, error },
            Step::Statistics => RingError::Statistics { interface, error },
        }
    }
}

/// Checks `config` the way the kernel will, and builds the `PACKET_RX_RING` request, so that
/// mistakes are reported in words rather than as EINVAL.
pub(super) fn ring_request(
    config: &RingConfig,
    page_size: usize,
) -> Result<libc::tpacket_req3, RingError> {
    let invalid = |message: String| Err(RingError::InvalidConfig(message));
    let name = config.interface.as_str();
    if name.is_empty() {
        return invalid("no interface given".into());
    }
    if name == "any" {
        return invalid("interface \"any\" is not supported: open one ring per interface".into());
    }
    if name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return invalid(format!("{name:?} is not a valid interface name"));
    }
    let block_size = config.block_size;
    if !block_size.is_power_of_two() || !block_size.is_multiple_of(page_size) {
        return invalid(format!(
            "block size {block_size} must be a power of two and a multiple of the page size ({page_size})"
        ));
    }
    if config.block_count == 0 {
        return invalid("block count must be at least 1".into());
    }
    let frame_size = config.frame_size;
    if !frame_size.is_multiple_of(libc::TPACKET_ALIGNMENT)
        || frame_size < FRAME_HEADER_LEN
        || frame_size > block_size
    {
        return invalid(format!(
            "frame size {frame_size} must be a multiple of {} between {FRAME_HEADER_LEN} and the block size",
            libc::TPACKET_ALIGNMENT
        ));
    }
    if config.snaplen == 0 {
        return invalid("snaplen must be at least 1".into());
    }
    let too_big = || {
        RingError::InvalidConfig(format!(
            "a ring of {} blocks of {block_size} bytes is too large (at most 4 GiB)",
            config.block_count
        ))
    };
    let total = block_size
        .checked_mul(config.block_count)
        .ok_or_else(too_big)?;
    let frame_count = (block_size / frame_size)
        .checked_mul(config.block_count)
        .ok_or_else(too_big)?;
    let (Ok(_), Ok(tp_block_size), Ok(tp_block_nr), Ok(tp_frame_size), Ok(tp_frame_nr)) = (
        u32::try_from(total),
        u32::try_from(block_size),
        u32::try_from(config.block_count),
        u32::try_from(frame_size),
        u32::try_from(frame_count),
    ) else {
        return Err(too_big());
    };
    Ok(libc::tpacket_req3 {
        tp_block_size,
        tp_block_nr,
        tp_frame_size,
        tp_frame_nr,
        tp_retire_blk_tov: config.retire_timeout_ms,
        tp_sizeof_priv: 0,
        tp_feature_req_word: 0,
    })
}

/// A socket with filter, TPACKET_V3 and ring configured, not bound yet.
#[derive(Debug)]
pub(super) struct PreparedSocket {
    pub fd: OwnedFd,
    pub ifindex: c_int,
}

/// Setup steps before the ring is mapped: socket, interface lookup, filter (attached and locked
/// before bind, so nothing unfiltered is ever queued), TPACKET_V3 and the ring request.
pub(super) fn prepare(
    config: &RingConfig,
    request: &libc::tpacket_req3,
) -> Result<PreparedSocket, RingError> {
    let name = config.interface.as_str();
    let fd = open_packet_socket().map_err(|e| Step::Socket.error(name, e))?;
    let raw = fd.as_fd();
    let ifindex = interface_index(raw, name).map_err(|e| Step::InterfaceIndex.error(name, e))?;
    let hardware_type = hardware_type(raw, name).map_err(|e| Step::HardwareType.error(name, e))?;
    if hardware_type != libc::ARPHRD_ETHER && hardware_type != libc::ARPHRD_LOOPBACK {
        return Err(RingError::UnsupportedLinkType {
            interface: name.to_owned(),
            hardware_type,
        });
    }
    attach_filter(raw, &bpf::capture_filter(config.snaplen, &config.sip_ports))
        .map_err(|e| Step::AttachFilter.error(name, e))?;
    lock_filter(raw).map_err(|e| Step::LockFilter.error(name, e))?;
    stamp_at_reception(raw);
    set_tpacket_v3(raw).map_err(|e| Step::Version.error(name, e))?;
    request_rx_ring(raw, request).map_err(|e| Step::RxRing.error(name, e))?;
    Ok(PreparedSocket { fd, ifindex })
}

/// Setup steps after the ring is mapped: outgoing filter, bind (reception starts), fanout
/// (the kernel only lets a bound socket join), promiscuous mode.
pub(super) fn start(prepared: &PreparedSocket, config: &RingConfig) -> Result<(), RingError> {
    let name = config.interface.as_str();
    let fd = prepared.fd.as_fd();
    if config.ignore_outgoing {
        ignore_outgoing(fd).map_err(|e| Step::IgnoreOutgoing.error(name, e))?;
    }
    bind_interface(fd, prepared.ifindex).map_err(|e| Step::Bind.error(name, e))?;
    if let Some(fanout) = config.fanout {
        join_fanout(fd, fanout.group_id, fanout.defrag).map_err(|e| Step::Fanout.error(name, e))?;
    }
    if config.promiscuous {
        add_promiscuous(fd, prepared.ifindex).map_err(|e| Step::Promiscuous.error(name, e))?;
    }
    Ok(())
}

/// Converts a libc return value into `io::Result`, reading `errno` on -1.
fn check(result: c_int) -> io::Result<c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// Creates an AF_PACKET raw socket that receives nothing until it is bound (protocol 0).
#[allow(unsafe_code)]
pub(super) fn open_packet_socket() -> io::Result<OwnedFd> {
    let flags = libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain system call with constant arguments and no pointers.
    let fd = check(unsafe { libc::socket(libc::AF_PACKET, flags, 0) })?;
    // SAFETY: `fd` was just returned by socket(2), is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `ifreq` naming `interface`. The caller has checked that the name is non-empty, shorter
/// than `IFNAMSIZ` and free of NUL bytes, so it stays NUL-terminated.
fn interface_request(interface: &str) -> libc::ifreq {
    // An all-zero `ifreq` is valid: a zeroed name buffer and a zeroed union.
    let mut request = libc::ifreq {
        ifr_name: [0; libc::IFNAMSIZ],
        ifr_ifru: libc::__c_anonymous_ifr_ifru { ifru_ifindex: 0 },
    };
    for (slot, byte) in request
        .ifr_name
        .iter_mut()
        .zip(interface.bytes().take(libc::IFNAMSIZ - 1))
    {
        *slot = byte as libc::c_char;
    }
    request
}

/// Looks up the interface index of `interface` in the socket's network namespace.
#[allow(unsafe_code)]
pub(super) fn interface_index(fd: BorrowedFd<'_>, interface: &str) -> io::Result<c_int> {
    let mut request = interface_request(interface);
    // SAFETY: SIOCGIFINDEX reads the NUL-terminated name and writes `ifru_ifindex` inside the
    // `ifreq` we own for the duration of the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFINDEX as _, &mut request) })?;
    // SAFETY: the kernel filled `ifru_ifindex` on success; every bit pattern is a valid c_int.
    Ok(unsafe { request.ifr_ifru.ifru_ifindex })
}

/// Returns the ARPHRD_* hardware type of `interface` (1 = Ethernet, 772 = loopback).
#[allow(unsafe_code)]
pub(super) fn hardware_type(fd: BorrowedFd<'_>, interface: &str) -> io::Result<u16> {
    let mut request = interface_request(interface);
    // SAFETY: SIOCGIFHWADDR reads the name and writes a `sockaddr` into the union of the
    // `ifreq` we own for the duration of the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR as _, &mut request) })?;
    // SAFETY: the kernel filled `ifru_hwaddr` on success; it is plain integers.
    Ok(unsafe { request.ifr_ifru.ifru_hwaddr.sa_family })
}

/// setsockopt(2) with a value of plain-data type `T` passed by pointer and size.
#[allow(unsafe_code)]
fn set_option<T: Copy>(fd: BorrowedFd<'_>, level: c_int, name: c_int, value: &T) -> io::Result<()> {
    let len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` points to `len` readable bytes that live across the call; the kernel only
    // reads them (copy_from_user) and keeps no reference.
    let result =
        unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, (value as *const T).cast(), len) };
    check(result).map(drop)
}

/// Attaches a classic BPF program; the kernel copies it, so `program` may be dropped after.
pub(super) fn attach_filter(fd: BorrowedFd<'_>, program: &[libc::sock_filter]) -> io::Result<()> {
    let len =
        u16::try_from(program.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let fprog = libc::sock_fprog {
        len,
        // The kernel only reads through this pointer; `sock_fprog` just has no const variant.
        filter: program.as_ptr().cast_mut(),
    };
    set_option(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// Prevents the filter from being detached or replaced for the socket's lifetime.
pub(super) fn lock_filter(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_option(fd, libc::SOL_SOCKET, libc::SO_LOCK_FILTER, &(1 as c_int))
}

/// Asks the kernel to timestamp received packets once, when the device hands them to the
/// stack (`SO_TIMESTAMPNS` turns on the kernel's receive timestamping), instead of letting each
/// packet socket read the clock when the packet is delivered to it. Without it, two captures of
/// the same interface (ours and a tcpdump beside it, or two of our rings) stamp a packet at
/// different instants whenever the softirq is interrupted between deliveries: jitter measured
/// from capture timestamps then depends on who else is capturing. Best effort: on failure the
/// ring still gets the delivery-time stamps it always had.
pub(super) fn stamp_at_reception(fd: BorrowedFd<'_>) {
    let _ = set_option(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &(1 as c_int));
}

pub(super) fn set_tpacket_v3(fd: BorrowedFd<'_>) -> io::Result<()> {
    let version = libc::tpacket_versions::TPACKET_V3 as c_int;
    set_option(fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version)
}

pub(super) fn request_rx_ring(fd: BorrowedFd<'_>, request: &libc::tpacket_req3) -> io::Result<()> {
    set_option(fd, libc::SOL_PACKET, libc::PACKET_RX_RING, request)
}

pub(super) fn ignore_outgoing(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_option(
        fd,
        libc::SOL_PACKET,
        libc::PACKET_IGNORE_OUTGOING,
        &(1 as c_int),
    )
}

/// Binds to all protocols on one interface; reception starts here.
#[allow(unsafe_code)]
pub(super) fn bind_interface(fd: BorrowedFd<'_>, ifindex: c_int) -> io::Result<()> {
    let address = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    let len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `address` is a complete sockaddr_ll living across the call, `len` is its size,
    // and bind(2) only reads it.
    let result = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const address).cast::<libc::sockaddr>(),
            len,
        )
    };
    check(result).map(drop)
}

/// Joins fanout group `group_id` in flow-hash mode (both directions of a 5-tuple go to the same
/// socket), reassembling IPv4 fragments first when `defrag`. Must follow bind.
pub(super) fn join_fanout(fd: BorrowedFd<'_>, group_id: u16, defrag: bool) -> io::Result<()> {
    let mode = libc::PACKET_FANOUT_HASH
        | if defrag {
            libc::PACKET_FANOUT_FLAG_DEFRAG
        } else {
            0
        };
    let value = u32::from(group_id) | (mode << 16);
    set_option(fd, libc::SOL_PACKET, libc::PACKET_FANOUT, &value)
}

/// Puts the interface in promiscuous mode for as long as the socket stays open.
pub(super) fn add_promiscuous(fd: BorrowedFd<'_>, ifindex: c_int) -> io::Result<()> {
    let membership = libc::packet_mreq {
        mr_ifindex: ifindex,
        mr_type: libc::PACKET_MR_PROMISC as u16,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    set_option(
        fd,
        libc::SOL_PACKET,
        libc::PACKET_ADD_MEMBERSHIP,
        &membership,
    )
}

/// Reads and resets the kernel's counters for this socket.
#[allow(unsafe_code)]
pub(super) fn read_statistics(fd: BorrowedFd<'_>) -> io::Result<libc::tpacket_stats_v3> {
    let mut stats = libc::tpacket_stats_v3 {
        tp_packets: 0,
        tp_drops: 0,
        tp_freeze_q_cnt: 0,
    };
    let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
    // SAFETY: `stats` is writable for `len` bytes and `len` is a writable socklen_t; both live
    // across the call.
    let result = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&raw mut stats).cast(),
            &mut len,
        )
    };
    check(result)?;
    Ok(stats)
}

/// Takes the pending socket error (`SO_ERROR`), if any; reading it clears it.
#[allow(unsafe_code)]
pub(super) fn take_socket_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let mut error: c_int = 0;
    let mut len = size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `error` and `len` are writable locals of the sizes announced, alive across the call.
    let result = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut error).cast(),
            &mut len,
        )
    };
    check(result)?;
    Ok((error != 0).then(|| io::Error::from_raw_os_error(error)))
}

/// What a poll(2) on the socket reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Readiness {
    /// POLLIN: a block may be ready (the caller checks the block status).
    Readable,
    /// POLLERR: a socket error is pending (e.g. the interface went down).
    Error,
    /// Nothing happened before the timeout, or a signal interrupted the wait.
    Nothing,
}

/// Waits up to `timeout` (rounded up to whole milliseconds) for the socket to become readable.
#[allow(unsafe_code)]
pub(super) fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<Readiness> {
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    let millis = c_int::try_from(millis).unwrap_or(c_int::MAX);
    let mut request = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN | libc::POLLERR,
        revents: 0,
    };
    // SAFETY: one valid, writable pollfd, and nfds = 1 matches it.
    let result = unsafe { libc::poll(&mut request, 1, millis) };
    match check(result) {
        Ok(0) => Ok(Readiness::Nothing),
        Ok(_) if request.revents & (libc::POLLERR | libc::POLLNVAL) != 0 => Ok(Readiness::Error),
        Ok(_) => Ok(Readiness::Readable),
        Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(Readiness::Nothing),
        Err(error) => Err(error),
    }
}

/// The system page size; ring blocks must be a multiple of it.
#[allow(unsafe_code)]
pub(super) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_request_keeps_the_name_nul_terminated() {
        let request = interface_request("eth0");
        assert_eq!(
            &request.ifr_name[..5],
            &[b'e' as libc::c_char, b't' as _, b'h' as _, b'0' as _, 0]
        );
        let long = interface_request("a-very-long-interface-name");
        assert_eq!(long.ifr_name[libc::IFNAMSIZ - 1], 0);
    }

    #[test]
    fn page_size_is_a_power_of_two() {
        assert!(page_size().is_power_of_two());
        assert!(page_size() >= 4096);
    }
}
