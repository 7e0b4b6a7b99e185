//! The virtio-mmio transport, version 2 ("modern", virtio 1.2 section 4.2):
//! one 0x200-byte register window per device, generic over a
//! [`VirtioDevice`] backend.
//!
//! Choices:
//! - VendorID is QEMU's (0x554d4551, "QEMU"), so guests that special-case
//!   it (none in Linux) see what they see under QEMU; DeviceID is the
//!   backend's type.
//! - The transport offers `VIRTIO_F_VERSION_1` and `VIRTIO_F_INDIRECT_DESC`
//!   on top of the backend's features. A driver that does not accept
//!   `VERSION_1` (a legacy driver) is refused: its FEATURES_OK write does not
//!   stick, as 3.1.1 says, and so is a driver accepting a feature not offered.
//! - Control registers take 32-bit aligned accesses only (4.2.2.2); any other
//!   width reads 0 and writes are ignored. The device-specific configuration
//!   at 0x100 takes any width; the backend bounds it.
//! - Interrupts: one [`IrqLine`], *level*: high while InterruptStatus is
//!   non-zero, lowered by the InterruptACK write that clears it. Give the
//!   transport a `LineKind::Level` line. The device trees describe the line as
//!   edge-rising (`<0 n 1>`, as QEMU's `virt` does) and Linux on `pc` takes
//!   legacy IRQs as edge: that still works, because every new interrupt
//!   condition arriving after the driver's ACK is a fresh low-to-high
//!   transition, and Linux's handler ACKs before it scans the rings, so no
//!   buffer used in between is missed. A level-configured GIC SPI or I/O APIC
//!   pin works too, without any resample callback (the line stays high until
//!   the ACK).
//! - A queue error (a malformed chain, a ring outside RAM) sets
//!   `DEVICE_NEEDS_RESET` and, once DRIVER_OK, a configuration-change
//!   interrupt (2.1.2); the backend stops using its queues until reset.
//! - ConfigGeneration stays 0: no backend changes its configuration at run
//!   time.
//! - No shared memory regions (their registers read as "none": length all
//!   ones) and no `VIRTIO_F_NOTIFICATION_DATA`, so QueueNotify carries just
//!   the queue index.

use std::sync::{Arc, Mutex, MutexGuard};

use vm_memory::{GuestAddress, GuestMemoryMmap};

use crate::bus::BusDevice;
use crate::console::ConsoleInput;
use crate::irq::IrqLine;
use crate::virtio::queue::{QUEUE_MAX_SIZE, Queue};

/// The size of one virtio-mmio register window.
pub const VIRTIO_MMIO_SIZE: u64 = 0x200;

/// "virt" in little-endian ASCII.
const MAGIC: u32 = 0x7472_6976;
const VERSION: u32 = 2;
/// QEMU's vendor ID ("QEMU" little-endian).
pub const VIRTIO_MMIO_VENDOR_ID: u32 = 0x554d_4551;

/// Feature bits every transport handles.
pub const VIRTIO_F_INDIRECT_DESC: u64 = 1 << 28;
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;

/// Device status bits (2.1).
pub mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
    pub const FAILED: u32 = 0x80;
}

/// InterruptStatus bits.
pub const INT_USED_BUFFER: u32 = 1;
pub const INT_CONFIG_CHANGE: u32 = 2;

mod reg {
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub const SHM_LEN_LOW: u64 = 0x0b0;
    pub const SHM_LEN_HIGH: u64 = 0x0b4;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    pub const CONFIG: u64 = 0x100;
}

/// Why a backend could not start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActivateError {
    #[error("the device needs {expected} queues and {ready} are ready")]
    QueuesNotReady { expected: usize, ready: usize },
    #[error("queue {index} is unusable: {source}")]
    BadQueue {
        index: usize,
        source: crate::virtio::queue::QueueError,
    },
}

struct InterruptState {
    status: u32,
    needs_reset: bool,
    driver_ok: bool,
}

struct InterruptInner {
    line: IrqLine,
    state: Mutex<InterruptState>,
}

/// A backend's handle on its transport's interrupt and error reporting. The
/// status and the line change under one lock, so a device signalling on one
/// thread and a vCPU acknowledging on another cannot leave the line high with
/// nothing pending.
#[derive(Clone)]
pub struct VirtioInterrupt(Arc<InterruptInner>);

impl VirtioInterrupt {
    fn new(line: IrqLine) -> Self {
        VirtioInterrupt(Arc::new(InterruptInner {
            line,
            state: Mutex::new(InterruptState {
                status: 0,
                needs_reset: false,
                driver_ok: false,
            }),
        }))
    }

