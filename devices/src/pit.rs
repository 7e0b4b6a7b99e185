//! The 8254 programmable interval timer of the PC, and the port 0x61 bits that
//! belong to it.
//!
//! ```text
//!   0x40-0x42  channels 0-2 count registers     1_193_182 Hz input clock
//!   0x43       control word (mode, latch, read-back)
//!   0x61       bit 0 channel 2 gate, bit 1 speaker enable (stored),
//!              bit 4 refresh toggle (flips on every read), bit 5 channel 2 OUT
//!   channel 0 OUT ──► IRQ 0 (edge)   channel 1 unused   channel 2 ──► speaker
//! ```
//!
//! Nothing ticks: each channel remembers when its count was loaded (or its gate
//! triggered it) and computes its count and OUT from the [`Clock`] when the
//! guest looks. Only channel 0 needs a timer, to pulse IRQ 0 where OUT rises:
//! every period in modes 2 and 3, once at terminal count in modes 0 and 4. IRQ 0
//! fires at most every 100 µs whatever the programmed rate, so a guest cannot
//! turn the clock thread into a busy loop; periods missed because the host was
//! late are coalesced into one pulse, as an edge-triggered IRR would anyway.
//!
//! Simplifications: BCD counting is treated as binary; a count written while a
//! mode 2 or 3 channel runs restarts it at once instead of at the end of the
//! current period; a count takes effect on the write, not on the next input
//! clock edge.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::bus::BusDevice;
use crate::clock::{Clock, Timer, ns_to_ticks, ticks_to_ns};
use crate::irq::IrqLine;

/// The channel and control ports.
pub const PIT_PORT: u64 = 0x40;
pub const PIT_SIZE: u64 = 4;
/// The system control port B, whose low bits drive channel 2.
pub const SPEAKER_PORT: u64 = 0x61;
pub const SPEAKER_SIZE: u64 = 1;
/// The 8254's input clock on the PC.
pub const PIT_HZ: u64 = 1_193_182;

/// The shortest interval between two IRQ 0 pulses.
const MIN_IRQ_PERIOD_NS: u64 = 100_000;

const PORT61_GATE2: u8 = 1 << 0;
const PORT61_SPEAKER: u8 = 1 << 1;
const PORT61_REFRESH: u8 = 1 << 4;
const PORT61_OUT2: u8 = 1 << 5;

/// Which bytes of the count a channel's register reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Low = 1,
    High = 2,
    LowHigh = 3,
}

/// The count and OUT of a counting channel `ticks` input clocks after its count
/// `reload` (1..=65536) was loaded or triggered. Counts are as the guest reads
/// them: 65536 reads as 0.
fn count_and_out(mode: u8, reload: u64, ticks: u64) -> (u16, bool) {
    let wrap = |count: u64| (count & 0xffff) as u16;
    match mode {
        // Interrupt on terminal count / hardware one-shot: OUT rises at zero,
        // and the counter keeps wrapping.
        0 | 1 => (wrap(reload.wrapping_sub(ticks)), ticks >= reload),
        // Rate generator: OUT is low for the last tick of each period.
        2 => {
            let phase = ticks % reload;
            (wrap(reload - phase), phase != reload - 1)
        }
        // Square wave: high for the first (larger) half, counting by two.
        3 => {
            let phase = ticks % reload;
            let high = reload.div_ceil(2);
            if phase < high {
                (wrap(reload.saturating_sub(2 * phase)), true)
            } else {
                (wrap(reload.saturating_sub(2 * (phase - high))), false)
            }
        }
        // Software / hardware strobe: OUT is low for the tick at zero.
        _ => (wrap(reload.wrapping_sub(ticks)), ticks != reload),
    }
}

#[derive(Debug, Clone)]
struct Channel {
    /// 0-5 (6 and 7 are stored as 2 and 3).
    mode: u8,
    access: Access,
    /// 1..=65536.
    reload: u64,
    /// A count was written since the last control word.
    loaded: bool,
    /// Modes 1 and 5: the gate has risen since the count was loaded.
    triggered: bool,
    gate: bool,
    /// Guest time counting (re)started.
    start_ns: u64,
    /// Time counted before the gate stopped the channel, while it is stopped.
    paused: Option<u64>,
    /// Lobyte/hibyte writes: the low byte waiting for its high byte.
    low_written: Option<u8>,
    /// Lobyte/hibyte reads: the next read returns the high byte.
    read_high: bool,
    latched_count: Option<u16>,
    latched_status: Option<u8>,
}

