//! The execution loop and the translation-block cache.
//!
//! [`Exec`] runs a vCPU: it asks the front end ([`GuestArch`]) where
//! execution continues, looks the block up in its cache (translating,
//! optimizing and compiling it on a miss), runs it, and follows the exit:
//!
//! * [`ExitReason::Chain`]: sets the pc, patches the exiting jump to go
//!   straight to the next block (so next time the exec loop is not involved)
//!   and continues;
//! * [`ExitReason::Indirect`]: sets the pc and continues (a lookup, no
//!   patching: the target varies). Every block the loop enters is also put
//!   in the CPU state's indirect-jump cache, which `exit_indirect` in
//!   generated code consults first, so computed jumps between cached blocks
//!   (returns, indirect calls) usually never come back here;
//! * anything else (status codes, faults, helper exits, exit requests) is
//!   returned to the caller, which handles guest exceptions, interrupts and
//!   devices and calls [`Exec::run`] again.
//!
//! Blocks are keyed by ([`TbKey`]) guest virtual pc, guest physical address
//! of that pc, and front-end flags (CPU mode bits that change translation).
//! A block's code comes from one guest page (front ends end blocks at page
//! boundaries), which [`Exec::invalidate_page`] uses for self-modifying code.
//!
//! Chaining is only correct while the next block's key follows from the pc
//! alone. Front ends therefore use `goto_tb` only for targets on the same
//! guest page as the block, and leave with `exit_status` after instructions
//! that change their flags (the inline indirect-jump lookup compares the
//! flags the block was entered with); when guest page tables change, the
//! front end calls [`Exec::unchain_all`] (or [`Exec::flush`]).
//!
//! With [`Engine::Interp`] the same loop runs blocks on the IR interpreter
//! (no chaining): the portable fallback and a reference for the whole loop.
//!
//! # Self-modifying code
//!
//! [`CodePages`] is the set of guest physical pages that hold translated
//! code, shared with the embedder's [`MemoryHandler`]. When the loop
//! translates a block it write-protects the block's page in the CPU state's
//! TLB, so stores to it take the slow path. The handler's side of the
//! protocol:
//!
//! * never fill a TLB entry with write permission for a page in
//!   [`CodePages::contains`] (the loop only protects the virtual page a
//!   block was translated from; other virtual aliases of the physical page
//!   are the handler's to keep read-only);
//! * after performing a store to such a page, call
//!   [`CodePages::note_write`] and request an exit
//!   ([`crate::softmmu::ExitRequest`]).
//!
//! The vCPU then leaves at the next block entry ([`ExitReason::Interrupted`]);
//! the next [`Exec::run`] drops the translations of the written pages before
//! running anything. The rest of the block that did the store still runs
//! its old translation, as when a CPU has already fetched it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::ExitReason;
use crate::backend::x86_64::{CompileError, CompiledBlock, Jit, JumpSite, RunError};
use crate::interp::{InterpError, Interpreter};
use crate::ir::Block;
use crate::opt::Scratch;
use crate::softmmu::{CpuState, MemoryHandler, PAGE_MASK};

/// Guest physical pages holding translated code, shared between an
/// [`Exec`] and the memory handler (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct CodePages(Arc<CodePagesInner>);

#[derive(Debug, Default)]
struct CodePagesInner {
    pages: Mutex<HashSet<u64>>,
    dirty: Mutex<Vec<u64>>,
    any_dirty: AtomicBool,
}

impl CodePages {
    /// Whether the page holding guest physical address `phys` holds
    /// translated code.
    pub fn contains(&self, phys: u64) -> bool {
        let pages = self.0.pages.lock().unwrap_or_else(PoisonError::into_inner);
        pages.contains(&(phys & PAGE_MASK))
    }

    /// Records a guest store to the page holding `phys`; its translations
    /// are dropped at the next [`Exec::run`].
    pub fn note_write(&self, phys: u64) {
        if !self.contains(phys) {
            return;
        }
        let mut dirty = self.0.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        dirty.push(phys & PAGE_MASK);
        self.0.any_dirty.store(true, Ordering::Release);
    }

