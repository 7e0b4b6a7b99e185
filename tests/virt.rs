//! The aarch64 `virt` board through the `moat` binary: its device tree and
//! its loaders. (Guests running on it come with the AArch64 front end.)

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::process::Command;

use common::{moat, run};

/// A raw binary: one `nop`, which the board loads at RAM + 0x80000.
fn raw_binary(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("moat-virt-{}-{name}.bin", std::process::id()));
    std::fs::write(&path, [0x1f, 0x20, 0x03, 0xd5]).unwrap();
    path
}

#[test]
fn the_device_tree_describes_the_board_and_dtc_accepts_it() {
    let kernel = raw_binary("dtb");
    let dtb = kernel.with_extension("dtb");
    let result = run(moat()
        .args([
            "run",
            "--machine",
            "virt",
            "--accel",
            "tcg",
            "--quiet",
            "--cpus",
            "2",
        ])
        .args(["--append", "console=ttyAMA0 root=/dev/vda"])
        .arg("--kernel")
        .arg(&kernel)
        .arg("--dump-dtb")
        .arg(&dtb));
    assert_eq!(result.status, Some(0), "{}", result.stderr);
    let decompiled = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts"])
        .arg(&dtb)
        .output()
        .expect("dtc runs (Debian's device-tree-compiler; scripts/test installs it)");
    let dts = String::from_utf8_lossy(&decompiled.stdout);
    let warnings = String::from_utf8_lossy(&decompiled.stderr);
    assert!(
        decompiled.status.success(),
        "dtc refused the tree: {warnings}"
    );
    for expected in [
        "compatible = \"linux,dummy-virt\"",
        "bootargs = \"console=ttyAMA0 root=/dev/vda\"",
        "stdout-path = \"/pl011@9000000\"",
        "reg = <0x00 0x40000000 0x00 0x8000000>",
        "cpu@1 {",
        "enable-method = \"psci\"",
        "method = \"hvc\"",
        "compatible = \"arm,cortex-a15-gic\"",
        "compatible = \"arm,armv8-timer\\0arm,armv7-timer\"",
        "interrupts = <0x00 0x01 0x04>",
        "compatible = \"arm,pl031\\0arm,primecell\"",
    ] {
        assert!(dts.contains(expected), "no `{expected}` in\n{dts}");
    }
    let _ = std::fs::remove_file(&kernel);
    let _ = std::fs::remove_file(&dtb);
}

#[test]
fn the_pc_machine_has_no_device_tree_to_dump() {
    let result = run(moat()
        .args([
            "run",
            "--accel",
            "tcg",
            "--quiet",
            "--dump-dtb",
            "/nonexistent/x.dtb",
        ])
        .arg("--kernel")
        .arg(common::guest("hello.elf")));
    assert_eq!(result.status, Some(2));
    assert!(
        result.stderr.contains("no device tree"),
        "{}",
        result.stderr
    );
}

#[test]
fn malformed_arm64_images_get_one_line_errors() {
    // An Image header whose image_size is smaller than the file.
    let mut image = vec![0u8; 4096];
    image[16..24].copy_from_slice(&64u64.to_le_bytes());
    image[56..60].copy_from_slice(b"ARM\x64");
    let path = std::env::temp_dir().join(format!("moat-virt-{}-bad.img", std::process::id()));
    std::fs::write(&path, &image).unwrap();
    let result = run(moat()
        .args(["run", "--accel", "tcg", "--quiet"])
        .arg("--kernel")
        .arg(&path));
    assert_eq!(result.status, Some(2), "{}", result.stderr);
    assert_eq!(result.stderr.lines().count(), 1, "{}", result.stderr);
    assert!(
        result.stderr.contains("malformed arm64 Image header"),
        "{}",
        result.stderr
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn virtio_devices_appear_in_the_device_tree_and_on_the_pc_command_line() {
    let kernel = raw_binary("virtio");
    let disk = kernel.with_extension("img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let dtb = kernel.with_extension("dtb");
    let result = run(moat()
        .args([
            "run",
            "--machine",
            "virt",
            "--accel",
            "tcg",
            "--quiet",
            "--rng",
        ])
        .arg(format!("--disk={},ro,serial=d0", disk.display()))
        .arg("--kernel")
        .arg(&kernel)
        .arg("--dump-dtb")
        .arg(&dtb));
    assert_eq!(result.status, Some(0), "{}", result.stderr);
    let dts = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts"])
        .arg(&dtb)
        .output()
        .unwrap();
    let dts = String::from_utf8_lossy(&dts.stdout);
    for expected in [
        "virtio_mmio@a000000 {",
        "virtio_mmio@a000200 {",
        "compatible = \"virtio,mmio\"",
        "interrupts = <0x00 0x10 0x01>",
        "interrupts = <0x00 0x11 0x01>",
        "dma-coherent;",
    ] {
        assert!(dts.contains(expected), "no `{expected}` in\n{dts}");
    }
    // Every slot is listed, as QEMU does; the unused ones are empty.
    assert!(dts.contains("virtio_mmio@a003e00 {"), "{dts}");

    // pc has no device tree: the kernel command line names them.
    let result = run(moat()
        .args(["run", "--accel", "tcg", "--quiet", "--rng", "--append", "x"])
        .arg(format!("--disk={},ro", disk.display()))
        .arg("--kernel")
        .arg(common::guest("bootinfo-pvh.elf")));
    assert!(
        result.stdout.contains(
            "cmdline: x virtio_mmio.device=512@0xd0000000:5 virtio_mmio.device=512@0xd0000200:6"
        ),
        "{}",
        result.stdout
    );
    for path in [&kernel, &disk, &dtb] {
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn a_writable_disk_is_a_weakening_and_a_missing_one_an_error() {
    let disk = raw_binary("rw").with_extension("img");
    std::fs::write(&disk, vec![0u8; 4096]).unwrap();
    let check = |extra: &str| {
        run(moat()
            .args(["check", "--accel", "kvm"])
            .arg(format!("--disk={}{extra}", disk.display()))
            .arg("--kernel")
            .arg(common::guest("hello.elf")))
    };
    assert!(
        check("")
            .stdout
            .contains("the guest can write the host file")
    );
    assert!(
        !check(",ro")
            .stdout
            .contains("the guest can write the host file")
    );
    let result = run(moat()
        .args([
            "run",
            "--accel",
            "tcg",
            "--quiet",
            "--disk",
            "/nonexistent.img",
        ])
        .arg("--kernel")
        .arg(common::guest("hello.elf")));
    assert_eq!(result.status, Some(2), "{}", result.stderr);
    assert!(
        result.stderr.contains("--disk '/nonexistent.img'"),
        "{}",
        result.stderr
    );
    let _ = std::fs::remove_file(&disk);
}
