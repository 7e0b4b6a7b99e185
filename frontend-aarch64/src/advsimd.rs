//! Scalar floating point and Advanced SIMD data processing, executed in
//! Rust.
//!
//! Translated code calls [`helper_fpsimd`] with the instruction word; the
//! helper decodes it by the Arm ARM's encoding groups and runs it against
//! [`A64State`] (`v`, FPCR, FPSR, NZCV for the compares). Exactness first:
//! every FP operation goes through [`crate::fpu::Fpu`], integer lanes are
//! plain Rust per element. A reserved encoding makes the helper ask for
//! Undefined Instruction (`helper_exit`) before it changes any state.

use crate::fpu::{Fmt, Fpu, Op, Round, fpsr};
use crate::state::A64State;

/// `helper_exit` code: the word is unallocated (Undefined Instruction).
pub const EXIT_UNDEF: u32 = 1;

/// Runs FP/SIMD data-processing instruction `word`.
pub extern "C" fn helper_fpsimd(env: *mut u8, word: u64) -> u64 {
    // SAFETY: translated code passes its CPU-state pointer, an A64State not
    // otherwise borrowed while the helper runs.
    let s = unsafe { &mut *(env as *mut A64State) };
    if execute(s, word as u32).is_none() {
        s.header.helper_exit = EXIT_UNDEF;
    }
    0
}

/// Register `n` as a 128-bit value.
pub fn vreg(s: &A64State, n: usize) -> u128 {
    let [lo, hi] = s.v[n & 31];
    u128::from(lo) | (u128::from(hi) << 64)
}

/// Writes register `n`.
pub fn set_vreg(s: &mut A64State, n: usize, v: u128) {
    s.v[n & 31] = [v as u64, (v >> 64) as u64];
}

/// Element `i` of `esize` bits.
pub fn elem(v: u128, esize: u32, i: u32) -> u64 {
    let m = if esize == 64 {
        u64::MAX
    } else {
        (1u64 << esize) - 1
    };
    ((v >> (i * esize)) as u64) & m
}

/// Sets element `i`.
pub fn set_elem(v: &mut u128, esize: u32, i: u32, x: u64) {
    let m: u128 = if esize == 64 {
        u64::MAX as u128
    } else {
        (1u128 << esize) - 1
    };
    let sh = i * esize;
    *v = (*v & !(m << sh)) | ((u128::from(x) & m) << sh);
}

fn sext(x: u64, bits: u32) -> i64 {
    ((x << (64 - bits)) as i64) >> (64 - bits)
}

fn mask(bits: u32) -> u64 {
    if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    }
}

fn fmt_of_type(t: u32) -> Option<Fmt> {
    match t {
        0 => Some(Fmt::S),
        1 => Some(Fmt::D),
        3 => Some(Fmt::H),
        _ => None,
    }
}

struct X<'a> {
    s: &'a mut A64State,
    fp: Fpu,
    w: u32,
}

impl X<'_> {
    fn bits(&self, hi: u32, lo: u32) -> u32 {
        (self.w >> lo) & (u32::MAX >> (31 - (hi - lo)))
    }
    fn bit(&self, n: u32) -> bool {
        (self.w >> n) & 1 != 0
    }
    fn rd(&self) -> usize {
        self.bits(4, 0) as usize
    }
    fn rn(&self) -> usize {
        self.bits(9, 5) as usize
    }
    fn rm(&self) -> usize {
        self.bits(20, 16) as usize
    }
    fn ra(&self) -> usize {
        self.bits(14, 10) as usize
    }
    fn v(&self, n: usize) -> u128 {
        vreg(self.s, n)
    }
    fn set_v(&mut self, n: usize, v: u128) {
        set_vreg(self.s, n, v)
    }
    /// A scalar operand of `fmt`.
    fn sc(&self, fmt: Fmt, n: usize) -> u64 {
        (self.v(n) as u64) & fmt.mask()
    }
    /// Writes a scalar, clearing the rest of the register.
    fn set_sc(&mut self, n: usize, x: u64) {
        self.set_v(n, u128::from(x));
    }
    fn x(&self, n: usize) -> u64 {
        if n == 31 { 0 } else { self.s.x[n] }
    }
    fn set_x(&mut self, n: usize, v: u64, sf: bool) {
        if n < 31 {
            self.s.x[n] = if sf { v } else { v & 0xffff_ffff };
        }
    }
    fn cond(&self, cc: u32) -> bool {
        let nzcv = self.s.nzcv();
        let (n, z, c, v) = (
            nzcv >> 31 & 1 != 0,
            nzcv >> 30 & 1 != 0,
            nzcv >> 29 & 1 != 0,
            nzcv >> 28 & 1 != 0,
        );
        let r = match cc >> 1 {
            0 => z,
            1 => c,
            2 => n,
            3 => v,
            4 => c && !z,
            5 => n == v,
            6 => n == v && !z,
            _ => true,
        };
        if cc & 1 != 0 && cc != 15 { !r } else { r }
    }
    fn set_nzcv(&mut self, f: u32) {
        self.s.set_nzcv(u64::from(f) << 28);
    }
}

/// Executes `word`; `None` if it is unallocated (nothing changed).
pub fn execute(s: &mut A64State, word: u32) -> Option<()> {
    let fpcr = s.fpcr as u32;
    let mut x = X {
        s,
        fp: Fpu::new(fpcr),
        w: word,
    };
    let r = dispatch(&mut x);
    if r.is_some() {
        x.s.fpsr |= u64::from(x.fp.flags);
    }
    r
}

fn dispatch(x: &mut X<'_>) -> Option<()> {
    let w = x.w;
    if w & 0x5f00_0000 == 0x1e00_0000 {
        // Scalar FP (bit 31 is sf for the conversions, M = 0 otherwise).
        if w & 0x2000_0000 != 0 {
            return None;
        }
        return fp_scalar(x);
    }
    if w & 0x5f00_0000 == 0x1f00_0000 {
        // FP data processing (3 source) needs M = 0 and S = 0 (bits 31, 29).
        if w & 0xa000_0000 != 0 {
            return None;
        }
        return fp_3src(x);
    }
    if w & 0x8000_0000 != 0 {
        return None;
    }
    let scalar = x.bit(28);
    if scalar {
        return simd_scalar(x);
    }
    // Vector groups: bits 28:24.
    match x.bits(28, 24) {
        0b01110 => {
            if x.bit(21) {
                match x.bits(11, 10) {
                    0b00 => three_diff(x),
                    0b10 if x.bits(20, 17) == 0b0000 => two_misc(x),
                    0b10 if x.bits(20, 17) == 0b1000 => across(x),
                    0b01 | 0b11 => three_same(x),
                    _ => None,
                }
            } else if x.bits(23, 21) == 0b000 && x.bit(10) && !x.bit(15) {
                copy(x)
            } else if !x.bit(10) && !x.bit(15) && x.bits(11, 10) == 0b10 && !x.bit(29) {
                permute(x)
            } else if !x.bit(10) && !x.bit(15) && x.bit(29) && x.bits(23, 22) == 0 {
                ext(x)
            } else if !x.bit(21)
                && x.bits(11, 10) == 0b00
                && !x.bit(15)
                && !x.bit(29)
                && x.bits(23, 22) == 0
            {
                table(x)
            } else {
                None
            }
        }
        0b01111 => {
            if x.bit(10) && x.bits(23, 19) == 0 {
                mod_imm(x)
            } else if x.bit(10) && !x.bit(23) {
                shift_imm(x)
            } else if x.bit(10) {
                // Bit 23 set with bit 10 set: neither shift by immediate
                // nor modified immediate (both need it clear), unallocated.
                None
            } else {
                by_element(x)
            }
        }
        _ => None,
    }
}

// ---- Scalar floating point ----------------------------------------------

