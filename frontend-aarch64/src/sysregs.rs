//! System registers reached by `mrs`/`msr`.
//!
//! A register is named by its encoding `(op0, op1, CRn, CRm, op2)`
//! ([`SysReg`]). This first version covers the PSTATE views (NZCV, DAIF,
//! CurrentEL, SPSel), SP_EL0, the EL1 registers kept in
//! [`crate::state::A64State`], the thread ID registers and the ID
//! registers a kernel reads first.
//!
//! **To be completed** (the system helper): the full ID register set,
//! EL0 access checks (SCTLR_EL1.UMA/UCT..., CNTKCTL_EL1), the generic timer
//! (CNTVCT_EL0 from the VM clock, CNTV_CTL/CVAL/TVAL with their interrupt),
//! GIC system registers if a GICv3 comes, and ending the block after writes
//! that change translation (SCTLR, TCR, TTBR*: flush the TLBs).

use crate::state::A64State;

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

/// Why an access failed: the instruction is UNDEFINED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegUndef;

/// MIDR_EL1: an Arm Cortex-A57 r1p0-like ID (implementer 0x41).
pub const MIDR: u64 = 0x411f_d070;

/// Reads register `r` at exception level `el`.
pub fn read(s: &A64State, r: SysReg, el: u64) -> Result<u64, SysRegUndef> {
    let el1 = |v: u64| if el >= 1 { Ok(v) } else { Err(SysRegUndef) };
    match r.key() {
        (3, 3, 4, 2, 0) => Ok(s.nzcv()),
        (3, 3, 4, 2, 1) => Ok(s.daif),
        (3, 0, 4, 2, 2) => el1(s.el << 2),
        (3, 0, 4, 2, 0) => el1(s.spsel),
        (3, 0, 4, 1, 0) => el1(s.banked_sp()[0]),
        (3, 0, 4, 0, 1) => el1(s.elr_el1),
        (3, 0, 4, 0, 0) => el1(s.spsr_el1),
        (3, 0, 5, 2, 0) => el1(s.esr_el1),
        (3, 0, 6, 0, 0) => el1(s.far_el1),
        (3, 0, 12, 0, 0) => el1(s.vbar_el1),
        (3, 0, 1, 0, 0) => el1(s.sctlr_el1),
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
        (3, 3, 4, 4, 0) => Ok(s.fpcr),
        (3, 3, 4, 4, 1) => Ok(s.fpsr),
        (3, 0, 0, 0, 0) => el1(MIDR),
        // MPIDR_EL1: uniprocessor bit clear, Aff0 = the CPU index.
        (3, 0, 0, 0, 5) => el1((1 << 31) | (s.cpu_index & 0xff)),
        // ID_AA64ISAR0_EL1: LSE atomics (Atomic = 2).
        (3, 0, 0, 6, 0) => el1(2 << 20),
        // ID_AA64MMFR0_EL1: 40-bit PA, 4K granule only (TGran16 = 0,
        // TGran64 = 0xf unsupported).
        (3, 0, 0, 7, 0) => el1(2 | (0xf << 24)),
        // ID_AA64PFR0_EL1: EL0 and EL1 AArch64 only, FP and AdvSIMD not
        // implemented (0xf) until the FP helper lands.
        (3, 0, 0, 4, 0) => el1(0x11 | (0xf << 16) | (0xf << 20)),
        // DCZID_EL0: DC ZVA prohibited (DZP) until it is implemented.
        (3, 3, 0, 0, 7) => Ok(0x10),
        // CTR_EL0: 64-byte lines.
        (3, 3, 0, 0, 1) => Ok(0x8444_c004),
        // Other ID space (op0 3, op1 0, CRn 0): RAZ at EL1.
        (3, 0, 0, _, _) => el1(0),
        _ => {
            log::debug!("aarch64: read of unknown system register {r:?}");
            Err(SysRegUndef)
        }
    }
}

/// Writes register `r` at exception level `el`.
pub fn write(s: &mut A64State, r: SysReg, el: u64, v: u64) -> Result<(), SysRegUndef> {
    if el == 0
        && !matches!(
            r.key(),
            (3, 3, 4, 2, 0..=1) | (3, 3, 13, 0, 2) | (3, 3, 4, 4, 0..=1)
        )
    {
        return Err(SysRegUndef);
    }
    match r.key() {
        (3, 3, 4, 2, 0) => s.set_nzcv(v),
        (3, 3, 4, 2, 1) => s.daif = v & crate::state::pstate::DAIF,
        (3, 0, 4, 2, 0) => s.set_el_sp(s.el, v & 1),
        (3, 0, 4, 1, 0) => {
            // SP_EL0 while SP_EL0 is not in use (the architecture makes the
            // access UNDEFINED when SPSel is 0).
            if s.spsel == 0 {
                return Err(SysRegUndef);
            }
            s.sp_el[0] = v;
        }
        (3, 0, 4, 0, 1) => s.elr_el1 = v,
        (3, 0, 4, 0, 0) => s.spsr_el1 = v,
        (3, 0, 5, 2, 0) => s.esr_el1 = v,
        (3, 0, 6, 0, 0) => s.far_el1 = v,
        (3, 0, 12, 0, 0) => s.vbar_el1 = v & !0x7ff,
        (3, 0, 1, 0, 0) => s.sctlr_el1 = v,
        (3, 0, 2, 0, 2) => s.tcr_el1 = v,
        (3, 0, 2, 0, 0) => s.ttbr0_el1 = v,
        (3, 0, 2, 0, 1) => s.ttbr1_el1 = v,
        (3, 0, 10, 2, 0) => s.mair_el1 = v,
        (3, 0, 10, 3, 0) => s.amair_el1 = v,
        (3, 0, 1, 0, 2) => s.cpacr_el1 = v,
        (3, 0, 13, 0, 1) => s.contextidr_el1 = v,
        (3, 0, 7, 4, 0) => s.par_el1 = v,
        (3, 0, 14, 1, 0) => s.cntkctl_el1 = v,
        (3, 0, 13, 0, 4) => s.tpidr_el1 = v,
        (3, 3, 13, 0, 2) => s.tpidr_el0 = v,
        (3, 3, 13, 0, 3) => s.tpidrro_el0 = v,
        // FPCR: AHP, DN, FZ, RMode, Stride, Len (no trap enables, no FP16).
        (3, 3, 4, 4, 0) => s.fpcr = v & 0x07f7_0000,
        // FPSR: NZCV, QC, IDC and the five cumulative flags.
        (3, 3, 4, 4, 1) => s.fpsr = v & 0xf800_009f,
        _ => {
            log::debug!("aarch64: write of unknown system register {r:?} ignored");
        }
    }
    Ok(())
}
