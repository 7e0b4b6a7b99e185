//! moat's model of an Arm GICv2 (Generic Interrupt Controller, architecture
//! spec IHI0048B), the `virt` board's interrupt controller under TCG; under
//! KVM the kernel's own GIC takes the board's lines instead.
//!
//! One [`Gic`] holds the distributor (4 KiB, [`GicDistributor`] on the MMIO
//! bus) and one CPU interface per CPU (8 KiB, [`GicCpuInterface`]; every CPU
//! sees its own at the same address, told apart with
//! [`crate::current_vcpu`]). Board line `n` is SPI `n`, interrupt ID `32 + n`
//! (a device-tree specifier `<0 n 4>`); the per-CPU timers drive PPIs through
//! [`Gic::set_ppi`]. The core API takes the CPU index explicitly.
//!
//! The model is GIC-400-like, as QEMU's `virt` GIC by default:
//! - [`GIC_NUM_IRQS`] = 288 interrupt IDs: 16 SGIs, 16 PPIs and 256 SPIs, as
//!   QEMU's `virt` (`GICD_TYPER.ITLinesNumber` = 8); 1 to 8 CPUs.
//! - No Security Extensions. Both interrupt groups exist (`GICD_IGROUPR` is
//!   read/write, `GICD_CTLR` and `GICC_CTLR` enable each group separately),
//!   but both are signalled as IRQ and acknowledged through `GICC_IAR`;
//!   `GICC_AIAR`, `GICC_AEOIR` and `GICC_AHPPIR` are aliases of `GICC_IAR`,
//!   `GICC_EOIR` and `GICC_HPPIR`. **FIQ is a gap**: `GICC_CTLR.FIQEn` is
//!   stored but nothing is ever signalled as FIQ, and the bypass bits do
//!   nothing. Group 1 interrupts use `GICC_ABPR` unless `GICC_CTLR.CBPR`.
//!   `GICC_CTLR.EOImodeS` (bit 9, the bit Linux sets) selects split
//!   priority drop and deactivation for both groups.
//! - 5 priority bits (32 levels), as the GIC-400: the low three bits of every
//!   priority and of `GICC_PMR` read as zero, the smallest `GICC_BPR` is 2
//!   (and `GICC_ABPR` 3), so at reset every priority bit is group priority
//!   and any higher priority preempts; `GICC_APR0` has one bit per level.
//! - SGI and PPI configuration is read-only (SGIs edge, PPIs level, as the
//!   timers need); SGI enables are writable.
//! - With one CPU, every `GICD_ITARGETSR` byte reads 0x01 and writes are
//!   ignored (the spec allows RAZ/WI; 0x01 keeps Linux's target probing
//!   happy). With more, an SPI's target list holds only CPUs that exist.
//! - The active state of an SGI is per target CPU and interrupt ID, not per
//!   source; pending SGIs are per source, and `GICC_IAR` reports the
//!   lowest-numbered source first.
//! - `GICD_IIDR` is 0x0200_043b and `GICC_IIDR` 0x0202_043b (Arm, GICv2,
//!   product 0x020 and revision 0: a GIC-400 r0p0); the identification
//!   registers at 0xfd0 are a GIC-400's.
//!
//! Level-sensitive interrupts are pending while their input is high (plus any
//! software pending from `GICD_ISPENDR` until acknowledged), so one still
//! asserted after its deactivation is pending again; edge-triggered ones latch
//! the rising edge.
//!
//! Locking: one mutex for the whole GIC. The wake callback (a CPU's IRQ output
//! rose) and the EOI listener (a level SPI was deactivated) run after it is
//! released, so they may call back into the GIC or the interrupt router. The
//! IRQ outputs are also kept in atomics, so [`Gic::irq_pending`], which TCG
//! CPUs ask between translation blocks, takes no lock.

