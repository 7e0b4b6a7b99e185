//! The APIC bus: every CPU's local APIC, and the routing of interrupt messages
//! between them (IPIs) and from the I/O APIC.
//!
//! Lock order: each local APIC has its own mutex, and the bus never holds two of
//! them at once nor calls out (wake, EOI listener, timer) while holding one,
//! except [`TimerSource::arm`], whose contract forbids it to wait on a callback.
//! So a wake callback may call back into the bus, and the I/O APIC may deliver
//! from its EOI handling.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::regs::offset;
use super::{
    ApicBaseError, ApicEvent, DeliveryMode, Destination, Ipi, LocalApic, Startup, TimerSource,
};

/// Called with a CPU index when that CPU has something to do (an interrupt, an
/// NMI, INIT or SIPI): the integrator kicks that vCPU out of `hlt` or its
/// translated code.
pub type WakeCpu = Arc<dyn Fn(u32) + Send + Sync>;

/// Called with the vector of each level-triggered interrupt a CPU ends; the
/// integrator forwards it to [`crate::ioapic::IoApic::end_of_interrupt`].
pub type EoiListener = Arc<dyn Fn(u8) + Send + Sync>;

/// Why an APIC bus could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApicBusError {
    #[error("an xAPIC system holds 1 to 255 CPUs, not {0}")]
    CpuCount(u32),
}

/// All the local APICs of a machine.
pub struct ApicBus {
    apics: Vec<Mutex<LocalApic>>,
    wake: WakeCpu,
    eoi_listener: Mutex<Option<EoiListener>>,
}

impl ApicBus {
    /// One APIC per CPU; CPU `i` has APIC ID `i` and CPU 0 is the BSP.
    /// `timer_for(cpu, bus)` builds each APIC's timer source, whose host timer
    /// callback should call `bus.upgrade()` and then [`ApicBus::timer_expired`].
    pub fn new(
        cpus: u32,
        wake: WakeCpu,
        mut timer_for: impl FnMut(u32, Weak<ApicBus>) -> Box<dyn TimerSource>,
    ) -> Result<Arc<ApicBus>, ApicBusError> {
        if cpus == 0 || cpus > 255 {
            return Err(ApicBusError::CpuCount(cpus));
        }
        Ok(Arc::new_cyclic(|bus| ApicBus {
            apics: (0..cpus)
                .map(|cpu| {
                    let timer = timer_for(cpu, bus.clone());
                    Mutex::new(LocalApic::new(cpu as u8, cpu == 0, timer))
                })
                .collect(),
            wake,
            eoi_listener: Mutex::new(None),
        }))
    }

    /// Sets where level-triggered EOIs go (normally the I/O APIC).
    pub fn set_eoi_listener(&self, listener: EoiListener) {
        *relock(&self.eoi_listener) = Some(listener);
    }

    pub fn cpu_count(&self) -> u32 {
        self.apics.len() as u32
    }

    /// Runs `f` on CPU `cpu`'s APIC under its lock; `None` for a CPU that does
    /// not exist. `f` must not call back into the bus.
    pub fn with_apic<R>(&self, cpu: u32, f: impl FnOnce(&mut LocalApic) -> R) -> Option<R> {
        let apic = self.apics.get(cpu as usize)?;
        Some(f(&mut relock(apic)))
    }

    /// A read of the APIC page by CPU `cpu`, which sees its own APIC there.
    pub fn mmio_read(&self, cpu: u32, offset: u64, data: &mut [u8]) {
        if self
            .with_apic(cpu, |apic| apic.read(offset, data))
            .is_none()
        {
            data.fill(0);
        }
    }

    /// A write to the APIC page by CPU `cpu`. IPIs it sends and level EOIs are
    /// handled after the APIC's lock is released.
    pub fn mmio_write(&self, cpu: u32, offset: u64, data: &[u8]) {
        // An EOI, a lower TPR or a software enable may unblock an interrupt: the
        // writing CPU must look again before it goes on.
        let may_unblock = matches!(offset, offset::TPR | offset::EOI | offset::SVR);
        let Some((event, pending)) = self.with_apic(cpu, |apic| {
            let event = apic.write(offset, data);
            (event, may_unblock && apic.highest_pending().is_some())
        }) else {
            return;
        };
        match event {
            Some(ApicEvent::Ipi(ipi)) => self.deliver(cpu, ipi),
            Some(ApicEvent::LevelEoi(vector)) => {
                let listener = relock(&self.eoi_listener).clone();
                if let Some(listener) = listener {
                    listener(vector);
                }
            }
            None => {}
        }
        if pending {
            (self.wake)(cpu);
        }
    }

    /// Delivers an IPI sent by CPU `from`.
    pub fn deliver(&self, from: u32, ipi: Ipi) {
        self.route(Some(from), ipi);
    }

    /// Delivers a message from the I/O APIC (or an MSI): no sender, so the
    /// self shorthand reaches nobody.
    pub fn deliver_message(&self, ipi: Ipi) {
        self.route(None, ipi);
    }

