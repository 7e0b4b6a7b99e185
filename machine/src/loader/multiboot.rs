//! The Multiboot (version 1) header: how a kernel asks a boot loader to load it.
//!
//! The header lies 4-byte aligned in the first 8 KiB of the file. With the
//! "address" flag (bit 16) the header itself says where to load the file (the
//! a.out kludge); otherwise the file is ELF and its program headers say.

use super::LoadError;

pub const HEADER_MAGIC: u32 = 0x1bad_b002;
/// What the boot loader leaves in `eax` for the kernel.
pub const BOOTLOADER_MAGIC: u32 = 0x2bad_b002;
const SEARCH_LIMIT: usize = 8192;

/// Align modules on 4 KiB boundaries.
pub const FLAG_PAGE_ALIGN: u32 = 1 << 0;
/// Provide mem_lower/mem_upper and the memory map.
pub const FLAG_MEMORY_INFO: u32 = 1 << 1;
/// Provide video mode information: QEMU ignores it as well, since there is no
/// framebuffer to describe.
pub const FLAG_VIDEO_MODE: u32 = 1 << 2;
/// The header's address fields are valid.
pub const FLAG_ADDRESSES: u32 = 1 << 16;
/// Bits 0-15 are requirements: a loader that does not understand one must refuse.
const REQUIRED_MASK: u32 = 0xffff;
const UNDERSTOOD: u32 = FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO | FLAG_VIDEO_MODE;

/// The a.out kludge address fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressFields {
    pub header_addr: u32,
    pub load_addr: u32,
    pub load_end_addr: u32,
    pub bss_end_addr: u32,
    pub entry_addr: u32,
}

/// A valid multiboot header found in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultibootHeader {
    /// Offset of the header in the file.
    pub offset: usize,
    pub flags: u32,
    pub addresses: Option<AddressFields>,
}

/// Where the a.out kludge says to put the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KludgeLayout {
    pub file_offset: usize,
    pub file_size: usize,
    pub load_addr: u64,
    /// End of the zeroed area (exclusive), at least `load_addr + file_size`.
    pub mem_end: u64,
    pub entry: u64,
}

