//! SIMD&FP loads and stores: LDR/STR (B/H/S/D/Q; unsigned offset,
//! unscaled, pre/post-index, register offset, literal), LDP/STP/LDNP/STNP
//! (S/D/Q), and the Advanced SIMD structure loads and stores (LD1-LD4 and
//! ST1-ST4, multiple structures and single lanes, LD1R-LD4R, post-index).
//!
//! Everything is IR: guest accesses through the soft-MMU, registers
//! through `ld_env`/`st_env` on `A64State::v`. A 128-bit access is two
//! little-endian 64-bit ones. Single-register forms do every access before
//! writing a register; structure loads write as they go (the Arm ARM
//! leaves the destinations UNKNOWN after a fault) and write back the base
//! register last.

use accel_tcg::ir::{Block, MemOp, MemSize, Temp};

use super::fp::fp_check;
use super::{Ctx, Flow, Res, Undef};
use crate::decode::Insn;
use crate::state::v_off;

fn msize(log2: u32) -> MemSize {
    match log2 {
        0 => MemSize::B1,
        1 => MemSize::B2,
        2 => MemSize::B4,
        _ => MemSize::B8,
    }
}

impl Ctx<'_> {
    fn addk(&mut self, a: Temp, off: u64) -> Temp {
        if off == 0 {
            return a;
        }
        let k = self.k(off);
        self.bin(Block::add, a, k)
    }

    /// Loads `1 << log2` bytes (log2 up to 4) at `addr`: one or two temps.
    fn vload(&mut self, addr: Temp, log2: u32) -> [Option<Temp>; 2] {
        let mop = MemOp::new(msize(log2.min(3))).mmu(self.mmu());
        let lo = self.t();
        self.b.qemu_ld(lo, addr, mop);
        if log2 < 4 {
            return [Some(lo), None];
        }
        let a2 = self.addk(addr, 8);
        let hi = self.t();
        self.b.qemu_ld(hi, a2, mop);
        [Some(lo), Some(hi)]
    }

    /// Writes a loaded scalar into `v[t]`, clearing the rest.
    fn vset(&mut self, t: usize, vals: [Option<Temp>; 2]) {
        let zero = self.k(0);
        let lo = vals[0].unwrap_or(zero);
        let hi = vals[1].unwrap_or(zero);
        self.st(v_off(t, 0), lo);
        self.st(v_off(t, 1), hi);
    }

    /// Stores the low `1 << log2` bytes of `v[t]` at `addr`.
    fn vstore(&mut self, t: usize, addr: Temp, log2: u32) {
        let mop = MemOp::new(msize(log2.min(3))).mmu(self.mmu());
        let lo = self.ld(v_off(t, 0));
        self.b.qemu_st(lo, addr, mop);
        if log2 == 4 {
            let hi = self.ld(v_off(t, 1));
            let a2 = self.addk(addr, 8);
            self.b.qemu_st(hi, a2, mop);
        }
    }
}

/// The access size (log2 bytes) of `size`/`opc` in the register classes;
/// `None` for reserved combinations.
fn reg_size(size: u32, opc: u32) -> Option<(u32, bool)> {
    let load = opc & 1 != 0;
    if opc & 2 != 0 {
        if size != 0 {
            return None;
        }
        return Some((4, load));
    }
    Some((size, load))
}

fn single(c: &mut Ctx<'_>, log2: u32, load: bool, addr: Temp, rt: usize) {
    if load {
        let v = c.vload(addr, log2);
        c.vset(rt, v);
    } else {
        c.vstore(rt, addr, log2);
    }
}

/// `LDR`/`STR` (SIMD&FP, unsigned offset).
pub fn unsigned_offset(c: &mut Ctx<'_>, i: Insn) -> Res {
    let (log2, load) = reg_size(i.bits(31, 30), i.bits(23, 22)).ok_or(Undef::Unallocated)?;
    if let Some(f) = fp_check(c) {
        return Ok(f);
    }
    let base = c.xsp(i.rn(), true);
    let addr = c.addk(base, u64::from(i.bits(21, 10)) << log2);
    single(c, log2, load, addr, i.rd());
    Ok(Flow::Next)
}

/// `LDUR`/`STUR`, post-index and pre-index (SIMD&FP).
pub fn imm9(c: &mut Ctx<'_>, i: Insn) -> Res {
    let (log2, load) = reg_size(i.bits(31, 30), i.bits(23, 22)).ok_or(Undef::Unallocated)?;
    let mode = i.bits(11, 10);
    if mode == 2 {
        return Err(Undef::Unallocated);
    }
    if let Some(f) = fp_check(c) {
        return Ok(f);
    }
    let off = i.sbits(20, 12) as u64;
    let base = c.xsp(i.rn(), true);
    let addr = if mode == 1 { base } else { c.addk(base, off) };
    single(c, log2, load, addr, i.rd());
    match mode {
        1 => {
            let wb = c.addk(base, off);
            c.set_xsp(i.rn(), wb, true);
        }
        3 => c.set_xsp(i.rn(), addr, true),
        _ => {}
    }
    Ok(Flow::Next)
}

