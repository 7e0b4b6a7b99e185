//! Data processing, register: shifted and extended add/sub, logical
//! (shifted register), adc/sbc, conditional compare, conditional select,
//! 1-source (rbit, rev*, clz, cls), 2-source (udiv, sdiv, shifts by
//! register), 3-source (madd, msub, smaddl, smsubl, umaddl, umsubl, smulh,
//! umulh).

use accel_tcg::ir::{Block, Cond, Temp};

use super::{Ctx, Flow, Res, Undef};
use crate::decode::Insn;
use crate::state;

/// Shifts the `sf`-sized `v` by the constant `amount` (`shift`: LSL, LSR,
/// ASR, ROR), truncated.
fn shift_const(c: &mut Ctx<'_>, v: Temp, shift: u32, amount: u32, sf: bool) -> Temp {
    if amount == 0 {
        return v;
    }
    let width = if sf { 64 } else { 32 };
    let k = c.k(u64::from(amount));
    let r = match shift {
        0 => c.bin(Block::shl, v, k),
        1 => c.bin(Block::shr, v, k),
        2 => {
            let s = sign_extend(c, v, sf);
            c.bin(Block::sar, s, k)
        }
        _ => {
            if sf {
                c.bin(Block::rotr, v, k)
            } else {
                let kl = c.k(u64::from(width - amount));
                let lo = c.bin(Block::shr, v, k);
                let hi = c.bin(Block::shl, v, kl);
                c.bin(Block::or, lo, hi)
            }
        }
    };
    c.trunc(r, sf)
}

/// The `sf`-sized `v` sign-extended to 64 bits.
fn sign_extend(c: &mut Ctx<'_>, v: Temp, sf: bool) -> Temp {
    if sf {
        return v;
    }
    let t = c.t();
    c.b.ext32s(t, v);
    t
}

/// `AND`/`BIC`/`ORR`/`ORN`/`EOR`/`EON`/`ANDS`/`BICS` (shifted register):
/// "sf opc 01010 shift N Rm imm6 Rn Rd".
pub fn logic_shifted(c: &mut Ctx<'_>, i: Insn) -> Res {
    let sf = i.sf();
    let amount = i.bits(15, 10);
    if !sf && amount >= 32 {
        return Err(Undef::Unallocated);
    }
    let a = c.x(i.rn(), sf);
    let m = c.x(i.rm(), sf);
    let mut b = shift_const(c, m, i.bits(23, 22), amount, sf);
    if i.bit(21) {
        let t = c.t();
        c.b.not(t, b);
        b = c.trunc(t, sf);
    }
    let opc = i.bits(30, 29);
    let r = match opc {
        0 | 3 => c.bin(Block::and, a, b),
        1 => c.bin(Block::or, a, b),
        _ => c.bin(Block::xor, a, b),
    };
    if opc == 3 {
        c.logic_flags(r, sf);
    }
    c.set_x(i.rd(), r, sf);
    Ok(Flow::Next)
}

/// Add or subtract `a` and `b` (truncated), with flags if `flags`.
fn add_sub(c: &mut Ctx<'_>, a: Temp, b: Temp, sub: bool, flags: bool, sf: bool) -> Temp {
    match (sub, flags) {
        (false, false) => c.bin(Block::add, a, b),
        (true, false) => c.bin(Block::sub, a, b),
        (false, true) => c.add_with_carry(a, b, None, sf),
        (true, true) => c.sub_flags(a, b, sf),
    }
}

/// `ADD`/`ADDS`/`SUB`/`SUBS` (shifted register): "sf op S 01011 shift 0 Rm imm6 Rn Rd".
pub fn add_sub_shifted(c: &mut Ctx<'_>, i: Insn) -> Res {
    let sf = i.sf();
    let shift = i.bits(23, 22);
    let amount = i.bits(15, 10);
    if shift == 3 || (!sf && amount >= 32) {
        return Err(Undef::Unallocated);
    }
    let a = c.x(i.rn(), sf);
    let m = c.x(i.rm(), sf);
    let b = shift_const(c, m, shift, amount, sf);
    let r = add_sub(c, a, b, i.bit(30), i.bit(29), sf);
    c.set_x(i.rd(), r, sf);
    Ok(Flow::Next)
}

