//! The host side of the guest console: where the guest's serial output goes
//! and where host input comes from.
//!
//! A [`HostConsole`] is made once per moat run and outlives guest resets. Each
//! board built (at start and after every reset) makes its own UART, writes
//! through [`HostConsole::writer`], and attaches the UART as the console's
//! input with [`HostConsole::attach`], so the stdin thread always feeds the
//! UART of the machine that runs now.

use std::fs::File;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

/// Where the guest's transmitted bytes go.
pub enum SerialOutput {
    Stdout,
    File(File),
    Null,
}

impl Write for SerialOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            SerialOutput::Stdout => io::stdout().lock().write(buf),
            SerialOutput::File(file) => file.write(buf),
            SerialOutput::Null => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            SerialOutput::Stdout => io::stdout().lock().flush(),
            SerialOutput::File(file) => file.flush(),
            SerialOutput::Null => Ok(()),
        }
    }
}

/// A device that takes host console input (a UART's receive FIFO).
pub trait ConsoleInput: Send {
    /// Queues `bytes`; returns how many fitted. The caller retries the rest
    /// once the guest has read.
    fn enqueue_input(&mut self, bytes: &[u8]) -> usize;
}

/// The console backend of one moat run.
pub struct HostConsole {
    output: Mutex<SerialOutput>,
    input: Mutex<Option<Arc<Mutex<dyn ConsoleInput>>>>,
}

fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not silence the console.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl HostConsole {
    pub fn new(output: SerialOutput) -> Arc<HostConsole> {
        Arc::new(HostConsole {
            output: Mutex::new(output),
            input: Mutex::new(None),
        })
    }

    /// A writer for a UART's transmitter.
    pub fn writer(self: &Arc<Self>) -> ConsoleWriter {
        ConsoleWriter(self.clone())
    }

    /// Makes `device` the receiver of host input, replacing the previous
    /// board's UART.
    pub fn attach(&self, device: Arc<Mutex<dyn ConsoleInput>>) {
        *lock(&self.input) = Some(device);
    }

    /// Hands host input to the attached UART; returns how many bytes it took
    /// (0 when none is attached or its FIFO is full).
    pub fn push_input(&self, bytes: &[u8]) -> usize {
        let device = lock(&self.input).clone();
        match device {
            Some(device) => lock(&device).enqueue_input(bytes),
            None => 0,
        }
    }
}

/// Writes to a [`HostConsole`]'s output.
#[derive(Clone)]
pub struct ConsoleWriter(Arc<HostConsole>);

impl Write for ConsoleWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.0.output).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        lock(&self.0.output).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fifo(Vec<u8>);
    impl ConsoleInput for Fifo {
        fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
            let room = 4usize.saturating_sub(self.0.len()).min(bytes.len());
            self.0.extend_from_slice(&bytes[..room]);
            room
        }
    }

    #[test]
    fn input_goes_to_the_last_attached_device() {
        let console = HostConsole::new(SerialOutput::Null);
        assert_eq!(console.push_input(b"lost"), 0);
        let first = Arc::new(Mutex::new(Fifo(Vec::new())));
        console.attach(first.clone());
        assert_eq!(console.push_input(b"abcdef"), 4);
        let second = Arc::new(Mutex::new(Fifo(Vec::new())));
        console.attach(second.clone());
        assert_eq!(console.push_input(b"xy"), 2);
        assert_eq!(lock(&first).0, b"abcd");
        assert_eq!(lock(&second).0, b"xy");
    }
}
