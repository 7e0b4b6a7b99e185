//! The exec loop: runs a front end's guest CPU by translating blocks of guest
//! code, caching them, chaining them, and handing everything that leaves
//! translated code back to the front end. Also the [`TcgAccelerator`], moat's
//! `Accelerator` for emulation.
//!
//! ```text
//!   ┌────────────► lifecycle request? ──► VcpuExit
//!   │                  │ no
//!   │         pc, flags, phys_pc (walker; fetch fault → front end)
//!   │                  │
//!   │       TB cache hit? ── no ──► translate ─► optimize ─► engine.compile
//!   │                  │                                   (cache full: flush all)
//!   │      link previous chain exit to it (same page only)
//!   │                  │
//!   │          engine.run (SoftMmu slow path: RAM / MMIO / SMC)
//!   │                  │
//!   └── chain / indirect: set pc; status / fault / helper: front end decides
//! ```
//!
//! Self-modifying code: pages holding translated code are never writable
//! through the TLB, so a store to one takes the slow path, which records the
//! page and raises the exit request; before the next block the loop
//! invalidates that page's blocks and unlinks jumps into them. The store's own
//! block finishes first, so a block that rewrites instructions later in itself
//! sees the change only from the next block on (x86 requires a branch or a
//! serializing instruction between cross-modification and execution anyway).
//!
//! # Cross-modifying code between vCPUs
//!
//! Each vCPU has its own code cache and TLB, so a store by vCPU A into code
//! vCPU B translated must reach B. The VM's [`SharedCodePages`] (one per VM,
//! in every vCPU's [`Machine`]) records, per guest physical page, which vCPUs
//! have code there; the protocol keeps one invariant: *while any vCPU has
//! code on a page, no vCPU's TLB lets stores to it take the fast path*.
//!
//! - TLB fills ([`memory::fill_tlb`]) drop write permission for a page that
//!   is code for any vCPU, so every store to it reaches the slow path.
//! - A slow-path store (or atomic) to RAM runs under the page's registry
//!   lock: it posts the written range to the inbox of every *other* vCPU
//!   with code on the page and kicks it, and only then writes. The writer's
//!   own code is handled as before (`SMC_RESTART`, the instruction run
//!   alone). A kicked vCPU leaves translated code at its next block entry,
//!   takes its inbox, and drops its blocks on pages whose translated bytes
//!   the ranges overlap (`handle_written_code`), before it enters another
//!   block. Stores to a page with no code anywhere stay on the fast path.
//! - When a translation makes a page code for the first vCPU (no vCPU had
//!   code there), TLB entries filled writable before may exist in any vCPU.
//!   The translating vCPU runs a *shootdown*: it bumps the VM's generation,
//!   kicks every other *active* vCPU and waits until each has flushed its
//!   TLB and acknowledged a generation at least as new (they do so at the
//!   exit-request check before their next block). While it waits it answers
//!   shootdowns aimed at itself, so two vCPUs translating at once both go on.
//! - *Active* means inside `run_guest` and not asleep. A vCPU going to sleep
//!   in `wait_for_work`, or whose run ends, marks itself inactive and is not
//!   waited for (so a shootdown never wakes idle or powered-off CPUs); it
//!   flushes its TLB and acknowledges the current generation whenever it
//!   becomes active again. Both sides use `SeqCst` fences around the active
//!   flag (a Dekker pattern): either the shooter sees the vCPU active and
//!   waits for it, or the vCPU's later TLB fills see the page registered.
//! - The wait is bounded ([`SHOOTDOWN_TIMEOUT`], one second): a vCPU stuck
//!   outside translated code (a device access that blocks) must not hang
//!   moat; the shooter logs a warning and goes on, and that vCPU's stores
//!   through its stale entry may then go unseen until its next flush.
//! - Translation reads guest bytes without a lock, so a concurrent store may
//!   land between the read and the registration. After registering (which
//!   takes each page's lock, so an in-flight slow-path store has finished)
//!   and the shootdown (after which no fast-path store to the page remains),
//!   the translator compares the bytes it read with memory and translates
//!   again if they differ. Every store after that point is posted. So a
//!   translation never mixes old and new instructions, and the code B runs
//!   is at worst stale until its next block entry.
//!
//! Memory ordering: x86's cross-modifying-code rule makes the executing CPU
//! responsible for serializing (a serializing instruction such as `cpuid`,
//! in practice after seeing a flag the modifier set after its store) before
//! it runs the new code. Here the modifier's post and kick happen before its
//! store, the kick's exit-request store is a release, and the host is x86-64
//! (TSO): an executing vCPU that has seen the store (or the flag after it)
//! sees its exit request at its next block entry and drops the stale blocks
//! first. A block boundary is at least what x86 requires, since a branch or
//! serializing instruction ends a block (or comes before the next check).
//! What a vCPU runs between the store and its next block entry is the old
//! code, which x86 also allows until the executing CPU serializes.
//!
//! Not covered: stores that do not come from a vCPU (device DMA, loaders)
//! are not checked against translated code.
mod cache;
pub mod engine;
pub mod memory;
mod shared;
#[cfg(test)]
mod tests;
pub mod trace;