/// The Arm ARM's `ExtendReg(m, option, shift)` at 64 bits.
fn extend_reg(c: &mut Ctx<'_>, m: usize, option: u32, shift: u32) -> Temp {
    let v = c.x(m, true);
    let t = c.t();
    match option {
        0 => c.b.ext8u(t, v),
        1 => c.b.ext16u(t, v),
        2 => c.b.ext32u(t, v),
        4 => c.b.ext8s(t, v),
        5 => c.b.ext16s(t, v),
        6 => c.b.ext32s(t, v),
        _ => c.b.mov(t, v),
    }
    if shift == 0 {
        return t;
    }
    let k = c.k(u64::from(shift));
    c.bin(Block::shl, t, k)
}

/// `ADD`/`ADDS`/`SUB`/`SUBS` (extended register): "sf op S 01011 00 1 Rm option imm3 Rn Rd".
pub fn add_sub_extended(c: &mut Ctx<'_>, i: Insn) -> Res {
    let sf = i.sf();
    let shift = i.bits(12, 10);
    if shift > 4 {
        return Err(Undef::Unallocated);
    }
    let a = c.xsp(i.rn(), sf);
    let b = extend_reg(c, i.rm(), i.bits(15, 13), shift);
    let b = c.trunc(b, sf);
    let flags = i.bit(29);
    let r = add_sub(c, a, b, i.bit(30), flags, sf);
    if flags {
        c.set_x(i.rd(), r, sf);
    } else {
        c.set_xsp(i.rd(), r, sf);
    }
    Ok(Flow::Next)
}

/// `ADC`/`ADCS`/`SBC`/`SBCS`: "sf op S 11010000 Rm 000000 Rn Rd".
pub fn adc_sbc(c: &mut Ctx<'_>, i: Insn) -> Res {
    let sf = i.sf();
    let a = c.x(i.rn(), sf);
    let mut b = c.x(i.rm(), sf);
    if i.bit(30) {
        let t = c.t();
        c.b.not(t, b);
        b = c.trunc(t, sf);
    }
    let carry = c.ld(state::CF_OFF);
    let r = if i.bit(29) {
        c.add_with_carry(a, b, Some(carry), sf)
    } else {
        let s = c.bin(Block::add, a, b);
        c.bin(Block::add, s, carry)
    };
    c.set_x(i.rd(), r, sf);
    Ok(Flow::Next)
}

/// `CCMN`/`CCMP` (register and immediate):
/// "sf op 1 11010010 Rm|imm5 cond imm 0 Rn 0 nzcv".
pub fn cond_compare(c: &mut Ctx<'_>, i: Insn) -> Res {
    let sf = i.sf();
    let holds = c.cond(i.bits(15, 12));
    let skip = c.b.label();
    let done = c.b.label();
    let zero = c.k(0);
    c.b.brcond(holds, zero, Cond::Eq, skip);
    let a = c.x(i.rn(), sf);
    let b = if i.bit(11) {
        c.k(u64::from(i.bits(20, 16)))
    } else {
        c.x(i.rm(), sf)
    };
    if i.bit(30) {
        c.sub_flags(a, b, sf);
    } else {
        c.add_with_carry(a, b, None, sf);
    }
    c.b.br(done);
    c.b.set_label(skip);
    let nzcv = i.bits(3, 0);
    let n = c.k(if nzcv & 8 != 0 { 1 << 63 } else { 0 });
    let z = c.k(u64::from(nzcv & 4 == 0));
    let cf = c.k(u64::from(nzcv & 2 != 0));
    let v = c.k(if nzcv & 1 != 0 { 1 << 63 } else { 0 });
    c.st(state::NF_OFF, n);
    c.st(state::ZF_OFF, z);
    c.st(state::CF_OFF, cf);
    c.st(state::VF_OFF, v);
    c.b.set_label(done);
    Ok(Flow::Next)
}

