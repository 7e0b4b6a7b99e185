//! MMX instructions, and the SSE/SSE2/SSSE3 instructions with an mm
//! operand: calls of [`crate::mmx::helper_mmx`] (see there for the state
//! and the #MF rule), with guest memory accessed in IR before the helper
//! changes any state.
//!
//! * #UD on hosts without the x87 and SSE units, with CR0.EM, for the
//!   forms that also name an XMM register without CR4.OSFXSR, and for the
//!   SSSE3 forms on hosts without SSSE3; #NM with CR0.TS (all from the TB
//!   flags, at translation time).
//! * cvtpi2ps/cvtpi2pd with a memory source are not MMX instructions (no
//!   transition, no #MF check), as the SDM says.

use accel_tcg::ir::{Block, Cond, Temp};
use iced_x86::{EncodingKind, Instruction, Mnemonic, OpKind, Register};

use super::{Ctx, Flow, H, Res, Unsupported, status, tbflags};
use crate::mmx::{Op, SRC_TMP};
use crate::simd;
use crate::state::{XMM_TMP, xmm_off};

/// True for the instructions this module translates: they name an mm
/// register, or are emms or cvtpi2ps/cvtpi2pd (whose memory forms name
/// none).
pub fn claims(i: &Instruction) -> bool {
    matches!(
        i.mnemonic(),
        Mnemonic::Emms | Mnemonic::Cvtpi2ps | Mnemonic::Cvtpi2pd
    ) || (0..i.op_count()).any(|k| i.op_kind(k) == OpKind::Register && i.op_register(k).is_mm())
}

/// SSSE3 mnemonics (mm and xmm forms).
pub fn is_ssse3(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Pabsb
            | M::Pabsw
            | M::Pabsd
            | M::Palignr
            | M::Phaddw
            | M::Phaddd
            | M::Phaddsw
            | M::Phsubw
            | M::Phsubd
            | M::Phsubsw
            | M::Pmaddubsw
            | M::Pmulhrsw
            | M::Pshufb
            | M::Psignb
            | M::Psignw
            | M::Psignd
    )
}

/// The helper operation of a two-operand arithmetic mnemonic.
fn table(m: Mnemonic) -> Option<Op> {
    use Mnemonic as M;
    Some(match m {
        M::Paddb => Op::Paddb,
        M::Paddw => Op::Paddw,
        M::Paddd => Op::Paddd,
        M::Paddq => Op::Paddq,
        M::Psubb => Op::Psubb,
        M::Psubw => Op::Psubw,
        M::Psubd => Op::Psubd,
        M::Psubq => Op::Psubq,
        M::Paddsb => Op::Paddsb,
        M::Paddsw => Op::Paddsw,
        M::Paddusb => Op::Paddusb,
        M::Paddusw => Op::Paddusw,
        M::Psubsb => Op::Psubsb,
        M::Psubsw => Op::Psubsw,
        M::Psubusb => Op::Psubusb,
        M::Psubusw => Op::Psubusw,
        M::Pcmpeqb => Op::Pcmpeqb,
        M::Pcmpeqw => Op::Pcmpeqw,
        M::Pcmpeqd => Op::Pcmpeqd,
        M::Pcmpgtb => Op::Pcmpgtb,
        M::Pcmpgtw => Op::Pcmpgtw,
        M::Pcmpgtd => Op::Pcmpgtd,
        M::Pmullw => Op::Pmullw,
        M::Pmulhw => Op::Pmulhw,
        M::Pmulhuw => Op::Pmulhuw,
        M::Pmuludq => Op::Pmuludq,
        M::Pmaddwd => Op::Pmaddwd,
        M::Pand => Op::Pand,
        M::Pandn => Op::Pandn,
        M::Por => Op::Por,
        M::Pxor => Op::Pxor,
        M::Psllw => Op::Psllw,
        M::Pslld => Op::Pslld,
        M::Psllq => Op::Psllq,
        M::Psrlw => Op::Psrlw,
        M::Psrld => Op::Psrld,
        M::Psrlq => Op::Psrlq,
        M::Psraw => Op::Psraw,
        M::Psrad => Op::Psrad,
        M::Punpcklbw => Op::Punpcklbw,
        M::Punpcklwd => Op::Punpcklwd,
        M::Punpckldq => Op::Punpckldq,
        M::Punpckhbw => Op::Punpckhbw,
        M::Punpckhwd => Op::Punpckhwd,
        M::Punpckhdq => Op::Punpckhdq,
        M::Packsswb => Op::Packsswb,
        M::Packssdw => Op::Packssdw,
        M::Packuswb => Op::Packuswb,
        M::Pmaxub => Op::Pmaxub,
        M::Pminub => Op::Pminub,
        M::Pmaxsw => Op::Pmaxsw,
        M::Pminsw => Op::Pminsw,
        M::Pavgb => Op::Pavgb,
        M::Pavgw => Op::Pavgw,
        M::Psadbw => Op::Psadbw,
        M::Pabsb => Op::Pabsb,
        M::Pabsw => Op::Pabsw,
        M::Pabsd => Op::Pabsd,
        M::Phaddw => Op::Phaddw,
        M::Phaddd => Op::Phaddd,
        M::Phaddsw => Op::Phaddsw,
        M::Phsubw => Op::Phsubw,
        M::Phsubd => Op::Phsubd,
        M::Phsubsw => Op::Phsubsw,
        M::Pmaddubsw => Op::Pmaddubsw,
        M::Pmulhrsw => Op::Pmulhrsw,
        M::Pshufb => Op::Pshufb,
        M::Psignb => Op::Psignb,
        M::Psignw => Op::Psignw,
        M::Psignd => Op::Psignd,
        _ => return None,
    })
}

