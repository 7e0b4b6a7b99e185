//! The `pc` board (x86-64): a PC without PCI. RAM from 0 (memory map in [`layout`]), COM1
//! at 0x3f8 (IRQ 4), QEMU's debug-exit at 0xf4, reset at 0x64 and 0xcf9, the 8259
//! pair (0x20, 0xa0, ELCR 0x4d0), the 8254 PIT (0x40, IRQ 0, port 0x61), the CMOS
//! RTC (0x70, IRQ 8), the I/O APIC and a local APIC per vCPU (wiring in
//! [`interrupts`]), and the kernel loaded by one of three boot protocols:
//!
//! - Multiboot v1 (ELF32 or ELF64 with a multiboot header, or the a.out kludge):
//!   32-bit entry, `eax` = 0x2BADB002, `ebx` → multiboot info.
//! - Xen PVH (an ELF note `XEN_ELFNOTE_PHYS32_ENTRY`): 32-bit entry, `ebx` →
//!   `hvm_start_info`.
//! - Plain ELF64: 64-bit entry on identity page tables, `rsi` → `hvm_start_info`.
//!
//! Detection follows QEMU's `-kernel`: a multiboot header wins over a PVH note, so
//! an image boots the same way on both.

pub mod boot;
pub mod interrupts;
pub mod layout;

use std::sync::{Arc, Mutex};

use devices::VIRTIO_MMIO_SIZE;
use devices::debug_exit::{DEBUG_EXIT_PORT, DEBUG_EXIT_SIZE};
use devices::ioapic::{IOAPIC_BASE, IOAPIC_SIZE, IoApic, IoApicMmio};
use devices::lapic::{APIC_BASE, APIC_SIZE, ApicBus};
use devices::reset::ResetPort;
use devices::rtc::pc_memory_bytes;
use devices::serial::{COM1_PORT, UART_SIZE};
use devices::{
    Bus, DebugExit, ELCR_PORT, ELCR_SIZE, IrqRouter, LineKind, MASTER_PIC_PORT, PIC_SIZE, PIT_PORT,
    PIT_SIZE, Pic8259Pair, PicWindow, Pit, PitPorts, RTC_IRQ, RTC_PORT, RTC_SIZE, ResetControl,
    Rtc, RtcPorts, SLAVE_PIC_PORT, SPEAKER_PORT, SPEAKER_SIZE, SharedPic, SpeakerPort, Uart16550,
};
use goblin::elf::header::{EM_386, EM_X86_64};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::{Board, BoardConfig, BoardError, Host, MachineKind};
use crate::accel::VmSpec;
use crate::arch::{Arch, BootState, CpuState, X86CpuState};
use crate::loader::elf::{ElfImage, machine_name};
use crate::loader::{LoadError, multiboot};
use crate::memory::create_guest_memory;
use boot::PlacedModule;
use layout::*;

/// `XEN_ELFNOTE_PHYS32_ENTRY`.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// How the kernel was entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootProtocol {
    Multiboot,
    Pvh,
    Elf64,
}

impl BootProtocol {
    pub fn name(self) -> &'static str {
        match self {
            BootProtocol::Multiboot => "multiboot",
            BootProtocol::Pvh => "pvh",
            BootProtocol::Elf64 => "elf64",
        }
    }
}

/// A built x86-64 PC, ready to hand to an accelerator.
pub struct PcBoard {
    /// What the accelerator gets: memory, buses, controllers, clock.
    pub spec: VmSpec,
    pub boot: BootState,
    pub protocol: BootProtocol,
}

