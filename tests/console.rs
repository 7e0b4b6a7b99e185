//! The serial console as a user meets it: through a terminal (raw, Ctrl-A
//! commands, the mode restored) and through a pipe that ends.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{accel_args, guest, moat};

/// KVM where it works, else TCG: the console is the same, so nothing is
/// skipped.
fn accel() -> &'static str {
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if kvm { "kvm" } else { "tcg" }
}

/// A pseudo-terminal: moat gets the slave as stdin, stdout and stderr; the
/// test types on the master and collects what appears there.
struct Terminal {
    master: File,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn open() -> (Terminal, OwnedFd) {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two descriptors; the name, termios and window
        // size pointers may be null.
        let opened = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here.
        let (master, slave) = unsafe { (File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let collected = output.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 256];
            // Ends with EIO once every slave descriptor is closed.
            while let Ok(count) = reader.read(&mut buffer) {
                if count == 0 {
                    break;
                }
                collected
                    .lock()
                    .unwrap()
                    .extend_from_slice(&buffer[..count]);
            }
        });
        (Terminal { master, output }, slave)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits up to 10 s for `expected` to appear.
    fn wait_for(&self, expected: &str) {
        let start = Instant::now();
        while !self.text().contains(expected) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "waited for {expected:?}, the terminal shows {:?}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn type_bytes(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    /// The terminal's local modes (ICANON, ECHO, ...).
    fn local_modes(&self) -> libc::tcflag_t {
        use std::os::fd::AsRawFd;
        // SAFETY: termios is plain data that tcgetattr fills.
        let mut mode: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: as above; the master reports the pair's settings.
        let got = unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut mode) };
        assert_eq!(got, 0);
        mode.c_lflag
    }
}

/// The echo guest with its console on the terminal's slave side.
fn echo_on_terminal(accel: &str) -> (Terminal, Child) {
    let (terminal, slave) = Terminal::open();
    let child = moat()
        .arg("run")
        .args(accel_args(accel))
        .arg("--kernel")
        .arg(guest("echo.elf"))
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    (terminal, child)
}

fn wait_with_timeout(child: &mut Child) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("moat did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_terminal_is_raw_and_ctrl_a_x_quits() {
    let accel = accel();
    let (mut terminal, mut child) = echo_on_terminal(accel);
    let cooked = libc::ICANON | libc::ECHO;
    terminal.wait_for("ready\r\n");
    assert_eq!(terminal.local_modes() & cooked, 0, "the terminal is raw");
    // One key, no Enter: the guest upper-cases it at once, and nothing echoes
    // it locally.
    terminal.type_bytes(b"m");
    terminal.wait_for("M");
    assert!(!terminal.text().contains('m'), "{:?}", terminal.text());
    terminal.type_bytes(b"\x01h");
    terminal.wait_for("Ctrl-A x");
    // Ctrl-A Ctrl-A sends Ctrl-A itself, which the guest echoes unchanged.
    terminal.type_bytes(b"\x01\x01");
    terminal.wait_for("\x01");
    terminal.type_bytes(b"\x01x");
    assert_eq!(wait_with_timeout(&mut child), Some(0));
    terminal.wait_for("moat: terminated (Ctrl-A x)");
    assert!(!terminal.text().contains("bye"), "the guest was not asked");
    assert_eq!(
        terminal.local_modes() & cooked,
        cooked,
        "the mode is restored"
    );
}

#[test]
fn a_signal_restores_the_terminal() {
    let accel = accel();
    let (terminal, mut child) = echo_on_terminal(accel);
    terminal.wait_for("ready\r\n");
    let cooked = libc::ICANON | libc::ECHO;
    assert_eq!(terminal.local_modes() & cooked, 0);
    // SAFETY: kill takes a pid and a signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_with_timeout(&mut child), Some(128 + libc::SIGTERM));
    assert_eq!(terminal.local_modes() & cooked, cooked);
}

/// At the end of a pipe the guest gets no more input and runs on, as under
/// QEMU; moat is stopped from outside. Bytes pass through unchanged: Ctrl-A
/// means nothing on a pipe.
#[test]
fn the_end_of_a_pipe_stops_input_and_the_guest_runs_on() {
    let accel = accel();
    let mut child = moat()
        .arg("run")
        .args(accel_args(accel))
        .arg("--kernel")
        .arg(guest("echo.elf"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"ab\x01x").unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = [0u8; 10];
    stdout.read_exact(&mut seen).unwrap();
    assert_eq!(&seen, b"ready\nAB\x01X");
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "moat ended at EOF");
    // SAFETY: kill takes a pid and a signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_with_timeout(&mut child), Some(128 + libc::SIGTERM));
}
