//! Every x86-64 guest image, booted through the `moat` binary, with its exact
//! serial output and exit status. The accelerators listed in `ACCELS` each run
//! the whole suite, so every guest checks every accelerator.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::{expected, kvm_usable, moat, run, run_guest};

/// Runs `$body` once per available accelerator, with `$accel` naming it.
macro_rules! for_each_accel {
    ($test:literal, |$accel:ident| $body:block) => {
        for $accel in ["kvm", "tcg"] {
            if $accel == "kvm" && !kvm_usable($test) {
                continue;
            }
            $body
        }
    };
}

#[test]
fn hello_in_every_boot_protocol() {
    for_each_accel!("hello_in_every_boot_protocol", |accel| {
        for image in ["hello.elf", "hello-multiboot.elf", "hello-elf64.elf"] {
            let result = run_guest(accel, image, &[]);
            assert_eq!(
                result.stdout, "Hello from moat guest!\n",
                "{image} on {accel}"
            );
            assert_eq!(
                result.status,
                Some(1),
                "{image} on {accel}: {}",
                result.stderr
            );
            assert_eq!(result.stderr, "", "{image} on {accel}");
        }
    });
}

#[test]
fn checksum_workload_matches_the_host_cpu() {
    for_each_accel!("checksum_workload_matches_the_host_cpu", |accel| {
        let result = run_guest(accel, "checksum.elf", &[]);
        // expected/checksum.out is what the same C code prints on the host CPU.
        assert_eq!(result.stdout, expected("checksum.out"));
        assert_eq!(result.status, Some(1), "{}", result.stderr);
    });
}

#[test]
fn exit_status_comes_from_the_guest() {
    for_each_accel!("exit_status_comes_from_the_guest", |accel| {
        for (append, output, status) in [
            ("", "exiting with 42\n", 85),
            ("quiet exit=16 foo=bar", "exiting with 16\n", 33),
            ("exit=127", "exiting with 127\n", 255),
        ] {
            let result = run_guest(accel, "exitcode.elf", &["--append", append]);
            assert_eq!(result.stdout, output);
            assert_eq!(result.status, Some(status), "{}", result.stderr);
        }
    });
}

#[test]
fn triple_fault_is_a_crash_with_a_one_line_report() {
    for_each_accel!("triple_fault_is_a_crash_with_a_one_line_report", |accel| {
        let result = run_guest(accel, "triplefault.elf", &[]);
        assert_eq!(result.stdout, "about to triple fault\n");
        assert_eq!(result.status, Some(1));
        assert!(
            result
                .stderr
                .starts_with("moat: guest crashed (triple fault) at pc 0x"),
            "{}",
            result.stderr
        );
        assert_eq!(result.stderr.lines().count(), 1, "{}", result.stderr);
    });
}