impl PcBoard {
    /// Builds the machine: RAM, devices, the kernel and its boot structures.
    pub fn build(config: &BoardConfig<'_>, host: &Host) -> Result<PcBoard, BoardError> {
        check_memory_size(config.memory_size)?;
        let lifecycle = host.lifecycle.clone();
        let regions: Vec<_> = ram_regions(config.memory_size)
            .into_iter()
            .map(|(base, size)| (GuestAddress(base), size))
            .collect();
        let memory = create_guest_memory(&regions)?;
        let slots = config.virtio.count();
        if slots > VIRTIO_IRQS.len() {
            return Err(BoardError::TooManyVirtio {
                count: slots,
                machine: MachineKind::Pc,
                max: VIRTIO_IRQS.len(),
            });
        }
        // With no ACPI or device tree, Linux learns of virtio-mmio devices
        // from its command line (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES).
        let mut cmdline = config.cmdline.to_string();
        for (slot, irq) in VIRTIO_IRQS.iter().enumerate().take(slots) {
            cmdline.push_str(&format!(
                " virtio_mmio.device={VIRTIO_MMIO_SIZE}@{:#x}:{irq}",
                virtio_base(slot)
            ));
        }
        let config = &BoardConfig {
            cmdline: cmdline.trim_start(),
            ..*config
        };
        let (protocol, cpu) = load_kernel(&memory, config).map_err(BoardError::Kernel)?;

        // Guest time starts again with each machine.
        host.clock.reset_epoch();
        let irq = IrqRouter::new();
        let controllers = interrupt_controllers(config.cpus, host, &irq)?;
        let mut pio_bus = Bus::new("pio");
        let mut mmio_bus = Bus::new("mmio");
        pio_bus.insert(
            Arc::new(Mutex::new(controllers.pic.ports(PicWindow::Master))),
            MASTER_PIC_PORT,
            PIC_SIZE,
        )?;
        pio_bus.insert(
            Arc::new(Mutex::new(controllers.pic.ports(PicWindow::Slave))),
            SLAVE_PIC_PORT,
            PIC_SIZE,
        )?;
        pio_bus.insert(
            Arc::new(Mutex::new(controllers.pic.ports(PicWindow::Elcr))),
            ELCR_PORT,
            ELCR_SIZE,
        )?;
        mmio_bus.insert(
            Arc::new(Mutex::new(interrupts::LocalApicPage(
                controllers.apics.clone(),
            ))),
            APIC_BASE,
            APIC_SIZE,
        )?;
        mmio_bus.insert(
            Arc::new(Mutex::new(IoApicMmio(controllers.ioapic.clone()))),
            IOAPIC_BASE,
            IOAPIC_SIZE,
        )?;

        let pit = Pit::new(host.clock.clone(), irq.line(0, LineKind::Edge));
        pio_bus.insert(
            Arc::new(Mutex::new(PitPorts(pit.clone()))),
            PIT_PORT,
            PIT_SIZE,
        )?;
        pio_bus.insert(
            Arc::new(Mutex::new(SpeakerPort(pit))),
            SPEAKER_PORT,
            SPEAKER_SIZE,
        )?;

        let rtc = Rtc::with_host_time(host.clock.clone(), irq.line(RTC_IRQ, LineKind::Edge));
        {
            let mut rtc = rtc.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let (mut low, mut high) = (0, 0);
            for (base, size) in ram_regions(config.memory_size) {
                if base < FOUR_GIB {
                    low += size;
                } else {
                    high += size;
                }
            }
            for (index, value) in pc_memory_bytes(low, high) {
                rtc.set_cmos(index, value);
            }
        }
        pio_bus.insert(Arc::new(Mutex::new(RtcPorts(rtc))), RTC_PORT, RTC_SIZE)?;

        super::virtio::attach(
            &config.virtio,
            &memory,
            &mut mmio_bus,
            virtio_base,
            |slot| irq.line(VIRTIO_IRQS[slot], LineKind::Level),
        )?;

        let uart = Arc::new(Mutex::new(Uart16550::new(
            irq.line(COM1_IRQ, LineKind::Edge),
            host.console.writer(),
        )));
        host.console.attach(uart.clone());
        pio_bus.insert(uart, COM1_PORT, UART_SIZE)?;
        pio_bus.insert(
            Arc::new(Mutex::new(DebugExit::new(lifecycle.clone()))),
            DEBUG_EXIT_PORT,
            DEBUG_EXIT_SIZE,
        )?;
        pio_bus.insert(
            Arc::new(Mutex::new(ResetControl::new(
                ResetPort::I8042,
                lifecycle.clone(),
            ))),
            devices::I8042_PORT,
            1,
        )?;
        pio_bus.insert(
            Arc::new(Mutex::new(ResetControl::new(
                ResetPort::Cf9,
                lifecycle.clone(),
            ))),
            devices::CF9_PORT,
            1,
        )?;

        Ok(PcBoard {
            spec: VmSpec {
                arch: Arch::X86_64,
                cpus: config.cpus,
                memory,
                pio_bus: Arc::new(pio_bus),
                mmio_bus: Arc::new(mmio_bus),
                lifecycle,
                interrupts: Arc::new(controllers),
                irq,
                clock: host.clock.clone(),
            },
            boot: BootState::on(CpuState::X86_64(Box::new(cpu))),
            protocol,
        })
    }
}

