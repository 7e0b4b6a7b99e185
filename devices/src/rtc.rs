//! The PC's CMOS real-time clock: a Motorola MC146818A behind ports 0x70/0x71.
//!
//! ```text
//!   0x70  index (bits 6-0; bit 7 is the NMI-disable bit, kept and ignored)
//!   0x71  data of the indexed byte:
//!     0x00 seconds   0x01 alarm seconds   0x02 minutes   0x03 alarm minutes
//!     0x04 hours     0x05 alarm hours     0x06 day of week (1 = Sunday)
//!     0x07 day of month   0x08 month   0x09 year (00-99)   0x32 century
//!     0x0a A: UIP(7, read-only) divider(6-4, 010 runs) rate select(3-0)
//!     0x0b B: SET PIE AIE UIE SQWE DM(binary) 24/12 DSE(ignored)
//!     0x0c C: IRQF PF AF UF (read-only; reading clears it)
//!     0x0d D: VRT (always 1)
//!     0x0e-0x7f battery-backed RAM (0x32 is the century)
//!   IRQ 8: raised while IRQF is set, lowered when register C is read
//! ```
//!
//! Nothing ticks. The time of day is a base (Unix seconds at a VM clock
//! instant) advanced by the [`Clock`]; the registers are computed from it when
//! the guest reads them. The base comes from the host's wall clock when the
//! device is made, and moves when the guest writes the time. Updates happen at
//! whole seconds from the base, with UIP set for the 244 µs before each.
//!
//! The flags of register C are also computed when looked at: the device
//! remembers up to when it last brought them up to date and sets PF, AF and UF
//! for any periodic tick, alarm match or update since, enabled or not, as the
//! chip does. A [`Timer`] is armed only for an enabled interrupt, and only
//! while IRQF is clear: once the line is up nothing changes for the guest
//! until it reads register C, so the clock thread is idle meanwhile. The timer
//! also never fires sooner than 122 µs after its last run (8192 Hz, the
//! fastest periodic rate), whatever the guest programs.
//!
//! Simplifications: the day of week is computed from the date, so a written
//! day of week is ignored while the clock runs; daylight saving (DSE) is
//! ignored; the divider's 4.194304 and 1.048576 MHz settings stop the clock
//! like the reset settings; after a divider reset the first periodic tick comes
//! a whole period later instead of half a period; invalid values written to the
//! time registers are brought into range when the clock next runs rather than
//! counted the chip's odd way.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::bus::BusDevice;
use crate::clock::{Clock, Timer, ns_to_ticks, ticks_to_ns};
use crate::irq::IrqLine;

/// The index and data ports.
pub const RTC_PORT: u64 = 0x70;
pub const RTC_SIZE: u64 = 2;
/// The interrupt line the RTC drives on a PC.
pub const RTC_IRQ: u32 = 8;

const SECONDS: usize = 0x00;
const SECONDS_ALARM: usize = 0x01;
const MINUTES: usize = 0x02;
const MINUTES_ALARM: usize = 0x03;
const HOURS: usize = 0x04;
const HOURS_ALARM: usize = 0x05;
const DAY_OF_WEEK: usize = 0x06;
const DAY_OF_MONTH: usize = 0x07;
const MONTH: usize = 0x08;
const YEAR: usize = 0x09;
const REG_A: usize = 0x0a;
const REG_B: usize = 0x0b;
const REG_C: usize = 0x0c;
const REG_D: usize = 0x0d;
const CENTURY: usize = 0x32;

const A_UIP: u8 = 0x80;
const A_DIVIDER: u8 = 0x70;
/// The 32.768 kHz time base, the only divider setting that counts time.
const A_DIVIDER_RUN: u8 = 0x20;
const A_RATE: u8 = 0x0f;

const B_SET: u8 = 0x80;
const B_PIE: u8 = 0x40;
const B_AIE: u8 = 0x20;
const B_UIE: u8 = 0x10;
const B_SQWE: u8 = 0x08;
const B_BINARY: u8 = 0x04;
const B_24H: u8 = 0x02;

const C_IRQF: u8 = 0x80;
const C_PF: u8 = 0x40;
const C_AF: u8 = 0x20;
const C_UF: u8 = 0x10;
/// The flags; each has its enable bit at the same position in register B.
const C_FLAGS: u8 = C_PF | C_AF | C_UF;

const D_VRT: u8 = 0x80;

/// An alarm byte with both top bits set matches any value.
const ALARM_DONT_CARE: u8 = 0xc0;
/// Hours register bit 7 in 12-hour mode.
const HOURS_PM: u8 = 0x80;

const NS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;
/// UIP is set this long before each update.
const UIP_NS: i64 = 244_000;
/// After a divider reset ends, the first update comes this much later.
const DIVIDER_START_NS: i64 = 500_000_000;
/// The time base the rate selector divides.
const TIME_BASE_HZ: u64 = 32_768;
/// The shortest time between two runs of the interrupt timer.
const MIN_TIMER_INTERVAL_NS: u64 = 122_000;
/// Start times are clamped to within this many seconds of 1970 (about 35,000
/// years) so that no date arithmetic can overflow.
const MAX_START_SECS: i64 = 1 << 40;

/// A date and time of day, proleptic Gregorian, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DateTime {
    year: i64,
    /// 1-12.
    month: u32,
    /// 1-31.
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

fn is_leap(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date, counting in 400-year eras that start on
/// 1 March (so the leap day ends its year).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    // Both in range by construction: day 1-31, month 1-12.
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl DateTime {
    fn from_unix(secs: i64) -> Self {
        let (year, month, day) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
        let time = secs.rem_euclid(SECS_PER_DAY) as u32;
        DateTime {
            year,
            month,
            day,
            hour: time / 3600,
            minute: time / 60 % 60,
            second: time % 60,
        }
    }

    fn to_unix(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * SECS_PER_DAY
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second)
    }

    /// 1 = Sunday ... 7 = Saturday, as the RTC counts; 1970-01-01 was a
    /// Thursday.
    fn day_of_week(self) -> u8 {
        (days_from_civil(self.year, self.month, self.day) + 4).rem_euclid(7) as u8 + 1
    }
}

/// How register B says the time registers are written.
#[derive(Debug, Clone, Copy)]
struct Format {
    binary: bool,
    hours_24: bool,
}

impl Format {
    fn from_b(b: u8) -> Self {
        Format {
            binary: b & B_BINARY != 0,
            hours_24: b & B_24H != 0,
        }
    }

