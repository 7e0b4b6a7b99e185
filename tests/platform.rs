//! The machine platform through the `moat` binary: interrupts from the 8254
//! PIT through the 8259 pair to a vCPU asleep in `hlt`, several vCPUs started
//! by the guest, and the flags that choose them.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::{accel_args, expected, guest, kvm_usable, moat, run_guest};

fn pit_interrupts_wake_a_halted_vcpu(accel: &str) {
    // pit.elf: PIT channel 0 at 100 Hz through the master 8259 to IRQ 0,
    // `sti; hlt` until 50 ticks, each wake-up with exactly one tick
    // (expected/pit.out is QEMU's output, TCG and KVM).
    let common::Timed {
        stdout: output,
        status,
        wall,
        cpu,
    } = common::run_timed(
        moat()
            .arg("run")
            .args(accel_args(accel))
            .arg("--kernel")
            .arg(guest("pit.elf")),
    );
    assert_eq!(output, expected("pit.out"), "pit.elf on {accel}");
    assert_eq!(status, Some(1), "pit.elf on {accel}");
    // 50 ticks at 100 Hz: half a second asleep. A vCPU that spun instead of
    // sleeping would burn about as much CPU as wall time.
    assert!(
        cpu < wall / 10,
        "pit.elf on {accel}: {cpu:?} of CPU time in {wall:?}: the halted vCPU does not sleep"
    );
}

#[test]
fn pit_interrupts_wake_a_halted_vcpu_on_tcg() {
    pit_interrupts_wake_a_halted_vcpu("tcg");
}

#[test]
fn pit_interrupts_wake_a_halted_vcpu_on_kvm() {
    if kvm_usable("pit_interrupts_wake_a_halted_vcpu_on_kvm") {
        pit_interrupts_wake_a_halted_vcpu("kvm");
    }
}

/// The `smp: racy count N` line of smp.elf's output.
fn racy_count(output: &str) -> u64 {
    output
        .lines()
        .find_map(|line| line.strip_prefix("smp: racy count "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no racy count in {output:?}"))
}

#[test]
fn four_vcpus_started_by_init_sipi_count_exactly_on_tcg() {
    // smp.elf: the boot CPU starts the others through its local APIC (INIT,
    // STARTUP, STARTUP into a real-mode trampoline at 0x9000); every CPU then
    // does `lock xadd` a million times on one counter.
    let result = run_guest(
        "tcg",
        "smp.elf",
        &[
            "--cpus",
            "4",
            "--append",
            "cpus=4 iterations=1000000 racy=1",
        ],
    );
    assert_eq!(result.status, Some(1), "{}", result.stderr);
    assert!(
        result.stdout.starts_with("smp: 4 cpus, count 4000000\n"),
        "{}",
        result.stdout
    );
    // The same with a plain load, add, store: the count can only come out
    // lower. With four vCPU threads on fewer host cores it usually does, but
    // the threads may also take turns; the race is shown when it happens.
    let racy = racy_count(&result.stdout);
    assert!(racy <= 4_000_000, "{}", result.stdout);
    if racy == 4_000_000 {
        eprintln!("NOTE: this run lost no racy increments (the vCPU threads took turns)");
    }
}

#[test]
fn four_vcpus_on_kvm() {
    // Nested KVM here runs contended ring-0 loops slowly: a thousand each
    // (expected/smp-4-kvm.out is QEMU's output with KVM).
    if kvm_usable("four_vcpus_on_kvm") {
        let result = run_guest(
            "kvm",
            "smp.elf",
            &["--cpus", "4", "--append", "cpus=4 iterations=1000"],
        );
        assert_eq!(
            result.stdout,
            expected("smp-4-kvm.out"),
            "{}",
            result.stderr
        );
        assert_eq!(result.status, Some(1), "{}", result.stderr);
    }
}

#[test]
fn a_guest_that_wants_more_cpus_than_it_has_says_so() {
    // cpus=4 on a two-vCPU machine: two APs never answer (expected/
    // smp-missing.out is QEMU's with -smp 2); the guest exits with 2.
    let result = run_guest(
        "tcg",
        "smp.elf",
        &["--cpus", "2", "--append", "cpus=4 iterations=1000"],
    );
    assert_eq!(result.stdout, expected("smp-missing.out"));
    assert_eq!(result.status, Some(5), "{}", result.stderr);
}

#[test]
fn cpu_count_and_machine_are_checked() {
    for (args, message) in [
        (&["--cpus", "0"][..], "--cpus"),
        (&["--cpus", "9"][..], "--cpus"),
        (&["--machine", "virt"][..], "x86_64 image"),
        (&["--machine", "sun4m"][..], "--machine"),
    ] {
        let result = run_guest("tcg", "hello.elf", args);
        assert_eq!(result.status, Some(2), "{args:?}: {}", result.stderr);
        assert!(
            result.stderr.contains(message),
            "{args:?}: {}",
            result.stderr
        );
        assert_eq!(result.stdout, "", "{args:?}");
    }
}

#[test]
fn machine_pc_runs_an_x86_image() {
    let result = run_guest("tcg", "hello.elf", &["--machine", "pc", "--cpus", "2"]);
    assert_eq!(result.stdout, "Hello from moat guest!\n");
    assert_eq!(result.status, Some(1), "{}", result.stderr);
}

#[test]
fn a_machine_whose_cpus_all_wait_for_good_ends_as_halted() {
    // halt.elf: the boot CPU does `cli; hlt`; the others were never started.
    // Nothing can wake any of them: the run ends with status 0 and says so.
    for cpus in ["1", "3"] {
        let result = run_guest("tcg", "halt.elf", &["--cpus", cpus]);
        assert_eq!(result.stdout, "halting\n", "--cpus {cpus}");
        assert_eq!(result.status, Some(0), "--cpus {cpus}: {}", result.stderr);
        assert!(
            result.stderr.contains("halted at 0x")
                && result.stderr.contains("nothing left to wake it"),
            "--cpus {cpus}: {}",
            result.stderr
        );
    }
}
