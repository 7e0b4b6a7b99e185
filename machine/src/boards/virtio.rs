//! The virtio-mmio devices a board is given (`--disk`, `--rng`), built the
//! same way on every board; each board decides where they go and how the
//! guest learns of them (a device-tree node on `virt`, a kernel
//! command-line argument on `pc`).

use std::fs::File;
use std::sync::{Arc, Mutex};

use devices::{
    Bus, BusError, IrqLine, SharedDevice, VIRTIO_MMIO_SIZE, VirtioBlock, VirtioMmio, VirtioRng,
};
use vm_memory::GuestMemoryMmap;

use super::BoardError;

/// A disk image for a virtio-blk device, opened before the sandbox.
pub struct Disk {
    /// Shared by every board built: its descriptor is the one the sandbox
    /// allows the vCPU threads to read and write.
    pub file: Arc<File>,
    pub read_only: bool,
    /// What `VIRTIO_BLK_T_GET_ID` answers (at most 20 bytes).
    pub serial: String,
}

/// The virtio devices of a machine, in slot order: the disks, then the
/// entropy source.
#[derive(Clone, Copy, Default)]
pub struct VirtioConfig<'a> {
    pub disks: &'a [Disk],
    pub rng: bool,
}

impl VirtioConfig<'_> {
    /// How many virtio-mmio slots the devices take.
    pub fn count(&self) -> usize {
        self.disks.len() + usize::from(self.rng)
    }
}

/// What kind of device sits in a slot (for the boards' descriptions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtioKind {
    Block,
    Rng,
}

/// Builds the devices and maps slot n at `base(n)` on `mmio`, its interrupt
/// on `line(n)`. Returns the kinds, in slot order.
pub fn attach(
    config: &VirtioConfig<'_>,
    memory: &GuestMemoryMmap,
    mmio: &mut Bus,
    base: impl Fn(usize) -> u64,
    line: impl Fn(usize) -> IrqLine,
) -> Result<Vec<VirtioKind>, BoardError> {
    let mut kinds = Vec::new();
    for (slot, disk) in config.disks.iter().enumerate() {
        let block = VirtioBlock::new(disk.file.clone(), disk.read_only, &disk.serial)?;
        let device: SharedDevice = Arc::new(Mutex::new(VirtioMmio::new(
            block,
            memory.clone(),
            line(slot),
        )));
        insert(mmio, device, base(slot))?;
        kinds.push(VirtioKind::Block);
    }
    if config.rng {
        let slot = config.disks.len();
        let device: SharedDevice = Arc::new(Mutex::new(VirtioMmio::new(
            VirtioRng::new(),
            memory.clone(),
            line(slot),
        )));
        insert(mmio, device, base(slot))?;
        kinds.push(VirtioKind::Rng);
    }
    Ok(kinds)
}

/// Fills slots `from..to` with empty transports (device ID 0), as QEMU
/// `virt` does, so a driver that scans every slot finds each answering.
pub fn fill_empty(
    mmio: &mut Bus,
    from: usize,
    to: usize,
    base: impl Fn(usize) -> u64,
) -> Result<(), BoardError> {
    for slot in from..to {
        insert(
            mmio,
            Arc::new(Mutex::new(devices::virtio::EmptySlot)),
            base(slot),
        )?;
    }
    Ok(())
}

fn insert(mmio: &mut Bus, device: SharedDevice, base: u64) -> Result<(), BusError> {
    mmio.insert(device, base, VIRTIO_MMIO_SIZE)
}
