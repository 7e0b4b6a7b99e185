//! virtio-blk, the block device (virtio 1.2 section 5.2), backed by an open
//! host file (a disk image or a block device).
//!
//! One request queue. A request is a 16-byte header (type, reserved, sector)
//! in the device-readable part, the data, and a status byte: the last byte of
//! the device-writable part. Header and data may be split across descriptors
//! any way the driver likes. Handled types: `IN` (read), `OUT` (write),
//! `FLUSH` and `GET_ID`; others answer `UNSUPP`.
//!
//! Host I/O is `pread64`/`pwrite64` and `fsync` on the one descriptor (the
//! vCPU threads' seccomp filter allows them on it), synchronously on the vCPU
//! thread that notified, through a 64 KiB bounce buffer.
//!
//! Choices:
//! - The capacity is the file's size in 512-byte sectors, rounded down; a
//!   request reaching past it fails with `IOERR` and moves no data.
//! - Data lengths must be whole sectors (`IOERR` otherwise), as Linux always
//!   sends.
//! - Read-only disks offer `VIRTIO_BLK_F_RO`; a write then fails with `IOERR`
//!   and writes nothing (5.2.6.2). `FLUSH` is always offered (`F_FLUSH`) and
//!   succeeds on a read-only disk.
//! - No `SEG_MAX`/`SIZE_MAX`/`BLK_SIZE`/topology/discard/multi-queue.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use vm_memory::GuestMemoryMmap;

use crate::virtio::mmio::{ActivateError, VirtioDevice, VirtioInterrupt, read_config_bytes};
use crate::virtio::queue::{DescriptorChain, Queue, QueueError};

/// The block device's virtio ID.
pub const VIRTIO_ID_BLOCK: u32 = 2;
pub const SECTOR_SIZE: u64 = 512;
/// The length of a `GET_ID` answer.
pub const VIRTIO_BLK_ID_BYTES: usize = 20;

pub const VIRTIO_BLK_F_RO: u64 = 1 << 5;
pub const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;

pub const VIRTIO_BLK_T_IN: u32 = 0;
pub const VIRTIO_BLK_T_OUT: u32 = 1;
pub const VIRTIO_BLK_T_FLUSH: u32 = 4;
pub const VIRTIO_BLK_T_GET_ID: u32 = 8;

pub const VIRTIO_BLK_S_OK: u8 = 0;
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;

const HEADER_LEN: u64 = 16;
const BOUNCE: usize = 64 * 1024;

/// Why a disk could not be opened as a device.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("the size of the disk image could not be read: {0}")]
    Size(std::io::Error),
}

struct Active {
    queue: Queue,
    memory: GuestMemoryMmap,
    interrupt: VirtioInterrupt,
}

/// A virtio block device.
pub struct VirtioBlock {
    file: Arc<File>,
    read_only: bool,
    capacity: u64,
    id: [u8; VIRTIO_BLK_ID_BYTES],
    active: Option<Active>,
}

impl VirtioBlock {
    /// A disk backed by `file` (opened read-write unless `read_only`), whose
    /// `GET_ID` answer is `serial` (truncated to 20 bytes, zero-padded).
    /// The file is shared, not duplicated: a board rebuilt after a guest
    /// reset reuses the same descriptor, the one the sandbox lets the vCPU
    /// threads read and write.
    pub fn new(file: Arc<File>, read_only: bool, serial: &str) -> Result<Self, BlockError> {
        // Seeking works for block devices too, whose metadata size is 0.
        let size = file.metadata().map_err(BlockError::Size)?.len();
        let mut id = [0u8; VIRTIO_BLK_ID_BYTES];
        let n = serial.len().min(VIRTIO_BLK_ID_BYTES);
        id[..n].copy_from_slice(&serial.as_bytes()[..n]);
        Ok(VirtioBlock {
            file,
            read_only,
            capacity: size / SECTOR_SIZE,
            id,
            active: None,
        })
    }

    /// The disk's size in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Host byte offset of `len` bytes at `sector`, if they lie on the disk.
    fn range(&self, sector: u64, len: u64) -> Option<u64> {
        if !len.is_multiple_of(SECTOR_SIZE) {
            return None;
        }
        let end = sector.checked_add(len / SECTOR_SIZE)?;
        (end <= self.capacity).then(|| sector * SECTOR_SIZE)
    }

