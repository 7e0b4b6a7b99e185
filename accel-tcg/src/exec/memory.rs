//! The soft-MMU slow path: guest virtual addresses through the front end's page
//! walker to guest RAM (filling the TLB) or to the MMIO bus (never cached, so
//! every device access reaches the device), plus instruction fetch for the
//! translator.

use super::cache::FastMap;
use super::shared::SharedCodePages;

use devices::Bus;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::guest::{CodeReader, PageWalker};
use crate::ir::MemSize;
use crate::softmmu::{
    self, Access, ExitRequest, MemFault, MemoryHandler, PAGE_MASK, PAGE_SIZE, PagePerms, Rmw, Tlb,
};

/// Which bytes of guest physical memory hold translated code, by page, and the
/// pages a guest store has hit since the exec loop last looked.
///
/// Byte granularity matters because small kernels and firmware keep data on
/// the same page as code: a store there that touches no translated byte must
/// not throw the page's translations away.
#[derive(Debug, Default)]
pub struct CodePages {
    pages: FastMap<u64, Box<[u64; 64]>>,
    pub(crate) written: Vec<u64>,
}

impl CodePages {
    pub(crate) fn contains(&self, page: u64) -> bool {
        self.pages.contains_key(&page)
    }

    /// Marks `[paddr, paddr + len)` (within one page) as translated code.
    /// Returns true if the page held no code before (so TLB entries that
    /// allow writes to it must go).
    pub(crate) fn mark(&mut self, paddr: u64, len: u64) -> bool {
        let page = paddr & PAGE_MASK;
        let mut new_page = false;
        let bits = self.pages.entry(page).or_insert_with(|| {
            new_page = true;
            Box::new([0; 64])
        });
        let start = paddr & !PAGE_MASK;
        for byte in start..(start + len).min(PAGE_SIZE) {
            bits[(byte / 64) as usize] |= 1 << (byte % 64);
        }
        new_page
    }

    /// Whether any byte of `[paddr, paddr + len)` (within one page) is code.
    pub(crate) fn overlaps(&self, paddr: u64, len: u64) -> bool {
        let Some(bits) = self.pages.get(&(paddr & PAGE_MASK)) else {
            return false;
        };
        let start = paddr & !PAGE_MASK;
        (start..(start + len).min(PAGE_SIZE))
            .any(|byte| bits[(byte / 64) as usize] & (1 << (byte % 64)) != 0)
    }

    pub(crate) fn remove(&mut self, page: u64) {
        self.pages.remove(&page);
    }

    pub(crate) fn clear(&mut self) {
        self.pages.clear();
        self.written.clear();
    }
}

/// The fault code a store reports, without storing, when it would modify
/// translated code: the exec loop then invalidates that code and runs the
/// storing instruction alone, so no stale instruction after it in the same
/// block runs (x86 makes such writes visible to the very next instruction).
pub const SMC_RESTART: u32 = u32::MAX - 2;

/// The memory handler translated code runs with.
pub(crate) struct SoftMmu<'a, W: PageWalker> {
    pub memory: &'a GuestMemoryMmap,
    pub mmio: &'a Bus,
    pub walker: W,
    pub code_pages: &'a mut CodePages,
    /// The VM-wide registry: stores into other vCPUs' code are posted to
    /// them, and pages that are code anywhere are never TLB-writable.
    pub shared: &'a SharedCodePages,
    /// This vCPU's index.
    pub cpu: u32,
    /// Set when a store hit a code page: the exec loop must invalidate
    /// translations before running more code.
    pub exit_request: &'a ExitRequest,
    /// The kind of the last access that faulted.
    pub last_fault_access: Access,
    /// Whether stores may modify translated code (while one instruction runs
    /// alone after [`SMC_RESTART`]).
    pub allow_code_writes: bool,
    /// The physical page of the last store refused with [`SMC_RESTART`].
    pub smc_page: Option<u64>,
}

/// Where a guest physical address leads.
enum Target {
    Ram(*mut u8),
    Mmio,
}

fn resolve(memory: &GuestMemoryMmap, paddr: u64) -> Target {
    match memory.get_host_address(GuestAddress(paddr)) {
        Ok(host) => Target::Ram(host),
        Err(_) => Target::Mmio,
    }
}

