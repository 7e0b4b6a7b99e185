//! The guest-ISA-independent core of moat's dynamic binary translator.
//!
//! ```text
//! front end ──► ir::Block ──► opt::optimize ──► backend::x86_64 ──► codebuf (W^X code cache)
//!                   │                                   │
//!                   └──► interp (reference)             └──► enter() ─► ExitReason
//! ```
//!
//! A front end (one per guest ISA, in its own crate) decodes guest
//! instructions into an [`ir::Block`] with the builder methods, reading and
//! writing guest registers with `ld_env`/`st_env` at fixed offsets of its
//! `#[repr(C)]` CPU state, which starts with a [`softmmu::TcgContextHeader`].
//! Guest memory goes through `qemu_ld`/`qemu_st`, which the backend turns
//! into an inline soft-MMU TLB lookup with a slow path into the embedder's
//! [`softmmu::MemoryHandler`].
//!
//! [`opt::optimize`] folds constants, propagates copies, forwards CPU-state
//! stores to later loads, removes CPU-state stores that a later store
//! overwrites, and removes dead ops (so flags a front end computes eagerly
//! vanish when nothing reads them).
//!
//! The backend ([`backend::x86_64::Compiler`]) emits host code into a
//! [`codebuf::CodeBuffer`]; [`backend::x86_64::enter`] runs it. A block
//! leaves through one of the exits in [`ExitReason`]; `goto_tb` exits can be
//! patched ([`backend::x86_64::patch_jump`]) to jump straight to the next
//! block.
//!
//! ```
//! use accel_tcg::ir::{Block, MemOp, Ty};
//! use accel_tcg::softmmu::HEADER_SIZE;
//!
//! // rax += 1 for a CPU state whose rax lives right after the header.
//! let rax = HEADER_SIZE as u32;
//! let mut b = Block::new(0x1000);
//! b.insn_start(0x1000);
//! let t = b.temp64();
//! let one = b.const_temp(Ty::I64, 1);
//! b.ld_env(t, rax, MemOp::Q);
//! b.add(t, t, one);
//! b.st_env(t, rax, MemOp::Q);
//! b.goto_tb(0, 0x1004);
//! accel_tcg::ir::verify(&b, HEADER_SIZE + 8).unwrap();
//! accel_tcg::opt::optimize(&mut b);
//! println!("{b}");
//! ```

pub mod backend;
pub mod codebuf;
pub mod exec;
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
