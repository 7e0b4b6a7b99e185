//! The translator's intermediate representation.
//!
//! A [`Block`] is the IR of one translation block: a list of [`Op`]s over
//! typed temps ([`Temp`], 32 or 64 bits wide), forward-only labels, helper
//! calls and exits. Front ends build blocks with the builder methods that the
//! op table in [`ops`] generates (one per op, QEMU style: destination first,
//! e.g. `b.add(d, x, y)`), the optimizer rewrites them, and the interpreter or
//! the backend runs them.
//!
//! Rules a well-formed block follows (checked by [`verify`]):
//!
//! * every temp operand has the type the op expects (the op's type is the
//!   type of its first temp operand, see [`ops`]);
//! * branches only go forward and each label is set once;
//! * the last op leaves the block (`goto_tb`, `exit_indirect`, `exit_status`);
//! * `ld_env`/`st_env` stay inside the CPU state and outside the
//!   [`crate::softmmu::TcgContextHeader`] at its start.
//!
//! The guest pc of an op (what a fault or `exit_status` reports) is that of
//! the nearest `insn_start` before it in program order, also when control
//! reached it through a branch: a front end that branches past an
//! `insn_start` puts another one after the label.
//!
//! Temps live for the whole block (also across labels) and die at its exit:
//! guest registers that must survive are stored with `st_env`. A temp read on
//! a path where it was never written holds an unspecified value.

pub mod ops;
mod print;
mod verify;

use std::fmt;

pub use ops::{Op, OpFlags, Opcode};

pub use verify::{VerifyError, verify};

/// Width of a temp and of the ops on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// 32 bits; kept zero-extended when held in 64-bit storage.
    I32,
    /// 64 bits.
    I64,
}

impl Ty {
    /// Width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            Ty::I32 => 32,
            Ty::I64 => 64,
        }
    }

    /// Truncates `v` to this width (zero-extended in the u64).
    #[inline]
    pub const fn mask(self, v: u64) -> u64 {
        match self {
            Ty::I32 => v as u32 as u64,
            Ty::I64 => v,
        }
    }
}

/// A temporary value in a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Temp(pub u32);

impl Temp {
    /// Index into per-temp tables.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for Temp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// A branch target inside a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(pub u32);

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}", self.0)
    }
}

/// Comparison used by `setcond`, `movcond` and `brcond`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    /// equal
    Eq,
    /// not equal
    Ne,
    /// signed less than
    Lt,
    /// signed less or equal
    Le,
    /// signed greater than
    Gt,
    /// signed greater or equal
    Ge,
    /// unsigned less than
    Ltu,
    /// unsigned less or equal
    Leu,
    /// unsigned greater than
    Gtu,
    /// unsigned greater or equal
    Geu,
}

impl Cond {
    /// All conditions.
    pub const ALL: [Cond; 10] = [
        Cond::Eq,
        Cond::Ne,
        Cond::Lt,
        Cond::Le,
        Cond::Gt,
        Cond::Ge,
        Cond::Ltu,
        Cond::Leu,
        Cond::Gtu,
        Cond::Geu,
    ];

    /// Evaluates the condition on two values of type `ty` (zero-extended).
    #[inline]
    pub fn eval(self, ty: Ty, a: u64, b: u64) -> bool {
        let (sa, sb) = match ty {
            Ty::I32 => (a as u32 as i32 as i64, b as u32 as i32 as i64),
            Ty::I64 => (a as i64, b as i64),
        };
        let (a, b) = (ty.mask(a), ty.mask(b));
        match self {
            Cond::Eq => a == b,
            Cond::Ne => a != b,
            Cond::Lt => sa < sb,
            Cond::Le => sa <= sb,
            Cond::Gt => sa > sb,
            Cond::Ge => sa >= sb,
            Cond::Ltu => a < b,
            Cond::Leu => a <= b,
            Cond::Gtu => a > b,
            Cond::Geu => a >= b,
        }
    }

