//! moat's AArch64 guest front end for the TCG translator.
//!
//! ```text
//! guest words ─► decode (one table of A64 bit patterns) ─► translate::* (one module per encoding class) ─► accel_tcg::ir::Block
//!                                                                │
//!        exec loop ◄── exit_status / faults ──► cpu::A64Cpu (exceptions, system instructions, PSCI in Rust)
//! ```
//!
//! * [`state`]: the `#[repr(C)]` CPU state translated code runs against
//!   (NZCV as four flag words, the stack pointer in use in `x[31]`).
//! * [`decode`]: the encoding table and its lookup.
//! * [`translate`]: translation to IR.
//! * [`cpu`]: [`A64Cpu`], the [`accel_tcg::guest::GuestCpu`] the exec loop
//!   drives; [`exceptions`]: exception entry and `eret`.
//! * System side: [`mmu`] (the VMSAv8-64 stage 1 walk), [`system`]
//!   (`msr`/`mrs`/`sys`/`wfi`: TLBI, AT, cache maintenance), [`sysregs`]
//!   (registers, EL0 traps, the generic timer), [`psci`] (PSCI 1.0 over
//!   `hvc #0`).
//!
//! Supported: EL0 and EL1 in AArch64, the integer A64 ISA (data
//! processing, branches, every integer load and store, exclusives,
//! acquire/release, ARMv8.1 LSE atomics), scalar floating point and
//! Advanced SIMD ([`fpu`], [`advsimd`]; half precision only in
//! conversions), exceptions, the stage-1 MMU, the GIC's interrupts and the
//! generic timer, PSCI. Not yet: EL2/EL3, AArch32, SVE, pointer
//! authentication, MTE.

pub mod advsimd;
pub mod cpu;
pub mod decode;
pub mod disasm;
pub mod exceptions;
pub mod fpu;
pub mod frontend;
pub mod mmu;
pub mod psci;
pub mod state;
pub mod sysregs;
pub mod system;
pub mod translate;

pub use cpu::A64Cpu;
pub use frontend::Aarch64FrontEnd;
pub use state::A64State;
