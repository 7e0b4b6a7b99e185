//! The PC's pair of 8259A programmable interrupt controllers, with the PIIX's
//! edge/level control registers.
//!
//! ```text
//!   lines 0-7  ──► master (ports 0x20-0x21) ──► INTR to CPU 0
//!                     ▲ IR2
//!   lines 8-15 ──► slave  (ports 0xa0-0xa1)
//!   ELCR 0x4d0 (lines 0-7), 0x4d1 (lines 8-15): 1 = level-triggered
//! ```
//!
//! Edge lines latch a rising edge in the IRR until the CPU acknowledges it;
//! level lines (ELCR bit set) request for as long as their input is high, and
//! their end of interrupt is reported to the board, which passes it to
//! [`IrqRouter::end_of_interrupt`](crate::IrqRouter::end_of_interrupt) so level
//! devices can resample. As on the PIIX, lines 0, 1, 2, 8 and 13 are always
//! edge-triggered.
//!
//! # Locking
//!
//! The pair lives behind a mutex ([`SharedPic`]). It never calls its INTR or EOI
//! callbacks itself: state changes queue [`Notices`], and whoever holds the lock
//! takes them with [`Pic8259Pair::take_notices`] and runs them after unlocking.
//! [`SharedPic`] and [`PicPorts`] do this for every operation, so the callbacks
//! may lock the PIC again (the EOI callback does, through the router and the
//! PIC's [`IrqSink`]).

use std::sync::{Arc, Mutex, MutexGuard};

use crate::bus::BusDevice;
use crate::irq::IrqSink;

/// The master's command/data ports.
pub const MASTER_PIC_PORT: u64 = 0x20;
/// The slave's command/data ports.
pub const SLAVE_PIC_PORT: u64 = 0xa0;
/// Size of each chip's port window.
pub const PIC_SIZE: u64 = 2;
/// The two edge/level control registers.
pub const ELCR_PORT: u64 = 0x4d0;
pub const ELCR_SIZE: u64 = 2;

/// The master's input the slave's output drives.
const CASCADE: u8 = 2;
/// ELCR bits that can be set: not lines 0, 1, 2 (timer, keyboard, cascade), 8
/// (RTC) nor 13 (FPU error), as on the PIIX.
const ELCR_WRITABLE: [u8; 2] = [0xf8, 0xde];

/// Called when INTR goes from low to high.
pub type IntrFn = Arc<dyn Fn() + Send + Sync>;
/// Called with the line number when the guest ends an interrupt on a level line.
pub type EoiFn = Arc<dyn Fn(u32) + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InitStep {
    Ready,
    Icw2,
    Icw3,
    Icw4,
}

/// One 8259A.
#[derive(Debug, Clone)]
struct Chip {
    is_master: bool,
    irr: u8,
    isr: u8,
    imr: u8,
    /// The inputs' current levels, for edge detection.
    input: u8,
    elcr: u8,
    /// The line with the highest priority is `priority_add` (rotation).
    priority_add: u8,
    vector_base: u8,
    init_step: InitStep,
    needs_icw4: bool,
    single: bool,
    auto_eoi: bool,
    rotate_on_auto_eoi: bool,
    special_fully_nested: bool,
    special_mask: bool,
    read_isr: bool,
    poll: bool,
}

impl Chip {
    fn new(is_master: bool) -> Self {
        Chip {
            is_master,
            irr: 0,
            isr: 0,
            imr: 0,
            input: 0,
            elcr: 0,
            priority_add: 0,
            vector_base: 0,
            init_step: InitStep::Ready,
            needs_icw4: false,
            single: false,
            auto_eoi: false,
            rotate_on_auto_eoi: false,
            special_fully_nested: false,
            special_mask: false,
            read_isr: false,
            poll: false,
        }
    }

    fn set_input(&mut self, irq: u8, high: bool) {
        let mask = 1 << irq;
        if self.elcr & mask != 0 {
            if high {
                self.irr |= mask;
            } else {
                self.irr &= !mask;
            }
        } else if high && self.input & mask == 0 {
            self.irr |= mask;
        }
        if high {
            self.input |= mask;
        } else {
            self.input &= !mask;
        }
    }