    /// `value` (0-99) as the registers hold it.
    fn encode(self, value: u32) -> u8 {
        let value = (value % 100) as u8;
        if self.binary {
            value
        } else {
            ((value / 10) << 4) | (value % 10)
        }
    }

    /// A register byte as a number; BCD bytes with digits above 9 give values
    /// that are out of range, which callers clamp.
    fn decode(self, byte: u8) -> u32 {
        if self.binary {
            u32::from(byte)
        } else {
            u32::from(byte >> 4) * 10 + u32::from(byte & 0x0f)
        }
    }

    /// Hour 0-23 as the hours register holds it.
    fn encode_hour(self, hour: u32) -> u8 {
        if self.hours_24 {
            return self.encode(hour);
        }
        let twelve = match hour % 12 {
            0 => 12,
            h => h,
        };
        let pm = if hour >= 12 { HOURS_PM } else { 0 };
        self.encode(twelve) | pm
    }

    /// The hours register as an hour, 0-23.
    fn decode_hour(self, byte: u8) -> u32 {
        if self.hours_24 {
            return self.decode(byte).min(23);
        }
        let pm = if byte & HOURS_PM != 0 { 12 } else { 0 };
        self.decode(byte & !HOURS_PM) % 12 + pm
    }
}

/// The alarm registers, compared as the chip compares them: byte for byte
/// with the time registers, each either a value or "don't care".
#[derive(Debug, Clone, Copy)]
struct Alarm {
    hour: u8,
    minute: u8,
    second: u8,
    format: Format,
}

impl Alarm {
    fn hour_matches(self, hour: u32) -> bool {
        self.hour & ALARM_DONT_CARE == ALARM_DONT_CARE || self.hour == self.format.encode_hour(hour)
    }

    fn minute_matches(self, minute: u32) -> bool {
        self.minute & ALARM_DONT_CARE == ALARM_DONT_CARE
            || self.minute == self.format.encode(minute)
    }

    fn second_matches(self, second: u32) -> bool {
        self.second & ALARM_DONT_CARE == ALARM_DONT_CARE
            || self.second == self.format.encode(second)
    }

    /// The first second after `after` (Unix seconds) whose time of day
    /// matches, if any ever does.
    fn next_after(self, after: i64) -> Option<i64> {
        // A field no time can match (a BCD byte with a digit above 9, 75
        // seconds) means no alarm; checking it first bounds the search below
        // to a few hundred steps.
        if !(0..24).any(|h| self.hour_matches(h))
            || !(0..60).any(|m| self.minute_matches(m))
            || !(0..60).any(|s| self.second_matches(s))
        {
            return None;
        }
        let start = after.checked_add(1)?;
        let first_day = start.div_euclid(SECS_PER_DAY);
        let time = start.rem_euclid(SECS_PER_DAY) as u32;
        let (h0, m0, s0) = (time / 3600, time / 60 % 60, time % 60);
        for day in 0..2 {
            let today = day == 0;
            for hour in (if today { h0 } else { 0 })..24 {
                if !self.hour_matches(hour) {
                    continue;
                }
                let this_hour = today && hour == h0;
                for minute in (if this_hour { m0 } else { 0 })..60 {
                    if !self.minute_matches(minute) {
                        continue;
                    }
                    let this_minute = this_hour && minute == m0;
                    let second =
                        (if this_minute { s0 } else { 0 }..60).find(|&s| self.second_matches(s));
                    if let Some(second) = second {
                        let secs = i64::from(hour * 3600 + minute * 60 + second);
                        return Some((first_day + day) * SECS_PER_DAY + secs);
                    }
                }
            }
        }
        None
    }
}

/// Unix seconds and nanoseconds into the second of `time`, clamped to the
/// range the device handles.
fn split_unix(time: SystemTime) -> (i64, i64) {
    let (secs, nanos) = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => (
            i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            i64::from(after.subsec_nanos()),
        ),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            match before.subsec_nanos() {
                0 => (-secs, 0),
                nanos => (-secs - 1, NS_PER_SEC - i64::from(nanos)),
            }
        }
    };
    if secs.abs() > MAX_START_SECS {
        (secs.clamp(-MAX_START_SECS, MAX_START_SECS), 0)
    } else {
        (secs, nanos)
    }
}

/// Guest time in the signed form the device computes with.
fn signed_ns(now: u64) -> i64 {
    i64::try_from(now).unwrap_or(i64::MAX)
}

/// The MC146818A.
pub struct Rtc {
    clock: Arc<Clock>,
    irq8: IrqLine,
    /// Raises IRQ 8 for enabled interrupts; see [`Rtc::timer_fired`].
    timer: Option<Timer>,
    /// Every byte the chip holds. The time registers are current only while
    /// the clock is stopped; while it runs they are refreshed before a read.
    /// Register C holds the flags (not IRQF, which is computed); A's UIP is
    /// computed too.
    regs: [u8; 128],
    index: u8,
    nmi_disabled: bool,
    /// While the clock runs, the time of day at guest time `t` is
    /// `base_secs + floor((t - base_ns) / 1 s)`; updates happen where that
    /// changes.
    base_secs: i64,
    base_ns: i64,
    /// Periodic ticks are whole periods after this guest time.
    periodic_origin_ns: i64,
    /// Register C's flags account for every event up to this guest time.
    checked_ns: i64,
    line_high: bool,
    last_timer_run: Option<u64>,
}

impl Rtc {
    /// An RTC on `irq8` whose time of day is `start` when it is made, then
    /// runs with `clock`. Its registers start as a PC BIOS leaves them: 24-hour
    /// BCD, the divider running, the periodic rate at 1024 Hz, no interrupt
    /// enabled.
    pub fn new(clock: Arc<Clock>, irq8: IrqLine, start: SystemTime) -> Arc<Mutex<Rtc>> {
        let (secs, nanos) = split_unix(start);
        let now = signed_ns(clock.now_ns());
        Arc::new_cyclic(|weak: &Weak<Mutex<Rtc>>| {
            let weak = weak.clone();
            let timer = clock.timer(Arc::new(move || Rtc::timer_fired(&weak)));
            let mut regs = [0u8; 128];
            regs[REG_A] = A_DIVIDER_RUN | 0x06;
            regs[REG_B] = B_24H;
            Mutex::new(Rtc {
                clock,
                irq8,
                timer: Some(timer),
                regs,
                index: 0,
                nmi_disabled: false,
                base_secs: secs,
                base_ns: now - nanos,
                periodic_origin_ns: now,
                checked_ns: now,
                line_high: false,
                last_timer_run: None,
            })
        })
    }

