//! The interface a guest ISA front end implements for the exec loop.
//!
//! The exec loop ([`crate::exec`]) owns the translation-block cache, the code
//! buffer and the soft-MMU slow path; it knows nothing of any guest ISA. A
//! front end owns its `#[repr(C)]` CPU state (a [`CpuState`] whose first field
//! is the [`crate::softmmu::TcgContextHeader`]), decodes guest code into IR,
//! walks the guest page tables, and handles everything that leaves translated
//! code: instructions it chose to finish in Rust (`exit_status` codes), memory
//! faults, helper exits and interrupts.
//!
//! Memory model: guest virtual addresses go through the front end's
//! [`PageWalker`] to guest physical addresses; guest physical RAM is a
//! `vm_memory::GuestMemoryMmap`, everything else is MMIO on the board's bus.

use devices::{Bus, InterruptController, VmLifecycle};
use machine::{CpuState as MachineCpuState, VcpuExit};
use vm_memory::GuestMemoryMmap;

use crate::ir::Block;
use crate::softmmu::{Access, CpuState, MemFault, PagePerms};

/// A guest virtual page mapped to guest physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageTranslation {
    /// The guest physical address of the translated `vaddr` (not page
    /// aligned: the page offset is kept).
    pub paddr: u64,
    /// What the mapping allows to accesses of the soft-MMU index it was
    /// translated for.
    pub perms: PagePerms,
}

/// The guest's address translation at one moment: a snapshot of the control
/// registers it depends on (page-table base, paging enables, and whatever
/// else decides a translation).
///
/// # Soft-MMU indexes
///
/// Every access comes with the soft-MMU index its IR op named
/// ([`crate::ir::MemOp::mmu_idx`]; [`GuestCpu::fetch_mmu_idx`] for
/// instruction fetch), and the walker translates for the translation regime
/// the front end gave that index, not for the CPU's current privilege: on
/// x86 the user index gets user permissions (U/S must allow it) even while
/// the CPU runs at CPL 0, and the supervisor index gets supervisor ones. The
/// result is cached in that index's TLB only, so the permissions it grants
/// must depend on nothing but the index and the walker's snapshot.
///
/// The exec loop takes a fresh walker from [`GuestCpu::walker`] each time it
/// re-enters translated code after leaving it for the front end, so front ends
/// must end a block (with `exit_status`) at every instruction that changes a
/// translation (writes to CR0/CR3/CR4/EFER, TLB flushes), and flush the TLBs
/// themselves (`GuestCpu::state().header().tlb.flush()`, or
/// `flush_index`/`flush_page`). A privilege change that only changes which
/// index the code uses needs no flush.
pub trait PageWalker {
    /// Translates `vaddr` for `access` by soft-MMU index `mmu_idx` (below
    /// [`crate::softmmu::NB_MMU_MODES`]), setting accessed/dirty bits in
    /// guest page tables as the architecture requires. The error carries the
    /// front end's fault code (on x86, the #PF error code plus a flag that
    /// says it is a page fault); [`GuestCpu::memory_fault`] receives it back.
    fn translate(
        &self,
        memory: &GuestMemoryMmap,
        vaddr: u64,
        access: Access,
        mmu_idx: usize,
    ) -> Result<PageTranslation, MemFault>;

    /// [`PageWalker::translate`] for a data access of `size` bytes (the
    /// slow path's loads, stores and atomics come here), so that a walker
    /// can fault on what depends on the mapping and the size together (Arm
    /// Device memory: every access must be aligned). Such a walker keeps
    /// those pages out of the TLB (no read or write permission in the
    /// result) so that every access reaches it.
    fn translate_sized(
        &self,
        memory: &GuestMemoryMmap,
        vaddr: u64,
        size: u32,
        access: Access,
        mmu_idx: usize,
    ) -> Result<PageTranslation, MemFault> {
        let _ = size;
        self.translate(memory, vaddr, access, mmu_idx)
    }

    /// Whether a data access to a physical address no device claims
    /// faults (with the slow path's bus-error code) instead of reading all
    /// ones and dropping writes (x86's floating bus).
    fn bus_errors(&self) -> bool {
        false
    }
}

/// Reads guest instruction bytes for the translator, through the guest MMU,
/// and records which physical pages the block's code came from (for
/// self-modifying-code detection).
pub trait CodeReader {
    /// Fills `buf` with the code bytes at guest virtual `vaddr`. Fails when a
    /// byte is not mapped executable; the fault is the walker's.
    fn read(&mut self, vaddr: u64, buf: &mut [u8]) -> Result<(), MemFault>;
}

/// The first instruction of a block could not be fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchFault {
    /// The address whose fetch failed (may be past `pc` when the instruction
    /// crosses into an unmapped page).
    pub vaddr: u64,
    /// The walker's fault.
    pub fault: MemFault,
}

