//! x87 instructions: each is one call of [`crate::x87::helper_x87`], which
//! runs it on the host's x87 unit; the translator does the guest memory
//! accesses around it and records the instruction and data pointers.
//!
//! * #UD on hosts without x87 ([`crate::x87::available`]), #NM when CR0.EM
//!   or CR0.TS is set (from the TB flags, at translation time); fwait
//!   raises #NM only with CR0.MP and CR0.TS both set.
//! * A memory operand is loaded into [`X86State::fpu_buf`] before the
//!   helper runs; a store is written from there after it, and only if the
//!   helper says so (an unmasked exception suppresses it). The first and
//!   last byte of a store's destination are rewritten with themselves
//!   before the helper changes any state, so a page fault stays precise.
//! * The wait forms iced decodes as one instruction (`finit` = `fwait;
//!   fninit`, and so for fclex, fsave, fstenv, fstcw, fstsw) check for a
//!   pending exception first.
//!
//! [`X86State::fpu_buf`]: crate::state::X86State::fpu_buf

use accel_tcg::ir::{Block, Cond, Temp};
use iced_x86::{Code, OpKind, Register};

use super::{Ctx, Flow, H, Res, status, tbflags};
use crate::state::{self, ctl};
use crate::x87::{Op, arg};

/// What the translator does around an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mem {
    /// No memory operand.
    None,
    /// Loads this many bytes.
    Load(u32),
    /// Stores this many bytes.
    Store(u32),
}

/// How one instruction is translated.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    op: Op,
    mem: Mem,
    /// Waits: raises #MF first if an exception is pending.
    wait: bool,
    /// A control instruction (leaves the pointers alone).
    control: bool,
    /// A wait form (`fwait` first).
    wait_form: bool,
    /// The operand holding st(i).
    sti: Option<u32>,
}

const fn s(op: Op, mem: Mem) -> Spec {
    Spec {
        op,
        mem,
        wait: true,
        control: false,
        wait_form: false,
        sti: None,
    }
}

const fn r(op: Op, operand: u32) -> Spec {
    Spec {
        sti: Some(operand),
        ..s(op, Mem::None)
    }
}

const fn ctrl(op: Op, mem: Mem, wait: bool) -> Spec {
    Spec {
        wait,
        control: true,
        ..s(op, mem)
    }
}

const fn waitf(sp: Spec) -> Spec {
    Spec {
        wait_form: true,
        ..sp
    }
}

