//! The VM clock: guest time and timer deadlines.
//!
//! One [`Clock`] per VM. Guest time is the host's monotonic clock
//! ([`Instant`]) counted from the clock's epoch, which a guest reset restarts.
//! Devices derive their counters from it ([`Clock::counter`]) instead of ticking,
//! and ask for callbacks at deadlines through [`Timer`]s.
//!
//! Timers fire on one thread per clock, "moat-clock", started by
//! [`Clock::start`]. It sleeps on a condition variable until the earliest
//! deadline (no polling interval), then runs each expired timer's callback with
//! no clock lock held, so a callback may arm, cancel or drop any timer,
//! including its own. A deadline already past when armed fires at once; a late
//! thread fires what it missed as soon as it can, once per arming.
//!
//! A callback that races with [`Timer::cancel`] from another thread may still
//! be running when `cancel` returns, but no new run starts after it returns.
//! Devices whose callbacks take their own lock therefore check their state in
//! the callback rather than assume the timer is still wanted.
//!
//! Callbacks are owned by the clock until their timer is dropped; a callback
//! should reach its device through a `Weak`, or the device and its timer keep
//! each other alive.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A timer callback.
pub type TimerFn = Arc<dyn Fn() + Send + Sync>;

/// The work the sandbox does on the clock thread before it runs any callback
/// (installing that thread's seccomp filter).
pub type ThreadSetup = Box<dyn FnOnce() -> Result<(), String> + Send>;

struct Entry {
    deadline: Option<u64>,
    callback: TimerFn,
}

#[derive(Default)]
struct TimerState {
    entries: HashMap<u64, Entry>,
    /// Armed timers by (deadline, id): the first is the next to fire.
    queue: BTreeSet<(u64, u64)>,
    next_id: u64,
    stop: bool,
}

