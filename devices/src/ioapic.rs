//! moat's model of the Intel 82093AA I/O APIC, used under TCG (under KVM the
//! kernel's is used).
//!
//! The I/O APIC turns device interrupt lines (pins) into messages for the local
//! APICs, one redirection entry per pin. Two registers are mapped at
//! [`IOAPIC_BASE`]: IOREGSEL at 0x00 selects an indirect register and IOWIN at
//! 0x10 reads or writes it (32-bit). Indirect registers: 0x00 ID, 0x01 version
//! ([`IOAPIC_VERSION`]: 24 pins, no EOI register), 0x02 arbitration ID, and from
//! 0x10 two words per redirection entry.
//!
//! Pins carry the asserted state of a line, whatever the entry's polarity bit
//! says: the board describes polarity to the guest (ACPI, MP table), and a device
//! model asserts its line the same way for either.
//!
//! Lock order: the register state has its own mutex, and messages are collected
//! under it and handed to the delivery callback only after it is released, so the
//! callback may take local APIC locks (and those paths may call
//! [`IoApic::end_of_interrupt`]) without deadlock.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::bus::BusDevice;
use crate::lapic::{DeliveryMode, Destination, Ipi};

/// Guest-physical address of the I/O APIC, and the size of the range a board
/// maps (accesses outside the two registers read zero).
pub const IOAPIC_BASE: u64 = 0xfec0_0000;
pub const IOAPIC_SIZE: u64 = 0x1000;
/// Version 0x11 with 24 redirection entries (the field holds the highest index).
pub const IOAPIC_VERSION: u32 = 0x0017_0011;
pub const IOAPIC_PINS: usize = 24;

const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const REG_ID: u8 = 0x00;
const REG_VERSION: u8 = 0x01;
const REG_ARBITRATION: u8 = 0x02;
const REG_REDIRECTION: u8 = 0x10;

const ENTRY_DEST_LOGICAL: u64 = 1 << 11;
const ENTRY_REMOTE_IRR: u64 = 1 << 14;
const ENTRY_TRIGGER_LEVEL: u64 = 1 << 15;
const ENTRY_MASKED: u64 = 1 << 16;
/// Writable bits of an entry: vector, delivery mode, destination mode,
/// polarity, trigger mode, mask and the destination byte. Delivery status
/// (bit 12, always idle here) and remote IRR are read-only.
const ENTRY_WRITABLE: u64 = 0xff00_0000_0001_afff;

/// Receives the messages the I/O APIC sends; normally
/// [`crate::lapic::ApicBus::deliver_message`].
pub type DeliverMessage = Arc<dyn Fn(Ipi) + Send + Sync>;

struct Registers {
    select: u8,
    /// Bits 27:24 of the ID register.
    id: u32,
    entries: [u64; IOAPIC_PINS],
    /// Bit n: pin n is asserted.
    asserted: u32,
}

impl Registers {
    fn new() -> Self {
        Registers {
            select: 0,
            id: 0,
            entries: [ENTRY_MASKED; IOAPIC_PINS],
            asserted: 0,
        }
    }

    fn is_asserted(&self, pin: usize) -> bool {
        self.asserted & (1 << pin) != 0
    }

    /// Sends pin `pin`'s message if its entry allows it now. Edge entries are
    /// serviced only on a rising edge (the caller's job to check); level entries
    /// while asserted and until the EOI clears remote IRR.
    fn service(&mut self, pin: usize, out: &mut Vec<Ipi>) {
        let entry = self.entries[pin];
        if entry & ENTRY_MASKED != 0 {
            return;
        }
        if entry & ENTRY_TRIGGER_LEVEL != 0 {
            if !self.is_asserted(pin) || entry & ENTRY_REMOTE_IRR != 0 {
                return;
            }
            self.entries[pin] |= ENTRY_REMOTE_IRR;
        }
        match message(entry) {
            Some(ipi) => out.push(ipi),
            None => log::debug!("ioapic: pin {pin} has a reserved delivery mode ({entry:#x})"),
        }
    }

    fn read(&self) -> u32 {
        match self.select {
            REG_ID | REG_ARBITRATION => self.id,
            REG_VERSION => IOAPIC_VERSION,
            select => match entry_word(select) {
                Some((pin, high)) => (self.entries[pin] >> if high { 32 } else { 0 }) as u32,
                None => {
                    log::debug!("ioapic: read of unknown register {select:#x}");
                    0
                }
            },
        }
    }