    /// The condition that holds exactly when this one does not.
    pub const fn invert(self) -> Cond {
        match self {
            Cond::Eq => Cond::Ne,
            Cond::Ne => Cond::Eq,
            Cond::Lt => Cond::Ge,
            Cond::Le => Cond::Gt,
            Cond::Gt => Cond::Le,
            Cond::Ge => Cond::Lt,
            Cond::Ltu => Cond::Geu,
            Cond::Leu => Cond::Gtu,
            Cond::Gtu => Cond::Leu,
            Cond::Geu => Cond::Ltu,
        }
    }

    /// The condition with its operands swapped (`a < b` == `b > a`).
    pub const fn swap(self) -> Cond {
        match self {
            Cond::Eq => Cond::Eq,
            Cond::Ne => Cond::Ne,
            Cond::Lt => Cond::Gt,
            Cond::Le => Cond::Ge,
            Cond::Gt => Cond::Lt,
            Cond::Ge => Cond::Le,
            Cond::Ltu => Cond::Gtu,
            Cond::Leu => Cond::Geu,
            Cond::Gtu => Cond::Ltu,
            Cond::Geu => Cond::Leu,
        }
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Cond::Eq => "eq",
            Cond::Ne => "ne",
            Cond::Lt => "lt",
            Cond::Le => "le",
            Cond::Gt => "gt",
            Cond::Ge => "ge",
            Cond::Ltu => "ltu",
            Cond::Leu => "leu",
            Cond::Gtu => "gtu",
            Cond::Geu => "geu",
        };
        f.write_str(s)
    }
}

/// Size of a memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemSize {
    /// 1 byte
    B1,
    /// 2 bytes
    B2,
    /// 4 bytes
    B4,
    /// 8 bytes
    B8,
}

impl MemSize {
    /// Size in bytes.
    pub const fn bytes(self) -> u32 {
        match self {
            MemSize::B1 => 1,
            MemSize::B2 => 2,
            MemSize::B4 => 4,
            MemSize::B8 => 8,
        }
    }

    /// log2 of the size in bytes.
    pub const fn log2(self) -> u32 {
        match self {
            MemSize::B1 => 0,
            MemSize::B2 => 1,
            MemSize::B4 => 2,
            MemSize::B8 => 3,
        }
    }

    /// Mask of the value bits an access of this size carries.
    pub const fn value_mask(self) -> u64 {
        match self {
            MemSize::B8 => u64::MAX,
            s => (1u64 << (s.bytes() * 8)) - 1,
        }
    }
}

/// Size, signedness, byte order and translation regime of a memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemOp {
    /// Access size.
    pub size: MemSize,
    /// Loads sign-extend the value to the temp's width (ignored by stores).
    pub signed: bool,
    /// Guest memory is big-endian for this access (ignored for the CPU
    /// state, which is always in host byte order).
    pub big_endian: bool,
    /// The address must be a multiple of the size; otherwise the access
    /// faults with [`crate::softmmu::MemoryHandler::unaligned`]'s code
    /// (guest memory only).
    pub aligned: bool,
    /// The soft-MMU index of a guest memory access: which of the
    /// [`crate::softmmu::NB_MMU_MODES`] TLBs (translation regimes, e.g. user
    /// and supervisor) translates it. What each index means is the front
    /// end's choice; its [`crate::guest::PageWalker`] learns the index of
    /// every access it translates. Ignored for the CPU state. Two guest
    /// accesses with different indexes may reach different memory at the
    /// same address, so a pass that forwards a store to a load must require
    /// equal indexes.
    pub mmu_idx: u8,
}

impl MemOp {
    /// Little-endian, zero-extending access of `size`.
    pub const fn new(size: MemSize) -> MemOp {
        MemOp {
            size,
            signed: false,
            big_endian: false,
            aligned: false,
            mmu_idx: 0,
        }
    }
    /// 1-byte zero-extending access.
    pub const UB: MemOp = MemOp::new(MemSize::B1);
    /// 2-byte zero-extending access.
    pub const UW: MemOp = MemOp::new(MemSize::B2);
    /// 4-byte zero-extending access.
    pub const UL: MemOp = MemOp::new(MemSize::B4);
    /// 8-byte access.
    pub const Q: MemOp = MemOp::new(MemSize::B8);

