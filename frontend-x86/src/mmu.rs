//! Address translation: the page-table walk and guest-virtual accesses from
//! Rust.
//!
//! [`X86Walker`] is a snapshot of CR0, CR3, CR4, EFER and the CPL. It walks
//! 4-level long-mode tables (4 KiB, 2 MiB and 1 GiB pages), PAE tables in
//! 32-bit mode (4 KiB and 2 MiB pages) and classic 32-bit tables (4 KiB and,
//! with CR4.PSE, 4 MiB pages). It checks present, R/W (supervisor writes
//! only with CR0.WP), U/S and NX (EFER.NXE), and sets the accessed bit of
//! every entry it uses and the dirty bit of the leaf on a write.
//!
//! A fault is a [`MemFault`] whose code is a [`Fault`]: a page fault with its
//! #PF error code, or a #GP for a non-canonical address.
//!
//! # Soft-MMU indexes
//!
//! Translated code accesses memory through one of two soft-MMU indexes:
//! [`MMU_SUPERVISOR`] (CPL 0 to 2) and [`MMU_USER`] (CPL 3), each with its
//! own TLB, so switching privilege levels flushes nothing. Through
//! [`PageWalker::translate`] the walker checks the permissions of the
//! access's index, not of the snapshot's CPL: the user index needs U/S set
//! at every level, the supervisor index honours CR0.WP for writes to
//! read-only pages. SMEP and SMAP are not modelled (CR4 refuses them); SMAP
//! would make supervisor permissions depend on RFLAGS.AC, which needs a
//! third index or a flush when AC changes. Accesses the CPU makes from Rust
//! ([`read_virt`], [`write_virt`]) use the snapshot's CPL.
//!
//! The TLB permissions a translation grants are those of its index; write
//! permission is granted only once the leaf's dirty bit is set, so the first
//! write to a clean page always comes back here to set it.

use accel_tcg::guest::{PageTranslation, PageWalker};
use accel_tcg::softmmu::{Access, MemFault, PagePerms};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::state::ctl;

/// #PF error code bits.
pub mod pferr {
    /// the page was present (protection violation)
    pub const P: u32 = 1 << 0;
    /// write access
    pub const W: u32 = 1 << 1;
    /// user-mode access
    pub const U: u32 = 1 << 2;
    /// reserved bit set in an entry
    pub const RSVD: u32 = 1 << 3;
    /// instruction fetch
    pub const I: u32 = 1 << 4;
}

/// What went wrong with a memory access, packed into [`MemFault::code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// #PF with this error code.
    Page(u32),
    /// #GP(0): non-canonical address.
    General,
    /// #SS(0): non-canonical stack address (reported by Rust-side accesses).
    Stack,
}

const KIND_PF: u32 = 1 << 16;
const KIND_GP: u32 = 2 << 16;
const KIND_SS: u32 = 3 << 16;

impl Fault {
    /// The fault as the exec loop carries it.
    pub fn to_mem(self) -> MemFault {
        MemFault {
            code: match self {
                Fault::Page(e) => KIND_PF | (e & 0xffff),
                Fault::General => KIND_GP,
                Fault::Stack => KIND_SS,
            },
        }
    }

    /// Back from the exec loop (an unknown code, e.g. a bus error, is #GP).
    pub fn from_mem(f: MemFault) -> Fault {
        match f.code & 0xffff_0000 {
            KIND_PF => Fault::Page(f.code & 0xffff),
            KIND_SS => Fault::Stack,
            _ => Fault::General,
        }
    }
}

/// Soft-MMU index of accesses at CPL 0, 1 and 2.
pub const MMU_SUPERVISOR: usize = 0;
/// Soft-MMU index of accesses at CPL 3.
pub const MMU_USER: usize = 1;

/// The soft-MMU index of code running at `cpl`.
pub const fn mmu_idx_for_cpl(cpl: u64) -> usize {
    if cpl == 3 { MMU_USER } else { MMU_SUPERVISOR }
}

const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const PTE_P: u64 = 1 << 0;
const PTE_RW: u64 = 1 << 1;
const PTE_US: u64 = 1 << 2;
const PTE_A: u64 = 1 << 5;
const PTE_D: u64 = 1 << 6;
const PTE_PS: u64 = 1 << 7;
const PTE_NX: u64 = 1 << 63;

