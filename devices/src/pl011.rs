//! The Arm PrimeCell PL011 UART (the console of the AArch64 `virt` board),
//! after the PL011 TRM (DDI0183).
//!
//! What the guest transmits goes to a writer (the [`crate::HostConsole`]) at
//! once, so the transmit FIFO is always empty; host input is queued into the
//! receive FIFO through [`ConsoleInput`]. The interrupt output is one level
//! line, high while `RIS & IMSC` is non-zero.
//!
//! Choices and simplifications:
//! - `UARTEN`, `TXE` and `RXE` in `UARTCR` are stored but not enforced, as in
//!   QEMU: firmware and bare-metal programs write `UARTDR` without enabling
//!   the UART, and the same guests must print here.
//! - Transmit interrupt: the TRM's is raised when the transmit FIFO drains
//!   through its trigger level, not by the level itself, so it is not set
//!   after reset. Every byte written drains at once and so sets `TXRIS`;
//!   `UARTICR` clears it. (Linux masks `TXIM` once it has nothing to send.)
//! - Receive interrupt: `RXRIS` is set when a byte arriving brings the FIFO to
//!   its trigger level (1 byte with the FIFO off), cleared when reads take it
//!   below. The receive timeout (`RTRIS`) is taken to have expired as soon as
//!   host input arrives (input comes in bursts), and clears when the FIFO
//!   empties.
//! - No line errors are ever received, so error bits (`UARTRSR`, bits 11:8 of
//!   `UARTDR`) read zero; no modem lines (CTS, DSR, DCD, RI read low); no DMA
//!   (`UARTDMACR` is stored only); no IrDA (`UARTILPR` is stored only).
//! - Loopback (`UARTCR.LBE`) sends transmitted bytes to the receive FIFO.

use std::collections::VecDeque;
use std::io::Write;

use crate::bus::BusDevice;
use crate::console::ConsoleInput;
use crate::irq::IrqLine;

/// The size of the PL011's register window.
pub const PL011_SIZE: u64 = 0x1000;

/// Receive FIFO depth with `LCR_H.FEN` set (the holding register otherwise).
const FIFO_DEPTH: usize = 32;

mod reg {
    pub const DR: u64 = 0x000;
    pub const RSR: u64 = 0x004;
    pub const FR: u64 = 0x018;
    pub const ILPR: u64 = 0x020;
    pub const IBRD: u64 = 0x024;
    pub const FBRD: u64 = 0x028;
    pub const LCR_H: u64 = 0x02c;
    pub const CR: u64 = 0x030;
    pub const IFLS: u64 = 0x034;
    pub const IMSC: u64 = 0x038;
    pub const RIS: u64 = 0x03c;
    pub const MIS: u64 = 0x040;
    pub const ICR: u64 = 0x044;
    pub const DMACR: u64 = 0x048;
    pub const PERIPH_ID: u64 = 0xfe0;
    pub const CELL_ID: u64 = 0xff0;
}

const FR_RXFE: u32 = 1 << 4;
const FR_RXFF: u32 = 1 << 6;
const FR_TXFE: u32 = 1 << 7;

const LCR_H_FEN: u32 = 1 << 4;
const CR_LBE: u32 = 1 << 7;

const INT_RX: u32 = 1 << 4;
const INT_TX: u32 = 1 << 5;
const INT_RT: u32 = 1 << 6;
const INT_ALL: u32 = 0x7ff;

/// Identification bytes at 0xfe0..0xfff, as Linux's AMBA bus probes them
/// (peripheral 0x00041011: an Arm PL011 r1p4).
const PERIPH_ID: [u8; 4] = [0x11, 0x10, 0x14, 0x00];
/// The PrimeCell identification every AMBA device shares.
pub(crate) const PRIMECELL_ID: [u8; 4] = [0x0d, 0xf0, 0x05, 0xb1];

/// One PL011.
pub struct Pl011 {
    irq: IrqLine,
    output: Box<dyn Write + Send>,
    /// Received characters with their error bits (always zero) above bit 7.
    rx: VecDeque<u16>,
    rsr: u32,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    ris: u32,
    dmacr: u32,
    line_high: bool,
}

impl Pl011 {
    /// A PL011 in its reset state whose interrupt output is `irq` (a level
    /// line) and whose transmitter writes to `output`.
    pub fn new(irq: IrqLine, output: impl Write + Send + 'static) -> Self {
        Pl011 {
            irq,
            output: Box::new(output),
            rx: VecDeque::with_capacity(FIFO_DEPTH),
            rsr: 0,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            // TXE and RXE are set at reset; UARTEN is not.
            cr: 0x300,
            // Both trigger levels at half full.
            ifls: 0x12,
            imsc: 0,
            ris: 0,
            dmacr: 0,
            line_high: false,
        }
    }