/// `LDR`/`STR` (SIMD&FP, register offset).
pub fn reg_offset(c: &mut Ctx<'_>, i: Insn) -> Res {
    let (log2, load) = reg_size(i.bits(31, 30), i.bits(23, 22)).ok_or(Undef::Unallocated)?;
    let option = i.bits(15, 13);
    if option & 2 == 0 {
        return Err(Undef::Unallocated);
    }
    if let Some(f) = fp_check(c) {
        return Ok(f);
    }
    let m = c.x(i.rm(), true);
    let t = c.t();
    match option {
        2 => c.b.ext32u(t, m),
        6 => c.b.ext32s(t, m),
        _ => c.b.mov(t, m),
    }
    let off = if i.bit(12) && log2 != 0 {
        let k = c.k(u64::from(log2));
        c.bin(Block::shl, t, k)
    } else {
        t
    };
    let base = c.xsp(i.rn(), true);
    let addr = c.bin(Block::add, base, off);
    single(c, log2, load, addr, i.rd());
    Ok(Flow::Next)
}

/// `LDR` (SIMD&FP, literal).
pub fn literal(c: &mut Ctx<'_>, i: Insn) -> Res {
    let log2 = match i.bits(31, 30) {
        0 => 2,
        1 => 3,
        2 => 4,
        _ => return Err(Undef::Unallocated),
    };
    if let Some(f) = fp_check(c) {
        return Ok(f);
    }
    let addr = c.k(c.pc.wrapping_add((i.sbits(23, 5) << 2) as u64));
    single(c, log2, true, addr, i.rd());
    Ok(Flow::Next)
}

/// `LDP`/`STP`/`LDNP`/`STNP` (SIMD&FP).
pub fn pair(c: &mut Ctx<'_>, i: Insn) -> Res {
    let log2 = match i.bits(31, 30) {
        0 => 2,
        1 => 3,
        2 => 4,
        _ => return Err(Undef::Unallocated),
    };
    let idx = i.bits(24, 23);
    let load = i.bit(22);
    let (rt, rt2) = (i.rd(), i.ra());
    if load && rt == rt2 {
        // CONSTRAINED UNPREDICTABLE: moat treats it as unallocated.
        return Err(Undef::Unallocated);
    }
    if let Some(f) = fp_check(c) {
        return Ok(f);
    }
    let off = (i.sbits(21, 15) << log2) as u64;
    let base = c.xsp(i.rn(), true);
    let addr = if idx == 1 { base } else { c.addk(base, off) };
    let addr2 = c.addk(addr, 1 << log2);
    if load {
        let v1 = c.vload(addr, log2);
        let v2 = c.vload(addr2, log2);
        c.vset(rt, v1);
        c.vset(rt2, v2);
    } else {
        c.vstore(rt, addr, log2);
        c.vstore(rt2, addr2, log2);
    }
    match idx {
        1 => {
            let wb = c.addk(base, off);
            c.set_xsp(i.rn(), wb, true);
        }
        3 => c.set_xsp(i.rn(), addr, true),
        _ => {}
    }
    Ok(Flow::Next)
}

/// Post-index write-back of a structure access: `Rm` or the byte count.
fn writeback(c: &mut Ctx<'_>, i: Insn, base: Temp, bytes: u64) {
    if !i.bit(23) {
        return;
    }
    let wb = if i.rm() == 31 {
        c.addk(base, bytes)
    } else {
        let m = c.x(i.rm(), true);
        c.bin(Block::add, base, m)
    };
    c.set_xsp(i.rn(), wb, true);
}

/// Element `e` (of `1 << log2` bytes) of `v[t]`, offset in the state.
fn lane_off(t: usize, log2: u32, e: u32) -> u32 {
    v_off(t % 32, 0) + (e << log2)
}

fn env_mop(log2: u32) -> MemOp {
    MemOp::new(msize(log2))
}

