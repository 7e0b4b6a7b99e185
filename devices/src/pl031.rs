//! The Arm PrimeCell PL031 real-time clock (the `virt` board's RTC), after the
//! PL031 TRM (DDI0224).
//!
//! The counter is a 32-bit count of seconds (Linux treats it as seconds since
//! the Unix epoch). It starts from the host's wall clock when the device is
//! made and advances with the VM [`Clock`]; loading `RTCLR` sets it. The match
//! interrupt sets `RTCRIS` when the counter reaches `RTCMR`; the interrupt
//! output is a level line, high while `RTCRIS & RTCIMSC`.
//!
//! Choices:
//! - The counter always runs and `RTCCR` reads 1, as in QEMU: on the TRM's
//!   r1p3 a started counter cannot be stopped, and guests only ever start it.
//! - Matches are found whenever the device looks at the time (every access and
//!   every timer run), so `RTCRIS` is right even while the interrupt is masked;
//!   a clock [`Timer`] is armed for the next match only while `RTCIMSC`
//!   enables the interrupt and it is not already raised.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::bus::BusDevice;
use crate::clock::{Clock, Timer};
use crate::irq::IrqLine;
use crate::pl011::{PRIMECELL_ID, fill, le_value, word_access};

/// The size of the PL031's register window.
pub const PL031_SIZE: u64 = 0x1000;

const NS_PER_SEC: i64 = 1_000_000_000;

mod reg {
    pub const DR: u64 = 0x00;
    pub const MR: u64 = 0x04;
    pub const LR: u64 = 0x08;
    pub const CR: u64 = 0x0c;
    pub const IMSC: u64 = 0x10;
    pub const RIS: u64 = 0x14;
    pub const MIS: u64 = 0x18;
    pub const ICR: u64 = 0x1c;
    pub const PERIPH_ID: u64 = 0xfe0;
    pub const CELL_ID: u64 = 0xff0;
}

/// Peripheral 0x00041031: an Arm PL031 r1p0.
const PERIPH_ID: [u8; 4] = [0x31, 0x10, 0x04, 0x00];

/// One PL031.
pub struct Pl031 {
    clock: Arc<Clock>,
    irq: IrqLine,
    timer: Option<Timer>,
    /// The counter read `base` at guest time `base_ns` and has counted one
    /// per whole second since.
    base: u32,
    base_ns: i64,
    /// Whole seconds since `base_ns` up to which matches have been looked for.
    checked: i64,
    mr: u32,
    imsc: bool,
    ris: bool,
    line_high: bool,
}

