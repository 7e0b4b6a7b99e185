//! [`A64Cpu`]: the [`GuestCpu`] the exec loop drives for AArch64 guests.

use std::sync::atomic::Ordering;

use accel_tcg::guest::{CodeReader, FetchFault, GuestCpu, GuestEvent, Platform};
use accel_tcg::ir::Block;
use accel_tcg::softmmu::{Access, CpuState, MemFault};
use devices::Startup;
use machine::{CpuState as MachineCpuState, VcpuExit};

use crate::exceptions::{ExceptionKind, ISS_CV_AL, ec, syndrome};
use crate::mmu::{self, A64Walker};
use crate::state::{A64State, MMU_EL0, MMU_EL1, pstate};
use crate::translate::{self, status, tbflags};

/// SCTLR_EL1.A: alignment checking.
const SCTLR_A: u64 = 1 << 1;
/// SCTLR_EL1.SA: SP alignment checking at EL1.
const SCTLR_SA: u64 = 1 << 3;
/// SCTLR_EL1.SA0: SP alignment checking at EL0.
const SCTLR_SA0: u64 = 1 << 4;

/// An AArch64 vCPU for the translator.
pub struct A64Cpu {
    /// The state translated code runs against.
    pub state: Box<A64State>,
    /// Stopped in `wfi` (or `wfe`) until an interrupt arrives.
    pub halted: bool,
    /// Stopped in `wfe`: an event (SEV) also ends the wait.
    pub waiting_for_event: bool,
    /// Powered off (a secondary CPU before PSCI CPU_ON, or after CPU_OFF).
    pub off: bool,
    /// PSTATE.IL: set by an illegal exception return (Arm ARM D1.11.5).
    pub il: bool,
    /// CSSELR_EL1.
    pub csselr: u64,
    /// The broadcast TLBI count this CPU's TLB has caught up with.
    tlbi_seen: u64,
}

impl Default for A64Cpu {
    fn default() -> Self {
        A64Cpu::new()
    }
}

impl A64Cpu {
    /// A vCPU in its reset state (EL1h, masked; set an entry state first).
    pub fn new() -> A64Cpu {
        A64Cpu {
            state: Box::new(A64State::new()),
            halted: false,
            waiting_for_event: false,
            off: false,
            il: false,
            csselr: 0,
            tlbi_seen: crate::system::TLBI_BROADCASTS.load(Ordering::SeqCst),
        }
    }

    /// Makes this CPU number `index` of the machine (MPIDR Aff0), ticking
    /// with `clock`.
    pub fn attach(&mut self, index: u32, clock: std::sync::Arc<devices::Clock>) {
        self.state.cpu_index = u64::from(index);
        self.state.clock = Some(clock);
    }

    /// Makes this CPU a secondary one that starts powered off.
    pub fn power_off(&mut self) {
        self.off = true;
        self.halted = false;
    }

    /// Powers the CPU on at `entry` in EL1h with every exception masked and
    /// x0 = `context` (PSCI CPU_ON).
    pub fn power_on(&mut self, entry: u64, context: u64) {
        let s = &mut *self.state;
        s.set_pstate(machine::arch::AARCH64_PSTATE_EL1H_MASKED);
        s.x[0] = context;
        s.pc = entry;
        s.sctlr_el1 = A64State::new().sctlr_el1;
        s.header().tlb.flush();
        self.off = false;
        self.halted = false;
    }

    /// Guest disassembly for `--trace in_asm`.
    pub fn disassemble(&self, pc: u64, bytes: &[u8]) -> Vec<String> {
        crate::disasm::disassemble(pc, bytes)
    }

    /// Flushes the TLB if another vCPU broadcast a TLBI since the last look.
    fn catch_up_tlbi(&mut self) {
        let now = crate::system::TLBI_BROADCASTS.load(Ordering::SeqCst);
        if now != self.tlbi_seen {
            self.tlbi_seen = now;
            self.state.header().tlb.flush();
        }
    }

    fn irq_enabled(&self) -> bool {
        self.state.daif & pstate::I == 0
    }

    /// Applies a PSCI CPU_ON request, if one is waiting. Returns whether
    /// the CPU now runs.
    fn take_startup(&mut self, platform: &Platform<'_>) -> bool {
        if self.off
            && let Some((entry, context)) = platform.lifecycle.take_cpu_on(platform.cpu)
        {
            self.power_on(entry, context);
            self.il = false;
            return true;
        }
        match platform.interrupts.take_startup(platform.cpu) {
            Some(Startup::PowerOn { entry, context }) if self.off => {
                self.power_on(entry, context);
                true
            }
            Some(other) => {
                log::debug!(
                    "aarch64 cpu {}: start-up request {other:?} ignored",
                    platform.cpu
                );
                false
            }
            None => false,
        }
    }