    /// The priority level (0 highest) of the best line in `lines`.
    fn best_priority(&self, lines: u8) -> Option<u8> {
        (0..8).find(|&p| lines & (1 << ((p + self.priority_add) & 7)) != 0)
    }

    fn line_of(&self, priority: u8) -> u8 {
        (priority + self.priority_add) & 7
    }

    /// The line this chip would present to the CPU now, if any: the best
    /// unmasked request that beats every interrupt in service.
    fn highest_request(&self) -> Option<u8> {
        let request = self.best_priority(self.irr & !self.imr)?;
        let mut in_service = self.isr;
        if self.special_mask {
            in_service &= !self.imr;
        }
        if self.is_master && self.special_fully_nested {
            // The slave's own priorities decide among its lines.
            in_service &= !(1 << CASCADE);
        }
        let current = self.best_priority(in_service).unwrap_or(8);
        (request < current).then(|| self.line_of(request))
    }

    /// The INTA cycle for `irq`. Returns whether it ended the interrupt at once
    /// (auto-EOI).
    fn acknowledge(&mut self, irq: u8) -> bool {
        let mask = 1 << irq;
        if self.elcr & mask == 0 {
            self.irr &= !mask;
        }
        if self.auto_eoi {
            if self.rotate_on_auto_eoi {
                self.priority_add = (irq + 1) & 7;
            }
            true
        } else {
            self.isr |= mask;
            false
        }
    }

    /// The poll command's answer, which also acknowledges the line it reports.
    fn poll_read(&mut self) -> (u8, Option<u8>) {
        self.poll = false;
        match self.highest_request() {
            Some(irq) => {
                let ended = self.acknowledge(irq).then_some(irq);
                (0x80 | irq, ended)
            }
            None => (0, None),
        }
    }

    fn read(&mut self, offset: u64) -> (u8, Option<u8>) {
        if self.poll {
            return self.poll_read();
        }
        match offset {
            0 if self.read_isr => (self.isr, None),
            0 => (self.irr, None),
            _ => (self.imr, None),
        }
    }

    /// Handles a port write. Returns the line whose interrupt it ended, if any.
    fn write(&mut self, offset: u64, value: u8) -> Option<u8> {
        if offset == 0 {
            if value & 0x10 != 0 {
                self.icw1(value);
                None
            } else if value & 0x08 != 0 {
                self.ocw3(value);
                None
            } else {
                self.ocw2(value)
            }
        } else {
            match self.init_step {
                InitStep::Icw2 => {
                    self.vector_base = value & 0xf8;
                    self.init_step = match (self.single, self.needs_icw4) {
                        (false, _) => InitStep::Icw3,
                        (true, true) => InitStep::Icw4,
                        (true, false) => InitStep::Ready,
                    };
                }
                InitStep::Icw3 => {
                    // The PC's wiring is fixed (slave on IR2, identity 2); the
                    // value only confirms it.
                    let expected = if self.is_master {
                        1 << CASCADE
                    } else {
                        CASCADE
                    };
                    if value != expected {
                        log::debug!("8259 ICW3 {value:#x} ignored, the cascade is on IR2");
                    }
                    self.init_step = if self.needs_icw4 {
                        InitStep::Icw4
                    } else {
                        InitStep::Ready
                    };
                }
                InitStep::Icw4 => {
                    if value & 0x01 == 0 {
                        log::debug!("8259 ICW4 asks for MCS-80 mode; using 8086 vectors");
                    }
                    self.auto_eoi = value & 0x02 != 0;
                    self.special_fully_nested = value & 0x10 != 0;
                    self.init_step = InitStep::Ready;
                }
                InitStep::Ready => self.imr = value,
            }
            None
        }
    }

    fn icw1(&mut self, value: u8) {
        if value & 0x08 != 0 {
            log::debug!("8259 ICW1 level-triggered mode ignored; the ELCR selects level lines");
        }
        // Initialization clears the edge-sense latches: an edge input must go
        // low then high again to request.
        self.irr &= self.elcr;
        self.input &= self.elcr;
        self.isr = 0;
        self.imr = 0;
        self.priority_add = 0;
        self.vector_base = 0;
        self.auto_eoi = false;
        self.rotate_on_auto_eoi = false;
        self.special_fully_nested = false;
        self.special_mask = false;
        self.read_isr = false;
        self.poll = false;
        self.needs_icw4 = value & 0x01 != 0;
        self.single = value & 0x02 != 0;
        self.init_step = InitStep::Icw2;
    }