/// Drops the lines that describe the memory map: moat's board and QEMU's
/// microvm legitimately differ there.
fn without_memory_map(output: &str) -> String {
    output
        .lines()
        .filter(|line| !line.starts_with("mem: ") && !line.starts_with("memmap: "))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn boot_information_matches_the_abi_and_qemu() {
    for_each_accel!("boot_information_matches_the_abi_and_qemu", |accel| {
        for flavour in ["pvh", "multiboot", "elf64"] {
            // Run from tests/guests so the multiboot command line, which starts
            // with the kernel's path, reads as it did when QEMU was recorded.
            let mut command = moat();
            command
                .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/guests"))
                .arg("run")
                .args(common::accel_args(accel))
                .args(["--memory", "128M"])
                .args(["--append", "hello world"])
                .args(["--initrd", "x86_64/initrd.txt"])
                .arg("--kernel")
                .arg(format!("bin/x86_64/bootinfo-{flavour}.elf"));
            let result = run(&mut command);
            assert_eq!(result.status, Some(1), "{flavour}: {}", result.stderr);
            assert_eq!(
                result.stdout,
                expected(&format!("bootinfo-{flavour}.moat.out")),
                "{flavour}"
            );
            // The elf64 flavour ran under QEMU through a PVH shim: QEMU itself
            // has no plain-ELF64 entry. Everything but the memory map agrees.
            assert_eq!(
                without_memory_map(&result.stdout),
                without_memory_map(&expected(&format!("bootinfo-{flavour}.qemu.out"))),
                "{flavour} against QEMU"
            );
        }
    });
}

#[test]
fn serial_to_a_file_or_nowhere() {
    for_each_accel!("serial_to_a_file_or_nowhere", |accel| {
        let dir = std::env::temp_dir().join(format!("moat-serial-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("serial.log");
        let target = format!("file:{}", log.display());
        let result = run_guest(accel, "hello.elf", &["--serial", &target]);
        assert_eq!(result.status, Some(1));
        assert_eq!(result.stdout, "");
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "Hello from moat guest!\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();

        let result = run_guest(accel, "hello.elf", &["--serial", "null"]);
        assert_eq!((result.status, result.stdout.as_str()), (Some(1), ""));
    });
}

#[test]
fn serial_input_reaches_the_guest() {
    use std::io::Write;
    for_each_accel!("serial_input_reaches_the_guest", |accel| {
        let mut child = common::spawn_guest(accel, "echo.elf");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"hello, moat\nq")
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "ready\nHELLO, MOAT\nbye\n"
        );
        assert_eq!(output.status.code(), Some(1));
    });
}

#[test]
fn ctrl_c_ends_moat_cleanly() {
    use std::io::Read;
    for_each_accel!("ctrl_c_ends_moat_cleanly", |accel| {
        // The echo guest waits for input forever; stdin stays open and silent.
        let mut child = common::spawn_guest(accel, "echo.elf");
        let mut stdout = child.stdout.take().unwrap();
        let mut ready = [0u8; 6];
        stdout.read_exact(&mut ready).unwrap();
        assert_eq!(&ready, b"ready\n");
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(130));
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            "moat: stopped by signal 2\n"
        );
    });
}

#[test]
fn halt_with_interrupts_off_ends_the_run() {
    for_each_accel!("halt_with_interrupts_off_ends_the_run", |accel| {
        let result = run_guest(accel, "halt.elf", &[]);
        assert_eq!(result.stdout, "halting\n");
        assert_eq!(result.status, Some(0));
        assert!(
            result.stderr.starts_with("moat: the guest halted at 0x"),
            "{}",
            result.stderr
        );
    });
}

#[test]
fn reset_through_either_port() {
    for_each_accel!("reset_through_either_port", |accel| {
        for method in ["kbd", "cf9"] {
            let append = format!("reset={method}");
            let result = run_guest(accel, "reset.elf", &["--no-reboot", "--append", &append]);
            assert_eq!(result.stdout, format!("resetting via {method}\n"));
            assert_eq!(result.status, Some(0), "{}", result.stderr);
            assert_eq!(
                result.stderr,
                "moat: the guest reset the machine (--no-reboot)\n"
            );
        }
    });
}

#[test]
fn reset_restarts_the_machine() {
    use std::io::{BufRead, BufReader};
    for_each_accel!("reset_restarts_the_machine", |accel| {
        let mut child = common::spawn_guest(accel, "reset.elf");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Each boot starts from a fresh machine and resets again.
        for _ in 0..3 {
            assert_eq!(lines.next().unwrap().unwrap(), "resetting via cf9");
        }
        child.kill().unwrap();
        child.wait().unwrap();
    });
}

#[test]
fn compute_workload_matches_the_host_cpu() {
    // Few iterations under nested KVM, where ring-0 code is slow; many under TCG.
    for_each_accel!("compute_workload_matches_the_host_cpu", |accel| {
        let iterations = if accel == "kvm" { 50 } else { 20000 };
        let append = format!("iterations={iterations}");
        let result = run_guest(accel, "workload.elf", &["--append", &append]);
        // expected/workload-N.out is the same C code's output on the host CPU.
        assert_eq!(
            result.stdout,
            expected(&format!("workload-{iterations}.out")),
            "{accel}"
        );
        assert_eq!(result.status, Some(1), "{accel}: {}", result.stderr);
    });
}

