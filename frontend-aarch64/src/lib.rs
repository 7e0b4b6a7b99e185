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
//! * System side, first versions the system helper completes: [`mmu`]
//!   (page walker: identity with the MMU off), [`system`] (`msr`/`mrs`/
//!   `sys`/`wfi`), [`sysregs`], [`psci`].
//!
//! Supported: EL0 and EL1 in AArch64, the integer A64 ISA (data
//! processing, branches, every integer load and store, exclusives,
//! acquire/release, ARMv8.1 LSE atomics), scalar floating point and
//! Advanced SIMD ([`fpu`], [`advsimd`]; half precision only in
//! conversions). Not yet: the MMU table walk, the generic
//! timer, EL2/EL3, AArch32, SVE, pointer authentication, MTE.

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
