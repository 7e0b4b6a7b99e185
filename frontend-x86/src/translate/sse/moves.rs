//! SSE data movement that is not a plain 128-bit copy: scalar moves,
//! movd/movq, the half-register moves, movnti and maskmovdqu.

use accel_tcg::ir::{Block, Cond};
use iced_x86::{Mnemonic, OpKind};

use super::super::{Ctx, Flow, Res, Unsupported};
use crate::state::xmm_off;

/// movss/movsd with `bytes` 4 or 8.
pub(super) fn movs(c: &mut Ctx<'_>, bytes: u32) -> Result<(), Unsupported> {
    match (c.i.op_kind(0), c.i.op_kind(1)) {
        (OpKind::Memory, _) => {
            let s = c.xmm_op(1)?;
            let v = c.ld(xmm_off(s, 0));
            let a = c.ea();
            c.qst(a, bytes, v);
        }
        (_, OpKind::Memory) => {
            let d = c.xmm_op(0)?;
            let a = c.ea();
            let v = c.qld(a, bytes, false);
            let zero = c.k(0);
            c.set_xmm(d, (v, zero));
        }
        _ => {
            let d = c.xmm_op(0)?;
            let s = c.xmm_op(1)?;
            let v = c.ld(xmm_off(s, 0));
            let v = if bytes == 4 {
                let old = c.ld(xmm_off(d, 0));
                let keep = c.op2i(Block::and, old, !0xffff_ffff);
                let lo = c.zext(v, 4);
                c.op2(Block::or, keep, lo)
            } else {
                v
            };
            c.st(v, xmm_off(d, 0));
        }
    }
    Ok(())
}

/// movd/movq in all their forms.
pub(super) fn movdq(c: &mut Ctx<'_>) -> Result<(), Unsupported> {
    let to_xmm = c.i.op_kind(0) == OpKind::Register && c.i.op_register(0).is_xmm();
    if to_xmm {
        let d = c.xmm_op(0)?;
        let v = match c.i.op_kind(1) {
            OpKind::Register if c.i.op_register(1).is_xmm() => {
                let s = c.xmm_op(1)?;
                c.ld(xmm_off(s, 0))
            }
            _ => {
                let bytes = c.op_size(1);
                c.read_op(1, bytes)?
            }
        };
        let zero = c.k(0);
        c.set_xmm(d, (v, zero));
    } else {
        let s = c.xmm_op(1)?;
        let v = c.ld(xmm_off(s, 0));
        let bytes = c.op_size(0);
        let l = c.loc(0)?;
        c.store(l, bytes, v);
    }
    Ok(())
}

/// movlps/movlpd/movhps/movhpd/movhlps/movlhps.
pub(super) fn movlh(c: &mut Ctx<'_>, m: Mnemonic) -> Result<(), Unsupported> {
    use Mnemonic as M;
    let high = matches!(m, M::Movhps | M::Movhpd | M::Movlhps);
    if c.i.op_kind(0) == OpKind::Memory {
        let s = c.xmm_op(1)?;
        let v = c.ld(xmm_off(s, high as usize));
        let a = c.ea();
        c.qst(a, 8, v);
        return Ok(());
    }
    let d = c.xmm_op(0)?;
    let v = match (m, c.i.op_kind(1)) {
        (_, OpKind::Memory) => {
            let a = c.ea();
            c.qld(a, 8, false)
        }
        // movhlps: the source's high half; movlhps: its low half.
        (M::Movhlps, _) => {
            let s = c.xmm_op(1)?;
            c.ld(xmm_off(s, 1))
        }
        (M::Movlhps, _) => {
            let s = c.xmm_op(1)?;
            c.ld(xmm_off(s, 0))
        }
        _ => return Err(Unsupported),
    };
    c.st(v, xmm_off(d, high as usize));
    Ok(())
}

/// movnti: a plain store of a general-purpose register.
pub(super) fn movnti(c: &mut Ctx<'_>) -> Res {
    if c.i.op_kind(0) != OpKind::Memory {
        return Err(Unsupported);
    }
    let bytes = c.op_size(1);
    let v = c.read_op(1, bytes)?;
    let a = c.ea();
    c.qst(a, bytes, v);
    Ok(Flow::Next)
}

/// maskmovdqu: stores the bytes of the first register whose mask byte (in
/// the second) has its top bit set, at DS:rDI (a conditional store per
/// byte, lowest address first; the non-temporal hint is ignored).
pub(super) fn maskmovdqu(c: &mut Ctx<'_>) -> Result<(), Unsupported> {
    let n = c.i.op_count();
    if n < 3 {
        return Err(Unsupported);
    }
    let addr32 = match c.i.op_kind(0) {
        OpKind::MemorySegRDI => false,
        OpKind::MemorySegEDI => true,
        _ => return Err(Unsupported),
    };
    let src = c.xmm_op(n - 2)?;
    let mask = c.xmm_op(n - 1)?;
    let rdi = c.reg64(7);
    let off = if addr32 { c.zext(rdi, 4) } else { rdi };
    let a = c.add_seg_base(off, c.i.memory_segment(), addr32);
    for half in 0..2 {
        let v = c.ld(xmm_off(src, half));
        let m = c.ld(xmm_off(mask, half));
        for k in 0..8u64 {
            let bit = c.op2i(Block::shr, m, 8 * k + 7);
            let on = c.op2i(Block::and, bit, 1);
            let zero = c.k(0);
            let skip = c.b.label();
            c.b.brcond(on, zero, Cond::Eq, skip);
            let byte = c.op2i(Block::shr, v, 8 * k);
            let at = c.op2i(Block::add, a, 8 * half as u64 + k);
            let at = if addr32 { c.zext(at, 4) } else { at };
            c.qst(at, 1, byte);
            c.b.set_label(skip);
        }
    }
    Ok(())
}
