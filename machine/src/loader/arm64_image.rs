//! The arm64 Linux `Image` header (Documentation/arch/arm64/booting.rst):
//! 64 bytes at the start of the file that say where in a 2 MiB-aligned
//! region the kernel wants to run and how much memory it needs.

use super::LoadError;

/// "ARM\x64", little-endian, at offset 56.
const MAGIC: u32 = 0x644d_5241;
const MAGIC_OFFSET: usize = 56;
const HEADER_SIZE: usize = 64;
/// Flags bit 0: the kernel is big-endian.
const FLAG_BIG_ENDIAN: u64 = 1;

/// What the header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// Where, from a 2 MiB-aligned base, the image must be placed.
    pub text_offset: u64,
    /// The memory the kernel uses from its start, bss included (0 in kernels
    /// older than 3.17, which also leave `text_offset` unreliable).
    pub image_size: u64,
    pub flags: u64,
}

/// Whether `file` starts with an arm64 `Image` header.
pub fn is_image(file: &[u8]) -> bool {
    read_u32(file, MAGIC_OFFSET) == Some(MAGIC)
}

/// Parses the header of an arm64 `Image`.
pub fn parse(file: &[u8]) -> Result<ImageHeader, LoadError> {
    if file.len() < HEADER_SIZE || !is_image(file) {
        return Err(LoadError::BadImageHeader("no arm64 Image magic"));
    }
    let field = |offset| read_u64(file, offset).ok_or(LoadError::BadImageHeader("truncated"));
    let header = ImageHeader {
        text_offset: field(8)?,
        image_size: field(16)?,
        flags: field(24)?,
    };
    if header.flags & FLAG_BIG_ENDIAN != 0 {
        return Err(LoadError::WrongEndian {
            expected: "aarch64",
        });
    }
    if header.image_size != 0 && header.image_size < file.len() as u64 {
        return Err(LoadError::BadImageHeader(
            "image_size is smaller than the file",
        ));
    }
    Ok(header)
}

fn read_u32(file: &[u8], offset: usize) -> Option<u32> {
    let bytes = file.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn read_u64(file: &[u8], offset: usize) -> Option<u64> {
    let bytes = file.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text_offset: u64, image_size: u64, flags: u64, len: usize) -> Vec<u8> {
        let mut file = vec![0u8; len.max(HEADER_SIZE)];
        file[8..16].copy_from_slice(&text_offset.to_le_bytes());
        file[16..24].copy_from_slice(&image_size.to_le_bytes());
        file[24..32].copy_from_slice(&flags.to_le_bytes());
        file[56..60].copy_from_slice(&MAGIC.to_le_bytes());
        file
    }

    #[test]
    fn reads_a_linux_image_header() {
        let file = header(0, 0x20_0000, 0xa, 4096);
        assert!(is_image(&file));
        assert_eq!(
            parse(&file),
            Ok(ImageHeader {
                text_offset: 0,
                image_size: 0x20_0000,
                flags: 0xa
            })
        );
    }

    #[test]
    fn refuses_what_it_cannot_boot() {
        assert!(!is_image(b"short"));
        assert_eq!(
            parse(&[0u8; 100]),
            Err(LoadError::BadImageHeader("no arm64 Image magic"))
        );
        assert_eq!(
            parse(&header(0, 0x1000, 1, 64)),
            Err(LoadError::WrongEndian {
                expected: "aarch64"
            })
        );
        assert_eq!(
            parse(&header(0, 64, 0, 4096)),
            Err(LoadError::BadImageHeader(
                "image_size is smaller than the file"
            ))
        );
    }
}
