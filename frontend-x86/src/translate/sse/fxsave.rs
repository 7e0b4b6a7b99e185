//! fxsave and fxrstor.

use accel_tcg::ir::{Block, Cond};
use iced_x86::{Mnemonic, OpKind};

use super::super::{Ctx, Flow, Res, Unsupported, status, tbflags};
use super::check_align;
use crate::state::{self, MXCSR_MASK, xmm_off};

/// fxsave/fxrstor. The SDM's 512-byte area: FCW, FSW, abridged FTW at
/// 0..5, FOP at 6, the x87 instruction and data pointers at 8 and 16
/// (64-bit offsets with REX.W, else 32-bit offsets with the selectors
/// above them), MXCSR and MXCSR_MASK at 24..32, ST0-7 at
/// 32..160, XMM0-15 at 160..416 (XMM0-7 outside 64-bit mode); the rest is
/// neither written nor read.
pub(super) fn fxsave(c: &mut Ctx<'_>, save: bool) -> Res {
    if c.i.op_kind(0) != OpKind::Memory {
        return Err(Unsupported);
    }
    if c.tb & (tbflags::TS | tbflags::EM) != 0 {
        return Ok(c.raise(status::NM, None));
    }
    let a = c.ea();
    check_align(c, a, 16);
    let wide = matches!(c.i.mnemonic(), Mnemonic::Fxsave64 | Mnemonic::Fxrstor64);
    let nxmm = if c.code64() { 16 } else { 8 };
    let at = |c: &mut Ctx<'_>, off: u64| c.op2i(Block::add, a, off);
    if save {
        // The area may span two pages.
        c.probe_store(a, 512);
        let fcw = c.ld(state::FPU_FCW_OFF);
        let fsw = c.ld(state::FPU_FSW_OFF);
        let ftw = c.ld(state::FPU_FTW_OFF);
        let fsw = c.op2i(Block::shl, fsw, 16);
        let ftw8 = c.zext(ftw, 1);
        let ftw = c.op2i(Block::shl, ftw8, 32);
        let w0 = c.op2(Block::or, fcw, fsw);
        let w0 = c.op2(Block::or, w0, ftw);
        let fop = c.ld(state::FPU_FOP_OFF);
        let fop = c.op2i(Block::shl, fop, 48);
        let w0 = c.op2(Block::or, w0, fop);
        c.qst(a, 8, w0);
        for (k, (off, sel)) in [
            (state::FPU_FIP_OFF, state::FPU_FCS_OFF),
            (state::FPU_FDP_OFF, state::FPU_FDS_OFF),
        ]
        .into_iter()
        .enumerate()
        {
            let ptr = c.ld(off);
            let v = if wide {
                ptr
            } else {
                let lo = c.zext(ptr, 4);
                let s = c.ld(sel);
                let s = c.zext(s, 2);
                let s = c.op2i(Block::shl, s, 32);
                c.op2(Block::or, lo, s)
            };
            let p = at(c, 8 + 8 * k as u64);
            c.qst(p, 8, v);
        }
        let csr = c.ld(state::MXCSR_OFF);
        let mask = c.k(MXCSR_MASK << 32);
        let w3 = c.op2(Block::or, csr, mask);
        let p = at(c, 24);
        c.qst(p, 8, w3);
        for k in 0..8usize {
            for h in 0..2usize {
                let v = c.ld(state::FPU_ST_OFF + (16 * k + 8 * h) as u32);
                let p = at(c, 32 + 16 * k as u64 + 8 * h as u64);
                c.qst(p, 8, v);
            }
        }
        for k in 0..nxmm {
            for h in 0..2usize {
                let v = c.ld(xmm_off(k, h));
                let p = at(c, 160 + 16 * k as u64 + 8 * h as u64);
                c.qst(p, 8, v);
            }
        }
        return Ok(Flow::Next);
    }
    // fxrstor: every load before any write; a reserved MXCSR bit is #GP(0).
    let w0 = c.qld(a, 8, false);
    let p = at(c, 8);
    let ip = c.qld(p, 8, false);
    let p = at(c, 16);
    let dp = c.qld(p, 8, false);
    let p = at(c, 24);
    let csr = c.qld(p, 4, false);
    let mut st = Vec::with_capacity(16);
    for k in 0..16u64 {
        let p = at(c, 32 + 8 * k);
        st.push(c.qld(p, 8, false));
    }
    let mut xmm = Vec::with_capacity(32);
    for k in 0..2 * nxmm as u64 {
        let p = at(c, 160 + 8 * k);
        xmm.push(c.qld(p, 8, false));
    }
    let bad = c.op2i(Block::and, csr, !MXCSR_MASK);
    let zero = c.k(0);
    let ok = c.b.label();
    c.b.brcond(bad, zero, Cond::Eq, ok);
    c.raise(status::GP, Some(0));
    c.b.set_label(ok);
    let fcw = c.zext(w0, 2);
    c.st(fcw, state::FPU_FCW_OFF);
    let s16 = c.op2i(Block::shr, w0, 16);
    let fsw = c.zext(s16, 2);
    c.st(fsw, state::FPU_FSW_OFF);
    let s32 = c.op2i(Block::shr, w0, 32);
    let ftw = c.zext(s32, 1);
    c.st(ftw, state::FPU_FTW_OFF);
    let s48 = c.op2i(Block::shr, w0, 48);
    let fop = c.op2i(Block::and, s48, 0x7ff);
    c.st(fop, state::FPU_FOP_OFF);
    for (v, off, sel) in [
        (ip, state::FPU_FIP_OFF, state::FPU_FCS_OFF),
        (dp, state::FPU_FDP_OFF, state::FPU_FDS_OFF),
    ] {
        if wide {
            c.st(v, off);
        } else {
            let lo = c.zext(v, 4);
            c.st(lo, off);
            let hi = c.op2i(Block::shr, v, 32);
            let s = c.zext(hi, 2);
            c.st(s, sel);
        }
    }
    c.st(csr, state::MXCSR_OFF);
    for (k, v) in st.into_iter().enumerate() {
        c.st(v, state::FPU_ST_OFF + 8 * k as u32);
    }
    for (k, v) in xmm.into_iter().enumerate() {
        c.st(v, xmm_off(k / 2, k % 2));
    }
    Ok(Flow::Next)
}
