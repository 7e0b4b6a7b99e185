//! Kernel image parsing, independent of any board.
//!
//! Parsers here only read and validate the file: program headers, notes, boot
//! headers. Boards decide where things go and write them into guest memory. Every
//! malformed image is a [`LoadError`] whose message follows the file name and a
//! colon in moat's one-line error.

pub mod arm64_image;
pub mod elf;
pub mod multiboot;

/// What is wrong with a kernel or initrd image.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoadError {
    #[error(
        "not an ELF file (no ELF magic; moat boots ELF kernels with a PVH note or a multiboot header, and plain ELF64)"
    )]
    NotElf,
    #[error("malformed ELF: {0}")]
    MalformedElf(String),
    #[error("built for {found}, not {expected}")]
    WrongMachine {
        found: &'static str,
        expected: &'static str,
    },
    #[error("big-endian ELF; {expected} kernels are little-endian")]
    WrongEndian { expected: &'static str },
    #[error("no loadable (PT_LOAD) segment")]
    NoLoadableSegments,
    #[error(
        "truncated: segment {index} needs file bytes {offset:#x}..{end:#x} but the file has {file_len:#x}"
    )]
    Truncated {
        index: usize,
        offset: u64,
        end: u64,
        file_len: u64,
    },
    #[error(
        "segment {index} has a memory size ({memsz:#x}) smaller than its file size ({filesz:#x})"
    )]
    MemSizeBelowFileSize {
        index: usize,
        memsz: u64,
        filesz: u64,
    },
    #[error("segment {index} at {start:#x}..{end:#x} lies outside guest RAM")]
    OutsideRam { index: usize, start: u64, end: u64 },
    #[error(
        "segment {index} at {start:#x}..{end:#x} overlaps {what} ({reserved_start:#x}..{reserved_end:#x}), which the board reserves"
    )]
    Reserved {
        index: usize,
        start: u64,
        end: u64,
        what: &'static str,
        reserved_start: u64,
        reserved_end: u64,
    },
    #[error("segments {first} and {second} overlap in memory")]
    SegmentsOverlap { first: usize, second: usize },
    #[error("entry point {entry:#x} is not inside a loaded segment")]
    EntryOutsideSegments { entry: u64 },
    #[error("entry point {entry:#x} is above 4 GiB but the boot protocol enters in 32-bit mode")]
    EntryAbove4G { entry: u64 },
    #[error(
        "a 32-bit ELF with neither a PVH note nor a multiboot header, so there is no way to enter it"
    )]
    NoBootProtocol,
    #[error("malformed Xen PVH entry note ({0})")]
    BadPvhNote(&'static str),
    #[error("malformed ELF note in program header {index}")]
    BadNote { index: usize },
    #[error("the multiboot header asks for features moat does not provide (flags {flags:#x})")]
    MultibootFlags { flags: u32 },
    #[error("the multiboot header has inconsistent load addresses ({0})")]
    MultibootAddresses(&'static str),
    #[error("kernel command line is {len} bytes; the limit is {max}")]
    CmdlineTooLong { len: usize, max: usize },
    #[error("kernel command line contains a NUL byte")]
    CmdlineNul,
    #[error(
        "initrd of {size} bytes does not fit in guest RAM below {limit:#x} after the kernel (free: {free} bytes)"
    )]
    InitrdTooLarge { size: u64, limit: u64, free: u64 },
    #[error("malformed arm64 Image header ({0})")]
    BadImageHeader(&'static str),
    #[error(
        "the kernel needs {needed:#x} bytes at {start:#x}, past the end of guest RAM at {ram_end:#x}"
    )]
    KernelPastRam {
        start: u64,
        needed: u64,
        ram_end: u64,
    },
    #[error(
        "the device tree with this command line is {size} bytes; the boot protocol allows {max}"
    )]
    DeviceTreeTooLarge { size: u64, max: u64 },
    #[error("writing the image into guest memory failed at {addr:#x}")]
    GuestMemory { addr: u64 },
}

/// The guest architecture an image is built for, from its ELF header or its
/// arm64 `Image` header. Other files (a multiboot a.out-kludge image, a raw
/// binary) say nothing: `None`.
pub fn image_arch(file: &[u8]) -> Option<crate::Arch> {
    use goblin::elf::header::{EM_386, EM_AARCH64, EM_X86_64};
    if arm64_image::is_image(file) {
        return Some(crate::Arch::Aarch64);
    }
    if !elf::is_elf(file) {
        return None;
    }
    let machine = goblin::elf::Elf::parse_header(file).ok()?.e_machine;
    match machine {
        EM_X86_64 | EM_386 => Some(crate::Arch::X86_64),
        EM_AARCH64 => Some(crate::Arch::Aarch64),
        _ => None,
    }
}
