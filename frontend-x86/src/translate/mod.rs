//! x86 instructions to IR.
//!
//! [`translate_block`] decodes guest code with `iced-x86` one instruction at
//! a time and hands each to a handler chosen by mnemonic; the handlers live
//! in one module per instruction class:
//!
//! | module     | instructions                                                    |
//! |------------|-----------------------------------------------------------------|
//! | [`alu`]    | add/sub/logic/cmp/test, inc/dec/neg/not, mov and extensions, lea, xchg, cmpxchg, xadd, setcc, cmovcc, conversions |
//! | [`shift`]  | shl/shr/sar, rol/ror/rcl/rcr, shld/shrd                          |
//! | [`muldiv`] | mul, imul, div, idiv                                            |
//! | [`bits`]   | bt/bts/btr/btc, bsf/bsr, tzcnt/lzcnt/popcnt, bswap               |
//! | [`string`] | movs/stos/lods/cmps/scas with rep prefixes                      |
//! | [`branch`] | jmp, jcc, loop, jrcxz, call, ret                                 |
//! | [`stack`]  | push/pop, enter/leave, pushf/popf                               |
//! | [`system`] | control registers, descriptor tables, MSRs, far transfers, cpuid, rdtsc, hlt, int |
//! | [`io`]     | in/out/ins/outs                                                 |
//! | [`sse`]    | SSE, SSE2, SSE3 and SSSE3: moves, logic, integer SIMD, floating point, conversions, ldmxcsr, fxsave |
//! | [`mmx`]    | MMX, and the SSE/SSE2/SSSE3 instructions with mm operands (see [`crate::mmx`]) |
//! | [`x87`]    | the x87 FPU (run on the host's x87 unit, see [`crate::x87`]), fwait |
//!
//! # Conventions
//!
//! * Every value is a 64-bit temp holding the operand zero-extended to 64
//!   bits; narrower operands are masked when they are formed.
//! * Guest registers are read with `ld_env` and written with `st_env` as
//!   each instruction completes; the optimizer forwards them within a block.
//! * Precise faults: an instruction does all its guest memory accesses
//!   before it writes any register or flag (see accel-tcg's softmmu docs).
//! * Flags are lazy ([`crate::flags`]); `Ctx::cc` remembers what the last
//!   flag-setting instruction of this block stored so that conditions are
//!   evaluated from temps without rebuilding the flags.
//! * Instructions that are finished in Rust end the block with
//!   `exit_status(code)`; [`status`] defines the codes.
//! * Anything the decoder rejects or no handler covers raises #UD.

pub mod alu;
pub mod bits;
pub mod branch;
pub mod io;
pub mod mmx;
pub mod muldiv;
pub mod shift;
pub mod sse;
pub mod stack;
pub mod status;
pub mod string;
pub mod system;
pub mod x87;

use accel_tcg::guest::{CodeReader, FetchFault};
use accel_tcg::ir::{
    AtomicOp, Block, Cond, HelperFlags, HelperFn, HelperId, MemOp, MemSize, Temp, Ty,
};
use accel_tcg::softmmu::PAGE_MASK;
use iced_x86::{ConditionCode, Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

use crate::flags::{self, CcOp, kind};
use crate::state::{self, rflags, seg};

/// Translation-block flags: the CPU mode bits translation depends on.
pub mod tbflags {
    /// 64-bit code (long mode and CS.L).
    pub const CODE64: u64 = 1 << 0;
    /// 32-bit default operand size (CS.D). With neither this nor
    /// [`CODE64`] the code is 16-bit: real mode (CR0.PE = 0), or a
    /// protected-mode code segment with D = 0, decoded with bitness 16.
    pub const CODE32: u64 = 1 << 1;
    /// Current privilege level (2 bits).
    pub const CPL_SHIFT: u32 = 2;
    /// Some of ES/CS/SS/DS has a nonzero base (32-bit mode).
    pub const ADDSEG: u64 = 1 << 4;
    /// Protected mode (CR0.PE): segment loads read descriptors; without
    /// it they set base = selector << 4.
    pub const PE: u64 = 1 << 5;
    /// 32-bit stack (SS.B); outside 64-bit mode without it the stack
    /// pointer is SP, wrapping at 64 KiB.
    pub const SS32: u64 = 1 << 6;
    /// Long mode active.
    pub const LMA: u64 = 1 << 7;
    /// SSE instructions raise #UD: CR4.OSFXSR = 0 or CR0.EM = 1.
    pub const NO_SSE: u64 = 1 << 8;
    /// CR0.EM.
    pub const EM: u64 = 1 << 9;
    /// CR0.TS: SSE and x87 instructions raise #NM.
    pub const TS: u64 = 1 << 10;
    /// RFLAGS.TF: every instruction ends its block with a #DB trap.
    pub const TF: u64 = 1 << 11;
    /// The CS base sits in the high 32 bits (outside 64-bit mode).
    pub const CS_BASE_SHIFT: u32 = 32;
}

/// Why an instruction was not translated: it raises #UD in the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsupported;

/// What a handler did with the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Continue with the next instruction.
    Next,
    /// The handler ended the block (branch, exit).
    End,
}

/// Handler result.
pub type Res = Result<Flow, Unsupported>;

/// What the translator knows about the lazy flags at this point of the
/// block.
#[derive(Clone, Copy, Debug)]
pub enum Cc {
    /// Only the CPU-state fields know.
    Unknown,
    /// The last flag-setting instruction of this block stored `op`, with its
    /// operands in these temps.
    Known {
        /// The operation.
        op: CcOp,
        /// `cc_dst`
        dst: Temp,
        /// `cc_src`
        src: Temp,
        /// `cc_src2`
        src2: Temp,
        /// For a subtraction, its left operand (zero-extended), if known.
        left: Option<Temp>,
    },
}

/// Helpers translated code calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum H {
    /// [`flags::helper_compute`]
    Compute,
    /// [`muldiv::helper_div`]
    Div,
    /// [`system::helper_cpuid`]
    Cpuid,
    /// [`system::helper_rdtsc`]
    Rdtsc,
    /// [`crate::simd::helper_sse`] for floating point (may raise #XM)
    Sse,
    /// [`crate::simd::helper_sse`] for integer operations (cannot fault)
    SseInt,
    /// [`crate::simd::helper_shuffle`]
    Shuffle,
    /// [`crate::x87::helper_x87`]
    X87,
    /// [`crate::mmx::helper_mmx`]
    Mmx,
}

const NUM_HELPERS: usize = 9;