/// A snapshot of the registers address translation depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct X86Walker {
    /// CR0
    pub cr0: u64,
    /// CR3
    pub cr3: u64,
    /// CR4
    pub cr4: u64,
    /// EFER
    pub efer: u64,
    /// CPL of the accesses made from Rust through [`X86Walker::walk`] (3 =
    /// user); [`PageWalker::translate`] goes by the access's soft-MMU index
    /// instead.
    pub cpl: u64,
}

/// One level's entry as read, with where it lives.
struct Entry {
    addr: u64,
    val: u64,
    wide: bool,
}

fn read_entry(mem: &GuestMemoryMmap, addr: u64, wide: bool) -> Option<Entry> {
    let val = if wide {
        mem.read_obj::<u64>(GuestAddress(addr)).ok()?
    } else {
        mem.read_obj::<u32>(GuestAddress(addr)).ok()? as u64
    };
    Some(Entry { addr, val, wide })
}

fn set_bits(mem: &GuestMemoryMmap, e: &Entry, bits: u64) {
    if e.val & bits == bits {
        return;
    }
    let v = e.val | bits;
    // A failed write (page tables outside RAM) only loses the A/D update.
    let _ = if e.wide {
        mem.write_obj::<u64>(v, GuestAddress(e.addr))
    } else {
        mem.write_obj::<u32>(v as u32, GuestAddress(e.addr))
    };
}

impl X86Walker {
    fn paging(&self) -> bool {
        self.cr0 & ctl::CR0_PG != 0
    }

    /// The #PF error code bits for this access.
    fn err(&self, access: Access, present: bool) -> u32 {
        let mut e = if present { pferr::P } else { 0 };
        if access == Access::Write {
            e |= pferr::W;
        }
        if self.cpl == 3 {
            e |= pferr::U;
        }
        if access == Access::Exec && self.efer & ctl::EFER_NXE != 0 {
            e |= pferr::I;
        }
        e
    }

    /// Translates `vaddr` for `access`.
    pub fn walk(
        &self,
        mem: &GuestMemoryMmap,
        vaddr: u64,
        access: Access,
    ) -> Result<PageTranslation, Fault> {
        if !self.paging() {
            return Ok(PageTranslation {
                paddr: vaddr & 0xffff_ffff,
                perms: PagePerms::RWX,
            });
        }
        let long = self.efer & ctl::EFER_LMA != 0;
        let pae = self.cr4 & ctl::CR4_PAE != 0;
        let mut entries: [Option<Entry>; 4] = [None, None, None, None];
        let mut n = 0;
        let not_present = |w: &X86Walker| Fault::Page(w.err(access, false));
        // (paddr of the leaf page, page size)
        let (page_base, page_size) = if long {
            let sext = ((vaddr << 16) as i64 >> 16) as u64;
            if sext != vaddr {
                return Err(Fault::General);
            }
            let mut table = self.cr3 & ADDR_MASK;
            let mut shift = 39;
            loop {
                let idx = (vaddr >> shift) & 0x1ff;
                let e = read_entry(mem, table + idx * 8, true).ok_or(not_present(self))?;
                if e.val & PTE_P == 0 {
                    return Err(not_present(self));
                }
                let val = e.val;
                entries[n] = Some(e);
                n += 1;
                let leaf = shift == 12 || (val & PTE_PS != 0 && (shift == 21 || shift == 30));
                if val & PTE_PS != 0 && shift == 39 {
                    return Err(Fault::Page(self.err(access, true) | pferr::RSVD));
                }
                if leaf {
                    let size = 1u64 << shift;
                    break (val & ADDR_MASK & !(size - 1), size);
                }
                table = val & ADDR_MASK;
                shift -= 9;
            }
        } else if pae {
            let pdpte_addr = (self.cr3 & 0xffff_ffe0) + ((vaddr >> 30) & 3) * 8;
            let pdpte = read_entry(mem, pdpte_addr, true).ok_or(not_present(self))?;
            if pdpte.val & PTE_P == 0 {
                return Err(not_present(self));
            }
            let mut table = pdpte.val & ADDR_MASK;
            let mut shift = 21;
            loop {
                let idx = (vaddr >> shift) & 0x1ff;
                let e = read_entry(mem, table + idx * 8, true).ok_or(not_present(self))?;
                if e.val & PTE_P == 0 {
                    return Err(not_present(self));
                }
                let val = e.val;
                entries[n] = Some(e);
                n += 1;
                if shift == 12 || val & PTE_PS != 0 {
                    let size = 1u64 << shift;
                    break (val & ADDR_MASK & !(size - 1), size);
                }
                table = val & ADDR_MASK;
                shift = 12;
            }
        } else {
            let vaddr32 = vaddr & 0xffff_ffff;
            let pde = read_entry(
                mem,
                (self.cr3 & 0xffff_f000) + ((vaddr32 >> 22) & 0x3ff) * 4,
                false,
            )
            .ok_or(not_present(self))?;
            if pde.val & PTE_P == 0 {
                return Err(not_present(self));
            }
            let pv = pde.val;
            entries[n] = Some(pde);
            n += 1;
            if pv & PTE_PS != 0 && self.cr4 & ctl::CR4_PSE != 0 {
                // 4 MiB page: bits 13..20 hold physical address bits 32..39.
                let base = (pv & 0xffc0_0000) | ((pv >> 13) & 0xff) << 32;
                (base, 1 << 22)
            } else {
                let pte = read_entry(
                    mem,
                    (pv & 0xffff_f000) + ((vaddr32 >> 12) & 0x3ff) * 4,
                    false,
                )
                .ok_or(not_present(self))?;
                if pte.val & PTE_P == 0 {
                    return Err(not_present(self));
                }
                let v = pte.val;
                entries[n] = Some(pte);
                n += 1;
                (v & 0xffff_f000, 1 << 12)
            }
        };
        let used = &entries[..n];
        let all = |bit: u64| used.iter().flatten().all(|e| e.val & bit != 0);
        let user_ok = all(PTE_US);
        let rw = all(PTE_RW);
        let nx =
            self.efer & ctl::EFER_NXE != 0 && used.iter().flatten().any(|e| e.val & PTE_NX != 0);
        let user = self.cpl == 3;
        let wp = self.cr0 & ctl::CR0_WP != 0;
        let can_read = !user || user_ok;
        let can_write = can_read && (rw || (!user && !wp));
        let can_exec = can_read && !nx;
        let ok = match access {
            Access::Read => can_read,
            Access::Write => can_write,
            Access::Exec => can_exec,
        };
        if !ok {
            return Err(Fault::Page(self.err(access, true)));
        }
        for e in used.iter().flatten() {
            set_bits(mem, e, PTE_A);
        }
        let leaf_dirty = match used.iter().flatten().last() {
            Some(leaf) if access == Access::Write => {
                set_bits(mem, leaf, PTE_A | PTE_D);
                true
            }
            Some(leaf) => leaf.val & PTE_D != 0,
            None => false,
        };
        let paddr = page_base | (vaddr & (page_size - 1));
        Ok(PageTranslation {
            paddr,
            perms: PagePerms {
                read: can_read,
                write: can_write && leaf_dirty,
                exec: can_exec,
            },
        })
    }
}