    fn fifo_depth(&self) -> usize {
        if self.lcr_h & LCR_H_FEN != 0 {
            FIFO_DEPTH
        } else {
            1
        }
    }

    /// How many received bytes raise the receive interrupt.
    fn rx_trigger(&self) -> usize {
        if self.lcr_h & LCR_H_FEN == 0 {
            return 1;
        }
        // 1/8, 1/4, 1/2, 3/4 and 7/8 full; the reserved encodings act as 1/2.
        match (self.ifls >> 3) & 7 {
            0 => FIFO_DEPTH / 8,
            1 => FIFO_DEPTH / 4,
            3 => FIFO_DEPTH * 3 / 4,
            4 => FIFO_DEPTH * 7 / 8,
            _ => FIFO_DEPTH / 2,
        }
    }

    /// Queues received bytes; returns how many fitted.
    fn receive(&mut self, bytes: &[u8]) -> usize {
        let room = self.fifo_depth().saturating_sub(self.rx.len());
        let taken = room.min(bytes.len());
        self.rx.extend(bytes[..taken].iter().map(|&b| u16::from(b)));
        if taken > 0 {
            self.ris |= INT_RT;
            if self.rx.len() >= self.rx_trigger() {
                self.ris |= INT_RX;
            }
            self.update_line();
        }
        taken
    }

    fn transmit(&mut self, byte: u8) {
        if self.cr & CR_LBE != 0 {
            self.receive(&[byte]);
        } else if let Err(error) = self.output.write_all(&[byte]) {
            // A broken output (a closed pipe) loses bytes, as a cable would.
            log::debug!("pl011: output failed: {error}");
        }
        self.ris |= INT_TX;
        self.update_line();
    }

    fn read_data(&mut self) -> u32 {
        let Some(entry) = self.rx.pop_front() else {
            return 0;
        };
        self.rsr = u32::from(entry >> 8) & 0xf;
        if self.rx.len() < self.rx_trigger() {
            self.ris &= !INT_RX;
        }
        if self.rx.is_empty() {
            self.ris &= !INT_RT;
        }
        self.update_line();
        u32::from(entry)
    }

    fn flags(&self) -> u32 {
        let mut fr = FR_TXFE;
        if self.rx.is_empty() {
            fr |= FR_RXFE;
        }
        if self.rx.len() >= self.fifo_depth() {
            fr |= FR_RXFF;
        }
        // The transmitter is never full (TXFF) nor busy (BUSY).
        fr
    }

    fn update_line(&mut self) {
        let high = self.ris & self.imsc != 0;
        if high != self.line_high {
            self.line_high = high;
            if high {
                self.irq.raise();
            } else {
                self.irq.lower();
            }
        }
    }

    /// The 32-bit register at `offset` (word aligned); `side_effects` is false
    /// for partial reads that must not pop the FIFO.
    fn read_register(&mut self, offset: u64, side_effects: bool) -> u32 {
        match offset {
            reg::DR if side_effects => self.read_data(),
            reg::DR => self.rx.front().map_or(0, |&e| u32::from(e)),
            reg::RSR => self.rsr,
            reg::FR => self.flags(),
            reg::ILPR => self.ilpr,
            reg::IBRD => self.ibrd,
            reg::FBRD => self.fbrd,
            reg::LCR_H => self.lcr_h,
            reg::CR => self.cr,
            reg::IFLS => self.ifls,
            reg::IMSC => self.imsc,
            reg::RIS => self.ris,
            reg::MIS => self.ris & self.imsc,
            reg::DMACR => self.dmacr,
            0xfe0..=0xfec => u32::from(PERIPH_ID[((offset - reg::PERIPH_ID) / 4) as usize]),
            0xff0..=0xffc => u32::from(PRIMECELL_ID[((offset - reg::CELL_ID) / 4) as usize]),
            _ => {
                log::debug!("pl011: read of unknown register {offset:#x}");
                0
            }
        }
    }

