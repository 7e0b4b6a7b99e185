//! The `virt` board (aarch64): QEMU `virt`'s memory map ([`layout`]) and boot
//! ABI. The kernel enters at EL1h with the MMU off and `x0` holding the
//! address of a device tree generated from the board that was built
//! ([`fdt`]), whatever the image's format (QEMU passes none to ELF images;
//! moat always does):
//!
//! - ELF (`EM_AARCH64`): segments at their physical addresses in RAM, entry
//!   at `e_entry`.
//! - arm64 `Image` (the Linux boot protocol): at a 2 MiB-aligned base plus
//!   `text_offset`, placed as QEMU places it (RAM + 2 MiB + `text_offset`
//!   when the offset is 0), entry at its first byte.
//! - Anything else is a raw binary, loaded at RAM + 0x80000 and entered there.
//!
//! The initrd goes at the top of RAM below the device tree, which takes the
//! last 2 MiB.

pub mod fdt;
pub mod layout;

use std::sync::{Arc, Mutex};

use devices::{
    Bus, GICC_SIZE, GICD_SIZE, GicCpuInterface, GicDistributor, IrqRouter, LineKind, PL011_SIZE,
    PL031_SIZE, Pl011, Pl031, VirtInterrupts,
};
use goblin::elf::header::EM_AARCH64;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::{Board, BoardConfig, BoardError, Host, MachineKind};
use crate::accel::VmSpec;
use crate::arch::{AARCH64_PSTATE_EL1H_MASKED, Aarch64CpuState, Arch, BootState, CpuState};
use crate::loader::elf::{ElfImage, machine_name};
use crate::loader::{LoadError, arm64_image, elf};
use crate::memory::create_guest_memory;
use layout::*;

/// SCTLR_EL1 at reset: the RES1 bits, MMU and caches off, little-endian.
const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// How the kernel was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Elf,
    Image,
    Raw,
}

impl ImageFormat {
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Elf => "elf",
            ImageFormat::Image => "arm64-image",
            ImageFormat::Raw => "raw",
        }
    }
}

/// A built `virt` machine.
pub struct VirtBoard {
    /// What the accelerator gets: memory, buses, controllers, clock.
    pub spec: VmSpec,
    pub boot: BootState,
    pub format: ImageFormat,
    /// The device tree handed to the kernel.
    pub dtb: Vec<u8>,
}