    /// The same access, sign-extending.
    pub const fn signed(self) -> MemOp {
        MemOp {
            signed: true,
            ..self
        }
    }

    /// The same access, requiring natural alignment.
    pub const fn aligned(self) -> MemOp {
        MemOp {
            aligned: true,
            ..self
        }
    }

    /// The same access, big-endian.
    pub const fn be(self) -> MemOp {
        MemOp {
            big_endian: true,
            ..self
        }
    }

    /// The same access, through soft-MMU index `mmu_idx` (below
    /// [`crate::softmmu::NB_MMU_MODES`]; [`verify`] rejects larger ones).
    pub const fn mmu(self, mmu_idx: u8) -> MemOp {
        MemOp { mmu_idx, ..self }
    }

    /// Extends a raw value of `self.size` (zero-extended) to type `ty`.
    #[inline]
    pub fn extend(self, ty: Ty, raw: u64) -> u64 {
        let raw = raw & self.size.value_mask();
        let v = if self.signed {
            let shift = 64 - self.size.bytes() * 8;
            (((raw << shift) as i64) >> shift) as u64
        } else {
            raw
        };
        ty.mask(v)
    }

    /// Converts between guest byte order and the little-endian value order
    /// used by [`crate::softmmu::MemoryHandler`]: a no-op for little-endian
    /// accesses, a byte swap of `size` bytes for big-endian ones.
    #[inline]
    pub fn to_le(self, v: u64) -> u64 {
        let v = v & self.size.value_mask();
        if !self.big_endian {
            return v;
        }
        match self.size {
            MemSize::B1 => v,
            MemSize::B2 => (v as u16).swap_bytes() as u64,
            MemSize::B4 => (v as u32).swap_bytes() as u64,
            MemSize::B8 => v.swap_bytes(),
        }
    }
}

impl fmt::Display for MemOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sz = match self.size {
            MemSize::B1 => "b",
            MemSize::B2 => "w",
            MemSize::B4 => "l",
            MemSize::B8 => "q",
        };
        let sign = if self.size == MemSize::B8 {
            ""
        } else if self.signed {
            "s"
        } else {
            "u"
        };
        let end = if self.big_endian { "_be" } else { "" };
        let al = if self.aligned { "_al" } else { "" };
        write!(f, "{sign}{sz}{end}{al}")?;
        // Index 0 prints as before, so existing traces keep their shape.
        if self.mmu_idx != 0 {
            write!(f, "_mmu{}", self.mmu_idx)?;
        }
        Ok(())
    }
}

/// The operation of an `atomic_rmw`: what it stores, given the old value
/// in memory and the operand `v`. Every kind returns the old value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    /// `old + v` (wrapping at the access size)
    Add,
    /// `v`
    Xchg,
    /// `old & v`
    And,
    /// `old | v`
    Or,
    /// `old ^ v`
    Xor,
}

impl AtomicOp {
    /// Every kind.
    pub const ALL: [AtomicOp; 5] = [
        AtomicOp::Add,
        AtomicOp::Xchg,
        AtomicOp::And,
        AtomicOp::Or,
        AtomicOp::Xor,
    ];

    /// The value stored, given the old value and the operand (not truncated).
    #[inline]
    pub const fn apply(self, old: u64, v: u64) -> u64 {
        match self {
            AtomicOp::Add => old.wrapping_add(v),
            AtomicOp::Xchg => v,
            AtomicOp::And => old & v,
            AtomicOp::Or => old | v,
            AtomicOp::Xor => old ^ v,
        }
    }

    pub(crate) const fn code(self) -> u64 {
        match self {
            AtomicOp::Add => 0,
            AtomicOp::Xchg => 1,
            AtomicOp::And => 2,
            AtomicOp::Or => 3,
            AtomicOp::Xor => 4,
        }
    }

