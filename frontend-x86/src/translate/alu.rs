//! Integer arithmetic, logic, data movement and condition-code consumers.

use accel_tcg::ir::{AtomicOp, Block, Cond};
use iced_x86::{Mnemonic, OpKind, Register};

use super::{Ctx, Flow, Loc, Res, Unsupported, gpr_num, status, system};
use crate::flags::{CcOp, kind};
use crate::state::{self, rflags};

/// add, or, adc, sbb, and, sub, xor, cmp, test.
pub fn arith(c: &mut Ctx<'_>, m: Mnemonic) -> Res {
    let bytes = c.op_size(0);
    let dl = c.loc(0)?;
    let lock = c
        .lock_addr(dl)
        .filter(|_| !matches!(m, Mnemonic::Cmp | Mnemonic::Test));
    let (a, b, carry) = match lock {
        // The atomic add (of the negated operand for sub and sbb, plus the
        // carry for adc and sbb) yields the old value; the result and flags
        // are then computed from it exactly as below.
        Some(addr) => {
            let b = c.read_op(1, bytes)?;
            let carry = matches!(m, Mnemonic::Adc | Mnemonic::Sbb).then(|| c.carry());
            let b_cf = match carry {
                Some(cf) => c.op2(Block::add, b, cf),
                None => b,
            };
            let (op, v) = match m {
                Mnemonic::Add | Mnemonic::Adc => (AtomicOp::Add, b_cf),
                Mnemonic::Sub | Mnemonic::Sbb => {
                    let n = c.t();
                    c.b.neg(n, b_cf);
                    (AtomicOp::Add, n)
                }
                Mnemonic::And => (AtomicOp::And, b),
                Mnemonic::Or => (AtomicOp::Or, b),
                _ => (AtomicOp::Xor, b),
            };
            (c.qrmw(addr, bytes, v, op), b, carry)
        }
        None => {
            let a = c.load(dl, bytes);
            let b = c.read_op(1, bytes)?;
            let carry = matches!(m, Mnemonic::Adc | Mnemonic::Sbb).then(|| c.carry());
            (a, b, carry)
        }
    };
    let raw = c.t();
    match m {
        Mnemonic::Add | Mnemonic::Adc => c.b.add(raw, a, b),
        Mnemonic::Sub | Mnemonic::Sbb | Mnemonic::Cmp => c.b.sub(raw, a, b),
        Mnemonic::And | Mnemonic::Test => c.b.and(raw, a, b),
        Mnemonic::Or => c.b.or(raw, a, b),
        _ => c.b.xor(raw, a, b),
    }
    if let Some(cf) = carry {
        if m == Mnemonic::Adc {
            c.b.add(raw, raw, cf);
        } else {
            c.b.sub(raw, raw, cf);
        }
    }
    let res = c.zext(raw, bytes);
    if !matches!(m, Mnemonic::Cmp | Mnemonic::Test) && lock.is_none() {
        c.store(dl, bytes, res);
    }
    let k = match m {
        Mnemonic::Add => kind::ADD,
        Mnemonic::Adc => kind::ADC,
        Mnemonic::Sub | Mnemonic::Cmp => kind::SUB,
        Mnemonic::Sbb => kind::SBB,
        _ => kind::LOGIC,
    };
    if k == kind::SUB {
        c.set_cc_sub(bytes, a, res, b);
    } else {
        c.set_cc(CcOp::new(k, bytes), res, Some(b), carry);
    }
    Ok(Flow::Next)
}

