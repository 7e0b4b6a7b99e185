//! SSE, SSE2, SSE3 and SSSE3 (legacy encodings; VEX/EVEX raise #UD; the
//! forms with mm operands are [`super::mmx`]'s). SSE3 and SSSE3 are
//! translated only where the host has them (they run on its units).
//!
//! XMM registers live in [`X86State::xmm`](crate::state::X86State::xmm) as
//! two quadwords each. What is cheap to say in IR is inline, on the two
//! halves: moves between registers and memory, movd/movq, the bitwise logic
//! (`xorps x, x` just stores two zeros), integer add and subtract (as SIMD
//! within a register), the 64-bit unpacks, pextrw/pinsrw,
//! ldmxcsr/stmxcsr and fxsave/fxrstor. Everything else (floating point,
//! integer arithmetic, conversions, packs, shuffles) is one call of a helper
//! in [`crate::simd`] that works on register numbers: a memory source is
//! first loaded into the scratch register [`XMM_TMP`], so that all guest
//! memory accesses happen in IR, before the helper writes anything.
//!
//! This module decodes operands and dispatches; `moves` has the scalar
//! and half-register moves, `int` the inline logic and add/subtract,
//! `fxsave` fxsave/fxrstor, and `table` maps the other mnemonics to
//! helper operations.
//!
//! # Faults
//!
//! * #UD when CR4.OSFXSR = 0 or CR0.EM = 1, #NM when CR0.TS = 1: decided at
//!   translation time from the TB flags ([`tbflags::NO_SSE`],
//!   [`tbflags::TS`]), so the translator checks nothing at run time.
//! * #GP(0) for a misaligned 16-byte memory operand, except for the
//!   unaligned moves (movups, movupd, movdqu).
//! * A store that crosses a page (unaligned 16-byte moves, fxsave) first
//!   rewrites the first byte of each page with itself: if a page is not
//!   writable the fault comes before any byte changed, keeping faults
//!   precise.
//! * Unmasked SIMD floating-point exceptions: #XM or #UD from the helper
//!   (see [`crate::simd`]).

mod fxsave;
mod int;
mod moves;
mod table;

use fxsave::fxsave;
use int::{Logic, add_sub, logic};
use moves::{maskmovdqu, movdq, movlh, movnti, movs};
use table::helper_op;

use accel_tcg::ir::{Block, Cond, Temp};
use iced_x86::{EncodingKind, Instruction, Mnemonic, OpKind, Register};

use super::{Ctx, Flow, H, Res, Unsupported, status, tbflags};
use crate::simd::{self, Op, Shuf};
use crate::state::{self, MXCSR_MASK, XMM_TMP, rflags, xmm_off};

/// True if the SSE translator handles this instruction: it names an XMM
/// register, or it is one of the SSE instructions without one.
pub fn claims(i: &Instruction) -> bool {
    use Mnemonic as M;
    if matches!(
        i.mnemonic(),
        M::Ldmxcsr
            | M::Stmxcsr
            | M::Fxsave
            | M::Fxsave64
            | M::Fxrstor
            | M::Fxrstor64
            | M::Movnti
            // with a memory source, these name no XMM register
            | M::Cvtss2si
            | M::Cvttss2si
            | M::Cvtsd2si
            | M::Cvttsd2si
    ) {
        return true;
    }
    (0..i.op_count()).any(|k| i.op_kind(k) == OpKind::Register && i.op_register(k).is_xmm())
}

/// The number of an XMM register (xmm0..xmm15).
fn xmm_num(r: Register) -> Option<usize> {
    if !r.is_xmm() {
        return None;
    }
    let n = (r as u32).checked_sub(Register::XMM0 as u32)? as usize;
    (n < 16).then_some(n)
}

/// #UD or #NM if SSE is unusable in this mode; `None` if it is usable.
fn unusable(c: &mut Ctx<'_>) -> Option<Flow> {
    if !simd::available() || c.tb & tbflags::NO_SSE != 0 {
        return Some(c.raise(status::UD, None));
    }
    if c.tb & tbflags::TS != 0 {
        return Some(c.raise(status::NM, None));
    }
    None
}

