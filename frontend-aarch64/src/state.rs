//! The AArch64 CPU state translated code runs against.
//!
//! [`A64State`] is `#[repr(C)]`, starts with the translator's
//! [`TcgContextHeader`], and holds every field as a `u64` so translated code
//! reads and writes each with one 8-byte `ld_env`/`st_env` at a constant
//! offset (the `*_OFF` constants, checked at compile time).
//!
//! # Stack pointers
//!
//! `x[31]` is the stack pointer *in use* (SP_EL0 or SP_EL1, as PSTATE.EL
//! and PSTATE.SP select), so translated code addresses SP like any other
//! register. `sp_el` holds the banked values; the one in use is stale there
//! until [`A64State::sync_sp`] stores it back. Only Rust code changes the
//! selection (exception entry, `eret`, `msr spsel`), always through
//! [`A64State::set_el_sp`], which swaps.
//!
//! # Condition flags
//!
//! NZCV are four words, as QEMU keeps them, so that a flag-setting
//! instruction is four plain stores of values it already has and a
//! condition is one or two compares:
//!
//! * `nf`: N is bit 63 (a 32-bit result is stored sign-extended);
//! * `zf`: Z is set iff `zf == 0` (the result itself);
//! * `cf`: C is `cf` (0 or 1);
//! * `vf`: V is bit 63 (a 32-bit overflow word is stored sign-extended).
//!
//! The optimizer drops the stores a later flag-setting instruction of the
//! same block overwrites. A lazy form (operation + operands) would save a
//! store or two but costs a helper call at every block that starts with a
//! condition; Arm code sets flags far less often than x86 code, so the
//! plain form wins on simplicity.

use accel_tcg::softmmu::{CpuState, TcgContextHeader};
use machine::Aarch64CpuState;
use std::mem::offset_of;

/// PSTATE bits in SPSR layout.
pub mod pstate {
    /// N
    pub const N: u64 = 1 << 31;
    /// Z
    pub const Z: u64 = 1 << 30;
    /// C
    pub const C: u64 = 1 << 29;
    /// V
    pub const V: u64 = 1 << 28;
    /// D, A, I, F mask bits (9..6).
    pub const DAIF: u64 = 0xf << 6;
    /// I: IRQs masked.
    pub const I: u64 = 1 << 7;
    /// F: FIQs masked.
    pub const F: u64 = 1 << 6;
    /// M[3:0]: EL in bits 3:2, SP selection in bit 0.
    pub const M: u64 = 0xf;
}

/// Soft-MMU index of EL0 accesses (and LDTR/STTR at EL1).
pub const MMU_EL0: u8 = 0;
/// Soft-MMU index of EL1 accesses.
pub const MMU_EL1: u8 = 1;