impl Board for PcBoard {
    fn kind(&self) -> MachineKind {
        MachineKind::Pc
    }

    fn vm_spec(&self) -> VmSpec {
        self.spec.clone()
    }

    fn boot_state(&self, cpu: u32) -> BootState {
        if cpu == 0 {
            self.boot.clone()
        } else {
            BootState::off(CpuState::X86_64(Box::new(boot::init_state())))
        }
    }

    fn boot_protocol(&self) -> &'static str {
        self.protocol.name()
    }
}

/// COM1's ISA interrupt line.
const COM1_IRQ: u32 = 4;

/// The ISA lines free for virtio-mmio devices (0 PIT, 4 COM1, 8 RTC taken).
const VIRTIO_IRQS: [u32; 6] = [5, 6, 7, 9, 10, 11];

/// Where virtio-mmio slot `slot` sits: in the 32-bit device hole, clear of
/// the I/O APIC and local APIC pages.
fn virtio_base(slot: usize) -> u64 {
    VIRTIO_MMIO_BASE + slot as u64 * VIRTIO_MMIO_SIZE
}

/// The 8259 pair, the local APICs and the I/O APIC, wired to each other, to
/// the vCPU kicks and to `irq` (which they then serve under TCG).
fn interrupt_controllers(
    cpus: u32,
    host: &Host,
    irq: &Arc<IrqRouter>,
) -> Result<interrupts::PcInterrupts, BoardError> {
    let lifecycle = host.lifecycle.clone();
    let kick_cpu0 = lifecycle.vcpu(0).clone();
    let router = Arc::downgrade(irq);
    let pic = SharedPic::new(Pic8259Pair::new(
        Arc::new(move || kick_cpu0.kick()),
        Some(Arc::new(move |line| {
            if let Some(router) = router.upgrade() {
                router.end_of_interrupt(line);
            }
        })),
    ));
    let clock = host.clock.clone();
    let apics = ApicBus::new(
        cpus,
        Arc::new(move |cpu| lifecycle.vcpu(cpu).kick()),
        |cpu, bus| Box::new(interrupts::ApicTimer::new(&clock, cpu, bus)),
    )?;
    let to_apics = Arc::downgrade(&apics);
    let ioapic = Arc::new(IoApic::new(Arc::new(move |message| {
        if let Some(apics) = to_apics.upgrade() {
            apics.deliver_message(message);
        }
    })));
    let eoi_ioapic = Arc::downgrade(&ioapic);
    let router = Arc::downgrade(irq);
    apics.set_eoi_listener(Arc::new(move |vector| {
        let (Some(ioapic), Some(router)) = (eoi_ioapic.upgrade(), router.upgrade()) else {
            return;
        };
        for pin in ioapic.end_of_interrupt(vector) {
            router.end_of_interrupt(pin);
        }
    }));
    irq.connect(Arc::new(interrupts::PcIrqSink {
        pic: pic.clone(),
        ioapic: ioapic.clone(),
    }));
    Ok(interrupts::PcInterrupts { pic, apics, ioapic })
}