/// The spec of an x87 instruction (`None` for anything else; fisttp
/// (SSE3) only where the host has SSE3; the undocumented aliases are not
/// handled and raise #UD).
pub fn spec(code: Code) -> Option<Spec> {
    use Code as C;
    use Mem::{Load as L, None as N, Store as S};
    use Op::*;
    Some(match code {
        C::Wait => ctrl(Wait, N, true),
        C::Fld1 => s(Fld1, N),
        C::Fldz => s(Fldz, N),
        C::Fldpi => s(Fldpi, N),
        C::Fldl2e => s(Fldl2e, N),
        C::Fldl2t => s(Fldl2t, N),
        C::Fldlg2 => s(Fldlg2, N),
        C::Fldln2 => s(Fldln2, N),
        C::Fchs => s(Fchs, N),
        C::Fabs => s(Fabs, N),
        C::Fsqrt => s(Fsqrt, N),
        C::Fprem => s(Fprem, N),
        C::Fprem1 => s(Fprem1, N),
        C::Frndint => s(Frndint, N),
        C::Fscale => s(Fscale, N),
        C::Fxtract => s(Fxtract, N),
        C::Ftst => s(Ftst, N),
        C::Fxam => s(Fxam, N),
        C::Fcompp => s(Fcompp, N),
        C::Fucompp => s(Fucompp, N),
        C::Fsin => s(Fsin, N),
        C::Fcos => s(Fcos, N),
        C::Fsincos => s(Fsincos, N),
        C::Fptan => s(Fptan, N),
        C::Fpatan => s(Fpatan, N),
        C::F2xm1 => s(F2xm1, N),
        C::Fyl2x => s(Fyl2x, N),
        C::Fyl2xp1 => s(Fyl2xp1, N),
        C::Fincstp => s(Fincstp, N),
        C::Fdecstp => s(Fdecstp, N),
        C::Fnop => s(Fnop, N),
        C::Fninit => ctrl(Fninit, N, false),
        C::Finit => waitf(ctrl(Fninit, N, false)),
        C::Fnclex => ctrl(Fnclex, N, false),
        C::Fclex => waitf(ctrl(Fnclex, N, false)),
        C::Fld_m32fp => s(FldM32, L(4)),
        C::Fld_m64fp => s(FldM64, L(8)),
        C::Fld_m80fp => s(FldM80, L(10)),
        C::Fild_m16int => s(FildM16, L(2)),
        C::Fild_m32int => s(FildM32, L(4)),
        C::Fild_m64int => s(FildM64, L(8)),
        C::Fbld_m80bcd => s(Fbld, L(10)),
        C::Fadd_m32fp => s(FaddM32, L(4)),
        C::Fadd_m64fp => s(FaddM64, L(8)),
        C::Fmul_m32fp => s(FmulM32, L(4)),
        C::Fmul_m64fp => s(FmulM64, L(8)),
        C::Fcom_m32fp => s(FcomM32, L(4)),
        C::Fcom_m64fp => s(FcomM64, L(8)),
        C::Fcomp_m32fp => s(FcompM32, L(4)),
        C::Fcomp_m64fp => s(FcompM64, L(8)),
        C::Fsub_m32fp => s(FsubM32, L(4)),
        C::Fsub_m64fp => s(FsubM64, L(8)),
        C::Fsubr_m32fp => s(FsubrM32, L(4)),
        C::Fsubr_m64fp => s(FsubrM64, L(8)),
        C::Fdiv_m32fp => s(FdivM32, L(4)),
        C::Fdiv_m64fp => s(FdivM64, L(8)),
        C::Fdivr_m32fp => s(FdivrM32, L(4)),
        C::Fdivr_m64fp => s(FdivrM64, L(8)),
        C::Fiadd_m16int => s(FiaddM16, L(2)),
        C::Fiadd_m32int => s(FiaddM32, L(4)),
        C::Fimul_m16int => s(FimulM16, L(2)),
        C::Fimul_m32int => s(FimulM32, L(4)),
        C::Ficom_m16int => s(FicomM16, L(2)),
        C::Ficom_m32int => s(FicomM32, L(4)),
        C::Ficomp_m16int => s(FicompM16, L(2)),
        C::Ficomp_m32int => s(FicompM32, L(4)),
        C::Fisub_m16int => s(FisubM16, L(2)),
        C::Fisub_m32int => s(FisubM32, L(4)),
        C::Fisubr_m16int => s(FisubrM16, L(2)),
        C::Fisubr_m32int => s(FisubrM32, L(4)),
        C::Fidiv_m16int => s(FidivM16, L(2)),
        C::Fidiv_m32int => s(FidivM32, L(4)),
        C::Fidivr_m16int => s(FidivrM16, L(2)),
        C::Fidivr_m32int => s(FidivrM32, L(4)),
        C::Fst_m32fp => s(FstM32, S(4)),
        C::Fst_m64fp => s(FstM64, S(8)),
        C::Fstp_m32fp => s(FstpM32, S(4)),
        C::Fstp_m64fp => s(FstpM64, S(8)),
        C::Fstp_m80fp => s(FstpM80, S(10)),
        C::Fist_m16int => s(FistM16, S(2)),
        C::Fist_m32int => s(FistM32, S(4)),
        C::Fistp_m16int => s(FistpM16, S(2)),
        C::Fistp_m32int => s(FistpM32, S(4)),
        C::Fistp_m64int => s(FistpM64, S(8)),
        C::Fbstp_m80bcd => s(Fbstp, S(10)),
        C::Fisttp_m16int if crate::mmx::sse3() => s(FisttpM16, S(2)),
        C::Fisttp_m32int if crate::mmx::sse3() => s(FisttpM32, S(4)),
        C::Fisttp_m64int if crate::mmx::sse3() => s(FisttpM64, S(8)),
        C::Fnstcw_m2byte => ctrl(Fnstcw, S(2), false),
        C::Fstcw_m2byte => waitf(ctrl(Fnstcw, S(2), false)),
        C::Fnstsw_m2byte => ctrl(Fnstsw, S(2), false),
        C::Fstsw_m2byte => waitf(ctrl(Fnstsw, S(2), false)),
        // fnstsw ax is inline (see `x87`); the op is only a placeholder.
        C::Fnstsw_AX => ctrl(Fnop, N, false),
        C::Fstsw_AX => waitf(ctrl(Fnop, N, false)),
        C::Fldcw_m2byte => ctrl(Fldcw, L(2), true),
        C::Fnstenv_m14byte => ctrl(Fnstenv16, S(14), false),
        C::Fnstenv_m28byte => ctrl(Fnstenv32, S(28), false),
        C::Fstenv_m14byte => waitf(ctrl(Fnstenv16, S(14), false)),
        C::Fstenv_m28byte => waitf(ctrl(Fnstenv32, S(28), false)),
        C::Fldenv_m14byte => ctrl(Fldenv16, L(14), true),
        C::Fldenv_m28byte => ctrl(Fldenv32, L(28), true),
        C::Fnsave_m94byte => ctrl(Fnsave16, S(94), false),
        C::Fnsave_m108byte => ctrl(Fnsave32, S(108), false),
        C::Fsave_m94byte => waitf(ctrl(Fnsave16, S(94), false)),
        C::Fsave_m108byte => waitf(ctrl(Fnsave32, S(108), false)),
        C::Frstor_m94byte => ctrl(Frstor16, L(94), true),
        C::Frstor_m108byte => ctrl(Frstor32, L(108), true),
        C::Fld_sti => r(FldSt, 0),
        C::Fst_sti => r(FstSt, 0),
        C::Fstp_sti => r(FstpSt, 0),
        C::Fxch_st0_sti => r(Fxch, 1),
        C::Fcom_st0_sti => r(FcomSt, 1),
        C::Fcomp_st0_sti => r(FcompSt, 1),
        C::Fucom_st0_sti => r(FucomSt, 1),
        C::Fucomp_st0_sti => r(FucompSt, 1),
        C::Ffree_sti => r(Ffree, 0),
        C::Fcomi_st0_sti => r(Fcomi, 1),
        C::Fcomip_st0_sti => r(Fcomip, 1),
        C::Fucomi_st0_sti => r(Fucomi, 1),
        C::Fucomip_st0_sti => r(Fucomip, 1),
        C::Fadd_st0_sti => r(FaddSt0, 1),
        C::Fmul_st0_sti => r(FmulSt0, 1),
        C::Fsub_st0_sti => r(FsubSt0, 1),
        C::Fsubr_st0_sti => r(FsubrSt0, 1),
        C::Fdiv_st0_sti => r(FdivSt0, 1),
        C::Fdivr_st0_sti => r(FdivrSt0, 1),
        C::Fadd_sti_st0 => r(FaddSti, 0),
        C::Fmul_sti_st0 => r(FmulSti, 0),
        C::Fsub_sti_st0 => r(FsubSti, 0),
        C::Fsubr_sti_st0 => r(FsubrSti, 0),
        C::Fdiv_sti_st0 => r(FdivSti, 0),
        C::Fdivr_sti_st0 => r(FdivrSti, 0),
        C::Faddp_sti_st0 => r(Faddp, 0),
        C::Fmulp_sti_st0 => r(Fmulp, 0),
        C::Fsubp_sti_st0 => r(Fsubp, 0),
        C::Fsubrp_sti_st0 => r(Fsubrp, 0),
        C::Fdivp_sti_st0 => r(Fdivp, 0),
        C::Fdivrp_sti_st0 => r(Fdivrp, 0),
        C::Fcmovb_st0_sti => r(Fcmovb, 1),
        C::Fcmove_st0_sti => r(Fcmove, 1),
        C::Fcmovbe_st0_sti => r(Fcmovbe, 1),
        C::Fcmovu_st0_sti => r(Fcmovu, 1),
        C::Fcmovnb_st0_sti => r(Fcmovnb, 1),
        C::Fcmovne_st0_sti => r(Fcmovne, 1),
        C::Fcmovnbe_st0_sti => r(Fcmovnbe, 1),
        C::Fcmovnu_st0_sti => r(Fcmovnu, 1),
        _ => return None,
    })
}