    fn ocw2(&mut self, value: u8) -> Option<u8> {
        let level = value & 7;
        match value >> 5 {
            0b000 => self.rotate_on_auto_eoi = false,
            0b100 => self.rotate_on_auto_eoi = true,
            0b001 => return self.nonspecific_eoi(false),
            0b101 => return self.nonspecific_eoi(true),
            0b011 => return self.specific_eoi(level, false),
            0b111 => return self.specific_eoi(level, true),
            0b110 => self.priority_add = (level + 1) & 7,
            _ => {}
        }
        None
    }

    fn nonspecific_eoi(&mut self, rotate: bool) -> Option<u8> {
        let priority = self.best_priority(self.isr)?;
        let irq = self.line_of(priority);
        self.specific_eoi(irq, rotate)
    }

    fn specific_eoi(&mut self, irq: u8, rotate: bool) -> Option<u8> {
        let mask = 1 << irq;
        if rotate {
            self.priority_add = (irq + 1) & 7;
        }
        if self.isr & mask == 0 {
            return None;
        }
        self.isr &= !mask;
        Some(irq)
    }

    fn ocw3(&mut self, value: u8) {
        if value & 0x04 != 0 {
            self.poll = true;
        }
        if value & 0x02 != 0 {
            self.read_isr = value & 0x01 != 0;
        }
        if value & 0x40 != 0 {
            self.special_mask = value & 0x20 != 0;
        }
    }
}

/// A callback the PIC owes, to run once its lock is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    Intr,
    Eoi(u32),
}

/// Callbacks taken out of a locked [`Pic8259Pair`]; [`Notices::run`] them after
/// unlocking it.
#[must_use = "the PIC's callbacks are lost unless the notices are run"]
pub struct Notices {
    list: Vec<Notice>,
    intr: IntrFn,
    eoi: Option<EoiFn>,
}

impl Notices {
    pub fn run(self) {
        for notice in self.list {
            match notice {
                Notice::Intr => (self.intr)(),
                Notice::Eoi(line) => {
                    if let Some(eoi) = &self.eoi {
                        eoi(line);
                    }
                }
            }
        }
    }
}

/// Which of the pair's port windows a [`PicPorts`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PicWindow {
    /// 0x20-0x21.
    Master,
    /// 0xa0-0xa1.
    Slave,
    /// 0x4d0-0x4d1.
    Elcr,
}

/// The master and slave 8259A of a PC.
pub struct Pic8259Pair {
    chips: [Chip; 2],
    intr: bool,
    on_intr: IntrFn,
    on_eoi: Option<EoiFn>,
    notices: Vec<Notice>,
}

impl Pic8259Pair {
    /// A pair in its power-on state. `intr` runs when INTR rises (the board
    /// kicks CPU 0); `eoi` runs with the line number when the guest ends an
    /// interrupt on a level line (the board calls the router's
    /// `end_of_interrupt`, holding the router through a `Weak`: the router holds
    /// the PIC as its sink).
    pub fn new(intr: IntrFn, eoi: Option<EoiFn>) -> Self {
        Pic8259Pair {
            chips: [Chip::new(true), Chip::new(false)],
            intr: false,
            on_intr: intr,
            on_eoi: eoi,
            notices: Vec::new(),
        }
    }

    /// Back to the power-on state. Input levels are kept: they belong to the
    /// devices.
    pub fn reset(&mut self) {
        for (index, chip) in self.chips.iter_mut().enumerate() {
            let input = chip.input;
            *chip = Chip::new(index == 0);
            chip.input = input;
        }
        self.update();
    }

    /// Sets input `line` (0-15). Line 2 is the cascade and ignores the router.
    pub fn set_level(&mut self, line: u32, high: bool) {
        let (Ok(line), true) = (u8::try_from(line), line < 16) else {
            log::debug!("8259 pair has no input {line}");
            return;
        };
        if line == CASCADE {
            log::debug!("8259 input 2 is the cascade; level ignored");
            return;
        }
        self.chips[usize::from(line / 8)].set_input(line % 8, high);
        self.update();
    }