    fn state(&self) -> MutexGuard<'_, InterruptState> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, bits: u32) {
        let mut state = self.state();
        let was = state.status;
        state.status |= bits;
        if was == 0 && state.status != 0 {
            self.0.line.raise();
        }
    }

    /// Tells the driver the device has used buffers.
    pub fn signal_used(&self) {
        self.set(INT_USED_BUFFER);
    }

    /// Tells the driver the configuration changed.
    pub fn signal_config(&self) {
        self.set(INT_CONFIG_CHANGE);
    }

    /// Reports an unrecoverable guest error: the status shows
    /// DEVICE_NEEDS_RESET and, once the driver is running, a configuration
    /// change interrupt tells it so.
    pub fn set_needs_reset(&self) {
        let driver_ok = {
            let mut state = self.state();
            state.needs_reset = true;
            state.driver_ok
        };
        if driver_ok {
            self.signal_config();
        }
    }

    /// Whether DEVICE_NEEDS_RESET is set.
    pub fn needs_reset(&self) -> bool {
        self.state().needs_reset
    }

    fn status(&self) -> u32 {
        self.state().status
    }

    fn ack(&self, bits: u32) {
        let mut state = self.state();
        let was = state.status;
        state.status &= !bits;
        if was != 0 && state.status == 0 {
            self.0.line.lower();
        }
    }

    fn set_driver_ok(&self, on: bool) {
        self.state().driver_ok = on;
    }

    fn reset(&self) {
        let mut state = self.state();
        let was = state.status;
        *state = InterruptState {
            status: 0,
            needs_reset: false,
            driver_ok: false,
        };
        if was != 0 {
            self.0.line.lower();
        }
    }
}

/// A virtio device model behind a transport.
pub trait VirtioDevice: Send {
    /// The virtio device ID (5.x: 2 block, 3 console, 4 entropy).
    fn device_type(&self) -> u32;
    /// The device's feature bits; the transport adds its own.
    fn features(&self) -> u64;
    /// How many queues the device has; each offers [`QUEUE_MAX_SIZE`] entries.
    fn queue_count(&self) -> usize;
    /// Reads the device-specific configuration at `offset` (relative to
    /// 0x100); bytes beyond it read 0.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Writes the device-specific configuration; the default ignores it.
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        log::debug!(
            "virtio: ignored config write of {} bytes at {offset:#x}",
            data.len()
        );
    }
    /// The features the driver accepted (only ones offered), at FEATURES_OK.
    fn ack_features(&mut self, _features: u64) {}
    /// Starts the device at DRIVER_OK with its queues (every one ready and
    /// checked to lie in `memory`).
    fn activate(
        &mut self,
        queues: Vec<Queue>,
        memory: GuestMemoryMmap,
        interrupt: VirtioInterrupt,
    ) -> Result<(), ActivateError>;
    /// Back to the state before activation: drops the queues.
    fn reset(&mut self);
    /// The driver has made buffers available on queue `index` (only called
    /// while activated, with `index` < `queue_count()`).
    fn queue_notify(&mut self, index: u16);
}

/// A virtio-mmio transport around one device.
pub struct VirtioMmio<D: VirtioDevice> {
    device: D,
    memory: GuestMemoryMmap,
    interrupt: VirtioInterrupt,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    queues: Vec<Queue>,
    status: u32,
    activated: bool,
}

impl<D: VirtioDevice> VirtioMmio<D> {
    /// A transport in its reset state for `device`, reaching guest RAM through
    /// `memory` and interrupting on `irq` (a level line).
    pub fn new(device: D, memory: GuestMemoryMmap, irq: IrqLine) -> Self {
        let queues = (0..device.queue_count())
            .map(|_| Queue::new(QUEUE_MAX_SIZE))
            .collect();
        VirtioMmio {
            device,
            memory,
            interrupt: VirtioInterrupt::new(irq),
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queues,
            status: 0,
            activated: false,
        }
    }

