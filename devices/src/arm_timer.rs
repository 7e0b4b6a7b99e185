//! The Arm generic timer (Arm ARM chapter D11) as TCG CPUs see it: the system
//! counter and each CPU's EL1 physical and virtual timers. Under KVM the
//! hardware's timers are used instead.
//!
//! Nothing ticks: the counts are the VM [`Clock`] at [`CNTFRQ_HZ`] (one tick
//! per 16 ns), the physical and virtual counts are equal (`CNTVOFF_EL2` is 0:
//! there is no EL2), and each timer's condition `count >= CVAL` is computed
//! when needed. A timer's output, `ENABLE && !IMASK && count >= CVAL`, drives
//! its PPI (interrupt ID 30 for the physical timer, 27 for the virtual one)
//! through a [`PpiFn`], called with no lock of the timer held. The output is
//! recomputed at every register access and, while a timer is enabled,
//! unmasked and not yet firing, at a clock [`Timer`] armed for the moment the
//! count reaches `CVAL`.
//!
//! Absent: the EL2 and secure timers, `CNTVOFF_EL2`, the event stream
//! (`CNTKCTL_EL1` is stored for the front end, which enforces its EL0 access
//! bits), and writes to `CNTFRQ_EL0` (only EL3 may write it; it is fixed).

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::clock::{Clock, Timer, ns_to_ticks, ticks_to_ns};

/// The counter frequency: 62.5 MHz, what QEMU (10.x included) reports for
/// `-cpu cortex-a57` and the other CPU types older than its 1 GHz default,
/// so the same guests see the same `CNTFRQ_EL0`.
pub const CNTFRQ_HZ: u64 = 62_500_000;

/// The PPI interrupt IDs of the EL1 physical and the virtual timer.
pub const PHYS_TIMER_INTID: u32 = 30;
pub const VIRT_TIMER_INTID: u32 = 27;

/// Called with `(cpu, interrupt ID, level)` when a timer's output changes
/// (normally [`crate::gic::Gic::set_ppi`]).
pub type PpiFn = Arc<dyn Fn(u32, u32, bool) + Send + Sync>;

/// The generic timer registers a CPU reads and writes with MRS and MSR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerReg {
    /// `CNTFRQ_EL0`.
    Cntfrq,
    /// `CNTPCT_EL0`.
    Cntpct,
    /// `CNTVCT_EL0`.
    Cntvct,
    /// `CNTP_CTL_EL0`: ENABLE (bit 0), IMASK (bit 1), ISTATUS (bit 2, read-only).
    CntpCtl,
    /// `CNTP_CVAL_EL0`.
    CntpCval,
    /// `CNTP_TVAL_EL0`: `CVAL - count` as a signed 32-bit value in bits 31:0.
    CntpTval,
    /// `CNTV_CTL_EL0`.
    CntvCtl,
    /// `CNTV_CVAL_EL0`.
    CntvCval,
    /// `CNTV_TVAL_EL0`.
    CntvTval,
    /// `CNTKCTL_EL1`.
    Cntkctl,
}

const CTL_ENABLE: u32 = 1 << 0;
const CTL_IMASK: u32 = 1 << 1;
const CTL_ISTATUS: u32 = 1 << 2;
/// EL0 access and event-stream controls (bits 9:0) and EVNTIS (bit 17).
const CNTKCTL_WRITABLE: u32 = 0x2_03ff;

const PHYS: usize = 0;
const VIRT: usize = 1;
const INTIDS: [u32; 2] = [PHYS_TIMER_INTID, VIRT_TIMER_INTID];
/// How many times an output update retries after racing another thread.
const MAX_RESENDS: usize = 8;

#[derive(Debug, Default, Clone, Copy)]
struct Channel {
    ctl: u32,
    cval: u64,
    /// The level last handed to the PPI callback.
    sent: bool,
}

impl Channel {
    fn condition(&self, count: u64) -> bool {
        self.ctl & CTL_ENABLE != 0 && count >= self.cval
    }

    fn output(&self, count: u64) -> bool {
        self.condition(count) && self.ctl & CTL_IMASK == 0
    }
}

#[derive(Debug, Default)]
struct CpuTimers {
    channels: [Channel; 2],
    cntkctl: u32,
    /// Counts the output updates handed out, to detect racing senders.
    generation: u64,
}