mod cpu_interface;
mod distributor;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::arm_timer::{ArmTimer, TimerReg};
use crate::bus::BusDevice;
use crate::clock::Clock;
use crate::irq::IrqSink;
use crate::irqchip::{CpuRegister, InterruptController, current_vcpu};
use crate::lapic::WakeCpu;

/// Interrupt IDs the GIC implements: 32 private (SGIs and PPIs) and 256 SPIs.
pub const GIC_NUM_IRQS: u32 = 288;
/// The interrupt ID of SPI 0 (board line 0).
pub const GIC_SPI_BASE: u32 = 32;
/// Board lines, SPIs 0 to 255.
pub const GIC_SPI_COUNT: u32 = GIC_NUM_IRQS - GIC_SPI_BASE;
/// The most CPU interfaces a GICv2 has.
pub const GIC_MAX_CPUS: u32 = 8;
/// The distributor's register window.
pub const GICD_SIZE: u64 = 0x1000;
/// The CPU interface's register window (GICC_DIR is at 0x1000).
pub const GICC_SIZE: u64 = 0x2000;
/// The interrupt ID `GICC_IAR` returns when there is nothing to take.
pub const GIC_SPURIOUS: u32 = 1023;

/// Called with the level-triggered SPI's board line when the guest
/// deactivates it; the board forwards it to
/// [`crate::IrqRouter::end_of_interrupt`] so resampling devices re-assert.
pub type SpiEoiListener = Arc<dyn Fn(u32) + Send + Sync>;

/// 32-bit words of per-interrupt bits: word 0 is banked per CPU.
const WORDS: usize = (GIC_NUM_IRQS / 32) as usize;
/// Priority bits implemented: the top five.
const PRIORITY_MASK: u8 = 0xf8;
const MIN_BPR: u32 = 2;
const MIN_ABPR: u32 = 3;
/// Interrupt IDs 0-15 are SGIs, always edge-triggered.
const SGI_BITS: u32 = 0xffff;

const CTLR_GRP0: u32 = 1 << 0;
const CTLR_GRP1: u32 = 1 << 1;
const CPU_CTLR_CBPR: u32 = 1 << 4;
const CPU_CTLR_EOIMODE: u32 = 1 << 9;

/// Why a GIC could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GicError {
    #[error("a GICv2 serves 1 to 8 CPUs, not {0}")]
    CpuCount(u32),
}

/// One bit per interrupt of a 32-interrupt word.
#[derive(Debug, Default, Clone, Copy)]
struct Bits {
    group: u32,
    enabled: u32,
    /// Pending from an edge or from software, until acknowledged or cleared.
    latch: u32,
    /// The input level.
    level: u32,
    active: u32,
    /// Edge-triggered (else level-sensitive).
    edge: u32,
}

impl Bits {
    fn pending(&self) -> u32 {
        self.latch | (self.level & !self.edge)
    }
}

/// One CPU's banked distributor state and its CPU interface.
#[derive(Debug)]
struct CpuState {
    private: Bits,
    priority: [u8; 32],
    /// Per SGI, the CPUs it is pending from.
    sgi_sources: [u8; 16],
    ctlr: u32,
    pmr: u32,
    bpr: u32,
    abpr: u32,
    /// One bit per active group priority (priority >> 3).
    apr: u32,
}

impl CpuState {
    fn new() -> Self {
        CpuState {
            private: Bits {
                edge: SGI_BITS,
                ..Bits::default()
            },
            priority: [0; 32],
            sgi_sources: [0; 16],
            ctlr: 0,
            pmr: 0,
            bpr: MIN_BPR,
            abpr: MIN_ABPR,
            apr: 0,
        }
    }

    /// The running priority: the highest active group priority, or idle.
    fn running_priority(&self) -> u8 {
        if self.apr == 0 {
            0xff
        } else {
            (self.apr.trailing_zeros() << 3) as u8
        }
    }
}

