//! Split virtqueues (virtio 1.2 section 2.7): the descriptor table, the
//! available ring the driver fills, and the used ring the device returns
//! buffers through.
//!
//! Everything in the rings is guest-written and read again on every use, so
//! every index, length and address is checked: a chain is collected and
//! validated whole before a device sees it. The rules:
//!
//! - the available index may run at most one queue size ahead of the device;
//! - a head or `next` index must be inside its table;
//! - a chain has at most as many descriptors as its table (the queue size, or
//!   the indirect table's entry count); a longer walk can only be a cycle;
//! - every buffer lies wholly in guest RAM (`addr + len` computed without
//!   overflow);
//! - device-readable descriptors come before device-writable ones (2.7.4.2);
//! - an indirect table (`VIRTQ_DESC_F_INDIRECT`) is a multiple of 16 bytes, in
//!   RAM, holds no further indirect descriptor, and ends the chain (a driver
//!   must not set `NEXT` with `INDIRECT`).
//!
//! Any violation is a [`QueueError`]; the device then reports
//! `DEVICE_NEEDS_RESET` and stops using the queue (see `mmio.rs`). Nothing here
//! panics or loops longer than the table sizes.
//!
//! Features: `VIRTIO_F_INDIRECT_DESC` is offered (indirect tables are
//! accepted). `VIRTIO_F_EVENT_IDX` is not: the device interrupts after every
//! batch of used buffers, and the driver's `VIRTQ_AVAIL_F_NO_INTERRUPT` hint is
//! ignored, which the spec allows (it is only a hint). The device never sets
//! `VIRTQ_USED_F_NO_NOTIFY`.

use std::sync::atomic::{Ordering, fence};

use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// The largest queue any moat device offers (QueueNumMax).
pub const QUEUE_MAX_SIZE: u16 = 256;

const DESC_SIZE: u64 = 16;
const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const DESC_F_INDIRECT: u16 = 4;
/// An indirect table may have at most this many entries; the spec bounds a
/// chain by the queue size, and Linux never builds bigger tables than that.
const MAX_INDIRECT_ENTRIES: u64 = QUEUE_MAX_SIZE as u64;

/// Why a queue could not be used. Every case is the guest's doing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("the queue is not ready or its size is invalid")]
    NotReady,
    #[error("the ring at {addr:#x} ({size} bytes) is not in guest memory or misaligned")]
    BadRing { addr: u64, size: u64 },
    #[error("the available index moved {pending} entries ahead of a {size}-entry queue")]
    AvailOverrun { pending: u16, size: u16 },
    #[error("descriptor index {index} is outside a {size}-entry table")]
    IndexOutOfRange { index: u16, size: u64 },
    #[error("a descriptor chain is longer than its {limit}-entry table (a cycle)")]
    ChainTooLong { limit: u64 },
    #[error("the buffer at {addr:#x} ({len} bytes) is not in guest memory")]
    BadBuffer { addr: u64, len: u32 },
    #[error("a device-readable descriptor follows a device-writable one")]
    ReadableAfterWritable,
    #[error("an indirect table at {addr:#x} of {len} bytes is invalid")]
    BadIndirectTable { addr: u64, len: u32 },
    #[error("an indirect table holds another indirect descriptor")]
    NestedIndirect,
    #[error("guest memory at {addr:#x} could not be accessed")]
    Memory { addr: u64 },
}

/// One buffer of a chain, checked to lie in guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    pub addr: GuestAddress,
    pub len: u32,
    /// Device-writable (the driver reads it back).
    pub writable: bool,
}

/// A validated chain of buffers taken off the available ring: the readable
/// part first, then the writable part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorChain {
    /// The head index, to return in the used ring.
    pub head: u16,
    pub descriptors: Vec<Descriptor>,
}

impl DescriptorChain {
    fn total(&self, writable: bool) -> u64 {
        self.descriptors
            .iter()
            .filter(|d| d.writable == writable)
            .map(|d| u64::from(d.len))
            .sum()
    }

    /// Bytes the device may read.
    pub fn readable_len(&self) -> u64 {
        self.total(false)
    }

    /// Bytes the device may write.
    pub fn writable_len(&self) -> u64 {
        self.total(true)
    }

