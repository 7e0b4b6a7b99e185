//! The x86-64 backend: IR blocks to host code with dynasm-rs.
//!
//! # Conventions of generated code
//!
//! * `r14` holds the CPU-state pointer for the whole time translated code
//!   runs (callee-saved, so helper calls keep it).
//! * `r10` and `r11` are scratch registers for the backend's own sequences
//!   (TLB lookup, exits); the other registers except `rsp` and `r14` hold
//!   temps (the allocator in `codegen.rs`).
//! * `rsp` points to a frame set up once by the entry trampoline: spill slots
//!   for temps and a save area for the memory slow paths. It is 16-byte
//!   aligned inside blocks, so helpers are called directly. Blocks jump to
//!   each other (chaining) and to the trampoline's exit; they never `ret`.
//! * Every block starts by testing the exit-request word
//!   ([`crate::softmmu::ExitRequest`]), so even a chain of
//!   patched jumps that loops forever leaves when asked.
//! * Leaving a block writes how it left to the header (`exit_kind`,
//!   `exit_pc`, `exit_aux`) and jumps to the trampoline's exit, which returns
//!   to [`Jit::enter_raw`]; the exit is decoded into a [`JitExit`].
//!
//! # Helper ABI
//!
//! Helpers are called with the SysV ABI as described at
//! [`crate::ir::HelperFn`]: `rdi` = CPU-state pointer, then up to five
//! integer arguments in `rsi`, `rdx`, `rcx`, `r8`, `r9`, result in `rax`.
//! Temps held in caller-saved registers are moved to callee-saved registers
//! or spilled around the call.
//!
//! # Chaining
//!
//! `goto_tb n` emits a `jmp rel32` whose 4-byte displacement is 4-aligned
//! (so patching it is one atomic store) and which initially jumps to the
//! instruction after it: an exit stub reporting [`ExitReason::Chain`] with a
//! [`JumpSite`]. The exec loop looks up or translates the next block and
//! calls [`Jit::patch_jump`], after which the jump goes straight there;
//! [`Jit::unpatch_jump`] restores the stub (when the target is invalidated).

mod codegen;

use dynasmrt::x64::X64Relocation;
use dynasmrt::{DynasmApi, VecAssembler};

use crate::ExitReason;
use crate::codebuf::{CodeBufError, CodeBuffer};
use crate::ir::Block;
use crate::softmmu::{
    CpuState, JMP_CACHE_INVALID, JumpCache, JumpCacheEntry, MemFault, MemoryHandler,
    TcgContextHeader,
};

/// Assembler used by the backend.
pub(crate) type Asm = VecAssembler<X64Relocation>;

/// `dynasm!` fixed to x86-64, so no call site can assemble for another
/// architecture by accident.
macro_rules! asm {
    ($ops:expr ; $($t:tt)*) => {
        dynasmrt::dynasm!($ops ; .arch x64 ; $($t)*)
    };
}
pub(crate) use asm;

/// Spill slots per block frame: a block needing more live temps at once than
/// this fails to compile ([`CompileError::TooManyTemps`]) and the front end
/// must end it earlier.
pub const SPILL_SLOTS: usize = 1024;
/// Byte offset of the slow-path register save area in the frame.
pub(crate) const SAVE_AREA: i32 = (SPILL_SLOTS * 8) as i32;
/// Frame size: slots, save area (16 registers), and 8 bytes so that `rsp`
/// is 16-aligned after the trampoline's six pushes.
const FRAME_SIZE: i32 = SAVE_AREA + 16 * 8 + 8;
const _: () = assert!(FRAME_SIZE % 16 == 8);

/// Values of [`TcgContextHeader::exit_kind`].
pub(crate) mod exit_kind {
    pub const CHAIN: u32 = 1;
    pub const INDIRECT: u32 = 2;
    pub const STATUS: u32 = 3;
    pub const FAULT: u32 = 4;
    pub const HELPER: u32 = 5;
    pub const INTERRUPTED: u32 = 6;
}

