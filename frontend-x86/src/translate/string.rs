//! String instructions: movs, stos, lods, cmps, scas, with rep/repe/repne.
//!
//! Without a prefix an instruction is one iteration inline. With a prefix
//! it ends the block: the block runs up to [`UNROLL`] iterations (IR
//! branches only go forward, so the loop is unrolled), then jumps to itself
//! while iterations remain, or to the next instruction. Every iteration
//! does its memory accesses before it updates rsi/rdi/rcx, so a fault in
//! iteration k leaves the registers as after iteration k-1 with rip still at
//! the instruction, which is what the manual specifies for rep strings.

use accel_tcg::ir::{Block, Cond, Temp};
use iced_x86::{Mnemonic, OpKind, Register};

use super::{Ctx, Flow, Res, Unsupported};
use crate::state::{self, rflags};

/// Iterations per block execution of a rep string instruction.
pub const UNROLL: usize = 8;

const RCX: usize = 1;
const RSI: usize = 6;
const RDI: usize = 7;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Movs,
    Stos,
    Lods,
    Cmps,
    Scas,
}

/// Element size in bytes for a string mnemonic.
fn elem(m: Mnemonic) -> (Kind, u32) {
    use Mnemonic as M;
    match m {
        M::Movsb => (Kind::Movs, 1),
        M::Movsw => (Kind::Movs, 2),
        M::Movsd => (Kind::Movs, 4),
        M::Movsq => (Kind::Movs, 8),
        M::Stosb => (Kind::Stos, 1),
        M::Stosw => (Kind::Stos, 2),
        M::Stosd => (Kind::Stos, 4),
        M::Stosq => (Kind::Stos, 8),
        M::Lodsb => (Kind::Lods, 1),
        M::Lodsw => (Kind::Lods, 2),
        M::Lodsd => (Kind::Lods, 4),
        M::Lodsq => (Kind::Lods, 8),
        M::Cmpsb => (Kind::Cmps, 1),
        M::Cmpsw => (Kind::Cmps, 2),
        M::Cmpsd => (Kind::Cmps, 4),
        M::Cmpsq => (Kind::Cmps, 8),
        M::Scasb => (Kind::Scas, 1),
        M::Scasw => (Kind::Scas, 2),
        _ => (Kind::Scas, if m == M::Scasd { 4 } else { 8 }),
    }
}

/// Address size of the string operands (2, 4 or 8 bytes).
pub fn addr_size(c: &Ctx<'_>) -> Result<u32, Unsupported> {
    for op in 0..c.i.op_count() {
        match c.i.op_kind(op) {
            OpKind::MemorySegESI | OpKind::MemorySegEDI | OpKind::MemoryESEDI => return Ok(4),
            OpKind::MemorySegRSI | OpKind::MemorySegRDI | OpKind::MemoryESRDI => return Ok(8),
            OpKind::MemorySegSI | OpKind::MemorySegDI | OpKind::MemoryESDI => return Ok(2),
            _ => {}
        }
    }
    Err(Unsupported)
}

/// The per-element step: +size, or -size when DF is set.
pub fn step(c: &mut Ctx<'_>, size: u32) -> Temp {
    let e = c.ld(state::EFLAGS_OFF);
    let df = c.op2i(Block::and, e, rflags::DF);
    let z = c.k(0);
    let up = c.k(size as u64);
    let down = c.k((size as u64).wrapping_neg());
    let s = c.t();
    c.b.movcond(s, df, z, up, down, Cond::Eq);
    s
}

/// A string instruction.
pub fn string(c: &mut Ctx<'_>, m: Mnemonic) -> Res {
    let (k, size) = elem(m);
    let asz = addr_size(c)?;
    let rep = c.i.has_rep_prefix() || c.i.has_repe_prefix() || c.i.has_repne_prefix();
    // The source segment may be overridden; the destination is always ES.
    let src_seg = c.i.memory_segment();
    let st = step(c, size);
    if !rep {
        iteration(c, k, size, asz, src_seg, st);
        return Ok(Flow::Next);
    }
    let done = c.b.label();
    let zero = c.k(0);
    for _ in 0..UNROLL {
        let cnt = c.read_reg(RCX, asz, false);
        c.b.brcond(cnt, zero, Cond::Eq, done);
        iteration(c, k, size, asz, src_seg, st);
        let cnt = c.read_reg(RCX, asz, false);
        let n = c.op2i(Block::sub, cnt, 1);
        c.write_reg(RCX, asz, false, n);
        if matches!(k, Kind::Cmps | Kind::Scas) {
            // repe stops when ZF = 0 (not equal), repne when ZF = 1.
            let (a, b, cond) = c.cond(iced_x86::ConditionCode::e);
            let stop = if c.i.has_repne_prefix() {
                cond
            } else {
                cond.invert()
            };
            c.b.brcond(a, b, stop, done);
        }
    }
    // Iterations remain (or will be found to be none): run this instruction again.
    c.goto(0, c.rip());
    c.b.set_label(done);
    c.cc = super::Cc::Unknown;
    c.goto(1, c.next_rip());
    Ok(Flow::End)
}

/// Linear address of index register `n` (rsi/rdi) with segment `sreg`.
fn addr(c: &mut Ctx<'_>, n: usize, asz: u32, sreg: Register) -> Temp {
    let off = c.read_reg(n, asz, false);
    c.add_seg_base(off, sreg, asz == 4)
}

/// Advances index register `n` by `st` at address size `asz`.
fn advance(c: &mut Ctx<'_>, n: usize, asz: u32, st: Temp) {
    let v = c.reg64(n);
    let nv = c.op2(Block::add, v, st);
    c.write_reg(n, asz, false, nv);
}

/// One iteration: memory first, then registers and flags.
fn iteration(c: &mut Ctx<'_>, k: Kind, size: u32, asz: u32, src_seg: Register, st: Temp) {
    match k {
        Kind::Movs => {
            let s = addr(c, RSI, asz, src_seg);
            let d = addr(c, RDI, asz, Register::ES);
            let v = c.qld(s, size, false);
            c.qst(d, size, v);
            advance(c, RSI, asz, st);
            advance(c, RDI, asz, st);
        }
        Kind::Stos => {
            let d = addr(c, RDI, asz, Register::ES);
            let v = c.read_reg(0, size, false);
            c.qst(d, size, v);
            advance(c, RDI, asz, st);
        }
        Kind::Lods => {
            let s = addr(c, RSI, asz, src_seg);
            let v = c.qld(s, size, false);
            c.write_reg(0, size, false, v);
            advance(c, RSI, asz, st);
        }
        Kind::Cmps => {
            let s = addr(c, RSI, asz, src_seg);
            let d = addr(c, RDI, asz, Register::ES);
            let a = c.qld(s, size, false);
            let b = c.qld(d, size, false);
            advance(c, RSI, asz, st);
            advance(c, RDI, asz, st);
            sub_flags(c, a, b, size);
        }
        Kind::Scas => {
            let d = addr(c, RDI, asz, Register::ES);
            let b = c.qld(d, size, false);
            let a = c.read_reg(0, size, false);
            advance(c, RDI, asz, st);
            sub_flags(c, a, b, size);
        }
    }
}

fn sub_flags(c: &mut Ctx<'_>, a: Temp, b: Temp, size: u32) {
    let raw = c.op2(Block::sub, a, b);
    let res = c.zext(raw, size);
    c.set_cc_sub(size, a, res, b);
}