/// The whole GIC's state; the register decoding lives in `distributor` and
/// `cpu_interface`.
#[derive(Debug)]
struct State {
    ctlr: u32,
    cpus: Vec<CpuState>,
    /// Words 1.. of the per-interrupt bits (the SPIs).
    shared: [Bits; WORDS - 1],
    spi_priority: Vec<u8>,
    spi_targets: Vec<u8>,
    /// Level SPIs deactivated since the listener last ran.
    eoi_lines: Vec<u32>,
}

impl State {
    fn new(cpus: u32) -> Self {
        State {
            ctlr: 0,
            cpus: (0..cpus).map(|_| CpuState::new()).collect(),
            shared: [Bits::default(); WORDS - 1],
            spi_priority: vec![0; GIC_SPI_COUNT as usize],
            spi_targets: vec![0; GIC_SPI_COUNT as usize],
            eoi_lines: Vec::new(),
        }
    }

    fn cpu_count(&self) -> u32 {
        self.cpus.len() as u32
    }

    /// The mask of CPUs that exist.
    fn cpu_mask(&self) -> u8 {
        ((1u32 << self.cpu_count()) - 1) as u8
    }

    /// Word `w` of the per-interrupt bits as CPU `cpu` sees it.
    fn bits(&self, cpu: usize, w: usize) -> Option<&Bits> {
        if w == 0 {
            self.cpus.get(cpu).map(|c| &c.private)
        } else {
            self.shared.get(w - 1)
        }
    }

    fn bits_mut(&mut self, cpu: usize, w: usize) -> Option<&mut Bits> {
        if w == 0 {
            self.cpus.get_mut(cpu).map(|c| &mut c.private)
        } else {
            self.shared.get_mut(w - 1)
        }
    }

    fn priority(&self, cpu: usize, id: u32) -> u8 {
        if id < 32 {
            self.cpus[cpu].priority[id as usize]
        } else {
            self.spi_priority[(id - GIC_SPI_BASE) as usize]
        }
    }

    fn targets(&self, cpu: usize, id: u32) -> bool {
        id < 32
            || self.cpu_count() == 1
            || self.spi_targets[(id - GIC_SPI_BASE) as usize] & (1 << cpu) != 0
    }

    /// The group priority of priority `prio` of an interrupt in `group1`.
    fn group_priority(&self, cpu: usize, group1: bool, prio: u8) -> u8 {
        let c = &self.cpus[cpu];
        let bpr = if group1 && c.ctlr & CPU_CTLR_CBPR == 0 {
            c.abpr - 1
        } else {
            c.bpr
        };
        prio & (0xffu32 << (bpr + 1)) as u8
    }

    /// The highest-priority interrupt pending for `cpu` that both the
    /// distributor and the CPU interface forward, not already active:
    /// `(id, priority, group 1)`. Ties go to the lowest ID.
    fn best_pending(&self, cpu: usize) -> Option<(u32, u8, bool)> {
        let c = self.cpus.get(cpu)?;
        let groups = self.ctlr & c.ctlr & (CTLR_GRP0 | CTLR_GRP1);
        if groups == 0 {
            return None;
        }
        let mut best: Option<(u32, u8, bool)> = None;
        for w in 0..WORDS {
            let Some(bits) = self.bits(cpu, w) else {
                continue;
            };
            let mut candidates = bits.pending() & bits.enabled & !bits.active;
            if groups & CTLR_GRP0 == 0 {
                candidates &= bits.group;
            }
            if groups & CTLR_GRP1 == 0 {
                candidates &= !bits.group;
            }
            while candidates != 0 {
                let bit = candidates.trailing_zeros();
                candidates &= candidates - 1;
                let id = w as u32 * 32 + bit;
                if !self.targets(cpu, id) {
                    continue;
                }
                let prio = self.priority(cpu, id);
                if best.is_none_or(|(_, p, _)| prio < p) {
                    best = Some((id, prio, bits.group & (1 << bit) != 0));
                }
            }
        }
        best
    }

