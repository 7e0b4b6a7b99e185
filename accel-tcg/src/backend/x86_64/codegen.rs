//! Code generation for one block, with a register allocator across the
//! whole block.
//!
//! # Register allocation
//!
//! A greedy local allocator driven by each temp's last use (one backward
//! scan computes it). A temp's value lives in any of: a host register, its
//! spill slot in the frame, or (after `movi`) nowhere at all but as a known
//! constant that instructions use as an immediate. Values are only loaded
//! into registers when an instruction needs them, and only stored to a slot
//! when a register must be freed or control flow joins. When registers run
//! out, the one whose temp is used last is evicted.
//!
//! Branches only go forward, so the state at a label is simple to agree on:
//! on every edge into a label (each `br`/`brcond` to it, and falling
//! through to it) the temps live at the label are made present in their
//! spill slots (stores only for values not already there), and after the
//! label they are read from there. Liveness at labels comes from one
//! backward walk, so a side exit (`brcond` to a label that only leaves the
//! block, as front ends emit for guest exceptions) stores nothing, and
//! blocks without internal branches (most) never spill except under
//! register pressure.
//!
//! Everything the allocator emits (`mov` between registers, to and from
//! slots, of immediates) leaves the flags alone, so compare-and-branch
//! sequences may allocate between the compare and its use.

// dynasm's expansion converts dynamic register numbers with `.into()`.
#![allow(clippy::useless_conversion)]

use dynasmrt::{DynamicLabel, DynasmApi, DynasmLabelApi};

use super::{Asm, CompileError, SAVE_AREA, SPILL_SLOTS, asm, exit_kind};
use crate::ir::{AtomicOp, Block, Cond, HelperId, MemOp, MemSize, Op, Opcode, Temp, Ty};
use crate::softmmu::{
    self, EXIT_AUX_OFFSET, EXIT_KIND_OFFSET, EXIT_PC_OFFSET, EXIT_REQUEST_OFFSET, EXIT_SLOT_OFFSET,
    HEADER_SIZE, HELPER_EXIT_OFFSET, JMP_CACHE_ENTRY_BITS, JMP_CACHE_OFFSET, JMP_CACHE_SIZE,
    NB_MMU_MODES, PAGE_BITS, PAGE_MASK, TB_FLAGS_OFFSET, TLB_ENTRY_BITS, TLB_SIZE, tlb_offset,
};

const RAX: u8 = 0;
const RCX: u8 = 1;
const RDX: u8 = 2;
const RSI: u8 = 6;
const RDI: u8 = 7;
const R8: u8 = 8;
const R9: u8 = 9;

/// Registers temps may live in, in order of preference: callee-saved first
/// (they survive helper calls), `rax`/`rcx`/`rdx` last (division, shifts and
/// calls need them).
const ALLOCATABLE: [u8; 12] = [3, 5, 12, 13, 15, RSI, RDI, R8, R9, RDX, RCX, RAX];
const CALLEE_SAVED: u16 = 1 << 3 | 1 << 5 | 1 << 12 | 1 << 13 | 1 << 15;
const CALLER_SAVED: u16 = 1 << RAX | 1 << RCX | 1 << RDX | 1 << RSI | 1 << RDI | 1 << R8 | 1 << R9;
const ARG_REGS: [u8; 5] = [RSI, RDX, RCX, R8, R9];

const NO_REG: u8 = 0xff;
const LABEL_USED: u8 = 1;
const LABEL_SET: u8 = 2;
const NO_TEMP: u32 = u32::MAX;
const NO_SLOT: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct TempState {
    reg: u8,
    /// The value is in the spill slot.
    mem: bool,
    /// The value is this constant.
    konst: Option<u64>,
    slot: u32,
}

const EMPTY: TempState = TempState {
    reg: NO_REG,
    mem: false,
    konst: None,
    slot: NO_SLOT,
};

/// Buffers kept between compilations.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    temps: Vec<TempState>,
    last_use: Vec<u32>,
    order: Vec<u32>,
    free_slots: Vec<u32>,
    labels: Vec<DynamicLabel>,
    stubs: Vec<Stub>,
    count: Vec<u32>,
    /// Live-in temps per label, `words` bits each.
    label_live: Vec<u64>,
    /// Scratch live set for computing `label_live`.
    live: Vec<u64>,
    /// Per label: unseen, branched to, or set (during the last-use scan).
    label_set: Vec<u8>,
    /// Pending `st_env_fault` stores during the last-use scan: (offset,
    /// end, temp).
    pend_scan: Vec<(u32, u32, Temp)>,
    /// Pending `st_env_fault` stores during code generation.
    pending: Vec<(Temp, u32, MemSize)>,
    /// Where pending stores' values are at each fault point (stubs refer to
    /// ranges of this).
    deferred: Vec<(Loc, u32, MemSize)>,
}

/// Where a value is, as recorded for a fault path.
#[derive(Debug, Clone, Copy)]
enum Loc {
    Reg(u8),
    Imm(u64),
    Slot(i32),
}

/// Out-of-line code emitted after the block's main body.
#[derive(Debug, Clone, Copy)]
struct Stub {
    entry: DynamicLabel,
    back: DynamicLabel,
    pc: u64,
    kind: StubKind,
    /// `Scratch::deferred[start..end]`: stores to perform before a fault
    /// or helper exit.
    deferred: (u32, u32),
}

#[derive(Debug, Clone, Copy)]
enum StubKind {
    Load {
        addr: u8,
        dst: u8,
        bits: u64,
        save: u16,
    },
    Store {
        addr: u8,
        val: Val,
        bits: u64,
        save: u16,
    },
    /// `atomic_rmw`/`atomic_cmpxchg`: the result goes to rax.
    Atomic {
        addr: u8,
        x: u8,
        y: u8,
        bits: u64,
        save: u16,
    },
    HelperExit,
    Interrupt,
}

/// A value operand: a register or an immediate.
#[derive(Debug, Clone, Copy)]
enum Val {
    Reg(u8),
    Imm(i64),
}

/// What [`compile`] produces.
pub(crate) struct Output {
    pub code: Vec<u8>,
    /// (chain slot, offset of the jump displacement)
    pub jumps: Vec<(u8, usize)>,
}

struct Gen<'a> {
    a: Asm,
    blk: &'a Block,
    s: &'a mut Scratch,
    owner: [u32; 16],
    locked: u16,
    i: u32,
    next_slot: u32,
    expire_pos: usize,
    pc: u64,
    exit_addr: usize,
    base: usize,
    jumps: Vec<(u8, usize)>,
    too_many: bool,
    /// Words per live set.
    words: usize,
}

