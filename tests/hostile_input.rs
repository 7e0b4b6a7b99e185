//! Command lines and files that once made moat misbehave: each now gets a
//! one-line error with status 2 (or works as QEMU's users expect).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::time::{Duration, Instant};

use common::{guest, moat, run};

#[test]
fn a_fifo_as_the_kernel_is_refused_without_hanging() {
    let fifo = std::env::temp_dir().join(format!("moat-fifo-{}", std::process::id()));
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path; mkfifo touches nothing else.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let started = Instant::now();
    for flag in ["--kernel", "--initrd"] {
        let mut command = moat();
        command.args(["run", "--accel", "tcg", "--quiet"]);
        if flag == "--initrd" {
            command.arg("--kernel").arg(guest("hello.elf"));
        }
        let result = run(command.arg(flag).arg(&fifo));
        assert_eq!(result.status, Some(2), "{flag}: {}", result.stderr);
        assert!(
            result.stderr.contains("is not a regular file"),
            "{flag}: {}",
            result.stderr
        );
    }
    // Opening a FIFO with no writer would block forever.
    assert!(started.elapsed() < Duration::from_secs(30));
    let _ = std::fs::remove_file(&fifo);
}

#[test]
fn a_command_line_may_start_with_a_dash() {
    let result = run(moat()
        .args(["run", "--accel", "tcg", "--quiet", "--append", "-x exit=3"])
        .arg("--kernel")
        .arg(guest("exitcode.elf")));
    assert_eq!(result.stdout, "exiting with 3\n", "{}", result.stderr);
    assert_eq!(result.status, Some(7));
}

#[test]
fn memory_that_is_not_whole_pages_is_a_usage_error() {
    let result = run(moat()
        .args(["run", "--accel", "tcg", "--quiet", "--memory", "4194305b"])
        .arg("--kernel")
        .arg(guest("hello.elf")));
    assert_eq!(result.status, Some(2), "{}", result.stderr);
    assert_eq!(
        result.stderr.trim(),
        "moat: --memory: 4194305 bytes is not a whole number of 4096-byte pages"
    );
    assert_eq!(result.stdout, "");
}

#[test]
fn dropping_to_group_0_is_a_weakening_that_isolation_required_refuses() {
    if !common::root("dropping_to_group_0_is_a_weakening_that_isolation_required_refuses") {
        return;
    }
    let result = run(moat()
        .args(["run", "--accel", "kvm", "--isolation", "required"])
        .args(["--user", "nobody:0"])
        .arg("--kernel")
        .arg(guest("hello.elf")));
    assert_eq!(result.status, Some(2), "{}", result.stderr);
    assert!(
        result.stderr.contains("running in group 0"),
        "{}",
        result.stderr
    );
    assert_eq!(result.stdout, "");
    let check = run(moat()
        .args(["check", "--json", "--accel", "kvm", "--user", "nobody:0"])
        .arg("--kernel")
        .arg(guest("hello.elf")));
    assert!(check.stdout.contains("\"root-group\""), "{}", check.stdout);
}

#[test]
fn check_names_the_files_moat_writes_instead_of_denying_them() {
    let log = std::env::temp_dir().join(format!("moat-check-{}.log", std::process::id()));
    let result = run(moat()
        .args(["check", "--accel", "tcg"])
        .arg(format!("--serial=file:{}", log.display()))
        .arg("--kernel")
        .arg(guest("hello.elf")));
    assert!(
        result.stdout.contains(&format!(
            "the guest cannot write any host file; moat writes its output to serial log {}",
            log.display()
        )),
        "{}",
        result.stdout
    );
}
