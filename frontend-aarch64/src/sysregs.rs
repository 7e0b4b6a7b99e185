//! System registers reached by `mrs`/`msr` (Arm ARM D13 "AArch64 System
//! Register Descriptions"; access rules from each register's pseudocode).
//!
//! A register is named by its encoding `(op0, op1, CRn, CRm, op2)`
//! ([`SysReg`]). Covered: the PSTATE views (NZCV, DAIF, CurrentEL, SPSel),
//! SP_EL0, the EL1 registers a kernel uses (kept in
//! [`crate::state::A64State`]), the thread ID registers, FPCR/FPSR, the ID
//! registers (a Cortex-A57 as QEMU reports it, minus what moat lacks:
//! EL2/EL3, AArch32, crypto, CRC32, PMU; plus LSE atomics, which moat has),
//! the cache ID registers, and the generic timer, which the board owns
//! (`InterruptController::cpu_register_read/write`).
//!
//! Access from EL0 follows the architecture: EL1 registers are UNDEFINED;
//! DAIF (SCTLR_EL1.UMA), CTR_EL0 (UCT) and the timer registers
//! (CNTKCTL_EL1.EL0*EN) trap with EC 0x18 when not enabled; FPCR/FPSR trap
//! with EC 0x07 while CPACR_EL1.FPEN traps. The debug registers (op0 = 2)
//! read as zero and ignore writes at EL1 (a kernel resets breakpoints it
//! finds in ID_AA64DFR0_EL1); unknown encodings are UNDEFINED.

use devices::arm_timer::TimerReg;
use devices::{CpuRegister, InterruptController};

use crate::state::{A64State, pstate};

/// A system register encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SysReg {
    /// op0 (2 or 3 for registers).
    pub op0: u32,
    /// op1.
    pub op1: u32,
    /// CRn.
    pub crn: u32,
    /// CRm.
    pub crm: u32,
    /// op2.
    pub op2: u32,
}

impl SysReg {
    /// The register an `mrs`/`msr`/`sys` word names.
    pub const fn from_word(w: u32) -> SysReg {
        SysReg {
            op0: (w >> 19) & 3,
            op1: (w >> 16) & 7,
            crn: (w >> 12) & 0xf,
            crm: (w >> 8) & 0xf,
            op2: (w >> 5) & 7,
        }
    }

    const fn key(self) -> (u32, u32, u32, u32, u32) {
        (self.op0, self.op1, self.crn, self.crm, self.op2)
    }
}

/// Why an access did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The instruction is UNDEFINED (EC 0x00).
    Undefined,
    /// Trapped to EL1 as an MSR/MRS/system instruction (EC 0x18).
    Trap,
    /// Trapped by CPACR_EL1.FPEN (EC 0x07).
    FpTrap,
}

/// MIDR_EL1: Arm Cortex-A57 r1p0.
pub const MIDR: u64 = 0x411f_d070;
/// CTR_EL0 of the Cortex-A57: 64-byte lines, VIPT instruction cache.
pub const CTR: u64 = 0x8444_c004;
/// CLIDR_EL1 of the Cortex-A57: L1 I+D, unified L2, LoUU 1, LoC 2.
pub const CLIDR: u64 = 0x0a20_0023;
/// DCZID_EL0: DC ZVA zeroes 64 bytes (BS = 4).
pub const DCZID_BS: u64 = 4;
/// ID_AA64ISAR0_EL1: LSE atomics (Atomic = 2), nothing else.
pub const ID_AA64ISAR0: u64 = 2 << 20;
/// ID_AA64PFR0_EL1: EL0 and EL1 in AArch64 only, FP and AdvSIMD
/// implemented (0), no EL2/EL3, no system-register GIC interface.
pub const ID_AA64PFR0: u64 = 0x11;
/// ID_AA64MMFR0_EL1: 44-bit PA (PARange 4), 16-bit ASIDs, 4K and 64K
/// granules (the A57's set; 16K walks work but are not advertised), no
/// mixed endianness.
pub const ID_AA64MMFR0: u64 = 0x24;
/// ID_AA64DFR0_EL1: Armv8 debug (6), 2 breakpoints, 2 watchpoints, no PMU.
pub const ID_AA64DFR0: u64 = 0x0010_1006;