fn word(file: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        file.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Finds the multiboot header, if the file has one. A header whose checksum does
/// not add up is not a header (the spec's rule), so a stray magic number in code
/// is skipped.
pub fn find_header(file: &[u8]) -> Result<Option<MultibootHeader>, LoadError> {
    let limit = file.len().min(SEARCH_LIMIT);
    let mut offset = 0;
    while offset + 12 <= limit {
        let (Some(magic), Some(flags), Some(checksum)) = (
            word(file, offset),
            word(file, offset + 4),
            word(file, offset + 8),
        ) else {
            break;
        };
        if magic == HEADER_MAGIC && magic.wrapping_add(flags).wrapping_add(checksum) == 0 {
            if flags & REQUIRED_MASK & !UNDERSTOOD != 0 {
                return Err(LoadError::MultibootFlags { flags });
            }
            let addresses = if flags & FLAG_ADDRESSES != 0 {
                let field = |n: usize| {
                    word(file, offset + 12 + 4 * n)
                        .ok_or(LoadError::MultibootAddresses("header is cut off"))
                };
                Some(AddressFields {
                    header_addr: field(0)?,
                    load_addr: field(1)?,
                    load_end_addr: field(2)?,
                    bss_end_addr: field(3)?,
                    entry_addr: field(4)?,
                })
            } else {
                None
            };
            return Ok(Some(MultibootHeader {
                offset,
                flags,
                addresses,
            }));
        }
        offset += 4;
    }
    Ok(None)
}

impl MultibootHeader {
    /// Resolves the a.out kludge fields against the file, checking each address
    /// relation the spec requires.
    pub fn kludge_layout(&self, file_len: usize) -> Result<Option<KludgeLayout>, LoadError> {
        let Some(a) = self.addresses else {
            return Ok(None);
        };
        let bad = LoadError::MultibootAddresses;
        if a.header_addr < a.load_addr {
            return Err(bad("header_addr is below load_addr"));
        }
        let header_delta = (a.header_addr - a.load_addr) as usize;
        let file_offset = self
            .offset
            .checked_sub(header_delta)
            .ok_or(bad("load_addr is before the start of the file"))?;
        let file_size = if a.load_end_addr == 0 {
            file_len - file_offset
        } else {
            if a.load_end_addr < a.load_addr {
                return Err(bad("load_end_addr is below load_addr"));
            }
            (a.load_end_addr - a.load_addr) as usize
        };
        if file_offset
            .checked_add(file_size)
            .is_none_or(|end| end > file_len)
        {
            return Err(LoadError::Truncated {
                index: 0,
                offset: file_offset as u64,
                end: file_offset as u64 + file_size as u64,
                file_len: file_len as u64,
            });
        }
        let load_addr = u64::from(a.load_addr);
        let loaded_end = load_addr + file_size as u64;
        let mem_end = if a.bss_end_addr == 0 {
            loaded_end
        } else {
            let bss_end = u64::from(a.bss_end_addr);
            if bss_end < loaded_end {
                return Err(bad("bss_end_addr is below the end of the loaded image"));
            }
            bss_end
        };
        Ok(Some(KludgeLayout {
            file_offset,
            file_size,
            load_addr,
            mem_end,
            entry: u64::from(a.entry_addr),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u32, extra: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        for value in [
            HEADER_MAGIC,
            flags,
            0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags),
        ]
        .iter()
        .chain(extra)
        {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out
    }

    #[test]
    fn finds_an_aligned_header_with_a_valid_checksum() {
        let mut file = vec![0u8; 64];
        // A magic with a bad checksum first: skipped.
        file[8..12].copy_from_slice(&HEADER_MAGIC.to_le_bytes());
        file.extend(header(FLAG_MEMORY_INFO, &[]));
        let found = find_header(&file).unwrap().unwrap();
        assert_eq!(found.offset, 64);
        assert_eq!(found.addresses, None);
        assert_eq!(find_header(&[0u8; 100]).unwrap(), None);
        // Beyond 8 KiB it does not count.
        let mut far = vec![0u8; 8192];
        far.extend(header(0, &[]));
        assert_eq!(find_header(&far).unwrap(), None);
    }

    #[test]
    fn refuses_required_features_it_lacks() {
        let file = header(1 << 3, &[]);
        assert_eq!(
            find_header(&file).unwrap_err(),
            LoadError::MultibootFlags { flags: 8 }
        );
    }

    #[test]
    fn resolves_the_aout_kludge() {
        // Header at file offset 0x20, file loaded at 1 MiB from offset 0.
        let mut file = vec![0u8; 0x20];
        file.extend(header(
            FLAG_ADDRESSES,
            &[0x10_0020, 0x10_0000, 0, 0x10_2000, 0x10_0040],
        ));
        file.resize(0x100, 0);
        let found = find_header(&file).unwrap().unwrap();
        let layout = found.kludge_layout(file.len()).unwrap().unwrap();
        assert_eq!(
            layout,
            KludgeLayout {
                file_offset: 0,
                file_size: 0x100,
                load_addr: 0x10_0000,
                mem_end: 0x10_2000,
                entry: 0x10_0040,
            }
        );
    }

    #[test]
    fn rejects_impossible_kludge_addresses() {
        for fields in [
            [0x10_0000, 0x10_0020, 0, 0, 0],         // header below load
            [0x10_1000, 0x10_0000, 0, 0, 0],         // load before file start
            [0x10_0000, 0x10_0000, 0x10_8000, 0, 0], // past the end of the file
            [0x10_0000, 0x10_0000, 0x10_0010, 1, 0], // bss end below image end
            [0x10_0000, 0x10_0000, 0x0f_0000, 0, 0], // load end below load
        ] {
            let file = header(FLAG_ADDRESSES, &fields);
            let found = find_header(&file).unwrap().unwrap();
            assert!(found.kludge_layout(file.len()).is_err(), "{fields:x?}");
        }
        let cut = &header(FLAG_ADDRESSES, &[0x10_0000])[..];
        assert!(find_header(cut).is_err());
    }
}