    /// The interrupt CPU `cpu` would acknowledge now: above the priority mask
    /// and preempting the running priority.
    fn signalled(&self, cpu: usize) -> Option<(u32, u8, bool)> {
        let (id, prio, group1) = self.best_pending(cpu)?;
        let c = &self.cpus[cpu];
        let enough = u32::from(prio) < c.pmr
            && self.group_priority(cpu, group1, prio) < c.running_priority();
        enough.then_some((id, prio, group1))
    }

    /// `GICC_IAR`: takes the signalled interrupt, making it active.
    fn acknowledge(&mut self, cpu: usize) -> u32 {
        let Some((id, prio, group1)) = self.signalled(cpu) else {
            return GIC_SPURIOUS;
        };
        let group_prio = self.group_priority(cpu, group1, prio);
        let w = (id / 32) as usize;
        let bit = 1 << (id % 32);
        let mut value = id;
        if id < 16 {
            let c = &mut self.cpus[cpu];
            let sources = c.sgi_sources[id as usize];
            let source = sources.trailing_zeros();
            c.sgi_sources[id as usize] = sources & !(1 << source);
            if c.sgi_sources[id as usize] == 0 {
                c.private.latch &= !bit;
            }
            value |= source << 10;
        } else if let Some(bits) = self.bits_mut(cpu, w) {
            bits.latch &= !bit;
        }
        if let Some(bits) = self.bits_mut(cpu, w) {
            bits.active |= bit;
        }
        self.cpus[cpu].apr |= 1 << (group_prio >> 3);
        value
    }

    /// `GICC_EOIR`: drops the running priority and, unless EOI mode splits
    /// them, deactivates the interrupt.
    fn end_of_interrupt(&mut self, cpu: usize, value: u32) {
        let id = value & 0x3ff;
        if id >= GIC_NUM_IRQS {
            log::debug!("gic: EOI of interrupt {id} on CPU {cpu} ignored");
            return;
        }
        let c = &mut self.cpus[cpu];
        if c.apr != 0 {
            c.apr &= c.apr - 1;
        }
        if c.ctlr & CPU_CTLR_EOIMODE == 0 {
            self.deactivate(cpu, id);
        }
    }

    /// Ends the active state of `id` (`GICC_DIR`, or EOI in mode 0).
    fn deactivate(&mut self, cpu: usize, id: u32) {
        if id >= GIC_NUM_IRQS {
            return;
        }
        let bit = 1 << (id % 32);
        let Some(bits) = self.bits_mut(cpu, (id / 32) as usize) else {
            return;
        };
        let was_active = bits.active & bit != 0;
        bits.active &= !bit;
        if was_active && id >= GIC_SPI_BASE && bits.edge & bit == 0 {
            self.eoi_lines.push(id - GIC_SPI_BASE);
        }
    }

    /// Drives the input of `id` (a PPI or an SPI) as CPU `cpu` sees it.
    fn set_input(&mut self, cpu: usize, id: u32, high: bool) {
        let bit = 1 << (id % 32);
        let Some(bits) = self.bits_mut(cpu, (id / 32) as usize) else {
            return;
        };
        let was_high = bits.level & bit != 0;
        if high {
            bits.level |= bit;
            if !was_high && bits.edge & bit != 0 {
                bits.latch |= bit;
            }
        } else {
            bits.level &= !bit;
        }
    }

    /// Makes SGI `id` pending on every CPU in `targets`, from `source`.
    fn send_sgi(&mut self, source: usize, targets: u8, id: u32) {
        for (cpu, c) in self.cpus.iter_mut().enumerate() {
            if targets & (1 << cpu) != 0 {
                c.sgi_sources[(id & 15) as usize] |= 1 << source;
                c.private.latch |= 1 << (id & 15);
            }
        }
    }
}

/// A GICv2: the distributor and every CPU's interface.
pub struct Gic {
    state: Mutex<State>,
    /// Each CPU's IRQ output, as last computed under the lock.
    outputs: Vec<AtomicBool>,
    wake: WakeCpu,
    eoi_listener: Mutex<Option<SpiEoiListener>>,
}

