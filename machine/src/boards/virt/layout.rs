//! The `virt` board's guest-physical memory map: QEMU `virt`'s, so the same
//! images (and their hard-coded device addresses) run on both.
//!
//! ```text
//!   0x0800_0000 ┬───────────────────────────────┐
//!               │ GIC distributor (64 KiB)       │
//!   0x0801_0000 │ GIC CPU interface (64 KiB)     │
//!   0x0900_0000 │ PL011 UART (4 KiB), SPI 1      │  MMIO
//!   0x0901_0000 │ PL031 RTC (4 KiB), SPI 2       │
//!   0x0a00_0000 │ virtio-mmio, 32 × 0x200        │
//!   0x4000_0000 ├───────────────────────────────┤
//!               │ raw binaries at +0x8_0000,     │
//!               │ Images at +2 MiB + text_offset │  RAM
//!               │ ... initrd, then the DTB in    │
//!               │ the last 2 MiB                 │
//!               └───────────────────────────────┘
//! ```

pub const GIC_DIST_BASE: u64 = 0x0800_0000;
pub const GIC_DIST_SIZE: u64 = 0x1_0000;
pub const GIC_CPU_BASE: u64 = 0x0801_0000;
pub const GIC_CPU_SIZE: u64 = 0x1_0000;
pub const UART_BASE: u64 = 0x0900_0000;
pub const UART_SIZE: u64 = 0x1000;
/// The UART's SPI (device-tree `<0 1 4>`).
pub const UART_SPI: u32 = 1;
pub const RTC_BASE: u64 = 0x0901_0000;
pub const RTC_SIZE: u64 = 0x1000;
pub const RTC_SPI: u32 = 2;
pub const VIRTIO_BASE: u64 = 0x0a00_0000;
pub const VIRTIO_SLOT_SIZE: u64 = 0x200;
pub const VIRTIO_SLOTS: u64 = 32;
/// virtio-mmio slot n raises SPI 16 + n.
pub const VIRTIO_FIRST_SPI: u32 = 16;

pub const RAM_BASE: u64 = 0x4000_0000;
/// Where raw binaries (no header) load, as QEMU's `-kernel` does.
pub const RAW_LOAD_OFFSET: u64 = 0x8_0000;
/// Images ask for a place relative to a 2 MiB boundary.
pub const IMAGE_ALIGN: u64 = 2 << 20;
/// The device tree lives in the last 2 MiB of RAM (the boot protocol wants it
/// 8-byte aligned, at most 2 MiB, not crossing a 2 MiB boundary).
pub const DTB_MAX: u64 = 2 << 20;

pub const MIN_MEMORY: u64 = 8 << 20;
pub const MAX_MEMORY: u64 = 64 << 30;

/// The generic timer's PPIs (INTID = 16 + PPI): secure and non-secure EL1
/// physical, virtual, hypervisor, as QEMU's device tree lists them.
pub const TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];
