//! Integer loads and stores: single registers (unsigned offset, unscaled,
//! pre/post-index, unprivileged, register offset, literal), pairs,
//! exclusives, load-acquire/store-release, and the ARMv8.1 LSE atomics.
//!
//! Accesses are little-endian through soft-MMU index [`MMU_EL0`] or
//! [`MMU_EL1`] (LDTR/STTR always EL0's). Only exclusives, acquire/release
//! and atomics require alignment (the soft-MMU's alignment check raises
//! an Alignment fault); ordinary accesses may be unaligned (SCTLR_EL1.A is
//! not modelled).
//!
//! Exclusives are built on `atomic_cmpxchg`: a load-exclusive records the
//! address and the value it saw in the monitor; a store-exclusive succeeds
//! iff the monitor holds its address and memory still holds that value,
//! swapped in one atomic compare-and-swap, so vCPU threads cannot both
//! succeed (a store of the same value in between goes unnoticed: the ABA
//! case QEMU accepts too). 128-bit accesses (64-bit LDXP/STXP, CASP) are
//! two 64-bit accesses: atomic on the first word only.

use accel_tcg::ir::{AtomicOp, Block, Cond, MB_LD_LD, MB_LD_ST, MemOp, MemSize, Temp};

use super::{Ctx, Flow, Res, Undef};
use crate::decode::Insn;
use crate::state::{self, MMU_EL0};

/// What a single-register access does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Store,
    /// Load, sign-extending to 64 bits (`sf`) or 32 bits if `signed`.
    Load {
        signed: bool,
        sf: bool,
    },
    Prefetch,
}

/// The access size for `size` (log2 bytes).
fn msize(size: u32) -> MemSize {
    match size {
        0 => MemSize::B1,
        1 => MemSize::B2,
        2 => MemSize::B4,
        _ => MemSize::B8,
    }
}

/// What `size`/`opc` of the load/store register classes mean.
fn classify(size: u32, opc: u32) -> Option<Kind> {
    match (size, opc) {
        (_, 0) => Some(Kind::Store),
        (_, 1) => Some(Kind::Load {
            signed: false,
            sf: true,
        }),
        (3, 2) => Some(Kind::Prefetch),
        (0..=2, 2) => Some(Kind::Load {
            signed: true,
            sf: true,
        }),
        (0..=1, 3) => Some(Kind::Load {
            signed: true,
            sf: false,
        }),
        _ => None,
    }
}

impl Ctx<'_> {
    fn mop(&self, size: u32, mmu: u8) -> MemOp {
        self.data_mop(msize(size), mmu)
    }

    /// A guest load of `size` at `addr`.
    fn load(&mut self, addr: Temp, mop: MemOp) -> Temp {
        let t = self.t();
        self.b.qemu_ld(t, addr, mop);
        t
    }

    /// `addr + off`.
    fn add_k(&mut self, addr: Temp, off: u64) -> Temp {
        if off == 0 {
            return addr;
        }
        let k = self.k(off);
        self.bin(Block::add, addr, k)
    }
}

/// Performs `kind` of register `rt` at `addr`.
fn access(c: &mut Ctx<'_>, kind: Kind, size: u32, addr: Temp, rt: usize, mmu: u8) {
    let mop = c.mop(size, mmu);
    match kind {
        Kind::Store => {
            let v = c.x(rt, true);
            c.b.qemu_st(v, addr, mop);
        }
        Kind::Load { signed, sf } => {
            let mop = if signed { mop.signed() } else { mop };
            let v = c.load(addr, mop);
            c.set_x(rt, v, sf);
        }
        Kind::Prefetch => {}
    }
}

/// `STR`/`LDR*` (unsigned offset): "size 111 0 01 opc imm12 Rn Rt".
pub fn unsigned_offset(c: &mut Ctx<'_>, i: Insn) -> Res {
    let size = i.bits(31, 30);
    let kind = classify(size, i.bits(23, 22)).ok_or(Undef::Unallocated)?;
    let base = c.base(i.rn());
    let addr = c.add_k(base, u64::from(i.bits(21, 10)) << size);
    let mmu = c.mmu();
    access(c, kind, size, addr, i.rd(), mmu);
    Ok(Flow::Next)
}