    /// The backend.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The backend, mutably (tests, and host-side input).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    fn offered_features(&self) -> u64 {
        self.device.features() | VIRTIO_F_VERSION_1 | VIRTIO_F_INDIRECT_DESC
    }

    fn selected_queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    fn reset(&mut self) {
        if self.activated {
            self.device.reset();
        }
        self.activated = false;
        self.interrupt.reset();
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.queues.iter_mut().for_each(Queue::reset);
        self.status = 0;
    }

    fn read_register(&mut self, offset: u64) -> u32 {
        let queue = self.queues.get(self.queue_sel as usize);
        match offset {
            reg::MAGIC => MAGIC,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => self.device.device_type(),
            reg::VENDOR_ID => VIRTIO_MMIO_VENDOR_ID,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => self.offered_features() as u32,
                1 => (self.offered_features() >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => queue.map_or(0, |q| u32::from(q.max_size)),
            reg::QUEUE_READY => queue.map_or(0, |q| u32::from(q.ready)),
            reg::INTERRUPT_STATUS => self.interrupt.status(),
            reg::STATUS => {
                let needs_reset = if self.interrupt.needs_reset() {
                    status::DEVICE_NEEDS_RESET
                } else {
                    0
                };
                self.status | needs_reset
            }
            reg::SHM_LEN_LOW | reg::SHM_LEN_HIGH => u32::MAX,
            reg::CONFIG_GENERATION => 0,
            _ => {
                log::debug!("virtio-mmio: read of write-only or unknown register {offset:#x}");
                0
            }
        }
    }

    /// Queue registers take writes only while the driver sets the device up.
    fn queue_writable(&self) -> bool {
        self.status & status::DRIVER_OK == 0
    }

    fn write_queue_address(&mut self, offset: u64, value: u32) {
        if !self.queue_writable() {
            log::debug!("virtio-mmio: queue address write after DRIVER_OK ignored");
            return;
        }
        let Some(queue) = self.selected_queue() else {
            return;
        };
        let field = match offset {
            reg::QUEUE_DESC_LOW | reg::QUEUE_DESC_HIGH => &mut queue.desc_table,
            reg::QUEUE_DRIVER_LOW | reg::QUEUE_DRIVER_HIGH => &mut queue.avail_ring,
            _ => &mut queue.used_ring,
        };
        let high = matches!(
            offset,
            reg::QUEUE_DESC_HIGH | reg::QUEUE_DRIVER_HIGH | reg::QUEUE_DEVICE_HIGH
        );
        *field = if high {
            GuestAddress((field.0 & 0xffff_ffff) | (u64::from(value) << 32))
        } else {
            GuestAddress((field.0 & !0xffff_ffff) | u64::from(value))
        };
    }

    fn write_register(&mut self, offset: u64, value: u32) {
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            reg::DRIVER_FEATURES => {
                if self.status & status::FEATURES_OK != 0 {
                    log::debug!("virtio-mmio: feature write after FEATURES_OK ignored");
                    return;
                }
                let value = u64::from(value);
                match self.driver_features_sel {
                    0 => self.driver_features = (self.driver_features & !0xffff_ffff) | value,
                    1 => {
                        self.driver_features = (self.driver_features & 0xffff_ffff) | (value << 32)
                    }
                    _ => log::debug!("virtio-mmio: driver features page {value} ignored"),
                }
            }
            reg::QUEUE_SEL => self.queue_sel = value,
            reg::QUEUE_NUM => {
                if !self.queue_writable() {
                    return;
                }
                if let Some(queue) = self.selected_queue() {
                    queue.size = value.min(u32::from(u16::MAX)) as u16;
                }
            }
            reg::QUEUE_READY => {
                if !self.queue_writable() {
                    return;
                }
                if let Some(queue) = self.selected_queue() {
                    if value & 1 != 0 && !queue.size_is_valid() {
                        log::debug!(
                            "virtio-mmio: queue of size {} cannot be made ready",
                            queue.size
                        );
                        return;
                    }
                    queue.ready = value & 1 != 0;
                }
            }
            reg::QUEUE_NOTIFY => {
                let index = value & 0xffff;
                if self.activated
                    && !self.interrupt.needs_reset()
                    && (index as usize) < self.queues.len()
                {
                    self.device.queue_notify(index as u16);
                } else {
                    log::debug!("virtio-mmio: notify of queue {index} ignored");
                }
            }
            reg::INTERRUPT_ACK => self.interrupt.ack(value),
            reg::STATUS => self.write_status(value),
            reg::QUEUE_DESC_LOW
            | reg::QUEUE_DESC_HIGH
            | reg::QUEUE_DRIVER_LOW
            | reg::QUEUE_DRIVER_HIGH
            | reg::QUEUE_DEVICE_LOW
            | reg::QUEUE_DEVICE_HIGH => self.write_queue_address(offset, value),
            _ => log::debug!(
                "virtio-mmio: write of {value:#x} to read-only or unknown register {offset:#x} ignored"
            ),
        }
    }

    fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        // The device owns DEVICE_NEEDS_RESET; the driver cannot set it.
        let mut value = value & !status::DEVICE_NEEDS_RESET;
        let newly = value & !self.status;
        if newly & status::FEATURES_OK != 0 {
            let offered = self.offered_features();
            let acceptable = self.driver_features & VIRTIO_F_VERSION_1 != 0
                && self.driver_features & !offered == 0;
            if acceptable {
                self.device.ack_features(self.driver_features);
            } else {
                log::debug!(
                    "virtio-mmio: refusing features {:#x} (offered {offered:#x})",
                    self.driver_features
                );
                value &= !status::FEATURES_OK;
            }
        }
        if newly & status::DRIVER_OK != 0 && !self.activated {
            if value & status::FEATURES_OK == 0 {
                log::debug!("virtio-mmio: DRIVER_OK without FEATURES_OK ignored");
                value &= !status::DRIVER_OK;
            } else {
                self.status = value;
                self.activate();
                return;
            }
        }
        self.status = value;
    }

    fn activate(&mut self) {
        let result = self.check_queues().and_then(|()| {
            self.device.activate(
                self.queues.clone(),
                self.memory.clone(),
                self.interrupt.clone(),
            )
        });
        match result {
            Ok(()) => {
                self.activated = true;
                self.interrupt.set_driver_ok(true);
            }
            Err(error) => {
                log::debug!("virtio-mmio: device not started: {error}");
                self.interrupt.set_driver_ok(true);
                self.interrupt.set_needs_reset();
            }
        }
    }

    fn check_queues(&self) -> Result<(), ActivateError> {
        let ready = self.queues.iter().filter(|q| q.ready).count();
        if ready != self.queues.len() {
            return Err(ActivateError::QueuesNotReady {
                expected: self.queues.len(),
                ready,
            });
        }
        for (index, queue) in self.queues.iter().enumerate() {
            queue
                .validate(&self.memory)
                .map_err(|source| ActivateError::BadQueue { index, source })?;
        }
        Ok(())
    }
}

