//! Branches and exception generation: b, bl, b.cond, cbz/cbnz, tbz/tbnz,
//! br, blr, ret, eret, svc, hvc, smc, brk.

use accel_tcg::ir::{Block, Cond};

use super::{Ctx, Flow, Res, Undef, status};
use crate::decode::Insn;
use crate::state;

/// Branches to `target` if `taken` (a 0/1 temp) is nonzero, else falls
/// through to the next instruction; ends the block.
fn cond_branch(c: &mut Ctx<'_>, taken: accel_tcg::ir::Temp, target: u64) -> Flow {
    let not_taken = c.b.label();
    let zero = c.k(0);
    c.b.brcond(taken, zero, Cond::Eq, not_taken);
    c.goto(0, target);
    c.b.set_label(not_taken);
    let next = c.pc.wrapping_add(4);
    c.goto(1, next);
    Flow::End
}

/// `B`/`BL label`: "o00101 imm26".
pub fn b_bl(c: &mut Ctx<'_>, i: Insn) -> Res {
    let target = c.pc.wrapping_add((i.sbits(25, 0) << 2) as u64);
    if i.bit(31) {
        let ret = c.k(c.pc.wrapping_add(4));
        c.set_x(30, ret, true);
    }
    c.goto(0, target);
    Ok(Flow::End)
}

/// `CBZ`/`CBNZ Rt, label`: "z011010o imm19 Rt".
pub fn cbz(c: &mut Ctx<'_>, i: Insn) -> Res {
    let target = c.pc.wrapping_add((i.sbits(23, 5) << 2) as u64);
    let v = c.x(i.rd(), i.sf());
    let zero = c.k(0);
    let cond = if i.bit(24) { Cond::Ne } else { Cond::Eq };
    let taken = c.setcond(v, zero, cond);
    Ok(cond_branch(c, taken, target))
}

/// `TBZ`/`TBNZ Rt, #bit, label`: "b5 011011o b40 imm14 Rt".
pub fn tbz(c: &mut Ctx<'_>, i: Insn) -> Res {
    let bit = (i.bits(31, 31) << 5) | i.bits(23, 19);
    let target = c.pc.wrapping_add((i.sbits(18, 5) << 2) as u64);
    let v = c.x(i.rd(), true);
    let sh = c.k(u64::from(bit));
    let s = c.bin(Block::shr, v, sh);
    let one = c.k(1);
    let b = c.bin(Block::and, s, one);
    let taken = if i.bit(24) {
        b
    } else {
        c.bin(Block::xor, b, one)
    };
    Ok(cond_branch(c, taken, target))
}

/// `B.cond label`: "01010100 imm19 0 cond".
pub fn b_cond(c: &mut Ctx<'_>, i: Insn) -> Res {
    let target = c.pc.wrapping_add((i.sbits(23, 5) << 2) as u64);
    if i.bits(3, 1) == 7 {
        c.goto(0, target);
        return Ok(Flow::End);
    }
    let taken = c.cond(i.bits(3, 0));
    Ok(cond_branch(c, taken, target))
}

/// `BR`/`BLR`/`RET Xn`: "1101011 00 pp 11111 000000 Rn 00000".
pub fn br_blr_ret(c: &mut Ctx<'_>, i: Insn) -> Res {
    let op = i.bits(22, 21);
    if op == 3 {
        return Err(Undef::Unallocated);
    }
    // Read the target before BLR writes x30 (BLR x30 jumps to the old value).
    let target = c.x(i.rn(), true);
    if op == 1 {
        let ret = c.k(c.pc.wrapping_add(4));
        c.set_x(30, ret, true);
    }
    c.b.exit_indirect(target);
    Ok(Flow::End)
}

/// `ERET`: finished in Rust (restores PSTATE from SPSR_EL1).
pub fn eret(c: &mut Ctx<'_>, _i: Insn) -> Res {
    if c.el() == 0 {
        return Err(Undef::Unallocated);
    }
    Ok(c.exit(status::ERET))
}

/// `SVC`/`HVC`/`SMC #imm16`: "11010100 000 imm16 000 ll".
pub fn svc_hvc_smc(c: &mut Ctx<'_>, i: Insn) -> Res {
    let imm = i.bits(20, 5);
    let kind = match i.bits(1, 0) {
        1 => status::SVC,
        // HVC and SMC are UNDEFINED at EL0.
        2 if c.el() != 0 => status::HVC,
        3 if c.el() != 0 => status::SMC,
        _ => return Err(Undef::Unallocated),
    };
    Ok(c.exit(status::with_imm16(kind, imm)))
}

/// `BRK #imm16`.
pub fn brk(c: &mut Ctx<'_>, i: Insn) -> Res {
    Ok(c.exit(status::with_imm16(status::BRK, i.bits(20, 5))))
}

/// `DCPS1..3`: "11010100 101 imm16 000 LL" (LL = 00 unallocated). Outside
/// Debug state they are UNDEFINED.
pub fn dcps(_c: &mut Ctx<'_>, i: Insn) -> Res {
    if i.bits(1, 0) == 0 {
        Err(Undef::Unallocated)
    } else {
        Err(Undef::NotImplemented)
    }
}

// The pc is never stored by translated code: the exec loop takes it from
// each exit. Keep the offset referenced for readers looking for it.
const _: u32 = state::PC_OFF;
