//! Shifts and rotates.
//!
//! The count is masked to 5 bits (6 for 64-bit operands). A masked count of
//! zero changes no flag; for a count in CL that is only known at run time,
//! so the new lazy-flags state is selected against the old one with
//! `movcond` and the translator forgets what it knew about the flags.

use accel_tcg::ir::{Block, Cond, HelperFlags, HelperFn, Temp};
use iced_x86::{Mnemonic, OpKind};

use super::{Cc, Ctx, Flow, Res};
use crate::flags::{self, CcOp, kind};
use crate::state::{self, rflags};

/// The masked count operand: a constant or a temp.
enum Count {
    Const(u64),
    Dyn(Temp),
}

fn count(c: &mut Ctx<'_>, op: u32, bytes: u32) -> Result<Count, super::Unsupported> {
    let mask = if bytes == 8 { 0x3f } else { 0x1f };
    match c.i.op_kind(op) {
        OpKind::Register => {
            let v = c.read_reg(1, 1, false);
            Ok(Count::Dyn(c.op2i(Block::and, v, mask)))
        }
        OpKind::Immediate8 => Ok(Count::Const(c.i.immediate(op) & mask)),
        _ => Err(super::Unsupported),
    }
}

/// Stores a new lazy-flags state unless the dynamic count `n` is zero
/// (then the old state stays), and forgets what the block knew.
fn set_cc_unless_zero(c: &mut Ctx<'_>, n: Temp, op: Temp, dst: Temp, src: Temp, src2: Temp) {
    let old = old_cc(c);
    let z = c.k(0);
    let vals = [op, dst, src, src2];
    let offs = [
        state::CC_OP_OFF,
        state::CC_DST_OFF,
        state::CC_SRC_OFF,
        state::CC_SRC2_OFF,
    ];
    for ((o, v), off) in old.into_iter().zip(vals).zip(offs) {
        let t = c.t();
        c.b.movcond(t, n, z, o, v, Cond::Eq);
        c.st(t, off);
    }
    c.cc = Cc::Unknown;
}

/// The current lazy-flags state as four temps.
fn old_cc(c: &mut Ctx<'_>) -> [Temp; 4] {
    match c.cc {
        Cc::Known {
            op, dst, src, src2, ..
        } => {
            let o = c.k(op.0);
            [o, dst, src, src2]
        }
        Cc::Unknown => [
            c.ld(state::CC_OP_OFF),
            c.ld(state::CC_DST_OFF),
            c.ld(state::CC_SRC_OFF),
            c.ld(state::CC_SRC2_OFF),
        ],
    }
}

