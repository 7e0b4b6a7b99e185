//! Address translation: the [`PageWalker`] of an AArch64 CPU, the VMSAv8-64
//! stage 1 walk of the EL1&0 regime (Arm ARM D5.2, pseudocode
//! `AArch64.TranslationTableWalk`, `AArch64.CheckPermission`).
//!
//! * MMU off (SCTLR_EL1.M = 0, D5.2.9): the address maps to itself; data
//!   accesses are Device-nGnRnE (the translator marks every access
//!   aligned then, see [`crate::translate::tbflags::ALIGN`]), instruction
//!   fetches Normal. Addresses above the 44-bit PA size take an Address
//!   size fault, level 0.
//! * MMU on: TCR_EL1 picks TTBR0 (VA top bits all 0) or TTBR1 (all 1) by
//!   T0SZ/T1SZ (clamped to 16..=39), TBI0/TBI1 for data accesses, EPD0/EPD1;
//!   4K, 16K and 64K granules (TG0/TG1); table, block and page descriptors
//!   with the hierarchical APTable/UXNTable/PXNTable limits (D5.3.3); the
//!   access flag (AF = 0 → Access flag fault; Armv8.0 has no hardware AF
//!   update); AP[2:1] against the soft-MMU index ([`MMU_EL0`] /
//!   [`MMU_EL1`]; PAN is not modelled); UXN/PXN, the implicit PXN of
//!   EL0-writable regions and SCTLR_EL1.WXN (D5.4.5).
//! * Device memory (MAIR attribute 0b0000xxxx, D5.5.4): accesses must be
//!   aligned; such pages are never readable or writable through the soft
//!   TLB, so every access reaches [`PageWalker::translate_sized`], which
//!   checks the size (QEMU does not, see tests/guests/README.md).
//! * No ASIDs in the soft TLB: a TTBR write that changes ASID or base
//!   flushes it ([`crate::system`]); nG is ignored.
//!
//! Faults carry the Arm fault status code ([`fault`], [`fsc`]); the CPU
//! turns them into Instruction/Data Aborts.

use accel_tcg::guest::{PageTranslation, PageWalker};
use accel_tcg::softmmu::{Access, MemFault, PagePerms};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::state::MMU_EL0;

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
    /// Synchronous external abort on a table walk, level 0 (add the level).
    pub const EXTERNAL_WALK: u32 = 0x14;
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
/// fault, or anything else (a bus error) as a synchronous external abort.
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
/// SCTLR_EL1.WXN: writable implies execute-never.
pub const SCTLR_WXN: u64 = 1 << 19;
/// The physical address size moat reports (ID_AA64MMFR0_EL1.PARange = 4).
pub const PA_BITS: u32 = 44;

/// A successful translation with what AT reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    /// The physical address.
    pub paddr: u64,
    /// What the index may do with the page.
    pub perms: PagePerms,
    /// The MAIR attribute byte.
    pub attr: u8,
    /// Shareability as PAR_EL1.SH reports it.
    pub sh: u8,
}

impl Walk {
    /// Device memory (MAIR attribute 0b0000xxxx).
    pub fn device(&self) -> bool {
        self.attr & 0xf0 == 0
    }
}

impl PageWalker for A64Walker {
    fn translate(
        &self,
        memory: &GuestMemoryMmap,
        vaddr: u64,
        access: Access,
        mmu_idx: usize,
    ) -> Result<PageTranslation, MemFault> {
        let w = walk(self, memory, vaddr, access, mmu_idx).map_err(fault)?;
        let mut perms = w.perms;
        if w.device() && self.sctlr & SCTLR_M != 0 {
            // Keep Device pages out of the TLB for data, so that each
            // access has its size checked in `translate_sized`.
            perms.read = false;
            perms.write = false;
        }
        Ok(PageTranslation {
            paddr: w.paddr,
            perms,
        })
    }

    fn translate_sized(
        &self,
        memory: &GuestMemoryMmap,
        vaddr: u64,
        size: u32,
        access: Access,
        mmu_idx: usize,
    ) -> Result<PageTranslation, MemFault> {
        let t = self.translate(memory, vaddr, access, mmu_idx)?;
        if access != Access::Exec
            && self.sctlr & SCTLR_M != 0
            && !vaddr.is_multiple_of(u64::from(size.max(1)))
            && !t.perms.read
            && !t.perms.write
        {
            // Only Device pages come back with neither (the walk faults
            // for an access it does not allow).
            return Err(fault(fsc::ALIGNMENT));
        }
        Ok(t)
    }

    fn bus_errors(&self) -> bool {
        // An access no device answers is a synchronous external abort, as
        // QEMU's virt board reports it.
        true
    }
}

/// The granule of TG0/TG1 as log2 of its size.
fn granule(tcr: u64, upper: bool) -> u32 {
    if upper {
        match (tcr >> 30) & 3 {
            1 => 14,
            3 => 16,
            _ => 12,
        }
    } else {
        match (tcr >> 14) & 3 {
            1 => 16,
            2 => 14,
            _ => 12,
        }
    }
}

fn ips_bits(tcr: u64) -> u32 {
    let bits = match (tcr >> 32) & 7 {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        _ => 48,
    };
    bits.min(PA_BITS)
}