/// `STUR`/`LDUR*`, post-index, `STTR`/`LDTR*`, pre-index:
/// "size 111 0 00 opc 0 imm9 op Rn Rt".
pub fn imm9(c: &mut Ctx<'_>, i: Insn) -> Res {
    let size = i.bits(31, 30);
    let mode = i.bits(11, 10);
    let kind = classify(size, i.bits(23, 22)).ok_or(Undef::Unallocated)?;
    if kind == Kind::Prefetch && mode != 0 {
        return Err(Undef::Unallocated);
    }
    let off = i.sbits(20, 12) as u64;
    let base = c.base(i.rn());
    let (addr, mmu) = match mode {
        0 => (c.add_k(base, off), c.mmu()),
        1 => (base, c.mmu()),
        2 => (c.add_k(base, off), MMU_EL0),
        _ => (c.add_k(base, off), c.mmu()),
    };
    access(c, kind, size, addr, i.rd(), mmu);
    match mode {
        1 => {
            let wb = c.add_k(base, off);
            c.set_xsp(i.rn(), wb, true);
        }
        3 => c.set_xsp(i.rn(), addr, true),
        _ => {}
    }
    Ok(Flow::Next)
}

/// `STR`/`LDR*` (register offset): "size 111 0 00 opc 1 Rm option S 10 Rn Rt".
pub fn reg_offset(c: &mut Ctx<'_>, i: Insn) -> Res {
    let size = i.bits(31, 30);
    let option = i.bits(15, 13);
    if option & 2 == 0 {
        return Err(Undef::Unallocated);
    }
    let kind = classify(size, i.bits(23, 22)).ok_or(Undef::Unallocated)?;
    let shift = if i.bit(12) { size } else { 0 };
    let m = c.x(i.rm(), true);
    let t = c.t();
    match option {
        2 => c.b.ext32u(t, m),
        6 => c.b.ext32s(t, m),
        _ => c.b.mov(t, m),
    }
    let off = if shift == 0 {
        t
    } else {
        let k = c.k(u64::from(shift));
        c.bin(Block::shl, t, k)
    };
    let base = c.base(i.rn());
    let addr = c.bin(Block::add, base, off);
    let mmu = c.mmu();
    access(c, kind, size, addr, i.rd(), mmu);
    Ok(Flow::Next)
}

/// `LDR`/`LDRSW`/`PRFM` (literal): "opc 011 0 00 imm19 Rt".
pub fn literal(c: &mut Ctx<'_>, i: Insn) -> Res {
    let (kind, size) = match i.bits(31, 30) {
        0 => (
            Kind::Load {
                signed: false,
                sf: true,
            },
            2,
        ),
        1 => (
            Kind::Load {
                signed: false,
                sf: true,
            },
            3,
        ),
        2 => (
            Kind::Load {
                signed: true,
                sf: true,
            },
            2,
        ),
        _ => (Kind::Prefetch, 3),
    };
    let addr = c.k(c.pc.wrapping_add((i.sbits(23, 5) << 2) as u64));
    let mmu = c.mmu();
    access(c, kind, size, addr, i.rd(), mmu);
    Ok(Flow::Next)
}

/// `STP`/`LDP`/`LDPSW`/`STNP`/`LDNP`: "opc 101 0 0 idx L imm7 Rt2 Rn Rt".
pub fn pair(c: &mut Ctx<'_>, i: Insn) -> Res {
    let opc = i.bits(31, 30);
    let idx = i.bits(24, 23);
    let load = i.bit(22);
    let (size, signed) = match (opc, load) {
        (0, _) => (2, false),
        (1, true) if idx != 0 => (2, true),
        (2, _) => (3, false),
        _ => return Err(Undef::Unallocated),
    };
    let off = (i.sbits(21, 15) << size) as u64;
    let base = c.base(i.rn());
    let addr = if idx == 1 { base } else { c.add_k(base, off) };
    let addr2 = c.add_k(addr, 1 << size);
    let mop = c.mop(size, c.mmu());
    let (rt, rt2) = (i.rd(), i.ra());
    if load {
        let mop = if signed { mop.signed() } else { mop };
        let v1 = c.load(addr, mop);
        let v2 = c.load(addr2, mop);
        let sf = size == 3 || signed;
        c.set_x(rt, v1, sf);
        c.set_x(rt2, v2, sf);
    } else {
        let v1 = c.x(rt, true);
        let v2 = c.x(rt2, true);
        c.b.qemu_st(v1, addr, mop);
        c.b.qemu_st(v2, addr2, mop);
    }
    match idx {
        1 => {
            let wb = c.add_k(base, off);
            c.set_xsp(i.rn(), wb, true);
        }
        3 => c.set_xsp(i.rn(), addr, true),
        _ => {}
    }
    Ok(Flow::Next)
}

