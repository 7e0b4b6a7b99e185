//! Requests to end or reset the machine.
//!
//! Devices (debug-exit, the reset controller, PSCI later), the CLI's Ctrl-C
//! handler and the accelerators share one [`VmLifecycle`]. It is only atomics, so
//! a signal handler may use it, and TCG's generated code can poll it cheaply. The
//! first request wins: a guest that writes debug-exit and then resets exits.
//!
//! The lifecycle also holds the machine's vCPU [`VcpuKick`]s, one per vCPU
//! index, made once and kept across resets: every request kicks every vCPU, so
//! one spinning in translated code, blocked in `KVM_RUN` or asleep in `hlt`
//! sees it. Devices and interrupt controllers kick single vCPUs through
//! [`VmLifecycle::vcpu`].

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::kick::VcpuKick;

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

/// The pending lifecycle request of one machine, if any, and its vCPUs' kicks.
#[derive(Debug)]
pub struct VmLifecycle {
    kind: AtomicU32,
    status: AtomicU32,
    vcpus: Vec<Arc<VcpuKick>>,
    /// Per vCPU: stopped in a state only another CPU can end (halted with
    /// interrupts masked, waiting for a start-up IPI, powered off).
    parked: Vec<AtomicBool>,
    /// Per vCPU: its power state as a firmware interface (PSCI) sees it.
    power: Vec<Mutex<CpuPower>>,
    /// Per vCPU: the Arm event register (set by SEV from any CPU, SEVL,
    /// exception returns; consumed by WFE).
    events: Vec<AtomicBool>,
}

/// A vCPU's power state, as PSCI's `AFFINITY_INFO` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuPower {
    Off,
    /// Asked to start (`CPU_ON`) and not yet running.
    OnPending {
        entry: u64,
        context: u64,
    },
    On,
}

/// Why a CPU could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CpuOnError {
    #[error("CPU {0} is already on")]
    AlreadyOn(u32),
    #[error("CPU {0} is already being started")]
    OnPending(u32),
    #[error("the machine has no CPU {0}")]
    NoSuchCpu(u32),
}

impl Default for VmLifecycle {
    fn default() -> Self {
        Self::with_vcpus(1)
    }
}

impl VmLifecycle {
    /// A machine with one vCPU.
    pub fn new() -> Self {
        Self::default()
    }

