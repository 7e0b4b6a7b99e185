//! The x86-64 board's guest-physical memory map.
//!
//! ```text
//!   0x0000_0000 ┬──────────────────────────────────────────────┐
//!               │ real-mode IVT/BDA (left zero)                │
//!   0x0000_0500 │ boot GDT                                     │
//!   0x0000_1000 │ hvm_start_info, module list                  │  RAM, reported
//!   0x0000_2000 │ memory map (PVH or multiboot format)         │  usable; moat's
//!   0x0000_3000 │ multiboot info, modules, loader name         │  boot structures
//!   0x0000_4000 │ kernel command line (up to 16 KiB)           │
//!   0x0000_8000 │ boot stack (grows down from 0x9000)          │
//!   0x0001_0000 │ identity page tables (PML4, PDPT, PDs)       │
//!   0x0009_fc00 ├──────────────────────────────────────────────┤
//!               │ EBDA, VGA hole, BIOS area                    │  reserved
//!   0x0010_0000 ├──────────────────────────────────────────────┤
//!               │ kernel image, then RAM; initrd at its top    │  RAM
//!   0xc000_0000 ├──────────────────────────────────────────────┤
//!               │ 32-bit device hole: virtio-mmio 0xd000_0000, │  not RAM
//!               │ I/O APIC 0xfec0_0000,                        │
//!               │ local APIC 0xfee0_0000                       │
//!   1_0000_0000 ├──────────────────────────────────────────────┤
//!               │ the rest of RAM, when more than 3 GiB        │  RAM
//!               └──────────────────────────────────────────────┘
//! ```
//!
//! Kernel segments must load at or above 1 MiB: below that, moat writes its boot
//! structures, and real firmware would have its own there.

pub const BOOT_GDT: u64 = 0x500;
pub const START_INFO: u64 = 0x1000;
pub const START_INFO_MODULES: u64 = 0x1040;
pub const MEMORY_MAP: u64 = 0x2000;
pub const MEMORY_MAP_END: u64 = 0x3000;
pub const MULTIBOOT_INFO: u64 = 0x3000;
pub const MULTIBOOT_MODULES: u64 = 0x3100;
pub const MULTIBOOT_LOADER_NAME: u64 = 0x3200;
pub const MULTIBOOT_MODULE_STRING: u64 = 0x3300;
pub const MULTIBOOT_MODULE_STRING_MAX: usize = 0x4000 - 0x3300;
pub const CMDLINE: u64 = 0x4000;
pub const CMDLINE_MAX: usize = 0x4000;
pub const BOOT_STACK_TOP: u64 = 0x9000;
pub const PAGE_TABLES: u64 = 0x1_0000;
pub const PAGE_TABLES_END: u64 = 0x8_0000;

/// Conventional memory ends here; the EBDA and the legacy holes follow.
pub const LOW_RAM_END: u64 = 0x9_fc00;
/// Where the kernel's own memory begins.
pub const HIGH_MEMORY: u64 = 0x10_0000;
/// RAM below 4 GiB stops here so 32-bit devices have room.
pub const MMIO_HOLE_START: u64 = 0xc000_0000;
/// virtio-mmio devices, 0x200 bytes each, in the device hole.
pub const VIRTIO_MMIO_BASE: u64 = 0xd000_0000;
pub const FOUR_GIB: u64 = 0x1_0000_0000;

pub const MIN_MEMORY: u64 = 4 << 20;
/// Bounded by the page tables moat builds below 512 KiB for the long-mode entry.
pub const MAX_MEMORY: u64 = 64 << 30;

// The boot structures must not overlap each other or the legacy hole.
const _: () = assert!(PAGE_TABLES_END <= LOW_RAM_END);
const _: () = assert!(CMDLINE + CMDLINE_MAX as u64 <= BOOT_STACK_TOP - 0x1000);
const _: () = assert!(MULTIBOOT_MODULE_STRING + MULTIBOOT_MODULE_STRING_MAX as u64 <= CMDLINE);

/// E820 types, used by both the PVH and the multiboot memory map.
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;

/// One memory-map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryMapEntry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

/// Where RAM is for a machine with `memory_size` bytes: `(base, size)` in
/// ascending order.
pub fn ram_regions(memory_size: u64) -> Vec<(u64, u64)> {
    if memory_size <= MMIO_HOLE_START {
        vec![(0, memory_size)]
    } else {
        vec![
            (0, MMIO_HOLE_START),
            (FOUR_GIB, memory_size - MMIO_HOLE_START),
        ]
    }
}

/// The memory map the guest is told about.
pub fn memory_map(memory_size: u64) -> Vec<MemoryMapEntry> {
    let mut map = vec![
        MemoryMapEntry {
            addr: 0,
            size: LOW_RAM_END,
            kind: E820_RAM,
        },
        MemoryMapEntry {
            addr: LOW_RAM_END,
            size: HIGH_MEMORY - LOW_RAM_END,
            kind: E820_RESERVED,
        },
    ];
    for (base, size) in ram_regions(memory_size) {
        let (base, size) = if base == 0 {
            (HIGH_MEMORY, size - HIGH_MEMORY)
        } else {
            (base, size)
        };
        map.push(MemoryMapEntry {
            addr: base,
            size,
            kind: E820_RAM,
        });
    }
    map
}

/// End of RAM below 4 GiB.
pub fn low_ram_top(memory_size: u64) -> u64 {
    memory_size.min(MMIO_HOLE_START)
}

/// End of the highest RAM region.
pub fn ram_top(memory_size: u64) -> u64 {
    ram_regions(memory_size)
        .last()
        .map_or(0, |&(base, size)| base + size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_machine_has_one_region_and_the_legacy_hole() {
        assert_eq!(ram_regions(128 << 20), vec![(0, 128 << 20)]);
        let map = memory_map(128 << 20);
        assert_eq!(map.len(), 3);
        assert_eq!(map[1].kind, E820_RESERVED);
        assert_eq!(map[2].addr, HIGH_MEMORY);
        assert_eq!(map[2].addr + map[2].size, 128 << 20);
    }

    #[test]
    fn large_machine_splits_around_the_device_hole() {
        let size = 4u64 << 30;
        assert_eq!(
            ram_regions(size),
            vec![(0, MMIO_HOLE_START), (FOUR_GIB, 1 << 30)]
        );
        assert_eq!(ram_top(size), FOUR_GIB + (1 << 30));
        let total: u64 = memory_map(size)
            .iter()
            .filter(|entry| entry.kind == E820_RAM)
            .map(|entry| entry.size)
            .sum();
        assert_eq!(total, size - (HIGH_MEMORY - LOW_RAM_END));
    }

    #[test]
    fn boot_structures_fit_their_slots() {
        // The largest machine's page directories must fit below the legacy hole.
        let directories = ram_top(MAX_MEMORY).div_ceil(1 << 30);
        assert!(PAGE_TABLES + (2 + directories) * 0x1000 <= PAGE_TABLES_END);
    }
}