    /// Carries out one request; returns the status and the bytes written
    /// into the chain before the status byte.
    fn execute(
        &self,
        memory: &GuestMemoryMmap,
        chain: &DescriptorChain,
        writable: u64,
    ) -> Result<(u8, u64), QueueError> {
        let mut header = [0u8; HEADER_LEN as usize];
        if chain.read_at(memory, 0, &mut header)? < header.len() {
            log::debug!("virtio-blk: request shorter than its header");
            return Ok((VIRTIO_BLK_S_IOERR, 0));
        }
        let kind = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let mut sector_bytes = [0u8; 8];
        sector_bytes.copy_from_slice(&header[8..16]);
        let sector = u64::from_le_bytes(sector_bytes);
        // The writable part ends with the status byte.
        let data_in = writable - 1;
        match kind {
            VIRTIO_BLK_T_IN => {
                let Some(start) = self.range(sector, data_in) else {
                    log::debug!("virtio-blk: read of {data_in} bytes at sector {sector} refused");
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                };
                let mut buf = vec![0u8; BOUNCE.min(data_in as usize)];
                let mut done = 0u64;
                while done < data_in {
                    let n = (data_in - done).min(BOUNCE as u64) as usize;
                    if self
                        .file
                        .read_exact_at(&mut buf[..n], start + done)
                        .is_err()
                    {
                        return Ok((VIRTIO_BLK_S_IOERR, done));
                    }
                    chain.write_at(memory, done, &buf[..n])?;
                    done += n as u64;
                }
                Ok((VIRTIO_BLK_S_OK, done))
            }
            VIRTIO_BLK_T_OUT => {
                let data_out = chain.readable_len() - HEADER_LEN;
                if self.read_only {
                    log::debug!("virtio-blk: write to a read-only disk refused");
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                }
                let Some(start) = self.range(sector, data_out) else {
                    log::debug!("virtio-blk: write of {data_out} bytes at sector {sector} refused");
                    return Ok((VIRTIO_BLK_S_IOERR, 0));
                };
                let mut buf = vec![0u8; BOUNCE.min(data_out as usize)];
                let mut done = 0u64;
                while done < data_out {
                    let n = (data_out - done).min(BOUNCE as u64) as usize;
                    chain.read_at(memory, HEADER_LEN + done, &mut buf[..n])?;
                    if self.file.write_all_at(&buf[..n], start + done).is_err() {
                        return Ok((VIRTIO_BLK_S_IOERR, 0));
                    }
                    done += n as u64;
                }
                Ok((VIRTIO_BLK_S_OK, 0))
            }
            VIRTIO_BLK_T_FLUSH => {
                if self.read_only || self.file.sync_all().is_ok() {
                    Ok((VIRTIO_BLK_S_OK, 0))
                } else {
                    Ok((VIRTIO_BLK_S_IOERR, 0))
                }
            }
            VIRTIO_BLK_T_GET_ID => {
                let n = (data_in as usize).min(VIRTIO_BLK_ID_BYTES);
                let written = chain.write_at(memory, 0, &self.id[..n])?;
                Ok((VIRTIO_BLK_S_OK, written as u64))
            }
            other => {
                log::debug!("virtio-blk: unsupported request type {other}");
                Ok((VIRTIO_BLK_S_UNSUPP, 0))
            }
        }
    }

    /// Handles one chain: returns the length to report as used.
    fn handle(&self, memory: &GuestMemoryMmap, chain: &DescriptorChain) -> Result<u32, QueueError> {
        let writable = chain.writable_len();
        if writable == 0 {
            // Nowhere to put a status: the request is malformed; return the
            // buffer untouched so the driver is not left waiting.
            log::debug!("virtio-blk: request without a status byte");
            return Ok(0);
        }
        let (status, data) = self.execute(memory, chain, writable)?;
        chain.write_at(memory, writable - 1, &[status])?;
        // Device-written bytes: the data read, plus the status byte.
        Ok(u32::try_from(data + 1).unwrap_or(u32::MAX))
    }
}

impl VirtioDevice for VirtioBlock {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }

    fn features(&self) -> u64 {
        let ro = if self.read_only { VIRTIO_BLK_F_RO } else { 0 };
        VIRTIO_BLK_F_FLUSH | ro
    }

    fn queue_count(&self) -> usize {
        1
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // struct virtio_blk_config: only `capacity` (le64 at 0) is meaningful;
        // the fields behind features moat does not offer read 0.
        let mut config = [0u8; 60];
        config[..8].copy_from_slice(&self.capacity.to_le_bytes());
        read_config_bytes(&config, offset, data);
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
        let Some(mut active) = self.active.take() else {
            return;
        };
        let mut used = false;
        let result = (|| {
            // At most one ring's worth per notification (see virtio-rng).
            for _ in 0..active.queue.size {
                let Some(chain) = active.queue.pop(&active.memory)? else {
                    break;
                };
                let len = self.handle(&active.memory, &chain)?;
                active.queue.add_used(&active.memory, chain.head, len)?;
                used = true;
            }
            Ok::<(), QueueError>(())
        })();
        if used {
            active.interrupt.signal_used();
        }
        if let Err(error) = result {
            log::debug!("virtio-blk: {error}");
            active.interrupt.set_needs_reset();
        }
        self.active = Some(active);
    }
}
