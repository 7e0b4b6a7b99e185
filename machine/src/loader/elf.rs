//! ELF program headers and notes, read with goblin.
//!
//! Only what a boot loader reads is parsed: the file header, program headers and
//! notes in `PT_NOTE` segments. Section headers are ignored, as QEMU and
//! Firecracker ignore them, so a stripped or oddly linked kernel still loads.

use goblin::container::{Container, Ctx};
use goblin::elf::header::{EM_386, EM_AARCH64, EM_X86_64};
use goblin::elf::program_header::{PT_LOAD, PT_NOTE, ProgramHeader};

use super::LoadError;

/// One `PT_LOAD` segment, validated against the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Index among the program headers, for error messages.
    pub index: usize,
    /// Physical load address (`p_paddr`).
    pub paddr: u64,
    /// Virtual address (`p_vaddr`).
    pub vaddr: u64,
    /// Where the initialised bytes are in the file.
    pub file_offset: usize,
    pub file_size: usize,
    /// Size in memory; the bytes past `file_size` are zero.
    pub mem_size: u64,
}

impl Segment {
    /// The file bytes to copy, already checked to be inside the file.
    pub fn data<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        &file[self.file_offset..self.file_offset + self.file_size]
    }

    /// The end of the segment's physical range (exclusive).
    pub fn paddr_end(&self) -> u64 {
        // Checked at parse time not to overflow.
        self.paddr + self.mem_size
    }
}

/// One note from a `PT_NOTE` segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note<'a> {
    pub name: &'a [u8],
    pub note_type: u32,
    pub desc: &'a [u8],
}

/// The parts of an ELF file a boot loader needs.
#[derive(Debug)]
pub struct ElfImage<'a> {
    pub machine: u16,
    pub is_64bit: bool,
    pub entry: u64,
    pub segments: Vec<Segment>,
    pub notes: Vec<Note<'a>>,
}

/// The ELF magic, for format sniffing.
pub fn is_elf(file: &[u8]) -> bool {
    file.starts_with(b"\x7fELF")
}

/// A human name for an `e_machine` value.
pub fn machine_name(machine: u16) -> &'static str {
    match machine {
        EM_X86_64 => "x86-64",
        EM_386 => "i386",
        EM_AARCH64 => "aarch64",
        goblin::elf::header::EM_ARM => "32-bit arm",
        goblin::elf::header::EM_RISCV => "riscv",
        goblin::elf::header::EM_PPC64 => "ppc64",
        goblin::elf::header::EM_S390 => "s390",
        _ => "an unknown machine",
    }
}

/// Upper bound on program headers: real kernels have a handful; a hostile file
/// must not make us allocate for millions.
const MAX_PROGRAM_HEADERS: usize = 256;

impl<'a> ElfImage<'a> {
    /// Parses and validates the program headers and notes of `file`.
    pub fn parse(file: &'a [u8]) -> Result<Self, LoadError> {
        if !is_elf(file) {
            return Err(LoadError::NotElf);
        }
        let header = goblin::elf::Elf::parse_header(file)
            .map_err(|error| LoadError::MalformedElf(error.to_string()))?;
        let container = header
            .container()
            .map_err(|error| LoadError::MalformedElf(error.to_string()))?;
        let endian = header
            .endianness()
            .map_err(|error| LoadError::MalformedElf(error.to_string()))?;
        if !endian.is_little() {
            return Err(LoadError::WrongEndian {
                expected: machine_name(header.e_machine),
            });
        }
        let count = usize::from(header.e_phnum);
        if count > MAX_PROGRAM_HEADERS {
            return Err(LoadError::MalformedElf(format!(
                "{count} program headers (the limit is {MAX_PROGRAM_HEADERS})"
            )));
        }
        let phoff = usize::try_from(header.e_phoff)
            .map_err(|_| LoadError::MalformedElf("program header offset too large".into()))?;
        let ctx = Ctx::new(container, endian);
        let program_headers = ProgramHeader::parse(file, phoff, count, ctx).map_err(|_| {
            LoadError::MalformedElf("program header table lies outside the file".into())
        })?;

        let mut segments = Vec::new();
        let mut notes = Vec::new();
        for (index, ph) in program_headers.iter().enumerate() {
            match ph.p_type {
                PT_LOAD => segments.push(validate_segment(index, ph, file)?),
                PT_NOTE => parse_notes(index, ph, file, &mut notes)?,
                _ => {}
            }
        }
        // Empty segments (p_memsz 0) load nothing; linkers emit them for GNU_STACK-
        // like placeholders.
        segments.retain(|segment| segment.mem_size > 0);
        if segments.is_empty() {
            return Err(LoadError::NoLoadableSegments);
        }
        for (i, a) in segments.iter().enumerate() {
            for b in &segments[i + 1..] {
                if a.paddr < b.paddr_end() && b.paddr < a.paddr_end() {
                    return Err(LoadError::SegmentsOverlap {
                        first: a.index,
                        second: b.index,
                    });
                }
            }
        }
        Ok(ElfImage {
            machine: header.e_machine,
            is_64bit: container == Container::Big,
            entry: header.e_entry,
            segments,
            notes,
        })
    }