/// The load/store exclusive class, with the LSE CAS/CASP and the
/// acquire/release loads and stores that share its encoding space:
/// "size 001000 o2 L o1 Rs o0 Rt2 Rn Rt".
pub fn exclusive(c: &mut Ctx<'_>, i: Insn) -> Res {
    let size = i.bits(31, 30);
    let (o2, l, o1, o0) = (i.bit(23), i.bit(22), i.bit(21), i.bit(15));
    match (o2, o1) {
        (false, false) => {
            if l {
                load_exclusive(c, i, size, false, o0)
            } else {
                store_exclusive(c, i, size, false, o0)
            }
        }
        (false, true) if size >= 2 => {
            let wide = size == 3;
            if l {
                load_exclusive(c, i, if wide { 3 } else { 2 }, true, o0)
            } else {
                store_exclusive(c, i, if wide { 3 } else { 2 }, true, o0)
            }
        }
        (false, true) => casp(c, i, size == 1),
        (true, false) => {
            if l {
                load_acquire(c, i, size)
            } else {
                store_release(c, i, size)
            }
        }
        (true, true) => cas(c, i, size),
    }
}

/// An aligned access of `size` at the EL's index.
fn aligned(c: &Ctx<'_>, size: u32) -> MemOp {
    c.mop(size, c.mmu()).aligned()
}

fn load_exclusive(c: &mut Ctx<'_>, i: Insn, size: u32, pair: bool, acquire: bool) -> Res {
    let addr = c.base(i.rn());
    let (rt, rt2) = (i.rd(), i.ra());
    if pair && size == 2 {
        // Two words in one aligned doubleword.
        let v = c.load(addr, aligned(c, 3));
        c.st(state::EXCL_ADDR_OFF, addr);
        c.st(state::EXCL_VAL_OFF, v);
        let k = c.k(32);
        let hi = c.bin(Block::shr, v, k);
        c.set_x(rt, v, false);
        c.set_x(rt2, hi, false);
    } else if pair {
        let v1 = c.load(addr, aligned(c, 3));
        let a2 = c.add_k(addr, 8);
        let v2 = c.load(a2, aligned(c, 3));
        c.st(state::EXCL_ADDR_OFF, addr);
        c.st(state::EXCL_VAL_OFF, v1);
        c.st(state::EXCL_VAL2_OFF, v2);
        c.set_x(rt, v1, true);
        c.set_x(rt2, v2, true);
    } else {
        let v = c.load(addr, aligned(c, size));
        c.st(state::EXCL_ADDR_OFF, addr);
        c.st(state::EXCL_VAL_OFF, v);
        c.set_x(rt, v, true);
    }
    if acquire {
        c.b.mb(MB_LD_LD | MB_LD_ST);
    }
    Ok(Flow::Next)
}

