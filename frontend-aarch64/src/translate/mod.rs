//! A64 instructions to IR.
//!
//! [`translate_block`] fetches one 32-bit word at a time, looks it up in the
//! decoder's table ([`crate::decode`]) and runs the handler, which lives in
//! one module per encoding class:
//!
//! | module            | instructions                                                    |
//! |-------------------|-----------------------------------------------------------------|
//! | [`data_proc_imm`] | adr/adrp, add/sub immediate, logical immediate, movz/movn/movk, sbfm/bfm/ubfm, extr |
//! | [`data_proc_reg`] | shifted/extended add/sub, logical, adc/sbc, ccmp/ccmn, csel family, 1/2/3-source |
//! | [`branch`]        | b, bl, b.cond, cbz/cbnz, tbz/tbnz, br, blr, ret, eret, svc/hvc/smc/brk |
//! | [`load_store`]    | every integer load and store, pairs, exclusives, acquire/release, LSE atomics |
//! | [`system`]        | hints, barriers, clrex, msr/mrs/sys (finished in Rust)           |
//! | [`fp`]            | scalar FP and Advanced SIMD data processing (a Rust helper call) |
//! | [`simd`]          | SIMD&FP loads and stores, structure loads and stores             |
//!
//! # Conventions
//!
//! * Every value is a 64-bit temp; a 32-bit (`W`) result is zero-extended
//!   when written, as the architecture does.
//! * Registers are read with `ld_env` and written with `st_env` as each
//!   instruction completes; the optimizer forwards them within a block.
//!   Register 31 is XZR or SP depending on the operand ([`Ctx::x`] /
//!   [`Ctx::xsp`]).
//! * Precise faults: an instruction does all its memory accesses before it
//!   writes any register.
//! * NZCV are four words ([`crate::state`]); [`Ctx::cond`] evaluates a
//!   condition from them.
//! * Instructions finished in Rust end the block with `exit_status(code)`
//!   ([`status`]).

pub mod branch;
pub mod data_proc_imm;
pub mod data_proc_reg;
pub mod fp;
pub mod load_store;
pub mod simd;
pub mod status;
pub mod system;

use accel_tcg::guest::{CodeReader, FetchFault};
use accel_tcg::ir::{Block, Cond, MemOp, Temp, Ty};
use accel_tcg::softmmu::PAGE_MASK;

use crate::decode::{self, Insn};
use crate::state::{self, MMU_EL0, MMU_EL1};

/// Translation-block flags: the CPU mode bits translation depends on.
pub mod tbflags {
    /// PSTATE.EL (bit 0: 0 or 1).
    pub const EL1: u64 = 1 << 0;
    /// PSTATE.SP: SP_ELx in use.
    pub const SPSEL: u64 = 1 << 1;
    /// Every data access must be aligned: SCTLR_EL1.M = 0 (data accesses
    /// are Device-nGnRnE, Arm ARM D5.2.9) or SCTLR_EL1.A = 1.
    pub const ALIGN: u64 = 1 << 2;
    /// SP alignment checking at this EL (SCTLR_EL1.SA, or SA0 at EL0):
    /// a load or store based on a misaligned SP faults (D1.8.2).
    pub const SP_CHECK: u64 = 1 << 3;
    /// FP/SIMD instructions trap at this EL (CPACR_EL1.FPEN, D8.5).
    pub const FP_TRAP: u64 = 1 << 4;
    /// PSTATE.IL: an illegal exception return happened; the next
    /// instruction takes an Illegal Execution state exception.
    pub const IL: u64 = 1 << 5;
    /// `DC ZVA` traps: EL0 with SCTLR_EL1.DZE = 0.
    pub const ZVA_TRAP: u64 = 1 << 6;
}

/// Why an instruction was not translated: it raises Undefined Instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undef {
    /// The encoding is unallocated or reserved.
    Unallocated,
    /// The encoding is allocated but moat does not translate it yet.
    NotImplemented,
}

/// What a handler did with the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Continue with the next instruction.
    Next,
    /// The handler ended the block (branch, exit).
    End,
}

/// Handler result.
pub type Res = Result<Flow, Undef>;

/// The handler of encodings moat does not translate yet.
pub fn not_implemented(_c: &mut Ctx<'_>, _i: Insn) -> Res {
    Err(Undef::NotImplemented)
}