impl<W: PageWalker> SoftMmu<'_, W> {
    /// Translates for the regime of soft-MMU index `mmu_idx` (that of the
    /// TLB the access goes through).
    fn translate(
        &mut self,
        mmu_idx: usize,
        vaddr: u64,
        size: MemSize,
        access: Access,
    ) -> Result<(u64, PagePerms), MemFault> {
        match self
            .walker
            .translate_sized(self.memory, vaddr, size.bytes(), access, mmu_idx)
        {
            Ok(t) => Ok((t.paddr, t.perms)),
            Err(fault) => {
                self.last_fault_access = access;
                Err(fault)
            }
        }
    }

    fn fill(&self, tlb: &mut Tlb, vaddr: u64, paddr: u64, perms: PagePerms) {
        fill_tlb(
            self.memory,
            self.code_pages,
            self.shared,
            tlb,
            vaddr,
            paddr,
            perms,
        );
    }

    fn load_within_page(
        &mut self,
        tlb: &mut Tlb,
        vaddr: u64,
        size: MemSize,
    ) -> Result<u64, MemFault> {
        let (paddr, perms) = self.translate(tlb.mmu_idx(), vaddr, size, Access::Read)?;
        let len = size.bytes() as usize;
        let mut bytes = [0u8; 8];
        match resolve(self.memory, paddr) {
            Target::Ram(_) => {
                self.memory
                    .read_slice(&mut bytes[..len], GuestAddress(paddr))
                    .map_err(|_| MemFault { code: BUS_ERROR })?;
                self.fill(tlb, vaddr, paddr, perms);
            }
            Target::Mmio => {
                if !self.mmio.read(paddr, &mut bytes[..len]) && self.walker.bus_errors() {
                    self.last_fault_access = Access::Read;
                    return Err(MemFault { code: BUS_ERROR });
                }
            }
        }
        Ok(u64::from_le_bytes(bytes))
    }

    fn store_within_page(
        &mut self,
        tlb: &mut Tlb,
        vaddr: u64,
        size: MemSize,
        value: u64,
    ) -> Result<(), MemFault> {
        let (paddr, perms) = self.translate(tlb.mmu_idx(), vaddr, size, Access::Write)?;
        let len = size.bytes() as usize;
        let bytes = value.to_le_bytes();
        match resolve(self.memory, paddr) {
            Target::Ram(_) => {
                let page = paddr & PAGE_MASK;
                let modifies_code = self.code_pages.overlaps(paddr, len as u64);
                if modifies_code && !self.allow_code_writes {
                    self.smc_page = Some(page);
                    self.last_fault_access = Access::Write;
                    return Err(MemFault { code: SMC_RESTART });
                }
                self.shared
                    .store(paddr, len as u64, self.cpu, || {
                        self.memory.write_slice(&bytes[..len], GuestAddress(paddr))
                    })
                    .map_err(|_| MemFault { code: BUS_ERROR })?;
                if modifies_code {
                    // The instruction ran alone: invalidate before the next.
                    self.code_pages.written.push(page);
                    self.exit_request.request();
                } else {
                    // Not writable if the page is code for any vCPU.
                    self.fill(tlb, vaddr, paddr, perms);
                }
            }
            Target::Mmio => {
                if !self.mmio.write(paddr, &bytes[..len]) && self.walker.bus_errors() {
                    self.last_fault_access = Access::Write;
                    return Err(MemFault { code: BUS_ERROR });
                }
            }
        }
        Ok(())
    }
}

impl<W: PageWalker> SoftMmu<'_, W> {
    /// An atomic within one page: on the host pointer for RAM (so it is
    /// indivisible against other vCPU threads), read-compute-write on the
    /// bus for MMIO. Translated as a store, with the same code-page rules.
    fn atomic_within_page(
        &mut self,
        tlb: &mut Tlb,
        vaddr: u64,
        rmw: &Rmw,
    ) -> Result<u64, MemFault> {
        let (paddr, perms) = self.translate(tlb.mmu_idx(), vaddr, rmw.size, Access::Write)?;
        let len = rmw.size.bytes() as usize;
        match resolve(self.memory, paddr) {
            Target::Ram(host) => {
                let page = paddr & PAGE_MASK;
                let modifies_code = self.code_pages.overlaps(paddr, len as u64);
                if modifies_code && !self.allow_code_writes {
                    self.smc_page = Some(page);
                    self.last_fault_access = Access::Write;
                    return Err(MemFault { code: SMC_RESTART });
                }
                // The last byte must be RAM of the same host mapping.
                let last = paddr + len as u64 - 1;
                match self.memory.get_host_address(GuestAddress(last)) {
                    Ok(h) if h as usize == host as usize + len - 1 => {}
                    _ => return Err(MemFault { code: BUS_ERROR }),
                }
                let old = self.shared.store(paddr, len as u64, self.cpu, || {
                    // SAFETY: `host..host + len` is guest RAM owned by
                    // `memory` (checked above), which other vCPUs access only
                    // with plain or atomic guest accesses.
                    unsafe { softmmu::atomic_host(host, rmw) }
                });
                if modifies_code {
                    self.code_pages.written.push(page);
                    self.exit_request.request();
                } else {
                    self.fill(tlb, vaddr, paddr, perms);
                }
                Ok(old)
            }
            Target::Mmio => {
                let mut bytes = [0u8; 8];
                self.mmio.read(paddr, &mut bytes[..len]);
                let old = u64::from_le_bytes(bytes);
                if let Some(new) = rmw.apply(old) {
                    self.mmio.write(paddr, &new.to_le_bytes()[..len]);
                }
                Ok(old)
            }
        }
    }
}

