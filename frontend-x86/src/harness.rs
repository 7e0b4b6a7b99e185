//! A minimal exec loop over accel-tcg's IR interpreter (or, with
//! [`Runner::use_jit`], its x86-64 JIT without chaining), for this crate's
//! tests: translate, optimize, run, dispatch the exit to [`X86Cpu`].
//!
//! It is not moat's exec loop (that one, in accel-tcg, compiles blocks, chains
//! them and tracks code pages); it exists so that the front end can be tested
//! on its own, down to running whole guest images. Blocks are cached by
//! (pc, flags) and never invalidated: no self-modifying code here.

use std::collections::HashMap;

use accel_tcg::ExitReason;
use accel_tcg::backend::x86_64::{CompiledBlock, Jit};
use accel_tcg::guest::{CodeReader, GuestCpu, GuestEvent, PageWalker, Platform};
use accel_tcg::interp::Interpreter;
use accel_tcg::ir::{Block, MemSize};
use accel_tcg::softmmu::{Access, MemFault, MemoryHandler, PAGE_MASK, PAGE_SIZE, Tlb};
use machine::VcpuExit;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::X86Cpu;
use crate::mmu::X86Walker;

/// Guest memory behind the TLB: the walker, RAM and the MMIO bus.
pub struct Memory<'a> {
    /// Address translation.
    pub walker: X86Walker,
    /// RAM.
    pub ram: &'a GuestMemoryMmap,
    /// MMIO.
    pub mmio: &'a devices::Bus,
}

impl Memory<'_> {
    fn host_page(&self, paddr: u64) -> Option<*mut u8> {
        let page = paddr & PAGE_MASK;
        let r = self.ram.find_region(GuestAddress(page))?;
        let end = r.start_addr().0.checked_add(r.len())?;
        if page + PAGE_SIZE > end {
            return None;
        }
        self.ram.get_host_address(GuestAddress(page)).ok()
    }

    fn access(
        &self,
        tlb: &mut Tlb,
        vaddr: u64,
        size: MemSize,
        access: Access,
        value: u64,
    ) -> Result<u64, MemFault> {
        let n = size.bytes() as usize;
        let mut bytes = value.to_le_bytes();
        // Split at a page boundary; translate both pages before touching either.
        let first = ((PAGE_SIZE - (vaddr & !PAGE_MASK)) as usize).min(n);
        let idx = tlb.mmu_idx();
        let t0 = self.walker.translate(self.ram, vaddr, access, idx)?;
        let t1 = if first < n {
            Some(
                self.walker
                    .translate(self.ram, vaddr.wrapping_add(first as u64), access, idx)?,
            )
        } else {
            None
        };
        let parts = [
            (t0.paddr, 0, first),
            (t1.map_or(0, |t| t.paddr), first, n - first),
        ];
        for &(pa, off, len) in &parts {
            if len == 0 {
                continue;
            }
            let chunk = &mut bytes[off..off + len];
            if self.host_page(pa).is_some() {
                let r = if access == Access::Write {
                    self.ram.write_slice(chunk, GuestAddress(pa)).is_ok()
                } else {
                    self.ram.read_slice(chunk, GuestAddress(pa)).is_ok()
                };
                if !r {
                    return Err(MemFault { code: u32::MAX - 1 });
                }
            } else if access == Access::Write {
                self.mmio.write(pa, chunk);
            } else {
                chunk.fill(0xff);
                self.mmio.read(pa, chunk);
            }
        }
        if t1.is_none()
            && let Some(h) = self.host_page(t0.paddr)
        {
            // SAFETY: `h` is a whole page of guest RAM, mapped for the life of
            // `ram`, which outlives every run this TLB is used in (the harness
            // flushes the TLB before a run with other memory).
            unsafe { tlb.fill(vaddr, h, t0.perms) };
        }
        Ok(u64::from_le_bytes(bytes))
    }
}

impl MemoryHandler for Memory<'_> {
    fn load(&mut self, tlb: &mut Tlb, vaddr: u64, size: MemSize) -> Result<u64, MemFault> {
        self.access(tlb, vaddr, size, Access::Read, 0)
            .map(|v| v & size.value_mask())
    }

    fn store(
        &mut self,
        tlb: &mut Tlb,
        vaddr: u64,
        size: MemSize,
        value: u64,
    ) -> Result<(), MemFault> {
        self.access(tlb, vaddr, size, Access::Write, value)
            .map(|_| ())
    }
}

/// Reads code through the walker.
struct Code<'a> {
    walker: X86Walker,
    mmu_idx: usize,
    ram: &'a GuestMemoryMmap,
}

impl CodeReader for Code<'_> {
    fn read(&mut self, vaddr: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        for (i, b) in buf.iter_mut().enumerate() {
            let va = vaddr.wrapping_add(i as u64);
            let t = self
                .walker
                .translate(self.ram, va, Access::Exec, self.mmu_idx)?;
            *b = self
                .ram
                .read_obj::<u8>(GuestAddress(t.paddr))
                .map_err(|_| MemFault { code: u32::MAX - 1 })?;
        }
        Ok(())
    }
}