#[test]
fn tcg_interpreter_agrees_with_the_jit() {
    // The IR interpreter is the JIT's reference: the same guests, the same output.
    for (image, append, expected_out) in [
        ("checksum.elf", "", expected("checksum.out")),
        ("workload.elf", "iterations=50", expected("workload-50.out")),
    ] {
        let result = run_guest(
            "tcg",
            image,
            &["--tcg-engine", "interp", "--append", append],
        );
        assert_eq!(result.stdout, expected_out, "{image}");
        assert_eq!(result.status, Some(1), "{image}: {}", result.stderr);
    }
}

#[test]
fn tcg_traces_guest_code_ir_and_host_code() {
    let result = run_guest("tcg", "hello.elf", &["--trace", "in_asm,op,out_asm,exec"]);
    assert_eq!(result.stdout, "Hello from moat guest!\n");
    assert_eq!(result.status, Some(1));
    let trace = result.stderr;
    // The PVH entry block: guest disassembly, its IR, the host code, the entry.
    assert!(trace.contains("IN: 0x1000d0\n"), "{trace}");
    assert!(trace.contains("mov eax,1h"), "{trace}");
    assert!(trace.contains("OP: 0x1000d0\n"), "{trace}");
    assert!(trace.contains("goto_tb"), "{trace}");
    assert!(trace.contains("OUT: 0x1000d0 ("), "{trace}");
    assert!(trace.contains("Trace: [0x00000000001000d0]"), "{trace}");
    // The same into a file, from inside the sandbox.
    let file = std::env::temp_dir().join(format!("moat-trace-{}", std::process::id()));
    let path = file.to_str().unwrap();
    let result = run_guest(
        "tcg",
        "hello.elf",
        &["--trace", "in_asm,exec", "--trace-file", path],
    );
    assert_eq!((result.status, result.stderr.as_str()), (Some(1), ""));
    let written = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(written.contains("IN: 0x1000d0\n"), "{written}");
    assert!(written.contains("Trace: [0x00000000001000d0]"), "{written}");
    let bad = run_guest("tcg", "hello.elf", &["--trace", "in_asm,everything"]);
    assert_eq!(bad.status, Some(2));
    assert!(
        bad.stderr.contains("unknown trace event 'everything'"),
        "{}",
        bad.stderr
    );
}

// expected/exceptions.out: QEMU's TCG, with the #SS line as the CPU and
// QEMU with KVM have it (QEMU's TCG raises #GP there; the host CPU raises
// #SS: SIGBUS). expected/exceptions-kvm.out: QEMU with KVM, without the
// software interrupt and the fwait that nested KVM cannot emulate in ring 0.
// Every line starts with the name of its case.
#[test]
fn exceptions_resume_after_their_handlers_on_kvm() {
    // Nested KVM here cannot emulate `int n` or `fwait` in ring 0
    // ("emulation failure"): the KVM run skips them.
    if kvm_usable("exceptions_resume_after_their_handlers_on_kvm") {
        assert_guest_prints(
            "kvm",
            "exceptions.elf",
            "skip=softint,nm-fwait",
            "exceptions-kvm.out",
        );
    }
}

#[test]
fn exceptions_resume_after_their_handlers_on_tcg() {
    assert_guest_prints("tcg", "exceptions.elf", "", "exceptions.out");
}

#[test]
fn paging_faults_and_bits_match_qemu() {
    for_each_accel!("paging_faults_and_bits_match_qemu", |accel| {
        let result = run_guest(accel, "paging.elf", &[]);
        // expected/paging.out: QEMU (KVM and TCG) print the same.
        assert_eq!(result.stdout, expected("paging.out"), "{accel}");
        assert_eq!(result.status, Some(1), "{accel}: {}", result.stderr);
    });
}

