//! The code cache: where generated code lives, W^X.
//!
//! One memfd is mapped twice: a read-write view through which code is
//! written and chained jumps are patched, and a read-execute view from which
//! it runs. No mapping is ever writable and executable at once, and patching
//! needs no `mprotect` (which would also stall other threads running code in
//! the same pages).
//!
//! The buffer is bump-allocated and size-bounded. When it is full the caller
//! flushes it whole ([`CodeBuffer::flush`]) and retranslates; this drops every
//! translated block at once, which is simpler and cheaper than tracking
//! fragmentation, and matches how rarely a sensibly sized cache fills. A
//! prefix reserved at creation (the entry trampoline) survives flushes.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

/// Default size of the code cache.
pub const DEFAULT_CODE_SIZE: usize = 64 << 20;

/// Code cache errors.
#[derive(Debug, thiserror::Error)]
pub enum CodeBufError {
    /// Not enough room left; flush and retranslate.
    #[error("the code cache is full")]
    Full,
    /// Creating or mapping the memfd failed.
    #[error("cannot create the code cache: {0}")]
    Map(#[source] io::Error),
    /// A size of zero or above 2 GiB (generated code uses 32-bit relative
    /// jumps within the cache).
    #[error("code cache size {0} is not in 1..=2 GiB")]
    BadSize(usize),
    /// A write outside the written part of the cache.
    #[error("code cache write at {0:#x} is outside the cache")]
    OutOfRange(usize),
}

/// A W^X code cache backed by one memfd mapped twice.
#[derive(Debug)]
pub struct CodeBuffer {
    _fd: OwnedFd,
    size: usize,
    rw: *mut u8,
    rx: *mut u8,
    used: usize,
    reserved: usize,
    generation: u64,
}

// SAFETY: the raw pointers refer to mappings owned by this value; moving it
// to another thread moves that ownership.
unsafe impl Send for CodeBuffer {}

impl CodeBuffer {
    /// A code cache of `size` bytes (rounded up to the page size).
    pub fn new(size: usize) -> Result<CodeBuffer, CodeBufError> {
        if size == 0 || size > (1 << 31) {
            return Err(CodeBufError::BadSize(size));
        }
        let page = 4096;
        let size = size.div_ceil(page) * page;
        // SAFETY: the name is a valid NUL-terminated string; the call has no
        // other memory effects.
        let fd = unsafe { libc::memfd_create(c"moat-tcg-code".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(CodeBufError::Map(io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: plain syscall on our own descriptor.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) } != 0 {
            return Err(CodeBufError::Map(io::Error::last_os_error()));
        }
        let map = |prot| {
            // SAFETY: a fresh shared mapping of our memfd at an address the
            // kernel chooses; it aliases nothing Rust owns.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    size,
                    prot,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                Err(CodeBufError::Map(io::Error::last_os_error()))
            } else {
                Ok(p as *mut u8)
            }
        };
        let rw = map(libc::PROT_READ | libc::PROT_WRITE)?;
        let rx = match map(libc::PROT_READ | libc::PROT_EXEC) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: `rw` is the mapping made just above, unused.
                unsafe { libc::munmap(rw.cast(), size) };
                return Err(e);
            }
        };
        Ok(CodeBuffer {
            _fd: fd,
            size,
            rw,
            rx,
            used: 0,
            reserved: 0,
            generation: 0,
        })
    }

    /// Total size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes in use (including the reserved prefix).
    pub fn used(&self) -> usize {
        self.used
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.size - self.used
    }

    /// Executable address of the next byte [`CodeBuffer::append`] writes.
    pub fn next_addr(&self) -> usize {
        self.rx as usize + self.used
    }

    /// Executable address of the start of the cache.
    pub fn rx_base(&self) -> usize {
        self.rx as usize
    }

    /// Incremented by every flush: code from an older generation is gone.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether `addr..addr + len` lies in the written part of the cache
    /// (executable view).
    pub fn contains(&self, addr: usize, len: usize) -> bool {
        addr >= self.rx as usize && addr.saturating_add(len) <= self.rx as usize + self.used
    }

