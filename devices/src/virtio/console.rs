//! virtio-console (virtio 1.2 section 5.3) with one port and no
//! `VIRTIO_CONSOLE_F_MULTIPORT`: queue 0 receives (host to guest), queue 1
//! transmits. Transmitted bytes go to a writer (the [`crate::HostConsole`]) at
//! once; host input arrives through [`ConsoleInput`] on the transport (the
//! host console attaches the transport as it attaches a UART) and fills the
//! driver's receive buffers. Input that finds no buffer is not taken: the host
//! console retries it, as it does for a full UART FIFO.
//!
//! No `F_SIZE` (no console geometry) and no `F_EMERG_WRITE`: the
//! configuration reads 0.

use std::io::Write;

use vm_memory::GuestMemoryMmap;

use crate::console::ConsoleInput;
use crate::virtio::mmio::{ActivateError, VirtioDevice, VirtioInterrupt, read_config_bytes};
use crate::virtio::queue::{Queue, QueueError};

/// The console's virtio ID.
pub const VIRTIO_ID_CONSOLE: u32 = 3;

const RX: u16 = 0;
const TX: u16 = 1;

/// The most one transmit buffer may move to the host at a time.
const MAX_TX: usize = 64 * 1024;

struct Active {
    rx: Queue,
    tx: Queue,
    memory: GuestMemoryMmap,
    interrupt: VirtioInterrupt,
}

/// A single-port virtio console.
pub struct VirtioConsole {
    output: Box<dyn Write + Send>,
    active: Option<Active>,
}

impl VirtioConsole {
    /// A console whose guest output goes to `output`.
    pub fn new(output: impl Write + Send + 'static) -> Self {
        VirtioConsole {
            output: Box::new(output),
            active: None,
        }
    }

    fn transmit(&mut self) -> Result<bool, QueueError> {
        let Some(active) = self.active.as_mut() else {
            return Ok(false);
        };
        let mut used = false;
        for _ in 0..active.tx.size {
            let Some(chain) = active.tx.pop(&active.memory)? else {
                break;
            };
            let len = (chain.readable_len() as usize).min(MAX_TX);
            let mut bytes = vec![0u8; len];
            let n = chain.read_at(&active.memory, 0, &mut bytes)?;
            if let Err(error) = self
                .output
                .write_all(&bytes[..n])
                .and_then(|()| self.output.flush())
            {
                log::debug!("virtio-console: output lost: {error}");
            }
            // The device writes nothing into a transmit buffer.
            active.tx.add_used(&active.memory, chain.head, 0)?;
            used = true;
        }
        Ok(used)
    }

    fn receive(&mut self, bytes: &[u8]) -> Result<(usize, bool), QueueError> {
        let Some(active) = self.active.as_mut() else {
            return Ok((0, false));
        };
        let mut taken = 0;
        let mut used = false;
        for _ in 0..active.rx.size {
            if taken == bytes.len() {
                break;
            }
            let Some(chain) = active.rx.pop(&active.memory)? else {
                break;
            };
            let n = chain.write_at(&active.memory, 0, &bytes[taken..])?;
            active.rx.add_used(&active.memory, chain.head, n as u32)?;
            taken += n;
            used = true;
        }
        Ok((taken, used))
    }

    fn finish<T: Default>(&mut self, result: Result<(T, bool), QueueError>) -> T {
        let Some(active) = self.active.as_ref() else {
            return T::default();
        };
        match result {
            Ok((value, used)) => {
                if used {
                    active.interrupt.signal_used();
                }
                value
            }
            Err(error) => {
                log::debug!("virtio-console: {error}");
                // Buffers used before the error stay used; say so too.
                active.interrupt.signal_used();
                active.interrupt.set_needs_reset();
                T::default()
            }
        }
    }
}

impl VirtioDevice for VirtioConsole {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_CONSOLE
    }

    fn features(&self) -> u64 {
        0
    }

    fn queue_count(&self) -> usize {
        2
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // cols, rows (le16), max_nr_ports, emerg_wr (le32): all 0.
        read_config_bytes(&[0u8; 12], offset, data);
    }

    fn activate(
        &mut self,
        queues: Vec<Queue>,
        memory: GuestMemoryMmap,
        interrupt: VirtioInterrupt,
    ) -> Result<(), ActivateError> {
        let ready = queues.len();
        let [rx, tx]: [Queue; 2] = queues
            .try_into()
            .map_err(|_| ActivateError::QueuesNotReady { expected: 2, ready })?;
        self.active = Some(Active {
            rx,
            tx,
            memory,
            interrupt,
        });
        Ok(())
    }

    fn reset(&mut self) {
        self.active = None;
    }

    fn queue_notify(&mut self, index: u16) {
        match index {
            TX => {
                let result = self.transmit().map(|used| ((), used));
                self.finish(result);
            }
            // New receive buffers: the host console's retry fills them.
            RX => {}
            _ => log::debug!("virtio-console: notify of queue {index} ignored"),
        }
    }
}

impl ConsoleInput for VirtioConsole {
    fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        let result = self.receive(bytes);
        self.finish(result)
    }
}
