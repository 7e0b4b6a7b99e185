//! The op table: the one definition of every IR operation.
//!
//! Each line of `define_ops!` (at the end of this file) names an op, its builder method, its operands
//! and its flags. From it the macro generates the [`Op`] enum, [`Opcode`],
//! the per-op name and flags, operand visitors (uses, defs, temps), the
//! verifier's operand type checks, the printer and the builder methods on [`Block`].
//! Adding an op is one line here plus its semantics in the interpreter,
//! optimizer folding (optional) and backend; everything else follows.
//!
//! Operand kinds:
//!
//! | kind    | Rust type          | meaning                                              |
//! |---------|--------------------|------------------------------------------------------|
//! | `Def`   | [`Temp`]           | result, of the op's type                             |
//! | `ODef`  | `Option<Temp>`     | optional result (helper calls), any type             |
//! | `Use`   | [`Temp`]           | input of the op's type                               |
//! | `U32`   | [`Temp`]           | input that must be a 32-bit temp                     |
//! | `U64`   | [`Temp`]           | input that must be a 64-bit temp (guest addresses)   |
//! | `Args`  | [`CallArgs`]       | helper call arguments, any types                     |
//! | `Imm`   | `u64`              | constant                                             |
//! | `Cnd`   | [`Cond`]           | comparison                                           |
//! | `Mop`   | [`MemOp`]          | access size, sign extension, endianness              |
//! | `Off`   | `u32`              | byte offset into the CPU state                       |
//! | `Lbl`   | [`Label`]          | a label inside the block                             |
//! | `Slot`  | `u8`               | a chaining slot (0 or 1)                             |
//! | `Hlp`   | [`HelperId`]       | a registered helper function                         |
//! | `Aop`   | [`AtomicOp`]       | operation of an atomic read-modify-write             |
//!
//! The op's type ([`Ty`]) is the type of its first temp operand, so a builder
//! call never repeats it: `b.add(d, x, y)` is a 64-bit add when `d` is.

use super::{AtomicOp, Block, CallArgs, Cond, HelperId, Label, MemOp, Temp, Ty};

/// Properties of an op that passes and the backend rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpFlags(pub u16);

impl OpFlags {
    /// No side effects: removable when its result is unused.
    pub const PURE: OpFlags = OpFlags(1);
    /// Reads the CPU state (`ld_env`).
    pub const ENV_READ: OpFlags = OpFlags(1 << 1);
    /// Writes the CPU state (`st_env`).
    pub const ENV_WRITE: OpFlags = OpFlags(1 << 2);
    /// Accesses guest memory; may fault and leave the block.
    pub const MEM: OpFlags = OpFlags(1 << 3);
    /// Branches to a label.
    pub const BRANCH: OpFlags = OpFlags(1 << 4);
    /// Defines a label (a join point).
    pub const LABEL: OpFlags = OpFlags(1 << 5);
    /// Leaves the block; nothing after it runs on this path.
    pub const EXIT: OpFlags = OpFlags(1 << 6);
    /// Only valid on 64-bit temps.
    pub const ONLY64: OpFlags = OpFlags(1 << 7);
    /// Only valid with a 32-bit result.
    pub const ONLY32: OpFlags = OpFlags(1 << 8);
    /// Calls a helper (see [`super::HelperFlags`] for what it may touch).
    pub const CALL: OpFlags = OpFlags(1 << 9);
    /// Marks the start of a guest instruction.
    pub const INSN: OpFlags = OpFlags(1 << 10);
    /// Control flow continues after this op only conditionally or not at all:
    /// basic-block boundary for passes that work per basic block.
    pub const BB_END: OpFlags = OpFlags(1 << 11);
    /// No flags.
    pub const NONE: OpFlags = OpFlags(0);

