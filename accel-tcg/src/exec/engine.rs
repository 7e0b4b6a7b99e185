//! The two ways to run a translated block: host code from the JIT, or the IR
//! interpreter. The exec loop is generic over [`Engine`], so both run the same
//! cache, chaining and fault logic, and the interpreter can check the JIT.

use std::fmt::Debug;
use std::hash::Hash;

use crate::ExitReason;
use crate::backend::x86_64::{CompileError, CompiledBlock, Jit, JumpSite};
use crate::interp::Interpreter;
use crate::ir::Block;
use crate::softmmu::{CpuState, MemoryHandler, TcgContextHeader};

/// How a run of translated code ended, and the jump that exited if the exit
/// can be linked to the next block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineExit<S> {
    pub reason: ExitReason,
    pub site: Option<S>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the code cache is full")]
    CacheFull,
    #[error("{0}")]
    Failed(String),
}

/// Runs translated blocks.
pub trait Engine {
    /// A block ready to run.
    type Code: Send;
    /// A chainable jump inside a block.
    type Site: Copy + Eq + Hash + Debug + Send;

    fn compile(&mut self, block: &Block) -> Result<Self::Code, EngineError>;
    /// The chainable jumps of a block.
    fn sites(&self, code: &Self::Code) -> Vec<Self::Site>;
    /// Runs `code` (and whatever it is linked to) until a block exits.
    fn run<S: CpuState>(
        &mut self,
        code: &Self::Code,
        cpu: &mut S,
        mem: &mut dyn MemoryHandler,
    ) -> Result<EngineExit<Self::Site>, EngineError>;
    /// Makes `site` jump straight to `to`; false if it cannot.
    fn link(&mut self, site: Self::Site, to: &Self::Code) -> bool;
    /// Restores `site` to exiting to the exec loop.
    fn unlink(&mut self, site: Self::Site);
    /// Forgets all code.
    fn flush(&mut self);
    /// Called before `code` runs for the block keyed `(pc, flags)`: the JIT
    /// records it in the CPU state's indirect-jump cache, so later computed
    /// jumps to `pc` in the same mode go straight to it.
    fn prepare(&self, header: &mut TcgContextHeader, pc: u64, flags: u64, code: &Self::Code) {
        let _ = (header, pc, flags, code);
    }
    /// Forgets every indirect-jump cache entry (blocks went away, or the
    /// guest's address translation may have changed).
    fn invalidate_jump_caches(&mut self) {}
    /// The host machine code of a block and its address, for `--trace out_asm`.
    fn host_code(&self, code: &Self::Code) -> Option<(u64, Vec<u8>)> {
        let _ = code;
        None
    }
}

/// The IR interpreter as an engine: no chaining, every block returns.
pub struct InterpEngine {
    interp: Interpreter,
    env_size: usize,
}

impl InterpEngine {
    pub fn new(env_size: usize) -> Self {
        InterpEngine {
            interp: Interpreter::new(),
            env_size,
        }
    }
}

impl Engine for InterpEngine {
    type Code = Block;
    type Site = ();

    fn compile(&mut self, block: &Block) -> Result<Block, EngineError> {
        crate::ir::verify(block, self.env_size)
            .map_err(|error| EngineError::Failed(format!("invalid block: {error}")))?;
        Ok(block.clone())
    }

    fn sites(&self, _code: &Block) -> Vec<()> {
        Vec::new()
    }

    fn run<S: CpuState>(
        &mut self,
        code: &Block,
        cpu: &mut S,
        mem: &mut dyn MemoryHandler,
    ) -> Result<EngineExit<()>, EngineError> {
        let reason = self
            .interp
            .run(code, cpu, mem)
            .map_err(|error| EngineError::Failed(error.to_string()))?;
        Ok(EngineExit { reason, site: None })
    }

    fn link(&mut self, _site: (), _to: &Block) -> bool {
        false
    }

    fn unlink(&mut self, _site: ()) {}

    fn flush(&mut self) {}
}
/// The x86-64 JIT as an engine.
pub struct JitEngine {
    jit: Jit,
}

impl JitEngine {
    pub fn new(cache_size: usize, env_size: usize) -> Result<Self, EngineError> {
        Ok(JitEngine {
            jit: Jit::new(cache_size, env_size)
                .map_err(|error| EngineError::Failed(error.to_string()))?,
        })
    }

    /// The JIT, for traces (host disassembly).
    pub fn jit(&self) -> &Jit {
        &self.jit
    }
}

impl Engine for JitEngine {
    type Code = CompiledBlock;
    type Site = JumpSite;

    fn compile(&mut self, block: &Block) -> Result<CompiledBlock, EngineError> {
        self.jit.compile(block).map_err(|error| match error {
            CompileError::CacheFull => EngineError::CacheFull,
            other => EngineError::Failed(other.to_string()),
        })
    }

    fn sites(&self, code: &CompiledBlock) -> Vec<JumpSite> {
        code.jumps.iter().flatten().copied().collect()
    }

    fn run<S: CpuState>(
        &mut self,
        code: &CompiledBlock,
        cpu: &mut S,
        mem: &mut dyn MemoryHandler,
    ) -> Result<EngineExit<JumpSite>, EngineError> {
        let exit = self
            .jit
            .run(code, cpu, mem)
            .map_err(|error| EngineError::Failed(error.to_string()))?;
        Ok(EngineExit {
            reason: exit.reason,
            site: exit.jump,
        })
    }

    fn link(&mut self, site: JumpSite, to: &CompiledBlock) -> bool {
        self.jit.patch_jump(site, to).is_ok()
    }

    fn unlink(&mut self, site: JumpSite) {
        // A stale site belongs to flushed code: nothing to restore.
        let _ = self.jit.unpatch_jump(site);
    }

    fn flush(&mut self) {
        self.jit.flush();
    }

    fn prepare(&self, header: &mut TcgContextHeader, pc: u64, flags: u64, code: &CompiledBlock) {
        header.tb_flags = flags;
        // Only fails for stale code or the reserved flags value; then the
        // block is simply not reachable through the cache.
        let _ = self.jit.jump_cache_insert(header, pc, flags, code);
    }

    fn invalidate_jump_caches(&mut self) {
        self.jit.invalidate_jump_caches();
    }

    fn host_code(&self, code: &CompiledBlock) -> Option<(u64, Vec<u8>)> {
        let bytes = self.jit.code(code)?;
        Some((code.entry as u64, bytes.to_vec()))
    }
}