/// The number of MMX register `r`.
fn mm_num(r: Register) -> Option<usize> {
    if !r.is_mm() {
        return None;
    }
    let n = (r as u32).checked_sub(Register::MM0 as u32)? as usize;
    (n < 8).then_some(n)
}

impl Ctx<'_> {
    /// The MMX register of operand `op`.
    fn mm_op(&self, op: u32) -> Result<usize, Unsupported> {
        if self.i.op_kind(op) != OpKind::Register {
            return Err(Unsupported);
        }
        mm_num(self.i.op_register(op)).ok_or(Unsupported)
    }

    /// Calls [`crate::mmx::helper_mmx`].
    fn call_mmx(&mut self, op: Op, d: usize, s: u64, g: Option<Temp>) -> Temp {
        let h = self.helper(H::Mmx);
        let o = self.k(op as u64);
        let r = self.k(d as u64 | s << 8);
        let g = match g {
            Some(g) => g,
            None => self.k(0),
        };
        let ret = self.t();
        self.b.call_helper(Some(ret), h, &[o, r, g]);
        ret
    }

    /// The source number of operand `op` for the helper: its mm register,
    /// or [`SRC_TMP`] after loading the memory operand (#MF checked first).
    fn mm_src(&mut self, op: u32) -> Result<u64, Unsupported> {
        if self.i.op_kind(op) == OpKind::Memory {
            self.call_mmx(Op::Check, 0, 0, None);
            let bytes = self.i.memory_size().size() as u32;
            if !matches!(bytes, 1 | 2 | 4 | 8) {
                return Err(Unsupported);
            }
            let a = self.ea();
            let v = self.qld(a, bytes, false);
            self.st(v, xmm_off(XMM_TMP, 0));
            return Ok(SRC_TMP);
        }
        Ok(self.mm_op(op)? as u64)
    }
}