/// The AArch64 CPU state.
#[repr(C)]
#[derive(Debug)]
pub struct A64State {
    /// The translator's header (must come first).
    pub header: TcgContextHeader,
    /// x0..x30, and in `x[31]` the stack pointer in use.
    pub x: [u64; 32],
    /// Banked stack pointers SP_EL0, SP_EL1 (the one in use is in `x[31]`).
    pub sp_el: [u64; 2],
    /// The pc.
    pub pc: u64,
    /// N flag word (bit 63).
    pub nf: u64,
    /// Z flag word (Z iff zero).
    pub zf: u64,
    /// C flag word (0 or 1).
    pub cf: u64,
    /// V flag word (bit 63).
    pub vf: u64,
    /// PSTATE.EL (0 or 1).
    pub el: u64,
    /// PSTATE.SP (0: SP_EL0, 1: SP_ELx).
    pub spsel: u64,
    /// PSTATE.{D,A,I,F} in SPSR position (bits 9..6).
    pub daif: u64,
    /// v0..v31 (low, high).
    pub v: [[u64; 2]; 32],
    /// FPCR.
    pub fpcr: u64,
    /// FPSR.
    pub fpsr: u64,
    /// ELR_EL1.
    pub elr_el1: u64,
    /// SPSR_EL1.
    pub spsr_el1: u64,
    /// ESR_EL1.
    pub esr_el1: u64,
    /// FAR_EL1.
    pub far_el1: u64,
    /// VBAR_EL1.
    pub vbar_el1: u64,
    /// SCTLR_EL1.
    pub sctlr_el1: u64,
    /// TCR_EL1.
    pub tcr_el1: u64,
    /// TTBR0_EL1.
    pub ttbr0_el1: u64,
    /// TTBR1_EL1.
    pub ttbr1_el1: u64,
    /// MAIR_EL1.
    pub mair_el1: u64,
    /// TPIDR_EL0.
    pub tpidr_el0: u64,
    /// TPIDR_EL1.
    pub tpidr_el1: u64,
    /// TPIDRRO_EL0.
    pub tpidrro_el0: u64,
    /// CPACR_EL1.
    pub cpacr_el1: u64,
    /// CONTEXTIDR_EL1.
    pub contextidr_el1: u64,
    /// PAR_EL1.
    pub par_el1: u64,
    /// AMAIR_EL1.
    pub amair_el1: u64,
    /// CNTKCTL_EL1.
    pub cntkctl_el1: u64,
    /// Exclusive monitor: the address a load-exclusive marked, or
    /// [`EXCL_NONE`] when the monitor is open.
    pub excl_addr: u64,
    /// The value the load-exclusive saw (the first register of a pair).
    pub excl_val: u64,
    /// The second value of a load-exclusive pair.
    pub excl_val2: u64,
    /// Words for instructions finished in Rust.
    pub scratch: [u64; 4],
    /// This CPU's index (MPIDR_EL1.Aff0).
    pub cpu_index: u64,
    /// The VM clock (CNTVCT), once attached.
    pub clock: Option<std::sync::Arc<devices::Clock>>,
}

/// `excl_addr` of an open monitor: no aligned access can start there.
pub const EXCL_NONE: u64 = u64::MAX;

// SAFETY: `A64State` is `#[repr(C)]` with the header first, and every field
// IR addresses after it is a `u64` (or an array of them): any bit pattern
// is valid. The `clock` field at the end is never addressed by IR.
unsafe impl CpuState for A64State {}

macro_rules! offs {
    ($($name:ident = $($field:tt).+;)*) => {
        $(
            #[doc = concat!("Offset of `", stringify!($($field).+), "`.")]
            pub const $name: u32 = offset_of!(A64State, $($field).+) as u32;
        )*
    };
}

offs! {
    X_OFF = x;
    SP_EL_OFF = sp_el;
    PC_OFF = pc;
    NF_OFF = nf;
    ZF_OFF = zf;
    CF_OFF = cf;
    VF_OFF = vf;
    EL_OFF = el;
    SPSEL_OFF = spsel;
    DAIF_OFF = daif;
    V_OFF = v;
    FPCR_OFF = fpcr;
    FPSR_OFF = fpsr;
    EXCL_ADDR_OFF = excl_addr;
    EXCL_VAL_OFF = excl_val;
    EXCL_VAL2_OFF = excl_val2;
    SCRATCH_OFF = scratch;
    CPU_INDEX_OFF = cpu_index;
}

/// Offset of `x[n]` (`n == 31`: the stack pointer in use).
pub const fn x_off(n: usize) -> u32 {
    X_OFF + 8 * n as u32
}

/// Offset of half `half` of `v[n]`.
pub const fn v_off(n: usize, half: usize) -> u32 {
    V_OFF + (16 * n + 8 * half) as u32
}

/// Offset of scratch word `n`.
pub const fn scratch_off(n: usize) -> u32 {
    SCRATCH_OFF + 8 * n as u32
}

const _: () = assert!(X_OFF as usize == accel_tcg::softmmu::HEADER_SIZE);
const _: () = assert!(X_OFF.is_multiple_of(8));
const _: () = assert!(SP_EL_OFF == x_off(31) + 8);
const _: () = assert!(PC_OFF == SP_EL_OFF + 16);
const _: () = assert!(ZF_OFF == NF_OFF + 8 && CF_OFF == NF_OFF + 16 && VF_OFF == NF_OFF + 24);
const _: () = assert!(V_OFF.is_multiple_of(8));
const _: () = assert!(v_off(31, 1) + 8 == FPCR_OFF);
const _: () = assert!(scratch_off(3) < CPU_INDEX_OFF);
const _: () = assert!((CPU_INDEX_OFF as usize) < offset_of!(A64State, clock));

