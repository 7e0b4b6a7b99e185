//! Exception entry and return for EL0/EL1 (no EL2/EL3 is modelled).
//!
//! [`A64Cpu::take_exception`] is the Arm ARM's `AArch64.TakeException` for a
//! target of EL1: SPSR_EL1 and ELR_EL1 save PSTATE and the preferred return
//! address, ESR_EL1 (and FAR_EL1 for aborts) describe the cause, PSTATE
//! becomes EL1h with D, A, I and F masked, and the pc the vector at
//! VBAR_EL1 + the offset of (where from, which kind).

use crate::cpu::A64Cpu;
use crate::state::{EXCL_NONE, pstate};

/// What is taken, for the vector offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionKind {
    /// Synchronous (offset 0x000).
    Sync,
    /// IRQ (0x080).
    Irq,
    /// FIQ (0x100).
    Fiq,
    /// SError (0x180).
    SError,
}

/// Exception classes (ESR_ELx.EC).
pub mod ec {
    /// Unknown reason: Undefined Instruction.
    pub const UNKNOWN: u32 = 0x00;
    /// WFI/WFE trapped.
    pub const WFX: u32 = 0x01;
    /// Access to SIMD or floating point trapped (CPACR_EL1.FPEN).
    pub const FP_ACCESS: u32 = 0x07;
    /// Illegal Execution state.
    pub const ILLEGAL_STATE: u32 = 0x0e;
    /// SVC in AArch64.
    pub const SVC: u32 = 0x15;
    /// HVC in AArch64.
    pub const HVC: u32 = 0x16;
    /// SMC in AArch64.
    pub const SMC: u32 = 0x17;
    /// MSR, MRS or system instruction trapped.
    pub const SYS: u32 = 0x18;
    /// Instruction Abort from a lower EL.
    pub const IABT_LOWER: u32 = 0x20;
    /// Instruction Abort from the same EL.
    pub const IABT_SAME: u32 = 0x21;
    /// PC alignment fault.
    pub const PC_ALIGN: u32 = 0x22;
    /// Data Abort from a lower EL.
    pub const DABT_LOWER: u32 = 0x24;
    /// Data Abort from the same EL.
    pub const DABT_SAME: u32 = 0x25;
    /// SP alignment fault.
    pub const SP_ALIGN: u32 = 0x26;
    /// BRK in AArch64.
    pub const BRK: u32 = 0x3c;
}

/// ESR_EL1 for class `ec` with `iss` (32-bit instruction: IL set).
pub const fn syndrome(ec: u32, iss: u32) -> u64 {
    ((ec as u64) << 26) | (1 << 25) | (iss as u64 & 0x1ff_ffff)
}

impl A64Cpu {
    /// Takes an exception to EL1. The preferred return address is the
    /// current `state.pc` (callers set it first: the faulting instruction,
    /// or the next one for SVC/HVC/SMC). `far` is written to FAR_EL1 when
    /// given (aborts, PC alignment).
    pub fn take_exception(&mut self, kind: ExceptionKind, esr: u64, far: Option<u64>) {
        let s = &mut *self.state;
        let base = if s.el == 0 {
            0x400
        } else if s.spsel == 0 {
            0x000
        } else {
            0x200
        };
        let off = match kind {
            ExceptionKind::Sync => 0x000,
            ExceptionKind::Irq => 0x080,
            ExceptionKind::Fiq => 0x100,
            ExceptionKind::SError => 0x180,
        };
        s.spsr_el1 = s.pstate();
        s.elr_el1 = s.pc;
        if kind == ExceptionKind::Sync {
            s.esr_el1 = esr;
        }
        if let Some(far) = far {
            s.far_el1 = far;
        }
        s.set_el_sp(1, 1);
        s.daif = pstate::DAIF;
        s.excl_addr = EXCL_NONE;
        s.pc = (s.vbar_el1 & !0x7ff).wrapping_add(base + off);
    }

    /// Undefined Instruction at `pc`.
    pub fn undefined(&mut self, pc: u64) {
        self.state.pc = pc;
        self.take_exception(ExceptionKind::Sync, syndrome(ec::UNKNOWN, 0), None);
    }

    /// `eret`: PSTATE from SPSR_EL1, pc from ELR_EL1; the exclusive monitor
    /// clears. An SPSR naming EL2/EL3 or AArch32 returns to EL1h (no
    /// illegal-return state is modelled).
    pub fn exception_return(&mut self) {
        let s = &mut *self.state;
        let spsr = s.spsr_el1;
        let elr = s.elr_el1;
        s.set_pstate(spsr);
        s.excl_addr = EXCL_NONE;
        s.pc = elr;
    }
}