/// A virtio-mmio slot with no device behind it, as QEMU `virt` fills its
/// unused slots: the magic and version read back, device ID 0 tells the
/// driver the slot is empty, every other register reads 0 and writes go
/// nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct EmptySlot;

impl BusDevice for EmptySlot {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = match offset {
            reg::MAGIC => MAGIC,
            reg::VERSION => VERSION,
            reg::VENDOR_ID => VIRTIO_MMIO_VENDOR_ID,
            _ => 0,
        };
        data.fill(0);
        if data.len() == 4 && offset.is_multiple_of(4) {
            data.copy_from_slice(&value.to_le_bytes());
        }
    }

    fn write(&mut self, _offset: u64, _data: &[u8]) {}
}

impl<D: VirtioDevice> BusDevice for VirtioMmio<D> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= reg::CONFIG {
            self.device.read_config(offset - reg::CONFIG, data);
            return;
        }
        if data.len() != 4 || !offset.is_multiple_of(4) {
            log::debug!(
                "virtio-mmio: {}-byte read at {offset:#x} is not a 32-bit register access",
                data.len()
            );
            data.fill(0);
            return;
        }
        let value = self.read_register(offset);
        data.copy_from_slice(&value.to_le_bytes());
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset >= reg::CONFIG {
            self.device.write_config(offset - reg::CONFIG, data);
            return;
        }
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            log::debug!(
                "virtio-mmio: {}-byte write at {offset:#x} is not a 32-bit register access",
                data.len()
            );
            return;
        };
        if !offset.is_multiple_of(4) {
            log::debug!("virtio-mmio: unaligned write at {offset:#x} ignored");
            return;
        }
        self.write_register(offset, u32::from_le_bytes(bytes));
    }
}

/// A virtio console takes host input like a UART, so the host console can be
/// attached to its transport.
impl<D: VirtioDevice + ConsoleInput> ConsoleInput for VirtioMmio<D> {
    fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        if !self.activated || self.interrupt.needs_reset() {
            return 0;
        }
        self.device.enqueue_input(bytes)
    }
}

/// Copies the part of a device's configuration bytes `config` that `offset`
/// and `data` cover; the rest of `data` reads 0.
pub fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    data.fill(0);
    let Ok(start) = usize::try_from(offset) else {
        return;
    };
    if start >= config.len() {
        return;
    }
    let n = (config.len() - start).min(data.len());
    data[..n].copy_from_slice(&config[start..start + n]);
}
