//! Requests to end or reset the machine.
//!
//! Devices (debug-exit, the reset controller, PSCI later), the CLI's Ctrl-C
//! handler and the accelerators share one [`VmLifecycle`]. It is only atomics, so
//! a signal handler may use it, and TCG's generated code can poll it cheaply. The
//! first request wins: a guest that writes debug-exit and then resets exits.
//!
//! An accelerator whose vCPU only looks at requests between blocks of guest code
//! (TCG) registers a *kick* word with [`VmLifecycle::set_kick`]; every request
//! also sets it, so a vCPU spinning in chained translated code leaves it.

use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

/// What a device asked of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// End the VM; moat exits with this status.
    Shutdown(i32),
    /// Restart the machine from its boot state.
    Reset,
}

const NONE: u32 = 0;
const SHUTDOWN: u32 = 1;
const RESET: u32 = 2;

/// The pending lifecycle request of one machine, if any.
#[derive(Debug, Default)]
pub struct VmLifecycle {
    kind: AtomicU32,
    status: AtomicU32,
    kick: AtomicPtr<AtomicU32>,
}

impl VmLifecycle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for the VM to end with `status`. Ignored if a request is already
    /// pending.
    pub fn request_shutdown(&self, status: i32) {
        // The status is stored before the kind is published, so a reader that sees
        // SHUTDOWN also sees the status (Release here, Acquire in `pending`).
        if self.kind.load(Ordering::Acquire) == NONE {
            self.status.store(status as u32, Ordering::Relaxed);
            let _ = self
                .kind
                .compare_exchange(NONE, SHUTDOWN, Ordering::AcqRel, Ordering::Acquire);
        }
        self.kick();
    }

    /// Asks for a machine reset. Ignored if a request is already pending.
    pub fn request_reset(&self) {
        let _ = self
            .kind
            .compare_exchange(NONE, RESET, Ordering::AcqRel, Ordering::Acquire);
        self.kick();
    }

    /// Makes every later request also store 1 to `word` (null: no word).
    ///
    /// # Safety
    ///
    /// `word` must stay valid until `set_kick` is called again with another
    /// word or null: requests may come from any thread, even a signal handler.
    pub unsafe fn set_kick(&self, word: *const AtomicU32) {
        self.kick.store(word.cast_mut(), Ordering::Release);
    }

    fn kick(&self) {
        let word = self.kick.load(Ordering::Acquire);
        if !word.is_null() {
            // SAFETY: `set_kick`'s caller keeps the word valid while it is
            // registered.
            unsafe { (*word).store(1, Ordering::Release) };
        }
    }

    /// The pending request, without consuming it.
    pub fn pending(&self) -> Option<LifecycleEvent> {
        match self.kind.load(Ordering::Acquire) {
            SHUTDOWN => Some(LifecycleEvent::Shutdown(
                self.status.load(Ordering::Relaxed) as i32,
            )),
            RESET => Some(LifecycleEvent::Reset),
            _ => None,
        }
    }

    /// Clears a pending request; the board does this when it restarts after a reset.
    pub fn clear(&self) {
        self.kind.store(NONE, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_request_wins_until_cleared() {
        let lifecycle = VmLifecycle::new();
        assert_eq!(lifecycle.pending(), None);
        lifecycle.request_shutdown(33);
        lifecycle.request_reset();
        lifecycle.request_shutdown(5);
        assert_eq!(lifecycle.pending(), Some(LifecycleEvent::Shutdown(33)));
        lifecycle.clear();
        lifecycle.request_reset();
        assert_eq!(lifecycle.pending(), Some(LifecycleEvent::Reset));
    }

    #[test]
    fn requests_kick_the_registered_word() {
        let lifecycle = VmLifecycle::new();
        let word = AtomicU32::new(0);
        // SAFETY: `word` outlives its registration, which ends below.
        unsafe { lifecycle.set_kick(&word) };
        lifecycle.request_shutdown(3);
        assert_eq!(word.load(Ordering::Acquire), 1);
        // SAFETY: unregistering.
        unsafe { lifecycle.set_kick(std::ptr::null()) };
    }
}
