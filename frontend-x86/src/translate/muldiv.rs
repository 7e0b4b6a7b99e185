//! Multiplication and division.
//!
//! Products are formed inline (64-bit operands with `muluh`/`mulsh` for the
//! high half). Division runs in [`helper_div`], which reads and writes
//! rax/rdx in the CPU state and raises #DE (divide by zero, quotient too
//! large) before changing anything, so the fault is precise.

use accel_tcg::ir::{Block, Cond};

use super::{Ctx, Flow, H, Res, Unsupported};
use crate::flags::{CcOp, kind};
use crate::state::X86State;

/// mul, imul (one, two and three operands).
pub fn mul(c: &mut Ctx<'_>, signed: bool) -> Res {
    let i = c.i;
    if i.op_count() == 1 {
        return mul_acc(c, signed);
    }
    let bytes = c.op_size(0);
    let (a, b) = if i.op_count() == 2 {
        (c.read_op(0, bytes)?, c.read_op(1, bytes)?)
    } else {
        (c.read_op(1, bytes)?, c.read_op(2, bytes)?)
    };
    let (low, ovf) = product(c, a, b, bytes, true);
    let Some(n) = super::alu::reg_of(c, 0) else {
        return Err(Unsupported);
    };
    c.write_reg(n, bytes, false, low.0);
    c.set_cc(CcOp::new(kind::MUL, bytes), low.0, Some(ovf), None);
    Ok(Flow::Next)
}

/// `(low, high)` halves of `a * b` and an overflow indicator (nonzero when
/// the high half is not the extension of the low half).
fn product(
    c: &mut Ctx<'_>,
    a: accel_tcg::ir::Temp,
    b: accel_tcg::ir::Temp,
    bytes: u32,
    signed: bool,
) -> (
    (accel_tcg::ir::Temp, accel_tcg::ir::Temp),
    accel_tcg::ir::Temp,
) {
    if bytes == 8 {
        let low = c.op2(Block::mul, a, b);
        let high = c.op2(if signed { Block::mulsh } else { Block::muluh }, a, b);
        let ovf = if signed {
            let s = c.op2i(Block::sar, low, 63);
            let d = c.t();
            c.b.setcond(d, high, s, Cond::Ne);
            d
        } else {
            high
        };
        return ((low, high), ovf);
    }
    let bits = bytes as u64 * 8;
    let (x, y) = if signed {
        (c.sext(a, bytes), c.sext(b, bytes))
    } else {
        (a, b)
    };
    let p = c.op2(Block::mul, x, y);
    let low = c.zext(p, bytes);
    let hs = c.op2i(if signed { Block::sar } else { Block::shr }, p, bits);
    let high = c.zext(hs, bytes);
    let ovf = if signed {
        let s = c.sext(low, bytes);
        let d = c.t();
        c.b.setcond(d, p, s, Cond::Ne);
        d
    } else {
        high
    };
    ((low, high), ovf)
}

/// One-operand mul/imul: the accumulator times the operand into
/// ax, dx:ax, edx:eax or rdx:rax.
fn mul_acc(c: &mut Ctx<'_>, signed: bool) -> Res {
    let bytes = c.op_size(0);
    let b = c.read_op(0, bytes)?;
    let a = c.read_reg(0, bytes, false);
    let ((low, high), ovf) = product(c, a, b, bytes, signed);
    if bytes == 1 {
        let h = c.op2i(Block::shl, high, 8);
        let ax = c.op2(Block::or, h, low);
        c.write_reg(0, 2, false, ax);
    } else {
        c.write_reg(0, bytes, false, low);
        c.write_reg(2, bytes, false, high);
    }
    c.set_cc(CcOp::new(kind::MUL, bytes), low, Some(ovf), None);
    Ok(Flow::Next)
}