/// A register or memory operand.
#[derive(Clone, Copy, Debug)]
pub enum Loc {
    /// General-purpose register `n`; `high` for AH/CH/DH/BH.
    Reg {
        /// register number
        n: usize,
        /// bits 8..15
        high: bool,
    },
    /// Memory at this linear address.
    Mem(Temp),
}

/// The translation context of one block.
pub struct Ctx<'a> {
    /// The block being built.
    pub b: &'a mut Block,
    /// TB flags.
    pub tb: u64,
    /// The instruction being translated.
    pub i: Instruction,
    /// Its linear address.
    pub pc: u64,
    /// The linear address after it.
    pub next_pc: u64,
    /// CS base (0 in 64-bit mode).
    pub cs_base: u64,
    /// Lazy-flags knowledge.
    pub cc: Cc,
    /// The instruction's first bytes (the x87 opcode register needs them).
    pub bytes: [u8; 15],
    helpers: [Option<HelperId>; NUM_HELPERS],
}

impl<'a> Ctx<'a> {
    /// A context for a block with these flags.
    pub fn new(b: &'a mut Block, tb: u64) -> Ctx<'a> {
        let cs_base = if tb & tbflags::CODE64 != 0 {
            0
        } else {
            tb >> tbflags::CS_BASE_SHIFT
        };
        Ctx {
            b,
            tb,
            i: Instruction::default(),
            pc: 0,
            next_pc: 0,
            cs_base,
            cc: Cc::Unknown,
            bytes: [0; 15],
            helpers: [None; NUM_HELPERS],
        }
    }

    /// 64-bit mode.
    pub fn code64(&self) -> bool {
        self.tb & tbflags::CODE64 != 0
    }

    /// Current privilege level.
    pub fn cpl(&self) -> u64 {
        (self.tb >> tbflags::CPL_SHIFT) & 3
    }

    /// The soft-MMU index of this block's guest memory accesses: user at
    /// CPL 3, else supervisor (the CPL is part of the TB flags).
    pub fn mmu_idx(&self) -> u8 {
        crate::mmu::mmu_idx_for_cpl(self.cpl()) as u8
    }

    /// A guest memory access of `bytes` through this block's soft-MMU index.
    fn mem_op(&self, bytes: u32) -> MemOp {
        MemOp::new(mem_size(bytes)).mmu(self.mmu_idx())
    }

    /// The instruction's rip.
    pub fn rip(&self) -> u64 {
        self.pc.wrapping_sub(self.cs_base)
    }

    /// The next instruction's rip.
    pub fn next_rip(&self) -> u64 {
        self.next_pc.wrapping_sub(self.cs_base)
    }

    /// Linear pc for a rip (branch targets).
    pub fn linear(&self, rip: u64) -> u64 {
        if self.code64() {
            rip
        } else {
            rip.wrapping_add(self.cs_base) & 0xffff_ffff
        }
    }

    // ---- temps and constants ----

    /// A new 64-bit temp.
    pub fn t(&mut self) -> Temp {
        self.b.temp64()
    }

    /// A 64-bit constant.
    pub fn k(&mut self, v: u64) -> Temp {
        self.b.const_temp(Ty::I64, v)
    }

    /// `d = a & mask(bits)` into a new temp (no op for 64 bits).
    pub fn zext(&mut self, a: Temp, bytes: u32) -> Temp {
        let d = self.t();
        match bytes {
            1 => self.b.ext8u(d, a),
            2 => self.b.ext16u(d, a),
            4 => self.b.ext32u(d, a),
            _ => self.b.mov(d, a),
        }
        d
    }

    /// Sign-extends the low `bytes` of `a` to 64 bits.
    pub fn sext(&mut self, a: Temp, bytes: u32) -> Temp {
        let d = self.t();
        match bytes {
            1 => self.b.ext8s(d, a),
            2 => self.b.ext16s(d, a),
            4 => self.b.ext32s(d, a),
            _ => self.b.mov(d, a),
        }
        d
    }

    /// `a op b` into a new temp, for the two-operand builder methods.
    pub fn op2(&mut self, f: fn(&mut Block, Temp, Temp, Temp), a: Temp, b: Temp) -> Temp {
        let d = self.t();
        f(self.b, d, a, b);
        d
    }

    /// `a op const` into a new temp.
    pub fn op2i(&mut self, f: fn(&mut Block, Temp, Temp, Temp), a: Temp, c: u64) -> Temp {
        let k = self.k(c);
        self.op2(f, a, k)
    }

    // ---- CPU state ----

    /// Loads a 64-bit CPU-state field.
    pub fn ld(&mut self, off: u32) -> Temp {
        let d = self.t();
        self.b.ld_env(d, off, MemOp::Q);
        d
    }

    /// Stores a 64-bit CPU-state field.
    pub fn st(&mut self, v: Temp, off: u32) {
        self.b.st_env(v, off, MemOp::Q);
    }

    /// Stores a constant into a CPU-state field.
    pub fn sti(&mut self, v: u64, off: u32) {
        let t = self.k(v);
        self.st(t, off);
    }

    /// General-purpose register `n`, all 64 bits.
    pub fn reg64(&mut self, n: usize) -> Temp {
        self.ld(state::reg_off(n))
    }

    /// Reads `bytes` of register `n` (zero-extended); `high` for AH..BH.
    pub fn read_reg(&mut self, n: usize, bytes: u32, high: bool) -> Temp {
        let r = self.reg64(n);
        if high {
            let s = self.op2i(Block::shr, r, 8);
            return self.zext(s, 1);
        }
        self.zext(r, bytes)
    }

    /// Writes `bytes` of register `n` with x86 semantics: 32-bit writes
    /// zero the upper half, 8- and 16-bit writes keep the other bits.
    pub fn write_reg(&mut self, n: usize, bytes: u32, high: bool, v: Temp) {
        let off = state::reg_off(n);
        match (bytes, high) {
            (8, _) => self.st(v, off),
            (4, _) => {
                let z = self.zext(v, 4);
                self.st(z, off);
            }
            (1, true) => {
                let old = self.reg64(n);
                let keep = self.op2i(Block::and, old, !0xff00);
                let lo = self.zext(v, 1);
                let sh = self.op2i(Block::shl, lo, 8);
                let new = self.op2(Block::or, keep, sh);
                self.st(new, off);
            }
            _ => {
                let old = self.reg64(n);
                let keep = self.op2i(Block::and, old, !flags::mask(bytes * 8));
                let lo = self.zext(v, bytes);
                let new = self.op2(Block::or, keep, lo);
                self.st(new, off);
            }
        }
    }

    // ---- operands ----

    /// Size in bytes of operand `op` (register or memory).
    pub fn op_size(&self, op: u32) -> u32 {
        match self.i.op_kind(op) {
            OpKind::Register => self.i.op_register(op).size() as u32,
            _ => self.i.memory_size().size() as u32,
        }
    }

    /// The operand size of a stack access (push/pop/call/ret).
    pub fn stack_size(&self) -> u32 {
        let inc = self.i.stack_pointer_increment().unsigned_abs();
        if inc == 2 || inc == 4 || inc == 8 {
            inc
        } else if self.code64() {
            8
        } else if self.code16() {
            2
        } else {
            4
        }
    }

    /// 16-bit default operand and address size: real mode, or a protected-mode
    /// code segment with D = 0 (and L = 0).
    pub fn code16(&self) -> bool {
        self.tb & (tbflags::CODE64 | tbflags::CODE32) == 0
    }

    /// True when the memory operand uses 16-bit addressing (`[bx+si+disp]`,
    /// or a bare 16-bit displacement): the default in 16-bit code, or after
    /// an address-size prefix in 32-bit code.
    pub fn mem_addr16(&self) -> bool {
        if self.code64() {
            return false;
        }
        let (base, index) = (self.i.memory_base(), self.i.memory_index());
        if base == Register::None && index == Register::None {
            return self.i.memory_displ_size() == 2;
        }
        [base, index]
            .iter()
            .any(|&r| r != Register::None && gpr_num(r).1 == 2)
    }

    /// The effective address (offset) of the memory operand, masked to the
    /// address size, and whether the address size is 32 bits. A 16-bit
    /// offset wraps at 64 KiB (SDM Vol. 1, "Specifying an Offset": base + index + displacement
    /// is computed at the address size).
    pub fn ea_offset(&mut self) -> (Temp, bool) {
        let i = self.i;
        let base = i.memory_base();
        let index = i.memory_index();
        let disp = i.memory_displacement64();
        let addr16 = self.mem_addr16();
        let mut addr32 = !self.code64() && !addr16;
        let a = self.t();
        self.b.movi(a, disp);
        if base == Register::EIP {
            addr32 = true;
        } else if base != Register::RIP {
            // (iced resolves rip-relative operands to the target rip.)
            if base != Register::None {
                let (n, sz) = gpr_num(base);
                addr32 |= sz == 4;
                let r = self.reg64(n);
                self.b.add(a, a, r);
            }
            if index != Register::None {
                let (n, sz) = gpr_num(index);
                addr32 |= sz == 4;
                let r = self.reg64(n);
                let scale = i.memory_index_scale();
                if scale > 1 {
                    let s = self.k(scale.trailing_zeros() as u64);
                    let sh = self.t();
                    self.b.shl(sh, r, s);
                    self.b.add(a, a, sh);
                } else {
                    self.b.add(a, a, r);
                }
            }
        }
        if addr16 {
            self.b.ext16u(a, a);
        } else if addr32 {
            self.b.ext32u(a, a);
        }
        (a, addr32)
    }

    /// The linear address of the memory operand.
    pub fn ea(&mut self) -> Temp {
        let (a, addr32) = self.ea_offset();
        self.add_seg_base(a, self.i.memory_segment(), addr32)
    }

    /// Adds the base of segment `sreg` to the offset `a`, as the mode
    /// requires (64-bit mode: FS and GS only).
    pub fn add_seg_base(&mut self, a: Temp, sreg: Register, addr32: bool) -> Temp {
        let s = match sreg {
            Register::ES => seg::ES,
            Register::CS => seg::CS,
            Register::SS => seg::SS,
            Register::FS => seg::FS,
            Register::GS => seg::GS,
            _ => seg::DS,
        };
        let needed =
            s == seg::FS || s == seg::GS || (!self.code64() && self.tb & tbflags::ADDSEG != 0);
        if !needed {
            return a;
        }
        let base = self.ld(state::seg_base_off(s));
        let d = self.op2(Block::add, a, base);
        if !self.code64() {
            self.b.ext32u(d, d);
        }
        let _ = addr32;
        d
    }

    /// Where operand `op` lives (register or computed memory address).
    pub fn loc(&mut self, op: u32) -> Result<Loc, Unsupported> {
        match self.i.op_kind(op) {
            OpKind::Register => {
                let r = self.i.op_register(op);
                let (n, sz) = gpr_num(r);
                if sz == 0 {
                    return Err(Unsupported);
                }
                Ok(Loc::Reg {
                    n,
                    high: is_high8(r),
                })
            }
            OpKind::Memory => Ok(Loc::Mem(self.ea())),
            _ => Err(Unsupported),
        }
    }

    /// Loads `bytes` from a location.
    pub fn load(&mut self, loc: Loc, bytes: u32) -> Temp {
        match loc {
            Loc::Reg { n, high } => self.read_reg(n, bytes, high),
            Loc::Mem(a) => self.qld(a, bytes, false),
        }
    }

    /// Stores `bytes` to a location.
    pub fn store(&mut self, loc: Loc, bytes: u32, v: Temp) {
        match loc {
            Loc::Reg { n, high } => self.write_reg(n, bytes, high, v),
            Loc::Mem(a) => self.qst(a, bytes, v),
        }
    }

    /// Guest memory load of `bytes` at linear `a` (zero- or sign-extended).
    pub fn qld(&mut self, a: Temp, bytes: u32, signed: bool) -> Temp {
        let d = self.t();
        let mop = self.mem_op(bytes);
        self.b
            .qemu_ld(d, a, if signed { mop.signed() } else { mop });
        d
    }

    /// Guest memory store of the low `bytes` of `v` at linear `a`.
    pub fn qst(&mut self, a: Temp, bytes: u32, v: Temp) {
        let mop = self.mem_op(bytes);
        self.b.qemu_st(v, a, mop);
    }

    /// The memory address of operand 0 if the instruction must update it
    /// atomically: a `lock` prefix with a memory destination. Other vCPU
    /// threads may share guest RAM, so these become `atomic_*` ops.
    pub fn lock_addr(&self, dl: Loc) -> Option<Temp> {
        match dl {
            Loc::Mem(a) if self.i.has_lock_prefix() => Some(a),
            _ => None,
        }
    }

    /// Atomic read-modify-write of `bytes` at linear `a` (translated as a
    /// store); returns the old value, zero-extended.
    pub fn qrmw(&mut self, a: Temp, bytes: u32, v: Temp, op: AtomicOp) -> Temp {
        let d = self.t();
        let mop = self.mem_op(bytes);
        self.b.atomic_rmw(d, a, v, mop, op);
        d
    }

    /// Atomic compare-and-swap of `bytes` at linear `a`: stores `new` if
    /// memory holds `cmp`; returns the old value, zero-extended.
    pub fn qcmpxchg(&mut self, a: Temp, bytes: u32, cmp: Temp, new: Temp) -> Temp {
        let d = self.t();
        let mop = self.mem_op(bytes);
        self.b.atomic_cmpxchg(d, a, cmp, new, mop);
        d
    }

    /// Stores `new` at `a` if memory still holds `old` (zero-extended), or
    /// else leaves the block to run this instruction again: an atomic
    /// read-modify-write for operations no `atomic_rmw` kind computes. The
    /// retry happens before anything of the instruction is written.
    pub fn store_if_unchanged(&mut self, a: Temp, bytes: u32, old: Temp, new: Temp) {
        let seen = self.qcmpxchg(a, bytes, old, new);
        let ok = self.b.label();
        self.b.brcond(seen, old, Cond::Eq, ok);
        let pc = self.k(self.pc);
        self.b.exit_indirect(pc);
        self.b.set_label(ok);
    }

    /// Reads operand `op` of `bytes`: register, memory or immediate.
    pub fn read_op(&mut self, op: u32, bytes: u32) -> Result<Temp, Unsupported> {
        match self.i.op_kind(op) {
            OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64 => {
                let v = self.i.immediate(op) & flags::mask(bytes * 8);
                Ok(self.k(v))
            }
            _ => {
                let l = self.loc(op)?;
                Ok(self.load(l, bytes))
            }
        }
    }

    // ---- helpers ----

    /// The block's id of helper `h`, registered on first use.
    pub fn helper(&mut self, h: H) -> HelperId {
        if let Some(id) = self.helpers[h as usize] {
            return id;
        }
        let (name, func, flags) = match h {
            H::Compute => (
                "compute_flags",
                HelperFn::A4(flags::helper_compute),
                HelperFlags {
                    pure: true,
                    no_env: true,
                    may_exit: false,
                },
            ),
            H::Div => (
                "div",
                HelperFn::A2(muldiv::helper_div),
                HelperFlags {
                    pure: false,
                    no_env: false,
                    may_exit: true,
                },
            ),
            H::Cpuid => (
                "cpuid",
                HelperFn::A0(system::helper_cpuid),
                HelperFlags::default(),
            ),
            H::Rdtsc => (
                "rdtsc",
                HelperFn::A0(system::helper_rdtsc),
                HelperFlags::default(),
            ),
            H::Sse => (
                "sse",
                HelperFn::A3(crate::simd::helper_sse),
                HelperFlags {
                    pure: false,
                    no_env: false,
                    may_exit: true,
                },
            ),
            H::SseInt => (
                "sse_int",
                HelperFn::A3(crate::simd::helper_sse),
                HelperFlags::default(),
            ),
            H::Shuffle => (
                "sse_shuffle",
                HelperFn::A3(crate::simd::helper_shuffle),
                HelperFlags::default(),
            ),
            H::X87 => (
                "x87",
                HelperFn::A3(crate::x87::helper_x87),
                HelperFlags {
                    pure: false,
                    no_env: false,
                    may_exit: true,
                },
            ),
            H::Mmx => (
                "mmx",
                HelperFn::A3(crate::mmx::helper_mmx),
                HelperFlags {
                    pure: false,
                    no_env: false,
                    may_exit: true,
                },
            ),
        };
        let id = self.b.helper(name, func, flags);
        self.helpers[h as usize] = Some(id);
        id
    }

    // ---- flags ----

    /// Records a flag-setting operation: stores the lazy state and
    /// remembers it for conditions later in the block.
    pub fn set_cc(&mut self, op: CcOp, dst: Temp, src: Option<Temp>, src2: Option<Temp>) {
        let src = match src {
            Some(s) => s,
            None => self.k(0),
        };
        let src2 = match src2 {
            Some(s) => s,
            None => self.k(0),
        };
        // Only the fields `flags::compute` reads for this kind are stored:
        // the others may keep stale values.
        let k = op.kind();
        self.sti(op.0, state::CC_OP_OFF);
        if k != kind::EFLAGS {
            self.st(dst, state::CC_DST_OFF);
        }
        if k != kind::LOGIC {
            self.st(src, state::CC_SRC_OFF);
        }
        if k == kind::ADC || k == kind::SBB {
            self.st(src2, state::CC_SRC2_OFF);
        }
        self.cc = Cc::Known {
            op,
            dst,
            src,
            src2,
            left: None,
        };
    }

    /// [`Ctx::set_cc`] for a subtraction `left - src`, remembering `left` so
    /// that conditions compare the operands directly.
    pub fn set_cc_sub(&mut self, bytes: u32, left: Temp, res: Temp, src: Temp) {
        self.set_cc(CcOp::new(kind::SUB, bytes), res, Some(src), None);
        if let Cc::Known {
            op, dst, src, src2, ..
        } = self.cc
        {
            self.cc = Cc::Known {
                op,
                dst,
                src,
                src2,
                left: Some(left),
            };
        }
    }

    /// Sets the arithmetic flags to `f` (only its arithmetic bits count).
    pub fn set_eflags_cc(&mut self, f: Temp) {
        let m = self.op2i(Block::and, f, rflags::ARITH);
        // For EFLAGS, cc_src holds the flags (cc_dst is not read).
        self.set_cc(CcOp::EFLAGS, m, Some(m), None);
    }

    /// The current arithmetic flags, rebuilt (as RFLAGS bits).
    pub fn eflags_arith(&mut self) -> Temp {
        if let Cc::Known { op, src, .. } = self.cc
            && op == CcOp::EFLAGS
        {
            return src;
        }
        let (op, dst, src, src2) = match self.cc {
            Cc::Known {
                op, dst, src, src2, ..
            } => {
                let o = self.k(op.0);
                (o, dst, src, src2)
            }
            Cc::Unknown => (
                self.ld(state::CC_OP_OFF),
                self.ld(state::CC_DST_OFF),
                self.ld(state::CC_SRC_OFF),
                self.ld(state::CC_SRC2_OFF),
            ),
        };
        let h = self.helper(H::Compute);
        let f = self.t();
        self.b.call_helper(Some(f), h, &[op, dst, src, src2]);
        f
    }

    /// CF as 0 or 1.
    pub fn carry(&mut self) -> Temp {
        let (a, b, c) = self.cond(ConditionCode::b);
        let d = self.t();
        self.b.setcond(d, a, b, c);
        d
    }

    /// A condition as `a cond b` on 64-bit temps.
    pub fn cond(&mut self, cc: ConditionCode) -> (Temp, Temp, Cond) {
        let v = cc as u32;
        let negate = v != 0 && (v - 1) & 1 == 1;
        let (a, b, c) = self.cond_base(if v == 0 { 0 } else { (v - 1) / 2 });
        (a, b, if negate { c.invert() } else { c })
    }

    /// Base condition `n` (o, b, e, be, s, p, l, le) as `a cond b`.
    fn cond_base(&mut self, n: u32) -> (Temp, Temp, Cond) {
        const O: u32 = 0;
        const B: u32 = 1;
        const E: u32 = 2;
        const BE: u32 = 3;
        const S: u32 = 4;
        const L: u32 = 6;
        const LE: u32 = 7;
        if let Cc::Known {
            op, dst, src, left, ..
        } = self.cc
        {
            let bytes = op.bits() / 8;
            match (op.kind(), n) {
                (kind::SUB, B | BE | L | LE) => {
                    let sum = match left {
                        Some(l) => l,
                        None => self.op2(Block::add, dst, src),
                    };
                    let (a, b) = if matches!(n, B | BE) {
                        (self.zext(sum, bytes), self.zext(src, bytes))
                    } else {
                        (self.sext(sum, bytes), self.sext(src, bytes))
                    };
                    let c = match n {
                        B => Cond::Ltu,
                        BE => Cond::Leu,
                        L => Cond::Lt,
                        _ => Cond::Le,
                    };
                    return (a, b, c);
                }
                (kind::LOGIC, O | B) => {
                    let z = self.k(0);
                    return (z, z, Cond::Ne);
                }
                (kind::LOGIC, L | LE) => {
                    let s = self.sext(dst, bytes);
                    let z = self.k(0);
                    return (s, z, if n == L { Cond::Lt } else { Cond::Le });
                }
                (k, BE | E) if (k == kind::LOGIC || n == E) && k != kind::EFLAGS => {
                    let z = self.zext(dst, bytes);
                    let zero = self.k(0);
                    return (z, zero, Cond::Eq);
                }
                (k, S) if k != kind::EFLAGS => {
                    let s = self.sext(dst, bytes);
                    let z = self.k(0);
                    return (s, z, Cond::Lt);
                }
                _ => {}
            }
        }
        let f = self.eflags_arith();
        let t = match n {
            O => self.op2i(Block::and, f, rflags::OF),
            B => self.op2i(Block::and, f, rflags::CF),
            E => self.op2i(Block::and, f, rflags::ZF),
            BE => self.op2i(Block::and, f, rflags::CF | rflags::ZF),
            S => self.op2i(Block::and, f, rflags::SF),
            5 => self.op2i(Block::and, f, rflags::PF),
            L | LE => {
                // SF != OF: OF (bit 11) shifted onto SF (bit 7).
                let o = self.op2i(Block::shr, f, 4);
                let x = self.op2(Block::xor, o, f);
                let sx = self.op2i(Block::and, x, rflags::SF);
                if n == LE {
                    // ZF (bit 6) joins: (SF != OF) | ZF.
                    let zf = self.op2i(Block::and, f, rflags::ZF);
                    self.op2(Block::or, sx, zf)
                } else {
                    sx
                }
            }
            _ => self.k(0),
        };
        let z = self.k(0);
        (t, z, Cond::Ne)
    }

    // ---- block exits ----

    /// Ends the block with a status for [`crate::cpu::X86Cpu::handle_status`].
    pub fn exit(&mut self, code: u64) -> Flow {
        self.b.exit_status(code | ((self.i.len() as u64) << 8));
        Flow::End
    }

    /// Raises exception `vector` (a fault: the guest sees rip of this
    /// instruction) and ends the path.
    pub fn raise(&mut self, vector: u8, error: Option<u16>) -> Flow {
        self.exit(status::exception(vector, error))
    }

    /// Raises #GP(0) unless at CPL 0; returns true if it did.
    pub fn need_cpl0(&mut self) -> bool {
        if self.cpl() != 0 {
            self.raise(status::GP, Some(0));
            return true;
        }
        false
    }

    /// Continues at constant rip `rip` through chain slot `slot`.
    pub fn goto(&mut self, slot: u8, rip: u64) {
        if self.single_step() {
            let target = self.k(self.mask_ip(rip));
            self.step_trap(target);
            return;
        }
        let pc = self.linear(self.mask_ip(rip));
        goto_pc(self.b, slot, pc);
    }

    /// Single-stepping (RFLAGS.TF was set when the block began).
    pub fn single_step(&self) -> bool {
        self.tb & tbflags::TF != 0
    }

    /// Ends a single-stepped instruction: rip `target` (a temp holding the
    /// rip, not the linear address), then the #DB trap.
    fn step_trap(&mut self, target: Temp) {
        self.st(target, state::scratch_off(0));
        self.exit(status::SINGLE_STEP);
    }

    /// Masks an instruction pointer to the operand size of the code.
    pub fn mask_ip(&self, rip: u64) -> u64 {
        if self.code64() {
            rip
        } else {
            rip & 0xffff_ffff
        }
    }

    /// Leaves for the rip in temp `t`.
    pub fn goto_indirect(&mut self, t: Temp) {
        let t = if self.code64() { t } else { self.zext(t, 4) };
        if self.single_step() {
            self.step_trap(t);
            return;
        }
        let pc = if self.cs_base != 0 {
            let c = self.k(self.cs_base);
            let s = self.op2(Block::add, t, c);
            self.zext(s, 4)
        } else {
            t
        };
        self.b.exit_indirect(pc);
    }
}

/// The register number and size in bytes of a general-purpose register
/// (size 0 for anything else).
pub fn gpr_num(r: Register) -> (usize, u32) {
    let v = r as u32;
    let al = Register::AL as u32;
    let ax = Register::AX as u32;
    let eax = Register::EAX as u32;
    let rax = Register::RAX as u32;
    if (al..al + 20).contains(&v) {
        let k = v - al;
        // AH..BH (4..8) are registers 0..3 high; SPL.. (8..) are 4..
        let n = if k >= 4 { k - 4 } else { k };
        (n as usize, 1)
    } else if (ax..ax + 16).contains(&v) {
        ((v - ax) as usize, 2)
    } else if (eax..eax + 16).contains(&v) {
        ((v - eax) as usize, 4)
    } else if (rax..rax + 16).contains(&v) {
        ((v - rax) as usize, 8)
    } else {
        (0, 0)
    }
}

/// True for AH, CH, DH, BH.
pub fn is_high8(r: Register) -> bool {
    matches!(r, Register::AH | Register::CH | Register::DH | Register::BH)
}

/// The IR access size for `bytes`.
pub fn mem_size(bytes: u32) -> MemSize {
    match bytes {
        1 => MemSize::B1,
        2 => MemSize::B2,
        4 => MemSize::B4,
        _ => MemSize::B8,
    }
}

/// Reads the bytes of one instruction at `pc`: the rest of its page first,
/// the next page only if the decoder needs more.
fn fetch(code: &mut dyn CodeReader, pc: u64, buf: &mut [u8; 15]) -> Result<usize, FetchFault> {
    let in_page = ((pc | !PAGE_MASK).wrapping_sub(pc) + 1).min(15) as usize;
    code.read(pc, &mut buf[..in_page])
        .map_err(|fault| FetchFault { vaddr: pc, fault })?;
    Ok(in_page)
}

/// Decodes one instruction at `pc` with `bitness`; `Ok(None)` when the
/// bytes do not form a valid instruction.
fn decode(
    code: &mut dyn CodeReader,
    pc: u64,
    rip: u64,
    bitness: u32,
    buf: &mut [u8; 15],
) -> Result<Option<Instruction>, FetchFault> {
    let n = fetch(code, pc, buf)?;
    let mut dec = Decoder::with_ip(bitness, &buf[..n], rip, DecoderOptions::NONE);
    let i = dec.decode();
    if !i.is_invalid() {
        return Ok(Some(i));
    }
    if n < 15 && dec.last_error() == iced_x86::DecoderError::NoMoreBytes {
        // The instruction continues on the next page.
        let next = pc.wrapping_add(n as u64);
        code.read(next, &mut buf[n..])
            .map_err(|fault| FetchFault { vaddr: next, fault })?;
        let mut dec = Decoder::with_ip(bitness, &buf[..], rip, DecoderOptions::NONE);
        let i = dec.decode();
        return Ok((!i.is_invalid()).then_some(i));
    }
    Ok(None)
}

/// Translates the block at linear `pc` (see [`accel_tcg::guest::GuestCpu::translate`]).
pub fn translate_block(
    pc: u64,
    tb: u64,
    code: &mut dyn CodeReader,
    block: &mut Block,
    max_insns: usize,
) -> Result<(), FetchFault> {
    let mut ctx = Ctx::new(block, tb);
    // Each single-stepped instruction is a block of its own, ending in the trap.
    let max_insns = if ctx.single_step() { 1 } else { max_insns };
    let bitness = if tb & tbflags::CODE64 != 0 {
        64
    } else if tb & tbflags::CODE32 != 0 {
        32
    } else {
        16
    };
    let mut cur = pc;
    let mut n = 0usize;
    loop {
        let rip = cur.wrapping_sub(ctx.cs_base);
        let mut bytes = [0u8; 15];
        let decoded = match decode(code, cur, rip, bitness, &mut bytes) {
            Ok(d) => d,
            Err(f) if n == 0 => return Err(f),
            Err(_) => {
                goto_pc(ctx.b, 0, cur);
                return Ok(());
            }
        };
        ctx.b.insn_start(cur);
        ctx.pc = cur;
        n += 1;
        let Some(i) = decoded else {
            ctx.i = Instruction::default();
            ctx.b.exit_status(status::exception(status::UD, None));
            return Ok(());
        };
        ctx.i = i;
        ctx.bytes = bytes;
        ctx.next_pc = ctx.linear(i.next_ip());
        let flow = match translate_insn(&mut ctx) {
            Ok(f) => f,
            Err(Unsupported) => {
                log::debug!("x86: #UD for {:?} at {cur:#x}", i.code());
                ctx.raise(status::UD, None)
            }
        };
        if flow == Flow::End {
            return Ok(());
        }
        cur = ctx.next_pc;
        if n >= max_insns || (cur & PAGE_MASK) != (pc & PAGE_MASK) {
            if ctx.single_step() {
                let rip = cur.wrapping_sub(ctx.cs_base);
                let target = ctx.k(ctx.mask_ip(rip));
                ctx.step_trap(target);
            } else {
                goto_pc(ctx.b, 0, cur);
            }
            return Ok(());
        }
    }
}

/// Translates one instruction.
fn translate_insn(c: &mut Ctx<'_>) -> Res {
    use Mnemonic as M;
    let m = c.i.mnemonic();
    if mmx::claims(&c.i) {
        return mmx::mmx(c, m);
    }
    if sse::claims(&c.i) {
        return sse::sse(c, m);
    }
    if let Some(spec) = x87::spec(c.i.code()) {
        return x87::x87(c, spec);
    }
    match m {
        M::Add | M::Or | M::Adc | M::Sbb | M::And | M::Sub | M::Xor | M::Cmp | M::Test => {
            alu::arith(c, m)
        }
        M::Inc | M::Dec => alu::inc_dec(c, m == M::Inc),
        M::Neg => alu::neg(c),
        M::Not => alu::not(c),
        M::Mov => alu::mov(c),
        M::Movzx | M::Movsx | M::Movsxd => alu::movx(c, m != M::Movzx),
        M::Lea => alu::lea(c),
        M::Xchg => alu::xchg(c),
        M::Cmpxchg => alu::cmpxchg(c),
        M::Cmpxchg8b | M::Cmpxchg16b => alu::cmpxchg_wide(c, m == M::Cmpxchg16b),
        M::Xadd => alu::xadd(c),
        M::Cbw | M::Cwde | M::Cdqe => alu::cbw(c),
        M::Cwd | M::Cdq | M::Cqo => alu::cwd(c),
        M::Nop
        | M::Pause
        | M::Lfence
        | M::Mfence
        | M::Sfence
        | M::Prefetchnta
        | M::Prefetcht0
        | M::Prefetcht1
        | M::Prefetcht2
        | M::Prefetchw
        | M::Endbr64
        | M::Endbr32 => Ok(Flow::Next),
        M::Clc | M::Stc | M::Cmc | M::Cld | M::Std | M::Cli | M::Sti | M::Sahf | M::Lahf => {
            alu::flag_op(c, m)
        }
        _ if c.i.condition_code() != ConditionCode::None && is_setcc_cmov(m) => alu::setcc_cmov(c),
        M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror | M::Rcl | M::Rcr => shift::shift(c, m),
        M::Shld | M::Shrd => shift::shld(c, m == M::Shld),
        M::Mul | M::Imul => muldiv::mul(c, m == M::Imul),
        M::Div | M::Idiv => muldiv::div(c, m == M::Idiv),
        M::Bt | M::Bts | M::Btr | M::Btc => bits::bt(c, m),
        M::Bsf | M::Bsr | M::Tzcnt | M::Lzcnt | M::Popcnt => bits::scan(c, m),
        M::Bswap => bits::bswap(c),
        M::Movsb
        | M::Movsw
        | M::Movsd
        | M::Movsq
        | M::Stosb
        | M::Stosw
        | M::Stosd
        | M::Stosq
        | M::Lodsb
        | M::Lodsw
        | M::Lodsd
        | M::Lodsq
        | M::Cmpsb
        | M::Cmpsw
        | M::Cmpsd
        | M::Cmpsq
        | M::Scasb
        | M::Scasw
        | M::Scasd
        | M::Scasq => string::string(c, m),
        M::Jmp => branch::jmp(c),
        M::Call => branch::call(c),
        M::Ret => branch::ret(c),
        M::Loop | M::Loope | M::Loopne | M::Jrcxz | M::Jecxz | M::Jcxz => branch::loop_(c, m),
        _ if c.i.condition_code() != ConditionCode::None && is_jcc(m) => branch::jcc(c),
        M::Push => stack::push(c),
        M::Pop => stack::pop(c),
        M::Enter => stack::enter(c),
        M::Pusha | M::Pushad => stack::pusha(c),
        M::Popa | M::Popad => stack::popa(c),
        M::Leave => stack::leave(c),
        M::Pushf | M::Pushfd | M::Pushfq => stack::pushf(c),
        M::Popf | M::Popfd | M::Popfq => stack::popf(c),
        M::In | M::Out | M::Insb | M::Insw | M::Insd | M::Outsb | M::Outsw | M::Outsd => {
            io::io(c, m)
        }
        _ => system::system(c, m),
    }
}

fn is_setcc_cmov(m: Mnemonic) -> bool {
    use Mnemonic as M;
    alu::is_setcc(m)
        || matches!(
            m,
            M::Cmovo
                | M::Cmovno
                | M::Cmovb
                | M::Cmovae
                | M::Cmove
                | M::Cmovne
                | M::Cmovbe
                | M::Cmova
                | M::Cmovs
                | M::Cmovns
                | M::Cmovp
                | M::Cmovnp
                | M::Cmovl
                | M::Cmovge
                | M::Cmovle
                | M::Cmovg
        )
}

fn is_jcc(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Jo
            | M::Jno
            | M::Jb
            | M::Jae
            | M::Je
            | M::Jne
            | M::Jbe
            | M::Ja
            | M::Js
            | M::Jns
            | M::Jp
            | M::Jnp
            | M::Jl
            | M::Jge
            | M::Jle
            | M::Jg
    )
}