/// Runs `image` under `accel` and asserts its exact serial output (the file
/// `output` in expected/) and exit status 1 (the guest's exit(0)).
fn assert_guest_prints(accel: &str, image: &str, append: &str, output: &str) {
    let result = run_guest(accel, image, &["--append", append]);
    assert_eq!(result.stdout, expected(output), "{image} on {accel}");
    assert_eq!(
        result.status,
        Some(1),
        "{image} on {accel}: {}",
        result.stderr
    );
}

// expected/smc.out is what the same C code prints on the host CPU
// (`make check-host`); QEMU (KVM and TCG) prints the same.
#[test]
fn self_modifying_code_on_kvm() {
    if kvm_usable("self_modifying_code_on_kvm") {
        assert_guest_prints("kvm", "smc.elf", "", "smc.out");
    }
}

#[test]
fn self_modifying_code_on_tcg() {
    assert_guest_prints("tcg", "smc.elf", "", "smc.out");
}

/// `expected` and `got` line by line, leaving out the lines that start with
/// any of `skip`.
fn assert_lines_except(got: &str, want: &str, skip: &[&str], what: &str) {
    let keep = |line: &&str| !skip.iter().any(|prefix| line.starts_with(prefix));
    let got: Vec<&str> = got.lines().filter(keep).collect();
    let want: Vec<&str> = want.lines().filter(keep).collect();
    assert_eq!(got, want, "{what}");
}

#[test]
fn flags_edge_cases_on_kvm_match_the_host_cpu() {
    if !kvm_usable("flags_edge_cases_on_kvm_match_the_host_cpu") {
        return;
    }
    let result = run_guest("kvm", "flags.elf", &[]);
    // Nested KVM here (kvm_pvm) emulates ring-0 code, and its emulator
    // zero-extends the destination register of a failing 32-bit cmpxchg,
    // which the CPU leaves alone (see REFERENCE.md); QEMU with -accel kvm
    // prints the same wrong line. Every other line is the CPU's.
    assert_lines_except(
        &result.stdout,
        &expected("flags.out"),
        &["cmpxchg-reg/32:"],
        "flags.elf on kvm",
    );
    assert_eq!(result.status, Some(1), "{}", result.stderr);
}

#[test]
fn flags_edge_cases_on_tcg_match_the_host_cpu() {
    assert_guest_prints("tcg", "flags.elf", "", "flags.out");
}

#[test]
fn string_instructions_match_the_host_cpu() {
    // expected/strings.out is what the same C code prints on the host CPU.
    for_each_accel!("string_instructions_match_the_host_cpu", |accel| {
        assert_guest_prints(accel, "strings.elf", "", "strings.out");
    });
}

// expected/sse.out is what the same C code prints on the host CPU (`make
// check-host`; `make verbose-host` and `--append verbose=1` show every
// case). The guest computes in ring 3, where nested KVM runs SSE natively
// (it cannot emulate SSE in ring 0); QEMU's TCG differs (MXCSR.DE,
// minss/maxss with DAZ, no #XM), QEMU with KVM prints exactly this.
#[test]
fn sse_rounding_modes_and_mxcsr_flags_on_kvm() {
    if kvm_usable("sse_rounding_modes_and_mxcsr_flags_on_kvm") {
        assert_guest_prints("kvm", "sse.elf", "", "sse.out");
    }
}

#[test]
fn sse_rounding_modes_and_mxcsr_flags_on_tcg() {
    assert_guest_prints("tcg", "sse.elf", "", "sse.out");
}

#[test]
fn tcg_interpreter_agrees_on_the_cpu_feature_guests() {
    // The IR interpreter against the same expectations as the JIT.
    for (image, output) in [
        ("paging.elf", "paging.out"),
        ("strings.elf", "strings.out"),
        ("exceptions.elf", "exceptions.out"),
        ("smc.elf", "smc.out"),
        ("flags.elf", "flags.out"),
        ("sse.elf", "sse.out"),
    ] {
        let result = run_guest("tcg", image, &["--tcg-engine", "interp"]);
        assert_eq!(result.status, Some(1), "{image}: {}", result.stderr);
        assert_eq!(result.stdout, expected(output), "{image}");
    }
}
