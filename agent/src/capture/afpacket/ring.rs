//! The memory-mapped TPACKET_V3 receive ring of one AF_PACKET socket, and the hand-over of its
//! blocks between the kernel and user space.
//!
//! A block belongs to user space while its `block_status` has `TP_STATUS_USER` (read with
//! Acquire); [`BlockGuard`] borrows the ring exclusively while it holds a block, its frames
//! borrow the guard, and its `Drop` gives the block back with a Release store of
//! `TP_STATUS_KERNEL`, so no frame slice can outlive the hand-back. Walking the frames is left
//! to the safe `block.rs`; this module only owns the mapping, finds the next block and waits.
//! Nothing here allocates or copies per packet.

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::block::{self, BLOCK_HEADER_LEN, BLOCK_STATUS_OFFSET, Frames};
use super::socket::{self, Readiness, RingConfig, RingError, Step};
use super::stats::{KernelCounters, StatsSample};

/// The `mmap`ed ring memory; unmapped on drop.
#[derive(Debug)]
struct RingMemory {
    base: NonNull<u8>,
    len: usize,
}

impl RingMemory {
    #[allow(unsafe_code)]
    fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<Self> {
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh shared mapping of the socket's ring at a kernel-chosen address; it
        // cannot alias any existing Rust object. `len` is the ring size the kernel accepted.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(address.cast::<u8>())
            .ok_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable))?;
        Ok(Self { base, len })
    }
}

impl Drop for RingMemory {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: `base`/`len` describe exactly the mapping made in `map`, and no borrow of it
        // can be alive: guards borrow the `PacketRing` that owns this value.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

// SAFETY: the mapping is owned by this value alone (it is never shared or cloned) and has no
// thread affinity, so moving it to another thread is sound. It is not `Sync`.
#[allow(unsafe_code)]
unsafe impl Send for RingMemory {}

/// A live capture ring on one interface: an AF_PACKET socket with a UDP-only filter and a
/// TPACKET_V3 receive ring mapped into memory.
#[derive(Debug)]
pub struct PacketRing {
    // Declared before `fd` so the ring is unmapped before the socket is closed.
    memory: RingMemory,
    fd: OwnedFd,
    block_size: usize,
    block_count: usize,
    /// The block the kernel will hand over next (blocks are filled and returned in order).
    next_block: usize,
    counters: KernelCounters,
    interface: String,
}

impl PacketRing {
    /// Opens the ring: socket, filter (attached and locked before bind), TPACKET_V3, ring
    /// request, mmap, bind, then fanout and promiscuous mode if asked for. Reception starts at
    /// bind; nothing but UDP over IPv4/IPv6 is ever queued.
    pub fn open(config: &RingConfig) -> Result<Self, RingError> {
        let request = socket::ring_request(config, socket::page_size())?;
        let prepared = socket::prepare(config, &request)?;
        let len = config.block_size * config.block_count; // checked by ring_request
        let memory = RingMemory::map(prepared.fd.as_fd(), len)
            .map_err(|e| Step::Mmap.error(&config.interface, e))?;
        socket::start(&prepared, config)?;
        Ok(Self {
            memory,
            fd: prepared.fd,
            block_size: config.block_size,
            block_count: config.block_count,
            next_block: 0,
            counters: KernelCounters::default(),
            interface: config.interface.clone(),
        })
    }

    /// The interface this ring captures on.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Pcap LINKTYPE of the frames: always 1 (Ethernet); `open` rejects other link types, and
    /// loopback frames carry a zeroed Ethernet header.
    pub fn linktype(&self) -> u32 {
        1
    }

    /// Start of block `index`; `index < block_count`, so the block lies inside the mapping.
    #[allow(unsafe_code)]
    fn block_start(&self, index: usize) -> NonNull<u8> {
        debug_assert!(index < self.block_count);
        // SAFETY: index < block_count and block_size * block_count == memory.len, so the
        // offset stays inside the mapping.
        unsafe { self.memory.base.add(index * self.block_size) }
    }

    /// The status word of block `index` (`index < block_count`).
    #[allow(unsafe_code)]
    fn status_word(&self, index: usize) -> &AtomicU32 {
        // SAFETY: `block_start` returns a block start inside `self.memory`, which lives as long
        // as the returned borrow of `self`.
        unsafe { block_status(self.block_start(index)) }
    }