impl std::fmt::Debug for Gic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gic")
            .field("cpus", &self.outputs.len())
            .finish_non_exhaustive()
    }
}

fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere has been reported; the state is the best there is.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gic {
    /// A GIC for `cpus` CPUs in its reset state. `wake(cpu)` runs (with no
    /// GIC lock held) whenever CPU `cpu`'s IRQ output rises: the board kicks
    /// that vCPU.
    pub fn new(cpus: u32, wake: WakeCpu) -> Result<Arc<Gic>, GicError> {
        if cpus == 0 || cpus > GIC_MAX_CPUS {
            return Err(GicError::CpuCount(cpus));
        }
        Ok(Arc::new(Gic {
            state: Mutex::new(State::new(cpus)),
            outputs: (0..cpus).map(|_| AtomicBool::new(false)).collect(),
            wake,
            eoi_listener: Mutex::new(None),
        }))
    }

    pub fn cpu_count(&self) -> u32 {
        self.outputs.len() as u32
    }

    /// Sets where deactivations of level SPIs are reported.
    pub fn set_eoi_listener(&self, listener: SpiEoiListener) {
        *relock(&self.eoi_listener) = Some(listener);
    }

    /// Runs `f` on the state, then refreshes the IRQ outputs and, with the lock
    /// released, reports deactivated level SPIs and wakes CPUs whose output
    /// rose.
    fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut risen = 0u32;
        let (result, eoi_lines) = {
            let mut state = relock(&self.state);
            let result = f(&mut state);
            for (cpu, output) in self.outputs.iter().enumerate() {
                let now = state.signalled(cpu).is_some();
                if output.swap(now, Ordering::AcqRel) != now && now {
                    risen |= 1 << cpu;
                }
            }
            (result, std::mem::take(&mut state.eoi_lines))
        };
        if !eoi_lines.is_empty() {
            let listener = relock(&self.eoi_listener).clone();
            if let Some(listener) = listener {
                for line in eoi_lines {
                    listener(line);
                }
            }
        }
        while risen != 0 {
            let cpu = risen.trailing_zeros();
            risen &= risen - 1;
            (self.wake)(cpu);
        }
        result
    }

    /// Whether CPU `cpu`'s IRQ output is asserted: an interrupt it would
    /// acknowledge now is pending. Takes no lock.
    pub fn irq_pending(&self, cpu: u32) -> bool {
        self.outputs
            .get(cpu as usize)
            .is_some_and(|o| o.load(Ordering::Acquire))
    }

    /// Sets the input of SPI `spi` (interrupt ID 32 + `spi`).
    pub fn set_spi(&self, spi: u32, level: bool) {
        if spi >= GIC_SPI_COUNT {
            log::debug!("gic: SPI {spi} does not exist");
            return;
        }
        self.update(|state| state.set_input(0, GIC_SPI_BASE + spi, level));
    }

    /// Sets CPU `cpu`'s input of PPI interrupt ID `ppi` (16 to 31; the EL1
    /// physical timer is 30, the virtual timer 27).
    pub fn set_ppi(&self, cpu: u32, ppi: u32, level: bool) {
        if !(16..32).contains(&ppi) || cpu >= self.cpu_count() {
            log::debug!("gic: PPI {ppi} of CPU {cpu} does not exist");
            return;
        }
        self.update(|state| state.set_input(cpu as usize, ppi, level));
    }

    /// A read of the distributor by CPU `cpu`.
    pub fn distributor_read(&self, cpu: u32, offset: u64, data: &mut [u8]) {
        let value = if cpu < self.cpu_count() {
            relock(&self.state).dist_read(cpu as usize, offset, data.len())
        } else {
            0
        };
        crate::pl011::fill(data, value);
    }

    /// A write to the distributor by CPU `cpu`.
    pub fn distributor_write(&self, cpu: u32, offset: u64, data: &[u8]) {
        if cpu < self.cpu_count() {
            self.update(|state| state.dist_write(cpu as usize, offset, data));
        }
    }

    /// A read of CPU `cpu`'s interface (`GICC_IAR` acknowledges).
    pub fn cpu_interface_read(&self, cpu: u32, offset: u64, data: &mut [u8]) {
        let value = if cpu < self.cpu_count() {
            self.update(|state| state.cpu_read(cpu as usize, offset, data.len()))
        } else {
            0
        };
        crate::pl011::fill(data, value);
    }

    /// A write to CPU `cpu`'s interface.
    pub fn cpu_interface_write(&self, cpu: u32, offset: u64, data: &[u8]) {
        if cpu < self.cpu_count() {
            self.update(|state| state.cpu_write(cpu as usize, offset, data));
        }
    }
}