    fn write(&mut self, value: u32, out: &mut Vec<Ipi>) {
        match self.select {
            REG_ID => self.id = value & 0x0f00_0000,
            select => match entry_word(select) {
                Some((pin, high)) => self.write_entry(pin, high, value, out),
                None => log::debug!(
                    "ioapic: write of {value:#x} to read-only or unknown register {select:#x} ignored"
                ),
            },
        }
    }

    fn write_entry(&mut self, pin: usize, high: bool, value: u32, out: &mut Vec<Ipi>) {
        let old = self.entries[pin];
        let (shift, word_mask) = if high {
            (32, 0xffff_ffff_0000_0000)
        } else {
            (0, 0x0000_0000_ffff_ffff)
        };
        let writable = ENTRY_WRITABLE & word_mask;
        let mut entry = (old & !writable) | ((u64::from(value) << shift) & writable);
        if entry & ENTRY_TRIGGER_LEVEL == 0 {
            // Remote IRR is defined only for level-triggered entries.
            entry &= !ENTRY_REMOTE_IRR;
        }
        self.entries[pin] = entry;
        // Unmasking (or switching to level) an asserted level pin sends it now.
        if entry & ENTRY_TRIGGER_LEVEL != 0 {
            self.service(pin, out);
        }
    }
}

/// The redirection entry and word that an indirect register index selects.
fn entry_word(select: u8) -> Option<(usize, bool)> {
    let index = usize::from(select.checked_sub(REG_REDIRECTION)?);
    let pin = index / 2;
    (pin < IOAPIC_PINS).then_some((pin, index % 2 == 1))
}

/// The message a redirection entry sends.
fn message(entry: u64) -> Option<Ipi> {
    let mode = DeliveryMode::from_bits((entry >> 8) as u32)?;
    let target = (entry >> 56) as u8;
    Some(Ipi {
        vector: entry as u8,
        mode,
        dest: if entry & ENTRY_DEST_LOGICAL != 0 {
            Destination::Logical(target)
        } else {
            Destination::Physical(target)
        },
        level: true,
        trigger_level: entry & ENTRY_TRIGGER_LEVEL != 0,
    })
}

/// The I/O APIC.
pub struct IoApic {
    registers: Mutex<Registers>,
    deliver: DeliverMessage,
}

impl IoApic {
    /// An I/O APIC in its reset state (ID 0, every entry masked) sending its
    /// messages to `deliver`.
    pub fn new(deliver: DeliverMessage) -> Self {
        IoApic {
            registers: Mutex::new(Registers::new()),
            deliver,
        }
    }

    /// Machine reset. Pin levels are the devices' and stay as they are.
    pub fn reset(&self) {
        let mut registers = self.lock();
        let asserted = registers.asserted;
        *registers = Registers::new();
        registers.asserted = asserted;
    }

    /// Sets the level of an interrupt pin: `true` is asserted.
    pub fn set_level(&self, pin: u32, asserted: bool) {
        let pin = pin as usize;
        if pin >= IOAPIC_PINS {
            log::debug!("ioapic: no pin {pin}");
            return;
        }
        let mut out = Vec::new();
        {
            let mut registers = self.lock();
            let was = registers.is_asserted(pin);
            if asserted {
                registers.asserted |= 1 << pin;
            } else {
                registers.asserted &= !(1 << pin);
            }
            let level = registers.entries[pin] & ENTRY_TRIGGER_LEVEL != 0;
            if asserted && (level || !was) {
                registers.service(pin, &mut out);
            }
        }
        self.send(out);
    }

    /// A local APIC ended level-triggered interrupt `vector`: clears remote IRR
    /// of the level entries with that vector, sends them again if their pins are
    /// still asserted, and returns the pins it cleared (whose resample callbacks
    /// the caller runs).
    pub fn end_of_interrupt(&self, vector: u8) -> Vec<u32> {
        let mut cleared = Vec::new();
        let mut out = Vec::new();
        {
            let mut registers = self.lock();
            for pin in 0..IOAPIC_PINS {
                let entry = registers.entries[pin];
                let matches = entry as u8 == vector
                    && entry & ENTRY_TRIGGER_LEVEL != 0
                    && entry & ENTRY_REMOTE_IRR != 0;
                if matches {
                    registers.entries[pin] &= !ENTRY_REMOTE_IRR;
                    cleared.push(pin as u32);
                    registers.service(pin, &mut out);
                }
            }
        }
        self.send(out);
        cleared
    }