    pub(crate) const fn from_code(c: u64) -> AtomicOp {
        match c {
            0 => AtomicOp::Add,
            1 => AtomicOp::Xchg,
            2 => AtomicOp::And,
            3 => AtomicOp::Or,
            _ => AtomicOp::Xor,
        }
    }
}

impl fmt::Display for AtomicOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AtomicOp::Add => "add",
            AtomicOp::Xchg => "xchg",
            AtomicOp::And => "and",
            AtomicOp::Or => "or",
            AtomicOp::Xor => "xor",
        })
    }
}

/// `mb` kind: loads before the barrier happen before loads after it.
pub const MB_LD_LD: u64 = 1;
/// `mb` kind: loads before happen before stores after.
pub const MB_LD_ST: u64 = 2;
/// `mb` kind: stores before happen before loads after. This is the only
/// kind an x86 host needs code for (`mfence`): TSO already keeps loads
/// ordered with loads, loads before later stores, and stores with stores,
/// and locked instructions (the JIT's atomics) are full barriers anyway. The
/// other kinds only stop the optimizer and backend from moving guest memory
/// accesses across the barrier, which neither does today.
pub const MB_ST_LD: u64 = 4;
/// `mb` kind: stores before happen before stores after.
pub const MB_ST_ST: u64 = 8;
/// `mb` kind: everything (a full barrier, e.g. aarch64 `dmb ish`).
pub const MB_ALL: u64 = 15;

/// Arguments of a helper call: up to [`MAX_HELPER_ARGS`] temps, passed after
/// the implicit CPU-state pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallArgs {
    len: u8,
    args: [Temp; MAX_HELPER_ARGS],
}

/// Most integer arguments a helper takes besides the CPU-state pointer.
pub const MAX_HELPER_ARGS: usize = 5;

impl CallArgs {
    /// Arguments from a slice; `None` if there are more than
    /// [`MAX_HELPER_ARGS`].
    pub fn new(args: &[Temp]) -> Option<CallArgs> {
        if args.len() > MAX_HELPER_ARGS {
            return None;
        }
        let mut a = [Temp(0); MAX_HELPER_ARGS];
        a[..args.len()].copy_from_slice(args);
        Some(CallArgs {
            len: args.len() as u8,
            args: a,
        })
    }
    /// The arguments.
    pub fn as_slice(&self) -> &[Temp] {
        &self.args[..self.len as usize]
    }
    /// The arguments, mutable (for copy propagation).
    pub fn as_mut_slice(&mut self) -> &mut [Temp] {
        &mut self.args[..self.len as usize]
    }
}

impl fmt::Display for CallArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, t) in self.as_slice().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{t}")?;
        }
        f.write_str(")")
    }
}

/// Index of a helper registered in a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HelperId(pub u16);

/// What a helper may do, which decides how passes and the backend treat a
/// call to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HelperFlags {
    /// No side effects and reads nothing but its arguments: an unused call
    /// is removed, and the call is no barrier for CPU-state optimizations.
    pub pure: bool,
    /// Neither reads nor writes the guest fields of the CPU state through its
    /// `env` argument (it may still have other side effects). Calls without
    /// this flag are barriers for store forwarding and dead-store
    /// elimination: pending `st_env`s happen before the call.
    pub no_env: bool,
    /// May ask to leave the block by setting
    /// [`crate::softmmu::TcgContextHeader::helper_exit`] (a guest exception
    /// raised by a helper). Generated code checks the word after the call and
    /// leaves with [`crate::ExitReason::HelperExit`] at the current guest pc.
    pub may_exit: bool,
}

