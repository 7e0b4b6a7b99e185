//! Criterion: a compute-bound guest under TCG, end to end (process start,
//! translation, execution), so changes to the translator show up as a number.
//! `benches/vs-qemu.sh` puts the same guest next to QEMU and native code.

use std::process::{Command, Stdio};

use criterion::{Criterion, criterion_group, criterion_main};

const WORKLOAD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/guests/bin/x86_64/workload.elf"
);

fn run_workload(iterations: u32, engine: &str) {
    let status = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["run", "--quiet", "--accel", "tcg", "--tcg-engine", engine])
        .args(["--kernel", WORKLOAD, "--append"])
        .arg(format!("iterations={iterations}"))
        .stdout(Stdio::null())
        .status()
        .expect("moat runs");
    // The guest exits through debug-exit with 0, which is status 1.
    assert_eq!(status.code(), Some(1));
}

fn tcg_workload(c: &mut Criterion) {
    let mut group = c.benchmark_group("tcg");
    group.sample_size(10);
    group.bench_function("workload 20000 iterations, jit", |b| {
        b.iter(|| run_workload(20_000, "jit"))
    });
    group.bench_function("workload 200 iterations, interpreter", |b| {
        b.iter(|| run_workload(200, "interp"))
    });
    group.finish();
}

criterion_group!(benches, tcg_workload);
criterion_main!(benches);
