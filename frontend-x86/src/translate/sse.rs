//! SSE and SSE2 (legacy encodings; VEX/EVEX and MMX forms raise #UD).
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

/// Whether a 16-byte memory operand of `m` must be aligned.
fn needs_align(m: Mnemonic) -> bool {
    !matches!(m, Mnemonic::Movups | Mnemonic::Movupd | Mnemonic::Movdqu)
}

impl Ctx<'_> {
    /// Both halves of XMM register `n`.
    fn xmm(&mut self, n: usize) -> (Temp, Temp) {
        (self.ld(xmm_off(n, 0)), self.ld(xmm_off(n, 1)))
    }

    /// Writes both halves of XMM register `n`.
    fn set_xmm(&mut self, n: usize, v: (Temp, Temp)) {
        self.st(v.0, xmm_off(n, 0));
        self.st(v.1, xmm_off(n, 1));
    }

    /// The XMM register of operand `op`.
    fn xmm_op(&self, op: u32) -> Result<usize, Unsupported> {
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
    fn src128(&mut self, op: u32, align: bool) -> Result<(Temp, Temp), Unsupported> {
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
    fn call_sse(&mut self, op: Op, d: usize, s: usize, g: Option<Temp>) -> Temp {
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
    let align = needs_align(m);
    match m {
        M::Movaps
        | M::Movups
        | M::Movapd
        | M::Movupd
        | M::Movdqa
        | M::Movdqu
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

/// movss/movsd with `bytes` 4 or 8.
fn movs(c: &mut Ctx<'_>, bytes: u32) -> Result<(), Unsupported> {
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
fn movdq(c: &mut Ctx<'_>) -> Result<(), Unsupported> {
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
fn movlh(c: &mut Ctx<'_>, m: Mnemonic) -> Result<(), Unsupported> {
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

/// The bitwise operations.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Logic {
    And,
    /// `!dst & src`
    Andn,
    Or,
    Xor,
}

/// A bitwise operation on both halves.
fn logic(c: &mut Ctx<'_>, op: Logic) -> Result<(), Unsupported> {
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
fn add_sub(c: &mut Ctx<'_>, sub: bool, high: u64) -> Result<(), Unsupported> {
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

/// movnti: a plain store of a general-purpose register.
fn movnti(c: &mut Ctx<'_>) -> Res {
    if c.i.op_kind(0) != OpKind::Memory {
        return Err(Unsupported);
    }
    let bytes = c.op_size(1);
    let v = c.read_op(1, bytes)?;
    let a = c.ea();
    c.qst(a, bytes, v);
    Ok(Flow::Next)
}

/// fxsave/fxrstor (64-bit layout; FIP, FDP and FOP are saved as zero since
/// moat keeps no x87 instruction pointers). The SDM's 512-byte area:
/// FCW, FSW, abridged FTW at 0..5, MXCSR and MXCSR_MASK at 24..32, ST0-7 at
/// 32..160, XMM0-15 at 160..416 (XMM0-7 outside 64-bit mode); the rest is
/// neither written nor read.
fn fxsave(c: &mut Ctx<'_>, save: bool) -> Res {
    if c.i.op_kind(0) != OpKind::Memory {
        return Err(Unsupported);
    }
    if c.tb & (tbflags::TS | tbflags::EM) != 0 {
        return Ok(c.raise(status::NM, None));
    }
    let a = c.ea();
    check_align(c, a, 16);
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
        c.qst(a, 8, w0);
        let zero = c.k(0);
        let p = at(c, 8);
        c.qst(p, 8, zero);
        let p = at(c, 16);
        c.qst(p, 8, zero);
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
    c.st(csr, state::MXCSR_OFF);
    for (k, v) in st.into_iter().enumerate() {
        c.st(v, state::FPU_ST_OFF + 8 * k as u32);
    }
    for (k, v) in xmm.into_iter().enumerate() {
        c.st(v, xmm_off(k / 2, k % 2));
    }
    Ok(Flow::Next)
}

/// The helper operation for mnemonic `m` (`imm`: the compare predicate).
fn helper_op(m: Mnemonic, imm: u64) -> Option<Op> {
    use Mnemonic as M;
    const CMPSS: [Op; 8] = [
        Op::Cmpss0,
        Op::Cmpss1,
        Op::Cmpss2,
        Op::Cmpss3,
        Op::Cmpss4,
        Op::Cmpss5,
        Op::Cmpss6,
        Op::Cmpss7,
    ];
    const CMPSD: [Op; 8] = [
        Op::Cmpsd0,
        Op::Cmpsd1,
        Op::Cmpsd2,
        Op::Cmpsd3,
        Op::Cmpsd4,
        Op::Cmpsd5,
        Op::Cmpsd6,
        Op::Cmpsd7,
    ];
    const CMPPS: [Op; 8] = [
        Op::Cmpps0,
        Op::Cmpps1,
        Op::Cmpps2,
        Op::Cmpps3,
        Op::Cmpps4,
        Op::Cmpps5,
        Op::Cmpps6,
        Op::Cmpps7,
    ];
    const CMPPD: [Op; 8] = [
        Op::Cmppd0,
        Op::Cmppd1,
        Op::Cmppd2,
        Op::Cmppd3,
        Op::Cmppd4,
        Op::Cmppd5,
        Op::Cmppd6,
        Op::Cmppd7,
    ];
    // Legacy SSE compares use imm8[2:0]; the other bits are ignored.
    let p = (imm & 7) as usize;
    Some(match m {
        M::Cmpss => CMPSS[p],
        M::Cmpsd => CMPSD[p],
        M::Cmpps => CMPPS[p],
        M::Cmppd => CMPPD[p],
        M::Addss => Op::Addss,
        M::Addsd => Op::Addsd,
        M::Addps => Op::Addps,
        M::Addpd => Op::Addpd,
        M::Subss => Op::Subss,
        M::Subsd => Op::Subsd,
        M::Subps => Op::Subps,
        M::Subpd => Op::Subpd,
        M::Mulss => Op::Mulss,
        M::Mulsd => Op::Mulsd,
        M::Mulps => Op::Mulps,
        M::Mulpd => Op::Mulpd,
        M::Divss => Op::Divss,
        M::Divsd => Op::Divsd,
        M::Divps => Op::Divps,
        M::Divpd => Op::Divpd,
        M::Minss => Op::Minss,
        M::Minsd => Op::Minsd,
        M::Minps => Op::Minps,
        M::Minpd => Op::Minpd,
        M::Maxss => Op::Maxss,
        M::Maxsd => Op::Maxsd,
        M::Maxps => Op::Maxps,
        M::Maxpd => Op::Maxpd,
        M::Sqrtss => Op::Sqrtss,
        M::Sqrtsd => Op::Sqrtsd,
        M::Sqrtps => Op::Sqrtps,
        M::Sqrtpd => Op::Sqrtpd,
        M::Rcpss => Op::Rcpss,
        M::Rcpps => Op::Rcpps,
        M::Rsqrtss => Op::Rsqrtss,
        M::Rsqrtps => Op::Rsqrtps,
        M::Cvtss2sd => Op::Cvtss2sd,
        M::Cvtsd2ss => Op::Cvtsd2ss,
        M::Cvtdq2ps => Op::Cvtdq2ps,
        M::Cvtps2dq => Op::Cvtps2dq,
        M::Cvttps2dq => Op::Cvttps2dq,
        M::Cvtdq2pd => Op::Cvtdq2pd,
        M::Cvtpd2dq => Op::Cvtpd2dq,
        M::Cvttpd2dq => Op::Cvttpd2dq,
        M::Cvtps2pd => Op::Cvtps2pd,
        M::Cvtpd2ps => Op::Cvtpd2ps,
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
        M::Unpcklps => Op::Unpcklps,
        M::Unpckhps => Op::Unpckhps,
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
        _ => return None,
    })
}