impl Channel {
    fn new(gate: bool) -> Self {
        Channel {
            mode: 0,
            access: Access::LowHigh,
            reload: 0x10000,
            loaded: false,
            triggered: false,
            gate,
            start_ns: 0,
            paused: None,
            low_written: None,
            read_high: false,
            latched_count: None,
            latched_status: None,
        }
    }

    /// Whether the gate being low stops this mode's counting (modes 1 and 5
    /// use the gate as a trigger instead).
    fn gate_pauses(&self) -> bool {
        !matches!(self.mode, 1 | 5)
    }

    fn elapsed_ns(&self, now: u64) -> u64 {
        self.paused
            .unwrap_or_else(|| now.saturating_sub(self.start_ns))
    }

    fn counting(&self) -> bool {
        self.loaded && (self.gate_pauses() || self.triggered)
    }

    fn state(&self, now: u64) -> (u16, bool) {
        if !self.counting() {
            return ((self.reload & 0xffff) as u16, self.mode != 0);
        }
        let ticks = ns_to_ticks(self.elapsed_ns(now), PIT_HZ);
        let (count, out) = count_and_out(self.mode, self.reload, ticks);
        // A low gate holds OUT high in modes 2 and 3.
        let out = out || (!self.gate && matches!(self.mode, 2 | 3));
        (count, out)
    }

    fn status(&self, now: u64) -> u8 {
        let (_, out) = self.state(now);
        (u8::from(out) << 7)
            | (u8::from(!self.loaded) << 6)
            | ((self.access as u8) << 4)
            | (self.mode << 1)
    }

    fn control(&mut self, value: u8) {
        self.access = match (value >> 4) & 3 {
            1 => Access::Low,
            2 => Access::High,
            _ => Access::LowHigh,
        };
        self.mode = match (value >> 1) & 7 {
            mode @ 6..=7 => mode - 4,
            mode => mode,
        };
        if value & 1 != 0 {
            log::debug!("8254 BCD counting is not supported; counting in binary");
        }
        self.loaded = false;
        self.triggered = false;
        self.paused = None;
        self.low_written = None;
        self.read_high = false;
        self.latched_count = None;
        self.latched_status = None;
    }

    fn load(&mut self, count: u16, now: u64) {
        self.reload = if count == 0 {
            0x10000
        } else {
            u64::from(count)
        };
        self.loaded = true;
        self.triggered = false;
        self.start_ns = now;
        self.paused = (self.gate_pauses() && !self.gate).then_some(0);
    }

    fn write_count(&mut self, value: u8, now: u64) {
        match self.access {
            Access::Low => self.load(u16::from(value), now),
            Access::High => self.load(u16::from(value) << 8, now),
            Access::LowHigh => match self.low_written.take() {
                None => self.low_written = Some(value),
                Some(low) => self.load(u16::from_le_bytes([low, value]), now),
            },
        }
    }

    fn read_count(&mut self, now: u64) -> u8 {
        if let Some(status) = self.latched_status.take() {
            return status;
        }
        let count = match self.latched_count {
            Some(count) => count,
            None => self.state(now).0,
        };
        let [low, high] = count.to_le_bytes();
        match self.access {
            Access::Low => {
                self.latched_count = None;
                low
            }
            Access::High => {
                self.latched_count = None;
                high
            }
            Access::LowHigh => {
                self.read_high = !self.read_high;
                if self.read_high {
                    low
                } else {
                    self.latched_count = None;
                    high
                }
            }
        }
    }

    fn latch_count(&mut self, now: u64) {
        // A second latch before the first was read is ignored, as on the chip.
        if self.latched_count.is_none() {
            self.latched_count = Some(self.state(now).0);
        }
    }

