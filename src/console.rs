//! The host side of the guest console, and host signals that end the VM.
//!
//! With a terminal on stdin, the console runs it raw (keys reach the guest
//! without Enter) and reads QEMU's Ctrl-A commands; [`RawTerminal`] puts the
//! terminal back on every way out: its drop, the termination signals' handler,
//! and a panic hook.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use devices::{HostConsole, VmLifecycle};
use seccompiler::BpfProgram;

/// The byte that starts a console command, as in QEMU: Ctrl-A.
const ESCAPE: u8 = 0x01;

/// What `Ctrl-A h` prints.
const ESCAPE_HELP: &str = "\
moat console keys:
  Ctrl-A h       print this help
  Ctrl-A x       exit moat (status 0)
  Ctrl-A Ctrl-A  send Ctrl-A to the guest
";

/// What a byte of terminal input means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// Goes to the guest.
    Guest(u8),
    /// A command follows, or an unknown one was dropped.
    Nothing,
    Help,
    Quit,
}

/// QEMU's Ctrl-A escapes over terminal input.
#[derive(Debug, Default)]
struct Escapes {
    pending: bool,
}

impl Escapes {
    fn key(&mut self, byte: u8) -> Key {
        if !self.pending {
            if byte == ESCAPE {
                self.pending = true;
                return Key::Nothing;
            }
            return Key::Guest(byte);
        }
        self.pending = false;
        match byte {
            ESCAPE => Key::Guest(ESCAPE),
            b'x' | b'X' => Key::Quit,
            b'h' | b'H' | b'?' => Key::Help,
            // QEMU drops an unknown command too.
            _ => Key::Nothing,
        }
    }
}