    /// An RTC whose time of day is the host's now.
    pub fn with_host_time(clock: Arc<Clock>, irq8: IrqLine) -> Arc<Mutex<Rtc>> {
        Rtc::new(clock, irq8, SystemTime::now())
    }

    /// What the chip's RESET pin does: interrupts disabled and flags cleared;
    /// the time, the divider and the RAM are kept.
    pub fn reset(&mut self) {
        let now = self.now();
        self.catch_up(now);
        self.regs[REG_B] &= !(B_PIE | B_AIE | B_UIE | B_SQWE);
        self.regs[REG_C] = 0;
        self.sync_line();
        self.schedule(now);
    }

    /// Presets a byte of CMOS RAM (0x0e-0x7f, the century 0x32 excepted), as
    /// firmware would have left it: the board stores memory sizes here
    /// ([`pc_memory_bytes`]).
    pub fn set_cmos(&mut self, index: u8, value: u8) {
        let index = usize::from(index);
        if index < 0x0e || index == CENTURY || index >= self.regs.len() {
            log::debug!("RTC: set_cmos({index:#x}) is not a RAM byte; ignored");
            return;
        }
        self.regs[index] = value;
    }

    /// The time of day the RTC holds now, as Unix seconds (frozen while the
    /// guest sets the time or has stopped the divider).
    pub fn unix_time(&self) -> i64 {
        let now = self.now();
        if self.running() {
            self.secs_at(now)
        } else {
            self.parse_time()
        }
    }

    /// A guest read of port 0x70 + `offset`.
    pub fn read_port(&mut self, offset: u64) -> u8 {
        let now = self.now();
        self.read_port_at(offset, now)
    }

    /// A guest write of `value` to port 0x70 + `offset`.
    pub fn write_port(&mut self, offset: u64, value: u8) {
        let now = self.now();
        self.write_port_at(offset, value, now);
    }

    fn now(&self) -> i64 {
        signed_ns(self.clock.now_ns())
    }

    fn read_port_at(&mut self, offset: u64, now: i64) -> u8 {
        match offset {
            // The index register is write-only; the bus reads back all-ones.
            0 => 0xff,
            1 => self.read_data(now),
            _ => 0xff,
        }
    }

    fn write_port_at(&mut self, offset: u64, value: u8, now: i64) {
        match offset {
            0 => {
                self.index = value & 0x7f;
                self.nmi_disabled = value & 0x80 != 0;
            }
            1 => self.write_data(value, now),
            _ => log::debug!("RTC: write at offset {offset} outside its two ports"),
        }
    }

    fn format(&self) -> Format {
        Format::from_b(self.regs[REG_B])
    }

    fn divider_running(&self) -> bool {
        self.regs[REG_A] & A_DIVIDER == A_DIVIDER_RUN
    }

    /// Whether the time of day advances (and updates happen).
    fn running(&self) -> bool {
        self.divider_running() && self.regs[REG_B] & B_SET == 0
    }

    fn secs_at(&self, now: i64) -> i64 {
        self.base_secs
            .saturating_add(now.saturating_sub(self.base_ns).div_euclid(NS_PER_SEC))
    }

    /// The guest time of the update that makes the time of day `secs`.
    fn update_ns(&self, secs: i64) -> i64 {
        secs.saturating_sub(self.base_secs)
            .saturating_mul(NS_PER_SEC)
            .saturating_add(self.base_ns)
    }

    /// The periodic interrupt's period in time-base cycles, if it runs.
    fn periodic_cycles(&self) -> Option<u64> {
        let rate = self.regs[REG_A] & A_RATE;
        if rate == 0 || !self.divider_running() {
            return None;
        }
        // Rates 1 and 2 repeat rates 8 and 9 (256 and 128 Hz) on a 32 kHz
        // time base; from 3 (8192 Hz) each step halves the frequency.
        Some(if rate <= 2 {
            1 << (rate + 6)
        } else {
            1 << (rate - 1)
        })
    }

    /// Whole periodic ticks from the origin to `now`.
    fn periodic_ticks(&self, cycles: u64, now: i64) -> u64 {
        let elapsed = now.saturating_sub(self.periodic_origin_ns).max(0) as u64;
        ns_to_ticks(elapsed, TIME_BASE_HZ) / cycles
    }

    fn alarm(&self) -> Alarm {
        Alarm {
            hour: self.regs[HOURS_ALARM],
            minute: self.regs[MINUTES_ALARM],
            second: self.regs[SECONDS_ALARM],
            format: self.format(),
        }
    }

    /// Sets register C's flags for everything that happened since they were
    /// last brought up to date. Every change of state that affects them first
    /// calls this, so the state is constant over the interval.
    fn catch_up(&mut self, now: i64) {
        if now <= self.checked_ns {
            return;
        }
        let before = self.checked_ns;
        self.checked_ns = now;
        if let Some(cycles) = self.periodic_cycles()
            && self.periodic_ticks(cycles, now) > self.periodic_ticks(cycles, before)
        {
            self.regs[REG_C] |= C_PF;
        }
        if self.running() {
            let (from, to) = (self.secs_at(before), self.secs_at(now));
            if to > from {
                self.regs[REG_C] |= C_UF;
                if self.alarm().next_after(from).is_some_and(|at| at <= to) {
                    self.regs[REG_C] |= C_AF;
                }
            }
        }
    }

    fn irqf(&self) -> bool {
        self.regs[REG_C] & self.regs[REG_B] & C_FLAGS != 0
    }

    /// Drives IRQ 8 from IRQF. The RTC's lock is held so that the line's level
    /// always follows the latest state; the router and the interrupt
    /// controller take their locks after it and never call back into the RTC.
    fn sync_line(&mut self) {
        let want = self.irqf();
        if want != self.line_high {
            self.line_high = want;
            if want {
                self.irq8.raise();
            } else {
                self.irq8.lower();
            }
        }
    }