/// What the machine around the vCPU offers a front end handling an exit.
pub struct Platform<'a> {
    /// Guest physical RAM.
    pub memory: &'a GuestMemoryMmap,
    /// Port I/O (x86 `in`/`out`).
    pub pio: &'a Bus,
    /// MMIO.
    pub mmio: &'a Bus,
    /// Pending shutdown or reset requests from devices.
    pub lifecycle: &'a VmLifecycle,
    /// The board's interrupt controllers, as this CPU sees them.
    pub interrupts: &'a dyn InterruptController,
    /// This vCPU's index (x86: its APIC ID) and how many the machine has.
    pub cpu: u32,
    pub cpus: u32,
}

/// What the exec loop does after a front end handled an exit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuestEvent {
    /// Keep running at the front end's (possibly updated) pc.
    Continue,
    /// Run the next instruction alone, then look at interrupts (x86's
    /// interrupt shadow after `sti`).
    StepThenPoll,
    /// The CPU waits for an interrupt (x86 `hlt`, Arm `wfi`) or, powered
    /// off, for a start-up request: the exec loop sleeps until a kick, then
    /// asks [`GuestCpu::has_work`].
    Wait,
    /// Stop the vCPU with this lifecycle exit.
    Exit(VcpuExit),
}

/// A guest CPU the exec loop can run.
pub trait GuestCpu: Send {
    /// The `#[repr(C)]` state translated code runs against.
    type State: CpuState;
    /// The address-translation snapshot type.
    type Walker: PageWalker;

    /// The CPU state.
    fn state(&mut self) -> &mut Self::State;

    /// The guest pc (x86: the linear address of the next instruction, i.e.
    /// CS base + rip).
    fn pc(&self) -> u64;

    /// Sets the pc after a block left with a chain, indirect or interrupted exit.
    fn set_pc(&mut self, pc: u64);

    /// The mode bits the translation of code depends on (x86: CS.L, CS.D,
    /// CPL, CR0.PE and anything else the decoder or translator reads). Part
    /// of the translation-block key with the virtual and physical pc.
    fn tb_flags(&self) -> u64;

    /// The soft-MMU index instruction fetch uses now (x86: user at CPL 3,
    /// else supervisor). It must be a function of [`GuestCpu::tb_flags`],
    /// since translated blocks are looked up by those flags.
    fn fetch_mmu_idx(&self) -> usize {
        0
    }

    /// The current address translation.
    fn walker(&self) -> Self::Walker;

    /// Translates guest code starting at `pc` into `block` (which is empty,
    /// with `block.pc == pc`). `flags` is `tb_flags()` at translation time.
    ///
    /// The block ends at a branch, at an instruction the front end finishes
    /// in Rust (`exit_status`), before an instruction that would cross the
    /// end of the page following the one `pc` is on, or after
    /// `max_insns` instructions. If an instruction other than the first cannot
    /// be fetched, the block ends before it (`goto_tb` to its address), so
    /// the fault is raised precisely when that block runs. If the first cannot
    /// be fetched, nothing is emitted and the fault is returned.
    fn translate(
        &mut self,
        pc: u64,
        flags: u64,
        code: &mut dyn CodeReader,
        block: &mut Block,
        max_insns: usize,
    ) -> Result<(), FetchFault>;

    /// A block left with `exit_status(code)` at the instruction at `pc`.
    fn handle_status(&mut self, code: u64, pc: u64, platform: &Platform<'_>) -> GuestEvent;

    /// A memory access (or instruction fetch, `access == Exec`) at `vaddr`
    /// faulted in the instruction at `pc`. Deliver the architectural
    /// exception (or crash, for x86 a triple fault).
    fn memory_fault(
        &mut self,
        pc: u64,
        vaddr: u64,
        access: Access,
        fault: MemFault,
        platform: &Platform<'_>,
    ) -> GuestEvent;

    /// A helper call asked to leave the block (`helper_exit` = `code`) in the
    /// instruction at `pc`.
    fn helper_exit(&mut self, code: u32, pc: u64, platform: &Platform<'_>) -> GuestEvent;

    /// The exit request was set: deliver pending interrupts, if any.
    fn poll_interrupts(&mut self, platform: &Platform<'_>) -> GuestEvent;

    /// A waiting CPU (after [`GuestEvent::Wait`], or powered off) was kicked:
    /// `Continue` if it runs again now (an interrupt it takes, a start-up
    /// request, which it applies), `Wait` to sleep on, or `Exit` (nothing can
    /// ever wake it, nor any other CPU).
    fn has_work(&mut self, platform: &Platform<'_>) -> GuestEvent;

    /// Whether the CPU starts powered off, waiting (secondary CPUs).
    fn powered_off(&self) -> bool {
        false
    }

    /// Guest disassembly of `bytes` (code at `pc`, decoded in mode `flags`),
    /// one line per instruction, for `--trace in_asm`.
    fn disassemble(&self, pc: u64, flags: u64, bytes: &[u8]) -> Vec<String> {
        let _ = (flags, bytes);
        vec![format!("{pc:#x}: (no disassembler for this guest)")]
    }

    /// The architectural state, for reports and tests.
    fn cpu_state(&self) -> MachineCpuState;

    /// Replaces the architectural state.
    fn set_cpu_state(&mut self, state: &MachineCpuState) -> Result<(), machine::AccelError>;
}
