//! Boot structures and entry states for the x86-64 board's boot protocols: the
//! Xen PVH start info, the multiboot info, the boot GDT, identity page tables,
//! and the register state each protocol enters the kernel with.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::*;
use crate::arch::{Segment, TableRegister, X86CpuState, x86_reg};
use crate::loader::LoadError;
use crate::loader::multiboot::BOOTLOADER_MAGIC;

pub const SELECTOR_CODE64: u16 = 0x08;
pub const SELECTOR_CODE32: u16 = 0x10;
pub const SELECTOR_DATA: u16 = 0x18;
pub const SELECTOR_TSS: u16 = 0x20;

/// null, 64-bit code, 32-bit code, data, 32-bit busy TSS: flat 4 GiB segments.
const BOOT_GDT_ENTRIES: [u64; 5] = [
    0,
    0x00af_9b00_0000_ffff,
    0x00cf_9b00_0000_ffff,
    0x00cf_9300_0000_ffff,
    0x0000_8b00_0000_0067,
];

const CR0_PE: u64 = 1 << 0;
const CR0_ET: u64 = 1 << 4;
const CR0_NW: u64 = 1 << 29;
const CR0_CD: u64 = 1 << 30;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const RFLAGS_RESERVED: u64 = 1 << 1;

/// hvm_start_info magic ("xEn3" with the high bit of the last byte set).
pub const START_INFO_MAGIC: u32 = 0x336e_c578;

fn write(memory: &GuestMemoryMmap, addr: u64, bytes: &[u8]) -> Result<(), LoadError> {
    memory
        .write_slice(bytes, GuestAddress(addr))
        .map_err(|_| LoadError::GuestMemory { addr })
}

fn flat_segment(selector: u16, type_: u8, long: bool) -> Segment {
    Segment {
        selector,
        base: 0,
        limit: 0xffff_ffff,
        type_,
        present: true,
        dpl: 0,
        db: !long,
        s: true,
        l: long,
        g: true,
        avl: false,
        unusable: false,
    }
}

/// Segment registers and descriptor tables as the boot GDT defines them.
fn flat_state(long: bool) -> X86CpuState {
    let data = flat_segment(SELECTOR_DATA, 0x3, false);
    let code = if long {
        flat_segment(SELECTOR_CODE64, 0xb, true)
    } else {
        flat_segment(SELECTOR_CODE32, 0xb, false)
    };
    X86CpuState {
        rflags: RFLAGS_RESERVED,
        cs: code,
        ds: data,
        es: data,
        fs: data,
        gs: data,
        ss: data,
        tr: Segment {
            selector: SELECTOR_TSS,
            limit: 0x67,
            type_: 0xb,
            present: true,
            ..Segment::default()
        },
        ldtr: Segment {
            limit: 0xffff,
            type_: 0x2,
            present: true,
            ..Segment::default()
        },
        gdt: TableRegister {
            base: BOOT_GDT,
            limit: (BOOT_GDT_ENTRIES.len() * 8 - 1) as u16,
        },
        idt: TableRegister { base: 0, limit: 0 },
        ..X86CpuState::default()
    }
}

/// Writes the boot GDT the entry states refer to.
pub fn write_gdt(memory: &GuestMemoryMmap) -> Result<(), LoadError> {
    let bytes: Vec<u8> = BOOT_GDT_ENTRIES
        .iter()
        .flat_map(|entry| entry.to_le_bytes())
        .collect();
    write(memory, BOOT_GDT, &bytes)
}

/// 32-bit protected mode, paging off, flat segments: the PVH and multiboot entry.
pub fn protected_mode_entry(entry: u64, eax: u64, ebx: u64) -> X86CpuState {
    let mut state = flat_state(false);
    state.rip = entry;
    state.gprs[x86_reg::RAX] = eax;
    state.gprs[x86_reg::RBX] = ebx;
    state.gprs[x86_reg::RSP] = BOOT_STACK_TOP;
    state.cr0 = CR0_PE | CR0_ET;
    state
}

/// The PVH entry: `ebx` holds the start info.
pub fn pvh_entry(entry: u64) -> X86CpuState {
    protected_mode_entry(entry, 0, START_INFO)
}

/// The multiboot entry: the boot loader magic in `eax`, the info in `ebx`.
pub fn multiboot_entry(entry: u64) -> X86CpuState {
    protected_mode_entry(entry, u64::from(BOOTLOADER_MAGIC), MULTIBOOT_INFO)
}