    /// Arms the timer for the next enabled interrupt, or disarms it.
    fn schedule(&mut self, now: i64) {
        let Some(timer) = &self.timer else {
            return;
        };
        // While IRQF is set the line is already up and stays up until the
        // guest reads register C, which reschedules.
        if self.irqf() {
            timer.cancel();
            return;
        }
        let enabled = self.regs[REG_B];
        let mut next: Option<i64> = None;
        let mut consider = |at: i64| next = Some(next.map_or(at, |n| n.min(at)));
        if enabled & B_PIE != 0
            && let Some(cycles) = self.periodic_cycles()
        {
            let tick = self.periodic_ticks(cycles, now).saturating_add(1);
            let offset = ticks_to_ns(tick.saturating_mul(cycles), TIME_BASE_HZ);
            consider(self.periodic_origin_ns.saturating_add(signed_ns(offset)));
        }
        if self.running() {
            let secs = self.secs_at(now);
            if enabled & B_UIE != 0 {
                consider(self.update_ns(secs.saturating_add(1)));
            }
            if enabled & B_AIE != 0
                && let Some(at) = self.alarm().next_after(secs)
            {
                consider(self.update_ns(at));
            }
        }
        match next {
            None => timer.cancel(),
            Some(at) => {
                let mut deadline = at.max(0) as u64;
                if let Some(last) = self.last_timer_run {
                    deadline = deadline.max(last.saturating_add(MIN_TIMER_INTERVAL_NS));
                }
                timer.arm_at(deadline);
            }
        }
    }

    /// The timer's callback, on the clock thread.
    fn timer_fired(rtc: &Weak<Mutex<Rtc>>) {
        let Some(rtc) = rtc.upgrade() else {
            return;
        };
        let mut rtc = lock(&rtc);
        let now_ns = rtc.clock.now_ns();
        rtc.last_timer_run = Some(now_ns);
        let now = signed_ns(now_ns);
        rtc.catch_up(now);
        rtc.sync_line();
        rtc.schedule(now);
    }

    /// Writes the running time of day into the time registers.
    fn store_time(&mut self, now: i64) {
        if !self.running() {
            return;
        }
        let time = DateTime::from_unix(self.secs_at(now));
        let format = self.format();
        self.regs[SECONDS] = format.encode(time.second);
        self.regs[MINUTES] = format.encode(time.minute);
        self.regs[HOURS] = format.encode_hour(time.hour);
        self.regs[DAY_OF_WEEK] = time.day_of_week();
        self.regs[DAY_OF_MONTH] = format.encode(time.day);
        self.regs[MONTH] = format.encode(time.month);
        self.regs[YEAR] = format.encode(time.year.rem_euclid(100) as u32);
        self.regs[CENTURY] = format.encode(time.year.div_euclid(100).rem_euclid(100) as u32);
    }

    /// The time registers as Unix seconds, out-of-range fields clamped.
    fn parse_time(&self) -> i64 {
        let format = self.format();
        let field = |index: usize| format.decode(self.regs[index]);
        let year = i64::from(field(CENTURY)) * 100 + i64::from(field(YEAR).min(99));
        let month = field(MONTH).clamp(1, 12);
        DateTime {
            year,
            month,
            day: field(DAY_OF_MONTH).clamp(1, days_in_month(year, month)),
            hour: format.decode_hour(self.regs[HOURS]),
            minute: field(MINUTES).min(59),
            second: field(SECONDS).min(59),
        }
        .to_unix()
    }

    /// Takes the time registers as the time of day at `now`, keeping the
    /// divider's phase: the next update comes when it would have.
    fn load_time(&mut self, now: i64) {
        let secs = self.parse_time();
        self.base_secs =
            secs.saturating_sub(now.saturating_sub(self.base_ns).div_euclid(NS_PER_SEC));
    }

    fn uip(&self, now: i64) -> bool {
        self.running()
            && now.saturating_sub(self.base_ns).rem_euclid(NS_PER_SEC) >= NS_PER_SEC - UIP_NS
    }

    fn read_data(&mut self, now: i64) -> u8 {
        self.catch_up(now);
        self.sync_line();
        let index = usize::from(self.index);
        match index {
            SECONDS | MINUTES | HOURS | DAY_OF_WEEK | DAY_OF_MONTH | MONTH | YEAR | CENTURY => {
                self.store_time(now);
                self.regs[index]
            }
            REG_A => self.regs[REG_A] | if self.uip(now) { A_UIP } else { 0 },
            REG_C => {
                let value = self.regs[REG_C] | if self.irqf() { C_IRQF } else { 0 };
                self.regs[REG_C] = 0;
                self.sync_line();
                self.schedule(now);
                value
            }
            REG_D => D_VRT,
            _ => self.regs.get(index).copied().unwrap_or(0xff),
        }
    }

    fn write_data(&mut self, value: u8, now: i64) {
        self.catch_up(now);
        let index = usize::from(self.index);
        match index {
            SECONDS | MINUTES | HOURS | DAY_OF_WEEK | DAY_OF_MONTH | MONTH | YEAR | CENTURY => {
                if self.running() {
                    // Without SET the chip takes the byte as it is and counts
                    // on from it.
                    self.store_time(now);
                    self.regs[index] = value;
                    self.load_time(now);
                } else {
                    self.regs[index] = value;
                }
            }
            REG_A => self.write_a(value, now),
            REG_B => self.write_b(value, now),
            REG_C | REG_D => log::debug!("RTC: write {value:#x} to read-only register {index:#x}"),
            _ => {
                if let Some(byte) = self.regs.get_mut(index) {
                    *byte = value;
                }
            }
        }
        self.sync_line();
        self.schedule(now);
    }

    fn write_a(&mut self, value: u8, now: i64) {
        let was_running = self.running();
        let divider_was_running = self.divider_running();
        // Stopping freezes the registers at the time they showed.
        self.store_time(now);
        self.regs[REG_A] = value & !A_UIP;
        if !divider_was_running && self.divider_running() {
            self.periodic_origin_ns = now;
            self.base_ns = now.saturating_sub(NS_PER_SEC - DIVIDER_START_NS);
        }
        if !was_running && self.running() {
            self.load_time(now);
        }
    }

    fn write_b(&mut self, value: u8, now: i64) {
        let was_running = self.running();
        // The registers freeze in the format they were counted in.
        self.store_time(now);
        // Setting SET also clears UIE, as on the chip.
        self.regs[REG_B] = if value & B_SET != 0 {
            value & !B_UIE
        } else {
            value
        };
        if !was_running && self.running() {
            self.load_time(now);
        }
    }
}

impl Drop for Rtc {
    fn drop(&mut self) {
        // Cancels the interrupt timer before anything else of the RTC goes.
        self.timer.take();
    }
}

fn lock(rtc: &Mutex<Rtc>) -> MutexGuard<'_, Rtc> {
    rtc.lock().unwrap_or_else(|p| p.into_inner())
}