    /// Waits; parked if only another CPU could end the wait. When every CPU
    /// is parked and nothing is on its way, the run ends as halted.
    fn park_if_stuck(&mut self, platform: &Platform<'_>) -> GuestEvent {
        // Only a powered-off CPU is parked: a CPU in WFI, even with every
        // interrupt masked, wakes when its timer (or any interrupt) fires
        // (WFI wakes on a pending interrupt whatever PSTATE.I says).
        let stuck = self.off;
        if !stuck {
            platform.lifecycle.set_parked(platform.cpu, false);
            return GuestEvent::Wait;
        }
        let all_parked = platform.lifecycle.set_parked(platform.cpu, true);
        let starting = |cpu| {
            matches!(
                platform.lifecycle.cpu_power(cpu),
                Some(devices::CpuPower::OnPending { .. })
            )
        };
        if all_parked
            && (0..platform.cpus)
                .all(|cpu| !platform.interrupts.wake_pending(cpu) && !starting(cpu))
        {
            return GuestEvent::Exit(VcpuExit::Halted { pc: self.state.pc });
        }
        GuestEvent::Wait
    }

    fn exception_status(&mut self, code: u64, pc: u64, platform: &Platform<'_>) -> GuestEvent {
        let next = pc.wrapping_add(4);
        let imm = status::imm16(code);
        match status::kind(code) {
            status::UNDEF => self.undefined(pc),
            status::SVC => {
                self.state.pc = next;
                self.take_exception(ExceptionKind::Sync, syndrome(ec::SVC, imm), None);
            }
            status::HVC => {
                // PSCI through hvc #0 is served as EL2 firmware would; with
                // no EL2 modelled any other HVC is UNDEFINED.
                if imm != 0 {
                    self.undefined(pc);
                    return GuestEvent::Continue;
                }
                self.state.pc = next;
                if let Some(ev) = crate::psci::call(self, platform) {
                    return ev;
                }
            }
            status::SMC => {
                // No EL3: SMC is UNDEFINED (HCR_EL2.TSC cannot trap it).
                self.undefined(pc);
            }
            status::BRK => {
                self.state.pc = pc;
                self.take_exception(ExceptionKind::Sync, syndrome(ec::BRK, imm), None);
            }
            status::ERET => {
                self.exception_return();
                // An exception return sets the event register (Arm ARM
                // D1.16.1), so a WFE after it does not sleep on a wake-up
                // the handler already consumed.
                platform.lifecycle.set_event(platform.cpu);
            }
            status::PC_ALIGN => {
                self.state.pc = pc;
                self.take_exception(ExceptionKind::Sync, syndrome(ec::PC_ALIGN, 0), Some(pc));
            }
            status::SP_ALIGN => {
                self.state.pc = pc;
                self.take_exception(ExceptionKind::Sync, syndrome(ec::SP_ALIGN, 0), None);
            }
            status::FP_TRAP => {
                self.state.pc = pc;
                self.take_exception(
                    ExceptionKind::Sync,
                    syndrome(ec::FP_ACCESS, ISS_CV_AL),
                    None,
                );
            }
            status::ILLEGAL => {
                self.state.pc = pc;
                self.take_exception(ExceptionKind::Sync, syndrome(ec::ILLEGAL_STATE, 0), None);
            }
            status::NEXT => self.state.pc = next,
            status::SYSTEM => {
                return crate::system::execute(self, status::word(code), pc, platform);
            }
            other => {
                log::debug!("aarch64: unknown status kind {other}");
                self.undefined(pc);
            }
        }
        GuestEvent::Continue
    }
}

impl GuestCpu for A64Cpu {
    type State = A64State;
    type Walker = A64Walker;

    fn disassemble(&self, pc: u64, _flags: u64, bytes: &[u8]) -> Vec<String> {
        A64Cpu::disassemble(self, pc, bytes)
    }

    fn state(&mut self) -> &mut A64State {
        &mut self.state
    }

    fn pc(&self) -> u64 {
        self.state.pc
    }

    fn set_pc(&mut self, pc: u64) {
        self.state.pc = pc;
    }

    fn tb_flags(&self) -> u64 {
        let s = &*self.state;
        let mut f = 0;
        if s.el != 0 {
            f |= tbflags::EL1;
        }
        if s.spsel != 0 {
            f |= tbflags::SPSEL;
        }
        if s.sctlr_el1 & (mmu::SCTLR_M | SCTLR_A) != mmu::SCTLR_M {
            f |= tbflags::ALIGN;
        }
        let sa = if s.el == 0 { SCTLR_SA0 } else { SCTLR_SA };
        if s.sctlr_el1 & sa != 0 {
            f |= tbflags::SP_CHECK;
        }
        // CPACR_EL1.FPEN: 0b01 traps EL0 only, 0b11 nothing, else both.
        let fpen = (s.cpacr_el1 >> 20) & 3;
        if fpen == 0 || fpen == 2 || (fpen == 1 && s.el == 0) {
            f |= tbflags::FP_TRAP;
        }
        if self.il {
            f |= tbflags::IL;
        }
        if s.el == 0 && s.sctlr_el1 & crate::sysregs::SCTLR_DZE == 0 {
            f |= tbflags::ZVA_TRAP;
        }
        f
    }