fn lock(rtc: &Mutex<Pl031>) -> MutexGuard<'_, Pl031> {
    rtc.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pl031 {
    /// A PL031 whose counter reads `start` (as Unix seconds) now and then
    /// runs with `clock`; its interrupt output is `irq`, a level line.
    pub fn new(clock: Arc<Clock>, irq: IrqLine, start: SystemTime) -> Arc<Mutex<Pl031>> {
        // Seconds before 1970 or after 2106 wrap, as the 32-bit counter would.
        let (secs, nanos) = match start.duration_since(UNIX_EPOCH) {
            Ok(after) => (after.as_secs() as u32, i64::from(after.subsec_nanos())),
            Err(before) => (0u32.wrapping_sub(before.duration().as_secs() as u32), 0),
        };
        let now = signed(clock.now_ns());
        Arc::new_cyclic(|weak: &Weak<Mutex<Pl031>>| {
            let weak = weak.clone();
            let timer = clock.timer(Arc::new(move || Pl031::timer_fired(&weak)));
            Mutex::new(Pl031 {
                clock,
                irq,
                timer: Some(timer),
                base: secs,
                // The current second began `nanos` ago.
                base_ns: now - nanos,
                checked: 0,
                mr: 0,
                imsc: false,
                ris: false,
                line_high: false,
            })
        })
    }

    /// Whole seconds counted since `base_ns`, at guest time `now`.
    fn elapsed(&self, now: i64) -> i64 {
        now.saturating_sub(self.base_ns).max(0) / NS_PER_SEC
    }

    fn count_at(&self, now: i64) -> u32 {
        self.base.wrapping_add(self.elapsed(now) as u32)
    }

    /// Sets `ris` if the counter reached `mr` since the last look.
    fn catch_up(&mut self, now: i64) {
        let elapsed = self.elapsed(now);
        if elapsed > self.checked {
            let from = self.base.wrapping_add(self.checked as u32);
            let steps = self.mr.wrapping_sub(from);
            if steps != 0 && i64::from(steps) <= elapsed - self.checked {
                self.ris = true;
            }
            self.checked = elapsed;
        }
    }

    fn sync(&mut self, now: i64) {
        let high = self.ris && self.imsc;
        if high != self.line_high {
            self.line_high = high;
            if high {
                self.irq.raise();
            } else {
                self.irq.lower();
            }
        }
        let Some(timer) = &self.timer else {
            return;
        };
        if !self.imsc || self.ris {
            timer.cancel();
            return;
        }
        let current = self.base.wrapping_add(self.checked as u32);
        let steps = match self.mr.wrapping_sub(current) {
            // Matched at the last look, so the next match is a full wrap away.
            0 => 1 << 32,
            steps => i64::from(steps),
        };
        let at = self
            .base_ns
            .saturating_add((self.checked + steps).saturating_mul(NS_PER_SEC));
        timer.arm_at(at.max(now).max(0) as u64);
    }

    fn timer_fired(rtc: &Weak<Mutex<Pl031>>) {
        let Some(rtc) = rtc.upgrade() else {
            return;
        };
        let mut rtc = lock(&rtc);
        let now = signed(rtc.clock.now_ns());
        rtc.catch_up(now);
        rtc.sync(now);
    }

    /// A match register or counter write: a match that holds at once counts.
    fn recheck_equal(&mut self, now: i64) {
        if self.count_at(now) == self.mr {
            self.ris = true;
        }
    }

    fn read_register_at(&mut self, offset: u64, now: i64) -> u32 {
        self.catch_up(now);
        let value = match offset {
            reg::DR => self.count_at(now),
            reg::MR => self.mr,
            reg::LR => self.count_at(now),
            reg::CR => 1,
            reg::IMSC => u32::from(self.imsc),
            reg::RIS => u32::from(self.ris),
            reg::MIS => u32::from(self.ris && self.imsc),
            0xfe0..=0xfec => u32::from(PERIPH_ID[((offset - reg::PERIPH_ID) / 4) as usize]),
            0xff0..=0xffc => u32::from(PRIMECELL_ID[((offset - reg::CELL_ID) / 4) as usize]),
            _ => {
                log::debug!("pl031: read of unknown register {offset:#x}");
                0
            }
        };
        self.sync(now);
        value
    }

    fn write_register_at(&mut self, offset: u64, value: u32, now: i64) {
        self.catch_up(now);
        match offset {
            reg::MR => {
                self.mr = value;
                self.recheck_equal(now);
            }
            reg::LR => {
                // The counter restarts its second at the load.
                self.base = value;
                self.base_ns = now;
                self.checked = 0;
                self.recheck_equal(now);
            }
            reg::CR => {}
            reg::IMSC => self.imsc = value & 1 != 0,
            reg::ICR => {
                if value & 1 != 0 {
                    self.ris = false;
                }
            }
            _ => log::debug!(
                "pl031: write of {value:#x} to read-only or unknown register {offset:#x} ignored"
            ),
        }
        self.sync(now);
    }

    fn now(&self) -> i64 {
        signed(self.clock.now_ns())
    }
}

fn signed(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}