/// 64-bit long mode on moat's identity page tables: the plain ELF64 entry, with
/// the start info in `rsi`.
pub fn long_mode_entry(entry: u64) -> X86CpuState {
    let mut state = flat_state(true);
    state.rip = entry;
    state.gprs[x86_reg::RSI] = START_INFO;
    state.gprs[x86_reg::RSP] = BOOT_STACK_TOP;
    state.cr0 = CR0_PE | CR0_ET | CR0_PG;
    state.cr3 = PAGE_TABLES;
    state.cr4 = CR4_PAE;
    state.efer = EFER_LME | EFER_LMA;
    state
}

/// The state after INIT (Intel SDM vol. 3, table 9-1): real mode, CS:IP at
/// the reset vector; a secondary CPU waits here for its start-up IPI.
pub fn init_state() -> X86CpuState {
    let real = |selector: u16, base: u64, type_: u8| Segment {
        selector,
        base,
        limit: 0xffff,
        type_,
        present: true,
        s: true,
        ..Segment::default()
    };
    let data = real(0, 0, 0x3);
    X86CpuState {
        rip: 0xfff0,
        rflags: RFLAGS_RESERVED,
        cs: real(0xf000, 0xffff_0000, 0xb),
        ds: data,
        es: data,
        fs: data,
        gs: data,
        ss: data,
        tr: Segment {
            limit: 0xffff,
            type_: 0xb,
            present: true,
            ..Segment::default()
        },
        ldtr: Segment {
            limit: 0xffff,
            type_: 0x2,
            present: true,
            ..Segment::default()
        },
        idt: TableRegister {
            base: 0,
            limit: 0x3ff,
        },
        gdt: TableRegister {
            base: 0,
            limit: 0xffff,
        },
        cr0: CR0_ET | CR0_CD | CR0_NW,
        ..X86CpuState::default()
    }
}

/// Identity-maps `[0, top)` with 2 MiB pages: one PML4 entry, one PDPT entry per
/// GiB, one page directory per GiB.
pub fn write_identity_page_tables(memory: &GuestMemoryMmap, top: u64) -> Result<(), LoadError> {
    const PRESENT_WRITABLE: u64 = 0b11;
    const HUGE: u64 = 1 << 7;
    let pml4 = PAGE_TABLES;
    let pdpt = PAGE_TABLES + 0x1000;
    let directories = top.div_ceil(1 << 30);
    write(memory, pml4, &(pdpt | PRESENT_WRITABLE).to_le_bytes())?;
    let mut pdpt_entries = Vec::with_capacity(directories as usize * 8);
    let mut directory_entries = Vec::with_capacity(directories as usize * 4096);
    for gib in 0..directories {
        let directory = PAGE_TABLES + 0x2000 + gib * 0x1000;
        pdpt_entries.extend_from_slice(&(directory | PRESENT_WRITABLE).to_le_bytes());
        for page in 0..512u64 {
            let addr = (gib << 30) | (page << 21);
            directory_entries.extend_from_slice(&(addr | PRESENT_WRITABLE | HUGE).to_le_bytes());
        }
    }
    write(memory, pdpt, &pdpt_entries)?;
    write(memory, PAGE_TABLES + 0x2000, &directory_entries)
}

/// An initrd placed in guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacedModule {
    pub addr: u64,
    pub size: u64,
}

/// Writes the PVH `hvm_start_info` (version 1, with the memory map), the module
/// list and the command line.
pub fn write_start_info(
    memory: &GuestMemoryMmap,
    memory_map: &[MemoryMapEntry],
    cmdline_addr: u64,
    module: Option<PlacedModule>,
) -> Result<(), LoadError> {
    let mut map = Vec::with_capacity(memory_map.len() * 24);
    for entry in memory_map {
        map.extend_from_slice(&entry.addr.to_le_bytes());
        map.extend_from_slice(&entry.size.to_le_bytes());
        map.extend_from_slice(&entry.kind.to_le_bytes());
        map.extend_from_slice(&0u32.to_le_bytes());
    }
    debug_assert!(MEMORY_MAP + map.len() as u64 <= MEMORY_MAP_END);
    write(memory, MEMORY_MAP, &map)?;

    if let Some(module) = module {
        let mut entry = Vec::with_capacity(32);
        entry.extend_from_slice(&module.addr.to_le_bytes());
        entry.extend_from_slice(&module.size.to_le_bytes());
        entry.extend_from_slice(&0u64.to_le_bytes()); // no module command line
        entry.extend_from_slice(&0u64.to_le_bytes());
        write(memory, START_INFO_MODULES, &entry)?;
    }

    let mut info = Vec::with_capacity(56);
    info.extend_from_slice(&START_INFO_MAGIC.to_le_bytes());
    info.extend_from_slice(&1u32.to_le_bytes()); // version
    info.extend_from_slice(&0u32.to_le_bytes()); // flags
    info.extend_from_slice(&u32::from(module.is_some()).to_le_bytes());
    let modlist = if module.is_some() {
        START_INFO_MODULES
    } else {
        0
    };
    info.extend_from_slice(&modlist.to_le_bytes());
    info.extend_from_slice(&cmdline_addr.to_le_bytes());
    info.extend_from_slice(&0u64.to_le_bytes()); // no ACPI RSDP yet
    info.extend_from_slice(&MEMORY_MAP.to_le_bytes());
    info.extend_from_slice(&(memory_map.len() as u32).to_le_bytes());
    info.extend_from_slice(&0u32.to_le_bytes());
    write(memory, START_INFO, &info)
}