use std::sync::Arc;
use std::time::{Duration, Instant};

use devices::{Bus, InterruptController, LifecycleEvent, VmLifecycle};
use machine::{
    AccelError, AccelKind, Accelerator, Arch, BootState, CpuState as MachineCpuState, Isolation,
    Vcpu, VcpuExit, Vm, VmSpec,
};
use vm_memory::GuestMemoryMmap;

use crate::ExitReason;
use crate::guest::{GuestCpu, GuestEvent, PageWalker, Platform};
use crate::ir::Block;
use crate::softmmu::{Access, CpuState, ExitRequest, MemFault, PAGE_MASK};
pub use cache::{TbCache, TbId, TbKey};
use engine::{Engine, EngineError};
use memory::{CodeFetch, CodePages, SoftMmu};
pub use shared::{MAX_VCPUS, SharedCodePages};
use trace::{TraceFlags, TraceSink, disassemble_host};

/// Most guest instructions in one block.
pub const MAX_BLOCK_INSNS: usize = 512;

/// What the exec loop needs of the machine.
pub struct Machine {
    pub memory: GuestMemoryMmap,
    pub pio: Arc<Bus>,
    pub mmio: Arc<Bus>,
    pub lifecycle: Arc<VmLifecycle>,
    pub interrupts: Arc<dyn InterruptController>,
    /// The VM clock guest time counters derive from.
    pub clock: Arc<devices::Clock>,
    /// Which vCPU this is, of how many.
    pub index: u32,
    pub cpus: u32,
    /// Which vCPUs have code on which pages, shared by all of the VM's
    /// vCPUs (one per VM: [`SharedCodePages::new`]).
    pub shared_code: Arc<SharedCodePages>,
}

/// Counters for tests, traces and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExecStats {
    pub blocks_translated: u64,
    pub blocks_executed: u64,
    pub chains_linked: u64,
    pub pages_invalidated: u64,
    pub cache_flushes: u64,
}

/// One vCPU under TCG: a front end's CPU, an engine, and the caches.
pub struct TcgVcpu<G: GuestCpu, E: Engine> {
    cpu: Box<G>,
    engine: E,
    cache: TbCache<E::Code, E::Site>,
    /// Which block each chainable jump belongs to.
    site_owner: cache::FastMap<E::Site, TbId>,
    code_pages: CodePages,
    machine: Machine,
    block: Block,
    /// The optimizer's buffers, kept between translations.
    opt_scratch: crate::opt::Scratch,
    /// Whether blocks go through the optimizer ([`TcgVcpu::set_optimize`]).
    optimize: bool,
    /// A chain exit whose target the next iteration may link to.
    pending_link: Option<E::Site>,
    /// Run the next instruction alone (after [`memory::SMC_RESTART`]).
    run_alone: bool,
    /// Run the next instruction alone, then poll interrupts (an interrupt
    /// shadow); unlike `run_alone` it may not write translated code.
    step_then_poll: bool,
    trace: TraceFlags,
    sink: Option<TraceSink>,
    /// The CPU's exit-request word: set by lifecycle requests from any thread
    /// and by stores to code pages.
    exit: ExitRequest,
    /// What other vCPUs posted, taken out of the shared inbox.
    posted: shared::Posted,
    pub stats: ExecStats,
}

/// How long a vCPU that made a page code waits for the others to drop
/// writable TLB entries for it before it goes on regardless (with a
/// warning): a vCPU stuck outside translated code must not hang moat.
const SHOOTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// Translations of one block made before giving up for one loop iteration
/// because another vCPU keeps rewriting the bytes while they are read.
const TRANSLATE_ATTEMPTS: usize = 4;

impl<G: GuestCpu, E: Engine> TcgVcpu<G, E> {
    pub fn new(cpu: G, engine: E, machine: Machine) -> Self {
        let mut cpu = Box::new(cpu);
        let exit = cpu.state().header().exit_request();
        let vcpu = TcgVcpu {
            cpu,
            exit,
            engine,
            cache: TbCache::default(),
            site_owner: cache::FastMap::default(),
            code_pages: CodePages::default(),
            machine,
            block: Block::new(0),
            opt_scratch: crate::opt::Scratch::default(),
            optimize: true,
            pending_link: None,
            run_alone: false,
            step_then_poll: false,
            trace: TraceFlags::default(),
            sink: None,
            posted: shared::Posted::default(),
            stats: ExecStats::default(),
        };
        // SAFETY: `vcpu.exit` keeps the word alive; `Drop` unregisters it
        // before `vcpu.exit` is dropped.
        unsafe { vcpu.kick().set_exit_word(vcpu.exit.word()) };
        vcpu
    }

