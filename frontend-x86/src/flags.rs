//! Lazy condition codes: what each [`CcOp`] stores and how the flags are
//! rebuilt from it.
//!
//! A flag-setting instruction stores `cc_op` (the operation and its operand
//! size), `cc_dst` (the result, zero-extended), `cc_src` and `cc_src2`, whose
//! meaning depends on the operation (table below). [`compute`] turns the four
//! back into the six arithmetic flags; it is also the pure helper translated
//! code calls when it does not know the operation at translation time.
//!
//! | op      | `cc_src`                         | `cc_src2`      |
//! |---------|----------------------------------|----------------|
//! | EFLAGS  | the flags themselves             | -              |
//! | ADD     | second operand                   | -              |
//! | ADC     | second operand                   | carry in (0/1) |
//! | SUB     | second operand (subtrahend)      | -              |
//! | SBB     | second operand                   | borrow in      |
//! | LOGIC   | -                                | -              |
//! | INC/DEC | the preserved CF (0/1)           | -              |
//! | SHL     | operand shifted by `count - 1`   | -              |
//! | SAR     | operand shifted by `count - 1`   | -              |
//! | MUL     | nonzero if the high half matters | -              |
//!
//! `SAR` serves `shr` too: the overflow flag is the top bit of
//! `cc_src ^ cc_dst`, which for a count of one is the operand's top bit for
//! `shr` and zero for `sar`, as the manual says (other counts leave OF
//! undefined). Flags the manual leaves undefined are computed in a fixed,
//! documented way: AF is 0 after logic ops, shifts and multiplies; SF, ZF
//! and PF follow the low half of a product.

use crate::state::rflags::{AF, CF, OF, PF, SF, ZF};

/// An operation kind with its operand size: `kind << 2 | log2(bytes)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CcOp(pub u64);

/// Operation kinds.
#[allow(missing_docs)]
pub mod kind {
    pub const EFLAGS: u64 = 0;
    pub const ADD: u64 = 1;
    pub const ADC: u64 = 2;
    pub const SUB: u64 = 3;
    pub const SBB: u64 = 4;
    pub const LOGIC: u64 = 5;
    pub const INC: u64 = 6;
    pub const DEC: u64 = 7;
    pub const SHL: u64 = 8;
    pub const SAR: u64 = 9;
    pub const MUL: u64 = 10;
}

impl CcOp {
    /// Flags stored verbatim in `cc_src`.
    pub const EFLAGS: CcOp = CcOp(0);

    /// `kind` on operands of `bytes` (1, 2, 4 or 8) bytes.
    pub const fn new(kind: u64, bytes: u32) -> CcOp {
        CcOp(kind << 2 | bytes.trailing_zeros() as u64)
    }

    /// The operation kind.
    pub const fn kind(self) -> u64 {
        self.0 >> 2
    }

    /// Operand size in bits.
    pub const fn bits(self) -> u32 {
        8 << (self.0 & 3)
    }
}

/// Mask of an operand of `bits` bits.
pub const fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// PF for a result: set when its low byte has an even number of ones.
pub const fn parity(res: u64) -> u64 {
    if (res as u8).count_ones().is_multiple_of(2) {
        PF
    } else {
        0
    }
}

/// The six arithmetic flags for a lazy flags state.
pub fn compute(cc_op: u64, dst: u64, src: u64, src2: u64) -> u64 {
    let op = CcOp(cc_op);
    let bits = op.bits();
    let m = mask(bits);
    let sign = 1u64 << (bits - 1);
    let res = dst & m;
    let b = src & m;
    let szp = |r: u64| -> u64 {
        (if r == 0 { ZF } else { 0 }) | (if r & sign != 0 { SF } else { 0 }) | parity(r)
    };
    let flag = |c: bool, f: u64| if c { f } else { 0 };
    match op.kind() {
        kind::ADD | kind::ADC => {
            let c = if op.kind() == kind::ADC { src2 & 1 } else { 0 };
            let a = res.wrapping_sub(b).wrapping_sub(c) & m;
            let cf = if c != 0 { res <= b } else { res < b };
            szp(res)
                | flag(cf, CF)
                | flag((a ^ res) & (b ^ res) & sign != 0, OF)
                | flag((a ^ b ^ res) & 0x10 != 0, AF)
        }
        kind::SUB | kind::SBB => {
            let c = if op.kind() == kind::SBB { src2 & 1 } else { 0 };
            let a = res.wrapping_add(b).wrapping_add(c) & m;
            let cf = if c != 0 { a <= b } else { a < b };
            szp(res)
                | flag(cf, CF)
                | flag((a ^ b) & (a ^ res) & sign != 0, OF)
                | flag((a ^ b ^ res) & 0x10 != 0, AF)
        }
        kind::LOGIC => szp(res),
        kind::INC => {
            szp(res) | flag(src & 1 != 0, CF) | flag(res == sign, OF) | flag(res & 0xf == 0, AF)
        }
        kind::DEC => {
            szp(res)
                | flag(src & 1 != 0, CF)
                | flag(res == sign - 1, OF)
                | flag(res & 0xf == 0xf, AF)
        }
        kind::SHL => {
            let cf = b & sign != 0;
            szp(res) | flag(cf, CF) | flag(cf != (res & sign != 0), OF)
        }
        kind::SAR => szp(res) | flag(b & 1 != 0, CF) | flag((b ^ res) & sign != 0, OF),
        kind::MUL => szp(res) | flag(src != 0, CF | OF),
        _ => src & (CF | PF | AF | ZF | SF | OF),
    }
}

/// [`compute`] as a pure helper for translated code.
pub extern "C" fn helper_compute(_env: *mut u8, op: u64, dst: u64, src: u64, src2: u64) -> u64 {
    compute(op, dst, src, src2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_sub_edges() {
        let add8 = CcOp::new(kind::ADD, 1).0;
        // 0x7f + 1 = 0x80: OF, SF, AF
        assert_eq!(compute(add8, 0x80, 1, 0), OF | SF | AF);
        // 0xff + 1 = 0: CF, ZF, PF, AF
        assert_eq!(compute(add8, 0, 1, 0), CF | ZF | PF | AF);
        let sub32 = CcOp::new(kind::SUB, 4).0;
        // 0 - 1 = 0xffffffff: CF, SF, PF, AF
        assert_eq!(compute(sub32, 0xffff_ffff, 1, 0), CF | SF | PF | AF);
        let sbb64 = CcOp::new(kind::SBB, 8).0;
        // 5 - 5 - 1 = -1 with borrow
        assert_eq!(compute(sbb64, u64::MAX, 5, 1) & (CF | ZF | SF), CF | SF);
        let adc16 = CcOp::new(kind::ADC, 2).0;
        // 0xffff + 0 + 1 = 0 with carry
        assert_eq!(compute(adc16, 0, 0, 1) & (CF | ZF), CF | ZF);
    }
}