/// The translation context of one block.
pub struct Ctx<'a> {
    /// The block being built.
    pub b: &'a mut Block,
    /// TB flags.
    pub tb: u64,
    /// The instruction's address.
    pub pc: u64,
}

impl<'a> Ctx<'a> {
    /// A context for a block with these flags.
    pub fn new(b: &'a mut Block, tb: u64) -> Ctx<'a> {
        Ctx { b, tb, pc: 0 }
    }

    /// The exception level the code runs at.
    pub fn el(&self) -> u64 {
        self.tb & tbflags::EL1
    }

    /// The soft-MMU index of ordinary accesses at this EL.
    pub fn mmu(&self) -> u8 {
        if self.el() == 0 { MMU_EL0 } else { MMU_EL1 }
    }

    /// A 64-bit constant.
    pub fn k(&mut self, v: u64) -> Temp {
        self.b.const_temp(Ty::I64, v)
    }

    /// A fresh 64-bit temp.
    pub fn t(&mut self) -> Temp {
        self.b.temp64()
    }

    /// Loads a CPU-state word.
    pub fn ld(&mut self, off: u32) -> Temp {
        let t = self.t();
        self.b.ld_env(t, off, MemOp::Q);
        t
    }

    /// Stores a CPU-state word.
    pub fn st(&mut self, off: u32, v: Temp) {
        self.b.st_env(v, off, MemOp::Q);
    }

    /// Zero-extends the low 32 bits unless `sf`.
    pub fn trunc(&mut self, v: Temp, sf: bool) -> Temp {
        if sf {
            return v;
        }
        let t = self.t();
        self.b.ext32u(t, v);
        t
    }

    /// Register `n` as a source with 31 = XZR, truncated to 32 bits unless `sf`.
    pub fn x(&mut self, n: usize, sf: bool) -> Temp {
        if n == 31 {
            return self.k(0);
        }
        let v = self.ld(state::x_off(n));
        self.trunc(v, sf)
    }

    /// Register `n` as a source with 31 = SP.
    pub fn xsp(&mut self, n: usize, sf: bool) -> Temp {
        let v = self.ld(state::x_off(n.min(31)));
        self.trunc(v, sf)
    }

    /// Base register `n` of a load or store (31 = SP). With SP alignment
    /// checking on, a misaligned SP raises the SP alignment fault before
    /// any access (Arm ARM D1.8.2).
    pub fn base(&mut self, n: usize) -> Temp {
        let v = self.xsp(n, true);
        if n == 31 && self.tb & tbflags::SP_CHECK != 0 {
            let ok = self.b.label();
            let k15 = self.k(15);
            let low = self.bin(Block::and, v, k15);
            let zero = self.k(0);
            self.b.brcond(low, zero, Cond::Eq, ok);
            self.b.exit_status(status::SP_ALIGN);
            self.b.set_label(ok);
        }
        v
    }

    /// The memory op of a plain data access of `size` through `mmu`,
    /// aligned when the CPU checks alignment ([`tbflags::ALIGN`]).
    pub fn data_mop(&self, size: accel_tcg::ir::MemSize, mmu: u8) -> accel_tcg::ir::MemOp {
        let mop = MemOp::new(size).mmu(mmu);
        if self.tb & tbflags::ALIGN != 0 {
            mop.aligned()
        } else {
            mop
        }
    }

    /// Writes register `n` (31 = XZR: discarded), zero-extending a W result.
    pub fn set_x(&mut self, n: usize, v: Temp, sf: bool) {
        if n >= 31 {
            return;
        }
        let v = self.trunc(v, sf);
        self.st(state::x_off(n), v);
    }

    /// Writes register `n` with 31 = SP.
    pub fn set_xsp(&mut self, n: usize, v: Temp, sf: bool) {
        let v = self.trunc(v, sf);
        self.st(state::x_off(n.min(31)), v);
    }

    /// `d = a op b` as a new temp.
    pub fn bin(&mut self, f: fn(&mut Block, Temp, Temp, Temp), a: Temp, b: Temp) -> Temp {
        let d = self.t();
        f(self.b, d, a, b);
        d
    }

    /// `d = (a cond b) ? 1 : 0`.
    pub fn setcond(&mut self, a: Temp, b: Temp, cond: Cond) -> Temp {
        let d = self.t();
        self.b.setcond(d, a, b, cond);
        d
    }

    /// N and Z from a result (zero-extended when `!sf`).
    pub fn set_nz(&mut self, res: Temp, sf: bool) {
        if sf {
            self.st(state::NF_OFF, res);
            self.st(state::ZF_OFF, res);
        } else {
            let n = self.t();
            self.b.ext32s(n, res);
            let z = self.trunc(res, false);
            self.st(state::NF_OFF, n);
            self.st(state::ZF_OFF, z);
        }
    }

    /// NZCV of a logical operation (C and V cleared).
    pub fn logic_flags(&mut self, res: Temp, sf: bool) {
        self.set_nz(res, sf);
        let z = self.k(0);
        self.st(state::CF_OFF, z);
        self.st(state::VF_OFF, z);
    }

    /// `a + b + carry` with NZCV (the Arm ARM's `AddWithCarry`), `a` and `b`
    /// already truncated to the operation size. `carry` is a 0/1 temp or
    /// `None` for 0. Returns the (truncated) result.
    pub fn add_with_carry(&mut self, a: Temp, b: Temp, carry: Option<Temp>, sf: bool) -> Temp {
        let (res, c) = if sf {
            let t = self.bin(Block::add, a, b);
            let c1 = self.setcond(t, a, Cond::Ltu);
            match carry {
                None => (t, c1),
                Some(cin) => {
                    let r = self.bin(Block::add, t, cin);
                    let c2 = self.setcond(r, t, Cond::Ltu);
                    let c = self.bin(Block::or, c1, c2);
                    (r, c)
                }
            }
        } else {
            // Operands are zero-extended 32-bit values: the 64-bit sum holds
            // the carry in bit 32.
            let mut s = self.bin(Block::add, a, b);
            if let Some(cin) = carry {
                s = self.bin(Block::add, s, cin);
            }
            let k32 = self.k(32);
            let c = self.bin(Block::shr, s, k32);
            let r = self.trunc(s, false);
            (r, c)
        };
        // V = (res ^ a) & !(a ^ b), sign bit.
        let x1 = self.bin(Block::xor, res, a);
        let x2 = self.bin(Block::xor, a, b);
        let nx2 = self.t();
        self.b.not(nx2, x2);
        let v = self.bin(Block::and, x1, nx2);
        let v = if sf {
            v
        } else {
            let t = self.t();
            self.b.ext32s(t, v);
            t
        };
        self.set_nz(res, sf);
        self.st(state::CF_OFF, c);
        self.st(state::VF_OFF, v);
        res
    }

    /// `a - b` with NZCV (`AddWithCarry(a, NOT(b), 1)`), operands truncated.
    pub fn sub_flags(&mut self, a: Temp, b: Temp, sf: bool) -> Temp {
        let res = self.bin(Block::sub, a, b);
        let res = self.trunc(res, sf);
        let c = self.setcond(a, b, Cond::Geu);
        // V = (a ^ b) & (a ^ res), sign bit.
        let x1 = self.bin(Block::xor, a, b);
        let x2 = self.bin(Block::xor, a, res);
        let v = self.bin(Block::and, x1, x2);
        let v = if sf {
            v
        } else {
            let t = self.t();
            self.b.ext32s(t, v);
            t
        };
        self.set_nz(res, sf);
        self.st(state::CF_OFF, c);
        self.st(state::VF_OFF, v);
        res
    }

    /// Condition `cc` (the A64 4-bit code) as a 0/1 temp.
    pub fn cond(&mut self, cc: u32) -> Temp {
        let zero = self.k(0);
        let base = match cc >> 1 {
            0 => {
                let z = self.ld(state::ZF_OFF);
                self.setcond(z, zero, Cond::Eq)
            }
            1 => {
                let c = self.ld(state::CF_OFF);
                self.setcond(c, zero, Cond::Ne)
            }
            2 => {
                let n = self.ld(state::NF_OFF);
                self.setcond(n, zero, Cond::Lt)
            }
            3 => {
                let v = self.ld(state::VF_OFF);
                self.setcond(v, zero, Cond::Lt)
            }
            4 => {
                let c = self.ld(state::CF_OFF);
                let z = self.ld(state::ZF_OFF);
                let c = self.setcond(c, zero, Cond::Ne);
                let nz = self.setcond(z, zero, Cond::Ne);
                self.bin(Block::and, c, nz)
            }
            5 => {
                let n = self.ld(state::NF_OFF);
                let v = self.ld(state::VF_OFF);
                let x = self.bin(Block::xor, n, v);
                self.setcond(x, zero, Cond::Ge)
            }
            6 => {
                let n = self.ld(state::NF_OFF);
                let v = self.ld(state::VF_OFF);
                let z = self.ld(state::ZF_OFF);
                let x = self.bin(Block::xor, n, v);
                let ge = self.setcond(x, zero, Cond::Ge);
                let nz = self.setcond(z, zero, Cond::Ne);
                self.bin(Block::and, ge, nz)
            }
            _ => return self.k(1),
        };
        if cc & 1 != 0 {
            let one = self.k(1);
            self.bin(Block::xor, base, one)
        } else {
            base
        }
    }

    /// Ends the block with `code` for the exec loop.
    pub fn exit(&mut self, code: u64) -> Flow {
        self.b.exit_status(code);
        Flow::End
    }

    /// Leaves the block for constant `pc` through chain slot `slot`.
    pub fn goto(&mut self, slot: u8, pc: u64) {
        goto_pc(self.b, slot, pc);
    }
}

/// Translates the block at `pc` (see [`accel_tcg::guest::GuestCpu::translate`]).
pub fn translate_block(
    pc: u64,
    tb: u64,
    code: &mut dyn CodeReader,
    block: &mut Block,
    max_insns: usize,
) -> Result<(), FetchFault> {
    let mut ctx = Ctx::new(block, tb);
    if tb & tbflags::IL != 0 {
        ctx.b.insn_start(pc);
        ctx.exit(status::ILLEGAL);
        return Ok(());
    }
    if pc & 3 != 0 {
        ctx.b.insn_start(pc);
        ctx.exit(status::PC_ALIGN);
        return Ok(());
    }
    let mut cur = pc;
    let mut n = 0usize;
    loop {
        let mut buf = [0u8; 4];
        if let Err(fault) = code.read(cur, &mut buf) {
            if n == 0 {
                return Err(FetchFault { vaddr: cur, fault });
            }
            goto_pc(ctx.b, 0, cur);
            return Ok(());
        }
        let word = u32::from_le_bytes(buf);
        ctx.b.insn_start(cur);
        ctx.pc = cur;
        n += 1;
        let flow = translate_insn(&mut ctx, word);
        if flow == Flow::End {
            return Ok(());
        }
        cur = cur.wrapping_add(4);
        if n >= max_insns || (cur & PAGE_MASK) != (pc & PAGE_MASK) {
            goto_pc(ctx.b, 0, cur);
            return Ok(());
        }
    }
}

/// Translates one instruction word; unallocated and untranslated words
/// raise Undefined Instruction.
pub fn translate_insn(c: &mut Ctx<'_>, word: u32) -> Flow {
    let result = match decode::decode(word) {
        // CPACR_EL1.FPEN traps every FP/SIMD instruction at this EL.
        Some(entry) if entry.class == decode::Class::FpSimd && c.tb & tbflags::FP_TRAP != 0 => {
            return c.exit(status::FP_TRAP);
        }
        Some(entry) => (entry.handler)(c, Insn(word)),
        None => Err(Undef::Unallocated),
    };
    match result {
        Ok(f) => f,
        Err(why) => {
            if why == Undef::NotImplemented {
                log::debug!("aarch64: {word:#010x} at {:#x} is not translated yet", c.pc);
            }
            c.exit(status::UNDEF)
        }
    }
}

/// Leaves the block for `pc`: a chained jump within the block's page, an
/// indirect exit to another page (whose mapping may change meanwhile).
pub fn goto_pc(b: &mut Block, slot: u8, pc: u64) {
    if pc & PAGE_MASK == b.pc & PAGE_MASK {
        b.goto_tb(slot, pc);
    } else {
        let target = b.const_temp(Ty::I64, pc);
        b.exit_indirect(target);
    }
}

/// Whether `word` is an instruction moat knows (translated or recognized
/// but not translated yet), by translating it at EL `tb` into a scratch
/// block: the decoder's answer with the handlers' reserved-field checks.
/// Tests compare it with an independent disassembler.
pub fn check(word: u32, tb: u64) -> Result<&'static str, Undef> {
    let entry = decode::decode(word).ok_or(Undef::Unallocated)?;
    let mut b = Block::new(0x1000);
    let mut c = Ctx::new(&mut b, tb);
    c.pc = 0x1000;
    (entry.handler)(&mut c, Insn(word)).map(|_| entry.name)
}
