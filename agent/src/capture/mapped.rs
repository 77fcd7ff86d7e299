//! Memory-mapped windows of a regular capture file, read without dying of SIGBUS when the file
//! shrinks.
//!
//! The thread that reads a plain (not gzip) regular file for `analyze` maps it window by
//! window ([`Window::map`], populated at once, by that thread) and the analysis parses each
//! window in place, instead of the kernel copying every byte out with `pread` (that copy was
//! about a quarter of the whole process's CPU). But a mapped file that shrinks (rotation in
//! place, `copytruncate`) makes the kernel send SIGBUS on the next access to a page past its new
//! end, which kills the process. So a process-wide SIGBUS handler, installed with the first
//! window, looks the faulting address up in the table of live windows: when it lies in one, the
//! handler puts a page of zeros there (`mmap` with `MAP_FIXED`, which is async-signal-safe),
//! notes the fault in the window's entry and returns, so the access completes (reading zeros).
//! The reader checks [`Window::fault`] after each record it parses and ends with
//! `CaptureError::Shrank`; at most the record whose bytes were being read when the file shrank
//! can have been handed out with zeros in it. A SIGBUS anywhere else goes to the handler that
//! was installed before (Rust's stack-overflow handler) or gets the default action, as without
//! this module.
//!
//! This module must NOT map anything but regular files opened for reading, hand out a window's
//! bytes beyond its length, or keep more than [`MAX_WINDOWS`] windows mapped at once (a full
//! table maps nothing: the caller reads instead). Like any read-only file mapping, a window
//! shows what other processes write into the file; the parser checks every length it reads, so
//! changed bytes can make records wrong but never make it read out of bounds.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Windows mapped at once in the whole process, at most: each input has a handful alive
/// (the queued ones and the one parsed), several inputs and tests can be read concurrently.
pub const MAX_WINDOWS: usize = 64;

/// One entry of the table of live windows, read by the signal handler.
struct Slot {
    taken: AtomicBool,
    /// Address range of the window; `start == 0`: no window (set last, cleared first).
    start: AtomicUsize,
    end: AtomicUsize,
    /// The first address that faulted, 0 if none.
    fault: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    taken: AtomicBool::new(false),
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    fault: AtomicUsize::new(0),
};

static SLOTS: [Slot; MAX_WINDOWS] = [FREE; MAX_WINDOWS];

/// The handler is installed; the page size.
struct Installed {
    page: usize,
}

static INSTALLED: OnceLock<io::Result<Installed>> = OnceLock::new();

/// A read-only, populated mapping of `len` bytes of a file from a page-aligned offset,
/// registered with the SIGBUS handler; unmapped on drop.
pub struct Window {
    base: NonNull<u8>,
    len: usize,
    slot: usize,
    /// File offset of the first byte.
    offset: u64,
}

// SAFETY: the mapping is read-only and owned by this value alone; its bytes are only ever
// read (through `bytes`), from any thread.
#[allow(unsafe_code)]
unsafe impl Send for Window {}
#[allow(unsafe_code)]
unsafe impl Sync for Window {}

impl Window {
    /// Maps `len` bytes of `file` from `offset` (a multiple of the page size) and populates
    /// the page tables now, in the calling thread. `Ok(None)`: the table of windows is full, or
    /// `len` is 0. `file` must be a regular file opened for reading.
    #[allow(unsafe_code)]
    pub fn map(file: &File, offset: u64, len: usize) -> io::Result<Option<Window>> {
        let installed = match INSTALLED.get_or_init(install) {
            Ok(installed) => installed,
            Err(error) => return Err(io::Error::new(error.kind(), error.to_string())),
        };
        if len == 0 || !offset.is_multiple_of(installed.page as u64) {
            return Ok(None);
        }
        let Some(slot) = SLOTS.iter().position(|s| {
            s.taken
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        }) else {
            return Ok(None);
        };
        let offset_arg = match libc::off_t::try_from(offset) {
            Ok(o) => o,
            Err(_) => {
                release(slot);
                return Ok(None);
            }
        };
        // SAFETY: a fresh private read-only mapping at a kernel-chosen address: it aliases no
        // Rust object. MAP_POPULATE faults the pages in here rather than in the parser.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                offset_arg,
            )
        };
        if address == libc::MAP_FAILED {
            let error = io::Error::last_os_error();
            release(slot);
            return Err(error);
        }
        let Some(base) = NonNull::new(address.cast::<u8>()) else {
            release(slot);
            return Ok(None);
        };
        if let Some(s) = SLOTS.get(slot) {
            s.fault.store(0, Ordering::Relaxed);
            s.end.store(base.as_ptr() as usize + len, Ordering::Relaxed);
            s.start.store(base.as_ptr() as usize, Ordering::Release);
        }
        Ok(Some(Window {
            base,
            len,
            slot,
            offset,
        }))
    }

    /// The mapped bytes. After a fault ([`Window::fault`]) the pages past the file's new end
    /// read as zeros.
    #[allow(unsafe_code)]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `base` points to `len` readable bytes mapped by `map` and unmapped only when
        // `self` is dropped, which the borrow prevents. A page past the file's end is replaced
        // by zeros by the SIGBUS handler instead of faulting the process.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.len) }
    }

    /// File offset of the window's first byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// File offset of the first access that found the file shorter than the window (the file
    /// shrank while mapped), if one did.
    #[inline]
    pub fn fault(&self) -> Option<u64> {
        let address = SLOTS.get(self.slot)?.fault.load(Ordering::Acquire);
        (address != 0)
            .then(|| self.offset + address.saturating_sub(self.base.as_ptr() as usize) as u64)
    }
}

