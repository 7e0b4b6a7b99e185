//! Guest memory for translated code: the per-vCPU soft-MMU TLBs, the
//! CPU-state header that holds them, and the slow path behind them.
//!
//! Every front end's CPU state is a `#[repr(C)]` struct whose first field is a
//! [`TcgContextHeader`] (see [`CpuState`]). Generated code holds a pointer to
//! that struct in a fixed host register, so the header's fields (exit
//! request, exit report, TLB) are at known offsets, checked at compile time
//! below.
//!
//! # Soft-MMU indexes
//!
//! A vCPU has one [`Tlb`] per soft-MMU index ([`NB_MMU_MODES`] of them,
//! grouped in a [`TlbSet`]): one per translation regime, such as user and
//! supervisor. Every guest memory op in the IR names its index
//! ([`MemOp::mmu_idx`]), so a privilege change needs no TLB flush (each
//! regime keeps its own entries) and an instruction can access memory with
//! another privilege than the current one. Generated code knows the index
//! at compile time: the TLB it looks in is a constant offset from the
//! CPU-state pointer, so the fast path costs the same as with one TLB. The
//! slow path hands the handler the TLB of the access's index, which
//! [`Tlb::mmu_idx`] names, and the exec loop's page walker translates for
//! the regime that index stands for.
//!
//! # One TLB
//!
//! Each TLB is direct-mapped by virtual page number: entry
//! `(vaddr >> PAGE_BITS) % TLB_SIZE` holds, for one guest page, a tag per
//! access kind (read, write, execute: the page-aligned guest address, or
//! [`TLB_INVALID`]) and the `addend` that turns a guest virtual address into a
//! host address. The inline fast path in generated code is:
//!
//! ```text
//! index = (addr >> (PAGE_BITS - ENTRY_BITS)) & ((TLB_SIZE - 1) << ENTRY_BITS)
//! if tlb[index].tag == (addr + size - 1) & PAGE_MASK: host access at addr + addend
//! else: call the slow path
//! ```
//!
//! Comparing the page of the access's *last* byte with the tag of the page of
//! its first byte sends every page-crossing access to the slow path, so the
//! fast path never touches two host pages. The slow path ([`load`], [`store`])
//! looks at the TLB again (the interpreter uses the same functions, so it
//! agrees with the JIT by construction) and otherwise asks the
//! [`MemoryHandler`] that whoever embeds this crate provides: it walks the
//! guest page tables, fills the TLB for next time (RAM pages only; MMIO pages
//! stay out of the TLB so every access reaches the device bus) and performs
//! the access, or returns a [`MemFault`].
//!
//! # Atomics
//!
//! `atomic_rmw` and `atomic_cmpxchg` are translated like stores (the write
//! tag must match). On a hit generated code uses a lock-prefixed
//! instruction on the host address (`lock xadd`, `xchg`, `lock cmpxchg`, a
//! `lock cmpxchg` loop for and/or/xor), so vCPU threads sharing guest RAM
//! see them as indivisible. The slow path ([`atomic`]) does the same on the
//! host pointer when the TLB maps the page, and otherwise asks
//! [`MemoryHandler::atomic`], which for RAM does it on the host pointer and
//! for MMIO reads, computes and writes on the bus. On x86-64 hosts the host
//! operation is a `lock cmpxchg` loop in inline assembly, which is atomic
//! for unaligned addresses too (a split lock: slow, but correct). Other
//! hosts use `std::sync::atomic` for aligned addresses and fall back to one
//! process-wide lock for unaligned ones, which is atomic only against other
//! slow-path atomics, not against plain stores.
//!
//! # Precise faults
//!
//! A fault leaves the block with the pc of the most recent `insn_start`. The
//! ops after the faulting access do not run, so a front end keeps guest state
//! precise by writing the guest registers an instruction changes only after
//! that instruction's last memory access (compute into temps, access memory,
//! then `st_env`). The optimizer's dead-store elimination never drops a store
//! of an earlier instruction that a fault could observe: such stores become
//! `st_env_fault`, which generated code performs on the fault path only.

use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::ir::{AtomicOp, MemOp, MemSize, Ty};

/// log2 of the guest page size the TLB maps.
pub const PAGE_BITS: u32 = 12;
/// Guest page size the TLB maps.
pub const PAGE_SIZE: u64 = 1 << PAGE_BITS;
/// Mask that keeps the page part of an address.
pub const PAGE_MASK: u64 = !(PAGE_SIZE - 1);
/// log2 of the number of TLB entries.
pub const TLB_BITS: u32 = 8;
/// Number of TLB entries.
pub const TLB_SIZE: usize = 1 << TLB_BITS;
/// log2 of the size of a [`TlbEntry`].
pub const TLB_ENTRY_BITS: u32 = 5;
/// Tag of an entry that matches no access: its low bits are set, and the
/// fast path compares against page-aligned values.
pub const TLB_INVALID: u64 = u64::MAX;
/// Number of soft-MMU indexes: TLBs per vCPU, one per translation regime.
/// Front ends give each index a meaning (x86: supervisor and user).
pub const NB_MMU_MODES: usize = 4;

/// One TLB entry: tags per access kind and the guest-to-host addend.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    /// Page address if loads may use `addend`, else [`TLB_INVALID`].
    pub addr_read: u64,
    /// Page address if stores may use `addend`, else [`TLB_INVALID`].
    pub addr_write: u64,
    /// Page address if instruction fetch may use `addend`, else
    /// [`TLB_INVALID`].
    pub addr_code: u64,
    /// `host address - guest virtual address` for this page (wrapping).
    pub addend: u64,
}

impl TlbEntry {
    /// An entry that matches nothing.
    pub const INVALID: TlbEntry = TlbEntry {
        addr_read: TLB_INVALID,
        addr_write: TLB_INVALID,
        addr_code: TLB_INVALID,
        addend: 0,
    };
}

const _: () = assert!(size_of::<TlbEntry>() == 1 << TLB_ENTRY_BITS);

/// Which kinds of access a TLB entry allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PagePerms {
    /// Loads.
    pub read: bool,
    /// Stores.
    pub write: bool,
    /// Instruction fetch.
    pub exec: bool,
}

impl PagePerms {
    /// Read, write and execute.
    pub const RWX: PagePerms = PagePerms {
        read: true,
        write: true,
        exec: true,
    };
    /// Read only.
    pub const R: PagePerms = PagePerms {
        read: true,
        write: false,
        exec: false,
    };
}

/// Kind of a memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Exec,
}

/// The soft-MMU TLB of one vCPU for one soft-MMU index (cache-line
/// aligned).
///
/// Entries hold host pointers, so they can only be set through the unsafe
/// [`Tlb::fill`]; reading them is safe. Not `Clone`: a copy would outlive
/// the promise `fill`'s caller made about the pointers.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Tlb {
    entries: [TlbEntry; TLB_SIZE],
    /// The soft-MMU index whose translations this TLB caches.
    mmu_idx: usize,
}