/// `LD1`-`LD4`/`ST1`-`ST4` (multiple structures).
pub fn multiple(c: &mut Ctx<'_>, i: Insn) -> Res {
    // The forms without post-index have bits 20:16 = 0b00000 (Arm ARM
    // C4.1, "Advanced SIMD load/store multiple structures" and "... single
    // structure"); any other value there is unallocated.
    if !i.bit(23) && i.bits(20, 16) != 0 {
        return Err(Undef::Unallocated);
    }
    let q = i.bit(30);
    let load = i.bit(22);
    let log2 = i.bits(11, 10);
    let (rpt, selem) = match i.bits(15, 12) {
        0b0000 => (1, 4),
        0b0010 => (4, 1),
        0b0100 => (1, 3),
        0b0110 => (3, 1),
        0b0111 => (1, 1),
        0b1000 => (1, 2),
        0b1010 => (2, 1),
        _ => return Err(Undef::Unallocated),
    };
    if log2 == 3 && !q && selem != 1 {
        return Err(Undef::Unallocated);
    }
    if let Some(f) = fp_check(c) {
        return Ok(f);
    }
    let ds_bytes: u32 = if q { 16 } else { 8 };
    let base = c.xsp(i.rn(), true);
    let rt = i.rd();
    let mmu = c.mmu();
    let mut off = 0u64;
    if selem == 1 {
        // LD1/ST1: whole registers, as 64-bit chunks.
        for r in 0..rpt {
            let t = (rt + r) % 32;
            let mop = MemOp::Q.mmu(mmu);
            for half in 0..(ds_bytes / 8) as usize {
                let a = c.addk(base, off);
                if load {
                    let v = c.t();
                    c.b.qemu_ld(v, a, mop);
                    c.st(v_off(t, half), v);
                } else {
                    let v = c.ld(v_off(t, half));
                    c.b.qemu_st(v, a, mop);
                }
                off += 8;
            }
            if load && !q {
                let z = c.k(0);
                c.st(v_off(t, 1), z);
            }
        }
    } else {
        let elements = ds_bytes >> log2;
        let mop = MemOp::new(msize(log2)).mmu(mmu);
        if load && !q {
            let z = c.k(0);
            for s in 0..selem {
                c.st(v_off((rt + s) % 32, 1), z);
            }
        }
        for e in 0..elements {
            for s in 0..selem {
                let a = c.addk(base, off);
                let o = lane_off(rt + s, log2, e);
                if load {
                    let v = c.t();
                    c.b.qemu_ld(v, a, mop);
                    c.b.st_env(v, o, env_mop(log2));
                } else {
                    let v = c.t();
                    c.b.ld_env(v, o, env_mop(log2));
                    c.b.qemu_st(v, a, mop);
                }
                off += 1 << log2;
            }
        }
    }
    writeback(c, i, base, off);
    Ok(Flow::Next)
}

/// `LD1`-`LD4`/`ST1`-`ST4` (single structure) and `LD1R`-`LD4R`.
pub fn single_lane(c: &mut Ctx<'_>, i: Insn) -> Res {
    // The forms without post-index have bits 20:16 = 0b00000 (Arm ARM
    // C4.1, "Advanced SIMD load/store multiple structures" and "... single
    // structure"); any other value there is unallocated.
    if !i.bit(23) && i.bits(20, 16) != 0 {
        return Err(Undef::Unallocated);
    }
    let q = i.bit(30);
    let load = i.bit(22);
    let opc = i.bits(15, 13);
    let s = u32::from(i.bit(12));
    let size = i.bits(11, 10);
    let selem = ((opc & 1) << 1 | u32::from(i.bit(21))) as usize + 1;
    let qb = u32::from(q);
    let (log2, index, replicate) = match opc >> 1 {
        0 => (0, (qb << 3) | (s << 2) | size, false),
        1 => {
            if size & 1 != 0 {
                return Err(Undef::Unallocated);
            }
            (1, (qb << 2) | (s << 1) | (size >> 1), false)
        }
        2 => {
            // size<1> set is unallocated for word and doubleword lanes.
            if size == 0 {
                (2, (qb << 1) | s, false)
            } else if s == 0 && size == 1 {
                (3, qb, false)
            } else {
                return Err(Undef::Unallocated);
            }
        }
        _ => {
            if !load || s != 0 {
                return Err(Undef::Unallocated);
            }
            (size, 0, true)
        }
    };
    if let Some(f) = fp_check(c) {
        return Ok(f);
    }
    let base = c.xsp(i.rn(), true);
    let rt = i.rd();
    let mop = MemOp::new(msize(log2)).mmu(c.mmu());
    let mut off = 0u64;
    for k in 0..selem {
        let a = c.addk(base, off);
        let t = (rt + k) % 32;
        if replicate {
            let v = c.t();
            c.b.qemu_ld(v, a, mop);
            let rep = match log2 {
                0 => 0x0101_0101_0101_0101,
                1 => 0x0001_0001_0001_0001,
                2 => 0x0000_0001_0000_0001,
                _ => 1,
            };
            let k = c.k(rep);
            let full = c.bin(Block::mul, v, k);
            c.st(v_off(t, 0), full);
            let hi = if q { full } else { c.k(0) };
            c.st(v_off(t, 1), hi);
        } else if load {
            let v = c.t();
            c.b.qemu_ld(v, a, mop);
            c.b.st_env(v, lane_off(t, log2, index), env_mop(log2));
        } else {
            let v = c.t();
            c.b.ld_env(v, lane_off(t, log2, index), env_mop(log2));
            c.b.qemu_st(v, a, mop);
        }
        off += 1 << log2;
    }
    writeback(c, i, base, off);
    Ok(Flow::Next)
}