/// SCTLR_EL1.UMA: EL0 may access DAIF.
pub const SCTLR_UMA: u64 = 1 << 9;
/// SCTLR_EL1.UCT: EL0 may read CTR_EL0.
pub const SCTLR_UCT: u64 = 1 << 15;
/// SCTLR_EL1.DZE: EL0 may use DC ZVA.
pub const SCTLR_DZE: u64 = 1 << 14;

/// The registers a system-register access needs beyond the CPU state.
pub struct Ctx<'a> {
    /// The board's interrupt hardware (the generic timer).
    pub irq: &'a dyn InterruptController,
    /// This CPU's index.
    pub cpu: u32,
    /// CSSELR_EL1.
    pub csselr: &'a mut u64,
}

fn timer_reg(r: SysReg) -> Option<TimerReg> {
    Some(match r.key() {
        (3, 3, 14, 0, 0) => TimerReg::Cntfrq,
        (3, 3, 14, 0, 1) => TimerReg::Cntpct,
        (3, 3, 14, 0, 2) => TimerReg::Cntvct,
        (3, 3, 14, 2, 0) => TimerReg::CntpTval,
        (3, 3, 14, 2, 1) => TimerReg::CntpCtl,
        (3, 3, 14, 2, 2) => TimerReg::CntpCval,
        (3, 3, 14, 3, 0) => TimerReg::CntvTval,
        (3, 3, 14, 3, 1) => TimerReg::CntvCtl,
        (3, 3, 14, 3, 2) => TimerReg::CntvCval,
        _ => return None,
    })
}

/// Whether EL0 may access timer register `t` (CNTKCTL_EL1, D13.8.19).
fn timer_el0_ok(t: TimerReg, cntkctl: u64) -> bool {
    let pct = cntkctl & 1 != 0;
    let vct = cntkctl & 2 != 0;
    match t {
        TimerReg::Cntfrq => pct || vct,
        TimerReg::Cntpct => pct,
        TimerReg::Cntvct => vct,
        TimerReg::CntvTval | TimerReg::CntvCtl | TimerReg::CntvCval => cntkctl & (1 << 8) != 0,
        TimerReg::CntpTval | TimerReg::CntpCtl | TimerReg::CntpCval => cntkctl & (1 << 9) != 0,
        TimerReg::Cntkctl => false,
    }
}

fn fp_trapped(s: &A64State, el: u64) -> bool {
    let fpen = (s.cpacr_el1 >> 20) & 3;
    fpen == 0 || fpen == 2 || (fpen == 1 && el == 0)
}

/// CCSIDR_EL1 of the Cortex-A57 for CSSELR_EL1 `sel`.
fn ccsidr(sel: u64) -> u64 {
    match sel & 0xf {
        0 => 0x701f_e00a, // L1 data, 32 KiB
        1 => 0x201f_e012, // L1 instruction, 48 KiB
        2 => 0x707f_e07a, // L2 unified, 2 MiB
        _ => 0,
    }
}

