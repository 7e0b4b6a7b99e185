//! The guest-ISA-independent core of moat's dynamic binary translator.
//!
//! ```text
//! front end ──► ir::Block ──► opt::optimize ──► backend::x86_64::Jit ──► codebuf (W^X code cache)
//!                   │                                   │
//!                   └──► interp (reference)             └──► run ─► ExitReason
//!
//! exec::TcgVcpu: TB cache, chaining, indirect-jump cache, SMC, dispatch to a guest::GuestCpu
//! ```
//!
//! A front end (one per guest ISA, in its own crate) decodes guest
//! instructions into an [`ir::Block`] with the builder methods, reading and
//! writing guest registers with `ld_env`/`st_env` at fixed offsets of its
//! `#[repr(C)]` CPU state, which starts with a [`softmmu::TcgContextHeader`]
//! (see [`softmmu::CpuState`]). Guest memory goes through `qemu_ld`/`qemu_st`,
//! which the backend turns into an inline lookup in the TLB of the op's
//! soft-MMU index (one per translation regime, see [`softmmu`]) with a slow
//! path into the embedder's [`softmmu::MemoryHandler`]; `atomic_rmw` and
//! `atomic_cmpxchg` do guest atomics the same way with lock-prefixed host
//! instructions (see [`softmmu`]), so vCPU threads may share guest RAM.
//! Helpers are plain
//! `extern "C"` functions ([`ir::HelperFn`] documents the ABI).
//!
//! [`opt::optimize`] folds constants, propagates copies, keeps guest
//! registers in temps across a block, and removes dead ops and CPU-state
//! stores that later stores overwrite, so flags a front end computes eagerly
//! cost nothing when nothing reads them; stores only a fault could observe
//! move to the fault path (`st_env_fault`).
//!
//! The backend ([`backend::x86_64::Jit`]) allocates host registers across
//! the whole block and emits code into a [`codebuf::CodeBuffer`]. A block
//! leaves through one of the exits in [`ExitReason`]; `goto_tb` exits can be
//! patched ([`backend::x86_64::Jit::patch_jump`]) to jump straight to the
//! next block, and `exit_indirect` first looks in the CPU state's
//! indirect-jump cache. [`exec::TcgVcpu`] does all of this for a front end
//! that implements [`guest::GuestCpu`], and [`exec::TcgAccelerator`] makes it
//! moat's emulation accelerator.
//!
//! Running one block by hand:
//!
//! ```
//! use accel_tcg::ExitReason;
//! use accel_tcg::backend::x86_64::Jit;
//! use accel_tcg::interp::Interpreter;
//! use accel_tcg::ir::{Block, MemOp, MemSize, Ty};
//! use accel_tcg::softmmu::{CpuState, MemFault, MemoryHandler, TcgContextHeader, Tlb};
//! use std::mem::offset_of;
//!
//! #[repr(C)]
//! struct Cpu {
//!     hdr: TcgContextHeader,
//!     rax: u64,
//! }
//! // SAFETY: repr(C), header first, plain integers after it.
//! unsafe impl CpuState for Cpu {}
//!
//! /// No guest memory at all: every access faults.
//! struct NoMemory;
//! impl MemoryHandler for NoMemory {
//!     fn load(&mut self, _: &mut Tlb, _: u64, _: MemSize) -> Result<u64, MemFault> {
//!         Err(MemFault { code: 14 })
//!     }
//!     fn store(&mut self, _: &mut Tlb, _: u64, _: MemSize, _: u64) -> Result<(), MemFault> {
//!         Err(MemFault { code: 14 })
//!     }
//! }
//!
//! // rax += 1; continue at 0x1004.
//! let rax = offset_of!(Cpu, rax) as u32;
//! let mut b = Block::new(0x1000);
//! b.insn_start(0x1000);
//! let t = b.temp64();
//! let one = b.const_temp(Ty::I64, 1);
//! b.ld_env(t, rax, MemOp::Q);
//! b.add(t, t, one);
//! b.st_env(t, rax, MemOp::Q);
//! b.goto_tb(0, 0x1004);
//! accel_tcg::ir::verify(&b, size_of::<Cpu>()).expect("well-formed");
//! accel_tcg::opt::optimize(&mut b);
//! println!("{b}"); // what `--trace op` shows
//!
//! let mut cpu = Cpu { hdr: TcgContextHeader::new(), rax: 41 };
//! let mut jit = Jit::new(1 << 20, size_of::<Cpu>()).expect("host supported");
//! let tb = jit.compile(&b).expect("compiled");
//! let exit = jit.run(&tb, &mut cpu, &mut NoMemory).expect("ran");
//! assert_eq!(exit.reason, ExitReason::Chain { slot: 0, pc: 0x1004 });
//! assert_eq!(cpu.rax, 42);
//!
//! // The interpreter agrees.
//! let exit = Interpreter::new().run(&b, &mut cpu, &mut NoMemory).expect("ran");
//! assert_eq!(exit, ExitReason::Chain { slot: 0, pc: 0x1004 });
//! assert_eq!(cpu.rax, 43);
//! ```

pub mod backend;
pub mod codebuf;
pub mod exec;
pub mod guest;
pub mod interp;
pub mod ir;
pub mod opt;
pub mod softmmu;

/// How a block left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// `goto_tb`: continue at the constant guest `pc`; chaining slot `slot`
    /// of this block can be patched to jump to that block directly.
    Chain {
        /// chain slot (0 or 1)
        slot: u8,
        /// next guest pc
        pc: u64,
    },
    /// `exit_indirect`: continue at a computed guest pc.
    Indirect {
        /// next guest pc
        pc: u64,
    },
    /// `exit_status`: the front end asked the exec loop for something
    /// (`code` is the front end's), at the instruction starting at `pc`.
    Status {
        /// front-end defined code
        code: u64,
        /// pc of the most recent `insn_start` (block pc if none)
        pc: u64,
    },
    /// A guest memory access faulted in the instruction starting at `pc`.
    Fault {
        /// pc of the faulting instruction (most recent `insn_start`)
        pc: u64,
        /// the faulting guest virtual address
        vaddr: u64,
        /// what the memory handler reported
        fault: softmmu::MemFault,
    },
    /// A helper set `helper_exit` to `code` in the instruction at `pc`.
    HelperExit {
        /// pc of the instruction whose helper asked to exit
        pc: u64,
        /// the value the helper stored
        code: u32,
    },
    /// The exit request was set when the block at `pc` was entered; nothing
    /// of the block ran.
    Interrupted {
        /// the block's pc
        pc: u64,
    },
}