    fn route(&self, from: Option<u32>, ipi: Ipi) {
        if ipi.is_init_deassert() {
            return;
        }
        let mut targets = self.targets(from, ipi.dest);
        if ipi.mode == DeliveryMode::LowestPriority {
            targets = self.lowest_priority(&targets).into_iter().collect();
        }
        for cpu in targets {
            let delivered = self.with_apic(cpu, |apic| match ipi.mode {
                DeliveryMode::Fixed | DeliveryMode::LowestPriority => {
                    apic.accept_fixed(ipi.vector, ipi.trigger_level);
                    true
                }
                DeliveryMode::Nmi => {
                    apic.receive_nmi();
                    true
                }
                DeliveryMode::Init => {
                    apic.receive_init();
                    true
                }
                DeliveryMode::StartUp => apic.receive_sipi(ipi.vector),
                DeliveryMode::Smi | DeliveryMode::ExtInt => {
                    log::debug!("apic bus: {:?} message to CPU {cpu} dropped", ipi.mode);
                    false
                }
            });
            if delivered == Some(true) {
                (self.wake)(cpu);
            }
        }
    }

    /// The CPUs a destination names.
    fn targets(&self, from: Option<u32>, dest: Destination) -> Vec<u32> {
        let all = 0..self.cpu_count();
        match dest {
            // The APIC ID is the CPU index.
            Destination::Physical(0xff) => all.collect(),
            Destination::Physical(id) => all.filter(|&cpu| cpu == u32::from(id)).collect(),
            Destination::Logical(mask) => all
                .filter(|&cpu| self.with_apic(cpu, |apic| apic.matches_logical(mask)) == Some(true))
                .collect(),
            Destination::SelfOnly => from.into_iter().collect(),
            Destination::AllIncludingSelf => all.collect(),
            Destination::AllExcludingSelf => all.filter(|&cpu| Some(cpu) != from).collect(),
        }
    }

    /// The target with the lowest task priority; the first one on a tie.
    fn lowest_priority(&self, targets: &[u32]) -> Option<u32> {
        targets
            .iter()
            .filter_map(|&cpu| Some((self.with_apic(cpu, |apic| apic.cr8())?, cpu)))
            .min_by_key(|&(priority, _)| priority)
            .map(|(_, cpu)| cpu)
    }

    /// Whether CPU `cpu` has a maskable interrupt to take (if its IF allows).
    pub fn pending_interrupt(&self, cpu: u32) -> bool {
        self.with_apic(cpu, |apic| apic.highest_pending().is_some()) == Some(true)
    }

    /// The CPU's interrupt acknowledge: the vector to deliver, now in service.
    pub fn acknowledge(&self, cpu: u32) -> Option<u8> {
        self.with_apic(cpu, LocalApic::acknowledge).flatten()
    }

    /// See [`LocalApic::wake_pending`].
    pub fn wake_pending(&self, cpu: u32) -> bool {
        self.with_apic(cpu, |apic| apic.wake_pending())
            .unwrap_or(false)
    }

    pub fn take_nmi(&self, cpu: u32) -> bool {
        self.with_apic(cpu, LocalApic::take_nmi) == Some(true)
    }

    pub fn take_startup(&self, cpu: u32) -> Option<Startup> {
        self.with_apic(cpu, LocalApic::take_startup).flatten()
    }

    pub fn is_waiting_for_sipi(&self, cpu: u32) -> bool {
        self.with_apic(cpu, |apic| apic.is_waiting_for_sipi()) == Some(true)
    }

    /// Whether CPU `cpu` takes interrupts from the 8259 PIC now.
    pub fn lint0_accepts_extint(&self, cpu: u32) -> bool {
        self.with_apic(cpu, |apic| apic.lint0_accepts_extint()) == Some(true)
    }

    pub fn base_msr(&self, cpu: u32) -> u64 {
        self.with_apic(cpu, |apic| apic.base_msr()).unwrap_or(0)
    }

    pub fn set_base_msr(&self, cpu: u32, value: u64) -> Result<(), ApicBaseError> {
        self.with_apic(cpu, |apic| apic.set_base_msr(value))
            .unwrap_or(Ok(()))
    }

    pub fn cr8(&self, cpu: u32) -> u8 {
        self.with_apic(cpu, |apic| apic.cr8()).unwrap_or(0)
    }

    pub fn set_cr8(&self, cpu: u32, value: u8) {
        let pending = self.with_apic(cpu, |apic| {
            apic.set_cr8(value);
            apic.highest_pending().is_some()
        });
        if pending == Some(true) {
            (self.wake)(cpu);
        }
    }

    /// CPU `cpu`'s timer deadline passed (called from the timer thread).
    pub fn timer_expired(&self, cpu: u32) {
        if self.with_apic(cpu, LocalApic::timer_expired) == Some(true) {
            (self.wake)(cpu);
        }
    }

    /// Machine reset: every APIC to its power-on state.
    pub fn reset(&self) {
        for apic in &self.apics {
            relock(apic).power_on_reset();
        }
    }
}

/// Locks, recovering from poisoning: a panic elsewhere has been reported and the
/// state is still the best there is.
fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