/// Why a block could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The code cache is full: flush it ([`Jit::flush`]) and translate again.
    #[error("the code cache is full")]
    CacheFull,
    /// More temps live at once than the frame has slots for.
    #[error("the block needs more than {SPILL_SLOTS} spill slots")]
    TooManyTemps,
    /// An op reads or writes the CPU state outside `HEADER_SIZE..env_size`.
    #[error("op {0}: CPU-state access outside the guest state")]
    EnvOutOfRange(usize),
    /// A malformed block (run [`crate::ir::verify`] for details).
    #[error("malformed block: {0}")]
    Malformed(&'static str),
    /// The assembler rejected the code (a backend bug).
    #[error("assembler error: {0}")]
    Asm(String),
    /// The host lacks an instruction the backend needs.
    #[error("the host CPU lacks {0}")]
    HostCpu(&'static str),
    /// The code cache itself failed.
    #[error(transparent)]
    Code(CodeBufError),
}

/// Why a compiled block cannot run or be patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The block was compiled before the last flush.
    #[error("the block's code was flushed")]
    Stale,
    /// The CPU state is smaller than the block was compiled for.
    #[error("CPU state of {have} bytes; the block needs {need}")]
    EnvTooSmall {
        /// size of the given state
        have: usize,
        /// size the block was compiled for
        need: usize,
    },
    /// The jump cannot reach the target (beyond ±2 GiB: not in one cache).
    #[error("jump target out of range")]
    OutOfRange,
}

/// A patchable `goto_tb` jump: where its displacement lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JumpSite {
    /// Executable address of the jump's 4-byte displacement.
    pub addr: usize,
    generation: u64,
}

/// A compiled block in the code cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompiledBlock {
    /// Executable address of its first instruction.
    pub entry: usize,
    /// Size of its code in bytes.
    pub len: usize,
    /// The patchable jump of each chain slot, if the block has one.
    pub jumps: [Option<JumpSite>; 2],
    generation: u64,
}

/// How a run of translated code ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitExit {
    /// The exit, as the interpreter would report it.
    pub reason: ExitReason,
    /// For [`ExitReason::Chain`]: the jump to patch so the next run goes
    /// straight to the next block.
    pub jump: Option<JumpSite>,
}

/// The JIT: a code cache, its entry trampoline and the compiler.
pub struct Jit {
    buf: CodeBuffer,
    enter: extern "C" fn(usize, *mut u8),
    exit_addr: usize,
    env_size: usize,
    scratch: codegen::Scratch,
    /// Unique per JIT: whose code a CPU state's jump cache points to.
    id: u64,
    /// Bumped whenever jump-cache entries may point to dropped code.
    jc_epoch: u64,
}

static NEXT_JIT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl std::fmt::Debug for Jit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jit")
            .field("buf", &self.buf)
            .finish_non_exhaustive()
    }
}