fn store_exclusive(c: &mut Ctx<'_>, i: Insn, size: u32, pair: bool, _release: bool) -> Res {
    // The compare-and-swap is a full barrier: release needs nothing more.
    let addr = c.base(i.rn());
    let (rs, rt, rt2) = (i.rm(), i.rd(), i.ra());
    let result = c.t();
    let fail = c.b.label();
    let done = c.b.label();
    let marked = c.ld(state::EXCL_ADDR_OFF);
    c.b.brcond(marked, addr, Cond::Ne, fail);
    let seen = c.ld(state::EXCL_VAL_OFF);
    let (new, mop) = if pair && size == 2 {
        let lo = c.x(rt, false);
        let hi = c.x(rt2, false);
        let k = c.k(32);
        let hi = c.bin(Block::shl, hi, k);
        (c.bin(Block::or, lo, hi), aligned(c, 3))
    } else {
        (c.x(rt, true), aligned(c, size))
    };
    if pair && size == 3 {
        // The second doubleword is checked, then stored after the first
        // one's compare-and-swap: atomic on the first word only.
        let seen2 = c.ld(state::EXCL_VAL2_OFF);
        let a2 = c.add_k(addr, 8);
        let cur2 = c.load(a2, aligned(c, 3));
        c.b.brcond(cur2, seen2, Cond::Ne, fail);
        let old = c.t();
        c.b.atomic_cmpxchg(old, addr, seen, new, mop);
        c.b.brcond(old, seen, Cond::Ne, fail);
        let new2 = c.x(rt2, true);
        c.b.qemu_st(new2, a2, aligned(c, 3));
        c.b.movi(result, 0);
        c.b.br(done);
    } else {
        let old = c.t();
        c.b.atomic_cmpxchg(old, addr, seen, new, mop);
        c.b.setcond(result, old, seen, Cond::Ne);
        c.b.br(done);
    }
    c.b.set_label(fail);
    c.b.movi(result, 1);
    c.b.set_label(done);
    c.set_x(rs, result, false);
    let none = c.k(state::EXCL_NONE);
    c.st(state::EXCL_ADDR_OFF, none);
    Ok(Flow::Next)
}

/// `LDAR*`/`LDLAR*`: an aligned load, then a barrier for later accesses.
fn load_acquire(c: &mut Ctx<'_>, i: Insn, size: u32) -> Res {
    let addr = c.base(i.rn());
    let v = c.load(addr, aligned(c, size));
    c.b.mb(MB_LD_LD | MB_LD_ST);
    c.set_x(i.rd(), v, true);
    Ok(Flow::Next)
}

/// `STLR*`/`STLLR*`: an aligned store that is a full barrier (an atomic
/// exchange), so that it is ordered before a later `ldar` too (RCsc).
fn store_release(c: &mut Ctx<'_>, i: Insn, size: u32) -> Res {
    let addr = c.base(i.rn());
    let v = c.x(i.rd(), true);
    let old = c.t();
    c.b.atomic_rmw(old, addr, v, aligned(c, size), AtomicOp::Xchg);
    Ok(Flow::Next)
}

/// `CAS*` (LSE): "size 001000 1 L 1 Rs o0 11111 Rn Rt".
fn cas(c: &mut Ctx<'_>, i: Insn, size: u32) -> Res {
    // Rt2 is "should be one"; other values are CONSTRAINED UNPREDICTABLE,
    // and moat chooses UNDEFINED.
    if i.ra() != 31 {
        return Err(Undef::Unallocated);
    }
    let addr = c.base(i.rn());
    let cmp = c.x(i.rm(), true);
    let new = c.x(i.rd(), true);
    let old = c.t();
    c.b.atomic_cmpxchg(old, addr, cmp, new, aligned(c, size));
    c.set_x(i.rm(), old, true);
    Ok(Flow::Next)
}

/// `CASP*` (LSE): "0 sz 001000 0 L 1 Rs o0 11111 Rn Rt", even register pairs.
fn casp(c: &mut Ctx<'_>, i: Insn, wide: bool) -> Res {
    let (rs, rt) = (i.rm(), i.rd());
    if rs & 1 != 0 || rt & 1 != 0 || i.ra() != 31 {
        return Err(Undef::Unallocated);
    }
    let addr = c.base(i.rn());
    if !wide {
        let pack = |c: &mut Ctx<'_>, r: usize| {
            let lo = c.x(r, false);
            let hi = c.x(r + 1, false);
            let k = c.k(32);
            let hi = c.bin(Block::shl, hi, k);
            c.bin(Block::or, lo, hi)
        };
        let cmp = pack(c, rs);
        let new = pack(c, rt);
        let old = c.t();
        c.b.atomic_cmpxchg(old, addr, cmp, new, aligned(c, 3));
        let k = c.k(32);
        let hi = c.bin(Block::shr, old, k);
        c.set_x(rs, old, false);
        c.set_x(rs + 1, hi, false);
        return Ok(Flow::Next);
    }
    // Two doublewords: compare both, swap the first atomically, then store
    // the second (atomic on the first word only).
    let cmp1 = c.x(rs, true);
    let cmp2 = c.x(rs + 1, true);
    let new1 = c.x(rt, true);
    let new2 = c.x(rt + 1, true);
    let a2 = c.add_k(addr, 8);
    let old2 = c.load(a2, aligned(c, 3));
    let old1 = c.t();
    let differ = c.b.label();
    let done = c.b.label();
    c.b.brcond(old2, cmp2, Cond::Ne, differ);
    c.b.atomic_cmpxchg(old1, addr, cmp1, new1, aligned(c, 3));
    c.b.brcond(old1, cmp1, Cond::Ne, done);
    c.b.qemu_st(new2, a2, aligned(c, 3));
    c.b.br(done);
    c.b.set_label(differ);
    c.b.qemu_ld(old1, addr, aligned(c, 3));
    c.b.set_label(done);
    c.set_x(rs, old1, true);
    c.set_x(rs + 1, old2, true);
    Ok(Flow::Next)
}