/// Caches the page of `vaddr` in the TLB if it is RAM. Pages holding code
/// (this vCPU's, or any other's) are never writable through the TLB, so
/// stores to them reach the slow path.
pub(crate) fn fill_tlb(
    memory: &GuestMemoryMmap,
    code_pages: &CodePages,
    shared: &SharedCodePages,
    tlb: &mut Tlb,
    vaddr: u64,
    paddr: u64,
    mut perms: PagePerms,
) {
    let page = paddr & PAGE_MASK;
    if perms.write && (code_pages.contains(page) || shared.is_code(page)) {
        perms.write = false;
    }
    if let Target::Ram(host) = resolve(memory, page) {
        // Regions are page aligned, so a host page pointer covers the page.
        if memory
            .get_host_address(GuestAddress(page + PAGE_SIZE - 1))
            .is_ok()
        {
            // SAFETY: `host` points at a whole page of guest RAM owned by
            // `memory`, which outlives every run of translated code (the
            // exec loop flushes the TLB when the memory changes).
            unsafe { tlb.fill(vaddr, host, perms) };
        }
    }
}

/// The guest physical address of a host pointer into guest RAM.
pub(crate) fn host_to_guest_phys(memory: &GuestMemoryMmap, host: *const u8) -> Option<u64> {
    use vm_memory::GuestMemoryRegion;
    let host = host as usize;
    memory.iter().find_map(|region| {
        let base = region.as_ptr() as usize;
        let offset = host.checked_sub(base)?;
        (offset < region.len() as usize).then(|| region.start_addr().0 + offset as u64)
    })
}

/// The fault code for an access to guest physical memory that does not exist
/// as RAM and could not be done on the bus. Front ends treat it as a bus error.
pub const BUS_ERROR: u32 = u32::MAX - 1;

/// Whether `[vaddr, vaddr + size)` crosses a page boundary.
fn crosses_page(vaddr: u64, size: MemSize) -> bool {
    (vaddr & !PAGE_MASK) + u64::from(size.bytes()) > PAGE_SIZE
}

impl<W: PageWalker> MemoryHandler for SoftMmu<'_, W> {
    fn unaligned(&mut self, _vaddr: u64, _size: MemSize, access: Access) -> MemFault {
        // The front end learns whether a load or a store faulted.
        self.last_fault_access = access;
        MemFault::UNALIGNED
    }

    fn load(&mut self, tlb: &mut Tlb, vaddr: u64, size: MemSize) -> Result<u64, MemFault> {
        if !crosses_page(vaddr, size) {
            return self.load_within_page(tlb, vaddr, size);
        }
        // Translate both pages before reading anything, so a fault on the
        // second page has no effect.
        let second = (vaddr & PAGE_MASK).wrapping_add(PAGE_SIZE);
        self.translate(tlb.mmu_idx(), vaddr, size, Access::Read)?;
        self.translate(tlb.mmu_idx(), second, MemSize::B1, Access::Read)?;
        let mut value = 0u64;
        for i in 0..u64::from(size.bytes()) {
            let byte = self.load_within_page(tlb, vaddr.wrapping_add(i), MemSize::B1)?;
            value |= byte << (8 * i);
        }
        Ok(value)
    }

    fn store(
        &mut self,
        tlb: &mut Tlb,
        vaddr: u64,
        size: MemSize,
        value: u64,
    ) -> Result<(), MemFault> {
        if !crosses_page(vaddr, size) {
            return self.store_within_page(tlb, vaddr, size, value);
        }
        let second = (vaddr & PAGE_MASK).wrapping_add(PAGE_SIZE);
        self.translate(tlb.mmu_idx(), vaddr, size, Access::Write)?;
        self.translate(tlb.mmu_idx(), second, MemSize::B1, Access::Write)?;
        for i in 0..u64::from(size.bytes()) {
            self.store_within_page(tlb, vaddr.wrapping_add(i), MemSize::B1, value >> (8 * i))?;
        }
        Ok(())
    }

    fn atomic(&mut self, tlb: &mut Tlb, vaddr: u64, rmw: &Rmw) -> Result<u64, MemFault> {
        if crosses_page(vaddr, rmw.size) {
            self.atomic_crossing(tlb, vaddr, rmw)
        } else {
            self.atomic_within_page(tlb, vaddr, rmw)
        }
    }
}