/// div, idiv through [`helper_div`]. The flags are undefined afterwards;
/// moat leaves them as they were.
pub fn div(c: &mut Ctx<'_>, signed: bool) -> Res {
    let bytes = c.op_size(0);
    let d = c.read_op(0, bytes)?;
    let sel = c.k(bytes as u64 | (signed as u64) << 8);
    let h = c.helper(H::Div);
    c.b.call_helper(None, h, &[sel, d]);
    c.cc = super::Cc::Unknown;
    Ok(Flow::Next)
}

/// `helper_exit` code for a #DE raised by [`helper_div`]: exception vector + 1.
pub const HELPER_EXIT_DE: u32 = 1;

/// Divides rdx:rax (or its narrower forms) by `divisor`.
/// `sel`: operand bytes in bits 0-7, signed in bit 8.
pub extern "C" fn helper_div(env: *mut u8, sel: u64, divisor: u64) -> u64 {
    // SAFETY: translated code passes its CPU-state pointer, which points to
    // the X86State it was translated for and is not otherwise borrowed while
    // the helper runs.
    let s = unsafe { &mut *(env as *mut X86State) };
    let bytes = (sel & 0xff) as u32;
    let signed = sel & (1 << 8) != 0;
    match div_regs(s.regs[0], s.regs[2], divisor, bytes, signed) {
        Some((rax, rdx)) => {
            s.regs[0] = rax;
            s.regs[2] = rdx;
        }
        None => s.header.helper_exit = HELPER_EXIT_DE,
    }
    0
}

/// The new (rax, rdx) after a division, or `None` for #DE.
pub fn div_regs(rax: u64, rdx: u64, divisor: u64, bytes: u32, signed: bool) -> Option<(u64, u64)> {
    let bits = bytes * 8;
    let m = crate::flags::mask(bits);
    let merge = |old: u64, v: u64| {
        if bytes == 4 {
            v & m
        } else {
            (old & !m) | (v & m)
        }
    };
    let d = divisor & m;
    if d == 0 {
        return None;
    }
    // The dividend: ax for bytes == 1, else dx:ax of the operand size.
    let dividend: u128 = if bytes == 1 {
        (rax & 0xffff) as u128
    } else {
        (((rdx & m) as u128) << bits) | (rax & m) as u128
    };
    let (q, r) = if signed {
        let total = bits * 2;
        let sx = |v: u128, w: u32| ((v << (128 - w)) as i128) >> (128 - w);
        let n = sx(dividend, total);
        let dv = sx(d as u128, bits);
        let q = n.checked_div(dv)?;
        let r = n.checked_rem(dv)?;
        let lim = 1i128 << (bits - 1);
        if q < -lim || q >= lim {
            return None;
        }
        (q as u128 as u64 & m, r as u128 as u64 & m)
    } else {
        let q = dividend / d as u128;
        let r = dividend % d as u128;
        if q > m as u128 {
            return None;
        }
        (q as u64, r as u64)
    };
    if bytes == 1 {
        let ax = q | (r << 8);
        return Some(((rax & !0xffff) | ax, rdx));
    }
    Some((merge(rax, q), merge(rdx, r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn division_cases() {
        assert_eq!(div_regs(100, 0, 7, 8, false), Some((14, 2)));
        assert_eq!(div_regs(0, 1, 1, 8, false), None); // quotient overflow
        assert_eq!(div_regs(5, 0, 0, 4, false), None);
        assert_eq!(
            div_regs((-7i64) as u64, u64::MAX, 2, 8, true),
            Some(((-3i64) as u64, (-1i64) as u64))
        );
        // idiv of -128 by -1 in 8 bits overflows
        assert_eq!(div_regs(0xff80, 0, 0xff, 1, true), None);
        // 16-bit: dx:ax = 0x0001_0000 / 2 = 0x8000 r 0
        assert_eq!(
            div_regs(0xdead_0000, 0xbeef_0001, 2, 2, false),
            Some((0xdead_8000, 0xbeef_0000))
        );
        // 32-bit results zero-extend
        assert_eq!(
            div_regs(0xffff_ffff_0000_0010, 0xffff_ffff_0000_0000, 3, 4, false),
            Some((5, 1))
        );
    }
}
