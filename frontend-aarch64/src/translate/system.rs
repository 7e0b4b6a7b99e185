//! System instructions: hints and barriers in IR; `msr`, `mrs`, `sys` and
//! `wfi` end the block and are finished in Rust ([`crate::system`]).

use accel_tcg::ir::{Block, MB_ALL, MemOp, MemSize};

use super::{Ctx, Flow, Res, status};
use crate::decode::Insn;
use crate::state;

/// `HINT #imm` (NOP, YIELD, WFE, WFI, SEV, SEVL, and the hint space):
/// "11010101 00000011 0010 CRm op2 11111".
pub fn hint(c: &mut Ctx<'_>, i: Insn) -> Res {
    let imm = i.bits(11, 5);
    match imm {
        // WFE, WFI: the CPU may sleep until an event or an interrupt; SEV
        // and SEVL set event registers. All in Rust.
        2..=5 => Ok(c.exit(status::system(i.0))),
        // NOP, YIELD, and every unallocated hint, which executes as NOP.
        _ => Ok(Flow::Next),
    }
}

/// CLREX, DSB, DMB, ISB, SB: "11010101 00000011 0011 CRm op2 11111".
pub fn barrier(c: &mut Ctx<'_>, i: Insn) -> Res {
    match i.bits(7, 5) {
        2 => {
            let none = c.k(state::EXCL_NONE);
            c.st(state::EXCL_ADDR_OFF, none);
            Ok(Flow::Next)
        }
        4 | 5 | 7 => {
            c.b.mb(MB_ALL);
            Ok(Flow::Next)
        }
        6 => {
            // ISB: later instructions see every earlier context change;
            // those already end their block, so a fresh block is enough.
            let next = c.pc.wrapping_add(4);
            c.goto(0, next);
            Ok(Flow::End)
        }
        _ => Err(super::Undef::Unallocated),
    }
}

/// `MSR <pstatefield>, #imm`: finished in Rust.
pub fn msr_imm(c: &mut Ctx<'_>, i: Insn) -> Res {
    Ok(c.exit(status::system(i.0)))
}

/// `SYS`/`SYSL` (cache and TLB maintenance, AT): finished in Rust, except
/// `DC ZVA`, which zeroes its 64-byte block (DCZID_EL0.BS = 4) with eight
/// stores, so the soft-MMU checks, faults and code-page tracking apply.
pub fn sys(c: &mut Ctx<'_>, i: Insn) -> Res {
    // DC ZVA: op1 3, CRn 7, CRm 4, op2 1, L 0.
    if i.0 & 0xffff_ffe0 == 0xd50b_7420 && c.tb & super::tbflags::ZVA_TRAP == 0 {
        let v = c.x(i.rd(), true);
        let mask = c.k(!63);
        let base = c.bin(Block::and, v, mask);
        let zero = c.k(0);
        let mop = MemOp::new(MemSize::B8).mmu(c.mmu());
        for k in 0..8u64 {
            let off = c.k(8 * k);
            let a = c.bin(Block::add, base, off);
            c.b.qemu_st(zero, a, mop);
        }
        return Ok(Flow::Next);
    }
    Ok(c.exit(status::system(i.0)))
}

/// `MRS`/`MSR <sysreg>`: finished in Rust.
pub fn mrs_msr(c: &mut Ctx<'_>, i: Insn) -> Res {
    Ok(c.exit(status::system(i.0)))
}