impl Default for Tlb {
    /// An empty TLB for index 0.
    fn default() -> Self {
        Tlb::new(0)
    }
}

impl Tlb {
    /// An empty TLB for soft-MMU index `mmu_idx`.
    pub const fn new(mmu_idx: usize) -> Tlb {
        Tlb {
            entries: [TlbEntry::INVALID; TLB_SIZE],
            mmu_idx,
        }
    }

    /// The soft-MMU index (translation regime) this TLB caches: a
    /// [`MemoryHandler`] that fills it must translate for that regime.
    pub const fn mmu_idx(&self) -> usize {
        self.mmu_idx
    }

    /// The entry index for `vaddr`.
    #[inline]
    pub const fn index(vaddr: u64) -> usize {
        ((vaddr >> PAGE_BITS) as usize) & (TLB_SIZE - 1)
    }

    /// The entries, indexed by virtual page number modulo [`TLB_SIZE`].
    pub fn entries(&self) -> &[TlbEntry; TLB_SIZE] {
        &self.entries
    }

    /// Invalidates every entry (guest TLB flush, page-table switch).
    pub fn flush(&mut self) {
        self.entries.fill(TlbEntry::INVALID);
    }

    /// Invalidates the entry for the page holding `vaddr`, if it maps it.
    pub fn flush_page(&mut self, vaddr: u64) {
        let page = vaddr & PAGE_MASK;
        let e = &mut self.entries[Self::index(vaddr)];
        if e.addr_read == page || e.addr_write == page || e.addr_code == page {
            *e = TlbEntry::INVALID;
        }
    }

    /// Removes write permission for the page holding `vaddr` (it now holds
    /// translated code, so stores must reach the handler).
    pub fn protect_page(&mut self, vaddr: u64) {
        let page = vaddr & PAGE_MASK;
        let e = &mut self.entries[Self::index(vaddr)];
        if e.addr_write == page {
            e.addr_write = TLB_INVALID;
        }
    }

    /// Maps the guest page holding `vaddr` to the host page at `host_page`
    /// for the accesses in `perms`, replacing whatever the entry held.
    ///
    /// # Safety
    ///
    /// `host_page` must point to [`PAGE_SIZE`] bytes that stay valid for the
    /// allowed accesses (readable; writable if `perms.write`) until this entry
    /// is replaced or flushed, and that nothing else accesses in a way that
    /// conflicts with generated code reading and writing them at any time
    /// while the vCPU runs (guest RAM).
    pub unsafe fn fill(&mut self, vaddr: u64, host_page: *mut u8, perms: PagePerms) {
        let page = vaddr & PAGE_MASK;
        let tag = |ok: bool| if ok { page } else { TLB_INVALID };
        self.entries[Self::index(vaddr)] = TlbEntry {
            addr_read: tag(perms.read),
            addr_write: tag(perms.write),
            addr_code: tag(perms.exec),
            addend: (host_page as u64).wrapping_sub(page),
        };
    }

    /// The host address for an access of `size` bytes at `vaddr`, if the TLB
    /// maps it for `access` without crossing a page (the same test as the
    /// inline fast path).
    #[inline]
    pub fn lookup(&self, vaddr: u64, size: u32, access: Access) -> Option<*mut u8> {
        let e = &self.entries[Self::index(vaddr)];
        let tag = match access {
            Access::Read => e.addr_read,
            Access::Write => e.addr_write,
            Access::Exec => e.addr_code,
        };
        let last_page = vaddr.wrapping_add(size as u64 - 1) & PAGE_MASK;
        (tag == last_page).then(|| vaddr.wrapping_add(e.addend) as *mut u8)
    }
}

/// The TLBs of one vCPU, one per soft-MMU index (see the module docs), and
/// a count of full flushes for tests and statistics.
///
/// Indexing (`set[i]`) panics for `i >= NB_MMU_MODES`; [`TlbSet::get_mut`]
/// does not.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct TlbSet {
    tlbs: [Tlb; NB_MMU_MODES],
    flushes: u64,
}

impl Default for TlbSet {
    fn default() -> Self {
        TlbSet {
            tlbs: std::array::from_fn(Tlb::new),
            flushes: 0,
        }
    }
}

impl TlbSet {
    /// The TLB of soft-MMU index `mmu_idx`, if there is one.
    #[inline]
    pub fn get(&self, mmu_idx: usize) -> Option<&Tlb> {
        self.tlbs.get(mmu_idx)
    }

    /// The TLB of soft-MMU index `mmu_idx`, if there is one.
    #[inline]
    pub fn get_mut(&mut self, mmu_idx: usize) -> Option<&mut Tlb> {
        self.tlbs.get_mut(mmu_idx)
    }

    /// Invalidates every entry of every index (guest TLB flush, page-table
    /// switch), and counts the flush.
    pub fn flush(&mut self) {
        for tlb in &mut self.tlbs {
            tlb.flush();
        }
        self.flushes += 1;
    }

    /// Invalidates every entry of one index (ignored if there is no such
    /// index); not counted by [`TlbSet::flushes`].
    pub fn flush_index(&mut self, mmu_idx: usize) {
        if let Some(tlb) = self.tlbs.get_mut(mmu_idx) {
            tlb.flush();
        }
    }

    /// Invalidates the page holding `vaddr` in every index.
    pub fn flush_page(&mut self, vaddr: u64) {
        for tlb in &mut self.tlbs {
            tlb.flush_page(vaddr);
        }
    }

    /// Removes write permission for the page holding `vaddr` in every index.
    pub fn protect_page(&mut self, vaddr: u64) {
        for tlb in &mut self.tlbs {
            tlb.protect_page(vaddr);
        }
    }

    /// How many times [`TlbSet::flush`] ran since the set was made.
    pub fn flushes(&self) -> u64 {
        self.flushes
    }
}

impl std::ops::Index<usize> for TlbSet {
    type Output = Tlb;
    fn index(&self, mmu_idx: usize) -> &Tlb {
        &self.tlbs[mmu_idx]
    }
}

impl std::ops::IndexMut<usize> for TlbSet {
    fn index_mut(&mut self, mmu_idx: usize) -> &mut Tlb {
        &mut self.tlbs[mmu_idx]
    }
}

/// A guest memory fault reported by a [`MemoryHandler`]. The code means
/// whatever the front end wants (page fault, bus error, alignment...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemFault {
    /// Front-end defined fault code.
    pub code: u32,
}

impl MemFault {
    /// Reported when a block accesses memory while no handler is installed.
    pub const NO_HANDLER: MemFault = MemFault { code: u32::MAX };
    /// An access that had to be aligned was not.
    pub const UNALIGNED: MemFault = MemFault { code: u32::MAX - 3 };
    /// An access named a soft-MMU index at or above [`NB_MMU_MODES`] (a
    /// malformed block; the verifier rejects it).
    pub const BAD_MMU_IDX: MemFault = MemFault { code: u32::MAX - 4 };
}