/// shl/sal, shr, sar, rol, ror, rcl, rcr.
pub fn shift(c: &mut Ctx<'_>, m: Mnemonic) -> Res {
    let bytes = c.op_size(0);
    let bits = bytes as u64 * 8;
    let l = c.loc(0)?;
    let a = c.load(l, bytes);
    let cnt = if c.i.op_count() < 2 {
        Count::Const(1)
    } else {
        count(c, 1, bytes)?
    };
    if let Count::Const(0) = cnt {
        // Flags unchanged; a 32-bit register destination is still written.
        c.store(l, bytes, a);
        return Ok(Flow::Next);
    }
    let n = match cnt {
        Count::Const(v) => c.k(v),
        Count::Dyn(t) => t,
    };
    match m {
        Mnemonic::Shl | Mnemonic::Sal | Mnemonic::Shr | Mnemonic::Sar => {
            let n1 = c.op2i(Block::sub, n, 1);
            let (res, src, k) = match m {
                Mnemonic::Shr => {
                    let r = c.op2(Block::shr, a, n);
                    let s = c.op2(Block::shr, a, n1);
                    (r, s, kind::SAR)
                }
                Mnemonic::Sar => {
                    let sa = c.sext(a, bytes);
                    let r = c.op2(Block::sar, sa, n);
                    let s = c.op2(Block::sar, sa, n1);
                    (r, s, kind::SAR)
                }
                _ => {
                    let r = c.op2(Block::shl, a, n);
                    let s = c.op2(Block::shl, a, n1);
                    (r, s, kind::SHL)
                }
            };
            let res = c.zext(res, bytes);
            let src = c.zext(src, bytes);
            c.store(l, bytes, res);
            let op = CcOp::new(k, bytes);
            if let Count::Const(_) = cnt {
                c.set_cc(op, res, Some(src), None);
            } else {
                let o = c.k(op.0);
                let z = c.k(0);
                set_cc_unless_zero(c, n, o, res, src, z);
            }
        }
        Mnemonic::Rol | Mnemonic::Ror => {
            let r = c.op2i(Block::remu, n, bits);
            let res = if bytes == 8 {
                c.op2(
                    if m == Mnemonic::Rol {
                        Block::rotl
                    } else {
                        Block::rotr
                    },
                    a,
                    r,
                )
            } else {
                let inv = c.t();
                let w = c.k(bits);
                c.b.sub(inv, w, r);
                let (x, y) = if m == Mnemonic::Rol {
                    (c.op2(Block::shl, a, r), c.op2(Block::shr, a, inv))
                } else {
                    (c.op2(Block::shr, a, r), c.op2(Block::shl, a, inv))
                };
                let o = c.op2(Block::or, x, y);
                c.zext(o, bytes)
            };
            c.store(l, bytes, res);
            let msb = c.op2i(Block::shr, res, bits - 1);
            let (cf, of) = if m == Mnemonic::Rol {
                let cf = c.op2i(Block::and, res, 1);
                let o = c.op2(Block::xor, msb, cf);
                (cf, o)
            } else {
                let cf = c.op2i(Block::and, msb, 1);
                let next = c.op2i(Block::shr, res, bits - 2);
                let x = c.op2(Block::xor, next, msb);
                (cf, x)
            };
            let of = c.op2i(Block::and, of, 1);
            let of = c.op2i(Block::shl, of, 11);
            let f = c.eflags_arith();
            let keep = c.op2i(Block::and, f, !(rflags::CF | rflags::OF));
            let t = c.op2(Block::or, keep, cf);
            let nf = c.op2(Block::or, t, of);
            finish_eflags(c, &cnt, n, f, nf);
        }
        _ => {
            // rcl, rcr: through the carry, in a helper.
            let f = c.eflags_arith();
            let dir = if m == Mnemonic::Rcl { 0 } else { 1 << 8 };
            let sel = c.k(bytes as u64 | dir);
            let h = c.b.helper(
                "rotate_carry",
                HelperFn::A4(helper_rcx),
                HelperFlags {
                    pure: true,
                    no_env: true,
                    may_exit: false,
                },
            );
            let res = c.t();
            c.b.call_helper(Some(res), h, &[sel, a, n, f]);
            let sel_f = c.k(bytes as u64 | dir | 1 << 9);
            let nf = c.t();
            c.b.call_helper(Some(nf), h, &[sel_f, a, n, f]);
            c.store(l, bytes, res);
            finish_eflags(c, &cnt, n, f, nf);
        }
    }
    Ok(Flow::Next)
}

/// Sets the flags to `nf`, or keeps `f` for a dynamic count of zero.
fn finish_eflags(c: &mut Ctx<'_>, cnt: &Count, n: Temp, f: Temp, nf: Temp) {
    match cnt {
        Count::Const(_) => c.set_eflags_cc(nf),
        Count::Dyn(_) => {
            let z = c.k(0);
            let v = c.t();
            c.b.movcond(v, n, z, f, nf, Cond::Eq);
            c.set_eflags_cc(v);
        }
    }
}

