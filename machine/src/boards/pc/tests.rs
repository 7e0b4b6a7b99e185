use super::*;
use crate::arch::x86_reg;
use crate::boards::Initrd;
use crate::loader::elf::build::{Phdr, elf64, note};
use devices::{HostConsole, SerialOutput, VmLifecycle};
use goblin::elf::header::EM_AARCH64;
use goblin::elf::program_header::{PT_LOAD, PT_NOTE};

const MIB: u64 = 1 << 20;

fn host() -> Host {
    Host {
        console: HostConsole::new(SerialOutput::Null),
        lifecycle: Arc::new(VmLifecycle::new()),
        clock: devices::Clock::new(),
    }
}

fn config<'a>(kernel: &'a [u8], initrd: Option<Initrd<'a>>, cmdline: &'a str) -> BoardConfig<'a> {
    BoardConfig {
        virtio: Default::default(),
        memory_size: 64 * MIB,
        cpus: 1,
        kernel_name: "k.elf",
        kernel,
        initrd,
        cmdline,
    }
}

fn build(config: &BoardConfig<'_>) -> Result<PcBoard, BoardError> {
    PcBoard::build(config, &host())
}

fn x86(board: &PcBoard) -> &X86CpuState {
    match &board.boot.cpu {
        CpuState::X86_64(state) => state,
        other => panic!("not an x86 state: {other:?}"),
    }
}

fn read_u32(board: &PcBoard, addr: u64) -> u32 {
    board.spec.memory.read_obj(GuestAddress(addr)).unwrap()
}

fn read_u64(board: &PcBoard, addr: u64) -> u64 {
    board.spec.memory.read_obj(GuestAddress(addr)).unwrap()
}

fn read_cstr(board: &PcBoard, addr: u64) -> String {
    let mut bytes = vec![0u8; 256];
    board
        .spec
        .memory
        .read_slice(&mut bytes, GuestAddress(addr))
        .unwrap();
    let end = bytes.iter().position(|&b| b == 0).unwrap();
    String::from_utf8(bytes[..end].to_vec()).unwrap()
}

const CODE: &[u8] = &[0xf4; 0x20]; // hlt

fn load_at(paddr: u64, memsz: u64) -> Phdr {
    Phdr {
        p_type: PT_LOAD,
        offset: 0x1000,
        paddr,
        filesz: CODE.len() as u64,
        memsz,
    }
}

/// An ELF64 at 1 MiB with a PVH note giving `entry`.
fn pvh_image(entry: u32) -> Vec<u8> {
    let xen = note("Xen", 18, &entry.to_le_bytes());
    let mut body = CODE.to_vec();
    body.extend_from_slice(&xen);
    elf64(
        EM_X86_64,
        0xffff_ffff_8100_0000,
        &[
            load_at(MIB, 0x1000),
            Phdr {
                p_type: PT_NOTE,
                offset: 0x1000 + CODE.len() as u64,
                paddr: 0,
                filesz: xen.len() as u64,
                memsz: 0,
            },
        ],
        &body,
    )
}

