//! Boards: what a guest machine is made of, for each guest architecture.
//!
//! A board owns its memory map, its devices and their interrupt wiring, its
//! firmware tables and its image loaders, and computes the state each vCPU
//! starts in. The image's architecture picks the board (or `--machine`):
//!
//! | machine | arch | module |
//! |---|---|---|
//! | `pc` | x86-64 | [`pc`]: a PC without PCI |
//! | `virt` | aarch64 | [`virt`]: QEMU `virt`'s memory map and boot ABI |
//!
//! A board is rebuilt from its [`BoardConfig`] on every guest reset (fresh RAM,
//! images reloaded); what must outlive a reset (the host console, the
//! lifecycle and its vCPU kicks) is passed in as [`Host`].

pub mod pc;
pub mod virt;
pub mod virtio;

use std::fmt;
use std::sync::Arc;

use devices::lapic::ApicBusError;
use devices::{BusError, Clock, HostConsole, VmLifecycle};

use crate::accel::VmSpec;
use crate::arch::{Arch, BootState};
use crate::loader::LoadError;
use crate::memory::MemoryError;

/// The machine types moat builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MachineKind {
    Pc,
    Virt,
}

impl MachineKind {
    /// The board for guests of `arch`.
    pub fn for_arch(arch: Arch) -> MachineKind {
        match arch {
            Arch::X86_64 => MachineKind::Pc,
            Arch::Aarch64 => MachineKind::Virt,
        }
    }

    pub fn arch(self) -> Arch {
        match self {
            MachineKind::Pc => Arch::X86_64,
            MachineKind::Virt => Arch::Aarch64,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MachineKind::Pc => "pc",
            MachineKind::Virt => "virt",
        }
    }
}

impl fmt::Display for MachineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Most vCPUs a board is built with.
pub const MAX_CPUS: u32 = 8;

/// A file given to the guest as its first boot module (initrd).
#[derive(Clone, Copy)]
pub struct Initrd<'a> {
    /// The name the multiboot module string carries (QEMU passes the path).
    pub name: &'a str,
    pub data: &'a [u8],
}

/// What a board is built from.
#[derive(Clone, Copy)]
pub struct BoardConfig<'a> {
    pub memory_size: u64,
    /// vCPUs, 1 to [`MAX_CPUS`]; all but the first start powered off.
    pub cpus: u32,
    /// The kernel's path as given, for the multiboot command line.
    pub kernel_name: &'a str,
    pub kernel: &'a [u8],
    pub initrd: Option<Initrd<'a>>,
    pub cmdline: &'a str,
    /// virtio-mmio devices (`--disk`, `--rng`).
    pub virtio: virtio::VirtioConfig<'a>,
}

/// What outlives a board: made once per moat run.
#[derive(Clone)]
pub struct Host {
    /// The host side of the console; each board's UART attaches to it.
    pub console: Arc<HostConsole>,
    /// Lifecycle requests and the vCPU kicks (one per vCPU).
    pub lifecycle: Arc<VmLifecycle>,
    /// The VM clock; its timer thread is started once, with the sandbox.
    pub clock: Arc<Clock>,
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("guest memory size {size} bytes is outside the supported range {min}..={max}")]
    MemorySize { size: u64, min: u64, max: u64 },
    #[error("{size} bytes is not a whole number of {granule}-byte pages")]
    MemoryGranule { size: u64, granule: u64 },
    #[error("{count} vCPUs asked for; the {machine} board has 1 to {max}")]
    CpuCount {
        count: u32,
        machine: MachineKind,
        max: u32,
    },
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error("kernel: {0}")]
    Kernel(LoadError),
    #[error("{0}")]
    Devices(#[from] BusError),
    #[error("{0}")]
    Apic(#[from] ApicBusError),
    #[error("{0}")]
    Gic(#[from] devices::GicError),
    #[error("the {0} board is not built yet")]
    NotBuilt(MachineKind),
    #[error("{0}")]
    DiskImage(#[from] devices::virtio::BlockError),
    #[error("{count} virtio devices asked for; the {machine} board has room for {max}")]
    TooManyVirtio {
        count: usize,
        machine: MachineKind,
        max: usize,
    },
    #[error("the device tree could not be built: {0}")]
    DeviceTree(#[source] vm_fdt::Error),
}

/// A built machine, ready to hand to an accelerator.
pub trait Board: Send + Sync {
    fn kind(&self) -> MachineKind;
    /// The accelerator's view: memory, buses, interrupt controllers.
    fn vm_spec(&self) -> VmSpec;
    /// The state vCPU `cpu` starts in (powered off for secondary CPUs).
    fn boot_state(&self, cpu: u32) -> BootState;
    /// How the kernel was entered, for `--verbose` ("pvh", "multiboot", ...).
    fn boot_protocol(&self) -> &'static str;
    /// The device tree handed to the kernel, on boards that make one.
    fn device_tree(&self) -> Option<&[u8]> {
        None
    }
}

/// Guest RAM comes in whole pages.
pub const MEMORY_GRANULE: u64 = 4096;

/// Checks a memory size against a board's bounds.
fn check_memory_range(size: u64, min: u64, max: u64) -> Result<(), BoardError> {
    if !(min..=max).contains(&size) {
        return Err(BoardError::MemorySize { size, min, max });
    }
    if !size.is_multiple_of(MEMORY_GRANULE) {
        return Err(BoardError::MemoryGranule {
            size,
            granule: MEMORY_GRANULE,
        });
    }
    Ok(())
}

/// Checks `--memory` and `--cpus` for a machine before anything is allocated.
pub fn check_config(kind: MachineKind, memory_size: u64, cpus: u32) -> Result<(), BoardError> {
    if !(1..=MAX_CPUS).contains(&cpus) {
        return Err(BoardError::CpuCount {
            count: cpus,
            machine: kind,
            max: MAX_CPUS,
        });
    }
    match kind {
        MachineKind::Pc => pc::check_memory_size(memory_size),
        MachineKind::Virt => virt::check_memory_size(memory_size),
    }
}

/// Builds a `kind` machine.
pub fn build(
    kind: MachineKind,
    config: &BoardConfig<'_>,
    host: &Host,
) -> Result<Box<dyn Board>, BoardError> {
    check_config(kind, config.memory_size, config.cpus)?;
    match kind {
        MachineKind::Pc => Ok(Box::new(pc::PcBoard::build(config, host)?)),
        MachineKind::Virt => Ok(Box::new(virt::VirtBoard::build(config, host)?)),
    }
}