/// Blocks by (pc, flags).
type BlockMap<T> = HashMap<(u64, u64), T>;

/// Runs an [`X86Cpu`] on the interpreter.
pub struct Runner {
    /// The vCPU.
    pub cpu: X86Cpu,
    cache: HashMap<(u64, u64), Block>,
    interp: Interpreter,
    /// Blocks run so far.
    pub blocks: u64,
    /// Optimize blocks before running them.
    pub optimize: bool,
    jit: Option<(Jit, BlockMap<CompiledBlock>)>,
}

impl Runner {
    /// A runner for `cpu`.
    pub fn new(cpu: X86Cpu) -> Runner {
        Runner {
            cpu,
            cache: HashMap::new(),
            interp: Interpreter::new(),
            blocks: 0,
            optimize: true,
            jit: None,
        }
    }

    /// Runs blocks as host code from accel-tcg's JIT instead of the
    /// interpreter (no chaining: every block returns here).
    pub fn use_jit(&mut self) -> Result<(), String> {
        let jit = Jit::new(1 << 20, size_of::<crate::X86State>()).map_err(|e| e.to_string())?;
        self.jit = Some((jit, HashMap::new()));
        Ok(())
    }

    /// Runs until a lifecycle exit or `max_blocks` blocks (then `None`).
    pub fn run(&mut self, platform: &Platform<'_>, max_blocks: u64) -> Option<VcpuExit> {
        for _ in 0..max_blocks {
            let ev = self.step(platform);
            if let GuestEvent::Exit(e) = ev {
                return Some(e);
            }
        }
        None
    }

    /// Translates (or finds) and runs one block, and handles its exit.
    pub fn step(&mut self, platform: &Platform<'_>) -> GuestEvent {
        self.blocks += 1;
        let pc = self.cpu.pc();
        let flags = self.cpu.tb_flags();
        let walker = self.cpu.walker();
        if !self.cache.contains_key(&(pc, flags)) {
            let mut b = Block::new(pc);
            let mut code = Code {
                walker,
                mmu_idx: self.cpu.fetch_mmu_idx(),
                ram: platform.memory,
            };
            if let Err(f) = self.cpu.translate(pc, flags, &mut code, &mut b, 64) {
                return self
                    .cpu
                    .memory_fault(pc, f.vaddr, Access::Exec, f.fault, platform);
            }
            if let Err(e) = accel_tcg::ir::verify(&b, self.cpu.state.env_size_pub()) {
                panic!("invalid IR at {pc:#x}: {e}\n{b}");
            }
            if self.optimize {
                accel_tcg::opt::optimize(&mut b);
            }
            self.cache.insert((pc, flags), b);
        }
        let Some(b) = self.cache.get(&(pc, flags)) else {
            return GuestEvent::Continue;
        };
        let mut mem = Memory {
            walker,
            ram: platform.memory,
            mmio: platform.mmio,
        };
        let r = match &mut self.jit {
            Some((jit, compiled)) => {
                if let std::collections::hash_map::Entry::Vacant(e) = compiled.entry((pc, flags)) {
                    match jit.compile(b) {
                        Ok(c) => {
                            e.insert(c);
                        }
                        Err(err) => panic!("JIT error at {pc:#x}: {err}\n{b}"),
                    }
                }
                let Some(code) = compiled.get(&(pc, flags)) else {
                    return GuestEvent::Continue;
                };
                match jit.run(code, &mut *self.cpu.state, &mut mem) {
                    Ok(r) => r.reason,
                    Err(e) => panic!("JIT run error at {pc:#x}: {e}\n{b}"),
                }
            }
            None => match self.interp.run(b, &mut *self.cpu.state, &mut mem) {
                Ok(r) => r,
                Err(e) => panic!("interpreter error at {pc:#x}: {e}\n{b}"),
            },
        };
        match r {
            ExitReason::Chain { pc, .. } | ExitReason::Indirect { pc } => {
                self.cpu.set_pc(pc);
                GuestEvent::Continue
            }
            ExitReason::Status { code, pc } => self.cpu.handle_status(code, pc, platform),
            ExitReason::Fault { pc, vaddr, fault } => {
                self.cpu
                    .memory_fault(pc, vaddr, Access::Read, fault, platform)
            }
            ExitReason::HelperExit { pc, code } => self.cpu.helper_exit(code, pc, platform),
            ExitReason::Interrupted { .. } => self.cpu.poll_interrupts(platform),
        }
    }

    /// Forgets every translation (after the test rewrote guest code).
    pub fn flush(&mut self) {
        self.cache.clear();
        if let Some((jit, compiled)) = &mut self.jit {
            compiled.clear();
            jit.flush();
        }
        self.cpu.state.header.tlb.flush();
    }
}

impl crate::X86State {
    /// The CPU-state size IR may address.
    pub fn env_size_pub(&self) -> usize {
        size_of::<crate::X86State>()
    }
}