impl PageWalker for X86Walker {
    /// Translates with the permissions of `mmu_idx`: user for [`MMU_USER`],
    /// supervisor for [`MMU_SUPERVISOR`]. Other indexes are never used by
    /// this front end's code and fault with #GP.
    fn translate(
        &self,
        memory: &GuestMemoryMmap,
        vaddr: u64,
        access: Access,
        mmu_idx: usize,
    ) -> Result<PageTranslation, MemFault> {
        let cpl = match mmu_idx {
            MMU_USER => 3,
            MMU_SUPERVISOR => 0,
            _ => return Err(Fault::General.to_mem()),
        };
        X86Walker { cpl, ..*self }
            .walk(memory, vaddr, access)
            .map_err(Fault::to_mem)
    }
}

/// Reads `buf.len()` bytes at guest-virtual `vaddr` (any page crossing).
/// Bytes outside RAM read as all ones.
pub fn read_virt(
    w: &X86Walker,
    mem: &GuestMemoryMmap,
    vaddr: u64,
    buf: &mut [u8],
) -> Result<(), Fault> {
    let mut done = 0;
    while done < buf.len() {
        let va = vaddr.wrapping_add(done as u64);
        let t = w.walk(mem, va, Access::Read)?;
        let n = ((0x1000 - (va & 0xfff)) as usize).min(buf.len() - done);
        if mem
            .read_slice(&mut buf[done..done + n], GuestAddress(t.paddr))
            .is_err()
        {
            buf[done..done + n].fill(0xff);
        }
        done += n;
    }
    Ok(())
}