/// inc, dec: CF is kept.
pub fn inc_dec(c: &mut Ctx<'_>, inc: bool) -> Res {
    let bytes = c.op_size(0);
    let l = c.loc(0)?;
    let lock = c.lock_addr(l);
    let a = match lock {
        Some(addr) => {
            let step = c.k(if inc { 1 } else { u64::MAX });
            c.qrmw(addr, bytes, step, AtomicOp::Add)
        }
        None => c.load(l, bytes),
    };
    let cf = c.carry();
    let raw = c.op2i(if inc { Block::add } else { Block::sub }, a, 1);
    let res = c.zext(raw, bytes);
    if lock.is_none() {
        c.store(l, bytes, res);
    }
    c.set_cc(
        CcOp::new(if inc { kind::INC } else { kind::DEC }, bytes),
        res,
        Some(cf),
        None,
    );
    Ok(Flow::Next)
}

/// neg: `0 - x` with the flags of that subtraction.
pub fn neg(c: &mut Ctx<'_>) -> Res {
    let bytes = c.op_size(0);
    let l = c.loc(0)?;
    let a = c.load(l, bytes);
    let raw = c.t();
    c.b.neg(raw, a);
    let res = c.zext(raw, bytes);
    match c.lock_addr(l) {
        // No atomic kind negates: compare-and-swap, retried on a race.
        Some(addr) => c.store_if_unchanged(addr, bytes, a, res),
        None => c.store(l, bytes, res),
    }
    c.set_cc(CcOp::new(kind::SUB, bytes), res, Some(a), None);
    Ok(Flow::Next)
}

/// not: no flags.
pub fn not(c: &mut Ctx<'_>) -> Res {
    let bytes = c.op_size(0);
    let l = c.loc(0)?;
    if let Some(addr) = c.lock_addr(l) {
        let ones = c.k(u64::MAX);
        c.qrmw(addr, bytes, ones, AtomicOp::Xor);
        return Ok(Flow::Next);
    }
    let a = c.load(l, bytes);
    let r = c.t();
    c.b.not(r, a);
    c.store(l, bytes, r);
    Ok(Flow::Next)
}

/// mov, including the segment and control register forms.
pub fn mov(c: &mut Ctx<'_>) -> Res {
    let i = c.i;
    if i.op_kind(0) == OpKind::Register && is_special(i.op_register(0)) {
        return system::mov_to_special(c);
    }
    if i.op_kind(1) == OpKind::Register && is_special(i.op_register(1)) {
        return system::mov_from_special(c);
    }
    let bytes = c.op_size(0);
    let v = c.read_op(1, bytes)?;
    let l = c.loc(0)?;
    c.store(l, bytes, v);
    Ok(Flow::Next)
}

fn is_special(r: Register) -> bool {
    r.is_segment_register() || r.is_cr() || r.is_dr()
}

/// movzx, movsx, movsxd.
pub fn movx(c: &mut Ctx<'_>, signed: bool) -> Res {
    let db = c.op_size(0);
    let sb = c.op_size(1);
    let sl = c.loc(1)?;
    let v = c.load(sl, sb);
    let v = if signed { c.sext(v, sb) } else { v };
    let dl = c.loc(0)?;
    c.store(dl, db, v);
    Ok(Flow::Next)
}

/// lea: the offset, without a segment base, at the destination's size.
pub fn lea(c: &mut Ctx<'_>) -> Res {
    if c.i.op_kind(1) != OpKind::Memory {
        return Err(Unsupported);
    }
    let bytes = c.op_size(0);
    let (a, _) = c.ea_offset();
    let dl = c.loc(0)?;
    c.store(dl, bytes, a);
    Ok(Flow::Next)
}

/// xchg (memory forms are atomic, lock prefix or not).
pub fn xchg(c: &mut Ctx<'_>) -> Res {
    let bytes = c.op_size(0);
    let l0 = c.loc(0)?;
    let l1 = c.loc(1)?;
    let mem = match (l0, l1) {
        (Loc::Mem(a), r) | (r, Loc::Mem(a)) => Some((a, r)),
        _ => None,
    };
    if let Some((addr, r)) = mem {
        let v = c.load(r, bytes);
        let old = c.qrmw(addr, bytes, v, AtomicOp::Xchg);
        c.store(r, bytes, old);
        return Ok(Flow::Next);
    }
    let a = c.load(l0, bytes);
    let b = c.load(l1, bytes);
    // Memory first, so a fault leaves the registers untouched.
    match (l0, l1) {
        (Loc::Mem(_), _) => {
            c.store(l0, bytes, b);
            c.store(l1, bytes, a);
        }
        _ => {
            c.store(l1, bytes, a);
            c.store(l0, bytes, b);
        }
    }
    Ok(Flow::Next)
}