    fn kick(&self) -> &devices::VcpuKick {
        self.machine.lifecycle.vcpu(self.machine.index)
    }

    /// Sleeps until the waiting CPU has work or a lifecycle request comes.
    fn wait_for_work(&mut self) -> Option<VcpuExit> {
        loop {
            if let Some(event) = self.machine.lifecycle.pending() {
                return Some(lifecycle_exit(event));
            }
            self.cpu.state().header().clear_exit_request();
            match self.cpu.has_work(&platform(&self.machine)) {
                GuestEvent::Continue | GuestEvent::StepThenPoll => {
                    // Let the loop's interrupt check deliver what woke it (and
                    // look at what other vCPUs posted meanwhile).
                    self.exit.request();
                    return None;
                }
                GuestEvent::Exit(exit) => return Some(exit),
                GuestEvent::Wait => {
                    // Asleep, this vCPU answers no shootdowns: it flushes its
                    // TLB when it wakes instead.
                    self.machine.shared_code.deactivate(self.machine.index);
                    self.kick().wait(None);
                    self.activate();
                }
            }
        }
    }

    /// Starts taking part in shootdowns: from now on other vCPUs wait for
    /// this one, whose TLB holds no entry from before.
    fn activate(&mut self) {
        let shared = &self.machine.shared_code;
        shared.activate(self.machine.index);
        let generation = shared.generation();
        self.cpu.state().header().tlb.flush();
        shared.ack(self.machine.index, generation);
    }

    /// Flushes the TLB if another vCPU asked, since it last did, for
    /// writable entries to go (a page became code).
    fn answer_shootdown(&mut self) {
        let shared = &self.machine.shared_code;
        if let Some(generation) = shared.pending_shootdown(self.machine.index) {
            self.cpu.state().header().tlb.flush();
            shared.ack(self.machine.index, generation);
        }
    }

