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

mod cache;
pub mod engine;
pub mod memory;
#[cfg(test)]
mod tests;
pub mod trace;

use std::sync::Arc;

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
    pub stats: ExecStats,
}

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
            pending_link: None,
            run_alone: false,
            step_then_poll: false,
            trace: TraceFlags::default(),
            sink: None,
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
            if self.cpu.has_work(&platform(&self.machine)) {
                // Let the loop's interrupt check deliver what woke it.
                self.exit.request();
                return None;
            }
            self.kick().wait(None);
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
        self.cpu.state().header().tlb.flush();
        self.pending_link = None;
        self.stats.cache_flushes += 1;
    }

    /// Invalidates the blocks on pages guest stores have hit.
    fn handle_written_code(&mut self) {
        let written = std::mem::take(&mut self.code_pages.written);
        for page in written {
            if !self.code_pages.contains(page) {
                continue;
            }
            self.code_pages.remove(page);
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
        let walker = self.cpu.walker();
        self.block.clear(pc);
        let mut fetch = CodeFetch {
            memory: &self.machine.memory,
            walker: &walker,
            mmu_idx: self.cpu.fetch_mmu_idx(),
            ranges: Vec::with_capacity(2),
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
        let code_end = fetch.end;
        crate::opt::optimize_with(&mut self.block, &mut self.opt_scratch);
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
        for (paddr, len) in ranges {
            new_code_page |= self.code_pages.mark(paddr, len);
        }
        if new_code_page {
            // TLB entries may still allow writes to the new code page.
            self.cpu.state().header().tlb.flush();
        }
        self.stats.blocks_translated += 1;
        if self.trace.in_asm || self.trace.op || self.trace.out_asm {
            self.trace_translation(pc, flags, code_end, &code);
        }
        Ok((code, pages))
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
        if self.cpu.powered_off()
            && let Some(exit) = self.wait_for_work()
        {
            return Ok(exit);
        }
        loop {
            if let Some(event) = self.machine.lifecycle.pending() {
                return Ok(lifecycle_exit(event));
            }
            if self.exit.is_requested() {
                self.cpu.state().header().clear_exit_request();
                self.handle_written_code();
                let event = self.cpu.poll_interrupts(&platform(&self.machine));
                if let Some(exit) = self.settle(event) {
                    return Ok(exit);
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
                        Some(exit) => return Ok(exit),
                        None => continue,
                    },
                }
            } else {
                match self.block_at(pc, flags) {
                    Ok(id) => (Some(id), None),
                    Err(Leave::Failed(error)) => return Err(error),
                    Err(Leave::Guest(event)) => match self.settle(event) {
                        Some(exit) => return Ok(exit),
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
                return Ok(exit);
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
        self.cpu
            .set_cpu_state(state)
            .map_err(AccelError::InvalidState)?;
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
            spec,
        }))
    }
}

struct TcgVm {
    frontend: Arc<dyn FrontEnd>,
    options: TcgOptions,
    spec: VmSpec,
}

impl Vm for TcgVm {
    fn create_vcpu(&self, index: u32, boot: &BootState) -> Result<Box<dyn Vcpu>, AccelError> {
        let machine = Machine {
            memory: self.spec.memory.clone(),
            pio: self.spec.pio_bus.clone(),
            mmio: self.spec.mmio_bus.clone(),
            lifecycle: self.spec.lifecycle.clone(),
            interrupts: self.spec.interrupts.clone(),
            clock: self.spec.clock.clone(),
            index,
            cpus: self.spec.cpus,
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
            let jit =
                engine::JitEngine::new(options.code_cache_size, env_size).map_err(|error| {
                    AccelError::Unavailable(format!("the TCG JIT cannot start: {error}"))
                })?;
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