/// cmpxchg: compare the accumulator with the destination.
pub fn cmpxchg(c: &mut Ctx<'_>) -> Res {
    let bytes = c.op_size(0);
    let dl = c.loc(0)?;
    let lock = c.lock_addr(dl);
    let old = match lock {
        Some(_) => c.t(),
        None => c.load(dl, bytes),
    };
    let src = c.read_op(1, bytes)?;
    let acc = c.read_reg(0, bytes, false);
    if let Some(addr) = lock {
        // The compare-and-swap yields the old value the compare, flags and
        // accumulator update below use.
        let seen = c.qcmpxchg(addr, bytes, acc, src);
        c.b.mov(old, seen);
    } else if let Loc::Mem(_) = dl {
        // Memory is written either way (the old value back on a mismatch).
        let new = c.t();
        c.b.movcond(new, acc, old, src, old, Cond::Eq);
        c.store(dl, bytes, new);
    }
    let raw = c.op2(Block::sub, acc, old);
    let res = c.zext(raw, bytes);
    c.set_cc(CcOp::new(kind::SUB, bytes), res, Some(old), None);
    // A register destination is written only when equal (hardware leaves
    // its upper half alone otherwise); the accumulator only when not.
    let ne = c.b.label();
    let done = c.b.label();
    c.b.brcond(acc, old, Cond::Ne, ne);
    if let Loc::Reg { .. } = dl {
        c.store(dl, bytes, src);
    }
    c.b.br(done);
    c.b.set_label(ne);
    c.write_reg(0, bytes, false, old);
    c.b.set_label(done);
    Ok(Flow::Next)
}

/// cmpxchg8b, cmpxchg16b: compare edx:eax (rdx:rax) with the memory
/// operand; equal: store ecx:ebx (rcx:rbx) and set ZF; else load it into
/// edx:eax (rdx:rax) and clear ZF. Memory is written either way. Other flags
/// are kept. cmpxchg16b needs a 16-byte aligned operand (#GP otherwise).
pub fn cmpxchg_wide(c: &mut Ctx<'_>, wide: bool) -> Res {
    if c.i.op_kind(0) != OpKind::Memory {
        return Err(Unsupported);
    }
    let half = if wide { 8 } else { 4 };
    let a = c.ea();
    if wide {
        let low = c.op2i(Block::and, a, 15);
        let zero = c.k(0);
        let ok = c.b.label();
        c.b.brcond(low, zero, Cond::Eq, ok);
        c.raise(super::status::GP, Some(0));
        c.b.set_label(ok);
    }
    let (lo, hi, diff) = if !wide && c.i.has_lock_prefix() {
        // One 8-byte compare-and-swap of edx:eax against ecx:ebx.
        let rax = c.read_reg(0, 4, false);
        let rdx = c.read_reg(2, 4, false);
        let rbx = c.read_reg(3, 4, false);
        let rcx = c.read_reg(1, 4, false);
        let hi_x = c.op2i(Block::shl, rdx, 32);
        let expected = c.op2(Block::or, hi_x, rax);
        let hi_n = c.op2i(Block::shl, rcx, 32);
        let new = c.op2(Block::or, hi_n, rbx);
        let old = c.qcmpxchg(a, 8, expected, new);
        let lo = c.zext(old, 4);
        let hi = c.op2i(Block::shr, old, 32);
        let diff = c.op2(Block::xor, old, expected);
        (lo, hi, diff)
    } else {
        // cmpxchg16b stays two plain accesses: the IR has no 16-byte
        // atomic, so it is indivisible only for a single vCPU.
        let a_hi = c.op2i(Block::add, a, half as u64);
        let lo = c.qld(a, half, false);
        let hi = c.qld(a_hi, half, false);
        let rax = c.read_reg(0, half, false);
        let rdx = c.read_reg(2, half, false);
        let rbx = c.read_reg(3, half, false);
        let rcx = c.read_reg(1, half, false);
        let x0 = c.op2(Block::xor, lo, rax);
        let x1 = c.op2(Block::xor, hi, rdx);
        let diff = c.op2(Block::or, x0, x1);
        let zero = c.k(0);
        let new_lo = c.t();
        c.b.movcond(new_lo, diff, zero, rbx, lo, Cond::Eq);
        let new_hi = c.t();
        c.b.movcond(new_hi, diff, zero, rcx, hi, Cond::Eq);
        c.qst(a, half, new_lo);
        c.qst(a_hi, half, new_hi);
        (lo, hi, diff)
    };
    let zero = c.k(0);
    let f = c.eflags_arith();
    let keep = c.op2i(Block::and, f, !rflags::ZF);
    let eq = c.t();
    c.b.setcond(eq, diff, zero, Cond::Eq);
    let zf = c.op2i(Block::shl, eq, 6);
    let nf = c.op2(Block::or, keep, zf);
    c.set_eflags_cc(nf);
    let done = c.b.label();
    c.b.brcond(diff, zero, Cond::Eq, done);
    c.write_reg(0, half, false, lo);
    c.write_reg(2, half, false, hi);
    c.b.set_label(done);
    Ok(Flow::Next)
}