/// Compiles `blk` into code that will live at executable address `base`.
pub(crate) fn compile(
    blk: &Block,
    env_size: usize,
    base: usize,
    exit_addr: usize,
    s: &mut Scratch,
) -> Result<Output, CompileError> {
    let n = blk.num_temps();
    // Last use (or definition) of every temp, and temps sorted by it.
    s.last_use.clear();
    s.last_use.resize(n, 0);
    s.pend_scan.clear();
    s.pending.clear();
    s.deferred.clear();
    s.label_set.clear();
    s.label_set.resize(blk.num_labels(), 0);
    for (i, insn) in blk.insns.iter().enumerate() {
        let mut bad = false;
        let mut note = |t: Temp| match s.last_use.get_mut(t.index()) {
            Some(l) => *l = i as u32,
            None => bad = true,
        };
        insn.op.for_each_use(&mut note);
        insn.op.for_each_def(&mut note);
        if bad {
            return Err(CompileError::Malformed("temp out of range"));
        }
        // A pending `st_env_fault` needs its value at every later fault
        // point: keep the temp live past each of them.
        let flags = insn.op.opcode().flags();
        let fault_point = match insn.op {
            Op::QemuLd { .. }
            | Op::QemuSt { .. }
            | Op::AtomicRmw { .. }
            | Op::AtomicCmpxchg { .. } => true,
            Op::Call { helper, .. } => blk.get_helper(helper).is_some_and(|h| h.flags.may_exit),
            _ => false,
        };
        if fault_point {
            for &(_, _, t) in &s.pend_scan {
                if let Some(l) = s.last_use.get_mut(t.index()) {
                    *l = (*l).max(i as u32 + 1);
                }
            }
        }
        match insn.op {
            Op::StEnvFault { v, off, mop } => s.pend_scan.push((off, off + mop.size.bytes(), v)),
            Op::StEnv { off, mop, .. } => {
                let end = off + mop.size.bytes();
                s.pend_scan.retain(|&(o, e, _)| e <= off || end <= o);
            }
            _ if flags.has(crate::ir::OpFlags::BB_END) => s.pend_scan.clear(),
            _ => {}
        }
        match insn.op {
            Op::LdEnv { off, mop, .. }
            | Op::StEnv { off, mop, .. }
            | Op::StEnvFault { off, mop, .. } => {
                let end = off as usize + mop.size.bytes() as usize;
                if (off as usize) < HEADER_SIZE || end > env_size {
                    return Err(CompileError::EnvOutOfRange(i));
                }
            }
            Op::Call { helper, args, .. } => match blk.get_helper(helper) {
                Some(h) if h.func.nargs() == args.as_slice().len() => {}
                _ => return Err(CompileError::Malformed("bad helper call")),
            },
            // The fast path addresses the index's TLB at a constant offset.
            Op::QemuLd { mop, .. }
            | Op::QemuSt { mop, .. }
            | Op::AtomicRmw { mop, .. }
            | Op::AtomicCmpxchg { mop, .. }
                if mop.mmu_idx as usize >= NB_MMU_MODES =>
            {
                return Err(CompileError::Malformed("soft-MMU index out of range"));
            }
            // The allocator's state at labels relies on forward branches.
            Op::Br { l } | Op::Brcond { l, .. } => match s.label_set.get_mut(l.0 as usize) {
                Some(st) if *st != LABEL_SET => *st = LABEL_USED,
                _ => {
                    return Err(CompileError::Malformed(
                        "branch backward or to a missing label",
                    ));
                }
            },
            Op::SetLabel { l } => match s.label_set.get_mut(l.0 as usize) {
                Some(st) if *st != LABEL_SET => *st = LABEL_SET,
                _ => return Err(CompileError::Malformed("label set twice or missing")),
            },
            _ => {}
        }
    }
    if s.label_set.contains(&LABEL_USED) {
        return Err(CompileError::Malformed(
            "branch to a label that is never set",
        ));
    }
    match blk.insns.last() {
        Some(l) if l.op.opcode().flags().has(crate::ir::OpFlags::EXIT) => {}
        _ => return Err(CompileError::Malformed("block does not end with an exit")),
    }
    // Live-in temps of every label: one backward walk suffices because
    // branches only go forward (as in the optimizer's DCE).
    let words = n.div_ceil(64);
    label_liveness(blk, words, s);
    // Counting sort by last use.
    s.count.clear();
    s.count.resize(blk.insns.len() + 1, 0);
    for &l in &s.last_use {
        s.count[l as usize + 1] += 1;
    }
    for i in 1..s.count.len() {
        s.count[i] += s.count[i - 1];
    }
    s.order.clear();
    s.order.resize(n, 0);
    for (t, &l) in s.last_use.iter().enumerate() {
        let at = &mut s.count[l as usize];
        s.order[*at as usize] = t as u32;
        *at += 1;
    }
    s.temps.clear();
    s.temps.resize(n, EMPTY);
    s.free_slots.clear();
    s.stubs.clear();
    // Sizes from typical blocks: about 12 bytes of code and one label pair
    // per memory access for every few ops.
    let n_ops = blk.insns.len();
    let mut a = Asm::new_with_capacity(
        base,
        n_ops * 12 + 256,
        16,
        0,
        n_ops / 2 + 8,
        16,
        n_ops / 2 + 8,
    );
    s.labels.clear();
    for _ in 0..blk.num_labels() {
        s.labels.push(a.new_dynamic_label());
    }
    let mut g = Gen {
        a,
        blk,
        s,
        owner: [NO_TEMP; 16],
        locked: 0,
        i: 0,
        next_slot: 0,
        expire_pos: 0,
        pc: blk.pc,
        exit_addr,
        base,
        jumps: Vec::new(),
        too_many: false,
        words,
    };
    g.body()?;
    if g.too_many {
        return Err(CompileError::TooManyTemps);
    }
    let jumps = std::mem::take(&mut g.jumps);
    let code =
        g.a.finalize()
            .map_err(|e| CompileError::Asm(e.to_string()))?;
    Ok(Output { code, jumps })
}

fn label_liveness(blk: &Block, words: usize, s: &mut Scratch) {
    s.label_live.clear();
    s.label_live.resize(words * blk.num_labels(), 0);
    s.live.clear();
    s.live.resize(words, 0);
    let set = |live: &mut [u64], t: Temp, on: bool| {
        if let Some(w) = live.get_mut(t.index() / 64) {
            let bit = 1u64 << (t.index() % 64);
            if on {
                *w |= bit;
            } else {
                *w &= !bit;
            }
        }
    };
    for insn in blk.insns.iter().rev() {
        let op = insn.op;
        match op {
            _ if op.opcode().flags().has(crate::ir::OpFlags::EXIT) => s.live.fill(0),
            Op::Br { l } => {
                let at = l.0 as usize * words;
                if let Some(src) = s.label_live.get(at..at + words) {
                    s.live.copy_from_slice(src);
                }
            }
            Op::Brcond { l, .. } => {
                let at = l.0 as usize * words;
                if let Some(src) = s.label_live.get(at..at + words) {
                    for (w, x) in s.live.iter_mut().zip(src) {
                        *w |= x;
                    }
                }
            }
            Op::SetLabel { l } => {
                let at = l.0 as usize * words;
                if let Some(dst) = s.label_live.get_mut(at..at + words) {
                    dst.copy_from_slice(&s.live);
                }
                continue;
            }
            _ => op.for_each_def(|t| set(&mut s.live, t, false)),
        }
        op.for_each_use(|t| set(&mut s.live, t, true));
    }
}

fn fits_i32(v: i64) -> bool {
    v == v as i32 as i64
}