/// Guest disassembly of `bytes` (code at linear `pc`, decoded in the mode
/// `flags` describes), one line per instruction, for `--trace in_asm`.
pub fn disassemble(pc: u64, flags: u64, bytes: &[u8]) -> Vec<String> {
    let bitness = if flags & tbflags::CODE64 != 0 {
        64
    } else if flags & tbflags::CODE32 != 0 {
        32
    } else {
        16
    };
    let cs_base = if bitness == 64 {
        0
    } else {
        flags >> tbflags::CS_BASE_SHIFT
    };
    let mut dec = Decoder::with_ip(
        bitness,
        bytes,
        pc.wrapping_sub(cs_base),
        DecoderOptions::NONE,
    );
    let mut fmt = iced_x86::FastFormatter::new();
    let mut lines = Vec::new();
    let mut offset = 0usize;
    while dec.can_decode() {
        let i = dec.decode();
        let len = i.len();
        let mut text = String::new();
        if i.is_invalid() {
            text.push_str("(bad)");
        } else {
            fmt.format(&i, &mut text);
        }
        let raw: Vec<String> = bytes[offset..(offset + len).min(bytes.len())]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        lines.push(format!(
            "{:#x}: {:<30} {text}",
            pc.wrapping_add(offset as u64),
            raw.join(" ")
        ));
        offset += len.max(1);
    }
    lines
}