/// xadd: exchange and add.
pub fn xadd(c: &mut Ctx<'_>) -> Res {
    let bytes = c.op_size(0);
    let dl = c.loc(0)?;
    let sl = c.loc(1)?;
    if let Some(addr) = c.lock_addr(dl) {
        let b = c.load(sl, bytes);
        let a = c.qrmw(addr, bytes, b, AtomicOp::Add);
        let raw = c.op2(Block::add, a, b);
        let res = c.zext(raw, bytes);
        c.store(sl, bytes, a);
        c.set_cc(CcOp::new(kind::ADD, bytes), res, Some(b), None);
        return Ok(Flow::Next);
    }
    let a = c.load(dl, bytes);
    let b = c.load(sl, bytes);
    let raw = c.op2(Block::add, a, b);
    let res = c.zext(raw, bytes);
    if let Loc::Mem(_) = dl {
        c.store(dl, bytes, res);
        c.store(sl, bytes, a);
    } else {
        c.store(sl, bytes, a);
        c.store(dl, bytes, res);
    }
    c.set_cc(CcOp::new(kind::ADD, bytes), res, Some(b), None);
    Ok(Flow::Next)
}

/// cbw, cwde, cdqe: sign-extend the accumulator in place.
pub fn cbw(c: &mut Ctx<'_>) -> Res {
    let bytes = match c.i.mnemonic() {
        Mnemonic::Cbw => 2,
        Mnemonic::Cwde => 4,
        _ => 8,
    };
    let a = c.reg64(0);
    let s = c.sext(a, bytes / 2);
    c.write_reg(0, bytes, false, s);
    Ok(Flow::Next)
}

/// cwd, cdq, cqo: the accumulator's sign into rdx.
pub fn cwd(c: &mut Ctx<'_>) -> Res {
    let bytes = match c.i.mnemonic() {
        Mnemonic::Cwd => 2,
        Mnemonic::Cdq => 4,
        _ => 8,
    };
    let a = c.reg64(0);
    let s = c.sext(a, bytes);
    let d = c.op2i(Block::sar, s, 63);
    c.write_reg(2, bytes, false, d);
    Ok(Flow::Next)
}

