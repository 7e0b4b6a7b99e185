//! moat's x86-64 guest front end for the TCG translator.
//!
//! ```text
//! guest bytes ─► iced-x86 decoder ─► translate::* (one module per instruction class) ─► accel_tcg::ir::Block
//!                                                       │
//!        exec loop ◄── exit_status / faults ──► cpu::X86Cpu (exceptions, I/O, system instructions in Rust)
//! ```
//!
//! * [`state`]: the `#[repr(C)]` CPU state translated code runs against, with
//!   lazily evaluated condition codes ([`flags`]).
//! * [`translate`]: decoding and translation to IR.
//! * [`mmu`]: the page-table walker ([`accel_tcg::guest::PageWalker`]).
//! * [`simd`]: the SSE/SSE2 helpers, run on the host's SSE unit under the
//!   guest's MXCSR.
//! * [`x87`]: the x87 FPU, run on the host's x87 unit.
//! * [`mmx`]: MMX (the mm registers alias the x87 registers), run on the
//!   host's MMX unit.
//! * [`cpu`]: [`cpu::X86Cpu`], the [`accel_tcg::guest::GuestCpu`] the exec
//!   loop drives.
//!
//! Supported: real mode and 16-bit code (IVT interrupts, 16-bit addressing
//! and stacks, the INIT/SIPI start-up state), 32-bit protected mode and
//! 64-bit long mode, the general-purpose integer ISA, system instructions
//! for booting and running a kernel, the x87 FPU, MMX, SSE, SSE2, SSE3 and
//! SSSE3 (the last two where the host has them), paging, exceptions
//! through the IDT. Not yet: virtual-8086 mode, segment limit checks, the
//! A20 gate, SSE4 and later, monitor/mwait, task switches, call gates.
//!
//! Interrupts come from the board's controllers through
//! [`devices::InterruptController`] (the local APIC, the 8259 through
//! LINT0); `hlt` waits, asleep, for them; secondary CPUs wait for INIT and
//! a start-up IPI ([`frontend::X86FrontEnd`]).

pub mod cpu;
pub mod flags;
pub mod frontend;
pub mod mmu;
pub mod mmx;
pub mod simd;
pub mod state;
pub mod translate;
pub mod x87;

pub use cpu::X86Cpu;
pub use frontend::X86FrontEnd;
pub use state::X86State;
