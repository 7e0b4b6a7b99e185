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

/// Whether KVM can run guests here; says loudly why not when it cannot.
pub fn kvm_usable(test: &str) -> bool {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => true,
        Err(error) => {
            eprintln!("SKIPPED {test}: /dev/kvm cannot be opened ({error}); KVM tests need it");
            false
        }
    }
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
pub fn run_guest(accel: &str, image: &str, extra: &[&str]) -> Run {
    let image = guest(image);
    let mut command = moat();
    command
        .args(["run", "--accel", accel, "--kernel"])
        .arg(&image)
        .args(extra);
    run(&mut command)
}