    fn fetch_mmu_idx(&self) -> usize {
        usize::from(if self.state.el == 0 { MMU_EL0 } else { MMU_EL1 })
    }

    fn walker(&self) -> A64Walker {
        let s = &*self.state;
        A64Walker {
            sctlr: s.sctlr_el1,
            tcr: s.tcr_el1,
            ttbr0: s.ttbr0_el1,
            ttbr1: s.ttbr1_el1,
            mair: s.mair_el1,
        }
    }

    fn translate(
        &mut self,
        pc: u64,
        flags: u64,
        code: &mut dyn CodeReader,
        block: &mut Block,
        max_insns: usize,
    ) -> Result<(), FetchFault> {
        translate::translate_block(pc, flags, code, block, max_insns)
    }

    fn handle_status(&mut self, code: u64, pc: u64, platform: &Platform<'_>) -> GuestEvent {
        self.state.pc = pc;
        let was_masked = !self.irq_enabled();
        let ev = self.exception_status(code, pc, platform);
        if ev == GuestEvent::Continue
            && was_masked
            && self.irq_enabled()
            && platform.interrupts.interrupt_pending(platform.cpu)
        {
            // eret or msr daifclr unmasked an interrupt already waiting.
            self.state.header().request_exit();
        }
        ev
    }

    fn memory_fault(
        &mut self,
        pc: u64,
        vaddr: u64,
        access: Access,
        fault: MemFault,
        _platform: &Platform<'_>,
    ) -> GuestEvent {
        self.state.pc = pc;
        let fsc = mmu::fsc_of(fault);
        let lower = self.state.el == 0;
        // ISS of an abort (Arm ARM D13.2.37): the fault status code, WnR
        // for data. ISV stays 0: Armv8.0 gives the instruction syndrome
        // only for aborts on stage 2 translations, reported to EL2.
        let esr = match access {
            Access::Exec => {
                let class = if lower { ec::IABT_LOWER } else { ec::IABT_SAME };
                syndrome(class, fsc)
            }
            Access::Read | Access::Write => {
                let class = if lower { ec::DABT_LOWER } else { ec::DABT_SAME };
                let wnr = if access == Access::Write { 1 << 6 } else { 0 };
                syndrome(class, fsc | wnr)
            }
        };
        self.take_exception(ExceptionKind::Sync, esr, Some(vaddr));
        GuestEvent::Continue
    }

    fn helper_exit(&mut self, code: u32, pc: u64, _platform: &Platform<'_>) -> GuestEvent {
        self.state.header().helper_exit = 0;
        log::debug!("aarch64: helper exit {code} at {pc:#x}");
        self.undefined(pc);
        GuestEvent::Continue
    }

    fn poll_interrupts(&mut self, platform: &Platform<'_>) -> GuestEvent {
        self.catch_up_tlbi();
        if self.take_startup(platform) {
            return GuestEvent::Continue;
        }
        if self.off {
            return GuestEvent::Wait;
        }
        if self.irq_enabled() && platform.interrupts.interrupt_pending(platform.cpu) {
            // The GIC is acknowledged through its registers: only the
            // exception is taken here.
            self.halted = false;
            self.take_exception(ExceptionKind::Irq, 0, None);
            return GuestEvent::Continue;
        }
        if self.halted {
            return GuestEvent::Wait;
        }
        GuestEvent::Continue
    }

    fn has_work(&mut self, platform: &Platform<'_>) -> GuestEvent {
        self.catch_up_tlbi();
        // WFI wakes on a pending interrupt even while it is masked.
        // WFE also wakes on an event (SEV from any CPU).
        let event = self.waiting_for_event && platform.lifecycle.take_event(platform.cpu);
        let runs = self.take_startup(platform)
            || (!self.off
                && (!self.halted
                    || event
                    || platform.interrupts.wake_pending(platform.cpu)
                    || platform.interrupts.interrupt_pending(platform.cpu)));
        if runs {
            self.halted = false;
            self.waiting_for_event = false;
            platform.lifecycle.set_parked(platform.cpu, false);
            return GuestEvent::Continue;
        }
        self.park_if_stuck(platform)
    }

    fn powered_off(&self) -> bool {
        self.off
    }

    fn cpu_state(&self) -> MachineCpuState {
        MachineCpuState::Aarch64(Box::new(self.state.to_machine()))
    }

    fn set_cpu_state(&mut self, state: &MachineCpuState) -> Result<(), machine::AccelError> {
        match state {
            MachineCpuState::Aarch64(s) => {
                self.state.load_machine(s);
                Ok(())
            }
            other => Err(machine::AccelError::WrongArch {
                expected: machine::Arch::Aarch64,
                found: other.arch(),
            }),
        }
    }
}
