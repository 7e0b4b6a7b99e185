//! Start-up time and weight: boots the hello guest under moat and under QEMU
//! (microvm, qboot, KVM) alternately, and prints each one's median wall time from
//! process start to exit and its peak RSS.
//!
//! `cargo bench --bench startup [-- RUNS]`. QEMU comes from bookworm-backports
//! (see README); without it, only moat is measured.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HELLO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/guests/bin/x86_64/hello.elf"
);

struct Sample {
    wall: Duration,
    max_rss_kib: i64,
}

/// Runs `command` to completion and reads its peak RSS from wait4's rusage.
fn measure(command: &mut Command) -> Option<Sample> {
    let start = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut status = 0;
    // SAFETY: rusage is plain data filled in by the kernel; the pid is our own
    // child, reaped exactly once here.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::wait4(child.id() as i32, &mut status, 0, &mut usage) < 0 {
            return None;
        }
        usage
    };
    Some(Sample {
        wall: start.elapsed(),
        max_rss_kib: usage.ru_maxrss,
    })
}

fn median<T: Copy + Ord>(values: &mut [T]) -> T {
    values.sort_unstable();
    values[values.len() / 2]
}

fn summarize(name: &str, samples: &[Sample]) -> Option<(Duration, i64)> {
    if samples.is_empty() {
        println!("{name:<8} no successful runs");
        return None;
    }
    let mut walls: Vec<_> = samples.iter().map(|s| s.wall).collect();
    let mut rss: Vec<_> = samples.iter().map(|s| s.max_rss_kib).collect();
    let (wall, rss) = (median(&mut walls), median(&mut rss));
    println!(
        "{name:<8} median wall {:>8.2} ms   median peak RSS {:>7.1} MiB   ({} runs)",
        wall.as_secs_f64() * 1e3,
        rss as f64 / 1024.0,
        samples.len()
    );
    Some((wall, rss))
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(20);
    let moat = env!("CARGO_BIN_EXE_moat");
    let qemu_available = Command::new("qemu-system-x86_64")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !qemu_available {
        println!("qemu-system-x86_64 not found: measuring moat only");
    }

    let (mut moat_samples, mut qemu_samples) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        // Alternate so that machine noise hits both alike.
        moat_samples.extend(measure(
            Command::new(moat).args(["run", "--accel", "kvm", "--kernel", HELLO]),
        ));
        if qemu_available {
            qemu_samples.extend(measure(Command::new("qemu-system-x86_64").args([
                "-M",
                "microvm",
                "-bios",
                "/usr/share/qemu/qboot.rom",
                "-accel",
                "kvm",
                "-m",
                "128M",
                "-device",
                "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-nographic",
                "-no-reboot",
                "-nodefaults",
                "-serial",
                "stdio",
                "-kernel",
                HELLO,
            ])));
        }
    }
    println!("hello guest, start to exit, KVM:");
    let moat_result = summarize("moat", &moat_samples);
    let qemu_result = summarize("qemu", &qemu_samples);
    if let (Some((moat_wall, moat_rss)), Some((qemu_wall, qemu_rss))) = (moat_result, qemu_result) {
        println!(
            "moat/qemu: time {:.3}x (bar: 0.5x), peak RSS {:.3}x (bar: 0.25x)",
            moat_wall.as_secs_f64() / qemu_wall.as_secs_f64(),
            moat_rss as f64 / qemu_rss as f64
        );
    }
}