    fn set_gate(&mut self, high: bool, now: u64) {
        if high == self.gate {
            return;
        }
        self.gate = high;
        if !self.loaded {
            return;
        }
        match (self.mode, high) {
            // The gate stops and resumes the count.
            (0 | 4, false) | (2 | 3, false) => self.paused = Some(self.elapsed_ns(now)),
            (0 | 4, true) => {
                if let Some(elapsed) = self.paused.take() {
                    self.start_ns = now.saturating_sub(elapsed);
                }
            }
            // A rising gate reloads and restarts the count.
            (2 | 3, true) => {
                self.paused = None;
                self.start_ns = now;
            }
            (_, true) => {
                self.triggered = true;
                self.start_ns = now;
            }
            (_, false) => {}
        }
    }
}

/// The 8254 and port 0x61.
pub struct Pit {
    clock: Arc<Clock>,
    irq0: IrqLine,
    /// Pulses IRQ 0; see [`Pit::irq_fired`].
    timer: Option<Timer>,
    /// When channel 0's OUT next rises, if it will.
    irq_deadline: Option<u64>,
    channels: [Channel; 3],
    speaker: u8,
    refresh: bool,
}

impl Pit {
    /// A PIT whose channel 0 pulses `irq0`, timed by `clock`.
    pub fn new(clock: Arc<Clock>, irq0: IrqLine) -> Arc<Mutex<Pit>> {
        Arc::new_cyclic(|weak: &Weak<Mutex<Pit>>| {
            let weak = weak.clone();
            let timer = clock.timer(Arc::new(move || Pit::irq_fired(&weak)));
            Mutex::new(Pit {
                clock,
                irq0,
                timer: Some(timer),
                irq_deadline: None,
                channels: [Channel::new(true), Channel::new(true), Channel::new(false)],
                speaker: 0,
                refresh: false,
            })
        })
    }

    /// Back to the power-on state: no channel counts and IRQ 0 is quiet.
    pub fn reset(&mut self) {
        self.channels = [Channel::new(true), Channel::new(true), Channel::new(false)];
        self.speaker = 0;
        self.refresh = false;
        self.schedule_irq();
    }

    /// A guest read of port 0x40 + `offset`.
    pub fn read_port(&mut self, offset: u64) -> u8 {
        let now = self.clock.now_ns();
        match offset {
            0..=2 => self.channels[offset as usize].read_count(now),
            // The control word register is write-only.
            _ => 0,
        }
    }

    /// A guest write of `value` to port 0x40 + `offset`.
    pub fn write_port(&mut self, offset: u64, value: u8) {
        let now = self.clock.now_ns();
        match offset {
            0..=2 => self.channels[offset as usize].write_count(value, now),
            3 => self.control(value, now),
            _ => {
                log::debug!("8254 write at offset {offset} outside its four ports");
                return;
            }
        }
        self.schedule_irq();
    }

    /// A guest read of port 0x61.
    pub fn read_speaker(&mut self) -> u8 {
        // Software times short delays by watching the refresh bit flip; a flip
        // per read keeps such loops moving.
        self.refresh = !self.refresh;
        let (_, out2) = self.channels[2].state(self.clock.now_ns());
        (self.speaker & (PORT61_GATE2 | PORT61_SPEAKER))
            | if self.refresh { PORT61_REFRESH } else { 0 }
            | if out2 { PORT61_OUT2 } else { 0 }
    }

    /// A guest write of port 0x61.
    pub fn write_speaker(&mut self, value: u8) {
        self.speaker = value & (PORT61_GATE2 | PORT61_SPEAKER);
        let now = self.clock.now_ns();
        self.channels[2].set_gate(value & PORT61_GATE2 != 0, now);
    }

    /// The OUT pin of `channel` (0-2) now.
    pub fn output(&self, channel: usize) -> bool {
        self.channels
            .get(channel)
            .is_some_and(|c| c.state(self.clock.now_ns()).1)
    }