struct Shared {
    origin: Instant,
    /// Nanoseconds from `origin` to the current epoch.
    epoch: AtomicU64,
    state: Mutex<TimerState>,
    wake: Condvar,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        let since_origin = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        since_origin.saturating_sub(self.epoch.load(Ordering::Acquire))
    }

    fn state(&self) -> MutexGuard<'_, TimerState> {
        // Timer bookkeeping stays consistent between statements; a panicking
        // callback runs without the lock and cannot leave it half-updated.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn arm(&self, id: u64, deadline: u64) {
        let mut state = self.state();
        let state = &mut *state;
        let Some(entry) = state.entries.get_mut(&id) else {
            return;
        };
        if let Some(old) = entry.deadline.replace(deadline) {
            state.queue.remove(&(old, id));
        }
        state.queue.insert((deadline, id));
        if state.queue.first() == Some(&(deadline, id)) {
            self.wake.notify_all();
        }
    }

    fn cancel(&self, id: u64) {
        let mut state = self.state();
        let state = &mut *state;
        if let Some(old) = state.entries.get_mut(&id).and_then(|e| e.deadline.take()) {
            state.queue.remove(&(old, id));
        }
    }

    /// The timer thread's loop.
    fn run(&self) {
        let mut state = self.state();
        loop {
            if state.stop {
                return;
            }
            let now = self.now_ns();
            match state.queue.first().copied() {
                Some((deadline, id)) if deadline <= now => {
                    state.queue.remove(&(deadline, id));
                    let Some(entry) = state.entries.get_mut(&id) else {
                        continue;
                    };
                    entry.deadline = None;
                    let callback = entry.callback.clone();
                    drop(state);
                    callback();
                    state = self.state();
                }
                Some((deadline, _)) => {
                    let wait = Duration::from_nanos(deadline - now);
                    state = self
                        .wake
                        .wait_timeout(state, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                None => {
                    state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }
}

/// A VM's clock service.
pub struct Clock {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock")
            .field("now_ns", &self.now_ns())
            .finish_non_exhaustive()
    }
}

impl Clock {
    /// A clock whose epoch is now. Timers fire only once [`Clock::start`] runs.
    pub fn new() -> Arc<Clock> {
        Arc::new(Clock {
            shared: Arc::new(Shared {
                origin: Instant::now(),
                epoch: AtomicU64::new(0),
                state: Mutex::new(TimerState::default()),
                wake: Condvar::new(),
            }),
            thread: Mutex::new(None),
        })
    }

    /// Nanoseconds since the clock's epoch.
    pub fn now_ns(&self) -> u64 {
        self.shared.now_ns()
    }

    /// Restarts guest time at zero (a guest reset). Deadlines are in guest time,
    /// so timers still armed move later by the time that had passed; devices
    /// re-arm theirs when they reset.
    pub fn reset_epoch(&self) {
        let since_origin =
            u64::try_from(self.shared.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.shared.epoch.store(since_origin, Ordering::Release);
        // The thread may be sleeping towards a deadline that is now further away.
        self.shared.wake.notify_all();
    }

    /// A counter running at `hz` since the epoch.
    pub fn counter(&self, hz: u64) -> u64 {
        ns_to_ticks(self.now_ns(), hz)
    }

    /// A new, unarmed timer that runs `callback` on the clock thread.
    pub fn timer(self: &Arc<Self>, callback: TimerFn) -> Timer {
        let mut state = self.shared.state();
        let id = state.next_id;
        state.next_id += 1;
        state.entries.insert(
            id,
            Entry {
                deadline: None,
                callback,
            },
        );
        Timer {
            shared: self.shared.clone(),
            id,
        }
    }

    /// The earliest deadline of any armed timer.
    pub fn next_deadline(&self) -> Option<u64> {
        self.shared
            .state()
            .queue
            .first()
            .map(|&(deadline, _)| deadline)
    }

    /// Starts the timer thread. It runs `setup` first and, if that fails, logs
    /// and ends without running any callback.
    pub fn start(self: &Arc<Self>, setup: ThreadSetup) -> io::Result<()> {
        let mut thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if thread.as_ref().is_some_and(|t| !t.is_finished()) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the clock thread is already running",
            ));
        }
        self.shared.state().stop = false;
        let shared = self.shared.clone();
        let handle = std::thread::Builder::new()
            .name("moat-clock".into())
            .spawn(move || {
                if let Err(error) = setup() {
                    log::error!("clock thread set-up failed, timers will not fire: {error}");
                    return;
                }
                shared.run();
            })?;
        *thread = Some(handle);
        Ok(())
    }

    /// Stops the timer thread and waits for it to end (unless called from a
    /// timer callback, on the thread itself). Armed timers stay armed.
    pub fn stop(&self) {
        self.shared.state().stop = true;
        self.shared.wake.notify_all();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle
            && handle.thread().id() != std::thread::current().id()
            && handle.join().is_err()
        {
            log::error!("the clock thread panicked");
        }
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        self.stop();
        // Callbacks may hold devices that hold timers; forgetting them breaks
        // any such cycle. Timers that outlive the clock do nothing.
        let mut state = self.shared.state();
        state.entries.clear();
        state.queue.clear();
    }
}

/// A deadline with a callback. Dropping it cancels it.
pub struct Timer {
    shared: Arc<Shared>,
    id: u64,
}

impl Timer {
    /// Fires at guest time `deadline_ns` (at once if that has passed). Re-arming
    /// replaces the previous deadline.
    pub fn arm_at(&self, deadline_ns: u64) {
        self.shared.arm(self.id, deadline_ns);
    }

    /// Fires `delay_ns` from now.
    pub fn arm_after(&self, delay_ns: u64) {
        self.arm_at(self.shared.now_ns().saturating_add(delay_ns));
    }

    /// Disarms the timer.
    pub fn cancel(&self) {
        self.shared.cancel(self.id);
    }

    /// The armed deadline, if any.
    pub fn deadline(&self) -> Option<u64> {
        self.shared
            .state()
            .entries
            .get(&self.id)
            .and_then(|e| e.deadline)
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        let state = &mut *state;
        if let Some(entry) = state.entries.remove(&self.id)
            && let Some(deadline) = entry.deadline
        {
            state.queue.remove(&(deadline, self.id));
        }
    }
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer").field("id", &self.id).finish()
    }
}

/// Whole ticks of a `hz` counter in `ns` nanoseconds.
pub fn ns_to_ticks(ns: u64, hz: u64) -> u64 {
    u64::try_from(u128::from(ns) * u128::from(hz) / NANOS_PER_SEC).unwrap_or(u64::MAX)
}

