//! Data processing, immediate: adr/adrp, add/sub (with flags), logical
//! immediates, move wide, bitfield moves (sbfm/bfm/ubfm and their aliases
//! lsl/lsr/asr/sxt*/uxt*/*bfx/*bfiz/bfi/bfxil), extr (and ror).

use accel_tcg::ir::{Block, Temp};

use super::{Ctx, Flow, Res, Undef};
use crate::decode::Insn;

/// `ADR Xd, label`: "0 immlo 10000 immhi Rd".
pub fn adr(c: &mut Ctx<'_>, i: Insn) -> Res {
    let imm = (i.sbits(23, 5) << 2) | i64::from(i.bits(30, 29));
    let v = c.k(c.pc.wrapping_add(imm as u64));
    c.set_x(i.rd(), v, true);
    Ok(Flow::Next)
}

/// `ADRP Xd, label`: "1 immlo 10000 immhi Rd".
pub fn adrp(c: &mut Ctx<'_>, i: Insn) -> Res {
    let imm = ((i.sbits(23, 5) << 2) | i64::from(i.bits(30, 29))) << 12;
    let v = c.k((c.pc & !0xfff).wrapping_add(imm as u64));
    c.set_x(i.rd(), v, true);
    Ok(Flow::Next)
}

/// `ADD`/`ADDS`/`SUB`/`SUBS` (immediate): "sf op S 100010 sh imm12 Rn Rd".
pub fn add_sub_imm(c: &mut Ctx<'_>, i: Insn) -> Res {
    let sf = i.sf();
    let sub = i.bit(30);
    let flags = i.bit(29);
    let imm = u64::from(i.bits(21, 10)) << if i.bit(22) { 12 } else { 0 };
    let a = c.xsp(i.rn(), sf);
    let b = c.k(imm);
    if flags {
        let r = if sub {
            c.sub_flags(a, b, sf)
        } else {
            c.add_with_carry(a, b, None, sf)
        };
        c.set_x(i.rd(), r, sf);
    } else {
        let r = if sub {
            c.bin(Block::sub, a, b)
        } else {
            c.bin(Block::add, a, b)
        };
        c.set_xsp(i.rd(), r, sf);
    }
    Ok(Flow::Next)
}

/// The Arm ARM's `DecodeBitMasks(N, imms, immr, immediate, datasize)`:
/// `(wmask, tmask)`, or `None` for a reserved combination.
pub fn decode_bit_masks(
    n: u32,
    imms: u32,
    immr: u32,
    immediate: bool,
    datasize: u32,
) -> Option<(u64, u64)> {
    let combined = (n << 6) | (!imms & 0x3f);
    if combined == 0 {
        return None;
    }
    let len = 31 - combined.leading_zeros();
    if len < 1 {
        return None;
    }
    let esize = 1u32 << len;
    if esize > datasize {
        return None;
    }
    let levels = esize - 1;
    if immediate && imms & levels == levels {
        return None;
    }
    let s = imms & levels;
    let r = immr & levels;
    let d = s.wrapping_sub(r) & levels;
    let ones = |k: u32| -> u64 { if k >= 64 { u64::MAX } else { (1u64 << k) - 1 } };
    let emask = ones(esize);
    let welem = ones(s + 1);
    let welem = if r == 0 {
        welem
    } else {
        ((welem >> r) | (welem << (esize - r))) & emask
    };
    let telem = ones(d + 1);
    let replicate = |e: u64| -> u64 {
        let mut v = 0u64;
        let mut at = 0;
        while at < datasize {
            v |= e << at;
            at += esize;
        }
        v & ones(datasize)
    };
    Some((replicate(welem), replicate(telem)))
}

