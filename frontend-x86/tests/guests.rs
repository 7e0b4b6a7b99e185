//! The x86-64 test guests (tests/guests/bin/x86_64) on the front end alone:
//! moat's board and exec loop with the IR interpreter (no accelerator or VMM
//! around them), with the serial output and exit compared to what KVM and
//! QEMU produce (tests/guests/x86_64/expected).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

mod common;

use accel_tcg::guest::GuestCpu;
use common::TestVm;
use devices::{HostConsole, SerialOutput, VmLifecycle};
use frontend_x86::X86Cpu;
use machine::boards::pc::PcBoard;
use machine::{BoardConfig, Host, Initrd, VcpuExit};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Boots `image` with `cmdline`; returns the serial output and the exit.
fn run(image: &str, cmdline: &str) -> (String, Option<VcpuExit>) {
    run_with(image, image, cmdline, 64 << 20, None)
}

/// [`run`] with the kernel's name as given on a command line, a memory size
/// and an initrd.
fn run_with(
    image: &str,
    kernel_name: &str,
    cmdline: &str,
    memory_size: u64,
    initrd: Option<&[u8]>,
) -> (String, Option<VcpuExit>) {
    let kernel = std::fs::read(root().join("tests/guests/bin/x86_64").join(image)).unwrap();
    let out = tempfile(image);
    let file = std::fs::File::create(&out).unwrap();
    let host = Host {
        console: HostConsole::new(SerialOutput::File(file)),
        lifecycle: Arc::new(VmLifecycle::new()),
        clock: devices::Clock::new(),
    };
    let config = BoardConfig {
        virtio: Default::default(),
        memory_size,
        cpus: 1,
        kernel_name,
        kernel: &kernel,
        initrd: initrd.map(|data| Initrd {
            name: "x86_64/initrd.txt",
            data,
        }),
        cmdline,
    };
    let board = PcBoard::build(&config, &host).unwrap();
    let mut x86 = X86Cpu::new();
    x86.set_cpu_state(&board.boot.cpu).unwrap();
    let mut vm = TestVm::new(x86, board.spec.memory.clone());
    vm.pio = board.spec.pio_bus.clone();
    vm.mmio = board.spec.mmio_bus.clone();
    vm.lifecycle = board.spec.lifecycle.clone();
    vm.clock = board.spec.clock.clone();
    let exit = vm.run(20_000_000);
    let mut s = String::new();
    std::fs::File::open(&out)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    let _ = std::fs::remove_file(&out);
    (s, exit)
}

fn tempfile(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("moat-fx86-{}-{name}.out", std::process::id()))
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/guests/x86_64/expected").join(name)).unwrap()
}

#[test]
fn hello_in_every_boot_protocol() {
    for image in ["hello.elf", "hello-multiboot.elf", "hello-elf64.elf"] {
        let (out, exit) = run(image, "");
        assert_eq!(out, "Hello from moat guest!\n", "{image}");
        assert_eq!(exit, Some(VcpuExit::Shutdown(1)), "{image}");
    }
}

#[test]
fn checksum_matches_the_host_cpu() {
    let (out, exit) = run("checksum.elf", "");
    assert_eq!(out, expected("checksum.out"));
    assert_eq!(exit, Some(VcpuExit::Shutdown(1)));
}

#[test]
fn exit_status_comes_from_the_guest() {
    for (cmdline, output, status) in [
        ("", "exiting with 42\n", 85),
        ("quiet exit=16 foo=bar", "exiting with 16\n", 33),
        ("exit=127", "exiting with 127\n", 255),
    ] {
        let (out, exit) = run("exitcode.elf", cmdline);
        assert_eq!(out, output);
        assert_eq!(exit, Some(VcpuExit::Shutdown(status)));
    }
}

#[test]
fn triple_fault_crashes() {
    let (out, exit) = run("triplefault.elf", "");
    assert_eq!(out, "about to triple fault\n");
    assert!(
        matches!(
            exit,
            Some(VcpuExit::Crashed(machine::Crash {
                cause: "triple fault",
                ..
            }))
        ),
        "{exit:?}"
    );
}

#[test]
fn halt_with_interrupts_off() {
    let (out, exit) = run("halt.elf", "");
    assert_eq!(out, "halting\n");
    assert!(matches!(exit, Some(VcpuExit::Halted { .. })), "{exit:?}");
}

#[test]
fn reset_through_either_port() {
    for (cmdline, line) in [
        ("reset=kbd", "resetting via kbd\n"),
        ("reset=cf9", "resetting via cf9\n"),
    ] {
        let (out, exit) = run("reset.elf", cmdline);
        assert_eq!(out, line);
        assert_eq!(exit, Some(VcpuExit::Reset));
    }
}

#[test]
fn boot_information_matches_kvm() {
    for flavour in ["pvh", "multiboot", "elf64"] {
        let initrd = std::fs::read(root().join("tests/guests/x86_64/initrd.txt")).unwrap();
        let image = format!("bootinfo-{flavour}.elf");
        let name = format!("bin/x86_64/{image}");
        let (out, exit) = run_with(&image, &name, "hello world", 128 << 20, Some(&initrd));
        assert_eq!(
            out,
            expected(&format!("bootinfo-{flavour}.moat.out")),
            "{flavour}"
        );
        assert_eq!(exit, Some(VcpuExit::Shutdown(1)), "{flavour}");
    }
}