/// LSE atomic memory operations and `SWP`, `LDAPR`:
/// "size 111 0 00 A R 1 Rs o3 opc 00 Rn Rt".
pub fn atomic(c: &mut Ctx<'_>, i: Insn) -> Res {
    let size = i.bits(31, 30);
    let o3 = i.bit(15);
    let opc = i.bits(14, 12);
    if o3 {
        return match opc {
            0 => {
                let addr = c.base(i.rn());
                let v = c.x(i.rm(), true);
                let old = c.t();
                c.b.atomic_rmw(old, addr, v, aligned(c, size), AtomicOp::Xchg);
                c.set_x(i.rd(), old, true);
                Ok(Flow::Next)
            }
            // LDAPR: acquire (RCpc) load, done as LDAR.
            4 if i.bit(23) && !i.bit(22) && i.rm() == 31 => load_acquire(c, i, size),
            _ => Err(Undef::Unallocated),
        };
    }
    let addr = c.base(i.rn());
    let v = c.x(i.rm(), true);
    let mop = aligned(c, size);
    let op = match opc {
        0 => Some(AtomicOp::Add),
        1 => Some(AtomicOp::And),
        2 => Some(AtomicOp::Xor),
        3 => Some(AtomicOp::Or),
        _ => None,
    };
    if let Some(op) = op {
        let v = if opc == 1 {
            let t = c.t();
            c.b.not(t, v);
            t
        } else {
            v
        };
        let old = c.t();
        c.b.atomic_rmw(old, addr, v, mop, op);
        c.set_x(i.rd(), old, true);
        return Ok(Flow::Next);
    }
    // SMAX/SMIN/UMAX/UMIN: load, compute, compare-and-swap; if memory
    // changed meanwhile, run the instruction again (a new block at this
    // pc: IR branches only go forward).
    let signed = opc < 6;
    let want_max = opc & 1 == 0;
    let lmop = if signed { mop.signed() } else { mop };
    let old = c.load(addr, lmop);
    let operand = if signed {
        let t = c.t();
        match size {
            0 => c.b.ext8s(t, v),
            1 => c.b.ext16s(t, v),
            2 => c.b.ext32s(t, v),
            _ => c.b.mov(t, v),
        }
        t
    } else {
        let t = c.t();
        match size {
            0 => c.b.ext8u(t, v),
            1 => c.b.ext16u(t, v),
            2 => c.b.ext32u(t, v),
            _ => c.b.mov(t, v),
        }
        t
    };
    let cond = match (signed, want_max) {
        (true, true) => Cond::Gt,
        (true, false) => Cond::Lt,
        (false, true) => Cond::Gtu,
        (false, false) => Cond::Ltu,
    };
    let new = c.t();
    c.b.movcond(new, old, operand, old, operand, cond);
    let seen = c.t();
    c.b.atomic_cmpxchg(seen, addr, old, new, lmop);
    let retry = c.b.label();
    c.b.brcond(seen, old, Cond::Ne, retry);
    let mask = c.k(msize(size).value_mask());
    let result = c.bin(Block::and, old, mask);
    c.set_x(i.rd(), result, true);
    let next = c.pc.wrapping_add(4);
    c.goto(0, next);
    c.b.set_label(retry);
    let pc = c.pc;
    c.goto(1, pc);
    Ok(Flow::End)
}
