//! Address translation: the [`PageWalker`] of an AArch64 CPU.
//!
//! With SCTLR_EL1.M = 0 (the boot state of the `virt` board) the stage 1
//! translation is off and every address maps to itself, readable, writable
//! and executable by both soft-MMU indexes ([`crate::state::MMU_EL0`] and
//! [`crate::state::MMU_EL1`]).
//!
//! **To be written** (the system helper): [`walk`], the VMSAv8-64 stage 1
//! table walk for the EL1&0 regime: TCR_EL1.{T0SZ,T1SZ,TG0,TG1,IPS,EPD*}
//! choose TTBR0/TTBR1 by the top VA bits; 4K/16K/64K granules; block and
//! page descriptors; AP[2:1] against the index (EL0 needs AP[1], PAN is not
//! modelled); UXN/PXN for `Access::Exec`; the access flag (AF = 0 → Access
//! flag fault unless hardware AF is modelled). Faults are returned with
//! [`fault`] and the Arm fault status code ([`fsc`]); the CPU turns them
//! into Instruction/Data Aborts ([`crate::exceptions`]). TLB maintenance
//! (`tlbi`) lands in [`crate::system`] and flushes
//! `state.header().tlb`; writes to SCTLR/TCR/TTBR end the block there too.

use accel_tcg::guest::{PageTranslation, PageWalker};
use accel_tcg::softmmu::{Access, MemFault, PagePerms};
use vm_memory::GuestMemoryMmap;

/// Arm fault status codes (ESR ISS DFSC/IFSC).
pub mod fsc {
    /// Address size fault, level 0 (add the level).
    pub const ADDRESS_SIZE: u32 = 0x00;
    /// Translation fault, level 0 (add the level).
    pub const TRANSLATION: u32 = 0x04;
    /// Access flag fault, level 0 (add the level).
    pub const ACCESS_FLAG: u32 = 0x08;
    /// Permission fault, level 0 (add the level).
    pub const PERMISSION: u32 = 0x0c;
    /// Synchronous external abort (not on a table walk).
    pub const EXTERNAL: u32 = 0x10;
    /// Alignment fault.
    pub const ALIGNMENT: u32 = 0x21;
}

/// Marks a [`MemFault`] code as ours: the low 6 bits are the FSC.
const FAULT_TAG: u32 = 0xa640_0000;

/// The [`MemFault`] for Arm fault status code `fsc`.
pub const fn fault(fsc: u32) -> MemFault {
    MemFault {
        code: FAULT_TAG | (fsc & 0x3f),
    }
}

/// The fault status code of a [`MemFault`]: ours, the soft-MMU's alignment
/// fault, or anything else as a synchronous external abort.
pub fn fsc_of(f: MemFault) -> u32 {
    if f == MemFault::UNALIGNED {
        fsc::ALIGNMENT
    } else if f.code & !0x3f == FAULT_TAG {
        f.code & 0x3f
    } else {
        fsc::EXTERNAL
    }
}

/// A snapshot of the registers that decide a translation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct A64Walker {
    /// SCTLR_EL1.
    pub sctlr: u64,
    /// TCR_EL1.
    pub tcr: u64,
    /// TTBR0_EL1.
    pub ttbr0: u64,
    /// TTBR1_EL1.
    pub ttbr1: u64,
    /// MAIR_EL1.
    pub mair: u64,
}

/// SCTLR_EL1.M: stage 1 translation on.
pub const SCTLR_M: u64 = 1 << 0;

const ALL: PagePerms = PagePerms {
    read: true,
    write: true,
    exec: true,
};

impl PageWalker for A64Walker {
    fn translate(
        &self,
        memory: &GuestMemoryMmap,
        vaddr: u64,
        access: Access,
        mmu_idx: usize,
    ) -> Result<PageTranslation, MemFault> {
        if self.sctlr & SCTLR_M == 0 {
            return Ok(PageTranslation {
                paddr: vaddr,
                perms: ALL,
            });
        }
        walk(self, memory, vaddr, access, mmu_idx)
    }
}

/// The stage 1 walk with the MMU on. Not written yet: every access takes a
/// level 0 translation fault.
pub fn walk(
    w: &A64Walker,
    memory: &GuestMemoryMmap,
    vaddr: u64,
    access: Access,
    mmu_idx: usize,
) -> Result<PageTranslation, MemFault> {
    let _ = (w, memory, access, mmu_idx);
    log::debug!("aarch64: MMU on, no table walk yet for {vaddr:#x}");
    Err(fault(fsc::TRANSLATION))
}