    /// Makes every other running vCPU drop TLB entries that allow writes to
    /// a page that just became code, and waits until they have (or
    /// [`SHOOTDOWN_TIMEOUT`] passed), answering their shootdowns meanwhile
    /// so two vCPUs shooting at each other both go on.
    fn shootdown(&mut self) {
        let me = self.machine.index;
        let generation = self.machine.shared_code.shootdown_begin(me);
        // This vCPU's own entries go too (after the bump, so an earlier
        // generation is covered as well).
        self.cpu.state().header().tlb.flush();
        self.machine.shared_code.ack(me, generation);
        let start = Instant::now();
        let mut polls = 0u32;
        while !self.machine.shared_code.shootdown_done(me, generation) {
            self.answer_shootdown();
            if start.elapsed() > SHOOTDOWN_TIMEOUT {
                log::warn!(
                    "TCG vCPU {me}: vCPUs {:?} did not drop writable TLB entries for new code \
                     within {SHOOTDOWN_TIMEOUT:?}; going on (their stores to it may go unseen)",
                    self.machine.shared_code.shootdown_late(me, generation)
                );
                return;
            }
            polls += 1;
            if polls < 100 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// Turns on `--trace` events, written to `sink`.
    pub fn set_trace(&mut self, flags: TraceFlags, sink: TraceSink) {
        self.trace = flags;
        self.sink = Some(sink);
    }

    fn trace_translation(&self, pc: u64, flags: u64, end: u64, code: &E::Code) {
        let Some(sink) = &self.sink else { return };
        let mut text = String::new();
        if self.trace.in_asm {
            let walker = self.cpu.walker();
            let mut fetch = CodeFetch {
                memory: &self.machine.memory,
                walker: &walker,
                mmu_idx: self.cpu.fetch_mmu_idx(),
                ranges: Vec::new(),
                bytes: Vec::new(),
                end: 0,
            };
            let mut bytes = vec![0u8; end.saturating_sub(pc).min(1 << 16) as usize];
            text.push_str(&format!("IN: {pc:#x}\n"));
            // The decoder reads ahead: show only the block's instructions,
            // up to the last one the IR marks.
            let last = self
                .block
                .insns
                .iter()
                .filter_map(|insn| match insn.op {
                    crate::ir::Op::InsnStart { pc } => Some(pc),
                    _ => None,
                })
                .max()
                .unwrap_or(pc);
            if crate::guest::CodeReader::read(&mut fetch, pc, &mut bytes).is_ok() {
                for line in self.cpu.disassemble(pc, flags, &bytes) {
                    let addr = line
                        .split(':')
                        .next()
                        .and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok());
                    if addr.is_some_and(|a| a > last) {
                        break;
                    }
                    text.push_str(&format!("  {line}\n"));
                }
            }
        }
        if self.trace.op {
            text.push_str(&format!("OP: {pc:#x}\n{}\n", self.block));
        }
        if self.trace.out_asm
            && let Some((addr, bytes)) = self.engine.host_code(code)
        {
            text.push_str(&format!("OUT: {pc:#x} ({} bytes)\n", bytes.len()));
            text.push_str(&disassemble_host(addr, &bytes));
        }
        if !text.is_empty() {
            sink.write(&text);
        }
    }

    /// Turns the IR optimizer off (or back on) for blocks translated from now
    /// on, so tests can check the front end's IR as it is against the
    /// optimized IR. On by default.
    pub fn set_optimize(&mut self, optimize: bool) {
        self.optimize = optimize;
    }

    /// The front end's CPU, for tests.
    pub fn cpu(&mut self) -> &mut G {
        &mut self.cpu
    }

    /// Drops every translation (the code cache is full, or memory changed).
    fn flush_all(&mut self) {
        self.engine.flush();
        self.cache.clear();
        self.site_owner.clear();
        self.code_pages.clear();
        self.machine.shared_code.unregister_all(self.machine.index);
        self.cpu.state().header().tlb.flush();
        self.pending_link = None;
        self.stats.cache_flushes += 1;
    }

    /// Invalidates the blocks on pages guest stores have hit: this vCPU's
    /// own (recorded by its slow path), and those other vCPUs posted.
    fn handle_written_code(&mut self) {
        self.machine
            .shared_code
            .take_posted(self.machine.index, &mut self.posted);
        if self.posted.overflow {
            log::debug!(
                "TCG vCPU {}: too many cross-vCPU code writes; dropping every translation",
                self.machine.index
            );
            self.flush_all();
            return;
        }
        for &(paddr, len) in &self.posted.writes {
            if self.code_pages.overlaps(paddr, len) {
                self.code_pages.written.push(paddr & PAGE_MASK);
            }
        }
        let written = std::mem::take(&mut self.code_pages.written);
        for page in written {
            if !self.code_pages.contains(page) {
                continue;
            }
            self.code_pages.remove(page);
            self.machine
                .shared_code
                .unregister(page, self.machine.index);
            self.stats.pages_invalidated += 1;
            for id in self.cache.invalidate_page(page) {
                let incoming = self
                    .cache
                    .get_mut(id)
                    .map(|tb| std::mem::take(&mut tb.incoming))
                    .unwrap_or_default();
                for site in incoming {
                    self.engine.unlink(site);
                }
            }
            // The pending exit may come from a block that just went away.
            self.pending_link = None;
            self.engine.invalidate_jump_caches();
        }
    }

    /// Finds or translates the block at the current pc. `Err` carries the
    /// event a fetch fault produced.
    /// The guest physical address of the code at `pc`: from the execute tag
    /// of the fetch index's TLB when it has one (the front end flushes the
    /// TLB whenever the translation changes), else by a page walk that then
    /// fills that TLB.
    fn code_phys(&mut self, pc: u64, walker: &G::Walker) -> Result<u64, GuestEvent> {
        let mmu_idx = self.cpu.fetch_mmu_idx();
        let Some(tlb) = self.cpu.state().header().tlb.get_mut(mmu_idx) else {
            // A front-end bug; the fault at least reaches the front end.
            let fault = MemFault::BAD_MMU_IDX;
            return Err(self.cpu.memory_fault(
                pc,
                pc,
                Access::Exec,
                fault,
                &platform(&self.machine),
            ));
        };
        if let Some(host) = tlb.lookup(pc, 1, Access::Exec)
            && let Some(phys) = memory::host_to_guest_phys(&self.machine.memory, host)
        {
            return Ok(phys);
        }
        match walker.translate(&self.machine.memory, pc, Access::Exec, mmu_idx) {
            Ok(t) => {
                let tlb = &mut self.cpu.state().header().tlb[mmu_idx];
                memory::fill_tlb(
                    &self.machine.memory,
                    &self.code_pages,
                    &self.machine.shared_code,
                    tlb,
                    pc,
                    t.paddr,
                    t.perms,
                );
                Ok(t.paddr)
            }
            Err(fault) => {
                Err(self
                    .cpu
                    .memory_fault(pc, pc, Access::Exec, fault, &platform(&self.machine)))
            }
        }
    }

    fn block_at(&mut self, pc: u64, flags: u64) -> Result<TbId, Leave> {
        let walker = self.cpu.walker();
        let phys_pc = self.code_phys(pc, &walker).map_err(Leave::Guest)?;
        let key = TbKey { pc, phys_pc, flags };
        if let Some(id) = self.cache.lookup(&key) {
            return Ok(id);
        }
        let (code, pages) = self.translate(pc, flags, MAX_BLOCK_INSNS)?;
        let sites = self.engine.sites(&code);
        let id = self.cache.insert(key, code, pages);
        for site in sites {
            self.site_owner.insert(site, id);
        }
        Ok(id)
    }

    /// Translates and compiles up to `max_insns` instructions at `pc`, and
    /// marks the bytes they came from as code. Returns the code and the
    /// physical pages it came from.
    fn translate(
        &mut self,
        pc: u64,
        flags: u64,
        max_insns: usize,
    ) -> Result<(E::Code, Vec<u64>), Leave> {
        for _ in 0..TRANSLATE_ATTEMPTS {
            if let Some(done) = self.translate_once(pc, flags, max_insns)? {
                return Ok(done);
            }
        }
        // Another vCPU keeps rewriting this code while it is read: go round
        // the loop (which sees lifecycle requests) and try again.
        log::debug!(
            "TCG vCPU {}: code at {pc:#x} keeps changing while translated",
            self.machine.index
        );
        Err(Leave::Guest(GuestEvent::Continue))
    }

    /// One attempt of [`Self::translate`]: `None` if the bytes changed
    /// before their pages were registered (the translation is dropped).
    fn translate_once(
        &mut self,
        pc: u64,
        flags: u64,
        max_insns: usize,
    ) -> Result<Option<Translation<E::Code>>, Leave> {
        let walker = self.cpu.walker();
        self.block.clear(pc);
        let mut fetch = CodeFetch {
            memory: &self.machine.memory,
            walker: &walker,
            mmu_idx: self.cpu.fetch_mmu_idx(),
            ranges: Vec::with_capacity(2),
            bytes: Vec::new(),
            end: pc,
        };
        if let Err(fault) = self
            .cpu
            .translate(pc, flags, &mut fetch, &mut self.block, max_insns)
        {
            return Err(Leave::Guest(self.cpu.memory_fault(
                pc,
                fault.vaddr,
                Access::Exec,
                fault.fault,
                &platform(&self.machine),
            )));
        }
        let pages = fetch.pages();
        let ranges = std::mem::take(&mut fetch.ranges);
        let bytes = std::mem::take(&mut fetch.bytes);
        let code_end = fetch.end;
        if self.optimize {
            crate::opt::optimize_with(&mut self.block, &mut self.opt_scratch);
        }
        let code = match self.engine.compile(&self.block) {
            Ok(code) => code,
            Err(EngineError::CacheFull) => {
                self.flush_all();
                self.engine
                    .compile(&self.block)
                    .map_err(|error| self.internal_error(error))?
            }
            Err(error) => return Err(self.internal_error(error)),
        };
        let mut new_code_page = false;
        for &(paddr, len) in &ranges {
            new_code_page |= self.code_pages.mark(paddr, len);
        }
        // Registering takes each page's lock, so a store another vCPU is
        // making there has finished (and later ones are posted here).
        let mut new_for_vm = false;
        for &page in &pages {
            new_for_vm |= self.machine.shared_code.register(page, self.machine.index);
        }
        if new_for_vm {
            // Any vCPU's TLB may still allow writes to the new code page.
            self.shootdown();
        } else if new_code_page {
            self.cpu.state().header().tlb.flush();
        }
        // A store made before registration (or through a TLB entry the
        // shootdown removed) may have changed the bytes after they were
        // read: then this translation mixes old and new code.
        if !memory::code_unchanged(&self.machine.memory, &ranges, &bytes) {
            return Ok(None);
        }
        self.stats.blocks_translated += 1;
        if self.trace.in_asm || self.trace.op || self.trace.out_asm {
            self.trace_translation(pc, flags, code_end, &code);
        }
        Ok(Some((code, pages)))
    }

    /// moat's own failure, not the guest's: the run ends with an error that
    /// says so (and where the guest was).
    fn internal_error(&self, error: EngineError) -> Leave {
        Leave::Failed(AccelError::Translator {
            pc: self.cpu.pc(),
            source: Box::new(error),
        })
    }

    /// Links the previous block's chain exit to `target` when both are on the
    /// same guest page (so a change of page tables cannot make the link wrong).
    fn link_pending(&mut self, target: TbId) {
        let Some(site) = self.pending_link.take() else {
            return;
        };
        let Some(&from) = self.site_owner.get(&site) else {
            return;
        };
        let (Some(source), Some(dest)) = (self.cache.get(from), self.cache.get(target)) else {
            return;
        };
        if !source.valid || !dest.valid || source.key.pc & PAGE_MASK != dest.key.pc & PAGE_MASK {
            return;
        }
        if self.engine.link(site, &dest.code)
            && let Some(dest) = self.cache.get_mut(target)
        {
            dest.incoming.push(site);
            self.stats.chains_linked += 1;
        }
    }

    /// Runs until a lifecycle event.
    pub fn run_guest(&mut self) -> Result<VcpuExit, AccelError> {
        loop {
            // Only returns `None` after 2^64 loop iterations.
            if let Some(exit) = self.run_blocks(u64::MAX)? {
                return Ok(exit);
            }
        }
    }

    /// Runs until a lifecycle event or until the loop has gone round
    /// `max_blocks` times (then `None`; a later call carries on where this one
    /// stopped), so a test guest that never stops cannot hang its test.
    ///
    /// The budget counts the loop's iterations: entries into translated code
    /// from the loop, and faults or interrupt checks handled without running a
    /// block. Blocks the JIT reaches through a chain link or its indirect-jump
    /// cache do not come back to the loop and are not counted; such a chain
    /// runs until something requests an exit (a lifecycle request, a kick).
    /// Waiting for work (a halted CPU) sleeps as in [`TcgVcpu::run_guest`].
    pub fn run_blocks(&mut self, max_blocks: u64) -> Result<Option<VcpuExit>, AccelError> {
        self.activate();
        // Stores other vCPUs made while this one was not running.
        self.handle_written_code();
        let result = self.run_loop(max_blocks);
        // Stopped: nobody waits for this vCPU's shootdown answers (it
        // flushes its TLB when it runs again).
        self.machine.shared_code.deactivate(self.machine.index);
        result
    }

    fn run_loop(&mut self, max_blocks: u64) -> Result<Option<VcpuExit>, AccelError> {
        if self.cpu.powered_off()
            && let Some(exit) = self.wait_for_work()
        {
            return Ok(Some(exit));
        }
        let mut budget = max_blocks;
        loop {
            if let Some(event) = self.machine.lifecycle.pending() {
                return Ok(Some(lifecycle_exit(event)));
            }
            if budget == 0 {
                return Ok(None);
            }
            budget -= 1;
            if self.exit.is_requested() {
                self.cpu.state().header().clear_exit_request();
                self.answer_shootdown();
                self.handle_written_code();
                let event = self.cpu.poll_interrupts(&platform(&self.machine));
                if let Some(exit) = self.settle(event) {
                    return Ok(Some(exit));
                }
                continue;
            }

            let pc = self.cpu.pc();
            let flags = self.cpu.tb_flags();
            let shadow = std::mem::take(&mut self.step_then_poll);
            let allow_code_writes = std::mem::take(&mut self.run_alone);
            let alone = allow_code_writes || shadow;
            // After a store that would have modified translated code, the
            // storing instruction runs alone, from a block nobody else enters.
            let (id, one_off) = if alone {
                match self.translate(pc, flags, 1) {
                    Ok((code, _)) => (None, Some(code)),
                    Err(Leave::Failed(error)) => return Err(error),
                    Err(Leave::Guest(event)) => match self.settle(event) {
                        Some(exit) => return Ok(Some(exit)),
                        None => continue,
                    },
                }
            } else {
                match self.block_at(pc, flags) {
                    Ok(id) => (Some(id), None),
                    Err(Leave::Failed(error)) => return Err(error),
                    Err(Leave::Guest(event)) => match self.settle(event) {
                        Some(exit) => return Ok(Some(exit)),
                        None => continue,
                    },
                }
            };
            if self.trace.exec {
                // Every entry is traced, so blocks are never linked.
                self.pending_link = None;
                if let Some(sink) = &self.sink {
                    sink.write(&format!("Trace: [{pc:#018x}] flags {flags:#x}\n"));
                }
            } else if let Some(id) = id {
                self.link_pending(id);
            } else {
                self.pending_link = None;
            }

            let walker = self.cpu.walker();
            let code = match (&one_off, id) {
                (Some(code), _) => code,
                (None, Some(id)) => match self.cache.get(id) {
                    Some(tb) => &tb.code,
                    None => continue,
                },
                (None, None) => continue,
            };
            let mut mmu = SoftMmu {
                memory: &self.machine.memory,
                mmio: &self.machine.mmio,
                walker,
                code_pages: &mut self.code_pages,
                shared: &self.machine.shared_code,
                cpu: self.machine.index,
                exit_request: &self.exit,
                last_fault_access: Access::Read,
                allow_code_writes,
                smc_page: None,
            };
            if one_off.is_none() {
                self.engine
                    .prepare(self.cpu.state().header(), pc, flags, code);
            }
            let exit = self
                .engine
                .run(code, self.cpu.state(), &mut mmu)
                .map_err(|error| AccelError::Translator {
                    pc,
                    source: Box::new(error),
                })?;
            let fault_access = mmu.last_fault_access;
            let smc_page = mmu.smc_page;
            if one_off.is_some() {
                // Its chain exit belongs to no cached block.
                self.pending_link = None;
            }
            if shadow {
                self.exit.request();
            }
            self.stats.blocks_executed += 1;

            let platform = platform(&self.machine);
            let handled_by_front_end = matches!(
                exit.reason,
                ExitReason::Status { .. }
                    | ExitReason::Fault { .. }
                    | ExitReason::HelperExit { .. }
            );
            let event = match exit.reason {
                ExitReason::Chain { pc, .. } => {
                    self.cpu.set_pc(pc);
                    if one_off.is_none() {
                        self.pending_link = exit.site;
                    }
                    GuestEvent::Continue
                }
                ExitReason::Fault { pc, fault, .. } if fault.code == memory::SMC_RESTART => {
                    // Nothing of the storing instruction happened: drop the
                    // code it would modify, then run it alone.
                    if let Some(page) = smc_page {
                        self.code_pages.written.push(page);
                    }
                    self.handle_written_code();
                    self.cpu.set_pc(pc);
                    self.run_alone = true;
                    GuestEvent::Continue
                }
                ExitReason::Indirect { pc } | ExitReason::Interrupted { pc } => {
                    self.cpu.set_pc(pc);
                    GuestEvent::Continue
                }
                ExitReason::Status { code, pc } => self.cpu.handle_status(code, pc, &platform),
                ExitReason::Fault { pc, vaddr, fault } => {
                    self.cpu
                        .memory_fault(pc, vaddr, fault_access, fault, &platform)
                }
                ExitReason::HelperExit { pc, code } => self.cpu.helper_exit(code, pc, &platform),
            };
            if handled_by_front_end {
                // The front end may have changed the address translation
                // (page tables, paging mode): inline indirect jumps must look
                // blocks up afresh.
                self.engine.invalidate_jump_caches();
            }
            if let Some(exit) = self.settle(event) {
                return Ok(Some(exit));
            }
        }
    }

    /// Carries out what the front end decided: the exit that ends the run, if
    /// it is one (a wait returns once the CPU has work again).
    fn settle(&mut self, event: GuestEvent) -> Option<VcpuExit> {
        match event {
            GuestEvent::Continue => None,
            GuestEvent::StepThenPoll => {
                self.step_then_poll = true;
                None
            }
            GuestEvent::Exit(exit) => Some(exit),
            GuestEvent::Wait => self.wait_for_work(),
        }
    }
}

/// A block's compiled code and the physical pages its bytes came from.
type Translation<C> = (C, Vec<u64>);

/// Why a step of the loop did not produce code to run.
enum Leave {
    /// The front end handled the guest's side of it (a fault, an exit).
    Guest(GuestEvent),
    /// moat itself failed.
    Failed(AccelError),
}

fn lifecycle_exit(event: LifecycleEvent) -> VcpuExit {
    match event {
        LifecycleEvent::Shutdown(status) => VcpuExit::Shutdown(status),
        LifecycleEvent::Reset => VcpuExit::Reset,
    }
}

fn platform(machine: &Machine) -> Platform<'_> {
    Platform {
        memory: &machine.memory,
        pio: &machine.pio,
        mmio: &machine.mmio,
        lifecycle: &machine.lifecycle,
        interrupts: machine.interrupts.as_ref(),
        cpu: machine.index,
        cpus: machine.cpus,
    }
}