    /// Copies between `buf` and the part of the chain of the given kind,
    /// starting `offset` bytes into it; returns how many bytes moved (fewer
    /// than `buf.len()` at the end of the chain).
    fn copy(
        &self,
        memory: &GuestMemoryMmap,
        writable: bool,
        mut offset: u64,
        buf: &mut [u8],
        to_guest: bool,
    ) -> Result<usize, QueueError> {
        let mut done = 0usize;
        for d in self.descriptors.iter().filter(|d| d.writable == writable) {
            if done == buf.len() {
                break;
            }
            let len = u64::from(d.len);
            if offset >= len {
                offset -= len;
                continue;
            }
            let n = ((len - offset) as usize).min(buf.len() - done);
            // In range: the chain was checked to lie in memory when popped.
            let addr = d.addr.unchecked_add(offset);
            let part = &mut buf[done..done + n];
            let moved = if to_guest {
                memory.write_slice(part, addr)
            } else {
                memory.read_slice(part, addr)
            };
            moved.map_err(|_| QueueError::Memory { addr: addr.0 })?;
            done += n;
            offset = 0;
        }
        Ok(done)
    }

    /// Reads the readable part from `offset` into `buf`.
    pub fn read_at(
        &self,
        memory: &GuestMemoryMmap,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, QueueError> {
        self.copy(memory, false, offset, buf, false)
    }

    /// Writes `buf` into the writable part from `offset`.
    pub fn write_at(
        &self,
        memory: &GuestMemoryMmap,
        offset: u64,
        buf: &[u8],
    ) -> Result<usize, QueueError> {
        // `copy` takes `&mut` for both directions; writing only reads it.
        let mut tmp = buf.to_vec();
        self.copy(memory, true, offset, &mut tmp, true)
    }
}

/// One split virtqueue: the registers the driver programs through the
/// transport, and the device's position in the rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub max_size: u16,
    pub size: u16,
    pub ready: bool,
    pub desc_table: GuestAddress,
    pub avail_ring: GuestAddress,
    pub used_ring: GuestAddress,
    next_avail: u16,
    next_used: u16,
}

impl Queue {
    /// A queue in its reset state offering up to `max_size` entries.
    pub fn new(max_size: u16) -> Self {
        Queue {
            max_size,
            size: max_size,
            ready: false,
            desc_table: GuestAddress(0),
            avail_ring: GuestAddress(0),
            used_ring: GuestAddress(0),
            next_avail: 0,
            next_used: 0,
        }
    }

    /// Back to the reset state.
    pub fn reset(&mut self) {
        *self = Queue::new(self.max_size);
    }

    /// Whether the driver's size is one a split queue can have: a power of two
    /// no larger than the maximum.
    pub fn size_is_valid(&self) -> bool {
        self.size != 0 && self.size <= self.max_size && self.size.is_power_of_two()
    }

    /// Checks the three rings lie in guest memory and are aligned as 2.7
    /// requires; the transport calls this when the driver sets DRIVER_OK.
    pub fn validate(&self, memory: &GuestMemoryMmap) -> Result<(), QueueError> {
        if !self.ready || !self.size_is_valid() {
            return Err(QueueError::NotReady);
        }
        let n = u64::from(self.size);
        let rings = [
            (self.desc_table, DESC_SIZE * n, 16),
            (self.avail_ring, 6 + 2 * n, 2),
            (self.used_ring, 6 + 8 * n, 4),
        ];
        for (addr, size, align) in rings {
            if addr.0 % align != 0 || !memory.check_range(addr, size as usize) {
                return Err(QueueError::BadRing { addr: addr.0, size });
            }
        }
        Ok(())
    }

    fn read_u16(
        memory: &GuestMemoryMmap,
        base: GuestAddress,
        offset: u64,
    ) -> Result<u16, QueueError> {
        let addr = base
            .checked_add(offset)
            .ok_or(QueueError::Memory { addr: base.0 })?;
        memory
            .read_obj::<u16>(addr)
            .map(u16::from_le)
            .map_err(|_| QueueError::Memory { addr: addr.0 })
    }

    /// Reads descriptor `index` of the table at `table`.
    fn descriptor(
        memory: &GuestMemoryMmap,
        table: GuestAddress,
        index: u64,
    ) -> Result<(u64, u32, u16, u16), QueueError> {
        let addr = table
            .checked_add(index * DESC_SIZE)
            .ok_or(QueueError::Memory { addr: table.0 })?;
        let mut raw = [0u8; 16];
        memory
            .read_slice(&mut raw, addr)
            .map_err(|_| QueueError::Memory { addr: addr.0 })?;
        let field = |range: std::ops::Range<usize>| {
            raw[range]
                .iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
        };
        Ok((
            field(0..8),
            field(8..12) as u32,
            field(12..14) as u16,
            field(14..16) as u16,
        ))
    }