impl Drop for Window {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        if let Some(s) = SLOTS.get(self.slot) {
            // Out of the table before the range is unmapped (and possibly reused).
            s.start.store(0, Ordering::Release);
            s.end.store(0, Ordering::Release);
        }
        // SAFETY: `base`/`len` are exactly the mapping made in `map`; no borrow of its bytes
        // can outlive `self`.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
        release(self.slot);
    }
}

/// `len` rounded up to whole pages (at least one): window lengths keep the next window's
/// offset page-aligned.
pub fn whole_pages(len: usize) -> usize {
    let page = page_size();
    len.max(1).div_ceil(page).saturating_mul(page)
}

#[allow(unsafe_code)]
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096)
}

fn release(slot: usize) {
    if let Some(s) = SLOTS.get(slot) {
        s.taken.store(false, Ordering::Release);
    }
}

/// Installs the SIGBUS handler (once per process), keeping the previous disposition.
#[allow(unsafe_code)]
fn install() -> io::Result<Installed> {
    let page = page_size();
    // SAFETY: zeroed sigaction structures are valid (no handler, empty mask); the new one
    // names a handler that only uses async-signal-safe calls and atomics.
    unsafe {
        let mut previous: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
            return Err(io::Error::last_os_error());
        }
        // The previous disposition must be readable by the handler before it can run.
        PREVIOUS.store(
            Box::into_raw(Box::new(previous)) as usize,
            Ordering::Release,
        );
        let mut action: libc::sigaction = std::mem::zeroed();
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            on_sigbus;
        action.sa_sigaction = handler as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        PAGE.store(page, Ordering::Release);
        Ok(Installed { page })
    }
}

/// The previous disposition (a leaked `Box<libc::sigaction>`), for the handler: a plain
/// atomic, as the handler must not wait on `INSTALLED` being initialised.
static PREVIOUS: AtomicUsize = AtomicUsize::new(0);
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// The SIGBUS handler: a fault inside a live window is a file that shrank (see the module
/// documentation); anything else goes to the previous disposition.
#[allow(unsafe_code)]
extern "C" fn on_sigbus(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let address = if info.is_null() {
        0
    } else {
        // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
        unsafe { (*info).si_addr() as usize }
    };
    let page = PAGE.load(Ordering::Acquire);
    if address != 0 {
        for s in &SLOTS {
            let start = s.start.load(Ordering::Acquire);
            if start != 0 && start <= address && address < s.end.load(Ordering::Acquire) {
                let at = address & !(page - 1);
                // SAFETY: replaces one page of our own read-only window (which no Rust object
                // other than the window's byte slices aliases) with zeros; mmap is
                // async-signal-safe.
                let zeros = unsafe {
                    libc::mmap(
                        at as *mut libc::c_void,
                        page,
                        libc::PROT_READ,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                        -1,
                        0,
                    )
                };
                if zeros != libc::MAP_FAILED {
                    let _ =
                        s.fault
                            .compare_exchange(0, address, Ordering::AcqRel, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
    // Not ours: what would have happened without this handler.
    let previous = PREVIOUS.load(Ordering::Acquire) as *const libc::sigaction;
    // SAFETY: PREVIOUS is a leaked, never freed sigaction written before this handler was
    // installed; calling the previous handler with the arguments we received is what the
    // kernel would have done.
    unsafe {
        if let Some(previous) = previous.as_ref() {
            let handler = previous.sa_sigaction;
            if handler != libc::SIG_DFL && handler != libc::SIG_IGN {
                if previous.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        std::mem::transmute(handler);
                    f(signal, info, context);
                } else {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
                    f(signal);
                }
                return;
            }
        }
        // Default action: restore it and return; the access faults again and ends the process.
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_window_reads_the_file_and_a_shrink_reads_zeros_and_is_noted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let page = 4096usize;
        let data: Vec<u8> = (0..4 * page).map(|i| (i % 251) as u8 + 1).collect();
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&data))
            .expect("write");
        let file = File::open(&path).expect("open");
        let window = Window::map(&file, 0, data.len())
            .expect("map")
            .expect("a free slot");
        assert_eq!(window.bytes(), &data[..]);
        assert_eq!(window.fault(), None);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(page as u64 + 10))
            .expect("truncate");
        // The first page is still the file's; past the cut, zeros instead of SIGBUS.
        let bytes = window.bytes();
        assert_eq!(bytes[..page], data[..page]);
        assert_eq!(std::hint::black_box(bytes[3 * page + 5]), 0);
        assert_eq!(window.fault(), Some(3 * page as u64 + 5));
        // A window at an unaligned offset is refused (the caller reads instead).
        assert!(Window::map(&file, 10, 100).expect("map").is_none());
    }
}