/// `CSEL`/`CSINC`/`CSINV`/`CSNEG`: "sf op 0 11010100 Rm cond 0 o2 Rn Rd".
pub fn cond_select(c: &mut Ctx<'_>, i: Insn) -> Res {
    let sf = i.sf();
    let holds = c.cond(i.bits(15, 12));
    let a = c.x(i.rn(), sf);
    let m = c.x(i.rm(), sf);
    let b = match (i.bit(30), i.bit(10)) {
        (false, false) => m,
        (false, true) => {
            let one = c.k(1);
            c.bin(Block::add, m, one)
        }
        (true, false) => {
            let t = c.t();
            c.b.not(t, m);
            t
        }
        (true, true) => {
            let t = c.t();
            c.b.neg(t, m);
            t
        }
    };
    let zero = c.k(0);
    let r = c.t();
    c.b.movcond(r, holds, zero, a, b, Cond::Ne);
    c.set_x(i.rd(), r, sf);
    Ok(Flow::Next)
}

/// Reverses the bytes within each `chunk`-byte container of the `sf`-sized `v`.
fn rev_chunks(c: &mut Ctx<'_>, v: Temp, chunk: u32, sf: bool) -> Temp {
    let t = c.t();
    match (chunk, sf) {
        (8, _) => c.b.bswap64(t, v),
        (4, false) => c.b.bswap32(t, v),
        (4, true) => {
            // Swap each 32-bit half: byte-swap the whole and swap halves.
            c.b.bswap64(t, v);
            let k = c.k(32);
            return c.bin(Block::rotr, t, k);
        }
        _ => {
            // REV16: swap the bytes of every halfword.
            let m = c.k(0x00ff_00ff_00ff_00ff);
            let k8 = c.k(8);
            let lo = c.bin(Block::and, v, m);
            let lo = c.bin(Block::shl, lo, k8);
            let hi = c.bin(Block::shr, v, k8);
            let hi = c.bin(Block::and, hi, m);
            let r = c.bin(Block::or, lo, hi);
            return c.trunc(r, sf);
        }
    }
    t
}

/// Reverses the bit order of the `sf`-sized `v`.
fn rbit(c: &mut Ctx<'_>, v: Temp, sf: bool) -> Temp {
    let mut x = v;
    for (shift, mask) in [
        (1u64, 0x5555_5555_5555_5555u64),
        (2, 0x3333_3333_3333_3333),
        (4, 0x0f0f_0f0f_0f0f_0f0f),
    ] {
        let m = c.k(mask);
        let k = c.k(shift);
        let lo = c.bin(Block::and, x, m);
        let lo = c.bin(Block::shl, lo, k);
        let hi = c.bin(Block::shr, x, k);
        let hi = c.bin(Block::and, hi, m);
        x = c.bin(Block::or, lo, hi);
    }
    let t = c.t();
    c.b.bswap64(t, x);
    if sf {
        t
    } else {
        let k = c.k(32);
        c.bin(Block::shr, t, k)
    }
}

/// `RBIT`/`REV16`/`REV32`/`REV`/`CLZ`/`CLS`: "sf 1 0 11010110 00000 opcode Rn Rd".
pub fn one_source(c: &mut Ctx<'_>, i: Insn) -> Res {
    let sf = i.sf();
    let op = i.bits(15, 10);
    let v = c.x(i.rn(), sf);
    let r = match (op, sf) {
        (0, _) => rbit(c, v, sf),
        (1, _) => rev_chunks(c, v, 2, sf),
        (2, false) => rev_chunks(c, v, 4, false),
        (2, true) => rev_chunks(c, v, 4, true),
        (3, true) => rev_chunks(c, v, 8, true),
        (4, _) => clz(c, v, sf),
        (5, _) => {
            // CLS(x) = CLZ(x ^ (x >> 1) with the top bit cleared) - 1, i.e.
            // CLZ((x ^ sign_extend(x) >> 1) << 1 | 1) in the operand width.
            let s = sign_extend(c, v, sf);
            let one = c.k(1);
            let sh = c.bin(Block::sar, s, one);
            let x = c.bin(Block::xor, s, sh);
            let x = c.trunc(x, sf);
            let n = clz(c, x, sf);
            c.bin(Block::sub, n, one)
        }
        _ => return Err(Undef::Unallocated),
    };
    c.set_x(i.rd(), r, sf);
    Ok(Flow::Next)
}