    /// Takes the next chain off the available ring, or `None` if the driver
    /// has made none available.
    pub fn pop(&mut self, memory: &GuestMemoryMmap) -> Result<Option<DescriptorChain>, QueueError> {
        if !self.ready || !self.size_is_valid() {
            return Err(QueueError::NotReady);
        }
        let avail_idx = Self::read_u16(memory, self.avail_ring, 2)?;
        let pending = avail_idx.wrapping_sub(self.next_avail);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.size {
            return Err(QueueError::AvailOverrun {
                pending,
                size: self.size,
            });
        }
        // The ring entries were written before the index: read them after it.
        fence(Ordering::Acquire);
        let slot = u64::from(self.next_avail % self.size);
        let head = Self::read_u16(memory, self.avail_ring, 4 + 2 * slot)?;
        let chain = self.walk(memory, head)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(Some(chain))
    }

    fn walk(&self, memory: &GuestMemoryMmap, head: u16) -> Result<DescriptorChain, QueueError> {
        let mut descriptors = Vec::new();
        let mut table = self.desc_table;
        let mut limit = u64::from(self.size);
        let mut indirect = false;
        let mut index = u64::from(head);
        let mut steps = 0u64;
        loop {
            if index >= limit {
                return Err(QueueError::IndexOutOfRange {
                    index: index as u16,
                    size: limit,
                });
            }
            steps += 1;
            if steps > limit {
                return Err(QueueError::ChainTooLong { limit });
            }
            let (addr, len, flags, next) = Self::descriptor(memory, table, index)?;
            if flags & DESC_F_INDIRECT != 0 {
                if indirect {
                    return Err(QueueError::NestedIndirect);
                }
                let entries = u64::from(len) / DESC_SIZE;
                let bad = QueueError::BadIndirectTable { addr, len };
                if flags & DESC_F_NEXT != 0
                    || len == 0
                    || u64::from(len) % DESC_SIZE != 0
                    || entries > MAX_INDIRECT_ENTRIES
                    || addr % 16 != 0
                    || !memory.check_range(GuestAddress(addr), len as usize)
                {
                    return Err(bad);
                }
                indirect = true;
                table = GuestAddress(addr);
                limit = entries;
                index = 0;
                steps = 0;
                continue;
            }
            let in_ram = GuestAddress(addr).checked_add(u64::from(len)).is_some()
                && memory.check_range(GuestAddress(addr), len as usize);
            if !in_ram {
                return Err(QueueError::BadBuffer { addr, len });
            }
            let writable = flags & DESC_F_WRITE != 0;
            if !writable && descriptors.last().is_some_and(|d: &Descriptor| d.writable) {
                return Err(QueueError::ReadableAfterWritable);
            }
            descriptors.push(Descriptor {
                addr: GuestAddress(addr),
                len,
                writable,
            });
            if flags & DESC_F_NEXT == 0 {
                break;
            }
            index = u64::from(next);
        }
        Ok(DescriptorChain { head, descriptors })
    }

    /// Returns chain `head` to the driver with `len` bytes written into it.
    pub fn add_used(
        &mut self,
        memory: &GuestMemoryMmap,
        head: u16,
        len: u32,
    ) -> Result<(), QueueError> {
        if !self.ready || !self.size_is_valid() {
            return Err(QueueError::NotReady);
        }
        let slot = u64::from(self.next_used % self.size);
        let elem = self
            .used_ring
            .checked_add(4 + 8 * slot)
            .ok_or(QueueError::Memory {
                addr: self.used_ring.0,
            })?;
        let mut raw = [0u8; 8];
        raw[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        raw[4..].copy_from_slice(&len.to_le_bytes());
        memory
            .write_slice(&raw, elem)
            .map_err(|_| QueueError::Memory { addr: elem.0 })?;
        // The element must be visible before the index that publishes it.
        fence(Ordering::Release);
        self.next_used = self.next_used.wrapping_add(1);
        let idx = self.used_ring.checked_add(2).ok_or(QueueError::Memory {
            addr: self.used_ring.0,
        })?;
        memory
            .write_obj::<u16>(self.next_used.to_le(), idx)
            .map_err(|_| QueueError::Memory { addr: idx.0 })?;
        // And the index before the interrupt the caller sends next.
        fence(Ordering::SeqCst);
        Ok(())
    }
}