    fn control(&mut self, value: u8, now: u64) {
        let select = value >> 6;
        if select == 3 {
            // Read-back: bits 3-1 pick channels 2-0; a zero bit 5 latches their
            // counts, a zero bit 4 their status.
            for (index, channel) in self.channels.iter_mut().enumerate() {
                if value & (2 << index) == 0 {
                    continue;
                }
                if value & 0x20 == 0 {
                    channel.latch_count(now);
                }
                if value & 0x10 == 0 && channel.latched_status.is_none() {
                    channel.latched_status = Some(channel.status(now));
                }
            }
            return;
        }
        let channel = &mut self.channels[usize::from(select)];
        if (value >> 4) & 3 == 0 {
            channel.latch_count(now);
        } else {
            channel.control(value);
        }
    }

    /// Arms the IRQ 0 timer for channel 0's next rising OUT after now.
    fn schedule_irq(&mut self) {
        let now = self.clock.now_ns();
        let channel = &self.channels[0];
        self.irq_deadline = if !channel.counting() || channel.paused.is_some() {
            None
        } else {
            let elapsed = now.saturating_sub(channel.start_ns);
            let reload = channel.reload;
            match channel.mode {
                0 | 4 => {
                    let deadline = channel.start_ns.saturating_add(ticks_to_ns(reload, PIT_HZ));
                    (deadline > now).then_some(deadline)
                }
                2 | 3 => {
                    let period = ticks_to_ns(reload, PIT_HZ);
                    let offset = if period >= MIN_IRQ_PERIOD_NS {
                        let periods = ns_to_ticks(elapsed, PIT_HZ) / reload + 1;
                        ticks_to_ns(periods.saturating_mul(reload), PIT_HZ)
                    } else {
                        (elapsed / MIN_IRQ_PERIOD_NS + 1).saturating_mul(MIN_IRQ_PERIOD_NS)
                    };
                    Some(channel.start_ns.saturating_add(offset))
                }
                // Channel 0's gate is tied high, so modes 1 and 5 never trigger.
                _ => None,
            }
        };
        if let Some(timer) = &self.timer {
            match self.irq_deadline {
                Some(deadline) => timer.arm_at(deadline),
                None => timer.cancel(),
            }
        }
    }

    /// The IRQ 0 timer's callback, on the clock thread.
    fn irq_fired(pit: &Weak<Mutex<Pit>>) {
        let Some(pit) = pit.upgrade() else {
            return;
        };
        let line = {
            let mut pit = lock(&pit);
            let now = pit.clock.now_ns();
            match pit.irq_deadline {
                Some(deadline) if deadline <= now => {
                    pit.schedule_irq();
                    Some(pit.irq0.clone())
                }
                // Fired early or for an older programming: wait for the
                // current deadline.
                Some(deadline) => {
                    if let Some(timer) = &pit.timer {
                        timer.arm_at(deadline);
                    }
                    None
                }
                None => None,
            }
        };
        // Pulsed without the PIT's lock: the router and the PIC take theirs.
        if let Some(line) = line {
            line.pulse();
        }
    }
}

impl Drop for Pit {
    fn drop(&mut self) {
        // Cancels IRQ 0 before anything else of the PIT goes.
        self.timer.take();
    }
}

fn lock(pit: &Mutex<Pit>) -> MutexGuard<'_, Pit> {
    pit.lock().unwrap_or_else(|p| p.into_inner())
}

/// The PIT's ports 0x40-0x43 on the I/O bus.
pub struct PitPorts(pub Arc<Mutex<Pit>>);

impl BusDevice for PitPorts {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let mut pit = lock(&self.0);
        for (port, byte) in (offset..).zip(data.iter_mut()) {
            *byte = pit.read_port(port);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut pit = lock(&self.0);
        for (port, &byte) in (offset..).zip(data) {
            pit.write_port(port, byte);
        }
    }
}

/// Port 0x61 on the I/O bus.
pub struct SpeakerPort(pub Arc<Mutex<Pit>>);