    fn write_register(&mut self, offset: u64, value: u32) {
        match offset {
            reg::DR => self.transmit(value as u8),
            // Any write to UARTECR clears the error flags.
            reg::RSR => self.rsr = 0,
            reg::ILPR => self.ilpr = value & 0xff,
            reg::IBRD => self.ibrd = value & 0xffff,
            reg::FBRD => self.fbrd = value & 0x3f,
            reg::LCR_H => {
                let fifo_was_on = self.lcr_h & LCR_H_FEN != 0;
                self.lcr_h = value & 0xff;
                if fifo_was_on != (self.lcr_h & LCR_H_FEN != 0) {
                    // Turning the FIFO on or off flushes it.
                    self.rx.clear();
                    self.ris &= !(INT_RX | INT_RT);
                    self.update_line();
                }
            }
            reg::CR => self.cr = value & 0xff87,
            reg::IFLS => self.ifls = value & 0x3f,
            reg::IMSC => {
                self.imsc = value & INT_ALL;
                self.update_line();
            }
            reg::ICR => {
                self.ris &= !(value & INT_ALL);
                self.update_line();
            }
            reg::DMACR => self.dmacr = value & 7,
            _ => log::debug!(
                "pl011: write of {value:#x} to read-only or unknown register {offset:#x} ignored"
            ),
        }
    }
}

impl ConsoleInput for Pl011 {
    fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        self.receive(bytes)
    }
}

impl BusDevice for Pl011 {
    /// Registers are 32 bits wide; 8- and 16-bit reads see part of one (Linux
    /// reads the Arm PL011 with 16-bit accesses). Only a read that includes
    /// the low byte of `UARTDR` pops the FIFO.
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = match word_access(offset, data.len()) {
            Some((word, shift)) => self.read_register(word, shift == 0) >> shift,
            None => {
                log::debug!("pl011: {}-byte read at {offset:#x} ignored", data.len());
                0
            }
        };
        fill(data, u64::from(value));
    }

    /// Writes narrower than 32 bits at a register's start write the register
    /// zero-extended; other writes are ignored.
    fn write(&mut self, offset: u64, data: &[u8]) {
        match word_access(offset, data.len()) {
            Some((word, 0)) => self.write_register(word, le_value(data) as u32),
            _ => log::debug!("pl011: {}-byte write at {offset:#x} ignored", data.len()),
        }
    }
}

/// The word-aligned register offset and the bit shift of an access of `len`
/// bytes at `offset` that stays inside one 32-bit register.
pub(crate) fn word_access(offset: u64, len: usize) -> Option<(u64, u32)> {
    let within = offset & 3;
    let len = len as u64;
    (len > 0 && len <= 4 && within + len <= 4).then_some((offset & !3, (within * 8) as u32))
}

/// Stores `value` little-endian into `data`, zero beyond eight bytes.
pub(crate) fn fill(data: &mut [u8], value: u64) {
    let bytes = value.to_le_bytes();
    for (i, byte) in data.iter_mut().enumerate() {
        *byte = bytes.get(i).copied().unwrap_or(0);
    }
}

