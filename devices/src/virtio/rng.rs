//! virtio-rng, the entropy device (virtio 1.2 section 5.4): one request
//! queue whose device-writable buffers the device fills with random bytes
//! from the host's `getrandom(2)` (the vCPU threads' seccomp filter allows
//! it). Buffers are filled whole; a device-readable descriptor in a request is
//! ignored.

use vm_memory::GuestMemoryMmap;

use crate::virtio::mmio::{ActivateError, VirtioDevice, VirtioInterrupt, read_config_bytes};
use crate::virtio::queue::Queue;

/// The entropy device's virtio ID.
pub const VIRTIO_ID_RNG: u32 = 4;

/// At most this much entropy per request, so one notification cannot keep a
/// vCPU in the host for long; the driver asks again.
const MAX_REQUEST: usize = 64 * 1024;

/// Fills `buf` from the kernel's random pool; returns how many bytes it got.
fn host_random(buf: &mut [u8]) -> usize {
    let mut done = 0;
    // A few interrupted calls at most; the pool never runs short after boot.
    for _ in 0..8 {
        if done == buf.len() {
            break;
        }
        let rest = &mut buf[done..];
        // SAFETY: the kernel writes at most `rest.len()` bytes into `rest`,
        // which is valid, writable memory we own.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            done += n as usize;
        } else if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
        {
            break;
        }
    }
    done
}

struct Active {
    queue: Queue,
    memory: GuestMemoryMmap,
    interrupt: VirtioInterrupt,
}

/// A virtio entropy device.
#[derive(Default)]
pub struct VirtioRng {
    active: Option<Active>,
}

impl VirtioRng {
    pub fn new() -> Self {
        VirtioRng::default()
    }
}

impl VirtioDevice for VirtioRng {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_RNG
    }

    fn features(&self) -> u64 {
        0
    }

    fn queue_count(&self) -> usize {
        1
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_bytes(&[], offset, data);
    }

    fn activate(
        &mut self,
        mut queues: Vec<Queue>,
        memory: GuestMemoryMmap,
        interrupt: VirtioInterrupt,
    ) -> Result<(), ActivateError> {
        let ready = queues.len();
        let queue = queues
            .pop()
            .filter(|_| ready == 1)
            .ok_or(ActivateError::QueuesNotReady { expected: 1, ready })?;
        self.active = Some(Active {
            queue,
            memory,
            interrupt,
        });
        Ok(())
    }

    fn reset(&mut self) {
        self.active = None;
    }

    fn queue_notify(&mut self, _index: u16) {
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let mut used = false;
        let result = (|| {
            // At most one ring's worth per notification: a driver racing to
            // refill the ring from another vCPU kicks again anyway.
            for _ in 0..active.queue.size {
                let Some(chain) = active.queue.pop(&active.memory)? else {
                    break;
                };
                let want = (chain.writable_len() as usize).min(MAX_REQUEST);
                let mut bytes = vec![0u8; want];
                let got = host_random(&mut bytes);
                let written = chain.write_at(&active.memory, 0, &bytes[..got])?;
                active
                    .queue
                    .add_used(&active.memory, chain.head, written as u32)?;
                used = true;
            }
            Ok::<(), crate::virtio::queue::QueueError>(())
        })();
        if used {
            active.interrupt.signal_used();
        }
        if let Err(error) = result {
            log::debug!("virtio-rng: {error}");
            active.interrupt.set_needs_reset();
        }
    }
}
