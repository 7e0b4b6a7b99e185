//! The aarch64 guest images (tests/guests/aarch64), booted on the `virt`
//! board through the `moat` binary under TCG: each one's serial output
//! must equal its expected file byte for byte (recorded from QEMU, with
//! the Arm ARM's answer where QEMU deviates; see tests/guests/README.md),
//! and each powers off through PSCI SYSTEM_OFF (status 0).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::path::Path;

use common::{Run, moat, run};

const GUESTS: &str = "tests/guests/bin/aarch64";
const EXPECTED: &str = "tests/guests/aarch64/expected";

fn expected(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(EXPECTED)
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

fn run_a64(image: &str, extra: &[&str]) -> Run {
    run(moat()
        .args(["run", "--machine", "virt", "--accel", "tcg", "--quiet"])
        .arg("--kernel")
        .arg(Path::new(GUESTS).join(image))
        .args(extra))
}

/// Runs `image` (both its ELF and raw builds) and compares with `out`.
fn check(name: &str, out: &str) {
    for image in [format!("{name}.elf"), format!("{name}.bin")] {
        let result = run_a64(&image, &[]);
        assert_eq!(result.stdout, expected(out), "{image}: {}", result.stderr);
        assert_eq!(result.status, Some(0), "{image}: {}", result.stderr);
    }
}

#[test]
fn hello() {
    let result = run_a64("hello.elf", &[]);
    assert_eq!(result.stdout, expected("hello.out"), "{}", result.stderr);
    assert_eq!(result.status, Some(0));
    // The raw image gets x0 = the DTB.
    let result = run_a64("hello.bin", &[]);
    assert_eq!(
        result.stdout,
        expected("hello-raw.out"),
        "{}",
        result.stderr
    );
    assert_eq!(result.status, Some(0));
}

#[test]
fn integer() {
    check("integer", "integer.out");
}

#[test]
fn memory_with_lse() {
    // moat implements LSE and says so (ID_AA64ISAR0_EL1.Atomic = 2): the
    // output is QEMU's `-cpu max` one.
    check("memory", "memory-max.out");
}

#[test]
fn exceptions() {
    check("exceptions", "exceptions.out");
}

#[test]
fn floating_point() {
    // Every FPCR rounding mode, FZ and DN on edge operands; bit patterns
    // and FPSR as QEMU's cortex-a57 prints them.
    check("fp", "fp.out");
}

#[test]
fn advanced_simd() {
    check("simd", "simd.out");
}

#[test]
fn four_cpus_started_with_psci_count_exactly() {
    // smp.bin: CPU_ON for the secondaries, ldaxr/stlxr on one counter from
    // four vCPU threads, CPU_OFF, AFFINITY_INFO (expected/smp-4.out: QEMU
    // with -smp 4).
    let result = run_a64(
        "smp.bin",
        &["--cpus", "4", "--append", "cpus=4 iterations=100000"],
    );
    assert_eq!(result.status, Some(0), "{}", result.stderr);
    assert_eq!(result.stdout, expected("smp-4.out"));
}

#[test]
fn virtio_blk_and_rng_through_the_sandbox() {
    // virtio.{elf,bin}: a freestanding virtio-mmio driver scans all 32
    // slots, reads, writes and identifies a disk and draws entropy
    // (expected/virtio.out: QEMU with -global virtio-mmio.force-legacy=false
    // and the same disk). The disk: 1 MiB, "moat-virtio-blk!" at byte 0.
    for image in ["virtio.elf", "virtio.bin"] {
        let disk =
            std::env::temp_dir().join(format!("moat-virtio-{}-{image}.img", std::process::id()));
        let mut bytes = vec![0u8; 1 << 20];
        bytes[..16].copy_from_slice(b"moat-virtio-blk!");
        std::fs::write(&disk, &bytes).unwrap();
        let result = run_a64(
            image,
            &[
                "--rng",
                &format!("--disk={},serial=moat-test", disk.display()),
            ],
        );
        assert_eq!(result.status, Some(0), "{image}: {}", result.stderr);
        assert_eq!(result.stdout, expected("virtio.out"), "{image}");
        // The guest's write reached the host file: sector 1, byte i is
        // (i * 7 + 0x5a) & 0xff.
        let written = std::fs::read(&disk).unwrap();
        for (i, &byte) in written[512..1024].iter().enumerate() {
            assert_eq!(byte, ((i * 7 + 0x5a) & 0xff) as u8, "{image}: byte {i}");
        }
        let _ = std::fs::remove_file(&disk);
    }
}

#[test]
fn mmu() {
    check("mmu", "mmu.out");
}

#[test]
fn smc() {
    check("smc", "smc.out");
}

#[test]
fn timer_ticks_and_bootargs() {
    let result = run_a64("timer.bin", &["--append", "ticks=5"]);
    assert_eq!(result.stdout, expected("timer-5.out"), "{}", result.stderr);
    assert_eq!(result.status, Some(0));
}

#[test]
fn timer_waits_asleep() {
    // 20 ticks of 10 ms in wfi: a vCPU that spun instead of sleeping would
    // burn about as much CPU time as wall time.
    let timed = common::run_timed(
        moat()
            .args(["run", "--machine", "virt", "--accel", "tcg", "--quiet"])
            .arg("--kernel")
            .arg(Path::new(GUESTS).join("timer.elf")),
    );
    assert_eq!(timed.stdout, expected("timer.out"));
    assert_eq!(timed.status, Some(0));
    // Start-up (translation of the image) costs some CPU; waiting must not.
    assert!(
        timed.cpu < timed.wall / 2,
        "timer.elf: {:?} of CPU time in {:?}: the vCPU in wfi does not sleep",
        timed.cpu,
        timed.wall
    );
}