    /// The INTR output.
    pub fn interrupt_pending(&self) -> bool {
        self.intr
    }

    /// The CPU's interrupt acknowledge, if INTR is high: the vector to deliver.
    pub fn acknowledge(&mut self) -> Option<u8> {
        self.intr.then(|| self.inta())
    }

    /// An INTA cycle whatever INTR is, as when the CPU has already committed to
    /// taking an interrupt whose request went away: then the vector is the
    /// spurious IRQ 7 (or 15, through the cascade), and no ISR bit is set.
    pub fn inta(&mut self) -> u8 {
        let vector = match self.chips[0].highest_request() {
            None => self.chips[0].vector_base | 7,
            Some(irq) => {
                self.acknowledge_on(0, irq);
                if irq == CASCADE && !self.chips[0].single {
                    match self.chips[1].highest_request() {
                        Some(slave_irq) => {
                            self.acknowledge_on(1, slave_irq);
                            self.chips[1].vector_base | slave_irq
                        }
                        None => self.chips[1].vector_base | 7,
                    }
                } else {
                    self.chips[0].vector_base | irq
                }
            }
        };
        self.update();
        vector
    }

    fn acknowledge_on(&mut self, chip: usize, irq: u8) {
        if self.chips[chip].acknowledge(irq) {
            self.note_eoi(chip, irq);
        }
    }

    /// A guest read of `window` at `offset` (0 or 1).
    pub fn read_port(&mut self, window: PicWindow, offset: u64) -> u8 {
        if offset >= 2 {
            log::debug!("8259 {window:?} read at offset {offset} outside its two ports");
            return 0xff;
        }
        let value = match window {
            PicWindow::Elcr => self.chips[usize::from(offset == 1)].elcr,
            PicWindow::Master | PicWindow::Slave => {
                let index = usize::from(window == PicWindow::Slave);
                let (value, ended) = self.chips[index].read(offset);
                if let Some(irq) = ended {
                    self.note_eoi(index, irq);
                }
                value
            }
        };
        self.update();
        value
    }

    /// A guest write of `value` to `window` at `offset` (0 or 1).
    pub fn write_port(&mut self, window: PicWindow, offset: u64, value: u8) {
        if offset >= 2 {
            log::debug!("8259 {window:?} write at offset {offset} outside its two ports");
            return;
        }
        match window {
            PicWindow::Elcr => {
                let index = usize::from(offset == 1);
                let chip = &mut self.chips[index];
                chip.elcr = value & ELCR_WRITABLE[index];
                // A line switched to level requests exactly while its input is
                // high.
                chip.irr = (chip.irr & !chip.elcr) | (chip.input & chip.elcr);
            }
            PicWindow::Master | PicWindow::Slave => {
                let index = usize::from(window == PicWindow::Slave);
                if let Some(irq) = self.chips[index].write(offset, value) {
                    self.note_eoi(index, irq);
                }
            }
        }
        self.update();
    }

    /// The callbacks owed so far; run them once the pair's lock is released.
    pub fn take_notices(&mut self) -> Notices {
        Notices {
            list: std::mem::take(&mut self.notices),
            intr: self.on_intr.clone(),
            eoi: self.on_eoi.clone(),
        }
    }

    fn note_eoi(&mut self, chip: usize, irq: u8) {
        if self.chips[chip].elcr & (1 << irq) != 0 {
            self.notices
                .push(Notice::Eoi(chip as u32 * 8 + u32::from(irq)));
        }
    }

    /// Recomputes the cascade and INTR after any change.
    fn update(&mut self) {
        let [master, slave] = &mut self.chips;
        if !master.single {
            // The slave's INT output is a level on the master's IR2.
            if slave.highest_request().is_some() {
                master.irr |= 1 << CASCADE;
            } else {
                master.irr &= !(1 << CASCADE);
            }
        }
        let intr = master.highest_request().is_some();
        if intr && !self.intr {
            self.notices.push(Notice::Intr);
        }
        self.intr = intr;
    }
}