/// Calls the helper for `op` with `a` (see [`arg`]) and `g`; returns its
/// result.
fn call(c: &mut Ctx<'_>, op: Op, a: u64, g: Temp) -> Temp {
    let h = c.helper(H::X87);
    let (o, a) = (c.k(op as u64), c.k(a));
    let d = c.t();
    c.b.call_helper(Some(d), h, &[o, a, g]);
    d
}

/// Pieces (byte offset, size) covering `n` bytes of one 8-byte word.
fn pieces(n: u32) -> Vec<(u32, u32)> {
    let mut v = Vec::new();
    let mut off = 0;
    while off < n {
        let k = match n - off {
            8.. => 8,
            4..=7 => 4,
            2..=3 => 2,
            _ => 1,
        };
        v.push((off, k));
        off += k;
    }
    v
}

/// Loads `n` bytes at `a` into `fpu_buf`.
fn load_buf(c: &mut Ctx<'_>, a: Temp, n: u32) {
    for w in 0..n.div_ceil(8) {
        let mut word: Option<Temp> = None;
        for (off, k) in pieces((n - 8 * w).min(8)) {
            let p = c.op2i(Block::add, a, (8 * w + off) as u64);
            let v = c.qld(p, k, false);
            let v = if off == 0 {
                v
            } else {
                c.op2i(Block::shl, v, 8 * off as u64)
            };
            word = Some(match word {
                Some(x) => c.op2(Block::or, x, v),
                None => v,
            });
        }
        if let Some(word) = word {
            c.st(word, state::FPU_BUF_OFF + 8 * w);
        }
    }
}