fn fp_scalar(x: &mut X<'_>) -> Option<()> {
    let ftype = x.bits(23, 22);
    if !x.bit(21) {
        return fp_fixed(x);
    }
    let is_int_conv = x.bits(15, 10) == 0;
    if x.bit(31) && !is_int_conv {
        return None;
    }
    match x.bits(11, 10) {
        0b01 => {
            let fmt = fmt_of_type(ftype).filter(|f| *f != Fmt::H)?;
            let (a, b) = (x.sc(fmt, x.rn()), x.sc(fmt, x.rm()));
            let nzcv = if x.cond(x.bits(15, 12)) {
                x.fp.compare(fmt, a, b, x.bit(4))
            } else {
                x.bits(3, 0)
            };
            x.set_nzcv(nzcv);
            Some(())
        }
        0b10 => {
            let fmt = fmt_of_type(ftype).filter(|f| *f != Fmt::H)?;
            let (a, b) = (x.sc(fmt, x.rn()), x.sc(fmt, x.rm()));
            let r = match x.bits(15, 12) {
                0 => x.fp.arith(Op::Mul, fmt, a, b),
                1 => x.fp.arith(Op::Div, fmt, a, b),
                2 => x.fp.arith(Op::Add, fmt, a, b),
                3 => x.fp.arith(Op::Sub, fmt, a, b),
                4 => x.fp.minmax(fmt, a, b, true, false),
                5 => x.fp.minmax(fmt, a, b, false, false),
                6 => x.fp.minmax(fmt, a, b, true, true),
                7 => x.fp.minmax(fmt, a, b, false, true),
                8 => x.fp.arith(Op::Mul, fmt, a, b) ^ fmt.sign(),
                _ => return None,
            };
            x.set_sc(x.rd(), r);
            Some(())
        }
        0b11 => {
            let fmt = fmt_of_type(ftype).filter(|f| *f != Fmt::H)?;
            let src = if x.cond(x.bits(15, 12)) {
                x.rn()
            } else {
                x.rm()
            };
            let v = x.sc(fmt, src);
            x.set_sc(x.rd(), v);
            Some(())
        }
        _ => {
            if x.bit(12) {
                // FMOV (immediate).
                if x.bits(9, 5) != 0 {
                    return None;
                }
                let fmt = fmt_of_type(ftype).filter(|f| *f != Fmt::H)?;
                let v = expand_imm(fmt, x.bits(20, 13));
                x.set_sc(x.rd(), v);
                Some(())
            } else if x.bits(13, 12) == 0b10 {
                if x.bits(15, 14) != 0 || x.bits(2, 0) != 0 {
                    return None;
                }
                let fmt = fmt_of_type(ftype).filter(|f| *f != Fmt::H)?;
                let a = x.sc(fmt, x.rn());
                let b = if x.bit(3) { 0 } else { x.sc(fmt, x.rm()) };
                let nzcv = x.fp.compare(fmt, a, b, x.bit(4));
                x.set_nzcv(nzcv);
                Some(())
            } else if x.bits(14, 10) == 0b10000 {
                fp_1src(x, ftype)
            } else if x.bits(15, 10) == 0 {
                fp_int(x)
            } else {
                None
            }
        }
    }
}

/// `VFPExpandImm`.
pub fn expand_imm(fmt: Fmt, imm8: u32) -> u64 {
    let e = fmt.ebits();
    let f = fmt.fbits();
    let sign = u64::from(imm8 >> 7);
    let b6 = u64::from((imm8 >> 6) & 1);
    let exp = ((b6 ^ 1) << (e - 1))
        | (if b6 != 0 {
            ((1 << (e - 3)) - 1) << 2
        } else {
            0
        })
        | u64::from((imm8 >> 4) & 3);
    let frac = u64::from(imm8 & 0xf) << (f - 4);
    (sign << (e + f)) | (exp << f) | frac
}

fn fp_1src(x: &mut X<'_>, ftype: u32) -> Option<()> {
    let opc = x.bits(20, 15);
    let fmt = fmt_of_type(ftype)?;
    if opc & 0b111100 == 0b000100 {
        let to = fmt_of_type(opc & 3)?;
        if to == fmt {
            return None;
        }
        let a = x.sc(fmt, x.rn());
        let r = x.fp.convert(fmt, to, a);
        x.set_sc(x.rd(), r);
        return Some(());
    }
    if fmt == Fmt::H {
        return None;
    }
    let a = x.sc(fmt, x.rn());
    let mode = x.fp.mode();
    let r = match opc {
        0 => a,
        1 => a & !fmt.sign(),
        2 => a ^ fmt.sign(),
        3 => x.fp.sqrt(fmt, a),
        8 => x.fp.round_int(fmt, a, Round::Nearest, false),
        9 => x.fp.round_int(fmt, a, Round::PlusInf, false),
        10 => x.fp.round_int(fmt, a, Round::MinusInf, false),
        11 => x.fp.round_int(fmt, a, Round::Zero, false),
        12 => x.fp.round_int(fmt, a, Round::TiesAway, false),
        14 => x.fp.round_int(fmt, a, mode, true),
        15 => x.fp.round_int(fmt, a, mode, false),
        _ => return None,
    };
    x.set_sc(x.rd(), r);
    Some(())
}

fn fp_int(x: &mut X<'_>) -> Option<()> {
    let sf = x.bit(31);
    let ftype = x.bits(23, 22);
    let rmode = x.bits(20, 19);
    let opc = x.bits(18, 16);
    let bits = if sf { 64 } else { 32 };
    match (rmode, opc) {
        (_, 0 | 1) | (0, 4 | 5) => {
            let fmt = fmt_of_type(ftype).filter(|f| *f != Fmt::H)?;
            let mode = if opc >= 4 {
                Round::TiesAway
            } else {
                Round::from_rmode(rmode)
            };
            let a = x.sc(fmt, x.rn());
            let r = x.fp.to_fixed(fmt, a, 0, opc & 1 != 0, bits, mode);
            x.set_x(x.rd(), r, sf);
        }
        (0, 2 | 3) => {
            let fmt = fmt_of_type(ftype).filter(|f| *f != Fmt::H)?;
            let v = x.x(x.rn());
            let mode = x.fp.mode();
            let r = x.fp.from_fixed(fmt, v, 0, opc == 3, bits, mode);
            x.set_sc(x.rd(), r);
        }
        (_, 6 | 7) => {
            let to_fp = opc == 7;
            match (sf, ftype, rmode) {
                (false, 0, 0) | (true, 1, 0) => {
                    if to_fp {
                        let v = x.x(x.rn()) & mask(bits);
                        x.set_sc(x.rd(), v);
                    } else {
                        let v = x.v(x.rn()) as u64;
                        x.set_x(x.rd(), v, sf);
                    }
                }
                (true, 2, 1) => {
                    if to_fp {
                        let mut v = x.v(x.rd());
                        set_elem(&mut v, 64, 1, x.x(x.rn()));
                        x.set_v(x.rd(), v);
                    } else {
                        let v = elem(x.v(x.rn()), 64, 1);
                        x.set_x(x.rd(), v, true);
                    }
                }
                _ => return None,
            }
        }
        _ => return None,
    }
    Some(())
}

fn fp_fixed(x: &mut X<'_>) -> Option<()> {
    let sf = x.bit(31);
    let fmt = fmt_of_type(x.bits(23, 22)).filter(|f| *f != Fmt::H)?;
    let scale = x.bits(15, 10);
    if !sf && scale < 32 {
        return None;
    }
    let fbits = 64 - scale;
    let bits = if sf { 64 } else { 32 };
    match (x.bits(20, 19), x.bits(18, 16)) {
        (3, 0 | 1) => {
            let a = x.sc(fmt, x.rn());
            let r = x.fp.to_fixed(fmt, a, fbits, x.bit(16), bits, Round::Zero);
            x.set_x(x.rd(), r, sf);
        }
        (0, 2 | 3) => {
            let v = x.x(x.rn());
            let mode = x.fp.mode();
            let r = x.fp.from_fixed(fmt, v, fbits, x.bit(16), bits, mode);
            x.set_sc(x.rd(), r);
        }
        _ => return None,
    }
    Some(())
}

fn fp_3src(x: &mut X<'_>) -> Option<()> {
    let fmt = fmt_of_type(x.bits(23, 22)).filter(|f| *f != Fmt::H)?;
    let (n, m, a) = (x.sc(fmt, x.rn()), x.sc(fmt, x.rm()), x.sc(fmt, x.ra()));
    let (neg_a, neg_n) = match (x.bit(21), x.bit(15)) {
        (false, false) => (false, false),
        (false, true) => (false, true),
        (true, false) => (true, true),
        (true, true) => (true, false),
    };
    let a = if neg_a { a ^ fmt.sign() } else { a };
    let n = if neg_n { n ^ fmt.sign() } else { n };
    let r = x.fp.muladd(fmt, a, n, m);
    x.set_sc(x.rd(), r);
    Some(())
}

// ---- Advanced SIMD ------------------------------------------------------

fn datasize(x: &X<'_>) -> u32 {
    if x.bit(30) { 128 } else { 64 }
}

fn sat_s(v: i128, bits: u32, qc: &mut bool) -> u64 {
    let max = (1i128 << (bits - 1)) - 1;
    let min = -(1i128 << (bits - 1));
    if v > max {
        *qc = true;
        max as u64
    } else if v < min {
        *qc = true;
        min as u64
    } else {
        v as u64
    }
}

fn sat_u(v: i128, bits: u32, qc: &mut bool) -> u64 {
    let max = (1i128 << bits) - 1;
    if v > max {
        *qc = true;
        max as u64
    } else if v < 0 {
        *qc = true;
        0
    } else {
        v as u64
    }
}

