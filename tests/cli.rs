//! Bad input on the command line: every malformed image and every bad flag gets
//! a one-line error and exit status 2, never a panic. None of these reach an
//! accelerator, so they run on any host.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::path::{Path, PathBuf};

use common::{guest, moat, run};

/// A scratch directory for corrupted images, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("moat-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_guest(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(guest(name))).unwrap()
}

/// Runs `moat run` with `args` and checks the usage-error contract; returns the
/// message line.
fn usage_error(args: &[&str]) -> String {
    let result = run(moat().args(args));
    assert_eq!(result.status, Some(2), "{args:?}: {}", result.stderr);
    assert_eq!(result.stdout, "", "{args:?}");
    assert_eq!(
        result.stderr.lines().count(),
        1,
        "{args:?} should give one line, got:\n{}",
        result.stderr
    );
    assert!(result.stderr.starts_with("moat: "), "{}", result.stderr);
    result.stderr
}

fn kernel_error(path: &Path, extra: &[&str]) -> String {
    let path = path.to_str().unwrap();
    let mut args = vec!["run", "--kernel", path];
    args.extend_from_slice(extra);
    let message = usage_error(&args);
    assert!(
        message.starts_with(&format!("moat: kernel '{path}'")),
        "{message}"
    );
    message
}

/// The file offset of the first PT_LOAD program header of an ELF64.
fn first_load_header(elf: &[u8]) -> usize {
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let count = u16::from_le_bytes(elf[56..58].try_into().unwrap()) as usize;
    (0..count)
        .map(|i| phoff + i * 56)
        .find(|&at| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 1)
        .unwrap()
}

#[test]
fn files_that_are_not_kernels() {
    let scratch = Scratch::new("not-kernels");
    let message = kernel_error(&scratch.write("empty", b""), &[]);
    assert!(message.contains("not an ELF file"), "{message}");
    let message = kernel_error(&scratch.write("script", b"#!/bin/sh\necho hi\n"), &[]);
    assert!(message.contains("not an ELF file"), "{message}");
    let mut garbage = b"\x7fELF".to_vec();
    garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    kernel_error(&scratch.write("garbage", &garbage), &[]);
    let message = kernel_error(&scratch.0, &[]);
    assert!(message.contains("not a regular file"), "{message}");
    let message = kernel_error(&scratch.0.join("missing.elf"), &[]);
    assert!(message.contains("No such file"), "{message}");
}

#[test]
fn truncated_images() {
    let scratch = Scratch::new("truncated");
    let hello = read_guest("hello.elf");
    // Bytes past the last segment (section headers) are not needed to boot, as in
    // QEMU; every cut before that is an error.
    for len in [16, 64, 200, hello.len() / 2] {
        kernel_error(&scratch.write(&format!("cut-{len}"), &hello[..len]), &[]);
    }
}

#[test]
fn wrong_machine() {
    let scratch = Scratch::new("machine");
    let mut riscv = read_guest("hello.elf");
    riscv[18..20].copy_from_slice(&243u16.to_le_bytes());
    let message = kernel_error(&scratch.write("riscv.elf", &riscv), &[]);
    assert!(message.contains("built for riscv, not x86-64"), "{message}");
}

#[test]
fn segments_in_the_wrong_place() {
    let scratch = Scratch::new("segments");
    let hello = read_guest("hello.elf");
    let header = first_load_header(&hello);

    let mut low = hello.clone();
    low[header + 24..header + 32].copy_from_slice(&0x8000u64.to_le_bytes());
    let message = kernel_error(&scratch.write("low.elf", &low), &[]);
    assert!(message.contains("which the board reserves"), "{message}");

    let mut high = hello.clone();
    high[header + 24..header + 32].copy_from_slice(&(3u64 << 30).to_le_bytes());
    let message = kernel_error(&scratch.write("high.elf", &high), &[]);
    assert!(message.contains("outside guest RAM"), "{message}");

    let mut huge = hello.clone();
    huge[header + 40..header + 48].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    kernel_error(&scratch.write("huge.elf", &huge), &[]);

    let mut lying = hello;
    lying[header + 32..header + 40].copy_from_slice(&0x10_0000u64.to_le_bytes());
    let message = kernel_error(&scratch.write("lying.elf", &lying), &[]);
    assert!(message.contains("truncated"), "{message}");
}

#[test]
fn entry_points_outside_the_image() {
    let scratch = Scratch::new("entry");
    let mut elf64 = read_guest("hello-elf64.elf");
    elf64[24..32].copy_from_slice(&0x500_0000u64.to_le_bytes());
    let message = kernel_error(&scratch.write("entry.elf", &elf64), &[]);
    assert!(
        message.contains("entry point 0x5000000 is not inside"),
        "{message}"
    );
}

#[test]
fn elf32_without_a_boot_protocol() {
    let scratch = Scratch::new("elf32");
    let mut image = read_guest("hello-multiboot.elf");
    let magic = 0x1bad_b002u32.to_le_bytes();
    let at = image.windows(4).position(|w| w == magic).unwrap();
    image[at] ^= 0xff;
    let message = kernel_error(&scratch.write("bare32.elf", &image), &[]);
    assert!(
        message.contains("neither a PVH note nor a multiboot header"),
        "{message}"
    );
}