impl Default for A64State {
    fn default() -> Self {
        A64State::new()
    }
}

impl A64State {
    /// The state at reset: EL1h, everything masked, registers zero.
    pub fn new() -> A64State {
        A64State {
            header: TcgContextHeader::new(),
            x: [0; 32],
            sp_el: [0; 2],
            pc: 0,
            nf: 0,
            zf: 1,
            cf: 0,
            vf: 0,
            el: 1,
            spsel: 1,
            daif: pstate::DAIF,
            v: [[0; 2]; 32],
            fpcr: 0,
            fpsr: 0,
            elr_el1: 0,
            spsr_el1: 0,
            esr_el1: 0,
            far_el1: 0,
            vbar_el1: 0,
            // RES1 bits of SCTLR_EL1 (Armv8.0), MMU and caches off.
            sctlr_el1: 0x30d0_0800,
            tcr_el1: 0,
            ttbr0_el1: 0,
            ttbr1_el1: 0,
            mair_el1: 0,
            tpidr_el0: 0,
            tpidr_el1: 0,
            tpidrro_el0: 0,
            cpacr_el1: 0,
            contextidr_el1: 0,
            par_el1: 0,
            amair_el1: 0,
            cntkctl_el1: 0,
            excl_addr: EXCL_NONE,
            excl_val: 0,
            excl_val2: 0,
            scratch: [0; 4],
            cpu_index: 0,
            clock: None,
        }
    }

    /// Which banked stack pointer is in use.
    fn sp_index(&self) -> usize {
        if self.spsel != 0 && self.el != 0 {
            1
        } else {
            0
        }
    }

    /// Stores the stack pointer in use back into its bank.
    pub fn sync_sp(&mut self) {
        let i = self.sp_index();
        self.sp_el[i] = self.x[31];
    }

    /// SP_EL0 and SP_EL1, current.
    pub fn banked_sp(&self) -> [u64; 2] {
        let mut b = self.sp_el;
        b[self.sp_index()] = self.x[31];
        b
    }

    /// Changes PSTATE.EL and PSTATE.SP, switching the stack pointer in use.
    pub fn set_el_sp(&mut self, el: u64, spsel: u64) {
        self.sync_sp();
        self.el = el.min(1);
        self.spsel = spsel & 1;
        self.x[31] = self.sp_el[self.sp_index()];
    }

    /// NZCV in SPSR position.
    pub fn nzcv(&self) -> u64 {
        let mut f = 0;
        if self.nf >> 63 != 0 {
            f |= pstate::N;
        }
        if self.zf == 0 {
            f |= pstate::Z;
        }
        if self.cf & 1 != 0 {
            f |= pstate::C;
        }
        if self.vf >> 63 != 0 {
            f |= pstate::V;
        }
        f
    }

    /// Sets NZCV from SPSR-position bits.
    pub fn set_nzcv(&mut self, f: u64) {
        self.nf = if f & pstate::N != 0 { 1 << 63 } else { 0 };
        self.zf = u64::from(f & pstate::Z == 0);
        self.cf = u64::from(f & pstate::C != 0);
        self.vf = if f & pstate::V != 0 { 1 << 63 } else { 0 };
    }

    /// PSTATE in SPSR layout (NZCV, DAIF, M[3:0]).
    pub fn pstate(&self) -> u64 {
        self.nzcv() | (self.daif & pstate::DAIF) | (self.el << 2) | (self.spsel & 1)
    }

    /// Sets PSTATE from SPSR layout. M values naming an EL above 1 (or
    /// AArch32) are clamped to EL1h: no EL2/EL3 is modelled.
    pub fn set_pstate(&mut self, v: u64) {
        self.set_nzcv(v);
        self.daif = v & pstate::DAIF;
        let m = v & pstate::M;
        let (el, sp) = match m {
            0b0000 => (0, 0),
            0b0100 => (1, 0),
            _ => (1, 1),
        };
        self.set_el_sp(el, sp);
    }