/// Raises #GP(0) unless `a` is a multiple of `align`.
fn check_align(c: &mut Ctx<'_>, a: Temp, align: u64) {
    let low = c.op2i(Block::and, a, align - 1);
    let zero = c.k(0);
    let ok = c.b.label();
    c.b.brcond(low, zero, Cond::Eq, ok);
    c.raise(status::GP, Some(0));
    c.b.set_label(ok);
}

/// The immediate operand `op` (#UD, not a panic, if it is something else).
fn imm8(c: &Ctx<'_>, op: u32) -> Result<u64, Unsupported> {
    c.i.try_immediate(op).map_err(|_| Unsupported)
}

/// SSE3 mnemonics (fisttp is the x87 translator's).
fn is_sse3(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Addsubps
            | M::Addsubpd
            | M::Haddps
            | M::Haddpd
            | M::Hsubps
            | M::Hsubpd
            | M::Movshdup
            | M::Movsldup
            | M::Movddup
            | M::Lddqu
    )
}

/// Whether a 16-byte memory operand of `m` must be aligned.
fn needs_align(m: Mnemonic) -> bool {
    !matches!(
        m,
        Mnemonic::Movups | Mnemonic::Movupd | Mnemonic::Movdqu | Mnemonic::Lddqu
    )
}

impl Ctx<'_> {
    /// Both halves of XMM register `n`.
    pub(in crate::translate) fn xmm(&mut self, n: usize) -> (Temp, Temp) {
        (self.ld(xmm_off(n, 0)), self.ld(xmm_off(n, 1)))
    }

    /// Writes both halves of XMM register `n`.
    pub(in crate::translate) fn set_xmm(&mut self, n: usize, v: (Temp, Temp)) {
        self.st(v.0, xmm_off(n, 0));
        self.st(v.1, xmm_off(n, 1));
    }

    /// The XMM register of operand `op`.
    pub(in crate::translate) fn xmm_op(&self, op: u32) -> Result<usize, Unsupported> {
        if self.i.op_kind(op) != OpKind::Register {
            return Err(Unsupported);
        }
        xmm_num(self.i.op_register(op)).ok_or(Unsupported)
    }

    /// Loads the memory operand (4, 8 or 16 bytes) zero-extended to 128
    /// bits, checking 16-byte alignment if `align`.
    fn load_mem128(&mut self, align: bool) -> Result<(Temp, Temp), Unsupported> {
        let bytes = self.i.memory_size().size() as u32;
        let a = self.ea();
        match bytes {
            16 => {
                if align {
                    check_align(self, a, 16);
                }
                let lo = self.qld(a, 8, false);
                let a8 = self.op2i(Block::add, a, 8);
                let hi = self.qld(a8, 8, false);
                Ok((lo, hi))
            }
            1 | 2 | 4 | 8 => {
                let lo = self.qld(a, bytes, false);
                Ok((lo, self.k(0)))
            }
            _ => Err(Unsupported),
        }
    }

    /// Stores 16 bytes at `a` (see the module docs for the page probe).
    fn store_mem128(&mut self, a: Temp, v: (Temp, Temp), align: bool) {
        if align {
            check_align(self, a, 16);
        } else {
            self.probe_store(a, 16);
        }
        self.qst(a, 8, v.0);
        let a8 = self.op2i(Block::add, a, 8);
        self.qst(a8, 8, v.1);
    }

    /// Makes a store of `len` bytes at `a` precise when it crosses a page:
    /// rewrites the first byte of each page with itself first, so that a
    /// fault on either page comes before any byte changed (and reports the
    /// address a split access reports: the first byte on the faulting
    /// page). Stores within one page need nothing: the page is checked
    /// before the first byte is written.
    fn probe_store(&mut self, a: Temp, len: u64) {
        let off = self.op2i(Block::and, a, 0xfff);
        let limit = self.k(0x1000 - len);
        let skip = self.b.label();
        self.b.brcond(off, limit, Cond::Leu, skip);
        let end = self.op2i(Block::add, a, len - 1);
        let second = self.op2i(Block::and, end, !0xfff);
        for p in [a, second] {
            let byte = self.qld(p, 1, false);
            self.qst(p, 1, byte);
        }
        self.b.set_label(skip);
    }

    /// Operand `op` as 128 bits: a register or memory (zero-extended).
    pub(in crate::translate) fn src128(
        &mut self,
        op: u32,
        align: bool,
    ) -> Result<(Temp, Temp), Unsupported> {
        match self.i.op_kind(op) {
            OpKind::Memory => self.load_mem128(align),
            _ => {
                let n = self.xmm_op(op)?;
                Ok(self.xmm(n))
            }
        }
    }

    /// The register number a helper should read operand `op` from: its
    /// XMM register, or [`XMM_TMP`] loaded from memory.
    fn src_reg(&mut self, op: u32, align: bool) -> Result<usize, Unsupported> {
        if self.i.op_kind(op) == OpKind::Memory {
            let v = self.load_mem128(align)?;
            self.set_xmm(XMM_TMP, v);
            return Ok(XMM_TMP);
        }
        self.xmm_op(op)
    }

    /// Calls [`simd::helper_sse`]; returns its general-purpose result.
    pub(in crate::translate) fn call_sse(
        &mut self,
        op: Op,
        d: usize,
        s: usize,
        g: Option<Temp>,
    ) -> Temp {
        // Integer operations cannot fault: no exit check after the call.
        let h = self.helper(if op.is_fp() { H::Sse } else { H::SseInt });
        let o = self.k(op as u64);
        let r = self.k((d | s << 8) as u64);
        let g = match g {
            Some(g) => g,
            None => self.k(0),
        };
        let ret = self.t();
        self.b.call_helper(Some(ret), h, &[o, r, g]);
        ret
    }

    /// Calls [`simd::helper_shuffle`].
    fn call_shuffle(&mut self, op: Shuf, d: usize, s: usize, imm: u64) {
        let h = self.helper(H::Shuffle);
        let o = self.k(op as u64);
        let r = self.k((d | s << 8) as u64);
        let i = self.k(imm & 0xff);
        self.b.call_helper(None, h, &[o, r, i]);
    }
}