/// Flag instructions: clc, stc, cmc, cld, std, cli, sti, sahf, lahf.
pub fn flag_op(c: &mut Ctx<'_>, m: Mnemonic) -> Res {
    match m {
        Mnemonic::Clc | Mnemonic::Stc | Mnemonic::Cmc => {
            let f = c.eflags_arith();
            let n = match m {
                Mnemonic::Clc => c.op2i(Block::and, f, !rflags::CF),
                Mnemonic::Stc => c.op2i(Block::or, f, rflags::CF),
                _ => c.op2i(Block::xor, f, rflags::CF),
            };
            c.set_eflags_cc(n);
        }
        Mnemonic::Cld | Mnemonic::Std | Mnemonic::Cli | Mnemonic::Sti => {
            let bit = if matches!(m, Mnemonic::Cld | Mnemonic::Std) {
                rflags::DF
            } else {
                rflags::IF
            };
            // IOPL is not part of the TB flags: cli/sti outside ring 0 #GP.
            if bit == rflags::IF && c.need_cpl0() {
                return Ok(Flow::End);
            }
            let e = c.ld(state::EFLAGS_OFF);
            let n = if matches!(m, Mnemonic::Cld | Mnemonic::Cli) {
                c.op2i(Block::and, e, !bit)
            } else {
                c.op2i(Block::or, e, bit)
            };
            c.st(n, state::EFLAGS_OFF);
            if m == Mnemonic::Sti {
                // Pending interrupts are looked at in Rust, after the shadow.
                return Ok(c.exit(status::STI));
            }
        }
        Mnemonic::Sahf => {
            let ah = c.read_reg(0, 1, true);
            let keep = rflags::SF | rflags::ZF | rflags::AF | rflags::PF | rflags::CF;
            let lo = c.op2i(Block::and, ah, keep);
            let f = c.eflags_arith();
            let of = c.op2i(Block::and, f, rflags::OF);
            let n = c.op2(Block::or, lo, of);
            c.set_eflags_cc(n);
        }
        _ => {
            // lahf
            let f = c.eflags_arith();
            let lo = c.op2i(Block::and, f, 0xd5);
            let v = c.op2i(Block::or, lo, 2);
            c.write_reg(0, 1, true, v);
        }
    }
    Ok(Flow::Next)
}

/// setcc and cmovcc.
pub fn setcc_cmov(c: &mut Ctx<'_>) -> Res {
    let cc = c.i.condition_code();
    if is_setcc(c.i.mnemonic()) {
        let l = c.loc(0)?;
        let (a, b, cond) = c.cond(cc);
        let d = c.t();
        c.b.setcond(d, a, b, cond);
        c.store(l, 1, d);
        return Ok(Flow::Next);
    }
    let bytes = c.op_size(0);
    let src = c.read_op(1, bytes)?;
    let Loc::Reg { n, .. } = c.loc(0)? else {
        return Err(Unsupported);
    };
    let old = c.reg64(n);
    let (a, b, cond) = c.cond(cc);
    let v = c.t();
    c.b.movcond(v, a, b, src, old, cond);
    c.write_reg(n, bytes, false, v);
    Ok(Flow::Next)
}

/// Tells setcc from cmovcc.
pub(super) fn is_setcc(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Seto
            | M::Setno
            | M::Setb
            | M::Setae
            | M::Sete
            | M::Setne
            | M::Setbe
            | M::Seta
            | M::Sets
            | M::Setns
            | M::Setp
            | M::Setnp
            | M::Setl
            | M::Setge
            | M::Setle
            | M::Setg
    )
}

/// The register number of a general-purpose register operand.
pub fn reg_of(c: &Ctx<'_>, op: u32) -> Option<usize> {
    (c.i.op_kind(op) == OpKind::Register)
        .then(|| gpr_num(c.i.op_register(op)))
        .filter(|&(_, s)| s != 0)
        .map(|(n, _)| n)
}