/// Integer three-same op `opc` (bits 15:11) with `u` on elements of `es`
/// bits; `None` for FP/reserved ops.
fn int3(opc: u32, u: bool, es: u32, a: u64, b: u64, d: u64, qc: &mut bool) -> Option<u64> {
    let (sa, sb) = (i128::from(sext(a, es)), i128::from(sext(b, es)));
    let (ua, ub) = (i128::from(a), i128::from(b));
    let (xa, xb) = if u { (ua, ub) } else { (sa, sb) };
    let m = mask(es);
    Some(match opc {
        0b00000 => ((xa + xb) >> 1) as u64 & m,
        0b00001 => {
            if u {
                sat_u(ua + ub, es, qc)
            } else {
                sat_s(sa + sb, es, qc)
            }
        }
        0b00010 => ((xa + xb + 1) >> 1) as u64 & m,
        0b00100 => ((xa - xb) >> 1) as u64 & m,
        0b00101 => {
            if u {
                sat_u(ua - ub, es, qc)
            } else {
                sat_s(sa - sb, es, qc)
            }
        }
        0b00110 => u64::from(xa > xb) * m,
        0b00111 => u64::from(xa >= xb) * m,
        0b01000 | 0b01010 => {
            // SSHL/USHL (and the rounding forms): shift by a signed byte.
            let sh = sext(b & 0xff, 8);
            let round = opc == 0b01010;
            let r: i128 = if sh >= 0 {
                if sh >= 128 { 0 } else { xa << sh }
            } else {
                let n = (-sh).min(127);
                let rc = if round && n <= 127 {
                    (xa >> (n - 1)) & 1
                } else {
                    0
                };
                (xa >> n) + rc
            };
            r as u64 & m
        }
        0b01001 | 0b01011 => {
            // SQSHL/UQSHL/SQRSHL/UQRSHL (register): the signed shift byte
            // can move every bit out, so saturate instead of shifting far.
            let sh = sext(b & 0xff, 8);
            let round = opc == 0b01011;
            let r: i128 = if sh >= 0 {
                if xa == 0 {
                    0
                } else if sh >= i64::from(es) {
                    if xa > 0 { i128::MAX } else { i128::MIN }
                } else {
                    xa << sh
                }
            } else {
                let n = (-sh).min(127);
                let rc = if round { (xa >> (n - 1)) & 1 } else { 0 };
                (xa >> n) + rc
            };
            if u {
                sat_u(r, es, qc)
            } else {
                sat_s(r, es, qc)
            }
        }
        0b01100 => (if xa > xb { a } else { b }) & m,
        0b01101 => (if xa < xb { a } else { b }) & m,
        0b01110 => (xa - xb).unsigned_abs() as u64 & m,
        0b01111 => (d.wrapping_add((xa - xb).unsigned_abs() as u64)) & m,
        0b10000 => {
            if u {
                a.wrapping_sub(b) & m
            } else {
                a.wrapping_add(b) & m
            }
        }
        0b10001 => {
            if u {
                u64::from(a == b) * m
            } else {
                u64::from(a & b != 0) * m
            }
        }
        0b10010 => {
            let p = a.wrapping_mul(b);
            if u {
                d.wrapping_sub(p) & m
            } else {
                d.wrapping_add(p) & m
            }
        }
        0b10011 if !u => a.wrapping_mul(b) & m,
        0b10011 if es != 8 => return None,
        0b10011 => {
            // PMUL (bytes only).
            let mut r = 0u64;
            for i in 0..8 {
                if (b >> i) & 1 != 0 {
                    r ^= a << i;
                }
            }
            r & m
        }
        0b10100 => (if xa > xb { a } else { b }) & m,
        0b10101 => (if xa < xb { a } else { b }) & m,
        0b10110 => {
            // SQDMULH / SQRDMULH (halfwords and words only).
            if es != 16 && es != 32 {
                return None;
            }
            let p = 2 * sa * sb + if u { 1i128 << (es - 1) } else { 0 };
            sat_s(p >> es, es, qc)
        }
        _ => return None,
    })
}

fn three_same(x: &mut X<'_>) -> Option<()> {
    let u = x.bit(29);
    let size = x.bits(23, 22);
    let opc = x.bits(15, 11);
    let (a, b, d) = (x.v(x.rn()), x.v(x.rm()), x.v(x.rd()));
    let q = x.bit(30);
    if opc == 0b00011 {
        // Logical.
        let r = match (u, size) {
            (false, 0) => a & b,
            (false, 1) => a & !b,
            (false, 2) => a | b,
            (false, _) => a | !b,
            (true, 0) => a ^ b,
            (true, 1) => (d & a) | (!d & b),
            (true, 2) => (d & !b) | (a & b),
            (true, _) => (d & b) | (a & !b),
        };
        let r = if q { r } else { r & u128::from(u64::MAX) };
        x.set_v(x.rd(), r);
        return Some(());
    }
    if opc >= 0b11000 {
        return fp3_vec(x, a, b, d);
    }
    let es = 8 << size;
    if size == 3 && !q {
        return None;
    }
    // 64-bit elements exist only for the saturating add/subtract, compares,
    // shifts by register, ADD/SUB, CMTST/CMEQ and ADDP; the halving adds,
    // max/min, absolute differences and multiplies reserve size 0b11.
    if size == 3
        && !matches!(
            opc,
            0b00001 | 0b00101..=0b01011 | 0b10000 | 0b10001 | 0b10111
        )
    {
        return None;
    }
    if opc == 0b10111 {
        if u {
            return None;
        }
        // ADDP (integer).
        let n = datasize(x) / es;
        let mut r = 0u128;
        for i in 0..n {
            let src = if i < n / 2 { a } else { b };
            let j = (i % (n / 2)) * 2;
            set_elem(
                &mut r,
                es,
                i,
                elem(src, es, j).wrapping_add(elem(src, es, j + 1)),
            );
        }
        x.set_v(x.rd(), r);
        return Some(());
    }
    if opc == 0b10100 || opc == 0b10101 {
        // SMAXP/SMINP/UMAXP/UMINP.
        let n = datasize(x) / es;
        let mut r = 0u128;
        let mut qc = false;
        for i in 0..n {
            let src = if i < n / 2 { a } else { b };
            let j = (i % (n / 2)) * 2;
            let v = int3(
                opc - 0b01000,
                u,
                es,
                elem(src, es, j),
                elem(src, es, j + 1),
                0,
                &mut qc,
            )?;
            set_elem(&mut r, es, i, v);
        }
        x.set_v(x.rd(), r);
        return Some(());
    }
    let mut qc = false;
    let mut bad = false;
    let mut r = 0u128;
    for i in 0..datasize(x) / es {
        match int3(
            opc,
            u,
            es,
            elem(a, es, i),
            elem(b, es, i),
            elem(d, es, i),
            &mut qc,
        ) {
            Some(v) => set_elem(&mut r, es, i, v),
            None => bad = true,
        }
    }
    if bad {
        return None;
    }
    if qc {
        x.s.fpsr |= u64::from(fpsr::QC);
    }
    x.set_v(x.rd(), r);
    Some(())
}

fn fp3_vec(x: &mut X<'_>, a: u128, b: u128, d: u128) -> Option<()> {
    let u = x.bit(29);
    let hi = x.bit(23);
    let fmt = if x.bit(22) { Fmt::D } else { Fmt::S };
    if fmt == Fmt::D && !x.bit(30) {
        return None;
    }
    let es = fmt.width();
    let opc = x.bits(15, 11);
    let n = datasize(x) / es;
    let mut r = 0u128;
    let fp = &mut x.fp;
    for i in 0..n {
        let (p, q, acc) =
            if u && (opc == 0b11010 || opc == 0b11110 || opc == 0b11000) && !(opc == 0b11010 && hi)
            {
                // Pairwise forms (FADDP, FMAXP, FMAXNMP...).
                let src = if i < n / 2 { a } else { b };
                let j = (i % (n / 2)) * 2;
                (elem(src, es, j), elem(src, es, j + 1), 0)
            } else {
                (elem(a, es, i), elem(b, es, i), elem(d, es, i))
            };
        let v = match (u, hi, opc) {
            (false, false, 0b11000) => fp.minmax(fmt, p, q, true, true),
            (false, false, 0b11001) => fp.muladd(fmt, acc, p, q),
            (false, false, 0b11010) => fp.arith(Op::Add, fmt, p, q),
            (false, false, 0b11011) => fp.mulx(fmt, p, q),
            (false, false, 0b11100) => cmp_mask(fp.cmp_vec(fmt, p, q, 0), es),
            (false, false, 0b11110) => fp.minmax(fmt, p, q, true, false),
            (false, false, 0b11111) => fp.recip_step(fmt, p, q, false),
            (false, true, 0b11111) => fp.recip_step(fmt, p, q, true),
            (false, true, 0b11000) => fp.minmax(fmt, p, q, false, true),
            (false, true, 0b11001) => fp.muladd(fmt, acc, p ^ fmt.sign(), q),
            (false, true, 0b11010) => fp.arith(Op::Sub, fmt, p, q),
            (false, true, 0b11110) => fp.minmax(fmt, p, q, false, false),
            (true, false, 0b11000) => fp.minmax(fmt, p, q, true, true),
            (true, false, 0b11010) => fp.arith(Op::Add, fmt, p, q),
            (true, false, 0b11011) => fp.arith(Op::Mul, fmt, p, q),
            (true, false, 0b11100) => cmp_mask(fp.cmp_vec(fmt, p, q, 1), es),
            (true, false, 0b11101) => {
                let f = fp.flush_in(fmt, p) & !fmt.sign();
                let g = fp.flush_in(fmt, q) & !fmt.sign();
                cmp_mask(fp.cmp_vec(fmt, f, g, 1), es)
            }
            (true, false, 0b11110) => fp.minmax(fmt, p, q, true, false),
            (true, false, 0b11111) => fp.arith(Op::Div, fmt, p, q),
            (true, true, 0b11000) => fp.minmax(fmt, p, q, false, true),
            (true, true, 0b11010) => {
                let r = fp.arith(Op::Sub, fmt, p, q);
                // FPAbs clears the sign of a NaN difference too
                // (without FEAT_AFP's FPCR.AH).
                r & !fmt.sign()
            }
            (true, true, 0b11100) => cmp_mask(fp.cmp_vec(fmt, p, q, 2), es),
            (true, true, 0b11101) => {
                let f = fp.flush_in(fmt, p) & !fmt.sign();
                let g = fp.flush_in(fmt, q) & !fmt.sign();
                cmp_mask(fp.cmp_vec(fmt, f, g, 2), es)
            }
            (true, true, 0b11110) => fp.minmax(fmt, p, q, false, false),
            _ => return None,
        };
        set_elem(&mut r, es, i, v);
    }
    x.set_v(x.rd(), r);
    Some(())
}

