use super::*;
use crate::boards::Initrd;
use crate::loader::elf::build::{Phdr, elf64};
use devices::{HostConsole, SerialOutput, VmLifecycle};
use goblin::elf::header::EM_X86_64;
use goblin::elf::program_header::PT_LOAD;

const MIB: u64 = 1 << 20;

fn host() -> Host {
    Host {
        console: HostConsole::new(SerialOutput::Null),
        lifecycle: Arc::new(VmLifecycle::with_vcpus(2)),
        clock: devices::Clock::new(),
    }
}

fn board(kernel: &[u8], initrd: Option<&[u8]>) -> Result<VirtBoard, BoardError> {
    VirtBoard::build(
        &BoardConfig {
            virtio: Default::default(),
            memory_size: 64 * MIB,
            cpus: 2,
            kernel_name: "k",
            kernel,
            initrd: initrd.map(|data| Initrd { name: "i", data }),
            cmdline: "console=ttyAMA0",
        },
        &host(),
    )
}

fn entry_state(board: &VirtBoard) -> &Aarch64CpuState {
    match &board.boot.cpu {
        CpuState::Aarch64(state) => state,
        other => panic!("not an aarch64 state: {other:?}"),
    }
}

fn read_u32_be(board: &VirtBoard, addr: u64) -> u32 {
    let mut bytes = [0u8; 4];
    board
        .spec
        .memory
        .read_slice(&mut bytes, GuestAddress(addr))
        .expect("readable");
    u32::from_be_bytes(bytes)
}

fn arm64_image(text_offset: u64, image_size: u64) -> Vec<u8> {
    let mut file = vec![0u8; 4096];
    file[8..16].copy_from_slice(&text_offset.to_le_bytes());
    file[16..24].copy_from_slice(&image_size.to_le_bytes());
    file[56..60].copy_from_slice(b"ARM\x64");
    file
}

#[test]
fn a_raw_binary_runs_at_ram_plus_512k_with_the_dtb_in_x0() {
    let board = board(&[0x1f, 0x20, 0x03, 0xd5], None).expect("builds");
    let state = entry_state(&board);
    assert_eq!(state.pc, 0x4008_0000);
    assert_eq!(state.pstate, AARCH64_PSTATE_EL1H_MASKED);
    assert_eq!(state.x[0], 0x4000_0000 + 64 * MIB - 2 * MIB);
    assert_eq!(read_u32_be(&board, state.x[0]), 0xd00d_feed);
    assert_eq!(board.format, ImageFormat::Raw);
    assert_eq!(
        board.device_tree().map(|dtb| dtb.len()),
        Some(board.dtb.len())
    );
    // The second CPU waits, off, for PSCI CPU_ON.
    assert_eq!(board.boot_state(1).power, crate::arch::Power::Off);
}

#[test]
fn an_image_goes_where_qemu_puts_it() {
    let board = board(&arm64_image(0, 2 * MIB), None).expect("builds");
    assert_eq!(entry_state(&board).pc, 0x4020_0000);
    assert_eq!(board.format, ImageFormat::Image);
    let board = board_at(&arm64_image(0x8_0000, 2 * MIB));
    assert_eq!(entry_state(&board).pc, 0x4008_0000);
}

fn board_at(kernel: &[u8]) -> VirtBoard {
    board(kernel, None).expect("builds")
}

#[test]
fn an_elf_loads_at_its_physical_addresses() {
    let code = [0x1f, 0x20, 0x03, 0xd5];
    let file = elf64(
        EM_AARCH64,
        0x4010_0000,
        &[Phdr {
            p_type: PT_LOAD,
            offset: 0x1000,
            paddr: 0x4010_0000,
            filesz: 4,
            memsz: 0x1000,
        }],
        &code,
    );
    let board = board_at(&file);
    assert_eq!(entry_state(&board).pc, 0x4010_0000);
    assert_eq!(board.format, ImageFormat::Elf);
    assert_eq!(read_u32_be(&board, 0x4010_0000), 0x1f20_03d5);
}

#[test]
fn the_initrd_sits_below_the_device_tree() {
    let initrd = vec![7u8; 10_000];
    let board = board(&[0u8; 16], Some(&initrd)).expect("builds");
    let dtb = entry_state(&board).x[0];
    let text = String::from_utf8_lossy(&board.dtb).into_owned();
    assert!(text.contains("linux,initrd-start"));
    let mut byte = [0u8];
    let start = (dtb - 10_000) & !0xfff;
    board
        .spec
        .memory
        .read_slice(&mut byte, GuestAddress(start))
        .expect("readable");
    assert_eq!(byte, [7]);
}

#[test]
fn bad_images_are_refused_in_one_line() {
    let x86 = elf64(
        EM_X86_64,
        0x4010_0000,
        &[Phdr {
            p_type: PT_LOAD,
            offset: 0x1000,
            paddr: 0x4010_0000,
            filesz: 4,
            memsz: 4,
        }],
        &[0; 4],
    );
    assert!(matches!(
        board(&x86, None),
        Err(BoardError::Kernel(LoadError::WrongMachine { .. }))
    ));
    // An Image that says it needs more than RAM.
    assert!(matches!(
        board(&arm64_image(0, 1 << 40), None),
        Err(BoardError::Kernel(LoadError::KernelPastRam { .. }))
    ));
    // An initrd that cannot fit.
    assert!(matches!(
        board(&[0u8; 16], Some(&vec![0u8; 63 << 20])),
        Err(BoardError::Kernel(LoadError::InitrdTooLarge { .. }))
    ));
    // Memory sizes outside the board's range.
    assert!(matches!(
        check_memory_size(1 << 20),
        Err(BoardError::MemorySize { .. })
    ));
}