impl VirtBoard {
    pub fn build(config: &BoardConfig<'_>, host: &Host) -> Result<VirtBoard, BoardError> {
        check_memory_size(config.memory_size)?;
        host.clock.reset_epoch();
        let memory = create_guest_memory(&[(GuestAddress(RAM_BASE), config.memory_size)])?;
        let ram_end = RAM_BASE + config.memory_size;
        let dtb_addr = ram_end - DTB_MAX;
        let (format, entry, kernel_end) =
            load_kernel(&memory, config.kernel, dtb_addr).map_err(BoardError::Kernel)?;
        let initrd = place_initrd(&memory, config, kernel_end, dtb_addr)?;
        let slots = config.virtio.count();
        if slots as u64 > VIRTIO_SLOTS {
            return Err(BoardError::TooManyVirtio {
                count: slots,
                machine: MachineKind::Virt,
                max: VIRTIO_SLOTS as usize,
            });
        }
        let dtb = fdt::build(&fdt::TreeConfig {
            cpus: config.cpus,
            memory_size: config.memory_size,
            cmdline: config.cmdline,
            initrd,
            // Every slot, as QEMU lists them: the unused ones answer with
            // device ID 0.
            virtio_slots: VIRTIO_SLOTS as usize,
        })
        .map_err(BoardError::DeviceTree)?;
        if dtb.len() as u64 > DTB_MAX {
            return Err(BoardError::Kernel(LoadError::DeviceTreeTooLarge {
                size: dtb.len() as u64,
                max: DTB_MAX,
            }));
        }
        write(&memory, dtb_addr, &dtb).map_err(BoardError::Kernel)?;

        let irq = IrqRouter::new();
        let lifecycle = host.lifecycle.clone();
        let interrupts = VirtInterrupts::new(
            host.clock.clone(),
            config.cpus,
            Arc::new(move |cpu| lifecycle.vcpu(cpu).kick()),
        )?;
        irq.connect(interrupts.gic.clone());
        let router = Arc::downgrade(&irq);
        interrupts.gic.set_eoi_listener(Arc::new(move |spi| {
            if let Some(router) = router.upgrade() {
                router.end_of_interrupt(spi);
            }
        }));
        let mut mmio_bus = Bus::new("mmio");
        mmio_bus.insert(
            Arc::new(Mutex::new(GicDistributor(interrupts.gic.clone()))),
            GIC_DIST_BASE,
            GICD_SIZE,
        )?;
        mmio_bus.insert(
            Arc::new(Mutex::new(GicCpuInterface(interrupts.gic.clone()))),
            GIC_CPU_BASE,
            GICC_SIZE,
        )?;
        let uart = Arc::new(Mutex::new(Pl011::new(
            irq.line(UART_SPI, LineKind::Level),
            host.console.writer(),
        )));
        host.console.attach(uart.clone());
        mmio_bus.insert(uart, UART_BASE, PL011_SIZE)?;
        let rtc = Pl031::new(
            host.clock.clone(),
            irq.line(RTC_SPI, LineKind::Level),
            std::time::SystemTime::now(),
        );
        mmio_bus.insert(rtc, RTC_BASE, PL031_SIZE)?;
        super::virtio::attach(
            &config.virtio,
            &memory,
            &mut mmio_bus,
            |slot| VIRTIO_BASE + slot as u64 * VIRTIO_SLOT_SIZE,
            |slot| irq.line(VIRTIO_FIRST_SPI + slot as u32, LineKind::Level),
        )?;
        super::virtio::fill_empty(&mut mmio_bus, slots, VIRTIO_SLOTS as usize, |slot| {
            VIRTIO_BASE + slot as u64 * VIRTIO_SLOT_SIZE
        })?;

        let mut cpu = Aarch64CpuState {
            pc: entry,
            pstate: AARCH64_PSTATE_EL1H_MASKED,
            sctlr_el1: SCTLR_EL1_RESET,
            ..Aarch64CpuState::default()
        };
        cpu.x[0] = dtb_addr;
        Ok(VirtBoard {
            spec: VmSpec {
                arch: Arch::Aarch64,
                cpus: config.cpus,
                memory,
                pio_bus: Arc::new(Bus::new("pio")),
                mmio_bus: Arc::new(mmio_bus),
                lifecycle: host.lifecycle.clone(),
                interrupts: Arc::new(interrupts),
                irq,
                clock: host.clock.clone(),
            },
            boot: BootState::on(CpuState::Aarch64(Box::new(cpu))),
            format,
            dtb,
        })
    }
}

impl Board for VirtBoard {
    fn kind(&self) -> MachineKind {
        MachineKind::Virt
    }

    fn vm_spec(&self) -> VmSpec {
        self.spec.clone()
    }

    fn boot_state(&self, cpu: u32) -> BootState {
        if cpu == 0 {
            self.boot.clone()
        } else {
            // Off until PSCI CPU_ON names its entry point and context.
            BootState::off(CpuState::Aarch64(Box::new(Aarch64CpuState {
                pstate: AARCH64_PSTATE_EL1H_MASKED,
                sctlr_el1: SCTLR_EL1_RESET,
                ..Aarch64CpuState::default()
            })))
        }
    }

    fn boot_protocol(&self) -> &'static str {
        self.format.name()
    }

    fn device_tree(&self) -> Option<&[u8]> {
        Some(&self.dtb)
    }
}