impl BusDevice for SpeakerPort {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let Some(first) = data.first_mut() {
            *first = lock(&self.0).read_speaker();
        }
    }

    fn write(&mut self, _offset: u64, data: &[u8]) {
        if let Some(&value) = data.first() {
            lock(&self.0).write_speaker(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::{IrqRouter, IrqSink, LineKind};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Counts rising edges on any line.
    struct Edges(AtomicUsize);
    impl IrqSink for Edges {
        fn set_level(&self, _line: u32, high: bool) {
            if high {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    struct Rig {
        clock: Arc<Clock>,
        pit: Arc<Mutex<Pit>>,
        ports: PitPorts,
        speaker: SpeakerPort,
        edges: Arc<Edges>,
    }

    fn rig() -> Rig {
        let clock = Clock::new();
        clock.start(Box::new(|| Ok(()))).unwrap();
        let router = IrqRouter::new();
        let edges = Arc::new(Edges(AtomicUsize::new(0)));
        router.connect(edges.clone());
        let pit = Pit::new(clock.clone(), router.line(0, LineKind::Edge));
        Rig {
            clock,
            ports: PitPorts(pit.clone()),
            speaker: SpeakerPort(pit.clone()),
            pit,
            edges,
        }
    }

    impl Rig {
        fn out(&mut self, port: u64, value: u8) {
            self.ports.write(port, &[value]);
        }
        fn inb(&mut self, port: u64) -> u8 {
            let mut byte = [0];
            self.ports.read(port, &mut byte);
            byte[0]
        }
        fn inw(&mut self, port: u64) -> u16 {
            let low = self.inb(port);
            u16::from_le_bytes([low, self.inb(port)])
        }
        fn port61(&mut self) -> u8 {
            let mut byte = [0];
            self.speaker.read(0, &mut byte);
            byte[0]
        }
        fn edges(&self) -> usize {
            self.edges.0.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn counts_and_outputs_per_mode() {
        // Mode 0: low until terminal count, then high; the count wraps.
        assert_eq!(count_and_out(0, 10, 0), (10, false));
        assert_eq!(count_and_out(0, 10, 9), (1, false));
        assert_eq!(count_and_out(0, 10, 10), (0, true));
        assert_eq!(count_and_out(0, 10, 11), (0xffff, true));
        assert_eq!(count_and_out(0, 0x10000, 0), (0, false));
        // Mode 2: low for one tick each period.
        assert_eq!(count_and_out(2, 4, 0), (4, true));
        assert_eq!(count_and_out(2, 4, 3), (1, false));
        assert_eq!(count_and_out(2, 4, 4), (4, true));
        // Mode 3: a square wave, counting by two.
        assert_eq!(count_and_out(3, 6, 0), (6, true));
        assert_eq!(count_and_out(3, 6, 2), (2, true));
        assert_eq!(count_and_out(3, 6, 3), (6, false));
        assert_eq!(count_and_out(3, 6, 6), (6, true));
        assert_eq!(count_and_out(3, 5, 2), (1, true));
        assert_eq!(count_and_out(3, 5, 3), (5, false));
        // Mode 4: a one-tick strobe at zero.
        assert_eq!(count_and_out(4, 3, 2), (1, true));
        assert_eq!(count_and_out(4, 3, 3), (0, false));
        assert_eq!(count_and_out(4, 3, 4), (0xffff, true));
    }

    #[test]
    fn mode2_pulses_irq0_periodically() {
        let mut rig = rig();
        // Channel 0, lobyte/hibyte, mode 2, 1 kHz.
        rig.out(3, 0x34);
        let count = (PIT_HZ / 1000) as u16;
        rig.out(0, count as u8);
        rig.out(0, (count >> 8) as u8);
        std::thread::sleep(Duration::from_millis(100));
        let pulses = rig.edges();
        assert!((30..=200).contains(&pulses), "{pulses} pulses in 100 ms");

        // Reprogramming as a one-shot stops the stream.
        rig.out(3, 0x30);
        std::thread::sleep(Duration::from_millis(5));
        let stopped = rig.edges();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rig.edges(), stopped);
    }

    #[test]
    fn mode0_pulses_once_at_terminal_count() {
        let mut rig = rig();
        rig.out(3, 0x30);
        rig.out(0, 0xa9); // 1193 ticks: 1 ms
        rig.out(0, 0x04);
        assert!(!lock(&rig.pit).output(0));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(rig.edges(), 1);
        assert!(lock(&rig.pit).output(0));
    }

    #[test]
    fn latched_counts_decrease() {
        let mut rig = rig();
        rig.out(3, 0x30); // channel 0, mode 0
        rig.out(0, 0xff);
        rig.out(0, 0xff);
        let mut last = u16::MAX;
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(1));
            rig.out(3, 0x00); // counter latch
            let count = rig.inw(0);
            assert!(count < last, "{count:#x} after {last:#x}");
            last = count;
        }
        // A latch holds its value however late it is read.
        rig.out(3, 0x00);
        std::thread::sleep(Duration::from_millis(2));
        rig.out(3, 0x00); // ignored: the first latch is unread
        let latched = rig.inw(0);
        assert!(latched < last);
        assert!(rig.inw(0) < latched, "live count keeps going");

        // Read-back of count and status.
        rig.out(3, 0xc2);
        let status = rig.inb(0);
        assert_eq!(status, 0x30, "OUT low, count loaded, lobyte/hibyte, mode 0");
        let readback = rig.inw(0);
        assert!(readback < latched);
        // Status only.
        rig.out(3, 0xe2);
        assert_eq!(rig.inb(0), 0x30);
    }

    #[test]
    fn low_byte_only_access() {
        let mut rig = rig();
        rig.out(3, 0x54); // channel 1, lobyte only, mode 2
        rig.out(1, 100);
        for _ in 0..10 {
            let count = rig.inb(1);
            assert!((1..=100).contains(&count), "{count}");
        }
        rig.out(3, 0xe4); // read-back status of channel 1
        // OUT is low for one tick in a hundred; leave it out.
        assert_eq!(rig.inb(1) & 0x7f, 0x14, "count loaded, lobyte, mode 2");
    }

    #[test]
    fn port61_gates_channel2_and_shows_its_output() {
        let mut rig = rig();
        // Gate low, channel 2 mode 0 with a 1 ms count: it waits.
        rig.out(3, 0xb0);
        rig.out(2, 0xa9);
        rig.out(2, 0x04);
        std::thread::sleep(Duration::from_millis(5));
        let first = rig.port61();
        assert_eq!(first & (PORT61_OUT2 | PORT61_GATE2), 0);
        rig.out(3, 0x80);
        assert_eq!(rig.inw(2), 0x04a9, "a stopped channel keeps its count");
        // The refresh bit flips on every read.
        assert_ne!(rig.port61() & PORT61_REFRESH, first & PORT61_REFRESH);

        // Gate high, speaker off, as Linux calibrates the TSC.
        rig.speaker.write(0, &[PORT61_GATE2]);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while rig.port61() & PORT61_OUT2 == 0 {
            assert!(std::time::Instant::now() < deadline, "OUT2 never rose");
            std::thread::sleep(Duration::from_micros(200));
        }
        assert_eq!(rig.port61() & PORT61_GATE2, PORT61_GATE2);
        // Channel 2 has no interrupt.
        assert_eq!(rig.edges(), 0);
    }

    #[test]
    fn dropping_the_pit_stops_irq0() {
        let mut rig = rig();
        rig.out(3, 0x34);
        rig.out(0, 0xa9);
        rig.out(0, 0x04);
        std::thread::sleep(Duration::from_millis(10));
        let Rig {
            clock,
            pit,
            ports,
            speaker,
            edges,
        } = rig;
        drop((pit, ports, speaker));
        std::thread::sleep(Duration::from_millis(5));
        let after = edges.0.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(edges.0.load(Ordering::SeqCst), after);
        assert_eq!(clock.next_deadline(), None);
    }

    #[test]
    fn hostile_accesses_are_harmless() {
        let mut rig = rig();
        for value in 0..=255u8 {
            for port in 0..4 {
                rig.out(port, value);
                rig.inb(port);
            }
            rig.speaker.write(0, &[value]);
            rig.port61();
        }
        let mut wide = [0u8; 8];
        rig.ports.read(0, &mut wide);
        rig.ports.write(2, &[1, 2, 3, 4]);
        lock(&rig.pit).reset();
        assert_eq!(rig.clock.next_deadline(), None);
    }
}
