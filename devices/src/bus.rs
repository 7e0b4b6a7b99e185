//! Address buses: port I/O and MMIO ranges mapped to devices.
//!
//! A board builds a bus once, inserting each device at a range; the bus is then
//! shared read-only between vCPUs, and each device has its own lock. Reads of
//! unmapped space return all-ones (what a real bus with pull-ups returns) and
//! writes there are dropped, both logged at debug level with a rate limit so a
//! guest probing the bus cannot flood the log.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A device mapped on a bus. Offsets are relative to the start of the range the
/// device was inserted at; `data.len()` is the access width (1, 2, 4 or 8 bytes).
pub trait BusDevice: Send {
    /// Fills `data` with the value read at `offset`.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// Handles a write of `data` at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// A device as a bus holds it: shared, because one device may appear at several
/// ranges (the reset controller is at both 0x64 and 0xcf9).
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// Why a range could not be inserted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("bus range at {base:#x} has zero size")]
    ZeroSizedRange { base: u64 },
    #[error("bus range {base:#x}+{size:#x} runs past the end of the address space")]
    RangeOverflow { base: u64, size: u64 },
    #[error(
        "bus range {base:#x}+{size:#x} overlaps the device already at {other_base:#x}+{other_size:#x}"
    )]
    Overlap {
        base: u64,
        size: u64,
        other_base: u64,
        other_size: u64,
    },
}

struct Mapping {
    size: u64,
    device: SharedDevice,
}

/// One address space (port I/O or MMIO) of a machine.
pub struct Bus {
    name: &'static str,
    ranges: BTreeMap<u64, Mapping>,
    unmapped_accesses: AtomicU64,
}

impl Bus {
    /// An empty bus; `name` appears in log messages ("pio", "mmio").
    pub fn new(name: &'static str) -> Self {
        Bus {
            name,
            ranges: BTreeMap::new(),
            unmapped_accesses: AtomicU64::new(0),
        }
    }

    /// Maps `device` at `[base, base + size)`.
    pub fn insert(&mut self, device: SharedDevice, base: u64, size: u64) -> Result<(), BusError> {
        if size == 0 {
            return Err(BusError::ZeroSizedRange { base });
        }
        let last = base
            .checked_add(size - 1)
            .ok_or(BusError::RangeOverflow { base, size })?;
        // Only two neighbours can overlap: the range starting at or before `base`,
        // and the first range starting after it.
        let before = self.ranges.range(..=base).next_back();
        let after = self.ranges.range(base..).next();
        for (&other_base, mapping) in before.into_iter().chain(after) {
            let other_last = other_base + (mapping.size - 1);
            if other_base <= last && base <= other_last {
                return Err(BusError::Overlap {
                    base,
                    size,
                    other_base,
                    other_size: mapping.size,
                });
            }
        }
        self.ranges.insert(base, Mapping { size, device });
        Ok(())
    }

    /// The device covering the whole access `[addr, addr + len)`, and the offset of
    /// `addr` inside its range.
    fn resolve(&self, addr: u64, len: usize) -> Option<(&SharedDevice, u64)> {
        let (&base, mapping) = self.ranges.range(..=addr).next_back()?;
        let offset = addr - base;
        let end = offset.checked_add(len as u64)?;
        (end <= mapping.size).then_some((&mapping.device, offset))
    }

    /// Reads `data.len()` bytes at `addr`. Returns whether a device answered; if
    /// none did, `data` is all-ones.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.resolve(addr, data.len()) {
            Some((device, offset)) => {
                lock(device).read(offset, data);
                true
            }
            None => {
                data.fill(0xff);
                self.note_unmapped("read", addr, data.len());
                false
            }
        }
    }

    /// Writes `data` at `addr`. Returns whether a device took it; if none did, the
    /// write is dropped.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.resolve(addr, data.len()) {
            Some((device, offset)) => {
                lock(device).write(offset, data);
                true
            }
            None => {
                self.note_unmapped("write", addr, data.len());
                false
            }
        }
    }

    fn note_unmapped(&self, what: &str, addr: u64, len: usize) {
        let count = self.unmapped_accesses.fetch_add(1, Ordering::Relaxed) + 1;
        // The first few, then only every power of two: a guest that hammers an
        // unmapped port costs a logarithmic number of log lines.
        if count <= 16 || count.is_power_of_two() {
            log::debug!(
                "{} {what} of {len} bytes at unmapped address {addr:#x} ({count} unmapped accesses so far)",
                self.name
            );
        }
    }
}

