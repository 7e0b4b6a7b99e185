//! Shared helpers for the integration tests: run the `moat` binary on a guest
//! image and capture what a user would see.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const GUESTS: &str = "tests/guests/bin/x86_64";
pub const EXPECTED: &str = "tests/guests/x86_64/expected";

pub fn moat() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_moat"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command.stdin(Stdio::null());
    command
}

pub fn guest(name: &str) -> PathBuf {
    Path::new(GUESTS).join(name)
}

pub fn expected(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(EXPECTED)
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

/// What a skipped test needed, and the variable that makes its absence a
/// failure instead (`.ci/run` and `scripts/test` set them: CI has all three).
#[derive(Debug, Clone, Copy)]
pub enum Need {
    Kvm,
    Root,
    TestHooks,
}

impl Need {
    fn required_by(self) -> &'static str {
        match self {
            Need::Kvm => "MOAT_REQUIRE_KVM",
            Need::Root => "MOAT_REQUIRE_ROOT",
            Need::TestHooks => "MOAT_REQUIRE_TEST_HOOKS",
        }
    }
}

/// Reports that `test` (or part of it) did not run, and why. libtest captures
/// only `print!`/`eprint!`, so this writes to stderr itself: plain `cargo
/// test` shows the line between the "ok"s, and `scripts/test` counts them.
/// Where the need's `MOAT_REQUIRE_*` variable is 1, a skip is a failure.
pub fn skip(test: &str, need: Need, reason: &str) {
    use std::io::Write;
    let variable = need.required_by();
    if std::env::var_os(variable).is_some_and(|value| value == "1") {
        panic!("{test} cannot run ({reason}), and {variable}=1 says it must");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// Whether KVM can run guests here; reports the skip (see [`skip`]) when not.
pub fn kvm_usable(test: &str) -> bool {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => true,
        Err(error) => {
            skip(
                test,
                Need::Kvm,
                &format!("/dev/kvm cannot be opened ({error}); KVM tests need it"),
            );
            false
        }
    }
}

/// Whether the binary was built with the `test-hooks` feature; reports the
/// skip when not.
pub fn test_hooks(test: &str) -> bool {
    if !cfg!(feature = "test-hooks") {
        skip(
            test,
            Need::TestHooks,
            "needs `cargo test --features test-hooks` (scripts/test uses it)",
        );
    }
    cfg!(feature = "test-hooks")
}

pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(command: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("the moat binary runs");
    Run {
        status: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `moat run --accel ACCEL --kernel IMAGE EXTRA...`.
/// `--accel ACCEL`, quiet for TCG: its warning that emulation is no security
/// boundary has its own test (tests/policy.rs), and the guest tests compare
/// stderr exactly.
pub fn accel_args(accel: &str) -> Vec<&str> {
    let mut args = vec!["--accel", accel];
    if accel == "tcg" {
        args.push("--quiet");
    }
    args
}

/// Starts `moat run --accel ACCEL --kernel IMAGE` with every standard stream
/// piped, for tests that talk to the guest or signal moat.
pub fn spawn_guest(accel: &str, image: &str) -> std::process::Child {
    moat()
        .arg("run")
        .args(accel_args(accel))
        .arg("--kernel")
        .arg(guest(image))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub fn run_guest(accel: &str, image: &str, extra: &[&str]) -> Run {
    let image = guest(image);
    let mut command = moat();
    command
        .arg("run")
        .args(accel_args(accel))
        .arg("--kernel")
        .arg(&image)
        .args(extra);
    run(&mut command)
}

/// Whether the tests run as root; says loudly why a test is skipped when not.
pub fn root(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        skip(test, Need::Root, "needs root");
    }
    root
}

/// The echo guest running under `moat run EXTRA...`, past its "ready" line: a
/// live moat to inspect. End it with [`Echo::finish`].
pub struct Echo {
    child: Option<std::process::Child>,
    pid: u32,
}

impl Echo {
    pub fn start(extra: &[&str]) -> Echo {
        use std::io::Read;
        let mut child = moat()
            .args(["run", "--kernel"])
            .arg(guest("echo.elf"))
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = [0u8; 6];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut ready)
            .unwrap();
        assert_eq!(&ready, b"ready\n");
        let pid = child.id();
        Echo {
            child: Some(child),
            pid,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `/proc/<pid>/task/<tid>/status` of every thread.
    pub fn thread_status(&self) -> Vec<String> {
        let tasks = format!("/proc/{}/task", self.pid());
        std::fs::read_dir(tasks)
            .unwrap()
            .map(|task| std::fs::read_to_string(task.unwrap().path().join("status")).unwrap())
            .collect()
    }

    /// Asks the guest to quit ("q" on its serial input) and returns moat's
    /// exit status and stderr.
    pub fn finish(mut self) -> (Option<i32>, String) {
        use std::io::Write;
        let mut child = self.child.take().unwrap();
        child.stdin.take().unwrap().write_all(b"q").unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

impl Drop for Echo {
    /// A test that failed half-way does not leave the guest waiting forever.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The value of `field` in a /proc status text (`Seccomp:\t2` gives "2").
pub fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in\n{status}"))
        .trim()
}

/// What [`run_timed`] measured.
pub struct Timed {
    pub stdout: String,
    pub status: Option<i32>,
    pub wall: std::time::Duration,
    /// User plus system time of the process.
    pub cpu: std::time::Duration,
}

/// Runs `command` (stdout captured, stderr passed through) and measures its
/// wall time and its CPU time (user + system, from `wait4`).
// The child is reaped with wait4, which also returns its resource usage.
#[allow(clippy::zombie_processes)]
pub fn run_timed(command: &mut Command) -> Timed {
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};
    let started = Instant::now();
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
        text
    });
    let mut status = 0;
    // SAFETY: rusage is plain data the kernel fills; the child is ours and
    // not yet reaped (Child was consumed without waiting).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; wait4 writes only to `status` and `usage`.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid);
    let wall = started.elapsed();
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Timed {
        stdout: reader.join().unwrap(),
        status: std::process::ExitStatus::from_raw(status).code(),
        wall,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
    }
}
