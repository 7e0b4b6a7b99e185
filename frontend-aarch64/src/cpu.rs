//! [`A64Cpu`]: the [`GuestCpu`] the exec loop drives for AArch64 guests.

use accel_tcg::guest::{CodeReader, FetchFault, GuestCpu, GuestEvent, Platform};
use accel_tcg::ir::Block;
use accel_tcg::softmmu::{Access, CpuState, MemFault};
use devices::Startup;
use machine::{CpuState as MachineCpuState, VcpuExit};

use crate::exceptions::{ExceptionKind, ec, syndrome};
use crate::mmu::{self, A64Walker};
use crate::state::{A64State, MMU_EL0, MMU_EL1, pstate};
use crate::translate::{self, status, tbflags};

/// An AArch64 vCPU for the translator.
pub struct A64Cpu {
    /// The state translated code runs against.
    pub state: Box<A64State>,
    /// Stopped in `wfi` until an interrupt arrives.
    pub halted: bool,
    /// Powered off (a secondary CPU before PSCI CPU_ON).
    pub off: bool,
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
            off: false,
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

    fn irq_enabled(&self) -> bool {
        self.state.daif & pstate::I == 0
    }

    /// Applies a PSCI CPU_ON request, if one is waiting. Returns whether
    /// the CPU now runs.
    fn take_startup(&mut self, platform: &Platform<'_>) -> bool {
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
        let stuck = self.off || (self.halted && !self.irq_enabled());
        if !stuck {
            platform.lifecycle.set_parked(platform.cpu, false);
            return GuestEvent::Wait;
        }
        let all_parked = platform.lifecycle.set_parked(platform.cpu, true);
        if all_parked && (0..platform.cpus).all(|cpu| !platform.interrupts.wake_pending(cpu)) {
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
                self.state.pc = next;
                if imm == 0
                    && let Some(ev) = crate::psci::call(&mut self.state, platform)
                {
                    return ev;
                }
                if imm != 0 {
                    self.take_exception(ExceptionKind::Sync, syndrome(ec::HVC, imm), None);
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
            status::ERET => self.exception_return(),
            status::PC_ALIGN => {
                self.state.pc = pc;
                self.take_exception(ExceptionKind::Sync, syndrome(ec::PC_ALIGN, 0), Some(pc));
            }
            status::NEXT => self.state.pc = next,
            status::FP_TRAP => {
                self.state.pc = pc;
                // ISS: CV = 1, COND = 0b1110 for a trap from AArch64.
                self.take_exception(
                    ExceptionKind::Sync,
                    syndrome(ec::FP_ACCESS, 0x1e0_0000),
                    None,
                );
            }
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
        // CPACR_EL1.FPEN: 0b11 enables EL0 and EL1, 0b01 EL1 only.
        let fpen = (s.cpacr_el1 >> 20) & 3;
        let enabled = fpen == 3 || (fpen == 1 && s.el != 0);
        if !enabled {
            f |= tbflags::FP_TRAP;
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
        // WFI wakes on a pending interrupt even while it is masked.
        let runs = self.take_startup(platform)
            || (!self.off
                && (!self.halted
                    || platform.interrupts.wake_pending(platform.cpu)
                    || platform.interrupts.interrupt_pending(platform.cpu)));
        if runs {
            self.halted = false;
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
