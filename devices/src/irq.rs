//! Interrupt lines from devices to the board's interrupt controller.
//!
//! A device holds an [`IrqLine`]: a numbered input of the machine's interrupt
//! controller, edge or level. Every line of a VM goes through one [`IrqRouter`],
//! which remembers each line's level and forwards changes to the controller, an
//! [`IrqSink`]: moat's own 8259/I/O APIC models under TCG, `KVM_IRQ_LINE` under
//! KVM. The sink is bound late (the board creates devices before the controller)
//! and may be replaced; a newly connected sink is told the current level of every
//! line the router has seen.
//!
//! # Edge lines
//!
//! A device [`pulse`](IrqLine::pulse)s the line (high then low); the controller
//! latches the rising edge. Nothing comes back.
//!
//! # Level lines, end of interrupt and resampling
//!
//! 1. The device [`raise`](IrqLine::raise)s the line while its interrupt
//!    condition holds.
//! 2. The controller delivers the interrupt to a CPU.
//! 3. The guest's handler services the device and writes the controller's EOI.
//! 4. The controller calls [`IrqRouter::end_of_interrupt`] for the line.
//! 5. If the line has resample callbacks ([`IrqRouter::on_resample`]), the router
//!    deasserts it (as KVM does for a resampling irqfd) and runs the callbacks; a
//!    device whose condition still holds raises the line again, so the
//!    controller delivers it again.
//! 6. A device [`lower`](IrqLine::lower)s the line when its condition clears
//!    (the guest read its status register, drained its queue...).
//!
//! A line with no resample callback keeps the level its device last set; EOI
//! does nothing to it. The resample step lets a device whose condition is
//! cleared without it noticing (or whose line the hypervisor deasserts at EOI)
//! stay correct.
//!
//! # Locking
//!
//! The router calls its sink with the router's own lock held, so the sink sees
//! level changes in the order the router recorded them. A sink therefore must not
//! call back into the router synchronously; the 8259 model defers its EOI
//! notifications until its own lock and the sink call are over. Resample
//! callbacks run with no router lock held and may raise or lower any line.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// How a line signals: a pulse per event, or a level held while a condition
/// lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Edge,
    Level,
}

/// An interrupt controller's inputs, as the router drives them.
pub trait IrqSink: Send + Sync {
    /// Sets input `line` to `high`. Called again with the same level is allowed
    /// and must be harmless.
    fn set_level(&self, line: u32, high: bool);
}

/// A device's resample callback; see the module doc.
pub type ResampleFn = Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct RouterState {
    sink: Option<Arc<dyn IrqSink>>,
    levels: BTreeMap<u32, bool>,
    resample: BTreeMap<u32, Vec<ResampleFn>>,
}

/// Every interrupt line of one VM, and the controller they go to.
#[derive(Default)]
pub struct IrqRouter {
    state: Mutex<RouterState>,
}

impl IrqRouter {
    /// A router with no sink yet: levels are recorded until one is connected.
    pub fn new() -> Arc<Self> {
        Arc::new(IrqRouter::default())
    }

    fn state(&self) -> MutexGuard<'_, RouterState> {
        // A panic elsewhere has been reported; the recorded levels are still the
        // best state we have.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connects (or replaces) the interrupt controller and tells it the current
    /// level of every line seen so far.
    pub fn connect(&self, sink: Arc<dyn IrqSink>) {
        let mut state = self.state();
        for (&line, &high) in &state.levels {
            sink.set_level(line, high);
        }
        state.sink = Some(sink);
    }

    /// Sets the level of `line`.
    pub fn set_level(&self, line: u32, high: bool) {
        let mut state = self.state();
        state.levels.insert(line, high);
        if let Some(sink) = &state.sink {
            sink.set_level(line, high);
        }
    }

    /// Sends an edge on `line`: high, then low.
    pub fn pulse(&self, line: u32) {
        let mut state = self.state();
        state.levels.insert(line, false);
        if let Some(sink) = &state.sink {
            sink.set_level(line, true);
            sink.set_level(line, false);
        }
    }

    /// The level `line` was last set to (low if never set).
    pub fn level(&self, line: u32) -> bool {
        self.state().levels.get(&line).copied().unwrap_or(false)
    }

    /// Registers a callback to run when the guest ends an interrupt on `line`.
    /// The router keeps the callback as long as it lives, so a callback should
    /// reach its device through a `Weak` to avoid a reference cycle.
    pub fn on_resample(&self, line: u32, callback: ResampleFn) {
        self.state()
            .resample
            .entry(line)
            .or_default()
            .push(callback);
    }