/// `AND`/`ORR`/`EOR`/`ANDS` (immediate): "sf opc 100100 N immr imms Rn Rd".
pub fn logic_imm(c: &mut Ctx<'_>, i: Insn) -> Res {
    let sf = i.sf();
    let n = i.bits(22, 22);
    if !sf && n == 1 {
        return Err(Undef::Unallocated);
    }
    let datasize = if sf { 64 } else { 32 };
    let (imm, _) = decode_bit_masks(n, i.bits(15, 10), i.bits(21, 16), true, datasize)
        .ok_or(Undef::Unallocated)?;
    let a = c.x(i.rn(), sf);
    let b = c.k(imm);
    let opc = i.bits(30, 29);
    let r = match opc {
        0 | 3 => c.bin(Block::and, a, b),
        1 => c.bin(Block::or, a, b),
        _ => c.bin(Block::xor, a, b),
    };
    if opc == 3 {
        c.logic_flags(r, sf);
        c.set_x(i.rd(), r, sf);
    } else {
        c.set_xsp(i.rd(), r, sf);
    }
    Ok(Flow::Next)
}

/// `MOVN`/`MOVZ`/`MOVK`: "sf opc 100101 hw imm16 Rd".
pub fn move_wide(c: &mut Ctx<'_>, i: Insn) -> Res {
    let sf = i.sf();
    let hw = i.bits(22, 21);
    let opc = i.bits(30, 29);
    if opc == 1 || (!sf && hw >= 2) {
        return Err(Undef::Unallocated);
    }
    let shift = 16 * hw;
    let imm = u64::from(i.bits(20, 5)) << shift;
    let r = match opc {
        0 => c.k(!imm),
        2 => c.k(imm),
        _ => {
            let old = c.x(i.rd(), sf);
            let keep = c.k(!(0xffff_u64 << shift));
            let kept = c.bin(Block::and, old, keep);
            let v = c.k(imm);
            c.bin(Block::or, kept, v)
        }
    };
    c.set_x(i.rd(), r, sf);
    Ok(Flow::Next)
}

/// Rotates the `sf`-sized value `v` right by the constant `r`.
fn ror_const(c: &mut Ctx<'_>, v: Temp, r: u32, sf: bool) -> Temp {
    if r == 0 {
        return v;
    }
    if sf {
        let k = c.k(u64::from(r));
        return c.bin(Block::rotr, v, k);
    }
    let kr = c.k(u64::from(r));
    let kl = c.k(u64::from(32 - r));
    let lo = c.bin(Block::shr, v, kr);
    let hi = c.bin(Block::shl, v, kl);
    let o = c.bin(Block::or, lo, hi);
    c.trunc(o, false)
}

/// `SBFM`/`BFM`/`UBFM`: "sf opc 100110 N immr imms Rn Rd".
pub fn bitfield(c: &mut Ctx<'_>, i: Insn) -> Res {
    let sf = i.sf();
    let n = i.bits(22, 22);
    let opc = i.bits(30, 29);
    let immr = i.bits(21, 16);
    let imms = i.bits(15, 10);
    if opc == 3 || (sf as u32) != n || (!sf && (immr >= 32 || imms >= 32)) {
        return Err(Undef::Unallocated);
    }
    let datasize = if sf { 64 } else { 32 };
    let (wmask, tmask) =
        decode_bit_masks(n, imms, immr, false, datasize).ok_or(Undef::Unallocated)?;
    let src = c.x(i.rn(), sf);
    let rot = ror_const(c, src, immr, sf);
    let wm = c.k(wmask);
    let tm = c.k(tmask);
    let r = match opc {
        0 => {
            // SBFM: the field's top bit (imms) fills the bits above it.
            let bot = c.bin(Block::and, rot, wm);
            let up = c.k(u64::from(63 - imms));
            let down = c.k(63);
            let t = c.bin(Block::shl, src, up);
            let top = c.bin(Block::sar, t, down);
            let ntm = c.k(!tmask);
            let hi = c.bin(Block::and, top, ntm);
            let lo = c.bin(Block::and, bot, tm);
            c.bin(Block::or, hi, lo)
        }
        1 => {
            let dst = c.x(i.rd(), sf);
            let nwm = c.k(!wmask);
            let d1 = c.bin(Block::and, dst, nwm);
            let r1 = c.bin(Block::and, rot, wm);
            let bot = c.bin(Block::or, d1, r1);
            let ntm = c.k(!tmask);
            let hi = c.bin(Block::and, dst, ntm);
            let lo = c.bin(Block::and, bot, tm);
            c.bin(Block::or, hi, lo)
        }
        _ => {
            let m = c.k(wmask & tmask);
            c.bin(Block::and, rot, m)
        }
    };
    c.set_x(i.rd(), r, sf);
    Ok(Flow::Next)
}