    /// The architectural state.
    pub fn to_machine(&self) -> Aarch64CpuState {
        let [sp_el0, sp_el1] = self.banked_sp();
        let mut x = [0; 31];
        x.copy_from_slice(&self.x[..31]);
        Aarch64CpuState {
            x,
            sp_el0,
            sp_el1,
            pc: self.pc,
            pstate: self.pstate(),
            v: self.v,
            fpcr: self.fpcr,
            fpsr: self.fpsr,
            elr_el1: self.elr_el1,
            spsr_el1: self.spsr_el1,
            esr_el1: self.esr_el1,
            far_el1: self.far_el1,
            vbar_el1: self.vbar_el1,
            sctlr_el1: self.sctlr_el1,
            tcr_el1: self.tcr_el1,
            ttbr0_el1: self.ttbr0_el1,
            ttbr1_el1: self.ttbr1_el1,
            mair_el1: self.mair_el1,
            tpidr_el0: self.tpidr_el0,
            tpidr_el1: self.tpidr_el1,
            tpidrro_el0: self.tpidrro_el0,
            cpacr_el1: self.cpacr_el1,
            contextidr_el1: self.contextidr_el1,
            par_el1: self.par_el1,
            amair_el1: self.amair_el1,
            cntkctl_el1: self.cntkctl_el1,
        }
    }

    /// Loads the architectural state (the exclusive monitor opens).
    pub fn load_machine(&mut self, m: &Aarch64CpuState) {
        self.x[..31].copy_from_slice(&m.x);
        self.sp_el = [m.sp_el0, m.sp_el1];
        // Select with the new banks loaded: set_pstate stores x[31] into
        // the old bank first, so point it at the right one afterwards.
        self.set_pstate(m.pstate);
        self.sp_el = [m.sp_el0, m.sp_el1];
        self.x[31] = self.sp_el[self.sp_index()];
        self.pc = m.pc;
        self.v = m.v;
        self.fpcr = m.fpcr;
        self.fpsr = m.fpsr;
        self.elr_el1 = m.elr_el1;
        self.spsr_el1 = m.spsr_el1;
        self.esr_el1 = m.esr_el1;
        self.far_el1 = m.far_el1;
        self.vbar_el1 = m.vbar_el1;
        self.sctlr_el1 = m.sctlr_el1;
        self.tcr_el1 = m.tcr_el1;
        self.ttbr0_el1 = m.ttbr0_el1;
        self.ttbr1_el1 = m.ttbr1_el1;
        self.mair_el1 = m.mair_el1;
        self.tpidr_el0 = m.tpidr_el0;
        self.tpidr_el1 = m.tpidr_el1;
        self.tpidrro_el0 = m.tpidrro_el0;
        self.cpacr_el1 = m.cpacr_el1;
        self.contextidr_el1 = m.contextidr_el1;
        self.par_el1 = m.par_el1;
        self.amair_el1 = m.amair_el1;
        self.cntkctl_el1 = m.cntkctl_el1;
        self.excl_addr = EXCL_NONE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_round_trip_keeps_banked_stack_pointers() {
        let mut m = Aarch64CpuState {
            pstate: 0x6000_03c5,
            sp_el0: 0x1000,
            sp_el1: 0x2000,
            pc: 0x4000_0000,
            ..Aarch64CpuState::default()
        };
        m.x[30] = 7;
        let mut s = A64State::new();
        s.load_machine(&m);
        assert_eq!(s.x[31], 0x2000);
        assert_eq!(s.to_machine(), m);
        s.set_el_sp(0, 0);
        assert_eq!(s.x[31], 0x1000);
        s.x[31] = 0x1100;
        s.set_el_sp(1, 1);
        assert_eq!(s.x[31], 0x2000);
        assert_eq!(s.banked_sp(), [0x1100, 0x2000]);
    }
}