const MBI_FLAG_MEMORY: u32 = 1 << 0;
const MBI_FLAG_BOOT_DEVICE: u32 = 1 << 1;
const MBI_FLAG_CMDLINE: u32 = 1 << 2;
const MBI_FLAG_MODULES: u32 = 1 << 3;
const MBI_FLAG_MEMORY_MAP: u32 = 1 << 6;
const MBI_FLAG_LOADER_NAME: u32 = 1 << 9;
const MULTIBOOT_INFO_SIZE: usize = 88;

/// Writes the multiboot information structure, its memory map, module list and
/// loader name.
pub fn write_multiboot_info(
    memory: &GuestMemoryMmap,
    memory_size: u64,
    memory_map: &[MemoryMapEntry],
    cmdline_addr: u64,
    module: Option<(PlacedModule, &str)>,
) -> Result<(), LoadError> {
    // Each entry: size (20, not counting itself), base, length, type.
    let mut map = Vec::with_capacity(memory_map.len() * 24);
    for entry in memory_map {
        map.extend_from_slice(&20u32.to_le_bytes());
        map.extend_from_slice(&entry.addr.to_le_bytes());
        map.extend_from_slice(&entry.size.to_le_bytes());
        map.extend_from_slice(&entry.kind.to_le_bytes());
    }
    write(memory, MEMORY_MAP, &map)?;

    let mut flags = MBI_FLAG_MEMORY
        | MBI_FLAG_BOOT_DEVICE
        | MBI_FLAG_CMDLINE
        | MBI_FLAG_MEMORY_MAP
        | MBI_FLAG_LOADER_NAME;
    if let Some((placed, name)) = module {
        flags |= MBI_FLAG_MODULES;
        let mut string = name.as_bytes().to_vec();
        string.truncate(MULTIBOOT_MODULE_STRING_MAX - 1);
        string.push(0);
        write(memory, MULTIBOOT_MODULE_STRING, &string)?;
        let mut entry = Vec::with_capacity(16);
        // Module addresses are 32-bit: the initrd is always placed below 3 GiB.
        entry.extend_from_slice(&(placed.addr as u32).to_le_bytes());
        entry.extend_from_slice(&((placed.addr + placed.size) as u32).to_le_bytes());
        entry.extend_from_slice(&(MULTIBOOT_MODULE_STRING as u32).to_le_bytes());
        entry.extend_from_slice(&0u32.to_le_bytes());
        write(memory, MULTIBOOT_MODULES, &entry)?;
    }
    write(memory, MULTIBOOT_LOADER_NAME, b"moat\0")?;

    let mut info = [0u8; MULTIBOOT_INFO_SIZE];
    let mut put = |offset: usize, value: u32| {
        info[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    };
    put(0, flags);
    put(4, (LOW_RAM_END / 1024) as u32);
    // mem_upper: contiguous KiB from 1 MiB up to the first hole.
    let upper = (low_ram_top(memory_size) - HIGH_MEMORY) / 1024;
    put(8, upper as u32);
    // No BIOS drive booted the kernel; QEMU reports the same "none" value.
    put(12, 0x8000_ffff);
    put(16, cmdline_addr as u32);
    put(20, u32::from(module.is_some()));
    put(24, MULTIBOOT_MODULES as u32);
    put(44, map.len() as u32);
    put(48, MEMORY_MAP as u32);
    put(64, MULTIBOOT_LOADER_NAME as u32);
    write(memory, MULTIBOOT_INFO, &info)
}

/// Writes the NUL-terminated command line.
pub fn write_cmdline(memory: &GuestMemoryMmap, cmdline: &str) -> Result<u64, LoadError> {
    if cmdline.as_bytes().contains(&0) {
        return Err(LoadError::CmdlineNul);
    }
    if cmdline.len() + 1 > CMDLINE_MAX {
        return Err(LoadError::CmdlineTooLong {
            len: cmdline.len(),
            max: CMDLINE_MAX - 1,
        });
    }
    let mut bytes = cmdline.as_bytes().to_vec();
    bytes.push(0);
    write(memory, CMDLINE, &bytes)?;
    Ok(CMDLINE)
}
