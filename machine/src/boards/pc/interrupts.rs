//! The `pc` board's interrupt wiring.
//!
//! ```text
//!  device lines 0..24 ──► IrqRouter ──► TCG: PcIrqSink ─┬─► 8259 pair (lines 0..15) ─ INTR ─► CPU 0 (LINT0 ExtINT)
//!   (PIT 0, COM1 4)          │                          └─► I/O APIC (pin = line) ─ messages ─► local APICs
//!                            └────────► KVM: KVM_IRQ_LINE (the kernel's PIC + I/O APIC, same routing)
//! ```
//!
//! Lines are routed identity-style to both controllers, as KVM's default
//! routing does, so a guest sees the same machine under either accelerator.
//! The CPUs see the models through [`PcInterrupts`], moat's
//! [`InterruptController`] for TCG: local APIC interrupts first, then the
//! 8259's through LINT0 when the APIC takes ExtINT there (the BSP at reset).

use std::sync::{Arc, Weak};

use devices::lapic::{ApicBus, TimerSource};
use devices::{
    BusDevice, Clock, InterruptController, IrqSink, SharedPic, Startup, Timer, ioapic::IoApic,
};

/// The TCG interrupt controller of a `pc` board.
pub struct PcInterrupts {
    pub pic: SharedPic,
    pub apics: Arc<ApicBus>,
    pub ioapic: Arc<IoApic>,
}

impl PcInterrupts {
    fn extint_pending(&self, cpu: u32) -> bool {
        cpu == 0 && self.apics.lint0_accepts_extint(cpu) && self.pic.interrupt_pending()
    }
}

impl InterruptController for PcInterrupts {
    fn interrupt_pending(&self, cpu: u32) -> bool {
        self.apics.pending_interrupt(cpu) || self.extint_pending(cpu)
    }

    fn acknowledge(&self, cpu: u32) -> Option<u8> {
        if let Some(vector) = self.apics.acknowledge(cpu) {
            return Some(vector);
        }
        if self.extint_pending(cpu) {
            return self.pic.acknowledge();
        }
        None
    }

    fn take_nmi(&self, cpu: u32) -> bool {
        self.apics.take_nmi(cpu)
    }

    fn wake_pending(&self, cpu: u32) -> bool {
        self.apics.wake_pending(cpu)
    }

    fn take_startup(&self, cpu: u32) -> Option<Startup> {
        self.apics.take_startup(cpu)
    }
}

/// Device lines into moat's controller models (TCG).
pub struct PcIrqSink {
    pub pic: SharedPic,
    pub ioapic: Arc<IoApic>,
}

impl IrqSink for PcIrqSink {
    fn set_level(&self, line: u32, high: bool) {
        if line < 16 {
            self.pic.set_level(line, high);
        }
        self.ioapic.set_level(line, high);
    }
}

/// The local APIC page at 0xfee0_0000: each vCPU reaches its own APIC there.
pub struct LocalApicPage(pub Arc<ApicBus>);

impl BusDevice for LocalApicPage {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        self.0.mmio_read(devices::current_vcpu(), offset, data);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        self.0.mmio_write(devices::current_vcpu(), offset, data);
    }
}

/// A local APIC's timer on the VM clock.
pub struct ApicTimer {
    clock: Arc<Clock>,
    timer: Timer,
}

impl ApicTimer {
    /// The timer of CPU `cpu`'s APIC on `bus`.
    pub fn new(clock: &Arc<Clock>, cpu: u32, bus: Weak<ApicBus>) -> ApicTimer {
        let timer = clock.timer(Arc::new(move || {
            if let Some(bus) = bus.upgrade() {
                bus.timer_expired(cpu);
            }
        }));
        ApicTimer {
            clock: clock.clone(),
            timer,
        }
    }
}

impl TimerSource for ApicTimer {
    fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    fn arm(&self, deadline_ns: Option<u64>) {
        match deadline_ns {
            Some(deadline) => self.timer.arm_at(deadline),
            None => self.timer.cancel(),
        }
    }
}