/// Guest memory behind the TLB: what the embedder provides.
///
/// Values are exchanged in little-endian value order, zero-extended: a
/// 2-byte load of bytes `[0x34, 0x12]` returns `0x1234`. Byte swapping for
/// big-endian accesses and sign extension happen in the core.
///
/// `tlb` is the TLB of the access's soft-MMU index ([`Tlb::mmu_idx`]): the
/// handler translates for the regime that index stands for and may fill
/// `tlb` (RAM pages only) so later accesses to the page take the fast path. An access may cross a page boundary; the handler
/// performs it whole or faults without side effects. Handlers must not
/// panic: they are called from generated code through `extern "C"` frames,
/// where a panic aborts the process.
pub trait MemoryHandler {
    /// The fault for an access that must be aligned and is not (the access
    /// did not happen). The default, [`MemFault::UNALIGNED`], reaches the
    /// front end's `memory_fault`, which raises its architecture's fault.
    fn unaligned(&mut self, vaddr: u64, size: MemSize, access: Access) -> MemFault {
        let _ = (vaddr, size, access);
        MemFault::UNALIGNED
    }
    /// Fetches `size` bytes of guest code at `vaddr` (front ends' decoders,
    /// through [`fetch`]); the default reads like a load.
    fn fetch(&mut self, tlb: &mut Tlb, vaddr: u64, size: MemSize) -> Result<u64, MemFault> {
        self.load(tlb, vaddr, size)
    }
    /// Loads `size` bytes at guest virtual address `vaddr`.
    fn load(&mut self, tlb: &mut Tlb, vaddr: u64, size: MemSize) -> Result<u64, MemFault>;
    /// Stores the low `size` bytes of `value` at `vaddr`.
    fn store(
        &mut self,
        tlb: &mut Tlb,
        vaddr: u64,
        size: MemSize,
        value: u64,
    ) -> Result<(), MemFault>;
    /// Performs `rmw` at `vaddr` as one indivisible access, translated for
    /// a write, and returns the old contents (little-endian value order).
    /// Handlers of memory other threads share must override this: the
    /// default is a [`MemoryHandler::load`] then, unless `rmw` leaves memory
    /// alone, a [`MemoryHandler::store`], which is atomic only for a single
    /// vCPU (enough for MMIO and single-threaded tests).
    fn atomic(&mut self, tlb: &mut Tlb, vaddr: u64, rmw: &Rmw) -> Result<u64, MemFault> {
        let old = self.load(tlb, vaddr, rmw.size)?;
        if let Some(new) = rmw.apply(old) {
            self.store(tlb, vaddr, rmw.size, new)?;
        }
        Ok(old)
    }
}

/// An atomic read-modify-write as the slow path hands it to a
/// [`MemoryHandler`]: what to store given the old value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rmw {
    /// What to do.
    pub kind: RmwKind,
    /// Access size.
    pub size: MemSize,
    /// The operands and the result are big-endian in guest memory: the
    /// operation works on byte-swapped values (see [`Rmw::apply`]).
    pub big_endian: bool,
}

/// The operation of an [`Rmw`], with its operands (guest values, not yet
/// truncated to the access size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmwKind {
    /// `atomic_rmw`: store `op(old, v)`.
    Op(AtomicOp, u64),
    /// `atomic_cmpxchg`: store `new` if the old value equals `expected`.
    Cmpxchg {
        /// the value memory must hold
        expected: u64,
        /// the value stored if it does
        new: u64,
    },
}

impl Rmw {
    /// Given the old memory contents `raw` (little-endian value order, as
    /// [`MemoryHandler`] exchanges them), the contents to store, or `None`
    /// when memory stays as it is (a failed compare-and-swap).
    pub fn apply(&self, raw: u64) -> Option<u64> {
        let mop = MemOp {
            size: self.size,
            signed: false,
            big_endian: self.big_endian,
            aligned: false,
            mmu_idx: 0,
        };
        let mask = self.size.value_mask();
        let old = mop.to_le(raw & mask);
        let new = match self.kind {
            RmwKind::Op(op, v) => op.apply(old, v),
            RmwKind::Cmpxchg { expected, new } => {
                if old != expected & mask {
                    return None;
                }
                new
            }
        };
        Some(mop.to_le(new & mask))
    }
}

/// The translator's part of a CPU state: the first field of every front
/// end's `#[repr(C)]` CPU-state struct.
///
/// Generated code reads and writes it through the CPU-state pointer; the
/// offsets it uses are the `*_OFFSET` constants below.
#[repr(C, align(64))]
pub struct TcgContextHeader {
    /// Points to the exit-request word in `exit_flag`, which generated code
    /// tests at every block entry. The word lives outside the CPU state so
    /// other threads can set it ([`ExitRequest`]) while the vCPU thread holds
    /// the state exclusively.
    exit_request: *const AtomicU32,
    /// Set nonzero by a helper with [`crate::ir::HelperFlags::may_exit`] to
    /// leave the block after the call; the exec loop clears it.
    pub helper_exit: u32,
    /// How the last block left (written by generated code; see [`crate::ExitReason`]).
    pub exit_kind: u32,
    /// Chain slot of a `goto_tb` exit.
    pub exit_slot: u32,
    /// Guest pc reported by the last exit.
    pub exit_pc: u64,
    /// Extra exit information (patch location, status or fault code).
    pub exit_aux: u64,
    /// Guest virtual address of the last memory fault.
    pub fault_addr: u64,
    /// Translation flags of the code running now (the exec loop sets it
    /// from [`crate::exec::TbKey::flags`]); the inline indirect-jump lookup
    /// compares it.
    pub tb_flags: u64,
    /// Which JIT (and which of its invalidation epochs) filled `jmp_cache`.
    pub(crate) jc_tag: u64,
    mem: Option<NonNull<dyn MemoryHandler>>,
    /// Owns the word `exit_request` points to.
    exit_flag: Arc<AtomicU32>,
    /// The soft-MMU TLBs, one per soft-MMU index.
    pub tlb: TlbSet,
    /// Indirect-jump cache: guest pc and flags to code, looked up inline by
    /// `exit_indirect` so computed jumps between cached blocks never leave
    /// generated code. Filled and validated by the JIT
    /// ([`crate::backend::x86_64::Jit`]).
    pub(crate) jmp_cache: JumpCache,
}

/// log2 of the number of indirect-jump cache entries.
pub const JMP_CACHE_BITS: u32 = 9;
/// Number of indirect-jump cache entries.
pub const JMP_CACHE_SIZE: usize = 1 << JMP_CACHE_BITS;
/// log2 of the size of a [`JumpCacheEntry`].
pub const JMP_CACHE_ENTRY_BITS: u32 = 5;
/// The `flags` of an empty jump-cache entry; front ends never use it as
/// translation flags.
pub const JMP_CACHE_INVALID: u64 = u64::MAX;