/// Leading zeros of the `sf`-sized `v`.
fn clz(c: &mut Ctx<'_>, v: Temp, sf: bool) -> Temp {
    let t = c.t();
    c.b.clz(t, v);
    if sf {
        t
    } else {
        let k = c.k(32);
        c.bin(Block::sub, t, k)
    }
}

/// `UDIV`/`SDIV`/`LSLV`/`LSRV`/`ASRV`/`RORV`: "sf 0 0 11010110 Rm opcode Rn Rd".
pub fn two_source(c: &mut Ctx<'_>, i: Insn) -> Res {
    let sf = i.sf();
    let op = i.bits(15, 10);
    let a = c.x(i.rn(), sf);
    let b = c.x(i.rm(), sf);
    let r = match op {
        2 => c.bin(Block::divu, a, b),
        3 => {
            // Signed division at the operand width: the IR's divs gives 0
            // for division by zero and MIN for MIN / -1, as A64 does.
            let sa = sign_extend(c, a, sf);
            let sb = sign_extend(c, b, sf);
            c.bin(Block::divs, sa, sb)
        }
        8..=11 => {
            let width = if sf { 63 } else { 31 };
            let m = c.k(width);
            let amount = c.bin(Block::and, b, m);
            let sh = op - 8;
            if sh == 3 && !sf {
                let k32 = c.k(32);
                let back = c.bin(Block::sub, k32, amount);
                let lo = c.bin(Block::shr, a, amount);
                let hi = c.bin(Block::shl, a, back);
                // amount == 0 shifts hi by 32: still correct after truncation.
                let r = c.bin(Block::or, lo, hi);
                c.trunc(r, false)
            } else {
                match sh {
                    0 => c.bin(Block::shl, a, amount),
                    1 => c.bin(Block::shr, a, amount),
                    2 => {
                        let s = sign_extend(c, a, sf);
                        c.bin(Block::sar, s, amount)
                    }
                    _ => c.bin(Block::rotr, a, amount),
                }
            }
        }
        // CRC32 (optional before Armv8.1) and PAC: not implemented.
        16..=23 => return Err(Undef::NotImplemented),
        _ => return Err(Undef::Unallocated),
    };
    c.set_x(i.rd(), r, sf);
    Ok(Flow::Next)
}

/// `MADD`/`MSUB`/`SMADDL`/`SMSUBL`/`SMULH`/`UMADDL`/`UMSUBL`/`UMULH`:
/// "sf 00 11011 op31 Rm o0 Ra Rn Rd".
pub fn three_source(c: &mut Ctx<'_>, i: Insn) -> Res {
    let sf = i.sf();
    let op31 = i.bits(23, 21);
    let o0 = i.bit(15);
    let r = match (op31, sf) {
        (0, _) => {
            let a = c.x(i.rn(), sf);
            let b = c.x(i.rm(), sf);
            let acc = c.x(i.ra(), sf);
            let p = c.bin(Block::mul, a, b);
            if o0 {
                c.bin(Block::sub, acc, p)
            } else {
                c.bin(Block::add, acc, p)
            }
        }
        (1 | 5, true) => {
            let a = c.x(i.rn(), false);
            let b = c.x(i.rm(), false);
            let (a, b) = if op31 == 1 {
                (sign_extend(c, a, false), sign_extend(c, b, false))
            } else {
                (a, b)
            };
            let acc = c.x(i.ra(), true);
            let p = c.bin(Block::mul, a, b);
            if o0 {
                c.bin(Block::sub, acc, p)
            } else {
                c.bin(Block::add, acc, p)
            }
        }
        (2 | 6, true) if !o0 => {
            let a = c.x(i.rn(), true);
            let b = c.x(i.rm(), true);
            if op31 == 2 {
                c.bin(Block::mulsh, a, b)
            } else {
                c.bin(Block::muluh, a, b)
            }
        }
        _ => return Err(Undef::Unallocated),
    };
    c.set_x(i.rd(), r, sf);
    Ok(Flow::Next)
}
