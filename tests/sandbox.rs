//! The sandbox, seen from outside: a live moat running the echo guest under KVM
//! is inspected through /proc, and a forbidden system call is seen to kill it.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::collections::BTreeSet;
use std::os::unix::process::{CommandExt, ExitStatusExt};

use common::{Echo, kvm_usable, moat, root, run_guest, status_field};

/// Every layer's effect that /proc shows, on every thread of a sandboxed moat.
#[test]
fn every_thread_is_confined() {
    if !kvm_usable("every_thread_is_confined") {
        return;
    }
    let echo = Echo::start(&["--accel", "kvm", "--verbose"]);
    let threads = echo.thread_status();
    // The vCPU (main) thread and the stdin thread, and any worker KVM itself
    // attaches to the process (kvm-nx-lpage-recovery), which inherits the rest.
    let names: Vec<&str> = threads
        .iter()
        .map(|status| status_field(status, "Name"))
        .collect();
    assert!(
        names.contains(&"moat") && names.contains(&"stdin"),
        "{names:?}"
    );
    for status in &threads {
        let name = status_field(status, "Name");
        assert_eq!(status_field(status, "Seccomp"), "2", "{name}");
        assert_eq!(status_field(status, "NoNewPrivs"), "1", "{name}");
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(
                status_field(status, set),
                "0000000000000000",
                "{set} of {name}"
            );
        }
    }

    let pid = echo.pid();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let limit = |name: &str| {
        let line = limits.lines().find(|line| line.starts_with(name)).unwrap();
        line[name.len()..]
            .split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(limit("Max core file size"), ["0", "0"]);
    assert_eq!(limit("Max open files"), ["64", "64"]);
    assert_eq!(limit("Max file size"), ["4294967296", "4294967296"]);

    // New namespaces, where this host allows them: the --verbose report below
    // must agree with what /proc shows.
    let namespaces_differ: Vec<bool> = ["mnt", "ipc", "uts", "net"]
        .iter()
        .map(|namespace| {
            let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{namespace}")).unwrap();
            let ours = std::fs::read_link(format!("/proc/self/ns/{namespace}")).unwrap();
            theirs != ours
        })
        .collect();

    // Every open descriptor is stdio or moat's own KVM handles.
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let entry = entry.unwrap();
        let fd: i32 = entry.file_name().to_str().unwrap().parse().unwrap();
        let target = std::fs::read_link(entry.path()).unwrap();
        let target = target.to_string_lossy();
        assert!(
            fd <= 2 || target == "/dev/kvm" || target.starts_with("anon_inode:kvm-"),
            "fd {fd} -> {target}"
        );
    }

    let (status, stderr) = echo.finish();
    assert_eq!(status, Some(1), "{stderr}");
    let report = stderr
        .lines()
        .find(|line| line.starts_with("moat: sandbox: "))
        .unwrap();
    if report.contains("namespaces applied") {
        assert_eq!(namespaces_differ, [true; 4], "{report}");
    } else {
        eprintln!("NOTE every_thread_is_confined: no namespaces here: {report}");
        assert_eq!(namespaces_differ, [false; 4], "{report}");
    }
}

#[test]
fn sandbox_off_leaves_moat_unconfined() {
    if !kvm_usable("sandbox_off_leaves_moat_unconfined") {
        return;
    }
    let echo = Echo::start(&["--accel", "kvm", "--sandbox", "off"]);
    for status in echo.thread_status() {
        assert_eq!(status_field(&status, "Seccomp"), "0");
    }
    let (status, _) = echo.finish();
    assert_eq!(status, Some(1));
}

#[test]
fn user_drops_to_nobody() {
    if !kvm_usable("user_drops_to_nobody") || !root("user_drops_to_nobody") {
        return;
    }
    let nobody = c"nobody";
    // SAFETY: getpwnam returns a pointer into static storage or null; it is read
    // at once, before any other lookup.
    let (uid, gid) = unsafe {
        let entry = libc::getpwnam(nobody.as_ptr());
        assert!(!entry.is_null(), "this host has no user nobody");
        ((*entry).pw_uid, (*entry).pw_gid)
    };
    let echo = Echo::start(&[
        "--accel",
        "kvm",
        "--user",
        "nobody",
        "--isolation",
        "required",
    ]);
    for status in echo.thread_status() {
        let ids = |field| {
            status_field(&status, field)
                .split_whitespace()
                .map(|id| id.parse::<u32>().unwrap())
                .collect::<Vec<_>>()
        };
        // Real, effective, saved and filesystem ids alike.
        assert_eq!(ids("Uid"), [uid; 4]);
        assert_eq!(ids("Gid"), [gid; 4]);
        assert_eq!(status_field(&status, "Groups"), "");
        assert_eq!(status_field(&status, "Seccomp"), "2");
    }
    let (status, stderr) = echo.finish();
    assert_eq!(status, Some(1), "{stderr}");
}