impl Jit {
    /// A JIT with a code cache of `cache_size` bytes
    /// ([`crate::codebuf::DEFAULT_CODE_SIZE`] is a good default) for CPU
    /// states of `env_size` bytes (`size_of` the front end's state struct):
    /// every block it compiles may address that much.
    pub fn new(cache_size: usize, env_size: usize) -> Result<Jit, CompileError> {
        if !std::arch::is_x86_feature_detected!("popcnt") {
            return Err(CompileError::HostCpu("popcnt"));
        }
        let mut buf = CodeBuffer::new(cache_size).map_err(CompileError::Code)?;
        let base = buf.next_addr();
        let mut a = Asm::new(base);
        // Entry: fn(code, env). Save callee-saved registers, set up the frame
        // and the env register, jump into the block.
        asm!(a
            ; push rbp
            ; push rbx
            ; push r12
            ; push r13
            ; push r14
            ; push r15
            ; sub rsp, FRAME_SIZE
            ; mov r14, rsi
            ; jmp rdi
        );
        a.align(16, 0xcc);
        let exit_off = a.offset().0;
        asm!(a
            ; add rsp, FRAME_SIZE
            ; pop r15
            ; pop r14
            ; pop r13
            ; pop r12
            ; pop rbx
            ; pop rbp
            ; ret
        );
        let code = a.finalize().map_err(|e| CompileError::Asm(e.to_string()))?;
        let entry = buf.append(&code).map_err(CompileError::Code)?;
        buf.reserve_written();
        // SAFETY: `entry` is the start of the trampoline just written to the
        // executable view; it follows the C ABI for fn(usize, *mut u8).
        let enter = unsafe { std::mem::transmute::<usize, extern "C" fn(usize, *mut u8)>(entry) };
        let id = NEXT_JIT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Jit {
            buf,
            enter,
            exit_addr: entry + exit_off,
            env_size,
            scratch: codegen::Scratch::default(),
            id,
            jc_epoch: 0,
        })
    }

    /// Incremented by every flush.
    pub fn generation(&self) -> u64 {
        self.buf.generation()
    }

    /// The code cache.
    pub fn code_buffer(&self) -> &CodeBuffer {
        &self.buf
    }

    /// Drops all compiled blocks (when the cache is full, or to invalidate
    /// everything). Blocks and jump sites from before become stale.
    pub fn flush(&mut self) {
        self.buf.flush();
        self.jc_epoch += 1;
    }

    /// Makes every CPU state's indirect-jump cache start empty on its next
    /// run (after blocks were invalidated).
    pub fn invalidate_jump_caches(&mut self) {
        self.jc_epoch += 1;
    }

    fn jc_tag(&self) -> u64 {
        // Ids and epochs beyond 2^32 would take centuries of flushes.
        (self.id << 32) ^ self.jc_epoch
    }

    /// Empties `hdr`'s jump cache unless this JIT filled it since the last
    /// invalidation, so generated code never jumps to another JIT's or
    /// dropped code.
    fn own_jump_cache(&self, hdr: &mut TcgContextHeader) {
        let tag = self.jc_tag();
        if hdr.jc_tag != tag {
            hdr.jmp_cache.entries.fill(JumpCacheEntry::INVALID);
            hdr.jc_tag = tag;
        }
    }

    /// Lets `exit_indirect` in generated code jump straight to `tb` when
    /// the computed pc is `pc` and `hdr.tb_flags` is `flags`.
    pub fn jump_cache_insert(
        &self,
        hdr: &mut TcgContextHeader,
        pc: u64,
        flags: u64,
        tb: &CompiledBlock,
    ) -> Result<(), RunError> {
        self.check(tb)?;
        if flags == JMP_CACHE_INVALID {
            return Err(RunError::OutOfRange);
        }
        self.own_jump_cache(hdr);
        hdr.jmp_cache.entries[JumpCache::index(pc)] = JumpCacheEntry {
            pc,
            flags,
            code: tb.entry as u64,
            ..JumpCacheEntry::INVALID
        };
        Ok(())
    }

    /// Size of the CPU states this JIT's code runs against.
    pub fn env_size(&self) -> usize {
        self.env_size
    }

    /// Compiles `blk`. On [`CompileError::CacheFull`], flush and compile
    /// again.
    pub fn compile(&mut self, blk: &Block) -> Result<CompiledBlock, CompileError> {
        let base = self.buf.next_addr().next_multiple_of(16);
        let out = codegen::compile(blk, self.env_size, base, self.exit_addr, &mut self.scratch)?;
        let entry = self.buf.append(&out.code).map_err(|e| match e {
            CodeBufError::Full => CompileError::CacheFull,
            e => CompileError::Code(e),
        })?;
        if entry != base {
            return Err(CompileError::Malformed(
                "code placed at an unexpected address",
            ));
        }
        let generation = self.buf.generation();
        let mut jumps = [None; 2];
        for &(slot, off) in &out.jumps {
            if let Some(j) = jumps.get_mut(slot as usize) {
                *j = Some(JumpSite {
                    addr: entry + off,
                    generation,
                });
            }
        }
        Ok(CompiledBlock {
            entry,
            len: out.code.len(),
            jumps,
            generation,
        })
    }

    fn check(&self, tb: &CompiledBlock) -> Result<(), RunError> {
        if tb.generation != self.buf.generation() {
            return Err(RunError::Stale);
        }
        Ok(())
    }

    /// Runs `tb` (and whatever it is chained to) against `cpu`, with `mem`
    /// behind the TLB, until a block exits.
    pub fn run<S: CpuState>(
        &self,
        tb: &CompiledBlock,
        cpu: &mut S,
        mem: &mut dyn MemoryHandler,
    ) -> Result<JitExit, RunError> {
        self.check(tb)?;
        if cpu.env_size() < self.env_size {
            return Err(RunError::EnvTooSmall {
                have: cpu.env_size(),
                need: self.env_size,
            });
        }
        Ok(cpu.header().with_handler(mem, |hdr| {
            let env = hdr as *mut TcgContextHeader as *mut u8;
            // SAFETY: `tb` is current code of this cache, compiled like every
            // block it may chain to for `self.env_size` bytes of state, which
            // `cpu` has (checked above); `env` is the whole state, exclusively
            // borrowed.
            unsafe { self.enter_raw(tb.entry, env) }
        }))
    }

    /// Runs code at `entry` against the CPU state at `env`.
    ///
    /// # Safety
    ///
    /// `entry` must be the entry of a current block of this JIT; `env` must
    /// point to at least [`Jit::env_size`] bytes of CPU state, valid,
    /// start with a [`TcgContextHeader`] and not be accessed by anything else
    /// meanwhile. Its memory handler, if installed, must be valid.
    pub unsafe fn enter_raw(&self, entry: usize, env: *mut u8) -> JitExit {
        {
            // SAFETY: the caller guarantees `env` starts with a header; the
            // reference ends before generated code runs.
            let hdr = unsafe { &mut *(env as *mut TcgContextHeader) };
            self.own_jump_cache(hdr);
        }
        (self.enter)(entry, env);
        // SAFETY: the caller guarantees `env` starts with a header.
        let hdr = unsafe { &mut *(env as *mut TcgContextHeader) };
        decode_exit(hdr, self.buf.generation())
    }

    /// Makes `site` jump straight to `target`. Both must be current.
    pub fn patch_jump(&mut self, site: JumpSite, target: &CompiledBlock) -> Result<(), RunError> {
        self.check(target)?;
        if site.generation != self.buf.generation() {
            return Err(RunError::Stale);
        }
        let rel = (target.entry as i64) - (site.addr as i64 + 4);
        let rel = i32::try_from(rel).map_err(|_| RunError::OutOfRange)?;
        self.buf
            .patch_u32(site.addr, rel as u32)
            .map_err(|_| RunError::OutOfRange)
    }

    /// Restores `site` to its exit stub.
    pub fn unpatch_jump(&mut self, site: JumpSite) -> Result<(), RunError> {
        if site.generation != self.buf.generation() {
            return Err(RunError::Stale);
        }
        self.buf
            .patch_u32(site.addr, 0)
            .map_err(|_| RunError::OutOfRange)
    }

    /// The machine code of a block (for disassembly in traces and tests).
    pub fn code(&self, tb: &CompiledBlock) -> Option<&[u8]> {
        if tb.generation != self.buf.generation() {
            return None;
        }
        self.buf.bytes(tb.entry, tb.len)
    }
}

fn decode_exit(hdr: &mut TcgContextHeader, generation: u64) -> JitExit {
    let pc = hdr.exit_pc;
    let aux = hdr.exit_aux;
    let mut jump = None;
    let reason = match hdr.exit_kind {
        exit_kind::CHAIN => {
            jump = Some(JumpSite {
                addr: aux as usize,
                generation,
            });
            ExitReason::Chain {
                slot: hdr.exit_slot as u8,
                pc,
            }
        }
        exit_kind::INDIRECT => ExitReason::Indirect { pc },
        exit_kind::STATUS => ExitReason::Status { code: aux, pc },
        exit_kind::FAULT => ExitReason::Fault {
            pc,
            vaddr: hdr.fault_addr,
            fault: MemFault { code: aux as u32 },
        },
        exit_kind::HELPER => ExitReason::HelperExit {
            pc,
            code: hdr.helper_exit,
        },
        _ => ExitReason::Interrupted { pc },
    };
    hdr.exit_kind = 0;
    JitExit { reason, jump }
}