fn cmp_mask(b: bool, es: u32) -> u64 {
    if b { mask(es) } else { 0 }
}

/// What SQDMULL/SQDMLAL/SQDMLSL do with the accumulator.
#[derive(Clone, Copy)]
enum DoublingAcc {
    None,
    Add,
    Sub,
}

/// The saturating doubling multiply-long family on signed `es`-bit inputs
/// `p` and `q`, with `acc` the 2*`es`-bit destination element.
fn sat_doubling_mul(p: i128, q: i128, kind: DoublingAcc, acc: u64, es: u32, qc: &mut bool) -> u64 {
    let prod = sat_s(2 * p * q, 2 * es, qc);
    let pv = i128::from(sext(prod, 2 * es));
    let av = i128::from(sext(acc, 2 * es));
    match kind {
        DoublingAcc::None => prod,
        DoublingAcc::Add => sat_s(av + pv, 2 * es, qc),
        DoublingAcc::Sub => sat_s(av - pv, 2 * es, qc),
    }
}

fn three_diff(x: &mut X<'_>) -> Option<()> {
    let u = x.bit(29);
    let size = x.bits(23, 22);
    if size == 3 {
        return None;
    }
    let es = 8 << size;
    let part = u32::from(x.bit(30));
    let (a, b, d) = (x.v(x.rn()), x.v(x.rm()), x.v(x.rd()));
    let opc = x.bits(15, 12);
    let n = 64 / es;
    let ext = |v: u64| -> i128 {
        if u {
            i128::from(v)
        } else {
            i128::from(sext(v, es))
        }
    };
    let mut r = 0u128;
    let mut qc = false;
    if opc == 0b0100 || opc == 0b0110 {
        // ADDHN/SUBHN (and the rounding forms).
        for i in 0..n {
            let (p, q) = (elem(a, 2 * es, i), elem(b, 2 * es, i));
            let mut s = if opc == 0b0100 {
                p.wrapping_add(q)
            } else {
                p.wrapping_sub(q)
            };
            if u {
                s = s.wrapping_add(1 << (es - 1));
            }
            set_elem(&mut r, es, i, s >> es);
        }
        let out = if part == 1 {
            (d & u128::from(u64::MAX)) | (r << 64)
        } else {
            r
        };
        x.set_v(x.rd(), out);
        return Some(());
    }
    for i in 0..n {
        let j = i + part * n;
        let p_wide = elem(a, 2 * es, i);
        let p = ext(elem(a, es, j));
        let q = ext(elem(b, es, j));
        let acc = elem(d, 2 * es, i);
        let m2 = mask(2 * es);
        let v: u64 = match opc {
            0b0000 => (p + q) as u64 & m2,
            0b0001 => (i128::from(p_wide) + q) as u64 & m2,
            0b0010 => (p - q) as u64 & m2,
            0b0011 => (i128::from(p_wide) - q) as u64 & m2,
            0b0101 => acc.wrapping_add((p - q).unsigned_abs() as u64) & m2,
            0b0111 => (p - q).unsigned_abs() as u64 & m2,
            0b1000 => acc.wrapping_add((p * q) as u64) & m2,
            0b1010 => acc.wrapping_sub((p * q) as u64) & m2,
            0b1100 => (p * q) as u64 & m2,
            // The doubling forms exist for halfword and word sources only.
            0b1101 | 0b1001 | 0b1011 if u || size == 0 => return None,
            0b1101 => sat_doubling_mul(p, q, DoublingAcc::None, acc, es, &mut qc),
            0b1001 => sat_doubling_mul(p, q, DoublingAcc::Add, acc, es, &mut qc),
            0b1011 => sat_doubling_mul(p, q, DoublingAcc::Sub, acc, es, &mut qc),
            0b1110 if !u && size == 0 => {
                let mut r = 0u64;
                let (pa, pb) = (elem(a, 8, j), elem(b, 8, j));
                for k in 0..8 {
                    if (pb >> k) & 1 != 0 {
                        r ^= pa << k;
                    }
                }
                r
            }
            _ => return None,
        };
        // `p_wide` is element i of Rn viewed at 2*es (the W forms).
        let _ = p_wide;
        set_elem(&mut r, 2 * es, i, v);
    }
    if qc {
        x.s.fpsr |= u64::from(fpsr::QC);
    }
    x.set_v(x.rd(), r);
    Some(())
}

fn two_misc(x: &mut X<'_>) -> Option<()> {
    let u = x.bit(29);
    let size = x.bits(23, 22);
    let opc = x.bits(16, 12);
    let q = x.bit(30);
    let a = x.v(x.rn());
    let d = x.v(x.rd());
    let es = 8 << size;
    let ds = datasize(x);
    let mut r = 0u128;
    let mut qc = false;
    let lanes_n = ds / es;
    match (u, opc) {
        (_, 0b00000) | (false, 0b00001) => {
            // REV64/REV32/REV16: reverse elements within containers.
            let container = match (u, opc) {
                (false, 0) => 64,
                (true, 0) => 32,
                _ => 16,
            };
            if es >= container {
                return None;
            }
            let per = container / es;
            for i in 0..lanes_n {
                let base = i / per * per;
                let src = base + (per - 1 - (i - base));
                set_elem(&mut r, es, i, elem(a, es, src));
            }
        }
        (_, 0b00010) | (_, 0b00110) => {
            // SADDLP/UADDLP, SADALP/UADALP.
            if size == 3 {
                return None;
            }
            for i in 0..ds / (2 * es) {
                let (p, s) = (elem(a, es, 2 * i), elem(a, es, 2 * i + 1));
                let v = if u {
                    p.wrapping_add(s)
                } else {
                    (sext(p, es) + sext(s, es)) as u64
                };
                let v = if opc == 0b00110 {
                    v.wrapping_add(elem(d, 2 * es, i))
                } else {
                    v
                };
                set_elem(&mut r, 2 * es, i, v);
            }
        }
        (_, 0b00100) => {
            // CLZ, and CLS: the leading zeros of x<N-1:1> XOR x<N-2:0>.
            if size == 3 {
                return None;
            }
            for i in 0..lanes_n {
                let v = elem(a, es, i);
                let n = if u {
                    (v << (64 - es)).leading_zeros().min(es)
                } else {
                    let t = ((v >> 1) ^ v) & mask(es - 1);
                    (t << (64 - (es - 1))).leading_zeros().min(es - 1)
                };
                set_elem(&mut r, es, i, u64::from(n));
            }
        }
        (false, 0b00101) if size == 0 => {
            for i in 0..lanes_n {
                set_elem(&mut r, 8, i, u64::from(elem(a, 8, i).count_ones()));
            }
        }
        (true, 0b00101) if size == 0 => r = !a,
        (true, 0b00101) if size == 1 => {
            for i in 0..lanes_n {
                set_elem(
                    &mut r,
                    8,
                    i,
                    u64::from((elem(a, 8, i) as u8).reverse_bits()),
                );
            }
        }
        (_, 0b00111) => {
            // SQABS/SQNEG.
            if size == 3 && !q {
                return None;
            }
            for i in 0..lanes_n {
                let v = i128::from(sext(elem(a, es, i), es));
                let v = if u { -v } else { v.abs() };
                set_elem(&mut r, es, i, sat_s(v, es, &mut qc));
            }
        }
        (_, 0b01000..=0b01010) | (false, 0b01011) => {
            // CMGT/CMGE/CMEQ/CMLE/CMLT against zero, ABS/NEG.
            if size == 3 && !q {
                return None;
            }
            for i in 0..lanes_n {
                let v = sext(elem(a, es, i), es);
                let res = match (u, opc) {
                    (false, 0b01000) => cmp_mask(v > 0, es),
                    (true, 0b01000) => cmp_mask(v >= 0, es),
                    (false, 0b01001) => cmp_mask(v == 0, es),
                    (true, 0b01001) => cmp_mask(v <= 0, es),
                    (false, 0b01010) => cmp_mask(v < 0, es),
                    (false, 0b01011) => v.unsigned_abs() & mask(es),
                    _ => return None,
                };
                set_elem(&mut r, es, i, res);
            }
        }
        (true, 0b01011) => {
            if size == 3 && !q {
                return None;
            }
            for i in 0..lanes_n {
                set_elem(&mut r, es, i, elem(a, es, i).wrapping_neg());
            }
        }
        (_, 0b10010) | (_, 0b10100) => {
            // XTN/SQXTUN (opc 10010), SQXTN/UQXTN (10100).
            if size == 3 {
                return None;
            }
            let n = 64 / es;
            for i in 0..n {
                let v = elem(a, 2 * es, i);
                let res = match (u, opc) {
                    (false, 0b10010) => v & mask(es),
                    (true, 0b10010) => sat_u(i128::from(sext(v, 2 * es)), es, &mut qc),
                    (false, _) => sat_s(i128::from(sext(v, 2 * es)), es, &mut qc),
                    (true, _) => sat_u(i128::from(v), es, &mut qc),
                };
                set_elem(&mut r, es, i, res);
            }
            if q {
                r = (d & u128::from(u64::MAX)) | (r << 64);
            }
        }
        (true, 0b10011) => {
            // SHLL.
            if size == 3 {
                return None;
            }
            let part = u32::from(q);
            for i in 0..64 / es {
                set_elem(&mut r, 2 * es, i, elem(a, es, i + part * (64 / es)) << es);
            }
        }
        _ => return fp_misc(x, a, d),
    }
    if qc {
        x.s.fpsr |= u64::from(fpsr::QC);
    }
    if !q {
        r &= u128::from(u64::MAX);
    }
    x.set_v(x.rd(), r);
    Some(())
}