/// Hands `bytes` to the console, waiting while the guest's receive FIFO is full.
fn push_all(console: &HostConsole, mut pending: &[u8]) {
    while !pending.is_empty() {
        let taken = console.push_input(pending);
        pending = &pending[taken..];
        if taken == 0 {
            // The guest has not drained its receive FIFO yet.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Feeds stdin to the console (whichever UART the current board attached)
/// from a thread of its own. With `escapes` (stdin is a raw terminal), Ctrl-A
/// starts a command as in QEMU: `x` ends the VM through the lifecycle with
/// status 0, `h` prints the keys on stderr, a second Ctrl-A is sent as is.
/// At the end of stdin the thread stops: the guest gets no more input and is
/// not told, as with QEMU's stdio backend. The thread blocks SIGINT and
/// SIGTERM so those always reach the vCPU thread, interrupting KVM_RUN. With a
/// seccomp `filter`, the thread installs it before reading anything; this returns
/// once the thread has, with the thread's error if it could not (the thread then
/// ends without reading).
pub fn spawn_stdin_reader(
    console: Arc<HostConsole>,
    filter: Option<BpfProgram>,
    escapes: Option<Arc<VmLifecycle>>,
) -> Result<(), String> {
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            block_termination_signals();
            if let Some(filter) = filter {
                let installed = crate::sandbox::seccomp::install(&filter);
                let failed = installed.is_err();
                let _ = ready_tx.send(installed);
                if failed {
                    return;
                }
            } else {
                let _ = ready_tx.send(Ok(()));
            }
            drop(ready_tx);
            let mut stdin = std::io::stdin().lock();
            let mut buffer = [0u8; 64];
            let mut keys = Escapes::default();
            loop {
                let count = match stdin.read(&mut buffer) {
                    Ok(0) | Err(_) => return,
                    Ok(count) => count,
                };
                let Some(lifecycle) = &escapes else {
                    push_all(&console, &buffer[..count]);
                    continue;
                };
                let mut guest = Vec::with_capacity(count);
                for &byte in &buffer[..count] {
                    match keys.key(byte) {
                        Key::Guest(byte) => guest.push(byte),
                        Key::Nothing => {}
                        Key::Help => {
                            let _ = std::io::stderr().write_all(ESCAPE_HELP.as_bytes());
                        }
                        Key::Quit => {
                            push_all(&console, &guest);
                            let _ = std::io::stderr().write_all(b"moat: terminated (Ctrl-A x)\n");
                            lifecycle.request_shutdown(0);
                            return;
                        }
                    }
                }
                push_all(&console, &guest);
            }
        });
    match spawned {
        Ok(_) => ready_rx
            .recv()
            .unwrap_or_else(|_| Err("the stdin thread ended before starting".to_string()))
            .map_err(|error| format!("stdin thread: {error}")),
        Err(error) => {
            log::warn!("no serial input: cannot start the stdin thread: {error}");
            Ok(())
        }
    }
}

fn block_termination_signals() {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use, and
    // pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

static LIFECYCLE: OnceLock<Arc<VmLifecycle>> = OnceLock::new();
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_termination_signal(signal: libc::c_int) {
    // Only atomics and ioctl here: this runs in signal context.
    restore_terminal();
    SIGNAL.store(signal, Ordering::SeqCst);
    if let Some(lifecycle) = LIFECYCLE.get() {
        lifecycle.request_shutdown(128 + signal);
    }
}

/// Makes Ctrl-C and SIGTERM end the VM cleanly with status 128 + signal. The
/// handler is installed without SA_RESTART so a vCPU blocked in KVM_RUN returns
/// with EINTR and sees the request.
pub fn install_signal_handlers(lifecycle: Arc<VmLifecycle>) {
    let _ = LIFECYCLE.set(lifecycle);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the sigaction struct is zero-initialised plain data; the handler
        // only touches atomics and a OnceLock that was set before installation.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_termination_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = 0;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The signal that ended the run, if one did.
pub fn termination_signal() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// The terminal's mode before moat made it raw.
static SAVED_TERMINAL: OnceLock<libc::termios> = OnceLock::new();
/// Whether the terminal is raw now (and so needs restoring).
static TERMINAL_RAW: AtomicBool = AtomicBool::new(false);

/// Puts the saved mode back, if moat changed it. Async-signal-safe (one atomic
/// swap and one ioctl), so signal handlers and panic hooks may call it; only
/// the first call restores.
pub fn restore_terminal() {
    if TERMINAL_RAW.swap(false, Ordering::SeqCst)
        && let Some(saved) = SAVED_TERMINAL.get()
    {
        // SAFETY: TCSETS reads one termios, which `saved` is (the same layout
        // TCGETS filled).
        unsafe {
            libc::ioctl(
                libc::STDIN_FILENO,
                libc::TCSETS,
                saved as *const libc::termios,
            )
        };
    }
}

/// stdin's terminal in raw mode for as long as this lives.
pub struct RawTerminal(());

impl RawTerminal {
    /// Makes stdin raw if it is a terminal, as QEMU's stdio backend does: no
    /// echo, no line editing, no CR/LF translation of input and no flow
    /// control, so every key reaches the guest as typed. Output processing
    /// stays (a guest's bare LF still starts a new line) and so does ISIG
    /// (Ctrl-C stops moat). `None` when stdin is not a terminal.
    pub fn enter() -> Option<RawTerminal> {
        // SAFETY: termios is plain data that TCGETS fills; isatty takes an fd.
        let mut mode: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let is_tty = unsafe { libc::isatty(libc::STDIN_FILENO) } == 1
            && unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TCGETS, &mut mode) } == 0;
        if !is_tty {
            return None;
        }
        if SAVED_TERMINAL.set(mode).is_err() {
            // Entered once before in this process: keep the first saved mode.
            log::debug!("the terminal mode was saved before");
        }
        install_panic_restore();
        mode.c_iflag &= !(libc::IGNBRK
            | libc::BRKINT
            | libc::PARMRK
            | libc::ISTRIP
            | libc::INLCR
            | libc::IGNCR
            | libc::ICRNL
            | libc::IXON);
        mode.c_oflag |= libc::OPOST;
        mode.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::IEXTEN);
        mode.c_cflag &= !(libc::CSIZE | libc::PARENB);
        mode.c_cflag |= libc::CS8;
        mode.c_cc[libc::VMIN] = 1;
        mode.c_cc[libc::VTIME] = 0;
        TERMINAL_RAW.store(true, Ordering::SeqCst);
        // SAFETY: TCSETS reads the termios we own.
        if unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TCSETS, &mode) } != 0 {
            TERMINAL_RAW.store(false, Ordering::SeqCst);
            log::warn!(
                "cannot make the terminal raw: {}",
                std::io::Error::last_os_error()
            );
            return None;
        }
        Some(RawTerminal(()))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// A panic anywhere puts the terminal back before the report is printed.
fn install_panic_restore() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(input: &[u8]) -> Vec<Key> {
        let mut escapes = Escapes::default();
        input.iter().map(|&byte| escapes.key(byte)).collect()
    }

    #[test]
    fn ctrl_a_commands_as_in_qemu() {
        assert_eq!(keys(b"ab"), [Key::Guest(b'a'), Key::Guest(b'b')]);
        assert_eq!(keys(b"\x01x"), [Key::Nothing, Key::Quit]);
        assert_eq!(keys(b"\x01h"), [Key::Nothing, Key::Help]);
        assert_eq!(
            keys(b"\x01\x01a"),
            [Key::Nothing, Key::Guest(1), Key::Guest(b'a')]
        );
        assert_eq!(
            keys(b"\x01zq"),
            [Key::Nothing, Key::Nothing, Key::Guest(b'q')]
        );
    }
}