    /// Whether `addr` is a physical address inside a segment's file-backed or
    /// zeroed bytes.
    pub fn paddr_in_segment(&self, addr: u64) -> bool {
        self.segments
            .iter()
            .any(|segment| segment.paddr <= addr && addr < segment.paddr_end())
    }

    /// The first note with this name and type.
    pub fn find_note(&self, name: &[u8], note_type: u32) -> Option<&Note<'a>> {
        self.notes
            .iter()
            .find(|note| note.name == name && note.note_type == note_type)
    }
}

fn validate_segment(index: usize, ph: &ProgramHeader, file: &[u8]) -> Result<Segment, LoadError> {
    let file_len = file.len() as u64;
    let truncated = || LoadError::Truncated {
        index,
        offset: ph.p_offset,
        end: ph.p_offset.saturating_add(ph.p_filesz),
        file_len,
    };
    let file_end = ph.p_offset.checked_add(ph.p_filesz).ok_or_else(truncated)?;
    if file_end > file_len {
        return Err(truncated());
    }
    if ph.p_memsz < ph.p_filesz {
        return Err(LoadError::MemSizeBelowFileSize {
            index,
            memsz: ph.p_memsz,
            filesz: ph.p_filesz,
        });
    }
    if ph.p_paddr.checked_add(ph.p_memsz).is_none() {
        return Err(LoadError::OutsideRam {
            index,
            start: ph.p_paddr,
            end: u64::MAX,
        });
    }
    Ok(Segment {
        index,
        paddr: ph.p_paddr,
        vaddr: ph.p_vaddr,
        // Both fit in usize: they are bounded by the length of a slice.
        file_offset: ph.p_offset as usize,
        file_size: ph.p_filesz as usize,
        mem_size: ph.p_memsz,
    })
}

/// The note owners whose notes a board reads (Xen's PVH entry point); every
/// other note is checked for shape and dropped.
const KEPT_NOTE_OWNERS: [&[u8]; 1] = [b"Xen"];

/// Most notes an image keeps. Program headers may overlap, so without a cap
/// a small file could make the loader keep millions of notes.
const MAX_KEPT_NOTES: usize = 64;

/// Reads the notes of one `PT_NOTE` segment. Each note is a 12-byte header
/// (namesz, descsz, type) followed by the name and the descriptor, each padded to
/// 4 bytes: the layout both 32- and 64-bit kernels use in practice. Only the
/// notes of [`KEPT_NOTE_OWNERS`] are kept, at most [`MAX_KEPT_NOTES`]: memory
/// stays bounded whatever the file, and the work by the number of program
/// headers times the file size.
fn parse_notes<'a>(
    index: usize,
    ph: &ProgramHeader,
    file: &'a [u8],
    notes: &mut Vec<Note<'a>>,
) -> Result<(), LoadError> {
    let bad = || LoadError::BadNote { index };
    let start = usize::try_from(ph.p_offset).map_err(|_| bad())?;
    let len = usize::try_from(ph.p_filesz).map_err(|_| bad())?;
    let end = start.checked_add(len).ok_or_else(bad)?;
    let mut data = file.get(start..end).ok_or_else(bad)?;
    let word = |bytes: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let padded = |n: usize| n.checked_add(3).map(|n| n & !3);
    while data.len() >= 12 {
        let name_size = word(data, 0).ok_or_else(bad)? as usize;
        let desc_size = word(data, 4).ok_or_else(bad)? as usize;
        let note_type = word(data, 8).ok_or_else(bad)?;
        let name_end = 12usize.checked_add(name_size).ok_or_else(bad)?;
        let desc_start = 12 + padded(name_size).ok_or_else(bad)?;
        let desc_end = desc_start.checked_add(desc_size).ok_or_else(bad)?;
        let name = data.get(12..name_end).ok_or_else(bad)?;
        let desc = data.get(desc_start..desc_end).ok_or_else(bad)?;
        // The name's terminating NUL is part of namesz.
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        if KEPT_NOTE_OWNERS.contains(&name) && notes.len() < MAX_KEPT_NOTES {
            notes.push(Note {
                name,
                note_type,
                desc,
            });
        }
        let next = padded(desc_end).ok_or_else(bad)?;
        data = data.get(next..).unwrap_or(&[]);
    }
    Ok(())
}