fn fp_misc(x: &mut X<'_>, a: u128, d: u128) -> Option<()> {
    let u = x.bit(29);
    let opc = x.bits(16, 12);
    let hi = x.bit(23);
    let q = x.bit(30);
    let sz = x.bit(22);
    let fmt = if sz { Fmt::D } else { Fmt::S };
    let es = fmt.width();
    let mode = x.fp.mode();
    let mut r = 0u128;
    // FCVTN/FCVTL/FCVTXN (narrow/long between sizes).
    if !hi && (opc == 0b10110 || opc == 0b10111) {
        let (wide, narrow) = if sz {
            (Fmt::D, Fmt::S)
        } else {
            (Fmt::S, Fmt::H)
        };
        let n = 64 / narrow.width();
        if opc == 0b10110 {
            for i in 0..n {
                let v = elem(a, wide.width(), i);
                let c = if u && sz {
                    // FCVTXN: round to odd.
                    let mut f = Fpu::new(x.fp.fpcr & !(3 << 22) | (3 << 22));
                    let c = f.convert(wide, narrow, v);
                    let odd = f.flags & fpsr::IXC != 0;
                    x.fp.flags |= f.flags;
                    if odd && !narrow.is_nan(c) { c | 1 } else { c }
                } else if u {
                    return None;
                } else {
                    x.fp.convert(wide, narrow, v)
                };
                set_elem(&mut r, narrow.width(), i, c);
            }
            let out = if q {
                (d & u128::from(u64::MAX)) | (r << 64)
            } else {
                r
            };
            x.set_v(x.rd(), out);
            return Some(());
        }
        if u {
            return None;
        }
        let part = u32::from(q);
        for i in 0..n {
            let v = elem(a, narrow.width(), i + part * n);
            set_elem(&mut r, wide.width(), i, x.fp.convert(narrow, wide, v));
        }
        x.set_v(x.rd(), r);
        return Some(());
    }
    if sz && !q {
        return None;
    }
    let n = datasize(x) / es;
    for i in 0..n {
        let v = elem(a, es, i);
        let fp = &mut x.fp;
        let res = match (u, hi, opc) {
            (_, false, 0b11000) => fp.round_int(
                fmt,
                v,
                if u { Round::TiesAway } else { Round::Nearest },
                false,
            ),
            (false, false, 0b11001) => fp.round_int(fmt, v, Round::MinusInf, false),
            (true, false, 0b11001) => fp.round_int(fmt, v, mode, true),
            (false, true, 0b11000) => fp.round_int(fmt, v, Round::PlusInf, false),
            (false, true, 0b11001) => fp.round_int(fmt, v, Round::Zero, false),
            (true, true, 0b11001) => fp.round_int(fmt, v, mode, false),
            (_, false, 0b11010) => fp.to_fixed(fmt, v, 0, u, es, Round::Nearest),
            (_, false, 0b11011) => fp.to_fixed(fmt, v, 0, u, es, Round::MinusInf),
            (_, false, 0b11100) => fp.to_fixed(fmt, v, 0, u, es, Round::TiesAway),
            (_, true, 0b11010) => fp.to_fixed(fmt, v, 0, u, es, Round::PlusInf),
            (_, true, 0b11011) => fp.to_fixed(fmt, v, 0, u, es, Round::Zero),
            (_, false, 0b11101) => fp.from_fixed(fmt, v, 0, u, es, mode),
            (_, true, 0b01100) => cmp_mask(fp.cmp_vec(fmt, v, 0, if u { 1 } else { 2 }), es),
            (false, true, 0b01101) => cmp_mask(fp.cmp_vec(fmt, v, 0, 0), es),
            (true, true, 0b01101) => cmp_mask(fp.cmp_vec(fmt, 0, v, 1), es),
            (false, true, 0b01110) => cmp_mask(fp.cmp_vec(fmt, 0, v, 2), es),
            (false, true, 0b01111) => v & !fmt.sign(),
            (true, true, 0b01111) => v ^ fmt.sign(),
            (true, true, 0b11111) => fp.sqrt(fmt, v),
            (false, true, 0b11101) => fp.recip_estimate(fmt, v),
            (true, true, 0b11101) => fp.rsqrt_estimate(fmt, v),
            (false, true, 0b11100) if !sz => {
                // URECPE.
                let v = v as u32;
                if v >> 31 == 0 {
                    0xffff_ffff
                } else {
                    let e = crate::fpu::recip_estimate_int(u64::from(v >> 23));
                    e << 23
                }
            }
            (true, true, 0b11100) if !sz => {
                let v = v as u32;
                if v >> 30 == 0 {
                    0xffff_ffff
                } else {
                    crate::fpu::rsqrt_estimate_int(u64::from(v >> 23)) << 23
                }
            }
            _ => return None,
        };
        set_elem(&mut r, es, i, res);
    }
    x.set_v(x.rd(), r);
    Some(())
}

fn across(x: &mut X<'_>) -> Option<()> {
    let u = x.bit(29);
    let size = x.bits(23, 22);
    let opc = x.bits(16, 12);
    let q = x.bit(30);
    let a = x.v(x.rn());
    let ds = datasize(x);
    if u && (opc == 0b01100 || opc == 0b01111) {
        // FMAXNMV/FMINNMV/FMAXV/FMINV (single, Q only).
        if !q || x.bit(22) {
            return None;
        }
        let max = !x.bit(23);
        let num = opc == 0b01100;
        let mut v = [0u64; 4];
        for (i, e) in v.iter_mut().enumerate() {
            *e = elem(a, 32, i as u32);
        }
        let l = x.fp.minmax(Fmt::S, v[0], v[1], max, num);
        let h = x.fp.minmax(Fmt::S, v[2], v[3], max, num);
        let r = x.fp.minmax(Fmt::S, l, h, max, num);
        x.set_sc(x.rd(), r);
        return Some(());
    }
    if !u && opc == 0b01100 {
        return None;
    }
    let es = 8 << size;
    if size == 3 || (size == 2 && !q) {
        return None;
    }
    let n = ds / es;
    let vals: Vec<i128> = (0..n)
        .map(|i| {
            let e = elem(a, es, i);
            if u {
                i128::from(e)
            } else {
                i128::from(sext(e, es))
            }
        })
        .collect();
    let (r, out_es) = match opc {
        0b00011 => (vals.iter().sum::<i128>() as u64 & mask(2 * es), 2 * es),
        0b11011 if !u => (vals.iter().sum::<i128>() as u64 & mask(es), es),
        0b01010 => (*vals.iter().max()? as u64 & mask(es), es),
        0b11010 => (*vals.iter().min()? as u64 & mask(es), es),
        _ => return None,
    };
    x.set_sc(x.rd(), r & mask(out_es));
    Some(())
}