    /// Waits up to `timeout` for the next block the kernel has filled (or retired after
    /// `retire_timeout_ms`, possibly empty) and returns it; `None` on timeout.
    pub fn next_block(&mut self, timeout: Duration) -> Result<Option<BlockGuard<'_>>, RingError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let index = self.next_block;
            let start = self.block_start(index);
            let status = self.status_word(index).load(Ordering::Acquire);
            if status & libc::TP_STATUS_USER != 0 {
                self.next_block = (index + 1) % self.block_count;
                return Ok(Some(BlockGuard {
                    start,
                    len: self.block_size,
                    status,
                    _ring: PhantomData,
                }));
            }
            let left = deadline.map_or(timeout, |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Ok(None);
            }
            let readiness = socket::wait_readable(self.fd.as_fd(), left)
                .map_err(|e| Step::Poll.error(&self.interface, e))?;
            if readiness == Readiness::Error {
                let pending = socket::take_socket_error(self.fd.as_fd())
                    .map_err(|e| Step::SocketError.error(&self.interface, e))?;
                if let Some(error) = pending {
                    return Err(Step::SocketError.error(&self.interface, error));
                }
            }
        }
    }

    /// Reads the kernel's reset-on-read counters, adds them to the totals since `open` and
    /// returns the totals. Also clears the kernel's `TP_STATUS_LOSING` condition.
    pub fn stats(&mut self) -> Result<KernelCounters, RingError> {
        let sample = socket::read_statistics(self.fd.as_fd())
            .map_err(|e| Step::Statistics.error(&self.interface, e))?;
        self.counters.accumulate(StatsSample::from(sample));
        Ok(self.counters)
    }
}

impl AsFd for PacketRing {
    /// For registering the socket with an external poller; reading from it directly would
    /// bypass the ring.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The `block_status` word of the block starting at `start`, shared with the kernel.
///
/// # Safety
/// `start` must be the start of a block inside a live ring mapping that outlives `'a`.
#[allow(unsafe_code)]
unsafe fn block_status<'a>(start: NonNull<u8>) -> &'a AtomicU32 {
    const _: () = assert!(
        BLOCK_STATUS_OFFSET.is_multiple_of(4) && BLOCK_STATUS_OFFSET + 4 <= BLOCK_HEADER_LEN
    );
    // SAFETY: per the contract, `start` is a block start inside the mapping (page aligned,
    // since the block size is a multiple of the page size), so `start + 8` is 4-byte aligned
    // and in bounds for `'a`. While the other side may be using it, the kernel and we only
    // access this word atomically.
    unsafe { AtomicU32::from_ptr(start.add(BLOCK_STATUS_OFFSET).cast::<u32>().as_ptr()) }
}

/// A block owned by user space. Its frames borrow the guard; dropping the guard returns the
/// block to the kernel.
#[derive(Debug)]
pub struct BlockGuard<'r> {
    start: NonNull<u8>,
    len: usize,
    status: u32,
    _ring: PhantomData<&'r mut PacketRing>,
}

impl BlockGuard<'_> {
    #[allow(unsafe_code)]
    fn bytes(&self) -> &[u8] {
        // SAFETY: the block is `len` bytes inside the mapping, which outlives `'r` and so this
        // borrow. Its status was TP_STATUS_USER (Acquire), so the kernel has finished writing it
        // and will not touch it until `drop` stores TP_STATUS_KERNEL, which cannot happen while
        // this borrow of `self` lives.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }

    #[allow(unsafe_code)]
    fn status_word(&self) -> &AtomicU32 {
        // SAFETY: `start` came from `PacketRing::block_start`, and the ring (with its mapping)
        // stays borrowed for `'r`, longer than this borrow of the guard.
        unsafe { block_status(self.start) }
    }

    /// The packets in this block, borrowed from it.
    pub fn frames(&self) -> Frames<'_> {
        block::frames(self.bytes())
    }

    /// True when the kernel dropped packets since the counters were last read
    /// (`TP_STATUS_LOSING`); call [`PacketRing::stats`] to learn how many.
    pub fn losing(&self) -> bool {
        self.status & libc::TP_STATUS_LOSING != 0
    }

    /// True when the block was handed over by the retire timer rather than because it was full.
    pub fn timed_out(&self) -> bool {
        self.status & libc::TP_STATUS_BLK_TMO != 0
    }
}

impl Drop for BlockGuard<'_> {
    fn drop(&mut self) {
        // Release: all our reads of the block happen before the kernel may refill it.
        self.status_word()
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }
}