/// Translates an instruction [`claims`] accepted.
pub fn mmx(c: &mut Ctx<'_>, m: Mnemonic) -> Res {
    use Mnemonic as M;
    if c.i.encoding() != EncodingKind::Legacy {
        return Err(Unsupported);
    }
    let has_xmm = (0..c.i.op_count())
        .any(|k| c.i.op_kind(k) == OpKind::Register && c.i.op_register(k).is_xmm());
    if !crate::x87::available()
        || !simd::available()
        || c.tb & tbflags::EM != 0
        || (has_xmm && c.tb & tbflags::NO_SSE != 0)
        || (is_ssse3(m) && !crate::mmx::ssse3())
    {
        return Ok(c.raise(status::UD, None));
    }
    if c.tb & tbflags::TS != 0 {
        return Ok(c.raise(status::NM, None));
    }
    let imm = |c: &Ctx<'_>, k: u32| c.i.try_immediate(k).map_err(|_| Unsupported);
    match m {
        M::Emms => {
            c.call_mmx(Op::Emms, 0, 0, None);
        }
        M::Movd | M::Movq | M::Movntq => {
            if c.i.op_kind(0) == OpKind::Register && c.i.op_register(0).is_mm() {
                let d = c.mm_op(0)?;
                let v = match c.i.op_kind(1) {
                    OpKind::Register if c.i.op_register(1).is_mm() => {
                        let s = c.mm_op(1)?;
                        c.call_mmx(Op::Read, s, 0, None)
                    }
                    OpKind::Memory => {
                        c.call_mmx(Op::Check, 0, 0, None);
                        let bytes = c.op_size(1);
                        c.read_op(1, bytes)?
                    }
                    _ => {
                        let bytes = c.op_size(1);
                        c.read_op(1, bytes)?
                    }
                };
                c.call_mmx(Op::Write, d, 0, Some(v));
            } else {
                let s = c.mm_op(1)?;
                let v = c.call_mmx(Op::Read, s, 0, None);
                let bytes = c.op_size(0);
                let l = c.loc(0)?;
                c.store(l, bytes, v);
                c.call_mmx(Op::Enter, 0, 0, None);
            }
        }
        M::Movq2dq => {
            let d = c.xmm_op(0)?;
            let s = c.mm_op(1)?;
            let v = c.call_mmx(Op::Read, s, 0, None);
            let zero = c.k(0);
            c.set_xmm(d, (v, zero));
            c.call_mmx(Op::Enter, 0, 0, None);
        }
        M::Movdq2q => {
            let d = c.mm_op(0)?;
            let s = c.xmm_op(1)?;
            c.call_mmx(Op::Check, 0, 0, None);
            let v = c.ld(xmm_off(s, 0));
            c.call_mmx(Op::Write, d, 0, Some(v));
        }
        M::Pinsrw => {
            let d = c.mm_op(0)?;
            let v = match c.i.op_kind(1) {
                OpKind::Memory => {
                    c.call_mmx(Op::Check, 0, 0, None);
                    let a = c.ea();
                    c.qld(a, 2, false)
                }
                _ => c.read_op(1, 2)?,
            };
            let w = c.zext(v, 2);
            let g = c.op2i(Block::or, w, (imm(c, 2)? & 3) << 16);
            c.call_mmx(Op::Pinsrw, d, d as u64, Some(g));
        }
        M::Pextrw | M::Pmovmskb => {
            let (n, bytes) = super::gpr_num(c.i.op_register(0));
            if bytes < 4 {
                return Err(Unsupported);
            }
            let s = c.mm_op(1)?;
            let r = if m == M::Pextrw {
                let k = c.k(imm(c, 2)? & 3);
                c.call_mmx(Op::Pextrw, s, s as u64, Some(k))
            } else {
                c.call_mmx(Op::Pmovmskb, s, s as u64, None)
            };
            c.write_reg(n, bytes, false, r);
        }
        M::Maskmovq => maskmovq(c)?,
        M::Cvtpi2ps | M::Cvtpi2pd => {
            let d = c.xmm_op(0)?;
            let from_mm = c.i.op_kind(1) == OpKind::Register;
            let v = if from_mm {
                let s = c.mm_op(1)?;
                c.call_mmx(Op::Read, s, 0, None)
            } else {
                let a = c.ea();
                c.qld(a, 8, false)
            };
            let zero = c.k(0);
            c.set_xmm(XMM_TMP, (v, zero));
            if m == M::Cvtpi2ps {
                c.call_sse(simd::Op::Cvtdq2ps, XMM_TMP, XMM_TMP, None);
                let lo = c.ld(xmm_off(XMM_TMP, 0));
                c.st(lo, xmm_off(d, 0));
            } else {
                c.call_sse(simd::Op::Cvtdq2pd, d, XMM_TMP, None);
            }
            if from_mm {
                c.call_mmx(Op::Enter, 0, 0, None);
            }
        }
        M::Cvtps2pi | M::Cvttps2pi | M::Cvtpd2pi | M::Cvttpd2pi => {
            let d = c.mm_op(0)?;
            c.call_mmx(Op::Check, 0, 0, None);
            let pd = matches!(m, M::Cvtpd2pi | M::Cvttpd2pi);
            let v = if pd {
                c.src128(1, true)?
            } else {
                let lo = match c.i.op_kind(1) {
                    OpKind::Memory => {
                        let a = c.ea();
                        c.qld(a, 8, false)
                    }
                    _ => {
                        let s = c.xmm_op(1)?;
                        c.ld(xmm_off(s, 0))
                    }
                };
                (lo, c.k(0))
            };
            c.set_xmm(XMM_TMP, v);
            let op = match m {
                M::Cvtps2pi => simd::Op::Cvtps2dq,
                M::Cvttps2pi => simd::Op::Cvttps2dq,
                M::Cvtpd2pi => simd::Op::Cvtpd2dq,
                _ => simd::Op::Cvttpd2dq,
            };
            c.call_sse(op, XMM_TMP, XMM_TMP, None);
            let r = c.ld(xmm_off(XMM_TMP, 0));
            c.call_mmx(Op::Write, d, 0, Some(r));
        }
        M::Pshufw | M::Palignr => {
            let d = c.mm_op(0)?;
            let s = c.mm_src(1)?;
            let k = c.k(imm(c, 2)? & 0xff);
            let op = if m == M::Pshufw {
                Op::Pshufw
            } else {
                Op::Palignr
            };
            c.call_mmx(op, d, s, Some(k));
        }
        M::Psllw | M::Pslld | M::Psllq | M::Psrlw | M::Psrld | M::Psrlq | M::Psraw | M::Psrad
            if !matches!(c.i.op_kind(1), OpKind::Register | OpKind::Memory) =>
        {
            let d = c.mm_op(0)?;
            let count = c.k(imm(c, 1)? & 0xff);
            c.st(count, xmm_off(XMM_TMP, 0));
            let op = table(m).ok_or(Unsupported)?;
            c.call_mmx(op, d, SRC_TMP, None);
        }
        _ => {
            let op = table(m).ok_or(Unsupported)?;
            let d = c.mm_op(0)?;
            let s = c.mm_src(1)?;
            c.call_mmx(op, d, s, None);
        }
    }
    Ok(Flow::Next)
}