    /// A machine with `count` vCPUs (at least one).
    pub fn with_vcpus(count: u32) -> Self {
        VmLifecycle {
            kind: AtomicU32::new(NONE),
            status: AtomicU32::new(0),
            vcpus: (0..count.max(1))
                .map(|_| Arc::new(VcpuKick::new()))
                .collect(),
            parked: (0..count.max(1)).map(|_| AtomicBool::new(false)).collect(),
            power: (0..count.max(1))
                .map(|_| Mutex::new(CpuPower::Off))
                .collect(),
            events: (0..count.max(1)).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Sets vCPU `index`'s event register (Arm SEVL, exception return).
    pub fn set_event(&self, index: u32) {
        if let Some(event) = self.events.get(index as usize) {
            event.store(true, Ordering::SeqCst);
        }
    }

    /// Signals an event to every vCPU (Arm SEV) and kicks them, so one
    /// asleep in WFE wakes.
    pub fn send_event(&self) {
        for (index, event) in self.events.iter().enumerate() {
            event.store(true, Ordering::SeqCst);
            self.vcpu(index as u32).kick();
        }
    }

    /// Takes vCPU `index`'s event register: whether it was set (now clear).
    pub fn take_event(&self, index: u32) -> bool {
        self.events
            .get(index as usize)
            .is_some_and(|event| event.swap(false, Ordering::SeqCst))
    }

    fn power_slot(&self, index: u32) -> Option<MutexGuard<'_, CpuPower>> {
        self.power
            .get(index as usize)
            .map(|slot| slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Sets vCPU `index` on or off without a start request: the run loop
    /// does this for every vCPU when a machine starts, a CPU that turns
    /// itself off (PSCI `CPU_OFF`) afterwards.
    pub fn set_power(&self, index: u32, on: bool) {
        if let Some(mut slot) = self.power_slot(index) {
            *slot = if on { CpuPower::On } else { CpuPower::Off };
        }
    }

    /// Asks the off vCPU `index` to start at `entry` with `context` (PSCI
    /// `CPU_ON`), and kicks it.
    pub fn cpu_on(&self, index: u32, entry: u64, context: u64) -> Result<(), CpuOnError> {
        let mut slot = self.power_slot(index).ok_or(CpuOnError::NoSuchCpu(index))?;
        match *slot {
            CpuPower::On => return Err(CpuOnError::AlreadyOn(index)),
            CpuPower::OnPending { .. } => return Err(CpuOnError::OnPending(index)),
            CpuPower::Off => *slot = CpuPower::OnPending { entry, context },
        }
        drop(slot);
        self.vcpu(index).kick();
        Ok(())
    }

    /// The start request for vCPU `index`, taken once: it is on from now.
    pub fn take_cpu_on(&self, index: u32) -> Option<(u64, u64)> {
        let mut slot = self.power_slot(index)?;
        match *slot {
            CpuPower::OnPending { entry, context } => {
                *slot = CpuPower::On;
                Some((entry, context))
            }
            _ => None,
        }
    }

    /// vCPU `index`'s power state (`None`: no such vCPU).
    pub fn cpu_power(&self, index: u32) -> Option<CpuPower> {
        self.power_slot(index).map(|slot| *slot)
    }

    /// Marks vCPU `index` as parked (only another CPU can wake it) or not.
    /// Returns whether every vCPU is parked now.
    pub fn set_parked(&self, index: u32, parked: bool) -> bool {
        if let Some(flag) = self.parked.get(index as usize) {
            flag.store(parked, Ordering::SeqCst);
        }
        self.parked.iter().all(|flag| flag.load(Ordering::SeqCst))
    }

    /// Forgets who was parked: a new machine starts with every vCPU awake.
    pub fn clear_parked(&self) {
        for flag in &self.parked {
            flag.store(false, Ordering::SeqCst);
        }
    }

    /// How many vCPUs the machine has.
    pub fn vcpu_count(&self) -> u32 {
        self.vcpus.len() as u32
    }

    /// The kick of vCPU `index` (vCPU 0's for an index out of range, which a
    /// board never makes).
    pub fn vcpu(&self, index: u32) -> &Arc<VcpuKick> {
        self.vcpus.get(index as usize).unwrap_or(&self.vcpus[0])
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

    fn kick(&self) {
        for vcpu in &self.vcpus {
            vcpu.kick();
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
    fn events_are_set_for_everyone_and_taken_once() {
        let lifecycle = VmLifecycle::with_vcpus(2);
        assert!(!lifecycle.take_event(0));
        lifecycle.set_event(1);
        assert!(!lifecycle.take_event(0));
        assert!(lifecycle.take_event(1));
        assert!(!lifecycle.take_event(1));
        lifecycle.send_event();
        assert!(lifecycle.take_event(0) && lifecycle.take_event(1));
        assert!(!lifecycle.take_event(5));
    }

    #[test]
    fn cpu_on_starts_an_off_cpu_once() {
        let lifecycle = VmLifecycle::with_vcpus(2);
        lifecycle.set_power(0, true);
        assert_eq!(lifecycle.cpu_on(0, 1, 2), Err(CpuOnError::AlreadyOn(0)));
        assert_eq!(lifecycle.cpu_on(2, 1, 2), Err(CpuOnError::NoSuchCpu(2)));
        assert_eq!(lifecycle.cpu_power(1), Some(CpuPower::Off));
        assert_eq!(lifecycle.cpu_on(1, 0x4000_0000, 7), Ok(()));
        assert_eq!(lifecycle.cpu_on(1, 0, 0), Err(CpuOnError::OnPending(1)));
        assert_eq!(lifecycle.take_cpu_on(1), Some((0x4000_0000, 7)));
        assert_eq!(lifecycle.take_cpu_on(1), None);
        assert_eq!(lifecycle.cpu_power(1), Some(CpuPower::On));
        lifecycle.set_power(1, false);
        assert_eq!(lifecycle.cpu_on(1, 8, 9), Ok(()));
    }

    #[test]
    fn requests_kick_every_vcpu() {
        let lifecycle = VmLifecycle::with_vcpus(2);
        let words = [AtomicU32::new(0), AtomicU32::new(0)];
        for (index, word) in words.iter().enumerate() {
            // SAFETY: `words` outlives the registration, which ends below.
            unsafe { lifecycle.vcpu(index as u32).set_exit_word(word) };
        }
        lifecycle.request_shutdown(3);
        for (index, word) in words.iter().enumerate() {
            assert_eq!(word.load(Ordering::Acquire), 1);
            // SAFETY: unregistering.
            unsafe { lifecycle.vcpu(index as u32).set_exit_word(std::ptr::null()) };
        }
    }
}