/// A helper function, called with the SysV C ABI as
/// `extern "C" fn(env: *mut TcgContextHeader, a0: u64, ...) -> u64`.
///
/// The first argument is always the CPU-state pointer (the start of the CPU
/// state, whose first field is the [`crate::softmmu::TcgContextHeader`]).
/// The IR arguments follow, each passed as a `u64` (32-bit temps are
/// zero-extended). The return value is truncated to the type of the
/// destination temp, if any.
#[derive(Clone, Copy, Debug)]
pub enum HelperFn {
    /// No arguments besides env.
    A0(extern "C" fn(*mut u8) -> u64),
    /// One argument.
    A1(extern "C" fn(*mut u8, u64) -> u64),
    /// Two arguments.
    A2(extern "C" fn(*mut u8, u64, u64) -> u64),
    /// Three arguments.
    A3(extern "C" fn(*mut u8, u64, u64, u64) -> u64),
    /// Four arguments.
    A4(extern "C" fn(*mut u8, u64, u64, u64, u64) -> u64),
    /// Five arguments.
    A5(extern "C" fn(*mut u8, u64, u64, u64, u64, u64) -> u64),
}

impl HelperFn {
    /// Number of IR arguments.
    pub const fn nargs(&self) -> usize {
        match self {
            HelperFn::A0(_) => 0,
            HelperFn::A1(_) => 1,
            HelperFn::A2(_) => 2,
            HelperFn::A3(_) => 3,
            HelperFn::A4(_) => 4,
            HelperFn::A5(_) => 5,
        }
    }

    /// The function's address, for generated code.
    pub fn addr(&self) -> usize {
        match *self {
            HelperFn::A0(f) => f as usize,
            HelperFn::A1(f) => f as usize,
            HelperFn::A2(f) => f as usize,
            HelperFn::A3(f) => f as usize,
            HelperFn::A4(f) => f as usize,
            HelperFn::A5(f) => f as usize,
        }
    }

    /// Calls the helper (the interpreter's path). Missing arguments are 0.
    pub fn call(&self, env: *mut u8, a: &[u64]) -> u64 {
        let g = |i: usize| a.get(i).copied().unwrap_or(0);
        match *self {
            HelperFn::A0(f) => f(env),
            HelperFn::A1(f) => f(env, g(0)),
            HelperFn::A2(f) => f(env, g(0), g(1)),
            HelperFn::A3(f) => f(env, g(0), g(1), g(2)),
            HelperFn::A4(f) => f(env, g(0), g(1), g(2), g(3)),
            HelperFn::A5(f) => f(env, g(0), g(1), g(2), g(3), g(4)),
        }
    }
}

/// A helper registered in a block.
#[derive(Clone, Copy, Debug)]
pub struct Helper {
    /// Name for the printer.
    pub name: &'static str,
    /// The function.
    pub func: HelperFn,
    /// What it may do.
    pub flags: HelperFlags,
}

/// One op with its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// The op's width (type of its first temp operand).
    pub ty: Ty,
    /// The op.
    pub op: Op,
}

/// The IR of one translation block.
#[derive(Clone, Debug, Default)]
pub struct Block {
    /// Guest pc of the block's first instruction.
    pub pc: u64,
    /// The ops, in program order.
    pub insns: Vec<Insn>,
    temps: Vec<Ty>,
    labels: u32,
    helpers: Vec<Helper>,
}

impl Block {
    /// An empty block for guest code at `pc`.
    pub fn new(pc: u64) -> Block {
        Block {
            pc,
            insns: Vec::with_capacity(256),
            temps: Vec::with_capacity(128),
            ..Block::default()
        }
    }

    /// Empties the block for reuse, keeping its allocations.
    pub fn clear(&mut self, pc: u64) {
        self.pc = pc;
        self.insns.clear();
        self.temps.clear();
        self.labels = 0;
        self.helpers.clear();
    }

    /// A new temp of type `ty`.
    pub fn temp(&mut self, ty: Ty) -> Temp {
        let t = Temp(self.temps.len() as u32);
        self.temps.push(ty);
        t
    }

    /// A new 64-bit temp.
    pub fn temp64(&mut self) -> Temp {
        self.temp(Ty::I64)
    }

    /// A new 32-bit temp.
    pub fn temp32(&mut self) -> Temp {
        self.temp(Ty::I32)
    }

    /// A new temp holding constant `c`.
    pub fn const_temp(&mut self, ty: Ty, c: u64) -> Temp {
        let t = self.temp(ty);
        self.movi(t, c);
        t
    }