/// Checks a `--memory` value for `virt` before anything is allocated.
pub fn check_memory_size(size: u64) -> Result<(), BoardError> {
    super::check_memory_range(size, MIN_MEMORY, MAX_MEMORY)
}

/// Loads the kernel below `limit` (where the device tree goes); returns its
/// format, entry point and end.
fn load_kernel(
    memory: &GuestMemoryMmap,
    file: &[u8],
    limit: u64,
) -> Result<(ImageFormat, u64, u64), LoadError> {
    if elf::is_elf(file) {
        let image = ElfImage::parse(file)?;
        if image.machine != EM_AARCH64 {
            return Err(LoadError::WrongMachine {
                found: machine_name(image.machine),
                expected: "aarch64",
            });
        }
        let mut end = RAM_BASE;
        for segment in &image.segments {
            if segment.paddr < RAM_BASE || segment.paddr_end() > limit {
                return Err(LoadError::OutsideRam {
                    index: segment.index,
                    start: segment.paddr,
                    end: segment.paddr_end(),
                });
            }
            end = end.max(segment.paddr_end());
        }
        for segment in &image.segments {
            write(memory, segment.paddr, segment.data(file))?;
        }
        let entry = physical_entry(&image)?;
        return Ok((ImageFormat::Elf, entry, end));
    }
    let (format, start, size) = if arm64_image::is_image(file) {
        let header = arm64_image::parse(file)?;
        // QEMU keeps the bottom of RAM for its boot stub and moves an image
        // that asks for it up by 2 MiB; do the same, so addresses match.
        let offset = if header.text_offset < 0x1000 {
            header.text_offset + IMAGE_ALIGN
        } else {
            header.text_offset
        };
        let size = header.image_size.max(file.len() as u64);
        (ImageFormat::Image, RAM_BASE + offset, size)
    } else {
        (
            ImageFormat::Raw,
            RAM_BASE + RAW_LOAD_OFFSET,
            file.len() as u64,
        )
    };
    let end = start.checked_add(size).filter(|&end| end <= limit);
    let Some(end) = end else {
        return Err(LoadError::KernelPastRam {
            start,
            needed: size,
            ram_end: limit,
        });
    };
    write(memory, start, file)?;
    Ok((format, start, end))
}

/// `e_entry` as a physical address: itself if a segment holds it, else
/// translated through the segment whose virtual range holds it.
fn physical_entry(image: &ElfImage<'_>) -> Result<u64, LoadError> {
    if image.paddr_in_segment(image.entry) {
        return Ok(image.entry);
    }
    image
        .segments
        .iter()
        .find_map(|segment| {
            let offset = image.entry.checked_sub(segment.vaddr)?;
            (offset < segment.mem_size).then(|| segment.paddr + offset)
        })
        .ok_or(LoadError::EntryOutsideSegments { entry: image.entry })
}

/// Puts the initrd page-aligned just below the device tree, above the kernel.
fn place_initrd(
    memory: &GuestMemoryMmap,
    config: &BoardConfig<'_>,
    kernel_end: u64,
    limit: u64,
) -> Result<Option<(u64, u64)>, BoardError> {
    let Some(initrd) = &config.initrd else {
        return Ok(None);
    };
    let size = initrd.data.len() as u64;
    let floor = kernel_end.next_multiple_of(0x1000);
    let too_large = || {
        BoardError::Kernel(LoadError::InitrdTooLarge {
            size,
            limit,
            free: limit.saturating_sub(floor),
        })
    };
    let start = limit.checked_sub(size).ok_or_else(too_large)? & !0xfff;
    if start < floor {
        return Err(too_large());
    }
    write(memory, start, initrd.data).map_err(BoardError::Kernel)?;
    Ok(Some((start, start + size)))
}

fn write(memory: &GuestMemoryMmap, addr: u64, data: &[u8]) -> Result<(), LoadError> {
    memory
        .write_slice(data, GuestAddress(addr))
        .map_err(|_| LoadError::GuestMemory { addr })
}

#[cfg(test)]
mod tests;