#[test]
fn bad_initrd_and_command_line() {
    let scratch = Scratch::new("initrd");
    let hello = guest("hello.elf");
    let hello = hello.to_str().unwrap();
    let big = scratch.write("big.img", &vec![0u8; 5 << 20]);
    let message = usage_error(&[
        "run",
        "--kernel",
        hello,
        "--memory",
        "4M",
        "--initrd",
        big.to_str().unwrap(),
    ]);
    assert!(message.contains("larger than guest RAM"), "{message}");
    let medium = scratch.write("medium.img", &vec![0u8; 3 << 20]);
    let message = usage_error(&[
        "run",
        "--kernel",
        hello,
        "--memory",
        "4M",
        "--initrd",
        medium.to_str().unwrap(),
    ]);
    assert!(message.starts_with("moat: initrd '"), "{message}");
    let long = "x".repeat(20_000);
    let message = usage_error(&["run", "--kernel", hello, "--append", &long]);
    assert!(message.starts_with("moat: --append: "), "{message}");
}

#[test]
fn bad_flags() {
    let hello = guest("hello.elf");
    let hello = hello.to_str().unwrap();
    for args in [
        vec!["run"],
        vec!["run", "--kernel"],
        vec!["run", "--kernel", hello, "--memory", "12X"],
        vec!["run", "--kernel", hello, "--memory", "1M"],
        vec!["run", "--kernel", hello, "--memory", "1T"],
        vec!["run", "--kernel", hello, "--accel", "hvf"],
        vec!["run", "--kernel", hello, "--serial", "tcp:1234"],
        vec!["run", "--kernel", hello, "--serial", "file:"],
        vec!["run", "--kernel", hello, "--cpus", "0"],
        vec!["run", "--kernel", hello, "--frobnicate"],
        vec!["launch"],
    ] {
        usage_error(&args);
    }
}

#[test]
fn help_and_version() {
    let result = run(moat().arg("--version"));
    assert_eq!(result.status, Some(0));
    assert!(result.stdout.starts_with("moat "), "{}", result.stdout);
    let result = run(moat().args(["run", "--help"]));
    assert_eq!(result.status, Some(0));
    assert!(result.stdout.contains("--kernel <FILE>"));
    assert!(result.stdout.contains("Examples:"));
}

/// Sizes and counts read as people write them, with the board's own limits.
#[test]
fn range_errors_read_as_people_write_sizes() {
    let hello = guest("hello.elf");
    let hello = hello.to_str().unwrap();
    let message = usage_error(&["run", "--kernel", hello, "--memory", "1M"]);
    assert_eq!(
        message,
        "moat: --memory: 1M is not between 4M and 64G on the pc machine\n"
    );
    let message = usage_error(&[
        "run",
        "--kernel",
        hello,
        "--memory",
        "65G",
        "--machine",
        "pc",
    ]);
    assert_eq!(
        message,
        "moat: --memory: 65G is not between 4M and 64G on the pc machine\n"
    );
    let message = usage_error(&[
        "run",
        "--kernel",
        hello,
        "--memory",
        "4M",
        "--machine",
        "virt",
    ]);
    assert_eq!(
        message,
        "moat: --memory: 4M is not between 8M and 64G on the virt machine\n"
    );
    let message = usage_error(&["run", "--kernel", hello, "--cpus", "9"]);
    assert_eq!(
        message,
        "moat: --cpus: 9 is not between 1 and 8 (see moat --help)\n"
    );
    for args in [["--memory", "1M"], ["--cpus", "0"]] {
        let message = usage_error(&["run", "--kernel", hello, args[0], args[1]]);
        assert!(!message.contains("..="), "{message}");
        assert!(!message.contains("bytes"), "{message}");
    }
}

/// TCG-only flags are refused where they cannot apply, never ignored.
#[test]
fn flags_that_would_do_nothing_are_refused() {
    let hello = guest("hello.elf");
    let hello = hello.to_str().unwrap();
    for (extra, expected) in [
        (&["--accel", "kvm", "--trace", "exec"][..], "--trace"),
        (
            &["--accel", "kvm", "--tcg-engine", "interp"],
            "--tcg-engine",
        ),
        (
            &[
                "--accel",
                "tcg",
                "--trace",
                "out_asm",
                "--tcg-engine",
                "interp",
            ],
            "--trace out_asm",
        ),
    ] {
        for command in ["run", "check"] {
            let mut args = vec![command, "--kernel", hello];
            args.extend_from_slice(extra);
            let result = run(moat().args(&args));
            assert_eq!(result.status, Some(2), "{args:?}: {}", result.stderr);
            assert!(
                result.stderr.starts_with(&format!("moat: {expected}")),
                "{args:?}: {}",
                result.stderr
            );
        }
    }
}

/// Under `--accel auto`, a TCG flag with KVM chosen is named in a warning.
#[test]
fn tcg_flags_under_auto_kvm_warn() {
    if !common::kvm_usable("tcg_flags_under_auto_kvm_warn") {
        return;
    }
    let result = run(moat()
        .args(["run", "--trace", "exec", "--kernel"])
        .arg(guest("hello.elf")));
    assert_eq!(result.stdout, "Hello from moat guest!\n");
    assert!(
        result
            .stderr
            .contains("moat: warning: --trace does nothing under KVM"),
        "{}",
        result.stderr
    );
}

/// The README quotes `--help`'s exit-status and console sections word for
/// word: one source, checked here.
#[test]
fn readme_quotes_the_help() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let help = run(moat().args(["run", "--help"])).stdout;
    for heading in ["Serial console (--serial stdio):", "Exit status:"] {
        let start = help
            .find(heading)
            .unwrap_or_else(|| panic!("{heading} in {help}"));
        let section: String = help[start..]
            .lines()
            .take_while(|line| !line.is_empty())
            .map(|line| format!("{line}\n"))
            .collect();
        assert!(
            readme.contains(&section),
            "README.md should quote this part of `moat run --help`:\n{section}"
        );
    }
    let check_help = run(moat().args(["check", "--help"])).stdout;
    assert!(check_help.contains("Exit status:"), "{check_help}");
}