/// `EXTR Rd, Rn, Rm, #lsb` (and `ROR` immediate): "sf 00 100111 N 0 Rm imms Rn Rd".
pub fn extr(c: &mut Ctx<'_>, i: Insn) -> Res {
    let sf = i.sf();
    let lsb = i.bits(15, 10);
    if (sf as u32) != i.bits(22, 22) || (!sf && lsb >= 32) {
        return Err(Undef::Unallocated);
    }
    let m = c.x(i.rm(), sf);
    if lsb == 0 {
        c.set_x(i.rd(), m, sf);
        return Ok(Flow::Next);
    }
    let n = c.x(i.rn(), sf);
    let width = if sf { 64 } else { 32 };
    let kr = c.k(u64::from(lsb));
    let kl = c.k(u64::from(width - lsb));
    let lo = c.bin(Block::shr, m, kr);
    let hi = c.bin(Block::shl, n, kl);
    let r = c.bin(Block::or, lo, hi);
    c.set_x(i.rd(), r, sf);
    Ok(Flow::Next)
}

#[cfg(test)]
mod tests {
    use super::decode_bit_masks;

    #[test]
    fn bitmask_immediates() {
        // and x0, x0, #0xff: N=1 immr=0 imms=7
        assert_eq!(decode_bit_masks(1, 7, 0, true, 64).map(|m| m.0), Some(0xff));
        // orr w0, w0, #0x55555555: N=0 immr=0 imms=0b111100
        assert_eq!(
            decode_bit_masks(0, 0b111100, 0, true, 32).map(|m| m.0),
            Some(0x5555_5555)
        );
        // 0x8000000000000000: N=1, immr=1, imms=0
        assert_eq!(
            decode_bit_masks(1, 0, 1, true, 64).map(|m| m.0),
            Some(0x8000_0000_0000_0000)
        );
        // all ones is reserved.
        assert_eq!(decode_bit_masks(1, 0b111111, 0, true, 64), None);
        assert_eq!(decode_bit_masks(0, 0b111111, 0, true, 32), None);
    }

    /// Every logical immediate, built from the Arm ARM's definition (an
    /// element of 2 to 64 bits holding a rotated run of ones, replicated),
    /// encodes to the (N, immr, imms) the decoder turns back into it.
    #[test]
    fn every_bitmask_immediate_round_trips() {
        let mut count = 0;
        for log in 1..=6u32 {
            let e = 1u32 << log;
            for s in 0..e - 1 {
                for r in 0..e {
                    let ones = (1u64 << (s + 1)) - 1;
                    let emask = if e == 64 { u64::MAX } else { (1u64 << e) - 1 };
                    let elem = if r == 0 {
                        ones
                    } else {
                        ((ones >> r) | (ones << (e - r))) & emask
                    };
                    let mut value = 0u64;
                    for k in 0..64 / e {
                        value |= elem << (k * e);
                    }
                    let n = u32::from(e == 64);
                    // imms: the element size as leading ones then a zero,
                    // followed by s.
                    let imms = ((!(2 * e - 1)) & 0x3f) | s;
                    assert_eq!(
                        decode_bit_masks(n, imms, r, true, 64).map(|m| m.0),
                        Some(value),
                        "e={e} s={s} r={r}"
                    );
                    if e <= 32 {
                        assert_eq!(
                            decode_bit_masks(0, imms, r, true, 32).map(|m| m.0),
                            Some(value & 0xffff_ffff)
                        );
                    }
                    count += 1;
                }
            }
        }
        assert_eq!(count, 5334);
    }
}