/// Writes `data` at guest-virtual `vaddr`; checks every page first so a
/// fault writes nothing. Bytes outside RAM are dropped.
pub fn write_virt(
    w: &X86Walker,
    mem: &GuestMemoryMmap,
    vaddr: u64,
    data: &[u8],
) -> Result<(), Fault> {
    let mut pages = [(0u64, 0usize, 0usize); 3];
    let mut np = 0;
    let mut done = 0;
    while done < data.len() && np < pages.len() {
        let va = vaddr.wrapping_add(done as u64);
        let t = w.walk(mem, va, Access::Write)?;
        let n = ((0x1000 - (va & 0xfff)) as usize).min(data.len() - done);
        pages[np] = (t.paddr, done, n);
        np += 1;
        done += n;
    }
    for &(pa, off, n) in &pages[..np] {
        let _ = mem.write_slice(&data[off..off + n], GuestAddress(pa));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).expect("memory")
    }

    fn w64(cr3: u64) -> X86Walker {
        X86Walker {
            cr0: ctl::CR0_PE | ctl::CR0_PG | ctl::CR0_WP,
            cr3,
            cr4: ctl::CR4_PAE,
            efer: ctl::EFER_LME | ctl::EFER_LMA | ctl::EFER_NXE,
            cpl: 0,
        }
    }

    #[test]
    fn long_mode_4k_2m_and_faults() {
        let m = mem();
        // PML4 at 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000
        m.write_obj(0x2000u64 | 7, GuestAddress(0x1000)).expect("w");
        m.write_obj(0x3000u64 | 7, GuestAddress(0x2000)).expect("w");
        m.write_obj(0x4000u64 | 7, GuestAddress(0x3000)).expect("w");
        // 4K page at vaddr 0x5000 -> 0x9000, read-only, user, NX
        m.write_obj(0x9000u64 | 5 | PTE_NX, GuestAddress(0x4000 + 5 * 8))
            .expect("w");
        // 2M page at vaddr 0x20_0000 -> 0x20_0000 rw supervisor
        m.write_obj(0x20_0000u64 | 3 | PTE_PS, GuestAddress(0x3008))
            .expect("w");
        let w = w64(0x1000);
        let t = w.walk(&m, 0x5123, Access::Read).expect("read");
        assert_eq!(t.paddr, 0x9123);
        assert!(!t.perms.write && !t.perms.exec);
        assert_eq!(
            w.walk(&m, 0x5123, Access::Write),
            Err(Fault::Page(pferr::P | pferr::W))
        );
        assert_eq!(
            w.walk(&m, 0x5000, Access::Exec),
            Err(Fault::Page(pferr::P | pferr::I))
        );
        assert_eq!(w.walk(&m, 0x6000, Access::Read), Err(Fault::Page(0)));
        // accessed bits set, dirty not
        let pte: u64 = m.read_obj(GuestAddress(0x4028)).expect("r");
        assert!(pte & PTE_A != 0 && pte & PTE_D == 0);
        let t = w.walk(&m, 0x2f_fff8, Access::Write).expect("write");
        assert_eq!(t.paddr, 0x2f_fff8);
        assert!(t.perms.write);
        let pde: u64 = m.read_obj(GuestAddress(0x3008)).expect("r");
        assert!(pde & PTE_D != 0);
        // user access to a supervisor page
        let u = X86Walker { cpl: 3, ..w };
        assert_eq!(
            u.walk(&m, 0x20_0000, Access::Read),
            Err(Fault::Page(pferr::P | pferr::U))
        );
        assert_eq!(
            w.walk(&m, 0x8000_0000_0000, Access::Read),
            Err(Fault::General)
        );
    }

    #[test]
    fn pae_paging_in_32_bit_mode() {
        let m = mem();
        // PDPT at 0x1000 (32-byte aligned), entry 1 -> PD 0x2000 -> PT 0x3000
        m.write_obj(0x2001u64, GuestAddress(0x1008)).expect("w");
        m.write_obj(0x3007u64, GuestAddress(0x2000)).expect("w");
        m.write_obj(0x9007u64, GuestAddress(0x3000 + 8)).expect("w");
        // 2 MiB page at 0x4020_0000 -> 0x20_0000, read-only
        m.write_obj(0x20_0081u64, GuestAddress(0x2008)).expect("w");
        let w = X86Walker {
            cr0: ctl::CR0_PE | ctl::CR0_PG,
            cr3: 0x1000,
            cr4: ctl::CR4_PAE,
            efer: 0,
            cpl: 0,
        };
        assert_eq!(
            w.walk(&m, 0x4000_1abc, Access::Read).expect("4k").paddr,
            0x9abc
        );
        let big = w.walk(&m, 0x4023_4567, Access::Read).expect("2m");
        assert_eq!(big.paddr, 0x23_4567);
        // CR0.WP clear: supervisor writes to read-only pages are allowed
        assert!(w.walk(&m, 0x4023_4567, Access::Write).is_ok());
        let wp = X86Walker {
            cr0: w.cr0 | ctl::CR0_WP,
            ..w
        };
        assert_eq!(
            wp.walk(&m, 0x4023_4567, Access::Write),
            Err(Fault::Page(pferr::P | pferr::W))
        );
        // PDPT entry 0 is not present
        assert_eq!(w.walk(&m, 0x1000, Access::Read), Err(Fault::Page(0)));
    }

    #[test]
    fn classic_32_bit_paging_with_4m_pages() {
        let m = mem();
        // PD at 0x1000: entry 0 -> PT 0x2000; entry 1: 4 MiB page at 0 (PSE)
        m.write_obj(0x2007u32, GuestAddress(0x1000)).expect("w");
        m.write_obj(0x0000_0087u32, GuestAddress(0x1004))
            .expect("w");
        m.write_obj(0x5007u32, GuestAddress(0x2000 + 3 * 4))
            .expect("w");
        let w = X86Walker {
            cr0: ctl::CR0_PE | ctl::CR0_PG,
            cr3: 0x1000,
            cr4: ctl::CR4_PSE,
            efer: 0,
            cpl: 3,
        };
        assert_eq!(w.walk(&m, 0x3123, Access::Write).expect("4k").paddr, 0x5123);
        let pte: u32 = m.read_obj(GuestAddress(0x200c)).expect("r");
        assert_eq!(pte & 0x60, 0x60);
        assert_eq!(
            w.walk(&m, 0x0040_1234, Access::Read).expect("4m").paddr,
            0x1234
        );
        assert_eq!(w.walk(&m, 0x4000, Access::Read), Err(Fault::Page(pferr::U)));
    }

    #[test]
    fn paging_off_is_identity_and_rwx() {
        let m = mem();
        let w = X86Walker {
            cr0: ctl::CR0_PE,
            cr3: 0,
            cr4: 0,
            efer: 0,
            cpl: 0,
        };
        let t = w.walk(&m, 0x1_2345_6789, Access::Exec).expect("flat");
        assert_eq!(t.paddr, 0x2345_6789);
        assert_eq!(t.perms, PagePerms::RWX);
    }

    /// The index, not the snapshot's CPL, decides the permissions of
    /// translated code's accesses.
    #[test]
    fn translate_checks_the_permissions_of_the_index() {
        let m = mem();
        m.write_obj(0x2000u64 | 7, GuestAddress(0x1000)).expect("w");
        m.write_obj(0x3000u64 | 7, GuestAddress(0x2000)).expect("w");
        m.write_obj(0x4000u64 | 7, GuestAddress(0x3000)).expect("w");
        // 0x5000: supervisor only, writable; 0x6000: user, read-only
        m.write_obj(0x5000u64 | 3, GuestAddress(0x4000 + 5 * 8))
            .expect("w");
        m.write_obj(0x6000u64 | 5, GuestAddress(0x4000 + 6 * 8))
            .expect("w");
        for cpl in [0, 3] {
            let w = X86Walker { cpl, ..w64(0x1000) };
            let user = |va, access| w.translate(&m, va, access, MMU_USER);
            let sup = |va, access| w.translate(&m, va, access, MMU_SUPERVISOR);
            assert_eq!(
                user(0x5008, Access::Read),
                Err(Fault::Page(pferr::P | pferr::U).to_mem())
            );
            assert_eq!(sup(0x5008, Access::Write).expect("sup").paddr, 0x5008);
            assert!(user(0x6000, Access::Read).is_ok());
            assert_eq!(
                user(0x6000, Access::Write),
                Err(Fault::Page(pferr::P | pferr::W | pferr::U).to_mem())
            );
            // CR0.WP: supervisor writes to read-only pages fault too
            assert_eq!(
                sup(0x6000, Access::Write),
                Err(Fault::Page(pferr::P | pferr::W).to_mem())
            );
            assert_eq!(
                w.translate(&m, 0x6000, Access::Read, 2),
                Err(Fault::General.to_mem())
            );
        }
        assert_eq!(mmu_idx_for_cpl(3), MMU_USER);
        assert_eq!(mmu_idx_for_cpl(1), MMU_SUPERVISOR);
    }

    #[test]
    fn fault_codes_round_trip() {
        for f in [
            Fault::Page(pferr::P | pferr::W | pferr::U),
            Fault::General,
            Fault::Stack,
        ] {
            assert_eq!(Fault::from_mem(f.to_mem()), f);
        }
    }
}
