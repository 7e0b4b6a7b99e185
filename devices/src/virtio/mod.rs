//! virtio devices over the virtio-mmio transport (virtio 1.2).
//!
//! [`mmio::VirtioMmio`] is the transport a board maps on its MMIO bus (one
//! [`VIRTIO_MMIO_SIZE`] window and one level interrupt line per device);
//! [`queue`] implements split virtqueues with every guest value checked; the
//! backends are [`rng::VirtioRng`], [`blk::VirtioBlock`] and
//! [`console::VirtioConsole`]. Backends work synchronously on the thread that
//! notifies (a vCPU) or, for console input, on the host console's stdin
//! thread; no device starts threads of its own.

pub mod blk;
pub mod console;
pub mod mmio;
pub mod queue;
pub mod rng;

#[cfg(test)]
mod tests;

pub use blk::{BlockError, VirtioBlock};
pub use console::VirtioConsole;
pub use mmio::{
    ActivateError, EmptySlot, VIRTIO_MMIO_SIZE, VirtioDevice, VirtioInterrupt, VirtioMmio,
};
pub use queue::{Descriptor, DescriptorChain, QUEUE_MAX_SIZE, Queue, QueueError};
pub use rng::VirtioRng;