/// Checks a `--memory` value before anything is allocated.
pub fn check_memory_size(size: u64) -> Result<(), BoardError> {
    super::check_memory_range(size, MIN_MEMORY, MAX_MEMORY)
}

/// Loads the kernel and initrd, writes the boot structures of the kernel's boot
/// protocol, and returns the protocol and the entry state.
fn load_kernel(
    memory: &GuestMemoryMmap,
    config: &BoardConfig<'_>,
) -> Result<(BootProtocol, X86CpuState), LoadError> {
    let file = config.kernel;
    let header = multiboot::find_header(file)?;
    // The a.out kludge needs no ELF at all.
    if let Some(kludge) = header
        .as_ref()
        .map(|h| h.kludge_layout(file.len()))
        .transpose()?
        .flatten()
    {
        let end = check_placement(config.memory_size, 0, kludge.load_addr, kludge.mem_end)?;
        write_bytes(
            memory,
            kludge.load_addr,
            &file[kludge.file_offset..kludge.file_offset + kludge.file_size],
        )?;
        if !(kludge.load_addr..kludge.mem_end).contains(&kludge.entry) {
            return Err(LoadError::EntryOutsideSegments {
                entry: kludge.entry,
            });
        }
        return finish_multiboot(memory, config, end, kludge.entry);
    }

    let elf = ElfImage::parse(file)?;
    if elf.machine != EM_X86_64 && elf.machine != EM_386 {
        return Err(LoadError::WrongMachine {
            found: machine_name(elf.machine),
            expected: "x86-64",
        });
    }
    let mut kernel_end = HIGH_MEMORY;
    for segment in &elf.segments {
        let end = check_placement(
            config.memory_size,
            segment.index,
            segment.paddr,
            segment.paddr_end(),
        )?;
        kernel_end = kernel_end.max(end);
    }
    // Only once every segment is known to fit is anything written.
    for segment in &elf.segments {
        write_bytes(memory, segment.paddr, segment.data(file))?;
    }

    if header.is_some() {
        let entry = physical_entry(&elf)?;
        return finish_multiboot(memory, config, kernel_end, entry);
    }
    if let Some(note) = elf.find_note(b"Xen", XEN_ELFNOTE_PHYS32_ENTRY) {
        let entry = match note.desc.len() {
            4 => u64::from(u32::from_le_bytes(
                note.desc
                    .try_into()
                    .map_err(|_| LoadError::BadPvhNote("size"))?,
            )),
            8 => u64::from_le_bytes(
                note.desc
                    .try_into()
                    .map_err(|_| LoadError::BadPvhNote("size"))?,
            ),
            _ => return Err(LoadError::BadPvhNote("descriptor is not 4 or 8 bytes")),
        };
        check_entry32(&elf, entry)?;
        let module = place_initrd(memory, config, kernel_end)?;
        let cmdline = boot::write_cmdline(memory, config.cmdline)?;
        boot::write_gdt(memory)?;
        boot::write_start_info(memory, &memory_map(config.memory_size), cmdline, module)?;
        return Ok((BootProtocol::Pvh, boot::pvh_entry(entry)));
    }
    if !elf.is_64bit {
        return Err(LoadError::NoBootProtocol);
    }
    if !elf.paddr_in_segment(elf.entry) {
        return Err(LoadError::EntryOutsideSegments { entry: elf.entry });
    }
    let module = place_initrd(memory, config, kernel_end)?;
    let cmdline = boot::write_cmdline(memory, config.cmdline)?;
    boot::write_gdt(memory)?;
    boot::write_start_info(memory, &memory_map(config.memory_size), cmdline, module)?;
    boot::write_identity_page_tables(memory, ram_top(config.memory_size))?;
    Ok((BootProtocol::Elf64, boot::long_mode_entry(elf.entry)))
}

