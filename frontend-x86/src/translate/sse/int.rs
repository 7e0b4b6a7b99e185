//! Bitwise logic and integer add/subtract, inline on the two quadword
//! halves of the registers.

use accel_tcg::ir::{Block, Temp};
use iced_x86::OpKind;

use super::super::{Ctx, Unsupported};

/// The bitwise operations.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Logic {
    And,
    /// `!dst & src`
    Andn,
    Or,
    Xor,
}

/// A bitwise operation on both halves.
pub(super) fn logic(c: &mut Ctx<'_>, op: Logic) -> Result<(), Unsupported> {
    let d = c.xmm_op(0)?;
    let same = c.i.op_kind(1) == OpKind::Register && c.xmm_op(1)? == d;
    let not_dst = op == Logic::Andn;
    let f: fn(&mut Block, Temp, Temp, Temp) = match op {
        Logic::And | Logic::Andn => Block::and,
        Logic::Or => Block::or,
        Logic::Xor => Block::xor,
    };
    if same && (op == Logic::Xor || not_dst) {
        // xorps x, x and andnps x, x: zero whatever x held.
        let zero = c.k(0);
        c.set_xmm(d, (zero, zero));
        return Ok(());
    }
    let s = c.src128(1, true)?;
    let x = c.xmm(d);
    let mut out = [x.0, x.1];
    for (k, (dv, sv)) in [(x.0, s.0), (x.1, s.1)].into_iter().enumerate() {
        let dv = if not_dst {
            let t = c.t();
            c.b.not(t, dv);
            t
        } else {
            dv
        };
        out[k] = c.op2(f, dv, sv);
    }
    c.set_xmm(d, (out[0], out[1]));
    Ok(())
}

/// paddb/w/d/q and psubb/w/d/q inline, on each 64-bit half as SIMD within
/// a register: `high` has the top bit of every lane (0 for quadwords).
/// Clearing the top bits keeps carries from crossing lanes; the top bits
/// are then put back with xor (Hacker's Delight, 2-18):
/// `add = ((a & !H) + (b & !H)) ^ ((a ^ b) & H)`,
/// `sub = ((a | H) - (b & !H)) ^ ((a ^ !b) & H)`.
pub(super) fn add_sub(c: &mut Ctx<'_>, sub: bool, high: u64) -> Result<(), Unsupported> {
    let d = c.xmm_op(0)?;
    let s = c.src128(1, true)?;
    let x = c.xmm(d);
    let mut out = [x.0, x.1];
    for (k, (a, b)) in [(x.0, s.0), (x.1, s.1)].into_iter().enumerate() {
        out[k] = if high == 0 {
            c.op2(if sub { Block::sub } else { Block::add }, a, b)
        } else if sub {
            let a_h = c.op2i(Block::or, a, high);
            let b_l = c.op2i(Block::and, b, !high);
            let diff = c.op2(Block::sub, a_h, b_l);
            let nb = c.t();
            c.b.not(nb, b);
            let x = c.op2(Block::xor, a, nb);
            let top = c.op2i(Block::and, x, high);
            c.op2(Block::xor, diff, top)
        } else {
            let a_l = c.op2i(Block::and, a, !high);
            let b_l = c.op2i(Block::and, b, !high);
            let sum = c.op2(Block::add, a_l, b_l);
            let x = c.op2(Block::xor, a, b);
            let top = c.op2i(Block::and, x, high);
            c.op2(Block::xor, sum, top)
        };
    }
    c.set_xmm(d, (out[0], out[1]));
    Ok(())
}