#[test]
fn inherited_descriptors_are_closed() {
    if !kvm_usable("inherited_descriptors_are_closed") {
        return;
    }
    let leaked = std::fs::File::open(env!("CARGO_MANIFEST_DIR")).unwrap();
    let mut command = moat();
    command
        .args(["run", "--accel", "kvm", "--kernel"])
        .arg(common::guest("echo.elf"));
    let leaked_fd = std::os::fd::AsRawFd::as_raw_fd(&leaked);
    // SAFETY: between fork and exec, dup2 is async-signal-safe and touches only
    // the child's descriptor table.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(leaked_fd, 42) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut ready).unwrap();
    let fds: BTreeSet<i32> = std::fs::read_dir(format!("/proc/{}/fd", child.id()))
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"q").unwrap();
    let status = child.wait().unwrap();
    assert!(!fds.contains(&42), "{fds:?}");
    assert_eq!(status.code(), Some(1));
}

#[test]
fn verbose_reports_each_layer() {
    if !kvm_usable("verbose_reports_each_layer") {
        return;
    }
    let result = run_guest("kvm", "hello.elf", &["--verbose"]);
    assert_eq!(result.status, Some(1), "{}", result.stderr);
    let lines: Vec<&str> = result.stderr.lines().collect();
    assert!(
        lines[0].starts_with("moat: isolation "),
        "{}",
        result.stderr
    );
    let sandbox = lines
        .iter()
        .find(|line| line.starts_with("moat: sandbox: "))
        .unwrap();
    for layer in [
        "inherited-fds",
        "rlimits",
        "namespaces",
        "landlock",
        "privileges",
        "no-new-privs",
        "seccomp",
    ] {
        assert!(sandbox.contains(&format!("{layer} ")), "{layer}: {sandbox}");
    }
    assert!(sandbox.contains("seccomp applied"), "{sandbox}");
}

/// With the test-hooks feature, moat makes a system call that no allow-list
/// has (socket) once sandboxed; the kernel must kill it with SIGSYS.
#[test]
fn a_forbidden_call_kills_moat() {
    if !common::test_hooks("a_forbidden_call_kills_moat") {
        return;
    }
    if !kvm_usable("a_forbidden_call_kills_moat") {
        return;
    }
    let output = moat()
        .args(["run", "--accel", "kvm", "--kernel"])
        .arg(common::guest("hello.elf"))
        .env("MOAT_TEST_FORBIDDEN_SYSCALL", "1")
        .output()
        .unwrap();
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSYS),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // Killed before the guest ran, and without a core dump.
    assert!(output.stdout.is_empty());
    assert!(!output.status.core_dumped());

    // The same hook without the sandbox: the call goes through.
    let output = moat()
        .args(["run", "--accel", "kvm", "--sandbox", "off", "--kernel"])
        .arg(common::guest("hello.elf"))
        .env("MOAT_TEST_FORBIDDEN_SYSCALL", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("forbidden system call returned"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A plain ELF64 guest that resets the machine at once (0xfe to port 0x64).
fn resetting_guest() -> Vec<u8> {
    const BASE: u64 = 0x10_0000;
    const HEADERS: u64 = 64 + 56;
    // mov al, 0xfe; out 0x64, al; hlt; jmp $-1
    let code = [0xb0, 0xfe, 0xe6, 0x64, 0xf4, 0xeb, 0xfd];
    let size = HEADERS + code.len() as u64;
    let mut elf = b"\x7fELF\x02\x01\x01\x00".to_vec();
    elf.extend([0; 8]);
    elf.extend(2u16.to_le_bytes()); // ET_EXEC
    elf.extend(0x3eu16.to_le_bytes()); // x86-64
    elf.extend(1u32.to_le_bytes());
    elf.extend((BASE + HEADERS).to_le_bytes()); // entry: the code
    elf.extend(64u64.to_le_bytes()); // program headers right after this one
    elf.extend(0u64.to_le_bytes()); // no sections
    elf.extend(0u32.to_le_bytes());
    for half in [64u16, 56, 1, 64, 0, 0] {
        elf.extend(half.to_le_bytes());
    }
    elf.extend(1u32.to_le_bytes()); // PT_LOAD
    elf.extend(5u32.to_le_bytes()); // R+X
    for word in [0, BASE, BASE, size, size, 0x1000] {
        elf.extend(word.to_le_bytes());
    }
    elf.extend(code);
    elf
}

/// A guest reset rebuilds the machine (new guest RAM, a new KVM VM and vCPU)
/// with the sandbox already on: the allow-lists must cover that too. The guest
/// resets forever; Ctrl-C ends it.
#[test]
fn guest_resets_inside_the_sandbox() {
    if !kvm_usable("guest_resets_inside_the_sandbox") {
        return;
    }
    let path = std::env::temp_dir().join(format!("moat-reset-{}.elf", std::process::id()));
    std::fs::write(&path, resetting_guest()).unwrap();
    // The log goes to a file: a pipe nobody reads could fill up and block moat.
    let log = path.with_extension("log");
    let mut child = moat()
        .args(["run", "--accel", "kvm", "--kernel"])
        .arg(&path)
        .env("MOAT_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // A signal that lands between a reset and the next boot can be missed:
    // send it until moat is gone.
    let status = loop {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
    };
    let stderr = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&log).unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}: {stderr}");
    assert!(
        stderr
            .matches("guest reset: restarting the machine")
            .count()
            >= 2,
        "{stderr}"
    );
}