/// Locks a device, recovering from a poisoned lock: a panic in another thread has
/// already been reported, and the device state is still the best we have.
fn lock(device: &SharedDevice) -> std::sync::MutexGuard<'_, dyn BusDevice + 'static> {
    device
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Remembers the last write and answers reads with the offset.
    #[derive(Default)]
    struct Probe {
        last_write: Option<(u64, Vec<u8>)>,
    }

    impl BusDevice for Probe {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.last_write = Some((offset, data.to_vec()));
        }
    }

    fn probe() -> (Arc<Mutex<Probe>>, SharedDevice) {
        let device = Arc::new(Mutex::new(Probe::default()));
        let shared: SharedDevice = device.clone();
        (device, shared)
    }

    #[test]
    fn rejects_zero_size_and_overflow() {
        let mut bus = Bus::new("test");
        let (_, dev) = probe();
        assert_eq!(
            bus.insert(dev.clone(), 0x10, 0),
            Err(BusError::ZeroSizedRange { base: 0x10 })
        );
        assert_eq!(
            bus.insert(dev.clone(), u64::MAX, 2),
            Err(BusError::RangeOverflow {
                base: u64::MAX,
                size: 2
            })
        );
        // The last byte of the address space is a valid one-byte range.
        assert_eq!(bus.insert(dev, u64::MAX, 1), Ok(()));
    }

    #[test]
    fn rejects_every_kind_of_overlap() {
        let mut bus = Bus::new("test");
        let (_, dev) = probe();
        bus.insert(dev.clone(), 0x100, 0x10).unwrap();
        for (base, size) in [
            (0x100, 0x10),
            (0xf8, 0x9),
            (0x10f, 1),
            (0x104, 2),
            (0x0, 0x1000),
        ] {
            assert!(
                matches!(
                    bus.insert(dev.clone(), base, size),
                    Err(BusError::Overlap { .. })
                ),
                "{base:#x}+{size:#x} should overlap"
            );
        }
        // Touching ranges on either side are fine.
        bus.insert(dev.clone(), 0xf0, 0x10).unwrap();
        bus.insert(dev, 0x110, 0x10).unwrap();
    }

    #[test]
    fn dispatches_with_offsets_and_fills_unmapped_with_ones() {
        let mut bus = Bus::new("test");
        let (device, shared) = probe();
        bus.insert(shared, 0x3f8, 8).unwrap();

        let mut data = [0u8; 1];
        assert!(bus.read(0x3fd, &mut data));
        assert_eq!(data, [5]);
        assert!(bus.write(0x3f9, &[0xaa, 0xbb]));
        assert_eq!(
            device.lock().unwrap().last_write,
            Some((1, vec![0xaa, 0xbb]))
        );

        let mut wide = [0u8; 4];
        assert!(!bus.read(0x3f0, &mut wide));
        assert_eq!(wide, [0xff; 4]);
        // An access that starts inside a range but runs past its end is unmapped.
        assert!(!bus.read(0x3fe, &mut wide));
        assert_eq!(wide, [0xff; 4]);
        assert!(!bus.write(0x400, &[1]));
    }

    #[test]
    fn one_device_at_two_ranges() {
        let mut bus = Bus::new("test");
        let (device, shared) = probe();
        bus.insert(shared.clone(), 0x64, 1).unwrap();
        bus.insert(shared, 0xcf9, 1).unwrap();
        bus.write(0xcf9, &[6]);
        assert_eq!(device.lock().unwrap().last_write, Some((0, vec![6])));
    }
}
