//! The host side of the guest console, and host signals that end the VM.

use std::io::Read;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use devices::{HostConsole, VmLifecycle};
use seccompiler::BpfProgram;

/// Feeds stdin to the console (whichever UART the current board attached)
/// from a thread of its own. The thread blocks SIGINT and
/// SIGTERM so those always reach the vCPU thread, interrupting KVM_RUN. With a
/// seccomp `filter`, the thread installs it before reading anything; this returns
/// once the thread has, with the thread's error if it could not (the thread then
/// ends without reading).
pub fn spawn_stdin_reader(
    console: Arc<HostConsole>,
    filter: Option<BpfProgram>,
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
            loop {
                let count = match stdin.read(&mut buffer) {
                    Ok(0) | Err(_) => return,
                    Ok(count) => count,
                };
                let mut pending = &buffer[..count];
                while !pending.is_empty() {
                    let taken = console.push_input(pending);
                    pending = &pending[taken..];
                    if taken == 0 {
                        // The guest has not drained its receive FIFO yet.
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
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
    // Only atomics here: this runs in signal context.
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