fn copy(x: &mut X<'_>) -> Option<()> {
    let imm5 = x.bits(20, 16);
    let imm4 = x.bits(14, 11);
    let op = x.bit(29);
    let q = x.bit(30);
    let size = imm5.trailing_zeros();
    if size > 3 {
        return None;
    }
    let es = 8 << size;
    let idx = imm5 >> (size + 1);
    let ds = datasize(x);
    let n_src = x.v(x.rn());
    if op {
        // INS (element).
        if !q {
            return None;
        }
        let src = elem(n_src, es, imm4 >> size);
        let mut d = x.v(x.rd());
        set_elem(&mut d, es, idx, src);
        x.set_v(x.rd(), d);
        return Some(());
    }
    match imm4 {
        0b0000 => {
            if size == 3 && !q {
                return None;
            }
            let v = elem(n_src, es, idx);
            let mut r = 0;
            for i in 0..ds / es {
                set_elem(&mut r, es, i, v);
            }
            x.set_v(x.rd(), r);
        }
        0b0001 => {
            if size == 3 && !q {
                return None;
            }
            let v = x.x(x.rn());
            let mut r = 0;
            for i in 0..ds / es {
                set_elem(&mut r, es, i, v);
            }
            x.set_v(x.rd(), r);
        }
        0b0011 => {
            if !q {
                return None;
            }
            let v = x.x(x.rn());
            let mut d = x.v(x.rd());
            set_elem(&mut d, es, idx, v);
            x.set_v(x.rd(), d);
        }
        0b0101 => {
            // SMOV.
            if size == 3 || (size == 2 && !q) {
                return None;
            }
            let v = sext(elem(n_src, es, idx), es) as u64;
            x.set_x(x.rd(), v, q);
        }
        0b0111 => {
            // UMOV.
            if (size == 3) != q {
                return None;
            }
            let v = elem(n_src, es, idx);
            x.set_x(x.rd(), v, true);
        }
        _ => return None,
    }
    Some(())
}

fn permute(x: &mut X<'_>) -> Option<()> {
    let size = x.bits(23, 22);
    let es = 8 << size;
    if size == 3 && !x.bit(30) {
        return None;
    }
    let (a, b) = (x.v(x.rn()), x.v(x.rm()));
    let n = datasize(x) / es;
    let op = x.bits(14, 12);
    let part = u32::from(op & 4 != 0);
    let mut r = 0u128;
    for i in 0..n {
        let v = match op & 3 {
            1 => {
                // UZP
                let j = 2 * i + part;
                if j < n {
                    elem(a, es, j)
                } else {
                    elem(b, es, j - n)
                }
            }
            2 => {
                // TRN
                let base = i & !1;
                if i & 1 == 0 {
                    elem(a, es, base + part)
                } else {
                    elem(b, es, base + part)
                }
            }
            3 => {
                // ZIP
                let base = part * n / 2 + i / 2;
                if i & 1 == 0 {
                    elem(a, es, base)
                } else {
                    elem(b, es, base)
                }
            }
            _ => return None,
        };
        set_elem(&mut r, es, i, v);
    }
    x.set_v(x.rd(), r);
    Some(())
}

fn ext(x: &mut X<'_>) -> Option<()> {
    let q = x.bit(30);
    let pos = x.bits(14, 11);
    if !q && pos >= 8 {
        return None;
    }
    let (a, b) = (x.v(x.rn()), x.v(x.rm()));
    let r = if q {
        let cat = [a, b];
        let mut r = 0u128;
        for i in 0..16 {
            let j = pos + i;
            let byte = elem(cat[(j / 16) as usize], 8, j % 16);
            set_elem(&mut r, 8, i, byte);
        }
        r
    } else {
        let cat = (u128::from(b as u64) << 64) | u128::from(a as u64);
        (cat >> (pos * 8)) & u128::from(u64::MAX)
    };
    x.set_v(x.rd(), r);
    Some(())
}

fn table(x: &mut X<'_>) -> Option<()> {
    let len = x.bits(14, 13) + 1;
    let tbx = x.bit(12);
    let idx = x.v(x.rm());
    let d = x.v(x.rd());
    let mut tbl = [0u8; 64];
    for k in 0..len {
        let v = x.v((x.rn() + k as usize) % 32);
        tbl[(k * 16) as usize..(k * 16 + 16) as usize].copy_from_slice(&v.to_le_bytes());
    }
    let mut r = 0u128;
    for i in 0..datasize(x) / 8 {
        let j = elem(idx, 8, i) as u32;
        let v = if j < len * 16 {
            u64::from(tbl[j as usize])
        } else if tbx {
            elem(d, 8, i)
        } else {
            0
        };
        set_elem(&mut r, 8, i, v);
    }
    x.set_v(x.rd(), r);
    Some(())
}

/// `AdvSIMDExpandImm`.
fn adv_imm(op: bool, cmode: u32, imm8: u64) -> Option<u64> {
    let rep32 = |v: u64| v | (v << 32);
    let rep16 = |v: u64| v | (v << 16) | (v << 32) | (v << 48);
    Some(match cmode >> 1 {
        0 => rep32(imm8),
        1 => rep32(imm8 << 8),
        2 => rep32(imm8 << 16),
        3 => rep32(imm8 << 24),
        4 => rep16(imm8),
        5 => rep16(imm8 << 8),
        6 => {
            if cmode & 1 == 0 {
                rep32((imm8 << 8) | 0xff)
            } else {
                rep32((imm8 << 16) | 0xffff)
            }
        }
        _ => match (cmode & 1, op) {
            (0, false) => imm8 * 0x0101_0101_0101_0101,
            (0, true) => {
                let mut v = 0;
                for i in 0..8 {
                    if (imm8 >> i) & 1 != 0 {
                        v |= 0xff << (8 * i);
                    }
                }
                v
            }
            (_, false) => rep32(expand_imm(Fmt::S, imm8 as u32)),
            (_, true) => expand_imm(Fmt::D, imm8 as u32),
        },
    })
}

fn mod_imm(x: &mut X<'_>) -> Option<()> {
    let q = x.bit(30);
    let op = x.bit(29);
    let cmode = x.bits(15, 12);
    let imm8 = u64::from((x.bits(18, 16) << 5) | x.bits(9, 5));
    if cmode == 0b1111 && op && !q {
        return None;
    }
    if x.bit(11) {
        return None;
    }
    let imm = adv_imm(op, cmode, imm8)?;
    let imm128 = if q {
        u128::from(imm) | (u128::from(imm) << 64)
    } else {
        u128::from(imm)
    };
    let d = x.v(x.rd());
    let is_orr_bic = cmode < 0b1100 && cmode & 1 == 1;
    let r = if is_orr_bic {
        if op { d & !imm128 } else { d | imm128 }
    } else if op && cmode != 0b1110 && cmode != 0b1111 {
        !imm128
    } else {
        imm128
    };
    let r = if q { r } else { r & u128::from(u64::MAX) };
    x.set_v(x.rd(), r);
    Some(())
}