/// Test helpers that build ELF files byte by byte, so loaders can be tested on
/// exactly the corruption they must survive.
#[cfg(test)]
pub(crate) mod build {
    /// A program header for [`elf64`].
    #[derive(Clone)]
    pub struct Phdr {
        pub p_type: u32,
        pub offset: u64,
        pub paddr: u64,
        pub filesz: u64,
        pub memsz: u64,
    }

    /// A little-endian ELF64 with the given program headers, followed by `body`
    /// at offset 0x1000.
    pub fn elf64(machine: u16, entry: u64, phdrs: &[Phdr], body: &[u8]) -> Vec<u8> {
        let mut file = vec![0u8; 0x1000];
        file[..4].copy_from_slice(b"\x7fELF");
        file[4] = 2; // ELFCLASS64
        file[5] = 1; // little-endian
        file[6] = 1; // EV_CURRENT
        file[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        file[18..20].copy_from_slice(&machine.to_le_bytes());
        file[20..24].copy_from_slice(&1u32.to_le_bytes());
        file[24..32].copy_from_slice(&entry.to_le_bytes());
        file[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        file[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        file[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        file[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, ph) in phdrs.iter().enumerate() {
            let at = 64 + i * 56;
            file[at..at + 4].copy_from_slice(&ph.p_type.to_le_bytes());
            file[at + 4..at + 8].copy_from_slice(&7u32.to_le_bytes()); // RWX
            file[at + 8..at + 16].copy_from_slice(&ph.offset.to_le_bytes());
            file[at + 16..at + 24].copy_from_slice(&ph.paddr.to_le_bytes()); // vaddr
            file[at + 24..at + 32].copy_from_slice(&ph.paddr.to_le_bytes());
            file[at + 32..at + 40].copy_from_slice(&ph.filesz.to_le_bytes());
            file[at + 40..at + 48].copy_from_slice(&ph.memsz.to_le_bytes());
            file[at + 48..at + 56].copy_from_slice(&4u64.to_le_bytes());
        }
        file.extend_from_slice(body);
        file
    }

    /// One ELF note: header, name, descriptor, padded.
    pub fn note(name: &str, note_type: u32, desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&note_type.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(desc);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::build::{Phdr, elf64, note};
    use super::*;

    fn load(paddr: u64, filesz: u64, memsz: u64) -> Phdr {
        Phdr {
            p_type: PT_LOAD,
            offset: 0x1000,
            paddr,
            filesz,
            memsz,
        }
    }

    #[test]
    fn overlapping_note_segments_keep_memory_bounded() {
        // 70 PT_NOTE headers (as many as the test builder's header page
        // holds) over the same 1 MiB of tiny notes: once, this made the
        // loader keep ~4.5 million notes; 255 of them, ~850x the file.
        let one = note("Xen", 18, &[]);
        let body: Vec<u8> = one.iter().copied().cycle().take(1 << 20).collect();
        let mut phdrs = vec![load(0x10_0000, 0x100, 0x1000)];
        phdrs.extend((0..70).map(|_| Phdr {
            p_type: PT_NOTE,
            offset: 0x1000,
            paddr: 0,
            filesz: body.len() as u64,
            memsz: 0,
        }));
        let file = elf64(EM_X86_64, 0x10_0000, &phdrs, &body);
        let image = ElfImage::parse(&file).unwrap();
        assert_eq!(image.notes.len(), MAX_KEPT_NOTES);
        // Notes of other owners are checked, not kept.
        let other = note("GNU", 3, &[1, 2, 3, 4]);
        let mut padded = other.clone();
        padded.resize(0x100, 0);
        let file = elf64(
            EM_X86_64,
            0x10_0000,
            &[
                load(0x10_0000, 0x100, 0x1000),
                Phdr {
                    p_type: PT_NOTE,
                    offset: 0x1000,
                    paddr: 0,
                    filesz: other.len() as u64,
                    memsz: 0,
                },
            ],
            &padded,
        );
        assert!(ElfImage::parse(&file).unwrap().notes.is_empty());
    }

    #[test]
    fn parses_segments_and_notes() {
        let notes = note("Xen", 18, &0x10_0000u32.to_le_bytes());
        let mut body = vec![0x90u8; 0x100];
        body.extend_from_slice(&notes);
        let file = elf64(
            EM_X86_64,
            0x10_0000,
            &[
                load(0x10_0000, 0x100, 0x2000),
                Phdr {
                    p_type: PT_NOTE,
                    offset: 0x1100,
                    paddr: 0,
                    filesz: notes.len() as u64,
                    memsz: 0,
                },
            ],
            &body,
        );
        let image = ElfImage::parse(&file).unwrap();
        assert!(image.is_64bit);
        assert_eq!(image.segments.len(), 1);
        assert_eq!(image.segments[0].data(&file), &body[..0x100]);
        assert_eq!(image.segments[0].paddr_end(), 0x10_2000);
        let xen = image.find_note(b"Xen", 18).unwrap();
        assert_eq!(xen.desc, 0x10_0000u32.to_le_bytes());
        assert!(image.paddr_in_segment(0x10_1fff));
        assert!(!image.paddr_in_segment(0x10_2000));
    }

    #[test]
    fn rejects_what_is_not_elf() {
        assert_eq!(
            ElfImage::parse(b"MZ\x90\x00").unwrap_err(),
            LoadError::NotElf
        );
        assert_eq!(ElfImage::parse(b"").unwrap_err(), LoadError::NotElf);
        assert!(matches!(
            ElfImage::parse(b"\x7fELF\x02\x01\x01").unwrap_err(),
            LoadError::MalformedElf(_)
        ));
    }

    #[test]
    fn rejects_truncated_and_inconsistent_segments() {
        let file = elf64(EM_X86_64, 0, &[load(0x10_0000, 0x100, 0x100)], &[0; 0x80]);
        assert!(matches!(
            ElfImage::parse(&file).unwrap_err(),
            LoadError::Truncated { index: 0, .. }
        ));
        let file = elf64(EM_X86_64, 0, &[load(0x10_0000, 0x100, 0x10)], &[0; 0x100]);
        assert!(matches!(
            ElfImage::parse(&file).unwrap_err(),
            LoadError::MemSizeBelowFileSize { .. }
        ));
        let file = elf64(EM_X86_64, 0, &[load(u64::MAX - 4, 0x10, 0x10)], &[0; 0x10]);
        assert!(matches!(
            ElfImage::parse(&file).unwrap_err(),
            LoadError::OutsideRam { .. }
        ));
        let mut huge_offset = load(0x10_0000, 0x10, 0x10);
        huge_offset.offset = u64::MAX - 1;
        let file = elf64(EM_X86_64, 0, &[huge_offset], &[]);
        assert!(matches!(
            ElfImage::parse(&file).unwrap_err(),
            LoadError::Truncated { .. }
        ));
    }

    #[test]
    fn rejects_overlapping_and_missing_segments() {
        let file = elf64(
            EM_X86_64,
            0,
            &[load(0x10_0000, 0, 0x2000), load(0x10_1000, 0, 0x10)],
            &[],
        );
        assert_eq!(
            ElfImage::parse(&file).unwrap_err(),
            LoadError::SegmentsOverlap {
                first: 0,
                second: 1
            }
        );
        let file = elf64(EM_X86_64, 0, &[], &[]);
        assert_eq!(
            ElfImage::parse(&file).unwrap_err(),
            LoadError::NoLoadableSegments
        );
    }

    #[test]
    fn rejects_program_headers_outside_the_file() {
        let mut file = elf64(EM_X86_64, 0, &[load(0x10_0000, 0, 0x10)], &[]);
        file[32..40].copy_from_slice(&0xffff_0000u64.to_le_bytes());
        assert!(matches!(
            ElfImage::parse(&file).unwrap_err(),
            LoadError::MalformedElf(_)
        ));
        let mut file = elf64(EM_X86_64, 0, &[load(0x10_0000, 0, 0x10)], &[]);
        file[56..58].copy_from_slice(&0xffffu16.to_le_bytes());
        assert!(matches!(
            ElfImage::parse(&file).unwrap_err(),
            LoadError::MalformedElf(_)
        ));
    }

    #[test]
    fn malformed_notes_are_errors_not_panics() {
        let mut bad_note = note("Xen", 18, &[1, 2, 3, 4]);
        bad_note[4..8].copy_from_slice(&0xffff_fff0u32.to_le_bytes()); // descsz
        let file = elf64(
            EM_X86_64,
            0,
            &[
                load(0x10_0000, 0, 0x10),
                Phdr {
                    p_type: PT_NOTE,
                    offset: 0x1000,
                    paddr: 0,
                    filesz: bad_note.len() as u64,
                    memsz: 0,
                },
            ],
            &bad_note,
        );
        assert_eq!(
            ElfImage::parse(&file).unwrap_err(),
            LoadError::BadNote { index: 1 }
        );
    }

    #[test]
    fn every_truncation_of_a_valid_file_is_handled() {
        let notes = note("Xen", 18, &0x10_0000u32.to_le_bytes());
        let mut body = vec![0xf4u8; 0x40];
        body.extend_from_slice(&notes);
        let file = elf64(
            EM_X86_64,
            0x10_0000,
            &[
                load(0x10_0000, 0x40, 0x40),
                Phdr {
                    p_type: PT_NOTE,
                    offset: 0x1040,
                    paddr: 0,
                    filesz: notes.len() as u64,
                    memsz: 0,
                },
            ],
            &body,
        );
        assert!(ElfImage::parse(&file).is_ok());
        for len in 0..file.len() {
            assert!(ElfImage::parse(&file[..len]).is_err(), "length {len}");
        }
    }
}