impl IrqSink for Gic {
    /// Board line `line` is SPI `line`.
    fn set_level(&self, line: u32, high: bool) {
        self.set_spi(line, high);
    }
}

/// The distributor on the MMIO bus; the accessing CPU is [`current_vcpu`].
pub struct GicDistributor(pub Arc<Gic>);

impl BusDevice for GicDistributor {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        self.0.distributor_read(current_vcpu(), offset, data);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        self.0.distributor_write(current_vcpu(), offset, data);
    }
}

/// The CPU interface on the MMIO bus; each CPU ([`current_vcpu`]) sees its own.
pub struct GicCpuInterface(pub Arc<Gic>);

impl BusDevice for GicCpuInterface {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        self.0.cpu_interface_read(current_vcpu(), offset, data);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        self.0.cpu_interface_write(current_vcpu(), offset, data);
    }
}

/// The `virt` board's CPU-facing interrupt hardware, handed to the accelerator
/// as one [`InterruptController`]: the GIC's IRQ outputs and the CPU-local
/// generic timer registers.
#[derive(Debug, Clone)]
pub struct VirtInterrupts {
    pub gic: Arc<Gic>,
    pub timer: Arc<ArmTimer>,
}

impl VirtInterrupts {
    /// A GIC for `cpus` CPUs and their generic timers on `clock`, each timer
    /// wired to its CPU's PPIs 30 and 27. `wake` as for [`Gic::new`].
    pub fn new(clock: Arc<Clock>, cpus: u32, wake: WakeCpu) -> Result<VirtInterrupts, GicError> {
        let gic = Gic::new(cpus, wake)?;
        let timer = {
            let gic = gic.clone();
            ArmTimer::new(
                clock,
                cpus,
                Arc::new(move |cpu, intid, level| gic.set_ppi(cpu, intid, level)),
            )
        };
        Ok(VirtInterrupts { gic, timer })
    }
}

impl InterruptController for VirtInterrupts {
    fn interrupt_pending(&self, cpu: u32) -> bool {
        self.gic.irq_pending(cpu)
    }

    /// The CPU acknowledges by reading `GICC_IAR`.
    fn acknowledge(&self, _cpu: u32) -> Option<u8> {
        None
    }

    /// An Arm CPU leaves WFI for a pending IRQ even with PSTATE.I set.
    fn wake_pending(&self, cpu: u32) -> bool {
        self.gic.irq_pending(cpu)
    }

    fn cpu_register_read(&self, cpu: u32, reg: CpuRegister) -> Option<u64> {
        match reg {
            CpuRegister::ArmTimer(reg) => timer_reg(&self.timer, cpu, reg),
        }
    }

    fn cpu_register_write(&self, cpu: u32, reg: CpuRegister, value: u64) -> bool {
        match reg {
            CpuRegister::ArmTimer(reg) => {
                if cpu >= self.timer.cpu_count() {
                    return false;
                }
                self.timer.write(cpu, reg, value);
                true
            }
        }
    }
}

fn timer_reg(timer: &ArmTimer, cpu: u32, reg: TimerReg) -> Option<u64> {
    (cpu < timer.cpu_count()).then(|| timer.read(cpu, reg))
}

#[cfg(test)]
mod tests;