/// One indirect-jump cache entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JumpCacheEntry {
    /// Guest pc.
    pub pc: u64,
    /// Translation flags ([`JMP_CACHE_INVALID`]: empty).
    pub flags: u64,
    /// Host address of the block's code.
    pub code: u64,
    pub(crate) _pad: u64,
}

impl JumpCacheEntry {
    /// An entry that matches nothing.
    pub const INVALID: JumpCacheEntry = JumpCacheEntry {
        pc: 0,
        flags: JMP_CACHE_INVALID,
        code: 0,
        _pad: 0,
    };
}

const _: () = assert!(size_of::<JumpCacheEntry>() == 1 << JMP_CACHE_ENTRY_BITS);

/// The indirect-jump cache (cache-line aligned).
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct JumpCache {
    pub entries: [JumpCacheEntry; JMP_CACHE_SIZE],
}

impl JumpCache {
    /// The entry index for guest pc `pc`; generated code computes the same.
    #[inline]
    pub const fn index(pc: u64) -> usize {
        ((pc ^ (pc >> 10)) as usize) & (JMP_CACHE_SIZE - 1)
    }
}

// SAFETY: the handler pointer is only dereferenced while `with_handler`
// keeps the handler borrowed, on the thread that runs the vCPU; the
// exit-request pointer targets the `Arc` the header owns, which is `Sync`.
// Moving the header between threads between runs is fine.
unsafe impl Send for TcgContextHeader {}

/// Offset of the pointer to the exit-request word.
pub const EXIT_REQUEST_OFFSET: usize = std::mem::offset_of!(TcgContextHeader, exit_request);
/// Offset of [`TcgContextHeader::helper_exit`].
pub const HELPER_EXIT_OFFSET: usize = std::mem::offset_of!(TcgContextHeader, helper_exit);
/// Offset of [`TcgContextHeader::exit_kind`].
pub const EXIT_KIND_OFFSET: usize = std::mem::offset_of!(TcgContextHeader, exit_kind);
/// Offset of [`TcgContextHeader::exit_slot`].
pub const EXIT_SLOT_OFFSET: usize = std::mem::offset_of!(TcgContextHeader, exit_slot);
/// Offset of [`TcgContextHeader::exit_pc`].
pub const EXIT_PC_OFFSET: usize = std::mem::offset_of!(TcgContextHeader, exit_pc);
/// Offset of [`TcgContextHeader::exit_aux`].
pub const EXIT_AUX_OFFSET: usize = std::mem::offset_of!(TcgContextHeader, exit_aux);
/// Offset of [`TcgContextHeader::tlb`]: the TLB of index 0.
pub const TLB_OFFSET: usize = std::mem::offset_of!(TcgContextHeader, tlb);
/// Distance between the TLBs of consecutive soft-MMU indexes.
pub const TLB_STRIDE: usize = size_of::<Tlb>();

/// Offset in the header of the TLB of soft-MMU index `mmu_idx`.
pub const fn tlb_offset(mmu_idx: usize) -> usize {
    TLB_OFFSET + mmu_idx * TLB_STRIDE
}
/// Offset of [`TcgContextHeader::tb_flags`].
pub const TB_FLAGS_OFFSET: usize = std::mem::offset_of!(TcgContextHeader, tb_flags);
/// Offset of the indirect-jump cache.
pub const JMP_CACHE_OFFSET: usize = std::mem::offset_of!(TcgContextHeader, jmp_cache);
/// Size of the header: IR may not address CPU-state bytes below this.
pub const HEADER_SIZE: usize = size_of::<TcgContextHeader>();

const _: () = assert!(EXIT_REQUEST_OFFSET == 0);
const _: () = assert!(HELPER_EXIT_OFFSET == 8);
const _: () = assert!(EXIT_KIND_OFFSET == 12);
const _: () = assert!(EXIT_SLOT_OFFSET == 16);
const _: () = assert!(EXIT_PC_OFFSET == 24);
const _: () = assert!(EXIT_AUX_OFFSET == 32);
const _: () = assert!(TLB_OFFSET.is_multiple_of(64));
const _: () = assert!(JMP_CACHE_OFFSET.is_multiple_of(64));
const _: () =
    assert!(JMP_CACHE_OFFSET + JMP_CACHE_SIZE * size_of::<JumpCacheEntry>() < i32::MAX as usize);
const _: () = assert!(std::mem::offset_of!(JumpCacheEntry, pc) == 0);
const _: () = assert!(std::mem::offset_of!(JumpCacheEntry, flags) == 8);
const _: () = assert!(std::mem::offset_of!(JumpCacheEntry, code) == 16);
// The fast path addresses entries with a 32-bit displacement: the constant
// offset of the access's TLB plus the entry's field.
const _: () = assert!(std::mem::offset_of!(TlbSet, tlbs) == 0);
const _: () = assert!(std::mem::offset_of!(Tlb, entries) == 0);
const _: () = assert!(TLB_STRIDE.is_multiple_of(64));
const _: () =
    assert!(tlb_offset(NB_MMU_MODES) + TLB_SIZE * size_of::<TlbEntry>() < i32::MAX as usize);
// The slow path's packed access descriptor has two bits for the index.
const _: () = assert!(NB_MMU_MODES <= 4);
const _: () = assert!(std::mem::offset_of!(TlbEntry, addr_read) == 0);
const _: () = assert!(std::mem::offset_of!(TlbEntry, addr_write) == 8);
const _: () = assert!(std::mem::offset_of!(TlbEntry, addr_code) == 16);
const _: () = assert!(std::mem::offset_of!(TlbEntry, addend) == 24);

impl Default for TcgContextHeader {
    fn default() -> Self {
        TcgContextHeader::new()
    }
}

impl std::fmt::Debug for TcgContextHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcgContextHeader")
            .field("exit_request", &self.exit_flag.load(Ordering::Relaxed))
            .field("helper_exit", &self.helper_exit)
            .field("exit_kind", &self.exit_kind)
            .field("exit_pc", &self.exit_pc)
            .finish_non_exhaustive()
    }
}

impl TcgContextHeader {
    /// A header with an empty TLB and no handler.
    pub fn new() -> TcgContextHeader {
        let exit_flag = Arc::new(AtomicU32::new(0));
        TcgContextHeader {
            exit_request: Arc::as_ptr(&exit_flag),
            exit_flag,
            helper_exit: 0,
            exit_kind: 0,
            exit_slot: 0,
            exit_pc: 0,
            exit_aux: 0,
            fault_addr: 0,
            tb_flags: 0,
            jc_tag: 0,
            mem: None,
            tlb: TlbSet::default(),
            jmp_cache: JumpCache {
                entries: [JumpCacheEntry::INVALID; JMP_CACHE_SIZE],
            },
        }
    }

