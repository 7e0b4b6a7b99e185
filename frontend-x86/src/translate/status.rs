//! `exit_status` codes: instructions translated code hands to Rust.
//!
//! Layout of a code: bits 0-7 the kind, bits 8-15 the instruction's length
//! (added by [`super::Ctx::exit`]), bits 16-63 kind-specific arguments.
//! Operands that do not fit are left in [`crate::state::X86State::scratch`].

/// Kind: raise an exception. Args: vector (bits 16-23), has error code
/// (bit 24), error code (bits 32-47).
pub const EXCEPTION: u64 = 1;
/// Kind: software interrupt `int n` (vector in bits 16-23; bit 25 for int3,
/// bit 26 for into).
pub const SOFT_INT: u64 = 2;
/// Kind: `hlt`.
pub const HLT: u64 = 3;
/// Kind: port input `in` (size in bits 16-19, immediate port flag bit 20,
/// port in bits 24-39).
pub const IN: u64 = 4;
/// Kind: port output `out` (same arguments as [`IN`]).
pub const OUT: u64 = 5;
/// Kind: string port I/O (`ins`/`outs`): size bits 16-19, out bit 20, rep
/// bit 21, address size log2 bits 24-27.
pub const STRING_IO: u64 = 6;
/// Kind: `mov crN, value` (CR number bits 16-19, value in scratch 0).
pub const MOV_TO_CR: u64 = 7;
/// Kind: load segment register (number bits 16-19) with the selector in
/// scratch 0 (`mov sreg`, `pop sreg`: bit 20 says pop, with the new stack
/// pointer in scratch 1; `lds` and friends: bit 21, then general register
/// bits 32-35 gets the offset in scratch 1 at the operand size in bits
/// 24-27).
pub const LOAD_SEG: u64 = 8;
/// Kind: far jump or call: selector in scratch 0, offset in scratch 1;
/// bit 16 for call, operand size in bits 24-27.
pub const FAR_JMP: u64 = 9;
/// Kind: far return: operand size bits 24-27, extra pop in bits 32-47.
pub const FAR_RET: u64 = 10;
/// Kind: `iret` with operand size in bits 24-27.
pub const IRET: u64 = 11;
/// Kind: `rdmsr`.
pub const RDMSR: u64 = 12;
/// Kind: `wrmsr`.
pub const WRMSR: u64 = 13;
/// Kind: `syscall`.
pub const SYSCALL: u64 = 14;
/// Kind: `sysret` (64-bit operand size bit 16).
pub const SYSRET: u64 = 15;
/// Kind: `invlpg` of the linear address in scratch 0.
pub const INVLPG: u64 = 16;
/// Kind: `popf` of the value in scratch 0 (operand size bits 24-27); the
/// stack pointer is already updated.
pub const POPF: u64 = 17;
/// Kind: the translation-relevant state changed (lgdt, swapgs, sti...):
/// continue at the next instruction with a fresh block.
pub const NEXT: u64 = 18;
/// Kind: `sti`: like [`NEXT`], interrupts may now be delivered.
pub const STI: u64 = 19;
/// Kind: `ltr`/`lldt` (bit 16 set for ltr), selector in scratch 0.
pub const LOAD_SYS_SEG: u64 = 20;
/// Kind: single step (RFLAGS.TF): the instruction completed and the next rip
/// is in scratch 0; raise the #DB trap there.
pub const SINGLE_STEP: u64 = 21;

/// #DE
pub const DE: u8 = 0;
/// #DB
pub const DB: u8 = 1;
/// #BP
pub const BP: u8 = 3;
/// #OF
pub const OF: u8 = 4;
/// #BR
pub const BR: u8 = 5;
/// #UD
pub const UD: u8 = 6;
/// #NM
pub const NM: u8 = 7;
/// #DF
pub const DF: u8 = 8;
/// #TS
pub const TS: u8 = 10;
/// #NP
pub const NP: u8 = 11;
/// #SS
pub const SS: u8 = 12;
/// #GP
pub const GP: u8 = 13;
/// #PF
pub const PF: u8 = 14;
/// #AC
pub const AC: u8 = 17;

/// The code for raising `vector` with an optional error code.
pub const fn exception(vector: u8, error: Option<u16>) -> u64 {
    let e = match error {
        Some(e) => (1 << 24) | ((e as u64) << 32),
        None => 0,
    };
    EXCEPTION | (vector as u64) << 16 | e
}

/// The kind of a code.
pub const fn kind(code: u64) -> u64 {
    code & 0xff
}

/// The instruction length recorded in a code.
pub const fn insn_len(code: u64) -> u64 {
    (code >> 8) & 0xff
}

/// Bits `lo..lo+n` of a code.
pub const fn field(code: u64, lo: u32, n: u32) -> u64 {
    (code >> lo) & ((1 << n) - 1)
}