/// The little-endian value of up to eight bytes.
pub(crate) fn le_value(data: &[u8]) -> u64 {
    data.iter()
        .take(8)
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::{IrqRouter, LineKind};
    use std::sync::{Arc, Mutex};

    /// A writer the test can look into.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn uart() -> (Pl011, Sink, Arc<IrqRouter>) {
        let router = IrqRouter::new();
        let sink = Sink::default();
        let uart = Pl011::new(router.line(1, LineKind::Level), sink.clone());
        (uart, sink, router)
    }

    fn r32(uart: &mut Pl011, offset: u64) -> u32 {
        let mut data = [0u8; 4];
        uart.read(offset, &mut data);
        u32::from_le_bytes(data)
    }

    fn w32(uart: &mut Pl011, offset: u64, value: u32) {
        uart.write(offset, &value.to_le_bytes());
    }

    #[test]
    fn transmits_to_the_writer_in_every_width() {
        let (mut uart, sink, _) = uart();
        w32(&mut uart, reg::DR, u32::from(b'h'));
        uart.write(reg::DR, b"i");
        uart.write(reg::DR, &u16::from(b'\n').to_le_bytes());
        assert_eq!(*sink.0.lock().unwrap(), b"hi\n");
        assert_eq!(r32(&mut uart, reg::FR), FR_TXFE | FR_RXFE);
    }

    #[test]
    fn receive_fifo_depth_and_flags() {
        let (mut uart, _, _) = uart();
        // FIFO off: a single holding register.
        assert_eq!(uart.enqueue_input(b"ab"), 1);
        assert_eq!(r32(&mut uart, reg::FR) & (FR_RXFF | FR_RXFE), FR_RXFF);
        assert_eq!(r32(&mut uart, reg::DR), u32::from(b'a'));
        assert_ne!(r32(&mut uart, reg::FR) & FR_RXFE, 0);
        // FIFO on: 32 entries, in order.
        w32(&mut uart, reg::LCR_H, LCR_H_FEN | 0x60);
        assert_eq!(uart.enqueue_input(&[b'x'; 40]), 32);
        assert_ne!(r32(&mut uart, reg::FR) & FR_RXFF, 0);
        assert_eq!(uart.enqueue_input(b"y"), 0);
        for _ in 0..32 {
            assert_eq!(r32(&mut uart, reg::DR), u32::from(b'x'));
        }
        assert_eq!(r32(&mut uart, reg::FR), FR_TXFE | FR_RXFE);
        // An empty FIFO reads 0.
        assert_eq!(r32(&mut uart, reg::DR), 0);
        // A 16-bit read pops too; a read of DR's upper half does not.
        uart.enqueue_input(b"pq");
        let mut half = [0u8; 2];
        uart.read(reg::DR + 2, &mut half);
        uart.read(reg::DR, &mut half);
        assert_eq!(half, [b'p', 0]);
        assert_eq!(r32(&mut uart, reg::DR), u32::from(b'q'));
    }

    #[test]
    fn interrupt_level_follows_ris_and_imsc() {
        let (mut uart, _, router) = uart();
        w32(&mut uart, reg::LCR_H, LCR_H_FEN);
        // Nothing before data arrives, even unmasked.
        w32(&mut uart, reg::IMSC, INT_RX | INT_RT | INT_TX);
        assert!(!router.level(1));
        assert_eq!(r32(&mut uart, reg::RIS), 0);

        // One byte: below the half-full RX trigger, so only the timeout.
        uart.enqueue_input(b"a");
        assert_eq!(r32(&mut uart, reg::RIS), INT_RT);
        assert!(router.level(1));
        r32(&mut uart, reg::DR);
        assert_eq!(r32(&mut uart, reg::RIS), 0);
        assert!(!router.level(1));

        // Sixteen bytes reach the trigger level.
        uart.enqueue_input(&[b'b'; 16]);
        assert_eq!(r32(&mut uart, reg::RIS), INT_RX | INT_RT);
        // Masking RX and RT lowers the line; the raw status remains.
        w32(&mut uart, reg::IMSC, INT_TX);
        assert!(!router.level(1));
        assert_eq!(r32(&mut uart, reg::MIS), 0);
        // Reading below the trigger clears RX.
        r32(&mut uart, reg::DR);
        assert_eq!(r32(&mut uart, reg::RIS), INT_RT);

        // Transmitting sets TX; ICR clears it.
        w32(&mut uart, reg::DR, u32::from(b'z'));
        assert_eq!(r32(&mut uart, reg::MIS), INT_TX);
        assert!(router.level(1));
        w32(&mut uart, reg::ICR, INT_TX);
        assert_eq!(r32(&mut uart, reg::MIS), 0);
        assert!(!router.level(1));
    }

    #[test]
    fn loopback_receives_what_is_sent() {
        let (mut uart, sink, _) = uart();
        w32(&mut uart, reg::CR, 0x301 | CR_LBE);
        w32(&mut uart, reg::DR, u32::from(b'L'));
        assert!(sink.0.lock().unwrap().is_empty());
        assert_eq!(r32(&mut uart, reg::DR), u32::from(b'L'));
    }

    #[test]
    fn identification_and_reset_values() {
        let (mut uart, _, _) = uart();
        let ids: Vec<u32> = (0..8).map(|i| r32(&mut uart, 0xfe0 + 4 * i)).collect();
        assert_eq!(ids, [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
        assert_eq!(r32(&mut uart, reg::CR), 0x300);
        assert_eq!(r32(&mut uart, reg::IFLS), 0x12);
        w32(&mut uart, reg::IBRD, 0x1_0027);
        w32(&mut uart, reg::FBRD, 0xff);
        assert_eq!(r32(&mut uart, reg::IBRD), 0x27);
        assert_eq!(r32(&mut uart, reg::FBRD), 0x3f);
    }

    #[test]
    fn every_offset_and_width_is_harmless() {
        let (mut uart, _, _) = uart();
        uart.enqueue_input(b"data");
        for offset in 0..0x1000u64 {
            for width in [1usize, 2, 4, 8] {
                let mut data = vec![0u8; width];
                uart.read(offset, &mut data);
                // Keep the enables as they are so the loop stays quiet.
                if offset & !3 != reg::CR {
                    uart.write(offset, &vec![0xa5; width]);
                }
            }
        }
        uart.read(u64::MAX, &mut [0u8; 4]);
        uart.write(u64::MAX - 1, &[1, 2, 3, 4]);
        uart.write(0, &[]);
    }
}