impl<G: GuestCpu, E: Engine> Drop for TcgVcpu<G, E> {
    fn drop(&mut self) {
        log::debug!("TCG vCPU statistics: {:?}", self.stats);
        let shared = &self.machine.shared_code;
        shared.deactivate(self.machine.index);
        shared.unregister_all(self.machine.index);
        // SAFETY: unregistering the kick word before the CPU is freed.
        unsafe { self.kick().set_exit_word(std::ptr::null()) };
    }
}

impl<G: GuestCpu + 'static, E: Engine + Send + 'static> Vcpu for TcgVcpu<G, E> {
    fn run(&mut self) -> Result<VcpuExit, AccelError> {
        self.run_guest()
    }

    fn cpu_state(&self) -> Result<MachineCpuState, AccelError> {
        Ok(self.cpu.cpu_state())
    }

    fn set_cpu_state(&mut self, state: &MachineCpuState) -> Result<(), AccelError> {
        self.cpu.set_cpu_state(state)?;
        // Translations depend on the mode; the simplest correct answer.
        self.flush_all();
        Ok(())
    }
}

/// A guest ISA front end as the accelerator sees it: makes vCPUs.
pub trait FrontEnd: Send + Sync {
    fn arch(&self) -> Arch;
    /// Builds vCPU `index` starting in `boot` on `machine`, with `options`.
    fn create_vcpu(
        &self,
        machine: Machine,
        index: u32,
        boot: &BootState,
        options: &TcgOptions,
    ) -> Result<Box<dyn Vcpu>, AccelError>;
}