/// maskmovq: stores the bytes of the first register whose mask byte (in
/// the second) has its top bit set, at DS:rDI, before the transition.
fn maskmovq(c: &mut Ctx<'_>) -> Result<(), Unsupported> {
    let n = c.i.op_count();
    if n < 3 {
        return Err(Unsupported);
    }
    let addr32 = match c.i.op_kind(0) {
        OpKind::MemorySegRDI => false,
        OpKind::MemorySegEDI => true,
        _ => return Err(Unsupported),
    };
    let src = c.mm_op(n - 2)?;
    let mask = c.mm_op(n - 1)?;
    let v = c.call_mmx(Op::Read, src, 0, None);
    let m = c.call_mmx(Op::Read, mask, 0, None);
    let rdi = c.reg64(7);
    let off = if addr32 { c.zext(rdi, 4) } else { rdi };
    let a = c.add_seg_base(off, c.i.memory_segment(), addr32);
    for k in 0..8u64 {
        let bit = c.op2i(Block::shr, m, 8 * k + 7);
        let on = c.op2i(Block::and, bit, 1);
        let zero = c.k(0);
        let skip = c.b.label();
        c.b.brcond(on, zero, Cond::Eq, skip);
        let byte = c.op2i(Block::shr, v, 8 * k);
        let at = c.op2i(Block::add, a, k);
        let at = if addr32 { c.zext(at, 4) } else { at };
        c.qst(at, 1, byte);
        c.b.set_label(skip);
    }
    c.call_mmx(Op::Enter, 0, 0, None);
    Ok(())
}