    /// Copies `code` to the cache (16-byte aligned) and returns its
    /// executable address. The code must have been assembled for that address
    /// ([`CodeBuffer::next_addr`] before the call, rounded up to 16).
    pub fn append(&mut self, code: &[u8]) -> Result<usize, CodeBufError> {
        let start = self.used.next_multiple_of(16);
        let end = start.checked_add(code.len()).ok_or(CodeBufError::Full)?;
        if end > self.size {
            return Err(CodeBufError::Full);
        }
        // SAFETY: `start..end` is inside the RW mapping of `size` bytes, and
        // nothing runs code there yet (it is past `used`).
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), self.rw.add(start), code.len()) };
        self.used = end;
        Ok(self.rx as usize + start)
    }

    /// Keeps everything written so far across flushes (the trampoline).
    pub fn reserve_written(&mut self) {
        self.reserved = self.used;
    }

    /// Drops all code after the reserved prefix. Every address handed out
    /// since the last flush becomes invalid; callers must drop them (and
    /// their chained jumps) before running code again.
    pub fn flush(&mut self) {
        self.used = self.reserved;
        self.generation += 1;
    }

    /// Atomically replaces the 4 bytes at executable address `addr`, which
    /// must be 4-aligned and inside the written part: the chained-jump patch.
    /// Another thread executing the code sees either the old or the new
    /// jump, never a torn one.
    pub fn patch_u32(&mut self, addr: usize, value: u32) -> Result<(), CodeBufError> {
        if !addr.is_multiple_of(4) || !self.contains(addr, 4) {
            return Err(CodeBufError::OutOfRange(addr));
        }
        let off = addr - self.rx as usize;
        // SAFETY: `off` is 4-aligned and inside the RW mapping (checked above);
        // the mapping is page-aligned, so the pointer is 4-aligned, and the
        // atomic store makes concurrent execution see a whole value.
        let cell = unsafe { &*(self.rw.add(off) as *const AtomicU32) };
        cell.store(value, Ordering::Release);
        Ok(())
    }

    /// Reads back code bytes (tests, disassembly).
    pub fn bytes(&self, addr: usize, len: usize) -> Option<&[u8]> {
        if !self.contains(addr, len) {
            return None;
        }
        // SAFETY: inside the written part of the RW mapping, which lives as
        // long as `self`; writes need `&mut self`.
        Some(unsafe { std::slice::from_raw_parts(self.rw.add(addr - self.rx as usize), len) })
    }
}

impl Drop for CodeBuffer {
    fn drop(&mut self) {
        // SAFETY: both mappings were made in `new` with this size and are not
        // used after this point.
        unsafe {
            libc::munmap(self.rw.cast(), self.size);
            libc::munmap(self.rx.cast(), self.size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every mapping of this process, as (start, end, perms).
    pub(crate) fn maps() -> Vec<(usize, usize, String)> {
        let text = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let range = it.next()?;
                let perms = it.next()?.to_string();
                let (a, b) = range.split_once('-')?;
                Some((
                    usize::from_str_radix(a, 16).ok()?,
                    usize::from_str_radix(b, 16).ok()?,
                    perms,
                ))
            })
            .collect()
    }

    #[test]
    fn views_are_never_writable_and_executable() {
        let mut cb = CodeBuffer::new(1 << 20).expect("code buffer");
        let addr = cb.append(&[0xc3; 64]).expect("append");
        assert!(cb.contains(addr, 64));
        let m = maps();
        assert!(
            m.iter()
                .all(|(_, _, p)| !(p.contains('w') && p.contains('x'))),
            "{m:?}"
        );
        let rx = m
            .iter()
            .find(|(a, b, _)| *a <= cb.rx_base() && cb.rx_base() < *b)
            .expect("rx view mapped");
        assert!(rx.2.starts_with("r-x"), "{rx:?}");
        let rw = m
            .iter()
            .find(|(a, b, _)| *a <= cb.rw as usize && (cb.rw as usize) < *b)
            .expect("rw view mapped");
        assert!(rw.2.starts_with("rw-"), "{rw:?}");
    }

    #[test]
    fn fills_up_and_flushes_keeping_the_reserved_prefix() {
        let mut cb = CodeBuffer::new(4096).expect("code buffer");
        cb.append(&[0x90; 100]).expect("prefix");
        cb.reserve_written();
        let g = cb.generation();
        let mut n = 0;
        while cb.append(&[0xcc; 1000]).is_ok() {
            n += 1;
        }
        assert_eq!(n, 3);
        assert!(matches!(cb.append(&[0xcc; 1000]), Err(CodeBufError::Full)));
        cb.flush();
        assert_eq!(cb.generation(), g + 1);
        assert_eq!(cb.used(), 100);
        assert_eq!(cb.bytes(cb.rx_base(), 1), Some(&[0x90][..]));
        assert!(cb.append(&[0xcc; 1000]).is_ok());
    }

    #[test]
    fn patch_is_seen_through_the_executable_view() {
        let mut cb = CodeBuffer::new(4096).expect("code buffer");
        let addr = cb.append(&[0; 16]).expect("append");
        cb.patch_u32(addr + 4, 0xdead_beef).expect("patch");
        // SAFETY: `addr + 4` is inside the RX view, which is readable.
        let v = unsafe { ((addr + 4) as *const u32).read() };
        assert_eq!(v, 0xdead_beef);
        assert!(cb.patch_u32(addr + 2, 0).is_err());
        assert!(cb.patch_u32(addr + 16, 0).is_err());
        assert!(matches!(CodeBuffer::new(0), Err(CodeBufError::BadSize(0))));
    }
}