    /// Called by the interrupt controller when the guest EOIs level line `line`:
    /// deasserts it if it has resample callbacks, then runs them so devices
    /// whose condition still holds raise it again.
    pub fn end_of_interrupt(&self, line: u32) {
        let callbacks = {
            let mut state = self.state();
            let Some(callbacks) = state.resample.get(&line).cloned() else {
                return;
            };
            state.levels.insert(line, false);
            if let Some(sink) = &state.sink {
                sink.set_level(line, false);
            }
            callbacks
        };
        for callback in callbacks {
            callback();
        }
    }

    /// A device's handle on `line`.
    pub fn line(self: &Arc<Self>, number: u32, kind: LineKind) -> IrqLine {
        IrqLine {
            router: self.clone(),
            number,
            kind,
        }
    }
}

/// One interrupt line as a device holds it.
#[derive(Clone)]
pub struct IrqLine {
    router: Arc<IrqRouter>,
    number: u32,
    kind: LineKind,
}

impl IrqLine {
    /// Asserts the line.
    pub fn raise(&self) {
        self.router.set_level(self.number, true);
    }

    /// Deasserts the line.
    pub fn lower(&self) {
        self.router.set_level(self.number, false);
    }

    /// Sends one edge.
    pub fn pulse(&self) {
        self.router.pulse(self.number);
    }

    pub fn number(&self) -> u32 {
        self.number
    }

    pub fn kind(&self) -> LineKind {
        self.kind
    }

    /// The router the line belongs to, to register a resample callback.
    pub fn router(&self) -> &Arc<IrqRouter> {
        &self.router
    }
}

impl std::fmt::Debug for IrqLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrqLine")
            .field("number", &self.number)
            .field("kind", &self.kind)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Records every level change it is given.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(u32, bool)>>);

    impl IrqSink for Recorder {
        fn set_level(&self, line: u32, high: bool) {
            self.0.lock().unwrap().push((line, high));
        }
    }

    impl Recorder {
        fn take(&self) -> Vec<(u32, bool)> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    #[test]
    fn lines_forward_to_the_sink() {
        let router = IrqRouter::new();
        let sink = Arc::new(Recorder::default());
        router.connect(sink.clone());
        let com1 = router.line(4, LineKind::Edge);
        let rtc = router.line(8, LineKind::Level);
        assert_eq!((com1.number(), com1.kind()), (4, LineKind::Edge));
        com1.pulse();
        rtc.raise();
        rtc.lower();
        assert_eq!(sink.take(), [(4, true), (4, false), (8, true), (8, false)]);
        assert!(!router.level(4));
    }

    #[test]
    fn late_sink_gets_current_levels() {
        let router = IrqRouter::new();
        let line = router.line(9, LineKind::Level);
        line.raise();
        router.line(3, LineKind::Edge).pulse();
        let first = Arc::new(Recorder::default());
        router.connect(first.clone());
        assert_eq!(first.take(), [(3, false), (9, true)]);

        // A replacement sink takes over and hears the same state.
        let second = Arc::new(Recorder::default());
        router.connect(second.clone());
        line.lower();
        assert_eq!(second.take(), [(3, false), (9, true), (9, false)]);
        assert!(first.take().is_empty());
    }

    #[test]
    fn eoi_resamples_a_level_line() {
        let router = IrqRouter::new();
        let sink = Arc::new(Recorder::default());
        router.connect(sink.clone());
        let line = router.line(10, LineKind::Level);
        let pending = Arc::new(AtomicBool::new(true));
        let resamples = Arc::new(AtomicUsize::new(0));
        {
            let (line, pending, resamples) = (line.clone(), pending.clone(), resamples.clone());
            router.on_resample(
                10,
                Arc::new(move || {
                    resamples.fetch_add(1, Ordering::Relaxed);
                    if pending.load(Ordering::Relaxed) {
                        line.raise();
                    }
                }),
            );
        }
        line.raise();
        assert_eq!(sink.take(), [(10, true)]);

        // Still pending at EOI: deasserted, then raised again.
        router.end_of_interrupt(10);
        assert_eq!(sink.take(), [(10, false), (10, true)]);
        assert!(router.level(10));

        // The guest cleared the condition: the line stays low after EOI.
        pending.store(false, Ordering::Relaxed);
        router.end_of_interrupt(10);
        assert_eq!(sink.take(), [(10, false)]);
        assert!(!router.level(10));
        assert_eq!(resamples.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn eoi_leaves_lines_without_resample_alone() {
        let router = IrqRouter::new();
        let sink = Arc::new(Recorder::default());
        router.connect(sink.clone());
        let line = router.line(11, LineKind::Level);
        line.raise();
        sink.take();
        router.end_of_interrupt(11);
        assert!(sink.take().is_empty());
        assert!(router.level(11));
    }
}