    /// A new label, to be placed with [`Block::set_label`].
    pub fn label(&mut self) -> Label {
        let l = Label(self.labels);
        self.labels += 1;
        l
    }

    /// Registers a helper for [`Block::call`].
    pub fn helper(&mut self, name: &'static str, func: HelperFn, flags: HelperFlags) -> HelperId {
        let id = HelperId(self.helpers.len() as u16);
        self.helpers.push(Helper { name, func, flags });
        id
    }

    /// Emits a call of `helper` with `args`; the result, if any, goes to `ret`.
    /// The argument count is checked by [`verify`]; more than
    /// [`MAX_HELPER_ARGS`] is a programming error of the front end and panics.
    pub fn call_helper(&mut self, ret: Option<Temp>, helper: HelperId, args: &[Temp]) {
        let Some(args) = CallArgs::new(args) else {
            panic!(
                "helper call with {} arguments; at most {MAX_HELPER_ARGS}",
                args.len()
            )
        };
        self.call(ret, helper, args);
    }

    /// Type of temp `t` (I64 for a temp that does not exist; [`verify`]
    /// reports those).
    #[inline]
    pub fn ty(&self, t: Temp) -> Ty {
        self.temps.get(t.index()).copied().unwrap_or(Ty::I64)
    }

    /// Number of temps.
    pub fn num_temps(&self) -> usize {
        self.temps.len()
    }

    /// Number of labels.
    pub fn num_labels(&self) -> usize {
        self.labels as usize
    }

    /// The registered helpers.
    pub fn helpers(&self) -> &[Helper] {
        &self.helpers
    }

    /// A registered helper.
    pub fn get_helper(&self, id: HelperId) -> Option<&Helper> {
        self.helpers.get(id.0 as usize)
    }

    pub(crate) fn helper_name(&self, id: HelperId) -> &'static str {
        self.get_helper(id).map_or("<bad helper>", |h| h.name)
    }

    /// Appends an op; its type comes from its first temp operand.
    pub fn push(&mut self, op: Op) {
        let ty = op.first_temp().map_or(Ty::I64, |t| self.ty(t));
        self.insns.push(Insn { ty, op });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_types_follow_first_temp() {
        let mut b = Block::new(0x1000);
        let a = b.temp32();
        let c = b.temp32();
        let d = b.temp64();
        b.add(a, a, c);
        b.extu_i32_i64(d, a);
        b.exit_status(0);
        assert_eq!(b.insns[0].ty, Ty::I32);
        assert_eq!(b.insns[1].ty, Ty::I64);
        assert!(verify(&b, 4096).is_ok());
    }

    #[test]
    fn memop_extend_and_swap() {
        assert_eq!(
            MemOp::UB.signed().extend(Ty::I64, 0x80),
            0xffff_ffff_ffff_ff80
        );
        assert_eq!(MemOp::UB.signed().extend(Ty::I32, 0x80), 0xffff_ff80);
        assert_eq!(MemOp::UW.extend(Ty::I64, 0x1_8000), 0x8000);
        assert_eq!(MemOp::UL.be().to_le(0x1122_3344), 0x4433_2211);
        assert_eq!(
            MemOp::Q.be().to_le(0x0102_0304_0506_0708),
            0x0807_0605_0403_0201
        );
    }

    #[test]
    fn cond_eval_signed_unsigned() {
        assert!(Cond::Lt.eval(Ty::I32, 0xffff_ffff, 0));
        assert!(!Cond::Ltu.eval(Ty::I32, 0xffff_ffff, 0));
        for c in Cond::ALL {
            for (a, b) in [(0u64, 1u64), (5, 5), (u64::MAX, 3)] {
                assert_eq!(c.eval(Ty::I64, a, b), !c.invert().eval(Ty::I64, a, b));
                assert_eq!(c.eval(Ty::I64, a, b), c.swap().eval(Ty::I64, b, a));
            }
        }
    }
}