/// Which engine runs translated blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// Host code from the x86-64 backend.
    Jit,
    /// The IR interpreter: slow, portable, the reference.
    Interpreter,
}

/// Settings of the TCG accelerator.
#[derive(Debug, Clone)]
pub struct TcgOptions {
    pub engine: EngineKind,
    /// Bytes of host code the JIT's cache may hold before it is flushed.
    pub code_cache_size: usize,
    /// `--trace` events and where they go.
    pub trace: TraceFlags,
    pub trace_sink: Option<TraceSink>,
}

impl Default for TcgOptions {
    fn default() -> Self {
        TcgOptions {
            engine: EngineKind::Jit,
            code_cache_size: 64 << 20,
            trace: TraceFlags::default(),
            trace_sink: None,
        }
    }
}

/// moat's emulation accelerator.
pub struct TcgAccelerator {
    frontends: Vec<Arc<dyn FrontEnd>>,
    options: TcgOptions,
}

impl TcgAccelerator {
    pub fn new(frontends: Vec<Arc<dyn FrontEnd>>, options: TcgOptions) -> Self {
        TcgAccelerator { frontends, options }
    }
}

impl Accelerator for TcgAccelerator {
    fn kind(&self) -> AccelKind {
        AccelKind::Tcg
    }

    fn isolation(&self) -> Isolation {
        Isolation::None
    }

