//! Waking one vCPU from another thread: for an interrupt, a timer, another
//! vCPU's IPI or a lifecycle request.
//!
//! A vCPU can be in one of three places when something wants it, and a kick
//! reaches each of them:
//!
//! - running translated code (TCG): the kick stores 1 to the CPU's exit-request
//!   word, which every translation block checks on entry;
//! - inside `KVM_RUN`: the kick sets the vCPU's `immediate_exit` byte (so a
//!   `KVM_RUN` about to start returns at once) and signals the vCPU thread, so a
//!   running one returns with `EINTR`;
//! - asleep in [`VcpuKick::wait`] (TCG `hlt`/`wfi`, or a powered-off CPU): the
//!   kick wakes the futex it sleeps on.
//!
//! Everything here is atomics and raw system calls, so [`VcpuKick::kick`] is
//! async-signal-safe: the Ctrl-C handler ends the VM through it.

use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

/// How to reach one vCPU.
#[derive(Debug, Default)]
pub struct VcpuKick {
    /// TCG's exit-request word, or null.
    exit_word: AtomicPtr<AtomicU32>,
    /// KVM's `kvm_run.immediate_exit`, or null.
    immediate_exit: AtomicPtr<AtomicU8>,
    /// The thread to signal out of `KVM_RUN` (0: none) and the signal.
    thread: AtomicI32,
    signal: AtomicI32,
    /// The futex a sleeping vCPU waits on: 1 once kicked, until the next wait
    /// consumes it.
    kicked: AtomicU32,
}

impl VcpuKick {
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes the vCPU wherever it is. Async-signal-safe.
    pub fn kick(&self) {
        let word = self.exit_word.load(Ordering::Acquire);
        if !word.is_null() {
            // SAFETY: `set_exit_word`'s caller keeps the word valid while it
            // is registered.
            unsafe { (*word).store(1, Ordering::Release) };
        }
        let immediate = self.immediate_exit.load(Ordering::Acquire);
        if !immediate.is_null() {
            // SAFETY: as above, for `set_immediate_exit`.
            unsafe { (*immediate).store(1, Ordering::Release) };
        }
        self.kicked.store(1, Ordering::Release);
        futex_wake(&self.kicked);
        let thread = self.thread.load(Ordering::Acquire);
        if thread != 0 {
            let signal = self.signal.load(Ordering::Relaxed);
            // SAFETY: tgkill takes integers; a thread that has exited makes it
            // fail with ESRCH, which is harmless.
            unsafe {
                libc::syscall(
                    libc::SYS_tgkill,
                    libc::getpid(),
                    libc::c_long::from(thread),
                    libc::c_long::from(signal),
                )
            };
        }
    }

    /// Sleeps until kicked (a kick since the last wait returns at once) or
    /// until `timeout` passes. Returns whether it was kicked.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        if self.kicked.swap(0, Ordering::AcqRel) == 1 {
            return true;
        }
        futex_wait(&self.kicked, 0, timeout);
        self.kicked.swap(0, Ordering::AcqRel) == 1
    }

    /// Forgets a kick that arrived while the vCPU was not asleep: the caller
    /// is about to look at everything a kick could announce anyway.
    pub fn clear(&self) {
        self.kicked.store(0, Ordering::Release);
    }

    /// Makes every kick store 1 to `word` (null: no word).
    ///
    /// # Safety
    ///
    /// `word` must stay valid until this is called again with another word or
    /// null: kicks may come from any thread, even a signal handler.
    pub unsafe fn set_exit_word(&self, word: *const AtomicU32) {
        self.exit_word.store(word.cast_mut(), Ordering::Release);
    }

    /// Makes every kick store 1 to `byte` (KVM's `immediate_exit`; null: none).
    ///
    /// # Safety
    ///
    /// As for [`VcpuKick::set_exit_word`].
    pub unsafe fn set_immediate_exit(&self, byte: *const AtomicU8) {
        self.immediate_exit
            .store(byte.cast_mut(), Ordering::Release);
    }

    /// Makes every kick send `signal` to thread `tid` (0: no thread).
    pub fn set_thread(&self, tid: i32, signal: i32) {
        self.signal.store(signal, Ordering::Relaxed);
        self.thread.store(tid, Ordering::Release);
    }
}

/// The calling thread's kernel thread id.
pub fn current_tid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let timespec = timeout.map(|timeout| libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    });
    let timespec_ptr = timespec
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: the word is a live AtomicU32 (a 4-byte aligned u32); the
    // timespec, if any, lives until the call returns. Spurious returns
    // (EINTR, EAGAIN) are fine: callers re-check their condition.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            timespec_ptr,
        )
    };
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: waking waiters on a live word; no memory is passed.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_kick_before_the_wait_is_not_lost() {
        let kick = VcpuKick::new();
        kick.kick();
        let start = Instant::now();
        assert!(kick.wait(Some(Duration::from_secs(5))));
        assert!(start.elapsed() < Duration::from_secs(5));
        // Consumed: the next wait times out.
        assert!(!kick.wait(Some(Duration::from_millis(10))));
    }

    #[test]
    fn a_kick_wakes_a_sleeping_thread_and_sets_the_exit_word() {
        let kick = Arc::new(VcpuKick::new());
        let word = Box::new(AtomicU32::new(0));
        // SAFETY: `word` outlives its registration, which ends below.
        unsafe { kick.set_exit_word(&*word) };
        let sleeper = {
            let kick = kick.clone();
            std::thread::spawn(move || kick.wait(Some(Duration::from_secs(10))))
        };
        std::thread::sleep(Duration::from_millis(20));
        kick.kick();
        assert_eq!(sleeper.join().ok(), Some(true));
        assert_eq!(word.load(Ordering::Acquire), 1);
        // SAFETY: unregistering.
        unsafe { kick.set_exit_word(std::ptr::null()) };
    }
}