/// A little-endian ELF32 for i386 with one segment at `paddr` holding `body`.
fn elf32(entry: u32, paddr: u32, body: &[u8]) -> Vec<u8> {
    let mut file = vec![0u8; 0x1000];
    file[..4].copy_from_slice(b"\x7fELF");
    file[4] = 1;
    file[5] = 1;
    file[6] = 1;
    file[16..18].copy_from_slice(&2u16.to_le_bytes());
    file[18..20].copy_from_slice(&EM_386.to_le_bytes());
    file[20..24].copy_from_slice(&1u32.to_le_bytes());
    file[24..28].copy_from_slice(&entry.to_le_bytes());
    file[28..32].copy_from_slice(&52u32.to_le_bytes()); // e_phoff
    file[40..42].copy_from_slice(&52u16.to_le_bytes());
    file[42..44].copy_from_slice(&32u16.to_le_bytes());
    file[44..46].copy_from_slice(&1u16.to_le_bytes());
    let ph = 52;
    file[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
    file[ph + 4..ph + 8].copy_from_slice(&0x1000u32.to_le_bytes());
    file[ph + 8..ph + 12].copy_from_slice(&paddr.to_le_bytes());
    file[ph + 12..ph + 16].copy_from_slice(&paddr.to_le_bytes());
    file[ph + 16..ph + 20].copy_from_slice(&(body.len() as u32).to_le_bytes());
    file[ph + 20..ph + 24].copy_from_slice(&(body.len() as u32).to_le_bytes());
    file[ph + 24..ph + 28].copy_from_slice(&7u32.to_le_bytes());
    file.extend_from_slice(body);
    file
}

fn multiboot_header(flags: u32) -> Vec<u8> {
    let magic = multiboot::HEADER_MAGIC;
    let mut out = Vec::new();
    for value in [magic, flags, 0u32.wrapping_sub(magic).wrapping_sub(flags)] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

#[test]
fn pvh_kernel_gets_start_info_cmdline_memmap_and_initrd() {
    let image = pvh_image(0x10_0004);
    let initrd = b"moat-initrd-0123456789\n";
    let board = build(&config(
        &image,
        Some(Initrd {
            name: "initrd.txt",
            data: initrd,
        }),
        "console=ttyS0 quiet",
    ))
    .unwrap();
    assert_eq!(board.protocol, BootProtocol::Pvh);
    let state = x86(&board);
    assert_eq!(state.rip, 0x10_0004);
    assert_eq!(state.gprs[x86_reg::RBX], START_INFO);
    assert_eq!(state.cr0 & 1, 1, "protected mode");
    assert_eq!(state.cr0 >> 31, 0, "paging off");
    assert!(state.cs.db && !state.cs.l);

    assert_eq!(read_u32(&board, START_INFO), boot::START_INFO_MAGIC);
    assert_eq!(read_u32(&board, START_INFO + 4), 1, "version");
    assert_eq!(read_u32(&board, START_INFO + 12), 1, "nr_modules");
    let cmdline = read_u64(&board, START_INFO + 24);
    assert_eq!(read_cstr(&board, cmdline), "console=ttyS0 quiet");
    let memmap = read_u64(&board, START_INFO + 40);
    let entries = read_u32(&board, START_INFO + 48);
    assert_eq!(entries, 3);
    let last = memmap + 2 * 24;
    assert_eq!(read_u64(&board, last), HIGH_MEMORY);
    assert_eq!(read_u64(&board, last + 8), 63 * MIB);
    assert_eq!(read_u32(&board, last + 16), E820_RAM);

    let modlist = read_u64(&board, START_INFO + 16);
    let module_addr = read_u64(&board, modlist);
    assert_eq!(read_u64(&board, modlist + 8), initrd.len() as u64);
    assert_eq!(module_addr % 4096, 0);
    assert!(module_addr + initrd.len() as u64 <= 64 * MIB);
    let mut loaded = vec![0u8; initrd.len()];
    board
        .spec
        .memory
        .read_slice(&mut loaded, GuestAddress(module_addr))
        .unwrap();
    assert_eq!(loaded, initrd);
    // The kernel's bytes are in place.
    assert_eq!(read_u32(&board, MIB), 0xf4f4_f4f4);
}

#[test]
fn plain_elf64_enters_long_mode_on_identity_page_tables() {
    let image = elf64(EM_X86_64, MIB + 2, &[load_at(MIB, 0x1000)], CODE);
    let board = build(&config(&image, None, "")).unwrap();
    assert_eq!(board.protocol, BootProtocol::Elf64);
    let state = x86(&board);
    assert_eq!(state.rip, MIB + 2);
    assert_eq!(state.gprs[x86_reg::RSI], START_INFO);
    assert!(state.cs.l);
    assert_eq!(state.efer & 0x500, 0x500);
    assert_eq!(state.cr3, PAGE_TABLES);
    // Walk the tables for the last 2 MiB page of RAM.
    let addr = 64 * MIB - 1;
    let pml4e = read_u64(&board, state.cr3 + 8 * ((addr >> 39) & 511));
    let pdpte = read_u64(&board, (pml4e & !0xfff) + 8 * ((addr >> 30) & 511));
    let pde = read_u64(&board, (pdpte & !0xfff) + 8 * ((addr >> 21) & 511));
    assert_eq!(pde & 0x83, 0x83, "present, writable, 2 MiB");
    assert_eq!(pde & !0x1f_ffff, addr & !0x1f_ffff);
    assert_eq!(read_u32(&board, START_INFO), boot::START_INFO_MAGIC);
}

#[test]
fn multiboot_elf32_gets_magic_info_and_qemu_style_cmdline() {
    let mut body = multiboot_header(multiboot::FLAG_MEMORY_INFO);
    body.extend_from_slice(CODE);
    let image = elf32(0x10_000c, 0x10_0000, &body);
    let board = build(&config(
        &image,
        Some(Initrd {
            name: "mod.bin",
            data: b"module",
        }),
        "a b",
    ))
    .unwrap();
    assert_eq!(board.protocol, BootProtocol::Multiboot);
    let state = x86(&board);
    assert_eq!(state.rip, 0x10_000c);
    assert_eq!(state.gprs[x86_reg::RAX], 0x2bad_b002);
    assert_eq!(state.gprs[x86_reg::RBX], MULTIBOOT_INFO);
    let flags = read_u32(&board, MULTIBOOT_INFO);
    assert_eq!(flags, 0x24f);
    assert_eq!(read_u32(&board, MULTIBOOT_INFO + 12), 0x8000_ffff);
    assert_eq!(read_u32(&board, MULTIBOOT_INFO + 4), 639);
    assert_eq!(read_u32(&board, MULTIBOOT_INFO + 8), 63 * 1024);
    let cmdline = read_u32(&board, MULTIBOOT_INFO + 16);
    assert_eq!(read_cstr(&board, cmdline.into()), "k.elf a b");
    assert_eq!(read_u32(&board, MULTIBOOT_INFO + 20), 1);
    let module = u64::from(read_u32(&board, MULTIBOOT_INFO + 24));
    let start = read_u32(&board, module);
    assert_eq!(read_u32(&board, module + 4) - start, 6);
    assert_eq!(
        read_cstr(&board, read_u32(&board, module + 8).into()),
        "mod.bin"
    );
    let map_len = read_u32(&board, MULTIBOOT_INFO + 44);
    assert_eq!(map_len, 3 * 24);
    let map = u64::from(read_u32(&board, MULTIBOOT_INFO + 48));
    assert_eq!(read_u32(&board, map), 20);
    assert_eq!(read_u64(&board, map + 4 + 24), LOW_RAM_END);
}

#[test]
fn multiboot_wins_over_a_pvh_note_as_in_qemu() {
    let mut body = multiboot_header(0);
    body.extend_from_slice(CODE);
    let xen = note("Xen", 18, &0x10_000cu32.to_le_bytes());
    let notes_at = 0x1000 + body.len() as u64;
    body.extend_from_slice(&xen);
    let image = elf64(
        EM_X86_64,
        0x10_000c,
        &[
            load_at(MIB, 0x1000),
            Phdr {
                p_type: PT_NOTE,
                offset: notes_at,
                paddr: 0,
                filesz: xen.len() as u64,
                memsz: 0,
            },
        ],
        &body,
    );
    assert_eq!(
        build(&config(&image, None, "")).unwrap().protocol,
        BootProtocol::Multiboot
    );
}

#[test]
fn multiboot_aout_kludge_loads_without_elf() {
    // Header at offset 0 of a raw binary loaded at 1 MiB, entry right after it.
    let mut image = multiboot_header(multiboot::FLAG_ADDRESSES);
    for value in [0x10_0000u32, 0x10_0000, 0, 0x10_2000, 0x10_0020] {
        image.extend_from_slice(&value.to_le_bytes());
    }
    image.extend_from_slice(CODE);
    let board = build(&config(&image, None, "")).unwrap();
    assert_eq!(board.protocol, BootProtocol::Multiboot);
    assert_eq!(x86(&board).rip, 0x10_0020);
    assert_eq!(read_u32(&board, 0x10_0020), 0xf4f4_f4f4);
}

fn kernel_error(image: &[u8]) -> LoadError {
    kernel_error_with(&config(image, None, ""))
}

fn kernel_error_with(config: &BoardConfig<'_>) -> LoadError {
    match build(config) {
        Err(BoardError::Kernel(error)) => error,
        Err(other) => panic!("expected a kernel error, got {other}"),
        Ok(_) => panic!("expected a kernel error, got a board"),
    }
}

#[test]
fn rejects_segments_in_reserved_memory_or_outside_ram() {
    let low = elf64(EM_X86_64, 0x8000, &[load_at(0x8000, 0x100)], CODE);
    assert!(matches!(
        kernel_error(&low),
        LoadError::Reserved { index: 0, .. }
    ));
    let beyond = elf64(EM_X86_64, 63 * MIB, &[load_at(63 * MIB, 2 * MIB)], CODE);
    assert!(matches!(
        kernel_error(&beyond),
        LoadError::OutsideRam { index: 0, .. }
    ));
    let hole = elf64(EM_X86_64, 0xd000_0000, &[load_at(0xd000_0000, 0x100)], CODE);
    assert!(matches!(kernel_error(&hole), LoadError::OutsideRam { .. }));
}

#[test]
fn rejects_foreign_and_unenterable_images() {
    let arm = elf64(EM_AARCH64, MIB, &[load_at(MIB, 0x100)], CODE);
    assert_eq!(
        kernel_error(&arm),
        LoadError::WrongMachine {
            found: "aarch64",
            expected: "x86-64"
        }
    );
    let bare32 = elf32(0x10_0000, 0x10_0000, CODE);
    assert_eq!(kernel_error(&bare32), LoadError::NoBootProtocol);
    let wild_entry = elf64(EM_X86_64, 0x20_0000, &[load_at(MIB, 0x100)], CODE);
    assert_eq!(
        kernel_error(&wild_entry),
        LoadError::EntryOutsideSegments { entry: 0x20_0000 }
    );
    let wild_pvh = pvh_image(0x30_0000);
    assert_eq!(
        kernel_error(&wild_pvh),
        LoadError::EntryOutsideSegments { entry: 0x30_0000 }
    );
    assert_eq!(kernel_error(b"#!/bin/sh\n"), LoadError::NotElf);
}

#[test]
fn rejects_oversized_initrd_and_cmdline() {
    let image = pvh_image(0x10_0000);
    let big = vec![0u8; 64 * MIB as usize];
    let error = kernel_error_with(&config(
        &image,
        Some(Initrd {
            name: "big",
            data: &big,
        }),
        "",
    ));
    assert!(matches!(error, LoadError::InitrdTooLarge { .. }));
    let long = "x".repeat(CMDLINE_MAX);
    assert!(matches!(
        kernel_error_with(&config(&image, None, &long)),
        LoadError::CmdlineTooLong { .. }
    ));
    assert_eq!(
        kernel_error_with(&config(&image, None, "a\0b")),
        LoadError::CmdlineNul
    );
}

#[test]
fn rejects_absurd_memory_sizes_before_allocating() {
    let image = pvh_image(0x10_0000);
    for size in [0, MIB, MAX_MEMORY + 1, u64::MAX] {
        let mut config = config(&image, None, "");
        config.memory_size = size;
        assert!(matches!(build(&config), Err(BoardError::MemorySize { .. })));
    }
}

#[test]
fn corrupted_images_never_panic() {
    // Flip bytes all over a valid image: every outcome must be Ok or a LoadError.
    let image = pvh_image(0x10_0004);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..400 {
        let mut corrupt = image.clone();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Mostly the headers, where corruption matters.
            let at = (seed as usize) % if seed & 1 == 0 { 0x200 } else { corrupt.len() };
            corrupt[at] = (seed >> 32) as u8;
        }
        let _ = build(&config(&corrupt, None, ""));
    }
}

#[test]
fn the_cmos_rtc_tells_the_time_of_day_and_the_memory_size() {
    let image = pvh_image(0x10_0000);
    let board = build(&config(&image, None, "")).unwrap();
    let cmos = |index: u8| {
        board.spec.pio_bus.write(0x70, &[index]);
        let mut value = [0u8];
        board.spec.pio_bus.read(0x71, &mut value);
        value[0]
    };
    // 64 MiB: 63 MiB = 64512 KiB above 1 MiB, 48 MiB = 768 × 64 KiB above 16 MiB.
    assert_eq!(u16::from_le_bytes([cmos(0x17), cmos(0x18)]), 64512);
    assert_eq!(u16::from_le_bytes([cmos(0x34), cmos(0x35)]), 768);
    assert_eq!([cmos(0x5b), cmos(0x5c), cmos(0x5d)], [0, 0, 0]);
    // Register B: 24-hour BCD; the year is the host's, in BCD.
    assert_eq!(cmos(0x0b) & 0x06, 0x02);
    let bcd = |value: u8| u64::from(value >> 4) * 10 + u64::from(value & 0xf);
    let year = bcd(cmos(0x32)) * 100 + bcd(cmos(0x09));
    let host_year = 1970
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 31_556_952;
    assert!(year.abs_diff(host_year) <= 1, "{year} vs {host_year}");
}