/// The pair as the board shares it: every operation runs the PIC's callbacks
/// after releasing its lock.
#[derive(Clone)]
pub struct SharedPic(pub Arc<Mutex<Pic8259Pair>>);

impl SharedPic {
    pub fn new(pair: Pic8259Pair) -> Self {
        SharedPic(Arc::new(Mutex::new(pair)))
    }

    /// Locks the pair directly. Whoever does must run
    /// [`Pic8259Pair::take_notices`] after unlocking.
    pub fn lock(&self) -> MutexGuard<'_, Pic8259Pair> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with<R>(&self, f: impl FnOnce(&mut Pic8259Pair) -> R) -> R {
        let (result, notices) = {
            let mut pair = self.lock();
            let result = f(&mut pair);
            (result, pair.take_notices())
        };
        notices.run();
        result
    }

    pub fn set_level(&self, line: u32, high: bool) {
        self.with(|pair| pair.set_level(line, high));
    }

    pub fn interrupt_pending(&self) -> bool {
        self.lock().interrupt_pending()
    }

    pub fn acknowledge(&self) -> Option<u8> {
        self.with(Pic8259Pair::acknowledge)
    }

    pub fn inta(&self) -> u8 {
        self.with(Pic8259Pair::inta)
    }

    pub fn reset(&self) {
        self.with(Pic8259Pair::reset);
    }

    /// The bus device for one of the pair's port windows.
    pub fn ports(&self, window: PicWindow) -> PicPorts {
        PicPorts {
            pic: self.clone(),
            window,
        }
    }
}

impl IrqSink for SharedPic {
    fn set_level(&self, line: u32, high: bool) {
        SharedPic::set_level(self, line, high);
    }
}

/// One of the pair's port windows on the I/O bus: map `Master` at 0x20,
/// `Slave` at 0xa0 and `Elcr` at 0x4d0, each two ports wide.
pub struct PicPorts {
    pic: SharedPic,
    window: PicWindow,
}