/// The stage 1 walk for `access` by soft-MMU index `mmu_idx`: the
/// translation, or the fault status code.
pub fn walk(
    w: &A64Walker,
    memory: &GuestMemoryMmap,
    vaddr: u64,
    access: Access,
    mmu_idx: usize,
) -> Result<Walk, u32> {
    if w.sctlr & SCTLR_M == 0 {
        if vaddr >> PA_BITS != 0 {
            return Err(fsc::ADDRESS_SIZE);
        }
        let (attr, sh) = if access == Access::Exec {
            (0xaa, 2) // Normal, write-through (D5.2.9)
        } else {
            (0x00, 2) // Device-nGnRnE, Outer Shareable
        };
        return Ok(Walk {
            paddr: vaddr,
            perms: PagePerms::RWX,
            attr,
            sh,
        });
    }
    let tcr = w.tcr;
    let upper = (vaddr >> 55) & 1 != 0;
    let (tsz, ttbr, epd, tbi) = if upper {
        (
            (tcr >> 16) & 0x3f,
            w.ttbr1,
            (tcr >> 23) & 1,
            (tcr >> 38) & 1,
        )
    } else {
        (tcr & 0x3f, w.ttbr0, (tcr >> 7) & 1, (tcr >> 37) & 1)
    };
    let tsz = tsz.clamp(16, 39) as u32;
    let inputsize = 64 - tsz;
    // The bits above the input size must all equal bit 55 (bits 63:56 too
    // unless the top byte is ignored, which applies to data only, D5.1.4).
    let top = if tbi != 0 && access != Access::Exec {
        56
    } else {
        64
    };
    let hi_mask = if top > inputsize {
        (u64::MAX >> (64 - (top - inputsize))) << inputsize
    } else {
        0
    };
    let expect = if upper { hi_mask } else { 0 };
    if vaddr & hi_mask != expect || epd != 0 {
        return Err(fsc::TRANSLATION);
    }
    let g = granule(tcr, upper);
    let stride = g - 3;
    let start = 4 - (inputsize - g).div_ceil(stride);
    let mut level = start;
    let pa_bits = ips_bits(tcr);
    let oa_mask = ((1u64 << 48) - 1) & !((1u64 << g) - 1);
    let mut table = ttbr & ((1u64 << 48) - 1) & !1;
    if table >> pa_bits != 0 {
        return Err(fsc::ADDRESS_SIZE + level);
    }
    // Hierarchical limits: no EL0 access, read-only, UXN, PXN.
    let (mut ap_no_el0, mut ap_ro, mut uxn_t, mut pxn_t) = (false, false, false, false);
    loop {
        let shift = g + (3 - level) * stride;
        let bits = if level == start {
            inputsize - shift
        } else {
            stride
        };
        let index = (vaddr >> shift) & ((1u64 << bits) - 1);
        // Tables are aligned to their size; the low bits of a base that
        // is not are treated as zero (RES0).
        let base = table & !((8u64 << bits) - 1);
        let mut raw = [0u8; 8];
        memory
            .read_slice(&mut raw, GuestAddress(base + index * 8))
            .map_err(|_| fsc::EXTERNAL_WALK + level)?;
        let desc = u64::from_le_bytes(raw);
        if desc & 1 == 0 {
            return Err(fsc::TRANSLATION + level);
        }
        let is_table = desc & 2 != 0;
        if level < 3 && is_table {
            table = desc & oa_mask;
            if table >> pa_bits != 0 {
                return Err(fsc::ADDRESS_SIZE + level);
            }
            pxn_t |= (desc >> 59) & 1 != 0;
            uxn_t |= (desc >> 60) & 1 != 0;
            ap_no_el0 |= (desc >> 61) & 1 != 0;
            ap_ro |= (desc >> 62) & 1 != 0;
            level += 1;
            continue;
        }
        // A block (levels 1-2 where the granule allows it) or a page.
        let block_ok = match (level, g) {
            (3, _) => is_table,
            (1, 12) | (2, _) => true,
            _ => false,
        };
        if !block_ok {
            return Err(fsc::TRANSLATION + level);
        }
        let out_mask = oa_mask & !((1u64 << shift) - 1);
        let out = desc & out_mask;
        if out >> pa_bits != 0 {
            return Err(fsc::ADDRESS_SIZE + level);
        }
        if desc & (1 << 10) == 0 {
            return Err(fsc::ACCESS_FLAG + level);
        }
        let ap = (desc >> 6) & 3;
        let el0 = mmu_idx == usize::from(MMU_EL0);
        // AP[1]: EL0 access; AP[2]: read-only (D5.4.4).
        let el0_ok = ap & 1 != 0 && !ap_no_el0;
        let ro = ap & 2 != 0 || ap_ro;
        let el0_writable = el0_ok && !ro;
        let (read, write) = if el0 {
            (el0_ok, el0_ok && !ro)
        } else {
            (true, !ro)
        };
        let wxn = w.sctlr & SCTLR_WXN != 0 && write;
        let exec = if el0 {
            read && (desc >> 54) & 1 == 0 && !uxn_t && !wxn
        } else {
            (desc >> 53) & 1 == 0 && !pxn_t && !el0_writable && !wxn
        };
        let ok = match access {
            Access::Read => read,
            Access::Write => write,
            Access::Exec => exec,
        };
        if !ok {
            return Err(fsc::PERMISSION + level);
        }
        let attr = (w.mair >> (8 * ((desc >> 2) & 7))) as u8;
        let device = attr & 0xf0 == 0;
        let nc = attr == 0x44;
        let sh = if device || nc {
            2
        } else {
            ((desc >> 8) & 3) as u8
        };
        return Ok(Walk {
            paddr: out | (vaddr & ((1u64 << shift) - 1)),
            perms: PagePerms { read, write, exec },
            attr,
            sh,
        });
    }
}