impl BusDevice for Pl031 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = match word_access(offset, data.len()) {
            Some((word, shift)) => {
                let now = self.now();
                self.read_register_at(word, now) >> shift
            }
            None => {
                log::debug!("pl031: {}-byte read at {offset:#x} ignored", data.len());
                0
            }
        };
        fill(data, u64::from(value));
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        match word_access(offset, data.len()) {
            Some((word, 0)) => {
                let now = self.now();
                self.write_register_at(word, le_value(data) as u32, now);
            }
            _ => log::debug!("pl031: {}-byte write at {offset:#x} ignored", data.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::{IrqRouter, IrqSink, LineKind};
    use std::sync::mpsc;
    use std::time::Duration;

    const S: i64 = NS_PER_SEC;
    const START: u64 = 1_796_403_000;

    fn unix(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn fixed() -> (Arc<Mutex<Pl031>>, Arc<IrqRouter>, i64) {
        let router = IrqRouter::new();
        let rtc = Pl031::new(Clock::new(), router.line(2, LineKind::Level), unix(START));
        let t0 = lock(&rtc).base_ns;
        (rtc, router, t0)
    }

    #[test]
    fn counts_seconds_from_the_start_time() {
        let (rtc, _, t0) = fixed();
        let mut rtc = lock(&rtc);
        assert_eq!(rtc.read_register_at(reg::DR, t0), START as u32);
        assert_eq!(rtc.read_register_at(reg::DR, t0 + S - 1), START as u32);
        assert_eq!(
            rtc.read_register_at(reg::DR, t0 + 90 * S),
            START as u32 + 90
        );
        assert_eq!(rtc.read_register_at(reg::CR, t0), 1);
        // Loading the counter sets the time.
        rtc.write_register_at(reg::LR, 1000, t0 + 100 * S);
        assert_eq!(rtc.read_register_at(reg::DR, t0 + 102 * S), 1002);
        let ids: Vec<u32> = (0..8)
            .map(|i| rtc.read_register_at(0xfe0 + 4 * i, t0))
            .collect();
        assert_eq!(ids, [0x31, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
    }

    #[test]
    fn match_sets_ris_and_the_line_follows_imsc() {
        let (rtc, router, t0) = fixed();
        let mut rtc = lock(&rtc);
        rtc.write_register_at(reg::MR, START as u32 + 5, t0);
        assert_eq!(rtc.read_register_at(reg::RIS, t0 + 4 * S), 0);
        // Reached while masked: raw status only.
        assert_eq!(rtc.read_register_at(reg::RIS, t0 + 7 * S), 1);
        assert_eq!(rtc.read_register_at(reg::MIS, t0 + 7 * S), 0);
        assert!(!router.level(2));
        rtc.write_register_at(reg::IMSC, 1, t0 + 7 * S);
        assert!(router.level(2));
        rtc.write_register_at(reg::ICR, 1, t0 + 8 * S);
        assert!(!router.level(2));
        // Armed for the next match while enabled.
        rtc.write_register_at(reg::MR, START as u32 + 20, t0 + 8 * S);
        let deadline = rtc.timer.as_ref().and_then(Timer::deadline);
        assert_eq!(deadline, Some((t0 + 20 * S) as u64));
        rtc.write_register_at(reg::IMSC, 0, t0 + 9 * S);
        assert_eq!(rtc.timer.as_ref().and_then(Timer::deadline), None);
        // A match register equal to the counter matches at once.
        rtc.write_register_at(reg::IMSC, 1, t0 + 9 * S);
        rtc.write_register_at(reg::MR, START as u32 + 9, t0 + 9 * S);
        assert!(router.level(2));
    }

    /// Sends each level change to the test.
    struct Levels(Mutex<mpsc::Sender<bool>>);
    impl IrqSink for Levels {
        fn set_level(&self, _line: u32, high: bool) {
            let _ = self.0.lock().unwrap().send(high);
        }
    }

    #[test]
    fn the_match_timer_raises_the_line_in_real_time() {
        let clock = Clock::new();
        clock.start(Box::new(|| Ok(()))).unwrap();
        let router = IrqRouter::new();
        let (tx, rx) = mpsc::channel();
        router.connect(Arc::new(Levels(Mutex::new(tx))));
        let rtc = Pl031::new(clock, router.line(2, LineKind::Level), unix(START));
        let mut device = lock(&rtc);
        let mut data = [0u8; 4];
        device.read(reg::DR, &mut data);
        let now = u32::from_le_bytes(data);
        device.write(reg::IMSC, &1u32.to_le_bytes());
        device.write(reg::MR, &(now + 1).to_le_bytes());
        drop(device);
        // At most a second (plus scheduling slack) away.
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(true));
        let mut device = lock(&rtc);
        device.read(reg::RIS, &mut data);
        assert_eq!(u32::from_le_bytes(data), 1);
    }

    #[test]
    fn every_offset_and_width_is_harmless() {
        let (rtc, _, _) = fixed();
        let mut rtc = lock(&rtc);
        for offset in 0..0x1000u64 {
            for width in [1usize, 2, 4, 8] {
                let mut data = vec![0u8; width];
                rtc.read(offset, &mut data);
                rtc.write(offset, &vec![0xff; width]);
            }
        }
        rtc.read(u64::MAX, &mut [0u8; 4]);
        rtc.write(u64::MAX, &[1]);
    }
}