/// Ends the block with a jump to the constant linear address `pc`. Within the
/// block's page that is a chainable `goto_tb`. Another page's mapping can
/// change without this block being retranslated, so a patched link there
/// could go stale: those jumps leave through `exit_indirect`, whose inline
/// jump-cache lookup still finds the next block without the exec loop.
fn goto_pc(b: &mut Block, slot: u8, pc: u64) {
    if pc & PAGE_MASK == b.pc & PAGE_MASK {
        b.goto_tb(slot, pc);
    } else {
        let target = b.const_temp(Ty::I64, pc);
        b.exit_indirect(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flat<'a>(&'a [u8], u64);

    impl CodeReader for Flat<'_> {
        fn read(&mut self, vaddr: u64, buf: &mut [u8]) -> Result<(), accel_tcg::softmmu::MemFault> {
            for (i, b) in buf.iter_mut().enumerate() {
                let at = (vaddr - self.1) as usize + i;
                *b = self.0.get(at).copied().unwrap_or(0x90);
            }
            Ok(())
        }
    }

    /// `cmp; jb` is one host compare of the operands: no flags helper, no
    /// re-materialized operand, and only the last flag write is stored.
    #[test]
    fn compare_and_branch_stay_inline() {
        // add rax, rbx; mov [rdi+8], rax; cmp rax, rcx; jb -0x10
        let code = [
            0x48, 0x01, 0xd8, 0x48, 0x89, 0x47, 0x08, 0x48, 0x39, 0xc8, 0x72, 0xf0,
        ];
        // At 0x1010 the branch target (0x100c) is on the block's own page, so
        // both exits are chainable `goto_tb`s.
        let mut b = Block::new(0x1010);
        translate_block(0x1010, tbflags::CODE64, &mut Flat(&code, 0x1010), &mut b, 4).unwrap();
        accel_tcg::opt::optimize(&mut b);
        let ops: Vec<_> = b.insns.iter().map(|i| i.op.opcode()).collect();
        use accel_tcg::ir::Opcode;
        assert!(!ops.contains(&Opcode::Call), "{b}");
        let after_sub = ops.iter().rposition(|o| *o == Opcode::Sub).unwrap();
        assert!(!ops[after_sub..].contains(&Opcode::Add), "{b}");
        assert!(ops.len() <= 26, "{b}");
    }

    /// A jump to another page must not be a patchable link: that page's
    /// mapping can change without this block knowing.
    #[test]
    fn jumps_to_another_page_go_through_the_jump_cache() {
        // jmp -0x10 at 0x1000: the target 0xff2 is on the previous page.
        let code = [0xeb, 0xee];
        let mut b = Block::new(0x1000);
        translate_block(0x1000, tbflags::CODE64, &mut Flat(&code, 0x1000), &mut b, 4).unwrap();
        let ops: Vec<_> = b.insns.iter().map(|i| i.op.opcode()).collect();
        use accel_tcg::ir::Opcode;
        assert!(ops.contains(&Opcode::ExitIndirect), "{b}");
        assert!(!ops.contains(&Opcode::GotoTb), "{b}");
    }

    #[cfg(target_arch = "x86_64")] // where SSE is available (see crate::simd)
    /// Moves, logic and zeroing idioms are inline loads and stores of the
    /// XMM halves, never helper calls; arithmetic calls one helper.
    #[test]
    fn sse_moves_and_logic_stay_inline() {
        // movaps xmm1, xmm2; xorps xmm0, xmm0; movups xmm3, [rdi];
        // pand xmm3, xmm1; movq rax, xmm3; movss [rsi], xmm0; addps xmm1, xmm2
        let code = [
            0x0f, 0x28, 0xca, 0x0f, 0x57, 0xc0, 0x0f, 0x10, 0x1f, 0x66, 0x0f, 0xdb, 0xd9, 0x66,
            0x48, 0x0f, 0x7e, 0xd8, 0xf3, 0x0f, 0x11, 0x06, 0x0f, 0x58, 0xca,
        ];
        let mut b = Block::new(0x1000);
        let tb = tbflags::CODE64;
        translate_block(0x1000, tb, &mut Flat(&code, 0x1000), &mut b, 7).unwrap();
        accel_tcg::opt::optimize(&mut b);
        use accel_tcg::ir::Opcode;
        let calls = b
            .insns
            .iter()
            .filter(|i| i.op.opcode() == Opcode::Call)
            .count();
        assert_eq!(calls, 1, "{b}");
        // Without CR4.OSFXSR, the first SSE instruction is #UD.
        let mut b = Block::new(0x1000);
        let tb = tbflags::CODE64 | tbflags::NO_SSE;
        translate_block(0x1000, tb, &mut Flat(&code, 0x1000), &mut b, 7).unwrap();
        assert!(b.insns.len() < 8, "{b}");
    }

    /// Locked read-modify-writes (and xchg with memory) become atomic ops,
    /// never a plain load and store.
    #[test]
    fn locked_instructions_are_atomic() {
        use accel_tcg::ir::Opcode;
        let cases: [&[u8]; 7] = [
            &[0xf0, 0x01, 0x07],             // lock add [rdi], eax
            &[0xf0, 0x48, 0x83, 0x1f, 0x05], // lock sbb qword [rdi], 5
            &[0xf0, 0x48, 0xf7, 0x1f],       // lock neg qword [rdi]
            &[0x48, 0x87, 0x07],             // xchg [rdi], rax
            &[0xf0, 0x0f, 0xba, 0x2f, 0x03], // lock bts dword [rdi], 3
            &[0xf0, 0x0f, 0xc7, 0x0f],       // lock cmpxchg8b [rdi]
            &[0xf0, 0x0f, 0xb1, 0x0f],       // lock cmpxchg [rdi], ecx
        ];
        for code in cases {
            let mut b = Block::new(0x1000);
            translate_block(0x1000, tbflags::CODE64, &mut Flat(code, 0x1000), &mut b, 1).unwrap();
            let ops: Vec<_> = b.insns.iter().map(|i| i.op.opcode()).collect();
            let atomics = ops
                .iter()
                .filter(|o| matches!(o, Opcode::AtomicRmw | Opcode::AtomicCmpxchg))
                .count();
            assert_eq!(atomics, 1, "{code:02x?}: {b}");
            assert!(!ops.contains(&Opcode::QemuSt), "{code:02x?}: {b}");
        }
    }

    #[test]
    fn disassembly() {
        let lines = disassemble(0x1000, tbflags::CODE64, &[0x48, 0x01, 0xd8, 0xc3]);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("add rax,rbx"), "{lines:?}");
        assert!(lines[1].starts_with("0x1003"), "{lines:?}");
    }

    #[test]
    fn cpuid_model() {
        let v = system::cpuid(0, 0, 0);
        assert_eq!(&v[1].to_le_bytes(), b"moat");
        let f = system::cpuid(1, 0, 0);
        assert_eq!(
            f[3] & (7 << 24),
            if crate::simd::available() { 7 << 24 } else { 0 },
            "FXSR, SSE, SSE2"
        );
        assert_eq!(f[3] & 1, crate::x87::available() as u32, "FPU");
        assert_eq!(
            f[3] & (1 << 23) != 0,
            crate::simd::available() && crate::x87::available(),
            "MMX"
        );
        assert_eq!(f[2] & 1 != 0, crate::mmx::sse3(), "SSE3");
        assert_eq!(f[2] & (1 << 9) != 0, crate::mmx::ssse3(), "SSSE3");
        assert_eq!(f[2] & (1 << 3), 0, "no MONITOR");
        let ext = system::cpuid(0x8000_0001, 0, 0);
        assert!(ext[3] & (1 << 29) != 0, "long mode");
        let brand: Vec<u8> = (0..3)
            .flat_map(|k| system::cpuid(0x8000_0002 + k, 0, 0))
            .flat_map(u32::to_le_bytes)
            .collect();
        assert!(brand.starts_with(b"moat TCG x86-64 CPU\0"));
    }

    #[test]
    fn gpr_numbers() {
        assert_eq!(gpr_num(Register::AL), (0, 1));
        assert_eq!(gpr_num(Register::BH), (3, 1));
        assert_eq!(gpr_num(Register::SPL), (4, 1));
        assert_eq!(gpr_num(Register::DIL), (7, 1));
        assert_eq!(gpr_num(Register::R8L), (8, 1));
        assert_eq!(gpr_num(Register::R15L), (15, 1));
        assert_eq!(gpr_num(Register::R9W), (9, 2));
        assert_eq!(gpr_num(Register::ESP), (4, 4));
        assert_eq!(gpr_num(Register::R15), (15, 8));
        assert_eq!(gpr_num(Register::CS), (0, 0));
    }
}