    /// A handle through which any thread can make this vCPU leave
    /// translated code at the next block entry.
    pub fn exit_request(&self) -> ExitRequest {
        ExitRequest(Arc::clone(&self.exit_flag))
    }

    /// Asks the vCPU to leave translated code at the next block entry.
    pub fn request_exit(&self) {
        self.exit_flag.store(1, Ordering::Release);
    }

    /// Clears an exit request (the exec loop's caller, after handling it).
    pub fn clear_exit_request(&self) {
        self.exit_flag.store(0, Ordering::Release);
    }

    /// Whether an exit is requested.
    pub fn exit_requested(&self) -> bool {
        self.exit_flag.load(Ordering::Acquire) != 0
    }

    /// Installs `handler` for slow-path accesses, runs `f`, and removes it
    /// again, so the handler is only reachable while it is borrowed.
    pub fn with_handler<R>(
        &mut self,
        handler: &mut dyn MemoryHandler,
        f: impl FnOnce(&mut Self) -> R,
    ) -> R {
        let ptr: NonNull<dyn MemoryHandler + '_> = NonNull::from(handler);
        // SAFETY: only the lifetime is erased; the pointer is removed below
        // before `handler`'s borrow ends, and `f` cannot observe it except
        // through the slow path, which runs inside `f`.
        let ptr: NonNull<dyn MemoryHandler + 'static> = unsafe { std::mem::transmute(ptr) };
        let old = self.mem.replace(ptr);
        let r = f(self);
        self.mem = old;
        r
    }
}

/// Makes a vCPU leave translated code at its next block entry: interrupts,
/// timers, pause requests from other threads.
#[derive(Clone, Debug)]
pub struct ExitRequest(Arc<AtomicU32>);

impl ExitRequest {
    /// Requests the exit.
    pub fn request(&self) {
        self.0.store(1, Ordering::Release);
    }

    /// Whether an exit is requested.
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::Acquire) != 0
    }

    /// The word itself, for code that can only store to a raw pointer (a
    /// signal handler). It stays valid while this handle (or any clone) lives.
    pub fn word(&self) -> *const AtomicU32 {
        Arc::as_ptr(&self.0)
    }
}

/// A CPU state that translated code can run against.
///
/// # Safety
///
/// The implementing type must be `#[repr(C)]` with a [`TcgContextHeader`]
/// as its first field, and every byte after the header that IR may address
/// with `ld_env`/`st_env` must belong to plain integer fields (any bit
/// pattern valid), since generated code reads and writes them as raw bytes.
pub unsafe trait CpuState: Sized {
    /// The header.
    fn header(&mut self) -> &mut TcgContextHeader {
        // SAFETY: the trait's contract puts the header at offset 0.
        unsafe { &mut *(self as *mut Self as *mut TcgContextHeader) }
    }
    /// Size of the state in bytes (what IR may address).
    fn env_size(&self) -> usize {
        size_of::<Self>()
    }
}

/// Result of a memory access: the value, or a fault.
pub type MemResult<T> = Result<T, MemFault>;

/// Loads through the TLB of `mop.mmu_idx`, falling back to the handler. The
/// result is extended and byte-swapped as `mop` says, to type `ty`.
pub fn load(hdr: &mut TcgContextHeader, vaddr: u64, mop: MemOp, ty: Ty) -> MemResult<u64> {
    let size = mop.size.bytes();
    if mop.aligned && !vaddr.is_multiple_of(size as u64) {
        return Err(unaligned(hdr, vaddr, mop.size, Access::Read));
    }
    let mem = hdr.mem;
    let tlb = hdr
        .tlb
        .get_mut(mop.mmu_idx as usize)
        .ok_or(MemFault::BAD_MMU_IDX)?;
    let raw = if let Some(p) = tlb.lookup(vaddr, size, Access::Read) {
        // SAFETY: a TLB hit means `fill`'s caller promised `size` readable
        // bytes at `p` (the access does not cross the page).
        unsafe { read_host(p, mop.size) }
    } else {
        let Some(mut h) = mem else {
            return Err(MemFault::NO_HANDLER);
        };
        // SAFETY: `with_handler` keeps the pointer valid and exclusively ours
        // while it is installed.
        let h = unsafe { h.as_mut() };
        h.load(tlb, vaddr, mop.size)?
    };
    Ok(mop.extend(ty, mop.to_le(raw)))
}

/// Stores through the TLB of `mop.mmu_idx`, falling back to the handler.
/// `value` is in guest byte order as `mop` says.
pub fn store(hdr: &mut TcgContextHeader, vaddr: u64, mop: MemOp, value: u64) -> MemResult<()> {
    let size = mop.size.bytes();
    if mop.aligned && !vaddr.is_multiple_of(size as u64) {
        return Err(unaligned(hdr, vaddr, mop.size, Access::Write));
    }
    let raw = mop.to_le(value);
    let mem = hdr.mem;
    let tlb = hdr
        .tlb
        .get_mut(mop.mmu_idx as usize)
        .ok_or(MemFault::BAD_MMU_IDX)?;
    if let Some(p) = tlb.lookup(vaddr, size, Access::Write) {
        // SAFETY: a TLB write hit means `fill`'s caller promised `size`
        // writable bytes at `p`.
        unsafe { write_host(p, mop.size, raw) };
        return Ok(());
    }
    let Some(mut h) = mem else {
        return Err(MemFault::NO_HANDLER);
    };
    // SAFETY: as in `load`.
    let h = unsafe { h.as_mut() };
    h.store(tlb, vaddr, mop.size, raw)
}

/// An atomic read-modify-write through the TLB of `mop.mmu_idx` (write
/// tags), falling back
/// to the handler's [`MemoryHandler::atomic`]. `a` is the `atomic_rmw`
/// operand or the `atomic_cmpxchg` expected value, `b` the new value of a
/// compare-and-swap (`op` `None`). Returns the old value, extended as `mop`
/// says, to type `ty`.
pub fn atomic(
    hdr: &mut TcgContextHeader,
    vaddr: u64,
    mop: MemOp,
    ty: Ty,
    op: Option<AtomicOp>,
    a: u64,
    b: u64,
) -> MemResult<u64> {
    let size = mop.size.bytes();
    if mop.aligned && !vaddr.is_multiple_of(size as u64) {
        return Err(unaligned(hdr, vaddr, mop.size, Access::Write));
    }
    let rmw = Rmw {
        kind: match op {
            Some(op) => RmwKind::Op(op, a),
            None => RmwKind::Cmpxchg {
                expected: a,
                new: b,
            },
        },
        size: mop.size,
        big_endian: mop.big_endian,
    };
    let mem = hdr.mem;
    let tlb = hdr
        .tlb
        .get_mut(mop.mmu_idx as usize)
        .ok_or(MemFault::BAD_MMU_IDX)?;
    let raw = if let Some(p) = tlb.lookup(vaddr, size, Access::Write) {
        // SAFETY: a TLB write hit means `fill`'s caller promised `size`
        // readable and writable bytes of guest RAM at `p`.
        unsafe { atomic_host(p, &rmw) }
    } else {
        let Some(mut h) = mem else {
            return Err(MemFault::NO_HANDLER);
        };
        // SAFETY: as in `load`.
        let h = unsafe { h.as_mut() };
        h.atomic(tlb, vaddr, &rmw)?
    };
    Ok(mop.extend(ty, mop.to_le(raw)))
}