/// Reads register `r` at exception level `el`.
pub fn read(s: &A64State, c: &mut Ctx<'_>, r: SysReg, el: u64) -> Result<u64, Denied> {
    let el1 = |v: u64| {
        if el >= 1 {
            Ok(v)
        } else {
            Err(Denied::Undefined)
        }
    };
    if let Some(t) = timer_reg(r) {
        if el == 0 && !timer_el0_ok(t, s.cntkctl_el1) {
            return Err(Denied::Trap);
        }
        return Ok(c
            .irq
            .cpu_register_read(c.cpu, CpuRegister::ArmTimer(t))
            .unwrap_or(0));
    }
    match r.key() {
        (3, 3, 4, 2, 0) => Ok(s.nzcv()),
        (3, 3, 4, 2, 1) => {
            if el == 0 && s.sctlr_el1 & SCTLR_UMA == 0 {
                return Err(Denied::Trap);
            }
            Ok(s.daif)
        }
        (3, 0, 4, 2, 2) => el1(s.el << 2),
        (3, 0, 4, 2, 0) => el1(s.spsel),
        // SP_EL0 is UNDEFINED while it is the stack pointer in use.
        (3, 0, 4, 1, 0) if s.spsel == 0 => Err(Denied::Undefined),
        (3, 0, 4, 1, 0) => el1(s.banked_sp()[0]),
        (3, 0, 4, 0, 1) => el1(s.elr_el1),
        (3, 0, 4, 0, 0) => el1(s.spsr_el1),
        (3, 0, 5, 2, 0) => el1(s.esr_el1),
        (3, 0, 5, 1, 0..=1) => el1(0), // AFSR0/1_EL1
        (3, 0, 6, 0, 0) => el1(s.far_el1),
        (3, 0, 12, 0, 0) => el1(s.vbar_el1),
        (3, 0, 12, 0, 1) => el1(0), // RVBAR_EL1: reset at 0
        (3, 0, 12, 1, 0) => {
            // ISR_EL1: the IRQ pending bit.
            let i = c.irq.interrupt_pending(c.cpu);
            el1(if i { 1 << 7 } else { 0 })
        }
        (3, 0, 1, 0, 0) => el1(s.sctlr_el1),
        (3, 0, 1, 0, 1) => el1(0), // ACTLR_EL1
        (3, 0, 2, 0, 2) => el1(s.tcr_el1),
        (3, 0, 2, 0, 0) => el1(s.ttbr0_el1),
        (3, 0, 2, 0, 1) => el1(s.ttbr1_el1),
        (3, 0, 10, 2, 0) => el1(s.mair_el1),
        (3, 0, 10, 3, 0) => el1(s.amair_el1),
        (3, 0, 1, 0, 2) => el1(s.cpacr_el1),
        (3, 0, 13, 0, 1) => el1(s.contextidr_el1),
        (3, 0, 7, 4, 0) => el1(s.par_el1),
        (3, 0, 14, 1, 0) => el1(s.cntkctl_el1),
        (3, 0, 13, 0, 4) => el1(s.tpidr_el1),
        (3, 3, 13, 0, 2) => Ok(s.tpidr_el0),
        (3, 3, 13, 0, 3) => Ok(s.tpidrro_el0),
        (3, 3, 4, 4, 0..=1) if fp_trapped(s, el) => Err(Denied::FpTrap),
        (3, 3, 4, 4, 0) => Ok(s.fpcr),
        (3, 3, 4, 4, 1) => Ok(s.fpsr),
        (3, 0, 0, 0, 0) => el1(MIDR),
        // MPIDR_EL1: bit 31 RES1, uniprocessor bit clear, Aff0 = index.
        (3, 0, 0, 0, 5) => el1((1 << 31) | (s.cpu_index & 0xff)),
        (3, 0, 0, 0, 6) => el1(0), // REVIDR_EL1
        (3, 0, 0, 4, 0) => el1(ID_AA64PFR0),
        (3, 0, 0, 5, 0) => el1(ID_AA64DFR0),
        (3, 0, 0, 6, 0) => el1(ID_AA64ISAR0),
        (3, 0, 0, 7, 0) => el1(ID_AA64MMFR0),
        // CCSIDR_EL1, CLIDR_EL1, CSSELR_EL1.
        (3, 1, 0, 0, 0) => el1(ccsidr(*c.csselr)),
        (3, 1, 0, 0, 1) => el1(CLIDR),
        (3, 2, 0, 0, 0) => el1(*c.csselr),
        (3, 3, 0, 0, 1) => {
            if el == 0 && s.sctlr_el1 & SCTLR_UCT == 0 {
                return Err(Denied::Trap);
            }
            Ok(CTR)
        }
        // DCZID_EL0: DZP reads 1 where DC ZVA is not allowed.
        (3, 3, 0, 0, 7) => {
            let dzp = el == 0 && s.sctlr_el1 & SCTLR_DZE == 0;
            Ok(DCZID_BS | if dzp { 1 << 4 } else { 0 })
        }
        // The rest of the ID space (op1 0, CRn 0, CRm 1-7): the AArch32
        // registers (no AArch32 here) and the unallocated ID_AA64*: RAZ.
        (3, 0, 0, 1..=7, _) => el1(0),
        // Debug registers: RAZ at EL1.
        (2, _, _, _, _) => el1(0),
        _ => {
            log::debug!("aarch64: read of unknown system register {r:?}");
            Err(Denied::Undefined)
        }
    }
}

