//! `exit_status` codes: instructions translated code hands to Rust.
//!
//! Layout of a code: bits 0-7 the kind, bits 8-63 kind-specific arguments.
//! The instruction's pc comes with the exit; operands that do not fit are
//! left in [`crate::state::A64State::scratch`].

/// Kind: Undefined Instruction (ESR EC 0, ELR = the instruction).
pub const UNDEF: u64 = 1;
/// Kind: `svc #imm` (imm16 in bits 16-31).
pub const SVC: u64 = 2;
/// Kind: `hvc #imm` (imm16 in bits 16-31).
pub const HVC: u64 = 3;
/// Kind: `smc #imm` (imm16 in bits 16-31).
pub const SMC: u64 = 4;
/// Kind: `brk #imm` (imm16 in bits 16-31).
pub const BRK: u64 = 5;
/// Kind: `eret`.
pub const ERET: u64 = 6;
/// Kind: a system instruction finished in Rust (`mrs`, `msr`, `sys`,
/// `msr <pstatefield>, #imm`, `wfi`...): the instruction word in bits 32-63,
/// handled by [`crate::system::execute`].
pub const SYSTEM: u64 = 7;
/// Kind: the pc is not 4-byte aligned (PC alignment fault).
pub const PC_ALIGN: u64 = 8;
/// Kind: the translation-relevant state may have changed (`isb`): continue
/// at the next instruction with a fresh block.
pub const NEXT: u64 = 9;
/// Kind: a load or store based on a misaligned SP (EC 0x26).
pub const SP_ALIGN: u64 = 10;
/// Kind: an FP/SIMD instruction trapped by CPACR_EL1.FPEN (EC 0x07).
pub const FP_TRAP: u64 = 11;
/// Kind: an instruction with PSTATE.IL set (EC 0x0e).
pub const ILLEGAL: u64 = 12;

/// The code of a system instruction `word`.
pub const fn system(word: u32) -> u64 {
    SYSTEM | (word as u64) << 32
}

/// The code of an exception-generating instruction with its immediate.
pub const fn with_imm16(kind: u64, imm: u32) -> u64 {
    kind | ((imm as u64 & 0xffff) << 16)
}

/// The kind of a code.
pub const fn kind(code: u64) -> u64 {
    code & 0xff
}

/// The imm16 of an exception-generating code.
pub const fn imm16(code: u64) -> u32 {
    ((code >> 16) & 0xffff) as u32
}

/// The instruction word of a [`SYSTEM`] code.
pub const fn word(code: u64) -> u32 {
    (code >> 32) as u32
}