/// Stores `n` bytes of `fpu_buf` at `a`.
fn store_buf(c: &mut Ctx<'_>, a: Temp, n: u32) {
    for w in 0..n.div_ceil(8) {
        let word = c.ld(state::FPU_BUF_OFF + 8 * w);
        for (off, k) in pieces((n - 8 * w).min(8)) {
            let p = c.op2i(Block::add, a, (8 * w + off) as u64);
            let v = if off == 0 {
                word
            } else {
                c.op2i(Block::shr, word, 8 * off as u64)
            };
            c.qst(p, k, v);
        }
    }
}

/// Rewrites the first and last byte of `n` bytes at `a` with themselves,
/// so that a fault on either page comes before the helper changes state.
fn probe(c: &mut Ctx<'_>, a: Temp, n: u32) {
    for off in [0, n as u64 - 1] {
        let p = c.op2i(Block::add, a, off);
        let b = c.qld(p, 1, false);
        c.qst(p, 1, b);
    }
}

/// The selector of segment register `r` (DS for anything else).
fn selector(c: &mut Ctx<'_>, r: Register) -> Temp {
    let n = match r {
        Register::ES => state::seg::ES,
        Register::CS => state::seg::CS,
        Register::SS => state::seg::SS,
        Register::FS => state::seg::FS,
        Register::GS => state::seg::GS,
        _ => state::seg::DS,
    };
    c.ld(state::seg_selector_off(n))
}