/// Writes register `r` at exception level `el`.
pub fn write(s: &mut A64State, c: &mut Ctx<'_>, r: SysReg, el: u64, v: u64) -> Result<(), Denied> {
    if let Some(t) = timer_reg(r) {
        if matches!(t, TimerReg::Cntpct | TimerReg::Cntvct) {
            return Err(Denied::Undefined);
        }
        if el == 0 && !timer_el0_ok(t, s.cntkctl_el1) {
            return Err(Denied::Trap);
        }
        if t == TimerReg::Cntfrq {
            // Only the highest EL with EL3 present may write it.
            log::debug!("aarch64: write to CNTFRQ_EL0 ignored");
            return Ok(());
        }
        c.irq.cpu_register_write(c.cpu, CpuRegister::ArmTimer(t), v);
        return Ok(());
    }
    match r.key() {
        (3, 3, 4, 2, 0) => s.set_nzcv(v),
        (3, 3, 4, 2, 1) => {
            if el == 0 && s.sctlr_el1 & SCTLR_UMA == 0 {
                return Err(Denied::Trap);
            }
            s.daif = v & pstate::DAIF;
        }
        (3, 3, 13, 0, 2) => s.tpidr_el0 = v,
        (3, 3, 4, 4, 0..=1) if fp_trapped(s, el) => return Err(Denied::FpTrap),
        // FPCR: AHP, DN, FZ, RMode, Stride, Len (no trap enables, no FP16).
        (3, 3, 4, 4, 0) => s.fpcr = v & 0x07f7_0000,
        // FPSR: NZCV, QC, IDC and the five cumulative flags.
        (3, 3, 4, 4, 1) => s.fpsr = v & 0xf800_009f,
        _ if el == 0 => return Err(Denied::Undefined),
        (3, 0, 4, 2, 0) => s.set_el_sp(s.el, v & 1),
        (3, 0, 4, 1, 0) => {
            if s.spsel == 0 {
                return Err(Denied::Undefined);
            }
            s.sp_el[0] = v;
        }
        (3, 0, 4, 0, 1) => s.elr_el1 = v,
        (3, 0, 4, 0, 0) => s.spsr_el1 = v,
        (3, 0, 5, 2, 0) => s.esr_el1 = v,
        (3, 0, 5, 1, 0..=1) | (3, 0, 1, 0, 1) => {}
        (3, 0, 6, 0, 0) => s.far_el1 = v,
        (3, 0, 12, 0, 0) => s.vbar_el1 = v & !0x7ff,
        (3, 0, 1, 0, 0) => s.sctlr_el1 = v,
        (3, 0, 2, 0, 2) => s.tcr_el1 = v,
        (3, 0, 2, 0, 0) => s.ttbr0_el1 = v,
        (3, 0, 2, 0, 1) => s.ttbr1_el1 = v,
        (3, 0, 10, 2, 0) => s.mair_el1 = v,
        (3, 0, 10, 3, 0) => s.amair_el1 = v,
        // CPACR_EL1: only FPEN (bits 21:20) is writable here.
        (3, 0, 1, 0, 2) => s.cpacr_el1 = v & (3 << 20),
        (3, 0, 13, 0, 1) => s.contextidr_el1 = v & 0xffff_ffff,
        (3, 0, 7, 4, 0) => s.par_el1 = v,
        (3, 0, 14, 1, 0) => {
            s.cntkctl_el1 = v & 0x2_03ff;
            c.irq
                .cpu_register_write(c.cpu, CpuRegister::ArmTimer(TimerReg::Cntkctl), v);
        }
        (3, 0, 13, 0, 4) => s.tpidr_el1 = v,
        (3, 3, 13, 0, 3) => s.tpidrro_el0 = v,
        (3, 2, 0, 0, 0) => *c.csselr = v & 0xf,
        (2, _, _, _, _) => log::debug!("aarch64: debug register write {r:?} ignored"),
        _ => {
            log::debug!("aarch64: write of unknown system register {r:?}");
            return Err(Denied::Undefined);
        }
    }
    Ok(())
}
