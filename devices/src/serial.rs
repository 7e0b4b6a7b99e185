//! The 16550 UART (COM1 on the x86 board), built on vm-superio's register model.
//!
//! What the guest transmits goes to a writer (the [`crate::HostConsole`]);
//! what the host types is pushed in with [`Uart16550::enqueue_input`] by
//! whoever reads the host side.

use std::io::Write;

use vm_superio::{Serial, Trigger};

use crate::bus::BusDevice;
use crate::console::ConsoleInput;
use crate::irq::IrqLine;

/// The COM1 base port and the size of its register window.
pub const COM1_PORT: u64 = 0x3f8;
pub const UART_SIZE: u64 = 8;

/// Adapts an [`IrqLine`] to vm-superio's trigger. The PC's 16550 sits on an ISA
/// edge line, so each trigger is one pulse.
struct LineTrigger(IrqLine);

impl Trigger for LineTrigger {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        self.0.pulse();
        Ok(())
    }
}

/// A 16550A UART on a bus.
pub struct Uart16550 {
    serial: Serial<LineTrigger, vm_superio::serial::NoEvents, Box<dyn Write + Send>>,
}

impl Uart16550 {
    pub fn new(interrupt: IrqLine, output: impl Write + Send + 'static) -> Self {
        Uart16550 {
            serial: Serial::new(LineTrigger(interrupt), Box::new(output)),
        }
    }

    /// Queues host input for the guest to read. Returns how many bytes fitted in
    /// the receive FIFO; the caller retries the rest once the guest has read.
    pub fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        if self.serial.fifo_capacity() == 0 {
            return 0;
        }
        self.serial.enqueue_raw_bytes(bytes).unwrap_or(0)
    }
}

impl ConsoleInput for Uart16550 {
    fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        Uart16550::enqueue_input(self, bytes)
    }
}

impl BusDevice for Uart16550 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        // Registers are byte-wide; a wider access reads the register at its first
        // byte, and the rest as all-ones like the unmapped bytes they would be.
        data.fill(0xff);
        if let (Some(first), Ok(register)) = (data.first_mut(), u8::try_from(offset)) {
            *first = self.serial.read(register);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let (Some(&value), Ok(register)) = (data.first(), u8::try_from(offset)) else {
            return;
        };
        if let Err(error) = self.serial.write(register, value) {
            // The guest cannot be told; a broken output (a closed pipe) loses bytes
            // as a disconnected cable would.
            log::debug!("serial output failed: {error:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::SerialOutput;
    use std::fs::File;
    use std::io::{Read, Seek};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::irq::{IrqRouter, IrqSink, LineKind};

    /// Counts rising edges.
    struct CountingSink(Arc<AtomicUsize>);
    impl IrqSink for CountingSink {
        fn set_level(&self, _line: u32, high: bool) {
            if high {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// COM1's line on a router with no controller.
    fn unconnected() -> IrqLine {
        IrqRouter::new().line(4, LineKind::Edge)
    }

    const LSR: u64 = 5;
    const IER: u64 = 1;

    #[test]
    fn transmits_to_a_file() {
        let path = std::env::temp_dir().join(format!("moat-uart-test-{}", std::process::id()));
        let file = File::create(&path).unwrap();
        let mut uart = Uart16550::new(unconnected(), SerialOutput::File(file));
        for &byte in b"hi\n" {
            uart.write(0, &[byte]);
        }
        let mut written = String::new();
        let mut file = File::open(&path).unwrap();
        file.rewind().unwrap();
        file.read_to_string(&mut written).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(written, "hi\n");
    }

    #[test]
    fn receives_input_and_raises_interrupts() {
        let count = Arc::new(AtomicUsize::new(0));
        let router = IrqRouter::new();
        router.connect(Arc::new(CountingSink(count.clone())));
        let mut uart = Uart16550::new(router.line(4, LineKind::Edge), SerialOutput::Null);
        let mut lsr = [0u8];
        uart.read(LSR, &mut lsr);
        assert_eq!(lsr[0] & 1, 0, "no data ready yet");
        assert_ne!(lsr[0] & 0x20, 0, "transmitter holding register empty");

        uart.write(IER, &[1]); // receive-data interrupt on
        let before = count.load(Ordering::Relaxed);
        assert_eq!(uart.enqueue_input(b"ok"), 2);
        assert!(count.load(Ordering::Relaxed) > before);

        uart.read(LSR, &mut lsr);
        assert_eq!(lsr[0] & 1, 1, "data ready");
        let mut byte = [0u8];
        uart.read(0, &mut byte);
        assert_eq!(byte, *b"o");
        uart.read(0, &mut byte);
        assert_eq!(byte, *b"k");
    }

    #[test]
    fn full_fifo_takes_what_fits() {
        let mut uart = Uart16550::new(unconnected(), SerialOutput::Null);
        let taken = uart.enqueue_input(&[b'x'; 100]);
        assert!(taken > 0 && taken < 100);
        assert_eq!(uart.enqueue_input(b"y"), 0);
    }

    #[test]
    fn out_of_range_offsets_are_harmless() {
        let mut uart = Uart16550::new(unconnected(), SerialOutput::Null);
        let mut data = [0u8; 2];
        uart.read(u64::MAX, &mut data);
        assert_eq!(data, [0xff; 2]);
        uart.write(u64::MAX, &[1]);
        uart.write(0, &[]);
    }
}