/// rcl/rcr on `bytes`-byte `a` by `n` with flags `f`. `sel`: bytes in bits
/// 0-7, rcr in bit 8, return the new flags instead of the result in bit 9.
pub extern "C" fn helper_rcx(_env: *mut u8, sel: u64, a: u64, n: u64, f: u64) -> u64 {
    let bytes = (sel & 0xff) as u32;
    let bits = bytes * 8;
    let right = sel & (1 << 8) != 0;
    let m = flags::mask(bits);
    let n = (n % (bits as u64 + 1)) as u32;
    let mut v = a & m;
    let mut cf = f & rflags::CF;
    for _ in 0..n {
        if right {
            let out = v & 1;
            v = (v >> 1) | (cf << (bits - 1));
            cf = out;
        } else {
            let out = (v >> (bits - 1)) & 1;
            v = ((v << 1) | cf) & m;
            cf = out;
        }
    }
    if sel & (1 << 9) == 0 {
        return v;
    }
    let msb = (v >> (bits - 1)) & 1;
    let of = if right {
        msb ^ ((v >> (bits - 2)) & 1)
    } else {
        msb ^ cf
    };
    (f & !(rflags::CF | rflags::OF)) | cf | (of << 11)
}

/// shld, shrd.
pub fn shld(c: &mut Ctx<'_>, left: bool) -> Res {
    let bytes = c.op_size(0);
    let bits = bytes as u64 * 8;
    let l = c.loc(0)?;
    let a = c.load(l, bytes);
    let s = c.read_op(1, bytes)?;
    let cnt = count(c, 2, bytes)?;
    if let Count::Const(0) = cnt {
        c.store(l, bytes, a);
        return Ok(Flow::Next);
    }
    let n = match cnt {
        Count::Const(v) => c.k(v),
        Count::Dyn(t) => t,
    };
    let n1 = c.op2i(Block::sub, n, 1);
    let (res, src) = if bytes == 2 {
        // The count is masked to 5 bits, so a 16-bit double shift may move
        // 16..31 bits. The CPU then shifts the 48-bit dest:src:dest (the SDM
        // leaves counts over 16 undefined; 16 itself gives the source), which
        // one 64-bit shift reproduces for every count.
        let hi = c.op2i(Block::shl, a, 32);
        let mid = c.op2i(Block::shl, s, 16);
        let v = c.op2(Block::or, hi, mid);
        let v = c.op2(Block::or, v, a);
        let shift48 = |c: &mut Ctx<'_>, n: Temp| {
            let r = if left {
                let x = c.op2(Block::shl, v, n);
                c.op2i(Block::shr, x, 32)
            } else {
                c.op2(Block::shr, v, n)
            };
            c.zext(r, 2)
        };
        (shift48(c, n), shift48(c, n1))
    } else {
        (
            double_shift(c, left, a, s, n, bits, bytes),
            double_shift(c, left, a, s, n1, bits, bytes),
        )
    };
    c.store(l, bytes, res);
    let op = CcOp::new(if left { kind::SHL } else { kind::SAR }, bytes);
    if let Count::Const(_) = cnt {
        c.set_cc(op, res, Some(src), None);
    } else {
        let o = c.k(op.0);
        let z = c.k(0);
        set_cc_unless_zero(c, n, o, res, src, z);
    }
    Ok(Flow::Next)
}

/// `(a << n) | (s >> (bits - n))` (or the right-shift mirror) for
/// `0 <= n < bits`, without a shift by the full width.
fn double_shift(
    c: &mut Ctx<'_>,
    left: bool,
    a: Temp,
    s: Temp,
    n: Temp,
    bits: u64,
    bytes: u32,
) -> Temp {
    let w = c.k(bits - 1);
    let inv = c.op2(Block::sub, w, n);
    let r = if left {
        let x = c.op2(Block::shl, a, n);
        let s1 = c.op2i(Block::shr, s, 1);
        let y = c.op2(Block::shr, s1, inv);
        c.op2(Block::or, x, y)
    } else {
        let x = c.op2(Block::shr, a, n);
        let s1 = c.op2i(Block::shl, s, 1);
        let y = c.op2(Block::shl, s1, inv);
        c.op2(Block::or, x, y)
    };
    c.zext(r, bytes)
}