    /// True if every bit of `other` is set.
    pub const fn has(self, other: OpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for OpFlags {
    type Output = OpFlags;
    fn bitor(self, rhs: OpFlags) -> OpFlags {
        OpFlags(self.0 | rhs.0)
    }
}

/// Rust type of an operand kind.
macro_rules! kind_ty {
    (Def) => { Temp };
    (ODef) => { Option<Temp> };
    (Use) => { Temp };
    (U32) => { Temp };
    (U64) => { Temp };
    (Args) => { CallArgs };
    (Imm) => { u64 };
    (Cnd) => { Cond };
    (Mop) => { MemOp };
    (Off) => { u32 };
    (Lbl) => { Label };
    (Slot) => { u8 };
    (Hlp) => { HelperId };
    (Aop) => { AtomicOp };
}

/// Calls `$f` on every temp an operand reads.
macro_rules! visit_uses {
    (Use, $x:expr, $f:expr) => {
        $f($x)
    };
    (U32, $x:expr, $f:expr) => {
        $f($x)
    };
    (U64, $x:expr, $f:expr) => {
        $f($x)
    };
    (Args, $x:expr, $f:expr) => {
        for t in $x.as_slice() {
            $f(*t)
        }
    };
    ($k:ident, $x:expr, $f:expr) => {{
        let _ = &$x;
    }};
}

/// Calls `$f` on a mutable reference to every temp an operand reads.
macro_rules! visit_uses_mut {
    (Use, $x:expr, $f:expr) => {
        $f($x)
    };
    (U32, $x:expr, $f:expr) => {
        $f($x)
    };
    (U64, $x:expr, $f:expr) => {
        $f($x)
    };
    (Args, $x:expr, $f:expr) => {
        for t in $x.as_mut_slice() {
            $f(t)
        }
    };
    ($k:ident, $x:expr, $f:expr) => {{
        let _ = &$x;
    }};
}

/// Calls `$f` on every temp an operand writes.
macro_rules! visit_defs {
    (Def, $x:expr, $f:expr) => {
        $f($x)
    };
    (ODef, $x:expr, $f:expr) => {
        if let Some(t) = $x {
            $f(t)
        }
    };
    ($k:ident, $x:expr, $f:expr) => {{
        let _ = &$x;
    }};
}

/// Calls `$f` on every temp operand, reads and writes, in operand order
/// (call arguments excluded: they do not decide the op's type).
macro_rules! visit_typed {
    (Def, $x:expr, $f:expr) => {
        $f($x)
    };
    (ODef, $x:expr, $f:expr) => {
        if let Some(t) = $x {
            $f(t)
        }
    };
    (Use, $x:expr, $f:expr) => {
        $f($x)
    };
    (U32, $x:expr, $f:expr) => {
        $f($x)
    };
    (U64, $x:expr, $f:expr) => {
        $f($x)
    };
    ($k:ident, $x:expr, $f:expr) => {{
        let _ = &$x;
    }};
}

/// Type check of one operand, for the verifier: returns the type the operand
/// must have (None: any).
macro_rules! kind_check {
    (Def, $ty:expr) => {
        Some($ty)
    };
    (Use, $ty:expr) => {
        Some($ty)
    };
    (U32, $ty:expr) => {
        Some(Ty::I32)
    };
    (U64, $ty:expr) => {
        Some(Ty::I64)
    };
    ($k:ident, $ty:expr) => {
        None::<Ty>
    };
}

/// Whether an operand kind is a single temp whose type the verifier checks.
macro_rules! kind_temp {
    (Def, $x:expr) => {
        Some(*$x)
    };
    (Use, $x:expr) => {
        Some(*$x)
    };
    (U32, $x:expr) => {
        Some(*$x)
    };
    (U64, $x:expr) => {
        Some(*$x)
    };
    ($k:ident, $x:expr) => {{
        let _ = &$x;
        None::<Temp>
    }};
}

/// Printer for one operand.
macro_rules! fmt_operand {
    (Hlp, $x:expr, $blk:expr) => {
        format!("{}", $blk.helper_name(*$x))
    };
    (Imm, $x:expr, $blk:expr) => {
        format!("${:#x}", $x)
    };
    (Off, $x:expr, $blk:expr) => {
        format!("env+{:#x}", $x)
    };
    (Slot, $x:expr, $blk:expr) => {
        format!("slot{}", $x)
    };
    (ODef, $x:expr, $blk:expr) => {
        match $x {
            Some(t) => format!("{t}"),
            None => "-".to_string(),
        }
    };
    ($k:ident, $x:expr, $blk:expr) => {
        format!("{}", $x)
    };
}

macro_rules! define_ops {
    ($(
        $(#[$doc:meta])*
        $method:ident => $name:ident { $($f:ident : $k:ident),* } [$($flag:ident)|*];
    )*) => {
        /// One IR operation with its operands.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Op {
            $( $(#[$doc])* $name { $( #[allow(missing_docs)] $f: kind_ty!($k) ),* }, )*
        }

        /// The operation of an [`Op`], without operands.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Opcode {
            $( $(#[$doc])* $name, )*
        }

        impl Opcode {
            /// Every opcode, in table order.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$name),*];

            /// The op's name as printed.
            pub const fn name(self) -> &'static str {
                match self { $( Opcode::$name => stringify!($method), )* }
            }

            /// The op's flags.
            pub const fn flags(self) -> OpFlags {
                match self { $( Opcode::$name => OpFlags(0 $(| OpFlags::$flag.0)*), )* }
            }
        }

        impl Op {
            /// The operation without operands.
            pub const fn opcode(&self) -> Opcode {
                match self { $( Op::$name { .. } => Opcode::$name, )* }
            }

            /// Calls `f` for every temp this op reads.
            #[allow(unused_variables)]
            pub fn for_each_use(&self, mut f: impl FnMut(Temp)) {
                match self {
                    $( Op::$name { $($f),* } => { $( visit_uses!($k, *$f, |t: Temp| f(t)); )* } )*
                }
            }

            /// Calls `f` on every temp this op reads, allowing it to be replaced.
            #[allow(unused_variables)]
            pub fn map_uses(&mut self, mut f: impl FnMut(&mut Temp)) {
                match self {
                    $( Op::$name { $($f),* } => { $( visit_uses_mut!($k, $f, |t: &mut Temp| f(t)); )* } )*
                }
            }

            /// Calls `f` for every temp this op writes.
            #[allow(unused_variables)]
            pub fn for_each_def(&self, mut f: impl FnMut(Temp)) {
                match self {
                    $( Op::$name { $($f),* } => { $( visit_defs!($k, *$f, |t: Temp| f(t)); )* } )*
                }
            }

            /// The first temp operand: its type is the op's type.
            #[allow(unused_variables, unused_mut)]
            pub fn first_temp(&self) -> Option<Temp> {
                let mut first = None;
                match self {
                    $( Op::$name { $($f),* } => {
                        $( visit_typed!($k, *$f, |t: Temp| { if first.is_none() { first = Some(t) } }); )*
                    } )*
                }
                first
            }

            /// Each single-temp operand with the type it must have given
            /// the op's type `ty` (`None`: any type).
            #[allow(unused_variables, unused_mut)]
            pub(crate) fn typed_operands(&self, ty: Ty, mut f: impl FnMut(Temp, Option<Ty>)) {
                match self {
                    $( Op::$name { $($f),* } => {
                        $( if let Some(t) = kind_temp!($k, $f) { f(t, kind_check!($k, ty)) } )*
                    } )*
                }
            }

            /// Operands formatted for the printer.
            #[allow(unused_variables, unused_mut)]
            pub(crate) fn fmt_operands(&self, blk: &Block) -> Vec<String> {
                let mut v = Vec::new();
                match self {
                    $( Op::$name { $($f),* } => { $( v.push(fmt_operand!($k, $f, blk)); )* } )*
                }
                v
            }
        }

        impl Block {
            $(
                $(#[$doc])*
                pub fn $method(&mut self, $($f: kind_ty!($k)),*) {
                    self.push(Op::$name { $($f),* });
                }
            )*
        }
    };
}

define_ops! {
    /// `d = a`
    mov => Mov { d: Def, a: Use } [PURE];
    /// `d = c` (truncated to 32 bits for a 32-bit `d`)
    movi => Movi { d: Def, c: Imm } [PURE];
    /// `d = a + b` (wrapping)
    add => Add { d: Def, a: Use, b: Use } [PURE];
    /// `d = a - b` (wrapping)
    sub => Sub { d: Def, a: Use, b: Use } [PURE];
    /// `d = -a` (wrapping)
    neg => Neg { d: Def, a: Use } [PURE];
    /// `d = a & b`
    and => And { d: Def, a: Use, b: Use } [PURE];
    /// `d = a | b`
    or => Or { d: Def, a: Use, b: Use } [PURE];
    /// `d = a ^ b`
    xor => Xor { d: Def, a: Use, b: Use } [PURE];
    /// `d = !a`
    not => Not { d: Def, a: Use } [PURE];
    /// `d = a << (b mod width)`
    shl => Shl { d: Def, a: Use, b: Use } [PURE];
    /// `d = a >> (b mod width)`, logical
    shr => Shr { d: Def, a: Use, b: Use } [PURE];
    /// `d = a >> (b mod width)`, arithmetic
    sar => Sar { d: Def, a: Use, b: Use } [PURE];
    /// `d = a rotated left by (b mod width)`
    rotl => Rotl { d: Def, a: Use, b: Use } [PURE];
    /// `d = a rotated right by (b mod width)`
    rotr => Rotr { d: Def, a: Use, b: Use } [PURE];
    /// `d = a * b`, low half (wrapping)
    mul => Mul { d: Def, a: Use, b: Use } [PURE];
    /// `d = (a * b) >> width`, signed: high half of the double-width product
    mulsh => Mulsh { d: Def, a: Use, b: Use } [PURE];
    /// `d = (a * b) >> width`, unsigned: high half of the double-width product
    muluh => Muluh { d: Def, a: Use, b: Use } [PURE];
    /// `d = a / b` signed, truncating; `b == 0` gives 0, `MIN / -1` gives `MIN`
    divs => Divs { d: Def, a: Use, b: Use } [PURE];
    /// `d = a / b` unsigned; `b == 0` gives 0
    divu => Divu { d: Def, a: Use, b: Use } [PURE];
    /// `d = a % b` signed (sign of `a`); `b == 0` gives `a`, `MIN % -1` gives 0
    rems => Rems { d: Def, a: Use, b: Use } [PURE];
    /// `d = a % b` unsigned; `b == 0` gives `a`
    remu => Remu { d: Def, a: Use, b: Use } [PURE];
    /// `d = sign_extend(a[7:0])`
    ext8s => Ext8s { d: Def, a: Use } [PURE];
    /// `d = zero_extend(a[7:0])`
    ext8u => Ext8u { d: Def, a: Use } [PURE];
    /// `d = sign_extend(a[15:0])`
    ext16s => Ext16s { d: Def, a: Use } [PURE];
    /// `d = zero_extend(a[15:0])`
    ext16u => Ext16u { d: Def, a: Use } [PURE];
    /// `d = sign_extend(a[31:0])` on 64-bit temps
    ext32s => Ext32s { d: Def, a: Use } [PURE | ONLY64];
    /// `d = zero_extend(a[31:0])` on 64-bit temps
    ext32u => Ext32u { d: Def, a: Use } [PURE | ONLY64];
    /// 64-bit `d` = zero-extended 32-bit `a`
    extu_i32_i64 => ExtuI32I64 { d: Def, a: U32 } [PURE | ONLY64];
    /// 64-bit `d` = sign-extended 32-bit `a`
    exts_i32_i64 => ExtsI32I64 { d: Def, a: U32 } [PURE | ONLY64];
    /// 32-bit `d` = low half of 64-bit `a`
    extrl_i64_i32 => ExtrlI64I32 { d: Def, a: U64 } [PURE | ONLY32];
    /// `d = zero_extend(byteswap(a[15:0]))`
    bswap16 => Bswap16 { d: Def, a: Use } [PURE];
    /// `d = zero_extend(byteswap(a[31:0]))`
    bswap32 => Bswap32 { d: Def, a: Use } [PURE];
    /// `d = byteswap(a)` on 64-bit temps
    bswap64 => Bswap64 { d: Def, a: Use } [PURE | ONLY64];
    /// count of leading zero bits; `width` for 0
    clz => Clz { d: Def, a: Use } [PURE];
    /// count of trailing zero bits; `width` for 0
    ctz => Ctz { d: Def, a: Use } [PURE];
    /// count of set bits
    popcnt => Popcnt { d: Def, a: Use } [PURE];
    /// `d = (a cond b) ? 1 : 0`
    setcond => Setcond { d: Def, a: Use, b: Use, cond: Cnd } [PURE];
    /// select: `d = (c1 cond c2) ? t : f`
    movcond => Movcond { d: Def, c1: Use, c2: Use, v1: Use, v2: Use, cond: Cnd } [PURE];
    /// `d = guest_memory[addr]` through the soft-MMU; may fault
    qemu_ld => QemuLd { d: Def, addr: U64, mop: Mop } [MEM];
    /// `guest_memory[addr] = v` through the soft-MMU; may fault
    qemu_st => QemuSt { v: Use, addr: U64, mop: Mop } [MEM];
    /// atomic read-modify-write of guest memory through the soft-MMU:
    /// `d = old = guest_memory[addr]; guest_memory[addr] = op(old, v)` as one
    /// indivisible access (translated as a store: it needs write
    /// permission). `d` is the old value extended as `mop` says; `v` is
    /// truncated to the access size. May fault; a full barrier.
    atomic_rmw => AtomicRmw { d: Def, addr: U64, v: Use, mop: Mop, op: Aop } [MEM];
    /// atomic compare-and-swap of guest memory through the soft-MMU:
    /// `d = old = guest_memory[addr]; if old == cmp { guest_memory[addr] = new }`
    /// (compared at the access size) as one indivisible access, translated
    /// as a store. `d` is the old value extended as `mop` says. May fault; a
    /// full barrier.
    atomic_cmpxchg => AtomicCmpxchg { d: Def, addr: U64, cmp: Use, new: Use, mop: Mop } [MEM];
    /// memory barrier (fence): orders the guest memory accesses before it
    /// against those after it, for the kinds in `kind`
    /// ([`crate::ir::MB_LD_LD`]...; only [`crate::ir::MB_ST_LD`] costs code
    /// on x86 hosts)
    mb => Mb { kind: Imm } [NONE];
    /// `d = cpu_state[off]` (host byte order; `mop` gives size and signedness)
    ld_env => LdEnv { d: Def, off: Off, mop: Mop } [PURE | ENV_READ];
    /// `cpu_state[off] = v` (host byte order, `mop` size)
    st_env => StEnv { v: Use, off: Off, mop: Mop } [ENV_WRITE];
    /// `cpu_state[off] = v`, but only if the block leaves through a memory
    /// fault or a helper exit while the store is pending. It is pending from
    /// here until the next `st_env` overlapping it, branch, label or exit,
    /// which discard it; a fault exit performs the pending stores in program
    /// order. The dead-store pass makes these out of stores that a later
    /// store overwrites with only memory accesses in between, so that state
    /// stays exact for faults without storing on the fast path.
    st_env_fault => StEnvFault { v: Use, off: Off, mop: Mop } [ENV_WRITE];
    /// defines label `l` here
    set_label => SetLabel { l: Lbl } [LABEL | BB_END];
    /// jumps to `l`, which must come later in the block
    br => Br { l: Lbl } [BRANCH | BB_END];
    /// jumps to `l` if `a cond b`
    brcond => Brcond { a: Use, b: Use, cond: Cnd, l: Lbl } [BRANCH | BB_END];
    /// `ret = helper(env, args...)`
    call => Call { ret: ODef, helper: Hlp, args: Args } [CALL];
    /// start of the guest instruction at `pc` (faults report this pc)
    insn_start => InsnStart { pc: Imm } [INSN];
    /// leaves the block for the constant guest `pc` through chain slot `slot`
    goto_tb => GotoTb { slot: Slot, pc: Imm } [EXIT | BB_END];
    /// leaves the block for a computed guest pc
    exit_indirect => ExitIndirect { pc: U64 } [EXIT | BB_END];
    /// leaves the block with a status code for the exec loop
    exit_status => ExitStatus { code: Imm } [EXIT | BB_END];
}

/// Classes of ops for passes that treat a class alike (the folder). The
/// interpreter and the backend match every op by name instead: that match is
/// exhaustive, so a new op cannot be forgotten there.
impl Op {
    /// `(d, a)` for the ops whose result is [`crate::interp::eval_unary`] of one
    /// input: negation, complement, extensions, byte swaps and bit counts (not
    /// `mov`, which passes and the backend treat as a copy).
    pub fn unary(&self) -> Option<(Temp, Temp)> {
        match *self {
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
            | Op::Popcnt { d, a } => Some((d, a)),
            _ => None,
        }
    }

    /// `(d, a, b)` for the ops whose result is [`crate::interp::eval_binary`]
    /// of two inputs: arithmetic, logic, shifts and rotates, multiplication and
    /// division.
    pub fn binary(&self) -> Option<(Temp, Temp, Temp)> {
        match *self {
            Op::Add { d, a, b }
            | Op::Sub { d, a, b }
            | Op::And { d, a, b }
            | Op::Or { d, a, b }
            | Op::Xor { d, a, b }
            | Op::Shl { d, a, b }
            | Op::Shr { d, a, b }
            | Op::Sar { d, a, b }
            | Op::Rotl { d, a, b }
            | Op::Rotr { d, a, b }
            | Op::Mul { d, a, b }
            | Op::Mulsh { d, a, b }
            | Op::Muluh { d, a, b }
            | Op::Divs { d, a, b }
            | Op::Divu { d, a, b }
            | Op::Rems { d, a, b }
            | Op::Remu { d, a, b } => Some((d, a, b)),
            _ => None,
        }
    }
}