/// The RTC's ports 0x70-0x71 on the I/O bus.
pub struct RtcPorts(pub Arc<Mutex<Rtc>>);

impl BusDevice for RtcPorts {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let mut rtc = lock(&self.0);
        for (port, byte) in (offset..).zip(data.iter_mut()) {
            *byte = rtc.read_port(port);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut rtc = lock(&self.0);
        for (port, &byte) in (offset..).zip(data) {
            rtc.write_port(port, byte);
        }
    }
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
/// The CMOS bytes that tell firmware and old guests how much memory a `pc`
/// machine has (`low` bytes of RAM from 0 below 4 GiB, `high` bytes from 4
/// GiB), as `(index, value)` pairs for [`Rtc::set_cmos`]:
///
/// - 0x15/0x16: base memory in KiB (640);
/// - 0x17/0x18 and 0x30/0x31: memory above 1 MiB below 4 GiB, in KiB, at most
///   65535;
/// - 0x34/0x35: memory above 16 MiB below 4 GiB, in 64 KiB units, at most
///   65535;
/// - 0x5b-0x5d: memory above 4 GiB, in 64 KiB units.
pub fn pc_memory_bytes(low: u64, high: u64) -> Vec<(u8, u8)> {
    let base_kib = (low / KIB).min(640);
    let extended_kib = (low.saturating_sub(MIB) / KIB).min(0xffff);
    let above_16m = (low.saturating_sub(16 * MIB) / (64 * KIB)).min(0xffff);
    let above_4g = (high / (64 * KIB)).min(0xff_ffff);
    let byte = |value: u64, shift: u32| (value >> shift) as u8;
    vec![
        (0x15, byte(base_kib, 0)),
        (0x16, byte(base_kib, 8)),
        (0x17, byte(extended_kib, 0)),
        (0x18, byte(extended_kib, 8)),
        (0x30, byte(extended_kib, 0)),
        (0x31, byte(extended_kib, 8)),
        (0x34, byte(above_16m, 0)),
        (0x35, byte(above_16m, 8)),
        (0x5b, byte(above_4g, 0)),
        (0x5c, byte(above_4g, 8)),
        (0x5d, byte(above_4g, 16)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::{IrqRouter, IrqSink, LineKind};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// 2026-12-04 16:50:00 UTC, a Friday.
    const FRIDAY: i64 = 1_796_403_000;
    const S: i64 = NS_PER_SEC;
    const MS: i64 = 1_000_000;

    fn unix(secs: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    }

    /// An RTC whose clock thread never runs: time is whatever the test says,
    /// as an offset from the instant the RTC's time of day was `start`.
    struct Fixed {
        rtc: Arc<Mutex<Rtc>>,
        router: Arc<IrqRouter>,
        t0: i64,
    }

    impl Fixed {
        fn new(start: i64) -> Self {
            let router = IrqRouter::new();
            let rtc = Rtc::new(
                Clock::new(),
                router.line(RTC_IRQ, LineKind::Edge),
                unix(start),
            );
            let t0 = lock(&rtc).base_ns;
            Fixed { rtc, router, t0 }
        }

        fn read(&self, index: u8, after: i64) -> u8 {
            let mut rtc = lock(&self.rtc);
            rtc.write_port_at(0, index, self.t0 + after);
            rtc.read_port_at(1, self.t0 + after)
        }

        fn write(&self, index: u8, value: u8, after: i64) {
            let mut rtc = lock(&self.rtc);
            rtc.write_port_at(0, index, self.t0 + after);
            rtc.write_port_at(1, value, self.t0 + after);
        }

        /// Seconds, minutes, hours, day of week, day, month, year, century.
        fn time(&self, after: i64) -> [u8; 8] {
            [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32].map(|i| self.read(i, after))
        }

        fn line(&self) -> bool {
            self.router.level(RTC_IRQ)
        }
    }

    #[test]
    fn calendar_round_trips() {
        for days in (-800_000..800_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(DateTime::from_unix(FRIDAY).to_unix(), FRIDAY);
        assert_eq!(DateTime::from_unix(FRIDAY).day_of_week(), 6);
        assert!(is_leap(2000) && is_leap(2028) && !is_leap(2100) && !is_leap(2027));
    }

    #[test]
    fn reads_bcd_and_binary() {
        let rtc = Fixed::new(FRIDAY);
        assert_eq!(rtc.time(0), [0x00, 0x50, 0x16, 6, 0x04, 0x12, 0x26, 0x20]);
        assert_eq!(rtc.read(0x0a, 0), 0x26);
        assert_eq!(rtc.read(0x0b, 0), 0x02);
        assert_eq!(rtc.read(0x0d, 0), 0x80);
        rtc.write(0x0b, B_BINARY | B_24H, 0);
        assert_eq!(rtc.time(0), [0, 50, 16, 6, 4, 12, 26, 20]);
        assert_eq!(lock(&rtc.rtc).unix_time() / 100, FRIDAY / 100);
    }

    #[test]
    fn twelve_hour_mode_sets_pm() {
        let rtc = Fixed::new(FRIDAY);
        rtc.write(0x0b, 0, 0); // BCD, 12-hour
        assert_eq!(rtc.read(0x04, 0), 0x84);
        rtc.write(0x0b, B_BINARY, 0);
        assert_eq!(rtc.read(0x04, 0), 0x84);
        // Midnight is 12 AM and noon 12 PM.
        let midnight = Fixed::new(FRIDAY - (16 * 60 + 20) * 60);
        midnight.write(0x0b, 0, 0);
        assert_eq!(midnight.read(0x04, 0), 0x12);
        assert_eq!(midnight.read(0x02, 0), 0x30);
        assert_eq!(midnight.read(0x04, 12 * 3600 * S), 0x92);
        assert_eq!(midnight.read(0x04, 13 * 3600 * S), 0x81);
    }

    #[test]
    fn time_advances_with_the_vm_clock() {
        let rtc = Fixed::new(FRIDAY);
        assert_eq!(rtc.read(0x00, S - 1), 0x00);
        assert_eq!(rtc.read(0x00, S), 0x01);
        assert_eq!(rtc.time(61 * S + S / 2)[..3], [0x01, 0x51, 0x16]);
        assert_eq!(rtc.time(3600 * S)[..3], [0x00, 0x50, 0x17]);
        // Seven hours and ten minutes later it is Saturday.
        assert_eq!(rtc.time(((7 * 60 + 10) * 60) * S)[..5], [0, 0, 0, 7, 0x05]);
    }

    #[test]
    fn real_clock_advances_the_time() {
        let router = IrqRouter::new();
        let start = UNIX_EPOCH + Duration::from_nanos(FRIDAY as u64 * 1_000_000_000 + 999_000_000);
        let rtc = Rtc::new(Clock::new(), router.line(RTC_IRQ, LineKind::Edge), start);
        let ports = |rtc: &Arc<Mutex<Rtc>>| {
            let mut ports = RtcPorts(rtc.clone());
            ports.write(0, &[0x00]);
            let mut byte = [0];
            ports.read(1, &mut byte);
            byte[0]
        };
        assert!(ports(&rtc) <= 0x01);
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(ports(&rtc), 0x01);
        assert_eq!(lock(&rtc).unix_time(), FRIDAY + 1);
    }

    #[test]
    fn set_stops_the_clock_and_sets_the_time() {
        let rtc = Fixed::new(FRIDAY);
        rtc.write(0x0b, B_SET | B_24H | B_UIE, S / 4);
        assert_eq!(rtc.read(0x0b, S / 4), B_SET | B_24H, "SET clears UIE");
        for (index, value) in [(0x00, 0x58), (0x02, 0x59), (0x04, 0x23), (0x07, 0x28)] {
            rtc.write(index, value, S / 2);
        }
        rtc.write(0x08, 0x02, S / 2);
        rtc.write(0x09, 0x29, S / 2);
        // Frozen while SET: what was written reads back, however long.
        assert_eq!(rtc.time(5 * S)[..3], [0x58, 0x59, 0x23]);
        assert_eq!(
            rtc.read(0x0a, 5 * S + S - 1000) & A_UIP,
            0,
            "no update, no UIP"
        );
        rtc.write(0x0b, B_24H, 5 * S + S / 2);
        // The divider kept its phase: the next update is at a whole second.
        assert_eq!(rtc.read(0x00, 6 * S - 1), 0x58);
        assert_eq!(
            rtc.time(6 * S),
            [0x59, 0x59, 0x23, 4, 0x28, 0x02, 0x29, 0x20]
        );
        // 2029 is no leap year.
        assert_eq!(
            rtc.time(7 * S),
            [0x00, 0x00, 0x00, 5, 0x01, 0x03, 0x29, 0x20]
        );

        // Without SET a write takes effect at once and the clock counts on.
        rtc.write(0x02, 0x10, 7 * S + S / 2);
        assert_eq!(rtc.time(8 * S)[..3], [0x01, 0x10, 0x00]);
    }

    #[test]
    fn divider_reset_restarts_half_a_second_later() {
        // What Linux's mc146818_set_time does.
        let rtc = Fixed::new(FRIDAY);
        rtc.write(0x0b, B_SET | B_24H, S / 10);
        rtc.write(0x0a, 0x70 | 0x06, S / 10);
        rtc.write(0x04, 0x08, S / 10);
        rtc.write(0x02, 0x00, S / 10);
        rtc.write(0x00, 0x00, S / 10);
        rtc.write(0x0b, B_24H, S / 10);
        assert_eq!(rtc.read(0x00, 3 * S), 0x00, "divider still in reset");
        assert_eq!(rtc.read(0x0a, 3 * S), 0x76);
        rtc.write(0x0a, 0x26, 4 * S);
        assert_eq!(rtc.time(4 * S + 500 * MS - 1)[..3], [0x00, 0x00, 0x08]);
        assert_eq!(rtc.time(4 * S + 500 * MS)[..3], [0x01, 0x00, 0x08]);
        // Other divider settings stop it too.
        rtc.write(0x0a, 0x06, 5 * S);
        assert_eq!(rtc.read(0x00, 9 * S), 0x01);
    }

    #[test]
    fn uip_is_set_just_before_each_update() {
        let rtc = Fixed::new(FRIDAY);
        assert_eq!(rtc.read(0x0a, S - 300_000), 0x26);
        assert_eq!(rtc.read(0x0a, S - 244_000), 0xa6);
        assert_eq!(rtc.read(0x0a, S - 1), 0xa6);
        assert_eq!(
            rtc.read(0x00, S - 1),
            0x00,
            "the update has not happened yet"
        );
        assert_eq!(rtc.read(0x0a, S), 0x26);
        assert_eq!(rtc.read(0x00, S), 0x01);
        // UIP cannot be written.
        rtc.write(0x0a, 0xa6, S + 1);
        assert_eq!(rtc.read(0x0a, S + 2), 0x26);
    }

    #[test]
    fn register_c_flags_and_the_line() {
        let rtc = Fixed::new(FRIDAY);
        rtc.write(0x0a, A_DIVIDER_RUN, 0); // no periodic interrupt
        rtc.write(0x0b, B_24H | B_UIE, 0);
        assert_eq!(rtc.read(0x0c, S / 2), 0);
        assert!(!rtc.line());
        // Any access after the update raises the line.
        rtc.read(0x0a, S);
        assert!(rtc.line());
        assert_eq!(rtc.read(0x0c, S), C_IRQF | C_UF);
        assert!(!rtc.line());
        assert_eq!(rtc.read(0x0c, S), 0);

        // Disabled interrupts still set their flags, without IRQF.
        rtc.write(0x0b, B_24H, S);
        assert_eq!(rtc.read(0x0c, 2 * S), C_UF);
        assert!(!rtc.line());
        // Enabling one whose flag is already set raises the line at once.
        rtc.read(0x00, 3 * S);
        rtc.write(0x0b, B_24H | B_UIE, 3 * S);
        assert!(rtc.line());
        // So does reset's clearing lower it.
        lock(&rtc.rtc).reset();
        assert!(!rtc.line());
        assert_eq!(rtc.read(0x0b, 3 * S), B_24H);

        // The periodic flag at 2 Hz: one tick every 500 ms.
        rtc.write(0x0a, A_DIVIDER_RUN | 0x0f, 3 * S);
        assert_eq!(rtc.read(0x0c, 3 * S + 499 * MS), 0);
        assert_eq!(rtc.read(0x0c, 3 * S + 500 * MS), C_PF);
        rtc.write(0x0b, B_24H | B_PIE, 3 * S + 500 * MS);
        assert!(!rtc.line());
        assert_eq!(rtc.read(0x0c, 4 * S), C_IRQF | C_PF | C_UF);
    }

    #[test]
    fn alarm_matches_values_and_dont_cares() {
        let rtc = Fixed::new(FRIDAY);
        rtc.write(0x0a, A_DIVIDER_RUN, 0);
        rtc.write(0x05, 0x16, 0);
        rtc.write(0x03, 0x50, 0);
        rtc.write(0x01, 0x05, 0);
        rtc.write(0x0b, B_24H | B_AIE, 0);
        assert_eq!(rtc.read(0x0c, 4 * S), C_UF);
        assert!(!rtc.line());
        rtc.read(0x00, 5 * S);
        assert!(rtc.line());
        assert_eq!(rtc.read(0x0c, 5 * S), C_IRQF | C_AF | C_UF);
        assert!(!rtc.line());

        // Second 30 of any minute of any hour.
        rtc.write(0x05, 0xff, 5 * S);
        rtc.write(0x03, ALARM_DONT_CARE, 5 * S);
        rtc.write(0x01, 0x30, 5 * S);
        assert_eq!(rtc.read(0x0c, 29 * S), C_UF);
        assert_eq!(rtc.read(0x0c, 30 * S), C_IRQF | C_AF | C_UF);
        assert_eq!(rtc.read(0x0c, 89 * S), C_UF);
        assert_eq!(rtc.read(0x0c, 95 * S), C_IRQF | C_AF | C_UF);
        // A flag seen long after still shows.
        assert_eq!(rtc.read(0x0c, 5000 * S) & C_AF, C_AF);

        // 4:52:00 PM in 12-hour BCD.
        rtc.write(0x0b, B_AIE, 5000 * S);
        rtc.write(0x05, 0x84, 5000 * S);
        rtc.write(0x03, 0x52, 5000 * S);
        rtc.write(0x01, 0x00, 5000 * S);
        rtc.read(0x0c, 5000 * S);
        let next_day = (24 * 3600 + 2 * 60) * S;
        assert_eq!(rtc.read(0x0c, next_day - 1) & C_AF, 0);
        assert_eq!(rtc.read(0x0c, next_day) & C_AF, C_AF);

        // An alarm no time matches never fires.
        rtc.write(0x01, 0x5a, next_day);
        assert_eq!(rtc.read(0x0c, 3 * next_day) & C_AF, 0);
    }

    #[test]
    fn rolls_over_the_year_and_the_century() {
        // 2026-12-31 23:59:59, a Thursday.
        let rtc = Fixed::new(1_798_761_599);
        assert_eq!(rtc.time(0), [0x59, 0x59, 0x23, 5, 0x31, 0x12, 0x26, 0x20]);
        assert_eq!(rtc.time(S), [0x00, 0x00, 0x00, 6, 0x01, 0x01, 0x27, 0x20]);
        // 2099-12-31 23:59:59, a Thursday.
        let rtc = Fixed::new(4_102_444_799);
        assert_eq!(rtc.time(S), [0x00, 0x00, 0x00, 6, 0x01, 0x01, 0x00, 0x21]);
        // 2100 is no leap year.
        let feb28 = (31 + 27) * 24 * 3600 * S + S;
        assert_eq!(rtc.time(feb28)[4..], [0x28, 0x02, 0x00, 0x21]);
        assert_eq!(
            rtc.time(feb28 + 24 * 3600 * S)[4..],
            [0x01, 0x03, 0x00, 0x21]
        );
    }

    #[test]
    fn leap_day_2028() {
        // 2028-02-28 23:59:59, a Monday.
        let rtc = Fixed::new(1_835_395_199);
        assert_eq!(rtc.time(S), [0x00, 0x00, 0x00, 3, 0x29, 0x02, 0x28, 0x20]);
        assert_eq!(rtc.time(S + 24 * 3600 * S)[3..6], [4, 0x01, 0x03]);
        // Set through the registers, in binary.
        let rtc = Fixed::new(FRIDAY);
        rtc.write(0x0b, B_SET | B_24H | B_BINARY, 0);
        for (index, value) in [
            (0x09, 28),
            (0x08, 2),
            (0x07, 29),
            (0x04, 23),
            (0x02, 59),
            (0x00, 59),
        ] {
            rtc.write(index, value, 0);
        }
        rtc.write(0x0b, B_24H | B_BINARY, 0);
        assert_eq!(rtc.time(S)[..6], [0, 0, 0, 4, 1, 3]);
    }

    #[test]
    fn cmos_ram_and_the_index_register() {
        let rtc = Fixed::new(FRIDAY);
        for index in (0x0e..0x80u8).filter(|&i| i != 0x32) {
            rtc.write(index, index ^ 0xa5, 0);
        }
        for index in (0x0e..0x80u8).filter(|&i| i != 0x32) {
            assert_eq!(rtc.read(index, 0), index ^ 0xa5);
        }
        // Bit 7 of the index is the NMI mask.
        rtc.write(0x8e, 0x77, 0);
        assert!(lock(&rtc.rtc).nmi_disabled);
        assert_eq!(rtc.read(0x0e, 0), 0x77);
        assert!(!lock(&rtc.rtc).nmi_disabled);
        assert_eq!(rtc.read(0xb2, 0), 0x20, "index 0x32 is the century");
        // The index port is write-only.
        let mut ports = RtcPorts(rtc.rtc.clone());
        let mut both = [0u8; 2];
        ports.write(0, &[0x0e]);
        ports.read(0, &mut both);
        assert_eq!(both, [0xff, 0x77]);
        ports.write(0, &[0x0f, 0x42]);
        assert_eq!(rtc.read(0x0f, 0), 0x42);

        let mut device = lock(&rtc.rtc);
        device.set_cmos(0x15, 0x80);
        device.set_cmos(0x00, 0x99);
        device.set_cmos(0x32, 0x99);
        device.set_cmos(0xff, 0x99);
        assert_eq!(device.regs[0x15], 0x80);
        assert_eq!(device.regs[0x32], 0x20);
    }

    #[test]
    fn memory_size_bytes() {
        let bytes = |size| {
            // The pc board's RAM: below 3 GiB from 0, the rest from 4 GiB.
            let low = u64::min(size, 0xc000_0000);
            pc_memory_bytes(low, size - low)
                .into_iter()
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
        };
        let indices: Vec<u8> = pc_memory_bytes(0, 0).into_iter().map(|(i, _)| i).collect();
        assert_eq!(
            indices,
            [
                0x15, 0x16, 0x17, 0x18, 0x30, 0x31, 0x34, 0x35, 0x5b, 0x5c, 0x5d
            ]
        );
        // 2 MiB: 1024 KiB extended, nothing above 16 MiB.
        assert_eq!(bytes(2 << 20), [0x80, 2, 0, 4, 0, 4, 0, 0, 0, 0, 0]);
        // 256 MiB: extended memory saturates; 240 MiB above 16 MiB = 3840 x 64 KiB.
        assert_eq!(
            bytes(256 << 20),
            [0x80, 2, 0xff, 0xff, 0xff, 0xff, 0x00, 0x0f, 0, 0, 0]
        );
        // 8 GiB: 3 GiB low (3056 MiB above 16 MiB), 5 GiB from 4 GiB.
        assert_eq!(
            bytes(8 << 30),
            [
                0x80, 2, 0xff, 0xff, 0xff, 0xff, 0x00, 0xbf, 0x00, 0x40, 0x01
            ]
        );
    }

    #[test]
    fn every_byte_at_every_index_is_harmless() {
        let rtc = Fixed::new(FRIDAY);
        let mut after = 0;
        for index in 0..=255u8 {
            for value in 0..=255u8 {
                after += 37_000;
                rtc.write(index, value, after);
                rtc.read(index, after);
                rtc.read(0x0c, after);
            }
            // Back to a running clock with every interrupt enabled, so the
            // next index runs the flag and alarm code on whatever is left.
            rtc.write(0x0a, 0x23, after);
            rtc.write(0x0b, B_PIE | B_AIE | B_UIE, after);
        }
        let mut device = lock(&rtc.rtc);
        device.read_port_at(2, i64::MAX);
        device.write_port_at(7, 0, i64::MAX);
        device.reset();
        // Extreme start times do not overflow either.
        for start in [
            UNIX_EPOCH - Duration::from_secs(1 << 50),
            UNIX_EPOCH + Duration::from_secs(1 << 50),
        ] {
            let rtc = Rtc::new(
                Clock::new(),
                rtc.router.line(RTC_IRQ, LineKind::Edge),
                start,
            );
            let mut rtc = lock(&rtc);
            for index in 0..0x0e {
                rtc.write_port_at(0, index, i64::MAX / 2);
                rtc.read_port_at(1, i64::MAX / 2);
            }
        }
    }

    /// Sends a message on each rising edge of IRQ 8.
    struct Edges(Mutex<mpsc::Sender<()>>);
    impl IrqSink for Edges {
        fn set_level(&self, _line: u32, high: bool) {
            if high {
                let _ = self.0.lock().unwrap().send(());
            }
        }
    }

    fn live(
        start: SystemTime,
    ) -> (
        Arc<Clock>,
        Arc<Mutex<Rtc>>,
        mpsc::Receiver<()>,
        Arc<IrqRouter>,
    ) {
        let clock = Clock::new();
        clock.start(Box::new(|| Ok(()))).unwrap();
        let router = IrqRouter::new();
        let (tx, rx) = mpsc::channel();
        router.connect(Arc::new(Edges(Mutex::new(tx))));
        let rtc = Rtc::new(clock.clone(), router.line(RTC_IRQ, LineKind::Edge), start);
        (clock, rtc, rx, router)
    }

    fn port_write(rtc: &Arc<Mutex<Rtc>>, index: u8, value: u8) {
        let mut ports = RtcPorts(rtc.clone());
        ports.write(0, &[index, value]);
    }

    fn port_read(rtc: &Arc<Mutex<Rtc>>, index: u8) -> u8 {
        let mut ports = RtcPorts(rtc.clone());
        ports.write(0, &[index]);
        let mut byte = [0];
        ports.read(1, &mut byte);
        byte[0]
    }

    #[test]
    fn periodic_interrupt_at_1024_hz() {
        let (_clock, rtc, edges, router) = live(unix(FRIDAY));
        port_write(&rtc, 0x0a, 0x26);
        port_write(&rtc, 0x0b, B_24H | B_PIE);
        // A guest handler: acknowledge each interrupt by reading register C.
        let deadline = Instant::now() + Duration::from_millis(100);
        let mut count = 0;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if edges.recv_timeout(left).is_ok() {
                assert_ne!(port_read(&rtc, 0x0c) & (C_IRQF | C_PF), 0);
                count += 1;
            }
        }
        assert!((31..=205).contains(&count), "{count} interrupts in 100 ms");
        assert!(!router.level(RTC_IRQ) || port_read(&rtc, 0x0c) != 0);

        // Disabled, it stops.
        port_write(&rtc, 0x0b, B_24H);
        port_read(&rtc, 0x0c);
        while edges.try_recv().is_ok() {}
        std::thread::sleep(Duration::from_millis(20));
        assert!(edges.try_recv().is_err());
    }

    #[test]
    fn unacknowledged_interrupts_leave_the_clock_thread_idle() {
        let (clock, rtc, edges, router) = live(unix(FRIDAY));
        port_write(&rtc, 0x0a, 0x23); // 8192 Hz
        port_write(&rtc, 0x0b, B_24H | B_PIE);
        edges.recv_timeout(Duration::from_secs(2)).unwrap();
        assert!(router.level(RTC_IRQ));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.next_deadline(), None);
        assert!(edges.try_recv().is_err());
        drop(rtc);
        assert_eq!(clock.next_deadline(), None);
    }

    #[test]
    fn alarm_and_update_interrupts_fire_on_time() {
        // 1 ms before 16:50:01.
        let start = UNIX_EPOCH + Duration::from_nanos(FRIDAY as u64 * 1_000_000_000 + 999_000_000);
        let (_clock, rtc, edges, router) = live(start);
        port_write(&rtc, 0x0a, A_DIVIDER_RUN);
        port_write(&rtc, 0x05, 0xc0);
        port_write(&rtc, 0x03, 0xc0);
        port_write(&rtc, 0x01, 0x01);
        port_write(&rtc, 0x0b, B_24H | B_AIE);
        edges.recv_timeout(Duration::from_secs(2)).unwrap();
        assert!(router.level(RTC_IRQ));
        assert_eq!(port_read(&rtc, 0x0c), C_IRQF | C_AF | C_UF);
        assert_eq!(port_read(&rtc, 0x00), 0x01);

        port_write(&rtc, 0x0b, B_24H | B_UIE);
        edges.recv_timeout(Duration::from_secs(3)).unwrap();
        assert_eq!(port_read(&rtc, 0x0c), C_IRQF | C_UF);
        assert!(!router.level(RTC_IRQ));
        assert!(port_read(&rtc, 0x00) >= 0x02);
    }
}