/// The multiboot entry of an ELF kernel: `e_entry`, which higher-half kernels may
/// give as a virtual address of one of their segments.
fn physical_entry(elf: &ElfImage<'_>) -> Result<u64, LoadError> {
    if elf.paddr_in_segment(elf.entry) {
        check_entry32(elf, elf.entry)?;
        return Ok(elf.entry);
    }
    let translated = elf.segments.iter().find_map(|segment| {
        let offset = elf.entry.checked_sub(segment.vaddr)?;
        (offset < segment.mem_size).then(|| segment.paddr + offset)
    });
    let entry = translated.ok_or(LoadError::EntryOutsideSegments { entry: elf.entry })?;
    check_entry32(elf, entry)?;
    Ok(entry)
}

fn check_entry32(elf: &ElfImage<'_>, entry: u64) -> Result<(), LoadError> {
    if !elf.paddr_in_segment(entry) {
        return Err(LoadError::EntryOutsideSegments { entry });
    }
    if entry >= FOUR_GIB {
        return Err(LoadError::EntryAbove4G { entry });
    }
    Ok(())
}

fn finish_multiboot(
    memory: &GuestMemoryMmap,
    config: &BoardConfig<'_>,
    kernel_end: u64,
    entry: u64,
) -> Result<(BootProtocol, X86CpuState), LoadError> {
    if entry >= FOUR_GIB {
        return Err(LoadError::EntryAbove4G { entry });
    }
    let module = place_initrd(memory, config, kernel_end)?;
    // QEMU (and GRUB) pass the kernel's path as the first word of the command line.
    let cmdline = format!("{} {}", config.kernel_name, config.cmdline);
    let cmdline_addr = boot::write_cmdline(memory, &cmdline)?;
    boot::write_gdt(memory)?;
    let named_module = module.zip(config.initrd.as_ref().map(|initrd| initrd.name));
    boot::write_multiboot_info(
        memory,
        config.memory_size,
        &memory_map(config.memory_size),
        cmdline_addr,
        named_module,
    )?;
    Ok((BootProtocol::Multiboot, boot::multiboot_entry(entry)))
}

/// Checks that `[start, end)` is RAM the kernel may use; returns `end`.
fn check_placement(memory_size: u64, index: usize, start: u64, end: u64) -> Result<u64, LoadError> {
    if start < HIGH_MEMORY {
        return Err(LoadError::Reserved {
            index,
            start,
            end,
            what: "the real-mode area and moat's boot structures",
            reserved_start: 0,
            reserved_end: HIGH_MEMORY,
        });
    }
    let inside_ram = ram_regions(memory_size)
        .iter()
        .any(|&(base, size)| base <= start && end <= base + size);
    if !inside_ram {
        return Err(LoadError::OutsideRam { index, start, end });
    }
    Ok(end)
}

fn write_bytes(memory: &GuestMemoryMmap, addr: u64, data: &[u8]) -> Result<(), LoadError> {
    memory
        .write_slice(data, GuestAddress(addr))
        .map_err(|_| LoadError::GuestMemory { addr })
}

/// Puts the initrd at the top of RAM below the device hole, page aligned, as
/// QEMU does, above the kernel.
fn place_initrd(
    memory: &GuestMemoryMmap,
    config: &BoardConfig<'_>,
    kernel_end: u64,
) -> Result<Option<PlacedModule>, LoadError> {
    let Some(initrd) = &config.initrd else {
        return Ok(None);
    };
    let size = initrd.data.len() as u64;
    let limit = low_ram_top(config.memory_size);
    let floor = kernel_end.next_multiple_of(0x1000);
    let too_large = || LoadError::InitrdTooLarge {
        size,
        limit,
        free: limit.saturating_sub(floor),
    };
    let addr = limit.checked_sub(size).ok_or_else(too_large)? & !0xfff;
    if addr < floor {
        return Err(too_large());
    }
    write_bytes(memory, addr, initrd.data)?;
    Ok(Some(PlacedModule { addr, size }))
}

#[cfg(test)]
mod tests;