    /// The redirection entry of `pin`, for diagnostics and tests.
    pub fn entry(&self, pin: u32) -> Option<u64> {
        self.lock().entries.get(pin as usize).copied()
    }

    /// Reads the register window. IOREGSEL reads at any width; IOWIN only as an
    /// aligned 32-bit word; everything else reads zero.
    pub fn mmio_read(&self, offset: u64, data: &mut [u8]) {
        let registers = self.lock();
        let value = match (offset, data.len()) {
            (IOREGSEL, _) => u32::from(registers.select),
            (IOWIN, 4) => registers.read(),
            _ => {
                log::debug!("ioapic: {}-byte read at {offset:#x} ignored", data.len());
                0
            }
        };
        let bytes = value.to_le_bytes();
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = bytes.get(i).copied().unwrap_or(0);
        }
    }

    /// Writes the register window; see [`IoApic::mmio_read`] for the widths.
    pub fn mmio_write(&self, offset: u64, data: &[u8]) {
        let mut out = Vec::new();
        {
            let mut registers = self.lock();
            match (offset, <[u8; 4]>::try_from(data)) {
                (IOREGSEL, _) if !data.is_empty() => registers.select = data[0],
                (IOWIN, Ok(bytes)) => registers.write(u32::from_le_bytes(bytes), &mut out),
                _ => log::debug!("ioapic: {}-byte write at {offset:#x} ignored", data.len()),
            }
        }
        self.send(out);
    }

    fn send(&self, messages: Vec<Ipi>) {
        for ipi in messages {
            (self.deliver)(ipi);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registers> {
        self.registers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The I/O APIC as a bus device, for a board to map at [`IOAPIC_BASE`]. The
/// bus's own lock around it is held while messages go out; that lock is taken
/// only by guest accesses to the I/O APIC, never from the local APIC side, so it
/// adds no cycle.
pub struct IoApicMmio(pub Arc<IoApic>);

impl BusDevice for IoApicMmio {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        self.0.mmio_read(offset, data);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        self.0.mmio_write(offset, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ioapic() -> (IoApic, Arc<Mutex<Vec<Ipi>>>) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let sink = sent.clone();
        let ioapic = IoApic::new(Arc::new(move |ipi| sink.lock().unwrap().push(ipi)));
        (ioapic, sent)
    }

    fn take(sent: &Mutex<Vec<Ipi>>) -> Vec<Ipi> {
        std::mem::take(&mut *sent.lock().unwrap())
    }

    fn write_reg(ioapic: &IoApic, select: u8, value: u32) {
        ioapic.mmio_write(IOREGSEL, &u32::from(select).to_le_bytes());
        ioapic.mmio_write(IOWIN, &value.to_le_bytes());
    }

    fn read_reg(ioapic: &IoApic, select: u8) -> u32 {
        ioapic.mmio_write(IOREGSEL, &[select]);
        let mut data = [0; 4];
        ioapic.mmio_read(IOWIN, &mut data);
        u32::from_le_bytes(data)
    }

    /// Programs pin `pin` with `low` and destination APIC `dest`.
    fn program(ioapic: &IoApic, pin: u8, low: u32, dest: u8) {
        write_reg(ioapic, REG_REDIRECTION + 2 * pin + 1, u32::from(dest) << 24);
        write_reg(ioapic, REG_REDIRECTION + 2 * pin, low);
    }

    #[test]
    fn reset_values_and_identification() {
        let (ioapic, _) = ioapic();
        assert_eq!(read_reg(&ioapic, REG_VERSION), 0x0017_0011);
        assert_eq!(read_reg(&ioapic, REG_ID), 0);
        write_reg(&ioapic, REG_ID, 0xffff_ffff);
        assert_eq!(read_reg(&ioapic, REG_ID), 0x0f00_0000);
        assert_eq!(read_reg(&ioapic, REG_ARBITRATION), 0x0f00_0000);
        for pin in 0..24 {
            assert_eq!(read_reg(&ioapic, REG_REDIRECTION + 2 * pin), 0x1_0000);
            assert_eq!(read_reg(&ioapic, REG_REDIRECTION + 2 * pin + 1), 0);
        }
        // Past the last entry, and other offsets and widths, read zero.
        assert_eq!(read_reg(&ioapic, REG_REDIRECTION + 48), 0);
        let mut data = [0xaa; 4];
        ioapic.mmio_read(0x20, &mut data);
        assert_eq!(data, [0; 4]);
        let mut byte = [0xaa; 1];
        ioapic.mmio_read(IOWIN, &mut byte);
        assert_eq!(byte, [0]);
        // IOREGSEL reads back.
        ioapic.mmio_write(IOREGSEL, &[0x13, 0, 0, 0]);
        ioapic.mmio_read(IOREGSEL, &mut data);
        assert_eq!(data, [0x13, 0, 0, 0]);
    }

    #[test]
    fn read_only_bits_stay() {
        let (ioapic, _) = ioapic();
        write_reg(&ioapic, REG_REDIRECTION, 0xffff_ffff);
        // Delivery status and remote IRR stay clear; the reserved high bits too.
        assert_eq!(read_reg(&ioapic, REG_REDIRECTION), 0x0001_afff);
        write_reg(&ioapic, REG_REDIRECTION + 1, 0xffff_ffff);
        assert_eq!(read_reg(&ioapic, REG_REDIRECTION + 1), 0xff00_0000);
    }

    #[test]
    fn edge_pins_send_on_rising_edges_only() {
        let (ioapic, sent) = ioapic();
        ioapic.set_level(4, true);
        assert!(take(&sent).is_empty(), "masked at reset");
        ioapic.set_level(4, false);
        program(&ioapic, 4, 0x0000_0024, 1);
        ioapic.set_level(4, true);
        ioapic.set_level(4, true);
        assert_eq!(
            take(&sent),
            vec![Ipi {
                vector: 0x24,
                mode: DeliveryMode::Fixed,
                dest: Destination::Physical(1),
                level: true,
                trigger_level: false
            }]
        );
        ioapic.set_level(4, false);
        ioapic.set_level(4, true);
        assert_eq!(take(&sent).len(), 1);
        // An edge entry has no remote IRR, so EOI clears nothing.
        assert!(ioapic.end_of_interrupt(0x24).is_empty());
    }

    #[test]
    fn level_pins_wait_for_eoi() {
        let (ioapic, sent) = ioapic();
        program(&ioapic, 10, 0x0000_a831, 0x3); // level, logical, vector 0x31
        ioapic.set_level(10, true);
        let ipis = take(&sent);
        assert_eq!(ipis.len(), 1);
        assert_eq!(ipis[0].dest, Destination::Logical(3));
        assert!(ipis[0].trigger_level);
        assert_ne!(ioapic.entry(10).unwrap() & ENTRY_REMOTE_IRR, 0);
        // Still asserted, remote IRR set: nothing more.
        ioapic.set_level(10, true);
        assert!(take(&sent).is_empty());
        // EOI for another vector does nothing; for ours it re-sends (still high).
        assert!(ioapic.end_of_interrupt(0x32).is_empty());
        assert_eq!(ioapic.end_of_interrupt(0x31), vec![10]);
        assert_eq!(take(&sent).len(), 1);
        // The device lowers the line; the EOI clears remote IRR for good.
        ioapic.set_level(10, false);
        assert_eq!(ioapic.end_of_interrupt(0x31), vec![10]);
        assert!(take(&sent).is_empty());
        assert_eq!(ioapic.entry(10).unwrap() & ENTRY_REMOTE_IRR, 0);
    }

    #[test]
    fn masking_holds_level_pins_until_unmasked() {
        let (ioapic, sent) = ioapic();
        program(&ioapic, 3, 0x0001_8040, 0); // level, masked
        ioapic.set_level(3, true);
        assert!(take(&sent).is_empty());
        program(&ioapic, 3, 0x0000_8040, 0); // unmask while asserted
        assert_eq!(take(&sent).len(), 1);
        // Switching the entry to edge drops remote IRR.
        program(&ioapic, 3, 0x0000_0040, 0);
        assert_eq!(ioapic.entry(3).unwrap() & ENTRY_REMOTE_IRR, 0);
    }

    #[test]
    fn bad_pins_and_reset() {
        let (ioapic, sent) = ioapic();
        ioapic.set_level(24, true);
        ioapic.set_level(u32::MAX, true);
        assert!(take(&sent).is_empty());
        program(&ioapic, 1, 0x31, 0);
        ioapic.reset();
        assert_eq!(ioapic.entry(1), Some(ENTRY_MASKED));
        assert_eq!(ioapic.entry(24), None);
    }
}
