//! Near control transfers: jmp, jcc, loop/jrcxz, call, ret. Far forms go to
//! [`super::system`].

use accel_tcg::ir::{Block, Cond};
use iced_x86::{Mnemonic, OpKind};

use super::{Ctx, Flow, Res, system};

fn is_near(k: OpKind) -> bool {
    matches!(
        k,
        OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
    )
}

/// The target of an indirect near branch (register or memory), as a temp.
fn indirect_target(c: &mut Ctx<'_>) -> Result<accel_tcg::ir::Temp, super::Unsupported> {
    let bytes = c.op_size(0);
    c.read_op(0, bytes)
}

/// jmp.
pub fn jmp(c: &mut Ctx<'_>) -> Res {
    let k = c.i.op_kind(0);
    if is_near(k) {
        c.goto(0, c.i.near_branch_target());
        return Ok(Flow::End);
    }
    if is_far(c) {
        return system::far_jmp(c, false);
    }
    let t = indirect_target(c)?;
    c.goto_indirect(t);
    Ok(Flow::End)
}

fn is_far(c: &Ctx<'_>) -> bool {
    matches!(c.i.op_kind(0), OpKind::FarBranch16 | OpKind::FarBranch32)
        || format!("{:?}", c.i.code()).contains("_m16")
}

/// jcc.
pub fn jcc(c: &mut Ctx<'_>) -> Res {
    let (a, b, cond) = c.cond(c.i.condition_code());
    let taken = c.b.label();
    c.b.brcond(a, b, cond, taken);
    c.goto(0, c.next_rip());
    c.b.set_label(taken);
    c.goto(1, c.i.near_branch_target());
    Ok(Flow::End)
}

/// loop, loope, loopne, jrcxz/jecxz.
pub fn loop_(c: &mut Ctx<'_>, m: Mnemonic) -> Res {
    // The counter's width is the address size: rcx, ecx or cx.
    let name = format!("{:?}", c.i.code());
    let bytes = match m {
        Mnemonic::Jrcxz => 8,
        Mnemonic::Jecxz => 4,
        Mnemonic::Jcxz => 2,
        _ if name.ends_with("RCX") => 8,
        _ if name.ends_with("ECX") => 4,
        _ if name.ends_with("_CX") => 2,
        _ => return Err(super::Unsupported),
    };
    let rcx = c.read_reg(1, bytes, false);
    let zero = c.k(0);
    let taken = c.b.label();
    if matches!(m, Mnemonic::Jrcxz | Mnemonic::Jecxz | Mnemonic::Jcxz) {
        c.b.brcond(rcx, zero, Cond::Eq, taken);
    } else {
        let dec = c.op2i(Block::sub, rcx, 1);
        let n = c.zext(dec, bytes);
        let zf = match m {
            Mnemonic::Loope | Mnemonic::Loopne => {
                let (a, b, cnd) = c.cond(iced_x86::ConditionCode::e);
                let t = c.t();
                c.b.setcond(
                    t,
                    a,
                    b,
                    if m == Mnemonic::Loope {
                        cnd
                    } else {
                        cnd.invert()
                    },
                );
                Some(t)
            }
            _ => None,
        };
        c.write_reg(1, bytes, false, n);
        match zf {
            None => c.b.brcond(n, zero, Cond::Ne, taken),
            Some(t) => {
                // taken when rcx != 0 && cond
                let nz = c.t();
                c.b.setcond(nz, n, zero, Cond::Ne);
                let both = c.op2(Block::and, nz, t);
                c.b.brcond(both, zero, Cond::Ne, taken);
            }
        }
    }
    c.goto(0, c.next_rip());
    c.b.set_label(taken);
    c.goto(1, c.i.near_branch_target());
    Ok(Flow::End)
}

/// call (near; far calls go to [`system::far_jmp`]).
pub fn call(c: &mut Ctx<'_>) -> Res {
    if is_far(c) {
        return system::far_jmp(c, true);
    }
    let bytes = c.stack_size();
    let ret = c.k(c.mask_ip(c.next_rip()));
    if is_near(c.i.op_kind(0)) {
        c.push_many(&[ret], bytes);
        c.goto(0, c.i.near_branch_target());
    } else {
        let t = indirect_target(c)?;
        c.push_many(&[ret], bytes);
        c.goto_indirect(t);
    }
    Ok(Flow::End)
}

/// ret, ret imm16.
pub fn ret(c: &mut Ctx<'_>) -> Res {
    let bytes = if c.i.op_count() == 1 {
        // stack_pointer_increment includes the immediate.
        let inc = c.i.stack_pointer_increment().unsigned_abs();
        match inc.wrapping_sub((c.i.immediate(0) & 0xffff) as u32) {
            b @ (2 | 4 | 8) => b,
            _ => return Err(super::Unsupported),
        }
    } else {
        c.stack_size()
    };
    let (v, mut nsp) = c.pop_val(bytes);
    if c.i.op_count() == 1 {
        nsp = c.op2i(Block::add, nsp, c.i.immediate(0) & 0xffff);
    }
    c.write_sp(nsp);
    c.goto_indirect(v);
    Ok(Flow::End)
}
