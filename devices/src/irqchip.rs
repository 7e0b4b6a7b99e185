//! The seam between a board's interrupt controllers and the CPUs that take
//! their interrupts under TCG.
//!
//! A board wires device lines to its controller models (8259 PIC, I/O APIC and
//! local APICs on `pc`; the GIC on `virt`) and hands the accelerator one
//! [`InterruptController`]. A TCG front end asks it, between translation blocks,
//! whether its CPU has an interrupt to take and acknowledges it there; a
//! controller that makes an interrupt pending kicks that CPU
//! ([`crate::VcpuKick`]). Under KVM the kernel's own controllers take the
//! board's lines instead, and this interface is not used.

use std::cell::Cell;

use crate::arm_timer::TimerReg;

/// A CPU-local register that the board's interrupt hardware owns rather than
/// the CPU model (the Arm generic timer's system registers), reached with
/// [`InterruptController::cpu_register_read`] and
/// [`InterruptController::cpu_register_write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CpuRegister {
    ArmTimer(TimerReg),
}

/// A request to start or restart a CPU, delivered by the controller or the
/// firmware interface that owns CPU power.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    /// x86 INIT: reset to the wait-for-SIPI state.
    Init,
    /// x86 start-up IPI: begin in real mode at `vector << 12`.
    Sipi(u8),
    /// Power on at `entry` with `context` in the first argument register
    /// (PSCI `CPU_ON`).
    PowerOn { entry: u64, context: u64 },
}

/// A board's interrupt controllers, as the CPUs see them.
pub trait InterruptController: Send + Sync {
    /// Whether CPU `cpu` has a maskable interrupt waiting (x86 INTR, Arm IRQ).
    fn interrupt_pending(&self, cpu: u32) -> bool;

    /// The x86 interrupt-acknowledge cycle: the vector of the interrupt CPU
    /// `cpu` takes now, which becomes in service. `None` if nothing is
    /// pending any more. Controllers whose CPUs acknowledge through registers
    /// (the GIC) return `None`.
    fn acknowledge(&self, cpu: u32) -> Option<u8>;

    /// Whether CPU `cpu` has a non-maskable interrupt waiting; taken once.
    fn take_nmi(&self, cpu: u32) -> bool {
        let _ = cpu;
        false
    }

    /// Whether something that wakes even a CPU with interrupts masked (an
    /// NMI, a start-up request) waits for CPU `cpu`, without taking it.
    fn wake_pending(&self, cpu: u32) -> bool {
        let _ = cpu;
        false
    }

    /// A start-up request for CPU `cpu`, taken once.
    fn take_startup(&self, cpu: u32) -> Option<Startup> {
        let _ = cpu;
        None
    }

    /// CPU `cpu` reads `reg`; `None` if the board has no such register (the
    /// front end then treats it as it would an unimplemented register).
    fn cpu_register_read(&self, cpu: u32, reg: CpuRegister) -> Option<u64> {
        let _ = (cpu, reg);
        None
    }

    /// CPU `cpu` writes `reg`; whether the board has it.
    fn cpu_register_write(&self, cpu: u32, reg: CpuRegister, value: u64) -> bool {
        let _ = (cpu, reg, value);
        false
    }
}

/// A board without interrupt controllers.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoInterruptController;

impl InterruptController for NoInterruptController {
    fn interrupt_pending(&self, _cpu: u32) -> bool {
        false
    }

    fn acknowledge(&self, _cpu: u32) -> Option<u8> {
        None
    }
}

thread_local! {
    static CURRENT_VCPU: Cell<u32> = const { Cell::new(0) };
}

/// Records which vCPU the calling thread runs. Per-CPU devices at one address
/// (the x86 local APIC page) read it back with [`current_vcpu`] to tell
/// whose registers a bus access means, as a real CPU's own APIC would answer.
pub fn set_current_vcpu(index: u32) {
    CURRENT_VCPU.with(|cell| cell.set(index));
}

/// The vCPU the calling thread runs (0 on threads that run none).
pub fn current_vcpu() -> u32 {
    CURRENT_VCPU.with(|cell| cell.get())
}