fn shift_imm(x: &mut X<'_>) -> Option<()> {
    let immh = x.bits(22, 19);
    let immb = x.bits(18, 16);
    let u = x.bit(29);
    let q = x.bit(30);
    let opc = x.bits(15, 11);
    let hb = 31 - immh.leading_zeros();
    let es = 8 << hb;
    let amt = (immh << 3) | immb;
    let a = x.v(x.rn());
    let d = x.v(x.rd());
    let mut r = 0u128;
    let mut qc = false;
    let ds = datasize(x);
    match opc {
        0b00000 | 0b00010 | 0b00100 | 0b00110 | 0b01000 => {
            if es == 64 && !q {
                return None;
            }
            let sh = 2 * es - amt;
            for i in 0..ds / es {
                let v = elem(a, es, i);
                let s: i128 = if u {
                    i128::from(v)
                } else {
                    i128::from(sext(v, es))
                };
                let round = opc == 0b00100 || opc == 0b00110;
                let rc = if round { (s >> (sh - 1)) & 1 } else { 0 };
                let shifted = ((s >> sh) + rc) as u64 & mask(es);
                let res = match opc {
                    0b00000 | 0b00100 => shifted,
                    0b00010 | 0b00110 => elem(d, es, i).wrapping_add(shifted) & mask(es),
                    _ => {
                        // SRI (U=1 only).
                        if !u {
                            return None;
                        }
                        let keep = if sh >= es {
                            mask(es)
                        } else {
                            !(mask(es) >> sh) & mask(es)
                        };
                        (elem(d, es, i) & keep) | shifted
                    }
                };
                set_elem(&mut r, es, i, res);
            }
        }
        0b01010 => {
            // SHL / SLI.
            if es == 64 && !q {
                return None;
            }
            let sh = amt - es;
            for i in 0..ds / es {
                let v = (elem(a, es, i) << sh) & mask(es);
                let res = if u {
                    (elem(d, es, i) & (mask(sh) & mask(es))) | v
                } else {
                    v
                };
                set_elem(&mut r, es, i, res);
            }
        }
        0b01110 | 0b01100 => {
            // SQSHL/UQSHL/SQSHLU (immediate).
            if es == 64 && !q {
                return None;
            }
            let sh = amt - es;
            for i in 0..ds / es {
                let v = elem(a, es, i);
                let res = if opc == 0b01110 {
                    if u {
                        sat_u(i128::from(v) << sh, es, &mut qc)
                    } else {
                        sat_s(i128::from(sext(v, es)) << sh, es, &mut qc)
                    }
                } else {
                    if !u {
                        return None;
                    }
                    sat_u(i128::from(sext(v, es)) << sh, es, &mut qc)
                };
                set_elem(&mut r, es, i, res);
            }
        }
        0b10000..=0b10011 => {
            // SHRN/RSHRN (U=0), SQSHRUN/SQRSHRUN (U=1, 100xx); SQSHRN...
            if es == 64 {
                return None;
            }
            let sh = 2 * es - amt;
            let round = opc & 1 != 0;
            for i in 0..64 / es {
                let v = elem(a, 2 * es, i);
                let s: i128 = if u && opc >= 0b10010 {
                    i128::from(v)
                } else {
                    i128::from(sext(v, 2 * es))
                };
                let rc = if round { (s >> (sh - 1)) & 1 } else { 0 };
                let w = (s >> sh) + rc;
                let res = match (u, opc >> 1) {
                    (false, 0b1000) => (w as u64) & mask(es),
                    (true, 0b1000) => sat_u(w, es, &mut qc),
                    (false, _) => sat_s(w, es, &mut qc),
                    (true, _) => sat_u(w, es, &mut qc),
                };
                set_elem(&mut r, es, i, res);
            }
            if q {
                r = (d & u128::from(u64::MAX)) | (r << 64);
            }
            if qc {
                x.s.fpsr |= u64::from(fpsr::QC);
            }
            x.set_v(x.rd(), r);
            return Some(());
        }
        0b10100 => {
            // SSHLL/USHLL.
            if es == 64 {
                return None;
            }
            let sh = amt - es;
            let part = u32::from(q);
            for i in 0..64 / es {
                let v = elem(a, es, i + part * (64 / es));
                let w = if u { v } else { sext(v, es) as u64 };
                set_elem(&mut r, 2 * es, i, (w << sh) & mask(2 * es));
            }
            x.set_v(x.rd(), r);
            return Some(());
        }
        0b11100 | 0b11111 => {
            // SCVTF/UCVTF, FCVTZS/FCVTZU (fixed point).
            if es < 32 || (es == 64 && !q) {
                return None;
            }
            let fmt = if es == 64 { Fmt::D } else { Fmt::S };
            let fbits = 2 * es - amt;
            let mode = x.fp.mode();
            for i in 0..ds / es {
                let v = elem(a, es, i);
                let res = if opc == 0b11100 {
                    x.fp.from_fixed(fmt, v, fbits, u, es, mode)
                } else {
                    x.fp.to_fixed(fmt, v, fbits, u, es, Round::Zero)
                };
                set_elem(&mut r, es, i, res);
            }
        }
        _ => return None,
    }
    if qc {
        x.s.fpsr |= u64::from(fpsr::QC);
    }
    if !q {
        r &= u128::from(u64::MAX);
    }
    x.set_v(x.rd(), r);
    Some(())
}

fn by_element(x: &mut X<'_>) -> Option<()> {
    let u = x.bit(29);
    let size = x.bits(23, 22);
    let opc = x.bits(15, 12);
    let (l, m, h) = (x.bit(21), x.bit(20), x.bit(11));
    let q = x.bit(30);
    let a = x.v(x.rn());
    let d = x.v(x.rd());
    let mut r = 0u128;
    let ds = datasize(x);
    // FP forms: FMLA/FMLS/FMUL/FMULX by element.
    if matches!(opc, 0b0001 | 0b0101 | 0b1001) {
        let (fmt, idx, rm) = match size {
            2 => (Fmt::S, (u32::from(h) << 1) | u32::from(l), x.rm()),
            3 if !l => (Fmt::D, u32::from(h), x.rm()),
            _ => return None,
        };
        if fmt == Fmt::D && !q {
            return None;
        }
        let es = fmt.width();
        let b = elem(x.v(rm), es, idx);
        for i in 0..ds / es {
            let p = elem(a, es, i);
            let v = match (u, opc) {
                (false, 0b0001) => x.fp.muladd(fmt, elem(d, es, i), p, b),
                (false, 0b0101) => x.fp.muladd(fmt, elem(d, es, i), p ^ fmt.sign(), b),
                (false, 0b1001) => x.fp.arith(Op::Mul, fmt, p, b),
                (true, 0b1001) => x.fp.mulx(fmt, p, b),
                _ => return None,
            };
            set_elem(&mut r, es, i, v);
        }
        x.set_v(x.rd(), r);
        return Some(());
    }
    let (es, idx, rm) = match size {
        1 => (
            16,
            (u32::from(h) << 2) | (u32::from(l) << 1) | u32::from(m),
            x.bits(19, 16) as usize,
        ),
        2 => (32, (u32::from(h) << 1) | u32::from(l), x.rm()),
        _ => return None,
    };
    let b = elem(x.v(rm), es, idx);
    let mut qc = false;
    match (u, opc) {
        (false, 0b1000) | (true, 0b0000) | (true, 0b0100) => {
            for i in 0..ds / es {
                let p = elem(a, es, i).wrapping_mul(b);
                let v = match opc {
                    0b1000 => p,
                    0b0000 => elem(d, es, i).wrapping_add(p),
                    _ => elem(d, es, i).wrapping_sub(p),
                };
                set_elem(&mut r, es, i, v & mask(es));
            }
            if !q {
                r &= u128::from(u64::MAX);
            }
        }
        (false, 0b1100) | (false, 0b1101) => {
            for i in 0..ds / es {
                let p = i128::from(sext(elem(a, es, i), es)) * i128::from(sext(b, es)) * 2;
                let p = p + if opc == 0b1101 { 1i128 << (es - 1) } else { 0 };
                set_elem(&mut r, es, i, sat_s(p >> es, es, &mut qc));
            }
            if !q {
                r &= u128::from(u64::MAX);
            }
        }
        (false, 0b0011 | 0b0111 | 0b1011) => {
            // SQDMLAL/SQDMLSL/SQDMULL by element (the "2" forms read the upper half).
            let part = u32::from(q);
            let n = 64 / es;
            let kind = match opc {
                0b0011 => DoublingAcc::Add,
                0b0111 => DoublingAcc::Sub,
                _ => DoublingAcc::None,
            };
            let q_elem = i128::from(sext(b, es));
            for i in 0..n {
                let p = i128::from(sext(elem(a, es, i + part * n), es));
                let v = sat_doubling_mul(p, q_elem, kind, elem(d, 2 * es, i), es, &mut qc);
                set_elem(&mut r, 2 * es, i, v);
            }
        }
        (_, 0b1010) | (_, 0b0010) | (_, 0b0110) => {
            // SMULL/UMULL/SMLAL/UMLAL/SMLSL/UMLSL by element.
            let part = u32::from(q);
            let n = 64 / es;
            let ext = |v: u64| -> i128 {
                if u {
                    i128::from(v)
                } else {
                    i128::from(sext(v, es))
                }
            };
            for i in 0..n {
                let p = ext(elem(a, es, i + part * n)) * ext(b);
                let acc = elem(d, 2 * es, i);
                let v = match opc {
                    0b1010 => p as u64,
                    0b0010 => acc.wrapping_add(p as u64),
                    _ => acc.wrapping_sub(p as u64),
                };
                set_elem(&mut r, 2 * es, i, v & mask(2 * es));
            }
        }
        _ => return None,
    }
    if qc {
        x.s.fpsr |= u64::from(fpsr::QC);
    }
    x.set_v(x.rd(), r);
    Some(())
}

// ---- Advanced SIMD scalar -------------------------------------------------