/// Performs `rmw` on the `rmw.size` bytes at `p` atomically with respect to
/// every other thread's atomic (and, on x86-64, plain) accesses; returns the
/// old contents.
///
/// # Safety
///
/// `p` must be valid for reads and writes of `rmw.size` bytes (any
/// alignment) that other threads only access atomically or with plain
/// loads and stores of guest RAM.
pub unsafe fn atomic_host(p: *mut u8, rmw: &Rmw) -> u64 {
    // SAFETY: the caller's contract.
    let mut old = unsafe { read_host(p, rmw.size) };
    // Each failed attempt means another thread changed the value: the loop
    // ends as soon as this thread wins a race, as any lock-free RMW does.
    loop {
        let Some(new) = rmw.apply(old) else {
            return old;
        };
        // SAFETY: the caller's contract.
        let seen = unsafe { cas_host(p, rmw.size, old, new) };
        if seen == old {
            return old;
        }
        old = seen;
    }
}

/// One compare-and-swap of `size` bytes at `p`: stores `new` if memory
/// holds `expected`; returns what memory held. `lock cmpxchg` is atomic for
/// any alignment on x86.
///
/// # Safety
///
/// As [`atomic_host`].
#[cfg(target_arch = "x86_64")]
unsafe fn cas_host(p: *mut u8, size: MemSize, expected: u64, new: u64) -> u64 {
    let mut seen = expected;
    // SAFETY: the caller guarantees `size` bytes at `p`; `cmpxchg` only
    // touches those and rax, which is declared.
    unsafe {
        match size {
            MemSize::B1 => core::arch::asm!(
                "lock cmpxchg byte ptr [{p}], {n}",
                p = in(reg) p, n = in(reg_byte) new as u8, inout("rax") seen,
                options(nostack)
            ),
            MemSize::B2 => core::arch::asm!(
                "lock cmpxchg word ptr [{p}], {n:x}",
                p = in(reg) p, n = in(reg) new, inout("rax") seen,
                options(nostack)
            ),
            MemSize::B4 => core::arch::asm!(
                "lock cmpxchg dword ptr [{p}], {n:e}",
                p = in(reg) p, n = in(reg) new, inout("rax") seen,
                options(nostack)
            ),
            MemSize::B8 => core::arch::asm!(
                "lock cmpxchg qword ptr [{p}], {n}",
                p = in(reg) p, n = in(reg) new, inout("rax") seen,
                options(nostack)
            ),
        }
    }
    seen & size.value_mask()
}

/// One compare-and-swap of `size` bytes at `p` (see the x86-64 version):
/// `std::sync::atomic` when aligned, else under a process-wide lock, which
/// only excludes other unaligned slow-path atomics.
///
/// # Safety
///
/// As [`atomic_host`].
#[cfg(not(target_arch = "x86_64"))]
unsafe fn cas_host(p: *mut u8, size: MemSize, expected: u64, new: u64) -> u64 {
    use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64};
    static UNALIGNED: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let n = size.bytes() as usize;
    // SAFETY (all arms): the caller guarantees `size` valid bytes at `p`;
    // the atomic types are only used at their natural alignment.
    unsafe {
        if (p as usize).is_multiple_of(n) {
            let r = match size {
                MemSize::B1 => AtomicU8::from_ptr(p)
                    .compare_exchange(
                        expected as u8,
                        new as u8,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    )
                    .map(u64::from)
                    .map_err(u64::from),
                MemSize::B2 => AtomicU16::from_ptr(p.cast())
                    .compare_exchange(
                        expected as u16,
                        new as u16,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    )
                    .map(u64::from)
                    .map_err(u64::from),
                MemSize::B4 => AtomicU32::from_ptr(p.cast())
                    .compare_exchange(
                        expected as u32,
                        new as u32,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    )
                    .map(u64::from)
                    .map_err(u64::from),
                MemSize::B8 => AtomicU64::from_ptr(p.cast()).compare_exchange(
                    expected,
                    new,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                ),
            };
            return r.unwrap_or_else(|v| v);
        }
        let _g = UNALIGNED.lock().unwrap_or_else(|e| e.into_inner());
        let cur = read_host(p, size);
        if cur == expected & size.value_mask() {
            write_host(p, size, new);
        }
        cur
    }
}

fn unaligned(hdr: &mut TcgContextHeader, vaddr: u64, size: MemSize, access: Access) -> MemFault {
    match hdr.mem {
        // SAFETY: as in `load`.
        Some(mut h) => unsafe { h.as_mut() }.unaligned(vaddr, size, access),
        None => MemFault::NO_HANDLER,
    }
}

/// Fetches guest code for a front end's decoder: through the execute tags
/// of the TLB of `mmu_idx`, else the handler's [`MemoryHandler::fetch`].
/// Returns the little-endian value of `size` bytes.
pub fn fetch(
    hdr: &mut TcgContextHeader,
    mmu_idx: usize,
    vaddr: u64,
    size: MemSize,
) -> MemResult<u64> {
    let mem = hdr.mem;
    let tlb = hdr.tlb.get_mut(mmu_idx).ok_or(MemFault::BAD_MMU_IDX)?;
    if let Some(p) = tlb.lookup(vaddr, size.bytes(), Access::Exec) {
        // SAFETY: an execute hit means `fill`'s caller promised readable
        // bytes for the page, and the access does not cross it.
        return Ok(unsafe { read_host(p, size) });
    }
    let Some(mut h) = mem else {
        return Err(MemFault::NO_HANDLER);
    };
    // SAFETY: as in `load`.
    let h = unsafe { h.as_mut() };
    h.fetch(tlb, vaddr, size)
}

/// Reads `size` little-endian bytes at `p`.
///
/// # Safety
///
/// `p` must be valid for reading `size` bytes.
unsafe fn read_host(p: *const u8, size: MemSize) -> u64 {
    // SAFETY: the caller guarantees `size` readable bytes; unaligned reads
    // are used because guest addresses need not be aligned.
    unsafe {
        match size {
            MemSize::B1 => p.read() as u64,
            MemSize::B2 => u16::from_le(p.cast::<u16>().read_unaligned()) as u64,
            MemSize::B4 => u32::from_le(p.cast::<u32>().read_unaligned()) as u64,
            MemSize::B8 => u64::from_le(p.cast::<u64>().read_unaligned()),
        }
    }
}