/// Every CPU's generic timers.
pub struct ArmTimer {
    clock: Arc<Clock>,
    cpus: Vec<Mutex<CpuTimers>>,
    /// Per CPU, the physical and virtual timers' deadlines.
    deadlines: Vec<[Timer; 2]>,
    ppi: PpiFn,
}

impl std::fmt::Debug for ArmTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmTimer")
            .field("cpus", &self.cpus.len())
            .finish_non_exhaustive()
    }
}

fn lock(cpu: &Mutex<CpuTimers>) -> MutexGuard<'_, CpuTimers> {
    cpu.lock().unwrap_or_else(|p| p.into_inner())
}

impl ArmTimer {
    /// The timers of `cpus` CPUs on `clock`, all disabled; `ppi` receives
    /// their outputs.
    pub fn new(clock: Arc<Clock>, cpus: u32, ppi: PpiFn) -> Arc<ArmTimer> {
        Arc::new_cyclic(|weak: &Weak<ArmTimer>| {
            let deadlines = (0..cpus)
                .map(|cpu| {
                    [PHYS, VIRT].map(|_| {
                        let weak = weak.clone();
                        clock.timer(Arc::new(move || {
                            if let Some(timer) = weak.upgrade() {
                                timer.sync(cpu as usize, timer.clock.now_ns());
                            }
                        }))
                    })
                })
                .collect();
            ArmTimer {
                clock,
                cpus: (0..cpus)
                    .map(|_| Mutex::new(CpuTimers::default()))
                    .collect(),
                deadlines,
                ppi,
            }
        })
    }

    pub fn cpu_count(&self) -> u32 {
        self.cpus.len() as u32
    }

    /// The system counter now.
    pub fn counter(&self) -> u64 {
        ns_to_ticks(self.clock.now_ns(), CNTFRQ_HZ)
    }

    /// CPU `cpu` reads `reg` (0 for a CPU that does not exist).
    pub fn read(&self, cpu: u32, reg: TimerReg) -> u64 {
        self.read_at(cpu, reg, self.clock.now_ns())
    }

    /// CPU `cpu` writes `reg`.
    pub fn write(&self, cpu: u32, reg: TimerReg, value: u64) {
        self.write_at(cpu, reg, value, self.clock.now_ns());
    }

    fn read_at(&self, cpu: u32, reg: TimerReg, now_ns: u64) -> u64 {
        let cpu = cpu as usize;
        let Some(timers) = self.cpus.get(cpu) else {
            return 0;
        };
        let count = ns_to_ticks(now_ns, CNTFRQ_HZ);
        let value = {
            let t = lock(timers);
            let ctl = |ch: &Channel| {
                let status = if ch.condition(count) { CTL_ISTATUS } else { 0 };
                u64::from(ch.ctl | status)
            };
            let tval = |ch: &Channel| u64::from(ch.cval.wrapping_sub(count) as u32);
            match reg {
                TimerReg::Cntfrq => CNTFRQ_HZ,
                TimerReg::Cntpct | TimerReg::Cntvct => count,
                TimerReg::CntpCtl => ctl(&t.channels[PHYS]),
                TimerReg::CntvCtl => ctl(&t.channels[VIRT]),
                TimerReg::CntpCval => t.channels[PHYS].cval,
                TimerReg::CntvCval => t.channels[VIRT].cval,
                TimerReg::CntpTval => tval(&t.channels[PHYS]),
                TimerReg::CntvTval => tval(&t.channels[VIRT]),
                TimerReg::Cntkctl => u64::from(t.cntkctl),
            }
        };
        self.sync(cpu, now_ns);
        value
    }

    fn write_at(&self, cpu: u32, reg: TimerReg, value: u64, now_ns: u64) {
        let cpu = cpu as usize;
        let Some(timers) = self.cpus.get(cpu) else {
            return;
        };
        let count = ns_to_ticks(now_ns, CNTFRQ_HZ);
        {
            let mut t = lock(timers);
            // TVAL is a signed 32-bit offset from the count.
            let from_tval = count.wrapping_add(value as u32 as i32 as i64 as u64);
            match reg {
                TimerReg::CntpCtl => {
                    t.channels[PHYS].ctl = value as u32 & (CTL_ENABLE | CTL_IMASK);
                }
                TimerReg::CntvCtl => {
                    t.channels[VIRT].ctl = value as u32 & (CTL_ENABLE | CTL_IMASK);
                }
                TimerReg::CntpCval => t.channels[PHYS].cval = value,
                TimerReg::CntvCval => t.channels[VIRT].cval = value,
                TimerReg::CntpTval => t.channels[PHYS].cval = from_tval,
                TimerReg::CntvTval => t.channels[VIRT].cval = from_tval,
                TimerReg::Cntkctl => t.cntkctl = value as u32 & CNTKCTL_WRITABLE,
                TimerReg::Cntfrq | TimerReg::Cntpct | TimerReg::Cntvct => {
                    log::debug!("arm timer: CPU {cpu} write of {value:#x} to {reg:?} ignored");
                }
            }
        }
        self.sync(cpu, now_ns);
    }