    fn insert(&self, page: u64) {
        self.0
            .pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(page);
    }

    fn remove(&self, page: u64) {
        self.0
            .pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&page);
    }

    fn clear(&self) {
        self.0
            .pages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn take_dirty(&self) -> Vec<u64> {
        if !self.0.any_dirty.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *self.0.dirty.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A fast hasher for the cache's integer keys (guest addresses and flags
/// are not attacker-chosen hash-flooding material worth SipHash's cost on
/// every dispatch; a guest can only make its own vCPU slower).
#[derive(Clone, Copy, Debug, Default)]
struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, v: u64) {
        // Multiply-rotate mixing (as in FxHash), then fold high bits down
        // because hashbrown takes its bucket index from the low bits.
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
        self.0 ^= self.0 >> 29;
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

/// What identifies a translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TbKey {
    /// Guest virtual pc of the first instruction.
    pub pc: u64,
    /// Guest physical address of `pc`.
    pub phys: u64,
    /// Front-end mode bits that change how code translates.
    pub flags: u64,
}

/// A guest ISA, as the exec loop sees it.
pub trait GuestArch {
    /// The front end's CPU state (starts with the TCG header).
    type State: CpuState;

    /// Where execution continues. An instruction-fetch fault is reported as
    /// the exit the caller should see (usually [`ExitReason::Fault`]).
    fn tb_key(
        &mut self,
        state: &mut Self::State,
        mem: &mut dyn MemoryHandler,
    ) -> Result<TbKey, ExitReason>;

    /// Sets the guest pc, after a block reported where to continue.
    fn set_pc(&mut self, state: &mut Self::State, pc: u64);

    /// Translates the guest code at `key` into `blk` (empty, its pc set).
    /// The block must not cross the guest page of `key.phys`. A fault on the
    /// first instruction is returned as an exit; later ones end the block
    /// early.
    fn translate(
        &mut self,
        state: &mut Self::State,
        mem: &mut dyn MemoryHandler,
        key: TbKey,
        blk: &mut Block,
    ) -> Result<(), ExitReason>;
}

/// What executes blocks.
#[derive(Debug)]
pub enum Engine {
    /// The x86-64 JIT.
    Jit(Box<Jit>),
    /// The IR interpreter.
    Interp(Interpreter),
}

/// Why the exec loop stopped without a guest exit.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A block could not be compiled.
    #[error("cannot compile the block at {pc:#x}: {source}")]
    Compile {
        /// its guest pc
        pc: u64,
        /// why
        #[source]
        source: CompileError,
    },
    /// A block could not run.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The interpreter rejected a block.
    #[error("cannot interpret the block at {pc:#x}: {source}")]
    Interp {
        /// its guest pc
        pc: u64,
        /// why
        #[source]
        source: InterpError,
    },
}

/// Counters, for traces and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Blocks translated.
    pub translations: u64,
    /// Block entries from the exec loop (chained entries are not counted).
    pub dispatches: u64,
    /// Jumps patched.
    pub chains: u64,
    /// Whole-cache flushes.
    pub flushes: u64,
}

#[derive(Debug)]
enum Code {
    Jit(CompiledBlock),
    Interp(Block),
}

#[derive(Debug)]
struct Entry {
    key: TbKey,
    code: Code,
    /// Jumps patched to enter this block.
    incoming: Vec<JumpSite>,
}

/// A vCPU's execution loop with its translation cache.
pub struct Exec<A: GuestArch> {
    /// The front end.
    pub arch: A,
    engine: Engine,
    optimize: bool,
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    by_key: FastMap<TbKey, usize>,
    by_page: FastMap<u64, Vec<usize>>,
    blk: Block,
    scratch: Scratch,
    stats: ExecStats,
    code_pages: CodePages,
}

