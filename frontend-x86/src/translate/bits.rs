//! Bit tests, bit scans, population count and byte swaps.

use accel_tcg::ir::{AtomicOp, Block, Cond};
use iced_x86::{Mnemonic, OpKind};

use super::{Ctx, Flow, Loc, Res, Unsupported, alu::reg_of};
use crate::state::rflags;

/// bt, bts, btr, btc. A register bit offset with a memory operand reaches
/// outside the addressed word (signed offset), as the manual describes.
pub fn bt(c: &mut Ctx<'_>, m: Mnemonic) -> Res {
    let bytes = c.op_size(0);
    let bits = bytes as u64 * 8;
    let imm = c.i.op_kind(1) == OpKind::Immediate8;
    let off = c.read_op(1, bytes)?;
    let mut l = c.loc(0)?;
    if let (Loc::Mem(a), false) = (l, imm) {
        // address += (signed offset >> log2(bits)) * bytes
        let s = c.sext(off, bytes);
        let w = c.op2i(Block::sar, s, bits.trailing_zeros() as u64);
        let by = c.op2i(Block::shl, w, bytes.trailing_zeros() as u64);
        let na = c.op2(Block::add, a, by);
        let na = if c.code64() { na } else { c.zext(na, 4) };
        l = Loc::Mem(na);
    }
    let n = c.op2i(Block::and, off, bits - 1);
    let lock = c.lock_addr(l).filter(|_| m != Mnemonic::Bt);
    let v = match lock {
        // The old word from an atomic or/and/xor with the bit's mask.
        Some(addr) => {
            let one = c.k(1);
            let mask = c.op2(Block::shl, one, n);
            let (op, v) = match m {
                Mnemonic::Bts => (AtomicOp::Or, mask),
                Mnemonic::Btc => (AtomicOp::Xor, mask),
                _ => {
                    let inv = c.t();
                    c.b.not(inv, mask);
                    (AtomicOp::And, inv)
                }
            };
            c.qrmw(addr, bytes, v, op)
        }
        None => c.load(l, bytes),
    };
    let sh = c.op2(Block::shr, v, n);
    let bit = c.op2i(Block::and, sh, 1);
    if m != Mnemonic::Bt && lock.is_none() {
        let one = c.k(1);
        let mask = c.op2(Block::shl, one, n);
        let nv = match m {
            Mnemonic::Bts => c.op2(Block::or, v, mask),
            Mnemonic::Btc => c.op2(Block::xor, v, mask),
            _ => {
                let inv = c.t();
                c.b.not(inv, mask);
                c.op2(Block::and, v, inv)
            }
        };
        c.store(l, bytes, nv);
    }
    let f = c.eflags_arith();
    let keep = c.op2i(Block::and, f, !rflags::CF);
    let nf = c.op2(Block::or, keep, bit);
    c.set_eflags_cc(nf);
    Ok(Flow::Next)
}

/// bsf, bsr, tzcnt, lzcnt, popcnt.
pub fn scan(c: &mut Ctx<'_>, m: Mnemonic) -> Res {
    let bytes = c.op_size(0);
    let bits = bytes as u64 * 8;
    let src = c.read_op(1, bytes)?;
    let Some(d) = reg_of(c, 0) else {
        return Err(Unsupported);
    };
    let zero = c.k(0);
    let is_zero = c.t();
    c.b.setcond(is_zero, src, zero, Cond::Eq);
    match m {
        Mnemonic::Bsf | Mnemonic::Bsr => {
            let idx = if m == Mnemonic::Bsf {
                let t = c.t();
                c.b.ctz(t, src);
                t
            } else {
                let z = c.t();
                c.b.clz(z, src);
                let k = c.k(63);
                c.op2(Block::sub, k, z)
            };
            // A zero source leaves the destination unchanged (as hardware does).
            let old = c.reg64(d);
            let v = c.t();
            c.b.movcond(v, src, zero, old, idx, Cond::Eq);
            let keep_old = bytes != 4;
            if keep_old {
                c.write_reg(d, bytes, false, v);
            } else {
                // A 32-bit write zero-extends, but not when nothing is written.
                let skip = c.b.label();
                c.b.brcond(src, zero, Cond::Eq, skip);
                c.write_reg(d, bytes, false, v);
                c.b.set_label(skip);
            }
            let zf = c.op2i(Block::shl, is_zero, 6);
            c.set_eflags_cc(zf);
        }
        Mnemonic::Popcnt => {
            let p = c.t();
            c.b.popcnt(p, src);
            c.write_reg(d, bytes, false, p);
            let zf = c.op2i(Block::shl, is_zero, 6);
            c.set_eflags_cc(zf);
        }
        _ => {
            let r = if m == Mnemonic::Tzcnt {
                let t = c.t();
                c.b.ctz(t, src);
                let w = c.k(bits);
                let r = c.t();
                c.b.movcond(r, src, zero, w, t, Cond::Eq);
                r
            } else {
                let t = c.t();
                c.b.clz(t, src);
                c.op2i(Block::sub, t, 64 - bits)
            };
            c.write_reg(d, bytes, false, r);
            let rz = c.t();
            c.b.setcond(rz, r, zero, Cond::Eq);
            let zf = c.op2i(Block::shl, rz, 6);
            let f = c.op2(Block::or, zf, is_zero);
            c.set_eflags_cc(f);
        }
    }
    Ok(Flow::Next)
}

/// bswap (the 16-bit form, undefined in the manual, gives 0 as hardware does).
pub fn bswap(c: &mut Ctx<'_>) -> Res {
    let bytes = c.op_size(0);
    let Some(n) = reg_of(c, 0) else {
        return Err(Unsupported);
    };
    let v = c.reg64(n);
    let r = c.t();
    match bytes {
        8 => c.b.bswap64(r, v),
        4 => c.b.bswap32(r, v),
        _ => c.b.movi(r, 0),
    }
    c.write_reg(n, bytes, false, r);
    Ok(Flow::Next)
}