/// Translates an x87 instruction.
pub fn x87(c: &mut Ctx<'_>, sp: Spec) -> Res {
    if !crate::x87::available() {
        return Ok(c.raise(status::UD, None));
    }
    if sp.op == Op::Wait && !sp.wait_form {
        // fwait: #NM only with CR0.MP and CR0.TS.
        let cr0 = c.ld(state::CR0_OFF);
        let both = ctl::CR0_MP | ctl::CR0_TS;
        let bits = c.op2i(Block::and, cr0, both);
        let want = c.k(both);
        let ok = c.b.label();
        c.b.brcond(bits, want, Cond::Ne, ok);
        c.raise(status::NM, None);
        c.b.set_label(ok);
    } else if c.tb & (tbflags::EM | tbflags::TS) != 0 {
        return Ok(c.raise(status::NM, None));
    }
    let zero = c.k(0);
    if sp.wait_form {
        call(c, Op::Wait, arg::WAIT, zero);
    }
    if matches!(c.i.code(), Code::Fnstsw_AX | Code::Fstsw_AX) {
        let v = c.ld(state::FPU_FSW_OFF);
        c.write_reg(0, 2, false, v);
        return Ok(Flow::Next);
    }
    let mut a = 0;
    if sp.wait {
        a |= arg::WAIT;
    }
    if let Some(k) = sp.sti {
        let reg = c.i.op_register(k) as u64;
        a |= reg.wrapping_sub(Register::ST0 as u64) & arg::STI;
    }
    if c.tb & tbflags::PE == 0 {
        a |= arg::REAL;
    }
    match sp.op {
        Op::Fnstenv16 | Op::Fnsave16 => a |= arg::ENV16 | arg::PUT_PTRS,
        Op::Fnstenv32 | Op::Fnsave32 => a |= arg::PUT_PTRS,
        Op::Fldenv16 | Op::Frstor16 => a |= arg::ENV16 | arg::GET_PTRS,
        Op::Fldenv32 | Op::Frstor32 => a |= arg::GET_PTRS,
        _ => {}
    }
    let mut mem = None;
    if sp.mem != Mem::None {
        if c.i.op_count() == 0 || c.i.op_kind(0) != OpKind::Memory {
            return Err(super::Unsupported);
        }
        let (off, addr32) = c.ea_offset();
        let seg = c.i.memory_segment();
        let lin = c.add_seg_base(off, seg, addr32);
        mem = Some((off, lin, seg));
        match sp.mem {
            Mem::Load(n) => load_buf(c, lin, n),
            Mem::Store(n) => {
                a |= arg::STORE;
                probe(c, lin, n);
            }
            Mem::None => {}
        }
    }
    let g = if matches!(
        sp.op,
        Op::Fcmovb
            | Op::Fcmove
            | Op::Fcmovbe
            | Op::Fcmovu
            | Op::Fcmovnb
            | Op::Fcmovne
            | Op::Fcmovnbe
            | Op::Fcmovnu
    ) {
        c.eflags_arith()
    } else {
        zero
    };
    let ret = call(c, sp.op, a, g);
    if let (Mem::Store(n), Some((_, lin, _))) = (sp.mem, mem) {
        let skip = c.b.label();
        c.b.brcond(ret, zero, Cond::Eq, skip);
        store_buf(c, lin, n);
        c.b.set_label(skip);
    }
    if matches!(sp.op, Op::Fcomi | Op::Fcomip | Op::Fucomi | Op::Fucomip) {
        c.set_eflags_cc(ret);
    }
    if !sp.control {
        record_pointers(c, mem.map(|(off, _, seg)| (off, seg)));
    }
    Ok(Flow::Next)
}

/// Records the opcode and instruction pointer, and the data pointer of a
/// memory operand.
fn record_pointers(c: &mut Ctx<'_>, mem: Option<(Temp, Register)>) {
    let at = c.bytes.iter().position(|b| (0xd8..=0xdf).contains(b));
    let fop = at.map_or(0, |k| {
        let modrm = c.bytes.get(k + 1).copied().unwrap_or(0);
        ((c.bytes[k] as u64 & 7) << 8) | modrm as u64
    });
    c.sti(fop, state::FPU_FOP_OFF);
    c.sti(c.rip(), state::FPU_FIP_OFF);
    let cs = c.ld(state::seg_selector_off(state::seg::CS));
    c.st(cs, state::FPU_FCS_OFF);
    if let Some((off, seg)) = mem {
        c.st(off, state::FPU_FDP_OFF);
        let sel = selector(c, seg);
        c.st(sel, state::FPU_FDS_OFF);
    }
}