impl<A: GuestArch> std::fmt::Debug for Exec<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exec")
            .field("engine", &self.engine)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<A: GuestArch> Exec<A> {
    /// An exec loop running `arch` with the JIT and a code cache of
    /// `cache_size` bytes.
    pub fn with_jit(arch: A, cache_size: usize) -> Result<Exec<A>, CompileError> {
        let jit = Jit::new(cache_size, size_of::<A::State>())?;
        Ok(Exec::new(arch, Engine::Jit(Box::new(jit))))
    }

    /// An exec loop running `arch` on `engine`.
    pub fn new(arch: A, engine: Engine) -> Exec<A> {
        Exec {
            arch,
            engine,
            optimize: true,
            entries: Vec::new(),
            free: Vec::new(),
            by_key: FastMap::default(),
            by_page: FastMap::default(),
            blk: Block::new(0),
            scratch: Scratch::default(),
            stats: ExecStats::default(),
            code_pages: CodePages::default(),
        }
    }

    /// Whether blocks are optimized before running (default: yes).
    pub fn set_optimize(&mut self, on: bool) {
        self.optimize = on;
    }

    /// The set of pages with translated code, for the memory handler.
    pub fn code_pages(&self) -> CodePages {
        self.code_pages.clone()
    }

    /// The counters.
    pub fn stats(&self) -> ExecStats {
        self.stats
    }

    /// Drops every translation.
    pub fn flush(&mut self) {
        self.entries.clear();
        self.free.clear();
        self.by_key.clear();
        self.by_page.clear();
        self.code_pages.clear();
        if let Engine::Jit(jit) = &mut self.engine {
            jit.flush();
        }
        self.stats.flushes += 1;
    }

    /// Restores every patched jump to its exit stub and empties the
    /// indirect-jump caches (guest mappings changed).
    pub fn unchain_all(&mut self) {
        if let Engine::Jit(jit) = &mut self.engine {
            jit.invalidate_jump_caches();
        }
        for e in self.entries.iter_mut().flatten() {
            for site in e.incoming.drain(..) {
                if let Engine::Jit(jit) = &mut self.engine {
                    // A stale site is already gone with its code.
                    let _ = jit.unpatch_jump(site);
                }
            }
        }
    }

    /// Drops the translations of code on the guest physical page holding
    /// `phys` (the guest wrote to it) and unchains jumps into them. Must not
    /// be called while translated code runs (from a memory handler): record
    /// the write, request an exit, and invalidate when [`Exec::run`] returns.
    pub fn invalidate_page(&mut self, phys: u64) {
        let Some(list) = self.by_page.remove(&(phys & PAGE_MASK)) else {
            return;
        };
        self.code_pages.remove(phys & PAGE_MASK);
        if let Engine::Jit(jit) = &mut self.engine {
            jit.invalidate_jump_caches();
        }
        for idx in list {
            let Some(e) = self.entries.get_mut(idx).and_then(Option::take) else {
                continue;
            };
            self.by_key.remove(&e.key);
            if let Engine::Jit(jit) = &mut self.engine {
                for site in e.incoming {
                    let _ = jit.unpatch_jump(site);
                }
            }
            self.free.push(idx);
        }
    }

    /// Whether any translation comes from the guest physical page of `phys`
    /// (a memory handler asks this before letting stores to the page take
    /// the TLB fast path).
    pub fn has_code(&self, phys: u64) -> bool {
        self.by_page.contains_key(&(phys & PAGE_MASK))
    }

    fn translate(
        &mut self,
        key: TbKey,
        state: &mut A::State,
        mem: &mut dyn MemoryHandler,
    ) -> Result<Result<usize, ExitReason>, ExecError> {
        self.blk.clear(key.pc);
        if let Err(exit) = self.arch.translate(state, mem, key, &mut self.blk) {
            return Ok(Err(exit));
        }
        if cfg!(debug_assertions) {
            if let Err(e) = crate::ir::verify(&self.blk, size_of::<A::State>()) {
                panic!("front end produced a malformed block: {e}\n{}", self.blk);
            }
        }
        if self.optimize {
            crate::opt::optimize_with(&mut self.blk, &mut self.scratch);
        }
        self.stats.translations += 1;
        log::trace!("translated {key:x?}: {} ops", self.blk.insns.len());
        let code = match &mut self.engine {
            Engine::Interp(_) => Code::Interp(self.blk.clone()),
            Engine::Jit(jit) => match jit.compile(&self.blk) {
                Ok(tb) => Code::Jit(tb),
                Err(CompileError::CacheFull) => {
                    log::debug!(
                        "code cache full at pc {:#x}: flushing all translations",
                        key.pc
                    );
                    self.flush();
                    let Engine::Jit(jit) = &mut self.engine else {
                        unreachable!("engine changed")
                    };
                    match jit.compile(&self.blk) {
                        Ok(tb) => Code::Jit(tb),
                        Err(source) => return Err(ExecError::Compile { pc: key.pc, source }),
                    }
                }
                Err(source) => return Err(ExecError::Compile { pc: key.pc, source }),
            },
        };
        let entry = Entry {
            key,
            code,
            incoming: Vec::new(),
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.entries[i] = Some(entry);
                i
            }
            None => {
                self.entries.push(Some(entry));
                self.entries.len() - 1
            }
        };
        self.by_key.insert(key, idx);
        self.by_page
            .entry(key.phys & PAGE_MASK)
            .or_default()
            .push(idx);
        self.code_pages.insert(key.phys & PAGE_MASK);
        // Stores to this page must reach the handler from now on.
        state.header().tlb.protect_page(key.pc);
        Ok(Ok(idx))
    }

    /// Runs the vCPU until a block exits with something other than a jump
    /// to more guest code (see the module docs).
    pub fn run(
        &mut self,
        state: &mut A::State,
        mem: &mut dyn MemoryHandler,
    ) -> Result<ExitReason, ExecError> {
        let mut chain_from: Option<JumpSite> = None;
        for page in self.code_pages.take_dirty() {
            self.invalidate_page(page);
        }
        loop {
            let key = match self.arch.tb_key(state, mem) {
                Ok(k) => k,
                Err(exit) => return Ok(exit),
            };
            let idx = match self.by_key.get(&key) {
                Some(&i) => i,
                None => {
                    let flushes = self.stats.flushes;
                    let r = self.translate(key, state, mem)?;
                    if self.stats.flushes != flushes {
                        chain_from = None; // its code is gone
                    }
                    match r {
                        Ok(i) => i,
                        Err(exit) => return Ok(exit),
                    }
                }
            };
            let Some(entry) = self.entries.get_mut(idx).and_then(Option::as_mut) else {
                unreachable!("cache index without an entry");
            };
            self.stats.dispatches += 1;
            let reason = match (&mut self.engine, &entry.code) {
                (Engine::Jit(jit), Code::Jit(tb)) => {
                    let hdr = state.header();
                    hdr.tb_flags = key.flags;
                    // Later computed jumps to this pc find the block inline.
                    let _ = jit.jump_cache_insert(hdr, key.pc, key.flags, tb);
                    if let Some(site) = chain_from.take() {
                        if jit.patch_jump(site, tb).is_ok() {
                            entry.incoming.push(site);
                            self.stats.chains += 1;
                        }
                    }
                    let exit = jit.run(tb, state, mem)?;
                    chain_from = exit.jump;
                    exit.reason
                }
                (Engine::Interp(interp), Code::Interp(blk)) => interp
                    .run(blk, state, mem)
                    .map_err(|source| ExecError::Interp { pc: key.pc, source })?,
                _ => unreachable!("code does not match the engine"),
            };
            match reason {
                ExitReason::Chain { pc, .. } | ExitReason::Indirect { pc } => {
                    self.arch.set_pc(state, pc)
                }
                other => return Ok(other),
            }
        }
    }
}