    fn supports(&self, arch: Arch) -> bool {
        self.frontends.iter().any(|f| f.arch() == arch)
    }

    fn create_vm(&self, spec: VmSpec) -> Result<Box<dyn Vm>, AccelError> {
        let frontend = self
            .frontends
            .iter()
            .find(|f| f.arch() == spec.arch)
            .cloned()
            .ok_or(AccelError::UnsupportedArch {
                accel: AccelKind::Tcg,
                arch: spec.arch,
            })?;
        Ok(Box::new(TcgVm {
            frontend,
            options: self.options.clone(),
            shared_code: SharedCodePages::new(spec.lifecycle.clone()),
            spec,
        }))
    }
}

struct TcgVm {
    frontend: Arc<dyn FrontEnd>,
    options: TcgOptions,
    /// One registry for all the VM's vCPUs.
    shared_code: Arc<SharedCodePages>,
    spec: VmSpec,
}

impl Vm for TcgVm {
    fn create_vcpu(&self, index: u32, boot: &BootState) -> Result<Box<dyn Vcpu>, AccelError> {
        if index >= self.shared_code.capacity() {
            return Err(AccelError::TooManyVcpus {
                index,
                max: self.shared_code.capacity().min(MAX_VCPUS),
            });
        }
        let machine = Machine {
            memory: self.spec.memory.clone(),
            pio: self.spec.pio_bus.clone(),
            mmio: self.spec.mmio_bus.clone(),
            lifecycle: self.spec.lifecycle.clone(),
            interrupts: self.spec.interrupts.clone(),
            clock: self.spec.clock.clone(),
            index,
            cpus: self.spec.cpus,
            shared_code: self.shared_code.clone(),
        };
        self.frontend
            .create_vcpu(machine, index, boot, &self.options)
    }
}

/// Builds a vCPU for a front end's CPU with the engine `options` ask for.
pub fn make_vcpu<G, S>(
    cpu: G,
    machine: Machine,
    options: &TcgOptions,
) -> Result<Box<dyn Vcpu>, AccelError>
where
    G: GuestCpu<State = S> + 'static,
    S: CpuState,
{
    let env_size = std::mem::size_of::<S>();
    Ok(match options.engine {
        EngineKind::Interpreter => Box::new(traced(
            TcgVcpu::new(cpu, engine::InterpEngine::new(env_size), machine),
            options,
        )),
        EngineKind::Jit => {
            let jit = engine::JitEngine::new(options.code_cache_size, env_size)
                .map_err(|error| AccelError::host("starting the TCG JIT", error))?;
            Box::new(traced(TcgVcpu::new(cpu, jit, machine), options))
        }
    })
}

/// Applies the trace options to a new vCPU.
fn traced<G: GuestCpu, E: Engine>(mut vcpu: TcgVcpu<G, E>, options: &TcgOptions) -> TcgVcpu<G, E> {
    if options.trace.any() {
        let sink = options.trace_sink.clone().unwrap_or_else(TraceSink::stderr);
        vcpu.set_trace(options.trace, sink);
    }
    vcpu
}