fn simd_scalar(x: &mut X<'_>) -> Option<()> {
    let u = x.bit(29);
    let a = x.v(x.rn());
    match x.bits(28, 24) {
        0b11110 => {
            if x.bit(21) && x.bits(11, 10) != 0b00 && x.bits(11, 10) != 0b10 {
                // Scalar three same: 64-bit integer ops and FP compares/FABD.
                let size = x.bits(23, 22);
                let opc = x.bits(15, 11);
                let b = x.v(x.rm());
                if opc >= 0b11000 {
                    let fmt = if x.bit(22) { Fmt::D } else { Fmt::S };
                    let (p, q) = (a as u64 & fmt.mask(), b as u64 & fmt.mask());
                    let es = fmt.width();
                    let b23 = x.bit(23);
                    let fp = &mut x.fp;
                    let v = match (u, b23, opc) {
                        (false, false, 0b11011) => fp.mulx(fmt, p, q),
                        (false, false, 0b11111) => fp.recip_step(fmt, p, q, false),
                        (false, true, 0b11111) => fp.recip_step(fmt, p, q, true),
                        (true, _, 0b11101) => {
                            let f = fp.flush_in(fmt, p) & !fmt.sign();
                            let g = fp.flush_in(fmt, q) & !fmt.sign();
                            cmp_mask(fp.cmp_vec(fmt, f, g, if b23 { 2 } else { 1 }), es)
                        }
                        (false, false, 0b11100) => cmp_mask(fp.cmp_vec(fmt, p, q, 0), es),
                        (true, false, 0b11100) => cmp_mask(fp.cmp_vec(fmt, p, q, 1), es),
                        (true, true, 0b11100) => cmp_mask(fp.cmp_vec(fmt, p, q, 2), es),
                        (true, true, 0b11010) => {
                            let r = fp.arith(Op::Sub, fmt, p, q);
                            // FPAbs clears the sign of a NaN difference too
                            // (without FEAT_AFP's FPCR.AH).
                            r & !fmt.sign()
                        }
                        _ => return None,
                    };
                    x.set_sc(x.rd(), v);
                    return Some(());
                }
                let es = 8 << size;
                let mut qc = false;
                let v = match opc {
                    0b00001 | 0b00101 | 0b01001 | 0b01011 | 0b10110 => int3(
                        opc,
                        u,
                        es,
                        a as u64 & mask(es),
                        b as u64 & mask(es),
                        0,
                        &mut qc,
                    )?,
                    // The other scalar integer ops exist for doublewords only.
                    0b00110..=0b01000 | 0b01010 | 0b10000 | 0b10001 if size == 3 => {
                        int3(opc, u, 64, a as u64, b as u64, 0, &mut qc)?
                    }
                    _ => return None,
                };
                if qc {
                    x.s.fpsr |= u64::from(fpsr::QC);
                }
                // A negative saturated result is sign-extended; the scalar
                // register holds only its element.
                x.set_sc(x.rd(), v & mask(es));
                return Some(());
            }
            if x.bit(21) && x.bits(20, 17) == 0b1000 && x.bits(11, 10) == 0b10 {
                // Scalar pairwise: ADDP, FADDP, FMAXP...
                let opc = x.bits(16, 12);
                let size = x.bits(23, 22);
                if opc == 0b11011 && !u && size == 3 {
                    x.set_sc(x.rd(), (a as u64).wrapping_add((a >> 64) as u64));
                    return Some(());
                }
                if !u {
                    return None;
                }
                let fmt = if x.bit(22) { Fmt::D } else { Fmt::S };
                let es = fmt.width();
                let (p, q) = (elem(a, es, 0), elem(a, es, 1));
                let min = x.bit(23);
                let v = match opc {
                    0b01101 if !min => x.fp.arith(Op::Add, fmt, p, q),
                    0b01111 => x.fp.minmax(fmt, p, q, !min, false),
                    0b01100 => x.fp.minmax(fmt, p, q, !min, true),
                    _ => return None,
                };
                x.set_sc(x.rd(), v);
                return Some(());
            }
            if x.bit(21) && x.bits(20, 17) == 0 && x.bits(11, 10) == 0b10 {
                // Scalar two-register misc (a subset).
                let opc = x.bits(16, 12);
                let size = x.bits(23, 22);
                let fmt = if x.bit(22) { Fmt::D } else { Fmt::S };
                let es = fmt.width();
                let v = a as u64 & fmt.mask();
                let hi = x.bit(23);
                let mode = x.fp.mode();
                let fp = &mut x.fp;
                let r = match (u, hi, opc) {
                    (_, false, 0b11101) => fp.from_fixed(fmt, v, 0, u, es, mode),
                    (_, false, 0b11010) => fp.to_fixed(fmt, v, 0, u, es, Round::Nearest),
                    (_, false, 0b11011) => fp.to_fixed(fmt, v, 0, u, es, Round::MinusInf),
                    (_, false, 0b11100) => fp.to_fixed(fmt, v, 0, u, es, Round::TiesAway),
                    (_, true, 0b11010) => fp.to_fixed(fmt, v, 0, u, es, Round::PlusInf),
                    (_, true, 0b11011) => fp.to_fixed(fmt, v, 0, u, es, Round::Zero),
                    (false, true, 0b11101) => fp.recip_estimate(fmt, v),
                    (true, true, 0b11101) => fp.rsqrt_estimate(fmt, v),
                    (_, _, 0b01011) if size == 3 => {
                        let s = a as u64 as i64;
                        if u {
                            s.wrapping_neg() as u64
                        } else {
                            s.unsigned_abs()
                        }
                    }
                    (_, _, 0b01000..=0b01010) if size == 3 => {
                        let s = a as u64 as i64;
                        let b = match (u, opc) {
                            (false, 0b01000) => s > 0,
                            (true, 0b01000) => s >= 0,
                            (false, 0b01001) => s == 0,
                            (true, 0b01001) => s <= 0,
                            (false, _) => s < 0,
                            _ => return None,
                        };
                        cmp_mask(b, 64)
                    }
                    _ => return None,
                };
                x.set_sc(x.rd(), r);
                return Some(());
            }
            if !x.bit(21) && x.bits(23, 21) == 0 && x.bits(15, 10) == 0b000001 && !u {
                // DUP (element, scalar).
                let imm5 = x.bits(20, 16);
                let size = imm5.trailing_zeros();
                if size > 3 {
                    return None;
                }
                let es = 8 << size;
                x.set_sc(x.rd(), elem(a, es, imm5 >> (size + 1)));
                return Some(());
            }
            None
        }
        0b11111 => {
            // Bit 23 is 0 in every scalar shift by immediate; set (with bit
            // 10 set) the word is unallocated.
            if x.bit(10) && x.bits(22, 19) != 0 && !x.bit(23) {
                // Scalar shift by immediate (64-bit SHL/SSHR/USHR/SSRA/USRA, fixed-point cvt).
                let immh = x.bits(22, 19);
                let amt = (immh << 3) | x.bits(18, 16);
                let opc = x.bits(15, 11);
                let hb = 31 - immh.leading_zeros();
                let es = 8 << hb;
                let v = a as u64 & mask(es);
                let d = x.v(x.rd()) as u64;
                let r = match opc {
                    0b00000 | 0b00010 | 0b00100 | 0b00110 if es == 64 => {
                        // SSHR/USHR/SSRA/USRA and the rounding SRSHR/URSHR/SRSRA/URSRA.
                        let sh = 128 - amt;
                        let wide = if u {
                            i128::from(v)
                        } else {
                            i128::from(v as i64)
                        };
                        let round = opc & 0b00100 != 0;
                        let rc = if round { (wide >> (sh - 1)) & 1 } else { 0 };
                        let s = ((wide >> sh) + rc) as u64;
                        if opc & 0b00010 == 0 {
                            s
                        } else {
                            d.wrapping_add(s)
                        }
                    }
                    0b01010 if es == 64 && !u => v << (amt - 64),
                    0b11100 | 0b11111 if es >= 32 => {
                        let fmt = if es == 64 { Fmt::D } else { Fmt::S };
                        let fbits = 2 * es - amt;
                        let mode = x.fp.mode();
                        if opc == 0b11100 {
                            x.fp.from_fixed(fmt, v, fbits, u, es, mode)
                        } else {
                            x.fp.to_fixed(fmt, v, fbits, u, es, Round::Zero)
                        }
                    }
                    _ => return None,
                };
                x.set_sc(x.rd(), r);
                return Some(());
            }
            if !x.bit(10) {
                // Scalar by element: FMUL/FMLA/FMLS.
                let opc = x.bits(15, 12);
                let size = x.bits(23, 22);
                let (l, h) = (x.bit(21), x.bit(11));
                let (fmt, idx) = match size {
                    2 => (Fmt::S, (u32::from(h) << 1) | u32::from(l)),
                    3 if !l => (Fmt::D, u32::from(h)),
                    _ => return None,
                };
                let es = fmt.width();
                let b = elem(x.v(x.rm()), es, idx);
                let p = a as u64 & fmt.mask();
                let d = x.v(x.rd()) as u64 & fmt.mask();
                let v = match (u, opc) {
                    (false, 0b0001) => x.fp.muladd(fmt, d, p, b),
                    (false, 0b0101) => x.fp.muladd(fmt, d, p ^ fmt.sign(), b),
                    (false, 0b1001) => x.fp.arith(Op::Mul, fmt, p, b),
                    (true, 0b1001) => x.fp.mulx(fmt, p, b),
                    _ => return None,
                };
                x.set_sc(x.rd(), v);
                return Some(());
            }
            None
        }
        _ => None,
    }
}