/// Writes the low `size` bytes of `v` little-endian at `p`.
///
/// # Safety
///
/// `p` must be valid for writing `size` bytes.
unsafe fn write_host(p: *mut u8, size: MemSize, v: u64) {
    // SAFETY: the caller guarantees `size` writable bytes.
    unsafe {
        match size {
            MemSize::B1 => p.write(v as u8),
            MemSize::B2 => p.cast::<u16>().write_unaligned((v as u16).to_le()),
            MemSize::B4 => p.cast::<u32>().write_unaligned((v as u32).to_le()),
            MemSize::B8 => p.cast::<u64>().write_unaligned(v.to_le()),
        }
    }
}

/// Packs what the slow path needs to know about an access into one integer
/// argument: size log2 in bits 0-1, signed in bit 2, big-endian in bit 3,
/// 64-bit result in bit 4, aligned in bit 5, soft-MMU index in bits 6-7
/// (atomics add their operation in bits 8-11, see [`pack_atomic`]).
pub(crate) const fn pack_mop(mop: MemOp, ty: Ty) -> u64 {
    mop.size.log2() as u64
        | (mop.signed as u64) << 2
        | (mop.big_endian as u64) << 3
        | (matches!(ty, Ty::I64) as u64) << 4
        | (mop.aligned as u64) << 5
        | ((mop.mmu_idx & 3) as u64) << 6
}

const fn unpack_mop(bits: u64) -> (MemOp, Ty) {
    let size = match bits & 3 {
        0 => MemSize::B1,
        1 => MemSize::B2,
        2 => MemSize::B4,
        _ => MemSize::B8,
    };
    let mop = MemOp {
        size,
        signed: bits & 4 != 0,
        big_endian: bits & 8 != 0,
        aligned: bits & 32 != 0,
        mmu_idx: ((bits >> 6) & 3) as u8,
    };
    let ty = if bits & 16 != 0 { Ty::I64 } else { Ty::I32 };
    (mop, ty)
}

/// [`pack_mop`] plus the atomic operation (`None`: compare-and-swap) in
/// bits 8-11.
pub(crate) const fn pack_atomic(mop: MemOp, ty: Ty, op: Option<AtomicOp>) -> u64 {
    let code = match op {
        Some(op) => op.code(),
        None => 15,
    };
    pack_mop(mop, ty) | code << 8
}

const fn unpack_atomic(bits: u64) -> (MemOp, Ty, Option<AtomicOp>) {
    let (mop, ty) = unpack_mop(bits & 0xff);
    let op = match (bits >> 8) & 15 {
        15 => None,
        c => Some(AtomicOp::from_code(c)),
    };
    (mop, ty, op)
}

/// Two-register return of the load slow path (`rax`, `rdx` in SysV).
#[repr(C)]
pub(crate) struct SlowLoadRet {
    pub value: u64,
    /// 0 on success, else `(1 << 32) | fault code`.
    pub status: u64,
}

const fn fault_status(f: MemFault) -> u64 {
    (1 << 32) | f.code as u64
}

/// Slow path of `qemu_ld` in generated code.
pub(crate) extern "C" fn slow_load(
    env: *mut TcgContextHeader,
    vaddr: u64,
    bits: u64,
) -> SlowLoadRet {
    // SAFETY: generated code passes its CPU-state pointer, which `enter`'s
    // caller guarantees is a valid, exclusively used header.
    let hdr = unsafe { &mut *env };
    let (mop, ty) = unpack_mop(bits);
    match load(hdr, vaddr, mop, ty) {
        Ok(value) => SlowLoadRet { value, status: 0 },
        Err(f) => {
            hdr.fault_addr = vaddr;
            SlowLoadRet {
                value: 0,
                status: fault_status(f),
            }
        }
    }
}

/// Slow path of `qemu_st` in generated code; returns 0 or a fault status.
pub(crate) extern "C" fn slow_store(
    env: *mut TcgContextHeader,
    vaddr: u64,
    value: u64,
    bits: u64,
) -> u64 {
    // SAFETY: as in `slow_load`.
    let hdr = unsafe { &mut *env };
    let (mop, _) = unpack_mop(bits);
    match store(hdr, vaddr, mop, value) {
        Ok(()) => 0,
        Err(f) => {
            hdr.fault_addr = vaddr;
            fault_status(f)
        }
    }
}

