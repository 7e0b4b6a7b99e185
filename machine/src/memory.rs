//! Guest RAM.
//!
//! RAM is anonymous memory mapped with `MAP_NORESERVE`, so a large `--memory` costs
//! nothing until the guest touches it, and marked `MADV_DONTDUMP`, so a core dump
//! of moat never carries guest secrets.

use vm_memory::mmap::MmapRegionBuilder;
use vm_memory::{GuestAddress, GuestMemoryMmap, GuestRegionMmap};

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("cannot map {size} bytes of guest RAM at {base:#x}: {source}")]
    Map {
        base: u64,
        size: u64,
        #[source]
        source: vm_memory::mmap::MmapRegionError,
    },
    #[error("guest RAM region at {base:#x} of {size} bytes is not addressable")]
    BadRegion { base: u64, size: u64 },
    #[error("guest RAM regions overlap or are out of order")]
    Layout,
}

/// Maps RAM for each `(guest address, size)` region, in ascending order.
pub fn create_guest_memory(
    regions: &[(GuestAddress, u64)],
) -> Result<GuestMemoryMmap, MemoryError> {
    let mut mapped = Vec::with_capacity(regions.len());
    for &(base, size) in regions {
        let bad_region = || MemoryError::BadRegion { base: base.0, size };
        let len = usize::try_from(size).map_err(|_| bad_region())?;
        let mapping = MmapRegionBuilder::new(len)
            .with_mmap_prot(libc::PROT_READ | libc::PROT_WRITE)
            .with_mmap_flags(libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE)
            .build()
            .map_err(|source| MemoryError::Map {
                base: base.0,
                size,
                source,
            })?;
        // SAFETY: the range is exactly the mapping just created and owned by
        // `mapping`; madvise only changes whether the kernel includes it in core
        // dumps.
        let advised = unsafe { libc::madvise(mapping.as_ptr().cast(), len, libc::MADV_DONTDUMP) };
        if advised != 0 {
            log::debug!(
                "MADV_DONTDUMP on guest RAM failed: {}",
                std::io::Error::last_os_error()
            );
        }
        mapped.push(GuestRegionMmap::new(mapping, base).ok_or_else(bad_region)?);
    }
    GuestMemoryMmap::from_regions(mapped).map_err(|_| MemoryError::Layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::{Bytes, GuestMemoryBackend};

    #[test]
    fn maps_regions_and_reads_back() {
        let memory = create_guest_memory(&[
            (GuestAddress(0), 0x10_0000),
            (GuestAddress(0x1_0000_0000), 0x1000),
        ])
        .unwrap();
        memory
            .write_obj(0xdead_beefu32, GuestAddress(0x1_0000_0ffc))
            .unwrap();
        assert_eq!(
            memory.read_obj::<u32>(GuestAddress(0x1_0000_0ffc)).unwrap(),
            0xdead_beef
        );
        assert!(memory.read_obj::<u32>(GuestAddress(0x10_0000)).is_err());
        assert_eq!(memory.num_regions(), 2);
    }

    #[test]
    fn a_huge_reservation_costs_nothing_up_front() {
        // 64 GiB with MAP_NORESERVE succeeds even on a small host.
        let memory = create_guest_memory(&[(GuestAddress(0), 64 << 30)]).unwrap();
        assert_eq!(memory.last_addr(), GuestAddress((64 << 30) - 1));
    }

    #[test]
    fn rejects_overlaps() {
        assert!(matches!(
            create_guest_memory(&[(GuestAddress(0), 0x2000), (GuestAddress(0x1000), 0x1000)]),
            Err(MemoryError::Layout)
        ));
    }
}
