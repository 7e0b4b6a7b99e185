//! The local APIC timer: a 32-bit down-counter clocked by the bus clock through a
//! divider, in one-shot or periodic mode.
//!
//! Nothing ticks: the count is computed from the time the current period began,
//! and a single host deadline (through [`TimerSource`]) stands for the moment the
//! count reaches zero. TSC-deadline mode is absent (the LVT timer's bit 18 is not
//! writable), so a guest must find it absent in CPUID too.

/// The timer's input clock before the divider: 1 GHz, as QEMU's model uses, so one
/// tick at divide-by-1 is one nanosecond of VM time.
pub const APIC_TIMER_HZ: u64 = 1_000_000_000;

/// The shortest period a periodic timer is re-armed with, whatever the guest
/// programs: a guest asking for one interrupt per nanosecond would otherwise keep
/// a host thread busy. Missed periods are coalesced into one interrupt, as a real
/// APIC does while its IRR bit is already set. (KVM clamps periodic timers too.)
pub const MIN_PERIODIC_NS: u64 = 100_000;

/// The VM clock as one local APIC timer sees it.
///
/// The integrator implements this over the VM clock: `arm(Some(t))` (re)arms a
/// host timer whose callback calls [`super::ApicBus::timer_expired`] for this CPU,
/// `arm(None)` cancels it. The APIC calls `arm` while holding its own lock, so
/// `arm` must not wait for a running callback to finish (the callback takes that
/// lock); an early or stale callback is harmless, because the APIC re-checks the
/// time when it runs.
pub trait TimerSource: Send + Sync {
    /// Nanoseconds of VM time.
    fn now_ns(&self) -> u64;
    /// Sets (`Some`) or cancels (`None`) the one pending deadline.
    fn arm(&self, deadline_ns: Option<u64>);
}

/// Divide configuration register bits that exist (bits 0, 1 and 3).
const DIVIDE_BITS: u32 = 0b1011;

pub(crate) struct ApicTimer {
    source: Box<dyn TimerSource>,
    divide_config: u32,
    initial: u32,
    /// When the count last restarted or changed rate; `None` once a one-shot
    /// count has expired or while the initial count is zero.
    period_start: Option<u64>,
    /// Ticks of the current period already counted at `period_start` (at an
    /// earlier divider); always below `initial`.
    ticks_done: u64,
}

impl ApicTimer {
    pub(crate) fn new(source: Box<dyn TimerSource>) -> Self {
        ApicTimer {
            source,
            divide_config: 0,
            initial: 0,
            period_start: None,
            ticks_done: 0,
        }
    }

    /// Stops the count and returns the registers to their reset values.
    pub(crate) fn reset(&mut self) {
        self.divide_config = 0;
        self.initial = 0;
        if self.period_start.take().is_some() {
            self.source.arm(None);
        }
    }

    pub(crate) fn now_ns(&self) -> u64 {
        self.source.now_ns()
    }

    pub(crate) fn divide_config(&self) -> u32 {
        self.divide_config
    }

    pub(crate) fn initial_count(&self) -> u32 {
        self.initial
    }

    /// Divide by 2^((bits + 1) mod 8), where bits = {bit 3, bit 1, bit 0}:
    /// 0b000 is 2, 0b011 is 16, 0b111 is 1.
    fn divisor(&self) -> u64 {
        let bits = (self.divide_config & 3) | ((self.divide_config >> 1) & 4);
        1 << ((bits + 1) & 7)
    }

    fn ticks_to_ns(&self, ticks: u64) -> u64 {
        let ns = u128::from(ticks) * u128::from(self.divisor()) * 1_000_000_000
            / u128::from(APIC_TIMER_HZ);
        u64::try_from(ns).unwrap_or(u64::MAX).max(1)
    }

    /// Ticks of the current period counted by `now`.
    fn elapsed_ticks(&self, start: u64, now: u64) -> u64 {
        let ticks = u128::from(now.saturating_sub(start)) * u128::from(APIC_TIMER_HZ)
            / 1_000_000_000
            / u128::from(self.divisor());
        u64::try_from(ticks)
            .unwrap_or(u64::MAX)
            .saturating_add(self.ticks_done)
    }

    /// When the count of the current period reaches zero.
    fn deadline(&self, start: u64) -> u64 {
        let left = u64::from(self.initial).saturating_sub(self.ticks_done);
        start.saturating_add(self.ticks_to_ns(left))
    }

    fn restart(&mut self, now: u64, ticks_done: u64) {
        self.period_start = Some(now);
        self.ticks_done = ticks_done;
        self.source.arm(Some(self.deadline(now)));
    }

    pub(crate) fn current_count(&self, periodic: bool) -> u32 {
        let Some(start) = self.period_start else {
            return 0;
        };
        let elapsed = self.elapsed_ticks(start, self.source.now_ns());
        let initial = u64::from(self.initial);
        let left = if periodic {
            initial - elapsed % initial
        } else {
            initial.saturating_sub(elapsed)
        };
        // `left` is at most `initial`, a u32.
        u32::try_from(left).unwrap_or(0)
    }

    /// A write to the initial count register restarts the count from it; zero
    /// stops the timer.
    pub(crate) fn set_initial(&mut self, count: u32) {
        self.initial = count;
        if count == 0 {
            self.period_start = None;
            self.source.arm(None);
        } else {
            self.restart(self.source.now_ns(), 0);
        }
    }

    /// Changes the divider, keeping the current count where it is so that only the
    /// remaining ticks run at the new rate.
    pub(crate) fn set_divide(&mut self, value: u32, periodic: bool) {
        let left = self.current_count(periodic);
        self.divide_config = value & DIVIDE_BITS;
        if self.period_start.is_some() && left > 0 {
            self.restart(self.source.now_ns(), u64::from(self.initial - left));
        }
    }

    /// Called when the host deadline passes. Returns whether the count reached
    /// zero (the caller raises the LVT timer interrupt unless it is masked);
    /// re-arms the next period of a periodic timer.
    pub(crate) fn expire(&mut self, periodic: bool) -> bool {
        let Some(start) = self.period_start else {
            return false;
        };
        let now = self.source.now_ns();
        let deadline = self.deadline(start);
        if now < deadline {
            // Early or stale callback (the count was restarted since): wait on.
            self.source.arm(Some(deadline));
            return false;
        }
        if periodic {
            let period = self.ticks_to_ns(u64::from(self.initial));
            let periods = (now - deadline) / period;
            let start = deadline.saturating_add(periods.saturating_mul(period));
            self.period_start = Some(start);
            self.ticks_done = 0;
            let next = start
                .saturating_add(period)
                .max(now.saturating_add(MIN_PERIODIC_NS));
            self.source.arm(Some(next));
        } else {
            self.period_start = None;
        }
        true
    }

    /// Re-arms after the LVT timer's mode changed while counting: a one-shot that
    /// became periodic must not stop, and the reverse must not reload.
    pub(crate) fn mode_changed(&mut self, periodic: bool) {
        let Some(start) = self.period_start else {
            return;
        };
        let now = self.source.now_ns();
        let elapsed = self.elapsed_ticks(start, now);
        let initial = u64::from(self.initial);
        if !periodic && elapsed >= initial {
            // It already ran out as a periodic timer; as a one-shot it is done.
            self.period_start = None;
            self.source.arm(None);
        } else {
            self.restart(now, elapsed % initial);
        }
    }
}