/// Slow path of `atomic_rmw`/`atomic_cmpxchg` in generated code (`a`, `b`
/// as for [`atomic`]).
pub(crate) extern "C" fn slow_atomic(
    env: *mut TcgContextHeader,
    vaddr: u64,
    a: u64,
    b: u64,
    bits: u64,
) -> SlowLoadRet {
    // SAFETY: as in `slow_load`.
    let hdr = unsafe { &mut *env };
    let (mop, ty, op) = unpack_atomic(bits);
    match atomic(hdr, vaddr, mop, ty, op, a, b) {
        Ok(value) => SlowLoadRet { value, status: 0 },
        Err(f) => {
            hdr.fault_addr = vaddr;
            SlowLoadRet {
                value: 0,
                status: fault_status(f),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flat {
        mem: Vec<u8>,
        fill: bool,
        misses: usize,
    }

    impl MemoryHandler for Flat {
        fn load(&mut self, tlb: &mut Tlb, vaddr: u64, size: MemSize) -> MemResult<u64> {
            self.misses += 1;
            let a = vaddr as usize;
            let n = size.bytes() as usize;
            let bytes = self.mem.get(a..a + n).ok_or(MemFault { code: 14 })?;
            let mut v = 0u64;
            for (i, b) in bytes.iter().enumerate() {
                v |= (*b as u64) << (8 * i);
            }
            if self.fill {
                let page = (vaddr & PAGE_MASK) as usize;
                // SAFETY: the page lies inside `self.mem`, which outlives the
                // header in these tests and is not reallocated.
                unsafe { tlb.fill(vaddr, self.mem.as_mut_ptr().add(page), PagePerms::RWX) };
            }
            Ok(v)
        }
        fn store(
            &mut self,
            _tlb: &mut Tlb,
            vaddr: u64,
            size: MemSize,
            value: u64,
        ) -> MemResult<()> {
            self.misses += 1;
            let a = vaddr as usize;
            let n = size.bytes() as usize;
            let bytes = self.mem.get_mut(a..a + n).ok_or(MemFault { code: 14 })?;
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (value >> (8 * i)) as u8;
            }
            Ok(())
        }
    }

    #[test]
    fn miss_fills_then_hits() {
        let mut h = Flat {
            mem: vec![0; 3 * PAGE_SIZE as usize],
            fill: true,
            misses: 0,
        };
        h.mem[0x1000..0x1008].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        let mut hdr = TcgContextHeader::new();
        hdr.with_handler(&mut h, |hdr| {
            assert_eq!(
                load(hdr, 0x1000, MemOp::Q, Ty::I64),
                Ok(0x1122_3344_5566_7788)
            );
            assert_eq!(load(hdr, 0x1000, MemOp::UL.be(), Ty::I32), Ok(0x8877_6655));
            assert_eq!(load(hdr, 0x1001, MemOp::UB.signed(), Ty::I64), Ok(0x77));
            assert!(hdr.tlb[0].lookup(0x1ffc, 4, Access::Read).is_some());
            // crossing the page end is never a hit
            assert!(hdr.tlb[0].lookup(0x1ffd, 4, Access::Read).is_none());
            // the other indexes were not filled
            assert!(hdr.tlb[1].lookup(0x1ffc, 4, Access::Read).is_none());
        });
        assert_eq!(h.misses, 1);
    }

    #[test]
    fn fetch_uses_exec_tags_then_the_handler() {
        let mut h = Flat {
            mem: vec![0; 2 * PAGE_SIZE as usize],
            fill: false,
            misses: 0,
        };
        h.mem[0x10] = 0x90;
        let mut hdr = TcgContextHeader::new();
        let page = h.mem.as_mut_ptr();
        // SAFETY: `h.mem` outlives `hdr`'s use here and is not resized.
        unsafe {
            hdr.tlb[0].fill(
                0,
                page,
                PagePerms {
                    read: true,
                    write: false,
                    exec: true,
                },
            )
        };
        hdr.with_handler(&mut h, |hdr| {
            assert_eq!(fetch(hdr, 0, 0x10, MemSize::B1), Ok(0x90));
            assert_eq!(fetch(hdr, 0, 0x1000, MemSize::B1), Ok(0));
            assert_eq!(
                fetch(hdr, NB_MMU_MODES, 0x10, MemSize::B1),
                Err(MemFault::BAD_MMU_IDX)
            );
        });
        assert_eq!(h.misses, 1);
    }

    #[test]
    fn faults_and_missing_handler() {
        let mut hdr = TcgContextHeader::new();
        assert_eq!(
            load(&mut hdr, 0, MemOp::UB, Ty::I64),
            Err(MemFault::NO_HANDLER)
        );
        let mut h = Flat {
            mem: vec![0; 16],
            fill: false,
            misses: 0,
        };
        hdr.with_handler(&mut h, |hdr| {
            assert_eq!(store(hdr, 0x100, MemOp::UB, 1), Err(MemFault { code: 14 }));
            assert_eq!(store(hdr, 4, MemOp::UW.be(), 0x1234), Ok(()));
        });
        assert_eq!(&h.mem[4..6], &[0x12, 0x34]);
    }

    /// Index 0 maps page 0x5000 to one host page and index 1 to another:
    /// loads at the same address reach different memory by index; a
    /// per-index flush and a page flush behave as documented.
    #[test]
    fn indexes_map_the_same_address_independently() {
        let mut a = vec![0u8; PAGE_SIZE as usize];
        let mut b = vec![0u8; PAGE_SIZE as usize];
        a[8] = 0xaa;
        b[8] = 0xbb;
        let mut hdr = TcgContextHeader::new();
        for (i, tlb) in [&hdr.tlb[0], &hdr.tlb[1], &hdr.tlb[3]].iter().enumerate() {
            assert_eq!(tlb.mmu_idx(), [0, 1, 3][i]);
        }
        // SAFETY: `a` and `b` outlive `hdr`'s use here and are not resized.
        unsafe {
            hdr.tlb[0].fill(0x5000, a.as_mut_ptr(), PagePerms::RWX);
            hdr.tlb[1].fill(0x5000, b.as_mut_ptr(), PagePerms::R);
        }
        assert_eq!(load(&mut hdr, 0x5008, MemOp::UB, Ty::I64), Ok(0xaa));
        assert_eq!(load(&mut hdr, 0x5008, MemOp::UB.mmu(1), Ty::I64), Ok(0xbb));
        // index 2 misses, and there is no handler
        assert_eq!(
            load(&mut hdr, 0x5008, MemOp::UB.mmu(2), Ty::I64),
            Err(MemFault::NO_HANDLER)
        );
        assert_eq!(
            load(&mut hdr, 0x5008, MemOp::UB.mmu(NB_MMU_MODES as u8), Ty::I64),
            Err(MemFault::BAD_MMU_IDX)
        );
        // index 1 is read-only
        assert_eq!(
            store(&mut hdr, 0x5008, MemOp::UB.mmu(1), 1),
            Err(MemFault::NO_HANDLER)
        );
        assert_eq!(store(&mut hdr, 0x5008, MemOp::UB, 0x11), Ok(()));
        assert_eq!(a[8], 0x11);
        hdr.tlb.flush_index(0);
        assert!(hdr.tlb[0].lookup(0x5008, 1, Access::Read).is_none());
        assert!(hdr.tlb[1].lookup(0x5008, 1, Access::Read).is_some());
        let before = hdr.tlb.flushes();
        hdr.tlb.flush_page(0x5fff);
        assert!(hdr.tlb[1].lookup(0x5008, 1, Access::Read).is_none());
        assert_eq!(
            hdr.tlb.flushes(),
            before,
            "page flushes are not full flushes"
        );
        hdr.tlb.flush();
        assert_eq!(hdr.tlb.flushes(), before + 1);
    }

    #[test]
    fn flush_page_only_drops_that_page() {
        let mut page = vec![0u8; PAGE_SIZE as usize];
        let mut tlb = Tlb::default();
        // SAFETY: `page` outlives `tlb` here and the TLB is only used for
        // lookups.
        unsafe { tlb.fill(0x5000, page.as_mut_ptr(), PagePerms::R) };
        assert!(tlb.lookup(0x5008, 8, Access::Read).is_some());
        assert!(tlb.lookup(0x5008, 8, Access::Write).is_none());
        tlb.flush_page(0x5000 + ((TLB_SIZE as u64) << PAGE_BITS)); // aliasing page
        assert!(tlb.lookup(0x5008, 8, Access::Read).is_some());
        tlb.flush_page(0x5123);
        assert!(tlb.lookup(0x5008, 8, Access::Read).is_none());
    }

    #[test]
    fn mop_packing_roundtrips() {
        for size in [MemSize::B1, MemSize::B2, MemSize::B4, MemSize::B8] {
            for signed in [false, true] {
                for big_endian in [false, true] {
                    for (ty, aligned, mmu_idx) in [
                        (Ty::I32, false, 0),
                        (Ty::I64, true, 1),
                        (Ty::I32, true, 2),
                        (Ty::I64, false, 3),
                    ] {
                        let m = MemOp {
                            size,
                            signed,
                            big_endian,
                            aligned,
                            mmu_idx,
                        };
                        assert_eq!(unpack_mop(pack_mop(m, ty)), (m, ty));
                        let op = Some(AtomicOp::Xchg);
                        assert_eq!(unpack_atomic(pack_atomic(m, ty, op)), (m, ty, op));
                    }
                }
            }
        }
    }
}