/// Translates an instruction [`claims`] accepted.
pub fn sse(c: &mut Ctx<'_>, m: Mnemonic) -> Res {
    use Mnemonic as M;
    if c.i.encoding() != EncodingKind::Legacy
        || (0..c.i.op_count())
            .any(|k| c.i.op_kind(k) == OpKind::Register && c.i.op_register(k).is_mm())
    {
        return Err(Unsupported);
    }
    match m {
        M::Movnti => return movnti(c),
        M::Fxsave | M::Fxsave64 | M::Fxrstor | M::Fxrstor64 => {
            return fxsave(c, matches!(m, M::Fxsave | M::Fxsave64));
        }
        _ => {}
    }
    if let Some(f) = unusable(c) {
        return Ok(f);
    }
    if (is_sse3(m) && !crate::mmx::sse3()) || (super::mmx::is_ssse3(m) && !crate::mmx::ssse3()) {
        return Ok(c.raise(status::UD, None));
    }
    let align = needs_align(m);
    match m {
        M::Movaps
        | M::Movups
        | M::Movapd
        | M::Movupd
        | M::Movdqa
        | M::Movdqu
        | M::Lddqu
        | M::Movntps
        | M::Movntpd
        | M::Movntdq => {
            if c.i.op_kind(0) == OpKind::Memory {
                let n = c.xmm_op(1)?;
                let v = c.xmm(n);
                let a = c.ea();
                c.store_mem128(a, v, align);
            } else {
                let d = c.xmm_op(0)?;
                let v = c.src128(1, align)?;
                c.set_xmm(d, v);
            }
        }
        M::Movss | M::Movsd => movs(c, if m == M::Movss { 4 } else { 8 })?,
        M::Movd | M::Movq => movdq(c)?,
        M::Maskmovdqu => maskmovdqu(c)?,
        M::Movlps | M::Movlpd | M::Movhps | M::Movhpd | M::Movhlps | M::Movlhps => movlh(c, m)?,
        M::Andps | M::Andpd | M::Pand => logic(c, Logic::And)?,
        M::Andnps | M::Andnpd | M::Pandn => logic(c, Logic::Andn)?,
        M::Orps | M::Orpd | M::Por => logic(c, Logic::Or)?,
        M::Xorps | M::Xorpd | M::Pxor => logic(c, Logic::Xor)?,
        M::Paddb | M::Paddw | M::Paddd | M::Paddq | M::Psubb | M::Psubw | M::Psubd | M::Psubq => {
            let high = match m {
                M::Paddb | M::Psubb => 0x8080_8080_8080_8080,
                M::Paddw | M::Psubw => 0x8000_8000_8000_8000,
                M::Paddd | M::Psubd => 0x8000_0000_8000_0000,
                _ => 0,
            };
            add_sub(
                c,
                matches!(m, M::Psubb | M::Psubw | M::Psubd | M::Psubq),
                high,
            )?
        }
        M::Unpcklpd | M::Punpcklqdq | M::Unpckhpd | M::Punpckhqdq => {
            let d = c.xmm_op(0)?;
            let s = c.src128(1, align)?;
            let x = c.xmm(d);
            let v = if matches!(m, M::Unpcklpd | M::Punpcklqdq) {
                (x.0, s.0)
            } else {
                (x.1, s.1)
            };
            c.set_xmm(d, v);
        }
        M::Pshufd | M::Pshuflw | M::Pshufhw | M::Shufps | M::Shufpd => {
            let op = match m {
                M::Pshufd => Shuf::Pshufd,
                M::Pshuflw => Shuf::Pshuflw,
                M::Pshufhw => Shuf::Pshufhw,
                M::Shufps => Shuf::Shufps,
                _ => Shuf::Shufpd,
            };
            let s = c.src_reg(1, align)?;
            let d = c.xmm_op(0)?;
            let imm = imm8(c, 2)?;
            c.call_shuffle(op, d, s, imm);
        }
        M::Palignr => {
            let s = c.src_reg(1, align)?;
            let d = c.xmm_op(0)?;
            let imm = imm8(c, 2)?;
            c.call_shuffle(Shuf::Palignr, d, s, imm);
        }
        M::Pslldq | M::Psrldq => {
            let d = c.xmm_op(0)?;
            let op = if m == M::Pslldq {
                Shuf::Pslldq
            } else {
                Shuf::Psrldq
            };
            let imm = imm8(c, 1)?;
            c.call_shuffle(op, d, d, imm);
        }
        M::Pextrw => {
            if c.i.op_kind(0) != OpKind::Register {
                return Err(Unsupported);
            }
            let s = c.xmm_op(1)?;
            let k = imm8(c, 2)? & 7;
            let q = c.ld(xmm_off(s, (k / 4) as usize));
            let sh = c.op2i(Block::shr, q, 16 * (k % 4));
            let w = c.zext(sh, 2);
            let (n, bytes) = super::gpr_num(c.i.op_register(0));
            if bytes < 4 {
                return Err(Unsupported);
            }
            c.write_reg(n, bytes, false, w);
        }
        M::Pinsrw => {
            let d = c.xmm_op(0)?;
            let v = match c.i.op_kind(1) {
                OpKind::Memory => {
                    let a = c.ea();
                    c.qld(a, 2, false)
                }
                _ => c.read_op(1, 2)?,
            };
            let k = imm8(c, 2)? & 7;
            let off = xmm_off(d, (k / 4) as usize);
            let q = c.ld(off);
            let keep = c.op2i(Block::and, q, !(0xffff << (16 * (k % 4))));
            let w = c.zext(v, 2);
            let sh = c.op2i(Block::shl, w, 16 * (k % 4));
            let n = c.op2(Block::or, keep, sh);
            c.st(n, off);
        }
        M::Ldmxcsr => {
            let a = c.ea();
            let v = c.qld(a, 4, false);
            let bad = c.op2i(Block::and, v, !MXCSR_MASK);
            let zero = c.k(0);
            let ok = c.b.label();
            c.b.brcond(bad, zero, Cond::Eq, ok);
            c.raise(status::GP, Some(0));
            c.b.set_label(ok);
            c.st(v, state::MXCSR_OFF);
        }
        M::Stmxcsr => {
            let a = c.ea();
            let v = c.ld(state::MXCSR_OFF);
            c.qst(a, 4, v);
        }
        M::Psllw | M::Pslld | M::Psllq | M::Psrlw | M::Psrld | M::Psrlq | M::Psraw | M::Psrad
            if c.i.op_kind(1) != OpKind::Register && c.i.op_kind(1) != OpKind::Memory =>
        {
            // By an immediate: the count goes through the scratch register
            // and the by-register form (same semantics for any count).
            let d = c.xmm_op(0)?;
            let count = c.k(imm8(c, 1)? & 0xff);
            let zero = c.k(0);
            c.set_xmm(XMM_TMP, (count, zero));
            let op = helper_op(m, 0).ok_or(Unsupported)?;
            c.call_sse(op, d, XMM_TMP, None);
        }
        M::Cvtsi2ss | M::Cvtsi2sd => {
            let d = c.xmm_op(0)?;
            let bytes = c.op_size(1);
            let g = c.read_op(1, bytes)?;
            let op = match (m == M::Cvtsi2ss, bytes == 8) {
                (true, false) => Op::Cvtsi2ss32,
                (true, true) => Op::Cvtsi2ss64,
                (false, false) => Op::Cvtsi2sd32,
                (false, true) => Op::Cvtsi2sd64,
            };
            c.call_sse(op, d, d, Some(g));
        }
        M::Cvtss2si
        | M::Cvttss2si
        | M::Cvtsd2si
        | M::Cvttsd2si
        | M::Movmskps
        | M::Movmskpd
        | M::Pmovmskb => {
            let (n, bytes) = super::gpr_num(c.i.op_register(0));
            if bytes < 4 {
                return Err(Unsupported);
            }
            let wide = bytes == 8;
            let op = match m {
                M::Cvtss2si if wide => Op::Cvtss2si64,
                M::Cvtss2si => Op::Cvtss2si32,
                M::Cvttss2si if wide => Op::Cvttss2si64,
                M::Cvttss2si => Op::Cvttss2si32,
                M::Cvtsd2si if wide => Op::Cvtsd2si64,
                M::Cvtsd2si => Op::Cvtsd2si32,
                M::Cvttsd2si if wide => Op::Cvttsd2si64,
                M::Cvttsd2si => Op::Cvttsd2si32,
                M::Movmskps => Op::Movmskps,
                M::Movmskpd => Op::Movmskpd,
                _ => Op::Pmovmskb,
            };
            let s = c.src_reg(1, align)?;
            let r = c.call_sse(op, XMM_TMP, s, None);
            c.write_reg(n, bytes, false, r);
        }
        M::Comiss | M::Ucomiss | M::Comisd | M::Ucomisd => {
            let d = c.xmm_op(0)?;
            let s = c.src_reg(1, align)?;
            let op = match m {
                M::Comiss => Op::Comiss,
                M::Ucomiss => Op::Ucomiss,
                M::Comisd => Op::Comisd,
                _ => Op::Ucomisd,
            };
            // (The helper writes xmm0 back unchanged: comiss writes no XMM.)
            let f = c.call_sse(op, d, s, None);
            let zpc = c.op2i(Block::and, f, rflags::ZF | rflags::PF | rflags::CF);
            c.set_eflags_cc(zpc);
        }
        _ => {
            let imm = if c.i.op_count() > 2 { imm8(c, 2)? } else { 0 };
            let op = helper_op(m, imm).ok_or(Unsupported)?;
            let s = c.src_reg(1, align)?;
            let d = c.xmm_op(0)?;
            c.call_sse(op, d, s, None);
        }
    }
    Ok(Flow::Next)
}