impl BusDevice for PicPorts {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        // A wide access touches consecutive ports, one byte each.
        let window = self.window;
        self.pic.with(|pair| {
            for (port, byte) in (offset..).zip(data.iter_mut()) {
                *byte = pair.read_port(window, port);
            }
        });
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let window = self.window;
        self.pic.with(|pair| {
            for (port, &byte) in (offset..).zip(data) {
                pair.write_port(window, port, byte);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Rig {
        pic: SharedPic,
        master: PicPorts,
        slave: PicPorts,
        elcr: PicPorts,
        intrs: Arc<AtomicUsize>,
        eois: Arc<Mutex<Vec<u32>>>,
    }

    impl Rig {
        /// A pair initialised as Linux does: vectors 0x20 and 0x28, cascade on
        /// IR2, 8086 mode, all lines unmasked.
        fn new(auto_eoi: bool) -> Rig {
            let intrs = Arc::new(AtomicUsize::new(0));
            let eois = Arc::new(Mutex::new(Vec::new()));
            let counted = intrs.clone();
            let recorded = eois.clone();
            let pic = SharedPic::new(Pic8259Pair::new(
                Arc::new(move || {
                    counted.fetch_add(1, Ordering::SeqCst);
                }),
                Some(Arc::new(move |line| recorded.lock().unwrap().push(line))),
            ));
            let mut rig = Rig {
                master: pic.ports(PicWindow::Master),
                slave: pic.ports(PicWindow::Slave),
                elcr: pic.ports(PicWindow::Elcr),
                pic,
                intrs,
                eois,
            };
            let icw4 = if auto_eoi { 0x03 } else { 0x01 };
            for (chip, base, icw3) in [(0, 0x20, 0x04), (1, 0x28, 0x02)] {
                let ports = if chip == 0 {
                    &mut rig.master
                } else {
                    &mut rig.slave
                };
                ports.write(0, &[0x11]);
                ports.write(1, &[base]);
                ports.write(1, &[icw3]);
                ports.write(1, &[icw4]);
                ports.write(1, &[0x00]);
            }
            rig
        }

        fn read(ports: &mut PicPorts, offset: u64) -> u8 {
            let mut byte = [0];
            ports.read(offset, &mut byte);
            byte[0]
        }

        fn master_isr(&mut self) -> u8 {
            self.master.write(0, &[0x0b]);
            Rig::read(&mut self.master, 0)
        }

        fn slave_isr(&mut self) -> u8 {
            self.slave.write(0, &[0x0b]);
            Rig::read(&mut self.slave, 0)
        }

        fn pulse(&self, line: u32) {
            self.pic.set_level(line, true);
            self.pic.set_level(line, false);
        }
    }

    const EOI: u8 = 0x20;

    #[test]
    fn priority_and_nesting() {
        let mut rig = Rig::new(false);
        assert!(!rig.pic.interrupt_pending());
        assert_eq!(rig.pic.acknowledge(), None);
        rig.pulse(3);
        rig.pulse(1);
        assert!(rig.pic.interrupt_pending());
        assert_eq!(rig.intrs.load(Ordering::SeqCst), 1);
        assert_eq!(rig.pic.acknowledge(), Some(0x21));
        assert_eq!(rig.master_isr(), 0x02);
        // IRQ 3 waits behind IRQ 1 in service...
        assert!(!rig.pic.interrupt_pending());
        // ...but IRQ 0 preempts it.
        rig.pulse(0);
        assert_eq!(rig.pic.acknowledge(), Some(0x20));
        rig.master.write(0, &[EOI]); // ends IRQ 0, the highest in service
        assert_eq!(rig.master_isr(), 0x02);
        assert!(!rig.pic.interrupt_pending());
        rig.master.write(0, &[0x60 | 1]); // specific EOI for IRQ 1
        assert!(rig.pic.interrupt_pending());
        assert_eq!(rig.pic.acknowledge(), Some(0x23));
        rig.master.write(0, &[EOI]);
        assert_eq!(rig.master_isr(), 0);
        // Edge lines report no EOI to the board.
        assert!(rig.eois.lock().unwrap().is_empty());
    }

    #[test]
    fn masked_lines_wait_and_edges_latch_once() {
        let mut rig = Rig::new(false);
        rig.master.write(1, &[0x10]);
        assert_eq!(Rig::read(&mut rig.master, 1), 0x10);
        rig.pic.set_level(4, true);
        rig.pic.set_level(4, true);
        assert!(!rig.pic.interrupt_pending());
        // The IRR shows the latched request.
        rig.master.write(0, &[0x0a]);
        assert_eq!(Rig::read(&mut rig.master, 0), 0x10);
        rig.master.write(1, &[0x00]);
        assert_eq!(rig.pic.acknowledge(), Some(0x24));
        rig.master.write(0, &[EOI]);
        // Still high, no new edge: nothing more.
        assert!(!rig.pic.interrupt_pending());
        rig.pic.set_level(4, false);
        rig.pic.set_level(4, true);
        assert_eq!(rig.pic.acknowledge(), Some(0x24));
    }

    #[test]
    fn cascade_through_the_slave() {
        let mut rig = Rig::new(false);
        rig.pulse(10);
        assert_eq!(rig.pic.acknowledge(), Some(0x2a));
        assert_eq!(rig.master_isr(), 0x04);
        assert_eq!(rig.slave_isr(), 0x04);
        // A slave line waits behind the slave in service; a master line above
        // the cascade preempts it.
        rig.pulse(12);
        assert!(!rig.pic.interrupt_pending());
        rig.pulse(1);
        assert_eq!(rig.pic.acknowledge(), Some(0x21));
        rig.master.write(0, &[EOI]); // IRQ 1
        rig.slave.write(0, &[EOI]); // IRQ 10
        rig.master.write(0, &[EOI]); // the cascade
        assert_eq!(rig.pic.acknowledge(), Some(0x2c));
        // Line 2 from a device is not the cascade.
        rig.slave.write(0, &[EOI]);
        rig.master.write(0, &[EOI]);
        rig.pic.set_level(2, true);
        rig.pic.set_level(99, true);
        assert!(!rig.pic.interrupt_pending());
    }

    #[test]
    fn level_lines_follow_their_input_and_report_eoi() {
        let mut rig = Rig::new(false);
        rig.elcr.write(0, &[0xff, 0xff]);
        let mut elcr = [0u8; 2];
        rig.elcr.read(0, &mut elcr);
        assert_eq!(elcr, [0xf8, 0xde]);
        rig.elcr.write(1, &[0x08]); // line 11 only on the slave
        rig.elcr.write(0, &[0x00]);

        rig.pic.set_level(11, true);
        assert_eq!(rig.pic.acknowledge(), Some(0x2b));
        rig.slave.write(0, &[EOI]);
        rig.master.write(0, &[EOI]);
        assert_eq!(*rig.eois.lock().unwrap(), [11]);
        // Still high: requested again.
        assert_eq!(rig.pic.acknowledge(), Some(0x2b));
        rig.pic.set_level(11, false);
        rig.slave.write(0, &[EOI]);
        rig.master.write(0, &[EOI]);
        assert!(!rig.pic.interrupt_pending());
        assert_eq!(*rig.eois.lock().unwrap(), [11, 11]);

        // A level request that goes away before INTA leaves nothing pending.
        rig.pic.set_level(11, true);
        rig.pic.set_level(11, false);
        assert!(!rig.pic.interrupt_pending());
    }

    #[test]
    fn spurious_interrupts_set_no_isr_bit() {
        let mut rig = Rig::new(false);
        assert_eq!(rig.pic.acknowledge(), None);
        assert_eq!(rig.pic.inta(), 0x27);
        assert_eq!(rig.master_isr(), 0);
    }

    #[test]
    fn auto_eoi_and_poll() {
        let mut rig = Rig::new(true);
        rig.pulse(5);
        assert_eq!(rig.pic.acknowledge(), Some(0x25));
        assert_eq!(rig.master_isr(), 0);

        let mut rig = Rig::new(false);
        rig.master.write(1, &[0xff]);
        rig.pulse(6);
        rig.master.write(0, &[0x0c]);
        assert_eq!(Rig::read(&mut rig.master, 0), 0, "all masked");
        rig.master.write(1, &[0x00]);
        rig.master.write(0, &[0x0c]);
        assert_eq!(Rig::read(&mut rig.master, 0), 0x86);
        assert_eq!(rig.master_isr(), 0x40);
    }

    #[test]
    fn rotation_changes_priorities() {
        let mut rig = Rig::new(false);
        rig.master.write(0, &[0xc0 | 3]); // IRQ 4 is now the highest
        rig.pulse(1);
        rig.pulse(4);
        assert_eq!(rig.pic.acknowledge(), Some(0x24));
    }

    #[test]
    fn callbacks_may_reenter_the_pic() {
        let pic_slot: Arc<Mutex<Option<SharedPic>>> = Arc::new(Mutex::new(None));
        let seen = Arc::new(AtomicUsize::new(0));
        let (slot, count) = (pic_slot.clone(), seen.clone());
        let pic = SharedPic::new(Pic8259Pair::new(
            Arc::new(move || {
                if let Some(pic) = &*slot.lock().unwrap()
                    && pic.interrupt_pending()
                {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }),
            None,
        ));
        *pic_slot.lock().unwrap() = Some(pic.clone());
        let mut master = pic.ports(PicWindow::Master);
        for byte in [0x11, 0x20, 0x04, 0x01] {
            master.write(if byte == 0x11 { 0 } else { 1 }, &[byte]);
        }
        let sink: Arc<dyn IrqSink> = Arc::new(pic.clone());
        sink.set_level(1, true);
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        *pic_slot.lock().unwrap() = None;
    }

    #[test]
    fn hostile_accesses_are_harmless() {
        let mut rig = Rig::new(false);
        for value in 0..=255u8 {
            rig.master.write(0, &[value]);
            rig.master.write(1, &[value]);
            rig.slave.write(0, &[value]);
            rig.slave.write(1, &[value]);
            rig.elcr.write(1, &[value]);
            let _ = rig.pic.acknowledge();
            rig.pulse(u32::from(value) % 20);
        }
        let mut wide = [0u8; 8];
        rig.elcr.read(0, &mut wide);
        rig.pic.reset();
        assert!(!rig.pic.interrupt_pending());
    }
}