impl Gen<'_> {
    // ---- allocator ----

    fn live_after(&self, t: u32) -> bool {
        self.s.last_use.get(t as usize).is_some_and(|&l| l > self.i)
    }

    fn slot(&mut self, t: u32) -> i32 {
        let st = &mut self.s.temps[t as usize];
        if st.slot == NO_SLOT {
            st.slot = match self.s.free_slots.pop() {
                Some(s) => s,
                None => {
                    let s = self.next_slot;
                    if s as usize >= SPILL_SLOTS {
                        self.too_many = true;
                        0
                    } else {
                        self.next_slot += 1;
                        s
                    }
                }
            };
        }
        (st.slot * 8) as i32
    }

    /// Makes sure the slot holds the value (if the value exists).
    fn spill(&mut self, t: u32) {
        let st = self.s.temps[t as usize];
        if st.mem {
            return;
        }
        if st.reg != NO_REG {
            let off = self.slot(t);
            let r = st.reg;
            asm!(self.a ; mov QWORD [rsp + off], Rq(r));
        } else if let Some(c) = st.konst {
            let off = self.slot(t);
            if fits_i32(c as i64) {
                asm!(self.a ; mov QWORD [rsp + off], c as i32);
            } else {
                asm!(self.a ; mov r11, QWORD c as i64 ; mov QWORD [rsp + off], r11);
            }
        } else {
            return; // never defined on this path: nothing to keep
        }
        self.s.temps[t as usize].mem = true;
    }

    fn release(&mut self, r: u8) {
        let t = self.owner[r as usize];
        if t != NO_TEMP {
            self.s.temps[t as usize].reg = NO_REG;
            self.owner[r as usize] = NO_TEMP;
        }
    }

    /// A register for a new value; never one in `self.locked`.
    fn alloc(&mut self) -> u8 {
        let mut victim = None;
        let mut victim_use = 0;
        for &r in &ALLOCATABLE {
            if self.locked & (1 << r) != 0 {
                continue;
            }
            let t = self.owner[r as usize];
            if t == NO_TEMP {
                return r;
            }
            let lu = self.s.last_use[t as usize];
            if lu < self.i {
                self.release(r);
                return r;
            }
            if lu >= victim_use {
                victim_use = lu;
                victim = Some(r);
            }
        }
        // Twelve registers and at most six locked: there is always a victim.
        let r = victim.unwrap_or(RAX);
        let t = self.owner[r as usize];
        if t != NO_TEMP {
            self.spill(t);
        }
        self.release(r);
        r
    }

    fn lock(&mut self, r: u8) {
        self.locked |= 1 << r;
    }

    /// Emits a load of `t`'s value into `r` without changing ownership.
    fn load_into(&mut self, r: u8, t: u32) {
        let st = self.s.temps[t as usize];
        if st.reg != NO_REG {
            if st.reg != r {
                let s = st.reg;
                asm!(self.a ; mov Rq(r), Rq(s));
            }
        } else if let Some(c) = st.konst {
            self.mov_imm(r, c);
        } else if st.mem {
            let off = (st.slot * 8) as i32;
            asm!(self.a ; mov Rq(r), QWORD [rsp + off]);
        }
    }

    fn mov_imm(&mut self, r: u8, c: u64) {
        if c <= u32::MAX as u64 {
            asm!(self.a ; mov Rd(r), c as i32);
        } else if fits_i32(c as i64) {
            asm!(self.a ; mov Rq(r), c as i32);
        } else {
            asm!(self.a ; mov Rq(r), QWORD c as i64);
        }
    }

    /// `t`'s value in a register (locked until the op is done).
    fn use_reg(&mut self, t: Temp) -> u8 {
        let st = self.s.temps[t.index()];
        if st.reg != NO_REG {
            self.lock(st.reg);
            return st.reg;
        }
        let r = self.alloc();
        self.load_into(r, t.0);
        self.owner[r as usize] = t.0;
        self.s.temps[t.index()].reg = r;
        self.lock(r);
        r
    }

    /// `t` as an immediate if it is a constant that fits, else a register.
    fn use_val(&mut self, ty: Ty, t: Temp) -> Val {
        match self.s.temps[t.index()].konst {
            Some(c) if ty == Ty::I32 || fits_i32(c as i64) => Val::Imm(c as i64),
            _ => Val::Reg(self.use_reg(t)),
        }
    }

    /// Moves the value of whatever lives in `r` elsewhere if it is still
    /// needed (at this op or later), and frees `r`.
    fn evict(&mut self, r: u8) {
        let t = self.owner[r as usize];
        if t == NO_TEMP {
            return;
        }
        if self.s.last_use[t as usize] >= self.i {
            let was_locked = self.locked;
            self.lock(r);
            let to = self.free_reg_in(CALLEE_SAVED | CALLER_SAVED);
            self.locked = was_locked;
            match to {
                Some(to) => {
                    asm!(self.a ; mov Rq(to), Rq(r));
                    self.owner[to as usize] = t;
                    self.owner[r as usize] = NO_TEMP;
                    self.s.temps[t as usize].reg = to;
                    if self.locked & (1 << r) != 0 {
                        self.locked = (self.locked & !(1 << r)) | (1 << to);
                    }
                    return;
                }
                None => self.spill(t),
            }
        }
        self.release(r);
        self.locked &= !(1 << r);
    }

    /// A register in `set` that is free (or holds a dead temp) and unlocked.
    fn free_reg_in(&mut self, set: u16) -> Option<u8> {
        for &r in &ALLOCATABLE {
            if set & (1 << r) == 0 || self.locked & (1 << r) != 0 {
                continue;
            }
            let t = self.owner[r as usize];
            if t == NO_TEMP || self.s.last_use[t as usize] < self.i {
                self.release(r);
                return Some(r);
            }
        }
        None
    }

    /// Records that `t` now holds a new value in `r`.
    fn def_reg(&mut self, t: Temp, r: u8) {
        let old = self.s.temps[t.index()].reg;
        if old != NO_REG && old != r {
            self.owner[old as usize] = NO_TEMP;
        }
        let prev = self.owner[r as usize];
        if prev != NO_TEMP && prev != t.0 {
            self.s.temps[prev as usize].reg = NO_REG;
        }
        self.owner[r as usize] = t.0;
        let st = &mut self.s.temps[t.index()];
        st.reg = r;
        st.mem = false;
        st.konst = None;
    }

    fn def_const(&mut self, t: Temp, c: u64) {
        let old = self.s.temps[t.index()].reg;
        if old != NO_REG {
            self.owner[old as usize] = NO_TEMP;
        }
        let st = &mut self.s.temps[t.index()];
        st.reg = NO_REG;
        st.mem = false;
        st.konst = Some(c);
    }

    /// A destination register for `d = f(a, ...)`, computed in place from
    /// `a`'s value: `a`'s own register when `a` dies here (or is `d`),
    /// else a fresh register with `a` copied into it.
    fn dest_from(&mut self, d: Temp, a: Temp, ra: u8) -> u8 {
        if a == d || !self.live_after(a.0) {
            return ra;
        }
        let rd = self.alloc();
        asm!(self.a ; mov Rq(rd), Rq(ra));
        rd
    }

    /// A destination register not holding any operand.
    fn dest_fresh(&mut self) -> u8 {
        let r = self.alloc();
        self.lock(r);
        r
    }

    /// Frees registers and slots of temps whose last use was this op.
    fn expire(&mut self) {
        while let Some(&t) = self.s.order.get(self.expire_pos) {
            if self.s.last_use[t as usize] > self.i {
                break;
            }
            self.expire_pos += 1;
            let st = self.s.temps[t as usize];
            if st.reg != NO_REG && self.owner[st.reg as usize] == t {
                self.owner[st.reg as usize] = NO_TEMP;
            }
            if st.slot != NO_SLOT {
                self.s.free_slots.push(st.slot);
            }
            self.s.temps[t as usize] = EMPTY;
        }
    }

    /// Whether temp `t` is live on entry to label `l`.
    fn live_in(&self, l: crate::ir::Label, t: usize) -> bool {
        let at = l.0 as usize * self.words + t / 64;
        self.s
            .label_live
            .get(at)
            .is_some_and(|w| w & (1 << (t % 64)) != 0)
    }

    /// Puts every temp live at label `l` into its slot: on each edge into
    /// the label (a branch to it, or falling through to it).
    fn sync(&mut self, l: crate::ir::Label) {
        for t in 0..self.s.temps.len() {
            if self.live_in(l, t) {
                self.spill(t as u32);
            }
        }
    }

    /// After label `l`: the temps live there are in their slots (every edge
    /// synced them), the others hold nothing anyone reads before writing.
    /// Whatever the code just before the label did to the allocator's state
    /// does not matter.
    fn reset_at_label(&mut self, l: crate::ir::Label) {
        self.owner = [NO_TEMP; 16];
        for t in 0..self.s.temps.len() {
            let live = self.live_in(l, t);
            let st = &mut self.s.temps[t];
            st.reg = NO_REG;
            st.konst = None;
            st.mem = live && st.slot != NO_SLOT;
        }
    }

    // ---- emission helpers ----

    fn jmp_exit(&mut self) {
        let exit = self.exit_addr;
        asm!(self.a ; jmp extern exit);
    }

    fn set_exit(&mut self, kind: u32, pc: u64) {
        asm!(self.a
            ; mov DWORD [r14 + EXIT_KIND_OFFSET as i32], kind as i32
            ; mov r11, QWORD pc as i64
            ; mov QWORD [r14 + EXIT_PC_OFFSET as i32], r11
        );
    }

    fn label(&self, l: crate::ir::Label) -> Result<DynamicLabel, CompileError> {
        self.s
            .labels
            .get(l.0 as usize)
            .copied()
            .ok_or(CompileError::Malformed("label out of range"))
    }

    /// `cmp a, b`; returns the condition to test (swapped if the operands
    /// were).
    fn cmp(&mut self, ty: Ty, a: Temp, b: Temp, cond: Cond) -> Cond {
        let (a, b, cond) =
            if self.s.temps[a.index()].konst.is_some() && self.s.temps[b.index()].konst.is_none() {
                (b, a, cond.swap())
            } else {
                (a, b, cond)
            };
        let ra = self.use_reg(a);
        match (ty, self.use_val(ty, b)) {
            // `test r, r` sets every flag a compare with 0 does (CF = OF = 0),
            // in fewer bytes.
            (Ty::I64, Val::Imm(0)) => asm!(self.a ; test Rq(ra), Rq(ra)),
            (Ty::I32, Val::Imm(0)) => asm!(self.a ; test Rd(ra), Rd(ra)),
            (Ty::I64, Val::Reg(rb)) => asm!(self.a ; cmp Rq(ra), Rq(rb)),
            (Ty::I64, Val::Imm(c)) => asm!(self.a ; cmp Rq(ra), c as i32),
            (Ty::I32, Val::Reg(rb)) => asm!(self.a ; cmp Rd(ra), Rd(rb)),
            (Ty::I32, Val::Imm(c)) => asm!(self.a ; cmp Rd(ra), c as i32),
        }
        cond
    }

    fn jcc(&mut self, cond: Cond, l: DynamicLabel) {
        match cond {
            Cond::Eq => asm!(self.a ; je =>l),
            Cond::Ne => asm!(self.a ; jne =>l),
            Cond::Lt => asm!(self.a ; jl =>l),
            Cond::Le => asm!(self.a ; jle =>l),
            Cond::Gt => asm!(self.a ; jg =>l),
            Cond::Ge => asm!(self.a ; jge =>l),
            Cond::Ltu => asm!(self.a ; jb =>l),
            Cond::Leu => asm!(self.a ; jbe =>l),
            Cond::Gtu => asm!(self.a ; ja =>l),
            Cond::Geu => asm!(self.a ; jae =>l),
        }
    }

    fn setcc_r11(&mut self, cond: Cond) {
        match cond {
            Cond::Eq => asm!(self.a ; sete r11b),
            Cond::Ne => asm!(self.a ; setne r11b),
            Cond::Lt => asm!(self.a ; setl r11b),
            Cond::Le => asm!(self.a ; setle r11b),
            Cond::Gt => asm!(self.a ; setg r11b),
            Cond::Ge => asm!(self.a ; setge r11b),
            Cond::Ltu => asm!(self.a ; setb r11b),
            Cond::Leu => asm!(self.a ; setbe r11b),
            Cond::Gtu => asm!(self.a ; seta r11b),
            Cond::Geu => asm!(self.a ; setae r11b),
        }
    }

    fn cmov(&mut self, cond: Cond, rd: u8, rs: u8) {
        // 64-bit cmov: 32-bit values are zero-extended, so it moves them
        // unchanged.
        match cond {
            Cond::Eq => asm!(self.a ; cmove Rq(rd), Rq(rs)),
            Cond::Ne => asm!(self.a ; cmovne Rq(rd), Rq(rs)),
            Cond::Lt => asm!(self.a ; cmovl Rq(rd), Rq(rs)),
            Cond::Le => asm!(self.a ; cmovle Rq(rd), Rq(rs)),
            Cond::Gt => asm!(self.a ; cmovg Rq(rd), Rq(rs)),
            Cond::Ge => asm!(self.a ; cmovge Rq(rd), Rq(rs)),
            Cond::Ltu => asm!(self.a ; cmovb Rq(rd), Rq(rs)),
            Cond::Leu => asm!(self.a ; cmovbe Rq(rd), Rq(rs)),
            Cond::Gtu => asm!(self.a ; cmova Rq(rd), Rq(rs)),
            Cond::Geu => asm!(self.a ; cmovae Rq(rd), Rq(rs)),
        }
    }

    // ---- the block ----

    fn body(&mut self) -> Result<(), CompileError> {
        let interrupt = self.a.new_dynamic_label();
        let back = self.a.new_dynamic_label();
        asm!(self.a
            ; mov r11, QWORD [r14 + EXIT_REQUEST_OFFSET as i32]
            ; cmp DWORD [r11], 0
            ; jne =>interrupt
        );
        self.s.stubs.push(Stub {
            entry: interrupt,
            back,
            pc: self.blk.pc,
            kind: StubKind::Interrupt,
            deferred: (0, 0),
        });
        let mut reachable = true;
        for idx in 0..self.blk.insns.len() {
            self.i = idx as u32;
            self.locked = 0;
            let insn = self.blk.insns[idx];
            let op = insn.op;
            match op {
                Op::SetLabel { l } => {
                    self.s.pending.clear();
                    if reachable {
                        self.sync(l);
                    }
                    let lbl = self.label(l)?;
                    self.reset_at_label(l);
                    self.a.dynamic_label(lbl);
                    reachable = true;
                }
                // Unreachable ops would only disturb the allocator's view of
                // where values are at the next label.
                Op::InsnStart { pc } if !reachable => self.pc = pc,
                _ if !reachable => {}
                _ => {
                    self.op(insn.ty, op)?;
                    if op.opcode().flags().has(crate::ir::OpFlags::BB_END) {
                        self.s.pending.clear();
                    }
                    if op.opcode().flags().has(crate::ir::OpFlags::EXIT)
                        || matches!(op, Op::Br { .. })
                    {
                        reachable = false;
                    }
                }
            }
            self.expire();
        }
        let stubs = std::mem::take(&mut self.s.stubs);
        for stub in &stubs {
            self.stub(stub);
        }
        self.s.stubs = stubs;
        Ok(())
    }

    fn op(&mut self, ty: Ty, op: Op) -> Result<(), CompileError> {
        let opc = op.opcode();
        match op {
            Op::Mov { d, a } => {
                let st = self.s.temps[a.index()];
                if let Some(c) = st.konst {
                    self.def_const(d, c);
                } else if d == a {
                } else if st.reg != NO_REG && !self.live_after(a.0) {
                    // a dies: d takes over its register, no code.
                    let r = st.reg;
                    self.def_reg(d, r);
                } else {
                    let ra = self.use_reg(a);
                    let rd = self.dest_fresh();
                    match ty {
                        Ty::I64 => asm!(self.a ; mov Rq(rd), Rq(ra)),
                        Ty::I32 => asm!(self.a ; mov Rd(rd), Rd(ra)),
                    }
                    self.def_reg(d, rd);
                }
            }
            Op::Movi { d, c } => self.def_const(d, ty.mask(c)),
            Op::Add { d, a, b }
            | Op::Sub { d, a, b }
            | Op::And { d, a, b }
            | Op::Or { d, a, b }
            | Op::Xor { d, a, b }
            | Op::Mul { d, a, b } => self.alu(opc, ty, d, a, b),
            Op::Shl { d, a, b }
            | Op::Shr { d, a, b }
            | Op::Sar { d, a, b }
            | Op::Rotl { d, a, b }
            | Op::Rotr { d, a, b } => self.shift(opc, ty, d, a, b),
            Op::Mulsh { d, a, b }
            | Op::Muluh { d, a, b }
            | Op::Divs { d, a, b }
            | Op::Divu { d, a, b }
            | Op::Rems { d, a, b }
            | Op::Remu { d, a, b } => self.muldiv(opc, ty, d, a, b),
            Op::Neg { d, a }
            | Op::Not { d, a }
            | Op::Ext8s { d, a }
            | Op::Ext8u { d, a }
            | Op::Ext16s { d, a }
            | Op::Ext16u { d, a }
            | Op::Ext32s { d, a }
            | Op::Ext32u { d, a }
            | Op::ExtuI32I64 { d, a }
            | Op::ExtsI32I64 { d, a }
            | Op::ExtrlI64I32 { d, a }
            | Op::Bswap16 { d, a }
            | Op::Bswap32 { d, a }
            | Op::Bswap64 { d, a }
            | Op::Clz { d, a }
            | Op::Ctz { d, a }
            | Op::Popcnt { d, a } => self.unary(opc, ty, d, a),
            Op::Setcond { d, a, b, cond } => {
                let cond = self.cmp(ty, a, b, cond);
                self.setcc_r11(cond);
                let rd = self.dest_fresh();
                asm!(self.a ; movzx Rd(rd), r11b);
                self.def_reg(d, rd);
            }
            Op::Movcond {
                d,
                c1,
                c2,
                v1,
                v2,
                cond,
            } => {
                let r1 = self.use_reg(v1);
                let r2 = self.use_reg(v2);
                let cond = self.cmp(ty, c1, c2, cond);
                let rd = if v2 == d || !self.live_after(v2.0) {
                    r2
                } else {
                    let rd = self.dest_fresh();
                    asm!(self.a ; mov Rq(rd), Rq(r2));
                    rd
                };
                self.cmov(cond, rd, r1);
                self.def_reg(d, rd);
            }
            Op::QemuLd { d, addr, mop } => self.qemu_ld(ty, d, addr, mop),
            Op::QemuSt { v, addr, mop } => self.qemu_st(ty, v, addr, mop),
            Op::AtomicRmw {
                d,
                addr,
                v,
                mop,
                op,
            } => self.atomic(ty, d, addr, v, None, mop, Some(op)),
            Op::AtomicCmpxchg {
                d,
                addr,
                cmp,
                new,
                mop,
            } => self.atomic(ty, d, addr, cmp, Some(new), mop, None),
            Op::LdEnv { d, off, mop } => {
                let rd = self.dest_fresh();
                let off = off as i32;
                match (mop.size, mop.signed, ty) {
                    (MemSize::B1, false, _) => asm!(self.a ; movzx Rd(rd), BYTE [r14 + off]),
                    (MemSize::B1, true, Ty::I32) => asm!(self.a ; movsx Rd(rd), BYTE [r14 + off]),
                    (MemSize::B1, true, Ty::I64) => asm!(self.a ; movsx Rq(rd), BYTE [r14 + off]),
                    (MemSize::B2, false, _) => asm!(self.a ; movzx Rd(rd), WORD [r14 + off]),
                    (MemSize::B2, true, Ty::I32) => asm!(self.a ; movsx Rd(rd), WORD [r14 + off]),
                    (MemSize::B2, true, Ty::I64) => asm!(self.a ; movsx Rq(rd), WORD [r14 + off]),
                    (MemSize::B4, true, Ty::I64) => asm!(self.a ; movsxd Rq(rd), DWORD [r14 + off]),
                    (MemSize::B4, _, _) => asm!(self.a ; mov Rd(rd), DWORD [r14 + off]),
                    (MemSize::B8, _, _) => asm!(self.a ; mov Rq(rd), QWORD [r14 + off]),
                }
                self.def_reg(d, rd);
            }
            Op::StEnv { v, off, mop } => {
                let end = off + mop.size.bytes();
                self.s
                    .pending
                    .retain(|&(_, o, sz)| o + sz.bytes() <= off || end <= o);
                let off = off as i32;
                match (self.use_val(Ty::I64, v), mop.size) {
                    (Val::Imm(c), MemSize::B1) => asm!(self.a ; mov BYTE [r14 + off], c as i8),
                    (Val::Imm(c), MemSize::B2) => asm!(self.a ; mov WORD [r14 + off], c as i16),
                    (Val::Imm(c), MemSize::B4) => asm!(self.a ; mov DWORD [r14 + off], c as i32),
                    (Val::Imm(c), MemSize::B8) => asm!(self.a ; mov QWORD [r14 + off], c as i32),
                    (Val::Reg(r), MemSize::B1) => asm!(self.a ; mov BYTE [r14 + off], Rb(r)),
                    (Val::Reg(r), MemSize::B2) => asm!(self.a ; mov WORD [r14 + off], Rw(r)),
                    (Val::Reg(r), MemSize::B4) => asm!(self.a ; mov DWORD [r14 + off], Rd(r)),
                    (Val::Reg(r), MemSize::B8) => asm!(self.a ; mov QWORD [r14 + off], Rq(r)),
                }
            }
            Op::StEnvFault { v, off, mop } => self.s.pending.push((v, off, mop.size)),
            Op::SetLabel { .. } => {}
            Op::Br { l } => {
                let lbl = self.label(l)?;
                self.sync(l);
                asm!(self.a ; jmp =>lbl);
            }
            Op::Brcond { a, b, cond, l } => {
                let lbl = self.label(l)?;
                let cond = self.cmp(ty, a, b, cond);
                // Stores only (mov): the flags survive.
                self.sync(l);
                self.jcc(cond, lbl);
            }
            Op::Call { ret, helper, args } => self.call(ret, helper, args.as_slice())?,
            Op::InsnStart { pc } => self.pc = pc,
            // x86 keeps every order but store-then-load (TSO); generated code
            // never reorders guest accesses itself.
            Op::Mb { kind } if kind & crate::ir::MB_ST_LD != 0 => asm!(self.a ; mfence),
            Op::Mb { .. } => {}
            Op::GotoTb { slot, pc } => {
                // Align the displacement so patching it is one atomic store.
                let off = self.a.offset().0;
                let pad = (4 - (off + 1) % 4) % 4;
                for _ in 0..pad {
                    self.a.push(0x90);
                }
                let site = self.a.offset().0 + 1;
                // jmp rel32 to the next instruction: the exit stub below.
                self.a.extend([0xe9, 0, 0, 0, 0]);
                self.jumps.push((slot, site));
                self.set_exit(exit_kind::CHAIN, pc);
                let site_addr = (self.base + site) as i64;
                asm!(self.a
                    ; mov DWORD [r14 + EXIT_SLOT_OFFSET as i32], slot as i32
                    ; mov r11, QWORD site_addr
                    ; mov QWORD [r14 + EXIT_AUX_OFFSET as i32], r11
                );
                self.jmp_exit();
            }
            Op::ExitIndirect { pc } => {
                // Look the target up in the indirect-jump cache and jump
                // there directly on a hit; otherwise leave for the exec loop.
                let r = self.use_reg(pc);
                let mask = (JMP_CACHE_SIZE - 1) as i32;
                let shift = JMP_CACHE_ENTRY_BITS as i8;
                let jc = JMP_CACHE_OFFSET as i32;
                asm!(self.a
                    ; mov QWORD [r14 + EXIT_PC_OFFSET as i32], Rq(r)
                    ; mov DWORD [r14 + EXIT_KIND_OFFSET as i32], exit_kind::INDIRECT as i32
                    ; mov r11, Rq(r)
                    ; shr r11, 10
                    ; xor r11, Rq(r)
                    ; and r11d, mask
                    ; shl r11d, shift
                    ; cmp Rq(r), QWORD [r14 + r11 + jc]
                    ; jne >miss
                    ; mov r10, QWORD [r14 + TB_FLAGS_OFFSET as i32]
                    ; cmp r10, QWORD [r14 + r11 + jc + 8]
                    ; jne >miss
                    ; jmp QWORD [r14 + r11 + jc + 16]
                    ; miss:
                );
                self.jmp_exit();
            }
            Op::ExitStatus { code } => {
                let pc = self.pc;
                self.set_exit(exit_kind::STATUS, pc);
                asm!(self.a
                    ; mov r11, QWORD code as i64
                    ; mov QWORD [r14 + EXIT_AUX_OFFSET as i32], r11
                );
                self.jmp_exit();
            }
        }
        Ok(())
    }

    /// add, sub, and, or, xor, mul: `rd = ra op b`.
    fn alu(&mut self, opc: Opcode, ty: Ty, d: Temp, a: Temp, b: Temp) {
        let commutative = !matches!(opc, Opcode::Sub);
        // Prefer the constant, or the operand that dies, on the right side.
        let (a, b) = if commutative
            && ((self.s.temps[a.index()].konst.is_some()
                && self.s.temps[b.index()].konst.is_none())
                || (self.live_after(a.0)
                    && a != d
                    && (b == d || !self.live_after(b.0))
                    && self.s.temps[b.index()].reg != NO_REG))
        {
            (b, a)
        } else {
            (a, b)
        };
        let ra = self.use_reg(a);
        let vb = self.use_val(ty, b);
        let rd = self.dest_from(d, a, ra);
        macro_rules! emit {
            ($m:ident) => {
                match (ty, vb) {
                    (Ty::I64, Val::Reg(rb)) => asm!(self.a ; $m Rq(rd), Rq(rb)),
                    (Ty::I64, Val::Imm(c)) => asm!(self.a ; $m Rq(rd), c as i32),
                    (Ty::I32, Val::Reg(rb)) => asm!(self.a ; $m Rd(rd), Rd(rb)),
                    (Ty::I32, Val::Imm(c)) => asm!(self.a ; $m Rd(rd), c as i32),
                }
            };
        }
        match opc {
            Opcode::Add => emit!(add),
            Opcode::Sub => emit!(sub),
            Opcode::And => emit!(and),
            Opcode::Or => emit!(or),
            Opcode::Xor => emit!(xor),
            _ => match (ty, vb) {
                (Ty::I64, Val::Reg(rb)) => asm!(self.a ; imul Rq(rd), Rq(rb)),
                (Ty::I64, Val::Imm(c)) => asm!(self.a ; imul Rq(rd), Rq(rd), c as i32),
                (Ty::I32, Val::Reg(rb)) => asm!(self.a ; imul Rd(rd), Rd(rb)),
                (Ty::I32, Val::Imm(c)) => asm!(self.a ; imul Rd(rd), Rd(rd), c as i32),
            },
        }
        self.def_reg(d, rd);
    }

    fn shift(&mut self, opc: Opcode, ty: Ty, d: Temp, a: Temp, b: Temp) {
        let mask = ty.bits() as u64 - 1;
        let konst = self.s.temps[b.index()].konst;
        let count = if let Some(c) = konst {
            Val::Imm((c & mask) as i64)
        } else {
            // The count must be in cl.
            self.evict(RCX);
            self.lock(RCX);
            self.load_into(RCX, b.0);
            Val::Reg(RCX)
        };
        let ra = self.use_reg(a);
        let rd = self.dest_from(d, a, ra);
        macro_rules! emit {
            ($m:ident) => {
                match (ty, count) {
                    (Ty::I64, Val::Imm(c)) => asm!(self.a ; $m Rq(rd), c as i8),
                    (Ty::I64, Val::Reg(_)) => asm!(self.a ; $m Rq(rd), cl),
                    (Ty::I32, Val::Imm(c)) => asm!(self.a ; $m Rd(rd), c as i8),
                    (Ty::I32, Val::Reg(_)) => asm!(self.a ; $m Rd(rd), cl),
                }
            };
        }
        match opc {
            Opcode::Shl => emit!(shl),
            Opcode::Shr => emit!(shr),
            Opcode::Sar => emit!(sar),
            Opcode::Rotl => emit!(rol),
            _ => emit!(ror),
        }
        self.def_reg(d, rd);
    }

    /// mulsh, muluh, div, rem: rax/rdx sequences. The divisor goes to r11.
    fn muldiv(&mut self, opc: Opcode, ty: Ty, d: Temp, a: Temp, b: Temp) {
        self.evict(RAX);
        self.lock(RAX);
        self.evict(RDX);
        self.lock(RDX);
        self.load_into(11, b.0);
        self.load_into(RAX, a.0);
        let wide = ty == Ty::I64;
        let result = match opc {
            Opcode::Mulsh | Opcode::Muluh => {
                match (opc, wide) {
                    (Opcode::Mulsh, true) => asm!(self.a ; imul r11),
                    (Opcode::Mulsh, false) => asm!(self.a ; imul r11d),
                    (_, true) => asm!(self.a ; mul r11),
                    (_, false) => asm!(self.a ; mul r11d),
                }
                RDX
            }
            _ => {
                let signed = matches!(opc, Opcode::Divs | Opcode::Rems);
                let rem = matches!(opc, Opcode::Rems | Opcode::Remu);
                // Zero divisor: quotient 0, remainder the dividend. Signed
                // MIN / -1 overflows in hardware: quotient -a (wraps to MIN),
                // remainder 0.
                if wide {
                    asm!(self.a ; test r11, r11 ; jz >zero);
                } else {
                    asm!(self.a ; test r11d, r11d ; jz >zero);
                }
                if signed {
                    match (wide, rem) {
                        (true, false) => {
                            asm!(self.a ; cmp r11, -1 ; jne >doit ; neg rax ; jmp >done)
                        }
                        (false, false) => {
                            asm!(self.a ; cmp r11d, -1 ; jne >doit ; neg eax ; jmp >done)
                        }
                        (true, true) => {
                            asm!(self.a ; cmp r11, -1 ; jne >doit ; xor edx, edx ; jmp >done)
                        }
                        (false, true) => {
                            asm!(self.a ; cmp r11d, -1 ; jne >doit ; xor edx, edx ; jmp >done)
                        }
                    }
                }
                asm!(self.a ; doit:);
                match (wide, signed) {
                    (true, true) => asm!(self.a ; cqo ; idiv r11),
                    (false, true) => asm!(self.a ; cdq ; idiv r11d),
                    (true, false) => asm!(self.a ; xor edx, edx ; div r11),
                    (false, false) => asm!(self.a ; xor edx, edx ; div r11d),
                }
                asm!(self.a ; jmp >done ; zero:);
                if rem {
                    asm!(self.a ; mov rdx, rax);
                } else {
                    asm!(self.a ; xor eax, eax);
                }
                asm!(self.a ; done:);
                if rem { RDX } else { RAX }
            }
        };
        if !wide {
            // 32-bit results are kept zero-extended.
            asm!(self.a ; mov Rd(result), Rd(result));
        }
        self.def_reg(d, result);
    }

    fn unary(&mut self, opc: Opcode, ty: Ty, d: Temp, a: Temp) {
        let ra = self.use_reg(a);
        let rd = self.dest_from(d, a, ra);
        let w = ty == Ty::I64;
        match opc {
            Opcode::Neg if w => asm!(self.a ; neg Rq(rd)),
            Opcode::Neg => asm!(self.a ; neg Rd(rd)),
            Opcode::Not if w => asm!(self.a ; not Rq(rd)),
            Opcode::Not => asm!(self.a ; not Rd(rd)),
            Opcode::Ext8s if w => asm!(self.a ; movsx Rq(rd), Rb(rd)),
            Opcode::Ext8s => asm!(self.a ; movsx Rd(rd), Rb(rd)),
            Opcode::Ext8u => asm!(self.a ; movzx Rd(rd), Rb(rd)),
            Opcode::Ext16s if w => asm!(self.a ; movsx Rq(rd), Rw(rd)),
            Opcode::Ext16s => asm!(self.a ; movsx Rd(rd), Rw(rd)),
            Opcode::Ext16u => asm!(self.a ; movzx Rd(rd), Rw(rd)),
            Opcode::Ext32s | Opcode::ExtsI32I64 => asm!(self.a ; movsxd Rq(rd), Rd(rd)),
            Opcode::Ext32u | Opcode::ExtuI32I64 | Opcode::ExtrlI64I32 => {
                asm!(self.a ; mov Rd(rd), Rd(rd))
            }
            Opcode::Bswap16 => asm!(self.a ; movzx Rd(rd), Rw(rd) ; rol Rw(rd), 8),
            Opcode::Bswap32 => asm!(self.a ; bswap Rd(rd)),
            Opcode::Bswap64 => asm!(self.a ; bswap Rq(rd)),
            Opcode::Clz => {
                // bsr gives the index of the top set bit; for 0 use -1, so
                // that (width - 1) - index is the width.
                let top = ty.bits() as i32 - 1;
                if w {
                    asm!(self.a ; bsr Rq(rd), Rq(rd));
                } else {
                    asm!(self.a ; bsr Rd(rd), Rd(rd));
                }
                asm!(self.a ; mov r11d, -1 ; cmovz Rd(rd), r11d ; neg Rd(rd) ; add Rd(rd), top);
            }
            Opcode::Ctz => {
                let width = ty.bits() as i32;
                if w {
                    asm!(self.a ; bsf Rq(rd), Rq(rd));
                } else {
                    asm!(self.a ; bsf Rd(rd), Rd(rd));
                }
                asm!(self.a ; mov r11d, width ; cmovz Rd(rd), r11d);
            }
            Opcode::Popcnt if w => asm!(self.a ; popcnt Rq(rd), Rq(rd)),
            Opcode::Popcnt => asm!(self.a ; popcnt Rd(rd), Rd(rd)),
            _ => {}
        }
        self.def_reg(d, rd);
    }

    /// Caller-saved registers holding temps still needed after this op,
    /// except `except`: what a slow path must preserve.
    fn live_caller_saved(&self, except: u8) -> u16 {
        let mut m = 0;
        for r in 0..16u8 {
            if CALLER_SAVED & (1 << r) != 0 && r != except {
                let t = self.owner[r as usize];
                if t != NO_TEMP && self.live_after(t) {
                    m |= 1 << r;
                }
            }
        }
        m
    }

    /// The inline TLB check in the TLB of `mop.mmu_idx` (a constant offset
    /// from the CPU state, checked below `NB_MMU_MODES` by `compile`): on a
    /// hit, r10 = host address - guest address (the addend); on a miss,
    /// jumps to `slow`.
    fn tlb_lookup(&mut self, ra: u8, mop: MemOp, tag_off: i32, slow: DynamicLabel) {
        let size = mop.size.bytes();
        let shift = (PAGE_BITS - TLB_ENTRY_BITS) as i8;
        let index_mask = ((TLB_SIZE as i32) - 1) << TLB_ENTRY_BITS;
        let base = tlb_offset(mop.mmu_idx as usize) as i32;
        let tag = base + tag_off;
        let addend = base + 24;
        let last = size as i32 - 1;
        asm!(self.a
            ; mov r11, Rq(ra)
            ; shr r11, shift
            ; and r11d, index_mask
        );
        if mop.aligned {
            // Keeping the low address bits in the compare sends misaligned
            // accesses (which cannot cross a page) to the slow path.
            let mask = PAGE_MASK as i32 | last;
            asm!(self.a ; mov r10, Rq(ra) ; and r10, mask);
        } else {
            // The page of the last byte: page-crossing accesses miss.
            asm!(self.a ; lea r10, [Rq(ra) + last] ; and r10, PAGE_MASK as i32);
        }
        asm!(self.a
            ; cmp r10, QWORD [r14 + r11 + tag]
            ; jne =>slow
            ; mov r10, QWORD [r14 + r11 + addend]
        );
    }

    fn qemu_ld(&mut self, ty: Ty, d: Temp, addr: Temp, mop: MemOp) {
        let ra = self.use_reg(addr);
        let rd = if addr != d && self.live_after(addr.0) {
            self.dest_fresh()
        } else {
            ra
        };
        let slow = self.a.new_dynamic_label();
        let back = self.a.new_dynamic_label();
        self.tlb_lookup(ra, mop, 0, slow);
        let w = ty == Ty::I64;
        let sext = mop.signed && !mop.big_endian;
        match (mop.size, sext, w) {
            (MemSize::B1, false, _) => asm!(self.a ; movzx Rd(rd), BYTE [r10 + Rq(ra)]),
            (MemSize::B1, true, false) => asm!(self.a ; movsx Rd(rd), BYTE [r10 + Rq(ra)]),
            (MemSize::B1, true, true) => asm!(self.a ; movsx Rq(rd), BYTE [r10 + Rq(ra)]),
            (MemSize::B2, false, _) => asm!(self.a ; movzx Rd(rd), WORD [r10 + Rq(ra)]),
            (MemSize::B2, true, false) => asm!(self.a ; movsx Rd(rd), WORD [r10 + Rq(ra)]),
            (MemSize::B2, true, true) => asm!(self.a ; movsx Rq(rd), WORD [r10 + Rq(ra)]),
            (MemSize::B4, true, true) => asm!(self.a ; movsxd Rq(rd), DWORD [r10 + Rq(ra)]),
            (MemSize::B4, _, _) => asm!(self.a ; mov Rd(rd), DWORD [r10 + Rq(ra)]),
            (MemSize::B8, _, _) => asm!(self.a ; mov Rq(rd), QWORD [r10 + Rq(ra)]),
        }
        if mop.big_endian {
            match (mop.size, mop.signed, w) {
                (MemSize::B1, false, _) => {}
                (MemSize::B1, true, false) => asm!(self.a ; movsx Rd(rd), Rb(rd)),
                (MemSize::B1, true, true) => asm!(self.a ; movsx Rq(rd), Rb(rd)),
                (MemSize::B2, false, _) => asm!(self.a ; rol Rw(rd), 8),
                (MemSize::B2, true, false) => asm!(self.a ; rol Rw(rd), 8 ; movsx Rd(rd), Rw(rd)),
                (MemSize::B2, true, true) => asm!(self.a ; rol Rw(rd), 8 ; movsx Rq(rd), Rw(rd)),
                (MemSize::B4, true, true) => asm!(self.a ; bswap Rd(rd) ; movsxd Rq(rd), Rd(rd)),
                (MemSize::B4, _, _) => asm!(self.a ; bswap Rd(rd)),
                (MemSize::B8, _, _) => asm!(self.a ; bswap Rq(rd)),
            }
        }
        self.a.dynamic_label(back);
        let save = self.live_caller_saved(rd);
        let bits = softmmu::pack_mop(mop, ty);
        let deferred = self.snapshot_pending();
        self.s.stubs.push(Stub {
            entry: slow,
            back,
            pc: self.pc,
            kind: StubKind::Load {
                addr: ra,
                dst: rd,
                bits,
                save,
            },
            deferred,
        });
        self.def_reg(d, rd);
    }

    fn qemu_st(&mut self, ty: Ty, v: Temp, addr: Temp, mop: MemOp) {
        let ra = self.use_reg(addr);
        let val = self.use_val(ty, v);
        let slow = self.a.new_dynamic_label();
        let back = self.a.new_dynamic_label();
        self.tlb_lookup(ra, mop, 8, slow);
        let swap = mop.big_endian && mop.size != MemSize::B1;
        let val = if swap {
            // Byte-swap a copy in r11 (free once the addend is in r10).
            match val {
                Val::Reg(r) => asm!(self.a ; mov r11, Rq(r)),
                Val::Imm(c) => asm!(self.a ; mov r11, QWORD c),
            }
            match mop.size {
                MemSize::B2 => asm!(self.a ; rol r11w, 8),
                MemSize::B4 => asm!(self.a ; bswap r11d),
                _ => asm!(self.a ; bswap r11),
            }
            Val::Reg(11)
        } else {
            val
        };
        match (val, mop.size) {
            (Val::Imm(c), MemSize::B1) => asm!(self.a ; mov BYTE [r10 + Rq(ra)], c as i8),
            (Val::Imm(c), MemSize::B2) => asm!(self.a ; mov WORD [r10 + Rq(ra)], c as i16),
            (Val::Imm(c), MemSize::B4) => asm!(self.a ; mov DWORD [r10 + Rq(ra)], c as i32),
            (Val::Imm(c), MemSize::B8) => asm!(self.a ; mov QWORD [r10 + Rq(ra)], c as i32),
            (Val::Reg(r), MemSize::B1) => asm!(self.a ; mov BYTE [r10 + Rq(ra)], Rb(r)),
            (Val::Reg(r), MemSize::B2) => asm!(self.a ; mov WORD [r10 + Rq(ra)], Rw(r)),
            (Val::Reg(r), MemSize::B4) => asm!(self.a ; mov DWORD [r10 + Rq(ra)], Rd(r)),
            (Val::Reg(r), MemSize::B8) => asm!(self.a ; mov QWORD [r10 + Rq(ra)], Rq(r)),
        }
        self.a.dynamic_label(back);
        // The slow path gets the value as the IR has it (not swapped).
        let val = match self.use_val(ty, v) {
            Val::Imm(c) => Val::Imm(ty.mask(c as u64) as i64),
            r => r,
        };
        let save = self.live_caller_saved(NO_REG);
        let bits = softmmu::pack_mop(mop, ty);
        let deferred = self.snapshot_pending();
        self.s.stubs.push(Stub {
            entry: slow,
            back,
            pc: self.pc,
            kind: StubKind::Store {
                addr: ra,
                val,
                bits,
                save,
            },
            deferred,
        });
    }

    /// `atomic_rmw` (`op` given, operand `x`) and `atomic_cmpxchg` (`op`
    /// `None`, expected `x`, new `y`): on a TLB write hit one lock-prefixed
    /// instruction (a `lock cmpxchg` loop for and/or/xor, which have no
    /// instruction returning the old value) on the host address, result in
    /// rax. Big-endian accesses always take the slow path.
    #[allow(clippy::too_many_arguments)]
    fn atomic(
        &mut self,
        ty: Ty,
        d: Temp,
        addr: Temp,
        x: Temp,
        y: Option<Temp>,
        mop: MemOp,
        op: Option<AtomicOp>,
    ) {
        // rax is cmpxchg's implicit operand and the result register.
        self.evict(RAX);
        self.lock(RAX);
        let ra = self.use_reg(addr);
        let rx = self.use_reg(x);
        let ry = match y {
            Some(t) => self.use_reg(t),
            None => rx,
        };
        let slow = self.a.new_dynamic_label();
        let back = self.a.new_dynamic_label();
        if mop.big_endian && mop.size != MemSize::B1 {
            asm!(self.a ; jmp =>slow);
        } else {
            self.tlb_lookup(ra, mop, 8, slow);
            macro_rules! sized {
                ($($t:tt)*) => {
                    match mop.size {
                        MemSize::B1 => asm!(self.a ; $($t)* BYTE [r10 + Rq(ra)], al),
                        MemSize::B2 => asm!(self.a ; $($t)* WORD [r10 + Rq(ra)], ax),
                        MemSize::B4 => asm!(self.a ; $($t)* DWORD [r10 + Rq(ra)], eax),
                        MemSize::B8 => asm!(self.a ; $($t)* QWORD [r10 + Rq(ra)], rax),
                    }
                };
            }
            match op {
                Some(AtomicOp::Add) => {
                    asm!(self.a ; mov rax, Rq(rx));
                    sized!(lock xadd);
                }
                Some(AtomicOp::Xchg) => {
                    // xchg with memory is always locked.
                    asm!(self.a ; mov rax, Rq(rx));
                    sized!(xchg);
                }
                Some(bitop) => {
                    match mop.size {
                        MemSize::B1 => asm!(self.a ; movzx eax, BYTE [r10 + Rq(ra)]),
                        MemSize::B2 => asm!(self.a ; movzx eax, WORD [r10 + Rq(ra)]),
                        MemSize::B4 => asm!(self.a ; mov eax, DWORD [r10 + Rq(ra)]),
                        MemSize::B8 => asm!(self.a ; mov rax, QWORD [r10 + Rq(ra)]),
                    }
                    asm!(self.a ; retry: ; mov r11, rax);
                    match bitop {
                        AtomicOp::And => asm!(self.a ; and r11, Rq(rx)),
                        AtomicOp::Or => asm!(self.a ; or r11, Rq(rx)),
                        _ => asm!(self.a ; xor r11, Rq(rx)),
                    }
                    // A failed cmpxchg reloads rax with what memory holds.
                    match mop.size {
                        MemSize::B1 => asm!(self.a ; lock cmpxchg BYTE [r10 + Rq(ra)], r11b),
                        MemSize::B2 => asm!(self.a ; lock cmpxchg WORD [r10 + Rq(ra)], r11w),
                        MemSize::B4 => asm!(self.a ; lock cmpxchg DWORD [r10 + Rq(ra)], r11d),
                        MemSize::B8 => asm!(self.a ; lock cmpxchg QWORD [r10 + Rq(ra)], r11),
                    }
                    asm!(self.a ; jne <retry);
                }
                None => {
                    asm!(self.a ; mov rax, Rq(rx));
                    match mop.size {
                        MemSize::B1 => {
                            asm!(self.a ; lock cmpxchg BYTE [r10 + Rq(ra)], Rb(ry))
                        }
                        MemSize::B2 => {
                            asm!(self.a ; lock cmpxchg WORD [r10 + Rq(ra)], Rw(ry))
                        }
                        MemSize::B4 => {
                            asm!(self.a ; lock cmpxchg DWORD [r10 + Rq(ra)], Rd(ry))
                        }
                        MemSize::B8 => {
                            asm!(self.a ; lock cmpxchg QWORD [r10 + Rq(ra)], Rq(ry))
                        }
                    }
                }
            }
            // The old value is in the low bytes of rax; extend it as the
            // access says.
            let w = ty == Ty::I64;
            match (mop.size, mop.signed, w) {
                (MemSize::B1, false, _) => asm!(self.a ; movzx eax, al),
                (MemSize::B1, true, false) => asm!(self.a ; movsx eax, al),
                (MemSize::B1, true, true) => asm!(self.a ; movsx rax, al),
                (MemSize::B2, false, _) => asm!(self.a ; movzx eax, ax),
                (MemSize::B2, true, false) => asm!(self.a ; movsx eax, ax),
                (MemSize::B2, true, true) => asm!(self.a ; movsx rax, ax),
                (MemSize::B4, true, true) => asm!(self.a ; movsxd rax, eax),
                (MemSize::B4, _, _) | (MemSize::B8, _, false) => asm!(self.a ; mov eax, eax),
                (MemSize::B8, _, true) => {}
            }
        }
        self.a.dynamic_label(back);
        let save = self.live_caller_saved(RAX);
        let bits = softmmu::pack_atomic(mop, ty, op);
        let deferred = self.snapshot_pending();
        self.s.stubs.push(Stub {
            entry: slow,
            back,
            pc: self.pc,
            kind: StubKind::Atomic {
                addr: ra,
                x: rx,
                y: ry,
                bits,
                save,
            },
            deferred,
        });
        self.def_reg(d, RAX);
    }

    fn call(
        &mut self,
        ret: Option<Temp>,
        helper: HelperId,
        args: &[Temp],
    ) -> Result<(), CompileError> {
        let h = *self
            .blk
            .get_helper(helper)
            .ok_or(CompileError::Malformed("no such helper"))?;
        // Values in caller-saved registers that are needed later (or as
        // arguments) move to free callee-saved registers or their slots.
        for r in 0..16u8 {
            if CALLER_SAVED & (1 << r) == 0 {
                continue;
            }
            let t = self.owner[r as usize];
            if t == NO_TEMP {
                continue;
            }
            if self.s.last_use[t as usize] >= self.i {
                match self.free_reg_in(CALLEE_SAVED) {
                    Some(to) => {
                        asm!(self.a ; mov Rq(to), Rq(r));
                        self.owner[to as usize] = t;
                        self.s.temps[t as usize].reg = to;
                        self.owner[r as usize] = NO_TEMP;
                        continue;
                    }
                    None => self.spill(t),
                }
            }
            self.release(r);
        }
        for (k, t) in args.iter().enumerate() {
            self.load_into(ARG_REGS[k], t.0);
        }
        let f = h.func.addr() as i64;
        asm!(self.a
            ; mov rdi, r14
            ; mov rax, QWORD f
            ; call rax
        );
        if let Some(r) = ret {
            if self.blk.ty(r) == Ty::I32 {
                asm!(self.a ; mov eax, eax);
            }
            self.def_reg(r, RAX);
        }
        if h.flags.may_exit {
            let stub = self.a.new_dynamic_label();
            let back = self.a.new_dynamic_label();
            asm!(self.a
                ; cmp DWORD [r14 + HELPER_EXIT_OFFSET as i32], 0
                ; jne =>stub
            );
            let deferred = self.snapshot_pending();
            self.s.stubs.push(Stub {
                entry: stub,
                back,
                pc: self.pc,
                kind: StubKind::HelperExit,
                deferred,
            });
        }
        Ok(())
    }

    /// Records where the values of pending `st_env_fault` stores are now,
    /// for a fault path; returns the range in `Scratch::deferred`.
    fn snapshot_pending(&mut self) -> (u32, u32) {
        let start = self.s.deferred.len() as u32;
        for k in 0..self.s.pending.len() {
            let (t, off, size) = self.s.pending[k];
            let st = self.s.temps[t.index()];
            let loc = if st.reg != NO_REG {
                Loc::Reg(st.reg)
            } else if let Some(c) = st.konst {
                Loc::Imm(c)
            } else if st.mem {
                Loc::Slot((st.slot * 8) as i32)
            } else {
                continue; // never defined on this path
            };
            self.s.deferred.push((loc, off, size));
        }
        (start, self.s.deferred.len() as u32)
    }

    /// Performs the deferred stores of a fault path. Caller-saved registers
    /// were clobbered by the slow-path call, so their values come from the
    /// save area (pending values are live past the access, hence saved).
    fn emit_deferred(&mut self, range: (u32, u32)) {
        for k in range.0..range.1 {
            let (loc, off, size) = self.s.deferred[k as usize];
            match loc {
                Loc::Reg(r) if CALLER_SAVED & (1 << r) != 0 => {
                    let at = SAVE_AREA + r as i32 * 8;
                    asm!(self.a ; mov r11, QWORD [rsp + at]);
                }
                Loc::Reg(r) => asm!(self.a ; mov r11, Rq(r)),
                Loc::Imm(c) => asm!(self.a ; mov r11, QWORD c as i64),
                Loc::Slot(at) => asm!(self.a ; mov r11, QWORD [rsp + at]),
            }
            let off = off as i32;
            match size {
                MemSize::B1 => asm!(self.a ; mov BYTE [r14 + off], r11b),
                MemSize::B2 => asm!(self.a ; mov WORD [r14 + off], r11w),
                MemSize::B4 => asm!(self.a ; mov DWORD [r14 + off], r11d),
                MemSize::B8 => asm!(self.a ; mov QWORD [r14 + off], r11),
            }
        }
    }

    fn save_regs(&mut self, mask: u16) {
        for r in 0..16u8 {
            if mask & (1 << r) != 0 {
                let off = SAVE_AREA + r as i32 * 8;
                asm!(self.a ; mov QWORD [rsp + off], Rq(r));
            }
        }
    }

    fn restore_regs(&mut self, mask: u16) {
        for r in 0..16u8 {
            if mask & (1 << r) != 0 {
                let off = SAVE_AREA + r as i32 * 8;
                asm!(self.a ; mov Rq(r), QWORD [rsp + off]);
            }
        }
    }

    fn stub(&mut self, stub: &Stub) {
        self.a.dynamic_label(stub.entry);
        match stub.kind {
            StubKind::Interrupt => {
                self.set_exit(exit_kind::INTERRUPTED, stub.pc);
                self.jmp_exit();
            }
            StubKind::HelperExit => {
                self.emit_deferred(stub.deferred);
                self.set_exit(exit_kind::HELPER, stub.pc);
                self.jmp_exit();
            }
            StubKind::Load {
                addr,
                dst,
                bits,
                save,
            } => {
                let f = softmmu::slow_load as *const () as usize as i64;
                self.save_regs(save);
                asm!(self.a
                    ; mov rsi, Rq(addr)
                    ; mov rdi, r14
                    ; mov edx, bits as i32
                    ; mov rax, QWORD f
                    ; call rax
                    ; test rdx, rdx
                    ; jnz >fault
                );
                if dst != RAX {
                    asm!(self.a ; mov Rq(dst), rax);
                }
                self.restore_regs(save);
                let back = stub.back;
                asm!(self.a ; jmp =>back ; fault: ; mov QWORD [r14 + EXIT_AUX_OFFSET as i32], rdx);
                self.emit_deferred(stub.deferred);
                self.set_exit(exit_kind::FAULT, stub.pc);
                self.jmp_exit();
            }
            StubKind::Atomic {
                addr,
                x,
                y,
                bits,
                save,
            } => {
                let f = softmmu::slow_atomic as *const () as usize as i64;
                self.save_regs(save);
                // The operands may sit in the argument registers: move them
                // through the stack (two pushes and a third keep rsp
                // 16-aligned again once popped).
                asm!(self.a
                    ; push Rq(addr)
                    ; push Rq(x)
                    ; push Rq(y)
                    ; pop rcx
                    ; pop rdx
                    ; pop rsi
                    ; mov rdi, r14
                    ; mov r8d, bits as i32
                    ; mov rax, QWORD f
                    ; call rax
                    ; test rdx, rdx
                    ; jnz >fault
                );
                self.restore_regs(save);
                let back = stub.back;
                asm!(self.a ; jmp =>back ; fault: ; mov QWORD [r14 + EXIT_AUX_OFFSET as i32], rdx);
                self.emit_deferred(stub.deferred);
                self.set_exit(exit_kind::FAULT, stub.pc);
                self.jmp_exit();
            }
            StubKind::Store {
                addr,
                val,
                bits,
                save,
            } => {
                let f = softmmu::slow_store as *const () as usize as i64;
                self.save_regs(save);
                match val {
                    Val::Reg(r) => asm!(self.a ; mov r11, Rq(r)),
                    Val::Imm(c) => asm!(self.a ; mov r11, QWORD c),
                }
                asm!(self.a
                    ; mov rsi, Rq(addr)
                    ; mov rdx, r11
                    ; mov rdi, r14
                    ; mov ecx, bits as i32
                    ; mov rax, QWORD f
                    ; call rax
                    ; test rax, rax
                    ; jnz >fault
                );
                self.restore_regs(save);
                let back = stub.back;
                asm!(self.a ; jmp =>back ; fault: ; mov QWORD [r14 + EXIT_AUX_OFFSET as i32], rax);
                self.emit_deferred(stub.deferred);
                self.set_exit(exit_kind::FAULT, stub.pc);
                self.jmp_exit();
            }
        }
    }
}