impl<W: PageWalker> SoftMmu<'_, W> {
    /// A page-crossing atomic: both pages are translated for a write first
    /// (a fault has no effect), then the bytes are read and written one at
    /// a time. Indivisible only for a single vCPU: x86 guests rarely split
    /// locked accesses across pages (Linux treats it as a bug), and no host
    /// instruction covers two unrelated host pages.
    fn atomic_crossing(&mut self, tlb: &mut Tlb, vaddr: u64, rmw: &Rmw) -> Result<u64, MemFault> {
        let second = (vaddr & PAGE_MASK).wrapping_add(PAGE_SIZE);
        self.translate(tlb.mmu_idx(), vaddr, rmw.size, Access::Write)?;
        self.translate(tlb.mmu_idx(), second, MemSize::B1, Access::Write)?;
        let mut old = 0u64;
        for i in 0..u64::from(rmw.size.bytes()) {
            let byte = self.load_within_page(tlb, vaddr.wrapping_add(i), MemSize::B1)?;
            old |= byte << (8 * i);
        }
        if let Some(new) = rmw.apply(old) {
            for i in 0..u64::from(rmw.size.bytes()) {
                self.store_within_page(tlb, vaddr.wrapping_add(i), MemSize::B1, new >> (8 * i))?;
            }
        }
        Ok(old)
    }
}

/// Whether guest memory still holds `bytes` at `ranges` (as [`CodeFetch`]
/// recorded them).
pub(crate) fn code_unchanged(
    memory: &GuestMemoryMmap,
    ranges: &[(u64, u64)],
    bytes: &[u8],
) -> bool {
    let mut now = Vec::new();
    let mut at = 0;
    ranges.iter().all(|&(paddr, len)| {
        now.resize(len as usize, 0);
        let same = memory.read_slice(&mut now, GuestAddress(paddr)).is_ok()
            && bytes.get(at..at + len as usize) == Some(&now[..]);
        at += len as usize;
        same
    })
}

/// Fetches code for the translator and remembers the physical pages it came
/// from.
pub(crate) struct CodeFetch<'a, W: PageWalker> {
    pub memory: &'a GuestMemoryMmap,
    pub walker: &'a W,
    /// The soft-MMU index of instruction fetch ([`crate::guest::GuestCpu::fetch_mmu_idx`]).
    pub mmu_idx: usize,
    /// Physical byte ranges read, each within one page, in order.
    pub ranges: Vec<(u64, u64)>,
    /// The bytes of `ranges`, concatenated: what the translation was made
    /// from, to check against memory once the pages are registered.
    pub bytes: Vec<u8>,
    /// End (exclusive) of the furthest byte read, for disassembly traces.
    pub end: u64,
}

impl<W: PageWalker> CodeFetch<'_, W> {
    /// The distinct physical pages the ranges lie on.
    pub fn pages(&self) -> Vec<u64> {
        let mut pages: Vec<u64> = self
            .ranges
            .iter()
            .map(|&(paddr, _)| paddr & PAGE_MASK)
            .collect();
        pages.sort_unstable();
        pages.dedup();
        pages
    }
}

impl<W: PageWalker> CodeReader for CodeFetch<'_, W> {
    fn read(&mut self, vaddr: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        let mut done = 0;
        while done < buf.len() {
            let at = vaddr.wrapping_add(done as u64);
            let in_page = (PAGE_SIZE - (at & !PAGE_MASK)) as usize;
            let chunk = in_page.min(buf.len() - done);
            let t = self
                .walker
                .translate(self.memory, at, Access::Exec, self.mmu_idx)?;
            // Code must come from RAM: executing device registers is not
            // something moat translates.
            self.memory
                .read_slice(&mut buf[done..done + chunk], GuestAddress(t.paddr))
                .map_err(|_| MemFault { code: BUS_ERROR })?;
            self.ranges.push((t.paddr, chunk as u64));
            self.bytes.extend_from_slice(&buf[done..done + chunk]);
            done += chunk;
        }
        self.end = self.end.max(vaddr.wrapping_add(buf.len() as u64));
        Ok(())
    }
}