    /// Recomputes CPU `cpu`'s outputs at `now_ns`, re-arms its deadlines and
    /// hands changed levels to the PPI callback outside the lock.
    ///
    /// Two threads (the CPU's and the clock's) may update at once, and their
    /// callbacks may land in either order. So a sender that finds another
    /// update was handed out after its own sends the current levels again:
    /// the last callback to land always carries levels at least as new as
    /// every other.
    fn sync(&self, cpu: usize, now_ns: u64) {
        let (Some(timers), Some(deadlines)) = (self.cpus.get(cpu), self.deadlines.get(cpu)) else {
            return;
        };
        let mut resend = false;
        for _ in 0..MAX_RESENDS {
            let mut changes = [None; 2];
            let generation = {
                let mut t = lock(timers);
                let count = ns_to_ticks(now_ns, CNTFRQ_HZ);
                for (index, channel) in t.channels.iter_mut().enumerate() {
                    let level = channel.output(count);
                    if level != channel.sent || resend {
                        channel.sent = level;
                        changes[index] = Some(level);
                    }
                    let waiting = channel.ctl & (CTL_ENABLE | CTL_IMASK) == CTL_ENABLE
                        && !channel.condition(count);
                    if waiting {
                        deadlines[index].arm_at(ticks_to_ns(channel.cval, CNTFRQ_HZ));
                    } else {
                        deadlines[index].cancel();
                    }
                }
                if changes.iter().all(Option::is_none) {
                    return;
                }
                t.generation = t.generation.wrapping_add(1);
                t.generation
            };
            for (index, change) in changes.into_iter().enumerate() {
                if let Some(level) = change {
                    (self.ppi)(cpu as u32, INTIDS[index], level);
                }
            }
            if lock(timers).generation == generation {
                return;
            }
            resend = true;
        }
        log::debug!("arm timer: CPU {cpu}'s outputs kept changing while being sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    type Events = Arc<Mutex<Vec<(u32, u32, bool)>>>;

    fn recording(cpus: u32) -> (Arc<ArmTimer>, Events) {
        let events: Events = Arc::default();
        let sink = events.clone();
        let timer = ArmTimer::new(
            Clock::new(),
            cpus,
            Arc::new(move |cpu, intid, level| sink.lock().unwrap().push((cpu, intid, level))),
        );
        (timer, events)
    }

    fn take(events: &Events) -> Vec<(u32, u32, bool)> {
        std::mem::take(&mut *events.lock().unwrap())
    }

    /// Guest time far enough ahead that the real clock never catches up
    /// during a test.
    const T: u64 = 1 << 50;
    /// Nanoseconds per tick.
    const TICK: u64 = 16;

    #[test]
    fn istatus_and_the_ppi_follow_cval() {
        let (timer, events) = recording(2);
        let count = T / TICK;
        timer.write_at(1, TimerReg::CntpCval, count + 100, T);
        timer.write_at(1, TimerReg::CntpCtl, 1, T);
        assert_eq!(timer.read_at(1, TimerReg::CntpCtl, T), 1);
        assert!(take(&events).is_empty());
        // The deadline is armed at the tick CVAL is reached.
        let armed = timer.deadlines[1][PHYS].deadline();
        assert_eq!(armed, Some((count + 100) * TICK));

        let later = T + 100 * TICK;
        assert_eq!(
            timer.read_at(1, TimerReg::CntpCtl, later),
            u64::from(1 | CTL_ISTATUS)
        );
        assert_eq!(take(&events), [(1, 30, true)]);
        assert_eq!(timer.deadlines[1][PHYS].deadline(), None);

        // IMASK lowers the line; ISTATUS stays.
        timer.write_at(1, TimerReg::CntpCtl, 3, later);
        assert_eq!(take(&events), [(1, 30, false)]);
        assert_eq!(
            timer.read_at(1, TimerReg::CntpCtl, later),
            u64::from(3 | CTL_ISTATUS)
        );
        // Unmasked and moved forward: low, and waiting again.
        timer.write_at(1, TimerReg::CntpCval, count + 500, later);
        timer.write_at(1, TimerReg::CntpCtl, 1, later);
        assert!(take(&events).is_empty());
        assert!(timer.deadlines[1][PHYS].deadline().is_some());
        // Disabling cancels it.
        timer.write_at(1, TimerReg::CntpCtl, 0, later);
        assert_eq!(timer.deadlines[1][PHYS].deadline(), None);
        // CPU 0 saw nothing.
        assert_eq!(timer.read_at(0, TimerReg::CntpCtl, later), 0);
    }

    #[test]
    fn the_virtual_timer_drives_ppi_27() {
        let (timer, events) = recording(1);
        timer.write_at(0, TimerReg::CntvCval, 0, T);
        timer.write_at(0, TimerReg::CntvCtl, 1, T);
        assert_eq!(take(&events), [(0, 27, true)]);
        assert_eq!(timer.read_at(0, TimerReg::CntvCval, T), 0);
        assert_eq!(timer.read_at(0, TimerReg::CntpCtl, T), 0);
    }

    #[test]
    fn tval_is_a_signed_32_bit_view() {
        let (timer, _) = recording(1);
        let count = T / TICK;
        timer.write_at(0, TimerReg::CntpTval, 1000, T);
        assert_eq!(timer.read_at(0, TimerReg::CntpCval, T), count + 1000);
        assert_eq!(timer.read_at(0, TimerReg::CntpTval, T + 10 * TICK), 990);
        // Negative: written as a 32-bit two's complement.
        timer.write_at(0, TimerReg::CntvTval, u64::from((-5i32) as u32), T);
        assert_eq!(timer.read_at(0, TimerReg::CntvCval, T), count - 5);
        assert_eq!(
            timer.read_at(0, TimerReg::CntvTval, T),
            u64::from((-5i32) as u32)
        );
        // After CVAL passes, TVAL counts down below zero.
        let tval = timer.read_at(0, TimerReg::CntpTval, T + 1010 * TICK) as u32 as i32;
        assert_eq!(tval, -10);
    }

    #[test]
    fn fixed_registers() {
        let (timer, _) = recording(1);
        assert_eq!(timer.read(0, TimerReg::Cntfrq), 62_500_000);
        timer.write(0, TimerReg::Cntfrq, 1);
        assert_eq!(timer.read(0, TimerReg::Cntfrq), 62_500_000);
        timer.write(0, TimerReg::Cntkctl, u64::MAX);
        assert_eq!(timer.read(0, TimerReg::Cntkctl), 0x2_03ff);
        // A CPU that does not exist reads zero and is ignored.
        timer.write(5, TimerReg::CntpCtl, 1);
        assert_eq!(timer.read(5, TimerReg::CntpCtl), 0);
    }

    #[test]
    fn the_counter_runs_at_cntfrq() {
        let (timer, _) = recording(1);
        let start = std::time::Instant::now();
        let a = timer.read(0, TimerReg::Cntpct);
        std::thread::sleep(Duration::from_millis(50));
        let b = timer.read(0, TimerReg::Cntvct);
        let elapsed = start.elapsed().as_nanos() as u64;
        assert!(b > a);
        let ticks = b - a;
        // At least 50 ms worth, at most what really passed (plus a tick).
        assert!(ticks >= 50_000_000 / TICK, "{ticks} ticks");
        assert!(ticks <= elapsed / TICK + 1, "{ticks} ticks in {elapsed} ns");
    }

    #[test]
    fn a_real_deadline_raises_the_ppi() {
        let clock = Clock::new();
        clock.start(Box::new(|| Ok(()))).unwrap();
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let timer = ArmTimer::new(
            clock,
            1,
            Arc::new(move |cpu, intid, level| {
                let _ = tx.lock().unwrap().send((cpu, intid, level));
            }),
        );
        // 10 ms from now.
        timer.write(0, TimerReg::CntpTval, 625_000);
        timer.write(0, TimerReg::CntpCtl, 1);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Ok((0, PHYS_TIMER_INTID, true))
        );
        assert_ne!(timer.read(0, TimerReg::CntpCtl) & u64::from(CTL_ISTATUS), 0);
    }
}