/// The first nanosecond at which a `hz` counter has counted `ticks` (0 if `hz`
/// is 0).
pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    if hz == 0 {
        return 0;
    }
    let ns = (u128::from(ticks) * NANOS_PER_SEC).div_ceil(u128::from(hz));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;

    const MS: u64 = 1_000_000;

    fn started() -> Arc<Clock> {
        let clock = Clock::new();
        clock.start(Box::new(|| Ok(()))).unwrap();
        clock
    }

    #[test]
    fn time_advances_and_restarts_at_reset() {
        let clock = Clock::new();
        let a = clock.now_ns();
        std::thread::sleep(Duration::from_millis(5));
        let b = clock.now_ns();
        assert!(b >= a + 5 * MS);
        assert!(clock.counter(1000) >= 5);
        clock.reset_epoch();
        assert!(clock.now_ns() < b);
    }

    #[test]
    fn tick_conversions_do_not_overflow() {
        assert_eq!(ns_to_ticks(1_000_000_000, 1_193_182), 1_193_182);
        assert_eq!(ns_to_ticks(u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(ticks_to_ns(1, 1_000_000_000), 1);
        assert_eq!(ticks_to_ns(1, 3), 333_333_334);
        assert!(ns_to_ticks(ticks_to_ns(12345, 1_193_182), 1_193_182) >= 12345);
        assert_eq!(ticks_to_ns(5, 0), 0);
    }

    #[test]
    fn deadlines_fire_in_order() {
        let clock = started();
        let (tx, rx) = mpsc::channel();
        let mut timers = Vec::new();
        // Armed out of order; the one in the past fires first.
        for (name, deadline) in [("b", 20 * MS), ("c", 30 * MS), ("a", 0), ("late", 10 * MS)] {
            let tx = Mutex::new(tx.clone());
            let timer = clock.timer(Arc::new(move || {
                tx.lock().unwrap().send(name).unwrap();
            }));
            timer.arm_at(clock.now_ns().saturating_sub(1) + deadline);
            timers.push(timer);
        }
        assert!(clock.next_deadline().is_some());
        let got: Vec<_> = (0..4)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, ["a", "late", "b", "c"]);
        assert!(timers.iter().all(|t| t.deadline().is_none()));
        assert_eq!(clock.next_deadline(), None);
    }

    #[test]
    fn a_callback_rearms_its_own_timer() {
        let clock = started();
        let fired = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let slot: Arc<Mutex<Option<Timer>>> = Arc::new(Mutex::new(None));
        let timer = {
            let (fired, slot) = (fired.clone(), Arc::downgrade(&slot));
            clock.timer(Arc::new(move || {
                let n = fired.fetch_add(1, Ordering::SeqCst) + 1;
                if n < 5 {
                    if let Some(slot) = slot.upgrade()
                        && let Some(timer) = &*slot.lock().unwrap()
                    {
                        timer.arm_after(MS);
                    }
                } else {
                    tx.lock().unwrap().send(()).unwrap();
                }
            }))
        };
        timer.arm_after(MS);
        *slot.lock().unwrap() = Some(timer);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(fired.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn cancelled_and_dropped_timers_do_not_fire() {
        let clock = started();
        let fired = Arc::new(AtomicUsize::new(0));
        let make = || {
            let fired = fired.clone();
            clock.timer(Arc::new(move || {
                fired.fetch_add(1, Ordering::SeqCst);
            }))
        };
        let cancelled = make();
        cancelled.arm_after(20 * MS);
        cancelled.cancel();
        assert_eq!(cancelled.deadline(), None);
        let dropped = make();
        dropped.arm_after(20 * MS);
        drop(dropped);
        assert_eq!(clock.next_deadline(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(fired.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn nothing_fires_after_the_clock_is_dropped() {
        let clock = started();
        let fired = Arc::new(AtomicUsize::new(0));
        let timer = {
            let fired = fired.clone();
            clock.timer(Arc::new(move || {
                fired.fetch_add(1, Ordering::SeqCst);
            }))
        };
        timer.arm_after(20 * MS);
        drop(clock);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(fired.load(Ordering::SeqCst), 0);
        // The orphaned timer is inert.
        timer.arm_after(0);
        assert_eq!(timer.deadline(), None);
    }

    #[test]
    fn failed_setup_runs_no_callbacks() {
        let clock = Clock::new();
        let fired = Arc::new(AtomicUsize::new(0));
        let timer = {
            let fired = fired.clone();
            clock.timer(Arc::new(move || {
                fired.fetch_add(1, Ordering::SeqCst);
            }))
        };
        timer.arm_after(0);
        clock
            .start(Box::new(|| Err("no filter for you".into())))
            .unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(fired.load(Ordering::SeqCst), 0);
        // The thread has ended, so the clock can be started again.
        clock.start(Box::new(|| Ok(()))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while fired.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(fired.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn stop_ends_the_thread() {
        let clock = started();
        assert!(clock.start(Box::new(|| Ok(()))).is_err());
        clock.stop();
        let fired = Arc::new(AtomicUsize::new(0));
        let timer = {
            let fired = fired.clone();
            clock.timer(Arc::new(move || {
                fired.fetch_add(1, Ordering::SeqCst);
            }))
        };
        timer.arm_after(0);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(fired.load(Ordering::SeqCst), 0);
    }
}
